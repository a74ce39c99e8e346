// @pristine:module rfuture - remote futures polled until done, with one built-in profile; queue-state observers
// @pristine:public
/*
 * rfuture: remote futures polled until done, with one built-in profile. A
 * remote job answers its submit with a request id; a pr_rfuture_poller
 * polls the service's retrieve endpoint for it until the job is done, and
 * hands the caller an ordinary pr_future:
 *
 *     pr_future *f;
 *     pr_rfuture_start(&f, poller, "req-1", NULL);
 *     if (pr_future_await(f, NULL, deadline) == PR_OK)
 *         use(pr_rfuture_result(f));      (the result, a JSON value)
 *     pr_future_destroy(f);               (frees the result too)
 *
 * The profile (pr_rfuture_profile, in the poller's options) names the
 * service's side of the protocol: the retrieve path, the poll's headers,
 * the JSON members that carry the request id, the metadata switch, a
 * payload's size, the queue state and a server's delay, and the prefix of
 * the event names. A zero field takes the built-in profile's value; the
 * built-in profile matches Thinking Machines' Tinker API (its
 * retrieve_future endpoint), and its names are the ones used below.
 *
 * The poll: POST <base_url><path> with {"request_id": ..,
 * "allow_metadata_only": ..}, the headers X-Tinker-Request-Iteration
 * (0, 1, 2... every poll), X-Tinker-Request-Type (when set) and, on the
 * first poll only, X-Tinker-Create-Promise-Roundtrip-Time (seconds since
 * the submit began, when known). Each poll is one HTTP attempt (the
 * client's own retries are off for it) whose deadline covers the whole
 * response, body included: a stalled body is a connection error.
 *
 * The answer, read in this order: {"type": "try_again"} (with queue_state,
 * queue_state_reason, retry_after_ms) or {"status": "pending"}: poll again;
 * {"status": "complete_metadata", "response_payload_size": N}: reserve N
 * bytes of the poller's response budget, poll again for the payload; a
 * wrapper {"status": "completed"|"complete"|"success", "result": R} (or
 * "type" completed / success): R is the result; {"status": "failed"} or
 * an "error" member: PR_EFAILED (message from error, or error.message;
 * category from category, or error.category: user, server or unknown);
 * any other object: the result itself. Not JSON, or not an object:
 * PR_EPROTO, as is a second complete_metadata. Strings the poller keeps
 * (a submit's request_id, a queue_state_reason) are checked as they
 * arrive: one with a NUL byte or over 1024 bytes is PR_EPROTO, never cut.
 *
 * Statuses: 200 as above; 408 (a try_again in an HTTP error's clothes,
 * its JSON body notifies the queue observer and resets the 400 budget)
 * and 5xx: poll again after poll_backoff; 429 and connection errors: back
 * off 1, 2, 4... 30 s (conn_backoff; the exponent counts them in a row and
 * is reset by any other HTTP answer); 400: polled again after poll_backoff
 * up to bad_request_budget (3) times, then PR_EHTTP; 410: PR_EEXPIRED
 * (submit the job again; a job marked resubmittable is submitted again by
 * the poller, up to max_resubmits times); 402: a billing pause, polled
 * every 5 s for up to billing_max_pause_ms (an incident ends after 5
 * minutes without a 402), then PR_EHTTP; any other status: PR_EHTTP.
 * pr_future_last_error gives every failure's detail (http_status,
 * sys_errno, tls_error, dns_error, category, msg).
 *
 * Failures: a cause that polling again cannot cure ends the future at the
 * first poll with its own code and detail: a name that does not exist
 * (PR_EDNS), TLS refused (an untrusted certificate, a hostname mismatch, a
 * peer that does not speak TLS: PR_ETLS), PR_EINVAL, PR_ENOTSUP,
 * PR_ENOMEM, PR_ELIMIT, an open breaker (PR_ECIRCUIT). Transient ones -
 * no answer (refused, reset, a poll past poll_timeout_ms), 408 without a
 * JSON body, 429, 5xx - are polled again: before any poll of the job was
 * answered at most open_attempts times (5: about 15 s against a port
 * that refuses), after that without a bound unless max_failures says
 * (a job runs for minutes); at the bound the last one's cause ends it
 * (PR_EIO with sys_errno, PR_EHTTP with http_status). PR_ETIMEDOUT is
 * only ever the caller's limit: opts.timeout_ms, or the deadline of
 * pr_future_await (which leaves the polling running) or of
 * pr_rfuture_submit. A limit that would pass while the poller waits to
 * poll again after a failure does not wait for it: each failed poll is
 * noted on the future (pr_future_note_retry), so a pr_future_await whose
 * deadline comes before the next poll returns that poll's cause at once
 * (the polling goes on), and a future whose timeout_ms comes first ends
 * with the cause then.
 *
 * Pacing: poll_backoff (5 ms doubling to 1 s by default, by the number of
 * polls made) spaces the polls after answers with nothing new, so a
 * server that answers at once cannot drive a hot loop. A server's own
 * delay - retry_after_ms (> 0) in a 200's or a 408's JSON body, else a
 * retry-after-ms / Retry-After header on any answer (pr_retry_hint_ms) -
 * replaces poll_backoff, conn_backoff and the billing pause:
 * it is used as given, but never below poll_backoff.base_ms nor above
 * hint_max_ms (60 s). The payload poll after complete_metadata (one per future) goes at
 * once unless that answer carries a delay.
 *
 * Limits: at most max_polls polls in flight per poller (FIFO), and
 * complete_metadata payloads share max_response_bytes (held until the
 * result is decoded). opts.timeout_ms bounds the whole polling:
 * PR_ETIMEDOUT then, naming the last retryable failure (or that
 * failure's own code, when it came with a wait past the limit). A timeout of
 * pr_future_await stops nothing; pr_future_cancel stops the polling at
 * once (whatever it was doing) and frees everything.
 *
 * Observer (pr_rfuture_observer, one user_data for both callbacks):
 * on_queue_state hears every change of the (queue_state,
 * queue_state_reason) pair of one future's answers, the first one included.
 * on_event reports what went wrong as the events of Tinker's SDK (the
 * profile's event_prefix, "APIFuture.result_async." by default, followed
 * by api_status_error, connection_error, application_error,
 * validation_error or timeout), a job submitted again (resubmitted, with
 * the old and the new request id) and the end of each future (resolved,
 * or the failure that ends it, marked settled); the telemetry module turns
 * them into reports. 402 pauses report nothing.
 *
 * The client: the poller uses the one it is given, or makes its own from
 * opts.tls (NULL client).
 *
 * The submit throttle and the session heartbeat that a pipeline pairs
 * with remote futures are the session module's.
 */

/* Queue states of a remote job. */
enum pr_queue_state {
    PR_QUEUE_NONE = 0,               /* nothing reported yet */
    PR_QUEUE_UNKNOWN = 1,            /* a value this library does not know */
    PR_QUEUE_ACTIVE = 2,             /* "active" */
    PR_QUEUE_PAUSED_RATE_LIMIT = 3,  /* "paused_rate_limit" */
    PR_QUEUE_PAUSED_CAPACITY = 4     /* "paused_capacity" */
};

/* A change of a future's queue state. Strings are valid during the call. */
typedef struct pr_queue_change {
    const char *request_id;
    int old_state;          /* PR_QUEUE_*; PR_QUEUE_NONE before the first report */
    const char *old_reason; /* NULL when none */
    int state;
    const char *reason;     /* the server's queue_state_reason, NULL when none */
} pr_queue_change;

/* What pr_rfuture_observer.on_event is told. Strings are valid during
   the call; fields that do not apply are 0 or NULL. */
typedef struct pr_rfuture_event {
    const char *name;            /* the profile's event_prefix + <what>, e.g.
                                    "APIFuture.result_async.resolved" */
    int severity;                /* PR_SEVERITY_* */
    const char *request_id;
    const char *request_type;    /* "" when none */
    int iteration;               /* the poll it is about, 0-based */
    double elapsed_s;            /* since polling began */
    int status_code;             /* the HTTP status; 0 for connection errors */
    const char *kind;            /* api_status_error: "retry", "retry_with_backoff",
                                    "retry_if_budget", "retryable_exception" or "fatal" */
    int should_retry;            /* kind is not "fatal" */
    int is_user_error;           /* 400 <= status < 500 and not 408; category user */
    int bad_request_retries;     /* 400s taken from the budget so far */
    int connection_error_retries;/* the backoff exponent */
    int category;                /* application_error: PR_CATEGORY_* */
    int64_t timeout_ms;          /* timeout: the limit */
    const char *detail;          /* the error's words */
    int settled;                 /* 1: the future settles with this event (the "resolved" event, or
                                    the failure that ends it) */
    int error;                   /* settled: the rejection code, PR_OK for "resolved" */
    const char *new_request_id;  /* "resubmitted": the new job's id (request_id is the expired one);
                                    else NULL */
} pr_rfuture_event;

/* The observer of a poller: the notifications the telemetry module adapts
   (observer.on_event = pr_telemetry_rfuture_hook, observer.on_queue_state
   = pr_telemetry_queue_hook, observer.user_data = the hub). Both callbacks
   run on the poller's thread and get user_data. */
typedef struct pr_rfuture_observer {
    void (*on_event)(const pr_rfuture_event *ev, void *user_data);          /* NULL = none */
    void (*on_queue_state)(const pr_queue_change *change, void *user_data); /* NULL = none */
    void *user_data;
} pr_rfuture_observer;

/* The names a service gives the protocol's pieces. A NULL field takes the
   built-in profile's value (Thinking Machines' Tinker API, its
   retrieve_future endpoint), given after "NULL =". A header set to ""
   is not sent. Strings are copied at create. */
typedef struct pr_rfuture_profile {
    const char *path;               /* NULL = "/api/v1/retrieve_future": the retrieve endpoint,
                                       after base_url */
    const char *iteration_header;   /* NULL = "X-Tinker-Request-Iteration": the poll's number */
    const char *type_header;        /* NULL = "X-Tinker-Request-Type": pr_rfuture_opts.request_type */
    const char *roundtrip_header;   /* NULL = "X-Tinker-Create-Promise-Roundtrip-Time": on the first
                                       poll, the seconds since the submit began */
    const char *request_id_field;   /* NULL = "request_id": in the poll's body and the submit's answer */
    const char *metadata_field;     /* NULL = "allow_metadata_only": the poll body's switch */
    const char *payload_size_field; /* NULL = "response_payload_size": complete_metadata's size */
    const char *queue_state_field;  /* NULL = "queue_state" */
    const char *queue_reason_field; /* NULL = "queue_state_reason" */
    const char *retry_after_field;  /* NULL = "retry_after_ms": a server's delay in an answer's body */
    const char *event_prefix;       /* NULL = "APIFuture.result_async.": each pr_rfuture_event.name is
                                       this + what happened ("resolved", "timeout", ...);
                                       at most 64 bytes */
} pr_rfuture_profile;

/* A poller: the client, the endpoint and the limits its futures share. Opaque. */
typedef struct pr_rfuture_poller pr_rfuture_poller;

/* Options of pr_rfuture_poller_create. Zero means the default; strings are copied. */
typedef struct pr_rfuture_poller_opts {
    const char *base_url;        /* required: scheme://host[:port][/prefix] */
    pr_rfuture_profile profile;  /* zero = the built-in profile (Tinker's retrieve_future) */
    int max_polls;               /* 0 = 100: polls in flight at once (the rest wait, FIFO) */
    int64_t max_response_bytes;  /* 0 = 50 MiB: complete_metadata payloads being fetched at once */
    int poll_timeout_ms;         /* 0 = 45000: one poll, body included */
    int bad_request_budget;      /* 0 = 3: 400 answers polled again before PR_EHTTP */
    int billing_max_pause_ms;    /* 0 = 3600000: how long 402 answers are waited out */
    pr_backoff poll_backoff;     /* after try_again / pending / 408 / 5xx / a 400 in the budget, by the
                                    polls made; its base_ms is also the least wait a server's hint gets.
                                    base_ms 0 = 5 ms doubling to 1000 ms, no jitter */
    pr_backoff conn_backoff;     /* after 429 and connection errors; base_ms 0 = PR_BACKOFF_SUBMIT */
    int64_t hint_max_ms;         /* 0 = 60000: the longest wait a server can ask for; a longer
                                    retry_after_ms (any JSON number) or Retry-After /
                                    retry-after-ms header is cut to it */
    pr_rfuture_observer observer; /* who hears the futures' events and queue states; zero = nobody */
    pr_retry_hooks hooks;        /* the sleeps between polls (tests make them instant) */
    int open_attempts;           /* 0 = 5: polls of a future that may fail transiently (no answer: refused,
                                    reset, timed out; 408 without a JSON body, 429, 5xx) before any poll
                                    was answered; the last one's cause then ends it (PR_EIO with
                                    sys_errno, PR_EHTTP with http_status). With the default backoffs a
                                    port that refuses gives up after about 15 s (1 + 2 + 4 + 8 s
                                    between the 5 polls), a server answering 503 after 5 polls.
                                    < 0 = no bound */
    int max_failures;            /* 0 = no bound: once a poll has been answered (a job runs for
                                    minutes), transient failures in a row before the last one's cause
                                    ends the future */
    pr_tls_opts tls;             /* the TLS settings of the poller's own client (client NULL at create);
                                    must be zero when a client is given (its own settings apply) */
} pr_rfuture_poller_opts;

/* Options of one future. Zero means the default. */
typedef struct pr_rfuture_opts {
    const char *request_type;    /* the profile's type_header, e.g. "Sample"; NULL = none (copied) */
    int64_t submitted_at_ms;     /* pr_now() when the submit began: the first poll reports the
                                    time since then; 0 = not reported */
    int64_t timeout_ms;          /* 0 = none: the whole polling ends with PR_ETIMEDOUT after this, or
                                    with a failed poll's cause when the poll after it would start
                                    later */
    /* Check the result before the future resolves; a nonzero return (with
       *why filled) rejects it with PR_EPROTO. NULL = any object is fine. */
    int (*validate)(const pr_json *result, pr_err_info *why, void *user_data);
    void *user_data;             /* validate's */
    int resubmittable;           /* 0 = a 410 (expired) rejects with PR_EEXPIRED; 1 = the job may run
                                    again (pr_rfuture_submit only: it keeps the path and body): a 410
                                    submits it again, as the submit did but without its deadline
                                    (poll_timeout_ms and timeout_ms bound it), and polls the new
                                    request id; on_event hears "resubmitted" with both ids */
    int max_resubmits;           /* 0 = 1: submits again of a resubmittable job; one more 410 is
                                    PR_EEXPIRED */
} pr_rfuture_opts;

/* Create a poller.
   Params: out - receives it; client - the HTTP client of every poll and
           submit (borrowed; must outlive the poller), or NULL: one of its
           own, made with opts->tls and destroyed with the poller;
           opts - base_url required; err - receives why it failed (NULL =
           not wanted).
   Returns: PR_OK; PR_EINVAL (no base_url, a URL that does not parse, a bad
            backoff, negative limits, a profile header that is not a
            header name, an event_prefix over 64 bytes, opts->tls set while
            a client is given); PR_EIO (the own client's tls.ca_file cannot
            be read); PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_rfuture_start. */
PRISTINE_API int pr_rfuture_poller_create(pr_rfuture_poller **out, pr_http_client *client,
                                          const pr_rfuture_poller_opts *opts, pr_err_info *err);

/* Destroy a poller: futures still polling are rejected with PR_ECANCELED
   and their tasks wind down; the memory goes when the last one has. NULL
   is a no-op.
   Params: p - the poller.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_rfuture_poller_create. */
PRISTINE_API void pr_rfuture_poller_destroy(pr_rfuture_poller *p);

/* Start polling for request_id. The future resolves with the result (a
   pr_json_doc *, owned by the future: valid until its last reference is
   dropped; pr_rfuture_result gives its root) or is rejected: PR_EFAILED,
   PR_EEXPIRED, PR_EHTTP, PR_EPROTO, PR_ELIMIT (a body over the client's
   fetch_max_bytes), PR_EIO (no answer, open_attempts or max_failures
   times, or when the next poll would start after opts->timeout_ms),
   PR_EDNS, PR_ETLS (at once), PR_ETIMEDOUT (opts->timeout_ms),
   PR_ECANCELED, with the detail in pr_future_last_error. While it waits
   to poll again after a failure, an await whose deadline comes first
   returns that failure's code at once (pr_future_note_retry).
   Params: out - receives the future (one reference); p - the poller;
           request_id - NUL-terminated (copied); opts - NULL = defaults.
   Returns: PR_OK; PR_EINVAL (also opts->resubmittable: there is no submit
            to send again); PR_ENOMEM; PR_ESTATE (the poller is being
            destroyed).
   Blocks: no.
   Thread: owner.
   See: pr_rfuture_result, pr_future_await, pr_future_cancel. */
PRISTINE_API int pr_rfuture_start(pr_future **out, pr_rfuture_poller *p, const char *request_id,
                                  const pr_rfuture_opts *opts);

/* Submit a job and start polling for it: POST body (JSON) to <base_url>
   <path>, read the request id (the profile's request_id_field) from the
   answer, then pr_rfuture_start
   with submitted_at_ms set. The submit uses the client's retry policy.
   With opts->resubmittable the path and body are kept, to submit the job
   again when it expires (410).
   Params: out - receives the future; p - the poller; path - e.g.
           "/api/v1/asample"; body, len - the JSON request; opts - as for
           pr_rfuture_start; err - receives why the submit failed (NULL =
           not wanted); deadline - absolute ms for the submit only.
   Returns: PR_OK; PR_EHTTP (a non-2xx answer, after the client's retries;
            err gets its status and body); PR_EPROTO (no request_id in
            the answer, or one with a NUL byte or over 1024 bytes: never
            cut); errors of pr_http_client_fetch (PR_ETIMEDOUT only
            when the deadline passed, PR_EIO, PR_EDNS, PR_ETLS,
            PR_ECANCELED, ...); PR_EINVAL; PR_ENOMEM.
   Blocks: yes.
   Thread: owner.
   See: pr_rfuture_start. */
PRISTINE_API int pr_rfuture_submit(pr_future **out, pr_rfuture_poller *p, const char *path, const char *body,
                                   size_t len, const pr_rfuture_opts *opts, pr_err_info *err, int64_t deadline);

/* The result of a resolved remote future: the root of its document.
   Params: f - a future from pr_rfuture_start.
   Returns: the value, NULL if f is not resolved (or not a remote future).
   Blocks: no.
   Thread: owner.
   See: pr_rfuture_start. */
PRISTINE_API const pr_json *pr_rfuture_result(const pr_future *f);

/* A ready-made observer.on_queue_state that logs (warn level) when a job
   is paused, at most once a minute per state, and ignores "active".
   observer.user_data: a pr_queue_log.
   Params: change - the change; user_data - a pr_queue_log.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_rfuture_observer. */
PRISTINE_API void pr_queue_log_change(const pr_queue_change *change, void *user_data);

/* The state of pr_queue_log_change: the kind of client it speaks for. */
typedef struct pr_queue_log {
    const char *what;    /* "Sampling", "Training", ...; NULL = "Remote job" */
    int64_t last_ms;     /* when it last logged (0 = never) */
} pr_queue_log;

// @pristine:impl
#define PR__RFUTURE_PREFIX_MAX 64 /* bytes of the profile's event_prefix */
#define PR__RFUTURE_NAMES 11      /* the profile's fields */

/* The built-in profile: Thinking Machines' Tinker API, its retrieve_future. */
static const pr_rfuture_profile pr__rfuture_builtin = {
    "/api/v1/retrieve_future", "X-Tinker-Request-Iteration", "X-Tinker-Request-Type",
    "X-Tinker-Create-Promise-Roundtrip-Time", "request_id", "allow_metadata_only", "response_payload_size",
    "queue_state", "queue_state_reason", "retry_after_ms", "APIFuture.result_async."
};
#define PR__RFUTURE_BILLING_SLEEP_MS 5000
#define PR__RFUTURE_BILLING_RESET_MS 300000
#define PR__RFUTURE_STR_MAX 1024 /* bytes of a server's string the poller keeps */

struct pr__rfuture;

/* The poller runs no task per future: futures wait in a FIFO for one of
   max_polls poll slots; each poll is a short task (its stack comes from the
   pool); a future that must wait before its next poll sits in a timer heap,
   and one clock task moves due futures back to the FIFO (and times out
   those past their limit). */
struct pr_rfuture_poller {
    pr_rfuture_poller_opts o;    /* resolved; o.profile's strings point at names */
    char *names;                 /* the profile's strings, one block */
    size_t names_n;
    pr_http_client *client;
    pr_http_client *own;         /* client, when it is the poller's own */
    pr_url url;                  /* base_url + path, parsed */
    char *base;                  /* base_url (a copy), for the submit URLs */
    pr_wsem *bytes;
    struct pr__rfuture *live;    /* every future not finished */
    long nlive;
    struct pr__rfuture *ready, *ready_tail; /* waiting for a slot, FIFO */
    long nready;
    pr__sched_theap timers;            /* futures sleeping, or waiting with a limit (sched's heap) */
    int active;                  /* poll tasks running */
    pr_task *clock;              /* the timer task, once it runs */
    int clock_alive;             /* it has been spawned and has not ended */
    int64_t clock_due;           /* what it sleeps until (PR_FOREVER = nothing) */
    int destroyed;
};

enum { PR__RFUTURE_READY = 1, PR__RFUTURE_SLEEPING, PR__RFUTURE_POLLING };

/* One future's polling state. */
typedef struct pr__rfuture {
    struct pr__rfuture *prev, *next;  /* p->live */
    struct pr__rfuture *rnext;        /* p->ready */
    pr_rfuture_poller *p;
    pr_future *f;
    int state;                  /* PR__RFUTURE_* */
    pr_task *task;              /* the poll task while POLLING */
    int stop;                   /* cancelled before its poll task ran */
    pr__sched_theap_node timer;       /* in p->timers; key: the wake time, or until */
    int64_t until;              /* the polling's limit (PR_FOREVER = none) */
    char *id, *type;
    size_t id_n, type_n;
    pr_rfuture_opts o;
    int64_t created_ms, start_ms;
    int iteration;              /* polls made */
    int conn_errors;            /* 429s and connection errors in a row: the backoff exponent */
    int answered;               /* a poll of this request id has been answered */
    int failures;               /* transient failures in a row (open_attempts, max_failures) */
    char *spath, *sbody;        /* a resubmittable job's submit: path and body */
    size_t spath_n, sbody_n;    /* their allocations (the body's length is sbody_n - 1) */
    int resubmits;              /* submits again so far */
    int bad_requests;           /* 400s taken from bad_request_budget */
    int allow_md;               /* allow_metadata_only */
    int64_t reserved;           /* bytes held of p->bytes */
    int64_t first402, last402, warned402;
    int qstate;                 /* last notified queue state / reason */
    char *qreason;
    size_t qreason_n;
    pr_err_info last;           /* the last transient failure: the cause of giving up, or of a timeout */
} pr__rfuture;

static void pr__rfuture_poller_free(pr_rfuture_poller *p) {
    pr_http_client_destroy(p->own);
    pr__strfree(&p->base);
    pr__free(p->names, p->names_n);
    pr_wsem_destroy(p->bytes);
    pr_url_deinit(&p->url);
    pr__sched_theap_free(&p->timers);
    pr__free(p, sizeof *p);
}

static void pr__rfuture_finish(pr__rfuture *r);
static void pr__rfuture_maybe_free(pr_rfuture_poller *p);
static int pr__rfuture_resubmit(pr__rfuture *r);

/* Free a future's state (its strings, then itself). */
static void pr__rfuture_free(pr__rfuture *r) {
    pr__free(r->id, r->id_n);
    pr__free(r->type, r->type_n);
    pr__free(r->qreason, r->qreason_n);
    pr__free(r->spath, r->spath_n);
    pr__free(r->sbody, r->sbody_n);
    pr__free(r, sizeof *r);
}
static int pr__rfuture_clock(void *arg);
static void pr__rfuture_reject(pr__rfuture *r, int code, int status, int category, const char *fmt, ...);

/* The fields of a profile, in one order. */
static void pr__rfuture_names(pr_rfuture_profile *pf, const char **v[PR__RFUTURE_NAMES]) {
    int n = 0;
    v[n++] = &pf->path;
    v[n++] = &pf->iteration_header;
    v[n++] = &pf->type_header;
    v[n++] = &pf->roundtrip_header;
    v[n++] = &pf->request_id_field;
    v[n++] = &pf->metadata_field;
    v[n++] = &pf->payload_size_field;
    v[n++] = &pf->queue_state_field;
    v[n++] = &pf->queue_reason_field;
    v[n++] = &pf->retry_after_field;
    v[n++] = &pf->event_prefix;
}

/* Resolve the profile into p->o.profile: every name copied into one block,
   the built-in one's where the caller's is NULL. */
static int pr__rfuture_profile(pr_rfuture_poller *p, const pr_rfuture_profile *caller, pr_err_info *err) {
    pr_rfuture_profile *pf = &p->o.profile, in = *caller, def = pr__rfuture_builtin;
    const char **vin[PR__RFUTURE_NAMES], **vdef[PR__RFUTURE_NAMES], **vout[PR__RFUTURE_NAMES], *hdr[3];
    char *at;
    size_t i, n = 0;
    pr__rfuture_names(&in, vin);
    pr__rfuture_names(&def, vdef);
    pr__rfuture_names(pf, vout);
    for (i = 0; i < PR__RFUTURE_NAMES; i++) n += strlen(*vin[i] ? *vin[i] : *vdef[i]) + 1;
    if (!(p->names = (char *)pr__alloc(n))) return pr__err_set(err, PR_ENOMEM, 0, "out of memory");
    p->names_n = n;
    at = p->names;
    for (i = 0; i < PR__RFUTURE_NAMES; i++) {
        const char *v = *vin[i] ? *vin[i] : *vdef[i];
        size_t len = strlen(v) + 1;
        memcpy(at, v, len);
        *vout[i] = at;
        at += len;
    }
    hdr[0] = pf->iteration_header;
    hdr[1] = pf->type_header;
    hdr[2] = pf->roundtrip_header;
    for (i = 0; i < 3; i++)
        if (*hdr[i] && !pr__http_is_token(hdr[i], strlen(hdr[i])))
            return pr__err_set(err, PR_EINVAL, 0, "rfuture: the profile's header \"%.60s\" is not a header name",
                               hdr[i]);
    if (strlen(pf->event_prefix) > PR__RFUTURE_PREFIX_MAX)
        return pr__err_set(err, PR_EINVAL, 0, "rfuture: the profile's event_prefix is over 64 bytes");
    return PR_OK;
}

/* Put r in the heap with key due (room was reserved at start). */
static void pr__rfuture_heap_push(pr_rfuture_poller *p, pr__rfuture *r, int64_t due) {
    pr__sched_theap_push(&p->timers, &r->timer, due);
    if (p->clock && due < p->clock_due) pr__sched_wake(p->clock, PR_OK); /* it sleeps too long now */
}

int pr_rfuture_poller_create(pr_rfuture_poller **out, pr_http_client *client, const pr_rfuture_poller_opts *opts,
                             pr_err_info *err) {
    static const pr_backoff poll = PR_BACKOFF_SUBMIT,
                            pace = { PR_BACKOFF_EXPONENTIAL, PR_JITTER_NONE, 5, 1000, 0.0, 0.0, 0.0 };
    pr_err_info scratch;
    pr_rfuture_poller *p;
    int rc;
    if (!err) err = &scratch;
    memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out || !opts || !opts->base_url) return pr__err_set(err, PR_EINVAL, 0, "rfuture: opts->base_url is required");
    if (opts->max_polls < 0 || opts->max_response_bytes < 0 || opts->poll_timeout_ms < 0 ||
        opts->bad_request_budget < 0 || opts->billing_max_pause_ms < 0 || opts->hint_max_ms < 0 ||
        opts->max_failures < 0)
        return pr__err_set(err, PR_EINVAL, 0, "rfuture: negative limits");
    if (!(p = (pr_rfuture_poller *)pr__calloc(1, sizeof *p))) return pr__err_set(err, PR_ENOMEM, 0, "out of memory");
    p->o = *opts;
    memset(&p->o.tls, 0, sizeof p->o.tls); /* the own client copies what it needs */
    if ((rc = pr__session_client(client, &opts->tls, &p->client, &p->own, "rfuture", err)) != PR_OK) {
        pr__free(p, sizeof *p);
        return rc;
    }
    p->o.max_polls = PR__DEF(p->o.max_polls, 100);
    p->o.max_response_bytes = PR__DEF(p->o.max_response_bytes, (int64_t)50 << 20);
    p->o.poll_timeout_ms = PR__DEF(p->o.poll_timeout_ms, 45000);
    p->o.bad_request_budget = PR__DEF(p->o.bad_request_budget, 3);
    p->o.billing_max_pause_ms = PR__DEF(p->o.billing_max_pause_ms, 3600000);
    p->o.hint_max_ms = PR__DEF(p->o.hint_max_ms, 60000);
    p->o.open_attempts = PR__DEF(p->o.open_attempts, 5);
    if (!p->o.conn_backoff.base_ms) p->o.conn_backoff = poll;
    if (!p->o.poll_backoff.base_ms) p->o.poll_backoff = pace;
    rc = pr_backoff_check(&p->o.conn_backoff);
    if (!rc) rc = pr_backoff_check(&p->o.poll_backoff);
    if (rc) {
        pr_http_client_destroy(p->own);
        pr__free(p, sizeof *p);
        return pr__err_set(err, PR_EINVAL, 0, "rfuture: invalid backoff policy");
    }
    rc = pr__rfuture_profile(p, &opts->profile, err);
    if (!rc && (rc = pr__session_url(&p->url, opts->base_url, p->o.profile.path, err)) == PR_EINVAL)
        pr__err_wrap(err, rc, err, "rfuture: base_url + path");
    if (!rc && !(p->base = pr__strdup(opts->base_url, NULL))) rc = pr__err_set(err, PR_ENOMEM, 0, "out of memory");
    if (!rc && pr_wsem_create(&p->bytes, p->o.max_response_bytes)) rc = pr__err_set(err, PR_ENOMEM, 0, "out of memory");
    p->clock_due = PR_FOREVER;
    if (!rc && pr_go(NULL, pr__rfuture_clock, p, NULL) != PR_OK) rc = pr__err_set(err, PR_ENOMEM, 0, "out of memory");
    if (!rc) p->clock_alive = 1;
    if (rc) {
        pr__rfuture_poller_free(p);
        return rc;
    }
    p->o.base_url = NULL;
    *out = p;
    return PR_OK;
}

void pr_rfuture_poller_destroy(pr_rfuture_poller *p) {
    pr__rfuture *r, *next;
    if (!p) return;
    p->destroyed = 1;
    for (r = p->live; r; r = next) {
        next = r->next;
        if (r->state == PR__RFUTURE_POLLING) {
            pr_cancel(r->task); /* it rejects and finishes as it unwinds */
        } else {
            pr__rfuture_reject(r, PR_ECANCELED, 0, 0, "rfuture: request %.60s: polling cancelled", r->id);
            pr__rfuture_finish(r);
        }
    }
    if (p->clock) pr_cancel(p->clock); /* it frees p when it ends, if nothing is left */
    pr__rfuture_maybe_free(p);
}

static void pr__rfuture_doc_free(void *value, void *user_data) {
    PR__UNUSED(user_data);
    pr_json_doc_destroy((pr_json_doc *)value);
}

const pr_json *pr_rfuture_result(const pr_future *f) {
    pr_json_doc *d = (pr_json_doc *)pr_future_value(f);
    return d ? pr_json_root(d) : NULL;
}

static void pr__rfuture_event_full(pr__rfuture *r, const char *what, int severity, int status, const char *kind,
                                   const char *detail, int settled, int error, const char *new_id) {
    pr_rfuture_poller *p = r->p;
    pr_rfuture_event ev;
    char name[PR__RFUTURE_PREFIX_MAX + 32];
    if (!p->o.observer.on_event) return;
    memset(&ev, 0, sizeof ev);
    snprintf(name, sizeof name, "%s%s", p->o.profile.event_prefix, what);
    ev.name = name;
    ev.severity = severity;
    ev.request_id = r->id;
    ev.request_type = r->type ? r->type : "";
    ev.iteration = r->iteration - 1;
    ev.elapsed_s = (double)(pr_now() - r->start_ms) / 1000.0;
    ev.status_code = status;
    ev.kind = kind;
    ev.should_retry = kind && strcmp(kind, "fatal") != 0;
    ev.is_user_error = status >= 400 && status < 500 && status != 408;
    ev.bad_request_retries = r->bad_requests;
    ev.connection_error_retries = r->conn_errors;
    ev.timeout_ms = r->o.timeout_ms;
    ev.detail = detail;
    ev.settled = settled;
    ev.error = error;
    ev.new_request_id = new_id;
    p->o.observer.on_event(&ev, p->o.observer.user_data);
}

static void pr__rfuture_event_ex(pr__rfuture *r, const char *what, int severity, int status, const char *kind,
                                 const char *detail, int settled, int error) {
    pr__rfuture_event_full(r, what, severity, status, kind, detail, settled, error, NULL);
}

static void pr__rfuture_event(pr__rfuture *r, const char *what, int severity, int status, const char *kind,
                         const char *detail) {
    pr__rfuture_event_ex(r, what, severity, status, kind, detail, 0, 0);
}

/* Settle the future unless it is settled already (a cancel). */
static void pr__rfuture_reject(pr__rfuture *r, int code, int status, int category, const char *fmt, ...) {
    pr_err_info e;
    va_list ap;
    memset(&e, 0, sizeof e);
    e.code = code;
    e.http_status = status;
    e.category = category;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    if (pr_future_state(r->f) == PR_FUTURE_PENDING) pr_future_reject_info(r->f, &e);
}

/* Settle the future with cause's code and detail, its message after the
   words of fmt. */
static void pr__rfuture_reject_cause(pr__rfuture *r, const pr_err_info *cause, const char *fmt, ...) {
    pr_err_info e;
    char pre[sizeof e.msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    pr__err_wrap(&e, cause->code, cause, "%s", pre);
    if (pr_future_state(r->f) == PR_FUTURE_PENDING) pr_future_reject_info(r->f, &e);
}

/* A transient failure (cause: no answer, or 408 / 429 / 5xx) is counted:
   before the first answer against open_attempts, after it against
   max_failures. At the bound the future ends with cause (the event what,
   settled) and 1 is returned; else 0 and the caller polls again. */
static int pr__rfuture_gave_up(pr__rfuture *r, const pr_err_info *cause, const char *what) {
    pr_rfuture_poller *p = r->p;
    int bound = r->answered ? p->o.max_failures : p->o.open_attempts;
    r->last = *cause;
    r->failures++;
    if (bound <= 0 || r->failures < bound) return 0;
    pr__rfuture_event_ex(r, what, PR_SEVERITY_ERROR, cause->http_status, "fatal", cause->msg, 1, cause->code);
    pr__rfuture_reject_cause(r, cause, "rfuture: request %.40s: %d polls failed%s", r->id, r->failures,
                             r->answered ? " in a row" : ", none answered");
    return 1;
}

/* After a poll that goes on: a failed one (delay >= 0 until the next; -1
   after an answer) is noted on the future for its waiters
   (pr_future_note_retry), or, when the next poll would start after the
   future's limit, ends it now with the failure's cause rather than
   PR_ETIMEDOUT later (1 is returned). */
static int pr__rfuture_retry_late(pr__rfuture *r, int64_t delay) {
    int64_t at = pr__time_add(pr_now(), PR__MAX(delay, 0));
    if (delay < 0) {
        (void)pr_future_note_retry(r->f, NULL, 0);
        return 0;
    }
    if (r->until == PR_FOREVER || at < r->until) {
        (void)pr_future_note_retry(r->f, &r->last, at); /* PR_ENOMEM: waiters just wait */
        return 0;
    }
    pr__rfuture_event_ex(r, r->last.http_status ? "api_status_error" : "connection_error", PR_SEVERITY_ERROR,
                         r->last.http_status, "fatal", r->last.msg, 1, r->last.code);
    pr__rfuture_reject_cause(r, &r->last, "rfuture: request %.40s: the next poll would start after timeout_ms; the last",
                             r->id);
    return 1;
}

static int pr__rfuture_queue_state(const pr_json *v) {
    size_t n;
    const char *s = pr_json_string(v, &n);
    if (!s) return PR_QUEUE_UNKNOWN;
    if (!strcmp(s, "active")) return PR_QUEUE_ACTIVE;
    if (!strcmp(s, "paused_rate_limit")) return PR_QUEUE_PAUSED_RATE_LIMIT;
    if (!strcmp(s, "paused_capacity")) return PR_QUEUE_PAUSED_CAPACITY;
    return PR_QUEUE_UNKNOWN;
}

/* Why a server's string s (n bytes) cannot be kept whole, or NULL. */
static const char *pr__rfuture_str_bad(const char *s, size_t n) {
    return n > PR__RFUTURE_STR_MAX ? "is over 1024 bytes" : memchr(s, 0, n) ? "holds a NUL byte" : NULL;
}

/* Tell the observer about a (state, reason) pair if it changed. A report
   with no state and no reason is no report. Returns 1 when the reason is
   refused (the future is rejected with PR_EPROTO). */
static int pr__rfuture_queue(pr__rfuture *r, const pr_json *body, int status) {
    pr_rfuture_poller *p = r->p;
    const pr_json *qs = pr_json_get(body, p->o.profile.queue_state_field),
                  *qr = pr_json_get(body, p->o.profile.queue_reason_field);
    size_t rn = 0;
    const char *reason = pr_json_string(qr, &rn);
    int st = qs ? pr__rfuture_queue_state(qs) : PR_QUEUE_UNKNOWN;
    pr_queue_change ch;
    char *copy = NULL;
    const char *bad = reason ? pr__rfuture_str_bad(reason, rn) : NULL;
    if (bad) {
        char why[64];
        snprintf(why, sizeof why, "the %.40s %s", p->o.profile.queue_reason_field, bad);
        pr__rfuture_event_ex(r, "validation_error", PR_SEVERITY_ERROR, status, NULL, why, 1, PR_EPROTO);
        pr__rfuture_reject(r, PR_EPROTO, status, 0, "rfuture: request %.40s: %s", r->id, why);
        return 1;
    }
    if (!qs && !reason) return 0;
    if (reason && !rn) reason = NULL;
    if (st == r->qstate && ((!reason && !r->qreason) || (reason && r->qreason && !strcmp(reason, r->qreason))))
        return 0;
    if (reason && !(copy = (char *)pr__alloc(rn + 1))) return 0;
    if (copy) memcpy(copy, reason, rn + 1);
    ch.request_id = r->id;
    ch.old_state = r->qstate;
    ch.old_reason = r->qreason;
    ch.state = st;
    ch.reason = copy;
    if (p->o.observer.on_queue_state) p->o.observer.on_queue_state(&ch, p->o.observer.user_data);
    pr__free(r->qreason, r->qreason_n);
    r->qreason = copy;
    r->qreason_n = copy ? rn + 1 : 0;
    r->qstate = st;
    return 0;
}

static int64_t pr__rfuture_delay(const pr__rfuture *r, const pr_backoff *b, int attempt) {
    return pr__retry_delay_ms(b, attempt, NULL, &r->p->o.hooks);
}

/* The wait before the next poll: the server's delay when it gave one
   (retry_after_ms > 0 in body, else the answer's retry-after-ms /
   Retry-After) between poll_backoff.base_ms and hint_max_ms; else
   fallback. A number of any size is compared as a double first. */
static int64_t pr__rfuture_wait(const pr__rfuture *r, const pr_http_result *res, const pr_json *body, int64_t fallback) {
    const pr_retry_hooks *h = &r->p->o.hooks;
    int64_t hint, cap = r->p->o.hint_max_ms;
    double ms;
    if (pr_json_double(pr_json_get(body, r->p->o.profile.retry_after_field), &ms) == PR_OK && ms > 0)
        hint = ms < (double)cap ? (int64_t)ms + ((double)(int64_t)ms < ms) : cap;
    else if (!pr_retry_hint_ms(pr_http_header_get(res->resp, "retry-after-ms"),
                               pr_http_header_get(res->resp, "retry-after"),
                               h->wall_clock_ms ? h->wall_clock_ms(h->user_data) : pr__time_wall_ms(), cap, &hint))
        return fallback;
    return PR__MIN(PR__MAX(hint, r->p->o.poll_backoff.base_ms), cap);
}

/* One poll: the request, with the poll's deadline over the whole response. */
static int pr__rfuture_poll(pr__rfuture *r, pr_http_result *res, pr_err_info *err, int64_t deadline) {
    pr_rfuture_poller *p = r->p;
    const pr_rfuture_profile *pf = &p->o.profile;
    pr_http_header h[5];
    const char **lines = NULL;
    pr_http_request req;
    pr_json_writer w;
    pr_buf body;
    char iter[24], rt[40];
    size_t nh = 0, lines_size = 0;
    int rc;
    pr_buf_init(&body);
    pr_json_writer_init(&w, &body);
    pr_json_begin_object(&w);
    pr_json_key(&w, pf->request_id_field, strlen(pf->request_id_field));
    pr_json_write_string(&w, r->id, r->id_n - 1);
    pr_json_key(&w, pf->metadata_field, strlen(pf->metadata_field));
    pr_json_write_bool(&w, r->allow_md);
    pr_json_end_object(&w);
    if ((rc = pr_json_writer_finish(&w)) != PR_OK) {
        pr_buf_deinit(&body);
        return rc;
    }
    iter[pr__buf_dec(iter, (uint64_t)r->iteration)] = 0;
    h[nh].name = pr_slice_cstr("Content-Type");
    h[nh++].value = pr_slice_cstr("application/json");
    h[nh].name = pr_slice_cstr("Accept");
    h[nh++].value = pr_slice_cstr("application/json");
    if (*pf->iteration_header) {
        h[nh].name = pr_slice_cstr(pf->iteration_header);
        h[nh++].value = pr_slice_cstr(iter);
    }
    if (r->type && *pf->type_header) {
        h[nh].name = pr_slice_cstr(pf->type_header);
        h[nh++].value = pr_slice_cstr(r->type);
    }
    if (r->iteration == 0 && r->o.submitted_at_ms > 0 && *pf->roundtrip_header) {
        snprintf(rt, sizeof rt, "%.3f", (double)(r->created_ms - r->o.submitted_at_ms) / 1000.0);
        h[nh].name = pr_slice_cstr(pf->roundtrip_header);
        h[nh++].value = pr_slice_cstr(rt);
    }
    if (pr__http_lines_join(NULL, h, nh, &lines, &lines_size) != PR_OK) {
        pr_buf_deinit(&body);
        return PR_ENOMEM;
    }
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.url = &p->url;
    req.headers = lines;
    req.body = body.data;
    req.body_len = body.len;
    req.retry = &pr__retry_off;
    rc = pr_http_client_fetch(p->client, res, &req, err, deadline);
    pr__free(lines, lines_size);
    pr_buf_deinit(&body);
    return rc;
}

/* A string member, or NULL. */
static const char *pr__rfuture_str(const pr_json *o, const char *key) {
    size_t n;
    return pr_json_string(pr_json_get(o, key), &n);
}

static int pr__rfuture_category(const char *s) {
    if (s && !strcmp(s, "user")) return PR_CATEGORY_USER;
    if (s && !strcmp(s, "server")) return PR_CATEGORY_SERVER;
    return PR_CATEGORY_UNKNOWN;
}

/* The result value as a document of its own (the wrapper's "result"). */
static int pr__rfuture_subdoc(const pr_json *v, pr_json_doc **out) {
    pr_buf b;
    pr_json_writer w;
    int rc;
    pr_buf_init(&b);
    pr_json_writer_init(&w, &b);
    pr_json_write_value(&w, v);
    rc = pr_json_writer_finish(&w);
    if (!rc) rc = pr_json_parse(out, b.data, b.len, NULL, NULL);
    pr_buf_deinit(&b);
    return rc;
}

enum { PR__RFUTURE_AGAIN, PR__RFUTURE_DONE, PR__RFUTURE_RESUBMIT };

/* A 200 answer. Returns PR__RFUTURE_AGAIN (poll again after *delay) or
   PR__RFUTURE_DONE (the future is settled). */
static int pr__rfuture_answer(pr__rfuture *r, pr_http_result *res, int64_t until, int64_t *delay) {
    pr_rfuture_poller *p = r->p;
    pr_json_doc *doc = res->json;
    const pr_json *body, *result = NULL;
    const char *type, *status;
    int rc;
    if (doc) res->json = NULL; /* ours now */
    else if (pr_json_parse(&doc, res->body, res->body_len, NULL, NULL) != PR_OK) doc = NULL;
    body = doc ? pr_json_root(doc) : NULL;
    if (pr_json_type(body) != PR_JSON_OBJECT) {
        pr__rfuture_event_ex(r, "validation_error", PR_SEVERITY_ERROR, 200, NULL,
                        doc ? "the answer is not a JSON object" : "the answer is not JSON", 1, PR_EPROTO);
        pr__rfuture_reject(r, PR_EPROTO, 200, 0, "rfuture: request %.40s: the answer is %s", r->id,
                      doc ? "not a JSON object" : "not JSON");
        pr_json_doc_destroy(doc);
        return PR__RFUTURE_DONE;
    }
    type = pr__rfuture_str(body, "type");
    status = pr__rfuture_str(body, "status");
    if ((type && !strcmp(type, "try_again")) || (status && !strcmp(status, "pending"))) {
        if (type && pr__rfuture_queue(r, body, 200)) {
            pr_json_doc_destroy(doc);
            return PR__RFUTURE_DONE;
        }
        r->conn_errors = 0;
        *delay = pr__rfuture_wait(r, res, body, pr__rfuture_delay(r, &p->o.poll_backoff, r->iteration - 1));
        pr_json_doc_destroy(doc);
        return PR__RFUTURE_AGAIN;
    }
    if (status && !strcmp(status, "complete_metadata")) {
        int64_t size;
        if (!r->allow_md) {
            pr__rfuture_reject(r, PR_EPROTO, 200, 0, "rfuture: request %.40s: complete_metadata twice", r->id);
            pr_json_doc_destroy(doc);
            return PR__RFUTURE_DONE;
        }
        if (pr_json_int(pr_json_get(body, p->o.profile.payload_size_field), &size) != PR_OK || size < 0) {
            pr__rfuture_reject(r, PR_EPROTO, 200, 0, "rfuture: request %.40s: complete_metadata without a size", r->id);
            pr_json_doc_destroy(doc);
            return PR__RFUTURE_DONE;
        }
        *delay = pr__rfuture_wait(r, res, body, 0);
        pr_json_doc_destroy(doc);
        if ((rc = pr_wsem_acquire(p->bytes, size, until)) != PR_OK) {
            pr__rfuture_reject(r, rc, 0, 0, "rfuture: request %.40s: %s waiting for response bytes", r->id,
                          pr_strerror(rc));
            return PR__RFUTURE_DONE;
        }
        r->reserved = size;
        r->allow_md = 0;
        r->conn_errors = 0;
        return PR__RFUTURE_AGAIN;
    }
    if ((status && (!strcmp(status, "completed") || !strcmp(status, "complete") || !strcmp(status, "success"))) ||
        (type && (!strcmp(type, "completed") || !strcmp(type, "success")))) {
        result = pr_json_get(body, "result");
    }
    if (!result && ((status && !strcmp(status, "failed")) || pr_json_get(body, "error"))) {
        const pr_json *ev = pr_json_get(body, "error");
        const char *msg = pr_json_string(ev, NULL), *cat = pr__rfuture_str(body, "category");
        int category;
        if (!msg) msg = pr__rfuture_str(ev, "message");
        if (!cat) cat = pr__rfuture_str(ev, "category");
        category = pr__rfuture_category(cat);
        pr__rfuture_event_ex(r, "application_error",
                        category == PR_CATEGORY_USER ? PR_SEVERITY_WARNING : PR_SEVERITY_ERROR, 200, NULL,
                        msg ? msg : "failed", 1, PR_EFAILED);
        pr__rfuture_reject(r, PR_EFAILED, 200, category, "%.110s", msg ? msg : "the remote operation failed");
        pr_json_doc_destroy(doc);
        return PR__RFUTURE_DONE;
    }
    /* completed: the wrapper's result, or the whole body */
    if (result) {
        pr_json_doc *sub = NULL;
        if ((rc = pr__rfuture_subdoc(result, &sub)) != PR_OK) {
            pr_json_doc_destroy(doc);
            pr__rfuture_reject(r, rc, 200, 0, "rfuture: request %.40s: %s", r->id, pr_strerror(rc));
            return PR__RFUTURE_DONE;
        }
        pr_json_doc_destroy(doc);
        doc = sub;
    }
    if (r->o.validate) {
        pr_err_info why;
        memset(&why, 0, sizeof why);
        if (r->o.validate(pr_json_root(doc), &why, r->o.user_data) != 0) {
            pr__rfuture_event_ex(r, "validation_error", PR_SEVERITY_ERROR, 200, NULL, why.msg, 1, PR_EPROTO);
            pr__rfuture_reject(r, PR_EPROTO, 200, 0, "rfuture: request %.30s: invalid result: %.70s", r->id,
                          why.msg[0] ? why.msg : "refused by validate");
            pr_json_doc_destroy(doc);
            return PR__RFUTURE_DONE;
        }
    }
    if (pr_future_state(r->f) == PR_FUTURE_PENDING) {
        pr_future_on_free(r->f, pr__rfuture_doc_free, NULL);
        pr_future_resolve(r->f, doc);
        pr__rfuture_event_ex(r, "resolved", PR_SEVERITY_INFO, 200, NULL, NULL, 1, PR_OK);
    } else {
        pr_json_doc_destroy(doc);
    }
    return PR__RFUTURE_DONE;
}

/* An HTTP error status. Returns PR__RFUTURE_AGAIN (with *delay) or PR__RFUTURE_DONE. */
static int pr__rfuture_status(pr__rfuture *r, pr_http_result *res, int64_t *delay) {
    pr_rfuture_poller *p = r->p;
    int st = res->status;
    char detail[96];
    pr_err_info cause;
    snprintf(detail, sizeof detail, "HTTP %d: %.80s", st, res->body ? res->body : "");
    pr__err_set(&cause, PR_EHTTP, 0, "%s", detail);
    cause.http_status = st;
    r->last = cause;
    if (st == 429) {
        if (pr__rfuture_gave_up(r, &cause, "api_status_error")) return PR__RFUTURE_DONE;
        pr__rfuture_event(r, "api_status_error", PR_SEVERITY_WARNING, st, "retry_with_backoff", detail);
        *delay = pr__rfuture_wait(r, res, NULL, pr__rfuture_delay(r, &p->o.conn_backoff, r->conn_errors++));
        return PR__RFUTURE_AGAIN;
    }
    r->conn_errors = 0;
    if (st == 408 || (st >= 500 && st <= 599)) {
        pr_json_doc *doc = NULL;
        const pr_json *body = NULL;
        int bad = 0;
        if (st == 408) {
            if (!(doc = res->json)) pr_json_parse(&doc, res->body ? res->body : "", res->body_len, NULL, NULL);
            if (doc && pr_json_type(pr_json_root(doc)) == PR_JSON_OBJECT) {
                const char *qs = pr__rfuture_str(pr_json_root(doc), p->o.profile.queue_state_field);
                body = pr_json_root(doc);
                r->bad_requests = 0;
                r->answered = 1; /* a try_again in an error's clothes: the job is known */
                r->failures = 0;
                if (qs && *qs) bad = pr__rfuture_queue(r, body, st);
            }
        }
        if (!bad && !body && pr__rfuture_gave_up(r, &cause, "api_status_error")) {
            bad = 1;
        } else if (!bad) {
            pr__rfuture_event(r, "api_status_error", PR_SEVERITY_WARNING, st, "retry", detail);
            *delay = pr__rfuture_wait(r, res, body, pr__rfuture_delay(r, &p->o.poll_backoff, r->iteration - 1));
        }
        if (doc != res->json) pr_json_doc_destroy(doc);
        return bad ? PR__RFUTURE_DONE : PR__RFUTURE_AGAIN;
    }
    r->failures = 0; /* an answer that is not a transient failure */
    if (st == 400 && r->bad_requests < p->o.bad_request_budget) {
        r->bad_requests++;
        pr__rfuture_event(r, "api_status_error", PR_SEVERITY_WARNING, st, "retry_if_budget", detail);
        *delay = pr__rfuture_wait(r, res, NULL, pr__rfuture_delay(r, &p->o.poll_backoff, r->iteration - 1));
        return PR__RFUTURE_AGAIN;
    }
    if (st == 410 && r->sbody && r->resubmits < r->o.max_resubmits) {
        pr__rfuture_event(r, "api_status_error", PR_SEVERITY_WARNING, st, "retryable_exception", detail);
        return PR__RFUTURE_RESUBMIT;
    }
    if (st == 410) {
        pr__rfuture_event_ex(r, "api_status_error", PR_SEVERITY_WARNING, st, "retryable_exception", detail, 1,
                        PR_EEXPIRED);
        pr__rfuture_reject(r, PR_EEXPIRED, st, PR_CATEGORY_SERVER, "rfuture: promise expired or broken for request %.60s",
                      r->id);
        return PR__RFUTURE_DONE;
    }
    if (st == 402) {
        int64_t now = pr_now();
        if (!r->first402 || now - r->last402 > PR__RFUTURE_BILLING_RESET_MS) r->first402 = now; /* a new incident */
        r->last402 = now;
        if (now - r->first402 < p->o.billing_max_pause_ms) {
            if (!r->warned402 || now - r->warned402 >= 60000) {
                r->warned402 = now;
                PR__LOG(PR_LEVEL_WARN, "rfuture", "request %.60s: payment required (402); waiting", r->id);
            }
            *delay = pr__rfuture_wait(r, res, NULL, PR__RFUTURE_BILLING_SLEEP_MS);
            return PR__RFUTURE_AGAIN;
        }
    }
    pr__rfuture_event_ex(r, "api_status_error", PR_SEVERITY_ERROR, st, "fatal", detail, 1, PR_EHTTP);
    if (st == 400)
        pr__rfuture_reject(r, PR_EHTTP, st, PR_CATEGORY_USER, "rfuture: request %.40s: 400 after %d retries: %.50s", r->id,
                      r->bad_requests, res->body ? res->body : "");
    else
        pr__rfuture_reject(r, PR_EHTTP, st, st >= 400 && st < 500 ? PR_CATEGORY_USER : PR_CATEGORY_UNKNOWN,
                      "rfuture: request %.40s: HTTP %d: %.50s", r->id, st, res->body ? res->body : "");
    return PR__RFUTURE_DONE;
}

/* Finish a future whose outcome is settled: give back what it holds,
   drop the poller's reference, free the state. */
static void pr__rfuture_finish(pr__rfuture *r) {
    pr_rfuture_poller *p = r->p;
    if (r->state == PR__RFUTURE_READY) { /* unlink from the FIFO */
        pr__rfuture **pp = &p->ready, *prev = NULL;
        while (*pp && *pp != r) {
            prev = *pp;
            pp = &(*pp)->rnext;
        }
        if (*pp) {
            *pp = r->rnext;
            if (p->ready_tail == r) p->ready_tail = prev;
            p->nready--;
        }
    }
    pr__sched_theap_remove(&p->timers, &r->timer);
    if (r->reserved) pr_wsem_release(p->bytes, r->reserved);
    pr_future_on_cancel(r->f, NULL, NULL);
    pr_future_destroy(r->f); /* the poller's reference */
    if (r->prev) r->prev->next = r->next;
    else p->live = r->next;
    if (r->next) r->next->prev = r->prev;
    p->nlive--;
    pr__rfuture_free(r);
    pr__rfuture_maybe_free(p);
}

static void pr__rfuture_maybe_free(pr_rfuture_poller *p) {
    if (p->destroyed && !p->nlive && !p->clock_alive) pr__rfuture_poller_free(p);
}

static int pr__rfuture_poll_task(void *arg);

/* Start polls while there are slots and futures waiting for one. */
static void pr__rfuture_pump(pr_rfuture_poller *p) {
    while (p->active < p->o.max_polls && p->ready) {
        pr__rfuture *r = p->ready;
        p->ready = r->rnext;
        if (!p->ready) p->ready_tail = NULL;
        p->nready--;
        r->rnext = NULL;
        pr__sched_theap_remove(&p->timers, &r->timer);
        r->state = PR__RFUTURE_POLLING;
        r->task = NULL;
        p->active++;
        if (pr_go(NULL, pr__rfuture_poll_task, r, NULL) != PR_OK) {
            p->active--;
            pr__rfuture_reject(r, PR_ENOMEM, 0, 0, "rfuture: request %.60s: out of memory", r->id);
            pr__rfuture_finish(r);
        }
    }
}

/* r waits for a slot (its limit, if any, in the heap). */
static void pr__rfuture_ready(pr__rfuture *r) {
    pr_rfuture_poller *p = r->p;
    r->state = PR__RFUTURE_READY;
    r->rnext = NULL;
    if (p->ready_tail) p->ready_tail->rnext = r;
    else p->ready = r;
    p->ready_tail = r;
    p->nready++;
    if (r->until != PR_FOREVER) pr__rfuture_heap_push(p, r, r->until);
    pr__rfuture_pump(p);
}

/* r waits delay_ms (or until its limit) before it wants a slot again. */
static void pr__rfuture_sleep_until(pr__rfuture *r, int64_t delay_ms) {
    r->state = PR__RFUTURE_SLEEPING;
    pr__rfuture_heap_push(r->p, r, pr_deadline_min(pr_deadline_in(delay_ms), r->until));
}

/* The limit has passed: PR_ETIMEDOUT. */
static void pr__rfuture_timeout(pr__rfuture *r) {
    pr__rfuture_event_ex(r, "timeout", PR_SEVERITY_ERROR, 0, NULL, r->last.msg, 1, PR_ETIMEDOUT);
    pr__rfuture_reject(r, PR_ETIMEDOUT, 0, 0, "rfuture: timed out polling request %.30s (last: %.50s)", r->id,
                  r->last.msg[0] ? r->last.msg : "none");
    pr__rfuture_finish(r);
}

/* The clock: sleeps until the heap's first due, then moves due sleepers to
   the FIFO and times out futures past their limit. */
static int pr__rfuture_clock(void *arg) {
    pr_rfuture_poller *p = (pr_rfuture_poller *)arg;
    pr_sched *s = pr__sched_get();
    p->clock = pr_self();
    while (!p->destroyed) {
        pr__sched_theap_node *n = pr__sched_theap_top(&p->timers);
        int64_t now;
        p->clock_due = n ? n->key : PR_FOREVER;
        if (pr__sched_park(s, p->clock_due) == PR_ECANCELED) break;
        now = pr_now();
        while ((n = pr__sched_theap_top(&p->timers)) != NULL && n->key <= now) {
            pr__rfuture *r = PR__CONTAINER_OF(n, pr__rfuture, timer);
            pr__sched_theap_remove(&p->timers, n);
            if (now >= r->until) pr__rfuture_timeout(r);
            else if (r->state == PR__RFUTURE_SLEEPING) pr__rfuture_ready(r);
        }
    }
    p->clock = NULL;
    p->clock_alive = 0;
    pr__rfuture_maybe_free(p);
    return 0;
}

static void pr__rfuture_cancel_hook(void *user_data) {
    pr__rfuture *r = (pr__rfuture *)user_data;
    if (r->state == PR__RFUTURE_POLLING) {
        if (r->task) pr_cancel(r->task);
        else r->stop = 1; /* the task has not run yet */
    } else {
        pr__rfuture_finish(r); /* waiting: nothing runs for it; the future is already rejected */
    }
}

/* One poll of r, then its next step: finished, waiting for a slot, or
   waiting out a delay. */
static int pr__rfuture_poll_task(void *arg) {
    pr__rfuture *r = (pr__rfuture *)arg;
    pr_rfuture_poller *p = r->p;
    pr_http_result res;
    pr_err_info e;
    int64_t delay = 0;
    int rc, next = PR__RFUTURE_AGAIN;
    r->task = pr_self();
    if (r->stop) pr_cancel(r->task);
    if (!r->start_ms) r->start_ms = pr_now();
    if (pr_is_canceled()) {
        pr__rfuture_reject(r, PR_ECANCELED, 0, 0, "rfuture: request %.60s: polling cancelled", r->id);
        next = PR__RFUTURE_DONE;
    } else if (pr_now() >= r->until) {
        p->active--;
        r->task = NULL;
        pr__rfuture_timeout(r);
        pr__rfuture_pump(p);
        return 0;
    }
    if (next == PR__RFUTURE_AGAIN) {
        memset(&res, 0, sizeof res);
        rc = pr__rfuture_poll(r, &res, &e, pr_deadline_min(r->until, pr_deadline_in(p->o.poll_timeout_ms)));
        r->iteration++;
        if (rc == PR_ECANCELED || pr_is_canceled()) {
            pr__rfuture_reject(r, PR_ECANCELED, 0, 0, "rfuture: request %.60s: polling cancelled", r->id);
            next = PR__RFUTURE_DONE;
        } else if (rc == PR_ETIMEDOUT && pr_now() >= r->until) {
            delay = 0; /* the limit: the timeout below */
        } else if (rc == PR_ELIMIT || rc == PR_ECIRCUIT || pr__client_final(rc, &e)) {
            /* polling again cannot help: a name that does not exist, TLS refused, ... */
            e.code = rc;
            pr__rfuture_event_ex(r, "connection_error", PR_SEVERITY_ERROR, 0, "fatal", e.msg, 1, rc);
            pr__rfuture_reject_cause(r, &e, "rfuture: request %.40s", r->id);
            next = PR__RFUTURE_DONE;
        } else if (rc) { /* no answer: a connection error, back off */
            if (rc == PR_ETIMEDOUT) /* the poll's own limit, not the caller's */
                pr__err_set(&e, PR_EIO, ETIMEDOUT, "no answer within poll_timeout_ms (%d ms)", p->o.poll_timeout_ms);
            e.code = rc == PR_ETIMEDOUT ? PR_EIO : rc;
            if (pr__rfuture_gave_up(r, &e, "connection_error")) {
                next = PR__RFUTURE_DONE;
            } else {
                pr__rfuture_event(r, "connection_error", PR_SEVERITY_WARNING, 0, "retry_with_backoff", e.msg);
                delay = pr__rfuture_delay(r, &p->o.conn_backoff, r->conn_errors++);
            }
        } else if (res.status >= 200 && res.status <= 299) {
            r->answered = 1;
            r->failures = 0;
            next = pr__rfuture_answer(r, &res, r->until, &delay);
        } else {
            next = pr__rfuture_status(r, &res, &delay);
        }
        pr_http_result_deinit(&res);
        if (next == PR__RFUTURE_RESUBMIT) next = pr__rfuture_resubmit(r);
        if (next == PR__RFUTURE_AGAIN && pr__rfuture_retry_late(r, r->failures ? delay : -1)) next = PR__RFUTURE_DONE;
    }
    p->active--;
    r->task = NULL;
    if (next == PR__RFUTURE_DONE || pr_future_state(r->f) != PR_FUTURE_PENDING) {
        pr__rfuture_finish(r);
    } else if (pr_now() >= r->until) {
        pr__rfuture_timeout(r);
    } else if (delay > 0 && p->o.hooks.sleep) {
        /* the application's sleep (tests record it), on this task: the slot is
           free meanwhile, and a cancel reaches the task */
        r->task = pr_self();
        rc = p->o.hooks.sleep(delay, pr_deadline_min(pr_deadline_in(delay), r->until), p->o.hooks.user_data);
        if (rc == PR_ECANCELED || pr_is_canceled()) {
            pr__rfuture_reject(r, PR_ECANCELED, 0, 0, "rfuture: request %.60s: polling cancelled", r->id);
            pr__rfuture_finish(r);
        } else if (pr_now() >= r->until) {
            pr__rfuture_timeout(r);
        } else {
            pr__rfuture_ready(r);
        }
    } else if (delay > 0) {
        pr__rfuture_sleep_until(r, delay);
    } else {
        pr__rfuture_ready(r);
    }
    pr__rfuture_pump(p);
    return 0;
}

/* Start polling for request_id; a resubmittable job keeps its submit
   (path, body) to send again. */
static int pr__rfuture_begin(pr_future **out, pr_rfuture_poller *p, const char *request_id, const pr_rfuture_opts *opts,
                             const char *path, const char *body, size_t len) {
    pr__rfuture *r;
    int rc;
    if (out) *out = NULL;
    if (!out || !p || !request_id || (opts && (opts->max_resubmits < 0 || opts->resubmittable < 0))) return PR_EINVAL;
    if (p->destroyed) return PR_ESTATE;
    /* a heap slot for every live future: pushes never allocate */
    if (pr__sched_theap_reserve(&p->timers, (size_t)p->nlive + 1) != PR_OK) return PR_ENOMEM;
    if (!(r = (pr__rfuture *)pr__calloc(1, sizeof *r))) return PR_ENOMEM;
    if (opts) r->o = *opts;
    r->p = p;
    r->allow_md = 1;
    r->created_ms = pr_now();
    r->until = r->o.timeout_ms > 0 ? pr_deadline_in(r->o.timeout_ms) : PR_FOREVER;
    if (!(r->id = pr__strdup(request_id, &r->id_n)) ||
        (r->o.request_type && !(r->type = pr__strdup(r->o.request_type, &r->type_n)))) {
        pr__free(r->id, r->id_n);
        pr__free(r, sizeof *r);
        return PR_ENOMEM;
    }
    r->o.request_type = NULL;
    r->o.max_resubmits = PR__DEF(r->o.max_resubmits, 1);
    if (r->o.resubmittable && path) {
        if (!(r->spath = pr__strdup(path, &r->spath_n)) || !(r->sbody = (char *)pr__alloc(len + 1))) {
            pr__rfuture_free(r);
            return PR_ENOMEM;
        }
        r->sbody_n = len + 1;
        if (len) memcpy(r->sbody, body, len);
        r->sbody[len] = 0;
    }
    if ((rc = pr_future_create(&r->f)) != PR_OK) {
        pr__rfuture_free(r);
        return rc;
    }
    r->next = p->live;
    if (p->live) p->live->prev = r;
    p->live = r;
    p->nlive++;
    pr_future_retain(r->f); /* the poller's reference */
    pr_future_on_cancel(r->f, pr__rfuture_cancel_hook, r);
    *out = r->f;
    pr__rfuture_ready(r);
    return PR_OK;
}

int pr_rfuture_start(pr_future **out, pr_rfuture_poller *p, const char *request_id, const pr_rfuture_opts *opts) {
    if (out) *out = NULL;
    if (opts && opts->resubmittable) return PR_EINVAL; /* no submit to send again */
    return pr__rfuture_begin(out, p, request_id, opts, NULL, NULL, 0);
}

/* POST body (len bytes) to <base_url><path> with the client's retry
   policy, and take the request id of the answer: *id receives a copy
   (*id_n bytes allocated). */
static int pr__rfuture_post(pr_rfuture_poller *p, const char *path, const char *body, size_t len, char **id,
                            size_t *id_n, pr_err_info *e, int64_t deadline) {
    static const char *const h[] = { "Content-Type: application/json", "Accept: application/json", NULL };
    pr_http_request req;
    pr_http_result res;
    pr_url url;
    const char *v, *bad;
    int rc;
    *id = NULL;
    memset(&url, 0, sizeof url);
    if ((rc = pr__session_url(&url, p->base, path, e)) != PR_OK)
        return rc == PR_EINVAL ? pr__err_wrap(e, rc, e, "rfuture: base_url + the submit's path") : rc;
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.url = &url;
    req.headers = h;
    req.body = body ? body : "";
    req.body_len = len;
    memset(&res, 0, sizeof res);
    rc = pr_http_client_fetch(p->client, &res, &req, e, deadline);
    pr_url_deinit(&url);
    if (!rc && (res.status < 200 || res.status > 299)) {
        rc = PR_EHTTP;
        e->code = PR_EHTTP;
        e->http_status = res.status;
    }
    if (!rc) {
        size_t n = 0;
        pr_json_doc *doc = res.json;
        if (!doc) pr_json_parse(&doc, res.body, res.body_len, NULL, NULL);
        v = doc ? pr_json_string(pr_json_get(pr_json_root(doc), p->o.profile.request_id_field), &n) : NULL;
        bad = !v || !n ? "is missing" : pr__rfuture_str_bad(v, n);
        if (bad)
            rc = pr__err_set(e, PR_EPROTO, 0, "rfuture: the submit's %.40s %s", p->o.profile.request_id_field, bad);
        else if (!(*id = (char *)pr__alloc(n + 1)))
            rc = pr__err_set(e, PR_ENOMEM, 0, "out of memory");
        else {
            memcpy(*id, v, n + 1);
            *id_n = n + 1;
        }
        if (doc != res.json) pr_json_doc_destroy(doc);
    }
    pr_http_result_deinit(&res);
    return rc;
}

/* The job expired (410) and may run again: submit it again and poll the
   new id from the start. Runs on the poll task. */
static int pr__rfuture_resubmit(pr__rfuture *r) {
    pr_rfuture_poller *p = r->p;
    pr_err_info e;
    char *id = NULL;
    size_t id_n = 0;
    int64_t began = pr_now();
    int rc;
    memset(&e, 0, sizeof e);
    rc = pr__rfuture_post(p, r->spath, r->sbody, r->sbody_n - 1, &id, &id_n, &e,
                          pr_deadline_min(r->until, pr_deadline_in(p->o.poll_timeout_ms)));
    if (rc == PR_ECANCELED || pr_is_canceled()) {
        pr__free(id, id_n);
        pr__rfuture_reject(r, PR_ECANCELED, 0, 0, "rfuture: request %.60s: polling cancelled", r->id);
        return PR__RFUTURE_DONE;
    }
    if (rc == PR_ETIMEDOUT && pr_now() >= r->until) return PR__RFUTURE_AGAIN; /* the limit: timed out next */
    if (rc == PR_ETIMEDOUT) { /* poll_timeout_ms, not the caller's limit */
        rc = PR_EIO;
        e.code = PR_EIO;
        e.sys_errno = ETIMEDOUT;
    }
    if (rc) {
        e.code = rc;
        pr__rfuture_event_ex(r, e.http_status ? "api_status_error" : "connection_error", PR_SEVERITY_ERROR,
                             e.http_status, "fatal", e.msg, 1, rc);
        pr__rfuture_reject_cause(r, &e, "rfuture: request %.30s expired; submitting it again", r->id);
        return PR__RFUTURE_DONE;
    }
    r->resubmits++;
    pr__rfuture_event_full(r, "resubmitted", PR_SEVERITY_WARNING, 410, NULL, "expired (410): submitted again", 0, 0,
                           id);
    pr__free(r->id, r->id_n);
    r->id = id;
    r->id_n = id_n;
    /* a new job: its polls count from 0, its first poll reports the submit's time */
    if (r->reserved) pr_wsem_release(p->bytes, r->reserved);
    r->reserved = 0;
    r->allow_md = 1;
    r->iteration = 0;
    r->answered = r->failures = r->conn_errors = r->bad_requests = 0;
    r->o.submitted_at_ms = began;
    r->created_ms = pr_now();
    return PR__RFUTURE_AGAIN;
}

int pr_rfuture_submit(pr_future **out, pr_rfuture_poller *p, const char *path, const char *body, size_t len,
                      const pr_rfuture_opts *opts, pr_err_info *err, int64_t deadline) {
    pr_err_info e;
    pr_rfuture_opts o;
    char *id = NULL;
    size_t id_n = 0;
    int rc;
    if (out) *out = NULL;
    if (!out || !p || !path || (len && !body))
        return pr__err_set(err, PR_EINVAL, 0, "rfuture: submit needs out, a poller, a path and the body");
    memset(&o, 0, sizeof o);
    if (opts) o = *opts;
    o.submitted_at_ms = pr_now();
    memset(&e, 0, sizeof e);
    rc = pr__rfuture_post(p, path, body, len, &id, &id_n, &e, deadline);
    if (!rc && (rc = pr__rfuture_begin(out, p, id, &o, path, body, len)) != PR_OK && !e.code)
        pr__err_set(&e, rc, 0, "rfuture: starting the submitted job: %s", pr_strerror(rc));
    pr__free(id, id_n);
    if (rc && err) *err = e;
    return rc;
}

void pr_queue_log_change(const pr_queue_change *change, void *user_data) {
    pr_queue_log *l = (pr_queue_log *)user_data;
    const char *what = l && l->what ? l->what : "Remote job", *why;
    int64_t now = pr_now();
    if (!change || change->state == PR_QUEUE_ACTIVE) return;
    if (l && l->last_ms && now - l->last_ms < 60000) return;
    if (l) l->last_ms = now;
    why = change->reason ? change->reason
        : change->state == PR_QUEUE_PAUSED_RATE_LIMIT ? "the concurrency limit was hit"
        : change->state == PR_QUEUE_PAUSED_CAPACITY ? "the backend is running short on capacity, please wait"
        : "unknown";
    PR__LOG(PR_LEVEL_WARN, "rfuture", "%s (request %.60s) is paused. Reason: %s", what, change->request_id, why);
}
