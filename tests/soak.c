/* soak.c - `make soak`: every reader and the producer through fault-injecting
   proxies (tools/faultproxy.c) for a while; nothing may be lost, repeated or
   reordered.

       build/soak [--seconds S] [--faults F] [--seed N] [-v [-v]]
       (make soak SOAK_SECONDS=S SOAK_FAULTS=F SOAK_SEED=N)

   One process, one scheduler, on 127.0.0.1 only: the test server
   (tools/testserver.c, in-process), the reference Durable Streams server
   (node tools/ds-server.mjs build/ds, a child that stops when our end of
   its stdin closes, and after its own lifetime anyway), and five proxies,
   one in front of each party, each with its own seed, so every line's
   fault count is the faults that party met:

     eventsource  pr_sse_open/pr_sse_next on the test server's
                  /sse?id=1&flood=20: numbered events with a comment flood
                  before each; a reconnect resumes with Last-Event-ID
     ds-long-poll pr_ds_read_next, PR_DS_LIVE_LONG_POLL, from the start
     ds-sse       pr_ds_read_next, PR_DS_LIVE_SSE, from the start
     ds-consumer  pr_ds_consumer (PR_DS_LIVE_AUTO, SSE first)
     ds-producer  pr_ds_producer appending 9-byte records "r0000001\n",
                  "r0000002\n", ... (request timeout 1 s; the proxy's
                  outages and stalls last 2-4.5 s)

   The run ends after S seconds (150) or once the proxies injected F faults
   (0 = no bound), whichever comes first. Then the producer closes the
   stream (faults still on), the readers must reach the closed end, and the
   stream, read directly, must hold exactly the records appended, once, in
   order. Watchdog: a reader that lacks a record the server acknowledged,
   or an event stream without a new event, fails the run when that lasts
   SOAK_RECOVER_MS (6 s: the 2 s idle timeout, the 1 s backoff cap and 3 s
   to spare) after the last fault on its path was over (fp_quiet_at), or
   90 s in all. Every wait is bounded; alarm() ends a run that hangs
   anyway.

   Prints one line per party,
       soak: <kind> faults=N items=N lost=0 duplicated=0 reordered=0
   and exits 0 only when every count is 0 and nothing else went wrong. */
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#include "../tools/faultproxy.c"
#include "../tools/testserver.c"

#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>

#define SOAK_IDLE_MS 2000      /* every reader's idle timeout */
#define SOAK_STALL_MS 3000     /* the proxies' stalls: past it */
#define SOAK_OUTAGE_MS 2000    /* refuse/restart outages: 2-3 s, past the producer's 1 s */
#define SOAK_BACKOFF_MAX 1000  /* every reconnect backoff's cap */
#ifndef SOAK_RECOVER_MS /* (a build with a tiny one shows the watchdog firing) */
#define SOAK_RECOVER_MS (SOAK_IDLE_MS + SOAK_BACKOFF_MAX + 3000) /* after the last fault (above) */
#endif
#define SOAK_HANG_MS 90000     /* no new item at all for this long, faults or not: a hang */
#define SOAK_REC_LEN 9         /* "r0000001\n" */

/* One party's account of what it received. */
typedef struct track {
    const char *kind;
    fp_proxy *proxy;
    long faults;                /* what its proxy injected (kept when it stops) */
    long transient;             /* transient failures handed back (a read stays usable) */
    long items, distinct, dup, reord, bad, max;
    unsigned char *seen;        /* seen[k]: record k arrived */
    long cap;
    char part[SOAK_REC_LEN];    /* a record split across chunks */
    size_t plen;
    int64_t last_progress;
    int64_t max_gap;            /* the longest wait between two new items (ms) */
    int closed;                 /* reached the stream's closed end */
} track;

static struct {
    int seconds, verbose;
    long max_faults;
    uint64_t seed;
    int stop;                   /* 1 = stop appending, the end phase begins */
    int failed;
    char why[512];
    long appended;              /* records handed to the producer */
    int64_t acked_t[4096];      /* (time, acknowledged records) samples for the watchdog */
    long acked_n[4096];
    int nacked;
    pr_ds_producer *producer;
    char ds_base[160];
    char stream[64];
    track es, lp, sse, cons, prod;
} S;

static void fail(const char *fmt, ...) {
    va_list ap;
    if (S.failed) return;
    S.failed = 1;
    S.stop = 1;
    va_start(ap, fmt);
    vsnprintf(S.why, sizeof S.why, fmt, ap);
    va_end(ap);
    fprintf(stderr, "soak: FAILED: %s\n", S.why);
}

static void track_add(track *t, long k) {
    int64_t now = pr_now();
    t->items++;
    if (t->last_progress && now - t->last_progress > t->max_gap) t->max_gap = now - t->last_progress;
    t->last_progress = now;
    if (k < 1) {
        t->bad++;
        return;
    }
    if (k >= t->cap) {
        long cap = t->cap ? t->cap : 4096;
        unsigned char *n;
        while (cap <= k) cap *= 2;
        if (!(n = (unsigned char *)realloc(t->seen, (size_t)cap))) {
            fail("%s: out of memory", t->kind);
            return;
        }
        memset(n + t->cap, 0, (size_t)(cap - t->cap));
        t->seen = n;
        t->cap = cap;
    }
    if (t->seen[k]) {
        t->dup++;
        return;
    }
    t->seen[k] = 1;
    t->distinct++;
    if (k < t->max) t->reord++;
    if (k > t->max) t->max = k;
}

/* Records from a byte stream: "r%07ld\n" each, split anywhere. */
static void track_bytes(track *t, const char *p, size_t n) {
    while (n) {
        size_t take = SOAK_REC_LEN - t->plen < n ? SOAK_REC_LEN - t->plen : n;
        memcpy(t->part + t->plen, p, take);
        t->plen += take;
        p += take;
        n -= take;
        if (t->plen == SOAK_REC_LEN) {
            char *end;
            long k = t->part[0] == 'r' && t->part[8] == '\n' ? strtol(t->part + 1, &end, 10) : -1;
            if (k > 0 && end != t->part + 8) k = -1;
            track_add(t, k);
            t->plen = 0;
        }
    }
}

/* Lost: of the n records 1..n, the ones that never came. */
static long track_lost(const track *t, long n) {
    long k, lost = 0;
    for (k = 1; k <= n; k++)
        if (k >= t->cap || !t->seen[k]) lost++;
    return lost;
}

static long faults_total(void) {
    return fp_faults(S.es.proxy) + fp_faults(S.lp.proxy) + fp_faults(S.sse.proxy) + fp_faults(S.cons.proxy) +
           fp_faults(S.prod.proxy);
}

/* -v -v: the consumer's requests and retries, with the time. */
static void cons_request(const pr_ds_event *ev, void *user_data) {
    (void)user_data;
    if (ev->kind == PR_DS_EVENT_REQUEST_START || ev->kind == PR_DS_EVENT_REQUEST_STOP ||
        ev->kind == PR_DS_EVENT_REQUEST_EXCEPTION)
        fprintf(stderr, "soak: %lld ds-consumer request %s %s status %d %s %lld ms %s\n", (long long)pr_now(),
                ev->kind == PR_DS_EVENT_REQUEST_START ? "start" : ev->kind == PR_DS_EVENT_REQUEST_STOP ? "stop" : "exc",
                ev->url ? strchr(ev->url, '?') ? strchr(ev->url, '?') : "" : "", ev->status, pr_errname(ev->error),
                (long long)ev->duration_ms, ev->err ? ev->err->msg : "");
}
static void cons_retry(const pr_retry_info *info, void *user_data) {
    (void)user_data;
    fprintf(stderr, "soak: %lld ds-consumer retry in %lld ms\n", (long long)pr_now(), (long long)info->delay_ms);
}

/* A handle on the stream through a proxy (port 0: directly). */
static int open_ds(pr_ds **out, uint16_t port) {
    pr_ds_opts o;
    char url[256];
    pr_err_info err;
    int rc;
    pr_backoff b = {PR_BACKOFF_EXPONENTIAL, PR_JITTER_DOWN, 100, SOAK_BACKOFF_MAX, 0.25, 0.0, 0.0};
    memset(&o, 0, sizeof o);
    o.content_type = "text/plain";
    o.retry.max_retries = PR_RETRY_UNLIMITED;
    o.retry.backoff = b;
    if (S.verbose > 1 && S.cons.proxy && port == fp_port(S.cons.proxy)) {
        o.observer.on_event = cons_request;
        o.retry.on_retry = cons_retry;
    }
    if (port) snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/stream/%s", (unsigned)port, S.stream);
    else snprintf(url, sizeof url, "%s/v1/stream/%s", S.ds_base, S.stream);
    if ((rc = pr_ds_open(out, url, &o, &err)) != PR_OK) fail("pr_ds_open %s: %s: %s", url, pr_errname(rc), err.msg);
    return rc;
}

/* ---- the parties ---- */

static int es_task(void *arg) {
    pr_sse *s = NULL;
    pr_sse_stream_opts o;
    pr_sse_event ev;
    pr_err_info err;
    char url[256];
    int rc;
    pr_backoff b = {PR_BACKOFF_EXPONENTIAL, PR_JITTER_DOWN, 100, SOAK_BACKOFF_MAX, 0.25, 0.0, 0.0};
    (void)arg;
    memset(&o, 0, sizeof o);
    o.idle_timeout_ms = SOAK_IDLE_MS;
    o.open_attempts = -1;
    o.backoff = b;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/sse?events=2000000000&id=1&retry=100&interval_ms=5&flood=20",
             (unsigned)fp_port(S.es.proxy));
    S.es.last_progress = pr_now();
    if ((rc = pr_sse_open(&s, url, &o, &err, pr_deadline_in(SOAK_HANG_MS))) != PR_OK) {
        fail("eventsource: pr_sse_open: %s: %s", pr_errname(rc), err.msg);
        return rc;
    }
    while (!S.stop) {
        rc = pr_sse_next(s, &ev, pr_deadline_in(250));
        if (rc == PR_ETIMEDOUT) continue;
        if (rc != PR_OK) {
            pr_sse_last_error(s, &err);
            fail("eventsource: pr_sse_next: %s: %s", pr_errname(rc), err.msg);
            break;
        }
        { /* exactly what the server sent: id N, data "event N", type message */
            long k = ev.id ? strtol(ev.id, NULL, 10) : -1;
            char want[40];
            int n = snprintf(want, sizeof want, "event %ld", k);
            int exact = k > 0 && (size_t)n == ev.data_len && memcmp(want, ev.data, ev.data_len) == 0 &&
                        ev.type_len == 7 && memcmp(ev.type, "message", 7) == 0;
            track_add(&S.es, exact ? k : -1);
        }
    }
    pr_sse_destroy(s);
    return 0;
}

static int reader_task(void *arg) {
    track *t = (track *)arg;
    pr_ds *ds = NULL;
    pr_ds_read *rd = NULL;
    pr_ds_read_opts ro;
    pr_ds_chunk c;
    pr_err_info err;
    int rc;
    memset(&ro, 0, sizeof ro);
    ro.live = t == &S.lp ? PR_DS_LIVE_LONG_POLL : PR_DS_LIVE_SSE;
    ro.idle_timeout_ms = SOAK_IDLE_MS;
    ro.open_attempts = -1;
    t->last_progress = pr_now();
    if (open_ds(&ds, fp_port(t->proxy)) != PR_OK) return 1;
    if ((rc = pr_ds_read_open(&rd, ds, "-1", &ro, &err)) != PR_OK) {
        fail("%s: pr_ds_read_open: %s: %s", t->kind, pr_errname(rc), err.msg);
        pr_ds_destroy(ds);
        return 1;
    }
    while (!t->closed && !S.failed) {
        rc = pr_ds_read_next(rd, &c, pr_deadline_in(250));
        if (rc == PR_ETIMEDOUT) continue;
        if (rc == PR_OK) {
            track_bytes(t, c.data, c.len);
            if (c.closed) t->closed = 1;
            continue;
        }
        if (rc == PR_ECLOSED) {
            t->closed = 1;
            break;
        }
        pr_ds_read_last_error(rd, &err);
        /* a transient cause whose next wait would pass the deadline: documented,
           and the read stays usable (the watchdog bounds how long this may go on) */
        if (rc == PR_EIO || (rc == PR_EHTTP && (err.http_status == 408 || err.http_status == 429 ||
                                                err.http_status >= 500))) {
            t->transient++;
            continue;
        }
        fail("%s: pr_ds_read_next: %s (status %d): %s", t->kind, pr_errname(rc), err.http_status, err.msg);
    }
    pr_ds_read_destroy(rd);
    pr_ds_destroy(ds);
    return 0;
}

static int cons_batch(const pr_ds_chunk *c, void *user_data) {
    track *t = (track *)user_data;
    track_bytes(t, c->data, c->len);
    if (c->closed) t->closed = 1;
    return 0;
}

static void cons_state(int state, const pr_err_info *why, void *user_data) {
    (void)user_data;
    if (S.verbose)
        fprintf(stderr, "soak: %lld ds-consumer state %d%s%s%s\n", (long long)pr_now(), state, why ? " after " : "",
                why ? pr_errname(why->code) : "", why ? why->msg : "");
}

static int consumer_task(void *arg) {
    track *t = (track *)arg;
    pr_ds *ds = NULL;
    pr_ds_consumer *c = NULL;
    pr_ds_consumer_opts o;
    pr_err_info err;
    int rc;
    memset(&o, 0, sizeof o);
    o.live = PR_DS_LIVE_AUTO;
    o.prefer_sse = 1;
    o.on_batch = cons_batch;
    o.on_state = cons_state;
    o.user_data = t;
    o.idle_timeout_ms = SOAK_IDLE_MS;
    o.open_attempts = -1;
    t->last_progress = pr_now();
    if (open_ds(&ds, fp_port(t->proxy)) != PR_OK) return 1;
    if ((rc = pr_ds_consumer_start(&c, ds, &o, &err)) != PR_OK) {
        fail("ds-consumer: start: %s: %s", pr_errname(rc), err.msg);
        pr_ds_destroy(ds);
        return 1;
    }
    while (!S.failed && (rc = pr_ds_consumer_wait(c, pr_deadline_in(250))) == PR_ETIMEDOUT) {
    }
    if (rc == PR_ECLOSED) t->closed = 1;
    else if (!S.failed) {
        pr_ds_consumer_last_error(c, &err);
        fail("ds-consumer: stopped: %s (status %d): %s", pr_errname(rc), err.http_status, err.msg);
    }
    pr_ds_consumer_stop(c);
    pr_ds_destroy(ds);
    return 0;
}

static void prod_error(int rc, const pr_err_info *err, void *user_data) {
    (void)user_data;
    fail("ds-producer: failed: %s (status %d): %s", pr_errname(rc), err->http_status, err->msg);
}

static int producer_task(void *arg) {
    pr_ds *ds = NULL;
    pr_ds_producer_opts po;
    pr_err_info err;
    char rec[32];
    const char *final = NULL;
    int rc = PR_OK;
    (void)arg;
    if (open_ds(&ds, fp_port(S.prod.proxy)) != PR_OK) return 1;
    memset(&po, 0, sizeof po);
    po.producer_id = "soak";
    po.linger_ms = 5;
    po.request_timeout_ms = 1000;
    po.delivery_timeout_ms = 60000;
    po.on_error = prod_error;
    if ((rc = pr_ds_producer_create(&S.producer, ds, &po, &err)) != PR_OK) {
        fail("ds-producer: create: %s: %s", pr_errname(rc), err.msg);
        pr_ds_destroy(ds);
        return 1;
    }
    while (!S.stop) {
        snprintf(rec, sizeof rec, "r%07ld\n", S.appended + 1);
        if ((rc = pr_ds_producer_append(S.producer, rec, SOAK_REC_LEN, pr_deadline_in(SOAK_HANG_MS))) != PR_OK)
            break;
        S.appended++;
        if (S.appended % 4 == 0 && (rc = pr_sleep(pr_deadline_in(10))) != PR_OK) break;
    }
    if (rc == PR_OK) rc = pr_ds_producer_close(S.producer, NULL, 0, &final, pr_deadline_in(60000));
    if (rc != PR_OK) {
        pr_ds_producer_last_error(S.producer, &err);
        fail("ds-producer: %s after %ld records: %s (status %d): %s", S.stop ? "close" : "append", S.appended,
             pr_errname(rc), err.http_status, err.msg);
    } else if (S.verbose) fprintf(stderr, "soak: closed at %s after %ld records\n", final, S.appended);
    S.prod.closed = rc == PR_OK;
    pr_ds_producer_destroy(S.producer);
    S.producer = NULL;
    pr_ds_destroy(ds);
    return 0;
}

/* Whether t has waited too long for an item there since `since`: more than
   SOAK_RECOVER_MS after the last fault on its path was over, or
   SOAK_HANG_MS in all. */
static void check_recovery(track *t, int64_t since, int64_t now) {
    int64_t quiet = fp_quiet_at(t->proxy), from = since > quiet ? since : quiet;
    if (now - from > SOAK_RECOVER_MS)
        fail("%s: did not recover: no new item %lld ms after the last fault was over (%lld ms after one was there)",
             t->kind, (long long)(now - quiet), (long long)(now - since));
    else if (now - since > SOAK_HANG_MS)
        fail("%s: no new item for %lld ms", t->kind, (long long)(now - since));
}

/* Every 250 ms: a reader missing a record the server acknowledged, or an
   event stream without a new event (the server sends one every 5 ms), must
   catch up within SOAK_RECOVER_MS of the last fault on its path. */
static int watchdog_task(void *arg) {
    track *ds_readers[3];
    int i, j;
    (void)arg;
    ds_readers[0] = &S.lp;
    ds_readers[1] = &S.sse;
    ds_readers[2] = &S.cons;
    while (pr_sleep(pr_deadline_in(250)) == PR_OK) {
        int64_t now = pr_now();
        pr_ds_producer_stats st;
        if (S.producer && pr_ds_producer_stats_get(S.producer, &st) == PR_OK) {
            if (S.nacked == 4096) { /* keep the newest half */
                memmove(S.acked_t, S.acked_t + 2048, 2048 * sizeof S.acked_t[0]);
                memmove(S.acked_n, S.acked_n + 2048, 2048 * sizeof S.acked_n[0]);
                S.nacked = 2048;
            }
            S.acked_t[S.nacked] = now;
            S.acked_n[S.nacked++] = (long)(st.acked_bytes / SOAK_REC_LEN);
        }
        for (i = 0; i < 3; i++) { /* since when has the server had a record this reader lacks? */
            track *t = ds_readers[i];
            for (j = 0; !t->closed && j < S.nacked; j++)
                if (S.acked_n[j] > t->distinct) {
                    check_recovery(t, S.acked_t[j] > t->last_progress ? S.acked_t[j] : t->last_progress, now);
                    break;
                }
        }
        if (!S.stop) check_recovery(&S.es, S.es.last_progress, now);
        if (S.verbose && now / 5000 != (now - 250) / 5000)
            fprintf(stderr, "soak: %lds faults=%ld appended=%ld es=%ld lp=%ld sse=%ld cons=%ld\n",
                    (long)(now / 1000), faults_total(), S.appended, S.es.distinct, S.lp.distinct, S.sse.distinct,
                    S.cons.distinct);
    }
    return 0;
}

/* ---- the reference server ---- */

static pid_t ds_pid = -1;
static int ds_in = -1;

static int ds_start(int lifetime_ms) {
    int out[2], in[2];
    char line[160], life[32];
    size_t len = 0;
    int64_t until = pr_deadline_in(20000);
    if (access("build/ds/node_modules/@durable-streams/server/package.json", R_OK) != 0) {
        fail("the reference server is not installed in build/ds (tools/setup.sh)");
        return -1;
    }
    if (pipe(out) != 0 || pipe(in) != 0) return -1;
    snprintf(life, sizeof life, "%d", lifetime_ms);
    ds_pid = fork();
    if (ds_pid == 0) {
        dup2(out[1], 1);
        dup2(in[0], 0);
        close(out[0]);
        close(in[1]);
        execlp("node", "node", "tools/ds-server.mjs", "build/ds", "0", "500", life, "--stdin", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(in[0]);
    ds_in = in[1];
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    while (len + 1 < sizeof line && pr_now() < until) {
        ssize_t n = read(out[0], line + len, sizeof line - 1 - len);
        if (n > 0) {
            len += (size_t)n;
            line[len] = 0;
            if (strchr(line, '\n')) break;
        } else if (n == 0) break;
        else pr_sleep(pr_deadline_in(20));
    }
    close(out[0]);
    line[len] = 0;
    if (strncmp(line, "listening http://", 17) != 0) {
        fail("the reference server did not start: \"%s\"", line);
        return -1;
    }
    line[strcspn(line, "\r\n")] = 0;
    snprintf(S.ds_base, sizeof S.ds_base, "%s", line + 10);
    return 0;
}

static void ds_stop(void) {
    if (ds_in >= 0) close(ds_in);
    if (ds_pid > 0) {
        kill(ds_pid, SIGTERM);
        waitpid(ds_pid, NULL, 0);
    }
}

/* ---- the run ---- */

static int start_proxy(track *t, const char *kind, uint16_t port, int n) {
    fp_opts o;
    int rc;
    memset(&o, 0, sizeof o);
    t->kind = kind;
    o.to_port = port;
    o.seed = S.seed * 10 + (uint64_t)n;
    o.rate_pct = 60;
    o.at_max = 4096;
    o.after_max_ms = 1500;
    o.stall_ms = SOAK_STALL_MS;
    o.outage_ms = SOAK_OUTAGE_MS;
    o.delay_ms = 1000;
    o.chaos_ms = 6000;
    o.verbose = S.verbose > 1; /* -v -v: every fault */
    if ((rc = fp_start(&t->proxy, &o)) != PR_OK) fail("%s: the proxy did not start: %s", kind, pr_errname(rc));
    return rc;
}

/* The stream read directly after the close: exactly r1..rN, nothing else. */
static void check_content(void) {
    pr_ds *ds = NULL;
    pr_buf all, next;
    pr_err_info err;
    int rc, closed = 0;
    pr_buf_init(&all);
    pr_buf_init(&next);
    S.prod.kind = "ds-producer";
    if (open_ds(&ds, 0) == PR_OK) {
        rc = pr_ds_read_all(ds, "-1", 0, &all, &next, &closed, &err, pr_deadline_in(30000));
        if (rc != PR_OK) fail("ds-producer: read back: %s: %s", pr_errname(rc), err.msg);
        else if (!closed) fail("ds-producer: the stream is not closed");
        track_bytes(&S.prod, all.data, all.len);
        if (S.prod.plen) S.prod.bad++;
        pr_ds_destroy(ds);
    }
    pr_buf_deinit(&all);
    pr_buf_deinit(&next);
}

/* One line; 0 if all is well. */
static int report(track *t, long n) {
    long lost = track_lost(t, n);
    printf("soak: %s faults=%ld items=%ld lost=%ld duplicated=%ld reordered=%ld\n", t->kind, t->faults,
           t->items, lost, t->dup, t->reord);
    if (t->bad || t->max > n || t->plen) {
        printf("soak: %s: %ld malformed records, %ld records past the last appended\n", t->kind, t->bad + (t->plen > 0),
               t->max > n ? t->max - n : 0);
        return 1;
    }
    return lost || t->dup || t->reord;
}

static int usage(void) {
    fprintf(stderr, "usage: soak [--seconds S (150)] [--faults F (0 = no bound)] [--seed N (1)] [-v [-v]]\n");
    return 2;
}

int main(int argc, char **argv) {
    ts_server *ts = NULL;
    ts_opts to;
    pr_group *g = NULL;
    pr_task *wd = NULL;
    track *all[5];
    int i, bad = 0;
    int64_t start, end_by;
    all[0] = &S.es, all[1] = &S.lp, all[2] = &S.sse, all[3] = &S.cons, all[4] = &S.prod;
    S.seconds = 150;
    S.seed = 1;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) S.seconds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--faults") == 0 && i + 1 < argc) S.max_faults = atol(argv[++i]);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) S.seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-v") == 0) S.verbose++;
        else return usage();
    }
    if (S.seconds < 1) return usage();
    alarm((unsigned)S.seconds + 300); /* the hang guard: every phase below is bounded well within it */
    signal(SIGPIPE, SIG_IGN);
    snprintf(S.stream, sizeof S.stream, "soak-%ld", (long)getpid());
    S.es.kind = "eventsource";

    memset(&to, 0, sizeof to);
    to.max_lifetime_ms = (S.seconds + 240) * 1000;
    to.idle_timeout_ms = 30000;
    if (ds_start((S.seconds + 240) * 1000) != 0 || ts_start(&ts, &to) != PR_OK) {
        if (!S.failed) fail("the test server did not start");
        goto out;
    }
    if (start_proxy(&S.es, "eventsource", ts_port(ts), 1) != PR_OK ||
        start_proxy(&S.lp, "ds-long-poll", (uint16_t)atoi(strrchr(S.ds_base, ':') + 1), 2) != PR_OK ||
        start_proxy(&S.sse, "ds-sse", (uint16_t)atoi(strrchr(S.ds_base, ':') + 1), 3) != PR_OK ||
        start_proxy(&S.cons, "ds-consumer", (uint16_t)atoi(strrchr(S.ds_base, ':') + 1), 4) != PR_OK ||
        start_proxy(&S.prod, "ds-producer", (uint16_t)atoi(strrchr(S.ds_base, ':') + 1), 5) != PR_OK)
        goto out;
    { /* the stream, created directly */
        pr_ds *ds = NULL;
        pr_ds_result res;
        pr_err_info err;
        int rc;
        memset(&res, 0, sizeof res);
        if (open_ds(&ds, 0) != PR_OK) goto out;
        rc = pr_ds_create(ds, NULL, &res, &err, pr_deadline_in(10000));
        pr_ds_result_deinit(&res);
        pr_ds_destroy(ds);
        if (rc != PR_OK) {
            fail("create %s: %s: %s", S.stream, pr_errname(rc), err.msg);
            goto out;
        }
    }
    if (pr_group_create(&g) != PR_OK || pr_go(&wd, watchdog_task, NULL, NULL) != PR_OK ||
        pr_group_go(g, producer_task, NULL, NULL) != PR_OK || pr_group_go(g, es_task, NULL, NULL) != PR_OK ||
        pr_group_go(g, reader_task, &S.lp, NULL) != PR_OK || pr_group_go(g, reader_task, &S.sse, NULL) != PR_OK ||
        pr_group_go(g, consumer_task, &S.cons, NULL) != PR_OK) {
        fail("cannot start the tasks");
        goto out;
    }
    /* the run: until the time is up or enough faults were injected */
    start = pr_now();
    while (!S.stop && pr_now() - start < (int64_t)S.seconds * 1000 && !(S.max_faults && faults_total() >= S.max_faults))
        pr_sleep(pr_deadline_in(100));
    S.stop = 1;
    /* the end phase: the producer closes, the readers reach the end */
    end_by = pr_deadline_in(120000);
    if (pr_group_wait(g, end_by) != PR_OK) fail("the end phase did not finish within 120 s");
out:
    if (g) pr_group_close(g, pr_deadline_in(10000));
    if (wd) {
        pr_cancel(wd);
        pr_join(wd, NULL, pr_deadline_in(10000));
    }
    for (i = 0; i < 5 && all[i]->proxy; i++) { /* the faults by kind, on stderr */
        int k;
        fprintf(stderr, "soak: %s faults:", all[i]->kind);
        for (k = 1; k < FP_NKINDS; k++) fprintf(stderr, " %s=%ld", fp_kind_names[k], fp_faults_of(all[i]->proxy, k));
        fprintf(stderr, "; %ld connections", fp_conns(all[i]->proxy));
        if (all[i] != &S.prod) fprintf(stderr, "; longest wait for a new item %lld ms", (long long)all[i]->max_gap);
        fprintf(stderr, "\n");
    }
    for (i = 0; i < 5; i++) {
        all[i]->faults = fp_faults(all[i]->proxy);
        fp_stop(all[i]->proxy);
        all[i]->proxy = NULL;
    }
    if (!S.failed) check_content();
    if (ts) ts_stop(ts);
    ds_stop();
    if (S.es.kind && S.prod.kind) {
        bad |= report(&S.es, S.es.max);
        bad |= report(&S.lp, S.appended);
        bad |= report(&S.sse, S.appended);
        bad |= report(&S.cons, S.appended);
        bad |= report(&S.prod, S.appended);
    }
    if (!S.failed && !S.lp.closed) fail("ds-long-poll did not reach the closed end");
    if (!S.failed && !S.sse.closed) fail("ds-sse did not reach the closed end");
    if (!S.failed && !S.cons.closed) fail("ds-consumer did not reach the closed end");
    for (i = 0; i < 5; i++) free(all[i]->seen);
    pr_sched_destroy();
    if (S.failed) printf("soak: FAILED: %s\n", S.why);
    return S.failed || bad ? 1 : 0;
}
