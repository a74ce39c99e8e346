// build: cc -O2 -std=c11 bench/bench_http.c -o build/bench_http -lbearssl -lpthread   (run from the repo root)
/* bench_http.c - pristine's HTTP client against nginx, side by side with
   curl and wrk in the same run (bench/README.md has the targets).

   Starts its own nginx (tests/nginx/nginx_run.h, prefix build/nginx-bench,
   pinned to CPU 0; this program and the tools it runs are pinned to CPU 1
   when the machine has two CPUs: "cross" placement), makes a 1 GiB file
   (deleted at the end) and measures, median of 5 (after one warm-up):

     http_stream_mbps         1 GiB over plain HTTP: pristine (pr_tcp_connect
                              + pr_http_exchange + pr_http_read, 64 KiB buffer)
                              vs curl -s -o /dev/null; plus a blocking-socket
                              C reader (the floor)
     https_stream_mbps        the same over TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256
     http_small_req_per_s_c1  keep-alive GETs of a 128-byte file through
                              pr_http_client_get (pool, dead check), one
                              task, vs wrk -t1 -c1 (pr_http_exchange on a
                              raw connection printed too)
     http_small_req_per_s_c64 the same with 64 tasks vs wrk -t1 -c64

   Output: metric=<name> unit=<unit> pristine=<v> baseline=<name>:<v> ratio=<p/b>
   followed by "# target: ... met|missed" and "#" lines with more figures.
   BENCH_SECONDS (default 3) sets the length of each req/s run.
   BENCH_PROFILE=http|https only runs three pristine downloads (for perf). */
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#include "../tests/nginx/nginx_run.h"

#include <sched.h>
#include <sys/resource.h>

#define BH_PREFIX "build/nginx-bench"
#define BH_TLS_DIR "build/tls-fixtures"
#define BH_BIG ((unsigned long long)1 << 30)
#define BH_ROUNDS 5
#define BH_STREAM_ROUNDS 9

static ngxr bh_srv;
static unsigned char bh_buf[1 << 16];
static int bh_seconds = 3;

static double bh_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bh_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double bh_median(double *v, int n) {
    double s[16];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, bh_cmp);
    return s[n / 2];
}

/* ---- CPU used by processes other than nginx, us and our children ---- */

static unsigned long long bh_proc_ticks(pid_t pid) {
    char path[64], line[1024], *p;
    unsigned long long ut = 0, st = 0;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r"))) return 0;
    if (!fgets(line, sizeof line, f)) line[0] = '\0';
    fclose(f);
    if (!(p = strrchr(line, ')'))) return 0;
    /* fields after ')': state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return 0;
    return ut + st;
}

static void bh_cpu_sample(unsigned long long *busy, unsigned long long *total, unsigned long long *ours) {
    unsigned long long v[10] = { 0 };
    struct rusage ru;
    long hz = sysconf(_SC_CLK_TCK);
    FILE *f = fopen("/proc/stat", "r");
    int i;
    *busy = *total = 0;
    if (f) {
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                   &v[7]) != 8)
            memset(v, 0, sizeof v);
        fclose(f);
    }
    for (i = 0; i < 8; i++) *total += v[i];
    *busy = *total - v[3] - v[4];
    *ours = bh_proc_ticks(getpid()) + bh_proc_ticks(bh_srv.pid);
    if (getrusage(RUSAGE_CHILDREN, &ru) == 0)
        *ours += (unsigned long long)((ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * hz
                                      + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * hz / 1000000);
}

static unsigned long long bh_c0[3];
static double bh_other_max; /* worst share of machine CPU used by others during a sample, % */

static void bh_gate_begin(void) { bh_cpu_sample(&bh_c0[0], &bh_c0[1], &bh_c0[2]); }

static void bh_gate_end(void) {
    unsigned long long b, t, o;
    double other;
    bh_cpu_sample(&b, &t, &o);
    if (t <= bh_c0[1]) return;
    other = ((double)(b - bh_c0[0]) - (double)(o - bh_c0[2])) * 100.0 / (double)(t - bh_c0[1]);
    if (other > bh_other_max) bh_other_max = other;
}

/* ---- clients ---- */

static int bh_url(pr_url *u, int tls, const char *host, int port, const char *path) {
    char text[256];
    snprintf(text, sizeof text, "%s://%s:%d%s", tls ? "https" : "http", host, port, path);
    return pr_url_parse(u, text, strlen(text), NULL);
}

/* pristine: one download; returns MB/s (0 on failure). spans = 1 uses pr_http_next_span;
   recv_buf 0 = the default receive buffer. */
static double bh_pristine_stream(int tls, int spans, int recv_buf) {
    pr_http_opts opts;
    pr_http_request req;
    pr_http_response *r = NULL;
    pr_conn *c = NULL, *tc;
    pr_url u;
    unsigned long long total = 0;
    double t0, t1;
    int rc;
    memset(&opts, 0, sizeof opts);
    opts.recv_buf_size = (size_t)recv_buf;
    if (bh_url(&u, tls, tls ? "localhost" : "127.0.0.1", tls ? bh_srv.tls : bh_srv.plain, "/big.bin") != PR_OK)
        return 0;
    memset(&req, 0, sizeof req);
    req.url = &u;
    t0 = bh_now();
    rc = pr_tcp_connect(&c, "127.0.0.1", (uint16_t)(tls ? bh_srv.tls : bh_srv.plain), NULL, NULL, pr_deadline_in(5000));
    if (rc == PR_OK && tls) {
        rc = pr_tls_client(&tc, c, "localhost", &(pr_tls_opts){ .ca_file = BH_TLS_DIR "/ca.crt" }, NULL,
                           pr_deadline_in(5000));
        c = rc == PR_OK ? tc : NULL;
    }
    if (rc == PR_OK) rc = pr_http_exchange(&r, c, &req, &opts, NULL, pr_deadline_in(60000));
    while (rc == PR_OK) {
        if (spans) {
            const char *p;
            size_t len;
            rc = pr_http_next_span(r, &p, &len, pr_deadline_in(60000));
            if (rc == PR_OK) total += len;
        } else {
            ptrdiff_t got = pr_http_read(r, bh_buf, sizeof bh_buf, pr_deadline_in(60000));
            if (got > 0) total += (unsigned long long)got;
            else rc = (int)got;
        }
    }
    t1 = bh_now();
    pr_http_response_destroy(r);
    pr_conn_destroy(c);
    pr_url_deinit(&u);
    if (rc != PR_ECLOSED || total != BH_BIG) {
        fprintf(stderr, "bench_http: pristine %s download: %s after %llu bytes\n", tls ? "https" : "http",
                pr_errname(rc), total);
        return 0;
    }
    return (double)total / (t1 - t0) / 1e6;
}

/* curl: one download; returns MB/s from curl's own time_total; *wall gets
   MB/s from our clock around the process, *speed curl's speed_download. */
static double bh_curl_stream(int tls, double *wall, double *speed) {
    char cmd[600], out[256];
    double t0, t1, size = 0, ttotal = 0, sp = 0;
    FILE *p;
    if (tls)
        snprintf(cmd, sizeof cmd,
                 "curl -s -o /dev/null --cacert " BH_TLS_DIR "/ca.crt --resolve localhost:%d:127.0.0.1 "
                 "-w '%%{size_download} %%{time_total} %%{speed_download}' https://localhost:%d/big.bin",
                 bh_srv.tls, bh_srv.tls);
    else
        snprintf(cmd, sizeof cmd,
                 "curl -s -o /dev/null -w '%%{size_download} %%{time_total} %%{speed_download}' "
                 "http://127.0.0.1:%d/big.bin",
                 bh_srv.plain);
    t0 = bh_now();
    if (!(p = popen(cmd, "r"))) return 0;
    out[0] = '\0';
    if (!fgets(out, sizeof out, p)) out[0] = '\0';
    pclose(p);
    t1 = bh_now();
    if (sscanf(out, "%lf %lf %lf", &size, &ttotal, &sp) != 3 || size != (double)BH_BIG || ttotal <= 0) {
        fprintf(stderr, "bench_http: curl gave '%s'\n", out);
        return 0;
    }
    *wall = size / (t1 - t0) / 1e6;
    *speed = sp / 1e6;
    return size / ttotal / 1e6;
}

/* The floor: a blocking socket, one GET, read() 64 KiB at a time to EOF. */
static double bh_floor_stream(void) {
    struct sockaddr_in a;
    char req[200];
    double t0, t1;
    unsigned long long got = 0;
    ssize_t n;
    size_t k;
    int fd, in_head = 1, state = 0;
    snprintf(req, sizeof req, "GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", bh_srv.plain);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)bh_srv.plain);
    t0 = bh_now();
    if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) return 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 || write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return 0;
    }
    while ((n = read(fd, bh_buf, sizeof bh_buf)) > 0) {
        k = 0;
        for (; in_head && k < (size_t)n; k++) { /* skip the head: up to the first CRLF CRLF */
            state = bh_buf[k] == (unsigned char)"\r\n\r\n"[state] ? state + 1 : bh_buf[k] == '\r';
            if (state == 4) in_head = 0;
        }
        got += (unsigned long long)n - k;
    }
    t1 = bh_now();
    close(fd);
    if (got != BH_BIG) {
        fprintf(stderr, "bench_http: floor client got %llu bytes\n", got);
        return 0;
    }
    return (double)got / (t1 - t0) / 1e6;
}

/* ---- short requests ---- */

typedef struct bh_worker {
    double end;
    long count;
    int rc;
    pr_http_client *client; /* NULL: pr_http_exchange on a connection of the task's own */
} bh_worker;

/* One keep-alive GET through the client's pool; returns PR_OK or an error. */
static int bh_small_client_get(pr_http_client *client, const char *url, char *small, size_t cap) {
    pr_http_response *r;
    ptrdiff_t got;
    long body = 0;
    int rc = pr_http_client_get(client, &r, url, NULL, pr_deadline_in(5000));
    if (rc != PR_OK) return rc;
    while ((got = pr_http_read(r, small, cap, pr_deadline_in(5000))) > 0) body += (long)got;
    if (got != PR_ECLOSED || body != 128 || pr_http_status(r) != 200) rc = got != PR_ECLOSED ? (int)got : PR_EPROTO;
    pr_http_response_destroy(r); /* back to the pool */
    return rc;
}

static int bh_small_task(void *arg) {
    bh_worker *w = (bh_worker *)arg;
    pr_conn *c = NULL;
    pr_url u;
    pr_http_request req;
    char small[256];
    int rc;
    if (w->client) {
        snprintf(small, sizeof small, "http://127.0.0.1:%d/small.txt", bh_srv.plain);
        for (rc = PR_OK; rc == PR_OK && bh_now() < w->end; w->count++) {
            char buf[256];
            rc = bh_small_client_get(w->client, small, buf, sizeof buf);
        }
        if (rc != PR_OK) w->count--;
        return w->rc = rc;
    }
    rc = bh_url(&u, 0, "127.0.0.1", bh_srv.plain, "/small.txt");
    if (rc != PR_OK) return w->rc = rc;
    memset(&req, 0, sizeof req);
    req.url = &u;
    rc = pr_tcp_connect(&c, "127.0.0.1", (uint16_t)bh_srv.plain, NULL, NULL, pr_deadline_in(5000));
    while (rc == PR_OK && bh_now() < w->end) {
        pr_http_response *r;
        ptrdiff_t got;
        long body = 0;
        if ((rc = pr_http_exchange(&r, c, &req, NULL, NULL, pr_deadline_in(5000))) != PR_OK) break;
        while ((got = pr_http_read(r, small, sizeof small, pr_deadline_in(5000))) > 0) body += (long)got;
        if (got != PR_ECLOSED || body != 128 || pr_http_status(r) != 200 || !pr_http_reusable(r))
            rc = got != PR_ECLOSED ? (int)got : PR_EPROTO;
        pr_http_response_destroy(r);
        if (rc == PR_OK) w->count++;
    }
    pr_conn_destroy(c);
    pr_url_deinit(&u);
    return w->rc = rc;
}

/* pristine: req/s with nconn tasks, each on its own keep-alive connection:
   through one pr_http_client (pooled), or pr_http_exchange on raw ones. */
static double bh_pristine_small(int nconn, int pooled) {
    static bh_worker w[64];
    static pr_task *t[64];
    pr_http_client *client = NULL;
    pr_http_client_opts co;
    double t0, t1;
    long total = 0;
    int i, failed = 0;
    memset(&co, 0, sizeof co);
    co.ignore_env = 1;
    co.pool_max = 64;
    if (pooled && pr_http_client_create(&client, &co, NULL) != PR_OK) return 0;
    t0 = bh_now();
    for (i = 0; i < nconn; i++) {
        w[i].end = t0 + bh_seconds;
        w[i].count = 0;
        w[i].rc = PR_OK;
        w[i].client = client;
        if (pr_go(&t[i], bh_small_task, &w[i], NULL) != PR_OK) return 0;
    }
    for (i = 0; i < nconn; i++) {
        pr_join(t[i], NULL, PR_FOREVER);
        total += w[i].count;
        if (w[i].rc != PR_OK) failed = w[i].rc;
    }
    t1 = bh_now();
    pr_http_client_destroy(client);
    if (failed) fprintf(stderr, "bench_http: a small-request task failed: %s\n", pr_errname(failed));
    return failed ? 0 : (double)total / (t1 - t0);
}

static double bh_wrk(int nconn) {
    char cmd[300], line[256];
    double rps = 0;
    FILE *p;
    snprintf(cmd, sizeof cmd, "wrk -t1 -c%d -d%ds http://127.0.0.1:%d/small.txt 2>&1", nconn, bh_seconds,
             bh_srv.plain);
    if (!(p = popen(cmd, "r"))) return 0;
    while (fgets(line, sizeof line, p))
        if (strncmp(line, "Requests/sec:", 13) == 0) rps = atof(line + 13);
    pclose(p);
    return rps;
}

/* ---- reporting ---- */

/* ratio < 0: mine / theirs; else the given (paired) ratio. */
static void bh_report(const char *metric, const char *unit, double mine, const char *base, double theirs,
                      double ratio, const char *target, double want_ratio) {
    if (ratio < 0) ratio = theirs > 0 ? mine / theirs : 0;
    printf("metric=%s unit=%s pristine=%.1f baseline=%s:%.1f ratio=%.2f\n", metric, unit, mine, base, theirs, ratio);
    printf("# target: %s %s\n", target, ratio > 0 && ratio >= want_ratio ? "met" : "missed");
}

/* Median over rounds of mine[i] / theirs[i]: the two ran back to back, so
   the machine's drift between rounds cancels out of each quotient. */
static double bh_paired(const double *mine, const double *theirs, int n) {
    double q[16];
    int i;
    for (i = 0; i < n; i++) q[i] = theirs[i] > 0 ? mine[i] / theirs[i] : 0;
    return bh_median(q, n);
}

static void bh_list(const char *what, const double *v, int n) {
    int i;
    printf("#   %s:", what);
    for (i = 0; i < n; i++) printf(" %.0f", v[i]);
    printf("\n");
}

static void bh_stream(int tls) {
    double p[BH_STREAM_ROUNDS], ps[BH_STREAM_ROUNDS], c[BH_STREAM_ROUNDS], cw[BH_STREAM_ROUNDS], cs[BH_STREAM_ROUNDS], f[BH_STREAM_ROUNDS], w, s;
    const char *metric = tls ? "https_stream_mbps" : "http_stream_mbps";
    int i;
    bh_other_max = 0;
    bh_pristine_stream(tls, 0, 0); /* warm-up: page cache, TLS code paths */
    bh_curl_stream(tls, &w, &s);
    for (i = 0; i < BH_STREAM_ROUNDS; i++) {
        bh_gate_begin();
        if (i % 2 == 0) { /* who goes first alternates, so neither side always meets the warmer machine */
            p[i] = bh_pristine_stream(tls, 0, 0);
            c[i] = bh_curl_stream(tls, &cw[i], &cs[i]);
        } else {
            c[i] = bh_curl_stream(tls, &cw[i], &cs[i]);
            p[i] = bh_pristine_stream(tls, 0, 0);
        }
        ps[i] = tls ? 0 : bh_pristine_stream(tls, 1, 0); /* TLS: saves time; spans ~ read there */
        f[i] = tls ? 0 : bh_floor_stream();
        bh_gate_end();
    }
    bh_report(metric, "MB/s", bh_median(p, BH_STREAM_ROUNDS), "curl", bh_median(c, BH_STREAM_ROUNDS),
              bh_paired(p, c, BH_STREAM_ROUNDS), tls ? "ratio >= 0.95 vs curl" : "ratio >= 1.0 vs curl",
              tls ? 0.95 : 1.0);
    printf("# 1 GiB body, pristine: pr_http_read into 64 KiB, default options; curl value = bytes / its "
           "time_total\n");
    printf("# ratio = median over the %d rounds of pristine / curl in the same round; ratio of the medians %.2f\n",
           BH_STREAM_ROUNDS, bh_median(c, BH_STREAM_ROUNDS) > 0
                                 ? bh_median(p, BH_STREAM_ROUNDS) / bh_median(c, BH_STREAM_ROUNDS) : 0);
    bh_list("pristine pr_http_read MB/s", p, BH_STREAM_ROUNDS);
    if (!tls) {
        bh_list("pristine pr_http_next_span MB/s", ps, BH_STREAM_ROUNDS);
        printf("#   pristine next_span median %.1f MB/s (ratio %.2f vs curl)\n", bh_median(ps, BH_STREAM_ROUNDS),
               bh_median(ps, BH_STREAM_ROUNDS) / bh_median(c, BH_STREAM_ROUNDS));
    }
    bh_list("curl (time_total) MB/s", c, BH_STREAM_ROUNDS);
    bh_list("curl (wall clock around the process) MB/s", cw, BH_STREAM_ROUNDS);
    bh_list("curl speed_download MB/s", cs, BH_STREAM_ROUNDS);
    if (!tls) {
        double fm = bh_median(f, BH_STREAM_ROUNDS), pm = bh_median(p, BH_STREAM_ROUNDS);
        bh_list("floor (blocking read() 64 KiB) MB/s", f, BH_STREAM_ROUNDS);
        printf("# floor median %.1f MB/s; pristine/floor = %.2f (target >= 0.90: %s)\n", fm, fm > 0 ? pm / fm : 0,
               fm > 0 && pm / fm >= 0.9 ? "met" : "missed");
    }
    printf("# other processes used up to %.1f%% of the machine's CPU during a round\n", bh_other_max);
}

static void bh_small(int nconn) {
    double p[BH_ROUNDS], x[BH_ROUNDS], w[BH_ROUNDS];
    char metric[64], target[64];
    int i;
    bh_other_max = 0;
    for (i = 0; i < BH_ROUNDS; i++) {
        bh_gate_begin();
        p[i] = bh_pristine_small(nconn, 1);
        x[i] = bh_pristine_small(nconn, 0);
        w[i] = bh_wrk(nconn);
        bh_gate_end();
    }
    snprintf(metric, sizeof metric, "http_small_req_per_s_c%d", nconn);
    snprintf(target, sizeof target, "ratio >= %s vs wrk -t1 -c%d", nconn == 1 ? "0.80" : "0.70", nconn);
    bh_report(metric, "req/s", bh_median(p, BH_ROUNDS), "wrk", bh_median(w, BH_ROUNDS), -1, target,
              nconn == 1 ? 0.8 : 0.7);
    printf("# 128-byte file, keep-alive, %d connection(s), %d s per run; pristine: %d task(s), one scheduler thread,"
           " pr_http_client_get through the pool\n",
           nconn, bh_seconds, nconn);
    bh_list("pristine (pr_http_client_get) req/s", p, BH_ROUNDS);
    bh_list("pristine (pr_http_exchange on its own connection) req/s", x, BH_ROUNDS);
    bh_list("wrk req/s", w, BH_ROUNDS);
    printf("# other processes used up to %.1f%% of the machine's CPU during a round\n", bh_other_max);
}

static void bh_cleanup(void) {
    char path[700];
    ngxr_stop(&bh_srv);
    if (bh_srv.prefix[0]) {
        snprintf(path, sizeof path, "%s/html/big.bin", bh_srv.prefix);
        unlink(path);
    }
}

int main(void) {
    const char *secs = getenv("BENCH_SECONDS");
    int cross = sysconf(_SC_NPROCESSORS_ONLN) >= 2;
    double t0 = bh_now();
    if (secs && atoi(secs) > 0) bh_seconds = atoi(secs);
    if (system("sh tests/fixtures/tls_mkcerts.sh " BH_TLS_DIR) != 0) {
        fprintf(stderr, "bench_http: tests/fixtures/tls_mkcerts.sh failed (run from the repo root)\n");
        return 1;
    }
    atexit(bh_cleanup);
    if (!ngxr_start(&bh_srv, BH_PREFIX, BH_TLS_DIR "/good.crt", BH_TLS_DIR "/good.key", cross ? 0 : -1)) {
        fprintf(stderr, "bench_http: %s\n", bh_srv.msg);
        return 1;
    }
    if (!ngxr_make_file(&bh_srv, "small.txt", 128) || !ngxr_make_file(&bh_srv, "big.bin", BH_BIG)) {
        fprintf(stderr, "bench_http: %s\n", bh_srv.msg);
        return 1;
    }
    if (cross) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(1, &set);
        sched_setaffinity(0, sizeof set, &set);
    }
    if (getenv("BENCH_PROFILE")) {
        int tls = strcmp(getenv("BENCH_PROFILE"), "https") == 0, i;
        for (i = 0; i < 3; i++) printf("# pristine %s download: %.1f MB/s\n", tls ? "https" : "http",
                                       bh_pristine_stream(tls, 0, 0));
        bh_cleanup();
        pr_sched_destroy();
        return 0;
    }
    printf("# bench_http: nginx %s, placement %s; %d rounds per download metric, %d per request metric,"
           " one warm-up\n",
           NGXR_BIN, cross ? "cross (nginx on CPU 0, client and curl/wrk on CPU 1)" : "unpinned (one CPU)",
           BH_STREAM_ROUNDS, BH_ROUNDS);
    bh_stream(0);
    bh_stream(1);
    bh_small(1);
    bh_small(64);
    printf("# total %.0f s\n", bh_now() - t0);
    bh_cleanup();
    pr_sched_destroy();
    return 0;
}
