/* nginx: interoperability with a real nginx (/usr/sbin/nginx, Debian's
   nginx-light). The first test starts one private nginx (tests/nginx/
   nginx_run.h: config from tests/nginx/nginx.conf.in under build/nginx,
   one foreground process, ephemeral 127.0.0.1 ports, the TLS fixtures of
   test_tls.c); nginx_stop, the suite's last test, stops it, and an atexit
   handler and PR_SET_PDEATHSIG make sure it never outlives the runner.
   A missing nginx is a failure, not a skip: CI installs it. */
#ifndef PRISTINE_NO_TLS /* the TLS cases and fixtures need BearSSL (the qemu cross build has none) */
#include "nginx/nginx_run.h"

#define NGX_PREFIX "build/nginx"

static ngxr ngx_srv;
static int ngx_state; /* 0 = not tried, 1 = running, -1 = failed, 2 = stopped */

static void ngx_atexit(void) { ngxr_stop(&ngx_srv); }

/* The served files: name, size, and their bytes as read back from disk. */
static struct ngx_file {
    const char *name;
    size_t size;
    unsigned char *data; /* libc memory, kept for the run */
} ngx_files[] = { { "small.txt", 128, NULL }, { "1m.bin", 1u << 20, NULL }, { "16m.bin", 16u << 20, NULL } };

static int ngx_load_files(void) {
    size_t i;
    for (i = 0; i < sizeof ngx_files / sizeof ngx_files[0]; i++) {
        struct ngx_file *f = &ngx_files[i];
        char path[700];
        FILE *fp;
        if (!ngxr_make_file(&ngx_srv, f->name, f->size)) return 0;
        if (f->data) continue;
        snprintf(path, sizeof path, "%s/html/%s", ngx_srv.prefix, f->name);
        if (!(f->data = (unsigned char *)malloc(f->size)) || !(fp = fopen(path, "rb"))) return 0;
        if (fread(f->data, 1, f->size, fp) != f->size) f->size = 0;
        fclose(fp);
    }
    return 1;
}

/* Start nginx once per run; 1 if it is up. */
static int ngx_up(void) {
    static int registered;
    char cwd[400];
    if (ngx_state == 1) return 1;
    if (ngx_state != 0) return 0;
    ngx_state = -1;
    if (!tls_fixtures()) {
        snprintf(ngx_srv.msg, sizeof ngx_srv.msg, "no TLS fixtures (tests/fixtures/tls_mkcerts.sh failed)");
        return 0;
    }
    if (!registered) registered = atexit(ngx_atexit) == 0;
    if (!ngxr_start(&ngx_srv, NGX_PREFIX, TLS_DIR "/good.crt", TLS_DIR "/good.key", -1)) return 0;
    if (!ngx_load_files()) {
        snprintf(ngx_srv.msg, sizeof ngx_srv.msg, "cannot create the files under %s/html (cwd %s)", ngx_srv.prefix,
                 getcwd(cwd, sizeof cwd) ? cwd : "?");
        ngxr_stop(&ngx_srv);
        return 0;
    }
    ngx_state = 1;
    return 1;
}

#define NGX_UP() \
    do { if (!ngx_up()) { pt_fail(__FILE__, __LINE__, "got no nginx (%s), want it running", ngx_srv.msg); return; } } \
    while (0)

static const struct ngx_file *ngx_file(const char *name) {
    size_t i;
    for (i = 0; i < sizeof ngx_files / sizeof ngx_files[0]; i++)
        if (strcmp(ngx_files[i].name, name) == 0) return &ngx_files[i];
    return NULL;
}

/* Connect to 127.0.0.1:port; with tls_host, run TLS over it (CA from the fixtures). */
static int ngx_connect(pr_conn **out, int port, const char *tls_host) {
    pr_conn *c;
    int rc;
    *out = NULL;
    if ((rc = pr_tcp_connect(&c, "127.0.0.1", (uint16_t)port, NULL, NULL, pr_deadline_in(5000))) != PR_OK) return rc;
    if (!tls_host) {
        *out = c;
        return PR_OK;
    }
    return pr_tls_client(out, c, tls_host, &(pr_tls_opts){ .ca_file = TLS_DIR "/ca.crt" }, NULL, pr_deadline_in(5000));
}

/* One exchange: METHOD scheme://host:port/path with optional extra fields. */
static int ngx_send(pr_http_response **r, pr_conn *c, const char *method, int tls, const char *host, int port,
                    const char *path, const char *const *h, const pr_http_opts *opts) {
    char text[300];
    pr_url u;
    int rc;
    pr_http_request req;
    *r = NULL;
    snprintf(text, sizeof text, "%s://%s:%d%s", tls ? "https" : "http", host, port, path);
    if ((rc = pr_url_parse(&u, text, strlen(text), NULL)) != PR_OK) return rc;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.url = &u;
    req.headers = h;
    rc = pr_http_exchange(r, c, &req, opts, NULL, pr_deadline_in(10000));
    pr_url_deinit(&u);
    return rc;
}

static int ngx_get(pr_http_response **r, pr_conn *c, int port, const char *path) {
    return ngx_send(r, c, "GET", 0, "127.0.0.1", port, path, NULL, NULL);
}

/* A header's value as a C string ("" if absent). */
static const char *ngx_hdr(const pr_http_response *r, const char *name) {
    static char v[4][128];
    static int k;
    const pr_slice *s = pr_http_header_get(r, name);
    char *out = v[k++ & 3];
    size_t n = s ? (s->len < 127 ? s->len : 127) : 0;
    if (n) memcpy(out, s->ptr, n);
    out[n] = '\0';
    return out;
}

static unsigned char ngx_buf[65536];

/* Read the whole body and compare it with want (n bytes); spans = 1 uses
   pr_http_next_span. Returns PR_OK, the read error, or PR_EPROTO on a
   mismatch (reported as a failure at the caller's line). */
static int ngx_body_is(const char *file, int line, pr_http_response *r, const unsigned char *want, size_t n,
                       int spans) {
    size_t off = 0;
    for (;;) {
        const char *p;
        size_t len;
        ptrdiff_t got;
        if (spans) {
            int rc = pr_http_next_span(r, &p, &len, pr_deadline_in(10000));
            got = rc == PR_OK ? (ptrdiff_t)len : rc;
        } else {
            got = pr_http_read(r, ngx_buf, sizeof ngx_buf, pr_deadline_in(10000));
            p = (const char *)ngx_buf;
        }
        if (got == PR_ECLOSED) break;
        if (got < 0) {
            pt_fail(file, line, "got %s reading the body at byte %lu, want the bytes", pt_errname((int)got),
                    (unsigned long)off);
            return (int)got;
        }
        if (off + (size_t)got > n || memcmp(p, want + off, (size_t)got) != 0) {
            pt_fail(file, line, "got %ld body bytes at offset %lu that differ from the file (%lu bytes)", (long)got,
                    (unsigned long)off, (unsigned long)n);
            return PR_EPROTO;
        }
        off += (size_t)got;
    }
    if (off != n) {
        pt_fail(file, line, "got a body of %lu bytes, want %lu", (unsigned long)off, (unsigned long)n);
        return PR_EPROTO;
    }
    return PR_OK;
}
#define NGX_BODY_IS(r, f, spans) ngx_body_is(__FILE__, __LINE__, (r), (f)->data, (f)->size, (spans))

/* Drain a body whose content does not matter; returns its length or an error. */
static long ngx_drain(pr_http_response *r) {
    long total = 0;
    ptrdiff_t got;
    while ((got = pr_http_read(r, ngx_buf, sizeof ngx_buf, pr_deadline_in(10000))) > 0) total += (long)got;
    return got == PR_ECLOSED ? total : (long)got;
}

PT_TEST(nginx_get_files_byte_exact) {
    static const pr_http_opts big = { .recv_buf_size = 65536 };
    size_t i;
    NGX_UP();
    for (i = 0; i < sizeof ngx_files / sizeof ngx_files[0]; i++) {
        const struct ngx_file *f = &ngx_files[i];
        char path[64], cl[32];
        pr_conn *c;
        pr_http_response *r;
        int spans;
        PT_REQUIRE(f->size > 0);
        snprintf(path, sizeof path, "/%s", f->name);
        snprintf(cl, sizeof cl, "%lu", (unsigned long)f->size);
        PT_EQ_ERR(ngx_connect(&c, ngx_srv.plain, NULL), PR_OK);
        if (!c) return;
        /* the same file four times on one connection: read / spans, default / 64 KiB buffer */
        for (spans = 0; spans < 4; spans++) {
            PT_EQ_ERR(ngx_send(&r, c, "GET", 0, "127.0.0.1", ngx_srv.plain, path, NULL, spans & 2 ? &big : NULL),
                      PR_OK);
            if (!r) break;
            PT_EQ_INT(pr_http_status(r), 200);
            PT_EQ_INT(pr_http_version_minor(r), 1);
            PT_EQ_STR(ngx_hdr(r, "Content-Length"), cl);
            PT_CHECK(pr_http_header_get(r, "Transfer-Encoding") == NULL);
            PT_EQ_ERR(NGX_BODY_IS(r, f, spans & 1), PR_OK);
            PT_EQ_INT(pr_http_reusable(r), 1);
            pr_http_response_destroy(r);
        }
        pr_conn_destroy(c);
    }
}

PT_TEST(nginx_chunked_byte_exact) {
    /* /chunked/ comes in 4 KiB chunks, /chunked64/ in 64 KiB chunks */
    static const char *const paths[] = { "/chunked/small.txt", "/chunked/1m.bin", "/chunked64/16m.bin",
                                         "/chunked/16m.bin" };
    pr_conn *c;
    size_t i;
    NGX_UP();
    PT_EQ_ERR(ngx_connect(&c, ngx_srv.plain, NULL), PR_OK);
    if (!c) return;
    for (i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const struct ngx_file *f = ngx_file(strrchr(paths[i], '/') + 1);
        pr_http_response *r;
        PT_EQ_ERR(ngx_get(&r, c, ngx_srv.plain, paths[i]), PR_OK);
        if (!r) break;
        PT_EQ_INT(pr_http_status(r), 200);
        PT_EQ_STR(ngx_hdr(r, "Transfer-Encoding"), "chunked");
        PT_CHECK(pr_http_header_get(r, "Content-Length") == NULL);
        PT_EQ_ERR(NGX_BODY_IS(r, f, (int)(i & 1)), PR_OK);
        PT_EQ_INT(pr_http_reusable(r), 1);
        pr_http_response_destroy(r);
    }
    pr_conn_destroy(c);
}

PT_TEST(nginx_head_and_404_keep_the_connection) {
    pr_conn *c;
    pr_http_response *r;
    char conn_id[128];
    long n;
    NGX_UP();
    PT_EQ_ERR(ngx_connect(&c, ngx_srv.plain, NULL), PR_OK);
    if (!c) return;
    PT_EQ_ERR(ngx_send(&r, c, "HEAD", 0, "127.0.0.1", ngx_srv.plain, "/16m.bin", NULL, NULL), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 200);
        PT_EQ_STR(ngx_hdr(r, "Content-Length"), "16777216");
        PT_EQ_ERR((int)pr_http_read(r, ngx_buf, sizeof ngx_buf, pr_deadline_in(1000)), PR_ECLOSED);
        PT_EQ_INT(pr_http_reusable(r), 1);
        snprintf(conn_id, sizeof conn_id, "%s", ngx_hdr(r, "X-Conn"));
        pr_http_response_destroy(r);
    }
    PT_EQ_ERR(ngx_get(&r, c, ngx_srv.plain, "/no-such-file.txt"), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 404);
        n = ngx_drain(r);
        PT_CHECK(n > 0);
        PT_EQ_INT(pr_http_reusable(r), 1);
        PT_EQ_STR(ngx_hdr(r, "X-Req"), "2");
        pr_http_response_destroy(r);
    }
    PT_EQ_ERR(ngx_get(&r, c, ngx_srv.plain, "/small.txt"), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 200);
        PT_EQ_ERR(NGX_BODY_IS(r, ngx_file("small.txt"), 0), PR_OK);
        PT_EQ_STR(ngx_hdr(r, "X-Req"), "3");
        PT_EQ_STR(ngx_hdr(r, "X-Conn"), conn_id);
        pr_http_response_destroy(r);
    }
    pr_conn_destroy(c);
}

PT_TEST(nginx_keepalive_100_requests_one_connection) {
    pr_conn *c;
    char conn_id[128] = "", want_req[16];
    int i;
    NGX_UP();
    PT_EQ_ERR(ngx_connect(&c, ngx_srv.plain, NULL), PR_OK);
    if (!c) return;
    for (i = 0; i < 100; i++) {
        pr_http_response *r;
        int kind = i % 4, rc;
        if (kind == 2) rc = ngx_send(&r, c, "HEAD", 0, "127.0.0.1", ngx_srv.plain, "/1m.bin", NULL, NULL);
        else rc = ngx_get(&r, c, ngx_srv.plain, kind == 1 ? "/missing" : kind == 3 ? "/chunked/small.txt" : "/small.txt");
        if (rc != PR_OK) {
            pt_fail(__FILE__, __LINE__, "got %s on request %d, want PR_OK", pt_errname(rc), i + 1);
            break;
        }
        PT_EQ_INT(pr_http_status(r), kind == 1 ? 404 : 200);
        if (kind == 0 || kind == 3) PT_EQ_ERR(NGX_BODY_IS(r, ngx_file("small.txt"), 0), PR_OK);
        else PT_CHECK(ngx_drain(r) >= 0);
        PT_EQ_INT(pr_http_reusable(r), 1);
        snprintf(want_req, sizeof want_req, "%d", i + 1);
        PT_EQ_STR(ngx_hdr(r, "X-Req"), want_req);
        if (i == 0) snprintf(conn_id, sizeof conn_id, "%s", ngx_hdr(r, "X-Conn"));
        else PT_EQ_STR(ngx_hdr(r, "X-Conn"), conn_id);
        pr_http_response_destroy(r);
    }
    pr_conn_destroy(c);
}

PT_TEST(nginx_tls_get_localhost_and_ip) {
    static const char *const hosts[] = { "localhost", "127.0.0.1" };
    size_t i;
    NGX_UP();
    for (i = 0; i < 2; i++) {
        pr_conn *c;
        pr_http_response *r;
        PT_EQ_ERR(ngx_connect(&c, ngx_srv.tls, hosts[i]), PR_OK);
        if (!c) continue;
        PT_EQ_ERR(ngx_send(&r, c, "GET", 1, hosts[i], ngx_srv.tls, "/16m.bin", NULL, NULL), PR_OK);
        if (r) {
            PT_EQ_INT(pr_http_status(r), 200);
            PT_EQ_ERR(NGX_BODY_IS(r, ngx_file("16m.bin"), 0), PR_OK);
            PT_EQ_INT(pr_http_reusable(r), 1);
            pr_http_response_destroy(r);
        }
        PT_EQ_ERR(ngx_send(&r, c, "GET", 1, hosts[i], ngx_srv.tls, "/1m.bin", NULL, NULL), PR_OK);
        if (r) {
            PT_EQ_INT(pr_http_status(r), 200);
            PT_EQ_ERR(NGX_BODY_IS(r, ngx_file("1m.bin"), 1), PR_OK);
            PT_EQ_STR(ngx_hdr(r, "X-Req"), "2");
            pr_http_response_destroy(r);
        }
        pr_conn_destroy(c);
    }
}

PT_TEST(nginx_tls_wrong_name_refused) {
    pr_conn *c, *t;
    pr_err_info e;
    NGX_UP();
    memset(&e, 0, sizeof e);
    PT_EQ_ERR(pr_tcp_connect(&c, "127.0.0.1", (uint16_t)ngx_srv.tls, NULL, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_tls_client(&t, c, "wrong.example", &(pr_tls_opts){ .ca_file = TLS_DIR "/ca.crt" }, &e,
                            pr_deadline_in(5000)),
              PR_ETLS);
    PT_CHECK(e.tls_error != 0);
}

/* Connection: close over TLS: nginx ends with close_notify, so the stream
   after the body reads as a clean PR_ECLOSED, not a truncation. */
PT_TEST(nginx_tls_connection_close_sends_close_notify) {
    static const char *const close_hdr[] = { "Connection: close", NULL };
    pr_conn *c;
    pr_http_response *r;
    NGX_UP();
    PT_EQ_ERR(ngx_connect(&c, ngx_srv.tls, "localhost"), PR_OK);
    if (!c) return;
    PT_EQ_ERR(ngx_send(&r, c, "GET", 1, "localhost", ngx_srv.tls, "/1m.bin", close_hdr, NULL), PR_OK);
    if (r) {
        PT_EQ_INT(pr_http_status(r), 200);
        PT_EQ_STR(ngx_hdr(r, "Connection"), "close");
        PT_EQ_ERR(NGX_BODY_IS(r, ngx_file("1m.bin"), 0), PR_OK);
        PT_EQ_INT(pr_http_reusable(r), 0);
        pr_http_response_destroy(r);
    }
    PT_EQ_ERR((int)pr_conn_read(c, ngx_buf, sizeof ngx_buf, pr_deadline_in(5000)), PR_ECLOSED);
    pr_conn_destroy(c);
}

/* nginx ends an idle keep-alive TLS connection with close_notify: a
   request on it fails with PR_ECLOSED before the first response byte,
   like plain TCP. */
PT_TEST(nginx_tls_idle_keepalive_close_is_eclosed) {
    pr_conn *c;
    pr_http_response *r;
    NGX_UP();
    PT_EQ_ERR(ngx_connect(&c, ngx_srv.tlsshort, "localhost"), PR_OK);
    if (!c) return;
    PT_EQ_ERR(ngx_send(&r, c, "GET", 1, "localhost", ngx_srv.tlsshort, "/small.txt", NULL, NULL), PR_OK);
    if (r) {
        PT_EQ_ERR(NGX_BODY_IS(r, ngx_file("small.txt"), 0), PR_OK);
        PT_EQ_INT(pr_http_reusable(r), 1);
        pr_http_response_destroy(r);
    }
    PT_EQ_ERR(pr_sleep(pr_deadline_in(2200)), PR_OK); /* keepalive_timeout 1s */
    PT_EQ_ERR(ngx_send(&r, c, "GET", 1, "localhost", ngx_srv.tlsshort, "/small.txt", NULL, NULL), PR_ECLOSED);
    PT_CHECK(r == NULL);
    pr_http_response_destroy(r);
    pr_conn_destroy(c);
}

/* nginx gives up on a client that does not read for send_timeout (1 s)
   and closes without close_notify: the body then ends in a TLS truncation
   (PR_ETLS, tls_error PR_TLS_TRUNCATED), never in a clean end. */
PT_TEST(nginx_tls_send_timeout_is_truncation) {
    pr_conn *c;
    pr_http_response *r;
    pr_err_info e;
    ptrdiff_t got;
    size_t total = 0;
    const struct ngx_file *f = ngx_file("16m.bin");
    NGX_UP();
    PT_EQ_ERR(ngx_connect(&c, ngx_srv.tlsshort, "localhost"), PR_OK);
    if (!c) return;
    PT_EQ_ERR(ngx_send(&r, c, "GET", 1, "localhost", ngx_srv.tlsshort, "/16m.bin", NULL, NULL), PR_OK);
    if (!r) {
        pr_conn_destroy(c);
        return;
    }
    PT_EQ_INT(pr_http_status(r), 200);
    PT_EQ_ERR(pr_sleep(pr_deadline_in(2500)), PR_OK); /* nginx's send times out meanwhile */
    while ((got = pr_http_read(r, ngx_buf, sizeof ngx_buf, pr_deadline_in(5000))) > 0) {
        if (total + (size_t)got > f->size || memcmp(ngx_buf, f->data + total, (size_t)got) != 0) {
            pt_fail(__FILE__, __LINE__, "got body bytes at %lu that differ from the file", (unsigned long)total);
            break;
        }
        total += (size_t)got;
    }
    PT_CHECK(total < f->size);
    PT_EQ_ERR((int)got, PR_ETLS);
    memset(&e, 0, sizeof e);
    PT_EQ_ERR(pr_http_last_error(r, &e), PR_OK);
    PT_EQ_INT(e.tls_error, PR_TLS_TRUNCATED);
    PT_EQ_INT(pr_http_reusable(r), 0);
    pr_http_response_destroy(r);
    pr_conn_destroy(c);
}

/* A request on a reused connection that nginx has closed as idle fails
   with PR_ECLOSED before any response byte (what a pool retries on). */
PT_TEST(nginx_idle_keepalive_close_is_eclosed) {
    pr_conn *c;
    pr_http_response *r;
    NGX_UP();
    PT_EQ_ERR(ngx_connect(&c, ngx_srv.shrt, NULL), PR_OK);
    if (!c) return;
    PT_EQ_ERR(ngx_get(&r, c, ngx_srv.shrt, "/small.txt"), PR_OK);
    if (r) {
        PT_EQ_ERR(NGX_BODY_IS(r, ngx_file("small.txt"), 0), PR_OK);
        PT_EQ_INT(pr_http_reusable(r), 1);
        pr_http_response_destroy(r);
    }
    PT_EQ_ERR(pr_sleep(pr_deadline_in(2200)), PR_OK); /* keepalive_timeout 1s */
    PT_EQ_ERR(ngx_get(&r, c, ngx_srv.shrt, "/small.txt"), PR_ECLOSED);
    PT_CHECK(r == NULL);
    pr_http_response_destroy(r);
    pr_conn_destroy(c);
}

/* The suite's last test: stop nginx (atexit covers runs that skip this). */
PT_TEST(nginx_stop) {
    pid_t pid = ngx_srv.pid;
    size_t i;
    if (ngx_state != 1) PT_SKIP("nginx was not started");
    ngxr_stop(&ngx_srv);
    ngx_state = 2;
    PT_CHECK(pid > 0 && kill(pid, 0) != 0);
    for (i = 0; i < sizeof ngx_files / sizeof ngx_files[0]; i++) {
        free(ngx_files[i].data);
        ngx_files[i].data = NULL;
    }
}

const pt_suite pt_suite_nginx = { "nginx", {
    PT_ENTRY(nginx_get_files_byte_exact),
    PT_ENTRY(nginx_chunked_byte_exact),
    PT_ENTRY(nginx_head_and_404_keep_the_connection),
    PT_ENTRY(nginx_keepalive_100_requests_one_connection),
    PT_ENTRY(nginx_tls_get_localhost_and_ip),
    PT_ENTRY(nginx_tls_wrong_name_refused),
    PT_ENTRY(nginx_tls_connection_close_sends_close_notify),
    PT_ENTRY(nginx_tls_idle_keepalive_close_is_eclosed),
    PT_ENTRY(nginx_tls_send_timeout_is_truncation),
    PT_ENTRY(nginx_idle_keepalive_close_is_eclosed),
    PT_ENTRY(nginx_stop),
    {0, 0} } };

#else /* PRISTINE_NO_TLS */

const pt_suite pt_suite_nginx = { "nginx", {
    {0, 0} } };

#endif
