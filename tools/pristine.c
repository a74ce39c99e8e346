/* pristine - the command-line client of pristine.h: tail an event stream,
   download a body, work a Durable Stream, wait for a remote future. One
   file on the library alone; the usage text below is its documentation.

   make cli   (or: cc -std=c99 -O2 -I. tools/pristine.c -o build/pristine -lbearssl -lpthread)

   Each command runs in one task; pr_signal_watch_start turns Ctrl-C into
   the cancellation of that task, which closes what it opened on its way
   out (a producer is flushed afterwards by main), and the exit code is 130.
   No command waits forever on a silent server: every connection has an
   idle limit (--idle-timeout, 60 s by default), past which a request fails
   (PR_EIO, ETIMEDOUT: exit 2) and a stream reconnects. A failure prints one
   line that names what the user ran (the URL; "ds OP URL"; "future URL
   ID"), the code and the library's cause; a 204 that ends an event stream
   is no failure. */
#define PRISTINE_IMPLEMENTATION
#include "pristine.h"

#include <limits.h>
#include <stdio.h>
#include <strings.h>

/* two strings: C99 promises no longer literal than 4095 bytes */
static const char *const usage_text[] = {
    "usage: pristine [options] COMMAND ...\n"
    "\n"
    "Commands:\n"
    "  sse URL               print an event stream, reconnecting with Last-Event-ID;\n"
    "                        ends (exit 0) at a final end: a 204 (at the start or on a\n"
    "                        reconnect: the server says stop), a POST stream's end, or\n"
    "                        --max-events\n"
    "  get URL               write a response body to stdout (or -o FILE)\n"
    "  ds create STREAM      create a Durable Stream (--content-type, --json)\n"
    "  ds append STREAM [DATA...]\n"
    "                        append each DATA, or stdin through an idempotent producer\n"
    "                        (--json: one JSON value per argument or stdin line);\n"
    "                        prints the new tail offset; what the server has not\n"
    "                        confirmed 10 s after it was read (or by --timeout) fails it\n"
    "  ds read STREAM        print from --offset (default -1, the start) to the tail\n"
    "  ds tail STREAM        print from --offset, then follow live until the stream closes\n"
    "  ds head STREAM        print the tail offset, content type and closed state\n"
    "  ds delete STREAM      delete the stream\n"
    "  ds close STREAM [DATA]\n"
    "                        close the stream (with a final message); prints the final offset\n"
    "  future URL ID         wait for a remote job's result and print it as JSON: POST\n"
    "                        {\"request_id\": ID} to URL/api/v1/retrieve_future again and\n"
    "                        again until the job is done (the protocol of Tinker-style\n"
    "                        job APIs; a failed or expired job is exit 2)\n"
    "\n",
    "Options (anywhere on the line):\n"
    "  -H, --header 'Name: value'   a request header (repeatable; not for future)\n"
    "  --timeout SECONDS            deadline of the whole command (default none)\n"
    "  --idle-timeout SECONDS       the longest silence of a connection (default 60; 0 = none):\n"
    "                               a stalled answer then fails (exit 2); a stream (sse, ds\n"
    "                               tail) reconnects instead\n"
    "  --retries N                  retries of a failed request or connection (default 2); a\n"
    "                               stream that has been open reconnects without a bound\n"
    "  --cacert FILE                trust these CA certificates (PEM) instead of the system's\n"
    "  --cert FILE, --key FILE      client certificate and key (PEM) for mutual TLS\n"
    "  -v, --verbose                requests, responses, retries and reconnects on stderr\n"
    "  -h, --help                   this text;  --version  the library's version\n"
    "sse and get:\n"
    "  -X, --request METHOD         method (default GET, or POST with -d)\n"
    "  -d, --data DATA | @FILE | @- the request body (an LLM-style POST stream)\n"
    "sse:\n"
    "  --repeatable                 the request may be sent again on a reconnect\n"
    "  --last-event-id ID           resume after ID\n"
    "  --max-events N               stop after N events\n"
    "  --json                       one JSON object per line: {\"id\":..,\"event\":..,\"data\":..};\n"
    "                               id is null when the event has none; data is the text as a\n"
    "                               string, even when it is JSON itself\n"
    "  otherwise events print as an event stream: event: TYPE, id: ID (when it has one),\n"
    "  one data: line per line, then a blank line\n"
    "get:\n"
    "  -o, --output FILE            write the body there; a progress line goes to stderr when\n"
    "                               it is a terminal and the download takes over a second\n"
    "ds:\n"
    "  STREAM is a URL, or a name appended to $STREAM_URL (--url BASE overrides it;\n"
    "  default http://localhost:4437/v1/stream). $STREAM_AUTH (or --auth VALUE) is sent\n"
    "  as the Authorization header. These are the names of the npm @durable-streams/cli.\n"
    "  --content-type TYPE          create/append/close (default application/octet-stream;\n"
    "                               append and close with DATA learn the stream's own with\n"
    "                               a HEAD)\n"
    "  --json                       application/json: messages print one per line\n"
    "  --offset OFF                 read/tail: where to start: an offset printed before (the\n"
    "                               server's own opaque string, not a byte count), -1 the\n"
    "                               start (the default) or now (the tail: new data only)\n"
    "  --live sse|long-poll         tail: how to follow (default sse)\n"
    "  read and tail print \"next-offset: OFF\" on stderr when they stop, interrupted\n"
    "  too: --offset OFF resumes there without losing or repeating a byte\n"
    "\n"
    "Exit codes:\n"
    "  0    done\n"
    "  1    usage: a bad option, argument, URL, header or file\n"
    "  2    network or protocol failure (refused, reset, name not found, malformed,\n"
    "       a future that failed or expired)\n"
    "  3    the server answered an HTTP error status\n"
    "  4    TLS failure (certificate not trusted, wrong host, refused client certificate)\n"
    "  5    --timeout passed\n"
    "  130  interrupted (Ctrl-C, SIGTERM)\n"
    "Every failure prints one line on stderr: pristine: WHAT: CODE: cause.\n"
};

enum { EXIT_OK = 0, EXIT_USAGE = 1, EXIT_NET = 2, EXIT_HTTP = 3, EXIT_TLS = 4, EXIT_TIMEOUT = 5, EXIT_INTR = 130 };
enum { MAX_HEADERS = 32, MAX_ARGS = 64 };
enum { PRODUCER_DELIVERY_MS = 10000 }; /* ds append from stdin: a batch's time to be confirmed without --timeout */

typedef struct cli {
    const char *pos[MAX_ARGS];  /* the command and its arguments */
    int npos;
    const char *headers[MAX_HEADERS + 2]; /* NULL-terminated; room for Authorization */
    int nheaders;
    char *auth_line;            /* "Authorization: ..." from --auth / $STREAM_AUTH (malloc'd) */
    int64_t deadline;
    int idle_ms;                /* --idle-timeout in ms; 0 = none */
    int retries, verbose, json, repeatable;
    long max_events;            /* < 0 = no limit */
    const char *cacert, *cert, *key;
    const char *method, *data, *last_event_id, *output;
    const char *content_type, *live, *offset, *url_base, *auth;
    char *body;                 /* -d's bytes (malloc'd) */
    size_t body_len;
    pr_http_client *client;
    int stdin_nonblock;         /* stdin is a pipe or terminal read with pr_fd_read */
    /* what main finishes after the command's task (a producer is flushed
       there, outside the cancelled task) */
    pr_ds *ds;
    pr_ds_producer *producer;
} cli;

/* ---- errors ---- */

static int exit_code(int rc) {
    switch (rc) {
    case PR_OK: return EXIT_OK;
    case PR_EINVAL: return EXIT_USAGE;
    case PR_EHTTP: return EXIT_HTTP;
    case PR_ETLS: return EXIT_TLS;
    case PR_ETIMEDOUT: return EXIT_TIMEOUT;
    case PR_ECANCELED: return EXIT_INTR;
    default: return EXIT_NET;
    }
}

/* Print the cause of rc in one line and return its exit code. An
   interruption prints nothing: the user asked for it. */
static int fail(const char *what, int rc, const pr_err_info *e) {
    char msg[sizeof e->msg];
    size_t i;
    if (rc == PR_ECANCELED) return EXIT_INTR;
    snprintf(msg, sizeof msg, "%s", e && e->msg[0] ? e->msg : pr_strerror(rc));
    for (i = 0; msg[i]; i++)
        if ((unsigned char)msg[i] < 0x20) msg[i] = ' ';
    fprintf(stderr, "pristine: %s: %s: %s", what, pr_errname(rc), msg);
    if (e && e->http_status > 0) { /* never a status 0 (no answer), nor one the message names */
        char st[16];
        snprintf(st, sizeof st, "%d", e->http_status);
        if (!strstr(msg, st)) fprintf(stderr, " (HTTP status %s)", st);
    }
    fputc('\n', stderr);
    return exit_code(rc);
}

static int usage_error(const char *fmt, const char *arg) {
    fputs("pristine: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (pristine --help)\n", stderr);
    return EXIT_USAGE;
}

/* ---- files and stdin ---- */

/* Read all of a file ("-" = stdin) into *out (malloc'd, NUL-terminated). */
static int read_file(const char *path, char **out, size_t *len) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    size_t cap = 4096, n = 0;
    char *p = (char *)malloc(cap + 1), *q;
    if (!f || !p) {
        free(p);
        return -1;
    }
    for (;;) {
        size_t k = fread(p + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
        if (n == cap) {
            if (!(q = (char *)realloc(p, cap * 2 + 1))) break;
            p = q;
            cap *= 2;
        }
    }
    if (ferror(f)) {
        free(p);
        p = NULL;
    }
    if (f != stdin) fclose(f);
    if (!p) return -1;
    p[n] = 0;
    *out = p;
    *len = n;
    return 0;
}

/* Read some of stdin: bytes (> 0), 0 at its end, or a PR_E* code (an
   interruption cancels the wait on a pipe or terminal). */
static ptrdiff_t read_stdin(cli *a, char *buf, size_t n) {
    ptrdiff_t k;
    if (a->stdin_nonblock) {
        k = pr_fd_read(0, buf, n, a->deadline);
        return k == PR_ECLOSED ? 0 : k;
    }
    k = read(0, buf, n);
    return k >= 0 ? k : PR_EIO;
}

/* ---- observers (--verbose) ---- */

static void on_http_event(const pr_http_event *ev, void *ud) {
    (void)ud;
    if (ev->kind == PR_HTTP_EVENT_START)
        fprintf(stderr, "> %s %s\n", ev->method, ev->url);
    else if (ev->kind == PR_HTTP_EVENT_ATTEMPT && ev->status)
        fprintf(stderr, "< %d (attempt %d, %lld ms)\n", ev->status, ev->attempt + 1, (long long)ev->duration_ms);
    else if (ev->kind == PR_HTTP_EVENT_ATTEMPT)
        fprintf(stderr, "< %s (attempt %d, %lld ms)\n", pr_errname(ev->error), ev->attempt + 1,
                (long long)ev->duration_ms);
    else if (ev->kind == PR_HTTP_EVENT_RETRY)
        fprintf(stderr, "* retry in %lld ms: %s\n", (long long)ev->delay_ms, ev->reason ? ev->reason : "");
}

static void on_sse_reconnect(const pr_sse_reconnect *r, void *ud) {
    (void)ud;
    fprintf(stderr, "* reconnect %ld in %lld ms: %s (Last-Event-ID: %s)\n", r->reconnects, (long long)r->delay_ms,
            r->detail ? r->detail : pr_errname(r->reason), r->last_event_id[0] ? r->last_event_id : "none");
}

static void on_rfuture_event(const pr_rfuture_event *ev, void *ud) {
    (void)ud;
    fprintf(stderr, "* %s (poll %d)%s%s\n", ev->name, ev->iteration + 1, ev->detail ? ": " : "",
            ev->detail ? ev->detail : "");
}

static void print_head(const pr_http_response *r) {
    pr_slice reason = pr_http_reason(r);
    pr_http_header h;
    size_t i;
    fprintf(stderr, "< HTTP/1.%d %d %.*s\n", pr_http_version_minor(r), pr_http_status(r), (int)reason.len, reason.ptr);
    for (i = 0; pr_http_header_at(r, i, &h) == PR_OK; i++)
        fprintf(stderr, "< %.*s: %.*s\n", (int)h.name.len, h.name.ptr, (int)h.value.len, h.value.ptr);
}

/* ---- sse ---- */

static void print_event(cli *a, const pr_sse_event *ev) {
    if (a->json) {
        pr_buf b = { 0 };
        pr_json_writer w;
        pr_json_writer_init(&w, &b);
        pr_json_begin_object(&w);
        pr_json_key(&w, "id", 2);
        if (ev->id) pr_json_write_string(&w, ev->id, ev->id_len);
        else pr_json_write_null(&w);
        pr_json_key(&w, "event", 5);
        pr_json_write_string(&w, ev->type, ev->type_len);
        pr_json_key(&w, "data", 4);
        pr_json_write_string(&w, ev->data, ev->data_len);
        pr_json_end_object(&w);
        if (pr_json_writer_finish(&w) == PR_OK) printf("%s\n", b.data);
        pr_buf_deinit(&b);
    } else {
        const char *p = ev->data, *end = ev->data + ev->data_len;
        printf("event: %.*s\n", (int)ev->type_len, ev->type);
        if (ev->id) printf("id: %.*s\n", (int)ev->id_len, ev->id);
        for (;;) {
            const char *nl = (const char *)memchr(p, '\n', (size_t)(end - p));
            printf("data: %.*s\n", (int)((nl ? nl : end) - p), p);
            if (!nl) break;
            p = nl + 1;
        }
        putchar('\n');
    }
    fflush(stdout);
}

static int cmd_sse(cli *a, const char *url) {
    pr_sse_stream_opts o;
    pr_sse *s = NULL;
    pr_sse_event ev;
    pr_err_info e;
    long n = 0;
    int rc;
    memset(&o, 0, sizeof o);
    memset(&e, 0, sizeof e);
    o.client = a->client;
    o.method = a->method ? a->method : a->body ? "POST" : NULL;
    o.body = a->body;
    o.body_len = a->body_len;
    o.repeatable = a->repeatable;
    o.headers = a->headers;
    o.last_event_id = a->last_event_id;
    o.open_attempts = a->retries + 1;
    o.idle_timeout_ms = a->idle_ms ? a->idle_ms : -1;
    if (a->verbose) o.observer.on_reconnect = on_sse_reconnect;
    if ((rc = pr_sse_open(&s, url, &o, &e, a->deadline)) == PR_ECLOSED) { /* 204: the server says stop */
        if (a->verbose) fprintf(stderr, "* end: %s\n", e.msg);
        return EXIT_OK;
    }
    if (rc != PR_OK) return fail(url, rc, &e);
    while (a->max_events < 0 || n < a->max_events) {
        rc = pr_sse_next(s, &ev, a->deadline);
        if (rc == PR_ELIMIT) { /* one event over a limit was dropped: say so, go on */
            pr_sse_last_error(s, &e);
            fail(url, rc, &e);
            continue;
        }
        if (rc != PR_OK) break;
        print_event(a, &ev);
        n++;
    }
    if (rc != PR_OK) pr_sse_last_error(s, &e);
    if (rc == PR_ECLOSED) { /* the server ended it for good (a 204, a POST stream's end) */
        if (a->verbose) fprintf(stderr, "* end: %s\n", e.msg);
        rc = PR_OK;
    }
    pr_sse_destroy(s);
    return rc == PR_OK ? EXIT_OK : fail(url, rc, &e);
}

/* ---- get ---- */

static void progress(int64_t t0, int64_t *last, uint64_t got, const pr_slice *total, int done) {
    int64_t now = pr_now();
    if (now - t0 < 1000 || (!done && now - *last < 200)) return;
    *last = now;
    if (total) fprintf(stderr, "\r%llu of %.*s bytes", (unsigned long long)got, (int)total->len, total->ptr);
    else fprintf(stderr, "\r%llu bytes", (unsigned long long)got);
    if (done) fputc('\n', stderr);
}

static int cmd_get(cli *a, const char *url) {
    pr_http_response *r = NULL;
    pr_err_info e;
    FILE *out = stdout;
    static char buf[65536];
    uint64_t got = 0;
    int64_t t0 = pr_now(), last = 0;
    int show = isatty(2), status, rc;
    ptrdiff_t n;
    const char *m = a->method ? a->method : a->body ? "POST" : "GET";
    memset(&e, 0, sizeof e);
    rc = pr_http_client_send(a->client, &r, m, url, a->headers, a->body, a->body_len, &e, a->deadline);
    if (rc != PR_OK) return fail(url, rc, &e);
    if (a->verbose) print_head(r);
    if ((status = pr_http_status(r)) >= 400) {
        pr_slice reason = pr_http_reason(r);
        e.code = PR_EHTTP;
        e.http_status = status;
        snprintf(e.msg, sizeof e.msg, "the server answered status %d %.*s", status, (int)reason.len, reason.ptr);
        pr_http_response_destroy(r);
        return fail(url, PR_EHTTP, &e);
    }
    if (a->output && !(out = fopen(a->output, "wb"))) {
        snprintf(e.msg, sizeof e.msg, "cannot open %s: %s", a->output, strerror(errno));
        pr_http_response_destroy(r);
        return fail("get", PR_EINVAL, &e);
    }
    while ((n = pr_http_read(r, buf, sizeof buf, a->deadline)) > 0) {
        if (fwrite(buf, 1, (size_t)n, out) != (size_t)n) break;
        got += (uint64_t)n;
        if (show) progress(t0, &last, got, pr_http_header_get(r, "Content-Length"), 0);
    }
    if (show) progress(t0, &last, got, pr_http_header_get(r, "Content-Length"), 1);
    rc = n == PR_ECLOSED ? PR_OK : n > 0 ? PR_EIO : (int)n;
    if (rc == PR_EIO && n > 0) snprintf(e.msg, sizeof e.msg, "cannot write the body: %s", strerror(errno));
    else if (rc != PR_OK) pr_http_last_error(r, &e);
    if (fflush(out) != 0 && rc == PR_OK) {
        rc = PR_EIO;
        snprintf(e.msg, sizeof e.msg, "cannot write the body: %s", strerror(errno));
    }
    if (out != stdout) fclose(out);
    pr_http_response_destroy(r);
    return rc == PR_OK ? EXIT_OK : fail(url, rc, &e);
}

/* ---- ds ---- */

static int is_json_type(const char *ct) {
    size_t n = strcspn(ct, "; ");
    return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) || (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

/* Print a read's chunk: a JSON stream's messages one per line, bytes as they are. */
static int print_chunk(const pr_ds_chunk *c) {
    if (c->items) {
        pr_buf b = { 0 };
        size_t i, n = pr_json_len(c->items);
        int rc = PR_OK;
        for (i = 0; i < n && rc == PR_OK; i++) {
            pr_buf_clear(&b);
            if ((rc = pr_json_to_buf(pr_json_at(c->items, i), &b)) == PR_OK) printf("%s\n", b.data);
        }
        pr_buf_deinit(&b);
        if (rc != PR_OK) return rc;
    } else if (c->len) {
        fwrite(c->data, 1, c->len, stdout);
    }
    fflush(stdout);
    return PR_OK;
}

static int ds_read_cmd(cli *a, const char *what, int live) {
    pr_ds_read_opts o;
    pr_ds_read *rd = NULL;
    pr_ds_chunk c;
    pr_err_info e;
    const char *off;
    int rc;
    memset(&o, 0, sizeof o);
    memset(&e, 0, sizeof e);
    o.live = live;
    o.open_attempts = a->retries + 1;
    o.idle_timeout_ms = a->idle_ms ? a->idle_ms : -1;
    if ((rc = pr_ds_read_open(&rd, a->ds, a->offset ? a->offset : "-1", &o, &e)) != PR_OK) return fail(what, rc, &e);
    while ((rc = pr_ds_read_next(rd, &c, a->deadline)) == PR_OK)
        if ((rc = print_chunk(&c)) != PR_OK) break;
    if (rc == PR_ECLOSED) rc = PR_OK; /* caught up (read), or the stream closed (tail) */
    else pr_ds_read_last_error(rd, &e);
    off = pr_ds_read_offset(rd, NULL);
    fprintf(stderr, "next-offset: %s\n", off ? off : "");
    pr_ds_read_destroy(rd);
    if (rc == PR_EHTTP && e.http_status == 400 && a->offset) { /* most likely the offset */
        size_t n = strlen(e.msg);
        snprintf(e.msg + n, sizeof e.msg - n, " (--offset takes an offset the server gave, -1 or now)");
    }
    return rc == PR_OK ? EXIT_OK : fail(what, rc, &e);
}

/* Queue one line of a JSON stream's stdin (blank lines are skipped). */
static int append_json_line(cli *a, pr_slice line, long no, pr_err_info *e) {
    pr_json_doc *doc = NULL;
    pr_json_error je;
    int rc;
    line = pr_slice_trim(line);
    if (!line.len) return PR_OK;
    if (pr_json_parse(&doc, line.ptr, line.len, NULL, &je) != PR_OK) {
        snprintf(e->msg, sizeof e->msg, "stdin line %ld is not JSON: %s", no, je.msg);
        return PR_EINVAL;
    }
    pr_json_doc_destroy(doc);
    if ((rc = pr_ds_producer_append(a->producer, line.ptr, line.len, a->deadline)) != PR_OK)
        pr_ds_producer_last_error(a->producer, e);
    return rc;
}

/* Append stdin through an idempotent producer: each read (bytes) or each
   line (--json) is one message. main flushes it. */
static int ds_append_stdin(cli *a, const char *what, int json) {
    pr_ds_producer_opts po;
    pr_err_info e;
    pr_buf pending = { 0 };
    char id[64], buf[65536];
    long no = 0;
    int rc = PR_OK;
    ptrdiff_t n = 0;
    memset(&po, 0, sizeof po);
    memset(&e, 0, sizeof e);
    snprintf(id, sizeof id, "pristine-%ld-%lld", (long)getpid(), (long long)time(NULL));
    po.producer_id = id;
    po.auto_claim = 1;
    /* a batch the server has not confirmed within this fails the append with
       its cause (a refused connection...) rather than waiting on */
    if (a->deadline == PR_FOREVER) po.delivery_timeout_ms = PRODUCER_DELIVERY_MS;
    else {
        int64_t left = a->deadline - pr_now();
        po.delivery_timeout_ms = left < 1 ? 1 : left > INT_MAX ? INT_MAX : (int)left;
    }
    if ((rc = pr_ds_producer_create(&a->producer, a->ds, &po, &e)) != PR_OK) return fail(what, rc, &e);
    while (rc == PR_OK && (n = read_stdin(a, buf, sizeof buf)) > 0) {
        size_t start = 0, i;
        if (!json) {
            if ((rc = pr_ds_producer_append(a->producer, buf, (size_t)n, a->deadline)) != PR_OK)
                pr_ds_producer_last_error(a->producer, &e);
            continue;
        }
        if ((rc = pr_buf_append(&pending, buf, (size_t)n)) != PR_OK) break;
        for (i = 0; i < pending.len && rc == PR_OK; i++)
            if (pending.data[i] == '\n') {
                rc = append_json_line(a, (pr_slice){ pending.data + start, i - start }, ++no, &e);
                start = i + 1;
            }
        pr_buf_consume(&pending, start);
    }
    if (rc == PR_OK && n < 0) rc = (int)n;
    if (rc == PR_OK && json) rc = append_json_line(a, (pr_slice){ pending.data, pending.len }, ++no, &e);
    pr_buf_deinit(&pending);
    return rc == PR_OK ? EXIT_OK : fail(what, rc, &e);
}

static int ds_append_args(cli *a, const char *what, int json, int first, int count) {
    pr_ds_result res;
    pr_err_info e;
    int i, rc = PR_OK;
    memset(&res, 0, sizeof res);
    memset(&e, 0, sizeof e);
    for (i = first; i < first + count && rc == PR_OK; i++) {
        const char *d = a->pos[i];
        pr_json_doc *doc = NULL;
        pr_json_error je;
        if (json && pr_json_parse(&doc, d, strlen(d), NULL, &je) != PR_OK) {
            snprintf(e.msg, sizeof e.msg, "argument %d is not JSON: %s", i - first + 1, je.msg);
            return fail(what, PR_EINVAL, &e);
        }
        pr_json_doc_destroy(doc);
        pr_ds_result_deinit(&res);
        rc = pr_ds_append(a->ds, d, strlen(d), NULL, &res, &e, a->deadline);
    }
    if (rc == PR_OK) printf("%.*s\n", (int)res.offset.len, res.offset.ptr);
    pr_ds_result_deinit(&res);
    return rc == PR_OK ? EXIT_OK : fail(what, rc, &e);
}

/* One operation that answers with a result: create, head, delete, close. */
static int ds_op(cli *a, const char *op, const char *what, int nargs) {
    pr_ds_result res;
    pr_ds_create_opts co;
    pr_err_info e;
    int rc;
    memset(&res, 0, sizeof res);
    memset(&co, 0, sizeof co);
    memset(&e, 0, sizeof e);
    if (strcmp(op, "create") == 0) {
        rc = pr_ds_create(a->ds, &co, &res, &e, a->deadline);
    } else if (strcmp(op, "head") == 0) {
        if ((rc = pr_ds_head(a->ds, &res, &e, a->deadline)) == PR_OK)
            printf("offset: %.*s\ncontent-type: %.*s\nclosed: %s\n", (int)res.offset.len, res.offset.ptr,
                   (int)res.content_type.len, res.content_type.ptr, res.closed ? "true" : "false");
    } else if (strcmp(op, "delete") == 0) {
        rc = pr_ds_delete(a->ds, &res, &e, a->deadline);
    } else {
        const char *d = nargs > 0 ? a->pos[3] : NULL;
        if ((rc = pr_ds_close(a->ds, d, d ? strlen(d) : 0, &res, &e, a->deadline)) == PR_OK)
            printf("%.*s\n", (int)res.offset.len, res.offset.ptr);
    }
    pr_ds_result_deinit(&res);
    return rc == PR_OK ? EXIT_OK : fail(what, rc, &e);
}

/* Without a content type of its own, the handle learns the stream's (HEAD). */
static int ds_learn_type(cli *a, pr_err_info *e) {
    pr_ds_result res;
    int rc;
    memset(&res, 0, sizeof res);
    rc = pr_ds_head(a->ds, &res, e, a->deadline);
    pr_ds_result_deinit(&res);
    return rc;
}

/* STREAM as a URL: as given, or a name after $STREAM_URL (--url). */
static char *ds_url(cli *a, const char *stream) {
    const char *base = a->url_base ? a->url_base : getenv("STREAM_URL");
    size_t n;
    char *u;
    if (strncmp(stream, "http://", 7) == 0 || strncmp(stream, "https://", 8) == 0) base = NULL;
    else if (!base || !*base) base = "http://localhost:4437/v1/stream";
    n = base ? strlen(base) : 0;
    while (n && base[n - 1] == '/') n--;
    if (!(u = (char *)malloc(n + strlen(stream) + 2))) return NULL;
    if (base) sprintf(u, "%.*s/%s", (int)n, base, stream[0] == '/' ? stream + 1 : stream);
    else strcpy(u, stream);
    return u;
}

static int cmd_ds(cli *a) {
    static const char *const ops[] = { "create", "append", "read", "tail", "head", "delete", "close" };
    const char *op = a->npos > 1 ? a->pos[1] : "";
    pr_ds_opts o;
    pr_err_info e;
    char *url, *what;
    int rc, known = 0, json, nargs = a->npos - 3;
    int learns_type = !strcmp(op, "read") || !strcmp(op, "tail") || !strcmp(op, "append") ||
                      (!strcmp(op, "close") && nargs > 0);
    size_t i;
    for (i = 0; i < sizeof ops / sizeof ops[0]; i++) known |= strcmp(op, ops[i]) == 0;
    if (a->npos < 2) return usage_error("ds: %s", "missing operation (create, append, read, tail, head, delete, close)");
    if (!known) return usage_error("ds: unknown operation '%s'", op);
    if (a->npos < 3) return usage_error("ds %s: STREAM is missing", op);
    if (nargs > 0 && strcmp(op, "append") != 0 && (strcmp(op, "close") != 0 || nargs > 1))
        return usage_error("ds: unexpected argument '%s'", a->pos[3]);
    if (a->live && strcmp(a->live, "sse") != 0 && strcmp(a->live, "long-poll") != 0)
        return usage_error("--live must be sse or long-poll, not '%s'", a->live);
    if (!(url = ds_url(a, a->pos[2])) || !(what = (char *)malloc(strlen(url) + 16))) {
        free(url);
        return fail("ds", PR_ENOMEM, NULL);
    }
    sprintf(what, "ds %s %s", op, url); /* a failure names the operation the user ran */
    memset(&o, 0, sizeof o);
    memset(&e, 0, sizeof e);
    o.client = a->client;
    o.headers = a->headers;
    o.content_type = a->json ? "application/json" : a->content_type;
    o.retry.max_retries = a->retries ? a->retries : PR_RETRY_OFF;
    if ((rc = pr_ds_open(&a->ds, url, &o, &e)) != PR_OK) {
        rc = fail(what, rc, &e);
    } else if (learns_type && !o.content_type && (rc = ds_learn_type(a, &e)) != PR_OK) {
        rc = fail(what, rc, &e); /* a JSON stream's messages are JSON values; data goes in the stream's type */
    } else if (strcmp(op, "read") == 0 || strcmp(op, "tail") == 0) {
        int live = strcmp(op, "read") == 0 ? PR_DS_LIVE_NONE
                   : a->live && strcmp(a->live, "long-poll") == 0 ? PR_DS_LIVE_LONG_POLL : PR_DS_LIVE_SSE;
        rc = ds_read_cmd(a, what, live);
    } else if (strcmp(op, "append") == 0) {
        json = is_json_type(pr_ds_content_type(a->ds));
        if (nargs > 0) rc = ds_append_args(a, what, json, 3, nargs);
        else rc = ds_append_stdin(a, what, json);
    } else {
        rc = ds_op(a, op, what, nargs);
    }
    free(what);
    free(url);
    return rc;
}

/* ---- future ---- */

static int cmd_future(cli *a, const char *url, const char *id) {
    pr_rfuture_poller_opts po;
    pr_rfuture_poller *p = NULL;
    pr_future *f = NULL;
    pr_err_info e;
    pr_buf b = { 0 };
    char *what = (char *)malloc(strlen(url) + strlen(id) + 16);
    int rc;
    memset(&po, 0, sizeof po);
    memset(&e, 0, sizeof e);
    if (!what) return fail("future", PR_ENOMEM, NULL);
    sprintf(what, "future %s %s", url, id); /* a failure names the URL and the id */
    po.base_url = url;
    po.open_attempts = a->retries + 1;
    if (a->verbose) po.observer.on_event = on_rfuture_event;
    if ((rc = pr_rfuture_poller_create(&p, a->client, &po, &e)) != PR_OK) { /* the client: TLS, idle limit */
        rc = fail(what, rc, &e);
        free(what);
        return rc;
    }
    if ((rc = pr_rfuture_start(&f, p, id, NULL)) == PR_OK) {
        rc = pr_future_await(f, NULL, a->deadline);
        if (rc == PR_OK) rc = pr_json_to_buf(pr_rfuture_result(f), &b);
        if (rc == PR_OK) printf("%s\n", b.data);
        else (void)pr_future_last_error(f, &e); /* rejected, or pending after a failed poll: why */
        pr_future_cancel(f);
        pr_future_destroy(f);
    }
    pr_buf_deinit(&b);
    pr_rfuture_poller_destroy(p);
    if (rc != PR_OK) rc = fail(what, rc, &e);
    free(what);
    return rc;
}

/* ---- the command's task ---- */

static int run(void *ud) {
    cli *a = (cli *)ud;
    const char *c = a->pos[0];
    if (strcmp(c, "sse") == 0 && a->npos == 2) return cmd_sse(a, a->pos[1]);
    if (strcmp(c, "get") == 0 && a->npos == 2) return cmd_get(a, a->pos[1]);
    if (strcmp(c, "future") == 0 && a->nheaders) return usage_error("%s: -H is not supported (a poll sends the profile's headers)", c);
    if (strcmp(c, "future") == 0 && a->npos == 3) return cmd_future(a, a->pos[1], a->pos[2]);
    if (strcmp(c, "ds") == 0) return cmd_ds(a);
    if (strcmp(c, "sse") && strcmp(c, "get") && strcmp(c, "future")) return usage_error("unknown command '%s'", c);
    return usage_error("%s: wrong number of arguments", c);
}

/* ---- arguments ---- */

static int parse_long(const char *s, long lo, long *out) {
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo) return -1;
    *out = v;
    return 0;
}

/* Fill a from argv. Returns -1 to go on, else the exit code (help, version, usage). */
static int parse_args(cli *a, int argc, char **argv) {
    int i, opts = 1;
    for (i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int need = 0;
        long n;
        double t;
        char *end;
#define TAKES(name) (strcmp(s, name) == 0 && (need = 1, v != NULL) && (i++, 1))
        if (!opts || s[0] != '-' || !s[1]) {
            if (a->npos == MAX_ARGS) return usage_error("%s", "too many arguments");
            a->pos[a->npos++] = s;
        } else if (strcmp(s, "--") == 0) {
            opts = 0;
        } else if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            fputs(usage_text[0], stdout);
            fputs(usage_text[1], stdout);
            return EXIT_OK;
        } else if (strcmp(s, "--version") == 0) {
            printf("pristine %s\n", PRISTINE_VERSION);
            return EXIT_OK;
        } else if (strcmp(s, "-v") == 0 || strcmp(s, "--verbose") == 0) {
            a->verbose = 1;
        } else if (strcmp(s, "--json") == 0) {
            a->json = 1;
        } else if (strcmp(s, "--repeatable") == 0) {
            a->repeatable = 1;
        } else if (TAKES("-H") || TAKES("--header")) {
            if (a->nheaders == MAX_HEADERS) return usage_error("more than %s headers", "32");
            a->headers[a->nheaders++] = v;
        } else if (TAKES("--timeout")) {
            t = strtod(v, &end);
            if (end == v || *end || !(t > 0) || t > 1e9) return usage_error("--timeout: '%s' is no number of seconds", v);
            a->deadline = pr_deadline_in((int64_t)(t * 1000));
        } else if (TAKES("--idle-timeout")) {
            t = strtod(v, &end);
            if (end == v || *end || !(t >= 0) || t > 2e6) return usage_error("--idle-timeout: '%s' is no number of seconds", v);
            a->idle_ms = t > 0 && t < 0.001 ? 1 : (int)(t * 1000);
        } else if (TAKES("--retries")) {
            if (parse_long(v, 0, &n) || n > 1000) return usage_error("--retries: '%s' is no count", v);
            a->retries = (int)n;
        } else if (TAKES("--max-events")) {
            if (parse_long(v, 0, &n)) return usage_error("--max-events: '%s' is no count", v);
            a->max_events = n;
        } else if (TAKES("--cacert")) a->cacert = v;
        else if (TAKES("--cert")) a->cert = v;
        else if (TAKES("--key")) a->key = v;
        else if (TAKES("-X") || TAKES("--request")) a->method = v;
        else if (TAKES("-d") || TAKES("--data")) a->data = v;
        else if (TAKES("--last-event-id")) a->last_event_id = v;
        else if (TAKES("-o") || TAKES("--output")) a->output = v;
        else if (TAKES("--content-type")) a->content_type = v;
        else if (TAKES("--live")) a->live = v;
        else if (TAKES("--offset")) a->offset = v;
        else if (TAKES("--url")) a->url_base = v;
        else if (TAKES("--auth")) a->auth = v;
        else return usage_error(need ? "%s needs a value" : "unknown option '%s'", s);
#undef TAKES
    }
    if (a->npos == 0) return usage_error("%s", "missing command (sse, get, ds, future)");
    return -1;
}

/* What the command needs before its task runs: the body, the
   Authorization line, the client. Returns -1 to go on, else an exit code. */
static int prepare(cli *a) {
    pr_http_client_opts co;
    pr_err_info e;
    struct stat st;
    const char *auth = a->auth ? a->auth : getenv("STREAM_AUTH");
    int rc;
    if (a->data && a->data[0] == '@') {
        if (read_file(a->data + 1, &a->body, &a->body_len) != 0) {
            fprintf(stderr, "pristine: -d: cannot read %s: %s\n", a->data + 1, strerror(errno));
            return EXIT_USAGE;
        }
    } else if (a->data) {
        a->body_len = strlen(a->data);
        if (!(a->body = (char *)malloc(a->body_len + 1))) return fail("-d", PR_ENOMEM, NULL);
        memcpy(a->body, a->data, a->body_len + 1);
    }
    if (strcmp(a->pos[0], "ds") == 0 && auth && *auth) {
        if (!(a->auth_line = (char *)malloc(strlen(auth) + 16))) return fail("--auth", PR_ENOMEM, NULL);
        sprintf(a->auth_line, "Authorization: %s", auth);
        a->headers[a->nheaders++] = a->auth_line;
    }
    if (fstat(0, &st) == 0 && !S_ISREG(st.st_mode)) { /* a pipe or terminal: waits that Ctrl-C can end */
        int fl = fcntl(0, F_GETFL);
        a->stdin_nonblock = fl >= 0 && fcntl(0, F_SETFL, fl | O_NONBLOCK) == 0;
    }
    memset(&co, 0, sizeof co);
    memset(&e, 0, sizeof e);
    co.max_redirects = 10;
    co.idle_timeout_ms = a->idle_ms; /* 0 = off */
    co.tls.ca_file = a->cacert;
    co.tls.cert_file = a->cert;
    co.tls.key_file = a->key;
    co.fetch_max_bytes = (size_t)64 << 20; /* a Durable Stream's catch-up answer is held whole */
    co.retry.max_retries = a->retries ? a->retries : PR_RETRY_OFF;
    if (a->verbose) co.observer.on_event = on_http_event;
    if ((rc = pr_http_client_create(&a->client, &co, &e)) != PR_OK) return fail("client", rc, &e);
    return -1;
}

/* After an interruption (or a failure) flush what a producer holds. */
static int finish_producer(cli *a, int code) {
    /* the delivery timeout ends it first; this only guards */
    int64_t dl = pr_deadline_min(a->deadline, pr_deadline_in(PRODUCER_DELIVERY_MS + 5000));
    pr_err_info e;
    int rc = pr_ds_producer_flush(a->producer, dl);
    if (rc != PR_OK) {
        memset(&e, 0, sizeof e);
        pr_ds_producer_last_error(a->producer, &e);
        fail("ds append: flush", rc, &e);
        if (code == EXIT_OK) code = exit_code(rc);
    } else if (code == EXIT_OK) {
        printf("%s\n", pr_ds_producer_offset(a->producer));
    }
    pr_ds_producer_destroy(a->producer);
    a->producer = NULL;
    return code;
}

int main(int argc, char **argv) {
    static cli a;
    pr_spawn_opts so;
    pr_task *worker = NULL;
    pr_signal_watch *w = NULL;
    pr_err_info e;
    int code, fl;
    a.deadline = PR_FOREVER;
    a.retries = 2;
    a.idle_ms = 60000;
    a.max_events = -1;
    if ((code = parse_args(&a, argc, argv)) >= 0) return code;
    if ((code = prepare(&a)) < 0) {
        memset(&so, 0, sizeof so);
        so.stack_size = 256 * 1024;
        memset(&e, 0, sizeof e);
        if ((code = pr_go(&worker, run, &a, &so)) != PR_OK) {
            code = fail("task", code, NULL);
        } else {
            if (pr_signal_watch_start(&w, NULL, 0, worker, &e) != PR_OK) fail("signals", e.code, &e);
            pr_join(worker, &code, PR_FOREVER);
            if (w && pr_signal_wait(w, 0) > 0) code = EXIT_INTR;
            if (a.producer) code = finish_producer(&a, code);
            pr_signal_watch_stop(w);
        }
    }
    if (a.stdin_nonblock && (fl = fcntl(0, F_GETFL)) >= 0) fcntl(0, F_SETFL, fl & ~O_NONBLOCK);
    pr_ds_producer_destroy(a.producer);
    pr_ds_destroy(a.ds);
    pr_http_client_destroy(a.client);
    free(a.body);
    free(a.auth_line);
    fflush(stdout);
    pr_sched_destroy();
    return code;
}
