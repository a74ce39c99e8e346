// @pristine:module buf - growable byte buffers, slices, checked number parsing, case-insensitive compare
// @pristine:public
/*
 * buf: a pr_buf is a growable byte buffer owned by its user (init/deinit,
 * no allocation until the first append; data stays NUL-terminated once
 * allocated). A pr_slice is a borrowed view (pointer + length) that is
 * valid as long as the bytes it points into. Number parsing is strict and
 * checked: no sign where none is allowed, no spaces, overflow is an error.
 *
 * Offers to the modules after it: pr__buf_ascii_lower, pr__buf_dec,
 *     pr__buf_utf8_seq.
 */

/* A borrowed view of bytes; not NUL-terminated in general. */
typedef struct pr_slice {
    const char *ptr;
    size_t len;
} pr_slice;

/* A growable byte buffer. Zero-initialised is a valid empty buffer. */
typedef struct pr_buf {
    char *data;  /* NULL until the first growth; then always NUL-terminated */
    size_t len;  /* bytes in use, excluding the terminator */
    size_t cap;  /* bytes allocated */
} pr_buf;

/* Make b an empty buffer (no allocation).
   Params: b - caller-allocated buffer.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_buf_deinit. */
PRISTINE_API void pr_buf_init(pr_buf *b);

/* Release b's memory and leave it empty and reusable.
   Params: b - a buffer; NULL is a no-op.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_buf_init. */
PRISTINE_API void pr_buf_deinit(pr_buf *b);

/* Make room for at least extra more bytes (plus the terminator).
   Params: b - the buffer; extra - bytes wanted beyond len.
   Returns: PR_OK; PR_ENOMEM on allocation failure or size overflow (b is
            unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_buf_append. */
PRISTINE_API int pr_buf_reserve(pr_buf *b, size_t extra);

/* Append n bytes.
   Params: b - the buffer; p - the bytes (may be NULL when n is 0); n - count.
   Returns: PR_OK; PR_ENOMEM (b is unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_buf_append_str, pr_buf_printf. */
PRISTINE_API int pr_buf_append(pr_buf *b, const void *p, size_t n);

/* Append a NUL-terminated string (without its terminator).
   Params: b - the buffer; s - the string.
   Returns: PR_OK; PR_ENOMEM (b is unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_buf_append. */
PRISTINE_API int pr_buf_append_str(pr_buf *b, const char *s);

/* Append printf-formatted text.
   Params: b - the buffer; fmt, ... - as for printf.
   Returns: PR_OK; PR_ENOMEM (b is unchanged); PR_EINVAL on a format error.
   Blocks: no.
   Thread: owner.
   See: pr_buf_append. */
PRISTINE_API int pr_buf_printf(pr_buf *b, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Drop the first n bytes (all of them if n >= len), keeping the memory.
   Params: b - the buffer; n - bytes to drop.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_buf_clear. */
PRISTINE_API void pr_buf_consume(pr_buf *b, size_t n);

/* Set len to 0, keeping the memory.
   Params: b - the buffer.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_buf_consume. */
PRISTINE_API void pr_buf_clear(pr_buf *b);

/* A slice over a NUL-terminated string (NULL gives an empty slice).
   Params: s - the string.
   Returns: the slice.
   Blocks: no.
   Thread: any.
   See: pr_slice_eq. */
PRISTINE_API pr_slice pr_slice_cstr(const char *s);

/* Byte-wise equality.
   Params: a, b - slices.
   Returns: 1 if equal, 0 if not.
   Blocks: no.
   Thread: any.
   See: pr_slice_ieq. */
PRISTINE_API int pr_slice_eq(pr_slice a, pr_slice b);

/* ASCII case-insensitive equality (header names, schemes); bytes >= 0x80
   compare exactly.
   Params: a, b - slices.
   Returns: 1 if equal ignoring ASCII case, 0 if not.
   Blocks: no.
   Thread: any.
   See: pr_ascii_icmp. */
PRISTINE_API int pr_slice_ieq(pr_slice a, pr_slice b);

/* ASCII case-insensitive three-way compare (A-Z folded to a-z).
   Params: a, b - slices.
   Returns: <0, 0 or >0 as a sorts before, equal to or after b.
   Blocks: no.
   Thread: any.
   See: pr_slice_ieq. */
PRISTINE_API int pr_ascii_icmp(pr_slice a, pr_slice b);

/* The slice without leading and trailing spaces and tabs (HTTP OWS).
   Params: s - a slice.
   Returns: the trimmed slice (a view into s).
   Blocks: no.
   Thread: any.
   See: pr_slice_cstr. */
PRISTINE_API pr_slice pr_slice_trim(pr_slice s);

/* Parse a whole slice as a decimal signed integer: an optional '-' or '+',
   then one or more ASCII digits, nothing else.
   Params: s - the text; out - receives the value (untouched on error).
   Returns: PR_OK; PR_EINVAL for empty text or a stray byte; PR_ELIMIT
            when the value does not fit in int64_t.
   Blocks: no.
   Thread: any.
   See: pr_parse_u64. */
PRISTINE_API int pr_parse_i64(pr_slice s, int64_t *out);

/* Parse a whole slice as a decimal unsigned integer: one or more ASCII
   digits, nothing else (no sign, no spaces).
   Params: s - the text; out - receives the value (untouched on error).
   Returns: PR_OK; PR_EINVAL for empty text or a stray byte; PR_ELIMIT
            when the value does not fit in uint64_t.
   Blocks: no.
   Thread: any.
   See: pr_parse_i64. */
PRISTINE_API int pr_parse_u64(pr_slice s, uint64_t *out);

// @pristine:impl
/* v in decimal into out (room for 20 digits, no terminator); returns the length. */
static PR__MAYBE_UNUSED size_t pr__buf_dec(char *out, uint64_t v) {
    char t[20];
    size_t n = 0, i;
    do t[n++] = (char)('0' + v % 10); while ((v /= 10) != 0);
    for (i = 0; i < n; i++) out[i] = t[n - 1 - i];
    return n;
}

void pr_buf_init(pr_buf *b) {
    b->data = NULL;
    b->len = b->cap = 0;
}

void pr_buf_deinit(pr_buf *b) {
    if (!b) return;
    pr__free(b->data, b->cap);
    pr_buf_init(b);
}

int pr_buf_reserve(pr_buf *b, size_t extra) {
    size_t need, cap;
    char *p;
    if (extra > SIZE_MAX - 1 - b->len) return PR_ENOMEM;
    need = b->len + extra + 1;
    if (need <= b->cap) return PR_OK;
    cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = (char *)pr__realloc(b->data, b->cap, cap);
    if (!p) return PR_ENOMEM;
    if (!b->data) p[0] = 0;
    b->data = p;
    b->cap = cap;
    return PR_OK;
}

int pr_buf_append(pr_buf *b, const void *p, size_t n) {
    int rc = pr_buf_reserve(b, n);
    if (rc) return rc;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return PR_OK;
}

int pr_buf_append_str(pr_buf *b, const char *s) { return pr_buf_append(b, s, strlen(s)); }

int pr_buf_printf(pr_buf *b, const char *fmt, ...) {
    va_list ap;
    int n, rc;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return PR_EINVAL;
    if ((rc = pr_buf_reserve(b, (size_t)n)) != 0) return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return PR_OK;
}

void pr_buf_consume(pr_buf *b, size_t n) {
    if (n >= b->len) {
        pr_buf_clear(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = 0;
}

void pr_buf_clear(pr_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = 0;
}

pr_slice pr_slice_cstr(const char *s) {
    pr_slice r;
    r.ptr = s ? s : "";
    r.len = s ? strlen(s) : 0;
    return r;
}

int pr_slice_eq(pr_slice a, pr_slice b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int pr__buf_ascii_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

int pr_ascii_icmp(pr_slice a, pr_slice b) {
    size_t i, n = PR__MIN(a.len, b.len);
    for (i = 0; i < n; i++) {
        int x, y;
        if (a.ptr[i] == b.ptr[i]) continue;
        x = pr__buf_ascii_lower((unsigned char)a.ptr[i]);
        y = pr__buf_ascii_lower((unsigned char)b.ptr[i]);
        if (x != y) return x - y;
    }
    return a.len < b.len ? -1 : a.len > b.len;
}

int pr_slice_ieq(pr_slice a, pr_slice b) { return a.len == b.len && pr_ascii_icmp(a, b) == 0; }

pr_slice pr_slice_trim(pr_slice s) {
    while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) s.ptr++, s.len--;
    while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t')) s.len--;
    return s;
}

/* UTF-8 as the WHATWG decoder reads it: s has n >= 1 bytes. Returns the
   length (1-4) of the valid sequence at s, or -k when its first k bytes form
   one maximal invalid subpart (each such subpart becomes one U+FFFD). */
static PR__MAYBE_UNUSED int pr__buf_utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    int need, k;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        else if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F;
    } else
        return -1;
    for (k = 1; k <= need; k++) {
        if ((size_t)k >= n || s[k] < lo || s[k] > hi) return -k;
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

/* Digits of s into *out; limit is the largest magnitude allowed. */
static int pr__buf_parse_digits(pr_slice s, uint64_t limit, uint64_t *out) {
    uint64_t v = 0;
    size_t i;
    if (s.len == 0) return PR_EINVAL;
    for (i = 0; i < s.len; i++)
        if (s.ptr[i] < '0' || s.ptr[i] > '9') return PR_EINVAL;
    for (i = 0; i < s.len; i++) {
        unsigned d = (unsigned)(s.ptr[i] - '0');
        if (v > (limit - d) / 10) return PR_ELIMIT;
        v = v * 10 + d;
    }
    *out = v;
    return PR_OK;
}

int pr_parse_u64(pr_slice s, uint64_t *out) {
    uint64_t v;
    int rc = pr__buf_parse_digits(s, UINT64_MAX, &v);
    if (rc == PR_OK) *out = v;
    return rc;
}

int pr_parse_i64(pr_slice s, int64_t *out) {
    int neg = 0, rc;
    uint64_t v;
    if (s.len && (s.ptr[0] == '-' || s.ptr[0] == '+')) {
        neg = s.ptr[0] == '-';
        s.ptr++, s.len--;
    }
    rc = pr__buf_parse_digits(s, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &v);
    if (rc) return rc;
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return PR_OK;
}
