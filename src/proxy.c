// @pristine:module proxy - HTTP proxies: proxy settings from the environment, no_proxy matching, CONNECT tunnels
// @pristine:public
/*
 * proxy: which proxy a client request goes through and how. It owns the
 * proxy settings (options, then the environment), no_proxy matching
 * (pr_http_no_proxy_match, public), the loopback rule, the proxy URL's
 * credentials as Proxy-Authorization: Basic, and the CONNECT tunnel for
 * https through a proxy (with a conn that first hands out the bytes that
 * arrived after the CONNECT reply). The client (the next module) calls
 * these internally: pr__proxy_pick and pr__proxy_parse at create,
 * pr__proxy_is_loopback and pr_http_no_proxy_match per request,
 * pr__proxy_basic for plain http through a proxy, pr__proxy_tunnel when
 * connecting.
 *
 * Proxies (curl's conventions): explicit options first, then (unless
 * ignore_env) the environment read once by pr_http_client_create:
 * http_proxy (lower case only: httpoxy), https_proxy / HTTPS_PROXY,
 * all_proxy / ALL_PROXY (fallback for both), no_proxy / NO_PROXY (see
 * pr_http_no_proxy_match). A proxy URL without a scheme means http://;
 * only http:// proxies are supported. Loopback origins never go through
 * a proxy: localhost, *.localhost and the addresses 127.0.0.0/8 and ::1
 * (parsed as addresses: "127.example.test" is a name and is proxied).
 * Plain http through a proxy sends the absolute-form target to the proxy (Host still sent);
 * https goes through a "CONNECT host:port" tunnel, then TLS to the origin
 * inside it. Proxy credentials in the proxy URL's userinfo become
 * "Proxy-Authorization: Basic". A CONNECT answered with a non-2xx status
 * is PR_EPROTO with the status in pr_err_info.http_status.
 *
 * Offers to the modules after it: pr__proxy_basic, pr__proxy_is_loopback,
 *     pr__proxy_parse, pr__proxy_pick, pr__proxy_tunnel.
 */

/* Whether host is excluded from proxying by a no_proxy list (curl's
   rules): comma-separated entries, surrounding spaces ignored, ASCII
   case-insensitive; "*" alone excludes every host; an entry matches the
   host itself or any subdomain (a leading dot is optional: ".example.com"
   and "example.com" both match "a.example.com" and "example.com", never
   "badexample.com"); a ":port" suffix of an entry is ignored; IPv6
   entries may be bracketed. An IP-literal host matches an entry that is
   the same address (compared as addresses: "::1" matches "0:0::1"; never
   as a domain suffix) or a CIDR range containing it (curl >= 7.86):
   "192.168.0.0/16", "10.0.0.0/8", "::1/128", "fe80::/10", "[fe80::]/10";
   a range never matches a host name, and a malformed range (bits beyond
   the address size, no digits) matches nothing.
   Params: no_proxy - the list (NULL or "" = nothing excluded); host - the
           URL's host (IPv6 with or without brackets).
   Returns: 1 if excluded (connect directly), 0 if not.
   Blocks: no.
   Thread: any.
   See: pr_http_client_opts, pr_http_client_create. */
PRISTINE_API int pr_http_no_proxy_match(const char *no_proxy, const char *host);

// @pristine:impl
/* Parse a proxy URL ("host:port" means http://host:port). "" = none. */
static int pr__proxy_parse(pr_url *u, const char *s, pr_err_info *err) {
    const char *sep;
    pr_buf b;
    int rc = PR_OK;
    if (!s || !*s) return PR_OK;
    sep = strstr(s, "://");
    if (sep && !((size_t)(sep - s) == 4 && (s[0] | 0x20) == 'h' && (s[1] | 0x20) == 't' &&
                 (s[2] | 0x20) == 't' && (s[3] | 0x20) == 'p'))
        return pr__err_set(err, PR_ENOTSUP, 0, "http: only http:// proxies are supported, not %.60s", s);
    pr_buf_init(&b);
    if (!sep) rc = pr_buf_append_str(&b, "http://");
    if (!rc) rc = pr_buf_append_str(&b, s);
    if (!rc) rc = pr_url_parse(u, b.data, b.len, err);
    pr_buf_deinit(&b);
    if (rc == PR_EINVAL) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        pr__err_set(err, rc, 0, "http: proxy URL %.40s: %s", s, why);
    } else if (rc) {
        pr__err_set(err, rc, 0, "http: out of memory");
    }
    return rc;
}

static const char *pr__proxy_env2(const char *a, const char *b) {
    const char *v = a ? getenv(a) : NULL;
    if (!v && b) v = getenv(b);
    return v;
}

/* The proxy settings of a client: explicit options first (http, https,
   all, no), then unless ignore_env the environment: http_proxy (lower
   case only: httpoxy), https_proxy / HTTPS_PROXY, all_proxy / ALL_PROXY
   (the fallback for both), no_proxy / NO_PROXY. An explicit "" means
   none. *hp, *sp, *np receive the strings to use (NULL = none). */
static void pr__proxy_pick(const char *http, const char *https, const char *all, const char *no, int ignore_env,
                           const char **hp, const char **sp, const char **np) {
    const char *ap = all;
    *hp = http;
    *sp = https;
    *np = no;
    if (!ignore_env) {
        if (!*hp) *hp = pr__proxy_env2("http_proxy", NULL); /* lower case only (httpoxy) */
        if (!*sp) *sp = pr__proxy_env2("https_proxy", "HTTPS_PROXY");
        if (!ap) ap = pr__proxy_env2("all_proxy", "ALL_PROXY");
        if (!*np) *np = pr__proxy_env2("no_proxy", "NO_PROXY");
    }
    if (!*hp || !**hp) *hp = ap;
    if (!*sp || !**sp) *sp = ap;
    if (http && !*http) *hp = NULL; /* explicit "" = none */
    if (https && !*https) *sp = NULL;
}

/* ---- no_proxy ---- */

/* An IP literal (IPv6 optionally in brackets) into out[16]: returns 4
   (IPv4), 16 (IPv6) or 0 (not an IP literal). */
static int pr__proxy_ip_parse(pr_slice s, unsigned char *out) {
    char tmp[64];
    if (s.len >= 2 && s.ptr[0] == '[' && s.ptr[s.len - 1] == ']') {
        s.ptr++;
        s.len -= 2;
    }
    if (!s.len || s.len >= sizeof tmp) return 0;
    memcpy(tmp, s.ptr, s.len);
    tmp[s.len] = 0;
    if (inet_pton(AF_INET, tmp, out) == 1) return 4;
    if (inet_pton(AF_INET6, tmp, out) == 1) return 16;
    return 0;
}

/* Whether the address ip (alen bytes) lies in the range "addr/bits" of e
   (slash points at the '/'). A malformed range matches nothing. */
static int pr__proxy_cidr_match(pr_slice e, const char *slash, const unsigned char *ip, int alen) {
    unsigned char net[16];
    pr_slice a, b;
    unsigned long bits = 0;
    size_t i, full;
    a.ptr = e.ptr;
    a.len = (size_t)(slash - e.ptr);
    b.ptr = slash + 1;
    b.len = e.len - a.len - 1;
    if (!b.len || b.len > 3) return 0;
    for (i = 0; i < b.len; i++) {
        if (b.ptr[i] < '0' || b.ptr[i] > '9') return 0;
        bits = bits * 10 + (unsigned long)(b.ptr[i] - '0');
    }
    if (pr__proxy_ip_parse(a, net) != alen || bits > (unsigned long)alen * 8) return 0;
    full = bits / 8;
    if (memcmp(net, ip, full) != 0) return 0;
    if (bits % 8) {
        unsigned mask = (0xffu << (8 - bits % 8)) & 0xffu;
        if ((net[full] & mask) != (ip[full] & mask)) return 0;
    }
    return 1;
}

int pr_http_no_proxy_match(const char *no_proxy, const char *host) {
    pr_slice h, list;
    size_t i, s = 0;
    unsigned char hip[16];
    int hfam;
    if (!no_proxy || !host || !*host) return 0;
    h = pr_slice_cstr(host);
    if (h.len >= 2 && h.ptr[0] == '[' && h.ptr[h.len - 1] == ']') {
        h.ptr++;
        h.len -= 2;
    }
    if (h.len && h.ptr[h.len - 1] == '.') h.len--; /* "example.com." */
    hfam = pr__proxy_ip_parse(h, hip);
    list = pr_slice_cstr(no_proxy);
    for (i = 0; i <= list.len; i++) {
        pr_slice e;
        if (i < list.len && list.ptr[i] != ',') continue;
        e.ptr = list.ptr + s;
        e.len = i - s;
        s = i + 1;
        e = pr_slice_trim(e);
        if (!e.len) continue;
        if (e.len == 1 && e.ptr[0] == '*') return 1;
        {
            const char *slash = (const char *)memchr(e.ptr, '/', e.len);
            if (slash) { /* a CIDR range: only for IP-literal hosts */
                if (hfam && pr__proxy_cidr_match(e, slash, hip, hfam)) return 1;
                continue;
            }
        }
        if (e.ptr[0] == '[') { /* [v6] or [v6]:port */
            const char *rb = (const char *)memchr(e.ptr, ']', e.len);
            if (!rb) continue;
            e.ptr++;
            e.len = (size_t)(rb - e.ptr);
        } else {
            const char *c1 = (const char *)memchr(e.ptr, ':', e.len);
            if (c1 && !memchr(c1 + 1, ':', e.len - (size_t)(c1 + 1 - e.ptr))) e.len = (size_t)(c1 - e.ptr); /* port */
        }
        while (e.len && e.ptr[0] == '.') {
            e.ptr++;
            e.len--;
        }
        if (e.len && e.ptr[e.len - 1] == '.') e.len--;
        if (!e.len) continue;
        if (hfam) { /* an IP-literal host: the same address, never a suffix */
            unsigned char eip[16];
            if (pr__proxy_ip_parse(e, eip) == hfam && !memcmp(eip, hip, (size_t)hfam)) return 1;
            continue;
        }
        if (pr_slice_ieq(e, h)) return 1;
        if (h.len > e.len && h.ptr[h.len - e.len - 1] == '.') {
            pr_slice tail;
            tail.ptr = h.ptr + h.len - e.len;
            tail.len = e.len;
            if (pr_slice_ieq(tail, e)) return 1;
        }
    }
    return 0;
}

/* Loopback origins are never proxied: the names localhost and *.localhost
   (RFC 6761; the resolver answers them with loopback addresses), and the
   addresses 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104, parsed as addresses
   (a name such as "127.example.test" is not loopback). */
static int pr__proxy_is_loopback(pr_slice host) {
    static const unsigned char v6_1[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
    static const unsigned char v4map[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    pr_slice lh = pr_slice_cstr("localhost");
    unsigned char ip[16];
    int fam;
    if (host.len && host.ptr[host.len - 1] == '.') host.len--; /* "localhost." */
    if (pr_slice_ieq(host, lh)) return 1;
    if (host.len > lh.len + 1 && host.ptr[host.len - lh.len - 1] == '.') {
        pr_slice tail;
        tail.ptr = host.ptr + host.len - lh.len;
        tail.len = lh.len;
        if (pr_slice_ieq(tail, lh)) return 1;
    }
    fam = pr__proxy_ip_parse(host, ip); /* IPv6 with or without brackets */
    if (fam == 4) return ip[0] == 127;
    if (fam == 16) return !memcmp(ip, v6_1, 16) || (!memcmp(ip, v4map, 12) && ip[12] == 127);
    return 0;
}

/* ---- a connection that first returns bytes read past a CONNECT reply ---- */
typedef struct pr__proxy_pfx {
    pr_conn base; /* first */
    pr_conn *inner;
    char *buf;
    size_t len, pos;
} pr__proxy_pfx;

static ptrdiff_t pr__proxy_pfx_read(pr_conn *c, void *buf, size_t n, int64_t deadline) {
    pr__proxy_pfx *p = (pr__proxy_pfx *)(void *)c;
    ptrdiff_t k;
    if (p->pos < p->len) {
        size_t m = PR__MIN(n, p->len - p->pos);
        memcpy(buf, p->buf + p->pos, m);
        p->pos += m;
        return (ptrdiff_t)m;
    }
    k = p->inner->ops->read(p->inner, buf, n, deadline);
    if (k < 0) c->err = p->inner->err;
    return k;
}

static ptrdiff_t pr__proxy_pfx_write(pr_conn *c, const void *buf, size_t n, int64_t deadline) {
    pr__proxy_pfx *p = (pr__proxy_pfx *)(void *)c;
    ptrdiff_t k = p->inner->ops->write(p->inner, buf, n, deadline);
    if (k < 0) c->err = p->inner->err;
    return k;
}

static int pr__proxy_pfx_shutdown(pr_conn *c, int64_t deadline) {
    pr__proxy_pfx *p = (pr__proxy_pfx *)(void *)c;
    return p->inner->ops->shutdown(p->inner, deadline);
}

static void pr__proxy_pfx_destroy(pr_conn *c) {
    pr__proxy_pfx *p = (pr__proxy_pfx *)(void *)c;
    pr_conn_destroy(p->inner);
    pr__free(p->buf, p->len);
    pr__free(p, sizeof *p);
}

static const pr_conn_ops pr__proxy_pfx_ops = { pr__proxy_pfx_read, pr__proxy_pfx_write, pr__proxy_pfx_shutdown,
                                              pr__proxy_pfx_destroy };

static const char pr__proxy_b64c[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Append "Basic <base64(percent-decoded userinfo)>". */
static int pr__proxy_basic(pr_buf *out, const pr_url *proxy) {
    pr_buf raw;
    size_t i;
    int rc;
    pr_buf_init(&raw);
    rc = pr_url_decode(&raw, proxy->userinfo.ptr, proxy->userinfo.len, 0);
    if (!rc) rc = pr_buf_append_str(out, "Basic ");
    for (i = 0; !rc && i < raw.len; i += 3) {
        unsigned char *s = (unsigned char *)raw.data + i;
        size_t m = raw.len - i;
        char q[4];
        unsigned v = (unsigned)s[0] << 16 | (m > 1 ? (unsigned)s[1] << 8 : 0) | (m > 2 ? s[2] : 0);
        q[0] = pr__proxy_b64c[(v >> 18) & 63];
        q[1] = pr__proxy_b64c[(v >> 12) & 63];
        q[2] = m > 1 ? pr__proxy_b64c[(v >> 6) & 63] : '=';
        q[3] = m > 2 ? pr__proxy_b64c[v & 63] : '=';
        rc = pr_buf_append(out, q, 4);
    }
    pr_buf_deinit(&raw);
    return rc;
}

/* Open a CONNECT tunnel to u's authority through proxy over *conn (replaced
   by the tunnel on success; destroyed on failure), with the parser limits
   ho. *head_used receives the bytes of the reply heads; limit names the
   deadline in timeout messages. */
static int pr__proxy_tunnel(pr_conn **conn, const pr_url *u, const pr_url *proxy, const pr_http_opts *ho,
                            size_t *head_used, int64_t deadline, const char *limit, pr_err_info *err) {
    pr_buf auth, pa;
    pr_http_header h[2];
    pr_http_request req;
    pr_http_response *r = NULL;
    pr_slice target;
    const char **lines = NULL;
    size_t lines_size = 0;
    int rc;
    pr_buf_init(&auth);
    pr_buf_init(&pa);
    rc = pr_url_authority(&auth, u, 1);
    if (!rc && proxy->has_userinfo) rc = pr__proxy_basic(&pa, proxy);
    memset(&req, 0, sizeof req);
    if (!rc) {
        h[0].name = pr_slice_cstr("Host");
        h[0].value.ptr = auth.data;
        h[0].value.len = auth.len;
        h[1].name = pr_slice_cstr("Proxy-Authorization");
        h[1].value.ptr = pa.data;
        h[1].value.len = pa.len;
        rc = pr__http_lines_join(NULL, h, proxy->has_userinfo ? 2 : 1, &lines, &lines_size);
    }
    if (!rc) {
        req.method = "CONNECT";
        req.url = u;
        req.headers = lines;
        target.ptr = auth.data;
        target.len = auth.len;
        rc = pr__http_exchange(&r, *conn, &req, ho, &target, 0, deadline, NULL, limit);
        if (rc)
            pr__err_set(err, rc, (*conn)->err.sys_errno, "proxy CONNECT: %s",
                        (*conn)->err.msg[0] ? (*conn)->err.msg : pr_strerror(rc));
    } else {
        pr__err_set(err, rc, 0, "proxy CONNECT: out of memory");
    }
    if (!rc && r->status / 100 != 2) {
        int st = r->status;
        rc = pr__err_set(err, PR_EPROTO, 0, "proxy refused CONNECT with status %d", st);
        err->http_status = st;
    }
    if (!rc) *head_used = r->head_used + r->base + r->head_len; /* the origin's first head shares the budget */
    /* Bytes already read past the reply belong to the tunnel: a wrapper hands
       them out first. Without them the socket itself is the tunnel (and TLS
       over it can wait on both directions). */
    if (!rc && r->wpos > r->rpos) {
        size_t extra = r->wpos - r->rpos;
        pr__proxy_pfx *p = (pr__proxy_pfx *)pr__calloc(1, sizeof *p);
        if (p && !(p->buf = (char *)pr__alloc(extra))) {
            pr__free(p, sizeof *p);
            p = NULL;
        }
        if (!p) {
            rc = pr__err_set(err, PR_ENOMEM, 0, "proxy CONNECT: out of memory");
        } else {
            memcpy(p->buf, r->buf + r->rpos, extra);
            p->base.ops = &pr__proxy_pfx_ops;
            p->inner = *conn;
            p->len = extra;
            *conn = &p->base;
        }
    }
    pr_http_response_destroy(r);
    if (rc) {
        pr_conn_destroy(*conn);
        *conn = NULL;
    }
    pr__free(lines, lines_size);
    pr_buf_deinit(&auth);
    pr_buf_deinit(&pa);
    return rc;
}
