/* support.h - test support: a counting, failing allocator installed through the
   pr_allocator hook, and a fork helper for tests that expect a crash.
   Needs pristine.h and pt.h first; all.c includes it once for the whole suite. */
#ifndef PT_SUPPORT_H
#define PT_SUPPORT_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int pt_alloc_install(void);
long pt_alloc_live(size_t *bytes);
void pt_alloc_fail_nth(long n);
void pt_alloc_reset(void);
int pt_child_exits_by_signal(void (*fn)(void), int *sig);

/* Every block carries its size, so a free or realloc with the wrong size is caught. */
typedef union pt__hdr {
    struct { size_t size, magic; } h;
    long double align_ld;
    void *align_p;
    long long align_ll;
} pt__hdr;
#define PT__MAGIC ((size_t)0x9e3779b97f4a7c15ull)

/* Atomic because every thread that runs a scheduler may allocate. */
static struct { long live, fail_nth; size_t bytes; } pt__mem;

static int pt__fail_now(void) {
    return __atomic_load_n(&pt__mem.fail_nth, __ATOMIC_RELAXED) > 0
        && __atomic_sub_fetch(&pt__mem.fail_nth, 1, __ATOMIC_RELAXED) == 0;
}

static pt__hdr *pt__block(void *p, size_t n, const char *what) {
    pt__hdr *h = (pt__hdr *)p - 1;
    if (h->h.magic != PT__MAGIC) {
        pt_fail(__FILE__, __LINE__, "got %s of %p, which is not a live block, want a live block", what, p);
        return NULL;
    }
    if (h->h.size != n)
        pt_fail(__FILE__, __LINE__, "got %s with size %lu, want %lu (the size allocated)",
                what, (unsigned long)n, (unsigned long)h->h.size);
    return h;
}

static void *pt__alloc(size_t n, void *user_data) {
    pt__hdr *h;
    (void)user_data;
    if (pt__fail_now() || !(h = (pt__hdr *)malloc(sizeof *h + n))) return NULL;
    h->h.size = n;
    h->h.magic = PT__MAGIC;
    __atomic_add_fetch(&pt__mem.live, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&pt__mem.bytes, n, __ATOMIC_RELAXED);
    return h + 1;
}

static void pt__free(void *p, size_t n, void *user_data) {
    pt__hdr *h;
    (void)user_data;
    if (!p || !(h = pt__block(p, n, "free"))) return;
    __atomic_sub_fetch(&pt__mem.live, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&pt__mem.bytes, h->h.size, __ATOMIC_RELAXED);
    h->h.magic = 0;
    free(h);
}

static void *pt__realloc(void *p, size_t old_n, size_t new_n, void *user_data) {
    pt__hdr *h, *q;
    if (!p) return pt__alloc(new_n, user_data);
    if (!(h = pt__block(p, old_n, "realloc")) || pt__fail_now()) return NULL;
    old_n = h->h.size;
    if (!(q = (pt__hdr *)realloc(h, sizeof *q + new_n))) return NULL;
    q->h.size = new_n;
    __atomic_add_fetch(&pt__mem.bytes, new_n - old_n, __ATOMIC_RELAXED); /* wraps as intended */
    return q + 1;
}

/* Install the counting allocator (before the first scheduler starts). */
int pt_alloc_install(void) {
    static const pr_allocator a = { pt__alloc, pt__realloc, pt__free, NULL };
    return pr_set_allocator(&a);
}

/* Live allocations (and, if bytes is not NULL, their total size). */
long pt_alloc_live(size_t *bytes) {
    if (bytes) *bytes = __atomic_load_n(&pt__mem.bytes, __ATOMIC_RELAXED);
    return __atomic_load_n(&pt__mem.live, __ATOMIC_RELAXED);
}

/* Make the nth allocation (alloc or realloc) from now fail; 0 turns it off. */
void pt_alloc_fail_nth(long n) { __atomic_store_n(&pt__mem.fail_nth, n, __ATOMIC_RELAXED); }

/* Forget the fail-nth setting (the runner calls it before every test). */
void pt_alloc_reset(void) { pt_alloc_fail_nth(0); }

/* Run fn in a forked child. Returns 1 and sets *sig if a signal killed the child,
   0 (and *sig = 0) if it exited, -1 if fork or wait failed. The child drops any
   SIGSEGV/SIGBUS handler (a sanitizer's, say), so a guard-page hit kills it. */
int pt_child_exits_by_signal(void (*fn)(void), int *sig) {
    int status;
    pid_t pid;
    fflush(NULL);
    pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core);
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        fn();
        _exit(0);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    *sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return *sig != 0;
}

/* ---- a TCP proxy for fault tests ----
   pt_proxy_start(&p, port) listens on 127.0.0.1 (pt_proxy_port) and joins
   every connection to one of its own to 127.0.0.1:port, copying bytes both
   ways (a half-close passes through). Faults, by test code at any time:
   pt_proxy_freeze(p) holds every connection open now (TCP stays up, the
   bytes wait in the proxy) while new connections pass; pt_proxy_outage(p, 1)
   holds every connection, new ones too, until pt_proxy_outage(p, 0), when
   the held bytes go on; pt_proxy_cut(p) closes every connection open now
   (both sides, within a few ms) while new ones pass. Its tasks run on the caller's scheduler;
   pt_proxy_stop cancels them and frees everything. */
typedef struct pt_proxy {
    pr_listener *l;
    uint16_t target;
    pr_group *g;
    long conns;       /* connections accepted; each has its number, from 1 */
    long frozen_upto; /* connections numbered up to this hold their bytes */
    long cut_upto;    /* connections numbered up to this are closed */
    int outage;       /* every connection holds its bytes */
    long forwarded;   /* bytes copied */
} pt_proxy;

typedef struct pt__pair {
    pt_proxy *p;
    pr_conn *c[2];    /* the client's side, the target's side */
    long id;
    int refs;
} pt__pair;

typedef struct pt__pump {
    pt__pair *pair;
    int from;         /* 0: client to target, 1: back */
} pt__pump;

static int pt__held(const pt__pair *x) { return x->p->outage || x->id <= x->p->frozen_upto; }

static int pt__cut(const pt__pair *x) { return x->id <= x->p->cut_upto; }

static void pt__pair_unref(pt__pair *x) {
    if (--x->refs) return;
    pr_conn_destroy(x->c[0]);
    pr_conn_destroy(x->c[1]);
    free(x);
}

static int pt__pump_task(void *arg) {
    pt__pump pu = *(pt__pump *)arg;
    pt__pair *x = pu.pair;
    char buf[16384];
    free(arg);
    for (;;) {
        ptrdiff_t n = pr_conn_read(x->c[pu.from], buf, sizeof buf, pr_deadline_in(20));
        if (pt__cut(x)) break; /* the last of the two pumps closes both sides */
        if (n == PR_ETIMEDOUT) continue;
        while (pt__held(x) && !pr_is_canceled()) pr_sleep(pr_deadline_in(5)); /* held, even an end */
        if (n <= 0) {
            if (n == PR_ECLOSED) pr_conn_shutdown(x->c[!pu.from], pr_deadline_in(1000));
            break;
        }
        if (pr_conn_write(x->c[!pu.from], buf, (size_t)n, PR_FOREVER) != PR_OK) break;
        x->p->forwarded += n;
    }
    pt__pair_unref(x);
    return 0;
}

static int pt__proxy_accept(void *arg) {
    pt_proxy *p = (pt_proxy *)arg;
    for (;;) {
        pt__pair *x;
        pr_conn *in = NULL, *out = NULL;
        int i;
        if (pr_tcp_accept(p->l, &in, PR_FOREVER) != PR_OK) return 0;
        if (pr_tcp_connect(&out, "127.0.0.1", p->target, NULL, NULL, pr_deadline_in(5000)) != PR_OK ||
            !(x = (pt__pair *)calloc(1, sizeof *x))) {
            pr_conn_destroy(in);
            pr_conn_destroy(out);
            continue;
        }
        x->p = p;
        x->c[0] = in;
        x->c[1] = out;
        x->id = ++p->conns;
        x->refs = 2;
        for (i = 0; i < 2; i++) {
            pt__pump *pu = (pt__pump *)malloc(sizeof *pu);
            if (pu) {
                pu->pair = x;
                pu->from = i;
            }
            if (!pu || pr_group_go(p->g, pt__pump_task, pu, NULL) != PR_OK) {
                free(pu);
                pt__pair_unref(x);
            }
        }
    }
}

static int pt_proxy_start(pt_proxy *p, uint16_t target) {
    int rc;
    memset(p, 0, sizeof *p);
    p->target = target;
    if ((rc = pr_tcp_listen(&p->l, "127.0.0.1", 0, 64, NULL)) != PR_OK) return rc;
    if ((rc = pr_group_create(&p->g)) != PR_OK || (rc = pr_group_go(p->g, pt__proxy_accept, p, NULL)) != PR_OK) {
        if (p->g) pr_group_close(p->g, PR_FOREVER);
        pr_listener_destroy(p->l);
        return rc;
    }
    return PR_OK;
}

static uint16_t pt_proxy_port(const pt_proxy *p) { return pr_listener_port(p->l); }

static void pt_proxy_freeze(pt_proxy *p) { p->frozen_upto = p->conns; }

static void pt_proxy_outage(pt_proxy *p, int on) { p->outage = on; }

static void pt_proxy_cut(pt_proxy *p) { p->cut_upto = p->conns; }

static void pt_proxy_stop(pt_proxy *p) {
    pr_group_close(p->g, PR_FOREVER);
    pr_listener_destroy(p->l);
}

/* ---- a flooding server in a child process ----
   pt_flood_start(&fl, head, piece, ms) listens on 127.0.0.1 (fl.port); a
   child process answers the first request with head, then writes piece
   again and again, as fast as the client takes it, for ms (or until the
   client leaves), then closes. In a process of its own it outruns any
   reader, so the socket is never empty. pt_flood_running(&fl) says whether
   it is still writing; pt_flood_stop ends and reaps it. */
typedef struct pt_flood {
    pid_t pid;
    int done_fd;
    uint16_t port;
} pt_flood;

static void pt__flood_child(int lfd, int done, const char *head, const char *piece, int ms) {
    enum { PT__FLOOD_BUF = 65536 };
    char *buf = (char *)malloc(PT__FLOOD_BUF), req[1024]; /* a task's stack is small */
    size_t n = strlen(piece), k = 0, got = 0;
    struct timespec t0, t;
    int c;
    if (!buf) _exit(1);
    alarm((unsigned)(ms / 1000 + 30)); /* never outlives the test run */
    signal(SIGPIPE, SIG_IGN);
    if ((c = accept(lfd, NULL, NULL)) < 0) _exit(1);
    while (got < sizeof req - 1) { /* the request head */
        ssize_t r = read(c, req + got, sizeof req - 1 - got);
        if (r <= 0) _exit(1);
        got += (size_t)r;
        req[got] = 0;
        if (strstr(req, "\r\n\r\n")) break;
    }
    if (write(c, head, strlen(head)) < 0) _exit(1);
    while (k + n <= PT__FLOOD_BUF) {
        memcpy(buf + k, piece, n);
        k += n;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= ms) break;
        if (write(c, buf, k) < 0) break;
    }
    if (write(done, "x", 1) < 0) _exit(1);
    close(c);
    _exit(0);
}

static int pt_flood_start(pt_flood *fl, const char *head, const char *piece, int ms) {
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    int lfd, p[2];
    memset(fl, 0, sizeof *fl);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0) return PR_EIO;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) != 0 || pipe(p) != 0) {
        close(lfd);
        return PR_EIO;
    }
    fflush(NULL);
    if ((fl->pid = fork()) == 0) {
        close(p[0]);
        pt__flood_child(lfd, p[1], head, piece, ms);
    }
    close(lfd);
    close(p[1]);
    fl->done_fd = p[0];
    fl->port = ntohs(a.sin_port);
    fcntl(fl->done_fd, F_SETFL, O_NONBLOCK);
    return fl->pid > 0 ? PR_OK : PR_EIO;
}

static int pt_flood_running(pt_flood *fl) {
    char x;
    return read(fl->done_fd, &x, 1) != 1;
}

static void pt_flood_stop(pt_flood *fl) {
    if (fl->pid > 0) {
        kill(fl->pid, SIGKILL);
        waitpid(fl->pid, NULL, 0);
    }
    close(fl->done_fd);
}

#ifndef PRISTINE_NO_TLS
/* ---- a plain HTTP peer, for https-to-plain checks ----
   pt_plain_start(&p) listens on 127.0.0.1 (pt_plain_port); whatever a
   connection sends first (a TLS ClientHello) gets a plain HTTP 400, and the
   connection closes, as real HTTP servers do. p.accepts counts the
   connections. pt_plain_stop ends the task and the listener. */
typedef struct pt_plain {
    pr_listener *l;
    pr_task *t;
    int accepts;
} pt_plain;

static int pt__plain_task(void *arg) {
    static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    pt_plain *p = (pt_plain *)arg;
    char buf[512];
    for (;;) {
        pr_conn *c = NULL;
        if (pr_tcp_accept(p->l, &c, PR_FOREVER) != PR_OK) return 0;
        p->accepts++;
        if (pr_conn_read(c, buf, sizeof buf, pr_deadline_in(5000)) > 0)
            (void)pr_conn_write(c, bad, sizeof bad - 1, pr_deadline_in(5000));
        pr_conn_destroy(c);
    }
}

static int pt_plain_start(pt_plain *p) {
    int rc;
    memset(p, 0, sizeof *p);
    if ((rc = pr_tcp_listen(&p->l, "127.0.0.1", 0, 16, NULL)) != PR_OK) return rc;
    if ((rc = pr_go(&p->t, pt__plain_task, p, NULL)) != PR_OK) pr_listener_destroy(p->l);
    return rc;
}

static uint16_t pt_plain_port(const pt_plain *p) { return pr_listener_port(p->l); }

static void pt_plain_stop(pt_plain *p) {
    pr_cancel(p->t);
    (void)pr_join(p->t, NULL, PR_FOREVER);
    pr_listener_destroy(p->l);
}
#endif

#endif /* PT_SUPPORT_H */
