/* fuzz_json.c - libFuzzer target for the json reader and writer (make fuzz).
   Parse; if that succeeds, write the document back, parse the output and
   require the two documents to be equal (structurally: types, keys in
   order, strings byte for byte, integers exactly, doubles by value), then
   write the second document and require the very same bytes as the
   first write (so every double, -0 included, keeps its exact written
   form through a round trip). The size's low bit picks the lone-surrogate
   mode so both decoders get exercised. Work per input byte is bounded:
   the reader's steps (pr__json_test_work: bytes examined or copied,
   values pushed and moved) stay within FZ_WORK_PER_BYTE per input byte,
   for the input and for the written document. */
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"

#define FZ_WORK_PER_BYTE 8

static void fz_work_check(size_t len) {
    if (getenv("FZ_RATIO") && len) fprintf(stderr, "RATIO %zu %zu %.2f\n", len, pr__json_test_work, (double)pr__json_test_work / (double)len);
    if (pr__json_test_work > FZ_WORK_PER_BYTE * (len + 1)) abort();
}

/* Structural equality; recursion is bounded by max_depth (512). */
static int fuzz_json_eq(const pr_json *a, const pr_json *b) {
    pr_json_iter x, y;
    size_t la, lb;
    const char *sa, *sb;
    double da, db;
    int64_t ia, ib;
    if (pr_json_type(a) != pr_json_type(b)) return 0;
    switch (pr_json_type(a)) {
    case PR_JSON_NUMBER:
        if (pr_json_int(a, &ia) == PR_OK && pr_json_int(b, &ib) == PR_OK) return ia == ib;
        if (pr_json_double(a, &da) != PR_OK || pr_json_double(b, &db) != PR_OK) return 0;
        return da == db;
    case PR_JSON_STRING:
        sa = pr_json_string(a, &la);
        sb = pr_json_string(b, &lb);
        return la == lb && memcmp(sa, sb, la) == 0;
    case PR_JSON_ARRAY:
    case PR_JSON_OBJECT:
        if (pr_json_len(a) != pr_json_len(b)) return 0;
        pr_json_iter_init(&x, a);
        pr_json_iter_init(&y, b);
        while (pr_json_iter_next(&x)) {
            if (!pr_json_iter_next(&y)) return 0;
            if (x.key_len != y.key_len || (x.key_len && memcmp(x.key, y.key, x.key_len) != 0)) return 0;
            if ((x.key == NULL) != (y.key == NULL)) return 0;
            if (!fuzz_json_eq(x.value, y.value)) return 0;
        }
        return !pr_json_iter_next(&y);
    default:
        return 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pr_json_doc *a = NULL, *b = NULL;
    pr_json_opts o;
    pr_json_error e;
    pr_json_writer w;
    pr_buf out, out2;
    int rc;
    memset(&o, 0, sizeof o);
    o.replace_lone_surrogates = (int)(size & 1);
    pr__json_test_work = 0;
    rc = pr_json_parse(&a, (const char *)data, size, &o, &e);
    fz_work_check(size);
    if (rc != PR_OK) {
        if (rc != PR_EPROTO && rc != PR_ELIMIT) abort();
        if (a != NULL || e.code != rc || e.offset > size) abort();
        return 0;
    }
    pr_buf_init(&out);
    pr_json_writer_init(&w, &out);
    if (pr_json_write_value(&w, pr_json_root(a)) != PR_OK || pr_json_writer_finish(&w) != PR_OK) abort();
    pr__json_test_work = 0;
    if (pr_json_parse(&b, out.data, out.len, &o, &e) != PR_OK) abort();
    fz_work_check(out.len);
    if (!fuzz_json_eq(pr_json_root(a), pr_json_root(b))) abort();
    pr_buf_init(&out2);
    pr_json_writer_init(&w, &out2);
    if (pr_json_write_value(&w, pr_json_root(b)) != PR_OK || pr_json_writer_finish(&w) != PR_OK) abort();
    if (out2.len != out.len || memcmp(out2.data, out.data, out.len) != 0) abort();
    pr_json_doc_destroy(a);
    pr_json_doc_destroy(b);
    pr_buf_deinit(&out);
    pr_buf_deinit(&out2);
    return 0;
}
