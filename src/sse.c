// @pristine:module sse - Server-Sent Events decoder (pure; no I/O)
// @pristine:public
/*
 * sse: a byte-in, event-out decoder for the text/event-stream format,
 * following the WHATWG HTML standard's parsing rules: UTF-8 with one leading
 * BOM stripped per connection, CR / LF / CRLF line ends (a CR ends its line
 * at once, also at the end of a chunk), comments, `event`, `data`, `id`,
 * `retry`, dispatch on a blank line, the unterminated block dropped at the
 * end of the stream. It does no I/O; it is what a reconnecting EventSource
 * client feeds the bytes of each connection into.
 *
 * Use: pr_sse_decoder_create, then for every chunk of the body:
 *
 *     pr_sse_decoder_feed(d, bytes, n);
 *     while ((rc = pr_sse_decoder_next(d, &ev)) != PR_SSE_DECODER_MORE) {
 *         if (rc == PR_OK) handle(&ev);
 *         else if (rc == PR_ELIMIT) pr_sse_decoder_skip(d);   (say so, then go on)
 *         else break;                                        (PR_ENOMEM: retry later)
 *     }
 *
 * At the end of the body pr_sse_decoder_finish(d) and the same loop until
 * next returns PR_ECLOSED; pr_sse_decoder_reset(d) before the next
 * connection. A loop that stops at PR_ELIMIT without the skip leaves the
 * chunk unread, so the next feed is PR_ESTATE. pr_sse_open / pr_sse_next
 * (module eventsource) run this loop over a reconnecting connection.
 *
 * Lifetime: the decoder borrows each fed chunk until next returns
 * PR_SSE_DECODER_MORE (or PR_ECLOSED, or reset/destroy): keep those bytes
 * unchanged until then. An event's strings are views into the chunk or the
 * decoder's own buffers, valid until the next call on the decoder. Values
 * may contain U+0000 (data, type), so use the lengths.
 *
 * Ids: an event carries both views: the block's own
 * `id` (absent / empty / set) and the stream's last-event-ID at dispatch.
 * pr_sse_decoder_last_id is what to send as Last-Event-ID on reconnect; it
 * also sees blocks that carry only `id:` and so dispatch no event.
 */

/* pr_sse_decoder_next: no complete event in the bytes fed so far. Positive,
   so it is never mistaken for an error code. */
#define PR_SSE_DECODER_MORE 1

/* pr_sse_event.id_state: did the event's block carry an accepted `id`? */
enum pr_sse_id_state {
    PR_SSE_ID_ABSENT = 0, /* no `id` field (id is NULL) */
    PR_SSE_ID_EMPTY = 1,  /* `id` with an empty value: the block cleared it */
    PR_SSE_ID_SET = 2     /* `id` with a non-empty value */
};

/* Decoder options; NULL or all zero means defaults. */
typedef struct pr_sse_decoder_opts {
    size_t max_line_bytes;  /* 0 = 1 MiB; SIZE_MAX = no limit. One line, without its terminator */
    size_t max_event_bytes; /* 0 = 16 MiB; SIZE_MAX = no limit. One event's joined data */
    int raw_bytes;          /* 0 = invalid UTF-8 becomes U+FFFD (spec R1); 1 = bytes pass unchanged */
} pr_sse_decoder_opts;

/* One dispatched event. The strings are valid until the next call on the
   decoder. type, id and last_id are NUL-terminated; data is not in general
   (it may point into the fed chunk): use data_len. */
typedef struct pr_sse_event {
    const char *type;     /* the `event` field, or "message" when absent/empty */
    size_t type_len;
    const char *data;     /* `data` lines joined with LF, never NULL */
    size_t data_len;
    int id_state;         /* PR_SSE_ID_ABSENT, PR_SSE_ID_EMPTY or PR_SSE_ID_SET */
    const char *id;       /* the block's own id: NULL when absent, "" when empty */
    size_t id_len;
    const char *last_id;  /* the stream's last-event-ID at dispatch; never NULL, may be "" */
    size_t last_id_len;
    int64_t retry_ms;     /* this block's own last valid `retry`, or -1 when the block had none */
    int64_t stream_retry_ms; /* the stream's reconnection time at dispatch: the latest valid `retry`
                                of the stream (-1 until one came; pr_sse_next puts the stream's
                                time in use there, its initial one until a `retry` arrives) */
} pr_sse_event;

/* An SSE decoder (opaque). Owned by one thread. */
typedef struct pr_sse_decoder pr_sse_decoder;

/* Create a decoder.
   Params: out - receives the decoder (NULL on failure); opts - options, or
           NULL for defaults (copied).
   Returns: PR_OK; PR_EINVAL if out is NULL; PR_ENOMEM.
   Blocks: no.
   Thread: any (the decoder then belongs to the calling thread).
   See: pr_sse_decoder_destroy, pr_sse_decoder_feed. */
PRISTINE_API int pr_sse_decoder_create(pr_sse_decoder **out, const pr_sse_decoder_opts *opts);

/* Destroy a decoder and everything it owns.
   Params: d - a decoder; NULL is a no-op.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_sse_decoder_create. */
PRISTINE_API void pr_sse_decoder_destroy(pr_sse_decoder *d);

/* Hand the decoder the next chunk of the response body (any split works,
   one byte at a time included). The bytes are borrowed, not copied: keep
   them unchanged until pr_sse_decoder_next returns PR_SSE_DECODER_MORE.
   Params: d - the decoder; bytes - the chunk (may be NULL when n is 0);
           n - its length.
   Returns: PR_OK; PR_EINVAL if d is NULL or bytes is NULL with n > 0;
            PR_ESTATE if the previous chunk is not fully read yet (call
            next until PR_SSE_DECODER_MORE first) or after
            pr_sse_decoder_finish; PR_ENOMEM (nothing was taken; the call may be repeated).
   Blocks: no.
   Thread: owner.
   See: pr_sse_decoder_next, pr_sse_decoder_finish. */
PRISTINE_API int pr_sse_decoder_feed(pr_sse_decoder *d, const char *bytes, size_t n);

/* Decode up to the next event. Lines are processed as they complete, so
   `retry` and id-only blocks take effect even when no event follows.
   Params: d - the decoder; ev - receives the event when PR_OK is returned;
           its strings stay valid until the next call on d.
   Returns: PR_OK (an event); PR_SSE_DECODER_MORE (all fed bytes are used:
            feed the next chunk); PR_ECLOSED (after pr_sse_decoder_finish, once the
            fed bytes are used; the unterminated block was dropped);
            PR_ELIMIT (a line or an event exceeded its limit; the block was
            dropped; returned again until pr_sse_decoder_skip or
            pr_sse_decoder_reset); PR_EINVAL if d or ev is NULL; PR_ENOMEM
            (nothing was lost; the call may be repeated).
   Blocks: no.
   Thread: owner.
   See: pr_sse_decoder_feed, pr_sse_decoder_skip. */
PRISTINE_API int pr_sse_decoder_next(pr_sse_decoder *d, pr_sse_event *ev);

/* Mark the end of the body: once the fed bytes are used, next drops the
   incomplete line and block (its `id` never reaches the last-event-ID)
   and returns PR_ECLOSED.
   Params: d - the decoder.
   Returns: PR_OK; PR_EINVAL if d is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_sse_decoder_reset. */
PRISTINE_API int pr_sse_decoder_finish(pr_sse_decoder *d);

/* After PR_ELIMIT, go on with the same stream: the rest of the offending
   block is skipped up to its blank line, then decoding resumes (the fed
   chunk stays in use). Lines inside the skipped part have no effect.
   Params: d - the decoder.
   Returns: PR_OK; PR_EINVAL if d is NULL; PR_ESTATE if the last result was
            not PR_ELIMIT.
   Blocks: no.
   Thread: owner.
   See: pr_sse_decoder_next, pr_sse_decoder_reset. */
PRISTINE_API int pr_sse_decoder_skip(pr_sse_decoder *d);

/* Prepare for a new connection (also the way out of PR_ELIMIT when the
   connection is dropped): forgets the fed chunk, the partial line and block,
   the end-of-stream mark and any limit error; the next byte is a stream start
   again (one BOM is stripped). Keeps the last-event-ID (seeding the new
   parse with it, as a reconnect that sent Last-Event-ID should) and the
   retry time.
   Params: d - the decoder.
   Returns: PR_OK; PR_EINVAL if d is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_sse_decoder_set_last_id, pr_sse_decoder_skip. */
PRISTINE_API int pr_sse_decoder_reset(pr_sse_decoder *d);

/* Seed the stream's last-event-ID (resume), before the first byte of a
   connection: after create, reset, or finish.
   Params: d - the decoder; id - the id bytes (may be NULL when len is 0),
           copied; len - their length.
   Returns: PR_OK; PR_EINVAL if d is NULL, id is NULL with len > 0, or id
            contains NUL, CR or LF or is not valid UTF-8; PR_ESTATE if bytes
            were fed since create/reset and finish was not called;
            PR_ENOMEM (the old id is kept).
   Blocks: no.
   Thread: owner.
   See: pr_sse_decoder_last_id. */
PRISTINE_API int pr_sse_decoder_set_last_id(pr_sse_decoder *d, const char *id, size_t len);

/* The stream's last-event-ID: what to send as Last-Event-ID on reconnect
   (empty means send none). Moved by every dispatched block with an `id`,
   including blocks that dispatch no event.
   Params: d - the decoder; len - receives the length (may be NULL).
   Returns: a NUL-terminated string, never NULL, valid until the next call
            that changes it; "" if d is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_sse_decoder_set_last_id, pr_sse_event. */
PRISTINE_API const char *pr_sse_decoder_last_id(const pr_sse_decoder *d, size_t *len);

/* The stream's reconnection time set by `retry` (digits only; saturates at
   INT64_MAX), effective as soon as its line ends.
   Params: d - the decoder.
   Returns: milliseconds, or -1 if no valid `retry` was seen (or d is NULL).
   Blocks: no.
   Thread: owner.
   See: pr_sse_event. */
PRISTINE_API int64_t pr_sse_decoder_retry_ms(const pr_sse_decoder *d);

/* Parse an event's data as one JSON text (pr_json_parse).
   Params: ev - the event (read during the call only); out - receives the
           document, which owns its values (destroy it with
           pr_json_doc_destroy; NULL on failure); opts - JSON limits, NULL
           for defaults; err - receives the failure's code, byte offset in
           ev->data, line, column and message; may be NULL.
   Returns: PR_OK; PR_EPROTO when the data is empty (offset 0, "empty event
            data") or is not valid JSON; PR_ELIMIT when a JSON limit is
            exceeded; PR_ENOMEM; PR_EINVAL if ev or out is NULL.
   Blocks: no.
   Thread: any.
   See: pr_json_parse, pr_json_doc_destroy. */
PRISTINE_API int pr_sse_event_json(const pr_sse_event *ev, pr_json_doc **out, const pr_json_opts *opts,
                                   pr_json_error *err);

// @pristine:impl
#define PR__SSE_DEF_MAX_LINE ((size_t)1 << 20)
#define PR__SSE_DEF_MAX_EVENT ((size_t)16 << 20)
#define PR__SSE_HI ((uint64_t)0x8080808080808080ull)

#ifdef PRISTINE_TESTING
/* Bytes the decoder examined or copied (line scans, value checks, copies),
   so a fuzzer can check the work per input byte stays bounded. */
static size_t pr__sse_test_work;
#define PR__SSE_WORK(n) (pr__sse_test_work += (size_t)(n))
#else
#define PR__SSE_WORK(n) ((void)0)
#endif

/* A private growable buffer: sized frees, NUL kept after len once allocated. */
typedef struct pr__sse_buf {
    char *p;
    size_t len, cap;
} pr__sse_buf;

struct pr_sse_decoder {
    size_t max_line, max_event;
    int raw;
    /* the borrowed chunk */
    const char *src;
    size_t src_len, src_pos;
    size_t lf_at, cr_at; /* next LF / CR at or after src_pos (src_len: none) */
    int lf_ok, cr_ok;    /* lf_at / cr_at computed for this chunk */
    size_t hi_at;        /* next byte >= 0x80 at or after the last scan start (src_len: none) */
    int hi_ok;           /* hi_at computed for this chunk */
    int cr_pending;      /* the last line ended with a CR: swallow one LF */
    int bom;             /* 0..2 BOM bytes matched so far (kept in line); 3 = decided */
    int eof, err, skipping, skip_midline, fed_any;
    pr__sse_buf line;    /* a partial line carried across chunks */
    /* the block being built */
    size_t data_lines;   /* `data` lines seen; 0 = empty data buffer */
    int data_is_view;    /* data is data_view (in the chunk), else data.p + data_off */
    const char *data_view;
    size_t data_view_len, data_off;
    pr__sse_buf data;
    pr__sse_buf type;    /* event-type buffer; len 0 = "message" */
    pr__sse_buf idb;     /* the block's id, meaningful while block_id */
    int block_id;        /* the block set the last-event-ID buffer */
    int64_t block_retry;
    /* stream state */
    pr__sse_buf last;    /* last-event-ID string */
    int64_t retry;
};

static void pr__sse_buf_free(pr__sse_buf *b) {
    pr__free(b->p, b->cap);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Make room for need bytes plus a NUL. Content up to len is kept. */
static int pr__sse_reserve(pr__sse_buf *b, size_t need) {
    size_t cap;
    char *q;
    if (need < b->cap) return PR_OK;
    if (need >= SIZE_MAX / 2) return PR_ENOMEM;
    cap = b->cap ? b->cap : 64;
    while (cap <= need) cap *= 2;
    q = (char *)pr__realloc(b->p, b->cap, cap);
    if (!q) return PR_ENOMEM;
    b->p = q;
    b->cap = cap;
    return PR_OK;
}

static int pr__sse_append(pr__sse_buf *b, const char *s, size_t n) {
    PR__SSE_WORK(n);
    if (b->len + n >= b->cap && pr__sse_reserve(b, b->len + n)) return PR_ENOMEM;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return PR_OK;
}

/* ---- UTF-8 (WHATWG decode, maximal-subpart replacement) ---- */

static int pr__sse_ascii8(const unsigned char *s) {
    uint64_t w;
    memcpy(&w, s, 8);
    return (w & PR__SSE_HI) == 0;
}

/* Is p[0..n) valid UTF-8? ASCII runs go 32 / 8 bytes at a time. */
static int pr__sse_utf8_ok(const char *p, size_t n) {
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    PR__SSE_WORK(n);
    while (i + 32 <= n) {
        uint64_t a, b, c, e;
        memcpy(&a, s + i, 8);
        memcpy(&b, s + i + 8, 8);
        memcpy(&c, s + i + 16, 8);
        memcpy(&e, s + i + 24, 8);
        if ((a | b | c | e) & PR__SSE_HI) break;
        i += 32;
    }
    while (i < n) {
        int k;
        if (s[i] < 0x80) {
            if (i + 8 <= n && pr__sse_ascii8(s + i)) i += 8;
            else i++;
            continue;
        }
        k = pr__buf_utf8_seq(s + i, n - i);
        if (k < 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

/* Length of the ASCII prefix of p[0..n), 64 bytes per step. */
static size_t pr__sse_ascii_prefix(const char *p, size_t n) {
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    while (i + 64 <= n) {
        uint64_t a, b, c, e, f, g, h, k;
        memcpy(&a, s + i, 8);
        memcpy(&b, s + i + 8, 8);
        memcpy(&c, s + i + 16, 8);
        memcpy(&e, s + i + 24, 8);
        memcpy(&f, s + i + 32, 8);
        memcpy(&g, s + i + 40, 8);
        memcpy(&h, s + i + 48, 8);
        memcpy(&k, s + i + 56, 8);
        if (((a | b) | (c | e) | (f | g) | (h | k)) & PR__SSE_HI) break;
        i += 64;
    }
    while (i + 8 <= n && pr__sse_ascii8(s + i)) i += 8;
    while (i < n && s[i] < 0x80) i++;
    PR__SSE_WORK(i + 1);
    return i;
}

/* Write p[0..n) to dst with every maximal invalid subpart replaced by
   U+FFFD; dst needs room for 3 * n bytes. Returns the bytes written. */
static size_t pr__sse_utf8_repair(char *dst, const char *p, size_t n) {
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0, o = 0;
    PR__SSE_WORK(n);
    while (i < n) {
        int k;
        if (s[i] < 0x80) {
            dst[o++] = (char)s[i++];
            continue;
        }
        k = pr__buf_utf8_seq(s + i, n - i);
        if (k > 0) {
            memcpy(dst + o, s + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        } else {
            dst[o++] = (char)0xEF;
            dst[o++] = (char)0xBF;
            dst[o++] = (char)0xBD;
            i += (size_t)-k;
        }
    }
    return o;
}

/* Is the value v[0..n) to be taken as is (raw mode or valid UTF-8)? Values
   inside the chunk use the chunk's cached position of the next non-ASCII
   byte, so ASCII streams are scanned once per chunk, not once per line. */
static int pr__sse_valid(pr_sse_decoder *d, const char *v, size_t n, int in_chunk) {
    if (d->raw) return 1;
    if (in_chunk) {
        size_t off = (size_t)(v - d->src);
        if (!d->hi_ok || d->hi_at < off) {
            d->hi_at = off + pr__sse_ascii_prefix(v, d->src_len - off);
            d->hi_ok = 1;
        }
        if (d->hi_at >= off + n) return 1;
    }
    return pr__sse_utf8_ok(v, n);
}

/* Set b to the (repaired) value v. Nothing changes on PR_ENOMEM. */
static int pr__sse_set_value(pr_sse_decoder *d, pr__sse_buf *b, const char *v, size_t n, int in_chunk) {
    PR__SSE_WORK(n);
    if (pr__sse_valid(d, v, n, in_chunk)) {
        if (pr__sse_reserve(b, n)) return PR_ENOMEM;
        memcpy(b->p, v, n);
        b->len = n;
    } else {
        if (pr__sse_reserve(b, 3 * n)) return PR_ENOMEM;
        b->len = pr__sse_utf8_repair(b->p, v, n);
    }
    b->p[b->len] = 0;
    return PR_OK;
}

/* ---- block state ---- */

static void pr__sse_drop_block(pr_sse_decoder *d) {
    d->data_lines = 0;
    d->data_is_view = 0;
    d->data.len = 0;
    d->data_off = 0;
    d->type.len = 0;
    d->block_id = 0;
    d->block_retry = -1;
}

/* Copy a data view that points into the chunk into the decoder's buffer. */
static int pr__sse_pin(pr_sse_decoder *d) {
    if (!d->data_is_view) return PR_OK;
    if (pr__sse_reserve(&d->data, d->data_view_len)) return PR_ENOMEM;
    PR__SSE_WORK(d->data_view_len);
    memcpy(d->data.p, d->data_view, d->data_view_len);
    d->data.len = d->data_view_len;
    d->data.p[d->data.len] = 0;
    d->data_off = 0;
    d->data_is_view = 0;
    return PR_OK;
}

/* A limit was exceeded: drop the block; next reports PR_ELIMIT until skip. */
static int pr__sse_limit(pr_sse_decoder *d, int midline) {
    pr__sse_drop_block(d);
    d->err = PR_ELIMIT;
    d->skip_midline = midline;
    return PR_ELIMIT;
}

/* R10: the blank line. Returns 1 with *ev filled, 0 for no event. */
static int pr__sse_dispatch(pr_sse_decoder *d, pr_sse_event *ev) {
    int state = PR_SSE_ID_ABSENT;
    if (d->block_id) {
        if (pr__sse_reserve(&d->last, d->idb.len)) return PR_ENOMEM;
        PR__SSE_WORK(d->idb.len);
        memcpy(d->last.p, d->idb.p, d->idb.len);
        d->last.len = d->idb.len;
        d->last.p[d->last.len] = 0;
        d->block_id = 0;
        state = d->last.len ? PR_SSE_ID_SET : PR_SSE_ID_EMPTY;
    }
    if (d->data_lines == 0) {
        d->type.len = 0;
        d->block_retry = -1;
        return 0;
    }
    if (d->type.len) {
        ev->type = d->type.p;
        ev->type_len = d->type.len;
    } else {
        ev->type = "message";
        ev->type_len = 7;
    }
    if (d->data_is_view) {
        ev->data = d->data_view;
        ev->data_len = d->data_view_len;
    } else {
        ev->data = d->data.p + d->data_off;
        ev->data_len = d->data.len - d->data_off;
    }
    ev->last_id = d->last.p ? d->last.p : "";
    ev->last_id_len = d->last.len;
    ev->id_state = state;
    ev->id = state == PR_SSE_ID_ABSENT ? NULL : ev->last_id;
    ev->id_len = state == PR_SSE_ID_ABSENT ? 0 : d->last.len;
    ev->retry_ms = d->block_retry;
    ev->stream_retry_ms = d->retry;
    pr__sse_drop_block(d);
    return 1;
}

/* R6 for one value. from_line: v points into d->line (a carried line). */
static int pr__sse_data(pr_sse_decoder *d, const char *v, size_t n, int from_line) {
    int valid = pr__sse_valid(d, v, n, !from_line);
    size_t cur, w;
    if (d->data_lines == 0) {
        if (valid) {
            if (n > d->max_event) return pr__sse_limit(d, 0);
            if (from_line) { /* adopt the carried line: no copy */
                pr__sse_buf t = d->data;
                d->data_off = (size_t)(v - d->line.p);
                d->data = d->line;
                d->data.len = d->data_off + n;
                d->line = t;
                d->line.len = 0;
            } else {
                d->data_view = v;
                d->data_view_len = n;
                d->data_is_view = 1;
            }
        } else {
            if (pr__sse_reserve(&d->data, 3 * n)) return PR_ENOMEM;
            d->data_off = 0;
            d->data.len = pr__sse_utf8_repair(d->data.p, v, n);
            d->data.p[d->data.len] = 0;
            d->data_is_view = 0;
            if (d->data.len > d->max_event) return pr__sse_limit(d, 0);
        }
        d->data_lines = 1;
        return PR_OK;
    }
    cur = d->data_is_view ? d->data_view_len : d->data.len - d->data_off;
    if (cur + 1 + n > d->max_event) return pr__sse_limit(d, 0);
    if (d->data_is_view) {
        if (pr__sse_reserve(&d->data, cur + 1 + (valid ? n : 3 * n))) return PR_ENOMEM;
        memcpy(d->data.p, d->data_view, cur);
        PR__SSE_WORK(cur);
        d->data.len = cur;
        d->data_off = 0;
        d->data_is_view = 0;
    } else if (pr__sse_reserve(&d->data, d->data.len + 1 + (valid ? n : 3 * n)))
        return PR_ENOMEM;
    d->data.p[d->data.len] = '\n';
    if (valid) {
        memcpy(d->data.p + d->data.len + 1, v, n);
        PR__SSE_WORK(n);
        w = n;
    } else {
        w = pr__sse_utf8_repair(d->data.p + d->data.len + 1, v, n);
        if (cur + 1 + w > d->max_event) return pr__sse_limit(d, 0);
    }
    d->data.len += 1 + w;
    d->data.p[d->data.len] = 0;
    d->data_lines++;
    return PR_OK;
}

/* One complete line (R3-R10). Returns 1 (event in *ev), 0, or a PR_E code;
   on PR_ENOMEM nothing changed. */
static int pr__sse_line(pr_sse_decoder *d, const char *p, size_t n, int from_line, pr_sse_event *ev) {
    const char *colon, *v;
    size_t name, vn;
    PR__SSE_WORK(n + 1); /* the name's scan and the value's parse */
    if (n == 0) return pr__sse_dispatch(d, ev);
    if (p[0] == ':') return 0;
    if (n >= 5 && memcmp(p, "data:", 5) == 0) { /* the hot path */
        v = p + 5;
        vn = n - 5;
        if (vn && *v == ' ') v++, vn--;
        return pr__sse_data(d, v, vn, from_line);
    }
    colon = (const char *)memchr(p, ':', n);
    if (colon) {
        name = (size_t)(colon - p);
        v = colon + 1;
        vn = n - name - 1;
        if (vn && *v == ' ') v++, vn--;
    } else {
        name = n;
        v = p + n;
        vn = 0;
    }
    switch (name) {
    case 4:
        if (memcmp(p, "data", 4) == 0) return pr__sse_data(d, v, vn, from_line);
        return 0;
    case 2:
        if (p[0] != 'i' || p[1] != 'd' || (vn && memchr(v, 0, vn))) return 0;
        if (pr__sse_set_value(d, &d->idb, v, vn, !from_line)) return PR_ENOMEM;
        d->block_id = 1;
        return 0;
    case 5:
        if (memcmp(p, "event", 5) == 0) return pr__sse_set_value(d, &d->type, v, vn, !from_line) ? PR_ENOMEM : 0;
        if (memcmp(p, "retry", 5) == 0 && vn) {
            int64_t r = 0;
            size_t i;
            for (i = 0; i < vn; i++)
                if (v[i] < '0' || v[i] > '9') return 0;
            for (i = 0; i < vn; i++) {
                int dg = v[i] - '0';
                r = r > (INT64_MAX - dg) / 10 ? INT64_MAX : r * 10 + dg;
            }
            d->retry = d->block_retry = r;
        }
        return 0;
    default:
        return 0;
    }
}

/* Offset of the first CR or LF at or after pos in the chunk (src_len: none). */
static size_t pr__sse_eol(pr_sse_decoder *d, size_t pos) {
    const char *s = d->src, *q;
    size_t n = d->src_len - pos;
    if (n < 16) { /* short tails (one byte per feed): no calls */
        size_t i;
        for (i = pos; i < d->src_len; i++)
            if (s[i] == '\n' || s[i] == '\r') break;
        PR__SSE_WORK(i - pos + 1);
        return i;
    }
    if (!d->lf_ok || d->lf_at < pos) {
        q = (const char *)memchr(s + pos, '\n', n);
        d->lf_at = q ? (size_t)(q - s) : d->src_len;
        d->lf_ok = 1;
        PR__SSE_WORK(d->lf_at - pos + 1);
    }
    if (!d->cr_ok || d->cr_at < pos) {
        q = (const char *)memchr(s + pos, '\r', n);
        d->cr_at = q ? (size_t)(q - s) : d->src_len;
        d->cr_ok = 1;
        PR__SSE_WORK(d->cr_at - pos + 1);
    }
    return d->lf_at < d->cr_at ? d->lf_at : d->cr_at;
}

int pr_sse_decoder_next(pr_sse_decoder *d, pr_sse_event *ev) {
    static const unsigned char bom[3] = { 0xEF, 0xBB, 0xBF };
    if (!d || !ev) return PR_EINVAL;
    if (d->err) return d->err;
    for (;;) {
        const char *s = d->src;
        size_t pos = d->src_pos, len = d->src_len, e, next;
        int cr = 0, rc;
        if (pos >= len) {
            if (d->data_is_view && pr__sse_pin(d)) return PR_ENOMEM;
            if (!d->eof) return PR_SSE_DECODER_MORE;
            pr__sse_drop_block(d);
            d->line.len = 0;
            d->cr_pending = 0;
            d->skipping = d->skip_midline = 0;
            return PR_ECLOSED;
        }
        if (d->cr_pending) {
            d->cr_pending = 0;
            if (s[pos] == '\n') {
                d->src_pos = pos + 1;
                continue;
            }
        }
        if (PR__UNLIKELY(d->bom < 3)) { /* R1: one BOM at the stream start */
            while (d->bom < 3 && pos < len) {
                if ((unsigned char)s[pos] != bom[d->bom]) {
                    d->bom = 3; /* the bytes matched so far stay in line as content */
                    break;
                }
                if (pr__sse_append(&d->line, s + pos, 1)) return PR_ENOMEM;
                pos++;
                if (++d->bom == 3) d->line.len = 0;
            }
            d->src_pos = pos;
            continue;
        }
        e = s[pos] == '\n' || s[pos] == '\r' ? pos : pr__sse_eol(d, pos);
        if (e < len) {
            next = e + 1;
            if (s[e] == '\r') {
                if (next == len) cr = 1;
                else if (s[next] == '\n') next++;
            }
        } else
            next = len;
        if (PR__UNLIKELY(d->skipping)) { /* after pr_sse_decoder_skip: find the blank line */
            if (e == pos && !d->skip_midline) d->skipping = 0;
            d->skip_midline = e == len;
            d->src_pos = next;
            d->cr_pending = cr;
            continue;
        }
        if (e == len) { /* a partial line: carry it */
            if (d->line.len + (len - pos) > d->max_line) {
                d->line.len = 0;
                d->src_pos = len;
                return pr__sse_limit(d, 1);
            }
            if (pr__sse_append(&d->line, s + pos, len - pos)) return PR_ENOMEM;
            d->src_pos = len;
            continue;
        }
        if (d->line.len) {
            size_t old = d->line.len;
            if (old + (e - pos) > d->max_line) {
                d->line.len = 0;
                rc = pr__sse_limit(d, 0);
            } else {
                if (pr__sse_append(&d->line, s + pos, e - pos)) return PR_ENOMEM;
                rc = pr__sse_line(d, d->line.p, d->line.len, 1, ev);
                if (rc == PR_ENOMEM) {
                    d->line.len = old;
                    return rc;
                }
                d->line.len = 0;
            }
        } else if (e - pos > d->max_line) {
            rc = pr__sse_limit(d, 0);
        } else {
            rc = pr__sse_line(d, s + pos, e - pos, 0, ev);
            if (rc == PR_ENOMEM) return rc;
        }
        d->src_pos = next;
        d->cr_pending = cr;
        if (rc == 1) return PR_OK;
        if (rc) return rc;
    }
}

int pr_sse_decoder_create(pr_sse_decoder **out, const pr_sse_decoder_opts *opts) {
    pr_sse_decoder *d;
    if (!out) return PR_EINVAL;
    *out = NULL;
    d = (pr_sse_decoder *)pr__calloc(1, sizeof *d);
    if (!d) return PR_ENOMEM;
    d->max_line = opts && opts->max_line_bytes ? opts->max_line_bytes : PR__SSE_DEF_MAX_LINE;
    d->max_event = opts && opts->max_event_bytes ? opts->max_event_bytes : PR__SSE_DEF_MAX_EVENT;
    d->raw = opts && opts->raw_bytes;
    d->block_retry = -1;
    d->retry = -1;
    *out = d;
    return PR_OK;
}

void pr_sse_decoder_destroy(pr_sse_decoder *d) {
    if (!d) return;
    pr__sse_buf_free(&d->line);
    pr__sse_buf_free(&d->data);
    pr__sse_buf_free(&d->type);
    pr__sse_buf_free(&d->idb);
    pr__sse_buf_free(&d->last);
    pr__free(d, sizeof *d);
}

int pr_sse_decoder_feed(pr_sse_decoder *d, const char *bytes, size_t n) {
    if (!d || (!bytes && n)) return PR_EINVAL;
    if (d->eof || d->src_pos < d->src_len) return PR_ESTATE;
    if (d->data_is_view && pr__sse_pin(d)) return PR_ENOMEM;
    d->src = bytes;
    d->src_len = n;
    d->src_pos = 0;
    d->lf_ok = d->cr_ok = d->hi_ok = 0;
    if (n) d->fed_any = 1;
    return PR_OK;
}

int pr_sse_decoder_finish(pr_sse_decoder *d) {
    if (!d) return PR_EINVAL;
    d->eof = 1;
    return PR_OK;
}

int pr_sse_decoder_skip(pr_sse_decoder *d) {
    if (!d) return PR_EINVAL;
    if (d->err != PR_ELIMIT) return PR_ESTATE;
    d->err = 0;
    d->skipping = 1;
    return PR_OK;
}

int pr_sse_decoder_reset(pr_sse_decoder *d) {
    if (!d) return PR_EINVAL;
    pr__sse_drop_block(d);
    d->src = NULL;
    d->src_len = d->src_pos = 0;
    d->lf_ok = d->cr_ok = d->hi_ok = 0;
    d->line.len = 0;
    d->cr_pending = 0;
    d->bom = 0;
    d->eof = d->err = d->skipping = d->skip_midline = d->fed_any = 0;
    return PR_OK;
}

int pr_sse_decoder_set_last_id(pr_sse_decoder *d, const char *id, size_t len) {
    size_t i;
    if (!d || (!id && len)) return PR_EINVAL;
    for (i = 0; i < len; i++)
        if (id[i] == 0 || id[i] == '\r' || id[i] == '\n') return PR_EINVAL;
    if (len && !pr__sse_utf8_ok(id, len)) return PR_EINVAL;
    if (d->fed_any && !d->eof) return PR_ESTATE;
    if (pr__sse_reserve(&d->last, len)) return PR_ENOMEM;
    if (len) memcpy(d->last.p, id, len);
    d->last.len = len;
    d->last.p[len] = 0;
    d->block_id = 0;
    return PR_OK;
}

const char *pr_sse_decoder_last_id(const pr_sse_decoder *d, size_t *len) {
    if (len) *len = d ? d->last.len : 0;
    return d && d->last.p ? d->last.p : "";
}

int64_t pr_sse_decoder_retry_ms(const pr_sse_decoder *d) { return d ? d->retry : -1; }

int pr_sse_event_json(const pr_sse_event *ev, pr_json_doc **out, const pr_json_opts *opts, pr_json_error *err) {
    if (out) *out = NULL;
    if (!ev || !out) {
        if (err) {
            memset(err, 0, sizeof *err);
            err->code = PR_EINVAL;
            snprintf(err->msg, sizeof err->msg, "%s", "NULL event or output");
        }
        return PR_EINVAL;
    }
    if (ev->data_len == 0) {
        if (err) {
            memset(err, 0, sizeof *err);
            err->code = PR_EPROTO;
            err->line = err->column = 1;
            snprintf(err->msg, sizeof err->msg, "%s", "empty event data");
        }
        return PR_EPROTO;
    }
    return pr_json_parse(out, ev->data, ev->data_len, opts, err);
}
