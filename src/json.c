// @pristine:module json - RFC 8259 JSON reader (DOM on an arena) and writer
// @pristine:public
/*
 * json: a strict RFC 8259 reader that builds a read-only DOM, and a writer
 * that emits compact JSON into a pr_buf.
 *
 * Reading: pr_json_parse turns text into a pr_json_doc. The document owns
 * every value, key and string in a few large arena chunks (no allocation
 * per value) and frees them all at once in pr_json_doc_destroy. A pr_json
 * is a value inside a document; pointers to values and the strings they
 * hold stay valid until the document is destroyed. The input text is not
 * referenced after the parse returns. The parser is iterative (no
 * recursion), validates UTF-8, combines surrogate pairs and rejects lone
 * surrogates (or replaces them with U+FFFD by option). Depth, document size
 * and string length are limited by pr_json_opts (exceeding one gives
 * PR_ELIMIT); malformed input gives PR_EPROTO and a position in
 * pr_json_error. Strings are stored NUL-terminated but may also contain
 * U+0000, so getters report their length. Object member lookup is a linear
 * scan (objects keep their members in document order, duplicates
 * included); array indexing is O(1).
 *
 * Writing: a pr_json_writer is a caller-allocated value struct over a
 * caller-owned pr_buf; it allocates nothing itself and tracks nesting, so a
 * misplaced call gives PR_ESTATE. It only appends to the buffer and keeps
 * no pointer into its bytes, so a caller streaming a large array may send
 * and pr_buf_clear (or pr_buf_consume) the buffer between any two calls.
 */

/* The type of a value (pr_json_type). 0 is returned for a NULL value. */
enum pr_json_type {
    PR_JSON_NULL = 1,
    PR_JSON_FALSE,
    PR_JSON_TRUE,
    PR_JSON_NUMBER,
    PR_JSON_STRING,
    PR_JSON_ARRAY,
    PR_JSON_OBJECT
};

/* A parsed document; owns all its values. */
typedef struct pr_json_doc pr_json_doc;

/* A value inside a document; valid until pr_json_doc_destroy. */
typedef struct pr_json pr_json;

/* Parser limits and options. Zero in every field means the default. */
typedef struct pr_json_opts {
    size_t max_depth;            /* 0 = 512 nested arrays/objects */
    size_t max_size;             /* 0 = 64 MiB of input text */
    size_t max_string;           /* 0 = 16 MiB per decoded string or key */
    int replace_lone_surrogates; /* 0 = a lone \uD800-\uDFFF escape is PR_EPROTO; 1 = U+FFFD */
} pr_json_opts;

/* Where and why a parse failed. offset is the byte offset of the problem
   in the input; line and column are 1-based (column counts bytes). */
typedef struct pr_json_error {
    int code;      /* PR_OK, PR_EPROTO, PR_ELIMIT, PR_ENOMEM or PR_EINVAL */
    size_t offset;
    size_t line;
    size_t column;
    char msg[96];  /* NUL-terminated English text */
} pr_json_error;

/* Parse one JSON text (RFC 8259: any value, surrounded by optional
   whitespace; no BOM, no comments, no trailing commas). Numbers that are
   written without fraction or exponent and fit int64_t are kept exactly;
   a number whose magnitude overflows a double is PR_ELIMIT.
   Params: out - receives the document (NULL on failure); text, len - the
           input, need not be NUL-terminated; opts - limits, NULL for the
           defaults; err - receives the failure position and message, may
           be NULL.
   Returns: PR_OK; PR_EPROTO for malformed JSON or invalid UTF-8; PR_ELIMIT
            when a limit of opts is exceeded or a number is out of range;
            PR_ENOMEM; PR_EINVAL if out is NULL or text is NULL with len > 0.
   Blocks: no.
   Thread: any.
   See: pr_json_doc_destroy, pr_json_root. */
PRISTINE_API int pr_json_parse(pr_json_doc **out, const char *text, size_t len, const pr_json_opts *opts,
                               pr_json_error *err);

/* Free a document and every value in it.
   Params: doc - the document; NULL is a no-op.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_json_parse. */
PRISTINE_API void pr_json_doc_destroy(pr_json_doc *doc);

/* The top-level value of a document.
   Params: doc - the document.
   Returns: the root value; NULL if doc is NULL.
   Blocks: no.
   Thread: any.
   See: pr_json_type. */
PRISTINE_API const pr_json *pr_json_root(const pr_json_doc *doc);

/* The type of a value.
   Params: v - a value or NULL.
   Returns: a PR_JSON_* type; 0 if v is NULL.
   Blocks: no.
   Thread: any.
   See: pr_json_len. */
PRISTINE_API int pr_json_type(const pr_json *v);

/* The number of elements of an array, members of an object, or bytes of a
   string.
   Params: v - a value or NULL.
   Returns: the count; 0 for other types and NULL.
   Blocks: no.
   Thread: any.
   See: pr_json_at, pr_json_string. */
PRISTINE_API size_t pr_json_len(const pr_json *v);

/* Look up an object member by key (a linear scan; when a key is present
   more than once the last member wins, as in JavaScript).
   Params: obj - an object (anything else gives NULL); key - NUL-terminated.
   Returns: the member's value, or NULL if absent.
   Blocks: no.
   Thread: any.
   See: pr_json_getn, pr_json_iter_init. */
PRISTINE_API const pr_json *pr_json_get(const pr_json *obj, const char *key);

/* Look up an object member by a key that may contain U+0000.
   Params: obj - an object; key, key_len - the key's bytes.
   Returns: the member's value (the last one if duplicated), or NULL.
   Blocks: no.
   Thread: any.
   See: pr_json_get. */
PRISTINE_API const pr_json *pr_json_getn(const pr_json *obj, const char *key, size_t key_len);

/* An array element by index (O(1)).
   Params: arr - an array (anything else gives NULL); i - 0-based index.
   Returns: the element, or NULL if i is out of range.
   Blocks: no.
   Thread: any.
   See: pr_json_len. */
PRISTINE_API const pr_json *pr_json_at(const pr_json *arr, size_t i);

/* A string's UTF-8 bytes (NUL-terminated; may also contain U+0000).
   Params: v - a string value; len - receives the byte length, may be NULL.
   Returns: the bytes, valid until the document is destroyed; NULL (and
            *len = 0) if v is not a string.
   Blocks: no.
   Thread: any.
   See: pr_json_len. */
PRISTINE_API const char *pr_json_string(const pr_json *v, size_t *len);

/* A number as an exact integer.
   Params: v - a value; out - receives the integer (untouched on error).
   Returns: PR_OK; PR_EINVAL if v is not a number or was written with a
            fraction or an exponent; PR_ELIMIT if the integer does not fit
            in int64_t.
   Blocks: no.
   Thread: any.
   See: pr_json_double. */
PRISTINE_API int pr_json_int(const pr_json *v, int64_t *out);

/* A number as a double (integers are converted, rounding if beyond 2^53).
   Params: v - a value; out - receives the number (untouched on error).
   Returns: PR_OK; PR_EINVAL if v is not a number.
   Blocks: no.
   Thread: any.
   See: pr_json_int. */
PRISTINE_API int pr_json_double(const pr_json *v, double *out);

/* A boolean.
   Params: v - a value; out - receives 1 for true, 0 for false.
   Returns: PR_OK; PR_EINVAL if v is neither true nor false.
   Blocks: no.
   Thread: any.
   See: pr_json_type. */
PRISTINE_API int pr_json_bool(const pr_json *v, int *out);

/* Whether a value is JSON null.
   Params: v - a value or NULL.
   Returns: 1 if v is null, 0 otherwise (including a NULL pointer).
   Blocks: no.
   Thread: any.
   See: pr_json_type. */
PRISTINE_API int pr_json_is_null(const pr_json *v);

/* An iterator over the members of an object or the elements of an array,
   in document order:
       pr_json_iter it;
       pr_json_iter_init(&it, obj);
       while (pr_json_iter_next(&it)) use(it.key, it.key_len, it.value);
   The priv_ fields are private. */
typedef struct pr_json_iter {
    const char *key;      /* the member's key (NUL-terminated); NULL for arrays */
    size_t key_len;       /* its length in bytes */
    const pr_json *value; /* the current member's value or element */
    size_t index;         /* 0-based position of the current item */
    const pr_json *priv_next, *priv_end;
    int priv_step;
} pr_json_iter;

/* Start iterating over a container.
   Params: it - caller-allocated iterator; v - an array or object (anything
           else, or NULL, gives an iterator that yields nothing).
   Returns: nothing.
   Blocks: no.
   Thread: any.
   See: pr_json_iter_next. */
PRISTINE_API void pr_json_iter_init(pr_json_iter *it, const pr_json *v);

/* Advance to the next item and fill key, key_len, value and index.
   Params: it - an iterator from pr_json_iter_init.
   Returns: 1 if an item was produced; 0 at the end.
   Blocks: no.
   Thread: any.
   See: pr_json_iter_init. */
PRISTINE_API int pr_json_iter_next(pr_json_iter *it);

/* The deepest nesting a writer tracks. */
#define PR_JSON_WRITER_MAX_DEPTH 1024

/* A compact JSON writer over a caller-owned pr_buf. A caller-allocated
   value struct (no deinit needed); all fields are private. */
typedef struct pr_json_writer {
    pr_buf *priv_out;
    int priv_err;            /* sticky PR_ENOMEM */
    unsigned priv_depth;
    unsigned priv_state;     /* flags of the innermost level */
    unsigned char priv_kind[PR_JSON_WRITER_MAX_DEPTH / 8]; /* bit set = object */
} pr_json_writer;

/* Start a writer that appends one JSON value to out. out's existing
   bytes are kept. Between calls the caller may send and consume out's
   bytes (for example after each element of a large array): the writer
   keeps no pointer into them.
   Params: w - caller-allocated writer; out - the destination buffer.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_json_writer_finish. */
PRISTINE_API void pr_json_writer_init(pr_json_writer *w, pr_buf *out);

/* Check that exactly one complete value has been written.
   Params: w - the writer.
   Returns: PR_OK; PR_ESTATE if a container is open or nothing was written;
            PR_ENOMEM if an earlier call ran out of memory.
   Blocks: no.
   Thread: owner.
   See: pr_json_writer_init. */
PRISTINE_API int pr_json_writer_finish(pr_json_writer *w);

/* Open an object ('{'); then alternate pr_json_key and a value.
   Params: w - the writer.
   Returns: PR_OK; PR_ESTATE where a value is not allowed (after the top
            value, or where a key is expected); PR_ELIMIT beyond
            PR_JSON_WRITER_MAX_DEPTH; PR_ENOMEM (sticky: every later call
            returns it too).
   Blocks: no.
   Thread: owner.
   See: pr_json_end_object, pr_json_key. */
PRISTINE_API int pr_json_begin_object(pr_json_writer *w);

/* Close the innermost object ('}').
   Params: w - the writer.
   Returns: PR_OK; PR_ESTATE if the innermost container is not an object
            or a key has no value yet; PR_ENOMEM (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_begin_object. */
PRISTINE_API int pr_json_end_object(pr_json_writer *w);

/* Open an array ('[').
   Params: w - the writer.
   Returns: PR_OK; PR_ESTATE where a value is not allowed; PR_ELIMIT beyond
            PR_JSON_WRITER_MAX_DEPTH; PR_ENOMEM (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_end_array. */
PRISTINE_API int pr_json_begin_array(pr_json_writer *w);

/* Close the innermost array (']').
   Params: w - the writer.
   Returns: PR_OK; PR_ESTATE if the innermost container is not an array;
            PR_ENOMEM (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_begin_array. */
PRISTINE_API int pr_json_end_array(pr_json_writer *w);

/* Write an object member's key.
   Params: w - the writer; key, len - UTF-8 bytes (may contain U+0000).
   Returns: PR_OK; PR_ESTATE if not inside an object or a key is already
            waiting for its value; PR_EINVAL for invalid UTF-8; PR_ENOMEM
            (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_write_string. */
PRISTINE_API int pr_json_key(pr_json_writer *w, const char *key, size_t len);

/* Write a string value, escaping '"', '\' and control characters;
   other UTF-8 passes through unchanged.
   Params: w - the writer; s, len - UTF-8 bytes (may contain U+0000).
   Returns: PR_OK; PR_ESTATE where a value is not allowed; PR_EINVAL for
            invalid UTF-8; PR_ENOMEM (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_key. */
PRISTINE_API int pr_json_write_string(pr_json_writer *w, const char *s, size_t len);

/* Write an integer, exactly.
   Params: w - the writer; v - the value.
   Returns: PR_OK; PR_ESTATE where a value is not allowed; PR_ENOMEM
            (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_write_double. */
PRISTINE_API int pr_json_write_int(pr_json_writer *w, int64_t v);

/* Write a double in the shortest of %.15g, %.16g and %.17g that reads back
   as the same double; a value without fraction or exponent gets ".0" so
   it reads back as a non-integer.
   Params: w - the writer; v - a finite value.
   Returns: PR_OK; PR_EINVAL for NaN or an infinity; PR_ESTATE where a
            value is not allowed; PR_ENOMEM (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_write_int. */
PRISTINE_API int pr_json_write_double(pr_json_writer *w, double v);

/* Write true or false.
   Params: w - the writer; v - nonzero for true.
   Returns: PR_OK; PR_ESTATE where a value is not allowed; PR_ENOMEM
            (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_write_null. */
PRISTINE_API int pr_json_write_bool(pr_json_writer *w, int v);

/* Write null.
   Params: w - the writer.
   Returns: PR_OK; PR_ESTATE where a value is not allowed; PR_ENOMEM
            (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_write_bool. */
PRISTINE_API int pr_json_write_null(pr_json_writer *w);

/* Write a parsed value and everything inside it (iteratively; it may
   allocate a small cursor stack).
   Params: w - the writer; v - a value from a document.
   Returns: PR_OK; PR_EINVAL if v is NULL; PR_ESTATE where a value is not
            allowed; PR_ELIMIT if nesting would exceed
            PR_JSON_WRITER_MAX_DEPTH; PR_ENOMEM (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_parse. */
PRISTINE_API int pr_json_write_value(pr_json_writer *w, const pr_json *v);

/* A parsed value as compact JSON text (the writer's form, as
   pr_json_write_value writes it): appended to out, which stays
   NUL-terminated, so out.data is the string; pr_buf_deinit frees it.
       pr_buf s = {0};
       if (pr_json_to_buf(pr_json_root(doc), &s) == PR_OK) puts(s.data);
       pr_buf_deinit(&s);
   Params: v - a value from a document; out - the buffer (its bytes are
           kept; the text goes after them).
   Returns: PR_OK; PR_EINVAL if v or out is NULL; PR_ELIMIT if nesting
            exceeds PR_JSON_WRITER_MAX_DEPTH; PR_ENOMEM. On failure out
            holds what it held before.
   Blocks: no.
   Thread: any (out is the caller's).
   See: pr_json_write_value, pr_buf_deinit. */
PRISTINE_API int pr_json_to_buf(const pr_json *v, pr_buf *out);

// @pristine:impl
/* ---- DOM ---- */

/* tag: type in the low byte, number flags above. */
#define PR__JSON_INT 0x100u   /* number held exactly in u.i */
#define PR__JSON_BIG 0x200u   /* integer literal beyond int64_t; u.d holds it */
#define PR__JSON_TYPE(v) ((int)((v)->tag & 0xffu))

struct pr_json {
    uint32_t tag;
    uint32_t len; /* string bytes, array elements, object members */
    union {
        const char *s;
        const pr_json *kids; /* arrays: len values; objects: 2*len (key, value) pairs */
        double d;
        int64_t i;
    } u;
};

typedef struct pr__json_chunk {
    struct pr__json_chunk *next;
    size_t size; /* bytes allocated, header included */
} pr__json_chunk;

struct pr_json_doc {
    pr__json_chunk *chunks;
    pr_json root;
};

#define PR__JSON_HDR ((sizeof(pr__json_chunk) + 15) & ~(size_t)15)

#ifdef PRISTINE_TESTING
/* Steps of the reader (bytes it examined or copied, values pushed and
   moved), so a fuzzer can check the work per input byte stays bounded. */
static size_t pr__json_test_work;
#define PR__JSON_WORK(n) (pr__json_test_work += (size_t)(n))
#else
#define PR__JSON_WORK(n) ((void)0)
#endif

typedef struct pr__json_parser {
    const unsigned char *begin, *p, *end;
    pr__json_chunk *chunks;
    unsigned char *cur, *lim; /* bump region of the newest chunk */
    size_t next_chunk;
    pr_json *vs;              /* value stack */
    size_t vlen, vcap;
    size_t *fs;               /* frame stack: vs index * 2 + is_object */
    size_t flen, fcap;
    size_t max_depth, max_string;
    int replace;
    int code;
    const unsigned char *err_at;
    const char *err_msg;
} pr__json_parser;

static void pr__json_free_chunks(pr__json_chunk *c) {
    while (c) {
        pr__json_chunk *n = c->next;
        pr__free(c, c->size);
        c = n;
    }
}

static void *pr__json_alloc(pr__json_parser *ps, size_t n) {
    void *r;
    n = (n + 7) & ~(size_t)7;
    if (PR__UNLIKELY((size_t)(ps->lim - ps->cur) < n)) {
        size_t size = ps->next_chunk;
        pr__json_chunk *c;
        if (n > SIZE_MAX / 2 - PR__JSON_HDR) return NULL;
        if (size < n + PR__JSON_HDR) size = n + PR__JSON_HDR;
        c = (pr__json_chunk *)pr__alloc(size);
        if (!c) return NULL;
        c->size = size;
        c->next = ps->chunks;
        ps->chunks = c;
        ps->cur = (unsigned char *)c + PR__JSON_HDR;
        ps->lim = (unsigned char *)c + size;
        if (ps->next_chunk < (SIZE_MAX >> 3)) ps->next_chunk *= 2;
    }
    r = ps->cur;
    ps->cur += n;
    return r;
}

static int pr__json_fail(pr__json_parser *ps, int code, const unsigned char *at, const char *msg) {
    ps->code = code;
    ps->err_at = at;
    ps->err_msg = msg;
    return code;
}

static int pr__json_nomem(pr__json_parser *ps) { return pr__json_fail(ps, PR_ENOMEM, ps->p, "out of memory"); }

/* Character classes for the string scanner: 0 = plain byte. */
static const unsigned char pr__json_strclass[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4
};

static int pr__json_hex4(const unsigned char *s, unsigned *out) {
    unsigned v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        unsigned c = s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') d = (c | 0x20) - 'a' + 10;
        else return 0;
        v = v * 16 + d;
    }
    *out = v;
    return 1;
}

/* Length of the valid UTF-8 sequence at s (before e), or 0 if invalid. */
static size_t pr__json_utf8_len(const unsigned char *s, const unsigned char *e) {
    int k = pr__buf_utf8_seq(s, (size_t)(e - s));
    return k > 0 ? (size_t)k : 0;
}

static unsigned char *pr__json_put_utf8(unsigned char *d, unsigned cp) {
    if (cp < 0x80) *d++ = (unsigned char)cp;
    else if (cp < 0x800) {
        *d++ = (unsigned char)(0xc0 | (cp >> 6));
        *d++ = (unsigned char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *d++ = (unsigned char)(0xe0 | (cp >> 12));
        *d++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        *d++ = (unsigned char)(0x80 | (cp & 0x3f));
    } else {
        *d++ = (unsigned char)(0xf0 | (cp >> 18));
        *d++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        *d++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        *d++ = (unsigned char)(0x80 | (cp & 0x3f));
    }
    return d;
}

/* Decode the string body s..e (escapes, UTF-8 checks) into d; returns the
   end of the output, or NULL after recording the error. */
static unsigned char *pr__json_decode(pr__json_parser *ps, const unsigned char *s, const unsigned char *e,
                                      unsigned char *d) {
    while (s < e) {
        unsigned c = *s;
        if (c == '\\') {
            unsigned cp;
            switch (s[1]) {
            case '"': *d++ = '"'; s += 2; continue;
            case '\\': *d++ = '\\'; s += 2; continue;
            case '/': *d++ = '/'; s += 2; continue;
            case 'b': *d++ = '\b'; s += 2; continue;
            case 'f': *d++ = '\f'; s += 2; continue;
            case 'n': *d++ = '\n'; s += 2; continue;
            case 'r': *d++ = '\r'; s += 2; continue;
            case 't': *d++ = '\t'; s += 2; continue;
            case 'u': break;
            default:
                pr__json_fail(ps, PR_EPROTO, s, "invalid escape in string");
                return NULL;
            }
            if (e - s < 6 || !pr__json_hex4(s + 2, &cp)) {
                pr__json_fail(ps, PR_EPROTO, s, "invalid \\u escape in string");
                return NULL;
            }
            if (cp >= 0xd800 && cp <= 0xdfff) {
                unsigned lo;
                if (cp <= 0xdbff && e - s >= 12 && s[6] == '\\' && s[7] == 'u' && pr__json_hex4(s + 8, &lo) &&
                    lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    s += 6;
                } else if (ps->replace) {
                    cp = 0xfffd;
                } else {
                    pr__json_fail(ps, PR_EPROTO, s, "lone surrogate in \\u escape");
                    return NULL;
                }
            }
            d = pr__json_put_utf8(d, cp);
            s += 6;
        } else if (c < 0x80) {
            *d++ = (unsigned char)c;
            s++;
        } else {
            size_t n = pr__json_utf8_len(s, e);
            if (!n) {
                pr__json_fail(ps, PR_EPROTO, s, "invalid UTF-8 in string");
                return NULL;
            }
            memcpy(d, s, n);
            d += n;
            s += n;
        }
    }
    return d;
}

/* Parse a string whose opening quote is at ps->p into v. */
static int pr__json_string(pr__json_parser *ps, pr_json *v) {
    const unsigned char *s = ps->p + 1, *q = s, *end = ps->end;
    unsigned char *dst, *de;
    int simple = 1;
    size_t raw, len;
    for (;;) {
        unsigned k;
        while (end - q >= 8) { /* 8 bytes at a time: stop near '"', '\\', < 0x20 or >= 0x80 */
            const uint64_t lo = 0x0101010101010101ull, hi = 0x8080808080808080ull;
            uint64_t w, a, b;
            memcpy(&w, q, 8);
            a = w ^ (lo * '"');
            b = w ^ (lo * '\\');
            if ((((a - lo) & ~a) | ((b - lo) & ~b) | ((w - lo * 0x20) & ~w) | w) & hi) break;
            q += 8;
        }
        while (q < end && !pr__json_strclass[*q]) q++;
        if (PR__UNLIKELY(q >= end)) return pr__json_fail(ps, PR_EPROTO, end, "unterminated string");
        k = pr__json_strclass[*q];
        if (k == 2) break;
        if (k == 3) {
            simple = 0;
            if (end - q < 2) return pr__json_fail(ps, PR_EPROTO, end, "unterminated string");
            q += 2;
        } else if (k == 1) {
            return pr__json_fail(ps, PR_EPROTO, q, "unescaped control character in string");
        } else {
            simple = 0;
            q++;
        }
    }
    raw = (size_t)(q - s);
    PR__JSON_WORK(2 * raw + 2); /* the scan, then the copy or decode */
    dst = (unsigned char *)pr__json_alloc(ps, raw + 1);
    if (!dst) return pr__json_nomem(ps);
    if (simple) {
        memcpy(dst, s, raw);
        len = raw;
    } else {
        de = pr__json_decode(ps, s, q, dst);
        if (!de) return ps->code;
        len = (size_t)(de - dst);
    }
    if (len > ps->max_string || len > UINT32_MAX)
        return pr__json_fail(ps, PR_ELIMIT, ps->p, "string longer than max_string");
    dst[len] = 0;
    v->tag = PR_JSON_STRING;
    v->len = (uint32_t)len;
    v->u.s = (const char *)dst;
    ps->p = q + 1;
    return PR_OK;
}

static const double pr__json_pow10[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

#define PR__JSON_MAXDIG 780

/* Lex a number at p (strict RFC 8259 grammar) into v; *stop receives the
   end. Returns PR_OK, PR_EPROTO (bad grammar, *stop at the bad byte) or
   PR_ELIMIT (beyond the double range). */
static int pr__json_number(const unsigned char *p, const unsigned char *end, const unsigned char **stop,
                           pr_json *v) {
    const unsigned char *start = p, *ib, *ie, *fb = NULL, *fe = NULL;
    int neg = 0;
    long long ex = 0;
    uint64_t m = 0;
    size_t nd;
    if (p < end && *p == '-') neg = 1, p++;
    ib = p;
    if (p < end && *p == '0') p++;
    else if (p < end && *p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') p++;
    } else {
        *stop = p;
        return PR_EPROTO;
    }
    ie = p;
    if (p < end && *p == '.') {
        p++;
        fb = p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        fe = p;
        if (fb == fe) {
            *stop = p;
            return PR_EPROTO;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        const unsigned char *eb;
        p++;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p == '-', p++;
        eb = p;
        while (p < end && *p >= '0' && *p <= '9') {
            if (ex < 100000000) ex = ex * 10 + (*p - '0');
            p++;
        }
        if (eb == p) {
            *stop = p;
            return PR_EPROTO;
        }
        if (eneg) ex = -ex;
        fb = fb ? fb : ie;
        fe = fe ? fe : ie;
    }
    *stop = p;
    PR__JSON_WORK(2 * (size_t)(p - start)); /* the scan, then the conversion */
    v->tag = PR_JSON_NUMBER;
    v->len = 0;
    nd = (size_t)(ie - ib);
    if (!fb) { /* integer literal */
        if (nd <= 18) {
            const unsigned char *q;
            for (q = ib; q < ie; q++) m = m * 10 + (uint64_t)(*q - '0');
            v->tag |= PR__JSON_INT;
            v->u.i = neg ? -(int64_t)m : (int64_t)m;
            return PR_OK;
        }
        if (nd <= 20) {
            const unsigned char *q;
            uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
            int ok = 1;
            for (q = ib; q < ie && ok; q++) {
                unsigned dg = (unsigned)(*q - '0');
                if (m > (lim - dg) / 10) ok = 0;
                else m = m * 10 + dg;
            }
            if (ok) {
                v->tag |= PR__JSON_INT;
                v->u.i = neg ? (m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m) : (int64_t)m;
                return PR_OK;
            }
        }
        v->tag |= PR__JSON_BIG;
        fb = fe = ie;
    }
    {
        /* digits G = int digits + fraction digits; value = G * 10^(ex - nfrac) */
        size_t nf = (size_t)(fe - fb), total = nd + nf, i;
        long long e10 = ex - (long long)nf;
        double d;
        if (total <= 19) {
            const unsigned char *q;
            for (q = ib; q < ie; q++) m = m * 10 + (uint64_t)(*q - '0');
            for (q = fb; q < fe; q++) m = m * 10 + (uint64_t)(*q - '0');
#if defined(__FLT_EVAL_METHOD__) && __FLT_EVAL_METHOD__ == 0
            if (m <= ((uint64_t)1 << 53) && e10 >= -22 && e10 <= 22) {
                d = (double)m;
                d = e10 < 0 ? d / pr__json_pow10[-e10] : d * pr__json_pow10[e10];
                v->u.d = neg ? -d : d;
                return PR_OK;
            }
#endif
            if (m == 0) {
                v->u.d = neg ? -0.0 : 0.0;
                return PR_OK;
            }
        }
        {
            char buf[PR__JSON_MAXDIG + 40];
            size_t n = 0, kept = 0;
            int sticky = 0, lead = 1;
            char *endp;
            if (neg) buf[n++] = '-';
            for (i = 0; i < total; i++) {
                char c = (char)(i < nd ? ib[i] : fb[i - nd]);
                if (lead && c == '0') continue;
                lead = 0;
                if (kept < PR__JSON_MAXDIG) buf[n++] = c, kept++;
                else {
                    e10++;
                    if (c != '0') sticky = 1;
                }
            }
            if (kept == 0) {
                v->u.d = neg ? -0.0 : 0.0;
                return PR_OK;
            }
            if (sticky) buf[n++] = '1', e10--;
            if (e10 > 100000000) e10 = 100000000;
            if (e10 < -100000000) e10 = -100000000;
            snprintf(buf + n, sizeof buf - n, "e%lld", e10);
            d = strtod(buf, &endp);
            if (d > 1.7976931348623157e308 || d < -1.7976931348623157e308) {
                *stop = start;
                return PR_ELIMIT;
            }
            v->u.d = d;
        }
    }
    return PR_OK;
}

static const unsigned char pr__json_ws[256] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0,
                                                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };

#define PR__JSON_SKIP_WS(p, end) while ((p) < (end) && pr__json_ws[*(p)]) PR__JSON_WORK(1), (p)++

static int pr__json_push(pr__json_parser *ps, const pr_json *v) {
    PR__JSON_WORK(1);
    if (PR__UNLIKELY(ps->vlen == ps->vcap)) {
        size_t ncap = ps->vcap * 2;
        PR__JSON_WORK(ps->vlen);
        pr_json *nv = (pr_json *)pr__realloc(ps->vs, ps->vcap * sizeof *nv, ncap * sizeof *nv);
        if (!nv) return pr__json_nomem(ps);
        ps->vs = nv;
        ps->vcap = ncap;
    }
    ps->vs[ps->vlen++] = *v;
    return PR_OK;
}

static int pr__json_open(pr__json_parser *ps, int is_obj) {
    if (ps->flen >= ps->max_depth) return pr__json_fail(ps, PR_ELIMIT, ps->p, "nesting deeper than max_depth");
    PR__JSON_WORK(1);
    if (ps->flen == ps->fcap) {
        size_t ncap = ps->fcap * 2;
        PR__JSON_WORK(ps->flen);
        size_t *nf = (size_t *)pr__realloc(ps->fs, ps->fcap * sizeof *nf, ncap * sizeof *nf);
        if (!nf) return pr__json_nomem(ps);
        ps->fs = nf;
        ps->fcap = ncap;
    }
    ps->fs[ps->flen++] = ps->vlen * 2 + (size_t)is_obj;
    ps->p++;
    return PR_OK;
}

static int pr__json_close(pr__json_parser *ps) {
    size_t f = ps->fs[--ps->flen], start = f / 2, n = ps->vlen - start;
    int is_obj = (int)(f & 1);
    pr_json c;
    c.tag = is_obj ? PR_JSON_OBJECT : PR_JSON_ARRAY;
    c.u.kids = NULL;
    if (is_obj) n &= ~(size_t)1;
    if ((is_obj ? n / 2 : n) > UINT32_MAX)
        return pr__json_fail(ps, PR_ELIMIT, ps->p, "too many elements in one container");
    c.len = (uint32_t)(is_obj ? n / 2 : n);
    if (n) {
        pr_json *k = (pr_json *)pr__json_alloc(ps, n * sizeof *k);
        if (!k) return pr__json_nomem(ps);
        memcpy(k, ps->vs + start, n * sizeof *k);
        PR__JSON_WORK(n);
        c.u.kids = k;
    }
    ps->vlen = start;
    ps->p++;
    return pr__json_push(ps, &c);
}

/* Expect a key string at ps->p, then ':'; pushes the key. */
static int pr__json_key(pr__json_parser *ps) {
    pr_json k;
    int rc;
    if (ps->p >= ps->end || *ps->p != '"')
        return pr__json_fail(ps, PR_EPROTO, ps->p, ps->p >= ps->end ? "unexpected end of input" : "expected a string key");
    if ((rc = pr__json_string(ps, &k)) != 0) return rc;
    if ((rc = pr__json_push(ps, &k)) != 0) return rc;
    PR__JSON_SKIP_WS(ps->p, ps->end);
    if (ps->p >= ps->end || *ps->p != ':')
        return pr__json_fail(ps, PR_EPROTO, ps->p, ps->p >= ps->end ? "unexpected end of input" : "expected ':'");
    ps->p++;
    return PR_OK;
}

static int pr__json_run(pr__json_parser *ps) {
    const unsigned char *end = ps->end;
    pr_json v;
    int rc;
value:
    PR__JSON_SKIP_WS(ps->p, end);
    if (PR__UNLIKELY(ps->p >= end)) return pr__json_fail(ps, PR_EPROTO, end, "unexpected end of input");
    switch (*ps->p) {
    case '"':
        if ((rc = pr__json_string(ps, &v)) != 0) return rc;
        break;
    case '{':
        if ((rc = pr__json_open(ps, 1)) != 0) return rc;
        PR__JSON_SKIP_WS(ps->p, end);
        if (ps->p < end && *ps->p == '}') {
            if ((rc = pr__json_close(ps)) != 0) return rc;
            goto after;
        }
        if ((rc = pr__json_key(ps)) != 0) return rc;
        goto value;
    case '[':
        if ((rc = pr__json_open(ps, 0)) != 0) return rc;
        PR__JSON_SKIP_WS(ps->p, end);
        if (ps->p < end && *ps->p == ']') {
            if ((rc = pr__json_close(ps)) != 0) return rc;
            goto after;
        }
        goto value;
    case 't':
        if (end - ps->p < 4 || memcmp(ps->p, "true", 4) != 0)
            return pr__json_fail(ps, PR_EPROTO, ps->p, "invalid literal");
        v.tag = PR_JSON_TRUE, v.len = 0, v.u.i = 0, ps->p += 4;
        break;
    case 'f':
        if (end - ps->p < 5 || memcmp(ps->p, "false", 5) != 0)
            return pr__json_fail(ps, PR_EPROTO, ps->p, "invalid literal");
        v.tag = PR_JSON_FALSE, v.len = 0, v.u.i = 0, ps->p += 5;
        break;
    case 'n':
        if (end - ps->p < 4 || memcmp(ps->p, "null", 4) != 0)
            return pr__json_fail(ps, PR_EPROTO, ps->p, "invalid literal");
        v.tag = PR_JSON_NULL, v.len = 0, v.u.i = 0, ps->p += 4;
        break;
    case '-': case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9': {
        const unsigned char *stop;
        rc = pr__json_number(ps->p, end, &stop, &v);
        if (rc == PR_ELIMIT) return pr__json_fail(ps, rc, stop, "number out of range");
        if (rc) return pr__json_fail(ps, rc, stop, "invalid number");
        ps->p = stop;
        break;
    }
    default:
        return pr__json_fail(ps, PR_EPROTO, ps->p, "unexpected character");
    }
    if ((rc = pr__json_push(ps, &v)) != 0) return rc;
after:
    PR__JSON_SKIP_WS(ps->p, end);
    if (ps->flen == 0) {
        if (ps->p != end) return pr__json_fail(ps, PR_EPROTO, ps->p, "unexpected text after the value");
        return PR_OK;
    }
    if (PR__UNLIKELY(ps->p >= end)) return pr__json_fail(ps, PR_EPROTO, end, "unexpected end of input");
    if (ps->fs[ps->flen - 1] & 1) {
        if (*ps->p == ',') {
            ps->p++;
            PR__JSON_SKIP_WS(ps->p, end);
            if ((rc = pr__json_key(ps)) != 0) return rc;
            goto value;
        }
        if (*ps->p == '}') {
            if ((rc = pr__json_close(ps)) != 0) return rc;
            goto after;
        }
        return pr__json_fail(ps, PR_EPROTO, ps->p, "expected ',' or '}'");
    }
    if (*ps->p == ',') {
        ps->p++;
        goto value;
    }
    if (*ps->p == ']') {
        if ((rc = pr__json_close(ps)) != 0) return rc;
        goto after;
    }
    return pr__json_fail(ps, PR_EPROTO, ps->p, "expected ',' or ']'");
}

static void pr__json_error_fill(pr_json_error *err, int code, const char *text, size_t off, const char *msg) {
    size_t i, line = 1, col = 1;
    if (!err) return;
    memset(err, 0, sizeof *err);
    err->code = code;
    if (code == PR_OK) return;
    PR__JSON_WORK(off);
    for (i = 0; text && i < off; i++) {
        if (text[i] == '\n') line++, col = 1;
        else col++;
    }
    err->offset = off;
    err->line = line;
    err->column = col;
    snprintf(err->msg, sizeof err->msg, "%s at line %lu column %lu", msg, (unsigned long)line,
             (unsigned long)col);
}

int pr_json_parse(pr_json_doc **out, const char *text, size_t len, const pr_json_opts *opts, pr_json_error *err) {
    pr__json_parser ps;
    pr_json_doc *doc;
    size_t max_size;
    int rc;
    if (out) *out = NULL;
    if (!out || (!text && len)) {
        pr__json_error_fill(err, PR_EINVAL, NULL, 0, "invalid argument");
        return PR_EINVAL;
    }
    memset(&ps, 0, sizeof ps);
    if (!text) text = "";
    max_size = opts ? PR__DEF(opts->max_size, (size_t)64 << 20) : (size_t)64 << 20;
    ps.max_depth = opts ? PR__DEF(opts->max_depth, 512) : 512;
    ps.max_string = opts ? PR__DEF(opts->max_string, (size_t)16 << 20) : (size_t)16 << 20;
    ps.replace = opts ? opts->replace_lone_surrogates != 0 : 0;
    if (len > max_size) {
        pr__json_error_fill(err, PR_ELIMIT, text, max_size, "document larger than max_size");
        return PR_ELIMIT;
    }
    ps.begin = ps.p = (const unsigned char *)text;
    ps.end = ps.begin + len;
    ps.next_chunk = len < 1024 ? 1024 : (len > SIZE_MAX / 4 ? len : len * 2);
    doc = (pr_json_doc *)pr__json_alloc(&ps, sizeof *doc);
    if (!doc) {
        pr__json_error_fill(err, PR_ENOMEM, text, 0, "out of memory");
        return PR_ENOMEM;
    }
    ps.vcap = 64;
    ps.fcap = 16;
    ps.vs = (pr_json *)pr__alloc(ps.vcap * sizeof *ps.vs);
    ps.fs = (size_t *)pr__alloc(ps.fcap * sizeof *ps.fs);
    if (!ps.vs || !ps.fs) rc = pr__json_nomem(&ps);
    else rc = pr__json_run(&ps);
    if (rc == PR_OK) doc->root = ps.vs[0];
    if (ps.vs) pr__free(ps.vs, ps.vcap * sizeof *ps.vs);
    if (ps.fs) pr__free(ps.fs, ps.fcap * sizeof *ps.fs);
    if (rc) {
        pr__json_free_chunks(ps.chunks);
        pr__json_error_fill(err, rc, text, (size_t)(ps.err_at - ps.begin), ps.err_msg);
        return rc;
    }
    doc->chunks = ps.chunks;
    *out = doc;
    pr__json_error_fill(err, PR_OK, text, 0, "");
    return PR_OK;
}

void pr_json_doc_destroy(pr_json_doc *doc) {
    if (doc) pr__json_free_chunks(doc->chunks);
}

const pr_json *pr_json_root(const pr_json_doc *doc) { return doc ? &doc->root : NULL; }

int pr_json_type(const pr_json *v) { return v ? PR__JSON_TYPE(v) : 0; }

size_t pr_json_len(const pr_json *v) {
    if (!v) return 0;
    switch (PR__JSON_TYPE(v)) {
    case PR_JSON_STRING: case PR_JSON_ARRAY: case PR_JSON_OBJECT: return v->len;
    default: return 0;
    }
}

const pr_json *pr_json_getn(const pr_json *obj, const char *key, size_t key_len) {
    size_t i;
    if (!obj || PR__JSON_TYPE(obj) != PR_JSON_OBJECT || (!key && key_len)) return NULL;
    for (i = obj->len; i-- > 0;) {
        const pr_json *k = &obj->u.kids[2 * i];
        if (k->len == key_len && (key_len == 0 || memcmp(k->u.s, key, key_len) == 0)) return k + 1;
    }
    return NULL;
}

const pr_json *pr_json_get(const pr_json *obj, const char *key) {
    return key ? pr_json_getn(obj, key, strlen(key)) : NULL;
}

const pr_json *pr_json_at(const pr_json *arr, size_t i) {
    if (!arr || PR__JSON_TYPE(arr) != PR_JSON_ARRAY || i >= arr->len) return NULL;
    return &arr->u.kids[i];
}

const char *pr_json_string(const pr_json *v, size_t *len) {
    if (!v || PR__JSON_TYPE(v) != PR_JSON_STRING) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = v->len;
    return v->u.s;
}

int pr_json_int(const pr_json *v, int64_t *out) {
    if (!v || PR__JSON_TYPE(v) != PR_JSON_NUMBER) return PR_EINVAL;
    if (v->tag & PR__JSON_BIG) return PR_ELIMIT;
    if (!(v->tag & PR__JSON_INT)) return PR_EINVAL;
    if (out) *out = v->u.i;
    return PR_OK;
}

int pr_json_double(const pr_json *v, double *out) {
    if (!v || PR__JSON_TYPE(v) != PR_JSON_NUMBER) return PR_EINVAL;
    if (out) *out = (v->tag & PR__JSON_INT) ? (double)v->u.i : v->u.d;
    return PR_OK;
}

int pr_json_bool(const pr_json *v, int *out) {
    if (!v || (PR__JSON_TYPE(v) != PR_JSON_TRUE && PR__JSON_TYPE(v) != PR_JSON_FALSE)) return PR_EINVAL;
    if (out) *out = PR__JSON_TYPE(v) == PR_JSON_TRUE;
    return PR_OK;
}

int pr_json_is_null(const pr_json *v) { return v && PR__JSON_TYPE(v) == PR_JSON_NULL; }

void pr_json_iter_init(pr_json_iter *it, const pr_json *v) {
    memset(it, 0, sizeof *it);
    if (!v || (PR__JSON_TYPE(v) != PR_JSON_ARRAY && PR__JSON_TYPE(v) != PR_JSON_OBJECT) || !v->len) return;
    it->priv_step = PR__JSON_TYPE(v) == PR_JSON_OBJECT ? 2 : 1;
    it->priv_next = v->u.kids;
    it->priv_end = v->u.kids + (size_t)v->len * (size_t)it->priv_step;
    it->index = (size_t)-1;
}

int pr_json_iter_next(pr_json_iter *it) {
    if (!it->priv_next || it->priv_next >= it->priv_end) {
        it->key = NULL;
        it->key_len = 0;
        it->value = NULL;
        return 0;
    }
    if (it->priv_step == 2) {
        it->key = it->priv_next->u.s;
        it->key_len = it->priv_next->len;
        it->value = it->priv_next + 1;
    } else {
        it->value = it->priv_next;
    }
    it->priv_next += it->priv_step;
    it->index++;
    return 1;
}

/* ---- writer ---- */

#define PR__JSON_W_HAS 1u  /* the innermost level has an item: a comma comes next */
#define PR__JSON_W_KEY 2u  /* a key waits for its value */
#define PR__JSON_W_DONE 4u /* the top-level value is complete */

void pr_json_writer_init(pr_json_writer *w, pr_buf *out) {
    memset(w, 0, sizeof *w);
    w->priv_out = out;
}

static int pr__json_w_is_obj(const pr_json_writer *w) {
    unsigned d = w->priv_depth - 1;
    return (w->priv_kind[d / 8] >> (d % 8)) & 1;
}

static int pr__json_w_put(pr_json_writer *w, const void *p, size_t n) {
    if (pr_buf_append(w->priv_out, p, n) != PR_OK) return w->priv_err = PR_ENOMEM;
    return PR_OK;
}

/* Check that a value may come here, and write the comma before it. */
static int pr__json_w_before(pr_json_writer *w) {
    if (w->priv_err) return w->priv_err;
    if (w->priv_depth == 0) return (w->priv_state & PR__JSON_W_DONE) ? PR_ESTATE : PR_OK;
    if (pr__json_w_is_obj(w)) return (w->priv_state & PR__JSON_W_KEY) ? PR_OK : PR_ESTATE;
    return (w->priv_state & PR__JSON_W_HAS) ? pr__json_w_put(w, ",", 1) : PR_OK;
}

static void pr__json_w_after(pr_json_writer *w) {
    w->priv_state = w->priv_depth == 0 ? PR__JSON_W_DONE : PR__JSON_W_HAS;
}

int pr_json_writer_finish(pr_json_writer *w) {
    if (w->priv_err) return w->priv_err;
    return w->priv_depth == 0 && (w->priv_state & PR__JSON_W_DONE) ? PR_OK : PR_ESTATE;
}

static int pr__json_w_begin(pr_json_writer *w, int is_obj) {
    unsigned d = w->priv_depth;
    int rc = w->priv_err;
    if (rc) return rc;
    if (d >= PR_JSON_WRITER_MAX_DEPTH) return PR_ELIMIT;
    if ((rc = pr__json_w_before(w)) != 0) return rc;
    if ((rc = pr__json_w_put(w, is_obj ? "{" : "[", 1)) != 0) return rc;
    if (is_obj) w->priv_kind[d / 8] = (unsigned char)(w->priv_kind[d / 8] | (1u << (d % 8)));
    else w->priv_kind[d / 8] = (unsigned char)(w->priv_kind[d / 8] & ~(1u << (d % 8)));
    w->priv_depth = d + 1;
    w->priv_state = 0;
    return PR_OK;
}

static int pr__json_w_end(pr_json_writer *w, int is_obj) {
    int rc;
    if (w->priv_err) return w->priv_err;
    if (w->priv_depth == 0 || pr__json_w_is_obj(w) != is_obj || (w->priv_state & PR__JSON_W_KEY)) return PR_ESTATE;
    if ((rc = pr__json_w_put(w, is_obj ? "}" : "]", 1)) != 0) return rc;
    w->priv_depth--;
    pr__json_w_after(w);
    return PR_OK;
}

int pr_json_begin_object(pr_json_writer *w) { return pr__json_w_begin(w, 1); }
int pr_json_end_object(pr_json_writer *w) { return pr__json_w_end(w, 1); }
int pr_json_begin_array(pr_json_writer *w) { return pr__json_w_begin(w, 0); }
int pr_json_end_array(pr_json_writer *w) { return pr__json_w_end(w, 0); }

/* Append str quoted and escaped; it is valid UTF-8 (the callers check that
   before they write anything). */
static int pr__json_w_str(pr_json_writer *w, const char *str, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str, *e = s + len, *run, *q;
    if (pr_buf_reserve(w->priv_out, len + 2) != PR_OK) return w->priv_err = PR_ENOMEM;
    if (pr__json_w_put(w, "\"", 1)) return PR_ENOMEM;
    for (run = q = s; q < e; q++) {
        unsigned c = *q;
        char esc[6];
        size_t n = 2;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (q > run && pr__json_w_put(w, run, (size_t)(q - run))) return PR_ENOMEM;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            n = 6;
        }
        if (pr__json_w_put(w, esc, n)) return PR_ENOMEM;
        run = q + 1;
    }
    if (q > run && pr__json_w_put(w, run, (size_t)(q - run))) return PR_ENOMEM;
    return pr__json_w_put(w, "\"", 1);
}

int pr_json_key(pr_json_writer *w, const char *key, size_t len) {
    int rc;
    const unsigned char *q, *e;
    if (w->priv_err) return w->priv_err;
    if (w->priv_depth == 0 || !pr__json_w_is_obj(w) || (w->priv_state & PR__JSON_W_KEY)) return PR_ESTATE;
    if (!key && len) return PR_EINVAL;
    for (q = (const unsigned char *)key, e = q + len; q < e;) {
        size_t n = *q < 0x80 ? 1 : pr__json_utf8_len(q, e);
        if (!n) return PR_EINVAL;
        q += n;
    }
    if ((w->priv_state & PR__JSON_W_HAS) && (rc = pr__json_w_put(w, ",", 1)) != 0) return rc;
    if ((rc = pr__json_w_str(w, key ? key : "", len)) != 0) return rc;
    if ((rc = pr__json_w_put(w, ":", 1)) != 0) return rc;
    w->priv_state |= PR__JSON_W_KEY;
    return PR_OK;
}

int pr_json_write_string(pr_json_writer *w, const char *s, size_t len) {
    int rc;
    const unsigned char *q, *e;
    if (w->priv_err) return w->priv_err;
    if (!s && len) return PR_EINVAL;
    for (q = (const unsigned char *)s, e = q + len; q < e;) {
        size_t n = *q < 0x80 ? 1 : pr__json_utf8_len(q, e);
        if (!n) return PR_EINVAL;
        q += n;
    }
    if ((rc = pr__json_w_before(w)) != 0) return rc;
    if ((rc = pr__json_w_str(w, s ? s : "", len)) != 0) return rc;
    pr__json_w_after(w);
    return PR_OK;
}

static int pr__json_w_token(pr_json_writer *w, const char *t, size_t n) {
    int rc;
    if ((rc = pr__json_w_before(w)) != 0) return rc;
    if ((rc = pr__json_w_put(w, t, n)) != 0) return rc;
    pr__json_w_after(w);
    return PR_OK;
}

int pr_json_write_int(pr_json_writer *w, int64_t v) {
    char buf[24], *p = buf + sizeof buf;
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + m % 10);
        m /= 10;
    } while (m);
    if (v < 0) *--p = '-';
    return pr__json_w_token(w, p, (size_t)(buf + sizeof buf - p));
}

/* Shortest %.15g/%.16g/%.17g form of d that reads back as d; returns its length. */
static size_t pr__json_fmt_double(double d, char *buf, size_t cap) {
    int prec, n = 0, i, plain;
    for (prec = 15; prec <= 17; prec++) {
        pr_json back;
        const unsigned char *stop;
        n = snprintf(buf, cap, "%.*g", prec, d);
        for (i = 0; i < n; i++)
            if (buf[i] == ',') buf[i] = '.'; /* a locale's decimal comma */
        if (prec == 17) break;
        if (pr__json_number((const unsigned char *)buf, (const unsigned char *)buf + n, &stop, &back) == PR_OK &&
            stop == (const unsigned char *)buf + n &&
            ((back.tag & PR__JSON_INT) ? (double)back.u.i : back.u.d) == d)
            break;
    }
    for (plain = 1, i = 0; i < n; i++)
        if (buf[i] == '.' || buf[i] == 'e') plain = 0;
    if (plain) buf[n++] = '.', buf[n++] = '0', buf[n] = 0;
    return (size_t)n;
}

int pr_json_write_double(pr_json_writer *w, double v) {
    char buf[40];
    if (w->priv_err) return w->priv_err;
    if (v != v || v > 1.7976931348623157e308 || v < -1.7976931348623157e308) return PR_EINVAL;
    return pr__json_w_token(w, buf, pr__json_fmt_double(v, buf, sizeof buf - 4));
}

int pr_json_write_bool(pr_json_writer *w, int v) {
    return v ? pr__json_w_token(w, "true", 4) : pr__json_w_token(w, "false", 5);
}

int pr_json_write_null(pr_json_writer *w) { return pr__json_w_token(w, "null", 4); }

static int pr__json_w_scalar(pr_json_writer *w, const pr_json *v) {
    switch (PR__JSON_TYPE(v)) {
    case PR_JSON_NULL: return pr_json_write_null(w);
    case PR_JSON_FALSE: return pr_json_write_bool(w, 0);
    case PR_JSON_TRUE: return pr_json_write_bool(w, 1);
    case PR_JSON_STRING: return pr_json_write_string(w, v->u.s, v->len);
    case PR_JSON_NUMBER:
        return (v->tag & PR__JSON_INT) ? pr_json_write_int(w, v->u.i) : pr_json_write_double(w, v->u.d);
    default: return PR_EINVAL;
    }
}

typedef struct pr__json_wframe {
    const pr_json *cur, *end;
} pr__json_wframe;

int pr_json_write_value(pr_json_writer *w, const pr_json *v) {
    pr__json_wframe *st = NULL;
    size_t n = 0, cap = 0;
    int rc = PR_OK;
    if (!v) return PR_EINVAL;
    for (;;) {
        int t = PR__JSON_TYPE(v);
        if (t == PR_JSON_ARRAY || t == PR_JSON_OBJECT) {
            if ((rc = pr__json_w_begin(w, t == PR_JSON_OBJECT)) != 0) break;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                pr__json_wframe *ns = (pr__json_wframe *)pr__realloc(st, cap * sizeof *st, ncap * sizeof *st);
                if (!ns) {
                    rc = w->priv_err = PR_ENOMEM;
                    break;
                }
                st = ns;
                cap = ncap;
            }
            st[n].cur = v->u.kids;
            st[n].end = v->u.kids ? v->u.kids + (size_t)v->len * (t == PR_JSON_OBJECT ? 2u : 1u) : NULL;
            n++;
        } else if ((rc = pr__json_w_scalar(w, v)) != 0) {
            break;
        }
        /* the next value, closing finished containers */
        while (n && st[n - 1].cur == st[n - 1].end) {
            if ((rc = pr__json_w_end(w, pr__json_w_is_obj(w))) != 0) break;
            n--;
        }
        if (rc || !n) break;
        if (pr__json_w_is_obj(w)) {
            const pr_json *k = st[n - 1].cur;
            if ((rc = pr_json_key(w, k->u.s, k->len)) != 0) break;
            v = k + 1;
            st[n - 1].cur += 2;
        } else {
            v = st[n - 1].cur++;
        }
    }
    if (st) pr__free(st, cap * sizeof *st);
    return rc;
}

int pr_json_to_buf(const pr_json *v, pr_buf *out) {
    pr_json_writer w;
    size_t len0;
    int rc;
    if (!v || !out) return PR_EINVAL;
    len0 = out->len;
    pr_json_writer_init(&w, out);
    rc = pr_json_write_value(&w, v);
    if (rc == PR_OK) rc = pr_json_writer_finish(&w);
    if (rc != PR_OK && out->data) {
        out->len = len0;
        out->data[len0] = 0;
    }
    return rc;
}
