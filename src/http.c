// @pristine:module http - HTTP/1.1 client: request writer, response parser, bodies, keep-alive, redirects
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
    size_t recv_buf_size;   /* 0 = 65536: receive buffer beyond the head (64 KiB reads: smaller
                               ones cost 8-25 % of the throughput, spec/http.md 7.5) */
    int idle_timeout_ms;    /* 0 = off (<0 = off too): max gap between received bytes */
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
    const pr_http_header *headers;  /* user fields; a Host field replaces the
                                       generated one; Content-Length and
                                       Transfer-Encoding are PR_EINVAL */
    size_t nheaders;
    const void *body;               /* body with Content-Length; NULL = none */
    size_t body_len;
    pr_http_body_fn body_fn;        /* streaming body, sent chunked; NULL = none */
    void *body_user_data;           /* passed to body_fn */
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
           request; opts - limits, NULL = defaults (copied); deadline -
           absolute ms for the whole call.
   Returns: PR_OK (whatever the status); PR_EINVAL (bad method, header name
            or value with CR/LF/NUL, both body and body_fn, user framing
            fields, missing url); PR_ENOMEM; PR_EPROTO (malformed response,
            a 101 without an Upgrade request field; message in
            pr_conn_last_error(conn)); PR_ELIMIT (a limit of
            opts); PR_ECLOSED (closed before any response byte); a
            conn error (PR_EIO, PR_ETLS, ...); a negative code from body_fn;
            PR_ETIMEDOUT (deadline or idle timeout); PR_ECANCELED. After
            any failure the connection's state is unknown: destroy it.
   Blocks: yes.
   Thread: owner.
   See: pr_http_read, pr_http_next_span, pr_http_response_destroy. */
PRISTINE_API int pr_http_exchange(pr_http_response **out, pr_conn *conn, const pr_http_request *req,
                                  const pr_http_opts *opts, int64_t deadline);

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

/*
 * Client layer: pr_http_client owns connections. It connects (TCP, then a
 * proxy CONNECT tunnel and/or TLS for https), keeps idle keep-alive
 * connections in a pool, follows redirects when asked, and returns a
 * response that owns its connection until pr_http_response_destroy. A
 * response destroyed after its body was read to the end (and that
 * pr_http_reusable accepts) hands the connection back to the pool; any
 * other response closes it.
 *
 * Pool: per client, keyed by scheme, host, port and proxy (TLS settings
 * are per client, so they are part of the key implicitly). Idle
 * connections older than pool_idle_ms are closed. Before reuse a
 * non-blocking read checks the connection: anything readable (EOF, reset,
 * stray bytes) means it is discarded. If a REUSED connection dies before
 * the first response byte (the peer closed or reset it while the request
 * was written or the head awaited: PR_ECLOSED, PR_EIO with ECONNRESET,
 * EPIPE or ECONNABORTED, a TLS transport EOF), the request is sent once
 * more on a fresh connection when it is replayable: no body_fn (a buffer
 * body is replayed, whatever the method, as curl does). Never after a
 * response byte arrived, never for timeouts or cancellation, never for a
 * streaming body_fn request.
 *
 * Redirects (max_redirects > 0; at most 10): 301/302/303/307/308 with a
 * Location field. Location is resolved against the current URL
 * (pr_url_resolve). 303, and 301/302 answering a POST, become GET
 * without a body (curl's behaviour; HEAD stays HEAD on 303); 307/308 keep
 * method and body. A request with a body_fn cannot be replayed: a
 * 307/308 (or any redirect keeping the body) is returned as the final
 * response instead. On an origin change (scheme, host or port) the
 * Authorization, Cookie and Proxy-Authorization fields of the request
 * are dropped for the rest of the chain, and so is a user Host field (it
 * names the old origin; the new Host comes from the URL). https -> http is
 * PR_EPROTO unless allow_https_to_http. More than max_redirects is
 * PR_ELIMIT. The bodies of followed 3xx responses are drained (up to 64
 * KiB, for at most 1 s within the deadline) so their connection can be
 * reused; a body not over by then closes that connection, and the next hop
 * goes on.
 *
 * Proxies (curl's conventions): explicit options first, then (unless
 * ignore_env) the environment read once by pr_http_client_create:
 * http_proxy (lower case only: httpoxy), https_proxy / HTTPS_PROXY,
 * all_proxy / ALL_PROXY (fallback for both), no_proxy / NO_PROXY (see
 * pr_http_no_proxy_match). A proxy URL without a scheme means http://;
 * only http:// proxies are supported. Loopback origins never go through
 * a proxy: localhost, *.localhost and the addresses 127.0.0.0/8 and ::1
 * (parsed as addresses: "127.example.test" is a name and is proxied).
 * Client TCP connections get TCP keep-alive (tcp_keepalive_s) and
 * TCP_NODELAY. Plain http through a proxy
 * sends the absolute-form target to the proxy (Host still sent);
 * https goes through a "CONNECT host:port" tunnel, then TLS to the origin
 * inside it. Proxy credentials in the proxy URL's userinfo become
 * "Proxy-Authorization: Basic". A CONNECT answered with a non-2xx status
 * is PR_EPROTO with the status in pr_err_info.http_status.
 *
 * Errors: every failure of pr_http_client_request leaves its detail in
 * pr_http_client_last_error (code, sys_errno, tls_error, dns_error,
 * http_status, msg).
 */

/* An HTTP client with a connection pool. Opaque. */
typedef struct pr_http_client pr_http_client;

/* Options of pr_http_client_create. Zero in every field means the default;
   strings are copied. */
typedef struct pr_http_client_opts {
    int connect_timeout_ms;   /* 0 = 30000; < 0 = only the call's deadline: caps DNS, TCP,
                                 proxy CONNECT and TLS handshake together */
    int idle_timeout_ms;      /* 0 = off: max gap between received bytes (replaces http.idle_timeout_ms) */
    int pool_idle_ms;         /* 0 = 60000: idle connections older than this are closed; < 0 = no pool */
    int pool_max;             /* 0 = 16: idle connections kept (all origins together) */
    int max_redirects;        /* 0 = redirects are returned, not followed; > 0 = follow up to this many (max 10) */
    int allow_https_to_http;  /* 0 = a redirect from https to http fails with PR_EPROTO */
    int ignore_env;           /* 0 = unset proxy fields come from the environment; 1 = never read it */
    const char *http_proxy;   /* proxy for http URLs; NULL = env http_proxy; "" = none */
    const char *https_proxy;  /* proxy for https URLs; NULL = env https_proxy, HTTPS_PROXY; "" = none */
    const char *all_proxy;    /* fallback for both; NULL = env all_proxy, ALL_PROXY; "" = none */
    const char *no_proxy;     /* hosts never proxied; NULL = env no_proxy, NO_PROXY; "" = none */
    pr_tls_opts tls;          /* for https origins: ca_file / ca_pem are parsed once by
                                 pr_http_client_create (unless tls.anchors is set: those are
                                 used, borrowed, and must outlive the client); alpn copied;
                                 tls.err unused */
    pr_http_opts http;        /* parser limits of every exchange */
    int tcp_keepalive_s;      /* 0 = 60: TCP keep-alive probes after this many idle seconds; < 0 = off */
} pr_http_client_opts;

/* Create a client. Reads the proxy environment once (unless ignore_env)
   and parses the trust anchors of tls.ca_file / tls.ca_pem once (shared by
   every https connection of the client; not in a PRISTINE_NO_TLS build).
   Params: out - receives the client; opts - NULL = defaults (copied).
   Returns: PR_OK; PR_EINVAL (out NULL, a proxy URL that does not parse, no
            certificate in tls.ca_file / tls.ca_pem); PR_EIO (tls.ca_file
            cannot be read); PR_ENOTSUP (an https:// or other non-http proxy
            URL); PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_http_client_request, pr_http_client_destroy. */
PRISTINE_API int pr_http_client_create(pr_http_client **out, const pr_http_client_opts *opts);

/* Destroy a client and close its idle connections. Responses still alive
   keep working; the client's memory goes with the last of them (their
   connections are then closed instead of pooled). NULL is a no-op.
   Params: c - the client.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_http_client_create. */
PRISTINE_API void pr_http_client_destroy(pr_http_client *c);

/* Send a request and read the final response head: pooled or new
   connection, proxy, TLS, one transparent retry on a dead reused
   connection, redirects when enabled (see above). The response owns the
   connection; destroy it after reading the body to let the connection be
   reused. req->url and the request are borrowed for the call only. After
   a 101 the new protocol's bytes can be read here but not written: a
   protocol that writes after the switch uses pr_http_exchange on a
   connection of its own.
   Params: c - the client; out - receives the response (NULL on failure);
           req - the request (url required); deadline - absolute ms for the
           whole call (connect_timeout_ms caps the connect phase inside it).
   Returns: PR_OK (whatever the status); PR_EINVAL (bad request, see
            pr_http_exchange); PR_ENOMEM; PR_EDNS; PR_EIO; PR_ETLS;
            PR_ENOTSUP (https in a PRISTINE_NO_TLS build); PR_ECLOSED;
            PR_EPROTO (malformed response, proxy refused CONNECT, https ->
            http redirect refused); PR_ELIMIT (a parser limit, too many
            redirects); a negative code from body_fn; PR_ETIMEDOUT
            (deadline, connect or idle timeout); PR_ECANCELED. Detail in
            pr_http_client_last_error.
   Blocks: yes.
   Thread: owner.
   See: pr_http_client_get, pr_http_read, pr_http_response_destroy. */
PRISTINE_API int pr_http_client_request(pr_http_client *c, pr_http_response **out, const pr_http_request *req,
                                        int64_t deadline);

/* GET a URL given as text: pr_url_parse, then pr_http_client_request.
   Params: c - the client; out - receives the response; url - NUL-terminated
           absolute http/https URL; deadline - absolute ms.
   Returns: as pr_http_client_request (PR_EINVAL for a URL that does not
            parse); PR_ETIMEDOUT; PR_ECANCELED.
   Blocks: yes.
   Thread: owner.
   See: pr_http_client_request. */
PRISTINE_API int pr_http_client_get(pr_http_client *c, pr_http_response **out, const char *url, int64_t deadline);

/* Detail of the client's last failure.
   Params: c - the client; out - receives a copy.
   Returns: PR_OK; PR_EINVAL if c or out is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_http_client_request. */
PRISTINE_API int pr_http_client_last_error(const pr_http_client *c, pr_err_info *out);

/* Number of idle connections in the client's pool (for tests and stats).
   Params: c - the client.
   Returns: the count; 0 for NULL.
   Blocks: no.
   Thread: owner.
   See: pr_http_client_opts. */
PRISTINE_API size_t pr_http_client_idle_count(const pr_http_client *c);

/* Whether host is excluded from proxying by a no_proxy list (curl's
   rules): comma-separated entries, surrounding spaces ignored, ASCII
   case-insensitive; "*" alone excludes every host; an entry matches the
   host itself or any subdomain (a leading dot is optional: ".example.com"
   and "example.com" both match "a.example.com" and "example.com", never
   "badexample.com"); a ":port" suffix of an entry is ignored; IPv6
   entries may be bracketed. An IP-literal host matches an entry that is
   the same address (compared as addresses: "::1" matches "0:0::1"; never
   as a domain suffix) or a CIDR range containing it (curl >= 7.86):
   "192.168.0.0/16", "10.0.0.0/8", "::1/128", "fe80::/10", "[fe80::]/10";
   a range never matches a host name, and a malformed range (bits beyond
   the address size, no digits) matches nothing.
   Params: no_proxy - the list (NULL or "" = nothing excluded); host - the
           URL's host (IPv6 with or without brackets).
   Returns: 1 if excluded (connect directly), 0 if not.
   Blocks: no.
   Thread: any.
   See: pr_http_client_opts. */
PRISTINE_API int pr_http_no_proxy_match(const char *no_proxy, const char *host);

// @pristine:impl
#define PR__HTTP_DEF_HEAD 65536
#define PR__HTTP_DEF_FIELDS 100
#define PR__HTTP_DEF_CHUNK_LINE 4096
#define PR__HTTP_DEF_INTERIM 10
#define PR__HTTP_DEF_RECV 65536
#define PR__HTTP_CHUNK_OUT 16384 /* streaming request body chunk */

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
    pr_http_header *hdrs;
    size_t nhdrs, hdrs_cap;
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
    int err;                  /* sticky error, 0 = none */
    pr_err_info einfo;
    /* client layer: a response from pr_http_client_request owns its
       connection until destroy, then hands it back to the client's pool */
    pr_http_client *client;   /* NULL for pr_http_exchange */
    pr_conn *own_conn;        /* the owned connection (== conn) or NULL */
    char *pool_key;           /* owned pool key of own_conn */
    size_t pool_key_len;
};

static void pr__http_client_release(pr_http_response *r);

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

/* RFC 9110 tchar. */
static int pr__http_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int pr__http_is_token(const char *p, size_t n) {
    size_t i;
    if (!n) return 0;
    for (i = 0; i < n; i++)
        if (!pr__http_tchar((unsigned char)p[i])) return 0;
    return 1;
}

/* ---- request writer ---- */

static int pr__http_hdr_is(pr_slice name, const char *s) { return pr_slice_ieq(name, pr_slice_cstr(s)); }

/* Build the request head into b. */
static int pr__http_build_head(pr_buf *b, const pr_http_request *req, const char *method, const pr_slice *target,
                               int *has_body) {
    size_t i, mlen = strlen(method);
    int host_given = 0, rc = PR_OK;
    for (i = 0; i < req->nheaders; i++) {
        const pr_http_header *h = &req->headers[i];
        size_t k;
        if (!h->name.ptr || !pr__http_is_token(h->name.ptr, h->name.len)) return PR_EINVAL;
        if (h->value.len && !h->value.ptr) return PR_EINVAL;
        for (k = 0; k < h->value.len; k++) {
            char c = h->value.ptr[k];
            if (c == '\r' || c == '\n' || c == '\0') return PR_EINVAL;
        }
        if (pr__http_hdr_is(h->name, "content-length") || pr__http_hdr_is(h->name, "transfer-encoding"))
            return PR_EINVAL;
        if (pr__http_hdr_is(h->name, "host")) host_given = 1;
    }
    *has_body = req->body != NULL || req->body_len > 0 || req->body_fn != NULL;
    if (!rc) rc = pr_buf_append(b, method, mlen);
    if (!rc) rc = pr_buf_append(b, " ", 1);
    if (!rc) rc = target ? pr_buf_append(b, target->ptr, target->len) : pr_url_target(b, req->url);
    if (!rc) rc = pr_buf_append_str(b, " HTTP/1.1\r\n");
    if (!rc && !host_given) {
        rc = pr_buf_append_str(b, "Host: ");
        if (!rc) rc = pr_url_authority(b, req->url, 0);
        if (!rc) rc = pr_buf_append(b, "\r\n", 2);
    }
    for (i = 0; !rc && i < req->nheaders; i++) {
        const pr_http_header *h = &req->headers[i];
        rc = pr_buf_append(b, h->name.ptr, h->name.len);
        if (!rc) rc = pr_buf_append(b, ": ", 2);
        if (!rc) rc = pr_buf_append(b, h->value.ptr, h->value.len);
        if (!rc) rc = pr_buf_append(b, "\r\n", 2);
    }
    if (!rc) {
        if (req->body_fn)
            rc = pr_buf_append_str(b, "Transfer-Encoding: chunked\r\n");
        else if (*has_body || (mlen == 4 && !memcmp(method, "POST", 4)) || (mlen == 3 && !memcmp(method, "PUT", 3)) ||
                 (mlen == 5 && !memcmp(method, "PATCH", 5)))
            rc = pr_buf_printf(b, "Content-Length: %llu\r\n", (unsigned long long)req->body_len);
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
   timeouts say whether the idle cap fired. */
static ptrdiff_t pr__http_fill(pr_http_response *r, char *dst, size_t n, int64_t deadline) {
    int64_t dl = deadline;
    ptrdiff_t k;
    int idle = 0;
    if (r->opts.idle_timeout_ms > 0) {
        int64_t idl = pr_deadline_in(r->opts.idle_timeout_ms);
        if (idl < dl) {
            dl = idl;
            idle = 1;
        }
    }
    k = pr_conn_read(r->conn, dst, n, dl);
    if (k == 0) k = PR_ECLOSED; /* a conn must not return 0; never spin on it */
    if (k == PR_ETIMEDOUT)
        return pr__http_fail(r, PR_ETIMEDOUT, idle ? "idle timeout: no bytes received in time" : "deadline passed");
    if (k == PR_ECANCELED) return pr__http_fail(r, PR_ECANCELED, "canceled");
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
        size_t nc = r->hdrs_cap ? r->hdrs_cap * 2 : 16;
        pr_http_header *h;
        if (nc > r->opts.max_fields) nc = r->opts.max_fields;
        h = (pr_http_header *)pr__realloc(r->hdrs, r->hdrs_cap * sizeof *h, nc * sizeof *h);
        if (!h) return PR_ENOMEM;
        r->hdrs = h;
        r->hdrs_cap = nc;
    }
    r->hdrs[r->nhdrs].name = name;
    r->hdrs[r->nhdrs].value = value;
    r->nhdrs++;
    return PR_OK;
}

/* Parse a complete head in buf[0, end). Fills status, reason and headers. */
static int pr__http_parse_head(pr_http_response *r, size_t end) {
    char *b = r->buf;
    size_t pos = 0, i;
    int first = 1;
    r->nhdrs = 0;
    while (pos < end) {
        char *line = b + pos, *lf = (char *)memchr(line, '\n', end - pos);
        size_t len = (size_t)(lf - line), next = pos + len + 1;
        if (len && line[len - 1] == '\r') len--;
        for (i = 0; i < len; i++) {
            unsigned char c = (unsigned char)line[i];
            if (c == '\r') return pr__http_fail(r, PR_EPROTO, "bare CR in the response head");
            if (c == 0 || c == 0x7f || (c < 0x20 && c != '\t'))
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
            /* obs-fold: replace the line break with SP and extend the previous value */
            pr_http_header *h;
            if (!r->nhdrs) return pr__http_fail(r, PR_EPROTO, "obs-fold before the first header field");
            h = &r->hdrs[r->nhdrs - 1];
            for (i = (size_t)(h->value.ptr + h->value.len - b); i < pos; i++) b[i] = ' ';
            h->value.len = (size_t)(line + len - h->value.ptr);
            h->value = pr_slice_trim(h->value);
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
        /* room for the body: recv_buf_size beyond the head */
        if (r->cap - r->base < r->opts.recv_buf_size && r->state != PR__HTTP_B_DONE) {
            char *old = r->buf;
            size_t i;
            if ((rc = pr__http_grow(r, r->base + r->opts.recv_buf_size)) != 0)
                return pr__http_fail(r, rc, "out of memory");
            if (r->buf != old) { /* rebase the views */
                for (i = 0; i < r->nhdrs; i++) {
                    r->hdrs[i].name.ptr = r->buf + (r->hdrs[i].name.ptr - old);
                    r->hdrs[i].value.ptr = r->buf + (r->hdrs[i].value.ptr - old);
                }
                r->reason.ptr = r->buf + (r->reason.ptr - old);
            }
        }
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
   (a CONNECT reply), counted against max_head_bytes. */
static int pr__http_exchange(pr_http_response **out, pr_conn *conn, const pr_http_request *req,
                             const pr_http_opts *opts, const pr_slice *target, size_t head_used, int64_t deadline,
                             int *rx) {
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
    if (req->nheaders && !req->headers) return PR_EINVAL;
    pr_buf_init(&head);
    rc = pr__http_build_head(&head, req, method, target, &has_body);
    for (i = 0; !rc && i < req->nheaders; i++)
        if (pr__http_hdr_is(req->headers[i].name, "upgrade")) upgrade = 1;
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
    r->head_used = head_used;
    pr__http_opts_resolve(&r->opts, opts);
    r->cap = PR__MIN(r->opts.recv_buf_size, r->opts.max_head_bytes + 4);
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
                     int64_t deadline) {
    return pr__http_exchange(out, conn, req, opts, NULL, 0, deadline, NULL);
}

/* Run the framing machine over buffered bytes until body data is at rpos
   (returns 1), the body ended (0) or more input is needed (2). */
static int pr__http_advance(pr_http_response *r) {
    while (r->rpos < r->wpos || r->state == PR__HTTP_B_DONE) {
        unsigned char c;
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
            if (r->wpos == r->cap) { /* compact the body area */
                memmove(r->buf + r->base, r->buf + r->rpos, r->wpos - r->rpos);
                r->wpos -= r->rpos - r->base;
                r->rpos = r->base;
            }
            room = r->cap - r->wpos;
            k = pr__http_fill(r, r->buf + r->wpos, room, deadline);
            if (k > 0) {
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
        if (k == PR_ETIMEDOUT || k == PR_ECANCELED) return (int)k; /* retryable: nothing was lost */
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
    if (r->client) pr__http_client_release(r);
    pr__free(r->buf, r->cap);
    pr__free(r->hdrs, r->hdrs_cap * sizeof *r->hdrs);
    pr__free(r, sizeof *r);
}

/* ==== client layer ==== */
#define PR__HTTP_DEF_CONNECT_MS 30000
#define PR__HTTP_DEF_POOL_IDLE_MS 60000
#define PR__HTTP_DEF_POOL_MAX 16
#define PR__HTTP_MAX_REDIRECTS 10
#define PR__HTTP_DRAIN_MAX 65536 /* bytes of a followed 3xx body read to keep its connection */
#define PR__HTTP_DRAIN_MS 1000    /* time spent on that at most */

/* An idle pooled connection; the key bytes follow the struct. */
typedef struct pr__http_pooled {
    struct pr__http_pooled *next;
    pr_conn *conn;
    int64_t since;
    size_t key_len;
} pr__http_pooled;

struct pr_http_client {
    pr_http_client_opts o;        /* resolved; string fields point at the copies below */
    char *ca_file, *ca_pem, *alpn, *no_proxy;
    size_t ca_file_n, ca_pem_n, alpn_n, no_proxy_n;
    pr_tls_anchors *anchors;      /* parsed from ca_file / ca_pem at create; owned */
    pr_url proxy_http, proxy_https; /* mem_ == NULL: none */
    pr__http_pooled *pool;        /* most recently released first */
    size_t npool;
    long live;                    /* responses that own a connection */
    int destroyed;                /* pr_http_client_destroy ran; free with the last response */
    pr_err_info err;
};

static char *pr__http_strdup(const char *s, size_t *n) {
    char *d;
    *n = strlen(s) + 1;
    d = (char *)pr__alloc(*n);
    if (d) memcpy(d, s, *n);
    return d;
}

static void pr__http_pool_free(pr__http_pooled *e) {
    pr_conn_destroy(e->conn);
    pr__free(e, sizeof *e + e->key_len);
}

static void pr__http_client_free(pr_http_client *c) {
    while (c->pool) {
        pr__http_pooled *e = c->pool;
        c->pool = e->next;
        pr__http_pool_free(e);
    }
    pr__free(c->ca_file, c->ca_file_n);
    pr__free(c->ca_pem, c->ca_pem_n);
    pr__free(c->alpn, c->alpn_n);
    pr__free(c->no_proxy, c->no_proxy_n);
    pr_tls_anchors_destroy(c->anchors);
    pr_url_deinit(&c->proxy_http);
    pr_url_deinit(&c->proxy_https);
    pr__free(c, sizeof *c);
}

/* Parse a proxy URL ("host:port" means http://host:port). "" = none. */
static int pr__http_proxy_parse(pr_url *u, const char *s) {
    const char *sep;
    pr_buf b;
    int rc = PR_OK;
    if (!s || !*s) return PR_OK;
    sep = strstr(s, "://");
    if (sep && !((size_t)(sep - s) == 4 && (s[0] | 0x20) == 'h' && (s[1] | 0x20) == 't' &&
                 (s[2] | 0x20) == 't' && (s[3] | 0x20) == 'p'))
        return PR_ENOTSUP; /* https://, socks5://, ... */
    pr_buf_init(&b);
    if (!sep) rc = pr_buf_append_str(&b, "http://");
    if (!rc) rc = pr_buf_append_str(&b, s);
    if (!rc) rc = pr_url_parse(u, b.data, b.len, NULL);
    pr_buf_deinit(&b);
    return rc;
}

static const char *pr__http_env2(const char *a, const char *b) {
    const char *v = a ? getenv(a) : NULL;
    if (!v && b) v = getenv(b);
    return v;
}

int pr_http_client_create(pr_http_client **out, const pr_http_client_opts *opts) {
    pr_http_client *c;
    const char *hp, *sp, *ap, *np;
    int rc = PR_OK;
    if (out) *out = NULL;
    if (!out) return PR_EINVAL;
    c = (pr_http_client *)pr__calloc(1, sizeof *c);
    if (!c) return PR_ENOMEM;
    if (opts) c->o = *opts;
    c->o.connect_timeout_ms = PR__DEF(c->o.connect_timeout_ms, PR__HTTP_DEF_CONNECT_MS);
    c->o.pool_idle_ms = PR__DEF(c->o.pool_idle_ms, PR__HTTP_DEF_POOL_IDLE_MS);
    c->o.pool_max = PR__DEF(c->o.pool_max, PR__HTTP_DEF_POOL_MAX);
    if (c->o.pool_max < 0) c->o.pool_max = 0;
    if (c->o.max_redirects < 0) c->o.max_redirects = 0;
    if (c->o.max_redirects > PR__HTTP_MAX_REDIRECTS) c->o.max_redirects = PR__HTTP_MAX_REDIRECTS;
    if (c->o.idle_timeout_ms) c->o.http.idle_timeout_ms = c->o.idle_timeout_ms;
    c->o.tcp_keepalive_s = PR__DEF(c->o.tcp_keepalive_s, 60);
    c->o.tls.err = NULL;
    if (c->o.tls.ca_file && !(c->ca_file = pr__http_strdup(c->o.tls.ca_file, &c->ca_file_n))) rc = PR_ENOMEM;
    if (!rc && c->o.tls.ca_pem) {
        c->ca_pem_n = c->o.tls.ca_pem_len ? c->o.tls.ca_pem_len : strlen(c->o.tls.ca_pem);
        if ((c->ca_pem = (char *)pr__alloc(c->ca_pem_n)) != NULL) memcpy(c->ca_pem, c->o.tls.ca_pem, c->ca_pem_n);
        else rc = PR_ENOMEM;
        c->o.tls.ca_pem_len = c->ca_pem_n;
    }
    if (!rc && c->o.tls.alpn && !(c->alpn = pr__http_strdup(c->o.tls.alpn, &c->alpn_n))) rc = PR_ENOMEM;
    c->o.tls.ca_file = c->ca_file;
    c->o.tls.ca_pem = c->ca_pem;
    c->o.tls.alpn = c->alpn;
#ifndef PRISTINE_NO_TLS
    /* parse the trust anchors once; every connect shares them read-only */
    if (!rc && !c->o.tls.anchors && !c->o.tls.insecure_skip_verify_DANGEROUS && (c->ca_file || c->ca_pem)) {
        rc = pr_tls_anchors_create(&c->anchors, c->ca_pem ? NULL : c->ca_file, c->ca_pem, c->ca_pem_n, &c->err);
        c->o.tls.anchors = c->anchors;
    }
    if (!rc && c->o.tls.anchors) { /* the anchors win over ca_file / ca_pem: drop the copies */
        pr__free(c->ca_file, c->ca_file_n);
        pr__free(c->ca_pem, c->ca_pem_n);
        c->ca_file = c->ca_pem = NULL;
        c->ca_file_n = c->ca_pem_n = 0;
        c->o.tls.ca_file = c->o.tls.ca_pem = NULL;
        c->o.tls.ca_pem_len = 0;
    }
#endif
    hp = c->o.http_proxy;
    sp = c->o.https_proxy;
    ap = c->o.all_proxy;
    np = c->o.no_proxy;
    if (!c->o.ignore_env) {
        if (!hp) hp = pr__http_env2("http_proxy", NULL); /* lower case only (httpoxy) */
        if (!sp) sp = pr__http_env2("https_proxy", "HTTPS_PROXY");
        if (!ap) ap = pr__http_env2("all_proxy", "ALL_PROXY");
        if (!np) np = pr__http_env2("no_proxy", "NO_PROXY");
    }
    if (!hp || !*hp) hp = ap;
    if (!sp || !*sp) sp = ap;
    if (c->o.http_proxy && !*c->o.http_proxy) hp = NULL; /* explicit "" = none */
    if (c->o.https_proxy && !*c->o.https_proxy) sp = NULL;
    if (!rc) rc = pr__http_proxy_parse(&c->proxy_http, hp);
    if (!rc) rc = pr__http_proxy_parse(&c->proxy_https, sp);
    if (!rc && np && *np && !(c->no_proxy = pr__http_strdup(np, &c->no_proxy_n))) rc = PR_ENOMEM;
    c->o.http_proxy = c->o.https_proxy = c->o.all_proxy = NULL;
    c->o.no_proxy = c->no_proxy;
    if (rc) {
        pr__http_client_free(c);
        return rc;
    }
    *out = c;
    return PR_OK;
}

void pr_http_client_destroy(pr_http_client *c) {
    if (!c) return;
    while (c->pool) {
        pr__http_pooled *e = c->pool;
        c->pool = e->next;
        pr__http_pool_free(e);
    }
    c->npool = 0;
    if (c->live > 0) c->destroyed = 1;
    else pr__http_client_free(c);
}

int pr_http_client_last_error(const pr_http_client *c, pr_err_info *out) {
    if (!c || !out) return PR_EINVAL;
    *out = c->err;
    return PR_OK;
}

size_t pr_http_client_idle_count(const pr_http_client *c) { return c ? c->npool : 0; }

/* ---- no_proxy ---- */

/* An IP literal (IPv6 optionally in brackets) into out[16]: returns 4
   (IPv4), 16 (IPv6) or 0 (not an IP literal). */
static int pr__http_ip_parse(pr_slice s, unsigned char *out) {
    char tmp[64];
    if (s.len >= 2 && s.ptr[0] == '[' && s.ptr[s.len - 1] == ']') {
        s.ptr++;
        s.len -= 2;
    }
    if (!s.len || s.len >= sizeof tmp) return 0;
    memcpy(tmp, s.ptr, s.len);
    tmp[s.len] = 0;
    if (inet_pton(AF_INET, tmp, out) == 1) return 4;
    if (inet_pton(AF_INET6, tmp, out) == 1) return 16;
    return 0;
}

/* Whether the address ip (alen bytes) lies in the range "addr/bits" of e
   (slash points at the '/'). A malformed range matches nothing. */
static int pr__http_cidr_match(pr_slice e, const char *slash, const unsigned char *ip, int alen) {
    unsigned char net[16];
    pr_slice a, b;
    unsigned long bits = 0;
    size_t i, full;
    a.ptr = e.ptr;
    a.len = (size_t)(slash - e.ptr);
    b.ptr = slash + 1;
    b.len = e.len - a.len - 1;
    if (!b.len || b.len > 3) return 0;
    for (i = 0; i < b.len; i++) {
        if (b.ptr[i] < '0' || b.ptr[i] > '9') return 0;
        bits = bits * 10 + (unsigned long)(b.ptr[i] - '0');
    }
    if (pr__http_ip_parse(a, net) != alen || bits > (unsigned long)alen * 8) return 0;
    full = bits / 8;
    if (memcmp(net, ip, full) != 0) return 0;
    if (bits % 8) {
        unsigned mask = (0xffu << (8 - bits % 8)) & 0xffu;
        if ((net[full] & mask) != (ip[full] & mask)) return 0;
    }
    return 1;
}

int pr_http_no_proxy_match(const char *no_proxy, const char *host) {
    pr_slice h, list;
    size_t i, s = 0;
    unsigned char hip[16];
    int hfam;
    if (!no_proxy || !host || !*host) return 0;
    h = pr_slice_cstr(host);
    if (h.len >= 2 && h.ptr[0] == '[' && h.ptr[h.len - 1] == ']') {
        h.ptr++;
        h.len -= 2;
    }
    if (h.len && h.ptr[h.len - 1] == '.') h.len--; /* "example.com." */
    hfam = pr__http_ip_parse(h, hip);
    list = pr_slice_cstr(no_proxy);
    for (i = 0; i <= list.len; i++) {
        pr_slice e;
        if (i < list.len && list.ptr[i] != ',') continue;
        e.ptr = list.ptr + s;
        e.len = i - s;
        s = i + 1;
        e = pr_slice_trim(e);
        if (!e.len) continue;
        if (e.len == 1 && e.ptr[0] == '*') return 1;
        {
            const char *slash = (const char *)memchr(e.ptr, '/', e.len);
            if (slash) { /* a CIDR range: only for IP-literal hosts */
                if (hfam && pr__http_cidr_match(e, slash, hip, hfam)) return 1;
                continue;
            }
        }
        if (e.ptr[0] == '[') { /* [v6] or [v6]:port */
            const char *rb = (const char *)memchr(e.ptr, ']', e.len);
            if (!rb) continue;
            e.ptr++;
            e.len = (size_t)(rb - e.ptr);
        } else {
            const char *c1 = (const char *)memchr(e.ptr, ':', e.len);
            if (c1 && !memchr(c1 + 1, ':', e.len - (size_t)(c1 + 1 - e.ptr))) e.len = (size_t)(c1 - e.ptr); /* port */
        }
        while (e.len && e.ptr[0] == '.') {
            e.ptr++;
            e.len--;
        }
        if (e.len && e.ptr[e.len - 1] == '.') e.len--;
        if (!e.len) continue;
        if (hfam) { /* an IP-literal host: the same address, never a suffix */
            unsigned char eip[16];
            if (pr__http_ip_parse(e, eip) == hfam && !memcmp(eip, hip, (size_t)hfam)) return 1;
            continue;
        }
        if (pr_slice_ieq(e, h)) return 1;
        if (h.len > e.len && h.ptr[h.len - e.len - 1] == '.') {
            pr_slice tail;
            tail.ptr = h.ptr + h.len - e.len;
            tail.len = e.len;
            if (pr_slice_ieq(tail, e)) return 1;
        }
    }
    return 0;
}

/* Loopback origins are never proxied: the names localhost and *.localhost
   (RFC 6761; the resolver answers them with loopback addresses), and the
   addresses 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104, parsed as addresses
   (a name such as "127.example.test" is not loopback). */
static int pr__http_is_loopback(pr_slice host) {
    static const unsigned char v6_1[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
    static const unsigned char v4map[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    pr_slice lh = pr_slice_cstr("localhost");
    unsigned char ip[16];
    int fam;
    if (host.len && host.ptr[host.len - 1] == '.') host.len--; /* "localhost." */
    if (pr_slice_ieq(host, lh)) return 1;
    if (host.len > lh.len + 1 && host.ptr[host.len - lh.len - 1] == '.') {
        pr_slice tail;
        tail.ptr = host.ptr + host.len - lh.len;
        tail.len = lh.len;
        if (pr_slice_ieq(tail, lh)) return 1;
    }
    fam = pr__http_ip_parse(host, ip); /* IPv6 with or without brackets */
    if (fam == 4) return ip[0] == 127;
    if (fam == 16) return !memcmp(ip, v6_1, 16) || (!memcmp(ip, v4map, 12) && ip[12] == 127);
    return 0;
}

/* The proxy for u, or NULL. */
static const pr_url *pr__http_proxy_for(pr_http_client *c, const pr_url *u) {
    const pr_url *p = u->secure ? &c->proxy_https : &c->proxy_http;
    char host[256];
    if (!p->mem_ || pr__http_is_loopback(u->host)) return NULL;
    if (c->no_proxy) {
        if (u->host.len >= sizeof host) return p;
        memcpy(host, u->host.ptr, u->host.len);
        host[u->host.len] = 0;
        if (pr_http_no_proxy_match(c->no_proxy, host)) return NULL;
    }
    return p;
}

/* ---- pool ---- */

static int pr__http_pool_key(pr_buf *k, const pr_url *u, const pr_url *proxy) {
    int rc = pr_url_origin(k, u);
    if (!rc && proxy) {
        rc = pr_buf_append(k, " via ", 5);
        if (!rc) rc = pr_url_origin(k, proxy);
        if (!rc) rc = pr_buf_append(k, "@", 1);
        if (!rc) rc = pr_buf_append(k, proxy->userinfo.ptr, proxy->userinfo.len);
    }
    return rc;
}

/* Take a live idle connection for key, closing expired and dead ones. */
static pr_conn *pr__http_pool_take(pr_http_client *c, const pr_buf *key) {
    pr__http_pooled **pp = &c->pool;
    int64_t now = pr_now();
    while (*pp) {
        pr__http_pooled *e = *pp;
        if (now - e->since >= c->o.pool_idle_ms) { /* expired */
            *pp = e->next;
            c->npool--;
            pr__http_pool_free(e);
            continue;
        }
        if (e->key_len == key->len && !memcmp(e + 1, key->data, key->len)) {
            char probe;
            ptrdiff_t k;
            pr_conn *conn = e->conn;
            *pp = e->next;
            c->npool--;
            /* dead-connection check: readable now (EOF, reset, stray bytes) = unusable */
            k = pr_conn_read(conn, &probe, 1, 0);
            if (k == PR_ETIMEDOUT) {
                pr__free(e, sizeof *e + e->key_len);
                return conn;
            }
            pr__http_pool_free(e);
            continue;
        }
        pp = &e->next;
    }
    return NULL;
}

/* Give a connection back (takes ownership of conn; key copied). */
static void pr__http_pool_put(pr_http_client *c, pr_conn *conn, const char *key, size_t key_len) {
    pr__http_pooled *e, **pp;
    size_t n;
    if (c->destroyed || c->o.pool_idle_ms < 0 || c->o.pool_max <= 0) {
        pr_conn_destroy(conn);
        return;
    }
    e = (pr__http_pooled *)pr__alloc(sizeof *e + key_len);
    if (!e) {
        pr_conn_destroy(conn);
        return;
    }
    e->conn = conn;
    e->since = pr_now();
    e->key_len = key_len;
    memcpy(e + 1, key, key_len);
    e->next = c->pool;
    c->pool = e;
    c->npool++;
    /* over the cap: close the oldest (the tail) */
    for (n = 1, pp = &c->pool; *pp; n++) {
        if (n > (size_t)c->o.pool_max) {
            pr__http_pooled *x = *pp;
            *pp = x->next;
            c->npool--;
            pr__http_pool_free(x);
        } else {
            pp = &(*pp)->next;
        }
    }
}

/* Called by pr_http_response_destroy for client responses. */
static void pr__http_client_release(pr_http_response *r) {
    pr_http_client *c = r->client;
    if (r->own_conn) {
        if (pr_http_reusable(r)) pr__http_pool_put(c, r->own_conn, r->pool_key, r->pool_key_len);
        else pr_conn_destroy(r->own_conn);
        r->own_conn = NULL;
        c->live--;
    }
    pr__free(r->pool_key, r->pool_key_len);
    r->pool_key = NULL;
    r->client = NULL;
    if (c->destroyed && c->live <= 0) pr__http_client_free(c);
}

/* ---- a connection that first returns bytes read past a CONNECT reply ---- */
typedef struct pr__http_pfx {
    pr_conn base; /* first */
    pr_conn *inner;
    char *buf;
    size_t len, pos;
} pr__http_pfx;

static ptrdiff_t pr__http_pfx_read(pr_conn *c, void *buf, size_t n, int64_t deadline) {
    pr__http_pfx *p = (pr__http_pfx *)(void *)c;
    ptrdiff_t k;
    if (p->pos < p->len) {
        size_t m = PR__MIN(n, p->len - p->pos);
        memcpy(buf, p->buf + p->pos, m);
        p->pos += m;
        return (ptrdiff_t)m;
    }
    k = p->inner->ops->read(p->inner, buf, n, deadline);
    if (k < 0) c->err = p->inner->err;
    return k;
}

static ptrdiff_t pr__http_pfx_write(pr_conn *c, const void *buf, size_t n, int64_t deadline) {
    pr__http_pfx *p = (pr__http_pfx *)(void *)c;
    ptrdiff_t k = p->inner->ops->write(p->inner, buf, n, deadline);
    if (k < 0) c->err = p->inner->err;
    return k;
}

static int pr__http_pfx_shutdown(pr_conn *c, int64_t deadline) {
    pr__http_pfx *p = (pr__http_pfx *)(void *)c;
    return p->inner->ops->shutdown(p->inner, deadline);
}

static void pr__http_pfx_destroy(pr_conn *c) {
    pr__http_pfx *p = (pr__http_pfx *)(void *)c;
    pr_conn_destroy(p->inner);
    pr__free(p->buf, p->len);
    pr__free(p, sizeof *p);
}

static const pr_conn_ops pr__http_pfx_ops = { pr__http_pfx_read, pr__http_pfx_write, pr__http_pfx_shutdown,
                                              pr__http_pfx_destroy };

/* ---- connecting ---- */

static const char pr__http_b64c[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Append "Basic <base64(percent-decoded userinfo)>". */
static int pr__http_basic(pr_buf *out, const pr_url *proxy) {
    pr_buf raw;
    size_t i;
    int rc;
    pr_buf_init(&raw);
    rc = pr_url_decode(&raw, proxy->userinfo.ptr, proxy->userinfo.len, 0);
    if (!rc) rc = pr_buf_append_str(out, "Basic ");
    for (i = 0; !rc && i < raw.len; i += 3) {
        unsigned char *s = (unsigned char *)raw.data + i;
        size_t m = raw.len - i;
        char q[4];
        unsigned v = (unsigned)s[0] << 16 | (m > 1 ? (unsigned)s[1] << 8 : 0) | (m > 2 ? s[2] : 0);
        q[0] = pr__http_b64c[(v >> 18) & 63];
        q[1] = pr__http_b64c[(v >> 12) & 63];
        q[2] = m > 1 ? pr__http_b64c[(v >> 6) & 63] : '=';
        q[3] = m > 2 ? pr__http_b64c[v & 63] : '=';
        rc = pr_buf_append(out, q, 4);
    }
    pr_buf_deinit(&raw);
    return rc;
}

/* A NUL-terminated copy of a host slice into h[256]. */
static int pr__http_host_cstr(char *h, pr_slice s) {
    if (s.len >= 256) return PR_EINVAL;
    memcpy(h, s.ptr, s.len);
    h[s.len] = 0;
    return PR_OK;
}

/* Open a CONNECT tunnel over *conn (replaced by the tunnel on success;
   destroyed on failure). *head_used receives the bytes of the reply heads. */
static int pr__http_tunnel(pr_http_client *c, pr_conn **conn, const pr_url *u, const pr_url *proxy,
                           size_t *head_used, int64_t deadline) {
    pr_buf auth, hostv, pa;
    pr_http_header h[2];
    pr_http_request req;
    pr_http_response *r = NULL;
    pr_slice target;
    int rc;
    pr_buf_init(&auth);
    pr_buf_init(&pa);
    pr_buf_init(&hostv);
    rc = pr_url_authority(&auth, u, 1);
    if (!rc && proxy->has_userinfo) rc = pr__http_basic(&pa, proxy);
    memset(&req, 0, sizeof req);
    if (!rc) {
        h[0].name = pr_slice_cstr("Host");
        h[0].value.ptr = auth.data;
        h[0].value.len = auth.len;
        h[1].name = pr_slice_cstr("Proxy-Authorization");
        h[1].value.ptr = pa.data;
        h[1].value.len = pa.len;
        req.method = "CONNECT";
        req.url = u;
        req.headers = h;
        req.nheaders = proxy->has_userinfo ? 2 : 1;
        target.ptr = auth.data;
        target.len = auth.len;
        rc = pr__http_exchange(&r, *conn, &req, &c->o.http, &target, 0, deadline, NULL);
        if (rc)
            pr__err_set(&c->err, rc, (*conn)->err.sys_errno, "proxy CONNECT: %s",
                        (*conn)->err.msg[0] ? (*conn)->err.msg : pr_strerror(rc));
    } else {
        pr__err_set(&c->err, rc, 0, "proxy CONNECT: out of memory");
    }
    if (!rc && r->status / 100 != 2) {
        int st = r->status;
        rc = pr__err_set(&c->err, PR_EPROTO, 0, "proxy refused CONNECT with status %d", st);
        c->err.http_status = st;
    }
    if (!rc) *head_used = r->head_used + r->base; /* the origin's first head shares the budget */
    /* Bytes already read past the reply belong to the tunnel: a wrapper hands
       them out first. Without them the socket itself is the tunnel (and TLS
       over it can wait on both directions). */
    if (!rc && r->wpos > r->rpos) {
        size_t extra = r->wpos - r->rpos;
        pr__http_pfx *p = (pr__http_pfx *)pr__calloc(1, sizeof *p);
        if (p && !(p->buf = (char *)pr__alloc(extra))) {
            pr__free(p, sizeof *p);
            p = NULL;
        }
        if (!p) {
            rc = pr__err_set(&c->err, PR_ENOMEM, 0, "proxy CONNECT: out of memory");
        } else {
            memcpy(p->buf, r->buf + r->rpos, extra);
            p->base.ops = &pr__http_pfx_ops;
            p->inner = *conn;
            p->len = extra;
            *conn = &p->base;
        }
    }
    pr_http_response_destroy(r);
    if (rc) {
        pr_conn_destroy(*conn);
        *conn = NULL;
    }
    pr_buf_deinit(&auth);
    pr_buf_deinit(&pa);
    pr_buf_deinit(&hostv);
    return rc;
}

/* A fresh connection to u (through proxy when set): TCP, CONNECT, TLS, all
   under the connect cap. *head_used: bytes of a CONNECT reply (else 0). */
static int pr__http_connect(pr_http_client *c, pr_conn **out, const pr_url *u, const pr_url *proxy,
                            size_t *head_used, int64_t deadline) {
    const pr_url *to = proxy ? proxy : u;
    int64_t cdl = deadline;
    pr_net_opts no;
    pr_conn *conn = NULL;
    const char *phase;
    char host[256];
    int rc;
    *out = NULL;
    *head_used = 0;
    if (c->o.connect_timeout_ms > 0) cdl = pr_deadline_min(deadline, pr_deadline_in(c->o.connect_timeout_ms));
    if (pr__http_host_cstr(host, to->host)) return pr__err_set(&c->err, PR_EINVAL, 0, "http: host name too long");
    memset(&no, 0, sizeof no);
    no.connect_timeout_ms = -1; /* cdl holds the cap */
    no.keepalive = c->o.tcp_keepalive_s > 0 ? c->o.tcp_keepalive_s : 0;
    no.err = &c->err;
    memset(&c->err, 0, sizeof c->err);
    phase = proxy ? "connecting to the proxy" : "resolving and connecting";
    rc = pr_tcp_connect(&conn, host, to->port, &no, cdl);
    if (!rc && proxy && u->secure) {
        phase = "waiting for the proxy's CONNECT reply";
        rc = pr__http_tunnel(c, &conn, u, proxy, head_used, cdl);
    }
    if (!rc && u->secure) {
        phase = "in the TLS handshake";
        pr_tls_opts to2 = c->o.tls;
        pr_conn *t = NULL;
        to2.err = &c->err;
        if (pr__http_host_cstr(host, u->host)) {
            pr_conn_destroy(conn);
            return pr__err_set(&c->err, PR_EINVAL, 0, "http: host name too long");
        }
        rc = pr_tls_client(&t, conn, host, &to2, cdl); /* owns conn from here on */
        conn = t;
    }
    if (rc) {
        if (c->err.code != rc) pr__err_set(&c->err, rc, 0, "http: connect failed: %s", pr_strerror(rc));
        if (rc == PR_ETIMEDOUT && cdl < deadline && pr_now() >= cdl)
            pr__err_set(&c->err, rc, 0, "http: connect timeout (%d ms) %s (%s)", c->o.connect_timeout_ms, phase, host);
        return rc;
    }
    *out = conn;
    return PR_OK;
}

/* ---- requests ---- */

static int pr__http_method_is(const char *m, const char *s) { return strcmp(m, s) == 0; }

/* One request on one origin: pool or connect, exchange, one retry on a
   dead reused connection. */
static int pr__http_client_once(pr_http_client *c, pr_http_response **out, const pr_http_request *req,
                                int64_t deadline) {
    const pr_url *u = req->url, *proxy = pr__http_proxy_for(c, u);
    pr_buf key, target, pauth;
    pr_slice tslice, *tp = NULL;
    pr_http_request rq = *req;
    pr_http_header *hv = NULL;
    size_t hv_n = 0;
    int rc, attempt;
    *out = NULL;
    pr_buf_init(&key);
    pr_buf_init(&target);
    pr_buf_init(&pauth);
    rc = pr__http_pool_key(&key, u, proxy);
    if (!rc && proxy && !u->secure) { /* absolute-form target, Proxy-Authorization */
        rc = pr_buf_append_str(&target, "http://");
        if (!rc) rc = pr_url_authority(&target, u, 0);
        if (!rc) rc = pr_url_target(&target, u);
        tslice.ptr = target.data;
        tslice.len = target.len;
        tp = &tslice;
        if (!rc && proxy->has_userinfo) {
            rc = pr__http_basic(&pauth, proxy);
            hv_n = req->nheaders + 1;
            if (!rc && !(hv = (pr_http_header *)pr__calloc(hv_n, sizeof *hv))) rc = PR_ENOMEM;
            if (!rc) {
                if (req->nheaders) memcpy(hv, req->headers, req->nheaders * sizeof *hv);
                hv[req->nheaders].name = pr_slice_cstr("Proxy-Authorization");
                hv[req->nheaders].value.ptr = pauth.data;
                hv[req->nheaders].value.len = pauth.len;
                rq.headers = hv;
                rq.nheaders = hv_n;
            }
        }
    }
    if (rc) {
        pr__err_set(&c->err, rc, 0, "http: out of memory");
        goto done;
    }
    for (attempt = 0;; attempt++) {
        pr_http_response *r = NULL;
        pr_conn *conn = attempt == 0 ? pr__http_pool_take(c, &key) : NULL;
        int reused = conn != NULL, rx = 0;
        size_t head_used = 0;
        if (!conn && (rc = pr__http_connect(c, &conn, u, proxy, &head_used, deadline)) != 0) goto done;
        rc = pr__http_exchange(&r, conn, &rq, &c->o.http, tp, head_used, deadline, &rx);
        if (rc) {
            pr_err_info e = conn->err;
            pr_conn_destroy(conn);
            /* transparent retry: a reused connection died before the first
               response byte and the request can be sent again */
            if (reused && !rx && !req->body_fn && pr__http_peer_gone(rc, &e)) continue;
            if (e.code != rc) pr__err_set(&e, rc, 0, "http: %s", pr_strerror(rc));
            c->err = e;
            goto done;
        }
        r->pool_key = (char *)pr__alloc(key.len);
        if (!r->pool_key) {
            pr_http_response_destroy(r);
            pr_conn_destroy(conn);
            rc = pr__err_set(&c->err, PR_ENOMEM, 0, "http: out of memory");
            goto done;
        }
        memcpy(r->pool_key, key.data, key.len);
        r->pool_key_len = key.len;
        r->client = c;
        r->own_conn = conn;
        c->live++;
        *out = r;
        break;
    }
done:
    pr__free(hv, hv_n * sizeof *hv);
    pr_buf_deinit(&key);
    pr_buf_deinit(&target);
    pr_buf_deinit(&pauth);
    return rc;
}

/* Fields dropped when a redirect changes the origin: credentials, and a
   user Host (it names the old origin; curl drops it too). */
static int pr__http_is_origin_bound(pr_slice name) {
    return pr__http_hdr_is(name, "authorization") || pr__http_hdr_is(name, "cookie") ||
           pr__http_hdr_is(name, "proxy-authorization") || pr__http_hdr_is(name, "host");
}

int pr_http_client_request(pr_http_client *c, pr_http_response **out, const pr_http_request *req,
                           int64_t deadline) {
    pr_http_request rq;
    pr_http_header *hv = NULL;
    size_t hv_cap = 0, i;
    pr_url cur;
    int rc, hops = 0;
    if (out) *out = NULL;
    if (!c || !out || !req || !req->url) return PR_EINVAL;
    if (req->nheaders && !req->headers) return PR_EINVAL;
#ifdef PRISTINE_NO_TLS
    if (req->url->secure) return pr__err_set(&c->err, PR_ENOTSUP, 0, "http: https needs TLS (PRISTINE_NO_TLS)");
#endif
    memset(&cur, 0, sizeof cur);
    rq = *req;
    for (;;) {
        pr_http_response *r = NULL;
        const pr_slice *loc;
        int st, keep_body;
        pr_buf base, next;
        pr_url nu;
        rc = pr__http_client_once(c, &r, &rq, deadline);
        if (rc) break;
        st = pr_http_status(r);
        loc = pr_http_header_get(r, "location");
        if (!c->o.max_redirects || !loc || !(st == 301 || st == 302 || st == 303 || st == 307 || st == 308)) {
            *out = r;
            break;
        }
        keep_body = !(st == 303 || ((st == 301 || st == 302) && rq.method && pr__http_method_is(rq.method, "POST")));
        if (keep_body && rq.body_fn) { /* cannot replay a streamed body: the 3xx is the answer */
            *out = r;
            break;
        }
        if (++hops > c->o.max_redirects) {
            pr_http_response_destroy(r);
            rc = pr__err_set(&c->err, PR_ELIMIT, 0, "http: more than %d redirects", c->o.max_redirects);
            c->err.http_status = st;
            break;
        }
        /* the next URL */
        pr_buf_init(&base);
        pr_buf_init(&next);
        memset(&nu, 0, sizeof nu);
        rc = pr_url_format(&base, rq.url, 0);
        if (!rc) rc = pr_url_resolve(&next, base.data, base.len, loc->ptr, loc->len, &c->err);
        if (!rc) rc = pr_url_parse(&nu, next.data, next.len, &c->err);
        pr_buf_deinit(&base);
        pr_buf_deinit(&next);
        if (rc) {
            if (rc == PR_EINVAL) rc = PR_EPROTO; /* the server's Location is bad, not the caller's request */
            c->err.code = rc;
            c->err.http_status = st;
            pr_http_response_destroy(r);
            pr_url_deinit(&nu);
            break;
        }
        if (rq.url->secure && !nu.secure && !c->o.allow_https_to_http) {
            pr_http_response_destroy(r);
            pr_url_deinit(&nu);
            rc = pr__err_set(&c->err, PR_EPROTO, 0, "http: redirect from https to http refused");
            c->err.http_status = st;
            break;
        }
        /* drain the 3xx body so its connection can be reused, but only what
           is cheap: at most PR__HTTP_DRAIN_MAX bytes within PR__HTTP_DRAIN_MS
           (and the deadline). A body that has not ended by then leaves the
           response unreusable: destroying it closes the connection. */
        {
            char tmp[4096];
            size_t got = 0;
            ptrdiff_t k;
            int64_t ddl = pr_deadline_min(deadline, pr_deadline_in(PR__HTTP_DRAIN_MS));
            while (got < PR__HTTP_DRAIN_MAX && (k = pr_http_read(r, tmp, sizeof tmp, ddl)) > 0) got += (size_t)k;
        }
        pr_http_response_destroy(r);
        if (!pr_url_same_origin(rq.url, &nu)) { /* drop credentials for the rest of the chain */
            size_t n = 0;
            if (!hv) {
                hv_cap = rq.nheaders ? rq.nheaders : 1;
                hv = (pr_http_header *)pr__calloc(hv_cap, sizeof *hv);
                if (!hv) {
                    pr_url_deinit(&nu);
                    rc = pr__err_set(&c->err, PR_ENOMEM, 0, "http: out of memory");
                    break;
                }
            }
            for (i = 0; i < rq.nheaders; i++)
                if (!pr__http_is_origin_bound(rq.headers[i].name)) hv[n++] = rq.headers[i];
            rq.headers = hv;
            rq.nheaders = n;
        }
        if (!keep_body) {
            if (!rq.method || !pr__http_method_is(rq.method, "HEAD")) rq.method = "GET";
            rq.body = NULL;
            rq.body_len = 0;
            rq.body_fn = NULL;
            rq.body_user_data = NULL;
        }
        pr_url_deinit(&cur);
        cur = nu;
        rq.url = &cur;
    }
    pr__free(hv, hv_cap * sizeof *hv);
    pr_url_deinit(&cur);
    return rc;
}

int pr_http_client_get(pr_http_client *c, pr_http_response **out, const char *url, int64_t deadline) {
    pr_http_request req;
    pr_url u;
    int rc;
    if (out) *out = NULL;
    if (!c || !out || !url) return PR_EINVAL;
    memset(&u, 0, sizeof u);
    if ((rc = pr_url_parse(&u, url, strlen(url), &c->err)) != PR_OK) return rc;
    memset(&req, 0, sizeof req);
    req.url = &u;
    rc = pr_http_client_request(c, out, &req, deadline);
    pr_url_deinit(&u);
    return rc;
}
