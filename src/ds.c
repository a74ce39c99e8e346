// @pristine:module ds - Durable Streams client: the handle's operations and reads (catch-up, long-poll, SSE, auto)
// @pristine:public
/*
 * ds: Durable Streams, append-only byte streams over HTTP. A stream is a
 * URL; every byte has an offset, an opaque string the server hands out
 * (Stream-Next-Offset) and takes back (?offset=) so that any reader can
 * resume exactly where it stopped.
 *
 *     pr_ds *ds;
 *     pr_ds_read *rd;
 *     pr_ds_chunk c;
 *     pr_ds_open(&ds, "http://127.0.0.1:4437/v1/stream/log", NULL);
 *     pr_ds_read_open(&rd, ds, "-1", &(pr_ds_read_opts){ .live = PR_DS_LIVE_LONG_POLL });
 *     while (pr_ds_read_next(rd, &c, deadline) == PR_OK)
 *         fwrite(c.data, 1, c.len, stdout);   (c.offset: where to resume)
 *     pr_ds_read_destroy(rd);
 *     pr_ds_destroy(ds);
 *
 * Operations: pr_ds_create (PUT), pr_ds_head (HEAD), pr_ds_delete
 * (DELETE), pr_ds_append (POST), pr_ds_close (POST with Stream-Closed).
 * Each returns PR_OK on success, PR_EHTTP when the server answered with an
 * error status (res->error names it: PR_DS_NOT_FOUND, PR_DS_CONFLICT_EXISTS,
 * PR_DS_CONFLICT_SEQ, PR_DS_STREAM_CLOSED with the final offset in
 * res->offset, PR_DS_BAD_REQUEST, ...; res->status, the server's message
 * in res->http.body and every header through res->http.resp stay there
 * until pr_ds_result_deinit), or a transport error.
 *
 * Retries: network errors (a refused connection, a connection dropped in
 * the middle of a response, a body cut short), 429 (Retry-After honoured)
 * and 5xx are retried with backoff and jitter (100 ms, x1.3 per attempt,
 * up to 60 s, full jitter, no attempt limit: the caller's deadline ends
 * them); 400, 403, 404, 409, 410 and 413 never are. opts.retry replaces
 * that policy. A read resumes from the last offset it delivered, so no
 * byte is lost or delivered twice however often the connection fails.
 *
 * Requests carry the handle's headers (static, and headers_fn evaluated
 * for every request, so a token can be refreshed) and query parameters
 * (static and params_fn), with the protocol's own (offset, live, cursor)
 * in one query sorted by name, which keeps CDN cache keys stable. No
 * Accept-Encoding is sent, so bodies are never compressed.
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
 * A read's connection silent for idle_timeout_ms counts as dropped. Answers
 * that bring nothing new (a 204 or 304, an empty 200 that is not up to
 * date) and come back at once are asked again after a wait that starts
 * at 50 ms and doubles with each such answer in a row, up to 2 s, so a
 * server cannot drive a read into a busy loop; a server that holds its
 * long-poll is asked again at once. Offsets and cursors from the server
 * are checked where they enter: 1 to 1024 printable ASCII bytes (what
 * pr_ds_read_open takes back), else PR_EPROTO.
 */

/* A stream handle: its URL and what every request carries. Opaque; owned
   by the thread that opened it (any of its tasks may use it). */
typedef struct pr_ds pr_ds;

/* A read of a stream (pr_ds_read_open). Opaque; one task reads it at a time. */
typedef struct pr_ds_read pr_ds_read;

typedef struct pr_ds_opts {
    pr_http_client *client;     /* NULL = a client of its own (redirects followed) */
    const char *content_type;   /* NULL = learned from pr_ds_head, else application/octet-stream:
                                   sent by create and append (copied) */
    const char *const *headers; /* NULL-terminated "Name: value" lines for every request (copied) */
    int (*headers_fn)(pr_buf *out, void *user_data); /* NULL = none: called before every request;
                                   appends "Name: value\r\n" lines; non-zero refuses the request */
    const char *const *params;  /* NULL-terminated "name=value" query pairs for every request,
                                   already encoded (copied) */
    int (*params_fn)(pr_buf *out, void *user_data); /* NULL = none: called before every request;
                                   appends encoded "name=value" pairs separated by '&' */
    void *user_data;            /* for headers_fn and params_fn */
    pr_retry_policy retry;      /* zero = the Durable Streams policy above; classify is replaced
                                   by the protocol's (network errors, 429, 5xx) unless set */
    pr_err_info *err;           /* out, optional: why pr_ds_open failed */
} pr_ds_opts;

/* pr_ds_result.error: what an error status means. */
enum pr_ds_error {
    PR_DS_OK = 0,
    PR_DS_NOT_FOUND,        /* 404: no such stream */
    PR_DS_CONFLICT_EXISTS,  /* 409 on create: the stream exists with another configuration */
    PR_DS_CONFLICT_SEQ,     /* 409 on append: Stream-Seq not above the last one, or another content type */
    PR_DS_STREAM_CLOSED,    /* 409 with Stream-Closed: true: the final offset in res->offset */
    PR_DS_SEQUENCE_GAP,     /* 409 with Producer-Expected-Seq: res->expected_seq, res->received_seq */
    PR_DS_STALE_EPOCH,      /* 403: a newer producer epoch exists (res->producer_epoch) */
    PR_DS_BAD_REQUEST,      /* 400: bad offset, TTL, empty body, invalid JSON, producer headers */
    PR_DS_GONE,             /* 410: deleted, or an offset before the retained data */
    PR_DS_TOO_LARGE,        /* 413 */
    PR_DS_RATE_LIMITED,     /* 429 (after the retries) */
    PR_DS_SERVER_ERROR,     /* 5xx (after the retries) */
    PR_DS_NOT_SUPPORTED,    /* 405 or 501: the operation is not supported on this stream */
    PR_DS_UNEXPECTED_STATUS /* any other status */
};

/* The answer to an operation. Zero it before the first use;
   pr_ds_result_deinit frees it (the slices point into http.resp). */
typedef struct pr_ds_result {
    int status;             /* the final HTTP status; 0 when no response came */
    int error;              /* PR_DS_* for an error status, else PR_DS_OK */
    pr_slice offset;        /* Stream-Next-Offset (the tail, the final offset of a closed stream) */
    pr_slice content_type;  /* Content-Type (head, create) */
    pr_slice etag;          /* ETag */
    pr_slice expires_at;    /* Stream-Expires-At */
    pr_slice cursor;        /* Stream-Cursor */
    int64_t ttl_s;          /* Stream-TTL, -1 when absent */
    int closed;             /* Stream-Closed: true */
    int up_to_date;         /* Stream-Up-To-Date: true */
    int64_t producer_epoch; /* Producer-Epoch, -1 when absent */
    int64_t producer_seq;   /* Producer-Seq, -1 when absent */
    int64_t expected_seq;   /* Producer-Expected-Seq, -1 when absent */
    int64_t received_seq;   /* Producer-Received-Seq, -1 when absent */
    pr_http_result http;    /* the response: headers (pr_http_header_get(res.http.resp, ..)),
                               body (the server's message on errors), err (failure detail) */
} pr_ds_result;

/* Options of pr_ds_create; zero = a plain create. */
typedef struct pr_ds_create_opts {
    const char *content_type;   /* NULL = the handle's */
    int64_t ttl_s;              /* > 0: Stream-TTL (a sliding idle window in seconds) */
    const char *expires_at;     /* NULL = none: Stream-Expires-At (RFC 3339) */
    int closed;                 /* 1 = created closed (the body is then all of it) */
    const void *body;           /* the initial content; NULL = none */
    size_t body_len;
} pr_ds_create_opts;

/* Options of pr_ds_append; NULL or zero = a plain append. */
typedef struct pr_ds_append_opts {
    const char *seq;            /* NULL = none: Stream-Seq, which must rise (byte-wise) per append */
    int close;                  /* 1 = append and close in one request */
    int raw_json;               /* on a JSON stream: 0 = data is one message, sent as [data];
                                   1 = data is sent as it is (an array is flattened one level) */
    const char *producer_id;    /* NULL = none; else Producer-Id/-Epoch/-Seq from the fields below */
    int64_t producer_epoch;
    int64_t producer_seq;
} pr_ds_append_opts;

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
    pr_err_info *err;           /* out, optional: why pr_ds_read_open failed */
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

/* Open a handle. No request is made.
   Params: out - receives the handle; url - the stream's absolute http or
           https URL (copied); opts - NULL for defaults (copied).
   Returns: PR_OK; PR_EINVAL (out or url NULL, a URL that does not parse, a
            malformed header or parameter, an invalid retry policy);
            PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_ds_destroy. */
PRISTINE_API int pr_ds_open(pr_ds **out, const char *url, const pr_ds_opts *opts);

/* Free a handle (and its own client). Reads of it must be destroyed first.
   Params: ds - the handle; NULL is a no-op.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_ds_open. */
PRISTINE_API void pr_ds_destroy(pr_ds *ds);

/* The content type the handle sends (given, learned from a head, or the
   default).
   Params: ds - the handle.
   Returns: a NUL-terminated string valid until the next operation.
   Blocks: no.
   Thread: owner.
   See: pr_ds_head. */
PRISTINE_API const char *pr_ds_content_type(const pr_ds *ds);

/* Create the stream (PUT). 201 creates it; 200 means it exists with the
   same configuration (both PR_OK: res->status tells which).
   Params: ds - the handle; o - NULL = a plain create with the handle's
           content type; res - zeroed or deinit'ed result, filled;
           deadline - absolute ms.
   Returns: PR_OK; PR_EHTTP (res->error: PR_DS_CONFLICT_EXISTS,
            PR_DS_BAD_REQUEST, ...); PR_EINVAL; transport errors
            (PR_ETIMEDOUT, PR_ECANCELED, PR_EIO, ...) with res->http.err.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_head, pr_ds_delete. */
PRISTINE_API int pr_ds_create(pr_ds *ds, const pr_ds_create_opts *o, pr_ds_result *res, int64_t deadline);

/* The stream's metadata (HEAD): res->offset (the tail), content_type,
   closed, ttl_s, expires_at, etag. A handle without a content type of its
   own adopts the stream's.
   Params: ds - the handle; res - result, filled; deadline - absolute ms.
   Returns: PR_OK; PR_EHTTP (PR_DS_NOT_FOUND, PR_DS_GONE); PR_ETIMEDOUT;
            PR_ECANCELED; transport errors.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_create. */
PRISTINE_API int pr_ds_head(pr_ds *ds, pr_ds_result *res, int64_t deadline);

/* Delete the stream (DELETE).
   Params: ds - the handle; res - result, filled; deadline - absolute ms.
   Returns: PR_OK; PR_EHTTP (PR_DS_NOT_FOUND, PR_DS_GONE); PR_ETIMEDOUT;
            PR_ECANCELED; transport errors.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_create. */
PRISTINE_API int pr_ds_delete(pr_ds *ds, pr_ds_result *res, int64_t deadline);

/* Append (POST) with the handle's content type. On a JSON stream data is
   one message, sent as [data] (o->raw_json sends it as it is). res->offset
   is the new tail.
   Params: ds - the handle; data, len - the bytes (len 0 only with
           o->close); o - NULL = a plain append; res - result, filled;
           deadline - absolute ms.
   Returns: PR_OK; PR_EHTTP (PR_DS_STREAM_CLOSED with the final offset,
            PR_DS_CONFLICT_SEQ, PR_DS_NOT_FOUND, PR_DS_BAD_REQUEST,
            PR_DS_STALE_EPOCH, PR_DS_SEQUENCE_GAP, ...); PR_EINVAL (an
            empty append without close); PR_ETIMEDOUT; PR_ECANCELED;
            transport errors.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_close. */
PRISTINE_API int pr_ds_append(pr_ds *ds, const void *data, size_t len, const pr_ds_append_opts *o,
                              pr_ds_result *res, int64_t deadline);

/* Close the stream, with an optional final message (sent like an append).
   Closing a closed stream without a body is PR_OK too. res->offset is the
   final offset.
   Params: ds - the handle; data, len - the final message (NULL, 0 = none);
           res - result, filled; deadline - absolute ms.
   Returns: PR_OK; PR_EHTTP (PR_DS_STREAM_CLOSED for a final message on a
            closed stream, PR_DS_NOT_FOUND, ...); PR_ETIMEDOUT;
            PR_ECANCELED; transport errors.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_append. */
PRISTINE_API int pr_ds_close(pr_ds *ds, const void *data, size_t len, pr_ds_result *res, int64_t deadline);

/* Free what a result holds and zero it (NULL is a no-op).
   Params: res - the result.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_ds_create. */
PRISTINE_API void pr_ds_result_deinit(pr_ds_result *res);

/* Start a read at an offset. No request is made until pr_ds_read_next.
   Params: out - receives the read; ds - the handle (must outlive the
           read); offset - "-1" (or NULL) for the start, "now" for the
           tail, or an offset from the server (copied); o - NULL = catch-up.
   Returns: PR_OK; PR_EINVAL (out or ds NULL, an unknown mode, an offset
            with a byte outside printable ASCII or longer than 1024);
            PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_ds_read_next, pr_ds_read_destroy. */
PRISTINE_API int pr_ds_read_open(pr_ds_read **out, pr_ds *ds, const char *offset, const pr_ds_read_opts *o);

/* The next chunk of the read. Live modes wait at the tail for new data;
   a chunk is delivered when data arrived, when the read first reaches the
   tail (up_to_date, maybe without data) and when the stream closed.
   Params: r - the read; c - receives the chunk; deadline - absolute ms.
   Returns: PR_OK; PR_ECLOSED (after the closed chunk, or after the
            up-to-date chunk of a catch-up read: the read is over);
            PR_ETIMEDOUT (the deadline passed: the read stays usable and
            resumes from c->offset); PR_ECANCELED; PR_EHTTP (an error
            status: pr_ds_read_error gives the detail and the PR_DS_*
            meaning); PR_EPROTO (a JSON body or SSE control event that does
            not parse, a response without Stream-Next-Offset); PR_ELIMIT;
            transport errors after the retries.
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

/* Why the read's last call failed: the detail, and for an error status
   its PR_DS_* meaning.
   Params: r - the read; out - receives the detail (may be NULL).
   Returns: the PR_DS_* meaning (PR_DS_OK when the failure was no status).
   Blocks: no.
   Thread: owner.
   See: pr_ds_read_next. */
PRISTINE_API int pr_ds_read_error(const pr_ds_read *r, pr_err_info *out);

/* End a read and free it.
   Params: r - the read; NULL is a no-op.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_ds_read_open. */
PRISTINE_API void pr_ds_read_destroy(pr_ds_read *r);

/* An idempotent producer (pr_ds_producer_create): exactly-once appends
   through a producer id, an epoch and a sequence number per request.
   append queues without blocking until max_buffer_bytes are queued or in
   flight, then suspends the caller (backpressure); batches are sealed at
   max_batch_bytes / max_batch_items or linger_ms after their first
   message (0: as soon as the appending task yields), and up to
   max_in_flight batches are in flight at once, each on its own connection.
   The server's answers: 200 and 204 (a duplicate) are success; 403 (a
   newer epoch) fails, or with auto_claim moves to the server's epoch + 1
   and sends the same batch again as seq 0, with nothing else in flight
   until that epoch is confirmed; 409 with an expected seq below the
   batch's (the batches arrived out of order) waits for the lower batches'
   answers and sends again (after a backoff when they are answered
   already). A batch whose fate is unknown (a timeout, a broken
   connection) or passing (429, 5xx) is sent again with the same epoch and
   seq until the server answers it (the server stores it once), each send
   within request_timeout_ms, with the handle's backoff between them, for
   at most delivery_timeout_ms. Only then, or on an answer no resend can
   mend (400, 404, 413, a fenced epoch without auto_claim, ...), does the
   producer fail: on_error hears it at once, append, flush and close
   return it from then on (PR_EHTTP with the status's meaning in
   pr_ds_producer_error, PR_EFAILED when the delivery timeout passed, ...;
   never PR_ETIMEDOUT, which only means the caller's own deadline), the
   batches above the failed one are abandoned (the server would refuse
   them as a gap), and pr_ds_producer_restart starts over in the next
   epoch. Nothing accepted by append is dropped without a word. On a JSON
   stream each append is one message and a batch is sent as one array.
   One producer belongs to one thread; its calls may come from any of its
   tasks, flush, close and restart from one task at a time. */
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
    void *user_data;
} pr_ds_producer_opts;

/* Create a producer on a handle (which must outlive it).
   Params: out - receives it; ds - the handle; o - options (producer_id
           required).
   Returns: PR_OK; PR_EINVAL (no producer id, a negative epoch or limit);
            PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_ds_producer_append, pr_ds_producer_destroy. */
PRISTINE_API int pr_ds_producer_create(pr_ds_producer **out, pr_ds *ds, const pr_ds_producer_opts *o);

/* Queue one message (copied). Waits only while max_buffer_bytes are
   queued or in flight.
   Params: p - the producer; data, len - the message (len > 0); deadline -
           absolute ms for that wait.
   Returns: PR_OK; the producer's failure (PR_EHTTP with
            pr_ds_producer_error, PR_EFAILED, ...: every call until a
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
            PR_ETIMEDOUT (the deadline passed; the batches go on);
            PR_ECANCELED; PR_ESTATE (another task is flushing).
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
            ...); the producer's failure; PR_ETIMEDOUT; PR_ECANCELED.
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

/* The detail of the producer's failure (or of the last one a restart
   cleared), and its PR_DS_* meaning.
   Params: p - the producer; out - receives the detail (may be NULL).
   Returns: the PR_DS_* meaning (PR_DS_OK when it was no status).
   Blocks: no.
   Thread: owner.
   See: pr_ds_producer_append. */
PRISTINE_API int pr_ds_producer_error(const pr_ds_producer *p, pr_err_info *out);

/* Stop the producer and free it. Batches not yet answered are abandoned
   (flush first to send them: that is a detach).
   Params: p - the producer; NULL is a no-op.
   Returns: nothing.
   Blocks: no (its tasks are cancelled and joined; they unwind at once).
   Thread: owner.
   See: pr_ds_producer_flush. */
PRISTINE_API void pr_ds_producer_destroy(pr_ds_producer *p);

/* A consumer (pr_ds_consumer_start): a task that follows a stream from a
   stored offset until the stream closes or it is stopped. Each batch goes
   to on_batch (the task waits for it: a slow handler holds the reader back
   instead of buffering; to feed a channel, pr_chan_send from on_batch),
   then on_checkpoint gets the offset after it: store that, and a restart
   from it (opts.offset) neither loses nor repeats a byte. Network errors,
   429 and 5xx reconnect with the handle's backoff for as long as it
   takes; other failures (404, a malformed body, ...) stop it. State
   changes go to on_state and, with opts.telemetry, to the telemetry hub. */
typedef struct pr_ds_consumer pr_ds_consumer;

/* pr_ds_consumer_opts.on_state */
enum {
    PR_DS_CONSUMER_CONNECTING = 1,
    PR_DS_CONSUMER_LIVE = 2,
    PR_DS_CONSUMER_UP_TO_DATE = 3,
    PR_DS_CONSUMER_CLOSED = 4,
    PR_DS_CONSUMER_STOPPED = 5
};

typedef struct pr_ds_consumer_opts {
    const char *offset;         /* NULL = "-1": where to start (a checkpoint), copied */
    int live;                   /* PR_DS_LIVE_LONG_POLL, _SSE or _AUTO; 0 = PR_DS_LIVE_AUTO */
    int prefer_sse;             /* with PR_DS_LIVE_AUTO: SSE, falling back to long-poll */
    int (*on_batch)(const pr_ds_chunk *c, void *user_data); /* required: non-zero stops the consumer
                                   (that value is its result) */
    void (*on_checkpoint)(const char *offset, size_t len, void *user_data); /* NULL = none */
    void (*on_state)(int state, const pr_err_info *why, void *user_data); /* NULL = none; why: the
                                   failure behind CONNECTING (a reconnect) or STOPPED, else NULL */
    void *user_data;
    pr_telemetry *telemetry;    /* NULL = none: every state change is also a PR_TELEMETRY_STREAM_STATE
                                   event "ds.consumer.state" (fields url, state, offset, detail);
                                   borrowed, must outlive the consumer */
    int idle_timeout_ms;        /* as pr_ds_read_opts.idle_timeout_ms (0 = 60000; < 0 = none) */
} pr_ds_consumer_opts;

/* Start following the stream in a task of the calling thread.
   Params: out - receives the consumer; ds - the handle (must outlive it);
           o - options (on_batch required).
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_ds_consumer_wait, pr_ds_consumer_stop. */
PRISTINE_API int pr_ds_consumer_start(pr_ds_consumer **out, pr_ds *ds, const pr_ds_consumer_opts *o);

/* Wait until the consumer ends by itself.
   Params: c - the consumer; deadline - absolute ms.
   Returns: PR_ECLOSED (the stream closed: every batch handled); on_batch's
            non-zero result; the failure that stopped it (PR_EHTTP, PR_EPROTO,
            ...); PR_ETIMEDOUT (still running); PR_ECANCELED.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_consumer_stop. */
PRISTINE_API int pr_ds_consumer_wait(pr_ds_consumer *c, int64_t deadline);

/* Stop the consumer (cancelling its task if it runs) and free it.
   on_batch is never called again once this returns.
   Params: c - the consumer; NULL is a no-op.
   Returns: nothing.
   Blocks: no (the task is cancelled and joined; it unwinds at once).
   Thread: owner.
   See: pr_ds_consumer_start. */
PRISTINE_API void pr_ds_consumer_stop(pr_ds_consumer *c);

// @pristine:impl
#define PR__DS_MAX_FIELDS 32
#define PR__DS_MAX_OFFSET 1024
#define PR__DS_DEF_CHUNK ((size_t)64 << 20)
#define PR__DS_DEF_IDLE 60000
#define PR__DS_QUICK_MS 50       /* the wait after an answer that brought nothing new at once, */
#define PR__DS_QUICK_MAX_MS 2000 /* doubling per such answer in a row up to this */

struct pr_ds {
    pr_http_client *client;
    int own_client;
    pr_url url;                 /* without its query: that went into base_params */
    char *base;                 /* the URL text up to the query */
    pr_buf base_params;         /* the URL's own query pairs and opts.params, '&'-separated */
    pr_buf fixed;               /* opts.headers as "Name: value\r\n" lines */
    char *ctype;                /* the content type sent */
    int ctype_given;
    pr_ds_opts o;
    pr_retry_policy retry;
    char *etag, *etag_at;       /* the ETag of an empty catch-up answer at offset etag_at: sent as
                                   If-None-Match by the next catch-up there (304 = still nothing) */
};

/* 100 ms doubling to 60 s, full jitter (a uniform wait below the delay) */
static const pr_backoff pr__ds_backoff = { PR_BACKOFF_EXPONENTIAL, PR_JITTER_FACTOR, 100, 60000, 1.0, 0.0, 0.0 };

#define PR__DS_TO_POLL 1 /* pr__ds_sse_next: SSE gave up, long-poll instead */

/* The protocol's verdict on an attempt: network errors as the default
   classifier says, 429 and 5xx again (after the server's hint when it
   gave one), every other status is the answer. */
static int pr__ds_classify(int outcome, int64_t *after_ms, void *user_data) {
    (void)user_data;
    if (outcome < 0) return pr_retry_classify_default(outcome, NULL, NULL);
    if (outcome == 429 || (outcome >= 500 && outcome <= 599)) return *after_ms >= 0 ? PR_RETRY_AFTER : PR_RETRY_AGAIN;
    return PR_RETRY_OK;
}

static void pr__ds_setstr(char **dst, const char *s, size_t n) {
    char *d = pr__strndup(s, n);
    if (!d) return; /* keep the old one */
    pr__strfree(dst);
    *dst = d;
}

/* An offset or cursor as the protocol carries it in a query: 1 to 1024
   printable ASCII bytes (no space, no control byte, no NUL). */
static int pr__ds_token_ok(const char *p, size_t n) {
    size_t i;
    if (!n || n > PR__DS_MAX_OFFSET) return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f) return 0;
    return 1;
}

int pr_ds_open(pr_ds **out, const char *url, const pr_ds_opts *opts) {
    pr_ds *ds;
    pr_err_info tmp, *err = opts && opts->err ? opts->err : &tmp;
    size_t i, q;
    int rc = PR_OK;
    memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out || !url) return pr__err_set(err, PR_EINVAL, 0, "ds: out and url are required");
    if (!(ds = (pr_ds *)pr__calloc(1, sizeof *ds))) return pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
    if (opts) ds->o = *opts;
    ds->o.err = NULL;
    pr_buf_init(&ds->base_params);
    pr_buf_init(&ds->fixed);
    q = strcspn(url, "?#");
    if ((rc = pr_url_parse(&ds->url, url, q, err)) != PR_OK) goto fail;
    if (!(ds->base = (char *)pr__alloc(q + 1))) goto nomem;
    memcpy(ds->base, url, q);
    ds->base[q] = 0;
    if (url[q] == '?') { /* the URL's own query joins the sorted parameters */
        size_t e = q + 1 + strcspn(url + q + 1, "#");
        if (e > q + 1 && pr_buf_append(&ds->base_params, url + q + 1, e - q - 1) != PR_OK) goto nomem;
    }
    for (i = 0; ds->o.params && ds->o.params[i]; i++) {
        const char *p = ds->o.params[i];
        if (!*p || strchr(p, '&') || strchr(p, '#') || strchr(p, ' ')) {
            rc = pr__err_set(err, PR_EINVAL, 0, "ds: query parameter %zu is not one encoded name=value pair", i);
            goto fail;
        }
        if ((ds->base_params.len && pr_buf_append(&ds->base_params, "&", 1) != PR_OK) ||
            pr_buf_append_str(&ds->base_params, p) != PR_OK)
            goto nomem;
    }
    for (i = 0; ds->o.headers && ds->o.headers[i]; i++) {
        const char *h = ds->o.headers[i];
        if (!pr__sse_field_ok(h, strlen(h)) || i >= PR__DS_MAX_FIELDS) {
            rc = pr__err_set(err, PR_EINVAL, 0, "ds: header line %zu is malformed (or more than %d)", i,
                             PR__DS_MAX_FIELDS);
            goto fail;
        }
        if (pr_buf_append_str(&ds->fixed, h) != PR_OK || pr_buf_append(&ds->fixed, "\r\n", 2) != PR_OK) goto nomem;
    }
    ds->o.headers = NULL;
    ds->o.params = NULL;
    ds->ctype_given = ds->o.content_type != NULL;
    if (!(ds->ctype = pr__strdup(PR__DEF(ds->o.content_type, "application/octet-stream"), NULL)))
        goto nomem;
    ds->o.content_type = NULL;
    ds->retry = ds->o.retry;
    if (!ds->retry.backoff.base_ms) ds->retry.backoff = pr__ds_backoff;
    ds->retry.max_retries = PR__DEF(ds->retry.max_retries, PR_RETRY_UNLIMITED);
    ds->retry.classify = PR__DEF(ds->retry.classify, pr__ds_classify);
    if (pr_backoff_check(&ds->retry.backoff) != PR_OK) {
        rc = pr__err_set(err, PR_EINVAL, 0, "ds: invalid retry backoff");
        goto fail;
    }
    if (ds->o.client) {
        ds->client = ds->o.client;
    } else {
        pr_http_client_opts co;
        memset(&co, 0, sizeof co);
        co.max_redirects = 5;
        co.fetch_max_bytes = PR__DS_DEF_CHUNK; /* a catch-up answer is held whole */
        if ((rc = pr_http_client_create(&ds->client, &co)) != PR_OK) {
            pr__err_set(err, rc, 0, "ds: could not create the HTTP client");
            goto fail;
        }
        ds->own_client = 1;
    }
    *out = ds;
    return PR_OK;
nomem:
    rc = pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
fail:
    pr_ds_destroy(ds);
    return rc;
}

void pr_ds_destroy(pr_ds *ds) {
    if (!ds) return;
    if (ds->own_client) pr_http_client_destroy(ds->client);
    pr_url_deinit(&ds->url);
    if (ds->base) pr__free(ds->base, strlen(ds->base) + 1);
    if (ds->ctype) pr__free(ds->ctype, strlen(ds->ctype) + 1);
    pr__strfree(&ds->etag);
    pr__strfree(&ds->etag_at);
    pr_buf_deinit(&ds->base_params);
    pr_buf_deinit(&ds->fixed);
    pr__free(ds, sizeof *ds);
}

const char *pr_ds_content_type(const pr_ds *ds) { return ds ? ds->ctype : NULL; }

/* The MIME essence of a content type: application/json (any case). */
static int pr__ds_is_json(const char *ct) {
    pr_slice t = pr_slice_cstr(ct ? ct : "");
    return pr__http_media_is(&t, "application/json");
}

/* text/... or application/json: SSE sends such streams as text. */
static int pr__ds_is_text(const char *ct) {
    return pr__ds_is_json(ct) || (ct && strlen(ct) >= 5 && pr_slice_ieq(pr__url_sl(ct, 5), pr_slice_cstr("text/")));
}

/* ---- one request ---- */

typedef struct pr__ds_req {
    const char *method;
    const char *query;          /* protocol pairs "k=v&k=v" (encoded), or NULL */
    const pr_http_header *extra; /* protocol header fields */
    size_t nextra;
    const void *body;
    size_t body_len;
    int stream;                 /* 1 = leave the body to be read (SSE): *resp receives it */
    int idle_ms;                /* the connection's idle limit (reads), 0 = the client's */
} pr__ds_req;

/* Compare two "k=v" pairs by key, then by the whole pair. */
static int pr__ds_pair_cmp(const void *a, const void *b) {
    const pr_slice *x = (const pr_slice *)a, *y = (const pr_slice *)b;
    size_t kx = strcspn(x->ptr, "=&"), ky = strcspn(y->ptr, "=&"), n;
    int c;
    if (kx > x->len) kx = x->len;
    if (ky > y->len) ky = y->len;
    n = kx < ky ? kx : ky;
    c = memcmp(x->ptr, y->ptr, n);
    if (c || kx != ky) return c ? c : (kx < ky ? -1 : 1);
    n = x->len < y->len ? x->len : y->len;
    c = memcmp(x->ptr, y->ptr, n);
    return c ? c : (x->len < y->len ? -1 : x->len > y->len);
}

/* The request URL: base, '?', every pair sorted by key. */
static int pr__ds_build_url(pr_ds *ds, const char *query, pr_buf *url) {
    pr_buf all, dyn;
    pr_slice pairs[64];
    size_t n = 0, pos = 0, i;
    int rc = PR_OK;
    pr_buf_init(&all);
    pr_buf_init(&dyn);
    if (ds->o.params_fn && (rc = ds->o.params_fn(&dyn, ds->o.user_data)) != 0) {
        rc = rc < 0 ? rc : PR_EINVAL;
        goto done;
    }
    if ((ds->base_params.len && pr_buf_append(&all, ds->base_params.data, ds->base_params.len)) ||
        (dyn.len && ((all.len && pr_buf_append(&all, "&", 1)) || pr_buf_append(&all, dyn.data, dyn.len))) ||
        (query && *query && ((all.len && pr_buf_append(&all, "&", 1)) || pr_buf_append_str(&all, query)))) {
        rc = PR_ENOMEM;
        goto done;
    }
    while (pos < all.len) {
        const char *p = all.data + pos, *amp = (const char *)memchr(p, '&', all.len - pos);
        size_t len = amp ? (size_t)(amp - p) : all.len - pos;
        pos += len + 1;
        if (!len) continue;
        if (n == sizeof pairs / sizeof pairs[0]) {
            rc = PR_EINVAL;
            goto done;
        }
        pairs[n].ptr = p;
        pairs[n++].len = len;
    }
    qsort(pairs, n, sizeof pairs[0], pr__ds_pair_cmp);
    if ((rc = pr_buf_append_str(url, ds->base)) != PR_OK) goto done;
    for (i = 0; i < n && rc == PR_OK; i++)
        if ((rc = pr_buf_append(url, i ? "&" : "?", 1)) == PR_OK) rc = pr_buf_append(url, pairs[i].ptr, pairs[i].len);
    if (rc == PR_OK) rc = pr_buf_append(url, "", 1);
    if (rc == PR_OK) url->len--;
done:
    pr_buf_deinit(&all);
    pr_buf_deinit(&dyn);
    return rc;
}

/* Fill the result's views from the response head. */
static void pr__ds_fill(pr_ds_result *res, pr_http_response *r) {
    const pr_slice *v;
    int64_t n;
    res->status = pr_http_status(r);
    res->ttl_s = res->producer_epoch = res->producer_seq = res->expected_seq = res->received_seq = -1;
#define PR__DS_VIEW(field, name) \
    if ((v = pr_http_header_get(r, name)) != NULL) res->field = pr_slice_trim(*v);
    PR__DS_VIEW(offset, "stream-next-offset")
    PR__DS_VIEW(content_type, "content-type")
    PR__DS_VIEW(etag, "etag")
    PR__DS_VIEW(expires_at, "stream-expires-at")
    PR__DS_VIEW(cursor, "stream-cursor")
#undef PR__DS_VIEW
#define PR__DS_NUM(field, name) \
    if ((v = pr_http_header_get(r, name)) != NULL && pr_parse_i64(pr_slice_trim(*v), &n) == PR_OK) res->field = n;
    PR__DS_NUM(ttl_s, "stream-ttl")
    PR__DS_NUM(producer_epoch, "producer-epoch")
    PR__DS_NUM(producer_seq, "producer-seq")
    PR__DS_NUM(expected_seq, "producer-expected-seq")
    PR__DS_NUM(received_seq, "producer-received-seq")
#undef PR__DS_NUM
    res->closed = (v = pr_http_header_get(r, "stream-closed")) != NULL && pr_slice_ieq(pr_slice_trim(*v), pr_slice_cstr("true"));
    res->up_to_date =
        (v = pr_http_header_get(r, "stream-up-to-date")) != NULL && pr_slice_ieq(pr_slice_trim(*v), pr_slice_cstr("true"));
}

/* The meaning of an error status for an operation ("create", "append", ...). */
static int pr__ds_meaning(const pr_ds_result *res, const char *op) {
    int st = res->status;
    if (st == 404) return PR_DS_NOT_FOUND;
    if (st == 409) {
        if (res->closed) return PR_DS_STREAM_CLOSED;
        if (res->expected_seq >= 0) return PR_DS_SEQUENCE_GAP;
        return strcmp(op, "create") == 0 ? PR_DS_CONFLICT_EXISTS : PR_DS_CONFLICT_SEQ;
    }
    if (st == 403) return PR_DS_STALE_EPOCH;
    if (st == 400) return PR_DS_BAD_REQUEST;
    if (st == 410) return PR_DS_GONE;
    if (st == 413) return PR_DS_TOO_LARGE;
    if (st == 429) return PR_DS_RATE_LIMITED;
    if (st == 405 || st == 501) return PR_DS_NOT_SUPPORTED;
    if (st >= 500 && st <= 599) return PR_DS_SERVER_ERROR;
    return PR_DS_UNEXPECTED_STATUS;
}

static const char *pr__ds_meaning_text(int e) {
    switch (e) {
    case PR_DS_NOT_FOUND: return "stream not found";
    case PR_DS_CONFLICT_EXISTS: return "the stream exists with another configuration";
    case PR_DS_CONFLICT_SEQ: return "conflict: Stream-Seq not above the last one, or another content type";
    case PR_DS_STREAM_CLOSED: return "the stream is closed";
    case PR_DS_SEQUENCE_GAP: return "producer sequence gap";
    case PR_DS_STALE_EPOCH: return "stale producer epoch";
    case PR_DS_BAD_REQUEST: return "bad request";
    case PR_DS_GONE: return "gone";
    case PR_DS_TOO_LARGE: return "payload too large";
    case PR_DS_RATE_LIMITED: return "rate limited";
    case PR_DS_SERVER_ERROR: return "server error";
    case PR_DS_NOT_SUPPORTED: return "not supported on this stream";
    default: return "unexpected status";
    }
}

/* Set res->http.err for an error status: the meaning, the path, the
   server's words. Returns PR_EHTTP. */
static int pr__ds_status_error(pr_ds *ds, pr_ds_result *res, const char *op) {
    int st = res->status;
    size_t n = res->http.body ? PR__MIN(res->http.body_len, (size_t)60) : 0, i;
    char msg[64];
    res->error = pr__ds_meaning(res, op);
    for (i = 0; i < n; i++) msg[i] = res->http.body[i] >= 0x20 && res->http.body[i] < 0x7f ? res->http.body[i] : ' ';
    msg[n] = 0;
    pr__err_set(&res->http.err, PR_EHTTP, 0, "ds: %s %.*s: %d %s%s%s", op, (int)PR__MIN(ds->url.path.len, (size_t)90),
                ds->url.path.ptr, st, pr__ds_meaning_text(res->error), n ? ": " : "", msg);
    res->http.err.http_status = st;
    res->http.err.category = st >= 500 || st == 429 ? PR_CATEGORY_SERVER : PR_CATEGORY_USER;
    return PR_EHTTP;
}

/* Make one logical request (retried by the handle's policy). For a
   streamed body (rq->stream), *resp receives the open response. */
static int pr__ds_do(pr_ds *ds, const pr__ds_req *rq, pr_ds_result *res, pr_http_response **resp, int64_t deadline) {
    /* the protocol's fields go on when a redirect leaves the origin; the caller's do not */
    static const char *const fwd[] = { "Stream-TTL", "Stream-Expires-At", "Stream-Closed", "Stream-Seq", "Producer-Id",
                                       "Producer-Epoch", "Producer-Seq", "If-None-Match", NULL };
    pr_http_header h[PR__DS_MAX_FIELDS * 2 + 8];
    pr_http_request req;
    pr_buf url, dyn;
    pr_url u;
    size_t n = 0, i;
    int rc;
    pr_ds_result_deinit(res);
    res->ttl_s = res->producer_epoch = res->producer_seq = res->expected_seq = res->received_seq = -1;
    pr_buf_init(&url);
    pr_buf_init(&dyn);
    memset(&u, 0, sizeof u);
    if ((rc = pr__ds_build_url(ds, rq->query, &url)) != PR_OK) {
        pr__err_set(&res->http.err, rc, 0, "ds: %s", rc == PR_ENOMEM ? "out of memory" : "params_fn or the query is refused");
        goto done;
    }
    if ((rc = pr_url_parse(&u, url.data, url.len, &res->http.err)) != PR_OK) goto done;
    if (ds->o.headers_fn && (rc = ds->o.headers_fn(&dyn, ds->o.user_data)) != 0) {
        rc = rc < 0 ? rc : PR_EINVAL;
        pr__err_set(&res->http.err, rc, 0, "ds: %s", "headers_fn refused the request");
        goto done;
    }
    for (i = 0; i < rq->nextra; i++) h[n++] = rq->extra[i];
    if (pr__sse_fields(&ds->fixed, h, sizeof h / sizeof h[0], &n) != 0 ||
        pr__sse_fields(&dyn, h, sizeof h / sizeof h[0], &n) != 0) {
        rc = pr__err_set(&res->http.err, PR_EINVAL, 0, "ds: %s", "a header line from headers_fn is malformed or too many");
        goto done;
    }
    memset(&req, 0, sizeof req);
    req.method = rq->method;
    req.url = &u;
    req.headers = h;
    req.nheaders = n;
    req.body = rq->body;
    req.body_len = rq->body_len;
    req.retry = &ds->retry;
    req.idle_timeout_ms = rq->idle_ms;
    req.redirect_forward = fwd;
    req.err = &res->http.err;
    if (rq->stream) {
        pr_http_response *r = NULL;
        rc = pr_http_client_request(ds->client, &r, &req, deadline);
        if (rc == PR_OK) {
            pr__ds_fill(res, r);
            *resp = r;
        }
    } else {
        rc = pr_http_client_fetch(ds->client, &res->http, &req, deadline);
        if (rc == PR_OK && res->http.resp) pr__ds_fill(res, res->http.resp);
    }
    /* what the server hands out, a read must take back (pr_ds_read_open) */
    if (rc == PR_OK && ((res->offset.len && !pr__ds_token_ok(res->offset.ptr, res->offset.len)) ||
                        (res->cursor.len && !pr__ds_token_ok(res->cursor.ptr, res->cursor.len)))) {
        rc = pr__err_set(&res->http.err, PR_EPROTO, 0, "ds: the server's %s is not 1 to 1024 printable ASCII bytes",
                         res->offset.len && !pr__ds_token_ok(res->offset.ptr, res->offset.len) ? "offset" : "cursor");
        if (resp && *resp) {
            pr_http_response_destroy(*resp);
            *resp = NULL;
        }
    }
done:
    pr_url_deinit(&u);
    pr_buf_deinit(&url);
    pr_buf_deinit(&dyn);
    return rc;
}

void pr_ds_result_deinit(pr_ds_result *res) {
    if (!res) return;
    pr_http_result_deinit(&res->http);
    memset(res, 0, sizeof *res);
}

static void pr__ds_hdr(pr_http_header *h, size_t *n, const char *name, const char *value, size_t len) {
    h[*n].name = pr_slice_cstr(name);
    h[*n].value.ptr = value;
    h[*n].value.len = len;
    (*n)++;
}

int pr_ds_create(pr_ds *ds, const pr_ds_create_opts *o, pr_ds_result *res, int64_t deadline) {
    pr_http_header h[4];
    pr__ds_req rq;
    char ttl[24];
    const char *ct;
    size_t n = 0;
    int rc;
    if (!ds || !res) return PR_EINVAL;
    ct = o && o->content_type ? o->content_type : ds->ctype;
    pr__ds_hdr(h, &n, "Content-Type", ct, strlen(ct));
    if (o && o->ttl_s > 0) {
        size_t k = pr__dec(ttl, (uint64_t)o->ttl_s);
        pr__ds_hdr(h, &n, "Stream-TTL", ttl, k);
    }
    if (o && o->expires_at) pr__ds_hdr(h, &n, "Stream-Expires-At", o->expires_at, strlen(o->expires_at));
    if (o && o->closed) pr__ds_hdr(h, &n, "Stream-Closed", "true", 4);
    memset(&rq, 0, sizeof rq);
    rq.method = "PUT";
    rq.extra = h;
    rq.nextra = n;
    rq.body = o ? o->body : NULL;
    rq.body_len = o && o->body ? o->body_len : 0;
    if ((rc = pr__ds_do(ds, &rq, res, NULL, deadline)) != PR_OK) return rc;
    if (res->status != 200 && res->status != 201) return pr__ds_status_error(ds, res, "create");
    if (o && o->content_type && !ds->ctype_given) pr__ds_setstr(&ds->ctype, ct, strlen(ct));
    return PR_OK;
}

int pr_ds_head(pr_ds *ds, pr_ds_result *res, int64_t deadline) {
    pr__ds_req rq;
    int rc;
    if (!ds || !res) return PR_EINVAL;
    memset(&rq, 0, sizeof rq);
    rq.method = "HEAD";
    if ((rc = pr__ds_do(ds, &rq, res, NULL, deadline)) != PR_OK) return rc;
    if (res->status != 200) return pr__ds_status_error(ds, res, "head");
    if (!ds->ctype_given && res->content_type.len)
        pr__ds_setstr(&ds->ctype, res->content_type.ptr, res->content_type.len);
    return PR_OK;
}

int pr_ds_delete(pr_ds *ds, pr_ds_result *res, int64_t deadline) {
    pr__ds_req rq;
    int rc;
    if (!ds || !res) return PR_EINVAL;
    memset(&rq, 0, sizeof rq);
    rq.method = "DELETE";
    if ((rc = pr__ds_do(ds, &rq, res, NULL, deadline)) != PR_OK) return rc;
    if (res->status != 200 && res->status != 204) return pr__ds_status_error(ds, res, "delete");
    return PR_OK;
}

int pr_ds_append(pr_ds *ds, const void *data, size_t len, const pr_ds_append_opts *o, pr_ds_result *res,
                 int64_t deadline) {
    pr_http_header h[7];
    pr__ds_req rq;
    pr_buf wrapped;
    char ep[24], sq[24];
    size_t n = 0;
    int rc, closing = o && o->close;
    if (!ds || !res || (len && !data)) return PR_EINVAL;
    if (!len && !closing) {
        pr_ds_result_deinit(res);
        return pr__err_set(&res->http.err, PR_EINVAL, 0, "ds: an append needs data (or close)");
    }
    pr_buf_init(&wrapped);
    if (len) pr__ds_hdr(h, &n, "Content-Type", ds->ctype, strlen(ds->ctype));
    if (o && o->seq) pr__ds_hdr(h, &n, "Stream-Seq", o->seq, strlen(o->seq));
    if (closing) pr__ds_hdr(h, &n, "Stream-Closed", "true", 4);
    if (o && o->producer_id) {
        if (!*o->producer_id || o->producer_epoch < 0 || o->producer_seq < 0) return PR_EINVAL;
        pr__ds_hdr(h, &n, "Producer-Id", o->producer_id, strlen(o->producer_id));
        pr__ds_hdr(h, &n, "Producer-Epoch", ep, pr__dec(ep, (uint64_t)o->producer_epoch));
        pr__ds_hdr(h, &n, "Producer-Seq", sq, pr__dec(sq, (uint64_t)o->producer_seq));
    }
    if (len && pr__ds_is_json(ds->ctype) && !(o && o->raw_json)) {
        if (pr_buf_reserve(&wrapped, len + 2) != PR_OK) return PR_ENOMEM;
        pr_buf_append(&wrapped, "[", 1);
        pr_buf_append(&wrapped, data, len);
        pr_buf_append(&wrapped, "]", 1);
        data = wrapped.data;
        len = wrapped.len;
    }
    memset(&rq, 0, sizeof rq);
    rq.method = "POST";
    rq.extra = h;
    rq.nextra = n;
    rq.body = data;
    rq.body_len = len;
    rc = pr__ds_do(ds, &rq, res, NULL, deadline);
    pr_buf_deinit(&wrapped);
    if (rc != PR_OK) return rc;
    if (res->status != 200 && res->status != 204) return pr__ds_status_error(ds, res, closing ? "close" : "append");
    return PR_OK;
}

int pr_ds_close(pr_ds *ds, const void *data, size_t len, pr_ds_result *res, int64_t deadline) {
    pr_ds_append_opts o;
    memset(&o, 0, sizeof o);
    o.close = 1;
    return pr_ds_append(ds, data, len, &o, res, deadline);
}

/* ---- reads ---- */

enum { PR__DS_CATCHUP, PR__DS_POLL, PR__DS_SSE };

struct pr_ds_read {
    pr_ds *ds;
    pr_ds_read_opts o;
    char *offset;               /* the position: after the last chunk delivered */
    char *cursor;
    int phase;                  /* PR__DS_CATCHUP, then the live way */
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
    int failures;               /* SSE connections in a row that failed */
    pr_retry retry;
    int quick;                  /* answers in a row that brought nothing new, at once */
    int64_t asked_at;           /* when the last GET started */
};

int pr_ds_read_open(pr_ds_read **out, pr_ds *ds, const char *offset, const pr_ds_read_opts *o) {
    pr_ds_read *r;
    pr_err_info tmp, *err = o && o->err ? o->err : &tmp;
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
    if (o) r->o = *o;
    r->o.err = NULL;
    r->o.sse_short_ms = PR__DEF(r->o.sse_short_ms, 1000);
    r->o.sse_max_short = PR__DEF(r->o.sse_max_short, 3);
    r->o.max_chunk_bytes = PR__DEF(r->o.max_chunk_bytes, PR__DS_DEF_CHUNK);
    r->o.idle_timeout_ms = PR__DEF(r->o.idle_timeout_ms, PR__DS_DEF_IDLE);
    pr_buf_init(&r->batch);
    pr_buf_init(&r->out);
    if (!(r->offset = pr__strdup(offset, NULL)) || !(r->cursor = pr__strdup("", NULL))) {
        pr_ds_read_destroy(r);
        return pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
    }
    r->json = pr__ds_is_json(ds->ctype);
    r->text = pr__ds_is_text(ds->ctype);
    r->phase = PR__DS_CATCHUP;
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

int pr_ds_read_error(const pr_ds_read *r, pr_err_info *out) {
    if (!r) return PR_DS_OK;
    if (out) *out = r->err;
    return r->error;
}

static int pr__ds_rfail(pr_ds_read *r, int rc, int meaning, const char *fmt, const char *arg) {
    r->error = meaning;
    pr__err_set(&r->err, rc, 0, fmt, arg);
    return rc;
}

/* Move the position to a new offset (and cursor). */
static int pr__ds_advance(pr_ds_read *r, pr_slice off, pr_slice cur) {
    char *d;
    if (!off.len) return pr__ds_rfail(r, PR_EPROTO, PR_DS_OK, "ds: %s", "a response without Stream-Next-Offset");
    if (!pr__ds_token_ok(off.ptr, off.len))
        return pr__ds_rfail(r, PR_EPROTO, PR_DS_OK, "ds: %s", "the server's offset is not 1 to 1024 printable ASCII bytes");
    if (cur.len && !pr__ds_token_ok(cur.ptr, cur.len))
        return pr__ds_rfail(r, PR_EPROTO, PR_DS_OK, "ds: %s", "the server's cursor is not 1 to 1024 printable ASCII bytes");
    if (!(d = pr__strndup(off.ptr, off.len))) return pr__ds_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
    pr__strfree(&r->offset);
    r->offset = d;
    if (cur.len) pr__ds_setstr(&r->cursor, cur.ptr, cur.len);
    return PR_OK;
}

/* Hand out r->out as the chunk (parsing it on a JSON stream). */
static int pr__ds_emit(pr_ds_read *r, pr_ds_chunk *c, int up_to_date, int closed) {
    memset(c, 0, sizeof *c);
    pr_json_doc_destroy(r->doc);
    r->doc = NULL;
    if (r->json) {
        int rc;
        pr_json_error je;
        if (!r->out.len && pr_buf_append(&r->out, "[]", 2) != PR_OK)
            return pr__ds_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
        if ((rc = pr_json_parse(&r->doc, r->out.data, r->out.len, NULL, &je)) != PR_OK || pr_json_type(pr_json_root(r->doc)) != PR_JSON_ARRAY) {
            pr_json_doc_destroy(r->doc);
            r->doc = NULL;
            return pr__ds_rfail(r, rc == PR_ENOMEM ? PR_ENOMEM : PR_EPROTO, PR_DS_OK, "ds: %s",
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
static int pr__ds_json_empty(const char *p, size_t n) {
    pr_slice t = pr_slice_trim(pr__url_sl(p, n));
    return t.len == 2 && t.ptr[0] == '[' && t.ptr[1] == ']';
}

/* Sleep through the handle's retry hooks (tests make waits instant). */
static int pr__ds_sleep(pr_ds *ds, int64_t delay, int64_t until) {
    return pr__retry_hook_sleep(&ds->retry.hooks, delay, until);
}

/* Wait until the earliest moment the next GET may start: answers that
   brought nothing new at once are asked again later and later (a server
   cannot make a busy loop of a read). PR_ETIMEDOUT when the deadline
   comes first. */
static int pr__ds_pace(pr_ds_read *r, int64_t deadline) {
    int64_t at, now = pr_now();
    if (!r->quick) return PR_OK;
    at = pr__time_add(r->asked_at, PR__MIN((int64_t)PR__DS_QUICK_MAX_MS,
                                           (int64_t)PR__DS_QUICK_MS << PR__MIN(r->quick - 1, 20)));
    if (at <= now) return PR_OK;
    if (deadline < at) {
        if (deadline > now) (void)pr__ds_sleep(r->ds, deadline - now, deadline);
        return PR_ETIMEDOUT;
    }
    return pr__ds_sleep(r->ds, at - now, at);
}

/* After an answer: whether it brought something (data, the close, the
   first up-to-date signal) or came back at once with nothing. */
static void pr__ds_paced(pr_ds_read *r, int progress) {
    int64_t next = PR__MIN((int64_t)PR__DS_QUICK_MAX_MS, (int64_t)PR__DS_QUICK_MS << PR__MIN(r->quick, 20));
    if (!progress && pr_now() - r->asked_at < next) r->quick++;
    else r->quick = 0; /* progress, or the server held the request */
}

/* One catch-up or long-poll GET. Returns PR_OK with *got set when a chunk
   is ready in c, PR_OK with *got 0 to ask again, or an error. */
static int pr__ds_get(pr_ds_read *r, pr_ds_chunk *c, int poll, int *got, int64_t deadline) {
    pr_http_header h[2];
    pr__ds_req rq;
    pr_buf q;
    size_t nh = 0;
    int rc, st, has_data;
    *got = 0;
    if ((rc = pr__ds_pace(r, deadline)) != PR_OK) return rc;
    r->asked_at = pr_now();
    pr_buf_init(&q);
    if (pr_url_query_append(&q, "offset", r->offset) != PR_OK ||
        (poll && pr_url_query_append(&q, "live", "long-poll") != PR_OK) ||
        (poll && *r->cursor && pr_url_query_append(&q, "cursor", r->cursor) != PR_OK)) {
        pr_buf_deinit(&q);
        return pr__ds_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
    }
    if (!poll && r->ds->etag && r->ds->etag_at && strcmp(r->ds->etag_at, r->offset) == 0)
        pr__ds_hdr(h, &nh, "If-None-Match", r->ds->etag, strlen(r->ds->etag));
    memset(&rq, 0, sizeof rq);
    rq.method = "GET";
    rq.query = q.data;
    rq.extra = h;
    rq.nextra = nh;
    rq.idle_ms = r->o.idle_timeout_ms;
    rc = pr__ds_do(r->ds, &rq, &r->res, NULL, deadline);
    pr_buf_deinit(&q);
    if (rc != PR_OK) {
        r->err = r->res.http.err;
        r->error = PR_DS_OK;
        return rc;
    }
    st = r->status = r->res.status;
    if (st == 304) { /* nothing new at this offset */
        pr_buf_clear(&r->out);
        pr__ds_paced(r, !r->up_to_date);
        if (r->up_to_date) return PR_OK;
        *got = 1;
        return pr__ds_emit(r, c, 1, 0);
    }
    if (st != 200 && st != 204) {
        rc = pr__ds_status_error(r->ds, &r->res, "read");
        r->err = r->res.http.err;
        r->error = r->res.error;
        return rc;
    }
    if (r->res.http.body_len > r->o.max_chunk_bytes)
        return pr__ds_rfail(r, PR_ELIMIT, PR_DS_OK, "ds: %s", "a response over max_chunk_bytes");
    has_data = st == 200 && r->res.http.body_len &&
               !(r->json && pr__ds_json_empty(r->res.http.body, r->res.http.body_len));
    if (!poll && st == 200 && !has_data && r->res.etag.len) { /* an empty tail: remember its ETag */
        pr__ds_setstr(&r->ds->etag, r->res.etag.ptr, r->res.etag.len);
        pr__ds_setstr(&r->ds->etag_at, r->offset, strlen(r->offset));
    }
    if ((rc = pr__ds_advance(r, r->res.offset, r->res.cursor)) != PR_OK) return rc;
    pr_buf_clear(&r->out);
    if (has_data && pr_buf_append(&r->out, r->res.http.body, r->res.http.body_len) != PR_OK)
        return pr__ds_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
    /* a 204 (long-poll at the tail) is up to date; a 200 says so in a header */
    pr__ds_paced(r, has_data || r->res.closed || ((r->res.up_to_date || st == 204) && !r->up_to_date));
    if (has_data || r->res.closed || ((r->res.up_to_date || st == 204) && !r->up_to_date)) {
        *got = 1;
        return pr__ds_emit(r, c, r->res.up_to_date || st == 204, r->res.closed);
    }
    return PR_OK;
}

/* ---- SSE ---- */

static int pr__ds_b64v(unsigned char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

/* Decode standard base64 (CR and LF skipped, '=' padding) onto out. */
static int pr__ds_b64_decode(pr_buf *out, const char *s, size_t n) {
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
        if (pad || (v = pr__ds_b64v(ch)) < 0) return PR_EPROTO;
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

/* Add one data event to the batch: bytes, text, or a JSON array whose
   items join the batch's array. */
static int pr__ds_batch_add(pr_ds_read *r, const char *p, size_t n) {
    if (r->base64) return pr__ds_b64_decode(&r->batch, p, n);
    if (r->json) {
        pr_slice t = pr_slice_trim(pr__url_sl(p, n));
        if (t.len < 2 || t.ptr[0] != '[' || t.ptr[t.len - 1] != ']') return PR_EPROTO;
        t.ptr++;
        t.len -= 2;
        t = pr_slice_trim(t);
        if (!t.len) return PR_OK;
        if (pr_buf_append(&r->batch, r->batch.len ? "," : "[", 1) != PR_OK) return PR_ENOMEM;
        return pr_buf_append(&r->batch, t.ptr, t.len);
    }
    return pr_buf_append(&r->batch, p, n);
}

static void pr__ds_sse_drop(pr_ds_read *r) {
    pr_http_response_destroy(r->sse);
    r->sse = NULL;
    pr_buf_clear(&r->batch); /* data without its control event is read again */
    if (r->dec) pr_sse_decoder_reset(r->dec);
}

/* Open the SSE connection at the position. */
static int pr__ds_sse_open(pr_ds_read *r, int64_t deadline) {
    pr_http_header h[1];
    pr__ds_req rq;
    pr_buf q;
    pr_http_response *resp = NULL;
    const pr_slice *ct, *enc;
    size_t nh = 0;
    int rc;
    pr_buf_init(&q);
    if (pr_url_query_append(&q, "live", "sse") != PR_OK || pr_url_query_append(&q, "offset", r->offset) != PR_OK ||
        (*r->cursor && pr_url_query_append(&q, "cursor", r->cursor) != PR_OK)) {
        pr_buf_deinit(&q);
        return pr__ds_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
    }
    pr__ds_hdr(h, &nh, "Accept", "text/event-stream", 17);
    memset(&rq, 0, sizeof rq);
    rq.method = "GET";
    rq.query = q.data;
    rq.extra = h;
    rq.nextra = nh;
    rq.stream = 1;
    rq.idle_ms = r->o.idle_timeout_ms;
    rc = pr__ds_do(r->ds, &rq, &r->res, &resp, deadline);
    pr_buf_deinit(&q);
    if (rc != PR_OK) {
        r->err = r->res.http.err;
        r->error = PR_DS_OK;
        return rc;
    }
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
        rc = pr__ds_status_error(r->ds, &r->res, "read");
        r->err = r->res.http.err;
        r->error = r->res.error;
        return rc;
    }
    ct = pr_http_header_get(resp, "content-type");
    if (!pr__http_media_is(ct, "text/event-stream")) {
        pr_http_response_destroy(resp);
        return pr__ds_rfail(r, PR_EPROTO, PR_DS_OK, "ds: %s", "an SSE read answered without text/event-stream");
    }
    enc = pr_http_header_get(resp, "stream-sse-data-encoding");
    r->base64 = enc ? pr_slice_ieq(pr_slice_trim(*enc), pr_slice_cstr("base64")) : !r->text;
    if (!r->dec) {
        pr_sse_decoder_opts so;
        memset(&so, 0, sizeof so);
        so.max_event_bytes = r->o.max_chunk_bytes;
        if ((rc = pr_sse_decoder_create(&r->dec, &so)) != PR_OK)
            return pr_http_response_destroy(resp), pr__ds_rfail(r, rc, PR_DS_OK, "ds: %s", "out of memory");
    } else {
        pr_sse_decoder_reset(r->dec);
    }
    pr_buf_clear(&r->batch);
    r->sse = resp;
    r->sse_opened_at = pr_now();
    return PR_OK;
}

/* Handle one SSE event. Sets *got when a chunk is ready. */
static int pr__ds_sse_event(pr_ds_read *r, const pr_sse_event *ev, pr_ds_chunk *c, int *got) {
    pr_slice type = { ev->type, ev->type_len };
    int rc;
    if (pr_slice_eq(type, pr_slice_cstr("data"))) {
        if (r->batch.len + ev->data_len > r->o.max_chunk_bytes)
            return pr__ds_rfail(r, PR_ELIMIT, PR_DS_OK, "ds: %s", "an SSE batch over max_chunk_bytes");
        if ((rc = pr__ds_batch_add(r, ev->data, ev->data_len)) != PR_OK)
            return pr__ds_rfail(r, rc, PR_DS_OK, "ds: %s",
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
            return pr__ds_rfail(r, PR_EPROTO, PR_DS_OK, "ds: %s", "an SSE control event that does not parse");
        }
        if ((v = pr_json_get(root, "streamCursor")) != NULL && pr_json_type(v) == PR_JSON_STRING)
            cur.ptr = pr_json_string(v, &cur.len);
        if ((v = pr_json_get(root, "upToDate")) != NULL) pr_json_bool(v, &up);
        if ((v = pr_json_get(root, "streamClosed")) != NULL) pr_json_bool(v, &closed);
        rc = pr__ds_advance(r, off, cur);
        pr_json_doc_destroy(doc);
        if (rc != PR_OK) return rc;
        has_data = r->batch.len > 0;
        pr_buf_clear(&r->out);
        if (has_data) {
            if (pr_buf_append(&r->out, r->batch.data, r->batch.len) != PR_OK ||
                (r->json && pr_buf_append(&r->out, "]", 1) != PR_OK))
                return pr__ds_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
            pr_buf_clear(&r->batch);
        }
        if (has_data || closed || (up && !r->up_to_date)) {
            *got = 1;
            return pr__ds_emit(r, c, up, closed);
        }
        return PR_OK;
    }
    return PR_OK; /* an event type of no meaning here */
}

/* Read the SSE connection until a chunk is ready. *from_conn says the
   failure came from the connection (PR_ECLOSED: it ended) rather than from
   decoding what the server sent. */
static int pr__ds_sse_pump(pr_ds_read *r, pr_ds_chunk *c, int64_t deadline, int *from_conn) {
    int reads = 0;
    for (;;) {
        pr_sse_event ev;
        const char *p;
        size_t n;
        int rc, got = 0;
        while ((rc = pr_sse_decoder_next(r->dec, &ev)) == PR_OK) {
            if ((rc = pr__ds_sse_event(r, &ev, c, &got)) != PR_OK) return rc;
            if (got) return PR_OK;
        }
        if (rc == PR_ELIMIT) return pr__ds_rfail(r, PR_ELIMIT, PR_DS_OK, "ds: %s", "an SSE event over the limit");
        /* events that make no chunk (control events without data, comments)
           must not hold the caller past its deadline */
        if (reads++ && pr_now() >= deadline) return PR_ETIMEDOUT;
        rc = pr_http_next_span(r->sse, &p, &n, deadline);
        if (rc != PR_OK) {
            *from_conn = 1;
            return rc;
        }
        if ((rc = pr_sse_decoder_feed(r->dec, p, n)) != PR_OK) return pr__ds_rfail(r, rc, PR_DS_OK, "ds: %s", "SSE decoding failed");
    }
}

/* Wait the backoff after a failure, within the deadline. Returns PR_OK
   to try again, or what the caller gets. */
static int pr__ds_backoff_wait(pr_ds_read *r, int rc, int64_t deadline) {
    int outcome = rc;
    if (r->failures++ == 0 && pr_retry_begin(&r->retry, &r->ds->retry) != PR_OK)
        return pr__ds_rfail(r, PR_EINVAL, PR_DS_OK, "ds: %s", "invalid retry policy");
    if (pr_retry_next(&r->retry, &outcome, deadline)) return PR_OK;
    if (outcome == PR_ECANCELED) return PR_ECANCELED;
    if (r->retry.stop == PR_RETRY_DEADLINE) { /* the caller's deadline comes first: wait until it */
        if (deadline > pr_now()) pr_sleep(deadline);
        return PR_ETIMEDOUT;
    }
    return outcome; /* the retries are used up: the last failure */
}

/* Whether an error of a live read is worth reconnecting for. */
static int pr__ds_transient(pr_ds_read *r, int rc) {
    if (rc == PR_EHTTP) return r->res.status == 429 || (r->res.status >= 500 && r->res.status <= 599);
    return pr_retry_classify_default(rc, NULL, NULL) == PR_RETRY_AGAIN && rc != PR_ETIMEDOUT && rc != PR_EPROTO;
}

static int pr__ds_sse_next(pr_ds_read *r, pr_ds_chunk *c, int64_t deadline) {
    for (;;) {
        int rc, from_conn = 0, lasted;
        if (!r->sse) {
            rc = pr__ds_sse_open(r, deadline);
            if (rc != PR_OK) {
                if (!pr__ds_transient(r, rc)) return rc;
                if ((rc = pr__ds_backoff_wait(r, rc, deadline)) != PR_OK) return rc;
                continue;
            }
        }
        rc = pr__ds_sse_pump(r, c, deadline, &from_conn);
        if (rc == PR_OK) {
            r->failures = 0;
            if (c->closed) pr__ds_sse_drop(r);
            return PR_OK;
        }
        if (rc == PR_ECANCELED || (rc == PR_ETIMEDOUT && pr_now() >= deadline))
            return rc; /* the caller's limits: the connection stays for the next call */
        if (!from_conn || pr_retry_classify_default(rc, NULL, NULL) == PR_RETRY_FAIL) {
            pr__ds_sse_drop(r);
            return rc; /* malformed data (reconnecting would read it again), a limit, no memory */
        }
        /* the connection ended, broke or went silent: resume from the position */
        lasted = pr_now() - r->sse_opened_at >= r->o.sse_short_ms;
        r->sse_short = lasted ? 0 : r->sse_short + 1;
        pr__ds_sse_drop(r);
        if (r->o.live == PR_DS_LIVE_AUTO && r->sse_short >= r->o.sse_max_short) {
            r->phase = PR__DS_POLL; /* SSE keeps dropping: a buffering proxy, probably */
            return PR__DS_TO_POLL;
        }
        if (lasted) r->failures = 0; /* a connection that served a while starts the backoff afresh */
        if (lasted && rc == PR_ECLOSED) continue; /* a clean end (a server's or a proxy's idle cut): at once */
        if ((rc = pr__ds_backoff_wait(r, rc, deadline)) != PR_OK) return rc;
    }
}

int pr_ds_read_next(pr_ds_read *r, pr_ds_chunk *c, int64_t deadline) {
    if (!r || !c) return PR_EINVAL;
    memset(c, 0, sizeof *c);
    if (r->ended) return pr__ds_rfail(r, PR_ECLOSED, PR_DS_OK, "ds: %s", "the read is over");
    r->error = PR_DS_OK;
    memset(&r->err, 0, sizeof r->err);
    for (;;) {
        int rc, got = 0;
        if (pr_is_canceled()) return PR_ECANCELED;
        if (r->phase == PR__DS_CATCHUP && strcmp(r->offset, "now") == 0 && r->o.live != PR_DS_LIVE_NONE) {
            /* "now": the live way starts at the tail (SSE says the offset in its first control event) */
            r->phase = r->o.live == PR_DS_LIVE_SSE || (r->o.live == PR_DS_LIVE_AUTO && r->o.prefer_sse) ? PR__DS_SSE
                                                                                                         : PR__DS_POLL;
        }
        if (r->phase == PR__DS_SSE) {
            rc = pr__ds_sse_next(r, c, deadline);
            if (rc == PR__DS_TO_POLL) continue;
            return rc;
        }
        rc = pr__ds_get(r, c, r->phase == PR__DS_POLL, &got, deadline);
        if (rc != PR_OK) return rc;
        if (r->phase == PR__DS_CATCHUP && (r->res.up_to_date || r->res.closed || r->status == 304) &&
            r->o.live != PR_DS_LIVE_NONE)
            r->phase = r->o.live == PR_DS_LIVE_SSE || (r->o.live == PR_DS_LIVE_AUTO && r->o.prefer_sse) ? PR__DS_SSE
                                                                                                         : PR__DS_POLL;
        if (got) return PR_OK;
    }
}

/* ---- the idempotent producer ---- */

#define PR__DSP_DEF_BATCH ((size_t)1 << 20)
#define PR__DSP_DEF_BUFFER ((size_t)16 << 20)
#define PR__DSP_DEF_REQUEST 30000
#define PR__DSP_DEF_DELIVERY 120000

typedef struct pr__dsp_batch {
    struct pr__dsp_batch *next;
    struct pr_ds_producer *p;
    pr_buf body;                /* the bytes, or "[m1,m2" until sealed ("]" then) */
    size_t items, weight;
    int64_t seq;
    int sealed;
} pr__dsp_batch;

struct pr_ds_producer {
    pr_ds *ds;
    pr_ds_producer_opts o;
    char *id;
    int64_t epoch, next_seq;
    int epoch_ok;               /* a batch of this epoch was accepted */
    int json;
    pr__dsp_batch *cur;         /* being filled, or NULL */
    int64_t cur_started;
    pr__dsp_batch *head, *tail; /* sealed, unanswered, in seq order */
    pr_group *senders;
    pr_task *pump;              /* seals batches after linger_ms */
    pr_chan *kick;
    pr_sem *slots;
    pr_wsem *budget;
    pr__fifo changed;           /* senders waiting for a lower batch's answer or a new epoch */
    int rc;                     /* the failure that stopped the producer, 0 = none (sticky) */
    int64_t fail_seq;           /* batches from this seq on are abandoned */
    int meaning;
    pr_err_info err;
    char *offset;
    int closed;
    int close_rc;
    char *final_offset;
    int flushing;
    long dups;                  /* batches answered 204 */
};

/* The producer cannot deliver batch seq: it fails, for good (until a
   restart). Batches above seq are abandoned: the server would only answer
   them with a sequence gap. Lower ones go on. */
static void pr__dsp_fail(pr_ds_producer *p, int64_t seq, int rc, int meaning, const pr_err_info *e) {
    if (p->rc && seq >= p->fail_seq) return;
    p->fail_seq = seq;
    pr__fifo_wake_all(&p->changed, 0);
    if (p->rc) return;
    p->rc = rc;
    p->meaning = meaning;
    if (e) p->err = *e;
    else pr__err_set(&p->err, rc, 0, "ds producer: %s", pr_strerror(rc));
    p->err.code = rc;
    if (p->o.on_error) p->o.on_error(rc, &p->err, p->o.user_data);
}

static void pr__dsp_free_batch(pr__dsp_batch *b) {
    pr_buf_deinit(&b->body);
    pr__free(b, sizeof *b);
}

/* Remove an answered (or abandoned) batch, give its bytes back to the
   budget, and tell the waiting senders. */
static void pr__dsp_unlink(pr_ds_producer *p, pr__dsp_batch *b) {
    pr__dsp_batch **pp = &p->head, *prev = NULL;
    while (*pp && *pp != b) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = b->next;
        if (p->tail == b) p->tail = prev;
    }
    pr_wsem_release(p->budget, (int64_t)b->weight);
    pr__dsp_free_batch(b);
    pr__fifo_wake_all(&p->changed, 0);
}

static int pr__dsp_send_task(void *arg);

/* Seal the current batch: it gets the next seq and a sender. */
static int pr__dsp_seal(pr_ds_producer *p) {
    pr__dsp_batch *b = p->cur;
    int rc;
    if (!b) return PR_OK;
    p->cur = NULL;
    if (p->json && (rc = pr_buf_append(&b->body, "]", 1)) != PR_OK) {
        pr_wsem_release(p->budget, (int64_t)b->weight);
        pr__dsp_free_batch(b);
        pr__dsp_fail(p, p->next_seq, rc, PR_DS_OK, NULL);
        return rc;
    }
    b->seq = p->next_seq;
    b->sealed = 1;
    if ((rc = pr_group_go(p->senders, pr__dsp_send_task, b, NULL)) != PR_OK) {
        pr_wsem_release(p->budget, (int64_t)b->weight);
        pr__dsp_free_batch(b);
        pr__dsp_fail(p, p->next_seq, rc, PR_DS_OK, NULL);
        return rc;
    }
    p->next_seq++; /* only once a sender has it: a seq is never skipped */
    if (p->tail) p->tail->next = b;
    else p->head = b;
    p->tail = b;
    return PR_OK;
}

/* Whether every batch below seq has been answered. */
static int pr__dsp_lower_done(const pr_ds_producer *p, int64_t seq) {
    return !p->head || p->head->seq >= seq;
}

/* Wait until a batch is answered, the epoch moves or the producer fails. */
static int pr__dsp_wait_change(pr_ds_producer *p, int64_t until) {
    pr__waiter w;
    int rc = pr__fifo_park(&p->changed, &w, until);
    return rc == PR_ECLOSED ? PR_OK : rc;
}

/* Whether an answer leaves the batch's fate unknown or passing: the same
   seq goes again (the server keeps one copy). */
static int pr__dsp_resend(int rc, const pr_ds_result *res) {
    if (rc == PR_EHTTP) return res->status == 429 || (res->status >= 500 && res->status <= 599);
    return pr_retry_classify_default(rc, NULL, NULL) == PR_RETRY_AGAIN;
}

static int pr__dsp_always_again(int outcome, int64_t *after_ms, void *user_data) {
    (void)outcome;
    (void)after_ms;
    (void)user_data;
    return PR_RETRY_AGAIN;
}

/* One batch, from its first send until the server has it: every send
   carries the same (epoch, seq), so a batch whose outcome is unknown (a
   timeout, a broken connection) is sent again until an answer says it is
   stored (200) or was stored before (204). Only the delivery timeout, a
   failure no resend can mend, or a cancel ends that. */
static int pr__dsp_send_task(void *arg) {
    pr__dsp_batch *b = (pr__dsp_batch *)arg;
    pr_ds_producer *p = b->p;
    pr_ds_result res;
    pr_ds_append_opts ao;
    pr_retry_policy again;
    pr_retry st;
    int64_t until = p->o.delivery_timeout_ms > 0 ? pr_deadline_in(p->o.delivery_timeout_ms) : PR_FOREVER;
    int rc, slot, waits = 0;
    memset(&res, 0, sizeof res);
    slot = (rc = pr_sem_acquire(p->slots, until)) == PR_OK;
    while (rc == PR_OK) {
        int64_t sent_epoch;
        if (p->rc && b->seq >= p->fail_seq) break; /* abandoned: a lower batch failed */
        /* claiming an epoch: only the lowest batch goes until one is accepted */
        if (p->o.auto_claim && !p->epoch_ok && p->head != b) {
            rc = pr__dsp_wait_change(p, until);
            continue;
        }
        memset(&ao, 0, sizeof ao);
        ao.raw_json = 1;
        ao.producer_id = p->id;
        ao.producer_epoch = sent_epoch = p->epoch;
        ao.producer_seq = b->seq;
        rc = pr_ds_append(p->ds, b->body.data, b->body.len, &ao, &res,
                          pr_deadline_min(until, pr_deadline_in(p->o.request_timeout_ms)));
        if (rc == PR_OK) {
            if (sent_epoch == p->epoch) p->epoch_ok = 1;
            if (res.status == 204) p->dups++;
            if (res.offset.len) pr__ds_setstr(&p->offset, res.offset.ptr, res.offset.len);
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
                pr__dsp_batch *x;
                int64_t seq = 0;
                p->epoch = res.producer_epoch + 1; /* the server's epoch + 1, every unanswered batch renumbered */
                p->epoch_ok = 0;
                for (x = p->head; x; x = x->next) x->seq = seq++;
                p->next_seq = seq;
                pr__fifo_wake_all(&p->changed, 0);
                rc = PR_OK;
                continue;
            }
            rc = pr__dsp_wait_change(p, until); /* the lowest batch claims */
            continue;
        }
        if (rc == PR_EHTTP && res.error == PR_DS_SEQUENCE_GAP && res.expected_seq >= 0 && res.expected_seq < b->seq &&
            !pr__dsp_lower_done(p, b->seq)) {
            /* a lower batch has not arrived yet: send again once it is answered */
            while ((rc = pr__dsp_wait_change(p, until)) == PR_OK && !pr__dsp_lower_done(p, b->seq) &&
                   !(p->rc && b->seq >= p->fail_seq)) {}
            continue;
        }
        if (!pr__dsp_resend(rc, &res) && !(rc == PR_EHTTP && res.error == PR_DS_SEQUENCE_GAP &&
                                          res.expected_seq >= 0 && res.expected_seq < b->seq)) {
            pr__dsp_fail(p, b->seq, rc, rc == PR_EHTTP ? res.error : PR_DS_OK, &res.http.err);
            break;
        }
        /* unknown, passing, or a gap the lower batches should have closed:
           the same seq again after the handle's backoff */
        if (!waits++) {
            again = p->ds->retry;
            again.max_retries = PR_RETRY_UNLIMITED;
            again.max_elapsed_ms = again.progress_timeout_ms = 0;
            again.classify = pr__dsp_always_again;
            again.on_retry = NULL;
            if ((rc = pr_retry_begin(&st, &again)) != PR_OK) break;
        }
        {
            int outcome = rc;
            pr_err_info last = res.http.err;
            if (pr_retry_next(&st, &outcome, until)) {
                rc = PR_OK;
                continue;
            }
            if (outcome == PR_ECANCELED) {
                rc = PR_ECANCELED;
                break;
            }
            pr__err_wrap(&res.http.err, PR_EFAILED, &last,
                         "ds producer: batch %lld not stored within delivery_timeout_ms; the last try",
                         (long long)b->seq);
            pr__dsp_fail(p, b->seq, PR_EFAILED, rc == PR_EHTTP ? res.error : PR_DS_OK, &res.http.err);
            rc = PR_EFAILED;
            break;
        }
    }
    if (rc == PR_ETIMEDOUT) { /* the delivery timeout passed while it waited for a slot or a lower batch */
        pr__err_set(&res.http.err, PR_EFAILED, 0, "ds producer: batch %lld not stored within delivery_timeout_ms "
                    "(it waited for %s)", (long long)b->seq, slot ? "lower batches" : "a send slot");
        pr__dsp_fail(p, b->seq, PR_EFAILED, PR_DS_OK, &res.http.err);
    }
    pr_ds_result_deinit(&res);
    pr__dsp_unlink(p, b);
    if (slot) pr_sem_release(p->slots);
    if (p->kick) (void)pr_chan_send(p->kick, &rc, 0); /* a slot is free: the pump may seal */
    return 0;
}

/* Seals the current batch linger_ms after its first message (at the next
   turn for 0), once a send slot is free. */
static int pr__dsp_pump(void *arg) {
    pr_ds_producer *p = (pr_ds_producer *)arg;
    for (;;) {
        int x, rc;
        int64_t until = PR_FOREVER;
        if (p->cur) until = pr__time_add(p->cur_started, p->o.linger_ms);
        if (p->cur && pr_now() >= until) {
            if (pr_sem_available(p->slots) > 0 && !p->rc) pr__dsp_seal(p);
            until = PR_FOREVER; /* the next kick (a slot freed, a message) */
        }
        rc = pr_chan_recv(p->kick, &x, p->cur ? until : PR_FOREVER);
        if (rc == PR_ECLOSED || rc == PR_ECANCELED) return 0;
    }
}

int pr_ds_producer_create(pr_ds_producer **out, pr_ds *ds, const pr_ds_producer_opts *o) {
    pr_ds_producer *p;
    int rc;
    if (out) *out = NULL;
    if (!out || !ds || !o || !o->producer_id || !*o->producer_id || o->epoch < 0 || o->linger_ms < 0 ||
        o->max_in_flight < 0 || o->request_timeout_ms < 0)
        return PR_EINVAL;
    if (!(p = (pr_ds_producer *)pr__calloc(1, sizeof *p))) return PR_ENOMEM;
    p->ds = ds;
    p->o = *o;
    p->o.max_batch_bytes = PR__DEF(p->o.max_batch_bytes, PR__DSP_DEF_BATCH);
    p->o.max_in_flight = PR__DEF(p->o.max_in_flight, 5);
    p->o.max_buffer_bytes = PR__DEF(p->o.max_buffer_bytes, PR__DSP_DEF_BUFFER);
    p->o.request_timeout_ms = PR__DEF(p->o.request_timeout_ms, PR__DSP_DEF_REQUEST);
    p->o.delivery_timeout_ms = PR__DEF(p->o.delivery_timeout_ms, PR__DSP_DEF_DELIVERY);
    p->epoch = o->epoch;
    p->json = pr__ds_is_json(ds->ctype);
    if (!(p->id = pr__strdup(o->producer_id, NULL)) || !(p->offset = pr__strdup("", NULL)) ||
        (rc = pr_group_create(&p->senders)) != PR_OK || (rc = pr_chan_create(&p->kick, sizeof(int), 1)) != PR_OK ||
        (rc = pr_sem_create(&p->slots, p->o.max_in_flight)) != PR_OK ||
        (rc = pr_wsem_create(&p->budget, (int64_t)p->o.max_buffer_bytes)) != PR_OK ||
        (rc = pr_go(&p->pump, pr__dsp_pump, p, NULL)) != PR_OK) {
        pr_ds_producer_destroy(p);
        return PR_ENOMEM;
    }
    p->o.producer_id = NULL;
    *out = p;
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
    if (p->cur && p->cur->body.len + len + 2 > p->o.max_batch_bytes && p->cur->items) pr__dsp_seal(p);
    if (!p->cur) {
        pr__dsp_batch *b = (pr__dsp_batch *)pr__calloc(1, sizeof *b);
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
        pr__dsp_seal(p);
    return p->rc;
}

int pr_ds_producer_flush(pr_ds_producer *p, int64_t deadline) {
    int rc;
    if (!p) return PR_EINVAL;
    if (p->rc) return p->rc;
    if (p->flushing) return PR_ESTATE;
    p->flushing = 1;
    pr__dsp_seal(p);
    rc = pr_group_wait(p->senders, deadline);
    p->flushing = 0;
    return p->rc ? p->rc : rc;
}

int pr_ds_producer_close(pr_ds_producer *p, const void *data, size_t len, const char **final_offset,
                         int64_t deadline) {
    pr_ds_result res;
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
    for (;;) {
        memset(&ao, 0, sizeof ao);
        ao.close = 1;
        ao.raw_json = 1;
        ao.producer_id = p->id;
        ao.producer_epoch = p->epoch;
        ao.producer_seq = p->next_seq;
        rc = pr_ds_append(p->ds, body.data, body.len, &ao, &res, deadline);
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
        pr__ds_setstr(&p->final_offset, res.offset.ptr ? res.offset.ptr : "", res.offset.len);
        if (final_offset) *final_offset = p->final_offset;
        if (rc != PR_OK) {
            p->meaning = res.error;
            p->err = res.http.err;
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
    if (!p->rc) pr__dsp_seal(p);
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

int pr_ds_producer_error(const pr_ds_producer *p, pr_err_info *out) {
    if (!p) return PR_DS_OK;
    if (out) *out = p->err;
    return p->meaning;
}

void pr_ds_producer_destroy(pr_ds_producer *p) {
    if (!p) return;
    if (p->kick) pr_chan_close(p->kick);
    if (p->pump) {
        pr_cancel(p->pump);
        pr_join(p->pump, NULL, PR_FOREVER);
    }
    if (p->senders) pr_group_close(p->senders, PR_FOREVER);
    while (p->head) pr__dsp_unlink(p, p->head);
    if (p->cur) {
        pr_wsem_release(p->budget, (int64_t)p->cur->weight);
        pr__dsp_free_batch(p->cur);
    }
    pr_chan_destroy(p->kick);
    pr_sem_destroy(p->slots);
    pr_wsem_destroy(p->budget);
    pr__strfree(&p->id);
    pr__strfree(&p->offset);
    pr__strfree(&p->final_offset);
    pr__free(p, sizeof *p);
}

/* ---- the consumer ---- */

struct pr_ds_consumer {
    pr_ds *ds;
    pr_ds_consumer_opts o;
    char *offset;
    pr_task *task;
    int state;
    int result;
    int done;
};

static const char *pr__dsc_state_name(int state) {
    switch (state) {
    case PR_DS_CONSUMER_CONNECTING: return "connecting";
    case PR_DS_CONSUMER_LIVE: return "live";
    case PR_DS_CONSUMER_UP_TO_DATE: return "up_to_date";
    case PR_DS_CONSUMER_CLOSED: return "closed";
    default: return "stopped";
    }
}

static void pr__dsc_state(pr_ds_consumer *c, int state, const pr_err_info *why) {
    if (c->state == state && !why) return;
    c->state = state;
    if (c->o.on_state) c->o.on_state(state, why, c->o.user_data);
    if (c->o.telemetry) {
        pr_telemetry_field f[4];
        f[0] = pr__tel_s("url", c->ds->base);
        f[1] = pr__tel_s("state", pr__dsc_state_name(state));
        f[2] = pr__tel_s("offset", c->offset);
        f[3] = pr__tel_s("detail", why ? why->msg : "");
        pr__tel_emit(c->o.telemetry, PR_TELEMETRY_STREAM_STATE, "ds.consumer.state",
                     why ? PR_SEVERITY_WARNING : PR_SEVERITY_INFO, f, 4);
    }
}

static int pr__dsc_task(void *arg) {
    pr_ds_consumer *c = (pr_ds_consumer *)arg;
    pr_ds_read_opts ro;
    pr_retry backoff;
    int failures = 0, rc = PR_OK, by_user = 0;
    memset(&ro, 0, sizeof ro);
    ro.live = c->o.live ? c->o.live : PR_DS_LIVE_AUTO;
    ro.prefer_sse = c->o.prefer_sse;
    ro.idle_timeout_ms = c->o.idle_timeout_ms;
    pr__dsc_state(c, PR_DS_CONSUMER_CONNECTING, NULL);
    for (;;) {
        pr_ds_read *rd = NULL;
        pr_ds_chunk ch;
        pr_err_info why;
        int outcome;
        if ((rc = pr_ds_read_open(&rd, c->ds, c->offset, &ro)) != PR_OK) break;
        while ((rc = pr_ds_read_next(rd, &ch, PR_FOREVER)) == PR_OK) {
            int r;
            failures = 0;
            pr__dsc_state(c, ch.up_to_date ? PR_DS_CONSUMER_UP_TO_DATE : PR_DS_CONSUMER_LIVE, NULL);
            if ((ch.len || ch.closed) && (r = c->o.on_batch(&ch, c->o.user_data)) != 0) {
                rc = r;
                by_user = 1;
                break;
            }
            pr__ds_setstr(&c->offset, ch.offset, ch.offset_len);
            if (c->o.on_checkpoint) c->o.on_checkpoint(c->offset, strlen(c->offset), c->o.user_data);
            if (ch.closed) {
                pr__dsc_state(c, PR_DS_CONSUMER_CLOSED, NULL);
                rc = PR_ECLOSED;
                break;
            }
        }
        if (by_user || rc == PR_ECLOSED || rc == PR_ECANCELED || (rc != PR_ETIMEDOUT && !pr__ds_transient(rd, rc))) {
            if (!by_user && rc != PR_ECLOSED && rc != PR_ECANCELED) {
                pr_ds_read_error(rd, &why);
                pr_ds_read_destroy(rd);
                pr__dsc_state(c, PR_DS_CONSUMER_STOPPED, &why);
            } else {
                pr_ds_read_destroy(rd);
            }
            break;
        }
        /* a transient failure after the read's own retries: reconnect from the checkpoint */
        pr_ds_read_error(rd, &why);
        pr_ds_read_destroy(rd);
        pr__dsc_state(c, PR_DS_CONSUMER_CONNECTING, &why);
        if (failures++ == 0 && pr_retry_begin(&backoff, &c->ds->retry) != PR_OK) {
            rc = PR_EINVAL;
            break;
        }
        outcome = rc;
        if (!pr_retry_next(&backoff, &outcome, PR_FOREVER)) {
            rc = outcome;
            break;
        }
    }
    c->result = rc;
    c->done = 1;
    return 0;
}

int pr_ds_consumer_start(pr_ds_consumer **out, pr_ds *ds, const pr_ds_consumer_opts *o) {
    pr_ds_consumer *c;
    int rc;
    if (out) *out = NULL;
    if (!out || !ds || !o || !o->on_batch || o->live < 0 || o->live > PR_DS_LIVE_AUTO) return PR_EINVAL;
    if (!(c = (pr_ds_consumer *)pr__calloc(1, sizeof *c))) return PR_ENOMEM;
    c->ds = ds;
    c->o = *o;
    c->o.offset = NULL;
    if (!(c->offset = pr__strdup(PR__DEF(o->offset, "-1"), NULL))) {
        pr__free(c, sizeof *c);
        return PR_ENOMEM;
    }
    if ((rc = pr_go(&c->task, pr__dsc_task, c, NULL)) != PR_OK) {
        pr__strfree(&c->offset);
        pr__free(c, sizeof *c);
        return rc;
    }
    *out = c;
    return PR_OK;
}

int pr_ds_consumer_wait(pr_ds_consumer *c, int64_t deadline) {
    int rc;
    if (!c || !c->task) return PR_EINVAL;
    if ((rc = pr_join(c->task, NULL, deadline)) != PR_OK) return rc;
    c->task = NULL;
    return c->result;
}

void pr_ds_consumer_stop(pr_ds_consumer *c) {
    if (!c) return;
    if (c->task) {
        pr_cancel(c->task);
        pr_join(c->task, NULL, PR_FOREVER);
    }
    pr__strfree(&c->offset);
    pr__free(c, sizeof *c);
}
