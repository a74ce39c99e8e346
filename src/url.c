// @pristine:module url - URL parsing, percent-encoding, query building, reference resolution
// @pristine:public
/*
 * url: absolute http/https URLs for the HTTP client (RFC 3986), percent-
 * encoding and decoding, query building and relative-reference resolution
 * (RFC 3986 section 5, for redirects).
 *
 * Main type: pr_url, a parsed URL. pr_url_parse copies the text into one
 * allocation that the struct owns; every pr_slice in it points into that
 * copy, so the caller's string may go away at once. The slices stay valid
 * until pr_url_deinit. A zero-initialised pr_url is empty and may be passed
 * to pr_url_deinit.
 *
 * Parsing rules (strict; every rejection is PR_EINVAL with a message):
 * - the scheme is matched case-insensitively and stored in lower case; only
 *   "http" and "https" are accepted (other schemes are PR_EINVAL, "unsupported
 *   scheme"), and "//" must follow the colon;
 * - no control bytes (0x00-0x1f, 0x7f) and no spaces anywhere; every '%'
 *   must start a %XX escape (two hex digits) in every component;
 * - userinfo ("user:pass" before the last '@' of the authority) is kept raw
 *   (still percent-encoded; error messages never quote it) and may hold only unreserved, sub-delims, ':',
 *   %XX and bytes >= 0x80;
 * - the host must not be empty. ASCII letters are folded to lower case;
 *   bytes >= 0x80 (IDN in UTF-8) are kept as given, with no punycode step.
 *   An IPv6 literal must be bracketed ("[::1]") and must be a valid RFC 3986
 *   IPv6address; the slice holds it without the brackets and is_ipv6 is set.
 *   Zone identifiers (RFC 6874 "%25eth0") and IPvFuture ("[v1.x]") are
 *   rejected;
 * - a host whose last label is a number ("127.1", "0x7f.1", "2130706433",
 *   "0177.0.0.1", one trailing dot allowed) is an IPv4 address read the way
 *   browsers and curl read it (WHATWG URL: hex, octal, fewer than four
 *   parts) and stored as its dotted quad ("127.0.0.1"), so the resolver,
 *   TLS and the proxy rules all see the same address; one that does not
 *   parse or is out of range ("256.1.1.1", "1.2.3.4.5", "example.123") is
 *   rejected;
 * - the port is 1-65535 in decimal (leading zeros allowed). An empty port
 *   ("http://h:/") means the default port (RFC 3986 section 3.2.3) and
 *   port_explicit stays 0; defaults are 80 for http and 443 for https;
 * - path, query and fragment are kept raw; an empty path stays empty here
 *   and becomes "/" in pr_url_target.
 */

/* A parsed absolute http/https URL. Read the fields; do not write them. */
typedef struct pr_url {
    pr_slice scheme;    /* "http" or "https" (lower case) */
    pr_slice userinfo;  /* raw, without the '@'; empty if none */
    pr_slice host;      /* lower-cased ASCII; IPv6 without brackets */
    pr_slice path;      /* raw, may be empty */
    pr_slice query;     /* raw, without the '?' */
    pr_slice fragment;  /* raw, without the '#' */
    uint16_t port;      /* explicit port, or 80 / 443 */
    int port_explicit;  /* 1 if the text named a port */
    int is_ipv6;        /* 1 if the host was a bracketed IPv6 literal */
    int secure;         /* 1 for https */
    int has_userinfo;   /* 1 if an '@' was present (userinfo may be empty) */
    int has_query;      /* 1 if a '?' was present (query may be empty) */
    int has_fragment;   /* 1 if a '#' was present (fragment may be empty) */
    char *mem_;         /* private: the owned copy */
    size_t mem_len_;    /* private: its allocation size */
} pr_url;

/* Character sets for pr_url_encode: the bytes that are kept as they are.
   Every other byte becomes %XX (upper-case hex). */
enum pr_url_enc {
    PR_URL_ENC_COMPONENT = 0, /* only unreserved: A-Z a-z 0-9 - . _ ~ */
    PR_URL_ENC_PATH = 1,      /* unreserved, sub-delims, ':', '@', '/' */
    PR_URL_ENC_QUERY = 2,     /* unreserved and ! $ ' ( ) * , ; : @ / ?
                                 (not & = + #): a query key or value */
    PR_URL_ENC_FORM = 3       /* application/x-www-form-urlencoded:
                                 A-Z a-z 0-9 * - . _ kept, space as '+' */
};

/* Flags for pr_url_decode. */
enum pr_url_dec {
    PR_URL_DEC_PLUS = 1 /* decode '+' as a space (form encoding) */
};

/* Parse an absolute http or https URL into u (see the rules above).
   Params: u - receives the URL; it must not hold a parsed URL (deinit it
           first); on failure it is left zeroed. s, len - the text (need not
           be NUL-terminated; a NUL byte is rejected). err - optional; on
           failure receives the code and a message saying what was wrong.
   Returns: PR_OK; PR_EINVAL for malformed text, an unsupported scheme
            (anything but http and https), an empty host, a bad IPv6
            literal or a bad port; PR_ENOMEM.
   Blocks: no.
   Thread: any.
   See: pr_url_deinit, pr_url_format, pr_url_resolve. */
PRISTINE_API int pr_url_parse(pr_url *u, const char *s, size_t len, pr_err_info *err);

/* Release the memory of a parsed URL and zero it.
   Params: u - a URL from pr_url_parse or zero-initialised; NULL is a no-op.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_url_parse. */
PRISTINE_API void pr_url_deinit(pr_url *u);

/* Append the URL's text: scheme "://" [userinfo "@"] host [":" port]
   path ["?" query] ["#" fragment]. The port is written when the text had
   one; IPv6 hosts get brackets. Parsing the output gives equal components.
   Params: out - appended to; u - a parsed URL; with_fragment - 0 drops the
           fragment (what a redirect's base or a request needs).
   Returns: PR_OK; PR_ENOMEM (out is unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_url_target, pr_url_origin. */
PRISTINE_API int pr_url_format(pr_buf *out, const pr_url *u, int with_fragment);

/* Append the origin-form request target: path (or "/" when empty) and
   "?" query when the URL has one. Bytes that may not appear raw in a
   request line (>= 0x80 and " < > \ ^ ` { | }) are percent-encoded.
   Params: out - appended to; u - a parsed URL.
   Returns: PR_OK; PR_ENOMEM (out is unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_url_authority. */
PRISTINE_API int pr_url_target(pr_buf *out, const pr_url *u);

/* Append the authority host[:port], IPv6 in brackets, never the userinfo.
   The host is written as parsed: IDN bytes stay as given (convert to
   punycode first if the peer needs ASCII).
   Params: out - appended to; u - a parsed URL; always_port - 1 always
           writes the port (a CONNECT target); 0 omits it when it is the
           scheme's default (a Host header).
   Returns: PR_OK; PR_ENOMEM (out is unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_url_origin. */
PRISTINE_API int pr_url_authority(pr_buf *out, const pr_url *u, int always_port);

/* Append the origin "scheme://host:port", always with the port, e.g.
   "https://example.com:443" or "http://[::1]:80".
   Params: out - appended to; u - a parsed URL.
   Returns: PR_OK; PR_ENOMEM (out is unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_url_same_origin. */
PRISTINE_API int pr_url_origin(pr_buf *out, const pr_url *u);

/* Whether two URLs have the same origin (scheme, host and port).
   Params: a, b - parsed URLs.
   Returns: 1 if the origins are equal, 0 if not.
   Blocks: no.
   Thread: any.
   See: pr_url_origin. */
PRISTINE_API int pr_url_same_origin(const pr_url *a, const pr_url *b);

/* Percent-encode n bytes, keeping the bytes of one character set.
   Params: out - appended to; s - the bytes (may be NULL when n is 0);
           n - count; set - a PR_URL_ENC_* value.
   Returns: PR_OK; PR_EINVAL for an unknown set; PR_ENOMEM (out is
            unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_url_decode, pr_url_query_append. */
PRISTINE_API int pr_url_encode(pr_buf *out, const char *s, size_t n, int set);

/* Percent-decode n bytes. %XX (either hex case) becomes one byte, which may
   be any value including NUL (out->len counts it).
   Params: out - appended to; s - the text (may be NULL when n is 0);
           n - count; flags - 0 or PR_URL_DEC_PLUS.
   Returns: PR_OK; PR_EINVAL when a '%' is not followed by two hex digits
            (out is unchanged); PR_ENOMEM (out is unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_url_encode. */
PRISTINE_API int pr_url_decode(pr_buf *out, const char *s, size_t n, int flags);

/* Append one key=value pair to a query string: a '&' first when q is not
   empty, then key and value encoded with PR_URL_ENC_QUERY (so '&', '=',
   '+', '#' and spaces are escaped). No leading '?' is written.
   Params: q - the query being built; key - NUL-terminated; value -
           NUL-terminated, or NULL to write the key alone without '='.
   Returns: PR_OK; PR_EINVAL if key is NULL; PR_ENOMEM (q is unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_url_encode. */
PRISTINE_API int pr_url_query_append(pr_buf *q, const char *key, const char *value);

/* Resolve a URI reference against an absolute base URI (RFC 3986 section
   5.2: strict mode, remove_dot_segments, recomposition per 5.3) and append
   the result. This works on generic URI syntax, so "g:h" against an http
   base gives "g:h"; parse the result with pr_url_parse to get an http URL
   (for a redirect: format the current URL without fragment as the base,
   resolve the trimmed Location value, parse). The base's fragment is
   ignored. Both inputs obey the same byte rules as pr_url_parse: no
   control bytes or spaces, and every '%' starts a %XX escape.
   Params: out - appended to; base, base_len - the base URI, which must
           have a scheme; ref, ref_len - the reference; err - optional,
           receives the code and a message on failure.
   Returns: PR_OK; PR_EINVAL for a base without a scheme or a bad byte in
            either input; PR_ENOMEM. On failure out is unchanged.
   Blocks: no.
   Thread: owner.
   See: pr_url_parse, pr_url_format. */
PRISTINE_API int pr_url_resolve(pr_buf *out, const char *base, size_t base_len,
                                const char *ref, size_t ref_len, pr_err_info *err);

// @pristine:impl
/* Generic RFC 3986 components of a URI reference (appendix B split). */
typedef struct pr__url_parts {
    pr_slice scheme, auth, path, query, frag;
    int has_scheme, has_auth, has_query, has_frag;
} pr__url_parts;

static int pr__url_is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int pr__url_is_digit(int c) { return c >= '0' && c <= '9'; }
static int pr__url_hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
static int pr__url_in(int c, const char *set) { return c != 0 && strchr(set, c) != NULL; }
static int pr__url_unreserved(int c) {
    return pr__url_is_alpha(c) || pr__url_is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
static int pr__url_sub_delim(int c) { return pr__url_in(c, "!$&'()*+,;="); }

/* Check the byte rules shared by parse and resolve; 0 if fine, else the
   error with a message naming the offset. */
static int pr__url_check_bytes(const char *s, size_t n, const char *what, pr_err_info *err) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return pr__err_set(err, PR_EINVAL, 0, "url: %s: control byte 0x%02x at offset %lu", what,
                               (unsigned)c, (unsigned long)i);
        if (c == ' ')
            return pr__err_set(err, PR_EINVAL, 0, "url: %s: space at offset %lu", what, (unsigned long)i);
        if (c == '%' && (n - i < 3 || pr__url_hexval((unsigned char)s[i + 1]) < 0 ||
                         pr__url_hexval((unsigned char)s[i + 2]) < 0))
            return pr__err_set(err, PR_EINVAL, 0, "url: %s: malformed percent-encoding at offset %lu", what,
                               (unsigned long)i);
    }
    return PR_OK;
}

/* Length of a scheme at the start of s (excluding the ':'), or 0. */
static size_t pr__url_scheme_len(const char *s, size_t n) {
    size_t i;
    if (n == 0 || !pr__url_is_alpha((unsigned char)s[0])) return 0;
    for (i = 1; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == ':') return i;
        if (!pr__url_is_alpha(c) && !pr__url_is_digit(c) && c != '+' && c != '-' && c != '.') return 0;
    }
    return 0;
}

static pr_slice pr__url_sl(const char *p, size_t n) {
    pr_slice s;
    s.ptr = p;
    s.len = n;
    return s;
}

static void pr__url_split(const char *s, size_t n, pr__url_parts *p) {
    size_t i = 0, j, k;
    memset(p, 0, sizeof *p);
    p->scheme = p->auth = p->path = p->query = p->frag = pr__url_sl("", 0);
    k = pr__url_scheme_len(s, n);
    if (k) {
        p->has_scheme = 1;
        p->scheme = pr__url_sl(s, k);
        i = k + 1;
    }
    if (n - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        p->has_auth = 1;
        for (j = i + 2; j < n && s[j] != '/' && s[j] != '?' && s[j] != '#'; j++) {}
        p->auth = pr__url_sl(s + i + 2, j - i - 2);
        i = j;
    }
    for (j = i; j < n && s[j] != '?' && s[j] != '#'; j++) {}
    p->path = pr__url_sl(s + i, j - i);
    i = j;
    if (i < n && s[i] == '?') {
        p->has_query = 1;
        for (j = i + 1; j < n && s[j] != '#'; j++) {}
        p->query = pr__url_sl(s + i + 1, j - i - 1);
        i = j;
    }
    if (i < n && s[i] == '#') {
        p->has_frag = 1;
        p->frag = pr__url_sl(s + i + 1, n - i - 1);
    }
}

/* A dotted-quad IPv4 address filling all of s (RFC 3986 dec-octet). */
static int pr__url_ipv4_ok(const char *s, size_t n) {
    size_t i = 0;
    int part;
    for (part = 0; part < 4; part++) {
        size_t d = 0;
        unsigned v = 0;
        if (part) {
            if (i >= n || s[i] != '.') return 0;
            i++;
        }
        while (i < n && pr__url_is_digit((unsigned char)s[i]) && d < 4) v = v * 10 + (unsigned)(s[i++] - '0'), d++;
        if (d == 0 || d > 3 || v > 255 || (d > 1 && s[i - d] == '0')) return 0;
    }
    return i == n;
}

/* An RFC 3986 IPv6address filling all of s (no zone, no brackets). */
static int pr__url_ipv6_ok(const char *s, size_t n) {
    size_t i = 0;
    int groups = 0, dbl = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        dbl = 1;
        i = 2;
        if (i == n) return 1;
    } else if (n == 0 || s[0] == ':') {
        return 0;
    }
    for (;;) {
        size_t h = 0;
        while (i + h < n && h < 5 && pr__url_hexval((unsigned char)s[i + h]) >= 0) h++;
        if (i + h < n && s[i + h] == '.') {
            if (!pr__url_ipv4_ok(s + i, n - i)) return 0;
            groups += 2;
            break;
        }
        if (h == 0 || h > 4) return 0;
        groups++;
        i += h;
        if (i == n) break;
        if (s[i] != ':') return 0;
        i++;
        if (i < n && s[i] == ':') {
            if (dbl) return 0;
            dbl = 1;
            i++;
            if (i == n) break;
        } else if (i == n) {
            return 0;
        }
        if (groups > 8) return 0;
    }
    return dbl ? groups <= 7 : groups == 8;
}

/* Userinfo and reg-name bytes: unreserved, sub-delims, %XX (already
   checked), bytes >= 0x80, and ':' where colon is set. */
static int pr__url_name_ok(pr_slice s, int colon, size_t *bad) {
    size_t i;
    for (i = 0; i < s.len; i++) {
        int c = (unsigned char)s.ptr[i];
        if (pr__url_unreserved(c) || pr__url_sub_delim(c) || c == '%' || c >= 0x80 || (colon && c == ':'))
            continue;
        *bad = i;
        return 0;
    }
    return 1;
}

/* One part of a WHATWG IPv4 host: decimal, 0x hex or 0-led octal. Returns
   0 and *v, or -1. */
static int pr__url_v4_part(const char *p, size_t n, uint64_t *v) {
    unsigned radix = 10;
    size_t i;
    *v = 0;
    if (n == 0) return -1;
    if (n >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        radix = 16;
        p += 2;
        n -= 2;
    } else if (n >= 2 && p[0] == '0') {
        radix = 8;
        p++;
        n--;
    }
    for (i = 0; i < n; i++) {
        int d = pr__url_hexval((unsigned char)p[i]);
        if (d < 0 || (unsigned)d >= radix) return -1;
        *v = *v * radix + (unsigned)d;
        if (*v > 0xffffffffu) return -1;
    }
    return 0;
}

/* A host ending in a number is an IPv4 address (WHATWG URL host parsing).
   Returns 0 (not one: a name), 1 (out[16] holds the dotted quad) or -1
   (ends in a number but is no valid address). */
static int pr__url_ipv4(pr_slice h, char out[16]) {
    const char *dot, *last;
    size_t n = h.len, nparts = 0, start = 0, i, len;
    uint64_t parts[4], addr;
    if (n > 1 && h.ptr[n - 1] == '.') n--;
    dot = NULL;
    for (i = n; i > 0; i--)
        if (h.ptr[i - 1] == '.') {
            dot = h.ptr + i - 1;
            break;
        }
    last = dot ? dot + 1 : h.ptr;
    len = (size_t)(h.ptr + n - last);
    for (i = 0; i < len && pr__url_is_digit((unsigned char)last[i]); i++) {}
    if (i == 0 || i != len) { /* not all digits: "0x" and hex digits count too */
        if (len < 2 || last[0] != '0' || (last[1] != 'x' && last[1] != 'X')) return 0;
        for (i = 2; i < len; i++)
            if (pr__url_hexval((unsigned char)last[i]) < 0) return 0;
    }
    for (i = 0; i <= n; i++) {
        if (i < n && h.ptr[i] != '.') continue;
        if (nparts == 4 || pr__url_v4_part(h.ptr + start, i - start, &parts[nparts]) != 0) return -1;
        nparts++;
        start = i + 1;
    }
    for (i = 0; i + 1 < nparts; i++)
        if (parts[i] > 255) return -1;
    if (parts[nparts - 1] >= ((uint64_t)1 << (8 * (5 - nparts)))) return -1;
    addr = parts[nparts - 1];
    for (i = 0; i + 1 < nparts; i++) addr += parts[i] << (8 * (3 - i));
    snprintf(out, 16, "%u.%u.%u.%u", (unsigned)(addr >> 24), (unsigned)(addr >> 16) & 255u,
             (unsigned)(addr >> 8) & 255u, (unsigned)addr & 255u);
    return 1;
}

static int pr__url_fail(pr_url *u, pr_err_info *err, const char *fmt, const char *arg, size_t arg_len) {
    int n = (int)PR__MIN(arg_len, (size_t)40);
    memset(u, 0, sizeof *u);
    return pr__err_set(err, PR_EINVAL, 0, fmt, n, arg);
}

int pr_url_parse(pr_url *u, const char *s, size_t len, pr_err_info *err) {
    pr__url_parts p;
    pr_slice host, port = pr__url_sl("", 0), ui;
    size_t i, bad = 0;
    int rc, has_port = 0, is_ipv6 = 0, secure, v4 = 0;
    unsigned long pv = 0;
    char *mem, quad[16];
    if (!u) return pr__err_set(err, PR_EINVAL, 0, "url: NULL pr_url");
    memset(u, 0, sizeof *u);
    if (!s && len) return pr__err_set(err, PR_EINVAL, 0, "url: NULL text");
    if (!s) s = "";
    if ((rc = pr__url_check_bytes(s, len, "parse", err)) != 0) return rc;
    pr__url_split(s, len, &p);
    if (!p.has_scheme)
        return pr__url_fail(u, err, "url: not an absolute URL (no scheme)%.*s", "", 0);
    if (pr_slice_ieq(p.scheme, pr_slice_cstr("https"))) secure = 1;
    else if (pr_slice_ieq(p.scheme, pr_slice_cstr("http"))) secure = 0;
    else return pr__url_fail(u, err, "url: unsupported scheme \"%.*s\" (only http and https)", p.scheme.ptr, p.scheme.len);
    if (!p.has_auth) return pr__url_fail(u, err, "url: missing \"//\" after \"%.*s:\"", p.scheme.ptr, p.scheme.len);
    /* userinfo: everything before the last '@' */
    ui = pr__url_sl("", 0);
    host = p.auth;
    for (i = p.auth.len; i > 0; i--)
        if (p.auth.ptr[i - 1] == '@') break;
    if (i > 0) {
        ui = pr__url_sl(p.auth.ptr, i - 1);
        host = pr__url_sl(p.auth.ptr + i, p.auth.len - i);
        u->has_userinfo = 1;
        if (!pr__url_name_ok(ui, 1, &bad))
            return pr__url_fail(u, err, "url: invalid byte in userinfo: \"%.*s\"", ui.ptr + bad, 1);
    }
    if (host.len && host.ptr[0] == '[') {
        size_t e;
        for (e = 1; e < host.len && host.ptr[e] != ']'; e++) {}
        if (e == host.len) return pr__url_fail(u, err, "url: IPv6 literal without ']': \"%.*s\"", host.ptr, host.len);
        if (e + 1 < host.len) {
            if (host.ptr[e + 1] != ':')
                return pr__url_fail(u, err, "url: unexpected text after ']': \"%.*s\"", host.ptr + e + 1, host.len - e - 1);
            has_port = 1;
            port = pr__url_sl(host.ptr + e + 2, host.len - e - 2);
        }
        host = pr__url_sl(host.ptr + 1, e - 1);
        is_ipv6 = 1;
        if (memchr(host.ptr, '%', host.len))
            return pr__url_fail(u, err, "url: IPv6 zone identifiers are not supported: \"%.*s\"", host.ptr, host.len);
        if (host.len && (host.ptr[0] == 'v' || host.ptr[0] == 'V'))
            return pr__url_fail(u, err, "url: IPvFuture literals are not supported: \"%.*s\"", host.ptr, host.len);
        if (!pr__url_ipv6_ok(host.ptr, host.len))
            return pr__url_fail(u, err, "url: invalid IPv6 literal: \"%.*s\"", host.ptr, host.len);
    } else {
        const char *c = (const char *)memchr(host.ptr, ':', host.len);
        if (c) {
            has_port = 1;
            port = pr__url_sl(c + 1, host.len - (size_t)(c + 1 - host.ptr));
            host.len = (size_t)(c - host.ptr);
        }
        if (host.len == 0) return pr__url_fail(u, err, "url: empty host%.*s", "", 0);
        if (!pr__url_name_ok(host, 0, &bad))
            return pr__url_fail(u, err, "url: invalid byte in host: \"%.*s\"", host.ptr + bad, 1);
        v4 = pr__url_ipv4(host, quad);
        if (v4 < 0) return pr__url_fail(u, err, "url: invalid IPv4 address: \"%.*s\"", host.ptr, host.len);
    }
    if (has_port && port.len) {
        if (memchr(port.ptr, ':', port.len))
            return pr__url_fail(u, err, "url: bad port (an IPv6 address needs brackets): \"%.*s\"", host.ptr,
                                (size_t)(port.ptr + port.len - host.ptr));
        for (i = 0; i < port.len; i++) {
            if (!pr__url_is_digit((unsigned char)port.ptr[i]))
                return pr__url_fail(u, err, "url: port is not a number: \"%.*s\"", port.ptr, port.len);
            pv = pv * 10 + (unsigned long)(port.ptr[i] - '0');
            if (pv > 65535) return pr__url_fail(u, err, "url: port out of range: \"%.*s\"", port.ptr, port.len);
        }
        if (pv == 0) return pr__url_fail(u, err, "url: port 0 is not usable: \"%.*s\"", port.ptr, port.len);
    } else {
        has_port = 0;
    }
    mem = (char *)pr__alloc(len + 1 + (v4 > 0 ? sizeof quad : 0));
    if (!mem) {
        memset(u, 0, sizeof *u);
        return pr__err_set(err, PR_ENOMEM, 0, "url: out of memory");
    }
    memcpy(mem, s, len);
    mem[len] = 0;
#define PR__URL_REBASE(sl) pr__url_sl((sl).len ? mem + ((sl).ptr - s) : mem + len, (sl).len)
    u->scheme = PR__URL_REBASE(p.scheme);
    u->userinfo = PR__URL_REBASE(ui);
    u->host = PR__URL_REBASE(host);
    u->path = PR__URL_REBASE(p.path);
    u->query = PR__URL_REBASE(p.query);
    u->fragment = PR__URL_REBASE(p.frag);
#undef PR__URL_REBASE
    for (i = 0; i < u->scheme.len; i++) {
        char *c = mem + (u->scheme.ptr - mem) + i;
        *c = (char)pr__buf_ascii_lower((unsigned char)*c);
    }
    for (i = 0; i < u->host.len; i++) {
        char *c = mem + (u->host.ptr - mem) + i;
        *c = (char)pr__buf_ascii_lower((unsigned char)*c);
    }
    if (v4 > 0) { /* the dotted quad, after the copy of the text */
        memcpy(mem + len + 1, quad, sizeof quad);
        u->host = pr__url_sl(mem + len + 1, strlen(quad));
    }
    u->port = has_port ? (uint16_t)pv : (uint16_t)(secure ? 443 : 80);
    u->port_explicit = has_port;
    u->is_ipv6 = is_ipv6;
    u->secure = secure;
    u->has_query = p.has_query;
    u->has_fragment = p.has_frag;
    u->mem_ = mem;
    u->mem_len_ = len + 1 + (v4 > 0 ? sizeof quad : 0);
    return PR_OK;
}

void pr_url_deinit(pr_url *u) {
    if (!u) return;
    pr__free(u->mem_, u->mem_len_);
    memset(u, 0, sizeof *u);
}

/* Append helpers that roll out back to its old length on failure. */
static int pr__url_put(pr_buf *out, const char *p, size_t n) { return pr_buf_append(out, p, n); }
static int pr__url_put_sl(pr_buf *out, pr_slice s) { return pr_buf_append(out, s.ptr, s.len); }
static int pr__url_undo(pr_buf *out, size_t old, int rc) {
    if (rc && out->data) {
        out->len = old;
        out->data[old] = 0;
    }
    return rc;
}

static int pr__url_put_host_port(pr_buf *out, const pr_url *u, int with_port) {
    int rc = 0;
    char num[24];
    if (u->is_ipv6) rc = pr__url_put(out, "[", 1);
    if (!rc) rc = pr__url_put_sl(out, u->host);
    if (!rc && u->is_ipv6) rc = pr__url_put(out, "]", 1);
    if (!rc && with_port) {
        num[0] = ':';
        rc = pr__url_put(out, num, 1 + pr__buf_dec(num + 1, u->port));
    }
    return rc;
}

int pr_url_format(pr_buf *out, const pr_url *u, int with_fragment) {
    size_t old = out->len;
    int rc = pr__url_put_sl(out, u->scheme);
    if (!rc) rc = pr__url_put(out, "://", 3);
    if (!rc && u->has_userinfo) {
        rc = pr__url_put_sl(out, u->userinfo);
        if (!rc) rc = pr__url_put(out, "@", 1);
    }
    if (!rc) rc = pr__url_put_host_port(out, u, u->port_explicit);
    if (!rc) rc = pr__url_put_sl(out, u->path);
    if (!rc && u->has_query) {
        rc = pr__url_put(out, "?", 1);
        if (!rc) rc = pr__url_put_sl(out, u->query);
    }
    if (!rc && with_fragment && u->has_fragment) {
        rc = pr__url_put(out, "#", 1);
        if (!rc) rc = pr__url_put_sl(out, u->fragment);
    }
    return pr__url_undo(out, old, rc);
}

/* Append s, percent-encoding what a request line may not carry raw; runs of
   plain bytes are appended whole. */
static int pr__url_put_target_part(pr_buf *out, pr_slice s) {
    static const char hex[] = "0123456789ABCDEF";
    size_t i = 0, run;
    int rc = pr_buf_reserve(out, s.len);
    while (!rc && i < s.len) {
        for (run = i; run < s.len; run++) {
            unsigned char c = (unsigned char)s.ptr[run];
            if (c >= 0x80 || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' || c == '{' ||
                c == '|' || c == '}')
                break;
        }
        if (run > i) rc = pr__url_put(out, s.ptr + i, run - i);
        if (!rc && run < s.len) {
            unsigned char c = (unsigned char)s.ptr[run];
            char e[3];
            e[0] = '%';
            e[1] = hex[c >> 4];
            e[2] = hex[c & 15];
            rc = pr__url_put(out, e, 3);
            run++;
        }
        i = run;
    }
    return rc;
}

int pr_url_target(pr_buf *out, const pr_url *u) {
    size_t old = out->len;
    int rc = u->path.len ? pr__url_put_target_part(out, u->path) : pr__url_put(out, "/", 1);
    if (!rc && u->has_query) {
        rc = pr__url_put(out, "?", 1);
        if (!rc) rc = pr__url_put_target_part(out, u->query);
    }
    return pr__url_undo(out, old, rc);
}

int pr_url_authority(pr_buf *out, const pr_url *u, int always_port) {
    size_t old = out->len;
    int rc = pr__url_put_host_port(out, u, always_port || u->port != (u->secure ? 443 : 80));
    return pr__url_undo(out, old, rc);
}

int pr_url_origin(pr_buf *out, const pr_url *u) {
    size_t old = out->len;
    int rc = pr__url_put_sl(out, u->scheme);
    if (!rc) rc = pr__url_put(out, "://", 3);
    if (!rc) rc = pr__url_put_host_port(out, u, 1);
    return pr__url_undo(out, old, rc);
}

int pr_url_same_origin(const pr_url *a, const pr_url *b) {
    return a->secure == b->secure && a->port == b->port && a->is_ipv6 == b->is_ipv6 &&
           pr_slice_ieq(a->scheme, b->scheme) && pr_slice_ieq(a->host, b->host);
}

static int pr__url_keep(int c, int set) {
    switch (set) {
    case PR_URL_ENC_COMPONENT: return pr__url_unreserved(c);
    case PR_URL_ENC_PATH: return pr__url_unreserved(c) || pr__url_sub_delim(c) || c == ':' || c == '@' || c == '/';
    case PR_URL_ENC_QUERY: return pr__url_unreserved(c) || pr__url_in(c, "!$'()*,;:@/?");
    default: return pr__url_is_alpha(c) || pr__url_is_digit(c) || pr__url_in(c, "*-._");
    }
}

int pr_url_encode(pr_buf *out, const char *s, size_t n, int set) {
    static const char hex[] = "0123456789ABCDEF";
    size_t i, need = 0;
    char *w;
    int rc;
    if (set < PR_URL_ENC_COMPONENT || set > PR_URL_ENC_FORM || (!s && n)) return PR_EINVAL;
    for (i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        need += pr__url_keep(c, set) || (set == PR_URL_ENC_FORM && c == ' ') ? 1 : 3;
    }
    if ((rc = pr_buf_reserve(out, need)) != 0) return rc;
    w = out->data + out->len;
    for (i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (pr__url_keep(c, set)) {
            *w++ = (char)c;
        } else if (set == PR_URL_ENC_FORM && c == ' ') {
            *w++ = '+';
        } else {
            *w++ = '%';
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
        }
    }
    out->len += need;
    out->data[out->len] = 0;
    return PR_OK;
}

int pr_url_decode(pr_buf *out, const char *s, size_t n, int flags) {
    size_t i, need = 0;
    char *w;
    int rc;
    if (!s && n) return PR_EINVAL;
    for (i = 0; i < n; i++, need++) {
        if (s[i] != '%') continue;
        if (n - i < 3 || pr__url_hexval((unsigned char)s[i + 1]) < 0 || pr__url_hexval((unsigned char)s[i + 2]) < 0)
            return PR_EINVAL;
        i += 2;
    }
    if ((rc = pr_buf_reserve(out, need)) != 0) return rc;
    w = out->data + out->len;
    for (i = 0; i < n; i++) {
        if (s[i] == '%') {
            *w++ = (char)(pr__url_hexval((unsigned char)s[i + 1]) * 16 + pr__url_hexval((unsigned char)s[i + 2]));
            i += 2;
        } else if (s[i] == '+' && (flags & PR_URL_DEC_PLUS)) {
            *w++ = ' ';
        } else {
            *w++ = s[i];
        }
    }
    out->len += need;
    out->data[out->len] = 0;
    return PR_OK;
}

int pr_url_query_append(pr_buf *q, const char *key, const char *value) {
    size_t old = q->len;
    int rc = 0;
    if (!key) return PR_EINVAL;
    if (q->len) rc = pr__url_put(q, "&", 1);
    if (!rc) rc = pr_url_encode(q, key, strlen(key), PR_URL_ENC_QUERY);
    if (!rc && value) {
        rc = pr__url_put(q, "=", 1);
        if (!rc) rc = pr_url_encode(q, value, strlen(value), PR_URL_ENC_QUERY);
    }
    return pr__url_undo(q, old, rc);
}

/* RFC 3986 5.2.4 on w[0..n), in place; returns the new length. The output
   never overtakes the input, so one buffer serves both. */
static size_t pr__url_remove_dots(char *w, size_t n) {
    size_t in = 0, o = 0;
#define PR__URL_AT(str) (n - in >= sizeof(str) - 1 && memcmp(w + in, str, sizeof(str) - 1) == 0)
#define PR__URL_IS(str) (n - in == sizeof(str) - 1 && memcmp(w + in, str, sizeof(str) - 1) == 0)
    while (in < n) {
        if (PR__URL_AT("../")) {
            in += 3;
        } else if (PR__URL_AT("./")) {
            in += 2;
        } else if (PR__URL_AT("/./")) {
            in += 2;
        } else if (PR__URL_IS("/.")) {
            in += 1;
            w[in] = '/';
        } else if (PR__URL_AT("/../")) {
            in += 3;
            while (o > 0 && w[o - 1] != '/') o--;
            if (o > 0) o--;
        } else if (PR__URL_IS("/..")) {
            in += 2;
            w[in] = '/';
            while (o > 0 && w[o - 1] != '/') o--;
            if (o > 0) o--;
        } else if (PR__URL_IS(".") || PR__URL_IS("..")) {
            in = n;
        } else {
            size_t e = in + 1;
            while (e < n && w[e] != '/') e++;
            memmove(w + o, w + in, e - in);
            o += e - in;
            in = e;
        }
    }
#undef PR__URL_AT
#undef PR__URL_IS
    return o;
}

int pr_url_resolve(pr_buf *out, const char *base, size_t base_len, const char *ref, size_t ref_len,
                   pr_err_info *err) {
    pr__url_parts b, r;
    pr_slice scheme, auth, query;
    int has_auth, has_query, rc;
    size_t pstart;
    char *w;
    if ((!base && base_len) || (!ref && ref_len)) return pr__err_set(err, PR_EINVAL, 0, "url: NULL text");
    if (!base) base = "";
    if (!ref) ref = "";
    if ((rc = pr__url_check_bytes(base, base_len, "base", err)) != 0) return rc;
    if ((rc = pr__url_check_bytes(ref, ref_len, "reference", err)) != 0) return rc;
    pr__url_split(base, base_len, &b);
    pr__url_split(ref, ref_len, &r);
    if (!b.has_scheme) return pr__err_set(err, PR_EINVAL, 0, "url: the base is not absolute (no scheme)");
    /* The result is never longer than base + ref + "//" + "/" + "?" + "#" + ":". */
    if ((rc = pr_buf_reserve(out, base_len + ref_len + 8)) != 0)
        return pr__err_set(err, rc, 0, "url: out of memory");
    w = out->data + out->len;
#define PR__URL_W(p, n) (memcpy(w, (p), (n)), w += (n))
    if (r.has_scheme) {
        scheme = r.scheme;
        has_auth = r.has_auth, auth = r.auth;
        has_query = r.has_query, query = r.query;
    } else {
        scheme = b.scheme;
        if (r.has_auth) {
            has_auth = 1, auth = r.auth;
            has_query = r.has_query, query = r.query;
        } else {
            has_auth = b.has_auth, auth = b.auth;
            if (r.path.len == 0) {
                has_query = r.has_query ? 1 : b.has_query;
                query = r.has_query ? r.query : b.query;
            } else {
                has_query = r.has_query, query = r.query;
            }
        }
    }
    PR__URL_W(scheme.ptr, scheme.len);
    *w++ = ':';
    if (has_auth) {
        PR__URL_W("//", 2);
        PR__URL_W(auth.ptr, auth.len);
    }
    pstart = (size_t)(w - out->data);
    if (r.has_scheme || r.has_auth || (r.path.len && r.path.ptr[0] == '/')) {
        PR__URL_W(r.path.ptr, r.path.len);
        w = out->data + pstart + pr__url_remove_dots(out->data + pstart, r.path.len);
    } else if (r.path.len == 0) {
        PR__URL_W(b.path.ptr, b.path.len);
    } else {
        size_t keep = b.path.len, n;
        if (b.has_auth && b.path.len == 0) {
            *w++ = '/';
        } else {
            while (keep > 0 && b.path.ptr[keep - 1] != '/') keep--;
            PR__URL_W(b.path.ptr, keep);
        }
        PR__URL_W(r.path.ptr, r.path.len);
        n = (size_t)(w - out->data) - pstart;
        w = out->data + pstart + pr__url_remove_dots(out->data + pstart, n);
    }
    if (has_query) {
        *w++ = '?';
        PR__URL_W(query.ptr, query.len);
    }
    if (r.has_frag) {
        *w++ = '#';
        PR__URL_W(r.frag.ptr, r.frag.len);
    }
#undef PR__URL_W
    out->len = (size_t)(w - out->data);
    out->data[out->len] = 0;
    return PR_OK;
}
