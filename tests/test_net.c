/* net: pipe pairs, TCP on loopback, DNS (numeric, localhost, override, pool,
   cache, cancel), Happy Eyeballs, timeouts, cancellation, allocation failure.
   Only loopback addresses are ever connected to. */

/* ---- helpers ---- */

/* Read until PR_ECLOSED (or an error) into buf; returns bytes or the error. */
static ptrdiff_t net_read_all(pr_conn *c, unsigned char *buf, size_t cap, size_t max_chunk, int64_t deadline) {
    size_t got = 0;
    for (;;) {
        ptrdiff_t r = pr_conn_read(c, buf + got, cap - got ? cap - got : 1, deadline);
        if (r == PR_ECLOSED) return (ptrdiff_t)got;
        if (r < 0) return r;
        if (max_chunk && (size_t)r > max_chunk) return -1000;
        got += (size_t)r;
        if (got >= cap) return (ptrdiff_t)got;
    }
}

/* A listener whose accept queue is full: connects to it hang (Linux drops
   SYNs to a full queue). The fillers go in fill[] (caller destroys). */
static int net_stalled_listener(pr_listener **l, pr_conn **fill, int nfill, int *used, const char *host) {
    int i, rc;
    *used = 0;
    if ((rc = pr_tcp_listen(l, host, 0, 1, NULL)) != PR_OK) return rc;
    for (i = 0; i < nfill; i++) {
        rc = pr_tcp_connect(&fill[i], host, pr_listener_port(*l), NULL, NULL, pr_deadline_in(150));
        if (rc == PR_ETIMEDOUT) return PR_OK;
        if (rc != PR_OK) return rc;
        (*used)++;
    }
    return PR_ESTATE; /* the queue never filled */
}

static void net_destroy_all(pr_conn **c, int n) {
    int i;
    for (i = 0; i < n; i++) pr_conn_destroy(c[i]);
}

/* Wait (bounded) until the DNS helpers have freed every lookup. */
static long net_wait_jobs_drained(int64_t ms) {
    int64_t end = pr_deadline_in(ms);
    while (__atomic_load_n(&pr__net_test_dns_jobs, __ATOMIC_SEQ_CST) && pr_now() < end) pr_sleep(pr_deadline_in(10));
    return __atomic_load_n(&pr__net_test_dns_jobs, __ATOMIC_SEQ_CST);
}

/* A name in /etc/hosts mapped to 127.0.0.1 other than localhost (resolved
   by the helper pool from the files without any traffic), or NULL. */
static const char *net_hosts_name(char *buf, size_t n) {
    FILE *f = fopen("/etc/hosts", "r");
    char line[512];
    const char *found = NULL;
    if (!f) return NULL;
    while (!found && fgets(line, sizeof line, f)) {
        char *tok = strtok(line, " \t\r\n");
        if (!tok || strcmp(tok, "127.0.0.1") != 0) continue;
        while ((tok = strtok(NULL, " \t\r\n")) != NULL) {
            if (tok[0] == '#') break;
            if (strcmp(tok, "localhost") == 0 || strlen(tok) >= n || strchr(tok, '.') != NULL) continue;
            snprintf(buf, n, "%s", tok);
            found = buf;
            break;
        }
    }
    fclose(f);
    return found;
}

/* ---- pipe ---- */

PT_TEST(net_pipe_every_chunk_size) {
    unsigned char msg[97], got[200];
    size_t chunk, i;
    for (i = 0; i < sizeof msg; i++) msg[i] = (unsigned char)(i * 7 + 1);
    for (chunk = 0; chunk <= sizeof msg + 1; chunk++) {
        pr_conn *a, *b;
        ptrdiff_t r;
        PT_REQUIRE(pr_conn_pipe(&a, &b, chunk) == PR_OK);
        PT_EQ_ERR(pr_conn_write(a, msg, sizeof msg, PR_FOREVER), PR_OK);
        PT_EQ_ERR(pr_conn_shutdown(a, PR_FOREVER), PR_OK);
        r = net_read_all(b, got, sizeof got, chunk, pr_deadline_in(1000));
        PT_EQ_INT(r, (ptrdiff_t)sizeof msg);
        PT_EQ_MEM(got, msg, sizeof msg);
        PT_EQ_ERR((int)pr_conn_read(b, got, 1, PR_FOREVER), PR_ECLOSED); /* EOF is sticky */
        /* the other direction still works after a's shutdown */
        PT_EQ_ERR(pr_conn_write(b, "xy", 2, PR_FOREVER), PR_OK);
        PT_EQ_INT(pr_conn_read(a, got, sizeof got, PR_FOREVER), chunk == 1 ? 1 : 2);
        PT_EQ_ERR(pr_conn_write(a, "z", 1, PR_FOREVER), PR_ECLOSED); /* after our own shutdown */
        pr_conn_destroy(a);
        PT_EQ_ERR(pr_conn_write(b, "z", 1, PR_FOREVER), PR_ECLOSED); /* peer gone */
        pr_conn_destroy(b);
    }
}

typedef struct net_pipe_job {
    pr_conn *c;
    size_t n;
    int rc;
} net_pipe_job;

static int net_pipe_writer(void *arg) {
    net_pipe_job *j = (net_pipe_job *)arg;
    static unsigned char big[200000];
    size_t i;
    for (i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i % 251);
    pr_sleep(pr_deadline_in(5)); /* the reader parks first */
    j->rc = pr_conn_write(j->c, big, j->n, pr_deadline_in(5000));
    if (j->rc == PR_OK) j->rc = pr_conn_shutdown(j->c, PR_FOREVER);
    return 0;
}

PT_TEST(net_pipe_parks_and_bounds) {
    pr_conn *a, *b;
    pr_task *t;
    net_pipe_job j;
    static unsigned char got[200000];
    ptrdiff_t r;
    size_t i, bad = 0;
    pr_err_info ei;
    PT_REQUIRE(pr_conn_pipe(&a, &b, 0) == PR_OK);
    /* nothing buffered: times out, with detail */
    PT_EQ_ERR((int)pr_conn_read(b, got, 10, pr_deadline_in(10)), PR_ETIMEDOUT);
    PT_EQ_ERR(pr_conn_last_error(b, &ei), PR_OK);
    PT_EQ_ERR(ei.code, PR_ETIMEDOUT);
    /* a writer larger than the 64 KiB buffer waits for the reader */
    j.c = a;
    j.n = sizeof got;
    j.rc = 1;
    PT_REQUIRE(pr_go(&t, net_pipe_writer, &j, NULL) == PR_OK);
    r = net_read_all(b, got, sizeof got, 0, pr_deadline_in(5000));
    PT_EQ_INT(r, (ptrdiff_t)sizeof got);
    for (i = 0; i < sizeof got; i++) bad += got[i] != (unsigned char)(i % 251);
    PT_EQ_INT(bad, 0);
    PT_EQ_ERR(pr_join(t, NULL, PR_FOREVER), PR_OK);
    PT_EQ_ERR(j.rc, PR_OK);
    /* a full buffer makes a writer time out */
    PT_EQ_ERR(pr_conn_write(b, got, 65536, PR_FOREVER), PR_OK);
    PT_EQ_ERR(pr_conn_write(b, got, 1, pr_deadline_in(10)), PR_ETIMEDOUT);
    pr_conn_destroy(a);
    pr_conn_destroy(b);
}

/* ---- TCP ---- */

static int net_echo_server(void *arg) {
    pr_listener *l = (pr_listener *)arg;
    pr_conn *c;
    unsigned char buf[4096];
    int rc = pr_tcp_accept(l, &c, pr_deadline_in(5000));
    if (rc != PR_OK) return rc;
    for (;;) {
        ptrdiff_t r = pr_conn_read(c, buf, sizeof buf, pr_deadline_in(5000));
        if (r == PR_ECLOSED) {
            rc = pr_conn_shutdown(c, PR_FOREVER);
            break;
        }
        if (r < 0) {
            rc = (int)r;
            break;
        }
        if ((rc = pr_conn_write(c, buf, (size_t)r, pr_deadline_in(5000))) != PR_OK) break;
    }
    pr_conn_destroy(c);
    return rc;
}

static void net_echo_on(const char *listen_host, const char *connect_host) {
    pr_listener *l;
    pr_conn *c;
    pr_task *srv;
    static unsigned char msg[100000], got[100000];
    size_t i;
    int r;
    PT_REQUIRE(pr_tcp_listen(&l, listen_host, 0, 16, NULL) == PR_OK);
    PT_CHECK(pr_listener_port(l) != 0);
    PT_REQUIRE(pr_go(&srv, net_echo_server, l, NULL) == PR_OK);
    for (i = 0; i < sizeof msg; i++) msg[i] = (unsigned char)(i * 13);
    PT_EQ_ERR(pr_tcp_connect(&c, connect_host, pr_listener_port(l), NULL, NULL, pr_deadline_in(5000)), PR_OK);
    if (c) {
        PT_EQ_ERR(pr_conn_write(c, msg, sizeof msg, pr_deadline_in(5000)), PR_OK);
        PT_EQ_ERR(pr_conn_shutdown(c, PR_FOREVER), PR_OK);
        PT_EQ_INT(net_read_all(c, got, sizeof got, 0, pr_deadline_in(5000)), (ptrdiff_t)sizeof msg);
        PT_EQ_MEM(got, msg, sizeof msg);
        pr_conn_destroy(c);
    }
    PT_EQ_ERR(pr_join(srv, &r, PR_FOREVER), PR_OK);
    PT_EQ_ERR(r, PR_OK);
    pr_listener_destroy(l);
}

PT_TEST(net_tcp_echo_ipv4) { net_echo_on("127.0.0.1", "127.0.0.1"); }

PT_TEST(net_tcp_echo_localhost) { net_echo_on("localhost", "localhost"); }

PT_TEST(net_tcp_echo_ipv6) {
    pr_listener *l;
    if (pr_tcp_listen(&l, "::1", 0, 1, NULL) != PR_OK) PT_SKIP("no IPv6 loopback");
    pr_listener_destroy(l);
    net_echo_on("::1", "::1");
    net_echo_on("::1", "[::1]");
}

PT_TEST(net_connect_refused) {
    pr_listener *l;
    pr_conn *c = NULL;
    pr_err_info ei;
    pr_net_opts o;
    uint16_t port;
    char want[40];
    PT_REQUIRE(pr_tcp_listen(&l, "127.0.0.1", 0, 1, NULL) == PR_OK);
    port = pr_listener_port(l);
    pr_listener_destroy(l); /* nothing listens there now */
    memset(&o, 0, sizeof o);
    PT_EQ_ERR(pr_tcp_connect(&c, "127.0.0.1", port, &o, &ei, pr_deadline_in(2000)), PR_EIO);
    PT_CHECK(c == NULL);
    PT_EQ_ERR(ei.code, PR_EIO);
    PT_EQ_INT(ei.sys_errno, ECONNREFUSED);
    snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)port);
    PT_CHECK(strstr(ei.msg, want) != NULL);
    PT_CHECK(strstr(ei.msg, strerror(ECONNREFUSED)) != NULL);
    /* NULL opts and NULL err work too */
    PT_EQ_ERR(pr_tcp_connect(&c, "127.0.0.1", port, NULL, NULL, pr_deadline_in(2000)), PR_EIO);
    PT_EQ_ERR(pr_tcp_connect(NULL, "127.0.0.1", port, NULL, &ei, PR_FOREVER), PR_EINVAL);
    PT_EQ_ERR(ei.code, PR_EINVAL);
    PT_EQ_INT(ei.sys_errno, 0);
}

/* Every address of a name refused (Happy Eyeballs over "localhost": ::1
   and 127.0.0.1, or one of them): the errno of the last one comes back. */
PT_TEST(net_connect_refused_every_address) {
    pr_listener *l;
    pr_conn *c = NULL;
    pr_err_info ei;
    uint16_t port;
    PT_REQUIRE(pr_tcp_listen(&l, "127.0.0.1", 0, 1, NULL) == PR_OK);
    port = pr_listener_port(l);
    pr_listener_destroy(l);
    memset(&ei, 0x55, sizeof ei); /* the call clears it */
    PT_EQ_ERR(pr_tcp_connect(&c, "localhost", port, NULL, &ei, pr_deadline_in(2000)), PR_EIO);
    PT_CHECK(c == NULL);
    PT_EQ_ERR(ei.code, PR_EIO);
    /* ::1 may be missing (EADDRNOTAVAIL, ENETUNREACH) when it is tried last */
    PT_CHECK(ei.sys_errno == ECONNREFUSED || ei.sys_errno == EADDRNOTAVAIL || ei.sys_errno == ENETUNREACH ||
             ei.sys_errno == EAFNOSUPPORT);
    PT_CHECK(ei.sys_errno != 0 && strstr(ei.msg, strerror(ei.sys_errno)) != NULL);
    PT_EQ_INT(ei.tls_error, 0);
    PT_EQ_INT(ei.dns_error, 0);
}

/* A port already taken: pr_tcp_listen says so in err, with bind's errno. */
PT_TEST(net_listen_in_use) {
    pr_listener *l, *l2 = NULL;
    pr_err_info ei;
    PT_REQUIRE(pr_tcp_listen(&l, "127.0.0.1", 0, 1, &ei) == PR_OK);
    PT_EQ_ERR(ei.code, PR_OK);
    PT_EQ_ERR(pr_tcp_listen(&l2, "127.0.0.1", pr_listener_port(l), 1, &ei), PR_EIO);
    PT_CHECK(l2 == NULL);
    PT_EQ_ERR(ei.code, PR_EIO);
    PT_EQ_INT(ei.sys_errno, EADDRINUSE);
    PT_CHECK(strstr(ei.msg, "bind") != NULL);
    PT_CHECK(strstr(ei.msg, strerror(EADDRINUSE)) != NULL);
    PT_EQ_ERR(pr_tcp_listen(&l2, "not-numeric", 0, 1, &ei), PR_EINVAL);
    PT_EQ_ERR(ei.code, PR_EINVAL);
    pr_listener_destroy(l);
}

/* TCP options on connected sockets: NODELAY always, keep-alive when asked. */
static int net_sockopt(pr_conn *c, int level, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    if (getsockopt(((pr__net_sock *)(void *)c)->fd, level, name, &v, &len) != 0) return -1;
    return v;
}

PT_TEST(net_tcp_nodelay_and_keepalive) {
    pr_listener *l;
    pr_conn *c = NULL, *k = NULL;
    pr_net_opts o;
    PT_REQUIRE(pr_tcp_listen(&l, "127.0.0.1", 0, 4, NULL) == PR_OK);
    PT_EQ_ERR(pr_tcp_connect(&c, "127.0.0.1", pr_listener_port(l), NULL, NULL, pr_deadline_in(2000)), PR_OK);
    PT_EQ_INT(net_sockopt(c, IPPROTO_TCP, TCP_NODELAY) != 0, 1);
    PT_EQ_INT(net_sockopt(c, SOL_SOCKET, SO_KEEPALIVE), 0);
    memset(&o, 0, sizeof o);
    o.keepalive = 45;
    PT_EQ_ERR(pr_tcp_connect(&k, "127.0.0.1", pr_listener_port(l), &o, NULL, pr_deadline_in(2000)), PR_OK);
    PT_EQ_INT(net_sockopt(k, SOL_SOCKET, SO_KEEPALIVE) != 0, 1);
#ifdef TCP_KEEPIDLE
    PT_EQ_INT(net_sockopt(k, IPPROTO_TCP, TCP_KEEPIDLE), 45);
    PT_EQ_INT(net_sockopt(k, IPPROTO_TCP, TCP_KEEPINTVL), 10);
    PT_EQ_INT(net_sockopt(k, IPPROTO_TCP, TCP_KEEPCNT), 6);
#endif
    pr_conn_destroy(c);
    pr_conn_destroy(k);
    pr_listener_destroy(l);
}

PT_TEST(net_connect_timeout) {
    pr_listener *l;
    pr_conn *fill[8], *c = NULL;
    pr_net_opts o;
    pr_err_info ei;
    int used, rc;
    int64_t t0, dl;
    rc = net_stalled_listener(&l, fill, 8, &used, "127.0.0.1");
    if (rc == PR_ESTATE) {
        net_destroy_all(fill, used);
        pr_listener_destroy(l);
        PT_SKIP("this kernel does not drop SYNs to a full accept queue");
    }
    PT_REQUIRE(rc == PR_OK);
    dl = pr_deadline_in(200);
    PT_EQ_ERR(pr_tcp_connect(&c, "127.0.0.1", pr_listener_port(l), NULL, NULL, dl), PR_ETIMEDOUT);
    PT_CHECK(pr_now() >= dl); /* not before its deadline */
    /* connect_timeout_ms caps the phase inside a later deadline */
    memset(&o, 0, sizeof o);
    o.connect_timeout_ms = 100;
    t0 = pr_now();
    dl = pr_deadline_in(20000);
    PT_EQ_ERR(pr_tcp_connect(&c, "127.0.0.1", pr_listener_port(l), &o, &ei, dl), PR_ETIMEDOUT);
    PT_CHECK(pr_now() >= t0 + 100 && pr_now() < dl); /* at the cap, before the call's deadline */
    PT_EQ_ERR(ei.code, PR_ETIMEDOUT);
    PT_CHECK(strstr(ei.msg, "timed out") != NULL);
    /* a deadline already passed */
    PT_EQ_ERR(pr_tcp_connect(&c, "127.0.0.1", pr_listener_port(l), NULL, NULL, 0), PR_ETIMEDOUT);
    net_destroy_all(fill, used);
    pr_listener_destroy(l);
}

PT_TEST(net_happy_eyeballs_second_address_wins) {
    pr_listener *stall, *good;
    pr_conn *fill[8], *c = NULL, *acc = NULL;
    pr_net_opts o;
    char a1[40], a2[40];
    int used, rc;
    int64_t t0, dt;
    rc = net_stalled_listener(&stall, fill, 8, &used, "127.0.0.1");
    if (rc == PR_ESTATE) {
        net_destroy_all(fill, used);
        pr_listener_destroy(stall);
        PT_SKIP("this kernel does not drop SYNs to a full accept queue");
    }
    PT_REQUIRE(rc == PR_OK);
    PT_REQUIRE(pr_tcp_listen(&good, "127.0.0.1", 0, 4, NULL) == PR_OK);
    snprintf(a1, sizeof a1, "127.0.0.1:%u", (unsigned)pr_listener_port(stall));
    snprintf(a2, sizeof a2, "127.0.0.1:%u", (unsigned)pr_listener_port(good));
    PT_EQ_ERR(pr_dns_override("he.test", 0, a1), PR_OK);
    PT_EQ_ERR(pr_dns_override("he.test", 0, a2), PR_OK);
    memset(&o, 0, sizeof o);
    o.attempt_delay_ms = 100;
    t0 = pr_now();
    PT_EQ_ERR(pr_tcp_connect(&c, "he.test", 1, &o, NULL, pr_deadline_in(3000)), PR_OK);
    dt = pr_now() - t0;
    PT_CHECK(dt >= 90 && dt < 1000);
    /* it is the good listener's connection */
    PT_EQ_ERR(pr_tcp_accept(good, &acc, pr_deadline_in(1000)), PR_OK);
    if (acc && c) {
        unsigned char ch = 0;
        PT_EQ_ERR(pr_conn_write(c, "!", 1, PR_FOREVER), PR_OK);
        PT_EQ_INT(pr_conn_read(acc, &ch, 1, pr_deadline_in(1000)), 1);
        PT_EQ_INT(ch, '!');
    }
    pr_conn_destroy(acc);
    pr_conn_destroy(c);
    /* without the second address the stalled one alone times out */
    PT_EQ_ERR(pr_dns_override("he.test", 0, NULL), PR_OK);
    PT_EQ_ERR(pr_dns_override("he.test", 0, a1), PR_OK);
    PT_EQ_ERR(pr_tcp_connect(&c, "he.test", 1, &o, NULL, pr_deadline_in(150)), PR_ETIMEDOUT);
    PT_EQ_ERR(pr_dns_override(NULL, 0, NULL), PR_OK);
    net_destroy_all(fill, used);
    pr_listener_destroy(stall);
    pr_listener_destroy(good);
}

/* ---- DNS ---- */

PT_TEST(net_dns_numeric_localhost_override) {
    pr_addrlist *l;
    static const unsigned char lo4[4] = { 127, 0, 0, 1 }, lo6[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
    PT_REQUIRE(pr_dns_resolve(&l, "127.0.0.1", 80, 0, NULL, 0) == PR_OK); /* no wait needed: past deadline is fine */
    PT_EQ_INT(l->count, 1);
    PT_EQ_INT(l->addrs[0].family, AF_INET);
    PT_EQ_INT(l->addrs[0].port, 80);
    PT_EQ_MEM(l->addrs[0].ip, lo4, 4);
    pr_addrlist_destroy(l);
    PT_REQUIRE(pr_dns_resolve(&l, "[::1]", 443, 0, NULL, PR_FOREVER) == PR_OK);
    PT_EQ_INT(l->count, 1);
    PT_EQ_INT(l->addrs[0].family, AF_INET6);
    PT_EQ_MEM(l->addrs[0].ip, lo6, 16);
    pr_addrlist_destroy(l);
    PT_EQ_ERR(pr_dns_resolve(&l, "127.0.0.1", 80, AF_INET6, NULL, PR_FOREVER), PR_EDNS);
    PT_REQUIRE(pr_dns_resolve(&l, "LocalHost", 7, 0, NULL, PR_FOREVER) == PR_OK);
    PT_EQ_INT(l->count, 2);
    PT_EQ_INT(l->addrs[0].family, AF_INET6);
    PT_EQ_INT(l->addrs[1].family, AF_INET);
    PT_EQ_INT(l->addrs[1].port, 7);
    pr_addrlist_destroy(l);
    PT_REQUIRE(pr_dns_resolve(&l, "localhost", 7, AF_INET, NULL, PR_FOREVER) == PR_OK);
    PT_EQ_INT(l->count, 1);
    PT_EQ_MEM(l->addrs[0].ip, lo4, 4);
    pr_addrlist_destroy(l);
    /* override: exact port beats port 0; an address with its own port */
    PT_EQ_ERR(pr_dns_override("example.test", 0, "127.0.0.1"), PR_OK);
    PT_EQ_ERR(pr_dns_override("example.test", 8080, "[::1]:9000"), PR_OK);
    PT_EQ_ERR(pr_dns_override("example.test", 0, "not an address"), PR_EINVAL);
    PT_REQUIRE(pr_dns_resolve(&l, "EXAMPLE.test", 80, 0, NULL, PR_FOREVER) == PR_OK);
    PT_EQ_INT(l->count, 1);
    PT_EQ_INT(l->addrs[0].port, 80);
    PT_EQ_MEM(l->addrs[0].ip, lo4, 4);
    pr_addrlist_destroy(l);
    PT_REQUIRE(pr_dns_resolve(&l, "example.test", 8080, 0, NULL, PR_FOREVER) == PR_OK);
    PT_EQ_INT(l->count, 1);
    PT_EQ_INT(l->addrs[0].port, 9000);
    PT_EQ_INT(l->addrs[0].family, AF_INET6);
    pr_addrlist_destroy(l);
    PT_EQ_ERR(pr_dns_resolve(&l, "example.test", 80, AF_INET6, NULL, PR_FOREVER), PR_EDNS);
    PT_EQ_ERR(pr_dns_override(NULL, 0, NULL), PR_OK);
    /* misuse */
    PT_EQ_ERR(pr_dns_resolve(&l, "", 80, 0, NULL, PR_FOREVER), PR_EINVAL);
    PT_EQ_ERR(pr_dns_resolve(&l, "x", 80, 12345, NULL, PR_FOREVER), PR_EINVAL);
    PT_EQ_ERR(pr_dns_resolve(NULL, "x", 80, 0, NULL, PR_FOREVER), PR_EINVAL);
    pr_addrlist_destroy(NULL);
}

/* A failed lookup is PR_EDNS with the resolver's code. The helpers are
   told to answer "no such name" themselves: tests send no DNS traffic. */
PT_TEST(net_dns_failure_is_edns) {
    pr_addrlist *l = NULL;
    pr_conn *c = NULL;
    pr_net_opts o;
    pr_err_info ei;
    int rc;
    __atomic_store_n(&pr__net_test_dns_offline, 1, __ATOMIC_SEQ_CST);
    rc = pr_dns_resolve(&l, "no-such-host.invalid", 80, 0, &ei, pr_deadline_in(3000));
    PT_EQ_ERR(rc, PR_EDNS);
    PT_CHECK(l == NULL);
    PT_EQ_ERR(ei.code, PR_EDNS);
    PT_EQ_INT(ei.dns_error, EAI_NONAME);
    PT_CHECK(strstr(ei.msg, "no-such-host.invalid") != NULL);
    memset(&o, 0, sizeof o);
    memset(&ei, 0, sizeof ei);
    rc = pr_tcp_connect(&c, "no-such-host.invalid", 80, &o, &ei, pr_deadline_in(3000));
    PT_EQ_ERR(rc, PR_EDNS);
    PT_EQ_INT(ei.dns_error, EAI_NONAME);
    PT_EQ_INT(ei.code, rc);
    __atomic_store_n(&pr__net_test_dns_offline, 0, __ATOMIC_SEQ_CST);
    PT_EQ_INT(net_wait_jobs_drained(20000), 0);
}

/* Lookups queued together get helpers of their own (up to the cap), even
   when one helper is idle: they must not run one after another. */
typedef struct net_lk {
    const char *name;
    int rc;
} net_lk;

static int net_lookup_task(void *arg) {
    net_lk *k = (net_lk *)arg;
    pr_addrlist *l = NULL;
    k->rc = pr_dns_resolve(&l, k->name, 80, 0, NULL, pr_deadline_in(5000));
    pr_addrlist_destroy(l);
    return 0;
}

PT_TEST(net_dns_pool_runs_lookups_side_by_side) {
    net_lk k[3] = { { "a.invalid", 1 }, { "b.invalid", 1 }, { "c.invalid", 1 } };
    pr_task *t[3];
    int i, peak = 0;
    __atomic_store_n(&pr__net_test_dns_offline, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&pr__net_test_dns_delay_ms, 200, __ATOMIC_SEQ_CST);
    for (i = 0; i < 3; i++) PT_REQUIRE(pr_go(&t[i], net_lookup_task, &k[i], NULL) == PR_OK);
    for (i = 0; i < 20 && peak < 3; i++) { /* sample the pool while the lookups sleep */
        int n;
        pr_sleep(pr_deadline_in(5));
        pthread_mutex_lock(&pr__net_dns_mu);
        n = pr__net_threads - pr__net_idle;
        pthread_mutex_unlock(&pr__net_dns_mu);
        if (n > peak) peak = n;
    }
    for (i = 0; i < 3; i++) {
        PT_EQ_ERR(pr_join(t[i], NULL, PR_FOREVER), PR_OK);
        PT_EQ_ERR(k[i].rc, PR_EDNS);
    }
    __atomic_store_n(&pr__net_test_dns_delay_ms, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&pr__net_test_dns_offline, 0, __ATOMIC_SEQ_CST);
    PT_EQ_INT(peak, 3);
    PT_EQ_INT(net_wait_jobs_drained(20000), 0);
}

static int net_resolve_task(void *arg) {
    pr_addrlist *l = NULL;
    int rc = pr_dns_resolve(&l, (const char *)arg, 80, 0, NULL, PR_FOREVER);
    pr_addrlist_destroy(l);
    return rc;
}

PT_TEST(net_dns_cancel_busy_worker) {
    pr_task *t;
    pr_addrlist *l = NULL;
    int r;
    int64_t t0;
    __atomic_store_n(&pr__net_test_dns_delay_ms, 300, __ATOMIC_SEQ_CST);
    /* cancelled while the helper sleeps: returns at once; the helper frees the job */
    PT_REQUIRE(pr_go(&t, net_resolve_task, (void *)"slow-one.invalid", NULL) == PR_OK);
    pr_sleep(pr_deadline_in(30));
    PT_EQ_INT(__atomic_load_n(&pr__net_test_dns_jobs, __ATOMIC_SEQ_CST), 1);
    t0 = pr_now();
    pr_cancel(t);
    PT_EQ_ERR(pr_join(t, &r, pr_deadline_in(100)), PR_OK);
    PT_EQ_ERR(r, PR_ECANCELED);
    PT_CHECK(pr_now() - t0 < 100);
    /* timed out likewise */
    t0 = pr_now();
    PT_EQ_ERR(pr_dns_resolve(&l, "slow-two.invalid", 80, 0, NULL, pr_deadline_in(50)), PR_ETIMEDOUT);
    PT_CHECK(pr_now() - t0 < 250);
    PT_EQ_INT(net_wait_jobs_drained(3000), 0);
    /* an already cancelled task does not even queue a lookup */
    pr_cancel(pr_self());
    PT_EQ_ERR(pr_dns_resolve(&l, "slow-three.invalid", 80, 0, NULL, PR_FOREVER), PR_ECANCELED);
    __atomic_store_n(&pr__net_test_dns_delay_ms, 0, __ATOMIC_SEQ_CST);
}

PT_TEST(net_dns_pool_and_cache) {
    char name[128];
    pr_addrlist *l = NULL;
    static const unsigned char lo4[4] = { 127, 0, 0, 1 };
    long hits;
    if (!net_hosts_name(name, sizeof name)) PT_SKIP("no single-label 127.0.0.1 name in /etc/hosts");
    pr__net_test_dns_cache_clear();
    hits = pr__net_test_dns_cache_hits;
    PT_REQUIRE(pr_dns_resolve(&l, name, 81, AF_INET, NULL, pr_deadline_in(5000)) == PR_OK);
    PT_REQUIRE(l->count >= 1);
    PT_EQ_MEM(l->addrs[0].ip, lo4, 4);
    PT_EQ_INT(l->addrs[0].port, 81);
    pr_addrlist_destroy(l);
    PT_EQ_INT(pr__net_test_dns_cache_hits, hits);
    PT_REQUIRE(pr_dns_resolve(&l, name, 82, AF_INET, NULL, 0) == PR_OK); /* a cache hit needs no wait */
    PT_EQ_INT(pr__net_test_dns_cache_hits, hits + 1);
    PT_EQ_INT(l->addrs[0].port, 82);
    pr_addrlist_destroy(l);
    pr__net_test_dns_cache_clear();
    PT_EQ_INT(net_wait_jobs_drained(1000), 0);
}

/* ---- cancellation of blocked calls ---- */

static int net_connect_task(void *arg) {
    pr_conn *c = NULL;
    int rc = pr_tcp_connect(&c, "127.0.0.1", *(uint16_t *)arg, NULL, NULL, PR_FOREVER);
    pr_conn_destroy(c);
    return rc;
}

static int net_accept_task(void *arg) {
    pr_conn *c = NULL;
    int rc = pr_tcp_accept((pr_listener *)arg, &c, PR_FOREVER);
    pr_conn_destroy(c);
    return rc;
}

static int net_read_task(void *arg) {
    unsigned char b[8];
    ptrdiff_t r = pr_conn_read((pr_conn *)arg, b, sizeof b, PR_FOREVER);
    return (int)r;
}

static void net_expect_cancel(pr_task_fn fn, void *arg) {
    pr_task *t;
    int r = 0;
    PT_REQUIRE(pr_go(&t, fn, arg, NULL) == PR_OK);
    pr_sleep(pr_deadline_in(30));
    pr_cancel(t);
    PT_EQ_ERR(pr_join(t, &r, pr_deadline_in(1000)), PR_OK);
    PT_EQ_ERR(r, PR_ECANCELED);
}

PT_TEST(net_cancel_blocked_calls) {
    pr_listener *l, *stall;
    pr_conn *fill[8], *a, *b, *c, *s;
    uint16_t port;
    int used, rc;
    PT_REQUIRE(pr_tcp_listen(&l, "127.0.0.1", 0, 4, NULL) == PR_OK);
    net_expect_cancel(net_accept_task, l);
    PT_REQUIRE(pr_tcp_connect(&c, "127.0.0.1", pr_listener_port(l), NULL, NULL, pr_deadline_in(2000)) == PR_OK);
    PT_REQUIRE(pr_tcp_accept(l, &s, pr_deadline_in(2000)) == PR_OK);
    net_expect_cancel(net_read_task, c);
    net_expect_cancel(net_read_task, s);
    pr_conn_destroy(c);
    pr_conn_destroy(s);
    pr_listener_destroy(l);
    PT_REQUIRE(pr_conn_pipe(&a, &b, 1) == PR_OK);
    net_expect_cancel(net_read_task, a);
    pr_conn_destroy(a);
    pr_conn_destroy(b);
    rc = net_stalled_listener(&stall, fill, 8, &used, "127.0.0.1");
    if (rc == PR_OK) {
        port = pr_listener_port(stall);
        net_expect_cancel(net_connect_task, &port);
    }
    net_destroy_all(fill, used);
    pr_listener_destroy(stall);
}

PT_TEST(net_listener_destroyed_under_acceptor) {
    pr_listener *l;
    pr_task *t;
    int r = 0;
    PT_REQUIRE(pr_tcp_listen(&l, NULL, 0, 1, NULL) == PR_OK);
    PT_REQUIRE(pr_go(&t, net_accept_task, l, NULL) == PR_OK);
    pr_sleep(pr_deadline_in(10));
    pr_listener_destroy(l);
    PT_EQ_ERR(pr_join(t, &r, pr_deadline_in(1000)), PR_OK);
    PT_EQ_ERR(r, PR_ECLOSED);
}

/* ---- allocation failure ---- */

/* listen, connect, accept, write, read: every step either works or fails
   cleanly. Returns PR_OK when all of it worked. */
static int net_scenario(void) {
    pr_listener *l = NULL;
    pr_conn *c = NULL, *s = NULL, *pa = NULL, *pb = NULL;
    unsigned char buf[16];
    int rc;
    if ((rc = pr_tcp_listen(&l, "127.0.0.1", 0, 4, NULL)) != PR_OK) return rc;
    if ((rc = pr_tcp_connect(&c, "localhost", pr_listener_port(l), NULL, NULL, pr_deadline_in(2000))) != PR_OK)
        goto out;
    if ((rc = pr_tcp_accept(l, &s, pr_deadline_in(2000))) != PR_OK) goto out;
    if ((rc = pr_conn_write(c, "hello", 5, pr_deadline_in(2000))) != PR_OK) goto out;
    if ((rc = (int)pr_conn_read(s, buf, sizeof buf, pr_deadline_in(2000))) < 0) goto out;
    if ((rc = pr_conn_pipe(&pa, &pb, 2)) != PR_OK) goto out;
    if ((rc = pr_conn_write(pa, "abc", 3, PR_FOREVER)) != PR_OK) goto out;
    rc = (int)pr_conn_read(pb, buf, sizeof buf, PR_FOREVER);
    rc = rc == 2 ? PR_OK : rc < 0 ? rc : PR_EPROTO;
out:
    pr_conn_destroy(pa);
    pr_conn_destroy(pb);
    pr_conn_destroy(c);
    pr_conn_destroy(s);
    pr_listener_destroy(l);
    return rc;
}

/* Destroying a pipe end while a task waits on that same end wakes it with
   PR_ECLOSED, and the memory lives until it has left (ASan in SAN=1 runs). */
typedef struct net_pd {
    pr_conn *c;
    int rc;
} net_pd;

static int net_pd_reader(void *arg) {
    net_pd *p = (net_pd *)arg;
    char x;
    p->rc = (int)pr_conn_read(p->c, &x, 1, pr_deadline_in(5000));
    return 0;
}

PT_TEST(net_pipe_destroy_under_own_reader) {
    pr_conn *a, *b;
    pr_task *t;
    net_pd p;
    PT_REQUIRE(pr_conn_pipe(&a, &b, 0) == PR_OK);
    p.c = a;
    p.rc = 1;
    PT_REQUIRE(pr_go(&t, net_pd_reader, &p, NULL) == PR_OK);
    pr_yield(); /* the reader parks on a */
    pr_conn_destroy(a);
    pr_conn_destroy(b); /* both ends gone while the reader is still inside */
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(p.rc, PR_ECLOSED);
}

/* Out of descriptors: accept backs off (other tasks keep running) and
   reports PR_EIO with EMFILE when the deadline passes, instead of spinning. */
static long net_ticks;
static int net_ticker(void *arg) {
    (void)arg;
    while (pr_sleep(pr_deadline_in(5)) == PR_OK) net_ticks++;
    return 0;
}

PT_TEST(net_accept_emfile_backs_off) {
    pr_listener *l;
    pr_conn *cl = NULL, *sv = NULL;
    pr_task *t;
    pr_err_info e;
    struct rlimit old, low;
    int probe, rc;
    PT_REQUIRE(pr_tcp_listen(&l, "127.0.0.1", 0, 8, NULL) == PR_OK);
    PT_REQUIRE(pr_tcp_connect(&cl, "127.0.0.1", pr_listener_port(l), NULL, NULL, pr_deadline_in(2000)) == PR_OK);
    PT_REQUIRE(pr_go(&t, net_ticker, NULL, NULL) == PR_OK);
    PT_REQUIRE(getrlimit(RLIMIT_NOFILE, &old) == 0);
    probe = dup(0); /* the lowest free descriptor: make it the limit */
    PT_REQUIRE(probe >= 0);
    close(probe);
    low = old;
    low.rlim_cur = (rlim_t)probe;
    PT_REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
    net_ticks = 0;
    rc = pr_tcp_accept(l, &sv, pr_deadline_in(200));
    setrlimit(RLIMIT_NOFILE, &old);
    PT_EQ_ERR(rc, PR_EIO);
    pr_listener_last_error(l, &e);
    PT_EQ_INT(e.sys_errno, EMFILE);
    PT_CHECK(net_ticks > 3); /* the other task ran while accept backed off */
    PT_EQ_ERR(pr_tcp_accept(l, &sv, pr_deadline_in(2000)), PR_OK); /* descriptors back: it goes through */
    pr_cancel(t);
    pr_join(t, NULL, PR_FOREVER);
    pr_conn_destroy(sv);
    pr_conn_destroy(cl);
    pr_listener_destroy(l);
}

PT_TEST(net_alloc_fail_sweep) {
    long n;
    int failed = 0;
    PT_EQ_ERR(net_scenario(), PR_OK); /* warm up: the scheduler's tables exist */
    for (n = 1; n < 500; n++) {
        int rc;
        pt_alloc_fail_nth(n);
        rc = net_scenario();
        if (__atomic_load_n(&pt__mem.fail_nth, __ATOMIC_SEQ_CST) > 0) { /* nothing failed: done */
            pt_alloc_fail_nth(0);
            PT_EQ_ERR(rc, PR_OK);
            break;
        }
        failed++;
        if (rc != PR_OK && rc != PR_ENOMEM)
            pt_fail(__FILE__, __LINE__, "fail-nth %ld: got %s, want PR_OK or PR_ENOMEM", n, pt_errname(rc));
    }
    pt_alloc_fail_nth(0);
    PT_CHECK(failed >= 3);
    PT_CHECK(n < 500);
}

/* A pool lookup under allocation failure: the job, the post from the helper
   thread (which retries), the list. */
PT_TEST(net_alloc_fail_dns_pool) {
    char name[128];
    long n;
    if (!net_hosts_name(name, sizeof name)) PT_SKIP("no single-label 127.0.0.1 name in /etc/hosts");
    for (n = 1; n < 100; n++) {
        pr_addrlist *l = NULL;
        int rc;
        pr__net_test_dns_cache_clear();
        pt_alloc_fail_nth(n);
        rc = pr_dns_resolve(&l, name, 80, AF_INET, NULL, pr_deadline_in(5000));
        pr_addrlist_destroy(l);
        if (rc != PR_OK && rc != PR_ENOMEM) pt_fail(__FILE__, __LINE__, "fail-nth %ld: got %s", n, pt_errname(rc));
        if (__atomic_load_n(&pt__mem.fail_nth, __ATOMIC_SEQ_CST) > 0) break;
    }
    pt_alloc_fail_nth(0);
    pr__net_test_dns_cache_clear();
    PT_CHECK(n >= 2 && n < 100);
    PT_EQ_INT(net_wait_jobs_drained(2000), 0);
}

PT_TEST(net_happy_eyeballs_ipv6_stalls_ipv4_answers) {
    pr_listener *stall, *good;
    pr_conn *fill[8], *c = NULL;
    pr_net_opts o;
    char a1[48], a2[40];
    int used, rc;
    int64_t t0, dt;
    if (pr_tcp_listen(&stall, "::1", 0, 1, NULL) != PR_OK) PT_SKIP("no IPv6 loopback");
    pr_listener_destroy(stall);
    rc = net_stalled_listener(&stall, fill, 8, &used, "::1");
    if (rc == PR_ESTATE) {
        net_destroy_all(fill, used);
        pr_listener_destroy(stall);
        PT_SKIP("this kernel does not drop SYNs to a full accept queue");
    }
    PT_REQUIRE(rc == PR_OK);
    PT_REQUIRE(pr_tcp_listen(&good, "127.0.0.1", 0, 4, NULL) == PR_OK);
    snprintf(a1, sizeof a1, "[::1]:%u", (unsigned)pr_listener_port(stall));
    snprintf(a2, sizeof a2, "127.0.0.1:%u", (unsigned)pr_listener_port(good));
    /* two IPv6 addresses first: interleaving puts IPv4 second */
    PT_EQ_ERR(pr_dns_override("he6.test", 0, a1), PR_OK);
    PT_EQ_ERR(pr_dns_override("he6.test", 0, "[::1]:1"), PR_OK);
    PT_EQ_ERR(pr_dns_override("he6.test", 0, a2), PR_OK);
    memset(&o, 0, sizeof o);
    o.attempt_delay_ms = 100;
    t0 = pr_now();
    PT_EQ_ERR(pr_tcp_connect(&c, "he6.test", 1, &o, NULL, pr_deadline_in(3000)), PR_OK);
    dt = pr_now() - t0;
    PT_CHECK(dt >= 90 && dt < 190); /* the IPv4 address went second, not third */
    pr_conn_destroy(c);
    PT_EQ_ERR(pr_dns_override(NULL, 0, NULL), PR_OK);
    net_destroy_all(fill, used);
    pr_listener_destroy(stall);
    pr_listener_destroy(good);
}

const pt_suite pt_suite_net = { "net", {
    PT_ENTRY(net_pipe_every_chunk_size),
    PT_ENTRY(net_pipe_parks_and_bounds),
    PT_ENTRY(net_tcp_echo_ipv4),
    PT_ENTRY(net_tcp_echo_localhost),
    PT_ENTRY(net_tcp_echo_ipv6),
    PT_ENTRY(net_connect_refused),
    PT_ENTRY(net_connect_refused_every_address),
    PT_ENTRY(net_listen_in_use),
    PT_ENTRY(net_tcp_nodelay_and_keepalive),
    PT_ENTRY(net_connect_timeout),
    PT_ENTRY(net_happy_eyeballs_second_address_wins),
    PT_ENTRY(net_dns_numeric_localhost_override),
    PT_ENTRY(net_dns_failure_is_edns),
    PT_ENTRY(net_dns_pool_runs_lookups_side_by_side),
    PT_ENTRY(net_dns_cancel_busy_worker),
    PT_ENTRY(net_dns_pool_and_cache),
    PT_ENTRY(net_cancel_blocked_calls),
    PT_ENTRY(net_listener_destroyed_under_acceptor),
    PT_ENTRY(net_pipe_destroy_under_own_reader),
    PT_ENTRY(net_accept_emfile_backs_off),
    PT_ENTRY(net_alloc_fail_sweep),
    PT_ENTRY(net_alloc_fail_dns_pool),
    PT_ENTRY(net_happy_eyeballs_ipv6_stalls_ipv4_answers),
    {0, 0} } };
