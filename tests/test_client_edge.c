/* client_edge: pr_http_client in the corners: per-phase connect limits
   (DNS, proxy CONNECT, TLS handshake), cancellation in every phase,
   redirect limits, TLS end-of-stream rules through HTTP, allocation
   failures over https and proxies. Uses the servers of test_client.c. */

/* ---- a serial raw server: accept, (TLS), read one request, write the
   exact response bytes, then close gracefully (FIN, or close_notify over
   TLS) or abruptly (TCP shutdown without close_notify) ---- */
typedef struct ce_srv {
    pr_listener *l;
    uint16_t port;
    const pr_tls_server_cfg *cfg; /* NULL = plain */
    const char *resp;
    size_t resp_len;
    int abrupt;     /* 1 = shutdown(fd) with no close_notify */
    int accepts, served;
    char req[4096]; /* the last request */
    pr_task *t;
} ce_srv;

static int ce_srv_task(void *arg) {
    ce_srv *s = (ce_srv *)arg;
    for (;;) {
        pr_conn *c = NULL;
        int fd;
        ptrdiff_t k;
        if (pr_tcp_accept(s->l, &c, PR_FOREVER) != PR_OK) return 0; /* cancelled */
        s->accepts++;
        fd = ((pr__net_sock *)(void *)c)->fd;
        if (s->cfg) {
            pr_conn *t = NULL;
            if (pr_tls_server(&t, c, s->cfg, NULL, pr_deadline_in(5000)) != PR_OK) { /* c is gone */
                if (pr_is_canceled()) return 0;
                continue;
            }
            c = t;
        }
        k = cl_read_request(c, s->req, sizeof s->req);
        if (k > 0) {
            s->served++;
            if (pr_conn_write(c, s->resp, s->resp_len, pr_deadline_in(5000)) == PR_OK) {
                if (s->abrupt) shutdown(fd, SHUT_RDWR); /* FIN, and no close_notify */
                else pr_conn_shutdown(c, pr_deadline_in(1000));
            }
        }
        pr_conn_destroy(c);
        if (pr_is_canceled()) return 0;
    }
}

static int ce_start(ce_srv *s, const pr_tls_server_cfg *cfg, const char *resp, size_t resp_len, int abrupt) {
    int rc;
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->resp = resp;
    s->resp_len = resp_len;
    s->abrupt = abrupt;
    if ((rc = pr_tcp_listen(&s->l, "127.0.0.1", 0, 16, NULL)) != PR_OK) return rc;
    s->port = pr_listener_port(s->l);
    if ((rc = pr_go(&s->t, ce_srv_task, s, NULL)) != PR_OK) {
        pr_listener_destroy(s->l);
        s->l = NULL;
    }
    return rc;
}

static void ce_stop(ce_srv *s) {
    if (!s->l) return;
    pr_cancel(s->t);
    pr_join(s->t, NULL, PR_FOREVER);
    pr_listener_destroy(s->l);
    s->l = NULL;
}

/* Read a body until it ends or fails: the bytes go to buf (*len of them),
   the return is the final code (PR_ECLOSED at a clean end). Bounded. */
static int ce_read_all(pr_http_response *r, char *buf, size_t cap, size_t *len) {
    int i;
    *len = 0;
    for (i = 0; i < 10000; i++) {
        ptrdiff_t k;
        if (*len + 1 >= cap) return PR_ELIMIT;
        k = pr_http_read(r, buf + *len, cap - 1 - *len, pr_deadline_in(5000));
        if (k <= 0) {
            buf[*len] = 0;
            return k < 0 ? (int)k : PR_EPROTO;
        }
        *len += (size_t)k;
    }
    return PR_ELIMIT;
}

/* ASCII case-insensitive strstr (strcasestr is not C99). */
static const char *ce_istr(const char *hay, const char *needle) {
    size_t n = strlen(needle), i;
    for (; *hay; hay++) {
        for (i = 0; i < n && hay[i]; i++) {
            char a = hay[i], b = needle[i];
            if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
            if (b >= 'A' && b <= 'Z') b = (char)(b - 'A' + 'a');
            if (a != b) break;
        }
        if (i == n) return hay;
    }
    return NULL;
}

/* Slow DNS without traffic: helpers sleep ms, then answer "no such name"
   themselves. ce_dns_restore waits for abandoned lookups to be freed. */
static void ce_dns_slow(int ms) {
    __atomic_store_n(&pr__net_test_dns_offline, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&pr__net_test_dns_delay_ms, ms, __ATOMIC_SEQ_CST);
}

static void ce_dns_restore(void) {
    PT_EQ_INT(net_wait_jobs_drained(20000), 0); /* offline stays on until every helper is done */
    __atomic_store_n(&pr__net_test_dns_delay_ms, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&pr__net_test_dns_offline, 0, __ATOMIC_SEQ_CST);
}

/* ---- 1. connect_timeout_ms covers every connect phase ---- */

/* GET url in a task whose call deadline is 20 s; the connect cap must end
   it long before: a join that is still waiting after 5 s is a failure
   (the hang is then cancelled). Returns the call's result. */
static int ce_get_capped(pr_http_client *c, const char *url) {
    pr_task *t;
    cl_blocked b;
    b.c = c;
    b.url = url;
    b.read_body = 0;
    b.rc = 1;
    if (pr_go(&t, cl_blocked_task, &b, NULL) != PR_OK) return PR_ENOMEM;
    if (pr_join(t, NULL, pr_deadline_in(5000)) != PR_OK) {
        pt_fail(__FILE__, __LINE__, "%s: still connecting after 5 s, want the connect cap to end it", url);
        pr_cancel(t);
        pr_join(t, NULL, PR_FOREVER);
    }
    return b.rc;
}

/* A lookup slower than the connect cap: PR_ETIMEDOUT from the cap (its
   message), not from the call's deadline nor the lookup's own answer. */
PT_TEST(client_edge_connect_timeout_covers_dns) {
    pr_http_client *c = NULL;
    pr_http_client_opts o = cl_noenv;
    pr_err_info e;
    o.connect_timeout_ms = 200;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    ce_dns_slow(1500); /* the lookup would end with PR_EDNS after 1.5 s */
    PT_EQ_ERR(ce_get_capped(c, "http://slow-edge.invalid:8080/"), PR_EIO);
    PT_EQ_INT(pr_http_client_last_error(c, &e), PR_OK);
    PT_EQ_INT(e.code, PR_EIO); /* a limit of the client, not the deadline */
    PT_EQ_INT(e.sys_errno, ETIMEDOUT);
    if (strcmp(e.msg, "http: timed out resolving and connecting to slow-edge.invalid (connect timeout 200 ms)"))
        pt_fail(__FILE__, __LINE__, "msg \"%s\" does not name the connect timeout and its phase", e.msg);
    ce_dns_restore();
    pr_http_client_destroy(c);
}

#ifndef PRISTINE_NO_TLS
/* An http proxy that reads the CONNECT and never answers. */
PT_TEST(client_edge_connect_timeout_covers_proxy_connect) {
    cl_srv p;
    pr_http_client *c = NULL;
    pr_http_client_opts o = cl_noenv;
    pr_err_info e;
    char proxy[64];
    PT_REQUIRE(pr_dns_override("a.test", 0, "127.0.0.1") == PR_OK);
    PT_REQUIRE(cl_start(&p, cl_hang_head, NULL) == PR_OK);
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%u/", p.port);
    o.https_proxy = proxy;
    o.connect_timeout_ms = 300;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    PT_EQ_ERR(ce_get_capped(c, "https://a.test/x"), PR_EIO);
    PT_EQ_INT(pr_http_client_last_error(c, &e), PR_OK);
    PT_EQ_INT(e.code, PR_EIO); /* a limit of the client, not the deadline */
    PT_EQ_INT(e.sys_errno, ETIMEDOUT);
    if (strcmp(e.msg, "http: timed out waiting for the CONNECT reply of the proxy 127.0.0.1 (connect timeout 300 ms)"))
        pt_fail(__FILE__, __LINE__, "msg \"%s\" does not name the connect timeout and its phase", e.msg);
    PT_EQ_INT(p.nreqs, 1); /* the CONNECT did arrive */
    PT_CHECK(strstr(p.log, "CONNECT a.test:443 HTTP/1.1\r\n") == p.log);
    pr_http_client_destroy(c);
    cl_stop(&p);
    pr_dns_override(NULL, 0, NULL);
}

/* A "TLS server" that accepts TCP and never answers the ClientHello. */
PT_TEST(client_edge_connect_timeout_covers_tls_handshake) {
    cl_srv m;
    pr_http_client *c = NULL;
    pr_http_client_opts o;
    pr_err_info e;
    char url[64];
    TLS_NEED_FIXTURES();
    o = cl_tls_opts();
    PT_REQUIRE(o.tls.ca_pem != NULL);
    o.connect_timeout_ms = 300;
    PT_REQUIRE(cl_start(&m, cl_mute, NULL) == PR_OK);
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "https://127.0.0.1:%u/", m.port);
    PT_EQ_ERR(ce_get_capped(c, url), PR_EIO);
    PT_EQ_INT(pr_http_client_last_error(c, &e), PR_OK);
    PT_EQ_INT(e.code, PR_EIO); /* a limit of the client, not the deadline */
    PT_EQ_INT(e.sys_errno, ETIMEDOUT);
    if (strcmp(e.msg, "http: timed out in the TLS handshake with 127.0.0.1 (connect timeout 300 ms)"))
        pt_fail(__FILE__, __LINE__, "msg \"%s\" does not name the connect timeout and its phase", e.msg);
    PT_EQ_INT(m.accepts, 1);
    PT_EQ_INT(m.nreqs, 0);
    pr_http_client_destroy(c);
    cl_stop(&m);
}
#endif

/* ---- 2. cancellation in every phase ---- */

PT_TEST(client_edge_cancel_in_dns) {
    pr_http_client *c = NULL;
    PT_REQUIRE(pr_http_client_create(&c, &cl_noenv, NULL) == PR_OK);
    ce_dns_slow(1000);
    cl_cancel_case(c, "http://slow-cancel.invalid:8080/", 0);
    ce_dns_restore();
    pr_http_client_destroy(c);
}

#ifndef PRISTINE_NO_TLS
PT_TEST(client_edge_cancel_in_proxy_connect) {
    cl_srv p;
    pr_http_client *c = NULL;
    pr_http_client_opts o = cl_noenv;
    char proxy[64];
    PT_REQUIRE(pr_dns_override("a.test", 0, "127.0.0.1") == PR_OK);
    PT_REQUIRE(cl_start(&p, cl_hang_head, NULL) == PR_OK);
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%u/", p.port);
    o.https_proxy = proxy;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    cl_cancel_case(c, "https://a.test/x", 0);
    PT_EQ_INT(p.nreqs, 1);
    PT_CHECK(strstr(p.log, "CONNECT a.test:443 ") == p.log);
    PT_EQ_INT(pr_http_client_idle_count(c), 0);
    pr_http_client_destroy(c);
    cl_stop(&p);
    pr_dns_override(NULL, 0, NULL);
}
#endif

/* An endless streamed body (bounded by a call cap far beyond any socket
   buffer). */
static ptrdiff_t ce_endless_fn(void *buf, size_t n, void *user_data) {
    long *calls = (long *)user_data;
    if (++*calls > 200000) return 0;
    memset(buf, 'x', n);
    return (ptrdiff_t)n;
}

typedef struct ce_up {
    pr_http_client *c;
    const pr_http_request *req;
    int rc;
} ce_up;

static int ce_up_task(void *arg) {
    ce_up *u = (ce_up *)arg;
    pr_http_response *r = NULL;
    u->rc = pr_http_client_request(u->c, &r, u->req, NULL, pr_deadline_in(20000));
    pr_http_response_destroy(r);
    return 0;
}

/* The upload blocks (the server never accepts, so never reads: the
   kernel's queue holds the connection), then the task is cancelled. */
PT_TEST(client_edge_cancel_in_body_upload) {
    enum { BIG = 32 << 20 };
    pr_listener *l = NULL;
    pr_http_client *c = NULL;
    pr_http_request req;
    pr_url u;
    pr_task *t;
    ce_up up;
    long calls = 0;
    char url[64];
    int pass;
    char *big = (char *)calloc(1, BIG);
    PT_REQUIRE(big != NULL);
    memset(&u, 0, sizeof u);
    PT_REQUIRE(pr_tcp_listen(&l, "127.0.0.1", 0, 8, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/up", pr_listener_port(l));
    PT_REQUIRE(pr_url_parse(&u, url, strlen(url), NULL) == PR_OK);
    PT_REQUIRE(pr_http_client_create(&c, &cl_noenv, NULL) == PR_OK);
    for (pass = 0; pass < 2; pass++) {
        memset(&req, 0, sizeof req);
        req.method = "POST";
        req.url = &u;
        if (pass == 0) {
            req.body = big;
            req.body_len = BIG;
        } else {
            req.body_fn = ce_endless_fn;
            req.body_user_data = &calls;
        }
        up.c = c;
        up.req = &req;
        up.rc = 1;
        PT_REQUIRE(pr_go(&t, ce_up_task, &up, NULL) == PR_OK);
        pr_sleep(pr_deadline_in(200));
        if (up.rc != 1) pt_fail(__FILE__, __LINE__, "pass %d: got %s, want the upload still blocked", pass, pt_errname(up.rc));
        pr_cancel(t);
        PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(2000)), PR_OK);
        PT_EQ_ERR(up.rc, PR_ECANCELED);
    }
    PT_CHECK(calls > 0 && calls < 200000);
    PT_EQ_INT(pr_http_client_idle_count(c), 0);
    pr_http_client_destroy(c);
    pr_listener_destroy(l);
    pr_url_deinit(&u);
    free(big);
}

/* ---- 3. redirects: 308, and the cap of 10 ---- */
static int ce_redir(cl_srv *s, int conn, int nreq, const char *req, char *out, size_t cap) {
    const char *sp = strchr(req, ' ');
    (void)s;
    (void)conn;
    (void)nreq;
    if (sp && !strncmp(sp, " /perm ", 7)) {
        snprintf(out, cap, "HTTP/1.1 308 Permanent Redirect\r\nLocation: /c\r\nContent-Length: 4\r\n\r\nmove");
    } else if (sp && !strncmp(sp, " /r", 3) && sp[3] >= '0' && sp[3] <= '9') {
        int k = atoi(sp + 3); /* /r<k>: k more redirects to go */
        if (k > 0) snprintf(out, cap, "HTTP/1.1 302 Found\r\nLocation: /r%d\r\nContent-Length: 0\r\n\r\n", k - 1);
        else snprintf(out, cap, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nend");
    } else {
        snprintf(out, cap, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone");
    }
    return CL_KEEP;
}

/* method, buffer body (or a body_fn): returns the final status or an error. */
static int ce_send(pr_http_client *c, const char *method, const char *url, int use_fn, char *body, size_t cap) {
    pr_http_response *r = NULL;
    pr_http_request req;
    pr_url u;
    int rc;
    memset(&u, 0, sizeof u);
    memset(&req, 0, sizeof req);
    if ((rc = pr_url_parse(&u, url, strlen(url), NULL)) != PR_OK) return rc;
    req.method = method;
    req.url = &u;
    if (use_fn) {
        cl_body_calls = 0;
        req.body_fn = cl_body_fn;
    } else {
        req.body = "hello";
        req.body_len = 5;
    }
    rc = pr_http_client_request(c, &r, &req, NULL, pr_deadline_in(5000));
    pr_url_deinit(&u);
    if (rc) return rc;
    rc = pr_http_status(r);
    if (cl_body(r, body, cap) != PR_OK) rc = PR_EPROTO;
    pr_http_response_destroy(r);
    return rc;
}

PT_TEST(client_edge_redirect_308_keeps_method_and_body) {
    cl_srv s;
    pr_http_client *c = NULL;
    pr_http_client_opts o = cl_noenv;
    char url[64], body[64];
    PT_REQUIRE(cl_start(&s, ce_redir, NULL) == PR_OK);
    o.max_redirects = 3;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/perm", s.port);
    PT_EQ_INT(ce_send(c, "POST", url, 0, body, sizeof body), 200);
    PT_EQ_STR(body, "done");
    PT_EQ_INT(s.nreqs, 2);
    PT_CHECK(strstr(s.log, "POST /perm HTTP/1.1\r\n") == s.log);
    PT_CHECK(strstr(s.last, "POST /c HTTP/1.1\r\n") == s.last);
    PT_CHECK(strstr(s.last, "Content-Length: 5\r\n") != NULL);
    PT_CHECK(strstr(s.last, "\r\n\r\nhello") != NULL);
    /* any method: PUT stays PUT */
    PT_EQ_INT(ce_send(c, "PUT", url, 0, body, sizeof body), 200);
    PT_CHECK(strstr(s.last, "PUT /c HTTP/1.1\r\n") == s.last);
    PT_CHECK(strstr(s.last, "\r\n\r\nhello") != NULL);
    /* a streamed body cannot be replayed: the 308 is the answer */
    PT_EQ_INT(ce_send(c, "POST", url, 1, body, sizeof body), 308);
    PT_EQ_STR(body, "move");
    PT_CHECK(strstr(s.last, "POST /perm HTTP/1.1\r\n") == s.last);
    PT_CHECK(strstr(s.last, "Transfer-Encoding: chunked\r\n") != NULL);
    PT_EQ_INT(s.nreqs, 5);
    pr_http_client_destroy(c);
    cl_stop(&s);
}

/* max_redirects = 50 is clamped to 10: ten redirects are followed, the
   eleventh is PR_ELIMIT after eleven requests. */
PT_TEST(client_edge_redirect_cap_clamped_to_10) {
    cl_srv s;
    pr_http_client *c = NULL;
    pr_http_client_opts o = cl_noenv;
    pr_http_response *r = NULL;
    pr_err_info e;
    char url[64], body[64];
    PT_REQUIRE(cl_start(&s, ce_redir, NULL) == PR_OK);
    o.max_redirects = 50;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/r10", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "end");
    PT_EQ_INT(s.nreqs, 11);
    PT_CHECK(strstr(s.last, "GET /r0 HTTP/1.1\r\n") == s.last);
    s.nreqs = 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/r12", s.port);
    PT_EQ_ERR(pr_http_client_get(c, &r, url, NULL, pr_deadline_in(5000)), PR_ELIMIT);
    PT_CHECK(r == NULL);
    PT_EQ_INT(s.nreqs, 11); /* r12 .. r2: not one more */
    PT_CHECK(strstr(s.last, "GET /r2 HTTP/1.1\r\n") == s.last);
    PT_EQ_INT(pr_http_client_last_error(c, &e), PR_OK);
    PT_EQ_INT(e.code, PR_ELIMIT);
    PT_EQ_INT(e.http_status, 302);
    pr_http_client_destroy(c);
    cl_stop(&s);
}

/* ---- 4. TLS end-of-stream rules through HTTP ---- */
#ifndef PRISTINE_NO_TLS
/* A framed body (Content-Length, chunked) complete before a TCP close
   without close_notify: the body reads to a clean end. */
PT_TEST(client_edge_tls_framed_body_then_no_close_notify) {
    static const char *resps[2] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    };
    ce_srv s;
    pr_tls_server_cfg *cfg = NULL;
    pr_http_client *c = NULL;
    pr_http_client_opts o;
    pr_err_info e;
    char url[64], buf[256];
    size_t len;
    int i;
    TLS_NEED_FIXTURES();
    o = cl_tls_opts();
    PT_REQUIRE(o.tls.ca_pem != NULL);
    PT_REQUIRE(tls_cfg(&cfg, "good") == PR_OK);
    PT_REQUIRE(ce_start(&s, cfg, resps[0], strlen(resps[0]), 1) == PR_OK);
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "https://localhost:%u/framed", s.port);
    for (i = 0; i < 4; i++) {
        pr_http_response *r = NULL;
        s.resp = resps[i % 2];
        s.resp_len = strlen(s.resp);
        PT_EQ_ERR(pr_http_client_get(c, &r, url, NULL, pr_deadline_in(5000)), PR_OK);
        if (!r) break;
        PT_EQ_INT(pr_http_status(r), 200);
        PT_EQ_ERR(ce_read_all(r, buf, sizeof buf, &len), PR_ECLOSED);
        PT_EQ_STR(buf, "hello");
        PT_EQ_ERR((int)pr_http_read(r, buf, sizeof buf, pr_deadline_in(1000)), PR_ECLOSED); /* and again */
        PT_EQ_INT(pr_http_last_error(r, &e), PR_OK);
        PT_CHECK(e.code != PR_ETLS);
        PT_EQ_INT(e.tls_error, 0);
        pr_http_response_destroy(r);
    }
    PT_EQ_INT(s.served, 4);
    PT_EQ_INT(s.accepts, 4); /* each closed connection was dropped, never reused */
    pr_http_client_destroy(c);
    ce_stop(&s);
    pr_tls_server_cfg_destroy(cfg);
}

/* A body that runs to the end of the connection (no Content-Length, not
   chunked, Connection: close) ended by a TCP close without close_notify:
   a truncation, PR_ETLS / PR_TLS_TRUNCATED. */
PT_TEST(client_edge_tls_until_close_truncated) {
    static const char resp[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close";
    ce_srv s;
    pr_tls_server_cfg *cfg = NULL;
    pr_http_client *c = NULL;
    pr_http_client_opts o;
    pr_http_response *r = NULL;
    pr_err_info e;
    char url[64], buf[256];
    size_t len;
    TLS_NEED_FIXTURES();
    o = cl_tls_opts();
    PT_REQUIRE(o.tls.ca_pem != NULL);
    PT_REQUIRE(tls_cfg(&cfg, "good") == PR_OK);
    PT_REQUIRE(ce_start(&s, cfg, resp, strlen(resp), 1) == PR_OK);
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "https://localhost:%u/eof", s.port);
    PT_EQ_ERR(pr_http_client_get(c, &r, url, NULL, pr_deadline_in(5000)), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 200);
        PT_EQ_ERR(ce_read_all(r, buf, sizeof buf, &len), PR_ETLS);
        PT_EQ_STR(buf, "until close"); /* every byte before the truncation */
        PT_EQ_INT(pr_http_last_error(r, &e), PR_OK);
        PT_EQ_INT(e.code, PR_ETLS);
        PT_EQ_INT(e.tls_error, PR_TLS_TRUNCATED);
        PT_EQ_ERR((int)pr_http_read(r, buf, sizeof buf, pr_deadline_in(1000)), PR_ETLS); /* sticky */
        PT_EQ_INT(pr_http_reusable(r), 0);
        pr_http_response_destroy(r);
    }
    PT_EQ_INT(pr_http_client_idle_count(c), 0);
    pr_http_client_destroy(c);
    ce_stop(&s);
    pr_tls_server_cfg_destroy(cfg);
}

/* The same body ended with close_notify: a clean PR_ECLOSED. */
PT_TEST(client_edge_tls_until_close_close_notify) {
    static const char resp[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close";
    ce_srv s;
    pr_tls_server_cfg *cfg = NULL;
    pr_http_client *c = NULL;
    pr_http_client_opts o;
    pr_http_response *r = NULL;
    pr_err_info e;
    char url[64], buf[256];
    size_t len;
    TLS_NEED_FIXTURES();
    o = cl_tls_opts();
    PT_REQUIRE(o.tls.ca_pem != NULL);
    PT_REQUIRE(tls_cfg(&cfg, "good") == PR_OK);
    PT_REQUIRE(ce_start(&s, cfg, resp, strlen(resp), 0) == PR_OK);
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "https://localhost:%u/eof", s.port);
    PT_EQ_ERR(pr_http_client_get(c, &r, url, NULL, pr_deadline_in(5000)), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 200);
        PT_EQ_ERR(ce_read_all(r, buf, sizeof buf, &len), PR_ECLOSED);
        PT_EQ_STR(buf, "until close");
        PT_EQ_INT(pr_http_last_error(r, &e), PR_OK);
        PT_CHECK(e.code != PR_ETLS);
        PT_EQ_INT(e.tls_error, 0);
        PT_EQ_ERR((int)pr_http_read(r, buf, sizeof buf, pr_deadline_in(1000)), PR_ECLOSED);
        PT_EQ_INT(pr_http_reusable(r), 0); /* until close: never reusable */
        pr_http_response_destroy(r);
    }
    PT_EQ_INT(pr_http_client_idle_count(c), 0);
    pr_http_client_destroy(c);
    ce_stop(&s);
    pr_tls_server_cfg_destroy(cfg);
}
#endif

/* ---- 5. allocation failures over https and proxies ---- */

/* cl_get, and a failure of the request itself must be what
   pr_http_client_last_error reports. */
static int ce_get_checked(pr_http_client *c, const char *url, char *body, size_t cap, long n) {
    pr_http_response *r = NULL;
    int rc = pr_http_client_get(c, &r, url, NULL, pr_deadline_in(5000)), st;
    if (rc) {
        pr_err_info e;
        memset(&e, 0, sizeof e);
        pr_http_client_last_error(c, &e);
        if (e.code != rc)
            pt_fail(__FILE__, __LINE__, "fail-nth %ld: got last_error %s (\"%s\"), want %s as returned", n,
                    pt_errname(e.code), e.msg, pt_errname(rc));
        return rc;
    }
    st = pr_http_status(r);
    rc = cl_body(r, body, cap);
    pr_http_response_destroy(r);
    return rc ? rc : st;
}

/* The outcome of one fail-nth round: rc is 200, PR_ENOMEM, or a failure
   the server side caused (its own allocation failed: nothing reached it). */
static int ce_sweep_ok(int rc, int server_reached) {
    if (rc == 200 || rc == PR_ENOMEM) return 1;
    return !server_reached && (rc == PR_ECLOSED || rc == PR_EIO || rc == PR_ETLS);
}

#ifndef PRISTINE_NO_TLS
PT_TEST(client_edge_alloc_fail_sweep_https) {
    cl_srv s;
    pr_tls_server_cfg *cfg = NULL;
    pr_http_client_opts o;
    char url[64], body[64];
    long n;
    int ok = 0;
    TLS_NEED_FIXTURES();
    o = cl_tls_opts();
    PT_REQUIRE(o.tls.ca_pem != NULL);
    PT_REQUIRE(tls_cfg(&cfg, "good") == PR_OK);
    for (n = 1; n < 2000; n++) {
        pr_http_client *c = NULL;
        int rc, done;
        PT_REQUIRE(cl_start(&s, cl_ok, cfg) == PR_OK);
        snprintf(url, sizeof url, "https://localhost:%u/", s.port);
        body[0] = 0;
        pt_alloc_fail_nth(n);
        rc = pr_http_client_create(&c, &o, NULL);
        if (!rc) {
            rc = ce_get_checked(c, url, body, sizeof body, n);
            if (rc > 0) rc = ce_get_checked(c, url, body, sizeof body, n); /* from the pool */
            pr_http_client_destroy(c);
        }
        done = __atomic_load_n(&pt__mem.fail_nth, __ATOMIC_RELAXED) > 0;
        pt_alloc_fail_nth(0);
        cl_stop(&s);
        if (done) {
            PT_EQ_INT(rc, 200);
            PT_EQ_STR(body, "hello");
            PT_EQ_INT(s.accepts, 1);
            PT_EQ_INT(s.nreqs, 2);
            ok = 1;
            break;
        }
        if (!ce_sweep_ok(rc, s.nreqs > 0))
            pt_fail(__FILE__, __LINE__, "fail-nth %ld: got %s (server requests %d)", n, pt_errname(rc), s.nreqs);
    }
    PT_CHECK(ok);
    pr_tls_server_cfg_destroy(cfg);
}
#endif

PT_TEST(client_edge_alloc_fail_sweep_plain_proxy) {
    cl_srv p;
    pr_http_client_opts o = cl_noenv;
    char proxy[64], body[64];
    long n;
    int ok = 0;
    PT_REQUIRE(pr_dns_override("a.test", 0, "127.0.0.1") == PR_OK);
    for (n = 1; n < 1000; n++) {
        pr_http_client *c = NULL;
        int rc, done;
        PT_REQUIRE(cl_start(&p, cl_proxy_plain, NULL) == PR_OK);
        snprintf(proxy, sizeof proxy, "http://u:pw@127.0.0.1:%u", p.port);
        o.http_proxy = proxy;
        body[0] = 0;
        pt_alloc_fail_nth(n);
        rc = pr_http_client_create(&c, &o, NULL);
        if (!rc) {
            rc = ce_get_checked(c, "http://a.test:9/p?q=1", body, sizeof body, n);
            if (rc > 0) rc = ce_get_checked(c, "http://a.test:9/p?q=1", body, sizeof body, n);
            pr_http_client_destroy(c);
        }
        done = __atomic_load_n(&pt__mem.fail_nth, __ATOMIC_RELAXED) > 0;
        pt_alloc_fail_nth(0);
        cl_stop(&p);
        if (done) {
            PT_EQ_INT(rc, 200);
            PT_EQ_STR(body, "proxied");
            PT_EQ_INT(p.accepts, 1);
            PT_EQ_INT(p.nreqs, 2);
            PT_CHECK(strstr(p.log, "GET http://a.test:9/p?q=1 HTTP/1.1\r\n") == p.log);
            PT_CHECK(strstr(p.log, "Proxy-Authorization: Basic dTpwdw==\r\n") != NULL);
            ok = 1;
            break;
        }
        if (!ce_sweep_ok(rc, p.nreqs > 0))
            pt_fail(__FILE__, __LINE__, "fail-nth %ld: got %s (proxy requests %d)", n, pt_errname(rc), p.nreqs);
    }
    PT_CHECK(ok);
    pr_dns_override(NULL, 0, NULL);
}

#ifndef PRISTINE_NO_TLS
/* cl_cproxy_task ends at an accept failure (its own allocation failed):
   accept again until cancelled, so cl_cproxy_stop finds it in accept. */
static int ce_cproxy_task(void *arg) {
    int i;
    for (i = 0; i < 100 && !pr_is_canceled(); i++) cl_cproxy_task(arg);
    return 0;
}

PT_TEST(client_edge_alloc_fail_sweep_connect_proxy) {
    cl_srv s;
    cl_cproxy p;
    pr_tls_server_cfg *cfg = NULL;
    pr_http_client_opts o;
    char proxy[64], url[64], body[64];
    long n;
    int ok = 0;
    TLS_NEED_FIXTURES();
    o = cl_tls_opts();
    PT_REQUIRE(o.tls.ca_pem != NULL);
    PT_REQUIRE(pr_dns_override("a.test", 0, "127.0.0.1") == PR_OK);
    PT_REQUIRE(tls_cfg(&cfg, "atest") == PR_OK);
    for (n = 1; n < 2000; n++) {
        pr_http_client *c = NULL;
        int rc, done;
        pr_err_info e;
        memset(&e, 0, sizeof e);
        PT_REQUIRE(cl_start(&s, cl_ok, cfg) == PR_OK);
        memset(&p, 0, sizeof p);
        PT_REQUIRE(pr_tcp_listen(&p.l, "127.0.0.1", 0, 16, NULL) == PR_OK);
        PT_REQUIRE(pr_go(&p.t, ce_cproxy_task, &p, NULL) == PR_OK);
        snprintf(proxy, sizeof proxy, "http://127.0.0.1:%u/", pr_listener_port(p.l));
        snprintf(url, sizeof url, "https://a.test:%u/t", s.port);
        o.https_proxy = proxy;
        body[0] = 0;
        pt_alloc_fail_nth(n);
        rc = pr_http_client_create(&c, &o, NULL);
        if (!rc) {
            rc = ce_get_checked(c, url, body, sizeof body, n);
            if (rc > 0) rc = ce_get_checked(c, url, body, sizeof body, n); /* the pooled tunnel */
            pr_http_client_last_error(c, &e);
            pr_http_client_destroy(c);
        }
        done = __atomic_load_n(&pt__mem.fail_nth, __ATOMIC_RELAXED) > 0;
        pt_alloc_fail_nth(0);
        cl_cproxy_stop(&p);
        cl_stop(&s);
        if (done) {
            PT_EQ_INT(rc, 200);
            PT_EQ_STR(body, "hello");
            PT_EQ_INT(p.connects, 1);
            PT_EQ_INT(s.nreqs, 2);
            ok = 1;
            break;
        }
        /* the proxy's own connect to the origin failing answers 407 */
        if (rc == PR_EPROTO && e.http_status == 407 && s.nreqs == 0) continue;
        if (!ce_sweep_ok(rc, s.nreqs > 0))
            pt_fail(__FILE__, __LINE__, "fail-nth %ld: got %s (origin requests %d, \"%s\")", n, pt_errname(rc),
                    s.nreqs, e.msg);
    }
    PT_CHECK(ok);
    pr_tls_server_cfg_destroy(cfg);
    pr_dns_override(NULL, 0, NULL);
}
#endif

/* ---- 7. causes that retrying cannot cure are not retried ---- */
static void ce_count_attempts(const pr_http_event *ev, void *user_data) {
    if (ev->kind == PR_HTTP_EVENT_ATTEMPT) (*(int *)user_data)++;
}

/* GET url with up to 3 retries 1 ms apart; *attempts counts them. */
static int ce_get_retried(const char *url, pr_http_client_opts o, int *attempts, pr_err_info *e) {
    static const pr_backoff quick = { PR_BACKOFF_CONSTANT, PR_JITTER_NONE, 1, 1, 0.0, 0.0, 0.0 };
    pr_http_client *c = NULL;
    pr_http_response *r = NULL;
    int rc;
    *attempts = 0;
    o.retry.max_retries = 3;
    o.retry.backoff = quick;
    o.observer.on_event = ce_count_attempts;
    o.observer.user_data = attempts;
    if ((rc = pr_http_client_create(&c, &o, NULL)) != PR_OK) return rc;
    rc = pr_http_client_get(c, &r, url, e, pr_deadline_in(20000));
    pr_http_response_destroy(r);
    pr_http_client_destroy(c);
    return rc;
}

PT_TEST(client_edge_final_causes_not_retried) {
    pr_err_info e;
    pr_listener *l = NULL;
    char url[64];
    int n = 0;
    unsigned port;
    /* a name that does not exist: once */
    __atomic_store_n(&pr__net_test_dns_offline, 1, __ATOMIC_SEQ_CST);
    PT_EQ_ERR(ce_get_retried("http://no-such-name.invalid:8080/", cl_noenv, &n, &e), PR_EDNS);
    PT_EQ_INT(e.dns_error, EAI_NONAME);
    PT_EQ_INT(n, 1);
    ce_dns_restore();
    /* a refused connection is transient: every retry is made, and the cause
       comes back (not PR_ETIMEDOUT) */
    PT_REQUIRE(pr_tcp_listen(&l, "127.0.0.1", 0, 0, NULL) == PR_OK);
    port = pr_listener_port(l);
    pr_listener_destroy(l);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", port);
    PT_EQ_ERR(ce_get_retried(url, cl_noenv, &n, &e), PR_EIO);
    PT_EQ_INT(e.sys_errno, ECONNREFUSED);
    PT_EQ_INT(n, 4);
}

#ifndef PRISTINE_NO_TLS
PT_TEST(client_edge_tls_refusals_not_retried) {
    pt_plain plain;
    cl_srv other;
    pr_tls_server_cfg *cfg = NULL;
    pr_err_info e;
    char url[64];
    int n = 0;
    TLS_NEED_FIXTURES();
    /* https to a server that speaks plain HTTP */
    PT_REQUIRE(pt_plain_start(&plain) == PR_OK);
    snprintf(url, sizeof url, "https://127.0.0.1:%u/", pt_plain_port(&plain));
    PT_EQ_ERR(ce_get_retried(url, cl_tls_opts(), &n, &e), PR_ETLS);
    PT_CHECK(e.tls_error != PR_TLS_TRUNCATED);
    PT_EQ_INT(n, 1);
    PT_EQ_INT(plain.accepts, 1);
    pt_plain_stop(&plain);
    /* a certificate from a CA the client does not trust */
    PT_REQUIRE(tls_cfg(&cfg, "unknown") == PR_OK);
    PT_REQUIRE(cl_start(&other, cl_ok, cfg) == PR_OK);
    snprintf(url, sizeof url, "https://localhost:%u/", other.port);
    PT_EQ_ERR(ce_get_retried(url, cl_tls_opts(), &n, &e), PR_ETLS);
    PT_EQ_INT(n, 1);
    PT_EQ_INT(other.accepts, 1);
    cl_stop(&other);
    pr_tls_server_cfg_destroy(cfg);
}
#endif

/* ---- 6. a compressed response is handed over raw ---- */
PT_TEST(client_edge_content_encoding_is_raw) {
    static const unsigned char gz[] = { /* gzip of "hello" */
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xcb, 0x48, 0xcd,
        0xc9, 0xc9, 0x07, 0x00, 0x86, 0xa6, 0x10, 0x36, 0x05, 0x00, 0x00, 0x00 };
    ce_srv s;
    pr_http_client *c = NULL;
    pr_http_response *r = NULL;
    const pr_slice *ce;
    char resp[256], url[64], buf[256];
    size_t head, len;
    head = (size_t)snprintf(resp, sizeof resp,
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n"
                            "Content-Length: %u\r\n\r\n", (unsigned)sizeof gz);
    PT_REQUIRE(head + sizeof gz < sizeof resp);
    memcpy(resp + head, gz, sizeof gz);
    PT_REQUIRE(ce_start(&s, NULL, resp, head + sizeof gz, 0) == PR_OK);
    PT_REQUIRE(pr_http_client_create(&c, &cl_noenv, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/gz", s.port);
    PT_EQ_ERR(pr_http_client_get(c, &r, url, NULL, pr_deadline_in(5000)), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 200);
        ce = pr_http_header_get(r, "content-encoding");
        PT_CHECK(ce != NULL && pr_slice_eq(*ce, pr_slice_cstr("gzip")));
        ce = pr_http_header_get(r, "Content-Length");
        PT_CHECK(ce != NULL && pr_slice_eq(*ce, pr_slice_cstr("25")));
        PT_EQ_ERR(ce_read_all(r, buf, sizeof buf, &len), PR_ECLOSED);
        PT_EQ_INT(len, sizeof gz);
        if (len == sizeof gz) PT_EQ_MEM(buf, gz, sizeof gz);
        pr_http_response_destroy(r);
    }
    PT_EQ_INT(s.served, 1);
    PT_CHECK(strstr(s.req, "GET /gz HTTP/1.1\r\n") == s.req);
    PT_CHECK(ce_istr(s.req, "accept-encoding") == NULL);
    PT_CHECK(ce_istr(s.req, "TE:") == NULL);
    pr_http_client_destroy(c);
    ce_stop(&s);
}

const pt_suite pt_suite_client_edge = { "client_edge", {
    PT_ENTRY(client_edge_connect_timeout_covers_dns),
#ifndef PRISTINE_NO_TLS
    PT_ENTRY(client_edge_connect_timeout_covers_proxy_connect),
    PT_ENTRY(client_edge_connect_timeout_covers_tls_handshake),
#endif
    PT_ENTRY(client_edge_cancel_in_dns),
#ifndef PRISTINE_NO_TLS
    PT_ENTRY(client_edge_cancel_in_proxy_connect),
#endif
    PT_ENTRY(client_edge_cancel_in_body_upload),
    PT_ENTRY(client_edge_redirect_308_keeps_method_and_body),
    PT_ENTRY(client_edge_redirect_cap_clamped_to_10),
#ifndef PRISTINE_NO_TLS
    PT_ENTRY(client_edge_tls_framed_body_then_no_close_notify),
    PT_ENTRY(client_edge_tls_until_close_truncated),
    PT_ENTRY(client_edge_tls_until_close_close_notify),
    PT_ENTRY(client_edge_alloc_fail_sweep_https),
#endif
    PT_ENTRY(client_edge_alloc_fail_sweep_plain_proxy),
#ifndef PRISTINE_NO_TLS
    PT_ENTRY(client_edge_alloc_fail_sweep_connect_proxy),
#endif
    PT_ENTRY(client_edge_content_encoding_is_raw),
    PT_ENTRY(client_edge_final_causes_not_retried),
#ifndef PRISTINE_NO_TLS
    PT_ENTRY(client_edge_tls_refusals_not_retried),
#endif
    {0, 0} } };
