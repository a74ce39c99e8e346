// @pristine:module session - a job service's session: the submit throttle and the session heartbeat
// @pristine:public
/*
 * session: what a client of a job service needs around its requests,
 * built from the retry and client modules.
 *
 * pr_throttle holds a submit pipeline back in layers: a concurrency
 * semaphore, a second and smaller one while the pipeline has recently been
 * backed off, and a bytes budget whose weight grows then; a 429 opens a
 * backoff window (pr_backoff_window, shared or its own) that every
 * submitter waits out. A task acquires a ticket before its submit and
 * releases it after; the throttle is owned by its creator and freed with
 * pr_throttle_destroy once no task is inside it.
 *
 * pr_heartbeat is a task that keeps a session alive: it POSTs
 * {"session_id": .., "type": "session_heartbeat"} every interval, without
 * retries, counts the failures and warns (the log, or on_warning) once
 * none has succeeded for warn_after_ms. pr_heartbeat_stop ends it and
 * frees it.
 *
 * Both are independent of remote futures (the rfuture module), which a
 * pipeline usually pairs them with.
 *
 * Each takes an HTTP client, or makes one of its own (destroyed with it)
 * from the TLS settings in its options; so do the remote-future poller and
 * the telemetry reporter.
 *
 * Offers to the modules after it: pr__session_url, pr__session_client.
 */

/* ---- submit throttle ---- */

/* Layered limits for a submit pipeline: a concurrency semaphore; while
   "recently backed off" (during a backoff window and recent_ms after it)
   a second, smaller one; and a bytes semaphore whose weight is multiplied
   then. A 429 opens the shared window for everyone. Opaque. */
typedef struct pr_throttle pr_throttle;

/* Options of pr_throttle_create. Zero means the default. */
typedef struct pr_throttle_opts {
    int max_concurrent;          /* 0 = 400 */
    int backoff_concurrent;      /* 0 = 10: the extra limit while recently backed off */
    int64_t max_bytes;           /* 0 = 10 MiB: the bytes budget */
    int backoff_byte_factor;     /* 0 = 20: the weight multiplier while recently backed off */
    int recent_ms;               /* 0 = 10000: "recently" lasts this long after a window ends */
    int small_window_ms;         /* 0 = 1000: the window a 429 opens for a small request */
    int large_window_ms;         /* 0 = 5000: ... and for a large one */
    int64_t large_bytes;         /* 0 = 128 KiB: above this a request is large */
    pr_backoff_window *window;   /* NULL = one of its own; else shared (borrowed) */
    const char *key;             /* the window's key; NULL = "" (copied) */
} pr_throttle_opts;

/* What pr_throttle_acquire took, for pr_throttle_release. */
typedef struct pr_throttle_ticket {
    int64_t weight;              /* bytes taken from the budget */
    int backoff_slot;            /* a slot of the backoff semaphore was taken */
} pr_throttle_ticket;

/* Create a throttle.
   Params: out - receives it; opts - NULL = defaults.
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_throttle_acquire. */
PRISTINE_API int pr_throttle_create(pr_throttle **out, const pr_throttle_opts *opts);

/* Free a throttle (no task may be inside it). NULL is a no-op.
   Params: t - the throttle.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_throttle_create. */
PRISTINE_API void pr_throttle_destroy(pr_throttle *t);

/* Wait until a request of est_bytes may be sent: out of the backoff
   window, then the concurrency slot, the backoff slot when recently backed
   off, the bytes (times the factor when recently backed off), in that
   order. Hold them for the submission, then pr_throttle_release.
   Params: t - the throttle; est_bytes - the request's estimated size;
           tk - receives what was taken; deadline - absolute ms.
   Returns: PR_OK; PR_ETIMEDOUT; PR_ECANCELED (nothing is held);
            PR_EINVAL; PR_ENOMEM.
   Blocks: yes.
   Thread: owner.
   See: pr_throttle_release, pr_throttle_backoff. */
PRISTINE_API int pr_throttle_acquire(pr_throttle *t, int64_t est_bytes, pr_throttle_ticket *tk, int64_t deadline);

/* Give back what pr_throttle_acquire took.
   Params: t - the throttle; tk - the ticket.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_throttle_acquire. */
PRISTINE_API void pr_throttle_release(pr_throttle *t, const pr_throttle_ticket *tk);

/* A submit was answered 429: open the window (small_window_ms, or
   large_window_ms above large_bytes); the caller then acquires again and
   resubmits with the same sequence id.
   Params: t - the throttle; est_bytes - the refused request's size.
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_throttle_acquire. */
PRISTINE_API int pr_throttle_backoff(pr_throttle *t, int64_t est_bytes);

/* Whether the throttle counts as recently backed off now.
   Params: t - the throttle.
   Returns: 1 or 0.
   Blocks: no.
   Thread: owner.
   See: pr_throttle_opts. */
PRISTINE_API int pr_throttle_backed_off(pr_throttle *t);

/* ---- session heartbeat ---- */

/* A task that keeps a session alive. Opaque. */
typedef struct pr_heartbeat pr_heartbeat;

/* Options of pr_heartbeat_start. Zero means the default. */
typedef struct pr_heartbeat_opts {
    int interval_ms;             /* 0 = 10000: first beat after one interval, then every interval */
    int warn_after_ms;           /* 0 = 120000: warn at every tick once this long without success */
    int timeout_ms;              /* 0 = 10000: one beat (no retries) */
    const char *path;            /* NULL = "/api/v1/session_heartbeat" */
    pr_tls_opts tls;             /* the TLS settings of the heartbeat's own client (client NULL at
                                    start); must be zero when a client is given (its own apply) */
    /* Called with the warning instead of the log (warn level, module
       "session"). NULL = the log. */
    void (*on_warning)(const char *msg, int64_t since_success_ms, void *user_data);
    void *user_data;
} pr_heartbeat_opts;

/* Start beating: POST {"session_id": .., "type": "session_heartbeat"} to
   <base_url><path> every interval; failures are counted, never raised.
   Params: out - receives the heartbeat; client - the HTTP client
           (borrowed), or NULL: one of its own, made with opts->tls and
           destroyed with the heartbeat; base_url - scheme://host[:port];
           session_id - copied; opts - NULL = defaults; err - receives why
           it failed; NULL = not wanted.
   Returns: PR_OK; PR_EINVAL (a bad argument or URL; opts->tls set while a
            client is given); PR_EIO (the own client's tls.ca_file cannot
            be read); PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_heartbeat_stop. */
PRISTINE_API int pr_heartbeat_start(pr_heartbeat **out, pr_http_client *client, const char *base_url,
                                    const char *session_id, const pr_heartbeat_opts *opts, pr_err_info *err);

/* Stop beating: the task is cancelled at once (a beat in flight is
   abandoned; no new one starts) and frees everything as it ends: h is not
   to be used afterwards. NULL is a no-op.
   Params: h - the heartbeat.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_heartbeat_start. */
PRISTINE_API void pr_heartbeat_stop(pr_heartbeat *h);

/* Beats sent and beats that failed so far.
   Params: h - the heartbeat; sent, failed - receive the counts (may be NULL).
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_heartbeat_start. */
PRISTINE_API void pr_heartbeat_counts(const pr_heartbeat *h, long *sent, long *failed);

// @pristine:impl

/* Parse base (a trailing '/' dropped) + path into *url: the endpoint URLs
   of a service (the heartbeat's here; rfuture's poll and submit URLs). */
static int pr__session_url(pr_url *url, const char *base, const char *path, pr_err_info *err) {
    pr_buf u;
    int rc;
    pr_buf_init(&u);
    rc = pr_buf_append_str(&u, base);
    if (!rc && u.len && u.data[u.len - 1] == '/') u.len--;
    if (!rc) rc = pr_buf_append_str(&u, path);
    if (rc) pr__err_set(err, rc, 0, "out of memory");
    else rc = pr_url_parse(url, u.data, u.len, err);
    pr_buf_deinit(&u);
    return rc;
}

/* The client a module's object uses: given (borrowed), or, when given is
   NULL, one of its own made with tls (*own receives it, for the object to
   destroy). tls must be all zero when a client is given: those settings
   could not reach it. */
static int pr__session_client(pr_http_client *given, const pr_tls_opts *tls, pr_http_client **use,
                              pr_http_client **own, const char *who, pr_err_info *err) {
    pr_tls_opts none;
    pr_http_client_opts co;
    int rc;
    *use = *own = NULL;
    memset(&none, 0, sizeof none);
    if (given) {
        if (tls && memcmp(tls, &none, sizeof none) != 0)
            return pr__err_set(err, PR_EINVAL, 0, "%s: opts.tls is for its own client: the client given keeps its "
                                                  "own TLS settings (set them there, or pass no client)", who);
        *use = given;
        return PR_OK;
    }
    memset(&co, 0, sizeof co);
    if (tls) co.tls = *tls;
    if ((rc = pr_http_client_create(own, &co, err)) != PR_OK)
        return err ? pr__err_wrap(err, rc, err, "%s: its own client", who) : rc;
    *use = *own;
    return PR_OK;
}

/* ---- submit throttle ---- */
struct pr_throttle {
    pr_throttle_opts o;      /* resolved; key points at the copy */
    pr_sem *all, *backoff;
    pr_wsem *bytes;
    pr_backoff_window *own;  /* the window when none was given */
    char *key;
    size_t key_n;
};

int pr_throttle_create(pr_throttle **out, const pr_throttle_opts *opts) {
    pr_throttle *t;
    if (out) *out = NULL;
    if (!out) return PR_EINVAL;
    if (opts && (opts->max_concurrent < 0 || opts->backoff_concurrent < 0 || opts->max_bytes < 0 ||
                 opts->backoff_byte_factor < 0 || opts->recent_ms < 0 || opts->small_window_ms < 0 ||
                 opts->large_window_ms < 0 || opts->large_bytes < 0))
        return PR_EINVAL;
    if (!(t = (pr_throttle *)pr__calloc(1, sizeof *t))) return PR_ENOMEM;
    if (opts) t->o = *opts;
    t->o.max_concurrent = PR__DEF(t->o.max_concurrent, 400);
    t->o.backoff_concurrent = PR__DEF(t->o.backoff_concurrent, 10);
    t->o.max_bytes = PR__DEF(t->o.max_bytes, (int64_t)10 << 20);
    t->o.backoff_byte_factor = PR__DEF(t->o.backoff_byte_factor, 20);
    t->o.recent_ms = PR__DEF(t->o.recent_ms, 10000);
    t->o.small_window_ms = PR__DEF(t->o.small_window_ms, 1000);
    t->o.large_window_ms = PR__DEF(t->o.large_window_ms, 5000);
    t->o.large_bytes = PR__DEF(t->o.large_bytes, 128 * 1024);
    if (pr_sem_create(&t->all, t->o.max_concurrent) || pr_sem_create(&t->backoff, t->o.backoff_concurrent) ||
        pr_wsem_create(&t->bytes, t->o.max_bytes) || (!t->o.window && pr_backoff_window_create(&t->own)) ||
        !(t->key = pr__strdup(t->o.key ? t->o.key : "", &t->key_n))) {
        pr_throttle_destroy(t);
        return PR_ENOMEM;
    }
    if (!t->o.window) t->o.window = t->own;
    t->o.key = t->key;
    *out = t;
    return PR_OK;
}

void pr_throttle_destroy(pr_throttle *t) {
    if (!t) return;
    pr_sem_destroy(t->all);
    pr_sem_destroy(t->backoff);
    pr_wsem_destroy(t->bytes);
    pr_backoff_window_destroy(t->own);
    pr__free(t->key, t->key_n);
    pr__free(t, sizeof *t);
}

int pr_throttle_backed_off(pr_throttle *t) {
    int64_t until = t ? pr_backoff_window_until(t->o.window, t->key) : 0;
    return until && pr_now() - until < t->o.recent_ms;
}

int pr_throttle_acquire(pr_throttle *t, int64_t est_bytes, pr_throttle_ticket *tk, int64_t deadline) {
    int rc, recent;
    if (!t || !tk || est_bytes < 0) return PR_EINVAL;
    memset(tk, 0, sizeof *tk);
    if ((rc = pr_backoff_window_wait(t->o.window, t->key, deadline)) != PR_OK) return rc;
    recent = pr_throttle_backed_off(t); /* one snapshot for the whole acquisition */
    if ((rc = pr_sem_acquire(t->all, deadline)) != PR_OK) return rc;
    if (recent && (rc = pr_sem_acquire(t->backoff, deadline)) != PR_OK) {
        pr_sem_release(t->all);
        return rc;
    }
    tk->backoff_slot = recent;
    tk->weight = !recent ? est_bytes
                 : est_bytes > INT64_MAX / t->o.backoff_byte_factor ? INT64_MAX /* saturates: one runs alone */
                 : est_bytes * t->o.backoff_byte_factor;
    if ((rc = pr_wsem_acquire(t->bytes, tk->weight, deadline)) != PR_OK) {
        if (recent) pr_sem_release(t->backoff);
        pr_sem_release(t->all);
        memset(tk, 0, sizeof *tk);
        return rc;
    }
    return PR_OK;
}

void pr_throttle_release(pr_throttle *t, const pr_throttle_ticket *tk) {
    if (!t || !tk) return;
    pr_wsem_release(t->bytes, tk->weight);
    if (tk->backoff_slot) pr_sem_release(t->backoff);
    pr_sem_release(t->all);
}

int pr_throttle_backoff(pr_throttle *t, int64_t est_bytes) {
    if (!t || est_bytes < 0) return PR_EINVAL;
    return pr_backoff_window_set(t->o.window, t->key,
                                 est_bytes > t->o.large_bytes ? t->o.large_window_ms : t->o.small_window_ms);
}

/* ---- session heartbeat ---- */
struct pr_heartbeat {
    pr_heartbeat_opts o;
    pr_http_client *client;
    pr_http_client *own;  /* client, when it is the heartbeat's own */
    pr_url url;
    pr_buf body;
    pr_task *task;  /* set when the task runs */
    int stop;       /* stopped before it ran */
    long sent, failed;
};

static void pr__session_hb_free(pr_heartbeat *h) {
    pr_http_client_destroy(h->own);
    pr_url_deinit(&h->url);
    pr_buf_deinit(&h->body);
    pr__free(h, sizeof *h);
}

static int pr__session_hb_task(void *arg) {
    pr_heartbeat *h = (pr_heartbeat *)arg;
    static const char *const hd[] = { "Content-Type: application/json", NULL };
    int64_t last_ok = pr_now(), next = pr_deadline_in(h->o.interval_ms);
    h->task = pr_self();
    if (h->stop) pr_cancel(h->task);
    while (pr_sleep(next) == PR_OK) {
        pr_http_request req;
        pr_http_response *r = NULL;
        int rc, ok;
        next = pr_deadline_in(h->o.interval_ms);
        memset(&req, 0, sizeof req);
        req.method = "POST";
        req.url = &h->url;
        req.headers = hd;
        req.body = h->body.data;
        req.body_len = h->body.len;
        req.retry = &pr__retry_off;
        rc = pr_http_client_request(h->client, &r, &req, NULL, pr_deadline_in(h->o.timeout_ms));
        if (rc == PR_ECANCELED) break;
        h->sent++;
        ok = rc == PR_OK && pr_http_status(r) >= 200 && pr_http_status(r) <= 299;
        if (r) {
            char tmp[512]; /* read the (small) answer so the connection is kept */
            while (pr_http_read(r, tmp, sizeof tmp, pr_deadline_in(h->o.timeout_ms)) > 0) {}
            pr_http_response_destroy(r);
        }
        if (ok) {
            last_ok = pr_now();
            continue;
        }
        h->failed++;
        if (pr_now() - last_ok > h->o.warn_after_ms) {
            char msg[160];
            int64_t since = pr_now() - last_ok;
            snprintf(msg, sizeof msg, "session heartbeat failed for %lld s; the session will be terminated if this "
                                      "persists", (long long)(since / 1000));
            if (h->o.on_warning) h->o.on_warning(msg, since, h->o.user_data);
            else PR__LOG(PR_LEVEL_WARN, "session", "%s", msg);
        }
    }
    pr__session_hb_free(h);
    return 0;
}

int pr_heartbeat_start(pr_heartbeat **out, pr_http_client *client, const char *base_url, const char *session_id,
                       const pr_heartbeat_opts *opts, pr_err_info *err) {
    pr_heartbeat *h;
    pr_json_writer w;
    int rc;
    if (err) memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out || !base_url || !session_id)
        return pr__err_set(err, PR_EINVAL, 0, "heartbeat: %s", "out, base_url and session_id are required");
    if (opts && (opts->interval_ms < 0 || opts->warn_after_ms < 0 || opts->timeout_ms < 0))
        return pr__err_set(err, PR_EINVAL, 0, "heartbeat: %s", "a negative interval or timeout");
    if (!(h = (pr_heartbeat *)pr__calloc(1, sizeof *h))) return pr__err_set(err, PR_ENOMEM, 0, "heartbeat: %s", "out of memory");
    if (opts) h->o = *opts;
    h->o.interval_ms = PR__DEF(h->o.interval_ms, 10000);
    h->o.warn_after_ms = PR__DEF(h->o.warn_after_ms, 120000);
    h->o.timeout_ms = PR__DEF(h->o.timeout_ms, 10000);
    pr_buf_init(&h->body);
    rc = pr__session_client(client, opts ? &opts->tls : NULL, &h->client, &h->own, "heartbeat", err);
    if (!rc) rc = pr__session_url(&h->url, base_url, h->o.path ? h->o.path : "/api/v1/session_heartbeat", err);
    h->o.path = NULL;
    memset(&h->o.tls, 0, sizeof h->o.tls); /* the own client has copied what it needs */
    pr_json_writer_init(&w, &h->body);
    pr_json_begin_object(&w);
    pr_json_key(&w, "session_id", 10);
    pr_json_write_string(&w, session_id, strlen(session_id));
    pr_json_key(&w, "type", 4);
    pr_json_write_string(&w, "session_heartbeat", 17);
    pr_json_end_object(&w);
    if (!rc) rc = pr_json_writer_finish(&w);
    if (!rc) rc = pr_go(NULL, pr__session_hb_task, h, NULL);
    if (rc) {
        if (!err || err->code != rc) pr__err_set(err, rc, 0, "heartbeat: %s", pr_strerror(rc));
        pr__session_hb_free(h);
        return rc;
    }
    *out = h;
    return PR_OK;
}

void pr_heartbeat_stop(pr_heartbeat *h) {
    if (!h) return;
    if (h->task) pr_cancel(h->task); /* it frees h as it ends */
    else h->stop = 1;
}

void pr_heartbeat_counts(const pr_heartbeat *h, long *sent, long *failed) {
    if (sent) *sent = h ? h->sent : 0;
    if (failed) *failed = h ? h->failed : 0;
}
