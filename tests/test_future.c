/* future: promises, awaiting, cancellation, task futures. */

static int future_resolve_later(void *arg) {
    pr_future *f = (pr_future *)arg;
    pr_sleep(pr_deadline_in(2));
    return pr_future_resolve(f, (void *)"done");
}

PT_TEST(future_resolve_then_await) {
    pr_future *f;
    void *out = NULL;
    PT_REQUIRE(pr_future_create(&f) == PR_OK);
    PT_EQ_INT(pr_future_state(f), PR_FUTURE_PENDING);
    PT_EQ_ERR(pr_future_resolve(f, &out), PR_OK);
    PT_EQ_ERR(pr_future_resolve(f, NULL), PR_ESTATE);
    PT_EQ_ERR(pr_future_reject(f, PR_EIO), PR_ESTATE);
    PT_EQ_ERR(pr_future_await(f, &out, 0), PR_OK); /* settled: no deadline needed */
    PT_CHECK(out == (void *)&out);
    PT_EQ_INT(pr_future_state(f), PR_FUTURE_RESOLVED);
    pr_future_destroy(f);
    pr_future_destroy(NULL);
    PT_EQ_ERR(pr_future_create(NULL), PR_EINVAL);
    PT_EQ_ERR(pr_future_await(NULL, NULL, 0), PR_EINVAL);
}

PT_TEST(future_await_then_resolve) {
    pr_future *f;
    pr_task *t;
    void *out = NULL;
    PT_REQUIRE(pr_future_create(&f) == PR_OK);
    PT_REQUIRE(pr_go(&t, future_resolve_later, f, NULL) == PR_OK);
    PT_EQ_ERR(pr_future_await(f, &out, PR_FOREVER), PR_OK);
    PT_EQ_STR((const char *)out, "done");
    PT_EQ_ERR(pr_join(t, NULL, PR_FOREVER), PR_OK);
    pr_future_destroy(f);
}

PT_TEST(future_reject) {
    pr_future *f;
    void *out = (void *)1;
    PT_REQUIRE(pr_future_create(&f) == PR_OK);
    PT_EQ_ERR(pr_future_reject(f, 5), PR_EINVAL);
    PT_EQ_ERR(pr_future_reject(f, PR_EPROTO), PR_OK);
    PT_EQ_ERR(pr_future_await(f, &out, PR_FOREVER), PR_EPROTO);
    PT_CHECK(out == (void *)1);
    PT_EQ_INT(pr_future_state(f), PR_FUTURE_REJECTED);
    pr_future_destroy(f);
}

static int future_resolve_much_later(void *arg) {
    pr_future *f = (pr_future *)arg;
    pr_sleep(pr_deadline_in(30));
    return pr_future_resolve(f, (void *)"done");
}

PT_TEST(future_timeout_leaves_pending) {
    pr_future *f;
    pr_task *t;
    void *out = NULL;
    PT_REQUIRE(pr_future_create(&f) == PR_OK);
    PT_REQUIRE(pr_go(&t, future_resolve_much_later, f, NULL) == PR_OK);
    PT_EQ_ERR(pr_future_await(f, &out, 0), PR_ETIMEDOUT); /* past deadline: no wait */
    PT_EQ_ERR(pr_future_await(f, &out, pr_deadline_in(3)), PR_ETIMEDOUT); /* parked, then timed out */
    PT_EQ_INT(pr_future_state(f), PR_FUTURE_PENDING);
    PT_EQ_ERR(pr_future_await(f, &out, PR_FOREVER), PR_OK); /* the producer kept going */
    PT_EQ_STR((const char *)out, "done");
    pr_join(t, NULL, PR_FOREVER);
    pr_future_destroy(f);
}

typedef struct future_waiter {
    pr_future *f;
    int rc;
    void *out;
} future_waiter;

static int future_await_task(void *arg) {
    future_waiter *w = (future_waiter *)arg;
    w->rc = pr_future_await(w->f, &w->out, PR_FOREVER);
    return 0;
}

static int future_hook_calls;
static void future_hook(void *arg) {
    (void)arg;
    future_hook_calls++;
}

PT_TEST(future_many_awaiters_and_cancel) {
    pr_future *f;
    future_waiter w[5];
    pr_task *t[5];
    int i;
    PT_REQUIRE(pr_future_create(&f) == PR_OK);
    future_hook_calls = 0;
    PT_EQ_ERR(pr_future_on_cancel(f, future_hook, NULL), PR_OK);
    for (i = 0; i < 5; i++) {
        w[i].f = f, w[i].rc = 1, w[i].out = NULL;
        PT_REQUIRE(pr_go(&t[i], future_await_task, &w[i], NULL) == PR_OK);
    }
    pr_yield();
    PT_EQ_ERR(pr_future_cancel(f), PR_OK);
    PT_EQ_ERR(pr_future_cancel(f), PR_ESTATE);
    PT_EQ_INT(future_hook_calls, 1);
    for (i = 0; i < 5; i++) {
        PT_EQ_ERR(pr_join(t[i], NULL, PR_FOREVER), PR_OK);
        PT_EQ_ERR(w[i].rc, PR_ECANCELED);
    }
    PT_EQ_INT(pr_future_state(f), PR_FUTURE_REJECTED);
    pr_future_destroy(f);
}

PT_TEST(future_awaiting_task_cancelled) {
    pr_future *f;
    future_waiter w;
    pr_task *t;
    PT_REQUIRE(pr_future_create(&f) == PR_OK);
    w.f = f, w.rc = 1;
    PT_REQUIRE(pr_go(&t, future_await_task, &w, NULL) == PR_OK);
    pr_yield();
    pr_cancel(t);
    PT_EQ_ERR(pr_join(t, NULL, PR_FOREVER), PR_OK);
    PT_EQ_ERR(w.rc, PR_ECANCELED);
    PT_EQ_INT(pr_future_state(f), PR_FUTURE_PENDING); /* the future itself is untouched */
    PT_EQ_ERR(pr_future_resolve(f, NULL), PR_OK);
    pr_future_destroy(f);
}

static int future_body(void *arg) {
    pr_sleep(pr_deadline_in(1));
    return (int)(intptr_t)arg;
}

PT_TEST(future_of_task) {
    pr_future *f;
    void *out = NULL;
    PT_REQUIRE(pr_future_go(&f, future_body, (void *)41, NULL) == PR_OK);
    PT_EQ_ERR(pr_future_await(f, &out, PR_FOREVER), PR_OK);
    PT_EQ_INT((intptr_t)out, 41);
    pr_future_destroy(f);
    PT_REQUIRE(pr_future_go(&f, future_body, (void *)(intptr_t)PR_EIO, NULL) == PR_OK);
    PT_EQ_ERR(pr_future_await(f, &out, PR_FOREVER), PR_EIO);
    pr_future_destroy(f);
    PT_EQ_ERR(pr_future_go(&f, NULL, NULL, NULL), PR_EINVAL);
}

static int future_forever_body(void *arg) {
    int *rc = (int *)arg;
    *rc = pr_sleep(PR_FOREVER);
    return *rc;
}

PT_TEST(future_of_task_cancel_cancels_task) {
    pr_future *f;
    int task_rc = 1;
    PT_REQUIRE(pr_future_go(&f, future_forever_body, &task_rc, NULL) == PR_OK);
    pr_yield();
    PT_EQ_ERR(pr_future_cancel(f), PR_OK);
    PT_EQ_ERR(pr_future_await(f, NULL, PR_FOREVER), PR_ECANCELED);
    pr_future_destroy(f); /* the task still holds a reference until it ends */
    pr_yield();
    PT_EQ_ERR(task_rc, PR_ECANCELED);
    PT_EQ_INT(sched_other_tasks(), 0);
}

PT_TEST(future_dropped_while_task_runs) {
    pr_future *f;
    PT_REQUIRE(pr_future_go(&f, future_body, (void *)1, NULL) == PR_OK);
    pr_future_destroy(f); /* nobody waits; the task finishes and frees it */
    PT_EQ_ERR(pr_sleep(pr_deadline_in(5)), PR_OK);
    PT_EQ_INT(sched_other_tasks(), 0);
}

PT_TEST(future_retain) {
    pr_future *f;
    PT_REQUIRE(pr_future_create(&f) == PR_OK);
    pr_future_retain(f);
    pr_future_destroy(f);
    PT_EQ_ERR(pr_future_resolve(f, NULL), PR_OK); /* still alive */
    pr_future_destroy(f);
}

const pt_suite pt_suite_future = { "future", {
    PT_ENTRY(future_resolve_then_await),
    PT_ENTRY(future_await_then_resolve),
    PT_ENTRY(future_reject),
    PT_ENTRY(future_timeout_leaves_pending),
    PT_ENTRY(future_many_awaiters_and_cancel),
    PT_ENTRY(future_awaiting_task_cancelled),
    PT_ENTRY(future_of_task),
    PT_ENTRY(future_of_task_cancel_cancels_task),
    PT_ENTRY(future_dropped_while_task_runs),
    PT_ENTRY(future_retain),
    {0, 0} } };
