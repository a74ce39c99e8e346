/* telemetry: the hub (events from the client, breakers, queue states and
   remote futures, URL sanitizing, forwarding to a reporter) and the
   batching reporter against tools/testserver.c's telemetry route: the wire
   format, batches, the flush interval, the queue cap (all or nothing, a
   flood of 1,000,000 events), bounded resends, fatal logging, stop, the
   enable switch, the user-error rule, process and session ids. */

typedef struct tl_rec {
    int64_t sleeps[16];
    int n;
} tl_rec;

static int tl_sleep(int64_t delay_ms, int64_t deadline, void *ud) {
    tl_rec *x = (tl_rec *)ud;
    (void)deadline;
    if (x->n < 16) x->sleeps[x->n] = delay_ms;
    x->n++;
    return pr_is_canceled() ? PR_ECANCELED : PR_OK;
}

static double tl_half(void *ud) {
    (void)ud;
    return 0.5;
}

typedef struct tl_fx {
    ts_server *s;
    pr_http_client *c;
    pr_reporter_opts ro;
    tl_rec rec;
    char url[96];
} tl_fx;

static int tl_start(tl_fx *f) {
    int rc;
    memset(f, 0, sizeof *f);
    if ((rc = ts_start(&f->s, NULL)) != PR_OK) return rc;
    if ((rc = pr_http_client_create(&f->c, &(pr_http_client_opts){ .ignore_env = 1 }, NULL)) != PR_OK) return rc;
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u/api/v1/telemetry", (unsigned)ts_port(f->s));
    f->ro.client = f->c;
    f->ro.url = f->url;
    f->ro.session_id = "s1";
    f->ro.enabled = 1;
    f->ro.flush_interval_ms = 60000; /* flushes come from the test unless it says otherwise */
    f->ro.hooks.sleep = tl_sleep;
    f->ro.hooks.random = tl_half;
    f->ro.hooks.user_data = &f->rec;
    return PR_OK;
}

static void tl_end(tl_fx *f) {
    pr_http_client_destroy(f->c);
    ts_stop(f->s);
}

/* The events array of logged batch i (a document the caller destroys). */
static pr_json_doc *tl_batch(tl_fx *f, size_t i, const pr_json **events) {
    const ts_logged *e = ts_log_get(f->s, i);
    pr_json_doc *d = NULL;
    *events = NULL;
    if (!e || pr_json_parse(&d, e->body, e->body_len, NULL, NULL) != PR_OK) return NULL;
    *events = pr_json_get(pr_json_root(d), "events");
    return d;
}

static const char *tl_str(const pr_json *o, const char *key) {
    size_t n;
    const char *s = pr_json_string(pr_json_get(o, key), &n);
    return s ? s : "(none)";
}

static int64_t tl_int(const pr_json *o, const char *key) {
    int64_t v = -1;
    pr_json_int(pr_json_get(o, key), &v);
    return v;
}

PT_TEST(telemetry_session_start_and_batches) {
    tl_fx f;
    pr_reporter *r;
    const pr_json *evs, *root;
    pr_json_doc *d;
    int64_t want = 0;
    size_t b, i;
    char name[32];
    PT_REQUIRE(tl_start(&f) == PR_OK);
    PT_EQ_ERR(pr_reporter_start(&r, &f.ro, NULL), PR_OK);
    PT_REQUIRE(r != NULL);
    /* T2: 250 events and SESSION_START: 100, 100, 51, indices 0..250 in order */
    for (i = 0; i < 250; i++) {
        snprintf(name, sizeof name, "ev%lu", (unsigned long)i);
        PT_EQ_INT(pr_reporter_log(r, name, "{\"i\":1}", PR_SEVERITY_INFO), 1);
    }
    PT_EQ_ERR(pr_reporter_flush(r, pr_deadline_in(10000)), PR_OK);
    PT_EQ_INT(ts_log_count(f.s), 3);
    for (b = 0; b < 3 && b < ts_log_count(f.s); b++) {
        d = tl_batch(&f, b, &evs);
        PT_REQUIRE(d != NULL);
        root = pr_json_root(d);
        PT_EQ_INT(pr_json_len(evs), b < 2 ? 100 : 51);
        /* T1: the envelope, and SESSION_START first */
        PT_EQ_STR(tl_str(root, "session_id"), "s1");
        PT_EQ_STR(tl_str(root, "platform"), "Linux");
        PT_EQ_STR(tl_str(root, "sdk_version"), PRISTINE_VERSION);
        PT_EQ_INT(strlen(tl_str(root, "process_uuid")), 36);
        if (b == 0) {
            PT_EQ_STR(tl_str(pr_json_at(evs, 0), "event"), "SESSION_START");
            PT_EQ_STR(tl_str(pr_json_at(evs, 0), "severity"), "INFO");
        }
        for (i = 0; i < pr_json_len(evs); i++) {
            const pr_json *e = pr_json_at(evs, i);
            const char *ts = tl_str(e, "timestamp");
            if (tl_int(e, "event_session_index") != want++)
                pt_fail(__FILE__, __LINE__, "batch %lu event %lu: index out of order", (unsigned long)b,
                        (unsigned long)i);
            if (strlen(ts) != 27 || ts[10] != 'T' || ts[26] != 'Z' || strlen(tl_str(e, "event_id")) != 36)
                pt_fail(__FILE__, __LINE__, "bad timestamp or id: %s", ts);
            if (b > 0 || i > 0) {
                PT_EQ_STR(tl_str(e, "event"), "GENERIC_EVENT");
                PT_EQ_INT(tl_int(pr_json_get(e, "event_data"), "i"), 1);
            }
        }
        pr_json_doc_destroy(d);
    }
    PT_EQ_INT(want, 251);
    PT_EQ_ERR(pr_reporter_stop(r, pr_deadline_in(5000)), PR_OK);
    pr_reporter_destroy(r);
    tl_end(&f);
}

PT_TEST(telemetry_flush_interval) {
    tl_fx f;
    pr_reporter *r;
    int64_t t0;
    PT_REQUIRE(tl_start(&f) == PR_OK);
    f.ro.flush_interval_ms = 200;
    f.ro.session_id = NULL; /* session-less: no SESSION_START */
    PT_EQ_ERR(pr_reporter_start(&r, &f.ro, NULL), PR_OK);
    t0 = pr_now();
    PT_EQ_INT(pr_reporter_log(r, "one", NULL, PR_SEVERITY_INFO), 1);
    /* T3: it goes out on the interval, with no trigger */
    while (ts_log_count(f.s) == 0 && pr_now() - t0 < 5000) PT_REQUIRE(pr_sleep(pr_deadline_in(5)) == PR_OK);
    PT_EQ_INT(ts_log_count(f.s), 1);
    PT_CHECK(pr_now() - t0 >= 190);
    {
        const pr_json *evs;
        pr_json_doc *d = tl_batch(&f, 0, &evs);
        PT_REQUIRE(d != NULL);
        PT_EQ_INT(pr_json_len(evs), 1);
        PT_EQ_STR(tl_str(pr_json_at(evs, 0), "event_name"), "one");
        PT_EQ_INT(pr_json_type(pr_json_get(pr_json_at(evs, 0), "event_data")), PR_JSON_OBJECT);
        PT_CHECK(strncmp(tl_str(pr_json_root(d), "session_id"), "sessionless-", 12) == 0);
        pr_json_doc_destroy(d);
    }
    PT_EQ_ERR(pr_reporter_stop(r, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(ts_log_count(f.s), 1); /* session-less: no SESSION_END either */
    pr_reporter_destroy(r);
    tl_end(&f);
}

PT_TEST(telemetry_queue_cap_all_or_nothing) {
    tl_fx f;
    pr_reporter *r;
    pr_reporter_error e;
    long pushed, flushed, dropped;
    int i;
    PT_REQUIRE(tl_start(&f) == PR_OK);
    f.ro.queue_max = 10;
    PT_EQ_ERR(pr_reporter_start(&r, &f.ro, NULL), PR_OK);
    for (i = 0; i < 8; i++) PT_EQ_INT(pr_reporter_log(r, "x", NULL, PR_SEVERITY_INFO), 1); /* 9 with the start */
    /* T4: a 2-event group (the exception and SESSION_END) does not fit: nothing is queued */
    memset(&e, 0, sizeof e);
    e.message = "fatal";
    PT_EQ_ERR(pr_reporter_log_fatal(r, &e, PR_SEVERITY_CRITICAL, pr_deadline_in(1000)), PR_ELIMIT);
    pr_reporter_counts(r, &pushed, &flushed, &dropped);
    PT_EQ_INT(pushed, 9);
    PT_EQ_INT(dropped, 2);
    PT_EQ_INT(pr_reporter_log(r, "single", NULL, PR_SEVERITY_INFO), 1); /* one still fits */
    PT_EQ_INT(pr_reporter_log(r, "over", NULL, PR_SEVERITY_INFO), 0);
    pr_reporter_counts(r, &pushed, &flushed, &dropped);
    PT_EQ_INT(pushed, 10);
    PT_EQ_INT(dropped, 3);
    pr_reporter_destroy(r); /* not stopped: nothing is sent */
    PT_EQ_INT(ts_log_count(f.s), 0);
    tl_end(&f);
}

PT_TEST(telemetry_flood_stays_bounded) {
    tl_fx f;
    pr_reporter *r;
    long pushed, flushed, dropped, i;
    size_t bytes0, bytes;
    PT_REQUIRE(tl_start(&f) == PR_OK);
    PT_EQ_ERR(pr_reporter_start(&r, &f.ro, NULL), PR_OK);
    pt_alloc_live(&bytes0);
    /* 1,000,000 events in a row (the reporter's task gets no turn): the
       queue fills to its cap and every other event is counted as dropped */
    for (i = 0; i < 1000000; i++) pr_reporter_log(r, "flood", NULL, PR_SEVERITY_DEBUG);
    pt_alloc_live(&bytes);
    pr_reporter_counts(r, &pushed, &flushed, &dropped);
    PT_EQ_INT(pushed, 10000);      /* SESSION_START and 9,999 */
    PT_EQ_INT(dropped, 1000000 - 9999);
    PT_CHECK(bytes - bytes0 < 10000 * 200); /* bounded: about the cap's worth of events */
    PT_EQ_ERR(pr_reporter_stop(r, pr_deadline_in(20000)), PR_OK);
    pr_reporter_counts(r, &pushed, &flushed, &dropped);
    PT_EQ_INT(flushed, pushed); /* everything that was accepted went out */
    pr_reporter_destroy(r);
    tl_end(&f);
}

/* The queue is bounded in bytes too (queue_max_bytes): with the endpoint
   hanging, 64 KiB events past the cap are dropped and counted like events
   past queue_max (all or nothing for the fatal pair), and the memory held
   stays near the cap. */
PT_TEST(telemetry_queue_bytes_bounded) {
    enum { CAP = 1 << 20, DATA = 64 * 1024, N = 100 };
    static char data[DATA + 1], msg[DATA];
    tl_fx f;
    pr_reporter *r;
    ts_step hang;
    pr_reporter_error e;
    long pushed, flushed, dropped, fit, accepted = 0;
    size_t bytes0, bytes, ev_size, room, exc_fixed;
    int i;
    PT_REQUIRE(tl_start(&f) == PR_OK);
    memset(&hang, 0, sizeof hang);
    hang.delay_head_ms = 50000;
    PT_EQ_ERR(ts_script_default(f.s, "/api/v1/telemetry", &hang), PR_OK);
    f.ro.queue_max_bytes = -1;
    PT_EQ_ERR(pr_reporter_start(&r, &f.ro, NULL), PR_EINVAL);
    f.ro.queue_max_bytes = CAP;
    f.ro.batch_size = 2;
    f.ro.send_timeout_ms = 60000;
    memset(data, 'a', DATA);
    memcpy(data, "{\"d\":\"", 6);
    memcpy(data + DATA - 2, "\"}", 2); /* {"d":"aaa...a"}, DATA bytes */
    PT_EQ_ERR(pr_reporter_start(&r, &f.ro, NULL), PR_OK);
    pt_alloc_live(&bytes0);
    for (i = 0; i < N; i++) {
        accepted += pr_reporter_log(r, "big", data, PR_SEVERITY_INFO);
        PT_EQ_ERR(pr_yield(), PR_OK); /* the reporter's task runs: batches go out and hang */
    }
    /* SESSION_START (no strings) and as many events as fit in the cap */
    ev_size = sizeof(pr__telemetry_rep_ev) + sizeof "big" + DATA + 1;
    fit = (long)((CAP - sizeof(pr__telemetry_rep_ev)) / ev_size);
    PT_CHECK(fit > 2 && fit < N);
    PT_EQ_INT(accepted, fit);
    pr_reporter_counts(r, &pushed, &flushed, &dropped);
    PT_EQ_INT(pushed, 1 + fit);
    PT_EQ_INT(flushed, 0);
    PT_EQ_INT(dropped, N - fit);
    pt_alloc_live(&bytes);
    if (bytes - bytes0 >= CAP + CAP / 2)
        pt_fail(__FILE__, __LINE__, "%lu bytes held for a %d-byte queue", (unsigned long)(bytes - bytes0), CAP);
    /* all or nothing: an exception that fits alone, but not with SESSION_END */
    room = CAP - sizeof(pr__telemetry_rep_ev) - (size_t)fit * ev_size;
    exc_fixed = sizeof(pr__telemetry_rep_ev) + sizeof "Error" + 1; /* type and the message's NUL */
    PT_REQUIRE(room > exc_fixed + sizeof(pr__telemetry_rep_ev));
    memset(msg, 'm', room - exc_fixed - sizeof(pr__telemetry_rep_ev) / 2);
    memset(&e, 0, sizeof e);
    e.message = msg;
    PT_EQ_ERR(pr_reporter_log_fatal(r, &e, PR_SEVERITY_CRITICAL, pr_deadline_in(1000)), PR_ELIMIT);
    pr_reporter_counts(r, &pushed, &flushed, &dropped);
    PT_EQ_INT(pushed, 1 + fit);
    PT_EQ_INT(dropped, N - fit + 2);
    PT_EQ_INT(pr_reporter_log_exception(r, &e, PR_SEVERITY_ERROR), 1);
    PT_EQ_INT(pr_reporter_log(r, "small", NULL, PR_SEVERITY_INFO), 0); /* full to the byte */
    pr_reporter_counts(r, &pushed, &flushed, &dropped);
    PT_EQ_INT(pushed, 2 + fit);
    PT_EQ_INT(dropped, N - fit + 3);
    pr_reporter_destroy(r);
    tl_end(&f);
}

PT_TEST(telemetry_resends_then_drops) {
    tl_fx f;
    pr_reporter *r;
    ts_step fail;
    long pushed, flushed, dropped;
    size_t i;
    int k;
    PT_REQUIRE(tl_start(&f) == PR_OK);
    memset(&fail, 0, sizeof fail);
    fail.status = 500;
    fail.count = 4;
    PT_EQ_ERR(ts_script(f.s, "/api/v1/telemetry", &fail, 1), PR_OK);
    PT_EQ_ERR(pr_reporter_start(&r, &f.ro, NULL), PR_OK);
    PT_EQ_INT(pr_reporter_log(r, "x", NULL, PR_SEVERITY_INFO), 1);
    /* T5: 4 POSTs of the same batch (3 resends), sleeps 1, 2, 4 s plus at most 10 %, then dropped */
    PT_EQ_ERR(pr_reporter_flush(r, pr_deadline_in(10000)), PR_OK);
    PT_EQ_INT(ts_log_count(f.s), 4);
    for (i = 1; i < 4; i++) PT_EQ_STR(ts_log_get(f.s, i)->body, ts_log_get(f.s, 0)->body);
    PT_EQ_INT(f.rec.n, 3);
    for (k = 0; k < 3; k++) {
        int64_t base = 1000 << k;
        PT_CHECK(f.rec.sleeps[k] >= base && f.rec.sleeps[k] <= base + base / 10);
    }
    pr_reporter_counts(r, &pushed, &flushed, &dropped);
    PT_EQ_INT(flushed, 2);
    PT_EQ_INT(dropped, 2);
    /* the route works again: the next batch goes out once */
    PT_EQ_INT(pr_reporter_log(r, "y", NULL, PR_SEVERITY_INFO), 1);
    PT_EQ_ERR(pr_reporter_flush(r, pr_deadline_in(10000)), PR_OK);
    PT_EQ_INT(ts_log_count(f.s), 5);
    pr_reporter_destroy(r);
    tl_end(&f);
}

PT_TEST(telemetry_fatal_and_stop) {
    tl_fx f;
    pr_reporter *r;
    pr_reporter_error e;
    const pr_json *evs;
    pr_json_doc *d;
    size_t n, ends = 0, i, b;
    PT_REQUIRE(tl_start(&f) == PR_OK);
    PT_EQ_ERR(pr_reporter_start(&r, &f.ro, NULL), PR_OK);
    memset(&e, 0, sizeof e);
    e.type = "RuntimeError";
    e.message = "it broke";
    e.traceback = "at main";
    /* T6: the exception and SESSION_END, in that order, on the server before it returns */
    PT_EQ_ERR(pr_reporter_log_fatal(r, &e, PR_SEVERITY_CRITICAL, pr_deadline_in(10000)), PR_OK);
    n = ts_log_count(f.s);
    PT_REQUIRE(n >= 1);
    d = tl_batch(&f, n - 1, &evs);
    PT_REQUIRE(d != NULL);
    i = pr_json_len(evs);
    PT_REQUIRE(i >= 2);
    PT_EQ_STR(tl_str(pr_json_at(evs, i - 2), "event"), "UNHANDLED_EXCEPTION");
    PT_EQ_STR(tl_str(pr_json_at(evs, i - 2), "error_type"), "RuntimeError");
    PT_EQ_STR(tl_str(pr_json_at(evs, i - 2), "error_message"), "it broke");
    PT_EQ_STR(tl_str(pr_json_at(evs, i - 2), "traceback"), "at main");
    PT_EQ_STR(tl_str(pr_json_at(evs, i - 2), "severity"), "CRITICAL");
    PT_EQ_STR(tl_str(pr_json_at(evs, i - 1), "event"), "SESSION_END");
    PT_CHECK(strchr(tl_str(pr_json_at(evs, i - 1), "duration"), ':') != NULL);
    pr_json_doc_destroy(d);
    /* T10: stopping (twice) sends no second SESSION_END */
    PT_EQ_ERR(pr_reporter_stop(r, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_reporter_stop(r, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(pr_reporter_log(r, "late", NULL, PR_SEVERITY_INFO), 0);
    for (b = 0; b < ts_log_count(f.s); b++) {
        d = tl_batch(&f, b, &evs);
        for (i = 0; d && i < pr_json_len(evs); i++) ends += strcmp(tl_str(pr_json_at(evs, i), "event"), "SESSION_END") == 0;
        pr_json_doc_destroy(d);
    }
    PT_EQ_INT(ends, 1);
    pr_reporter_destroy(r);
    /* T10 again after normal use: stop queues SESSION_END and flushes before it returns */
    PT_EQ_ERR(pr_reporter_start(&r, &f.ro, NULL), PR_OK);
    PT_EQ_INT(pr_reporter_log(r, "a", NULL, PR_SEVERITY_INFO), 1);
    n = ts_log_count(f.s);
    PT_EQ_ERR(pr_reporter_stop(r, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(ts_log_count(f.s), n + 1);
    d = tl_batch(&f, n, &evs);
    PT_REQUIRE(d != NULL);
    PT_EQ_INT(pr_json_len(evs), 3);
    PT_EQ_STR(tl_str(pr_json_at(evs, 2), "event"), "SESSION_END");
    pr_json_doc_destroy(d);
    pr_reporter_destroy(r);
    tl_end(&f);
}

PT_TEST(telemetry_dead_endpoint) {
    tl_fx f;
    pr_reporter *r;
    ts_step hang;
    pr_reporter_error e;
    int64_t t0;
    int i;
    PT_REQUIRE(tl_start(&f) == PR_OK);
    memset(&hang, 0, sizeof hang);
    hang.delay_head_ms = 5000;
    PT_EQ_ERR(ts_script_default(f.s, "/api/v1/telemetry", &hang), PR_OK);
    f.ro.flush_timeout_ms = 300;
    f.ro.max_send_retries = PR_RETRY_OFF;
    PT_EQ_ERR(pr_reporter_start(&r, &f.ro, NULL), PR_OK);
    PT_EQ_INT(pr_reporter_log(r, "x", NULL, PR_SEVERITY_INFO), 1);
    /* T7: every POST hangs: the wait gives up after the flush timeout */
    t0 = pr_now();
    PT_EQ_ERR(pr_reporter_flush(r, PR_FOREVER), PR_ETIMEDOUT);
    PT_CHECK(pr_now() - t0 >= 300);
    /* logging while a POST hangs never waits for it */
    memset(&e, 0, sizeof e);
    e.message = "m";
    for (i = 0; i < 1000; i++) PT_EQ_INT(pr_reporter_log(r, "more", NULL, PR_SEVERITY_INFO), 1);
    PT_EQ_INT(pr_reporter_log_exception(r, &e, PR_SEVERITY_ERROR), 1);
    PT_EQ_ERR(pr_reporter_stop(r, pr_deadline_in(100)), PR_ETIMEDOUT);
    pr_reporter_destroy(r);
    tl_end(&f);
}

/* No client given: the reporter makes its own from opts.tls and posts
   over https to the TLS test server, trusting the test CA; tls with a
   client given is refused (that client keeps its own settings). */
PT_TEST(telemetry_reporter_own_client_tls) {
#ifdef PRISTINE_NO_TLS
    PT_SKIP("no TLS in this build");
#else
    tl_fx f;
    pr_reporter *r = NULL;
    ts_opts so;
    const pr_json *ev;
    pr_json_doc *d;
    pr_err_info e;
    if (system("sh tests/fixtures/tls_mkcerts.sh build/tls-fixtures") != 0) PT_SKIP("no openssl to make certificates");
    PT_REQUIRE(tl_start(&f) == PR_OK);
    ts_stop(f.s);
    memset(&so, 0, sizeof so);
    so.tls_cert_file = "build/tls-fixtures/good.crt";
    so.tls_key_file = "build/tls-fixtures/good.key";
    PT_REQUIRE(ts_start(&f.s, &so) == PR_OK);
    snprintf(f.url, sizeof f.url, "https://localhost:%u/api/v1/telemetry", (unsigned)ts_port(f.s));
    f.ro.tls.ca_file = "build/tls-fixtures/ca.crt";
    PT_EQ_ERR(pr_reporter_start(&r, &f.ro, &e), PR_EINVAL); /* a client is given */
    PT_EQ_INT(e.code, PR_EINVAL); /* why, in err */
    PT_CHECK(r == NULL);
    f.ro.client = NULL;
    PT_EQ_ERR(pr_reporter_start(&r, &f.ro, NULL), PR_OK);
    PT_EQ_INT(pr_reporter_log(r, "x", NULL, PR_SEVERITY_INFO), 1);
    PT_EQ_ERR(pr_reporter_flush(r, pr_deadline_in(10000)), PR_OK);
    PT_EQ_ERR(pr_reporter_stop(r, pr_deadline_in(10000)), PR_OK);
    pr_reporter_destroy(r);
    PT_CHECK(ts_log_count(f.s) >= 1);
    d = tl_batch(&f, 0, &ev);
    PT_REQUIRE(d != NULL);
    PT_EQ_STR(tl_str(pr_json_at(ev, 0), "event"), "SESSION_START");
    PT_EQ_INT(f.rec.n, 0); /* nothing was sent again */
    pr_json_doc_destroy(d);
    tl_end(&f);
#endif
}

PT_TEST(telemetry_enable_switch) {
    static const char *const off[] = { "0", "false", "no", "off", "", "random" };
    static const char *const on[] = { "1", "TRUE", "yes", "On", " 1 " };
    tl_fx f;
    pr_reporter *r;
    size_t i;
    PT_REQUIRE(tl_start(&f) == PR_OK);
    f.ro.enabled = 0;
    f.ro.env_var = "PT_TELEMETRY_SWITCH";
    /* T8: unset: on */
    unsetenv("PT_TELEMETRY_SWITCH");
    PT_EQ_ERR(pr_reporter_start(&r, &f.ro, NULL), PR_OK);
    PT_CHECK(r != NULL);
    pr_reporter_destroy(r);
    for (i = 0; i < sizeof off / sizeof off[0]; i++) {
        setenv("PT_TELEMETRY_SWITCH", off[i], 1);
        r = (pr_reporter *)&f; /* must be overwritten with NULL */
        PT_EQ_ERR(pr_reporter_start(&r, &f.ro, NULL), PR_OK);
        if (r != NULL) pt_fail(__FILE__, __LINE__, "\"%s\" enabled telemetry", off[i]);
        PT_EQ_INT(pr_reporter_log(r, "x", NULL, PR_SEVERITY_INFO), 0);
        PT_EQ_ERR(pr_reporter_stop(r, 0), PR_OK);
    }
    for (i = 0; i < sizeof on / sizeof on[0]; i++) {
        setenv("PT_TELEMETRY_SWITCH", on[i], 1);
        PT_EQ_ERR(pr_reporter_start(&r, &f.ro, NULL), PR_OK);
        if (r == NULL) pt_fail(__FILE__, __LINE__, "\"%s\" did not enable telemetry", on[i]);
        pr_reporter_destroy(r);
    }
    /* the programmatic switch wins */
    f.ro.enabled = -1;
    PT_EQ_ERR(pr_reporter_start(&r, &f.ro, NULL), PR_OK);
    PT_CHECK(r == NULL);
    unsetenv("PT_TELEMETRY_SWITCH");
    PT_EQ_INT(ts_log_count(f.s), 0); /* no telemetry request at all */
    tl_end(&f);
}

PT_TEST(telemetry_user_errors) {
    pr_reporter_error e, cause, loop1, loop2;
    tl_fx f;
    pr_reporter *r;
    const pr_json *evs, *ev;
    pr_json_doc *d;
    memset(&e, 0, sizeof e);
    memset(&cause, 0, sizeof cause);
    e.status_code = 422;
    PT_EQ_INT(pr_reporter_is_user_error(&e), 1);
    e.status_code = 408;
    PT_EQ_INT(pr_reporter_is_user_error(&e), 0);
    e.status_code = 500;
    PT_EQ_INT(pr_reporter_is_user_error(&e), 0);
    e.status_code = 429;
    PT_EQ_INT(pr_reporter_is_user_error(&e), 0);
    e.status_code = 410;
    PT_EQ_INT(pr_reporter_is_user_error(&e), 0);
    e.status_code = 0;
    e.category = PR_CATEGORY_USER;
    PT_EQ_INT(pr_reporter_is_user_error(&e), 1);
    e.category = 0;
    cause.status_code = 409;
    e.cause = &cause;
    PT_EQ_INT(pr_reporter_is_user_error(&e), 1); /* through the cause */
    memset(&loop1, 0, sizeof loop1);
    memset(&loop2, 0, sizeof loop2);
    loop1.cause = &loop2;
    loop2.cause = &loop1;
    PT_EQ_INT(pr_reporter_is_user_error(&loop1), 0); /* a cycle ends the walk */
    PT_EQ_INT(pr_reporter_is_user_error(NULL), 0);
    /* T9: on the wire */
    PT_REQUIRE(tl_start(&f) == PR_OK);
    f.ro.session_id = NULL;
    PT_EQ_ERR(pr_reporter_start(&r, &f.ro, NULL), PR_OK);
    memset(&e, 0, sizeof e);
    e.type = "UnprocessableEntityError";
    e.message = "invalid";
    e.status_code = 422;
    e.body = "{\"errors\":[\"x\"]}";
    PT_EQ_INT(pr_reporter_log_exception(r, &e, PR_SEVERITY_ERROR), 1);
    e.status_code = 500;
    PT_EQ_INT(pr_reporter_log_exception(r, &e, PR_SEVERITY_ERROR), 1);
    memset(&e, 0, sizeof e);
    e.message = "wrapped";
    e.cause = &cause;
    PT_EQ_INT(pr_reporter_log_exception(r, &e, PR_SEVERITY_ERROR), 1);
    PT_EQ_ERR(pr_reporter_flush(r, pr_deadline_in(5000)), PR_OK);
    {
        size_t total = 0, b;
        int user = 0, unhandled = 0, with409 = 0;
        for (b = 0; b < ts_log_count(f.s); b++) {
            size_t i;
            d = tl_batch(&f, b, &evs);
            for (i = 0; d && i < pr_json_len(evs); i++) {
                ev = pr_json_at(evs, i);
                total++;
                if (!strcmp(tl_str(ev, "event"), "GENERIC_EVENT") && !strcmp(tl_str(ev, "event_name"), "user_error")) {
                    const pr_json *data = pr_json_get(ev, "event_data");
                    user++;
                    PT_EQ_STR(tl_str(ev, "severity"), "WARNING");
                    if (tl_int(data, "status_code") == 422) {
                        PT_EQ_STR(tl_str(data, "message"), "invalid");
                        PT_EQ_STR(tl_str(data, "body"), "{\"errors\":[\"x\"]}");
                        PT_EQ_STR(tl_str(data, "error_type"), "UnprocessableEntityError");
                    }
                    if (tl_int(data, "status_code") == 409) with409++;
                } else if (!strcmp(tl_str(ev, "event"), "UNHANDLED_EXCEPTION")) {
                    unhandled++;
                    PT_EQ_STR(tl_str(ev, "severity"), "ERROR");
                }
            }
            pr_json_doc_destroy(d);
        }
        PT_EQ_INT(total, 3);
        PT_EQ_INT(user, 2);
        PT_EQ_INT(with409, 1);
        PT_EQ_INT(unhandled, 1);
    }
    pr_reporter_destroy(r);
    tl_end(&f);
}

PT_TEST(telemetry_process_and_session_ids) {
    tl_fx f;
    pr_reporter *a, *b;
    const pr_json *evs;
    pr_json_doc *d0, *d1;
    PT_REQUIRE(tl_start(&f) == PR_OK);
    f.ro.session_id = "sa";
    PT_EQ_ERR(pr_reporter_start(&a, &f.ro, NULL), PR_OK);
    f.ro.session_id = "sb";
    PT_EQ_ERR(pr_reporter_start(&b, &f.ro, NULL), PR_OK);
    PT_EQ_STR(pr_reporter_session_id(a), "sa");
    PT_EQ_ERR(pr_reporter_flush(a, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_reporter_flush(b, pr_deadline_in(5000)), PR_OK);
    PT_REQUIRE(ts_log_count(f.s) == 2);
    /* T11: one process UUID, two session ids */
    d0 = tl_batch(&f, 0, &evs);
    d1 = tl_batch(&f, 1, &evs);
    PT_REQUIRE(d0 && d1);
    PT_EQ_STR(tl_str(pr_json_root(d0), "process_uuid"), tl_str(pr_json_root(d1), "process_uuid"));
    PT_CHECK(strcmp(tl_str(pr_json_root(d0), "session_id"), tl_str(pr_json_root(d1), "session_id")) != 0);
    pr_json_doc_destroy(d0);
    pr_json_doc_destroy(d1);
    pr_reporter_destroy(a);
    pr_reporter_destroy(b);
    tl_end(&f);
}

/* ---- the hub ---- */

typedef struct tl_seen {
    int n;
    int kind[32], severity[32];
    char name[32][64], url[128], reason[96], breaker_to[16];
} tl_seen;

static void tl_on_event(const pr_telemetry_event *ev, void *ud) {
    tl_seen *x = (tl_seen *)ud;
    const pr_telemetry_field *f;
    if (x->n < 32) {
        x->kind[x->n] = ev->kind;
        x->severity[x->n] = ev->severity;
        snprintf(x->name[x->n], sizeof x->name[x->n], "%s", ev->name);
    }
    x->n++;
    if ((f = pr_telemetry_field_get(ev, "url")) != NULL) snprintf(x->url, sizeof x->url, "%s", f->s);
    if ((f = pr_telemetry_field_get(ev, "reason")) != NULL) snprintf(x->reason, sizeof x->reason, "%s", f->s);
    if ((f = pr_telemetry_field_get(ev, "to")) != NULL) snprintf(x->breaker_to, sizeof x->breaker_to, "%s", f->s);
}

/* An event stream's reconnect through the hub. */
PT_TEST(telemetry_stream_reconnect_event) {
    ts_server *srv;
    pr_telemetry *t;
    pr_telemetry_opts to;
    pr_sse_stream_opts so;
    pr_sse *s;
    pr_sse_event ev;
    tl_seen seen;
    char url[128];
    PT_REQUIRE(ts_start(&srv, NULL) == PR_OK);
    memset(&seen, 0, sizeof seen);
    memset(&to, 0, sizeof to);
    to.on_event = tl_on_event;
    to.user_data = &seen;
    PT_REQUIRE(pr_telemetry_create(&t, &to) == PR_OK);
    memset(&so, 0, sizeof so);
    so.retry_ms = 5;
    so.observer.on_reconnect = pr_telemetry_sse_hook;
    so.observer.user_data = t;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/sse?events=1&id=1", (unsigned)ts_port(srv));
    PT_EQ_ERR(pr_sse_open(&s, url, &so, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_sse_next(s, &ev, pr_deadline_in(5000)), PR_OK); /* event 2, after the reconnect */
    PT_EQ_INT(seen.n, 1);
    PT_EQ_INT(seen.kind[0], PR_TELEMETRY_STREAM_RECONNECT);
    PT_EQ_STR(seen.name[0], "sse.reconnect");
    PT_EQ_INT(seen.severity[0], PR_SEVERITY_INFO);
    PT_EQ_STR(seen.reason, "PR_ECLOSED");
    pr_sse_destroy(s);
    pr_telemetry_destroy(t);
    ts_stop(srv);
}

PT_TEST(telemetry_sanitize_url) {
    static const struct { const char *in, *out; } cases[] = {
        { "https://user:pw@api.test/v1/x?a=1&api_key=s3cret&b=2#frag", "https://api.test/v1/x?a=1&api_key=REDACTED&b=2#frag" },
        { "http://h/p?token=t&Access_Token=u&sig=v&page=3", "http://h/p?token=REDACTED&Access_Token=REDACTED&sig=REDACTED&page=3" },
        { "http://h:8080/", "http://h:8080/" },
        { "http://a@b@h/x?password", "http://h/x?password" },
        { "http://h/?X-Amz-Signature=abc&session_id=9", "http://h/?X-Amz-Signature=REDACTED&session_id=REDACTED" },
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pr_buf b;
        pr_buf_init(&b);
        PT_EQ_ERR(pr_telemetry_sanitize_url(&b, cases[i].in), PR_OK);
        PT_EQ_ERR(pr_buf_append(&b, "", 1), PR_OK);
        PT_EQ_STR(b.data, cases[i].out);
        pr_buf_deinit(&b);
    }
}

PT_TEST(telemetry_hub_from_client_breaker_and_futures) {
    tl_fx f;
    pr_telemetry *t;
    pr_telemetry_opts to;
    pr_http_client *c;
    pr_http_client_opts co;
    pr_http_response *r = NULL;
    pr_breaker *br;
    pr_breaker_opts bo;
    pr_reporter *rep;
    tl_seen seen;
    ts_step st[2];
    char url[160];
    int i;
    PT_REQUIRE(tl_start(&f) == PR_OK);
    PT_EQ_ERR(pr_reporter_start(&rep, &f.ro, NULL), PR_OK);
    memset(&seen, 0, sizeof seen);
    memset(&to, 0, sizeof to);
    to.on_event = tl_on_event;
    to.user_data = &seen;
    to.reporter = rep;
    PT_REQUIRE(pr_telemetry_create(&t, &to) == PR_OK);
    memset(&bo, 0, sizeof bo);
    bo.failure_threshold = 1;
    bo.observer.on_change = pr_telemetry_breaker_hook;
    bo.observer.user_data = t;
    PT_REQUIRE(pr_breaker_create(&br, "upstream", &bo) == PR_OK);
    memset(&co, 0, sizeof co);
    co.ignore_env = 1;
    co.observer.on_event = pr_telemetry_http_hook;
    co.observer.user_data = t;
    co.retry.hooks.sleep = tl_sleep;
    co.retry.hooks.user_data = &f.rec;
    PT_REQUIRE(pr_http_client_create(&c, &co, NULL) == PR_OK);
    st[0] = hr_step(503, NULL, NULL);
    st[1] = hr_step(200, NULL, NULL);
    PT_EQ_ERR(ts_script(f.s, "/t/a", st, 2), PR_OK);
    snprintf(url, sizeof url, "http://me:pw@127.0.0.1:%u/t/a?token=abc", (unsigned)ts_port(f.s));
    PT_EQ_ERR(pr_http_client_get(c, &r, url, NULL, pr_deadline_in(5000)), PR_OK);
    pr_http_response_destroy(r);
    /* start, retry, stop; the URL without credentials and with the token redacted */
    PT_EQ_INT(seen.n, 3);
    PT_EQ_INT(seen.kind[0], PR_TELEMETRY_REQUEST_START);
    PT_EQ_INT(seen.kind[1], PR_TELEMETRY_RETRY);
    PT_EQ_STR(seen.reason, "status 503");
    PT_EQ_INT(seen.kind[2], PR_TELEMETRY_REQUEST_STOP);
    PT_EQ_STR(seen.name[2], "http.request.stop");
    snprintf(url, sizeof url, "http://127.0.0.1:%u/t/a?token=REDACTED", (unsigned)ts_port(f.s));
    PT_EQ_STR(seen.url, url);
    /* a breaker's change; a queue state; a future's problems and end */
    PT_EQ_ERR(pr_breaker_admit(br), PR_OK);
    pr_breaker_record(br, PR_BREAKER_FAILURE);
    PT_EQ_INT(seen.kind[3], PR_TELEMETRY_BREAKER);
    PT_EQ_STR(seen.breaker_to, "open");
    {
        pr_queue_change qc;
        pr_rfuture_event fe;
        memset(&qc, 0, sizeof qc);
        qc.request_id = "r1";
        qc.state = PR_QUEUE_PAUSED_CAPACITY;
        pr_telemetry_queue_hook(&qc, t);
        PT_EQ_INT(seen.kind[4], PR_TELEMETRY_QUEUE_STATE);
        memset(&fe, 0, sizeof fe);
        fe.name = "APIFuture.result_async.connection_error";
        fe.severity = PR_SEVERITY_WARNING;
        fe.request_id = "r1";
        fe.request_type = "";
        fe.kind = "retry_with_backoff";
        pr_telemetry_rfuture_hook(&fe, t);
        PT_EQ_INT(seen.kind[5], PR_TELEMETRY_FUTURE);
        PT_EQ_STR(seen.name[5], "APIFuture.result_async.connection_error");
        fe.name = "APIFuture.result_async.resolved";
        fe.kind = NULL;
        fe.settled = 1;
        pr_telemetry_rfuture_hook(&fe, t);
        PT_EQ_INT(seen.kind[6], PR_TELEMETRY_FUTURE_RESOLVED);
        fe.name = "APIFuture.result_async.timeout";
        fe.error = PR_ETIMEDOUT;
        pr_telemetry_rfuture_hook(&fe, t);
        PT_EQ_INT(seen.kind[7], PR_TELEMETRY_FUTURE_FAILED);
        fe.name = "APIFuture.result_async.resubmitted";
        fe.error = 0;
        fe.settled = 0;
        fe.new_request_id = "r2";
        pr_telemetry_rfuture_hook(&fe, t);
        PT_EQ_INT(seen.kind[8], PR_TELEMETRY_FUTURE);
    }
    { /* a Durable Streams handle's credentials refreshed after a 401 */
        pr_ds_event de;
        memset(&de, 0, sizeof de);
        de.kind = PR_DS_EVENT_AUTH_REFRESH;
        de.url = "http://127.0.0.1:1/s?token=abc";
        de.op = "append";
        de.method = "POST";
        de.status = 401;
        de.attempt = 1;
        pr_telemetry_ds_hook(&de, t);
        PT_EQ_INT(seen.kind[9], PR_TELEMETRY_RETRY);
        PT_EQ_STR(seen.name[9], "ds.auth.refresh");
        PT_EQ_STR(seen.url, "http://127.0.0.1:1/s?token=REDACTED");
    }
    /* forwarded to the reporter as GENERIC_EVENTs "pristine.<name>" */
    PT_EQ_ERR(pr_reporter_flush(rep, pr_deadline_in(5000)), PR_OK);
    {
        const pr_json *evs;
        pr_json_doc *d = tl_batch(&f, ts_log_count(f.s) - 1, &evs);
        int found = 0;
        PT_REQUIRE(d != NULL);
        for (i = 0; i < (int)pr_json_len(evs); i++)
            if (!strcmp(tl_str(pr_json_at(evs, i), "event_name"), "pristine.http.request.stop")) {
                found++;
                PT_EQ_INT(tl_int(pr_json_get(pr_json_at(evs, i), "event_data"), "status"), 200);
            }
        PT_EQ_INT(found, 1);
        pr_json_doc_destroy(d);
    }
    pr_http_client_destroy(c);
    pr_breaker_destroy(br);
    pr_telemetry_destroy(t);
    pr_reporter_destroy(rep);
    tl_end(&f);
}

/* Both rfuture adapters on one poller's observer, the hub its one
   user_data: a queue state, a poll problem and the end arrive as telemetry
   events. */
PT_TEST(telemetry_rfuture_observer) {
    rf_fx f;
    pr_telemetry *t;
    pr_telemetry_opts to;
    tl_seen seen;
    pr_future *fu = NULL;
    ts_step st[3];
    rf_opts(&f);
    memset(&seen, 0, sizeof seen);
    memset(&to, 0, sizeof to);
    to.on_event = tl_on_event;
    to.user_data = &seen;
    PT_REQUIRE(pr_telemetry_create(&t, &to) == PR_OK);
    f.po.observer.on_event = pr_telemetry_rfuture_hook;
    f.po.observer.on_queue_state = pr_telemetry_queue_hook;
    f.po.observer.user_data = t;
    PT_REQUIRE(rf_start(&f) == PR_OK);
    st[0] = rf_step(200, "{\"type\":\"try_again\",\"queue_state\":\"paused_capacity\"}");
    st[1] = rf_step(503, "busy");
    st[2] = rf_step(200, "{\"status\":\"completed\",\"result\":{}}");
    rf_script(&f, "r1", st, 3);
    PT_EQ_ERR(rf_run(&f, "r1", NULL, &fu), PR_OK);
    PT_EQ_INT(seen.n, 3);
    PT_EQ_INT(seen.kind[0], PR_TELEMETRY_QUEUE_STATE);
    PT_EQ_STR(seen.name[0], "queue.state_change");
    PT_EQ_INT(seen.kind[1], PR_TELEMETRY_FUTURE);
    PT_EQ_STR(seen.name[1], "APIFuture.result_async.api_status_error");
    PT_EQ_INT(seen.kind[2], PR_TELEMETRY_FUTURE_RESOLVED);
    PT_EQ_STR(seen.name[2], "APIFuture.result_async.resolved");
    pr_future_destroy(fu);
    rf_end(&f);
    pr_telemetry_destroy(t);
}

const pt_suite pt_suite_telemetry = { "telemetry", {
    PT_ENTRY(telemetry_stream_reconnect_event),
    PT_ENTRY(telemetry_session_start_and_batches),
    PT_ENTRY(telemetry_flush_interval),
    PT_ENTRY(telemetry_queue_cap_all_or_nothing),
    PT_ENTRY(telemetry_flood_stays_bounded),
    PT_ENTRY(telemetry_queue_bytes_bounded),
    PT_ENTRY(telemetry_resends_then_drops),
    PT_ENTRY(telemetry_fatal_and_stop),
    PT_ENTRY(telemetry_dead_endpoint),
    PT_ENTRY(telemetry_reporter_own_client_tls),
    PT_ENTRY(telemetry_enable_switch),
    PT_ENTRY(telemetry_user_errors),
    PT_ENTRY(telemetry_process_and_session_ids),
    PT_ENTRY(telemetry_sanitize_url),
    PT_ENTRY(telemetry_hub_from_client_breaker_and_futures),
    PT_ENTRY(telemetry_rfuture_observer),
    {0, 0} } };
