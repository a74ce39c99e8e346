/* fuzz_sse.c - libFuzzer target for the SSE decoder.
   clang -std=c11 -g -O1 -DPRISTINE_NO_TLS -DPRISTINE_TESTING -fsanitize=fuzzer,address,undefined \
       -fno-sanitize-recover=all tests/fuzz_sse.c -o build/fuzz/sse -lpthread

   The input's first byte picks options (raw bytes, small limits) and seeds
   the chunk sizes; the rest is the stream. It is decoded whole, in chunks of
   varying sizes, and one byte at a time (its first FZ_BYTEWISE bytes, then
   the rest at once: on long inputs that pass dominated the run); the three
   event logs (type, data,
   id state, id, last id, retry, limit hits, final last id and retry) must be
   identical. Every chunk is a fresh heap copy freed after PR_SSE_DECODER_MORE, so a
   view kept into a released chunk is caught by ASan. */
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#include "fuzz/fuzz.h"

#define FZ_BYTEWISE 256
#define FZ_WORK_PER_BYTE 24 /* bytes the decoder may examine or copy per input byte */

static void fz_put_ev(fz_log *l, const pr_sse_event *ev) {
    if (!ev->type || ev->type[ev->type_len] != 0 || !ev->data || !ev->last_id || ev->last_id[ev->last_id_len] != 0)
        abort();
    if ((ev->id == NULL) != (ev->id_state == PR_SSE_ID_ABSENT)) abort();
    if (ev->id_state == PR_SSE_ID_EMPTY && ev->id_len != 0) abort();
    if (ev->id_state == PR_SSE_ID_SET && (ev->id_len == 0 || ev->id_len != ev->last_id_len ||
                                          memcmp(ev->id, ev->last_id, ev->id_len) != 0))
        abort();
    fz_put(l, "E", 1);
    fz_put_str(l, ev->type, ev->type_len);
    fz_put_str(l, ev->data, ev->data_len);
    fz_put(l, &ev->id_state, sizeof ev->id_state);
    if (ev->id) fz_put_str(l, ev->id, ev->id_len);
    fz_put_str(l, ev->last_id, ev->last_id_len);
    fz_put(l, &ev->retry_ms, sizeof ev->retry_ms);
}

static void fz_drain(pr_sse_decoder *d, fz_log *l, int want) {
    pr_sse_event ev;
    for (;;) {
        int rc = pr_sse_decoder_next(d, &ev);
        if (rc == PR_OK) fz_put_ev(l, &ev);
        else if (rc == PR_ELIMIT) {
            fz_put(l, "L", 1);
            if (pr_sse_decoder_skip(d) != PR_OK) abort();
        } else if (rc == want)
            return;
        else
            abort();
    }
}

/* mode 0: whole; 1: chunk sizes from seed; 2: one byte at a time (a prefix). */
static void fz_run(const uint8_t *in, size_t n, const pr_sse_decoder_opts *o, int mode, unsigned seed, fz_log *l) {
    pr_sse_decoder *d;
    size_t a = 0;
    int64_t r;
    size_t len;
    const char *last;
    if (pr_sse_decoder_create(&d, o) != PR_OK) abort();
    pr__sse_test_work = 0;
    if (seed & 0x80) {
        if (pr_sse_decoder_set_last_id(d, "seed", 4) != PR_OK) abort();
    }
    while (a < n || a == 0) {
        size_t k = mode == 0 ? n : mode == 2 ? (a < FZ_BYTEWISE ? 1 : n - a)
                                             : 1 + (seed = seed * 1103515245u + 12345u, (seed >> 16) % 23);
        char *chunk;
        if (k > n - a) k = n - a;
        chunk = (char *)malloc(k + 1);
        if (k) memcpy(chunk, in + a, k);
        if (pr_sse_decoder_feed(d, chunk, k) != PR_OK) abort();
        fz_drain(d, l, PR_SSE_DECODER_MORE);
        memset(chunk, 0xAA, k + 1);
        free(chunk);
        a += k;
        if (n == 0) break;
    }
    if (pr_sse_decoder_finish(d) != PR_OK) abort();
    fz_drain(d, l, PR_ECLOSED);
    /* work per input byte is bounded, whatever the split: a rescan of the
       chunk or of a carried line per line or per feed would be quadratic */
    if (getenv("FZ_RATIO") && n) fprintf(stderr, "RATIO %d %zu %zu %.2f\n", mode, n, pr__sse_test_work, (double)pr__sse_test_work / (double)n);
    if (pr__sse_test_work > FZ_WORK_PER_BYTE * n + 64) abort();
    last = pr_sse_decoder_last_id(d, &len);
    fz_put(l, "Z", 1);
    fz_put_str(l, last, len);
    r = pr_sse_decoder_retry_ms(d);
    fz_put(l, &r, sizeof r);
    pr_sse_decoder_destroy(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pr_sse_decoder_opts o;
    fz_log a = { 0, 0, 0 }, b = { 0, 0, 0 }, c = { 0, 0, 0 };
    unsigned seed;
    if (size < 1) return 0;
    seed = data[0];
    memset(&o, 0, sizeof o);
    o.raw_bytes = seed & 1;
    if (seed & 2) o.max_line_bytes = 1 + (seed >> 2 & 15) * 3;
    if (seed & 4) o.max_event_bytes = 1 + (seed >> 3 & 15) * 5;
    data++, size--;
    fz_run(data, size, &o, 0, seed, &a);
    fz_run(data, size, &o, 1, seed, &b);
    fz_run(data, size, &o, 2, seed, &c);
    if (!fz_log_same(&a, &b)) abort();
    if (!fz_log_same(&a, &c)) abort();
    free(a.p);
    free(b.p);
    free(c.p);
    return 0;
}
