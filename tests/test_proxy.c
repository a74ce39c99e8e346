/* proxy: no_proxy matching and the CONNECT tunnel (the client's proxy
   requests, the loopback rule and the environment are in test_client.c). */

PT_TEST(proxy_no_proxy_match) {
    PT_EQ_INT(pr_http_no_proxy_match(NULL, "a.com"), 0);
    PT_EQ_INT(pr_http_no_proxy_match("", "a.com"), 0);
    PT_EQ_INT(pr_http_no_proxy_match("*", "anything.example"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("example.com", "example.com"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("example.com", "www.example.com"), 1);
    PT_EQ_INT(pr_http_no_proxy_match(".example.com", "www.example.com"), 1);
    PT_EQ_INT(pr_http_no_proxy_match(".example.com", "example.com"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("example.com", "badexample.com"), 0);
    PT_EQ_INT(pr_http_no_proxy_match("example.com", "example.com.evil"), 0);
    PT_EQ_INT(pr_http_no_proxy_match("foo, EXAMPLE.com ,bar", "a.Example.COM"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("example.com:8080", "example.com"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("10.1.2.3", "10.1.2.3"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("10.1.2.3", "10.1.2.33"), 0);
    PT_EQ_INT(pr_http_no_proxy_match("[::1]:80", "::1"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("fe80::1", "fe80::1"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("*.x", "a.com"), 0);
    PT_EQ_INT(pr_http_no_proxy_match(",,", "a.com"), 0);
    PT_EQ_INT(pr_http_no_proxy_match("a.com", "a.com."), 1);
    /* IP-literal hosts: compared as addresses, never by suffix */
    PT_EQ_INT(pr_http_no_proxy_match("0:0::1", "::1"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("[::1]", "[0::1]"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("2.3.4", "1.2.3.4"), 0);
    PT_EQ_INT(pr_http_no_proxy_match(".3.4", "1.2.3.4"), 0);
    /* CIDR ranges (curl >= 7.86) */
    PT_EQ_INT(pr_http_no_proxy_match("192.168.0.0/16", "192.168.77.1"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("192.168.0.0/16", "192.169.0.1"), 0);
    PT_EQ_INT(pr_http_no_proxy_match("foo.test, 10.0.0.0/8", "10.255.0.9"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("10.0.0.0/8", "11.0.0.1"), 0);
    PT_EQ_INT(pr_http_no_proxy_match("172.16.0.0/12", "172.31.255.255"), 1); /* a prefix inside a byte */
    PT_EQ_INT(pr_http_no_proxy_match("172.16.0.0/12", "172.32.0.0"), 0);
    PT_EQ_INT(pr_http_no_proxy_match("1.2.3.4/32", "1.2.3.4"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("1.2.3.4/32", "1.2.3.5"), 0);
    PT_EQ_INT(pr_http_no_proxy_match("0.0.0.0/0", "8.8.8.8"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("0.0.0.0/0", "::1"), 0); /* families never mix */
    PT_EQ_INT(pr_http_no_proxy_match("::1/128", "::1"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("::1/128", "[::1]"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("::1/128", "::2"), 0);
    PT_EQ_INT(pr_http_no_proxy_match("fe80::/10", "fe80::1234:5"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("fe80::/10", "[febf::1]"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("fe80::/10", "fec0::1"), 0);
    PT_EQ_INT(pr_http_no_proxy_match(" [fe80::]/10 ", "fe80::1"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("2001:db8::/32", "2001:db8:ffff::1"), 1);
    PT_EQ_INT(pr_http_no_proxy_match("2001:db8::/32", "2001:db9::1"), 0);
    /* a range never matches a name; malformed ranges match nothing */
    PT_EQ_INT(pr_http_no_proxy_match("10.0.0.0/8", "10.example"), 0);
    PT_EQ_INT(pr_http_no_proxy_match("10.0.0.0/33", "10.0.0.1"), 0);
    PT_EQ_INT(pr_http_no_proxy_match("::/129", "::1"), 0);
    PT_EQ_INT(pr_http_no_proxy_match("10.0.0.0/", "10.0.0.1"), 0);
    PT_EQ_INT(pr_http_no_proxy_match("10.0.0.0/x", "10.0.0.1"), 0);
    PT_EQ_INT(pr_http_no_proxy_match("10.0.0/8", "10.0.0.1"), 0);
    PT_EQ_INT(pr_http_no_proxy_match("/8", "10.0.0.1"), 0);
    PT_EQ_INT(pr_http_no_proxy_match("10.0.0.0/8, 10.0.0.1", "10.0.0.1"), 1);
}

/* Bytes the proxy sends in the same write as its 200 reply belong to the
   tunnel (whatever framing fields the reply carries): the tunnel conn
   hands them out first, then reads on. Over TLS the client speaks first,
   so a real proxy cannot do this before the ClientHello; the tunnel is
   checked directly over a pipe. */
PT_TEST(proxy_tunnel_keeps_bytes_after_reply) {
    pr_conn *a = NULL, *b = NULL;
    pr_url u, px;
    char buf[256];
    ptrdiff_t k;
    size_t len = 0, hu = 0;
    pr_err_info e;
    const char *reply = "HTTP/1.1 200 Connection established\r\nContent-Length: 3\r\n\r\nEARLY bytes";
    memset(&u, 0, sizeof u);
    memset(&px, 0, sizeof px);
    PT_REQUIRE(pr_url_parse(&u, "https://a.test/", 15, NULL) == PR_OK);
    PT_REQUIRE(pr_url_parse(&px, "http://proxy.test:3128", 22, NULL) == PR_OK);
    PT_REQUIRE(pr_conn_pipe(&a, &b, 0) == PR_OK);
    PT_EQ_ERR(pr_conn_write(b, reply, strlen(reply), pr_deadline_in(1000)), PR_OK); /* one write */
    PT_EQ_ERR(pr__proxy_tunnel(&a, &u, &px, NULL, &hu, pr_deadline_in(2000), "deadline", &e), PR_OK);
    PT_EQ_INT(hu, strlen(reply) - strlen("EARLY bytes")); /* the reply head counts toward the next head */
    if (a) {
        k = pr_conn_read(a, buf, sizeof buf - 1, pr_deadline_in(1000));
        PT_CHECK(k > 0);
        if (k > 0) len = (size_t)k;
        buf[len] = 0;
        PT_EQ_STR(buf, "EARLY bytes");
        PT_EQ_ERR(pr_conn_write(b, "later", 5, pr_deadline_in(1000)), PR_OK);
        k = pr_conn_read(a, buf, sizeof buf - 1, pr_deadline_in(1000));
        PT_EQ_INT(k, 5);
        PT_EQ_ERR(pr_conn_write(a, "up", 2, pr_deadline_in(1000)), PR_OK);
        k = pr_conn_read(b, buf, sizeof buf - 1, pr_deadline_in(1000));
        PT_CHECK(k > 0);
        buf[k > 0 ? k : 0] = 0;
        PT_CHECK(strstr(buf, "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n") == buf);
        PT_CHECK(k >= 2 && !memcmp(buf + k - 2, "up", 2));
        pr_conn_destroy(a);
    }
    pr_conn_destroy(b);
    pr_url_deinit(&u);
    pr_url_deinit(&px);
}

const pt_suite pt_suite_proxy = { "proxy", {
    PT_ENTRY(proxy_no_proxy_match),
    PT_ENTRY(proxy_tunnel_keeps_bytes_after_reply),
    {0, 0} } };
