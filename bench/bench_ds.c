/* bench_ds.c - the Durable Streams client against the TypeScript client.

   cc -O2 -std=c11 bench/bench_ds.c -o build/bench_ds -lbearssl -lpthread
   build/bench_ds          (from the repository root; `make bench` runs it)

   The reference server (npm @durable-streams/server, in build/ds) runs in a
   child process (tools/ds-server.mjs, 30 s long-poll). The baseline is
   the npm @durable-streams/client (bench/ds_bench.mjs), run in the same
   rounds, the two sides alternating which goes first, each on fresh
   streams:
   ds_append_latency_ms: median of 200 awaited 100-byte appends per round
     (5 rounds); target ratio <= 0.5.
   ds_producer_msgs_per_s: 100,000 x 100-byte messages through the
     idempotent producer (linger 0, 5 in flight, 1 MiB batches) to a fresh
     stream, then flush (3 rounds); target ratio >= 1.5. The node server's
     CPU share during pristine's run is printed, and pristine's producer
     against build/testserver (a route that answers and discards) shows the
     client's own ceiling.
   ds_catchup_read_mbps: a 100 MiB stream read from -1 to up to date (3
     rounds).
   ds_sse_roundtrip_ms: append 100 bytes, then receive them over a live SSE
     read; median of 50 (3 rounds).
   Each ratio is the median of the rounds' ratios.
   Output: metric=<name> unit=<unit> pristine=<v> baseline=<name>:<v> ratio=<p/b> */
#define _GNU_SOURCE 1
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#include "bench_server.h"
#include <fcntl.h>
#include <time.h>

#define BD_MODULES "build/ds"
#define BD_MAXR 8

static char bd_base[200];
static pr_http_client *bd_client;
static int bd_seq;

static double bd_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int bd_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double bd_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bd_cmp);
    return n <= 0 ? -1 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static pid_t bd_server(void) {
    int out[2], in[2];
    char line[200];
    size_t len = 0;
    pid_t pid;
    if (pipe(out) || pipe(in)) return -1;
    if ((pid = fork()) == 0) {
        dup2(out[1], 1);
        dup2(in[0], 0);
        close(out[0]);
        close(in[1]);
        execlp("node", "node", "tools/ds-server.mjs", BD_MODULES, "0", "30000", "1800000", "--stdin",
               (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(in[0]); /* in[1] stays open: the server lives while we do */
    while (len + 1 < sizeof line) {
        ssize_t n = read(out[0], line + len, sizeof line - 1 - len);
        if (n <= 0) break;
        len += (size_t)n;
        line[len] = 0;
        if (strchr(line, '\n')) break;
    }
    close(out[0]);
    line[len] = 0;
    if (strncmp(line, "listening ", 10) != 0) return -1;
    line[strcspn(line, "\r\n")] = 0;
    snprintf(bd_base, sizeof bd_base, "%s", line + 10);
    return pid;
}

static double bd_cpu_s(pid_t pid) {
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r"))) return 0;
    if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
    fclose(f);
    if (!(p = strrchr(buf, ')'))) return 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static pr_ds *bd_fresh(const char *base, const char *kind, int create) {
    char url[300];
    pr_ds_opts o;
    pr_ds *ds = NULL;
    pr_ds_result res;
    memset(&o, 0, sizeof o);
    memset(&res, 0, sizeof res);
    o.client = bd_client;
    o.content_type = "application/octet-stream";
    snprintf(url, sizeof url, "%s/bench/%s-%d-%d", base, kind, (int)getpid(), ++bd_seq);
    if (pr_ds_open(&ds, url, &o, NULL) != PR_OK) return NULL;
    if (create && pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(10000)) != PR_OK) {
        pr_ds_destroy(ds);
        ds = NULL;
    }
    pr_ds_result_deinit(&res);
    return ds;
}

static double bd_node(const char *op, int n, const char *path) {
    char cmd[600], line[256];
    double v = -1;
    FILE *f;
    snprintf(cmd, sizeof cmd, "node bench/ds_bench.mjs %s '%s' %s %d '%s' 2>&1", BD_MODULES, bd_base, op, n, path);
    if (!(f = popen(cmd, "r"))) return -1;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "result=%lf", &v) != 1) fputs(line, stderr);
    }
    pclose(f);
    return v;
}

static double bd_latency(int n) {
    pr_ds *ds = bd_fresh(bd_base, "lat", 1);
    pr_ds_result res;
    double t[400], t0;
    char body[100];
    int i, k = 0;
    memset(&res, 0, sizeof res);
    memset(body, '*', sizeof body);
    for (i = 0; ds && i < n && i < 400; i++) {
        t0 = bd_now_ms();
        if (pr_ds_append(ds, body, sizeof body, NULL, &res, NULL, pr_deadline_in(10000)) != PR_OK) break;
        t[k++] = bd_now_ms() - t0;
    }
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    return k == n ? bd_median(t, k) : -1;
}

static double bd_producer(const char *base, int n, int create) {
    pr_ds *ds = bd_fresh(base, "prod", create);
    pr_ds_producer *p;
    pr_ds_producer_opts po;
    char body[100];
    double t0;
    int i, rc = PR_OK;
    if (!ds) return -1;
    memset(body, '*', sizeof body);
    memset(&po, 0, sizeof po);
    po.producer_id = "bench-producer";
    po.max_in_flight = 5;
    if (pr_ds_producer_create(&p, ds, &po, NULL) != PR_OK) {
        pr_ds_destroy(ds);
        return -1;
    }
    t0 = bd_now_ms();
    for (i = 0; rc == PR_OK && i < n; i++) rc = pr_ds_producer_append(p, body, sizeof body, pr_deadline_in(30000));
    if (rc == PR_OK) rc = pr_ds_producer_flush(p, pr_deadline_in(60000));
    t0 = bd_now_ms() - t0;
    if (rc != PR_OK) fprintf(stderr, "bench_ds: producer: %s\n", pr_strerror(rc));
    pr_ds_producer_destroy(p);
    pr_ds_destroy(ds);
    return rc == PR_OK ? n / (t0 / 1000) : -1;
}

static double bd_catchup(pr_ds *ds, size_t want) {
    pr_ds_read *rd;
    pr_ds_read_opts ro;
    pr_ds_chunk c;
    double t0 = bd_now_ms();
    size_t got = 0;
    int rc;
    memset(&ro, 0, sizeof ro);
    ro.max_chunk_bytes = (size_t)256 << 20;
    if (pr_ds_read_open(&rd, ds, "-1", &ro, NULL) != PR_OK) return -1;
    while ((rc = pr_ds_read_next(rd, &c, pr_deadline_in(60000))) == PR_OK) got += c.len;
    pr_ds_read_destroy(rd);
    if (rc != PR_ECLOSED || got != want) {
        fprintf(stderr, "bench_ds: catch-up read %zu of %zu bytes: %s\n", got, want, pr_strerror(rc));
        return -1;
    }
    return (double)got / 1048576.0 / ((bd_now_ms() - t0) / 1000);
}

typedef struct bd_rt {
    pr_ds *ds;
    pr_chan *got;
    int stop;
} bd_rt;

static int bd_sse_reader(void *arg) {
    bd_rt *r = (bd_rt *)arg;
    pr_ds_read *rd;
    pr_ds_read_opts ro;
    pr_ds_chunk c;
    int one = 1;
    memset(&ro, 0, sizeof ro);
    ro.live = PR_DS_LIVE_SSE;
    if (pr_ds_read_open(&rd, r->ds, "-1", &ro, NULL) != PR_OK) return 0;
    while (!r->stop && pr_ds_read_next(rd, &c, PR_FOREVER) == PR_OK)
        if (c.len && pr_chan_send(r->got, &one, PR_FOREVER) != PR_OK) break;
    pr_ds_read_destroy(rd);
    return 0;
}

static double bd_sse(int n) {
    bd_rt r;
    pr_task *t;
    pr_ds_result res;
    double v[100], t0;
    char body[100];
    int i, k = 0, x;
    memset(&r, 0, sizeof r);
    memset(&res, 0, sizeof res);
    memset(body, '*', sizeof body);
    if (!(r.ds = bd_fresh(bd_base, "sse", 1)) || pr_chan_create(&r.got, sizeof(int), 4) != PR_OK) return -1;
    pr_go(&t, bd_sse_reader, &r, NULL);
    pr_sleep(pr_deadline_in(50)); /* the reader is at the tail */
    for (i = 0; i < n && i < 100; i++) {
        t0 = bd_now_ms();
        if (pr_ds_append(r.ds, body, sizeof body, NULL, &res, NULL, pr_deadline_in(10000)) != PR_OK) break;
        if (pr_chan_recv(r.got, &x, pr_deadline_in(10000)) != PR_OK) break;
        v[k++] = bd_now_ms() - t0;
    }
    r.stop = 1;
    pr_cancel(t);
    pr_join(t, NULL, PR_FOREVER);
    pr_chan_destroy(r.got);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(r.ds);
    return k == n ? bd_median(v, k) : -1;
}

static void bd_report(const char *metric, const char *unit, double *mine, double *theirs, int rounds, int lower_better,
                      double target) {
    double ratio[BD_MAXR], m[BD_MAXR], t[BD_MAXR], med;
    int i, k = 0;
    for (i = 0; i < rounds; i++) {
        m[i] = mine[i];
        t[i] = theirs[i];
        if (mine[i] > 0 && theirs[i] > 0) ratio[k++] = mine[i] / theirs[i];
    }
    med = k ? bd_median(ratio, k) : -1;
    printf("metric=%s unit=%s pristine=%.3f baseline=ts_client:%.3f ratio=%.2f\n", metric, unit, bd_median(m, rounds),
           bd_median(t, rounds), med);
    if (target > 0)
        printf("# target: ratio %s %.1f: %s\n", lower_better ? "<=" : ">=", target,
               med > 0 && (lower_better ? med <= target : med >= target) ? "met" : "missed");
}

int main(void) {
    double mine[BD_MAXR], theirs[BD_MAXR], t0, cpu0, share = 0, ceiling = -1;
    pid_t pid, tspid;
    pr_http_client_opts co;
    pr_ds *big;
    pr_ds_result res;
    char *mib, path[200], tsbase[64];
    int k, port;
    if (access(BD_MODULES "/node_modules/@durable-streams/server/package.json", R_OK) != 0 &&
        system("bash tools/setup.sh >/dev/null") != 0) {
        printf("# bench_ds: the reference server is not installed (tools/setup.sh)\n");
        return 1;
    }
    if ((pid = bd_server()) <= 0) {
        printf("# bench_ds: the reference server did not start\n");
        return 1;
    }
    memset(&co, 0, sizeof co);
    co.fetch_max_bytes = (size_t)256 << 20;
    co.pool_max = 32;
    if (pr_http_client_create(&bd_client, &co, NULL) != PR_OK) return 1;
    printf("# bench_ds: reference server %s (node), TypeScript client @durable-streams/client from " BD_MODULES "\n",
           bd_base);

    for (k = 0; k < 5; k++) {
        snprintf(path, sizeof path, "/bench/ts-lat-%d", k);
        if (k % 2) theirs[k] = bd_node("latency", 200, path);
        mine[k] = bd_latency(200);
        if (!(k % 2)) theirs[k] = bd_node("latency", 200, path);
    }
    bd_report("ds_append_latency_ms", "ms", mine, theirs, 5, 1, 0.5);

    for (k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "/bench/ts-prod-%d", k);
        if (k % 2) theirs[k] = bd_node("producer", 100000, path);
        t0 = bd_now_ms();
        cpu0 = bd_cpu_s(pid);
        mine[k] = bd_producer(bd_base, 100000, 1);
        share = (bd_cpu_s(pid) - cpu0) / ((bd_now_ms() - t0) / 1000);
        if (!(k % 2)) theirs[k] = bd_node("producer", 100000, path);
    }
    bd_report("ds_producer_msgs_per_s", "msgs/s", mine, theirs, 3, 0, 1.5);
    printf("# ds_producer_msgs_per_s: the node server used %.0f %% of a core during pristine's last run\n", share * 100);
    if ((port = bf_server_args(&tspid, NULL)) > 0) {
        snprintf(tsbase, sizeof tsbase, "http://127.0.0.1:%d/fixed?len=0&x=", port);
        ceiling = bd_producer(tsbase, 100000, 0);
        bf_server_stop(tspid);
    }
    printf("# ds_producer_msgs_per_s: pristine's producer against build/testserver /fixed (answers, discards): %.0f msgs/s\n",
           ceiling);

    memset(&res, 0, sizeof res);
    mib = (char *)malloc((size_t)1 << 20);
    memset(mib, 'd', (size_t)1 << 20);
    big = bd_fresh(bd_base, "big", 1);
    for (k = 0; big && k < 100; k++)
        if (pr_ds_append(big, mib, (size_t)1 << 20, NULL, &res, NULL, pr_deadline_in(30000)) != PR_OK) break;
    free(mib);
    if (big && k == 100) {
        char bigpath[200];
        snprintf(bigpath, sizeof bigpath, "/bench/big-%d-%d", (int)getpid(), bd_seq);
        for (k = 0; k < 3; k++) {
            if (k % 2) theirs[k] = bd_node("catchup", 0, bigpath);
            mine[k] = bd_catchup(big, (size_t)100 << 20);
            if (!(k % 2)) theirs[k] = bd_node("catchup", 0, bigpath);
        }
        bd_report("ds_catchup_read_mbps", "MiB/s", mine, theirs, 3, 0, 0);
    }
    pr_ds_result_deinit(&res);
    pr_ds_destroy(big);

    for (k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "/bench/ts-sse-%d", k);
        if (k % 2) theirs[k] = bd_node("sse", 50, path);
        mine[k] = bd_sse(50);
        if (!(k % 2)) theirs[k] = bd_node("sse", 50, path);
    }
    bd_report("ds_sse_roundtrip_ms", "ms", mine, theirs, 3, 1, 0);

    pr_http_client_destroy(bd_client);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return 0;
}
