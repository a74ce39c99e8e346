/* http: request writer, response head parser, body framing, limits, reuse,
   idle timeout, cancellation and allocation failures, over a scripted pr_conn. */

/* ---- a scripted connection ---- */
typedef struct http_tconn {
    pr_conn base;           /* first */
    const char *data;       /* the response bytes handed out by read */
    size_t len, pos;
    size_t cut;             /* 0 = none; else the first read returns at most cut bytes */
    size_t chunk;           /* 0 = as much as asked; else at most chunk bytes per read */
    int random;             /* reads return 1..17 bytes at random */
    int end_code;           /* 0 = PR_ECLOSED at the end; else this code */
    int hang;               /* at the end: block until the deadline (or cancel) */
    size_t delay_pos;       /* before handing out this offset, wait delay_ms (once) */
    int delay_ms, delayed;
    int64_t ready_at;
    int write_err;          /* nonzero: writes fail with it */
    pr_buf out;             /* what was written */
} http_tconn;

static ptrdiff_t http_tconn_read(pr_conn *c, void *buf, size_t n, int64_t deadline) {
    http_tconn *t = (http_tconn *)(void *)c;
    size_t k;
    if (t->delay_ms && !t->delayed && t->pos == t->delay_pos) {
        int rc;
        if (!t->ready_at) t->ready_at = pr_now() + t->delay_ms;
        rc = pr_sleep(deadline < t->ready_at ? deadline : t->ready_at);
        if (rc) return rc;
        if (pr_now() < t->ready_at) return PR_ETIMEDOUT;
        t->delayed = 1;
    }
    if (t->pos == t->len) {
        if (t->hang) {
            int rc = pr_sleep(deadline);
            return rc ? rc : PR_ETIMEDOUT;
        }
        return t->end_code ? t->end_code : PR_ECLOSED;
    }
    k = t->len - t->pos;
    if (k > n) k = n;
    if (t->cut && t->pos < t->cut && k > t->cut - t->pos) k = t->cut - t->pos;
    if (t->chunk && k > t->chunk) k = t->chunk;
    if (t->random) {
        size_t r = 1 + (size_t)(pt_rand() % 17);
        if (k > r) k = r;
    }
    if (t->delay_ms && !t->delayed && t->pos < t->delay_pos && k > t->delay_pos - t->pos) k = t->delay_pos - t->pos;
    memcpy(buf, t->data + t->pos, k);
    t->pos += k;
    return (ptrdiff_t)k;
}

static ptrdiff_t http_tconn_write(pr_conn *c, const void *buf, size_t n, int64_t deadline) {
    http_tconn *t = (http_tconn *)(void *)c;
    int rc;
    (void)deadline;
    if (t->write_err) return t->write_err;
    if ((rc = pr_buf_append(&t->out, buf, n)) != 0) return rc;
    return (ptrdiff_t)n;
}

static int http_tconn_shutdown(pr_conn *c, int64_t deadline) {
    (void)c;
    (void)deadline;
    return PR_OK;
}

static void http_tconn_destroy(pr_conn *c) { (void)c; }

static const pr_conn_ops http_tconn_ops = { http_tconn_read, http_tconn_write, http_tconn_shutdown,
                                            http_tconn_destroy };

static void http_tconn_init(http_tconn *t, const char *resp) {
    memset(t, 0, sizeof *t);
    t->base.ops = &http_tconn_ops;
    t->data = resp;
    t->len = strlen(resp);
    pr_buf_init(&t->out);
}

/* ---- running one exchange and collecting the outcome ---- */
typedef struct http_result {
    int rc;           /* exchange error, or body error (PR_OK when the body ended with PR_ECLOSED) */
    int status, minor, reusable_before, reusable;
    char hdrs[2048];  /* "name: value\n" for every field */
    size_t hdrs_len;
    char body[8192];
    size_t body_len;
    char msg[sizeof ((pr_err_info *)0)->msg];
} http_result;

enum { HTTP_READ_SMALL, HTTP_READ_BIG, HTTP_READ_SPAN };

static void http_collect(http_result *res, http_tconn *t, const char *method, const pr_http_opts *opts, int mode) {
    pr_url u;
    pr_http_request req;
    pr_http_response *r = NULL;
    size_t i;
    memset(res, 0, sizeof *res);
    memset(&u, 0, sizeof u);
    memset(&req, 0, sizeof req);
    if ((res->rc = pr_url_parse(&u, "http://example.com/", 19, NULL)) != PR_OK) return;
    req.method = method;
    req.url = &u;
    res->rc = pr_http_exchange(&r, &t->base, &req, opts, NULL, pr_deadline_in(10000));
    if (res->rc) {
        snprintf(res->msg, sizeof res->msg, "%s", t->base.err.msg);
        pr_url_deinit(&u);
        return;
    }
    res->status = pr_http_status(r);
    res->minor = pr_http_version_minor(r);
    for (i = 0; i < pr_http_header_count(r); i++) {
        pr_http_header h;
        pr_http_header_at(r, i, &h);
        res->hdrs_len += (size_t)snprintf(res->hdrs + res->hdrs_len, sizeof res->hdrs - res->hdrs_len, "%.*s: %.*s\n",
                                          (int)h.name.len, h.name.ptr, (int)h.value.len, h.value.ptr);
        if (res->hdrs_len >= sizeof res->hdrs) res->hdrs_len = sizeof res->hdrs - 1; /* truncated */
    }
    res->reusable_before = pr_http_reusable(r);
    for (;;) {
        int rc;
        if (mode == HTTP_READ_SPAN) {
            const char *p;
            size_t n;
            rc = pr_http_next_span(r, &p, &n, pr_deadline_in(10000));
            if (rc == PR_OK) {
                if (n == 0 || res->body_len + n > sizeof res->body) {
                    rc = PR_ELIMIT;
                } else {
                    memcpy(res->body + res->body_len, p, n);
                    res->body_len += n;
                    continue;
                }
            }
        } else {
            static char big[65536];
            size_t want = mode == HTTP_READ_SMALL ? 5 : sizeof big;
            ptrdiff_t k = pr_http_read(r, big, want, pr_deadline_in(10000));
            if (k > 0) {
                if ((size_t)k > want || res->body_len + (size_t)k > sizeof res->body) {
                    rc = PR_ELIMIT;
                } else {
                    memcpy(res->body + res->body_len, big, (size_t)k);
                    res->body_len += (size_t)k;
                    continue;
                }
            } else {
                rc = (int)k;
            }
        }
        if (rc == PR_ECLOSED) {
            rc = PR_OK;
            /* the end sticks */
            PT_EQ_INT(pr_http_read(r, res->body, 1, pr_deadline_in(10000)), PR_ECLOSED);
        } else {
            pr_err_info e;
            pr_http_last_error(r, &e);
            snprintf(res->msg, sizeof res->msg, "%s", e.msg);
        }
        res->rc = rc;
        break;
    }
    res->reusable = pr_http_reusable(r);
    pr_http_response_destroy(r);
    pr_url_deinit(&u);
}

/* Run a canned response through one exchange (GET unless method). */
static void http_run(http_result *res, const char *resp, const char *method, const pr_http_opts *opts, size_t cut,
                     size_t chunk, int mode) {
    http_tconn t;
    http_tconn_init(&t, resp);
    t.cut = cut;
    t.chunk = chunk;
    http_collect(res, &t, method, opts, mode);
    pr_buf_deinit(&t.out);
}

#define HTTP_BODY_IS(res, want) \
    do { PT_EQ_INT((res).body_len, strlen(want)); PT_EQ_MEM((res).body, (want), strlen(want)); } while (0)

static int http_same(const http_result *a, const http_result *b) {
    return a->rc == b->rc && a->status == b->status && a->reusable == b->reusable && a->hdrs_len == b->hdrs_len &&
           memcmp(a->hdrs, b->hdrs, a->hdrs_len) == 0 && a->body_len == b->body_len &&
           memcmp(a->body, b->body, a->body_len) == 0;
}

/* ---- framing ---- */

PT_TEST(http_content_length_body) {
    http_result res;
    http_run(&res, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world", NULL, NULL,
             0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    PT_EQ_INT(res.status, 200);
    PT_EQ_INT(res.minor, 1);
    HTTP_BODY_IS(res, "hello world");
    PT_EQ_STR(res.hdrs, "Content-Length: 11\nContent-Type: text/plain\n");
    PT_EQ_INT(res.reusable_before, 0);
    PT_EQ_INT(res.reusable, 1);
}

PT_TEST(http_status_is_not_an_error) {
    http_result res;
    http_run(&res, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 4\r\n\r\nbusy", NULL, NULL,
             0, 0, HTTP_READ_BIG);
    PT_EQ_ERR(res.rc, PR_OK);
    PT_EQ_INT(res.status, 503);
    HTTP_BODY_IS(res, "busy");
    PT_EQ_INT(res.reusable, 1);
}

PT_TEST(http_head_accessors) {
    static const char resp[] = "HTTP/1.0 404 Not Found Here\nX-One: a\nx-two:b  \nEmpty:\n\n";
    http_tconn t;
    pr_url u;
    pr_http_request req;
    pr_http_response *r;
    pr_http_header h;
    const pr_slice *v;
    pr_slice reason;
    memset(&u, 0, sizeof u);
    memset(&req, 0, sizeof req);
    http_tconn_init(&t, resp);
    PT_REQUIRE(pr_url_parse(&u, "http://h/", 9, NULL) == PR_OK);
    req.url = &u;
    PT_EQ_ERR(pr_http_exchange(&r, &t.base, &req, NULL, NULL, pr_deadline_in(1000)), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 404);
        PT_EQ_INT(pr_http_version_minor(r), 0);
        reason = pr_http_reason(r);
        PT_CHECK(pr_slice_eq(reason, pr_slice_cstr("Not Found Here")));
        PT_EQ_INT(pr_http_header_count(r), 3);
        PT_EQ_ERR(pr_http_header_at(r, 1, &h), PR_OK);
        PT_CHECK(pr_slice_eq(h.name, pr_slice_cstr("x-two")));
        PT_CHECK(pr_slice_eq(h.value, pr_slice_cstr("b")));
        PT_EQ_ERR(pr_http_header_at(r, 3, &h), PR_EINVAL);
        v = pr_http_header_get(r, "X-TWO");
        PT_CHECK(v && pr_slice_eq(*v, pr_slice_cstr("b")));
        v = pr_http_header_get(r, "empty");
        PT_CHECK(v && v->len == 0);
        PT_CHECK(pr_http_header_get(r, "x-three") == NULL);
        PT_EQ_INT(pr_http_read(r, &h, sizeof h, pr_deadline_in(1000)), PR_ECLOSED); /* body to EOF: empty */
        PT_EQ_INT(pr_http_reusable(r), 0);
        /* the views survive the body reads */
        PT_CHECK(pr_slice_eq(pr_http_reason(r), pr_slice_cstr("Not Found Here")));
    }
    pr_http_response_destroy(r);
    pr_http_response_destroy(NULL);
    PT_EQ_INT(pr_http_status(NULL), PR_EINVAL);
    PT_EQ_INT(pr_http_header_count(NULL), 0);
    PT_EQ_INT(pr_http_reusable(NULL), 0);
    pr_url_deinit(&u);
    pr_buf_deinit(&t.out);
}

PT_TEST(http_chunked_body) {
    static const char resp[] =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n"
        "1;ext=1;name=\"q v\"\r\n \r\n"
        "00006 ;  e\r\nworld!\r\n"
        "A\r\n0123456789\r\n"
        "0\r\nX-Trailer: t\r\nContent-Length: 99\r\n\r\n";
    int mode;
    for (mode = HTTP_READ_SMALL; mode <= HTTP_READ_SPAN; mode++) {
        http_result res;
        http_run(&res, resp, NULL, NULL, 0, 0, mode);
        PT_EQ_ERR(res.rc, PR_OK);
        HTTP_BODY_IS(res, "hello world!0123456789");
        PT_EQ_INT(res.reusable, 1);
        PT_EQ_STR(res.hdrs, "Transfer-Encoding: chunked\n"); /* trailers discarded */
    }
}

PT_TEST(http_chunked_empty_and_uppercase_hex) {
    http_result res;
    http_run(&res, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n0\r\n\r\n", NULL, NULL, 0, 0,
             HTTP_READ_SPAN);
    PT_EQ_ERR(res.rc, PR_OK);
    PT_EQ_INT(res.body_len, 0);
    PT_EQ_INT(res.reusable, 1);
    http_run(&res, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1F\r\n0123456789abcdef0123456789ABCDE\r\n0\r\n\r\n",
             NULL, NULL, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    HTTP_BODY_IS(res, "0123456789abcdef0123456789ABCDE");
}

PT_TEST(http_until_close_body) {
    http_result res;
    http_run(&res, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\ndata: 2\n\n", NULL, NULL, 0, 0,
             HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    HTTP_BODY_IS(res, "data: 1\n\ndata: 2\n\n");
    PT_EQ_INT(res.reusable, 0);
}

PT_TEST(http_until_close_conn_error_propagates) {
    /* over TLS a close without close_notify is the conn's error, not the end */
    http_tconn t;
    http_result res;
    http_tconn_init(&t, "HTTP/1.1 200 OK\r\n\r\npartial");
    t.end_code = PR_ETLS;
    pr__err_set(&t.base.err, PR_ETLS, 0, "tls: truncated (no close_notify)");
    http_collect(&res, &t, NULL, NULL, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_ETLS);
    PT_EQ_STR(res.msg, "tls: truncated (no close_notify)");
    HTTP_BODY_IS(res, "partial");
    PT_EQ_INT(res.reusable, 0);
    pr_buf_deinit(&t.out);
}

PT_TEST(http_te_not_chunked_reads_to_close) {
    http_result res;
    http_run(&res, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nabcdef", NULL, NULL, 0, 0,
             HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    HTTP_BODY_IS(res, "abcdef");
    PT_EQ_INT(res.reusable, 0);
    /* HTTP/1.0 with TE: faulty framing, read to close */
    http_run(&res, "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", NULL, NULL, 0, 0,
             HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    HTTP_BODY_IS(res, "3\r\nabc\r\n0\r\n\r\n");
    PT_EQ_INT(res.reusable, 0);
}

PT_TEST(http_te_and_cl_te_wins_no_reuse) {
    http_result res;
    http_run(&res, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
             NULL, NULL, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    HTTP_BODY_IS(res, "abc");
    PT_EQ_INT(res.reusable, 0);
}

PT_TEST(http_interim_responses_skipped) {
    http_result res;
    http_run(&res,
             "HTTP/1.1 100 Continue\r\n\r\n"
             "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
             "HTTP/1.1 102 Processing\r\n\r\n"
             "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
             NULL, NULL, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    PT_EQ_INT(res.status, 200);
    PT_EQ_STR(res.hdrs, "Content-Length: 2\n");
    HTTP_BODY_IS(res, "hi");
    PT_EQ_INT(res.reusable, 1);
}

/* Interim responses never have a body, whatever framing fields they carry. */
PT_TEST(http_interim_never_has_body) {
    http_result res;
    http_run(&res,
             "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n"
             "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
             NULL, NULL, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    PT_EQ_INT(res.status, 200);
    HTTP_BODY_IS(res, "hi");
    PT_EQ_INT(res.reusable, 1);
    http_run(&res,
             "HTTP/1.1 103 Early Hints\r\nTransfer-Encoding: chunked\r\nLink: </a>\r\n\r\n"
             "HTTP/1.1 102 Processing\r\nContent-Length: 99\r\n\r\n"
             "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
             NULL, NULL, 0, 0, HTTP_READ_SPAN);
    PT_EQ_ERR(res.rc, PR_OK);
    PT_EQ_INT(res.status, 200);
    PT_EQ_STR(res.hdrs, "Content-Length: 3\n");
    HTTP_BODY_IS(res, "abc");
    PT_EQ_INT(res.reusable, 1);
    /* ... and a 100 with a Content-Length followed by a 204: nothing is read as a body */
    http_run(&res, "HTTP/1.1 100 Continue\r\nContent-Length: 3\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", NULL, NULL, 0,
             0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    PT_EQ_INT(res.status, 204);
    PT_EQ_INT(res.reusable, 1);
}

PT_TEST(http_101_is_final_and_raw) {
    http_result res;
    /* no Upgrade field in the request: a 101 is a protocol error */
    http_run(&res, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi",
             NULL, NULL, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_EPROTO);
    PT_CHECK(strstr(res.msg, "101") != NULL && strstr(res.msg, "Upgrade") != NULL);
    http_run(&res, "HTTP/1.1 200 Connection established\r\n\r\ntunnel", "CONNECT", NULL, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    HTTP_BODY_IS(res, "tunnel");
    PT_EQ_INT(res.reusable, 0);
}

PT_TEST(http_bodiless_responses) {
    http_result res;
    http_run(&res, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "HEAD", NULL, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    PT_EQ_INT(res.body_len, 0);
    PT_EQ_INT(res.reusable_before, 1);
    PT_EQ_INT(res.reusable, 1);
    http_run(&res, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HEAD", NULL, 0, 0, HTTP_READ_SPAN);
    PT_EQ_ERR(res.rc, PR_OK);
    PT_EQ_INT(res.reusable, 1);
    http_run(&res, "HTTP/1.1 204 No Content\r\n\r\n", NULL, NULL, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    PT_EQ_INT(res.status, 204);
    PT_EQ_INT(res.body_len, 0);
    PT_EQ_INT(res.reusable, 1);
    http_run(&res, "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", NULL, NULL, 0, 0, HTTP_READ_BIG);
    PT_EQ_ERR(res.rc, PR_OK);
    PT_EQ_INT(res.body_len, 0);
    PT_EQ_INT(res.reusable, 1);
    /* a zero Content-Length */
    http_run(&res, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", NULL, NULL, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    PT_EQ_INT(res.reusable_before, 1);
    /* a 204 followed by stray bytes: delivered as nothing, but not reusable */
    http_run(&res, "HTTP/1.1 204 No Content\r\n\r\ngarbage", NULL, NULL, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    PT_EQ_INT(res.body_len, 0);
    PT_EQ_INT(res.reusable, 0);
}

PT_TEST(http_reuse_flag) {
    static const struct { const char *resp; int reusable; } cases[] = {
        { "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", 1 },
        { "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", 0 },
        { "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\nx", 0 },
        { "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 0 },
        { "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx", 1 },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", 1 },
        { "HTTP/1.1 200 OK\r\n\r\nx", 0 },
        { "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n", 0 }, /* stray bytes after */
        { "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nx", 0 },                   /* truncated */
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_result res;
        http_run(&res, cases[i].resp, NULL, NULL, 0, 0, HTTP_READ_SMALL);
        if (res.reusable != cases[i].reusable) pt_fail(__FILE__, __LINE__, "case %lu: reusable %d", (unsigned long)i,
                                                         res.reusable);
        PT_EQ_INT(res.reusable_before, 0);
    }
}

PT_TEST(http_obs_fold_replaced_by_space) {
    http_result res;
    http_run(&res, "HTTP/1.1 200 OK\r\nX-Long: first\r\n   second \r\n\tthird\r\nEmpty:\r\n folded\r\nContent-Length: 0\r\n\r\n",
             NULL, NULL, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    PT_EQ_STR(res.hdrs, "X-Long: first     second   \tthird\nEmpty: folded\nContent-Length: 0\n");
}

/* A head of whitespace-only fold lines ("X: a" + " " lines) once cost
   O(n^2): every fold re-blanked the growing run of spaces. The join now
   touches each byte a bounded number of times; the counter says how many. */
PT_TEST(http_obs_fold_linear) {
    static const size_t sizes[] = { 300, 20000, 80000 };
    size_t k;
    for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        pr_buf head;
        http_result res;
        pr_http_opts o;
        size_t i, work;
        memset(&o, 0, sizeof o);
        o.max_head_bytes = 1u << 20;
        pr_buf_init(&head);
        PT_REQUIRE(pr_buf_append_str(&head, "HTTP/1.1 200 OK\r\nX: a\r\n") == PR_OK);
        for (i = 0; i < sizes[k]; i++) PT_REQUIRE(pr_buf_append_str(&head, " \r\n") == PR_OK);
        PT_REQUIRE(pr_buf_append_str(&head, " b\r\nContent-Length: 0\r\n\r\n") == PR_OK);
        pr__http_test_fold_work = 0;
        http_run(&res, head.data, NULL, &o, 0, 0, HTTP_READ_SMALL);
        work = pr__http_test_fold_work;
        PT_EQ_ERR(res.rc, PR_OK);
        PT_CHECK(strncmp(res.hdrs, "X: a ", 5) == 0);
        if (k == 0) PT_CHECK(strstr(res.hdrs, " b\nContent-Length: 0\n") != NULL); /* fits in res.hdrs */
        if (work > 2 * head.len)
            pt_fail(__FILE__, __LINE__, "%lu fold lines: %lu bytes touched for a %lu-byte head, want <= %lu",
                    (unsigned long)sizes[k], (unsigned long)work, (unsigned long)head.len,
                    (unsigned long)(2 * head.len));
        pr_buf_deinit(&head);
    }
}

PT_TEST(http_duplicate_content_length) {
    http_result res;
    http_run(&res, "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc", NULL, NULL, 0, 0,
             HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    HTTP_BODY_IS(res, "abc");
    http_run(&res, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", NULL, NULL, 0, 0,
             HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_EPROTO);
    PT_EQ_STR(res.msg, "http: invalid or conflicting Content-Length");
    http_run(&res, "HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd", NULL, NULL, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_EPROTO);
    {
        /* invalid values: a field with no value (else the body would run to
           close), signs, inner spaces, hex, overflow */
        static const char *const bad[] = {
            "", " ", ",", " , ", ",,", "+5", "-1", "5 5", "0x10", "5a", "5.0",
            "18446744073709551616", "99999999999999999999999", "123456789012345678901234567890",
        };
        size_t i;
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            char resp[256];
            snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Length: %s\r\n\r\nhello", bad[i]);
            http_run(&res, resp, NULL, NULL, 0, 0, HTTP_READ_SMALL);
            if (res.rc != PR_EPROTO)
                pt_fail(__FILE__, __LINE__, "CL '%s': got %s, want PR_EPROTO", bad[i], pt_errname(res.rc));
            /* the same next to a valid field */
            snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: %s\r\n\r\nhello",
                     bad[i]);
            http_run(&res, resp, NULL, NULL, 0, 0, HTTP_READ_SMALL);
            if (res.rc != PR_EPROTO)
                pt_fail(__FILE__, __LINE__, "CL 5 + '%s': got %s, want PR_EPROTO", bad[i], pt_errname(res.rc));
        }
        /* the largest value parses (then the body is truncated) */
        http_run(&res, "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nab", NULL, NULL, 0, 0,
                 HTTP_READ_SMALL);
        PT_EQ_STR(res.msg, "http: truncated body");
        /* empty list elements next to a value are allowed (RFC 9110 5.6.1) */
        http_run(&res, "HTTP/1.1 200 OK\r\nContent-Length: , 3,\r\n\r\nabc", NULL, NULL, 0, 0, HTTP_READ_SMALL);
        PT_EQ_ERR(res.rc, PR_OK);
        HTTP_BODY_IS(res, "abc");
    }
}

PT_TEST(http_malformed_heads) {
    static const char *const bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/2.0 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "http/1.1 200 OK\r\n\r\n",
        "SSH-2.0-OpenSSH_9.6\r\n",
        "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
        "HTTP/1.1 200 OK\r\nName : space before colon\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad(Name): x\r\n\r\n",
        "HTTP/1.1 200 OK\r\n folded first\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\x01 b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", /* truncated head */
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_result res;
        http_run(&res, bad[i], NULL, NULL, 0, 0, HTTP_READ_SMALL);
        if (res.rc != PR_EPROTO)
            pt_fail(__FILE__, __LINE__, "case %lu: got %s, want PR_EPROTO", (unsigned long)i, pt_errname(res.rc));
        PT_CHECK(strncmp(res.msg, "http: ", 6) == 0);
    }
    {
        http_result res;
        http_run(&res, "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", NULL, NULL, 0, 0, HTTP_READ_SMALL); /* strlen stops */
        PT_EQ_ERR(res.rc, PR_EPROTO);
    }
}

PT_TEST(http_nul_in_head_rejected) {
    static const char resp[] = "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n";
    http_tconn t;
    http_result res;
    http_tconn_init(&t, resp);
    t.len = sizeof resp - 1;
    http_collect(&res, &t, NULL, NULL, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_EPROTO);
    pr_buf_deinit(&t.out);
}

PT_TEST(http_malformed_chunked) {
    static const char *const bad[] = {
        "zz\r\n",
        "0x5\r\nhello\r\n0\r\n\r\n",
        "-5\r\n",
        " 5\r\nhello\r\n0\r\n\r\n",
        "5 \r\nhello\r\n0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n",          /* bare LF after size */
        "5\r\nhelloXX0\r\n\r\n",          /* no CRLF after data */
        "5\r\nhello\r0\r\n\r\n",
        "5;a\x01\r\nhello\r\n0\r\n\r\n",  /* control byte in extension */
        "11111111111111111\r\n",          /* 17 digits */
        "0\r\nX: t\n\r\n",                /* bare LF in trailer */
        "0\r\n\n",
        "0\r\n\rx",
        "5\r\nhel",                       /* truncated */
        "5\r\nhello\r\n",                 /* truncated: no last chunk */
        "0\r\nX: t\r\n",                  /* truncated trailers */
        /* trailer lines follow the header field rules */
        "0\r\nno colon here\r\n\r\n",
        "0\r\nX : t\r\n\r\n",              /* whitespace before the colon */
        "0\r\n: t\r\n\r\n",                /* empty name */
        "0\r\nX(y): t\r\n\r\n",            /* not a token */
        "0\r\nX: a\rb\r\n\r\n",            /* bare CR in the value */
        "0\r\nX: a\x01b\r\n\r\n",          /* control byte */
        "0\r\nX: a\x7f\r\n\r\n",           /* DEL */
        "0\r\n t\r\n\r\n",                 /* obs-fold before the first trailer field */
        "0\r\nX\r\n\r\n",                  /* name only */
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char resp[256];
        http_result res;
        snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%s", bad[i]);
        http_run(&res, resp, NULL, NULL, 0, 0, HTTP_READ_SMALL);
        if (res.rc != PR_EPROTO)
            pt_fail(__FILE__, __LINE__, "case %lu: got %s, want PR_EPROTO", (unsigned long)i, pt_errname(res.rc));
        PT_EQ_INT(res.reusable, 0);
    }
}

PT_TEST(http_truncated_bodies) {
    http_result res;
    http_run(&res, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", NULL, NULL, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_EPROTO);
    PT_EQ_STR(res.msg, "http: truncated body");
    HTTP_BODY_IS(res, "abc");
    PT_EQ_INT(res.reusable, 0);
    http_run(&res, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", NULL, NULL, 0, 0, HTTP_READ_BIG);
    PT_EQ_ERR(res.rc, PR_EPROTO);
    http_run(&res, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", NULL, NULL, 0, 0, HTTP_READ_SPAN);
    PT_EQ_ERR(res.rc, PR_EPROTO);
    PT_EQ_STR(res.msg, "http: truncated body");
    HTTP_BODY_IS(res, "ab");
    /* nothing at all: the connection closed before the response */
    http_run(&res, "", NULL, NULL, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_ECLOSED);
    http_run(&res, "HTTP/1.1 2", NULL, NULL, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_EPROTO);
}

PT_TEST(http_limits) {
    http_result res;
    pr_http_opts o;
    char big[600];
    memset(&o, 0, sizeof o);
    o.max_head_bytes = 64;
    http_run(&res, "HTTP/1.1 200 OK\r\nX-Pad: 0123456789012345678901234567890123456789\r\n\r\n", NULL, &o, 0, 0,
             HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_ELIMIT);
    http_run(&res, "HTTP/1.1 200 OK\r\nX-Pad: 012345678901234567890123456789012345\r\n\r\n", NULL, &o, 0, 0,
             HTTP_READ_SMALL); /* exactly 64 bytes */
    PT_EQ_ERR(res.rc, PR_OK);
    /* a head that never ends is stopped once it passes the cap */
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    http_run(&res, big, NULL, &o, 0, 1, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_ELIMIT);
    PT_EQ_STR(res.msg, "http: response head too large");
    memset(&o, 0, sizeof o);
    o.max_fields = 2;
    http_run(&res, "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n", NULL, &o, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    http_run(&res, "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", NULL, &o, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_ELIMIT);
    http_run(&res, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", NULL, &o,
             0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_ELIMIT);
    memset(&o, 0, sizeof o);
    o.max_chunk_line = 8;
    http_run(&res, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;abc\r\nabc\r\n0\r\n\r\n", NULL, &o, 0, 0,
             HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    http_run(&res, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;abcde\r\nabc\r\n0\r\n\r\n", NULL, &o, 0, 0,
             HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_ELIMIT);
    memset(&o, 0, sizeof o);
    o.max_interim = 2;
    http_run(&res, "HTTP/1.1 100 A\r\n\r\nHTTP/1.1 100 B\r\n\r\nHTTP/1.1 204 C\r\n\r\n", NULL, &o, 0, 0,
             HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    http_run(&res, "HTTP/1.1 100 A\r\n\r\nHTTP/1.1 100 B\r\n\r\nHTTP/1.1 100 C\r\n\r\nHTTP/1.1 204 C\r\n\r\n", NULL,
             &o, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_ELIMIT);
    memset(&o, 0, sizeof o);
    o.max_head_bytes = 80;
    http_run(&res,
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 0123456789012345678901234567890123456789"
             "0123456789012345678901234567890123456789\r\n\r\n",
             NULL, &o, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_ELIMIT);
    PT_EQ_STR(res.msg, "http: trailer section too large");
}

/* More fields than the response holds inline, and Content-Length bodies
   on both sides of the first buffer's size: every field and byte arrives. */
PT_TEST(http_many_fields_and_body_sizes) {
    static const size_t sizes[] = { 0, 1, 8000, 12288, 12289, 30000, 70000 };
    size_t k;
    for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        pr_buf resp, body;
        http_tconn t;
        pr_url u;
        pr_http_request req;
        pr_http_response *r = NULL;
        const pr_slice *v;
        char name[16];
        int i, rc;
        pr_buf_init(&resp);
        pr_buf_init(&body);
        PT_EQ_ERR(pr_buf_printf(&resp, "HTTP/1.1 200 OK\r\nContent-Length: %lu\r\n", (unsigned long)sizes[k]), PR_OK);
        for (i = 0; i < 40; i++) PT_EQ_ERR(pr_buf_printf(&resp, "X-F%d: v%d\r\n", i, i), PR_OK);
        PT_EQ_ERR(pr_buf_append_str(&resp, "\r\n"), PR_OK);
        for (i = 0; i < (int)sizes[k]; i++) PT_EQ_ERR(pr_buf_append(&resp, &"0123456789abcdefg"[i % 17], 1), PR_OK);
        http_tconn_init(&t, resp.data);
        t.chunk = k % 2 ? 0 : 4000; /* whole reads, or pieces */
        memset(&u, 0, sizeof u);
        memset(&req, 0, sizeof req);
        PT_EQ_ERR(pr_url_parse(&u, "http://example.com/", 19, NULL), PR_OK);
        req.url = &u;
        PT_EQ_ERR(pr_http_exchange(&r, &t.base, &req, NULL, NULL, pr_deadline_in(10000)), PR_OK);
        PT_EQ_INT(pr_http_header_count(r), 41);
        for (i = 0; i < 40; i++) {
            snprintf(name, sizeof name, "x-f%d", i);
            v = pr_http_header_get(r, name);
            PT_REQUIRE(v != NULL);
            PT_CHECK(v->len >= 2 && v->ptr[0] == 'v' && atoi(v->ptr + 1) == i);
        }
        for (;;) {
            const char *p;
            size_t n;
            if ((rc = pr_http_next_span(r, &p, &n, pr_deadline_in(10000))) != PR_OK) break;
            PT_EQ_ERR(pr_buf_append(&body, p, n), PR_OK);
        }
        PT_EQ_ERR(rc, PR_ECLOSED);
        PT_EQ_INT(body.len, sizes[k]);
        if (sizes[k]) PT_EQ_MEM(body.data, resp.data + resp.len - sizes[k], sizes[k]);
        PT_EQ_INT(pr_http_reusable(r), 1);
        pr_http_response_destroy(r);
        pr_url_deinit(&u);
        pr_buf_deinit(&t.out);
        pr_buf_deinit(&body);
        pr_buf_deinit(&resp);
    }
}

/* Trailer lines are checked like header lines but still discarded. */
PT_TEST(http_trailer_lines_checked) {
    http_result res;
    http_tconn t;
    static const char nul[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\0b\r\n\r\n";
    http_run(&res,
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\nX-A: 1\r\nX-B:\r\n"
             " folded\r\nX-C: \tv\x80\xff\r\n\r\n",
             NULL, NULL, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    HTTP_BODY_IS(res, "z");
    PT_EQ_STR(res.hdrs, "Transfer-Encoding: chunked\n");
    PT_EQ_INT(res.reusable, 1);
    /* a NUL inside a trailer value (the scripted conn hands out every byte) */
    http_tconn_init(&t, nul);
    t.len = sizeof nul - 1;
    http_collect(&res, &t, NULL, NULL, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_EPROTO);
    PT_EQ_STR(res.msg, "http: control byte in a trailer line");
    pr_buf_deinit(&t.out);
    http_run(&res, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon here\r\n\r\n", NULL, NULL,
             0, 0, HTTP_READ_SMALL);
    PT_EQ_STR(res.msg, "http: malformed trailer line");
}

/* Interim 1xx heads and the final head share one max_head_bytes budget. */
PT_TEST(http_interim_heads_share_head_budget) {
    http_result res;
    pr_http_opts o;
    pr_http_opts d;
    /* 4 x 25 bytes of 100 Continue + a 38-byte final head = 138 bytes */
    static const char resp[] = "HTTP/1.1 100 Continue\r\n\r\n"
                               "HTTP/1.1 100 Continue\r\n\r\n"
                               "HTTP/1.1 100 Continue\r\n\r\n"
                               "HTTP/1.1 100 Continue\r\n\r\n"
                               "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
    memset(&o, 0, sizeof o);
    o.max_head_bytes = 137;
    http_run(&res, resp, NULL, &o, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_ELIMIT);
    PT_EQ_STR(res.msg, "http: response head too large");
    http_run(&res, resp, NULL, &o, 0, 1, HTTP_READ_SMALL); /* one byte per read: stopped while arriving */
    PT_EQ_ERR(res.rc, PR_ELIMIT);
    o.max_head_bytes = 138;
    http_run(&res, resp, NULL, &o, 0, 0, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    HTTP_BODY_IS(res, "hi");
    http_run(&res, resp, NULL, &o, 0, 1, HTTP_READ_SMALL);
    PT_EQ_ERR(res.rc, PR_OK);
    /* the defaults: 64 KiB heads, 64 KiB receive buffer (pr_http_opts) */
    pr__http_opts_resolve(&d, NULL);
    PT_EQ_INT(d.max_head_bytes, 65536);
    PT_EQ_INT(d.recv_buf_size, 65536);
}

/* ---- every split point, one byte at a time, every read style ---- */
PT_TEST(http_every_split_gives_same_result) {
    static const char *const canned[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: b\r\n c\r\n\r\nhello world",
        ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n"
         "4;x=y\r\nwiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nT: v\r\n\r\n"),
        "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nuntil the end",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", /* truncated */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", /* bad chunk */
    };
    size_t c;
    for (c = 0; c < sizeof canned / sizeof canned[0]; c++) {
        size_t len = strlen(canned[c]), cut;
        int mode;
        http_result ref, res;
        http_run(&ref, canned[c], NULL, NULL, 0, 0, HTTP_READ_BIG);
        PT_CHECK(ref.status == 200 || ref.rc == PR_EPROTO);
        for (mode = HTTP_READ_SMALL; mode <= HTTP_READ_SPAN; mode++) {
            for (cut = 1; cut < len; cut++) {
                http_run(&res, canned[c], NULL, NULL, cut, 0, mode);
                if (!http_same(&res, &ref)) {
                    pt_fail(__FILE__, __LINE__, "canned %lu mode %d cut %lu differs (rc %s, body %lu)",
                            (unsigned long)c, mode, (unsigned long)cut, pt_errname(res.rc),
                            (unsigned long)res.body_len);
                    break;
                }
            }
            http_run(&res, canned[c], NULL, NULL, 0, 1, mode);
            if (!http_same(&res, &ref))
                pt_fail(__FILE__, __LINE__, "canned %lu mode %d one byte at a time differs", (unsigned long)c, mode);
            for (cut = 0; cut < 50; cut++) {
                http_tconn t;
                http_tconn_init(&t, canned[c]);
                t.random = 1;
                http_collect(&res, &t, NULL, NULL, mode);
                pr_buf_deinit(&t.out);
                if (!http_same(&res, &ref)) {
                    pt_fail(__FILE__, __LINE__, "canned %lu mode %d random reads differ", (unsigned long)c, mode);
                    break;
                }
            }
        }
    }
}

PT_TEST(http_large_body_direct_and_buffered) {
    /* a body bigger than the receive buffer, through every read style */
    static char resp[8000];
    size_t i, hl;
    int mode;
    hl = (size_t)snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", 7000);
    for (i = 0; i < 7000; i++) resp[hl + i] = (char)('a' + i % 26);
    resp[hl + 7000] = 0;
    for (mode = HTTP_READ_SMALL; mode <= HTTP_READ_SPAN; mode++) {
        http_result res;
        pr_http_opts o;
        memset(&o, 0, sizeof o);
        o.recv_buf_size = 100;
        http_run(&res, resp, NULL, &o, 0, 333, mode);
        PT_EQ_ERR(res.rc, PR_OK);
        PT_EQ_INT(res.body_len, 7000);
        PT_EQ_MEM(res.body, resp + hl, 7000);
        PT_EQ_INT(res.reusable, 1);
    }
}

/* ---- the request writer ---- */

static void http_request_bytes(const pr_http_request *req0, const char *url, const char *want, int want_rc) {
    http_tconn t;
    pr_url u;
    pr_http_request req = *req0;
    pr_http_response *r = NULL;
    memset(&u, 0, sizeof u);
    http_tconn_init(&t, "HTTP/1.1 204 No Content\r\n\r\n");
    PT_REQUIRE(pr_url_parse(&u, url, strlen(url), NULL) == PR_OK);
    req.url = &u;
    PT_EQ_ERR(pr_http_exchange(&r, &t.base, &req, NULL, NULL, pr_deadline_in(1000)), want_rc);
    if (want_rc == PR_OK) {
        PT_CHECK(r != NULL);
        PT_EQ_INT(t.out.len, strlen(want));
        PT_EQ_STR(t.out.data, want);
    } else {
        PT_CHECK(r == NULL);
        PT_EQ_INT(t.out.len, 0);
    }
    pr_http_response_destroy(r);
    pr_url_deinit(&u);
    pr_buf_deinit(&t.out);
}

PT_TEST(http_request_get_bytes) {
    static const char *const h[] = { "Accept:  text/event-stream \t", "X-Empty:", NULL };
    static const char *const host[] = { "host:other.example", NULL };
    pr_http_request req;
    memset(&req, 0, sizeof req);
    req.headers = h;
    http_request_bytes(&req, "http://user:pw@Example.com:8080/a%20b/c?x=1&y#frag",
                       "GET /a%20b/c?x=1&y HTTP/1.1\r\nHost: example.com:8080\r\nAccept: text/event-stream\r\n"
                       "X-Empty: \r\n\r\n",
                       PR_OK);
    req.headers = NULL;
    req.method = "DELETE";
    http_request_bytes(&req, "https://[::1]:443", "DELETE / HTTP/1.1\r\nHost: [::1]\r\n\r\n", PR_OK);
    /* a user Host replaces the generated one */
    req.headers = host;
    req.method = NULL;
    http_request_bytes(&req, "http://h/", "GET / HTTP/1.1\r\nhost: other.example\r\n\r\n", PR_OK);
    /* POST without a body says Content-Length: 0 */
    req.headers = NULL;
    req.method = "POST";
    http_request_bytes(&req, "http://h/p", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", PR_OK);
}

PT_TEST(http_request_body_bytes) {
    pr_http_request req;
    static char big[20000], want[20200];
    size_t i;
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.body = "hello";
    req.body_len = 5;
    http_request_bytes(&req, "http://h:80/up", "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", PR_OK);
    req.method = "PUT";
    req.body = "";
    req.body_len = 0;
    http_request_bytes(&req, "http://h/", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", PR_OK);
    /* a big body goes out in a second write */
    for (i = 0; i < sizeof big - 1; i++) big[i] = (char)('A' + i % 26);
    req.body = big;
    req.body_len = sizeof big - 1;
    snprintf(want, sizeof want, "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: %lu\r\n\r\n%s",
             (unsigned long)(sizeof big - 1), big);
    http_request_bytes(&req, "http://h/", want, PR_OK);
}

typedef struct http_body_src { const char *const *parts; size_t i; int fail; } http_body_src;

static ptrdiff_t http_body_fn(void *buf, size_t n, void *user_data) {
    http_body_src *s = (http_body_src *)user_data;
    size_t k;
    if (!s->parts[s->i]) return s->fail;
    k = strlen(s->parts[s->i]);
    if (k > n) return PR_EINVAL;
    memcpy(buf, s->parts[s->i++], k);
    return (ptrdiff_t)k;
}

PT_TEST(http_request_chunked_bytes) {
    static const char *const parts[] = { "abc", "0123456789abcdefg", "!", NULL };
    http_body_src src = { parts, 0, 0 };
    pr_http_request req;
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.body_fn = http_body_fn;
    req.body_user_data = &src;
    http_request_bytes(&req, "http://h/s",
                       "POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\n11\r\n0123456789abcdefg\r\n1\r\n!\r\n0\r\n\r\n",
                       PR_OK);
    /* the callback's error aborts the exchange */
    {
        http_tconn t;
        pr_url u;
        pr_http_response *r = (pr_http_response *)&t;
        memset(&u, 0, sizeof u);
        http_tconn_init(&t, "HTTP/1.1 204 No Content\r\n\r\n");
        src.i = 0;
        src.fail = PR_EIO;
        PT_REQUIRE(pr_url_parse(&u, "http://h/", 9, NULL) == PR_OK);
        req.url = &u;
        PT_EQ_ERR(pr_http_exchange(&r, &t.base, &req, NULL, NULL, pr_deadline_in(1000)), PR_EIO);
        PT_CHECK(r == NULL);
        pr_url_deinit(&u);
        pr_buf_deinit(&t.out);
    }
}

PT_TEST(http_request_injection_rejected) {
    static const char *const bad[] = { "X-Ok: a\r\nX-Evil: 1", "X-Ok: a\nb", "X-Ok: a\rb", "X Bad: v", "X-Bad :v",
                                       "X-Bad", ": v", "Content-Length: 1", "transfer-encoding: chunked" };
    const char *h[3];
    pr_http_request req;
    size_t i;
    memset(&req, 0, sizeof req);
    req.headers = h;
    h[0] = "X-Fine: 1";
    h[2] = NULL;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) { /* the bad line is the second one */
        h[1] = bad[i];
        http_request_bytes(&req, "http://h/", NULL, PR_EINVAL);
    }
    req.headers = NULL;
    req.method = "GET /x HTTP/1.1\r\nX:";
    http_request_bytes(&req, "http://h/", NULL, PR_EINVAL);
    req.method = "";
    http_request_bytes(&req, "http://h/", NULL, PR_EINVAL);
    req.method = "POST";
    req.body = "x";
    req.body_len = 1;
    req.body_fn = http_body_fn;
    http_request_bytes(&req, "http://h/", NULL, PR_EINVAL);
}

static int http_fields_list(pr_slice name, pr_slice value, void *user_data) {
    pr_buf *b = (pr_buf *)user_data;
    int rc = pr_buf_append(b, name.ptr, name.len);
    if (!rc) rc = pr_buf_append(b, "=", 1);
    if (!rc && value.len) rc = pr_buf_append(b, value.ptr, value.len);
    if (!rc) rc = pr_buf_append(b, ";", 2); /* the NUL goes too and is overwritten by the next field */
    if (!rc) b->len--;
    return rc;
}

/* The one parser of the field lines a caller supplies: the NULL-terminated
   array and the buffer of "\r\n"-ended lines give the same fields, values
   trimmed; a bad line is PR_EINVAL with a message naming its field, from
   pr_http_exchange (in its err and the conn's error) too. */
PT_TEST(http_field_lines_one_parser) {
    static const char *const arr[] = { "A: 1", "B-c:\t two words  ", "D:", NULL };
    static const char buf[] = "A: 1\r\nB-c:\t two words  \r\nD:\r\n";
    static const struct { const char *text; size_t len; const char *named; } bad[] = {
#define HTTP_BAD(text, named) { text, sizeof text - 1, named }
        HTTP_BAD("A: 1\r\nX-Nul: a\0b\r\n", "\"X-Nul\""),
        HTTP_BAD("A: 1\nB: 2\r\n", "\"A\""),
        HTTP_BAD("A: 1\r\nB: 2", "\"B\""),
        HTTP_BAD("A: 1\r\n\r\n", "empty"),
        HTTP_BAD("Bad Name: 1\r\n", "\"Bad Name\""),
        HTTP_BAD("No-Colon\r\n", "\"No-Colon\""),
        HTTP_BAD("A: b\rc\r\n", "\"A\""),
#undef HTTP_BAD
    };
    static const char *const bad_arr[] = { "Ok: 1", "Bad Name: v", NULL };
    static const char *const framing[] = { "content-length: 3", NULL };
    pr_buf x, y;
    pr_err_info e;
    http_tconn t;
    pr_url u;
    pr_http_request req;
    pr_http_response *r = NULL;
    size_t i;
    pr_buf_init(&x);
    pr_buf_init(&y);
    PT_EQ_ERR(pr__http_fields(arr, NULL, 0, http_fields_list, &x, &e), PR_OK);
    PT_EQ_ERR(pr__http_fields(NULL, buf, sizeof buf - 1, http_fields_list, &y, &e), PR_OK);
    PT_EQ_STR(x.data, "A=1;B-c=two words;D=;");
    PT_EQ_STR(y.data, "A=1;B-c=two words;D=;");
    PT_EQ_ERR(pr__http_fields(NULL, NULL, 0, NULL, NULL, &e), PR_OK);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&e, 0, sizeof e);
        PT_EQ_ERR(pr__http_fields(NULL, bad[i].text, bad[i].len, NULL, NULL, &e), PR_EINVAL);
        PT_EQ_ERR(e.code, PR_EINVAL);
        if (!strstr(e.msg, bad[i].named)) pt_fail(__FILE__, __LINE__, "bad line %d: %s", (int)i, e.msg);
    }
    PT_EQ_ERR(pr__http_fields(bad_arr, NULL, 0, NULL, NULL, &e), PR_EINVAL);
    PT_CHECK(strstr(e.msg, "\"Bad Name\"") != NULL);
    /* pr_http_exchange: nothing sent, the conn's error names the field */
    memset(&u, 0, sizeof u);
    memset(&req, 0, sizeof req);
    http_tconn_init(&t, "HTTP/1.1 204 No Content\r\n\r\n");
    PT_REQUIRE(pr_url_parse(&u, "http://h/", 9, NULL) == PR_OK);
    req.url = &u;
    req.headers = framing;
    memset(&e, 0, sizeof e);
    PT_EQ_ERR(pr_http_exchange(&r, &t.base, &req, NULL, &e, pr_deadline_in(1000)), PR_EINVAL);
    PT_EQ_INT(t.out.len, 0);
    PT_EQ_ERR(e.code, PR_EINVAL);
    PT_CHECK(strstr(e.msg, "\"content-length\"") != NULL);
    memset(&e, 0, sizeof e);
    PT_EQ_ERR(pr_conn_last_error(&t.base, &e), PR_OK);
    PT_CHECK(strstr(e.msg, "\"content-length\"") != NULL);
    pr_url_deinit(&u);
    pr_buf_deinit(&t.out);
    pr_buf_deinit(&x);
    pr_buf_deinit(&y);
}

PT_TEST(http_write_error_propagates) {
    http_tconn t;
    pr_url u;
    pr_http_request req;
    pr_http_response *r;
    memset(&u, 0, sizeof u);
    memset(&req, 0, sizeof req);
    http_tconn_init(&t, ""); /* nothing to read after the failed write */
    t.write_err = PR_ECLOSED;
    PT_REQUIRE(pr_url_parse(&u, "http://h/", 9, NULL) == PR_OK);
    req.url = &u;
    PT_EQ_ERR(pr_http_exchange(&r, &t.base, &req, NULL, NULL, pr_deadline_in(1000)), PR_ECLOSED);
    PT_EQ_ERR(pr_http_exchange(&r, &t.base, NULL, NULL, NULL, pr_deadline_in(1000)), PR_EINVAL);
    PT_EQ_ERR(pr_http_exchange(NULL, &t.base, &req, NULL, NULL, pr_deadline_in(1000)), PR_EINVAL);
    pr_url_deinit(&u);
    pr_buf_deinit(&t.out);
}

/* A write that fails because the peer went away: a complete final response
   that arrived anyway is delivered (not reusable); otherwise the write error. */
static int http_early(const char *resp, int write_err, int sys_errno, int use_fn, int *status, char *body, size_t cap,
                      int *reusable) {
    static const char *const parts[] = { "abc", NULL };
    http_body_src src = { parts, 0, 0 };
    http_tconn t;
    pr_url u;
    pr_http_request req;
    pr_http_response *r = NULL;
    size_t len = 0;
    int rc;
    memset(&u, 0, sizeof u);
    memset(&req, 0, sizeof req);
    http_tconn_init(&t, resp);
    t.write_err = write_err;
    pr__err_set(&t.base.err, write_err, sys_errno, "write: by the test");
    if ((rc = pr_url_parse(&u, "http://h/up", 11, NULL)) != PR_OK) return rc;
    req.method = "POST";
    req.url = &u;
    if (use_fn) {
        req.body_fn = http_body_fn;
        req.body_user_data = &src;
    } else {
        req.body = "payload";
        req.body_len = 7;
    }
    *status = 0;
    *reusable = -1;
    body[0] = 0;
    rc = pr_http_exchange(&r, &t.base, &req, NULL, NULL, pr_deadline_in(2000));
    if (rc == PR_OK) {
        *status = pr_http_status(r);
        for (;;) {
            ptrdiff_t k = pr_http_read(r, body + len, cap - 1 - len, pr_deadline_in(2000));
            if (k <= 0) {
                if (k != PR_ECLOSED) rc = (int)k;
                break;
            }
            len += (size_t)k;
        }
        body[len] = 0;
        *reusable = pr_http_reusable(r);
        pr_http_response_destroy(r);
    } else if (t.base.err.code != write_err || !strstr(t.base.err.msg, "by the test")) {
        rc = PR_ESTATE; /* the write error's detail was lost */
    }
    pr_url_deinit(&u);
    pr_buf_deinit(&t.out);
    return rc;
}

PT_TEST(http_early_response_while_uploading) {
    static const char *const r413 = "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!";
    char body[64];
    int st, reuse, fn;
    for (fn = 0; fn < 2; fn++) { /* a buffer body, a body_fn */
        PT_EQ_ERR(http_early(r413, PR_ECLOSED, 0, fn, &st, body, sizeof body, &reuse), PR_OK);
        PT_EQ_INT(st, 413);
        PT_EQ_STR(body, "too big!");
        PT_EQ_INT(reuse, 0); /* keep-alive framing, but the request was cut short */
        PT_EQ_ERR(http_early(r413, PR_EIO, ECONNRESET, fn, &st, body, sizeof body, &reuse), PR_OK);
        PT_EQ_INT(st, 413);
        PT_EQ_ERR(http_early("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
                             PR_ECLOSED, 0, fn, &st, body, sizeof body, &reuse), PR_OK);
        PT_EQ_INT(st, 401);
        /* no response, or an incomplete one: the write error, with its detail */
        PT_EQ_ERR(http_early("", PR_ECLOSED, 0, fn, &st, body, sizeof body, &reuse), PR_ECLOSED);
        PT_EQ_ERR(http_early("HTTP/1.1 413 Pay", PR_ECLOSED, 0, fn, &st, body, sizeof body, &reuse), PR_ECLOSED);
        PT_EQ_ERR(http_early("HTTP/1.1 100 Continue\r\n\r\n", PR_EIO, EPIPE, fn, &st, body, sizeof body, &reuse),
                  PR_EIO);
        /* failures that are not the peer going away: no read at all */
        PT_EQ_ERR(http_early(r413, PR_EIO, EACCES, fn, &st, body, sizeof body, &reuse), PR_EIO);
        PT_EQ_ERR(http_early(r413, PR_ETIMEDOUT, 0, fn, &st, body, sizeof body, &reuse), PR_ETIMEDOUT);
        PT_EQ_ERR(http_early(r413, PR_ECANCELED, 0, fn, &st, body, sizeof body, &reuse), PR_ECANCELED);
        PT_EQ_INT(st, 0);
    }
}

/* ---- time: idle timeout, deadlines ---- */

PT_TEST(http_idle_timeout_body_and_head) {
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef";
    http_tconn t;
    pr_url u;
    pr_http_request req;
    pr_http_response *r = NULL;
    pr_http_opts o;
    pr_err_info e;
    char buf[16];
    int64_t t0;
    pr__time_test_clock_virtual(1, 100000);
    memset(&u, 0, sizeof u);
    memset(&req, 0, sizeof req);
    memset(&o, 0, sizeof o);
    o.idle_timeout_ms = 1000;
    PT_REQUIRE(pr_url_parse(&u, "http://h/", 9, NULL) == PR_OK);
    req.url = &u;
    /* a 5 s gap in the body: the 1 s idle cap fires inside the 60 s deadline */
    http_tconn_init(&t, resp);
    t.delay_pos = sizeof resp - 1 - 3;
    t.delay_ms = 5000;
    PT_EQ_ERR(pr_http_exchange(&r, &t.base, &req, &o, NULL, pr_deadline_in(60000)), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_read(r, buf, sizeof buf, pr_deadline_in(60000)), 3);
        t0 = pr_now();
        /* short calls do not restart the idle clock: it runs from the last byte */
        PT_EQ_INT(pr_http_read(r, buf, sizeof buf, pr_deadline_in(400)), PR_ETIMEDOUT);
        pr_http_last_error(r, &e);
        PT_EQ_STR(e.msg, "http: timed out reading the body (deadline)");
        PT_EQ_INT(pr_http_read(r, buf, sizeof buf, pr_deadline_in(400)), PR_ETIMEDOUT);
        PT_EQ_INT(pr_http_read(r, buf, sizeof buf, pr_deadline_in(400)), PR_EIO); /* the idle cap, not the deadline */
        PT_EQ_INT(pr_now() - t0, 1000);
        pr_http_last_error(r, &e);
        PT_EQ_STR(e.msg, "http: no byte for 1000 ms reading the body (idle timeout)");
        PT_EQ_INT(e.sys_errno, ETIMEDOUT);
        /* a silent connection is dead: the response fails for good, at once */
        PT_EQ_INT(pr_http_read(r, buf, sizeof buf, PR_FOREVER), PR_EIO);
        PT_EQ_INT(pr_now() - t0, 1000);
        PT_EQ_INT(pr_http_reusable(r), 0);
    }
    pr_http_response_destroy(r);
    r = NULL;
    pr_buf_deinit(&t.out);
    /* without the idle cap the gap is fine */
    http_tconn_init(&t, resp);
    t.delay_pos = sizeof resp - 1 - 3;
    t.delay_ms = 5000;
    PT_EQ_ERR(pr_http_exchange(&r, &t.base, &req, NULL, NULL, pr_deadline_in(60000)), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_read(r, buf, sizeof buf, pr_deadline_in(60000)), 3);
        t0 = pr_now();
        PT_EQ_INT(pr_http_read(r, buf, sizeof buf, pr_deadline_in(60000)), 3);
        PT_EQ_INT(pr_now() - t0, 5000);
        PT_EQ_INT(pr_http_read(r, buf, sizeof buf, pr_deadline_in(60000)), PR_ECLOSED);
        PT_EQ_INT(pr_http_reusable(r), 1);
    }
    pr_http_response_destroy(r);
    r = NULL;
    pr_buf_deinit(&t.out);
    /* in the head */
    http_tconn_init(&t, resp);
    t.delay_pos = 5;
    t.delay_ms = 5000;
    o.idle_timeout_ms = 1000;
    t0 = pr_now();
    PT_EQ_ERR(pr_http_exchange(&r, &t.base, &req, &o, NULL, pr_deadline_in(60000)), PR_EIO);
    PT_EQ_INT(pr_now() - t0, 1000);
    PT_EQ_INT(t.base.err.sys_errno, ETIMEDOUT);
    PT_EQ_STR(t.base.err.msg, "http: no byte for 1000 ms waiting for the response head (idle timeout)");
    pr_buf_deinit(&t.out);
    /* the caller's deadline is the outer bound */
    http_tconn_init(&t, resp);
    t.hang = 1;
    t.len = 20;
    t0 = pr_now();
    PT_EQ_ERR(pr_http_exchange(&r, &t.base, &req, &o, NULL, pr_deadline_in(300)), PR_ETIMEDOUT);
    PT_EQ_INT(pr_now() - t0, 300);
    PT_EQ_STR(t.base.err.msg, "http: timed out waiting for the response head (deadline)");
    pr_buf_deinit(&t.out);
    pr_url_deinit(&u);
    pr__time_test_clock_virtual(0, 0);
}

/* ---- cancellation ---- */
typedef struct http_cancel_ctx {
    http_tconn t;
    pr_url u;
    int in_body, rc, reached;
} http_cancel_ctx;

static int http_cancel_task(void *user_data) {
    http_cancel_ctx *c = (http_cancel_ctx *)user_data;
    pr_http_request req;
    pr_http_response *r = NULL;
    char buf[8];
    memset(&req, 0, sizeof req);
    req.url = &c->u;
    c->rc = pr_http_exchange(&r, &c->t.base, &req, NULL, NULL, PR_FOREVER);
    if (c->rc == PR_OK) {
        ptrdiff_t k;
        while ((k = pr_http_read(r, buf, sizeof buf, PR_FOREVER)) > 0) c->reached++;
        c->rc = (int)k;
    }
    pr_http_response_destroy(r);
    return 0;
}

static void http_cancel_at(int in_body) {
    http_cancel_ctx c;
    pr_task *task;
    memset(&c, 0, sizeof c);
    http_tconn_init(&c.t, in_body ? "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc" : "HTTP/1.1 200 O");
    c.t.hang = 1;
    PT_REQUIRE(pr_url_parse(&c.u, "http://h/", 9, NULL) == PR_OK);
    PT_REQUIRE(pr_go(&task, http_cancel_task, &c, NULL) == PR_OK);
    PT_EQ_ERR(pr_sleep(pr_deadline_in(20)), PR_OK);
    PT_EQ_ERR(pr_cancel(task), PR_OK);
    PT_EQ_ERR(pr_join(task, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(c.rc, PR_ECANCELED);
    PT_EQ_INT(c.reached, in_body ? 1 : 0);
    pr_url_deinit(&c.u);
    pr_buf_deinit(&c.t.out);
}

PT_TEST(http_cancel_while_reading_head) { http_cancel_at(0); }

PT_TEST(http_cancel_while_reading_body) { http_cancel_at(1); }

/* ---- allocation failures ---- */
PT_TEST(http_alloc_fail_sweep) {
    static const char *const canned[] = {
        ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nA: 1\r\nB: 2\r\nC: 3\r\n"
         "D: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\nI: 9\r\nJ: 10\r\nK: 11\r\nL: 12\r\nM: 13\r\nN: 14\r\nO: 15\r\n"
         "P: 16\r\nQ: 17\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
    };
    size_t c;
    for (c = 0; c < 2; c++) {
        long n;
        int done = 0;
        for (n = 1; n < 100 && !done; n++) {
            http_result res;
            http_tconn t;
            http_tconn_init(&t, canned[c]);
            t.chunk = 7;
            PT_REQUIRE(pr_buf_reserve(&t.out, 4096) == PR_OK);
            pt_alloc_fail_nth(n);
            http_collect(&res, &t, "POST", NULL, HTTP_READ_SMALL);
            done = __atomic_load_n(&pt__mem.fail_nth, __ATOMIC_RELAXED) > 0; /* the failure was not reached */
            pt_alloc_fail_nth(0);
            if (done) {
                PT_EQ_ERR(res.rc, PR_OK);
                HTTP_BODY_IS(res, "abc");
            } else if (res.rc != PR_ENOMEM) {
                pt_fail(__FILE__, __LINE__, "canned %lu fail at %ld: got %s, want PR_ENOMEM", (unsigned long)c, n,
                        pt_errname(res.rc));
            }
            pr_buf_deinit(&t.out);
        }
        PT_CHECK(done);
    }
}

/* ---- over the net module's connections: a pipe with a server task, and TCP loopback ---- */
typedef struct http_srv {
    pr_conn *c;
    char req[2][512];
    const char *resp[2];
    int nreq, rc;
} http_srv;

/* Read from c into buf until it ends with end (or holds it); returns the length or an error. */
static ptrdiff_t http_srv_read_until(pr_conn *c, char *buf, size_t cap, const char *end) {
    size_t len = 0;
    buf[0] = 0;
    while (!strstr(buf, end)) {
        ptrdiff_t k;
        if (len + 1 >= cap) return PR_ELIMIT;
        k = pr_conn_read(c, buf + len, cap - 1 - len, pr_deadline_in(5000));
        if (k < 0) return k;
        len += (size_t)k;
        buf[len] = 0;
    }
    return (ptrdiff_t)len;
}

static int http_srv_task(void *user_data) {
    http_srv *s = (http_srv *)user_data;
    int i;
    for (i = 0; i < s->nreq; i++) {
        ptrdiff_t k = http_srv_read_until(s->c, s->req[i], sizeof s->req[i], i == 1 ? "0\r\n\r\n" : "\r\n\r\n");
        if (k < 0) return s->rc = (int)k;
        if ((s->rc = pr_conn_write(s->c, s->resp[i], strlen(s->resp[i]), pr_deadline_in(5000))) != 0) return s->rc;
    }
    return 0;
}

static void http_read_all(pr_http_response *r, char *out, size_t cap, size_t *len, int *rc) {
    ptrdiff_t k;
    *len = 0;
    while ((k = pr_http_read(r, out + *len, cap - 1 - *len, pr_deadline_in(5000))) > 0) *len += (size_t)k;
    out[*len] = 0;
    *rc = (int)k;
}

PT_TEST(http_keepalive_over_pipe_one_byte_reads) {
    static const char *const parts[] = { "stream", "ed body", NULL };
    http_body_src src = { parts, 0, 0 };
    http_srv s;
    pr_conn *a = NULL, *b = NULL;
    pr_task *t;
    pr_url u;
    pr_http_request req;
    pr_http_response *r = NULL;
    char body[256];
    size_t len;
    int rc;
    memset(&s, 0, sizeof s);
    memset(&u, 0, sizeof u);
    memset(&req, 0, sizeof req);
    PT_REQUIRE(pr_conn_pipe(&a, &b, 1) == PR_OK);
    PT_REQUIRE(pr_url_parse(&u, "http://svc.local/x", 18, NULL) == PR_OK);
    s.c = b;
    s.nreq = 2;
    s.resp[0] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst";
    s.resp[1] = "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n6;x\r\nsecond\r\n0\r\n\r\n";
    PT_REQUIRE(pr_go(&t, http_srv_task, &s, NULL) == PR_OK);
    req.url = &u;
    PT_EQ_ERR(pr_http_exchange(&r, a, &req, NULL, NULL, pr_deadline_in(5000)), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 200);
        http_read_all(r, body, sizeof body, &len, &rc);
        PT_EQ_ERR(rc, PR_ECLOSED);
        PT_EQ_STR(body, "first");
        PT_EQ_INT(pr_http_reusable(r), 1);
    }
    pr_http_response_destroy(r);
    r = NULL;
    req.method = "POST";
    req.body_fn = http_body_fn;
    req.body_user_data = &src;
    PT_EQ_ERR(pr_http_exchange(&r, a, &req, NULL, NULL, pr_deadline_in(5000)), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 201);
        http_read_all(r, body, sizeof body, &len, &rc);
        PT_EQ_ERR(rc, PR_ECLOSED);
        PT_EQ_STR(body, "second");
        PT_EQ_INT(pr_http_reusable(r), 1);
    }
    pr_http_response_destroy(r);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(s.rc, PR_OK);
    PT_EQ_STR(s.req[0], "GET /x HTTP/1.1\r\nHost: svc.local\r\n\r\n");
    PT_EQ_STR(s.req[1], "POST /x HTTP/1.1\r\nHost: svc.local\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "6\r\nstream\r\n7\r\ned body\r\n0\r\n\r\n");
    pr_conn_destroy(a);
    pr_conn_destroy(b);
    pr_url_deinit(&u);
}

typedef struct http_tcp_srv { pr_listener *l; http_srv s; } http_tcp_srv;

static int http_tcp_srv_task(void *user_data) {
    http_tcp_srv *ts = (http_tcp_srv *)user_data;
    int rc = pr_tcp_accept(ts->l, &ts->s.c, pr_deadline_in(5000));
    if (rc) return ts->s.rc = rc;
    http_srv_task(&ts->s);
    pr_conn_destroy(ts->s.c);
    return 0;
}

PT_TEST(http_exchange_over_tcp_loopback) {
    http_tcp_srv ts;
    pr_conn *c = NULL;
    pr_task *t;
    pr_url u;
    pr_http_request req;
    pr_http_response *r = NULL;
    char body[256], url[64];
    size_t len;
    int rc;
    memset(&ts, 0, sizeof ts);
    memset(&u, 0, sizeof u);
    memset(&req, 0, sizeof req);
    PT_REQUIRE(pr_tcp_listen(&ts.l, "127.0.0.1", 0, 4, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/tcp", (unsigned)pr_listener_port(ts.l));
    PT_REQUIRE(pr_url_parse(&u, url, strlen(url), NULL) == PR_OK);
    ts.s.nreq = 1;
    /* Content-Length framing: an until-close body over epoll currently hits a
       scheduler issue (data and FIN in one edge, then a short read waits for
       the poller and never sees the EOF), reported separately. */
    ts.s.resp[0] = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nuntil close";
    PT_REQUIRE(pr_go(&t, http_tcp_srv_task, &ts, NULL) == PR_OK);
    rc = pr_tcp_connect(&c, "127.0.0.1", pr_listener_port(ts.l), NULL, NULL, pr_deadline_in(5000));
    PT_EQ_ERR(rc, PR_OK);
    if (rc == PR_OK) {
        req.url = &u;
        PT_EQ_ERR(pr_http_exchange(&r, c, &req, NULL, NULL, pr_deadline_in(5000)), PR_OK);
        if (r) {
            http_read_all(r, body, sizeof body, &len, &rc);
            PT_EQ_ERR(rc, PR_ECLOSED);
            PT_EQ_STR(body, "until close");
            PT_EQ_INT(pr_http_reusable(r), 1);
        }
        pr_http_response_destroy(r);
    }
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(ts.s.rc, PR_OK);
    PT_CHECK(strncmp(ts.s.req[0], "GET /tcp HTTP/1.1\r\nHost: 127.0.0.1:", 35) == 0);
    pr_conn_destroy(c);
    pr_listener_destroy(ts.l);
    pr_url_deinit(&u);
}

/* A request with an Upgrade field accepts a 101: it ends the exchange and
   the bytes after its head are the new protocol's, then the conn's. */
PT_TEST(http_101_with_upgrade_request) {
    http_tconn t;
    pr_url u;
    pr_http_request req;
    pr_http_response *r = NULL;
    static const char *const h[] = { "Connection: Upgrade", "upgrade: websocket", NULL };
    char body[64];
    size_t len = 0;
    int rc = 0;
    memset(&u, 0, sizeof u);
    memset(&req, 0, sizeof req);
    http_tconn_init(&t, "HTTP/1.1 100 Continue\r\n\r\n"
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Content-Length: 2\r\n\r\n\x81\x02hi and more");
    t.chunk = 7; /* the raw bytes come partly from the buffer, partly from the conn */
    PT_REQUIRE(pr_url_parse(&u, "http://h/ws", 11, NULL) == PR_OK);
    req.url = &u;
    req.headers = h;
    PT_EQ_ERR(pr_http_exchange(&r, &t.base, &req, NULL, NULL, pr_deadline_in(2000)), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 101);
        PT_EQ_INT(pr_http_reusable(r), 0);
        http_read_all(r, body, sizeof body, &len, &rc);
        PT_EQ_ERR(rc, PR_ECLOSED);
        PT_EQ_INT(len, 13); /* the Content-Length of a 101 frames nothing */
        PT_EQ_MEM(body, "\x81\x02hi and more", 13);
        PT_EQ_INT(pr_http_reusable(r), 0);
        pr_http_response_destroy(r);
    }
    PT_CHECK(strstr(t.out.data, "\r\nupgrade: websocket\r\n") != NULL);
    pr_buf_deinit(&t.out);
    pr_url_deinit(&u);
}

const pt_suite pt_suite_http = { "http", {
    PT_ENTRY(http_content_length_body),
    PT_ENTRY(http_status_is_not_an_error),
    PT_ENTRY(http_head_accessors),
    PT_ENTRY(http_chunked_body),
    PT_ENTRY(http_chunked_empty_and_uppercase_hex),
    PT_ENTRY(http_until_close_body),
    PT_ENTRY(http_until_close_conn_error_propagates),
    PT_ENTRY(http_te_not_chunked_reads_to_close),
    PT_ENTRY(http_te_and_cl_te_wins_no_reuse),
    PT_ENTRY(http_interim_responses_skipped),
    PT_ENTRY(http_interim_never_has_body),
    PT_ENTRY(http_101_is_final_and_raw),
    PT_ENTRY(http_101_with_upgrade_request),
    PT_ENTRY(http_bodiless_responses),
    PT_ENTRY(http_reuse_flag),
    PT_ENTRY(http_obs_fold_replaced_by_space),
    PT_ENTRY(http_obs_fold_linear),
    PT_ENTRY(http_duplicate_content_length),
    PT_ENTRY(http_malformed_heads),
    PT_ENTRY(http_nul_in_head_rejected),
    PT_ENTRY(http_malformed_chunked),
    PT_ENTRY(http_truncated_bodies),
    PT_ENTRY(http_limits),
    PT_ENTRY(http_many_fields_and_body_sizes),
    PT_ENTRY(http_trailer_lines_checked),
    PT_ENTRY(http_interim_heads_share_head_budget),
    PT_ENTRY(http_every_split_gives_same_result),
    PT_ENTRY(http_large_body_direct_and_buffered),
    PT_ENTRY(http_request_get_bytes),
    PT_ENTRY(http_request_body_bytes),
    PT_ENTRY(http_request_chunked_bytes),
    PT_ENTRY(http_request_injection_rejected),
    PT_ENTRY(http_field_lines_one_parser),
    PT_ENTRY(http_write_error_propagates),
    PT_ENTRY(http_early_response_while_uploading),
    PT_ENTRY(http_idle_timeout_body_and_head),
    PT_ENTRY(http_cancel_while_reading_head),
    PT_ENTRY(http_cancel_while_reading_body),
    PT_ENTRY(http_alloc_fail_sweep),
    PT_ENTRY(http_keepalive_over_pipe_one_byte_reads),
    PT_ENTRY(http_exchange_over_tcp_loopback),
    {0, 0} } };
