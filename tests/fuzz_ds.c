/* fuzz_ds.c - libFuzzer target for what a Durable Streams server sends
   besides the data: the response headers and the SSE control events.
   clang -std=c11 -g -O1 -DPRISTINE_NO_TLS -DPRISTINE_TESTING -fsanitize=fuzzer,address,undefined \
       -fno-sanitize-recover=all tests/fuzz_ds.c -o build/fuzz/ds -lpthread

   Byte 0 picks the mode and the read's state. Headers (bit 7 clear): the
   rest is a response read by pr_http_exchange from a scripted pr_conn;
   pr__ds_fill takes Stream-Next-Offset, Stream-Cursor, Stream-Closed,
   Stream-Up-To-Date, the Producer-* numbers etc.; pr__ds_meaning names an
   error status; pr__ds_read_advance moves a read to the offset and
   cursor. Checks: every view lies inside its header's value and is
   trimmed, numbers are -1 or what the header says, a meaning is a
   PR_DS_* code, an accepted offset / cursor is stored exactly, and the
   head parse touches at most 2 bytes per input byte (its fold counter).
   SSE (bit 7 set): the rest is a DS SSE body (data and control events)
   fed to pr__ds_read_sse_event whole and at fuzzer-chosen splits
   (byte 1 seeds them); the chunks (data, items, offset, cursor, flags)
   and the final code must be the same for every split. Bits 0-1: bytes,
   text, JSON or base64 data; bit 2: max_chunk_bytes 64. Work per input
   byte is bounded for every split: the SSE decoder's, the read's own and
   the JSON reader's counters (pr__sse_test_work, pr__ds_read_test_work,
   pr__json_test_work) add up to at most FZ_WORK_PER_BYTE per body byte. */
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#include "fuzz/fuzz.h"

#define FZ_WORK_PER_BYTE 32

/* A read as pr_ds_read_open leaves it, at offset "-1". */
static void fz_read_init(pr_ds_read *r, unsigned opt) {
    memset(r, 0, sizeof *r);
    r->o.max_chunk_bytes = (opt & 4) ? 64 : 1 << 20;
    r->json = (opt & 3) == 2;
    r->text = (opt & 3) == 1;
    r->base64 = (opt & 3) == 3;
    r->offset = pr__strndup("-1", 2);
    if (!r->offset) abort();
    pr_buf_init(&r->batch);
    pr_buf_init(&r->out);
}

static void fz_read_deinit(pr_ds_read *r) {
    pr__strfree(&r->offset);
    pr__strfree(&r->cursor);
    pr_buf_deinit(&r->batch);
    pr_buf_deinit(&r->out);
    pr_json_doc_destroy(r->doc);
}

static int fz_trimmed(pr_slice s) {
    return !s.len || (s.ptr[0] != ' ' && s.ptr[0] != '\t' && s.ptr[s.len - 1] != ' ' && s.ptr[s.len - 1] != '\t');
}

static void fz_view(pr_http_response *resp, const char *name, pr_slice s) {
    const pr_slice *v = pr_http_header_get(resp, name);
    if (!v) {
        if (s.len || s.ptr) abort();
        return;
    }
    if (s.len && (s.ptr < v->ptr || s.ptr + s.len > v->ptr + v->len)) abort();
    if (!fz_trimmed(s)) abort();
}

static void fz_num(pr_http_response *resp, const char *name, int64_t got) {
    const pr_slice *v = pr_http_header_get(resp, name);
    int64_t n;
    if (v && pr_parse_i64(pr_slice_trim(*v), &n) == PR_OK) {
        if (got != n) abort();
    } else if (got != -1) {
        abort();
    }
}

static void fz_headers(const unsigned char *data, size_t len, unsigned opt) {
    fz_conn fc;
    pr_url u;
    pr_http_request req;
    pr_http_response *resp = NULL;
    pr_ds_result res;
    pr_ds_read r;
    int m, rc;
    fz_conn_init(&fc, data, len);
    if (pr_url_parse(&u, "http://fuzz.test/v1/stream/s", 28, NULL) != PR_OK) abort();
    memset(&req, 0, sizeof req);
    req.method = "GET";
    req.url = &u;
    pr__http_test_fold_work = 0;
    rc = pr_http_exchange(&resp, &fc.base, &req, NULL, NULL, PR_FOREVER);
    if (pr__http_test_fold_work > 2 * len) abort(); /* obs-fold joins stay linear */
    pr_url_deinit(&u);
    if (rc) return;
    memset(&res, 0, sizeof res);
    pr__ds_fill(&res, resp);
    if (res.status != pr_http_status(resp)) abort();
    fz_view(resp, "stream-next-offset", res.offset);
    fz_view(resp, "content-type", res.content_type);
    fz_view(resp, "etag", res.etag);
    fz_view(resp, "stream-expires-at", res.expires_at);
    fz_view(resp, "stream-cursor", res.cursor);
    fz_num(resp, "stream-ttl", res.ttl_s);
    fz_num(resp, "producer-epoch", res.producer_epoch);
    fz_num(resp, "producer-seq", res.producer_seq);
    fz_num(resp, "producer-expected-seq", res.expected_seq);
    fz_num(resp, "producer-received-seq", res.received_seq);
    if ((res.closed != 0 && res.closed != 1) || (res.up_to_date != 0 && res.up_to_date != 1)) abort();
    m = pr__ds_meaning(&res, (opt & 8) ? "create" : "read");
    if (m < PR_DS_NOT_FOUND || m > PR_DS_FORBIDDEN || !pr__ds_meaning_text(m)) abort();
    fz_read_init(&r, opt);
    rc = pr__ds_read_advance(&r, res.offset, res.cursor);
    if (rc == PR_OK) {
        if (strlen(r.offset) != res.offset.len || memcmp(r.offset, res.offset.ptr, res.offset.len) != 0) abort();
        if (res.cursor.len && (!r.cursor || strlen(r.cursor) != res.cursor.len ||
                               memcmp(r.cursor, res.cursor.ptr, res.cursor.len) != 0))
            abort();
        if (!pr__ds_token_ok(r.offset, strlen(r.offset))) abort();
    } else if (rc != PR_EPROTO || strcmp(r.offset, "-1") != 0) {
        abort();
    }
    fz_read_deinit(&r);
    pr_http_response_destroy(resp);
}

static void fz_sse(const unsigned char *data, size_t len, unsigned opt, unsigned seed, fz_log *l) {
    pr_ds_read r;
    pr_sse_decoder_opts so;
    size_t a = 0;
    int rc = PR_OK, fin = 0;
    fz_read_init(&r, opt);
    memset(&so, 0, sizeof so);
    so.max_event_bytes = r.o.max_chunk_bytes;
    if (pr_sse_decoder_create(&r.dec, &so) != PR_OK) abort();
    pr__sse_test_work = pr__ds_read_test_work = pr__json_test_work = 0;
    while (rc == PR_OK) {
        pr_sse_event ev;
        int got = 0;
        rc = pr_sse_decoder_next(r.dec, &ev);
        if (rc == PR_OK) {
            pr_ds_chunk c;
            rc = pr__ds_read_sse_event(&r, &ev, &c, &got);
            if (rc == PR_OK && got) {
                fz_put(l, "C", 1);
                fz_put_str(l, c.data, c.len);
                fz_put_str(l, c.offset, c.offset_len);
                if (c.offset_len != strlen(c.offset) || !pr__ds_token_ok(c.offset, c.offset_len)) abort();
                fz_put_str(l, c.cursor ? c.cursor : "", c.cursor ? strlen(c.cursor) : 0);
                fz_put(l, &c.up_to_date, sizeof c.up_to_date);
                fz_put(l, &c.closed, sizeof c.closed);
                if (r.json && (!c.items || pr_json_type(c.items) != PR_JSON_ARRAY)) abort();
                if (r.json) {
                    size_t n = pr_json_len(c.items);
                    fz_put(l, &n, sizeof n);
                }
            }
        } else if (rc == PR_SSE_DECODER_MORE) {
            size_t k;
            if (a == len) {
                if (fin) {
                    rc = PR_ECLOSED;
                    break;
                }
                fin = 1;
                rc = pr_sse_decoder_finish(r.dec);
                continue;
            }
            k = seed ? 1 + (seed = seed * 1103515245u + 12345u, (seed >> 16) % 29) : len;
            if (k > len - a) k = len - a;
            rc = pr_sse_decoder_feed(r.dec, (const char *)data + a, k);
            a += k;
        } else if (rc == PR_ELIMIT) {
            break;
        }
    }
    fz_put(l, "Z", 1);
    fz_put(l, &rc, sizeof rc);
    {
        size_t w = pr__sse_test_work + pr__ds_read_test_work + pr__json_test_work;
        if (getenv("FZ_RATIO") && len) fprintf(stderr, "RATIO %zu %zu %zu %zu %.2f\n", len, pr__sse_test_work, pr__ds_read_test_work, pr__json_test_work, (double)w / (double)len);
        if (w > FZ_WORK_PER_BYTE * (len + 1)) abort();
    }
    pr_sse_decoder_destroy(r.dec);
    r.dec = NULL;
    fz_read_deinit(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned opt;
    if (size < 2) return 0;
    opt = data[0];
    if (!(opt & 0x80)) {
        fz_headers(data + 1, size - 1, opt);
    } else {
        fz_log a = { 0, 0, 0 }, b = { 0, 0, 0 }, c = { 0, 0, 0 };
        unsigned seed = data[1];
        fz_sse(data + 2, size - 2, opt, 0, &a);
        fz_sse(data + 2, size - 2, opt, seed | 1, &b);
        fz_sse(data + 2, size - 2, opt, (seed | 1) * 7919u, &c);
        if (!fz_log_same(&a, &b)) abort();
        if (!fz_log_same(&a, &c)) abort();
        free(a.p);
        free(b.p);
        free(c.p);
    }
    pr_sched_destroy();
    return 0;
}
