/* fuzz_url.c - libFuzzer target for the url module.
   clang -std=c11 -g -O1 -DPRISTINE_NO_TLS -DPRISTINE_TESTING -fsanitize=fuzzer,address,undefined \
       -fno-sanitize-recover=all tests/fuzz_url.c -o build/fuzz/url -lpthread

   Properties checked:
   - parse never crashes; on success, format + re-parse gives equal components,
     and the request target is clean ASCII;
   - the input resolved as a reference against a fixed http base: when the
     reference has neither scheme nor authority, the result must parse;
     any result that parses must round-trip;
   - decode(encode(x)) == x for every character set. */
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"

#define FZ_BASE "http://a/b/c/d;p?q"

static void fz_die(const char *what) {
    fprintf(stderr, "fuzz_url: %s\n", what);
    abort();
}

static void fz_same(const pr_url *u, const pr_url *v, int with_fragment) {
    if (!pr_slice_eq(u->scheme, v->scheme) || !pr_slice_eq(u->userinfo, v->userinfo) ||
        !pr_slice_eq(u->host, v->host) || !pr_slice_eq(u->path, v->path) || !pr_slice_eq(u->query, v->query))
        fz_die("round trip changed a component");
    if (u->port != v->port || u->port_explicit != v->port_explicit || u->is_ipv6 != v->is_ipv6 ||
        u->secure != v->secure || u->has_userinfo != v->has_userinfo || u->has_query != v->has_query)
        fz_die("round trip changed a flag");
    if (with_fragment && (!pr_slice_eq(u->fragment, v->fragment) || u->has_fragment != v->has_fragment))
        fz_die("round trip changed the fragment");
}

static void fz_clean(const pr_buf *b) {
    size_t i;
    for (i = 0; i < b->len; i++) {
        unsigned char c = (unsigned char)b->data[i];
        if (c <= 0x20 || c >= 0x7f) fz_die("request target holds a raw byte");
    }
}

static void fz_check_url(const char *s, size_t n) {
    pr_url u, v;
    pr_buf b;
    int wf;
    if (pr_url_parse(&u, s, n, NULL) != PR_OK) return;
    pr_buf_init(&b);
    for (wf = 0; wf < 2; wf++) {
        pr_buf_clear(&b);
        if (pr_url_format(&b, &u, wf) != PR_OK) fz_die("format failed");
        if (pr_url_parse(&v, b.data, b.len, NULL) != PR_OK) fz_die("formatted URL does not parse");
        fz_same(&u, &v, wf);
        if (!pr_url_same_origin(&u, &v)) fz_die("origin changed");
        pr_url_deinit(&v);
    }
    pr_buf_clear(&b);
    if (pr_url_target(&b, &u)) fz_die("target failed");
    fz_clean(&b); /* authority and origin carry IDN bytes as given */
    if (pr_url_authority(&b, &u, 1) || pr_url_origin(&b, &u)) fz_die("authority failed");
    pr_buf_deinit(&b);
    pr_url_deinit(&u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    pr_buf b, d;
    int set, rc;
    fz_check_url(s, size);

    pr_buf_init(&b);
    rc = pr_url_resolve(&b, FZ_BASE, strlen(FZ_BASE), s, size, NULL);
    if (rc == PR_OK) {
        pr_url u;
        size_t k = 0;
        int has_scheme = 0, has_auth;
        if (size && ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) {
            for (k = 1; k < size; k++) {
                char c = s[k];
                if (c == ':') { has_scheme = 1; break; }
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '+' || c == '-' || c == '.'))
                    break;
            }
        }
        has_auth = !has_scheme && size >= 2 && s[0] == '/' && s[1] == '/';
        if (!has_scheme && !has_auth) {
            if (pr_url_parse(&u, b.data, b.len, NULL) != PR_OK) fz_die("resolved reference does not parse");
            pr_url_deinit(&u);
        }
        fz_check_url(b.data, b.len);
    } else if (rc != PR_EINVAL) {
        fz_die("resolve: unexpected code");
    }

    for (set = PR_URL_ENC_COMPONENT; set <= PR_URL_ENC_FORM; set++) {
        pr_buf_clear(&b);
        pr_buf_init(&d);
        if (pr_url_encode(&b, s, size, set) != PR_OK) fz_die("encode failed");
        if (pr_url_decode(&d, b.data, b.len, set == PR_URL_ENC_FORM ? PR_URL_DEC_PLUS : 0) != PR_OK)
            fz_die("decode of encoded text failed");
        if (d.len != size || (size && memcmp(d.data, s, size) != 0)) fz_die("decode(encode(x)) != x");
        pr_buf_deinit(&d);
    }
    pr_buf_init(&d);
    rc = pr_url_decode(&d, s, size, 0);
    if (rc != PR_OK && rc != PR_EINVAL) fz_die("decode: unexpected code");
    pr_buf_deinit(&d);
    pr_buf_deinit(&b);
    return 0;
}
