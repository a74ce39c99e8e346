/* sweep: cancellation and allocation failure at every point of five whole
   operations, each run by a task of its own (the client task) against real
   servers on 127.0.0.1: an https GET with its body (the test server over
   TLS), an SSE stream's open and its reconnect (pr_sse_open, then events
   across one end of the body), a remote future's polls (pr_future_await
   on pr_rfuture_start against the test server's retrieve endpoint), a
   Durable Streams long-poll read (the reference server; the data arrives
   while the long-poll waits) and an idempotent producer's appends, flush
   and close.

   Cancellation: a first run counts the suspensions of the client task and
   of the tasks it spawns (sched's PRISTINE_TESTING hook,
   pr__sched_test_sweep; the servers' tasks in this process are not
   counted); then run k cancels the client task at its k-th suspension, for
   every k, until a run ends before its k-th. Each run must return
   PR_ECANCELED, or PR_OK with the whole result checked (the operation's
   work was done before a wait could end with the cancel: a cancel at the
   last read, or a producer's last batch answered while its flush was being
   woken), within a loose hang guard; the time from the cancel to the
   return is reported, not asserted.

   Allocation failure: a first run counts the allocations made by the
   client task and the tasks it spawns (a wrapper around support.h's
   counting allocator asks the scheduler which task is running, so the
   servers' allocations never fail); then run n fails the n-th of them, for
   every n, until a run ends before its n-th. Each run must return
   PR_ENOMEM or succeed.

   Every run: nothing left allocated, no task left unfreed (the scheduler's count)
   and no file descriptor left open (/proc/self/fd), counted before the run
   and after its servers stopped and its tasks wound down. Each test prints its counts on stderr:
   "sweep: <kind> <op>: N points ...". */
#include <dirent.h>

#define SW_HANG_MS 20000  /* a run that takes longer hangs */
#define SW_SETTLE_MS 5000 /* how long a run's tasks may take to wind down */
#define SW_MAX_RUNS 20000

typedef struct sw_fx sw_fx;

typedef struct sw_op {
    const char *name;
    int (*setup)(sw_fx *f);    /* before each run, in the test's task: servers */
    int (*body)(sw_fx *f);     /* the client task: the whole operation, PR_OK when it did it all */
    void (*teardown)(sw_fx *f); /* after each run */
    int needs_ds;              /* the reference Durable Streams server runs for the whole sweep */
} sw_op;

struct sw_fx {
    const sw_op *op;
    long run;                  /* the run's number, from 1 */
    ts_server *ts;
    char url[256];
    /* ds */
    ds_fx ds;
    pr_ds *hds;                /* the helper's handle (its own client), per run */
    char tail[256];            /* the stream's tail before the run */
    int lp_started;            /* the client's long-poll request began */
    int client_done;
    int warming;               /* the first run: the scheduler's tables may grow, nothing is checked */
    pr_task *client, *helper;
};

/* ---- the allocation filter: only the client task's allocations count ---- */
static struct {
    int on;
    long count, fail_at;       /* allocations counted; which one fails (0 = none) */
    int hit;                   /* it did */
} sw_mem;

static int sw_fail_now(void) {
    pr_sched *s = pr__sched_tls;
    if (!sw_mem.on || !s || !s->cur || !(s->cur->flags & PR__SCHED_TF_SWEEP) || s->in_post) return 0;
    if (++sw_mem.count != sw_mem.fail_at) return 0;
    sw_mem.hit = 1;
    return 1;
}

static void *sw_alloc(size_t n, void *ud) { return sw_fail_now() ? NULL : pt__alloc(n, ud); }

static void *sw_realloc(void *p, size_t old_n, size_t new_n, void *ud) {
    return sw_fail_now() ? NULL : pt__realloc(p, old_n, new_n, ud);
}

/* Tasks of this thread's scheduler not yet freed (a stack count would
   see the pool grow instead). */
static size_t sw_tasks(void) { return pr__sched_tls ? pr__sched_tls->ntasks : 0; }

/* Open file descriptors of the process (-1 without /proc). */
static int sw_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static int sw_client_main(void *arg) {
    sw_fx *f = (sw_fx *)arg;
    return f->op->body(f);
}

typedef struct sw_out {
    int rc;            /* the operation's code */
    int hit;           /* the planned cancel or failure happened */
    long count;        /* suspensions or allocations of the run */
    int64_t cancel_ms; /* from the cancel to the client task's end */
} sw_out;

/* One run: cancel at the cancel_at-th suspension, or fail the fail_at-th
   allocation (0 = neither). Checks that nothing is left over. */
static int sw_run(sw_fx *f, long cancel_at, long fail_at, sw_out *out) {
    long live0 = pt_alloc_live(NULL), live = 0;
    size_t tasks0 = sw_tasks(), tasks = 0;
    int fd0 = sw_fds(), fds = 0, rc = PR_EIO, jrc, i;
    int64_t end;
    memset(out, 0, sizeof *out);
    f->run++;
    f->client_done = 0;
    f->lp_started = 0;
    if (f->op->setup && (rc = f->op->setup(f)) != PR_OK) {
        pt_fail(__FILE__, __LINE__, "%s run %ld: setup gave %s", f->op->name, f->run, pt_errname(rc));
        return -1;
    }
    if ((jrc = pr_go(&f->client, sw_client_main, f, NULL)) != PR_OK) {
        pt_fail(__FILE__, __LINE__, "%s: pr_go gave %s", f->op->name, pt_errname(jrc));
        if (f->op->teardown) f->op->teardown(f);
        return -1;
    }
    f->client->flags |= PR__SCHED_TF_SWEEP; /* it has not run yet */
    memset(&pr__sched_test_sweep, 0, sizeof pr__sched_test_sweep);
    pr__sched_test_sweep.root = f->client;
    pr__sched_test_sweep.cancel_at = cancel_at;
    sw_mem.count = 0;
    sw_mem.fail_at = fail_at;
    sw_mem.hit = 0;
    sw_mem.on = 1;
    jrc = pr_join(f->client, &rc, pr_deadline_in(SW_HANG_MS));
    if (jrc == PR_ETIMEDOUT) {
        pt_fail(__FILE__, __LINE__, "%s run %ld (cancel at %ld, fail at %ld): got no end in %d ms, want one",
                f->op->name, f->run, cancel_at, fail_at, SW_HANG_MS);
        pr_cancel(f->client);
        jrc = pr_join(f->client, &rc, pr_deadline_in(SW_HANG_MS));
    }
    out->cancel_ms = pr_now() - pr__sched_test_sweep.at;
    pr__sched_test_sweep.root = NULL; /* joined: freed */
    f->client = NULL;
    f->client_done = 1;
    if (jrc != PR_OK) {
        pt_fail(__FILE__, __LINE__, "%s run %ld: the client task never ended (%s)", f->op->name, f->run,
                pt_errname(jrc));
        return -1;
    }
    out->rc = rc;
    if (f->op->teardown) f->op->teardown(f);
    /* the client's tasks wind down (a remote future's poll task, a producer's senders) */
    for (end = pr_deadline_in(f->warming ? 50 : SW_SETTLE_MS), i = 0; pr_now() < end; i++) {
        live = pt_alloc_live(NULL);
        fds = sw_fds();
        tasks = sw_tasks();
        if (live == live0 && fds == fd0 && tasks == tasks0) break;
        pr_sleep(pr_deadline_in(i < 10 ? 0 : 2));
    }
    sw_mem.on = 0;
    if (cancel_at) {
        out->hit = pr__sched_test_sweep.suspends >= cancel_at;
        out->count = pr__sched_test_sweep.suspends;
    } else {
        out->hit = sw_mem.hit;
        out->count = sw_mem.count;
    }
    if (f->warming) return 0;
    if (live != live0)
        pt_fail(__FILE__, __LINE__, "%s run %ld (cancel at %ld, fail at %ld, %s): got %ld allocations left, want 0",
                f->op->name, f->run, cancel_at, fail_at, pt_errname(rc), live - live0);
    if (tasks != tasks0)
        pt_fail(__FILE__, __LINE__, "%s run %ld (cancel at %ld, fail at %ld, %s): got %ld tasks left, want 0",
                f->op->name, f->run, cancel_at, fail_at, pt_errname(rc), (long)(tasks - tasks0));
    if (fds != fd0)
        pt_fail(__FILE__, __LINE__, "%s run %ld (cancel at %ld, fail at %ld, %s): got %d fds left open, want 0",
                f->op->name, f->run, cancel_at, fail_at, pt_errname(rc), fds - fd0);
    return 0;
}

/* The cancellation sweep of one operation. */
static void sw_cancel_sweep(sw_fx *f) {
    sw_out o;
    long points, k, late = 0, canceled = 0;
    int64_t worst = 0;
    f->warming = 1; /* a first run warms the scheduler's tables up */
    if (sw_run(f, 0, 0, &o) != 0) return;
    f->warming = 0;
    PT_EQ_ERR(o.rc, PR_OK);
    if (sw_run(f, 0, 0, &o) != 0) return; /* the count */
    PT_EQ_ERR(o.rc, PR_OK);
    points = pr__sched_test_sweep.suspends;
    PT_REQUIRE(points > 0);
    for (k = 1; k < SW_MAX_RUNS; k++) {
        if (sw_run(f, k, 0, &o) != 0) return;
        if (!o.hit) { /* the run ended before its k-th suspension */
            PT_EQ_ERR(o.rc, PR_OK);
            if (k > points) break;
            continue;
        }
        if (o.rc == PR_ECANCELED) {
            canceled++;
            if (o.cancel_ms > worst) worst = o.cancel_ms;
        } else if (o.rc == PR_OK) {
            late++; /* the work was done (checked) before a wait could end with the cancel */
        } else {
            pt_fail(__FILE__, __LINE__, "%s cancelled at suspension %ld of %ld: got %s, want PR_ECANCELED",
                    f->op->name, k, points, pt_errname(o.rc));
        }
    }
    PT_CHECK(k < SW_MAX_RUNS);
    fprintf(stderr, "sweep: cancel %s: %ld suspension points (%ld runs: %ld PR_ECANCELED, %ld completed first), "
            "slowest cancel %lld ms\n", f->op->name, points, k - 1, canceled, late, (long long)worst);
}

/* The allocation sweep of one operation. */
static void sw_alloc_sweep(sw_fx *f) {
    static pr_allocator saved;
    sw_out o;
    long allocs, n, enomem = 0, ok = 0;
    f->warming = 1;
    if (sw_run(f, 0, 0, &o) != 0) return;
    f->warming = 0;
    PT_EQ_ERR(o.rc, PR_OK);
    saved = pr__allocator;
    pr__allocator.alloc = sw_alloc;
    pr__allocator.realloc = sw_realloc;
    if (sw_run(f, 0, 0, &o) != 0) goto out; /* the count */
    PT_EQ_ERR(o.rc, PR_OK);
    allocs = o.count;
    PT_CHECK(allocs > 0);
    for (n = 1; n < SW_MAX_RUNS; n++) {
        if (sw_run(f, 0, n, &o) != 0) goto out;
        if (!o.hit) {
            PT_EQ_ERR(o.rc, PR_OK);
            if (n > allocs) break;
            continue;
        }
        if (o.rc == PR_ENOMEM) enomem++;
        else if (o.rc == PR_OK) ok++;
        else pt_fail(__FILE__, __LINE__, "%s with allocation %ld of %ld failing: got %s, want PR_ENOMEM or PR_OK",
                     f->op->name, n, allocs, pt_errname(o.rc));
    }
    PT_CHECK(n < SW_MAX_RUNS);
    fprintf(stderr, "sweep: alloc %s: %ld allocations (%ld runs: %ld PR_ENOMEM, %ld succeeded)\n", f->op->name,
            allocs, n - 1, enomem, ok);
out:
    pr__allocator = saved;
}

static int sw_ds_start(sw_fx *f);

/* One sweep of op: cancel at each suspension point, or (alloc) fail each
   allocation in turn; ops that need it get the reference DS server. */
static void sw_sweep(const sw_op *op, int alloc) {
    sw_fx f;
    memset(&f, 0, sizeof f);
    f.op = op;
    if (op->needs_ds) PT_REQUIRE(sw_ds_start(&f) == PR_OK);
    if (alloc) sw_alloc_sweep(&f);
    else sw_cancel_sweep(&f);
    if (op->needs_ds) ds_stop(&f.ds);
}

/* ---- 1. https: a GET over TLS and its chunked body, written in four
   pieces 1 ms apart (so the body has waits of its own) ---- */
#ifndef PRISTINE_NO_TLS
static int sw_https_setup(sw_fx *f) {
    ts_opts so;
    int rc;
    memset(&so, 0, sizeof so);
    so.tls_cert_pem = tls_file("goodec.crt");
    so.tls_key_pem = tls_file("goodec.key");
    if (!so.tls_cert_pem || !so.tls_key_pem) return PR_EIO;
    if ((rc = ts_start(&f->ts, &so)) != PR_OK) return rc;
    snprintf(f->url, sizeof f->url, "https://127.0.0.1:%u/chunked?sizes=3000,3000,3000,3000&delay_ms=1", (unsigned)ts_port(f->ts));
    return PR_OK;
}

static void sw_ts_teardown(sw_fx *f) {
    ts_stop(f->ts);
    f->ts = NULL;
}

static int sw_https_body(sw_fx *f) {
    pr_http_client_opts o;
    pr_http_client *c = NULL;
    pr_http_response *r = NULL;
    char buf[1024];
    size_t got = 0;
    int rc;
    memset(&o, 0, sizeof o);
    o.ignore_env = 1;
    o.tls.ca_pem = tls_file("ca.crt");
    if ((rc = pr_http_client_create(&c, &o, NULL)) != PR_OK) return rc;
    rc = pr_http_client_get(c, &r, f->url, NULL, pr_deadline_in(SW_HANG_MS));
    if (rc == PR_OK && pr_http_status(r) != 200) rc = PR_EHTTP;
    while (rc == PR_OK) {
        ptrdiff_t k = pr_http_read(r, buf, sizeof buf, pr_deadline_in(SW_HANG_MS));
        if (k == PR_ECLOSED) break;
        if (k < 0) rc = (int)k;
        else got += (size_t)k;
    }
    if (rc == PR_OK && got != 12000) rc = PR_EPROTO;
    pr_http_response_destroy(r);
    pr_http_client_destroy(c);
    return rc;
}

static const sw_op sw_https = { "https", sw_https_setup, sw_https_body, sw_ts_teardown, 0 };

PT_TEST(sweep_cancel_https) { TLS_NEED_FIXTURES(); sw_sweep(&sw_https, 0); }

PT_TEST(sweep_alloc_https) { TLS_NEED_FIXTURES(); sw_sweep(&sw_https, 1); }
#endif

/* ---- 2. SSE: open, two events, the end of the body, the reconnect after
   the server's retry: (a real sleep), two more events ---- */
static int sw_plain_setup(sw_fx *f) {
    int rc;
    if ((rc = ts_start(&f->ts, NULL)) != PR_OK) return rc;
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u", (unsigned)ts_port(f->ts));
    return PR_OK;
}

static void sw_plain_teardown(sw_fx *f) {
    ts_stop(f->ts);
    f->ts = NULL;
}

static int sw_sse_body(sw_fx *f) {
    char url[300], want[32];
    pr_sse *s = NULL;
    pr_sse_event ev;
    int rc, i;
    snprintf(url, sizeof url, "%s/sse?events=2&id=1&retry=5", f->url);
    if ((rc = pr_sse_open(&s, url, NULL, NULL, pr_deadline_in(SW_HANG_MS))) != PR_OK) return rc;
    for (i = 1; i <= 4 && rc == PR_OK; i++) {
        if ((rc = pr_sse_next(s, &ev, pr_deadline_in(SW_HANG_MS))) != PR_OK) break;
        snprintf(want, sizeof want, "event %d", i);
        if (ev.data_len != strlen(want) || memcmp(ev.data, want, ev.data_len) != 0) rc = PR_EPROTO;
    }
    if (rc == PR_OK && pr_sse_reconnects(s) != 1) rc = PR_EPROTO;
    pr_sse_destroy(s);
    return rc;
}

static const sw_op sw_sse = { "sse", sw_plain_setup, sw_sse_body, sw_plain_teardown, 0 };

PT_TEST(sweep_cancel_sse) { sw_sweep(&sw_sse, 0); }

PT_TEST(sweep_alloc_sse) { sw_sweep(&sw_sse, 1); }

/* ---- 3. a remote future: three polls of the retrieve endpoint (two
   try_again, then the result), 1 to 2 ms apart ---- */
static int sw_rfuture_body(sw_fx *f) {
    pr_rfuture_poller_opts po;
    pr_rfuture_poller *p = NULL;
    pr_future *fu = NULL;
    int rc;
    memset(&po, 0, sizeof po);
    po.base_url = f->url;
    po.poll_backoff.base_ms = 1;
    po.poll_backoff.max_ms = 2;
    if ((rc = pr_rfuture_poller_create(&p, NULL, &po, NULL)) != PR_OK) return rc;
    if ((rc = pr_rfuture_start(&fu, p, "req-1", NULL)) == PR_OK) {
        rc = pr_future_await(fu, NULL, pr_deadline_in(SW_HANG_MS));
        if (rc == PR_OK && !pr_rfuture_result(fu)) rc = PR_EPROTO;
        if (rc != PR_OK) pr_future_cancel(fu); /* stop the polling; PR_ESTATE when it has ended */
        pr_future_destroy(fu);
    }
    pr_rfuture_poller_destroy(p);
    return rc;
}

static const sw_op sw_rfuture = { "rfuture", sw_plain_setup, sw_rfuture_body, sw_plain_teardown, 0 };

PT_TEST(sweep_cancel_rfuture) { sw_sweep(&sw_rfuture, 0); }

PT_TEST(sweep_alloc_rfuture) { sw_sweep(&sw_rfuture, 1); }

/* ---- Durable Streams: the reference server, one stream per test ---- */
static int sw_ds_start(sw_fx *f) {
    pr_ds *ds = NULL;
    pr_ds_result res;
    int rc;
    if (ds_start(&f->ds) != 0) return PR_EIO;
    pr_http_client_destroy(f->ds.client); /* its pooled connection would come and go between counts */
    f->ds.client = NULL;
    memset(&res, 0, sizeof res);
    if ((rc = pr_ds_open(&ds, ds_url(&f->ds, "/v1/stream/sweep"), NULL, NULL)) != PR_OK) return rc;
    rc = pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000));
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    return rc;
}

/* ---- 4. a long-poll read: catch up at the tail (nothing), then wait with
   live=long-poll until the helper task appends ---- */
static void sw_ds_on_event(const pr_http_event *ev, void *ud) {
    sw_fx *f = (sw_fx *)ud;
    if (ev->kind == PR_HTTP_EVENT_START && strstr(ev->url, "live=long-poll")) f->lp_started = 1;
}

/* Append once the client's long-poll request is out and it waits. */
static int sw_ds_helper(void *arg) {
    sw_fx *f = (sw_fx *)arg;
    pr_ds_result res;
    int i;
    for (i = 0; i < SW_HANG_MS && !f->client_done; i++) {
        if (f->lp_started && f->client && f->client->state == PR__SCHED_T_PARKED) break;
        pr_sleep(pr_deadline_in(1));
    }
    if (f->client_done) return 0;
    memset(&res, 0, sizeof res);
    (void)pr_ds_append(f->hds, "x", 1, NULL, &res, NULL, pr_deadline_in(5000));
    pr_ds_result_deinit(&res);
    return 0;
}

static int sw_lp_setup(sw_fx *f) {
    pr_ds_result res;
    int rc;
    memset(&res, 0, sizeof res);
    if ((rc = pr_ds_open(&f->hds, ds_url(&f->ds, "/v1/stream/sweep"), NULL, NULL)) != PR_OK) return rc;
    if ((rc = pr_ds_head(f->hds, &res, NULL, pr_deadline_in(5000))) == PR_OK)
        snprintf(f->tail, sizeof f->tail, "%.*s", (int)res.offset.len, res.offset.ptr);
    pr_ds_result_deinit(&res);
    if (rc == PR_OK) rc = pr_go(&f->helper, sw_ds_helper, f, NULL);
    if (rc != PR_OK) {
        pr_ds_destroy(f->hds);
        f->hds = NULL;
    }
    return rc;
}

static void sw_lp_teardown(sw_fx *f) {
    pr_join(f->helper, NULL, PR_FOREVER);
    f->helper = NULL;
    pr_ds_destroy(f->hds);
    f->hds = NULL;
}

static int sw_lp_body(sw_fx *f) {
    pr_http_client_opts co;
    pr_http_client *c = NULL;
    pr_ds_opts o;
    pr_ds *ds = NULL;
    pr_ds_read_opts ro;
    pr_ds_read *rd = NULL;
    pr_ds_chunk ch;
    int rc, i;
    memset(&co, 0, sizeof co);
    co.ignore_env = 1;
    co.observer.on_event = sw_ds_on_event;
    co.observer.user_data = f;
    if ((rc = pr_http_client_create(&c, &co, NULL)) != PR_OK) return rc;
    memset(&o, 0, sizeof o);
    o.client = c;
    if ((rc = pr_ds_open(&ds, ds_url(&f->ds, "/v1/stream/sweep"), &o, NULL)) == PR_OK) {
        memset(&ro, 0, sizeof ro);
        ro.live = PR_DS_LIVE_LONG_POLL;
        if ((rc = pr_ds_read_open(&rd, ds, f->tail, &ro, NULL)) == PR_OK) {
            for (i = 0; i < 10; i++) {
                if ((rc = pr_ds_read_next(rd, &ch, pr_deadline_in(SW_HANG_MS))) != PR_OK) break;
                if (ch.len) {
                    if (ch.len != 1 || ch.data[0] != 'x') rc = PR_EPROTO;
                    break;
                }
            }
            if (i == 10) rc = PR_EPROTO;
            pr_ds_read_destroy(rd);
        }
        pr_ds_destroy(ds);
    }
    pr_http_client_destroy(c);
    return rc;
}

static const sw_op sw_longpoll = { "ds-long-poll", sw_lp_setup, sw_lp_body, sw_lp_teardown, 1 };

PT_TEST(sweep_cancel_ds_long_poll) { sw_sweep(&sw_longpoll, 0); }

PT_TEST(sweep_alloc_ds_long_poll) { sw_sweep(&sw_longpoll, 1); }

/* ---- 5. an idempotent producer: three appends, each a batch of its own
   (all three in flight at once), the flush, then the close with its final
   offset; a stream and a producer id of its own per run ---- */
static int sw_producer_setup(sw_fx *f) {
    pr_ds *ds = NULL;
    pr_ds_result res;
    char path[64];
    int rc;
    snprintf(path, sizeof path, "/v1/stream/p%ld", f->run);
    snprintf(f->url, sizeof f->url, "%s", ds_url(&f->ds, path));
    memset(&res, 0, sizeof res);
    if ((rc = pr_ds_open(&ds, f->url, NULL, NULL)) != PR_OK) return rc;
    rc = pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000));
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    return rc;
}

static int sw_producer_body(sw_fx *f) {
    pr_ds *ds = NULL;
    pr_ds_producer *p = NULL;
    pr_ds_producer_opts po;
    const char *final = NULL;
    char id[32];
    int rc;
    if ((rc = pr_ds_open(&ds, f->url, NULL, NULL)) != PR_OK) return rc;
    memset(&po, 0, sizeof po);
    snprintf(id, sizeof id, "sweep-%ld", f->run);
    po.producer_id = id;
    po.max_batch_items = 1;
    if ((rc = pr_ds_producer_create(&p, ds, &po, NULL)) == PR_OK) {
        rc = pr_ds_producer_append(p, "ab", 2, pr_deadline_in(SW_HANG_MS));
        if (rc == PR_OK) rc = pr_ds_producer_append(p, "cd", 2, pr_deadline_in(SW_HANG_MS));
        if (rc == PR_OK) rc = pr_ds_producer_append(p, "ef", 2, pr_deadline_in(SW_HANG_MS));
        if (rc == PR_OK) rc = pr_ds_producer_flush(p, pr_deadline_in(SW_HANG_MS));
        if (rc == PR_OK) rc = pr_ds_producer_close(p, NULL, 0, &final, pr_deadline_in(SW_HANG_MS));
        if (rc == PR_OK && (!final || !*final)) rc = PR_EPROTO; /* closed: its final offset is known */
        pr_ds_producer_destroy(p);
    }
    pr_ds_destroy(ds);
    return rc;
}

static const sw_op sw_producer = { "ds-producer", sw_producer_setup, sw_producer_body, NULL, 1 };

PT_TEST(sweep_cancel_ds_producer) { sw_sweep(&sw_producer, 0); }

PT_TEST(sweep_alloc_ds_producer) { sw_sweep(&sw_producer, 1); }

/* ---- objects with a task of their own, destroyed by a cancelled task
   (how a cancelled task unwinds): their task is reaped, not left ---- */
static int sw_on_batch(const pr_ds_chunk *c, void *ud) {
    (void)c;
    (void)ud;
    return 0;
}

static int sw_unwind_task(void *arg) {
    int which = *(int *)arg;
    pr_ds *ds = NULL;
    int rc = pr_ds_open(&ds, "http://127.0.0.1:1/v1/stream/x", NULL, NULL); /* refused: retried in the background */
    if (rc) return rc;
    if (which == 0) {
        pr_ds_producer_opts po;
        pr_ds_producer *p = NULL;
        memset(&po, 0, sizeof po);
        po.producer_id = "unwind";
        if ((rc = pr_ds_producer_create(&p, ds, &po, NULL)) == PR_OK &&
            (rc = pr_ds_producer_append(p, "x", 1, pr_deadline_in(1000))) == PR_OK) {
            (void)pr_yield(); /* the batch goes out */
            pr_cancel(pr_self());
            pr_ds_producer_destroy(p);
        }
    } else if (which == 1) {
        pr_ds_consumer_opts co;
        pr_ds_consumer *c = NULL;
        memset(&co, 0, sizeof co);
        co.on_batch = sw_on_batch;
        if ((rc = pr_ds_consumer_start(&c, ds, &co, NULL)) == PR_OK) {
            (void)pr_yield(); /* it connects */
            pr_cancel(pr_self());
            pr_ds_consumer_stop(c);
        }
    } else {
        pr_reporter_opts ro;
        pr_reporter *r = NULL;
        memset(&ro, 0, sizeof ro);
        ro.url = "http://127.0.0.1:1/api/v1/telemetry";
        ro.enabled = 1;
        if ((rc = pr_reporter_start(&r, &ro, NULL)) == PR_OK) {
            (void)pr_reporter_log(r, "unwind", "x", PR_SEVERITY_INFO);
            (void)pr_yield();
            pr_cancel(pr_self());
            if (which == 3) (void)pr_reporter_stop(r, pr_deadline_in(1000));
            pr_reporter_destroy(r);
        }
    }
    pr_ds_destroy(ds);
    return rc;
}

PT_TEST(sweep_destroy_in_cancelled_task) {
    static const char *const what[] = { "pr_ds_producer_destroy", "pr_ds_consumer_stop", "pr_reporter_destroy",
                                        "pr_reporter_stop + destroy" };
    int which;
    for (which = 0; which < 4; which++) {
        size_t tasks0 = sw_tasks();
        long live0 = pt_alloc_live(NULL);
        pr_task *t = NULL;
        int rc = -1, i;
        PT_REQUIRE(pr_go(&t, sw_unwind_task, &which, NULL) == PR_OK);
        PT_REQUIRE(pr_join(t, &rc, pr_deadline_in(SW_HANG_MS)) == PR_OK);
        PT_EQ_ERR(rc, PR_OK);
        for (i = 0; i < 100 && (sw_tasks() != tasks0 || pt_alloc_live(NULL) != live0); i++)
            pr_sleep(pr_deadline_in(2));
        if (sw_tasks() != tasks0)
            pt_fail(__FILE__, __LINE__, "%s in a cancelled task: got %ld tasks left, want 0", what[which],
                    (long)(sw_tasks() - tasks0));
        if (pt_alloc_live(NULL) != live0)
            pt_fail(__FILE__, __LINE__, "%s in a cancelled task: got %ld allocations left, want 0", what[which],
                    pt_alloc_live(NULL) - live0);
    }
}

const pt_suite pt_suite_sweep = { "sweep", {
#ifndef PRISTINE_NO_TLS
    PT_ENTRY(sweep_cancel_https),
    PT_ENTRY(sweep_alloc_https),
#endif
    PT_ENTRY(sweep_cancel_sse),
    PT_ENTRY(sweep_alloc_sse),
    PT_ENTRY(sweep_cancel_rfuture),
    PT_ENTRY(sweep_alloc_rfuture),
    PT_ENTRY(sweep_cancel_ds_long_poll),
    PT_ENTRY(sweep_alloc_ds_long_poll),
    PT_ENTRY(sweep_cancel_ds_producer),
    PT_ENTRY(sweep_alloc_ds_producer),
    PT_ENTRY(sweep_destroy_in_cancelled_task),
    {0, 0} } };
