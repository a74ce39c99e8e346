/* bench_streams.c - many event streams in one thread.

   cc -O2 -std=c11 bench/bench_streams.c -o build/bench_streams -lbearssl -lpthread
   build/bench_streams [N] [tls]   (from the repository root; `make bench` runs
                                    it plain with N = 10000, then over TLS)

   sse_concurrent_streams: N streams at once in this process and this one
     thread, each a task running pr_sse_open / pr_sse_next on one shared
     pr_http_client, against build/testserver in a child process: each stream
     is a slow periodic one (BST_EVENTS events, one every BST_INTERVAL_MS, an
     id on each). Every stream must receive every event, in order. The soft
     RLIMIT_NOFILE is raised to the hard limit first (the server inherits it).
     Streams are opened in waves of at most BST_WAVE connecting at once.
   rss_per_stream_bytes: (peak resident set while the streams run - resident
     set before the first one) / N: everything a stream costs: its task stack
     (the default pooled 64 KiB stack; only touched pages count), the socket
     and HTTP response with its read buffer, the decoder, the pr_sse itself,
     and for TLS the BearSSL engine and its (half-duplex) record buffer. Each
     stream stays open after its last event until every stream has read all
     of its own, so all N are alive at the peak however slowly the
     handshakes go. Targets: <= 16 KiB for a plaintext stream, <= 24 KiB
     over TLS.

   Output: metric=<name> unit=<unit> pristine=<v> ... */
#define _GNU_SOURCE 1
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#include "bench_server.h"
#include <sys/resource.h>
#include <time.h>

#define BST_EVENTS 10
#define BST_INTERVAL_MS 1000
#define BST_WAVE 256
#define BST_TLS_DIR "build/tls-fixtures"

static struct {
    pr_http_client *client;
    pr_sem *hold; /* streams wait here, still open, until every stream has read */
    char url[200];
    long opened, failed, complete, read_done, done, events, disorder, live, max_live;
    double first_at, last_at;
} bst;

static double bst_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long bst_rss(void) {
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

static int bst_stream(void *arg) {
    pr_sse_stream_opts o;
    pr_sse *s = NULL;
    pr_sse_event ev;
    pr_err_info e;
    long n = 0;
    int rc;
    (void)arg;
    memset(&o, 0, sizeof o);
    o.client = bst.client;
    rc = pr_sse_open(&s, bst.url, &o, &e, pr_deadline_in(120000));
    if (rc == PR_OK) {
        bst.opened++;
        if (++bst.live > bst.max_live) bst.max_live = bst.live;
        while (n < BST_EVENTS && (rc = pr_sse_next(s, &ev, pr_deadline_in(60000))) == PR_OK) {
            if (atol(ev.last_id) != n + 1) bst.disorder++;
            n++;
            bst.events++;
            bst.last_at = bst_now();
            if (bst.first_at == 0) bst.first_at = bst.last_at;
        }
    }
    if (n == BST_EVENTS) bst.complete++;
    else if (bst.failed++ < 5)
        fprintf(stderr, "bench_streams: a stream ended after %ld events: %s: %s\n", n, pr_strerror(rc), e.msg);
    bst.read_done++;
    (void)pr_sem_acquire(bst.hold, pr_deadline_in(600000)); /* stay open until all have read */
    if (s) bst.live--;
    pr_sse_destroy(s);
    bst.done++;
    return 0;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000, spawned = 0, base, peak = 0, r, all_live = -1;
    int tls = argc > 2 && strcmp(argv[2], "tls") == 0, port;
    const char *extra[4] = { NULL };
    pr_http_client_opts co;
    struct rlimit rl;
    pid_t pid;
    double t0, dt, per;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (long)rl.rlim_cur < n + 64) {
        printf("# sse_concurrent_streams: RLIMIT_NOFILE is %ld; running %ld streams instead of %ld\n",
               (long)rl.rlim_cur, (long)rl.rlim_cur - 64, n);
        n = (long)rl.rlim_cur - 64;
    }
    if (tls) {
        if (system("sh tests/fixtures/tls_mkcerts.sh " BST_TLS_DIR " >/dev/null") != 0) {
            printf("# sse_concurrent_streams: tests/fixtures/tls_mkcerts.sh failed\n");
            return 1;
        }
        extra[0] = "--tls";
        extra[1] = BST_TLS_DIR "/goodec.crt";
        extra[2] = BST_TLS_DIR "/goodec.key";
    }
    if ((port = bf_server_args(&pid, extra)) <= 0) {
        printf("# sse_concurrent_streams: the server did not start\n");
        return 1;
    }
    snprintf(bst.url, sizeof bst.url, "%s://%s:%d/sse?events=%d&id=1&interval_ms=%d", tls ? "https" : "http",
             tls ? "localhost" : "127.0.0.1", port, BST_EVENTS, BST_INTERVAL_MS);
    memset(&co, 0, sizeof co);
    co.tls.ca_file = BST_TLS_DIR "/ca.crt";
    if (pr_http_client_create(&bst.client, tls ? &co : NULL, NULL) != PR_OK) return 1;
    if (pr_sem_create(&bst.hold, 1) != PR_OK || pr_sem_try_acquire(bst.hold) != PR_OK) return 1; /* 0 permits */
    base = bst_rss();
    t0 = bst_now();
    while (bst.done < n) {
        while (spawned < n && spawned - bst.opened - bst.failed < BST_WAVE) {
            if (pr_go(NULL, bst_stream, NULL, NULL) != PR_OK) {
                fprintf(stderr, "bench_streams: pr_go failed\n");
                bst.done++, bst.failed++;
            }
            spawned++;
        }
        pr_sleep(pr_deadline_in(spawned < n ? 2 : 50));
        if ((r = bst_rss()) > peak) peak = r;
        if (bst.read_done == n && all_live < 0) {
            all_live = bst.live; /* every stream has read and is still open */
            for (r = 0; r < n; r++) pr_sem_release(bst.hold);
        }
    }
    dt = bst.last_at - bst.first_at;
    pr_http_client_destroy(bst.client);
    pr_sem_destroy(bst.hold);
    bf_server_stop(pid);
    printf("# sse_concurrent_streams (%s): %ld streams, %ld complete (all %d events in order), %ld failed, "
           "%ld out of order, %.1f s in all; %ld open at once at the peak (all N: each stays open until every "
           "stream has read its events)\n",
           tls ? "https" : "http", n, bst.complete, BST_EVENTS, bst.failed, bst.disorder, bst_now() - t0, all_live);
    printf("metric=sse_concurrent_streams%s unit=events/s pristine=%.0f streams=%ld every_event=%s\n",
           tls ? "_tls" : "", dt > 0 ? (double)bst.events / dt : 0.0, n,
           bst.complete == n && !bst.disorder ? "yes" : "no");
    per = (double)(peak - base) / (double)n;
    printf("metric=rss_per_stream_bytes%s unit=bytes pristine=%.0f\n", tls ? "_tls" : "", per);
    printf("# target: every stream gets every event, all open at once, rss_per_stream_bytes%s <= %d: %s\n",
           tls ? "_tls" : "", tls ? 24576 : 16384,
           bst.complete == n && !bst.disorder && all_live == n && per <= (tls ? 24576 : 16384) ? "met" : "missed");
    return 0;
}
