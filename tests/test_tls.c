/* tls: client and server over socketpairs, verification failures, close
   semantics, ALPN, a TLS 1.3-only openssl peer, bulk data, cancellation and
   allocation failures. Certificates come from tests/fixtures/tls_mkcerts.sh
   (the openssl tool), made once per run under build/tls-fixtures. */
#ifndef PRISTINE_NO_TLS
#include <netinet/in.h>
#include <sys/wait.h>

#define TLS_DIR "build/tls-fixtures"

static int tls_fixtures_state; /* 0 = not tried, 1 = ready, -1 = failed */

static int tls_fixtures(void) {
    if (tls_fixtures_state == 0)
        tls_fixtures_state = system("sh tests/fixtures/tls_mkcerts.sh " TLS_DIR) == 0 ? 1 : -1;
    return tls_fixtures_state == 1;
}

#define TLS_NEED_FIXTURES() \
    do { if (!tls_fixtures()) { pt_fail(__FILE__, __LINE__, "got no certificates, want tls_mkcerts.sh to work"); return; } } while (0)

/* A fixture file's contents (libc memory, NUL-terminated), cached for the run. */
static const char *tls_file(const char *name) {
    static struct { char name[32]; char *data; } cache[32];
    char path[128];
    FILE *f;
    long n;
    int i;
    for (i = 0; i < 32 && cache[i].data; i++)
        if (strcmp(cache[i].name, name) == 0) return cache[i].data;
    if (i == 32) return NULL;
    snprintf(path, sizeof path, "%s/%s", TLS_DIR, name);
    if (!(f = fopen(path, "rb"))) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    cache[i].data = (char *)calloc(1, (size_t)n + 1);
    if (!cache[i].data || fread(cache[i].data, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(cache[i].data);
        cache[i].data = NULL;
        return NULL;
    }
    fclose(f);
    snprintf(cache[i].name, sizeof cache[i].name, "%s", name);
    return cache[i].data;
}

/* tls_cfg's servers, while set, require a client certificate from this CA (PEM). */
static const char *tls_require_ca;

/* Server configuration from fixture NAME.crt + NAME.key. */
static int tls_cfg(pr_tls_server_cfg **out, const char *name) {
    char crt[40], key[40];
    const char *c, *k;
    int rc;
    snprintf(crt, sizeof crt, "%s.crt", name);
    snprintf(key, sizeof key, "%s.key", name);
    c = tls_file(crt);
    k = tls_file(key);
    if (!c || !k) return PR_EIO;
    if ((rc = pr_tls_server_cfg_create(out, c, 0, k, 0, NULL)) != PR_OK || !tls_require_ca) return rc;
    if ((rc = pr_tls_server_cfg_require_client_cert(*out, tls_require_ca, 0, NULL)) != PR_OK) {
        pr_tls_server_cfg_destroy(*out);
        *out = NULL;
    }
    return rc;
}

/* pr_tls_opts presenting fixture NAME.crt + NAME.key from memory. */
static pr_tls_opts tls_client_id(const char *name) {
    char crt[40], key[40];
    pr_tls_opts o;
    memset(&o, 0, sizeof o);
    snprintf(crt, sizeof crt, "%s.crt", name);
    snprintf(key, sizeof key, "%s.key", name);
    o.cert_pem = tls_file(crt);
    o.key_pem = tls_file(key);
    return o;
}

/* A connected pair of socket pr_conns; fds[1] is the server's raw fd. */
static size_t tls_pipe_chunk; /* > 0: tls_pair makes a memory pipe reading this many bytes at most */

static int tls_pair(pr_conn **a, pr_conn **b, int fds[2]) {
    int rc;
    *a = *b = NULL;
    if (tls_pipe_chunk) {
        fds[0] = fds[1] = -1;
        return pr_conn_pipe(a, b, tls_pipe_chunk);
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return PR_EIO;
    if ((rc = pr_conn_from_fd(a, fds[0])) != PR_OK) {
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    if ((rc = pr_conn_from_fd(b, fds[1])) != PR_OK) {
        pr_conn_destroy(*a);
        *a = NULL;
        close(fds[1]);
        return rc;
    }
    return PR_OK;
}

enum { TLS_ECHO, TLS_ABRUPT, TLS_BULK, TLS_IDLE, TLS_MUTE, TLS_LATE };

#define TLS_BULK_BYTES (8u << 20)

static unsigned char tls_pattern(size_t i) { return (unsigned char)(i * 131u + (i >> 13)); }

typedef struct tls_srv {
    pr_conn *inner;
    const pr_tls_server_cfg *cfg;
    int fd;       /* the raw socket, for TLS_ABRUPT */
    int mode;
    int hs_rc;    /* handshake result */
    int end_rc;   /* the read that ended the session */
    int ok;       /* the mode's data checks passed */
    pr_err_info end_err; /* detail of end_rc */
    char alpn[32];
} tls_srv;

static unsigned char tls_srv_buf[65536];

static int tls_server_task(void *arg) {
    tls_srv *s = (tls_srv *)arg;
    pr_conn *c;
    ptrdiff_t k;
    size_t i, got = 0;
    s->hs_rc = pr_tls_server(&c, s->inner, s->cfg, NULL, pr_deadline_in(10000));
    if (s->hs_rc != PR_OK) return 0;
    snprintf(s->alpn, sizeof s->alpn, "%s", pr_tls_alpn(c) ? pr_tls_alpn(c) : "");
    if (s->mode == TLS_ECHO) {
        s->ok = pr_conn_write(c, "hi from server", 14, pr_deadline_in(10000)) == PR_OK;
        while ((k = pr_conn_read(c, tls_srv_buf, sizeof tls_srv_buf, pr_deadline_in(10000))) > 0)
            if (pr_conn_write(c, tls_srv_buf, (size_t)k, pr_deadline_in(10000)) != PR_OK) s->ok = 0;
        s->end_rc = (int)k;
        pr_conn_last_error(c, &s->end_err);
        if (k == PR_ECLOSED && pr_conn_shutdown(c, pr_deadline_in(10000)) != PR_OK) s->ok = 0;
    } else if (s->mode == TLS_ABRUPT) {
        s->ok = pr_conn_write(c, "partial", 7, pr_deadline_in(10000)) == PR_OK;
        shutdown(s->fd, SHUT_RDWR); /* TCP-style close with no close_notify */
    } else if (s->mode == TLS_BULK) {
        s->ok = 1;
        while (got < TLS_BULK_BYTES) {
            k = pr_conn_read(c, tls_srv_buf, sizeof tls_srv_buf, pr_deadline_in(20000));
            if (k <= 0) {
                s->ok = 0;
                break;
            }
            for (i = 0; i < (size_t)k; i++)
                if (tls_srv_buf[i] != tls_pattern(got + i)) s->ok = 0;
            got += (size_t)k;
        }
        for (got = 0; s->ok && got < TLS_BULK_BYTES; got += sizeof tls_srv_buf) {
            for (i = 0; i < sizeof tls_srv_buf; i++) tls_srv_buf[i] = tls_pattern(got + i);
            if (pr_conn_write(c, tls_srv_buf, sizeof tls_srv_buf, pr_deadline_in(20000)) != PR_OK) s->ok = 0;
        }
        s->end_rc = (int)pr_conn_read(c, tls_srv_buf, sizeof tls_srv_buf, pr_deadline_in(20000));
        pr_conn_shutdown(c, pr_deadline_in(10000));
    } else if (s->mode == TLS_MUTE || s->mode == TLS_LATE) { /* say hello (LATE: after 300 ms), then read nothing */
        if (s->mode == TLS_LATE) pr_sleep(pr_deadline_in(300));
        s->ok = pr_conn_write(c, "hello", 5, pr_deadline_in(10000)) == PR_OK;
        s->end_rc = pr_sleep(pr_deadline_in(20000)); /* until cancelled */
    } else { /* TLS_IDLE: wait for the client to go */
        s->end_rc = (int)pr_conn_read(c, tls_srv_buf, sizeof tls_srv_buf, PR_FOREVER);
    }
    pr_conn_destroy(c);
    return 0;
}

static int tls_use_system; /* tls_session: leave the CA to the system bundle */

/* Client side of a whole TLS_ECHO session against fixture srv_name.
   Returns pr_tls_client's code; *err gets its detail. On success the
   session (greeting, echo, close_notify both ways) is checked too. */
static int tls_session(const char *srv_name, const char *host, pr_tls_opts *opts, pr_err_info *err,
                       tls_srv *srv_out) {
    pr_tls_server_cfg *cfg = NULL;
    pr_conn *a, *b, *c;
    pr_task *t;
    tls_srv s;
    pr_tls_opts o;
    char buf[64];
    int fds[2], rc;
    memset(&s, 0, sizeof s);
    if (opts) o = *opts;
    else memset(&o, 0, sizeof o);
    if (!tls_use_system && !o.ca_pem && !o.ca_file && !o.anchors && !o.insecure_skip_verify_DANGEROUS)
        o.ca_pem = tls_file("ca.crt");
    if ((rc = tls_cfg(&cfg, srv_name)) != PR_OK) return rc;
    if ((rc = tls_pair(&a, &b, fds)) != PR_OK) {
        pr_tls_server_cfg_destroy(cfg);
        return rc;
    }
    s.inner = b;
    s.cfg = cfg;
    s.fd = fds[1];
    s.mode = TLS_ECHO;
    if ((rc = pr_go(&t, tls_server_task, &s, NULL)) != PR_OK) {
        pr_conn_destroy(a);
        pr_conn_destroy(b);
        pr_tls_server_cfg_destroy(cfg);
        return rc;
    }
    rc = pr_tls_client(&c, a, host, &o, err, pr_deadline_in(10000));
    if (rc == PR_OK) {
        ptrdiff_t k;
        size_t got = 0;
        while (got < 14 && (k = pr_conn_read(c, buf + got, sizeof buf - got, pr_deadline_in(10000))) > 0)
            got += (size_t)k;
        PT_EQ_INT(got, 14);
        PT_EQ_MEM(buf, "hi from server", 14);
        PT_EQ_ERR(pr_conn_write(c, "ping", 4, pr_deadline_in(10000)), PR_OK);
        for (got = 0; got < 4 && (k = pr_conn_read(c, buf + got, 4 - got, pr_deadline_in(10000))) > 0;)
            got += (size_t)k;
        PT_EQ_INT(got, 4);
        PT_EQ_MEM(buf, "ping", 4);
        PT_EQ_ERR(pr_conn_shutdown(c, pr_deadline_in(10000)), PR_OK);
        PT_EQ_ERR((int)pr_conn_read(c, buf, sizeof buf, pr_deadline_in(10000)), PR_ECLOSED);
        pr_conn_destroy(c);
    }
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(15000)), PR_OK);
    if (rc == PR_OK) {
        PT_EQ_ERR(s.hs_rc, PR_OK);
        PT_CHECK(s.ok);
        PT_EQ_ERR(s.end_rc, PR_ECLOSED);
    }
    if (srv_out) *srv_out = s;
    pr_tls_server_cfg_destroy(cfg);
    return rc;
}

static int tls_contains(const char *s, const char *part) { return strstr(s, part) != NULL; }

PT_TEST(tls_handshake_echo_rsa_and_ec) {
    pr_err_info e;
    tls_srv s;
    TLS_NEED_FIXTURES();
    PT_EQ_ERR(tls_session("good", "localhost", NULL, &e, &s), PR_OK);
    PT_EQ_ERR(s.hs_rc, PR_OK);
    PT_EQ_ERR(tls_session("goodec", "localhost", NULL, &e, NULL), PR_OK);
    PT_EQ_ERR(tls_session("good", "LOCALHOST.", NULL, &e, NULL), PR_OK); /* case and one trailing dot */
    PT_EQ_ERR(tls_session("good", "localhost", &(pr_tls_opts){ .ca_file = TLS_DIR "/ca.crt" }, &e, NULL), PR_OK);
}

PT_TEST(tls_wrong_host_refused) {
    pr_err_info e;
    tls_srv s;
    TLS_NEED_FIXTURES();
    PT_EQ_ERR(tls_session("wrong", "localhost", NULL, &e, &s), PR_ETLS);
    PT_EQ_INT(e.code, PR_ETLS);
    PT_EQ_INT(e.tls_error, 56);
    PT_CHECK(tls_contains(e.msg, "bad hostname"));
    PT_CHECK(tls_contains(e.msg, "localhost"));
    PT_EQ_ERR(s.hs_rc, PR_ETLS); /* the server saw the client hang up */
    PT_EQ_ERR(tls_session("good", "example.org", NULL, &e, NULL), PR_ETLS);
    PT_EQ_INT(e.tls_error, 56);
}

PT_TEST(tls_ip_san_checked) {
    pr_err_info e;
    TLS_NEED_FIXTURES();
    PT_EQ_ERR(tls_session("good", "127.0.0.1", NULL, &e, NULL), PR_OK);
    PT_EQ_ERR(tls_session("good", "::1", NULL, &e, NULL), PR_OK);
    PT_EQ_ERR(tls_session("good", "[::1]", NULL, &e, NULL), PR_OK);
    PT_EQ_ERR(tls_session("goodec", "127.0.0.1", NULL, &e, NULL), PR_OK);
    PT_EQ_ERR(tls_session("good", "127.0.0.2", NULL, &e, NULL), PR_ETLS);
    PT_EQ_INT(e.tls_error, 56);
    PT_CHECK(tls_contains(e.msg, "no IP address SAN for 127.0.0.2"));
    PT_EQ_ERR(tls_session("wrong", "::2", NULL, &e, NULL), PR_ETLS);
    PT_EQ_INT(e.tls_error, 56);
}

PT_TEST(tls_expired_refused) {
    pr_err_info e;
    TLS_NEED_FIXTURES();
    PT_EQ_ERR(tls_session("expired", "localhost", NULL, &e, NULL), PR_ETLS);
    PT_EQ_INT(e.tls_error, 54);
    PT_CHECK(tls_contains(e.msg, "expired"));
}

PT_TEST(tls_unknown_ca_refused) {
    pr_err_info e;
    TLS_NEED_FIXTURES();
    PT_EQ_ERR(tls_session("unknown", "localhost", NULL, &e, NULL), PR_ETLS);
    PT_EQ_INT(e.tls_error, 62);
    PT_CHECK(tls_contains(e.msg, "unknown CA"));
    /* trusting only the other CA: the good certificate is unknown too */
    PT_EQ_ERR(tls_session("good", "localhost", &(pr_tls_opts){ .ca_pem = tls_file("other.crt") }, &e, NULL), PR_ETLS);
    PT_EQ_INT(e.tls_error, 62);
}

PT_TEST(tls_anchors_parsed_once_and_shared) {
    pr_tls_anchors *ca = NULL, *other = NULL, *x = NULL;
    pr_err_info e;
    TLS_NEED_FIXTURES();
    PT_EQ_ERR(pr_tls_anchors_create(&ca, TLS_DIR "/ca.crt", NULL, 0, &e), PR_OK);
    PT_EQ_ERR(pr_tls_anchors_create(&other, NULL, tls_file("other.crt"), 0, NULL), PR_OK);
    /* one set, several connections */
    PT_EQ_ERR(tls_session("good", "localhost", &(pr_tls_opts){ .anchors = ca }, &e, NULL), PR_OK);
    PT_EQ_ERR(tls_session("goodec", "127.0.0.1", &(pr_tls_opts){ .anchors = ca }, &e, NULL), PR_OK);
    PT_EQ_ERR(tls_session("unknown", "localhost", &(pr_tls_opts){ .anchors = ca }, &e, NULL), PR_ETLS);
    PT_EQ_INT(e.tls_error, 62);
    /* anchors win over ca_pem */
    PT_EQ_ERR(tls_session("good", "localhost", &(pr_tls_opts){ .anchors = other, .ca_pem = tls_file("ca.crt") }, &e,
                          NULL),
              PR_ETLS);
    PT_EQ_INT(e.tls_error, 62);
    /* bad input */
    PT_EQ_ERR(pr_tls_anchors_create(&x, NULL, NULL, 0, &e), PR_EINVAL);
    PT_EQ_ERR(pr_tls_anchors_create(&x, NULL, "no pem here", 0, &e), PR_EINVAL);
    PT_CHECK(tls_contains(e.msg, "no certificate found in ca_pem"));
    PT_EQ_ERR(pr_tls_anchors_create(&x, TLS_DIR "/does-not-exist.pem", NULL, 0, &e), PR_EIO);
    PT_CHECK(tls_contains(e.msg, "does-not-exist.pem"));
    PT_CHECK(x == NULL);
    pr_tls_anchors_destroy(ca);
    pr_tls_anchors_destroy(other);
    pr_tls_anchors_destroy(NULL);
}

PT_TEST(tls_insecure_accepts_bad_certificates) {
    pr_tls_opts o;
    pr_err_info e;
    TLS_NEED_FIXTURES();
    memset(&o, 0, sizeof o);
    o.insecure_skip_verify_DANGEROUS = 1;
    PT_EQ_ERR(tls_session("expired", "localhost", &o, &e, NULL), PR_OK);
    PT_EQ_ERR(tls_session("unknown", "localhost", &o, &e, NULL), PR_OK);
    PT_EQ_ERR(tls_session("wrong", "127.0.0.9", &o, &e, NULL), PR_OK);
    PT_EQ_ERR(tls_session("goodec", "nowhere.example", &o, &e, NULL), PR_OK);
}

PT_TEST(tls_system_bundle_and_env) {
    pr_err_info e;
    int rc;
    TLS_NEED_FIXTURES();
    /* the real bundle (if any) does not know the test CA */
    tls_use_system = 1;
    pr_tls_global_cleanup();
    unsetenv("SSL_CERT_FILE");
    rc = tls_session("good", "localhost", NULL, &e, NULL);
    if (rc == PR_ETLS) PT_EQ_INT(e.tls_error, 62); /* PR_EIO when there is no bundle */
    else PT_EQ_ERR(rc, PR_EIO);
    /* SSL_CERT_FILE names the bundle; a failed load is not cached */
    pr_tls_global_cleanup();
    setenv("SSL_CERT_FILE", "/nonexistent/bundle.pem", 1);
    PT_EQ_ERR(tls_session("good", "localhost", NULL, &e, NULL), PR_EIO);
    setenv("SSL_CERT_FILE", TLS_DIR "/ca.crt", 1);
    PT_EQ_ERR(tls_session("good", "localhost", NULL, &e, NULL), PR_OK);
    PT_EQ_ERR(tls_session("good", "localhost", NULL, &e, NULL), PR_OK); /* cached */
    pr_tls_global_cleanup();
    unsetenv("SSL_CERT_FILE");
    tls_use_system = 0;
}

PT_TEST(tls_bad_arguments_free_inner) {
    pr_conn *a, *b, *c = NULL;
    pr_err_info e;
    pr_tls_server_cfg *cfg = NULL;
    int fds[2];
    TLS_NEED_FIXTURES();
    PT_REQUIRE(tls_pair(&a, &b, fds) == PR_OK);
    PT_EQ_ERR(pr_tls_client(&c, a, "", NULL, &e, pr_deadline_in(1000)), PR_EINVAL);
    PT_CHECK(c == NULL);
    PT_EQ_ERR(pr_tls_client(&c, b, "localhost", &(pr_tls_opts){ .ca_pem = "no pem here" }, &e,
                            pr_deadline_in(1000)), PR_EINVAL);
    PT_EQ_ERR(pr_tls_client(&c, NULL, "localhost", NULL, NULL, 0), PR_EINVAL);
    PT_EQ_ERR(pr_tls_server_cfg_create(&cfg, tls_file("good.crt"), 0, "junk", 0, NULL), PR_EINVAL);
    PT_EQ_ERR(pr_tls_server_cfg_create(&cfg, "junk", 0, tls_file("good.key"), 0, NULL), PR_EINVAL);
    PT_CHECK(cfg == NULL);
    PT_REQUIRE(tls_cfg(&cfg, "good") == PR_OK);
    PT_EQ_ERR(pr_tls_server_cfg_set_alpn(cfg, "a,b,c,d,e,f,g,h,i"), PR_EINVAL);
    PT_EQ_ERR(pr_tls_server_cfg_set_alpn(cfg, "h2,http/1.1"), PR_OK);
    pr_tls_server_cfg_destroy(cfg);
    pr_tls_server_cfg_destroy(NULL);
    PT_CHECK(pr_tls_alpn(NULL) == NULL);
}

/* Start a server task on a fresh pair; the client end goes to *cl. */
static int tls_start(tls_srv *s, pr_task **t, pr_conn **cl, pr_tls_server_cfg **cfg, const char *name, int mode) {
    pr_conn *b;
    int fds[2], rc;
    memset(s, 0, sizeof *s);
    if ((rc = tls_cfg(cfg, name)) != PR_OK) return rc;
    if ((rc = tls_pair(cl, &b, fds)) != PR_OK) return rc;
    s->inner = b;
    s->cfg = *cfg;
    s->fd = fds[1];
    s->mode = mode;
    rc = pr_go(t, tls_server_task, s, NULL);
    if (rc != PR_OK) {
        pr_conn_destroy(*cl);
        pr_conn_destroy(b);
    }
    return rc;
}

PT_TEST(tls_close_notify_then_eclosed_and_truncation) {
    pr_tls_server_cfg *cfg;
    pr_conn *a, *c;
    pr_task *t;
    tls_srv s;
    pr_err_info e;
    char buf[32];
    size_t got = 0;
    ptrdiff_t k;
    TLS_NEED_FIXTURES();
    /* proper close: the server's close_notify reads as PR_ECLOSED (tls_session
       checks the reverse direction) */
    PT_EQ_ERR(tls_session("good", "localhost", NULL, &e, &s), PR_OK);
    PT_EQ_ERR(s.end_rc, PR_ECLOSED);
    /* abrupt close */
    PT_REQUIRE(tls_start(&s, &t, &a, &cfg, "good", TLS_ABRUPT) == PR_OK);
    PT_EQ_ERR(pr_tls_client(&c, a, "localhost", &(pr_tls_opts){ .ca_pem = tls_file("ca.crt") }, NULL,
                            pr_deadline_in(10000)),
              PR_OK);
    while (got < 7 && (k = pr_conn_read(c, buf + got, sizeof buf - got, pr_deadline_in(10000))) > 0) got += (size_t)k;
    PT_EQ_MEM(buf, "partial", 7);
    PT_EQ_ERR((int)pr_conn_read(c, buf, sizeof buf, pr_deadline_in(10000)), PR_ETLS);
    PT_EQ_ERR(pr_conn_last_error(c, &e), PR_OK);
    PT_EQ_INT(e.code, PR_ETLS);
    PT_EQ_INT(e.tls_error, PR_TLS_TRUNCATED);
    PT_EQ_STR(e.msg, "peer closed without close_notify (truncated)");
    PT_EQ_ERR((int)pr_conn_read(c, buf, sizeof buf, pr_deadline_in(10000)), PR_ETLS); /* sticky */
    pr_conn_destroy(c);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(10000)), PR_OK);
    PT_CHECK(s.ok);
    pr_tls_server_cfg_destroy(cfg);
}

PT_TEST(tls_alpn_negotiated) {
    pr_tls_server_cfg *cfg;
    pr_conn *a, *c;
    pr_task *t;
    tls_srv s;
    TLS_NEED_FIXTURES();
    PT_EQ_ERR(tls_session("good", "localhost", NULL, NULL, &s), PR_OK);
    PT_EQ_STR(s.alpn, "http/1.1"); /* both defaults */
    /* client offers x-test and http/1.1; the server prefers h2, then http/1.1 */
    PT_REQUIRE(tls_start(&s, &t, &a, &cfg, "good", TLS_IDLE) == PR_OK);
    PT_EQ_ERR(pr_tls_server_cfg_set_alpn(cfg, "h2,http/1.1"), PR_OK);
    PT_EQ_ERR(pr_tls_client(&c, a, "localhost",
                            &(pr_tls_opts){ .ca_pem = tls_file("ca.crt"), .alpn = "x-test,http/1.1" }, NULL,
                            pr_deadline_in(10000)), PR_OK);
    PT_EQ_STR(pr_tls_alpn(c), "http/1.1");
    pr_conn_destroy(c);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(10000)), PR_OK);
    PT_EQ_STR(s.alpn, "http/1.1");
    PT_EQ_ERR(s.end_rc, PR_ECLOSED); /* destroy sent close_notify */
    pr_tls_server_cfg_destroy(cfg);
    /* no ALPN offered */
    PT_REQUIRE(tls_start(&s, &t, &a, &cfg, "good", TLS_IDLE) == PR_OK);
    PT_EQ_ERR(pr_tls_client(&c, a, "localhost", &(pr_tls_opts){ .ca_pem = tls_file("ca.crt"), .alpn = "" }, NULL,
                            pr_deadline_in(10000)), PR_OK);
    PT_CHECK(pr_tls_alpn(c) == NULL);
    pr_conn_destroy(c);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(10000)), PR_OK);
    PT_EQ_STR(s.alpn, "");
    pr_tls_server_cfg_destroy(cfg);
}

static unsigned char tls_cli_buf[65536];

PT_TEST(tls_large_transfer_both_ways) {
    pr_tls_server_cfg *cfg;
    pr_conn *a, *c;
    pr_task *t;
    tls_srv s;
    size_t got, i;
    int ok = 1;
    TLS_NEED_FIXTURES();
    PT_REQUIRE(tls_start(&s, &t, &a, &cfg, "good", TLS_BULK) == PR_OK);
    PT_EQ_ERR(pr_tls_client(&c, a, "localhost", &(pr_tls_opts){ .ca_pem = tls_file("ca.crt") }, NULL,
                            pr_deadline_in(10000)),
              PR_OK);
    for (got = 0; c && got < TLS_BULK_BYTES; got += sizeof tls_cli_buf) {
        for (i = 0; i < sizeof tls_cli_buf; i++) tls_cli_buf[i] = tls_pattern(got + i);
        if (pr_conn_write(c, tls_cli_buf, sizeof tls_cli_buf, pr_deadline_in(20000)) != PR_OK) {
            ok = 0;
            break;
        }
    }
    for (got = 0; c && ok && got < TLS_BULK_BYTES;) {
        ptrdiff_t k = pr_conn_read(c, tls_cli_buf, sizeof tls_cli_buf, pr_deadline_in(20000));
        if (k <= 0) {
            ok = 0;
            break;
        }
        for (i = 0; i < (size_t)k; i++)
            if (tls_cli_buf[i] != tls_pattern(got + i)) ok = 0;
        got += (size_t)k;
    }
    PT_CHECK(ok);
    PT_EQ_INT(got, TLS_BULK_BYTES);
    if (c) {
        PT_EQ_ERR(pr_conn_shutdown(c, pr_deadline_in(10000)), PR_OK);
        pr_conn_destroy(c);
    }
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(20000)), PR_OK);
    PT_CHECK(s.ok);
    PT_EQ_ERR(s.end_rc, PR_ECLOSED);
    pr_tls_server_cfg_destroy(cfg);
}

/* ---- cancellation and deadlines ---- */
typedef struct tls_blocked {
    pr_conn *inner;
    pr_conn *tls; /* set for the read case: an established connection */
    int rc;
    int64_t deadline;
} tls_blocked;

static int tls_handshake_task(void *arg) {
    tls_blocked *b = (tls_blocked *)arg;
    pr_conn *c;
    b->rc = pr_tls_client(&c, b->inner, "localhost", &(pr_tls_opts){ .insecure_skip_verify_DANGEROUS = 1 }, NULL,
                          b->deadline);
    if (b->rc == PR_OK) pr_conn_destroy(c);
    return 0;
}

static int tls_read_task(void *arg) {
    tls_blocked *b = (tls_blocked *)arg;
    char buf[16];
    b->rc = (int)pr_conn_read(b->tls, buf, sizeof buf, b->deadline);
    return 0;
}

PT_TEST(tls_cancel_and_timeout) {
    pr_tls_server_cfg *cfg;
    pr_conn *a, *b, *c;
    pr_task *t, *st;
    tls_srv s;
    tls_blocked bl;
    int fds[2];
    TLS_NEED_FIXTURES();
    /* handshake against a silent peer: cancelled */
    PT_REQUIRE(tls_pair(&a, &b, fds) == PR_OK);
    memset(&bl, 0, sizeof bl);
    bl.inner = a;
    bl.deadline = PR_FOREVER;
    PT_REQUIRE(pr_go(&t, tls_handshake_task, &bl, NULL) == PR_OK);
    pr_sleep(pr_deadline_in(30));
    PT_EQ_ERR(pr_cancel(t), PR_OK);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(bl.rc, PR_ECANCELED);
    pr_conn_destroy(b);
    /* ... and timed out */
    PT_REQUIRE(tls_pair(&a, &b, fds) == PR_OK);
    bl.inner = a;
    bl.deadline = pr_deadline_in(50);
    PT_REQUIRE(pr_go(&t, tls_handshake_task, &bl, NULL) == PR_OK);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(bl.rc, PR_ETIMEDOUT);
    pr_conn_destroy(b);
    /* a read on an idle established connection: timed out, then cancelled */
    PT_REQUIRE(tls_start(&s, &st, &a, &cfg, "good", TLS_IDLE) == PR_OK);
    PT_EQ_ERR(pr_tls_client(&c, a, "localhost", &(pr_tls_opts){ .ca_pem = tls_file("ca.crt") }, NULL,
                            pr_deadline_in(10000)),
              PR_OK);
    {
        char x;
        PT_EQ_ERR((int)pr_conn_read(c, &x, 1, pr_deadline_in(20)), PR_ETIMEDOUT);
    }
    bl.tls = c;
    bl.deadline = PR_FOREVER;
    PT_REQUIRE(pr_go(&t, tls_read_task, &bl, NULL) == PR_OK);
    pr_sleep(pr_deadline_in(30));
    PT_EQ_ERR(pr_cancel(t), PR_OK);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(bl.rc, PR_ECANCELED);
    /* still usable after both */
    PT_EQ_ERR(pr_conn_shutdown(c, pr_deadline_in(5000)), PR_OK);
    pr_conn_destroy(c);
    PT_EQ_ERR(pr_join(st, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(s.end_rc, PR_ECLOSED);
    pr_tls_server_cfg_destroy(cfg);
}

/* Destroying a connection while another task waits in its read is the way
   to abort that read: the reader gets PR_ECLOSED, nothing is used after free
   (ASan checks that in SAN=1 runs). */
PT_TEST(tls_destroy_under_blocked_reader) {
    pr_tls_server_cfg *cfg;
    pr_conn *a, *c;
    pr_task *t, *st;
    tls_srv s;
    tls_blocked bl;
    TLS_NEED_FIXTURES();
    PT_REQUIRE(tls_start(&s, &st, &a, &cfg, "good", TLS_IDLE) == PR_OK);
    PT_EQ_ERR(pr_tls_client(&c, a, "localhost", &(pr_tls_opts){ .ca_pem = tls_file("ca.crt") }, NULL,
                            pr_deadline_in(10000)),
              PR_OK);
    memset(&bl, 0, sizeof bl);
    bl.tls = c;
    bl.deadline = pr_deadline_in(5000);
    PT_REQUIRE(pr_go(&t, tls_read_task, &bl, NULL) == PR_OK);
    pr_sleep(pr_deadline_in(20)); /* the reader waits inside the TLS read */
    pr_conn_destroy(c);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(bl.rc, PR_ECLOSED);
    PT_EQ_ERR(pr_join(st, NULL, pr_deadline_in(5000)), PR_OK);
    pr_tls_server_cfg_destroy(cfg);
}

/* A peer that answers the ClientHello in plain HTTP, in HTTP/0.9-style
   text (Python's http.server sends an HTML page with no status line), or
   in other bytes gets a message saying it does not speak TLS. */
static const char *tls_plain_answer;

static int tls_plain_http_peer(void *arg) {
    pr_conn *c = (pr_conn *)arg;
    char buf[512];
    if (pr_conn_read(c, buf, sizeof buf, pr_deadline_in(5000)) > 0)
        pr_conn_write(c, tls_plain_answer, strlen(tls_plain_answer), pr_deadline_in(5000));
    pr_conn_destroy(c);
    return 0;
}

PT_TEST(tls_peer_not_speaking_tls) {
    static const struct { const char *answer, *msg; } cases[] = {
        { "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
          "TLS handshake failed: the peer does not speak TLS (it answered in plain HTTP)" },
        { "<!DOCTYPE HTML>\n<html lang=\"en\">\n",
          "TLS handshake failed: the peer does not speak TLS (it answered with text: \"<!DOC...\")" },
        { "\x01\x02\x03\x04\x05\x06garbage",
          "TLS handshake failed: the peer does not speak TLS (its first byte 0x01 is no TLS record)" },
    };
    size_t i;
    TLS_NEED_FIXTURES();
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pr_conn *a, *b, *c = NULL;
        pr_task *t;
        pr_err_info e;
        int fds[2];
        PT_REQUIRE(tls_pair(&a, &b, fds) == PR_OK);
        tls_plain_answer = cases[i].answer;
        PT_REQUIRE(pr_go(&t, tls_plain_http_peer, b, NULL) == PR_OK);
        memset(&e, 0, sizeof e);
        PT_EQ_ERR(pr_tls_client(&c, a, "localhost", &(pr_tls_opts){ .ca_pem = tls_file("ca.crt") }, &e,
                                pr_deadline_in(5000)),
                  PR_ETLS);
        PT_EQ_STR(e.msg, cases[i].msg);
        PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(5000)), PR_OK);
    }
}

PT_TEST(tls_alloc_failure_sweep) {
    long n;
    int rc, ok = 0;
    pr_err_info e;
    pr_tls_opts o;
    TLS_NEED_FIXTURES();
    tls_file("ca.crt");
    tls_file("good.crt");
    tls_file("good.key");
    for (n = 1; n < 400; n++) {
        pt_alloc_fail_nth(n);
        rc = tls_session("good", "127.0.0.1", NULL, &e, NULL);
        if (__atomic_load_n(&pt__mem.fail_nth, __ATOMIC_RELAXED) > 0) { /* the failure never came */
            pt_alloc_fail_nth(0);
            PT_EQ_ERR(rc, PR_OK);
            ok = 1;
            break;
        }
        pt_alloc_fail_nth(0);
        if (rc != PR_OK && rc != PR_ENOMEM && rc != PR_ETLS && rc != PR_ECLOSED && rc != PR_EIO)
            pt_fail(__FILE__, __LINE__, "fail-nth %ld: got %s", n, pt_errname(rc));
    }
    PT_CHECK(ok);
    /* mutual TLS: the client parses its certificate per connection, the server its client CAs */
    o = tls_client_id("clientec");
    tls_file("clientec.crt");
    tls_require_ca = tls_file("ca.crt");
    for (ok = 0, n = 1; n < 400; n++) {
        pt_alloc_fail_nth(n);
        rc = tls_session("good", "127.0.0.1", &o, &e, NULL);
        if (__atomic_load_n(&pt__mem.fail_nth, __ATOMIC_RELAXED) > 0) {
            pt_alloc_fail_nth(0);
            PT_EQ_ERR(rc, PR_OK);
            ok = 1;
            break;
        }
        pt_alloc_fail_nth(0);
        if (rc != PR_OK && rc != PR_ENOMEM && rc != PR_ETLS && rc != PR_ECLOSED && rc != PR_EIO)
            pt_fail(__FILE__, __LINE__, "fail-nth %ld: got %s", n, pt_errname(rc));
    }
    tls_require_ca = NULL;
    PT_CHECK(ok);
}

/* ---- a TLS 1.3-only peer (openssl s_server) ---- */
static int tls_free_port(void) {
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd < 0) return -1;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* Connect to 127.0.0.1:port, retrying refusals until the deadline. */
static int tls_connect_local(pr_conn **out, int port, int64_t deadline) {
    for (;;) {
        struct sockaddr_in sa;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err = 0, rc;
        socklen_t len = sizeof err;
        if (fd < 0) return PR_EIO;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = htons((uint16_t)port);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            if (errno == EINPROGRESS) {
                rc = pr_fd_wait(fd, PR_WAIT_WRITE, deadline);
                if (rc == PR_OK && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
                pr_fd_forget(fd);
                if (rc != PR_OK) {
                    close(fd);
                    return rc;
                }
            } else {
                err = errno;
            }
        }
        if (err == 0) {
            if ((rc = pr_conn_from_fd(out, fd)) != PR_OK) close(fd);
            return rc;
        }
        close(fd);
        if (err != ECONNREFUSED || pr_now() >= deadline) return PR_EIO;
        if ((rc = pr_sleep(pr_deadline_min(deadline, pr_deadline_in(50)))) != PR_OK) return rc;
    }
}

PT_TEST(tls_tls13_only_peer_fails_clearly) {
    char portarg[32];
    int port, status, rc, keep[2];
    pid_t pid;
    pr_conn *a, *c = NULL;
    pr_err_info e;
    int64_t t0;
    TLS_NEED_FIXTURES();
    if (system("openssl version >/dev/null 2>&1") != 0) PT_SKIP("no openssl tool");
    PT_REQUIRE((port = tls_free_port()) > 0);
    snprintf(portarg, sizeof portarg, "127.0.0.1:%d", port);
    PT_REQUIRE(pipe(keep) == 0); /* s_server quits at EOF on stdin: give it one that stays open */
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        close(keep[0]);
        close(keep[1]);
    }
    PT_REQUIRE(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        dup2(keep[0], 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp("openssl", "openssl", "s_server", "-tls1_3", "-accept", portarg, "-cert", TLS_DIR "/good.crt", "-key",
               TLS_DIR "/good.key", "-naccept", "1", (char *)NULL);
        _exit(127);
    }
    close(keep[0]);
    t0 = pr_now();
    rc = tls_connect_local(&a, port, pr_deadline_in(10000));
    PT_EQ_ERR(rc, PR_OK);
    if (rc == PR_OK) {
        rc = pr_tls_client(&c, a, "localhost", &(pr_tls_opts){ .ca_pem = tls_file("ca.crt") }, &e,
                           pr_deadline_in(10000));
        PT_EQ_ERR(rc, PR_ETLS);
        if (rc == PR_OK) pr_conn_destroy(c);
        PT_EQ_INT(e.tls_error, 256 + 70);
        PT_CHECK(tls_contains(e.msg, "protocol version"));
        PT_CHECK(pr_now() - t0 < 10000);
    }
    kill(pid, SIGTERM);
    close(keep[1]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

PT_TEST(tls_prefers_aes_gcm_with_aesni) {
    pr_tls_server_cfg *cfg;
    pr_conn *a, *c;
    pr_task *t;
    tls_srv s;
    int aesni = br_aes_x86ni_ctr_get_vtable() != NULL && br_ghash_pclmul_get() != 0;
    TLS_NEED_FIXTURES();
    PT_REQUIRE(tls_start(&s, &t, &a, &cfg, "good", TLS_IDLE) == PR_OK);
    PT_EQ_ERR(pr_tls_client(&c, a, "localhost", &(pr_tls_opts){ .ca_pem = tls_file("ca.crt") }, NULL,
                            pr_deadline_in(10000)),
              PR_OK);
    if (c) {
        unsigned suite = ((pr__tls_conn *)c)->u.c.eng.session.cipher_suite;
        PT_EQ_INT(suite, aesni ? BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 : BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256);
        PT_EQ_INT(((pr__tls_conn *)c)->u.c.eng.session.version, BR_TLS12);
        pr_conn_destroy(c);
    }
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(10000)), PR_OK);
    pr_tls_server_cfg_destroy(cfg);
}

PT_TEST(tls_over_memory_pipe_byte_by_byte) {
    pr_err_info e;
    TLS_NEED_FIXTURES();
    tls_pipe_chunk = 1;
    PT_EQ_ERR(tls_session("good", "localhost", NULL, &e, NULL), PR_OK);
    tls_pipe_chunk = 7;
    PT_EQ_ERR(tls_session("goodec", "127.0.0.1", NULL, &e, NULL), PR_OK);
    PT_EQ_ERR(tls_session("expired", "localhost", NULL, &e, NULL), PR_ETLS);
    PT_EQ_INT(e.tls_error, 54);
    tls_pipe_chunk = 0;
}

/* A pr_conn that forwards to inner and flips one byte of the written stream. */
typedef struct tls_flip {
    pr_conn base;
    pr_conn *inner;
    long long off, flip_at; /* stream offset written so far; the byte to flip (-1 = none) */
} tls_flip;

static unsigned char tls_flip_buf[BR_SSL_BUFSIZE_OUTPUT];

static ptrdiff_t tls_flip_read(pr_conn *c, void *buf, size_t n, int64_t deadline) {
    return pr_conn_read(((tls_flip *)c)->inner, buf, n, deadline);
}

static ptrdiff_t tls_flip_write(pr_conn *c, const void *buf, size_t n, int64_t deadline) {
    tls_flip *f = (tls_flip *)c;
    ptrdiff_t k;
    n = n < sizeof tls_flip_buf ? n : sizeof tls_flip_buf;
    memcpy(tls_flip_buf, buf, n);
    if (f->flip_at >= f->off && f->flip_at < f->off + (long long)n) tls_flip_buf[f->flip_at - f->off] ^= 0x40;
    k = f->inner->ops->write(f->inner, tls_flip_buf, n, deadline);
    if (k > 0) f->off += k;
    return k;
}

static int tls_flip_shutdown(pr_conn *c, int64_t deadline) { return pr_conn_shutdown(((tls_flip *)c)->inner, deadline); }

static void tls_flip_destroy(pr_conn *c) {
    pr_conn_destroy(((tls_flip *)c)->inner);
    pr__free(c, sizeof(tls_flip));
}

static const pr_conn_ops tls_flip_ops = { tls_flip_read, tls_flip_write, tls_flip_shutdown, tls_flip_destroy };

PT_TEST(tls_corrupted_record_fails_with_bad_mac) {
    pr_tls_server_cfg *cfg;
    pr_conn *a, *c;
    pr_task *t;
    tls_srv s;
    tls_flip *f;
    char buf[64];
    size_t got = 0;
    ptrdiff_t k;
    TLS_NEED_FIXTURES();
    PT_REQUIRE(tls_start(&s, &t, &a, &cfg, "good", TLS_ECHO) == PR_OK);
    f = (tls_flip *)pr__calloc(1, sizeof *f);
    PT_REQUIRE(f != NULL);
    f->base.ops = &tls_flip_ops;
    f->inner = a;
    f->flip_at = -1;
    PT_EQ_ERR(pr_tls_client(&c, &f->base, "localhost", &(pr_tls_opts){ .ca_pem = tls_file("ca.crt") }, NULL,
                            pr_deadline_in(10000)), PR_OK);
    while (got < 14 && (k = pr_conn_read(c, buf + got, sizeof buf - got, pr_deadline_in(10000))) > 0) got += (size_t)k;
    f->flip_at = f->off + 20; /* inside the next record's ciphertext */
    PT_EQ_ERR(pr_conn_write(c, "ping ping ping ping ping", 24, pr_deadline_in(10000)), PR_OK);
    PT_EQ_ERR((int)pr_conn_read(c, buf, sizeof buf, pr_deadline_in(10000)), PR_ETLS); /* alert or cut */
    pr_conn_destroy(c);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(10000)), PR_OK);
    PT_EQ_ERR(s.end_rc, PR_ETLS);
    PT_EQ_INT(s.end_err.tls_error, 7);
    PT_CHECK(tls_contains(s.end_err.msg, "bad record MAC"));
    pr_tls_server_cfg_destroy(cfg);
}

/* The full-duplex rule: while a write is stuck (the peer reads nothing),
   records that arrive are still taken in, and a read gets them. */
static unsigned char tls_big[4u << 20];

typedef struct tls_wr {
    pr_conn *c;
    int rc;
} tls_wr;

static int tls_writer_task(void *arg) {
    tls_wr *w = (tls_wr *)arg;
    w->rc = pr_conn_write(w->c, tls_big, sizeof tls_big, pr_deadline_in(3000));
    return 0;
}

PT_TEST(tls_read_while_write_stuck) {
    pr_tls_server_cfg *cfg;
    pr_conn *a, *c;
    pr_task *t, *wt;
    tls_srv s;
    tls_wr w;
    char buf[16];
    TLS_NEED_FIXTURES();
    /* one task: the write times out; the hello that came meanwhile is there
       at once, although our last record is still unsent */
    PT_REQUIRE(tls_start(&s, &t, &a, &cfg, "good", TLS_MUTE) == PR_OK);
    PT_EQ_ERR(pr_tls_client(&c, a, "localhost", &(pr_tls_opts){ .ca_pem = tls_file("ca.crt") }, NULL,
                            pr_deadline_in(10000)),
              PR_OK);
    PT_EQ_ERR(pr_conn_write(c, tls_big, sizeof tls_big, pr_deadline_in(500)), PR_ETIMEDOUT);
    PT_EQ_INT((int)pr_conn_read(c, buf, sizeof buf, pr_deadline_in(5000)), 5);
    PT_EQ_MEM(buf, "hello", 5);
    pr_conn_destroy(c);
    pr_cancel(t);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(10000)), PR_OK);
    PT_CHECK(s.ok);
    pr_tls_server_cfg_destroy(cfg);
    /* two tasks: a reader entering while the writer waits on both directions
       takes over the reading */
    PT_REQUIRE(tls_start(&s, &t, &a, &cfg, "good", TLS_LATE) == PR_OK);
    PT_EQ_ERR(pr_tls_client(&c, a, "localhost", &(pr_tls_opts){ .ca_pem = tls_file("ca.crt") }, NULL,
                            pr_deadline_in(10000)),
              PR_OK);
    w.c = c;
    w.rc = 1;
    PT_REQUIRE(pr_go(&wt, tls_writer_task, &w, NULL) == PR_OK);
    pr_sleep(pr_deadline_in(100));
    PT_EQ_INT((int)pr_conn_read(c, buf, sizeof buf, pr_deadline_in(5000)), 5);
    PT_EQ_MEM(buf, "hello", 5);
    PT_EQ_ERR(pr_join(wt, NULL, pr_deadline_in(10000)), PR_OK);
    PT_EQ_ERR(w.rc, PR_ETIMEDOUT);
    pr_conn_destroy(c);
    pr_cancel(t);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(10000)), PR_OK);
    PT_CHECK(s.ok);
    pr_tls_server_cfg_destroy(cfg);
}

/* ---- client certificates (mutual TLS) ---- */
#include "../tools/testserver.c" /* guarded: test_server.c includes it too */

PT_TEST(tls_client_cert_required_by_server) {
    pr_tls_identity *id = NULL;
    pr_tls_opts o;
    pr_err_info e;
    tls_srv s;
    TLS_NEED_FIXTURES();
    tls_require_ca = tls_file("ca.crt");
    PT_REQUIRE(tls_require_ca != NULL);
    /* RSA and EC certificates from the trusted CA, from memory and from files */
    o = tls_client_id("client");
    PT_REQUIRE(o.cert_pem && o.key_pem);
    PT_EQ_ERR(tls_session("good", "localhost", &o, &e, &s), PR_OK);
    PT_EQ_ERR(s.hs_rc, PR_OK);
    PT_EQ_ERR(tls_session("goodec", "localhost", &o, &e, NULL), PR_OK);
    memset(&o, 0, sizeof o);
    o.cert_file = TLS_DIR "/clientec.crt";
    o.key_file = TLS_DIR "/clientec.key";
    PT_EQ_ERR(tls_session("good", "localhost", &o, &e, &s), PR_OK);
    PT_EQ_ERR(s.hs_rc, PR_OK);
    /* parsed once, shared by connections */
    PT_EQ_ERR(pr_tls_identity_create(&id, TLS_DIR "/client.crt", NULL, 0, NULL, tls_file("client.key"), 0, &e),
              PR_OK);
    memset(&o, 0, sizeof o);
    o.identity = id;
    PT_EQ_ERR(tls_session("good", "localhost", &o, &e, NULL), PR_OK);
    PT_EQ_ERR(tls_session("goodec", "127.0.0.1", &o, &e, NULL), PR_OK);
    /* a certificate from a CA the server does not trust: refused, both sides say so */
    o = tls_client_id("clientother");
    PT_EQ_ERR(tls_session("good", "localhost", &o, &e, &s), PR_ETLS);
    PT_EQ_INT(e.code, PR_ETLS);
    PT_EQ_INT(e.tls_error, PR_TLS_CLIENT_CERT_REFUSED);
    PT_EQ_ERR(s.hs_rc, PR_ETLS);
    /* no certificate at all */
    PT_EQ_ERR(tls_session("good", "localhost", NULL, &e, &s), PR_ETLS);
    PT_EQ_INT(e.tls_error, PR_TLS_NO_CLIENT_CERT);
    PT_EQ_ERR(s.hs_rc, PR_ETLS);
    PT_EQ_ERR(tls_session("goodec", "localhost", NULL, &e, NULL), PR_ETLS);
    PT_EQ_INT(e.tls_error, PR_TLS_NO_CLIENT_CERT);
    tls_require_ca = NULL;
    /* a server that does not ask: a client with a certificate connects as before */
    o = tls_client_id("client");
    PT_EQ_ERR(tls_session("good", "localhost", &o, &e, NULL), PR_OK);
    memset(&o, 0, sizeof o);
    o.identity = id;
    PT_EQ_ERR(tls_session("goodec", "localhost", &o, &e, NULL), PR_OK);
    pr_tls_identity_destroy(id);
    pr_tls_identity_destroy(NULL);
}

/* A client trusting the test CA, one attempt per request, no proxy from the environment. */
static pr_http_client_opts tls_http_opts(void) {
    pr_http_client_opts o;
    memset(&o, 0, sizeof o);
    o.ignore_env = 1;
    o.retry.max_retries = PR_RETRY_OFF;
    o.tls.ca_pem = tls_file("ca.crt");
    return o;
}

PT_TEST(tls_client_cert_bad_input_refused_early) {
    pr_tls_identity *id = NULL;
    pr_tls_server_cfg *cfg = NULL;
    pr_http_client *c = NULL;
    pr_http_client_opts ho;
    pr_conn *a, *b, *t = NULL;
    pr_err_info e;
    int fds[2];
    TLS_NEED_FIXTURES();
    /* no certificate, no key, a key of another certificate, half a pair */
    PT_EQ_ERR(pr_tls_identity_create(&id, NULL, "junk", 0, NULL, tls_file("client.key"), 0, &e), PR_EINVAL);
    PT_EQ_ERR(pr_tls_identity_create(&id, NULL, tls_file("client.crt"), 0, NULL, "junk", 0, &e), PR_EINVAL);
    PT_EQ_ERR(pr_tls_identity_create(&id, NULL, tls_file("client.crt"), 0, NULL, tls_file("clientec.key"), 0, &e),
              PR_EINVAL);
    PT_EQ_ERR(pr_tls_identity_create(&id, NULL, tls_file("client.crt"), 0, NULL, tls_file("good.key"), 0, &e),
              PR_EINVAL);
    PT_EQ_ERR(pr_tls_identity_create(&id, NULL, tls_file("clientec.crt"), 0, NULL, tls_file("goodec.key"), 0, &e),
              PR_EINVAL);
    PT_EQ_ERR(pr_tls_identity_create(&id, NULL, NULL, 0, NULL, tls_file("client.key"), 0, &e), PR_EINVAL);
    PT_EQ_ERR(pr_tls_identity_create(&id, NULL, tls_file("client.crt"), 0, NULL, NULL, 0, &e), PR_EINVAL);
    PT_EQ_ERR(pr_tls_identity_create(&id, TLS_DIR "/nope.crt", NULL, 0, TLS_DIR "/client.key", NULL, 0, &e), PR_EIO);
    PT_EQ_ERR(pr_tls_identity_create(NULL, NULL, tls_file("client.crt"), 0, NULL, tls_file("client.key"), 0, &e),
              PR_EINVAL);
    PT_CHECK(id == NULL);
    /* the same through pr_tls_client, before any byte is sent; inner is freed */
    PT_REQUIRE(tls_pair(&a, &b, fds) == PR_OK);
    PT_EQ_ERR(pr_tls_client(&t, a, "localhost", &(pr_tls_opts){ .ca_pem = tls_file("ca.crt"), .key_pem = tls_file("client.key") },
                            &e, pr_deadline_in(1000)),
              PR_EINVAL);
    PT_EQ_ERR(pr_tls_client(&t, b, "localhost", &(pr_tls_opts){ .ca_pem = tls_file("ca.crt"), .cert_pem = "junk", .key_pem = tls_file("client.key") },
                            &e, pr_deadline_in(1000)),
              PR_EINVAL);
    PT_CHECK(t == NULL);
    /* and through pr_http_client_create: at create, not at the first connect */
    ho = tls_http_opts();
    ho.tls.cert_pem = tls_file("client.crt");
    PT_EQ_ERR(pr_http_client_create(&c, &ho, &e), PR_EINVAL);
    ho.tls.key_pem = "junk";
    PT_EQ_ERR(pr_http_client_create(&c, &ho, &e), PR_EINVAL);
    ho.tls.cert_pem = NULL;
    ho.tls.key_pem = tls_file("client.key");
    PT_EQ_ERR(pr_http_client_create(&c, &ho, &e), PR_EINVAL);
    ho.tls.key_pem = NULL;
    ho.tls.cert_file = TLS_DIR "/client.crt";
    ho.tls.key_file = TLS_DIR "/nope.key";
    PT_EQ_ERR(pr_http_client_create(&c, &ho, &e), PR_EIO);
    PT_CHECK(c == NULL);
    /* a server's list of client CAs must hold one */
    PT_REQUIRE(tls_cfg(&cfg, "good") == PR_OK);
    PT_EQ_ERR(pr_tls_server_cfg_require_client_cert(cfg, "junk", 0, &e), PR_EINVAL);
    PT_EQ_ERR(pr_tls_server_cfg_require_client_cert(cfg, NULL, 0, &e), PR_EINVAL);
    PT_EQ_ERR(pr_tls_server_cfg_require_client_cert(NULL, tls_file("ca.crt"), 0, &e), PR_EINVAL);
    /* a server key that is not its certificate's */
    pr_tls_server_cfg_destroy(cfg);
    cfg = NULL;
    PT_EQ_ERR(pr_tls_server_cfg_create(&cfg, tls_file("good.crt"), 0, tls_file("client.key"), 0, &e), PR_EINVAL);
    PT_CHECK(cfg == NULL);
}

/* Handshake with the test server on 127.0.0.1:port; PR_OK or the failure. */
static int tls_tcp_handshake(int port, const pr_tls_opts *o, pr_err_info *e) {
    pr_conn *raw = NULL, *t = NULL;
    int rc = tls_connect_local(&raw, port, pr_deadline_in(5000));
    if (rc != PR_OK) return rc;
    rc = pr_tls_client(&t, raw, "127.0.0.1", o, e, pr_deadline_in(10000));
    pr_conn_destroy(t);
    return rc;
}

PT_TEST(tls_client_cert_over_tcp_and_http_client) {
    ts_server *srv = NULL;
    ts_opts so;
    pr_http_client *c = NULL;
    pr_http_client_opts ho;
    pr_http_response *r = NULL;
    pr_tls_opts o;
    pr_err_info e;
    char url[64], cert[64];
    TLS_NEED_FIXTURES();
    memset(&so, 0, sizeof so);
    so.max_lifetime_ms = 30000;
    so.tls_cert_file = TLS_DIR "/good.crt";
    so.tls_key_file = TLS_DIR "/good.key";
    so.tls_client_ca_file = TLS_DIR "/ca.crt";
    PT_REQUIRE(ts_start(&srv, &so) == PR_OK);
    snprintf(url, sizeof url, "https://127.0.0.1:%u/", (unsigned)ts_port(srv));
    /* pr_http_client: the files parsed at create (the caller's strings may go), shared by connections */
    ho = tls_http_opts();
    snprintf(cert, sizeof cert, "%s", TLS_DIR "/client.crt");
    ho.tls.cert_file = cert;
    ho.tls.key_pem = tls_file("client.key");
    PT_REQUIRE(pr_http_client_create(&c, &ho, &e) == PR_OK);
    memset(cert, 'x', sizeof cert - 1);
    PT_EQ_ERR(pr_http_client_get(c, &r, url, &e, pr_deadline_in(10000)), PR_OK);
    PT_EQ_INT(pr_http_status(r), 200);
    pr_http_response_destroy(r);
    r = NULL;
    snprintf(url, sizeof url, "https://127.0.0.1:%u/?close=1", (unsigned)ts_port(srv));
    PT_EQ_ERR(pr_http_client_get(c, &r, url, &e, pr_deadline_in(10000)), PR_OK);
    PT_EQ_INT(pr_http_status(r), 200);
    pr_http_response_destroy(r);
    r = NULL;
    pr_http_client_destroy(c);
    c = NULL;
    /* no certificate: the distinct error, through the client too */
    ho = tls_http_opts();
    PT_REQUIRE(pr_http_client_create(&c, &ho, &e) == PR_OK);
    PT_EQ_ERR(pr_http_client_get(c, &r, url, &e, pr_deadline_in(10000)), PR_ETLS);
    PT_EQ_INT(e.tls_error, PR_TLS_NO_CLIENT_CERT);
    pr_http_client_destroy(c);
    c = NULL;
    /* raw handshakes over TCP: right RSA and EC certificates, none, a refused one */
    o = tls_client_id("client");
    o.ca_pem = tls_file("ca.crt");
    PT_EQ_ERR(tls_tcp_handshake(ts_port(srv), &o, &e), PR_OK);
    o = tls_client_id("clientec");
    o.ca_pem = tls_file("ca.crt");
    PT_EQ_ERR(tls_tcp_handshake(ts_port(srv), &o, &e), PR_OK);
    memset(&o, 0, sizeof o);
    o.ca_pem = tls_file("ca.crt");
    PT_EQ_ERR(tls_tcp_handshake(ts_port(srv), &o, &e), PR_ETLS);
    PT_EQ_INT(e.tls_error, PR_TLS_NO_CLIENT_CERT);
    o = tls_client_id("clientother");
    o.ca_pem = tls_file("ca.crt");
    PT_EQ_ERR(tls_tcp_handshake(ts_port(srv), &o, &e), PR_ETLS);
    PT_EQ_INT(e.tls_error, PR_TLS_CLIENT_CERT_REFUSED);
    ts_stop(srv);
}

/* ---- half duplex (pr_tls_opts.half_duplex) ---- */

/* A TLS client connection to 127.0.0.1:port with this half_duplex; PR_OK or the failure. */
static int tls_conn_mode(pr_conn **out, int port, int half_duplex, pr_err_info *e) {
    pr_conn *raw = NULL;
    pr_tls_opts o;
    int rc;
    memset(&o, 0, sizeof o);
    o.ca_pem = tls_file("ca.crt");
    o.half_duplex = half_duplex;
    *out = NULL;
    if ((rc = tls_connect_local(&raw, port, pr_deadline_in(5000))) != PR_OK) return rc;
    return pr_tls_client(out, raw, "127.0.0.1", &o, e, pr_deadline_in(10000));
}

/* A TLS connection's record buffer: 1 = half duplex (one buffer of
   BR_SSL_BUFSIZE_MONO for both directions), 0 = full duplex (two parts of
   BR_SSL_BUFSIZE_BIDI), -1 = anything else. */
static int tls_half(const pr_conn *c) {
    const pr__tls_conn *t = (const pr__tls_conn *)(const void *)c;
    const br_ssl_engine_context *eng = &t->u.c.eng;
    if (eng->ibuf == eng->obuf && eng->ibuf == t->iobuf && t->iobuf_len == BR_SSL_BUFSIZE_MONO) return 1;
    if (eng->ibuf != eng->obuf && eng->ibuf == t->iobuf && t->iobuf_len == BR_SSL_BUFSIZE_BIDI) return 0;
    return -1;
}

/* GET url on conn and decode its event stream; the events with ids 1..N in
   order (-1 on a failure or a gap). */
static long tls_sse_count(pr_conn *conn, const char *url) {
    pr_http_request req;
    pr_http_response *r = NULL;
    pr_sse_decoder *d = NULL;
    pr_sse_event ev;
    pr_url u;
    static char buf[65536];
    long n = 0;
    ptrdiff_t k = 0;
    int rc;
    memset(&req, 0, sizeof req);
    if (pr_url_parse(&u, url, strlen(url), NULL) != PR_OK) return -1;
    req.url = &u;
    rc = pr_http_exchange(&r, conn, &req, NULL, NULL, pr_deadline_in(20000));
    pr_url_deinit(&u);
    if (rc != PR_OK) return -1;
    if (pr_http_status(r) != 200 || pr_sse_decoder_create(&d, NULL) != PR_OK) n = -1;
    while (n >= 0 && (k = pr_http_read(r, buf, sizeof buf, pr_deadline_in(20000))) > 0) {
        if (pr_sse_decoder_feed(d, buf, (size_t)k) != PR_OK) n = -1;
        while (n >= 0 && (rc = pr_sse_decoder_next(d, &ev)) != PR_SSE_DECODER_MORE) {
            if (rc != PR_OK || !ev.id || atol(ev.id) != n + 1) n = -1;
            else n++;
        }
    }
    if (k != PR_ECLOSED) n = -1; /* the end of the body */
    pr_sse_decoder_destroy(d);
    pr_http_response_destroy(r);
    return n;
}

PT_TEST(tls_half_duplex_stream_and_request_body) {
    enum { EVENTS = 20000, BODY = 300000 };
    ts_server *srv = NULL;
    ts_opts so;
    pr_conn *half = NULL, *full = NULL, *raw = NULL, *t = NULL;
    pr_http_client *c = NULL;
    pr_http_client_opts ho;
    pr_http_request req;
    pr_http_response *r = NULL;
    pr_url u;
    pr_err_info e;
    const pr_slice *len;
    size_t got = 0, i;
    char url[128], *body;
    static char rbuf[65536];
    ptrdiff_t k;
    int bad = 0;
    TLS_NEED_FIXTURES();
    memset(&so, 0, sizeof so);
    so.max_lifetime_ms = 60000;
    so.tls_cert_file = TLS_DIR "/good.crt";
    so.tls_key_file = TLS_DIR "/good.key";
    PT_REQUIRE(ts_start(&srv, &so) == PR_OK);
    PT_REQUIRE((body = (char *)malloc(BODY)) != NULL);
    for (i = 0; i < BODY; i++) body[i] = (char)tls_pattern(i);
    /* half duplex holds one buffer where full duplex holds two; 0 is full for pr_tls_client */
    PT_EQ_ERR(tls_conn_mode(&half, ts_port(srv), 1, &e), PR_OK);
    PT_EQ_ERR(tls_conn_mode(&full, ts_port(srv), -1, &e), PR_OK);
    PT_REQUIRE(half != NULL && full != NULL);
    PT_EQ_INT(tls_half(half), 1);
    PT_EQ_INT(tls_half(full), 0);
    pr_conn_destroy(full);
    PT_EQ_ERR(tls_conn_mode(&full, ts_port(srv), 0, &e), PR_OK);
    PT_EQ_INT(tls_half(full), 0);
    pr_conn_destroy(full);
    /* a large event stream, records of every size up to 16 KiB, every event in order */
    snprintf(url, sizeof url, "https://127.0.0.1:%u/sse?events=%d&id=1&lines=3&batch=400", (unsigned)ts_port(srv),
             (int)EVENTS);
    PT_EQ_INT(tls_sse_count(half, url), EVENTS);
    /* then, on the same connection, a request whose body spans many records */
    snprintf(url, sizeof url, "https://127.0.0.1:%u/echo", (unsigned)ts_port(srv));
    PT_REQUIRE(pr_url_parse(&u, url, strlen(url), NULL) == PR_OK);
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.url = &u;
    req.body = body;
    req.body_len = BODY;
    PT_EQ_ERR(pr_http_exchange(&r, half, &req, NULL, &e, pr_deadline_in(20000)), PR_OK);
    PT_EQ_INT(pr_http_status(r), 200);
    len = pr_http_header_get(r, "X-Echo-Body-Length");
    PT_CHECK(len && len->len == 6 && memcmp(len->ptr, "300000", 6) == 0);
    while ((k = pr_http_read(r, rbuf, sizeof rbuf, pr_deadline_in(20000))) > 0) got += (size_t)k;
    PT_EQ_INT(k, PR_ECLOSED);
    PT_CHECK(got > BODY);
    pr_http_response_destroy(r);
    r = NULL;
    pr_url_deinit(&u);
    pr_conn_destroy(half);
    /* a value out of range is refused */
    PT_REQUIRE(tls_connect_local(&raw, ts_port(srv), pr_deadline_in(5000)) == PR_OK);
    PT_EQ_ERR(pr_tls_client(&t, raw, "127.0.0.1", &(pr_tls_opts){ .ca_pem = tls_file("ca.crt"), .half_duplex = 2 },
                            &e, pr_deadline_in(5000)),
              PR_EINVAL);
    /* pr_http_client: half duplex unless told otherwise; the stream and the body work there too */
    ho = tls_http_opts();
    PT_REQUIRE(pr_http_client_create(&c, &ho, &e) == PR_OK);
    snprintf(url, sizeof url, "https://127.0.0.1:%u/sse?events=%d&id=1&batch=400", (unsigned)ts_port(srv),
             (int)EVENTS);
    PT_EQ_ERR(pr_http_client_get(c, &r, url, &e, pr_deadline_in(20000)), PR_OK);
    PT_EQ_INT(tls_half(r->conn), 1);
    {
        pr_sse_decoder *d = NULL;
        pr_sse_event ev;
        long n = 0;
        int rc;
        PT_REQUIRE(pr_sse_decoder_create(&d, NULL) == PR_OK);
        while (!bad && (k = pr_http_read(r, rbuf, sizeof rbuf, pr_deadline_in(20000))) > 0) {
            if (pr_sse_decoder_feed(d, rbuf, (size_t)k) != PR_OK) bad = 1;
            while (!bad && (rc = pr_sse_decoder_next(d, &ev)) != PR_SSE_DECODER_MORE)
                if (rc != PR_OK || !ev.id || atol(ev.id) != ++n) bad = 1;
        }
        PT_EQ_INT(k, PR_ECLOSED);
        PT_CHECK(!bad);
        PT_EQ_INT(n, EVENTS);
        pr_sse_decoder_destroy(d);
    }
    pr_http_response_destroy(r);
    r = NULL;
    pr_http_client_destroy(c);
    c = NULL;
    ho.tls.half_duplex = -1;
    PT_REQUIRE(pr_http_client_create(&c, &ho, &e) == PR_OK);
    PT_EQ_ERR(pr_http_client_get(c, &r, url, &e, pr_deadline_in(20000)), PR_OK);
    PT_EQ_INT(tls_half(r->conn), 0);
    pr_http_response_destroy(r);
    pr_http_client_destroy(c);
    free(body);
    ts_stop(srv);
}

/* openssl s_server -tls1_2 -Verify 1 -verify_return_error (a client
   certificate from ca required) on
   127.0.0.1:port for n connections; its pid, or -1. *keep_w: the write end
   of its stdin (close it to let it go). */
static pid_t tls_openssl_verify_server(int port, int n, int *keep_w) {
    char portarg[32], narg[16];
    int keep[2];
    pid_t pid;
    snprintf(portarg, sizeof portarg, "127.0.0.1:%d", port);
    snprintf(narg, sizeof narg, "%d", n);
    if (pipe(keep) != 0) return -1; /* s_server quits at EOF on stdin: give it one that stays open */
    fflush(NULL);
    if ((pid = fork()) == 0) {
        int fd = open("/dev/null", O_RDWR);
        dup2(keep[0], 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp("openssl", "openssl", "s_server", "-tls1_2", "-accept", portarg, "-cert", TLS_DIR "/good.crt",
               "-key", TLS_DIR "/good.key", "-Verify", "1", "-verify_return_error", "-CAfile", TLS_DIR "/ca.crt", "-naccept", narg,
               (char *)NULL);
        _exit(127);
    }
    close(keep[0]);
    if (pid < 0) close(keep[1]);
    else *keep_w = keep[1];
    return pid;
}

PT_TEST(tls_client_cert_openssl_server_alerts) {
    int port, status, keep = -1, rc;
    pid_t pid;
    pr_conn *a = NULL, *c = NULL;
    pr_tls_opts o;
    pr_err_info e;
    TLS_NEED_FIXTURES();
    if (system("openssl version >/dev/null 2>&1") != 0) PT_SKIP("no openssl tool");
    PT_REQUIRE((port = tls_free_port()) > 0);
    PT_REQUIRE((pid = tls_openssl_verify_server(port, 3, &keep)) > 0);
    /* the right certificate */
    o = tls_client_id("clientec");
    o.ca_pem = tls_file("ca.crt");
    PT_EQ_ERR(rc = tls_connect_local(&a, port, pr_deadline_in(10000)), PR_OK);
    if (rc == PR_OK) {
        PT_EQ_ERR(pr_tls_client(&c, a, "localhost", &o, &e, pr_deadline_in(10000)), PR_OK);
        if (c) PT_EQ_ERR(pr_conn_shutdown(c, pr_deadline_in(5000)), PR_OK);
        pr_conn_destroy(c);
        c = NULL;
    }
    /* none: the server's handshake_failure alert reads as the missing certificate */
    memset(&o, 0, sizeof o);
    o.ca_pem = tls_file("ca.crt");
    PT_EQ_ERR(rc = tls_connect_local(&a, port, pr_deadline_in(10000)), PR_OK);
    if (rc == PR_OK) {
        PT_EQ_ERR(pr_tls_client(&c, a, "localhost", &o, &e, pr_deadline_in(10000)), PR_ETLS);
        PT_EQ_INT(e.tls_error, PR_TLS_NO_CLIENT_CERT);
        pr_conn_destroy(c);
        c = NULL;
    }
    /* one from another CA: its unknown_ca alert reads as a refusal */
    o = tls_client_id("clientother");
    o.ca_pem = tls_file("ca.crt");
    PT_EQ_ERR(rc = tls_connect_local(&a, port, pr_deadline_in(10000)), PR_OK);
    if (rc == PR_OK) {
        PT_EQ_ERR(pr_tls_client(&c, a, "localhost", &o, &e, pr_deadline_in(10000)), PR_ETLS);
        PT_EQ_INT(e.tls_error, PR_TLS_CLIENT_CERT_REFUSED);
        pr_conn_destroy(c);
    }
    kill(pid, SIGTERM);
    close(keep);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

const pt_suite pt_suite_tls = { "tls", {
    PT_ENTRY(tls_handshake_echo_rsa_and_ec),
    PT_ENTRY(tls_wrong_host_refused),
    PT_ENTRY(tls_ip_san_checked),
    PT_ENTRY(tls_expired_refused),
    PT_ENTRY(tls_unknown_ca_refused),
    PT_ENTRY(tls_anchors_parsed_once_and_shared),
    PT_ENTRY(tls_insecure_accepts_bad_certificates),
    PT_ENTRY(tls_system_bundle_and_env),
    PT_ENTRY(tls_bad_arguments_free_inner),
    PT_ENTRY(tls_close_notify_then_eclosed_and_truncation),
    PT_ENTRY(tls_alpn_negotiated),
    PT_ENTRY(tls_large_transfer_both_ways),
    PT_ENTRY(tls_cancel_and_timeout),
    PT_ENTRY(tls_destroy_under_blocked_reader),
    PT_ENTRY(tls_peer_not_speaking_tls),
    PT_ENTRY(tls_alloc_failure_sweep),
    PT_ENTRY(tls_tls13_only_peer_fails_clearly),
    PT_ENTRY(tls_prefers_aes_gcm_with_aesni),
    PT_ENTRY(tls_over_memory_pipe_byte_by_byte),
    PT_ENTRY(tls_corrupted_record_fails_with_bad_mac),
    PT_ENTRY(tls_read_while_write_stuck),
    PT_ENTRY(tls_client_cert_required_by_server),
    PT_ENTRY(tls_client_cert_bad_input_refused_early),
    PT_ENTRY(tls_client_cert_over_tcp_and_http_client),
    PT_ENTRY(tls_client_cert_openssl_server_alerts),
    PT_ENTRY(tls_half_duplex_stream_and_request_body),
    {0, 0} } };

#else /* PRISTINE_NO_TLS */

const pt_suite pt_suite_tls = { "tls", {
    {0, 0} } };

#endif
