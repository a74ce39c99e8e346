// @pristine:module sync - FIFO wait queues, counting and weighted semaphores
// @pristine:public
/*
 * sync: tasks of one scheduler waiting their turn, in order.
 *
 * - pr_sem, a counting semaphore (at most `permits` holders at once), and
 *   pr_wsem, a weighted one (a budget, of bytes say, that admits while it
 *   is not negative, so one request larger than the whole budget still runs
 *   when nothing else does). Waiters are served in FIFO order; a deadline
 *   or cancellation while waiting leaves the count exactly as it was;
 *   destroying one wakes its waiters with PR_ECLOSED.
 *
 * Semaphores belong to the thread that created them, like every object of
 * a scheduler; their updates never interleave (tasks switch only when they
 * block), so concurrent tasks never lose an update.
 *
 * For the modules after it: the FIFO wait queues (pr__sync_fifo, pr__sync_waiter:
 * pr__sync_fifo_park parks the calling task in order until it is granted, the
 * queue is closed, its deadline passes or it is cancelled;
 * pr__sync_fifo_wake_all wakes them all), which retry's backoff windows,
 * telemetry's reporter and the ds producer wait on.
 *
 * Offers to the modules after it: pr__sync_fifo*, pr__sync_waiter.
 */

/* A counting semaphore: at most `permits` holders at once. Opaque. */
typedef struct pr_sem pr_sem;
/* A weighted semaphore (a budget of bytes, say): an acquire of w takes w
   from the budget; it waits only while the budget is negative, so one
   request larger than the whole budget still runs when nothing else does.
   Opaque. */
typedef struct pr_wsem pr_wsem;

/* Create a counting semaphore.
   Params: out - receives it; permits - > 0.
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_sem_acquire. */
PRISTINE_API int pr_sem_create(pr_sem **out, int64_t permits);

/* Free a semaphore; tasks still waiting wake with PR_ECLOSED. NULL is a
   no-op.
   Params: s - the semaphore.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_sem_create. */
PRISTINE_API void pr_sem_destroy(pr_sem *s);

/* Take a permit, waiting in FIFO order while none is free. A deadline or
   cancellation while waiting leaves the count exactly as it was.
   Params: s - the semaphore; deadline - absolute ms.
   Returns: PR_OK (release it later); PR_ETIMEDOUT; PR_ECANCELED;
            PR_ECLOSED (destroyed while waiting); PR_EINVAL; PR_ENOMEM.
   Blocks: yes.
   Thread: owner.
   See: pr_sem_release. */
PRISTINE_API int pr_sem_acquire(pr_sem *s, int64_t deadline);

/* Take a permit only if one is free now (never waits, never jumps ahead
   of waiting tasks).
   Params: s - the semaphore.
   Returns: PR_OK; PR_ETIMEDOUT (none free: what a deadline in the past
            gives); PR_EINVAL.
   Blocks: no.
   Thread: owner.
   See: pr_sem_acquire. */
PRISTINE_API int pr_sem_try_acquire(pr_sem *s);

/* Give a permit back; the longest waiter gets it.
   Params: s - the semaphore.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_sem_acquire. */
PRISTINE_API void pr_sem_release(pr_sem *s);

/* Permits free now.
   Params: s - the semaphore.
   Returns: the count (0 for NULL).
   Blocks: no.
   Thread: owner.
   See: pr_sem_waiting. */
PRISTINE_API int64_t pr_sem_available(const pr_sem *s);

/* Tasks waiting for a permit.
   Params: s - the semaphore.
   Returns: the count (0 for NULL).
   Blocks: no.
   Thread: owner.
   See: pr_sem_available. */
PRISTINE_API size_t pr_sem_waiting(const pr_sem *s);

/* Create a weighted semaphore.
   Params: out - receives it; budget - the starting budget (> 0).
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_wsem_acquire. */
PRISTINE_API int pr_wsem_create(pr_wsem **out, int64_t budget);

/* Free a weighted semaphore; waiting tasks wake with PR_ECLOSED. NULL is a
   no-op.
   Params: w - the semaphore.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_wsem_create. */
PRISTINE_API void pr_wsem_destroy(pr_wsem *w);

/* Take weight from the budget: at once when the budget is >= 0 and nobody
   waits (even if it goes negative), else wait in FIFO order. A deadline or
   cancellation while waiting leaves the budget exactly as it was.
   Params: w - the semaphore; weight - >= 0; deadline - absolute ms.
   Returns: PR_OK (release the same weight later); PR_ETIMEDOUT;
            PR_ECANCELED; PR_ECLOSED; PR_EINVAL; PR_ENOMEM.
   Blocks: yes.
   Thread: owner.
   See: pr_wsem_release. */
PRISTINE_API int pr_wsem_acquire(pr_wsem *w, int64_t weight, int64_t deadline);

/* Take weight only if that is possible now (never waits).
   Params: w - the semaphore; weight - >= 0.
   Returns: PR_OK; PR_ETIMEDOUT (the budget is negative or others wait);
            PR_EINVAL.
   Blocks: no.
   Thread: owner.
   See: pr_wsem_acquire. */
PRISTINE_API int pr_wsem_try_acquire(pr_wsem *w, int64_t weight);

/* Give weight back; waiters are admitted in FIFO order while the budget is
   >= 0, each taking its weight, stopping once it turns negative.
   Params: w - the semaphore; weight - what was acquired.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_wsem_acquire. */
PRISTINE_API void pr_wsem_release(pr_wsem *w, int64_t weight);

/* The budget now (negative while over-committed).
   Params: w - the semaphore.
   Returns: the budget (0 for NULL).
   Blocks: no.
   Thread: owner.
   See: pr_wsem_acquire. */
PRISTINE_API int64_t pr_wsem_budget(const pr_wsem *w);

// @pristine:impl
/* ---- FIFO wait queues ---- */
/* A parked task; lives on its stack while it waits. */
typedef struct pr__sync_waiter {
    pr__link link; /* in its pr__sync_fifo */
    pr_task *task;
    int64_t weight;
    int done;   /* granted (semaphores) or released (windows: cleared) */
    int closed; /* the object was destroyed: do not touch it */
} pr__sync_waiter;

/* A queue of pr__sync_waiter, oldest first (.n counts them). */
typedef pr__list pr__sync_fifo;

/* The longest waiter of q, or NULL. */
static pr__sync_waiter *pr__sync_first(const pr__sync_fifo *q) {
    return q->head ? PR__CONTAINER_OF(q->head, pr__sync_waiter, link) : NULL;
}

/* Take w off q and wake it, granted (closed 0) or told the object is gone. */
static void pr__sync_wake(pr__sync_fifo *q, pr__sync_waiter *w, int closed) {
    pr__list_unlink(q, &w->link);
    if (closed) w->closed = 1;
    else w->done = 1;
    pr__sched_wake(w->task, PR_OK);
}

/* Wake every waiter, marking them done (or closed) and leaving the queue empty. */
static void pr__sync_fifo_wake_all(pr__sync_fifo *q, int closed) {
    pr__sync_waiter *w;
    while ((w = pr__sync_first(q)) != NULL) pr__sync_wake(q, w, closed);
}

/* Park the calling task on q until done, closed, the deadline or
   cancellation. Returns PR_OK (done), PR_ECLOSED, PR_ETIMEDOUT,
   PR_ECANCELED or PR_ENOMEM; the waiter is off the queue when it returns. */
static int pr__sync_fifo_park(pr__sync_fifo *q, pr__sync_waiter *w, int64_t deadline) {
    pr_sched *s = pr__sched_get();
    int rc = PR_OK;
    if (!s) return PR_ENOMEM;
    w->task = s->cur;
    w->done = w->closed = 0;
    pr__list_push(q, &w->link);
    while (!w->done && !w->closed && rc == PR_OK) rc = pr__sched_park(s, deadline);
    if (w->closed) return PR_ECLOSED;
    if (w->done) return PR_OK; /* granted: that beats a timeout or cancel that came with it */
    pr__list_unlink(q, &w->link);
    return rc == PR_OK ? PR_ETIMEDOUT : rc;
}

/* ---- semaphores: one core, two admission rules ---- */
typedef struct pr__sync_semcore {
    int64_t budget;
    int weighted; /* 0: admit while budget >= weight (counting); 1: while budget >= 0 */
    pr__sync_fifo q;
} pr__sync_semcore;

struct pr_sem { pr__sync_semcore c; };
struct pr_wsem { pr__sync_semcore c; };

static int pr__sync_sem_admits(const pr__sync_semcore *c, int64_t weight) {
    return c->weighted ? c->budget >= 0 : c->budget >= weight;
}

static int pr__sync_sem_try(pr__sync_semcore *c, int64_t weight) {
    if (c->q.n || !pr__sync_sem_admits(c, weight)) return PR_ETIMEDOUT;
    c->budget -= weight;
    return PR_OK;
}

static int pr__sync_sem_acquire(pr__sync_semcore *c, int64_t weight, int64_t deadline) {
    pr__sync_waiter me;
    if (pr_is_canceled()) return PR_ECANCELED;
    if (pr__sync_sem_try(c, weight) == PR_OK) return PR_OK;
    memset(&me, 0, sizeof me);
    me.weight = weight;
    return pr__sync_fifo_park(&c->q, &me, deadline); /* a grant has already taken the weight */
}

/* Hand the budget to waiters in order while the head is admitted. */
static void pr__sync_sem_release(pr__sync_semcore *c, int64_t weight) {
    pr__sync_waiter *w;
    c->budget += weight;
    while ((w = pr__sync_first(&c->q)) != NULL && pr__sync_sem_admits(c, w->weight)) {
        c->budget -= w->weight;
        pr__sync_wake(&c->q, w, 0);
    }
}

/* Wake the waiters with PR_ECLOSED and free the semaphore (size bytes at c,
   its first member). */
static void pr__sync_sem_free(pr__sync_semcore *c, size_t size) {
    pr__sync_fifo_wake_all(&c->q, 1);
    pr__free(c, size);
}

static void *pr__sync_sem_new(size_t size, int64_t budget, int weighted) {
    pr__sync_semcore *c = (pr__sync_semcore *)pr__calloc(1, size);
    if (c) {
        c->budget = budget;
        c->weighted = weighted;
    }
    return c;
}

int pr_sem_create(pr_sem **out, int64_t permits) {
    if (!out || permits <= 0) return PR_EINVAL;
    *out = (pr_sem *)pr__sync_sem_new(sizeof(pr_sem), permits, 0);
    return *out ? PR_OK : PR_ENOMEM;
}

void pr_sem_destroy(pr_sem *s) {
    if (s) pr__sync_sem_free(&s->c, sizeof *s);
}

int pr_sem_acquire(pr_sem *s, int64_t deadline) { return s ? pr__sync_sem_acquire(&s->c, 1, deadline) : PR_EINVAL; }

int pr_sem_try_acquire(pr_sem *s) { return s ? pr__sync_sem_try(&s->c, 1) : PR_EINVAL; }

void pr_sem_release(pr_sem *s) {
    if (s) pr__sync_sem_release(&s->c, 1);
}

int64_t pr_sem_available(const pr_sem *s) { return s && s->c.budget > 0 ? s->c.budget : 0; }

size_t pr_sem_waiting(const pr_sem *s) { return s ? s->c.q.n : 0; }

int pr_wsem_create(pr_wsem **out, int64_t budget) {
    if (!out || budget <= 0) return PR_EINVAL;
    *out = (pr_wsem *)pr__sync_sem_new(sizeof(pr_wsem), budget, 1);
    return *out ? PR_OK : PR_ENOMEM;
}

void pr_wsem_destroy(pr_wsem *w) {
    if (w) pr__sync_sem_free(&w->c, sizeof *w);
}

int pr_wsem_acquire(pr_wsem *w, int64_t weight, int64_t deadline) {
    return w && weight >= 0 ? pr__sync_sem_acquire(&w->c, weight, deadline) : PR_EINVAL;
}

int pr_wsem_try_acquire(pr_wsem *w, int64_t weight) {
    return w && weight >= 0 ? pr__sync_sem_try(&w->c, weight) : PR_EINVAL;
}

void pr_wsem_release(pr_wsem *w, int64_t weight) {
    if (w && weight >= 0) pr__sync_sem_release(&w->c, weight);
}

int64_t pr_wsem_budget(const pr_wsem *w) { return w ? w->c.budget : 0; }
