/* ds_fail: when the network says no to a Durable Streams read or
   consumer. A cause retrying cannot cure (a refused certificate, a peer
   that does not speak TLS, a name that does not exist, a status that is
   not retryable, an SSE answer that is not text/event-stream) ends the
   read at once with its code; a transient one (refused, 503) is tried
   open_attempts times before the read has had an answer, then its code
   comes back, with PR_FOREVER too. The servers: our test server and
   scripted raw listeners on 127.0.0.1 for the failing cases (the client's
   ATTEMPT events count the connections), the reference server (test_ds.c
   starts it) for pr_ds_read_all. Waits go through the handle's retry
   hooks: instant, recorded, with a fixed random number (the producer's
   flush test waits for real: its point is when the flush returns). */

#define DSF_DEF_OPEN_ATTEMPTS 8 /* pr_ds_read_opts.open_attempts 0 */

typedef struct dsf_fx {
    pr_http_client *client;
    int attempts;               /* connection attempts (the client's ATTEMPT events) */
    int64_t sleeps[64];
    int nsleeps;
} dsf_fx;

static void dsf_on_http(const pr_http_event *ev, void *ud) {
    if (ev->kind == PR_HTTP_EVENT_ATTEMPT) ((dsf_fx *)ud)->attempts++;
}

static int dsf_sleep(int64_t delay, int64_t deadline, void *ud) {
    dsf_fx *f = (dsf_fx *)ud;
    (void)deadline;
    if (f->nsleeps < 64) f->sleeps[f->nsleeps] = delay;
    f->nsleeps++;
    return pr_is_canceled() ? PR_ECANCELED : PR_OK;
}

/* Full jitter with r = 0.5: each wait is half its nominal delay, exactly. */
static double dsf_random(void *ud) {
    (void)ud;
    return 0.5;
}

/* A client of the fixture (its attempts counted), trusting ca_pem (NULL = the test CA). */
static int dsf_client(dsf_fx *f, const char *ca_pem) {
    pr_http_client_opts o;
    memset(f, 0, sizeof *f);
    memset(&o, 0, sizeof o);
    o.ignore_env = 1;
    o.max_redirects = 5;
    o.observer.on_event = dsf_on_http;
    o.observer.user_data = f;
#ifndef PRISTINE_NO_TLS
    o.tls.ca_pem = ca_pem ? ca_pem : tls_file("ca.crt");
#else
    (void)ca_pem;
#endif
    return pr_http_client_create(&f->client, &o, NULL);
}

static pr_ds *dsf_handle(dsf_fx *f, const char *url) {
    pr_ds_opts o;
    pr_ds *ds = NULL;
    memset(&o, 0, sizeof o);
    o.client = f->client;
    o.content_type = "text/plain";
    o.retry.hooks.sleep = dsf_sleep;
    o.retry.hooks.random = dsf_random;
    o.retry.hooks.user_data = f;
    return pr_ds_open(&ds, url, &o, NULL) == PR_OK ? ds : NULL;
}

/* One pr_ds_read_next in a task (a hang guard: a read still trying after
   10 s is a failure, and is cancelled). */
typedef struct dsf_run {
    pr_ds *ds;
    pr_ds_read_opts ro;
    const char *offset;
    int64_t deadline;
    int rc;
    pr_err_info e;
} dsf_run;

static int dsf_run_task(void *arg) {
    dsf_run *x = (dsf_run *)arg;
    pr_ds_read *rd = NULL;
    pr_ds_chunk c;
    if ((x->rc = pr_ds_read_open(&rd, x->ds, x->offset, &x->ro, &x->e)) != PR_OK) return 0;
    x->rc = pr_ds_read_next(rd, &c, x->deadline);
    pr_ds_read_last_error(rd, &x->e);
    pr_ds_read_destroy(rd);
    return 0;
}

static int dsf_read(pr_ds *ds, int live, int open_attempts, int64_t deadline, pr_err_info *e) {
    dsf_run x;
    pr_task *t;
    memset(&x, 0, sizeof x);
    x.ds = ds;
    x.ro.live = live;
    x.ro.open_attempts = open_attempts;
    x.offset = live == PR_DS_LIVE_NONE ? "-1" : "now"; /* live: its own request first */
    x.deadline = deadline;
    x.rc = 1;
    if (pr_go(&t, dsf_run_task, &x, NULL) != PR_OK) return PR_ENOMEM;
    if (pr_join(t, NULL, pr_deadline_in(10000)) != PR_OK) {
        pt_fail(__FILE__, __LINE__, "a read (mode %d) still trying after 10 s, want it to give up", live);
        pr_cancel(t);
        pr_join(t, NULL, PR_FOREVER);
    }
    if (e) *e = x.e;
    return x.rc;
}

static const int dsf_modes[] = { PR_DS_LIVE_NONE, PR_DS_LIVE_LONG_POLL, PR_DS_LIVE_SSE };

/* A port nothing listens on. */
static uint16_t dsf_closed_port(void) {
    pr_listener *l = NULL;
    uint16_t port;
    if (pr_tcp_listen(&l, "127.0.0.1", 0, 1, NULL) != PR_OK) return 0;
    port = pr_listener_port(l);
    pr_listener_destroy(l);
    return port;
}

/* Refused connections: PR_EIO with ECONNREFUSED after exactly
   open_attempts connects (the default too), with PR_FOREVER as with a
   deadline, in every mode. */
PT_TEST(ds_fail_refused_is_tried_open_attempts_times) {
    dsf_fx f;
    pr_ds *ds;
    pr_err_info e;
    char url[96];
    uint16_t port = dsf_closed_port();
    size_t m;
    PT_REQUIRE(port != 0);
    PT_REQUIRE(dsf_client(&f, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/s", (unsigned)port);
    PT_REQUIRE((ds = dsf_handle(&f, url)) != NULL);
    for (m = 0; m < sizeof dsf_modes / sizeof dsf_modes[0]; m++) {
        f.attempts = f.nsleeps = 0;
        PT_EQ_ERR(dsf_read(ds, dsf_modes[m], 3, PR_FOREVER, &e), PR_EIO);
        PT_EQ_ERR(e.code, PR_EIO);
        PT_EQ_INT(e.sys_errno, ECONNREFUSED);
        PT_EQ_INT(f.attempts, 3);
        PT_EQ_INT(f.nsleeps, 2);
        f.attempts = 0;
        PT_EQ_ERR(dsf_read(ds, dsf_modes[m], 3, pr_deadline_in(5000), &e), PR_EIO);
        PT_EQ_INT(e.sys_errno, ECONNREFUSED);
        PT_EQ_INT(f.attempts, 3);
        f.attempts = 0;
        PT_EQ_ERR(dsf_read(ds, dsf_modes[m], 0, PR_FOREVER, &e), PR_EIO);
        PT_EQ_INT(f.attempts, DSF_DEF_OPEN_ATTEMPTS);
    }
    pr_ds_destroy(ds);
    pr_http_client_destroy(f.client);
}

/* A producer whose server refuses: its flush says why (PR_EIO with
   ECONNREFUSED, in pr_ds_producer_last_error) as soon as the batch's next
   send would start after the deadline, instead of PR_ETIMEDOUT at the
   deadline; the batch goes on (it may be delivered later). */
PT_TEST(ds_fail_producer_flush_says_why_before_deadline) {
    pr_ds *ds;
    pr_ds_producer *p;
    pr_ds_producer_opts o;
    pr_ds_producer_stats st;
    pr_err_info e;
    char url[96];
    uint16_t port = dsf_closed_port();
    PT_REQUIRE(port != 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/s", (unsigned)port);
    PT_REQUIRE(pr_ds_open(&ds, url, NULL, NULL) == PR_OK); /* the handle's own backoff, real sleeps */
    memset(&o, 0, sizeof o);
    o.producer_id = "p1";
    PT_REQUIRE(pr_ds_producer_create(&p, ds, &o, NULL) == PR_OK);
    PT_EQ_ERR(pr_ds_producer_append(p, "a", 1, pr_deadline_in(1000)), PR_OK);
    PT_EQ_ERR(pr_ds_producer_flush(p, pr_deadline_in(5000)), PR_EIO);
    PT_EQ_ERR(pr_ds_producer_last_error(p, &e), PR_OK);
    PT_EQ_ERR(e.code, PR_EIO);
    PT_EQ_INT(e.sys_errno, ECONNREFUSED);
    PT_EQ_ERR(pr_ds_producer_stats_get(p, &st), PR_OK);
    PT_EQ_INT(st.inflight_batches, 1); /* not given up: it goes again */
    PT_EQ_INT(st.abandoned_batches, 0);
    pr_ds_producer_destroy(p);
    pr_ds_destroy(ds);
}

/* A name that does not exist (the resolver answers without asking, so no
   DNS traffic): PR_EDNS at once, one attempt, in every mode. */
PT_TEST(ds_fail_name_that_does_not_exist_is_final) {
    dsf_fx f;
    pr_ds *ds;
    pr_err_info e;
    size_t m;
    PT_REQUIRE(dsf_client(&f, NULL) == PR_OK);
    PT_REQUIRE((ds = dsf_handle(&f, "http://no-such-host.invalid:4437/v1/s")) != NULL);
    __atomic_store_n(&pr__net_test_dns_offline, 1, __ATOMIC_SEQ_CST);
    for (m = 0; m < sizeof dsf_modes / sizeof dsf_modes[0]; m++) {
        f.attempts = 0;
        PT_EQ_ERR(dsf_read(ds, dsf_modes[m], 0, PR_FOREVER, &e), PR_EDNS);
        PT_EQ_ERR(e.code, PR_EDNS);
        PT_CHECK(e.dns_error != 0);
        PT_EQ_INT(f.attempts, 1);
    }
    PT_EQ_INT(net_wait_jobs_drained(20000), 0);
    __atomic_store_n(&pr__net_test_dns_offline, 0, __ATOMIC_SEQ_CST);
    pr_ds_destroy(ds);
    pr_http_client_destroy(f.client);
}

#ifndef PRISTINE_NO_TLS
/* https to a server that speaks plain HTTP, a certificate from an unknown
   CA, a certificate for another name: PR_ETLS at once, one attempt. */
PT_TEST(ds_fail_tls_refusals_are_final) {
    static const char *const certs[] = { "unknown", "wrong" };
    dsf_fx f;
    pt_plain pl;
    ts_server *s;
    ts_opts so;
    pr_ds *ds;
    pr_err_info e;
    char url[96];
    size_t k, m;
    TLS_NEED_FIXTURES();
    PT_REQUIRE(dsf_client(&f, NULL) == PR_OK);
    /* a peer that does not speak TLS */
    PT_REQUIRE(pt_plain_start(&pl) == PR_OK);
    snprintf(url, sizeof url, "https://127.0.0.1:%u/v1/s", (unsigned)pt_plain_port(&pl));
    PT_REQUIRE((ds = dsf_handle(&f, url)) != NULL);
    for (m = 0; m < sizeof dsf_modes / sizeof dsf_modes[0]; m++) {
        f.attempts = pl.accepts = 0;
        PT_EQ_ERR(dsf_read(ds, dsf_modes[m], 0, PR_FOREVER, &e), PR_ETLS);
        PT_EQ_ERR(e.code, PR_ETLS);
        PT_EQ_INT(f.attempts, 1);
        PT_EQ_INT(pl.accepts, 1);
    }
    pr_ds_destroy(ds);
    pt_plain_stop(&pl);
    /* a certificate not trusted, a certificate for another name */
    for (k = 0; k < sizeof certs / sizeof certs[0]; k++) {
        char crt[32], key[32];
        memset(&so, 0, sizeof so);
        snprintf(crt, sizeof crt, "%s.crt", certs[k]);
        snprintf(key, sizeof key, "%s.key", certs[k]);
        so.tls_cert_pem = tls_file(crt);
        so.tls_key_pem = tls_file(key);
        PT_REQUIRE(so.tls_cert_pem && so.tls_key_pem);
        PT_REQUIRE(ts_start(&s, &so) == PR_OK);
        snprintf(url, sizeof url, "https://localhost:%u/v1/s", (unsigned)ts_port(s));
        PT_REQUIRE((ds = dsf_handle(&f, url)) != NULL);
        for (m = 0; m < sizeof dsf_modes / sizeof dsf_modes[0]; m++) {
            f.attempts = 0;
            PT_EQ_ERR(dsf_read(ds, dsf_modes[m], 0, PR_FOREVER, &e), PR_ETLS);
            PT_EQ_ERR(e.code, PR_ETLS);
            PT_CHECK(e.tls_error != 0);
            PT_EQ_INT(f.attempts, 1);
        }
        pr_ds_destroy(ds);
        ts_stop(s);
    }
    pr_http_client_destroy(f.client);
}
#endif

/* A server that keeps answering 503: PR_EHTTP 503 (PR_DS_SERVER_ERROR)
   after open_attempts requests, in every mode; a 429 likewise. */
PT_TEST(ds_fail_persistent_503_is_tried_open_attempts_times) {
    static const int statuses[] = { 503, 429 };
    dsf_fx f;
    ts_server *s;
    ts_step st;
    pr_ds *ds;
    pr_err_info e;
    char url[96];
    size_t m, k, before;
    PT_REQUIRE(dsf_client(&f, NULL) == PR_OK);
    PT_REQUIRE(ts_start(&s, NULL) == PR_OK);
    for (k = 0; k < 2; k++) {
        ts_script_clear(s);
        memset(&st, 0, sizeof st);
        st.status = statuses[k];
        PT_EQ_ERR(ts_script_default(s, "/busy", &st), PR_OK);
        snprintf(url, sizeof url, "http://127.0.0.1:%u/busy", (unsigned)ts_port(s));
        PT_REQUIRE((ds = dsf_handle(&f, url)) != NULL);
        for (m = 0; m < sizeof dsf_modes / sizeof dsf_modes[0]; m++) {
            before = ts_log_count(s);
            PT_EQ_ERR(dsf_read(ds, dsf_modes[m], 3, PR_FOREVER, &e), PR_EHTTP);
            PT_EQ_INT(e.http_status, statuses[k]);
            PT_EQ_INT(e.meaning, k == 0 ? PR_DS_SERVER_ERROR : PR_DS_RATE_LIMITED);
            PT_EQ_INT((int)(ts_log_count(s) - before), 3);
            before = ts_log_count(s);
            PT_EQ_ERR(dsf_read(ds, dsf_modes[m], 0, PR_FOREVER, &e), PR_EHTTP);
            PT_EQ_INT((int)(ts_log_count(s) - before), DSF_DEF_OPEN_ATTEMPTS);
        }
        pr_ds_destroy(ds);
    }
    ts_stop(s);
    pr_http_client_destroy(f.client);
}

/* Once the read has had an answer, failures in a row are bounded by
   max_failures (the first answer starts the count afresh): a long-poll
   read whose server turns to 503 after the catch-up returns PR_EHTTP 503
   after exactly max_failures requests. */
PT_TEST(ds_fail_max_failures_bounds_a_live_read) {
    dsf_fx f;
    ts_server *s;
    ts_step st[2];
    pr_ds *ds;
    pr_ds_read *rd;
    pr_ds_read_opts ro;
    pr_ds_chunk c;
    pr_err_info e;
    char url[96];
    size_t before;
    PT_REQUIRE(dsf_client(&f, NULL) == PR_OK);
    PT_REQUIRE(ts_start(&s, NULL) == PR_OK);
    memset(st, 0, sizeof st);
    st[0].headers = "Stream-Next-Offset: 2\r\nStream-Up-To-Date: true\r\n";
    st[0].body = "hi";
    st[1].status = 503;
    PT_EQ_ERR(ts_script(s, "/flaky", st, 1), PR_OK);
    PT_EQ_ERR(ts_script_default(s, "/flaky", &st[1]), PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/flaky", (unsigned)ts_port(s));
    PT_REQUIRE((ds = dsf_handle(&f, url)) != NULL);
    memset(&ro, 0, sizeof ro);
    ro.live = PR_DS_LIVE_LONG_POLL;
    ro.open_attempts = 2;
    ro.max_failures = 5;
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, "-1", &ro, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(c.up_to_date, 1);
    before = ts_log_count(s);
    PT_EQ_ERR(pr_ds_read_next(rd, &c, PR_FOREVER), PR_EHTTP);
    PT_EQ_INT((int)(ts_log_count(s) - before), 5);
    PT_EQ_ERR(pr_ds_read_last_error(rd, &e), PR_OK);
    PT_EQ_INT(e.http_status, 503);
    PT_EQ_INT(e.meaning, PR_DS_SERVER_ERROR);
    PT_EQ_STR(pr_ds_read_offset(rd, NULL), "2"); /* it resumes there */
    /* used up: each later call tries once */
    before = ts_log_count(s);
    PT_EQ_ERR(pr_ds_read_next(rd, &c, PR_FOREVER), PR_EHTTP);
    PT_EQ_INT((int)(ts_log_count(s) - before), 1);
    pr_ds_read_destroy(rd);
    pr_ds_destroy(ds);
    ts_stop(s);
    pr_http_client_destroy(f.client);
}

/* Statuses that are the answer (400, 401, 403, 404, 410) and an SSE
   answer that is not text/event-stream end the read at once: one request. */
PT_TEST(ds_fail_final_answers_end_the_read_at_once) {
    static const int statuses[] = { 400, 401, 403, 404, 410 };
    static const int meanings[] = { PR_DS_BAD_REQUEST, PR_DS_UNEXPECTED_STATUS, PR_DS_UNEXPECTED_STATUS,
                                    PR_DS_NOT_FOUND, PR_DS_GONE };
    dsf_fx f;
    ts_server *s;
    ts_step st;
    pr_ds *ds;
    pr_err_info e;
    char url[96];
    size_t m, k, before;
    PT_REQUIRE(dsf_client(&f, NULL) == PR_OK);
    PT_REQUIRE(ts_start(&s, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/no", (unsigned)ts_port(s));
    PT_REQUIRE((ds = dsf_handle(&f, url)) != NULL);
    for (k = 0; k < sizeof statuses / sizeof statuses[0]; k++) {
        ts_script_clear(s);
        memset(&st, 0, sizeof st);
        st.status = statuses[k];
        PT_EQ_ERR(ts_script_default(s, "/no", &st), PR_OK);
        for (m = 0; m < sizeof dsf_modes / sizeof dsf_modes[0]; m++) {
            before = ts_log_count(s);
            PT_EQ_ERR(dsf_read(ds, dsf_modes[m], 0, PR_FOREVER, &e), PR_EHTTP);
            PT_EQ_INT(e.http_status, statuses[k]);
            if (statuses[k] != 401 && statuses[k] != 403) PT_EQ_INT(e.meaning, meanings[k]);
            PT_EQ_INT((int)(ts_log_count(s) - before), 1);
        }
    }
    /* an SSE read answered 200 text/plain */
    ts_script_clear(s);
    memset(&st, 0, sizeof st);
    st.headers = "Content-Type: text/plain\r\nStream-Next-Offset: 1\r\n";
    st.body = "x";
    PT_EQ_ERR(ts_script_default(s, "/no", &st), PR_OK);
    before = ts_log_count(s);
    PT_EQ_ERR(dsf_read(ds, PR_DS_LIVE_SSE, 0, PR_FOREVER, &e), PR_EPROTO);
    PT_EQ_INT((int)(ts_log_count(s) - before), 1);
    pr_ds_destroy(ds);
    ts_stop(s);
    pr_http_client_destroy(f.client);
}

/* Retry-After (seconds) and retry-after-ms on a 503 or 429 are the wait
   itself, not a minimum nor a base for jitter; one over the cap waits the
   cap (60 s). */
PT_TEST(ds_fail_server_delays_used_as_given) {
    dsf_fx f;
    ts_server *s;
    ts_step st[4];
    pr_ds *ds;
    pr_err_info e;
    char url[96];
    size_t m;
    PT_REQUIRE(dsf_client(&f, NULL) == PR_OK);
    PT_REQUIRE(ts_start(&s, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/later", (unsigned)ts_port(s));
    PT_REQUIRE((ds = dsf_handle(&f, url)) != NULL);
    for (m = 0; m < sizeof dsf_modes / sizeof dsf_modes[0]; m++) {
        ts_script_clear(s);
        memset(st, 0, sizeof st);
        st[0].status = 503;
        st[0].headers = "Retry-After: 7\r\n";
        st[1].status = 429;
        st[1].headers = "retry-after-ms: 1500\r\n";
        st[2].status = 503;
        st[2].headers = "Retry-After: 3600\r\n";
        st[3].status = 200;
        st[3].headers = dsf_modes[m] == PR_DS_LIVE_SSE ? "Content-Type: text/event-stream\r\n"
                                                       : "Stream-Next-Offset: 2\r\nStream-Up-To-Date: true\r\n";
        st[3].body = dsf_modes[m] == PR_DS_LIVE_SSE
                         ? "event: data\ndata: hi\n\nevent: control\ndata: {\"streamNextOffset\":\"2\",\"upToDate\":true}\n\n"
                         : "hi";
        PT_EQ_ERR(ts_script(s, "/later", st, 4), PR_OK);
        f.nsleeps = 0;
        PT_EQ_ERR(dsf_read(ds, dsf_modes[m], 0, PR_FOREVER, &e), PR_OK);
        PT_EQ_INT(f.nsleeps, 3);
        PT_EQ_INT(f.sleeps[0], 7000);
        PT_EQ_INT(f.sleeps[1], 1500);
        PT_EQ_INT(f.sleeps[2], 60000);
    }
    pr_ds_destroy(ds);
    ts_stop(s);
    pr_http_client_destroy(f.client);
}

/* An SSE server that accepts and drops: the backoff grows from one
   connection to the next, however long each lasted, until one lasts
   healthy_ms; then it starts afresh. Connections that each last
   healthy_ms are followed at once. */
PT_TEST(ds_fail_backoff_resets_only_after_a_healthy_period) {
    dsf_fx f;
    ts_server *s;
    ts_step st[2];
    pr_ds *ds;
    pr_ds_read *rd;
    pr_ds_read_opts ro;
    pr_ds_chunk c;
    char url[160];
    int i, rc;
    PT_REQUIRE(dsf_client(&f, NULL) == PR_OK);
    PT_REQUIRE(ts_start(&s, NULL) == PR_OK);
    /* connections of 300 ms ending cleanly, sse_short_ms 200: each "lasted", none was healthy */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/sse?events=0&comment=1&hold_ms=300", (unsigned)ts_port(s));
    PT_REQUIRE((ds = dsf_handle(&f, url)) != NULL);
    memset(&ro, 0, sizeof ro);
    ro.live = PR_DS_LIVE_SSE;
    ro.sse_short_ms = 200;
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, "now", &ro, NULL), PR_OK);
    for (i = 0; i < 10 && f.nsleeps < 4; i++) {
        rc = pr_ds_read_next(rd, &c, pr_deadline_in(3000));
        PT_CHECK(rc == PR_EIO || rc == PR_ETIMEDOUT); /* EIO: a wait would end past the deadline */
    }
    PT_REQUIRE(f.nsleeps >= 4);
    for (i = 1; i < 4; i++) PT_CHECK(f.sleeps[i] > f.sleeps[i - 1]);
    pr_ds_read_destroy(rd);
    /* the same with healthy_ms 250: each connection was healthy, each end is followed at once */
    f.nsleeps = 0;
    ro.healthy_ms = 250;
    {
        size_t before = ts_log_count(s);
        PT_EQ_ERR(pr_ds_read_open(&rd, ds, "now", &ro, NULL), PR_OK);
        PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(1500)), PR_ETIMEDOUT);
        PT_CHECK(ts_log_count(s) - before >= 3);
        PT_EQ_INT(f.nsleeps, 0);
        pr_ds_read_destroy(rd);
    }
    pr_ds_destroy(ds);
    /* short drops (d0, d1, d2), one connection that lasts (healthy, then
       cut by the idle limit), short drops again: d0, d1 */
    memset(st, 0, sizeof st);
    st[0].headers = "Content-Type: text/event-stream\r\n";
    st[0].body = ":\n";
    st[0].count = 3;
    st[1] = st[0];
    st[1].body = ":\n:\n";
    st[1].stall_body = 1;
    st[1].count = 1;
    PT_EQ_ERR(ts_script(s, "/flap", st, 2), PR_OK);
    PT_EQ_ERR(ts_script_default(s, "/flap", &st[0]), PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/flap", (unsigned)ts_port(s));
    PT_REQUIRE((ds = dsf_handle(&f, url)) != NULL);
    ro.healthy_ms = 250;
    ro.idle_timeout_ms = 400;
    f.nsleeps = 0;
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, "now", &ro, NULL), PR_OK);
    for (i = 0; i < 10 && f.nsleeps < 5; i++) (void)pr_ds_read_next(rd, &c, pr_deadline_in(3000));
    PT_REQUIRE(f.nsleeps >= 5);
    PT_CHECK(f.sleeps[0] < f.sleeps[1] && f.sleeps[1] < f.sleeps[2]);
    PT_CHECK(f.sleeps[3] >= f.sleeps[0] - 1 && f.sleeps[3] <= f.sleeps[0]); /* afresh (to the ms) */
    PT_CHECK(f.sleeps[4] >= f.sleeps[1] - 1 && f.sleeps[4] <= f.sleeps[1]);
    pr_ds_read_destroy(rd);
    pr_ds_destroy(ds);
    ts_stop(s);
    pr_http_client_destroy(f.client);
}

/* The consumer stops on a final cause with its code (the wait returns it,
   last_error has it), and on refused connections once open_attempts are
   used up (it reconnected for ever). */
typedef struct dsf_cons {
    int batches;
} dsf_cons;

static int dsf_on_batch(const pr_ds_chunk *c, void *ud) {
    (void)c;
    ((dsf_cons *)ud)->batches++;
    return 0;
}

PT_TEST(ds_fail_consumer_stops_on_a_final_cause) {
    dsf_fx f;
    pr_ds *ds;
    pr_ds_consumer *c;
    pr_ds_consumer_opts co;
    pr_err_info e;
    dsf_cons k;
    char url[96];
    uint16_t port = dsf_closed_port();
    int live;
    PT_REQUIRE(port != 0);
    PT_REQUIRE(dsf_client(&f, NULL) == PR_OK);
    memset(&k, 0, sizeof k);
    for (live = PR_DS_LIVE_LONG_POLL; live <= PR_DS_LIVE_SSE; live++) {
        /* a name that does not exist */
        PT_REQUIRE((ds = dsf_handle(&f, "http://no-such-host.invalid:4437/v1/s")) != NULL);
        __atomic_store_n(&pr__net_test_dns_offline, 1, __ATOMIC_SEQ_CST);
        memset(&co, 0, sizeof co);
        co.live = live;
        co.on_batch = dsf_on_batch;
        co.user_data = &k;
        f.attempts = 0;
        PT_EQ_ERR(pr_ds_consumer_start(&c, ds, &co, NULL), PR_OK);
        PT_EQ_ERR(pr_ds_consumer_wait(c, pr_deadline_in(10000)), PR_EDNS);
        PT_EQ_ERR(pr_ds_consumer_last_error(c, &e), PR_OK);
        PT_EQ_ERR(e.code, PR_EDNS);
        PT_EQ_INT(f.attempts, 1);
        pr_ds_consumer_stop(c);
        PT_EQ_INT(net_wait_jobs_drained(20000), 0);
        __atomic_store_n(&pr__net_test_dns_offline, 0, __ATOMIC_SEQ_CST);
        pr_ds_destroy(ds);
        /* refused: open_attempts, then the consumer stops with the cause */
        snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/s", (unsigned)port);
        PT_REQUIRE((ds = dsf_handle(&f, url)) != NULL);
        co.open_attempts = 4;
        f.attempts = 0;
        PT_EQ_ERR(pr_ds_consumer_start(&c, ds, &co, NULL), PR_OK);
        PT_EQ_ERR(pr_ds_consumer_wait(c, pr_deadline_in(10000)), PR_EIO);
        PT_EQ_ERR(pr_ds_consumer_last_error(c, &e), PR_OK);
        PT_EQ_ERR(e.code, PR_EIO);
        PT_EQ_INT(e.sys_errno, ECONNREFUSED);
        PT_EQ_INT(f.attempts, 4);
        pr_ds_consumer_stop(c);
        pr_ds_destroy(ds);
    }
    PT_EQ_INT(k.batches, 0);
    pr_http_client_destroy(f.client);
}

/* A connection cut in the middle of the answer (in its head, or in its
   body) is the network's failure, not a malformed answer: with the
   client's retries used up, the read hands it back as PR_EIO and stays
   usable, and the consumer reconnects instead of stopping. (Found by the
   soak: a truncation fault ended a DS reader with PR_EPROTO.) */
PT_TEST(ds_fail_cut_answer_is_transient) {
    dsf_fx f;
    ts_server *s;
    ts_step st[4];
    pr_ds *ds;
    pr_ds_opts o;
    pr_ds_read *rd;
    pr_ds_read_opts ro;
    pr_ds_consumer *c;
    pr_ds_consumer_opts co;
    pr_ds_chunk ch;
    pr_err_info e;
    dsf_cons k;
    char url[96];
    int cut;
    PT_REQUIRE(dsf_client(&f, NULL) == PR_OK);
    PT_REQUIRE(ts_start(&s, NULL) == PR_OK);
    for (cut = 1; cut <= 2; cut++) {
        memset(st, 0, sizeof st);
        st[0].headers = "Stream-Next-Offset: 2\r\nStream-Up-To-Date: true\r\n";
        st[0].body = "hi";
        st[1].headers = "Stream-Next-Offset: 4\r\n";
        st[1].body = "yo";
        st[1].close_mid = cut; /* cut in the head, then in the body */
        st[2] = st[1];
        st[2].close_mid = 0;
        st[2].headers = "Stream-Next-Offset: 4\r\nStream-Closed: true\r\n";
        ts_script_clear(s);
        PT_EQ_ERR(ts_script(s, "/cut", st, 3), PR_OK);
        snprintf(url, sizeof url, "http://127.0.0.1:%u/cut", (unsigned)ts_port(s));
        memset(&o, 0, sizeof o);
        o.client = f.client;
        o.content_type = "text/plain";
        o.retry.max_retries = PR_RETRY_OFF; /* the client hands the cut back at once */
        o.retry.hooks.sleep = dsf_sleep;
        o.retry.hooks.random = dsf_random;
        o.retry.hooks.user_data = &f;
        PT_EQ_ERR(pr_ds_open(&ds, url, &o, NULL), PR_OK);
        memset(&ro, 0, sizeof ro);
        ro.live = PR_DS_LIVE_LONG_POLL;
        PT_EQ_ERR(pr_ds_read_open(&rd, ds, "-1", &ro, NULL), PR_OK);
        PT_EQ_ERR(pr_ds_read_next(rd, &ch, pr_deadline_in(5000)), PR_OK);
        PT_EQ_INT((int)ch.len, 2);
        PT_EQ_ERR(pr_ds_read_next(rd, &ch, pr_deadline_in(5000)), PR_EIO);
        PT_EQ_ERR(pr_ds_read_last_error(rd, &e), PR_OK);
        PT_EQ_ERR(e.code, PR_EIO);
        PT_EQ_ERR(pr_ds_read_next(rd, &ch, pr_deadline_in(5000)), PR_OK); /* usable: it goes on from 2 */
        PT_EQ_INT((int)ch.len, 2);
        PT_EQ_INT(ch.closed, 1);
        pr_ds_read_destroy(rd);
        pr_ds_destroy(ds);
        /* the consumer, with 2 retries in the client: the cut 3 times in a row
           outlasts them; it reconnects and reads to the close */
        st[1].count = 3;
        ts_script_clear(s);
        PT_EQ_ERR(ts_script(s, "/cut", st, 3), PR_OK);
        o.retry.max_retries = 2;
        PT_EQ_ERR(pr_ds_open(&ds, url, &o, NULL), PR_OK);
        memset(&k, 0, sizeof k);
        memset(&co, 0, sizeof co);
        co.live = PR_DS_LIVE_LONG_POLL;
        co.on_batch = dsf_on_batch;
        co.user_data = &k;
        PT_EQ_ERR(pr_ds_consumer_start(&c, ds, &co, NULL), PR_OK);
        PT_EQ_ERR(pr_ds_consumer_wait(c, pr_deadline_in(10000)), PR_ECLOSED);
        PT_EQ_INT(k.batches, 2);
        pr_ds_consumer_stop(c);
        pr_ds_destroy(ds);
    }
    ts_stop(s);
    pr_http_client_destroy(f.client);
}

/* ---- pr_ds_read_all ---- */

/* Everything up to the tail, in one call, against the reference server:
   an empty stream, one append, many appends, a closed stream (closed set),
   a JSON stream (one array of every message), a missing stream (404), and
   a stream over max_bytes (PR_ELIMIT). */
PT_TEST(ds_read_all_reads_to_the_tail) {
    ds_fx f;
    pr_ds *ds, *js, *none;
    pr_ds_result res;
    pr_buf out, next;
    pr_err_info e;
    int closed = -1, i;
    char piece[16];
    memset(&res, 0, sizeof res);
    pr_buf_init(&out);
    pr_buf_init(&next);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((ds = ds_handle(&f, "/v1/all/text", "text/plain")) != NULL);
    PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    /* empty */
    PT_EQ_ERR(pr_ds_read_all(ds, NULL, 0, &out, &next, &closed, &e, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(out.len, 0);
    PT_EQ_INT(closed, 0);
    PT_CHECK(next.len > 0 && next.data && strlen(next.data) == next.len);
    /* one append, then from that offset nothing more */
    PT_EQ_ERR(pr_ds_append(ds, "hello", 5, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_read_all(ds, "-1", 0, &out, &next, NULL, &e, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(out.len, 5);
    PT_EQ_MEM(out.data, "hello", 5);
    {
        char at[128];
        snprintf(at, sizeof at, "%s", next.data);
        PT_EQ_ERR(pr_ds_read_all(ds, at, 0, &out, &next, NULL, &e, pr_deadline_in(5000)), PR_OK);
        PT_EQ_INT(out.len, 0);
        PT_EQ_STR(next.data, at);
    }
    /* many appends */
    for (i = 0; i < 50; i++) {
        snprintf(piece, sizeof piece, "<%02d>", i);
        PT_EQ_ERR(pr_ds_append(ds, piece, 4, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    }
    PT_EQ_ERR(pr_ds_read_all(ds, "-1", 0, &out, &next, &closed, &e, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(out.len, 5 + 50 * 4);
    PT_EQ_MEM(out.data + 5, "<00><01>", 8);
    PT_EQ_MEM(out.data + out.len - 4, "<49>", 4);
    PT_EQ_INT(closed, 0);
    /* over the limit */
    PT_EQ_ERR(pr_ds_read_all(ds, "-1", 100, &out, &next, NULL, &e, pr_deadline_in(5000)), PR_ELIMIT);
    PT_EQ_ERR(e.code, PR_ELIMIT);
    /* closed */
    PT_EQ_ERR(pr_ds_close(ds, NULL, 0, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_read_all(ds, "-1", 0, &out, &next, &closed, &e, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(out.len, 5 + 50 * 4);
    PT_EQ_INT(closed, 1);
    /* JSON: one array of every message */
    PT_REQUIRE((js = ds_handle(&f, "/v1/all/json", "application/json")) != NULL);
    PT_EQ_ERR(pr_ds_create(js, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_read_all(js, "-1", 0, &out, &next, NULL, &e, pr_deadline_in(5000)), PR_OK);
    PT_EQ_STR(out.data, "[]");
    PT_EQ_ERR(pr_ds_append(js, "{\"a\":1}", 7, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_append(js, "[2,3]", 5, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_read_all(js, "-1", 0, &out, &next, NULL, &e, pr_deadline_in(5000)), PR_OK);
    PT_EQ_STR(out.data, "[{\"a\":1},[2,3]]");
    /* missing */
    PT_REQUIRE((none = ds_handle(&f, "/v1/all/none", "text/plain")) != NULL);
    PT_EQ_ERR(pr_ds_read_all(none, "-1", 0, &out, &next, NULL, &e, pr_deadline_in(5000)), PR_EHTTP);
    PT_EQ_INT(e.http_status, 404);
    PT_EQ_INT(e.meaning, PR_DS_NOT_FOUND);
    pr_ds_destroy(none);
    pr_ds_destroy(js);
    pr_ds_destroy(ds);
    pr_ds_result_deinit(&res);
    pr_buf_deinit(&out);
    pr_buf_deinit(&next);
    ds_stop(&f);
}

/* A server that splits the stream into several catch-up answers (none up
   to date but the last): read_all follows them to the tail. */
PT_TEST(ds_read_all_follows_partial_answers) {
    dsf_fx f;
    ts_server *s;
    ts_step st[3];
    pr_ds *ds;
    pr_buf out, next;
    char url[96];
    pr_buf_init(&out);
    pr_buf_init(&next);
    PT_REQUIRE(dsf_client(&f, NULL) == PR_OK);
    PT_REQUIRE(ts_start(&s, NULL) == PR_OK);
    memset(st, 0, sizeof st);
    st[0].headers = "Stream-Next-Offset: 3\r\n";
    st[0].body = "one";
    st[1].headers = "Stream-Next-Offset: 6\r\n";
    st[1].body = "two";
    st[2].headers = "Stream-Next-Offset: 11\r\nStream-Up-To-Date: true\r\n";
    st[2].body = "three";
    PT_EQ_ERR(ts_script(s, "/parts", st, 3), PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/parts", (unsigned)ts_port(s));
    PT_REQUIRE((ds = dsf_handle(&f, url)) != NULL);
    PT_EQ_ERR(pr_ds_read_all(ds, NULL, 0, &out, &next, NULL, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(out.len, 11);
    PT_EQ_MEM(out.data, "onetwothree", 11);
    PT_EQ_STR(next.data, "11");
    PT_EQ_INT((int)ts_log_count(s), 3);
    pr_ds_destroy(ds);
    ts_stop(s);
    pr_http_client_destroy(f.client);
    pr_buf_deinit(&out);
    pr_buf_deinit(&next);
}

const pt_suite pt_suite_ds_fail = { "ds_fail",
                                    { PT_ENTRY(ds_fail_refused_is_tried_open_attempts_times),
                                      PT_ENTRY(ds_fail_name_that_does_not_exist_is_final),
#ifndef PRISTINE_NO_TLS
                                      PT_ENTRY(ds_fail_tls_refusals_are_final),
#endif
                                      PT_ENTRY(ds_fail_persistent_503_is_tried_open_attempts_times),
                                      PT_ENTRY(ds_fail_max_failures_bounds_a_live_read),
                                      PT_ENTRY(ds_fail_final_answers_end_the_read_at_once),
                                      PT_ENTRY(ds_fail_server_delays_used_as_given),
                                      PT_ENTRY(ds_fail_backoff_resets_only_after_a_healthy_period),
                                      PT_ENTRY(ds_fail_consumer_stops_on_a_final_cause), PT_ENTRY(ds_fail_cut_answer_is_transient),
                                      PT_ENTRY(ds_fail_producer_flush_says_why_before_deadline),
                                      PT_ENTRY(ds_read_all_reads_to_the_tail),
                                      PT_ENTRY(ds_read_all_follows_partial_answers),
                                      { 0, 0 } } };
