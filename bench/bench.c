/* bench.c - pristine.h benchmarks against Boost.Context fcontext and plain
   syscalls. Build and run from the repository root (see bench/README.md):

     mkdir -p build
     c++ -O2 -c bench/fctx.cpp -o build/fctx.o
     cc -O2 -std=c11 -DPRISTINE_NO_TLS bench/bench.c build/fctx.o -o build/bench \
        -lboost_context -lstdc++ -lpthread
     cc -O2 -std=c11 -DPRISTINE_NO_TLS -DPRISTINE_NO_FP_SAVE bench/bench.c build/fctx.o \
        -o build/bench_nofp -lboost_context -lstdc++ -lpthread
     build/bench && build/bench_nofp

   build/bench prints every metric (its switch uses the default FP-control
   save, like fcontext); `build/bench tasks` only concurrent_tasks_max (a
   child with 1,000,000 live tasks: about 4 GiB resident for a few seconds). build/bench_nofp is the same file built with
   PRISTINE_NO_FP_SAVE and prints only switch_roundtrip_nofp_ns.

   Each metric line: metric=<name> unit=<unit> pristine=<v>
   baseline=<name>:<v> ratio=<pristine/baseline>, each value the median of
   timed repetitions (21 for the switch and spawn, 11 for the ping-pong, 5
   forked children for the RSS), the two sides interleaved in one run; then
   "#" comment lines, the last one "# target: ... met|missed". Linux only
   (/proc, epoll). The implementation is compiled in here so the internal
   pr__coro_* functions can be called. */
#define PRISTINE_IMPLEMENTATION
#ifndef PRISTINE_NO_TLS
#define PRISTINE_NO_TLS
#endif
#include "../pristine.h"

#include <sys/wait.h>

/* From bench/fctx.cpp: ns per operation for one timed repetition. */
double fctx_roundtrip_ns(long iters);
double fctx_make_jump_ns(long iters);

/* Timed repetitions per side: many short ones, interleaved with the baseline's,
   so both sides sample the same machine noise; the median is reported. */
#define REPS 21
#define REPS_IO 11 /* ping-pong: longer repetitions */

static double bm_now(void) { return (double)pr__time_now_ns(); }

static void bm_die(const char *what) {
    fprintf(stderr, "bench: %s\n", what);
    exit(1);
}

static int bm_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double bm_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bm_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void bm_line(const char *name, const char *unit, const char *fmt, double p, const char *base_name,
                    double b) {
    char ps[64], bs[64];
    snprintf(ps, sizeof ps, fmt, p);
    snprintf(bs, sizeof bs, fmt, b);
    printf("metric=%s unit=%s pristine=%s baseline=%s:%s ratio=%.3f\n", name, unit, ps, base_name, bs, p / b);
}

static void bm_target(const char *what, int met) {
    printf("# target: %s  %s\n", what, met ? "met" : "missed");
    fflush(stdout);
}

/* ---- 1. switch round trip: pr__coro_switch vs jump_fcontext ---- */
static pr__coro bm_main_coro;
static pr__coro *bm_peer;

static void bm_bounce(void *arg) {
    (void)arg;
    for (;;) pr__coro_switch(bm_peer, &bm_main_coro);
}

static double pr_roundtrip_ns(long iters) {
    double t0, t1;
    long i;
    t0 = bm_now();
    for (i = 0; i < iters; i++) pr__coro_switch(&bm_main_coro, bm_peer);
    t1 = bm_now();
    return (t1 - t0) / (double)iters;
}

static void bench_switch(const char *name) {
    const long iters = 1000000;
    double p[REPS], b[REPS], pm, bmed;
    int r;
    pr__coro_init_main(&bm_main_coro);
    if (pr__coro_create(&bm_peer, NULL, 0, 0, NULL, 0, bm_bounce, NULL) != PR_OK) bm_die("pr__coro_create failed");
    pr_roundtrip_ns(iters / 10); /* warm-up: first entry, caches, branch predictors */
    fctx_roundtrip_ns(iters / 10);
    for (r = 0; r < REPS; r++) {
        p[r] = pr_roundtrip_ns(iters);
        b[r] = fctx_roundtrip_ns(iters);
    }
    pr__coro_destroy(bm_peer); /* suspended for good; its stack goes back to the pool */
    bm_peer = NULL;
    pr__coro_pool_drain();
    pm = bm_median(p, REPS);
    bmed = bm_median(b, REPS);
    bm_line(name, "ns", "%.2f", pm, "fcontext_roundtrip", bmed);
    printf("# switch: fastest of %d repetitions: pristine %.2f ns, fcontext %.2f ns\n", REPS, p[0], b[0]);
    bm_target("ratio <= 1.0", pm / bmed <= 1.0);
}

#ifndef PRISTINE_NO_FP_SAVE
/* ---- 2. spawn + run + free of a detached task, scheduler included ---- */
#define SPAWN_K 32 /* tasks alive at once: within the 64-stack pool, so stacks are reused */

static int bm_nop(void *u) {
    (void)u;
    return 0;
}

/* Per task: spawn k detached tasks, pr_yield() runs them all (each is freed
   right after it finishes), `rounds` times. */
static double pr_spawn_ns(int k_tasks, long rounds) {
    double t0, t1;
    long r;
    int k;
    t0 = bm_now();
    for (r = 0; r < rounds; r++) {
        for (k = 0; k < k_tasks; k++)
            if (pr_go(NULL, bm_nop, NULL, NULL) != PR_OK) bm_die("pr_go failed");
        pr_yield();
    }
    t1 = bm_now();
    return (t1 - t0) / (double)(rounds * k_tasks);
}

static void bench_spawn(void) {
    const long rounds = 50000 / SPAWN_K, iters = 500000;
    double p[REPS], b[REPS], big[5], pm, bmed;
    int r;
    pr_spawn_ns(SPAWN_K, rounds / 10); /* warm-up: fills the stack pool and the scheduler's arrays */
    fctx_make_jump_ns(iters / 10);
    for (r = 0; r < REPS; r++) {
        p[r] = pr_spawn_ns(SPAWN_K, rounds);
        b[r] = fctx_make_jump_ns(iters);
    }
    for (r = 0; r < 5; r++) big[r] = pr_spawn_ns(1000, 10); /* informational: overflows the pool */
    pm = bm_median(p, REPS);
    bmed = bm_median(b, REPS);
    bm_line("spawn_run_free_ns", "ns", "%.2f", pm, "fcontext_make_jump", bmed);
    printf("# spawn: K=%d detached tasks per pr_yield (fastest repetition %.2f ns); with K=1000 (the 64-stack "
           "pool overflows) %.1f ns/task\n",
           SPAWN_K, p[0], bm_median(big, 5));
    bm_target("pristine <= 40 ns", pm <= 40.0);
    pr_sched_destroy();
}

/* ---- 3. RSS per idle task (in a forked child) ---- */
#define RSS_TASKS 100000
#define RSS_FIRST_PART 20000 /* well below the vm.max_map_count cap: all guarded stacks */

static pr_chan *bm_rss_chan;
static long bm_rss_guarded; /* tasks whose stack has a guard page (the rest have a canary) */

/* A "Vm...:" field of /proc/self/status in KiB (VmRSS, VmPTE), or -1. */
static long bm_status_kb(const char *field) {
    char line[256];
    size_t len = strlen(field);
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            kb = strtol(line + len + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

static long bm_map_count(void) {
    char buf[4096];
    long n = 0;
    size_t got, i;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        for (i = 0; i < got; i++) n += buf[i] == '\n';
    fclose(f);
    return n;
}

static int bm_idle_task(void *u) {
    volatile char stack_use[1024];
    int v, i;
    (void)u;
    for (i = 0; i < (int)sizeof stack_use; i++) stack_use[i] = (char)i;
    bm_rss_guarded += pr_self()->coro->guarded;
    pr_chan_recv(bm_rss_chan, &v, PR_FOREVER);
    return stack_use[7];
}

typedef struct bm_rss_result {
    double per_task;      /* bytes of RSS per task, all tasks spawned */
    double per_first;     /* bytes per task, the first RSS_FIRST_PART tasks */
    double per_rest;      /* bytes per task, the tasks after those */
    double pte_per_task;  /* bytes of page tables per task (VmPTE; not part of RSS) */
    long spawned;         /* tasks spawned (RSS_TASKS unless pr_go failed) */
    long rest;            /* tasks spawned after the first RSS_FIRST_PART */
    long guarded;         /* tasks with a guard page; the others have a canary */
    long maps_first;      /* mappings added by the first part */
    long maps_rest;       /* mappings added by the rest */
    int fail_rc;          /* pr_go's error when spawned < RSS_TASKS */
} bm_rss_result;

/* Spawn up to n more idle tasks; returns how many were spawned. */
static long bm_rss_spawn(long n, int *fail_rc) {
    long i;
    int rc;
    for (i = 0; i < n; i++)
        if ((rc = pr_go(NULL, bm_idle_task, NULL, NULL)) != PR_OK) {
            *fail_rc = rc;
            break;
        }
    pr_yield(); /* every new task runs, touches its 1 KiB, and blocks */
    return i;
}

/* Child: spawn the tasks in two parts and report RSS growth per task. */
static void bm_rss_child(int out_fd) {
    bm_rss_result res;
    long kb0, kb1, kb2, pte0, pte2, maps0, maps1, maps2, n1, n2 = 0;
    ssize_t w;
    memset(&res, 0, sizeof res);
    pr__coro_pool_drain();
    if (pr_chan_create(&bm_rss_chan, sizeof(int), 0) != PR_OK) _exit(2);
    pr_yield(); /* the scheduler exists and is warm */
    maps0 = bm_map_count();
    pte0 = bm_status_kb("VmPTE");
    kb0 = bm_status_kb("VmRSS");
    n1 = bm_rss_spawn(RSS_FIRST_PART, &res.fail_rc);
    kb1 = bm_status_kb("VmRSS");
    maps1 = bm_map_count();
    if (n1 == RSS_FIRST_PART) n2 = bm_rss_spawn(RSS_TASKS - RSS_FIRST_PART, &res.fail_rc);
    kb2 = bm_status_kb("VmRSS");
    pte2 = bm_status_kb("VmPTE");
    maps2 = bm_map_count();
    res.spawned = n1 + n2;
    res.rest = n2;
    res.guarded = bm_rss_guarded;
    res.pte_per_task = res.spawned ? (double)(pte2 - pte0) * 1024.0 / (double)res.spawned : 0;
    res.per_task = res.spawned ? (double)(kb2 - kb0) * 1024.0 / (double)res.spawned : 0;
    res.per_first = n1 ? (double)(kb1 - kb0) * 1024.0 / (double)n1 : 0;
    res.per_rest = n2 ? (double)(kb2 - kb1) * 1024.0 / (double)n2 : 0;
    res.maps_first = maps1 - maps0;
    res.maps_rest = maps2 - maps1;
    w = write(out_fd, &res, sizeof res);
    _exit(w == (ssize_t)sizeof res && kb0 > 0 ? 0 : 5);
}

static int bm_rss_once(bm_rss_result *res) {
    int fds[2], st;
    pid_t pid;
    ssize_t n;
    fflush(stdout);
    fflush(stderr);
    if (pipe(fds) != 0) return -1;
    pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(fds[0]);
        bm_rss_child(fds[1]);
    }
    close(fds[1]);
    n = read(fds[0], res, sizeof *res);
    close(fds[0]);
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || n != (ssize_t)sizeof *res)
        return -1;
    return 0;
}

static void bench_rss(void) {
    double all[5], first[5], rest[5], pte[5], pm;
    bm_rss_result res;
    long min_spawned = RSS_TASKS;
    int r, fail_rc = PR_OK;
    for (r = 0; r < 5; r++) {
        if (bm_rss_once(&res) != 0) bm_die("rss child failed");
        all[r] = res.per_task;
        first[r] = res.per_first;
        rest[r] = res.per_rest;
        pte[r] = res.pte_per_task;
        if (res.spawned < min_spawned) {
            min_spawned = res.spawned;
            fail_rc = res.fail_rc;
        }
    }
    pm = bm_median(all, 5);
    bm_line("rss_per_idle_task_bytes", "bytes", "%.0f", pm, "raw_page", 4096.0);
    printf("# rss: %ld tasks got a guard page, %ld a canary; first %d tasks %.0f B/task (+%ld mappings), "
           "next %ld %.0f B/task (+%ld mappings); page tables (VmPTE, not in RSS) %.0f B/task\n",
           res.guarded, res.spawned - res.guarded, RSS_FIRST_PART, bm_median(first, 5), res.maps_first, res.rest,
           bm_median(rest, 5), res.maps_rest, bm_median(pte, 5));
    if (min_spawned < RSS_TASKS)
        printf("# rss: pr_go failed with %s after %ld of %d tasks; the figure is per task spawned\n",
               pr_errname(fail_rc), min_spawned, RSS_TASKS);
    bm_target("pristine <= 4300 bytes with 100000 live tasks", pm <= 4300.0 && min_spawned == RSS_TASKS);
}

/* ---- 5. concurrent tasks: the first degradation, and 1,000,000 live tasks (in a forked child) ---- */
#define TASKS_MAX 1000000
#define TASKS_STACK ((size_t)16 * 1024) /* pr_spawn_opts.stack_size: the smallest allowed */
#define TASKS_BATCH 1000

static long bm_tasks_guarded, bm_tasks_canary, bm_tasks_first_canary = -1, bm_tasks_ran, bm_tasks_done;

static int bm_tasks_body(void *u) {
    int v;
    long i = (long)(intptr_t)u;
    if (pr_self()->coro->guarded) bm_tasks_guarded++;
    else if (bm_tasks_canary++ == 0) bm_tasks_first_canary = i;
    bm_tasks_ran++;
    pr_chan_recv(bm_rss_chan, &v, PR_FOREVER);
    bm_tasks_done++;
    return 0;
}

typedef struct bm_tasks_result {
    long spawned, guarded, canary, first_canary, done;
    long rss_kb, pte_kb, maps, vma_limit;
    double spawn_s, exit_s;
    int fail_rc;
} bm_tasks_result;

/* Child: spawn TASKS_MAX tasks on TASKS_STACK stacks, each blocked on a
   channel, note which got a guard page, read RSS, then close the channel and
   let every task end. */
static void bm_tasks_child(int out_fd) {
    bm_tasks_result res;
    pr_spawn_opts so;
    long kb0, i;
    double t0;
    ssize_t w;
    memset(&res, 0, sizeof res);
    memset(&so, 0, sizeof so);
    so.stack_size = TASKS_STACK;
    if (pr_chan_create(&bm_rss_chan, sizeof(int), 0) != PR_OK) _exit(2);
    pr_yield();
    kb0 = bm_status_kb("VmRSS");
    t0 = bm_now();
    for (i = 0; i < TASKS_MAX; i++) {
        if ((res.fail_rc = pr_go(NULL, bm_tasks_body, (void *)(intptr_t)i, &so)) != PR_OK) break;
        if ((i + 1) % TASKS_BATCH == 0) pr_yield(); /* the batch runs and blocks */
    }
    pr_yield();
    res.spawn_s = (bm_now() - t0) / 1e9;
    res.spawned = i;
    res.guarded = bm_tasks_guarded;
    res.canary = bm_tasks_canary;
    res.first_canary = bm_tasks_first_canary;
    res.rss_kb = bm_status_kb("VmRSS") - kb0;
    res.pte_kb = bm_status_kb("VmPTE");
    res.maps = bm_map_count();
    res.vma_limit = (long)pr__coro_stack_vma_limit();
    t0 = bm_now();
    pr_chan_close(bm_rss_chan); /* every task wakes and returns; its stack is unmapped */
    while (bm_tasks_done < bm_tasks_ran && pr_yield() == PR_OK) {}
    res.exit_s = (bm_now() - t0) / 1e9;
    res.done = bm_tasks_done;
    w = write(out_fd, &res, sizeof res);
    _exit(w == (ssize_t)sizeof res ? 0 : 5);
}

static void bench_tasks(void) {
    bm_tasks_result res;
    int fds[2], st;
    pid_t pid;
    ssize_t n;
    fflush(stdout);
    fflush(stderr);
    if (pipe(fds) != 0) bm_die("pipe");
    if ((pid = fork()) < 0) bm_die("fork");
    if (pid == 0) {
        close(fds[0]);
        bm_tasks_child(fds[1]);
    }
    close(fds[1]);
    memset(&res, 0, sizeof res);
    n = read(fds[0], &res, sizeof res);
    close(fds[0]);
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || n != (ssize_t)sizeof res) {
        printf("metric=concurrent_tasks_max unit=tasks pristine=0\n# tasks: the child died (%s %d)\n",
               WIFSIGNALED(st) ? "signal" : "exit status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        bm_target("1000000 live tasks without an abort", 0);
        return;
    }
    /* the first degradation: the first task whose stack got a canary instead of a guard page */
    printf("metric=concurrent_tasks_max unit=tasks pristine=%ld\n", res.first_canary >= 0 ? res.first_canary : res.spawned);
    printf("# tasks: %ld live tasks, %zu-byte stacks (pr_spawn_opts.stack_size): the first %ld got a guard page, "
           "the other %ld a canary (vm.max_map_count %ld: guards stop at 7/8 of it, two mappings each)\n",
           res.spawned, TASKS_STACK, res.guarded, res.canary, res.vma_limit);
    printf("# tasks: with all %ld alive: RSS +%.0f MiB (%.0f B/task), page tables (VmPTE) %.0f MiB, %ld mappings; "
           "spawned in %.1f s; all ended in %.1f s (%ld of %ld)\n",
           res.spawned, res.rss_kb / 1024.0, res.spawned ? res.rss_kb * 1024.0 / res.spawned : 0.0,
           res.pte_kb / 1024.0, res.maps, res.spawn_s, res.exit_s, res.done, res.spawned);
    if (res.spawned < TASKS_MAX) printf("# tasks: pr_go failed with %s\n", pr_errname(res.fail_rc));
    bm_target("1000000 live tasks without an abort, every one ended", res.spawned == TASKS_MAX && res.done == TASKS_MAX);
}

/* ---- 4. one-byte ping-pong over a socketpair ---- */
static int bm_pp_fd[2];
static long bm_pp_iters;

/* Each side reads into a 64-byte buffer, as a real reader would; getting one
   byte back tells pr_fd_read the socket is drained, so its next read waits for
   the poller instead of trying a read that would say EAGAIN. */
static void bm_pp_read(int fd, char *c, int64_t deadline) {
    char buf[64];
    if (pr_fd_read(fd, buf, sizeof buf, deadline) != 1) bm_die("pr_fd_read failed");
    *c = buf[0];
}

static void bm_pp_write(int fd, const char *c, int64_t deadline) {
    if (pr_fd_write(fd, c, 1, deadline) != 1) bm_die("pr_fd_write failed");
}

static int bm_pp_ping(void *u) {
    int64_t deadline = pr_deadline_in(60000);
    char c = 'p';
    long i;
    (void)u;
    for (i = 0; i < bm_pp_iters; i++) {
        bm_pp_write(bm_pp_fd[0], &c, deadline);
        bm_pp_read(bm_pp_fd[0], &c, deadline);
    }
    return 0;
}

static int bm_pp_pong(void *u) {
    int64_t deadline = pr_deadline_in(60000);
    char c;
    long i;
    (void)u;
    for (i = 0; i < bm_pp_iters; i++) {
        bm_pp_read(bm_pp_fd[1], &c, deadline);
        bm_pp_write(bm_pp_fd[1], &c, deadline);
    }
    return 0;
}

static double pr_pingpong_us(long iters) {
    pr_task *a, *b;
    double t0, t1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, bm_pp_fd) != 0) bm_die("socketpair");
    bm_pp_iters = iters;
    t0 = bm_now();
    if (pr_go(&a, bm_pp_ping, NULL, NULL) != PR_OK || pr_go(&b, bm_pp_pong, NULL, NULL) != PR_OK) bm_die("pr_go");
    if (pr_join(a, NULL, PR_FOREVER) != PR_OK || pr_join(b, NULL, PR_FOREVER) != PR_OK) bm_die("pr_join");
    t1 = bm_now();
    pr_fd_forget(bm_pp_fd[0]);
    pr_fd_forget(bm_pp_fd[1]);
    close(bm_pp_fd[0]);
    close(bm_pp_fd[1]);
    return (t1 - t0) / 1000.0 / (double)iters;
}

static double plain_pingpong_us(long iters) {
    int fd[2];
    char c = 'p';
    double t0, t1;
    long i;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd) != 0) bm_die("socketpair");
    t0 = bm_now();
    for (i = 0; i < iters; i++) {
        if (write(fd[0], &c, 1) != 1 || read(fd[1], &c, 1) != 1 || write(fd[1], &c, 1) != 1 ||
            read(fd[0], &c, 1) != 1)
            bm_die("plain ping-pong I/O failed");
    }
    t1 = bm_now();
    close(fd[0]);
    close(fd[1]);
    return (t1 - t0) / 1000.0 / (double)iters;
}

/* Reference only: the syscalls pristine makes per round trip (write,
   epoll_wait, read, write, epoll_wait, read: the short reads tell pr_fd_read
   the socket is drained, so no read comes back EAGAIN), hand-sequenced in one
   thread with the fds registered the way pristine registers them. The floor
   for any epoll-based scheduler. */
static double epoll_pingpong_us(long iters) {
    int fd[2], ep, k;
    char c = 'p';
    struct epoll_event ev, evs[8];
    double t0, t1;
    long i;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd) != 0) bm_die("socketpair");
    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) bm_die("epoll_create1");
    for (k = 0; k < 2; k++) {
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.fd = fd[k];
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd[k], &ev) != 0) bm_die("epoll_ctl");
    }
    t0 = bm_now();
    for (i = 0; i < iters; i++) {
        if (write(fd[0], &c, 1) != 1 || epoll_wait(ep, evs, 8, -1) < 1 || read(fd[1], &c, 1) != 1 ||
            write(fd[1], &c, 1) != 1 || epoll_wait(ep, evs, 8, -1) < 1 || read(fd[0], &c, 1) != 1)
            bm_die("epoll ping-pong I/O failed");
    }
    t1 = bm_now();
    close(ep);
    close(fd[0]);
    close(fd[1]);
    return (t1 - t0) / 1000.0 / (double)iters;
}

static void bench_pingpong(void) {
    const long iters = 15000;
    double p[REPS_IO], b[REPS_IO], e[REPS_IO], pm, bmed, em;
    int r;
    pr_pingpong_us(iters / 10);
    plain_pingpong_us(iters / 10);
    epoll_pingpong_us(iters / 10);
    for (r = 0; r < REPS_IO; r++) {
        p[r] = pr_pingpong_us(iters);
        b[r] = plain_pingpong_us(iters);
        e[r] = epoll_pingpong_us(iters);
    }
    pr_sched_destroy();
    pm = bm_median(p, REPS_IO);
    bmed = bm_median(b, REPS_IO);
    em = bm_median(e, REPS_IO);
    bm_line("pingpong_1byte_us", "us", "%.3f", pm, "plain_syscalls", bmed);
    printf("# pingpong: syscalls per round trip: pristine 6 (2 write, 2 read, 2 epoll_wait), "
           "baseline 4; the same 6 hand-sequenced without tasks: %.3f us (ratio %.3f; pristine/that %.3f)\n",
           em, em / bmed, pm / em);
    bm_target("ratio <= 1.3", pm / bmed <= 1.3);
}
#endif /* !PRISTINE_NO_FP_SAVE */

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
#ifndef PRISTINE_NO_FP_SAVE
    if (argc > 1 && strcmp(argv[1], "tasks") == 0) { /* build/bench tasks: only concurrent_tasks_max */
        bench_tasks();
        return 0;
    }
#endif
    (void)argc;
    (void)argv;
#ifdef PRISTINE_NO_FP_SAVE
    bench_switch("switch_roundtrip_nofp_ns");
#else
    bench_switch("switch_roundtrip_ns");
    printf("# switch_roundtrip_nofp_ns: see build/bench_nofp (built with -DPRISTINE_NO_FP_SAVE)\n");
    bench_spawn();
    bench_rss();
    bench_pingpong();
    bench_tasks();
#endif
    return 0;
}
