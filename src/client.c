// @pristine:module client - HTTP client: keep-alive pool, connection caps, redirects, retries, breaker, events
// @pristine:public
/*
 * client: pr_http_client owns connections. It connects (TCP, then a
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
 * without a body (curl's behaviour; HEAD stays HEAD on 303) and, as in
 * Fetch, lose the fields that describe the body: Content-Type,
 * Content-Language, Content-Encoding and Content-Location, whatever the
 * origin; 307/308 keep method and body. A request with a body_fn cannot be
 * replayed: a 307/308 (or any redirect keeping the body) is returned as
 * the final response instead. On an origin change (scheme, host or port)
 * every header field of the request is dropped for the rest of the chain
 * (Authorization, Cookie, X-Api-Key, any field: the client cannot tell a
 * credential by its name) except
 * - Accept, Accept-Language and User-Agent, which only describe the
 *   request; Content-Type, Content-Language and Content-Encoding while
 *   the body goes on;
 * - the fields the client adds itself (retry_count_header,
 *   timeout_header, idempotency_header);
 * - the fields named safe to forward: the client's
 *   redirect_forward_headers and the request's redirect_forward (a
 *   module on top of the client names its own protocol fields there).
 * A user Host field is dropped on an origin change in any case (it names
 * the old origin; the new Host comes from the URL). https -> http is
 * PR_EPROTO unless allow_https_to_http. More than max_redirects is
 * PR_ELIMIT. The bodies of followed 3xx responses are drained (up to 64
 * KiB, for at most 1 s within the deadline) so their connection can be
 * reused; a body not over by then closes that connection, and the next hop
 * goes on.
 *
 * Proxies: see the proxy module (the environment, no_proxy, loopback
 * origins, CONNECT tunnels); the client reads the proxy settings once at
 * create. Client TCP connections get TCP keep-alive (tcp_keepalive_s) and
 * TCP_NODELAY.
 *
 * Retries (the retry option; on by default): a request is one logical
 * call made of attempts; an attempt is connect + request + response head
 * (+ the whole body for pr_http_client_fetch) and follows the redirect
 * chain. A failed attempt is retried after a backoff sleep when
 * - it failed in transport: a temporary DNS failure, connect, reset or
 *   closed connection, a TLS handshake cut short, a malformed response, a
 *   timeout of the attempt (attempt_timeout_ms, idle_timeout_ms) - never
 *   the call's own deadline, cancellation or a limit (PR_ELIMIT), and never
 *   a cause that retrying cannot cure: a name that does not exist
 *   (PR_EDNS with dns_error EAI_NONAME, EAI_NODATA, EAI_FAIL), a TLS
 *   handshake either side refused (an untrusted certificate, a wrong host
 *   name, a peer that does not speak TLS: PR_ETLS), PR_EINVAL, PR_ENOTSUP;
 * - or the response says so: x-should-retry: true / false (trimmed, any
 *   case) decides first for any non-2xx status, else 408, 409, 429 and
 *   5xx are retried. retry-after-ms, then Retry-After (seconds or an
 *   HTTP-date) set the sleep when the hint is > 0, cut to
 *   max_retry_after_ms (60 s by default: a server asking for 120 s gets
 *   60 s); otherwise the policy's backoff (default PR_BACKOFF_HTTP: 0.5,
 *   1, 2, 4, 8, 10, 10 s... each shortened by up to a quarter).
 * Defaults: 10 retries. The request's retry field overrides the client's
 * policy; max_retries = PR_RETRY_OFF turns retries off. Only replayable
 * requests are retried (no body_fn unless body_rewind is given), and only
 * before the response head is handed to the caller: a body the caller has
 * started to read is never fetched again. A retried response is discarded
 * (a body already in the buffer is read so the connection can be reused;
 * otherwise it is closed). The final outcome is what the caller gets: a
 * response (PR_OK, whatever its status: a 503 after the last retry is a
 * 503 response with its body) or the last attempt's error. The sleep never
 * runs past the call's deadline: when the next one would, the last
 * attempt's outcome comes back at once. A policy classify hook sees each
 * outcome (an HTTP status >= 100, or a negative PR_E* code) with *after_ms
 * preset to the server's usable hint (-1 if none) and may decide
 * otherwise, except for a cause retrying cannot cure (above): that one
 * ends the call whatever the hook says. Optional per-attempt headers: retry_count_header (retries
 * taken so far), timeout_header (attempt_timeout_ms in seconds), and
 * idempotency_header: one random key per logical request other than GET
 * and HEAD, the same on every retry.
 *
 * Circuit breaker (breaker option): admitted before every attempt (a
 * refusal ends the call with PR_ECIRCUIT); an attempt that failed in
 * transport, a 408 and a 5xx count as failures, a 429 and cancellation
 * count as nothing, any other response as a success.
 *
 * Sharing: one client may be used by any number of tasks of its thread at
 * once; each request has its own connection (pool entries are handed to
 * one request at a time). max_connections and max_connections_per_origin
 * cap the connections in use at once (idle pooled ones hold no slot);
 * requests beyond the cap wait in FIFO order within their deadline. Do not
 * destroy the client while a request is in progress (responses may
 * outlive it).
 *
 * Events (the observer member: on_event and its own user_data, apart from
 * any other callback's, so telemetry installs itself there with
 * opts.observer.on_event = pr_telemetry_http_hook and
 * opts.observer.user_data = the hub): each request reports START, one
 * ATTEMPT per attempt (status or error, duration), RETRY before each sleep
 * (the delay and why) and DONE (the outcome, the whole duration). The URL
 * passed has no userinfo. With no hook set nothing is formatted.
 *
 * Errors: the calls that hand out a response or fill a result
 * (pr_http_client_request, _get, _send, _fetch) take a pr_err_info *err
 * parameter (NULL = not wanted) just before the deadline, which receives
 * that call's detail (code, sys_errno, tls_error, dns_error, http_status,
 * msg); pr_http_client_create takes one last. The client lives on, and
 * pr_http_client_last_error also keeps its last failure (shared by all its
 * tasks: the parameter is the one to read). Timeout messages name the phase
 * and the limit that fired, e.g. "http: timed out waiting for the response
 * head (attempt timeout 300 ms)". PR_ETIMEDOUT always means the call's
 * deadline passed: a limit of the client's own that ends the call sooner
 * (connect_timeout_ms, attempt_timeout_ms, idle_timeout_ms) is PR_EIO with
 * sys_errno ETIMEDOUT.
 *
 * Offers to the modules after it: pr__client_final.
 */

/* An HTTP client with a connection pool. Opaque. */
typedef struct pr_http_client pr_http_client;

/* What pr_http_client_opts.observer.on_event reports. */
enum pr_http_event_kind {
    PR_HTTP_EVENT_START = 1,   /* a request begins */
    PR_HTTP_EVENT_ATTEMPT = 2, /* an attempt ended: status, or error */
    PR_HTTP_EVENT_RETRY = 3,   /* a retry is scheduled: delay_ms, reason */
    PR_HTTP_EVENT_DONE = 4     /* the request ended: status or error, duration_ms of the whole call */
};

/* One event. Pointers are valid during the callback only. */
typedef struct pr_http_event {
    int kind;              /* PR_HTTP_EVENT_* */
    const char *method;
    const char *url;       /* the request's URL without userinfo */
    int attempt;           /* 0 for the first attempt */
    int status;            /* the response status, 0 if none */
    int error;             /* PR_OK, or the attempt's / request's error code */
    int64_t duration_ms;   /* ATTEMPT: of the attempt; DONE: of the request */
    int64_t delay_ms;      /* RETRY: the sleep before the next attempt */
    const char *reason;    /* RETRY: why, e.g. "status 503", "PR_ECLOSED: connection reset" */
    int hinted;            /* RETRY: 1 when the delay is the server's (Retry-After, retry-after-ms) */
} pr_http_event;

/* Who watches a client's requests (telemetry, logs): the notifications and
   their own context, apart from the caller's other callbacks. */
typedef struct pr_http_observer {
    void (*on_event)(const pr_http_event *ev, void *user_data); /* NULL = none */
    void *user_data;          /* passed to on_event */
} pr_http_observer;

/* Options of pr_http_client_create. Zero in every field means the default;
   strings are copied. */
typedef struct pr_http_client_opts {
    int connect_timeout_ms;   /* 0 = 30000; < 0 = only the call's deadline: caps DNS, TCP,
                                 proxy CONNECT and TLS handshake together (past it: PR_EIO,
                                 sys_errno ETIMEDOUT, retried like a refused connect) */
    int idle_timeout_ms;      /* 0 = off: the longest silence of a connection while a response is
                                 awaited or read, from the last byte either way (replaces
                                 http.idle_timeout_ms; pr_http_request.idle_timeout_ms overrides it) */
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
                                 used, borrowed, and must outlive the client); so are the client
                                 certificate's cert_* / key_* (unless tls.identity is set,
                                 borrowed likewise); alpn copied; tls.half_duplex 0 = half
                                 duplex (half the TLS memory: an exchange sends the whole
                                 request before it reads), -1 = full duplex */
    pr_http_opts http;        /* parser limits of every exchange */
    int tcp_keepalive_s;      /* 0 = 60: TCP keep-alive probes after this many idle seconds; < 0 = off */
    pr_retry_policy retry;    /* retries (see above); zero = 10 retries with PR_BACKOFF_HTTP;
                                 retry.max_retries = PR_RETRY_OFF turns them off; copied */
    int attempt_timeout_ms;   /* 0 = none: caps each attempt inside the call's deadline (connect,
                                 request, head; for pr_http_client_fetch the whole body too) */
    const char *retry_count_header; /* NULL = none; e.g. "x-stainless-retry-count": retries taken so
                                 far (0, 1, 2...) on every attempt, unless the request has it */
    const char *timeout_header; /* NULL = none; e.g. "x-stainless-read-timeout": attempt_timeout_ms
                                 in seconds, unless the request has it */
    const char *idempotency_header; /* NULL = none; e.g. "X-Idempotency-Key": a key (32 hex digits)
                                 per logical non-GET/HEAD request, the same on every retry */
    int max_connections;      /* 0 = no cap: connections in use at once, all origins */
    int max_connections_per_origin; /* 0 = no cap: connections in use at once per origin */
    pr_breaker *breaker;      /* NULL = none: admits every attempt (borrowed; must outlive the client) */
    pr_http_observer observer; /* events of every request (see Events above); zero = none */
    size_t fetch_max_bytes;   /* 0 = 16 MiB: the largest body pr_http_client_fetch reads (PR_ELIMIT) */
    int max_retry_after_ms;   /* 0 = 60000 (< 0 too): the longest retry sleep a server's
                                 retry-after-ms / Retry-After gets; a longer hint is cut to it */
    const char *const *redirect_forward_headers; /* NULL = none: names (NULL-terminated, any case)
                                 of request fields safe to send on when a redirect changes the
                                 origin; copied. Every other field is dropped there but Accept,
                                 Accept-Language, User-Agent, the body's Content-Type, -Language,
                                 -Encoding and the client's own fields (see Redirects above);
                                 the request's redirect_forward adds names per request */
} pr_http_client_opts;

/* A whole response read by pr_http_client_fetch. Zero it before the first
   use; pr_http_result_deinit frees it. */
typedef struct pr_http_result {
    int status;               /* the final status; 0 when the request failed */
    pr_http_response *resp;   /* the final response's head (pr_http_header_get etc.); its body
                                 has been read and its connection given back; NULL on failure */
    char *body;               /* the body, NUL-terminated (the NUL is not counted); NULL on failure */
    size_t body_len;
    pr_json_doc *json;        /* the body parsed, when Content-Type is JSON (application/json or
                                 any +json) and it parses; else NULL */
    int attempts;             /* attempts made (1 + retries) */
} pr_http_result;

/* Create a client. Reads the proxy environment once (unless ignore_env)
   and parses the trust anchors of tls.ca_file / tls.ca_pem and the client
   certificate of tls.cert_* / tls.key_* once (shared by every https
   connection of the client; not in a PRISTINE_NO_TLS build).
   Params: out - receives the client; opts - NULL = defaults (copied);
           err - receives why it failed, naming the file or the proxy URL
           (NULL = not wanted; zeroed on success).
   Returns: PR_OK; PR_EINVAL (out NULL, a proxy URL that does not parse, no
            certificate in tls.ca_file / tls.ca_pem, a client certificate
            without a usable key or the reverse, an invalid retry policy,
            negative caps); PR_EIO (tls.ca_file, cert_file or key_file
            cannot be read; errno in err->sys_errno); PR_ENOTSUP (an
            https:// or other non-http proxy URL); PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_http_client_request, pr_http_client_destroy. */
PRISTINE_API int pr_http_client_create(pr_http_client **out, const pr_http_client_opts *opts, pr_err_info *err);

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
   connection, proxy, TLS, one transparent replay on a dead reused
   connection, redirects when enabled, retries by the policy (see above).
   Any number of tasks of the thread may call it on one client at once.
   The response owns the
   connection; destroy it after reading the body to let the connection be
   reused. req->url and the request are borrowed for the call only. After
   a 101 the new protocol's bytes can be read here but not written: a
   protocol that writes after the switch uses pr_http_exchange on a
   connection of its own.
   Params: c - the client; out - receives the response (NULL on failure);
           req - the request (url required); err - receives this call's
           failure detail (NULL = not wanted; zeroed on success); deadline
           - absolute ms for the whole call (connect_timeout_ms caps the
           connect phase inside it).
   Returns: PR_OK (whatever the status); PR_EINVAL (bad request, see
            pr_http_exchange); PR_ENOMEM; PR_EDNS; PR_EIO; PR_ETLS;
            PR_ENOTSUP (https in a PRISTINE_NO_TLS build); PR_ECLOSED;
            PR_EPROTO (malformed response, proxy refused CONNECT, https ->
            http redirect refused); PR_ELIMIT (a parser limit, too many
            redirects); PR_ECIRCUIT (the breaker refused an attempt); a
            negative code from body_fn or body_rewind; PR_ETIMEDOUT
            (deadline, connect, attempt or idle timeout, waiting for a
            connection slot); PR_ECANCELED. After retries, the last
            attempt's outcome. Detail in err (and in
            pr_http_client_last_error).
   Blocks: yes.
   Thread: owner.
   See: pr_http_client_get, pr_http_read, pr_http_response_destroy. */
PRISTINE_API int pr_http_client_request(pr_http_client *c, pr_http_response **out, const pr_http_request *req,
                                        pr_err_info *err, int64_t deadline);

/* GET a URL given as text: pr_url_parse, then pr_http_client_request.
   Params: c - the client; out - receives the response; url - NUL-terminated
           absolute http/https URL; err - receives the failure detail (NULL
           = not wanted); deadline - absolute ms.
   Returns: as pr_http_client_request (PR_EINVAL for a URL that does not
            parse); PR_ETIMEDOUT; PR_ECANCELED.
   Blocks: yes.
   Thread: owner.
   See: pr_http_client_request. */
PRISTINE_API int pr_http_client_get(pr_http_client *c, pr_http_response **out, const char *url, pr_err_info *err,
                                    int64_t deadline);

/* Send a request given as text: method, URL, header lines and an
   optional body. Otherwise as pr_http_client_request (retries, redirects,
   events) with the client's retry policy.
   Params: c - the client; out - receives the response; method - NULL =
           "GET"; url - NUL-terminated absolute http/https URL; headers -
           NULL-terminated field lines "Name: value" (as
           pr_http_request.headers), or NULL; body, body_len - the body
           (NULL, 0 = none); err - receives the failure detail (NULL = not
           wanted); deadline - absolute ms.
   Returns: as pr_http_client_request; PR_EINVAL also for a URL that does
            not parse or a header line that is not a field line (the
            message names its field); PR_ETIMEDOUT; PR_ECANCELED.
   Blocks: yes.
   Thread: owner.
   See: pr_http_client_request, pr_http_client_fetch. */
PRISTINE_API int pr_http_client_send(pr_http_client *c, pr_http_response **out, const char *method, const char *url,
                                     const char *const *headers, const void *body, size_t body_len,
                                     pr_err_info *err, int64_t deadline);

/* Send a request and read the whole response into memory. The body is
   part of the attempt: a body that stalls past attempt_timeout_ms or is
   cut short is retried like a failed connection (nothing reached the
   caller yet). A JSON body is parsed as well.
   Params: c - the client; res - zeroed or deinit'ed result, filled; req -
           the request (as for pr_http_client_request); err - receives the
           failure detail, and for a final status >= 400 (a PR_OK call)
           http_status and the start of the body in msg with code PR_OK
           (NULL = not wanted); deadline - absolute ms.
   Returns: PR_OK (res->status may be any status: check it); PR_ELIMIT (a
            body over fetch_max_bytes); otherwise as pr_http_client_request
            (PR_ETIMEDOUT, PR_ECANCELED, ...), with err set.
   Blocks: yes.
   Thread: owner.
   See: pr_http_result_deinit. */
PRISTINE_API int pr_http_client_fetch(pr_http_client *c, pr_http_result *res, const pr_http_request *req,
                                      pr_err_info *err, int64_t deadline);

/* Free what a result holds and zero it (NULL is a no-op).
   Params: res - the result.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_http_client_fetch. */
PRISTINE_API void pr_http_result_deinit(pr_http_result *res);

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

// @pristine:impl
#define PR__CLIENT_DEF_CONNECT_MS 30000
#define PR__CLIENT_DEF_POOL_IDLE_MS 60000
#define PR__CLIENT_DEF_POOL_MAX 16
#define PR__CLIENT_MAX_REDIRECTS 10
#define PR__CLIENT_DRAIN_MAX 65536 /* bytes of a followed 3xx body read to keep its connection */
#define PR__CLIENT_DRAIN_MS 1000    /* time spent on that at most */
#define PR__CLIENT_DEF_FETCH_MAX (16u << 20)

/* An idle pooled connection; the key bytes follow the struct. */
typedef struct pr__client_pooled {
    struct pr__client_pooled *next;
    pr_conn *conn;
    int64_t since;
    size_t key_len;
} pr__client_pooled;

/* Connection slots of one origin (max_connections_per_origin); the key
   bytes follow the struct. */
typedef struct pr__client_origin {
    struct pr__client_origin *next;
    pr_sem *sem;
    long users;      /* holders and waiters; the entry goes when it drops to 0 */
    size_t key_len;
} pr__client_origin;

struct pr_http_client {
    pr_http_client_opts o;        /* resolved; string fields point at the copies below */
    char *ca_file, *ca_pem, *alpn, *no_proxy;
    size_t ca_file_n, ca_pem_n, alpn_n, no_proxy_n;
    char *hdr_count, *hdr_timeout, *hdr_idem; /* header names (copies; NUL-terminated) */
    char **fwd;                   /* redirect_forward_headers: one block, the pointers then the names */
    size_t fwd_size;
    pr_tls_anchors *anchors;      /* parsed from ca_file / ca_pem at create; owned */
    pr_tls_identity *identity;    /* parsed from cert_* / key_* at create; owned */
    pr_url proxy_http, proxy_https; /* mem_ == NULL: none */
    pr__client_pooled *pool;        /* most recently released first */
    size_t npool;
    pr_sem *slots;                /* max_connections, or NULL */
    pr__client_origin *origins;     /* max_connections_per_origin entries in use */
    long live;                    /* responses that own a connection */
    int destroyed;                /* pr_http_client_destroy ran; free with the last response */
    pr_err_info err;
};

/* A copy of an optional NUL-terminated string into *dst; PR_OK or PR_ENOMEM. */
static int pr__client_strdup_opt(char **dst, const char *s) {
    if (!s) return PR_OK;
    return (*dst = pr__strdup(s, NULL)) != NULL ? PR_OK : PR_ENOMEM;
}

/* A copy of a NULL-terminated list of strings in one block of *size bytes
   (NULL for an empty list). */
static int pr__client_list_dup(char ***out, size_t *size, const char *const *list) {
    size_t n = 0, bytes = 0, i;
    char *p;
    while (list && list[n]) bytes += strlen(list[n++]) + 1;
    if (!n) return PR_OK;
    *size = (n + 1) * sizeof **out + bytes;
    if (!(*out = (char **)pr__alloc(*size))) return PR_ENOMEM;
    p = (char *)(*out + n + 1);
    for (i = 0; i < n; i++) {
        size_t l = strlen(list[i]) + 1;
        (*out)[i] = (char *)memcpy(p, list[i], l);
        p += l;
    }
    (*out)[n] = NULL;
    return PR_OK;
}

static void pr__client_pool_free(pr__client_pooled *e) {
    pr_conn_destroy(e->conn);
    pr__free(e, sizeof *e + e->key_len);
}

/* Close every idle pooled connection. */
static void pr__client_pool_clear(pr_http_client *c) {
    while (c->pool) {
        pr__client_pooled *e = c->pool;
        c->pool = e->next;
        pr__client_pool_free(e);
    }
    c->npool = 0;
}

static void pr__client_free(pr_http_client *c) {
    pr__client_pool_clear(c);
    pr__free(c->ca_file, c->ca_file_n);
    pr__free(c->ca_pem, c->ca_pem_n);
    pr__free(c->alpn, c->alpn_n);
    pr__free(c->no_proxy, c->no_proxy_n);
    pr__strfree(&c->hdr_count);
    pr__strfree(&c->hdr_timeout);
    pr__strfree(&c->hdr_idem);
    pr__free(c->fwd, c->fwd_size);
    pr_sem_destroy(c->slots);
    pr_tls_anchors_destroy(c->anchors);
    pr_tls_identity_destroy(c->identity); /* wipes the key */
    pr_url_deinit(&c->proxy_http);
    pr_url_deinit(&c->proxy_https);
    pr__free(c, sizeof *c);
}

int pr_http_client_create(pr_http_client **out, const pr_http_client_opts *opts, pr_err_info *err) {
    pr_http_client *c;
    const char *hp, *sp, *np;
    int rc = PR_OK;
    if (err) memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out) return pr__err_set(err, PR_EINVAL, 0, "http: pr_http_client_create: out is NULL");
    c = (pr_http_client *)pr__calloc(1, sizeof *c);
    if (!c) return pr__err_set(err, PR_ENOMEM, 0, "http: out of memory");
    if (opts) c->o = *opts;
    c->o.connect_timeout_ms = PR__DEF(c->o.connect_timeout_ms, PR__CLIENT_DEF_CONNECT_MS);
    c->o.pool_idle_ms = PR__DEF(c->o.pool_idle_ms, PR__CLIENT_DEF_POOL_IDLE_MS);
    c->o.pool_max = PR__DEF(c->o.pool_max, PR__CLIENT_DEF_POOL_MAX);
    if (c->o.pool_max < 0) c->o.pool_max = 0;
    if (c->o.max_redirects < 0) c->o.max_redirects = 0;
    if (c->o.max_redirects > PR__CLIENT_MAX_REDIRECTS) c->o.max_redirects = PR__CLIENT_MAX_REDIRECTS;
    if (c->o.idle_timeout_ms) c->o.http.idle_timeout_ms = c->o.idle_timeout_ms;
    c->o.tcp_keepalive_s = PR__DEF(c->o.tcp_keepalive_s, 60);
    c->o.fetch_max_bytes = PR__DEF(c->o.fetch_max_bytes, PR__CLIENT_DEF_FETCH_MAX);
    if (c->o.attempt_timeout_ms < 0) c->o.attempt_timeout_ms = 0;
    {
        pr_retry probe; /* the policy must be valid now, not at the first request */
        if (pr_retry_begin(&probe, &c->o.retry) != PR_OK)
            rc = pr__err_set(&c->err, PR_EINVAL, 0, "http: invalid retry policy (backoff or limits)");
    }
    if (!rc && (c->o.max_connections < 0 || c->o.max_connections_per_origin < 0))
        rc = pr__err_set(&c->err, PR_EINVAL, 0, "http: negative max_connections");
    if (!rc && c->o.max_connections > 0 && pr_sem_create(&c->slots, c->o.max_connections) != PR_OK)
        rc = PR_ENOMEM;
    if (!rc && c->o.tls.ca_file && !(c->ca_file = pr__strdup(c->o.tls.ca_file, &c->ca_file_n))) rc = PR_ENOMEM;
    if (!rc && c->o.tls.ca_pem) {
        c->ca_pem_n = c->o.tls.ca_pem_len ? c->o.tls.ca_pem_len : strlen(c->o.tls.ca_pem);
        if ((c->ca_pem = (char *)pr__alloc(c->ca_pem_n)) != NULL) memcpy(c->ca_pem, c->o.tls.ca_pem, c->ca_pem_n);
        else rc = PR_ENOMEM;
        c->o.tls.ca_pem_len = c->ca_pem_n;
    }
    if (!rc && c->o.tls.alpn && !(c->alpn = pr__strdup(c->o.tls.alpn, &c->alpn_n))) rc = PR_ENOMEM;
    if (!rc) rc = pr__client_strdup_opt(&c->hdr_count, c->o.retry_count_header);
    if (!rc) rc = pr__client_strdup_opt(&c->hdr_timeout, c->o.timeout_header);
    if (!rc) rc = pr__client_strdup_opt(&c->hdr_idem, c->o.idempotency_header);
    if (!rc) rc = pr__client_list_dup(&c->fwd, &c->fwd_size, c->o.redirect_forward_headers);
    c->o.redirect_forward_headers = (const char *const *)c->fwd;
    c->o.retry_count_header = c->hdr_count;
    c->o.timeout_header = c->hdr_timeout;
    c->o.idempotency_header = c->hdr_idem;
    c->o.tls.ca_file = c->ca_file;
    c->o.tls.ca_pem = c->ca_pem;
    c->o.tls.alpn = c->alpn;
#ifndef PRISTINE_NO_TLS
    /* parse the trust anchors once; every connect shares them read-only */
    if (!rc && !c->o.tls.anchors && !c->o.tls.insecure_skip_verify_DANGEROUS && (c->ca_file || c->ca_pem)) {
        rc = pr_tls_anchors_create(&c->anchors, c->ca_pem ? NULL : c->ca_file, c->ca_pem, c->ca_pem_n, &c->err);
        if (rc) {
            char why[sizeof c->err.msg];
            int e = c->err.sys_errno;
            snprintf(why, sizeof why, "%s", c->err.msg);
            pr__err_set(&c->err, rc, e, "http: tls.%s: %s", c->ca_pem ? "ca_pem" : "ca_file", why);
        }
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
    /* the client certificate too, so a bad one fails here, not at the first connect */
    if (!rc && !c->o.tls.identity &&
        (c->o.tls.cert_file || c->o.tls.cert_pem || c->o.tls.key_file || c->o.tls.key_pem)) {
        rc = pr_tls_identity_create(&c->identity, c->o.tls.cert_file, c->o.tls.cert_pem, c->o.tls.cert_pem_len,
                                    c->o.tls.key_file, c->o.tls.key_pem, c->o.tls.key_pem_len, &c->err);
        if (rc) {
            char why[sizeof c->err.msg];
            int e = c->err.sys_errno;
            snprintf(why, sizeof why, "%s", c->err.msg);
            pr__err_set(&c->err, rc, e, "http: tls: %s", why);
        }
        c->o.tls.identity = c->identity;
    }
#endif
    /* never kept: the identity holds what connections need (the caller's strings may go) */
    c->o.tls.cert_file = c->o.tls.cert_pem = c->o.tls.key_file = c->o.tls.key_pem = NULL;
    c->o.tls.cert_pem_len = c->o.tls.key_pem_len = 0;
    pr__proxy_pick(c->o.http_proxy, c->o.https_proxy, c->o.all_proxy, c->o.no_proxy, c->o.ignore_env, &hp, &sp, &np);
    if (!rc) rc = pr__proxy_parse(&c->proxy_http, hp, &c->err);
    if (!rc) rc = pr__proxy_parse(&c->proxy_https, sp, &c->err);
    if (!rc && np && *np && !(c->no_proxy = pr__strdup(np, &c->no_proxy_n))) rc = PR_ENOMEM;
    c->o.http_proxy = c->o.https_proxy = c->o.all_proxy = NULL;
    c->o.no_proxy = c->no_proxy;
    if (rc) {
        if (c->err.code != rc) pr__err_set(&c->err, rc, 0, "http: %s", pr_strerror(rc));
        if (err) *err = c->err;
        pr__client_free(c);
        return rc;
    }
    *out = c;
    return PR_OK;
}

void pr_http_client_destroy(pr_http_client *c) {
    if (!c) return;
    pr__client_pool_clear(c);
    if (c->live > 0) c->destroyed = 1;
    else pr__client_free(c);
}

int pr_http_client_last_error(const pr_http_client *c, pr_err_info *out) {
    if (!c || !out) return PR_EINVAL;
    *out = c->err;
    return PR_OK;
}

size_t pr_http_client_idle_count(const pr_http_client *c) { return c ? c->npool : 0; }

/* The proxy for u, or NULL. */
static const pr_url *pr__client_proxy_for(pr_http_client *c, const pr_url *u) {
    const pr_url *p = u->secure ? &c->proxy_https : &c->proxy_http;
    char host[256];
    if (!p->mem_ || pr__proxy_is_loopback(u->host)) return NULL;
    if (c->no_proxy) {
        if (u->host.len >= sizeof host) return p;
        memcpy(host, u->host.ptr, u->host.len);
        host[u->host.len] = 0;
        if (pr_http_no_proxy_match(c->no_proxy, host)) return NULL;
    }
    return p;
}

/* ---- pool ---- */

static int pr__client_pool_key(pr_buf *k, const pr_url *u, const pr_url *proxy) {
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
static pr_conn *pr__client_pool_take(pr_http_client *c, const pr_buf *key) {
    pr__client_pooled **pp = &c->pool;
    int64_t now = pr_now();
    while (*pp) {
        pr__client_pooled *e = *pp;
        if (now - e->since >= c->o.pool_idle_ms) { /* expired */
            *pp = e->next;
            c->npool--;
            pr__client_pool_free(e);
            continue;
        }
        if (e->key_len == key->len && !memcmp(e + 1, key->data, key->len)) {
            char probe;
            ptrdiff_t k;
            pr_conn *conn = e->conn;
            *pp = e->next;
            c->npool--;
            /* dead-connection check: readable now (EOF, reset, stray bytes) =
               unusable. A socket the poller knows to be quiet needs no probe
               read (if it died since, the request's replay rule covers it). */
            k = pr__net_conn_known_idle(conn) ? (ptrdiff_t)PR_ETIMEDOUT : pr_conn_read(conn, &probe, 1, 0);
            if (k == PR_ETIMEDOUT) {
                pr__free(e, sizeof *e + e->key_len);
                return conn;
            }
            pr__client_pool_free(e);
            continue;
        }
        pp = &e->next;
    }
    return NULL;
}

/* Give a connection back (takes ownership of conn; key copied). */
static void pr__client_pool_put(pr_http_client *c, pr_conn *conn, const char *key, size_t key_len) {
    pr__client_pooled *e, **pp;
    size_t n;
    if (c->destroyed || c->o.pool_idle_ms < 0 || c->o.pool_max <= 0) {
        pr_conn_destroy(conn);
        return;
    }
    e = (pr__client_pooled *)pr__alloc(sizeof *e + key_len);
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
    for (n = 1, pp = &c->pool; c->npool > (size_t)c->o.pool_max && *pp; n++) {
        if (n > (size_t)c->o.pool_max) {
            pr__client_pooled *x = *pp;
            *pp = x->next;
            c->npool--;
            pr__client_pool_free(x);
        } else {
            pp = &(*pp)->next;
        }
    }
}

/* ---- connection slots (max_connections, max_connections_per_origin) ---- */

/* Drop a use of an origin entry; the last one frees it. */
static void pr__client_origin_unref(pr_http_client *c, pr__client_origin *o) {
    pr__client_origin **pp = &c->origins;
    if (--o->users > 0) return;
    while (*pp != o) pp = &(*pp)->next;
    *pp = o->next;
    pr_sem_destroy(o->sem);
    pr__free(o, sizeof *o + o->key_len);
}

/* Take the slots a new connection for key needs: the origin's first (so a
   task holding a slot of the whole client never waits for its origin),
   then the client's. Waits in FIFO order until the deadline. */
static int pr__client_slots_take(pr_http_client *c, const pr_buf *key, pr__client_origin **og, int *slot,
                               int64_t deadline, const char *limit, pr_err_info *err) {
    pr__client_origin *o = NULL;
    int rc = PR_OK;
    *og = NULL;
    *slot = 0;
    if (c->o.max_connections_per_origin > 0) {
        for (o = c->origins; o; o = o->next)
            if (o->key_len == key->len && !memcmp(o + 1, key->data, key->len)) break;
        if (!o) {
            if (!(o = (pr__client_origin *)pr__calloc(1, sizeof *o + key->len)) ||
                pr_sem_create(&o->sem, c->o.max_connections_per_origin) != PR_OK) {
                pr__free(o, sizeof *o + key->len);
                return pr__err_set(err, PR_ENOMEM, 0, "http: out of memory");
            }
            o->key_len = key->len;
            memcpy(o + 1, key->data, key->len);
            o->next = c->origins;
            c->origins = o;
        }
        o->users++;
        if ((rc = pr_sem_acquire(o->sem, deadline)) != PR_OK) pr__client_origin_unref(c, o);
    }
    if (!rc && c->slots && (rc = pr_sem_acquire(c->slots, deadline)) != PR_OK && o) {
        pr_sem_release(o->sem);
        pr__client_origin_unref(c, o);
    }
    if (rc == PR_ETIMEDOUT) return pr__err_set(err, rc, 0, "http: timed out waiting for a free connection (%s)", limit);
    if (rc) return pr__err_set(err, rc, 0, "http: %s while waiting for a free connection", pr_strerror(rc));
    *og = o;
    *slot = c->slots != NULL;
    return PR_OK;
}

/* Give back slots from pr__client_slots_take. */
static void pr__client_slots_give(pr_http_client *c, pr__client_origin *o, int slot) {
    if (slot) pr_sem_release(c->slots);
    if (o) {
        pr_sem_release(o->sem);
        pr__client_origin_unref(c, o);
    }
}

/* What a client response holds until it is destroyed: its connection, its
   slots and the pool key to file the connection under. */
typedef struct pr__client_lease {
    pr_http_client *client;
    pr_conn *conn;
    pr__client_origin *origin; /* a per-origin slot, or NULL */
    int slot;                /* a max_connections slot */
    size_t key_len;          /* the key bytes follow the struct */
} pr__client_lease;

/* pr_http_response_destroy's hook for client responses: a connection whose
   response ended cleanly goes back to the pool, any other is closed. */
static void pr__client_lease_end(pr_http_response *r, void *ctx) {
    pr__client_lease *l = (pr__client_lease *)ctx;
    pr_http_client *c = l->client;
    if (pr_http_reusable(r)) pr__client_pool_put(c, l->conn, (const char *)(l + 1), l->key_len);
    else pr_conn_destroy(l->conn);
    r->on_destroy = NULL;
    r->conn = NULL;
    pr__client_slots_give(c, l->origin, l->slot);
    c->live--;
    pr__free(l, sizeof *l + l->key_len);
    if (c->destroyed && c->live <= 0) pr__client_free(c);
}

/* ---- connecting ---- */

/* A NUL-terminated copy of a host slice into h[256]. */
static int pr__client_host_cstr(char *h, pr_slice s) {
    if (s.len >= 256) return PR_EINVAL;
    memcpy(h, s.ptr, s.len);
    h[s.len] = 0;
    return PR_OK;
}

/* A fresh connection to u (through proxy when set): TCP, CONNECT, TLS, all
   under the connect cap. *head_used: bytes of a CONNECT reply (else 0).
   limit names deadline in timeout messages. */
static int pr__client_connect(pr_http_client *c, pr_conn **out, const pr_url *u, const pr_url *proxy,
                            size_t *head_used, int64_t deadline, const char *limit, pr_err_info *err) {
    const pr_url *to = proxy ? proxy : u;
    int64_t cdl = deadline;
    pr_net_opts no;
    pr_conn *conn = NULL;
    const char *phase;
    char host[256], capname[48];
    int rc;
    *out = NULL;
    *head_used = 0;
    if (c->o.connect_timeout_ms > 0) cdl = pr_deadline_min(deadline, pr_deadline_in(c->o.connect_timeout_ms));
    if (cdl < deadline) {
        snprintf(capname, sizeof capname, "connect timeout %d ms", c->o.connect_timeout_ms);
        limit = capname;
    }
    if (pr__client_host_cstr(host, to->host)) return pr__err_set(err, PR_EINVAL, 0, "http: host name too long");
    memset(&no, 0, sizeof no);
    no.connect_timeout_ms = -1; /* cdl holds the cap */
    no.keepalive = c->o.tcp_keepalive_s > 0 ? c->o.tcp_keepalive_s : 0;
    memset(err, 0, sizeof *err);
    phase = proxy ? "connecting to the proxy" : "resolving and connecting to";
    rc = pr_tcp_connect(&conn, host, to->port, &no, err, cdl);
    if (!rc && proxy && u->secure) {
        phase = "waiting for the CONNECT reply of the proxy";
        rc = pr__proxy_tunnel(&conn, u, proxy, &c->o.http, head_used, cdl, limit, err);
    }
    if (!rc && u->secure) {
        pr_conn *t = NULL;
        phase = "in the TLS handshake with";
        if (pr__client_host_cstr(host, u->host)) {
            pr_conn_destroy(conn);
            return pr__err_set(err, PR_EINVAL, 0, "http: host name too long");
        }
        pr_tls_opts topts = c->o.tls;
        if (!topts.half_duplex) topts.half_duplex = 1; /* a request is sent whole before its response is read */
        rc = pr_tls_client(&t, conn, host, &topts, err, cdl); /* owns conn from here on */
        conn = t;
    }
    if (rc) {
        if (err->code != rc) pr__err_set(err, rc, 0, "http: connect failed: %s", pr_strerror(rc));
        if (rc == PR_ETIMEDOUT) pr__err_set(err, rc, 0, "http: timed out %s %s (%s)", phase, host, limit);
        return rc;
    }
    *out = conn;
    return PR_OK;
}

/* ---- requests ---- */

static int pr__client_method_is(const char *m, const char *s) { return strcmp(m, s) == 0; }

/* Restart a streamed body for a replay: PR_OK, or why it cannot be. */
static int pr__client_rewind(const pr_http_request *req) {
    if (!req->body_fn) return PR_OK;
    return req->body_rewind ? req->body_rewind(req->body_user_data) : PR_ESTATE;
}

/* One request on one origin: pool or connect, exchange, one replay on a
   dead reused connection. */
static int pr__client_once(pr_http_client *c, pr_http_response **out, const pr_http_request *req,
                                int64_t deadline, const char *limit, pr_err_info *err) {
    const pr_url *u = req->url, *proxy = pr__client_proxy_for(c, u);
    pr_buf key, target, pauth;
    pr_slice tslice, *tp = NULL;
    pr_http_request rq = *req;
    const char **lines = NULL;
    pr__client_origin *og = NULL;
    size_t lines_size = 0;
    int rc, attempt, slot = 0;
    *out = NULL;
    pr_buf_init(&key);
    pr_buf_init(&target);
    pr_buf_init(&pauth);
    rc = pr__client_pool_key(&key, u, proxy);
    if (!rc && proxy && !u->secure) { /* absolute-form target, Proxy-Authorization */
        rc = pr_buf_append_str(&target, "http://");
        if (!rc) rc = pr_url_authority(&target, u, 0);
        if (!rc) rc = pr_url_target(&target, u);
        tslice.ptr = target.data;
        tslice.len = target.len;
        tp = &tslice;
        if (!rc && proxy->has_userinfo) {
            pr_http_header pa;
            rc = pr__proxy_basic(&pauth, proxy);
            pa.name = pr_slice_cstr("Proxy-Authorization");
            pa.value.ptr = pauth.data;
            pa.value.len = pauth.len;
            if (!rc) rc = pr__http_lines_join(req->headers, &pa, 1, &lines, &lines_size);
            rq.headers = lines;
        }
    }
    if (rc) {
        pr__err_set(err, rc, 0, "http: out of memory");
        goto done;
    }
    if ((rc = pr__client_slots_take(c, &key, &og, &slot, deadline, limit, err)) != PR_OK) goto done;
    for (attempt = 0;; attempt++) {
        pr_http_response *r = NULL;
        pr__client_lease *lease;
        pr_conn *conn = attempt == 0 ? pr__client_pool_take(c, &key) : NULL;
        int reused = conn != NULL, rx = 0;
        size_t head_used = 0;
        pr_http_opts ho = c->o.http;
        if (!conn && (rc = pr__client_connect(c, &conn, u, proxy, &head_used, deadline, limit, err)) != 0) break;
        if (req->idle_timeout_ms) ho.idle_timeout_ms = PR__MAX(req->idle_timeout_ms, 0); /* the request's own */
        rc = pr__http_exchange(&r, conn, &rq, &ho, tp, head_used, deadline, &rx, limit);
        if (rc) {
            pr_err_info e = conn->err;
            pr_conn_destroy(conn);
            /* transparent replay: a reused connection died before the first
               response byte and the request can be sent again */
            if (reused && !rx && pr__http_peer_gone(rc, &e) && pr__client_rewind(req) == PR_OK) continue;
            if (e.code != rc) pr__err_set(&e, rc, 0, "http: %s", pr_strerror(rc));
            *err = e;
            break;
        }
        lease = (pr__client_lease *)pr__alloc(sizeof *lease + key.len);
        if (!lease) {
            pr_http_response_destroy(r);
            pr_conn_destroy(conn);
            rc = pr__err_set(err, PR_ENOMEM, 0, "http: out of memory");
            break;
        }
        lease->client = c;
        lease->conn = conn;
        lease->origin = og;
        lease->slot = slot;
        lease->key_len = key.len;
        memcpy(lease + 1, key.data, key.len);
        r->on_destroy = pr__client_lease_end;
        r->on_destroy_ctx = lease;
        og = NULL;
        slot = 0;
        c->live++;
        *out = r;
        break;
    }
    pr__client_slots_give(c, og, slot); /* still ours only when no response holds them */
done:
    pr__free(lines, lines_size);
    pr_buf_deinit(&key);
    pr_buf_deinit(&target);
    pr_buf_deinit(&pauth);
    return rc;
}

/* Whether name is in a NULL-terminated list (any case). */
static int pr__client_name_in(pr_slice name, const char *const *list) {
    for (; list && *list; list++)
        if (pr__http_hdr_is(name, *list)) return 1;
    return 0;
}

/* Whether a request field goes on to the next hop of a redirect that
   changes the origin (cross) or not and keeps the body or not (see the
   module doc). */
static int pr__client_redirect_keeps(const pr_http_client *c, const pr_http_request *req, pr_slice name, int cross,
                                   int keep_body) {
    static const char *const safe[] = { "accept", "accept-language", "user-agent", /* then the body's: */
                                        "content-type", "content-language", "content-encoding", NULL };
    const char *const own[3] = { c->hdr_count, c->hdr_timeout, c->hdr_idem };
    size_t i;
    if (!keep_body && (pr__client_name_in(name, safe + 3) || pr__http_hdr_is(name, "content-location"))) return 0;
    if (!cross) return 1;
    if (pr__http_hdr_is(name, "host")) return 0; /* it names the old origin (curl drops it too) */
    for (i = 0; i < 3; i++)
        if (own[i] && pr__http_hdr_is(name, own[i])) return 1;
    return pr__client_name_in(name, safe) || pr__client_name_in(name, c->o.redirect_forward_headers) ||
           pr__client_name_in(name, req->redirect_forward);
}

/* Read what is already buffered of a response's body (no waiting) so that
   its connection can go back to the pool; then destroy it. */
static void pr__client_discard(pr_http_response *r) {
    const char *p;
    size_t got = 0, n;
    while (got < PR__CLIENT_DRAIN_MAX && pr_http_next_span(r, &p, &n, 0) == PR_OK) got += n;
    pr_http_response_destroy(r);
}

/* The redirect chain of one attempt. */
static int pr__client_chain(pr_http_client *c, pr_http_response **out, const pr_http_request *req, int64_t deadline,
                          const char *limit, pr_err_info *err) {
    pr_http_request rq;
    const char **lines = NULL;
    size_t lines_cap = 0, i;
    pr_url cur;
    int rc, hops = 0;
    memset(&cur, 0, sizeof cur);
    rq = *req;
    for (;;) {
        pr_http_response *r = NULL;
        const pr_slice *loc;
        int st, keep_body, cross;
        pr_buf base, next;
        pr_url nu;
        rc = pr__client_once(c, &r, &rq, deadline, limit, err);
        if (rc) break;
        st = pr_http_status(r);
        loc = pr_http_header_get(r, "location");
        if (!c->o.max_redirects || !loc || !(st == 301 || st == 302 || st == 303 || st == 307 || st == 308)) {
            *out = r;
            break;
        }
        keep_body = !(st == 303 || ((st == 301 || st == 302) && rq.method && pr__client_method_is(rq.method, "POST")));
        if (keep_body && rq.body_fn && !rq.body_rewind) { /* cannot replay a streamed body: the 3xx is the answer */
            *out = r;
            break;
        }
        if (++hops > c->o.max_redirects) {
            pr_http_response_destroy(r);
            rc = pr__err_set(err, PR_ELIMIT, 0, "http: more than %d redirects", c->o.max_redirects);
            err->http_status = st;
            break;
        }
        /* the next URL */
        pr_buf_init(&base);
        pr_buf_init(&next);
        memset(&nu, 0, sizeof nu);
        rc = pr_url_format(&base, rq.url, 0);
        if (!rc) rc = pr_url_resolve(&next, base.data, base.len, loc->ptr, loc->len, err);
        if (!rc) rc = pr_url_parse(&nu, next.data, next.len, err);
        pr_buf_deinit(&base);
        pr_buf_deinit(&next);
        if (rc) {
            if (rc == PR_EINVAL) rc = PR_EPROTO; /* the server's Location is bad, not the caller's request */
            err->code = rc;
            err->http_status = st;
            pr_http_response_destroy(r);
            pr_url_deinit(&nu);
            break;
        }
        if (rq.url->secure && !nu.secure && !c->o.allow_https_to_http) {
            pr_http_response_destroy(r);
            pr_url_deinit(&nu);
            rc = pr__err_set(err, PR_EPROTO, 0, "http: redirect from https to http refused");
            err->http_status = st;
            break;
        }
        /* drain the 3xx body so its connection can be reused, but only what
           is cheap: at most PR__CLIENT_DRAIN_MAX bytes within PR__CLIENT_DRAIN_MS
           (and the deadline). A body that has not ended by then leaves the
           response unreusable: destroying it closes the connection. */
        {
            const char *p;
            size_t got = 0, k;
            int64_t ddl = pr_deadline_min(deadline, pr_deadline_in(PR__CLIENT_DRAIN_MS));
            while (got < PR__CLIENT_DRAIN_MAX && pr_http_next_span(r, &p, &k, ddl) == PR_OK) got += k;
        }
        pr_http_response_destroy(r);
        cross = !pr_url_same_origin(rq.url, &nu);
        if ((cross || !keep_body) && rq.headers) { /* the fields that go on, for the rest of the chain */
            size_t n = 0;
            if (!lines) {
                while (rq.headers[lines_cap]) lines_cap++;
                lines = (const char **)pr__calloc(++lines_cap, sizeof *lines);
                if (!lines) {
                    lines_cap = 0;
                    pr_url_deinit(&nu);
                    rc = pr__err_set(err, PR_ENOMEM, 0, "http: out of memory");
                    break;
                }
            }
            for (i = 0; rq.headers[i]; i++) {
                pr_slice name, value;
                if (pr__http_field_line(rq.headers[i], strlen(rq.headers[i]), &name, &value, NULL) == PR_OK &&
                    pr__client_redirect_keeps(c, req, name, cross, keep_body))
                    lines[n++] = rq.headers[i];
            }
            lines[n] = NULL;
            rq.headers = lines;
        }
        if (!keep_body) {
            if (!rq.method || !pr__client_method_is(rq.method, "HEAD")) rq.method = "GET";
            rq.body = NULL;
            rq.body_len = 0;
            rq.body_fn = NULL;
            rq.body_user_data = NULL;
        } else if ((rc = pr__client_rewind(&rq)) != PR_OK) {
            pr_url_deinit(&nu);
            pr__err_set(err, rc, 0, "http: the request body could not be restarted for a redirect");
            break;
        }
        pr_url_deinit(&cur);
        cur = nu;
        rq.url = &cur;
    }
    pr__free(lines, lines_cap * sizeof *lines);
    pr_url_deinit(&cur);
    return rc;
}

/* ---- retries around the chain ---- */

/* One logical request: the state its attempts share. */
typedef struct pr__client_call {
    pr_http_client *c;
    const pr_http_request *req;
    const char *method;
    pr_err_info err;          /* the call's detail */
    int replayable;
    int status;               /* the last attempt's response status, 0 if none */
    int retry_status;         /* that status asks for a retry */
    int64_t hint_ms;          /* the server's usable delay hint, -1 = none */
    int fatal;                /* the last attempt's error must not be retried */
    int (*classify)(int outcome, int64_t *after_ms, void *user_data); /* the policy's own hooks */
    void (*on_retry)(const pr_retry_info *info, void *user_data);
    void *user_data;
    pr_retry_hooks hooks;     /* the policy's clock, for HTTP-date hints */
    pr_buf url;               /* without userinfo, for events (only with an observer) */
    int64_t t0;
} pr__client_call;

static void pr__client_emit(pr__client_call *k, int kind, int attempt, int status, int error, int64_t duration_ms,
                          int64_t delay_ms, const char *reason, int hinted) {
    pr_http_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.method = k->method;
    ev.url = k->url.data ? k->url.data : "";
    ev.attempt = attempt;
    ev.status = status;
    ev.error = error;
    ev.duration_ms = duration_ms;
    ev.delay_ms = delay_ms;
    ev.reason = reason;
    ev.hinted = hinted;
    k->c->o.observer.on_event(&ev, k->c->o.observer.user_data);
}

/* Whether a failure is one retrying cannot cure: a bad request, no memory,
   a name that does not exist, a TLS handshake refused either way. */
static int pr__client_final(int rc, const pr_err_info *e) {
    if (rc == PR_EINVAL || rc == PR_ENOMEM || rc == PR_ENOTSUP) return 1;
    /* the resolver's answer that the name does not exist, or has no address */
    if (rc == PR_EDNS) {
        if (e->dns_error == EAI_NONAME || e->dns_error == EAI_FAIL) return 1;
#ifdef EAI_NODATA
        if (e->dns_error == EAI_NODATA) return 1;
#endif
#ifdef EAI_ADDRFAMILY
        if (e->dns_error == EAI_ADDRFAMILY) return 1;
#endif
        return 0;
    }
    /* a handshake the peer or we refused (a certificate, a protocol, a peer
       that speaks no TLS) goes the same way again; a connection cut during it
       does not say so */
    if (rc == PR_ETLS) return e->tls_error != PR_TLS_TRUNCATED;
    return 0;
}

static int pr__client_call_classify(int outcome, int64_t *after_ms, void *user_data) {
    pr__client_call *k = (pr__client_call *)user_data;
    int v;
    if (outcome >= 0) v = !k->retry_status ? PR_RETRY_OK : k->hint_ms >= 0 ? PR_RETRY_AFTER : PR_RETRY_AGAIN;
    else v = k->fatal ? PR_RETRY_FAIL : pr_retry_classify_default(outcome, NULL, NULL);
    *after_ms = k->hint_ms;
    if (k->classify && !(outcome < 0 && pr__client_final(outcome, &k->err))) v = k->classify(outcome, after_ms, k->user_data);
    if (!k->replayable && (v == PR_RETRY_AGAIN || v == PR_RETRY_AFTER)) v = outcome >= 0 ? PR_RETRY_OK : PR_RETRY_FAIL;
    return v;
}

static void pr__client_call_on_retry(const pr_retry_info *info, void *user_data) {
    pr__client_call *k = (pr__client_call *)user_data;
    if (k->c->o.observer.on_event) {
        char why[sizeof k->err.msg + 32];
        if (info->outcome >= 0) snprintf(why, sizeof why, "status %d", info->outcome);
        else snprintf(why, sizeof why, "%s: %s", pr_errname(info->outcome), k->err.msg);
        pr__client_emit(k, PR_HTTP_EVENT_RETRY, info->retry + 1, k->status, info->outcome >= 0 ? PR_OK : info->outcome,
                      0, info->delay_ms, why, info->verdict == PR_RETRY_AFTER);
    }
    if (k->on_retry) {
        pr_retry_info with = *info;
        if (info->outcome < 0) with.err = &k->err; /* the attempt's detail: errno, TLS, DNS */
        k->on_retry(&with, k->user_data);
    }
}

/* Errors that say nothing about the upstream's health, and those that
   retrying cannot cure. */
static int pr__client_error_fatal(int rc, const pr_err_info *e) {
    return rc == PR_ELIMIT || rc == PR_ECANCELED || rc == PR_ECIRCUIT || rc == PR_ESTATE || pr__client_final(rc, e);
}

static void pr__client_breaker_record(pr_breaker *b, int outcome) {
    if (outcome == PR_ECANCELED || outcome == PR_EINVAL || outcome == PR_ENOMEM || outcome == PR_ECIRCUIT)
        pr_breaker_record(b, PR_BREAKER_IGNORE);
    else if (outcome < 0 || outcome == 408 || (outcome >= 500 && outcome <= 599))
        pr_breaker_record(b, PR_BREAKER_FAILURE);
    else if (outcome == 429)
        pr_breaker_record(b, PR_BREAKER_IGNORE);
    else
        pr_breaker_record(b, PR_BREAKER_SUCCESS);
}

/* Whether a response's Content-Type is JSON: application/json or any +json. */
static int pr__client_is_json(const pr_http_response *r) {
    const pr_slice *ct = pr_http_header_get(r, "content-type");
    pr_slice t;
    if (pr__http_media_is(ct, "application/json")) return 1;
    if (!ct) return 0;
    t = pr__http_media_type(*ct);
    if (t.len <= 5) return 0;
    t.ptr += t.len - 5;
    t.len = 5;
    return pr_slice_ieq(t, pr_slice_cstr("+json"));
}

/* Read the whole body of r into res (fetch). */
static int pr__client_read_all(pr_http_client *c, pr_http_response *r, pr_http_result *res, int64_t deadline,
                             pr_err_info *err) {
    pr_buf b;
    int rc;
    pr_buf_init(&b);
    for (;;) {
        const char *p;
        size_t n;
        rc = pr_http_next_span(r, &p, &n, deadline);
        if (rc == PR_ECLOSED) {
            rc = PR_OK;
            break;
        }
        if (rc) {
            pr_http_last_error(r, err);
            if (err->code != rc) pr__err_set(err, rc, 0, "http: %s reading the body", pr_strerror(rc));
            break;
        }
        if (b.len + n > c->o.fetch_max_bytes) {
            rc = pr__err_set(err, PR_ELIMIT, 0, "http: body over fetch_max_bytes (%lu)",
                             (unsigned long)c->o.fetch_max_bytes);
            break;
        }
        if ((rc = pr_buf_append(&b, p, n)) != PR_OK) {
            pr__err_set(err, rc, 0, "http: out of memory");
            break;
        }
    }
    if (!rc && (rc = pr_buf_append(&b, "", 1)) != PR_OK) pr__err_set(err, rc, 0, "http: out of memory");
    if (rc) {
        pr_buf_deinit(&b);
        return rc;
    }
    res->body_len = b.len - 1;
    /* exactly sized (pr_http_result_deinit frees body_len + 1): a shrink, in place with most allocators */
    res->body = (char *)pr__realloc(b.data, b.cap, b.len);
    if (!res->body) {
        pr_buf_deinit(&b);
        return pr__err_set(err, PR_ENOMEM, 0, "http: out of memory");
    }
    if (pr__client_is_json(r)) pr_json_parse(&res->json, res->body, res->body_len, NULL, NULL);
    if (r->on_destroy) r->on_destroy(r, r->on_destroy_ctx); /* the connection goes back now */
    return PR_OK;
}

/* One attempt: breaker, the chain, the retry facts of its response and,
   for fetch, the whole body. Returns the outcome: a status (*out set) or
   an error. */
static int pr__client_attempt(pr__client_call *k, pr_http_response **out, const pr_http_request *rq, int64_t deadline,
                            const char *limit, pr_http_result *fetch) {
    pr_http_client *c = k->c;
    pr_http_response *r = NULL;
    int rc;
    *out = NULL;
    k->status = k->retry_status = k->fatal = 0;
    k->hint_ms = -1;
    if (c->o.breaker && (rc = pr_breaker_admit(c->o.breaker)) != PR_OK) {
        k->fatal = 1;
        return pr__err_set(&k->err, rc, 0, "http: circuit breaker open: not sent");
    }
    rc = pr__client_chain(c, &r, rq, deadline, limit, &k->err);
    if (!rc) {
        const pr_slice *ra = pr_http_header_get(r, "retry-after"), *ram = pr_http_header_get(r, "retry-after-ms");
        int64_t now_wall = k->hooks.wall_clock_ms ? k->hooks.wall_clock_ms(k->hooks.user_data) : pr__time_wall_ms();
        k->status = pr_http_status(r);
        k->retry_status = pr_retry_http_should_retry(k->status, pr_http_header_get(r, "x-should-retry"));
        if (!pr_retry_hint_ms(ram, ra, now_wall, c->o.max_retry_after_ms, &k->hint_ms)) k->hint_ms = -1;
        if (fetch) {
            pr_http_result_deinit(fetch);
            rc = pr__client_read_all(c, r, fetch, deadline, &k->err);
            if (rc) {
                pr_http_result_deinit(fetch);
                pr_http_response_destroy(r);
                r = NULL;
                k->status = 0;
                k->fatal = pr__client_error_fatal(rc, &k->err);
            }
        }
    } else {
        k->fatal = pr__client_error_fatal(rc, &k->err);
    }
    if (c->o.breaker) pr__client_breaker_record(c->o.breaker, rc ? rc : k->status);
    *out = r;
    return rc ? rc : k->status;
}

/* The extra header fields of an attempt (retry count, timeout,
   idempotency key), unless the request has a field of that name. */
static int pr__client_has_field(const pr_http_request *req, const char *name) {
    const char *const *l;
    for (l = req->headers; l && *l; l++) {
        pr_slice n, v;
        if (pr__http_field_line(*l, strlen(*l), &n, &v, NULL) == PR_OK && pr__http_hdr_is(n, name)) return 1;
    }
    return 0;
}

static void pr__client_random_hex(char *out, size_t n) {
    static const char hex[] = "0123456789abcdef";
    size_t i;
    uint64_t v = 0;
    for (i = 0; i < n; i++) {
        if (i % 16 == 0) v = pr__random_u64();
        out[i] = hex[v & 15];
        v >>= 4;
    }
    out[n] = 0;
}

/* The whole logical request: attempts, retries, events. */
static int pr__client_call_run(pr_http_client *c, pr_http_response **out, const pr_http_request *req,
                             pr_err_info *err, int64_t deadline, pr_http_result *fetch) {
    pr__client_call k;
    pr_retry_policy p;
    pr_retry st;
    pr_http_request rq;
    pr_http_header extra[3];
    const char **lines = NULL;
    size_t nextra = 0, lines_size = 0;
    char count[24], secs[32], key[33], alimit[48];
    const char *idem = NULL;
    int rc, outcome, count_at = -1;
    if (out) *out = NULL;
    if (err) memset(err, 0, sizeof *err);
    if (!c || (!out && !fetch) || !req || !req->url)
        return pr__err_set(err, PR_EINVAL, 0, "http: %s is NULL", !c ? "the client" : !req ? "the request"
                                                                  : !req->url ? "req->url" : "out");
    memset(&k, 0, sizeof k);
    k.c = c;
    k.req = req;
    k.method = req->method ? req->method : "GET";
    k.replayable = !req->body_fn || req->body_rewind;
    k.t0 = pr_now();
    pr_buf_init(&k.url);
    p = req->retry ? *req->retry : c->o.retry;
    k.classify = p.classify;
    k.on_retry = p.on_retry;
    k.user_data = p.user_data;
    k.hooks = p.hooks;
    p.classify = pr__client_call_classify;
    p.on_retry = pr__client_call_on_retry;
    p.user_data = &k;
    if (pr_retry_begin(&st, &p) != PR_OK) {
        rc = pr__err_set(&k.err, PR_EINVAL, 0, "http: invalid retry policy");
        goto done;
    }
    if ((rc = pr__http_fields(req->headers, NULL, 0, NULL, NULL, &k.err)) != PR_OK) goto done;
#ifdef PRISTINE_NO_TLS
    if (req->url->secure) {
        rc = pr__err_set(&k.err, PR_ENOTSUP, 0, "http: https needs TLS (PRISTINE_NO_TLS)");
        goto done;
    }
#endif
    if (c->o.observer.on_event) {
        if (pr_buf_append_str(&k.url, req->url->secure ? "https://" : "http://") || pr_url_authority(&k.url, req->url, 0) ||
            pr_url_target(&k.url, req->url) || pr_buf_append(&k.url, "", 1)) {
            rc = pr__err_set(&k.err, PR_ENOMEM, 0, "http: out of memory");
            goto done;
        }
        pr__client_emit(&k, PR_HTTP_EVENT_START, 0, 0, PR_OK, 0, 0, NULL, 0);
    }
    /* the fields every attempt adds, and the idempotency key (once per call) */
    if (c->hdr_count && !pr__client_has_field(req, c->hdr_count)) {
        count_at = (int)nextra;
        extra[nextra].name = pr_slice_cstr(c->hdr_count);
        nextra++;
    }
    if (c->hdr_timeout && c->o.attempt_timeout_ms > 0 && !pr__client_has_field(req, c->hdr_timeout)) {
        int ms = c->o.attempt_timeout_ms;
        if (ms % 1000) snprintf(secs, sizeof secs, "%d.%03d", ms / 1000, ms % 1000);
        else snprintf(secs, sizeof secs, "%d", ms / 1000);
        extra[nextra].name = pr_slice_cstr(c->hdr_timeout);
        extra[nextra].value = pr_slice_cstr(secs);
        nextra++;
    }
    if (req->idempotency_key) idem = *req->idempotency_key ? req->idempotency_key : NULL;
    else if (c->hdr_idem && !pr__client_method_is(k.method, "GET") && !pr__client_method_is(k.method, "HEAD")) {
        pr__client_random_hex(key, 32);
        idem = key;
    }
    if (idem && c->hdr_idem && !pr__client_has_field(req, c->hdr_idem)) {
        extra[nextra].name = pr_slice_cstr(c->hdr_idem);
        extra[nextra].value = pr_slice_cstr(idem);
        nextra++;
    }
    rq = *req;
    for (;;) {
        pr_http_response *r = NULL;
        int64_t adl = deadline, t1 = pr_now(), delay;
        const char *limit = "deadline";
        if (c->o.attempt_timeout_ms > 0 && pr_deadline_in(c->o.attempt_timeout_ms) < deadline) {
            adl = pr_deadline_in(c->o.attempt_timeout_ms);
            snprintf(alimit, sizeof alimit, "attempt timeout %d ms", c->o.attempt_timeout_ms);
            limit = alimit;
        }
        if (count_at >= 0) {
            count[pr__buf_dec(count, (uint64_t)st.retries)] = 0;
            extra[count_at].value = pr_slice_cstr(count);
        }
        if (nextra) { /* the request's lines and this attempt's own (the count changes) */
            pr__free(lines, lines_size);
            if (pr__http_lines_join(req->headers, extra, nextra, &lines, &lines_size) != PR_OK) {
                lines = NULL;
                lines_size = 0;
                outcome = pr__err_set(&k.err, PR_ENOMEM, 0, "http: out of memory");
                break;
            }
            rq.headers = lines;
        }
        outcome = pr__client_attempt(&k, &r, &rq, adl, limit, fetch);
        if (c->o.observer.on_event)
            pr__client_emit(&k, PR_HTTP_EVENT_ATTEMPT, st.retries, k.status, outcome < 0 ? outcome : PR_OK,
                          pr_now() - t1, 0, NULL, 0);
        if ((delay = pr_retry_plan(&st, &outcome, deadline)) < 0) {
            if (r && outcome < 0) { /* cancelled after a response */
                pr_http_response_destroy(r);
                r = NULL;
            }
            if (out) *out = r;
            else pr_http_response_destroy(r);
            break;
        }
        if (r) pr__client_discard(r);
        if ((rc = pr__client_rewind(req)) != PR_OK) {
            outcome = pr__err_set(&k.err, rc, 0, "http: the request body could not be restarted for a retry");
            break;
        }
        if (!pr_retry_sleep(&st, delay, &outcome, deadline)) break;
    }
    if (fetch) {
        fetch->attempts = st.retries + 1;
        fetch->status = outcome >= 0 ? outcome : 0;
    }
    if (outcome >= 0) {
        rc = PR_OK;
        if (fetch && outcome >= 400) {
            pr__err_set(&k.err, PR_OK, 0, "http: status %d: %.80s", outcome, fetch->body ? fetch->body : "");
            k.err.http_status = outcome;
        }
    } else {
        rc = outcome;
        if (k.err.code != rc) pr__err_set(&k.err, rc, 0, "http: %s", pr_strerror(rc));
        if (rc == PR_ETIMEDOUT && pr_now() < deadline) { /* a limit of ours (connect, attempt), not the deadline */
            rc = k.err.code = PR_EIO;
            k.err.sys_errno = ETIMEDOUT;
        }
        if (st.retries > 0) {
            size_t n = strlen(k.err.msg);
            snprintf(k.err.msg + n, sizeof k.err.msg - n, " (after %d %s)", st.retries,
                     st.retries == 1 ? "retry" : "retries");
        }
        if (fetch) pr_http_result_deinit(fetch);
    }
done:
    if (c->o.observer.on_event && k.url.data)
        pr__client_emit(&k, PR_HTTP_EVENT_DONE, st.retries, rc ? 0 : k.status, rc, pr_now() - k.t0, 0, NULL, 0);
    if (rc) c->err = k.err;
    if (err) *err = k.err;
    pr__free(lines, lines_size);
    pr_buf_deinit(&k.url);
    return rc;
}

int pr_http_client_request(pr_http_client *c, pr_http_response **out, const pr_http_request *req,
                           pr_err_info *err, int64_t deadline) {
    if (!out) return pr__err_set(err, PR_EINVAL, 0, "http: out is NULL");
    return pr__client_call_run(c, out, req, err, deadline, NULL);
}

int pr_http_client_fetch(pr_http_client *c, pr_http_result *res, const pr_http_request *req, pr_err_info *err,
                         int64_t deadline) {
    pr_http_response *r = NULL;
    int rc;
    if (!res) return pr__err_set(err, PR_EINVAL, 0, "http: res is NULL");
    pr_http_result_deinit(res);
    rc = pr__client_call_run(c, &r, req, err, deadline, res);
    if (rc == PR_OK) res->resp = r;
    return rc;
}

void pr_http_result_deinit(pr_http_result *res) {
    if (!res) return;
    pr_http_response_destroy(res->resp);
    if (res->body) pr__free(res->body, res->body_len + 1);
    pr_json_doc_destroy(res->json);
    memset(res, 0, sizeof *res);
}

int pr_http_client_get(pr_http_client *c, pr_http_response **out, const char *url, pr_err_info *err,
                       int64_t deadline) {
    return pr_http_client_send(c, out, NULL, url, NULL, NULL, 0, err, deadline);
}

int pr_http_client_send(pr_http_client *c, pr_http_response **out, const char *method, const char *url,
                        const char *const *headers, const void *body, size_t body_len, pr_err_info *err,
                        int64_t deadline) {
    pr_http_request req;
    pr_url u;
    int rc;
    if (out) *out = NULL;
    if (err) memset(err, 0, sizeof *err);
    if (!c || !out || !url) return pr__err_set(err, PR_EINVAL, 0, "http: %s is NULL", !c ? "the client" : !out ? "out" : "url");
    memset(&u, 0, sizeof u);
    if ((rc = pr_url_parse(&u, url, strlen(url), &c->err)) != PR_OK) {
        if (err) *err = c->err;
        return rc;
    }
    memset(&req, 0, sizeof req);
    req.method = method;
    req.url = &u;
    req.headers = headers;
    req.body = body;
    req.body_len = body_len;
    rc = pr_http_client_request(c, out, &req, err, deadline);
    pr_url_deinit(&u);
    return rc;
}
