/* testserver.c - a small scripted HTTP/1.1 test server built on pristine
   itself: pr_tcp_listen/pr_tcp_accept, one task per connection in a group,
   optional TLS (pr_tls_server), keep-alive, a small request parser of its own.
   Endpoints are chosen by path and query; see tools/README.md.

   Two ways to use it:
   (a) #include "../tools/testserver.c" in a translation unit that already
       included pristine.h with PRISTINE_IMPLEMENTATION (the test suite), then
       ts_start / ts_port / ts_stop from a task;
   (b) a standalone program:
       cc -std=c99 -O2 -DPR_TESTSERVER_MAIN tools/testserver.c -o build/testserver -lbearssl -lpthread
       build/testserver [--port P] [--lifetime MS] [--tls CERT KEY [--tls-client-ca FILE]]
       prints its port on stdout, then serves until the lifetime ends.

   Every name here starts with ts_. */
#ifdef PR_TESTSERVER_MAIN
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#endif

#ifndef TS_TESTSERVER_C
#define TS_TESTSERVER_C

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define TS_UNUSED __attribute__((unused))
#else
#define TS_UNUSED
#endif

/* What an endpoint asks the connection to do after the response. */
#define TS_CLOSE 1 /* shut down our side in order, then close */
#define TS_ABORT 2 /* close at once (no TLS close_notify): a dropped connection */

/* Server options; all-zero means defaults. */
typedef struct ts_opts {
    const char *host;          /* NULL = "127.0.0.1" */
    uint16_t port;             /* 0 = ephemeral */
    int max_lifetime_ms;       /* <= 0 = 60000: the server stops itself after this */
    int idle_timeout_ms;       /* <= 0 = 10000: keep-alive idle limit per connection */
    const char *tls_cert_file; /* PEM chain and key files: both set = TLS */
    const char *tls_key_file;
    const char *tls_cert_pem;  /* or the PEM text itself (takes precedence) */
    const char *tls_key_pem;
    const char *tls_client_ca_file; /* with TLS: require client certificates signed by this PEM CA */
    const char *tls_client_ca_pem;  /* or the PEM text itself (takes precedence) */
    int backlog;               /* <= 0 = 64: the listen backlog */
    int future_polls;          /* <= 0 = 3: an unscripted remote future resolves on this poll */
    int future_hold_ms;        /* its try_again answers wait this long first (a long poll) */
} ts_opts;

typedef struct ts_server ts_server;

/* One scripted response (ts_script). All-zero: 200 with an empty body. */
typedef struct ts_step {
    int status;                 /* 0 = 200 */
    const char *headers;        /* extra head lines, each "Name: value\r\n" (copied); NULL = none */
    const char *body;           /* the body (copied); NULL = empty */
    int delay_head_ms;          /* wait this long before sending the head */
    int stall_body;             /* send the head and the first half of the body, then nothing more
                                   until the client leaves or the server stops */
    int close_without_response; /* read the request, then close the connection unanswered */
    int reset_mid_head;         /* send the first half of the head, then reset the connection */
    int count;                  /* 0 = 1: how many requests in a row this step answers */
    int close_mid;              /* 1 = send the first half of the head, 2 = the head and the first
                                   half of the body, then close the connection in order (FIN) */
} ts_step;

/* One logged request (ts_log_get). The views point into head. */
typedef struct ts_logged {
    int64_t at_ms;              /* pr_now() when its head was complete */
    long conn_id, conn_request; /* X-Conn-Id and X-Conn-Request of its response */
    char *head;                 /* the raw head, NUL-terminated */
    size_t head_len;
    char *body;                 /* the decoded body, NUL-terminated */
    size_t body_len;
    pr_slice method, target, path;
} ts_logged;

struct ts_conn;

struct ts_server {
    pr_listener *l;
    pr_group *top;      /* the accept task */
    pr_group *conns;    /* one task per connection */
    pr_tls_server_cfg *tls;
    int64_t end;        /* absolute deadline: the server stops itself then */
    int idle_ms;
    int stopped;        /* the accept task has finished */
    long accepted;      /* connections accepted so far */
    long requests;      /* requests parsed so far */
    long open;          /* connections currently open */
    struct ts_conn *live; /* connection records not yet finished */
    struct ts_route *routes;   /* scripted routes (ts_script) */
    struct ts_logged *log;     /* every request, in arrival order */
    size_t nlog, log_cap;
    struct ts_count_e **counts; /* counters by name (ts_counter) */
    long submits;              /* request ids handed out by the submit routes */
    int future_polls;          /* unscripted futures resolve on this poll */
    int future_hold_ms;        /* unscripted try_again answers wait this long first */
};

typedef struct ts_conn {
    ts_server *s;
    pr_conn *c;
    pr_conn *raw;        /* the TCP connection under TLS (== c without TLS); borrowed */
    long id;
    long nreq;           /* requests on this connection */
    pr_buf in;           /* received, not yet consumed */
    struct ts_conn *next, *prev;
} ts_conn;

typedef struct ts_req {
    pr_slice method, target, path, query;
    int minor;
    int keep_alive;
    size_t head_len;     /* bytes of the head at the start of in */
    int64_t at;          /* pr_now() when the head was complete */
    pr_buf head;         /* a copy of the raw head */
    pr_buf body;         /* the decoded request body */
} ts_req;

/* ---- small helpers ---- */

static char ts_body_byte(uint64_t i) { return (char)('a' + (int)(i % 26)); }

static void ts_fill_body(char *p, size_t n, uint64_t off) {
    size_t i;
    for (i = 0; i < n; i++) p[i] = ts_body_byte(off + i);
}

static int64_t ts_deadline(const ts_server *s) { return s->end; }

static int64_t ts_read_deadline(const ts_conn *x) {
    return pr_deadline_min(x->s->end, pr_deadline_in(x->s->idle_ms));
}

/* The value of key in the query, or 0 with *found = 0. */
static int ts_qslice(const ts_req *r, const char *key, pr_slice *out) {
    const char *p = r->query.ptr, *end = r->query.ptr + r->query.len;
    size_t kl = strlen(key);
    while (p < end) {
        const char *amp = (const char *)memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = (const char *)memchr(p, '=', (size_t)(e - p));
        const char *ke = eq ? eq : e;
        if ((size_t)(ke - p) == kl && memcmp(p, key, kl) == 0) {
            out->ptr = eq ? eq + 1 : e;
            out->len = (size_t)(e - out->ptr);
            return 1;
        }
        p = e + 1;
    }
    out->ptr = "";
    out->len = 0;
    return 0;
}

static int64_t ts_qint(const ts_req *r, const char *key, int64_t def) {
    pr_slice v;
    int64_t n;
    if (!ts_qslice(r, key, &v) || pr_parse_i64(v, &n) != PR_OK) return def;
    return n;
}

/* A header's value (first match, trimmed) in a raw request head. */
static int ts_head_field(const char *head, size_t len, const char *name, pr_slice *out) {
    const char *p = head, *end = head + len;
    size_t nl = strlen(name);
    p = (const char *)memchr(p, '\n', (size_t)(end - p)); /* skip the request line */
    while (p && ++p < end) {
        const char *e = (const char *)memchr(p, '\n', (size_t)(end - p));
        const char *colon;
        if (!e) break;
        colon = (const char *)memchr(p, ':', (size_t)(e - p));
        if (colon && (size_t)(colon - p) == nl && pr_slice_ieq((pr_slice){p, nl}, (pr_slice){name, nl})) {
            pr_slice v;
            v.ptr = colon + 1;
            v.len = (size_t)(e - v.ptr);
            if (v.len > 0 && v.ptr[v.len - 1] == '\r') v.len--;
            *out = pr_slice_trim(v);
            return 1;
        }
        p = e;
    }
    return 0;
}

/* A request header's value (first match, trimmed). */
static int ts_header(const ts_req *r, const char *name, pr_slice *out) {
    return ts_head_field(r->head.data, r->head.len, name, out);
}

static int ts_token_has(pr_slice v, const char *tok) {
    size_t tl = strlen(tok), i = 0;
    while (i < v.len) {
        size_t j = i;
        pr_slice t;
        while (j < v.len && v.ptr[j] != ',') j++;
        t = pr_slice_trim((pr_slice){v.ptr + i, j - i});
        if (t.len == tl && pr_slice_ieq(t, (pr_slice){tok, tl})) return 1;
        i = j + 1;
    }
    return 0;
}

static int ts_write(ts_conn *x, const void *p, size_t n) {
    if (n == 0) return PR_OK;
    return pr_conn_write(x->c, p, n, ts_deadline(x->s));
}

static int ts_write_buf(ts_conn *x, pr_buf *b) {
    int rc = ts_write(x, b->data, b->len);
    pr_buf_clear(b);
    return rc;
}

/* Read more bytes into x->in. */
static int ts_more(ts_conn *x) {
    char tmp[4096];
    ptrdiff_t n = pr_conn_read(x->c, tmp, sizeof tmp, ts_read_deadline(x));
    if (n < 0) return (int)n;
    return pr_buf_append(&x->in, tmp, (size_t)n);
}

static const char *ts_reason(int code) {
    switch (code) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

/* Start a response head in b: status line, the connection's counters,
   Connection: close when the request will be the last. */
static int ts_head(pr_buf *b, ts_conn *x, const ts_req *r, int code) {
    int rc = pr_buf_printf(b, "HTTP/1.1 %d %s\r\nServer: pristine-testserver\r\nX-Conn-Id: %ld\r\n"
                              "X-Conn-Request: %ld\r\n", code, ts_reason(code), x->id, x->nreq);
    if (rc == PR_OK && !r->keep_alive) rc = pr_buf_append_str(b, "Connection: close\r\n");
    return rc;
}

/* ---- the request parser ---- */

#define TS_MAX_HEAD 65536
#define TS_MAX_BODY (4u << 20)

static ptrdiff_t ts_find_line(const pr_buf *b, size_t from) {
    const char *p;
    if (from >= b->len) return -1;
    p = (const char *)memchr(b->data + from, '\n', b->len - from);
    return p ? p - b->data : -1;
}

/* Read one request (head and body). Returns PR_OK, PR_ECLOSED (clean end
   before a request), PR_EPROTO (malformed: answer 400), PR_ELIMIT, or a
   connection error. */
static int ts_read_request(ts_conn *x, ts_req *r) {
    size_t pos = 0;
    ptrdiff_t nl;
    int rc, chunked = 0;
    uint64_t clen = 0;
    int has_clen = 0;
    pr_slice v;
    const char *sp1, *sp2, *ln, *qm;
    size_t lnlen;
    /* skip empty lines before a request (RFC 9112 2.2) */
    for (;;) {
        while (x->in.len > 0 && (x->in.data[0] == '\r' || x->in.data[0] == '\n')) pr_buf_consume(&x->in, 1);
        /* a method is a token: anything else (a TLS ClientHello) is answered 400 at once, as real servers do */
        if (x->in.len > 0 && !((x->in.data[0] >= 'A' && x->in.data[0] <= 'Z') || (x->in.data[0] >= 'a' && x->in.data[0] <= 'z')))
            return PR_EPROTO;
        /* the end of the head: an empty line */
        pos = 0;
        while ((nl = ts_find_line(&x->in, pos)) >= 0) {
            size_t len = (size_t)nl - pos;
            if (len == 0 || (len == 1 && x->in.data[pos] == '\r')) break;
            pos = (size_t)nl + 1;
        }
        if (nl >= 0 && pos > 0) {
            pos = (size_t)nl + 1;
            break;
        }
        if (x->in.len > TS_MAX_HEAD) return PR_ELIMIT;
        if ((rc = ts_more(x)) != PR_OK) return (rc == PR_ECLOSED && x->in.len > 0) ? PR_EPROTO : rc;
    }
    r->head_len = pos;
    r->at = pr_now();
    pr_buf_clear(&r->head);
    if ((rc = pr_buf_append(&r->head, x->in.data, pos)) != PR_OK) return rc;
    pr_buf_consume(&x->in, pos);
    x->s->requests++;
    x->nreq++;
    /* request line: method SP target SP HTTP/1.x */
    ln = r->head.data;
    lnlen = (size_t)((const char *)memchr(ln, '\n', r->head.len) - ln);
    if (lnlen > 0 && ln[lnlen - 1] == '\r') lnlen--;
    sp1 = (const char *)memchr(ln, ' ', lnlen);
    if (!sp1) return PR_EPROTO;
    sp2 = (const char *)memchr(sp1 + 1, ' ', lnlen - (size_t)(sp1 + 1 - ln));
    if (!sp2 || sp1 == ln || sp2 == sp1 + 1) return PR_EPROTO;
    if ((size_t)(ln + lnlen - (sp2 + 1)) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0) return PR_EPROTO;
    if (sp2[8] != '0' && sp2[8] != '1') return PR_EPROTO;
    r->minor = sp2[8] - '0';
    r->method = (pr_slice){ln, (size_t)(sp1 - ln)};
    r->target = (pr_slice){sp1 + 1, (size_t)(sp2 - sp1 - 1)};
    qm = (const char *)memchr(r->target.ptr, '?', r->target.len);
    r->path = (pr_slice){r->target.ptr, qm ? (size_t)(qm - r->target.ptr) : r->target.len};
    r->query = qm ? (pr_slice){qm + 1, (size_t)(r->target.ptr + r->target.len - qm - 1)} : (pr_slice){"", 0};
    r->keep_alive = r->minor == 1;
    if (ts_header(r, "Connection", &v)) {
        if (ts_token_has(v, "close")) r->keep_alive = 0;
        if (ts_token_has(v, "keep-alive")) r->keep_alive = 1;
    }
    if (ts_header(r, "Transfer-Encoding", &v)) {
        if (!ts_token_has(v, "chunked")) return PR_EPROTO;
        chunked = 1;
    } else if (ts_header(r, "Content-Length", &v)) {
        if (pr_parse_u64(v, &clen) != PR_OK) return PR_EPROTO;
        has_clen = 1;
    }
    /* body */
    pr_buf_clear(&r->body);
    if (has_clen) {
        if (clen > TS_MAX_BODY) return PR_ELIMIT;
        while (x->in.len < clen)
            if ((rc = ts_more(x)) != PR_OK) return rc == PR_ECLOSED ? PR_EPROTO : rc;
        if ((rc = pr_buf_append(&r->body, x->in.data, (size_t)clen)) != PR_OK) return rc;
        pr_buf_consume(&x->in, (size_t)clen);
    } else if (chunked) {
        for (;;) {
            uint64_t size = 0;
            size_t i, digits = 0;
            while ((nl = ts_find_line(&x->in, 0)) < 0) {
                if (x->in.len > 4096) return PR_EPROTO;
                if ((rc = ts_more(x)) != PR_OK) return rc == PR_ECLOSED ? PR_EPROTO : rc;
            }
            for (i = 0; i < (size_t)nl; i++) {
                char ch = x->in.data[i];
                int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                      : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
                if (d < 0) break;
                if (++digits > 8) return PR_EPROTO;
                size = size * 16 + (uint64_t)d;
            }
            if (digits == 0) return PR_EPROTO;
            pr_buf_consume(&x->in, (size_t)nl + 1);
            if (size == 0) { /* trailers up to the empty line */
                for (;;) {
                    while ((nl = ts_find_line(&x->in, 0)) < 0) {
                        if (x->in.len > 4096) return PR_EPROTO;
                        if ((rc = ts_more(x)) != PR_OK) return rc == PR_ECLOSED ? PR_EPROTO : rc;
                    }
                    pr_buf_consume(&x->in, (size_t)nl + 1);
                    if (nl == 0 || (nl == 1)) break;
                }
                break;
            }
            if (r->body.len + size > TS_MAX_BODY) return PR_ELIMIT;
            while (x->in.len < size + 2)
                if ((rc = ts_more(x)) != PR_OK) return rc == PR_ECLOSED ? PR_EPROTO : rc;
            if ((rc = pr_buf_append(&r->body, x->in.data, (size_t)size)) != PR_OK) return rc;
            if (x->in.data[size] != '\r' || x->in.data[size + 1] != '\n') return PR_EPROTO;
            pr_buf_consume(&x->in, (size_t)size + 2);
        }
    }
    return PR_OK;
}

/* ---- endpoints ---- */

/* A body of len deterministic bytes from offset off, in pieces. */
static int ts_write_pattern(ts_conn *x, uint64_t off, uint64_t len) {
    char tmp[16384];
    while (len > 0) {
        size_t n = len < sizeof tmp ? (size_t)len : sizeof tmp;
        int rc;
        ts_fill_body(tmp, n, off);
        if ((rc = ts_write(x, tmp, n)) != PR_OK) return rc;
        off += n;
        len -= n;
    }
    return PR_OK;
}

static int ts_is_head(const ts_req *r) { return pr_slice_eq(r->method, pr_slice_cstr("HEAD")); }

/* Headers end, then the pattern body (unless HEAD). */
static int ts_send_fixed(ts_conn *x, ts_req *r, pr_buf *b, uint64_t len) {
    int rc = pr_buf_printf(b, "Content-Type: text/plain\r\nContent-Length: %llu\r\n\r\n", (unsigned long long)len);
    if (rc == PR_OK) rc = ts_write_buf(x, b);
    if (rc == PR_OK && !ts_is_head(r)) rc = ts_write_pattern(x, 0, len);
    return rc;
}

static int ts_ep_fixed(ts_conn *x, ts_req *r, pr_buf *b) {
    int64_t len = ts_qint(r, "len", 26);
    int code = (int)ts_qint(r, "status", 200);
    int rc;
    if (len < 0) len = 0;
    if ((rc = ts_head(b, x, r, code)) != PR_OK) return rc;
    return ts_send_fixed(x, r, b, (uint64_t)len);
}

static int ts_ep_status(ts_conn *x, ts_req *r, pr_buf *b) {
    int code = (int)ts_qint(r, "code", 200);
    int rc;
    char msg[32];
    if (code < 100 || code > 999) code = 500;
    if ((rc = ts_head(b, x, r, code)) != PR_OK) return rc;
    if (code == 204 || code == 304 || code < 200) {
        if ((rc = pr_buf_append_str(b, "\r\n")) != PR_OK) return rc;
        return ts_write_buf(x, b);
    }
    snprintf(msg, sizeof msg, "status %d\n", code);
    rc = pr_buf_printf(b, "Content-Type: text/plain\r\nContent-Length: %u\r\n\r\n%s", (unsigned)strlen(msg),
                       ts_is_head(r) ? "" : msg);
    return rc == PR_OK ? ts_write_buf(x, b) : rc;
}

static int ts_chunk(ts_conn *x, pr_buf *b, uint64_t off, size_t n) {
    int rc = pr_buf_printf(b, "%lx\r\n", (unsigned long)n);
    size_t at;
    if (rc != PR_OK || (rc = pr_buf_reserve(b, n + 2)) != PR_OK) return rc;
    at = b->len;
    ts_fill_body(b->data + at, n, off);
    b->len += n;
    b->data[b->len] = 0;
    if ((rc = pr_buf_append(b, "\r\n", 2)) != PR_OK) return rc;
    return ts_write_buf(x, b);
}

/* /chunked?sizes=1,5,300&delay_ms=D&trailer=1 */
static int ts_ep_chunked(ts_conn *x, ts_req *r, pr_buf *b) {
    pr_slice sizes;
    int64_t delay = ts_qint(r, "delay_ms", 0);
    uint64_t off = 0;
    size_t i = 0;
    int rc;
    if (!ts_qslice(r, "sizes", &sizes)) sizes = pr_slice_cstr("26");
    if ((rc = ts_head(b, x, r, 200)) != PR_OK) return rc;
    if ((rc = pr_buf_append_str(b, "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")) != PR_OK)
        return rc;
    if ((rc = ts_write_buf(x, b)) != PR_OK) return rc;
    while (i < sizes.len) {
        size_t j = i;
        uint64_t n;
        while (j < sizes.len && sizes.ptr[j] != ',') j++;
        if (pr_parse_u64((pr_slice){sizes.ptr + i, j - i}, &n) == PR_OK && n > 0 && n <= TS_MAX_BODY) {
            if (delay > 0 && off > 0 && (rc = pr_sleep(pr_deadline_in(delay))) != PR_OK) return rc;
            if ((rc = ts_chunk(x, b, off, (size_t)n)) != PR_OK) return rc;
            off += n;
        }
        i = j + 1;
    }
    if (delay > 0 && (rc = pr_sleep(pr_deadline_in(delay))) != PR_OK) return rc;
    rc = pr_buf_append_str(b, ts_qint(r, "trailer", 0) ? "0\r\nX-Trailer: done\r\n\r\n" : "0\r\n\r\n");
    return rc == PR_OK ? ts_write_buf(x, b) : rc;
}

/* prefix, the decimal n >= 0 and a newline, without printf: the
   benchmarks stream millions of these lines. */
static int ts_line_num(pr_buf *b, const char *prefix, int64_t n) {
    char d[24];
    size_t k = pr__buf_dec(d, (uint64_t)n);
    int rc = pr_buf_append_str(b, prefix);
    if (rc == PR_OK) rc = pr_buf_append(b, d, k);
    return rc == PR_OK ? pr_buf_append(b, "\n", 1) : rc;
}

/* Write one SSE piece: as a chunk when chunked, raw otherwise. */
static int ts_sse_put(ts_conn *x, pr_buf *b, int chunked, const char *p, size_t n) {
    int rc;
    if (chunked) {
        if ((rc = pr_buf_printf(b, "%lx\r\n", (unsigned long)n)) != PR_OK) return rc;
        if ((rc = pr_buf_append(b, p, n)) != PR_OK || (rc = pr_buf_append(b, "\r\n", 2)) != PR_OK) return rc;
        return ts_write_buf(x, b);
    }
    return ts_write(x, p, n);
}

/* Wait until the deadline, or the peer closes / sends. Returns PR_OK at the
   deadline, PR_ECLOSED when the peer went away, or an error. */
static int ts_wait_peer(ts_conn *x, int64_t deadline) {
    char tmp[512];
    for (;;) {
        ptrdiff_t n = pr_conn_read(x->c, tmp, sizeof tmp, pr_deadline_min(deadline, x->s->end));
        if (n == PR_ETIMEDOUT) return pr_now() >= x->s->end ? PR_ETIMEDOUT : PR_OK;
        if (n < 0) return (int)n;
        /* bytes from the client while we stream: keep them, they are a next request */
        if (pr_buf_append(&x->in, tmp, (size_t)n) != PR_OK) return PR_ENOMEM;
    }
}

/* /sse?events=N&id=1&retry=MS&comment=1&type=T&lines=L&interval_ms=I
        &heartbeat_ms=X&hold_ms=H&drop_after=K&drop_partial=1&framing=close&status=S&flood=F
   Returns TS_ABORT for drops; sets *must_close for close framing. */
static int ts_ep_sse(ts_conn *x, ts_req *r, pr_buf *b, int *must_close) {
    int64_t events = ts_qint(r, "events", 3), with_id = ts_qint(r, "id", 0), retry = ts_qint(r, "retry", -1);
    int64_t comment = ts_qint(r, "comment", 0), lines = ts_qint(r, "lines", 1);
    int64_t interval = ts_qint(r, "interval_ms", 0), hb = ts_qint(r, "heartbeat_ms", 0);
    int64_t hold = ts_qint(r, "hold_ms", 0), drop_after = ts_qint(r, "drop_after", -1);
    int64_t partial = ts_qint(r, "drop_partial", 0), status = ts_qint(r, "status", 200);
    int64_t batch = ts_qint(r, "batch", 1), pending = 0, flood = ts_qint(r, "flood", 0);
    int64_t first = 1, k, l;
    pr_slice type, framing, lei;
    int chunked = 1, rc;
    pr_buf ev;
    if (ts_qslice(r, "framing", &framing) && pr_slice_eq(framing, pr_slice_cstr("close"))) chunked = 0;
    if (ts_header(r, "Last-Event-ID", &lei)) {
        int64_t n;
        if (pr_parse_i64(lei, &n) == PR_OK && n >= 0) first = n + 1;
    }
    if (!chunked) {
        r->keep_alive = 0;
        *must_close = 1;
    }
    if ((rc = ts_head(b, x, r, (int)status)) != PR_OK) return rc;
    if (status == 204) {
        rc = pr_buf_append_str(b, "\r\n");
        return rc == PR_OK ? ts_write_buf(x, b) : rc;
    }
    if ((rc = pr_buf_append_str(b, "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n")) != PR_OK ||
        (rc = pr_buf_append_str(b, chunked ? "Transfer-Encoding: chunked\r\n\r\n" : "\r\n")) != PR_OK ||
        (rc = ts_write_buf(x, b)) != PR_OK)
        return rc;
    pr_buf_init(&ev);
    if (comment) rc = pr_buf_append_str(&ev, ": pristine test stream\n\n");
    if (rc == PR_OK && retry >= 0) rc = pr_buf_printf(&ev, "retry: %lld\n\n", (long long)retry);
    if (rc == PR_OK && ev.len) rc = ts_sse_put(x, b, chunked, ev.data, ev.len);
    for (k = 0; rc == PR_OK && k < events; k++) {
        int64_t n = first + k;
        if (drop_after >= 0 && k == drop_after) {
            if (pending) rc = ts_sse_put(x, b, chunked, ev.data, ev.len);
            if (rc == PR_OK && partial) { /* half an event, then the drop */
                pr_buf_clear(&ev);
                if ((rc = pr_buf_printf(&ev, "id: %lld\ndata: partial", (long long)n)) == PR_OK)
                    rc = ts_sse_put(x, b, chunked, ev.data, ev.len);
            }
            pr_buf_deinit(&ev);
            return rc == PR_OK ? TS_ABORT : rc;
        }
        if (interval > 0 && k > 0 && (rc = ts_wait_peer(x, pr_deadline_in(interval))) != PR_OK) break;
        if (!pending) pr_buf_clear(&ev);
        for (l = 0; rc == PR_OK && l < flood; l++) /* a comment flood before the event */
            rc = pr_buf_append_str(&ev, ": flood of comments, ignored by the reader\n");
        if (rc == PR_OK && ts_qslice(r, "type", &type) && type.len)
            rc = pr_buf_printf(&ev, "event: %.*s\n", (int)type.len, type.ptr);
        if (rc == PR_OK && with_id) rc = ts_line_num(&ev, "id: ", n);
        for (l = 0; rc == PR_OK && l < (lines < 1 ? 1 : lines); l++)
            rc = l == 0 ? ts_line_num(&ev, "data: event ", n) : ts_line_num(&ev, "data: line ", l);
        if (rc == PR_OK) rc = pr_buf_append(&ev, "\n", 1);
        if (rc == PR_OK && (++pending >= batch || interval > 0 || k + 1 == events)) {
            rc = ts_sse_put(x, b, chunked, ev.data, ev.len);
            pending = 0;
        }
    }
    pr_buf_deinit(&ev);
    if (rc == PR_OK && drop_after >= 0 && drop_after >= events) return TS_ABORT;
    /* keep the stream open for hold_ms, with heartbeat comments */
    if (rc == PR_OK && (hold > 0 || hb > 0)) {
        int64_t until = hold > 0 ? pr_deadline_in(hold) : x->s->end;
        while (rc == PR_OK && pr_now() < until) {
            int64_t next = hb > 0 ? pr_deadline_min(until, pr_deadline_in(hb)) : until;
            if ((rc = ts_wait_peer(x, next)) != PR_OK) break;
            if (hb > 0 && pr_now() < until) rc = ts_sse_put(x, b, chunked, ":\n\n", 3);
        }
    }
    if (rc == PR_OK && chunked) {
        rc = pr_buf_append_str(b, "0\r\n\r\n");
        if (rc == PR_OK) rc = ts_write_buf(x, b);
    }
    return rc;
}

/* /slow?len=N&delay_ms=D: one byte per delay. */
static int ts_ep_slow(ts_conn *x, ts_req *r, pr_buf *b) {
    int64_t len = ts_qint(r, "len", 10), delay = ts_qint(r, "delay_ms", 50), i;
    int rc;
    if (len < 0) len = 0;
    if ((rc = ts_head(b, x, r, 200)) != PR_OK) return rc;
    if ((rc = pr_buf_printf(b, "Content-Type: text/plain\r\nContent-Length: %lld\r\n\r\n", (long long)len)) != PR_OK ||
        (rc = ts_write_buf(x, b)) != PR_OK)
        return rc;
    for (i = 0; i < len; i++) {
        char ch = ts_body_byte((uint64_t)i);
        if (delay > 0 && (rc = pr_sleep(pr_deadline_in(delay))) != PR_OK) return rc;
        if ((rc = ts_write(x, &ch, 1)) != PR_OK) return rc;
    }
    return PR_OK;
}

/* /stall?after=N&len=M&in_head=1: N body bytes of a declared M, then
   silence until the client closes or the server stops. */
static int ts_ep_stall(ts_conn *x, ts_req *r, pr_buf *b) {
    int64_t after = ts_qint(r, "after", 0), len = ts_qint(r, "len", -1);
    int rc;
    if (after < 0) after = 0;
    if (len < after + 1) len = after * 2 + 10;
    if (ts_qint(r, "in_head", 0)) {
        rc = pr_buf_append_str(b, "HTTP/1.1 200 OK\r\nContent-Le");
    } else {
        if ((rc = ts_head(b, x, r, 200)) != PR_OK) return rc;
        rc = pr_buf_printf(b, "Content-Type: text/plain\r\nContent-Length: %lld\r\n\r\n", (long long)len);
    }
    if (rc != PR_OK || (rc = ts_write_buf(x, b)) != PR_OK) return rc;
    if (!ts_qint(r, "in_head", 0) && (rc = ts_write_pattern(x, 0, (uint64_t)after)) != PR_OK) return rc;
    rc = ts_wait_peer(x, PR_FOREVER);
    return rc == PR_OK ? PR_ECLOSED : rc;
}

/* /drop?after=N&len=M&chunked=1: close after N body bytes of a longer body. */
static int ts_ep_drop(ts_conn *x, ts_req *r, pr_buf *b) {
    int64_t after = ts_qint(r, "after", 0), len = ts_qint(r, "len", -1);
    int rc;
    if (after < 0) after = 0;
    if (len <= after) len = after * 2 + 10;
    if ((rc = ts_head(b, x, r, 200)) != PR_OK) return rc;
    if (ts_qint(r, "chunked", 0)) {
        if ((rc = pr_buf_append_str(b, "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")) != PR_OK ||
            (rc = ts_write_buf(x, b)) != PR_OK)
            return rc;
        if (after > 0) rc = ts_chunk(x, b, 0, (size_t)after);
        return rc == PR_OK ? TS_ABORT : rc;
    }
    if ((rc = pr_buf_printf(b, "Content-Type: text/plain\r\nContent-Length: %lld\r\n\r\n", (long long)len)) != PR_OK ||
        (rc = ts_write_buf(x, b)) != PR_OK || (rc = ts_write_pattern(x, 0, (uint64_t)after)) != PR_OK)
        return rc;
    return TS_ABORT;
}

/* /garbage?kind=status|header|cl|chunk|version */
static int ts_ep_garbage(ts_conn *x, ts_req *r, pr_buf *b) {
    pr_slice kind;
    const char *out = "HTXP/1.1 2OO okay?\r\n\r\n";
    int rc;
    if (ts_qslice(r, "kind", &kind)) {
        if (pr_slice_eq(kind, pr_slice_cstr("header")))
            out = "HTTP/1.1 200 OK\r\nBad Header : x\r\nContent-Length: 0\r\n\r\n";
        else if (pr_slice_eq(kind, pr_slice_cstr("cl")))
            out = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef";
        else if (pr_slice_eq(kind, pr_slice_cstr("chunk")))
            out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n";
        else if (pr_slice_eq(kind, pr_slice_cstr("version")))
            out = "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        else if (pr_slice_eq(kind, pr_slice_cstr("binary")))
            out = "\x16\x03\x01\x02\x00garbage\r\n\r\n";
    }
    if ((rc = pr_buf_append_str(b, out)) != PR_OK || (rc = ts_write_buf(x, b)) != PR_OK) return rc;
    return TS_CLOSE;
}

/* /redirect?n=K&code=C&len=L&abs=1: K hops, the last one to /fixed?len=L. */
static int ts_ep_redirect(ts_conn *x, ts_req *r, pr_buf *b) {
    int64_t n = ts_qint(r, "n", 1), code = ts_qint(r, "code", 302), len = ts_qint(r, "len", 26);
    int abs = (int)ts_qint(r, "abs", 0), rc;
    pr_slice host;
    if (n <= 0) {
        if ((rc = ts_head(b, x, r, 200)) != PR_OK) return rc;
        return ts_send_fixed(x, r, b, (uint64_t)(len < 0 ? 0 : len));
    }
    if ((rc = ts_head(b, x, r, (int)code)) != PR_OK) return rc;
    rc = pr_buf_append_str(b, "Location: ");
    if (rc == PR_OK && abs && ts_header(r, "Host", &host))
        rc = pr_buf_printf(b, "%s://%.*s", x->s->tls ? "https" : "http", (int)host.len, host.ptr);
    if (rc == PR_OK) {
        if (n > 1)
            rc = pr_buf_printf(b, "/redirect?n=%lld&code=%lld&len=%lld&abs=%d\r\n", (long long)(n - 1),
                               (long long)code, (long long)len, abs);
        else
            rc = pr_buf_printf(b, "/fixed?len=%lld\r\n", (long long)len);
    }
    if (rc == PR_OK) rc = pr_buf_append_str(b, "Content-Length: 0\r\n\r\n");
    return rc == PR_OK ? ts_write_buf(x, b) : rc;
}

/* /retry-after?seconds=S&status=C */
static int ts_ep_retry_after(ts_conn *x, ts_req *r, pr_buf *b) {
    int64_t secs = ts_qint(r, "seconds", 1), code = ts_qint(r, "status", 503);
    const char *msg = "retry later\n";
    int rc;
    if ((rc = ts_head(b, x, r, (int)code)) != PR_OK) return rc;
    rc = pr_buf_printf(b, "Retry-After: %lld\r\nContent-Type: text/plain\r\nContent-Length: %u\r\n\r\n%s",
                       (long long)secs, (unsigned)strlen(msg), msg);
    return rc == PR_OK ? ts_write_buf(x, b) : rc;
}

/* /echo: the request head as received, then the decoded body. */
static int ts_ep_echo(ts_conn *x, ts_req *r, pr_buf *b) {
    int rc;
    if ((rc = ts_head(b, x, r, 200)) != PR_OK) return rc;
    rc = pr_buf_printf(b, "Content-Type: text/plain\r\nX-Echo-Head-Length: %lu\r\nX-Echo-Body-Length: %lu\r\n"
                          "Content-Length: %lu\r\n\r\n", (unsigned long)r->head.len, (unsigned long)r->body.len,
                       (unsigned long)(r->head.len + r->body.len));
    if (rc == PR_OK) rc = ts_write_buf(x, b);
    if (rc == PR_OK) rc = ts_write(x, r->head.data, r->head.len);
    if (rc == PR_OK) rc = ts_write(x, r->body.data, r->body.len);
    return rc;
}

static int ts_simple(ts_conn *x, ts_req *r, pr_buf *b, int code, const char *msg) {
    int rc = ts_head(b, x, r, code);
    if (rc == PR_OK)
        rc = pr_buf_printf(b, "Content-Type: text/plain\r\nContent-Length: %u\r\n\r\n%s", (unsigned)strlen(msg), msg);
    return rc == PR_OK ? ts_write_buf(x, b) : rc;
}

/* ---- scripted routes, /seq and the request log ---- */

typedef struct ts_route {
    struct ts_route *next;
    char *path;
    ts_step *steps;   /* the FIFO; strings owned */
    size_t n, cap, at;
    int left;         /* requests the step at `at` still answers */
    int has_def;
    ts_step def;      /* when the FIFO is empty */
} ts_route;

/* A counter by name (/seq, the remote-future routes): a chained hash table. */
typedef struct ts_count_e {
    struct ts_count_e *next;
    long n;
    size_t len;       /* the key's bytes follow */
} ts_count_e;

#define TS_COUNT_BUCKETS 4096

static long *ts_counter(ts_server *s, const char *key, size_t len) {
    uint32_t h = 2166136261u;
    size_t i;
    ts_count_e *e;
    if (!s->counts && !(s->counts = (struct ts_count_e **)calloc(TS_COUNT_BUCKETS, sizeof *s->counts))) return NULL;
    for (i = 0; i < len; i++) h = (h ^ (unsigned char)key[i]) * 16777619u;
    for (e = s->counts[h % TS_COUNT_BUCKETS]; e; e = e->next)
        if (e->len == len && !memcmp(e + 1, key, len)) return &e->n;
    if (!(e = (ts_count_e *)calloc(1, sizeof *e + len))) return NULL;
    e->len = len;
    memcpy(e + 1, key, len);
    e->next = s->counts[h % TS_COUNT_BUCKETS];
    s->counts[h % TS_COUNT_BUCKETS] = e;
    return &e->n;
}

static char *ts_strdup(const char *p) {
    size_t n;
    char *d;
    if (!p) return NULL;
    n = strlen(p) + 1;
    if ((d = (char *)malloc(n)) != NULL) memcpy(d, p, n);
    return d;
}

static void ts_step_free(ts_step *st) {
    free((char *)(uintptr_t)st->headers);
    free((char *)(uintptr_t)st->body);
}

static int ts_step_copy(ts_step *dst, const ts_step *src) {
    *dst = *src;
    dst->headers = ts_strdup(src->headers);
    dst->body = ts_strdup(src->body);
    if ((src->headers && !dst->headers) || (src->body && !dst->body)) {
        ts_step_free(dst);
        return PR_ENOMEM;
    }
    return PR_OK;
}

static ts_route *ts_route_get(ts_server *s, const char *path, int create) {
    ts_route *rt;
    for (rt = s->routes; rt; rt = rt->next)
        if (strcmp(rt->path, path) == 0) return rt;
    if (!create || !(rt = (ts_route *)calloc(1, sizeof *rt))) return NULL;
    if (!(rt->path = ts_strdup(path))) {
        free(rt);
        return NULL;
    }
    rt->next = s->routes;
    s->routes = rt;
    return rt;
}

/* Append n steps to the script of path (an exact path, no query). Scripted
   routes take precedence over the built-in endpoints. Call from the
   server's thread. Returns PR_OK, PR_EINVAL or PR_ENOMEM. */
static TS_UNUSED int ts_script(ts_server *s, const char *path, const ts_step *steps, size_t n) {
    ts_route *rt;
    size_t i;
    if (!s || !path || (n && !steps)) return PR_EINVAL;
    if (!(rt = ts_route_get(s, path, 1))) return PR_ENOMEM;
    if (rt->n + n > rt->cap) {
        size_t cap = (rt->n + n) * 2;
        ts_step *ns = (ts_step *)realloc(rt->steps, cap * sizeof *ns);
        if (!ns) return PR_ENOMEM;
        rt->steps = ns;
        rt->cap = cap;
    }
    for (i = 0; i < n; i++) {
        if (ts_step_copy(&rt->steps[rt->n], &steps[i]) != PR_OK) return PR_ENOMEM;
        rt->n++;
    }
    return PR_OK;
}

/* The response of path once its script is used up (default: 200, "ok\n"). */
static TS_UNUSED int ts_script_default(ts_server *s, const char *path, const ts_step *step) {
    ts_route *rt;
    if (!s || !path || !step) return PR_EINVAL;
    if (!(rt = ts_route_get(s, path, 1))) return PR_ENOMEM;
    if (rt->has_def) ts_step_free(&rt->def);
    rt->has_def = 0;
    if (ts_step_copy(&rt->def, step) != PR_OK) return PR_ENOMEM;
    rt->has_def = 1;
    return PR_OK;
}

/* Forget every script, /seq counter and logged request. */
static TS_UNUSED void ts_script_clear(ts_server *s) {
    size_t i;
    while (s->routes) {
        ts_route *rt = s->routes;
        s->routes = rt->next;
        for (i = 0; i < rt->n; i++) ts_step_free(&rt->steps[i]);
        if (rt->has_def) ts_step_free(&rt->def);
        free(rt->steps);
        free(rt->path);
        free(rt);
    }
    if (s->counts) {
        for (i = 0; i < TS_COUNT_BUCKETS; i++)
            while (s->counts[i]) {
                ts_count_e *e = s->counts[i];
                s->counts[i] = e->next;
                free(e);
            }
        free(s->counts);
        s->counts = NULL;
    }
    for (i = 0; i < s->nlog; i++) {
        free(s->log[i].head);
        free(s->log[i].body);
    }
    free(s->log);
    s->log = NULL;
    s->nlog = s->log_cap = 0;
}

/* The request log: every request the server parsed, oldest first. */
static TS_UNUSED size_t ts_log_count(const ts_server *s) { return s ? s->nlog : 0; }

static TS_UNUSED const ts_logged *ts_log_get(const ts_server *s, size_t i) {
    return s && i < s->nlog ? &s->log[i] : NULL;
}

/* A header of a logged request (first match, trimmed): 1 and *out, or 0. */
static TS_UNUSED int ts_log_header(const ts_logged *e, const char *name, pr_slice *out) {
    return e ? ts_head_field(e->head, e->head_len, name, out) : 0;
}

static void ts_log_add(ts_conn *x, const ts_req *r) {
    ts_server *s = x->s;
    ts_logged *e;
    if (s->nlog == s->log_cap) {
        size_t cap = s->log_cap ? s->log_cap * 2 : 64;
        ts_logged *nl = cap > 1000000 ? NULL : (ts_logged *)realloc(s->log, cap * sizeof *nl);
        if (!nl) return; /* the log is best effort */
        s->log = nl;
        s->log_cap = cap;
    }
    e = &s->log[s->nlog];
    memset(e, 0, sizeof *e);
    e->head = (char *)malloc(r->head.len + 1);
    e->body = (char *)malloc(r->body.len + 1);
    if (!e->head || !e->body) {
        free(e->head);
        free(e->body);
        return;
    }
    memcpy(e->head, r->head.data, r->head.len);
    e->head[r->head.len] = 0;
    if (r->body.len) memcpy(e->body, r->body.data, r->body.len);
    e->body[r->body.len] = 0;
    e->head_len = r->head.len;
    e->body_len = r->body.len;
    e->at_ms = r->at;
    e->conn_id = x->id;
    e->conn_request = x->nreq;
    e->method = (pr_slice){e->head + (r->method.ptr - r->head.data), r->method.len};
    e->target = (pr_slice){e->head + (r->target.ptr - r->head.data), r->target.len};
    e->path = (pr_slice){e->head + (r->path.ptr - r->head.data), r->path.len};
    s->nlog++;
}

/* SO_LINGER {1, 0}: closing the TCP socket sends a reset. */
static void ts_linger0(ts_conn *x) {
    struct linger lg;
    lg.l_onoff = 1;
    lg.l_linger = 0;
    setsockopt(((pr__net_sock *)(void *)x->raw)->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

/* Send one scripted step. */
static int ts_send_step(ts_conn *x, ts_req *r, pr_buf *b, const ts_step *st) {
    const char *body = st->body ? st->body : "";
    size_t blen = strlen(body);
    int code = st->status ? st->status : 200, rc;
    if (st->delay_head_ms > 0 && (rc = pr_sleep(pr_deadline_in(st->delay_head_ms))) != PR_OK) return rc;
    if (st->close_without_response) return TS_ABORT;
    if ((rc = ts_head(b, x, r, code)) != PR_OK) return rc;
    if (st->headers && (rc = pr_buf_append_str(b, st->headers)) != PR_OK) return rc;
    if ((rc = pr_buf_printf(b, "Content-Length: %lu\r\n\r\n", (unsigned long)blen)) != PR_OK) return rc;
    if (st->close_mid == 1) { /* a connection cut in the head */
        rc = ts_write(x, b->data, b->len / 2);
        pr_buf_clear(b);
        return rc == PR_OK ? TS_ABORT : rc;
    }
    if (st->close_mid == 2) { /* ... or in the body */
        if ((rc = pr_buf_append(b, body, blen / 2)) != PR_OK || (rc = ts_write_buf(x, b)) != PR_OK) return rc;
        return TS_ABORT;
    }
    if (st->reset_mid_head) {
        rc = ts_write(x, b->data, b->len / 2);
        pr_buf_clear(b);
        ts_linger0(x);
        return rc == PR_OK ? TS_ABORT : rc;
    }
    if (ts_is_head(r)) return ts_write_buf(x, b);
    if (st->stall_body) {
        if ((rc = pr_buf_append(b, body, blen / 2)) != PR_OK || (rc = ts_write_buf(x, b)) != PR_OK) return rc;
        rc = ts_wait_peer(x, PR_FOREVER);
        return rc == PR_OK ? PR_ECLOSED : rc;
    }
    if ((rc = pr_buf_append(b, body, blen)) != PR_OK) return rc;
    return ts_write_buf(x, b);
}

/* The next step of a scripted route (the default once the FIFO is empty). */
static int ts_ep_scripted(ts_conn *x, ts_req *r, pr_buf *b, ts_route *rt) {
    static const ts_step ok = { 200, NULL, "ok\n", 0, 0, 0, 0, 0, 0 };
    ts_step st;
    if (rt->at < rt->n) {
        if (rt->left == 0) rt->left = rt->steps[rt->at].count > 0 ? rt->steps[rt->at].count : 1;
        st = rt->steps[rt->at]; /* a copy: later ts_script calls may move the array */
        if (--rt->left == 0) rt->at++;
    } else {
        st = rt->has_def ? rt->def : ok;
    }
    return ts_send_step(x, r, b, &st);
}

/* The code a /seq-style request answers: the n-th request for key K
   (from 0) answers the n-th code of codes=C1,C2,... (the last code
   repeats, or the list starts over with cycle=1); 200 without codes.
   *nth receives n (before the cycle). */
static int ts_seq_code(ts_conn *x, ts_req *r, int *code, long *nth) {
    pr_slice key, codes;
    long n, k = 0, count = 0, *q;
    size_t i, start = 0;
    ts_qslice(r, "key", &key);
    if (!(q = ts_counter(x->s, key.ptr, key.len))) return PR_ENOMEM;
    *nth = n = (*q)++;
    *code = 200;
    if (ts_qslice(r, "codes", &codes) && codes.len) {
        for (i = 0; i <= codes.len; i++) /* count the codes */
            if (i == codes.len || codes.ptr[i] == ',') count++;
        if (ts_qint(r, "cycle", 0)) n %= count;
        else if (n >= count) n = count - 1;
        for (i = 0; i <= codes.len; i++) {
            if (i < codes.len && codes.ptr[i] != ',') continue;
            if (k++ == n) {
                int64_t c;
                if (pr_parse_i64((pr_slice){codes.ptr + start, i - start}, &c) == PR_OK && c >= 100 && c <= 999)
                    *code = (int)c;
                break;
            }
            start = i + 1;
        }
    }
    return PR_OK;
}

/* The retry hints of a non-2xx /seq-style answer, from the query. */
static int ts_seq_hints(ts_req *r, pr_buf *b) {
    pr_slice v;
    int rc = PR_OK;
    if (ts_qslice(r, "retry_after_ms", &v) && v.len) rc = pr_buf_printf(b, "retry-after-ms: %.*s\r\n", (int)v.len, v.ptr);
    if (rc == PR_OK && ts_qslice(r, "retry_after", &v) && v.len)
        rc = pr_buf_printf(b, "Retry-After: %.*s\r\n", (int)v.len, v.ptr);
    return rc;
}

/* /seq?key=K&codes=C1,C2,...&retry_after_ms=M&retry_after=S&cycle=1: the
   code of ts_seq_code; non-2xx answers carry the retry headers given.
   Body: "seq N status C\n". */
static int ts_ep_seq(ts_conn *x, ts_req *r, pr_buf *b) {
    long n;
    int code, rc;
    char body[64];
    if ((rc = ts_seq_code(x, r, &code, &n)) != PR_OK) return rc;
    if ((rc = ts_head(b, x, r, code)) != PR_OK) return rc;
    if (code / 100 != 2 && (rc = ts_seq_hints(r, b)) != PR_OK) return rc;
    snprintf(body, sizeof body, "seq %ld status %d\n", n, code);
    rc = pr_buf_printf(b, "Content-Type: text/plain\r\nContent-Length: %u\r\n\r\n%s", (unsigned)strlen(body), body);
    return rc == PR_OK ? ts_write_buf(x, b) : rc;
}

/* A JSON answer. */
static int ts_json(ts_conn *x, ts_req *r, pr_buf *b, int code, const char *json) {
    int rc = ts_head(b, x, r, code);
    if (rc == PR_OK)
        rc = pr_buf_printf(b, "Content-Type: application/json\r\nContent-Length: %u\r\n\r\n%s", (unsigned)strlen(json),
                           json);
    return rc == PR_OK ? ts_write_buf(x, b) : rc;
}

/* The request_id of a JSON request body, into id (NUL-terminated); 0 if none. */
static int ts_body_request_id(const ts_req *r, char *id, size_t cap) {
    pr_json_doc *doc = NULL;
    const char *v;
    size_t n = 0;
    int ok = 0;
    if (pr_json_parse(&doc, r->body.data ? r->body.data : "", r->body.len, NULL, NULL) == PR_OK &&
        (v = pr_json_string(pr_json_get(pr_json_root(doc), "request_id"), &n)) != NULL && n < cap) {
        memcpy(id, v, n + 1);
        ok = 1;
    }
    pr_json_doc_destroy(doc);
    return ok;
}

/* POST /api/v1/retrieve_future: a request id scripted with ts_script(s,
   "/api/v1/retrieve_future#<id>", ...) answers its script; any other id
   answers try_again ({"type": "try_again", "request_id": .., "queue_state":
   "active"}, after future_hold_ms) until its future_polls-th poll, which
   answers {"request_id": .., "result": "done", "polls": N}. */
static int ts_ep_retrieve(ts_conn *x, ts_req *r, pr_buf *b) {
    char id[128], key[192], json[320];
    ts_route *rt;
    long *n;
    int rc;
    if (!ts_body_request_id(r, id, sizeof id)) return ts_json(x, r, b, 400, "{\"detail\":\"no request_id\"}");
    snprintf(key, sizeof key, "/api/v1/retrieve_future#%s", id);
    if ((rt = ts_route_get(x->s, key, 0)) != NULL) return ts_ep_scripted(x, r, b, rt);
    if (!(n = ts_counter(x->s, key, strlen(key)))) return PR_ENOMEM;
    if (++*n < x->s->future_polls) {
        if (x->s->future_hold_ms > 0 && (rc = pr_sleep(pr_deadline_in(x->s->future_hold_ms))) != PR_OK) return rc;
        snprintf(json, sizeof json, "{\"type\":\"try_again\",\"request_id\":\"%s\",\"queue_state\":\"active\"}", id);
        return ts_json(x, r, b, 200, json);
    }
    snprintf(json, sizeof json, "{\"request_id\":\"%s\",\"result\":\"done\",\"polls\":%ld}", id, *n);
    return ts_json(x, r, b, 200, json);
}

/* The submit routes hand out request ids req-1, req-2, ... With
   key=K&codes=C1,C2,... (as /seq) a submit whose code is not 2xx is
   refused with that status and {"detail": ...} instead. */
static int ts_ep_submit(ts_conn *x, ts_req *r, pr_buf *b) {
    char json[96];
    pr_slice codes;
    if (ts_qslice(r, "codes", &codes) && codes.len) {
        long n;
        int code, rc = ts_seq_code(x, r, &code, &n);
        if (rc != PR_OK) return rc;
        if (code / 100 != 2) {
            snprintf(json, sizeof json, "{\"detail\":\"refused with status %d\"}", code);
            if ((rc = ts_head(b, x, r, code)) != PR_OK || (rc = ts_seq_hints(r, b)) != PR_OK) return rc;
            rc = pr_buf_printf(b, "Content-Type: application/json\r\nContent-Length: %u\r\n\r\n%s",
                               (unsigned)strlen(json), json);
            return rc == PR_OK ? ts_write_buf(x, b) : rc;
        }
    }
    snprintf(json, sizeof json, "{\"request_id\":\"req-%ld\",\"model_id\":\"m-1\"}", ++x->s->submits);
    return ts_json(x, r, b, 200, json);
}

/* One chat-completion chunk event: data: {"id":..,"object":..,"model":..,
   "choices":[{"index":0,"delta":{..},"finish_reason":..}]}. role and
   content may be NULL (left out); finish NULL = null. */
static int ts_llm_chunk(ts_conn *x, pr_buf *b, pr_buf *ev, const char *model, size_t model_len, const char *role,
                        const char *content, size_t content_len, const char *finish) {
    pr_json_writer w;
    int rc;
    pr_buf_clear(ev);
    pr_buf_append_str(ev, "data: ");
    pr_json_writer_init(&w, ev);
    pr_json_begin_object(&w);
    pr_json_key(&w, "id", 2);
    pr_json_write_string(&w, "chatcmpl-1", 10);
    pr_json_key(&w, "object", 6);
    pr_json_write_string(&w, "chat.completion.chunk", 21);
    pr_json_key(&w, "model", 5);
    pr_json_write_string(&w, model, model_len);
    pr_json_key(&w, "choices", 7);
    pr_json_begin_array(&w);
    pr_json_begin_object(&w);
    pr_json_key(&w, "index", 5);
    pr_json_write_int(&w, 0);
    pr_json_key(&w, "delta", 5);
    pr_json_begin_object(&w);
    if (role) {
        pr_json_key(&w, "role", 4);
        pr_json_write_string(&w, role, strlen(role));
    }
    if (content) {
        pr_json_key(&w, "content", 7);
        pr_json_write_string(&w, content, content_len);
    }
    pr_json_end_object(&w);
    pr_json_key(&w, "finish_reason", 13);
    if (finish) pr_json_write_string(&w, finish, strlen(finish));
    else pr_json_write_null(&w);
    pr_json_end_object(&w);
    pr_json_end_array(&w);
    pr_json_end_object(&w);
    if ((rc = pr_json_writer_finish(&w)) != PR_OK || (rc = pr_buf_append(ev, "\n\n", 2)) != PR_OK) return rc;
    return ts_sse_put(x, b, 1, ev->data, ev->len);
}

/* POST /v1/chat/completions?interval_ms=I (20): an OpenAI-shaped
   streaming chat completion. The body must be JSON with a "messages"
   array; the answer is "You said: " and the last message's content, one
   word per event (a role delta first, a finish_reason "stop" delta
   last), then data: [DONE]. A body that is not such JSON is 400 with
   {"error": {"message": ...}}. */
static int ts_ep_llm(ts_conn *x, ts_req *r, pr_buf *b) {
    pr_json_doc *doc = NULL;
    const pr_json *msgs, *model_v;
    const char *said, *model = "pristine-echo", *p, *end;
    size_t said_len = 0, model_len = 13, n;
    int64_t interval = ts_qint(r, "interval_ms", 20);
    pr_buf ev, words;
    int rc;
    if (pr_json_parse(&doc, r->body.data ? r->body.data : "", r->body.len, NULL, NULL) != PR_OK ||
        (msgs = pr_json_get(pr_json_root(doc), "messages")) == NULL || (n = pr_json_len(msgs)) == 0 ||
        (said = pr_json_string(pr_json_get(pr_json_at(msgs, n - 1), "content"), &said_len)) == NULL) {
        pr_json_doc_destroy(doc);
        r->keep_alive = 0;
        return ts_json(x, r, b, 400, "{\"error\":{\"message\":\"the body needs messages with a content\"}}");
    }
    if ((model_v = pr_json_get(pr_json_root(doc), "model")) != NULL && pr_json_string(model_v, &n) != NULL)
        model = pr_json_string(model_v, &model_len);
    pr_buf_init(&ev);
    pr_buf_init(&words);
    rc = pr_buf_append_str(&words, "You said: ");
    if (rc == PR_OK) rc = pr_buf_append(&words, said, said_len);
    if (rc == PR_OK) rc = ts_head(b, x, r, 200);
    if (rc == PR_OK)
        rc = pr_buf_append_str(b, "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n");
    if (rc == PR_OK) rc = ts_write_buf(x, b);
    if (rc == PR_OK) rc = ts_llm_chunk(x, b, &ev, model, model_len, "assistant", "", 0, NULL);
    /* one event per word, the space before a word included */
    p = words.data;
    end = words.data + words.len;
    while (rc == PR_OK && p < end) {
        const char *q = p;
        while (q < end && *q == ' ') q++;
        while (q < end && *q != ' ') q++;
        if (interval > 0 && (rc = ts_wait_peer(x, pr_deadline_in(interval))) != PR_OK) break;
        rc = ts_llm_chunk(x, b, &ev, model, model_len, NULL, p, (size_t)(q - p), NULL);
        p = q;
    }
    if (rc == PR_OK) rc = ts_llm_chunk(x, b, &ev, model, model_len, NULL, NULL, 0, "stop");
    if (rc == PR_OK) rc = ts_sse_put(x, b, 1, "data: [DONE]\n\n", 14);
    if (rc == PR_OK) rc = pr_buf_append_str(b, "0\r\n\r\n");
    if (rc == PR_OK) rc = ts_write_buf(x, b);
    pr_buf_deinit(&ev);
    pr_buf_deinit(&words);
    pr_json_doc_destroy(doc);
    return rc;
}

/* Answer one request. Returns PR_OK (keep going), TS_CLOSE, TS_ABORT, or
   an error (close at once). */
static int ts_dispatch(ts_conn *x, ts_req *r, pr_buf *b) {
    pr_slice p = r->path;
    int64_t delay = ts_qint(r, "delay_head_ms", 0);
    int must_close = 0, rc;
    if (ts_qint(r, "close", 0)) r->keep_alive = 0;
    ts_route *rt;
    char path[512];
    if (delay > 0 && (rc = pr_sleep(pr_deadline_in(delay))) != PR_OK) return rc;
    rt = NULL;
    if (x->s->routes && p.len < sizeof path) {
        memcpy(path, p.ptr, p.len);
        path[p.len] = 0;
        rt = ts_route_get(x->s, path, 0);
    }
#define TS_IS(lit) pr_slice_eq(p, pr_slice_cstr(lit))
    if (rt) rc = ts_ep_scripted(x, r, b, rt);
    else if (TS_IS("/seq")) rc = ts_ep_seq(x, r, b);
    else if (TS_IS("/api/v1/retrieve_future")) rc = ts_ep_retrieve(x, r, b);
    else if (TS_IS("/api/v1/asample") || TS_IS("/api/v1/forward_backward") || TS_IS("/api/v1/optim_step") ||
             TS_IS("/api/v1/submit"))
        rc = ts_ep_submit(x, r, b);
    else if (TS_IS("/api/v1/telemetry")) rc = ts_json(x, r, b, 200, "{\"status\":\"accepted\"}");
    else if (TS_IS("/api/v1/session_heartbeat")) rc = ts_json(x, r, b, 200, "{}");
    else if (TS_IS("/fixed")) rc = ts_ep_fixed(x, r, b);
    else if (TS_IS("/chunked")) rc = ts_ep_chunked(x, r, b);
    else if (TS_IS("/sse")) rc = ts_ep_sse(x, r, b, &must_close);
    else if (TS_IS("/v1/chat/completions")) rc = ts_ep_llm(x, r, b);
    else if (TS_IS("/sse204")) {
        rc = ts_head(b, x, r, 204);
        if (rc == PR_OK) rc = pr_buf_append_str(b, "\r\n");
        if (rc == PR_OK) rc = ts_write_buf(x, b);
    } else if (TS_IS("/slow")) rc = ts_ep_slow(x, r, b);
    else if (TS_IS("/stall")) rc = ts_ep_stall(x, r, b);
    else if (TS_IS("/drop")) rc = ts_ep_drop(x, r, b);
    else if (TS_IS("/garbage")) rc = ts_ep_garbage(x, r, b);
    else if (TS_IS("/redirect")) rc = ts_ep_redirect(x, r, b);
    else if (TS_IS("/retry-after")) rc = ts_ep_retry_after(x, r, b);
    else if (TS_IS("/echo")) rc = ts_ep_echo(x, r, b);
    else if (TS_IS("/status")) rc = ts_ep_status(x, r, b);
    else if (TS_IS("/")) rc = ts_simple(x, r, b, 200, "pristine test server\n");
    else rc = ts_simple(x, r, b, 404, "not found\n");
#undef TS_IS
    if (rc == PR_OK && (must_close || !r->keep_alive)) rc = TS_CLOSE;
    return rc;
}

/* ---- connections and the accept loop ---- */

static void ts_conn_unlink(ts_conn *x) {
    if (x->prev) x->prev->next = x->next;
    else x->s->live = x->next;
    if (x->next) x->next->prev = x->prev;
    x->next = x->prev = NULL;
}

static void ts_conn_free(ts_conn *x) {
    ts_conn_unlink(x);
    pr_conn_destroy(x->c);
    pr_buf_deinit(&x->in);
    x->s->open--;
    free(x);
}

static int ts_conn_task(void *ud) {
    ts_conn *x = (ts_conn *)ud;
    ts_server *s = x->s;
    ts_req r;
    pr_buf out;
    int rc = PR_OK;
    memset(&r, 0, sizeof r);
    pr_buf_init(&r.head);
    pr_buf_init(&r.body);
    pr_buf_init(&out);
    x->raw = x->c;
    if (s->tls) {
        pr_conn *t = NULL;
        pr_conn *inner = x->c;
        x->c = NULL; /* owned by pr_tls_server from here, even on failure */
        rc = pr_tls_server(&t, inner, s->tls, NULL, pr_deadline_min(s->end, pr_deadline_in(10000)));
        x->c = t;
    }
    while (rc == PR_OK) {
        rc = ts_read_request(x, &r);
        if (rc == PR_EPROTO || rc == PR_ELIMIT) {
            r.keep_alive = 0;
            if (r.head.len == 0) pr_buf_append_str(&r.head, "\r\n");
            if (ts_simple(x, &r, &out, rc == PR_EPROTO ? 400 : 413, "bad request\n") == PR_OK) rc = TS_CLOSE;
            break;
        }
        if (rc != PR_OK) break;
        ts_log_add(x, &r);
        rc = ts_dispatch(x, &r, &out);
    }
    if (rc == TS_CLOSE) pr_conn_shutdown(x->c, pr_deadline_min(s->end, pr_deadline_in(1000)));
    pr_buf_deinit(&r.head);
    pr_buf_deinit(&r.body);
    pr_buf_deinit(&out);
    ts_conn_free(x);
    return 0;
}

static int ts_accept_task(void *ud) {
    ts_server *s = (ts_server *)ud;
    for (;;) {
        pr_conn *c = NULL;
        ts_conn *x;
        int rc = pr_tcp_accept(s->l, &c, s->end);
        if (rc == PR_EIO || rc == PR_ENOMEM) { /* e.g. EMFILE: back off a little */
            if (pr_sleep(pr_deadline_min(s->end, pr_deadline_in(10))) != PR_OK || pr_now() >= s->end) break;
            continue;
        }
        if (rc != PR_OK) break; /* lifetime over, cancelled, closed */
        if (!(x = (ts_conn *)calloc(1, sizeof *x))) {
            pr_conn_destroy(c);
            continue;
        }
        x->s = s;
        x->c = c;
        x->id = ++s->accepted;
        pr_buf_init(&x->in);
        x->next = s->live;
        if (s->live) s->live->prev = x;
        s->live = x;
        s->open++;
        if (pr_group_go(s->conns, ts_conn_task, x, NULL) != PR_OK) ts_conn_free(x);
    }
    /* stop: no new connections, then cancel and reap the open ones */
    pr_listener_destroy(s->l);
    s->l = NULL;
    while (pr_group_close(s->conns, PR_FOREVER) != PR_OK) {}
    s->conns = NULL;
    while (s->live) ts_conn_free(s->live); /* tasks that never ran */
    s->stopped = 1;
    return 0;
}

static char *ts_read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (p = (char *)malloc((size_t)n + 1)) != NULL) {
        if (fread(p, 1, (size_t)n, f) != (size_t)n) {
            free(p);
            p = NULL;
        } else {
            p[n] = 0;
        }
    }
    fclose(f);
    return p;
}

/* Stop the server: close the listener, cancel and reap every task, free
   everything. NULL is a no-op. Call from a task of the thread that started it. */
static TS_UNUSED void ts_stop(ts_server *s) {
    if (!s) return;
    if (s->top) while (pr_group_close(s->top, PR_FOREVER) != PR_OK) {}
    /* if the accept task never ran, its cleanup is ours */
    if (s->conns) while (pr_group_close(s->conns, PR_FOREVER) != PR_OK) {}
    while (s->live) ts_conn_free(s->live);
    pr_listener_destroy(s->l);
    pr_tls_server_cfg_destroy(s->tls);
    ts_script_clear(s);
    free(s);
}

/* Start a server listening on opts->host:opts->port (127.0.0.1, ephemeral
   by default). Its tasks run on the calling thread's scheduler. Returns
   PR_OK or the failing call's code. */
static TS_UNUSED int ts_start(ts_server **out, const ts_opts *opts) {
    ts_opts o;
    ts_server *s;
    int rc;
    if (!out) return PR_EINVAL;
    *out = NULL;
    memset(&o, 0, sizeof o);
    if (opts) o = *opts;
    if (!(s = (ts_server *)calloc(1, sizeof *s))) return PR_ENOMEM;
    s->end = pr_deadline_in(o.max_lifetime_ms > 0 ? o.max_lifetime_ms : 60000);
    s->idle_ms = o.idle_timeout_ms > 0 ? o.idle_timeout_ms : 10000;
    s->future_polls = o.future_polls > 0 ? o.future_polls : 3;
    s->future_hold_ms = o.future_hold_ms;
    if (o.tls_cert_pem || o.tls_cert_file) {
        char *cf = NULL, *kf = NULL;
        const char *c = o.tls_cert_pem, *k = o.tls_key_pem;
        if (!c) c = cf = ts_read_file(o.tls_cert_file);
        if (!k && o.tls_key_file) k = kf = ts_read_file(o.tls_key_file);
        rc = c && k ? pr_tls_server_cfg_create(&s->tls, c, 0, k, 0, NULL) : PR_EIO;
        free(cf);
        free(kf);
        if (rc == PR_OK && (o.tls_client_ca_pem || o.tls_client_ca_file)) {
            const char *ca = o.tls_client_ca_pem;
            char *caf = NULL;
            if (!ca) ca = caf = ts_read_file(o.tls_client_ca_file);
            rc = ca ? pr_tls_server_cfg_require_client_cert(s->tls, ca, 0, NULL) : PR_EIO;
            free(caf);
        }
        if (rc != PR_OK) goto fail;
    }
    if ((rc = pr_tcp_listen(&s->l, o.host ? o.host : "127.0.0.1", o.port, o.backlog > 0 ? o.backlog : 64, NULL)) != PR_OK) goto fail;
    if ((rc = pr_group_create(&s->top)) != PR_OK) goto fail;
    if ((rc = pr_group_create(&s->conns)) != PR_OK) goto fail;
    if ((rc = pr_group_go(s->top, ts_accept_task, s, NULL)) != PR_OK) goto fail;
    *out = s;
    return PR_OK;
fail:
    ts_stop(s);
    return rc;
}

/* The port the server listens on (0 for NULL). */
static TS_UNUSED uint16_t ts_port(const ts_server *s) {
    return s && s->l ? pr_listener_port(s->l) : 0;
}

/* Wait until the server stopped itself (lifetime) or the deadline. */
static TS_UNUSED int ts_wait(ts_server *s, int64_t deadline) {
    if (!s) return PR_EINVAL;
    return pr_group_wait(s->top, deadline);
}

/* Counters, for tests. */
static TS_UNUSED long ts_accepted(const ts_server *s) { return s ? s->accepted : 0; }
static TS_UNUSED long ts_requests(const ts_server *s) { return s ? s->requests : 0; }
static TS_UNUSED long ts_open_conns(const ts_server *s) { return s ? s->open : 0; }
static TS_UNUSED int ts_stopped(const ts_server *s) { return s ? s->stopped : 1; }

#endif /* TS_TESTSERVER_C */

#ifdef PR_TESTSERVER_MAIN
static int ts_usage(void) {
    fprintf(stderr, "usage: testserver [--port P] [--host H] [--lifetime MS] [--idle MS] [--backlog N]\n"
                    "                  [--future-polls N] [--future-hold MS] [--tls CERT KEY]\n"
                    "                  [--tls-client-ca FILE]\n");
    return 2;
}

int main(int argc, char **argv) {
    ts_opts o;
    ts_server *s = NULL;
    int i, rc;
    memset(&o, 0, sizeof o);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) o.port = (uint16_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) o.host = argv[++i];
        else if (strcmp(argv[i], "--lifetime") == 0 && i + 1 < argc) o.max_lifetime_ms = atoi(argv[++i]);
        else if (strcmp(argv[i], "--idle") == 0 && i + 1 < argc) o.idle_timeout_ms = atoi(argv[++i]);
        else if (strcmp(argv[i], "--backlog") == 0 && i + 1 < argc) o.backlog = atoi(argv[++i]);
        else if (strcmp(argv[i], "--future-polls") == 0 && i + 1 < argc) o.future_polls = atoi(argv[++i]);
        else if (strcmp(argv[i], "--future-hold") == 0 && i + 1 < argc) o.future_hold_ms = atoi(argv[++i]);
        else if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
            o.tls_cert_file = argv[++i];
            o.tls_key_file = argv[++i];
        } else if (strcmp(argv[i], "--tls-client-ca") == 0 && i + 1 < argc) {
            o.tls_client_ca_file = argv[++i];
        } else return ts_usage();
    }
    if (o.tls_client_ca_file && !o.tls_cert_file) return ts_usage();
    if ((rc = ts_start(&s, &o)) != PR_OK) {
        fprintf(stderr, "testserver: %s\n", pr_strerror(rc));
        return 1;
    }
    printf("%u\n", (unsigned)ts_port(s));
    fflush(stdout);
    ts_wait(s, PR_FOREVER);
    ts_stop(s);
    pr_sched_destroy();
    return 0;
}
#endif
