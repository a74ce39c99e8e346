/* retry: backoff policies and their presets, the retry runner, server
   hints (Retry-After in every date format, retry-after-ms, x-should-retry),
   the circuit breaker and shared backoff windows (sync's tests cover the
   semaphores). Time is the virtual clock (started at the real clock's
   reading, so the runner's own per-test deadline stays ahead of it),
   chance is injected: nothing here sleeps for real. */

/* The virtual clock from the current reading of the real one. */
static int64_t retry_vclock_on(void) {
    int64_t t0 = pr_now();
    pr__time_test_clock_virtual(1, t0);
    return t0;
}

static void retry_vclock_off(void) { pr__time_test_clock_virtual(0, 0); }

/* ---- backoff ---- */

PT_TEST(retry_backoff_strategies) {
    pr_backoff e = { PR_BACKOFF_EXPONENTIAL, PR_JITTER_NONE, 100, 1000, 0, 0, 0 };
    pr_backoff l = { PR_BACKOFF_LINEAR, PR_JITTER_NONE, 100, PR_BACKOFF_UNCAPPED, 0, 0, 0 };
    pr_backoff c = { PR_BACKOFF_CONSTANT, PR_JITTER_NONE, 100, PR_BACKOFF_UNCAPPED, 0, 0, 0 };
    static const double want_e[] = { 100, 200, 400, 800, 1000, 1000 };
    int a;
    for (a = 0; a < 6; a++) PT_CHECK(pr_backoff_delay(&e, a, 0, 0.5) == want_e[a]); /* B1 */
    for (a = 0; a < 3; a++) PT_CHECK(pr_backoff_delay(&l, a, 0, 0.5) == 100.0 * (a + 1)); /* B2 */
    for (a = 0; a < 50; a++) PT_CHECK(pr_backoff_delay(&c, a, 0, 0.5) == 100);
}

PT_TEST(retry_backoff_jitter_kinds) {
    pr_backoff f = { PR_BACKOFF_EXPONENTIAL, PR_JITTER_FACTOR, 1000, 10000, 0.25, 0, 0 };
    pr_backoff add = { PR_BACKOFF_EXPONENTIAL, PR_JITTER_ADDITIVE, 1000, 1050, 0.1, 0, 0 };
    pr_backoff http = PR_BACKOFF_HTTP, op = PR_BACKOFF_OPERATION;
    double d;
    int a;
    /* B3: factor 0.25 */
    PT_CHECK(pr_backoff_delay(&f, 0, 0, 0) == 750);
    PT_CHECK(pr_backoff_delay(&f, 0, 0, 0.5) == 875);
    d = pr_backoff_delay(&f, 0, 0, 0.999999);
    PT_CHECK(d < 1000 && d > 999);
    /* B4: additive never exceeds the cap */
    PT_CHECK(pr_backoff_delay(&add, 0, 0, 0.9) == 1050);
    /* B5: the HTTP preset is the Stainless formula min(500 * 2^a, 10000) * (1 - 0.25 r) */
    for (a = 0; a <= 6; a++) {
        double base = 500.0 * (double)(1 << a);
        if (base > 10000) base = 10000;
        PT_CHECK(pr_backoff_delay(&http, a, 0, 0) == base);             /* r = 0: the exact base */
        PT_CHECK(pr_backoff_delay(&http, a, 0, 0.5) == base * 0.875);
    }
    d = pr_backoff_delay(&http, 0, 0, 0.999999);
    PT_CHECK(d > 375 && d <= 376);                                     /* R3's bound */
    /* B8: the operation preset is +-25 %, clipped at the cap */
    PT_CHECK(pr_backoff_delay(&op, 0, 0, 0) == 375);
    d = pr_backoff_delay(&op, 0, 0, 0.999999);
    PT_CHECK(d < 625 && d > 624);
    PT_CHECK(pr_backoff_delay(&op, 10, 0, 0.999999) == 10000);
    PT_CHECK(pr_backoff_delay(&op, 10, 0, 0) == 7500);
}

PT_TEST(retry_backoff_saturates) {
    pr_backoff u = { PR_BACKOFF_EXPONENTIAL, PR_JITTER_ADDITIVE, 1000, PR_BACKOFF_UNCAPPED, 0.5, 0, 0 };
    pr_backoff l = { PR_BACKOFF_LINEAR, PR_JITTER_NONE, INT64_MAX / 2, PR_BACKOFF_UNCAPPED, 0, 0, 0 };
    double prev = 0, d;
    int a;
    /* B6: growing forever never overflows or turns negative */
    for (a = 0; a <= 2000; a++) {
        d = pr_backoff_delay(&u, a, 0, 0.99);
        PT_CHECK(d >= prev && d > 0 && d < 9.3e18);
        prev = d;
    }
    PT_CHECK(pr_backoff_delay(&u, 2000, 0, 0) > 9e18);
    PT_CHECK(pr_backoff_delay(&l, 1000000, 0, 0) > 9e18);
    PT_CHECK(pr_backoff_delay(&l, 1000000, 0, 0) < 9.3e18);
}

PT_TEST(retry_backoff_invalid_rejected) {
    static const pr_backoff bad[] = {
        { PR_BACKOFF_EXPONENTIAL, PR_JITTER_NONE, 0, 1000, 0, 0, 0 },       /* base 0 */
        { PR_BACKOFF_EXPONENTIAL, PR_JITTER_NONE, -5, 1000, 0, 0, 0 },
        { PR_BACKOFF_EXPONENTIAL, PR_JITTER_NONE, 100, 50, 0, 0, 0 },       /* max < base */
        { PR_BACKOFF_EXPONENTIAL, PR_JITTER_NONE, 100, -1, 0, 0, 0 },
        { PR_BACKOFF_EXPONENTIAL, PR_JITTER_FACTOR, 100, 1000, -0.1, 0, 0 },/* negative jitter */
        { PR_BACKOFF_EXPONENTIAL, PR_JITTER_ADDITIVE, 100, 1000, -1, 0, 0 },
        { PR_BACKOFF_EXPONENTIAL, PR_JITTER_DOWN, 100, 1000, 1.5, 0, 0 },
        { PR_BACKOFF_EXPONENTIAL, PR_JITTER_RANGE, 100, 1000, 0, 1.0, 0.5 },/* min > max */
        { PR_BACKOFF_EXPONENTIAL, PR_JITTER_RANGE, 100, 1000, 0, -0.5, 0.5 },
        { 9, PR_JITTER_NONE, 100, 1000, 0, 0, 0 },
        { PR_BACKOFF_EXPONENTIAL, 9, 100, 1000, 0, 0, 0 },
    };
    pr_backoff ok = PR_BACKOFF_HTTP;
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (pr_backoff_check(&bad[i]) != PR_EINVAL) pt_fail(__FILE__, __LINE__, "case %lu accepted", (unsigned long)i);
        PT_CHECK(pr_backoff_delay(&bad[i], 0, 0, 0.5) < 0);
    }
    PT_EQ_ERR(pr_backoff_check(NULL), PR_EINVAL);
    PT_EQ_ERR(pr_backoff_check(&ok), PR_OK);
    PT_CHECK(pr_backoff_delay(&ok, -1, 0, 0.5) == PR_EINVAL); /* negative attempt */
    PT_CHECK(pr_backoff_delay(&ok, 0, 0, -3) == 500);         /* r clamped into [0, 1) */
    PT_CHECK(pr_backoff_delay(&ok, 0, 0, 7) >= 375 && pr_backoff_delay(&ok, 0, 0, 7) < 376);
}

PT_TEST(retry_backoff_decorrelated) {
    pr_backoff b = { PR_BACKOFF_DECORRELATED, PR_JITTER_NONE, 100, 1000, 0, 0, 0 };
    double prev = 0;
    int a;
    /* B12: first = base, then every delay in [base, min(cap, 3 * previous)] */
    PT_CHECK(pr_backoff_delay(&b, 0, 0, 0.7) == 100);
    for (a = 0; a < 10000; a++) {
        double d = pr_backoff_delay(&b, a, prev, (double)(pt_rand() >> 11) / 9007199254740992.0);
        double hi = prev > 0 ? 3 * prev : 100;
        if (a == 0) PT_CHECK(d == 100);
        if (d < 100 || d > 1000 || d > hi)
            pt_fail(__FILE__, __LINE__, "attempt %d: %.3f after %.3f, want in [100, min(1000, %.3f)]", a, d, prev, hi);
        prev = d;
    }
}

/* Properties over every strategy x jitter kind, 10,000 draws each: never
   negative, never above the cap, monotone in the attempt for a fixed r
   where the strategy is (jitter none), r = 0 gives the exact base for
   the jitter kinds that start there. */
PT_TEST(retry_backoff_properties) {
    static const int strat[] = { PR_BACKOFF_EXPONENTIAL, PR_BACKOFF_LINEAR, PR_BACKOFF_CONSTANT };
    static const int jit[] = { PR_JITTER_NONE, PR_JITTER_FACTOR, PR_JITTER_ADDITIVE, PR_JITTER_RANGE, PR_JITTER_DOWN };
    size_t si, ji;
    int fails = 0;
    for (si = 0; si < 3; si++) {
        for (ji = 0; ji < 5; ji++) {
            pr_backoff b;
            int k;
            memset(&b, 0, sizeof b);
            b.strategy = strat[si];
            b.jitter = jit[ji];
            b.base_ms = 1 + (int64_t)(pt_rand() % 1000);
            b.max_ms = b.base_ms * (int64_t)(1 + pt_rand() % 100);
            b.jitter_factor = (double)(pt_rand() % 1000) / 1000.0;
            b.range_min = (double)(pt_rand() % 100) / 100.0;
            b.range_max = b.range_min + (double)(pt_rand() % 200) / 100.0;
            for (k = 0; k < 10000 && fails < 5; k++) {
                int a = (int)(pt_rand() % 80);
                double r = (double)(pt_rand() >> 11) / 9007199254740992.0;
                double d = pr_backoff_delay(&b, a, 0, r), d1 = pr_backoff_delay(&b, a + 1, 0, r);
                if (d < 0 || d > (double)b.max_ms || d1 < 0 || d1 > (double)b.max_ms) {
                    pt_fail(__FILE__, __LINE__, "strategy %d jitter %d a %d r %f: %f / %f outside [0, %lld]",
                            b.strategy, b.jitter, a, r, d, d1, (long long)b.max_ms);
                    fails++;
                }
                if (b.jitter == PR_JITTER_NONE && d1 < d) {
                    pt_fail(__FILE__, __LINE__, "strategy %d: delay fell from %f to %f", b.strategy, d, d1);
                    fails++;
                }
            }
            if (b.jitter == PR_JITTER_NONE || b.jitter == PR_JITTER_DOWN || b.jitter == PR_JITTER_ADDITIVE)
                PT_CHECK(pr_backoff_delay(&b, 0, 0, 0) == (double)b.base_ms);
        }
    }
}

PT_TEST(retry_backoff_presets) {
    static const pr_backoff presets[] = { PR_BACKOFF_HTTP, PR_BACKOFF_OPERATION, PR_BACKOFF_SUBMIT,
                                          PR_BACKOFF_POLL_INTERVAL, PR_BACKOFF_TELEMETRY, PR_BACKOFF_FLAT_1S,
                                          PR_BACKOFF_ACQUIRE, PR_BACKOFF_BILLING, PR_BACKOFF_FULL_JITTER,
                                          PR_BACKOFF_DECORRELATED_JITTER };
    pr_backoff submit = PR_BACKOFF_SUBMIT, tel = PR_BACKOFF_TELEMETRY, acq = PR_BACKOFF_ACQUIRE;
    static const double want_submit[] = { 1000, 2000, 4000, 8000, 16000, 30000, 30000 };
    size_t i;
    double d;
    for (i = 0; i < sizeof presets / sizeof presets[0]; i++) PT_EQ_ERR(pr_backoff_check(&presets[i]), PR_OK);
    for (i = 0; i < 7; i++) PT_CHECK(pr_backoff_delay(&submit, (int)i, 0, 0.3) == want_submit[i]);
    for (i = 0; i < 4; i++) { /* 1000 * 2^a plus at most 10 % */
        double base = 1000.0 * (double)(1 << i);
        d = pr_backoff_delay(&tel, (int)i, 0, 0.999);
        PT_CHECK(d >= base && d < base * 1.1);
    }
    d = pr_backoff_delay(&acq, 30, 0, 0);
    PT_CHECK(d == 37.5);
}

/* Jitter bounds over 10,000 draws of the thread's own generator. */
PT_TEST(retry_random_bounds) {
    pr_backoff http = PR_BACKOFF_HTTP;
    double lo = 1, hi = 0, sum = 0;
    int i;
    for (i = 0; i < 10000; i++) {
        double r = pr_random(), d = pr_backoff_delay(&http, 3, 0, r);
        if (r < lo) lo = r;
        if (r > hi) hi = r;
        sum += r;
        if (!(d > 3000 && d <= 4000)) pt_fail(__FILE__, __LINE__, "delay %f for r %f outside (3000, 4000]", d, r);
    }
    PT_CHECK(lo >= 0 && lo < 0.01 && hi < 1 && hi > 0.99);
    PT_CHECK(sum / 10000 > 0.45 && sum / 10000 < 0.55);
}

/* ---- the runner ---- */

typedef struct retry_rec {
    int64_t sleeps[64];
    int nsleeps;
    int calls;
    int fail_until; /* attempts before this one fail */
    int fail_code;
    double r;
    int cancel_in_sleep;
    int64_t hint;   /* classify: >= 0 = PR_RETRY_AFTER with this */
    int infos;
    pr_retry_info last_info;
} retry_rec;

static double retry_fixed_r(void *ud) { return ((retry_rec *)ud)->r; }

/* A sleep that advances the virtual clock instead of parking. */
static int retry_vsleep(int64_t delay_ms, int64_t deadline, void *ud) {
    retry_rec *x = (retry_rec *)ud;
    PT_EQ_INT(deadline - pr_now(), delay_ms);
    if (x->nsleeps < 64) x->sleeps[x->nsleeps++] = delay_ms;
    if (x->cancel_in_sleep) {
        pr_cancel(pr_self());
        return PR_ECANCELED;
    }
    pr__time_test_clock_advance(delay_ms);
    return PR_OK;
}

static int retry_attempt(int attempt, void *ud) {
    retry_rec *x = (retry_rec *)ud;
    PT_EQ_INT(attempt, x->calls);
    x->calls++;
    return x->calls <= x->fail_until ? x->fail_code : 42;
}

static int retry_hint_classify(int outcome, int64_t *after_ms, void *ud) {
    retry_rec *x = (retry_rec *)ud;
    if (outcome >= 0) return PR_RETRY_OK;
    if (x->hint >= 0) {
        *after_ms = x->hint;
        return PR_RETRY_AFTER;
    }
    return PR_RETRY_AGAIN;
}

static void retry_on_retry(const pr_retry_info *info, void *ud) {
    retry_rec *x = (retry_rec *)ud;
    x->infos++;
    x->last_info = *info;
}

static void retry_policy_init(pr_retry_policy *p, retry_rec *x) {
    memset(p, 0, sizeof *p);
    memset(x, 0, sizeof *x);
    x->fail_code = PR_EIO;
    x->hint = -1;
    p->hooks.random = retry_fixed_r;
    p->hooks.sleep = retry_vsleep;
    p->hooks.user_data = x;
    p->user_data = x;
}

PT_TEST(retry_runner_counts_and_sleeps) {
    pr_retry_policy p;
    retry_rec x;
    static const int64_t want[] = { 500, 1000, 2000, 4000, 8000, 10000, 10000, 10000, 10000, 10000 };
    int i;
    retry_vclock_on();
    /* defaults: 10 retries with the HTTP backoff; always failing: 11 calls (R2's sequence) */
    retry_policy_init(&p, &x);
    x.fail_until = 1000;
    p.on_retry = retry_on_retry;
    PT_EQ_ERR(pr_retry_run(&p, retry_attempt, &x, PR_FOREVER), PR_EIO);
    PT_EQ_INT(x.calls, 11);
    PT_EQ_INT(x.nsleeps, 10);
    for (i = 0; i < 10; i++) PT_EQ_INT(x.sleeps[i], want[i]);
    PT_EQ_INT(x.infos, 10);
    PT_EQ_INT(x.last_info.retry, 9);
    PT_EQ_INT(x.last_info.outcome, PR_EIO);
    PT_EQ_INT(x.last_info.verdict, PR_RETRY_AGAIN);
    PT_EQ_INT(x.last_info.delay_ms, 10000);
    PT_EQ_INT(x.last_info.elapsed_ms, 500 + 1000 + 2000 + 4000 + 8000 + 4 * 10000);
    /* B9: max 3 retries, always failing: 4 calls, 3 sleeps, the last error */
    retry_policy_init(&p, &x);
    p.max_retries = 3;
    x.fail_until = 1000;
    x.fail_code = PR_ECLOSED;
    PT_EQ_ERR(pr_retry_run(&p, retry_attempt, &x, PR_FOREVER), PR_ECLOSED);
    PT_EQ_INT(x.calls, 4);
    PT_EQ_INT(x.nsleeps, 3);
    /* success on the third call; r -> 1 shortens each sleep by up to a quarter */
    retry_policy_init(&p, &x);
    x.fail_until = 2;
    x.r = 0.999999;
    PT_EQ_INT(pr_retry_run(&p, retry_attempt, &x, PR_FOREVER), 42);
    PT_EQ_INT(x.calls, 3);
    PT_EQ_INT(x.nsleeps, 2);
    PT_EQ_INT(x.sleeps[0], 376);
    PT_EQ_INT(x.sleeps[1], 751);
    /* off: one call; unlimited: until success */
    retry_policy_init(&p, &x);
    p.max_retries = PR_RETRY_OFF;
    x.fail_until = 5;
    PT_EQ_ERR(pr_retry_run(&p, retry_attempt, &x, PR_FOREVER), PR_EIO);
    PT_EQ_INT(x.calls, 1);
    PT_EQ_INT(x.nsleeps, 0);
    retry_policy_init(&p, &x);
    p.max_retries = PR_RETRY_UNLIMITED;
    p.backoff.strategy = PR_BACKOFF_CONSTANT;
    p.backoff.base_ms = 1;
    p.backoff.max_ms = 1;
    x.fail_until = 40;
    PT_EQ_INT(pr_retry_run(&p, retry_attempt, &x, PR_FOREVER), 42);
    PT_EQ_INT(x.calls, 41);
    /* a fatal code stops at once */
    retry_policy_init(&p, &x);
    x.fail_until = 5;
    x.fail_code = PR_EINVAL;
    PT_EQ_ERR(pr_retry_run(&p, retry_attempt, &x, PR_FOREVER), PR_EINVAL);
    PT_EQ_INT(x.calls, 1);
    /* bad policies */
    retry_policy_init(&p, &x);
    p.max_retries = -3;
    PT_EQ_ERR(pr_retry_run(&p, retry_attempt, &x, PR_FOREVER), PR_EINVAL);
    p.max_retries = 0;
    p.backoff.base_ms = -1;
    PT_EQ_ERR(pr_retry_run(&p, retry_attempt, &x, PR_FOREVER), PR_EINVAL);
    PT_EQ_ERR(pr_retry_run(NULL, NULL, NULL, PR_FOREVER), PR_EINVAL);
    PT_EQ_INT(x.calls, 0);
    retry_vclock_off();
}

PT_TEST(retry_runner_max_elapsed) {
    pr_retry_policy p;
    pr_retry st;
    retry_rec x;
    int rc;
    int64_t t0 = retry_vclock_on();
    /* B10: constant 100 ms, max_elapsed 250: calls at 0, 100, 200; the next
       sleep would end at 300 > 250, so it stops at 200 without sleeping */
    retry_policy_init(&p, &x);
    p.max_retries = PR_RETRY_UNLIMITED;
    p.max_elapsed_ms = 250;
    p.backoff.strategy = PR_BACKOFF_CONSTANT;
    p.backoff.base_ms = p.backoff.max_ms = 100;
    x.fail_until = 1000;
    PT_EQ_ERR(pr_retry_begin(&st, &p), PR_OK);
    for (;;) {
        rc = retry_attempt(st.retries, &x);
        if (!pr_retry_next(&st, &rc, PR_FOREVER)) break;
    }
    PT_EQ_ERR(rc, PR_EIO);
    PT_EQ_INT(st.stop, PR_RETRY_ELAPSED);
    PT_EQ_INT(x.calls, 3);
    PT_EQ_INT(pr_now() - t0, 200);
    retry_vclock_off();
}

/* The runner's sums of a time and a duration saturate on any clock (a
   virtual clock before 0 here; SAN=1 checks): the wake-up time, and its
   comparisons with max_elapsed_ms and the progress timeout for a hint of
   INT64_MAX ms. */
PT_TEST(retry_runner_saturates_on_any_clock) {
    pr_retry_policy p;
    pr_retry st;
    retry_rec x;
    int rc = PR_EIO;
    pr__time_test_clock_virtual(1, -1000);
    retry_policy_init(&p, &x);
    PT_EQ_ERR(pr_retry_begin(&st, &p), PR_OK);
    PT_EQ_INT(pr_retry_plan(&st, &rc, PR_FOREVER), 500);
    PT_EQ_INT(pr_retry_sleep(&st, 500, &rc, PR_FOREVER), 1);
    PT_EQ_INT(pr_now(), -500);
    retry_policy_init(&p, &x);
    p.classify = retry_hint_classify;
    x.hint = INT64_MAX;
    p.max_elapsed_ms = 1000000;
    PT_EQ_ERR(pr_retry_begin(&st, &p), PR_OK);
    PT_EQ_INT(pr_retry_plan(&st, &rc, PR_FOREVER), -1);
    PT_EQ_INT(st.stop, PR_RETRY_ELAPSED);
    p.max_elapsed_ms = 0;
    p.progress_timeout_ms = 1000000;
    PT_EQ_ERR(pr_retry_begin(&st, &p), PR_OK);
    PT_EQ_INT(pr_retry_plan(&st, &rc, PR_FOREVER), -1);
    PT_EQ_INT(st.stop, PR_RETRY_STALLED);
    p.progress_timeout_ms = 0;
    PT_EQ_ERR(pr_retry_begin(&st, &p), PR_OK);
    PT_EQ_INT(pr_retry_plan(&st, &rc, PR_FOREVER), INT64_MAX); /* no limit: the server's word */
    PT_EQ_INT(pr_retry_plan(&st, &rc, INT64_MAX - 1000), -1); /* wakes at INT64_MAX - 500 */
    PT_EQ_INT(st.stop, PR_RETRY_DEADLINE);
    retry_vclock_off();
}

PT_TEST(retry_runner_hint_overrides_backoff) {
    pr_retry_policy p;
    retry_rec x;
    int i;
    retry_vclock_on();
    /* B11: a classifier delay of 7 ms replaces every backoff sleep */
    retry_policy_init(&p, &x);
    p.classify = retry_hint_classify;
    p.on_retry = retry_on_retry;
    x.hint = 7;
    x.fail_until = 4;
    PT_EQ_INT(pr_retry_run(&p, retry_attempt, &x, PR_FOREVER), 42);
    PT_EQ_INT(x.nsleeps, 4);
    for (i = 0; i < 4; i++) PT_EQ_INT(x.sleeps[i], 7);
    PT_EQ_INT(x.last_info.verdict, PR_RETRY_AFTER);
    /* no hint: the backoff */
    retry_policy_init(&p, &x);
    p.classify = retry_hint_classify;
    x.fail_until = 2;
    PT_EQ_INT(pr_retry_run(&p, retry_attempt, &x, PR_FOREVER), 42);
    PT_EQ_INT(x.sleeps[0], 500);
    PT_EQ_INT(x.sleeps[1], 1000);
    retry_vclock_off();
}

PT_TEST(retry_runner_never_sleeps_past_deadline) {
    pr_retry_policy p;
    pr_retry st;
    retry_rec x;
    int rc;
    int64_t t0 = retry_vclock_on();
    retry_policy_init(&p, &x);
    x.fail_until = 1000;
    x.fail_code = PR_ETIMEDOUT;
    /* sleeps 500 and 1000 fit under 2000; the next (2000) would not */
    PT_EQ_ERR(pr_retry_begin(&st, &p), PR_OK);
    for (;;) {
        rc = retry_attempt(st.retries, &x);
        if (!pr_retry_next(&st, &rc, t0 + 2000)) break;
    }
    PT_EQ_ERR(rc, PR_ETIMEDOUT); /* the last attempt's own error, at once */
    PT_EQ_INT(st.stop, PR_RETRY_DEADLINE);
    PT_EQ_INT(x.calls, 3);
    PT_EQ_INT(x.nsleeps, 2);
    PT_EQ_INT(pr_now() - t0, 1500);
    /* a deadline in the past: one call, no sleep */
    retry_policy_init(&p, &x);
    x.fail_until = 1000;
    PT_EQ_ERR(pr_retry_run(&p, retry_attempt, &x, 0), PR_EIO);
    PT_EQ_INT(x.calls, 1);
    PT_EQ_INT(x.nsleeps, 0);
    retry_vclock_off();
}

PT_TEST(retry_runner_progress_timeout) {
    pr_retry_policy p;
    pr_retry st;
    retry_rec x;
    int rc;
    retry_vclock_on();
    retry_policy_init(&p, &x);
    p.max_retries = PR_RETRY_UNLIMITED;
    p.progress_timeout_ms = 1000;
    p.backoff.strategy = PR_BACKOFF_CONSTANT;
    p.backoff.base_ms = p.backoff.max_ms = 300;
    x.fail_until = 1000;
    PT_EQ_ERR(pr_retry_begin(&st, &p), PR_OK);
    for (;;) {
        rc = retry_attempt(st.retries, &x);
        if (x.calls == 3) pr_retry_progress(&st); /* progress at 600 ms: the window restarts */
        if (!pr_retry_next(&st, &rc, PR_FOREVER)) break;
    }
    PT_EQ_INT(st.stop, PR_RETRY_STALLED);
    PT_EQ_ERR(rc, PR_EIO);
    /* calls at 0, 300, 600 (progress), 900, 1200, 1500; a sleep to 1800 would pass 600 + 1000 */
    PT_EQ_INT(x.calls, 6);
    retry_vclock_off();
}

PT_TEST(retry_runner_cancel_in_sleep) {
    pr_retry_policy p;
    retry_rec x;
    retry_vclock_on();
    retry_policy_init(&p, &x);
    x.fail_until = 1000;
    x.cancel_in_sleep = 1;
    PT_EQ_ERR(pr_retry_run(&p, retry_attempt, &x, PR_FOREVER), PR_ECANCELED);
    PT_EQ_INT(x.calls, 1);
    retry_vclock_off();
}

/* The default sleep is pr_sleep: a task cancelled while it sleeps returns
   PR_ECANCELED at once. */
static int retry_sleeper_task(void *ud) {
    retry_rec *x = (retry_rec *)ud;
    pr_retry_policy p;
    memset(&p, 0, sizeof p);
    return pr_retry_run(&p, retry_attempt, x, PR_FOREVER);
}

PT_TEST(retry_runner_cancel_in_real_sleep) {
    retry_rec x;
    pr_task *t;
    int r = 0;
    memset(&x, 0, sizeof x);
    x.fail_until = 1000;
    x.fail_code = PR_EIO;
    PT_REQUIRE(pr_go(&t, retry_sleeper_task, &x, NULL) == PR_OK);
    PT_EQ_ERR(pr_sleep(pr_deadline_in(20)), PR_OK); /* it made its first call and sleeps 500 ms */
    PT_EQ_INT(x.calls, 1);
    pr_cancel(t);
    PT_EQ_ERR(pr_join(t, &r, pr_deadline_in(200)), PR_OK);
    PT_EQ_ERR(r, PR_ECANCELED);
    PT_EQ_INT(x.calls, 1);
}

/* ---- hints ---- */

static int retry_hint_cap(const char *ms, const char *ra, int64_t now, int64_t max_ms, int64_t *out) {
    pr_slice a, b;
    if (ms) a = pr_slice_cstr(ms);
    if (ra) b = pr_slice_cstr(ra);
    return pr_retry_hint_ms(ms ? &a : NULL, ra ? &b : NULL, now, max_ms, out);
}

static int retry_hint(const char *ms, const char *ra, int64_t now, int64_t *out) {
    return retry_hint_cap(ms, ra, now, 0, out);
}

PT_TEST(retry_hint_numbers) {
    int64_t h = -1;
    PT_EQ_INT(retry_hint(NULL, "2", 0, &h), 1);            /* R10 */
    PT_EQ_INT(h, 2000);
    PT_EQ_INT(retry_hint("1500", "30", 0, &h), 1);         /* R11: retry-after-ms wins */
    PT_EQ_INT(h, 1500);
    PT_EQ_INT(retry_hint("abc", "1", 0, &h), 1);           /* R12: unparseable ms: Retry-After */
    PT_EQ_INT(h, 1000);
    PT_EQ_INT(retry_hint(NULL, "1.5", 0, &h), 1);          /* R17: decimal seconds */
    PT_EQ_INT(h, 1500);
    PT_EQ_INT(retry_hint(NULL, " 60 ", 0, &h), 1);         /* the cap itself */
    PT_EQ_INT(h, 60000);
    PT_EQ_INT(retry_hint("0.4", NULL, 0, &h), 1);          /* sub-ms rounds up */
    PT_EQ_INT(h, 1);
    PT_EQ_INT(retry_hint(NULL, "120", 0, &h), 1);          /* R13: over 60 s: cut to 60 s */
    PT_EQ_INT(h, 60000);
    h = -1;
    PT_EQ_INT(retry_hint(NULL, "60.001", 0, &h), 1);
    PT_EQ_INT(h, 60000);
    h = -1;
    PT_EQ_INT(retry_hint("120000", "1", 0, &h), 1);        /* a parseable ms header decides */
    PT_EQ_INT(h, 60000);
    h = -1;
    PT_EQ_INT(retry_hint(NULL, "0", 0, &h), 0);            /* R14 */
    PT_EQ_INT(retry_hint(NULL, "-3", 0, &h), 0);
    PT_EQ_INT(retry_hint(NULL, "soon", 0, &h), 0);         /* R16 */
    PT_EQ_INT(retry_hint("-5", "1", 0, &h), 0);            /* a parseable ms header decides, even refused */
    {
        static const char *const garbage[] = { "", " ", "1s", "1e3", "nan", "inf", "NaN", "Infinity", "+", "-",
                                               ".", "1.2.3", "0x10", "1 2", "١" };
        size_t i;
        for (i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
            if (retry_hint(NULL, garbage[i], 0, &h) != 0) pt_fail(__FILE__, __LINE__, "\"%s\" gave a hint", garbage[i]);
    }
    PT_EQ_INT(retry_hint(NULL, NULL, 0, &h), 0);
    PT_EQ_INT(h, -1);
    PT_EQ_INT(retry_hint(NULL, "99999999999999999999999999999999", 0, &h), 1); /* huge: the cap */
    PT_EQ_INT(h, 60000);
}

/* The cap is the caller's: a hint above it is cut to it, <= 0 means 60 s;
   no number or date overflows on the way (SAN=1 checks), whatever the
   wall clock. */
PT_TEST(retry_hint_cap_and_extremes) {
    int64_t h = -1, v = 0;
    PT_EQ_INT(retry_hint_cap(NULL, "120", 0, 90000, &h), 1);
    PT_EQ_INT(h, 90000);
    PT_EQ_INT(retry_hint_cap(NULL, "30", 0, 90000, &h), 1);
    PT_EQ_INT(h, 30000);
    PT_EQ_INT(retry_hint_cap("120000", NULL, 0, 90000, &h), 1);
    PT_EQ_INT(h, 90000);
    PT_EQ_INT(retry_hint_cap(NULL, "120", 0, -5, &h), 1); /* <= 0: the default */
    PT_EQ_INT(h, 60000);
    PT_EQ_INT(retry_hint_cap(NULL, "0.5", 0, 1, &h), 1);
    PT_EQ_INT(h, 1);
    /* numbers at and past int64 */
    PT_EQ_INT(retry_hint_cap("9223372036854775807", NULL, 0, 0, &h), 1);
    PT_EQ_INT(h, 60000);
    PT_EQ_INT(retry_hint_cap("9223372036854775807", NULL, 0, INT64_MAX, &h), 1);
    PT_CHECK(h > 0);
    PT_EQ_INT(retry_hint_cap(NULL, "9223372036854775807", 0, INT64_MAX, &h), 1);
    PT_EQ_INT(h, INT64_MAX);
    PT_EQ_INT(retry_hint_cap(NULL, "9223372036854775", 0, INT64_MAX, &h), 1);
    PT_CHECK(h > 0);
    h = -1;
    PT_EQ_INT(retry_hint_cap(NULL, "1e400", 0, 0, &h), 0); /* not a decimal */
    PT_EQ_INT(retry_hint_cap("1e400", NULL, 0, 0, &h), 0);
    PT_EQ_INT(h, -1);
    /* the last date there is, against any wall clock */
    PT_EQ_INT(retry_hint_cap(NULL, "Fri, 31 Dec 9999 23:59:59 GMT", 0, 0, &h), 1);
    PT_EQ_INT(h, 60000);
    PT_EQ_INT(retry_hint_cap(NULL, "Fri, 31 Dec 9999 23:59:59 GMT", INT64_MIN, INT64_MAX, &h), 1);
    PT_EQ_INT(h, INT64_MAX);
    PT_EQ_INT(retry_hint_cap(NULL, "Fri, 31 Dec 9999 23:59:59 GMT", INT64_MAX, 0, &h), 0); /* in the past */
    PT_EQ_INT(retry_hint_cap(NULL, "Sun, 06 Nov 1994 08:49:37 GMT", INT64_MIN, 0, &h), 1);
    PT_EQ_INT(h, 60000);
    /* RFC 850 near the end of the int64 clock: the year would pass 9999 (and the ms INT64_MAX) */
    PT_EQ_ERR(pr_retry_parse_http_date(pr_slice_cstr("Wednesday, 06-Nov-44 08:49:37 GMT"), INT64_MAX, &v), PR_EINVAL);
    PT_EQ_ERR(pr_retry_parse_http_date(pr_slice_cstr("Thursday, 06-Nov-94 08:49:37 GMT"), INT64_MAX, &v), PR_EINVAL);
    PT_EQ_INT(retry_hint_cap(NULL, "Wednesday, 06-Nov-44 08:49:37 GMT", INT64_MAX, 0, &h), 0);
    PT_EQ_ERR(pr_retry_parse_http_date(pr_slice_cstr("Sunday, 06-Nov-94 08:49:37 GMT"), INT64_MIN, &v), PR_EINVAL);
}

PT_TEST(retry_hint_http_dates) {
    /* 1994-11-06 08:49:37 UTC */
    const int64_t t = 784111777000LL;
    int64_t v = 0, h = 0;
    pr_slice s;
    s = pr_slice_cstr("Sun, 06 Nov 1994 08:49:37 GMT");
    PT_EQ_ERR(pr_retry_parse_http_date(s, t, &v), PR_OK);
    PT_EQ_INT(v, t);
    s = pr_slice_cstr("Sunday, 06-Nov-94 08:49:37 GMT");
    PT_EQ_ERR(pr_retry_parse_http_date(s, t, &v), PR_OK);
    PT_EQ_INT(v, t);
    s = pr_slice_cstr("Sun Nov  6 08:49:37 1994");
    PT_EQ_ERR(pr_retry_parse_http_date(s, t, &v), PR_OK);
    PT_EQ_INT(v, t);
    s = pr_slice_cstr("Thu, 01 Jan 1970 00:00:00 GMT");
    PT_EQ_ERR(pr_retry_parse_http_date(s, t, &v), PR_OK);
    PT_EQ_INT(v, 0);
    s = pr_slice_cstr("Tue, 29 Feb 2000 23:59:59 GMT"); /* a leap day of a year % 400 */
    PT_EQ_ERR(pr_retry_parse_http_date(s, t, &v), PR_OK);
    PT_EQ_INT(v, 951868799000LL);
    s = pr_slice_cstr("Sun Nov  6 08:49:37 1194"); /* before 1970 (a fuzzer's input): negative, exact */
    PT_EQ_ERR(pr_retry_parse_http_date(s, t, &v), PR_OK);
    PT_EQ_INT(v, -24461449823000LL);
    PT_EQ_INT(retry_hint(NULL, "Sun Nov  6 08:49:37 1194", t, &h), 0); /* in the past: no hint */
    s = pr_slice_cstr("Wed Dec 31 23:59:60 2008"); /* a leap second: taken as the next second */
    PT_EQ_ERR(pr_retry_parse_http_date(s, t, &v), PR_OK);
    PT_EQ_INT(v, 1230768000000LL);
    {
        static const char *const bad[] = {
            "Mon, 06 Nov 1994 08:49:37 GMT",   /* wrong weekday */
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "sun, 06 nov 1994 08:49:37 GMT",   /* case matters in HTTP-dates */
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Mon, 29 Feb 1993 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:49:37 GMT",
            "Sun, 06 Nov 1994 08:60:37 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 06 Nov 1994 08-49-37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT x",
            "Sun,  06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sundae, 06-Nov-94 08:49:37 GMT",
            "Monday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov 06 08:49:37 94",
            "Sun Nov 6 08:49:37 1994",
            "Mon Nov  6 08:49:37 1994",
            "", "GMT", "yesterday",
        };
        size_t i;
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
            if (pr_retry_parse_http_date(pr_slice_cstr(bad[i]), t, &v) != PR_EINVAL)
                pt_fail(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
    }
    /* R15: a date 3 s ahead in each format is a 3 s hint; a past one is none */
    PT_EQ_INT(retry_hint(NULL, "Sun, 06 Nov 1994 08:49:40 GMT", t, &h), 1);
    PT_EQ_INT(h, 3000);
    PT_EQ_INT(retry_hint(NULL, "Sunday, 06-Nov-94 08:49:40 GMT", t + 500, &h), 1);
    PT_EQ_INT(h, 2500);
    PT_EQ_INT(retry_hint(NULL, "Sun Nov  6 08:49:40 1994", t, &h), 1);
    PT_EQ_INT(h, 3000);
    PT_EQ_INT(retry_hint(NULL, "Sun, 06 Nov 1994 08:49:30 GMT", t, &h), 0);
    PT_EQ_INT(retry_hint(NULL, "Sun, 06 Nov 1994 08:51:37 GMT", t, &h), 1); /* 120 s: cut to the cap */
    PT_EQ_INT(h, 60000);
}

PT_TEST(retry_http_date_two_digit_years) {
    /* RFC 9110: a two-digit year more than 50 years ahead is the century before */
    const int64_t y2026 = 1767225600000LL; /* 2026-01-01 00:00:00 UTC */
    const int64_t y2090 = 3786912000000LL; /* 2090-01-01 */
    int64_t v;
    PT_EQ_ERR(pr_retry_parse_http_date(pr_slice_cstr("Wednesday, 01-Jan-70 00:00:00 GMT"), y2026, &v), PR_OK);
    PT_EQ_INT(v, 3155760000000LL); /* 2070: 44 years ahead stays in this century */
    PT_EQ_ERR(pr_retry_parse_http_date(pr_slice_cstr("Thursday, 01-Jan-70 00:00:00 GMT"), y2026, &v), PR_EINVAL);
    PT_EQ_ERR(pr_retry_parse_http_date(pr_slice_cstr("Tuesday, 01-Jan-75 00:00:00 GMT"), y2026, &v), PR_OK);
    PT_EQ_INT(v, 3313526400000LL); /* 2075: 49 years ahead */
    PT_EQ_ERR(pr_retry_parse_http_date(pr_slice_cstr("Saturday, 01-Jan-77 00:00:00 GMT"), y2026, &v), PR_OK);
    PT_EQ_INT(v, 220924800000LL); /* 2077 would be 51 years ahead: 1977 */
    PT_EQ_ERR(pr_retry_parse_http_date(pr_slice_cstr("Saturday, 01-Jan-00 00:00:00 GMT"), y2026, &v), PR_OK);
    PT_EQ_INT(v, 946684800000LL); /* 2000 */
    PT_EQ_ERR(pr_retry_parse_http_date(pr_slice_cstr("Wednesday, 01-Jan-10 00:00:00 GMT"), y2090, &v), PR_OK);
    PT_EQ_INT(v, 4417977600000LL); /* seen from 2090, "10" is 2110 (20 years ahead), not 2010 */
}

PT_TEST(retry_should_retry_rules) {
    pr_slice t = pr_slice_cstr(" TRUE "), f = pr_slice_cstr("false"), m = pr_slice_cstr("maybe");
    static const int yes[] = { 408, 409, 429, 500, 502, 503, 504, 599 };
    static const int no[] = { 200, 204, 301, 304, 400, 401, 403, 404, 410, 422, 600, 100 };
    size_t i;
    for (i = 0; i < sizeof yes / sizeof yes[0]; i++) PT_EQ_INT(pr_retry_status_retryable(yes[i]), 1);
    for (i = 0; i < sizeof no / sizeof no[0]; i++) PT_EQ_INT(pr_retry_status_retryable(no[i]), 0);
    PT_EQ_INT(pr_retry_x_should_retry(&t), 1); /* R9: trimmed, any case */
    PT_EQ_INT(pr_retry_x_should_retry(&f), 0);
    PT_EQ_INT(pr_retry_x_should_retry(&m), -1);
    PT_EQ_INT(pr_retry_x_should_retry(NULL), -1);
    PT_EQ_INT(pr_retry_http_should_retry(503, &f), 0); /* R7 */
    PT_EQ_INT(pr_retry_http_should_retry(400, &t), 1); /* R8 */
    PT_EQ_INT(pr_retry_http_should_retry(401, &t), 1);
    PT_EQ_INT(pr_retry_http_should_retry(503, &m), 1); /* R9: the status table */
    PT_EQ_INT(pr_retry_http_should_retry(400, &m), 0);
    PT_EQ_INT(pr_retry_http_should_retry(200, &t), 0); /* never a 2xx */
    PT_EQ_INT(pr_retry_http_should_retry(404, NULL), 0);
    PT_EQ_INT(pr_retry_http_should_retry(429, NULL), 1);
}

/* ---- circuit breaker ---- */

typedef struct retry_changes {
    int n;
    int from[16], to[16];
} retry_changes;

static void retry_on_change(const char *name, int from, int to, void *ud) {
    retry_changes *c = (retry_changes *)ud;
    PT_EQ_STR(name, "api");
    if (c->n < 16) {
        c->from[c->n] = from;
        c->to[c->n] = to;
    }
    c->n++;
}

PT_TEST(retry_breaker_transitions) {
    pr_breaker *b;
    pr_breaker_opts o;
    retry_changes ch;
    int i;
    int64_t t0 = retry_vclock_on();
    memset(&o, 0, sizeof o);
    memset(&ch, 0, sizeof ch);
    o.reset_timeout_ms = 100;
    o.observer.on_change = retry_on_change;
    o.observer.user_data = &ch;
    PT_REQUIRE(pr_breaker_create(&b, "api", &o) == PR_OK);
    /* C2: 4 failures, a success, 4 failures: still closed */
    for (i = 0; i < 4; i++) {
        PT_EQ_ERR(pr_breaker_admit(b), PR_OK);
        pr_breaker_record(b, PR_BREAKER_FAILURE);
    }
    PT_EQ_INT(pr_breaker_failures(b), 4);
    PT_EQ_ERR(pr_breaker_admit(b), PR_OK);
    pr_breaker_record(b, PR_BREAKER_SUCCESS);
    PT_EQ_INT(pr_breaker_failures(b), 0);
    for (i = 0; i < 4; i++) {
        PT_EQ_ERR(pr_breaker_admit(b), PR_OK);
        pr_breaker_record(b, PR_BREAKER_FAILURE);
    }
    PT_EQ_INT(pr_breaker_state(b), PR_BREAKER_CLOSED);
    /* C1: the 5th consecutive failure opens it; the next call is refused */
    PT_EQ_ERR(pr_breaker_admit(b), PR_OK);
    pr_breaker_record(b, PR_BREAKER_FAILURE);
    PT_EQ_INT(pr_breaker_state(b), PR_BREAKER_OPEN);
    PT_EQ_ERR(pr_breaker_admit(b), PR_ECIRCUIT);
    pr_breaker_record(b, PR_BREAKER_FAILURE); /* a late failure while open changes nothing */
    PT_EQ_INT(ch.n, 1);
    /* C3: after the reset timeout it reads half-open; one probe, a second refused */
    pr__time_test_clock_advance(99);
    PT_EQ_INT(pr_breaker_state(b), PR_BREAKER_OPEN);
    pr__time_test_clock_advance(1);
    PT_EQ_INT(pr_breaker_state(b), PR_BREAKER_HALF_OPEN);
    PT_EQ_ERR(pr_breaker_admit(b), PR_OK);
    PT_EQ_ERR(pr_breaker_admit(b), PR_ECIRCUIT);
    /* C6: a probe classified ignore frees the slot: still half-open */
    pr_breaker_record(b, PR_BREAKER_IGNORE);
    PT_EQ_INT(pr_breaker_state(b), PR_BREAKER_HALF_OPEN);
    PT_EQ_ERR(pr_breaker_admit(b), PR_OK);
    /* C5: the probe fails: open again, another 100 ms before the next probe */
    pr__time_test_clock_advance(30);
    pr_breaker_record(b, PR_BREAKER_FAILURE);
    PT_EQ_INT(pr_breaker_state(b), PR_BREAKER_OPEN);
    pr__time_test_clock_advance(99);
    PT_EQ_ERR(pr_breaker_admit(b), PR_ECIRCUIT);
    pr__time_test_clock_advance(1);
    PT_EQ_ERR(pr_breaker_admit(b), PR_OK);
    /* C4: the probe succeeds: closed with a zero count */
    pr_breaker_record(b, PR_BREAKER_SUCCESS);
    PT_EQ_INT(pr_breaker_state(b), PR_BREAKER_CLOSED);
    PT_EQ_INT(pr_breaker_failures(b), 0);
    /* closed -> open -> half-open -> open -> half-open -> closed */
    PT_EQ_INT(ch.n, 5);
    PT_EQ_INT(ch.to[0], PR_BREAKER_OPEN);
    PT_EQ_INT(ch.to[1], PR_BREAKER_HALF_OPEN);
    PT_EQ_INT(ch.from[2], PR_BREAKER_HALF_OPEN);
    PT_EQ_INT(ch.to[2], PR_BREAKER_OPEN);
    PT_EQ_INT(ch.to[3], PR_BREAKER_HALF_OPEN);
    PT_EQ_INT(ch.to[4], PR_BREAKER_CLOSED);
    /* reset, bad arguments */
    for (i = 0; i < 5; i++) pr_breaker_record(b, 99); /* unknown outcomes are failures */
    PT_EQ_INT(pr_breaker_state(b), PR_BREAKER_OPEN);
    pr_breaker_reset(b);
    PT_EQ_INT(pr_breaker_state(b), PR_BREAKER_CLOSED);
    PT_EQ_ERR(pr_breaker_admit(NULL), PR_EINVAL);
    PT_EQ_INT(pr_breaker_state(NULL), PR_EINVAL);
    o.failure_threshold = -1;
    {
        pr_breaker *bad = b;
        PT_EQ_ERR(pr_breaker_create(&bad, "x", &o), PR_EINVAL);
        PT_CHECK(bad == NULL);
    }
    pr_breaker_destroy(NULL);
    pr_breaker_destroy(b);
    PT_CHECK(pr_now() - t0 == 230);
    retry_vclock_off();
}

typedef struct retry_caller {
    pr_breaker_registry *reg;
    int calls, refused;
} retry_caller;

static int retry_failing_caller(void *ud) {
    retry_caller *c = (retry_caller *)ud;
    pr_breaker *b;
    if (pr_breaker_registry_get(c->reg, "upstream-a", NULL, &b) != PR_OK) return -1;
    if (pr_breaker_admit(b) != PR_OK) {
        c->refused++;
        return 0;
    }
    c->calls++;
    pr_sleep(pr_deadline_in(1 + (int)(pt_rand() % 5))); /* the call is in flight */
    pr_breaker_record(b, PR_BREAKER_FAILURE);
    return 0;
}

static void retry_count_opens(const char *name, int from, int to, void *ud) {
    (void)name;
    (void)from;
    if (to == PR_BREAKER_OPEN) ++*(int *)ud;
}

PT_TEST(retry_breaker_registry_many_tasks) {
    pr_breaker_registry *reg;
    pr_breaker *a, *a2, *other;
    pr_breaker_opts o;
    retry_caller c;
    pr_group *g;
    int opens = 0, i;
    retry_vclock_on();
    memset(&o, 0, sizeof o);
    o.observer.on_change = retry_count_opens;
    o.observer.user_data = &opens;
    PT_REQUIRE(pr_breaker_registry_create(&reg) == PR_OK);
    PT_REQUIRE(pr_breaker_registry_get(reg, "upstream-a", &o, &a) == PR_OK);
    PT_REQUIRE(pr_breaker_registry_get(reg, "upstream-a", NULL, &a2) == PR_OK);
    PT_CHECK(a == a2);
    PT_REQUIRE(pr_breaker_registry_get(reg, "upstream-b", NULL, &other) == PR_OK);
    PT_CHECK(other != a);
    PT_EQ_INT(pr_breaker_registry_state(reg, "never-used"), PR_BREAKER_CLOSED);
    /* C7: 50 concurrent failing callers, threshold 5: opens exactly once */
    memset(&c, 0, sizeof c);
    c.reg = reg;
    PT_REQUIRE(pr_group_create(&g) == PR_OK);
    for (i = 0; i < 50; i++) PT_REQUIRE(pr_group_go(g, retry_failing_caller, &c, NULL) == PR_OK);
    PT_EQ_ERR(pr_group_wait(g, PR_FOREVER), PR_OK);
    PT_EQ_ERR(pr_group_close(g, PR_FOREVER), PR_OK);
    PT_EQ_INT(c.calls + c.refused, 50);
    PT_EQ_INT(c.calls, 50); /* all admitted before the first failure came back */
    PT_EQ_INT(opens, 1);
    PT_EQ_INT(pr_breaker_registry_state(reg, "upstream-a"), PR_BREAKER_OPEN);
    PT_EQ_INT(pr_breaker_registry_state(reg, "upstream-b"), PR_BREAKER_CLOSED);
    /* once open, new callers are refused without a call */
    memset(&c, 0, sizeof c);
    c.reg = reg;
    PT_EQ_INT(retry_failing_caller(&c), 0);
    PT_EQ_INT(c.refused, 1);
    PT_EQ_INT(c.calls, 0);
    PT_EQ_ERR(pr_breaker_registry_get(reg, NULL, NULL, &a), PR_EINVAL);
    pr_breaker_registry_destroy(reg);
    pr_breaker_registry_destroy(NULL);
    retry_vclock_off();
}

/* ---- backoff window ---- */

typedef struct retry_wwait {
    pr_backoff_window *w;
    const char *key;
    int rc;
    int64_t at;
} retry_wwait;

static int retry_window_waiter(void *ud) {
    retry_wwait *x = (retry_wwait *)ud;
    x->rc = pr_backoff_window_wait(x->w, x->key, PR_FOREVER);
    x->at = pr_now();
    return 0;
}

static int retry_window_extender(void *ud) {
    retry_wwait *x = (retry_wwait *)ud;
    pr_sleep(pr_deadline_in(500));
    pr_backoff_window_set(x->w, x->key, 1000); /* at 500: until 1500 */
    return 0;
}

static int retry_window_clearer(void *ud) {
    retry_wwait *x = (retry_wwait *)ud;
    pr_sleep(pr_deadline_in(200));
    pr_backoff_window_clear(x->w, x->key);
    return 0;
}

PT_TEST(retry_window_set_and_expire) {
    pr_backoff_window *w;
    int64_t t0 = retry_vclock_on();
    PT_REQUIRE(pr_backoff_window_create(&w) == PR_OK);
    PT_EQ_INT(pr_backoff_window_remaining(w, "k"), 0);
    PT_EQ_INT(pr_backoff_window_until(w, "k"), 0);
    /* W1 */
    PT_EQ_ERR(pr_backoff_window_set(w, "k", 1000), PR_OK);
    pr__time_test_clock_advance(999);
    PT_EQ_INT(pr_backoff_window_remaining(w, "k"), 1);
    pr__time_test_clock_advance(1);
    PT_EQ_INT(pr_backoff_window_remaining(w, "k"), 0);
    PT_EQ_INT(pr_backoff_window_until(w, "k"), t0 + 1000); /* "recently backed off" stays visible */
    /* W2: a shorter window never shortens an active one */
    PT_EQ_ERR(pr_backoff_window_set(w, "k", 5000), PR_OK);
    PT_EQ_ERR(pr_backoff_window_set(w, "k", 1000), PR_OK);
    PT_EQ_INT(pr_backoff_window_until(w, "k"), t0 + 1000 + 5000);
    /* W5: keys are independent; NULL is the key "" */
    PT_EQ_INT(pr_backoff_window_remaining(w, "k2"), 0);
    PT_EQ_ERR(pr_backoff_window_set(w, NULL, 300), PR_OK);
    PT_EQ_INT(pr_backoff_window_remaining(w, ""), 300);
    PT_EQ_INT(pr_backoff_window_remaining(w, "k"), 5000);
    pr_backoff_window_clear(w, "k");
    PT_EQ_INT(pr_backoff_window_remaining(w, "k"), 0);
    PT_EQ_INT(pr_backoff_window_remaining(w, NULL), 300);
    PT_EQ_ERR(pr_backoff_window_set(w, "k", -1), PR_EINVAL);
    PT_EQ_ERR(pr_backoff_window_wait(w, "k", 0), PR_OK); /* no window: no wait, even with a past deadline */
    PT_EQ_ERR(pr_backoff_window_wait(w, NULL, 0), PR_ETIMEDOUT);
    PT_EQ_ERR(pr_backoff_window_wait(w, NULL, pr_deadline_in(100)), PR_ETIMEDOUT);
    PT_EQ_ERR(pr_backoff_window_wait(w, NULL, PR_FOREVER), PR_OK);
    PT_EQ_INT(pr_now() - t0, 1000 + 300);
    pr_backoff_window_destroy(w);
    retry_vclock_off();
}

/* A window of INT64_MAX ms ends at PR_FOREVER and stays: the clean-up of
   old windows (when another key is set) must not wrap its end into the
   past; its remaining time saturates, even on a clock before 0. */
PT_TEST(retry_window_forever) {
    pr_backoff_window *w;
    int64_t t0 = retry_vclock_on();
    PT_REQUIRE(pr_backoff_window_create(&w) == PR_OK);
    PT_EQ_ERR(pr_backoff_window_set(w, "a", INT64_MAX), PR_OK);
    PT_EQ_INT(pr_backoff_window_until(w, "a"), PR_FOREVER);
    PT_EQ_ERR(pr_backoff_window_set(w, "b", 10), PR_OK);
    PT_EQ_INT(pr_backoff_window_until(w, "a"), PR_FOREVER);
    PT_EQ_INT(pr_backoff_window_remaining(w, "a"), PR_FOREVER - t0);
    pr__time_test_clock_virtual(1, -1000);
    PT_EQ_INT(pr_backoff_window_remaining(w, "a"), PR_FOREVER);
    PT_EQ_INT(pr_backoff_window_remaining(w, "b"), t0 + 10 + 1000);
    PT_EQ_ERR(pr_backoff_window_wait(w, "a", pr_deadline_in(5)), PR_ETIMEDOUT);
    pr_backoff_window_destroy(w);
    retry_vclock_off();
}

PT_TEST(retry_window_wait_extended_and_cleared) {
    pr_backoff_window *w;
    retry_wwait x[2], y;
    pr_task *t[3];
    int64_t t0 = retry_vclock_on();
    PT_REQUIRE(pr_backoff_window_create(&w) == PR_OK);
    /* W3: a waiter for a 1000 ms window that is extended to 1500 at 500 */
    PT_EQ_ERR(pr_backoff_window_set(w, "k", 1000), PR_OK);
    memset(x, 0, sizeof x);
    x[0].w = x[1].w = w;
    x[0].key = x[1].key = "k";
    PT_REQUIRE(pr_go(&t[0], retry_window_waiter, &x[0], NULL) == PR_OK);
    PT_REQUIRE(pr_go(&t[1], retry_window_extender, &x[1], NULL) == PR_OK);
    PT_EQ_ERR(pr_join(t[0], NULL, PR_FOREVER), PR_OK);
    PT_EQ_ERR(pr_join(t[1], NULL, PR_FOREVER), PR_OK);
    PT_EQ_ERR(x[0].rc, PR_OK);
    PT_EQ_INT(x[0].at - t0, 1500);
    /* W4: clear during a wait wakes it at once */
    t0 = pr_now();
    PT_EQ_ERR(pr_backoff_window_set(w, "k", 10000), PR_OK);
    memset(&y, 0, sizeof y);
    y.w = w;
    y.key = "k";
    PT_REQUIRE(pr_go(&t[0], retry_window_waiter, &x[0], NULL) == PR_OK);
    PT_REQUIRE(pr_go(&t[2], retry_window_clearer, &y, NULL) == PR_OK);
    PT_EQ_ERR(pr_join(t[0], NULL, PR_FOREVER), PR_OK);
    PT_EQ_ERR(pr_join(t[2], NULL, PR_FOREVER), PR_OK);
    PT_EQ_ERR(x[0].rc, PR_OK);
    PT_EQ_INT(x[0].at - t0, 200);
    PT_EQ_INT(pr_backoff_window_remaining(w, "k"), 0);
    /* destroyed while a task waits: PR_ECLOSED */
    PT_EQ_ERR(pr_backoff_window_set(w, "k", 10000), PR_OK);
    PT_REQUIRE(pr_go(&t[0], retry_window_waiter, &x[0], NULL) == PR_OK);
    PT_EQ_ERR(pr_yield(), PR_OK);
    pr_backoff_window_destroy(w);
    PT_EQ_ERR(pr_join(t[0], NULL, PR_FOREVER), PR_OK);
    PT_EQ_ERR(x[0].rc, PR_ECLOSED);
    retry_vclock_off();
}

PT_TEST(retry_window_shared_by_100_tasks) {
    pr_backoff_window *w;
    retry_wwait x[100];
    pr_task *t[100];
    int i;
    int64_t t0 = retry_vclock_on();
    PT_REQUIRE(pr_backoff_window_create(&w) == PR_OK);
    PT_EQ_ERR(pr_backoff_window_set(w, "upstream", 1000), PR_OK);
    for (i = 0; i < 100; i++) {
        x[i].w = w;
        x[i].key = "upstream";
        x[i].rc = -100;
        PT_REQUIRE(pr_go(&t[i], retry_window_waiter, &x[i], NULL) == PR_OK);
    }
    for (i = 0; i < 100; i++) {
        PT_EQ_ERR(pr_join(t[i], NULL, PR_FOREVER), PR_OK);
        PT_EQ_ERR(x[i].rc, PR_OK);
        PT_EQ_INT(x[i].at - t0, 1000);
    }
    pr_backoff_window_destroy(w);
    retry_vclock_off();
}

const pt_suite pt_suite_retry = { "retry", {
    PT_ENTRY(retry_backoff_strategies),
    PT_ENTRY(retry_backoff_jitter_kinds),
    PT_ENTRY(retry_backoff_saturates),
    PT_ENTRY(retry_backoff_invalid_rejected),
    PT_ENTRY(retry_backoff_decorrelated),
    PT_ENTRY(retry_backoff_properties),
    PT_ENTRY(retry_backoff_presets),
    PT_ENTRY(retry_random_bounds),
    PT_ENTRY(retry_runner_counts_and_sleeps),
    PT_ENTRY(retry_runner_max_elapsed),
    PT_ENTRY(retry_runner_saturates_on_any_clock),
    PT_ENTRY(retry_runner_hint_overrides_backoff),
    PT_ENTRY(retry_runner_never_sleeps_past_deadline),
    PT_ENTRY(retry_runner_progress_timeout),
    PT_ENTRY(retry_runner_cancel_in_sleep),
    PT_ENTRY(retry_runner_cancel_in_real_sleep),
    PT_ENTRY(retry_hint_numbers),
    PT_ENTRY(retry_hint_cap_and_extremes),
    PT_ENTRY(retry_hint_http_dates),
    PT_ENTRY(retry_http_date_two_digit_years),
    PT_ENTRY(retry_should_retry_rules),
    PT_ENTRY(retry_breaker_transitions),
    PT_ENTRY(retry_breaker_registry_many_tasks),
    PT_ENTRY(retry_window_set_and_expire),
    PT_ENTRY(retry_window_forever),
    PT_ENTRY(retry_window_wait_extended_and_cleared),
    PT_ENTRY(retry_window_shared_by_100_tasks),
    {0, 0} } };
