/* sched: tasks, cancellation, deadlines, fd waits, groups, channels, posts. */

/* Spawned tasks alive besides the test body, which itself runs as a task. */
static long long sched_other_tasks(void) {
    return (long long)pr__sched_tls->ntasks - (pr__sched_tls->cur->flags & PR__SCHED_TF_MAIN ? 0 : 1);
}

static int sched_log[64];
static int sched_nlog;

static int sched_note(void *arg) {
    sched_log[sched_nlog++] = (int)(intptr_t)arg;
    return (int)(intptr_t)arg * 10;
}

PT_TEST(sched_spawn_is_fifo_and_does_not_jump_queue) {
    pr_task *t[3];
    int i, r;
    sched_nlog = 0;
    for (i = 0; i < 3; i++) PT_REQUIRE(pr_go(&t[i], sched_note, (void *)(intptr_t)(i + 1), NULL) == PR_OK);
    PT_EQ_INT(sched_nlog, 0); /* nothing ran yet */
    PT_EQ_ERR(pr_yield(), PR_OK);
    PT_EQ_INT(sched_nlog, 3);
    for (i = 0; i < 3; i++) {
        PT_EQ_INT(sched_log[i], i + 1);
        PT_EQ_ERR(pr_join(t[i], &r, PR_FOREVER), PR_OK);
        PT_EQ_INT(r, (i + 1) * 10);
    }
}

static int sched_yielder(void *arg) {
    int i, id = (int)(intptr_t)arg;
    for (i = 0; i < 3; i++) {
        sched_log[sched_nlog++] = id;
        pr_yield();
    }
    return 0;
}

PT_TEST(sched_yield_round_robin) {
    pr_task *a, *b;
    static const int want[] = { 1, 2, 1, 2, 1, 2 };
    int i;
    sched_nlog = 0;
    pr_go(&a, sched_yielder, (void *)1, NULL);
    pr_go(&b, sched_yielder, (void *)2, NULL);
    PT_EQ_ERR(pr_join(a, NULL, PR_FOREVER), PR_OK);
    PT_EQ_ERR(pr_join(b, NULL, PR_FOREVER), PR_OK);
    PT_EQ_INT(sched_nlog, 6);
    for (i = 0; i < 6; i++) PT_EQ_INT(sched_log[i], want[i]);
}

static int sched_sleeper(void *arg) {
    int ms = (int)(intptr_t)arg;
    int rc = pr_sleep(pr_deadline_in(ms));
    sched_log[sched_nlog++] = ms;
    return rc;
}

PT_TEST(sched_sleep_wakes_in_deadline_order) {
    pr_task *t[4];
    static const int ms[] = { 30, 10, 40, 20 };
    int i, r;
    pr__time_test_clock_virtual(1, 5000);
    sched_nlog = 0;
    for (i = 0; i < 4; i++) pr_go(&t[i], sched_sleeper, (void *)(intptr_t)ms[i], NULL);
    for (i = 0; i < 4; i++) {
        PT_EQ_ERR(pr_join(t[i], &r, PR_FOREVER), PR_OK);
        PT_EQ_ERR(r, PR_OK);
    }
    PT_EQ_INT(pr_now(), 5040);
    for (i = 0; i < 4; i++) PT_EQ_INT(sched_log[i], (i + 1) * 10);
    pr__time_test_clock_virtual(0, 0);
}

PT_TEST(sched_sleep_real_clock) {
    int64_t t0 = pr_now();
    PT_EQ_ERR(pr_sleep(pr_deadline_in(20)), PR_OK);
    PT_CHECK(pr_now() - t0 >= 20);
    PT_EQ_ERR(pr_sleep(0), PR_OK);
    PT_EQ_ERR(pr_sleep(-1), PR_OK);
}

static int sched_counter;
static int sched_count_up(void *arg) {
    (void)arg;
    sched_counter++;
    return 0;
}

/* Every waiting call with a deadline in the past returns PR_ETIMEDOUT at
   once: no other task runs meanwhile. */
PT_TEST(sched_past_deadline_does_not_block) {
    pr_chan *c;
    pr_task *t;
    pr_group *g;
    pr_future *f;
    int sv[2], x = 0;
    sched_counter = 0;
    PT_REQUIRE(pr_chan_create(&c, sizeof(int), 0) == PR_OK);
    PT_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    PT_REQUIRE(pr_go(&t, sched_count_up, NULL, NULL) == PR_OK);
    PT_REQUIRE(pr_group_create(&g) == PR_OK);
    PT_REQUIRE(pr_group_go(g, sched_count_up, NULL, NULL) == PR_OK);
    PT_REQUIRE(pr_future_create(&f) == PR_OK);
    PT_EQ_ERR(pr_chan_send(c, &x, 0), PR_ETIMEDOUT);
    PT_EQ_ERR(pr_chan_recv(c, &x, -1), PR_ETIMEDOUT);
    PT_EQ_ERR(pr_chan_recv(c, &x, pr_now()), PR_ETIMEDOUT);
    PT_EQ_ERR(pr_fd_wait(sv[0], PR_WAIT_READ, 0), PR_ETIMEDOUT);
    PT_EQ_ERR(pr_join(t, NULL, 0), PR_ETIMEDOUT);
    PT_EQ_ERR(pr_group_wait(g, 0), PR_ETIMEDOUT);
    PT_EQ_ERR(pr_future_await(f, NULL, INT64_MIN), PR_ETIMEDOUT);
    PT_EQ_INT(sched_counter, 0);
    PT_EQ_ERR(pr_join(t, NULL, PR_FOREVER), PR_OK);
    PT_EQ_ERR(pr_group_close(g, PR_FOREVER), PR_OK);
    PT_EQ_INT(sched_counter, 2);
    pr_future_destroy(f);
    pr_chan_destroy(c);
    pr_fd_forget(sv[0]);
    close(sv[0]);
    close(sv[1]);
}

/* Fairness: a reader whose socket always has data (here: filled before it
   starts, so no read ever waits) still lets a ready task and a due sleeper
   run while it reads; without the I/O budget both ran only at the end. */
typedef struct sched_fair {
    int fd, reads, done, yields_during, woke_at_read;
} sched_fair;

static int sched_fair_reader(void *arg) {
    sched_fair *x = (sched_fair *)arg;
    char b[512];
    int64_t until = pr_now() + 3;
    while (pr_now() < until) { /* the sleeper's timer (1 ms) is due from here on */
    }
    for (;;) {
        ptrdiff_t k = pr_fd_read(x->fd, b, sizeof b, 0);
        if (k <= 0) break; /* drained: PR_ETIMEDOUT with the past deadline */
        x->reads++;
    }
    x->done = 1;
    return 0;
}

static int sched_fair_yielder(void *arg) {
    sched_fair *x = (sched_fair *)arg;
    while (!x->done) {
        if (x->reads > 0) x->yields_during++;
        pr_yield();
    }
    return 0;
}

static int sched_fair_sleeper(void *arg) {
    sched_fair *x = (sched_fair *)arg;
    pr_sleep(pr_deadline_in(1));
    x->woke_at_read = x->done ? -1 : x->reads;
    return 0;
}

PT_TEST(sched_fast_reader_lets_others_run) {
    sched_fair x;
    pr_task *r, *y, *z;
    int sv[2], sz = 1 << 20;
    static char fill[4096];
    size_t total = 0;
    memset(&x, 0, sizeof x);
    PT_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    PT_REQUIRE(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
    PT_REQUIRE(fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);
    while (total < 200 * 1024) {
        ssize_t k = write(sv[1], fill, sizeof fill);
        if (k <= 0) break;
        total += (size_t)k;
    }
    PT_CHECK(total >= 64 * 512); /* room for well over one budget of reads */
    x.fd = sv[0];
    PT_REQUIRE(pr_go(&z, sched_fair_sleeper, &x, NULL) == PR_OK);
    PT_REQUIRE(pr_go(&y, sched_fair_yielder, &x, NULL) == PR_OK);
    PT_REQUIRE(pr_go(&r, sched_fair_reader, &x, NULL) == PR_OK);
    PT_EQ_ERR(pr_join(r, NULL, PR_FOREVER), PR_OK);
    PT_EQ_ERR(pr_join(y, NULL, PR_FOREVER), PR_OK);
    PT_EQ_ERR(pr_join(z, NULL, PR_FOREVER), PR_OK);
    PT_CHECK(x.reads >= 64);
    PT_CHECK(x.yields_during >= x.reads / 64); /* a turn at least every budget of reads */
    PT_CHECK(x.woke_at_read > 0 && x.woke_at_read < x.reads); /* the sleeper woke mid-stream */
    pr_fd_forget(sv[0]);
    close(sv[0]);
    close(sv[1]);
}

/* ---- cancellation at every suspension point ---- */
typedef struct sched_cancel_ctx {
    int point;
    int rc, rc_again;
    int fd;
    pr_chan *chan;
    pr_task *other;
    pr_future *fut;
    pr_group *group;
} sched_cancel_ctx;

static int sched_forever(void *arg) {
    (void)arg;
    return pr_sleep(PR_FOREVER);
}

static int sched_block_at(sched_cancel_ctx *c) {
    int x = 0;
    pr_chan_op ops[2];
    switch (c->point) {
    case 0: return pr_sleep(PR_FOREVER);
    case 1: return pr_fd_wait(c->fd, PR_WAIT_READ, PR_FOREVER);
    case 2: return pr_chan_send(c->chan, &x, PR_FOREVER);
    case 3: return pr_chan_recv(c->chan, &x, PR_FOREVER);
    case 4: return pr_join(c->other, NULL, PR_FOREVER);
    case 5: return pr_future_await(c->fut, NULL, PR_FOREVER);
    case 6: return pr_group_wait(c->group, PR_FOREVER);
    case 7:
        ops[0].chan = c->chan, ops[0].kind = PR_CHAN_RECV, ops[0].elem = &x;
        ops[1].chan = c->chan, ops[1].kind = PR_CHAN_SEND, ops[1].elem = &x;
        return pr_chan_choose(ops, 2, PR_FOREVER);
    default: return pr_sleep(pr_deadline_in(60000)); /* finite deadline: a timer entry to clean */
    }
}

static int sched_cancel_victim(void *arg) {
    sched_cancel_ctx *c = (sched_cancel_ctx *)arg;
    c->rc = sched_block_at(c);
    c->rc_again = sched_block_at(c); /* sticky: fails at once */
    return pr_yield();
}

PT_TEST(sched_cancel_every_suspension_point) {
    int point, sv[2], r;
    PT_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    for (point = 0; point <= 8; point++) {
        sched_cancel_ctx c;
        pr_task *t;
        memset(&c, 0, sizeof c);
        c.point = point;
        c.fd = sv[0];
        PT_REQUIRE(pr_chan_create(&c.chan, sizeof(int), 0) == PR_OK);
        PT_REQUIRE(pr_go(&c.other, sched_forever, NULL, NULL) == PR_OK);
        PT_REQUIRE(pr_future_create(&c.fut) == PR_OK);
        PT_REQUIRE(pr_group_create(&c.group) == PR_OK);
        PT_REQUIRE(pr_group_go(c.group, sched_forever, NULL, NULL) == PR_OK);
        PT_REQUIRE(pr_go(&t, sched_cancel_victim, &c, NULL) == PR_OK);
        PT_EQ_ERR(pr_yield(), PR_OK); /* the victim parks */
        PT_EQ_ERR(pr_join(t, NULL, 0), PR_ETIMEDOUT);
        PT_EQ_ERR(pr_cancel(t), PR_OK);
        PT_EQ_ERR(pr_join(t, &r, PR_FOREVER), PR_OK);
        PT_EQ_ERR(c.rc, PR_ECANCELED);
        PT_EQ_ERR(c.rc_again, PR_ECANCELED);
        PT_EQ_ERR(r, PR_ECANCELED); /* pr_yield too */
        PT_EQ_INT(pr_future_state(c.fut), PR_FUTURE_PENDING);
        pr_cancel(c.other);
        PT_EQ_ERR(pr_join(c.other, &r, PR_FOREVER), PR_OK);
        PT_EQ_ERR(r, PR_ECANCELED);
        PT_EQ_ERR(pr_group_close(c.group, PR_FOREVER), PR_OK);
        pr_future_destroy(c.fut);
        pr_chan_destroy(c.chan);
    }
    pr_fd_forget(sv[0]);
    close(sv[0]);
    close(sv[1]);
}

static int sched_recv_until(void *arg) {
    int x;
    return pr_chan_recv((pr_chan *)arg, &x, pr_deadline_in(5));
}

/* A task whose timeout and cancellation are both due sees PR_ECANCELED. */
PT_TEST(sched_cancel_wins_over_timeout) {
    pr_chan *c;
    pr_task *t;
    int r;
    pr__time_test_clock_virtual(1, 100);
    PT_REQUIRE(pr_chan_create(&c, sizeof(int), 0) == PR_OK);
    PT_REQUIRE(pr_go(&t, sched_recv_until, c, NULL) == PR_OK);
    PT_EQ_ERR(pr_yield(), PR_OK);
    pr__time_test_clock_advance(10);
    pr__sched_poll(pr__sched_tls, 0); /* the timer fires: t is runnable with PR_ETIMEDOUT */
    pr_cancel(t);
    PT_EQ_ERR(pr_join(t, &r, PR_FOREVER), PR_OK);
    PT_EQ_ERR(r, PR_ECANCELED);
    pr_chan_destroy(c);
    pr__time_test_clock_virtual(0, 0);
}

PT_TEST(sched_join_misuse) {
    pr_task *t, *t2;
    PT_EQ_ERR(pr_join(NULL, NULL, 0), PR_EINVAL);
    PT_EQ_ERR(pr_join(pr_self(), NULL, 0), PR_EINVAL);
    PT_REQUIRE(pr_go(&t, sched_forever, NULL, NULL) == PR_OK);
    t2 = t;
    PT_EQ_ERR(pr_join(t2, NULL, pr_deadline_in(1)), PR_ETIMEDOUT); /* still joinable */
    PT_EQ_ERR(pr_cancel(NULL), PR_EINVAL);
    pr_cancel(t);
    PT_EQ_ERR(pr_join(t, NULL, PR_FOREVER), PR_OK);
    PT_EQ_ERR(pr_go(NULL, NULL, NULL, NULL), PR_EINVAL);
}

static int sched_self_cancel(void *arg) {
    (void)arg;
    PT_CHECK(!pr_is_canceled());
    pr_cancel(pr_self());
    PT_CHECK(pr_is_canceled());
    return pr_sleep(PR_FOREVER);
}

PT_TEST(sched_cancel_self_and_detached) {
    pr_task *t;
    int r;
    PT_REQUIRE(pr_go(&t, sched_self_cancel, NULL, NULL) == PR_OK);
    PT_EQ_ERR(pr_join(t, &r, PR_FOREVER), PR_OK);
    PT_EQ_ERR(r, PR_ECANCELED);
    /* detached tasks free themselves */
    sched_counter = 0;
    PT_REQUIRE(pr_go(NULL, sched_count_up, NULL, NULL) == PR_OK);
    PT_REQUIRE(pr_go(NULL, sched_count_up, NULL, NULL) == PR_OK);
    pr_yield();
    pr_yield();
    PT_EQ_INT(sched_counter, 2);
    PT_EQ_INT(sched_other_tasks(), 0);
}

/* ---- fd readiness ---- */
typedef struct sched_io {
    int fd;
    int rc;
    char got[8];
} sched_io;

static int sched_reader(void *arg) {
    sched_io *io = (sched_io *)arg;
    for (;;) {
        ssize_t n = read(io->fd, io->got, sizeof io->got);
        if (n > 0) return (int)n;
        if (n < 0 && errno != EAGAIN) return PR_EIO;
        if (n == 0) return PR_ECLOSED;
        if ((io->rc = pr_fd_wait(io->fd, PR_WAIT_READ, pr_deadline_in(5000))) != PR_OK) return io->rc;
    }
}

PT_TEST(sched_fd_wait_socketpair) {
    int sv[2], r;
    sched_io io;
    pr_task *t, *t2;
    PT_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    memset(&io, 0, sizeof io);
    io.fd = sv[0];
    PT_REQUIRE(pr_go(&t, sched_reader, &io, NULL) == PR_OK);
    pr_yield();
    /* a second reader on the same fd is refused */
    PT_EQ_ERR(pr_fd_wait(sv[0], PR_WAIT_READ, PR_FOREVER), PR_ESTATE);
    PT_EQ_ERR(pr_fd_wait(sv[0], 0, PR_FOREVER), PR_EINVAL);
    PT_EQ_ERR(pr_fd_wait(-1, PR_WAIT_READ, PR_FOREVER), PR_EINVAL);
    PT_EQ_ERR(pr_fd_wait(sv[1], PR_WAIT_WRITE, pr_deadline_in(1000)), PR_OK); /* writable at once */
    PT_REQUIRE(write(sv[1], "hi", 2) == 2);
    PT_EQ_ERR(pr_join(t, &r, PR_FOREVER), PR_OK);
    PT_EQ_INT(r, 2);
    PT_EQ_MEM(io.got, "hi", 2);
    /* a peer close wakes a reader (hang-up counts as ready) */
    PT_REQUIRE(pr_go(&t, sched_reader, &io, NULL) == PR_OK);
    pr_yield();
    close(sv[1]);
    PT_EQ_ERR(pr_join(t, &r, PR_FOREVER), PR_OK);
    PT_EQ_ERR(r, PR_ECLOSED);
    /* pr_fd_forget wakes a waiter with PR_ECLOSED */
    pr_fd_forget(sv[0]);
    close(sv[0]);
    PT_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    io.fd = sv[0];
    PT_REQUIRE(pr_go(&t2, sched_reader, &io, NULL) == PR_OK);
    pr_yield();
    PT_EQ_ERR(pr_fd_forget(sv[0]), PR_OK);
    PT_EQ_ERR(pr_join(t2, &r, PR_FOREVER), PR_OK);
    PT_EQ_ERR(r, PR_ECLOSED);
    PT_EQ_ERR(pr_fd_forget(-3), PR_EINVAL);
    close(sv[0]);
    close(sv[1]);
}

PT_TEST(sched_fd_wait_timeout) {
    int sv[2];
    int64_t t0;
    PT_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    t0 = pr_now();
    PT_EQ_ERR(pr_fd_wait(sv[0], PR_WAIT_READ, pr_deadline_in(15)), PR_ETIMEDOUT);
    PT_CHECK(pr_now() - t0 >= 15);
    pr_fd_forget(sv[0]);
    close(sv[0]);
    close(sv[1]);
}

/* Many tasks waiting on many fds at once, woken out of order. */
PT_TEST(sched_fd_many_waiters) {
    enum { N = 50 };
    int sv[N][2], i, r;
    sched_io io[N];
    pr_task *t[N];
    for (i = 0; i < N; i++) {
        PT_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv[i]) == 0);
        memset(&io[i], 0, sizeof io[i]);
        io[i].fd = sv[i][0];
        PT_REQUIRE(pr_go(&t[i], sched_reader, &io[i], NULL) == PR_OK);
    }
    pr_yield();
    for (i = N - 1; i >= 0; i--) PT_REQUIRE(write(sv[i][1], "z", 1) == 1);
    for (i = 0; i < N; i++) {
        PT_EQ_ERR(pr_join(t[i], &r, PR_FOREVER), PR_OK);
        PT_EQ_INT(r, 1);
        pr_fd_forget(sv[i][0]);
        close(sv[i][0]);
        close(sv[i][1]);
    }
}

/* ---- pr_fd_read / pr_fd_write ---- */
static int sched_fd_echo(void *arg) {
    int fd = *(int *)arg;
    char buf[256];
    ptrdiff_t n;
    while ((n = pr_fd_read(fd, buf, sizeof buf, pr_deadline_in(5000))) > 0)
        if (pr_fd_write(fd, buf, (size_t)n, pr_deadline_in(5000)) != n) return PR_EIO;
    return (int)n;
}

PT_TEST(sched_fd_read_write) {
    int sv[2], r, i;
    char buf[64];
    pr_task *t;
    PT_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    PT_REQUIRE(pr_go(&t, sched_fd_echo, &sv[1], NULL) == PR_OK);
    for (i = 0; i < 100; i++) {
        PT_REQUIRE(pr_fd_write(sv[0], "ping", 4, pr_deadline_in(5000)) == 4);
        PT_REQUIRE(pr_fd_read(sv[0], buf, sizeof buf, pr_deadline_in(5000)) == 4);
        PT_REQUIRE(memcmp(buf, "ping", 4) == 0);
    }
    /* the last read was short, so the socket is known drained: the next read
       waits for the poller instead of trying a read that says EAGAIN */
    PT_EQ_INT(pr__sched_tls->fds[sv[0]].rd_idle, 1);
    PT_EQ_INT(pr_fd_read(sv[0], buf, sizeof buf, 0), PR_ETIMEDOUT);
    PT_REQUIRE(pr_fd_write(sv[0], "ab", 2, pr_deadline_in(5000)) == 2);
    PT_REQUIRE(pr_fd_read(sv[0], buf, 1, pr_deadline_in(5000)) == 1); /* a full read: maybe more */
    PT_EQ_INT(pr__sched_tls->fds[sv[0]].rd_idle, 0);
    PT_REQUIRE(pr_fd_read(sv[0], buf, 1, pr_deadline_in(5000)) == 1);
    PT_EQ_INT(pr_fd_read(sv[0], buf, 0, 0), PR_EINVAL);
    PT_EQ_INT(pr_fd_write(-1, buf, 1, 0), PR_EINVAL);
    /* the peer's end of stream */
    pr_fd_forget(sv[0]);
    close(sv[0]);
    PT_EQ_ERR(pr_join(t, &r, PR_FOREVER), PR_OK);
    PT_EQ_ERR(r, PR_ECLOSED);
    /* writing to a closed peer is PR_ECLOSED, not SIGPIPE */
    PT_EQ_INT(pr_fd_write(sv[1], "x", 1, pr_deadline_in(1000)), PR_ECLOSED);
    pr_fd_forget(sv[1]);
    close(sv[1]);
}

static int sched_fd_drain(void *arg) {
    int fd = *(int *)arg;
    char buf[4096];
    long long total = 0;
    ptrdiff_t n;
    while ((n = pr_fd_read(fd, buf, sizeof buf, pr_deadline_in(5000))) > 0) total += n;
    return n == PR_ECLOSED ? (int)(total / 1024) : (int)n;
}

/* A writer that fills the socket buffer waits until the reader drains it;
   works on a pipe too (not a socket: plain write). */
PT_TEST(sched_fd_write_waits_when_full) {
    int kinds;
    for (kinds = 0; kinds < 2; kinds++) {
        int fds[2], r, i;
        char chunk[1024];
        pr_task *t;
        if (kinds == 0) PT_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
        else PT_REQUIRE(pipe2(fds, O_NONBLOCK) == 0);
        memset(chunk, 'a', sizeof chunk);
        PT_REQUIRE(pr_go(&t, sched_fd_drain, &fds[0], NULL) == PR_OK);
        for (i = 0; i < 4096; i++) { /* 4 MiB: far more than any socket or pipe buffer */
            size_t off = 0;
            while (off < sizeof chunk) {
                ptrdiff_t n = pr_fd_write(fds[1], chunk + off, sizeof chunk - off, pr_deadline_in(5000));
                PT_REQUIRE(n > 0);
                off += (size_t)n;
            }
        }
        pr_fd_forget(fds[1]);
        close(fds[1]);
        PT_EQ_ERR(pr_join(t, &r, PR_FOREVER), PR_OK);
        PT_EQ_INT(r, 4096);
        pr_fd_forget(fds[0]);
        close(fds[0]);
    }
}

static int sched_fd_read_forever(void *arg) {
    char c;
    return (int)pr_fd_read(*(int *)arg, &c, 1, PR_FOREVER);
}

PT_TEST(sched_fd_read_cancel) {
    int sv[2], r;
    pr_task *t;
    PT_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    PT_REQUIRE(pr_go(&t, sched_fd_read_forever, &sv[0], NULL) == PR_OK);
    pr_yield();
    pr_cancel(t);
    PT_EQ_ERR(pr_join(t, &r, PR_FOREVER), PR_OK);
    PT_EQ_ERR(r, PR_ECANCELED);
    pr_fd_forget(sv[0]);
    close(sv[0]);
    close(sv[1]);
}

/* ---- groups ---- */
static int sched_short(void *arg) {
    pr_sleep(pr_deadline_in((int)(intptr_t)arg));
    sched_counter++;
    return 0;
}

PT_TEST(sched_group_cancels_and_reaps) {
    pr_group *g;
    int i;
    PT_REQUIRE(pr_group_create(&g) == PR_OK);
    for (i = 0; i < 20; i++) PT_REQUIRE(pr_group_go(g, sched_forever, NULL, NULL) == PR_OK);
    pr_yield();
    PT_EQ_INT(sched_other_tasks(), 20);
    PT_EQ_ERR(pr_group_wait(g, pr_deadline_in(5)), PR_ETIMEDOUT);
    PT_EQ_ERR(pr_group_close(g, PR_FOREVER), PR_OK);
    PT_EQ_INT(sched_other_tasks(), 0);
    PT_EQ_ERR(pr_group_close(NULL, 0), PR_OK);
}

PT_TEST(sched_group_wait_natural_end) {
    pr_group *g;
    int i;
    sched_counter = 0;
    PT_REQUIRE(pr_group_create(&g) == PR_OK);
    for (i = 0; i < 5; i++) PT_REQUIRE(pr_group_go(g, sched_short, (void *)(intptr_t)(i * 2), NULL) == PR_OK);
    PT_EQ_ERR(pr_group_wait(g, PR_FOREVER), PR_OK);
    PT_EQ_INT(sched_counter, 5);
    PT_EQ_ERR(pr_group_close(g, 0), PR_OK);
}

static int sched_close_while_canceled(void *arg) {
    pr_group *g;
    int i, rc;
    (void)arg;
    if (pr_group_create(&g)) return PR_ENOMEM;
    for (i = 0; i < 3; i++) pr_group_go(g, sched_forever, NULL, NULL);
    rc = pr_sleep(PR_FOREVER); /* cancelled here */
    PT_EQ_ERR(pr_group_close(g, PR_FOREVER), PR_OK); /* a close still reaps */
    return rc;
}

static int sched_child_waits_own_group(void *arg) {
    pr_group *g = (pr_group *)arg;
    int a = pr_group_wait(g, PR_FOREVER), b = pr_group_close(g, PR_FOREVER);
    sched_counter = a == PR_ESTATE && b == PR_ESTATE ? 1 : -1;
    return 0;
}

PT_TEST(sched_group_child_cannot_wait_for_itself) {
    pr_group *g;
    PT_REQUIRE(pr_group_create(&g) == PR_OK);
    sched_counter = 0;
    PT_REQUIRE(pr_group_go(g, sched_child_waits_own_group, g, NULL) == PR_OK);
    PT_EQ_ERR(pr_group_wait(g, PR_FOREVER), PR_OK);
    PT_EQ_INT(sched_counter, 1);
    PT_EQ_ERR(pr_group_close(g, PR_FOREVER), PR_OK);
}

PT_TEST(sched_group_close_in_cancelled_task) {
    pr_task *t;
    int r;
    PT_REQUIRE(pr_go(&t, sched_close_while_canceled, NULL, NULL) == PR_OK);
    pr_yield();
    pr_cancel(t);
    PT_EQ_ERR(pr_join(t, &r, PR_FOREVER), PR_OK);
    PT_EQ_ERR(r, PR_ECANCELED);
    PT_EQ_INT(sched_other_tasks(), 0);
}

/* ---- channels ---- */
PT_TEST(sched_chan_buffered_and_close) {
    pr_chan *c;
    int i, x;
    PT_EQ_ERR(pr_chan_create(&c, 0, 1), PR_EINVAL);
    PT_EQ_ERR(pr_chan_create(&c, SIZE_MAX / 2, 4), PR_EINVAL);
    PT_REQUIRE(pr_chan_create(&c, sizeof(int), 3) == PR_OK);
    for (i = 0; i < 3; i++) PT_EQ_ERR(pr_chan_send(c, &i, 0), PR_OK);
    PT_EQ_ERR(pr_chan_send(c, &i, 0), PR_ETIMEDOUT); /* full */
    PT_EQ_ERR(pr_chan_close(c), PR_OK);
    PT_EQ_ERR(pr_chan_close(c), PR_ESTATE);
    PT_EQ_ERR(pr_chan_send(c, &i, PR_FOREVER), PR_ECLOSED);
    for (i = 0; i < 3; i++) {
        PT_EQ_ERR(pr_chan_recv(c, &x, PR_FOREVER), PR_OK); /* buffered values survive close */
        PT_EQ_INT(x, i);
    }
    PT_EQ_ERR(pr_chan_recv(c, &x, PR_FOREVER), PR_ECLOSED);
    pr_chan_destroy(c);
    pr_chan_destroy(NULL);
}

static int sched_echo(void *arg) {
    pr_chan **ch = (pr_chan **)arg;
    int x, rc;
    while ((rc = pr_chan_recv(ch[0], &x, PR_FOREVER)) == PR_OK)
        if ((rc = pr_chan_send(ch[1], &x, PR_FOREVER)) != PR_OK) break;
    return rc;
}

PT_TEST(sched_chan_unbuffered_pingpong) {
    pr_chan *ch[2];
    pr_task *t;
    int i, x, r;
    PT_REQUIRE(pr_chan_create(&ch[0], sizeof(int), 0) == PR_OK);
    PT_REQUIRE(pr_chan_create(&ch[1], sizeof(int), 0) == PR_OK);
    PT_REQUIRE(pr_go(&t, sched_echo, ch, NULL) == PR_OK);
    for (i = 0; i < 1000; i++) {
        PT_REQUIRE(pr_chan_send(ch[0], &i, PR_FOREVER) == PR_OK);
        PT_REQUIRE(pr_chan_recv(ch[1], &x, PR_FOREVER) == PR_OK);
        PT_REQUIRE(x == i);
    }
    pr_chan_close(ch[0]); /* wakes the echo task blocked in recv */
    PT_EQ_ERR(pr_join(t, &r, PR_FOREVER), PR_OK);
    PT_EQ_ERR(r, PR_ECLOSED);
    pr_chan_destroy(ch[0]);
    pr_chan_destroy(ch[1]);
}

typedef struct sched_mpmc {
    pr_chan *c;
    int per_producer;
    long long sum;
    int received;
} sched_mpmc;

static int sched_producer(void *arg) {
    sched_mpmc *m = (sched_mpmc *)arg;
    int i, rc;
    for (i = 1; i <= m->per_producer; i++) {
        if ((rc = pr_chan_send(m->c, &i, PR_FOREVER)) != PR_OK) return rc;
        if (i % 7 == 0) pr_yield();
    }
    return 0;
}

static int sched_consumer(void *arg) {
    sched_mpmc *m = (sched_mpmc *)arg;
    int x;
    while (pr_chan_recv(m->c, &x, PR_FOREVER) == PR_OK) {
        m->sum += x;
        m->received++;
    }
    return 0;
}

PT_TEST(sched_chan_contention) {
    size_t caps[] = { 0, 1, 3, 64 };
    size_t k;
    for (k = 0; k < 4; k++) {
        sched_mpmc m;
        pr_group *prod, *cons;
        int i;
        memset(&m, 0, sizeof m);
        m.per_producer = 500;
        PT_REQUIRE(pr_chan_create(&m.c, sizeof(int), caps[k]) == PR_OK);
        PT_REQUIRE(pr_group_create(&prod) == PR_OK);
        PT_REQUIRE(pr_group_create(&cons) == PR_OK);
        for (i = 0; i < 4; i++) PT_REQUIRE(pr_group_go(cons, sched_consumer, &m, NULL) == PR_OK);
        for (i = 0; i < 8; i++) PT_REQUIRE(pr_group_go(prod, sched_producer, &m, NULL) == PR_OK);
        PT_EQ_ERR(pr_group_wait(prod, PR_FOREVER), PR_OK);
        pr_chan_close(m.c);
        PT_EQ_ERR(pr_group_wait(cons, PR_FOREVER), PR_OK);
        PT_EQ_INT(m.received, 8 * 500);
        PT_EQ_INT(m.sum, 8LL * 500 * 501 / 2);
        pr_group_close(prod, 0);
        pr_group_close(cons, 0);
        pr_chan_destroy(m.c);
    }
}

static int sched_send_later(void *arg) {
    pr_chan *c = (pr_chan *)arg;
    int v = 77;
    pr_sleep(pr_deadline_in(2));
    return pr_chan_send(c, &v, PR_FOREVER);
}

PT_TEST(sched_chan_choose) {
    pr_chan *a, *b, *many[12];
    pr_chan_op ops[12];
    int xa = 0, xb = 0, v = 5, i, seen[2] = { 0, 0 };
    pr_task *t;
    PT_REQUIRE(pr_chan_create(&a, sizeof(int), 4) == PR_OK);
    PT_REQUIRE(pr_chan_create(&b, sizeof(int), 4) == PR_OK);
    ops[0].chan = a, ops[0].kind = PR_CHAN_RECV, ops[0].elem = &xa;
    ops[1].chan = b, ops[1].kind = PR_CHAN_RECV, ops[1].elem = &xb;
    PT_EQ_ERR(pr_chan_choose(ops, 2, pr_deadline_in(1)), PR_ETIMEDOUT);
    PT_EQ_ERR(pr_chan_choose(ops, 0, 0), PR_EINVAL);
    /* both ready: the choice rotates, so neither starves */
    for (i = 0; i < 10; i++) {
        int k;
        pr_chan_send(a, &v, 0);
        pr_chan_send(b, &v, 0);
        k = pr_chan_choose(ops, 2, 0);
        PT_REQUIRE(k == 0 || k == 1);
        seen[k]++;
        PT_EQ_ERR(ops[k].result, PR_OK);
        PT_EQ_ERR(pr_chan_recv(k ? a : b, k ? &xa : &xb, 0), PR_OK);
    }
    PT_CHECK(seen[0] > 0 && seen[1] > 0);
    /* a blocked choose is completed by a later send */
    PT_REQUIRE(pr_go(&t, sched_send_later, b, NULL) == PR_OK);
    PT_EQ_INT(pr_chan_choose(ops, 2, PR_FOREVER), 1);
    PT_EQ_INT(xb, 77);
    PT_EQ_ERR(pr_join(t, NULL, PR_FOREVER), PR_OK);
    /* send and receive offered together */
    for (i = 0; i < 4; i++) pr_chan_send(a, &v, 0);
    ops[0].kind = PR_CHAN_SEND, ops[0].elem = &v; /* a is full */
    xb = 0;
    PT_EQ_ERR(pr_chan_choose(ops, 2, 0), PR_ETIMEDOUT);
    pr_chan_close(b);
    PT_EQ_INT(pr_chan_choose(ops, 2, PR_FOREVER), 1);
    PT_EQ_ERR(ops[1].result, PR_ECLOSED);
    pr_chan_destroy(a);
    pr_chan_destroy(b);
    /* more than 8 operations take the allocating path */
    for (i = 0; i < 12; i++) {
        PT_REQUIRE(pr_chan_create(&many[i], sizeof(int), 0) == PR_OK);
        ops[i].chan = many[i], ops[i].kind = PR_CHAN_RECV, ops[i].elem = &xa;
    }
    PT_REQUIRE(pr_go(&t, sched_send_later, many[9], NULL) == PR_OK);
    PT_EQ_INT(pr_chan_choose(ops, 12, PR_FOREVER), 9);
    PT_EQ_INT(xa, 77);
    pr_join(t, NULL, PR_FOREVER);
    for (i = 0; i < 12; i++) pr_chan_destroy(many[i]);
}

static int sched_blocked_sender(void *arg) {
    int v = 1;
    return pr_chan_send((pr_chan *)arg, &v, PR_FOREVER);
}

PT_TEST(sched_chan_close_wakes_senders) {
    pr_chan *c;
    pr_task *t[3];
    int i, r;
    PT_REQUIRE(pr_chan_create(&c, sizeof(int), 0) == PR_OK);
    for (i = 0; i < 3; i++) pr_go(&t[i], sched_blocked_sender, c, NULL);
    pr_yield();
    pr_chan_destroy(c);
    for (i = 0; i < 3; i++) {
        PT_EQ_ERR(pr_join(t[i], &r, PR_FOREVER), PR_OK);
        PT_EQ_ERR(r, PR_ECLOSED);
    }
}

/* ---- cross-thread post ---- */
typedef struct sched_xt {
    pr_sched *target;
    int posted_ok;
    int ran;
    pr_future *done;
} sched_xt;

static void sched_xt_inc(void *arg) { ((sched_xt *)arg)->ran++; }

static void sched_xt_finish(void *arg) { pr_future_resolve(((sched_xt *)arg)->done, arg); }

static void *sched_xt_thread(void *arg) {
    sched_xt *x = (sched_xt *)arg;
    int i;
    for (i = 0; i < 1000; i++) {
        if (pr_sched_post(x->target, sched_xt_inc, x) == PR_OK) x->posted_ok++;
        if (i % 100 == 0) usleep(100);
    }
    pr_sched_post(x->target, sched_xt_finish, x);
    return NULL;
}

PT_TEST(sched_cross_thread_post) {
    sched_xt x;
    pthread_t th;
    void *out = NULL;
    memset(&x, 0, sizeof x);
    x.target = pr_sched_current();
    PT_REQUIRE(x.target != NULL);
    PT_REQUIRE(pr_future_create(&x.done) == PR_OK);
    PT_REQUIRE(pthread_create(&th, NULL, sched_xt_thread, &x) == 0);
    PT_EQ_ERR(pr_future_await(x.done, &out, pr_deadline_in(10000)), PR_OK);
    pthread_join(th, NULL);
    PT_CHECK(out == &x);
    PT_EQ_INT(x.posted_ok, 1000);
    PT_EQ_INT(x.ran, 1000); /* posts run in order, all before the final one */
    pr_future_destroy(x.done);
    PT_EQ_ERR(pr_sched_post(NULL, sched_xt_inc, &x), PR_EINVAL);
}

/* A second thread runs a scheduler of its own at the same time. */
static void *sched_thread_own_sched(void *arg) {
    pr_task *t;
    int *res = (int *)arg, r = -1;
    if (pr_go(&t, sched_sleeper, (void *)5, NULL) == PR_OK && pr_join(t, &r, PR_FOREVER) == PR_OK) *res = r;
    *res += pr_sched_destroy() == PR_OK ? 100 : 0;
    return NULL;
}

PT_TEST(sched_per_thread_schedulers) {
    pthread_t th;
    int res = -1;
    PT_REQUIRE(pthread_create(&th, NULL, sched_thread_own_sched, &res) == 0);
    pthread_join(th, NULL);
    PT_EQ_INT(res, 100);
}

/* ---- the thread's own main task, on a thread that never spawned ---- */
typedef struct sched_fresh {
    int sleep_rc, recv_rc, await_rc, read_rc;
    int destroy_rc;
} sched_fresh;

static void *sched_fresh_thread(void *arg) {
    sched_fresh *r = (sched_fresh *)arg;
    pr_chan *c = NULL;
    pr_future *f = NULL;
    int sv[2], x;
    char buf[8];
    r->sleep_rc = pr_sleep(pr_deadline_in(3)); /* the very first call: a finite deadline in main */
    if (pr_chan_create(&c, sizeof(int), 0) == PR_OK) r->recv_rc = pr_chan_recv(c, &x, pr_deadline_in(2));
    if (pr_future_create(&f) == PR_OK) r->await_rc = pr_future_await(f, NULL, pr_deadline_in(2));
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0) {
        r->read_rc = (int)pr_fd_read(sv[0], buf, sizeof buf, pr_deadline_in(2));
        pr_fd_forget(sv[0]);
        close(sv[0]);
        close(sv[1]);
    }
    pr_chan_destroy(c);
    pr_future_destroy(f);
    r->destroy_rc = pr_sched_destroy();
    return NULL;
}

PT_TEST(sched_main_task_blocks_without_spawning) {
    sched_fresh r;
    pthread_t th;
    memset(&r, 0x55, sizeof r);
    PT_REQUIRE(pthread_create(&th, NULL, sched_fresh_thread, &r) == 0);
    pthread_join(th, NULL);
    PT_EQ_ERR(r.sleep_rc, PR_OK);
    PT_EQ_ERR(r.recv_rc, PR_ETIMEDOUT);
    PT_EQ_ERR(r.await_rc, PR_ETIMEDOUT);
    PT_EQ_ERR(r.read_rc, PR_ETIMEDOUT);
    PT_EQ_ERR(r.destroy_rc, PR_OK);
}

/* A task that only yields still lets timers fire: the scheduler polls every
   few dozen switches even when nothing waited on timers or I/O before. */
static int sched_flag;
static int sched_set_flag_later(void *arg) {
    (void)arg;
    pr_sleep(pr_deadline_in(2));
    sched_flag = 1;
    return 0;
}

static void *sched_yield_thread(void *arg) {
    long *yields = (long *)arg, i;
    pr_task *t;
    for (i = 0; i < 200; i++) pr_yield(); /* warm up with no timer anywhere */
    sched_flag = 0;
    if (pr_go(&t, sched_set_flag_later, NULL, NULL) == PR_OK) {
        for (*yields = 0; !sched_flag && *yields < 50000000; ++*yields) pr_yield();
        pr_join(t, NULL, PR_FOREVER);
    }
    pr_sched_destroy();
    return NULL;
}

PT_TEST(sched_yield_does_not_starve_timers) {
    pthread_t th;
    long yields = -1;
    PT_REQUIRE(pthread_create(&th, NULL, sched_yield_thread, &yields) == 0);
    pthread_join(th, NULL);
    PT_EQ_INT(sched_flag, 1);
    PT_CHECK(yields >= 0 && yields < 50000000);
}

/* Datagram sockets: a short read does not mean drained. The reader is
   registered and parked before both datagrams arrive, so with an
   edge-triggered poller only one edge comes for the two. */
static int sched_dgram_reader(void *arg) {
    int fd = *(int *)arg;
    char buf[64];
    ptrdiff_t a = pr_fd_read(fd, buf, sizeof buf, pr_deadline_in(2000));
    ptrdiff_t b = pr_fd_read(fd, buf, sizeof buf, pr_deadline_in(2000));
    return a == 3 && b == 4 && memcmp(buf, "two!", 4) == 0 ? 0 : (int)(b < 0 ? b : -100);
}

PT_TEST(sched_fd_read_datagrams) {
    int sv[2], r;
    pr_task *t;
    PT_REQUIRE(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv) == 0);
    PT_REQUIRE(pr_go(&t, sched_dgram_reader, &sv[0], NULL) == PR_OK);
    pr_yield(); /* the reader parks in the poller */
    PT_REQUIRE(write(sv[1], "one", 3) == 3);
    PT_REQUIRE(write(sv[1], "two!", 4) == 4);
    PT_EQ_ERR(pr_join(t, &r, PR_FOREVER), PR_OK);
    PT_EQ_ERR(r, PR_OK);
    pr_fd_forget(sv[0]);
    close(sv[0]);
    close(sv[1]);
}

/* Data and the peer's close arrive in one edge: the short read must not
   make the next read wait for an edge that will never come. */
static int sched_read_to_eof(void *arg) {
    int fd = *(int *)arg;
    char buf[64];
    ptrdiff_t a = pr_fd_read(fd, buf, sizeof buf, pr_deadline_in(2000));
    ptrdiff_t b = pr_fd_read(fd, buf, sizeof buf, pr_deadline_in(2000));
    return a == 3 && b == PR_ECLOSED ? 0 : (int)(b < 0 ? b : -100);
}

PT_TEST(sched_fd_read_data_then_eof_in_one_edge) {
    int sv[2], r;
    pr_task *t;
    PT_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    PT_REQUIRE(pr_go(&t, sched_read_to_eof, &sv[0], NULL) == PR_OK);
    pr_yield(); /* the reader parks, registered */
    PT_REQUIRE(write(sv[1], "abc", 3) == 3);
    close(sv[1]);
    PT_EQ_ERR(pr_join(t, &r, PR_FOREVER), PR_OK);
    PT_EQ_ERR(r, PR_OK);
    pr_fd_forget(sv[0]);
    close(sv[0]);
}

/* A past deadline still tries the syscall even when the fd was drained. */
PT_TEST(sched_fd_read_past_deadline_tries_once) {
    int sv[2];
    char buf[64];
    PT_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    PT_REQUIRE(write(sv[1], "a", 1) == 1);
    PT_EQ_INT(pr_fd_read(sv[0], buf, sizeof buf, pr_deadline_in(2000)), 1); /* short: drained */
    PT_REQUIRE(write(sv[1], "b", 1) == 1);
    PT_EQ_INT(pr_fd_read(sv[0], buf, sizeof buf, 0), 1);
    PT_EQ_INT(pr_fd_read(sv[0], buf, sizeof buf, 0), PR_ETIMEDOUT);
    pr_fd_forget(sv[0]);
    close(sv[0]);
    close(sv[1]);
}

/* A timed-out fd waiter that has not run yet does not block a new waiter. */
PT_TEST(sched_fd_stale_waiter_not_counted) {
    int sv[2];
    pr_task *t;
    sched_io io;
    int r;
    pr__time_test_clock_virtual(1, 100);
    PT_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    memset(&io, 0, sizeof io);
    io.fd = sv[0];
    PT_REQUIRE(pr_go(&t, sched_reader, &io, NULL) == PR_OK);
    pr_yield();
    pr__time_test_clock_advance(6000);
    pr__sched_poll(pr__sched_tls, 0); /* the reader timed out but has not run */
    PT_EQ_ERR(pr_fd_wait(sv[0], PR_WAIT_READ, 0), PR_ETIMEDOUT); /* not PR_ESTATE */
    PT_EQ_ERR(pr_join(t, &r, PR_FOREVER), PR_OK);
    PT_EQ_ERR(r, PR_ETIMEDOUT);
    pr__time_test_clock_virtual(0, 0);
    pr_fd_forget(sv[0]);
    close(sv[0]);
    close(sv[1]);
}

/* A posted function runs outside any task's cancel state: here it runs while
   a cancelled task sits in the poller on its way out. */
typedef struct sched_postcancel {
    pr_sched *s;
    pr_chan *c;
    int send_rc, canceled_seen;
} sched_postcancel;

static void sched_pc_post(void *arg) {
    sched_postcancel *p = (sched_postcancel *)arg;
    int v = 9;
    p->canceled_seen = pr_is_canceled();
    p->send_rc = pr_chan_send(p->c, &v, 0);
}

static void *sched_pc_thread(void *arg) {
    usleep(20000);
    pr_sched_post(((sched_postcancel *)arg)->s, sched_pc_post, arg);
    return NULL;
}

static int sched_pc_victim(void *arg) {
    (void)arg;
    pr_cancel(pr_self());
    return 0; /* returns at once: its last switch waits in the poller */
}

PT_TEST(sched_post_ignores_cancel_of_polling_task) {
    sched_postcancel p;
    pthread_t th;
    int x = 0;
    memset(&p, 0, sizeof p);
    p.s = pr_sched_current();
    PT_REQUIRE(p.s != NULL);
    PT_REQUIRE(pr_chan_create(&p.c, sizeof(int), 1) == PR_OK);
    PT_REQUIRE(pr_go(NULL, sched_pc_victim, NULL, NULL) == PR_OK);
    PT_REQUIRE(pthread_create(&th, NULL, sched_pc_thread, &p) == 0);
    PT_EQ_ERR(pr_chan_recv(p.c, &x, pr_deadline_in(5000)), PR_OK);
    pthread_join(th, NULL);
    PT_EQ_INT(x, 9);
    PT_EQ_ERR(p.send_rc, PR_OK);
    PT_EQ_INT(p.canceled_seen, 0);
    pr_chan_destroy(p.c);
}

static int sched_group_waiter(void *arg) { return pr_group_wait((pr_group *)arg, PR_FOREVER); }

static int sched_short_uncancelled(void *arg) {
    if (pr_sleep(pr_deadline_in((int)(intptr_t)arg)) == PR_OK) sched_counter++;
    return 0;
}

PT_TEST(sched_group_close_estate_has_no_side_effects) {
    pr_group *g;
    pr_task *w;
    int r;
    sched_counter = 0;
    PT_REQUIRE(pr_group_create(&g) == PR_OK);
    PT_REQUIRE(pr_group_go(g, sched_short_uncancelled, (void *)3, NULL) == PR_OK);
    PT_REQUIRE(pr_go(&w, sched_group_waiter, g, NULL) == PR_OK);
    pr_yield(); /* w waits on g */
    PT_EQ_ERR(pr_group_close(g, PR_FOREVER), PR_ESTATE);
    PT_EQ_ERR(pr_group_go(g, sched_short_uncancelled, (void *)1, NULL), PR_OK); /* not left closing */
    PT_EQ_ERR(pr_join(w, &r, PR_FOREVER), PR_OK);
    PT_EQ_ERR(r, PR_OK);
    PT_EQ_INT(sched_counter, 2); /* neither child was cancelled */
    PT_EQ_ERR(pr_group_close(g, PR_FOREVER), PR_OK);
}

/* ---- scale ---- */
static int sched_wait_chan(void *arg) {
    volatile char touch[1024];
    int x;
    memset((char *)touch, 1, sizeof touch);
    return pr_chan_recv((pr_chan *)arg, &x, PR_FOREVER) == PR_ECLOSED ? 0 : 1;
}

/* 100,000 tasks need more address space than 32-bit targets have
   (64 KiB stacks); those run 25,000. */
PT_TEST(sched_100k_live_tasks) {
    const int N = sizeof(void *) >= 8 ? 100000 : 25000;
    pr_group *g;
    pr_chan *c;
    int i;
#ifdef PR__VALGRIND
    if (RUNNING_ON_VALGRIND) PT_SKIP("valgrind cannot track 100,000 stacks (VG_N_SEGMENTS)");
#endif
    PT_REQUIRE(pr_group_create(&g) == PR_OK);
    PT_REQUIRE(pr_chan_create(&c, sizeof(int), 0) == PR_OK);
    for (i = 0; i < N; i++) {
        int rc = pr_group_go(g, sched_wait_chan, c, NULL);
        if (rc != PR_OK) {
            PT_EQ_ERR(rc, PR_OK);
            break;
        }
    }
    pr_yield(); /* all of them run and park */
    PT_EQ_INT(sched_other_tasks(), N);
    pr_chan_close(c);
    PT_EQ_ERR(pr_group_wait(g, PR_FOREVER), PR_OK);
    PT_EQ_INT(sched_other_tasks(), 0);
    pr_group_close(g, 0);
    pr_chan_destroy(c);
}

/* ---- allocation failure at every step ---- */
typedef struct sched_oom {
    int rc;
} sched_oom;

static int sched_oom_worker(void *arg) {
    pr_chan *c = (pr_chan *)arg;
    int x = 3;
    return pr_chan_send(c, &x, PR_FOREVER) == PR_OK ? 0 : 1;
}

static void sched_oom_posted(void *arg) { ++*(int *)arg; }

static int sched_oom_late_sender(void *arg) {
    pr_chan *c = (pr_chan *)arg;
    int x = 4;
    return pr_chan_send(c, &x, PR_FOREVER) == PR_OK ? 0 : 1;
}

/* The whole scenario on a fresh scheduler: every step may fail with
   PR_ENOMEM, and whatever was made is released. */
static int sched_oom_scenario(void) {
    pr_chan *c = NULL, *many[9];
    pr_chan_op ops[9];
    pr_group *g = NULL;
    pr_future *f = NULL;
    pr_task *t = NULL;
    pr_sched *self;
    int rc, i, x, sum = 0, posted = 0, sv[2] = { -1, -1 }, nmany = 0;
    if (!(self = pr_sched_current())) return PR_ENOMEM;
    if ((rc = pr_chan_create(&c, sizeof(int), 2)) != PR_OK) goto out;
    if ((rc = pr_group_create(&g)) != PR_OK) goto out;
    for (i = 0; i < 4; i++)
        if ((rc = pr_group_go(g, sched_oom_worker, c, NULL)) != PR_OK) goto out;
    if ((rc = pr_go(&t, sched_count_up, NULL, NULL)) != PR_OK) goto out;
    if ((rc = pr_future_go(&f, sched_count_up, NULL, NULL)) != PR_OK) goto out;
    for (i = 0; i < 4; i++) {
        if ((rc = pr_chan_recv(c, &x, PR_FOREVER)) != PR_OK) goto out;
        sum += x;
    }
    if ((rc = pr_future_await(f, NULL, PR_FOREVER)) != PR_OK) goto out;
    /* a cross-thread post to ourselves, run by the poller */
    if ((rc = pr_sched_post(self, sched_oom_posted, &posted)) != PR_OK) goto out;
    while (!posted) pr_sleep(pr_deadline_in(1));
    /* an fd high enough to grow the fd table */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0) return PR_EIO;
    x = fcntl(sv[0], F_DUPFD, 300);
    close(sv[0]);
    sv[0] = x;
    if ((rc = pr_fd_wait(sv[0], PR_WAIT_WRITE, pr_deadline_in(1000))) != PR_OK) goto out;
    /* a blocking choose over more than 8 operations */
    for (nmany = 0; nmany < 9; nmany++) {
        if ((rc = pr_chan_create(&many[nmany], sizeof(int), 0)) != PR_OK) goto out;
        ops[nmany].chan = many[nmany], ops[nmany].kind = PR_CHAN_RECV, ops[nmany].elem = &x;
    }
    if ((rc = pr_group_go(g, sched_oom_late_sender, many[7], NULL)) != PR_OK) goto out;
    if ((rc = pr_chan_choose(ops, 9, PR_FOREVER)) < 0) goto out;
    rc = sum == 12 && rc == 7 && x == 4 ? PR_OK : PR_EPROTO;
out:
    if (t) pr_join(t, NULL, PR_FOREVER);
    pr_future_destroy(f);
    if (g) pr_group_close(g, PR_FOREVER);
    pr_chan_destroy(c);
    while (nmany > 0) pr_chan_destroy(many[--nmany]);
    if (sv[0] >= 0) {
        pr_fd_forget(sv[0]);
        close(sv[0]);
        close(sv[1]);
    }
    return rc;
}

static void *sched_oom_thread(void *arg) {
    sched_oom *o = (sched_oom *)arg;
    o->rc = sched_oom_scenario();
    if (pr_sched_destroy() != PR_OK) o->rc = PR_ESTATE;
    return NULL;
}

/* Fail the 1st, 2nd, ... allocation until the scenario runs past its last
   one: every injected failure must surface as PR_ENOMEM. */
PT_TEST(sched_failing_allocator_every_step) {
    int n, failures = 0;
    for (n = 1; n < 500; n++) {
        sched_oom o;
        pthread_t th;
        long unfired;
        pt_alloc_fail_nth(n);
        o.rc = 99;
        PT_REQUIRE(pthread_create(&th, NULL, sched_oom_thread, &o) == 0);
        pthread_join(th, NULL);
        unfired = __atomic_load_n(&pt__mem.fail_nth, __ATOMIC_RELAXED);
        pt_alloc_fail_nth(0);
        if (unfired > 0) { /* the failure point lies past the scenario's last allocation */
            PT_EQ_ERR(o.rc, PR_OK);
            break;
        }
        PT_EQ_ERR(o.rc, PR_ENOMEM);
        failures++;
    }
    PT_CHECK(n < 500);
    PT_CHECK(failures >= 10);
}

const pt_suite pt_suite_sched = { "sched", {
    PT_ENTRY(sched_spawn_is_fifo_and_does_not_jump_queue),
    PT_ENTRY(sched_yield_round_robin),
    PT_ENTRY(sched_sleep_wakes_in_deadline_order),
    PT_ENTRY(sched_sleep_real_clock),
    PT_ENTRY(sched_past_deadline_does_not_block),
    PT_ENTRY(sched_fast_reader_lets_others_run),
    PT_ENTRY(sched_cancel_every_suspension_point),
    PT_ENTRY(sched_cancel_wins_over_timeout),
    PT_ENTRY(sched_join_misuse),
    PT_ENTRY(sched_cancel_self_and_detached),
    PT_ENTRY(sched_fd_wait_socketpair),
    PT_ENTRY(sched_fd_wait_timeout),
    PT_ENTRY(sched_fd_many_waiters),
    PT_ENTRY(sched_fd_read_write),
    PT_ENTRY(sched_fd_write_waits_when_full),
    PT_ENTRY(sched_fd_read_cancel),
    PT_ENTRY(sched_group_cancels_and_reaps),
    PT_ENTRY(sched_group_wait_natural_end),
    PT_ENTRY(sched_group_child_cannot_wait_for_itself),
    PT_ENTRY(sched_group_close_in_cancelled_task),
    PT_ENTRY(sched_chan_buffered_and_close),
    PT_ENTRY(sched_chan_unbuffered_pingpong),
    PT_ENTRY(sched_chan_contention),
    PT_ENTRY(sched_chan_choose),
    PT_ENTRY(sched_chan_close_wakes_senders),
    PT_ENTRY(sched_cross_thread_post),
    PT_ENTRY(sched_per_thread_schedulers),
    PT_ENTRY(sched_main_task_blocks_without_spawning),
    PT_ENTRY(sched_yield_does_not_starve_timers),
    PT_ENTRY(sched_fd_read_datagrams),
    PT_ENTRY(sched_fd_read_data_then_eof_in_one_edge),
    PT_ENTRY(sched_fd_read_past_deadline_tries_once),
    PT_ENTRY(sched_fd_stale_waiter_not_counted),
    PT_ENTRY(sched_post_ignores_cancel_of_polling_task),
    PT_ENTRY(sched_group_close_estate_has_no_side_effects),
    PT_ENTRY(sched_100k_live_tasks),
    PT_ENTRY(sched_failing_allocator_every_step),
    {0, 0} } };
