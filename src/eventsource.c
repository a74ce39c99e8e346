// @pristine:module eventsource - the reconnecting Server-Sent Events stream (EventSource) over the HTTP client
// @pristine:public
/*
 * eventsource: the stream an application iterates.
 *
 *     pr_sse *s;
 *     pr_sse_event ev;
 *     int rc = pr_sse_open(&s, "https://api.example.com/v1/events", NULL, NULL, deadline);
 *     while (rc == PR_OK && (rc = pr_sse_next(s, &ev, deadline)) == PR_OK)
 *         printf("%.*s: %.*s\n", (int)ev.type_len, ev.type, (int)ev.data_len, ev.data);
 *     pr_sse_destroy(s);
 *
 * pr_sse_next suspends only the calling task. Underneath, the stream follows
 * the EventSource processing model of the WHATWG HTML standard, with the
 * two differences named here (whatwg_strict removes the first):
 *
 * - Opening. A connection opens only on a 200 (after redirects, which the
 *   stream's own client follows) whose Content-Type is text/event-stream
 *   (type and subtype in any case, parameters ignored).
 * - Final causes end the stream at once, at open or on any reconnect,
 *   with their own code and detail (err, pr_sse_last_error): 204 No
 *   Content (PR_ECLOSED: the server says stop); a status that is not
 *   retried (PR_EHTTP with it, and the message ends with the start of the
 *   answer's body, where an API says why: a bad key, an unknown model); a
 *   200 of another type (PR_EPROTO); more than 10 redirects (PR_EHTTP
 *   with the last 3xx); a response head over the client's limits
 *   (PR_EPROTO); a name
 *   that does not exist (PR_EDNS); a certificate that is not trusted or
 *   does not name the host, a peer that does not speak TLS, a refused
 *   client certificate (PR_ETLS); a bad URL, header or option (PR_EINVAL);
 *   https in a PRISTINE_NO_TLS build (PR_ENOTSUP). The standard lets a
 *   client fail the connection when retrying is known to be futile.
 * - Retried causes: a network error before a response (refused, reset, a
 *   connect or idle timeout, a temporary DNS failure, a connection cut
 *   during the TLS handshake) and the statuses 408, 409, 429 and 5xx.
 *   Difference 1: the standard fails the connection on every status but
 *   200; whatwg_strict does too (429 and 5xx included).
 * - Difference 2: pr_sse_open is bounded. It tries at most open_attempts
 *   (4) connections, waiting the backoff between them (1 s, 2 s, 4 s, each
 *   shortened by up to a quarter: tries at about 0, 1, 3 and 7 s; no
 *   reconnection time), or instead the wait the answer's Retry-After /
 *   retry-after-ms asks for (at most max_retry_ms). Then it returns the
 *   last try's cause: PR_EIO with its errno (ECONNREFUSED, ECONNRESET,
 *   ETIMEDOUT for a connect or idle timeout), PR_EHTTP with the status,
 *   and so on. When the next try would start after the deadline it
 *   returns that cause at once. PR_ETIMEDOUT means the caller's deadline
 *   passed, nothing else (a try was still running then).
 * - Once the stream has been open, a clean end of the body, a break in it,
 *   idle_timeout_ms of silence and every retried cause reconnect, without
 *   a bound unless max_failures sets one: after the stream's reconnection
 *   time (3000 ms until the server sends `retry:`, at most max_retry_ms),
 *   plus a backoff (1 s doubling to 30 s, each step shortened by up to a
 *   quarter) that takes its next step on every failed connection, and on
 *   every early end after the first: an end before the connection stayed
 *   up healthy_ms (60 s; LaunchDarkly's clients use the same). So a
 *   server that accepts and drops at once is met with a growing wait; a
 *   connection that stayed up that long resets the backoff. A retried
 *   status whose Retry-After / retry-after-ms asks for a wait gets exactly
 *   that wait (at most max_retry_ms) instead. No wait runs past the caller's
 *   deadline (then PR_ETIMEDOUT; the next call goes on). The failure count
 *   (max_failures, observer's failures) counts the connections since the
 *   last healthy one that did not open, or that ended within a second of
 *   opening before an event. The request is made again from the original
 *   URL with Last-Event-ID set to the stream's last-event-ID (no header
 *   while it is empty, or when it cannot travel in a header: see
 *   max_last_event_id); the partial block of the broken connection is
 *   dropped, so every event arrives complete, once, in order. A reconnect
 *   is not an error of pr_sse_next: observer.on_reconnect sees it
 *   (attempt, delay, reason).
 * - A request with a body, or a method other than GET, is sent again only
 *   when the server cannot have processed it, unless the options say it is
 *   repeatable: at open, after a refused connection, a DNS failure or a
 *   408, 429 or 503 (LLM APIs answer 429 to a first POST routinely); any
 *   other failure ends the open with it. Once its response began streaming
 *   it is never sent again: its end is PR_ECLOSED, a break that error.
 * - An over-long line or event is PR_ELIMIT once (the detail in
 *   pr_sse_last_error), then the stream goes on with the next event; with
 *   reconnect_on_limit it drops the connection and reconnects instead.
 *
 * Ids: ev.id is the event's own `id` (NULL when its block had none),
 * ev.last_id the stream's last-event-ID at dispatch (what a reconnect sends;
 * blocks with only `id:` move it too). ev.retry_ms is the block's own
 * `retry`, ev.stream_retry_ms the reconnection time in use at dispatch.
 *
 * One task reads a stream at a time. Cancelling that task ends a blocked
 * pr_sse_next with PR_ECANCELED (the stream stays usable); pr_sse_destroy
 * from another task of the thread ends it at once too and frees the stream
 * when that read has returned.
 *
 * Many streams: give each its task (pr_go) and let them share one
 * pr_http_client (opts.client). A quiet plaintext stream then costs about
 * 15 KiB of resident memory, its task stack's two touched pages included
 * (10,000 streams on one thread; over TLS about 36 KiB): the receive
 * buffer grows only while a stream outpaces it and shrinks back after.
 * Raise the open-file limit (RLIMIT_NOFILE) to the number of streams.
 */

/* A reconnecting event stream. Opaque; owned by the thread that opened it. */
typedef struct pr_sse pr_sse;

/* What observer.on_reconnect is told before the stream waits to connect
   again (the strings are valid during the callback only). */
typedef struct pr_sse_reconnect {
    long reconnects;            /* this reconnect's number: 1 for the first */
    int failures;               /* failed connections since the last healthy one (see max_failures) */
    int64_t delay_ms;           /* the wait before the next connection (a server's, or the
                                   reconnection time plus the backoff; before the stream first
                                   opened, the backoff alone) */
    int reason;                 /* PR_ECLOSED (the body ended), PR_EHTTP (a retried status),
                                   PR_ELIMIT (reconnect_on_limit), or the connection's error code
                                   (idle_timeout_ms of silence: PR_EIO, sys_errno ETIMEDOUT) */
    int status;                 /* the refused response's status, 0 if none */
    const char *detail;         /* why, in words */
    const char *last_event_id;  /* what the next request sends ("" = no Last-Event-ID) */
} pr_sse_reconnect;

/* What watches a stream from outside (telemetry's pr_telemetry_sse_hook,
   say), with a user_data of its own, apart from the options' callbacks. */
typedef struct pr_sse_observer {
    /* Called before the stream waits to connect again. NULL = none. */
    void (*on_reconnect)(const pr_sse_reconnect *info, void *user_data);
    void *user_data;            /* on_reconnect's argument */
} pr_sse_observer;

/* Options of pr_sse_open. Zero means the default; strings are copied. */
typedef struct pr_sse_stream_opts {
    pr_http_client *client;     /* NULL = one of its own (redirects followed, up to 10; tls below); else
                                   borrowed: it must outlive the stream, and its own settings apply */
    pr_tls_opts tls;            /* the own client's TLS settings (a private CA: tls.ca_file), copied
                                   into its options; all zero = the defaults. Must be all zero when
                                   client is set (PR_EINVAL): the borrowed client's apply */
    const char *method;         /* NULL = "GET" */
    const char *body;           /* request body (e.g. JSON for a POST stream); NULL = none */
    size_t body_len;
    int repeatable;             /* 1 = a request with a body or another method than GET may be sent
                                   again on any retry or reconnect; 0 = only before the stream opened,
                                   after a refused connection, a DNS failure, a 408, 429 or 503 */
    const char *const *headers; /* extra fields as "Name: value" strings, NULL-terminated; NULL = none */
    /* Called before every connection: append more fields as "Name: value\r\n"
       lines to out (a fresh token, say). A nonzero return fails the stream
       with that code. NULL = none. */
    int (*headers_fn)(pr_buf *out, void *user_data);
    void *user_data;            /* the argument of the options' own callbacks (headers_fn) */
    const char *last_event_id;  /* resume: sent on the first connection too; NULL = none */
    int64_t retry_ms;           /* 0 = 3000: the reconnection time until the server sends `retry:` */
    int64_t max_retry_ms;       /* 0 = 3600000 (an hour): the cap on every wait a server asks for
                                   (`retry:`, Retry-After, retry-after-ms) */
    pr_backoff backoff;         /* added to the reconnection time: one step more for each failed
                                   connection and each early end but the first since the last healthy
                                   one (healthy_ms); the whole wait between pr_sse_open's tries;
                                   base_ms 0 = 1 s doubling to 30 s, minus up to a quarter */
    int idle_timeout_ms;        /* 0 = 45000: silence on the connection (from its last byte, however
                                   often pr_sse_next is called meanwhile) after which it counts as
                                   dropped (servers send a comment every 15 s or so); < 0 = none */
    size_t max_last_event_id;   /* 0 = 4096: the longest last-event-ID sent as Last-Event-ID; a
                                   longer one, or one with a control byte, is not sent (a warning
                                   is logged) and the server decides where to resume */
    int max_failures;           /* 0 = unlimited; else failed connections (ones that did not open, or
                                   ended within a second without an event) since the last healthy one
                                   before the stream fails with the last one's error */
    int open_attempts;          /* 0 = 4: connections pr_sse_open tries before it returns the last
                                   one's cause (waits 1, 2, 4 s between them: the backoff); < 0 = no
                                   bound but the deadline */
    int healthy_ms;             /* 0 = 60000: a connection that stayed up this long resets the backoff
                                   and the failure count when it ends (a shorter one is an early end:
                                   see backoff); < 0 = any connection that did not end within a second
                                   without an event resets them */
    int whatwg_strict;          /* 1 = the standard's processing model exactly: every status but 200
                                   fails the stream (408, 409, 429 and 5xx too); a network error or
                                   the end of the body reconnects */
    int reconnect_on_limit;     /* 1 = PR_ELIMIT drops the connection and reconnects */
    pr_sse_decoder_opts decoder; /* line and event limits, raw bytes */
    pr_sse_observer observer;   /* reconnect notifications (telemetry); zero = none */
    pr_retry_hooks hooks;       /* the waits, their random numbers, the wall clock (tests) */
} pr_sse_stream_opts;

/* Open a stream: connect and check the response. A final cause returns at
   once; a retried one (a network error, 408, 409, 429, 5xx) is tried again,
   up to open_attempts connections in all (4: at about 0, 1, 3 and 7 s, or
   when the server's Retry-After says), then its cause is returned, also
   with PR_FOREVER. The rules are the module's (above).
   Params: out - receives the stream (NULL on failure); url - http or https
           (copied); opts - NULL = defaults; err - receives why the call
           failed (the status, the connection's errno, TLS or DNS detail;
           zeroed on success); NULL = not wanted; deadline - absolute ms for
           this call (the stream itself has no end).
   Returns: PR_OK; PR_ECLOSED (204: the server says do not connect);
            PR_EHTTP (a status that is not retried, or the last try's
            retried one; the status in err, and for the first the start of
            the answer's body in err.msg; more than 10 redirects, with
            the last 3xx); PR_EPROTO (not text/event-stream, or a response
            head over the client's limits); PR_EDNS (a name that does not exist, or the
            last try's resolver failure); PR_ETLS (certificate, hostname, a
            peer that does not speak TLS); PR_EIO (the last try's network
            error, err.sys_errno: ECONNREFUSED, ETIMEDOUT for a connect or
            idle timeout, ...); PR_ETIMEDOUT (the deadline passed while a
            try ran; the last finished try's cause in err); PR_ECANCELED;
            PR_EINVAL (a bad URL, header or option, tls with client);
            PR_ENOTSUP (https without TLS); PR_ENOMEM.
   Blocks: yes.
   Thread: owner.
   See: pr_sse_next, pr_sse_destroy. */
PRISTINE_API int pr_sse_open(pr_sse **out, const char *url, const pr_sse_stream_opts *opts, pr_err_info *err,
                             int64_t deadline);

/* The next event, reconnecting as needed.
   Params: s - the stream; ev - receives the event; its strings stay valid
           until the next call on s; deadline - absolute ms.
   Returns: PR_OK; PR_ETIMEDOUT (the deadline passed; nothing is lost, call
            again); PR_ECANCELED (the task was cancelled, or the stream is
            being destroyed); PR_ELIMIT (a line or event over its limit was
            dropped; call again for the next); PR_ECLOSED (the server sent
            204, or a stream that cannot be repeated ended); PR_EHTTP,
            PR_EPROTO, PR_EDNS, PR_ETLS or PR_EIO when the stream failed: a
            final cause on a reconnect, max_failures reached, or a break of
            a stream that cannot be repeated (then every later call returns
            it; PR_EIO with sys_errno ETIMEDOUT for an idle timeout, never
            PR_ETIMEDOUT; a limit that ends the stream, such as more than 10
            redirects, is PR_EHTTP or PR_EPROTO, never PR_ELIMIT);
            PR_EINVAL; PR_ENOMEM.
   Blocks: yes.
   Thread: owner.
   See: pr_sse_open, pr_sse_last_error. */
PRISTINE_API int pr_sse_next(pr_sse *s, pr_sse_event *ev, int64_t deadline);

/* Close the connection and free the stream. A task blocked in pr_sse_next
   on it returns PR_ECANCELED; the memory goes when it has. NULL is a no-op.
   Params: s - the stream.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_sse_open. */
PRISTINE_API void pr_sse_destroy(pr_sse *s);

/* The stream's last-event-ID: what the next connection sends.
   Params: s - the stream; len - receives its length (may be NULL).
   Returns: a NUL-terminated string, never NULL ("" = none), valid until
            the next call on s.
   Blocks: no.
   Thread: owner.
   See: pr_sse_event. */
PRISTINE_API const char *pr_sse_last_event_id(const pr_sse *s, size_t *len);

/* The reconnection time in use: the latest `retry:` of the stream, else
   the initial one, at most max_retry_ms.
   Params: s - the stream.
   Returns: milliseconds; -1 if s is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_sse_stream_opts. */
PRISTINE_API int64_t pr_sse_retry_ms(const pr_sse *s);

/* The current connection's status (0 while connecting).
   Params: s - the stream.
   Returns: the status or 0; PR_EINVAL if s is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_sse_header. */
PRISTINE_API int pr_sse_status(const pr_sse *s);

/* A field of the current connection's response head.
   Params: s - the stream; name - case-insensitive.
   Returns: the value (valid while that connection lasts) or NULL.
   Blocks: no.
   Thread: owner.
   See: pr_sse_status. */
PRISTINE_API const pr_slice *pr_sse_header(const pr_sse *s, const char *name);

/* How many times the stream has reconnected.
   Params: s - the stream.
   Returns: the count; 0 if s is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_sse_stream_opts. */
PRISTINE_API long pr_sse_reconnects(const pr_sse *s);

/* Why the last call failed, or the last reconnect happened.
   Params: s - the stream; out - receives the detail.
   Returns: PR_OK; PR_EINVAL.
   Blocks: no.
   Thread: owner.
   See: pr_sse_next. */
PRISTINE_API int pr_sse_last_error(const pr_sse *s, pr_err_info *out);

// @pristine:impl
#define PR__EVENTSOURCE_DEF_RETRY 3000
#define PR__EVENTSOURCE_DEF_MAX_RETRY 3600000
#define PR__EVENTSOURCE_DEF_IDLE 45000
#define PR__EVENTSOURCE_DEF_MAX_LEI 4096
#define PR__EVENTSOURCE_SHORT_MS 1000
#define PR__EVENTSOURCE_DEF_OPEN_ATTEMPTS 4
#define PR__EVENTSOURCE_DEF_HEALTHY 60000
#define PR__EVENTSOURCE_MAX_FIELDS 32

struct pr_sse {
    pr_http_client *client;
    int own_client;
    pr_url url;
    char *method;
    char *body;
    size_t body_len;
    int repeatable;
    pr_buf fixed;               /* the static extra fields, "Name: value\r\n" lines */
    pr_sse_stream_opts o;       /* resolved; the strings above are the copies */
    pr_sse_decoder *dec;
    pr_http_response *resp;     /* the open connection, or NULL */
    int status;
    int opened;                 /* a connection has opened once */
    int dirty;                  /* the decoder has bytes of a connection: reset it for the next */
    int delivered;              /* the current connection has delivered an event */
    int64_t opened_at;          /* when it opened */
    int failures;               /* failed connections since the last healthy one */
    int steps;                  /* backoff steps taken since the last healthy connection */
    int early;                  /* connections that opened, did not fail, and ended before healthy_ms */
    int reason;                 /* why the next connection is needed (0 = the first) */
    int64_t next_at;            /* when the next connection may start (0 = at once) */
    int64_t open_until;         /* pr_sse_open's deadline, while it runs */
    long reconnects;
    int final;                  /* sticky end: 0 while the stream lives */
    int destroyed;
    pr_task *reader;            /* the task inside pr_sse_next, if any */
    pr_err_info err;
};

/* Whether n bytes at p are all zero (an options struct left unset). */
static int pr__eventsource_zero(const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    while (n && !b[n - 1]) n--;
    return n == 0;
}

static const pr_backoff pr__eventsource_backoff = { PR_BACKOFF_EXPONENTIAL, PR_JITTER_DOWN, 1000, 30000, 0.25, 0.0, 0.0 };

static void pr__eventsource_drop(pr_sse *s) {
    pr_http_response_destroy(s->resp);
    s->resp = NULL;
    s->status = 0;
}

static void pr__eventsource_free(pr_sse *s) {
    pr__eventsource_drop(s);
    pr_sse_decoder_destroy(s->dec);
    if (s->own_client) pr_http_client_destroy(s->client);
    pr_url_deinit(&s->url);
    if (s->method) pr__free(s->method, strlen(s->method) + 1);
    if (s->body) pr__free(s->body, s->body_len + 1);
    pr_buf_deinit(&s->fixed);
    pr__free(s, sizeof *s);
}

/* The last-event-ID as it may travel in a header field: "" when there is
   none, or when it cannot (over max_last_event_id, or a control byte that
   a field value may not carry; *why then says which). */
static const char *pr__eventsource_lei(const pr_sse *s, size_t *len, const char **why) {
    const char *id = pr_sse_last_event_id(s, len);
    size_t i;
    *why = NULL;
    for (i = 0; i < *len && !*why; i++)
        if (((unsigned char)id[i] < 0x20 && id[i] != '\t') || id[i] == 0x7f) *why = "has a control byte";
    if (*len > s->o.max_last_event_id) *why = "is over max_last_event_id";
    if (!*why) return id;
    *len = 0;
    return "";
}

static int pr__eventsource_sleep(pr_sse *s, int64_t delay, int64_t until) {
    return pr__retry_hook_sleep(&s->o.hooks, delay, until);
}

static int64_t pr__eventsource_wall(pr_sse *s) {
    return s->o.hooks.wall_clock_ms ? s->o.hooks.wall_clock_ms(s->o.hooks.user_data) : pr__time_wall_ms();
}

/* The stream cannot go on: remember why, for this and every later call. */
static int pr__eventsource_fail(pr_sse *s, int code, int status, const char *fmt, const char *arg) {
    pr__err_set(&s->err, code, 0, fmt, arg ? arg : "");
    s->err.http_status = status;
    s->final = code;
    pr__eventsource_drop(s);
    return code;
}

/* Whether the current connection came to nothing: it ends within
   PR__EVENTSOURCE_SHORT_MS of opening without an event. */
static int pr__eventsource_futile(const pr_sse *s) { return !s->delivered && pr_now() - s->opened_at < PR__EVENTSOURCE_SHORT_MS; }

/* Whether the current connection, ending now, stayed up long enough to
   reset the backoff and the failure count (healthy_ms). */
static int pr__eventsource_healthy(const pr_sse *s) {
    if (s->o.healthy_ms < 0) return !pr__eventsource_futile(s);
    return pr_now() - s->opened_at >= s->o.healthy_ms;
}

/* A request that cannot be repeated may still go again when the server
   cannot have processed it: a refused connection, no address, 408, 429
   and 503 (only before its response ever began streaming). */
static int pr__eventsource_unprocessed(int reason, int status, const pr_err_info *cause) {
    if (reason == PR_EHTTP) return status == 408 || status == 429 || status == 503;
    return reason == PR_EDNS || (reason == PR_EIO && cause->sys_errno == ECONNREFUSED);
}

/* The stream ends with a cause whose detail is already in s->err. A
   limit that ends it (reconnect_on_limit or a body's framing limit up to
   max_failures) is PR_EPROTO: a final PR_ELIMIT would read as "call again". */
static int pr__eventsource_end(pr_sse *s, int code) {
    if (code == PR_ELIMIT) code = PR_EPROTO;
    s->err.code = code;
    s->final = code;
    pr__eventsource_drop(s);
    return code;
}

/* Plan the next connection after a failure (failed = a connection that did
   not open) or an end (failed = 0); min_ms is a server's hint (0 = none).
   Fails the stream when the request may not go again, or a bound is
   reached (open_attempts before the stream opened, max_failures). */
static int pr__eventsource_plan(pr_sse *s, int reason, int status, int failed, int64_t min_ms) {
    pr_sse_reconnect info;
    const char *why;
    size_t n;
    int64_t delay;
    pr_err_info last = s->err; /* the cause, with its errno / TLS / DNS detail */
    const char *detail = last.msg;
    int ended = !failed && s->resp;
    if (ended && pr__eventsource_healthy(s)) {
        s->failures = s->steps = s->early = 0;
    } else if (failed || pr__eventsource_futile(s)) {
        s->failures++;
        s->steps++;
    } else if (s->early++ > 0) { /* the first early end is free; from the second on the backoff grows */
        s->steps++;
    }
    pr__eventsource_drop(s);
    if (!s->repeatable && (s->opened || !pr__eventsource_unprocessed(reason, status, &last))) {
        if (reason == PR_ECLOSED) return pr__eventsource_fail(s, PR_ECLOSED, 0, "sse: %s", "the stream ended (a request that cannot be repeated)");
        s->err = last;
        s->err.http_status = status;
        return pr__eventsource_end(s, reason);
    }
    if (!s->opened && s->o.open_attempts > 0 && s->failures >= s->o.open_attempts) {
        pr__err_wrap(&s->err, reason, &last, "sse: %d connections tried at open; the last", s->failures);
        s->err.http_status = status;
        return pr__eventsource_end(s, reason);
    }
    if (s->o.max_failures > 0 && s->failures >= s->o.max_failures) {
        pr__err_wrap(&s->err, reason, &last, "sse: %d failed connections; the last", s->failures);
        s->err.http_status = status;
        return pr__eventsource_end(s, reason);
    }
    if (min_ms > 0) delay = PR__MIN(min_ms, s->o.max_retry_ms); /* the server's wait, as given */
    else if (!s->opened) delay = pr__retry_delay_ms(&s->o.backoff, s->failures - 1, NULL, &s->o.hooks);
    else {
        delay = pr_sse_retry_ms(s);
        if (s->steps > 0) delay = pr__time_add(delay, pr__retry_delay_ms(&s->o.backoff, s->steps - 1, NULL, &s->o.hooks));
    }
    s->next_at = pr__time_add(pr_now(), delay);
    if (!s->opened && s->next_at > s->open_until) { /* the next try would come too late: this cause now */
        pr__err_wrap(&s->err, reason, &last, "sse: the next try would start after the deadline; the last");
        s->err.http_status = status;
        return pr__eventsource_end(s, reason);
    }
    s->reason = reason;
    s->reconnects++;
    if (s->o.observer.on_reconnect) {
        memset(&info, 0, sizeof info);
        info.reconnects = s->reconnects;
        info.failures = s->failures;
        info.delay_ms = delay;
        info.reason = reason;
        info.status = status;
        info.detail = detail;
        info.last_event_id = pr__eventsource_lei(s, &n, &why);
        s->o.observer.on_reconnect(&info, s->o.observer.user_data);
    }
    return PR_OK;
}

/* One connection: wait for its time, send the request, check the answer.
   Returns PR_OK (open, or a reconnect planned: loop), or what the caller
   gets (a deadline, a cancel, the stream's end). */
/* A connection's header lines (Accept, Cache-Control, Last-Event-ID, the
   options' fields and headers_fn's, which go to dyn) joined into *lines. A
   frame of its own, so that the field array is off the task's stack while
   the request runs (the stack a stream touches stays at two pages). */
static PR__NOINLINE int pr__eventsource_lines(pr_sse *s, pr_buf *dyn, const char ***lines, size_t *lines_size) {
    pr_http_header h[PR__EVENTSOURCE_MAX_FIELDS + 4];
    pr__http_field_set fields;
    pr_err_info e;
    const char *lei, *why;
    size_t n = 0, lei_len;
    int rc;
    if (s->o.headers_fn && (rc = s->o.headers_fn(dyn, s->o.user_data)) != 0)
        return pr__eventsource_fail(s, rc < 0 ? rc : PR_EINVAL, 0, "sse: %s", "headers_fn refused the connection");
    h[n].name = pr_slice_cstr("Accept");
    h[n++].value = pr_slice_cstr("text/event-stream");
    h[n].name = pr_slice_cstr("Cache-Control");
    h[n++].value = pr_slice_cstr("no-cache");
    lei = pr__eventsource_lei(s, &lei_len, &why);
    if (why)
        PR__LOG(PR_LEVEL_WARN, "sse", "the last-event-ID (%zu bytes) %s: connecting without Last-Event-ID",
                strlen(pr_sse_last_event_id(s, NULL)), why);
    if (lei_len) {
        h[n].name = pr_slice_cstr("Last-Event-ID");
        h[n].value.ptr = lei;
        h[n++].value.len = lei_len;
    }
    fields.h = h;
    fields.n = n;
    fields.cap = sizeof h / sizeof h[0];
    if ((rc = pr__http_fields(NULL, s->fixed.data, s->fixed.len, pr__http_field_push, &fields, &e)) != PR_OK ||
        (rc = pr__http_fields(NULL, dyn->data, dyn->len, pr__http_field_push, &fields, &e)) != PR_OK) {
        if (rc == PR_ELIMIT) return pr__eventsource_fail(s, PR_EINVAL, 0, "sse: %s", "too many header lines from headers_fn");
        return pr__eventsource_fail(s, PR_EINVAL, 0, "sse: headers_fn: %s", e.msg);
    }
    if (pr__http_lines_join(NULL, h, fields.n, lines, lines_size) != PR_OK)
        return pr__eventsource_fail(s, PR_ENOMEM, 0, "sse: %s", "out of memory");
    return PR_OK;
}

/* The start of a refused answer's body, for the failure's message: an API
   says there why it refused (a bad key, a model that does not exist).
   Control bytes and runs of white space become one space; a cut never
   splits a UTF-8 sequence. Reads at most cap - 1 bytes for at most a
   second within the deadline; "" when the body is empty or slow. */
static void pr__eventsource_excerpt(pr_http_response *r, char *out, size_t cap, int64_t deadline) {
    char buf[160];
    size_t n = 0, o = 0, i;
    int64_t until = pr_deadline_min(deadline, pr_deadline_in(1000));
    ptrdiff_t k;
    if (cap > sizeof buf) cap = sizeof buf;
    while (n + 1 < cap && (k = pr_http_read(r, buf + n, cap - 1 - n, until)) > 0) n += (size_t)k;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c > ' ' && c != 0x7f) out[o++] = (char)c;
        else if (o && out[o - 1] != ' ') out[o++] = ' ';
    }
    if (n + 1 >= cap) /* cut: drop a trailing sequence that may be incomplete */
        while (o && ((unsigned char)out[o - 1] & 0x80)) o--;
    while (o && out[o - 1] == ' ') o--;
    out[o] = '\0';
}

static int pr__eventsource_connect(pr_sse *s, int64_t deadline) {
    /* the protocol's own fields go on to another origin; the caller's do not */
    static const char *const fwd[] = { "Cache-Control", "Last-Event-ID", NULL };
    const char **lines = NULL;
    size_t lines_size = 0;
    pr_http_request req;
    pr_http_response *r = NULL;
    pr_buf dyn;
    pr_err_info e;
    int rc, st;
    const pr_slice *ct;
    if (s->next_at && pr_now() < s->next_at) {
        if (deadline < s->next_at) { /* the caller's deadline comes first: wait until it, then say so */
            if (deadline > pr_now() && (rc = pr__eventsource_sleep(s, deadline - pr_now(), deadline)) != PR_OK) return rc;
            return PR_ETIMEDOUT;
        }
        if ((rc = pr__eventsource_sleep(s, s->next_at - pr_now(), s->next_at)) != PR_OK) return rc;
    }
    s->next_at = 0;
    if (pr_is_canceled()) return PR_ECANCELED;
    pr_buf_init(&dyn);
    if ((rc = pr__eventsource_lines(s, &dyn, &lines, &lines_size)) != PR_OK) {
        pr_buf_deinit(&dyn);
        return rc;
    }
    memset(&req, 0, sizeof req);
    memset(&e, 0, sizeof e);
    req.method = s->method;
    req.url = &s->url;
    req.headers = lines;
    req.body = s->body;
    req.body_len = s->body_len;
    req.retry = &pr__retry_off;
    req.idle_timeout_ms = s->o.idle_timeout_ms;
    req.redirect_forward = fwd;
    rc = pr_http_client_request(s->client, &r, &req, &e, deadline);
    pr__free(lines, lines_size);
    pr_buf_deinit(&dyn);
    if (rc == PR_ECANCELED || (rc == PR_ETIMEDOUT && pr_now() >= deadline)) {
        s->err = e;
        return rc; /* the caller's limit: the next call tries again */
    }
    if (rc) {
        s->err = e; /* a connect or idle limit is PR_EIO, ETIMEDOUT: PR_ETIMEDOUT is the deadline's */
        /* what retrying cannot cure (a name that does not exist, a refused
           certificate, bad fields, no memory, https without TLS) ends it */
        if (pr__client_final(rc, &s->err))
            return pr__eventsource_end(s, rc);
        if (rc == PR_ELIMIT) /* an answer over the client's limits: a redirect loop (its last 3xx), a head too large */
            return pr__eventsource_end(s, s->err.http_status ? PR_EHTTP : PR_EPROTO);
        return pr__eventsource_plan(s, rc, 0, 1, 0); /* a network error: tried again */
    }
    st = pr_http_status(r);
    ct = pr_http_header_get(r, "content-type");
    if (st == 200 && pr__http_media_is(ct, "text/event-stream")) {
        s->resp = r;
        s->status = st;
        s->opened = 1;
        s->delivered = 0;
        s->opened_at = pr_now();
        s->next_at = 0;
        /* a stream waits long between events: the stack pages the connect
           touched (resolving, TLS, the request) need not stay resident */
        pr__coro_shed(pr_self() ? pr_self()->coro : NULL);
        if (s->dirty) pr_sse_decoder_reset(s->dec); /* the partial block of the last one goes */
        s->dirty = 0;
        return PR_OK;
    }
    s->resp = r; /* for the detail below; dropped by fail or plan */
    if (st == 204) return pr__eventsource_fail(s, PR_ECLOSED, st, "sse: %s", "204 No Content: the server ended the stream");
    if (st == 200) {
        char t[80];
        snprintf(t, sizeof t, "%.*s", ct ? (int)PR__MIN(ct->len, 60) : 0, ct ? ct->ptr : "");
        return pr__eventsource_fail(s, PR_EPROTO, st, ct ? "sse: 200 with Content-Type \"%s\", not text/event-stream"
                                                 : "sse: 200 without a Content-Type%s", t);
    }
    if (pr_retry_status_retryable(st) && !s->o.whatwg_strict) {
        int64_t hint = 0;
        if (!pr_retry_hint_ms(pr_http_header_get(r, "retry-after-ms"), pr_http_header_get(r, "retry-after"),
                              pr__eventsource_wall(s), s->o.max_retry_ms, &hint))
            hint = 0;
        pr__err_set(&s->err, PR_EHTTP, 0, "sse: status %d", st);
        s->err.http_status = st;
        return pr__eventsource_plan(s, PR_EHTTP, st, 1, hint);
    }
    {
        char t[200], x[150];
        pr__eventsource_excerpt(r, x, sizeof x, deadline);
        snprintf(t, sizeof t, "%d (not an event stream)%s%s", st, x[0] ? ": " : "", x);
        return pr__eventsource_fail(s, PR_EHTTP, st, "sse: status %s", t);
    }
}

int pr_sse_open(pr_sse **out, const char *url, const pr_sse_stream_opts *opts, pr_err_info *err,
                int64_t deadline) {
    pr_sse *s;
    const char *m;
    size_t i;
    int rc;
    if (err) memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out || !url) return pr__err_set(err, PR_EINVAL, 0, "sse: %s", "out and url are required");
    if (!(s = (pr_sse *)pr__calloc(1, sizeof *s))) return pr__err_set(err, PR_ENOMEM, 0, "sse: %s", "out of memory");
    if (opts) s->o = *opts;
    pr_buf_init(&s->fixed);
    m = PR__DEF(s->o.method, "GET");
    rc = pr_url_parse(&s->url, url, strlen(url), NULL);
    if (!rc && (s->o.retry_ms < 0 || s->o.max_retry_ms < 0 || (s->o.body_len && !s->o.body))) rc = PR_EINVAL;
    if (!rc && !(s->method = pr__strdup(m, NULL))) rc = PR_ENOMEM;
    if (!rc && s->o.body && !(s->body = pr__strndup(s->o.body, s->o.body_len))) rc = PR_ENOMEM;
    s->body_len = s->body ? s->o.body_len : 0;
    for (i = 0; !rc && s->o.headers && s->o.headers[i]; i++) {
        size_t n = strlen(s->o.headers[i]);
        pr_slice name, value;
        if (i >= PR__EVENTSOURCE_MAX_FIELDS) rc = pr__err_set(err, PR_EINVAL, 0, "sse: more than %d header lines", PR__EVENTSOURCE_MAX_FIELDS);
        else if ((rc = pr__http_field_line(s->o.headers[i], n, &name, &value, err)) != PR_OK) break;
        else if (pr_buf_append(&s->fixed, s->o.headers[i], n) || pr_buf_append(&s->fixed, "\r\n", 2)) rc = PR_ENOMEM;
    }
    if (!rc) rc = pr_sse_decoder_create(&s->dec, &s->o.decoder);
    if (!rc && s->o.last_event_id)
        rc = pr_sse_decoder_set_last_id(s->dec, s->o.last_event_id, strlen(s->o.last_event_id));
    if (!rc && s->o.client && !pr__eventsource_zero(&s->o.tls, sizeof s->o.tls))
        rc = pr__err_set(err, PR_EINVAL, 0, "sse: %s", "tls is for the stream's own client: set it on the borrowed client");
    if (!rc && !s->o.client) {
        pr_http_client_opts co;
        memset(&co, 0, sizeof co);
        co.max_redirects = 10;
        co.tls = s->o.tls;
        if ((rc = pr_http_client_create(&s->client, &co, NULL)) == PR_OK) s->own_client = 1;
    } else {
        s->client = s->o.client;
    }
    if (rc) {
        if (!err || err->code != rc)
            pr__err_set(err, rc, 0, "sse: %s", rc == PR_EINVAL ? "invalid URL or option" : pr_strerror(rc));
        pr__eventsource_free(s);
        return rc;
    }
    s->repeatable = s->o.repeatable || (!s->body && !strcmp(m, "GET"));
    s->o.retry_ms = PR__DEF(s->o.retry_ms, PR__EVENTSOURCE_DEF_RETRY);
    if (!s->o.backoff.base_ms) s->o.backoff = pr__eventsource_backoff;
    s->o.idle_timeout_ms = PR__DEF(s->o.idle_timeout_ms, PR__EVENTSOURCE_DEF_IDLE);
    s->o.max_retry_ms = PR__DEF(s->o.max_retry_ms, PR__EVENTSOURCE_DEF_MAX_RETRY);
    s->o.max_last_event_id = PR__DEF(s->o.max_last_event_id, PR__EVENTSOURCE_DEF_MAX_LEI);
    s->o.open_attempts = PR__DEF(s->o.open_attempts, PR__EVENTSOURCE_DEF_OPEN_ATTEMPTS);
    s->o.healthy_ms = PR__DEF(s->o.healthy_ms, PR__EVENTSOURCE_DEF_HEALTHY);
    memset(&s->o.tls, 0, sizeof s->o.tls); /* the client has its copy */
    s->o.method = s->o.body = NULL;
    s->o.headers = NULL;
    s->o.last_event_id = NULL;
    s->open_until = deadline;
    for (;;) { /* the first connection, reconnect rules included */
        rc = pr__eventsource_connect(s, deadline);
        if (rc || s->final || s->resp) break;
    }
    if (!rc && s->final) rc = s->final;
    if (rc) {
        /* the deadline or a cancel came between tries: say so, with the last try's cause */
        if (s->err.code != rc && s->err.msg[0])
            pr__err_wrap(&s->err, rc, &s->err, "sse: %s before the stream opened; the last try", pr_strerror(rc));
        else if (s->err.code != rc)
            pr__err_set(&s->err, rc, 0, "sse: %s before the stream opened", pr_strerror(rc));
        if (err) *err = s->err;
        pr__eventsource_free(s);
        return rc;
    }
    *out = s;
    return PR_OK;
}

/* Read the next bytes of the connection into the decoder; its end is the
   decoder's (drained, then a reconnect). */
static int pr__eventsource_read(pr_sse *s, int64_t deadline) {
    const char *p;
    size_t n;
    int rc = pr_http_next_span(s->resp, &p, &n, deadline);
    if (rc == PR_OK) {
        s->dirty = 1;
        if ((rc = pr_sse_decoder_feed(s->dec, p, n)) == PR_OK) return PR_OK;
        /* the bytes are gone: resume from the last-event-ID on a new connection */
        pr__err_set(&s->err, rc, 0, "sse: %s", "out of memory decoding the stream");
        return pr__eventsource_plan(s, rc, 0, 0, 0);
    }
    if (rc == PR_ECLOSED) { /* a clean end of the body: the complete events are still delivered */
        s->dirty = 1;
        return pr_sse_decoder_finish(s->dec);
    }
    if (rc == PR_ECANCELED || (rc == PR_ETIMEDOUT && pr_now() >= deadline)) return rc; /* the caller's limits */
    /* the connection went silent for idle_timeout_ms (PR_EIO, ETIMEDOUT), or broke mid-body (a
       reset, a truncated chunked body); TLS that ends without close_notify
       is an ordinary end of the stream */
    pr_http_last_error(s->resp, &s->err);
#ifndef PRISTINE_NO_TLS
    if (rc == PR_ETLS && s->err.tls_error == PR_TLS_TRUNCATED) rc = PR_ECLOSED;
#endif
    return pr__eventsource_plan(s, rc, 0, 0, 0);
}

static int pr__eventsource_next(pr_sse *s, pr_sse_event *ev, int64_t deadline) {
    int rc, reads = 0;
    for (;;) {
        if (s->destroyed) return PR_ECANCELED;
        if (s->final) return s->final;
        if (!s->resp) {
            if ((rc = pr__eventsource_connect(s, deadline)) != PR_OK) return rc;
            continue;
        }
        rc = pr_sse_decoder_next(s->dec, ev);
        if (rc == PR_OK) {
            s->delivered = 1;
            ev->stream_retry_ms = pr_sse_retry_ms(s);
            return PR_OK;
        }
        if (rc == PR_ELIMIT) {
            pr__err_set(&s->err, PR_ELIMIT, 0, "sse: %s", "a line or an event over its limit was dropped");
            if (s->o.reconnect_on_limit) {
                char keep[sizeof s->err.msg];
                snprintf(keep, sizeof keep, "%s", s->err.msg);
                if ((rc = pr__eventsource_plan(s, PR_ELIMIT, 0, 0, 0)) != PR_OK) return rc;
                pr__err_set(&s->err, PR_ELIMIT, 0, "%s", keep);
            } else {
                pr_sse_decoder_skip(s->dec);
            }
            return PR_ELIMIT;
        }
        if (rc == PR_ECLOSED) { /* the ended body is used up */
            pr__err_set(&s->err, PR_ECLOSED, 0, "sse: %s", "the server ended the body");
            if ((rc = pr__eventsource_plan(s, PR_ECLOSED, 0, 0, 0)) != PR_OK) return rc;
            continue;
        }
        if (rc != PR_SSE_DECODER_MORE) return rc; /* PR_ENOMEM */
        /* bytes that complete no event (comments, blank lines, id-only
           blocks) must not hold the caller past its deadline */
        if (reads++ && pr_now() >= deadline) return PR_ETIMEDOUT;
        if ((rc = pr__eventsource_read(s, deadline)) != PR_OK) return rc;
    }
}

int pr_sse_next(pr_sse *s, pr_sse_event *ev, int64_t deadline) {
    int rc;
    if (!s || !ev) return PR_EINVAL;
    if (s->reader) return PR_ESTATE; /* one reader at a time */
    s->reader = pr_self();
    rc = pr__eventsource_next(s, ev, deadline);
    s->reader = NULL;
    if (s->destroyed) {
        pr__eventsource_free(s);
        return PR_ECANCELED;
    }
    return rc;
}

void pr_sse_destroy(pr_sse *s) {
    if (!s) return;
    if (s->reader) { /* a task is inside pr_sse_next (or this is its callback): it frees the stream */
        s->destroyed = 1;
        if (s->reader != pr_self()) pr__sched_task_interrupt(s->reader);
        return;
    }
    pr__eventsource_free(s);
}

const char *pr_sse_last_event_id(const pr_sse *s, size_t *len) {
    if (!s) {
        if (len) *len = 0;
        return "";
    }
    return pr_sse_decoder_last_id(s->dec, len);
}

int64_t pr_sse_retry_ms(const pr_sse *s) {
    int64_t r;
    if (!s) return -1;
    r = pr_sse_decoder_retry_ms(s->dec);
    return PR__MIN(r >= 0 ? r : s->o.retry_ms, s->o.max_retry_ms);
}

int pr_sse_status(const pr_sse *s) { return s ? s->status : PR_EINVAL; }

const pr_slice *pr_sse_header(const pr_sse *s, const char *name) {
    return s && s->resp && name ? pr_http_header_get(s->resp, name) : NULL;
}

long pr_sse_reconnects(const pr_sse *s) { return s ? s->reconnects : 0; }

int pr_sse_last_error(const pr_sse *s, pr_err_info *out) {
    if (!s || !out) return PR_EINVAL;
    *out = s->err;
    return PR_OK;
}
