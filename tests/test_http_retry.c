/* http_retry: the client's retries against tools/testserver.c on 127.0.0.1
   with scripted routes: which statuses and failures are retried, the
   server's delay hints in every form, attempt and idempotency headers, the
   deadline, stalled and reset responses, non-replayable bodies, events, the
   circuit breaker, connection caps, a client shared by many tasks, fetch,
   error detail at creation, and allocation failures. Sleeps go through a
   hook that records them and returns at once (nothing sleeps for real);
   the random number is fixed per test. */

/* The recording sleep of these tests. */
typedef struct hr_rec {
    int64_t sleeps[32];
    int n;
    double r;
    int64_t wall_ms; /* the injected wall clock; 0 = the real one */
} hr_rec;

static int hr_sleep(int64_t delay_ms, int64_t deadline, void *ud) {
    hr_rec *x = (hr_rec *)ud;
    (void)deadline;
    if (x->n < 32) x->sleeps[x->n] = delay_ms;
    x->n++;
    return pr_is_canceled() ? PR_ECANCELED : PR_OK;
}

static double hr_random(void *ud) { return ((hr_rec *)ud)->r; }

static int64_t hr_wall(void *ud) {
    hr_rec *x = (hr_rec *)ud;
    return x->wall_ms ? x->wall_ms : pr__time_wall_ms();
}

/* A started server, a client with the recording hooks, and their state. */
typedef struct hr_fx {
    ts_server *s;
    pr_http_client *c;
    pr_http_client_opts o;
    hr_rec rec;
    char base[64];
    int64_t call_ms; /* hr_get's deadline from now (hr_opts: 20 s) */
} hr_fx;

static void hr_opts(hr_fx *f) {
    memset(&f->o, 0, sizeof f->o);
    memset(&f->rec, 0, sizeof f->rec);
    f->call_ms = 20000;
    f->o.ignore_env = 1;
    f->o.retry.hooks.sleep = hr_sleep;
    f->o.retry.hooks.random = hr_random;
    f->o.retry.hooks.wall_clock_ms = hr_wall;
    f->o.retry.hooks.user_data = &f->rec;
}

/* Start the server and the client (f->o as prepared by hr_opts and the test). */
static int hr_start(hr_fx *f, const ts_opts *so) {
    int rc;
    f->s = NULL;
    f->c = NULL;
    if ((rc = ts_start(&f->s, so)) != PR_OK) return rc;
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%u", (unsigned)ts_port(f->s));
    return pr_http_client_create(&f->c, &f->o, NULL);
}

static void hr_end(hr_fx *f) {
    pr_http_client_destroy(f->c);
    ts_stop(f->s);
    f->c = NULL;
    f->s = NULL;
}

/* GET base + path, read the body into body (may be NULL); returns the
   status or an error. */
static int hr_get(hr_fx *f, const char *path, char *body, size_t cap) {
    char url[256];
    pr_http_response *r = NULL;
    int rc;
    snprintf(url, sizeof url, "%s%s", f->base, path);
    rc = pr_http_client_get(f->c, &r, url, NULL, pr_deadline_in(f->call_ms));
    if (rc) return rc;
    rc = pr_http_status(r);
    if (body) {
        size_t len = 0;
        ptrdiff_t k;
        while (len + 1 < cap && (k = pr_http_read(r, body + len, cap - 1 - len, pr_deadline_in(5000))) > 0)
            len += (size_t)k;
        body[len] = 0;
    }
    pr_http_response_destroy(r);
    return rc;
}

/* One scripted step: status, extra header lines, body. */
static ts_step hr_step(int status, const char *headers, const char *body) {
    ts_step st;
    memset(&st, 0, sizeof st);
    st.status = status;
    st.headers = headers;
    st.body = body;
    return st;
}

static void hr_script(hr_fx *f, const char *path, const ts_step *steps, size_t n) {
    PT_EQ_ERR(ts_script(f->s, path, steps, n), PR_OK);
}

/* The value of header name in logged request i, as a C string (or "-"). */
static const char *hr_logged(hr_fx *f, size_t i, const char *name, char *buf, size_t cap) {
    pr_slice v;
    if (!ts_log_header(ts_log_get(f->s, i), name, &v)) return "-";
    snprintf(buf, cap, "%.*s", (int)v.len, v.ptr);
    return buf;
}

#define HR_EQ_SLEEPS(f, ...) \
    do { \
        static const int64_t hr_w_[] = { __VA_ARGS__ }; \
        size_t hr_i_; \
        PT_EQ_INT((f).rec.n, sizeof hr_w_ / sizeof hr_w_[0]); \
        for (hr_i_ = 0; hr_i_ < sizeof hr_w_ / sizeof hr_w_[0] && hr_i_ < 32; hr_i_++) \
            PT_EQ_INT((f).rec.sleeps[hr_i_], hr_w_[hr_i_]); \
    } while (0)

PT_TEST(http_retry_503_then_200) {
    hr_fx f;
    ts_step st[3];
    char body[64], v[32];
    size_t i;
    hr_opts(&f);
    f.o.retry_count_header = "x-stainless-retry-count";
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    st[0] = hr_step(503, NULL, "busy 1\n");
    st[1] = hr_step(503, NULL, "busy 2\n");
    st[2] = hr_step(200, NULL, "finally\n");
    hr_script(&f, "/t/a", st, 3);
    /* R1: 3 requests, the count header 0, 1, 2; sleeps 500, 1000; the 200 body */
    PT_EQ_INT(hr_get(&f, "/t/a", body, sizeof body), 200);
    PT_EQ_STR(body, "finally\n");
    PT_EQ_INT(ts_log_count(f.s), 3);
    for (i = 0; i < 3 && i < ts_log_count(f.s); i++) {
        char want[4];
        snprintf(want, sizeof want, "%d", (int)i);
        PT_EQ_STR(hr_logged(&f, i, "x-stainless-retry-count", v, sizeof v), want);
    }
    HR_EQ_SLEEPS(f, 500, 1000);
    /* the retried responses' bodies were in the buffer: the connection was kept */
    PT_EQ_INT(ts_accepted(f.s), 1);
    hr_end(&f);
}

PT_TEST(http_retry_exhausted_returns_last_response) {
    hr_fx f;
    ts_step st = hr_step(500, NULL, "{\"error\":\"down\"}");
    char body[64];
    pr_err_info e;
    hr_opts(&f);
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    PT_EQ_ERR(ts_script_default(f.s, "/t/a", &st), PR_OK);
    /* R2: default 10 retries: 11 requests, the Stainless sleeps, the final 500 with its body */
    PT_EQ_INT(hr_get(&f, "/t/a", body, sizeof body), 500);
    PT_EQ_STR(body, "{\"error\":\"down\"}");
    PT_EQ_INT(ts_log_count(f.s), 11);
    HR_EQ_SLEEPS(f, 500, 1000, 2000, 4000, 8000, 10000, 10000, 10000, 10000, 10000);
    (void)e;
    hr_end(&f);
}

PT_TEST(http_retry_jitter_shortens) {
    hr_fx f;
    ts_step st[2];
    hr_opts(&f);
    f.rec.r = 0.999999;
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    st[0] = hr_step(503, NULL, NULL);
    st[1] = hr_step(200, NULL, NULL);
    hr_script(&f, "/t/a", st, 2);
    /* R3: r -> 1: 500 * (1 - 0.25 r), rounded up to whole ms */
    PT_EQ_INT(hr_get(&f, "/t/a", NULL, 0), 200);
    HR_EQ_SLEEPS(f, 376);
    hr_end(&f);
}

PT_TEST(http_retry_status_table) {
    static const int no[] = { 400, 401, 403, 404, 422 };
    static const int yes[] = { 408, 409, 429, 500, 502, 504 };
    hr_fx f;
    size_t i;
    hr_opts(&f);
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    /* R4, R5: never retried */
    for (i = 0; i < sizeof no / sizeof no[0]; i++) {
        ts_step st[2];
        char path[32];
        snprintf(path, sizeof path, "/t/no%d", no[i]);
        st[0] = hr_step(no[i], "Content-Type: application/json\r\n", "{\"detail\":\"bad\"}");
        st[1] = hr_step(200, NULL, NULL);
        hr_script(&f, path, st, 2);
        PT_EQ_INT(hr_get(&f, path, NULL, 0), no[i]);
    }
    PT_EQ_INT(ts_log_count(f.s), sizeof no / sizeof no[0]);
    PT_EQ_INT(f.rec.n, 0);
    /* R6: retried once, then the 200 */
    ts_script_clear(f.s);
    for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        ts_step st[2];
        char path[32];
        snprintf(path, sizeof path, "/t/yes%d", yes[i]);
        st[0] = hr_step(yes[i], NULL, NULL);
        st[1] = hr_step(200, NULL, NULL);
        hr_script(&f, path, st, 2);
        PT_EQ_INT(hr_get(&f, path, NULL, 0), 200);
    }
    PT_EQ_INT(ts_log_count(f.s), 2 * sizeof yes / sizeof yes[0]);
    hr_end(&f);
}

PT_TEST(http_retry_x_should_retry) {
    static const struct { int status; const char *hdr; int want_status, want_requests; } cases[] = {
        { 503, "x-should-retry: false\r\n", 503, 1 },  /* R7 */
        { 400, "x-should-retry: true\r\n", 200, 2 },   /* R8 */
        { 401, "X-Should-Retry: true\r\n", 200, 2 },
        { 503, "x-should-retry:  TRUE \r\n", 200, 2 }, /* R9 */
        { 503, "x-should-retry: maybe\r\n", 200, 2 },
        { 400, "x-should-retry: maybe\r\n", 400, 1 },
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hr_fx f;
        ts_step st[2];
        hr_opts(&f);
        PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
        st[0] = hr_step(cases[i].status, cases[i].hdr, NULL);
        st[1] = hr_step(200, NULL, NULL);
        hr_script(&f, "/t/a", st, 2);
        if (hr_get(&f, "/t/a", NULL, 0) != cases[i].want_status)
            pt_fail(__FILE__, __LINE__, "case %lu: wrong final status", (unsigned long)i);
        if ((int)ts_log_count(f.s) != cases[i].want_requests)
            pt_fail(__FILE__, __LINE__, "case %lu: %lu requests, want %d", (unsigned long)i,
                    (unsigned long)ts_log_count(f.s), cases[i].want_requests);
        hr_end(&f);
    }
}

/* The sleep chosen for one 503 (or other status) + headers followed by a
   200, by a client with that max_retry_after_ms, within a deadline of
   10 minutes (the sleeps are recorded, not slept). */
static int64_t hr_hint_sleep_cap(int status, const char *headers, int64_t wall_ms, int max_retry_after_ms) {
    hr_fx f;
    ts_step st[2];
    int64_t d = -1;
    hr_opts(&f);
    f.rec.wall_ms = wall_ms;
    f.call_ms = 600000;
    f.o.max_retry_after_ms = max_retry_after_ms;
    if (hr_start(&f, NULL) != PR_OK) return -2;
    st[0] = hr_step(status, headers, NULL);
    st[1] = hr_step(200, NULL, NULL);
    hr_script(&f, "/t/a", st, 2);
    if (hr_get(&f, "/t/a", NULL, 0) == 200 && f.rec.n == 1) d = f.rec.sleeps[0];
    hr_end(&f);
    return d;
}

static int64_t hr_hint_sleep(int status, const char *headers, int64_t wall_ms) {
    return hr_hint_sleep_cap(status, headers, wall_ms, 0);
}

PT_TEST(http_retry_server_hints) {
    const int64_t t = 784111777000LL; /* Sun, 06 Nov 1994 08:49:37 GMT */
    PT_EQ_INT(hr_hint_sleep(429, "Retry-After: 2\r\n", 0), 2000);                              /* R10 */
    PT_EQ_INT(hr_hint_sleep(429, "retry-after-ms: 1500\r\nRetry-After: 30\r\n", 0), 1500);      /* R11 */
    PT_EQ_INT(hr_hint_sleep(429, "retry-after-ms: abc\r\nRetry-After: 1\r\n", 0), 1000);        /* R12 */
    PT_EQ_INT(hr_hint_sleep(503, "Retry-After: 120\r\n", 0), 60000);                            /* R13: cut */
    PT_EQ_INT(hr_hint_sleep(503, "Retry-After: 0\r\n", 0), 500);                                /* R14 */
    PT_EQ_INT(hr_hint_sleep(503, "Retry-After: -3\r\n", 0), 500);
    PT_EQ_INT(hr_hint_sleep(503, "Retry-After: soon\r\n", 0), 500);                             /* R16 */
    PT_EQ_INT(hr_hint_sleep(502, "Retry-After: 1.5\r\n", 0), 1500);                             /* R17 */
    PT_EQ_INT(hr_hint_sleep(503, "Retry-After: 99999999999999999999\r\n", 0), 60000);           /* huge: cut */
    PT_EQ_INT(hr_hint_sleep(503, "Retry-After: 1e3\r\n", 0), 500);                              /* garbage */
    /* R15: an HTTP-date 3 s ahead of the injected wall clock, in each format; one in the past */
    PT_EQ_INT(hr_hint_sleep(503, "Retry-After: Sun, 06 Nov 1994 08:49:40 GMT\r\n", t), 3000);
    PT_EQ_INT(hr_hint_sleep(503, "Retry-After: Sunday, 06-Nov-94 08:49:40 GMT\r\n", t), 3000);
    PT_EQ_INT(hr_hint_sleep(503, "Retry-After: Sun Nov  6 08:49:40 1994\r\n", t), 3000);
    PT_EQ_INT(hr_hint_sleep(503, "Retry-After: Sun, 06 Nov 1994 08:49:30 GMT\r\n", t), 500);
    PT_EQ_INT(hr_hint_sleep(503, "Retry-After: Mon, 06 Nov 1994 08:49:40 GMT\r\n", t), 500); /* wrong weekday */
}

/* A server asking for more than max_retry_after_ms waits that long, not the
   short backoff; the cap is the client's option (0 = 60 s). */
PT_TEST(http_retry_after_cap_option) {
    PT_EQ_INT(hr_hint_sleep_cap(503, "Retry-After: 120\r\n", 0, 0), 60000);
    PT_EQ_INT(hr_hint_sleep_cap(503, "Retry-After: 120\r\n", 0, 90000), 90000);
    PT_EQ_INT(hr_hint_sleep_cap(503, "Retry-After: 80\r\n", 0, 90000), 80000);
    PT_EQ_INT(hr_hint_sleep_cap(429, "retry-after-ms: 5000\r\n", 0, 2000), 2000);
    PT_EQ_INT(hr_hint_sleep_cap(503, "Retry-After: 120\r\n", 0, -1), 60000); /* < 0: the default */
    PT_EQ_INT(hr_hint_sleep_cap(503, "Retry-After: 9223372036854775807\r\n", 0, 0), 60000);
    PT_EQ_INT(hr_hint_sleep_cap(503, "Retry-After: Fri, 31 Dec 9999 23:59:59 GMT\r\n", 0, 0), 60000);
}

PT_TEST(http_retry_hint_then_backoff_sequence) {
    hr_fx f;
    ts_step st[3];
    hr_opts(&f);
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    /* R14: two refused hints in a row: the backoff goes on counting (500, 1000) */
    st[0] = hr_step(503, "Retry-After: 0\r\n", NULL);
    st[1] = hr_step(503, "Retry-After: -3\r\n", NULL);
    st[2] = hr_step(200, NULL, NULL);
    hr_script(&f, "/t/a", st, 3);
    PT_EQ_INT(hr_get(&f, "/t/a", NULL, 0), 200);
    HR_EQ_SLEEPS(f, 500, 1000);
    hr_end(&f);
}

PT_TEST(http_retry_connection_refused) {
    hr_fx f;
    pr_listener *l;
    pr_err_info e;
    char url[64];
    pr_http_response *r = NULL;
    uint16_t port;
    hr_opts(&f);
    f.o.retry.max_retries = 2;
    /* a port nobody listens on: take one, then close it */
    PT_REQUIRE(pr_tcp_listen(&l, "127.0.0.1", 0, 1, NULL) == PR_OK);
    port = pr_listener_port(l);
    pr_listener_destroy(l);
    PT_REQUIRE(pr_http_client_create(&f.c, &f.o, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/t/a", (unsigned)port);
    /* R18: 3 connect attempts, sleeps 500 and 1000, a connection error */
    PT_EQ_ERR(pr_http_client_get(f.c, &r, url, NULL, pr_deadline_in(10000)), PR_EIO);
    PT_CHECK(r == NULL);
    HR_EQ_SLEEPS(f, 500, 1000);
    PT_EQ_ERR(pr_http_client_last_error(f.c, &e), PR_OK);
    PT_EQ_INT(e.sys_errno, ECONNREFUSED);
    PT_CHECK(strstr(e.msg, "(after 2 retries)") != NULL);
    pr_http_client_destroy(f.c);
}

PT_TEST(http_retry_timeouts_are_retried) {
    hr_fx f;
    ts_step st[2];
    pr_http_result res;
    pr_http_request req;
    pr_url u;
    char url[128];
    int64_t t0;
    /* R19: a server that never sends the head, idle timeout 200 ms, one retry */
    hr_opts(&f);
    f.o.idle_timeout_ms = 200;
    f.o.retry.max_retries = 1;
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    st[0] = hr_step(200, NULL, "late");
    st[0].delay_head_ms = 5000;
    st[0].count = 2;
    hr_script(&f, "/t/a", st, 1);
    t0 = pr_now();
    PT_EQ_ERR(hr_get(&f, "/t/a", NULL, 0), PR_EIO); /* the idle limit (errno ETIMEDOUT), not the deadline */
    PT_CHECK(pr_now() - t0 >= 400 && pr_now() - t0 < 3000);
    PT_EQ_INT(ts_log_count(f.s), 2);
    HR_EQ_SLEEPS(f, 500);
    hr_end(&f);
    /* R20: headers, then a stalled body: the attempt (300 ms) covers the
       body in fetch, so it is abandoned and retried */
    hr_opts(&f);
    f.o.attempt_timeout_ms = 300;
    f.o.retry.max_retries = 1;
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    st[0] = hr_step(200, NULL, "0123456789");
    st[0].stall_body = 1;
    st[1] = hr_step(200, "Content-Type: application/json\r\n", "{\"ok\":true}");
    hr_script(&f, "/t/b", st, 2);
    snprintf(url, sizeof url, "%s/t/b", f.base);
    memset(&u, 0, sizeof u);
    memset(&req, 0, sizeof req);
    memset(&res, 0, sizeof res);
    PT_REQUIRE(pr_url_parse(&u, url, strlen(url), NULL) == PR_OK);
    req.url = &u;
    t0 = pr_now();
    PT_EQ_ERR(pr_http_client_fetch(f.c, &res, &req, NULL, pr_deadline_in(10000)), PR_OK);
    PT_CHECK(pr_now() - t0 >= 300 && pr_now() - t0 < 3000);
    PT_EQ_INT(res.status, 200);
    PT_EQ_INT(res.attempts, 2);
    PT_EQ_STR(res.body, "{\"ok\":true}");
    PT_CHECK(res.json != NULL);
    if (res.json) {
        int b = 0;
        PT_EQ_ERR(pr_json_bool(pr_json_get(pr_json_root(res.json), "ok"), &b), PR_OK);
        PT_EQ_INT(b, 1);
    }
    PT_EQ_INT(ts_log_count(f.s), 2);
    HR_EQ_SLEEPS(f, 500);
    pr_http_result_deinit(&res);
    /* the same stalled body through the streaming call: the head is handed
       over, the stall is the caller's to see */
    ts_script_clear(f.s);
    hr_script(&f, "/t/b", st, 1);
    {
        pr_http_response *r = NULL;
        char b[16];
        PT_EQ_ERR(pr_http_client_request(f.c, &r, &req, NULL, pr_deadline_in(10000)), PR_OK);
        PT_EQ_INT(pr_http_read(r, b, sizeof b, pr_deadline_in(5000)), 5);
        PT_EQ_INT(pr_http_read(r, b, sizeof b, pr_deadline_in(100)), PR_ETIMEDOUT);
        pr_http_response_destroy(r);
    }
    pr_url_deinit(&u);
    hr_end(&f);
}

PT_TEST(http_retry_reset_and_close_without_response) {
    hr_fx f;
    ts_step st[3];
    hr_opts(&f);
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    /* R21: reset in the middle of the head once, then 200 */
    st[0] = hr_step(200, NULL, "x");
    st[0].reset_mid_head = 1;
    st[1] = hr_step(200, NULL, NULL);
    st[1].close_without_response = 1;
    st[2] = hr_step(200, NULL, "ok");
    hr_script(&f, "/t/a", st, 3);
    PT_EQ_INT(hr_get(&f, "/t/a", NULL, 0), 200);
    PT_EQ_INT(ts_log_count(f.s), 3);
    HR_EQ_SLEEPS(f, 500, 1000);
    hr_end(&f);
}

/* POST one body through the client; returns the status. */
static int hr_post(hr_fx *f, const char *path, const char *method, const char *key_header) {
    char url[128];
    const char *hdrs[2];
    pr_http_response *r = NULL;
    int rc;
    hdrs[0] = key_header;
    hdrs[1] = NULL;
    snprintf(url, sizeof url, "%s%s", f->base, path);
    rc = pr_http_client_send(f->c, &r, method, url, key_header ? hdrs : NULL, "{}", 2, NULL, pr_deadline_in(10000));
    if (rc) return rc;
    rc = pr_http_status(r);
    pr_http_response_destroy(r);
    return rc;
}

PT_TEST(http_retry_idempotency_key) {
    hr_fx f;
    ts_step st[3];
    char k0[64], k1[64], v[64];
    size_t i;
    hr_opts(&f);
    f.o.idempotency_header = "X-Idempotency-Key";
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    st[0] = hr_step(500, NULL, NULL);
    st[1] = hr_step(500, NULL, NULL);
    st[2] = hr_step(200, NULL, NULL);
    hr_script(&f, "/t/p", st, 3);
    /* R22: the same key on all three attempts, 32 lower-case hex digits */
    PT_EQ_INT(hr_post(&f, "/t/p", "POST", NULL), 200);
    PT_EQ_INT(ts_log_count(f.s), 3);
    snprintf(k0, sizeof k0, "%s", hr_logged(&f, 0, "X-Idempotency-Key", v, sizeof v));
    PT_EQ_INT(strlen(k0), 32);
    PT_EQ_INT(strspn(k0, "0123456789abcdef"), 32);
    for (i = 1; i < 3; i++) PT_EQ_STR(hr_logged(&f, i, "X-Idempotency-Key", v, sizeof v), k0);
    /* a second logical POST: another key; a GET: none; the caller's own key: as given */
    PT_EQ_INT(hr_post(&f, "/t/p", "POST", NULL), 200);
    snprintf(k1, sizeof k1, "%s", hr_logged(&f, 3, "X-Idempotency-Key", v, sizeof v));
    PT_EQ_INT(strlen(k1), 32);
    PT_CHECK(strcmp(k0, k1) != 0);
    PT_EQ_INT(hr_get(&f, "/t/p", NULL, 0), 200);
    PT_EQ_STR(hr_logged(&f, 4, "X-Idempotency-Key", v, sizeof v), "-");
    PT_EQ_INT(hr_post(&f, "/t/p", "PUT", "X-Idempotency-Key: mine-1"), 200);
    PT_EQ_STR(hr_logged(&f, 5, "X-Idempotency-Key", v, sizeof v), "mine-1");
    PT_EQ_INT(ts_log_count(f.s), 6);
    hr_end(&f);
}

PT_TEST(http_retry_off_and_headers) {
    hr_fx f;
    ts_step st[2];
    char v[64];
    size_t i;
    hr_opts(&f);
    f.o.retry.max_retries = PR_RETRY_OFF;
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    st[0] = hr_step(503, NULL, NULL);
    st[1] = hr_step(200, NULL, NULL);
    hr_script(&f, "/t/a", st, 2);
    /* R23: retries off: one request, no sleep */
    PT_EQ_INT(hr_get(&f, "/t/a", NULL, 0), 503);
    PT_EQ_INT(ts_log_count(f.s), 1);
    PT_EQ_INT(f.rec.n, 0);
    PT_EQ_STR(hr_logged(&f, 0, "x-stainless-retry-count", v, sizeof v), "-"); /* off by default */
    hr_end(&f);
    /* R24: the timeout header on every attempt; a caller's count header is kept */
    hr_opts(&f);
    f.o.attempt_timeout_ms = 45000;
    f.o.timeout_header = "x-stainless-read-timeout";
    f.o.retry_count_header = "x-stainless-retry-count";
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    hr_script(&f, "/t/a", st, 2);
    {
        const char *hdrs[] = { "x-stainless-retry-count: 7", NULL };
        char url[128];
        pr_http_response *r = NULL;
        snprintf(url, sizeof url, "%s/t/a", f.base);
        PT_EQ_ERR(pr_http_client_send(f.c, &r, "GET", url, hdrs, NULL, 0, NULL, pr_deadline_in(10000)), PR_OK);
        PT_EQ_INT(pr_http_status(r), 200);
        pr_http_response_destroy(r);
    }
    PT_EQ_INT(ts_log_count(f.s), 2);
    for (i = 0; i < 2; i++) {
        PT_EQ_STR(hr_logged(&f, i, "x-stainless-read-timeout", v, sizeof v), "45");
        PT_EQ_STR(hr_logged(&f, i, "x-stainless-retry-count", v, sizeof v), "7");
    }
    hr_end(&f);
}

/* A streamed body of "abc", restartable when rewind is set. */
typedef struct hr_body {
    int pos, rewinds;
} hr_body;

static ptrdiff_t hr_body_fn(void *buf, size_t n, void *ud) {
    hr_body *b = (hr_body *)ud;
    if (b->pos >= 3 || n < 3) return 0;
    memcpy(buf, "abc", 3);
    b->pos = 3;
    return 3;
}

static int hr_body_rewind(void *ud) {
    hr_body *b = (hr_body *)ud;
    b->pos = 0;
    b->rewinds++;
    return PR_OK;
}

PT_TEST(http_retry_non_replayable_body) {
    hr_fx f;
    ts_step st[2];
    pr_http_request req;
    pr_http_response *r = NULL;
    pr_url u;
    hr_body b;
    char url[128];
    hr_opts(&f);
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    st[0] = hr_step(503, NULL, NULL);
    st[1] = hr_step(200, NULL, NULL);
    hr_script(&f, "/t/up", st, 2);
    snprintf(url, sizeof url, "%s/t/up", f.base);
    memset(&u, 0, sizeof u);
    PT_REQUIRE(pr_url_parse(&u, url, strlen(url), NULL) == PR_OK);
    memset(&req, 0, sizeof req);
    memset(&b, 0, sizeof b);
    req.method = "POST";
    req.url = &u;
    req.body_fn = hr_body_fn;
    req.body_user_data = &b;
    /* a streamed body that cannot restart: the 503 is the answer */
    PT_EQ_ERR(pr_http_client_request(f.c, &r, &req, NULL, pr_deadline_in(10000)), PR_OK);
    PT_EQ_INT(pr_http_status(r), 503);
    pr_http_response_destroy(r);
    PT_EQ_INT(ts_log_count(f.s), 1);
    PT_EQ_INT(f.rec.n, 0);
    /* with a rewind it is replayed, body and all */
    req.body_rewind = hr_body_rewind;
    b.pos = 0;
    hr_script(&f, "/t/up", st, 2); /* after the queued 200: 503, 200 */
    PT_EQ_ERR(pr_http_client_request(f.c, &r, &req, NULL, pr_deadline_in(10000)), PR_OK);
    PT_EQ_INT(pr_http_status(r), 200);
    pr_http_response_destroy(r);
    b.pos = 0;
    PT_EQ_ERR(pr_http_client_request(f.c, &r, &req, NULL, pr_deadline_in(10000)), PR_OK);
    PT_EQ_INT(pr_http_status(r), 200);
    pr_http_response_destroy(r);
    PT_EQ_INT(ts_log_count(f.s), 4);
    PT_EQ_INT(b.rewinds, 1);
    PT_EQ_STR(ts_log_get(f.s, 3)->body, "abc");
    pr_url_deinit(&u);
    hr_end(&f);
}

PT_TEST(http_retry_never_sleeps_past_deadline) {
    hr_fx f;
    ts_step st = hr_step(503, "Retry-After: 5\r\n", "wait");
    pr_http_response *r = NULL;
    char url[128];
    int64_t t0;
    hr_opts(&f);
    f.o.retry.hooks.sleep = NULL; /* the real sleep: it must not start */
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    PT_EQ_ERR(ts_script_default(f.s, "/t/a", &st), PR_OK);
    snprintf(url, sizeof url, "%s/t/a", f.base);
    t0 = pr_now();
    /* the 5 s hint would end past the 1 s deadline: the 503 comes back at once */
    PT_EQ_ERR(pr_http_client_get(f.c, &r, url, NULL, pr_deadline_in(1000)), PR_OK);
    PT_EQ_INT(pr_http_status(r), 503);
    PT_CHECK(pr_now() - t0 < 500);
    pr_http_response_destroy(r);
    PT_EQ_INT(ts_log_count(f.s), 1);
    hr_end(&f);
}

static int hr_get_task(void *ud) {
    hr_fx *f = (hr_fx *)ud;
    return hr_get(f, "/t/a", NULL, 0);
}

PT_TEST(http_retry_cancel_during_sleep) {
    hr_fx f;
    ts_step st = hr_step(503, NULL, NULL);
    pr_task *t;
    int r = 0;
    hr_opts(&f);
    f.o.retry.hooks.sleep = NULL; /* the real sleep, 500 ms */
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    PT_EQ_ERR(ts_script_default(f.s, "/t/a", &st), PR_OK);
    PT_REQUIRE(pr_go(&t, hr_get_task, &f, NULL) == PR_OK);
    while (ts_log_count(f.s) < 1) PT_REQUIRE(pr_sleep(pr_deadline_in(5)) == PR_OK);
    PT_EQ_ERR(pr_sleep(pr_deadline_in(20)), PR_OK);
    pr_cancel(t);
    PT_EQ_ERR(pr_join(t, &r, pr_deadline_in(300)), PR_OK);
    PT_EQ_ERR(r, PR_ECANCELED);
    PT_EQ_INT(ts_log_count(f.s), 1);
    hr_end(&f);
}

/* ---- events ---- */

typedef struct hr_events {
    int n;
    int kind[16], attempt[16], status[16], error[16], hinted[16];
    int64_t delay[16];
    char url[128], reason[128];
} hr_events;

static void hr_on_event(const pr_http_event *ev, void *ud) {
    hr_events *x = (hr_events *)ud;
    if (x->n < 16) {
        x->kind[x->n] = ev->kind;
        x->attempt[x->n] = ev->attempt;
        x->status[x->n] = ev->status;
        x->error[x->n] = ev->error;
        x->delay[x->n] = ev->delay_ms;
        x->hinted[x->n] = ev->hinted;
    }
    x->n++;
    PT_EQ_STR(ev->method, "GET");
    snprintf(x->url, sizeof x->url, "%s", ev->url);
    if (ev->kind == PR_HTTP_EVENT_RETRY) snprintf(x->reason, sizeof x->reason, "%s", ev->reason);
}

PT_TEST(http_retry_events) {
    hr_fx f;
    ts_step st[2];
    hr_events ev;
    char url[128], want[128];
    pr_http_response *r = NULL;
    memset(&ev, 0, sizeof ev);
    hr_opts(&f);
    f.o.observer.on_event = hr_on_event;
    f.o.observer.user_data = &ev;
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    st[0] = hr_step(503, "Retry-After: 1\r\n", NULL);
    st[1] = hr_step(200, NULL, NULL);
    hr_script(&f, "/t/a", st, 2);
    snprintf(url, sizeof url, "http://user:secret@127.0.0.1:%u/t/a?x=1", (unsigned)ts_port(f.s));
    PT_EQ_ERR(pr_http_client_get(f.c, &r, url, NULL, pr_deadline_in(10000)), PR_OK);
    pr_http_response_destroy(r);
    /* START, ATTEMPT 503, RETRY 1000 (hinted), ATTEMPT 200, DONE 200 */
    PT_EQ_INT(ev.n, 5);
    PT_EQ_INT(ev.kind[0], PR_HTTP_EVENT_START);
    PT_EQ_INT(ev.kind[1], PR_HTTP_EVENT_ATTEMPT);
    PT_EQ_INT(ev.status[1], 503);
    PT_EQ_INT(ev.attempt[1], 0);
    PT_EQ_INT(ev.kind[2], PR_HTTP_EVENT_RETRY);
    PT_EQ_INT(ev.delay[2], 1000);
    PT_EQ_INT(ev.hinted[2], 1);
    PT_EQ_INT(ev.attempt[2], 1);
    PT_EQ_STR(ev.reason, "status 503");
    PT_EQ_INT(ev.kind[3], PR_HTTP_EVENT_ATTEMPT);
    PT_EQ_INT(ev.attempt[3], 1);
    PT_EQ_INT(ev.status[3], 200);
    PT_EQ_INT(ev.kind[4], PR_HTTP_EVENT_DONE);
    PT_EQ_INT(ev.status[4], 200);
    PT_EQ_INT(ev.error[4], PR_OK);
    snprintf(want, sizeof want, "http://127.0.0.1:%u/t/a?x=1", (unsigned)ts_port(f.s));
    PT_EQ_STR(ev.url, want); /* no userinfo */
    hr_end(&f);
}

/* ---- breaker, caps, sharing ---- */

PT_TEST(http_retry_breaker_opens) {
    hr_fx f;
    ts_step st = hr_step(500, NULL, NULL);
    pr_breaker *b;
    pr_breaker_opts bo;
    pr_err_info e;
    memset(&bo, 0, sizeof bo);
    bo.failure_threshold = 3;
    PT_REQUIRE(pr_breaker_create(&b, "testserver", &bo) == PR_OK);
    hr_opts(&f);
    f.o.breaker = b;
    f.o.retry.max_retries = 5;
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    PT_EQ_ERR(ts_script_default(f.s, "/t/a", &st), PR_OK);
    /* 3 failing attempts open it; the 4th attempt is refused without a request */
    PT_EQ_ERR(hr_get(&f, "/t/a", NULL, 0), PR_ECIRCUIT);
    PT_EQ_INT(ts_log_count(f.s), 3);
    PT_EQ_INT(pr_breaker_state(b), PR_BREAKER_OPEN);
    PT_EQ_ERR(pr_http_client_last_error(f.c, &e), PR_OK);
    PT_EQ_INT(e.code, PR_ECIRCUIT);
    PT_EQ_ERR(hr_get(&f, "/t/a", NULL, 0), PR_ECIRCUIT);
    PT_EQ_INT(ts_log_count(f.s), 3);
    /* reset: a 429 counts as nothing, a 404 as health */
    pr_breaker_reset(b);
    ts_script_clear(f.s);
    st.status = 404;
    PT_EQ_ERR(ts_script_default(f.s, "/t/a", &st), PR_OK);
    PT_EQ_INT(hr_get(&f, "/t/a", NULL, 0), 404);
    PT_EQ_INT(pr_breaker_failures(b), 0);
    hr_end(&f);
    pr_breaker_destroy(b);
}

typedef struct hr_burst {
    hr_fx *f;
    int ok, fail;
} hr_burst;

static int hr_burst_task(void *ud) {
    hr_burst *b = (hr_burst *)ud;
    char body[64];
    int rc = hr_get(b->f, "/slow?len=3&delay_ms=5", body, sizeof body);
    if (rc == 200 && strcmp(body, "abc") == 0) b->ok++;
    else b->fail++;
    return 0;
}

/* The server's open connections, sampled while the burst runs. */
typedef struct hr_sampler {
    ts_server *s;
    long peak;
    int stop;
} hr_sampler;

static int hr_sampler_task(void *ud) {
    hr_sampler *x = (hr_sampler *)ud;
    while (!x->stop) {
        if (ts_open_conns(x->s) > x->peak) x->peak = ts_open_conns(x->s);
        if (pr_sleep(pr_deadline_in(1)) != PR_OK) break;
    }
    return 0;
}

PT_TEST(http_retry_connection_caps_and_sharing) {
    hr_fx f;
    ts_opts so;
    hr_burst b;
    hr_sampler smp;
    pr_group *g;
    pr_task *st;
    int i;
    /* 50 tasks share one client against a server with a listen backlog of 5;
       the client caps itself at 4 connections (per origin 3): no request is
       lost and the server never sees more than 3 at once */
    memset(&so, 0, sizeof so);
    so.backlog = 5;
    hr_opts(&f);
    f.o.max_connections = 4;
    f.o.max_connections_per_origin = 3;
    f.o.pool_max = 8;
    PT_REQUIRE(hr_start(&f, &so) == PR_OK);
    memset(&b, 0, sizeof b);
    b.f = &f;
    memset(&smp, 0, sizeof smp);
    smp.s = f.s;
    PT_REQUIRE(pr_go(&st, hr_sampler_task, &smp, NULL) == PR_OK);
    PT_REQUIRE(pr_group_create(&g) == PR_OK);
    for (i = 0; i < 50; i++) PT_REQUIRE(pr_group_go(g, hr_burst_task, &b, NULL) == PR_OK);
    PT_EQ_ERR(pr_group_wait(g, pr_deadline_in(20000)), PR_OK);
    PT_EQ_ERR(pr_group_close(g, PR_FOREVER), PR_OK);
    smp.stop = 1;
    PT_EQ_ERR(pr_join(st, NULL, PR_FOREVER), PR_OK);
    PT_EQ_INT(b.ok, 50);
    PT_EQ_INT(b.fail, 0);
    PT_CHECK(smp.peak >= 1 && smp.peak <= 3);
    PT_CHECK(ts_accepted(f.s) <= 3); /* the pooled connections carried them all */
    PT_EQ_INT(f.rec.n, 0);
    hr_end(&f);
}

PT_TEST(http_retry_slot_wait_deadline) {
    hr_fx f;
    pr_http_response *r1 = NULL, *r2 = NULL;
    pr_err_info e;
    char url[128];
    hr_opts(&f);
    f.o.max_connections = 1;
    f.o.retry.max_retries = PR_RETRY_OFF;
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    snprintf(url, sizeof url, "%s/fixed?len=5", f.base);
    PT_EQ_ERR(pr_http_client_get(f.c, &r1, url, NULL, pr_deadline_in(5000)), PR_OK); /* holds the only slot */
    PT_EQ_ERR(pr_http_client_get(f.c, &r2, url, NULL, pr_deadline_in(100)), PR_ETIMEDOUT);
    PT_EQ_ERR(pr_http_client_last_error(f.c, &e), PR_OK);
    PT_EQ_STR(e.msg, "http: timed out waiting for a free connection (deadline)");
    pr_http_response_destroy(r1); /* unread body: closed, the slot comes back */
    PT_EQ_ERR(pr_http_client_get(f.c, &r2, url, NULL, pr_deadline_in(5000)), PR_OK);
    pr_http_response_destroy(r2);
    hr_end(&f);
}

/* ---- fetch, send, detail ---- */

PT_TEST(http_retry_fetch_final_failure_keeps_body) {
    hr_fx f;
    ts_step st = hr_step(400, "Content-Type: application/problem+json\r\n", "{\"detail\":\"bad\"}");
    pr_http_result res;
    pr_err_info e;
    pr_http_request req;
    pr_url u;
    char url[128];
    const char *d;
    size_t n = 0;
    hr_opts(&f);
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    PT_EQ_ERR(ts_script_default(f.s, "/t/a", &st), PR_OK);
    snprintf(url, sizeof url, "%s/t/a", f.base);
    memset(&u, 0, sizeof u);
    PT_REQUIRE(pr_url_parse(&u, url, strlen(url), NULL) == PR_OK);
    memset(&req, 0, sizeof req);
    memset(&res, 0, sizeof res);
    req.url = &u;
    /* R4: a 400 is final at once: status, body, parsed JSON, detail */
    memset(&e, 0xff, sizeof e);
    PT_EQ_ERR(pr_http_client_fetch(f.c, &res, &req, &e, pr_deadline_in(10000)), PR_OK);
    PT_EQ_INT(res.status, 400);
    PT_EQ_INT(res.attempts, 1);
    PT_EQ_STR(res.body, "{\"detail\":\"bad\"}");
    PT_REQUIRE(res.json != NULL);
    d = pr_json_string(pr_json_get(pr_json_root(res.json), "detail"), &n);
    PT_EQ_STR(d, "bad");
    PT_EQ_INT(e.code, PR_OK);
    PT_EQ_INT(e.http_status, 400);
    PT_EQ_STR(e.msg, "http: status 400: {\"detail\":\"bad\"}");
    PT_REQUIRE(res.resp != NULL);
    PT_CHECK(pr_http_header_get(res.resp, "x-conn-id") != NULL);
    PT_EQ_INT(f.rec.n, 0);
    pr_http_result_deinit(&res);
    /* the connection went back to the pool when the body was read */
    PT_EQ_INT(pr_http_client_idle_count(f.c), 1);
    /* a body over fetch_max_bytes: PR_ELIMIT, not retried */
    pr_http_client_destroy(f.c);
    f.o.fetch_max_bytes = 8;
    PT_REQUIRE(pr_http_client_create(&f.c, &f.o, NULL) == PR_OK);
    PT_EQ_ERR(pr_http_client_fetch(f.c, &res, &req, &e, pr_deadline_in(10000)), PR_ELIMIT);
    PT_CHECK(res.body == NULL && res.resp == NULL);
    PT_EQ_INT(e.code, PR_ELIMIT);
    PT_CHECK(strstr(e.msg, "fetch_max_bytes") != NULL);
    PT_EQ_INT(ts_log_count(f.s), 2);
    pr_http_result_deinit(&res);
    pr_url_deinit(&u);
    hr_end(&f);
}

PT_TEST(http_retry_send_header_lines) {
    hr_fx f;
    pr_http_response *r = NULL;
    const char *hdrs[] = { "Accept: text/event-stream", "X-Two:   padded  ", NULL };
    const char *bad[] = { "no colon here", NULL };
    char url[128], v[64];
    pr_err_info e;
    hr_opts(&f);
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    snprintf(url, sizeof url, "%s/echo", f.base);
    PT_EQ_ERR(pr_http_client_send(f.c, &r, "POST", url, hdrs, "hello", 5, NULL, pr_deadline_in(10000)), PR_OK);
    PT_EQ_INT(pr_http_status(r), 200);
    pr_http_response_destroy(r);
    PT_EQ_STR(hr_logged(&f, 0, "Accept", v, sizeof v), "text/event-stream");
    PT_EQ_STR(hr_logged(&f, 0, "X-Two", v, sizeof v), "padded");
    PT_EQ_STR(ts_log_get(f.s, 0)->body, "hello");
    PT_EQ_ERR(pr_http_client_send(f.c, &r, "GET", url, bad, NULL, 0, &e, pr_deadline_in(1000)), PR_EINVAL);
    PT_EQ_STR(e.msg, "http: header line \"no colon here\" has no colon");
    PT_EQ_ERR(pr_http_client_last_error(f.c, &e), PR_OK);
    PT_EQ_STR(e.msg, "http: header line \"no colon here\" has no colon");
    PT_EQ_ERR(pr_http_client_send(f.c, &r, "GET", "not a url", NULL, NULL, 0, &e, pr_deadline_in(1000)), PR_EINVAL);
    PT_EQ_ERR(e.code, PR_EINVAL);
    hr_end(&f);
}

PT_TEST(http_retry_per_request_policy_and_err) {
    hr_fx f;
    ts_step st[2];
    pr_http_request req;
    pr_http_response *r = NULL;
    pr_retry_policy off;
    pr_err_info mine;
    pr_url u;
    char url[128];
    hr_opts(&f);
    PT_REQUIRE(hr_start(&f, NULL) == PR_OK);
    st[0] = hr_step(503, NULL, NULL);
    st[1] = hr_step(200, NULL, NULL);
    hr_script(&f, "/t/a", st, 2);
    snprintf(url, sizeof url, "%s/t/a", f.base);
    memset(&u, 0, sizeof u);
    PT_REQUIRE(pr_url_parse(&u, url, strlen(url), NULL) == PR_OK);
    memset(&req, 0, sizeof req);
    memset(&off, 0, sizeof off);
    off.max_retries = PR_RETRY_OFF;
    req.url = &u;
    req.retry = &off;
    PT_EQ_ERR(pr_http_client_request(f.c, &r, &req, NULL, pr_deadline_in(10000)), PR_OK);
    PT_EQ_INT(pr_http_status(r), 503);
    pr_http_response_destroy(r);
    PT_EQ_INT(ts_log_count(f.s), 1);
    /* a failure's detail lands in the call's own err */
    pr_url_deinit(&u);
    memset(&u, 0, sizeof u);
    PT_REQUIRE(pr_url_parse(&u, "http://127.0.0.1:1/", 19, NULL) == PR_OK);
    memset(&mine, 0, sizeof mine);
    PT_EQ_ERR(pr_http_client_request(f.c, &r, &req, &mine, pr_deadline_in(5000)), PR_EIO);
    PT_EQ_INT(mine.code, PR_EIO);
    PT_EQ_INT(mine.sys_errno, ECONNREFUSED);
    pr_url_deinit(&u);
    hr_end(&f);
}

PT_TEST(http_retry_create_error_detail) {
    pr_http_client_opts o;
    pr_http_client *c = NULL;
    pr_err_info e;
    memset(&o, 0, sizeof o);
    o.ignore_env = 1;
#ifndef PRISTINE_NO_TLS
    o.tls.ca_file = "build/no-such-dir/ca.pem";
    PT_EQ_ERR(pr_http_client_create(&c, &o, &e), PR_EIO);
    PT_EQ_INT(e.code, PR_EIO);
    PT_EQ_INT(e.sys_errno, ENOENT);
    PT_EQ_STR(e.msg, "http: tls.ca_file: cannot open build/no-such-dir/ca.pem: No such file or directory");
    o.tls.ca_file = "tests/test_retry.c"; /* a file with no PEM in it */
    PT_EQ_ERR(pr_http_client_create(&c, &o, &e), PR_EINVAL);
    PT_EQ_STR(e.msg, "http: tls.ca_file: no certificate found in tests/test_retry.c");
    o.tls.ca_file = NULL;
#endif
    o.http_proxy = "socks5://127.0.0.1:1080";
    PT_EQ_ERR(pr_http_client_create(&c, &o, &e), PR_ENOTSUP);
    PT_EQ_STR(e.msg, "http: only http:// proxies are supported, not socks5://127.0.0.1:1080");
    o.http_proxy = "http://bad host:80";
    PT_EQ_ERR(pr_http_client_create(&c, &o, &e), PR_EINVAL);
    PT_CHECK(strncmp(e.msg, "http: proxy URL http://bad host:80: ", 36) == 0);
    o.http_proxy = NULL;
    o.retry.backoff.base_ms = -5;
    PT_EQ_ERR(pr_http_client_create(&c, &o, &e), PR_EINVAL);
    PT_EQ_STR(e.msg, "http: invalid retry policy (backoff or limits)");
    PT_CHECK(c == NULL);
}

#ifndef PRISTINE_NO_TLS
/* A system bundle with no certificate in it names itself at the first
   https request, instead of failing later as "unknown CA". */
static void hr_empty_bundle_child(void) {
    pr_http_client *c = NULL;
    pr_http_response *r = NULL;
    pr_listener *l = NULL;
    pr_err_info e;
    char url[64];
    int rc;
    setenv("SSL_CERT_FILE", "tests/test_retry.c", 1);
    pr_tls_global_cleanup();
    if (pr_tcp_listen(&l, "127.0.0.1", 0, 4, NULL) != PR_OK) _exit(2); /* TCP connects; TLS loads the bundle */
    snprintf(url, sizeof url, "https://127.0.0.1:%u/", (unsigned)pr_listener_port(l));
    if (pr_http_client_create(&c, &(pr_http_client_opts){ .ignore_env = 1,
                                                         .retry = { .max_retries = PR_RETRY_OFF } }, NULL) != PR_OK)
        _exit(3);
    rc = pr_http_client_get(c, &r, url, NULL, pr_deadline_in(2000));
    pr_http_client_last_error(c, &e);
    pr_http_client_destroy(c);
    pr_listener_destroy(l);
    if (rc != PR_EINVAL) fprintf(stderr, "empty bundle: %s %s\n", pt_errname(rc), e.msg);
    pr_sched_destroy();
    if (rc != PR_EINVAL) _exit(4);
    if (!strstr(e.msg, "no certificate found in tests/test_retry.c (SSL_CERT_FILE)")) _exit(5);
    _exit(0);
}

PT_TEST(http_retry_empty_system_bundle) {
    int sig = -1, status;
    pid_t pid;
    fflush(NULL);
    pid = fork();
    PT_REQUIRE(pid >= 0);
    if (pid == 0) hr_empty_bundle_child();
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    sig = WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
    PT_EQ_INT(sig, 0);
}
#endif

/* Allocation failures across a request that is retried twice leak nothing
   and end with a clean error or the final response. */
PT_TEST(http_retry_alloc_fail_sweep) {
    hr_fx f;
    ts_step st[3];
    long n;
    int ok = 0;
    for (n = 1; n < 400; n++) {
        int rc;
        hr_opts(&f);
        f.o.idempotency_header = "X-Idempotency-Key";
        f.o.retry_count_header = "X-Retry";
        if (hr_start(&f, NULL) != PR_OK) {
            hr_end(&f);
            continue;
        }
        st[0] = hr_step(503, NULL, "a");
        st[1] = hr_step(503, NULL, "b");
        st[2] = hr_step(200, NULL, "done");
        hr_script(&f, "/t/a", st, 3);
        pt_alloc_fail_nth(n);
        rc = hr_post(&f, "/t/a", "POST", NULL);
        pt_alloc_fail_nth(0);
        if (rc == 200) ok = 1;
        else if (rc != PR_ENOMEM && rc != 503 && rc != PR_ECLOSED && rc != PR_EIO && rc != PR_EPROTO)
            pt_fail(__FILE__, __LINE__, "fail-nth %ld: got %s", n, pt_errname(rc));
        hr_end(&f);
        if (ok && n > 200) break;
    }
    PT_CHECK(ok);
}

const pt_suite pt_suite_http_retry = { "http_retry", {
    PT_ENTRY(http_retry_503_then_200),
    PT_ENTRY(http_retry_exhausted_returns_last_response),
    PT_ENTRY(http_retry_jitter_shortens),
    PT_ENTRY(http_retry_status_table),
    PT_ENTRY(http_retry_x_should_retry),
    PT_ENTRY(http_retry_server_hints),
    PT_ENTRY(http_retry_after_cap_option),
    PT_ENTRY(http_retry_hint_then_backoff_sequence),
    PT_ENTRY(http_retry_connection_refused),
    PT_ENTRY(http_retry_timeouts_are_retried),
    PT_ENTRY(http_retry_reset_and_close_without_response),
    PT_ENTRY(http_retry_idempotency_key),
    PT_ENTRY(http_retry_off_and_headers),
    PT_ENTRY(http_retry_non_replayable_body),
    PT_ENTRY(http_retry_never_sleeps_past_deadline),
    PT_ENTRY(http_retry_cancel_during_sleep),
    PT_ENTRY(http_retry_events),
    PT_ENTRY(http_retry_breaker_opens),
    PT_ENTRY(http_retry_connection_caps_and_sharing),
    PT_ENTRY(http_retry_slot_wait_deadline),
    PT_ENTRY(http_retry_fetch_final_failure_keeps_body),
    PT_ENTRY(http_retry_send_header_lines),
    PT_ENTRY(http_retry_per_request_policy_and_err),
    PT_ENTRY(http_retry_create_error_detail),
#ifndef PRISTINE_NO_TLS
    PT_ENTRY(http_retry_empty_system_bundle),
#endif
    PT_ENTRY(http_retry_alloc_fail_sweep),
    {0, 0} } };
