// @pristine:module retry - backoff and jitter, retry runner, server hints, circuit breaker, backoff window
// @pristine:public
/*
 * retry: the policies that keep a client alive against real servers.
 *
 * - pr_backoff is a value: a strategy (exponential, linear, constant or
 *   decorrelated), a base, a cap and a jitter kind. pr_backoff_delay is a
 *   pure function of (policy, attempt, previous delay, random number). The
 *   PR_BACKOFF_* presets are the policies of common SDKs, ready to copy:
 *   `pr_backoff b = PR_BACKOFF_HTTP;`.
 * - The retry runner repeats an attempt while its classifier says so,
 *   sleeping the backoff (or the delay a server asked for) in between. It
 *   never sleeps past the caller's deadline, max_elapsed_ms or the progress
 *   timeout: when the next sleep would cross one, it stops at once and the
 *   last attempt's outcome is the result. Loop form: pr_retry_begin, then
 *   pr_retry_next after every attempt; or pr_retry_run with a callback.
 * - Server hints, pure: Retry-After (decimal seconds or an HTTP-date in
 *   the three formats of RFC 9110), retry-after-ms, x-should-retry, and
 *   which HTTP statuses are worth retrying.
 * - pr_breaker: a circuit breaker (closed / open / half-open) with a
 *   registry so that many clients share one breaker per upstream.
 * - pr_backoff_window: per-key "do not send before" deadlines (a 429
 *   pauses every task that talks to that upstream; its waiters queue on
 *   sync's FIFO wait queues).
 *
 * Time and chance: the runner reads pr_now() and takes its random numbers
 * (base's pr_random), its sleep (pr_sleep) and the wall clock (time's, for
 * HTTP-dates) from pr_retry_hooks, so a test can make every delay exact
 * and instant. Breakers and windows belong to the thread that created
 * them, like every object of a scheduler; their updates never interleave
 * (tasks switch only when they block), so concurrent tasks never lose an
 * update. The semaphores are sync's (pr_sem, pr_wsem).
 *
 * For the modules after it (client, eventsource, rfuture, telemetry, ds):
 * pr__retry_delay_ms (a backoff delay in whole ms, jittered through the
 * hooks), pr__retry_hook_sleep (a sleep through the hooks) and
 * pr__retry_off (the policy of a request that must not be retried).
 *
 * Offers to the modules after it: pr__retry_delay_ms, pr__retry_hook_sleep,
 *     pr__retry_off.
 */

/* Backoff strategies: how the nominal delay grows with the attempt number a
   (a = 0 for the first retry). */
enum pr_backoff_strategy {
    PR_BACKOFF_EXPONENTIAL = 0, /* base * 2^a */
    PR_BACKOFF_LINEAR = 1,      /* base * (a + 1) */
    PR_BACKOFF_CONSTANT = 2,    /* base */
    PR_BACKOFF_DECORRELATED = 3 /* first base, then uniform(base, 3 * previous delay), capped; jitter unused */
};

/* Jitter kinds, applied to the capped delay d with a random r in [0, 1). */
enum pr_jitter_kind {
    PR_JITTER_NONE = 0,     /* d */
    PR_JITTER_FACTOR = 1,   /* d * (1 - j + r*j): in [d*(1-j), d) */
    PR_JITTER_ADDITIVE = 2, /* d + r*d*j: in [d, d*(1+j)), then capped again */
    PR_JITTER_RANGE = 3,    /* d * (min + r*(max - min)), then capped again */
    PR_JITTER_DOWN = 4      /* d * (1 - j*r): in (d*(1-j), d], exactly d for r = 0 */
};

/* A backoff policy. A value type: copy a preset or fill every field. */
typedef struct pr_backoff {
    int strategy;         /* PR_BACKOFF_* */
    int jitter;           /* PR_JITTER_* */
    int64_t base_ms;      /* > 0 */
    int64_t max_ms;       /* the cap, >= base_ms; PR_BACKOFF_UNCAPPED (0) = no cap */
    double jitter_factor; /* j for FACTOR, DOWN (0..1) and ADDITIVE (>= 0); 0 = no jitter */
    double range_min;     /* RANGE: 0 <= range_min <= range_max */
    double range_max;
} pr_backoff;

/* pr_backoff.max_ms: no cap (delays saturate near 9.2e18 ms, never overflow). */
#define PR_BACKOFF_UNCAPPED 0

/* Presets (brace initialisers: `pr_backoff b = PR_BACKOFF_HTTP;`). */
/* HTTP request retries (Stainless SDKs, Tinker): 500 ms * 2^a capped at 10 s,
   times (1 - 0.25 r): 500, 1000, 2000, 4000, 8000, 10000, ... at most. */
#define PR_BACKOFF_HTTP { PR_BACKOFF_EXPONENTIAL, PR_JITTER_DOWN, 500, 10000, 0.25, 0.0, 0.0 }
/* Operation retries (Tinker's retry handler): 500 ms * 2^a +-25 %, capped at 10 s. */
#define PR_BACKOFF_OPERATION { PR_BACKOFF_EXPONENTIAL, PR_JITTER_RANGE, 500, 10000, 0.0, 0.75, 1.25 }
/* Submission retries, and remote-future polling after 429 and connection
   errors: 1, 2, 4, 8, 16, 30, 30, ... s, no jitter. */
#define PR_BACKOFF_SUBMIT { PR_BACKOFF_EXPONENTIAL, PR_JITTER_NONE, 1000, 30000, 0.0, 0.0, 0.0 }
/* A polling interval that grows: 1 s doubling up to 10 s. */
#define PR_BACKOFF_POLL_INTERVAL { PR_BACKOFF_EXPONENTIAL, PR_JITTER_NONE, 1000, 10000, 0.0, 0.0, 0.0 }
/* Telemetry batch resends: 1 s * 2^a plus up to 10 %, uncapped (used for 3 retries). */
#define PR_BACKOFF_TELEMETRY { PR_BACKOFF_EXPONENTIAL, PR_JITTER_ADDITIVE, 1000, PR_BACKOFF_UNCAPPED, 0.1, 0.0, 0.0 }
/* A flat 1 s between resends. */
#define PR_BACKOFF_FLAT_1S { PR_BACKOFF_CONSTANT, PR_JITTER_NONE, 1000, 1000, 0.0, 0.0, 0.0 }
/* Polling for a free slot: 2 ms doubling to 50 ms, times [0.75, 1). */
#define PR_BACKOFF_ACQUIRE { PR_BACKOFF_EXPONENTIAL, PR_JITTER_FACTOR, 2, 50, 0.25, 0.0, 0.0 }
/* A billing pause: a flat 5 s. */
#define PR_BACKOFF_BILLING { PR_BACKOFF_CONSTANT, PR_JITTER_NONE, 5000, 5000, 0.0, 0.0, 0.0 }
/* AWS's "full jitter": uniform(0, min(cap, base * 2^a)), here 100 ms to 20 s. */
#define PR_BACKOFF_FULL_JITTER { PR_BACKOFF_EXPONENTIAL, PR_JITTER_RANGE, 100, 20000, 0.0, 0.0, 1.0 }
/* AWS's "decorrelated jitter", 100 ms to 20 s. */
#define PR_BACKOFF_DECORRELATED_JITTER { PR_BACKOFF_DECORRELATED, PR_JITTER_NONE, 100, 20000, 0.0, 0.0, 0.0 }

/* Check a backoff policy.
   Params: b - the policy.
   Returns: PR_OK; PR_EINVAL for an unknown strategy or jitter kind,
            base_ms <= 0, max_ms < 0 or below base_ms, a jitter_factor
            below 0 (or above 1 for FACTOR and DOWN), a range with
            range_min < 0 or range_min > range_max, NaN anywhere, or b NULL.
   Blocks: no.
   Thread: any.
   See: pr_backoff_delay. */
PRISTINE_API int pr_backoff_check(const pr_backoff *b);

/* The delay before retry `attempt` (0 = the first retry): nominal delay by
   strategy, capped, jittered with r, never negative, never above the cap
   (additive and range jitter included), saturating instead of overflowing.
   Pure: the same inputs give the same delay.
   Params: b - the policy; attempt - retries already taken (>= 0);
           prev_ms - the previous delay of this sequence, read only by
           PR_BACKOFF_DECORRELATED (<= 0 = none yet); r - a random number
           in [0, 1) (clamped into it; NaN counts as 0).
   Returns: the delay in ms, fractional (>= 0); PR_EINVAL (negative) for an
            invalid policy or a negative attempt.
   Blocks: no.
   Thread: any.
   See: pr_backoff_check, pr_random. */
PRISTINE_API double pr_backoff_delay(const pr_backoff *b, int attempt, double prev_ms, double r);

/* Time and chance for the runner. Every NULL field means the real thing. */
typedef struct pr_retry_hooks {
    double (*random)(void *user_data);                         /* NULL = pr_random */
    int (*sleep)(int64_t delay_ms, int64_t deadline, void *user_data); /* NULL = pr_sleep(deadline);
                                                                  return PR_OK or PR_ECANCELED */
    int64_t (*wall_clock_ms)(void *user_data);                 /* NULL = the system clock: ms since
                                                                  1970 UTC (for HTTP-date hints) */
    void *user_data;
} pr_retry_hooks;

/* Classifier verdicts. */
enum pr_retry_verdict {
    PR_RETRY_OK = 0,    /* success: stop (and it counts as progress) */
    PR_RETRY_FAIL = 1,  /* a failure not worth retrying: stop */
    PR_RETRY_AGAIN = 2, /* retry after the backoff delay */
    PR_RETRY_AFTER = 3  /* retry after *after_ms (a server hint), not the backoff */
};

/* pr_retry_policy.max_retries values besides a count. */
#define PR_RETRY_OFF (-1)       /* one attempt, no retries */
#define PR_RETRY_UNLIMITED (-2) /* no count limit (the deadline and timeouts still apply) */

/* Why pr_retry_next stopped (pr_retry.stop). */
enum pr_retry_stop {
    PR_RETRY_GOING = 0,    /* not stopped */
    PR_RETRY_DONE = 1,     /* the classifier said PR_RETRY_OK */
    PR_RETRY_FATAL = 2,    /* the classifier said PR_RETRY_FAIL */
    PR_RETRY_EXHAUSTED = 3,/* max_retries were taken */
    PR_RETRY_ELAPSED = 4,  /* the next sleep would end past max_elapsed_ms */
    PR_RETRY_STALLED = 5,  /* the next sleep would end past the progress timeout */
    PR_RETRY_DEADLINE = 6, /* the next sleep would end past the caller's deadline */
    PR_RETRY_CANCELED = 7  /* the task was cancelled (the outcome became PR_ECANCELED) */
};

/* What the on_retry hook is told before each sleep. */
typedef struct pr_retry_info {
    int retry;          /* 0 for the first retry, 1 for the second, ... */
    int outcome;        /* the failed attempt's outcome */
    int verdict;        /* PR_RETRY_AGAIN or PR_RETRY_AFTER */
    int64_t delay_ms;   /* the sleep about to start */
    int64_t elapsed_ms; /* since pr_retry_begin */
    const pr_err_info *err; /* the failed attempt's detail when the runner has it (the HTTP
                               client's retries: refused, reset, ... with sys_errno), else NULL */
} pr_retry_info;

/* A retry policy. Zero in every field means the defaults of HTTP clients:
   10 retries, PR_BACKOFF_HTTP, no elapsed or progress limit. */
typedef struct pr_retry_policy {
    int max_retries;             /* 0 = 10; PR_RETRY_OFF; PR_RETRY_UNLIMITED; else the count */
    int64_t max_elapsed_ms;      /* 0 = none: give up rather than sleep past begin + this */
    int64_t progress_timeout_ms; /* 0 = none: give up rather than sleep past the last
                                    recorded progress (pr_retry_progress, or a success) + this */
    pr_backoff backoff;          /* base_ms 0 = PR_BACKOFF_HTTP */
    /* Decide what an outcome means; *after_ms (preset to -1) is read for
       PR_RETRY_AFTER. NULL = pr_retry_classify_default. */
    int (*classify)(int outcome, int64_t *after_ms, void *user_data);
    void (*on_retry)(const pr_retry_info *info, void *user_data); /* NULL = none */
    void *user_data;             /* for classify and on_retry */
    pr_retry_hooks hooks;
} pr_retry_policy;

/* The state of one retried operation (caller-allocated; read the fields,
   do not write them). */
typedef struct pr_retry {
    pr_retry_policy policy;  /* resolved copy */
    int retries;             /* retries taken (sleeps slept) */
    int stop;                /* PR_RETRY_GOING or why it stopped */
    int64_t start_ms;        /* pr_now() at pr_retry_begin */
    int64_t progress_ms;     /* last recorded progress */
    int64_t last_delay_ms;   /* the last sleep */
    double prev_delay_ms;    /* for decorrelated backoff */
} pr_retry;

/* The default classifier: outcome >= 0 is success; PR_ECANCELED, PR_EINVAL,
   PR_ENOMEM, PR_ELIMIT, PR_ESTATE, PR_ENOTSUP and PR_ECIRCUIT fail at once;
   every other negative code (timeouts, closed or reset connections, DNS,
   TLS, protocol errors, I/O errors) is retried with the backoff.
   Params: outcome - the attempt's result; after_ms - unused; user_data -
           unused.
   Returns: a PR_RETRY_* verdict.
   Blocks: no.
   Thread: any.
   See: pr_retry_policy. */
PRISTINE_API int pr_retry_classify_default(int outcome, int64_t *after_ms, void *user_data);

/* Start a retried operation.
   Params: st - the state to initialise; policy - NULL = defaults (copied).
   Returns: PR_OK; PR_EINVAL (st NULL, an invalid backoff, max_retries
            below PR_RETRY_UNLIMITED, negative limits).
   Blocks: no.
   Thread: owner.
   See: pr_retry_next. */
PRISTINE_API int pr_retry_begin(pr_retry *st, const pr_retry_policy *policy);

/* After an attempt: classify its outcome and either stop or sleep and say
   "again". Typical loop:
       pr_retry_begin(&st, &policy);
       for (;;) { rc = attempt(); if (!pr_retry_next(&st, &rc, deadline)) break; }
   When it stops, *outcome is the final result: the attempt's own outcome
   (success, a fatal failure, or the last failure when retries, time or
   the deadline ran out), or PR_ECANCELED when the task was cancelled
   before or during the sleep. st->stop says why it stopped.
   Params: st - from pr_retry_begin; outcome - in: the attempt's outcome,
           out: the final result when it returns 0; deadline - absolute ms;
           no sleep ends past it.
   Returns: 1 to make another attempt (the delay has been slept), 0 to stop.
   Blocks: yes (the sleep). A deadline that the next sleep would cross
           stops at once (st->stop = PR_RETRY_DEADLINE) and PR_ETIMEDOUT is
           never invented: the last outcome stays. PR_ECANCELED replaces it
           when the task is cancelled.
   Thread: owner.
   See: pr_retry_run, pr_retry_progress. */
PRISTINE_API int pr_retry_next(pr_retry *st, int *outcome, int64_t deadline);

/* The first half of pr_retry_next: classify the outcome and decide,
   without sleeping. Use it when something must happen between the
   decision and the sleep (release a connection, say), then call
   pr_retry_sleep with the delay.
   Params: st - the state; outcome - in/out as for pr_retry_next;
           until - the caller's deadline: a sleep that would end past it
           means stop (it is compared, not waited on).
   Returns: the delay to sleep in ms (>= 0) when another attempt should
            follow (on_retry has been called); -1 to stop (st->stop says
            why; *outcome is the final result).
   Blocks: no.
   Thread: owner.
   See: pr_retry_sleep, pr_retry_next. */
PRISTINE_API int64_t pr_retry_plan(pr_retry *st, int *outcome, int64_t until);

/* The second half of pr_retry_next: sleep the delay pr_retry_plan chose.
   Params: st - the state; delay_ms - from pr_retry_plan; outcome - set to
           PR_ECANCELED when the task is cancelled; deadline - absolute ms.
   Returns: 1 to make the next attempt; 0 when cancelled (st->stop =
            PR_RETRY_CANCELED, *outcome = PR_ECANCELED). Never PR_ETIMEDOUT:
            the sleep ends at the deadline at the latest.
   Blocks: yes.
   Thread: owner.
   See: pr_retry_plan. */
PRISTINE_API int pr_retry_sleep(pr_retry *st, int64_t delay_ms, int *outcome, int64_t deadline);

/* Record progress: the progress timeout counts from now.
   Params: st - the state.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_retry_policy. */
PRISTINE_API void pr_retry_progress(pr_retry *st);

/* Run fn until the policy stops it (pr_retry_begin + pr_retry_next).
   Params: policy - NULL = defaults; fn - one attempt: gets the attempt
           number (0 first) and user_data, returns its outcome; user_data -
           for fn; deadline - absolute ms.
   Returns: the final outcome (see pr_retry_next), PR_ECANCELED, or
            PR_EINVAL for a bad policy or fn NULL. PR_ETIMEDOUT only when an
            attempt returned it.
   Blocks: yes.
   Thread: owner.
   See: pr_retry_next. */
PRISTINE_API int pr_retry_run(const pr_retry_policy *policy, int (*fn)(int attempt, void *user_data),
                              void *user_data, int64_t deadline);

/* Whether an HTTP status is worth retrying by itself: 408, 409, 429 and
   500-599 (every other status, 2xx included, is not).
   Params: status - the status code.
   Returns: 1 or 0.
   Blocks: no.
   Thread: any.
   See: pr_retry_http_should_retry. */
PRISTINE_API int pr_retry_status_retryable(int status);

/* Read an x-should-retry header value: trimmed, ASCII case-insensitive.
   Params: value - the value; NULL = the header is absent.
   Returns: 1 for "true", 0 for "false", -1 for absent or anything else.
   Blocks: no.
   Thread: any.
   See: pr_retry_http_should_retry. */
PRISTINE_API int pr_retry_x_should_retry(const pr_slice *value);

/* Whether a response is worth retrying: never a 2xx; else x-should-retry
   when it says true or false; else pr_retry_status_retryable.
   Params: status - the status; x_should_retry - its header value or NULL.
   Returns: 1 or 0.
   Blocks: no.
   Thread: any.
   See: pr_retry_hint_ms. */
PRISTINE_API int pr_retry_http_should_retry(int status, const pr_slice *x_should_retry);

/* Parse an HTTP-date in any of the three formats of RFC 9110: IMF-fixdate
   ("Sun, 06 Nov 1994 08:49:37 GMT"), RFC 850 ("Sunday, 06-Nov-94 08:49:37
   GMT"; a two-digit year more than 50 years in the future of now_unix_ms
   is taken from the century before) and asctime ("Sun Nov  6 08:49:37
   1994"). The weekday must be the date's own; the year is 0 to 9999.
   Params: s - the text (surrounding spaces ignored); now_unix_ms - the
           current time (for RFC 850 years); out - receives ms since 1970 UTC.
   Returns: PR_OK; PR_EINVAL for anything else.
   Blocks: no.
   Thread: any.
   See: pr_retry_hint_ms. */
PRISTINE_API int pr_retry_parse_http_date(pr_slice s, int64_t now_unix_ms, int64_t *out);

/* The delay a server asked for, if it is usable. retry-after-ms (a decimal
   number of ms) wins when it is present and parses, even if its value is
   then refused; else Retry-After as decimal seconds or an HTTP-date
   (minus now_unix_ms). Numbers are whole-string decimals ("2", "1.5"); a
   sign, garbage, "nan", "inf" and numbers over 1e300 do not parse. A hint
   <= 0 is not usable (the caller's own backoff applies); a hint above
   max_ms is cut to max_ms, so a server asking for 120 s with the default
   cap waits 60 s, never the short backoff. Nothing overflows, whatever the
   value or the date.
   Params: retry_after_ms, retry_after - the header values, NULL when
           absent; now_unix_ms - the wall clock; max_ms - the longest
           delay (<= 0 = 60000); out - receives the hint in whole ms
           (rounded up), 0 < *out <= max_ms.
   Returns: 1 with *out set, or 0 (no usable hint).
   Blocks: no.
   Thread: any.
   See: pr_retry_parse_http_date. */
PRISTINE_API int pr_retry_hint_ms(const pr_slice *retry_after_ms, const pr_slice *retry_after, int64_t now_unix_ms,
                                  int64_t max_ms, int64_t *out);

/* ---- circuit breaker ---- */

/* A circuit breaker. Opaque; owned by the thread that created it. */
typedef struct pr_breaker pr_breaker;
/* A set of breakers by name, so that many clients share one per upstream. */
typedef struct pr_breaker_registry pr_breaker_registry;

/* Breaker states. */
enum pr_breaker_state { PR_BREAKER_CLOSED = 0, PR_BREAKER_OPEN = 1, PR_BREAKER_HALF_OPEN = 2 };

/* What a call's outcome means for the breaker. */
enum pr_breaker_outcome {
    PR_BREAKER_SUCCESS = 0, /* healthy: closes a half-open breaker, resets the failure count */
    PR_BREAKER_FAILURE = 1, /* counts toward opening; reopens a half-open breaker */
    PR_BREAKER_IGNORE = 2   /* no health signal (e.g. 429): frees a half-open probe slot */
};

/* Who watches a breaker (pr_telemetry_breaker_hook fits on_change). */
typedef struct pr_breaker_observer {
    /* Called on every state change, also when open becomes half-open as
       time passes (noticed by the next admit or state call). NULL = none. */
    void (*on_change)(const char *name, int from, int to, void *user_data);
    void *user_data;         /* for on_change */
} pr_breaker_observer;

/* Breaker options. Zero in every field means the default. */
typedef struct pr_breaker_opts {
    int failure_threshold;   /* 0 = 5: consecutive failures that open the breaker */
    int reset_timeout_ms;    /* 0 = 30000: open this long, then half-open */
    int half_open_max_calls; /* 0 = 1: probe calls admitted at once while half-open */
    pr_breaker_observer observer; /* state changes; zero = none */
} pr_breaker_opts;

/* Create a breaker.
   Params: out - receives it; name - a label for on_change (copied; NULL =
           ""); opts - NULL = defaults (copied).
   Returns: PR_OK; PR_EINVAL (out NULL, negative options); PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_admit, pr_breaker_destroy. */
PRISTINE_API int pr_breaker_create(pr_breaker **out, const char *name, const pr_breaker_opts *opts);

/* Free a breaker made by pr_breaker_create (not one from a registry). NULL
   is a no-op.
   Params: b - the breaker.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_create. */
PRISTINE_API void pr_breaker_destroy(pr_breaker *b);

/* Ask to make a call. Closed: yes. Open: no (until reset_timeout_ms have
   passed since it opened; then it is half-open). Half-open: yes while
   fewer than half_open_max_calls probes are in flight. An admitted call
   must be followed by pr_breaker_record.
   Params: b - the breaker.
   Returns: PR_OK (make the call); PR_ECIRCUIT (do not); PR_EINVAL (NULL).
   Blocks: no.
   Thread: owner.
   See: pr_breaker_record. */
PRISTINE_API int pr_breaker_admit(pr_breaker *b);

/* Report an admitted call's outcome (PR_BREAKER_SUCCESS, _FAILURE or
   _IGNORE; any other value counts as a failure). Failures of calls
   admitted before the breaker opened change nothing while it is open.
   Params: b - the breaker; outcome - the outcome.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_admit. */
PRISTINE_API void pr_breaker_record(pr_breaker *b, int outcome);

/* The current state (an open breaker reads half-open once its reset
   timeout has passed).
   Params: b - the breaker.
   Returns: PR_BREAKER_CLOSED, _OPEN or _HALF_OPEN; PR_EINVAL for NULL.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_admit. */
PRISTINE_API int pr_breaker_state(pr_breaker *b);

/* Consecutive failures counted while closed.
   Params: b - the breaker.
   Returns: the count (0 for NULL).
   Blocks: no.
   Thread: owner.
   See: pr_breaker_record. */
PRISTINE_API int pr_breaker_failures(const pr_breaker *b);

/* Close the breaker and clear its counters.
   Params: b - the breaker.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_state. */
PRISTINE_API void pr_breaker_reset(pr_breaker *b);

/* Create a registry of breakers by name.
   Params: out - receives it.
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_registry_get. */
PRISTINE_API int pr_breaker_registry_create(pr_breaker_registry **out);

/* Free a registry and every breaker in it. NULL is a no-op.
   Params: r - the registry.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_registry_create. */
PRISTINE_API void pr_breaker_registry_destroy(pr_breaker_registry *r);

/* The breaker of a name, created with opts on first use (later calls
   return the same breaker and ignore opts). The registry owns it.
   Params: r - the registry; name - NUL-terminated; opts - for creation,
           NULL = defaults; out - receives the breaker.
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_admit. */
PRISTINE_API int pr_breaker_registry_get(pr_breaker_registry *r, const char *name, const pr_breaker_opts *opts,
                                         pr_breaker **out);

/* The state of a name's breaker; a name never used reads closed.
   Params: r - the registry; name - NUL-terminated.
   Returns: a PR_BREAKER_* state; PR_EINVAL for NULL arguments.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_state. */
PRISTINE_API int pr_breaker_registry_state(pr_breaker_registry *r, const char *name);

/* ---- shared backoff window ---- */

/* Per-key "not before" deadlines on pr_now()'s clock. Opaque. */
typedef struct pr_backoff_window pr_backoff_window;

/* Create an empty window set.
   Params: out - receives it.
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_backoff_window_set. */
PRISTINE_API int pr_backoff_window_create(pr_backoff_window **out);

/* Free a window set; tasks waiting on it wake with PR_ECLOSED. NULL is a
   no-op.
   Params: w - the set.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_backoff_window_create. */
PRISTINE_API void pr_backoff_window_destroy(pr_backoff_window *w);

/* Open (or extend) the window of key until now + duration_ms. A window
   never shrinks: the deadline becomes the later of the old and the new.
   Params: w - the set; key - NUL-terminated (NULL = ""); duration_ms - >= 0.
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_backoff_window_wait. */
PRISTINE_API int pr_backoff_window_set(pr_backoff_window *w, const char *key, int64_t duration_ms);

/* Milliseconds left in key's window (0 = none: at its deadline exactly it
   is over).
   Params: w - the set; key - NUL-terminated (NULL = "").
   Returns: the remaining ms, 0 when there is no window or w is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_backoff_window_set. */
PRISTINE_API int64_t pr_backoff_window_remaining(pr_backoff_window *w, const char *key);

/* The window's deadline on pr_now()'s clock, or 0 when none was set (an
   expired one is still reported, so "recently backed off" can be told).
   Params: w - the set; key - NUL-terminated (NULL = "").
   Returns: the deadline or 0.
   Blocks: no.
   Thread: owner.
   See: pr_backoff_window_remaining. */
PRISTINE_API int64_t pr_backoff_window_until(pr_backoff_window *w, const char *key);

/* Wait until key has no window: sleeps to the deadline, then looks again
   (another task may have extended it), until none is left.
   Params: w - the set; key - NUL-terminated (NULL = ""); deadline - absolute ms.
   Returns: PR_OK; PR_ETIMEDOUT (the deadline came first); PR_ECANCELED;
            PR_ECLOSED (the set was destroyed); PR_EINVAL; PR_ENOMEM.
   Blocks: yes.
   Thread: owner.
   See: pr_backoff_window_set. */
PRISTINE_API int pr_backoff_window_wait(pr_backoff_window *w, const char *key, int64_t deadline);

/* Close key's window at once; its waiters return PR_OK.
   Params: w - the set; key - NUL-terminated (NULL = "").
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_backoff_window_set. */
PRISTINE_API void pr_backoff_window_clear(pr_backoff_window *w, const char *key);

// @pristine:impl
/* ---- backoff ---- */
#define PR__RETRY_BACKOFF_SATURATE 9.2e18 /* just below INT64_MAX: a double that converts safely */

static int pr__retry_bad_double(double d) { return d != d || d > 1e300 || d < -1e300; }

int pr_backoff_check(const pr_backoff *b) {
    if (!b || b->strategy < PR_BACKOFF_EXPONENTIAL || b->strategy > PR_BACKOFF_DECORRELATED) return PR_EINVAL;
    if (b->jitter < PR_JITTER_NONE || b->jitter > PR_JITTER_DOWN) return PR_EINVAL;
    if (b->base_ms <= 0 || b->max_ms < 0 || (b->max_ms != PR_BACKOFF_UNCAPPED && b->max_ms < b->base_ms))
        return PR_EINVAL;
    if (pr__retry_bad_double(b->jitter_factor) || pr__retry_bad_double(b->range_min) || pr__retry_bad_double(b->range_max))
        return PR_EINVAL;
    if (b->jitter_factor < 0) return PR_EINVAL;
    if ((b->jitter == PR_JITTER_FACTOR || b->jitter == PR_JITTER_DOWN) && b->jitter_factor > 1) return PR_EINVAL;
    if (b->jitter == PR_JITTER_RANGE && (b->range_min < 0 || b->range_min > b->range_max)) return PR_EINVAL;
    return PR_OK;
}

double pr_backoff_delay(const pr_backoff *b, int attempt, double prev_ms, double r) {
    double cap, d, j;
    if (attempt < 0 || pr_backoff_check(b) != PR_OK) return PR_EINVAL;
    if (!(r >= 0)) r = 0; /* NaN too */
    if (r >= 1) r = 0.99999999999999989;
    cap = b->max_ms == PR_BACKOFF_UNCAPPED ? PR__RETRY_BACKOFF_SATURATE : (double)b->max_ms;
    switch (b->strategy) {
    case PR_BACKOFF_LINEAR:
        d = (double)b->base_ms * ((double)attempt + 1);
        break;
    case PR_BACKOFF_CONSTANT:
        d = (double)b->base_ms;
        break;
    case PR_BACKOFF_DECORRELATED:
        /* the first delay is the base; then uniform(base, 3 * previous) */
        d = (double)b->base_ms;
        if (attempt > 0 && prev_ms > 0) { /* prev_ms is clamped to the cap (inf and NaN included) */
            double hi = 3 * PR__MAX(PR__MIN(prev_ms, cap), d);
            d += r * (hi - d);
        }
        return PR__MIN(d, cap);
    default:
        d = attempt >= 63 ? PR__RETRY_BACKOFF_SATURATE : (double)b->base_ms * (double)((uint64_t)1 << attempt);
        break;
    }
    d = PR__MIN(d, cap);
    j = b->jitter_factor;
    switch (b->jitter) {
    case PR_JITTER_FACTOR:
        if (j > 0) d *= 1 - j + r * j;
        break;
    case PR_JITTER_ADDITIVE:
        if (j > 0) d += r * d * j;
        break;
    case PR_JITTER_RANGE:
        d *= b->range_min + r * (b->range_max - b->range_min);
        break;
    case PR_JITTER_DOWN:
        if (j > 0) d *= 1 - j * r;
        break;
    default:
        break;
    }
    if (!(d > 0)) return 0;
    return PR__MIN(d, cap);
}

/* A delay in ms as whole ms for the scheduler: rounded up (a 0.3 ms delay
   still waits), saturating at PR_FOREVER. */
static int64_t pr__retry_ms_ceil(double ms) {
    int64_t w;
    if (!(ms > 0)) return 0;
    if (ms >= PR__RETRY_BACKOFF_SATURATE) return PR_FOREVER;
    w = (int64_t)ms;
    return (double)w < ms ? w + 1 : w;
}

/* ---- time and chance through the hooks ---- */
/* A number in [0, 1) for jitter: the hooks' random, else pr_random(). */
static double pr__retry_random(const pr_retry_hooks *h) {
    return h->random ? h->random(h->user_data) : pr_random();
}

/* The backoff delay before retry `attempt` in whole ms (pr__retry_ms_ceil; 0 for
   an invalid policy), jittered with a number drawn through the hooks.
   prev_ms, unless NULL, holds the previous fractional delay (for
   PR_BACKOFF_DECORRELATED) and gets this one. The one way the runner, the
   SSE stream, the remote futures and the reporter compute a wait. */
static int64_t pr__retry_delay_ms(const pr_backoff *b, int attempt, double *prev_ms, const pr_retry_hooks *h) {
    double d = pr_backoff_delay(b, attempt, prev_ms ? *prev_ms : 0, pr__retry_random(h));
    if (prev_ms) *prev_ms = d;
    return pr__retry_ms_ceil(d);
}

/* Sleep delay_ms, waking by deadline: the hooks' sleep, else pr_sleep. */
static int pr__retry_hook_sleep(const pr_retry_hooks *h, int64_t delay_ms, int64_t deadline) {
    return h->sleep ? h->sleep(delay_ms, deadline, h->user_data) : pr_sleep(deadline);
}

/* The policy of a request that must not be retried (PR_RETRY_OFF), for the
   modules that run their own retries around the client. */
static PR__MAYBE_UNUSED const pr_retry_policy pr__retry_off = {
    PR_RETRY_OFF, 0, 0, { 0, 0, 0, 0, 0, 0, 0 }, NULL, NULL, NULL, { NULL, NULL, NULL, NULL } };

/* ---- the runner ---- */
int pr_retry_classify_default(int outcome, int64_t *after_ms, void *user_data) {
    PR__UNUSED(after_ms);
    PR__UNUSED(user_data);
    if (outcome >= 0) return PR_RETRY_OK;
    switch (outcome) {
    case PR_ECANCELED: case PR_EINVAL: case PR_ENOMEM: case PR_ELIMIT: case PR_ESTATE: case PR_ENOTSUP:
    case PR_ECIRCUIT:
        return PR_RETRY_FAIL;
    default:
        return PR_RETRY_AGAIN;
    }
}

static const pr_backoff pr__retry_backoff_http = PR_BACKOFF_HTTP;

int pr_retry_begin(pr_retry *st, const pr_retry_policy *policy) {
    pr_retry_policy *p;
    if (!st) return PR_EINVAL;
    memset(st, 0, sizeof *st);
    p = &st->policy;
    if (policy) *p = *policy;
    if (p->max_retries == 0) p->max_retries = 10;
    if (p->max_retries < PR_RETRY_UNLIMITED || p->max_elapsed_ms < 0 || p->progress_timeout_ms < 0) return PR_EINVAL;
    if (p->backoff.base_ms == 0) p->backoff = pr__retry_backoff_http;
    if (pr_backoff_check(&p->backoff) != PR_OK) return PR_EINVAL;
    if (!p->classify) p->classify = pr_retry_classify_default;
    st->start_ms = st->progress_ms = pr_now();
    return PR_OK;
}

void pr_retry_progress(pr_retry *st) {
    if (st) st->progress_ms = pr_now();
}

static int pr__retry_stop(pr_retry *st, int why) {
    st->stop = why;
    return -1;
}

int64_t pr_retry_plan(pr_retry *st, int *outcome, int64_t until) {
    const pr_retry_policy *p;
    int64_t after = -1, delay, now, wake;
    pr_retry_info info;
    int v;
    if (!st || !outcome) return -1;
    p = &st->policy;
    if (pr_is_canceled()) {
        *outcome = PR_ECANCELED;
        return pr__retry_stop(st, PR_RETRY_CANCELED);
    }
    v = p->classify(*outcome, &after, p->user_data);
    if (v == PR_RETRY_OK) {
        pr_retry_progress(st);
        return pr__retry_stop(st, PR_RETRY_DONE);
    }
    if (v != PR_RETRY_AGAIN && v != PR_RETRY_AFTER) return pr__retry_stop(st, PR_RETRY_FATAL);
    if (p->max_retries == PR_RETRY_OFF || (p->max_retries > 0 && st->retries >= p->max_retries))
        return pr__retry_stop(st, PR_RETRY_EXHAUSTED);
    if (v == PR_RETRY_AFTER && after >= 0) {
        delay = after;
    } else {
        delay = pr__retry_delay_ms(&p->backoff, st->retries, &st->prev_delay_ms, &p->hooks);
        v = PR_RETRY_AGAIN;
    }
    now = pr_now();
    wake = pr__time_add(now, delay);
    if (p->max_elapsed_ms > 0 && wake > pr__time_add(st->start_ms, p->max_elapsed_ms))
        return pr__retry_stop(st, PR_RETRY_ELAPSED);
    if (p->progress_timeout_ms > 0 && wake > pr__time_add(st->progress_ms, p->progress_timeout_ms))
        return pr__retry_stop(st, PR_RETRY_STALLED);
    if (wake > until) return pr__retry_stop(st, PR_RETRY_DEADLINE);
    if (p->on_retry) {
        info.retry = st->retries;
        info.outcome = *outcome;
        info.verdict = v;
        info.delay_ms = delay;
        info.elapsed_ms = now - st->start_ms;
        info.err = NULL;
        p->on_retry(&info, p->user_data);
    }
    return delay;
}

int pr_retry_sleep(pr_retry *st, int64_t delay_ms, int *outcome, int64_t deadline) {
    const pr_retry_policy *p;
    int64_t wake;
    int rc;
    if (!st || !outcome) return 0;
    p = &st->policy;
    wake = pr_deadline_min(pr_deadline_in(delay_ms), deadline);
    rc = pr__retry_hook_sleep(&p->hooks, delay_ms, wake);
    if (rc == PR_ECANCELED || pr_is_canceled()) {
        *outcome = PR_ECANCELED;
        st->stop = PR_RETRY_CANCELED;
        return 0;
    }
    st->retries++;
    st->last_delay_ms = delay_ms;
    return 1;
}

int pr_retry_next(pr_retry *st, int *outcome, int64_t deadline) {
    int64_t delay = pr_retry_plan(st, outcome, deadline);
    return delay >= 0 && pr_retry_sleep(st, delay, outcome, deadline);
}

int pr_retry_run(const pr_retry_policy *policy, int (*fn)(int attempt, void *user_data), void *user_data,
                 int64_t deadline) {
    pr_retry st;
    int rc;
    if (!fn || pr_retry_begin(&st, policy) != PR_OK) return PR_EINVAL;
    for (;;) {
        rc = fn(st.retries, user_data);
        if (!pr_retry_next(&st, &rc, deadline)) return rc;
    }
}

/* ---- server hints ---- */
int pr_retry_status_retryable(int status) {
    return status == 408 || status == 409 || status == 429 || (status >= 500 && status <= 599);
}

int pr_retry_x_should_retry(const pr_slice *value) {
    pr_slice v;
    if (!value) return -1;
    v = pr_slice_trim(*value);
    if (pr_slice_ieq(v, pr_slice_cstr("true"))) return 1;
    if (pr_slice_ieq(v, pr_slice_cstr("false"))) return 0;
    return -1;
}

int pr_retry_http_should_retry(int status, const pr_slice *x_should_retry) {
    int x;
    if (status >= 200 && status <= 299) return 0;
    x = pr_retry_x_should_retry(x_should_retry);
    if (x >= 0) return x;
    return pr_retry_status_retryable(status);
}

/* A whole-string decimal: [+-] digits [. digits] (or [+-] . digits). */
static int pr__retry_decimal(pr_slice s, double *out) {
    size_t i = 0, digits = 0;
    double v = 0, scale = 1;
    int neg = 0;
    s = pr_slice_trim(s);
    if (i < s.len && (s.ptr[i] == '+' || s.ptr[i] == '-')) neg = s.ptr[i++] == '-';
    for (; i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9'; i++, digits++) v = v * 10 + (s.ptr[i] - '0');
    if (i < s.len && s.ptr[i] == '.') {
        for (i++; i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9'; i++, digits++) {
            scale /= 10;
            v += (s.ptr[i] - '0') * scale;
        }
    }
    if (!digits || i != s.len || pr__retry_bad_double(v)) return PR_EINVAL;
    *out = neg ? -v : v;
    return PR_OK;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm). */
static int64_t pr__retry_days_from_civil(int64_t y, int m, int d) {
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int pr__retry_year_of(int64_t unix_ms) {
    int64_t days = unix_ms / 86400000, y, m, era, doe, yoe, doy, mp;
    if (unix_ms < 0 && unix_ms % 86400000) days--;
    days += 719468;
    era = (days >= 0 ? days : days - 146096) / 146097;
    doe = days - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    m = mp < 10 ? mp + 3 : mp - 9;
    return (int)(y + (m <= 2));
}

/* Read n digits at p as a number, or -1. */
static int pr__retry_digits(const char *p, size_t n) {
    int v = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* A name from a table at p (exact case, as RFC 9110 writes them); returns
   its index or -1; *len receives the name's length. */
static int pr__retry_name(const char *p, size_t avail, const char *const *names, int n, size_t *len) {
    int i;
    for (i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (l <= avail && memcmp(p, names[i], l) == 0) {
            *len = l;
            return i;
        }
    }
    return -1;
}

/* "HH:MM:SS" at p (8 bytes) into seconds of the day, or -1. */
static int pr__retry_hms(const char *p) {
    int h = pr__retry_digits(p, 2), m = pr__retry_digits(p + 3, 2), s = pr__retry_digits(p + 6, 2);
    if (p[2] != ':' || p[5] != ':' || h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 60) return -1;
    return h * 3600 + m * 60 + s;
}

int pr_retry_parse_http_date(pr_slice s, int64_t now_unix_ms, int64_t *out) {
    static const char *const wk[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const wkl[] = { "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday" };
    static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    const char *p;
    size_t n, l;
    int wday, day, month, year, secs;
    int64_t days;
    if (!out) return PR_EINVAL;
    s = pr_slice_trim(s);
    p = s.ptr;
    n = s.len;
    if (!p) return PR_EINVAL;
    if (n == 29 && p[3] == ',') { /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
        wday = pr__retry_name(p, 3, wk, 7, &l);
        day = pr__retry_digits(p + 5, 2);
        month = pr__retry_name(p + 8, 3, mon, 12, &l);
        year = pr__retry_digits(p + 12, 4);
        secs = pr__retry_hms(p + 17);
        if (p[4] != ' ' || p[7] != ' ' || p[11] != ' ' || p[16] != ' ' || memcmp(p + 25, " GMT", 4) != 0)
            return PR_EINVAL;
    } else if (n == 24 && p[3] == ' ') { /* asctime: "Sun Nov  6 08:49:37 1994" */
        wday = pr__retry_name(p, 3, wk, 7, &l);
        month = pr__retry_name(p + 4, 3, mon, 12, &l);
        day = p[8] == ' ' ? pr__retry_digits(p + 9, 1) : pr__retry_digits(p + 8, 2);
        secs = pr__retry_hms(p + 11);
        year = pr__retry_digits(p + 20, 4);
        if (p[7] != ' ' || p[10] != ' ' || p[19] != ' ') return PR_EINVAL;
    } else { /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
        int yy, now_year;
        wday = pr__retry_name(p, n, wkl, 7, &l);
        if (wday < 0 || n != l + 24 || p[l] != ',' || p[l + 1] != ' ') return PR_EINVAL;
        p += l + 2;
        day = pr__retry_digits(p, 2);
        month = pr__retry_name(p + 3, 3, mon, 12, &l);
        yy = pr__retry_digits(p + 7, 2);
        secs = pr__retry_hms(p + 10);
        if (p[2] != '-' || p[6] != '-' || p[9] != ' ' || memcmp(p + 18, " GMT", 4) != 0 || yy < 0) return PR_EINVAL;
        /* two-digit years: the nearest one that is not more than 50 years ahead */
        now_year = pr__retry_year_of(now_unix_ms);
        year = now_year - ((now_year % 100) + 100) % 100 + yy;
        if (year > now_year + 50) year -= 100;
        else if (year + 100 <= now_year + 50) year += 100;
    }
    /* years past 9999 (RFC 850 near a far-future wall clock) would overflow the ms */
    if (wday < 0 || month < 0 || day < 1 || year < 0 || year > 9999 || secs < 0 || day > mdays[month])
        return PR_EINVAL;
    if (month == 1 && day == 29 && !((year % 4 == 0 && year % 100 != 0) || year % 400 == 0)) return PR_EINVAL;
    days = pr__retry_days_from_civil(year, month + 1, day);
    if (((days % 7) + 11) % 7 != wday) return PR_EINVAL; /* 1970-01-01 was a Thursday (4) */
    *out = (days * 86400 + secs) * 1000;
    return PR_OK;
}

int pr_retry_hint_ms(const pr_slice *retry_after_ms, const pr_slice *retry_after, int64_t now_unix_ms,
                     int64_t max_ms, int64_t *out) {
    double ms = 0;
    int have = 0;
    if (retry_after_ms && pr__retry_decimal(*retry_after_ms, &ms) == PR_OK) {
        have = 1;
    } else if (retry_after) {
        double secs;
        int64_t when;
        if (pr__retry_decimal(*retry_after, &secs) == PR_OK) {
            ms = secs * 1000;
            have = 1;
        } else if (pr_retry_parse_http_date(*retry_after, now_unix_ms, &when) == PR_OK) {
            ms = (double)when - (double)now_unix_ms; /* in doubles: any clock, no overflow */
            have = 1;
        }
    }
    if (!have || !(ms > 0)) return 0;
    if (max_ms <= 0) max_ms = 60000;
    if (out) *out = ms < (double)max_ms ? pr__retry_ms_ceil(ms) : max_ms;
    return 1;
}

/* ---- circuit breaker ---- */
struct pr_breaker {
    struct pr_breaker *next; /* registry list */
    pr_breaker_opts o;       /* resolved */
    int state;               /* stored state (open is read half-open once due) */
    int failures, half_open_calls;
    int64_t opened_at;
    size_t name_len;         /* the name's bytes (NUL-terminated) follow the struct */
};

struct pr_breaker_registry {
    pr_breaker *list;
};

static const char *pr__retry_breaker_name(const pr_breaker *b) { return (const char *)(b + 1); }

static void pr__retry_breaker_to(pr_breaker *b, int to) {
    const pr_breaker_observer *ob = &b->o.observer;
    int from = b->state;
    if (from == to) return;
    b->state = to;
    if (to == PR_BREAKER_OPEN) b->opened_at = pr_now();
    if (to != PR_BREAKER_CLOSED) b->half_open_calls = 0;
    if (to == PR_BREAKER_CLOSED) b->failures = 0;
    if (ob->on_change) ob->on_change(pr__retry_breaker_name(b), from, to, ob->user_data);
}

int pr_breaker_create(pr_breaker **out, const char *name, const pr_breaker_opts *opts) {
    pr_breaker *b;
    size_t n = name ? strlen(name) : 0;
    if (out) *out = NULL;
    if (!out || (opts && (opts->failure_threshold < 0 || opts->reset_timeout_ms < 0 || opts->half_open_max_calls < 0)))
        return PR_EINVAL;
    if (!(b = (pr_breaker *)pr__calloc(1, sizeof *b + n + 1))) return PR_ENOMEM;
    if (opts) b->o = *opts;
    b->o.failure_threshold = PR__DEF(b->o.failure_threshold, 5);
    b->o.reset_timeout_ms = PR__DEF(b->o.reset_timeout_ms, 30000);
    b->o.half_open_max_calls = PR__DEF(b->o.half_open_max_calls, 1);
    b->name_len = n;
    if (n) memcpy(b + 1, name, n);
    *out = b;
    return PR_OK;
}

void pr_breaker_destroy(pr_breaker *b) {
    if (b) pr__free(b, sizeof *b + b->name_len + 1);
}

int pr_breaker_state(pr_breaker *b) {
    if (!b) return PR_EINVAL;
    if (b->state == PR_BREAKER_OPEN && pr_now() - b->opened_at >= b->o.reset_timeout_ms)
        pr__retry_breaker_to(b, PR_BREAKER_HALF_OPEN);
    return b->state;
}

int pr_breaker_admit(pr_breaker *b) {
    int st = pr_breaker_state(b);
    if (st < 0) return st;
    if (st == PR_BREAKER_CLOSED) return PR_OK;
    if (st == PR_BREAKER_HALF_OPEN && b->half_open_calls < b->o.half_open_max_calls) {
        b->half_open_calls++;
        return PR_OK;
    }
    return PR_ECIRCUIT;
}

void pr_breaker_record(pr_breaker *b, int outcome) {
    int st = pr_breaker_state(b);
    if (st < 0) return;
    if (outcome == PR_BREAKER_IGNORE) {
        if (st == PR_BREAKER_HALF_OPEN && b->half_open_calls > 0) b->half_open_calls--;
    } else if (outcome == PR_BREAKER_SUCCESS) {
        if (st == PR_BREAKER_CLOSED) b->failures = 0;
        else if (st == PR_BREAKER_HALF_OPEN) pr__retry_breaker_to(b, PR_BREAKER_CLOSED);
    } else if (st == PR_BREAKER_CLOSED) {
        if (++b->failures >= b->o.failure_threshold) pr__retry_breaker_to(b, PR_BREAKER_OPEN);
    } else if (st == PR_BREAKER_HALF_OPEN) {
        pr__retry_breaker_to(b, PR_BREAKER_OPEN); /* a failed probe: open again, a new opened_at */
    }
}

int pr_breaker_failures(const pr_breaker *b) { return b ? b->failures : 0; }

void pr_breaker_reset(pr_breaker *b) {
    if (!b) return;
    pr__retry_breaker_to(b, PR_BREAKER_CLOSED);
    b->failures = 0;
    b->half_open_calls = 0;
}

int pr_breaker_registry_create(pr_breaker_registry **out) {
    if (!out) return PR_EINVAL;
    *out = (pr_breaker_registry *)pr__calloc(1, sizeof **out);
    return *out ? PR_OK : PR_ENOMEM;
}

void pr_breaker_registry_destroy(pr_breaker_registry *r) {
    if (!r) return;
    while (r->list) {
        pr_breaker *b = r->list;
        r->list = b->next;
        pr_breaker_destroy(b);
    }
    pr__free(r, sizeof *r);
}

static pr_breaker *pr__retry_breaker_find(pr_breaker_registry *r, const char *name) {
    pr_breaker *b;
    size_t n = strlen(name);
    for (b = r->list; b; b = b->next)
        if (b->name_len == n && memcmp(b + 1, name, n) == 0) return b;
    return NULL;
}

int pr_breaker_registry_get(pr_breaker_registry *r, const char *name, const pr_breaker_opts *opts,
                            pr_breaker **out) {
    pr_breaker *b;
    int rc;
    if (out) *out = NULL;
    if (!r || !name || !out) return PR_EINVAL;
    if ((b = pr__retry_breaker_find(r, name)) == NULL) {
        if ((rc = pr_breaker_create(&b, name, opts)) != PR_OK) return rc;
        b->next = r->list;
        r->list = b;
    }
    *out = b;
    return PR_OK;
}

int pr_breaker_registry_state(pr_breaker_registry *r, const char *name) {
    pr_breaker *b;
    if (!r || !name) return PR_EINVAL;
    b = pr__retry_breaker_find(r, name);
    return b ? pr_breaker_state(b) : PR_BREAKER_CLOSED;
}

/* ---- backoff window ---- */
typedef struct pr__retry_window_key {
    struct pr__retry_window_key *next;
    int64_t until;   /* deadline on pr_now()'s clock */
    pr__sync_fifo waiters;
    size_t key_len;  /* key bytes follow */
} pr__retry_window_key;

struct pr_backoff_window {
    pr__retry_window_key *keys;
};

int pr_backoff_window_create(pr_backoff_window **out) {
    if (!out) return PR_EINVAL;
    *out = (pr_backoff_window *)pr__calloc(1, sizeof **out);
    return *out ? PR_OK : PR_ENOMEM;
}

static void pr__retry_window_key_free(pr__retry_window_key *k) { pr__free(k, sizeof *k + k->key_len); }

void pr_backoff_window_destroy(pr_backoff_window *w) {
    if (!w) return;
    while (w->keys) {
        pr__retry_window_key *k = w->keys;
        w->keys = k->next;
        pr__sync_fifo_wake_all(&k->waiters, 1);
        pr__retry_window_key_free(k);
    }
    pr__free(w, sizeof *w);
}

/* The entry of key; created when create is set. Creating also drops the
   entries that ended a minute ago and that nobody waits on, so the list
   holds recent windows only (a lookup never reads the clock). */
static pr__retry_window_key *pr__retry_window_find(pr_backoff_window *w, const char *key, int create) {
    pr__retry_window_key **pp = &w->keys, *k;
    size_t n;
    int64_t now = create ? pr_now() : 0;
    if (!key) key = "";
    n = strlen(key);
    while ((k = *pp) != NULL) {
        if (k->key_len == n && memcmp(k + 1, key, n) == 0) return k;
        if (create && pr__time_add(k->until, 60000) <= now && !k->waiters.n) {
            *pp = k->next;
            pr__retry_window_key_free(k);
            continue;
        }
        pp = &k->next;
    }
    if (!create || !(k = (pr__retry_window_key *)pr__calloc(1, sizeof *k + n))) return NULL;
    k->key_len = n;
    memcpy(k + 1, key, n);
    k->next = w->keys;
    w->keys = k;
    return k;
}

int pr_backoff_window_set(pr_backoff_window *w, const char *key, int64_t duration_ms) {
    pr__retry_window_key *k;
    int64_t until;
    if (!w || duration_ms < 0) return PR_EINVAL;
    if (!(k = pr__retry_window_find(w, key, 1))) return PR_ENOMEM;
    until = pr_deadline_in(duration_ms);
    if (until > k->until) k->until = until;
    return PR_OK;
}

int64_t pr_backoff_window_until(pr_backoff_window *w, const char *key) {
    pr__retry_window_key *k = w ? pr__retry_window_find(w, key, 0) : NULL;
    return k ? k->until : 0;
}

int64_t pr_backoff_window_remaining(pr_backoff_window *w, const char *key) {
    int64_t until = pr_backoff_window_until(w, key), now;
    if (!until) return 0; /* no window: no clock read on the hot path */
    now = pr_now();
    if (until <= now) return 0;
    return until > pr__time_add(now, PR_FOREVER) ? PR_FOREVER : until - now; /* a FOREVER window, any clock */
}

int pr_backoff_window_wait(pr_backoff_window *w, const char *key, int64_t deadline) {
    if (!w) return PR_EINVAL;
    if (pr_is_canceled()) return PR_ECANCELED;
    for (;;) {
        pr__retry_window_key *k = pr__retry_window_find(w, key, 0);
        pr__sync_waiter me;
        int rc;
        if (!k || k->until <= pr_now()) return PR_OK;
        if (deadline <= pr_now()) return PR_ETIMEDOUT;
        memset(&me, 0, sizeof me);
        rc = pr__sync_fifo_park(&k->waiters, &me, PR__MIN(k->until, deadline));
        /* PR_OK: cleared; PR_ETIMEDOUT: the window's end or the deadline.
           Either way look again: another task may have extended it. */
        if (rc != PR_OK && rc != PR_ETIMEDOUT) return rc;
    }
}

void pr_backoff_window_clear(pr_backoff_window *w, const char *key) {
    pr__retry_window_key *k = w ? pr__retry_window_find(w, key, 0) : NULL;
    if (!k) return;
    k->until = 0;
    pr__sync_fifo_wake_all(&k->waiters, 0);
}
