/* server: the scripted test server of tools/testserver.c, started on
   127.0.0.1 with an ephemeral port and driven with the client-side
   exchange (pr_tcp_connect, pr_tls_client, pr_http_exchange, pr_http_read).
   Everything is loopback and bounded by deadlines. */
#include "../tools/testserver.c"

#define SRV_TLS_DIR "build/tls-fixtures"

/* One client connection to a started server. */
typedef struct srv_fx {
    ts_server *s;
    pr_conn *c;
    int tls;
} srv_fx;

static int srv_connect(srv_fx *f, pr_conn **out) {
    int rc = pr_tcp_connect(out, "127.0.0.1", ts_port(f->s), NULL, NULL, pr_deadline_in(5000));
#ifndef PRISTINE_NO_TLS
    if (rc == PR_OK && f->tls) {
        pr_tls_opts o;
        pr_conn *t = NULL;
        memset(&o, 0, sizeof o);
        o.ca_file = SRV_TLS_DIR "/ca.crt";
        rc = pr_tls_client(&t, *out, "127.0.0.1", &o, NULL, pr_deadline_in(5000));
        *out = t;
    }
#endif
    return rc;
}

static int srv_start(srv_fx *f, const ts_opts *o) {
    int rc;
    memset(f, 0, sizeof *f);
    if ((rc = ts_start(&f->s, o)) != PR_OK) return rc;
    return srv_connect(f, &f->c);
}

static void srv_end(srv_fx *f) {
    pr_conn_destroy(f->c);
    f->c = NULL;
    ts_stop(f->s);
    f->s = NULL;
}

/* Send a request for target on conn; hdrs extra field lines, body optional. */
static int srv_req(srv_fx *f, pr_conn *c, const char *method, const char *target, const char *const *hdrs,
                   const char *body, pr_http_response **out, int64_t deadline) {
    char url[512];
    pr_url u;
    pr_http_request req;
    int rc;
    memset(&u, 0, sizeof u);
    memset(&req, 0, sizeof req);
    snprintf(url, sizeof url, "%s://127.0.0.1:%u%s", f->tls ? "https" : "http", (unsigned)ts_port(f->s), target);
    if ((rc = pr_url_parse(&u, url, strlen(url), NULL)) != PR_OK) return rc;
    req.method = method;
    req.url = &u;
    req.headers = hdrs;
    if (body) {
        req.body = body;
        req.body_len = strlen(body);
    }
    rc = pr_http_exchange(out, c, &req, NULL, NULL, deadline);
    pr_url_deinit(&u);
    return rc;
}

static int srv_get(srv_fx *f, const char *target, pr_http_response **out) {
    return srv_req(f, f->c, "GET", target, NULL, NULL, out, pr_deadline_in(5000));
}

/* Read the whole body into b; returns the final code (PR_ECLOSED = clean end). */
static int srv_body(pr_http_response *r, pr_buf *b, int64_t deadline) {
    char tmp[8192];
    for (;;) {
        ptrdiff_t n = pr_http_read(r, tmp, sizeof tmp, deadline);
        if (n < 0) return (int)n;
        if (pr_buf_append(b, tmp, (size_t)n) != PR_OK) return PR_ENOMEM;
    }
}

/* Whether b holds the deterministic pattern from offset 0. */
static int srv_pattern_ok(const char *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (p[i] != (char)('a' + (int)(i % 26))) return 0;
    return 1;
}

static int srv_hdr_is(pr_http_response *r, const char *name, const char *want) {
    const pr_slice *v = pr_http_header_get(r, name);
    return v && pr_slice_eq(*v, pr_slice_cstr(want));
}

/* Raw: write a request text, read everything until the server closes. */
static int srv_raw(pr_conn *c, const char *req, pr_buf *out, int64_t deadline) {
    char tmp[4096];
    int rc = pr_conn_write(c, req, strlen(req), deadline);
    if (rc != PR_OK) return rc;
    for (;;) {
        ptrdiff_t n = pr_conn_read(c, tmp, sizeof tmp, deadline);
        if (n < 0) return (int)n;
        if (pr_buf_append(out, tmp, (size_t)n) != PR_OK) return PR_ENOMEM;
    }
}

PT_TEST(server_fixed_keepalive) {
    srv_fx f;
    pr_http_response *r = NULL;
    pr_buf b;
    static const size_t lens[] = {26, 100000, 0, 1};
    size_t i;
    pr_buf_init(&b);
    PT_REQUIRE(srv_start(&f, NULL) == PR_OK);
    PT_CHECK(ts_port(f.s) != 0);
    for (i = 0; i < 4; i++) {
        char target[64];
        snprintf(target, sizeof target, "/fixed?len=%lu", (unsigned long)lens[i]);
        PT_EQ_ERR(srv_get(&f, target, &r), PR_OK);
        if (!r) break;
        PT_EQ_INT(pr_http_status(r), 200);
        pr_buf_clear(&b);
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_ECLOSED);
        PT_EQ_INT(b.len, lens[i]);
        PT_CHECK(srv_pattern_ok(b.data, b.len));
        PT_EQ_INT(pr_http_reusable(r), 1);
        PT_CHECK(srv_hdr_is(r, "X-Conn-Id", "1"));
        pr_http_response_destroy(r);
        r = NULL;
    }
    PT_EQ_INT(ts_accepted(f.s), 1);
    PT_EQ_INT(ts_requests(f.s), 4);
    /* HEAD: the length, no body */
    PT_EQ_ERR(srv_req(&f, f.c, "HEAD", "/fixed?len=77", NULL, NULL, &r, pr_deadline_in(5000)), PR_OK);
    if (r) {
        PT_CHECK(srv_hdr_is(r, "Content-Length", "77"));
        PT_CHECK(srv_hdr_is(r, "X-Conn-Request", "5"));
        pr_buf_clear(&b);
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_ECLOSED);
        PT_EQ_INT(b.len, 0);
    }
    pr_http_response_destroy(r);
    /* close=1: Connection: close, then the server closes */
    PT_EQ_ERR(srv_get(&f, "/fixed?len=3&close=1", &r), PR_OK);
    if (r) {
        PT_CHECK(srv_hdr_is(r, "Connection", "close"));
        pr_buf_clear(&b);
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_ECLOSED);
        PT_EQ_INT(pr_http_reusable(r), 0);
    }
    pr_http_response_destroy(r);
    pr_buf_deinit(&b);
    srv_end(&f);
}

/* Chunk sizes seen on the wire, from the raw response bytes. */
static size_t srv_chunk_sizes(const pr_buf *raw, unsigned long *sizes, size_t max) {
    const char *p = strstr(raw->data, "\r\n\r\n"), *end = raw->data + raw->len;
    size_t n = 0;
    if (!p) return 0;
    p += 4;
    while (p < end && n < max) {
        char *e;
        unsigned long sz = strtoul(p, &e, 16);
        if (e == p || e + 2 > end || e[0] != '\r') break;
        sizes[n++] = sz;
        if (sz == 0) break;
        p = e + 2 + sz + 2;
    }
    return n;
}

PT_TEST(server_chunked_sizes) {
    srv_fx f;
    pr_http_response *r = NULL;
    pr_buf b, raw;
    unsigned long sizes[8];
    pr_conn *c2 = NULL;
    pr_buf_init(&b);
    pr_buf_init(&raw);
    PT_REQUIRE(srv_start(&f, NULL) == PR_OK);
    PT_EQ_ERR(srv_get(&f, "/chunked?sizes=1,5,300,17000&delay_ms=5&trailer=1", &r), PR_OK);
    if (r) {
        PT_CHECK(srv_hdr_is(r, "Transfer-Encoding", "chunked"));
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_ECLOSED);
        PT_EQ_INT(b.len, 1 + 5 + 300 + 17000);
        PT_CHECK(srv_pattern_ok(b.data, b.len));
        PT_EQ_INT(pr_http_reusable(r), 1);
    }
    pr_http_response_destroy(r);
    /* the framing itself, read raw on a second connection */
    PT_REQUIRE(srv_connect(&f, &c2) == PR_OK);
    PT_EQ_ERR(srv_raw(c2, "GET /chunked?sizes=1,5,300,17000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &raw,
                      pr_deadline_in(5000)), PR_ECLOSED);
    PT_EQ_INT(srv_chunk_sizes(&raw, sizes, 8), 5);
    PT_EQ_INT(sizes[0], 1);
    PT_EQ_INT(sizes[1], 5);
    PT_EQ_INT(sizes[2], 300);
    PT_EQ_INT(sizes[3], 17000);
    PT_EQ_INT(sizes[4], 0);
    pr_conn_destroy(c2);
    PT_EQ_INT(ts_accepted(f.s), 2);
    pr_buf_deinit(&b);
    pr_buf_deinit(&raw);
    srv_end(&f);
}

/* The body buffer follows the body: a body that keeps filling it doubles
   it up to recv_buf_size, small reads afterwards shrink it back, and the
   header views stay where they were throughout (valid until destroy). */
PT_TEST(server_body_buffer_grows_and_shrinks) {
    srv_fx f;
    pr_http_response *r = NULL;
    pr_buf b, target;
    const pr_slice *ct;
    const char *ct_ptr, *p;
    size_t n, max_area = 0;
    int i, rc;
    pr_buf_init(&b);
    pr_buf_init(&target);
    PT_EQ_ERR(pr_buf_append_str(&target, "/chunked?delay_ms=5&sizes=300000"), PR_OK);
    for (i = 0; i < PR__HTTP_SHRINK_FILLS + 4; i++) PT_EQ_ERR(pr_buf_append_str(&target, ",10"), PR_OK);
    PT_REQUIRE(srv_start(&f, NULL) == PR_OK);
    PT_EQ_ERR(srv_get(&f, target.data, &r), PR_OK);
    PT_REQUIRE(r != NULL);
    PT_REQUIRE((ct = pr_http_header_get(r, "content-type")) != NULL);
    ct_ptr = ct->ptr;
    PT_CHECK(r->cap - r->base <= PR__HTTP_FIRST_BODY + PR__HTTP_HEAD_ROOM); /* small to start with */
    while ((rc = pr_http_next_span(r, &p, &n, pr_deadline_in(5000))) == PR_OK) {
        PT_REQUIRE(pr_buf_append(&b, p, n) == PR_OK);
        if (r->cap - r->base > max_area) max_area = r->cap - r->base;
    }
    PT_EQ_ERR(rc, PR_ECLOSED);
    PT_EQ_INT(b.len, 300000 + 10 * (PR__HTTP_SHRINK_FILLS + 4));
    PT_CHECK(srv_pattern_ok(b.data, b.len));
    PT_EQ_INT(max_area, PR__HTTP_DEF_RECV);              /* grown for the fast part */
    PT_EQ_INT(r->cap - r->base, PR__HTTP_FIRST_BODY);    /* and shrunk after it */
    PT_CHECK(pr_http_header_get(r, "content-type") == ct); /* the views did not move */
    PT_CHECK(ct->ptr == ct_ptr && pr_slice_eq(*ct, pr_slice_cstr("text/plain")));
    PT_CHECK(srv_hdr_is(r, "Transfer-Encoding", "chunked"));
    PT_EQ_INT(pr_http_reusable(r), 1);
    pr_http_response_destroy(r);
    pr_buf_deinit(&b);
    pr_buf_deinit(&target);
    srv_end(&f);
}

/* Decode an SSE body: events' ids and data into out ("id:data|..."). */
static int srv_sse_decode(const pr_buf *body, int finish, pr_buf *out, pr_sse_decoder *d) {
    pr_sse_event ev;
    int rc, n = 0;
    if (pr_sse_decoder_feed(d, body->data ? body->data : "", body->len) != PR_OK) return -1;
    if (finish) pr_sse_decoder_finish(d);
    while ((rc = pr_sse_decoder_next(d, &ev)) == PR_OK) {
        pr_buf_printf(out, "%s/%s:%.*s|", ev.type, ev.id ? ev.id : "-", (int)ev.data_len, ev.data);
        n++;
    }
    return n;
}

PT_TEST(server_sse_events) {
    srv_fx f;
    pr_http_response *r = NULL;
    pr_buf b, ev;
    pr_sse_decoder *d = NULL;
    static const char *const h[] = { "Last-Event-ID: 5", NULL };
    pr_buf_init(&b);
    pr_buf_init(&ev);
    PT_REQUIRE(srv_start(&f, NULL) == PR_OK);
    PT_REQUIRE(pr_sse_decoder_create(&d, NULL) == PR_OK);
    PT_EQ_ERR(srv_get(&f, "/sse?events=3&id=1&retry=500&comment=1&type=tick&lines=2", &r), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 200);
        PT_CHECK(srv_hdr_is(r, "Content-Type", "text/event-stream"));
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_ECLOSED);
        PT_EQ_INT(srv_sse_decode(&b, 1, &ev, d), 3);
        PT_EQ_STR(ev.data, "tick/1:event 1\nline 1|tick/2:event 2\nline 1|tick/3:event 3\nline 1|");
        PT_EQ_INT(pr_sse_decoder_retry_ms(d), 500);
        PT_EQ_STR(pr_sse_decoder_last_id(d, NULL), "3");
        PT_EQ_INT(pr_http_reusable(r), 1);
    }
    pr_http_response_destroy(r);
    r = NULL;
    /* resume: Last-Event-ID 5 continues at 6, on the same connection */
    pr_buf_clear(&b);
    pr_buf_clear(&ev);
    pr_sse_decoder_reset(d);
    PT_EQ_ERR(srv_req(&f, f.c, "GET", "/sse?events=2&id=1", h, NULL, &r, pr_deadline_in(5000)), PR_OK);
    if (r) {
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_ECLOSED);
        PT_EQ_INT(srv_sse_decode(&b, 1, &ev, d), 2);
        PT_EQ_STR(ev.data, "message/6:event 6|message/7:event 7|");
    }
    pr_http_response_destroy(r);
    r = NULL;
    /* 204: no stream */
    PT_EQ_ERR(srv_get(&f, "/sse204", &r), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 204);
        pr_buf_clear(&b);
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_ECLOSED);
        PT_EQ_INT(b.len, 0);
    }
    pr_http_response_destroy(r);
    PT_EQ_INT(ts_accepted(f.s), 1);
    pr_sse_decoder_destroy(d);
    pr_buf_deinit(&b);
    pr_buf_deinit(&ev);
    srv_end(&f);
}

PT_TEST(server_sse_drop_and_heartbeat) {
    srv_fx f;
    pr_http_response *r = NULL;
    pr_buf b, ev;
    pr_sse_decoder *d = NULL;
    int64_t t0;
    const char *p;
    int beats = 0;
    pr_buf_init(&b);
    pr_buf_init(&ev);
    PT_REQUIRE(srv_start(&f, NULL) == PR_OK);
    PT_REQUIRE(pr_sse_decoder_create(&d, NULL) == PR_OK);
    /* mid-stream drop after 2 events and half of the third */
    PT_EQ_ERR(srv_get(&f, "/sse?events=5&id=1&drop_after=2&drop_partial=1", &r), PR_OK);
    if (r) {
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_EPROTO); /* truncated chunked body */
        PT_EQ_INT(srv_sse_decode(&b, 1, &ev, d), 2);
        PT_EQ_STR(ev.data, "message/1:event 1|message/2:event 2|");
        PT_EQ_STR(pr_sse_decoder_last_id(d, NULL), "2");
        PT_EQ_INT(pr_http_reusable(r), 0);
    }
    pr_http_response_destroy(r);
    r = NULL;
    pr_conn_destroy(f.c);
    f.c = NULL;
    /* heartbeats: comments every 20 ms while held open for 150 ms */
    PT_REQUIRE(srv_connect(&f, &f.c) == PR_OK);
    pr_buf_clear(&b);
    t0 = pr_now();
    PT_EQ_ERR(srv_get(&f, "/sse?events=1&heartbeat_ms=20&hold_ms=150&interval_ms=10", &r), PR_OK);
    if (r) {
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_ECLOSED);
        PT_CHECK(pr_now() - t0 >= 140);
        for (p = b.data; p && (p = strstr(p, ":\n\n")) != NULL; p += 3) beats++;
        PT_CHECK(beats >= 3);
        PT_CHECK(strstr(b.data, "data: event 1\n\n") != NULL);
    }
    pr_http_response_destroy(r);
    pr_sse_decoder_destroy(d);
    pr_buf_deinit(&b);
    pr_buf_deinit(&ev);
    srv_end(&f);
}

PT_TEST(server_slow_and_stall) {
    srv_fx f;
    pr_http_response *r = NULL;
    pr_buf b;
    char tmp[64];
    size_t got = 0;
    ptrdiff_t n;
    int64_t t0 = pr_now();
    pr_buf_init(&b);
    PT_REQUIRE(srv_start(&f, NULL) == PR_OK);
    PT_EQ_ERR(srv_get(&f, "/slow?len=5&delay_ms=30", &r), PR_OK);
    if (r) {
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_ECLOSED);
        PT_EQ_INT(b.len, 5);
        PT_CHECK(srv_pattern_ok(b.data, b.len));
        PT_CHECK(pr_now() - t0 >= 140);
    }
    pr_http_response_destroy(r);
    r = NULL;
    /* stall after 10 of 30 declared bytes: the client's deadline fires */
    PT_EQ_ERR(srv_get(&f, "/stall?after=10&len=30", &r), PR_OK);
    if (r) {
        PT_CHECK(srv_hdr_is(r, "Content-Length", "30"));
        while (got < 10 && (n = pr_http_read(r, tmp, sizeof tmp, pr_deadline_in(2000))) > 0) got += (size_t)n;
        PT_EQ_INT(got, 10);
        t0 = pr_now();
        PT_EQ_ERR((int)pr_http_read(r, tmp, sizeof tmp, pr_deadline_in(100)), PR_ETIMEDOUT);
        PT_CHECK(pr_now() - t0 < 1000);
    }
    pr_http_response_destroy(r);
    r = NULL;
    pr_conn_destroy(f.c);
    f.c = NULL;
    /* stall inside the head */
    PT_REQUIRE(srv_connect(&f, &f.c) == PR_OK);
    t0 = pr_now();
    PT_EQ_ERR(srv_req(&f, f.c, "GET", "/stall?in_head=1", NULL, NULL, &r, pr_deadline_in(100)), PR_ETIMEDOUT);
    PT_CHECK(r == NULL);
    PT_CHECK(pr_now() - t0 < 1000);
    pr_http_response_destroy(r);
    pr_buf_deinit(&b);
    srv_end(&f);
}

PT_TEST(server_drop) {
    srv_fx f;
    pr_http_response *r = NULL;
    pr_buf b;
    pr_buf_init(&b);
    PT_REQUIRE(srv_start(&f, NULL) == PR_OK);
    PT_EQ_ERR(srv_get(&f, "/drop?after=100&len=1000", &r), PR_OK);
    if (r) {
        PT_CHECK(srv_hdr_is(r, "Content-Length", "1000"));
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_EPROTO);
        PT_EQ_INT(b.len, 100);
        PT_CHECK(srv_pattern_ok(b.data, b.len));
    }
    pr_http_response_destroy(r);
    r = NULL;
    pr_conn_destroy(f.c);
    PT_REQUIRE(srv_connect(&f, &f.c) == PR_OK);
    pr_buf_clear(&b);
    PT_EQ_ERR(srv_get(&f, "/drop?after=50&chunked=1", &r), PR_OK);
    if (r) {
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_EPROTO);
        PT_EQ_INT(b.len, 50);
    }
    pr_http_response_destroy(r);
    pr_buf_deinit(&b);
    srv_end(&f);
}

PT_TEST(server_garbage) {
    static const char *const kinds[] = {"", "?kind=header", "?kind=cl", "?kind=version", "?kind=binary"};
    srv_fx f;
    pr_http_response *r = NULL;
    pr_buf b;
    size_t i;
    char target[64];
    pr_buf_init(&b);
    PT_REQUIRE(srv_start(&f, NULL) == PR_OK);
    for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (!f.c) PT_REQUIRE(srv_connect(&f, &f.c) == PR_OK);
        snprintf(target, sizeof target, "/garbage%s", kinds[i]);
        PT_EQ_ERR(srv_get(&f, target, &r), PR_EPROTO);
        PT_CHECK(r == NULL);
        pr_http_response_destroy(r);
        r = NULL;
        pr_conn_destroy(f.c);
        f.c = NULL;
    }
    /* bad chunk framing shows up in the body */
    PT_REQUIRE(srv_connect(&f, &f.c) == PR_OK);
    PT_EQ_ERR(srv_get(&f, "/garbage?kind=chunk", &r), PR_OK);
    if (r) PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_EPROTO);
    pr_http_response_destroy(r);
    pr_buf_deinit(&b);
    srv_end(&f);
}

PT_TEST(server_redirect_chain) {
    srv_fx f;
    pr_http_response *r = NULL;
    pr_buf b;
    char target[256];
    int hops = 0;
    pr_buf_init(&b);
    PT_REQUIRE(srv_start(&f, NULL) == PR_OK);
    snprintf(target, sizeof target, "/redirect?n=3&code=307&len=40");
    for (;;) {
        const pr_slice *loc;
        PT_EQ_ERR(srv_get(&f, target, &r), PR_OK);
        if (!r) break;
        pr_buf_clear(&b);
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_ECLOSED);
        if (pr_http_status(r) != 307) break;
        loc = pr_http_header_get(r, "Location");
        PT_REQUIRE(loc && loc->len < sizeof target);
        memcpy(target, loc->ptr, loc->len);
        target[loc->len] = 0;
        pr_http_response_destroy(r);
        r = NULL;
        if (++hops > 10) break;
    }
    PT_EQ_INT(hops, 3);
    PT_EQ_STR(target, "/fixed?len=40");
    if (r) {
        PT_EQ_INT(pr_http_status(r), 200);
        PT_EQ_INT(b.len, 40);
    }
    pr_http_response_destroy(r);
    r = NULL;
    /* absolute Location */
    PT_EQ_ERR(srv_get(&f, "/redirect?n=2&abs=1", &r), PR_OK);
    if (r) {
        snprintf(target, sizeof target, "http://127.0.0.1:%u/redirect?n=1&code=302&len=26&abs=1",
                 (unsigned)ts_port(f.s));
        PT_EQ_INT(pr_http_status(r), 302);
        PT_CHECK(srv_hdr_is(r, "Location", target));
    }
    pr_http_response_destroy(r);
    PT_EQ_INT(ts_accepted(f.s), 1);
    pr_buf_deinit(&b);
    srv_end(&f);
}

PT_TEST(server_status_retry_after_404) {
    srv_fx f;
    pr_http_response *r = NULL;
    pr_buf b;
    pr_buf_init(&b);
    PT_REQUIRE(srv_start(&f, NULL) == PR_OK);
    PT_EQ_ERR(srv_get(&f, "/retry-after?seconds=7&status=429", &r), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 429);
        PT_CHECK(srv_hdr_is(r, "Retry-After", "7"));
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_ECLOSED);
    }
    pr_http_response_destroy(r);
    PT_EQ_ERR(srv_get(&f, "/status?code=418", &r), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 418);
        pr_buf_clear(&b);
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_ECLOSED);
        PT_EQ_STR(b.data, "status 418\n");
    }
    pr_http_response_destroy(r);
    PT_EQ_ERR(srv_get(&f, "/status?code=304", &r), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 304);
        pr_buf_clear(&b);
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_ECLOSED);
        PT_EQ_INT(b.len, 0);
    }
    pr_http_response_destroy(r);
    PT_EQ_ERR(srv_get(&f, "/nowhere", &r), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 404);
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_ECLOSED);
    }
    pr_http_response_destroy(r);
    PT_EQ_INT(ts_requests(f.s), 4);
    pr_buf_deinit(&b);
    srv_end(&f);
}

static ptrdiff_t srv_body_fn(void *buf, size_t n, void *ud) {
    int *left = (int *)ud;
    if (*left == 0 || n < 5) return 0;
    (*left)--;
    memcpy(buf, "part.", 5);
    return 5;
}

PT_TEST(server_echo) {
    srv_fx f;
    pr_http_response *r = NULL;
    pr_buf b;
    static const char *const h[] = { "X-Test: yes", NULL };
    char want[128];
    pr_url u;
    pr_http_request req;
    char url[128];
    int parts = 3;
    pr_buf_init(&b);
    PT_REQUIRE(srv_start(&f, NULL) == PR_OK);
    PT_EQ_ERR(srv_req(&f, f.c, "POST", "/echo?x=1", h, "hello body", &r, pr_deadline_in(5000)), PR_OK);
    if (r) {
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_ECLOSED);
        PT_CHECK(strncmp(b.data, "POST /echo?x=1 HTTP/1.1\r\n", 25) == 0);
        PT_CHECK(strstr(b.data, "\r\nX-Test: yes\r\n") != NULL);
        PT_CHECK(strstr(b.data, "\r\nContent-Length: 10\r\n") != NULL);
        snprintf(want, sizeof want, "Host: 127.0.0.1:%u\r\n", (unsigned)ts_port(f.s));
        PT_CHECK(strstr(b.data, want) != NULL);
        PT_CHECK(b.len > 14 && memcmp(b.data + b.len - 14, "\r\n\r\nhello body", 14) == 0);
        PT_CHECK(srv_hdr_is(r, "X-Echo-Body-Length", "10"));
    }
    pr_http_response_destroy(r);
    r = NULL;
    /* a chunked request body is decoded */
    memset(&u, 0, sizeof u);
    memset(&req, 0, sizeof req);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/echo", (unsigned)ts_port(f.s));
    PT_REQUIRE(pr_url_parse(&u, url, strlen(url), NULL) == PR_OK);
    req.method = "PUT";
    req.url = &u;
    req.body_fn = srv_body_fn;
    req.body_user_data = &parts;
    PT_EQ_ERR(pr_http_exchange(&r, f.c, &req, NULL, NULL, pr_deadline_in(5000)), PR_OK);
    if (r) {
        pr_buf_clear(&b);
        PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_ECLOSED);
        PT_CHECK(strstr(b.data, "Transfer-Encoding: chunked\r\n") != NULL);
        PT_CHECK(b.len > 19 && memcmp(b.data + b.len - 19, "\r\n\r\npart.part.part.", 19) == 0);
        PT_CHECK(srv_hdr_is(r, "X-Echo-Body-Length", "15"));
    }
    pr_http_response_destroy(r);
    pr_url_deinit(&u);
    PT_EQ_INT(ts_accepted(f.s), 1);
    pr_buf_deinit(&b);
    srv_end(&f);
}

PT_TEST(server_bad_request) {
    srv_fx f;
    pr_buf raw;
    pr_buf_init(&raw);
    PT_REQUIRE(srv_start(&f, NULL) == PR_OK);
    PT_EQ_ERR(srv_raw(f.c, "NONSENSE\r\n\r\n", &raw, pr_deadline_in(5000)), PR_ECLOSED);
    PT_CHECK(raw.data && strncmp(raw.data, "HTTP/1.1 400 ", 13) == 0);
    pr_buf_deinit(&raw);
    srv_end(&f);
}

PT_TEST(server_lifetime_cap) {
    srv_fx f;
    ts_opts o;
    pr_conn *c2 = NULL;
    char tmp[16];
    int64_t t0 = pr_now();
    memset(&o, 0, sizeof o);
    o.max_lifetime_ms = 150;
    PT_REQUIRE(srv_start(&f, &o) == PR_OK);
    PT_CHECK(!ts_stopped(f.s));
    /* the idle connection is closed and the listener goes when time is up */
    PT_EQ_ERR((int)pr_conn_read(f.c, tmp, sizeof tmp, pr_deadline_in(3000)), PR_ECLOSED);
    PT_EQ_ERR(ts_wait(f.s, pr_deadline_in(3000)), PR_OK);
    PT_CHECK(ts_stopped(f.s));
    PT_CHECK(pr_now() - t0 >= 140 && pr_now() - t0 < 3000);
    PT_EQ_INT(ts_open_conns(f.s), 0);
    PT_CHECK(ts_port(f.s) == 0);
    srv_end(&f);
    (void)c2;
}

PT_TEST(server_stop_with_open_conns) {
    srv_fx f;
    pr_conn *c[3] = {NULL, NULL, NULL};
    pr_http_response *r[3] = {NULL, NULL, NULL};
    char tmp[64];
    int i;
    PT_REQUIRE(srv_start(&f, NULL) == PR_OK);
    for (i = 0; i < 3; i++) PT_REQUIRE(srv_connect(&f, &c[i]) == PR_OK);
    PT_EQ_ERR(srv_req(&f, c[0], "GET", "/stall?after=5", NULL, NULL, &r[0], pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(srv_req(&f, c[1], "GET", "/sse?events=1&heartbeat_ms=10", NULL, NULL, &r[1], pr_deadline_in(5000)),
              PR_OK);
    PT_EQ_ERR(pr_conn_write(c[2], "GET /fixed HTTP/1.1\r\nHo", 23, pr_deadline_in(1000)), PR_OK); /* half a head */
    PT_EQ_ERR(pr_sleep(pr_deadline_in(30)), PR_OK);
    PT_EQ_INT(ts_open_conns(f.s), 4);
    ts_stop(f.s);
    f.s = NULL;
    /* every client sees the end within a bounded time */
    for (i = 0; i < 2; i++) {
        ptrdiff_t n;
        int64_t dl = pr_deadline_in(3000);
        while ((n = pr_http_read(r[i], tmp, sizeof tmp, dl)) > 0) {}
        PT_CHECK(n != PR_ETIMEDOUT);
        pr_http_response_destroy(r[i]);
    }
    PT_CHECK(pr_conn_read(c[2], tmp, sizeof tmp, pr_deadline_in(3000)) != PR_ETIMEDOUT);
    for (i = 0; i < 3; i++) pr_conn_destroy(c[i]);
    pr_conn_destroy(f.c);
}

PT_TEST(server_tls) {
#ifdef PRISTINE_NO_TLS
    PT_SKIP("no TLS in this build");
#else
    srv_fx f;
    ts_opts o;
    pr_http_response *r = NULL;
    pr_buf b;
    int rc;
    if (system("sh tests/fixtures/tls_mkcerts.sh " SRV_TLS_DIR) != 0) PT_SKIP("no openssl to make certificates");
    memset(&o, 0, sizeof o);
    o.tls_cert_file = SRV_TLS_DIR "/good.crt";
    o.tls_key_file = SRV_TLS_DIR "/good.key";
    memset(&f, 0, sizeof f);
    PT_REQUIRE(ts_start(&f.s, &o) == PR_OK);
    f.tls = 1;
    PT_EQ_ERR(srv_connect(&f, &f.c), PR_OK);
    pr_buf_init(&b);
    if (f.c) {
        PT_EQ_ERR(srv_get(&f, "/fixed?len=50000", &r), PR_OK);
        if (r) {
            PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_ECLOSED);
            PT_EQ_INT(b.len, 50000);
            PT_CHECK(srv_pattern_ok(b.data, b.len));
        }
        pr_http_response_destroy(r);
        PT_EQ_ERR(srv_get(&f, "/chunked?sizes=3,4000", &r), PR_OK);
        if (r) {
            pr_buf_clear(&b);
            PT_EQ_ERR(srv_body(r, &b, pr_deadline_in(5000)), PR_ECLOSED);
            PT_EQ_INT(b.len, 4003);
            PT_CHECK(srv_hdr_is(r, "X-Conn-Request", "2"));
        }
        pr_http_response_destroy(r);
        /* a drop over TLS: no close_notify */
        PT_EQ_ERR(srv_get(&f, "/drop?after=10", &r), PR_OK);
        if (r) {
            pr_buf_clear(&b);
            rc = srv_body(r, &b, pr_deadline_in(5000));
            PT_CHECK(rc == PR_ETLS || rc == PR_EPROTO);
            PT_EQ_INT(b.len, 10);
        }
        pr_http_response_destroy(r);
    }
    PT_EQ_INT(ts_accepted(f.s), 1);
    pr_buf_deinit(&b);
    srv_end(&f);
#endif
}

const pt_suite pt_suite_server = { "server", {
    PT_ENTRY(server_fixed_keepalive),
    PT_ENTRY(server_chunked_sizes),
    PT_ENTRY(server_body_buffer_grows_and_shrinks),
    PT_ENTRY(server_sse_events),
    PT_ENTRY(server_sse_drop_and_heartbeat),
    PT_ENTRY(server_slow_and_stall),
    PT_ENTRY(server_drop),
    PT_ENTRY(server_garbage),
    PT_ENTRY(server_redirect_chain),
    PT_ENTRY(server_status_retry_after_404),
    PT_ENTRY(server_echo),
    PT_ENTRY(server_bad_request),
    PT_ENTRY(server_lifetime_cap),
    PT_ENTRY(server_stop_with_open_conns),
    PT_ENTRY(server_tls),
    {0, 0} } };
