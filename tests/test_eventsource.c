/* test_eventsource.c - the reconnecting stream (pr_sse_open / pr_sse_next)
   against tools/testserver.c on 127.0.0.1: the connection rules (statuses,
   content types, 204), reconnects with Last-Event-ID after an end, a drop
   mid-event and an idle stall, retry: and the backoff, POST streams, the
   failure limit, limits, headers, redirects, cancellation and destroy.
   The waits between connections go through a recording hook, so no test
   sleeps the reconnection time. */

typedef struct es_fx {
    ts_server *s;
    char base[64];
    int64_t sleeps[16], sleep_until[16]; /* each sleep's delay and deadline */
    int nsleeps;
    pr_sse_reconnect seen[16];
    int nseen;
    char seen_lei[16][32];
    char seen_detail[16][128];
} es_fx;

static int es_sleep(int64_t delay, int64_t deadline, void *ud) {
    es_fx *f = (es_fx *)ud;
    if (f->nsleeps < 16) {
        f->sleeps[f->nsleeps] = delay;
        f->sleep_until[f->nsleeps] = deadline;
    }
    f->nsleeps++;
    return pr_is_canceled() ? PR_ECANCELED : PR_OK;
}

static void es_on_reconnect(const pr_sse_reconnect *info, void *ud) {
    es_fx *f = (es_fx *)ud;
    if (f->nseen < 16) {
        f->seen[f->nseen] = *info;
        snprintf(f->seen_lei[f->nseen], sizeof f->seen_lei[0], "%s", info->last_event_id);
        snprintf(f->seen_detail[f->nseen], sizeof f->seen_detail[0], "%s", info->detail);
        f->seen[f->nseen].detail = f->seen_detail[f->nseen]; /* valid during the callback only */
        f->seen[f->nseen].last_event_id = f->seen_lei[f->nseen];
    }
    f->nseen++;
}

static void es_opts(es_fx *f, pr_sse_stream_opts *o) {
    memset(o, 0, sizeof *o);
    o->hooks.sleep = es_sleep;
    o->hooks.user_data = f;
    o->observer.on_reconnect = es_on_reconnect;
    o->observer.user_data = f;
}

/* Wait k: the delay the stream planned (what on_reconnect was told) is
   `want`, exactly, and the sleep hook's delay is what is left of it when the
   next connection starts (the hook is called then, not at the failure: on a
   slow machine, as under qemu, a few ms have gone by). */
#define ES_WAIT_EQ(f, k, want)                                                            \
    do {                                                                                  \
        PT_EQ_INT((f).seen[k].delay_ms, (want));                                          \
        PT_CHECK((f).sleeps[k] > 0 && (f).sleeps[k] <= (f).seen[k].delay_ms);             \
    } while (0)
/* The same with the planned delay in [lo, hi] (jitter). */
#define ES_WAIT_IN(f, k, lo, hi)                                                          \
    do {                                                                                  \
        PT_CHECK((f).seen[k].delay_ms >= (lo) && (f).seen[k].delay_ms <= (hi));           \
        PT_CHECK((f).sleeps[k] > 0 && (f).sleeps[k] <= (f).seen[k].delay_ms);             \
    } while (0)

static void es_start(es_fx *f) {
    memset(f, 0, sizeof *f);
    PT_REQUIRE(ts_start(&f->s, NULL) == PR_OK);
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%u", (unsigned)ts_port(f->s));
}

static const char *es_url(es_fx *f, const char *path) {
    static char u[256];
    snprintf(u, sizeof u, "%s%s", f->base, path);
    return u;
}

#define ES_CT "Content-Type: text/event-stream\r\n"

/* The Last-Event-ID the i-th logged request carried ("" = none). */
static const char *es_lei(es_fx *f, size_t i, char *buf, size_t cap) {
    pr_slice v;
    const ts_logged *e = ts_log_get(f->s, i);
    buf[0] = 0;
    if (e && ts_log_header(e, "Last-Event-ID", &v)) snprintf(buf, cap, "%.*s", (int)v.len, v.ptr);
    return buf;
}

/* The stream ends: reconnect after the reconnection time with the last id,
   the server resumes after it, no event twice. */
PT_TEST(es_reconnect_after_end_resumes) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s;
    pr_sse_event ev;
    char want[32], lei[32];
    int i;
    es_start(&f);
    es_opts(&f, &o);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/sse?events=3&id=1"), &o, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(pr_sse_status(s), 200);
    PT_REQUIRE(pr_sse_header(s, "content-type") != NULL);
    for (i = 1; i <= 6; i++) {
        PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
        snprintf(want, sizeof want, "event %d", i);
        PT_EQ_INT(ev.data_len, strlen(want));
        PT_EQ_MEM(ev.data, want, strlen(want));
        PT_EQ_INT(ev.id_state, PR_SSE_ID_SET);
        PT_EQ_INT(atoi(ev.last_id), i);
        PT_EQ_INT(ev.stream_retry_ms, 3000);
        PT_EQ_INT(ev.retry_ms, -1);
    }
    PT_EQ_INT(pr_sse_reconnects(s), 1);
    PT_EQ_INT(f.nsleeps, 1);
    ES_WAIT_EQ(f, 0, 3000);
    PT_EQ_INT(f.nseen, 1);
    PT_EQ_ERR(f.seen[0].reason, PR_ECLOSED);
    PT_EQ_INT(f.seen[0].failures, 0);
    PT_EQ_STR(f.seen_lei[0], "3");
    PT_EQ_STR(es_lei(&f, 0, lei, sizeof lei), "");
    PT_EQ_STR(es_lei(&f, 1, lei, sizeof lei), "3");
    PT_EQ_STR(pr_sse_last_event_id(s, NULL), "6");
    pr_sse_destroy(s);
    ts_stop(f.s);
}

/* A drop in the middle of an event: its partial block is not delivered,
   the next connection resumes after the last complete one. */
PT_TEST(es_drop_mid_event_no_partial_no_duplicate) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s;
    pr_sse_event ev;
    char want[32], lei[32];
    int i;
    es_start(&f);
    es_opts(&f, &o);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/sse?events=4&id=1&drop_after=2&drop_partial=1"), &o, NULL,
                          pr_deadline_in(5000)), PR_OK);
    for (i = 1; i <= 4; i++) {
        PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
        snprintf(want, sizeof want, "event %d", i);
        PT_EQ_MEM(ev.data, want, strlen(want));
        PT_EQ_INT(ev.data_len, strlen(want));
    }
    PT_EQ_STR(es_lei(&f, 1, lei, sizeof lei), "2");
    PT_CHECK(f.nseen >= 1);
    PT_CHECK(f.seen[0].reason != PR_OK);
    pr_sse_destroy(s);
    ts_stop(f.s);
}

/* retry: sets the reconnection time; consecutive failures add backoff; a
   server's wait is used as given. */
PT_TEST(es_retry_field_and_backoff) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s;
    pr_sse_event ev;
    ts_step st[4];
    es_start(&f);
    es_opts(&f, &o);
    st[0] = hr_step(200, ES_CT, "retry: 500\n\ndata: one\n\n");
    st[1] = hr_step(503, NULL, "busy");
    st[2] = hr_step(503, "retry-after-ms: 4000\r\n", "busy");
    st[3] = hr_step(200, ES_CT, "data: two\n\n");
    PT_EQ_ERR(ts_script(f.s, "/s", st, 4), PR_OK);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/s"), &o, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_MEM(ev.data, "one", 3);
    PT_EQ_INT(ev.retry_ms, -1);        /* the retry came in a block of its own */
    PT_EQ_INT(ev.stream_retry_ms, 500);
    PT_EQ_INT(pr_sse_retry_ms(s), 500);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_MEM(ev.data, "two", 3);
    PT_EQ_INT(f.nsleeps, 3);
    ES_WAIT_EQ(f, 0, 500);                  /* after the end: the reconnection time */
    ES_WAIT_IN(f, 1, 500 + 750, 500 + 1000); /* one failure: + 1 s minus jitter */
    ES_WAIT_EQ(f, 2, 4000);                 /* the server's wait, as given */
    PT_EQ_INT(f.seen[1].failures, 1);
    PT_EQ_INT(f.seen[1].status, 503);
    PT_EQ_ERR(f.seen[1].reason, PR_EHTTP);
    PT_EQ_INT(pr_sse_reconnects(s), 3);
    pr_sse_destroy(s);
    ts_stop(f.s);
}

/* R14: which answers open, fail or stop. */
PT_TEST(es_connection_rules) {
    static const struct {
        int status;
        const char *headers;
        int rc;
    } cases[] = {
        { 200, "Content-Type: Text/Event-Stream; charset=utf-8\r\n", PR_OK },
        { 200, "Content-Type: text/event-stream\r\n", PR_OK },
        { 200, "Content-Type: text/plain\r\n", PR_EPROTO },
        { 200, "Content-Type: text/event-streams\r\n", PR_EPROTO },
        { 200, NULL, PR_EPROTO },
        { 204, NULL, PR_ECLOSED },
        { 201, ES_CT, PR_EHTTP },
        { 206, ES_CT, PR_EHTTP },
        { 404, NULL, PR_EHTTP },
        { 401, NULL, PR_EHTTP },
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        es_fx f;
        pr_sse_stream_opts o;
        pr_sse *s = NULL;
        pr_err_info e;
        ts_step st = hr_step(cases[i].status, cases[i].headers, "data: x\n\n");
        es_start(&f);
        es_opts(&f, &o);
        memset(&e, 0, sizeof e);
        PT_EQ_ERR(ts_script(f.s, "/r", &st, 1), PR_OK);
        PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/r"), &o, &e, pr_deadline_in(5000)), cases[i].rc);
        if (cases[i].rc == PR_OK) {
            pr_sse_event ev;
            PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
            PT_EQ_MEM(ev.data, "x", 1);
            pr_sse_destroy(s);
        } else {
            PT_CHECK(s == NULL);
            PT_EQ_ERR(e.code, cases[i].rc);
            if (cases[i].rc == PR_EHTTP) PT_EQ_INT(e.http_status, cases[i].status);
            if (cases[i].rc == PR_EPROTO) PT_CHECK(strstr(e.msg, "Content-Type") != NULL);
        }
        PT_EQ_INT(f.nsleeps, 0); /* none of these is retried */
        ts_stop(f.s);
    }
}

/* A status that ends the stream carries the start of the answer's body in
   the message (where an API says why: an OpenAI-style JSON error), white
   space folded, cut short of a long body; a body that stalls costs at most
   a second and gives what came. */
PT_TEST(es_refusal_message_carries_the_body) {
    static const char long_body[] = "{\"error\":{\"message\":\"Incorrect API key provided: sk-...abc.\",\n"
                                    "  \"type\":\"invalid_request_error\"}}\r\n"
                                    "0123456789012345678901234567890123456789012345678901234567890123456789"
                                    "0123456789012345678901234567890123456789012345678901234567890123456789"
                                    "TAIL";
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s = NULL;
    pr_err_info e;
    ts_step st[3];
    es_start(&f);
    es_opts(&f, &o);
    st[0] = hr_step(401, "Content-Type: application/json\r\n", long_body);
    st[1] = hr_step(404, NULL, NULL);
    st[2] = hr_step(400, NULL, "half of this body, then silence");
    st[2].stall_body = 1;
    PT_EQ_ERR(ts_script(f.s, "/r", st, 3), PR_OK);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/r"), &o, &e, PR_FOREVER), PR_EHTTP);
    PT_EQ_INT(e.http_status, 401);
    PT_CHECK(strstr(e.msg, "Incorrect API key provided: sk-...abc.\", \"type\":") != NULL); /* folded */
    PT_CHECK(strstr(e.msg, "TAIL") == NULL);
    PT_CHECK(strchr(e.msg, '\n') == NULL && strchr(e.msg, '\r') == NULL);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/r"), &o, &e, PR_FOREVER), PR_EHTTP);
    PT_EQ_INT(e.http_status, 404);
    PT_CHECK(strstr(e.msg, "404") != NULL);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/r"), &o, &e, PR_FOREVER), PR_EHTTP);
    PT_EQ_INT(e.http_status, 400);
    PT_CHECK(strstr(e.msg, "half of this") != NULL);
    PT_CHECK(strstr(e.msg, "silence") == NULL);
    PT_EQ_INT(f.nsleeps, 0);
    PT_CHECK(s == NULL);
    ts_stop(f.s);
}

/* 204 on a reconnect ends the stream for good. */
PT_TEST(es_204_stops_reconnecting) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s;
    pr_sse_event ev;
    ts_step st[2];
    es_start(&f);
    es_opts(&f, &o);
    st[0] = hr_step(200, ES_CT, "id: 9\ndata: a\n\n");
    st[1] = hr_step(204, NULL, NULL);
    PT_EQ_ERR(ts_script(f.s, "/s", st, 2), PR_OK);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/s"), &o, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_ECLOSED);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_ECLOSED); /* sticky */
    PT_EQ_INT(ts_log_count(f.s), 2);
    pr_sse_destroy(s);
    ts_stop(f.s);
}

/* An id-only block moves the resume point; a resume id is sent from the
   first connection on. */
PT_TEST(es_id_only_block_and_resume) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s;
    pr_sse_event ev;
    ts_step st[2];
    char lei[32];
    es_start(&f);
    es_opts(&f, &o);
    o.last_event_id = "41";
    st[0] = hr_step(200, ES_CT, "data: a\n\nid: 42\n\n");
    st[1] = hr_step(200, ES_CT, "data: b\n\n");
    PT_EQ_ERR(ts_script(f.s, "/s", st, 2), PR_OK);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/s"), &o, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_STR(ev.last_id, "41");
    PT_CHECK(ev.id == NULL);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_MEM(ev.data, "b", 1);
    PT_EQ_STR(ev.last_id, "42"); /* seeded into the new connection's parse */
    PT_EQ_STR(es_lei(&f, 0, lei, sizeof lei), "41");
    PT_EQ_STR(es_lei(&f, 1, lei, sizeof lei), "42");
    pr_sse_destroy(s);
    ts_stop(f.s);
}

/* A silent connection counts as dropped after idle_timeout_ms. */
PT_TEST(es_idle_timeout_reconnects) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s;
    pr_sse_event ev;
    es_start(&f);
    es_opts(&f, &o);
    o.idle_timeout_ms = 100;
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/sse?events=1&id=1&hold_ms=3000"), &o, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_MEM(ev.data, "event 1", 7);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_MEM(ev.data, "event 2", 7);
    PT_EQ_ERR(f.seen[0].reason, PR_EIO); /* not the caller's deadline: never PR_ETIMEDOUT */
    PT_CHECK(strstr(f.seen[0].detail, "idle") != NULL);
    pr_sse_destroy(s);
    ts_stop(f.s);
}

/* The caller's deadline: PR_ETIMEDOUT, nothing lost, the next call goes on
   (also while a reconnect is waiting). */
PT_TEST(es_deadline_loses_nothing) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s;
    pr_sse_event ev;
    es_start(&f);
    es_opts(&f, &o);
    o.hooks.sleep = NULL; /* real waits: the reconnect below is 50 ms */
    o.retry_ms = 50;
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/sse?events=2&id=1&interval_ms=100"), &o, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(10)), PR_ETIMEDOUT); /* event 2 is 100 ms away */
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_MEM(ev.data, "event 2", 7);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_now()), PR_ETIMEDOUT); /* the end, then a 50 ms wait */
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_MEM(ev.data, "event 3", 7);
    pr_sse_destroy(s);
    ts_stop(f.s);
}

/* A POST stream with a body: not reconnected unless repeatable; when it
   is, the body goes again. */
PT_TEST(es_post_stream_repeat_rule) {
    int rep;
    for (rep = 0; rep <= 1; rep++) {
        es_fx f;
        pr_sse_stream_opts o;
        pr_sse *s;
        pr_sse_event ev;
        es_start(&f);
        es_opts(&f, &o);
        o.method = "POST";
        o.body = "{\"prompt\":\"hi\"}";
        o.body_len = strlen(o.body);
        o.repeatable = rep;
        PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/sse?events=1"), &o, NULL, pr_deadline_in(5000)), PR_OK);
        PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
        if (!rep) {
            PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_ECLOSED);
            PT_EQ_INT(ts_log_count(f.s), 1);
        } else {
            PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
            PT_EQ_INT(ts_log_count(f.s), 2);
            PT_EQ_STR(ts_log_get(f.s, 1)->body, "{\"prompt\":\"hi\"}");
        }
        PT_EQ_STR(ts_log_get(f.s, 0)->body, "{\"prompt\":\"hi\"}");
        pr_sse_destroy(s);
        ts_stop(f.s);
    }
}

/* A URL on a port where nobody listens (a free port, then closed). */
static int es_refused_url(char *url, size_t n) {
    pr_listener *l;
    int rc = pr_tcp_listen(&l, "127.0.0.1", 0, 1, NULL);
    if (rc) return rc;
    snprintf(url, n, "http://127.0.0.1:%u/sse", (unsigned)pr_listener_port(l));
    pr_listener_destroy(l);
    return PR_OK;
}

/* Nobody listening: max_failures connections, then the error, with the
   last connection's cause in it. */
PT_TEST(es_max_failures) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s = NULL;
    pr_err_info e;
    char url[64];
    memset(&f, 0, sizeof f);
    es_opts(&f, &o);
    o.max_failures = 3;
    PT_REQUIRE(es_refused_url(url, sizeof url) == PR_OK);
    PT_CHECK(pr_sse_open(&s, url, &o, &e, pr_deadline_in(5000)) < 0);
    PT_CHECK(s == NULL);
    PT_EQ_INT(f.nsleeps, 2); /* 3 connections, 2 waits between them */
    PT_EQ_INT(f.seen[1].failures, 2);
    PT_CHECK(f.sleeps[1] > f.sleeps[0]); /* the backoff grows */
    PT_CHECK(strstr(e.msg, "3 failed connections") != NULL);
    PT_EQ_ERR(e.code, PR_EIO); /* the cause's code and errno come through the wrapping */
    PT_EQ_INT(e.sys_errno, ECONNREFUSED);
    PT_CHECK(strstr(e.msg, "Connection refused") != NULL);
}


/* Nobody listening (a transient cause): pr_sse_open tries exactly
   open_attempts connections (4 by default), also with PR_FOREVER, then
   returns the last one's cause: PR_EIO with ECONNREFUSED, never
   PR_ETIMEDOUT. When the next try would start after the deadline, the
   last cause comes back at once. */
PT_TEST(es_open_refused_bounded) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s = NULL;
    pr_err_info e;
    char url[64];
    int k;
    PT_REQUIRE(es_refused_url(url, sizeof url) == PR_OK);
    for (k = 0; k < 2; k++) {
        memset(&f, 0, sizeof f);
        es_opts(&f, &o);
        memset(&e, 0x55, sizeof e);
        PT_EQ_ERR(pr_sse_open(&s, url, &o, &e, k ? PR_FOREVER : pr_deadline_in(60000)), PR_EIO);
        PT_CHECK(s == NULL);
        PT_EQ_ERR(e.code, PR_EIO);
        PT_EQ_INT(e.sys_errno, ECONNREFUSED);
        PT_EQ_INT(e.tls_error, 0);
        PT_EQ_INT(f.nsleeps, 3); /* 4 connections, 3 waits: the backoff alone */
        PT_EQ_INT(f.nseen, 3);
        PT_EQ_INT(f.seen[2].failures, 3);
        ES_WAIT_IN(f, 0, 750, 1000);
        ES_WAIT_IN(f, 1, 1500, 2000);
        ES_WAIT_IN(f, 2, 3000, 4000);
    }
    /* open_attempts = 2: two connections */
    memset(&f, 0, sizeof f);
    es_opts(&f, &o);
    o.open_attempts = 2;
    PT_EQ_ERR(pr_sse_open(&s, url, &o, &e, PR_FOREVER), PR_EIO);
    PT_EQ_INT(f.nseen, 1);
    PT_EQ_INT(e.sys_errno, ECONNREFUSED);
    /* a deadline before the next try: the cause at once, no wait */
    memset(&f, 0, sizeof f);
    es_opts(&f, &o);
    PT_EQ_ERR(pr_sse_open(&s, url, &o, &e, pr_deadline_in(500)), PR_EIO);
    PT_EQ_ERR(e.code, PR_EIO);
    PT_EQ_INT(e.sys_errno, ECONNREFUSED);
    PT_EQ_INT(f.nsleeps, 0);
    PT_EQ_INT(f.nseen, 0);
}

/* PR_ETIMEDOUT is the caller's deadline and nothing else: a head slower
   than the deadline is PR_ETIMEDOUT; an idle timeout that ends the stream
   through max_failures is PR_EIO with sys_errno ETIMEDOUT. */
PT_TEST(es_timedout_only_for_the_deadline) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s = NULL;
    pr_sse_event ev;
    pr_err_info e;
    ts_step st = hr_step(200, ES_CT, "data: late\n\n");
    es_start(&f);
    es_opts(&f, &o);
    st.delay_head_ms = 3000;
    PT_EQ_ERR(ts_script(f.s, "/slow", &st, 1), PR_OK);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/slow"), &o, &e, pr_deadline_in(200)), PR_ETIMEDOUT);
    PT_EQ_ERR(e.code, PR_ETIMEDOUT);
    PT_CHECK(s == NULL);
    es_opts(&f, &o);
    o.idle_timeout_ms = 100;
    o.max_failures = 1;
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/sse?events=0&hold_ms=3000"), &o, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_EIO);
    PT_EQ_ERR(pr_sse_last_error(s, &e), PR_OK);
    PT_EQ_ERR(e.code, PR_EIO);
    PT_EQ_INT(e.sys_errno, ETIMEDOUT);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_EIO); /* sticky */
    pr_sse_destroy(s);
    ts_stop(f.s);
}

/* A name that does not exist is final: PR_EDNS at once, no retry (the
   resolver helpers answer "no such name" themselves: no DNS traffic). */
PT_TEST(es_open_nxdomain_is_final) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s = NULL;
    pr_err_info e;
    memset(&f, 0, sizeof f);
    es_opts(&f, &o);
    __atomic_store_n(&pr__net_test_dns_offline, 1, __ATOMIC_SEQ_CST);
    PT_EQ_ERR(pr_sse_open(&s, "http://no-such-stream.invalid/sse", &o, &e, PR_FOREVER), PR_EDNS);
    __atomic_store_n(&pr__net_test_dns_offline, 0, __ATOMIC_SEQ_CST);
    PT_EQ_INT(net_wait_jobs_drained(20000), 0);
    PT_CHECK(s == NULL);
    PT_EQ_ERR(e.code, PR_EDNS);
    PT_EQ_INT(e.dns_error, EAI_NONAME);
    PT_EQ_INT(f.nseen, 0);
    PT_EQ_INT(f.nsleeps, 0);
}

/* A status retried at open that never changes: PR_EHTTP with it after
   exactly open_attempts requests. */
PT_TEST(es_open_persistent_503_bounded) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s = NULL;
    pr_err_info e;
    ts_step st = hr_step(503, NULL, "busy");
    es_start(&f);
    es_opts(&f, &o);
    st.count = 100;
    PT_EQ_ERR(ts_script(f.s, "/busy", &st, 1), PR_OK);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/busy"), &o, &e, PR_FOREVER), PR_EHTTP);
    PT_CHECK(s == NULL);
    PT_EQ_ERR(e.code, PR_EHTTP);
    PT_EQ_INT(e.http_status, 503);
    PT_EQ_INT(ts_log_count(f.s), 4);
    PT_EQ_INT(f.nsleeps, 3);
    ts_stop(f.s);
}

/* whatwg_strict: every status but 200 fails at once (PR_ECLOSED for 204),
   429 and 5xx included; the default retries 429 and 5xx. A network error
   and the end of the body reconnect in both. */
PT_TEST(es_whatwg_strict_statuses) {
    static const struct {
        int status;
        const char *headers;
        int rc;
    } cases[] = {
        { 201, ES_CT, PR_EHTTP }, { 204, NULL, PR_ECLOSED }, { 206, ES_CT, PR_EHTTP }, { 302, NULL, PR_EHTTP },
        { 304, NULL, PR_EHTTP }, { 400, NULL, PR_EHTTP }, { 404, NULL, PR_EHTTP }, { 408, NULL, PR_EHTTP },
        { 429, "Retry-After: 1\r\n", PR_EHTTP }, { 500, NULL, PR_EHTTP }, { 502, NULL, PR_EHTTP },
        { 503, NULL, PR_EHTTP },
    };
    size_t i;
    int strict;
    char url[64];
    for (strict = 0; strict <= 1; strict++) {
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            es_fx f;
            pr_sse_stream_opts o;
            pr_sse *s = NULL;
            pr_err_info e;
            ts_step st[2];
            int retried = !strict && (cases[i].status == 408 || cases[i].status == 429 || cases[i].status >= 500);
            st[0] = hr_step(cases[i].status, cases[i].headers, "data: x\n\n");
            st[1] = hr_step(200, ES_CT, "data: y\n\n");
            es_start(&f);
            es_opts(&f, &o);
            o.whatwg_strict = strict;
            PT_EQ_ERR(ts_script(f.s, "/r", st, 2), PR_OK);
            PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/r"), &o, &e, pr_deadline_in(5000)), retried ? PR_OK : cases[i].rc);
            PT_EQ_INT(ts_log_count(f.s), retried ? 2 : 1);
            if (!retried) {
                PT_EQ_ERR(e.code, cases[i].rc);
                PT_EQ_INT(e.http_status, cases[i].status);
            }
            pr_sse_destroy(s);
            ts_stop(f.s);
        }
    }
    {   /* strict: the end of the body reconnects */
        es_fx f;
        pr_sse_stream_opts o;
        pr_sse *s;
        pr_sse_event ev;
        es_start(&f);
        es_opts(&f, &o);
        o.whatwg_strict = 1;
        PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/sse?events=1&id=1"), &o, NULL, pr_deadline_in(5000)), PR_OK);
        PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
        PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
        PT_EQ_MEM(ev.data, "event 2", 7);
        PT_EQ_INT(ts_log_count(f.s), 2);
        pr_sse_destroy(s);
        ts_stop(f.s);
    }
    {   /* strict: a network error is tried again */
        es_fx f;
        pr_sse_stream_opts o;
        pr_sse *s = NULL;
        memset(&f, 0, sizeof f);
        PT_REQUIRE(es_refused_url(url, sizeof url) == PR_OK);
        es_opts(&f, &o);
        o.whatwg_strict = 1;
        PT_EQ_ERR(pr_sse_open(&s, url, &o, NULL, PR_FOREVER), PR_EIO);
        PT_EQ_INT(f.nseen, 3);
    }
}

/* The backoff resets only after a healthy period: connections that
   deliver an event and drop at once meet a growing wait (the first
   reconnect waits the reconnection time alone, each further one adds the
   next backoff step); one that stayed up healthy_ms (cut here by the idle
   timeout) resets it. */
PT_TEST(es_healthy_period_resets_backoff) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s;
    pr_sse_event ev;
    ts_step st[3];
    int i;
    es_start(&f);
    es_opts(&f, &o);
    o.retry_ms = 100;
    o.healthy_ms = 200;
    o.idle_timeout_ms = 400;
    st[0] = hr_step(200, ES_CT, "data: a\n\n");
    st[0].count = 5;
    st[1] = hr_step(200, ES_CT, "data: b\n\ndata: c\n\n"); /* "data: b", then silence */
    st[1].stall_body = 1;
    st[2] = hr_step(200, ES_CT, "data: d\n\n");
    PT_EQ_ERR(ts_script(f.s, "/flaky", st, 3), PR_OK);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/flaky"), &o, NULL, pr_deadline_in(5000)), PR_OK);
    for (i = 0; i < 6; i++) {
        PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(60000)), PR_OK); /* the hook does not wait */
        PT_EQ_MEM(ev.data, i < 5 ? "a" : "b", 1);
    }
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(60000)), PR_OK);
    PT_EQ_MEM(ev.data, "d", 1);
    PT_EQ_INT(f.nsleeps, 6);
    ES_WAIT_EQ(f, 0, 100);
    ES_WAIT_IN(f, 1, 100 + 750, 100 + 1000);
    ES_WAIT_IN(f, 2, 100 + 1500, 100 + 2000);
    ES_WAIT_IN(f, 3, 100 + 3000, 100 + 4000);
    ES_WAIT_IN(f, 4, 100 + 6000, 100 + 8000);
    ES_WAIT_EQ(f, 5, 100); /* up 400 ms >= healthy_ms: the reconnection time alone */
    for (i = 0; i < 6; i++) PT_EQ_INT(f.seen[i].failures, 0); /* each delivered an event: none failed */
    PT_EQ_ERR(f.seen[5].reason, PR_EIO);
    pr_sse_destroy(s);
    ts_stop(f.s);
}

/* A server's Retry-After on a retried answer is the wait itself (1 s:
   1000 ms, not the reconnection time plus the backoff), at open and on a
   reconnect, cut to max_retry_ms. */
PT_TEST(es_retry_after_is_the_wait) {
    int cap;
    for (cap = 0; cap <= 1; cap++) {
        es_fx f;
        pr_sse_stream_opts o;
        pr_sse *s;
        pr_sse_event ev;
        ts_step st[4];
        int64_t want = cap ? 500 : 1000;
        es_start(&f);
        es_opts(&f, &o);
        if (cap) o.max_retry_ms = 500;
        st[0] = hr_step(429, "Retry-After: 1\r\n", "slow down");
        st[1] = hr_step(200, ES_CT, "data: a\n\n");
        st[2] = hr_step(429, "Retry-After: 1\r\n", "slow down");
        st[3] = hr_step(200, ES_CT, "data: b\n\n");
        PT_EQ_ERR(ts_script(f.s, "/limited", st, 4), PR_OK);
        PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/limited"), &o, NULL, pr_deadline_in(5000)), PR_OK);
        PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(60000)), PR_OK);
        PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(60000)), PR_OK);
        PT_EQ_MEM(ev.data, "b", 1);
        PT_EQ_INT(f.nseen, 3);
        PT_EQ_INT(f.seen[0].delay_ms, want); /* at open */
        PT_EQ_INT(f.seen[0].status, 429);
        PT_EQ_INT(f.seen[2].delay_ms, want); /* on a reconnect */
        ES_WAIT_EQ(f, 0, want);
        ES_WAIT_EQ(f, 2, want);
        pr_sse_destroy(s);
        ts_stop(f.s);
    }
}

/* A POST stream that cannot be repeated: an answer that says the server
   did not process it (429, 503, a refused connection) is sent again at
   open; another status is final (500); a body that began and broke is
   never sent again unless repeatable says so. */
PT_TEST(es_post_unprocessed_is_retried) {
    static const int statuses[] = { 429, 503, 500 };
    size_t i;
    int rep;
    char url[64];
    for (i = 0; i < 3; i++) {
        es_fx f;
        pr_sse_stream_opts o;
        pr_sse *s = NULL;
        pr_err_info e;
        ts_step st[2];
        es_start(&f);
        es_opts(&f, &o);
        o.method = "POST";
        o.body = "{\"prompt\":\"hi\"}";
        o.body_len = strlen(o.body);
        st[0] = hr_step(statuses[i], NULL, "no");
        st[1] = hr_step(200, ES_CT, "data: x\n\n");
        PT_EQ_ERR(ts_script(f.s, "/chat", st, 2), PR_OK);
        PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/chat"), &o, &e, pr_deadline_in(5000)),
                  statuses[i] == 500 ? PR_EHTTP : PR_OK);
        PT_EQ_INT(ts_log_count(f.s), statuses[i] == 500 ? 1 : 2);
        if (statuses[i] != 500) PT_EQ_STR(ts_log_get(f.s, 1)->body, "{\"prompt\":\"hi\"}");
        else PT_EQ_INT(e.http_status, 500);
        pr_sse_destroy(s);
        ts_stop(f.s);
    }
    {
        es_fx f;
        pr_sse_stream_opts o;
        pr_sse *s = NULL;
        pr_err_info e;
        memset(&f, 0, sizeof f);
        PT_REQUIRE(es_refused_url(url, sizeof url) == PR_OK);
        es_opts(&f, &o);
        o.method = "POST";
        o.body = "{}";
        o.body_len = 2;
        PT_EQ_ERR(pr_sse_open(&s, url, &o, &e, pr_deadline_in(60000)), PR_EIO);
        PT_EQ_INT(e.sys_errno, ECONNREFUSED);
        PT_EQ_INT(f.nseen, 3); /* open_attempts connections */
    }
    for (rep = 0; rep <= 1; rep++) {
        es_fx f;
        pr_sse_stream_opts o;
        pr_sse *s;
        pr_sse_event ev;
        int rc;
        es_start(&f);
        es_opts(&f, &o);
        o.method = "POST";
        o.body = "{}";
        o.body_len = 2;
        o.repeatable = rep;
        PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/sse?events=3&id=1&drop_after=1"), &o, NULL, pr_deadline_in(5000)),
                  PR_OK);
        PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
        rc = pr_sse_next(s, &ev, pr_deadline_in(5000));
        if (rep) {
            PT_EQ_ERR(rc, PR_OK); /* sent again, resumed after event 1 */
            PT_EQ_MEM(ev.data, "event 2", 7);
            PT_EQ_INT(ts_log_count(f.s), 2);
        } else {
            PT_CHECK(rc < 0 && rc != PR_ETIMEDOUT);
            PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), rc); /* sticky */
            PT_EQ_INT(ts_log_count(f.s), 1);
        }
        pr_sse_destroy(s);
        ts_stop(f.s);
    }
}

/* A reconnect after the stream was open that meets a final cause ends the
   stream with it: a 404, or a redirect to a name that does not exist. */
PT_TEST(es_reconnect_final_cause_ends_stream) {
    int k;
    for (k = 0; k < 2; k++) {
        es_fx f;
        pr_sse_stream_opts o;
        pr_sse *s;
        pr_sse_event ev;
        pr_err_info e;
        ts_step st[2];
        int want = k ? PR_EDNS : PR_EHTTP;
        es_start(&f);
        es_opts(&f, &o);
        st[0] = hr_step(200, ES_CT, "id: 1\ndata: a\n\n");
        st[1] = k ? hr_step(302, "Location: http://gone-stream.invalid/sse\r\n", NULL) : hr_step(404, NULL, "gone");
        PT_EQ_ERR(ts_script(f.s, "/s", st, 2), PR_OK);
        PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/s"), &o, NULL, pr_deadline_in(5000)), PR_OK);
        PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
        if (k) __atomic_store_n(&pr__net_test_dns_offline, 1, __ATOMIC_SEQ_CST);
        PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(60000)), want);
        if (k) {
            __atomic_store_n(&pr__net_test_dns_offline, 0, __ATOMIC_SEQ_CST);
            PT_EQ_INT(net_wait_jobs_drained(20000), 0);
        }
        PT_EQ_ERR(pr_sse_last_error(s, &e), PR_OK);
        PT_EQ_ERR(e.code, want);
        if (!k) PT_EQ_INT(e.http_status, 404);
        else PT_EQ_INT(e.dns_error, EAI_NONAME);
        PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), want); /* sticky */
        PT_EQ_INT(f.nseen, 1);   /* the end of the first connection; not the final cause */
        PT_EQ_INT(ts_log_count(f.s), 2);
        pr_sse_destroy(s);
        ts_stop(f.s);
    }
}

#ifndef PRISTINE_NO_TLS
/* A TLS test server with the fixture certificate NAME (build/tls-fixtures,
   made by tls_mkcerts.sh) and a client *c that trusts the test CA. */
static int es_tls_start(es_fx *f, const char *name, pr_http_client **c) {
    ts_opts so;
    pr_http_client_opts co;
    char crt[64], key[64];
    int rc;
    memset(f, 0, sizeof *f);
    memset(&so, 0, sizeof so);
    snprintf(crt, sizeof crt, "build/tls-fixtures/%s.crt", name);
    snprintf(key, sizeof key, "build/tls-fixtures/%s.key", name);
    so.tls_cert_file = crt;
    so.tls_key_file = key;
    if ((rc = ts_start(&f->s, &so)) != PR_OK) return rc;
    memset(&co, 0, sizeof co);
    co.ignore_env = 1;
    co.tls.ca_file = "build/tls-fixtures/ca.crt";
    if ((rc = pr_http_client_create(c, &co, NULL)) != PR_OK) ts_stop(f->s);
    return rc;
}
#endif

/* Mutual TLS through the stream's own options: a server that requires a
   client certificate opens with the right one; a missing one and one from
   another CA are final after one connection, each with its own tls_error. */
PT_TEST(es_client_certificate_through_opts) {
#ifdef PRISTINE_NO_TLS
    PT_SKIP("no TLS in this build");
#else
    es_fx f;
    ts_opts so;
    pr_sse_stream_opts o;
    pr_sse *s = NULL;
    pr_sse_event ev;
    pr_err_info e;
    char url[128];
    if (system("sh tests/fixtures/tls_mkcerts.sh build/tls-fixtures") != 0) PT_SKIP("no openssl to make certificates");
    memset(&f, 0, sizeof f);
    memset(&so, 0, sizeof so);
    so.tls_cert_file = "build/tls-fixtures/good.crt";
    so.tls_key_file = "build/tls-fixtures/good.key";
    so.tls_client_ca_file = "build/tls-fixtures/ca.crt";
    PT_REQUIRE(ts_start(&f.s, &so) == PR_OK);
    snprintf(url, sizeof url, "https://localhost:%u/sse?events=1", (unsigned)ts_port(f.s));
    es_opts(&f, &o);
    o.tls.ca_file = "build/tls-fixtures/ca.crt";
    o.tls.cert_file = "build/tls-fixtures/client.crt";
    o.tls.key_file = "build/tls-fixtures/client.key";
    PT_EQ_ERR(pr_sse_open(&s, url, &o, &e, pr_deadline_in(10000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_MEM(ev.data, "event 1", 7);
    pr_sse_destroy(s);
    s = NULL;
    PT_EQ_INT(ts_accepted(f.s), 1);
    /* no certificate: final, PR_TLS_NO_CLIENT_CERT */
    o.tls.cert_file = o.tls.key_file = NULL;
    PT_EQ_ERR(pr_sse_open(&s, url, &o, &e, PR_FOREVER), PR_ETLS);
    PT_EQ_INT(e.tls_error, PR_TLS_NO_CLIENT_CERT);
    PT_EQ_INT(ts_accepted(f.s), 2);
    /* one from another CA: final, PR_TLS_CLIENT_CERT_REFUSED */
    o.tls.cert_file = "build/tls-fixtures/clientother.crt";
    o.tls.key_file = "build/tls-fixtures/clientother.key";
    PT_EQ_ERR(pr_sse_open(&s, url, &o, &e, PR_FOREVER), PR_ETLS);
    PT_EQ_INT(e.tls_error, PR_TLS_CLIENT_CERT_REFUSED);
    PT_EQ_INT(ts_accepted(f.s), 3);
    PT_EQ_INT(f.nseen, 0); /* never a reconnect */
    PT_CHECK(s == NULL);
    ts_stop(f.s);
#endif
}

/* A server whose certificate no anchor vouches for is final: PR_ETLS
   after one connection, the TLS failure whole in err (message, code,
   BearSSL's error). The stream's own client trusts the test CA through
   opts.tls (its redirect default kept); tls beside a borrowed client is
   PR_EINVAL. */
PT_TEST(es_untrusted_certificate_message_whole) {
#ifdef PRISTINE_NO_TLS
    PT_SKIP("no TLS in this build");
#else
    es_fx f, g;
    ts_step st;
    pr_sse_stream_opts o;
    pr_http_client *c;
    pr_sse *s = NULL;
    pr_sse_event ev;
    pr_err_info e;
    char url[128];
    if (system("sh tests/fixtures/tls_mkcerts.sh build/tls-fixtures") != 0) PT_SKIP("no openssl to make certificates");
    PT_REQUIRE(es_tls_start(&f, "unknown", &c) == PR_OK); /* signed by another CA */
    es_opts(&f, &o);
    o.tls.ca_file = "build/tls-fixtures/ca.crt";
    snprintf(url, sizeof url, "https://localhost:%u/sse?events=1", (unsigned)ts_port(f.s));
    PT_EQ_ERR(pr_sse_open(&s, url, &o, &e, PR_FOREVER), PR_ETLS);
    PT_CHECK(s == NULL);
    PT_EQ_ERR(e.code, PR_ETLS);
    PT_EQ_INT(e.tls_error, 62); /* BR_ERR_X509_NOT_TRUSTED */
    PT_CHECK(strstr(e.msg, "certificate signed by an unknown CA (not trusted)") != NULL);
    PT_EQ_INT(f.nseen, 0);
    PT_EQ_INT(ts_accepted(f.s), 1);
    /* the same options against a server with a good certificate open, redirect included */
    pr_http_client_destroy(c);
    PT_REQUIRE(es_tls_start(&g, "good", &c) == PR_OK);
    es_opts(&g, &o);
    o.tls.ca_file = "build/tls-fixtures/ca.crt";
    st = hr_step(302, "Location: /sse?events=1\r\n", NULL);
    PT_EQ_ERR(ts_script(g.s, "/go", &st, 1), PR_OK);
    snprintf(url, sizeof url, "https://localhost:%u/go", (unsigned)ts_port(g.s));
    PT_EQ_ERR(pr_sse_open(&s, url, &o, &e, pr_deadline_in(10000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_MEM(ev.data, "event 1", 7);
    pr_sse_destroy(s);
    /* tls with a borrowed client */
    o.client = c;
    PT_EQ_ERR(pr_sse_open(&s, url, &o, &e, pr_deadline_in(5000)), PR_EINVAL);
    PT_EQ_ERR(e.code, PR_EINVAL);
    pr_http_client_destroy(c);
    ts_stop(g.s);
    ts_stop(f.s);
#endif
}

/* https to a peer that speaks plain HTTP is final: PR_ETLS after one
   connection. */
PT_TEST(es_https_to_plain_is_final) {
#ifdef PRISTINE_NO_TLS
    PT_SKIP("no TLS in this build");
#else
    es_fx f;
    pt_plain p;
    pr_sse_stream_opts o;
    pr_sse *s = NULL;
    pr_err_info e;
    char url[128];
    memset(&f, 0, sizeof f);
    PT_REQUIRE(pt_plain_start(&p) == PR_OK);
    es_opts(&f, &o);
    snprintf(url, sizeof url, "https://127.0.0.1:%u/sse?events=1", (unsigned)pt_plain_port(&p));
    PT_EQ_ERR(pr_sse_open(&s, url, &o, &e, PR_FOREVER), PR_ETLS);
    PT_CHECK(s == NULL);
    PT_EQ_ERR(e.code, PR_ETLS);
    PT_EQ_INT(f.nseen, 0);
    PT_EQ_INT(p.accepts, 1);
    pt_plain_stop(&p);
    pr_tls_global_cleanup(); /* the system trust bundle was loaded */
#endif
}

/* An over-long line: PR_ELIMIT once, then the next event. */
PT_TEST(es_limit_reported_then_goes_on) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s;
    pr_sse_event ev;
    pr_err_info e;
    ts_step st = hr_step(200, ES_CT, "data: 0123456789012345678901234567890123456789\n\ndata: ok\n\n");
    es_start(&f);
    es_opts(&f, &o);
    o.decoder.max_line_bytes = 20;
    PT_EQ_ERR(ts_script(f.s, "/s", &st, 1), PR_OK);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/s"), &o, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_ELIMIT);
    PT_EQ_ERR(pr_sse_last_error(s, &e), PR_OK);
    PT_CHECK(strstr(e.msg, "limit") != NULL);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_MEM(ev.data, "ok", 2);
    pr_sse_destroy(s);
    ts_stop(f.s);
}

/* Static and per-connection headers; a redirect is followed, and the
   reconnect starts from the original URL. */
static int es_token(pr_buf *out, void *ud) {
    int *n = (int *)ud;
    return pr_buf_printf(out, "Authorization: Bearer t%d\r\n", ++*n);
}

PT_TEST(es_headers_and_redirect) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s;
    pr_sse_event ev;
    ts_step st[2];
    static const char *const hs[] = { "X-Client: pristine", NULL };
    char loc[128];
    pr_slice v;
    int n = 0;
    es_start(&f);
    es_opts(&f, &o);
    o.headers = hs;
    o.headers_fn = es_token;
    o.user_data = &n; /* headers_fn's; the observer keeps its own (f) */
    snprintf(loc, sizeof loc, "Location: /sse?events=1\r\n");
    st[0] = hr_step(302, loc, NULL);
    st[0].count = 2;
    PT_EQ_ERR(ts_script(f.s, "/start", st, 1), PR_OK);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/start"), &o, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK); /* after a reconnect */
    PT_EQ_INT(ts_log_count(f.s), 4);
    PT_EQ_STR(ts_log_get(f.s, 2)->body, "");
    PT_CHECK(pr_slice_eq(ts_log_get(f.s, 2)->path, pr_slice_cstr("/start"))); /* the original URL again */
    PT_REQUIRE(ts_log_header(ts_log_get(f.s, 3), "X-Client", &v));
    PT_CHECK(pr_slice_eq(v, pr_slice_cstr("pristine")));
    PT_REQUIRE(ts_log_header(ts_log_get(f.s, 2), "Authorization", &v));
    PT_CHECK(pr_slice_eq(v, pr_slice_cstr("Bearer t2"))); /* evaluated per connection */
    PT_EQ_INT(n, 2);
    PT_EQ_INT(f.nseen, 1); /* the reconnect reached the observer with its own user_data */
    PT_REQUIRE(ts_log_header(ts_log_get(f.s, 0), "Accept", &v));
    PT_CHECK(pr_slice_eq(v, pr_slice_cstr("text/event-stream")));
    pr_sse_destroy(s);
    ts_stop(f.s);
}

/* More than 10 redirects (a redirect loop) end the stream at once with
   PR_EHTTP and the last 3xx, and never with PR_ELIMIT, which pr_sse_next
   documents as "call again" (found by fuzz_eventsource: it was retried
   open_attempts times, then returned PR_ELIMIT). */
PT_TEST(es_redirect_loop_is_final) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s = NULL;
    pr_err_info e;
    es_start(&f);
    es_opts(&f, &o);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/redirect?n=12&code=307"), &o, &e, pr_deadline_in(5000)), PR_EHTTP);
    PT_CHECK(s == NULL);
    PT_EQ_ERR(e.code, PR_EHTTP);
    PT_EQ_INT(e.http_status, 307);
    PT_EQ_INT(f.nseen, 0); /* not retried */
    PT_EQ_INT(ts_log_count(f.s), 11); /* the first request and 10 redirects followed */
    ts_stop(f.s);
}

/* A redirect to another origin (another port) drops the fields the caller
   set, static and per-connection, credentials or not (X-Client), unless
   named safe to forward; a same-origin hop keeps them, and the reconnect
   starts at the original URL with them again. The protocol's own fields
   (Accept, Cache-Control, Last-Event-ID) go on. */
PT_TEST(es_cross_origin_redirect_drops_credentials) {
    es_fx f;
    ts_server *other;
    pr_sse_stream_opts o;
    pr_sse *s;
    pr_sse_event ev;
    ts_step st;
    static const char *const hs[] = { "Cookie: session=1", "X-Client: pristine", NULL };
    char loc[128];
    pr_slice v;
    int n = 0;
    es_start(&f);
    PT_REQUIRE(ts_start(&other, NULL) == PR_OK);
    es_opts(&f, &o);
    o.headers = hs;
    o.headers_fn = es_token;
    o.user_data = &n;
    snprintf(loc, sizeof loc, "Location: /hop\r\n");
    st = hr_step(307, loc, NULL); /* same origin first */
    st.count = 2;
    PT_EQ_ERR(ts_script(f.s, "/start", &st, 1), PR_OK);
    snprintf(loc, sizeof loc, "Location: http://127.0.0.1:%u/sse?events=1&id=1\r\n", (unsigned)ts_port(other));
    st = hr_step(302, loc, NULL);
    st.count = 2;
    PT_EQ_ERR(ts_script(f.s, "/hop", &st, 1), PR_OK);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/start"), &o, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_STR(ev.last_id, "1");
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK); /* after a reconnect: the chain again */
    PT_EQ_STR(ev.last_id, "2");
    PT_EQ_INT(ts_log_count(f.s), 4);  /* /start, /hop, /start, /hop */
    PT_EQ_INT(ts_log_count(other), 2); /* /sse twice */
    PT_CHECK(pr_slice_eq(ts_log_get(f.s, 1)->path, pr_slice_cstr("/hop")));
    PT_REQUIRE(ts_log_header(ts_log_get(f.s, 1), "Authorization", &v)); /* same origin: kept */
    PT_CHECK(pr_slice_eq(v, pr_slice_cstr("Bearer t1")));
    PT_CHECK(ts_log_header(ts_log_get(f.s, 1), "Cookie", &v));
    PT_CHECK(!ts_log_header(ts_log_get(other, 0), "Authorization", &v)); /* cross origin: dropped */
    PT_CHECK(!ts_log_header(ts_log_get(other, 0), "Cookie", &v));
    PT_CHECK(!ts_log_header(ts_log_get(other, 0), "X-Client", &v)); /* not named safe: dropped too */
    PT_REQUIRE(ts_log_header(ts_log_get(other, 0), "Accept", &v));   /* describes the request: kept */
    PT_CHECK(pr_slice_eq(v, pr_slice_cstr("text/event-stream")));
    PT_REQUIRE(ts_log_header(ts_log_get(other, 1), "Last-Event-ID", &v));
    PT_CHECK(pr_slice_eq(v, pr_slice_cstr("1")));
    PT_REQUIRE(ts_log_header(ts_log_get(other, 1), "Cache-Control", &v));
    PT_CHECK(pr_slice_eq(v, pr_slice_cstr("no-cache")));
    PT_CHECK(!ts_log_header(ts_log_get(other, 1), "Authorization", &v));
    PT_CHECK(pr_slice_eq(ts_log_get(f.s, 2)->path, pr_slice_cstr("/start")));
    PT_REQUIRE(ts_log_header(ts_log_get(f.s, 2), "Authorization", &v)); /* the origin again: sent */
    PT_CHECK(pr_slice_eq(v, pr_slice_cstr("Bearer t2")));
    pr_sse_destroy(s);
    ts_stop(other);
    ts_stop(f.s);
}

/* HTTPS with the test CA; a server that drops without close_notify is an
   end like any other: reconnect, never PR_ETLS. */
PT_TEST(es_https_and_truncated_tls) {
#ifdef PRISTINE_NO_TLS
    PT_SKIP("no TLS in this build");
#else
    es_fx f;
    pr_sse_stream_opts o;
    pr_http_client *c;
    pr_sse *s;
    pr_sse_event ev;
    char url[128], want[32];
    int i;
    if (system("sh tests/fixtures/tls_mkcerts.sh build/tls-fixtures") != 0) PT_SKIP("no openssl to make certificates");
    PT_REQUIRE(es_tls_start(&f, "good", &c) == PR_OK);
    es_opts(&f, &o);
    o.client = c;
    snprintf(url, sizeof url, "https://localhost:%u/sse?events=4&id=1&framing=close&drop_after=2",
             (unsigned)ts_port(f.s));
    PT_EQ_ERR(pr_sse_open(&s, url, &o, NULL, pr_deadline_in(5000)), PR_OK);
    for (i = 1; i <= 4; i++) {
        PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
        snprintf(want, sizeof want, "event %d", i);
        PT_EQ_MEM(ev.data, want, strlen(want));
    }
    PT_EQ_ERR(f.seen[0].reason, PR_ECLOSED);
    pr_sse_destroy(s);
    pr_http_client_destroy(c);
    ts_stop(f.s);
#endif
}

/* Cancel the reading task, then destroy from another task: both end a
   blocked pr_sse_next at once; nothing leaks. */
typedef struct es_reader {
    pr_sse *s;
    int rc;
} es_reader;

static int es_read_task(void *arg) {
    es_reader *x = (es_reader *)arg;
    pr_sse_event ev;
    x->rc = pr_sse_next(x->s, &ev, pr_deadline_in(20000));
    return 0;
}

PT_TEST(es_cancel_and_destroy_while_blocked) {
    es_fx f;
    pr_sse_stream_opts o;
    es_reader x;
    pr_task *t;
    pr_sse_event ev;
    es_start(&f);
    es_opts(&f, &o);
    memset(&x, 0, sizeof x);
    PT_EQ_ERR(pr_sse_open(&x.s, es_url(&f, "/sse?events=0&hold_ms=10000"), &o, NULL, pr_deadline_in(5000)), PR_OK);
    PT_REQUIRE(pr_go(&t, es_read_task, &x, NULL) == PR_OK);
    PT_EQ_ERR(pr_sleep(pr_deadline_in(20)), PR_OK);
    PT_EQ_ERR(pr_cancel(t), PR_OK);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(x.rc, PR_ECANCELED);
    PT_EQ_ERR(pr_sse_next(x.s, &ev, pr_deadline_in(10)), PR_ETIMEDOUT); /* still usable */
    PT_REQUIRE(pr_go(&t, es_read_task, &x, NULL) == PR_OK);
    PT_EQ_ERR(pr_sleep(pr_deadline_in(20)), PR_OK);
    pr_sse_destroy(x.s);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(x.rc, PR_ECANCELED);
    ts_stop(f.s);
}

/* Every allocation failing in turn across an open, events and a
   reconnect: an error or success, never a crash or a leak. */
PT_TEST(es_fail_nth_allocation_across_reconnect) {
    int n, ok = 0;
    es_fx f;
    es_start(&f);
    for (n = 1; n < 3000 && !ok; n++) {
        pr_sse_stream_opts o;
        pr_sse *s = NULL;
        pr_sse_event ev;
        int rc, got = 0, i, done;
        es_opts(&f, &o);
        f.nsleeps = f.nseen = 0;
        o.max_failures = 2;
        pt_alloc_fail_nth(n);
        rc = pr_sse_open(&s, es_url(&f, "/sse?events=2&id=1"), &o, NULL, pr_deadline_in(5000));
        for (i = 0; rc == PR_OK && i < 4; i++) {
            rc = pr_sse_next(s, &ev, pr_deadline_in(5000));
            if (rc == PR_OK) got++;
        }
        done = __atomic_load_n(&pt__mem.fail_nth, __ATOMIC_RELAXED) > 0;
        pt_alloc_fail_nth(0);
        pr_sse_destroy(s);
        if (done) { /* no allocation failed: the whole run must have worked */
            PT_EQ_INT(got, 4);
            PT_EQ_INT(f.nseen, 1);
            ok = 1;
        }
    }
    PT_CHECK(ok);
    ts_stop(f.s);
}

/* The idle clock measures the connection's silence, not the time inside
   one call: one event, then nothing, read with deadlines shorter than
   idle_timeout_ms, still reconnects once the silence passes it. */
PT_TEST(es_idle_clock_spans_calls) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s;
    pr_sse_event ev;
    int i, rc = PR_ETIMEDOUT, timeouts = 0;
    es_start(&f);
    es_opts(&f, &o);
    o.hooks.sleep = NULL; /* real waits: the calls below must let time pass */
    o.retry_ms = 10;
    o.idle_timeout_ms = 300;
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/sse?events=1&id=1&hold_ms=20000"), &o, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_MEM(ev.data, "event 1", 7);
    for (i = 0; i < 60 && (rc = pr_sse_next(s, &ev, pr_deadline_in(100))) == PR_ETIMEDOUT; i++) timeouts++;
    PT_EQ_ERR(rc, PR_OK); /* the silent connection was dropped, the next one resumed */
    PT_EQ_MEM(ev.data, "event 2", 7);
    PT_CHECK(timeouts >= 2);
    PT_REQUIRE(f.nseen >= 1);
    PT_EQ_ERR(f.seen[0].reason, PR_EIO); /* not the caller's deadline: never PR_ETIMEDOUT */
    PT_CHECK(strstr(f.seen_detail[0], "idle") != NULL);
    PT_EQ_INT(ts_accepted(f.s), 2);
    pr_sse_destroy(s);
    ts_stop(f.s);
}

/* Bytes that complete no event (comments, blank lines, id-only blocks)
   arriving without pause do not hold the caller past its deadline: the
   call returns while the server (a process of its own) still sends them. */
PT_TEST(es_deadline_holds_under_a_byte_flood) {
    static const char *const pieces[] = { ":\n", "\n", "id: 1\n\n" };
    size_t k;
    for (k = 0; k < 3; k++) {
        es_fx f;
        pt_flood fl;
        pr_sse_stream_opts o;
        pr_sse *s;
        pr_sse_event ev;
        char url[64];
        memset(&f, 0, sizeof f);
        es_opts(&f, &o);
        PT_REQUIRE(pt_flood_start(&fl, "HTTP/1.1 200 OK\r\n" ES_CT "\r\n", pieces[k], 20000) == PR_OK);
        snprintf(url, sizeof url, "http://127.0.0.1:%u/flood", (unsigned)fl.port);
        PT_EQ_ERR(pr_sse_open(&s, url, &o, NULL, pr_deadline_in(5000)), PR_OK);
        PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(200)), PR_ETIMEDOUT);
        PT_CHECK(pt_flood_running(&fl)); /* returned in the middle of the flood */
        PT_EQ_INT(pr_sse_reconnects(s), 0);
        pr_sse_destroy(s);
        pt_flood_stop(&fl);
    }
}

/* retry: 9223372036854775807 is capped at max_retry_ms, with the backoff
   added saturating (UBSan watches the sums), never a wrapped deadline
   that reconnects at once. */
PT_TEST(es_retry_field_capped_without_overflow) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s;
    pr_sse_event ev;
    ts_step st[2];
    int64_t until;
    es_start(&f);
    es_opts(&f, &o);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/sse?events=1&id=1&retry=9223372036854775807"), &o, NULL,
                          pr_deadline_in(5000)),
              PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(ev.stream_retry_ms, 3600000); /* the default cap: an hour */
    PT_EQ_INT(pr_sse_retry_ms(s), 3600000);
    /* the end: an hour's wait, so this call waits out its own deadline */
    until = pr_deadline_in(5000);
    PT_EQ_ERR(pr_sse_next(s, &ev, until), PR_ETIMEDOUT);
    PT_EQ_INT(f.nseen, 1);
    PT_EQ_INT(f.seen[0].delay_ms, 3600000);
    PT_EQ_INT(f.nsleeps, 1);
    PT_EQ_INT(f.sleep_until[0], until); /* a sleep to the caller's deadline, not past it */
    PT_CHECK(f.sleeps[0] > 0 && f.sleeps[0] <= 5000);
    PT_EQ_INT(ts_accepted(f.s), 1); /* no reconnect at once */
    pr_sse_destroy(s);
    /* a connection that delivers nothing fails: the backoff is added to the capped wait */
    es_opts(&f, &o);
    f.nsleeps = f.nseen = 0;
    o.max_retry_ms = 10000;
    st[0] = hr_step(200, ES_CT, "retry: 99999999999999999999999\n\n");
    st[1] = hr_step(200, ES_CT, "data: after\n\n");
    PT_EQ_ERR(ts_script(f.s, "/huge", st, 2), PR_OK);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/huge"), &o, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(60000)), PR_OK); /* the hook does not wait */
    PT_EQ_MEM(ev.data, "after", 5);
    PT_EQ_INT(f.nsleeps, 1);
    PT_CHECK(f.sleeps[0] > 10000 && f.sleeps[0] <= 11000); /* 10 s + the first backoff (1 s minus jitter) */
    pr_sse_destroy(s);
    ts_stop(f.s);
}

/* A server that opens the stream and ends it at once, asking for
   retry: 0, cannot drive a hot reconnect loop: such connections count as
   failed, so the backoff grows and max_failures ends the stream. */
PT_TEST(es_instant_end_backs_off) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s;
    pr_sse_event ev;
    ts_step st = hr_step(200, ES_CT, "retry: 0\n\n");
    int i;
    es_start(&f);
    es_opts(&f, &o);
    o.max_failures = 4;
    st.count = 100;
    PT_EQ_ERR(ts_script(f.s, "/instant", &st, 1), PR_OK);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/instant"), &o, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(60000)), PR_ECLOSED); /* the hook does not wait */
    PT_EQ_INT(ts_log_count(f.s), 4);
    PT_EQ_INT(f.nsleeps, 3);
    for (i = 0; i < 3 && i < f.nsleeps; i++) PT_CHECK(f.sleeps[i] >= 750);
    PT_CHECK(f.sleeps[2] > f.sleeps[0]);
    pr_sse_destroy(s);
    ts_stop(f.s);
}

/* A quiet connection that the server (or a proxy's idle cut) ends after it
   stayed up healthy_ms is no failure: the next one follows after the
   reconnection time alone, with no backoff building up. */
PT_TEST(es_quiet_end_is_no_failure) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s;
    pr_sse_event ev;
    int i;
    es_start(&f);
    es_opts(&f, &o);
    o.retry_ms = 10;
    o.healthy_ms = 1000;
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/sse?events=0&comment=1&hold_ms=1100"), &o, NULL, pr_deadline_in(5000)),
              PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(3000)), PR_ETIMEDOUT);
    PT_CHECK(f.nsleeps >= 1);
    for (i = 0; i < f.nseen && i < 16; i++) PT_EQ_INT(f.seen[i].delay_ms, 10);
    for (i = 0; i < f.nsleeps && i < 16; i++) PT_CHECK(f.sleeps[i] > 0 && f.sleeps[i] <= 10); /* what is left of it */
    for (i = 0; i < f.nseen && i < 16; i++) PT_EQ_INT(f.seen[i].failures, 0);
    pr_sse_destroy(s);
    ts_stop(f.s);
}

/* Last-Event-ID carries only what a header field value may: an id with
   control bytes, or one over max_last_event_id, is not sent. */
PT_TEST(es_last_event_id_only_when_it_can_travel) {
    es_fx f;
    pr_sse_stream_opts o;
    pr_sse *s;
    pr_sse_event ev;
    ts_step st[4];
    pr_buf big;
    pr_slice v;
    size_t i;
    es_start(&f);
    es_opts(&f, &o);
    o.healthy_ms = -1; /* four short connections: no backoff building past the deadlines */
    o.max_last_event_id = 64;
    pr_buf_init(&big);
    pr_buf_append_str(&big, "id: ");
    for (i = 0; i < 65; i++) pr_buf_append(&big, "x", 1);
    pr_buf_append_str(&big, "\ndata: long\n\n");
    PT_REQUIRE(pr_buf_append(&big, "", 1) == PR_OK);
    st[0] = hr_step(200, ES_CT, "id: a\x01\x7f" "b\ndata: ctl\n\n");
    st[1] = hr_step(200, ES_CT, big.data);
    st[2] = hr_step(200, ES_CT, "id: tab\there\ndata: ok\n\n");
    st[3] = hr_step(200, ES_CT, "data: last\n\n");
    PT_EQ_ERR(ts_script(f.s, "/ids", st, 4), PR_OK);
    PT_EQ_ERR(pr_sse_open(&s, es_url(&f, "/ids"), &o, NULL, pr_deadline_in(5000)), PR_OK);
    for (i = 0; i < 4; i++) PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_MEM(ev.data, "last", 4);
    PT_EQ_INT(ts_log_count(f.s), 4);
    PT_CHECK(!strstr(ts_log_get(f.s, 1)->head, "Last-Event-ID")); /* a control byte */
    PT_CHECK(!strstr(ts_log_get(f.s, 2)->head, "Last-Event-ID")); /* 65 bytes > 64 */
    PT_REQUIRE(ts_log_header(ts_log_get(f.s, 3), "Last-Event-ID", &v));
    PT_CHECK(pr_slice_eq(v, pr_slice_cstr("tab\there"))); /* a tab may travel */
    PT_EQ_STR(f.seen_lei[0], "");
    pr_buf_deinit(&big);
    pr_sse_destroy(s);
    ts_stop(f.s);
}

const pt_suite pt_suite_eventsource = { "eventsource", {
    PT_ENTRY(es_reconnect_after_end_resumes),
    PT_ENTRY(es_drop_mid_event_no_partial_no_duplicate),
    PT_ENTRY(es_retry_field_and_backoff),
    PT_ENTRY(es_connection_rules),
    PT_ENTRY(es_refusal_message_carries_the_body),
    PT_ENTRY(es_204_stops_reconnecting),
    PT_ENTRY(es_id_only_block_and_resume),
    PT_ENTRY(es_idle_timeout_reconnects),
    PT_ENTRY(es_deadline_loses_nothing),
    PT_ENTRY(es_post_stream_repeat_rule),
    PT_ENTRY(es_max_failures),
    PT_ENTRY(es_open_refused_bounded),
    PT_ENTRY(es_timedout_only_for_the_deadline),
    PT_ENTRY(es_open_nxdomain_is_final),
    PT_ENTRY(es_open_persistent_503_bounded),
    PT_ENTRY(es_whatwg_strict_statuses),
    PT_ENTRY(es_healthy_period_resets_backoff),
    PT_ENTRY(es_retry_after_is_the_wait),
    PT_ENTRY(es_post_unprocessed_is_retried),
    PT_ENTRY(es_reconnect_final_cause_ends_stream),
    PT_ENTRY(es_untrusted_certificate_message_whole),
    PT_ENTRY(es_https_to_plain_is_final),
    PT_ENTRY(es_client_certificate_through_opts),
    PT_ENTRY(es_limit_reported_then_goes_on),
    PT_ENTRY(es_headers_and_redirect),
    PT_ENTRY(es_redirect_loop_is_final),
    PT_ENTRY(es_cross_origin_redirect_drops_credentials),
    PT_ENTRY(es_https_and_truncated_tls),
    PT_ENTRY(es_cancel_and_destroy_while_blocked),
    PT_ENTRY(es_fail_nth_allocation_across_reconnect),
    PT_ENTRY(es_idle_clock_spans_calls),
    PT_ENTRY(es_deadline_holds_under_a_byte_flood),
    PT_ENTRY(es_retry_field_capped_without_overflow),
    PT_ENTRY(es_instant_end_backs_off),
    PT_ENTRY(es_quiet_end_is_no_failure),
    PT_ENTRY(es_last_event_id_only_when_it_can_travel),
    {0, 0} } };
