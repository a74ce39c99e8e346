/* client: pr_http_client against loopback servers that are tasks of the
   test: keep-alive pool and its limits, dead pooled connections and the
   transparent retry, redirects, plain and CONNECT proxies, no_proxy, the
   connect timeout, cancellation and allocation failures. */
#include <netinet/in.h>

/* ---- a tiny HTTP server: one acceptor task, one task per connection ---- */
enum { CL_KEEP, CL_CLOSE, CL_DROP, CL_HANG, CL_DELAYED_CLOSE, CL_RESET };

typedef struct cl_srv cl_srv;
/* Build the reply to one request into out; return the action after it. */
typedef int (*cl_fn)(cl_srv *s, int conn, int nreq, const char *req, char *out, size_t cap);

#define CL_MAXC 24
typedef struct cl_conn_ctx {
    cl_srv *s;
    pr_conn *c;
    int idx;
} cl_conn_ctx;

struct cl_srv {
    pr_listener *l;
    uint16_t port;
    const pr_tls_server_cfg *cfg; /* NULL = plain */
    cl_fn fn;
    void *user_data;
    int accepts, nreqs;
    char log[8192]; /* every request (head + body), in order */
    size_t log_len;
    char last[4096];
    pr_task *acceptor;
    pr_task *handlers[CL_MAXC];
    cl_conn_ctx ctx[CL_MAXC];
    int nh;
};

/* Read one request (head + Content-Length or chunked body) into buf.
   Returns its length, or <= 0 at EOF/error. */
static ptrdiff_t cl_read_request(pr_conn *c, char *buf, size_t cap) {
    size_t len = 0;
    for (;;) {
        char *end;
        ptrdiff_t k;
        buf[len] = 0;
        end = strstr(buf, "\r\n\r\n");
        if (end) {
            size_t head = (size_t)(end + 4 - buf), want = head;
            const char *cl = strstr(buf, "Content-Length: ");
            if (cl && cl < end) want = head + (size_t)strtoul(cl + 16, NULL, 10);
            if (strstr(buf, "Transfer-Encoding: chunked")) {
                if (strstr(end + 4, "0\r\n\r\n")) return (ptrdiff_t)len;
            } else if (len >= want) {
                return (ptrdiff_t)len;
            }
        }
        if (len + 1 >= cap) return PR_ELIMIT;
        k = pr_conn_read(c, buf + len, cap - 1 - len, PR_FOREVER);
        if (k <= 0) return k < 0 ? k : PR_ECLOSED;
        len += (size_t)k;
    }
}

/* SO_LINGER {1, 0}: closing the (plain) connection sends a RST. */
static void cl_linger0(pr_conn *c) {
    struct linger lg;
    lg.l_onoff = 1;
    lg.l_linger = 0;
    setsockopt(((pr__net_sock *)(void *)c)->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

static int cl_handler(void *arg) {
    cl_conn_ctx *x = (cl_conn_ctx *)arg;
    cl_srv *s = x->s;
    pr_conn *c = x->c, *raw = x->c; /* raw: the TCP socket (under TLS too) */
    static char req[CL_MAXC][4096];
    static char out[CL_MAXC][8192];
    int nreq = 0;
    x->c = NULL;
    if (s->cfg) {
        pr_conn *t = NULL;
        if (pr_tls_server(&t, c, s->cfg, NULL, pr_deadline_in(5000)) != PR_OK) return 0;
        c = t;
    }
    for (;;) {
        ptrdiff_t k = cl_read_request(c, req[x->idx], sizeof req[x->idx]);
        int act;
        if (k <= 0) break;
        nreq++;
        s->nreqs++;
        if (s->log_len + (size_t)k < sizeof s->log) {
            memcpy(s->log + s->log_len, req[x->idx], (size_t)k);
            s->log_len += (size_t)k;
            s->log[s->log_len] = 0;
        }
        snprintf(s->last, sizeof s->last, "%s", req[x->idx]);
        out[x->idx][0] = 0;
        act = s->fn(s, x->idx, nreq, req[x->idx], out[x->idx], sizeof out[x->idx]);
        if (act == CL_DROP) break;
        if (act == CL_RESET) { /* write what there is, then an abortive close: RST, no FIN */
            if (out[x->idx][0]) pr_conn_write(c, out[x->idx], strlen(out[x->idx]), PR_FOREVER);
            cl_linger0(raw);
            break;
        }
        if (act == CL_HANG) {
            if (out[x->idx][0]) pr_conn_write(c, out[x->idx], strlen(out[x->idx]), PR_FOREVER);
            pr_sleep(PR_FOREVER);
            break;
        }
        if (pr_conn_write(c, out[x->idx], strlen(out[x->idx]), PR_FOREVER) != PR_OK) break;
        if (act == CL_CLOSE) break;
        if (act == CL_DELAYED_CLOSE) {
            pr_sleep(pr_deadline_in(30));
            break;
        }
    }
    pr_conn_destroy(c);
    return 0;
}

static int cl_acceptor(void *arg) {
    cl_srv *s = (cl_srv *)arg;
    for (;;) {
        pr_conn *c = NULL;
        int rc = pr_tcp_accept(s->l, &c, PR_FOREVER);
        if (rc == PR_ECANCELED || rc == PR_ECLOSED) return 0;
        if (rc) {
            if (pr_sleep(pr_deadline_in(1)) == PR_ECANCELED) return 0;
            continue;
        }
        s->accepts++;
        if (s->nh == CL_MAXC) {
            pr_conn_destroy(c);
            continue;
        }
        s->ctx[s->nh].s = s;
        s->ctx[s->nh].c = c;
        s->ctx[s->nh].idx = s->nh;
        if (pr_go(&s->handlers[s->nh], cl_handler, &s->ctx[s->nh], NULL) != PR_OK) {
            pr_conn_destroy(c);
            continue;
        }
        s->nh++;
    }
}

static int cl_start(cl_srv *s, cl_fn fn, const pr_tls_server_cfg *cfg) {
    int rc;
    memset(s, 0, sizeof *s);
    s->fn = fn;
    s->cfg = cfg;
    if ((rc = pr_tcp_listen(&s->l, "127.0.0.1", 0, 16, NULL)) != PR_OK) return rc;
    s->port = pr_listener_port(s->l);
    if ((rc = pr_go(&s->acceptor, cl_acceptor, s, NULL)) != PR_OK) {
        pr_listener_destroy(s->l);
        s->l = NULL;
    }
    return rc;
}

static void cl_stop(cl_srv *s) {
    int i;
    if (!s->l) return;
    pr_cancel(s->acceptor);
    pr_join(s->acceptor, NULL, PR_FOREVER);
    for (i = 0; i < s->nh; i++) {
        pr_cancel(s->handlers[i]);
        pr_join(s->handlers[i], NULL, PR_FOREVER);
        if (s->ctx[i].c) pr_conn_destroy(s->ctx[i].c); /* never started */
    }
    pr_listener_destroy(s->l);
    s->l = NULL;
}

static int cl_count(const char *hay, const char *needle) {
    int n = 0;
    const char *p = hay;
    while ((p = strstr(p, needle)) != NULL) {
        n++;
        p += strlen(needle);
    }
    return n;
}

/* ---- replies ---- */
static int cl_ok(cl_srv *s, int conn, int nreq, const char *req, char *out, size_t cap) {
    (void)s;
    (void)conn;
    (void)nreq;
    (void)req;
    snprintf(out, cap, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    return CL_KEEP;
}

/* Paths choose the framing: /close, /eof, /big, /chunked, else plain. */
static int cl_paths(cl_srv *s, int conn, int nreq, const char *req, char *out, size_t cap) {
    (void)s;
    (void)conn;
    (void)nreq;
    if (!strncmp(req, "GET /close ", 11)) {
        snprintf(out, cap, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
        return CL_CLOSE;
    }
    if (!strncmp(req, "GET /eof ", 9)) {
        snprintf(out, cap, "HTTP/1.1 200 OK\r\n\r\nuntil close");
        return CL_CLOSE;
    }
    if (!strncmp(req, "GET /big ", 9)) {
        snprintf(out, cap, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n%0100d", 7);
        return CL_KEEP;
    }
    if (!strncmp(req, "GET /chunked ", 13)) {
        snprintf(out, cap, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
        return CL_KEEP;
    }
    snprintf(out, cap, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    return CL_KEEP;
}

/* Read a whole body into buf (NUL-terminated); returns PR_OK at its end. */
static int cl_body(pr_http_response *r, char *buf, size_t cap) {
    size_t len = 0;
    for (;;) {
        ptrdiff_t k = pr_http_read(r, buf + len, cap - 1 - len, pr_deadline_in(5000));
        if (k == PR_ECLOSED) break;
        if (k < 0) return (int)k;
        len += (size_t)k;
        if (len + 1 >= cap) return PR_ELIMIT;
    }
    buf[len] = 0;
    return PR_OK;
}

/* GET url, read the body into body, destroy the response. Returns the
   status (> 0) or an error. */
static int cl_get(pr_http_client *c, const char *url, char *body, size_t cap) {
    pr_http_response *r = NULL;
    int rc = pr_http_client_get(c, &r, url, NULL, pr_deadline_in(5000)), st;
    if (rc) return rc;
    st = pr_http_status(r);
    rc = cl_body(r, body, cap);
    pr_http_response_destroy(r);
    return rc ? rc : st;
}

/* These suites test single attempts: the client's retries are off. */
static const pr_http_client_opts cl_noenv = { .ignore_env = 1, .retry = { .max_retries = PR_RETRY_OFF } };

/* ---- pool ---- */
PT_TEST(client_reuse_sequential) {
    cl_srv s;
    pr_http_client *c = NULL;
    char url[64], body[256];
    int i;
    PT_REQUIRE(cl_start(&s, cl_paths, NULL) == PR_OK);
    PT_REQUIRE(pr_http_client_create(&c, &cl_noenv, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", s.port);
    for (i = 0; i < 3; i++) {
        PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
        PT_EQ_STR(body, "hello");
        PT_EQ_INT(pr_http_client_idle_count(c), 1);
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%u/chunked", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "abc");
    PT_EQ_INT(s.accepts, 1);
    PT_EQ_INT(s.nreqs, 4);
    PT_CHECK(strstr(s.log, "GET /x HTTP/1.1\r\nHost: 127.0.0.1:") != NULL);
    pr_http_client_destroy(c);
    cl_stop(&s);
}

PT_TEST(client_no_reuse_after_close_eof_unread) {
    cl_srv s;
    pr_http_client *c = NULL;
    pr_http_response *r = NULL;
    char url[64], body[256];
    PT_REQUIRE(cl_start(&s, cl_paths, NULL) == PR_OK);
    PT_REQUIRE(pr_http_client_create(&c, &cl_noenv, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/close", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_INT(pr_http_client_idle_count(c), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/eof", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "until close");
    PT_EQ_INT(pr_http_client_idle_count(c), 0);
    /* a body left unread: the connection is closed, not pooled */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/big", s.port);
    PT_REQUIRE(pr_http_client_get(c, &r, url, NULL, pr_deadline_in(5000)) == PR_OK);
    pr_http_response_destroy(r);
    PT_EQ_INT(pr_http_client_idle_count(c), 0);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_INT(strlen(body), 100);
    PT_EQ_INT(pr_http_client_idle_count(c), 1);
    PT_EQ_INT(s.accepts, 4);
    pr_http_client_destroy(c);
    cl_stop(&s);
}

PT_TEST(client_pool_idle_expiry_and_disabled) {
    cl_srv s;
    pr_http_client *c = NULL;
    pr_http_client_opts o = cl_noenv;
    char url[64], body[64];
    PT_REQUIRE(cl_start(&s, cl_ok, NULL) == PR_OK);
    o.pool_idle_ms = 50;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_INT(s.accepts, 1);
    pr_sleep(pr_deadline_in(120));
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_INT(s.accepts, 2);
    pr_http_client_destroy(c);
    o.pool_idle_ms = -1; /* no pool */
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_INT(s.accepts, 4);
    PT_EQ_INT(pr_http_client_idle_count(c), 0);
    pr_http_client_destroy(c);
    cl_stop(&s);
}

/* The response outlives its client: it still reads, and frees the client. */
PT_TEST(client_response_outlives_client) {
    cl_srv s;
    pr_http_client *c = NULL;
    pr_http_response *r = NULL;
    char url[64], body[64];
    PT_REQUIRE(cl_start(&s, cl_ok, NULL) == PR_OK);
    PT_REQUIRE(pr_http_client_create(&c, &cl_noenv, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", s.port);
    PT_REQUIRE(pr_http_client_get(c, &r, url, NULL, pr_deadline_in(5000)) == PR_OK);
    pr_http_client_destroy(c);
    PT_EQ_ERR(cl_body(r, body, sizeof body), PR_OK);
    PT_EQ_STR(body, "hello");
    pr_http_response_destroy(r);
    cl_stop(&s);
}

/* The server closes an idle keep-alive connection: the check before reuse
   sees it and a fresh connection is made. */
static int cl_then_close(cl_srv *s, int conn, int nreq, const char *req, char *out, size_t cap) {
    cl_ok(s, conn, nreq, req, out, cap);
    return CL_DELAYED_CLOSE;
}

PT_TEST(client_dead_pooled_connection_discarded) {
    cl_srv s;
    pr_http_client *c = NULL;
    char url[64], body[64];
    PT_REQUIRE(cl_start(&s, cl_then_close, NULL) == PR_OK);
    PT_REQUIRE(pr_http_client_create(&c, &cl_noenv, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_INT(pr_http_client_idle_count(c), 1);
    pr_sleep(pr_deadline_in(100)); /* the server has closed it by now */
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "hello");
    PT_EQ_INT(s.accepts, 2);
    PT_EQ_INT(s.nreqs, 2); /* nothing was sent on the dead one */
    pr_http_client_destroy(c);
    cl_stop(&s);
}

/* The second request on a connection is read and dropped without a reply
   (the server "timed out" the connection at that moment). */
static int cl_drop_second(cl_srv *s, int conn, int nreq, const char *req, char *out, size_t cap) {
    if (nreq == 2) return CL_DROP;
    return cl_ok(s, conn, nreq, req, out, cap);
}

static int cl_body_calls;
static ptrdiff_t cl_body_fn(void *buf, size_t n, void *user_data) {
    (void)user_data;
    if (cl_body_calls++ || n < 4) return 0;
    memcpy(buf, "data", 4);
    return 4;
}

PT_TEST(client_retry_on_dead_reused_connection) {
    cl_srv s;
    pr_http_client *c = NULL;
    pr_http_response *r = NULL;
    pr_http_request req;
    pr_url u;
    pr_err_info e;
    char url[64], body[64];
    PT_REQUIRE(cl_start(&s, cl_drop_second, NULL) == PR_OK);
    PT_REQUIRE(pr_http_client_create(&c, &cl_noenv, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200); /* dropped on conn 1, retried on conn 2 */
    PT_EQ_STR(body, "hello");
    PT_EQ_INT(s.accepts, 2);
    PT_EQ_INT(s.nreqs, 3);
    /* a streamed body is not replayable: no retry */
    memset(&u, 0, sizeof u);
    memset(&req, 0, sizeof req);
    PT_REQUIRE(pr_url_parse(&u, url, strlen(url), NULL) == PR_OK);
    req.method = "POST";
    req.url = &u;
    req.body_fn = cl_body_fn;
    cl_body_calls = 0;
    PT_EQ_ERR(pr_http_client_request(c, &r, &req, NULL, pr_deadline_in(5000)), PR_ECLOSED);
    PT_CHECK(r == NULL);
    PT_EQ_INT(pr_http_client_last_error(c, &e), PR_OK);
    PT_EQ_INT(e.code, PR_ECLOSED);
    PT_EQ_INT(s.accepts, 2);
    PT_EQ_INT(s.nreqs, 4);
    pr_url_deinit(&u);
    pr_http_client_destroy(c);
    cl_stop(&s);
}

/* The second request on a connection is answered with a RST (the server
   reset the idle keep-alive connection as the request arrived): the read
   fails with ECONNRESET, not EOF, and the request is retried once. */
static int cl_reset_second(cl_srv *s, int conn, int nreq, const char *req, char *out, size_t cap) {
    if (strstr(req, " /hang ")) return CL_HANG;
    if (nreq == 2) {
        if (strstr(req, " /partial ")) snprintf(out, cap, "HTTP/1.1 200 OK\r\nContent-Le");
        return CL_RESET;
    }
    return cl_ok(s, conn, nreq, req, out, cap);
}

PT_TEST(client_retry_on_reset_reused_connection) {
    cl_srv s;
    pr_http_client *c = NULL;
    pr_http_response *r = NULL;
    pr_http_request req;
    pr_url u;
    pr_err_info e;
    char url[64], body[64];
    PT_REQUIRE(cl_start(&s, cl_reset_second, NULL) == PR_OK);
    PT_REQUIRE(pr_http_client_create(&c, &cl_noenv, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_INT(pr_http_client_idle_count(c), 1);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200); /* reset on conn 1, retried on conn 2 */
    PT_EQ_STR(body, "hello");
    PT_EQ_INT(s.accepts, 2);
    PT_EQ_INT(s.nreqs, 3);
    /* a response byte arrived before the reset: no retry */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/partial", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), PR_EIO);
    PT_EQ_INT(pr_http_client_last_error(c, &e), PR_OK);
    PT_EQ_INT(e.code, PR_EIO);
    PT_EQ_INT(e.sys_errno, ECONNRESET);
    PT_EQ_INT(s.accepts, 2);
    PT_EQ_INT(s.nreqs, 4);
    /* a streamed body is not replayable: the reset is the answer */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200); /* conn 3, pooled */
    memset(&u, 0, sizeof u);
    memset(&req, 0, sizeof req);
    PT_REQUIRE(pr_url_parse(&u, url, strlen(url), NULL) == PR_OK);
    req.method = "POST";
    req.url = &u;
    req.body_fn = cl_body_fn;
    cl_body_calls = 0;
    PT_CHECK(pr_http_client_request(c, &r, &req, NULL, pr_deadline_in(5000)) < 0);
    PT_CHECK(r == NULL);
    PT_EQ_INT(s.accepts, 3);
    PT_EQ_INT(s.nreqs, 6);
    /* a timeout on a reused connection is not retried either */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200); /* conn 4, pooled */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/hang", s.port);
    PT_EQ_ERR(pr_http_client_get(c, &r, url, NULL, pr_deadline_in(200)), PR_ETIMEDOUT);
    PT_EQ_INT(s.accepts, 4);
    PT_EQ_INT(s.nreqs, 8);
    pr_url_deinit(&u);
    pr_http_client_destroy(c);
    cl_stop(&s);
}

/* ---- early response while uploading ---- */

/* Reads only the head of one request, answers 413 and closes with the body
   unread (so the kernel resets the connection). */
typedef struct cl_early {
    pr_listener *l;
    size_t head_len;
    int rc;
} cl_early;

static int cl_early_task(void *arg) {
    cl_early *x = (cl_early *)arg;
    pr_conn *c = NULL;
    char buf[4096];
    size_t len = 0;
    const char *resp = "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!";
    if ((x->rc = pr_tcp_accept(x->l, &c, pr_deadline_in(5000))) != PR_OK) return 0;
    for (;;) { /* a byte at a time: nothing of the body is read */
        ptrdiff_t k = pr_conn_read(c, buf + len, 1, pr_deadline_in(5000));
        if (k <= 0) {
            x->rc = k < 0 ? (int)k : PR_ECLOSED;
            pr_conn_destroy(c);
            return 0;
        }
        len++;
        if (len >= 4 && !memcmp(buf + len - 4, "\r\n\r\n", 4)) break;
        if (len == sizeof buf) {
            x->rc = PR_ELIMIT;
            pr_conn_destroy(c);
            return 0;
        }
    }
    x->head_len = len;
    pr_sleep(pr_deadline_in(50)); /* the client is blocked in its write by now */
    x->rc = pr_conn_write(c, resp, strlen(resp), pr_deadline_in(5000));
    pr_conn_destroy(c);
    return 0;
}

PT_TEST(client_early_response_while_uploading) {
    enum { BIG = 16 << 20 }; /* far beyond both socket buffers: the write cannot complete */
    cl_early x;
    pr_task *t;
    pr_http_client *c = NULL;
    pr_http_response *r = NULL;
    pr_http_request req;
    pr_url u;
    char url[64], body[64];
    char *big = (char *)calloc(1, BIG);
    PT_REQUIRE(big != NULL);
    memset(&x, 0, sizeof x);
    memset(&u, 0, sizeof u);
    memset(&req, 0, sizeof req);
    PT_REQUIRE(pr_tcp_listen(&x.l, "127.0.0.1", 0, 4, NULL) == PR_OK);
    PT_REQUIRE(pr_go(&t, cl_early_task, &x, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/up", pr_listener_port(x.l));
    PT_REQUIRE(pr_url_parse(&u, url, strlen(url), NULL) == PR_OK);
    PT_REQUIRE(pr_http_client_create(&c, &cl_noenv, NULL) == PR_OK);
    req.method = "POST";
    req.url = &u;
    req.body = big;
    req.body_len = BIG;
    PT_EQ_ERR(pr_http_client_request(c, &r, &req, NULL, pr_deadline_in(10000)), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 413);
        PT_EQ_ERR(cl_body(r, body, sizeof body), PR_OK);
        PT_EQ_STR(body, "too big!");
        PT_EQ_INT(pr_http_reusable(r), 0);
        pr_http_response_destroy(r);
    }
    PT_EQ_INT(pr_http_client_idle_count(c), 0);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(x.rc, PR_OK);
    PT_CHECK(x.head_len > 0 && x.head_len < 200);
    pr_http_client_destroy(c);
    pr_listener_destroy(x.l);
    pr_url_deinit(&u);
    free(big);
}

/* ---- redirects ---- */
static int cl_redir(cl_srv *s, int conn, int nreq, const char *req, char *out, size_t cap) {
    const char *sp = strchr(req, ' ');
    (void)conn;
    (void)nreq;
    if (sp && !strncmp(sp, " /a ", 4)) {
        snprintf(out, cap, "HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 3\r\n\r\nxyz");
    } else if (sp && !strncmp(sp, " /b ", 4)) {
        snprintf(out, cap, "HTTP/1.1 301 Moved\r\nLocation: %s://127.0.0.1:%u/c?q=1#frag\r\nContent-Length: 0\r\n\r\n",
                 s->cfg ? "https" : "http", s->port);
    } else if (sp && !strncmp(sp, " /loop ", 7)) {
        snprintf(out, cap, "HTTP/1.1 302 Found\r\nLocation: loop\r\nContent-Length: 0\r\n\r\n");
    } else if (sp && !strncmp(sp, " /see ", 6)) {
        snprintf(out, cap, "HTTP/1.1 303 See Other\r\nLocation: /c\r\nContent-Length: 0\r\n\r\n");
    } else if (sp && !strncmp(sp, " /temp ", 7)) {
        snprintf(out, cap, "HTTP/1.1 307 Temporary\r\nLocation: /c\r\nContent-Length: 0\r\n\r\n");
    } else if (sp && !strncmp(sp, " /found ", 8)) {
        snprintf(out, cap, "HTTP/1.1 302 Found\r\nLocation: /c\r\nContent-Length: 0\r\n\r\n");
    } else if (sp && !strncmp(sp, " /stall ", 8)) { /* a 3xx body that never ends */
        snprintf(out, cap, "HTTP/1.1 302 Found\r\nLocation: /c\r\nContent-Length: 100\r\n\r\n1234567");
        return CL_HANG;
    } else if (sp && !strncmp(sp, " /other ", 8)) {
        snprintf(out, cap, "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n",
                 (const char *)s->user_data);
    } else if (sp && !strncmp(sp, " /other307 ", 11)) {
        snprintf(out, cap, "HTTP/1.1 307 Temporary\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n",
                 (const char *)s->user_data);
    } else {
        snprintf(out, cap, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone");
    }
    return CL_KEEP;
}

PT_TEST(client_redirect_chain_and_default_off) {
    cl_srv s;
    pr_http_client *c = NULL;
    pr_http_client_opts o = cl_noenv;
    pr_err_info e;
    char url[64], body[64];
    PT_REQUIRE(cl_start(&s, cl_redir, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/a", s.port);
    PT_REQUIRE(pr_http_client_create(&c, &cl_noenv, NULL) == PR_OK);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 302); /* off by default */
    PT_EQ_STR(body, "xyz");
    pr_http_client_destroy(c);
    o.max_redirects = 5;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "done");
    PT_CHECK(strstr(s.log, "GET /c?q=1 HTTP/1.1\r\n") != NULL);
    PT_EQ_INT(s.accepts, 2); /* the drained 3xx bodies kept the connection */
    pr_http_client_destroy(c);
    /* the cap */
    o.max_redirects = 3;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    s.nreqs = 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/loop", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), PR_ELIMIT);
    PT_EQ_INT(s.nreqs, 4);
    PT_EQ_INT(pr_http_client_last_error(c, &e), PR_OK);
    PT_EQ_INT(e.code, PR_ELIMIT);
    PT_EQ_INT(e.http_status, 302);
    pr_http_client_destroy(c);
    cl_stop(&s);
}

/* A followed 3xx whose body stalls costs at most about a second of draining,
   not the caller's deadline; its connection is closed, not pooled. */
PT_TEST(client_redirect_stalled_3xx_body) {
    cl_srv s;
    pr_http_client *c = NULL;
    pr_http_client_opts o = cl_noenv;
    pr_http_response *r = NULL;
    char url[64], body[64];
    int64_t t0;
    PT_REQUIRE(cl_start(&s, cl_redir, NULL) == PR_OK);
    o.max_redirects = 3;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/stall", s.port);
    t0 = pr_now();
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200); /* deadline now + 5 s */
    PT_EQ_STR(body, "done");
    PT_CHECK(pr_now() - t0 >= 900 && pr_now() - t0 < 2500);
    PT_EQ_INT(s.accepts, 2);                  /* the stalled one was not reused for /c */
    PT_EQ_INT(pr_http_client_idle_count(c), 1); /* only the /c connection */
    /* no deadline at all: still bounded by the drain cap */
    t0 = pr_now();
    PT_EQ_ERR(pr_http_client_get(c, &r, url, NULL, PR_FOREVER), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 200);
        PT_EQ_ERR(cl_body(r, body, sizeof body), PR_OK);
        pr_http_response_destroy(r);
    }
    PT_CHECK(pr_now() - t0 < 2500);
    PT_EQ_INT(s.accepts, 3);
    PT_EQ_INT(s.nreqs, 4);
    pr_http_client_destroy(c);
    cl_stop(&s);
}

static int cl_post(pr_http_client *c, const char *url, const char *const *h, int use_fn) {
    pr_http_response *r = NULL;
    pr_http_request req;
    pr_url u;
    char body[64];
    int rc;
    memset(&u, 0, sizeof u);
    memset(&req, 0, sizeof req);
    if ((rc = pr_url_parse(&u, url, strlen(url), NULL)) != PR_OK) return rc;
    req.method = "POST";
    req.url = &u;
    req.headers = h;
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
    if (cl_body(r, body, sizeof body) != PR_OK) rc = PR_EPROTO;
    pr_http_response_destroy(r);
    return rc;
}

/* The caller's header lines go through http's one parser: a line that is
   not a field line is refused before anything is sent, and the call's err
   names its field; a good one is sent trimmed. */
PT_TEST(client_send_header_lines) {
    static const char *const bad[] = { "X-Ok: 1", "X-Evil: a\r\nInjected: 1", NULL };
    static const char *const good[] = { "X-Ok:  1 ", "Accept:text/plain", NULL };
    cl_srv s;
    pr_http_client *c = NULL;
    pr_http_response *r = NULL;
    pr_err_info e;
    char url[64], body[64];
    PT_REQUIRE(cl_start(&s, cl_ok, NULL) == PR_OK);
    PT_REQUIRE(pr_http_client_create(&c, &cl_noenv, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", s.port);
    PT_EQ_ERR(pr_http_client_send(c, &r, "POST", url, bad, "b", 1, &e, pr_deadline_in(5000)), PR_EINVAL);
    PT_CHECK(r == NULL);
    PT_EQ_ERR(e.code, PR_EINVAL);
    if (!strstr(e.msg, "\"X-Evil\"")) pt_fail(__FILE__, __LINE__, "message: %s", e.msg);
    PT_EQ_INT(s.nreqs, 0);
    PT_EQ_ERR(pr_http_client_send(c, &r, "POST", url, good, "b", 1, &e, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(e.code, PR_OK);
    if (r) {
        PT_EQ_ERR(cl_body(r, body, sizeof body), PR_OK);
        pr_http_response_destroy(r);
    }
    PT_EQ_INT(s.nreqs, 1);
    PT_CHECK(strstr(s.last, "\r\nX-Ok: 1\r\nAccept: text/plain\r\n") != NULL);
    pr_http_client_destroy(c);
    cl_stop(&s);
}

PT_TEST(client_redirect_methods) {
    cl_srv s;
    pr_http_client *c = NULL;
    pr_http_client_opts o = cl_noenv;
    char url[64];
    PT_REQUIRE(cl_start(&s, cl_redir, NULL) == PR_OK);
    o.max_redirects = 2;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/see", s.port);
    PT_EQ_INT(cl_post(c, url, NULL, 0), 200);
    PT_CHECK(strstr(s.log, "POST /see HTTP/1.1\r\n") != NULL);
    PT_CHECK(strstr(s.last, "GET /c HTTP/1.1\r\n") == s.last);
    PT_CHECK(strstr(s.last, "hello") == NULL && strstr(s.last, "Content-Length") == NULL);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/found", s.port); /* 302 + POST -> GET, like curl */
    PT_EQ_INT(cl_post(c, url, NULL, 0), 200);
    PT_CHECK(strstr(s.last, "GET /c HTTP/1.1\r\n") == s.last);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/temp", s.port); /* 307 keeps method and body */
    PT_EQ_INT(cl_post(c, url, NULL, 0), 200);
    PT_CHECK(strstr(s.last, "POST /c HTTP/1.1\r\n") == s.last);
    PT_CHECK(strstr(s.last, "Content-Length: 5\r\n") != NULL);
    PT_CHECK(strstr(s.last, "\r\n\r\nhello") != NULL);
    /* 307 with a streamed body: the 3xx is returned */
    PT_EQ_INT(cl_post(c, url, NULL, 1), 307);
    PT_CHECK(strstr(s.last, "POST /temp HTTP/1.1\r\n") == s.last);
    pr_http_client_destroy(c);
    cl_stop(&s);
}

PT_TEST(client_redirect_origin_change_drops_credentials) {
    cl_srv a, b;
    pr_http_client *c = NULL;
    pr_http_client_opts o = cl_noenv;
    static const char *const h[] = { "Authorization: Bearer secret", "Cookie: id=1", "X-Keep: yes",
                                     "Host: first.example", /* a user Host names the first origin */ NULL };
    char url[64], loc[64];
    PT_REQUIRE(pr_dns_override("a.test", 0, "127.0.0.1") == PR_OK);
    PT_REQUIRE(pr_dns_override("b.test", 0, "127.0.0.1") == PR_OK);
    PT_REQUIRE(cl_start(&a, cl_redir, NULL) == PR_OK);
    PT_REQUIRE(cl_start(&b, cl_redir, NULL) == PR_OK);
    snprintf(loc, sizeof loc, "http://b.test:%u/c", b.port);
    a.user_data = loc;
    o.max_redirects = 3;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    /* same origin: kept */
    snprintf(url, sizeof url, "http://a.test:%u/temp", a.port);
    PT_EQ_INT(cl_post(c, url, h, 0), 200);
    PT_EQ_INT(cl_count(a.log, "Authorization: Bearer secret"), 2);
    PT_EQ_INT(cl_count(a.log, "Cookie: id=1"), 2);
    PT_EQ_INT(cl_count(a.log, "Host: first.example\r\n"), 2);
    PT_EQ_INT(cl_count(a.log, "Host: a.test"), 0);
    /* to b.test: dropped, the user Host too (curl does the same) */
    snprintf(url, sizeof url, "http://a.test:%u/other", a.port);
    PT_EQ_INT(cl_post(c, url, h, 0), 200);
    PT_CHECK(strstr(b.log, "first.example") == NULL);
    PT_EQ_INT(cl_count(b.log, "Host:"), 1);
    PT_EQ_INT(cl_count(a.log, "Authorization: Bearer secret"), 3);
    PT_EQ_INT(b.nreqs, 1);
    PT_CHECK(strstr(b.log, "Authorization") == NULL);
    PT_CHECK(strstr(b.log, "Cookie") == NULL);
    PT_CHECK(strstr(b.log, "X-Keep") == NULL); /* not named safe to forward: dropped too */
    PT_CHECK(strstr(b.log, "Host: b.test:") != NULL);
    pr_http_client_destroy(c);
    cl_stop(&a);
    cl_stop(&b);
    pr_dns_override(NULL, 0, NULL);
}

/* Whether the request head req has the field name (any case); its value
   goes to val. */
static int cl_field(const char *req, const char *name, char *val, size_t cap) {
    const char *end = strstr(req, "\r\n\r\n"), *p = strstr(req, "\r\n");
    pr_slice want = pr_slice_cstr(name), got;
    val[0] = 0;
    while (p && end && p < end) {
        const char *colon;
        p += 2;
        colon = strchr(p, ':');
        got.ptr = p;
        got.len = colon ? (size_t)(colon - p) : 0;
        if (colon && colon < end && pr_slice_ieq(got, want)) {
            const char *v = colon + 1, *e = strstr(v, "\r\n");
            while (*v == ' ') v++;
            snprintf(val, cap, "%.*s", (int)(e - v), v);
            return 1;
        }
        p = strstr(p, "\r\n");
    }
    return 0;
}

/* A redirect to another port sends on only the fields that carry no
   credentials (Accept, Accept-Language, User-Agent), the body's
   description while the body goes on, the client's own fields (retry
   count, idempotency key) and the fields named safe by the client (copied
   at create) or by the request; a same-origin redirect keeps them all. */
PT_TEST(client_redirect_cross_origin_keeps_only_safe_fields) {
    cl_srv a, b;
    pr_http_client *c = NULL;
    pr_http_client_opts o = cl_noenv;
    const char *h[15];
    char lines[14][64], url[64], loc[64], v[64], names[2][16] = { "x-trace-id", "" };
    const char *fwd[3], *const per_req[] = { "X-REQUEST-SAFE", NULL };
    static const char *const dropped[] = { "Authorization", "X-Api-Key", "X-Auth-Token", "X-Custom", "Cookie",
                                           "Content-Location" };
    static const char *const kept[] = { "Accept", "Accept-Language", "User-Agent", "Content-Type",
                                        "Content-Language", "Content-Encoding", "X-Trace-Id", "X-Request-Safe" };
    pr_http_response *r = NULL;
    pr_http_request req;
    pr_url u;
    size_t i, k;
    PT_REQUIRE(cl_start(&a, cl_redir, NULL) == PR_OK);
    PT_REQUIRE(cl_start(&b, cl_redir, NULL) == PR_OK);
    snprintf(loc, sizeof loc, "http://127.0.0.1:%u/c", b.port);
    a.user_data = loc;
    o.max_redirects = 3;
    fwd[0] = names[0];
    fwd[1] = NULL;
    o.redirect_forward_headers = fwd;
    o.retry_count_header = "X-Retry-Count"; /* the client's own fields go on too */
    o.idempotency_header = "Idempotency-Key";
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    strcpy(names[0], "x-other"); /* the client has its own copy */
    fwd[0] = NULL;
    for (i = 0; i < 14; i++) {
        const char *name = i < 6 ? dropped[i] : kept[i - 6];
        snprintf(lines[i], sizeof lines[i], "%s: %s", name, i == 0 ? "Bearer secret" : i == 1 ? "key-123"
                                                           : i == 2 ? "token-456" : i == 3 ? "custom" : "v");
        h[i] = lines[i];
    }
    h[14] = NULL;
    for (k = 0; k < 3; k++) { /* 302 to b; 307 to b (the body goes on); 307 within a */
        const char *path = k == 0 ? "/other" : k == 1 ? "/other307" : "/temp";
        cl_srv *last = k == 2 ? &a : &b;
        memset(&req, 0, sizeof req);
        memset(&u, 0, sizeof u);
        snprintf(url, sizeof url, "http://127.0.0.1:%u%s", a.port, path);
        PT_REQUIRE(pr_url_parse(&u, url, strlen(url), NULL) == PR_OK);
        req.method = k == 0 ? "GET" : "POST";
        req.url = &u;
        req.headers = h;
        req.body = k == 0 ? NULL : "hello";
        req.body_len = k == 0 ? 0 : 5;
        req.redirect_forward = per_req;
        PT_EQ_ERR(pr_http_client_request(c, &r, &req, NULL, pr_deadline_in(5000)), PR_OK);
        if (r) {
            PT_EQ_INT(pr_http_status(r), 200);
            PT_EQ_ERR(cl_body(r, v, sizeof v), PR_OK);
            pr_http_response_destroy(r);
            r = NULL;
        }
        pr_url_deinit(&u);
        PT_CHECK(strstr(last->last, "/c HTTP/1.1\r\n") != NULL);
        PT_CHECK(cl_field(last->last, "X-Retry-Count", v, sizeof v));
        PT_CHECK(cl_field(last->last, "Idempotency-Key", v, sizeof v) == (k > 0));
        for (i = 0; i < 14; i++) {
            char name[32];
            int want = k == 2 || i >= sizeof dropped / sizeof dropped[0];
            snprintf(name, sizeof name, "%s", i < 6 ? dropped[i] : kept[i - 6]);
            if (cl_field(last->last, name, v, sizeof v) != want)
                pt_fail(__FILE__, __LINE__, "hop %d: %s %s", (int)k, name, want ? "missing" : "forwarded");
            else if (want && strcmp(v, i == 0 ? "Bearer secret" : i == 1 ? "key-123" : i == 2 ? "token-456"
                                       : i == 3 ? "custom" : "v"))
                pt_fail(__FILE__, __LINE__, "hop %d: %s: %s", (int)k, name, v);
        }
    }
    PT_EQ_INT(b.nreqs, 2);
    PT_EQ_INT(cl_count(a.log, "X-Api-Key: key-123\r\n"), 4); /* every request to a had it */
    pr_http_client_destroy(c);
    cl_stop(&a);
    cl_stop(&b);
}

/* A redirect that turns the request into a GET without a body (303; 302
   after POST) drops the fields that describe the body, on the same origin
   too; the other fields stay there. */
PT_TEST(client_redirect_to_get_drops_body_fields) {
    cl_srv s;
    pr_http_client *c = NULL;
    pr_http_client_opts o = cl_noenv;
    static const char *const h[] = { "Content-Type: application/json", "Content-Language: en",
                                     "content-encoding: identity", "Content-Location: /doc", "X-Api-Key: key-123",
                                     NULL };
    char url[64], v[32];
    int k;
    PT_REQUIRE(cl_start(&s, cl_redir, NULL) == PR_OK);
    o.max_redirects = 3;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    for (k = 0; k < 2; k++) {
        snprintf(url, sizeof url, "http://127.0.0.1:%u/%s", s.port, k == 0 ? "see" : "found");
        PT_EQ_INT(cl_post(c, url, h, 0), 200);
        PT_CHECK(strstr(s.log, "Content-Type: application/json\r\n") != NULL); /* the POST had them */
        PT_CHECK(strstr(s.last, "GET /c HTTP/1.1\r\n") == s.last);
        PT_CHECK(!cl_field(s.last, "Content-Type", v, sizeof v));
        PT_CHECK(!cl_field(s.last, "Content-Language", v, sizeof v));
        PT_CHECK(!cl_field(s.last, "Content-Encoding", v, sizeof v));
        PT_CHECK(!cl_field(s.last, "Content-Location", v, sizeof v));
        PT_CHECK(cl_field(s.last, "X-Api-Key", v, sizeof v)); /* the same origin: the rest stays */
        PT_EQ_STR(v, "key-123");
    }
    pr_http_client_destroy(c);
    cl_stop(&s);
}

/* ---- proxies ---- */
static int cl_proxy_plain(cl_srv *s, int conn, int nreq, const char *req, char *out, size_t cap) {
    (void)s;
    (void)conn;
    (void)nreq;
    (void)req;
    snprintf(out, cap, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nproxied");
    return CL_KEEP;
}

PT_TEST(client_plain_proxy_absolute_form) {
    cl_srv p, d;
    pr_http_client *c = NULL;
    pr_http_client_opts o = cl_noenv;
    char proxy[64], url[64], body[64];
    PT_REQUIRE(pr_dns_override("a.test", 0, "127.0.0.1") == PR_OK);
    PT_REQUIRE(cl_start(&p, cl_proxy_plain, NULL) == PR_OK);
    PT_REQUIRE(cl_start(&d, cl_ok, NULL) == PR_OK);
    snprintf(proxy, sizeof proxy, "user:p%%40ss@127.0.0.1:%u", p.port); /* no scheme: http:// */
    o.http_proxy = proxy;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://a.test:%u/path?q=1", d.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "proxied");
    snprintf(url, sizeof url, "GET http://a.test:%u/path?q=1 HTTP/1.1\r\nHost: a.test:%u\r\n", d.port, d.port);
    PT_CHECK(strstr(p.log, url) == p.log);
    PT_CHECK(strstr(p.log, "Proxy-Authorization: Basic dXNlcjpwQHNz\r\n") != NULL); /* user:p@ss */
    PT_EQ_INT(d.nreqs, 0);
    /* loopback origins never use the proxy */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", d.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "hello");
    pr_http_client_destroy(c);
    /* no_proxy */
    o.no_proxy = "other.test, .a.test";
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://a.test:%u/", d.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "hello");
    PT_EQ_INT(p.nreqs, 1);
    PT_EQ_INT(d.nreqs, 2);
    pr_http_client_destroy(c);
    cl_stop(&p);
    cl_stop(&d);
    pr_dns_override(NULL, 0, NULL);
}

/* Loopback origins never go through a proxy: localhost, *.localhost and
   loopback addresses, recognised as addresses; a DNS name that merely
   starts with "127." is proxied like any other. */
PT_TEST(client_loopback_never_proxied) {
    static const char *const loop[] = {
        "localhost", "LocalHost", "localhost.", "a.localhost", "x.y.LOCALHOST", "127.0.0.1", "127.255.3.4",
        "::1", "[::1]", "0:0::1", "[0:0:0:0:0:0:0:1]", "::ffff:127.0.0.1",
    };
    static const char *const notloop[] = {
        "127.example.test", "127.0.0.1.example.test", "128.0.0.1", "126.255.255.255", "::2", "::", "[::ffff:10.0.0.1]",
        "notlocalhost", "localhost.example", ".localhost", "localhostx", "127.", "", "example.com",
    };
    cl_srv p, d;
    pr_http_client *c = NULL;
    pr_http_client_opts o = cl_noenv;
    char proxy[64], url[80], body[64];
    size_t i;
    for (i = 0; i < sizeof loop / sizeof loop[0]; i++)
        if (!pr__proxy_is_loopback(pr_slice_cstr(loop[i]))) pt_fail(__FILE__, __LINE__, "'%s': want loopback", loop[i]);
    for (i = 0; i < sizeof notloop / sizeof notloop[0]; i++)
        if (pr__proxy_is_loopback(pr_slice_cstr(notloop[i])))
            pt_fail(__FILE__, __LINE__, "'%s': want not loopback", notloop[i]);
    PT_REQUIRE(pr_dns_override("127.example.test", 0, "127.0.0.1") == PR_OK);
    PT_REQUIRE(cl_start(&p, cl_proxy_plain, NULL) == PR_OK);
    PT_REQUIRE(cl_start(&d, cl_ok, NULL) == PR_OK);
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%u", p.port);
    o.http_proxy = proxy;
    o.https_proxy = proxy;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", d.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "hello");
    snprintf(url, sizeof url, "http://localhost:%u/", d.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "hello");
    snprintf(url, sizeof url, "http://app.localhost:%u/", d.port); /* resolved to loopback without DNS */
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "hello");
    PT_EQ_INT(p.nreqs, 0);
    PT_EQ_INT(d.nreqs, 3);
    /* a name that looks like an address: through the proxy */
    snprintf(url, sizeof url, "http://127.example.test:%u/", d.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "proxied");
    PT_EQ_INT(p.nreqs, 1);
    snprintf(url, sizeof url, "GET http://127.example.test:%u/ HTTP/1.1\r\n", d.port);
    PT_CHECK(strstr(p.log, url) == p.log);
    PT_EQ_INT(d.nreqs, 3);
    pr_http_client_destroy(c);
    cl_stop(&p);
    cl_stop(&d);
    pr_dns_override(NULL, 0, NULL);
}

/* Client sockets get TCP keep-alive: 60 s idle by default, tcp_keepalive_s
   otherwise, off when negative. */
static void cl_keepalive_case(int opt, int want_on, int want_idle) {
    cl_srv s;
    pr_http_client *c = NULL;
    pr_http_client_opts o = cl_noenv;
    char url[64], body[64];
    int on = -1, idle = -1;
    socklen_t len;
    if (cl_start(&s, cl_ok, NULL) != PR_OK) {
        pt_fail(__FILE__, __LINE__, "cl_start failed");
        return;
    }
    o.tcp_keepalive_s = opt;
    PT_EQ_ERR(pr_http_client_create(&c, &o, NULL), PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_INT(pr_http_client_idle_count(c), 1);
    if (c->pool) {
        int fd = ((pr__net_sock *)(void *)c->pool->conn)->fd;
        len = sizeof on;
        PT_EQ_INT(getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, &len), 0);
        PT_EQ_INT(on != 0, want_on);
#ifdef TCP_KEEPIDLE
        if (want_on) {
            len = sizeof idle;
            PT_EQ_INT(getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &len), 0);
            PT_EQ_INT(idle, want_idle);
        }
#else
        (void)idle;
        (void)want_idle;
#endif
    }
    pr_http_client_destroy(c);
    cl_stop(&s);
}

PT_TEST(client_tcp_keepalive) {
    cl_keepalive_case(0, 1, 60);
    cl_keepalive_case(7, 1, 7);
    cl_keepalive_case(-1, 0, 0);
}

PT_TEST(client_proxy_environment) {
    cl_srv p, d;
    pr_http_client *c = NULL;
    char proxy[64], url[64], body[64];
    pr_http_client_opts o = cl_noenv;
    PT_REQUIRE(pr_dns_override("a.test", 0, "127.0.0.1") == PR_OK);
    PT_REQUIRE(cl_start(&p, cl_proxy_plain, NULL) == PR_OK);
    PT_REQUIRE(cl_start(&d, cl_ok, NULL) == PR_OK);
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%u", p.port);
    snprintf(url, sizeof url, "http://a.test:%u/", d.port);
    unsetenv("http_proxy");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    setenv("HTTP_PROXY", proxy, 1); /* upper case is ignored (httpoxy) */
    PT_REQUIRE(pr_http_client_create(&c, NULL, NULL) == PR_OK);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "hello");
    pr_http_client_destroy(c);
    unsetenv("HTTP_PROXY");
    setenv("http_proxy", proxy, 1);
    PT_REQUIRE(pr_http_client_create(&c, NULL, NULL) == PR_OK);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "proxied");
    pr_http_client_destroy(c);
    setenv("NO_PROXY", "a.test", 1);
    PT_REQUIRE(pr_http_client_create(&c, NULL, NULL) == PR_OK);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "hello");
    pr_http_client_destroy(c);
    unsetenv("NO_PROXY");
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK); /* ignore_env */
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "hello");
    pr_http_client_destroy(c);
    unsetenv("http_proxy");
    setenv("ALL_PROXY", proxy, 1);
    PT_REQUIRE(pr_http_client_create(&c, NULL, NULL) == PR_OK);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "proxied");
    pr_http_client_destroy(c);
    unsetenv("ALL_PROXY");
    o.http_proxy = "https://127.0.0.1:1";
    PT_EQ_ERR(pr_http_client_create(&c, &o, NULL), PR_ENOTSUP);
    o.http_proxy = "http://[::zz]:1";
    PT_EQ_ERR(pr_http_client_create(&c, &o, NULL), PR_EINVAL);
    PT_EQ_INT(p.nreqs, 2);
    cl_stop(&p);
    cl_stop(&d);
    pr_dns_override(NULL, 0, NULL);
}

/* ---- timeouts and cancellation ---- */

/* A listener whose accept queue is full: new connects hang in SYN_SENT. */
static int cl_full_backlog(pr_listener **l, pr_conn **fill, int nfill) {
    int i, rc = pr_tcp_listen(l, "127.0.0.1", 0, 1, NULL);
    if (rc) return rc;
    for (i = 0; i < nfill; i++) {
        pr_net_opts no;
        memset(&no, 0, sizeof no);
        no.connect_timeout_ms = 200;
        fill[i] = NULL;
        pr_tcp_connect(&fill[i], "127.0.0.1", pr_listener_port(*l), &no, NULL, pr_deadline_in(300));
    }
    return PR_OK;
}

PT_TEST(client_connect_timeout_inside_deadline) {
    pr_listener *l = NULL;
    pr_conn *fill[4];
    pr_http_client *c = NULL;
    pr_http_client_opts o = cl_noenv;
    pr_http_response *r = NULL;
    pr_err_info e;
    char url[64];
    int64_t t0;
    int i;
    PT_REQUIRE(cl_full_backlog(&l, fill, 4) == PR_OK);
    o.connect_timeout_ms = 300;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", pr_listener_port(l));
    t0 = pr_now();
    PT_EQ_ERR(pr_http_client_get(c, &r, url, NULL, pr_deadline_in(10000)), PR_EIO); /* not the deadline */
    PT_CHECK(pr_now() - t0 >= 250 && pr_now() - t0 < 3000);
    PT_EQ_INT(pr_http_client_last_error(c, &e), PR_OK);
    PT_EQ_INT(e.sys_errno, ETIMEDOUT);
    PT_CHECK(strstr(e.msg, "connect timeout") != NULL);
    pr_http_client_destroy(c);
    for (i = 0; i < 4; i++) pr_conn_destroy(fill[i]);
    pr_listener_destroy(l);
}

typedef struct cl_blocked {
    pr_http_client *c;
    const char *url;
    int read_body;
    int rc;
} cl_blocked;

static int cl_blocked_task(void *arg) {
    cl_blocked *b = (cl_blocked *)arg;
    pr_http_response *r = NULL;
    int rc = pr_http_client_get(b->c, &r, b->url, NULL, pr_deadline_in(20000));
    if (!rc && b->read_body) {
        char buf[256];
        rc = cl_body(r, buf, sizeof buf);
    }
    b->rc = rc;
    pr_http_response_destroy(r);
    return 0;
}

static void cl_cancel_case(pr_http_client *c, const char *url, int read_body) {
    pr_task *t;
    cl_blocked b;
    b.c = c;
    b.url = url;
    b.read_body = read_body;
    b.rc = 1;
    if (pr_go(&t, cl_blocked_task, &b, NULL) != PR_OK) {
        pt_fail(__FILE__, __LINE__, "pr_go failed");
        return;
    }
    pr_sleep(pr_deadline_in(150));
    if (b.rc != 1) pt_fail(__FILE__, __LINE__, "%s: got %s, want the call still blocked", url, pt_errname(b.rc));
    pr_cancel(t);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(2000)), PR_OK);
    PT_EQ_ERR(b.rc, PR_ECANCELED);
}

static int cl_hang_head(cl_srv *s, int conn, int nreq, const char *req, char *out, size_t cap) {
    (void)s;
    (void)conn;
    (void)nreq;
    if (strstr(req, " /body ")) snprintf(out, cap, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
    return CL_HANG;
}

/* A TLS "server" that accepts and never speaks. */
static int cl_mute(cl_srv *s, int conn, int nreq, const char *req, char *out, size_t cap) {
    return cl_hang_head(s, conn, nreq, req, out, cap);
}

PT_TEST(client_cancel_in_connect) {
    pr_listener *l = NULL;
    pr_conn *fill[4];
    pr_http_client *c = NULL;
    char url[64];
    int i;
    PT_REQUIRE(pr_http_client_create(&c, &cl_noenv, NULL) == PR_OK);
    PT_REQUIRE(cl_full_backlog(&l, fill, 4) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", pr_listener_port(l));
    cl_cancel_case(c, url, 0);
    for (i = 0; i < 4; i++) pr_conn_destroy(fill[i]);
    pr_listener_destroy(l);
    pr_http_client_destroy(c);
}

/* The TLS peer is a plain server that never answers the ClientHello. */
PT_TEST(client_cancel_in_tls_handshake) {
    pr_http_client *c = NULL;
    cl_srv m;
    char url[64];
#ifdef PRISTINE_NO_TLS
    PT_SKIP("no TLS in this build"); /* an https URL fails at once with PR_ENOTSUP */
#endif
    PT_REQUIRE(pr_http_client_create(&c, &cl_noenv, NULL) == PR_OK);
    PT_REQUIRE(cl_start(&m, cl_mute, NULL) == PR_OK);
    snprintf(url, sizeof url, "https://127.0.0.1:%u/", m.port);
    cl_cancel_case(c, url, 0);
    cl_stop(&m);
    pr_http_client_destroy(c);
    pr_tls_global_cleanup(); /* the system trust bundle was loaded */
}

PT_TEST(client_cancel_in_head_and_body) {
    pr_http_client *c = NULL;
    cl_srv s;
    char url[64];
    PT_REQUIRE(pr_http_client_create(&c, &cl_noenv, NULL) == PR_OK);
    PT_REQUIRE(cl_start(&s, cl_hang_head, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/head", s.port);
    cl_cancel_case(c, url, 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/body", s.port);
    cl_cancel_case(c, url, 1);
    cl_stop(&s);
    PT_EQ_INT(pr_http_client_idle_count(c), 0);
    pr_http_client_destroy(c);
}

/* ---- TLS: https origins, CONNECT tunnels, https -> http ---- */
#ifndef PRISTINE_NO_TLS
static pr_http_client_opts cl_tls_opts(void) {
    pr_http_client_opts o = cl_noenv;
    o.tls.ca_pem = tls_file("ca.crt");
    return o;
}

PT_TEST(client_https_reuse_and_https_to_http) {
    cl_srv s, p;
    pr_tls_server_cfg *cfg = NULL;
    pr_http_client *c = NULL;
    pr_http_client_opts o;
    pr_err_info e;
    char url[64], loc[64], body[64];
    TLS_NEED_FIXTURES();
    o = cl_tls_opts();
    PT_REQUIRE(o.tls.ca_pem != NULL);
    PT_REQUIRE(tls_cfg(&cfg, "good") == PR_OK);
    PT_REQUIRE(cl_start(&s, cl_redir, cfg) == PR_OK);
    PT_REQUIRE(cl_start(&p, cl_ok, NULL) == PR_OK);
    snprintf(loc, sizeof loc, "http://127.0.0.1:%u/", p.port);
    s.user_data = loc;
    o.max_redirects = 3;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "https://localhost:%u/a", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "done");
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_INT(s.accepts, 2); /* localhost and 127.0.0.1 are two origins; both reused */
    snprintf(url, sizeof url, "https://localhost:%u/other", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), PR_EPROTO);
    PT_EQ_INT(pr_http_client_last_error(c, &e), PR_OK);
    PT_CHECK(strstr(e.msg, "https to http") != NULL);
    PT_EQ_INT(p.nreqs, 0);
    pr_http_client_destroy(c);
    o.allow_https_to_http = 1;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "hello");
    PT_EQ_INT(p.nreqs, 1);
    pr_http_client_destroy(c);
    /* a bad certificate name: PR_ETLS with detail */
    o.allow_https_to_http = 0;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    PT_REQUIRE(pr_dns_override("a.test", 0, "127.0.0.1") == PR_OK);
    snprintf(url, sizeof url, "https://a.test:%u/", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), PR_ETLS);
    PT_EQ_INT(pr_http_client_last_error(c, &e), PR_OK);
    PT_EQ_INT(e.code, PR_ETLS);
    PT_CHECK(e.tls_error != 0);
    pr_http_client_destroy(c);
    cl_stop(&s);
    cl_stop(&p);
    pr_tls_server_cfg_destroy(cfg);
    pr_dns_override(NULL, 0, NULL);
}

/* tls.ca_file is parsed once, at create: the file can go away afterwards,
   and every connection still verifies against it. A missing file fails
   create. */
PT_TEST(client_ca_file_parsed_once) {
    cl_srv s;
    pr_tls_server_cfg *cfg = NULL;
    pr_http_client *c = NULL;
    pr_http_client_opts o = cl_noenv;
    pr_tls_anchors *mine = NULL;
    const char *pem;
    char path[96], url[64], body[64];
    FILE *f;
    TLS_NEED_FIXTURES();
    PT_REQUIRE((pem = tls_file("ca.crt")) != NULL);
    snprintf(path, sizeof path, "%s/client_ca_once.crt", TLS_DIR);
    PT_REQUIRE((f = fopen(path, "wb")) != NULL);
    PT_REQUIRE(fwrite(pem, 1, strlen(pem), f) == strlen(pem));
    fclose(f);
    PT_REQUIRE(tls_cfg(&cfg, "good") == PR_OK);
    PT_REQUIRE(cl_start(&s, cl_ok, cfg) == PR_OK);
    o.tls.ca_file = path;
    o.pool_idle_ms = -1; /* every request connects */
    PT_EQ_ERR(pr_http_client_create(&c, &o, NULL), PR_OK);
    PT_REQUIRE(c != NULL);
    PT_CHECK(c->anchors != NULL && c->o.tls.anchors == c->anchors);
    remove(path);
    snprintf(url, sizeof url, "https://localhost:%u/", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "hello");
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_INT(s.accepts, 2);
    pr_http_client_destroy(c);
    /* ca_pem: parsed at create too */
    o.tls.ca_file = NULL;
    o.tls.ca_pem = pem;
    PT_EQ_ERR(pr_http_client_create(&c, &o, NULL), PR_OK);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    pr_http_client_destroy(c);
    /* the user's own anchors are used as they are */
    PT_EQ_ERR(pr_tls_anchors_create(&mine, NULL, pem, 0, NULL), PR_OK);
    o.tls.ca_pem = "not a certificate";
    o.tls.anchors = mine;
    PT_EQ_ERR(pr_http_client_create(&c, &o, NULL), PR_OK);
    PT_CHECK(c->anchors == NULL && c->o.tls.anchors == mine);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_INT(s.accepts, 4);
    pr_http_client_destroy(c);
    pr_tls_anchors_destroy(mine);
    /* bad sources fail at create, not at the first connect */
    o.tls.anchors = NULL;
    o.tls.ca_pem = NULL;
    o.tls.ca_file = path; /* removed above */
    c = (pr_http_client *)&o;
    PT_EQ_ERR(pr_http_client_create(&c, &o, NULL), PR_EIO);
    PT_CHECK(c == NULL);
    o.tls.ca_file = NULL;
    o.tls.ca_pem = "not a certificate";
    PT_EQ_ERR(pr_http_client_create(&c, &o, NULL), PR_EINVAL);
    cl_stop(&s);
    pr_tls_server_cfg_destroy(cfg);
}

/* The early response (413 before the upload is done) over TLS: the TLS
   conn keeps reading after the peer refused our writes. */
typedef struct cl_early_tls {
    pr_listener *l;
    const pr_tls_server_cfg *cfg;
    size_t head_len;
    int rc;
} cl_early_tls;

static int cl_early_tls_task(void *arg) {
    cl_early_tls *x = (cl_early_tls *)arg;
    pr_conn *raw = NULL, *c = NULL;
    char buf[4096];
    size_t len = 0;
    const char *resp = "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!";
    if ((x->rc = pr_tcp_accept(x->l, &raw, pr_deadline_in(5000))) != PR_OK) return 0;
    if ((x->rc = pr_tls_server(&c, raw, x->cfg, NULL, pr_deadline_in(5000))) != PR_OK) return 0;
    for (;;) { /* a byte at a time: little of the body is read */
        ptrdiff_t k = pr_conn_read(c, buf + len, 1, pr_deadline_in(5000));
        if (k <= 0) {
            x->rc = k < 0 ? (int)k : PR_ECLOSED;
            pr_conn_destroy(c);
            return 0;
        }
        len++;
        if (len >= 4 && !memcmp(buf + len - 4, "\r\n\r\n", 4)) break;
        if (len == sizeof buf) {
            x->rc = PR_ELIMIT;
            pr_conn_destroy(c);
            return 0;
        }
    }
    x->head_len = len;
    pr_sleep(pr_deadline_in(50)); /* the client is blocked in its write by now */
    x->rc = pr_conn_write(c, resp, strlen(resp), pr_deadline_in(5000));
    pr_conn_destroy(c); /* unread body bytes: the kernel resets the connection */
    return 0;
}

PT_TEST(client_early_response_while_uploading_tls) {
    enum { BIG = 16 << 20 };
    cl_early_tls x;
    pr_task *t;
    pr_tls_server_cfg *cfg = NULL;
    pr_http_client *c = NULL;
    pr_http_client_opts o;
    pr_http_response *r = NULL;
    pr_http_request req;
    pr_url u;
    pr_err_info e;
    char url[64], body[64];
    char *big;
    TLS_NEED_FIXTURES();
    o = cl_tls_opts();
    PT_REQUIRE(tls_cfg(&cfg, "good") == PR_OK);
    PT_REQUIRE((big = (char *)calloc(1, BIG)) != NULL);
    memset(&x, 0, sizeof x);
    memset(&u, 0, sizeof u);
    memset(&req, 0, sizeof req);
    x.cfg = cfg;
    PT_REQUIRE(pr_tcp_listen(&x.l, "127.0.0.1", 0, 4, NULL) == PR_OK);
    PT_REQUIRE(pr_go(&t, cl_early_tls_task, &x, NULL) == PR_OK);
    snprintf(url, sizeof url, "https://localhost:%u/up", pr_listener_port(x.l));
    PT_REQUIRE(pr_url_parse(&u, url, strlen(url), NULL) == PR_OK);
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    req.method = "POST";
    req.url = &u;
    req.body = big;
    req.body_len = BIG;
    PT_EQ_ERR(pr_http_client_request(c, &r, &req, NULL, pr_deadline_in(10000)), PR_OK);
    if (!r && pr_http_client_last_error(c, &e) == PR_OK) pt_fail(__FILE__, __LINE__, "detail: %s", e.msg);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 413);
        PT_EQ_ERR(cl_body(r, body, sizeof body), PR_OK);
        PT_EQ_STR(body, "too big!");
        PT_EQ_INT(pr_http_reusable(r), 0);
        pr_http_response_destroy(r);
    }
    PT_EQ_INT(pr_http_client_idle_count(c), 0);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(x.rc, PR_OK);
    PT_CHECK(x.head_len > 0 && x.head_len < 200);
    pr_http_client_destroy(c);
    pr_listener_destroy(x.l);
    pr_tls_server_cfg_destroy(cfg);
    pr_url_deinit(&u);
    free(big);
}

/* Over https, a reused connection that the server closes (close_notify, or
   a reset) before the first response byte: the request is sent again on a
   fresh connection. */
static int cl_tls_second(cl_srv *s, int conn, int nreq, const char *req, char *out, size_t cap) {
    if (nreq == 2) return strstr(req, " /reset ") ? CL_RESET : CL_DROP;
    return cl_ok(s, conn, nreq, req, out, cap);
}

PT_TEST(client_https_retry_on_dead_reused_connection) {
    cl_srv s;
    pr_tls_server_cfg *cfg = NULL;
    pr_http_client *c = NULL;
    pr_http_client_opts o;
    char url[64], body[64];
    TLS_NEED_FIXTURES();
    o = cl_tls_opts();
    PT_REQUIRE(tls_cfg(&cfg, "good") == PR_OK);
    PT_REQUIRE(cl_start(&s, cl_tls_second, cfg) == PR_OK);
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "https://localhost:%u/drop", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_INT(pr_http_client_idle_count(c), 1);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200); /* closed on conn 1, retried on conn 2 */
    PT_EQ_STR(body, "hello");
    PT_EQ_INT(s.accepts, 2);
    PT_EQ_INT(s.nreqs, 3);
    snprintf(url, sizeof url, "https://localhost:%u/reset", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200); /* conn 2's second request: reset, retried on conn 3 */
    PT_EQ_STR(body, "hello");
    PT_EQ_INT(s.accepts, 3);
    PT_EQ_INT(s.nreqs, 5);
    pr_http_client_destroy(c);
    cl_stop(&s);
    pr_tls_server_cfg_destroy(cfg);
}

/* A CONNECT proxy: reads "CONNECT host:port", connects to 127.0.0.1:port
   (or answers with the status in user_data), then splices bytes. */
typedef struct cl_splice {
    pr_conn *from, *to;
} cl_splice;

static int cl_splice_task(void *arg) {
    cl_splice *sp = (cl_splice *)arg;
    char buf[4096];
    for (;;) {
        ptrdiff_t k = pr_conn_read(sp->from, buf, sizeof buf, PR_FOREVER);
        if (k <= 0 || pr_conn_write(sp->to, buf, (size_t)k, PR_FOREVER) != PR_OK) break;
    }
    pr_conn_shutdown(sp->to, pr_deadline_in(100));
    return 0;
}

typedef struct cl_cproxy {
    pr_listener *l;
    int connects, refuse, in_accept;
    char first[1024];
    pr_task *t;
} cl_cproxy;

static int cl_cproxy_task(void *arg) {
    cl_cproxy *p = (cl_cproxy *)arg;
    for (;;) {
        pr_conn *c = NULL, *up = NULL;
        char req[1024];
        const char *colon;
        ptrdiff_t k;
        pr_task *t2;
        cl_splice a, b;
        int rc;
        p->in_accept = 1;
        rc = pr_tcp_accept(p->l, &c, PR_FOREVER);
        p->in_accept = 0;
        if (rc != PR_OK) return 0;
        k = cl_read_request(c, req, sizeof req);
        if (k <= 0) {
            pr_conn_destroy(c);
            continue;
        }
        p->connects++;
        snprintf(p->first, sizeof p->first, "%s", req);
        colon = strchr(req + 8, ':');
        if (p->refuse || strncmp(req, "CONNECT ", 8) || !colon ||
            pr_tcp_connect(&up, "127.0.0.1", (uint16_t)atoi(colon + 1), NULL, NULL, pr_deadline_in(2000)) != PR_OK) {
            const char *no = "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 4\r\n\r\nnope";
            pr_conn_write(c, no, strlen(no), pr_deadline_in(2000));
            pr_conn_destroy(c);
            continue;
        }
        {   /* the reply and the first tunnel bytes may travel together: nothing here sends any */
            const char *yes = "HTTP/1.1 200 Connection established\r\n\r\n";
            pr_conn_write(c, yes, strlen(yes), pr_deadline_in(2000));
        }
        a.from = c;
        a.to = up;
        b.from = up;
        b.to = c;
        if (pr_go(&t2, cl_splice_task, &b, NULL) == PR_OK) {
            cl_splice_task(&a);
            pr_cancel(t2);
            pr_join(t2, NULL, PR_FOREVER);
        }
        pr_conn_destroy(c);
        pr_conn_destroy(up);
        if (pr_is_canceled()) return 0;
    }
}

/* Stop the proxy once it is back in accept: cancelled in the middle of a
   tunnel, its join of the splice task would return at once and the conns
   would be freed under that task. The tunnels end when the client closes. */
static void cl_cproxy_stop(cl_cproxy *p) {
    int i;
    for (i = 0; i < 2000 && !p->in_accept; i++) pr_sleep(pr_deadline_in(1));
    if (!p->in_accept) pt_fail(__FILE__, __LINE__, "the proxy is still in a tunnel after 2 s");
    pr_cancel(p->t);
    pr_join(p->t, NULL, PR_FOREVER);
    pr_listener_destroy(p->l);
}

PT_TEST(client_connect_proxy_https) {
    cl_srv s;
    cl_cproxy p;
    pr_tls_server_cfg *cfg = NULL;
    pr_http_client *c = NULL;
    pr_http_client_opts o;
    pr_err_info e;
    char proxy[64], url[64], body[64];
    TLS_NEED_FIXTURES();
    o = cl_tls_opts();
    o.tls.insecure_skip_verify_DANGEROUS = 1; /* "good" has no a.test: verified tunnels are in
                                                   client_connect_proxy_https_verified */
    PT_REQUIRE(pr_dns_override("a.test", 0, "127.0.0.1") == PR_OK);
    PT_REQUIRE(tls_cfg(&cfg, "good") == PR_OK);
    PT_REQUIRE(cl_start(&s, cl_ok, cfg) == PR_OK);
    memset(&p, 0, sizeof p);
    PT_REQUIRE(pr_tcp_listen(&p.l, "127.0.0.1", 0, 16, NULL) == PR_OK);
    PT_REQUIRE(pr_go(&p.t, cl_cproxy_task, &p, NULL) == PR_OK);
    snprintf(proxy, sizeof proxy, "http://u:pw@127.0.0.1:%u/", pr_listener_port(p.l));
    o.https_proxy = proxy;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "https://a.test:%u/x", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "hello");
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200); /* pooled tunnel */
    PT_EQ_INT(p.connects, 1);
    snprintf(url, sizeof url, "CONNECT a.test:%u HTTP/1.1\r\nHost: a.test:%u\r\n", s.port, s.port);
    PT_CHECK(strstr(p.first, url) == p.first);
    PT_CHECK(strstr(p.first, "Proxy-Authorization: Basic dTpwdw==\r\n") != NULL);
    PT_CHECK(strstr(s.log, "GET /x HTTP/1.1\r\n") == s.log);
    pr_http_client_destroy(c);
    /* refused */
    p.refuse = 1;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "https://a.test:%u/x", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), PR_EPROTO);
    PT_EQ_INT(pr_http_client_last_error(c, &e), PR_OK);
    PT_EQ_INT(e.http_status, 407);
    PT_CHECK(strstr(e.msg, "407") != NULL);
    pr_http_client_destroy(c);
    cl_cproxy_stop(&p);
    cl_stop(&s);
    pr_tls_server_cfg_destroy(cfg);
    pr_dns_override(NULL, 0, NULL);
}

/* Certificate verification through the tunnel: the origin's name (a.test,
   in the atest fixture) is checked, not the proxy's. */
PT_TEST(client_connect_proxy_https_verified) {
    cl_srv s, w;
    cl_cproxy p;
    pr_tls_server_cfg *cfg = NULL, *wcfg = NULL;
    pr_http_client *c = NULL;
    pr_http_client_opts o;
    pr_err_info e;
    char proxy[64], url[64], body[64];
    TLS_NEED_FIXTURES();
    o = cl_tls_opts();
    PT_REQUIRE(o.tls.ca_pem != NULL);
    PT_REQUIRE(pr_dns_override("a.test", 0, "127.0.0.1") == PR_OK);
    PT_REQUIRE(tls_cfg(&cfg, "atest") == PR_OK);
    PT_REQUIRE(tls_cfg(&wcfg, "good") == PR_OK); /* localhost names only */
    PT_REQUIRE(cl_start(&s, cl_ok, cfg) == PR_OK);
    PT_REQUIRE(cl_start(&w, cl_ok, wcfg) == PR_OK);
    memset(&p, 0, sizeof p);
    PT_REQUIRE(pr_tcp_listen(&p.l, "127.0.0.1", 0, 16, NULL) == PR_OK);
    PT_REQUIRE(pr_go(&p.t, cl_cproxy_task, &p, NULL) == PR_OK);
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%u/", pr_listener_port(p.l));
    o.https_proxy = proxy;
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "https://a.test:%u/v", s.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), 200);
    PT_EQ_STR(body, "hello");
    PT_EQ_INT(p.connects, 1);
    PT_CHECK(strstr(s.log, "GET /v HTTP/1.1\r\nHost: a.test:") == s.log);
    /* the same name on a server whose certificate lacks it: refused (a new
       client: the proxy serves one tunnel at a time, the pooled one is closed) */
    pr_http_client_destroy(c);
    PT_REQUIRE(pr_http_client_create(&c, &o, NULL) == PR_OK);
    snprintf(url, sizeof url, "https://a.test:%u/v", w.port);
    PT_EQ_INT(cl_get(c, url, body, sizeof body), PR_ETLS);
    PT_EQ_INT(pr_http_client_last_error(c, &e), PR_OK);
    PT_EQ_INT(e.code, PR_ETLS);
    PT_EQ_INT(e.tls_error, BR_ERR_X509_BAD_SERVER_NAME);
    if (!strstr(e.msg, "does not match host a.test")) pt_fail(__FILE__, __LINE__, "msg \"%s\" does not name the host mismatch", e.msg);
    PT_EQ_INT(p.connects, 2); /* it did go through the tunnel */
    PT_EQ_INT(w.nreqs, 0);
    pr_http_client_destroy(c);
    cl_cproxy_stop(&p);
    cl_stop(&s);
    cl_stop(&w);
    pr_tls_server_cfg_destroy(cfg);
    pr_tls_server_cfg_destroy(wcfg);
    pr_dns_override(NULL, 0, NULL);
}
#endif

/* ---- allocation failures over one full request (with a redirect) ---- */
PT_TEST(client_alloc_fail_sweep) {
    cl_srv s;
    pr_http_client_opts o = cl_noenv;
    char url[64], body[64];
    long n;
    int ok = 0;
    static const char *const fwd[] = { "X-Trace-Id", "Traceparent", NULL };
    o.max_redirects = 3;
    o.redirect_forward_headers = fwd; /* its copy fails in turn too */
    for (n = 1; n < 400; n++) {
        pr_http_client *c = NULL;
        int rc, done;
        PT_REQUIRE(cl_start(&s, cl_redir, NULL) == PR_OK); /* fresh handler slots every round */
        snprintf(url, sizeof url, "http://127.0.0.1:%u/a", s.port);
        body[0] = 0;
        pt_alloc_fail_nth(n);
        rc = pr_http_client_create(&c, &o, NULL);
        if (!rc) {
            rc = cl_get(c, url, body, sizeof body);
            if (rc > 0) rc = cl_get(c, url, body, sizeof body); /* and once more from the pool */
            pr_http_client_destroy(c);
        }
        done = __atomic_load_n(&pt__mem.fail_nth, __ATOMIC_RELAXED) > 0;
        pt_alloc_fail_nth(0);
        cl_stop(&s);
        if (done) {
            PT_EQ_INT(rc, 200);
            PT_EQ_STR(body, "done");
            ok = 1;
            break;
        }
        if (rc != 200 && rc != PR_ENOMEM && rc != PR_ECLOSED && rc != PR_EIO)
            pt_fail(__FILE__, __LINE__, "fail-nth %ld: got %s", n, pt_errname(rc));
    }
    PT_CHECK(ok);
}

const pt_suite pt_suite_client = { "client", {
    PT_ENTRY(client_reuse_sequential),
    PT_ENTRY(client_no_reuse_after_close_eof_unread),
    PT_ENTRY(client_pool_idle_expiry_and_disabled),
    PT_ENTRY(client_response_outlives_client),
    PT_ENTRY(client_dead_pooled_connection_discarded),
    PT_ENTRY(client_retry_on_dead_reused_connection),
    PT_ENTRY(client_retry_on_reset_reused_connection),
    PT_ENTRY(client_early_response_while_uploading),
    PT_ENTRY(client_redirect_chain_and_default_off),
    PT_ENTRY(client_redirect_stalled_3xx_body),
    PT_ENTRY(client_send_header_lines),
    PT_ENTRY(client_redirect_methods),
    PT_ENTRY(client_redirect_origin_change_drops_credentials),
    PT_ENTRY(client_redirect_cross_origin_keeps_only_safe_fields),
    PT_ENTRY(client_redirect_to_get_drops_body_fields),
    PT_ENTRY(client_plain_proxy_absolute_form),
    PT_ENTRY(client_loopback_never_proxied),
    PT_ENTRY(client_tcp_keepalive),
    PT_ENTRY(client_proxy_environment),
    PT_ENTRY(client_connect_timeout_inside_deadline),
    PT_ENTRY(client_cancel_in_connect),
    PT_ENTRY(client_cancel_in_tls_handshake),
    PT_ENTRY(client_cancel_in_head_and_body),
#ifndef PRISTINE_NO_TLS
    PT_ENTRY(client_https_reuse_and_https_to_http),
    PT_ENTRY(client_ca_file_parsed_once),
    PT_ENTRY(client_early_response_while_uploading_tls),
    PT_ENTRY(client_https_retry_on_dead_reused_connection),
    PT_ENTRY(client_connect_proxy_https),
    PT_ENTRY(client_connect_proxy_https_verified),
#endif
    PT_ENTRY(client_alloc_fail_sweep),
    {0, 0} } };
