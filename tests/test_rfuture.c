/* rfuture: remote futures polled against tools/testserver.c on 127.0.0.1
   (scripted answers per request id), the classification of every answer
   shape, the status table, the backoff between polls (recorded by a sleep
   hook that does not sleep), queue-state observers, telemetry events, the
   response-bytes budget, timeouts, cancellation in every phase, 10,000
   futures at once, protocol profiles. */

typedef struct rf_rec {
    int64_t sleeps[64];
    int n;
    int real;          /* also sleep for real: delay / real ms */
    void (*on_sleep)(struct rf_rec *x);
    void *ctx;
} rf_rec;

static int rf_sleep(int64_t delay_ms, int64_t deadline, void *ud) {
    rf_rec *x = (rf_rec *)ud;
    (void)deadline;
    if (x->n < 64) x->sleeps[x->n] = delay_ms;
    x->n++;
    if (x->on_sleep) x->on_sleep(x);
    if (x->real) return pr_sleep(pr_deadline_min(deadline, pr_deadline_in(delay_ms / x->real)));
    return pr_is_canceled() ? PR_ECANCELED : PR_OK;
}

typedef struct rf_obs {
    int n;
    int old_state[16], state[16];
    char reason[16][32];
} rf_obs;

typedef struct rf_evs {
    int n;
    char name[16][64], kind[16][32], id[16][32], new_id[16][32];
    int status[16], iteration[16], severity[16], settled[16], error[16];
} rf_evs;

typedef struct rf_fx {
    ts_server *s;
    pr_http_client *c;
    pr_rfuture_poller *p;
    pr_rfuture_poller_opts po;
    ts_opts so;
    rf_rec rec;
    rf_obs obs;
    rf_evs evs;
    char base[64];
} rf_fx;

/* The observer's callbacks: user_data is the fixture. */
static void rf_on_queue(const pr_queue_change *c, void *ud) {
    rf_obs *o = &((rf_fx *)ud)->obs;
    if (o->n < 16) {
        o->old_state[o->n] = c->old_state;
        o->state[o->n] = c->state;
        snprintf(o->reason[o->n], sizeof o->reason[o->n], "%s", c->reason ? c->reason : "(null)");
    }
    o->n++;
}

/* How many events of this name (without the "APIFuture.result_async." prefix). */
static int rf_count(const rf_evs *e, const char *what) {
    char name[64];
    int i, n = 0;
    snprintf(name, sizeof name, "APIFuture.result_async.%s", what);
    for (i = 0; i < e->n && i < 16; i++) n += strcmp(e->name[i], name) == 0;
    return n;
}

static void rf_on_event(const pr_rfuture_event *ev, void *ud) {
    rf_evs *e = &((rf_fx *)ud)->evs;
    if (e->n < 16) {
        snprintf(e->name[e->n], sizeof e->name[e->n], "%s", ev->name);
        snprintf(e->kind[e->n], sizeof e->kind[e->n], "%s", ev->kind ? ev->kind : "-");
        e->status[e->n] = ev->status_code;
        e->iteration[e->n] = ev->iteration;
        e->severity[e->n] = ev->severity;
        e->settled[e->n] = ev->settled;
        e->error[e->n] = ev->error;
        snprintf(e->id[e->n], sizeof e->id[e->n], "%s", ev->request_id);
        snprintf(e->new_id[e->n], sizeof e->new_id[e->n], "%s", ev->new_request_id ? ev->new_request_id : "-");
    }
    e->n++;
}


static void rf_opts(rf_fx *f) {
    memset(f, 0, sizeof *f);
    f->po.hooks.sleep = rf_sleep;
    f->po.hooks.user_data = &f->rec;
    f->po.observer.on_queue_state = rf_on_queue;
    f->po.observer.on_event = rf_on_event;
    f->po.observer.user_data = f;
}

static int rf_start(rf_fx *f) {
    int rc;
    pr_http_client_opts co;
    memset(&co, 0, sizeof co);
    co.ignore_env = 1;
    co.pool_max = 200;
    if ((rc = ts_start(&f->s, &f->so)) != PR_OK) return rc;
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%u", (unsigned)ts_port(f->s));
    if ((rc = pr_http_client_create(&f->c, &co, NULL)) != PR_OK) return rc;
    f->po.base_url = f->base;
    return pr_rfuture_poller_create(&f->p, f->c, &f->po, NULL);
}

static void rf_end(rf_fx *f) {
    pr_rfuture_poller_destroy(f->p);
    pr_sleep(pr_deadline_in(1)); /* let cancelled pollers wind down */
    pr_http_client_destroy(f->c);
    ts_stop(f->s);
}

static ts_step rf_step(int status, const char *body) {
    ts_step st;
    memset(&st, 0, sizeof st);
    st.status = status;
    st.body = body;
    st.headers = "Content-Type: application/json\r\n";
    return st;
}

/* Script the answers for request id. */
static void rf_script(rf_fx *f, const char *id, const ts_step *steps, size_t n) {
    char key[128];
    snprintf(key, sizeof key, "/api/v1/retrieve_future#%s", id);
    PT_EQ_ERR(ts_script(f->s, key, steps, n), PR_OK);
}

/* Start, await, and return the await's code (result left in the future). */
static int rf_run(rf_fx *f, const char *id, const pr_rfuture_opts *o, pr_future **out) {
    int rc = pr_rfuture_start(out, f->p, id, o);
    if (rc) return rc;
    return pr_future_await(*out, NULL, pr_deadline_in(20000));
}

static const char *rf_logged(rf_fx *f, size_t i, const char *name, char *buf, size_t cap) {
    pr_slice v;
    if (!ts_log_header(ts_log_get(f->s, i), name, &v)) return "-";
    snprintf(buf, cap, "%.*s", (int)v.len, v.ptr);
    return buf;
}

/* The string member key of the result. */
static const char *rf_res_str(const pr_future *fu, const char *key) {
    size_t n;
    return pr_json_string(pr_json_get(pr_rfuture_result(fu), key), &n);
}

PT_TEST(rfuture_completes_first_poll) {
    rf_fx f;
    pr_future *fu;
    pr_rfuture_opts o;
    ts_step st = rf_step(200, "{\"model_id\":\"m1\",\"type\":\"create_model\"}");
    char v[64];
    rf_opts(&f);
    PT_REQUIRE(rf_start(&f) == PR_OK);
    rf_script(&f, "r1", &st, 1);
    memset(&o, 0, sizeof o);
    o.request_type = "CreateModel";
    o.submitted_at_ms = pr_now() - 1500;
    /* F1: one poll, the body and the headers; the whole body is the result */
    PT_EQ_ERR(rf_run(&f, "r1", &o, &fu), PR_OK);
    PT_EQ_STR(rf_res_str(fu, "model_id"), "m1");
    PT_EQ_INT(ts_log_count(f.s), 1);
    PT_EQ_STR(ts_log_get(f.s, 0)->body, "{\"request_id\":\"r1\",\"allow_metadata_only\":true}");
    PT_EQ_STR(rf_logged(&f, 0, "X-Tinker-Request-Iteration", v, sizeof v), "0");
    PT_EQ_STR(rf_logged(&f, 0, "X-Tinker-Request-Type", v, sizeof v), "CreateModel");
    PT_CHECK(strncmp(rf_logged(&f, 0, "X-Tinker-Create-Promise-Roundtrip-Time", v, sizeof v), "1.5", 3) == 0);
    PT_EQ_STR(rf_logged(&f, 0, "Content-Type", v, sizeof v), "application/json");
    /* F23: awaited again: the same result, no new request */
    PT_EQ_ERR(pr_future_await(fu, NULL, 0), PR_OK);
    PT_EQ_STR(rf_res_str(fu, "model_id"), "m1");
    PT_EQ_INT(ts_log_count(f.s), 1);
    PT_EQ_INT(f.rec.n, 0);
    pr_future_destroy(fu);
    rf_end(&f);
}

PT_TEST(rfuture_answer_shapes) {
    static const struct { const char *body; const char *key, *want; } ok[] = {
        { "{\"status\":\"completed\",\"result\":{\"value\":\"42\"}}", "value", "42" },  /* F2 */
        { "{\"status\":\"complete\",\"result\":{\"value\":\"a\"}}", "value", "a" },
        { "{\"status\":\"success\",\"result\":{\"value\":\"b\"}}", "value", "b" },
        { "{\"type\":\"completed\",\"result\":{\"value\":\"c\"}}", "value", "c" },
        { "{\"type\":\"success\",\"result\":{\"value\":\"d\"}}", "value", "d" },
        { "{\"path\":\"tinker://run-1/weights\",\"type\":\"save_weights\"}", "path", "tinker://run-1/weights" },
        { "{\"status\":\"completed\",\"value\":\"no wrapper\"}", "value", "no wrapper" },
    };
    size_t i;
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        rf_fx f;
        pr_future *fu;
        ts_step st = rf_step(200, ok[i].body);
        rf_opts(&f);
        PT_REQUIRE(rf_start(&f) == PR_OK);
        rf_script(&f, "r1", &st, 1);
        PT_EQ_ERR(rf_run(&f, "r1", NULL, &fu), PR_OK);
        if (!rf_res_str(fu, ok[i].key) || strcmp(rf_res_str(fu, ok[i].key), ok[i].want))
            pt_fail(__FILE__, __LINE__, "case %lu: result lacks %s=%s", (unsigned long)i, ok[i].key, ok[i].want);
        pr_future_destroy(fu);
        rf_end(&f);
    }
}

PT_TEST(rfuture_failed_shapes) {
    static const struct { const char *body; int category; const char *msg; } cases[] = {
        { "{\"error\":\"bad input\",\"category\":\"user\"}", PR_CATEGORY_USER, "bad input" },      /* F14 */
        { "{\"error\":\"boom\",\"category\":\"server\"}", PR_CATEGORY_SERVER, "boom" },            /* F15 */
        { "{\"error\":\"x\",\"category\":\"SomethingElse\"}", PR_CATEGORY_UNKNOWN, "x" },
        { "{\"error\":\"y\"}", PR_CATEGORY_UNKNOWN, "y" },
        { "{\"status\":\"failed\",\"error\":{\"message\":\"m\",\"category\":\"user\"}}", PR_CATEGORY_USER, "m" }, /* F16 */
        { "{\"status\":\"failed\"}", PR_CATEGORY_UNKNOWN, "the remote operation failed" },
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rf_fx f;
        pr_future *fu;
        pr_err_info e;
        ts_step st[2];
        st[0] = rf_step(200, cases[i].body);
        st[1] = rf_step(200, "{\"never\":\"polled\"}");
        rf_opts(&f);
        PT_REQUIRE(rf_start(&f) == PR_OK);
        rf_script(&f, "r1", st, 2);
        PT_EQ_ERR(rf_run(&f, "r1", NULL, &fu), PR_EFAILED);
        PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
        PT_EQ_INT(e.category, cases[i].category);
        PT_EQ_STR(e.msg, cases[i].msg);
        PT_EQ_INT(ts_log_count(f.s), 1); /* terminal for every category */
        PT_EQ_INT(f.evs.n, 1);
        PT_EQ_STR(f.evs.name[0], "APIFuture.result_async.application_error");
        PT_EQ_INT(f.evs.severity[0], cases[i].category == PR_CATEGORY_USER ? PR_SEVERITY_WARNING : PR_SEVERITY_ERROR);
        pr_future_destroy(fu);
        rf_end(&f);
    }
}

PT_TEST(rfuture_try_again_and_pending) {
    rf_fx f;
    pr_future *fu;
    ts_step st[6];
    char v[32];
    size_t i;
    rf_opts(&f);
    PT_REQUIRE(rf_start(&f) == PR_OK);
    /* F3: try_again x3, then the result: 4 polls after the floor's 5, 10, 20 ms, iterations 0..3, round trip
       only first */
    for (i = 0; i < 3; i++) st[i] = rf_step(200, "{\"type\":\"try_again\",\"request_id\":\"r1\",\"queue_state\":\"active\"}");
    st[3] = rf_step(200, "{\"v\":\"ok\"}");
    rf_script(&f, "r1", st, 4);
    {
        pr_rfuture_opts o;
        memset(&o, 0, sizeof o);
        o.submitted_at_ms = pr_now();
        PT_EQ_ERR(rf_run(&f, "r1", &o, &fu), PR_OK);
    }
    PT_EQ_INT(ts_log_count(f.s), 4);
    for (i = 0; i < 4; i++) {
        char want[4];
        snprintf(want, sizeof want, "%d", (int)i);
        PT_EQ_STR(rf_logged(&f, i, "X-Tinker-Request-Iteration", v, sizeof v), want);
        PT_CHECK((strcmp(rf_logged(&f, i, "X-Tinker-Create-Promise-Roundtrip-Time", v, sizeof v), "-") != 0) == (i == 0));
    }
    PT_EQ_INT(f.rec.n, 3);
    PT_EQ_INT(f.rec.sleeps[0], 5);
    PT_EQ_INT(f.rec.sleeps[1], 10);
    PT_EQ_INT(f.rec.sleeps[2], 20);
    pr_future_destroy(fu);
    /* F4: a retry_after_ms of 250 is slept */
    f.rec.n = 0;
    st[0] = rf_step(200, "{\"type\":\"try_again\",\"request_id\":\"r2\",\"queue_state\":\"active\",\"retry_after_ms\":250}");
    st[1] = rf_step(200, "{\"v\":\"ok\"}");
    rf_script(&f, "r2", st, 2);
    PT_EQ_ERR(rf_run(&f, "r2", NULL, &fu), PR_OK);
    PT_EQ_INT(f.rec.n, 1);
    PT_EQ_INT(f.rec.sleeps[0], 250);
    pr_future_destroy(fu);
    /* F21: pending is a try_again without a state: no observer call, the floor's 5 ms */
    f.obs.n = 0;
    f.rec.n = 0;
    st[0] = rf_step(200, "{\"status\":\"pending\"}");
    st[1] = rf_step(200, "{\"v\":\"ok\"}");
    rf_script(&f, "r3", st, 2);
    PT_EQ_ERR(rf_run(&f, "r3", NULL, &fu), PR_OK);
    PT_EQ_INT(f.obs.n, 0);
    PT_EQ_INT(f.rec.n, 1);
    PT_EQ_INT(f.rec.sleeps[0], 5);
    pr_future_destroy(fu);
    rf_end(&f);
}

PT_TEST(rfuture_queue_state_observer) {
    rf_fx f;
    pr_future *fu;
    ts_step st[7];
    rf_opts(&f);
    PT_REQUIRE(rf_start(&f) == PR_OK);
    /* F5: notified on every change of (state, reason), the first included */
    st[0] = rf_step(200, "{\"type\":\"try_again\",\"request_id\":\"r1\",\"queue_state\":\"paused_capacity\"}");
    st[1] = st[0];
    st[2] = rf_step(200, "{\"type\":\"try_again\",\"request_id\":\"r1\",\"queue_state\":\"paused_rate_limit\","
                         "\"queue_state_reason\":\"x\"}");
    st[3] = rf_step(200, "{\"type\":\"try_again\",\"request_id\":\"r1\",\"queue_state\":\"active\"}");
    st[4] = rf_step(200, "{\"v\":\"ok\"}");
    rf_script(&f, "r1", st, 5);
    PT_EQ_ERR(rf_run(&f, "r1", NULL, &fu), PR_OK);
    PT_EQ_INT(f.obs.n, 3);
    PT_EQ_INT(f.obs.old_state[0], PR_QUEUE_NONE);
    PT_EQ_INT(f.obs.state[0], PR_QUEUE_PAUSED_CAPACITY);
    PT_EQ_STR(f.obs.reason[0], "(null)");
    PT_EQ_INT(f.obs.state[1], PR_QUEUE_PAUSED_RATE_LIMIT);
    PT_EQ_STR(f.obs.reason[1], "x");
    PT_EQ_INT(f.obs.old_state[2], PR_QUEUE_PAUSED_RATE_LIMIT);
    PT_EQ_INT(f.obs.state[2], PR_QUEUE_ACTIVE);
    pr_future_destroy(fu);
    /* F6: an unknown state is UNKNOWN; no state and no reason is no report */
    f.obs.n = 0;
    st[0] = rf_step(200, "{\"type\":\"try_again\",\"request_id\":\"r2\",\"queue_state\":\"weird\"}");
    st[1] = rf_step(200, "{\"type\":\"try_again\",\"request_id\":\"r2\"}");
    st[2] = rf_step(200, "{\"v\":\"ok\"}");
    rf_script(&f, "r2", st, 3);
    PT_EQ_ERR(rf_run(&f, "r2", NULL, &fu), PR_OK);
    PT_EQ_INT(f.obs.n, 1);
    PT_EQ_INT(f.obs.state[0], PR_QUEUE_UNKNOWN);
    pr_future_destroy(fu);
    /* F7: a 408 with a try_again body: polled again after the floor, the observer hears its state */
    f.obs.n = 0;
    f.rec.n = 0;
    st[0] = rf_step(408, "{\"type\":\"try_again\",\"request_id\":\"r3\",\"queue_state\":\"paused_rate_limit\"}");
    st[1] = rf_step(200, "{\"v\":\"ok\"}");
    rf_script(&f, "r3", st, 2);
    PT_EQ_ERR(rf_run(&f, "r3", NULL, &fu), PR_OK);
    PT_EQ_INT(f.obs.n, 1);
    PT_EQ_INT(f.obs.state[0], PR_QUEUE_PAUSED_RATE_LIMIT);
    PT_EQ_INT(f.rec.n, 1);
    PT_EQ_INT(f.rec.sleeps[0], 5);
    pr_future_destroy(fu);
    rf_end(&f);
}

PT_TEST(rfuture_status_table) {
    rf_fx f;
    pr_future *fu;
    pr_err_info e;
    ts_step st[6];
    static const int fatal[] = { 401, 403, 404, 409, 422 };
    size_t i, before;
    rf_opts(&f);
    PT_REQUIRE(rf_start(&f) == PR_OK);
    /* F8: 500, 503, then the result: 3 polls, 5 and 10 ms apart */
    st[0] = rf_step(500, "{}");
    st[1] = rf_step(503, "busy");
    st[2] = rf_step(200, "{\"v\":\"ok\"}");
    rf_script(&f, "a", st, 3);
    PT_EQ_ERR(rf_run(&f, "a", NULL, &fu), PR_OK);
    PT_EQ_INT(ts_log_count(f.s), 3);
    PT_EQ_INT(f.rec.n, 2);
    PT_EQ_INT(f.rec.sleeps[0], 5);
    PT_EQ_INT(f.rec.sleeps[1], 10);
    pr_future_destroy(fu);
    /* F9: 429 x3: sleeps 1000, 2000, 4000 */
    f.rec.n = 0;
    for (i = 0; i < 3; i++) st[i] = rf_step(429, "{}");
    st[3] = rf_step(200, "{\"v\":\"ok\"}");
    rf_script(&f, "b", st, 4);
    PT_EQ_ERR(rf_run(&f, "b", NULL, &fu), PR_OK);
    PT_EQ_INT(f.rec.n, 3);
    PT_EQ_INT(f.rec.sleeps[0], 1000);
    PT_EQ_INT(f.rec.sleeps[1], 2000);
    PT_EQ_INT(f.rec.sleeps[2], 4000);
    pr_future_destroy(fu);
    /* F11: 410: PR_EEXPIRED after one poll */
    before = ts_log_count(f.s);
    st[0] = rf_step(410, "{}");
    st[1] = rf_step(200, "{\"v\":\"never\"}");
    rf_script(&f, "c", st, 2);
    PT_EQ_ERR(rf_run(&f, "c", NULL, &fu), PR_EEXPIRED);
    PT_EQ_INT(ts_log_count(f.s) - before, 1);
    PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
    PT_EQ_INT(e.http_status, 410);
    pr_future_destroy(fu);
    /* F12: three 400s are within the budget; a fourth is not */
    before = ts_log_count(f.s);
    for (i = 0; i < 3; i++) st[i] = rf_step(400, "");
    st[3] = rf_step(200, "{\"v\":\"ok\"}");
    rf_script(&f, "d", st, 4);
    PT_EQ_ERR(rf_run(&f, "d", NULL, &fu), PR_OK);
    PT_EQ_INT(ts_log_count(f.s) - before, 4);
    pr_future_destroy(fu);
    before = ts_log_count(f.s);
    for (i = 0; i < 5; i++) st[i] = rf_step(400, "{\"detail\":\"no\"}");
    rf_script(&f, "e", st, 5);
    PT_EQ_ERR(rf_run(&f, "e", NULL, &fu), PR_EHTTP);
    PT_EQ_INT(ts_log_count(f.s) - before, 4);
    PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
    PT_EQ_INT(e.http_status, 400);
    pr_future_destroy(fu);
    /* a 408 with a JSON body resets the 400 budget */
    before = ts_log_count(f.s);
    st[0] = rf_step(400, "");
    st[1] = rf_step(400, "");
    st[2] = rf_step(408, "{\"type\":\"try_again\",\"request_id\":\"g\"}");
    st[3] = rf_step(400, "");
    st[4] = rf_step(400, "");
    st[5] = rf_step(200, "{\"v\":\"ok\"}");
    rf_script(&f, "g", st, 6);
    PT_EQ_ERR(rf_run(&f, "g", NULL, &fu), PR_OK);
    pr_future_destroy(fu);
    /* F13: other 4xx are terminal after one poll */
    for (i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
        char id[8];
        snprintf(id, sizeof id, "f%d", fatal[i]);
        before = ts_log_count(f.s);
        st[0] = rf_step(fatal[i], "{}");
        st[1] = rf_step(200, "{\"v\":\"never\"}");
        rf_script(&f, id, st, 2);
        PT_EQ_ERR(rf_run(&f, id, NULL, &fu), PR_EHTTP);
        PT_EQ_INT(ts_log_count(f.s) - before, 1);
        PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
        PT_EQ_INT(e.http_status, fatal[i]);
        PT_EQ_INT(e.category, PR_CATEGORY_USER);
        pr_future_destroy(fu);
    }
    rf_end(&f);
}

/* Answers with nothing new never drive a hot loop: each kind, answered
   at once many times over, is polled after the floor's 5, 10, 20 ... ms
   (capped at 1000), never at once; a 400 within the budget too. */
PT_TEST(rfuture_nothing_new_is_paced) {
    static const struct { int status; const char *body; int count; } nothing[] = {
        { 503, "busy", 200 },
        { 200, "{\"type\":\"try_again\",\"request_id\":\"x\"}", 20 },
        { 200, "{\"type\":\"try_again\",\"request_id\":\"x\",\"retry_after_ms\":0}", 20 },
        { 200, "{\"status\":\"pending\"}", 20 },
        { 408, "{}", 20 },
        { 500, "{}", 20 },
        { 400, "", 3 },
    };
    rf_fx f;
    pr_future *fu;
    ts_step st[2];
    size_t k;
    int i;
    rf_opts(&f);
    f.po.open_attempts = -1; /* 503s and 500s before any answer, as many as the case has */
    PT_REQUIRE(rf_start(&f) == PR_OK);
    for (k = 0; k < sizeof nothing / sizeof nothing[0]; k++) {
        char id[8];
        snprintf(id, sizeof id, "n%d", (int)k);
        st[0] = rf_step(nothing[k].status, nothing[k].body);
        st[0].count = nothing[k].count;
        st[1] = rf_step(200, "{\"v\":\"ok\"}");
        rf_script(&f, id, st, 2);
        f.rec.n = 0;
        PT_EQ_ERR(rf_run(&f, id, NULL, &fu), PR_OK);
        if (f.rec.n != nothing[k].count)
            pt_fail(__FILE__, __LINE__, "case %d (%d %s): %d sleeps for %d answers", (int)k, nothing[k].status,
                    nothing[k].body, f.rec.n, nothing[k].count);
        for (i = 0; i < f.rec.n && i < 64; i++) PT_EQ_INT(f.rec.sleeps[i], i < 8 ? 5 << i : 1000);
        pr_future_destroy(fu);
    }
    rf_end(&f);
}

/* A server's delay is honoured on every answer that carries one, status
   or 200: Retry-After / retry-after-ms headers, retry_after_ms in a 200's
   or a 408's body (which wins over a header); below the floor it is 5 ms. */
PT_TEST(rfuture_server_delays_honoured) {
    static const struct { int status; const char *headers, *body; int64_t want; } hinted[] = {
        { 503, "Retry-After: 2\r\n", "busy", 2000 },
        { 503, "retry-after-ms: 2000\r\n", "busy", 2000 },
        { 500, "Retry-After: 0.25\r\n", "{}", 250 },
        { 408, "Retry-After: 3\r\n", "{}", 3000 },
        { 408, "", "{\"type\":\"try_again\",\"request_id\":\"x\",\"retry_after_ms\":300}", 300 },
        { 429, "Retry-After: 3\r\n", "{}", 3000 },
        { 400, "retry-after-ms: 40\r\n", "", 40 },
        { 402, "Retry-After: 7\r\n", "{}", 7000 },
        { 200, "Retry-After: 1\r\n", "{\"type\":\"try_again\",\"request_id\":\"x\"}", 1000 },
        { 200, "retry-after-ms: 1500\r\n", "{\"status\":\"pending\"}", 1500 },
        { 200, "Retry-After: 2\r\n", "{\"type\":\"try_again\",\"request_id\":\"x\",\"retry_after_ms\":250}", 250 },
        { 200, "", "{\"type\":\"try_again\",\"request_id\":\"x\",\"retry_after_ms\":1}", 5 },
        { 200, "retry-after-ms: 1\r\n", "{\"status\":\"pending\"}", 5 },
        { 200, "Retry-After: 1\r\n", "{\"status\":\"complete_metadata\",\"response_payload_size\":10}", 1000 },
    };
    rf_fx f;
    pr_future *fu;
    ts_step st[2];
    size_t k;
    rf_opts(&f);
    PT_REQUIRE(rf_start(&f) == PR_OK);
    for (k = 0; k < sizeof hinted / sizeof hinted[0]; k++) {
        char id[8], head[128];
        snprintf(id, sizeof id, "h%d", (int)k);
        snprintf(head, sizeof head, "Content-Type: application/json\r\n%s", hinted[k].headers);
        st[0] = rf_step(hinted[k].status, hinted[k].body);
        st[0].headers = head;
        st[1] = rf_step(200, "{\"v\":\"ok\"}");
        rf_script(&f, id, st, 2);
        f.rec.n = 0;
        PT_EQ_ERR(rf_run(&f, id, NULL, &fu), PR_OK);
        if (f.rec.n != 1 || f.rec.sleeps[0] != hinted[k].want)
            pt_fail(__FILE__, __LINE__, "case %d (%d, %.*s): %d sleeps, the first %lld ms, want one of %lld", (int)k,
                    hinted[k].status, (int)strcspn(hinted[k].headers, "\r"), hinted[k].headers, f.rec.n, (long long)(f.rec.n ? f.rec.sleeps[0] : -1),
                    (long long)hinted[k].want);
        pr_future_destroy(fu);
    }
    rf_end(&f);
}

/* The delays of cases[] under a poller whose hint_max_ms is cap (0 = the
   default); column 0 of want is for the default, column 1 for cap. */
typedef struct rf_hint_case { const char *headers, *body; int64_t want[2]; } rf_hint_case;

static void rf_hint_cases(const rf_hint_case *cases, size_t n, int64_t cap, int col) {
    rf_fx f;
    pr_future *fu;
    ts_step st[2];
    size_t k;
    rf_opts(&f);
    f.po.hint_max_ms = cap;
    PT_REQUIRE(rf_start(&f) == PR_OK);
    for (k = 0; k < n; k++) {
        char id[16], head[128];
        snprintf(id, sizeof id, "c%d", (int)k);
        snprintf(head, sizeof head, "Content-Type: application/json\r\n%s", cases[k].headers);
        st[0] = rf_step(200, cases[k].body);
        st[0].headers = head;
        st[1] = rf_step(200, "{\"v\":\"ok\"}");
        rf_script(&f, id, st, 2);
        f.rec.n = 0;
        PT_EQ_ERR(rf_run(&f, id, NULL, &fu), PR_OK);
        if (f.rec.n != 1 || f.rec.sleeps[0] != cases[k].want[col])
            pt_fail(__FILE__, __LINE__, "hint_max_ms %lld, case %d (%.*s %s): %d sleeps, the first %lld ms, want %lld",
                    (long long)cap, (int)k, (int)strcspn(cases[k].headers, "\r"), cases[k].headers, cases[k].body,
                    f.rec.n, (long long)(f.rec.n ? f.rec.sleeps[0] : -1), (long long)cases[k].want[col]);
        pr_future_destroy(fu);
    }
    rf_end(&f);
}

/* Every delay a server gives is capped by hint_max_ms (60 s by default),
   and none overflows anything, whatever its size or sign (SAN=1 runs this
   under UBSan): integers past int64_t, huge, fractional and negative
   numbers, headers past int64_t (cut to the cap like any long hint); a
   header that does not parse (1e308 is past pr_retry_hint_ms' range) or a
   negative number is no hint: the floor's 5 ms. */
PT_TEST(rfuture_hint_cap) {
    static const rf_hint_case cases[] = {
        { "", "{\"status\":\"pending\",\"retry_after_ms\":9223372036854775807}", { 60000, 1500 } },
        { "", "{\"status\":\"pending\",\"retry_after_ms\":99999999999999999999999}", { 60000, 1500 } },
        { "", "{\"status\":\"pending\",\"retry_after_ms\":1e300}", { 60000, 1500 } },
        { "", "{\"type\":\"try_again\",\"retry_after_ms\":120000}", { 60000, 1500 } },
        { "", "{\"status\":\"pending\",\"retry_after_ms\":1000}", { 1000, 1000 } },
        { "", "{\"status\":\"pending\",\"retry_after_ms\":10.2}", { 11, 11 } },
        { "", "{\"status\":\"pending\",\"retry_after_ms\":-9223372036854775808}", { 5, 5 } },
        { "", "{\"status\":\"pending\",\"retry_after_ms\":-99999999999999999999999}", { 5, 5 } },
        { "", "{\"status\":\"pending\",\"retry_after_ms\":-1e300}", { 5, 5 } },
        { "", "{\"status\":\"pending\",\"retry_after_ms\":\"9999\"}", { 5, 5 } },
        { "Retry-After: 30\r\n", "{\"status\":\"pending\"}", { 30000, 1500 } },
        { "retry-after-ms: 20000.5\r\n", "{\"status\":\"pending\"}", { 20001, 1500 } },
        { "Retry-After: 9223372036854775807\r\n", "{\"status\":\"pending\"}", { 60000, 1500 } },
        { "Retry-After: 1e308\r\n", "{\"status\":\"pending\"}", { 5, 5 } },
        { "retry-after-ms: 99999999999999999999999\r\n", "{\"status\":\"pending\"}", { 60000, 1500 } },
        { "retry-after-ms: -5\r\n", "{\"status\":\"pending\"}", { 5, 5 } },
    };
    static const rf_hint_case forever[] = {
        { "", "{\"status\":\"pending\",\"retry_after_ms\":9223372036854775807}", { PR_FOREVER, PR_FOREVER } },
        { "", "{\"status\":\"pending\",\"retry_after_ms\":1e300}", { PR_FOREVER, PR_FOREVER } },
    };
    rf_fx f;
    pr_future *fu;
    pr_rfuture_opts o;
    ts_step st;
    rf_hint_cases(cases, sizeof cases / sizeof cases[0], 0, 0);
    rf_hint_cases(cases, sizeof cases / sizeof cases[0], 1500, 1);
    /* no cap at all: the delay is INT64_MAX, and the timer heap takes it */
    rf_hint_cases(forever, sizeof forever / sizeof forever[0], PR_FOREVER, 0);
    rf_opts(&f);
    f.po.hint_max_ms = PR_FOREVER;
    f.po.hooks.sleep = NULL;
    PT_REQUIRE(rf_start(&f) == PR_OK);
    st = rf_step(200, "{\"status\":\"pending\",\"retry_after_ms\":9223372036854775807}");
    rf_script(&f, "r1", &st, 1);
    memset(&o, 0, sizeof o);
    o.timeout_ms = 50;
    PT_EQ_ERR(rf_run(&f, "r1", &o, &fu), PR_ETIMEDOUT);
    PT_EQ_INT(ts_log_count(f.s), 1);
    pr_future_destroy(fu);
    rf_end(&f);
}

/* F10: the server is down for the first two polls; it starts during the
   second backoff sleep. */
static void rf_start_server_on_second_sleep(rf_rec *x) {
    rf_fx *f = (rf_fx *)x->ctx;
    if (x->n == 2) {
        ts_step st[3];
        PT_EQ_ERR(ts_start(&f->s, &f->so), PR_OK);
        st[0] = rf_step(500, "{}");
        st[1] = rf_step(200, "");
        st[1].close_without_response = 1;
        st[1].count = 2; /* the pooled connection, then the fresh one of the replay */
        st[2] = rf_step(200, "{\"v\":\"ok\"}");
        rf_script(f, "r1", st, 3);
    }
}

PT_TEST(rfuture_connection_errors_back_off) {
    rf_fx f;
    pr_listener *l;
    pr_future *fu;
    pr_http_client_opts co;
    rf_opts(&f);
    PT_REQUIRE(pr_tcp_listen(&l, "127.0.0.1", 0, 1, NULL) == PR_OK); /* a free port, then nobody on it */
    f.so.port = pr_listener_port(l);
    pr_listener_destroy(l);
    snprintf(f.base, sizeof f.base, "http://127.0.0.1:%u", (unsigned)f.so.port);
    memset(&co, 0, sizeof co);
    co.ignore_env = 1;
    PT_REQUIRE(pr_http_client_create(&f.c, &co, NULL) == PR_OK);
    f.po.base_url = f.base;
    f.rec.on_sleep = rf_start_server_on_second_sleep;
    f.rec.ctx = &f;
    PT_REQUIRE(pr_rfuture_poller_create(&f.p, f.c, &f.po, NULL) == PR_OK);
    PT_EQ_ERR(rf_run(&f, "r1", NULL, &fu), PR_OK);
    /* refused, refused (1000, 2000), a 500 (the floor after 3 polls: 20), closed (1000: the 500 reset the
       exponent), the result */
    PT_EQ_INT(f.rec.n, 4);
    PT_EQ_INT(f.rec.sleeps[0], 1000);
    PT_EQ_INT(f.rec.sleeps[1], 2000);
    PT_EQ_INT(f.rec.sleeps[2], 20);
    PT_EQ_INT(f.rec.sleeps[3], 1000);
    PT_EQ_INT(f.evs.n, 5);
    PT_EQ_STR(f.evs.name[4], "APIFuture.result_async.resolved");
    PT_EQ_STR(f.evs.name[0], "APIFuture.result_async.connection_error");
    PT_EQ_INT(f.evs.status[0], 0);
    PT_EQ_STR(f.evs.name[2], "APIFuture.result_async.api_status_error");
    PT_EQ_INT(f.evs.status[2], 500);
    pr_future_destroy(fu);
    rf_end(&f);
}

PT_TEST(rfuture_telemetry_events) {
    rf_fx f;
    pr_future *fu;
    ts_step st[2];
    rf_opts(&f);
    PT_REQUIRE(rf_start(&f) == PR_OK);
    /* F25: a 500 then the result: exactly one api_status_error */
    st[0] = rf_step(500, "{}");
    st[1] = rf_step(200, "{\"v\":\"ok\"}");
    rf_script(&f, "r1", st, 2);
    PT_EQ_ERR(rf_run(&f, "r1", NULL, &fu), PR_OK);
    PT_EQ_INT(rf_count(&f.evs, "api_status_error"), 1);
    PT_EQ_INT(rf_count(&f.evs, "resolved"), 1);
    PT_EQ_INT(f.evs.n, 2);
    PT_EQ_STR(f.evs.name[0], "APIFuture.result_async.api_status_error");
    PT_EQ_INT(f.evs.status[0], 500);
    PT_EQ_INT(f.evs.iteration[0], 0);
    PT_EQ_STR(f.evs.kind[0], "retry");
    PT_EQ_INT(f.evs.severity[0], PR_SEVERITY_WARNING);
    pr_future_destroy(fu);
    rf_end(&f);
}

static int rf_budget_during_poll = -1;
static pr_rfuture_poller *rf_budget_poller;

static int rf_budget_sampler(void *arg) {
    ts_server *s = (ts_server *)arg;
    while (ts_log_count(s) < 2) pr_sleep(pr_deadline_in(1));
    rf_budget_during_poll = (int)pr_wsem_budget(rf_budget_poller->bytes);
    return 0;
}

PT_TEST(rfuture_complete_metadata_budget) {
    rf_fx f;
    pr_future *fu;
    pr_err_info e;
    pr_task *t;
    ts_step st[3];
    rf_opts(&f);
    f.po.max_response_bytes = 4096;
    PT_REQUIRE(rf_start(&f) == PR_OK);
    /* F17: the second poll asks for the payload; 1024 bytes are held during it */
    st[0] = rf_step(200, "{\"status\":\"complete_metadata\",\"response_payload_size\":1024}");
    st[1] = rf_step(200, "{\"v\":\"big\"}");
    st[1].delay_head_ms = 30;
    rf_script(&f, "r1", st, 2);
    rf_budget_poller = f.p;
    PT_REQUIRE(pr_go(&t, rf_budget_sampler, f.s, NULL) == PR_OK);
    PT_EQ_ERR(rf_run(&f, "r1", NULL, &fu), PR_OK);
    PT_EQ_ERR(pr_join(t, NULL, PR_FOREVER), PR_OK);
    PT_EQ_STR(ts_log_get(f.s, 1)->body, "{\"request_id\":\"r1\",\"allow_metadata_only\":false}");
    PT_EQ_INT(rf_budget_during_poll, 3072);
    PT_EQ_INT(pr_wsem_budget(f.p->bytes), 4096);
    PT_EQ_STR(rf_res_str(fu, "v"), "big");
    pr_future_destroy(fu);
    /* F18: complete_metadata twice: PR_EPROTO after the second poll; the bytes come back */
    st[0] = rf_step(200, "{\"status\":\"complete_metadata\",\"response_payload_size\":100}");
    st[1] = st[0];
    rf_script(&f, "r2", st, 2);
    PT_EQ_ERR(rf_run(&f, "r2", NULL, &fu), PR_EPROTO);
    PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
    PT_EQ_STR(e.msg, "rfuture: request r2: complete_metadata twice");
    PT_EQ_INT(pr_wsem_budget(f.p->bytes), 4096);
    pr_future_destroy(fu);
    rf_end(&f);
}

static int rf_validate_needs_v(const pr_json *result, pr_err_info *why, void *ud) {
    (void)ud;
    if (pr_json_get(result, "v")) return 0;
    snprintf(why->msg, sizeof why->msg, "no member v");
    return 1;
}

PT_TEST(rfuture_malformed_answers) {
    static const char *const bad[] = { "not json", "[1,2,3]", "\"a string\"", "", "{\"unterminated\":" };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rf_fx f;
        pr_future *fu;
        pr_err_info e;
        ts_step st = rf_step(200, bad[i]);
        rf_opts(&f);
        PT_REQUIRE(rf_start(&f) == PR_OK);
        rf_script(&f, "r1", &st, 1);
        /* F19: PR_EPROTO after one poll, with a message */
        PT_EQ_ERR(rf_run(&f, "r1", NULL, &fu), PR_EPROTO);
        PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
        PT_CHECK(strstr(e.msg, "the answer is not") != NULL);
        PT_EQ_INT(ts_log_count(f.s), 1);
        PT_EQ_STR(f.evs.name[0], "APIFuture.result_async.validation_error");
        pr_future_destroy(fu);
        rf_end(&f);
    }
    {
        rf_fx f;
        pr_future *fu;
        pr_err_info e;
        pr_rfuture_opts o;
        ts_step st[2];
        rf_opts(&f);
        PT_REQUIRE(rf_start(&f) == PR_OK);
        st[0] = rf_step(200, "{\"w\":1}");
        rf_script(&f, "r1", st, 1);
        memset(&o, 0, sizeof o);
        o.validate = rf_validate_needs_v;
        PT_EQ_ERR(rf_run(&f, "r1", &o, &fu), PR_EPROTO);
        PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
        PT_EQ_STR(e.msg, "rfuture: request r1: invalid result: no member v");
        pr_future_destroy(fu);
        st[0] = rf_step(200, "{\"status\":\"complete_metadata\"}"); /* no size */
        rf_script(&f, "r2", st, 1);
        PT_EQ_ERR(rf_run(&f, "r2", NULL, &fu), PR_EPROTO);
        pr_future_destroy(fu);
        rf_end(&f);
    }
    {
        /* a body over the client's fetch_max_bytes: PR_ELIMIT, no crash, no second poll */
        rf_fx f;
        pr_future *fu;
        pr_http_client_opts co;
        static char huge[8192];
        ts_step st;
        memset(huge, 'a', sizeof huge - 1);
        huge[0] = '"';
        huge[sizeof huge - 2] = '"';
        rf_opts(&f);
        PT_REQUIRE(ts_start(&f.s, NULL) == PR_OK);
        snprintf(f.base, sizeof f.base, "http://127.0.0.1:%u", (unsigned)ts_port(f.s));
        memset(&co, 0, sizeof co);
        co.ignore_env = 1;
        co.fetch_max_bytes = 4096;
        PT_REQUIRE(pr_http_client_create(&f.c, &co, NULL) == PR_OK);
        f.po.base_url = f.base;
        PT_REQUIRE(pr_rfuture_poller_create(&f.p, f.c, &f.po, NULL) == PR_OK);
        st = rf_step(200, huge);
        rf_script(&f, "r1", &st, 1);
        PT_EQ_ERR(rf_run(&f, "r1", NULL, &fu), PR_ELIMIT);
        PT_EQ_INT(ts_log_count(f.s), 1);
        pr_future_destroy(fu);
        rf_end(&f);
    }
}

PT_TEST(rfuture_timeouts) {
    rf_fx f;
    pr_future *fu;
    pr_rfuture_opts o;
    pr_err_info e;
    ts_step st[2];
    int64_t t0;
    size_t n;
    /* F20: try_again forever, each poll held 100 ms; a 300 ms limit: PR_ETIMEDOUT, then no more polls */
    rf_opts(&f);
    PT_REQUIRE(rf_start(&f) == PR_OK);
    st[0] = rf_step(200, "{\"type\":\"try_again\",\"request_id\":\"r1\"}");
    st[0].delay_head_ms = 100;
    PT_EQ_ERR(ts_script_default(f.s, "/api/v1/retrieve_future#r1", &st[0]), PR_OK);
    memset(&o, 0, sizeof o);
    o.timeout_ms = 300;
    t0 = pr_now();
    PT_EQ_ERR(rf_run(&f, "r1", &o, &fu), PR_ETIMEDOUT);
    PT_CHECK(pr_now() - t0 >= 300);
    PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
    PT_CHECK(strncmp(e.msg, "rfuture: timed out polling request r1", 37) == 0);
    n = ts_log_count(f.s);
    PT_CHECK(n >= 3 && n <= 4);
    PT_EQ_ERR(pr_sleep(pr_deadline_in(300)), PR_OK);
    PT_EQ_INT(ts_log_count(f.s), n); /* nothing more */
    PT_EQ_STR(f.evs.name[f.evs.n - 1], "APIFuture.result_async.timeout");
    pr_future_destroy(fu);
    rf_end(&f);
    /* F22: a 200 ms poll that gets no answer is abandoned; 1000 ms back off; the result */
    rf_opts(&f);
    f.po.poll_timeout_ms = 200;
    PT_REQUIRE(rf_start(&f) == PR_OK);
    st[0] = rf_step(200, "{\"v\":\"late\"}");
    st[0].delay_head_ms = 3000;
    st[1] = rf_step(200, "{\"v\":\"ok\"}");
    rf_script(&f, "r2", st, 2);
    t0 = pr_now();
    PT_EQ_ERR(rf_run(&f, "r2", NULL, &fu), PR_OK);
    PT_CHECK(pr_now() - t0 >= 200);
    PT_EQ_STR(rf_res_str(fu, "v"), "ok");
    PT_EQ_INT(f.rec.n, 1);
    PT_EQ_INT(f.rec.sleeps[0], 1000);
    PT_EQ_STR(f.evs.name[0], "APIFuture.result_async.connection_error");
    pr_future_destroy(fu);
    rf_end(&f);
}

PT_TEST(rfuture_billing_pause) {
    rf_fx f;
    pr_future *fu;
    pr_err_info e;
    ts_step st[3];
    int i;
    rf_opts(&f);
    PT_REQUIRE(rf_start(&f) == PR_OK);
    /* F26: two 402s inside the pause: 5 s sleeps, no telemetry */
    st[0] = rf_step(402, "{}");
    st[1] = rf_step(402, "{}");
    st[2] = rf_step(200, "{\"v\":\"ok\"}");
    rf_script(&f, "r1", st, 3);
    PT_EQ_ERR(rf_run(&f, "r1", NULL, &fu), PR_OK);
    PT_EQ_INT(f.rec.n, 2);
    PT_EQ_INT(f.rec.sleeps[0], 5000);
    PT_EQ_INT(f.rec.sleeps[1], 5000);
    PT_EQ_INT(f.evs.n, 1); /* only the end */
    PT_EQ_INT(rf_count(&f.evs, "resolved"), 1);
    pr_future_destroy(fu);
    rf_end(&f);
    /* 402 forever, a 200 ms pause limit; the hook sleeps a hundredth of each 5 s for real */
    rf_opts(&f);
    f.po.billing_max_pause_ms = 200;
    f.rec.real = 100;
    PT_REQUIRE(rf_start(&f) == PR_OK);
    st[0] = rf_step(402, "{}");
    PT_EQ_ERR(ts_script_default(f.s, "/api/v1/retrieve_future#r2", &st[0]), PR_OK);
    PT_EQ_ERR(rf_run(&f, "r2", NULL, &fu), PR_EHTTP);
    PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
    PT_EQ_INT(e.http_status, 402);
    PT_CHECK(f.rec.n >= 4);
    for (i = 0; i < f.rec.n && i < 64; i++) PT_EQ_INT(f.rec.sleeps[i], 5000);
    PT_EQ_INT(f.evs.n, 1); /* only the final, fatal one */
    pr_future_destroy(fu);
    rf_end(&f);
}

/* F27: a 410 ends the future with PR_EEXPIRED; an operation-level retry
   (the retry runner) submits the job again and polls the new id. */
typedef struct rf_op {
    rf_fx *f;
    int submits;
} rf_op;

static int rf_submit_and_await(int attempt, void *ud) {
    rf_op *op = (rf_op *)ud;
    pr_future *fu;
    int rc;
    (void)attempt;
    op->submits++;
    rc = pr_rfuture_submit(&fu, op->f->p, "/api/v1/asample", "{\"prompt\":\"hi\"}", 15, NULL, NULL,
                           pr_deadline_in(5000));
    if (rc) return rc;
    rc = pr_future_await(fu, NULL, pr_deadline_in(10000));
    pr_future_destroy(fu);
    return rc;
}

static int rf_expired_is_retryable(int outcome, int64_t *after_ms, void *ud) {
    (void)after_ms;
    (void)ud;
    if (outcome == PR_EEXPIRED) return PR_RETRY_AGAIN;
    return pr_retry_classify_default(outcome, NULL, NULL);
}

PT_TEST(rfuture_expired_resubmitted) {
    rf_fx f;
    rf_op op;
    pr_retry_policy pol;
    ts_step st = rf_step(410, "{}");
    rf_opts(&f);
    PT_REQUIRE(rf_start(&f) == PR_OK);
    rf_script(&f, "req-1", &st, 1); /* the first submit's id expires; req-2 resolves on its 3rd poll */
    memset(&op, 0, sizeof op);
    op.f = &f;
    memset(&pol, 0, sizeof pol);
    pol.max_retries = 3;
    pol.classify = rf_expired_is_retryable;
    pol.hooks.sleep = rf_sleep;
    pol.hooks.user_data = &f.rec;
    PT_EQ_ERR(pr_retry_run(&pol, rf_submit_and_await, &op, pr_deadline_in(20000)), PR_OK);
    PT_EQ_INT(op.submits, 2);
    PT_CHECK(pr_slice_eq(ts_log_get(f.s, 0)->path, pr_slice_cstr("/api/v1/asample")));
    PT_EQ_INT(ts_log_count(f.s), 1 + 1 + 1 + 3); /* submit, 410, submit, three polls of req-2 */
    rf_end(&f);
}

/* ---- failures: final at once, transient ones bounded ---- */

/* A port nobody listens on (free a moment ago). */
static uint16_t rf_dead_port(void) {
    pr_listener *l;
    uint16_t port;
    if (pr_tcp_listen(&l, "127.0.0.1", 0, 1, NULL) != PR_OK) return 0;
    port = pr_listener_port(l);
    pr_listener_destroy(l);
    return port;
}

/* A poller on base (its own client when c is NULL, with the test CA). */
static int rf_start_at(rf_fx *f, const char *base, int own_client) {
    pr_http_client_opts co;
    int rc;
    snprintf(f->base, sizeof f->base, "%s", base);
    f->po.base_url = f->base;
    if (own_client) {
        f->po.tls.ca_file = "build/tls-fixtures/ca.crt";
        return pr_rfuture_poller_create(&f->p, NULL, &f->po, NULL);
    }
    memset(&co, 0, sizeof co);
    co.ignore_env = 1;
    if ((rc = pr_http_client_create(&f->c, &co, NULL)) != PR_OK) return rc;
    return pr_rfuture_poller_create(&f->p, f->c, &f->po, NULL);
}

/* Nobody listens: every poll is refused. Before any answer that is tried
   open_attempts times (the default 5 sleeps 1, 2, 4, 8 s between them,
   15 s), then the future ends with PR_EIO and ECONNREFUSED: an await
   without a deadline returns it. */
PT_TEST(rfuture_refused_ends_after_open_attempts) {
    static const int attempts[] = { 0, 3 }; /* 0: the default, 5 */
    size_t k;
    for (k = 0; k < 2; k++) {
        rf_fx f;
        pr_future *fu;
        pr_err_info e;
        char base[64];
        int want = attempts[k] ? attempts[k] : 5, i;
        rf_opts(&f);
        f.po.open_attempts = attempts[k];
        snprintf(base, sizeof base, "http://127.0.0.1:%u", (unsigned)rf_dead_port());
        PT_REQUIRE(rf_start_at(&f, base, 0) == PR_OK);
        PT_EQ_ERR(pr_rfuture_start(&fu, f.p, "r1", NULL), PR_OK);
        PT_EQ_ERR(pr_future_await(fu, NULL, PR_FOREVER), PR_EIO);
        PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
        PT_EQ_ERR(e.code, PR_EIO);
        PT_EQ_INT(e.sys_errno, ECONNREFUSED);
        PT_EQ_INT(f.evs.n, want); /* one connection_error per poll; the last one settles it */
        PT_EQ_INT(rf_count(&f.evs, "connection_error"), want);
        PT_EQ_INT(f.evs.settled[want - 1], 1);
        PT_EQ_ERR(f.evs.error[want - 1], PR_EIO);
        PT_EQ_INT(f.rec.n, want - 1);
        for (i = 0; i < f.rec.n && i < 64; i++) PT_EQ_INT(f.rec.sleeps[i], 1000 << i);
        pr_future_destroy(fu);
        rf_end(&f);
    }
}

/* The same refusals against a deadline that comes before the next poll
   (1 s later): the await says why at once, PR_EIO with ECONNREFUSED, and
   the future stays pending; a future whose own timeout_ms comes first
   ends with that cause, not with PR_ETIMEDOUT. */
PT_TEST(rfuture_refused_says_why_before_deadline) {
    rf_fx f;
    pr_future *fu;
    pr_err_info e;
    pr_rfuture_opts o;
    char base[64];
    rf_opts(&f);
    f.po.hooks.sleep = NULL; /* real sleeps: the next poll is 1 s away */
    snprintf(base, sizeof base, "http://127.0.0.1:%u", (unsigned)rf_dead_port());
    PT_REQUIRE(rf_start_at(&f, base, 0) == PR_OK);
    PT_EQ_ERR(pr_rfuture_start(&fu, f.p, "r1", NULL), PR_OK);
    PT_EQ_ERR(pr_future_await(fu, NULL, pr_deadline_in(500)), PR_EIO);
    PT_EQ_INT(pr_future_state(fu), PR_FUTURE_PENDING);
    PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
    PT_EQ_ERR(e.code, PR_EIO);
    PT_EQ_INT(e.sys_errno, ECONNREFUSED);
    PT_EQ_INT(rf_count(&f.evs, "connection_error"), 1);
    PT_EQ_ERR(pr_future_cancel(fu), PR_OK);
    pr_future_destroy(fu);
    memset(&o, 0, sizeof o);
    o.timeout_ms = 500;
    PT_EQ_ERR(pr_rfuture_start(&fu, f.p, "r2", &o), PR_OK);
    PT_EQ_ERR(pr_future_await(fu, NULL, PR_FOREVER), PR_EIO);
    PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
    PT_EQ_INT(e.sys_errno, ECONNREFUSED);
    PT_CHECK(strstr(e.msg, "after timeout_ms") != NULL);
    PT_EQ_INT(f.evs.settled[f.evs.n - 1], 1);
    PT_EQ_ERR(f.evs.error[f.evs.n - 1], PR_EIO);
    pr_future_destroy(fu);
    rf_end(&f);
}

/* Polls that get no answer within poll_timeout_ms are transient
   failures like refusals: after open_attempts of them PR_EIO with
   ETIMEDOUT, never PR_ETIMEDOUT, which is the caller's limit alone. */
PT_TEST(rfuture_poll_timeouts_are_eio) {
    rf_fx f;
    pr_future *fu;
    pr_err_info e;
    ts_step st = rf_step(200, "{\"v\":\"late\"}");
    rf_opts(&f);
    f.po.poll_timeout_ms = 50;
    f.po.open_attempts = 2;
    PT_REQUIRE(rf_start(&f) == PR_OK);
    st.delay_head_ms = 3000;
    PT_EQ_ERR(ts_script_default(f.s, "/api/v1/retrieve_future#r1", &st), PR_OK);
    PT_EQ_ERR(rf_run(&f, "r1", NULL, &fu), PR_EIO);
    PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
    PT_EQ_ERR(e.code, PR_EIO);
    PT_EQ_INT(e.sys_errno, ETIMEDOUT);
    PT_EQ_INT(ts_log_count(f.s), 2);
    PT_EQ_INT(f.rec.n, 1);
    PT_EQ_INT(rf_count(&f.evs, "connection_error"), 2);
    pr_future_destroy(fu);
    rf_end(&f);
}

/* A server that answers 503 to every poll: PR_EHTTP 503 after
   open_attempts polls. Once a poll has been answered a job may run for
   minutes: 503s are polled through (no bound by default), or up to
   max_failures in a row, each answer starting the count again. */
PT_TEST(rfuture_persistent_503) {
    rf_fx f;
    pr_future *fu;
    pr_err_info e;
    ts_step st[6];
    size_t n;
    st[0] = rf_step(503, "busy");
    rf_opts(&f);
    PT_REQUIRE(rf_start(&f) == PR_OK);
    PT_EQ_ERR(ts_script_default(f.s, "/api/v1/retrieve_future#r1", &st[0]), PR_OK);
    PT_EQ_ERR(rf_run(&f, "r1", NULL, &fu), PR_EHTTP);
    PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
    PT_EQ_INT(e.http_status, 503);
    PT_EQ_INT(ts_log_count(f.s), 5);
    PT_EQ_INT(rf_count(&f.evs, "api_status_error"), 5);
    PT_EQ_INT(f.evs.settled[4], 1);
    pr_future_destroy(fu);
    /* answered first: eight 503s are polled through */
    st[0] = rf_step(200, "{\"type\":\"try_again\",\"request_id\":\"r2\"}");
    st[1] = rf_step(503, "busy");
    st[1].count = 8;
    st[2] = rf_step(200, "{\"v\":\"ok\"}");
    rf_script(&f, "r2", st, 3);
    n = ts_log_count(f.s);
    PT_EQ_ERR(rf_run(&f, "r2", NULL, &fu), PR_OK);
    PT_EQ_INT(ts_log_count(f.s) - n, 10);
    pr_future_destroy(fu);
    rf_end(&f);
    /* max_failures 3: two 503s, an answer, two 503s, the result; then 503s for good: 3 */
    rf_opts(&f);
    f.po.max_failures = 3;
    PT_REQUIRE(rf_start(&f) == PR_OK);
    st[0] = rf_step(200, "{\"type\":\"try_again\",\"request_id\":\"r3\"}");
    st[1] = rf_step(503, "busy");
    st[1].count = 2;
    st[2] = st[0];
    st[3] = st[1];
    st[4] = rf_step(200, "{\"v\":\"ok\"}");
    rf_script(&f, "r3", st, 5);
    PT_EQ_ERR(rf_run(&f, "r3", NULL, &fu), PR_OK);
    PT_EQ_INT(ts_log_count(f.s), 7);
    pr_future_destroy(fu);
    st[1] = rf_step(503, "busy");
    rf_script(&f, "r4", st, 1);
    PT_EQ_ERR(ts_script_default(f.s, "/api/v1/retrieve_future#r4", &st[1]), PR_OK);
    n = ts_log_count(f.s);
    PT_EQ_ERR(rf_run(&f, "r4", NULL, &fu), PR_EHTTP);
    PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
    PT_EQ_INT(e.http_status, 503);
    PT_EQ_INT(ts_log_count(f.s) - n, 1 + 3);
    pr_future_destroy(fu);
    rf_end(&f);
}

/* Causes polling again cannot cure end the future at the first poll, with
   their own code and detail: a name that does not exist (the resolver
   answers "no such name" without any DNS traffic), https to a server that
   does not speak TLS, a certificate no anchor vouches for. */
PT_TEST(rfuture_final_causes_end_at_once) {
    rf_fx f;
    pr_future *fu;
    pr_err_info e;
    char base[96];
    rf_opts(&f);
    __atomic_store_n(&pr__net_test_dns_offline, 1, __ATOMIC_SEQ_CST);
    PT_REQUIRE(rf_start_at(&f, "http://no-such-host.test:8080", 0) == PR_OK);
    PT_EQ_ERR(rf_run(&f, "r1", NULL, &fu), PR_EDNS);
    PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
    PT_EQ_ERR(e.code, PR_EDNS);
    PT_CHECK(e.dns_error != 0);
    PT_EQ_INT(f.evs.n, 1);
    PT_EQ_INT(f.evs.settled[0], 1);
    PT_EQ_INT(f.rec.n, 0);
    pr_future_destroy(fu);
    rf_end(&f);
    PT_EQ_INT(net_wait_jobs_drained(20000), 0);
    __atomic_store_n(&pr__net_test_dns_offline, 0, __ATOMIC_SEQ_CST);
#ifdef PRISTINE_NO_TLS
    (void)base;
    PT_SKIP("no TLS in this build");
#else
    if (system("sh tests/fixtures/tls_mkcerts.sh build/tls-fixtures") != 0) PT_SKIP("no openssl to make certificates");
    /* https to plain HTTP */
    {
        pt_plain plain;
        PT_REQUIRE(pt_plain_start(&plain) == PR_OK);
        rf_opts(&f);
        snprintf(base, sizeof base, "https://127.0.0.1:%u", (unsigned)pt_plain_port(&plain));
        PT_REQUIRE(rf_start_at(&f, base, 1) == PR_OK);
        PT_EQ_ERR(rf_run(&f, "r1", NULL, &fu), PR_ETLS);
        PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
        PT_EQ_ERR(e.code, PR_ETLS);
        PT_EQ_INT(f.evs.n, 1);
        PT_EQ_INT(f.rec.n, 0);
        PT_EQ_INT(plain.accepts, 1);
        pr_future_destroy(fu);
        rf_end(&f);
        pt_plain_stop(&plain);
    }
    /* a certificate signed by another CA */
    rf_opts(&f);
    f.so.tls_cert_file = "build/tls-fixtures/unknown.crt";
    f.so.tls_key_file = "build/tls-fixtures/unknown.key";
    PT_REQUIRE(ts_start(&f.s, &f.so) == PR_OK);
    snprintf(base, sizeof base, "https://localhost:%u", (unsigned)ts_port(f.s));
    PT_REQUIRE(rf_start_at(&f, base, 1) == PR_OK);
    PT_EQ_ERR(rf_run(&f, "r1", NULL, &fu), PR_ETLS);
    PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
    PT_EQ_ERR(e.code, PR_ETLS);
    PT_CHECK(e.tls_error != 0);
    PT_EQ_INT(f.evs.n, 1);
    PT_EQ_INT(f.rec.n, 0);
    PT_EQ_INT(ts_log_count(f.s), 0);
    pr_future_destroy(fu);
    rf_end(&f);
#endif
}

/* The poller's own client (no client given) takes opts.tls: https to the
   TLS test server with the test CA, a poll and a submit. */
PT_TEST(rfuture_own_client_tls) {
#ifdef PRISTINE_NO_TLS
    PT_SKIP("no TLS in this build");
#else
    rf_fx f;
    pr_future *fu;
    char base[96];
    if (system("sh tests/fixtures/tls_mkcerts.sh build/tls-fixtures") != 0) PT_SKIP("no openssl to make certificates");
    rf_opts(&f);
    f.so.tls_cert_file = "build/tls-fixtures/good.crt";
    f.so.tls_key_file = "build/tls-fixtures/good.key";
    PT_REQUIRE(ts_start(&f.s, &f.so) == PR_OK);
    snprintf(base, sizeof base, "https://localhost:%u", (unsigned)ts_port(f.s));
    PT_REQUIRE(rf_start_at(&f, base, 1) == PR_OK);
    PT_CHECK(f.c == NULL);
    PT_EQ_ERR(rf_run(&f, "t1", NULL, &fu), PR_OK);
    PT_EQ_STR(rf_res_str(fu, "request_id"), "t1");
    pr_future_destroy(fu);
    PT_EQ_ERR(pr_rfuture_submit(&fu, f.p, "/api/v1/asample", "{}", 2, NULL, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_future_await(fu, NULL, pr_deadline_in(20000)), PR_OK);
    PT_EQ_STR(rf_res_str(fu, "request_id"), "req-1");
    pr_future_destroy(fu);
    PT_EQ_INT(ts_log_count(f.s), 3 + 1 + 3);
    rf_end(&f);
#endif
}

/* A job marked resubmittable whose poll answers 410 is submitted again
   (the same path and body) and the new request id polled, at most
   max_resubmits times; on_event hears "resubmitted" with both ids. A job
   not marked: PR_EEXPIRED. */
PT_TEST(rfuture_resubmit_after_expiry) {
    static const char body[] = "{\"prompt\":\"hi\"}";
    rf_fx f;
    pr_future *fu;
    pr_rfuture_opts o;
    pr_err_info e;
    ts_step gone = rf_step(410, "{}");
    char v[64];
    int i, k = -1;
    rf_opts(&f);
    PT_REQUIRE(rf_start(&f) == PR_OK);
    /* not marked: req-1 expires */
    rf_script(&f, "req-1", &gone, 1);
    PT_EQ_ERR(pr_rfuture_submit(&fu, f.p, "/api/v1/asample", body, 15, NULL, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_future_await(fu, NULL, pr_deadline_in(20000)), PR_EEXPIRED);
    PT_EQ_INT(ts_log_count(f.s), 2);
    PT_EQ_INT(rf_count(&f.evs, "resubmitted"), 0);
    pr_future_destroy(fu);
    /* marked: req-2 expires, the job is submitted again as req-3, which resolves on its third poll */
    rf_script(&f, "req-2", &gone, 1);
    memset(&o, 0, sizeof o);
    o.resubmittable = 1;
    o.request_type = "Sample";
    f.evs.n = 0;
    PT_EQ_ERR(pr_rfuture_submit(&fu, f.p, "/api/v1/asample", body, 15, &o, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_future_await(fu, NULL, pr_deadline_in(20000)), PR_OK);
    PT_EQ_STR(rf_res_str(fu, "request_id"), "req-3");
    pr_future_destroy(fu);
    PT_EQ_INT(ts_log_count(f.s), 2 + 2 + 1 + 3);
    PT_CHECK(pr_slice_eq(ts_log_get(f.s, 4)->path, pr_slice_cstr("/api/v1/asample")));
    PT_EQ_STR(ts_log_get(f.s, 4)->body, body);
    PT_EQ_STR(ts_log_get(f.s, 5)->body, "{\"request_id\":\"req-3\",\"allow_metadata_only\":true}");
    PT_EQ_STR(rf_logged(&f, 5, "X-Tinker-Request-Iteration", v, sizeof v), "0");
    PT_EQ_STR(rf_logged(&f, 5, "X-Tinker-Request-Type", v, sizeof v), "Sample");
    for (i = 0; i < f.evs.n && i < 16; i++)
        if (!strcmp(f.evs.name[i], "APIFuture.result_async.resubmitted")) k = i;
    PT_REQUIRE(k >= 1);
    PT_EQ_INT(rf_count(&f.evs, "resubmitted"), 1);
    PT_EQ_STR(f.evs.id[k], "req-2");
    PT_EQ_STR(f.evs.new_id[k], "req-3");
    PT_EQ_INT(f.evs.settled[k], 0);
    PT_EQ_INT(f.evs.status[k - 1], 410); /* the 410 before it, not settling the future */
    PT_EQ_INT(f.evs.settled[k - 1], 0);
    PT_EQ_STR(f.evs.name[f.evs.n - 1], "APIFuture.result_async.resolved");
    /* the bound: req-4 and its resubmission req-5 both expire: PR_EEXPIRED after two submits */
    rf_script(&f, "req-4", &gone, 1);
    rf_script(&f, "req-5", &gone, 1);
    f.evs.n = 0;
    PT_EQ_ERR(pr_rfuture_submit(&fu, f.p, "/api/v1/asample", body, 15, &o, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_future_await(fu, NULL, pr_deadline_in(20000)), PR_EEXPIRED);
    PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
    PT_EQ_INT(e.http_status, 410);
    PT_EQ_INT(rf_count(&f.evs, "resubmitted"), 1);
    PT_EQ_INT(ts_log_count(f.s), 8 + 4);
    pr_future_destroy(fu);
    /* max_resubmits 2: req-6 and req-7 expire, req-8 resolves */
    rf_script(&f, "req-6", &gone, 1);
    rf_script(&f, "req-7", &gone, 1);
    o.max_resubmits = 2;
    f.evs.n = 0;
    PT_EQ_ERR(pr_rfuture_submit(&fu, f.p, "/api/v1/asample", body, 15, &o, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_future_await(fu, NULL, pr_deadline_in(20000)), PR_OK);
    PT_EQ_STR(rf_res_str(fu, "request_id"), "req-8");
    PT_EQ_INT(rf_count(&f.evs, "resubmitted"), 2);
    pr_future_destroy(fu);
    rf_end(&f);
}

/* ---- cancellation in every phase ---- */

PT_TEST(rfuture_cancel_in_every_phase) {
    rf_fx f;
    pr_future *hold, *fu;
    ts_step st;
    size_t n;
    int phase;
    for (phase = 0; phase < 3; phase++) {
        rf_opts(&f);
        f.po.max_polls = 1;
        if (phase == 2) f.rec.real = 1; /* the backoff sleep is real */
        PT_REQUIRE(rf_start(&f) == PR_OK);
        /* a poll held by the server: phase 0 cancels a future waiting for the only slot,
           phase 1 the one reading the held answer, phase 2 a future asleep after a 429 */
        st = rf_step(200, "{\"type\":\"try_again\",\"request_id\":\"h\"}");
        st.delay_head_ms = 400;
        PT_EQ_ERR(ts_script_default(f.s, "/api/v1/retrieve_future#h", &st), PR_OK);
        st = rf_step(429, "{}");
        PT_EQ_ERR(ts_script_default(f.s, "/api/v1/retrieve_future#s", &st), PR_OK);
        PT_EQ_ERR(pr_rfuture_start(&hold, f.p, phase == 2 ? "s" : "h", NULL), PR_OK);
        fu = NULL;
        if (phase == 0) PT_EQ_ERR(pr_rfuture_start(&fu, f.p, "w", NULL), PR_OK);
        PT_EQ_ERR(pr_sleep(pr_deadline_in(50)), PR_OK);
        n = ts_log_count(f.s);
        PT_EQ_INT(n, 1);
        if (phase == 0) {
            PT_EQ_INT(f.p->nready, 1); /* waiting for the slot */
            PT_EQ_ERR(pr_future_cancel(fu), PR_OK);
            PT_EQ_ERR(pr_future_await(fu, NULL, 0), PR_ECANCELED);
            PT_EQ_ERR(pr_sleep(pr_deadline_in(5)), PR_OK);
            PT_EQ_INT(f.p->nready, 0);
            pr_future_destroy(fu);
        }
        PT_EQ_ERR(pr_future_cancel(hold), PR_OK);
        PT_EQ_ERR(pr_sleep(pr_deadline_in(600)), PR_OK);
        PT_EQ_INT(ts_log_count(f.s), n); /* polling stopped */
        PT_EQ_INT(f.p->nlive, 0);        /* every poller task is gone */
        PT_EQ_INT(f.p->active, 0);
        pr_future_destroy(hold);
        rf_end(&f);
    }
}

/* Cancelled while connecting: the listener's accept queue is full, so the
   SYN of the poll's connection goes unanswered. */
PT_TEST(rfuture_cancel_while_connecting) {
    pr_listener *l;
    pr_conn *fill[8];
    pr_http_client *c;
    pr_rfuture_poller *p;
    pr_rfuture_poller_opts po;
    pr_future *fu;
    char base[64];
    int nfill = 0, i;
    PT_REQUIRE(pr_tcp_listen(&l, "127.0.0.1", 0, 1, NULL) == PR_OK);
    for (i = 0; i < 8; i++) { /* fill the queue until a connect stalls */
        pr_conn *k = NULL;
        if (pr_tcp_connect(&k, "127.0.0.1", pr_listener_port(l), NULL, NULL, pr_deadline_in(100)) != PR_OK) break;
        fill[nfill++] = k;
    }
    if (i == 8) { /* the kernel kept accepting: nothing stalls here */
        while (nfill) pr_conn_destroy(fill[--nfill]);
        pr_listener_destroy(l);
        PT_SKIP("the accept queue never filled");
    }
    snprintf(base, sizeof base, "http://127.0.0.1:%u", (unsigned)pr_listener_port(l));
    PT_REQUIRE(pr_http_client_create(&c, &(pr_http_client_opts){ .ignore_env = 1 }, NULL) == PR_OK);
    memset(&po, 0, sizeof po);
    po.base_url = base;
    PT_REQUIRE(pr_rfuture_poller_create(&p, c, &po, NULL) == PR_OK);
    PT_EQ_ERR(pr_rfuture_start(&fu, p, "r1", NULL), PR_OK);
    PT_EQ_ERR(pr_sleep(pr_deadline_in(50)), PR_OK); /* it is in connect now */
    PT_EQ_INT(pr_future_state(fu), PR_FUTURE_PENDING);
    PT_EQ_ERR(pr_future_cancel(fu), PR_OK);
    PT_EQ_ERR(pr_sleep(pr_deadline_in(5)), PR_OK);
    PT_EQ_INT(p->nlive, 0);
    PT_EQ_INT(p->active, 0);
    pr_future_destroy(fu);
    pr_rfuture_poller_destroy(p);
    pr_http_client_destroy(c);
    while (nfill) pr_conn_destroy(fill[--nfill]);
    pr_listener_destroy(l);
}

PT_TEST(rfuture_poller_destroy_cancels) {
    rf_fx f;
    pr_future *fu;
    pr_err_info e;
    ts_step st = rf_step(200, "{\"type\":\"try_again\",\"request_id\":\"h\"}");
    rf_opts(&f);
    st.delay_head_ms = 200;
    PT_REQUIRE(rf_start(&f) == PR_OK);
    PT_EQ_ERR(ts_script_default(f.s, "/api/v1/retrieve_future#h", &st), PR_OK);
    PT_EQ_ERR(pr_rfuture_start(&fu, f.p, "h", NULL), PR_OK);
    PT_EQ_ERR(pr_sleep(pr_deadline_in(20)), PR_OK);
    pr_rfuture_poller_destroy(f.p);
    f.p = NULL;
    PT_EQ_ERR(pr_future_await(fu, NULL, pr_deadline_in(1000)), PR_ECANCELED);
    PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
    PT_EQ_STR(e.msg, "rfuture: request h: polling cancelled");
    pr_future_destroy(fu);
    rf_end(&f);
}

/* ---- many at once ---- */

PT_TEST(rfuture_ten_thousand_at_once) {
    enum { N = 10000 };
    rf_fx f;
    pr_future **fs = (pr_future **)calloc(N, sizeof *fs);
    char id[32];
    size_t i, bad = 0;
    PT_REQUIRE(fs != NULL);
    rf_opts(&f);
    f.po.observer.on_queue_state = NULL;
    f.po.observer.on_event = NULL;
    f.so.future_polls = 3;
    PT_REQUIRE(rf_start(&f) == PR_OK);
    for (i = 0; i < N; i++) {
        snprintf(id, sizeof id, "bulk-%lu", (unsigned long)i);
        PT_REQUIRE(pr_rfuture_start(&fs[i], f.p, id, NULL) == PR_OK);
    }
    PT_EQ_ERR(pr_future_await_all(fs, N, PR_AWAIT_FAIL_FAST, NULL, pr_deadline_in(60000)), PR_OK);
    for (i = 0; i < N; i++) {
        int64_t polls = 0;
        snprintf(id, sizeof id, "bulk-%lu", (unsigned long)i);
        if (!rf_res_str(fs[i], "request_id") || strcmp(rf_res_str(fs[i], "request_id"), id) ||
            pr_json_int(pr_json_get(pr_rfuture_result(fs[i]), "polls"), &polls) != PR_OK || polls != 3)
            bad++;
        pr_future_destroy(fs[i]);
    }
    free(fs);
    PT_EQ_INT(bad, 0);
    PT_EQ_INT(ts_log_count(f.s), 3 * N);
    PT_CHECK(ts_accepted(f.s) <= 100); /* never more than max_polls connections */
    rf_end(&f);
}

/* A submit answered with an error status, or without a request id: the
   code, and err says why. */
PT_TEST(rfuture_submit_errors_say_why) {
    rf_fx f;
    pr_http_client_opts co;
    pr_rfuture_opts o;
    pr_err_info e;
    pr_future *fu = NULL;
    ts_step st[2];
    rf_opts(&f);
    PT_REQUIRE(ts_start(&f.s, &f.so) == PR_OK);
    snprintf(f.base, sizeof f.base, "http://127.0.0.1:%u", (unsigned)ts_port(f.s));
    memset(&co, 0, sizeof co);
    co.ignore_env = 1;
    co.retry.max_retries = PR_RETRY_OFF;
    PT_REQUIRE(pr_http_client_create(&f.c, &co, NULL) == PR_OK);
    f.po.base_url = f.base;
    PT_REQUIRE(pr_rfuture_poller_create(&f.p, f.c, &f.po, NULL) == PR_OK);
    st[0] = rf_step(429, "{\"detail\":\"slow down\"}");
    st[1] = rf_step(200, "{\"model_id\":\"m-1\"}");
    PT_EQ_ERR(ts_script(f.s, "/api/v1/asample", st, 2), PR_OK);
    memset(&o, 0, sizeof o);
    memset(&e, 0, sizeof e);
    PT_EQ_ERR(pr_rfuture_submit(&fu, f.p, "/api/v1/asample", "{}", 2, &o, &e, pr_deadline_in(5000)), PR_EHTTP);
    PT_CHECK(fu == NULL);
    PT_EQ_ERR(e.code, PR_EHTTP);
    PT_EQ_INT(e.http_status, 429);
    PT_CHECK(strstr(e.msg, "slow down") != NULL);
    memset(&e, 0, sizeof e);
    PT_EQ_ERR(pr_rfuture_submit(&fu, f.p, "/api/v1/asample", "{}", 2, &o, &e, pr_deadline_in(5000)), PR_EPROTO);
    PT_CHECK(fu == NULL);
    PT_EQ_ERR(e.code, PR_EPROTO);
    PT_CHECK(strstr(e.msg, "request_id") != NULL);
    memset(&e, 0, sizeof e);
    PT_EQ_ERR(pr_rfuture_submit(&fu, f.p, NULL, "{}", 2, &o, &e, pr_deadline_in(5000)), PR_EINVAL);
    PT_EQ_ERR(e.code, PR_EINVAL);
    PT_CHECK(strstr(e.msg, "path") != NULL);
    rf_end(&f);
}

/* Strings of the server that the poller keeps and sends on are checked
   where they enter: a submit's request_id or a queue_state_reason with a
   NUL byte or over 1024 bytes is PR_EPROTO with a message, never cut. */
PT_TEST(rfuture_server_strings_checked) {
    static char big[1100], body[1200];
    static const char *const nul_reason[] = {
        "{\"type\":\"try_again\",\"request_id\":\"q\",\"queue_state\":\"active\",\"queue_state_reason\":\"a\\u0000b\"}",
        "{\"type\":\"try_again\",\"request_id\":\"q\",\"queue_state_reason\":\"\\u0000\"}",
    };
    rf_fx f;
    pr_rfuture_opts o;
    pr_err_info e;
    pr_future *fu = NULL;
    ts_step st[2];
    size_t i;
    rf_opts(&f);
    PT_REQUIRE(rf_start(&f) == PR_OK);
    memset(&o, 0, sizeof o);
    /* a request_id with \u0000: refused, nothing polled */
    st[0] = rf_step(200, "{\"request_id\":\"ab\\u0000cd\"}");
    PT_EQ_ERR(ts_script(f.s, "/api/v1/asample", st, 1), PR_OK);
    PT_EQ_ERR(pr_rfuture_submit(&fu, f.p, "/api/v1/asample", "{}", 2, &o, &e, pr_deadline_in(5000)), PR_EPROTO);
    PT_CHECK(fu == NULL);
    PT_EQ_ERR(e.code, PR_EPROTO);
    PT_EQ_STR(e.msg, "rfuture: the submit's request_id holds a NUL byte");
    /* 1025 bytes: refused; 1024 bytes: sent back whole */
    memset(big, 'x', 1025);
    snprintf(body, sizeof body, "{\"request_id\":\"%s\"}", big);
    st[0] = rf_step(200, body);
    PT_EQ_ERR(ts_script(f.s, "/api/v1/asample", st, 1), PR_OK);
    PT_EQ_ERR(pr_rfuture_submit(&fu, f.p, "/api/v1/asample", "{}", 2, &o, &e, pr_deadline_in(5000)), PR_EPROTO);
    PT_CHECK(fu == NULL);
    PT_EQ_STR(e.msg, "rfuture: the submit's request_id is over 1024 bytes");
    PT_EQ_INT(ts_log_count(f.s), 2);
    big[1024] = 0;
    snprintf(body, sizeof body, "{\"request_id\":\"%s\"}", big);
    st[0] = rf_step(200, body);
    PT_EQ_ERR(ts_script(f.s, "/api/v1/asample", st, 1), PR_OK);
    PT_EQ_ERR(pr_rfuture_submit(&fu, f.p, "/api/v1/asample", "{}", 2, &o, &e, pr_deadline_in(5000)), PR_OK);
    pr_future_await(fu, NULL, pr_deadline_in(5000)); /* the test server has no route for so long an id */
    pr_future_destroy(fu);
    PT_REQUIRE(ts_log_count(f.s) >= 4);
    snprintf(body, sizeof body, "{\"request_id\":\"%s\",\"allow_metadata_only\":true}", big);
    PT_EQ_STR(ts_log_get(f.s, 3)->body, body);
    /* a queue_state_reason with \u0000, in a 200 or a 408: PR_EPROTO after that poll, no observer call */
    for (i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof id, "q%d", (int)i);
        st[0] = rf_step(i < 2 ? 200 : 408, nul_reason[i % 2]);
        st[1] = rf_step(200, "{\"v\":\"never\"}");
        rf_script(&f, id, st, 2);
        f.obs.n = 0;
        PT_EQ_ERR(rf_run(&f, id, NULL, &fu), PR_EPROTO);
        PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
        snprintf(body, sizeof body, "rfuture: request %s: the queue_state_reason holds a NUL byte", id);
        PT_EQ_STR(e.msg, body);
        PT_EQ_INT(e.http_status, i < 2 ? 200 : 408);
        PT_EQ_INT(f.obs.n, 0);
        pr_future_destroy(fu);
    }
    /* a 1025-byte reason: PR_EPROTO; 1024 bytes: heard whole */
    big[1024] = 'x';
    snprintf(body, sizeof body, "{\"type\":\"try_again\",\"queue_state\":\"active\",\"queue_state_reason\":\"%s\"}", big);
    st[0] = rf_step(200, body);
    st[1] = rf_step(200, "{\"v\":\"ok\"}");
    rf_script(&f, "long", st, 2);
    PT_EQ_ERR(rf_run(&f, "long", NULL, &fu), PR_EPROTO);
    PT_EQ_ERR(pr_future_last_error(fu, &e), PR_OK);
    PT_EQ_STR(e.msg, "rfuture: request long: the queue_state_reason is over 1024 bytes");
    pr_future_destroy(fu);
    big[1024] = 0;
    snprintf(body, sizeof body, "{\"type\":\"try_again\",\"queue_state\":\"active\",\"queue_state_reason\":\"%s\"}", big);
    st[0] = rf_step(200, body);
    rf_script(&f, "fits", st, 2);
    f.obs.n = 0;
    PT_EQ_ERR(rf_run(&f, "fits", NULL, &fu), PR_OK);
    PT_EQ_INT(f.obs.n, 1);
    pr_future_destroy(fu);
    rf_end(&f);
}

/* A service with its own names (a non-default profile): another retrieve
   path, other headers, JSON members and event names, against routes of the
   test server; none of the built-in names is sent, and a header set to ""
   is left out. */
PT_TEST(rfuture_custom_profile) {
    rf_fx f;
    pr_future *fu = NULL;
    pr_rfuture_opts o;
    ts_step st[3], sub = rf_step(200, "{\"job_id\":\"j-9\",\"request_id\":\"wrong\"}");
    char v[64];
    size_t i;
    int64_t n;
    rf_opts(&f);
    f.po.profile.path = "/v2/jobs/poll";
    f.po.profile.iteration_header = "X-Acme-Attempt";
    f.po.profile.type_header = "X-Acme-Kind";
    f.po.profile.roundtrip_header = ""; /* not sent */
    f.po.profile.request_id_field = "job_id";
    f.po.profile.metadata_field = "partial_ok";
    f.po.profile.queue_state_field = "queue";
    f.po.profile.retry_after_field = "wait_ms";
    f.po.profile.event_prefix = "acme.poll.";
    PT_REQUIRE(rf_start(&f) == PR_OK);
    st[0] = rf_step(503, "busy");
    st[1] = rf_step(200, "{\"type\":\"try_again\",\"queue\":\"paused_capacity\",\"queue_state\":\"active\","
                         "\"wait_ms\":250}");
    st[2] = rf_step(200, "{\"status\":\"completed\",\"result\":{\"v\":7}}");
    PT_EQ_ERR(ts_script(f.s, "/v2/jobs/poll", st, 3), PR_OK);
    PT_EQ_ERR(ts_script(f.s, "/v2/jobs", &sub, 1), PR_OK);
    memset(&o, 0, sizeof o);
    o.request_type = "Sample";
    PT_REQUIRE(pr_rfuture_submit(&fu, f.p, "/v2/jobs", "{}", 2, &o, NULL, pr_deadline_in(10000)) == PR_OK);
    PT_EQ_ERR(pr_future_await(fu, NULL, pr_deadline_in(20000)), PR_OK);
    PT_CHECK(pr_json_int(pr_json_get(pr_rfuture_result(fu), "v"), &n) == PR_OK && n == 7);
    /* the submit, then three polls on the profile's path with its names */
    PT_EQ_INT(ts_log_count(f.s), 4);
    PT_CHECK(pr_slice_eq(ts_log_get(f.s, 0)->path, pr_slice_cstr("/v2/jobs")));
    for (i = 1; i < 4 && i < ts_log_count(f.s); i++) {
        char want[2] = { (char)('0' + i - 1), 0 };
        PT_CHECK(pr_slice_eq(ts_log_get(f.s, i)->path, pr_slice_cstr("/v2/jobs/poll")));
        PT_EQ_STR(ts_log_get(f.s, i)->body, "{\"job_id\":\"j-9\",\"partial_ok\":true}");
        PT_EQ_STR(rf_logged(&f, i, "X-Acme-Attempt", v, sizeof v), want);
        PT_EQ_STR(rf_logged(&f, i, "X-Acme-Kind", v, sizeof v), "Sample");
        PT_EQ_STR(rf_logged(&f, i, "X-Tinker-Request-Iteration", v, sizeof v), "-");
        PT_EQ_STR(rf_logged(&f, i, "X-Tinker-Request-Type", v, sizeof v), "-");
        PT_EQ_STR(rf_logged(&f, i, "X-Tinker-Create-Promise-Roundtrip-Time", v, sizeof v), "-");
    }
    /* the queue state from the profile's member (not the built-in one's), the server's delay from its own */
    PT_EQ_INT(f.obs.n, 1);
    PT_EQ_INT(f.obs.state[0], PR_QUEUE_PAUSED_CAPACITY);
    PT_EQ_INT(f.rec.n, 2);
    PT_EQ_INT(f.rec.sleeps[1], 250);
    /* events under the profile's prefix */
    PT_EQ_INT(f.evs.n, 2);
    PT_EQ_STR(f.evs.name[0], "acme.poll.api_status_error");
    PT_EQ_INT(f.evs.status[0], 503);
    PT_EQ_STR(f.evs.name[1], "acme.poll.resolved");
    pr_future_destroy(fu);
    rf_end(&f);
}

/* A profile whose names cannot work is refused at create. */
PT_TEST(rfuture_profile_checked) {
    pr_rfuture_poller *p = NULL;
    pr_rfuture_poller_opts o;
    pr_http_client *c;
    pr_err_info e;
    char prefix[80];
    PT_REQUIRE(pr_http_client_create(&c, &(pr_http_client_opts){ .ignore_env = 1 }, NULL) == PR_OK);
    memset(&o, 0, sizeof o);
    o.base_url = "http://127.0.0.1:1";
    o.profile.type_header = "X-Bad\r\nInjected: 1";
    PT_EQ_ERR(pr_rfuture_poller_create(&p, c, &o, &e), PR_EINVAL);
    PT_CHECK(p == NULL);
    PT_CHECK(strstr(e.msg, "is not a header name") != NULL);
    o.profile.type_header = NULL;
    memset(prefix, 'x', 65);
    prefix[65] = 0;
    o.profile.event_prefix = prefix;
    PT_EQ_ERR(pr_rfuture_poller_create(&p, c, &o, &e), PR_EINVAL);
    PT_EQ_STR(e.msg, "rfuture: the profile's event_prefix is over 64 bytes");
    prefix[64] = 0;
    PT_EQ_ERR(pr_rfuture_poller_create(&p, c, &o, &e), PR_OK);
    pr_rfuture_poller_destroy(p);
    pr_http_client_destroy(c);
}

PT_TEST(rfuture_queue_logger_debounces) {
    pr_queue_log l = { "Sampling", 0 };
    pr_queue_change c;
    memset(&c, 0, sizeof c);
    c.request_id = "r1";
    c.state = PR_QUEUE_ACTIVE;
    pr_queue_log_change(&c, &l);
    PT_EQ_INT(l.last_ms, 0); /* active is not logged */
    c.state = PR_QUEUE_PAUSED_CAPACITY;
    pr_queue_log_change(&c, &l);
    PT_CHECK(l.last_ms != 0);
    {
        int64_t first = l.last_ms;
        pr__time_test_clock_virtual(1, first + 1000);
        pr_queue_log_change(&c, &l);
        PT_EQ_INT(l.last_ms, first); /* within a minute: not again */
        pr__time_test_clock_advance(60000);
        pr_queue_log_change(&c, &l);
        PT_EQ_INT(l.last_ms, first + 61000);
        pr__time_test_clock_virtual(0, 0);
    }
}

PT_TEST(rfuture_poller_create_errors) {
    pr_rfuture_poller *p = NULL;
    pr_rfuture_poller_opts o;
    pr_http_client *c;
    pr_err_info e;
    PT_REQUIRE(pr_http_client_create(&c, &(pr_http_client_opts){ .ignore_env = 1 }, NULL) == PR_OK);
    memset(&o, 0, sizeof o);
    PT_EQ_ERR(pr_rfuture_poller_create(&p, c, &o, &e), PR_EINVAL);
    PT_EQ_STR(e.msg, "rfuture: opts->base_url is required");
    o.base_url = "ftp://nope";
    PT_EQ_ERR(pr_rfuture_poller_create(&p, c, &o, &e), PR_EINVAL);
    PT_CHECK(strncmp(e.msg, "rfuture: base_url + path: ", 26) == 0);
    o.base_url = "http://127.0.0.1:1";
    o.conn_backoff.base_ms = -1;
    PT_EQ_ERR(pr_rfuture_poller_create(&p, c, &o, &e), PR_EINVAL);
    PT_CHECK(p == NULL);
    o.conn_backoff.base_ms = 0;
    o.hint_max_ms = -1;
    PT_EQ_ERR(pr_rfuture_poller_create(&p, c, &o, &e), PR_EINVAL);
    PT_EQ_STR(e.msg, "rfuture: negative limits");
    o.hint_max_ms = 0;
    o.max_failures = -1;
    PT_EQ_ERR(pr_rfuture_poller_create(&p, c, &o, &e), PR_EINVAL);
    o.max_failures = 0;
    o.tls.ca_file = "build/tls-fixtures/ca.crt"; /* for an own client, and a client is given */
    PT_EQ_ERR(pr_rfuture_poller_create(&p, c, &o, &e), PR_EINVAL);
    PT_EQ_ERR(e.code, PR_EINVAL);
    PT_CHECK(p == NULL);
    o.tls.ca_file = NULL;
    PT_EQ_ERR(pr_rfuture_poller_create(&p, c, &o, &e), PR_OK);
    PT_EQ_ERR(pr_rfuture_start(NULL, p, "x", NULL), PR_EINVAL);
    {
        pr_future *fu = NULL;
        pr_rfuture_opts ro;
        memset(&ro, 0, sizeof ro);
        ro.resubmittable = 1; /* no submit to send again */
        PT_EQ_ERR(pr_rfuture_start(&fu, p, "x", &ro), PR_EINVAL);
        PT_CHECK(fu == NULL);
    }
    pr_rfuture_poller_destroy(p);
    pr_rfuture_poller_destroy(NULL);
    pr_http_client_destroy(c);
}

const pt_suite pt_suite_rfuture = { "rfuture", {
    PT_ENTRY(rfuture_completes_first_poll),
    PT_ENTRY(rfuture_answer_shapes),
    PT_ENTRY(rfuture_failed_shapes),
    PT_ENTRY(rfuture_try_again_and_pending),
    PT_ENTRY(rfuture_queue_state_observer),
    PT_ENTRY(rfuture_status_table),
    PT_ENTRY(rfuture_nothing_new_is_paced),
    PT_ENTRY(rfuture_server_delays_honoured),
    PT_ENTRY(rfuture_hint_cap),
    PT_ENTRY(rfuture_connection_errors_back_off),
    PT_ENTRY(rfuture_refused_ends_after_open_attempts),
    PT_ENTRY(rfuture_refused_says_why_before_deadline),
    PT_ENTRY(rfuture_poll_timeouts_are_eio),
    PT_ENTRY(rfuture_persistent_503),
    PT_ENTRY(rfuture_final_causes_end_at_once),
    PT_ENTRY(rfuture_own_client_tls),
    PT_ENTRY(rfuture_resubmit_after_expiry),
    PT_ENTRY(rfuture_telemetry_events),
    PT_ENTRY(rfuture_complete_metadata_budget),
    PT_ENTRY(rfuture_malformed_answers),
    PT_ENTRY(rfuture_timeouts),
    PT_ENTRY(rfuture_billing_pause),
    PT_ENTRY(rfuture_expired_resubmitted),
    PT_ENTRY(rfuture_cancel_in_every_phase),
    PT_ENTRY(rfuture_cancel_while_connecting),
    PT_ENTRY(rfuture_poller_destroy_cancels),
    PT_ENTRY(rfuture_ten_thousand_at_once),
    PT_ENTRY(rfuture_submit_errors_say_why),
    PT_ENTRY(rfuture_server_strings_checked),
    PT_ENTRY(rfuture_custom_profile),
    PT_ENTRY(rfuture_profile_checked),
    PT_ENTRY(rfuture_queue_logger_debounces),
    PT_ENTRY(rfuture_poller_create_errors),
    {0, 0} } };
