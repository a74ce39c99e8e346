/* session: the submit throttle (its layers under the virtual clock, a
   real 429 against tools/testserver.c on 127.0.0.1 shared by two
   submitters) and the session heartbeat (beats, failures, warnings, stop). */

typedef struct ss_fx {
    ts_server *s;
    pr_http_client *c;
    char base[64];
} ss_fx;

/* ---- the submit throttle (D4, W6) ---- */

PT_TEST(session_throttle_layers) {
    pr_throttle *t;
    pr_throttle_opts o;
    pr_throttle_ticket tk[12];
    int i;
    int64_t t0 = pr_now();
    pr__time_test_clock_virtual(1, t0);
    memset(&o, 0, sizeof o);
    o.max_bytes = 1000;
    PT_REQUIRE(pr_throttle_create(&t, &o) == PR_OK);
    /* before any 429: only the concurrency slot and 1x bytes */
    PT_EQ_INT(pr_throttle_backed_off(t), 0);
    PT_EQ_ERR(pr_throttle_acquire(t, 100, &tk[0], 0), PR_OK);
    PT_EQ_INT(tk[0].weight, 100);
    PT_EQ_INT(tk[0].backoff_slot, 0);
    pr_throttle_release(t, &tk[0]);
    /* W6: a 429 on a small request opens a 1 s window; the resubmission waits for it */
    PT_EQ_ERR(pr_throttle_backoff(t, 1000), PR_OK);
    PT_EQ_INT(pr_backoff_window_remaining(t->o.window, t->key), 1000);
    PT_EQ_ERR(pr_throttle_acquire(t, 10, &tk[0], PR_FOREVER), PR_OK);
    PT_EQ_INT(pr_now() - t0, 1000);
    /* D4: recently backed off: the 10-permit semaphore and 20x weight */
    PT_EQ_INT(tk[0].backoff_slot, 1);
    PT_EQ_INT(tk[0].weight, 200);
    for (i = 1; i < 10; i++) PT_EQ_ERR(pr_throttle_acquire(t, 0, &tk[i], 0), PR_OK);
    PT_EQ_ERR(pr_throttle_acquire(t, 0, &tk[10], 0), PR_ETIMEDOUT); /* the 11th waits */
    for (i = 0; i < 10; i++) pr_throttle_release(t, &tk[i]);
    PT_EQ_INT(pr_wsem_budget(t->bytes), 1000);
    /* a large request opens 5 s */
    PT_EQ_ERR(pr_throttle_backoff(t, 200 * 1024), PR_OK);
    PT_EQ_INT(pr_backoff_window_remaining(t->o.window, t->key), 5000);
    pr__time_test_clock_advance(5000 + 10000);
    PT_EQ_INT(pr_throttle_backed_off(t), 0); /* 10 s after the window: back to normal */
    PT_EQ_ERR(pr_throttle_acquire(t, 100, &tk[0], 0), PR_OK);
    PT_EQ_INT(tk[0].weight, 100);
    PT_EQ_INT(tk[0].backoff_slot, 0);
    pr_throttle_release(t, &tk[0]);
    pr_throttle_destroy(t);
    pr__time_test_clock_virtual(0, 0);
}

/* While recently backed off, a huge estimate's weight saturates instead of
   overflowing (UBSan under SAN=1): it runs alone and gives back all it took. */
PT_TEST(session_throttle_weight_saturates) {
    pr_throttle *t;
    pr_throttle_opts o;
    pr_throttle_ticket tk;
    pr__time_test_clock_virtual(1, pr_now());
    memset(&o, 0, sizeof o);
    o.max_bytes = 1000;
    PT_REQUIRE(pr_throttle_create(&t, &o) == PR_OK);
    PT_EQ_ERR(pr_throttle_backoff(t, 0), PR_OK);
    PT_EQ_ERR(pr_throttle_acquire(t, INT64_MAX / 4, &tk, PR_FOREVER), PR_OK); /* after the window */
    PT_EQ_INT(tk.backoff_slot, 1);
    PT_CHECK(tk.weight == INT64_MAX);
    pr_throttle_release(t, &tk);
    PT_CHECK(pr_wsem_budget(t->bytes) == 1000);
    pr_throttle_destroy(t);
    pr__time_test_clock_virtual(0, 0);
}

/* A 429 on a real submit route: the window is set, the resubmission comes
   later, a concurrent submitter waits too. */
typedef struct ss_sub {
    pr_throttle *t;
    pr_http_client *c;
    const char *url;
    int ok, tries;
    int64_t sent_at[8];
} ss_sub;

static int ss_submitter(void *arg) {
    ss_sub *x = (ss_sub *)arg;
    for (;;) {
        pr_throttle_ticket tk;
        pr_http_response *r = NULL;
        int st;
        if (pr_throttle_acquire(x->t, 64, &tk, pr_deadline_in(10000)) != PR_OK) return -1;
        if (x->tries < 8) x->sent_at[x->tries] = pr_now();
        x->tries++;
        if (pr_http_client_send(x->c, &r, "POST", x->url, NULL, "{\"seq\":7}", 9, NULL, pr_deadline_in(5000)) != PR_OK) {
            pr_throttle_release(x->t, &tk);
            return -1;
        }
        st = pr_http_status(r);
        pr_http_response_destroy(r);
        pr_throttle_release(x->t, &tk);
        if (st == 429) {
            pr_throttle_backoff(x->t, 64);
            continue; /* the same sequence id again */
        }
        x->ok = st == 200;
        return 0;
    }
}

PT_TEST(session_throttle_shared_window_real_429) {
    ss_fx f;
    pr_throttle *t;
    pr_throttle_opts o;
    ss_sub a, b;
    pr_task *ta, *tb;
    pr_http_client_opts co;
    ts_step st[2];
    char url[96];
    memset(&f, 0, sizeof f);
    PT_REQUIRE(ts_start(&f.s, NULL) == PR_OK);
    memset(&co, 0, sizeof co);
    co.ignore_env = 1;
    co.retry.max_retries = PR_RETRY_OFF;
    PT_REQUIRE(pr_http_client_create(&f.c, &co, NULL) == PR_OK);
    memset(&o, 0, sizeof o);
    o.small_window_ms = 200; /* scaled down from 1 s so the test stays short */
    PT_REQUIRE(pr_throttle_create(&t, &o) == PR_OK);
    st[0] = hr_step(429, NULL, "slow down");
    st[1] = hr_step(200, NULL, "{}");
    st[1].count = 3;
    PT_EQ_ERR(ts_script(f.s, "/api/v1/asample", st, 2), PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/api/v1/asample", (unsigned)ts_port(f.s));
    memset(&a, 0, sizeof a);
    a.t = t;
    a.c = f.c;
    a.url = url;
    b = a;
    PT_REQUIRE(pr_go(&ta, ss_submitter, &a, NULL) == PR_OK);
    { /* wait until a got its 429 and the window is open (bounded: a slow machine or qemu takes longer than a fixed sleep) */
        int i;
        for (i = 0; i < 2000 && pr_backoff_window_remaining(t->o.window, t->key) == 0; i++)
            PT_EQ_ERR(pr_sleep(pr_deadline_in(1)), PR_OK);
    }
    PT_CHECK(pr_backoff_window_remaining(t->o.window, t->key) > 0);
    PT_REQUIRE(pr_go(&tb, ss_submitter, &b, NULL) == PR_OK);
    PT_EQ_ERR(pr_join(ta, NULL, PR_FOREVER), PR_OK);
    PT_EQ_ERR(pr_join(tb, NULL, PR_FOREVER), PR_OK);
    PT_EQ_INT(a.ok, 1);
    PT_EQ_INT(b.ok, 1);
    PT_EQ_INT(a.tries, 2);
    PT_CHECK(a.sent_at[1] - a.sent_at[0] >= 200); /* the resubmission came after the window */
    PT_CHECK(b.sent_at[0] - a.sent_at[0] >= 200); /* and so did the other submitter */
    PT_EQ_STR(ts_log_get(f.s, 1)->body, "{\"seq\":7}");
    pr_throttle_destroy(t);
    pr_http_client_destroy(f.c);
    ts_stop(f.s);
}

/* ---- the session heartbeat (D5-D7) ---- */

typedef struct ss_warns {
    int n;
    int64_t since[32];
} ss_warns;

static void ss_on_warning(const char *msg, int64_t since_ms, void *ud) {
    ss_warns *w = (ss_warns *)ud;
    PT_CHECK(strncmp(msg, "session heartbeat failed for ", 29) == 0);
    if (w->n < 32) w->since[w->n] = since_ms;
    w->n++;
}

PT_TEST(session_heartbeat) {
    ss_fx f;
    pr_heartbeat *h;
    pr_heartbeat_opts o;
    pr_http_client_opts co;
    ss_warns w;
    ts_step fail = hr_step(500, NULL, "down");
    size_t i, n;
    long sent = 0, failed = 0;
    int64_t t0;
    memset(&f, 0, sizeof f);
    memset(&w, 0, sizeof w);
    PT_REQUIRE(ts_start(&f.s, NULL) == PR_OK);
    snprintf(f.base, sizeof f.base, "http://127.0.0.1:%u", (unsigned)ts_port(f.s));
    memset(&co, 0, sizeof co);
    co.ignore_env = 1;
    PT_REQUIRE(pr_http_client_create(&f.c, &co, NULL) == PR_OK);
    /* D6: the route fails for the first 6 beats; a warning at each tick once 250 ms passed without success */
    fail.count = 6;
    PT_EQ_ERR(ts_script(f.s, "/api/v1/session_heartbeat", &fail, 1), PR_OK);
    memset(&o, 0, sizeof o);
    o.interval_ms = 100;
    o.warn_after_ms = 250;
    o.on_warning = ss_on_warning;
    o.user_data = &w;
    t0 = pr_now();
    PT_EQ_ERR(pr_heartbeat_start(&h, f.c, f.base, "s1", &o, NULL), PR_OK);
    while (ts_log_count(f.s) < 9 && pr_now() - t0 < 10000) PT_REQUIRE(pr_sleep(pr_deadline_in(10)) == PR_OK);
    /* D7: stop, and no beat comes after it */
    pr_heartbeat_counts(h, &sent, &failed);
    pr_heartbeat_stop(h);
    n = ts_log_count(f.s);
    PT_EQ_ERR(pr_sleep(pr_deadline_in(300)), PR_OK);
    PT_EQ_INT(ts_log_count(f.s), n);
    /* D5: the body, no retries (one request per beat), the first one interval after the start */
    PT_CHECK(n >= 9);
    for (i = 0; i < n; i++) {
        PT_EQ_STR(ts_log_get(f.s, i)->body, "{\"session_id\":\"s1\",\"type\":\"session_heartbeat\"}");
        if (i > 0) PT_CHECK(ts_log_get(f.s, i)->at_ms - ts_log_get(f.s, i - 1)->at_ms >= 90);
    }
    PT_CHECK(ts_log_get(f.s, 0)->at_ms - t0 >= 95);
    PT_CHECK(failed >= 6);
    PT_CHECK(sent >= 8);
    /* beats 3 to 6 (at 300 to 600 ms) failed more than 250 ms after the start; the 7th succeeded: no more */
    PT_EQ_INT(w.n, 4);
    for (i = 0; i < (size_t)w.n && i < 32; i++) PT_CHECK(w.since[i] > 250);
    pr_http_client_destroy(f.c);
    ts_stop(f.s);
}

/* No client given: the heartbeat makes its own from opts.tls and beats
   over https to the TLS test server, trusting the test CA; tls with a
   client given is refused (that client keeps its own settings). */
PT_TEST(session_heartbeat_own_client_tls) {
#ifdef PRISTINE_NO_TLS
    PT_SKIP("no TLS in this build");
#else
    ss_fx f;
    pr_heartbeat *h = NULL;
    pr_heartbeat_opts o;
    ts_opts so;
    long sent = 0, failed = 0;
    pr_err_info e;
    int64_t t0;
    if (system("sh tests/fixtures/tls_mkcerts.sh build/tls-fixtures") != 0) PT_SKIP("no openssl to make certificates");
    memset(&f, 0, sizeof f);
    memset(&so, 0, sizeof so);
    so.tls_cert_file = "build/tls-fixtures/good.crt";
    so.tls_key_file = "build/tls-fixtures/good.key";
    PT_REQUIRE(ts_start(&f.s, &so) == PR_OK);
    snprintf(f.base, sizeof f.base, "https://localhost:%u", (unsigned)ts_port(f.s));
    memset(&o, 0, sizeof o);
    o.interval_ms = 20;
    o.tls.ca_file = "build/tls-fixtures/ca.crt";
    PT_REQUIRE(pr_http_client_create(&f.c, &(pr_http_client_opts){ .ignore_env = 1 }, NULL) == PR_OK);
    PT_EQ_ERR(pr_heartbeat_start(&h, f.c, f.base, "s1", &o, &e), PR_EINVAL);
    PT_EQ_INT(e.code, PR_EINVAL); /* why, in err */
    PT_CHECK(h == NULL);
    pr_http_client_destroy(f.c);
    t0 = pr_now();
    PT_EQ_ERR(pr_heartbeat_start(&h, NULL, f.base, "s1", &o, NULL), PR_OK);
    while (ts_log_count(f.s) < 2 && pr_now() - t0 < 10000) PT_REQUIRE(pr_sleep(pr_deadline_in(10)) == PR_OK);
    pr_heartbeat_counts(h, &sent, &failed);
    pr_heartbeat_stop(h);
    PT_EQ_ERR(pr_sleep(pr_deadline_in(5)), PR_OK); /* it winds down and frees its client */
    PT_CHECK(ts_log_count(f.s) >= 2);
    PT_CHECK(sent >= 1);
    PT_EQ_INT(failed, 0);
    PT_EQ_STR(ts_log_get(f.s, 0)->body, "{\"session_id\":\"s1\",\"type\":\"session_heartbeat\"}");
    ts_stop(f.s);
#endif
}

const pt_suite pt_suite_session = { "session", {
    PT_ENTRY(session_throttle_layers),
    PT_ENTRY(session_throttle_weight_saturates),
    PT_ENTRY(session_throttle_shared_window_real_429),
    PT_ENTRY(session_heartbeat),
    PT_ENTRY(session_heartbeat_own_client_tls),
    {0, 0} } };
