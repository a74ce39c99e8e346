// @pristine:module future - in-process promises and futures; a task's result as a future
// @pristine:public
/*
 * future: a pr_future is a value that arrives later. Its producer settles
 * it once (pr_future_resolve with a pointer, or pr_future_reject with a
 * PR_E* code); any number of tasks wait for it with pr_future_await. A
 * future belongs to the scheduler of the thread that created it; to settle
 * it from another thread, pr_sched_post a function that does.
 *
 * Lifetime: futures are reference-counted. pr_future_create and
 * pr_future_go hand the caller one reference; pr_future_retain adds one
 * (give one to each independent owner, e.g. the producer), and
 * pr_future_destroy drops one. The last drop frees it; a pending future
 * freed that way simply never settles.
 *
 * Timeouts do not cancel: when pr_future_await times out the future stays
 * pending and the producer keeps going. pr_future_cancel is the explicit
 * way to give up; it runs the producer's cancel hook.
 *
 * A producer that retries (a remote future polling a server that refuses)
 * says so with pr_future_note_retry: the cause of its failed try and when
 * the next one starts. A wait whose deadline comes before that start
 * cannot see the future settle, so it returns the cause at once instead
 * of waiting out its deadline to say PR_ETIMEDOUT; the future stays
 * pending and pr_future_last_error gives the detail. The library's other
 * retrying calls (pr_sse_open, the DS reads) keep the same rule.
 */

typedef struct pr_future pr_future;

/* Settlement states reported by pr_future_state. */
enum pr_future_state_kind { PR_FUTURE_PENDING = 0, PR_FUTURE_RESOLVED = 1, PR_FUTURE_REJECTED = 2 };

/* Create a pending future, owned by the calling thread.
   Params: out - receives it, holding one reference.
   Returns: PR_OK; PR_ENOMEM; PR_EINVAL if out is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_future_resolve, pr_future_await, pr_future_destroy. */
PRISTINE_API int pr_future_create(pr_future **out);

/* Add a reference.
   Params: f - the future.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_future_destroy. */
PRISTINE_API void pr_future_retain(pr_future *f);

/* Drop a reference; the last one frees the future. NULL is a no-op.
   Params: f - the future.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_future_retain. */
PRISTINE_API void pr_future_destroy(pr_future *f);

/* Settle the future with a value and wake every awaiting task.
   Params: f - the future; value - any pointer (borrowed: the future does not
           own or free it).
   Returns: PR_OK; PR_ESTATE if it was already settled (or cancelled);
            PR_EINVAL if f is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_future_reject. */
PRISTINE_API int pr_future_resolve(pr_future *f, void *value);

/* Settle the future with an error and wake every awaiting task.
   Params: f - the future; code - a negative PR_E* code.
   Returns: PR_OK; PR_ESTATE if already settled; PR_EINVAL if f is NULL or
            code is not negative.
   Blocks: no.
   Thread: owner.
   See: pr_future_resolve. */
PRISTINE_API int pr_future_reject(pr_future *f, int code);

/* Wait for the future to settle.
   Params: f - the future; out - receives the value when resolved (may be
           NULL); deadline - absolute ms.
   Returns: PR_OK (resolved; *out set); the rejection code when it was
            rejected (PR_ECANCELED after pr_future_cancel); PR_ETIMEDOUT (the
            future stays pending); the code of the producer's failed try
            (PR_EIO, PR_EHTTP, ...) as soon as its next try would start after
            the deadline (pr_future_note_retry; the future stays pending,
            pr_future_last_error has the detail); PR_ECANCELED (the awaiting
            task was cancelled); PR_EINVAL (f is NULL); PR_ENOMEM (no
            scheduler).
            pr_future_state tells a cancelled future from a cancelled waiter.
   Blocks: yes.
   Thread: owner.
   See: pr_future_state. */
PRISTINE_API int pr_future_await(pr_future *f, void **out, int64_t deadline);

/* Where the future stands.
   Params: f - the future.
   Returns: PR_FUTURE_PENDING, PR_FUTURE_RESOLVED or PR_FUTURE_REJECTED (all
            >= 0); PR_EINVAL (negative) if f is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_future_await. */
PRISTINE_API int pr_future_state(const pr_future *f);

/* Give up on a pending future: it is rejected with PR_ECANCELED, awaiting
   tasks wake, and the producer's cancel hook runs (for pr_future_go, the
   task is cancelled).
   Params: f - the future.
   Returns: PR_OK; PR_ESTATE if already settled; PR_EINVAL if f is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_future_on_cancel. */
PRISTINE_API int pr_future_cancel(pr_future *f);

/* Set the producer's cancel hook, called once by pr_future_cancel.
   Params: f - the future; fn - the hook (NULL removes it); user_data - its
           argument.
   Returns: PR_OK; PR_EINVAL if f is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_future_cancel. */
PRISTINE_API int pr_future_on_cancel(pr_future *f, void (*fn)(void *user_data), void *user_data);

/* Reject the future with a code and its detail (copied), for
   pr_future_last_error to report.
   Params: f - the future; info - the detail; info->code (negative) is the
           rejection code.
   Returns: PR_OK; PR_ESTATE if already settled; PR_EINVAL if f or info is
            NULL or info->code is not negative; PR_ENOMEM (the future is
            still rejected, without the detail).
   Blocks: no.
   Thread: owner.
   See: pr_future_last_error. */
PRISTINE_API int pr_future_reject_info(pr_future *f, const pr_err_info *info);

/* The detail of a rejected future: what pr_future_reject_info gave, or
   just the code (with its text) for a plain rejection. Of a pending future
   whose producer waits to try again: the cause it noted.
   Params: f - the future; out - receives the detail.
   Returns: PR_OK (rejected, or pending with a noted retry); PR_ESTATE
            (resolved, or pending with nothing noted: *out is zeroed);
            PR_EINVAL.
   Blocks: no.
   Thread: owner.
   See: pr_future_reject_info. */
PRISTINE_API int pr_future_last_error(const pr_future *f, pr_err_info *out);

/* For a producer that retries: its last try failed with cause (copied) and
   the next one starts at next_at (absolute ms). Waits whose deadline comes
   before next_at return cause->code at once (pr_future_await); later
   waits wait. A NULL cause withdraws the note (the producer got an answer);
   settling the future withdraws it too.
   Params: f - the future; cause - the failure (code negative), or NULL;
           next_at - when the next try starts.
   Returns: PR_OK; PR_ESTATE if f is settled; PR_EINVAL if f is NULL or
            cause->code is not negative; PR_ENOMEM (nothing noted).
   Blocks: no.
   Thread: owner.
   See: pr_future_await, pr_future_last_error. */
PRISTINE_API int pr_future_note_retry(pr_future *f, const pr_err_info *cause, int64_t next_at);

/* The value of a resolved future (what pr_future_await would give).
   Params: f - the future.
   Returns: the value; NULL when f is NULL, pending or rejected.
   Blocks: no.
   Thread: owner.
   See: pr_future_await. */
PRISTINE_API void *pr_future_value(const pr_future *f);

/* Give the future's value a destructor: when the last reference goes and
   the future was resolved, free_value(value, user_data) runs. For
   producers whose value the future owns (a parsed document, say).
   Params: f - the future; free_value - the destructor (NULL removes it);
           user_data - its last argument.
   Returns: PR_OK; PR_EINVAL if f is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_future_destroy. */
PRISTINE_API int pr_future_on_free(pr_future *f, void (*free_value)(void *value, void *user_data), void *user_data);

/* pr_future_await_all flags. */
#define PR_AWAIT_FAIL_FAST 1 /* return at the first rejection, without waiting for the rest */

/* Wait until every future of fs is settled (or, with PR_AWAIT_FAIL_FAST,
   until one is rejected). Values are then read with pr_future_value, in
   input order. Work is linear in n however the futures settle.
   Params: fs, n - the futures (none NULL); flags - 0 or PR_AWAIT_FAIL_FAST;
           failed - receives the index of the rejected future reported (may
           be NULL); deadline - absolute ms.
   Returns: PR_OK (all resolved); the rejection code of the first rejected
            future in input order (with PR_AWAIT_FAIL_FAST: the first to be
            rejected), *failed set; the code of a pending future's failed try
            as soon as its next try would start after the deadline
            (pr_future_note_retry), *failed set, the futures keep going;
            PR_ETIMEDOUT or PR_ECANCELED (the waiter gave up: the futures keep
            going); PR_EINVAL; PR_ENOMEM.
   Blocks: yes.
   Thread: owner.
   See: pr_future_await, pr_future_value. */
PRISTINE_API int pr_future_await_all(pr_future *const *fs, size_t n, int flags, size_t *failed, int64_t deadline);

/* Run fn(user_data) as a task and get its result as a future: a result
   r >= 0 resolves it with the value (void *)(intptr_t)r, a negative r
   rejects it with r. Cancelling the future cancels the task.
   Params: out - receives the future (one reference); fn, user_data, opts -
           as for pr_go.
   Returns: PR_OK; PR_ENOMEM; PR_EINVAL.
   Blocks: no.
   Thread: owner.
   See: pr_go, pr_future_await. */
PRISTINE_API int pr_future_go(pr_future **out, pr_task_fn fn, void *user_data, const pr_spawn_opts *opts);

// @pristine:impl
/* Where pr_future_await_all hears which futures settled. */
typedef struct pr__future_fgroup {
    size_t *settled; /* indices in settling order */
    size_t nsettled;
    size_t *noted;   /* indices of futures that noted a retry since last looked at */
    size_t nnoted;
} pr__future_fgroup;

/* A task waiting in pr_future_await (on its stack) or pr_future_await_all. */
typedef struct pr__future_fwait {
    struct pr__future_fwait *prev, *next;
    pr_task *task;
    pr__future_fgroup *group; /* await_all: note idx there on settling; NULL otherwise */
    size_t idx;
    int noted;                /* idx is in group->noted */
} pr__future_fwait;

struct pr_future {
    pr__future_fwait *waiters;
    void *value;
    int code;                  /* rejection code */
    int state;                 /* PR_FUTURE_* */
    size_t refs;
    void (*on_cancel)(void *);
    void *on_cancel_data;
    pr_task *task;             /* pr_future_go's task while it runs */
    pr_task_fn fn;             /* pr_future_go's body */
    void *user_data;
    pr_err_info *detail;       /* pr_future_reject_info's copy, or NULL */
    pr_err_info *retry;        /* pr_future_note_retry's cause (kept for reuse), or NULL */
    int64_t retry_at;          /* when the producer tries again; 0 = no note */
    void (*free_value)(void *value, void *user_data);
    void *free_data;
};

int pr_future_create(pr_future **out) {
    pr_future *f;
    if (!out) return PR_EINVAL;
    f = (pr_future *)pr__calloc(1, sizeof *f);
    if (!f) return PR_ENOMEM;
    f->refs = 1;
    *out = f;
    return PR_OK;
}

void pr_future_retain(pr_future *f) {
    if (f) f->refs++;
}

void pr_future_destroy(pr_future *f) {
    if (!f || --f->refs) return;
    PR__ASSERT(!f->waiters); /* a waiter holds a reference of its own */
    if (f->state == PR_FUTURE_RESOLVED && f->free_value) f->free_value(f->value, f->free_data);
    pr__free(f->detail, sizeof *f->detail);
    pr__free(f->retry, sizeof *f->retry);
    pr__free(f, sizeof *f);
}

static int pr__future_settle(pr_future *f, int state, void *value, int code) {
    pr__future_fwait *w;
    if (!f) return PR_EINVAL;
    if (f->state != PR_FUTURE_PENDING) return PR_ESTATE;
    f->state = state;
    f->value = value;
    f->code = code;
    f->retry_at = 0;
    for (w = f->waiters; w; w = w->next) {
        if (w->group) w->group->settled[w->group->nsettled++] = w->idx;
        pr__sched_wake(w->task, PR_OK);
    }
    return PR_OK;
}

int pr_future_resolve(pr_future *f, void *value) { return pr__future_settle(f, PR_FUTURE_RESOLVED, value, PR_OK); }

int pr_future_reject(pr_future *f, int code) {
    if (code >= 0) return PR_EINVAL;
    return pr__future_settle(f, PR_FUTURE_REJECTED, NULL, code);
}

int pr_future_state(const pr_future *f) { return f ? f->state : PR_EINVAL; }

int pr_future_reject_info(pr_future *f, const pr_err_info *info) {
    int rc;
    if (!f || !info || info->code >= 0) return PR_EINVAL;
    if (f->state != PR_FUTURE_PENDING) return PR_ESTATE;
    if (!f->detail) f->detail = (pr_err_info *)pr__alloc(sizeof *f->detail);
    if (f->detail) *f->detail = *info;
    rc = pr__future_settle(f, PR_FUTURE_REJECTED, NULL, info->code);
    return rc ? rc : f->detail ? PR_OK : PR_ENOMEM;
}

int pr_future_last_error(const pr_future *f, pr_err_info *out) {
    if (!f || !out) return PR_EINVAL;
    memset(out, 0, sizeof *out);
    if (f->state == PR_FUTURE_PENDING && f->retry_at) {
        *out = *f->retry;
        return PR_OK;
    }
    if (f->state != PR_FUTURE_REJECTED) return PR_ESTATE;
    if (f->detail) *out = *f->detail;
    else pr__err_set(out, f->code, 0, "%s", pr_strerror(f->code));
    return PR_OK;
}

int pr_future_note_retry(pr_future *f, const pr_err_info *cause, int64_t next_at) {
    pr__future_fwait *w;
    if (!f || (cause && cause->code >= 0)) return PR_EINVAL;
    if (f->state != PR_FUTURE_PENDING) return PR_ESTATE;
    f->retry_at = 0;
    if (!cause) return PR_OK;
    if (!f->retry && !(f->retry = (pr_err_info *)pr__alloc(sizeof *f->retry))) return PR_ENOMEM;
    *f->retry = *cause;
    f->retry_at = PR__MAX(next_at, 1);
    for (w = f->waiters; w; w = w->next) { /* each waiter compares next_at with its deadline */
        if (w->group && !w->noted) {
            w->noted = 1;
            w->group->noted[w->group->nnoted++] = w->idx;
        }
        pr__sched_wake(w->task, PR_OK);
    }
    return PR_OK;
}

/* A wait until deadline cannot see f settle: its producer tries again later. */
static int pr__future_retry_late(const pr_future *f, int64_t deadline) {
    return f->state == PR_FUTURE_PENDING && f->retry_at && f->retry_at > deadline;
}

void *pr_future_value(const pr_future *f) { return f && f->state == PR_FUTURE_RESOLVED ? f->value : NULL; }

int pr_future_on_free(pr_future *f, void (*free_value)(void *value, void *user_data), void *user_data) {
    if (!f) return PR_EINVAL;
    f->free_value = free_value;
    f->free_data = user_data;
    return PR_OK;
}

/* Unlink w from f's waiters. */
static void pr__future_unwait(pr_future *f, pr__future_fwait *w) {
    if (w->prev) w->prev->next = w->next;
    else f->waiters = w->next;
    if (w->next) w->next->prev = w->prev;
}

int pr_future_await_all(pr_future *const *fs, size_t n, int flags, size_t *failed, int64_t deadline) {
    pr_sched *s;
    pr__future_fwait *ws = NULL;
    pr__future_fgroup g;
    size_t i, first_bad = n, done = 0, late = 0;
    int rc = PR_OK;
    if (!fs && n) return PR_EINVAL;
    for (i = 0; i < n; i++)
        if (!fs[i]) return PR_EINVAL;
    if (!(s = pr__sched_get())) return PR_ENOMEM;
    memset(&g, 0, sizeof g);
    if (n && (!(ws = (pr__future_fwait *)pr__calloc(n, sizeof *ws)) ||
              !(g.settled = (size_t *)pr__alloc(2 * n * sizeof *g.settled)))) {
        pr__free(ws, n * sizeof *ws);
        return PR_ENOMEM;
    }
    g.noted = g.settled + n;
    /* note what is settled already; wait on the rest */
    for (i = 0; i < n; i++) {
        pr_future *f = fs[i];
        if (f->state != PR_FUTURE_PENDING) {
            done++;
            if (f->state == PR_FUTURE_REJECTED && i < first_bad) first_bad = i;
            continue;
        }
        ws[i].task = s->cur;
        ws[i].group = &g;
        ws[i].idx = i;
        if (f->retry_at) {
            ws[i].noted = 1;
            g.noted[g.nnoted++] = i;
        }
        ws[i].next = f->waiters;
        if (f->waiters) f->waiters->prev = &ws[i];
        f->waiters = &ws[i];
        f->refs++;
    }
    for (;;) {
        size_t k = 0;
        while (k < g.nsettled) { /* each settled future once */
            size_t idx = g.settled[k++];
            done++;
            if (fs[idx]->state == PR_FUTURE_REJECTED && idx < first_bad) {
                first_bad = idx;
                if (flags & PR_AWAIT_FAIL_FAST) break;
            }
        }
        if (k) memmove(g.settled, g.settled + k, (g.nsettled - k) * sizeof *g.settled);
        g.nsettled -= k;
        if (done >= n || ((flags & PR_AWAIT_FAIL_FAST) && first_bad < n)) break;
        while (g.nnoted && !late) { /* a producer's next try after the deadline: its cause now */
            size_t idx = g.noted[--g.nnoted];
            ws[idx].noted = 0;
            if (pr__future_retry_late(fs[idx], deadline)) late = idx + 1;
        }
        if (late) break;
        if ((rc = pr__sched_park(s, deadline)) != PR_OK) break;
    }
    for (i = 0; i < n; i++) {
        if (!ws[i].task) continue;
        pr__future_unwait(fs[i], &ws[i]);
        pr_future_destroy(fs[i]); /* the waiter's reference */
    }
    pr__free(ws, n * sizeof *ws);
    pr__free(g.settled, 2 * n * sizeof *g.settled);
    if (rc != PR_OK) return rc;
    if (late && first_bad == n) {
        if (failed) *failed = late - 1;
        return fs[late - 1]->retry->code;
    }
    if (first_bad < n) {
        if (failed) *failed = first_bad;
        return fs[first_bad]->code;
    }
    return PR_OK;
}

int pr_future_await(pr_future *f, void **out, int64_t deadline) {
    pr_sched *s;
    pr__future_fwait w;
    int rc = PR_OK;
    if (!f) return PR_EINVAL;
    if (f->state == PR_FUTURE_PENDING) {
        if (!(s = pr__sched_get())) return PR_ENOMEM;
        w.task = s->cur;
        w.group = NULL;
        w.prev = NULL;
        w.next = f->waiters;
        if (f->waiters) f->waiters->prev = &w;
        f->waiters = &w;
        f->refs++;
        while (f->state == PR_FUTURE_PENDING && rc == PR_OK)
            rc = pr__future_retry_late(f, deadline) ? f->retry->code : pr__sched_park(s, deadline);
        pr__future_unwait(f, &w);
        if (f->state == PR_FUTURE_PENDING) {
            pr_future_destroy(f);
            return rc;
        }
        f->refs--; /* settled: the caller still holds its own reference */
    }
    if (f->state == PR_FUTURE_REJECTED) return f->code;
    if (out) *out = f->value;
    return PR_OK;
}

int pr_future_on_cancel(pr_future *f, void (*fn)(void *user_data), void *user_data) {
    if (!f) return PR_EINVAL;
    f->on_cancel = fn;
    f->on_cancel_data = user_data;
    return PR_OK;
}

int pr_future_cancel(pr_future *f) {
    int rc = pr__future_settle(f, PR_FUTURE_REJECTED, NULL, PR_ECANCELED);
    if (rc) return rc;
    if (f->task) pr_cancel(f->task);
    if (f->on_cancel) {
        void (*fn)(void *) = f->on_cancel;
        f->on_cancel = NULL;
        fn(f->on_cancel_data);
    }
    return PR_OK;
}

static int pr__future_task(void *arg) {
    pr_future *f = (pr_future *)arg;
    int r = f->fn(f->user_data);
    f->task = NULL;
    if (f->state == PR_FUTURE_PENDING) {
        if (r >= 0) pr_future_resolve(f, (void *)(intptr_t)r);
        else pr_future_reject(f, r);
    }
    pr_future_destroy(f); /* the task's reference */
    return r;
}

int pr_future_go(pr_future **out, pr_task_fn fn, void *user_data, const pr_spawn_opts *opts) {
    pr_future *f;
    pr_task *t;
    int rc;
    if (!out || !fn) return PR_EINVAL;
    if ((rc = pr_future_create(&f)) != PR_OK) return rc;
    f->fn = fn;
    f->user_data = user_data;
    f->refs = 2; /* the caller's and the task's */
    if ((rc = pr__sched_spawn(&t, pr__future_task, f, opts, PR__SCHED_TF_DETACHED)) != PR_OK) {
        pr__free(f, sizeof *f);
        return rc;
    }
    f->task = t;
    *out = f;
    return PR_OK;
}
