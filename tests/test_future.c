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

PT_TEST(future_reject_with_detail) {
    pr_future *f, *g;
    pr_err_info e, got;
    PT_REQUIRE(pr_future_create(&f) == PR_OK);
    PT_EQ_ERR(pr_future_last_error(f, &got), PR_ESTATE); /* pending */
    pr__err_set(&e, PR_EFAILED, 0, "remote said no");
    e.category = PR_CATEGORY_USER;
    e.http_status = 200;
    PT_EQ_ERR(pr_future_reject_info(f, &e), PR_OK);
    PT_EQ_ERR(pr_future_reject_info(f, &e), PR_ESTATE);
    PT_EQ_ERR(pr_future_await(f, NULL, 0), PR_EFAILED);
    PT_EQ_ERR(pr_future_last_error(f, &got), PR_OK);
    PT_EQ_INT(got.code, PR_EFAILED);
    PT_EQ_INT(got.category, PR_CATEGORY_USER);
    PT_EQ_STR(got.msg, "remote said no");
    PT_CHECK(pr_future_value(f) == NULL);
    pr_future_destroy(f);
    /* a plain rejection: the code and its text */
    PT_REQUIRE(pr_future_create(&g) == PR_OK);
    PT_EQ_ERR(pr_future_reject(g, PR_EEXPIRED), PR_OK);
    PT_EQ_ERR(pr_future_last_error(g, &got), PR_OK);
    PT_EQ_INT(got.code, PR_EEXPIRED);
    PT_EQ_STR(got.msg, pr_strerror(PR_EEXPIRED));
    e.code = 0;
    PT_EQ_ERR(pr_future_reject_info(g, &e), PR_EINVAL);
    pr_future_destroy(g);
}

typedef struct future_retrier {
    pr_future *f;
    int code;
    int64_t next_in; /* ms; < 0: resolve instead */
} future_retrier;

/* A producer that notes a failed try after a moment (or resolves). */
static int future_note_later(void *arg) {
    future_retrier *r = (future_retrier *)arg;
    pr_err_info e;
    pr_sleep(pr_deadline_in(5));
    if (r->next_in < 0) return pr_future_resolve(r->f, (void *)"v");
    pr__err_set(&e, r->code, ECONNREFUSED, "connection refused");
    return pr_future_note_retry(r->f, &e, pr_deadline_in(r->next_in));
}

/* A producer waiting to try again says why to the waits that would end
   before its next try (the cause, the future still pending), and to no
   others; an answer or settling withdraws the note. */
PT_TEST(future_note_retry_answers_early_waits) {
    pr_future *f, *g, *both[2];
    pr_err_info e, got;
    future_retrier r;
    size_t failed = 9;
    int64_t far = pr_deadline_in(60000);
    PT_REQUIRE(pr_future_create(&f) == PR_OK);
    pr__err_set(&e, PR_EIO, ECONNREFUSED, "connection refused");
    PT_EQ_ERR(pr_future_note_retry(NULL, &e, 1), PR_EINVAL);
    e.code = 0;
    PT_EQ_ERR(pr_future_note_retry(f, &e, 1), PR_EINVAL);
    e.code = PR_EIO;
    PT_EQ_ERR(pr_future_note_retry(f, &e, far), PR_OK);
    PT_EQ_ERR(pr_future_await(f, NULL, pr_deadline_in(10000)), PR_EIO); /* at once: the try is later */
    PT_EQ_INT(pr_future_state(f), PR_FUTURE_PENDING);
    PT_EQ_ERR(pr_future_last_error(f, &got), PR_OK);
    PT_EQ_INT(got.code, PR_EIO);
    PT_EQ_INT(got.sys_errno, ECONNREFUSED);
    PT_EQ_STR(got.msg, "connection refused");
    /* a deadline after the next try waits as usual */
    PT_EQ_ERR(pr_future_note_retry(f, &e, pr_deadline_in(1)), PR_OK);
    PT_EQ_ERR(pr_future_await(f, NULL, pr_deadline_in(20)), PR_ETIMEDOUT);
    /* withdrawn: waits time out again, and nothing is reported */
    PT_EQ_ERR(pr_future_note_retry(f, NULL, 0), PR_OK);
    PT_EQ_ERR(pr_future_await(f, NULL, pr_deadline_in(1)), PR_ETIMEDOUT);
    PT_EQ_ERR(pr_future_last_error(f, &got), PR_ESTATE);
    /* a note that arrives during a wait ends it */
    r.f = f;
    r.code = PR_EIO;
    r.next_in = 60000;
    PT_EQ_ERR(pr_go(NULL, future_note_later, &r, NULL), PR_OK);
    PT_EQ_ERR(pr_future_await(f, NULL, pr_deadline_in(30000)), PR_EIO);
    /* await_all: the pending future whose next try is too late */
    PT_REQUIRE(pr_future_create(&g) == PR_OK);
    both[0] = g;
    both[1] = f;
    PT_EQ_ERR(pr_future_await_all(both, 2, 0, &failed, pr_deadline_in(30000)), PR_EIO);
    PT_EQ_INT(failed, 1);
    PT_EQ_ERR(pr_future_note_retry(f, NULL, 0), PR_OK);
    failed = 9;
    r.f = g;
    PT_EQ_ERR(pr_go(NULL, future_note_later, &r, NULL), PR_OK);
    PT_EQ_ERR(pr_future_await_all(both, 2, 0, &failed, pr_deadline_in(30000)), PR_EIO);
    PT_EQ_INT(failed, 0);
    /* settling withdraws the note: the outcome is the settlement */
    PT_EQ_ERR(pr_future_resolve(g, (void *)"w"), PR_OK);
    PT_EQ_ERR(pr_future_note_retry(g, &e, far), PR_ESTATE);
    PT_EQ_ERR(pr_future_last_error(g, &got), PR_ESTATE);
    r.f = f;
    r.next_in = -1;
    PT_EQ_ERR(pr_go(NULL, future_note_later, &r, NULL), PR_OK);
    PT_EQ_ERR(pr_future_await_all(both, 2, 0, &failed, pr_deadline_in(30000)), PR_OK);
    PT_EQ_STR((const char *)pr_future_value(f), "v");
    pr_future_destroy(g);
    pr_future_destroy(f);
}

static void future_free_counter(void *value, void *user_data) {
    (void)value;
    ++*(int *)user_data;
}

PT_TEST(future_value_destructor) {
    pr_future *f;
    int frees = 0;
    PT_REQUIRE(pr_future_create(&f) == PR_OK);
    PT_EQ_ERR(pr_future_on_free(f, future_free_counter, &frees), PR_OK);
    PT_EQ_ERR(pr_future_resolve(f, (void *)"v"), PR_OK);
    PT_EQ_STR((const char *)pr_future_value(f), "v");
    pr_future_retain(f);
    pr_future_destroy(f);
    PT_EQ_INT(frees, 0); /* a reference is left */
    pr_future_destroy(f);
    PT_EQ_INT(frees, 1);
    /* a rejected future has no value to free */
    PT_REQUIRE(pr_future_create(&f) == PR_OK);
    PT_EQ_ERR(pr_future_on_free(f, future_free_counter, &frees), PR_OK);
    PT_EQ_ERR(pr_future_reject(f, PR_EIO), PR_OK);
    pr_future_destroy(f);
    PT_EQ_INT(frees, 1);
}

typedef struct future_later {
    pr_future *f;
    int ms, code;
    const char *value;
} future_later;

static int future_settle_later(void *arg) {
    future_later *l = (future_later *)arg;
    pr_sleep(pr_deadline_in(l->ms));
    return l->code ? pr_future_reject(l->f, l->code) : pr_future_resolve(l->f, (void *)l->value);
}

/* F24: three futures settling in the order r3, r1, r2: await-all gives the
   values in input order; a failing r2 fails the whole wait. */
PT_TEST(future_await_all_order_and_failure) {
    static const int ms[3] = { 20, 30, 10 };
    static const char *const vals[3] = { "r1", "r2", "r3" };
    future_later l[3];
    pr_future *fs[3];
    pr_task *t[3];
    size_t i, failed = 99;
    int round;
    int64_t t0;
    pr__time_test_clock_virtual(1, pr_now());
    for (round = 0; round < 3; round++) {
        for (i = 0; i < 3; i++) {
            PT_REQUIRE(pr_future_create(&fs[i]) == PR_OK);
            l[i].f = fs[i];
            l[i].ms = ms[i];
            l[i].value = vals[i];
            l[i].code = round > 0 && i == 1 ? PR_EFAILED : 0;
            PT_REQUIRE(pr_go(&t[i], future_settle_later, &l[i], NULL) == PR_OK);
        }
        t0 = pr_now();
        if (round == 0) {
            PT_EQ_ERR(pr_future_await_all(fs, 3, 0, &failed, PR_FOREVER), PR_OK);
            for (i = 0; i < 3; i++) PT_EQ_STR((const char *)pr_future_value(fs[i]), vals[i]);
            PT_EQ_INT(pr_now() - t0, 30);
        } else if (round == 1) { /* r2 fails at 30 ms, the last to settle */
            PT_EQ_ERR(pr_future_await_all(fs, 3, 0, &failed, PR_FOREVER), PR_EFAILED);
            PT_EQ_INT(failed, 1);
            PT_EQ_INT(pr_now() - t0, 30);
        } else { /* fail fast: the same answer (r2 is the last to settle here) */
            PT_EQ_ERR(pr_future_await_all(fs, 3, PR_AWAIT_FAIL_FAST, &failed, PR_FOREVER), PR_EFAILED);
            PT_EQ_INT(failed, 1);
            PT_EQ_INT(pr_now() - t0, 30);
        }
        for (i = 0; i < 3; i++) {
            PT_EQ_ERR(pr_join(t[i], NULL, PR_FOREVER), PR_OK);
            pr_future_destroy(fs[i]);
        }
    }
    pr__time_test_clock_virtual(0, 0);
}

PT_TEST(future_await_all_fail_fast_returns_early) {
    future_later l[2];
    pr_future *fs[2];
    pr_task *t[2];
    size_t failed = 99, i;
    int64_t t0;
    pr__time_test_clock_virtual(1, pr_now());
    for (i = 0; i < 2; i++) {
        PT_REQUIRE(pr_future_create(&fs[i]) == PR_OK);
        l[i].f = fs[i];
        l[i].ms = i == 0 ? 1000 : 10;
        l[i].value = "x";
        l[i].code = i == 1 ? PR_EEXPIRED : 0;
        PT_REQUIRE(pr_go(&t[i], future_settle_later, &l[i], NULL) == PR_OK);
    }
    t0 = pr_now();
    PT_EQ_ERR(pr_future_await_all(fs, 2, PR_AWAIT_FAIL_FAST, &failed, PR_FOREVER), PR_EEXPIRED);
    PT_EQ_INT(failed, 1);
    PT_EQ_INT(pr_now() - t0, 10); /* did not wait for the slow one */
    PT_EQ_INT(pr_future_state(fs[0]), PR_FUTURE_PENDING);
    /* a deadline: the futures keep going */
    PT_EQ_ERR(pr_future_await_all(fs, 1, 0, NULL, pr_deadline_in(100)), PR_ETIMEDOUT);
    PT_EQ_ERR(pr_future_await_all(fs, 1, 0, NULL, PR_FOREVER), PR_OK);
    PT_EQ_ERR(pr_future_await_all(fs, 0, 0, NULL, 0), PR_OK); /* nothing to wait for */
    PT_EQ_ERR(pr_future_await_all(NULL, 1, 0, NULL, 0), PR_EINVAL);
    for (i = 0; i < 2; i++) {
        PT_EQ_ERR(pr_join(t[i], NULL, PR_FOREVER), PR_OK);
        pr_future_destroy(fs[i]);
    }
    pr__time_test_clock_virtual(0, 0);
}

static int future_resolve_all_reverse(void *arg) {
    pr_future **fs = (pr_future **)arg;
    size_t i = 10000;
    while (i-- > 0) {
        if (pr_future_state(fs[i]) == PR_FUTURE_PENDING) pr_future_resolve(fs[i], (void *)"late");
        if (i % 1000 == 0) pr_yield();
    }
    return 0;
}

/* 10,000 futures settled in reverse order: one waiter, linear work. */
PT_TEST(future_await_all_many) {
    enum { N = 10000 };
    pr_future **fs = (pr_future **)calloc(N, sizeof *fs);
    size_t i;
    PT_REQUIRE(fs != NULL);
    for (i = 0; i < N; i++) PT_REQUIRE(pr_future_create(&fs[i]) == PR_OK);
    PT_EQ_ERR(pr_future_resolve(fs[N / 2], (void *)"early"), PR_OK);
    {
        pr_task *t;
        PT_REQUIRE(pr_go(&t, future_resolve_all_reverse, fs, NULL) == PR_OK);
        PT_EQ_ERR(pr_future_await_all(fs, N, 0, NULL, pr_deadline_in(10000)), PR_OK);
        PT_EQ_ERR(pr_join(t, NULL, PR_FOREVER), PR_OK);
    }
    PT_EQ_STR((const char *)pr_future_value(fs[N / 2]), "early");
    PT_EQ_STR((const char *)pr_future_value(fs[0]), "late");
    for (i = 0; i < N; i++) pr_future_destroy(fs[i]);
    free(fs);
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
    PT_ENTRY(future_reject_with_detail),
    PT_ENTRY(future_note_retry_answers_early_waits),
    PT_ENTRY(future_value_destructor),
    PT_ENTRY(future_await_all_order_and_failure),
    PT_ENTRY(future_await_all_fail_fast_returns_early),
    PT_ENTRY(future_await_all_many),
    {0, 0} } };
