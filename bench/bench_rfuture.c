/* bench_rfuture.c - remote futures and telemetry.

   cc -O2 -std=c11 bench/bench_rfuture.c -o build/bench_rfuture -lbearssl -lpthread
   build/bench_rfuture          (from the repository root; `make bench` runs it)

   rfuture_polls_per_s: 10,000 remote futures started at once, each
     resolving on its third poll (the retrieve route of build/testserver,
     tools/testserver.c built standalone, in a child process on 127.0.0.1), polled through one pr_rfuture_poller
     (max_polls 100); polls per second over the whole run. Baseline: wrk
     -t1 -c100 -d3s POSTing the same route in the same run. Target: ratio
     >= 0.8. 5 rounds, the two sides alternating which goes first; the
     ratio is the median of the rounds' ratios. CPU per request of both
     sides (getrusage) is printed beside.
   rfuture_rss_per_pending_bytes: the growth of this process's VmRSS per
     pending future, with 10,000 pending (the server holds every poll, so
     100 are polling and the rest wait for a slot). Target: <= 12 KiB.
   telemetry_enqueue_ns: one pr_reporter_log with the reporter running,
     timed in runs of 5,000 events the queue accepts (the reporter sends
     them between runs); baseline: a malloc + free of the same event size.
     Target: pristine <= 200 ns.

   Output: metric=<name> unit=<unit> pristine=<v> baseline=<name>:<v> ratio=<p/b> */
#define _GNU_SOURCE 1
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#include "bench_server.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double bf_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bf_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double bf_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bf_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static long bf_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

enum { BF_N = 10000 };

/* Start BF_N futures against port; returns the poller (the futures in fs). */
static pr_rfuture_poller *bf_start_all(pr_http_client *c, int port, pr_future **fs, int run) {
    pr_rfuture_poller *p = NULL;
    char base[64], id[32];
    int i;
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    if (pr_rfuture_poller_create(&p, c, &(pr_rfuture_poller_opts){ .base_url = base }, NULL) != PR_OK) abort();
    for (i = 0; i < BF_N; i++) {
        snprintf(id, sizeof id, "b%d-%d", run, i);
        if (pr_rfuture_start(&fs[i], p, id, NULL) != PR_OK) abort();
    }
    return p;
}

/* user and system CPU seconds of this process (who = RUSAGE_SELF) or of its
   waited-for children (RUSAGE_CHILDREN) */
static void bf_cpu(int who, double *user, double *sys) {
    struct rusage ru;
    getrusage(who, &ru);
    *user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    *sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

enum { BF_ROUNDS = 5 };

static double bf_user_us[BF_ROUNDS], bf_sys_us[BF_ROUNDS], bf_wrk_user_us[BF_ROUNDS], bf_wrk_sys_us[BF_ROUNDS];

static double bf_pristine_polls(int port, int run) {
    static pr_future *fs[BF_N];
    double u0, s0, u1, s1;
    pr_http_client *c;
    pr_rfuture_poller *p;
    double t0, dt;
    int i;
    bf_cpu(RUSAGE_SELF, &u0, &s0);
    if (pr_http_client_create(&c, &(pr_http_client_opts){ .ignore_env = 1, .pool_max = 128 }, NULL) != PR_OK) abort();
    t0 = bf_now();
    p = bf_start_all(c, port, fs, run);
    if (pr_future_await_all(fs, BF_N, PR_AWAIT_FAIL_FAST, NULL, pr_deadline_in(120000)) != PR_OK) {
        printf("# rfuture_polls_per_s: a future failed\n");
        exit(1);
    }
    dt = bf_now() - t0;
    bf_cpu(RUSAGE_SELF, &u1, &s1);
    bf_user_us[run] = (u1 - u0) * 1e6 / (3.0 * BF_N);
    bf_sys_us[run] = (s1 - s0) * 1e6 / (3.0 * BF_N);
    for (i = 0; i < BF_N; i++) pr_future_destroy(fs[i]);
    pr_rfuture_poller_destroy(p);
    pr_sleep(pr_deadline_in(5));
    pr_http_client_destroy(c);
    return 3.0 * BF_N / dt;
}

static double bf_wrk(int port, int run) {
    char cmd[512], line[256];
    double u0, s0, u1, s1;
    const char *lua = "build/bench-rfuture-post.lua";
    double rps = -1;
    FILE *f = fopen(lua, "w");
    if (!f) return -1;
    fprintf(f, "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
               "wrk.body = '{\"request_id\":\"wrk\",\"allow_metadata_only\":true}'\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "wrk -t1 -c100 -d3s -s %s http://127.0.0.1:%d/api/v1/retrieve_future 2>&1", lua, port);
    bf_cpu(RUSAGE_CHILDREN, &u0, &s0);
    if (!(f = popen(cmd, "r"))) return -1;
    while (fgets(line, sizeof line, f)) sscanf(line, "Requests/sec: %lf", &rps);
    pclose(f);
    bf_cpu(RUSAGE_CHILDREN, &u1, &s1);
    remove(lua);
    if (rps > 0) {
        bf_wrk_user_us[run] = (u1 - u0) * 1e6 / (rps * 3.0);
        bf_wrk_sys_us[run] = (s1 - s0) * 1e6 / (rps * 3.0);
    }
    return rps;
}

static void bf_polls(void) {
    double mine[BF_ROUNDS], theirs[BF_ROUNDS], ratio[BF_ROUNDS];
    int k;
    pid_t pid;
    int port = bf_server_futures(3, 0, &pid);
    if (port <= 0) {
        printf("# rfuture_polls_per_s: the server did not start\n");
        return;
    }
    for (k = 0; k < BF_ROUNDS; k++) { /* alternate which side goes first */
        if (k % 2) theirs[k] = bf_wrk(port, k);
        mine[k] = bf_pristine_polls(port, k);
        if (!(k % 2)) theirs[k] = bf_wrk(port, k);
        ratio[k] = mine[k] / theirs[k];
        printf("# rfuture_polls_per_s round %d: pristine %.0f wrk %.0f ratio %.2f\n", k + 1, mine[k], theirs[k],
               ratio[k]);
    }
    bf_server_stop(pid);
    printf("metric=rfuture_polls_per_s unit=polls/s pristine=%.0f baseline=wrk_c100:%.0f ratio=%.2f\n",
           bf_median(mine, BF_ROUNDS), bf_median(theirs, BF_ROUNDS), bf_median(ratio, BF_ROUNDS));
    printf("# rfuture_polls_per_s: CPU per request, user + system: pristine %.2f + %.2f us, wrk %.2f + %.2f us\n",
           bf_median(bf_user_us, BF_ROUNDS), bf_median(bf_sys_us, BF_ROUNDS), bf_median(bf_wrk_user_us, BF_ROUNDS),
           bf_median(bf_wrk_sys_us, BF_ROUNDS));
    printf("# rfuture_polls_per_s: 10,000 futures x 3 polls, max_polls 100; wrk -t1 -c100 -d3s POST; ratio = median "
           "of the rounds' ratios; target >= 0.8: %s\n", bf_median(ratio, BF_ROUNDS) >= 0.8 ? "met" : "missed");
}

static void bf_rss(void) {
    static pr_future *fs[BF_N];
    pr_http_client *c;
    pr_rfuture_poller *p;
    long before, after;
    pid_t pid;
    int i, port = bf_server_futures(1 << 30, 600000, &pid); /* never resolves; every poll is held */
    if (port <= 0) {
        printf("# rfuture_rss_per_pending_bytes: the server did not start\n");
        return;
    }
    if (pr_http_client_create(&c, &(pr_http_client_opts){ .ignore_env = 1, .pool_max = 128 }, NULL) != PR_OK) abort();
    pr_sleep(pr_deadline_in(50));
    before = bf_rss_kb();
    p = bf_start_all(c, port, fs, 9);
    pr_sleep(pr_deadline_in(2000)); /* every future has run: 100 polling, the rest waiting for a slot */
    after = bf_rss_kb();
    printf("metric=rfuture_rss_per_pending_bytes unit=bytes pristine=%.0f baseline=target:12288 ratio=%.2f\n",
           (double)(after - before) * 1024.0 / BF_N, (double)(after - before) * 1024.0 / BF_N / 12288.0);
    printf("# rfuture_rss_per_pending_bytes: VmRSS %ld kB -> %ld kB with 10,000 pending (%ld polls in flight)\n", before,
           after, (long)p->active);
    for (i = 0; i < BF_N; i++) pr_future_cancel(fs[i]);
    pr_sleep(pr_deadline_in(50));
    for (i = 0; i < BF_N; i++) pr_future_destroy(fs[i]);
    pr_rfuture_poller_destroy(p);
    pr_http_client_destroy(c);
    bf_server_stop(pid);
}

static int bf_want(int argc, char **argv, const char *name) {
    int i;
    for (i = 1; i < argc; i++)
        if (!strcmp(argv[i], name)) return 1;
    return 0;
}

static volatile long bf_sink;

static void bf_enqueue(void) {
    pr_http_client *c;
    pr_reporter *r;
    char url[96];
    double mine[9], base[9];
    pid_t pid;
    int k, i, port = bf_server_futures(3, 0, &pid);
    if (port <= 0) return;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/telemetry", port);
    if (pr_http_client_create(&c, &(pr_http_client_opts){ .ignore_env = 1 }, NULL) != PR_OK) abort();
    if (pr_reporter_start(&r, &(pr_reporter_opts){ .client = c, .url = url, .session_id = "bench", .enabled = 1,
                                                  .batch_size = 10000 }, NULL) != PR_OK || !r)
        abort();
    for (k = 0; k < 9; k++) {
        double t0 = bf_now();
        for (i = 0; i < 5000; i++)
            if (!pr_reporter_log(r, "bench.event", NULL, PR_SEVERITY_INFO)) abort();
        mine[k] = (bf_now() - t0) * 1e9 / 5000;
        t0 = bf_now();
        for (i = 0; i < 5000; i++) {
            void *m = malloc(sizeof(void *) * 16 + 12);
            bf_sink += (long)(uintptr_t)m;
            free(m);
        }
        base[k] = (bf_now() - t0) * 1e9 / 5000;
        if (pr_reporter_flush(r, pr_deadline_in(10000)) != PR_OK) abort(); /* not timed */
    }
    printf("metric=telemetry_enqueue_ns unit=ns pristine=%.1f baseline=malloc_free:%.1f ratio=%.2f\n",
           bf_median(mine, 9), bf_median(base, 9), bf_median(mine, 9) / bf_median(base, 9));
    printf("# telemetry_enqueue_ns: pr_reporter_log with the reporter running; target <= 200 ns\n");
    pr_reporter_stop(r, pr_deadline_in(10000));
    pr_reporter_destroy(r);
    pr_http_client_destroy(c);
    bf_server_stop(pid);
}

/* build/bench_rfuture [rss|enqueue|polls ...]: the named metrics, or all.
   The RSS figure runs first so no earlier run's freed memory hides growth. */
int main(int argc, char **argv) {
    int i, all = argc < 2;
    signal(SIGPIPE, SIG_IGN);
    for (i = 1; i < argc; i++)
        if (strcmp(argv[i], "rss") && strcmp(argv[i], "enqueue") && strcmp(argv[i], "polls")) {
            fprintf(stderr, "usage: %s [rss|enqueue|polls ...]\n", argv[0]);
            return 2;
        }
#define BF_WANT(name) (all || bf_want(argc, argv, name))
    if (BF_WANT("rss")) bf_rss();
    if (BF_WANT("enqueue")) bf_enqueue();
    if (BF_WANT("polls")) bf_polls();
    pr_sched_destroy();
    return 0;
}
