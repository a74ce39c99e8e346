/* bench_sse.c - one event stream's throughput.

   cc -O2 -std=c11 bench/bench_sse.c -o build/bench_sse -lbearssl -lpthread
   build/bench_sse          (from the repository root; `make bench` runs it)

   sse_events_per_s: one stream of 100,000 events of about 55 bytes each
     ("id: N", three data lines), from build/testserver on 127.0.0.1 in a
     child process (1,024 events per write), read with pr_sse_open /
     pr_sse_next; events per second from the open to the last event, every
     id checked in order. Baseline: the npm package eventsource (Node's
     de-facto EventSource) on the same URL in the same run (installed into
     build/npm when missing). Reference: `curl -s -N URL | wc -l`, bytes
     only. 5 rounds, the sides alternating which goes first; the ratio is
     the median of the rounds' ratios. Target: ratio >= 5.

   Output: metric=<name> unit=<unit> pristine=<v> baseline=<name>:<v> ratio=<p/b> */
#define _GNU_SOURCE 1
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#include "bench_server.h"
#include <time.h>

#define BS_EVENTS 100000
#define BS_ROUNDS 5
#define BS_NPM "build/npm"

static double bs_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bs_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double bs_median(const double *v, int n) {
    double t[BS_ROUNDS];
    memcpy(t, v, sizeof(double) * (size_t)n);
    qsort(t, (size_t)n, sizeof *t, bs_cmp);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static void bs_url(char *u, size_t cap, int port) {
    snprintf(u, cap, "http://127.0.0.1:%d/sse?events=%d&id=1&lines=3&batch=1024", port, BS_EVENTS);
}

static double bs_pristine(int port) {
    char url[160];
    pr_sse *s;
    pr_sse_event ev;
    double t0 = bs_now();
    long n = 0;
    bs_url(url, sizeof url, port);
    if (pr_sse_open(&s, url, NULL, NULL, pr_deadline_in(30000)) != PR_OK) return -1;
    while (n < BS_EVENTS && pr_sse_next(s, &ev, pr_deadline_in(30000)) == PR_OK) {
        if (atol(ev.last_id) != n + 1) break; /* in order, none lost */
        n++;
    }
    pr_sse_destroy(s);
    return n == BS_EVENTS ? BS_EVENTS / (bs_now() - t0) : -1;
}

static double bs_node(int port) {
    char url[160], cmd[400], line[256];
    double rate = -1;
    FILE *f;
    bs_url(url, sizeof url, port);
    snprintf(cmd, sizeof cmd, "node bench/es_bench.mjs %s '%s' %d 2>&1", BS_NPM, url, BS_EVENTS);
    if (!(f = popen(cmd, "r"))) return -1;
    while (fgets(line, sizeof line, f)) sscanf(line, "events_per_s=%lf", &rate);
    pclose(f);
    return rate;
}

static double bs_curl(int port) {
    char url[160], cmd[400], line[64];
    double t0 = bs_now(), dt;
    long lines = 0;
    FILE *f;
    bs_url(url, sizeof url, port);
    snprintf(cmd, sizeof cmd, "curl -s -N '%s' | wc -l", url);
    if (!(f = popen(cmd, "r"))) return -1;
    if (fgets(line, sizeof line, f)) lines = atol(line);
    pclose(f);
    dt = bs_now() - t0;
    return lines >= 5L * BS_EVENTS ? BS_EVENTS / dt : -1; /* 5 lines per event */
}

int main(void) {
    double mine[BS_ROUNDS], theirs[BS_ROUNDS], ratio[BS_ROUNDS], curl[BS_ROUNDS];
    pid_t pid;
    int k, port;
    if (access(BS_NPM "/node_modules/eventsource/dist/index.js", R_OK) != 0 &&
        system("mkdir -p " BS_NPM " && npm install --silent --no-audit --no-fund --prefix " BS_NPM
               " eventsource@5 >build/npm_install_eventsource.log 2>&1") != 0)
        fprintf(stderr, "bench_sse: npm install failed (see build/npm_install_eventsource.log)\n");
    if ((port = bf_server_args(&pid, NULL)) <= 0) {
        printf("# sse_events_per_s: the server did not start\n");
        return 1;
    }
    for (k = 0; k < BS_ROUNDS; k++) {
        if (k % 2) theirs[k] = bs_node(port);
        mine[k] = bs_pristine(port);
        if (!(k % 2)) theirs[k] = bs_node(port);
        curl[k] = bs_curl(port);
        ratio[k] = mine[k] > 0 && theirs[k] > 0 ? mine[k] / theirs[k] : -1;
        printf("# sse_events_per_s round %d: pristine %.0f eventsource %.0f curl %.0f ratio %.2f\n", k + 1, mine[k],
               theirs[k], curl[k], ratio[k]);
    }
    bf_server_stop(pid);
    printf("metric=sse_events_per_s unit=events/s pristine=%.0f baseline=npm_eventsource:%.0f ratio=%.2f\n",
           bs_median(mine, BS_ROUNDS), bs_median(theirs, BS_ROUNDS), bs_median(ratio, BS_ROUNDS));
    printf("# sse_events_per_s: bytes-only reference curl -N | wc -l: %.0f events/s; target ratio >= 5: %s\n",
           bs_median(curl, BS_ROUNDS), bs_median(ratio, BS_ROUNDS) >= 5 ? "met" : "missed");
    return 0;
}
