/* bench_codecs.c - codec throughput: the SSE decoder against the npm package
   eventsource-parser (3.x, the line that runs on Node 20), then the JSON
   benchmark from bench_json.h.
     cc -O2 -std=c11 -DPRISTINE_NO_TLS bench/bench_codecs.c -o build/bench_codecs -lpthread
     build/bench_codecs        (from the repo root; `make bench` does both)

   The SSE input is a deterministic ~100 MB stream (mostly one ~200-byte JSON
   data line per event; some multi-line data, id and event fields, comments,
   a little non-ASCII), written as an LF file and a CRLF file under build/.
   Both sides read the file into memory first and decode it in 16 KiB chunks;
   the baseline runs bench/esp_bench.mjs under node (installing
   eventsource-parser@3 into build/npm when missing). Figures are the median
   of 5 repetitions; event counts of both sides must agree.

   Output: metric=<name> unit=<unit> pristine=<v> baseline=<name>:<v> ratio=<p/b>
   followed by "# target: ... met|missed". */
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"

#define BC_CHUNK 16384
#define BC_REPS 5
#define BC_TARGET_BYTES ((size_t)100 * 1000 * 1000)
#define BC_1BYTE_PREFIX ((size_t)2 * 1000 * 1000)
#define BC_NPM_DIR "build/npm"

static unsigned long long bc_rng = 0x243f6a8885a308d3ull;
static unsigned bc_rand(unsigned n) {
    bc_rng ^= bc_rng << 13;
    bc_rng ^= bc_rng >> 7;
    bc_rng ^= bc_rng << 17;
    return (unsigned)(bc_rng % n);
}

static double bc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct bc_out {
    char *p;
    size_t len, cap;
} bc_out;

static void bc_put(bc_out *o, const char *s, size_t n) {
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : (size_t)1 << 20;
        while (cap < o->len + n) cap *= 2;
        o->p = (char *)realloc(o->p, cap);
        if (!o->p) {
            fprintf(stderr, "bench_codecs: out of memory\n");
            exit(1);
        }
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void bc_line(bc_out *o, const char *s, size_t n, const char *eol) {
    bc_put(o, s, n);
    bc_put(o, eol, strlen(eol));
}

/* A ~200-byte JSON object like an LLM token or a change-feed record. */
static size_t bc_json(char *buf, size_t cap, unsigned long long seq) {
    static const char *words[] = { "stream", "token", "delta", "content", "assistant", "update", "record",
                                   "value", "offset", "cursor", "chunk", "model" };
    size_t n = 0;
    unsigned i, w = 8 + bc_rand(8);
    n += (size_t)snprintf(buf + n, cap - n, "{\"id\":\"evt_%llu\",\"seq\":%llu,\"type\":\"%s\",\"text\":\"", seq, seq,
                          words[bc_rand(12)]);
    for (i = 0; i < w && n < cap - 64; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? " " : "", words[bc_rand(12)]);
    if (bc_rand(50) == 0) n += (size_t)snprintf(buf + n, cap - n, " caf\xc3\xa9 \xe2\x9c\x93");
    n += (size_t)snprintf(buf + n, cap - n, "\",\"score\":%u.%03u,\"done\":%s}", bc_rand(100), bc_rand(1000),
                          bc_rand(2) ? "true" : "false");
    return n;
}

/* Build the stream with the given line end; returns the number of events. */
static size_t bc_gen(bc_out *o, const char *eol) {
    char js[512], line[600];
    unsigned long long seq = 0;
    size_t events = 0;
    bc_rng = 0x243f6a8885a308d3ull;
    while (o->len < BC_TARGET_BYTES) {
        unsigned kind = bc_rand(100);
        size_t n = bc_json(js, sizeof js, ++seq), m;
        if (kind < 3) bc_line(o, ": keep-alive", 12, eol);
        if (kind >= 3 && kind < 8) {
            m = (size_t)snprintf(line, sizeof line, "id: %llu", seq);
            bc_line(o, line, m, eol);
        }
        if (kind >= 8 && kind < 12) bc_line(o, "event: update", 13, eol);
        if (kind >= 12 && kind < 15) { /* multi-line data */
            bc_line(o, "data: {", 7, eol);
            m = (size_t)snprintf(line, sizeof line, "data:   \"seq\": %llu,", seq);
            bc_line(o, line, m, eol);
            m = (size_t)snprintf(line, sizeof line, "data:   \"text\": \"%.*s\"", (int)(n > 120 ? 120 : n) - 20,
                                 js + 20);
            bc_line(o, line, m, eol);
            bc_line(o, "data: }", 7, eol);
        } else {
            m = (size_t)snprintf(line, sizeof line, "data: %.*s", (int)n, js);
            bc_line(o, line, m, eol);
        }
        bc_put(o, eol, strlen(eol));
        events++;
    }
    return events;
}

static int bc_write(const char *path, const bc_out *o) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    if (fwrite(o->p, 1, o->len, f) != o->len) {
        fclose(f);
        return -1;
    }
    return fclose(f);
}

static int bc_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double bc_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bc_cmp);
    return v[n / 2];
}

/* Decode p[0..n) in chunk-byte feeds; returns MB/s (median), *events. */
static double bc_pristine(const char *p, size_t n, size_t chunk, size_t *events) {
    double rates[BC_REPS];
    int r;
    for (r = 0; r < BC_REPS; r++) {
        pr_sse_decoder *d;
        pr_sse_event ev;
        size_t off, cnt = 0, bytes = 0;
        double t0, t1;
        int rc;
        if (pr_sse_decoder_create(&d, NULL) != PR_OK) exit(1);
        t0 = bc_now();
        for (off = 0; off < n; off += chunk) {
            size_t k = n - off < chunk ? n - off : chunk;
            pr_sse_decoder_feed(d, p + off, k);
            while ((rc = pr_sse_decoder_next(d, &ev)) == PR_OK) {
                cnt++;
                bytes += ev.data_len;
            }
            if (rc != PR_SSE_DECODER_MORE) {
                fprintf(stderr, "bench_codecs: decoder returned %s\n", pr_errname(rc));
                exit(1);
            }
        }
        pr_sse_decoder_finish(d);
        while ((rc = pr_sse_decoder_next(d, &ev)) == PR_OK) cnt++;
        t1 = bc_now();
        pr_sse_decoder_destroy(d);
        rates[r] = (double)n / 1e6 / (t1 - t0);
        *events = cnt;
        if (bytes == 1) printf("#\n");
    }
    return bc_median(rates, BC_REPS);
}

static int bc_have_esp = -1;

/* Make sure eventsource-parser is installed; 1 if usable. */
static int bc_esp_setup(void) {
    FILE *f;
    if (bc_have_esp >= 0) return bc_have_esp;
    f = fopen(BC_NPM_DIR "/node_modules/eventsource-parser/dist/index.js", "r");
    if (!f) {
        if (system("mkdir -p " BC_NPM_DIR " && npm install --silent --no-audit --no-fund --prefix " BC_NPM_DIR
                   " eventsource-parser@3 >build/npm_install.log 2>&1") != 0)
            fprintf(stderr, "bench_codecs: npm install failed (see build/npm_install.log)\n");
        f = fopen(BC_NPM_DIR "/node_modules/eventsource-parser/dist/index.js", "r");
    }
    bc_have_esp = f != NULL;
    if (f) fclose(f);
    return bc_have_esp;
}

/* Run the node baseline; returns MB/s or -1, *events. */
static double bc_esp(const char *path, size_t chunk, size_t max, size_t *events) {
    char cmd[512], line[256];
    double mbps = -1;
    unsigned long long ev = 0;
    FILE *p;
    if (!bc_esp_setup()) return -1;
    if (max)
        snprintf(cmd, sizeof cmd, "node bench/esp_bench.mjs " BC_NPM_DIR " %s %lu %d %lu", path,
                 (unsigned long)chunk, BC_REPS, (unsigned long)max);
    else
        snprintf(cmd, sizeof cmd, "node bench/esp_bench.mjs " BC_NPM_DIR " %s %lu %d", path, (unsigned long)chunk,
                 BC_REPS);
    p = popen(cmd, "r");
    if (!p) return -1;
    while (fgets(line, sizeof line, p))
        if (sscanf(line, "mbps=%lf events=%llu", &mbps, &ev) == 2) *events = (size_t)ev;
    if (pclose(p) != 0) return -1;
    return mbps;
}

static void bc_report(const char *metric, double mine, const char *base, double theirs, const char *target,
                      int met) {
    if (theirs > 0)
        printf("metric=%s unit=MB/s pristine=%.1f baseline=%s:%.1f ratio=%.2f\n", metric, mine, base, theirs,
               mine / theirs);
    else
        printf("metric=%s unit=MB/s pristine=%.1f baseline=%s:nan ratio=nan\n", metric, mine, base);
    printf("# target: %s %s\n", target, met ? "met" : "missed");
    fflush(stdout);
}

static void bc_sse_file(const char *metric, const char *path, const bc_out *o, size_t gen_events) {
    size_t mine_ev = 0, esp_ev = 0;
    double mine = bc_pristine(o->p, o->len, BC_CHUNK, &mine_ev), theirs = bc_esp(path, BC_CHUNK, 0, &esp_ev);
    char target[128];
    if (mine_ev != gen_events) printf("# WARNING: pristine decoded %lu events, the generator wrote %lu\n",
                                      (unsigned long)mine_ev, (unsigned long)gen_events);
    if (theirs > 0)
        printf("# events: pristine %lu, eventsource-parser %lu: %s\n", (unsigned long)mine_ev, (unsigned long)esp_ev,
               mine_ev == esp_ev ? "agree" : "DISAGREE");
    snprintf(target, sizeof target, ">= 5x eventsource-parser (%.1f MB/s in this run)", theirs * 5);
    bc_report(metric, mine, "eventsource-parser", theirs, target, theirs > 0 && mine >= 5 * theirs);
}

#if defined(__has_include)
#if __has_include("bench_json.h")
#include "bench_json.h"
#define BC_HAVE_JSON 1
#endif
#endif

int main(void) {
    bc_out lf = { 0, 0, 0 }, crlf = { 0, 0, 0 };
    size_t n_lf, n_crlf, mine_ev = 0, esp_ev = 0;
    double mine, theirs;
    if (system("mkdir -p build") != 0) return 1;
    n_lf = bc_gen(&lf, "\n");
    n_crlf = bc_gen(&crlf, "\r\n");
    if (bc_write("build/sse_bench_lf.txt", &lf) || bc_write("build/sse_bench_crlf.txt", &crlf)) {
        fprintf(stderr, "bench_codecs: cannot write the SSE files under build/\n");
        return 1;
    }
    printf("# sse: %lu events, %.1f MB (LF), %.1f MB (CRLF), %d KiB chunks, median of %d\n", (unsigned long)n_lf,
           (double)lf.len / 1e6, (double)crlf.len / 1e6, BC_CHUNK / 1024, BC_REPS);
    bc_sse_file("sse_decode_mbps", "build/sse_bench_lf.txt", &lf, n_lf);
    bc_sse_file("sse_decode_crlf_mbps", "build/sse_bench_crlf.txt", &crlf, n_crlf);

    /* One byte per feed, over the first 2 MB of the LF file, on both sides:
       the baseline is eventsource-parser also fed one byte per call. */
    printf("# sse_decode_1byte_mbps: one byte per feed over the first %lu bytes of the LF file; baseline:"
           " eventsource-parser fed one byte per call on the same prefix\n", (unsigned long)BC_1BYTE_PREFIX);
    mine = bc_pristine(lf.p, BC_1BYTE_PREFIX, 1, &mine_ev);
    theirs = bc_esp("build/sse_bench_lf.txt", 1, BC_1BYTE_PREFIX, &esp_ev);
    if (theirs > 0)
        printf("# events: pristine %lu, eventsource-parser %lu: %s\n", (unsigned long)mine_ev, (unsigned long)esp_ev,
               mine_ev == esp_ev ? "agree" : "DISAGREE");
    bc_report("sse_decode_1byte_mbps", mine, "eventsource-parser-1byte", theirs, ">= 50 MB/s", mine >= 50);
    free(lf.p);
    free(crlf.p);

#ifdef BC_HAVE_JSON
    bench_json_run();
#endif
    return 0;
}
