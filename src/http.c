// @pristine:module http - one HTTP/1.1 exchange over a pr_conn: request writer, response parser, bodies
// @pristine:public
/*
 * http: one HTTP/1.1 request/response exchange over a caller-owned pr_conn
 * (a TCP socket, a TLS session or an in-memory pipe).
 *
 * pr_http_exchange writes the request and reads the response head; the
 * body is then streamed with pr_http_read (copying) or pr_http_next_span
 * (zero-copy views into the receive buffer). Both return bytes as soon as
 * they arrive and PR_ECLOSED at the end of the body. An HTTP status is not
 * an error: a 503 is PR_OK with pr_http_status() == 503.
 *
 * Main types: pr_http_request (what to send, borrowed for the call),
 * pr_http_opts (limits; zero = default), pr_http_response (owned by the
 * caller until pr_http_response_destroy; it never owns or closes the conn).
 *
 * Header fields a caller supplies are field lines "Name: value": a static
 * set is a NULL-terminated array (pr_http_request.headers, and the
 * modules after this one take the same), a per-request callback appends
 * lines each ended by "\r\n" to a pr_buf. The module's internal offer to
 * the modules after it is the one parser and validator of both forms,
 * pr__http_fields (with pr__http_field_line for a single line): a token
 * name, a colon, a value without CR, LF or NUL, optional whitespace around
 * the value trimmed; a bad line is PR_EINVAL with a message naming its
 * field.
 *
 * Lifetime of views: header names and values (pr_http_header_at,
 * pr_http_header_get, pr_http_reason) point into the response's buffer
 * and stay valid until pr_http_response_destroy. A span from
 * pr_http_next_span is valid until the next read or span call.
 *
 * Parsing rules (RFC 9110/9112, strict):
 * - status line "HTTP/1.x SP 3DIGIT [SP reason]"; other versions and
 *   garbage are PR_EPROTO. Bare LF line ends are accepted in the head,
 *   a bare CR anywhere is PR_EPROTO; NUL, DEL and control bytes other than
 *   HT in field values are PR_EPROTO; whitespace before the colon is
 *   PR_EPROTO.
 * - obs-fold (a field line starting with SP/HT) is replaced by SP: the
 *   continuation is joined to the previous value in place. A fold before
 *   the first field is PR_EPROTO.
 * - Content-Length: every value of every Content-Length field (comma
 *   lists included) must be the same decimal number (digits only, no
 *   sign, no overflow), else PR_EPROTO; so is a field with no value.
 * - Transfer-Encoding ending in "chunked": chunked body; "chunked"
 *   anywhere else is PR_EPROTO; any other coding list: the body runs to
 *   connection close. TE with Content-Length: TE wins and the connection
 *   is not reusable. HTTP/1.0 with TE: body to close, not reusable.
 * - interim 1xx responses (100, 102, 103, ...) are skipped, at most
 *   max_interim of them, their bytes counted with the final head against
 *   one max_head_bytes; they never have a body, whatever Content-Length
 *   or Transfer-Encoding they carry. 101 Switching Protocols is accepted
 *   only when the request has an Upgrade field (else PR_EPROTO "101 ...
 *   asked for no Upgrade"); then it ends the exchange: it is the final
 *   response, the connection belongs to the new protocol, and its "body"
 *   is the raw byte stream that follows (bytes already received after the
 *   101 head first, then the conn, until close; the caller of
 *   pr_http_exchange writes on its conn). A 2xx answer to CONNECT is
 *   returned the same way (the tunnel). Neither is ever reusable.
 * - no body for HEAD requests, 204 and 304.
 * - chunk-size lines: 1 to 16 hex digits, optional BWS + ";" extensions
 *   (skipped), CRLF required; trailer lines follow the header field rules
 *   ("name: value", a token name, no whitespace before the colon, no
 *   control bytes but HT, obs-fold joined) with CRLF line ends, else
 *   PR_EPROTO; they are read and discarded (they never change framing),
 *   counted against max_head_bytes and max_fields.
 * - premature end of stream inside a Content-Length or chunked body is
 *   PR_EPROTO "truncated body"; the end of an until-close body is
 *   PR_ECLOSED (over TLS a truncation error from the conn propagates).
 *
 * Offers to the modules after it: pr__http_exchange, pr__http_field_line,
 *     pr__http_field_push, pr__http_field_set, pr__http_fields,
 *     pr__http_hdr_is, pr__http_is_token, pr__http_lines_join,
 *     pr__http_media_is, pr__http_media_type, pr__http_peer_gone.
 */

/* Limits and per-phase caps. Zero in every field means the default. */
typedef struct pr_http_opts {
    size_t max_head_bytes;  /* 0 = 65536: status lines + fields of one response, all its interim
                               1xx heads and the final head together (a CONNECT reply counts
                               toward the first response through its tunnel); the trailer
                               section has a budget of its own of this size */
    size_t max_fields;      /* 0 = 100: header fields per head (and trailer fields) */
    size_t max_chunk_line;  /* 0 = 4096: one chunk-size line including extensions */
    size_t max_interim;     /* 0 = 10: interim 1xx responses skipped before the final one */
    size_t recv_buf_size;   /* 0 = 65536: the largest receive buffer beyond the head (64 KiB
                               reads: smaller ones cost 8-25 % of the throughput on loopback).
                               A body starts with 12 KiB; the buffer doubles while reads fill
                               it and shrinks back after a run of small reads, so a slow
                               stream holds little */
    int idle_timeout_ms;    /* 0 = off (<0 = off too): the longest silence of the connection, from
                               the request's last byte sent or the last byte received, whatever
                               the calls in between; past it the response fails for good with
                               PR_EIO, sys_errno ETIMEDOUT (PR_ETIMEDOUT is only ever the
                               deadline of the call) */
} pr_http_opts;

/* One header field: views, not NUL-terminated. */
typedef struct pr_http_header {
    pr_slice name;
    pr_slice value;
} pr_http_header;

/* A streaming request body: write up to n bytes into buf and return how
   many (> 0), 0 at the end of the body, or a negative PR_E* code to abort
   the request (that code is returned by pr_http_exchange). */
typedef ptrdiff_t (*pr_http_body_fn)(void *buf, size_t n, void *user_data);

/* What to send. Everything is borrowed for the duration of the call. */
typedef struct pr_http_request {
    const char *method;             /* NULL = "GET"; a token */
    const pr_url *url;              /* required: target and Host come from it */
    const char *const *headers;     /* NULL = none: the caller's field lines, NULL-terminated,
                                       each "Name: value" without a line end (a token name, a
                                       colon, a value without CR, LF or NUL; spaces around the
                                       value trimmed), else PR_EINVAL. A Host line replaces the
                                       generated one; Content-Length and Transfer-Encoding are
                                       PR_EINVAL (the body fields set them) */
    const void *body;               /* body with Content-Length; NULL = none */
    size_t body_len;
    pr_http_body_fn body_fn;        /* streaming body, sent chunked; NULL = none */
    void *body_user_data;           /* passed to body_fn (and body_rewind) */
    /* Read by pr_http_client_request only (pr_http_exchange ignores them): */
    const pr_retry_policy *retry;   /* NULL = the client's retry policy; copied for the call */
    int (*body_rewind)(void *user_data); /* makes a body_fn request replayable: restart the body
                                       from its first byte and return PR_OK (else an error code,
                                       which ends the request). NULL = a body_fn request is
                                       never retried or replayed */
    const char *idempotency_key;    /* NULL = generated when the client has an idempotency_header;
                                       "" = none for this request; else sent as given */
    int idle_timeout_ms;            /* 0 = the client's idle_timeout_ms; > 0 = this request's own;
                                       < 0 = none: the longest silence of the connection (a live
                                       read's limit: a dead peer behind a proxy sends nothing) */
    const char *const *redirect_forward; /* NULL = none: names (NULL-terminated, any case) of this
                                       request's fields that are safe to send on to another origin
                                       when a redirect goes there, on top of the client's
                                       redirect_forward_headers; every other field but Accept,
                                       Accept-Language, User-Agent (and the body's Content-Type,
                                       -Language, -Encoding) is dropped there (see the client) */
} pr_http_request;

/* A response being read. Opaque. */
typedef struct pr_http_response pr_http_response;

/* Write a request on conn and read the response head (interim 1xx skipped).
   Request bytes: "METHOD target HTTP/1.1", Host (from the URL, without
   userinfo), the user's fields in order, then Content-Length (body, or 0
   for POST/PUT/PATCH without a body) or "Transfer-Encoding: chunked"
   (body_fn). No Accept-Encoding, no Connection field.
   Early response: when writing the request fails because the peer closed
   or reset the connection (a server may answer 413 or 401 before the body
   is sent, then close), the response head that arrived is read; a complete
   final response is returned (PR_OK, never reusable), otherwise the write
   error. This needs a conn that still reads after a failed write: TCP
   sockets, pipes, and TLS conns (the write side dies, reads go on).
   Params: out - receives the response (NULL on failure); conn - the
           connection (borrowed; the caller keeps owning it); req - the
           request; opts - limits, NULL = defaults (copied); err -
           receives the failure detail, also left in pr_conn_last_error(conn)
           (NULL = not wanted; zeroed on success); deadline - absolute ms for
           the whole call.
   Returns: PR_OK (whatever the status); PR_EINVAL (bad method, a header
            line that is not a field line, its field named in err, both
            body and body_fn, user framing fields, missing url); PR_ENOMEM;
            PR_EPROTO (malformed response, a 101 without an Upgrade request
            field); PR_ELIMIT (a limit of opts); PR_ECLOSED (closed before any response byte); a
            conn error (PR_EIO, PR_ETLS, ...); a negative code from body_fn;
            PR_EIO with sys_errno ETIMEDOUT (idle_timeout_ms of silence);
            PR_ETIMEDOUT (the deadline passed); PR_ECANCELED. After
            any failure the connection's state is unknown: destroy it.
   Blocks: yes.
   Thread: owner.
   See: pr_http_read, pr_http_next_span, pr_http_response_destroy. */
PRISTINE_API int pr_http_exchange(pr_http_response **out, pr_conn *conn, const pr_http_request *req,
                                  const pr_http_opts *opts, pr_err_info *err, int64_t deadline);

/* The final status code.
   Params: r - a response.
   Returns: the status (100-999); PR_EINVAL if r is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_http_reason. */
PRISTINE_API int pr_http_status(const pr_http_response *r);

/* The HTTP minor version of the response (0 for HTTP/1.0, 1 for HTTP/1.1).
   Params: r - a response.
   Returns: the minor version; PR_EINVAL if r is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_http_status. */
PRISTINE_API int pr_http_version_minor(const pr_http_response *r);

/* The reason phrase (informational only; may be empty).
   Params: r - a response.
   Returns: a view valid until pr_http_response_destroy (empty for NULL).
   Blocks: no.
   Thread: owner.
   See: pr_http_status. */
PRISTINE_API pr_slice pr_http_reason(const pr_http_response *r);

/* Number of header fields of the final response (obs-folds joined).
   Params: r - a response.
   Returns: the count; 0 for NULL.
   Blocks: no.
   Thread: owner.
   See: pr_http_header_at. */
PRISTINE_API size_t pr_http_header_count(const pr_http_response *r);

/* The i-th header field, in received order.
   Params: r - a response; i - index below pr_http_header_count; out -
           receives views valid until pr_http_response_destroy.
   Returns: PR_OK; PR_EINVAL if r or out is NULL or i is out of range.
   Blocks: no.
   Thread: owner.
   See: pr_http_header_get. */
PRISTINE_API int pr_http_header_at(const pr_http_response *r, size_t i, pr_http_header *out);

/* The value of the first field with this name (ASCII case-insensitive).
   Params: r - a response; name - NUL-terminated field name.
   Returns: a pointer to the value view (valid until
            pr_http_response_destroy); NULL if absent or r/name is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_http_header_at. */
PRISTINE_API const pr_slice *pr_http_header_get(const pr_http_response *r, const char *name);

/* Read body bytes: returns as soon as any are available (never waits to
   fill buf). Large Content-Length and until-close reads go straight into
   buf when nothing is buffered.
   Params: r - a response; buf, n - destination (n > 0); deadline -
           absolute ms (the idle timeout of opts applies within it).
   Returns: bytes (> 0); PR_ECLOSED at the end of the body (every later
            call too); PR_EPROTO (malformed chunk framing, "truncated
            body"); PR_ELIMIT (chunk line or trailer limits); a conn error
            (PR_EIO, PR_ETLS, ...); PR_ETIMEDOUT; PR_ECANCELED (both
            retryable: no byte is lost); PR_EINVAL. Other errors stick.
   Blocks: yes.
   Thread: owner.
   See: pr_http_next_span, pr_http_last_error. */
PRISTINE_API ptrdiff_t pr_http_read(pr_http_response *r, void *buf, size_t n, int64_t deadline);

/* The next span of body bytes as a view into the receive buffer (zero
   copy, for decoders). The span is consumed: the next call continues after
   it. It stays valid until the next read or span call on r.
   Params: r - a response; ptr, len - receive the span (len > 0);
           deadline - absolute ms.
   Returns: PR_OK; PR_ECLOSED at the end of the body; otherwise as
            pr_http_read (PR_EPROTO, PR_ELIMIT, conn errors, PR_ETIMEDOUT,
            PR_ECANCELED, PR_EINVAL).
   Blocks: yes.
   Thread: owner.
   See: pr_http_read. */
PRISTINE_API int pr_http_next_span(pr_http_response *r, const char **ptr, size_t *len, int64_t deadline);

/* Whether the connection may carry another request: HTTP/1.1 without
   "Connection: close" (or 1.0 with "keep-alive"), Content-Length or
   chunked framing without Transfer-Encoding + Content-Length, the body
   read to its end, no error and no stray bytes after the message.
   Params: r - a response.
   Returns: 1 if reusable, 0 if not (or r is NULL).
   Blocks: no.
   Thread: owner.
   See: pr_http_read. */
PRISTINE_API int pr_http_reusable(const pr_http_response *r);

/* Detail of the response's last body failure.
   Params: r - a response; out - receives a copy (http_status is set).
   Returns: PR_OK; PR_EINVAL if r or out is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_http_read. */
PRISTINE_API int pr_http_last_error(const pr_http_response *r, pr_err_info *out);

/* Free a response. The connection is not touched (the caller owns it).
   Params: r - a response; NULL is a no-op.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_http_exchange. */
PRISTINE_API void pr_http_response_destroy(pr_http_response *r);

// @pristine:impl
#define PR__HTTP_DEF_HEAD 65536
#define PR__HTTP_DEF_FIELDS 100
#define PR__HTTP_DEF_CHUNK_LINE 4096
#define PR__HTTP_DEF_INTERIM 10
#define PR__HTTP_DEF_RECV 65536
#define PR__HTTP_CHUNK_OUT 16384 /* streaming request body chunk */
#define PR__HTTP_HEAD_ROOM 4096  /* buffer bytes expected to hold a head */
#define PR__HTTP_FIRST_BODY 12288 /* body bytes the first buffer holds beside the head */
#define PR__HTTP_INLINE_FIELDS 12 /* header fields held in the response itself */
#define PR__HTTP_SHRINK_FILLS 16  /* small reads in a row after which a grown body buffer shrinks back */

/* Body framing states. */
enum {
    PR__HTTP_B_DONE = 0,
    PR__HTTP_B_IDENT,      /* remaining bytes of a Content-Length body */
    PR__HTTP_B_EOF,        /* until the connection closes */
    PR__HTTP_B_CSIZE,      /* in a chunk-size line */
    PR__HTTP_B_CDATA,      /* remaining bytes of a chunk */
    PR__HTTP_B_CCRLF,      /* the CRLF after chunk data */
    PR__HTTP_B_TRAILER     /* trailer section */
};

/* Sub-states of a chunk-size line and of the trailer section. */
enum { PR__HTTP_CS_DIGITS, PR__HTTP_CS_BWS, PR__HTTP_CS_EXT, PR__HTTP_CS_LF };
enum { PR__HTTP_TR_START, PR__HTTP_TR_NAME, PR__HTTP_TR_VALUE, PR__HTTP_TR_LINE_LF, PR__HTTP_TR_END_LF };

struct pr_http_response {
    pr_conn *conn;
    pr_http_opts opts;        /* resolved */
    char *buf;                /* [0, base): the head; [base, cap): body area */
    size_t cap, base, rpos, wpos;
    char *head;               /* the head in a block of its own once the body buffer was resized
                                 (its views stay valid until destroy); then base is 0 */
    size_t head_len;
    int full_fill;            /* the last read filled the body area: the stream outruns the buffer */
    unsigned small_fills;     /* reads in a row that used little of a grown body area */
    pr_http_header *hdrs;     /* hdrs_inline until a head has more fields */
    size_t nhdrs, hdrs_cap;
    pr_http_header hdrs_inline[PR__HTTP_INLINE_FIELDS];
    int status, minor;
    pr_slice reason;
    int state, sub;           /* body state and chunk/trailer sub-state */
    uint64_t remaining;       /* IDENT / CDATA bytes left */
    unsigned ndigits;         /* chunk-size hex digits seen */
    size_t line_len;          /* bytes of the current chunk-size line */
    size_t tr_bytes, tr_fields;
    size_t head_used;         /* bytes of earlier heads (1xx, a CONNECT reply) in max_head_bytes */
    int keepalive;            /* framing and Connection allow reuse */
    int rx;                   /* a response byte has arrived */
    int64_t rx_at;            /* the idle clock: when the request went out or the last byte came */
    int err;                  /* sticky error, 0 = none */
    pr_err_info einfo;
    /* set by the layer that owns the connection (the client): called by
       pr_http_response_destroy before the buffers go, so it can hand the
       connection back to a pool (pr_http_reusable still answers) */
    void (*on_destroy)(pr_http_response *r, void *ctx);
    void *on_destroy_ctx;
    char limit[48];           /* names the deadline in timeout messages ("deadline") */
};

static void pr__http_opts_resolve(pr_http_opts *o, const pr_http_opts *in) {
    if (in) *o = *in;
    else memset(o, 0, sizeof *o);
    o->max_head_bytes = PR__DEF(o->max_head_bytes, PR__HTTP_DEF_HEAD);
    o->max_fields = PR__DEF(o->max_fields, PR__HTTP_DEF_FIELDS);
    o->max_chunk_line = PR__DEF(o->max_chunk_line, PR__HTTP_DEF_CHUNK_LINE);
    o->max_interim = PR__DEF(o->max_interim, PR__HTTP_DEF_INTERIM);
    o->recv_buf_size = PR__DEF(o->recv_buf_size, PR__HTTP_DEF_RECV);
    if (o->idle_timeout_ms < 0) o->idle_timeout_ms = 0;
}

/* Byte classes of a head: RFC 9110 tchar, a control byte a field may not
   carry (all but HTAB, and DEL), and CR. */
#define PR__HTTP_TCHAR 1
#define PR__HTTP_CTL 2
#define PR__HTTP_CR 4
#define PR__HTTP_HC(c)                                                                                                 \
    (((((c) >= '0' && (c) <= '9') || ((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || (c) == '!' ||   \
       (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || (c) == '\'' || (c) == '*' || (c) == '+' ||          \
       (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~')            \
          ? PR__HTTP_TCHAR                                                                                        \
          : 0) |                                                                                                  \
     ((c) == 0x7f || ((c) < 0x20 && (c) != '\t' && (c) != '\r') ? PR__HTTP_CTL : 0) | ((c) == '\r' ? PR__HTTP_CR : 0))
#define PR__HTTP_HC4(c) PR__HTTP_HC(c), PR__HTTP_HC((c) + 1), PR__HTTP_HC((c) + 2), PR__HTTP_HC((c) + 3)
#define PR__HTTP_HC16(c) PR__HTTP_HC4(c), PR__HTTP_HC4((c) + 4), PR__HTTP_HC4((c) + 8), PR__HTTP_HC4((c) + 12)
#define PR__HTTP_HC64(c) PR__HTTP_HC16(c), PR__HTTP_HC16((c) + 16), PR__HTTP_HC16((c) + 32), PR__HTTP_HC16((c) + 48)
static const unsigned char pr__http_cls[256] = { PR__HTTP_HC64(0), PR__HTTP_HC64(64), PR__HTTP_HC64(128), PR__HTTP_HC64(192) };
#undef PR__HTTP_HC64
#undef PR__HTTP_HC16
#undef PR__HTTP_HC4
#undef PR__HTTP_HC

static int pr__http_tchar(unsigned char c) { return pr__http_cls[c] & PR__HTTP_TCHAR; }

static int pr__http_is_token(const char *p, size_t n) {
    size_t i;
    if (!n) return 0;
    for (i = 0; i < n; i++)
        if (!pr__http_tchar((unsigned char)p[i])) return 0;
    return 1;
}

/* The media type of a Content-Type value: what precedes its parameters,
   trimmed ("text/html; charset=utf-8" gives "text/html"). */
static PR__MAYBE_UNUSED pr_slice pr__http_media_type(pr_slice ct) {
    const char *semi = ct.len ? (const char *)memchr(ct.ptr, ';', ct.len) : NULL;
    if (semi) ct.len = (size_t)(semi - ct.ptr);
    return pr_slice_trim(ct);
}

/* Whether a Content-Type value (NULL: none) has the media type type, in
   any case and with any parameters. */
static PR__MAYBE_UNUSED int pr__http_media_is(const pr_slice *ct, const char *type) {
    return ct && pr_slice_ieq(pr__http_media_type(*ct), pr_slice_cstr(type));
}

static int pr__http_hdr_is(pr_slice name, const char *s) { return pr_slice_ieq(name, pr_slice_cstr(s)); }

/* ---- field lines a caller supplies: the one parser (offered to the modules after http) ---- */

/* A field name (or the start of a line) for a message: at most 40 bytes,
   anything but printable ASCII as '?'. */
static const char *pr__http_field_shown(char *out, const char *p, size_t n) {
    size_t i;
    if (n > 40) n = 40;
    for (i = 0; i < n; i++) out[i] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
    out[n] = 0;
    return out;
}

/* Parse one caller-supplied field line line[0, len) (no line end): a token
   name, a colon, a value without CR, LF or NUL; whitespace around the value
   is trimmed. Returns PR_OK with *name, *value set (views into line), or
   PR_EINVAL with err (optional) naming the line's field. */
static int pr__http_field_line(const char *line, size_t len, pr_slice *name, pr_slice *value, pr_err_info *err) {
    const char *colon = line ? (const char *)memchr(line, ':', len) : NULL;
    char shown[41];
    size_t i, nl = colon ? (size_t)(colon - line) : len;
    if (!colon)
        return pr__err_set(err, PR_EINVAL, 0, "http: header line \"%s\" has no colon",
                           pr__http_field_shown(shown, line ? line : "", line ? len : 0));
    if (!pr__http_is_token(line, nl))
        return pr__err_set(err, PR_EINVAL, 0, "http: header field name \"%s\" is not a token",
                           pr__http_field_shown(shown, line, nl));
    for (i = nl + 1; i < len; i++)
        if (line[i] == '\r' || line[i] == '\n' || line[i] == 0)
            return pr__err_set(err, PR_EINVAL, 0, "http: header field \"%s\": the value has a CR, LF or NUL",
                               pr__http_field_shown(shown, line, nl));
    name->ptr = line;
    name->len = nl;
    value->ptr = colon + 1;
    value->len = len - nl - 1;
    *value = pr_slice_trim(*value);
    return PR_OK;
}

/* What pr__http_fields hands each valid field: a nonzero return stops the
   walk and is returned. */
typedef int (*pr__http_field_fn)(pr_slice name, pr_slice value, void *user_data);

/* Walk caller-supplied field lines: the NULL-terminated array lines (each
   line without a line end), or when lines is NULL the buffer buf[0, len)
   of lines each ended by "\r\n" (what a headers_fn appends). Every line is
   checked by pr__http_field_line and handed to fn (NULL = only check).
   Returns PR_OK; PR_EINVAL for a bad line (a line of the buffer without
   its "\r\n", an empty one, one pr__http_field_line refuses), err
   (optional) naming the line's field; or fn's nonzero return. */
static int pr__http_fields(const char *const *lines, const char *buf, size_t len, pr__http_field_fn fn,
                           void *user_data, pr_err_info *err) {
    pr_slice name, value;
    char shown[41];
    size_t pos = 0;
    int rc;
    for (; lines && *lines; lines++) {
        if ((rc = pr__http_field_line(*lines, strlen(*lines), &name, &value, err)) != PR_OK) return rc;
        if (fn && (rc = fn(name, value, user_data)) != 0) return rc;
    }
    while (!lines && buf && pos < len) {
        const char *line = buf + pos, *lf = (const char *)memchr(line, '\n', len - pos);
        size_t n = lf ? (size_t)(lf - line) : len - pos;
        if (!lf || !n || line[n - 1] != '\r') {
            const char *colon = (const char *)memchr(line, ':', n);
            return pr__err_set(err, PR_EINVAL, 0, "http: header line \"%s\" is not ended by CRLF",
                               pr__http_field_shown(shown, line, colon ? (size_t)(colon - line) : n));
        }
        if (n == 1) return pr__err_set(err, PR_EINVAL, 0, "http: an empty header line");
        if ((rc = pr__http_field_line(line, n - 1, &name, &value, err)) != PR_OK) return rc;
        if (fn && (rc = fn(name, value, user_data)) != 0) return rc;
        pos += n + 1;
    }
    return PR_OK;
}

/* Fields gathered as slices by pr__http_fields: fn = pr__http_field_push,
   user_data = the set. */
typedef struct pr__http_field_set {
    pr_http_header *h;
    size_t n, cap;
} pr__http_field_set;

/* pr__http_fields' fn that appends each field to a pr__http_field_set
   (the slices point into the walked lines); PR_ELIMIT when it is full. */
static PR__MAYBE_UNUSED int pr__http_field_push(pr_slice name, pr_slice value, void *user_data) {
    pr__http_field_set *set = (pr__http_field_set *)user_data;
    if (set->n >= set->cap) return PR_ELIMIT;
    set->h[set->n].name = name;
    set->h[set->n].value = value;
    set->n++;
    return PR_OK;
}

/* A NULL-terminated array of field lines in one block of *size bytes
   (free it with pr__free(*out, *size)): the pointers of lines (NULL =
   none; their strings are not copied), then "Name: value" lines made of
   the n fields h (copied into the block). For a caller that adds fields
   of its own to a request's lines, or still holds its fields as slices.
   Returns PR_OK or PR_ENOMEM. */
static PR__MAYBE_UNUSED int pr__http_lines_join(const char *const *lines, const pr_http_header *h, size_t n,
                                                const char ***out, size_t *size) {
    size_t k = 0, bytes = 0, i;
    char *p;
    while (lines && lines[k]) k++;
    for (i = 0; i < n; i++) bytes += h[i].name.len + 2 + h[i].value.len + 1;
    *size = (k + n + 1) * sizeof **out + bytes;
    if (!(*out = (const char **)pr__alloc(*size))) return PR_ENOMEM;
    p = (char *)(*out + k + n + 1);
    for (i = 0; i < k; i++) (*out)[i] = lines[i];
    for (i = 0; i < n; i++) {
        (*out)[k + i] = p;
        memcpy(p, h[i].name.ptr, h[i].name.len);
        p += h[i].name.len;
        memcpy(p, ": ", 2);
        p += 2;
        if (h[i].value.len) memcpy(p, h[i].value.ptr, h[i].value.len);
        p += h[i].value.len;
        *p++ = 0;
    }
    (*out)[k + n] = NULL;
    return PR_OK;
}

/* ---- request writer ---- */

/* What the request head's field lines say (pr__http_fields' walk). */
struct pr__http_head_facts { int host, upgrade; pr_err_info *err; };
static int pr__http_head_check(pr_slice name, pr_slice value, void *user_data) {
    struct pr__http_head_facts *f = (struct pr__http_head_facts *)user_data;
    char shown[41];
    PR__UNUSED(value);
    if (pr__http_hdr_is(name, "content-length") || pr__http_hdr_is(name, "transfer-encoding"))
        return pr__err_set(f->err, PR_EINVAL, 0, "http: header field \"%s\" is the library's (body, body_fn)",
                           pr__http_field_shown(shown, name.ptr, name.len));
    if (pr__http_hdr_is(name, "host")) f->host = 1;
    if (pr__http_hdr_is(name, "upgrade")) f->upgrade = 1;
    return 0;
}

static int pr__http_head_put(pr_slice name, pr_slice value, void *user_data) {
    pr_buf *b = (pr_buf *)user_data;
    int rc = pr_buf_append(b, name.ptr, name.len);
    if (!rc) rc = pr_buf_append(b, ": ", 2);
    if (!rc) rc = pr_buf_append(b, value.ptr, value.len);
    if (!rc) rc = pr_buf_append(b, "\r\n", 2);
    return rc;
}

/* Build the request head into b; *upgrade: the request has an Upgrade
   field. A bad field line is PR_EINVAL with err saying which. */
static int pr__http_build_head(pr_buf *b, const pr_http_request *req, const char *method, const pr_slice *target,
                               int *has_body, int *upgrade, pr_err_info *err) {
    size_t mlen = strlen(method);
    struct pr__http_head_facts f;
    int rc;
    f.host = f.upgrade = 0;
    f.err = err;
    if ((rc = pr__http_fields(req->headers, NULL, 0, pr__http_head_check, &f, err)) != PR_OK) return rc;
    *upgrade = f.upgrade;
    *has_body = req->body != NULL || req->body_len > 0 || req->body_fn != NULL;
    rc = pr_buf_append(b, method, mlen);
    if (!rc) rc = pr_buf_append(b, " ", 1);
    if (!rc) rc = target ? pr_buf_append(b, target->ptr, target->len) : pr_url_target(b, req->url);
    if (!rc) rc = pr_buf_append_str(b, " HTTP/1.1\r\n");
    if (!rc && !f.host) {
        rc = pr_buf_append_str(b, "Host: ");
        if (!rc) rc = pr_url_authority(b, req->url, 0);
        if (!rc) rc = pr_buf_append(b, "\r\n", 2);
    }
    if (!rc) rc = pr__http_fields(req->headers, NULL, 0, pr__http_head_put, b, NULL);
    if (!rc) {
        if (req->body_fn)
            rc = pr_buf_append_str(b, "Transfer-Encoding: chunked\r\n");
        else if (*has_body || (mlen == 4 && !memcmp(method, "POST", 4)) || (mlen == 3 && !memcmp(method, "PUT", 3)) ||
                 (mlen == 5 && !memcmp(method, "PATCH", 5))) {
            char num[20];
            rc = pr_buf_append_str(b, "Content-Length: ");
            if (!rc) rc = pr_buf_append(b, num, pr__buf_dec(num, (uint64_t)req->body_len));
            if (!rc) rc = pr_buf_append(b, "\r\n", 2);
        }
    }
    if (!rc) rc = pr_buf_append(b, "\r\n", 2);
    return rc;
}

/* Send a streaming body in chunked encoding. *wfail is set when a write
   (not body_fn or memory) failed. */
static int pr__http_send_chunked(pr_conn *conn, const pr_http_request *req, int64_t deadline, int *wfail) {
    enum { PR__HTTP_PRE = 18 }; /* up to 16 hex digits + CRLF */
    size_t cap = PR__HTTP_PRE + PR__HTTP_CHUNK_OUT + 2;
    char *b = (char *)pr__alloc(cap);
    int rc = PR_OK;
    if (!b) return PR_ENOMEM;
    for (;;) {
        char hex[20];
        int hl;
        ptrdiff_t k = req->body_fn(b + PR__HTTP_PRE, PR__HTTP_CHUNK_OUT, req->body_user_data);
        if (k < 0) {
            rc = (int)k;
            break;
        }
        if (k == 0) {
            rc = pr_conn_write(conn, "0\r\n\r\n", 5, deadline);
            if (rc) *wfail = 1;
            break;
        }
        if ((size_t)k > PR__HTTP_CHUNK_OUT) {
            rc = PR_EINVAL;
            break;
        }
        hl = snprintf(hex, sizeof hex, "%lx\r\n", (unsigned long)k);
        memcpy(b + PR__HTTP_PRE - hl, hex, (size_t)hl);
        memcpy(b + PR__HTTP_PRE + k, "\r\n", 2);
        rc = pr_conn_write(conn, b + PR__HTTP_PRE - hl, (size_t)hl + (size_t)k + 2, deadline);
        if (rc) {
            *wfail = 1;
            break;
        }
    }
    pr__free(b, cap);
    return rc;
}

/* ---- receiving ---- */

/* Record a failure in the response and mirror it into the connection. */
static int pr__http_fail(pr_http_response *r, int code, const char *msg) {
    pr__err_set(&r->einfo, code, 0, "http: %s", msg);
    r->einfo.http_status = r->status;
    r->conn->err = r->einfo;
    return code;
}

/* A conn error: keep the conn's detail. */
static int pr__http_conn_fail(pr_http_response *r, int code) {
    r->einfo = r->conn->err;
    r->einfo.code = code;
    r->einfo.http_status = r->status;
    return code;
}

/* Read more bytes into [wpos, cap). Returns > 0, PR_ECLOSED, or an error;
   timeout messages name the phase and the limit that fired. */
static ptrdiff_t pr__http_fill(pr_http_response *r, char *dst, size_t n, int64_t deadline) {
    const char *phase =
        r->state == PR__HTTP_B_DONE && !r->base && !r->head ? "waiting for the response head" : "reading the body";
    char msg[120];
    int64_t dl = deadline;
    ptrdiff_t k;
    int idle = 0;
    if (r->opts.idle_timeout_ms > 0) {
        int64_t idl = pr__time_add(r->rx_at, r->opts.idle_timeout_ms);
        if (idl < dl) {
            dl = idl;
            idle = 1;
        }
    }
    k = pr_conn_read(r->conn, dst, n, dl);
    if (k == 0) k = PR_ECLOSED; /* a conn must not return 0; never spin on it */
    if (k > 0) r->rx_at = pr_now();
    if (k == PR_ETIMEDOUT) {
        if (idle && pr_now() >= dl) { /* the connection went silent: it counts as dead, for good */
            /* a limit of ours, not the caller's deadline: PR_EIO, errno ETIMEDOUT */
            snprintf(msg, sizeof msg, "no byte for %d ms %s (idle timeout)", r->opts.idle_timeout_ms, phase);
            r->err = pr__http_fail(r, PR_EIO, msg);
            r->einfo.sys_errno = r->conn->err.sys_errno = ETIMEDOUT;
            return r->err;
        }
        snprintf(msg, sizeof msg, "timed out %s (%s)", phase, r->limit);
        return pr__http_fail(r, PR_ETIMEDOUT, msg);
    }
    if (k == PR_ECANCELED) {
        snprintf(msg, sizeof msg, "canceled %s", phase);
        return pr__http_fail(r, PR_ECANCELED, msg);
    }
    return k;
}

/* Find the end of the head in b[0, len): the index just past the blank
   line, or 0 if it has not arrived. *scan is where to resume the search
   (O(n) in total however the bytes are split). */
static size_t pr__http_head_end(const char *b, size_t *scan, size_t len) {
    size_t i = *scan;
    while (i < len) {
        const char *lf = (const char *)memchr(b + i, '\n', len - i);
        size_t x, j;
        if (!lf) break;
        x = (size_t)(lf - b);
        j = x + 1;
        if (j >= len || (b[j] == '\r' && j + 1 >= len)) {
            *scan = x; /* look at this line break again when more bytes are in */
            return 0;
        }
        if (b[j] == '\n') return j + 1;
        if (b[j] == '\r' && b[j + 1] == '\n') return j + 2;
        i = j;
    }
    *scan = len;
    return 0;
}

static int pr__http_add_hdr(pr_http_response *r, pr_slice name, pr_slice value) {
    if (r->nhdrs == r->hdrs_cap) {
        size_t nc = r->hdrs_cap * 2;
        pr_http_header *h;
        if (nc > r->opts.max_fields) nc = r->opts.max_fields;
        if (r->hdrs == r->hdrs_inline) {
            if ((h = (pr_http_header *)pr__alloc(nc * sizeof *h)) != NULL) memcpy(h, r->hdrs, r->nhdrs * sizeof *h);
        } else {
            h = (pr_http_header *)pr__realloc(r->hdrs, r->hdrs_cap * sizeof *h, nc * sizeof *h);
        }
        if (!h) return PR_ENOMEM;
        r->hdrs = h;
        r->hdrs_cap = nc;
    }
    r->hdrs[r->nhdrs].name = name;
    r->hdrs[r->nhdrs].value = value;
    r->nhdrs++;
    return PR_OK;
}

#ifdef PRISTINE_TESTING
/* Bytes the obs-fold join touched, so a test can check it stays linear. */
static size_t pr__http_test_fold_work;
#define PR__HTTP_FOLD_WORK(n) (pr__http_test_fold_work += (n))
/* Steps of the body framing (bytes it examined, spans handed out, bytes
   moved in the buffer, fills), so a fuzzer can check they stay linear. */
static size_t pr__http_test_body_work;
#define PR__HTTP_BODY_WORK(n) (pr__http_test_body_work += (size_t)(n))
#else
#define PR__HTTP_FOLD_WORK(n) ((void)0)
#define PR__HTTP_BODY_WORK(n) ((void)0)
#endif

/* Parse a complete head in buf[0, end). Fills status, reason and headers. */
static int pr__http_parse_head(pr_http_response *r, size_t end) {
    char *b = r->buf;
    size_t pos = 0, i, folded = 0; /* buf[0, folded) needs no more blanking */
    int first = 1;
    r->nhdrs = 0;
    while (pos < end) {
        char *line = b + pos, *lf = (char *)memchr(line, '\n', end - pos);
        size_t len = (size_t)(lf - line), next = pos + len + 1;
        if (len && line[len - 1] == '\r') len--;
        for (i = 0; i < len; i++) {
            unsigned char k = pr__http_cls[(unsigned char)line[i]];
            if (!(k & (PR__HTTP_CR | PR__HTTP_CTL))) continue;
            if (k & PR__HTTP_CR) return pr__http_fail(r, PR_EPROTO, "bare CR in the response head");
            return pr__http_fail(r, PR_EPROTO, "control byte in the response head");
        }
        if (first) {
            first = 0;
            if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || line[7] < '0' || line[7] > '9' || line[8] != ' ' ||
                line[9] < '1' || line[9] > '9' || line[10] < '0' || line[10] > '9' || line[11] < '0' ||
                line[11] > '9' || (len > 12 && line[12] != ' '))
                return pr__http_fail(r, PR_EPROTO, "malformed status line");
            r->minor = line[7] - '0';
            r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
            r->reason.ptr = line + (len > 12 ? 13 : 12);
            r->reason.len = len > 12 ? len - 13 : 0;
        } else if (len == 0) {
            break; /* the blank line */
        } else if (line[0] == ' ' || line[0] == '\t') {
            /* obs-fold: the line break becomes SP and the line's text (trimmed)
               extends the previous value. Each byte is blanked or scanned once,
               so a head of whitespace-only folds stays linear. */
            pr_http_header *h;
            size_t s0 = 0, s1 = len;
            if (!r->nhdrs) return pr__http_fail(r, PR_EPROTO, "obs-fold before the first header field");
            h = &r->hdrs[r->nhdrs - 1];
            for (i = PR__MAX((size_t)(h->value.ptr + h->value.len - b), folded); i < pos; i++) {
                b[i] = ' ';
                PR__HTTP_FOLD_WORK(1);
            }
            while (s0 < s1 && (line[s0] == ' ' || line[s0] == '\t')) s0++;
            while (s1 > s0 && (line[s1 - 1] == ' ' || line[s1 - 1] == '\t')) s1--;
            PR__HTTP_FOLD_WORK(len);
            if (s1 > s0) {
                if (!h->value.len) h->value.ptr = line + s0;
                h->value.len = (size_t)(line + s1 - h->value.ptr);
            }
            folded = pos + len;
        } else {
            const char *colon = (const char *)memchr(line, ':', len);
            pr_slice name, value;
            int rc;
            if (!colon || colon == line) return pr__http_fail(r, PR_EPROTO, "malformed header line");
            if (!pr__http_is_token(line, (size_t)(colon - line)))
                return pr__http_fail(r, PR_EPROTO, "invalid header field name");
            if (r->nhdrs >= r->opts.max_fields) return pr__http_fail(r, PR_ELIMIT, "too many header fields");
            name.ptr = line;
            name.len = (size_t)(colon - line);
            value.ptr = colon + 1;
            value.len = (size_t)(line + len - (colon + 1));
            value = pr_slice_trim(value);
            if (!value.len) value.ptr = line + len;
            rc = pr__http_add_hdr(r, name, value);
            if (rc) return pr__http_fail(r, rc, "out of memory");
        }
        pos = next;
    }
    return PR_OK;
}

/* Call fn(token) for each comma-separated element of every field named
   name; elements are trimmed, empty ones skipped. Stops on a nonzero return. */
typedef int (*pr__http_tok_fn)(pr_slice tok, void *user_data);
static int pr__http_each_token(pr_http_response *r, const char *name, pr__http_tok_fn fn, void *user_data) {
    size_t i;
    for (i = 0; i < r->nhdrs; i++) {
        pr_slice v = r->hdrs[i].value;
        size_t s = 0, k;
        if (!pr__http_hdr_is(r->hdrs[i].name, name)) continue;
        for (k = 0; k <= v.len; k++) {
            if (k == v.len || v.ptr[k] == ',') {
                pr_slice t;
                int rc;
                t.ptr = v.ptr + s;
                t.len = k - s;
                t = pr_slice_trim(t);
                s = k + 1;
                if (!t.len) continue;
                if ((rc = fn(t, user_data)) != 0) return rc;
            }
        }
    }
    return 0;
}

struct pr__http_cl { int seen; uint64_t v; };

/* Whether a Content-Length field has no element at all ("", ",", " , "). */
static int pr__http_cl_empty(const pr_http_response *r) {
    size_t i, k;
    for (i = 0; i < r->nhdrs; i++) {
        pr_slice v = r->hdrs[i].value;
        int any = 0;
        if (!pr__http_hdr_is(r->hdrs[i].name, "content-length")) continue;
        for (k = 0; k < v.len && !any; k++) any = v.ptr[k] != ',' && v.ptr[k] != ' ' && v.ptr[k] != '\t';
        if (!any) return 1;
    }
    return 0;
}
static int pr__http_cl_tok(pr_slice t, void *user_data) {
    struct pr__http_cl *cl = (struct pr__http_cl *)user_data;
    uint64_t v;
    if (pr_parse_u64(t, &v) != PR_OK) return PR_EPROTO;
    if (cl->seen && v != cl->v) return PR_EPROTO;
    cl->seen = 1;
    cl->v = v;
    return 0;
}

struct pr__http_te { int n, chunked_at; };
static int pr__http_te_tok(pr_slice t, void *user_data) {
    struct pr__http_te *te = (struct pr__http_te *)user_data;
    const char *semi = (const char *)memchr(t.ptr, ';', t.len);
    if (semi) t.len = (size_t)(semi - t.ptr);
    t = pr_slice_trim(t);
    te->n++;
    if (pr__http_hdr_is(t, "chunked")) {
        if (te->chunked_at) return PR_EPROTO; /* chunked twice */
        te->chunked_at = te->n;
    }
    return 0;
}

struct pr__http_conn_tok { int close, keep; };
static int pr__http_conn_tok_fn(pr_slice t, void *user_data) {
    struct pr__http_conn_tok *c = (struct pr__http_conn_tok *)user_data;
    if (pr__http_hdr_is(t, "close")) c->close = 1;
    else if (pr__http_hdr_is(t, "keep-alive")) c->keep = 1;
    return 0;
}

/* Decide the body framing of the final response. */
static int pr__http_framing(pr_http_response *r, const char *method) {
    struct pr__http_cl cl = { 0, 0 };
    struct pr__http_te te = { 0, 0 };
    struct pr__http_conn_tok ct = { 0, 0 };
    int head = strcmp(method, "HEAD") == 0, connect = strcmp(method, "CONNECT") == 0;
    if (pr__http_cl_empty(r) || pr__http_each_token(r, "content-length", pr__http_cl_tok, &cl))
        return pr__http_fail(r, PR_EPROTO, "invalid or conflicting Content-Length");
    if (pr__http_each_token(r, "transfer-encoding", pr__http_te_tok, &te))
        return pr__http_fail(r, PR_EPROTO, "chunked applied twice in Transfer-Encoding");
    if (te.chunked_at && te.chunked_at != te.n)
        return pr__http_fail(r, PR_EPROTO, "Transfer-Encoding: chunked is not the final coding");
    pr__http_each_token(r, "connection", pr__http_conn_tok_fn, &ct);
    r->keepalive = !ct.close && (r->minor >= 1 || ct.keep);
    if (r->status == 101 || (connect && r->status / 100 == 2)) {
        r->state = PR__HTTP_B_EOF; /* the raw stream of the upgraded/tunnelled connection */
        r->keepalive = 0;
    } else if (head || r->status == 204 || r->status == 304) {
        r->state = PR__HTTP_B_DONE;
    } else if (te.n && r->minor == 0) {
        r->state = PR__HTTP_B_EOF; /* HTTP/1.0 with TE: faulty framing */
        r->keepalive = 0;
    } else if (te.n && te.chunked_at) {
        r->state = PR__HTTP_B_CSIZE;
        r->sub = PR__HTTP_CS_DIGITS;
        if (cl.seen) r->keepalive = 0;
    } else if (te.n) {
        r->state = PR__HTTP_B_EOF;
        r->keepalive = 0;
    } else if (cl.seen) {
        r->remaining = cl.v;
        r->state = cl.v ? PR__HTTP_B_IDENT : PR__HTTP_B_DONE;
    } else {
        r->state = PR__HTTP_B_EOF;
        r->keepalive = 0;
    }
    return PR_OK;
}

/* Grow the buffer to at least want bytes. */
static int pr__http_grow(pr_http_response *r, size_t want) {
    char *nb;
    if (want <= r->cap) return PR_OK;
    nb = (char *)pr__realloc(r->buf, r->cap, want);
    if (!nb) return PR_ENOMEM;
    r->buf = nb;
    r->cap = want;
    return PR_OK;
}

/* Move the head to a block of its own (its views rebased before anyone
   sees them, so they stay valid until destroy) and give the body the whole
   buffer, so that the body buffer can later grow for a fast body and shrink
   back for a slow one. */
static int pr__http_split_head(pr_http_response *r) {
    char *h = (char *)pr__alloc(r->base);
    size_t i;
    if (!h) return PR_ENOMEM;
    memcpy(h, r->buf, r->base);
    for (i = 0; i < r->nhdrs; i++) {
        r->hdrs[i].name.ptr = h + (r->hdrs[i].name.ptr - r->buf);
        r->hdrs[i].value.ptr = h + (r->hdrs[i].value.ptr - r->buf);
    }
    r->reason.ptr = h + (r->reason.ptr - r->buf);
    r->head = h;
    r->head_len = r->base;
    memmove(r->buf, r->buf + r->rpos, r->wpos - r->rpos);
    r->wpos -= r->rpos;
    r->rpos = r->base = 0;
    return PR_OK;
}

/* Give a body buffer that holds no head `area` bytes (at least the unread
   bytes, which move to its start; only those are copied). */
static int pr__http_rebuf(pr_http_response *r, size_t area) {
    size_t live = r->wpos - r->rpos;
    char *nb;
    if (area < live) area = live;
    if (!(nb = (char *)pr__alloc(area))) return PR_ENOMEM;
    if (live) memcpy(nb, r->buf + r->rpos, live);
    PR__HTTP_BODY_WORK(live);
    pr__free(r->buf, r->cap);
    r->buf = nb;
    r->cap = area;
    r->rpos = 0;
    r->wpos = live;
    return PR_OK;
}

/* Read heads until a final one; leaves the head in buf[0, base) and any
   body bytes in [base, wpos). upgrade: the request asked for a protocol
   switch (an Upgrade field), so a 101 is final; otherwise it is PR_EPROTO. */
static int pr__http_read_head(pr_http_response *r, const char *method, int upgrade, int64_t deadline) {
    size_t interim = 0, scan = 0, end;
    int rc;
    for (;;) {
        size_t check = PR__MIN(r->wpos, (size_t)5);
        if (memcmp(r->buf, "HTTP/", check) != 0) return pr__http_fail(r, PR_EPROTO, "malformed status line");
        end = pr__http_head_end(r->buf, &scan, r->wpos);
        if (!end) {
            ptrdiff_t k;
            if (r->wpos > r->opts.max_head_bytes - PR__MIN(r->head_used, r->opts.max_head_bytes))
                return pr__http_fail(r, PR_ELIMIT, "response head too large");
            if (r->wpos == r->cap) {
                size_t nc = r->cap * 2, lim = r->opts.max_head_bytes + 4;
                if (nc > lim && r->cap < lim) nc = lim;
                if ((rc = pr__http_grow(r, nc)) != 0) return pr__http_fail(r, rc, "out of memory");
            }
            k = pr__http_fill(r, r->buf + r->wpos, r->cap - r->wpos, deadline);
            if (k == PR_ECLOSED)
                return r->wpos ? pr__http_fail(r, PR_EPROTO, "connection closed in the response head")
                               : pr__http_fail(r, PR_ECLOSED, "connection closed before the response");
            if (k < 0) return k == PR_ETIMEDOUT || k == PR_ECANCELED ? (int)k : pr__http_conn_fail(r, (int)k);
            r->wpos += (size_t)k;
            r->rx = 1;
            continue;
        }
        if (end > r->opts.max_head_bytes - PR__MIN(r->head_used, r->opts.max_head_bytes))
            return pr__http_fail(r, PR_ELIMIT, "response head too large");
        if ((rc = pr__http_parse_head(r, end)) != 0) return rc;
        if (r->status == 101 && !upgrade)
            return pr__http_fail(r, PR_EPROTO, "101 Switching Protocols to a request that asked for no Upgrade");
        if (r->status >= 100 && r->status < 200 && r->status != 101) {
            /* interim: no body, whatever Content-Length or Transfer-Encoding it carries */
            if (++interim > r->opts.max_interim) return pr__http_fail(r, PR_ELIMIT, "too many interim 1xx responses");
            r->head_used += end; /* one head budget for all heads of the response */
            memmove(r->buf, r->buf + end, r->wpos - end);
            r->wpos -= end;
            r->nhdrs = 0;
            scan = 0;
            continue;
        }
        r->base = r->rpos = end;
        if ((rc = pr__http_framing(r, method)) != 0) return rc;
        /* a body that may outgrow this buffer gets all of it, the head a block
           of its own: pr__http_span then grows the buffer (to recv_buf_size)
           only for a body that keeps filling it */
        if (r->state != PR__HTTP_B_DONE && r->cap - r->base < r->opts.recv_buf_size &&
            !(r->state == PR__HTTP_B_IDENT && r->remaining <= r->cap - r->base) && pr__http_split_head(r) != PR_OK)
            return pr__http_fail(r, PR_ENOMEM, "out of memory");
        return PR_OK;
    }
}

/* Whether a conn failure means the peer closed or reset the connection. */
static int pr__http_peer_gone(int rc, const pr_err_info *e) {
    if (rc == PR_ECLOSED) return 1;
    if (rc == PR_EIO) return e->sys_errno == ECONNRESET || e->sys_errno == EPIPE || e->sys_errno == ECONNABORTED;
#ifndef PRISTINE_NO_TLS
    if (rc == PR_ETLS) return e->tls_error == PR_TLS_TRUNCATED; /* transport EOF without close_notify */
#endif
    return 0;
}

/* pr_http_exchange with an optional request target replacing the
   origin-form one (absolute-form for proxies, authority-form for CONNECT).
   *rx (optional) tells whether any response byte arrived, also on failure.
   head_used: head bytes already spent on this connection's first response
   (a CONNECT reply), counted against max_head_bytes. limit: what the
   deadline is called in timeout messages (NULL = "deadline"). */
static int pr__http_exchange(pr_http_response **out, pr_conn *conn, const pr_http_request *req,
                             const pr_http_opts *opts, const pr_slice *target, size_t head_used, int64_t deadline,
                             int *rx, const char *limit) {
    const char *method;
    pr_http_response *r;
    pr_buf head;
    size_t i;
    int rc, has_body, wfail = 0, upgrade = 0;
    if (out) *out = NULL;
    if (rx) *rx = 0;
    if (!out || !conn || !req || !req->url) return PR_EINVAL;
    method = req->method ? req->method : "GET";
    if (!pr__http_is_token(method, strlen(method))) return PR_EINVAL;
    if (req->body_fn && (req->body || req->body_len)) return PR_EINVAL;
    if (req->body_len && !req->body) return PR_EINVAL;
    pr_buf_init(&head);
    { /* one allocation for the head (and a small body) in the common case */
        size_t est = 96 + strlen(method) + (target ? target->len : req->url->path.len + req->url->query.len) +
                     req->url->host.len + (req->body && req->body_len <= 16384 ? req->body_len : 0);
        for (i = 0; req->headers && req->headers[i]; i++) est += strlen(req->headers[i]) + 3;
        rc = pr_buf_reserve(&head, est);
    }
    if (!rc) rc = pr__http_build_head(&head, req, method, target, &has_body, &upgrade, &conn->err);
    if (rc) {
        pr_buf_deinit(&head);
        return rc;
    }
    r = (pr_http_response *)pr__calloc(1, sizeof *r);
    if (!r) {
        pr_buf_deinit(&head);
        return PR_ENOMEM;
    }
    r->conn = conn;
    r->hdrs = r->hdrs_inline;
    r->hdrs_cap = PR__HTTP_INLINE_FIELDS;
    r->head_used = head_used;
    {
        const char *l = limit ? limit : "deadline";
        size_t n = PR__MIN(strlen(l), sizeof r->limit - 1);
        memcpy(r->limit, l, n);
        r->limit[n] = 0;
    }
    pr__http_opts_resolve(&r->opts, opts);
    /* room for a typical head (4 KiB) and a small body; a longer body grows
       the buffer to recv_buf_size beyond the head once the head is read, so
       that move copies at most this first buffer */
    r->cap = PR__MIN(r->opts.recv_buf_size, (size_t)PR__HTTP_FIRST_BODY) + PR__HTTP_HEAD_ROOM;
    if (r->cap < 64) r->cap = 64;
    r->buf = (char *)pr__alloc(r->cap);
    if (!r->buf) {
        pr_buf_deinit(&head);
        pr_http_response_destroy(r);
        return PR_ENOMEM;
    }
    /* a small body goes out with the head in one write */
    if (req->body && req->body_len <= 16384) {
        rc = pr_buf_append(&head, req->body, req->body_len);
        has_body = 0;
    }
    if (!rc && (rc = pr_conn_write(conn, head.data, head.len, deadline)) != 0) wfail = 1;
    if (!rc && has_body && req->body && (rc = pr_conn_write(conn, req->body, req->body_len, deadline)) != 0)
        wfail = 1;
    if (!rc && req->body_fn) rc = pr__http_send_chunked(conn, req, deadline, &wfail);
    pr_buf_deinit(&head);
    r->rx_at = pr_now(); /* the idle clock starts when the request has gone out */
    if (wfail && (rc == PR_ETIMEDOUT || rc == PR_ECANCELED)) { /* name the phase, keep the conn's words */
        char why[sizeof conn->err.msg];
        int e = conn->err.sys_errno;
        snprintf(why, sizeof why, "%s", conn->err.msg);
        if (rc == PR_ETIMEDOUT) pr__err_set(&conn->err, rc, e, "http: timed out sending the request (%s): %s", r->limit, why);
        else pr__err_set(&conn->err, rc, e, "http: canceled sending the request: %s", why);
    }
    if (rc && wfail && pr__http_peer_gone(rc, &conn->err)) {
        /* the server may have answered early (413, 401) and closed: deliver
           a complete final response if one arrived, else the write error */
        pr_err_info we = conn->err;
        if (pr__http_read_head(r, method, upgrade, deadline) == PR_OK) {
            r->keepalive = 0; /* the request was cut short */
            rc = PR_OK;
        } else {
            conn->err = we;
        }
    } else if (!rc) {
        rc = pr__http_read_head(r, method, upgrade, deadline);
    }
    if (rc) {
        if (rx) *rx = r->rx;
        pr_http_response_destroy(r);
        return rc;
    }
    if (rx) *rx = 1;
    *out = r;
    return PR_OK;
}

int pr_http_exchange(pr_http_response **out, pr_conn *conn, const pr_http_request *req, const pr_http_opts *opts,
                     pr_err_info *err, int64_t deadline) {
    int rc;
    rc = pr__http_exchange(out, conn, req, opts, NULL, 0, deadline, NULL, NULL);
    if (err) {
        if (rc && conn && conn->err.code == rc) *err = conn->err;
        else if (rc) pr__err_set(err, rc, 0, "http: %s", pr_strerror(rc));
        else memset(err, 0, sizeof *err);
    }
    return rc;
}

/* Run the framing machine over buffered bytes until body data is at rpos
   (returns 1), the body ended (0) or more input is needed (2). */
static int pr__http_advance(pr_http_response *r) {
    while (r->rpos < r->wpos || r->state == PR__HTTP_B_DONE) {
        unsigned char c;
        PR__HTTP_BODY_WORK(1);
        switch (r->state) {
        case PR__HTTP_B_DONE:
            return 0;
        case PR__HTTP_B_IDENT:
        case PR__HTTP_B_EOF:
        case PR__HTTP_B_CDATA:
            return 1;
        case PR__HTTP_B_CSIZE:
            c = (unsigned char)r->buf[r->rpos++];
            if (++r->line_len > r->opts.max_chunk_line) return pr__http_fail(r, PR_ELIMIT, "chunk-size line too long");
            if (r->sub == PR__HTTP_CS_DIGITS) {
                int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                      : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
                if (d >= 0) {
                    if (++r->ndigits > 16) return pr__http_fail(r, PR_EPROTO, "chunk size too long");
                    r->remaining = (r->remaining << 4) | (uint64_t)d;
                    continue;
                }
                if (!r->ndigits) return pr__http_fail(r, PR_EPROTO, "malformed chunk size");
                if (c == ' ' || c == '\t') r->sub = PR__HTTP_CS_BWS;
                else if (c == ';') r->sub = PR__HTTP_CS_EXT;
                else if (c == '\r') r->sub = PR__HTTP_CS_LF;
                else return pr__http_fail(r, PR_EPROTO, "malformed chunk size");
            } else if (r->sub == PR__HTTP_CS_BWS) {
                if (c == ';') r->sub = PR__HTTP_CS_EXT;
                else if (c != ' ' && c != '\t') return pr__http_fail(r, PR_EPROTO, "malformed chunk size line");
            } else if (r->sub == PR__HTTP_CS_EXT) {
                if (c == '\r') r->sub = PR__HTTP_CS_LF;
                else if (c == 0x7f || (c < 0x20 && c != '\t'))
                    return pr__http_fail(r, PR_EPROTO, "control byte in a chunk extension");
            } else { /* PR__HTTP_CS_LF */
                if (c != '\n') return pr__http_fail(r, PR_EPROTO, "chunk size line without CRLF");
                r->line_len = 0;
                r->ndigits = 0;
                if (r->remaining) {
                    r->state = PR__HTTP_B_CDATA;
                } else {
                    r->state = PR__HTTP_B_TRAILER;
                    r->sub = PR__HTTP_TR_START;
                }
            }
            continue;
        case PR__HTTP_B_CCRLF:
            c = (unsigned char)r->buf[r->rpos++];
            if (r->sub == 0) {
                if (c != '\r') return pr__http_fail(r, PR_EPROTO, "chunk data not followed by CRLF");
                r->sub = 1;
            } else {
                if (c != '\n') return pr__http_fail(r, PR_EPROTO, "chunk data not followed by CRLF");
                r->state = PR__HTTP_B_CSIZE;
                r->sub = PR__HTTP_CS_DIGITS;
            }
            continue;
        case PR__HTTP_B_TRAILER:
            /* trailer lines: header field rules, CRLF line ends; discarded */
            c = (unsigned char)r->buf[r->rpos++];
            if (++r->tr_bytes > r->opts.max_head_bytes) return pr__http_fail(r, PR_ELIMIT, "trailer section too large");
            if (r->sub == PR__HTTP_TR_START) {
                if (c == '\r') {
                    r->sub = PR__HTTP_TR_END_LF;
                } else if (c == ' ' || c == '\t') { /* obs-fold: continues the previous field */
                    if (!r->tr_fields) return pr__http_fail(r, PR_EPROTO, "obs-fold before the first trailer field");
                    r->sub = PR__HTTP_TR_VALUE;
                } else if (pr__http_tchar(c)) {
                    if (++r->tr_fields > r->opts.max_fields) return pr__http_fail(r, PR_ELIMIT, "too many trailer fields");
                    r->sub = PR__HTTP_TR_NAME;
                } else {
                    return pr__http_fail(r, PR_EPROTO, "malformed trailer line");
                }
            } else if (r->sub == PR__HTTP_TR_NAME) {
                if (c == ':') r->sub = PR__HTTP_TR_VALUE;
                else if (!pr__http_tchar(c)) return pr__http_fail(r, PR_EPROTO, "malformed trailer line");
            } else if (r->sub == PR__HTTP_TR_VALUE) {
                if (c == '\r') r->sub = PR__HTTP_TR_LINE_LF;
                else if (c == '\n') return pr__http_fail(r, PR_EPROTO, "malformed trailer line");
                else if (c == 0x7f || (c < 0x20 && c != '\t'))
                    return pr__http_fail(r, PR_EPROTO, "control byte in a trailer line");
            } else if (r->sub == PR__HTTP_TR_LINE_LF) {
                if (c != '\n') return pr__http_fail(r, PR_EPROTO, "bare CR in a trailer line");
                r->sub = PR__HTTP_TR_START;
            } else {
                if (c != '\n') return pr__http_fail(r, PR_EPROTO, "malformed end of trailers");
                r->state = PR__HTTP_B_DONE;
            }
            continue;
        default:
            return pr__http_fail(r, PR_ESTATE, "bad state");
        }
    }
    return 2;
}

/* The next span of at most max body bytes. Returns PR_OK with *p, *n set,
   PR_ECLOSED at the end, or an error. dst/dst_n: optional direct-read
   target for big identity reads (then *p == dst). */
static int pr__http_span(pr_http_response *r, const char **p, size_t *n, size_t max, char *dst, int64_t deadline) {
    for (;;) {
        ptrdiff_t k;
        size_t avail, room;
        int a;
        if (r->err) return r->err;
        a = pr__http_advance(r);
        if (a < 0) return r->err = a;
        if (a == 0) return PR_ECLOSED;
        if (a == 1) {
            avail = PR__MIN(r->wpos - r->rpos, max);
            if (r->state != PR__HTTP_B_EOF && r->remaining < avail) avail = (size_t)r->remaining;
            *p = r->buf + r->rpos;
            *n = avail;
            PR__HTTP_BODY_WORK(1);
            r->rpos += avail;
            if (r->state != PR__HTTP_B_EOF) {
                r->remaining -= avail;
                if (!r->remaining) {
                    if (r->state == PR__HTTP_B_IDENT) {
                        r->state = PR__HTTP_B_DONE;
                    } else {
                        r->state = PR__HTTP_B_CCRLF;
                        r->sub = 0;
                    }
                }
            }
            return PR_OK;
        }
        /* need more input */
        if (r->rpos == r->wpos) r->rpos = r->wpos = r->base;
        if (dst && r->rpos == r->wpos && (r->state == PR__HTTP_B_EOF || r->state == PR__HTTP_B_IDENT) &&
            max >= r->opts.recv_buf_size / 2) {
            size_t want = max;
            if (r->state == PR__HTTP_B_IDENT && r->remaining < want) want = (size_t)r->remaining;
            PR__HTTP_BODY_WORK(1);
            k = pr__http_fill(r, dst, want, deadline);
            if (k > 0) {
                if (r->state == PR__HTTP_B_IDENT) {
                    r->remaining -= (uint64_t)k;
                    if (!r->remaining) r->state = PR__HTTP_B_DONE;
                }
                *p = dst;
                *n = (size_t)k;
                return PR_OK;
            }
        } else {
            size_t area = r->cap - r->base;
            /* resized only when it holds no head (pr__http_split_head) */
            if (!r->base && r->full_fill && area < r->opts.recv_buf_size) { /* a fast body: double it */
                if (pr__http_rebuf(r, PR__MIN(area * 2, r->opts.recv_buf_size)) != PR_OK)
                    return r->err = pr__http_fail(r, PR_ENOMEM, "out of memory");
                r->full_fill = 0;
            } else if (!r->base && r->rpos == r->wpos && area > PR__HTTP_FIRST_BODY &&
                       r->small_fills >= PR__HTTP_SHRINK_FILLS) {
                (void)pr__http_rebuf(r, PR__HTTP_FIRST_BODY); /* a slow one again: shrink (or keep it) */
                r->small_fills = 0;
            }
            if (r->wpos == r->cap) { /* compact the body area */
                PR__HTTP_BODY_WORK(r->wpos - r->rpos);
                memmove(r->buf + r->base, r->buf + r->rpos, r->wpos - r->rpos);
                r->wpos -= r->rpos - r->base;
                r->rpos = r->base;
            }
            room = r->cap - r->wpos;
            PR__HTTP_BODY_WORK(1);
            k = pr__http_fill(r, r->buf + r->wpos, room, deadline);
            if (k > 0) {
                area = r->cap - r->base;
                r->full_fill = (size_t)k == room && room >= area / 2;
                r->small_fills = (size_t)k < area / 8 ? r->small_fills + 1 : 0;
                r->wpos += (size_t)k;
                continue;
            }
        }
        if (k == PR_ECLOSED) {
            if (r->state == PR__HTTP_B_EOF) {
                r->state = PR__HTTP_B_DONE;
                return PR_ECLOSED;
            }
            return r->err = pr__http_fail(r, PR_EPROTO, "truncated body");
        }
        /* the caller's deadline: retryable, nothing was lost */
        if (k == PR_ETIMEDOUT || k == PR_ECANCELED) return (int)k;
        return r->err = pr__http_conn_fail(r, (int)k);
    }
}

ptrdiff_t pr_http_read(pr_http_response *r, void *buf, size_t n, int64_t deadline) {
    const char *p;
    size_t got;
    int rc;
    if (!r || !buf || !n) return PR_EINVAL;
    rc = pr__http_span(r, &p, &got, n, (char *)buf, deadline);
    if (rc) return rc;
    if (p != (const char *)buf) memcpy(buf, p, got);
    return (ptrdiff_t)got;
}

int pr_http_next_span(pr_http_response *r, const char **ptr, size_t *len, int64_t deadline) {
    if (!r || !ptr || !len) return PR_EINVAL;
    return pr__http_span(r, ptr, len, SIZE_MAX, NULL, deadline);
}

int pr_http_status(const pr_http_response *r) { return r ? r->status : PR_EINVAL; }

int pr_http_version_minor(const pr_http_response *r) { return r ? r->minor : PR_EINVAL; }

pr_slice pr_http_reason(const pr_http_response *r) {
    pr_slice s = { "", 0 };
    return r ? r->reason : s;
}

size_t pr_http_header_count(const pr_http_response *r) { return r ? r->nhdrs : 0; }

int pr_http_header_at(const pr_http_response *r, size_t i, pr_http_header *out) {
    if (!r || !out || i >= r->nhdrs) return PR_EINVAL;
    *out = r->hdrs[i];
    return PR_OK;
}

const pr_slice *pr_http_header_get(const pr_http_response *r, const char *name) {
    size_t i;
    pr_slice n;
    if (!r || !name) return NULL;
    n = pr_slice_cstr(name);
    for (i = 0; i < r->nhdrs; i++)
        if (pr_slice_ieq(r->hdrs[i].name, n)) return &r->hdrs[i].value;
    return NULL;
}

int pr_http_reusable(const pr_http_response *r) {
    return r && r->keepalive && !r->err && r->state == PR__HTTP_B_DONE && r->rpos == r->wpos;
}

int pr_http_last_error(const pr_http_response *r, pr_err_info *out) {
    if (!r || !out) return PR_EINVAL;
    *out = r->einfo;
    return PR_OK;
}

void pr_http_response_destroy(pr_http_response *r) {
    if (!r) return;
    if (r->on_destroy) r->on_destroy(r, r->on_destroy_ctx);
    pr__free(r->buf, r->cap);
    pr__free(r->head, r->head_len);
    if (r->hdrs != r->hdrs_inline) pr__free(r->hdrs, r->hdrs_cap * sizeof *r->hdrs);
    pr__free(r, sizeof *r);
}
