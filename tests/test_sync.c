/* sync: the FIFO wait queues under the counting and weighted semaphores:
   permits and budgets stay exact through deadlines, cancellation and
   destruction, and waiters are served in order. Time is the virtual clock
   (started at the real clock's reading, so the runner's own per-test
   deadline stays ahead of it): nothing here sleeps for real. */

/* The virtual clock from the current reading of the real one. */
static int64_t sync_vclock_on(void) {
    int64_t t0 = pr_now();
    pr__time_test_clock_virtual(1, t0);
    return t0;
}

static void sync_vclock_off(void) { pr__time_test_clock_virtual(0, 0); }

typedef struct sync_holder {
    pr_sem *s;
    pr_wsem *w;
    int64_t weight, hold_ms, deadline_ms;
    int rc, id;
    int *order, *norder;
    int *inside, *peak;
} sync_holder;

static int sync_sem_holder(void *ud) {
    sync_holder *h = (sync_holder *)ud;
    h->rc = h->s ? pr_sem_acquire(h->s, h->deadline_ms ? pr_deadline_in(h->deadline_ms) : PR_FOREVER)
                 : pr_wsem_acquire(h->w, h->weight, h->deadline_ms ? pr_deadline_in(h->deadline_ms) : PR_FOREVER);
    if (h->rc != PR_OK) return 0;
    if (h->order) h->order[(*h->norder)++] = h->id;
    if (h->inside && ++*h->inside > *h->peak) *h->peak = *h->inside;
    if (h->hold_ms) pr_sleep(pr_deadline_in(h->hold_ms));
    if (h->inside) --*h->inside;
    if (h->s) pr_sem_release(h->s);
    else pr_wsem_release(h->w, h->weight);
    return 0;
}

PT_TEST(sync_sem_counting) {
    pr_sem *s;
    sync_holder h[10];
    pr_task *t[10];
    int inside = 0, peak = 0, order[10], norder = 0, i;
    int64_t t0 = sync_vclock_on();
    PT_REQUIRE(pr_sem_create(&s, 3) == PR_OK);
    /* S1: max 3, 10 tasks each holding 50 ms: peak 3, all done, FIFO */
    for (i = 0; i < 10; i++) {
        memset(&h[i], 0, sizeof h[i]);
        h[i].s = s;
        h[i].hold_ms = 50;
        h[i].id = i;
        h[i].order = order;
        h[i].norder = &norder;
        h[i].inside = &inside;
        h[i].peak = &peak;
        PT_REQUIRE(pr_go(&t[i], sync_sem_holder, &h[i], NULL) == PR_OK);
    }
    for (i = 0; i < 10; i++) {
        PT_EQ_ERR(pr_join(t[i], NULL, PR_FOREVER), PR_OK);
        PT_EQ_ERR(h[i].rc, PR_OK);
    }
    PT_EQ_INT(peak, 3);
    PT_EQ_INT(norder, 10);
    for (i = 0; i < 10; i++) PT_EQ_INT(order[i], i);
    PT_EQ_INT(pr_now() - t0, 200); /* 4 rounds of 50 ms */
    PT_EQ_INT(pr_sem_available(s), 3);
    /* S2: try_acquire at max fails at once; after a release it succeeds */
    for (i = 0; i < 3; i++) PT_EQ_ERR(pr_sem_try_acquire(s), PR_OK);
    PT_EQ_ERR(pr_sem_try_acquire(s), PR_ETIMEDOUT);
    PT_EQ_ERR(pr_sem_acquire(s, 0), PR_ETIMEDOUT);
    pr_sem_release(s);
    PT_EQ_ERR(pr_sem_try_acquire(s), PR_OK);
    for (i = 0; i < 3; i++) pr_sem_release(s);
    PT_EQ_INT(pr_sem_available(s), 3);
    PT_EQ_ERR(pr_sem_create(&s, 0), PR_EINVAL);
    PT_EQ_ERR(pr_sem_acquire(NULL, 0), PR_EINVAL);
    pr_sem_destroy(NULL);
    pr_sem_destroy(s);
    sync_vclock_off();
}

static int sync_failing_holder(void *ud) {
    sync_holder *h = (sync_holder *)ud;
    /* S3: a holder whose work fails still releases */
    if (pr_sem_acquire(h->s, PR_FOREVER) != PR_OK) return -1;
    h->rc = PR_EIO;
    pr_sem_release(h->s);
    return h->rc;
}

PT_TEST(sync_sem_deadline_and_cancel_keep_count) {
    pr_sem *s;
    sync_holder a, b, c;
    pr_task *ta, *tb, *tc;
    int64_t t0 = sync_vclock_on();
    PT_REQUIRE(pr_sem_create(&s, 1) == PR_OK);
    memset(&a, 0, sizeof a);
    a.s = s;
    PT_EQ_INT(sync_failing_holder(&a), PR_EIO);
    PT_EQ_INT(pr_sem_available(s), 1);
    PT_EQ_ERR(pr_sem_acquire(s, PR_FOREVER), PR_OK); /* we hold the only permit */
    /* a waiter whose deadline passes, one that is cancelled, one that gets it */
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    a.s = b.s = c.s = s;
    a.deadline_ms = 100;
    b.hold_ms = 1;
    c.hold_ms = 1;
    a.rc = b.rc = c.rc = -100;
    PT_REQUIRE(pr_go(&ta, sync_sem_holder, &a, NULL) == PR_OK);
    PT_REQUIRE(pr_go(&tb, sync_sem_holder, &b, NULL) == PR_OK);
    PT_REQUIRE(pr_go(&tc, sync_sem_holder, &c, NULL) == PR_OK);
    PT_EQ_ERR(pr_sleep(pr_deadline_in(150)), PR_OK);
    PT_EQ_ERR(a.rc, PR_ETIMEDOUT);
    PT_EQ_INT(pr_sem_waiting(s), 2);
    pr_cancel(tb);
    PT_EQ_ERR(pr_join(tb, NULL, PR_FOREVER), PR_OK);
    PT_EQ_ERR(b.rc, PR_ECANCELED);
    PT_EQ_INT(pr_sem_waiting(s), 1);
    PT_EQ_INT(pr_sem_available(s), 0);
    pr_sem_release(s); /* straight to c */
    PT_EQ_INT(pr_sem_available(s), 0);
    PT_EQ_ERR(pr_join(tc, NULL, PR_FOREVER), PR_OK);
    PT_EQ_ERR(c.rc, PR_OK);
    PT_EQ_ERR(pr_join(ta, NULL, PR_FOREVER), PR_OK);
    PT_EQ_INT(pr_sem_available(s), 1);
    PT_EQ_INT(pr_sem_waiting(s), 0);
    /* a cancelled task gets PR_ECANCELED even with a permit free */
    pr_cancel(pr_self());
    PT_EQ_ERR(pr_sem_acquire(s, PR_FOREVER), PR_ECANCELED);
    PT_EQ_INT(pr_sem_available(s), 1);
    PT_CHECK(pr_now() - t0 >= 150);
    pr_sem_destroy(s);
    sync_vclock_off();
}

static int sync_sem_destroy_waiter(void *ud) {
    sync_holder *h = (sync_holder *)ud;
    h->rc = pr_sem_acquire(h->s, PR_FOREVER);
    return 0;
}

PT_TEST(sync_sem_destroy_wakes_waiters) {
    pr_sem *s;
    sync_holder h;
    pr_task *t;
    PT_REQUIRE(pr_sem_create(&s, 1) == PR_OK);
    PT_EQ_ERR(pr_sem_try_acquire(s), PR_OK);
    memset(&h, 0, sizeof h);
    h.s = s;
    h.rc = -100;
    PT_REQUIRE(pr_go(&t, sync_sem_destroy_waiter, &h, NULL) == PR_OK);
    PT_EQ_ERR(pr_yield(), PR_OK);
    PT_EQ_INT(pr_sem_waiting(s), 1);
    pr_sem_destroy(s);
    PT_EQ_ERR(pr_join(t, NULL, PR_FOREVER), PR_OK);
    PT_EQ_ERR(h.rc, PR_ECLOSED);
}

PT_TEST(sync_wsem_budget_rules) {
    pr_wsem *w;
    sync_holder h;
    pr_task *t;
    sync_vclock_on();
    PT_REQUIRE(pr_wsem_create(&w, 100) == PR_OK);
    /* S4: 80 -> 20; 50 -> -30; an acquire of 1 waits; release 50 -> 20, it proceeds -> 19 */
    PT_EQ_ERR(pr_wsem_acquire(w, 80, 0), PR_OK);
    PT_EQ_INT(pr_wsem_budget(w), 20);
    PT_EQ_ERR(pr_wsem_acquire(w, 50, 0), PR_OK);
    PT_EQ_INT(pr_wsem_budget(w), -30);
    memset(&h, 0, sizeof h);
    h.w = w;
    h.weight = 1;
    h.hold_ms = 10;
    h.rc = -100;
    PT_REQUIRE(pr_go(&t, sync_sem_holder, &h, NULL) == PR_OK);
    PT_EQ_ERR(pr_yield(), PR_OK);
    PT_EQ_INT(h.rc, -100);
    /* S8: try_acquire while negative fails without blocking */
    PT_EQ_ERR(pr_wsem_try_acquire(w, 1), PR_ETIMEDOUT);
    pr_wsem_release(w, 50);
    PT_EQ_INT(pr_wsem_budget(w), 19);
    PT_EQ_ERR(pr_join(t, NULL, PR_FOREVER), PR_OK);
    PT_EQ_ERR(h.rc, PR_OK);
    PT_EQ_INT(pr_wsem_budget(w), 20);
    pr_wsem_release(w, 80);
    PT_EQ_INT(pr_wsem_budget(w), 100);
    /* S5: acquire 100 -> 0, another 10 proceeds at once (waits only when negative) */
    PT_EQ_ERR(pr_wsem_acquire(w, 100, 0), PR_OK);
    PT_EQ_ERR(pr_wsem_try_acquire(w, 10), PR_OK);
    PT_EQ_INT(pr_wsem_budget(w), -10);
    pr_wsem_release(w, 110);
    /* S6: one acquire larger than the whole budget proceeds when idle */
    PT_EQ_ERR(pr_wsem_acquire(w, 500, 0), PR_OK);
    PT_EQ_INT(pr_wsem_budget(w), -400);
    pr_wsem_release(w, 500);
    PT_EQ_ERR(pr_wsem_acquire(w, -1, 0), PR_EINVAL);
    PT_EQ_ERR(pr_wsem_create(&w, 0), PR_EINVAL);
    pr_wsem_destroy(w);
    sync_vclock_off();
}

PT_TEST(sync_wsem_fifo_wake_stops_when_negative) {
    pr_wsem *w;
    sync_holder h[3];
    pr_task *t[3];
    int order[3], norder = 0, i;
    sync_vclock_on();
    PT_REQUIRE(pr_wsem_create(&w, 100) == PR_OK);
    PT_EQ_ERR(pr_wsem_acquire(w, 115, 0), PR_OK); /* -15 */
    /* S7: A(10), B(10), C(10) queue in that order */
    for (i = 0; i < 3; i++) {
        memset(&h[i], 0, sizeof h[i]);
        h[i].w = w;
        h[i].weight = 10;
        h[i].hold_ms = 1000;
        h[i].id = i;
        h[i].order = order;
        h[i].norder = &norder;
        h[i].rc = -100;
        PT_REQUIRE(pr_go(&t[i], sync_sem_holder, &h[i], NULL) == PR_OK);
    }
    PT_EQ_ERR(pr_yield(), PR_OK);
    PT_EQ_INT(norder, 0);
    /* release 20: budget 5 -> A takes 10 (-5), waking stops there */
    pr_wsem_release(w, 20);
    PT_EQ_INT(pr_wsem_budget(w), -5);
    PT_EQ_ERR(pr_yield(), PR_OK);
    PT_EQ_INT(norder, 1);
    /* release 20: 15 -> B (5) -> C (-5) */
    pr_wsem_release(w, 20);
    PT_EQ_INT(pr_wsem_budget(w), -5);
    for (i = 0; i < 3; i++) PT_EQ_ERR(pr_join(t[i], NULL, PR_FOREVER), PR_OK);
    PT_EQ_INT(norder, 3);
    for (i = 0; i < 3; i++) PT_EQ_INT(order[i], i);
    PT_EQ_INT(pr_wsem_budget(w), 25); /* 100 - 115 + 40 */
    pr_wsem_destroy(w);
    sync_vclock_off();
}

const pt_suite pt_suite_sync = { "sync", {
    PT_ENTRY(sync_sem_counting),
    PT_ENTRY(sync_sem_deadline_and_cancel_keep_count),
    PT_ENTRY(sync_sem_destroy_wakes_waiters),
    PT_ENTRY(sync_wsem_budget_rules),
    PT_ENTRY(sync_wsem_fifo_wake_stops_when_negative),
    {0, 0} } };
