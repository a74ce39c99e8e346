/* fuzz_http.c - libFuzzer target for the HTTP response parser and body framing.
   clang -std=c11 -g -O1 -DPRISTINE_NO_TLS -DPRISTINE_TESTING -fsanitize=fuzzer,address,undefined \
       -fno-sanitize-recover=all tests/fuzz_http.c -o build/fuzz/http -lpthread

   The input's first byte picks the request method (GET, HEAD, CONNECT),
   small limits, the read style (pr_http_read with a small or a big
   buffer, or pr_http_next_span) and whether the request carries an
   Upgrade field (so a 101 is final, not an error, and its raw-stream path
   is reached); the second seeds a split size; the rest is
   what the server sends. A scripted pr_conn hands it out whole, one byte at
   a time and in chunks of the seeded size, each read a fresh heap copy.
   pr_http_exchange runs and the whole body is read; the outcome (codes,
   status, headers, body, reusable) must be the same for every split. It
   runs on the main task (which may block), and pr_sched_destroy ends each
   input so nothing leaks. Work per byte: the obs-fold join touches at most
   2 bytes per input byte (pr__http_test_fold_work). */
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#include "fuzz/fuzz.h"

typedef struct fz_out {
    int rc, status, minor, body_rc, reusable; /* reusable depends on what arrived early: not compared */
    size_t nhdrs;
    unsigned long long hsum; /* FNV-1a over names and values */
    fz_log body;
} fz_out;

static unsigned long long fz_fnv(unsigned long long h, const char *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h;
}

static void fz_run(fz_out *o, const unsigned char *data, size_t len, unsigned char chunk, unsigned opt) {
    static const char *methods[] = { "GET", "HEAD", "CONNECT", "GET" };
    fz_conn fc;
    pr_url u;
    pr_http_request req;
    pr_http_opts ho;
    static const char *const up[] = { "Connection: Upgrade", "Upgrade: websocket", NULL };
    pr_http_response *r = NULL;
    size_t i;
    memset(o, 0, sizeof *o);
    fz_conn_init(&fc, data, len);
    if (chunk) {
        fc.splits = &chunk;
        fc.nsplits = 1;
    }
    memset(&u, 0, sizeof u);
    if (pr_url_parse(&u, "http://fuzz.test/x", 18, NULL) != PR_OK) abort();
    memset(&req, 0, sizeof req);
    req.method = methods[opt & 3];
    req.url = &u;
    if (opt & 32) { /* an upgrade request: 101 Switching Protocols ends the exchange */
        req.headers = up;
    }
    memset(&ho, 0, sizeof ho);
    if (opt & 4) { /* small limits */
        ho.max_head_bytes = 256;
        ho.max_fields = 4;
        ho.max_chunk_line = 16;
        ho.max_interim = 2;
        ho.recv_buf_size = 64;
    }
    pr__http_test_fold_work = 0;
    o->rc = pr_http_exchange(&r, &fc.base, &req, &ho, NULL, PR_FOREVER);
    if (pr__http_test_fold_work > 2 * len) abort(); /* obs-fold joins stay linear */
    if (o->rc) {
        if (r) abort();
        pr_url_deinit(&u);
        return;
    }
    o->status = pr_http_status(r);
    o->minor = pr_http_version_minor(r);
    o->nhdrs = pr_http_header_count(r);
    o->hsum = 0xcbf29ce484222325ull;
    for (i = 0; i < o->nhdrs; i++) {
        pr_http_header h;
        if (pr_http_header_at(r, i, &h) != PR_OK) abort();
        o->hsum = fz_fnv(o->hsum, h.name.ptr, h.name.len);
        o->hsum = fz_fnv(o->hsum, ":", 1);
        o->hsum = fz_fnv(o->hsum, h.value.ptr, h.value.len);
    }
    o->body_rc = fz_read_body(r, (int)((opt >> 3) & 3), &o->body);
    o->reusable = pr_http_reusable(r);
    pr_http_response_destroy(r);
    pr_url_deinit(&u);
}

static int fz_same(const fz_out *a, const fz_out *b) {
    return a->rc == b->rc && a->status == b->status && a->minor == b->minor && a->body_rc == b->body_rc &&
           a->nhdrs == b->nhdrs && a->hsum == b->hsum && fz_log_same(&a->body, &b->body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_out whole, one, split;
    unsigned opt;
    unsigned char chunk;
    if (size < 2) return 0;
    opt = data[0];
    chunk = (unsigned char)(2 + data[1] % 31);
    data += 2;
    size -= 2;
    fz_run(&whole, data, size, 0, opt);
    fz_run(&one, data, size, 1, opt);
    fz_run(&split, data, size, chunk, opt);
    if (!fz_same(&whole, &one) || !fz_same(&whole, &split)) abort();
    free(whole.body.p);
    free(one.body.p);
    free(split.body.p);
    pr_sched_destroy();
    return 0;
}
