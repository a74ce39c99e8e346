/* json: reader, getters, limits, JSONTestSuite, writer, round trips. */
#include <dirent.h>
#include <sys/stat.h>

/* Parse a NUL-terminated text with opts; returns the code. */
static int pt__json_parse(pr_json_doc **d, const char *s, const pr_json_opts *o, pr_json_error *e) {
    return pr_json_parse(d, s, strlen(s), o, e);
}

/* Structural equality of two values: iterative (an explicit stack), as deep
   documents would overflow a coroutine stack. */
static int pt__json_scalar_eq(const pr_json *a, const pr_json *b) {
    size_t la, lb;
    const char *sa, *sb;
    double da, db;
    int64_t ia, ib;
    if (pr_json_type(a) != pr_json_type(b)) return 0;
    switch (pr_json_type(a)) {
    case PR_JSON_NUMBER:
        if (pr_json_int(a, &ia) == PR_OK && pr_json_int(b, &ib) == PR_OK) return ia == ib;
        pr_json_double(a, &da);
        pr_json_double(b, &db);
        return da == db;
    case PR_JSON_STRING:
        sa = pr_json_string(a, &la);
        sb = pr_json_string(b, &lb);
        return la == lb && memcmp(sa, sb, la) == 0;
    case PR_JSON_ARRAY: case PR_JSON_OBJECT:
        return pr_json_len(a) == pr_json_len(b);
    default:
        return 1;
    }
}

static int pt__json_eq(const pr_json *a, const pr_json *b) {
    const pr_json **st;
    size_t n = 0, cap = 64;
    int eq = 1;
    st = (const pr_json **)malloc(cap * sizeof *st);
    if (!st) return 0;
    st[n++] = a;
    st[n++] = b;
    while (n && eq) {
        pr_json_iter x, y;
        b = st[--n];
        a = st[--n];
        if (!pt__json_scalar_eq(a, b)) {
            eq = 0;
            break;
        }
        pr_json_iter_init(&x, a);
        pr_json_iter_init(&y, b);
        while (pr_json_iter_next(&x) && pr_json_iter_next(&y)) {
            if (x.key_len != y.key_len || (x.key_len && memcmp(x.key, y.key, x.key_len) != 0)) {
                eq = 0;
                break;
            }
            if (n + 2 > cap) {
                const pr_json **ns = (const pr_json **)realloc((void *)st, 2 * cap * sizeof *st);
                if (!ns) {
                    eq = 0;
                    break;
                }
                st = ns;
                cap *= 2;
            }
            st[n++] = x.value;
            st[n++] = y.value;
        }
    }
    free((void *)st);
    return eq;
}

/* Write v compactly into out (cleared first). */
static int pt__json_write(const pr_json *v, pr_buf *out) {
    pr_json_writer w;
    int rc;
    pr_buf_clear(out);
    pr_json_writer_init(&w, out);
    if ((rc = pr_json_write_value(&w, v)) != 0) return rc;
    return pr_json_writer_finish(&w);
}

/* parse -> write -> parse: both parses succeed and are equal. */
static int pt__json_roundtrip(const char *text, size_t len, const pr_json_opts *o) {
    pr_json_doc *a = NULL, *b = NULL;
    pr_buf out;
    int ok = 0;
    pr_buf_init(&out);
    if (pr_json_parse(&a, text, len, o, NULL) == PR_OK && pt__json_write(pr_json_root(a), &out) == PR_OK &&
        pr_json_parse(&b, out.data, out.len, o, NULL) == PR_OK)
        ok = pt__json_eq(pr_json_root(a), pr_json_root(b));
    pr_json_doc_destroy(a);
    pr_json_doc_destroy(b);
    pr_buf_deinit(&out);
    return ok;
}

PT_TEST(json_getters) {
    const char *t = "{\"a\": [1, -2, 3.5, true, false, null, \"s\"], \"b\": {\"c\": \"d\"}, \"e\": {}, \"f\": []}";
    pr_json_doc *d = NULL;
    const pr_json *r, *a, *v;
    int64_t i = 0;
    double x = 0;
    int bo = 7;
    size_t len = 9;
    PT_EQ_ERR(pt__json_parse(&d, t, NULL, NULL), PR_OK);
    PT_REQUIRE(d != NULL);
    r = pr_json_root(d);
    PT_EQ_INT(pr_json_type(r), PR_JSON_OBJECT);
    PT_EQ_INT(pr_json_len(r), 4);
    a = pr_json_get(r, "a");
    PT_EQ_INT(pr_json_type(a), PR_JSON_ARRAY);
    PT_EQ_INT(pr_json_len(a), 7);
    PT_EQ_ERR(pr_json_int(pr_json_at(a, 0), &i), PR_OK);
    PT_EQ_INT(i, 1);
    PT_EQ_ERR(pr_json_int(pr_json_at(a, 1), &i), PR_OK);
    PT_EQ_INT(i, -2);
    PT_EQ_ERR(pr_json_int(pr_json_at(a, 2), &i), PR_EINVAL);
    PT_EQ_INT(i, -2);
    PT_EQ_ERR(pr_json_double(pr_json_at(a, 2), &x), PR_OK);
    PT_CHECK(x == 3.5);
    PT_EQ_ERR(pr_json_double(pr_json_at(a, 1), &x), PR_OK);
    PT_CHECK(x == -2.0);
    PT_EQ_ERR(pr_json_bool(pr_json_at(a, 3), &bo), PR_OK);
    PT_EQ_INT(bo, 1);
    PT_EQ_ERR(pr_json_bool(pr_json_at(a, 4), &bo), PR_OK);
    PT_EQ_INT(bo, 0);
    PT_EQ_ERR(pr_json_bool(pr_json_at(a, 5), &bo), PR_EINVAL);
    PT_CHECK(pr_json_is_null(pr_json_at(a, 5)));
    PT_CHECK(!pr_json_is_null(pr_json_at(a, 4)));
    PT_CHECK(!pr_json_is_null(NULL));
    PT_EQ_STR(pr_json_string(pr_json_at(a, 6), &len), "s");
    PT_EQ_INT(len, 1);
    PT_CHECK(pr_json_string(pr_json_at(a, 0), &len) == NULL);
    PT_EQ_INT(len, 0);
    PT_CHECK(pr_json_at(a, 7) == NULL);
    PT_CHECK(pr_json_at(r, 0) == NULL);
    PT_EQ_ERR(pr_json_int(pr_json_at(a, 6), &i), PR_EINVAL);
    PT_EQ_ERR(pr_json_double(pr_json_at(a, 6), &x), PR_EINVAL);
    PT_EQ_ERR(pr_json_int(NULL, &i), PR_EINVAL);
    v = pr_json_get(pr_json_get(r, "b"), "c");
    PT_EQ_STR(pr_json_string(v, NULL), "d");
    PT_CHECK(pr_json_get(r, "zz") == NULL);
    PT_CHECK(pr_json_get(a, "a") == NULL);
    PT_CHECK(pr_json_get(r, NULL) == NULL);
    PT_EQ_INT(pr_json_len(pr_json_get(r, "e")), 0);
    PT_EQ_INT(pr_json_type(pr_json_get(r, "f")), PR_JSON_ARRAY);
    PT_EQ_INT(pr_json_len(pr_json_get(r, "f")), 0);
    PT_EQ_INT(pr_json_len(pr_json_at(a, 0)), 0);
    PT_EQ_INT(pr_json_type(NULL), 0);
    PT_EQ_INT(pr_json_len(NULL), 0);
    pr_json_doc_destroy(d);
    pr_json_doc_destroy(NULL);
    PT_CHECK(pr_json_root(NULL) == NULL);
}

PT_TEST(json_iterator) {
    pr_json_doc *d = NULL;
    pr_json_iter it;
    int64_t v;
    const char *keys[] = { "x", "y", "x" };
    size_t n = 0;
    PT_EQ_ERR(pt__json_parse(&d, "{\"x\":1,\"y\":2,\"x\":3}", NULL, NULL), PR_OK);
    PT_REQUIRE(d);
    pr_json_iter_init(&it, pr_json_root(d));
    while (pr_json_iter_next(&it)) {
        PT_REQUIRE(n < 3);
        PT_EQ_INT(it.index, n);
        PT_EQ_STR(it.key, keys[n]);
        PT_EQ_INT(it.key_len, 1);
        PT_EQ_ERR(pr_json_int(it.value, &v), PR_OK);
        PT_EQ_INT(v, (long long)n + 1);
        n++;
    }
    PT_EQ_INT(n, 3);
    PT_CHECK(!pr_json_iter_next(&it));
    /* duplicate keys: the last one wins */
    PT_EQ_ERR(pr_json_int(pr_json_get(pr_json_root(d), "x"), &v), PR_OK);
    PT_EQ_INT(v, 3);
    pr_json_doc_destroy(d);
    PT_EQ_ERR(pt__json_parse(&d, "[10,20]", NULL, NULL), PR_OK);
    PT_REQUIRE(d);
    pr_json_iter_init(&it, pr_json_root(d));
    n = 0;
    while (pr_json_iter_next(&it)) {
        PT_CHECK(it.key == NULL);
        PT_EQ_ERR(pr_json_int(it.value, &v), PR_OK);
        PT_EQ_INT(v, 10 * ((long long)n + 1));
        n++;
    }
    PT_EQ_INT(n, 2);
    pr_json_iter_init(&it, pr_json_at(pr_json_root(d), 0));
    PT_CHECK(!pr_json_iter_next(&it));
    pr_json_iter_init(&it, NULL);
    PT_CHECK(!pr_json_iter_next(&it));
    pr_json_doc_destroy(d);
}

PT_TEST(json_scalars_at_top_level) {
    static const char *ok[] = { "0", "-0", " 1 ", "\"x\"", "true", "false", "null", "\t\r\n[]\n", "1e5", "-1.5E-3" };
    size_t i;
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        pr_json_doc *d = NULL;
        PT_EQ_ERR(pt__json_parse(&d, ok[i], NULL, NULL), PR_OK);
        pr_json_doc_destroy(d);
    }
}

PT_TEST(json_strings_nul_and_escapes) {
    pr_json_doc *d = NULL;
    size_t len = 0;
    const char *s;
    const pr_json *r;
    PT_EQ_ERR(pt__json_parse(&d, "[\"a\\u0000b\", \"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"\\u00e9\\u20AC\\ud83d\\ude00\", \"\xc3\xa9\"]",
                             NULL, NULL), PR_OK);
    PT_REQUIRE(d);
    r = pr_json_root(d);
    s = pr_json_string(pr_json_at(r, 0), &len);
    PT_EQ_INT(len, 3);
    PT_EQ_MEM(s, "a\0b", 4);
    s = pr_json_string(pr_json_at(r, 1), &len);
    PT_EQ_INT(len, 8);
    PT_EQ_STR(s, "\"\\/\b\f\n\r\t");
    s = pr_json_string(pr_json_at(r, 2), &len);
    PT_EQ_STR(s, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    PT_EQ_STR(pr_json_string(pr_json_at(r, 3), NULL), "\xc3\xa9");
    pr_json_doc_destroy(d);
    /* a key containing U+0000 */
    PT_EQ_ERR(pt__json_parse(&d, "{\"k\\u0000z\":1,\"k\":2}", NULL, NULL), PR_OK);
    PT_REQUIRE(d);
    PT_CHECK(pr_json_getn(pr_json_root(d), "k\0z", 3) != NULL);
    PT_CHECK(pr_json_getn(pr_json_root(d), "k\0y", 3) == NULL);
    PT_CHECK(pr_json_get(pr_json_root(d), "k") != NULL);
    pr_json_doc_destroy(d);
}

PT_TEST(json_surrogates) {
    pr_json_doc *d = NULL;
    pr_json_error e;
    pr_json_opts o;
    static const char *lone[] = { "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800x\"", "\"\\ud800\\u0041\"", "\"\\ud800\\ud800\"" };
    static const char *want[] = { "\xef\xbf\xbd", "\xef\xbf\xbd", "\xef\xbf\xbdx", "\xef\xbf\xbd\x41",
                                  "\xef\xbf\xbd\xef\xbf\xbd" };
    size_t i;
    memset(&o, 0, sizeof o);
    o.replace_lone_surrogates = 1;
    for (i = 0; i < 5; i++) {
        PT_EQ_ERR(pt__json_parse(&d, lone[i], NULL, &e), PR_EPROTO);
        PT_CHECK(d == NULL);
        PT_EQ_INT(e.offset, 1);
        PT_CHECK(strstr(e.msg, "surrogate") != NULL);
        PT_EQ_ERR(pt__json_parse(&d, lone[i], &o, &e), PR_OK);
        PT_EQ_INT(e.code, PR_OK);
        PT_EQ_STR(pr_json_string(pr_json_root(d), NULL), want[i]);
        pr_json_doc_destroy(d);
    }
    PT_EQ_ERR(pt__json_parse(&d, "\"\\uD834\\uDD1E\"", NULL, NULL), PR_OK);
    PT_EQ_STR(pr_json_string(pr_json_root(d), NULL), "\xf0\x9d\x84\x9e");
    pr_json_doc_destroy(d);
}

PT_TEST(json_integers) {
    static const struct { const char *t; int rc; long long v; } c[] = {
        { "0", PR_OK, 0 }, { "-0", PR_OK, 0 }, { "123456789012345678", PR_OK, 123456789012345678LL },
        { "9223372036854775807", PR_OK, INT64_MAX }, { "-9223372036854775808", PR_OK, INT64_MIN },
        { "9223372036854775808", PR_ELIMIT, 0 }, { "-9223372036854775809", PR_ELIMIT, 0 },
        { "99999999999999999999", PR_ELIMIT, 0 }, { "123456789012345678901234567890", PR_ELIMIT, 0 },
        { "1.0", PR_EINVAL, 0 }, { "1e2", PR_EINVAL, 0 },
    };
    size_t i;
    for (i = 0; i < sizeof c / sizeof c[0]; i++) {
        pr_json_doc *d = NULL;
        int64_t v = 0;
        double x = 0;
        PT_EQ_ERR(pt__json_parse(&d, c[i].t, NULL, NULL), PR_OK);
        PT_REQUIRE(d);
        PT_EQ_ERR(pr_json_int(pr_json_root(d), &v), c[i].rc);
        if (c[i].rc == PR_OK) PT_EQ_INT(v, c[i].v);
        PT_EQ_ERR(pr_json_double(pr_json_root(d), &x), PR_OK);
        PT_CHECK(x == strtod(c[i].t, NULL));
        pr_json_doc_destroy(d);
    }
}

PT_TEST(json_doubles) {
    static const char *t[] = { "0.1", "1e-7", "2.2250738585072014e-308", "4.9e-324", "1.7976931348623157e308",
                               "123.456e-5", "0.000001", "1E+22", "9007199254740993", "3.14159265358979323846",
                               "1e-400", "-0.0", "0.1000000000000000055511151231257827021181583404541015625",
                               "12345678901234567890123e-3" };
    size_t i;
    for (i = 0; i < sizeof t / sizeof t[0]; i++) {
        pr_json_doc *d = NULL;
        double x = 1;
        PT_EQ_ERR(pt__json_parse(&d, t[i], NULL, NULL), PR_OK);
        PT_REQUIRE(d);
        PT_EQ_ERR(pr_json_double(pr_json_root(d), &x), PR_OK);
        if (x != strtod(t[i], NULL)) pt_fail(__FILE__, __LINE__, "%s: got %.17g, want %.17g", t[i], x, strtod(t[i], NULL));
        pr_json_doc_destroy(d);
    }
    {
        pr_json_doc *d = NULL;
        pr_json_error e;
        PT_EQ_ERR(pt__json_parse(&d, "[1e400]", NULL, &e), PR_ELIMIT);
        PT_EQ_INT(e.offset, 1);
        PT_EQ_ERR(pt__json_parse(&d, "-1e309", NULL, &e), PR_ELIMIT);
        PT_CHECK(d == NULL);
    }
}

PT_TEST(json_error_positions) {
    static const struct { const char *t; size_t off, line, col; } c[] = {
        { "", 0, 1, 1 }, { "[1,]", 3, 1, 4 }, { "{\"a\" 1}", 5, 1, 6 }, { "[1,\n 2,\n x]", 9, 3, 2 },
        { "\"abc", 4, 1, 5 }, { "[1] 2", 4, 1, 5 }, { "01", 1, 1, 2 }, { "[tru]", 1, 1, 2 },
        { "\"a\x01\"", 2, 1, 3 }, { "\"\\x\"", 1, 1, 2 }, { "\"\xc3\"", 1, 1, 2 }, { "{\"a\":1,}", 7, 1, 8 },
        { "1.", 2, 1, 3 }, { "-", 1, 1, 2 }, { "\xef\xbb\xbf[]", 0, 1, 1 }, { "[1 2]", 3, 1, 4 },
    };
    size_t i;
    for (i = 0; i < sizeof c / sizeof c[0]; i++) {
        pr_json_doc *d = (pr_json_doc *)1;
        pr_json_error e;
        PT_EQ_ERR(pt__json_parse(&d, c[i].t, NULL, &e), PR_EPROTO);
        PT_CHECK(d == NULL);
        PT_EQ_INT(e.code, PR_EPROTO);
        if (e.offset != c[i].off || e.line != c[i].line || e.column != c[i].col)
            pt_fail(__FILE__, __LINE__, "case %lu: got %lu:%lu:%lu (%s), want %lu:%lu:%lu", (unsigned long)i,
                    (unsigned long)e.offset, (unsigned long)e.line, (unsigned long)e.column, e.msg,
                    (unsigned long)c[i].off, (unsigned long)c[i].line, (unsigned long)c[i].col);
        PT_CHECK(e.msg[0] != 0);
    }
    PT_EQ_ERR(pr_json_parse(NULL, "1", 1, NULL, NULL), PR_EINVAL);
    {
        pr_json_doc *d;
        PT_EQ_ERR(pr_json_parse(&d, NULL, 1, NULL, NULL), PR_EINVAL);
        PT_EQ_ERR(pr_json_parse(&d, NULL, 0, NULL, NULL), PR_EPROTO);
        /* an embedded NUL outside strings is an error, not an end */
        PT_EQ_ERR(pr_json_parse(&d, "[1]\0", 4, NULL, NULL), PR_EPROTO);
        PT_EQ_ERR(pr_json_parse(&d, "[1]", 2, NULL, NULL), PR_EPROTO);
    }
}

PT_TEST(json_limits) {
    pr_json_doc *d = NULL;
    pr_json_error e;
    pr_json_opts o;
    char *deep;
    size_t i, n = 100000;
    /* depth: default 512 */
    deep = (char *)malloc(2 * n + 1);
    PT_REQUIRE(deep);
    for (i = 0; i < n; i++) deep[i] = '[', deep[n + i] = ']';
    PT_EQ_ERR(pr_json_parse(&d, deep, 2 * n, NULL, &e), PR_ELIMIT);
    PT_EQ_INT(e.offset, 512);
    PT_EQ_ERR(pr_json_parse(&d, deep + n - 512, 1024, NULL, &e), PR_OK);
    pr_json_doc_destroy(d);
    PT_EQ_ERR(pr_json_parse(&d, deep + n - 513, 1026, NULL, &e), PR_ELIMIT);
    memset(&o, 0, sizeof o);
    o.max_depth = 3;
    PT_EQ_ERR(pt__json_parse(&d, "[[[1]]]", &o, NULL), PR_OK);
    pr_json_doc_destroy(d);
    PT_EQ_ERR(pt__json_parse(&d, "[[{\"a\":[]}]]", &o, &e), PR_ELIMIT);
    PT_EQ_INT(e.offset, 7);
    o.max_depth = 200000;
    PT_EQ_ERR(pr_json_parse(&d, deep, 2 * n, &o, &e), PR_OK);
    PT_EQ_INT(pr_json_len(pr_json_root(d)), 1);
    {
        pr_buf b;
        pr_json_writer w;
        pr_buf_init(&b);
        pr_json_writer_init(&w, &b);
        PT_EQ_ERR(pr_json_write_value(&w, pr_json_root(d)), PR_ELIMIT);
        pr_buf_deinit(&b);
    }
    pr_json_doc_destroy(d);
    free(deep);
    /* size */
    memset(&o, 0, sizeof o);
    o.max_size = 5;
    PT_EQ_ERR(pt__json_parse(&d, "[1,2]", &o, NULL), PR_OK);
    pr_json_doc_destroy(d);
    PT_EQ_ERR(pt__json_parse(&d, "[1,23]", &o, &e), PR_ELIMIT);
    PT_EQ_INT(e.code, PR_ELIMIT);
    /* string (decoded length counts) */
    memset(&o, 0, sizeof o);
    o.max_string = 3;
    PT_EQ_ERR(pt__json_parse(&d, "[\"abc\", \"\\u0041\\u0042\\u0043\"]", &o, NULL), PR_OK);
    pr_json_doc_destroy(d);
    PT_EQ_ERR(pt__json_parse(&d, "[\"abc\", \"abcd\"]", &o, &e), PR_ELIMIT);
    PT_EQ_INT(e.offset, 8);
    PT_EQ_ERR(pt__json_parse(&d, "{\"abcd\": 1}", &o, &e), PR_ELIMIT);
    PT_EQ_ERR(pt__json_parse(&d, "{\"abc\": 1}", &o, &e), PR_OK);
    pr_json_doc_destroy(d);
}

/* A big document grows the arena over several chunks. */
PT_TEST(json_large_document) {
    pr_buf b;
    pr_json_writer w;
    pr_json_doc *d = NULL;
    int i;
    int64_t v;
    pr_buf_init(&b);
    pr_json_writer_init(&w, &b);
    PT_EQ_ERR(pr_json_begin_array(&w), PR_OK);
    for (i = 0; i < 100000; i++) {
        PT_EQ_ERR(pr_json_begin_object(&w), PR_OK);
        PT_EQ_ERR(pr_json_key(&w, "i", 1), PR_OK);
        PT_EQ_ERR(pr_json_write_int(&w, i), PR_OK);
        PT_EQ_ERR(pr_json_key(&w, "s", 1), PR_OK);
        PT_EQ_ERR(pr_json_write_string(&w, "text\n", 5), PR_OK);
        PT_EQ_ERR(pr_json_end_object(&w), PR_OK);
    }
    PT_EQ_ERR(pr_json_end_array(&w), PR_OK);
    PT_EQ_ERR(pr_json_writer_finish(&w), PR_OK);
    PT_EQ_ERR(pr_json_parse(&d, b.data, b.len, NULL, NULL), PR_OK);
    PT_REQUIRE(d);
    PT_EQ_INT(pr_json_len(pr_json_root(d)), 100000);
    PT_EQ_ERR(pr_json_int(pr_json_get(pr_json_at(pr_json_root(d), 99999), "i"), &v), PR_OK);
    PT_EQ_INT(v, 99999);
    pr_json_doc_destroy(d);
    PT_CHECK(pt__json_roundtrip(b.data, b.len, NULL));
    pr_buf_deinit(&b);
}

PT_TEST(json_alloc_fail_sweep) {
    const char *t = "{\"a\":[1,2,{\"b\":\"\\u00e9x\",\"c\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}],"
                    "\"long\":\"0123456789012345678901234567890123456789012345678901234567890123456789"
                    "0123456789012345678901234567890123456789012345678901234567890123456789"
                    "0123456789012345678901234567890123456789012345678901234567890123456789"
                    "0123456789012345678901234567890123456789012345678901234567890123456789"
                    "0123456789012345678901234567890123456789012345678901234567890123456789"
                    "0123456789012345678901234567890123456789012345678901234567890123456789"
                    "0123456789012345678901234567890123456789012345678901234567890123456789"
                    "0123456789012345678901234567890123456789012345678901234567890123456789"
                    "0123456789012345678901234567890123456789012345678901234567890123456789\","
                    "\"arr\":[0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,"
                    "0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9]}";
    long n;
    int rc = PR_ENOMEM, failures = 0;
    for (n = 1; n < 1000 && rc != PR_OK; n++) {
        pr_json_doc *d = NULL;
        pr_json_error e;
        pt_alloc_fail_nth(n);
        rc = pt__json_parse(&d, t, NULL, &e);
        pt_alloc_fail_nth(0);
        if (rc == PR_OK) {
            PT_CHECK(d != NULL);
            pr_json_doc_destroy(d);
        } else {
            PT_EQ_ERR(rc, PR_ENOMEM);
            PT_EQ_ERR(e.code, PR_ENOMEM);
            PT_CHECK(d == NULL);
            failures++;
        }
    }
    PT_EQ_ERR(rc, PR_OK);
    PT_CHECK(failures >= 3);
    /* the writer's ENOMEM is sticky */
    {
        pr_json_doc *d = NULL;
        pr_buf b;
        int done = 0;
        PT_EQ_ERR(pt__json_parse(&d, t, NULL, NULL), PR_OK);
        PT_REQUIRE(d);
        for (n = 1; n < 100 && !done; n++) {
            pr_json_writer w;
            pr_buf_init(&b);
            pr_json_writer_init(&w, &b);
            pt_alloc_fail_nth(n);
            rc = pr_json_write_value(&w, pr_json_root(d));
            pt_alloc_fail_nth(0);
            if (rc == PR_OK) done = 1;
            else {
                PT_EQ_ERR(rc, PR_ENOMEM);
                PT_EQ_ERR(pr_json_write_null(&w), PR_ENOMEM);
                PT_EQ_ERR(pr_json_writer_finish(&w), PR_ENOMEM);
            }
            pr_buf_deinit(&b);
        }
        PT_CHECK(done);
        pr_json_doc_destroy(d);
    }
}

/* The project's own conformance cases: each production of the RFC 8259
   grammar, accepted and rejected, so the grammar stays covered where the
   external JSONTestSuite is absent. Lengths are explicit (U+0000 cases). */
typedef struct {
    const char *text;
    size_t len; /* 0: strlen(text) */
    int want;   /* PR_OK or PR_EPROTO */
} pt__json_case;

PT_TEST(json_rfc8259_grammar) {
    static const pt__json_case cases[] = {
        /* JSON-text = ws value ws; ws is exactly space, tab, LF, CR */
        {" \t\n\r1 \t\n\r", 0, PR_OK}, {"\f1", 0, PR_EPROTO}, {"1\v", 0, PR_EPROTO},
        {"\xc2\xa0" "1", 0, PR_EPROTO}, {"", 0, PR_EPROTO}, {"   ", 0, PR_EPROTO},
        {"1 2", 0, PR_EPROTO}, {"[] []", 0, PR_EPROTO}, {"{}x", 0, PR_EPROTO},
        {"\xef\xbb\xbf" "1", 0, PR_EPROTO}, {"1\0", 2, PR_EPROTO},
        /* literals: lower case only, whole words */
        {"true", 0, PR_OK}, {"false", 0, PR_OK}, {"null", 0, PR_OK}, {"True", 0, PR_EPROTO},
        {"NULL", 0, PR_EPROTO}, {"tru", 0, PR_EPROTO}, {"nulll", 0, PR_EPROTO}, {"undefined", 0, PR_EPROTO},
        /* object = { [ member *( , member ) ] }; member = string : value */
        {"{}", 0, PR_OK}, {"{ \"a\" : 1 , \"b\" : [ ] }", 0, PR_OK}, {"{\"a\":1,\"a\":2}", 0, PR_OK},
        {"{\"a\":1,}", 0, PR_EPROTO}, {"{,}", 0, PR_EPROTO}, {"{\"a\" 1}", 0, PR_EPROTO},
        {"{\"a\":}", 0, PR_EPROTO}, {"{a:1}", 0, PR_EPROTO}, {"{1:1}", 0, PR_EPROTO},
        {"{'a':1}", 0, PR_EPROTO}, {"{\"a\":1", 0, PR_EPROTO}, {"{\"a\"::1}", 0, PR_EPROTO},
        {"{\"a\":1;\"b\":2}", 0, PR_EPROTO}, {"{\"a\":1}}", 0, PR_EPROTO},
        /* array = [ [ value *( , value ) ] ] */
        {"[]", 0, PR_OK}, {"[ 1 , \"x\" , null , {} , [ [ ] ] ]", 0, PR_OK}, {"[1,]", 0, PR_EPROTO},
        {"[,1]", 0, PR_EPROTO}, {"[1,,2]", 0, PR_EPROTO}, {"[1 2]", 0, PR_EPROTO}, {"[", 0, PR_EPROTO},
        {"]", 0, PR_EPROTO}, {"[1]]", 0, PR_EPROTO}, {"[1:2]", 0, PR_EPROTO},
        /* number = [ minus ] int [ frac ] [ exp ] */
        {"0", 0, PR_OK}, {"-0", 0, PR_OK}, {"123", 0, PR_OK}, {"-123", 0, PR_OK}, {"0.5", 0, PR_OK},
        {"1.25e10", 0, PR_OK}, {"1E+2", 0, PR_OK}, {"1e-2", 0, PR_OK}, {"-0.0e0", 0, PR_OK},
        {"+1", 0, PR_EPROTO}, {"01", 0, PR_EPROTO}, {"-01", 0, PR_EPROTO}, {"00", 0, PR_EPROTO},
        {".5", 0, PR_EPROTO}, {"1.", 0, PR_EPROTO}, {"1.e5", 0, PR_EPROTO}, {"1e", 0, PR_EPROTO},
        {"1e+", 0, PR_EPROTO}, {"1ee2", 0, PR_EPROTO}, {"-", 0, PR_EPROTO}, {"--1", 0, PR_EPROTO},
        {"0x10", 0, PR_EPROTO}, {"Infinity", 0, PR_EPROTO}, {"-Infinity", 0, PR_EPROTO},
        {"NaN", 0, PR_EPROTO}, {"1_000", 0, PR_EPROTO}, {"- 1", 0, PR_EPROTO}, {"1.5.2", 0, PR_EPROTO},
        /* string = " *char "; escapes; U+0000..U+001F must be escaped */
        {"\"\"", 0, PR_OK}, {"\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", 0, PR_OK}, {"\"\\u0041\\u00e9\"", 0, PR_OK},
        {"\"\\uD834\\uDD1E\"", 0, PR_OK}, {"\"\x7f\"", 0, PR_OK}, {"\"\xe2\x82\xac \xf0\x9f\x98\x80\"", 0, PR_OK},
        {"\"\\x41\"", 0, PR_EPROTO}, {"\"\\a\"", 0, PR_EPROTO}, {"\"\\'\"", 0, PR_EPROTO},
        {"\"\\u00\"", 0, PR_EPROTO}, {"\"\\u00G0\"", 0, PR_EPROTO}, {"\"\\U0041\"", 0, PR_EPROTO},
        {"\"a\nb\"", 0, PR_EPROTO}, {"\"a\tb\"", 0, PR_EPROTO}, {"\"\x01\"", 0, PR_EPROTO},
        {"\"a\0b\"", 5, PR_EPROTO}, {"\"abc", 0, PR_EPROTO}, {"'abc'", 0, PR_EPROTO}, {"\"\\\"", 0, PR_EPROTO},
        /* UTF-8 (RFC 8259 section 8.1): ill-formed sequences are refused */
        {"\"\xff\"", 0, PR_EPROTO}, {"\"\xc3\"", 0, PR_EPROTO}, {"\"\xc0\xaf\"", 0, PR_EPROTO},
        {"\"\xed\xa0\x80\"", 0, PR_EPROTO}, {"\"\xf4\x90\x80\x80\"", 0, PR_EPROTO}, {"\"\x80\"", 0, PR_EPROTO},
        /* not JSON: comments, bare words */
        {"[1 /* c */]", 0, PR_EPROTO}, {"// c\n1", 0, PR_EPROTO}, {"[1] # c", 0, PR_EPROTO}, {"abc", 0, PR_EPROTO},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pr_json_doc *d = NULL;
        pr_json_error e;
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
        int rc = pr_json_parse(&d, cases[i].text, len, NULL, &e);
        if (rc != cases[i].want)
            pt_fail(__FILE__, __LINE__, "case %lu (%.*s): got %s, want %s", (unsigned long)i, (int)len,
                    cases[i].text, pt_errname(rc), pt_errname(cases[i].want));
        PT_CHECK((rc == PR_OK) == (d != NULL));
        pr_json_doc_destroy(d);
    }
}

/* Where JSONTestSuite's test_parsing lives, or NULL. */
static const char *pt__json_suite_dir(char *buf, size_t cap) {
    const char *env = getenv("PRISTINE_TESTDATA");
    struct stat st;
    if (env && *env) snprintf(buf, cap, "%s/JSONTestSuite/test_parsing", env);
    else snprintf(buf, cap, "tests/fixtures/JSONTestSuite/test_parsing");
    return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? buf : NULL;
}

static char *pt__json_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (p = (char *)malloc((size_t)n + 1)) != NULL) {
        if (fread(p, 1, (size_t)n, f) != (size_t)n) {
            free(p);
            p = NULL;
        } else *len = (size_t)n;
    }
    fclose(f);
    return p;
}

PT_TEST(json_test_suite) {
    char dir[600], path[1200];
    const char *where = pt__json_suite_dir(dir, sizeof dir);
    DIR *dp;
    struct dirent *de;
    long y = 0, y_ok = 0, n = 0, n_ok = 0, i_n = 0, i_acc = 0, rt = 0;
    if (!where) {
        PT_SKIP("JSONTestSuite not found: want tests/fixtures/JSONTestSuite/test_parsing "
                "(relative to the repo root) or $PRISTINE_TESTDATA/JSONTestSuite/test_parsing");
    }
    dp = opendir(where);
    PT_REQUIRE(dp != NULL);
    while ((de = readdir(dp)) != NULL) {
        const char *nm = de->d_name;
        size_t len = 0, L = strlen(nm);
        char *text;
        pr_json_doc *d = NULL;
        pr_json_error e;
        int rc;
        if (L < 6 || strcmp(nm + L - 5, ".json") != 0 || nm[1] != '_') continue;
        snprintf(path, sizeof path, "%s/%s", where, nm);
        text = pt__json_read_file(path, &len);
        if (!text) {
            pt_fail(__FILE__, __LINE__, "cannot read %s", path);
            continue;
        }
        rc = pr_json_parse(&d, text, len, NULL, &e);
        if (rc == PR_OK && pt__json_roundtrip(text, len, NULL)) rt++;
        else if (rc == PR_OK) pt_fail(__FILE__, __LINE__, "%s: round trip differs", nm);
        pr_json_doc_destroy(d);
        if (nm[0] == 'y') {
            y++;
            if (rc == PR_OK) y_ok++;
            else pt_fail(__FILE__, __LINE__, "%s: got %s (%s), want PR_OK", nm, pr_errname(rc), e.msg);
        } else if (nm[0] == 'n') {
            n++;
            if (rc == PR_EPROTO || rc == PR_ELIMIT) n_ok++;
            else pt_fail(__FILE__, __LINE__, "%s: got %s, want PR_EPROTO or PR_ELIMIT", nm, pr_errname(rc));
        } else if (nm[0] == 'i') {
            i_n++;
            if (rc == PR_OK) i_acc++;
            else if (rc != PR_EPROTO && rc != PR_ELIMIT) pt_fail(__FILE__, __LINE__, "%s: got %s", nm, pr_errname(rc));
        }
        free(text);
    }
    closedir(dp);
    printf("# json JSONTestSuite: y %ld/%ld accepted, n %ld/%ld rejected, i %ld handled (%ld accepted), "
           "%ld round trips\n", y_ok, y, n_ok, n, i_n, i_acc, rt);
    PT_CHECK(y > 90 && n > 180 && i_n > 20);
}

PT_TEST(json_writer_basic) {
    pr_buf b;
    pr_json_writer w;
    pr_buf_init(&b);
    pr_json_writer_init(&w, &b);
    PT_EQ_ERR(pr_json_writer_finish(&w), PR_ESTATE);
    PT_EQ_ERR(pr_json_begin_object(&w), PR_OK);
    PT_EQ_ERR(pr_json_key(&w, "a", 1), PR_OK);
    PT_EQ_ERR(pr_json_begin_array(&w), PR_OK);
    PT_EQ_ERR(pr_json_write_int(&w, INT64_MIN), PR_OK);
    PT_EQ_ERR(pr_json_write_int(&w, INT64_MAX), PR_OK);
    PT_EQ_ERR(pr_json_write_int(&w, 0), PR_OK);
    PT_EQ_ERR(pr_json_write_double(&w, 1.5), PR_OK);
    PT_EQ_ERR(pr_json_write_double(&w, 2.0), PR_OK);
    PT_EQ_ERR(pr_json_write_double(&w, 0.1), PR_OK);
    PT_EQ_ERR(pr_json_write_double(&w, 1e300), PR_OK);
    PT_EQ_ERR(pr_json_write_double(&w, -0.0), PR_OK);
    PT_EQ_ERR(pr_json_write_bool(&w, 1), PR_OK);
    PT_EQ_ERR(pr_json_write_bool(&w, 0), PR_OK);
    PT_EQ_ERR(pr_json_write_null(&w), PR_OK);
    PT_EQ_ERR(pr_json_begin_object(&w), PR_OK);
    PT_EQ_ERR(pr_json_end_object(&w), PR_OK);
    PT_EQ_ERR(pr_json_begin_array(&w), PR_OK);
    PT_EQ_ERR(pr_json_end_array(&w), PR_OK);
    PT_EQ_ERR(pr_json_end_array(&w), PR_OK);
    PT_EQ_ERR(pr_json_key(&w, "b", 1), PR_OK);
    PT_EQ_ERR(pr_json_write_string(&w, "\xc3\xa9", 2), PR_OK);
    PT_EQ_ERR(pr_json_end_object(&w), PR_OK);
    PT_EQ_ERR(pr_json_writer_finish(&w), PR_OK);
    PT_EQ_STR(b.data, "{\"a\":[-9223372036854775808,9223372036854775807,0,1.5,2.0,0.1,1e+300,-0.0,true,false,null,"
                      "{},[]],\"b\":\"\xc3\xa9\"}");
    pr_buf_deinit(&b);
}

PT_TEST(json_writer_escaping) {
    pr_buf b;
    pr_json_writer w;
    char all[32];
    int i;
    for (i = 0; i < 32; i++) all[i] = (char)i;
    pr_buf_init(&b);
    pr_json_writer_init(&w, &b);
    PT_EQ_ERR(pr_json_begin_array(&w), PR_OK);
    PT_EQ_ERR(pr_json_write_string(&w, all, 32), PR_OK);
    PT_EQ_ERR(pr_json_write_string(&w, "q\"b\\s/\x7f\xe2\x82\xac", 10), PR_OK);
    PT_EQ_ERR(pr_json_write_string(&w, "", 0), PR_OK);
    PT_EQ_ERR(pr_json_write_string(&w, "\xc3", 1), PR_EINVAL);
    PT_EQ_ERR(pr_json_write_string(&w, "\xed\xa0\x80", 3), PR_EINVAL);
    PT_EQ_ERR(pr_json_write_string(&w, "\xc0\x80", 2), PR_EINVAL);
    PT_EQ_ERR(pr_json_end_array(&w), PR_OK);
    PT_EQ_STR(b.data, "[\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f"
                      "\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c"
                      "\\u001d\\u001e\\u001f\",\"q\\\"b\\\\s/\x7f\xe2\x82\xac\",\"\"]");
    PT_CHECK(pt__json_roundtrip(b.data, b.len, NULL));
    pr_buf_deinit(&b);
}

PT_TEST(json_writer_misuse) {
    pr_buf b;
    pr_json_writer w;
    volatile double zero = 0.0;
    pr_buf_init(&b);
    pr_json_writer_init(&w, &b);
    PT_EQ_ERR(pr_json_end_array(&w), PR_ESTATE);
    PT_EQ_ERR(pr_json_end_object(&w), PR_ESTATE);
    PT_EQ_ERR(pr_json_key(&w, "a", 1), PR_ESTATE);
    PT_EQ_ERR(pr_json_begin_object(&w), PR_OK);
    PT_EQ_ERR(pr_json_write_int(&w, 1), PR_ESTATE);      /* value without key */
    PT_EQ_ERR(pr_json_end_array(&w), PR_ESTATE);         /* wrong closer */
    PT_EQ_ERR(pr_json_key(&w, "a", 1), PR_OK);
    PT_EQ_ERR(pr_json_key(&w, "b", 1), PR_ESTATE);       /* two keys */
    PT_EQ_ERR(pr_json_end_object(&w), PR_ESTATE);        /* key without value */
    PT_EQ_ERR(pr_json_key(&w, NULL, 1), PR_ESTATE);
    PT_EQ_ERR(pr_json_write_double(&w, zero / zero), PR_EINVAL);
    PT_EQ_ERR(pr_json_write_double(&w, 1.0 / zero), PR_EINVAL);
    PT_EQ_ERR(pr_json_write_double(&w, -1.0 / zero), PR_EINVAL);
    PT_EQ_ERR(pr_json_write_string(&w, NULL, 3), PR_EINVAL);
    PT_EQ_ERR(pr_json_write_value(&w, NULL), PR_EINVAL);
    PT_EQ_ERR(pr_json_write_int(&w, 1), PR_OK);
    PT_EQ_ERR(pr_json_key(&w, "\xff", 1), PR_EINVAL);
    PT_EQ_ERR(pr_json_writer_finish(&w), PR_ESTATE);
    PT_EQ_ERR(pr_json_end_object(&w), PR_OK);
    PT_EQ_ERR(pr_json_writer_finish(&w), PR_OK);
    PT_EQ_ERR(pr_json_write_null(&w), PR_ESTATE);        /* second top-level value */
    PT_EQ_ERR(pr_json_begin_array(&w), PR_ESTATE);
    PT_EQ_STR(b.data, "{\"a\":1}");
    pr_buf_clear(&b);
    pr_json_writer_init(&w, &b);
    {
        int i, rc = PR_OK;
        for (i = 0; i < PR_JSON_WRITER_MAX_DEPTH && rc == PR_OK; i++) rc = pr_json_begin_array(&w);
        PT_EQ_ERR(rc, PR_OK);
        PT_EQ_ERR(pr_json_begin_object(&w), PR_ELIMIT);
        for (i = 0; i < PR_JSON_WRITER_MAX_DEPTH && rc == PR_OK; i++) rc = pr_json_end_array(&w);
        PT_EQ_ERR(rc, PR_OK);
        PT_EQ_ERR(pr_json_writer_finish(&w), PR_OK);
    }
    pr_buf_deinit(&b);
}

/* Streaming: the caller drains the buffer between elements. */
PT_TEST(json_writer_streaming) {
    pr_buf b, sink;
    pr_json_writer w;
    pr_json_doc *d = NULL;
    int i;
    size_t peak = 0;
    pr_buf_init(&b);
    pr_buf_init(&sink);
    pr_json_writer_init(&w, &b);
    PT_EQ_ERR(pr_json_begin_array(&w), PR_OK);
    for (i = 0; i < 10000; i++) {
        PT_EQ_ERR(pr_json_write_int(&w, i), PR_OK);
        if (b.len >= 256) {
            PT_EQ_ERR(pr_buf_append(&sink, b.data, b.len), PR_OK);
            peak = b.len > peak ? b.len : peak;
            pr_buf_clear(&b);
        }
    }
    PT_EQ_ERR(pr_json_end_array(&w), PR_OK);
    PT_EQ_ERR(pr_json_writer_finish(&w), PR_OK);
    PT_EQ_ERR(pr_buf_append(&sink, b.data, b.len), PR_OK);
    PT_CHECK(peak < 300);
    PT_EQ_ERR(pr_json_parse(&d, sink.data, sink.len, NULL, NULL), PR_OK);
    PT_EQ_INT(pr_json_len(pr_json_root(d)), 10000);
    pr_json_doc_destroy(d);
    pr_buf_deinit(&b);
    pr_buf_deinit(&sink);
}

PT_TEST(json_double_roundtrip) {
    pr_buf b;
    int i;
    pr_buf_init(&b);
    for (i = 0; i < 20000; i++) {
        pr_json_writer w;
        pr_json_doc *d = NULL;
        double x, y = 0;
        uint64_t bits = pt_rand();
        if (i < 10000) memcpy(&x, &bits, sizeof x);
        else x = (double)(bits % 1000000) / 1000.0;
        if (x != x || x - x != 0) continue;
        pr_buf_clear(&b);
        pr_json_writer_init(&w, &b);
        PT_EQ_ERR(pr_json_write_double(&w, x), PR_OK);
        PT_EQ_ERR(pr_json_parse(&d, b.data, b.len, NULL, NULL), PR_OK);
        PT_EQ_ERR(pr_json_double(pr_json_root(d), &y), PR_OK);
        if (memcmp(&x, &y, sizeof x) != 0) {
            pt_fail(__FILE__, __LINE__, "%.17g wrote %s, read %.17g", x, b.data, y);
            pr_json_doc_destroy(d);
            break;
        }
        PT_CHECK(b.len <= 24);
        pr_json_doc_destroy(d);
    }
    pr_buf_clear(&b);
    {
        pr_json_writer w;
        pr_json_writer_init(&w, &b);
        PT_EQ_ERR(pr_json_write_double(&w, 0.1 + 0.2), PR_OK);
        PT_EQ_STR(b.data, "0.30000000000000004");
    }
    pr_buf_deinit(&b);
}

PT_TEST(json_roundtrip_docs) {
    static const char *t[] = {
        "{\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{\"content\":\"Hi \\u00e9\\n\"},\"index\":0}],\"usage\":null}",
        "[1,-1,1.5,-0.0,1e300,123456789012345678901234567890,\"\\u0000\",{},[],[[]],{\"\":\"\"}]",
        "\"\\ud83d\\ude00\"", "true", "  null  ", "-9223372036854775808", "[0.1,2.5e-10,1E5]",
    };
    size_t i;
    for (i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!pt__json_roundtrip(t[i], strlen(t[i]), NULL)) pt_fail(__FILE__, __LINE__, "round trip of %s", t[i]);
}

/* pr_json_to_buf: a parsed value as text, appended after what the buffer
   holds; an inner value alone; NULL arguments; a failed allocation leaves
   the buffer as it was. */
PT_TEST(json_to_buf) {
    static const char text[] = " {\"a\": [1, 2.5, \"x\\n\"], \"b\": {\"c\": null, \"d\": true}} ";
    pr_json_doc *doc = NULL;
    pr_buf b = { 0 };
    PT_EQ_ERR(pr_json_parse(&doc, text, strlen(text), NULL, NULL), PR_OK);
    PT_REQUIRE(doc != NULL);
    PT_EQ_ERR(pr_json_to_buf(pr_json_root(doc), &b), PR_OK);
    PT_EQ_STR(b.data, "{\"a\":[1,2.5,\"x\\n\"],\"b\":{\"c\":null,\"d\":true}}");
    pr_buf_clear(&b);
    PT_EQ_ERR(pr_buf_append_str(&b, "data: "), PR_OK);
    PT_EQ_ERR(pr_json_to_buf(pr_json_get(pr_json_root(doc), "b"), &b), PR_OK);
    PT_EQ_STR(b.data, "data: {\"c\":null,\"d\":true}");
    PT_EQ_ERR(pr_json_to_buf(NULL, &b), PR_EINVAL);
    PT_EQ_ERR(pr_json_to_buf(pr_json_root(doc), NULL), PR_EINVAL);
    pr_buf_deinit(&b);
    PT_EQ_ERR(pr_buf_append_str(&b, "keep"), PR_OK);
    pt_alloc_fail_nth(1);
    PT_EQ_ERR(pr_json_to_buf(pr_json_root(doc), &b), PR_ENOMEM);
    pt_alloc_fail_nth(0);
    PT_EQ_INT(b.len, 4);
    PT_EQ_STR(b.data, "keep");
    pr_buf_deinit(&b);
    pr_json_doc_destroy(doc);
}

const pt_suite pt_suite_json = { "json", {
    PT_ENTRY(json_getters),
    PT_ENTRY(json_iterator),
    PT_ENTRY(json_scalars_at_top_level),
    PT_ENTRY(json_strings_nul_and_escapes),
    PT_ENTRY(json_surrogates),
    PT_ENTRY(json_integers),
    PT_ENTRY(json_doubles),
    PT_ENTRY(json_error_positions),
    PT_ENTRY(json_limits),
    PT_ENTRY(json_large_document),
    PT_ENTRY(json_alloc_fail_sweep),
    PT_ENTRY(json_rfc8259_grammar),
    PT_ENTRY(json_test_suite),
    PT_ENTRY(json_writer_basic),
    PT_ENTRY(json_writer_escaping),
    PT_ENTRY(json_writer_misuse),
    PT_ENTRY(json_writer_streaming),
    PT_ENTRY(json_double_roundtrip),
    PT_ENTRY(json_roundtrip_docs),
    PT_ENTRY(json_to_buf),
    {0, 0} } };
