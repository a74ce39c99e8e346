// @pristine:module ds_producer - Durable Streams idempotent producer: batched exactly-once appends with epochs and sequence numbers
// @pristine:public
/*
 * ds_producer: the idempotent producer (pr_ds_producer_create) on a
 * pr_ds handle: exactly-once appends through a producer id, an epoch and
 * a sequence number per request, each batch sent with the ds module's
 * pr_ds_append. The modules after it use nothing of it.
 *
 * append queues without blocking until max_buffer_bytes are queued or in
 * flight, then suspends the caller (backpressure); batches are sealed at
 * max_batch_bytes / max_batch_items or linger_ms after their first
 * message (0: as soon as the appending task yields), and up to
 * max_in_flight batches are in flight at once, each on its own connection.
 * The server's answers: 200 and 204 (a duplicate) are success; 403 (a
 * newer epoch) fails, or with auto_claim moves to the server's epoch + 1
 * and sends the same batch again as seq 0, with nothing else in flight
 * until that epoch is confirmed; 409 with an expected seq below the
 * batch's (the batches arrived out of order) waits for the lower batches'
 * answers and sends again (after a backoff when they are answered
 * already). A batch whose fate is unknown (a timeout, a broken
 * connection) or passing (429, 5xx) is sent again with the same epoch and
 * seq until the server answers it (the server stores it once), each send
 * within request_timeout_ms, with the handle's backoff between them, for
 * at most delivery_timeout_ms. Only then, or on an answer no resend can
 * mend (400, 404, 413, a fenced epoch without auto_claim, ...), does the
 * producer fail: on_error hears it at once, append, flush and close
 * return it from then on (PR_EHTTP with the status's meaning in
 * pr_ds_producer_last_error, PR_EFAILED when the delivery timeout passed, ...;
 * never PR_ETIMEDOUT, which only means the caller's own deadline), the
 * batches above the failed one are abandoned (the server would refuse
 * them as a gap), and pr_ds_producer_restart starts over in the next
 * epoch. Nothing accepted by append is dropped without a word. Until
 * then a flush (or close) does not wait out its deadline behind a send
 * that keeps failing: when a batch's next send would start after the
 * deadline, it returns that send's cause at once (PR_EIO with
 * ECONNREFUSED for a server that refuses) and the batches go on. On a JSON
 * stream each append is one message and a batch is sent as one array.
 * One producer belongs to one thread; its calls may come from any of its
 * tasks, flush, close and restart from one task at a time.
 */

/* An idempotent producer. Opaque; one thread's (see above). */
typedef struct pr_ds_producer pr_ds_producer;

typedef struct pr_ds_producer_opts {
    const char *producer_id;    /* required, non-empty (copied) */
    int64_t epoch;              /* >= 0; 0 = the first */
    int auto_claim;             /* 1 = on 403 move to the server's epoch + 1 (see above) */
    size_t max_batch_bytes;     /* 0 = 1 MiB: a batch is sealed when it holds this much */
    size_t max_batch_items;     /* 0 = no limit: ... or this many messages */
    int linger_ms;              /* 0 = seal when the appending task yields; > 0 = this long after
                                   a batch's first message (unless it fills first) */
    int max_in_flight;          /* 0 = 5: batches sent at once */
    size_t max_buffer_bytes;    /* 0 = 16 MiB: bytes queued or in flight before append waits */
    int request_timeout_ms;     /* 0 = 30000: one send of a batch (with the handle's retries inside
                                   it); past it the batch's fate is unknown and it is sent again */
    int delivery_timeout_ms;    /* 0 = 120000: how long a batch may stay unconfirmed, from its
                                   sealing (sends, resends and waits together) before the producer
                                   fails with PR_EFAILED; < 0 = no limit */
    void (*on_error)(int rc, const pr_err_info *err, void *user_data); /* NULL = none */
    void *user_data;            /* for on_error */
    pr_ds_observer observer;    /* zero = the handle's: PR_DS_EVENT_PRODUCER_BATCH and _DUPLICATE
                                   for every batch the server has, and the producer's requests */
} pr_ds_producer_opts;

/* Create a producer on a handle (which must outlive it).
   Params: out - receives it; ds - the handle; opts - options
           (producer_id required); err - receives why it failed (NULL =
           not wanted).
   Returns: PR_OK; PR_EINVAL (no producer id, a negative epoch or limit);
            PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_ds_producer_append, pr_ds_producer_destroy. */
PRISTINE_API int pr_ds_producer_create(pr_ds_producer **out, pr_ds *ds, const pr_ds_producer_opts *opts,
                                       pr_err_info *err);

/* Queue one message (copied). Waits only while max_buffer_bytes are
   queued or in flight.
   Params: p - the producer; data, len - the message (len > 0); deadline -
           absolute ms for that wait.
   Returns: PR_OK; the producer's failure (PR_EHTTP with
            pr_ds_producer_last_error, PR_EFAILED, ...: every call until a
            restart); PR_ESTATE after close; PR_EINVAL; PR_ENOMEM;
            PR_ETIMEDOUT (the deadline passed while it waited for room);
            PR_ECANCELED.
   Blocks: yes (backpressure).
   Thread: owner.
   See: pr_ds_producer_flush. */
PRISTINE_API int pr_ds_producer_append(pr_ds_producer *p, const void *data, size_t len, int64_t deadline);

/* Send everything queued and wait until every batch is answered.
   Params: p - the producer; deadline - absolute ms.
   Returns: PR_OK; the producer's failure (at once once it has failed);
            the cause of a batch's failed send (PR_EIO with sys_errno,
            PR_EHTTP with http_status, ...; its detail in
            pr_ds_producer_last_error) as soon as that batch's next send
            would start after the deadline (the batches go on);
            PR_ETIMEDOUT (the deadline passed while a send was under way;
            the batches go on); PR_ECANCELED; PR_ESTATE (another task is
            flushing).
   Blocks: yes.
   Thread: owner.
   See: pr_ds_producer_append. */
PRISTINE_API int pr_ds_producer_flush(pr_ds_producer *p, int64_t deadline);

/* Flush, then close the stream with the producer's headers and an
   optional final message. Idempotent: a second call returns the first
   one's outcome and final offset without a request.
   Params: p - the producer; data, len - the final message (NULL, 0 =
           none); final_offset - receives the final offset
           (NUL-terminated, valid until destroy; may be NULL); deadline -
           absolute ms.
   Returns: PR_OK; PR_EHTTP (PR_DS_STREAM_CLOSED: closed by someone else,
            ...); the producer's failure; a failed send's cause, as for
            pr_ds_producer_flush (nothing is closed); PR_ETIMEDOUT;
            PR_ECANCELED.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_producer_flush. */
PRISTINE_API int pr_ds_producer_close(pr_ds_producer *p, const void *data, size_t len, const char **final_offset,
                                      int64_t deadline);

/* Wait for every batch's end (answered, or abandoned after a failure),
   then start the next epoch (epoch + 1, seq 0) and clear the producer's
   failure: what a restarted writer does to fence off its older self, and
   how a failed producer goes on (messages appended but not yet sealed go
   in the new epoch; abandoned batches are not sent again).
   Params: p - the producer; deadline - absolute ms.
   Returns: PR_OK; the failure it clears (reported once more here);
            PR_ETIMEDOUT; PR_ECANCELED; PR_ESTATE (another task is
            flushing); the epoch moves on unless it is PR_ETIMEDOUT,
            PR_ECANCELED or PR_ESTATE.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_producer_epoch. */
PRISTINE_API int pr_ds_producer_restart(pr_ds_producer *p, int64_t deadline);

/* The producer's epoch, the seq its next batch gets, and the offset of its
   last accepted batch ("" before one; valid until the next call).
   Params: p - the producer; next_seq - receives the seq (may be NULL).
   Returns: the epoch.
   Blocks: no.
   Thread: owner.
   See: pr_ds_producer_offset. */
PRISTINE_API int64_t pr_ds_producer_epoch(const pr_ds_producer *p, int64_t *next_seq);

/* The offset after the producer's last accepted batch ("" before one).
   Params: p - the producer.
   Returns: a NUL-terminated string valid until the next call on p.
   Blocks: no.
   Thread: owner.
   See: pr_ds_producer_epoch. */
PRISTINE_API const char *pr_ds_producer_offset(const pr_ds_producer *p);

/* How many of the producer's batches the server answered as duplicates
   (204: sent before, stored once).
   Params: p - the producer.
   Returns: the count.
   Blocks: no.
   Thread: owner.
   See: pr_ds_producer_epoch. */
PRISTINE_API long pr_ds_producer_duplicates(const pr_ds_producer *p);

/* A producer's counters (pr_ds_producer_stats). Bytes are the batches'
   bodies as they stand (a JSON batch's brackets and commas included). */
typedef struct pr_ds_producer_stats {
    size_t pending_batches;     /* not sent yet: the batch being filled and sealed ones waiting for a
                                   send slot (max_in_flight) */
    size_t pending_bytes;
    size_t inflight_batches;    /* holding a send slot, not answered yet (sent, waiting to be sent
                                   again, or waiting for a lower batch or a new epoch) */
    size_t inflight_bytes;
    uint64_t acked_batches;     /* since create: batches the server has (200, or 204 duplicates) */
    uint64_t acked_bytes;
    uint64_t duplicate_batches; /* of them, answered 204 (pr_ds_producer_duplicates) */
    uint64_t resends;           /* sends of a batch after its first (an unknown fate, 429/5xx, a gap,
                                   a claimed epoch); the handle's retries inside one send not counted */
    uint64_t abandoned_batches; /* sealed batches that ended unanswered: the failed one and those
                                   above it */
} pr_ds_producer_stats;

/* The producer's counters now: what waits, what is in flight, what the
   server has acknowledged.
   Params: p - the producer; out - receives the counters.
   Returns: PR_OK; PR_EINVAL if p or out is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_ds_producer_flush, pr_ds_producer_duplicates. */
PRISTINE_API int pr_ds_producer_stats_get(const pr_ds_producer *p, pr_ds_producer_stats *out);

/* The detail of the producer's failure (or of the last one a restart
   cleared), with out->meaning its PR_DS_* meaning (PR_DS_OK when it was
   no status). While nothing has failed for good: the cause the last
   flush or close returned early with, if any.
   Params: p - the producer; out - receives the detail.
   Returns: PR_OK; PR_EINVAL if p or out is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_ds_producer_append. */
PRISTINE_API int pr_ds_producer_last_error(const pr_ds_producer *p, pr_err_info *out);

/* Stop the producer and free it. Batches not yet answered are abandoned
   (flush first to send them: that is a detach).
   Params: p - the producer; NULL is a no-op.
   Returns: nothing.
   Blocks: no (its tasks are cancelled and joined; they unwind at once).
   Thread: owner.
   See: pr_ds_producer_flush. */
PRISTINE_API void pr_ds_producer_destroy(pr_ds_producer *p);

// @pristine:impl

#define PR__DS_PRODUCER_DEF_BATCH ((size_t)1 << 20)
#define PR__DS_PRODUCER_DEF_BUFFER ((size_t)16 << 20)
#define PR__DS_PRODUCER_DEF_REQUEST 30000
#define PR__DS_PRODUCER_DEF_DELIVERY 120000

typedef struct pr__ds_producer_batch {
    struct pr__ds_producer_batch *next;
    struct pr_ds_producer *p;
    pr_buf body;                /* the bytes, or "[m1,m2" until sealed ("]" then) */
    size_t items, weight;
    int64_t seq;
    int sealed;
    int inflight;               /* holds a send slot */
    long sends;
    int64_t retry_at;           /* after a failed send: when it goes again (0 = not waiting) */
    pr_err_info cause;          /* that failure */
    pr_retry_policy pol;        /* its sends' policy: the handle's, noting each retry */
} pr__ds_producer_batch;

struct pr_ds_producer {
    pr_ds *ds;
    pr_ds_producer_opts o;
    const pr_ds_observer *obs;  /* its own or the handle's (pr__ds_observer), or NULL */
    char *id;
    int64_t epoch, next_seq;
    int epoch_ok;               /* a batch of this epoch was accepted */
    int json;
    pr__ds_producer_batch *cur;         /* being filled, or NULL */
    int64_t cur_started;
    pr__ds_producer_batch *head, *tail; /* sealed, unanswered, in seq order */
    pr_group *senders;
    pr_task *pump;              /* seals batches after linger_ms */
    pr_chan *kick;
    pr_sem *slots;
    pr_wsem *budget;
    pr__sync_fifo changed;           /* senders waiting for a lower batch's answer or a new epoch */
    pr__sync_fifo flushq;            /* a flush waiting for the batches' answers or a retry's note */
    int rc;                     /* the failure that stopped the producer, 0 = none (sticky) */
    int64_t fail_seq;           /* batches from this seq on are abandoned */
    int meaning;
    pr_err_info err;
    char offset[PR__DS_MAX_OFFSET + 1];       /* answers' offsets are checked to fit */
    int closed;
    int close_rc;
    char final_offset[PR__DS_MAX_OFFSET + 1];
    int flushing;
    long dups;                  /* batches answered 204 */
    uint64_t acked, acked_bytes, resends, abandoned; /* pr_ds_producer_stats_get */
};

/* Keep an offset from an answer (checked to fit where it entered); no
   allocation, so a kept offset is never stale. */
static void pr__ds_producer_setoff(char *dst, pr_slice off) {
    size_t n = PR__MIN(off.len, (size_t)PR__DS_MAX_OFFSET);
    if (n) memcpy(dst, off.ptr, n);
    dst[n] = 0;
}

/* The producer cannot deliver batch seq: it fails, for good (until a
   restart). Batches above seq are abandoned: the server would only answer
   them with a sequence gap. Lower ones go on. */
static void pr__ds_producer_fail(pr_ds_producer *p, int64_t seq, int rc, int meaning, const pr_err_info *e) {
    if (p->rc && seq >= p->fail_seq) return;
    p->fail_seq = seq;
    pr__sync_fifo_wake_all(&p->changed, 0);
    pr__sync_fifo_wake_all(&p->flushq, 0);
    if (p->rc) return;
    p->rc = rc;
    p->meaning = meaning;
    if (e) p->err = *e;
    else pr__err_set(&p->err, rc, 0, "ds producer: %s", pr_strerror(rc));
    p->err.code = rc;
    if (p->o.on_error) p->o.on_error(rc, &p->err, p->o.user_data);
}

static void pr__ds_producer_free_batch(pr__ds_producer_batch *b) {
    pr_buf_deinit(&b->body);
    pr__free(b, sizeof *b);
}

/* Remove an answered (or abandoned) batch, give its bytes back to the
   budget, and tell the waiting senders. */
static void pr__ds_producer_unlink(pr_ds_producer *p, pr__ds_producer_batch *b) {
    pr__ds_producer_batch **pp = &p->head, *prev = NULL;
    while (*pp && *pp != b) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = b->next;
        if (p->tail == b) p->tail = prev;
    }
    pr_wsem_release(p->budget, (int64_t)b->weight);
    pr__ds_producer_free_batch(b);
    pr__sync_fifo_wake_all(&p->changed, 0);
    pr__sync_fifo_wake_all(&p->flushq, 0);
}

static int pr__ds_producer_send_task(void *arg);

/* Seal the current batch: it gets the next seq and a sender. */
static int pr__ds_producer_seal(pr_ds_producer *p) {
    pr__ds_producer_batch *b = p->cur;
    int rc;
    if (!b) return PR_OK;
    p->cur = NULL;
    if (p->json && (rc = pr_buf_append(&b->body, "]", 1)) != PR_OK) {
        pr_wsem_release(p->budget, (int64_t)b->weight);
        pr__ds_producer_free_batch(b);
        pr__ds_producer_fail(p, p->next_seq, rc, PR_DS_OK, NULL);
        return rc;
    }
    b->seq = p->next_seq;
    b->sealed = 1;
    if ((rc = pr_group_go(p->senders, pr__ds_producer_send_task, b, NULL)) != PR_OK) {
        pr_wsem_release(p->budget, (int64_t)b->weight);
        pr__ds_producer_free_batch(b);
        pr__ds_producer_fail(p, p->next_seq, rc, PR_DS_OK, NULL);
        return rc;
    }
    p->next_seq++; /* only once a sender has it: a seq is never skipped */
    if (p->tail) p->tail->next = b;
    else p->head = b;
    p->tail = b;
    return PR_OK;
}

/* Whether every batch below seq has been answered. */
static int pr__ds_producer_lower_done(const pr_ds_producer *p, int64_t seq) {
    return !p->head || p->head->seq >= seq;
}

/* Wait until a batch is answered, the epoch moves or the producer fails. */
static int pr__ds_producer_wait_change(pr_ds_producer *p, int64_t until) {
    pr__sync_waiter w;
    int rc = pr__sync_fifo_park(&p->changed, &w, until);
    return rc == PR_ECLOSED ? PR_OK : rc;
}

/* Whether an answer leaves the batch's fate unknown or passing: the same
   seq goes again (the server keeps one copy). */
static int pr__ds_producer_resend(int rc, const pr_ds_result *res) {
    if (rc == PR_EHTTP) return res->status == 429 || (res->status >= 500 && res->status <= 599);
    return pr_retry_classify_default(rc, NULL, NULL) == PR_RETRY_AGAIN;
}

/* Batch b's send failed with cause and goes again in delay_ms: a flush
   whose deadline comes first hears it (pr_ds_producer_flush). */
static void pr__ds_producer_noted(pr__ds_producer_batch *b, const pr_err_info *cause, int64_t delay_ms) {
    b->cause = *cause;
    if (b->cause.code == PR_ETIMEDOUT || b->cause.code >= 0) { /* a send's own limit: PR_ETIMEDOUT is the caller's */
        b->cause.code = PR_EIO;
        if (!b->cause.sys_errno) b->cause.sys_errno = ETIMEDOUT;
    }
    b->retry_at = pr__time_add(pr_now(), PR__MAX(delay_ms, 1));
    pr__sync_fifo_wake_all(&b->p->flushq, 0);
}

/* The handle's policy for one batch's sends, as it is ... */
static int pr__ds_producer_classify(int outcome, int64_t *after_ms, void *user_data) {
    const pr_retry_policy *h = &((pr__ds_producer_batch *)user_data)->p->ds->retry;
    return h->classify(outcome, after_ms, h->user_data);
}

/* ... and each retry inside a send noted on the batch. */
static void pr__ds_producer_on_retry(const pr_retry_info *info, void *user_data) {
    pr__ds_producer_batch *b = (pr__ds_producer_batch *)user_data;
    const pr_retry_policy *h = &b->p->ds->retry;
    pr_err_info e;
    if (info->err) e = *info->err;
    else if (info->outcome < 0) pr__err_set(&e, info->outcome, 0, "%s", pr_strerror(info->outcome));
    else {
        pr__err_set(&e, PR_EHTTP, 0, "HTTP status %d", info->outcome);
        e.http_status = info->outcome;
    }
    e.code = info->outcome < 0 ? info->outcome : PR_EHTTP;
    pr__ds_producer_noted(b, &e, info->delay_ms);
    if (h->on_retry) h->on_retry(info, h->user_data);
}

static int pr__ds_producer_always_again(int outcome, int64_t *after_ms, void *user_data) {
    (void)outcome;
    (void)after_ms;
    (void)user_data;
    return PR_RETRY_AGAIN;
}

/* Tell the observer that the server has batch b (res: its answer, sent
   as epoch, seq), duration_ms after its first send. */
static void pr__ds_producer_notify(const pr_ds_producer *p, const pr__ds_producer_batch *b, const pr_ds_result *res,
                                   int64_t epoch, int64_t seq, int64_t duration_ms) {
    pr_ds_event ev;
    if (!p->obs) return;
    memset(&ev, 0, sizeof ev);
    ev.kind = res->status == 204 ? PR_DS_EVENT_PRODUCER_DUPLICATE : PR_DS_EVENT_PRODUCER_BATCH;
    ev.url = p->ds->base;
    ev.producer_id = p->id;
    ev.epoch = epoch;
    ev.seq = seq;
    ev.items = b->items;
    ev.bytes = b->body.len;
    ev.duration_ms = duration_ms;
    ev.offset = res->offset.len ? p->offset : "";
    pr__ds_notify(p->obs, &ev);
}

/* One batch, from its first send until the server has it: every send
   carries the same (epoch, seq), so a batch whose outcome is unknown (a
   timeout, a broken connection) is sent again until an answer says it is
   stored (200) or was stored before (204). Only the delivery timeout, a
   failure no resend can mend, or a cancel ends that. */
static int pr__ds_producer_send_task(void *arg) {
    pr__ds_producer_batch *b = (pr__ds_producer_batch *)arg;
    pr_ds_producer *p = b->p;
    pr_ds_result res;
    pr_err_info e;
    pr_ds_append_opts ao;
    pr_retry_policy again;
    pr_retry st;
    int64_t until = p->o.delivery_timeout_ms > 0 ? pr_deadline_in(p->o.delivery_timeout_ms) : PR_FOREVER;
    int64_t first_send = -1;
    int rc, slot, waits = 0, acked = 0;
    memset(&e, 0, sizeof e);
    memset(&res, 0, sizeof res);
    b->inflight = slot = (rc = pr_sem_acquire(p->slots, until)) == PR_OK;
    while (rc == PR_OK) {
        int64_t sent_epoch;
        if (p->rc && b->seq >= p->fail_seq) break; /* abandoned: a lower batch failed */
        /* claiming an epoch: only the lowest batch goes until one is accepted */
        if (p->o.auto_claim && !p->epoch_ok && p->head != b) {
            rc = pr__ds_producer_wait_change(p, until);
            continue;
        }
        memset(&ao, 0, sizeof ao);
        ao.raw_json = 1;
        ao.producer_id = p->id;
        ao.producer_epoch = sent_epoch = p->epoch;
        ao.producer_seq = b->seq;
        if (first_send < 0) first_send = pr_now();
        if (b->sends++) p->resends++;
        b->pol = p->ds->retry;
        b->pol.classify = pr__ds_producer_classify;
        b->pol.on_retry = pr__ds_producer_on_retry;
        b->pol.user_data = b;
        rc = pr__ds_append(p->ds, b->body.data, b->body.len, &ao, &res, p->obs, &b->pol, &e,
                           pr_deadline_min(until, pr_deadline_in(p->o.request_timeout_ms)));
        if (rc == PR_OK) {
            if (sent_epoch == p->epoch) p->epoch_ok = 1;
            if (res.status == 204) p->dups++;
            p->acked++;
            acked = 1;
            p->acked_bytes += b->body.len;
            if (res.offset.len) pr__ds_producer_setoff(p->offset, res.offset);
            pr__ds_producer_notify(p, b, &res, sent_epoch, ao.producer_seq, pr_now() - first_send);
            break;
        }
        if (rc == PR_ECANCELED || pr_is_canceled()) {
            rc = PR_ECANCELED;
            break;
        }
        if (rc == PR_EHTTP && res.error == PR_DS_STALE_EPOCH && p->o.auto_claim && res.producer_epoch >= 0) {
            if (sent_epoch != p->epoch) { /* another batch has claimed meanwhile: send with the new numbers */
                rc = PR_OK;
                continue;
            }
            if (p->head == b && !p->rc) {
                pr__ds_producer_batch *x;
                int64_t seq = 0;
                p->epoch = res.producer_epoch + 1; /* the server's epoch + 1, every unanswered batch renumbered */
                p->epoch_ok = 0;
                for (x = p->head; x; x = x->next) x->seq = seq++;
                p->next_seq = seq;
                pr__sync_fifo_wake_all(&p->changed, 0);
                rc = PR_OK;
                continue;
            }
            rc = pr__ds_producer_wait_change(p, until); /* the lowest batch claims */
            continue;
        }
        if (rc == PR_EHTTP && res.error == PR_DS_SEQUENCE_GAP && res.expected_seq >= 0 && res.expected_seq < b->seq &&
            !pr__ds_producer_lower_done(p, b->seq)) {
            /* a lower batch has not arrived yet: send again once it is answered */
            while ((rc = pr__ds_producer_wait_change(p, until)) == PR_OK && !pr__ds_producer_lower_done(p, b->seq) &&
                   !(p->rc && b->seq >= p->fail_seq)) {}
            continue;
        }
        if (!pr__ds_producer_resend(rc, &res) && !(rc == PR_EHTTP && res.error == PR_DS_SEQUENCE_GAP &&
                                          res.expected_seq >= 0 && res.expected_seq < b->seq)) {
            pr__ds_producer_fail(p, b->seq, rc, rc == PR_EHTTP ? res.error : PR_DS_OK, &e);
            break;
        }
        /* unknown, passing, or a gap the lower batches should have closed:
           the same seq again after the handle's backoff */
        if (!waits++) {
            again = p->ds->retry;
            again.max_retries = PR_RETRY_UNLIMITED;
            again.max_elapsed_ms = again.progress_timeout_ms = 0;
            again.classify = pr__ds_producer_always_again;
            again.on_retry = NULL;
            if ((rc = pr_retry_begin(&st, &again)) != PR_OK) break;
        }
        {
            int outcome = rc;
            pr_err_info last = e;
            int64_t delay = pr_retry_plan(&st, &outcome, until);
            if (delay >= 0) {
                if (rc == PR_ETIMEDOUT) { /* the send's own limit; PR_ETIMEDOUT is the caller's */
                    pr__err_wrap(&last, PR_EIO, &e, "ds producer: batch %lld not answered within request_timeout_ms "
                                 "(%d ms)", (long long)b->seq, p->o.request_timeout_ms);
                    last.sys_errno = ETIMEDOUT;
                } else if (!last.code) {
                    pr__err_set(&last, rc, 0, "ds producer: batch %lld: %s", (long long)b->seq, pr_strerror(rc));
                }
                if (rc == PR_EHTTP && !last.http_status) last.http_status = res.status;
                pr__ds_producer_noted(b, &last, delay);
            }
            if (delay >= 0 && pr_retry_sleep(&st, delay, &outcome, until)) {
                rc = PR_OK;
                continue;
            }
            if (outcome == PR_ECANCELED) {
                rc = PR_ECANCELED;
                break;
            }
            pr__err_wrap(&e, PR_EFAILED, &last,
                         "ds producer: batch %lld not stored within delivery_timeout_ms; the last try",
                         (long long)b->seq);
            pr__ds_producer_fail(p, b->seq, PR_EFAILED, rc == PR_EHTTP ? res.error : PR_DS_OK, &e);
            rc = PR_EFAILED;
            break;
        }
    }
    if (rc == PR_ETIMEDOUT) { /* the delivery timeout passed while it waited for a slot or a lower batch */
        pr__err_set(&e, PR_EFAILED, 0, "ds producer: batch %lld not stored within delivery_timeout_ms "
                    "(it waited for %s)", (long long)b->seq, slot ? "lower batches" : "a send slot");
        pr__ds_producer_fail(p, b->seq, PR_EFAILED, PR_DS_OK, &e);
    }
    pr_ds_result_deinit(&res);
    if (!acked) p->abandoned++;
    pr__ds_producer_unlink(p, b);
    if (slot) pr_sem_release(p->slots);
    if (p->kick) (void)pr_chan_send(p->kick, &rc, 0); /* a slot is free: the pump may seal */
    return 0;
}

/* Seals the current batch linger_ms after its first message (at the next
   turn for 0), once a send slot is free. */
static int pr__ds_producer_pump(void *arg) {
    pr_ds_producer *p = (pr_ds_producer *)arg;
    for (;;) {
        int x, rc;
        int64_t until = PR_FOREVER;
        if (p->cur) until = pr__time_add(p->cur_started, p->o.linger_ms);
        if (p->cur && pr_now() >= until) {
            if (pr_sem_available(p->slots) > 0 && !p->rc) pr__ds_producer_seal(p);
            until = PR_FOREVER; /* the next kick (a slot freed, a message) */
        }
        rc = pr_chan_recv(p->kick, &x, p->cur ? until : PR_FOREVER);
        if (rc == PR_ECLOSED || rc == PR_ECANCELED) return 0;
    }
}

int pr_ds_producer_create(pr_ds_producer **out, pr_ds *ds, const pr_ds_producer_opts *opts, pr_err_info *err) {
    const pr_ds_producer_opts *o = opts;
    pr_ds_producer *p;
    int rc;
    if (out) *out = NULL;
    if (!out || !ds || !o || !o->producer_id || !*o->producer_id)
        return pr__err_set(err, PR_EINVAL, 0, "ds producer: out, ds and a producer id are required");
    if (o->epoch < 0 || o->linger_ms < 0 || o->max_in_flight < 0 || o->request_timeout_ms < 0)
        return pr__err_set(err, PR_EINVAL, 0, "ds producer: a negative epoch, linger_ms, max_in_flight or "
                           "request_timeout_ms");
    if (!(p = (pr_ds_producer *)pr__calloc(1, sizeof *p))) return pr__err_set(err, PR_ENOMEM, 0, "ds producer: out of memory");
    p->ds = ds;
    p->o = *o;
    p->o.max_batch_bytes = PR__DEF(p->o.max_batch_bytes, PR__DS_PRODUCER_DEF_BATCH);
    p->o.max_in_flight = PR__DEF(p->o.max_in_flight, 5);
    p->o.max_buffer_bytes = PR__DEF(p->o.max_buffer_bytes, PR__DS_PRODUCER_DEF_BUFFER);
    p->o.request_timeout_ms = PR__DEF(p->o.request_timeout_ms, PR__DS_PRODUCER_DEF_REQUEST);
    p->o.delivery_timeout_ms = PR__DEF(p->o.delivery_timeout_ms, PR__DS_PRODUCER_DEF_DELIVERY);
    p->epoch = o->epoch;
    p->obs = pr__ds_observer(ds, &p->o.observer);
    p->json = pr__ds_is_json(ds->ctype);
    if (!(p->id = pr__strdup(o->producer_id, NULL)) ||
        (rc = pr_group_create(&p->senders)) != PR_OK || (rc = pr_chan_create(&p->kick, sizeof(int), 1)) != PR_OK ||
        (rc = pr_sem_create(&p->slots, p->o.max_in_flight)) != PR_OK ||
        (rc = pr_wsem_create(&p->budget, (int64_t)p->o.max_buffer_bytes)) != PR_OK ||
        (rc = pr_go(&p->pump, pr__ds_producer_pump, p, NULL)) != PR_OK) {
        pr_ds_producer_destroy(p);
        return pr__err_set(err, PR_ENOMEM, 0, "ds producer: out of memory");
    }
    p->o.producer_id = NULL;
    *out = p;
    if (err) memset(err, 0, sizeof *err);
    return PR_OK;
}

int pr_ds_producer_append(pr_ds_producer *p, const void *data, size_t len, int64_t deadline) {
    int rc;
    int64_t w;
    if (!p || !data || !len) return PR_EINVAL;
    if (p->rc) return p->rc;
    if (p->closed) return PR_ESTATE;
    w = (int64_t)PR__MIN(len, p->o.max_buffer_bytes);
    if ((rc = pr_wsem_acquire(p->budget, w, deadline)) != PR_OK) return rc;
    if (p->rc) { /* it failed meanwhile */
        pr_wsem_release(p->budget, w);
        return p->rc;
    }
    if (p->cur && p->cur->body.len + len + 2 > p->o.max_batch_bytes && p->cur->items) pr__ds_producer_seal(p);
    if (!p->cur) {
        pr__ds_producer_batch *b = (pr__ds_producer_batch *)pr__calloc(1, sizeof *b);
        if (!b) {
            pr_wsem_release(p->budget, w);
            return PR_ENOMEM;
        }
        b->p = p;
        pr_buf_init(&b->body);
        p->cur = b;
        p->cur_started = pr_now();
        (void)pr_chan_send(p->kick, &rc, 0);
    }
    if ((p->json && pr_buf_append(&p->cur->body, p->cur->items ? "," : "[", 1) != PR_OK) ||
        pr_buf_append(&p->cur->body, data, len) != PR_OK) {
        pr_wsem_release(p->budget, w);
        return PR_ENOMEM; /* the batch keeps what it had (a JSON batch may end in ","; sealed it fails at the server) */
    }
    p->cur->items++;
    p->cur->weight += (size_t)w;
    if (p->cur->body.len >= p->o.max_batch_bytes || (p->o.max_batch_items && p->cur->items >= p->o.max_batch_items))
        pr__ds_producer_seal(p);
    return p->rc;
}

/* A batch whose next send starts after deadline (and after now: a send
   under way may still be answered), or NULL. */
static const pr__ds_producer_batch *pr__ds_producer_late(const pr_ds_producer *p, int64_t deadline) {
    const pr__ds_producer_batch *b;
    int64_t now = pr_now();
    for (b = p->head; b; b = b->next)
        if (b->retry_at > deadline && b->retry_at > now) return b;
    return NULL;
}

int pr_ds_producer_flush(pr_ds_producer *p, int64_t deadline) {
    int rc;
    if (!p) return PR_EINVAL;
    if (p->rc) return p->rc;
    if (p->flushing) return PR_ESTATE;
    p->flushing = 1;
    pr__ds_producer_seal(p);
    rc = PR_OK;
    while (p->head && !p->rc && rc == PR_OK) {
        const pr__ds_producer_batch *late = pr__ds_producer_late(p, deadline);
        pr__sync_waiter w;
        if (late) { /* it cannot be answered by the deadline: why, now (the batches go on) */
            p->err = late->cause;
            p->meaning = PR_DS_OK;
            p->flushing = 0;
            return late->cause.code;
        }
        rc = pr__sync_fifo_park(&p->flushq, &w, deadline);
    }
    if (rc == PR_OK || rc == PR_ECLOSED) rc = pr_group_wait(p->senders, deadline);
    p->flushing = 0;
    return p->rc ? p->rc : rc;
}

int pr_ds_producer_close(pr_ds_producer *p, const void *data, size_t len, const char **final_offset,
                         int64_t deadline) {
    pr_ds_result res;
    pr_err_info e;
    pr_ds_append_opts ao;
    pr_buf body;
    int rc;
    if (final_offset) *final_offset = NULL;
    if (!p || (len && !data)) return PR_EINVAL;
    if (p->closed) {
        if (final_offset) *final_offset = p->final_offset;
        return p->close_rc;
    }
    if ((rc = pr_ds_producer_flush(p, deadline)) != PR_OK) return rc;
    memset(&res, 0, sizeof res);
    pr_buf_init(&body);
    if (len && ((p->json && pr_buf_append(&body, "[", 1)) || pr_buf_append(&body, data, len) ||
                (p->json && pr_buf_append(&body, "]", 1)))) {
        pr_buf_deinit(&body);
        return PR_ENOMEM;
    }
    memset(&e, 0, sizeof e);
    for (;;) {
        memset(&ao, 0, sizeof ao);
        ao.close = 1;
        ao.raw_json = 1;
        ao.producer_id = p->id;
        ao.producer_epoch = p->epoch;
        ao.producer_seq = p->next_seq;
        rc = pr__ds_append(p->ds, body.data, body.len, &ao, &res, p->obs, NULL, &e, deadline);
        if (rc == PR_EHTTP && res.error == PR_DS_STALE_EPOCH && p->o.auto_claim && res.producer_epoch >= 0) {
            p->epoch = res.producer_epoch + 1;
            p->next_seq = 0;
            continue;
        }
        break;
    }
    pr_buf_deinit(&body);
    if (rc == PR_OK || rc == PR_EHTTP) {
        p->closed = 1;
        p->close_rc = rc;
        p->next_seq++;
        pr__ds_producer_setoff(p->final_offset, res.offset);
        if (final_offset) *final_offset = p->final_offset;
        if (rc != PR_OK) {
            p->meaning = res.error;
            p->err = e;
        }
    }
    pr_ds_result_deinit(&res);
    return rc;
}

int pr_ds_producer_restart(pr_ds_producer *p, int64_t deadline) {
    int rc;
    if (!p) return PR_EINVAL;
    if (p->flushing) return PR_ESTATE;
    p->flushing = 1;
    if (!p->rc) pr__ds_producer_seal(p);
    rc = pr_group_wait(p->senders, deadline); /* every sender ends: answered, or abandoned after a failure */
    p->flushing = 0;
    if (rc != PR_OK) return rc;
    rc = p->rc;
    p->rc = 0;
    p->epoch++;
    p->next_seq = 0;
    p->epoch_ok = 0;
    return rc;
}

int64_t pr_ds_producer_epoch(const pr_ds_producer *p, int64_t *next_seq) {
    if (next_seq) *next_seq = p ? p->next_seq : 0;
    return p ? p->epoch : -1;
}

const char *pr_ds_producer_offset(const pr_ds_producer *p) { return p ? p->offset : NULL; }

long pr_ds_producer_duplicates(const pr_ds_producer *p) { return p ? p->dups : 0; }

int pr_ds_producer_stats_get(const pr_ds_producer *p, pr_ds_producer_stats *out) {
    const pr__ds_producer_batch *b;
    if (!p || !out) return PR_EINVAL;
    memset(out, 0, sizeof *out);
    for (b = p->head; b; b = b->next) {
        if (b->inflight) {
            out->inflight_batches++;
            out->inflight_bytes += b->body.len;
        } else {
            out->pending_batches++;
            out->pending_bytes += b->body.len;
        }
    }
    if (p->cur) {
        out->pending_batches++;
        out->pending_bytes += p->cur->body.len;
    }
    out->acked_batches = p->acked;
    out->acked_bytes = p->acked_bytes;
    out->duplicate_batches = (uint64_t)p->dups;
    out->resends = p->resends;
    out->abandoned_batches = p->abandoned;
    return PR_OK;
}

int pr_ds_producer_last_error(const pr_ds_producer *p, pr_err_info *out) {
    if (!p || !out) return PR_EINVAL;
    *out = p->err;
    out->meaning = p->meaning;
    return PR_OK;
}

void pr_ds_producer_destroy(pr_ds_producer *p) {
    if (!p) return;
    if (p->kick) pr_chan_close(p->kick);
    if (p->pump) pr__sched_join_cleanup(p->pump); /* from a cancelled task too */
    if (p->senders) pr_group_close(p->senders, PR_FOREVER);
    while (p->head) pr__ds_producer_unlink(p, p->head);
    if (p->cur) {
        pr_wsem_release(p->budget, (int64_t)p->cur->weight);
        pr__ds_producer_free_batch(p->cur);
    }
    pr_chan_destroy(p->kick);
    pr_sem_destroy(p->slots);
    pr_wsem_destroy(p->budget);
    pr__strfree(&p->id);
    pr__free(p, sizeof *p);
}
