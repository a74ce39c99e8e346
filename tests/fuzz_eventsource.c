/* fuzz_eventsource.c - libFuzzer target for the reconnecting SSE stream's
   state machine (pr_sse_open / pr_sse_next), fed a scripted sequence of
   connection outcomes; no socket and no real time.
   clang -std=c11 -g -O1 -DPRISTINE_NO_TLS -DPRISTINE_TESTING -fsanitize=fuzzer,address,undefined \
       -fno-sanitize-recover=all tests/fuzz_eventsource.c -o build/fuzz/eventsource -lpthread

   The stream's own client connects through pr__net_test_connect (net's
   PRISTINE_TESTING seam): every connection takes the script's next step.
   The clock is the virtual one (pr__time_test_clock_*); the stream's waits
   go through its sleep hook, which moves that clock; its random numbers
   and wall clock are hooks too. Everything else is the real code: the
   client (redirects, idle timeouts, framing), the decoder, the stream.

   Input: byte 0 options (bit 0 an initial last_event_id, 1 max_failures 3,
   2 healthy_ms -1, 3-4 open_attempts 4 / 1 / unbounded / 2, 5
   whatwg_strict, 6 every event has an id and the server resumes after
   Last-Event-ID, 7 retry_ms 500); byte 1 seeds the random numbers (bit 0: a
   finite open deadline; bit 1: a POST with a body, bit 2: repeatable). Then steps of 5 bytes: a kind and 4 parameters.
   Kinds: connect refused; a temporary DNS failure; a name that does not
   exist; a refused TLS handshake; a TLS handshake cut; 200
   text/event-stream with a body (events with and without ids, id-only
   blocks, an empty id that resets the last-event-ID, `retry:`, comments,
   CRLF or LF, close-delimited, Content-Length or chunked, delivered in pieces of
   1-64 bytes, taking 0 / 0.3 / 1.5 / 61 s, ending cleanly, cut by a reset
   or a short Content-Length or chunked body, by idle_timeout_ms of silence, or with a
   cancellation of the reading task in the middle); 200 without
   text/event-stream; 204; 301 / 302 / 307; 4xx; 5xx, each with or without
   Retry-After (seconds, an HTTP-date, retry-after-ms, 0, huge); an idle
   stall or a reset before the head; a cancellation of the connect; a
   cancellation of the next wait. When the script runs out the next
   connect says so (PR_ECANCELED) and the run ends.

   Checks:
   - nothing crashes or leaks; every return code is one the function
     documents; pr_sse_next never returns PR_ETIMEDOUT with PR_FOREVER;
   - a terminal outcome (pr_sse_open's failure, pr_sse_next's final code)
     is the documented code of the step that ended the stream (refused,
     a reset or an idle stall: PR_EIO; DNS: PR_EDNS; TLS: PR_ETLS; 204 and
     a clean end: PR_ECLOSED; a status: PR_EHTTP with that status, more
     than 10 redirects with the last 3xx; 200 of another type or a cut
     Content-Length or chunked body: PR_EPROTO), and it is sticky;
   - every request carries Last-Event-ID equal to the WHATWG last event ID
     buffer after the blocks dispatched so far (ids, id-only blocks, empty
     ids resetting it; none while it is empty), and on_reconnect reports
     the same;
   - `retry:` sets the reconnection time (pr_sse_retry_ms and every
     event's stream_retry_ms follow the lines the stream has read);
   - every reconnect's delay follows the policy: a server's Retry-After
     exactly (at most max_retry_ms); else before the first open the
     backoff (750 ms to 30 s); after it the reconnection time plus at most
     30 s; the sleep never waits longer than planned;
   - events arrive in order, each once, none lost: exactly the data blocks
     completed in the bytes each connection delivered, with their ids and
     last-event-IDs; with bit 6, across reconnects the sequence numbers
     are consecutive from 1;
   - bounded work: connections never exceed the script's steps, reconnects
     never exceed connections, and pr_sse_next returns within a bounded
     number of calls. */
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"

#define FZ_STEP 5
#define FZ_WALL_MS 784111772000LL /* 5 s before Sun, 06 Nov 1994 08:49:37 GMT */
#define FZ_MAX_RETRY 3600000

typedef struct fz_ev {
    unsigned seq;
    int typed, id_state;
    char last_id[24];
    int64_t stream_retry;
} fz_ev;

typedef struct fz_conn {
    pr_conn base; /* first */
    unsigned char *data;
    size_t len, pos, cut;
    int action;         /* at cut: 0 clean end, 1 reset, 2 idle stall, 3 cancel once then go on, 4 clean end (short CL) */
    int acted;
    size_t piece;
    int64_t duration;   /* virtual ms the body takes, added at its end */
    char lei[24];       /* the Last-Event-ID the request must carry ("" = none) */
    char req[2048];
    size_t req_len;
    int checked;
} fz_conn;

static struct {
    const uint8_t *s;
    size_t len, pos;
    unsigned opt;
    uint32_t rnd;
    int steps, connects, exhausted, cancel_sleep, cancels;
    int post;                  /* the stream is a POST (a 301 / 302 turns it into a GET) */
    int opened;                /* a 200 text/event-stream was served */
    int expect;                /* the code that ends the stream after the last step; 0 = unknown */
    int status;                /* the last step's status, 0 = none */
    int64_t hint;              /* the last step's usable Retry-After, 0 = none */
    char id[24];               /* the model's last event ID buffer */
    int64_t retry;             /* the model's last retry: value, -1 = none */
    int64_t retry0;            /* the initial reconnection time */
    unsigned next_seq, last_seq;
    fz_ev *q;                  /* events still to deliver, in order */
    size_t qhead, qlen, qcap;
    long reconnects;
    int64_t planned;           /* the last on_reconnect delay */
    pr_sse *stream;
} g;

static int64_t fz_r(void) { /* the model's reconnection time */
    int64_t r = g.retry >= 0 ? g.retry : g.retry0;
    return r < FZ_MAX_RETRY ? r : FZ_MAX_RETRY;
}

static void fz_advance_to(int64_t t) {
    if (t != PR_FOREVER && t > pr__time_test_clock_ms) pr__time_test_clock_ms = t;
}

/* ---- the scripted connection ---- */

static void fz_check_request(fz_conn *f) {
    const char *p, *e;
    if (f->checked) return;
    f->checked = 1;
    f->req[f->req_len] = 0;
    if (!strstr(f->req, "\r\n\r\n")) abort(); /* the head was written whole before the first read */
    if (strncmp(f->req, "GET ", 4) != 0 && !(g.post && strncmp(f->req, "POST ", 5) == 0)) abort();
    p = strstr(f->req, "\r\nLast-Event-ID: ");
    if (!f->lei[0]) {
        if (p) abort(); /* no header while the buffer is empty */
        return;
    }
    if (!p) abort();
    p += 17;
    e = strstr(p, "\r\n");
    if ((size_t)(e - p) != strlen(f->lei) || memcmp(p, f->lei, (size_t)(e - p)) != 0) abort();
}

static ptrdiff_t fz_read(pr_conn *c, void *buf, size_t n, int64_t deadline) {
    fz_conn *f = (fz_conn *)(void *)c;
    size_t k;
    fz_check_request(f);
    if (f->pos == f->cut && !f->acted) {
        f->acted = 1;
        fz_advance_to(pr__time_test_clock_ms + f->duration);
        switch (f->action) {
        case 1:
            pr__err_set(&c->err, PR_EIO, ECONNRESET, "fuzz: %s", "connection reset");
            return PR_EIO;
        case 2:
            if (deadline == PR_FOREVER) abort(); /* the stream always has an idle timeout */
            fz_advance_to(deadline);
            pr__err_set(&c->err, PR_ETIMEDOUT, 0, "fuzz: %s", "silence");
            return PR_ETIMEDOUT;
        case 3:
            g.cancels++;
            pr__err_set(&c->err, PR_ECANCELED, 0, "fuzz: %s", "the task was cancelled");
            return PR_ECANCELED;
        default:
            return PR_ECLOSED;
        }
    }
    if (f->pos == f->len || (f->pos == f->cut && f->action != 3)) {
        if (f->action == 1 || f->action == 2) return PR_EIO; /* already failed; not read again */
        return PR_ECLOSED;
    }
    k = (f->pos < f->cut ? f->cut : f->len) - f->pos;
    if (k > f->piece) k = f->piece;
    if (k > n) k = n;
    memcpy(buf, f->data + f->pos, k);
    f->pos += k;
    return (ptrdiff_t)k;
}

static ptrdiff_t fz_write(pr_conn *c, const void *buf, size_t n, int64_t deadline) {
    fz_conn *f = (fz_conn *)(void *)c;
    size_t k = n;
    (void)deadline;
    if (k > sizeof f->req - 1 - f->req_len) k = sizeof f->req - 1 - f->req_len;
    memcpy(f->req + f->req_len, buf, k);
    f->req_len += k;
    return (ptrdiff_t)n;
}

static int fz_shutdown(pr_conn *c, int64_t deadline) {
    (void)c, (void)deadline;
    return PR_OK;
}

static void fz_destroy(pr_conn *c) {
    fz_conn *f = (fz_conn *)(void *)c;
    free(f->data);
    free(f);
}

static const pr_conn_ops fz_ops = { fz_read, fz_write, fz_shutdown, fz_destroy };

/* ---- bodies ---- */

typedef struct fz_body {
    char *p;
    size_t len, cap;
} fz_body;

static void fz_add(fz_body *b, const char *s) {
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = (char *)realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

/* A line ends with eol; returns the offset at which the decoder has seen
   it end (after the CR of a CRLF). */
static size_t fz_line(fz_body *b, const char *s, int crlf) {
    size_t at;
    fz_add(b, s);
    fz_add(b, crlf ? "\r\n" : "\n");
    at = b->len - (crlf ? 1 : 0);
    return at;
}

typedef struct fz_blk {
    size_t at;        /* the offset by which the decoder has acted on it */
    int kind;         /* 0 event, 1 id-only block, 2 empty-id block, 3 retry line */
    unsigned seq;
    int has_id, typed;
    char id[24];
    int64_t retry;
} fz_blk;

static void fz_push(const fz_ev *e) {
    if (g.qlen == g.qcap) {
        g.qcap = g.qcap ? g.qcap * 2 : 32;
        g.q = (fz_ev *)realloc(g.q, g.qcap * sizeof *g.q);
        if (!g.q) abort();
    }
    g.q[g.qlen++] = *e;
}

/* A 200 text/event-stream: build the body, then apply to the model what
   the decoder will act on in the delivered bytes. */
static fz_conn *fz_stream_conn(const uint8_t *pa, int chunked) {
    static const int64_t durations[4] = { 0, 300, 1500, 61000 };
    static const int64_t retries[4] = { 0, 250, 5000, 7200000 };
    fz_body b = { NULL, 0, 0 }, w = { NULL, 0, 0 };
    fz_blk blk[16];
    size_t nb = 0, i, head_len, *w2b = NULL; /* chunked: body bytes before each wire offset */
    unsigned nev = pa[0] & 7, j, seq;
    int crlf = (pa[3] >> 5) & 1, cl = !chunked && ((pa[0] >> 7) & 1);
    char line[64], head[256];
    fz_conn *f;
    /* where the server resumes: after the event Last-Event-ID names */
    if (g.opt & 64) {
        unsigned k = 0;
        seq = (sscanf(g.id, "e%u", &k) == 1) ? k + 1 : 1;
    } else {
        seq = g.next_seq;
    }
    fz_add(&b, "");
    if (pa[0] & 64) fz_line(&b, ": a comment", crlf);
    if (pa[0] & 8) {
        blk[nb].kind = 3;
        blk[nb].retry = retries[pa[3] & 3];
        snprintf(line, sizeof line, "retry: %lld", (long long)blk[nb].retry);
        blk[nb].at = fz_line(&b, line, crlf);
        nb++;
    }
    for (j = 0; j < nev; j++, seq++) {
        fz_blk *x = &blk[nb++];
        memset(x, 0, sizeof *x);
        x->seq = seq;
        x->has_id = (g.opt & 64) || ((seq + pa[1]) & 1);
        x->typed = (pa[3] >> 4) & 1;
        if (x->has_id) {
            snprintf(x->id, sizeof x->id, "e%u", seq);
            snprintf(line, sizeof line, "id: %s", x->id);
            fz_line(&b, line, crlf);
        }
        if (x->typed) fz_line(&b, "event: t", crlf);
        snprintf(line, sizeof line, "data: %u", seq);
        fz_line(&b, line, crlf);
        x->at = fz_line(&b, "", crlf);
        if (!(g.opt & 64) && j == 0 && (pa[0] & 16)) { /* an id-only block moves the buffer */
            x = &blk[nb++];
            memset(x, 0, sizeof *x);
            x->kind = 1;
            snprintf(x->id, sizeof x->id, "x%u", seq);
            snprintf(line, sizeof line, "id:%s", x->id);
            fz_line(&b, line, crlf);
            x->at = fz_line(&b, "", crlf);
        }
        if (!(g.opt & 64) && j == 1 && (pa[0] & 32)) { /* an empty id resets it */
            x = &blk[nb++];
            memset(x, 0, sizeof *x);
            x->kind = 2;
            fz_line(&b, (pa[3] & 64) ? "id" : "id:", crlf);
            x->at = fz_line(&b, "", crlf);
        }
    }
    if (!(g.opt & 64)) g.next_seq = seq;
    snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nConnection: close\r\n",
             (pa[3] & 128) ? "Text/Event-Stream; charset=utf-8" : "text/event-stream");
    if (cl) snprintf(head + strlen(head), sizeof head - strlen(head), "Content-Length: %zu\r\n", b.len);
    if (chunked) strcat(head, "Transfer-Encoding: chunked\r\n");
    strcat(head, "\r\n");
    head_len = strlen(head);
    fz_add(&w, "");
    if (chunked) { /* the body in chunks of the piece size (plus one), with extensions now and then */
        size_t csz = 2 + (pa[2] >> 2), at = 0, o;
        char cb[80];
        w2b = (size_t *)malloc((b.len * 8 + 64) * sizeof *w2b);
        if (!w2b) abort();
        while (at < b.len) {
            size_t k = b.len - at < csz ? b.len - at : csz, start = w.len;
            snprintf(line, sizeof line, "%zx%s\r\n", k, (at & 1) ? ";x=1" : "");
            fz_add(&w, line);
            for (o = start; o < w.len; o++) w2b[o] = at;
            memcpy(cb, b.p + at, k), cb[k] = 0; /* k <= 65; the body has no NUL */
            for (o = 0; o < k; o++) w2b[w.len + o] = at + o;
            fz_add(&w, cb);
            at += k;
            w2b[w.len] = w2b[w.len + 1] = at;
            fz_add(&w, "\r\n");
        }
        for (o = w.len; o < w.len + 5; o++) w2b[o] = at;
        fz_add(&w, "0\r\n\r\n");
        w2b[w.len] = at;
    } else if (b.len) {
        fz_add(&w, b.p);
    }
    f = (fz_conn *)calloc(1, sizeof *f);
    if (!f) abort();
    f->base.ops = &fz_ops;
    f->len = head_len + w.len;
    f->data = (unsigned char *)malloc(f->len + 1);
    if (!f->data) abort();
    memcpy(f->data, head, head_len);
    if (w.len) memcpy(f->data + head_len, w.p, w.len);
    f->piece = 1 + (pa[2] >> 2);
    f->duration = durations[pa[2] & 3];
    f->action = pa[1] & 3;
    f->cut = head_len + w.len * (pa[1] >> 2) / 64;
    if (f->action == 0) f->cut = f->len;
    if (f->action == 1 && (cl || chunked)) f->action = 4; /* a short body: truncated */
    if ((cl || chunked) && f->cut >= f->len) f->action = 0; /* a complete body is not read past */
    snprintf(f->lei, sizeof f->lei, "%s", g.id);
    /* the model: what the decoder acts on within the delivered bytes */
    {
        size_t got = (f->action == 3 || f->action == 0) ? b.len : chunked ? w2b[f->cut - head_len] : f->cut - head_len;
        for (i = 0; i < nb && blk[i].at <= got; i++) {
            fz_blk *x = &blk[i];
            fz_ev e;
            switch (x->kind) {
            case 3:
                g.retry = x->retry;
                break;
            case 1:
                snprintf(g.id, sizeof g.id, "%s", x->id);
                break;
            case 2:
                g.id[0] = 0;
                break;
            default:
                memset(&e, 0, sizeof e);
                if (x->has_id) snprintf(g.id, sizeof g.id, "%s", x->id);
                e.seq = x->seq;
                e.typed = x->typed;
                e.id_state = x->has_id ? PR_SSE_ID_SET : PR_SSE_ID_ABSENT;
                snprintf(e.last_id, sizeof e.last_id, "%s", g.id);
                e.stream_retry = fz_r();
                fz_push(&e);
            }
        }
    }
    /* how the stream ends if this connection ends it */
    g.expect = f->action == 1 || f->action == 2 ? PR_EIO : f->action == 4 ? PR_EPROTO : PR_ECLOSED;
    free(b.p);
    free(w.p);
    free(w2b);
    return f;
}

static fz_conn *fz_fixed_conn(const char *text, int stall_or_reset) {
    fz_conn *f = (fz_conn *)calloc(1, sizeof *f);
    if (!f) abort();
    f->base.ops = &fz_ops;
    f->len = strlen(text);
    f->data = (unsigned char *)malloc(f->len + 1);
    if (!f->data) abort();
    memcpy(f->data, text, f->len + 1);
    f->piece = 64;
    f->cut = stall_or_reset ? 0 : f->len;
    f->action = stall_or_reset;
    snprintf(f->lei, sizeof f->lei, "%s", g.id);
    return f;
}

/* ---- the network ---- */

static int fz_connect(pr_conn **out, const char *host, uint16_t port, pr_err_info *err, int64_t deadline) {
    static const int statuses4[8] = { 400, 401, 404, 410, 408, 409, 429, 451 };
    static const int statuses5[4] = { 500, 502, 503, 504 };
    static const int redirects[3] = { 301, 302, 307 };
    char text[512], extra[160];
    (void)host, (void)port, (void)deadline;
    *out = NULL;
    memset(err, 0, sizeof *err);
    for (;;) {
        const uint8_t *st, *pa;
        unsigned kind;
        int status = 0;
        if (g.pos + FZ_STEP > g.len) { /* the script ran out: end the run */
            g.exhausted = 1;
            return pr__err_set(err, PR_ECANCELED, 0, "fuzz: %s", "the script ran out");
        }
        st = g.s + g.pos;
        g.pos += FZ_STEP;
        g.steps++;
        kind = st[0] & 15;
        pa = st + 1;
        g.status = 0;
        g.hint = 0;
        if (kind == 13) { /* cancel the next wait: no connection */
            g.cancel_sleep = 1;
            continue;
        }
        g.connects++;
        switch (kind) {
        case 0:
            g.expect = PR_EIO;
            return pr__err_set(err, PR_EIO, ECONNREFUSED, "fuzz: %s", "connection refused");
        case 1:
            g.expect = PR_EDNS;
            pr__err_set(err, PR_EDNS, 0, "fuzz: %s", "temporary DNS failure");
            err->dns_error = EAI_AGAIN;
            return PR_EDNS;
        case 2:
            g.expect = PR_EDNS;
            pr__err_set(err, PR_EDNS, 0, "fuzz: %s", "no such name");
            err->dns_error = EAI_NONAME;
            return PR_EDNS;
        case 3:
            g.expect = PR_ETLS;
            pr__err_set(err, PR_ETLS, 0, "fuzz: %s", "certificate refused");
            err->tls_error = 62; /* a BearSSL X.509 code */
            return PR_ETLS;
        case 4:
            g.expect = PR_ETLS;
            pr__err_set(err, PR_ETLS, 0, "fuzz: %s", "handshake cut");
            err->tls_error = PR_TLS_TRUNCATED;
            return PR_ETLS;
        case 5:
        case 15:
            g.opened = 1;
            *out = &fz_stream_conn(pa, kind == 5)->base;
            return PR_OK;
        case 6:
            g.expect = PR_EPROTO;
            snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\n%sConnection: close\r\nContent-Length: 2\r\n\r\nhi",
                     (pa[0] & 1) ? "Content-Type: text/plain\r\n" : "");
            *out = &fz_fixed_conn(text, 0)->base;
            return PR_OK;
        case 7:
            g.expect = PR_ECLOSED;
            *out = &fz_fixed_conn("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", 0)->base;
            return PR_OK;
        case 8:
            g.expect = 0; /* the next step answers the redirected request */
            g.status = redirects[pa[0] % 3]; /* more than 10 in a row: PR_EHTTP with it */
            snprintf(text, sizeof text, "HTTP/1.1 %d Moved\r\nLocation: %s%u\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                     redirects[pa[0] % 3], (pa[1] & 1) ? "http://127.0.0.1:9/r" : "/r", (unsigned)pa[2]);
            *out = &fz_fixed_conn(text, 0)->base;
            return PR_OK;
        case 9:
        case 10:
            status = kind == 9 ? statuses4[pa[0] & 7] : statuses5[pa[0] & 3];
            extra[0] = 0;
            switch (pa[1] % 6) {
            case 1: strcpy(extra, "Retry-After: 2\r\n"), g.hint = 2000; break;
            case 2: strcpy(extra, "retry-after-ms: 1500\r\n"), g.hint = 1500; break;
            case 3: strcpy(extra, "Retry-After: Sun, 06 Nov 1994 08:49:37 GMT\r\n"), g.hint = 5000; break;
            case 4: strcpy(extra, "Retry-After: 0\r\n"); break;
            case 5: strcpy(extra, "Retry-After: 99999\r\n"), g.hint = FZ_MAX_RETRY; break;
            default: break;
            }
            if (!pr_retry_status_retryable(status)) g.hint = 0;
            g.status = status;
            g.expect = PR_EHTTP;
            snprintf(text, sizeof text, "HTTP/1.1 %d Nope\r\n%sConnection: close\r\nContent-Length: 9\r\n\r\nbad key\r\n",
                     status, extra);
            *out = &fz_fixed_conn(text, 0)->base;
            return PR_OK;
        case 11: /* silence before the head */
            g.expect = PR_EIO;
            *out = &fz_fixed_conn("HTTP/1.1 200 OK\r\n\r\n", 2)->base;
            return PR_OK;
        case 12:
            g.expect = 0;
            g.cancels++;
            return pr__err_set(err, PR_ECANCELED, 0, "fuzz: %s", "the connect was cancelled");
        default: /* 14: a reset before the head */
            g.expect = PR_EIO;
            *out = &fz_fixed_conn("HTTP/1.1 200 OK\r\n\r\n", 1)->base;
            return PR_OK;
        }
    }
}

/* ---- hooks ---- */

static double fz_random(void *ud) {
    (void)ud;
    g.rnd = g.rnd * 1103515245u + 12345u;
    return (double)((g.rnd >> 8) & 0xffff) / 65536.0;
}

static int fz_sleep(int64_t delay, int64_t deadline, void *ud) {
    (void)ud;
    if (delay < 0) abort();
    if (g.planned >= 0 && delay > g.planned) abort(); /* never longer than planned */
    if (g.cancel_sleep) {
        g.cancel_sleep = 0;
        g.cancels++;
        return PR_ECANCELED;
    }
    fz_advance_to(deadline != PR_FOREVER ? deadline : pr__time_test_clock_ms + delay);
    return PR_OK;
}

static int64_t fz_wall(void *ud) {
    (void)ud;
    return FZ_WALL_MS;
}

static void fz_on_reconnect(const pr_sse_reconnect *info, void *ud) {
    (void)ud;
    if (info->reconnects != ++g.reconnects) abort();
    if (info->delay_ms < 0) abort();
    if (strcmp(info->last_event_id, g.id) != 0) abort();
    if (g.hint > 0 && !(g.opt & 32)) {
        if (info->delay_ms != (g.hint < FZ_MAX_RETRY ? g.hint : FZ_MAX_RETRY)) abort();
    } else if (g.opened) {
        if (info->delay_ms < fz_r() || info->delay_ms > fz_r() + 30000) abort();
    } else {
        if (info->delay_ms < 750 || info->delay_ms > 30000) abort();
    }
    if (g.stream && pr_sse_retry_ms(g.stream) != fz_r()) abort();
    g.planned = info->delay_ms;
}

/* ---- the run ---- */

static void fz_check_event(const pr_sse_event *ev) {
    fz_ev *e;
    char want[16];
    if (g.qhead == g.qlen) abort(); /* an event that was never completed, or a duplicate */
    e = &g.q[g.qhead++];
    snprintf(want, sizeof want, "%u", e->seq);
    if (ev->data_len != strlen(want) || memcmp(ev->data, want, ev->data_len) != 0) abort();
    if (e->typed ? (ev->type_len != 1 || ev->type[0] != 't') : (ev->type_len != 7 || memcmp(ev->type, "message", 7) != 0))
        abort();
    if (ev->id_state != e->id_state) abort();
    if (ev->last_id_len != strlen(e->last_id) || memcmp(ev->last_id, e->last_id, ev->last_id_len) != 0) abort();
    if (e->id_state == PR_SSE_ID_SET && (ev->id_len != ev->last_id_len || memcmp(ev->id, ev->last_id, ev->id_len) != 0))
        abort();
    if (ev->stream_retry_ms != e->stream_retry) abort();
    if (g.opt & 64) { /* the server resumes after Last-Event-ID: consecutive across reconnects */
        if (e->seq != g.last_seq + 1) abort();
        g.last_seq = e->seq;
    }
}

/* A stream's end: the code of the step that ended it, documented, sticky. */
static void fz_check_final(int rc, const pr_err_info *e) {
    if (rc != PR_ECLOSED && rc != PR_EHTTP && rc != PR_EPROTO && rc != PR_EDNS && rc != PR_ETLS && rc != PR_EIO) abort();
    if (e->code != rc) abort();
    if (g.expect && rc != g.expect) abort();
    if (rc == PR_EHTTP && g.status && e->http_status != g.status) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pr_sse_stream_opts o;
    pr_sse_event ev;
    pr_err_info e;
    pr_sse *s = NULL;
    int64_t open_deadline;
    int rc, calls = 0, oa;
    if (size < 2) return 0;
    memset(&g, 0, sizeof g);
    g.opt = data[0];
    g.rnd = data[1];
    g.s = data + 2;
    g.len = size - 2;
    g.retry = -1;
    g.planned = -1;
    g.next_seq = 1;
    pr__time_test_clock_virtual(1, 1000000);
    pr__net_test_connect = fz_connect;
    memset(&o, 0, sizeof o);
    o.hooks.sleep = fz_sleep;
    o.hooks.random = fz_random;
    o.hooks.wall_clock_ms = fz_wall;
    o.observer.on_reconnect = fz_on_reconnect;
    if (g.opt & 1) {
        o.last_event_id = "seed";
        strcpy(g.id, "seed");
    }
    if (g.opt & 2) o.max_failures = 3;
    if (g.opt & 4) o.healthy_ms = -1;
    oa = (int)((g.opt >> 3) & 3);
    o.open_attempts = oa == 1 ? 1 : oa == 2 ? -1 : oa == 3 ? 2 : 0;
    o.whatwg_strict = (int)((g.opt >> 5) & 1);
    if (g.opt & 128) o.retry_ms = 500;
    if (data[1] & 2) { /* a POST: sent again only when the server cannot have processed it, unless repeatable */
        g.post = 1;
        o.method = "POST";
        o.body = "{}";
        o.body_len = 2;
        o.repeatable = (data[1] >> 2) & 1;
    }
    g.retry0 = (g.opt & 128) ? 500 : 3000;
    open_deadline = (data[1] & 1) ? pr_now() + 20000 : PR_FOREVER;
    rc = pr_sse_open(&s, "http://127.0.0.1:9/events", &o, &e, open_deadline);
    if (rc != PR_OK) {
        if (s) abort();
        if (rc == PR_ECANCELED) {
            if (!g.exhausted && !g.cancels) abort();
        } else if (rc == PR_ETIMEDOUT) {
            if (open_deadline == PR_FOREVER) abort();
        } else {
            fz_check_final(rc, &e);
        }
    } else {
        if (!g.opened || g.exhausted) abort();
        g.stream = s;
        for (;;) {
            /* every call returns an event, or ends, or a scripted cancel / step */
            if (++calls > (int)(g.qlen + 2 * (size_t)g.steps + 8)) abort();
            rc = pr_sse_next(s, &ev, PR_FOREVER);
            if (rc == PR_OK) {
                fz_check_event(&ev);
                continue;
            }
            if (rc == PR_ECANCELED) {
                if (g.exhausted) break;
                if (!g.cancels) abort();
                continue;
            }
            if (pr_sse_last_error(s, &e) != PR_OK) abort();
            fz_check_final(rc, &e);
            if (pr_sse_next(s, &ev, PR_FOREVER) != rc) abort(); /* sticky */
            break;
        }
        if (g.qhead != g.qlen) abort(); /* an event completed in delivered bytes never arrived */
        if (pr_sse_reconnects(s) != g.reconnects) abort();
        pr_sse_destroy(s);
    }
    if (getenv("FZ_DEBUG"))
        fprintf(stderr, "steps %d connects %d reconnects %ld events %zu/%zu rc %d cancels %d exhausted %d\n", g.steps,
                g.connects, g.reconnects, g.qhead, g.qlen, rc, g.cancels, g.exhausted);
    if (g.connects > g.steps) abort();
    if (g.reconnects > g.connects) abort();
    free(g.q);
    pr__net_test_connect = NULL;
    pr__time_test_clock_virtual(0, 0);
    pr_sched_destroy();
    return 0;
}
