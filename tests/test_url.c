/* url: parsing, serialising, percent-encoding, query building, resolution. */

#define URL_T_SL(u, f, want) url_t_eq_sl(__FILE__, __LINE__, (u)->f, (want))

static void url_t_eq_sl(const char *file, int line, pr_slice got, const char *want) {
    char tmp[256];
    size_t n = got.len < sizeof tmp - 1 ? got.len : sizeof tmp - 1;
    if (n) memcpy(tmp, got.ptr, n);
    tmp[n] = 0;
    if (got.len != strlen(want) || (got.len && memcmp(got.ptr, want, got.len) != 0)) pt_fail_str(file, line, tmp, want);
}

static int url_t_parse(pr_url *u, const char *s) { return pr_url_parse(u, s, strlen(s), NULL); }

PT_TEST(url_components) {
    pr_url u;
    pr_err_info e;
    PT_REQUIRE(pr_url_parse(&u, "https://user:pw@Example.COM:8443/a/b;c?x=1&y#frag", 49, &e) == PR_OK);
    URL_T_SL(&u, scheme, "https");
    URL_T_SL(&u, userinfo, "user:pw");
    URL_T_SL(&u, host, "example.com");
    URL_T_SL(&u, path, "/a/b;c");
    URL_T_SL(&u, query, "x=1&y");
    URL_T_SL(&u, fragment, "frag");
    PT_EQ_INT(u.port, 8443);
    PT_EQ_INT(u.port_explicit, 1);
    PT_EQ_INT(u.secure, 1);
    PT_EQ_INT(u.is_ipv6, 0);
    PT_CHECK(u.has_userinfo && u.has_query && u.has_fragment);
    pr_url_deinit(&u);
    PT_CHECK(u.mem_ == NULL && u.host.len == 0);
    pr_url_deinit(&u);
    pr_url_deinit(NULL);
    /* not NUL-terminated: only len bytes count */
    PT_REQUIRE(pr_url_parse(&u, "http://h/pathXYZ", 13, NULL) == PR_OK);
    URL_T_SL(&u, path, "/path");
    pr_url_deinit(&u);
}

PT_TEST(url_defaults) {
    pr_url u;
    pr_buf b;
    pr_buf_init(&b);
    PT_REQUIRE(url_t_parse(&u, "http://h") == PR_OK);
    PT_EQ_INT(u.port, 80);
    PT_EQ_INT(u.port_explicit, 0);
    PT_EQ_INT(u.secure, 0);
    PT_EQ_INT((long long)u.path.len, 0);
    PT_CHECK(!u.has_query && !u.has_fragment && !u.has_userinfo);
    PT_EQ_ERR(pr_url_target(&b, &u), PR_OK);
    PT_EQ_STR(b.data, "/");
    pr_url_deinit(&u);
    PT_REQUIRE(url_t_parse(&u, "https://h/") == PR_OK);
    PT_EQ_INT(u.port, 443);
    PT_EQ_INT(u.port_explicit, 0);
    pr_url_deinit(&u);
    /* RFC 3986 3.2.3: an empty port means the default */
    PT_REQUIRE(url_t_parse(&u, "http://h:/x") == PR_OK);
    PT_EQ_INT(u.port, 80);
    PT_EQ_INT(u.port_explicit, 0);
    pr_url_deinit(&u);
    PT_REQUIRE(url_t_parse(&u, "https://h:?q") == PR_OK);
    PT_EQ_INT(u.port, 443);
    URL_T_SL(&u, query, "q");
    pr_url_deinit(&u);
    PT_REQUIRE(url_t_parse(&u, "http://h:0080") == PR_OK);
    PT_EQ_INT(u.port, 80);
    PT_EQ_INT(u.port_explicit, 1);
    pr_url_deinit(&u);
    PT_REQUIRE(url_t_parse(&u, "http://h:65535?#") == PR_OK);
    PT_EQ_INT(u.port, 65535);
    PT_CHECK(u.has_query && u.has_fragment && u.query.len == 0 && u.fragment.len == 0);
    pr_buf_clear(&b);
    PT_EQ_ERR(pr_url_target(&b, &u), PR_OK);
    PT_EQ_STR(b.data, "/?");
    pr_url_deinit(&u);
    PT_REQUIRE(url_t_parse(&u, "http://h#f?g") == PR_OK);
    PT_CHECK(!u.has_query);
    URL_T_SL(&u, fragment, "f?g");
    pr_url_deinit(&u);
    pr_buf_deinit(&b);
}

PT_TEST(url_ipv6) {
    static const char *good[][2] = {
        { "http://[::1]:8080/x", "::1" },
        { "http://[2001:DB8::A]/", "2001:db8::a" },
        { "http://[::]/", "::" },
        { "http://[::ffff:192.0.2.1]/", "::ffff:192.0.2.1" },
        { "http://[1:2:3:4:5:6:7:8]/", "1:2:3:4:5:6:7:8" },
        { "http://[1:2:3:4:5:6:7::]/", "1:2:3:4:5:6:7::" },
        { "http://[::2:3:4:5:6:7:8]/", "::2:3:4:5:6:7:8" },
        { "http://[1:2:3:4:5:6:1.2.3.4]/", "1:2:3:4:5:6:1.2.3.4" },
        { "http://[fe80::1:ffff]:/", "fe80::1:ffff" },
    };
    static const char *bad[] = {
        "http://[::1/", "http://[1:2]/", "http://[::1%25eth0]/", "http://[fe80::1%eth0]/",
        "http://[v1.x]/", "http://[1::2::3]/", "http://[::1]x/", "http://[12345::]/",
        "http://[1:2:3:4:5:6:7:8:9]/", "http://[::1.2.3.256]/", "http://[::01.2.3.4]/",
        "http://[1:2:3:4:5:6:7:1.2.3.4]/", "http://[:1::2]/", "http://[1::2:]/", "http://[]/",
        "http://[g::1]/", "http://[::1]:99999/", "http://[1:2:3:4:5:6:7:8::]/",
        "http://::1/", "http://1::2/", "http://[::1]]/",
    };
    size_t i;
    pr_url u;
    pr_buf b;
    pr_buf_init(&b);
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        int rc = url_t_parse(&u, good[i][0]);
        PT_EQ_ERR(rc, PR_OK);
        if (rc) {
            pt_fail(__FILE__, __LINE__, "rejected %s", good[i][0]);
            continue;
        }
        URL_T_SL(&u, host, good[i][1]);
        PT_EQ_INT(u.is_ipv6, 1);
        pr_url_deinit(&u);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pr_err_info e;
        int rc = pr_url_parse(&u, bad[i], strlen(bad[i]), &e);
        if (rc != PR_EINVAL) pt_fail(__FILE__, __LINE__, "%s: got %s, want PR_EINVAL", bad[i], pr_errname(rc));
        if (rc == PR_OK) pr_url_deinit(&u);
        else PT_CHECK(e.code == PR_EINVAL && e.msg[0]);
    }
    PT_REQUIRE(url_t_parse(&u, "http://[::1]:8080/x") == PR_OK);
    PT_EQ_ERR(pr_url_authority(&b, &u, 0), PR_OK);
    PT_EQ_STR(b.data, "[::1]:8080");
    pr_buf_clear(&b);
    PT_EQ_ERR(pr_url_origin(&b, &u), PR_OK);
    PT_EQ_STR(b.data, "http://[::1]:8080");
    pr_buf_clear(&b);
    PT_EQ_ERR(pr_url_format(&b, &u, 1), PR_OK);
    PT_EQ_STR(b.data, "http://[::1]:8080/x");
    pr_url_deinit(&u);
    pr_buf_deinit(&b);
}

PT_TEST(url_userinfo) {
    pr_url u;
    pr_err_info e;
    PT_REQUIRE(url_t_parse(&u, "http://alice@h/") == PR_OK);
    URL_T_SL(&u, userinfo, "alice");
    URL_T_SL(&u, host, "h");
    pr_url_deinit(&u);
    PT_REQUIRE(url_t_parse(&u, "http://@h/") == PR_OK);
    PT_CHECK(u.has_userinfo && u.userinfo.len == 0);
    pr_url_deinit(&u);
    PT_REQUIRE(url_t_parse(&u, "http://u:p%40ss:x@h:81") == PR_OK);
    URL_T_SL(&u, userinfo, "u:p%40ss:x");
    PT_EQ_INT(u.port, 81);
    pr_url_deinit(&u);
    PT_REQUIRE(url_t_parse(&u, "http://u:@h/") == PR_OK);
    URL_T_SL(&u, userinfo, "u:");
    pr_url_deinit(&u);
    PT_EQ_ERR(pr_url_parse(&u, "http://a@b@h/", 13, &e), PR_EINVAL);
    PT_CHECK(strstr(e.msg, "userinfo") != NULL);
    PT_EQ_ERR(url_t_parse(&u, "http://a[b@h/"), PR_EINVAL);
    PT_EQ_ERR(url_t_parse(&u, "http://u@/"), PR_EINVAL);
}

PT_TEST(url_uppercase_and_idn) {
    pr_url u;
    PT_REQUIRE(url_t_parse(&u, "HTTPS://WWW.Example.Com/Path?Q=A#F") == PR_OK);
    URL_T_SL(&u, scheme, "https");
    URL_T_SL(&u, host, "www.example.com");
    URL_T_SL(&u, path, "/Path");
    URL_T_SL(&u, query, "Q=A");
    URL_T_SL(&u, fragment, "F");
    PT_EQ_INT(u.port, 443);
    pr_url_deinit(&u);
    PT_REQUIRE(url_t_parse(&u, "HtTp://B\xc3\x9c" "Cher.DE/") == PR_OK);
    URL_T_SL(&u, scheme, "http");
    URL_T_SL(&u, host, "b\xc3\x9c" "cher.de");
    pr_url_deinit(&u);
    PT_REQUIRE(url_t_parse(&u, "http://xn--bcher-kva.example/") == PR_OK);
    URL_T_SL(&u, host, "xn--bcher-kva.example");
    pr_url_deinit(&u);
    PT_REQUIRE(url_t_parse(&u, "http://127.0.0.1:8080") == PR_OK);
    URL_T_SL(&u, host, "127.0.0.1");
    PT_EQ_INT(u.is_ipv6, 0);
    pr_url_deinit(&u);
}

/* A host ending in a number is an IPv4 address in any of its old spellings
   and is stored as the dotted quad (WHATWG URL host parsing, as curl does). */
PT_TEST(url_ipv4_spellings) {
    static const struct { const char *in, *host; } ok[] = {
        { "http://127.1/", "127.0.0.1" },           { "http://127.0.0.1/", "127.0.0.1" },
        { "http://127.0.0.1./x", "127.0.0.1" },     { "http://0x7f.1/", "127.0.0.1" },
        { "http://0X7F.0.0.1/", "127.0.0.1" },      { "http://0177.0.0.1/", "127.0.0.1" },
        { "http://2130706433/", "127.0.0.1" },      { "https://0x7f000001:8443/", "127.0.0.1" },
        { "http://10.0.258/", "10.0.1.2" },         { "http://1.65536/", "1.1.0.0" },
        { "http://0/", "0.0.0.0" },                 { "http://255.255.255.255/", "255.255.255.255" },
        { "http://4294967295/", "255.255.255.255" }, { "http://00000000010.0.0.1/", "8.0.0.1" },
        { "http://1.2.3.4x/", "1.2.3.4x" },         { "http://example.com/", "example.com" },
        { "http://0x.example/", "0x.example" },    { "http://0x1g/", "0x1g" },
        { "http://0x/", "0.0.0.0" },
    };
    static const char *bad[] = {
        "http://256.1.1.1/", "http://1.2.3.4.5/", "http://4294967296/", "http://1.256.0.0.0/",
        "http://example.123/", "http://1..2/",    "http://08.0.0.1/",   "http://0x.0x.0x.0x.0x/",
        "http://1.2.3.256/",   "http://0x100000000/", "http://99999999999999999999/",
    };
    size_t i;
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        pr_url u;
        PT_EQ_ERR(pr_url_parse(&u, ok[i].in, strlen(ok[i].in), NULL), PR_OK);
        PT_EQ_MEM(u.host.ptr, ok[i].host, strlen(ok[i].host));
        PT_EQ_INT(u.host.len, strlen(ok[i].host));
        pr_url_deinit(&u);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pr_url u;
        pr_err_info e;
        PT_EQ_ERR(pr_url_parse(&u, bad[i], strlen(bad[i]), &e), PR_EINVAL);
        PT_CHECK(strstr(e.msg, "invalid IPv4 address") != NULL);
        pr_url_deinit(&u); /* a no-op after a failure */
    }
    { /* the quad is what goes out again */
        pr_url u;
        pr_buf b;
        pr_buf_init(&b);
        PT_EQ_ERR(pr_url_parse(&u, "http://127.1:8080/p?q", 21, NULL), PR_OK);
        PT_EQ_ERR(pr_url_format(&b, &u, 1), PR_OK);
        PT_EQ_STR(b.data, "http://127.0.0.1:8080/p?q");
        pr_buf_deinit(&b);
        pr_url_deinit(&u);
    }
}

PT_TEST(url_rejects) {
    static const struct { const char *s; size_t n; const char *msg; } bad[] = {
        { "http://h/a b", 12, "space" },
        { " http://h/", 10, "space" },
        { "http://h/\t", 10, "control" },
        { "http://h/\r\nX: y", 15, "control" },
        { "http://h/\x7f", 10, "control" },
        { "http://h/\0x", 11, "control" },
        { "http://h:80a/", 13, "port" },
        { "http://h:-1/", 12, "port" },
        { "http://h:+80/", 13, "port" },
        { "http://h:65536/", 15, "port" },
        { "http://h:99999999999999999999/", 30, "port" },
        { "http://h:0/", 11, "port 0" },
        { "http://h: 80/", 13, "space" },
        { "http://h/%", 10, "percent" },
        { "http://h/%4", 11, "percent" },
        { "http://h/%zz", 12, "percent" },
        { "http://h/?a=%g1", 15, "percent" },
        { "http://h/#%", 11, "percent" },
        { "http://%/", 9, "percent" },
        { "http:///x", 9, "empty host" },
        { "http://", 7, "empty host" },
        { "http://:80/", 11, "empty host" },
        { "http://::1/", 11, "empty host" },
        { "http://1::2/", 12, "IPv6" },
        { "ftp://h/", 8, "unsupported scheme" },
        { "ws://h/", 7, "unsupported scheme" },
        { "httpx://h/", 10, "unsupported scheme" },
        { "mailto:a@b", 10, "unsupported scheme" },
        { "//h/x", 5, "no scheme" },
        { "/x", 2, "no scheme" },
        { "", 0, "no scheme" },
        { "1http://h/", 10, "no scheme" },
        { "http:h/", 7, "missing" },
        { "http:/h/", 8, "missing" },
        { "http://h<x/", 11, "host" },
        { "http://h\\x/", 11, "host" },
        { "http://h]/", 10, "host" },
        { "http://h\"/", 10, "host" },
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pr_url u;
        pr_err_info e;
        int rc;
        memset(&u, 0x5a, sizeof u);
        rc = pr_url_parse(&u, bad[i].s, bad[i].n, &e);
        if (rc != PR_EINVAL) {
            pt_fail(__FILE__, __LINE__, "case %d: got %s, want PR_EINVAL", (int)i, pr_errname(rc));
            if (rc == PR_OK) pr_url_deinit(&u);
            continue;
        }
        PT_CHECK(u.mem_ == NULL && u.host.len == 0);
        PT_EQ_INT(e.code, PR_EINVAL);
        if (!strstr(e.msg, bad[i].msg)) pt_fail(__FILE__, __LINE__, "case %d: message \"%s\" lacks \"%s\"", (int)i, e.msg, bad[i].msg);
    }
    PT_EQ_ERR(pr_url_parse(NULL, "http://h", 8, NULL), PR_EINVAL);
    {
        pr_url u;
        PT_EQ_ERR(pr_url_parse(&u, NULL, 3, NULL), PR_EINVAL);
        PT_EQ_ERR(pr_url_parse(&u, NULL, 0, NULL), PR_EINVAL);
    }
}

PT_TEST(url_percent_all_bytes) {
    char all[256];
    int set, i;
    pr_buf enc, dec;
    pr_buf_init(&enc);
    pr_buf_init(&dec);
    for (i = 0; i < 256; i++) all[i] = (char)i;
    for (set = PR_URL_ENC_COMPONENT; set <= PR_URL_ENC_FORM; set++) {
        size_t k;
        pr_buf_clear(&enc);
        pr_buf_clear(&dec);
        PT_EQ_ERR(pr_url_encode(&enc, all, 256, set), PR_OK);
        for (k = 0; k < enc.len; k++) {
            unsigned char c = (unsigned char)enc.data[k];
            PT_CHECK(c > 0x20 && c < 0x7f);
            PT_CHECK(c != '#');
            if (set != PR_URL_ENC_PATH) PT_CHECK(c != '&' && c != '=');
            if (c == '%') PT_CHECK(k + 2 < enc.len && !(enc.data[k + 1] >= 'a' && enc.data[k + 1] <= 'f'));
        }
        PT_EQ_ERR(pr_url_decode(&dec, enc.data, enc.len, set == PR_URL_ENC_FORM ? PR_URL_DEC_PLUS : 0), PR_OK);
        PT_EQ_INT((long long)dec.len, 256);
        PT_EQ_MEM(dec.data, all, 256);
        /* every byte alone, too */
        for (i = 0; i < 256; i++) {
            pr_buf_clear(&enc);
            pr_buf_clear(&dec);
            PT_REQUIRE(pr_url_encode(&enc, all + i, 1, set) == PR_OK);
            PT_REQUIRE(pr_url_decode(&dec, enc.data, enc.len, set == PR_URL_ENC_FORM ? PR_URL_DEC_PLUS : 0) == PR_OK);
            PT_CHECK(dec.len == 1 && (unsigned char)dec.data[0] == (unsigned char)i);
            /* decoding a lower-case escape works too */
            pr_buf_clear(&enc);
            pr_buf_clear(&dec);
            pr_buf_printf(&enc, "%%%02x", (unsigned)i);
            PT_REQUIRE(pr_url_decode(&dec, enc.data, enc.len, 0) == PR_OK);
            PT_CHECK(dec.len == 1 && (unsigned char)dec.data[0] == (unsigned char)i);
        }
    }
    pr_buf_clear(&enc);
    PT_EQ_ERR(pr_url_encode(&enc, "a b/c?d&e=f+g~h#", 16, PR_URL_ENC_COMPONENT), PR_OK);
    PT_EQ_STR(enc.data, "a%20b%2Fc%3Fd%26e%3Df%2Bg~h%23");
    pr_buf_clear(&enc);
    PT_EQ_ERR(pr_url_encode(&enc, "a b/c?d&e=f+g~h#:@", 18, PR_URL_ENC_PATH), PR_OK);
    PT_EQ_STR(enc.data, "a%20b/c%3Fd&e=f+g~h%23:@");
    pr_buf_clear(&enc);
    PT_EQ_ERR(pr_url_encode(&enc, "a b/c?d&e=f+g~h#:@", 18, PR_URL_ENC_QUERY), PR_OK);
    PT_EQ_STR(enc.data, "a%20b/c?d%26e%3Df%2Bg~h%23:@");
    pr_buf_clear(&enc);
    PT_EQ_ERR(pr_url_encode(&enc, "a b~*\xff", 6, PR_URL_ENC_FORM), PR_OK);
    PT_EQ_STR(enc.data, "a+b%7E*%FF");
    pr_buf_clear(&enc);
    PT_EQ_ERR(pr_url_encode(&enc, "x", 1, 4), PR_EINVAL);
    PT_EQ_ERR(pr_url_encode(&enc, "x", 1, -1), PR_EINVAL);
    PT_EQ_ERR(pr_url_encode(&enc, NULL, 0, PR_URL_ENC_PATH), PR_OK);
    PT_EQ_INT((long long)enc.len, 0);
    pr_buf_deinit(&enc);
    pr_buf_deinit(&dec);
}

PT_TEST(url_decode) {
    static const char *bad[] = { "%", "%4", "%g0", "%0g", "a%zz", "ab%", "%%41", "x%2" };
    pr_buf b;
    size_t i;
    pr_buf_init(&b);
    PT_EQ_ERR(pr_url_decode(&b, "%41%6a+b%2B", 11, 0), PR_OK);
    PT_EQ_STR(b.data, "Aj+b+");
    pr_buf_clear(&b);
    PT_EQ_ERR(pr_url_decode(&b, "%41%6a+b%2B", 11, PR_URL_DEC_PLUS), PR_OK);
    PT_EQ_STR(b.data, "Aj b+");
    pr_buf_clear(&b);
    PT_EQ_ERR(pr_url_decode(&b, "a%00b", 5, 0), PR_OK);
    PT_EQ_INT((long long)b.len, 3);
    PT_EQ_MEM(b.data, "a\0b", 3);
    pr_buf_clear(&b);
    PT_EQ_ERR(pr_buf_append_str(&b, "keep"), PR_OK);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = pr_url_decode(&b, bad[i], strlen(bad[i]), 0);
        if (rc != PR_EINVAL) pt_fail(__FILE__, __LINE__, "%s: got %s, want PR_EINVAL", bad[i], pr_errname(rc));
        PT_EQ_STR(b.data, "keep");
    }
    PT_EQ_ERR(pr_url_decode(&b, NULL, 1, 0), PR_EINVAL);
    PT_EQ_ERR(pr_url_decode(&b, NULL, 0, 0), PR_OK);
    PT_EQ_STR(b.data, "keep");
    pr_buf_deinit(&b);
}

PT_TEST(url_query_build) {
    pr_buf q;
    pr_url u;
    pr_buf_init(&q);
    PT_EQ_ERR(pr_url_query_append(&q, "a", "1"), PR_OK);
    PT_EQ_STR(q.data, "a=1");
    PT_EQ_ERR(pr_url_query_append(&q, "k y", "x&y=z+#%"), PR_OK);
    PT_EQ_STR(q.data, "a=1&k%20y=x%26y%3Dz%2B%23%25");
    PT_EQ_ERR(pr_url_query_append(&q, "flag", NULL), PR_OK);
    PT_EQ_ERR(pr_url_query_append(&q, "e", ""), PR_OK);
    PT_EQ_ERR(pr_url_query_append(&q, "p", "/a?b:c@d"), PR_OK);
    PT_EQ_ERR(pr_url_query_append(&q, "u", "\xc3\xa9"), PR_OK);
    PT_EQ_STR(q.data, "a=1&k%20y=x%26y%3Dz%2B%23%25&flag&e=&p=/a?b:c@d&u=%C3%A9");
    PT_EQ_ERR(pr_url_query_append(&q, NULL, "x"), PR_EINVAL);
    {
        pr_buf s;
        pr_buf_init(&s);
        pr_buf_printf(&s, "http://h/p?%s", q.data);
        PT_REQUIRE(pr_url_parse(&u, s.data, s.len, NULL) == PR_OK);
        PT_EQ_INT((long long)u.query.len, (long long)q.len);
        pr_url_deinit(&u);
        pr_buf_deinit(&s);
    }
    pr_buf_deinit(&q);
}

static void url_t_resolve(const char *file, int line, const char *base, const char *ref, const char *want) {
    pr_buf b;
    pr_err_info e;
    int rc;
    pr_buf_init(&b);
    pr_buf_append_str(&b, "pre|");
    rc = pr_url_resolve(&b, base, strlen(base), ref, strlen(ref), &e);
    if (rc) pt_fail(file, line, "resolve \"%s\": %s (%s)", ref, pr_errname(rc), e.msg);
    else if (strncmp(b.data, "pre|", 4) != 0) pt_fail(file, line, "prefix lost");
    else if (strcmp(b.data + 4, want) != 0) pt_fail(file, line, "resolve \"%s\": got \"%s\", want \"%s\"", ref, b.data + 4, want);
    pr_buf_deinit(&b);
}
#define URL_T_RESOLVE(base, ref, want) url_t_resolve(__FILE__, __LINE__, base, ref, want)

PT_TEST(url_rfc3986_normal) {
    /* RFC 3986 section 5.4.1 */
    static const char *ex[][2] = {
        { "g:h", "g:h" },
        { "g", "http://a/b/c/g" },
        { "./g", "http://a/b/c/g" },
        { "g/", "http://a/b/c/g/" },
        { "/g", "http://a/g" },
        { "//g", "http://g" },
        { "?y", "http://a/b/c/d;p?y" },
        { "g?y", "http://a/b/c/g?y" },
        { "#s", "http://a/b/c/d;p?q#s" },
        { "g#s", "http://a/b/c/g#s" },
        { "g?y#s", "http://a/b/c/g?y#s" },
        { ";x", "http://a/b/c/;x" },
        { "g;x", "http://a/b/c/g;x" },
        { "g;x?y#s", "http://a/b/c/g;x?y#s" },
        { "", "http://a/b/c/d;p?q" },
        { ".", "http://a/b/c/" },
        { "./", "http://a/b/c/" },
        { "..", "http://a/b/" },
        { "../", "http://a/b/" },
        { "../g", "http://a/b/g" },
        { "../..", "http://a/" },
        { "../../", "http://a/" },
        { "../../g", "http://a/g" },
    };
    size_t i;
    for (i = 0; i < sizeof ex / sizeof ex[0]; i++) URL_T_RESOLVE("http://a/b/c/d;p?q", ex[i][0], ex[i][1]);
}

PT_TEST(url_rfc3986_abnormal) {
    /* RFC 3986 section 5.4.2 (strict parser: "http:g" stays "http:g") */
    static const char *ex[][2] = {
        { "../../../g", "http://a/g" },
        { "../../../../g", "http://a/g" },
        { "/./g", "http://a/g" },
        { "/../g", "http://a/g" },
        { "g.", "http://a/b/c/g." },
        { ".g", "http://a/b/c/.g" },
        { "g..", "http://a/b/c/g.." },
        { "..g", "http://a/b/c/..g" },
        { "./../g", "http://a/b/g" },
        { "./g/.", "http://a/b/c/g/" },
        { "g/./h", "http://a/b/c/g/h" },
        { "g/../h", "http://a/b/c/h" },
        { "g;x=1/./y", "http://a/b/c/g;x=1/y" },
        { "g;x=1/../y", "http://a/b/c/y" },
        { "g?y/./x", "http://a/b/c/g?y/./x" },
        { "g?y/../x", "http://a/b/c/g?y/../x" },
        { "g#s/./x", "http://a/b/c/g#s/./x" },
        { "g#s/../x", "http://a/b/c/g#s/../x" },
        { "http:g", "http:g" },
    };
    size_t i;
    for (i = 0; i < sizeof ex / sizeof ex[0]; i++) URL_T_RESOLVE("http://a/b/c/d;p?q", ex[i][0], ex[i][1]);
}

PT_TEST(url_resolve_more) {
    pr_buf b;
    pr_err_info e;
    char path[] = "/a/b/c/./../../g";
    char mid[] = "mid/content=5/../6";
    /* RFC 3986 5.2.4's own walk-throughs */
    PT_EQ_INT((long long)pr__url_remove_dots(path, strlen(path)), 4);
    PT_EQ_MEM(path, "/a/g", 4);
    PT_EQ_INT((long long)pr__url_remove_dots(mid, strlen(mid)), 5);
    PT_EQ_MEM(mid, "mid/6", 5);
    URL_T_RESOLVE("http://a", "g", "http://a/g");
    URL_T_RESOLVE("http://a", "", "http://a");
    URL_T_RESOLVE("http://a", "?x", "http://a?x");
    URL_T_RESOLVE("http://a/b#frag", "", "http://a/b");
    URL_T_RESOLVE("http://a/b?q#frag", "#f2", "http://a/b?q#f2");
    URL_T_RESOLVE("https://h:8443/x/y", "//other/z/../w", "https://other/w");
    URL_T_RESOLVE("https://h/x/y", "HTTP://O/./a", "HTTP://O/a");
    URL_T_RESOLVE("http://h/x", "1a:b", "http://h/1a:b");
    URL_T_RESOLVE("http://h/x/", "%2e%2e/y", "http://h/x/%2e%2e/y");
    URL_T_RESOLVE("foo:a/b", "../c", "foo:/c"); /* 5.2.4 as written */
    URL_T_RESOLVE("foo:a", "b", "foo:b");
    pr_buf_init(&b);
    pr_buf_append_str(&b, "keep");
    PT_EQ_ERR(pr_url_resolve(&b, "/rel", 4, "g", 1, &e), PR_EINVAL);
    PT_CHECK(strstr(e.msg, "not absolute") != NULL);
    PT_EQ_ERR(pr_url_resolve(&b, "http://a/", 9, "g h", 3, &e), PR_EINVAL);
    PT_CHECK(strstr(e.msg, "space") != NULL);
    PT_EQ_ERR(pr_url_resolve(&b, "http://a/", 9, "g\n", 2, &e), PR_EINVAL);
    PT_EQ_ERR(pr_url_resolve(&b, "http://a/", 9, "%x", 2, &e), PR_EINVAL);
    PT_EQ_ERR(pr_url_resolve(&b, "http://a/\x01", 10, "g", 1, &e), PR_EINVAL);
    PT_EQ_ERR(pr_url_resolve(&b, NULL, 1, "g", 1, &e), PR_EINVAL);
    PT_EQ_STR(b.data, "keep");
    pr_buf_deinit(&b);
}

PT_TEST(url_format_roundtrip) {
    static const char *urls[][3] = { /* input, format with fragment, without */
        { "http://h", "http://h", "http://h" },
        { "HTTP://H:/", "http://h/", "http://h/" },
        { "https://u:p@Ex.com:443/a/%20b?c=d&e#f", "https://u:p@ex.com:443/a/%20b?c=d&e#f",
          "https://u:p@ex.com:443/a/%20b?c=d&e" },
        { "http://@h?#", "http://@h?#", "http://@h?" },
        { "http://[::1]:81?q", "http://[::1]:81?q", "http://[::1]:81?q" },
        { "http://h//x/../y/./z?a?b#c#d", "http://h//x/../y/./z?a?b#c#d", "http://h//x/../y/./z?a?b" },
        { "http://h/\xc3\xa9{}|", "http://h/\xc3\xa9{}|", "http://h/\xc3\xa9{}|" },
    };
    size_t i;
    pr_buf b;
    pr_buf_init(&b);
    for (i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        pr_url u, v;
        int wf;
        PT_REQUIRE(url_t_parse(&u, urls[i][0]) == PR_OK);
        for (wf = 1; wf >= 0; wf--) {
            pr_buf_clear(&b);
            PT_EQ_ERR(pr_url_format(&b, &u, wf), PR_OK);
            PT_EQ_STR(b.data, urls[i][wf ? 1 : 2]);
            PT_REQUIRE(pr_url_parse(&v, b.data, b.len, NULL) == PR_OK);
            PT_CHECK(pr_slice_eq(u.scheme, v.scheme) && pr_slice_eq(u.userinfo, v.userinfo) &&
                     pr_slice_eq(u.host, v.host) && pr_slice_eq(u.path, v.path) && pr_slice_eq(u.query, v.query));
            PT_CHECK(u.port == v.port && u.port_explicit == v.port_explicit && u.is_ipv6 == v.is_ipv6 &&
                     u.secure == v.secure && u.has_userinfo == v.has_userinfo && u.has_query == v.has_query);
            if (wf) PT_CHECK(pr_slice_eq(u.fragment, v.fragment) && u.has_fragment == v.has_fragment);
            else PT_CHECK(!v.has_fragment);
            pr_url_deinit(&v);
        }
        pr_url_deinit(&u);
    }
    pr_buf_deinit(&b);
}

PT_TEST(url_target_authority_origin) {
    pr_url u, v;
    pr_buf b;
    pr_buf_init(&b);
    PT_REQUIRE(url_t_parse(&u, "https://u:p@H.example/a%20b/\xc3\xa9?x={1}|\"^`\\<>#frag") == PR_OK);
    PT_EQ_ERR(pr_url_target(&b, &u), PR_OK);
    PT_EQ_STR(b.data, "/a%20b/%C3%A9?x=%7B1%7D%7C%22%5E%60%5C%3C%3E");
    pr_buf_clear(&b);
    PT_EQ_ERR(pr_url_authority(&b, &u, 0), PR_OK);
    PT_EQ_STR(b.data, "h.example");
    pr_buf_clear(&b);
    PT_EQ_ERR(pr_url_authority(&b, &u, 1), PR_OK);
    PT_EQ_STR(b.data, "h.example:443");
    pr_buf_clear(&b);
    PT_EQ_ERR(pr_url_origin(&b, &u), PR_OK);
    PT_EQ_STR(b.data, "https://h.example:443");
    PT_REQUIRE(url_t_parse(&v, "HTTPS://h.EXAMPLE:443/other?z") == PR_OK);
    PT_EQ_INT(pr_url_same_origin(&u, &v), 1);
    pr_url_deinit(&v);
    PT_REQUIRE(url_t_parse(&v, "http://h.example:443/") == PR_OK);
    PT_EQ_INT(pr_url_same_origin(&u, &v), 0);
    pr_buf_clear(&b);
    PT_EQ_ERR(pr_url_authority(&b, &v, 0), PR_OK);
    PT_EQ_STR(b.data, "h.example:443");
    pr_url_deinit(&v);
    PT_REQUIRE(url_t_parse(&v, "https://h.example:8443/") == PR_OK);
    PT_EQ_INT(pr_url_same_origin(&u, &v), 0);
    pr_url_deinit(&v);
    PT_REQUIRE(url_t_parse(&v, "https://g.example/") == PR_OK);
    PT_EQ_INT(pr_url_same_origin(&u, &v), 0);
    pr_url_deinit(&v);
    pr_url_deinit(&u);
    PT_REQUIRE(url_t_parse(&u, "http://h:8080") == PR_OK);
    pr_buf_clear(&b);
    PT_EQ_ERR(pr_url_target(&b, &u), PR_OK);
    PT_EQ_ERR(pr_url_authority(&b, &u, 0), PR_OK);
    PT_EQ_STR(b.data, "/h:8080");
    pr_url_deinit(&u);
    pr_buf_deinit(&b);
}

PT_TEST(url_redirect_flow) {
    /* what the http client does with a Location header */
    pr_url cur, next;
    pr_buf base, abs;
    pr_slice loc = pr_slice_trim(pr_slice_cstr("  ../login?next=%2Fhome#top \t"));
    pr_buf_init(&base);
    pr_buf_init(&abs);
    PT_REQUIRE(url_t_parse(&cur, "https://Shop.example/cart/items?id=3#x") == PR_OK);
    PT_REQUIRE(pr_url_format(&base, &cur, 0) == PR_OK);
    PT_REQUIRE(pr_url_resolve(&abs, base.data, base.len, loc.ptr, loc.len, NULL) == PR_OK);
    PT_EQ_STR(abs.data, "https://shop.example/login?next=%2Fhome#top");
    PT_REQUIRE(pr_url_parse(&next, abs.data, abs.len, NULL) == PR_OK);
    PT_EQ_INT(pr_url_same_origin(&cur, &next), 1);
    pr_url_deinit(&next);
    pr_buf_clear(&abs);
    PT_REQUIRE(pr_url_resolve(&abs, base.data, base.len, "ftp://x/", 8, NULL) == PR_OK);
    PT_EQ_ERR(pr_url_parse(&next, abs.data, abs.len, NULL), PR_EINVAL);
    pr_url_deinit(&cur);
    pr_buf_deinit(&base);
    pr_buf_deinit(&abs);
}

/* Fail the 1st, 2nd, ... allocation of op until it succeeds: each failure must
   be PR_ENOMEM with out unchanged; the harness checks for leaks. */
PT_TEST(url_alloc_fail_sweep) {
    static const char *s = "https://user@[::1]:8443/p/a%20th?q=1#f";
    long n;
    int op;
    for (op = 0; op < 7; op++) {
        for (n = 1; n < 50; n++) {
            pr_buf b;
            pr_url u, src;
            int rc;
            pr_buf_init(&b);
            PT_REQUIRE(pr_url_parse(&src, s, strlen(s), NULL) == PR_OK);
            pt_alloc_fail_nth(n);
            switch (op) {
            case 0: rc = pr_url_parse(&u, s, strlen(s), NULL); if (!rc) pr_url_deinit(&u); break;
            case 1: rc = pr_url_format(&b, &src, 1); break;
            case 2: rc = pr_url_target(&b, &src); if (!rc) rc = pr_url_origin(&b, &src); if (!rc) rc = pr_url_authority(&b, &src, 1); break;
            case 3: rc = pr_url_encode(&b, s, strlen(s), PR_URL_ENC_COMPONENT); break;
            case 4: rc = pr_url_decode(&b, "%41%42xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 72, 0); break;
            case 5: rc = pr_url_query_append(&b, "key with spaces and more text to force growth", "value&more=stuff+plus"); break;
            default: rc = pr_url_resolve(&b, s, strlen(s), "../../x/y/z/long/reference/to/grow/the/buffer?q", 47, NULL); break;
            }
            pt_alloc_fail_nth(0);
            pr_url_deinit(&src);
            if (rc == PR_OK) {
                pr_buf_deinit(&b);
                break;
            }
            PT_EQ_ERR(rc, PR_ENOMEM);
            PT_EQ_INT((long long)b.len, 0);
            pr_buf_deinit(&b);
        }
        PT_CHECK(n > 1 && n < 50);
    }
}

const pt_suite pt_suite_url = { "url", {
    PT_ENTRY(url_components),
    PT_ENTRY(url_defaults),
    PT_ENTRY(url_ipv6),
    PT_ENTRY(url_userinfo),
    PT_ENTRY(url_uppercase_and_idn),
    PT_ENTRY(url_ipv4_spellings),
    PT_ENTRY(url_rejects),
    PT_ENTRY(url_percent_all_bytes),
    PT_ENTRY(url_decode),
    PT_ENTRY(url_query_build),
    PT_ENTRY(url_rfc3986_normal),
    PT_ENTRY(url_rfc3986_abnormal),
    PT_ENTRY(url_resolve_more),
    PT_ENTRY(url_format_roundtrip),
    PT_ENTRY(url_target_authority_origin),
    PT_ENTRY(url_redirect_flow),
    PT_ENTRY(url_alloc_fail_sweep),
    {0, 0} } };
