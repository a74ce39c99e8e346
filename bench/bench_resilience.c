/* bench_resilience.c - what resilience costs and how fast a retry recovers.

   cc -O2 -std=c11 bench/bench_resilience.c -o build/bench_resilience -lbearssl -lpthread
   build/bench_resilience          (from the repository root; `make bench` runs it)

   resilience_overhead_ns: the work added to one admitted request by the
     retry module: a circuit-breaker admission and its success record, a
     counting-semaphore acquire and release, a backoff-window check and one
     backoff delay (with a random draw), against a bare call of an empty
     function that cannot be inlined, in the same run. Median of 7 runs of
     2,000,000 iterations each. Target: pristine <= 100 ns.
   http_retry_recovery_ms: a GET of a route scripted 503, 503, 200 with
     retry-after-ms: 1 (tools/testserver.c's /seq, on 127.0.0.1 in a thread
     of this process), through pr_http_client with its default policy,
     against `curl --retry 2 --retry-delay 0` on the same route. Median of 5
     runs; the attempts each side made are printed as a # line.

   Output: metric=<name> unit=<unit> pristine=<v> baseline=<name>:<v> ratio=<p/b> */
#define _GNU_SOURCE 1
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#include "../tools/testserver.c"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double br_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int br_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double br_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, br_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- resilience_overhead_ns ---- */

static volatile long br_sink;

__attribute__((noinline)) static void br_bare(long i) { br_sink += i; }

#define BR_ITERS 2000000L

static double br_overhead_once(pr_breaker *b, pr_sem *s, pr_backoff_window *w, const pr_backoff *bo) {
    double t0 = br_now(), acc = 0;
    long i;
    for (i = 0; i < BR_ITERS; i++) {
        if (pr_breaker_admit(b) != PR_OK) abort();
        if (pr_sem_try_acquire(s) != PR_OK) abort();
        if (pr_backoff_window_remaining(w, "upstream") != 0) abort();
        acc += pr_backoff_delay(bo, (int)(i & 7), 0, pr_random());
        pr_sem_release(s);
        pr_breaker_record(b, PR_BREAKER_SUCCESS);
    }
    br_sink += (long)acc;
    return (br_now() - t0) * 1e9 / (double)BR_ITERS;
}

static double br_bare_once(void) {
    double t0 = br_now();
    long i;
    for (i = 0; i < BR_ITERS; i++) br_bare(i);
    return (br_now() - t0) * 1e9 / (double)BR_ITERS;
}

static void br_overhead(void) {
    pr_breaker *b;
    pr_sem *s;
    pr_backoff_window *w;
    pr_backoff bo = PR_BACKOFF_HTTP;
    double mine[7], base[7];
    int k;
    if (pr_breaker_create(&b, "upstream", NULL) || pr_sem_create(&s, 100) || pr_backoff_window_create(&w)) abort();
    pr_backoff_window_set(w, "other", 1000); /* a window table that is not empty */
    for (k = 0; k < 7; k++) {
        base[k] = br_bare_once();
        mine[k] = br_overhead_once(b, s, w, &bo);
    }
    printf("metric=resilience_overhead_ns unit=ns pristine=%.1f baseline=bare_call:%.1f ratio=%.2f\n",
           br_median(mine, 7), br_median(base, 7), br_median(mine, 7) / br_median(base, 7));
    printf("# resilience_overhead_ns target <= 100 ns per admitted request (breaker admit + record, semaphore "
           "acquire + release, window check, one backoff delay)\n");
    pr_backoff_window_destroy(w);
    pr_sem_destroy(s);
    pr_breaker_destroy(b);
}

/* ---- http_retry_recovery_ms ---- */

static volatile int br_port;

static void *br_server_thread(void *arg) {
    ts_server *s = NULL;
    (void)arg;
    if (ts_start(&s, &(ts_opts){ .max_lifetime_ms = 120000 }) != PR_OK) {
        br_port = -1;
        return NULL;
    }
    __atomic_store_n(&br_port, (int)ts_port(s), __ATOMIC_RELEASE);
    ts_wait(s, PR_FOREVER);
    ts_stop(s);
    pr_sched_destroy();
    return NULL;
}

/* Attempts from the final body "seq N status C": N + 1. */
static int br_attempts(const char *body) {
    int n = -1, st = 0;
    return sscanf(body, "seq %d status %d", &n, &st) == 2 && st == 200 ? n + 1 : -1;
}

static double br_pristine_once(int port, int round, int *attempts) {
    pr_http_client *c;
    pr_http_response *r = NULL;
    char url[160], body[64];
    double t0;
    ptrdiff_t k;
    size_t len = 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/seq?key=p%d&codes=503,503,200&retry_after_ms=1", port, round);
    if (pr_http_client_create(&c, &(pr_http_client_opts){ .ignore_env = 1 }, NULL) != PR_OK) abort();
    t0 = br_now();
    if (pr_http_client_get(c, &r, url, NULL, pr_deadline_in(30000)) != PR_OK) abort();
    while ((k = pr_http_read(r, body + len, sizeof body - 1 - len, pr_deadline_in(5000))) > 0) len += (size_t)k;
    body[len] = 0;
    t0 = br_now() - t0;
    *attempts = br_attempts(body);
    pr_http_response_destroy(r);
    pr_http_client_destroy(c);
    return t0 * 1000;
}

static double br_curl_once(int port, int round, int *attempts) {
    char url[160], body[256];
    const char *out = "build/bench-curl-retry.txt"; /* curl rewrites a file on each retry */
    int status;
    double t0;
    size_t len;
    FILE *f;
    pid_t pid;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/seq?key=c%d&codes=503,503,200&retry_after_ms=1", port, round);
    t0 = br_now();
    pid = fork();
    if (pid == 0) {
        execlp("curl", "curl", "-s", "--retry", "2", "--retry-delay", "0", "-o", out, url, (char *)NULL);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    t0 = br_now() - t0;
    *attempts = -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && (f = fopen(out, "r")) != NULL) {
        len = fread(body, 1, sizeof body - 1, f);
        body[len] = 0;
        fclose(f);
        *attempts = br_attempts(body);
    }
    remove(out);
    return t0 * 1000;
}

static void br_recovery(void) {
    pthread_t th;
    double mine[5], theirs[5];
    int k, am = 0, ac = 0, port;
    if (pthread_create(&th, NULL, br_server_thread, NULL) != 0) abort();
    while ((port = __atomic_load_n(&br_port, __ATOMIC_ACQUIRE)) == 0) usleep(1000);
    if (port < 0) {
        printf("# http_retry_recovery: the test server did not start\n");
        return;
    }
    for (k = 0; k < 5; k++) {
        mine[k] = br_pristine_once(port, k, &am);
        theirs[k] = br_curl_once(port, k, &ac);
    }
    printf("metric=http_retry_recovery_ms unit=ms pristine=%.1f baseline=curl_retry2:%.1f ratio=%.4f\n",
           br_median(mine, 5), br_median(theirs, 5), br_median(mine, 5) / br_median(theirs, 5));
    printf("# http_retry_recovery attempts pristine=%d curl=%d (503, 503, 200 with retry-after-ms: 1; "
           "curl --retry-delay 0 means its own backoff, 1 s then 2 s)\n", am, ac);
    pthread_detach(th); /* the server stops itself; the process ends first */
}

int main(void) {
    br_overhead();
    br_recovery();
    pr_sched_destroy();
    return 0;
}
