// @pristine:module telemetry - structured events from every module's observer (client, breakers, streams, futures, Durable Streams); a batching reporter
// @pristine:public
/*
 * telemetry: two pieces.
 *
 * - pr_telemetry, a hub. Plug its adapters into the hooks of the other
 *   modules (pr_telemetry_http_hook as a client's observer.on_event,
 *   pr_telemetry_breaker_hook as a breaker's observer.on_change,
 *   pr_telemetry_sse_hook as an event stream's observer.on_reconnect,
 *   pr_telemetry_queue_hook and pr_telemetry_rfuture_hook into a poller,
 *   pr_telemetry_ds_hook as a Durable Streams observer),
 *   and the application's callback receives one kind of structured event
 *   for all of them: a kind, a name, a severity and named fields. URLs have
 *   their credentials removed and secret-looking query values redacted. A
 *   hub may also forward every event to a reporter. Nothing is built when
 *   a module has no hook set.
 * - pr_reporter, the batching reporter: a task that sends events to a
 *   telemetry endpoint as JSON batches ({"session_id", "platform",
 *   "sdk_version", "process_uuid", "events": [...]}) with SESSION_START,
 *   SESSION_END, GENERIC_EVENT and UNHANDLED_EXCEPTION events. At most
 *   batch_size (100) events per POST, a flush every flush_interval_ms (10
 *   s), when batch_size events wait, and after every exception; a queue of
 *   at most queue_max (10,000) events and queue_max_bytes (8 MiB; past
 *   either, events are dropped and counted); a failed POST is sent again
 *   up to 3 times (1, 2, 4 s plus up to 10 %), then dropped. Logging never
 *   blocks and never waits for the network; a dead endpoint never delays
 *   the application.
 *
 * Enable switch: with opts.enabled 0 the environment decides: the variable
 * (PRISTINE_TELEMETRY unless env_var names another) unset means on; set,
 * it means on only for 1, true, yes or on (any case). A disabled reporter
 * is NULL: every call on it accepts nothing and returns at once.
 *
 * User errors (pr_reporter_is_user_error): category user, or an HTTP
 * status 400-499 other than 408, 410 and 429, on the error or on its
 * causes (a bounded, cycle-safe walk). They are reported as a GENERIC_EVENT
 * "user_error" at WARNING; other errors as UNHANDLED_EXCEPTION.
 */

/* Event kinds of the hub. */
enum pr_telemetry_kind {
    PR_TELEMETRY_REQUEST_START = 1, /* an HTTP request begins */
    PR_TELEMETRY_REQUEST_STOP = 2,  /* it ended with a response (any status) */
    PR_TELEMETRY_REQUEST_ERROR = 3, /* it ended without one */
    PR_TELEMETRY_RETRY = 4,         /* a retry is scheduled */
    PR_TELEMETRY_BREAKER = 5,       /* a circuit breaker changed state */
    PR_TELEMETRY_QUEUE_STATE = 6,   /* a remote job's queue state changed */
    PR_TELEMETRY_FUTURE = 7,        /* a remote future's polling hit a problem */
    PR_TELEMETRY_FUTURE_RESOLVED = 8,
    PR_TELEMETRY_FUTURE_FAILED = 9,
    PR_TELEMETRY_STREAM_RECONNECT = 10, /* an event stream is about to connect again */
    PR_TELEMETRY_STREAM_STATE = 11,     /* a Durable Streams consumer changed state (ds module) */
    PR_TELEMETRY_STREAM_BATCH = 12,     /* a Durable Streams consumer received, or a producer stored, a batch */
    PR_TELEMETRY_STREAM_DUPLICATE = 13  /* a Durable Streams server had a producer's batch already */
};

/* Field value types. */
enum pr_telemetry_type { PR_TELEMETRY_STR = 1, PR_TELEMETRY_INT = 2, PR_TELEMETRY_DOUBLE = 3, PR_TELEMETRY_BOOL = 4 };

/* One named value of an event. */
typedef struct pr_telemetry_field {
    const char *key;
    int type;          /* PR_TELEMETRY_* */
    const char *s;     /* STR (never NULL) */
    int64_t i;         /* INT, BOOL */
    double d;          /* DOUBLE */
} pr_telemetry_field;

/* One event. Everything is valid during the callback only. */
typedef struct pr_telemetry_event {
    int kind;                         /* PR_TELEMETRY_* */
    const char *name;                 /* "http.request.stop", "APIFuture.result_async.timeout", ... */
    int severity;                     /* PR_SEVERITY_* */
    const pr_telemetry_field *fields;
    size_t nfields;
} pr_telemetry_event;

/* The field named key, or NULL.
   Params: ev - the event; key - NUL-terminated.
   Returns: the field or NULL.
   Blocks: no.
   Thread: any.
   See: pr_telemetry_event. */
PRISTINE_API const pr_telemetry_field *pr_telemetry_field_get(const pr_telemetry_event *ev, const char *key);

/* Write url without its credentials, with the values of secret-looking
   query parameters (names containing key, token, secret, password, passwd,
   pwd, auth, signature, sig, credential or session, in any case) replaced
   by REDACTED.
   Params: out - appended to; url - NUL-terminated.
   Returns: PR_OK; PR_ENOMEM; PR_EINVAL for NULL arguments.
   Blocks: no.
   Thread: any.
   See: pr_telemetry_http_hook. */
PRISTINE_API int pr_telemetry_sanitize_url(pr_buf *out, const char *url);

/* A hub. Opaque. */
typedef struct pr_telemetry pr_telemetry;
/* A batching reporter. Opaque. */
typedef struct pr_reporter pr_reporter;

/* Options of pr_telemetry_create. */
typedef struct pr_telemetry_opts {
    void (*on_event)(const pr_telemetry_event *ev, void *user_data); /* NULL = none */
    void *user_data;
    pr_reporter *reporter;   /* NULL = none: else every event also becomes a GENERIC_EVENT
                                "pristine.<name>" (ERROR for failures, else INFO); borrowed */
} pr_telemetry_opts;

/* Create a hub.
   Params: out - receives it; opts - copied.
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_telemetry_http_hook. */
PRISTINE_API int pr_telemetry_create(pr_telemetry **out, const pr_telemetry_opts *opts);

/* Free a hub (after the clients, breakers and pollers that feed it). NULL
   is a no-op.
   Params: t - the hub.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_telemetry_create. */
PRISTINE_API void pr_telemetry_destroy(pr_telemetry *t);

/* An observer for pr_http_client_opts: install it as
   opts.observer.on_event = pr_telemetry_http_hook with
   opts.observer.user_data = the hub. START becomes
   REQUEST_START; DONE becomes REQUEST_STOP (a status) or REQUEST_ERROR;
   RETRY becomes RETRY. Fields: method, url, attempt, status, error,
   duration_ms, delay_ms, reason.
   Params: ev - the client's event; user_data - a pr_telemetry.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_http_client_opts. */
PRISTINE_API void pr_telemetry_http_hook(const pr_http_event *ev, void *user_data);

/* An on_change for pr_breaker_opts.observer: user_data is the hub.
   Fields: breaker, from, to (state names: closed, open, half_open).
   Params: name, from, to - as the breaker gives them; user_data - a hub.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_opts. */
PRISTINE_API void pr_telemetry_breaker_hook(const char *name, int from, int to, void *user_data);

/* An on_reconnect for pr_sse_stream_opts.observer: observer.user_data is
   the hub. Event
   "sse.reconnect" (WARNING after a failed connection, else INFO); fields:
   reconnects, failures, delay_ms, reason (the code's name), status,
   detail, last_event_id.
   Params: info - as the stream gives it; user_data - a hub.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_sse_observer. */
PRISTINE_API void pr_telemetry_sse_hook(const pr_sse_reconnect *info, void *user_data);

/* An on_queue_state for pr_rfuture_observer: observer.user_data is the hub.
   Fields: request_id, queue_state, queue_state_reason, old_queue_state.
   Params: change - the change; user_data - a hub.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_rfuture_observer. */
PRISTINE_API void pr_telemetry_queue_hook(const pr_queue_change *change, void *user_data);

/* An on_event for pr_rfuture_observer: observer.user_data is the hub. Problems
   become FUTURE events under their own names; the end of a future becomes
   FUTURE_RESOLVED or FUTURE_FAILED. Fields: request_id, request_type,
   iteration, elapsed_time, status_code, kind, should_retry, is_user_error,
   bad_request_retries, connection_error_retries, detail, error, and
   new_request_id on "resubmitted".
   Params: ev - the poller's event; user_data - a hub.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_rfuture_observer. */
PRISTINE_API void pr_telemetry_rfuture_hook(const pr_rfuture_event *ev, void *user_data);

/* An on_event for pr_ds_observer (a Durable Streams handle's, consumer's
   or producer's): user_data is the hub. Events and their fields (url,
   sanitized, on every one):
   "ds.request.start" (REQUEST_START): op, method;
   "ds.request.stop" (REQUEST_STOP): op, method, status, duration_ms;
   "ds.request.exception" (REQUEST_ERROR, ERROR): op, method, status,
   error (the code's name), detail, duration_ms;
   "ds.auth.refresh" (RETRY, WARNING: on_auth_error gave fresh
   credentials after a 401 / 403): op, method, status, attempt;
   "ds.consumer.batch" (STREAM_BATCH): items, bytes, offset;
   "ds.consumer.reconnect" (STREAM_RECONNECT, WARNING): attempt,
   delay_ms, reason (the code's name), detail, offset;
   "ds.consumer.state" (STREAM_STATE, WARNING after a failure): state
   (connecting, live, up_to_date, closed, stopped), offset, detail;
   "ds.producer.batch" (STREAM_BATCH) and "ds.producer.duplicate"
   (STREAM_DUPLICATE): producer_id, epoch, seq, items, bytes,
   duration_ms, offset.
   Params: ev - the observer's event; user_data - a hub.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_ds_observer. */
PRISTINE_API void pr_telemetry_ds_hook(const pr_ds_event *ev, void *user_data);

/* Options of pr_reporter_start. Zero means the default; strings are copied. */
typedef struct pr_reporter_opts {
    pr_http_client *client;    /* borrowed, must outlive the reporter; NULL = one of its own, made with
                                  tls, destroyed with the reporter */
    const char *url;           /* required: the endpoint, e.g. "https://host/api/v1/telemetry" */
    const char *session_id;    /* NULL = session-less: "sessionless-<uuid>", no SESSION_START / END */
    const char *platform;      /* NULL = the system's name (uname), e.g. "Linux" */
    const char *sdk_version;   /* NULL = PRISTINE_VERSION */
    int batch_size;            /* 0 = 100 events per POST */
    int flush_interval_ms;     /* 0 = 10000 */
    int queue_max;             /* 0 = 10000 events waiting */
    int64_t queue_max_bytes;   /* 0 = 8 MiB: the bytes of the events waiting (each whole: its strings
                                  plus about 100 bytes); past it events are dropped and counted as
                                  past queue_max. Events being sent count until they are done; the
                                  POST in flight holds their JSON besides */
    int send_timeout_ms;       /* 0 = 5000 per POST */
    int max_send_retries;      /* 0 = 3; PR_RETRY_OFF = none */
    pr_backoff send_backoff;   /* base_ms 0 = PR_BACKOFF_TELEMETRY */
    int flush_timeout_ms;      /* 0 = 30000: how long stop and fatal logging wait for the queue */
    int enabled;               /* 0 = the environment decides; 1 = on; -1 = off */
    const char *env_var;       /* NULL = "PRISTINE_TELEMETRY" */
    pr_retry_hooks hooks;      /* the resend sleep, its random numbers, the wall clock of timestamps */
    pr_tls_opts tls;           /* the TLS settings of the own client (client NULL); must be zero when
                                  a client is given (its own settings apply) */
} pr_reporter_opts;

/* An error to report (pr_reporter_log_exception). */
typedef struct pr_reporter_error {
    const char *type;          /* e.g. "HTTPError"; NULL = "Error" */
    const char *message;       /* may be NULL */
    int status_code;           /* an HTTP status, 0 = none */
    int category;              /* PR_CATEGORY_*: USER makes it a user error */
    const char *body;          /* a response body, NULL = none */
    const char *traceback;     /* NULL = none */
    const struct pr_reporter_error *cause; /* what caused it, NULL = nothing */
} pr_reporter_error;

/* Start a reporter (its task sends SESSION_START first, unless
   session-less).
   Params: out - receives it, or NULL when telemetry is disabled (then
           PR_OK too: calls on NULL do nothing); opts - url required;
           err - receives why it failed; NULL = not wanted.
   Returns: PR_OK; PR_EINVAL (no url, a URL that does not parse, bad
            limits or backoff, tls set while a client is given); PR_EIO
            (the own client's tls.ca_file cannot be read); PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_reporter_log, pr_reporter_stop. */
PRISTINE_API int pr_reporter_start(pr_reporter **out, const pr_reporter_opts *opts, pr_err_info *err);

/* Queue a GENERIC_EVENT. data is a JSON object's text (NULL, or text that
   is not a JSON object, is sent as {}); it never blocks and never touches
   the network.
   Params: r - the reporter (NULL accepts nothing); name - the event name;
           data - JSON object text or NULL; severity - PR_SEVERITY_*.
   Returns: 1 when queued; 0 when dropped (queue full, disabled, no
            memory).
   Blocks: no.
   Thread: owner.
   See: pr_reporter_log_fields. */
PRISTINE_API int pr_reporter_log(pr_reporter *r, const char *name, const char *data, int severity);

/* Queue a GENERIC_EVENT whose event_data is built from fields.
   Params: r - the reporter; name - the event name; fields, n - the data;
           severity - PR_SEVERITY_*.
   Returns: 1 when queued, 0 when dropped.
   Blocks: no.
   Thread: owner.
   See: pr_reporter_log. */
PRISTINE_API int pr_reporter_log_fields(pr_reporter *r, const char *name, const pr_telemetry_field *fields, size_t n,
                                        int severity);

/* Queue an error and ask for a flush (not waited for): a user error as a
   GENERIC_EVENT "user_error" (WARNING; event_data error_type, message,
   status_code, body), any other as UNHANDLED_EXCEPTION with severity.
   Params: r - the reporter; e - the error; severity - PR_SEVERITY_*.
   Returns: 1 when queued, 0 when dropped.
   Blocks: no.
   Thread: owner.
   See: pr_reporter_is_user_error. */
PRISTINE_API int pr_reporter_log_exception(pr_reporter *r, const pr_reporter_error *e, int severity);

/* Queue an error and SESSION_END together (all or nothing), then wait until
   the queue has been sent, at most flush_timeout_ms or the deadline.
   Params: r - the reporter; e - the error; severity - PR_SEVERITY_*;
           deadline - absolute ms.
   Returns: PR_OK (sent); PR_ETIMEDOUT; PR_ECANCELED; PR_ELIMIT (the queue
            could not take both events: nothing queued); PR_EINVAL.
   Blocks: yes.
   Thread: owner.
   See: pr_reporter_log_exception. */
PRISTINE_API int pr_reporter_log_fatal(pr_reporter *r, const pr_reporter_error *e, int severity, int64_t deadline);

/* Whether an error is a user error (see above).
   Params: e - the error (NULL = no).
   Returns: 1 or 0.
   Blocks: no.
   Thread: any.
   See: pr_reporter_log_exception. */
PRISTINE_API int pr_reporter_is_user_error(const pr_reporter_error *e);

/* Ask for a flush and wait until every event queued before the call has
   been taken out for sending (sent or given up on), at most
   flush_timeout_ms or the deadline.
   Params: r - the reporter; deadline - absolute ms.
   Returns: PR_OK; PR_ETIMEDOUT; PR_ECANCELED; PR_EINVAL.
   Blocks: yes.
   Thread: owner.
   See: pr_reporter_stop. */
PRISTINE_API int pr_reporter_flush(pr_reporter *r, int64_t deadline);

/* Stop: queue SESSION_END (once, not session-less), flush within
   flush_timeout_ms and the deadline, and end the task (also when the flush
   timed out). Later calls do nothing; logging after it is refused.
   Params: r - the reporter (NULL: PR_OK); deadline - absolute ms.
   Returns: PR_OK; PR_ETIMEDOUT (events were left unsent); PR_ECANCELED.
   Blocks: yes.
   Thread: owner.
   See: pr_reporter_destroy. */
PRISTINE_API int pr_reporter_stop(pr_reporter *r, int64_t deadline);

/* Free a reporter; one not stopped is stopped first without a flush.
   NULL is a no-op.
   Params: r - the reporter.
   Returns: nothing.
   Blocks: no (a running task is cancelled and waited for as it unwinds).
   Thread: owner.
   See: pr_reporter_stop. */
PRISTINE_API void pr_reporter_destroy(pr_reporter *r);

/* Counters: events accepted, events taken out for sending, events dropped
   (refused by a full queue or lost with a batch that could not be sent).
   Params: r - the reporter; pushed, flushed, dropped - receive them (may be NULL).
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_reporter_log. */
PRISTINE_API void pr_reporter_counts(const pr_reporter *r, long *pushed, long *flushed, long *dropped);

/* The session id the reporter sends ("sessionless-..." when session-less).
   Params: r - the reporter.
   Returns: the id ("" for NULL); valid until pr_reporter_destroy.
   Blocks: no.
   Thread: owner.
   See: pr_reporter_opts. */
PRISTINE_API const char *pr_reporter_session_id(const pr_reporter *r);

// @pristine:impl

/* ---- the hub ---- */
struct pr_telemetry {
    pr_telemetry_opts o;
};

const pr_telemetry_field *pr_telemetry_field_get(const pr_telemetry_event *ev, const char *key) {
    size_t i;
    if (!ev || !key) return NULL;
    for (i = 0; i < ev->nfields; i++)
        if (!strcmp(ev->fields[i].key, key)) return &ev->fields[i];
    return NULL;
}

int pr_telemetry_create(pr_telemetry **out, const pr_telemetry_opts *opts) {
    if (!out) return PR_EINVAL;
    *out = (pr_telemetry *)pr__calloc(1, sizeof **out);
    if (!*out) return PR_ENOMEM;
    if (opts) (*out)->o = *opts;
    return PR_OK;
}

void pr_telemetry_destroy(pr_telemetry *t) { pr__free(t, sizeof *t); }

static int pr__telemetry_secret_name(pr_slice n) {
    static const char *const words[] = { "key", "token", "secret", "password", "passwd", "pwd", "auth",
                                         "signature", "sig", "credential", "session" };
    size_t i, k;
    for (i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t wl = strlen(words[i]);
        for (k = 0; k + wl <= n.len; k++) {
            pr_slice part;
            part.ptr = n.ptr + k;
            part.len = wl;
            if (pr_slice_ieq(part, pr_slice_cstr(words[i]))) return 1;
        }
    }
    return 0;
}

int pr_telemetry_sanitize_url(pr_buf *out, const char *url) {
    const char *p, *q, *at, *end, *slash;
    int rc = PR_OK;
    if (!out || !url) return PR_EINVAL;
    end = url + strlen(url);
    p = strstr(url, "://");
    p = p ? p + 3 : url;
    slash = p + strcspn(p, "/?#");
    /* userinfo: the last '@' before the path */
    for (at = NULL, q = p; q < slash; q++)
        if (*q == '@') at = q;
    rc = pr_buf_append(out, url, (size_t)(p - url));
    if (!rc) rc = at ? pr_buf_append(out, at + 1, (size_t)(slash - at - 1)) : pr_buf_append(out, p, (size_t)(slash - p));
    q = slash + strcspn(slash, "?#");
    if (!rc) rc = pr_buf_append(out, slash, (size_t)(q - slash));
    if (!rc && q < end && *q == '?') {
        const char *qe = q + 1 + strcspn(q + 1, "#");
        const char *s = q + 1;
        rc = pr_buf_append(out, "?", 1);
        while (!rc && s < qe) {
            const char *amp = (const char *)memchr(s, '&', (size_t)(qe - s)), *pe = amp ? amp : qe;
            const char *eq = (const char *)memchr(s, '=', (size_t)(pe - s));
            pr_slice name;
            name.ptr = s;
            name.len = (size_t)((eq ? eq : pe) - s);
            if (eq && pr__telemetry_secret_name(name)) {
                rc = pr_buf_append(out, s, (size_t)(eq - s) + 1);
                if (!rc) rc = pr_buf_append_str(out, "REDACTED");
            } else {
                rc = pr_buf_append(out, s, (size_t)(pe - s));
            }
            if (!rc && amp) rc = pr_buf_append(out, "&", 1);
            s = amp ? amp + 1 : qe;
        }
        q = qe;
    }
    if (!rc && q < end) rc = pr_buf_append(out, q, (size_t)(end - q)); /* the fragment */
    return rc;
}

static void pr__telemetry_forward(pr_telemetry *t, const pr_telemetry_event *ev);

static void pr__telemetry_emit(pr_telemetry *t, int kind, const char *name, int severity, const pr_telemetry_field *f,
                         size_t n) {
    pr_telemetry_event ev;
    if (!t) return;
    ev.kind = kind;
    ev.name = name;
    ev.severity = severity;
    ev.fields = f;
    ev.nfields = n;
    if (t->o.on_event) t->o.on_event(&ev, t->o.user_data);
    if (t->o.reporter) pr__telemetry_forward(t, &ev);
}

static pr_telemetry_field pr__telemetry_s(const char *key, const char *s) {
    pr_telemetry_field f;
    memset(&f, 0, sizeof f);
    f.key = key;
    f.type = PR_TELEMETRY_STR;
    f.s = s ? s : "";
    return f;
}

static pr_telemetry_field pr__telemetry_i(const char *key, int64_t i) {
    pr_telemetry_field f;
    memset(&f, 0, sizeof f);
    f.key = key;
    f.type = PR_TELEMETRY_INT;
    f.i = i;
    return f;
}

static pr_telemetry_field pr__telemetry_b(const char *key, int b) {
    pr_telemetry_field f = pr__telemetry_i(key, b != 0);
    f.type = PR_TELEMETRY_BOOL;
    return f;
}

void pr_telemetry_http_hook(const pr_http_event *ev, void *user_data) {
    pr_telemetry *t = (pr_telemetry *)user_data;
    pr_telemetry_field f[8];
    pr_buf url;
    int kind, sev = PR_SEVERITY_INFO;
    const char *name;
    size_t n = 0;
    if (!t || !ev) return;
    switch (ev->kind) {
    case PR_HTTP_EVENT_START: kind = PR_TELEMETRY_REQUEST_START; name = "http.request.start"; break;
    case PR_HTTP_EVENT_RETRY: kind = PR_TELEMETRY_RETRY; name = "http.request.retry"; sev = PR_SEVERITY_WARNING; break;
    case PR_HTTP_EVENT_DONE:
        if (ev->error) {
            kind = PR_TELEMETRY_REQUEST_ERROR;
            name = "http.request.exception";
            sev = PR_SEVERITY_ERROR;
        } else {
            kind = PR_TELEMETRY_REQUEST_STOP;
            name = "http.request.stop";
        }
        break;
    default: return; /* attempts are seen through retries and the outcome */
    }
    pr_buf_init(&url);
    if (pr_telemetry_sanitize_url(&url, ev->url) || pr_buf_append(&url, "", 1)) {
        pr_buf_deinit(&url);
        return;
    }
    f[n++] = pr__telemetry_s("method", ev->method);
    f[n++] = pr__telemetry_s("url", url.data);
    f[n++] = pr__telemetry_i("attempt", ev->attempt);
    if (ev->kind != PR_HTTP_EVENT_START) {
        f[n++] = pr__telemetry_i("status", ev->status);
        f[n++] = pr__telemetry_s("error", ev->error ? pr_errname(ev->error) : "");
        f[n++] = pr__telemetry_i("duration_ms", ev->duration_ms);
    }
    if (ev->kind == PR_HTTP_EVENT_RETRY) {
        f[n++] = pr__telemetry_i("delay_ms", ev->delay_ms);
        f[n++] = pr__telemetry_s("reason", ev->reason);
    }
    pr__telemetry_emit(t, kind, name, sev, f, n);
    pr_buf_deinit(&url);
}

static const char *pr__telemetry_breaker_state(int s) {
    return s == PR_BREAKER_OPEN ? "open" : s == PR_BREAKER_HALF_OPEN ? "half_open" : "closed";
}

void pr_telemetry_breaker_hook(const char *name, int from, int to, void *user_data) {
    pr_telemetry_field f[3];
    f[0] = pr__telemetry_s("breaker", name);
    f[1] = pr__telemetry_s("from", pr__telemetry_breaker_state(from));
    f[2] = pr__telemetry_s("to", pr__telemetry_breaker_state(to));
    pr__telemetry_emit((pr_telemetry *)user_data, PR_TELEMETRY_BREAKER, "circuit.state_change",
                 to == PR_BREAKER_OPEN ? PR_SEVERITY_WARNING : PR_SEVERITY_INFO, f, 3);
}

void pr_telemetry_sse_hook(const pr_sse_reconnect *info, void *user_data) {
    pr_telemetry_field f[7];
    if (!info) return;
    f[0] = pr__telemetry_i("reconnects", info->reconnects);
    f[1] = pr__telemetry_i("failures", info->failures);
    f[2] = pr__telemetry_i("delay_ms", info->delay_ms);
    f[3] = pr__telemetry_s("reason", pr_errname(info->reason));
    f[4] = pr__telemetry_i("status", info->status);
    f[5] = pr__telemetry_s("detail", info->detail ? info->detail : "");
    f[6] = pr__telemetry_s("last_event_id", info->last_event_id ? info->last_event_id : "");
    pr__telemetry_emit((pr_telemetry *)user_data, PR_TELEMETRY_STREAM_RECONNECT, "sse.reconnect",
                 info->failures > 0 ? PR_SEVERITY_WARNING : PR_SEVERITY_INFO, f, 7);
}

static const char *pr__telemetry_queue_state(int s) {
    switch (s) {
    case PR_QUEUE_ACTIVE: return "active";
    case PR_QUEUE_PAUSED_RATE_LIMIT: return "paused_rate_limit";
    case PR_QUEUE_PAUSED_CAPACITY: return "paused_capacity";
    case PR_QUEUE_NONE: return "";
    default: return "unknown";
    }
}

void pr_telemetry_queue_hook(const pr_queue_change *change, void *user_data) {
    pr_telemetry_field f[4];
    if (!change) return;
    f[0] = pr__telemetry_s("request_id", change->request_id);
    f[1] = pr__telemetry_s("queue_state", pr__telemetry_queue_state(change->state));
    f[2] = pr__telemetry_s("queue_state_reason", change->reason);
    f[3] = pr__telemetry_s("old_queue_state", pr__telemetry_queue_state(change->old_state));
    pr__telemetry_emit((pr_telemetry *)user_data, PR_TELEMETRY_QUEUE_STATE, "queue.state_change", PR_SEVERITY_INFO, f, 4);
}

void pr_telemetry_rfuture_hook(const pr_rfuture_event *ev, void *user_data) {
    pr_telemetry_field f[14];
    size_t n = 0;
    int kind;
    if (!ev) return;
    kind = !ev->settled ? PR_TELEMETRY_FUTURE : ev->error ? PR_TELEMETRY_FUTURE_FAILED : PR_TELEMETRY_FUTURE_RESOLVED;
    f[n++] = pr__telemetry_s("request_id", ev->request_id);
    f[n++] = pr__telemetry_s("request_type", ev->request_type);
    f[n++] = pr__telemetry_i("iteration", ev->iteration);
    f[n].key = "elapsed_time";
    f[n].type = PR_TELEMETRY_DOUBLE;
    f[n].s = NULL;
    f[n].i = 0;
    f[n++].d = ev->elapsed_s;
    f[n++] = pr__telemetry_i("status_code", ev->status_code);
    if (ev->kind) {
        f[n++] = pr__telemetry_s("kind", ev->kind);
        f[n++] = pr__telemetry_b("should_retry", ev->should_retry);
        f[n++] = pr__telemetry_b("is_user_error", ev->is_user_error);
        f[n++] = pr__telemetry_i("bad_request_retries", ev->bad_request_retries);
        f[n++] = pr__telemetry_i("connection_error_retries", ev->connection_error_retries);
    }
    if (ev->detail) f[n++] = pr__telemetry_s("detail", ev->detail);
    if (ev->new_request_id) f[n++] = pr__telemetry_s("new_request_id", ev->new_request_id);
    if (ev->settled) f[n++] = pr__telemetry_s("error", ev->error ? pr_errname(ev->error) : "");
    pr__telemetry_emit((pr_telemetry *)user_data, kind, ev->name, ev->severity, f, n);
}

static const char *pr__telemetry_ds_state(int s) {
    switch (s) {
    case PR_DS_CONSUMER_CONNECTING: return "connecting";
    case PR_DS_CONSUMER_LIVE: return "live";
    case PR_DS_CONSUMER_UP_TO_DATE: return "up_to_date";
    case PR_DS_CONSUMER_CLOSED: return "closed";
    default: return "stopped";
    }
}

void pr_telemetry_ds_hook(const pr_ds_event *ev, void *user_data) {
    pr_telemetry *t = (pr_telemetry *)user_data;
    pr_telemetry_field f[8];
    pr_buf url;
    const char *name;
    int kind, sev = PR_SEVERITY_INFO;
    size_t n = 0;
    if (!t || !ev) return;
    switch (ev->kind) {
    case PR_DS_EVENT_REQUEST_START: kind = PR_TELEMETRY_REQUEST_START; name = "ds.request.start"; break;
    case PR_DS_EVENT_REQUEST_STOP: kind = PR_TELEMETRY_REQUEST_STOP; name = "ds.request.stop"; break;
    case PR_DS_EVENT_REQUEST_EXCEPTION:
        kind = PR_TELEMETRY_REQUEST_ERROR;
        name = "ds.request.exception";
        sev = PR_SEVERITY_ERROR;
        break;
    case PR_DS_EVENT_CONSUMER_BATCH: kind = PR_TELEMETRY_STREAM_BATCH; name = "ds.consumer.batch"; break;
    case PR_DS_EVENT_CONSUMER_RECONNECT:
        kind = PR_TELEMETRY_STREAM_RECONNECT;
        name = "ds.consumer.reconnect";
        sev = PR_SEVERITY_WARNING;
        break;
    case PR_DS_EVENT_CONSUMER_STATE:
        kind = PR_TELEMETRY_STREAM_STATE;
        name = "ds.consumer.state";
        if (ev->error) sev = PR_SEVERITY_WARNING;
        break;
    case PR_DS_EVENT_PRODUCER_BATCH: kind = PR_TELEMETRY_STREAM_BATCH; name = "ds.producer.batch"; break;
    case PR_DS_EVENT_PRODUCER_DUPLICATE: kind = PR_TELEMETRY_STREAM_DUPLICATE; name = "ds.producer.duplicate"; break;
    case PR_DS_EVENT_AUTH_REFRESH: /* fresh credentials, and the request again */
        kind = PR_TELEMETRY_RETRY;
        name = "ds.auth.refresh";
        sev = PR_SEVERITY_WARNING;
        break;
    default: return;
    }
    pr_buf_init(&url);
    if (pr_telemetry_sanitize_url(&url, ev->url ? ev->url : "") || pr_buf_append(&url, "", 1)) {
        pr_buf_deinit(&url);
        return;
    }
    f[n++] = pr__telemetry_s("url", url.data);
    switch (ev->kind) {
    case PR_DS_EVENT_REQUEST_START:
    case PR_DS_EVENT_REQUEST_STOP:
    case PR_DS_EVENT_REQUEST_EXCEPTION:
        f[n++] = pr__telemetry_s("op", ev->op);
        f[n++] = pr__telemetry_s("method", ev->method);
        if (ev->kind == PR_DS_EVENT_REQUEST_START) break;
        f[n++] = pr__telemetry_i("status", ev->status);
        f[n++] = pr__telemetry_i("duration_ms", ev->duration_ms);
        if (ev->kind == PR_DS_EVENT_REQUEST_STOP) break;
        f[n++] = pr__telemetry_s("error", pr_errname(ev->error));
        f[n++] = pr__telemetry_s("detail", ev->err ? ev->err->msg : "");
        break;
    case PR_DS_EVENT_CONSUMER_BATCH:
        f[n++] = pr__telemetry_i("items", (int64_t)ev->items);
        f[n++] = pr__telemetry_i("bytes", (int64_t)ev->bytes);
        f[n++] = pr__telemetry_s("offset", ev->offset);
        break;
    case PR_DS_EVENT_CONSUMER_RECONNECT:
        f[n++] = pr__telemetry_i("attempt", ev->attempt);
        f[n++] = pr__telemetry_i("delay_ms", ev->delay_ms);
        f[n++] = pr__telemetry_s("reason", pr_errname(ev->error));
        f[n++] = pr__telemetry_s("detail", ev->err ? ev->err->msg : "");
        f[n++] = pr__telemetry_s("offset", ev->offset);
        break;
    case PR_DS_EVENT_AUTH_REFRESH:
        f[n++] = pr__telemetry_s("op", ev->op);
        f[n++] = pr__telemetry_s("method", ev->method);
        f[n++] = pr__telemetry_i("status", ev->status);
        f[n++] = pr__telemetry_i("attempt", ev->attempt);
        break;
    case PR_DS_EVENT_CONSUMER_STATE:
        f[n++] = pr__telemetry_s("state", pr__telemetry_ds_state(ev->state));
        f[n++] = pr__telemetry_s("offset", ev->offset);
        f[n++] = pr__telemetry_s("detail", ev->err ? ev->err->msg : "");
        break;
    default: /* the producer's */
        f[n++] = pr__telemetry_s("producer_id", ev->producer_id);
        f[n++] = pr__telemetry_i("epoch", ev->epoch);
        f[n++] = pr__telemetry_i("seq", ev->seq);
        f[n++] = pr__telemetry_i("items", (int64_t)ev->items);
        f[n++] = pr__telemetry_i("bytes", (int64_t)ev->bytes);
        f[n++] = pr__telemetry_i("duration_ms", ev->duration_ms);
        f[n++] = pr__telemetry_s("offset", ev->offset);
        break;
    }
    pr__telemetry_emit(t, kind, name, sev, f, n);
    pr_buf_deinit(&url);
}

/* ---- the reporter ---- */

enum { PR__TELEMETRY_REP_START = 1, PR__TELEMETRY_REP_END, PR__TELEMETRY_REP_GENERIC, PR__TELEMETRY_REP_EXCEPTION };

/* One queued event; its strings follow the struct. */
typedef struct pr__telemetry_rep_ev {
    int kind, severity;
    int64_t index;           /* event_session_index */
    int64_t wall_us;         /* timestamp */
    uint64_t id[2];          /* event_id (UUID4 bits) */
    int64_t duration_ms;     /* SESSION_END */
    const char *name, *data; /* GENERIC_EVENT: event_name, event_data (JSON) */
    const char *etype, *emsg, *trace; /* UNHANDLED_EXCEPTION */
    size_t size;             /* of the whole allocation */
} pr__telemetry_rep_ev;

struct pr_reporter {
    pr_reporter_opts o;      /* resolved; strings point at the copies */
    pr_url url;
    pr_http_client *own;     /* o.client, when it is the reporter's own */
    char *session, *platform, *version;
    size_t session_n, platform_n, version_n;
    int sessionless, ended;
    pr__telemetry_rep_ev **q;          /* ring of queue_max */
    size_t qhead, qlen;
    uint64_t qbytes;         /* the size of every event in q */
    int64_t next_index, start_ms;
    long pushed, flushed, dropped;
    pr_chan *kick;           /* flush requests (capacity 1) */
    pr_retry_policy send_retry; /* a batch's resends: max_send_retries, send_backoff, hooks */
    pr_task *task;           /* joined by stop */
    int running;             /* the task has not ended */
    pr__sync_fifo drained;        /* tasks waiting for flushed to move */
    int stopping, stopped;
};

static char pr__telemetry_rep_uuid[37];
static pid_t pr__telemetry_rep_uuid_pid;

/* UUID4 text of two random words. */
static void pr__telemetry_rep_uuid_text(char *out, const uint64_t *w) {
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    int i, k = 0;
    for (i = 0; i < 8; i++) {
        b[i] = (unsigned char)(w[0] >> (8 * i));
        b[8 + i] = (unsigned char)(w[1] >> (8 * i));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[k++] = '-';
        out[k++] = hex[b[i] >> 4];
        out[k++] = hex[b[i] & 15];
    }
    out[k] = 0;
}

/* One UUID per process, made anew after a fork. */
static const char *pr__telemetry_rep_process_uuid(void) {
    if (!pr__telemetry_rep_uuid[0] || pr__telemetry_rep_uuid_pid != getpid()) {
        uint64_t w[2];
        w[0] = pr__random_u64();
        w[1] = pr__random_u64();
        pr__telemetry_rep_uuid_text(pr__telemetry_rep_uuid, w);
        pr__telemetry_rep_uuid_pid = getpid();
    }
    return pr__telemetry_rep_uuid;
}

static int64_t pr__telemetry_rep_wall_us(const pr_reporter *r) {
    struct timespec ts;
    if (r->o.hooks.wall_clock_ms) return r->o.hooks.wall_clock_ms(r->o.hooks.user_data) * 1000;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Is telemetry on, by the switch and the environment? */
static int pr__telemetry_rep_enabled(const pr_reporter_opts *o) {
    const char *v;
    if (o->enabled) return o->enabled > 0;
    v = getenv(o->env_var ? o->env_var : "PRISTINE_TELEMETRY");
    if (!v) return 1;
    {
        pr_slice s = pr_slice_trim(pr_slice_cstr(v));
        return pr_slice_ieq(s, pr_slice_cstr("1")) || pr_slice_ieq(s, pr_slice_cstr("true")) ||
               pr_slice_ieq(s, pr_slice_cstr("yes")) || pr_slice_ieq(s, pr_slice_cstr("on"));
    }
}

/* A new event with room for its strings (each NUL-terminated, copied). */
static pr__telemetry_rep_ev *pr__telemetry_rep_ev_new(pr_reporter *r, int kind, int severity, const char *const *strs, size_t nstr) {
    size_t need = sizeof(pr__telemetry_rep_ev), i, len[5];
    pr__telemetry_rep_ev *e;
    char *p;
    const char **dst[5];
    for (i = 0; i < nstr; i++) need += (len[i] = strs[i] ? strlen(strs[i]) + 1 : 0);
    if (!(e = (pr__telemetry_rep_ev *)pr__alloc(need))) return NULL;
    memset(e, 0, sizeof *e);
    e->size = need;
    e->kind = kind;
    e->severity = severity;
    e->wall_us = pr__telemetry_rep_wall_us(r);
    e->id[0] = pr__random_u64();
    e->id[1] = pr__random_u64();
    dst[0] = &e->name;
    dst[1] = &e->data;
    dst[2] = &e->etype;
    dst[3] = &e->emsg;
    dst[4] = &e->trace;
    p = (char *)(e + 1);
    for (i = 0; i < nstr; i++) {
        if (!strs[i]) continue;
        memcpy(p, strs[i], len[i]);
        *dst[i] = p;
        p += len[i];
    }
    return e;
}

static void pr__telemetry_rep_ev_free(pr__telemetry_rep_ev *e) {
    if (e) pr__free(e, e->size);
}

/* Ask the task to flush (never blocks). */
static void pr__telemetry_rep_kick(pr_reporter *r) {
    int one = 1;
    pr_chan_send(r->kick, &one, 0); /* full: a flush is asked for already */
}

/* Queue n events all or nothing; they get consecutive indices. */
static int pr__telemetry_rep_push(pr_reporter *r, pr__telemetry_rep_ev **evs, size_t n) {
    uint64_t bytes = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        if (!evs[i]) goto drop;
        bytes += evs[i]->size;
    }
    if (r->stopped) goto drop;
    if (r->qlen + n > (size_t)r->o.queue_max || r->qbytes + bytes > (uint64_t)r->o.queue_max_bytes) {
        PR__LOG(PR_LEVEL_WARN, "telemetry", "queue full (%d events, %lld bytes): dropping %lu", r->o.queue_max,
                (long long)r->o.queue_max_bytes, (unsigned long)n);
        goto drop;
    }
    r->qbytes += bytes;
    for (i = 0; i < n; i++) {
        evs[i]->index = r->next_index++;
        r->q[(r->qhead + r->qlen) % (size_t)r->o.queue_max] = evs[i];
        r->qlen++;
    }
    r->pushed += (long)n;
    if (r->qlen >= (size_t)r->o.batch_size) pr__telemetry_rep_kick(r);
    return 1;
drop:
    for (i = 0; i < n; i++) pr__telemetry_rep_ev_free(evs[i]);
    r->dropped += (long)n;
    return 0;
}

static const char *pr__telemetry_rep_severity(int s) {
    switch (s) {
    case PR_SEVERITY_DEBUG: return "DEBUG";
    case PR_SEVERITY_WARNING: return "WARNING";
    case PR_SEVERITY_ERROR: return "ERROR";
    case PR_SEVERITY_CRITICAL: return "CRITICAL";
    default: return "INFO";
    }
}

/* "2026-01-02T03:04:05.678901Z" */
static void pr__telemetry_rep_timestamp(char *out, size_t cap, int64_t wall_us) {
    time_t t = (time_t)(wall_us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (long)(((wall_us % 1000000) + 1000000) % 1000000));
}

/* A batch: the envelope and events [from, from + n) of the queue. */
static int pr__telemetry_rep_batch(pr_reporter *r, pr_buf *b, size_t n) {
    pr_json_writer w;
    size_t i;
    char ts[96], id[37];
    pr_buf_clear(b);
    pr_json_writer_init(&w, b);
    pr_json_begin_object(&w);
    pr_json_key(&w, "session_id", 10);
    pr_json_write_string(&w, r->session, strlen(r->session));
    pr_json_key(&w, "platform", 8);
    pr_json_write_string(&w, r->platform, strlen(r->platform));
    pr_json_key(&w, "sdk_version", 11);
    pr_json_write_string(&w, r->version, strlen(r->version));
    pr_json_key(&w, "process_uuid", 12);
    pr_json_write_string(&w, pr__telemetry_rep_process_uuid(), 36);
    pr_json_key(&w, "events", 6);
    pr_json_begin_array(&w);
    for (i = 0; i < n; i++) {
        const pr__telemetry_rep_ev *e = r->q[(r->qhead + i) % (size_t)r->o.queue_max];
        static const char *const kinds[] = { "", "SESSION_START", "SESSION_END", "GENERIC_EVENT", "UNHANDLED_EXCEPTION" };
        pr_json_begin_object(&w);
        pr_json_key(&w, "event", 5);
        pr_json_write_string(&w, kinds[e->kind], strlen(kinds[e->kind]));
        pr__telemetry_rep_uuid_text(id, e->id);
        pr_json_key(&w, "event_id", 8);
        pr_json_write_string(&w, id, 36);
        pr_json_key(&w, "event_session_index", 19);
        pr_json_write_int(&w, e->index);
        pr_json_key(&w, "severity", 8);
        pr_json_write_string(&w, pr__telemetry_rep_severity(e->severity), strlen(pr__telemetry_rep_severity(e->severity)));
        pr__telemetry_rep_timestamp(ts, sizeof ts, e->wall_us);
        pr_json_key(&w, "timestamp", 9);
        pr_json_write_string(&w, ts, strlen(ts));
        if (e->kind == PR__TELEMETRY_REP_GENERIC) {
            pr_json_doc *d = NULL;
            pr_json_key(&w, "event_name", 10);
            pr_json_write_string(&w, e->name, strlen(e->name));
            pr_json_key(&w, "event_data", 10);
            if (e->data && pr_json_parse(&d, e->data, strlen(e->data), NULL, NULL) == PR_OK)
                pr_json_write_value(&w, pr_json_root(d));
            else {
                pr_json_begin_object(&w);
                pr_json_end_object(&w);
            }
            pr_json_doc_destroy(d);
        } else if (e->kind == PR__TELEMETRY_REP_EXCEPTION) {
            pr_json_key(&w, "error_type", 10);
            pr_json_write_string(&w, e->etype, strlen(e->etype));
            pr_json_key(&w, "error_message", 13);
            pr_json_write_string(&w, e->emsg ? e->emsg : "", e->emsg ? strlen(e->emsg) : 0);
            if (e->trace) {
                pr_json_key(&w, "traceback", 9);
                pr_json_write_string(&w, e->trace, strlen(e->trace));
            }
        } else if (e->kind == PR__TELEMETRY_REP_END) {
            char dur[96];
            int64_t ms = e->duration_ms;
            if (ms % 1000) /* Python's timedelta text: the fraction only when there is one */
                snprintf(dur, sizeof dur, "%lld:%02d:%02d.%06d", (long long)(ms / 3600000), (int)(ms / 60000 % 60),
                         (int)(ms / 1000 % 60), (int)(ms % 1000) * 1000);
            else
                snprintf(dur, sizeof dur, "%lld:%02d:%02d", (long long)(ms / 3600000), (int)(ms / 60000 % 60),
                         (int)(ms / 1000 % 60));
            pr_json_key(&w, "duration", 8);
            pr_json_write_string(&w, dur, strlen(dur));
        }
        pr_json_end_object(&w);
    }
    pr_json_end_array(&w);
    pr_json_end_object(&w);
    return pr_json_writer_finish(&w);
}

/* The reporter's classifier: a 2xx answer is done, cancellation stops,
   anything else (no answer, another status) is worth sending again. */
static int pr__telemetry_rep_classify(int outcome, int64_t *after_ms, void *user_data) {
    PR__UNUSED(after_ms);
    PR__UNUSED(user_data);
    if (outcome == PR_OK) return PR_RETRY_OK;
    return outcome == PR_ECANCELED ? PR_RETRY_FAIL : PR_RETRY_AGAIN;
}

/* POST one batch on the shared retry loop: max_send_retries resends,
   send_backoff between them, through the hooks. */
static int pr__telemetry_rep_send(pr_reporter *r, const pr_buf *b) {
    static const char *const h[] = { "Content-Type: application/json", NULL };
    pr_retry st;
    int rc, status;
    if ((rc = pr_retry_begin(&st, &r->send_retry)) != PR_OK) return rc;
    do {
        pr_http_request req;
        pr_http_result res;
        memset(&req, 0, sizeof req);
        req.method = "POST";
        req.url = &r->url;
        req.headers = h;
        req.body = b->data;
        req.body_len = b->len;
        req.retry = &pr__retry_off;
        memset(&res, 0, sizeof res);
        rc = pr_http_client_fetch(r->o.client, &res, &req, NULL, pr_deadline_in(r->o.send_timeout_ms));
        status = res.status;
        pr_http_result_deinit(&res);
        if (rc == PR_OK && (status < 200 || status > 299)) rc = PR_EHTTP;
    } while (pr_retry_next(&st, &rc, PR_FOREVER));
    if (rc != PR_OK && rc != PR_ECANCELED)
        PR__LOG(PR_LEVEL_WARN, "telemetry", "a batch could not be sent (%s, status %d): dropped", pr_errname(rc),
                status);
    return rc;
}

/* Send everything queued, in batches. */
static int pr__telemetry_rep_flush_all(pr_reporter *r) {
    pr_buf b;
    int rc = PR_OK;
    pr_buf_init(&b);
    while (r->qlen && rc != PR_ECANCELED) {
        size_t n = PR__MIN(r->qlen, (size_t)r->o.batch_size), i;
        int sent;
        if ((rc = pr__telemetry_rep_batch(r, &b, n)) != PR_OK) break;
        sent = pr__telemetry_rep_send(r, &b);
        rc = sent == PR_ECANCELED ? PR_ECANCELED : PR_OK;
        for (i = 0; i < n; i++) {
            pr__telemetry_rep_ev *e = r->q[(r->qhead + i) % (size_t)r->o.queue_max];
            r->qbytes -= e->size;
            pr__telemetry_rep_ev_free(e);
        }
        r->qhead = (r->qhead + n) % (size_t)r->o.queue_max;
        r->qlen -= n;
        r->flushed += (long)n; /* sent or given up on: a drain never hangs on a dead endpoint */
        if (sent) r->dropped += (long)n;
        pr__sync_fifo_wake_all(&r->drained, 0);
    }
    pr_buf_deinit(&b);
    return rc;
}

static int pr__telemetry_rep_task(void *arg) {
    pr_reporter *r = (pr_reporter *)arg;
    for (;;) {
        int one, rc = pr_chan_recv(r->kick, &one, pr_deadline_in(r->o.flush_interval_ms));
        if (rc == PR_ECANCELED || rc == PR_ECLOSED) break;
        if (pr__telemetry_rep_flush_all(r) == PR_ECANCELED) break;
        if (r->stopping && !r->qlen) break;
    }
    r->running = 0;
    pr__sync_fifo_wake_all(&r->drained, 0);
    return 0;
}

static void pr__telemetry_rep_free(pr_reporter *r) {
    while (r->qlen) {
        pr__telemetry_rep_ev_free(r->q[r->qhead]);
        r->qhead = (r->qhead + 1) % (size_t)r->o.queue_max;
        r->qlen--;
    }
    pr__free(r->q, (size_t)r->o.queue_max * sizeof *r->q);
    pr_chan_destroy(r->kick);
    pr_http_client_destroy(r->own);
    pr_url_deinit(&r->url);
    pr__free(r->session, r->session_n);
    pr__free(r->platform, r->platform_n);
    pr__free(r->version, r->version_n);
    pr__free(r, sizeof *r);
}

int pr_reporter_start(pr_reporter **out, const pr_reporter_opts *opts, pr_err_info *err) {
    static const pr_backoff tel = PR_BACKOFF_TELEMETRY;
    pr_reporter *r;
    struct utsname un;
    char sess[64];
    int rc = PR_OK;
    memset(&un, 0, sizeof un);
    if (err) memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out || !opts || !opts->url) return pr__err_set(err, PR_EINVAL, 0, "reporter: %s", "out and opts->url are required");
    if (opts->batch_size < 0 || opts->flush_interval_ms < 0 || opts->queue_max < 0 || opts->queue_max_bytes < 0 ||
        opts->send_timeout_ms < 0 || opts->max_send_retries < PR_RETRY_OFF || opts->flush_timeout_ms < 0)
        return pr__err_set(err, PR_EINVAL, 0, "reporter: %s", "a negative limit or timeout");
    if (!pr__telemetry_rep_enabled(opts)) return PR_OK;
    if (!(r = (pr_reporter *)pr__calloc(1, sizeof *r))) return pr__err_set(err, PR_ENOMEM, 0, "reporter: %s", "out of memory");
    r->o = *opts;
    r->o.batch_size = PR__DEF(r->o.batch_size, 100);
    r->o.flush_interval_ms = PR__DEF(r->o.flush_interval_ms, 10000);
    r->o.queue_max = PR__DEF(r->o.queue_max, 10000);
    r->o.queue_max_bytes = PR__DEF(r->o.queue_max_bytes, (int64_t)8 << 20);
    r->o.send_timeout_ms = PR__DEF(r->o.send_timeout_ms, 5000);
    r->o.max_send_retries = PR__DEF(r->o.max_send_retries, 3);
    r->o.flush_timeout_ms = PR__DEF(r->o.flush_timeout_ms, 30000);
    if (!r->o.send_backoff.base_ms) r->o.send_backoff = tel;
    r->send_retry.max_retries = r->o.max_send_retries;
    r->send_retry.backoff = r->o.send_backoff;
    r->send_retry.classify = pr__telemetry_rep_classify;
    r->send_retry.hooks = r->o.hooks;
    r->start_ms = pr_now();
    if (pr_backoff_check(&r->o.send_backoff) != PR_OK)
        rc = pr__err_set(err, PR_EINVAL, 0, "reporter: %s", "invalid send_backoff");
    else if (pr_url_parse(&r->url, opts->url, strlen(opts->url), err) != PR_OK)
        rc = PR_EINVAL;
    if (!rc) rc = pr__session_client(opts->client, &opts->tls, &r->o.client, &r->own, "telemetry reporter", err);
    memset(&r->o.tls, 0, sizeof r->o.tls); /* the own client has copied what it needs */
    if (!rc && !(r->q = (pr__telemetry_rep_ev **)pr__calloc((size_t)r->o.queue_max, sizeof *r->q))) rc = PR_ENOMEM;
    if (!rc && pr_chan_create(&r->kick, sizeof(int), 1) != PR_OK) rc = PR_ENOMEM;
    if (!rc) {
        r->sessionless = !opts->session_id;
        if (r->sessionless) {
            uint64_t w[2];
            char u[37];
            w[0] = pr__random_u64();
            w[1] = pr__random_u64();
            pr__telemetry_rep_uuid_text(u, w);
            snprintf(sess, sizeof sess, "sessionless-%s", u);
        }
        if (!(r->session = pr__strdup(r->sessionless ? sess : opts->session_id, &r->session_n))) rc = PR_ENOMEM;
    }
    if (!rc && !opts->platform && uname(&un) != 0) strcpy(un.sysname, "unknown");
    if (!rc && !(r->platform = pr__strdup(opts->platform ? opts->platform : un.sysname, &r->platform_n)))
        rc = PR_ENOMEM;
    if (!rc && !(r->version = pr__strdup(opts->sdk_version ? opts->sdk_version : PRISTINE_VERSION, &r->version_n)))
        rc = PR_ENOMEM;
    r->o.url = r->o.session_id = r->o.platform = r->o.sdk_version = r->o.env_var = NULL;
    if (!rc && !r->sessionless) {
        pr__telemetry_rep_ev *e = pr__telemetry_rep_ev_new(r, PR__TELEMETRY_REP_START, PR_SEVERITY_INFO, NULL, 0);
        if (!pr__telemetry_rep_push(r, &e, 1)) rc = PR_ENOMEM;
    }
    if (!rc) rc = pr_go(&r->task, pr__telemetry_rep_task, r, NULL);
    if (rc) {
        if (!err || err->code != rc) pr__err_set(err, rc, 0, "reporter: %s", pr_strerror(rc));
        pr__telemetry_rep_free(r);
        return rc;
    }
    r->running = 1;
    *out = r;
    return PR_OK;
}

int pr_reporter_log(pr_reporter *r, const char *name, const char *data, int severity) {
    const char *strs[2];
    pr__telemetry_rep_ev *e;
    if (!r || !name) return 0;
    strs[0] = name;
    strs[1] = data;
    e = pr__telemetry_rep_ev_new(r, PR__TELEMETRY_REP_GENERIC, severity, strs, 2);
    return pr__telemetry_rep_push(r, &e, 1);
}

/* event_data from fields. */
static int pr__telemetry_rep_fields_json(pr_buf *b, const pr_telemetry_field *f, size_t n) {
    pr_json_writer w;
    size_t i;
    pr_json_writer_init(&w, b);
    pr_json_begin_object(&w);
    for (i = 0; i < n; i++) {
        pr_json_key(&w, f[i].key, strlen(f[i].key));
        switch (f[i].type) {
        case PR_TELEMETRY_INT: pr_json_write_int(&w, f[i].i); break;
        case PR_TELEMETRY_DOUBLE: pr_json_write_double(&w, f[i].d); break;
        case PR_TELEMETRY_BOOL: pr_json_write_bool(&w, f[i].i != 0); break;
        default: pr_json_write_string(&w, f[i].s ? f[i].s : "", f[i].s ? strlen(f[i].s) : 0); break;
        }
    }
    pr_json_end_object(&w);
    return pr_json_writer_finish(&w) == PR_OK && pr_buf_append(b, "", 1) == PR_OK ? PR_OK : PR_ENOMEM;
}

int pr_reporter_log_fields(pr_reporter *r, const char *name, const pr_telemetry_field *fields, size_t n,
                           int severity) {
    const char *strs[2];
    pr__telemetry_rep_ev *e;
    pr_buf b;
    int ok;
    if (!r || !name || (n && !fields)) return 0;
    pr_buf_init(&b);
    if (pr__telemetry_rep_fields_json(&b, fields, n) != PR_OK) {
        pr_buf_deinit(&b);
        r->dropped++;
        return 0;
    }
    strs[0] = name;
    strs[1] = b.data;
    e = pr__telemetry_rep_ev_new(r, PR__TELEMETRY_REP_GENERIC, severity, strs, 2);
    ok = pr__telemetry_rep_push(r, &e, 1);
    pr_buf_deinit(&b);
    return ok;
}

static void pr__telemetry_forward(pr_telemetry *t, const pr_telemetry_event *ev) {
    char name[96];
    int sev = ev->kind == PR_TELEMETRY_REQUEST_ERROR || ev->kind == PR_TELEMETRY_FUTURE_FAILED ? PR_SEVERITY_ERROR
                                                                                             : PR_SEVERITY_INFO;
    snprintf(name, sizeof name, "pristine.%s", ev->name);
    pr_reporter_log_fields(t->o.reporter, name, ev->fields, ev->nfields, sev);
}

int pr_reporter_is_user_error(const pr_reporter_error *e) {
    const pr_reporter_error *seen[16];
    int n = 0, i;
    while (e && n < 16) {
        for (i = 0; i < n; i++)
            if (seen[i] == e) return 0; /* a cycle */
        seen[n++] = e;
        if (e->category == PR_CATEGORY_USER) return 1;
        if (e->status_code >= 400 && e->status_code < 500 && e->status_code != 408 && e->status_code != 410 &&
            e->status_code != 429)
            return 1;
        e = e->cause;
    }
    return 0;
}

/* The event for an error: user_error or UNHANDLED_EXCEPTION. */
static pr__telemetry_rep_ev *pr__telemetry_rep_error_ev(pr_reporter *r, const pr_reporter_error *e, int severity) {
    const char *type = e->type ? e->type : "Error";
    if (pr_reporter_is_user_error(e)) {
        pr_telemetry_field f[4];
        const char *strs[2];
        pr__telemetry_rep_ev *ev;
        size_t n = 0;
        pr_buf b;
        const pr_reporter_error *s = e;
        /* the status of the error, or of the cause that made it a user error */
        while (s && !s->status_code && s->cause) s = s->cause;
        f[n++] = pr__telemetry_s("error_type", type);
        if (e->message && *e->message) f[n++] = pr__telemetry_s("message", e->message);
        if (s && s->status_code) f[n++] = pr__telemetry_i("status_code", s->status_code);
        if (e->body) f[n++] = pr__telemetry_s("body", e->body);
        pr_buf_init(&b);
        if (pr__telemetry_rep_fields_json(&b, f, n) != PR_OK) {
            pr_buf_deinit(&b);
            return NULL;
        }
        strs[0] = "user_error";
        strs[1] = b.data;
        ev = pr__telemetry_rep_ev_new(r, PR__TELEMETRY_REP_GENERIC, PR_SEVERITY_WARNING, strs, 2);
        pr_buf_deinit(&b);
        return ev;
    } else {
        const char *strs[5];
        strs[0] = NULL;
        strs[1] = NULL;
        strs[2] = type;
        strs[3] = e->message ? e->message : "";
        strs[4] = e->traceback;
        return pr__telemetry_rep_ev_new(r, PR__TELEMETRY_REP_EXCEPTION, severity, strs, 5);
    }
}

int pr_reporter_log_exception(pr_reporter *r, const pr_reporter_error *e, int severity) {
    pr__telemetry_rep_ev *ev;
    int ok;
    if (!r || !e) return 0;
    ev = pr__telemetry_rep_error_ev(r, e, severity);
    ok = pr__telemetry_rep_push(r, &ev, 1);
    if (ok) pr__telemetry_rep_kick(r);
    return ok;
}

/* Wait until flushed reaches target (or the task is gone). */
static int pr__telemetry_rep_wait(pr_reporter *r, long target, int64_t deadline) {
    deadline = pr_deadline_min(deadline, pr_deadline_in(r->o.flush_timeout_ms));
    while (r->flushed < target && r->running) {
        pr__sync_waiter me;
        int rc;
        memset(&me, 0, sizeof me);
        rc = pr__sync_fifo_park(&r->drained, &me, deadline);
        if (rc == PR_ETIMEDOUT || rc == PR_ECANCELED) return rc;
    }
    return r->flushed >= target ? PR_OK : PR_ETIMEDOUT;
}

int pr_reporter_flush(pr_reporter *r, int64_t deadline) {
    if (!r) return PR_EINVAL;
    pr__telemetry_rep_kick(r);
    return pr__telemetry_rep_wait(r, r->pushed, deadline);
}

static pr__telemetry_rep_ev *pr__telemetry_rep_end_ev(pr_reporter *r) {
    pr__telemetry_rep_ev *e = pr__telemetry_rep_ev_new(r, PR__TELEMETRY_REP_END, PR_SEVERITY_INFO, NULL, 0);
    if (e) e->duration_ms = pr_now() - r->start_ms;
    return e;
}

int pr_reporter_log_fatal(pr_reporter *r, const pr_reporter_error *e, int severity, int64_t deadline) {
    pr__telemetry_rep_ev *evs[2];
    size_t n = 1;
    int rc;
    if (!r || !e) return PR_EINVAL;
    evs[0] = pr__telemetry_rep_error_ev(r, e, severity);
    if (!r->sessionless && !r->ended) evs[n++] = pr__telemetry_rep_end_ev(r);
    if (!pr__telemetry_rep_push(r, evs, n)) return PR_ELIMIT;
    if (n == 2) r->ended = 1;
    pr__telemetry_rep_kick(r);
    rc = pr__telemetry_rep_wait(r, r->pushed, deadline);
    if (rc == PR_OK) PR__LOG(PR_LEVEL_INFO, "telemetry", "exception logged for session %s", r->session);
    return rc;
}

int pr_reporter_stop(pr_reporter *r, int64_t deadline) {
    int rc;
    if (!r || r->stopped) return PR_OK;
    if (!r->sessionless && !r->ended) {
        pr__telemetry_rep_ev *e = pr__telemetry_rep_end_ev(r);
        if (pr__telemetry_rep_push(r, &e, 1)) r->ended = 1;
    }
    r->stopping = 1;
    pr__telemetry_rep_kick(r);
    rc = pr__telemetry_rep_wait(r, r->pushed, deadline);
    if (r->running) pr_cancel(r->task); /* the flush timed out: give up on the rest */
    /* it ends promptly once cancelled or drained; a cancelled caller cancels it */
    if (pr_join(r->task, NULL, PR_FOREVER) != PR_OK) pr__sched_join_cleanup(r->task);
    r->stopped = 1;
    return rc;
}

void pr_reporter_destroy(pr_reporter *r) {
    if (!r) return;
    if (!r->stopped) pr__sched_join_cleanup(r->task); /* from a cancelled task too */
    pr__telemetry_rep_free(r);
}

void pr_reporter_counts(const pr_reporter *r, long *pushed, long *flushed, long *dropped) {
    if (pushed) *pushed = r ? r->pushed : 0;
    if (flushed) *flushed = r ? r->flushed : 0;
    if (dropped) *dropped = r ? r->dropped : 0;
}

const char *pr_reporter_session_id(const pr_reporter *r) { return r ? r->session : ""; }
