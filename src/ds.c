// @pristine:module ds - Durable Streams client: the stream handle, its options and one request; create, head, delete, append, close
// @pristine:public
/*
 * ds: Durable Streams, append-only byte streams over HTTP. A stream is a
 * URL; every byte has an offset, an opaque string the server hands out
 * (Stream-Next-Offset) and takes back (?offset=) so that any reader can
 * resume exactly where it stopped.
 *
 *     pr_ds *ds;
 *     pr_ds_read *rd;
 *     pr_ds_chunk c;
 *     pr_ds_open(&ds, "http://127.0.0.1:4437/v1/stream/log", NULL, NULL);
 *     pr_ds_read_open(&rd, ds, "-1", &(pr_ds_read_opts){ .live = PR_DS_LIVE_LONG_POLL }, NULL);
 *     while (pr_ds_read_next(rd, &c, deadline) == PR_OK)
 *         fwrite(c.data, 1, c.len, stdout);   (c.offset: where to resume)
 *     pr_ds_read_destroy(rd);
 *     pr_ds_destroy(ds);
 *
 * Operations: pr_ds_create (PUT), pr_ds_head (HEAD), pr_ds_delete
 * (DELETE), pr_ds_append (POST), pr_ds_close (POST with Stream-Closed).
 * Each returns PR_OK on success, PR_EHTTP when the server answered with an
 * error status (res->error names it: PR_DS_NOT_FOUND, PR_DS_CONFLICT_EXISTS,
 * PR_DS_CONFLICT_SEQ, PR_DS_STREAM_CLOSED with the final offset in
 * res->offset, PR_DS_BAD_REQUEST, ...; res->status, the server's message
 * in res->http.body and every header through res->http.resp stay there
 * until pr_ds_result_deinit), or a transport error; the err argument
 * receives the failure's detail. Calls that create an object take an err
 * argument too (last); a read, a producer and a consumer answer later
 * with their *_last_error.
 *
 * Retries: network errors (a refused connection, a connection dropped in
 * the middle of a response, a body cut short), 429 (Retry-After honoured)
 * and 5xx are retried with backoff and jitter (100 ms, x1.3 per attempt,
 * up to 60 s, full jitter, no attempt limit: the caller's deadline ends
 * them); 400, 401, 403, 404, 409, 410 and 413 never are. opts.retry
 * replaces that policy. A read resumes from the last offset it delivered,
 * so no byte is lost or delivered twice however often the connection
 * fails. A 401, or a 403 that is no producer fencing, goes to
 * opts.on_auth_error when it is set: fresh credentials from it (a new
 * token) send the request again and stay for the later ones, at most
 * max_auth_refreshes times per request.
 *
 * Requests carry the handle's headers (static, and headers_fn evaluated
 * for every request, so a token can be refreshed) and query parameters
 * (static and params_fn), with the protocol's own (offset, live, cursor)
 * in one query sorted by name, which keeps CDN cache keys stable. No
 * Accept-Encoding is sent, so bodies are never compressed.
 *
 * Observers: opts.observer (pr_ds_observer) hears every request's start
 * and end, and the producers and consumers of the handle report to it
 * unless their own options name another (pr_telemetry_ds_hook adapts it).
 *
 * Reads, the idempotent producer and the consumer are the modules after
 * this one (ds_read, ds_producer, ds_consumer). They build on what ds
 * keeps private: struct pr_ds (the client, the resolved retry policy, the
 * content type), pr__ds_do (one logical request with the handle's
 * headers, parameters and retries, filling a pr_ds_result, told to an
 * observer), pr__ds_append (an append told to a given observer),
 * pr__ds_observer (the observer in force) and pr__ds_notify,
 * pr__ds_status_error (an error status as PR_EHTTP with its PR_DS_*
 * meaning and detail), pr__ds_hdr, pr__ds_setstr, pr__ds_token_ok (the
 * check of an offset or cursor), pr__ds_is_json / pr__ds_is_text and the
 * limits PR__DS_MAX_OFFSET and PR__DS_DEF_CHUNK.
 *
 * Offers to the modules after it: pr__ds_append, PR__DS_DEF_CHUNK, pr__ds_do,
 *     pr__ds_hdr, pr__ds_is_json, pr__ds_is_text, PR__DS_MAX_OFFSET,
 *     pr__ds_notify, pr__ds_observer, pr__ds_req, pr__ds_setstr,
 *     pr__ds_status_error, pr__ds_token_ok.
 */

/* A stream handle: its URL and what every request carries. Opaque; owned
   by the thread that opened it (any of its tasks may use it). */
typedef struct pr_ds pr_ds;

/* pr_ds_event.kind: what an observer of a handle, a consumer or a
   producer hears (pr_ds_observer). */
enum pr_ds_event_kind {
    PR_DS_EVENT_REQUEST_START = 1,      /* a request to the stream begins: op, method, url */
    PR_DS_EVENT_REQUEST_STOP = 2,       /* it ended with a response (any status; for an SSE read its
                                           head): status, duration_ms */
    PR_DS_EVENT_REQUEST_EXCEPTION = 3,  /* it ended without one, after the retries: error, err,
                                           duration_ms */
    PR_DS_EVENT_CONSUMER_BATCH = 4,     /* a consumer received a batch: items, bytes, offset */
    PR_DS_EVENT_CONSUMER_RECONNECT = 5, /* a consumer connects again after a failure: attempt,
                                           delay_ms, error (the reason), err, offset */
    PR_DS_EVENT_CONSUMER_STATE = 6,     /* a consumer's state changed: state, offset; error and err
                                           for the failure behind CONNECTING again or STOPPED */
    PR_DS_EVENT_PRODUCER_BATCH = 7,     /* the server stored a producer's batch: producer_id, epoch,
                                           seq, items, bytes, duration_ms, offset */
    PR_DS_EVENT_PRODUCER_DUPLICATE = 8, /* the server had that batch already (a 204 to a resend):
                                           the same fields */
    PR_DS_EVENT_AUTH_REFRESH = 9        /* a request was refused (401/403) and on_auth_error gave
                                           fresh fields: op, method, url, status (the refusal's),
                                           attempt (1 for the request's first refresh, 2, ...); the
                                           request goes again at once */
};

/* One observation. Valid during the callback only; the fields its kind
   does not name are 0, and its strings are "" (never NULL). */
typedef struct pr_ds_event {
    int kind;                   /* PR_DS_EVENT_* */
    const char *url;            /* the stream's URL; for a request, with its query */
    const char *op;             /* REQUEST_*, AUTH_REFRESH: "create", "head", "delete", "append", "close", "read" */
    const char *method;         /* REQUEST_*, AUTH_REFRESH: "PUT", "HEAD", "DELETE", "POST", "GET" */
    int status;                 /* REQUEST_STOP: the final HTTP status; AUTH_REFRESH: 401 or 403 */
    int error;                  /* the failure's PR_E* code (REQUEST_EXCEPTION, CONSUMER_RECONNECT,
                                   CONSUMER_STATE after a failure), else 0 */
    const pr_err_info *err;     /* its detail, or NULL */
    int64_t duration_ms;        /* REQUEST_STOP, _EXCEPTION: since the request began (its retries
                                   included); PRODUCER_*: since the batch's first send */
    int state;                  /* CONSUMER_STATE: PR_DS_CONSUMER_* */
    int attempt;                /* CONSUMER_RECONNECT: 1 for the first reconnect in a row, 2, ...;
                                   AUTH_REFRESH: 1 for the request's first refresh, 2, ... */
    int64_t delay_ms;           /* CONSUMER_RECONNECT: the wait before it */
    const char *offset;         /* CONSUMER_*: the checkpoint (after the batch); PRODUCER_*: the
                                   stream's offset after the batch ("" when the server gave none) */
    size_t items;               /* CONSUMER_BATCH: a JSON stream's messages, else 1; PRODUCER_*:
                                   the appends in the batch */
    size_t bytes;               /* CONSUMER_BATCH, PRODUCER_*: the batch's bytes */
    const char *producer_id;    /* PRODUCER_* */
    int64_t epoch, seq;         /* PRODUCER_*: the batch's producer epoch and sequence number */
} pr_ds_event;

/* An observer: one callback for every pr_ds_event, with its own context,
   apart from the options' own callbacks and user_data (telemetry:
   observer.on_event = pr_telemetry_ds_hook, observer.user_data = hub). */
typedef struct pr_ds_observer {
    void (*on_event)(const pr_ds_event *ev, void *user_data); /* NULL = none */
    void *user_data;            /* for on_event */
} pr_ds_observer;

/* What pr_ds_opts.on_auth_error is told of a refused request. Valid
   during the callback only. */
typedef struct pr_ds_auth_info {
    int status;                 /* 401, or 403 without Producer-Epoch (a producer's fencing is no
                                   refusal of credentials and never reaches the hook) */
    const char *op;             /* "create", "head", "delete", "append", "close", "read" */
    const char *method;         /* "PUT", "HEAD", "DELETE", "POST", "GET" */
    int attempt;                /* 1 for the request's first refusal, 2 after one refresh, ... */
    pr_slice www_authenticate;  /* the server's WWW-Authenticate (empty when it sent none) */
    int64_t deadline;           /* the request's: a hook that fetches a token (it may block, being
                                   called from the requesting task) should be done by then */
} pr_ds_auth_info;

typedef struct pr_ds_opts {
    pr_http_client *client;     /* NULL = a client of its own (redirects followed) */
    const char *content_type;   /* NULL = learned from pr_ds_head, else application/octet-stream:
                                   sent by create and append (copied) */
    const char *const *headers; /* NULL-terminated "Name: value" lines for every request (copied) */
    int (*headers_fn)(pr_buf *out, void *user_data); /* NULL = none: called before every request;
                                   appends "Name: value\r\n" lines; non-zero refuses the request */
    const char *const *params;  /* NULL-terminated "name=value" query pairs for every request,
                                   already encoded (copied) */
    int (*params_fn)(pr_buf *out, void *user_data); /* NULL = none: called before every request;
                                   appends encoded "name=value" pairs separated by '&' */
    void *user_data;            /* for headers_fn, params_fn and on_auth_error */
    pr_retry_policy retry;      /* zero = the Durable Streams policy above; classify is replaced
                                   by the protocol's (network errors, 429, 5xx) unless set */
    pr_ds_observer observer;    /* zero = none: the handle's requests; its consumers and producers
                                   report to it too unless their options set their own */
    int (*on_auth_error)(const pr_ds_auth_info *info, pr_buf *headers, pr_buf *params, void *user_data);
                                /* NULL = none: a 401/403 is the answer. Else called when any
                                   request of the handle (operations, reads, consumers, producers)
                                   is answered 401, or 403 without Producer-Epoch: it appends fresh
                                   "Name: value\r\n" lines to headers and/or encoded "name=value"
                                   pairs ('&'-separated) to params and returns nonzero to send the
                                   request again with them, 0 to give up (the 401/403 is the
                                   answer: PR_EHTTP, PR_DS_UNAUTHORIZED / PR_DS_FORBIDDEN). The
                                   fresh fields and pairs replace the handle's own of the same
                                   name (opts.headers, opts.params, the URL's query) for this and
                                   every later request; headers_fn and params_fn run again for the
                                   new try, so a callback that reads the token from user_data may
                                   append nothing and just return 1. A refused SSE response is
                                   closed before the new try. Malformed fields end the request
                                   with PR_EINVAL */
    int max_auth_refreshes;     /* 0 = 3: calls of on_auth_error per request; the refusal after the
                                   last one is the answer */
    pr_tls_opts tls;            /* the handle's own client's TLS settings (copied whole into
                                   pr_http_client_opts.tls); all-zero = the defaults. Must stay
                                   all-zero with client set (that client's settings apply):
                                   pr_ds_open refuses it with PR_EINVAL */
} pr_ds_opts;

/* pr_ds_result.error: what an error status means. */
enum pr_ds_error {
    PR_DS_OK = 0,
    PR_DS_NOT_FOUND,        /* 404: no such stream */
    PR_DS_CONFLICT_EXISTS,  /* 409 on create: the stream exists with another configuration */
    PR_DS_CONFLICT_SEQ,     /* 409 on append: Stream-Seq not above the last one, or another content type */
    PR_DS_STREAM_CLOSED,    /* 409 with Stream-Closed: true: the final offset in res->offset */
    PR_DS_SEQUENCE_GAP,     /* 409 with Producer-Expected-Seq: res->expected_seq, res->received_seq */
    PR_DS_STALE_EPOCH,      /* 403 with Producer-Epoch: a newer producer epoch exists
                               (res->producer_epoch) */
    PR_DS_BAD_REQUEST,      /* 400: bad offset, TTL, empty body, invalid JSON, producer headers */
    PR_DS_GONE,             /* 410: deleted, or an offset before the retained data */
    PR_DS_TOO_LARGE,        /* 413 */
    PR_DS_RATE_LIMITED,     /* 429 (after the retries) */
    PR_DS_SERVER_ERROR,     /* 5xx (after the retries) */
    PR_DS_NOT_SUPPORTED,    /* 405 or 501: the operation is not supported on this stream */
    PR_DS_UNEXPECTED_STATUS, /* any other status */
    PR_DS_UNAUTHORIZED,     /* 401: credentials missing or refused (after on_auth_error's refreshes) */
    PR_DS_FORBIDDEN         /* 403 without Producer-Epoch: not allowed (after on_auth_error's
                               refreshes); with it, PR_DS_STALE_EPOCH */
};

/* The answer to an operation. Zero it before the first use;
   pr_ds_result_deinit frees it (the slices point into http.resp). */
typedef struct pr_ds_result {
    int status;             /* the final HTTP status; 0 when no response came */
    int error;              /* PR_DS_* for an error status, else PR_DS_OK */
    pr_slice offset;        /* Stream-Next-Offset (the tail, the final offset of a closed stream) */
    pr_slice content_type;  /* Content-Type (head, create) */
    pr_slice etag;          /* ETag */
    pr_slice expires_at;    /* Stream-Expires-At */
    pr_slice cursor;        /* Stream-Cursor */
    int64_t ttl_s;          /* Stream-TTL, -1 when absent */
    int closed;             /* Stream-Closed: true */
    int up_to_date;         /* Stream-Up-To-Date: true */
    int64_t producer_epoch; /* Producer-Epoch, -1 when absent */
    int64_t producer_seq;   /* Producer-Seq, -1 when absent */
    int64_t expected_seq;   /* Producer-Expected-Seq, -1 when absent */
    int64_t received_seq;   /* Producer-Received-Seq, -1 when absent */
    pr_http_result http;    /* the response: headers (pr_http_header_get(res.http.resp, ..)),
                               body (the server's message on errors) */
} pr_ds_result;

/* Options of pr_ds_create; zero = a plain create. */
typedef struct pr_ds_create_opts {
    const char *content_type;   /* NULL = the handle's */
    int64_t ttl_s;              /* > 0: Stream-TTL (a sliding idle window in seconds) */
    const char *expires_at;     /* NULL = none: Stream-Expires-At (RFC 3339) */
    int closed;                 /* 1 = created closed (the body is then all of it) */
    const void *body;           /* the initial content; NULL = none */
    size_t body_len;
    const char *forked_from;    /* NULL = not a fork: Stream-Forked-From, the source stream's path
                                   on the same server ("/v1/stream/src"): the new stream starts
                                   with the source's data up to fork_offset, and has the source's
                                   content type (sent only when content_type or the handle's own
                                   names one, which must then be the source's) */
    const char *fork_offset;    /* NULL = the source's tail: Stream-Fork-Offset, an offset of the
                                   source (needs forked_from) */
    int64_t fork_sub_offset;    /* 0 = none: Stream-Fork-Sub-Offset, how far into the source's
                                   message at fork_offset the fork begins (bytes, or messages of a
                                   JSON stream; needs forked_from) */
} pr_ds_create_opts;

/* Options of pr_ds_append; NULL or zero = a plain append. */
typedef struct pr_ds_append_opts {
    const char *seq;            /* NULL = none: Stream-Seq, which must rise (byte-wise) per append */
    int close;                  /* 1 = append and close in one request */
    int raw_json;               /* on a JSON stream: 0 = data is one message, sent as [data];
                                   1 = data is sent as it is (an array is flattened one level) */
    const char *producer_id;    /* NULL = none; else Producer-Id/-Epoch/-Seq from the fields below */
    int64_t producer_epoch;
    int64_t producer_seq;
} pr_ds_append_opts;

/* Open a handle. No request is made.
   Params: out - receives the handle; url - the stream's absolute http or
           https URL (copied); opts - NULL for defaults (copied); err -
           receives why it failed (NULL = not wanted).
   Returns: PR_OK; PR_EINVAL (out or url NULL, a URL that does not parse, a
            malformed header or parameter, an invalid retry policy, a
            negative max_auth_refreshes, tls set with client, no
            certificate in tls.ca_file / tls.ca_pem); PR_EIO (tls.ca_file
            cannot be read); PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_ds_destroy. */
PRISTINE_API int pr_ds_open(pr_ds **out, const char *url, const pr_ds_opts *opts, pr_err_info *err);

/* Free a handle (and its own client). Reads of it must be destroyed first.
   Params: ds - the handle; NULL is a no-op.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_ds_open. */
PRISTINE_API void pr_ds_destroy(pr_ds *ds);

/* The content type the handle sends (given, learned from a head, or the
   default).
   Params: ds - the handle.
   Returns: a NUL-terminated string valid until the next operation.
   Blocks: no.
   Thread: owner.
   See: pr_ds_head. */
PRISTINE_API const char *pr_ds_content_type(const pr_ds *ds);

/* Create the stream (PUT). 201 creates it; 200 means it exists with the
   same configuration (both PR_OK: res->status tells which).
   Params: ds - the handle; opts - NULL = a plain create with the
           handle's content type; res - zeroed or deinit'ed result,
           filled; err - receives the failure's detail (NULL = not
           wanted; cleared on success); deadline - absolute ms.
   Returns: PR_OK; PR_EHTTP (res->error: PR_DS_CONFLICT_EXISTS,
            PR_DS_BAD_REQUEST, ...); PR_EINVAL; transport errors
            (PR_ETIMEDOUT, PR_ECANCELED, PR_EIO, ...).
   Blocks: yes.
   Thread: owner.
   See: pr_ds_head, pr_ds_delete. */
PRISTINE_API int pr_ds_create(pr_ds *ds, const pr_ds_create_opts *opts, pr_ds_result *res, pr_err_info *err,
                              int64_t deadline);

/* The stream's metadata (HEAD): res->offset (the tail), content_type,
   closed, ttl_s, expires_at, etag. A handle without a content type of its
   own adopts the stream's.
   Params: ds - the handle; res - result, filled; err - as for
           pr_ds_create; deadline - absolute ms.
   Returns: PR_OK; PR_EHTTP (PR_DS_NOT_FOUND, PR_DS_GONE); PR_ETIMEDOUT;
            PR_ECANCELED; transport errors.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_create. */
PRISTINE_API int pr_ds_head(pr_ds *ds, pr_ds_result *res, pr_err_info *err, int64_t deadline);

/* Delete the stream (DELETE).
   Params: ds - the handle; res - result, filled; err - as for
           pr_ds_create; deadline - absolute ms.
   Returns: PR_OK; PR_EHTTP (PR_DS_NOT_FOUND, PR_DS_GONE); PR_ETIMEDOUT;
            PR_ECANCELED; transport errors.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_create. */
PRISTINE_API int pr_ds_delete(pr_ds *ds, pr_ds_result *res, pr_err_info *err, int64_t deadline);

/* Append (POST) with the handle's content type. On a JSON stream data is
   one message, sent as [data] (opts->raw_json sends it as it is).
   res->offset is the new tail.
   Params: ds - the handle; data, len - the bytes (len 0 only with
           opts->close); opts - NULL = a plain append; res - result,
           filled; err - as for pr_ds_create; deadline - absolute ms.
   Returns: PR_OK; PR_EHTTP (PR_DS_STREAM_CLOSED with the final offset,
            PR_DS_CONFLICT_SEQ, PR_DS_NOT_FOUND, PR_DS_BAD_REQUEST,
            PR_DS_STALE_EPOCH, PR_DS_SEQUENCE_GAP, ...); PR_EINVAL (an
            empty append without close); PR_ETIMEDOUT; PR_ECANCELED;
            transport errors.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_close. */
PRISTINE_API int pr_ds_append(pr_ds *ds, const void *data, size_t len, const pr_ds_append_opts *opts,
                              pr_ds_result *res, pr_err_info *err, int64_t deadline);

/* Close the stream, with an optional final message (sent like an append).
   Closing a closed stream without a body is PR_OK too. res->offset is the
   final offset.
   Params: ds - the handle; data, len - the final message (NULL, 0 = none);
           res - result, filled; err - as for pr_ds_create; deadline -
           absolute ms.
   Returns: PR_OK; PR_EHTTP (PR_DS_STREAM_CLOSED for a final message on a
            closed stream, PR_DS_NOT_FOUND, ...); PR_ETIMEDOUT;
            PR_ECANCELED; transport errors.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_append. */
PRISTINE_API int pr_ds_close(pr_ds *ds, const void *data, size_t len, pr_ds_result *res, pr_err_info *err,
                             int64_t deadline);

/* Free what a result holds and zero it (NULL is a no-op).
   Params: res - the result.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_ds_create. */
PRISTINE_API void pr_ds_result_deinit(pr_ds_result *res);

// @pristine:impl
#define PR__DS_MAX_FIELDS 32
#define PR__DS_MAX_OFFSET 1024
#define PR__DS_DEF_CHUNK ((size_t)64 << 20)
#define PR__DS_DEF_AUTH_REFRESHES 3

struct pr_ds {
    pr_http_client *client;
    int own_client;
    pr_url url;                 /* without its query: that went into base_params */
    char *base;                 /* the URL text up to the query */
    pr_buf base_params;         /* the URL's own query pairs and opts.params, '&'-separated */
    pr_buf fixed;               /* opts.headers as "Name: value\r\n" lines */
    char *ctype;                /* the content type sent */
    int ctype_given;
    pr_ds_opts o;
    pr_retry_policy retry;
    char *etag, *etag_at;       /* the ETag of an empty catch-up answer at offset etag_at: sent as
                                   If-None-Match by the next catch-up there (304 = still nothing) */
};

/* 100 ms doubling to 60 s, full jitter (a uniform wait below the delay) */
static const pr_backoff pr__ds_backoff = { PR_BACKOFF_EXPONENTIAL, PR_JITTER_FACTOR, 100, 60000, 1.0, 0.0, 0.0 };


/* The protocol's verdict on an attempt: network errors as the default
   classifier says, 429 and 5xx again (after the server's hint when it
   gave one), every other status is the answer. */
static int pr__ds_classify(int outcome, int64_t *after_ms, void *user_data) {
    (void)user_data;
    if (outcome < 0) return pr_retry_classify_default(outcome, NULL, NULL);
    if (outcome == 429 || (outcome >= 500 && outcome <= 599)) return *after_ms >= 0 ? PR_RETRY_AFTER : PR_RETRY_AGAIN;
    return PR_RETRY_OK;
}

static void pr__ds_setstr(char **dst, const char *s, size_t n) {
    char *d = pr__strndup(s, n);
    if (!d) return; /* keep the old one */
    pr__strfree(dst);
    *dst = d;
}

/* An offset or cursor as the protocol carries it in a query: 1 to 1024
   printable ASCII bytes (no space, no control byte, no NUL). */
static int pr__ds_token_ok(const char *p, size_t n) {
    size_t i;
    if (!n || n > PR__DS_MAX_OFFSET) return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f) return 0;
    return 1;
}

int pr_ds_open(pr_ds **out, const char *url, const pr_ds_opts *opts, pr_err_info *err) {
    pr_ds *ds;
    pr_err_info tmp;
    size_t i, q;
    int rc = PR_OK;
    if (!err) err = &tmp;
    memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out || !url) return pr__err_set(err, PR_EINVAL, 0, "ds: out and url are required");
    if (!(ds = (pr_ds *)pr__calloc(1, sizeof *ds))) return pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
    if (opts) ds->o = *opts;
    pr_buf_init(&ds->base_params);
    pr_buf_init(&ds->fixed);
    q = strcspn(url, "?#");
    if ((rc = pr_url_parse(&ds->url, url, q, err)) != PR_OK) goto fail;
    if (!(ds->base = (char *)pr__alloc(q + 1))) goto nomem;
    memcpy(ds->base, url, q);
    ds->base[q] = 0;
    if (url[q] == '?') { /* the URL's own query joins the sorted parameters */
        size_t e = q + 1 + strcspn(url + q + 1, "#");
        if (e > q + 1 && pr_buf_append(&ds->base_params, url + q + 1, e - q - 1) != PR_OK) goto nomem;
    }
    for (i = 0; ds->o.params && ds->o.params[i]; i++) {
        const char *p = ds->o.params[i];
        if (!*p || strchr(p, '&') || strchr(p, '#') || strchr(p, ' ')) {
            rc = pr__err_set(err, PR_EINVAL, 0, "ds: query parameter %zu is not one encoded name=value pair", i);
            goto fail;
        }
        if ((ds->base_params.len && pr_buf_append(&ds->base_params, "&", 1) != PR_OK) ||
            pr_buf_append_str(&ds->base_params, p) != PR_OK)
            goto nomem;
    }
    for (i = 0; ds->o.headers && ds->o.headers[i]; i++) {
        const char *h = ds->o.headers[i];
        pr_slice name, value;
        if (i >= PR__DS_MAX_FIELDS) {
            rc = pr__err_set(err, PR_EINVAL, 0, "ds: more than %d header lines", PR__DS_MAX_FIELDS);
            goto fail;
        }
        if ((rc = pr__http_field_line(h, strlen(h), &name, &value, err)) != PR_OK) goto fail;
        if (pr_buf_append_str(&ds->fixed, h) != PR_OK || pr_buf_append(&ds->fixed, "\r\n", 2) != PR_OK) goto nomem;
    }
    ds->o.headers = NULL;
    ds->o.params = NULL;
    ds->ctype_given = ds->o.content_type != NULL;
    if (!(ds->ctype = pr__strdup(PR__DEF(ds->o.content_type, "application/octet-stream"), NULL)))
        goto nomem;
    ds->o.content_type = NULL;
    ds->retry = ds->o.retry;
    if (!ds->retry.backoff.base_ms) ds->retry.backoff = pr__ds_backoff;
    ds->retry.max_retries = PR__DEF(ds->retry.max_retries, PR_RETRY_UNLIMITED);
    ds->retry.classify = PR__DEF(ds->retry.classify, pr__ds_classify);
    if (pr_backoff_check(&ds->retry.backoff) != PR_OK) {
        rc = pr__err_set(err, PR_EINVAL, 0, "ds: invalid retry backoff");
        goto fail;
    }
    if (ds->o.max_auth_refreshes < 0) {
        rc = pr__err_set(err, PR_EINVAL, 0, "ds: a negative max_auth_refreshes");
        goto fail;
    }
    ds->o.max_auth_refreshes = PR__DEF(ds->o.max_auth_refreshes, PR__DS_DEF_AUTH_REFRESHES);
    if (ds->o.client) {
        const unsigned char *t = (const unsigned char *)&ds->o.tls;
        for (i = 0; i < sizeof ds->o.tls && !t[i]; i++) {}
        if (i < sizeof ds->o.tls) {
            rc = pr__err_set(err, PR_EINVAL, 0, "ds: opts.tls is for the handle's own client; opts.client has its own");
            goto fail;
        }
        ds->client = ds->o.client;
    } else {
        pr_http_client_opts co;
        memset(&co, 0, sizeof co);
        co.tls = ds->o.tls;
        co.max_redirects = 5;
        co.fetch_max_bytes = PR__DS_DEF_CHUNK; /* a catch-up answer is held whole */
        if ((rc = pr_http_client_create(&ds->client, &co, err)) != PR_OK) {
            pr__err_wrap(err, rc, err, "ds: could not create the HTTP client");
            goto fail;
        }
        ds->own_client = 1;
    }
    *out = ds;
    return PR_OK;
nomem:
    rc = pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
fail:
    pr_ds_destroy(ds);
    return rc;
}

void pr_ds_destroy(pr_ds *ds) {
    if (!ds) return;
    if (ds->own_client) pr_http_client_destroy(ds->client);
    pr_url_deinit(&ds->url);
    if (ds->base) pr__free(ds->base, strlen(ds->base) + 1);
    if (ds->ctype) pr__free(ds->ctype, strlen(ds->ctype) + 1);
    pr__strfree(&ds->etag);
    pr__strfree(&ds->etag_at);
    pr_buf_deinit(&ds->base_params);
    pr_buf_deinit(&ds->fixed);
    pr__free(ds, sizeof *ds);
}

const char *pr_ds_content_type(const pr_ds *ds) { return ds ? ds->ctype : NULL; }

/* The MIME essence of a content type: application/json (any case). */
static int pr__ds_is_json(const char *ct) {
    pr_slice t = pr_slice_cstr(ct ? ct : "");
    return pr__http_media_is(&t, "application/json");
}

/* text/... or application/json: SSE sends such streams as text. */
static int pr__ds_is_text(const char *ct) {
    pr_slice t = pr__http_media_type(pr_slice_cstr(ct ? ct : ""));
    if (pr__ds_is_json(ct)) return 1;
    t.len = PR__MIN(t.len, (size_t)5);
    return pr_slice_ieq(t, pr_slice_cstr("text/"));
}

/* ---- one request ---- */

typedef struct pr__ds_req {
    const char *method;
    const char *op;             /* what the observer is told: "create", "read", ... */
    const pr_ds_observer *obs;  /* the observer in force (pr__ds_observer), or NULL */
    const char *query;          /* protocol pairs "k=v&k=v" (encoded), or NULL */
    const pr_http_header *extra; /* protocol header fields */
    size_t nextra;
    const void *body;
    size_t body_len;
    int stream;                 /* 1 = leave the body to be read (SSE): *resp receives it */
    int idle_ms;                /* the connection's idle limit (reads), 0 = the client's */
    const pr_retry_policy *retry; /* NULL = the handle's (a read bounds its attempts) */
} pr__ds_req;

/* Compare two "k=v" pairs by key, then by the whole pair. */
static int pr__ds_pair_cmp(const void *a, const void *b) {
    const pr_slice *x = (const pr_slice *)a, *y = (const pr_slice *)b;
    const char *ex = (const char *)memchr(x->ptr, '=', x->len), *ey = (const char *)memchr(y->ptr, '=', y->len);
    size_t kx = ex ? (size_t)(ex - x->ptr) : x->len, ky = ey ? (size_t)(ey - y->ptr) : y->len, n;
    int c;
    n = kx < ky ? kx : ky;
    c = memcmp(x->ptr, y->ptr, n);
    if (c || kx != ky) return c ? c : (kx < ky ? -1 : 1);
    n = x->len < y->len ? x->len : y->len;
    c = memcmp(x->ptr, y->ptr, n);
    return c ? c : (x->len < y->len ? -1 : x->len > y->len);
}

/* The request's query (NUL-terminated): the handle's pairs, params_fn's
   and the protocol's (query), sorted by key, '&'-separated. */
static int pr__ds_build_query(pr_ds *ds, const char *query, pr_buf *out) {
    pr_buf all, dyn;
    pr_slice pairs[64];
    size_t n = 0, pos = 0, i;
    int rc = PR_OK;
    pr_buf_init(&all);
    pr_buf_init(&dyn);
    if (ds->o.params_fn && (rc = ds->o.params_fn(&dyn, ds->o.user_data)) != 0) {
        rc = rc < 0 ? rc : PR_EINVAL;
        goto done;
    }
    if ((ds->base_params.len && pr_buf_append(&all, ds->base_params.data, ds->base_params.len)) ||
        (dyn.len && ((all.len && pr_buf_append(&all, "&", 1)) || pr_buf_append(&all, dyn.data, dyn.len))) ||
        (query && *query && ((all.len && pr_buf_append(&all, "&", 1)) || pr_buf_append_str(&all, query)))) {
        rc = PR_ENOMEM;
        goto done;
    }
    while (pos < all.len) {
        const char *p = all.data + pos, *amp = (const char *)memchr(p, '&', all.len - pos);
        size_t len = amp ? (size_t)(amp - p) : all.len - pos;
        pos += len + 1;
        if (!len) continue;
        if (n == sizeof pairs / sizeof pairs[0]) {
            rc = PR_EINVAL;
            goto done;
        }
        pairs[n].ptr = p;
        pairs[n++].len = len;
    }
    qsort(pairs, n, sizeof pairs[0], pr__ds_pair_cmp);
    for (i = 0; i < n && rc == PR_OK; i++)
        if ((rc = i ? pr_buf_append(out, "&", 1) : PR_OK) == PR_OK) rc = pr_buf_append(out, pairs[i].ptr, pairs[i].len);
    if (rc == PR_OK) rc = pr_buf_append(out, "", 1);
    if (rc == PR_OK) out->len--;
done:
    pr_buf_deinit(&all);
    pr_buf_deinit(&dyn);
    return rc;
}

static int pr__ds_hex(unsigned char c) {
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* Whether a query may go in a request target as it is: what pr_url_parse
   takes (no control byte, no space, whole %XX escapes) and no '#'. */
static int pr__ds_query_ok(const char *q, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)q[i];
        if (c <= 0x20 || c == 0x7f || c == '#') return 0;
        if (c == '%' && (n - i < 3 || !pr__ds_hex((unsigned char)q[i + 1]) || !pr__ds_hex((unsigned char)q[i + 2])))
            return 0;
    }
    return 1;
}

/* The request URL as text (for the observer): base, then '?' and the query
   when there is one. */
static int pr__ds_url_text(const pr_ds *ds, const pr_buf *q, pr_buf *url) {
    int rc = pr_buf_append_str(url, ds->base);
    if (rc == PR_OK && q->len && (rc = pr_buf_append(url, "?", 1)) == PR_OK) rc = pr_buf_append(url, q->data, q->len);
    if (rc == PR_OK) rc = pr_buf_append(url, "", 1);
    if (rc == PR_OK) url->len--;
    return rc;
}

/* Fill the result's views from the response head. */
static void pr__ds_fill(pr_ds_result *res, pr_http_response *r) {
    const pr_slice *v;
    int64_t n;
    res->status = pr_http_status(r);
    res->ttl_s = res->producer_epoch = res->producer_seq = res->expected_seq = res->received_seq = -1;
#define PR__DS_VIEW(field, name) \
    if ((v = pr_http_header_get(r, name)) != NULL) res->field = pr_slice_trim(*v);
    PR__DS_VIEW(offset, "stream-next-offset")
    PR__DS_VIEW(content_type, "content-type")
    PR__DS_VIEW(etag, "etag")
    PR__DS_VIEW(expires_at, "stream-expires-at")
    PR__DS_VIEW(cursor, "stream-cursor")
#undef PR__DS_VIEW
#define PR__DS_NUM(field, name) \
    if ((v = pr_http_header_get(r, name)) != NULL && pr_parse_i64(pr_slice_trim(*v), &n) == PR_OK) res->field = n;
    PR__DS_NUM(ttl_s, "stream-ttl")
    PR__DS_NUM(producer_epoch, "producer-epoch")
    PR__DS_NUM(producer_seq, "producer-seq")
    PR__DS_NUM(expected_seq, "producer-expected-seq")
    PR__DS_NUM(received_seq, "producer-received-seq")
#undef PR__DS_NUM
    res->closed = (v = pr_http_header_get(r, "stream-closed")) != NULL && pr_slice_ieq(pr_slice_trim(*v), pr_slice_cstr("true"));
    res->up_to_date =
        (v = pr_http_header_get(r, "stream-up-to-date")) != NULL && pr_slice_ieq(pr_slice_trim(*v), pr_slice_cstr("true"));
}

/* The meaning of an error status for an operation ("create", "append", ...). */
static int pr__ds_meaning(const pr_ds_result *res, const char *op) {
    int st = res->status;
    if (st == 404) return PR_DS_NOT_FOUND;
    if (st == 409) {
        if (res->closed) return PR_DS_STREAM_CLOSED;
        if (res->expected_seq >= 0) return PR_DS_SEQUENCE_GAP;
        return strcmp(op, "create") == 0 ? PR_DS_CONFLICT_EXISTS : PR_DS_CONFLICT_SEQ;
    }
    if (st == 403) return res->producer_epoch >= 0 ? PR_DS_STALE_EPOCH : PR_DS_FORBIDDEN;
    if (st == 401) return PR_DS_UNAUTHORIZED;
    if (st == 400) return PR_DS_BAD_REQUEST;
    if (st == 410) return PR_DS_GONE;
    if (st == 413) return PR_DS_TOO_LARGE;
    if (st == 429) return PR_DS_RATE_LIMITED;
    if (st == 405 || st == 501) return PR_DS_NOT_SUPPORTED;
    if (st >= 500 && st <= 599) return PR_DS_SERVER_ERROR;
    return PR_DS_UNEXPECTED_STATUS;
}

static const char *pr__ds_meaning_text(int e) {
    switch (e) {
    case PR_DS_NOT_FOUND: return "stream not found";
    case PR_DS_CONFLICT_EXISTS: return "the stream exists with another configuration";
    case PR_DS_CONFLICT_SEQ: return "conflict: Stream-Seq not above the last one, or another content type";
    case PR_DS_STREAM_CLOSED: return "the stream is closed";
    case PR_DS_SEQUENCE_GAP: return "producer sequence gap";
    case PR_DS_STALE_EPOCH: return "stale producer epoch";
    case PR_DS_BAD_REQUEST: return "bad request";
    case PR_DS_GONE: return "gone";
    case PR_DS_TOO_LARGE: return "payload too large";
    case PR_DS_RATE_LIMITED: return "rate limited";
    case PR_DS_SERVER_ERROR: return "server error";
    case PR_DS_NOT_SUPPORTED: return "not supported on this stream";
    case PR_DS_UNAUTHORIZED: return "unauthorized";
    case PR_DS_FORBIDDEN: return "forbidden";
    default: return "unexpected status";
    }
}

/* Fill err for an error status: the meaning, the path, the server's
   words. Returns PR_EHTTP. */
static int pr__ds_status_error(pr_ds *ds, pr_ds_result *res, pr_err_info *err, const char *op) {
    int st = res->status;
    size_t n = res->http.body ? PR__MIN(res->http.body_len, (size_t)60) : 0, i;
    char msg[64];
    res->error = pr__ds_meaning(res, op);
    for (i = 0; i < n; i++) msg[i] = res->http.body[i] >= 0x20 && res->http.body[i] < 0x7f ? res->http.body[i] : ' ';
    msg[n] = 0;
    pr__err_set(err, PR_EHTTP, 0, "ds: %s %.*s: %d %s%s%s", op, (int)PR__MIN(ds->url.path.len, (size_t)90),
                ds->url.path.ptr, st, pr__ds_meaning_text(res->error), n ? ": " : "", msg);
    err->http_status = st;
    err->category = st >= 500 || st == 429 ? PR_CATEGORY_SERVER : PR_CATEGORY_USER;
    err->meaning = res->error;
    return PR_EHTTP;
}

/* The observer in force for an object with options own (NULL: none of
   its own): own when it sets a callback, else the handle's; NULL when
   neither does. */
static const pr_ds_observer *pr__ds_observer(const pr_ds *ds, const pr_ds_observer *own) {
    if (own && own->on_event) return own;
    return ds->o.observer.on_event ? &ds->o.observer : NULL;
}

/* Tell the observer (NULL: none) of ev, its NULL strings made "". */
static void pr__ds_notify(const pr_ds_observer *obs, pr_ds_event *ev) {
    if (!obs || !obs->on_event) return;
    if (!ev->url) ev->url = "";
    if (!ev->op) ev->op = "";
    if (!ev->method) ev->method = "";
    if (!ev->offset) ev->offset = "";
    if (!ev->producer_id) ev->producer_id = "";
    obs->on_event(ev, obs->user_data);
}

/* Whether two "k=v" pairs (or a pair and a bare key) have the same key. */
static int pr__ds_same_key(pr_slice x, pr_slice y) {
    const char *ex = (const char *)memchr(x.ptr, '=', x.len), *ey = (const char *)memchr(y.ptr, '=', y.len);
    size_t kx = ex ? (size_t)(ex - x.ptr) : x.len, ky = ey ? (size_t)(ey - y.ptr) : y.len;
    return kx == ky && memcmp(x.ptr, y.ptr, kx) == 0;
}

/* The next non-empty '&'-separated pair of q at *pos, or 0 at the end. */
static int pr__ds_next_pair(const pr_buf *q, size_t *pos, pr_slice *pair) {
    while (*pos < q->len) {
        const char *p = q->data + *pos, *amp = (const char *)memchr(p, '&', q->len - *pos);
        size_t len = amp ? (size_t)(amp - p) : q->len - *pos;
        *pos += len + 1;
        if (len) {
            pair->ptr = p;
            pair->len = len;
            return 1;
        }
    }
    return 0;
}

/* on_auth_error's fresh fields (hdrs, "Name: value\r\n" lines) and query
   pairs (params) replace the handle's of the same name. Nothing changes
   when they are malformed (PR_EINVAL) or memory runs out. */
static int pr__ds_refresh(pr_ds *ds, const pr_buf *hdrs, const pr_buf *params, pr_err_info *err) {
    pr_http_header oldh[PR__DS_MAX_FIELDS], newh[PR__DS_MAX_FIELDS];
    pr__http_field_set olds, news;
    pr_buf fixed, bp;
    pr_slice pair, other;
    size_t i, j, pos, kept = 0;
    int rc = PR_OK;
    olds.h = oldh;
    olds.n = 0;
    olds.cap = PR__DS_MAX_FIELDS;
    news.h = newh;
    news.n = 0;
    news.cap = PR__DS_MAX_FIELDS;
    pr_buf_init(&fixed);
    pr_buf_init(&bp);
    if ((rc = pr__http_fields(NULL, hdrs->data, hdrs->len, pr__http_field_push, &news, err)) != PR_OK)
        return rc == PR_ELIMIT ? pr__err_set(err, PR_EINVAL, 0, "ds: more than %d header lines from on_auth_error",
                                             PR__DS_MAX_FIELDS)
                               : pr__err_wrap(err, PR_EINVAL, err, "ds: on_auth_error");
    for (pos = 0; pr__ds_next_pair(params, &pos, &pair);)
        if (memchr(pair.ptr, '#', pair.len) || !pr__ds_query_ok(pair.ptr, pair.len) || pair.ptr[0] == '=')
            return pr__err_set(err, PR_EINVAL, 0, "ds: on_auth_error gave a query pair that is not encoded name=value");
    (void)pr__http_fields(NULL, ds->fixed.data, ds->fixed.len, pr__http_field_push, &olds, NULL); /* checked before */
    for (i = 0; i < olds.n + news.n && rc == PR_OK; i++) {
        const pr_http_header *f = i < olds.n ? &oldh[i] : &newh[i - olds.n];
        if (i < olds.n) { /* an old field stays unless a fresh one has its name */
            for (j = 0; j < news.n && !pr_slice_ieq(f->name, newh[j].name); j++) {}
            if (j < news.n) continue;
            kept++;
        }
        if (kept + news.n > PR__DS_MAX_FIELDS) {
            rc = pr__err_set(err, PR_EINVAL, 0, "ds: more than %d header lines after on_auth_error", PR__DS_MAX_FIELDS);
            break;
        }
        if (pr_buf_append(&fixed, f->name.ptr, f->name.len) || pr_buf_append(&fixed, ": ", 2) ||
            pr_buf_append(&fixed, f->value.ptr, f->value.len) || pr_buf_append(&fixed, "\r\n", 2))
            rc = pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
    }
    for (pos = 0; rc == PR_OK && pr__ds_next_pair(&ds->base_params, &pos, &pair);) {
        size_t p2 = 0;
        int replaced = 0;
        while (!replaced && pr__ds_next_pair(params, &p2, &other)) replaced = pr__ds_same_key(pair, other);
        if (replaced) continue;
        if ((bp.len && pr_buf_append(&bp, "&", 1)) || pr_buf_append(&bp, pair.ptr, pair.len))
            rc = pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
    }
    for (pos = 0; rc == PR_OK && pr__ds_next_pair(params, &pos, &pair);)
        if ((bp.len && pr_buf_append(&bp, "&", 1)) || pr_buf_append(&bp, pair.ptr, pair.len))
            rc = pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
    if (rc == PR_OK) {
        pr_buf t = ds->fixed;
        ds->fixed = fixed;
        fixed = t;
        t = ds->base_params;
        ds->base_params = bp;
        bp = t;
    }
    pr_buf_deinit(&fixed);
    pr_buf_deinit(&bp);
    return rc;
}

/* Whether a response refuses the request's credentials: 401, or 403
   without Producer-Epoch (that one fences a producer). */
static int pr__ds_refused(const pr_ds_result *res) {
    return res->status == 401 || (res->status == 403 && res->producer_epoch < 0);
}

/* Make one logical request (retried by the handle's policy, sent again
   after on_auth_error's refreshes), told to rq->obs; err (required)
   receives the detail of a failure. For a streamed body (rq->stream),
   *resp receives the open response. */
static int pr__ds_do(pr_ds *ds, const pr__ds_req *rq, pr_ds_result *res, pr_err_info *err, pr_http_response **resp,
                     int64_t deadline) {
    pr__http_field_set fields;
    /* the protocol's fields go on when a redirect leaves the origin; the caller's do not */
    static const char *const fwd[] = { "Stream-TTL", "Stream-Expires-At", "Stream-Closed", "Stream-Seq", "Producer-Id",
                                       "Producer-Epoch", "Producer-Seq", "If-None-Match", "Stream-Forked-From",
                                       "Stream-Fork-Offset", "Stream-Fork-Sub-Offset", NULL };
    pr_http_header h[PR__DS_MAX_FIELDS * 2 + 8];
    const char **lines = NULL;
    size_t lines_size = 0;
    pr_http_request req;
    pr_buf query, url, dyn, fresh_h, fresh_p;
    pr_http_response *r = NULL;
    pr_url u;
    pr_ds_event ev;
    int64_t started = pr_now();
    size_t n, i;
    int rc, refreshes = 0;
    pr_ds_result_deinit(res);
    memset(&ev, 0, sizeof ev);
    res->ttl_s = res->producer_epoch = res->producer_seq = res->expected_seq = res->received_seq = -1;
    pr_buf_init(&query);
    pr_buf_init(&url);
    pr_buf_init(&dyn);
    pr_buf_init(&fresh_h);
    pr_buf_init(&fresh_p);
    for (;;) {
        pr_buf_clear(&query);
        pr_buf_clear(&dyn);
        if ((rc = pr__ds_build_query(ds, rq->query, &query)) != PR_OK ||
            (!pr__ds_query_ok(query.data, query.len) && (rc = PR_EINVAL) != PR_OK)) {
            pr__err_set(err, rc, 0, "ds: %s", rc == PR_ENOMEM ? "out of memory" : "params_fn or the query is refused");
            goto done;
        }
        /* the handle's URL, parsed once, with this request's query (borrowed: never deinit'ed) */
        u = ds->url;
        u.query.ptr = query.len ? query.data : "";
        u.query.len = query.len;
        u.has_query = query.len > 0;
        if (rq->obs) {
            pr_buf_clear(&url);
            if ((rc = pr__ds_url_text(ds, &query, &url)) != PR_OK) {
                pr__err_set(err, rc, 0, "ds: %s", "out of memory");
                goto done;
            }
        }
        if (!ev.kind) {
            ev.kind = PR_DS_EVENT_REQUEST_START;
            ev.url = url.data;
            ev.op = rq->op;
            ev.method = rq->method;
            pr__ds_notify(rq->obs, &ev);
        }
        if (ds->o.headers_fn && (rc = ds->o.headers_fn(&dyn, ds->o.user_data)) != 0) {
            rc = rc < 0 ? rc : PR_EINVAL;
            pr__err_set(err, rc, 0, "ds: %s", "headers_fn refused the request");
            goto done;
        }
        for (n = 0, i = 0; i < rq->nextra; i++) h[n++] = rq->extra[i];
        fields.h = h;
        fields.n = n;
        fields.cap = sizeof h / sizeof h[0];
        if ((rc = pr__http_fields(NULL, ds->fixed.data, ds->fixed.len, pr__http_field_push, &fields, err)) != PR_OK ||
            (rc = pr__http_fields(NULL, dyn.data, dyn.len, pr__http_field_push, &fields, err)) != PR_OK) {
            if (rc == PR_ELIMIT) pr__err_set(err, PR_EINVAL, 0, "ds: more than %d header lines from headers_fn",
                                             PR__DS_MAX_FIELDS);
            else pr__err_wrap(err, PR_EINVAL, err, "ds: headers_fn");
            rc = PR_EINVAL;
            goto done;
        }
        n = fields.n;
        pr__free(lines, lines_size);
        lines = NULL;
        if ((rc = pr__http_lines_join(NULL, h, n, &lines, &lines_size)) != PR_OK) {
            pr__err_set(err, rc, 0, "ds: %s", "out of memory");
            goto done;
        }
        memset(&req, 0, sizeof req);
        req.method = rq->method;
        req.url = &u;
        req.headers = lines;
        req.body = rq->body;
        req.body_len = rq->body_len;
        req.retry = rq->retry ? rq->retry : &ds->retry;
        req.idle_timeout_ms = rq->idle_ms;
        req.redirect_forward = fwd;
        r = NULL;
        if (rq->stream) {
            rc = pr_http_client_request(ds->client, &r, &req, err, deadline);
            if (rc == PR_OK) pr__ds_fill(res, r);
        } else {
            rc = pr_http_client_fetch(ds->client, &res->http, &req, err, deadline);
            if (rc == PR_OK && res->http.resp) pr__ds_fill(res, res->http.resp);
        }
        if (rc == PR_OK && ds->o.on_auth_error && pr__ds_refused(res) && refreshes < ds->o.max_auth_refreshes) {
            pr_ds_auth_info ai;
            const pr_slice *wa = pr_http_header_get(r ? r : res->http.resp, "www-authenticate");
            memset(&ai, 0, sizeof ai);
            ai.status = res->status;
            ai.op = rq->op;
            ai.method = rq->method;
            ai.attempt = refreshes + 1;
            ai.www_authenticate = wa ? pr_slice_trim(*wa) : pr_slice_cstr("");
            ai.deadline = deadline;
            pr_buf_clear(&fresh_h);
            pr_buf_clear(&fresh_p);
            if (ds->o.on_auth_error(&ai, &fresh_h, &fresh_p, ds->o.user_data)) {
                pr_ds_event re;
                if ((rc = pr__ds_refresh(ds, &fresh_h, &fresh_p, err)) != PR_OK) goto done;
                memset(&re, 0, sizeof re);
                re.kind = PR_DS_EVENT_AUTH_REFRESH;
                re.url = url.data;
                re.op = rq->op;
                re.method = rq->method;
                re.status = res->status;
                re.attempt = ++refreshes;
                pr__ds_notify(rq->obs, &re);
                pr_http_response_destroy(r); /* a refused stream is closed before the new try */
                r = NULL;
                pr_ds_result_deinit(res);
                res->ttl_s = res->producer_epoch = res->producer_seq = res->expected_seq = res->received_seq = -1;
                continue;
            }
        }
        break;
    }
    /* what the server hands out, a read must take back (pr_ds_read_open) */
    if (rc == PR_OK && ((res->offset.len && !pr__ds_token_ok(res->offset.ptr, res->offset.len)) ||
                        (res->cursor.len && !pr__ds_token_ok(res->cursor.ptr, res->cursor.len))))
        rc = pr__err_set(err, PR_EPROTO, 0, "ds: the server's %s is not 1 to 1024 printable ASCII bytes",
                         res->offset.len && !pr__ds_token_ok(res->offset.ptr, res->offset.len) ? "offset" : "cursor");
done:
    if (rc == PR_OK && r) {
        *resp = r;
        r = NULL;
    }
    pr_http_response_destroy(r);
    if (ev.kind) { /* started: how it ended */
        ev.kind = rc == PR_OK ? PR_DS_EVENT_REQUEST_STOP : PR_DS_EVENT_REQUEST_EXCEPTION;
        ev.url = url.data;
        ev.status = res->status;
        ev.error = rc;
        ev.err = rc == PR_OK ? NULL : err;
        ev.duration_ms = pr_now() - started;
        pr__ds_notify(rq->obs, &ev);
    }
    pr__free(lines, lines_size);
    pr_buf_deinit(&query);
    pr_buf_deinit(&url);
    pr_buf_deinit(&dyn);
    pr_buf_deinit(&fresh_h);
    pr_buf_deinit(&fresh_p);
    return rc;
}

void pr_ds_result_deinit(pr_ds_result *res) {
    if (!res) return;
    pr_http_result_deinit(&res->http);
    memset(res, 0, sizeof *res);
}

/* An operation's err parameter, cleared: the caller's, or scratch when
   the caller passed NULL (not wanted). */
static pr_err_info *pr__ds_err(pr_err_info *err, pr_err_info *scratch) {
    err = err ? err : scratch;
    memset(err, 0, sizeof *err);
    return err;
}

static void pr__ds_hdr(pr_http_header *h, size_t *n, const char *name, const char *value, size_t len) {
    h[*n].name = pr_slice_cstr(name);
    h[*n].value.ptr = value;
    h[*n].value.len = len;
    (*n)++;
}

int pr_ds_create(pr_ds *ds, const pr_ds_create_opts *opts, pr_ds_result *res, pr_err_info *err,
                 int64_t deadline) {
    pr_err_info scratch;
    const pr_ds_create_opts *o = opts;
    pr_http_header h[7];
    pr__ds_req rq;
    char ttl[24], sub[24];
    const char *ct;
    size_t n = 0;
    int rc, fork = o && o->forked_from;
    err = pr__ds_err(err, &scratch);
    if (!ds || !res) return pr__err_set(err, PR_EINVAL, 0, "ds: ds and res are required");
    if (o && (o->fork_offset || o->fork_sub_offset) && !fork)
        return pr__err_set(err, PR_EINVAL, 0, "ds: fork_offset and fork_sub_offset need forked_from");
    if (fork && (o->forked_from[0] != '/' || !pr__ds_token_ok(o->forked_from, strlen(o->forked_from))))
        return pr__err_set(err, PR_EINVAL, 0, "ds: forked_from is not a path of 1 to %d printable ASCII bytes",
                           PR__DS_MAX_OFFSET);
    if (fork && o->fork_offset && !pr__ds_token_ok(o->fork_offset, strlen(o->fork_offset)))
        return pr__err_set(err, PR_EINVAL, 0, "ds: fork_offset is not 1 to %d printable ASCII bytes", PR__DS_MAX_OFFSET);
    if (o && o->fork_sub_offset < 0) return pr__err_set(err, PR_EINVAL, 0, "ds: a negative fork_sub_offset");
    ct = o && o->content_type ? o->content_type : ds->ctype;
    if (!fork || (o->content_type || ds->ctype_given)) pr__ds_hdr(h, &n, "Content-Type", ct, strlen(ct));
    else ct = NULL; /* a fork has its source's */
    if (fork) {
        pr__ds_hdr(h, &n, "Stream-Forked-From", o->forked_from, strlen(o->forked_from));
        if (o->fork_offset) pr__ds_hdr(h, &n, "Stream-Fork-Offset", o->fork_offset, strlen(o->fork_offset));
        if (o->fork_sub_offset > 0)
            pr__ds_hdr(h, &n, "Stream-Fork-Sub-Offset", sub, pr__buf_dec(sub, (uint64_t)o->fork_sub_offset));
    }
    if (o && o->ttl_s > 0) {
        size_t k = pr__buf_dec(ttl, (uint64_t)o->ttl_s);
        pr__ds_hdr(h, &n, "Stream-TTL", ttl, k);
    }
    if (o && o->expires_at) pr__ds_hdr(h, &n, "Stream-Expires-At", o->expires_at, strlen(o->expires_at));
    if (o && o->closed) pr__ds_hdr(h, &n, "Stream-Closed", "true", 4);
    memset(&rq, 0, sizeof rq);
    rq.method = "PUT";
    rq.op = "create";
    rq.obs = pr__ds_observer(ds, NULL);
    rq.extra = h;
    rq.nextra = n;
    rq.body = o ? o->body : NULL;
    rq.body_len = o && o->body ? o->body_len : 0;
    if ((rc = pr__ds_do(ds, &rq, res, err, NULL, deadline)) == PR_OK && res->status != 200 && res->status != 201)
        rc = pr__ds_status_error(ds, res, err, "create");
    if (rc == PR_OK && !ds->ctype_given) {
        if (ct && o && o->content_type) pr__ds_setstr(&ds->ctype, ct, strlen(ct));
        else if (!ct && res->content_type.len) pr__ds_setstr(&ds->ctype, res->content_type.ptr, res->content_type.len);
    }
    return rc;
}

/* A request with no body and no fields of its own (head, delete): status
   ok or ok2 is success, another is named. */
static int pr__ds_bare(pr_ds *ds, pr_ds_result *res, pr_err_info *err, const char *method, const char *op, int ok,
                       int ok2, int64_t deadline) {
    pr__ds_req rq;
    int rc;
    if (!ds || !res) return pr__err_set(err, PR_EINVAL, 0, "ds: ds and res are required");
    memset(&rq, 0, sizeof rq);
    rq.method = method;
    rq.op = op;
    rq.obs = pr__ds_observer(ds, NULL);
    if ((rc = pr__ds_do(ds, &rq, res, err, NULL, deadline)) == PR_OK && res->status != ok && res->status != ok2)
        rc = pr__ds_status_error(ds, res, err, op);
    return rc;
}

int pr_ds_head(pr_ds *ds, pr_ds_result *res, pr_err_info *err, int64_t deadline) {
    pr_err_info scratch;
    int rc = pr__ds_bare(ds, res, pr__ds_err(err, &scratch), "HEAD", "head", 200, 200, deadline);
    if (rc == PR_OK && !ds->ctype_given && res->content_type.len)
        pr__ds_setstr(&ds->ctype, res->content_type.ptr, res->content_type.len);
    return rc;
}

int pr_ds_delete(pr_ds *ds, pr_ds_result *res, pr_err_info *err, int64_t deadline) {
    pr_err_info scratch;
    return pr__ds_bare(ds, res, pr__ds_err(err, &scratch), "DELETE", "delete", 200, 204, deadline);
}

/* pr_ds_append, told to obs (pr__ds_observer), with the retry policy
   retry (NULL = the handle's). */
static int pr__ds_append(pr_ds *ds, const void *data, size_t len, const pr_ds_append_opts *o, pr_ds_result *res,
                         const pr_ds_observer *obs, const pr_retry_policy *retry, pr_err_info *err, int64_t deadline) {
    pr_err_info scratch;
    pr_http_header h[7];
    pr__ds_req rq;
    pr_buf wrapped;
    char ep[24], sq[24];
    size_t n = 0;
    int rc, closing = o && o->close;
    err = pr__ds_err(err, &scratch);
    if (!ds || !res || (len && !data)) return pr__err_set(err, PR_EINVAL, 0, "ds: ds, res and data are required");
    if (!len && !closing) {
        pr_ds_result_deinit(res);
        return pr__err_set(err, PR_EINVAL, 0, "ds: an append needs data (or close)");
    }
    pr_buf_init(&wrapped);
    if (len) pr__ds_hdr(h, &n, "Content-Type", ds->ctype, strlen(ds->ctype));
    if (o && o->seq) pr__ds_hdr(h, &n, "Stream-Seq", o->seq, strlen(o->seq));
    if (closing) pr__ds_hdr(h, &n, "Stream-Closed", "true", 4);
    if (o && o->producer_id) {
        if (!*o->producer_id || o->producer_epoch < 0 || o->producer_seq < 0)
            return pr__err_set(err, PR_EINVAL, 0, "ds: an empty producer id, or a negative epoch or seq");
        pr__ds_hdr(h, &n, "Producer-Id", o->producer_id, strlen(o->producer_id));
        pr__ds_hdr(h, &n, "Producer-Epoch", ep, pr__buf_dec(ep, (uint64_t)o->producer_epoch));
        pr__ds_hdr(h, &n, "Producer-Seq", sq, pr__buf_dec(sq, (uint64_t)o->producer_seq));
    }
    if (len && pr__ds_is_json(ds->ctype) && !(o && o->raw_json)) {
        if (pr_buf_reserve(&wrapped, len + 2) != PR_OK) return pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
        pr_buf_append(&wrapped, "[", 1);
        pr_buf_append(&wrapped, data, len);
        pr_buf_append(&wrapped, "]", 1);
        data = wrapped.data;
        len = wrapped.len;
    }
    memset(&rq, 0, sizeof rq);
    rq.method = "POST";
    rq.op = closing ? "close" : "append";
    rq.obs = obs;
    rq.extra = h;
    rq.nextra = n;
    rq.body = data;
    rq.body_len = len;
    rq.retry = retry;
    rc = pr__ds_do(ds, &rq, res, err, NULL, deadline);
    pr_buf_deinit(&wrapped);
    if (rc == PR_OK && res->status != 200 && res->status != 204)
        rc = pr__ds_status_error(ds, res, err, closing ? "close" : "append");
    return rc;
}

int pr_ds_append(pr_ds *ds, const void *data, size_t len, const pr_ds_append_opts *opts, pr_ds_result *res,
                 pr_err_info *err, int64_t deadline) {
    return pr__ds_append(ds, data, len, opts, res, ds ? pr__ds_observer(ds, NULL) : NULL, NULL, err, deadline);
}

int pr_ds_close(pr_ds *ds, const void *data, size_t len, pr_ds_result *res, pr_err_info *err, int64_t deadline) {
    pr_ds_append_opts o;
    memset(&o, 0, sizeof o);
    o.close = 1;
    return pr_ds_append(ds, data, len, &o, res, err, deadline);
}
