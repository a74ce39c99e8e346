/* fuzz_rfuture.c - libFuzzer target for the remote-future response classifier.
   clang -std=c11 -g -O1 -DPRISTINE_NO_TLS -DPRISTINE_TESTING -fsanitize=fuzzer,address,undefined \
       -fno-sanitize-recover=all tests/fuzz_rfuture.c -o build/fuzz/rfuture -lpthread

   The classifier is what the poll task does with a retrieve answer:
   pr__rfuture_answer for a 2xx, pr__rfuture_status for the rest. Byte 0
   picks the future's state (answered before, metadata already taken, a
   resubmittable submit kept, bad requests used, open_attempts 1, a small
   max_response_bytes, the body handed over parsed as res->json); the rest
   is what the server sends (status line, headers, body), read by
   pr_http_exchange from a scripted pr_conn, as the client would. The
   poller is real (made with a client that never connects); the future's
   state is a zeroed pr__rfuture like pr__rfuture_begin makes. Checks: the
   outcome is AGAIN (the future still pending, 0 <= delay <= the longest
   wait), DONE (the future settled, with a code the poller documents) or
   RESUBMIT (only for a 410 of a resubmittable job); nothing leaks; the
   head parse touches at most 2 bytes per input byte (its fold counter). */
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#include "fuzz/fuzz.h"

/* The answer as pr_http_client_fetch leaves it; PR_OK or the read's error. */
static int fz_result(pr_http_result *res, const unsigned char *data, size_t len, int json) {
    fz_conn fc;
    pr_url u;
    pr_http_request req;
    pr_buf b;
    char tmp[512];
    int rc;
    memset(res, 0, sizeof *res);
    fz_conn_init(&fc, data, len);
    if (pr_url_parse(&u, "http://fuzz.test/api/v1/retrieve_future", 39, NULL) != PR_OK) abort();
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.url = &u;
    pr__http_test_fold_work = 0;
    rc = pr_http_exchange(&res->resp, &fc.base, &req, NULL, NULL, PR_FOREVER);
    if (pr__http_test_fold_work > 2 * len) abort(); /* obs-fold joins stay linear */
    pr_url_deinit(&u);
    if (rc) return rc;
    pr_buf_init(&b);
    for (;;) {
        ptrdiff_t k = pr_http_read(res->resp, tmp, sizeof tmp, PR_FOREVER);
        if (k == PR_ECLOSED) break;
        if (k < 0) {
            pr_buf_deinit(&b);
            pr_http_response_destroy(res->resp);
            res->resp = NULL;
            return (int)k;
        }
        if (pr_buf_append(&b, tmp, (size_t)k) != PR_OK) abort();
    }
    res->status = pr_http_status(res->resp);
    res->body_len = b.len;
    res->body = (char *)pr__alloc(b.len + 1);
    if (!res->body) abort();
    if (b.len) memcpy(res->body, b.data, b.len);
    res->body[b.len] = 0;
    pr_buf_deinit(&b);
    if (json && pr_json_parse(&res->json, res->body, res->body_len, NULL, NULL) != PR_OK) res->json = NULL;
    res->attempts = 1;
    return PR_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pr_http_client *c = NULL;
    pr_rfuture_poller *p = NULL;
    pr_rfuture_poller_opts po;
    pr__rfuture r;
    pr_http_result res;
    pr_err_info e;
    int64_t delay = -1;
    int next, st;
    unsigned opt;
    if (size < 1) return 0;
    opt = data[0];
    data++, size--;
    if (fz_result(&res, data, size, (int)(opt & 1)) != PR_OK) {
        pr_sched_destroy();
        return 0;
    }
    if (pr_http_client_create(&c, NULL, NULL) != PR_OK) abort();
    memset(&po, 0, sizeof po);
    po.base_url = "http://127.0.0.1:9";
    if (opt & 2) po.open_attempts = 1;
    if (opt & 4) po.max_response_bytes = 100;
    if (opt & 8) po.max_failures = 2;
    if (pr_rfuture_poller_create(&p, c, &po, NULL) != PR_OK) abort();
    memset(&r, 0, sizeof r);
    r.p = p;
    r.until = PR_FOREVER;
    r.iteration = 1 + (int)(opt >> 6);
    r.allow_md = !(opt & 16);
    r.answered = (int)(opt >> 5 & 1);
    r.id = pr__strdup("req-fuzz", &r.id_n);
    if (opt & 128) {
        r.sbody = pr__strdup("{}", &r.sbody_n);
        r.spath = pr__strdup("/api/v1/sample", &r.spath_n);
    }
    if (!r.id || pr_future_create(&r.f) != PR_OK) abort();
    st = res.status;
    if (st >= 200 && st <= 299) {
        r.answered = 1;
        r.failures = 0;
        next = pr__rfuture_answer(&r, &res, pr_now(), &delay);
    } else {
        next = pr__rfuture_status(&r, &res, &delay);
    }
    switch (next) {
    case PR__RFUTURE_AGAIN:
        if (pr_future_state(r.f) != PR_FUTURE_PENDING) abort();
        if (delay < 0 || delay > p->o.hint_max_ms + p->o.poll_backoff.max_ms + p->o.conn_backoff.max_ms +
                                        PR__RFUTURE_BILLING_SLEEP_MS)
            abort();
        break;
    case PR__RFUTURE_DONE:
        if (pr_future_state(r.f) == PR_FUTURE_PENDING) abort();
        if (pr_future_state(r.f) == PR_FUTURE_REJECTED) {
            if (pr_future_last_error(r.f, &e) != PR_OK) abort();
            if (e.code != PR_EPROTO && e.code != PR_EFAILED && e.code != PR_EHTTP && e.code != PR_EEXPIRED &&
                e.code != PR_ETIMEDOUT && e.code != PR_ELIMIT && e.code != PR_ENOMEM)
                abort();
        } else if (!pr_future_value(r.f)) {
            abort();
        }
        break;
    case PR__RFUTURE_RESUBMIT:
        if (st != 410 || !r.sbody) abort();
        break;
    default:
        abort();
    }
    if (r.reserved) pr_wsem_release(p->bytes, r.reserved);
    pr_http_result_deinit(&res);
    pr_future_destroy(r.f);
    pr__free(r.id, r.id_n);
    pr__free(r.qreason, r.qreason_n);
    pr__free(r.spath, r.spath_n);
    pr__free(r.sbody, r.sbody_n);
    pr_rfuture_poller_destroy(p);
    pr_http_client_destroy(c);
    pr_sched_destroy();
    return 0;
}
