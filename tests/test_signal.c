/* signal: pr_signal_watch turns a real SIGINT or SIGTERM, sent by the test
   process to itself, into a cancellation. A task blocked in pr_sse_next
   (tools/testserver.c, a stream that sends nothing), in a Durable Streams
   long-poll (the reference server, as in test_ds.c), in a producer flush
   and in a TLS handshake (a listener that never accepts nor answers) gets
   PR_ECANCELED; pr_signal_wait hands over the signal number; the previous
   handlers come back on the first signal and on stop; a second watch is
   refused; and a forked child with a blocked stream exits 0 on SIGINT. The
   runner keeps its own handler (SIGALRM), which no watch here touches. */

/* Whatever SIGINT and SIGTERM did before a test, put back after it (a
   failing test must not leave the runner without its defaults). */
typedef struct sig_saved {
    struct sigaction intr, term;
} sig_saved;

static void sig_save(sig_saved *sv) {
    sigaction(SIGINT, NULL, &sv->intr);
    sigaction(SIGTERM, NULL, &sv->term);
}

static void sig_put_back(const sig_saved *sv) {
    sigaction(SIGINT, &sv->intr, NULL);
    sigaction(SIGTERM, &sv->term, NULL);
}

/* The handler installed for signo now. */
static void (*sig_handler_of(int signo))(int) {
    struct sigaction sa;
    if (sigaction(signo, NULL, &sa) != 0) return SIG_ERR;
    return sa.sa_handler;
}

static void sig_marker(int signo) { (void)signo; }

/* A task waiting for the watch's signal. */
typedef struct sig_waiter {
    pr_signal_watch *w;
    int rc;
} sig_waiter;

static int sig_wait_task(void *arg) {
    sig_waiter *x = (sig_waiter *)arg;
    x->rc = pr_signal_wait(x->w, pr_deadline_in(20000));
    return 0;
}

/* pr_signal_wait returns the signal's number, then again at once; the
   first signal puts the previous handler back. */
PT_TEST(signal_wait_returns_the_signal) {
    sig_saved sv;
    sig_waiter x;
    pr_task *t;
    sig_save(&sv);
    memset(&x, 0, sizeof x);
    PT_EQ_ERR(pr_signal_watch_start(&x.w, NULL, 0, NULL, NULL), PR_OK);
    PT_REQUIRE(x.w != NULL);
    PT_CHECK(sig_handler_of(SIGINT) != sv.intr.sa_handler);
    PT_CHECK(sig_handler_of(SIGTERM) != sv.term.sa_handler);
    PT_EQ_ERR(pr_signal_wait(x.w, pr_deadline_in(10)), PR_ETIMEDOUT);
    PT_EQ_ERR(pr_signal_wait(x.w, 0), PR_ETIMEDOUT);
    PT_REQUIRE(pr_go(&t, sig_wait_task, &x, NULL) == PR_OK);
    PT_EQ_ERR(pr_sleep(pr_deadline_in(20)), PR_OK);
    PT_EQ_INT(kill(getpid(), SIGTERM), 0);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(x.rc, SIGTERM);
    PT_EQ_INT(pr_signal_wait(x.w, 0), SIGTERM);
    PT_CHECK(sig_handler_of(SIGTERM) == sv.term.sa_handler); /* SIG_DFL: a second SIGTERM ends the process */
    PT_CHECK(sig_handler_of(SIGINT) == sv.intr.sa_handler);
    pr_signal_watch_stop(x.w);
    PT_CHECK(sig_handler_of(SIGTERM) == sv.term.sa_handler);
    sig_put_back(&sv);
}

/* Signals of one's own choosing (a duplicate is ignored); a signal caught
   while no task waits is there for the next pr_signal_wait, even one that
   does not wait. */
PT_TEST(signal_chosen_signals_and_late_wait) {
    static const int sigs[] = { SIGUSR1, SIGUSR1, SIGUSR2 };
    struct sigaction old1, old2, cur;
    pr_signal_watch *w;
    sigaction(SIGUSR1, NULL, &old1);
    sigaction(SIGUSR2, NULL, &old2);
    PT_EQ_ERR(pr_signal_watch_start(&w, sigs, 3, NULL, NULL), PR_OK);
    PT_CHECK(sig_handler_of(SIGINT) != sig_handler_of(SIGUSR1)); /* not watched */
    PT_EQ_INT(kill(getpid(), SIGUSR2), 0);
    PT_EQ_INT(pr_signal_wait(w, 0), SIGUSR2);
    PT_EQ_INT(sigaction(SIGUSR1, NULL, &cur), 0);
    PT_CHECK(cur.sa_handler == old1.sa_handler); /* the duplicate did not save our handler as "previous" */
    PT_CHECK(sig_handler_of(SIGUSR2) == old2.sa_handler);
    pr_signal_watch_stop(w);
}

/* Stop puts the previous handlers back and wakes a waiter with
   PR_ECLOSED; a second watch is refused while one runs, a signal that
   cannot be caught is refused, and neither leaves anything behind. */
PT_TEST(signal_stop_restores_and_one_watch_per_process) {
    sig_saved sv;
    struct sigaction mark;
    static const int kill9[] = { SIGINT, SIGKILL };
    pr_signal_watch *w2 = NULL;
    pr_err_info e;
    sig_waiter x;
    pr_task *t;
    sig_save(&sv);
    memset(&mark, 0, sizeof mark);
    mark.sa_handler = sig_marker;
    sigemptyset(&mark.sa_mask);
    PT_EQ_INT(sigaction(SIGINT, &mark, NULL), 0);
    memset(&x, 0, sizeof x);
    PT_EQ_ERR(pr_signal_watch_start(&x.w, NULL, 0, NULL, NULL), PR_OK);
    PT_CHECK(sig_handler_of(SIGINT) != sig_marker);
    PT_EQ_ERR(pr_signal_watch_start(&w2, NULL, 0, NULL, &e), PR_ESTATE);
    PT_EQ_ERR(e.code, PR_ESTATE);
    PT_CHECK(w2 == NULL);
    PT_REQUIRE(pr_go(&t, sig_wait_task, &x, NULL) == PR_OK);
    PT_EQ_ERR(pr_sleep(pr_deadline_in(20)), PR_OK);
    pr_signal_watch_stop(x.w);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(x.rc, PR_ECLOSED);
    PT_CHECK(sig_handler_of(SIGINT) == sig_marker);
    PT_CHECK(sig_handler_of(SIGTERM) == sv.term.sa_handler);
    /* SIGKILL cannot be caught: refused, and SIGINT is left as it was */
    PT_EQ_ERR(pr_signal_watch_start(&w2, kill9, 2, NULL, &e), PR_EINVAL);
    PT_EQ_INT(e.sys_errno, EINVAL);
    PT_CHECK(w2 == NULL);
    PT_CHECK(sig_handler_of(SIGINT) == sig_marker);
    /* the process is free for a new watch */
    PT_EQ_ERR(pr_signal_watch_start(&w2, NULL, 0, NULL, NULL), PR_OK);
    pr_signal_watch_stop(w2);
    PT_CHECK(sig_handler_of(SIGINT) == sig_marker);
    pr_signal_watch_stop(NULL);
    PT_EQ_ERR(pr_signal_watch_start(NULL, NULL, 0, NULL, NULL), PR_EINVAL);
    PT_EQ_ERR(pr_signal_wait(NULL, 0), PR_EINVAL);
    sig_put_back(&sv);
}

static int sig_quick_task(void *arg) {
    (void)arg;
    return 0;
}

static int sig_nap_task(void *arg) {
    *(int *)arg = pr_sleep(pr_deadline_in(300));
    return 0;
}

/* The task to cancel is joined (freed) before the signal: the watch
   forgets it, so the signal cancels neither freed memory nor the next
   task, which lives at the same address (a pooled stack) here. */
PT_TEST(signal_forgets_a_joined_task) {
    sig_saved sv;
    pr_signal_watch *w;
    pr_task *t1, *t2;
    int nap = 1;
    sig_save(&sv);
    PT_REQUIRE(pr_go(&t1, sig_quick_task, NULL, NULL) == PR_OK);
    PT_EQ_ERR(pr_signal_watch_start(&w, NULL, 0, t1, NULL), PR_OK);
    PT_EQ_ERR(pr_join(t1, NULL, pr_deadline_in(5000)), PR_OK);
    PT_REQUIRE(pr_go(&t2, sig_nap_task, &nap, NULL) == PR_OK);
    PT_EQ_ERR(pr_sleep(pr_deadline_in(20)), PR_OK);
    PT_EQ_INT(kill(getpid(), SIGINT), 0);
    PT_EQ_INT(pr_signal_wait(w, pr_deadline_in(5000)), SIGINT);
    PT_EQ_ERR(pr_join(t2, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(nap, PR_OK); /* slept to its end: not cancelled */
    pr_signal_watch_stop(w);
    sig_put_back(&sv);
}

/* ---- a task blocked somewhere gets PR_ECANCELED from a real SIGINT ---- */

typedef struct sig_job {
    pr_sse *sse;
    pr_ds_read *rd;
    pr_ds_producer *prod;
    pr_http_client *client;
    const char *url;
    int rc, calls;
} sig_job;

/* Start a watch that cancels fn's task, let the task block, send SIGINT to
   the process, and wait (a loose hang guard) for the task to unwind. The
   caller checks job->rc. */
static void sig_cancel_case(pr_task_fn fn, sig_job *job, int settle_ms) {
    sig_saved sv;
    pr_signal_watch *w;
    pr_task *t;
    int rc;
    sig_save(&sv);
    PT_REQUIRE(pr_go(&t, fn, job, NULL) == PR_OK);
    if (pr_signal_watch_start(&w, NULL, 0, t, NULL) != PR_OK) {
        pt_fail(__FILE__, __LINE__, "got no watch, want one");
        pr_cancel(t);
        pr_join(t, NULL, PR_FOREVER);
        return;
    }
    PT_EQ_ERR(pr_sleep(pr_deadline_in(settle_ms)), PR_OK); /* the task is blocked by now */
    PT_EQ_INT(job->rc, 1);                                   /* ... and still there */
    PT_EQ_INT(kill(getpid(), SIGINT), 0);
    rc = pr_join(t, NULL, pr_deadline_in(5000));
    PT_EQ_ERR(rc, PR_OK);
    if (rc != PR_OK) { /* still blocked: end it, so the test fails cleanly */
        pr_cancel(t);
        pr_join(t, NULL, PR_FOREVER);
    }
    PT_EQ_INT(pr_signal_wait(w, 0), SIGINT);
    PT_CHECK(sig_handler_of(SIGINT) == sv.intr.sa_handler);
    pr_signal_watch_stop(w);
    sig_put_back(&sv);
}

static int sig_sse_task(void *arg) {
    sig_job *j = (sig_job *)arg;
    pr_sse_event ev;
    j->rc = 1;
    j->rc = pr_sse_next(j->sse, &ev, pr_deadline_in(20000));
    return 0;
}

PT_TEST(signal_cancels_sse_next) {
    ts_server *s;
    sig_job j;
    char url[128];
    memset(&j, 0, sizeof j);
    PT_REQUIRE(ts_start(&s, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/sse?events=0&hold_ms=30000", (unsigned)ts_port(s));
    PT_EQ_ERR(pr_sse_open(&j.sse, url, NULL, NULL, pr_deadline_in(5000)), PR_OK);
    if (j.sse) sig_cancel_case(sig_sse_task, &j, 50);
    PT_EQ_ERR(j.rc, PR_ECANCELED);
    pr_sse_destroy(j.sse);
    ts_stop(s);
}

static int sig_long_poll_task(void *arg) {
    sig_job *j = (sig_job *)arg;
    pr_ds_chunk ch;
    int rc = PR_OK;
    j->rc = 1;
    for (j->calls = 0; j->calls < 100 && rc == PR_OK; j->calls++) rc = pr_ds_read_next(j->rd, &ch, pr_deadline_in(20000));
    j->rc = rc;
    return 0;
}

/* The server's long-polls last 500 ms: the signal comes during the
   second or a later one. */
PT_TEST(signal_cancels_ds_long_poll) {
    ds_fx f;
    pr_ds *ds;
    pr_ds_result res;
    pr_ds_read_opts ro;
    sig_job j;
    memset(&res, 0, sizeof res);
    memset(&j, 0, sizeof j);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((ds = ds_handle(&f, "/v1/t/sig", "text/plain")) != NULL);
    PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    memset(&ro, 0, sizeof ro);
    ro.live = PR_DS_LIVE_LONG_POLL;
    PT_EQ_ERR(pr_ds_read_open(&j.rd, ds, "-1", &ro, NULL), PR_OK);
    if (j.rd) sig_cancel_case(sig_long_poll_task, &j, 700);
    PT_EQ_ERR(j.rc, PR_ECANCELED);
    PT_CHECK(j.calls >= 1 && j.calls < 100);
    pr_ds_read_destroy(j.rd);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    ds_stop(&f);
}

static int sig_flush_task(void *arg) {
    sig_job *j = (sig_job *)arg;
    j->rc = 1;
    j->rc = pr_ds_producer_flush(j->prod, pr_deadline_in(20000));
    return 0;
}

/* The producer's server takes the connection (the kernel's backlog) and
   never answers. */
PT_TEST(signal_cancels_producer_flush) {
    pr_listener *l;
    pr_ds *ds = NULL;
    pr_ds_producer_opts po;
    sig_job j;
    char url[128];
    memset(&j, 0, sizeof j);
    PT_EQ_ERR(pr_tcp_listen(&l, NULL, 0, 4, NULL), PR_OK);
    PT_REQUIRE(l != NULL);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/t/sig", (unsigned)pr_listener_port(l));
    PT_EQ_ERR(pr_ds_open(&ds, url, NULL, NULL), PR_OK);
    memset(&po, 0, sizeof po);
    po.producer_id = "sig";
    PT_EQ_ERR(pr_ds_producer_create(&j.prod, ds, &po, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_producer_append(j.prod, "hello", 5, pr_deadline_in(5000)), PR_OK);
    if (j.prod) sig_cancel_case(sig_flush_task, &j, 100);
    PT_EQ_ERR(j.rc, PR_ECANCELED);
    pr_ds_producer_destroy(j.prod);
    pr_ds_destroy(ds);
    pr_listener_destroy(l);
}

#ifndef PRISTINE_NO_TLS
static int sig_get_task(void *arg) {
    sig_job *j = (sig_job *)arg;
    pr_http_response *r = NULL;
    j->rc = 1;
    j->rc = pr_http_client_get(j->client, &r, j->url, NULL, pr_deadline_in(20000));
    pr_http_response_destroy(r);
    return 0;
}
#endif

/* An https request to a listener that never accepts: TCP connects (the
   kernel's backlog), the ClientHello goes out, no answer comes. */
PT_TEST(signal_cancels_tls_handshake) {
#ifdef PRISTINE_NO_TLS
    PT_SKIP("no TLS in this build");
#else
    pr_listener *l;
    pr_http_client_opts co;
    sig_job j;
    char url[128];
    memset(&j, 0, sizeof j);
    PT_EQ_ERR(pr_tcp_listen(&l, NULL, 0, 4, NULL), PR_OK);
    PT_REQUIRE(l != NULL);
    snprintf(url, sizeof url, "https://127.0.0.1:%u/", (unsigned)pr_listener_port(l));
    memset(&co, 0, sizeof co);
    co.tls.insecure_skip_verify_DANGEROUS = 1; /* it never gets as far as a certificate */
    PT_EQ_ERR(pr_http_client_create(&j.client, &co, NULL), PR_OK);
    j.url = url;
    if (j.client) sig_cancel_case(sig_get_task, &j, 100);
    PT_EQ_ERR(j.rc, PR_ECANCELED);
    pr_http_client_destroy(j.client);
    pr_listener_destroy(l);
#endif
}

/* ---- a whole program: Ctrl-C, a clean exit 0 ----
   The child runs the program on a thread of its own (a fresh scheduler and
   poller, nothing shared with the parent's): a stream from an embedded
   server blocked in pr_sse_next, a watch that cancels its task, SIGINT to
   itself (Linux hands it to the main thread, blocked in pthread_join: the
   program's scheduler hears of it through its wake fd), then the cleanup.
   Its exit status says what went wrong. */
static int sig_program(void) {
    ts_server *s = NULL;
    sig_job j;
    pr_signal_watch *w = NULL;
    pr_task *t;
    char url[128];
    int code = 0;
    memset(&j, 0, sizeof j);
    if (ts_start(&s, NULL) != PR_OK) return 10;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/sse?events=0&hold_ms=30000", (unsigned)ts_port(s));
    if (pr_sse_open(&j.sse, url, NULL, NULL, pr_deadline_in(5000)) != PR_OK) code = 11;
    else if (pr_go(&t, sig_sse_task, &j, NULL) != PR_OK) code = 12;
    else {
        if (pr_signal_watch_start(&w, NULL, 0, t, NULL) != PR_OK) code = 13;
        pr_sleep(pr_deadline_in(50));
        if (!code) kill(getpid(), SIGINT);
        else pr_cancel(t);
        if (pr_join(t, NULL, pr_deadline_in(10000)) != PR_OK) return 14; /* a hang: the child's alarm ends it */
        pr_signal_watch_stop(w);
        if (!code && j.rc != PR_ECANCELED) code = 15;
    }
    pr_sse_destroy(j.sse);
    ts_stop(s);
    return code;
}

static void *sig_program_thread(void *arg) {
    int *code = (int *)arg;
    long live0 = pt_alloc_live(NULL), live;
    size_t stacks0 = pr__coro_test_live_stacks();
    pr_signal_watch *w = NULL;
    *code = sig_program();
    /* a watch still running when the scheduler goes: it lets go of the
       handlers and the wake fd, and stays the caller's to stop */
    if (!*code && pr_signal_watch_start(&w, NULL, 0, NULL, NULL) != PR_OK) *code = 23;
    if (pr_sched_destroy() != PR_OK && !*code) *code = 20;
    if (!*code && sig_handler_of(SIGINT) != SIG_DFL) *code = 24;
    if (!*code && pr_signal_wait(w, 0) != PR_ECLOSED) *code = 25;
    pr_signal_watch_stop(w);
    if (pr_sched_destroy() != PR_OK && !*code) *code = 26; /* pr_signal_wait made a scheduler */
    live = pt_alloc_live(NULL);
    if (!*code && live != live0) *code = 21;                          /* leaked allocations */
    if (!*code && pr__coro_test_live_stacks() != stacks0) *code = 22; /* leaked stacks */
    return NULL;
}

PT_TEST(signal_program_exits_zero_on_ctrl_c) {
    pid_t pid;
    int status = 0, i;
    pid_t got = 0;
    fflush(NULL);
    pid = fork();
    PT_REQUIRE(pid >= 0);
    if (pid == 0) {
        pthread_t th;
        int code = 30;
        signal(SIGALRM, SIG_DFL);
        signal(SIGINT, SIG_DFL); /* what a program starts with (a background job's is SIG_IGN) */
        alarm(30); /* never outlives the run */
        if (pthread_create(&th, NULL, sig_program_thread, &code) != 0) _exit(31);
        pthread_join(th, NULL);
        _exit(code);
    }
    for (i = 0; i < 2000 && got == 0; i++) { /* up to about 40 s */
        got = waitpid(pid, &status, WNOHANG);
        if (got == 0) pr_sleep(pr_deadline_in(20));
    }
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        pt_fail(__FILE__, __LINE__, "got a child still running after 40 s, want it to exit 0");
        return;
    }
    PT_EQ_INT(got, pid);
    PT_CHECK(WIFEXITED(status));
    if (WIFSIGNALED(status)) pt_fail(__FILE__, __LINE__, "got the child killed by signal %d, want exit 0", WTERMSIG(status));
    PT_EQ_INT(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0);
}

const pt_suite pt_suite_signal = { "signal", {
    PT_ENTRY(signal_wait_returns_the_signal),
    PT_ENTRY(signal_chosen_signals_and_late_wait),
    PT_ENTRY(signal_stop_restores_and_one_watch_per_process),
    PT_ENTRY(signal_forgets_a_joined_task),
    PT_ENTRY(signal_cancels_sse_next),
    PT_ENTRY(signal_cancels_ds_long_poll),
    PT_ENTRY(signal_cancels_producer_flush),
    PT_ENTRY(signal_cancels_tls_handshake),
    PT_ENTRY(signal_program_exits_zero_on_ctrl_c),
    {0, 0} } };
