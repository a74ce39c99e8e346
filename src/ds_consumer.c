// @pristine:module ds_consumer - Durable Streams consumer: a task that follows a stream from a checkpoint
// @pristine:public
/*
 * ds_consumer: the consumer (pr_ds_consumer_start) on a pr_ds handle,
 * reading through ds_read: a task that follows a stream from a stored
 * offset until the stream closes or it is stopped. Each batch goes
 * to on_batch (the task waits for it: a slow handler holds the reader back
 * instead of buffering; to feed a channel, pr_chan_send from on_batch),
 * then on_checkpoint gets the offset after it: store that, and a restart
 * from it (opts.offset) neither loses nor repeats a byte. It reads
 * through one read, so the read's rules hold (pr_ds_read_opts): a cause
 * retrying cannot cure (a name that does not exist, a refused
 * certificate, 404, a malformed body, ...) stops it at once with that
 * code; transient ones (network errors, 408, 429, 5xx) are tried
 * open_attempts times until the first answer, then for as long as it
 * takes (max_failures), each failure the read returns followed by a
 * reconnect after the handle's backoff, which starts afresh only after
 * healthy_ms without a failure. State
 * changes go to on_state; the observer (the consumer's own, else the
 * handle's) hears every batch, reconnect and state change, and the
 * consumer's requests (pr_telemetry_ds_hook adapts it).
 */

/* A consumer. Opaque; owned by the thread that started it. */
typedef struct pr_ds_consumer pr_ds_consumer;

/* pr_ds_consumer_opts.on_state */
enum {
    PR_DS_CONSUMER_CONNECTING = 1,
    PR_DS_CONSUMER_LIVE = 2,
    PR_DS_CONSUMER_UP_TO_DATE = 3,
    PR_DS_CONSUMER_CLOSED = 4,
    PR_DS_CONSUMER_STOPPED = 5
};

typedef struct pr_ds_consumer_opts {
    const char *offset;         /* NULL = "-1": where to start (a checkpoint), copied */
    int live;                   /* PR_DS_LIVE_LONG_POLL, _SSE or _AUTO; 0 = PR_DS_LIVE_AUTO */
    int prefer_sse;             /* with PR_DS_LIVE_AUTO: SSE, falling back to long-poll */
    int (*on_batch)(const pr_ds_chunk *c, void *user_data); /* required: non-zero stops the consumer
                                   (that value is its result) */
    void (*on_checkpoint)(const char *offset, size_t len, void *user_data); /* NULL = none */
    void (*on_state)(int state, const pr_err_info *why, void *user_data); /* NULL = none; why: the
                                   failure behind CONNECTING (a reconnect) or STOPPED, else NULL */
    void *user_data;            /* for on_batch, on_checkpoint and on_state */
    pr_ds_observer observer;    /* zero = the handle's: PR_DS_EVENT_CONSUMER_BATCH, _RECONNECT and
                                   _STATE, and the consumer's requests */
    int idle_timeout_ms;        /* as pr_ds_read_opts.idle_timeout_ms (0 = 60000; < 0 = none) */
    int open_attempts;          /* as pr_ds_read_opts.open_attempts (0 = 8; < 0 = no bound): then
                                   the consumer stops with the last cause */
    int max_failures;           /* as pr_ds_read_opts.max_failures (0 = unlimited) */
    int healthy_ms;             /* as pr_ds_read_opts.healthy_ms (0 = 60000) */
} pr_ds_consumer_opts;

/* Start following the stream in a task of the calling thread.
   Params: out - receives the consumer; ds - the handle (must outlive it);
           opts - options (on_batch required); err - receives why it
           failed (NULL = not wanted).
   Returns: PR_OK; PR_EINVAL (out, ds or on_batch NULL, an unknown mode,
            an offset pr_ds_read_open would refuse); PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_ds_consumer_wait, pr_ds_consumer_stop. */
PRISTINE_API int pr_ds_consumer_start(pr_ds_consumer **out, pr_ds *ds, const pr_ds_consumer_opts *opts,
                                      pr_err_info *err);

/* Wait until the consumer ends by itself.
   Params: c - the consumer; deadline - absolute ms.
   Returns: PR_ECLOSED (the stream closed: every batch handled); on_batch's
            non-zero result; the failure that stopped it (PR_EHTTP, PR_EDNS,
            PR_ETLS, PR_EPROTO, PR_EIO once open_attempts or max_failures
            are used up, ...: pr_ds_consumer_last_error gives the detail);
            PR_ETIMEDOUT (still running); PR_ECANCELED.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_consumer_stop. */
PRISTINE_API int pr_ds_consumer_wait(pr_ds_consumer *c, int64_t deadline);

/* The detail of the failure that stopped the consumer (the one on_state
   heard with PR_DS_CONSUMER_STOPPED), with out->meaning its PR_DS_*
   meaning (PR_DS_OK when it was no status, or none).
   Params: c - the consumer; out - receives the detail (zeroed while no
           failure stopped it).
   Returns: PR_OK; PR_EINVAL if c or out is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_ds_consumer_wait. */
PRISTINE_API int pr_ds_consumer_last_error(const pr_ds_consumer *c, pr_err_info *out);

/* Stop the consumer (cancelling its task if it runs) and free it.
   on_batch is never called again once this returns.
   Params: c - the consumer; NULL is a no-op.
   Returns: nothing.
   Blocks: no (the task is cancelled and joined; it unwinds at once).
   Thread: owner.
   See: pr_ds_consumer_start. */
PRISTINE_API void pr_ds_consumer_stop(pr_ds_consumer *c);

// @pristine:impl

struct pr_ds_consumer {
    pr_ds *ds;
    pr_ds_consumer_opts o;
    const pr_ds_observer *obs;  /* its own or the handle's (pr__ds_observer), or NULL */
    char *offset;
    pr_task *task;
    pr_err_info err;            /* the failure that stopped it */
    int meaning;                /* its PR_DS_* meaning */
    int state;
    int result;
    int done;
};

/* Tell the observer: an event of kind with the consumer's URL, its
   checkpoint unless ev has an offset, and the failure why (NULL: none). */
static void pr__ds_consumer_notify(pr_ds_consumer *c, pr_ds_event *ev, int kind, const pr_err_info *why) {
    if (!c->obs) return;
    ev->kind = kind;
    ev->url = c->ds->base;
    if (!ev->offset) ev->offset = c->offset;
    ev->error = why ? why->code : 0;
    ev->err = why;
    pr__ds_notify(c->obs, ev);
}

static void pr__ds_consumer_state(pr_ds_consumer *c, int state, const pr_err_info *why) {
    if (c->state == state && !why) return;
    c->state = state;
    if (c->o.on_state) c->o.on_state(state, why, c->o.user_data);
    if (c->obs) {
        pr_ds_event ev;
        memset(&ev, 0, sizeof ev);
        ev.state = state;
        pr__ds_consumer_notify(c, &ev, PR_DS_EVENT_CONSUMER_STATE, why);
    }
}

static int pr__ds_consumer_task(void *arg) {
    pr_ds_consumer *c = (pr_ds_consumer *)arg;
    pr_ds_read_opts ro;
    pr_ds_read *rd = NULL;
    pr_retry backoff;
    pr_err_info why;
    int64_t delay, failed_at = 0;
    int failures = 0, rc, by_user = 0, ended = 0, healthy_ms = PR__DEF(c->o.healthy_ms, 60000);
    memset(&ro, 0, sizeof ro);
    ro.live = c->o.live ? c->o.live : PR_DS_LIVE_AUTO;
    ro.prefer_sse = c->o.prefer_sse;
    ro.idle_timeout_ms = c->o.idle_timeout_ms;
    ro.open_attempts = c->o.open_attempts;
    ro.max_failures = c->o.max_failures;
    ro.healthy_ms = c->o.healthy_ms;
    pr__ds_consumer_state(c, PR_DS_CONSUMER_CONNECTING, NULL);
    /* one read throughout: it resumes at its position and keeps its count of failures */
    if ((rc = pr_ds_read_open(&rd, c->ds, c->offset, &ro, &why)) != PR_OK) {
        c->err = why;
        pr__ds_consumer_state(c, PR_DS_CONSUMER_STOPPED, &why);
        c->result = rc;
        c->done = 1;
        return 0;
    }
    rd->obs = c->obs;
    for (;;) {
        pr_ds_chunk ch;
        int outcome;
        while ((rc = pr_ds_read_next(rd, &ch, PR_FOREVER)) == PR_OK) {
            int r;
            if (failures && pr_now() - failed_at >= healthy_ms) failures = 0; /* healthy again */
            pr__ds_consumer_state(c, ch.up_to_date ? PR_DS_CONSUMER_UP_TO_DATE : PR_DS_CONSUMER_LIVE, NULL);
            if (ch.len && c->obs) {
                pr_ds_event ev;
                memset(&ev, 0, sizeof ev);
                ev.items = ch.items ? pr_json_len(ch.items) : 1;
                ev.bytes = ch.len;
                ev.offset = ch.offset;
                pr__ds_consumer_notify(c, &ev, PR_DS_EVENT_CONSUMER_BATCH, NULL);
            }
            if ((ch.len || ch.closed) && (r = c->o.on_batch(&ch, c->o.user_data)) != 0) {
                rc = r;
                by_user = 1;
                break;
            }
            pr__ds_setstr(&c->offset, ch.offset, ch.offset_len);
            if (c->o.on_checkpoint) c->o.on_checkpoint(c->offset, strlen(c->offset), c->o.user_data);
            if (ch.closed) {
                pr__ds_consumer_state(c, PR_DS_CONSUMER_CLOSED, NULL);
                rc = PR_ECLOSED;
                ended = 1;
                break;
            }
        }
        if (by_user || ended || rc == PR_ECANCELED) break;
        pr_ds_read_last_error(rd, &why);
        if (!pr__ds_read_transient(rd, rc)) { /* a final cause, or the read's tries are used up */
            c->meaning = why.meaning;
            c->err = why;
            pr__ds_consumer_state(c, PR_DS_CONSUMER_STOPPED, &why);
            break;
        }
        /* a transient failure after the read's own tries: connect again after the backoff */
        pr__ds_consumer_state(c, PR_DS_CONSUMER_CONNECTING, &why);
        if (failures++ == 0 && pr_retry_begin(&backoff, &c->ds->retry) != PR_OK) {
            rc = PR_EINVAL;
            break;
        }
        failed_at = pr_now();
        outcome = rc;
        if ((delay = pr_retry_plan(&backoff, &outcome, PR_FOREVER)) < 0) {
            rc = outcome;
            break;
        }
        if (c->obs) {
            pr_ds_event ev;
            memset(&ev, 0, sizeof ev);
            ev.attempt = failures;
            ev.delay_ms = delay;
            pr__ds_consumer_notify(c, &ev, PR_DS_EVENT_CONSUMER_RECONNECT, &why);
        }
        if (!pr_retry_sleep(&backoff, delay, &outcome, PR_FOREVER)) {
            rc = outcome;
            break;
        }
    }
    pr_ds_read_destroy(rd);
    c->result = rc;
    c->done = 1;
    return 0;
}

int pr_ds_consumer_start(pr_ds_consumer **out, pr_ds *ds, const pr_ds_consumer_opts *opts, pr_err_info *err) {
    const pr_ds_consumer_opts *o = opts;
    pr_ds_consumer *c;
    int rc;
    if (out) *out = NULL;
    if (err) memset(err, 0, sizeof *err);
    if (!out || !ds || !o || !o->on_batch)
        return pr__err_set(err, PR_EINVAL, 0, "ds consumer: out, ds and on_batch are required");
    if (o->live < 0 || o->live > PR_DS_LIVE_AUTO)
        return pr__err_set(err, PR_EINVAL, 0, "ds consumer: unknown live mode %d", o->live);
    if (o->offset && !pr__ds_token_ok(o->offset, strlen(o->offset)))
        return pr__err_set(err, PR_EINVAL, 0, "ds consumer: an offset is 1 to %d printable ASCII bytes",
                           PR__DS_MAX_OFFSET);
    if (!(c = (pr_ds_consumer *)pr__calloc(1, sizeof *c)))
        return pr__err_set(err, PR_ENOMEM, 0, "ds consumer: out of memory");
    c->ds = ds;
    c->o = *o;
    c->o.offset = NULL;
    c->obs = pr__ds_observer(ds, &c->o.observer);
    if (!(c->offset = pr__strdup(PR__DEF(o->offset, "-1"), NULL))) {
        pr__free(c, sizeof *c);
        return pr__err_set(err, PR_ENOMEM, 0, "ds consumer: out of memory");
    }
    if ((rc = pr_go(&c->task, pr__ds_consumer_task, c, NULL)) != PR_OK) {
        pr__strfree(&c->offset);
        pr__free(c, sizeof *c);
        return pr__err_set(err, rc, 0, "ds consumer: could not start its task");
    }
    *out = c;
    return PR_OK;
}

int pr_ds_consumer_wait(pr_ds_consumer *c, int64_t deadline) {
    int rc;
    if (!c || !c->task) return PR_EINVAL;
    if ((rc = pr_join(c->task, NULL, deadline)) != PR_OK) return rc;
    c->task = NULL;
    return c->result;
}

int pr_ds_consumer_last_error(const pr_ds_consumer *c, pr_err_info *out) {
    if (!c || !out) return PR_EINVAL;
    *out = c->err;
    out->meaning = c->meaning;
    return PR_OK;
}

void pr_ds_consumer_stop(pr_ds_consumer *c) {
    if (!c) return;
    if (c->task) pr__sched_join_cleanup(c->task); /* from a cancelled task too */
    pr__strfree(&c->offset);
    pr__free(c, sizeof *c);
}
