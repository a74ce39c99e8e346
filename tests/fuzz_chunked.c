/* fuzz_chunked.c - libFuzzer target for the HTTP chunked body framing on its own.
   clang -std=c11 -g -O1 -DPRISTINE_NO_TLS -DPRISTINE_TESTING -fsanitize=fuzzer,address,undefined \
       -fno-sanitize-recover=all tests/fuzz_chunked.c -o build/fuzz/chunked -lpthread

   Byte 0 picks small limits (max_chunk_line, max_head_bytes for the
   trailers, max_fields, recv_buf_size) and the read style (pr_http_read with
   7 or 64 KiB, or pr_http_next_span); bytes 1..4 are split sizes (cycled);
   the rest is a chunked body after a fixed head "200, Transfer-Encoding:
   chunked". A scripted pr_conn delivers it whole, then cut at the
   fuzzer's split points, then one byte at a time for its first
   FZ_BYTEWISE bytes and the rest at once (each read a fresh heap copy; the
   prefix keeps the pass from dominating the run on long inputs). Differential: every delivery gives the same decoded bytes, the
   same end code (PR_ECLOSED, PR_EPROTO, PR_ELIMIT); reusable is not compared
   (bytes past the body make a connection unusable only when they arrived).
   A clean end (PR_ECLOSED) must also match an independent reference
   decoder of the body written below (RFC 9112 7.1). Work per input byte
   is bounded: the framing's steps (pr__http_test_body_work: bytes it
   examined, spans, fills, bytes moved) stay within FZ_WORK_PER_BYTE per
   body byte for every delivery. */
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#include "fuzz/fuzz.h"
#include <ctype.h>

#define FZ_BYTEWISE 256
#define FZ_WORK_PER_BYTE 6

static const char fz_head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

typedef struct fz_out {
    int rc, body_rc, reusable;
    fz_log body;
} fz_out;

static void fz_run(fz_out *o, const unsigned char *data, size_t len, const unsigned char *splits, unsigned opt) {
    fz_conn fc;
    pr_url u;
    pr_http_request req;
    pr_http_opts ho;
    pr_http_response *r = NULL;
    memset(o, 0, sizeof *o);
    fz_conn_init(&fc, data, len);
    fc.head = (const unsigned char *)fz_head;
    fc.head_len = sizeof fz_head - 1;
    fc.splits = splits;
    fc.nsplits = 4;
    if (splits && splits[0] == 1 && splits[1] == 1 && splits[2] == 1 && splits[3] == 1) fc.split_len = FZ_BYTEWISE;
    memset(&u, 0, sizeof u);
    if (pr_url_parse(&u, "http://fuzz.test/x", 18, NULL) != PR_OK) abort();
    memset(&req, 0, sizeof req);
    req.method = "GET";
    req.url = &u;
    memset(&ho, 0, sizeof ho);
    if (opt & 1) ho.max_chunk_line = 1 + (opt >> 5) * 3;
    if (opt & 2) {
        ho.max_head_bytes = 128;
        ho.max_fields = 2;
    }
    if (opt & 4) ho.recv_buf_size = 64;
    o->rc = pr_http_exchange(&r, &fc.base, &req, &ho, NULL, PR_FOREVER);
    if (o->rc) {
        if (r) abort();
        pr_url_deinit(&u);
        return;
    }
    pr__http_test_body_work = 0;
    o->body_rc = fz_read_body(r, (int)((opt >> 3) & 3), &o->body);
    if (o->body_rc != PR_ECLOSED && o->body_rc != PR_EPROTO && o->body_rc != PR_ELIMIT) abort();
    if (pr__http_test_body_work > FZ_WORK_PER_BYTE * (len + 1) + 8) abort(); /* linear framing */
    o->reusable = pr_http_reusable(r);
    pr_http_response_destroy(r);
    pr_url_deinit(&u);
}

/* Reference: decode a whole chunked body (size lines with extensions, data,
   CRLF, last chunk, trailer lines, CRLF). Returns 1 and fills o->body when
   the body is well formed within the default limits, else 0. */
static int fz_ref(const unsigned char *p, size_t n, fz_out *o) {
    size_t i = 0;
    for (;;) {
        uint64_t size = 0;
        unsigned nd = 0;
        while (i < n && isxdigit(p[i])) {
            unsigned d = (unsigned)(p[i] <= '9' ? p[i] - '0' : (p[i] | 0x20) - 'a' + 10);
            if (++nd > 16) return 0;
            size = size << 4 | d;
            i++;
        }
        if (!nd) return 0;
        while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
        if (i < n && p[i] == ';')
            while (i < n && p[i] != '\r') i++;
        if (i + 1 >= n || p[i] != '\r' || p[i + 1] != '\n') return 0;
        i += 2;
        if (!size) break;
        if (size > n - i) return 0;
        fz_put(&o->body, p + i, (size_t)size);
        i += (size_t)size;
        if (i + 1 >= n || p[i] != '\r' || p[i + 1] != '\n') return 0;
        i += 2;
    }
    for (;;) { /* trailer lines */
        const unsigned char *lf;
        if (i + 1 < n && p[i] == '\r' && p[i + 1] == '\n') return 1;
        lf = (const unsigned char *)memchr(p + i, '\n', n - i);
        if (!lf) return 0;
        i = (size_t)(lf - p) + 1;
    }
}

static int fz_same(const fz_out *a, const fz_out *b) {
    return a->rc == b->rc && a->body_rc == b->body_rc && fz_log_same(&a->body, &b->body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const unsigned char one[4] = { 1, 1, 1, 1 };
    fz_out whole, split, bytes, ref;
    unsigned char splits[4];
    unsigned opt, i;
    if (size < 5) return 0;
    opt = data[0];
    for (i = 0; i < 4; i++) splits[i] = (unsigned char)(1 + data[1 + i] % 97);
    data += 5;
    size -= 5;
    fz_run(&whole, data, size, NULL, opt);
    fz_run(&split, data, size, splits, opt);
    fz_run(&bytes, data, size, one, opt);
    if (whole.rc != PR_OK) abort(); /* the head is fixed and valid */
    if (!fz_same(&whole, &split) || !fz_same(&whole, &bytes)) abort();
    if (whole.body_rc == PR_ECLOSED && !(opt & 3)) {
        /* a clean end: the reference decoder agrees on the bytes */
        memset(&ref, 0, sizeof ref);
        if (!fz_ref(data, size, &ref)) abort();
        if (!fz_log_same(&ref.body, &whole.body)) abort();
        free(ref.body.p);
    }
    free(whole.body.p);
    free(split.body.p);
    free(bytes.body.p);
    pr_sched_destroy();
    return 0;
}
