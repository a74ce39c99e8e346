// @pristine:module ds_read - Durable Streams reads: catch-up, long-poll, SSE and auto, resuming at their offset
// @pristine:public
/*
 * ds_read: a read of a Durable Stream (pr_ds_read), opened on a pr_ds
 * handle at an offset. It makes its requests through the ds module's
 * one request (the handle's headers, parameters and retry policy).
 *
 * Reads (pr_ds_read_open): PR_DS_LIVE_NONE reads from the offset to the
 * tail and ends (PR_ECLOSED after the up-to-date chunk);
 * PR_DS_LIVE_LONG_POLL catches up, then waits at the tail with
 * live=long-poll (the cursor sent back, a 204 at the tail polled again at
 * the same offset); PR_DS_LIVE_SSE catches up, then follows with
 * live=sse (data events up to each control event form one chunk, so a
 * chunk's offset is exact; base64 payloads decoded; unknown events
 * skipped; a malformed control event is PR_EPROTO; a connection the
 * server ends cleanly after at least sse_short_ms is followed at once,
 * other ends and breaks after the backoff); PR_DS_LIVE_AUTO
 * catches up, then follows with long-poll, or with SSE when
 * opts.prefer_sse is set, falling back to long-poll when SSE connections
 * keep dropping right after they open (a buffering proxy). A closed stream
 * ends every mode: the last chunk has closed = 1, the next call is
 * PR_ECLOSED. On an application/json stream each chunk's data is one JSON
 * array of messages, parsed: c.items is that array (pr_json_len,
 * pr_json_at), a body that does not parse is PR_EPROTO.
 *
 * Failures. A cause retrying cannot cure ends the call at once with its
 * code and detail: a name that does not exist (PR_EDNS), a certificate
 * not trusted or for another name, a peer that does not speak TLS
 * (PR_ETLS), a status that is the answer (400, 401, 403, 404, 409, 410,
 * ...: PR_EHTTP with its PR_DS_* meaning), an SSE answer that is not
 * text/event-stream (PR_EPROTO). A transient one (a refused, reset or cut
 * connection, 408, 429, 5xx) is tried again with the handle's backoff
 * (a server's Retry-After or retry-after-ms is the wait itself, up to the
 * client's cap): at most open_attempts times before the read has had an
 * answer, then max_failures in a row (0: for as long as it takes), the
 * count starting afresh only after healthy_ms without a failure; then the
 * last cause comes back. PR_ETIMEDOUT means the caller's deadline passed,
 * nothing else; a wait that would end past it returns the last cause at
 * once instead (the next call waits the rest of it first).
 *
 * A read's connection silent for idle_timeout_ms counts as dropped. Answers
 * that bring nothing new (a 204 or 304, an empty 200 that is not up to
 * date) and come back at once are asked again after a wait that starts
 * at 50 ms and doubles with each such answer in a row, up to 2 s, so a
 * server cannot drive a read into a busy loop; a server that holds its
 * long-poll is asked again at once. Offsets and cursors from the server
 * are checked where they enter: 1 to 1024 printable ASCII bytes (what
 * pr_ds_read_open takes back), else PR_EPROTO.
 *
 * To the modules after it (ds_consumer) it offers, privately,
 * pr__ds_read_transient: whether a read's failure is worth reconnecting
 * for (a transient cause, and the read's bound not used up).
 *
 * Offers to the modules after it: pr__ds_read_transient.
 */

/* A read of a stream (pr_ds_read_open). Opaque; one task reads it at a time. */
typedef struct pr_ds_read pr_ds_read;

/* pr_ds_read_opts.live */
enum { PR_DS_LIVE_NONE = 0, PR_DS_LIVE_LONG_POLL = 1, PR_DS_LIVE_SSE = 2, PR_DS_LIVE_AUTO = 3 };

typedef struct pr_ds_read_opts {
    int live;                   /* PR_DS_LIVE_*; 0 = catch-up only */
    int prefer_sse;             /* PR_DS_LIVE_AUTO: follow with SSE (falling back to long-poll) */
    int sse_short_ms;           /* 0 = 1000: an SSE connection that drops sooner counts as short */
    int sse_max_short;          /* 0 = 3: short SSE connections in a row before the fallback */
    size_t max_chunk_bytes;     /* 0 = 64 MiB: the largest response body or SSE batch (PR_ELIMIT);
                                   a catch-up answer is held whole, so a shared client's
                                   fetch_max_bytes (16 MiB by default) caps it too */
    int idle_timeout_ms;        /* 0 = 60000: silence on a read's connection (no byte, however
                                   often pr_ds_read_next is called) after which it counts as
                                   dropped and the read resumes from its offset on a new one;
                                   above the server's long-poll and SSE keep-alive interval (30 s
                                   on the reference server); < 0 = none */
    int open_attempts;          /* 0 = 8: until the read has had an answer, its requests are tried
                                   at most this many times in all, counted across calls (refused,
                                   reset or cut connections, 408, 429, 5xx; with the handle's
                                   default backoff the waits add up to under 13 s), then the last
                                   cause comes back (PR_EIO with its errno, PR_EHTTP with its
                                   status); once they are used up, each call tries once; < 0 = no
                                   bound (the handle's retry policy alone) */
    int max_failures;           /* 0 = unlimited: once the read has had an answer, failed attempts
                                   and dropped live connections in a row (no healthy_ms between
                                   them) after which the last cause comes back (as open_attempts) */
    int healthy_ms;             /* 0 = 60000: the failure count, and with it the backoff, starts
                                   afresh only after the read went this long without a failure
                                   (a server that accepts and drops is asked again later and
                                   later, never at a constant rate) */
} pr_ds_read_opts;

/* What pr_ds_read_next delivers. The views stay valid until the next
   call on the read. */
typedef struct pr_ds_chunk {
    const char *data;           /* the bytes (base64 decoded), or a JSON stream's array text */
    size_t len;                 /* may be 0: an up-to-date or closed signal without data */
    const pr_json *items;       /* JSON streams: the array of messages; NULL otherwise */
    const char *offset;         /* the offset after this chunk (NUL-terminated) */
    size_t offset_len;
    const char *cursor;         /* the latest cursor ("" if none; NUL-terminated) */
    int up_to_date;             /* the read has reached the tail (for now) */
    int closed;                 /* the stream is closed and this is its end */
    int status;                 /* the status of the response that carried it */
} pr_ds_chunk;

/* Start a read at an offset. No request is made until pr_ds_read_next.
   Params: out - receives the read; ds - the handle (must outlive the
           read); offset - "-1" (or NULL) for the start, "now" for the
           tail, or an offset from the server (copied); opts - NULL =
           catch-up; err - receives why it failed (NULL = not wanted).
   Returns: PR_OK; PR_EINVAL (out or ds NULL, an unknown mode, an offset
            with a byte outside printable ASCII or longer than 1024);
            PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_ds_read_next, pr_ds_read_destroy. */
PRISTINE_API int pr_ds_read_open(pr_ds_read **out, pr_ds *ds, const char *offset, const pr_ds_read_opts *opts,
                                 pr_err_info *err);

/* The next chunk of the read. Live modes wait at the tail for new data;
   a chunk is delivered when data arrived, when the read first reaches the
   tail (up_to_date, maybe without data) and when the stream closed.
   Params: r - the read; c - receives the chunk; deadline - absolute ms.
   Returns: PR_OK; PR_ECLOSED (after the closed chunk, or after the
            up-to-date chunk of a catch-up read: the read is over);
            PR_ETIMEDOUT (the deadline passed, and only then: the read
            stays usable and resumes from c->offset); PR_EIO (the network
            failed: refused, reset, a connection closed before its answer
            or timed out, a live connection that dropped; after the tries
            open_attempts / max_failures allow, errno kept; the read stays
            usable); PR_EHTTP (an error status: at once when it is the
            answer, 408, 429 and 5xx after the tries;
            pr_ds_read_last_error gives the detail and the PR_DS_*
            meaning); PR_EDNS (a name that does not exist: at once; a
            resolver's temporary failure after the tries); PR_ETLS (a
            certificate not trusted or for another name, a peer that does
            not speak TLS: at once); PR_EPROTO (a JSON body or SSE control
            event that does not parse, a response without
            Stream-Next-Offset, an SSE answer that is not
            text/event-stream); PR_ELIMIT; PR_ECANCELED; PR_EINVAL.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_read_open. */
PRISTINE_API int pr_ds_read_next(pr_ds_read *r, pr_ds_chunk *c, int64_t deadline);

/* The read's position: the offset after the last chunk delivered.
   Params: r - the read; len - receives the length (may be NULL).
   Returns: a NUL-terminated string valid until the next call on r.
   Blocks: no.
   Thread: owner.
   See: pr_ds_read_next. */
PRISTINE_API const char *pr_ds_read_offset(const pr_ds_read *r, size_t *len);

/* The status of the read's latest HTTP response (0 before the first).
   Params: r - the read.
   Returns: the status.
   Blocks: no.
   Thread: owner.
   See: pr_ds_read_next. */
PRISTINE_API int pr_ds_read_status(const pr_ds_read *r);

/* Why the read's last call failed: the detail, with out->meaning the
   PR_DS_* meaning of an error status (PR_DS_OK when it was no status).
   Params: r - the read; out - receives the detail.
   Returns: PR_OK; PR_EINVAL if r or out is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_ds_read_next. */
PRISTINE_API int pr_ds_read_last_error(const pr_ds_read *r, pr_err_info *out);

/* End a read and free it.
   Params: r - the read; NULL is a no-op.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_ds_read_open. */
PRISTINE_API void pr_ds_read_destroy(pr_ds_read *r);

/* Read everything from an offset up to the stream's current tail: a
   catch-up read (pr_ds_read_open with the defaults: open_attempts, the
   handle's retries) followed through as many answers as the server splits
   it into, until one is up to date.
   Params: ds - the handle; offset - where to start ("-1" or NULL for the
           start, or an offset from the server); max_bytes - the most bytes
           out may receive (0 = 64 MiB; SIZE_MAX = no limit); out -
           receives the bytes (cleared first): a JSON stream's messages
           as one JSON array ("[]" when there are none); next_offset -
           receives the offset after them, NUL-terminated, to resume from
           (cleared first; NULL = not wanted); closed - set to 1 when the
           stream is closed and out reaches its end, else 0 (NULL = not
           wanted); err - receives why it failed (NULL = not wanted);
           deadline - absolute ms.
   Returns: PR_OK; PR_ELIMIT (more than max_bytes); PR_EHTTP (an error
            status: err has it and its PR_DS_* meaning, e.g. 404
            PR_DS_NOT_FOUND); PR_EINVAL (ds or out NULL, an offset
            pr_ds_read_open refuses); PR_ETIMEDOUT (the deadline passed);
            PR_ECANCELED; the errors of pr_ds_read_next. On a failure out
            and next_offset hold what was read before it.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_read_open, pr_ds_read_next. */
PRISTINE_API int pr_ds_read_all(pr_ds *ds, const char *offset, size_t max_bytes, pr_buf *out, pr_buf *next_offset,
                                int *closed, pr_err_info *err, int64_t deadline);

// @pristine:impl
#define PR__DS_READ_DEF_IDLE 60000
#define PR__DS_READ_DEF_OPEN_ATTEMPTS 8
#define PR__DS_READ_DEF_HEALTHY 60000
#define PR__DS_READ_QUICK_MS 50       /* the wait after an answer that brought nothing new at once, */
#define PR__DS_READ_QUICK_MAX_MS 2000 /* doubling per such answer in a row up to this */
#define PR__DS_READ_TO_POLL 1 /* pr__ds_read_sse_next: SSE gave up, long-poll instead */

enum { PR__DS_READ_CATCHUP, PR__DS_READ_POLL, PR__DS_READ_SSE };

struct pr_ds_read {
    pr_ds *ds;
    const pr_ds_observer *obs;  /* told of the requests: the handle's, or a consumer's */
    pr_ds_read_opts o;
    char *offset;               /* the position: after the last chunk delivered */
    char *cursor;
    int phase;                  /* PR__DS_READ_CATCHUP, then the live way */
    int json, text;
    int up_to_date;             /* the up-to-date signal has been delivered */
    int ended;                  /* the last chunk (closed, or the end of a catch-up) is delivered */
    int status;
    int error;                  /* PR_DS_* of the last failure */
    pr_err_info err;
    pr_ds_result res;           /* the last response (the chunk's body lives here) */
    pr_json_doc *doc;           /* the last chunk's items */
    /* SSE */
    pr_http_response *sse;      /* the open SSE connection, or NULL */
    pr_sse_decoder *dec;
    int base64;
    int64_t sse_opened_at;
    int sse_short;              /* SSE connections in a row that dropped soon after opening */
    pr_buf batch;               /* data events since the last control event */
    pr_buf out;                 /* the chunk handed out */
    int answered;               /* the read has had an answer (open_attempts no longer applies) */
    int failures;               /* failed attempts and dropped connections in a row */
    int healthy;                /* no failure since healthy_at */
    int64_t healthy_at;
    int64_t next_at;            /* the next request starts no sooner (the backoff) */
    double prev_delay;          /* for a decorrelated backoff */
    pr_retry_policy pol;        /* the policy of the request in flight (pr__ds_read_policy) */
    int quick;                  /* answers in a row that brought nothing new, at once */
    int64_t asked_at;           /* when the last GET started */
};

int pr_ds_read_open(pr_ds_read **out, pr_ds *ds, const char *offset, const pr_ds_read_opts *opts, pr_err_info *err) {
    const pr_ds_read_opts *o = opts;
    pr_ds_read *r;
    pr_err_info tmp;
    if (!err) err = &tmp;
    memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out || !ds) return pr__err_set(err, PR_EINVAL, 0, "ds: out and ds are required");
    if (o && (o->live < PR_DS_LIVE_NONE || o->live > PR_DS_LIVE_AUTO))
        return pr__err_set(err, PR_EINVAL, 0, "ds: unknown live mode %d", o->live);
    offset = PR__DEF(offset, "-1");
    if (!pr__ds_token_ok(offset, strlen(offset)))
        return pr__err_set(err, PR_EINVAL, 0, "ds: an offset is 1 to %d printable ASCII bytes", PR__DS_MAX_OFFSET);
    if (!(r = (pr_ds_read *)pr__calloc(1, sizeof *r))) return pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
    r->ds = ds;
    r->obs = pr__ds_observer(ds, NULL);
    if (o) r->o = *o;
    r->o.sse_short_ms = PR__DEF(r->o.sse_short_ms, 1000);
    r->o.sse_max_short = PR__DEF(r->o.sse_max_short, 3);
    r->o.max_chunk_bytes = PR__DEF(r->o.max_chunk_bytes, PR__DS_DEF_CHUNK);
    r->o.idle_timeout_ms = PR__DEF(r->o.idle_timeout_ms, PR__DS_READ_DEF_IDLE);
    r->o.open_attempts = PR__DEF(r->o.open_attempts, PR__DS_READ_DEF_OPEN_ATTEMPTS);
    r->o.healthy_ms = PR__DEF(r->o.healthy_ms, PR__DS_READ_DEF_HEALTHY);
    pr_buf_init(&r->batch);
    pr_buf_init(&r->out);
    if (!(r->offset = pr__strdup(offset, NULL)) || !(r->cursor = pr__strdup("", NULL))) {
        pr_ds_read_destroy(r);
        return pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
    }
    r->json = pr__ds_is_json(ds->ctype);
    r->text = pr__ds_is_text(ds->ctype);
    r->phase = PR__DS_READ_CATCHUP;
    *out = r;
    return PR_OK;
}

void pr_ds_read_destroy(pr_ds_read *r) {
    if (!r) return;
    pr_http_response_destroy(r->sse);
    pr_sse_decoder_destroy(r->dec);
    pr_json_doc_destroy(r->doc);
    pr_ds_result_deinit(&r->res);
    pr__strfree(&r->offset);
    pr__strfree(&r->cursor);
    pr_buf_deinit(&r->batch);
    pr_buf_deinit(&r->out);
    pr__free(r, sizeof *r);
}

const char *pr_ds_read_offset(const pr_ds_read *r, size_t *len) {
    if (len) *len = r && r->offset ? strlen(r->offset) : 0;
    return r ? r->offset : NULL;
}

int pr_ds_read_status(const pr_ds_read *r) { return r ? r->status : 0; }

int pr_ds_read_last_error(const pr_ds_read *r, pr_err_info *out) {
    if (!r || !out) return PR_EINVAL;
    *out = r->err;
    out->meaning = r->error;
    return PR_OK;
}

static int pr__ds_read_rfail(pr_ds_read *r, int rc, int meaning, const char *fmt, const char *arg) {
    r->error = meaning;
    pr__err_set(&r->err, rc, 0, fmt, arg);
    return rc;
}

/* Move the position to a new offset (and cursor). */
#ifdef PRISTINE_TESTING
/* Bytes the SSE read's own parsing examined or copied (data events into
   the batch, control events' offsets, chunks handed out), so a fuzzer can
   check the work per input byte stays bounded (with the decoder's and the
   JSON reader's own counters). */
static size_t pr__ds_read_test_work;
#define PR__DS_READ_WORK(n) (pr__ds_read_test_work += (size_t)(n))
#else
#define PR__DS_READ_WORK(n) ((void)0)
#endif

static int pr__ds_read_advance(pr_ds_read *r, pr_slice off, pr_slice cur) {
    char *d;
    PR__DS_READ_WORK(off.len + cur.len + 1);
    if (!off.len) return pr__ds_read_rfail(r, PR_EPROTO, PR_DS_OK, "ds: %s", "a response without Stream-Next-Offset");
    if (!pr__ds_token_ok(off.ptr, off.len))
        return pr__ds_read_rfail(r, PR_EPROTO, PR_DS_OK, "ds: %s", "the server's offset is not 1 to 1024 printable ASCII bytes");
    if (cur.len && !pr__ds_token_ok(cur.ptr, cur.len))
        return pr__ds_read_rfail(r, PR_EPROTO, PR_DS_OK, "ds: %s", "the server's cursor is not 1 to 1024 printable ASCII bytes");
    if (!(d = pr__strndup(off.ptr, off.len))) return pr__ds_read_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
    pr__strfree(&r->offset);
    r->offset = d;
    if (cur.len) pr__ds_setstr(&r->cursor, cur.ptr, cur.len);
    return PR_OK;
}

/* Hand out r->out as the chunk (parsing it on a JSON stream). */
static int pr__ds_read_emit(pr_ds_read *r, pr_ds_chunk *c, int up_to_date, int closed) {
    PR__DS_READ_WORK(r->out.len + 1);
    memset(c, 0, sizeof *c);
    pr_json_doc_destroy(r->doc);
    r->doc = NULL;
    if (r->json) {
        int rc;
        pr_json_error je;
        if (!r->out.len && pr_buf_append(&r->out, "[]", 2) != PR_OK)
            return pr__ds_read_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
        if ((rc = pr_json_parse(&r->doc, r->out.data, r->out.len, NULL, &je)) != PR_OK || pr_json_type(pr_json_root(r->doc)) != PR_JSON_ARRAY) {
            pr_json_doc_destroy(r->doc);
            r->doc = NULL;
            return pr__ds_read_rfail(r, rc == PR_ENOMEM ? PR_ENOMEM : PR_EPROTO, PR_DS_OK, "ds: %s",
                                "a JSON stream's data is not one JSON array");
        }
        c->items = pr_json_root(r->doc);
    }
    c->data = r->out.data ? r->out.data : "";
    c->len = r->out.len;
    c->offset = r->offset;
    c->offset_len = strlen(r->offset);
    c->cursor = r->cursor;
    c->up_to_date = up_to_date;
    c->closed = closed;
    c->status = r->status;
    if (up_to_date) r->up_to_date = 1;
    if (closed || (up_to_date && r->o.live == PR_DS_LIVE_NONE)) r->ended = 1;
    return PR_OK;
}

/* A JSON body's items go into the chunk: an empty array counts as no data. */
static int pr__ds_read_json_empty(const char *p, size_t n) {
    pr_slice t;
    t.ptr = p;
    t.len = n;
    t = pr_slice_trim(t);
    return t.len == 2 && t.ptr[0] == '[' && t.ptr[1] == ']';
}

/* ---- failures: which are final, which are tried again, how often ---- */

/* The failure count starts afresh after healthy_ms without a failure. */
static void pr__ds_read_settle(pr_ds_read *r) {
    if (r->healthy && pr_now() - r->healthy_at >= r->o.healthy_ms) {
        r->failures = 0;
        r->prev_delay = 0;
    }
}

/* A failed attempt, or a live connection that dropped. */
static void pr__ds_read_failed(pr_ds_read *r) {
    pr__ds_read_settle(r);
    r->healthy = 0;
    r->failures++;
}

/* An answer the read can use, or an SSE connection open. The first one
   ends the open_attempts phase. */
static void pr__ds_read_answered(pr_ds_read *r) {
    if (!r->answered) {
        r->answered = 1;
        r->failures = 0;
        r->prev_delay = 0;
    }
    if (!r->healthy) {
        r->healthy = 1;
        r->healthy_at = pr_now();
    }
}

/* The bound in force (<= 0: none): open_attempts, then max_failures. */
static int pr__ds_read_bound(const pr_ds_read *r) { return r->answered ? r->o.max_failures : r->o.open_attempts; }

static int pr__ds_read_used_up(const pr_ds_read *r) {
    int b = pr__ds_read_bound(r);
    return b > 0 && r->failures >= b;
}

/* Whether the cause of the read's failure rc (its detail in r->err) is
   worth another attempt: a transient status, or a transport error the
   client does not call final. */
static int pr__ds_read_cause_transient(const pr_ds_read *r, int rc) {
    int st = r->err.http_status;
    if (rc == PR_EHTTP) return st == 408 || st == 429 || (st >= 500 && st <= 599);
    if (rc == PR_ETIMEDOUT || rc == PR_EPROTO || rc == PR_ECANCELED || pr__client_final(rc, &r->err)) return 0;
    return pr_retry_classify_default(rc, NULL, NULL) == PR_RETRY_AGAIN;
}

/* Whether a read's failure is worth reconnecting for: a transient cause,
   with the read's bound not used up. */
static int pr__ds_read_transient(pr_ds_read *r, int rc) {
    return pr__ds_read_cause_transient(r, rc) && !pr__ds_read_used_up(r);
}

/* The handle's classifier, with 408 tried again, and a DNS or TLS
   failure handed back at once: only its detail tells a name that does
   not exist or a refused handshake from a temporary failure
   (pr__client_final), so the read decides (pr__ds_read_get). */
static int pr__ds_read_classify(int outcome, int64_t *after_ms, void *user_data) {
    const pr_ds_read *r = (const pr_ds_read *)user_data;
    int v = r->ds->retry.classify(outcome, after_ms, r->ds->retry.user_data);
    if (outcome == PR_EDNS || outcome == PR_ETLS) return PR_RETRY_FAIL;
    return outcome == 408 && v == PR_RETRY_OK ? PR_RETRY_AGAIN : v;
}

/* Every attempt the client tries again is a failure of the read. */
static void pr__ds_read_on_retry(const pr_retry_info *info, void *user_data) {
    pr_ds_read *r = (pr_ds_read *)user_data;
    pr__ds_read_failed(r);
    if (r->ds->retry.on_retry) r->ds->retry.on_retry(info, r->ds->retry.user_data);
}

/* The policy of the read's next request: the handle's, with its retries
   cut to what the bound in force leaves. */
static const pr_retry_policy *pr__ds_read_policy(pr_ds_read *r) {
    int b = pr__ds_read_bound(r);
    pr__ds_read_settle(r);
    r->pol = r->ds->retry;
    r->pol.classify = pr__ds_read_classify;
    r->pol.on_retry = pr__ds_read_on_retry;
    r->pol.user_data = r;
    if (b > 0) {
        int left = b - r->failures - 1; /* retries */
        if (left <= 0) r->pol.max_retries = PR_RETRY_OFF;
        else if (r->pol.max_retries == PR_RETRY_UNLIMITED || r->pol.max_retries > left) r->pol.max_retries = left;
    }
    return &r->pol;
}

/* Sleep through the handle's retry hooks (tests make waits instant). */
static int pr__ds_read_sleep(pr_ds *ds, int64_t delay, int64_t until) {
    return pr__retry_hook_sleep(&ds->retry.hooks, delay, until);
}

/* Wait until the earliest moment the next GET may start: the backoff
   after a failure, and answers that brought nothing new at once are asked
   again later and later (a server cannot make a busy loop of a read).
   PR_ETIMEDOUT when the deadline comes first. */
static int pr__ds_read_pace(pr_ds_read *r, int64_t deadline) {
    int64_t at = r->next_at, now = pr_now();
    if (r->quick)
        at = PR__MAX(at, pr__time_add(r->asked_at, PR__MIN((int64_t)PR__DS_READ_QUICK_MAX_MS,
                                                          (int64_t)PR__DS_READ_QUICK_MS << PR__MIN(r->quick - 1, 20))));
    if (at <= now) return PR_OK;
    if (deadline < at) {
        if (deadline > now) (void)pr__ds_read_sleep(r->ds, deadline - now, deadline);
        return PR_ETIMEDOUT;
    }
    return pr__ds_read_sleep(r->ds, at - now, at);
}

/* After an answer: whether it brought something (data, the close, the
   first up-to-date signal) or came back at once with nothing. */
static void pr__ds_read_paced(pr_ds_read *r, int progress) {
    int64_t next = PR__MIN((int64_t)PR__DS_READ_QUICK_MAX_MS, (int64_t)PR__DS_READ_QUICK_MS << PR__MIN(r->quick, 20));
    if (!progress && pr_now() - r->asked_at < next) r->quick++;
    else r->quick = 0; /* progress, or the server held the request */
}

/* After a failure the read counted (the cause in r->err): PR_OK to try
   again, at once (a clean end of a live connection that lasted, the first
   failure after a healthy period) or after the backoff (waited by
   pr__ds_read_pace); the cause when the bound or the handle's retries
   are used up or the wait would end past the deadline. */
static int pr__ds_read_again(pr_ds_read *r, int cause, int at_once, int64_t deadline) {
    const pr_retry_policy *p = &r->ds->retry;
    if (pr__ds_read_used_up(r)) return cause;
    if (at_once && r->failures == 1) return PR_OK;
    if (p->max_retries == PR_RETRY_OFF || (p->max_retries > 0 && r->failures > p->max_retries)) return cause;
    r->next_at = pr__time_add(pr_now(), pr__retry_delay_ms(&p->backoff, r->failures - 1, &r->prev_delay, &p->hooks));
    return r->next_at > deadline ? cause : PR_OK;
}

/* One catch-up or long-poll GET. Returns PR_OK with *got set when a chunk
   is ready in c, PR_OK with *got 0 to ask again, or an error. */
/* One GET of the read at its position into r->res: live NULL (catch-up),
   "long-poll" or "sse" (with the cursor); the extra header fields h; a
   streamed body (resp not NULL) is left open in *resp. A failure is the
   read's (pr_ds_read_last_error). */
static int pr__ds_read_get(pr_ds_read *r, const char *live, const pr_http_header *h, size_t nh,
                           pr_http_response **resp, int64_t deadline) {
    pr_err_info e;
    pr__ds_req rq;
    pr_buf q;
    int rc;
    pr_buf_init(&q);
    if (pr_url_query_append(&q, "offset", r->offset) != PR_OK ||
        (live && pr_url_query_append(&q, "live", live) != PR_OK) ||
        (live && *r->cursor && pr_url_query_append(&q, "cursor", r->cursor) != PR_OK)) {
        pr_buf_deinit(&q);
        return pr__ds_read_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
    }
    memset(&rq, 0, sizeof rq);
    rq.method = "GET";
    rq.op = "read";
    rq.obs = r->obs;
    rq.query = q.data;
    rq.extra = h;
    rq.nextra = nh;
    rq.stream = resp != NULL;
    rq.idle_ms = r->o.idle_timeout_ms;
    for (;;) {
        rq.retry = pr__ds_read_policy(r);
        if ((rc = pr__ds_do(r->ds, &rq, &r->res, &e, resp, deadline)) == PR_OK) break;
        r->err = e;
        r->error = PR_DS_OK;
        if (rc == PR_ETIMEDOUT && pr_now() < deadline) { /* a connection's own limit, not the caller's */
            rc = pr__err_wrap(&r->err, PR_EIO, &e, "ds: the connection timed out");
            r->err.sys_errno = ETIMEDOUT;
        } else if ((rc == PR_ECLOSED || rc == PR_EPROTO) && !r->res.status) {
            /* no whole answer: the connection closed before it, or cut it short (the
               HTTP layer's PR_EPROTO for a head or body that stops early): the network's */
            rc = pr__err_wrap(&r->err, PR_EIO, &e, "ds: the connection closed before the whole answer");
        }
        if (!pr__ds_read_cause_transient(r, rc)) break;
        pr__ds_read_failed(r);
        /* a temporary DNS failure or a handshake cut short, which the client handed back (pr__ds_read_classify) */
        if ((rc != PR_EDNS && rc != PR_ETLS) || pr__ds_read_again(r, rc, 0, deadline) != PR_OK) break;
        if ((rc = pr__ds_read_pace(r, deadline)) != PR_OK) break;
    }
    pr_buf_deinit(&q);
    return rc;
}

static int pr__ds_read_ds_get(pr_ds_read *r, pr_ds_chunk *c, int poll, int *got, int64_t deadline) {
    pr_http_header h[2];
    size_t nh = 0;
    int rc, st, has_data;
    *got = 0;
    if ((rc = pr__ds_read_pace(r, deadline)) != PR_OK) return rc;
    r->asked_at = pr_now();
    if (!poll && r->ds->etag && r->ds->etag_at && strcmp(r->ds->etag_at, r->offset) == 0)
        pr__ds_hdr(h, &nh, "If-None-Match", r->ds->etag, strlen(r->ds->etag));
    if ((rc = pr__ds_read_get(r, poll ? "long-poll" : NULL, h, nh, NULL, deadline)) != PR_OK) return rc;
    st = r->status = r->res.status;
    if (st == 200 || st == 204 || st == 304) pr__ds_read_answered(r);
    if (st == 304) { /* nothing new at this offset */
        pr_buf_clear(&r->out);
        pr__ds_read_paced(r, !r->up_to_date);
        if (r->up_to_date) return PR_OK;
        *got = 1;
        return pr__ds_read_emit(r, c, 1, 0);
    }
    if (st != 200 && st != 204) {
        rc = pr__ds_status_error(r->ds, &r->res, &r->err, "read");
        r->error = r->res.error;
        if (pr__ds_read_cause_transient(r, rc)) pr__ds_read_failed(r);
        return rc;
    }
    if (r->res.http.body_len > r->o.max_chunk_bytes)
        return pr__ds_read_rfail(r, PR_ELIMIT, PR_DS_OK, "ds: %s", "a response over max_chunk_bytes");
    has_data = st == 200 && r->res.http.body_len &&
               !(r->json && pr__ds_read_json_empty(r->res.http.body, r->res.http.body_len));
    if (!poll && st == 200 && !has_data && r->res.etag.len) { /* an empty tail: remember its ETag */
        pr__ds_setstr(&r->ds->etag, r->res.etag.ptr, r->res.etag.len);
        pr__ds_setstr(&r->ds->etag_at, r->offset, strlen(r->offset));
    }
    if ((rc = pr__ds_read_advance(r, r->res.offset, r->res.cursor)) != PR_OK) return rc;
    pr_buf_clear(&r->out);
    if (has_data && pr_buf_append(&r->out, r->res.http.body, r->res.http.body_len) != PR_OK)
        return pr__ds_read_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
    /* a 204 (long-poll at the tail) is up to date; a 200 says so in a header */
    pr__ds_read_paced(r, has_data || r->res.closed || ((r->res.up_to_date || st == 204) && !r->up_to_date));
    if (has_data || r->res.closed || ((r->res.up_to_date || st == 204) && !r->up_to_date)) {
        *got = 1;
        return pr__ds_read_emit(r, c, r->res.up_to_date || st == 204, r->res.closed);
    }
    return PR_OK;
}

/* ---- SSE ---- */

static int pr__ds_read_b64v(unsigned char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

/* Decode standard base64 (CR and LF skipped, '=' padding) onto out. */
static int pr__ds_read_b64_decode(pr_buf *out, const char *s, size_t n) {
    unsigned acc = 0;
    int bits = 0, pad = 0;
    size_t i, q = 0;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        int v;
        if (ch == '\r' || ch == '\n') continue;
        q++;
        if (ch == '=') {
            pad++;
            continue;
        }
        if (pad || (v = pr__ds_read_b64v(ch)) < 0) return PR_EPROTO;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            char b;
            bits -= 8;
            b = (char)((acc >> bits) & 0xff);
            if (pr_buf_append(out, &b, 1) != PR_OK) return PR_ENOMEM;
        }
    }
    if (q % 4 || pad > 2) return PR_EPROTO;
    return PR_OK;
}

/* Add a JSON array's items to the array open in b ("[" and items so far;
   the caller closes it). */
static int pr__ds_read_json_join(pr_buf *b, const char *p, size_t n) {
    pr_slice t;
    t.ptr = p;
    t.len = n;
    t = pr_slice_trim(t);
    if (t.len < 2 || t.ptr[0] != '[' || t.ptr[t.len - 1] != ']') return PR_EPROTO;
    t.ptr++;
    t.len -= 2;
    t = pr_slice_trim(t);
    if (!t.len) return PR_OK;
    if (pr_buf_append(b, b->len ? "," : "[", 1) != PR_OK) return PR_ENOMEM;
    return pr_buf_append(b, t.ptr, t.len);
}

/* Add one data event to the batch: bytes, text, or a JSON array whose
   items join the batch's array. */
static int pr__ds_read_batch_add(pr_ds_read *r, const char *p, size_t n) {
    PR__DS_READ_WORK(n + 1);
    if (r->base64) return pr__ds_read_b64_decode(&r->batch, p, n);
    if (r->json) return pr__ds_read_json_join(&r->batch, p, n);
    return pr_buf_append(&r->batch, p, n);
}

static void pr__ds_read_sse_drop(pr_ds_read *r) {
    pr_http_response_destroy(r->sse);
    r->sse = NULL;
    pr_buf_clear(&r->batch); /* data without its control event is read again */
    if (r->dec) pr_sse_decoder_reset(r->dec);
}

/* Open the SSE connection at the position. */
static int pr__ds_read_sse_open(pr_ds_read *r, int64_t deadline) {
    pr_http_header h[1];
    pr_http_response *resp = NULL;
    const pr_slice *ct, *enc;
    size_t nh = 0;
    int rc;
    pr__ds_hdr(h, &nh, "Accept", "text/event-stream", 17);
    if ((rc = pr__ds_read_get(r, "sse", h, nh, &resp, deadline)) != PR_OK) return rc;
    r->status = r->res.status;
    if (r->status != 200) {
        const char *p;
        size_t n;
        /* keep the start of the server's message for the detail */
        if (pr_http_next_span(resp, &p, &n, pr_deadline_min(deadline, pr_deadline_in(1000))) == PR_OK) {
            r->res.http.body = (char *)pr__alloc(PR__MIN(n, (size_t)200) + 1);
            if (r->res.http.body) {
                r->res.http.body_len = PR__MIN(n, (size_t)200);
                memcpy(r->res.http.body, p, r->res.http.body_len);
                r->res.http.body[r->res.http.body_len] = 0;
            }
        }
        pr_http_response_destroy(resp);
        rc = pr__ds_status_error(r->ds, &r->res, &r->err, "read");
        r->error = r->res.error;
        if (pr__ds_read_cause_transient(r, rc)) pr__ds_read_failed(r);
        return rc;
    }
    ct = pr_http_header_get(resp, "content-type");
    if (!pr__http_media_is(ct, "text/event-stream")) {
        pr_http_response_destroy(resp);
        return pr__ds_read_rfail(r, PR_EPROTO, PR_DS_OK, "ds: %s", "an SSE read answered without text/event-stream");
    }
    enc = pr_http_header_get(resp, "stream-sse-data-encoding");
    r->base64 = enc ? pr_slice_ieq(pr_slice_trim(*enc), pr_slice_cstr("base64")) : !r->text;
    if (!r->dec) {
        pr_sse_decoder_opts so;
        memset(&so, 0, sizeof so);
        so.max_event_bytes = r->o.max_chunk_bytes;
        if ((rc = pr_sse_decoder_create(&r->dec, &so)) != PR_OK)
            return pr_http_response_destroy(resp), pr__ds_read_rfail(r, rc, PR_DS_OK, "ds: %s", "out of memory");
    } else {
        pr_sse_decoder_reset(r->dec);
    }
    pr_buf_clear(&r->batch);
    r->sse = resp;
    r->sse_opened_at = pr_now();
    pr__ds_read_answered(r);
    return PR_OK;
}

/* Handle one SSE event. Sets *got when a chunk is ready. */
static int pr__ds_read_sse_event(pr_ds_read *r, const pr_sse_event *ev, pr_ds_chunk *c, int *got) {
    pr_slice type = { ev->type, ev->type_len };
    int rc;
    if (pr_slice_eq(type, pr_slice_cstr("data"))) {
        if (r->batch.len + ev->data_len > r->o.max_chunk_bytes)
            return pr__ds_read_rfail(r, PR_ELIMIT, PR_DS_OK, "ds: %s", "an SSE batch over max_chunk_bytes");
        if ((rc = pr__ds_read_batch_add(r, ev->data, ev->data_len)) != PR_OK)
            return pr__ds_read_rfail(r, rc, PR_DS_OK, "ds: %s",
                                rc == PR_ENOMEM ? "out of memory" : "an SSE data event that does not decode");
        return PR_OK;
    }
    if (pr_slice_eq(type, pr_slice_cstr("control"))) {
        pr_json_doc *doc = NULL;
        const pr_json *root, *v;
        pr_slice off = { NULL, 0 }, cur = { NULL, 0 };
        int up = 0, closed = 0, has_data;
        if (pr_json_parse(&doc, ev->data, ev->data_len, NULL, NULL) != PR_OK ||
            pr_json_type(root = pr_json_root(doc)) != PR_JSON_OBJECT ||
            !(v = pr_json_get(root, "streamNextOffset")) || !(off.ptr = pr_json_string(v, &off.len))) {
            pr_json_doc_destroy(doc);
            return pr__ds_read_rfail(r, PR_EPROTO, PR_DS_OK, "ds: %s", "an SSE control event that does not parse");
        }
        if ((v = pr_json_get(root, "streamCursor")) != NULL && pr_json_type(v) == PR_JSON_STRING)
            cur.ptr = pr_json_string(v, &cur.len);
        if ((v = pr_json_get(root, "upToDate")) != NULL) pr_json_bool(v, &up);
        if ((v = pr_json_get(root, "streamClosed")) != NULL) pr_json_bool(v, &closed);
        rc = pr__ds_read_advance(r, off, cur);
        pr_json_doc_destroy(doc);
        if (rc != PR_OK) return rc;
        has_data = r->batch.len > 0;
        pr_buf_clear(&r->out);
        if (has_data) {
            PR__DS_READ_WORK(r->batch.len);
            if (pr_buf_append(&r->out, r->batch.data, r->batch.len) != PR_OK ||
                (r->json && pr_buf_append(&r->out, "]", 1) != PR_OK))
                return pr__ds_read_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
            pr_buf_clear(&r->batch);
        }
        if (has_data || closed || (up && !r->up_to_date)) {
            *got = 1;
            return pr__ds_read_emit(r, c, up, closed);
        }
        return PR_OK;
    }
    return PR_OK; /* an event type of no meaning here */
}

/* Read the SSE connection until a chunk is ready. *from_conn says the
   failure came from the connection (PR_ECLOSED: it ended) rather than from
   decoding what the server sent. */
static int pr__ds_read_sse_pump(pr_ds_read *r, pr_ds_chunk *c, int64_t deadline, int *from_conn) {
    int reads = 0;
    for (;;) {
        pr_sse_event ev;
        const char *p;
        size_t n;
        int rc, got = 0;
        while ((rc = pr_sse_decoder_next(r->dec, &ev)) == PR_OK) {
            if ((rc = pr__ds_read_sse_event(r, &ev, c, &got)) != PR_OK) return rc;
            if (got) return PR_OK;
        }
        if (rc == PR_ELIMIT) return pr__ds_read_rfail(r, PR_ELIMIT, PR_DS_OK, "ds: %s", "an SSE event over the limit");
        /* events that make no chunk (control events without data, comments)
           must not hold the caller past its deadline */
        if (reads++ && pr_now() >= deadline) return PR_ETIMEDOUT;
        rc = pr_http_next_span(r->sse, &p, &n, deadline);
        if (rc != PR_OK) {
            *from_conn = 1;
            if (rc != PR_ETIMEDOUT && rc != PR_ECANCELED) pr_http_last_error(r->sse, &r->err);
            return rc;
        }
        if ((rc = pr_sse_decoder_feed(r->dec, p, n)) != PR_OK) return pr__ds_read_rfail(r, rc, PR_DS_OK, "ds: %s", "SSE decoding failed");
    }
}

static int pr__ds_read_sse_next(pr_ds_read *r, pr_ds_chunk *c, int64_t deadline) {
    for (;;) {
        int rc, from_conn = 0, lasted, clean;
        if (!r->sse) { /* the open's attempts are its request's (pr__ds_read_policy) */
            if ((rc = pr__ds_read_pace(r, deadline)) != PR_OK || (rc = pr__ds_read_sse_open(r, deadline)) != PR_OK)
                return rc;
        }
        rc = pr__ds_read_sse_pump(r, c, deadline, &from_conn);
        if (rc == PR_OK) {
            if (c->closed) pr__ds_read_sse_drop(r);
            return PR_OK;
        }
        if (rc == PR_ECANCELED || (rc == PR_ETIMEDOUT && pr_now() >= deadline))
            return rc; /* the caller's limits: the connection stays for the next call */
        if (!from_conn || pr_retry_classify_default(rc, NULL, NULL) == PR_RETRY_FAIL) {
            pr__ds_read_sse_drop(r);
            return rc; /* malformed data (reconnecting would read it again), a limit, no memory */
        }
        /* the connection ended, broke or went silent: resume from the position */
        lasted = pr_now() - r->sse_opened_at >= r->o.sse_short_ms;
        clean = rc == PR_ECLOSED;
        r->sse_short = lasted ? 0 : r->sse_short + 1;
        pr__ds_read_sse_drop(r);
        if (clean) {
            rc = pr__err_set(&r->err, PR_EIO, 0, "ds: the server ended the SSE connection");
        } else if (rc == PR_ETIMEDOUT) {
            rc = pr__err_set(&r->err, PR_EIO, 0, "ds: the SSE connection was silent for %d ms", r->o.idle_timeout_ms);
            r->err.sys_errno = ETIMEDOUT;
        } else {
            rc = pr__err_wrap(&r->err, PR_EIO, &r->err, "ds: the SSE connection broke");
        }
        if (r->o.live == PR_DS_LIVE_AUTO && r->sse_short >= r->o.sse_max_short) {
            r->phase = PR__DS_READ_POLL; /* SSE keeps dropping: a buffering proxy, probably */
            return PR__DS_READ_TO_POLL;
        }
        pr__ds_read_failed(r);
        if ((rc = pr__ds_read_again(r, rc, lasted && clean, deadline)) != PR_OK) return rc;
    }
}

int pr_ds_read_next(pr_ds_read *r, pr_ds_chunk *c, int64_t deadline) {
    if (!r || !c) return PR_EINVAL;
    memset(c, 0, sizeof *c);
    if (r->ended) return pr__ds_read_rfail(r, PR_ECLOSED, PR_DS_OK, "ds: %s", "the read is over");
    r->error = PR_DS_OK;
    memset(&r->err, 0, sizeof r->err);
    for (;;) {
        int rc, got = 0;
        if (pr_is_canceled()) return PR_ECANCELED;
        if (r->phase == PR__DS_READ_CATCHUP && strcmp(r->offset, "now") == 0 && r->o.live != PR_DS_LIVE_NONE) {
            /* "now": the live way starts at the tail (SSE says the offset in its first control event) */
            r->phase = r->o.live == PR_DS_LIVE_SSE || (r->o.live == PR_DS_LIVE_AUTO && r->o.prefer_sse) ? PR__DS_READ_SSE
                                                                                                         : PR__DS_READ_POLL;
        }
        if (r->phase == PR__DS_READ_SSE) {
            rc = pr__ds_read_sse_next(r, c, deadline);
            if (rc == PR__DS_READ_TO_POLL) continue;
            return rc;
        }
        rc = pr__ds_read_ds_get(r, c, r->phase == PR__DS_READ_POLL, &got, deadline);
        if (rc == PR_ECLOSED) /* a connection closed before its answer is the network's failure, not the read's end */
            return pr__err_wrap(&r->err, PR_EIO, &r->err, "ds: the connection closed before the answer");
        if (rc != PR_OK) return rc;
        if (r->phase == PR__DS_READ_CATCHUP && (r->res.up_to_date || r->res.closed || r->status == 304) &&
            r->o.live != PR_DS_LIVE_NONE)
            r->phase = r->o.live == PR_DS_LIVE_SSE || (r->o.live == PR_DS_LIVE_AUTO && r->o.prefer_sse) ? PR__DS_READ_SSE
                                                                                                         : PR__DS_READ_POLL;
        if (got) return PR_OK;
    }
}

int pr_ds_read_all(pr_ds *ds, const char *offset, size_t max_bytes, pr_buf *out, pr_buf *next_offset, int *closed,
                   pr_err_info *err, int64_t deadline) {
    pr_ds_read_opts ro;
    pr_ds_read *r = NULL;
    pr_ds_chunk c;
    pr_err_info tmp;
    int rc;
    if (!err) err = &tmp;
    memset(err, 0, sizeof *err);
    if (closed) *closed = 0;
    if (!out) return pr__err_set(err, PR_EINVAL, 0, "ds: out is required");
    pr_buf_clear(out);
    if (next_offset) pr_buf_clear(next_offset);
    memset(&ro, 0, sizeof ro);
    ro.max_chunk_bytes = max_bytes = PR__DEF(max_bytes, PR__DS_DEF_CHUNK);
    if ((rc = pr_ds_read_open(&r, ds, offset, &ro, err)) != PR_OK) return rc;
    while ((rc = pr_ds_read_next(r, &c, deadline)) == PR_OK) {
        if (c.len > max_bytes - PR__MIN(out->len, max_bytes)) {
            rc = pr__ds_read_rfail(r, PR_ELIMIT, PR_DS_OK, "ds: %s", "the stream holds more than max_bytes");
            break;
        }
        if ((r->json ? pr__ds_read_json_join(out, c.data, c.len) : pr_buf_append(out, c.data, c.len)) != PR_OK) {
            rc = pr__ds_read_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
            break;
        }
        if (next_offset) {
            pr_buf_clear(next_offset);
            if (pr_buf_append(next_offset, c.offset, c.offset_len) != PR_OK) {
                rc = pr__ds_read_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
                break;
            }
        }
        if (closed && c.closed) *closed = 1;
    }
    if (rc == PR_ECLOSED) rc = PR_OK; /* the up-to-date (or closed) answer came: the read is over */
    else pr_ds_read_last_error(r, err);
    if (r->json && pr_buf_append(out, out->len ? "]" : "[]", out->len ? 1 : 2) != PR_OK && rc == PR_OK)
        rc = pr__err_set(err, PR_ENOMEM, 0, "ds: %s", "out of memory");
    pr_ds_read_destroy(r);
    return rc;
}
