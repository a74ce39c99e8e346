/* hostloop: the scheduler run from a host's event loop (pr_sched_fd,
   pr_sched_step). Each host runs on a thread of its own, whose main stack
   is the host loop: a plain poll(2) loop, or libuv (uv_poll_t on the fd, a
   uv_timer_t for the deadline) when <uv.h> is there (tests/run.sh passes
   PT_HAVE_LIBUV and -luv). The client task lives on that thread and the
   test server (tools/testserver.c) on another, so every byte the client
   gets and every timer goes through the host's wake-ups. A host sleeps
   exactly as long as step said (no timer of its own but the hang guard),
   so a wake-up the scheduler failed to announce shows up as a stream that
   never ends. With the poll(2) back end pr_sched_fd is PR_ENOTSUP and the
   hosts fall back to stepping on a short timer of their own, as its doc
   block tells users to. */

#ifdef PT_HAVE_LIBUV
#include <uv.h>
#endif

#define HL_TICK_MS 10       /* the fallback timer of a host without an fd (poll(2) back end) */
#define HL_GUARD_MS 15000   /* hang guard: a host loop gives up after this */

/* One host's run: what it was asked, and what it saw. */
typedef struct hl_run {
    const char *path;       /* the stream's path and query on the test server */
    int want;               /* events to read */
    int cancel_after;       /* > 0: the host cancels the reader once it has this many */
    uint16_t port;
    int fd_rc;              /* pr_sched_fd */
    int ts_rc;              /* ts_start */
    int kicked;             /* the fd was quiet after a step, and readable right after pr_go */
    int cancel_kicked;      /* the fd was readable right after the host's pr_cancel */
    int step_rc;            /* the first failing pr_sched_step, else PR_OK */
    int open_rc, next_rc;   /* the reader's */
    int events, last_id;
    long reconnects;
    int done;               /* the reader is about to return */
    int canceled;           /* the host called pr_cancel */
    int join_rc, result;
    long readable, timed;   /* host wake-ups: fd readable, deadline passed */
    int destroy_rc;
} hl_run;

/* The client task: open the stream, read `want` events (or until an error). */
static int hl_reader(void *arg) {
    hl_run *r = (hl_run *)arg;
    pr_sse *s = NULL;
    pr_sse_event ev;
    char url[160];
    int rc = PR_OK;
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)r->port, r->path);
    r->open_rc = pr_sse_open(&s, url, NULL, NULL, pr_deadline_in(10000));
    if (r->open_rc == PR_OK) {
        while (r->events < r->want && (rc = pr_sse_next(s, &ev, pr_deadline_in(10000))) == PR_OK) {
            r->events++;
            r->last_id = atoi(ev.last_id);
        }
        r->next_rc = rc;
        r->reconnects = pr_sse_reconnects(s);
        pr_sse_destroy(s);
    }
    r->done = 1;
    return r->open_rc ? r->open_rc : rc;
}

/* Whether fd is readable right now. */
static int hl_readable(int fd) {
    struct pollfd p;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* The test server, on a thread of its own until told to stop. */
typedef struct hl_srv {
    pthread_t th;
    int rc;
    uint16_t port;          /* atomic: set once it listens */
    int stop;               /* atomic */
} hl_srv;

static void *hl_srv_thread(void *arg) {
    hl_srv *v = (hl_srv *)arg;
    ts_server *s = NULL;
    int i;
    v->rc = ts_start(&s, NULL);
    __atomic_store_n(&v->port, v->rc == PR_OK ? ts_port(s) : (uint16_t)1, __ATOMIC_SEQ_CST);
    for (i = 0; v->rc == PR_OK && i < 6000 && !__atomic_load_n(&v->stop, __ATOMIC_SEQ_CST); i++)
        pr_sleep(pr_deadline_in(5));
    if (s) ts_stop(s);
    pr_sched_destroy();
    return NULL;
}

/* Start the server thread; r->port is its port (0: it did not start). */
static int hl_srv_start(hl_srv *v, hl_run *r) {
    int i;
    memset(v, 0, sizeof *v);
    if (pthread_create(&v->th, NULL, hl_srv_thread, v) != 0) return -1;
    for (i = 0; i < 10000 && !__atomic_load_n(&v->port, __ATOMIC_SEQ_CST); i++) usleep(1000);
    r->ts_rc = v->rc;
    r->port = v->rc == PR_OK ? __atomic_load_n(&v->port, __ATOMIC_SEQ_CST) : 0;
    return 0;
}

static void hl_srv_stop(hl_srv *v) {
    __atomic_store_n(&v->stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(v->th, NULL);
}

/* Set up a host thread: the fd and the reader (not yet run: pr_go only
   queues it, which must already turn the fd readable). */
static int hl_host_begin(hl_run *r, pr_task **t) {
    int quiet;
    r->fd_rc = pr_sched_fd(NULL);
    r->step_rc = pr_sched_step(NULL); /* settle: the fd's first readiness (the wake fd's) */
    quiet = r->fd_rc >= 0 && !hl_readable(r->fd_rc);
    if (!r->port || pr_go(t, hl_reader, r, NULL) != PR_OK) return -1;
    r->kicked = quiet && hl_readable(r->fd_rc);
    return 0;
}

/* One wake-up of the host: step, then act from the host side. */
static int64_t hl_host_step(hl_run *r, pr_task *t) {
    int64_t next = PR_FOREVER;
    int rc = pr_sched_step(&next);
    if (rc != PR_OK && r->step_rc == PR_OK) r->step_rc = rc;
    if (r->cancel_after > 0 && !r->canceled && r->events >= r->cancel_after) {
        r->canceled = 1;
        pr_cancel(t); /* from host code: the fd must turn readable for the next step */
        r->cancel_kicked = r->fd_rc >= 0 && hl_readable(r->fd_rc);
    }
    return next;
}

/* The reader is done (step ran it to its return): reap it. */
static void hl_host_end(hl_run *r, pr_task *t) {
    if (t) r->join_rc = pr_join(t, &r->result, 0); /* already returned: no wait */
    r->destroy_rc = pr_sched_destroy();
}

/* The host: a plain poll(2) loop on the fd, timed by step's deadline. */
static void *hl_poll_thread(void *arg) {
    hl_run *r = (hl_run *)arg;
    pr_task *t = NULL;
    int64_t guard = pr_deadline_in(HL_GUARD_MS), next;
    if (hl_host_begin(r, &t) != 0) {
        hl_host_end(r, t);
        return NULL;
    }
    next = hl_host_step(r, t);
    while (!r->done && pr_now() < guard) {
        struct pollfd p;
        int64_t now = pr_now(), until = next < guard ? next : guard;
        int timeout = until <= now ? 0 : (int)(until - now), n;
        if (r->fd_rc < 0 && timeout > HL_TICK_MS) timeout = HL_TICK_MS; /* no fd: step on a tick */
        p.fd = r->fd_rc;
        p.events = POLLIN;
        p.revents = 0;
        n = poll(r->fd_rc >= 0 ? &p : NULL, r->fd_rc >= 0 ? 1 : 0, timeout);
        if (n > 0) r->readable++;
        else if (pr_now() >= next) r->timed++;
        else if (r->fd_rc >= 0) continue; /* woke for nothing (the guard): look again */
        next = hl_host_step(r, t);
    }
    hl_host_end(r, t);
    return NULL;
}

/* Run a host thread against a server thread. */
static void hl_run_thread(hl_run *r, void *(*host)(void *)) {
    hl_srv v;
    pthread_t th;
    PT_REQUIRE(hl_srv_start(&v, r) == 0);
    if (pthread_create(&th, NULL, host, r) == 0) pthread_join(th, NULL);
    else PT_CHECK(0);
    hl_srv_stop(&v);
}

/* What every host run must show, whichever host ran it. */
static void hl_check_common(const hl_run *r) {
#ifdef PR__SCHED_POLLER_POLL
    PT_EQ_ERR(r->fd_rc, PR_ENOTSUP);
#else
    PT_CHECK(r->fd_rc >= 0);
    PT_EQ_INT(r->kicked, 1);
    PT_CHECK(r->readable > 0);
#endif
    PT_EQ_ERR(r->ts_rc, PR_OK);
    PT_EQ_ERR(r->step_rc, PR_OK);
    PT_EQ_ERR(r->open_rc, PR_OK);
    PT_EQ_INT(r->done, 1);
    PT_EQ_ERR(r->join_rc, PR_OK);
    PT_EQ_ERR(r->destroy_rc, PR_OK);
}

/* Five events, the end of the body, a reconnect after the server's 20 ms
   (a timer: only step's deadline wakes the host for it) and event 6. */
static void hl_check_stream(const hl_run *r) {
    hl_check_common(r);
    PT_EQ_ERR(r->next_rc, PR_OK);
    PT_EQ_INT(r->events, 6);
    PT_EQ_INT(r->last_id, 6);
    PT_EQ_INT(r->reconnects, 1);
    PT_EQ_ERR(r->result, PR_OK);
#ifndef PR__SCHED_POLLER_POLL
    PT_CHECK(r->timed > 0);
#endif
}

/* One event, then a stream that says nothing more: the host cancels the
   reader, whose pr_sse_next returns PR_ECANCELED; it closes the stream
   and returns (the runner checks nothing leaked). */
static void hl_check_cancel(const hl_run *r) {
    hl_check_common(r);
    PT_EQ_INT(r->canceled, 1);
#ifndef PR__SCHED_POLLER_POLL
    PT_EQ_INT(r->cancel_kicked, 1);
#endif
    PT_EQ_INT(r->events, 1);
    PT_EQ_ERR(r->next_rc, PR_ECANCELED);
    PT_EQ_ERR(r->result, PR_ECANCELED);
}

PT_TEST(hostloop_poll_stream_read_to_end) {
    hl_run r;
    memset(&r, 0, sizeof r);
    r.path = "/sse?events=5&id=1&retry=20&delay_head_ms=50"; /* the head comes after the host sleeps on the fd */
    r.want = 6;
    hl_run_thread(&r, hl_poll_thread);
    hl_check_stream(&r);
}

PT_TEST(hostloop_poll_cancel_from_host) {
    hl_run r;
    memset(&r, 0, sizeof r);
    r.path = "/sse?events=1&id=1&hold_ms=20000";
    r.want = 2;
    r.cancel_after = 1;
    hl_run_thread(&r, hl_poll_thread);
    hl_check_cancel(&r);
}

/* A task that only sleeps: the host wakes at the deadline step reported
   (the task's own wake-up time, exactly), and at the end step says there
   is no deadline left. */
typedef struct hl_timer {
    int64_t want_next[3], got_next[3];
    int ticks, step_rc, after_rc, destroy_rc;
    int64_t after;
} hl_timer;

static int hl_sleeper(void *arg) {
    hl_timer *x = (hl_timer *)arg;
    while (x->ticks < 3) {
        x->want_next[x->ticks] = pr_deadline_in(30);
        if (pr_sleep(x->want_next[x->ticks]) != PR_OK) break;
        x->ticks++;
    }
    return 0;
}

static void *hl_timer_thread(void *arg) {
    hl_timer *x = (hl_timer *)arg;
    int64_t guard = pr_deadline_in(HL_GUARD_MS), next = PR_FOREVER;
    int i = 0, rc;
    if (pr_go(NULL, hl_sleeper, x, NULL) != PR_OK) return NULL;
    while (x->ticks < 3 && pr_now() < guard) {
        int64_t now;
        if ((rc = pr_sched_step(&next)) != PR_OK && x->step_rc == PR_OK) x->step_rc = rc;
        if (x->ticks >= 3) break;
        if (i < 3) x->got_next[i++] = next;
        now = pr_now();
        if (next > now) poll(NULL, 0, (int)((next < guard ? next : guard) - now));
    }
    x->after_rc = pr_sched_step(&x->after);
    x->destroy_rc = pr_sched_destroy();
    return NULL;
}

PT_TEST(hostloop_timer_wakes_host_at_deadline) {
    hl_timer x;
    pthread_t th;
    int i;
    memset(&x, 0, sizeof x);
    x.after = 0;
    PT_REQUIRE(pthread_create(&th, NULL, hl_timer_thread, &x) == 0);
    pthread_join(th, NULL);
    PT_EQ_INT(x.ticks, 3);
    PT_EQ_ERR(x.step_rc, PR_OK);
    for (i = 0; i < 3; i++) {
        PT_CHECK(x.want_next[i] != 0);
        PT_CHECK(x.got_next[i] == x.want_next[i]);
    }
    PT_EQ_ERR(x.after_rc, PR_OK);
    PT_CHECK(x.after == PR_FOREVER);
    PT_EQ_ERR(x.destroy_rc, PR_OK);
}

/* Only the thread's own stack steps its scheduler: a task (this test body
   is one) and a posted function run inside a step are refused. Work posted
   with pr_sched_post turns the fd readable. */
typedef struct hl_nest {
    int fd_rc, readable_before, readable_after_post, posted_ran, posted_step_rc, step_rc, task_step_rc;
    int64_t posted_next;
    int destroy_rc;
} hl_nest;

static void hl_posted(void *arg) {
    hl_nest *x = (hl_nest *)arg;
    x->posted_ran = 1;
    x->posted_step_rc = pr_sched_step(&x->posted_next);
}

static int hl_task_steps(void *arg) {
    hl_nest *x = (hl_nest *)arg;
    x->task_step_rc = pr_sched_step(NULL);
    return 0;
}

static void *hl_nest_thread(void *arg) {
    hl_nest *x = (hl_nest *)arg;
    pr_task *t;
    x->fd_rc = pr_sched_fd(NULL);
    x->step_rc = pr_sched_step(NULL); /* settle: nothing to do */
    if (x->fd_rc >= 0) x->readable_before = hl_readable(x->fd_rc);
    if (pr_sched_post(pr_sched_current(), hl_posted, x) == PR_OK && x->fd_rc >= 0)
        x->readable_after_post = hl_readable(x->fd_rc);
    if (pr_go(&t, hl_task_steps, x, NULL) == PR_OK) {
        pr_sched_step(NULL); /* runs the posted function and the task */
        pr_join(t, NULL, 0);
    }
    x->destroy_rc = pr_sched_destroy();
    return NULL;
}

PT_TEST(hostloop_step_refused_inside_task_and_post) {
    hl_nest x;
    pthread_t th;
    int64_t next = 0;
    PT_EQ_ERR(pr_sched_step(&next), PR_ESTATE); /* the test body is a task */
    PT_CHECK(next == PR_FOREVER);
    memset(&x, 0, sizeof x);
    x.posted_step_rc = x.task_step_rc = 1;
    PT_REQUIRE(pthread_create(&th, NULL, hl_nest_thread, &x) == 0);
    pthread_join(th, NULL);
    PT_EQ_ERR(x.step_rc, PR_OK);
    PT_EQ_INT(x.posted_ran, 1);
    PT_EQ_ERR(x.posted_step_rc, PR_ESTATE);
    PT_EQ_ERR(x.task_step_rc, PR_ESTATE);
    PT_EQ_ERR(x.destroy_rc, PR_OK);
#ifdef PR__SCHED_POLLER_POLL
    PT_EQ_ERR(x.fd_rc, PR_ENOTSUP);
#else
    PT_CHECK(x.fd_rc >= 0);
    PT_EQ_INT(x.readable_before, 0);
    PT_EQ_INT(x.readable_after_post, 1);
#endif
}

#ifdef PT_HAVE_LIBUV
/* The host: libuv. uv_poll_t watches the fd, a one-shot uv_timer_t is set
   to step's deadline after every step, another ends a hung run. */
typedef struct hl_uv {
    hl_run *r;
    pr_task *t;
    uv_loop_t loop;
    uv_poll_t poll;
    uv_timer_t timer, tick, guard;
} hl_uv;

static void hl_uv_on_timer(uv_timer_t *h);

static void hl_uv_step(hl_uv *u) {
    int64_t next = hl_host_step(u->r, u->t), now;
    if (u->r->done) {
        uv_stop(&u->loop);
        return;
    }
    uv_timer_stop(&u->timer);
    if (next == PR_FOREVER) return;
    uv_update_time(&u->loop);
    now = pr_now();
    uv_timer_start(&u->timer, hl_uv_on_timer, next > now ? (uint64_t)(next - now) : 0, 0);
}

static void hl_uv_on_poll(uv_poll_t *h, int status, int events) {
    hl_uv *u = (hl_uv *)h->data;
    (void)status;
    (void)events;
    u->r->readable++;
    hl_uv_step(u);
}

static void hl_uv_on_timer(uv_timer_t *h) {
    hl_uv *u = (hl_uv *)h->data;
    u->r->timed++;
    hl_uv_step(u);
}

static void hl_uv_on_tick(uv_timer_t *h) { hl_uv_step((hl_uv *)h->data); }

static void hl_uv_on_guard(uv_timer_t *h) { uv_stop(h->loop); }

static void *hl_uv_thread(void *arg) {
    hl_uv u;
    memset(&u, 0, sizeof u);
    u.r = (hl_run *)arg;
    if (hl_host_begin(u.r, &u.t) != 0 || uv_loop_init(&u.loop) != 0) {
        hl_host_end(u.r, u.t);
        return NULL;
    }
    u.poll.data = u.timer.data = u.tick.data = u.guard.data = &u;
    uv_timer_init(&u.loop, &u.timer);
    uv_timer_init(&u.loop, &u.tick);
    uv_timer_init(&u.loop, &u.guard);
    uv_timer_start(&u.guard, hl_uv_on_guard, HL_GUARD_MS, 0);
    if (u.r->fd_rc >= 0) { /* watch the scheduler's fd */
        uv_poll_init(&u.loop, &u.poll, u.r->fd_rc);
        uv_poll_start(&u.poll, UV_READABLE, hl_uv_on_poll);
    } else { /* the poll(2) back end: step on a tick */
        uv_timer_start(&u.tick, hl_uv_on_tick, HL_TICK_MS, HL_TICK_MS);
    }
    hl_uv_step(&u); /* the first step; after it, the loop's callbacks do */
    if (!u.r->done) uv_run(&u.loop, UV_RUN_DEFAULT);
    /* stop watching the fd before pr_sched_destroy closes it */
    if (u.r->fd_rc >= 0) uv_close((uv_handle_t *)&u.poll, NULL);
    uv_close((uv_handle_t *)&u.timer, NULL);
    uv_close((uv_handle_t *)&u.tick, NULL);
    uv_close((uv_handle_t *)&u.guard, NULL);
    uv_run(&u.loop, UV_RUN_DEFAULT);
    uv_loop_close(&u.loop);
    hl_host_end(u.r, u.t);
    return NULL;
}

PT_TEST(hostloop_uv_stream_read_to_end) {
    hl_run r;
    memset(&r, 0, sizeof r);
    r.path = "/sse?events=5&id=1&retry=20&delay_head_ms=50"; /* the head comes after the host sleeps on the fd */
    r.want = 6;
    hl_run_thread(&r, hl_uv_thread);
    hl_check_stream(&r);
}

PT_TEST(hostloop_uv_cancel_from_host) {
    hl_run r;
    memset(&r, 0, sizeof r);
    r.path = "/sse?events=1&id=1&hold_ms=20000";
    r.want = 2;
    r.cancel_after = 1;
    hl_run_thread(&r, hl_uv_thread);
    hl_check_cancel(&r);
}
#else
PT_TEST(hostloop_uv_stream_read_to_end) { PT_SKIP("built without libuv (<uv.h> not found)"); }
PT_TEST(hostloop_uv_cancel_from_host) { PT_SKIP("built without libuv (<uv.h> not found)"); }
#endif

const pt_suite pt_suite_hostloop = { "hostloop", {
    PT_ENTRY(hostloop_poll_stream_read_to_end),
    PT_ENTRY(hostloop_poll_cancel_from_host),
    PT_ENTRY(hostloop_timer_wakes_host_at_deadline),
    PT_ENTRY(hostloop_step_refused_inside_task_and_post),
    PT_ENTRY(hostloop_uv_stream_read_to_end),
    PT_ENTRY(hostloop_uv_cancel_from_host),
    {0, 0}
} };
