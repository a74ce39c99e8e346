// build: mkdir -p build && cc -std=c99 -Wall -Wextra -Wpedantic -Werror -O2 -I. -o build/ex_ds_producer examples/ds_producer.c -lbearssl -lpthread
// run: $DS/v1/stream/example-producer 10 --fresh
/* ds_producer.c - append numbered records to a Durable Stream exactly
   once, then read them back.

       build/ex_ds_producer STREAM_URL [COUNT] [--fresh]

   pr_ds_producer_append only queues (it waits only when max_buffer_bytes
   are queued or in flight); the producer batches records, keeps a few
   batches in flight, and sends each with its producer id, epoch and
   sequence number, so the server stores every batch once however often a
   timeout or a broken connection makes the producer send it again. flush
   waits until every batch is acknowledged. pr_ds_read_all then reads the
   stream from the start ("-1") to its tail in one buffer.

   The epoch orders writers with the same id: a restarted writer must use
   a higher one (the server fences the older one off, and takes a repeated
   epoch and sequence for a resend: it drops it as a duplicate). Here the
   epoch is the start time in seconds, so two runs within one second
   collide (the second one's records count as duplicates); a writer that
   restarts that fast stores its epoch like a checkpoint. auto_claim takes
   the server's epoch + 1 when it refuses a stale one.

   --fresh deletes and creates the stream first (examples/ds_producer.expected
   holds that output); without it the records are added to what is there,
   creating the stream if it does not exist. */
#define PRISTINE_IMPLEMENTATION
#include "pristine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Hears a failure no resend can mend, at once (append/flush return it too). */
static void on_error(int rc, const pr_err_info *err, void *user_data) {
    (void)user_data;
    fprintf(stderr, "ds_producer: the producer failed: %s: %s\n", pr_errname(rc), err->msg);
}

int main(int argc, char **argv) {
    pr_ds *ds = NULL;
    pr_ds_opts o = {0};
    pr_ds_producer *p = NULL;
    pr_ds_producer_opts po = {0};
    pr_ds_producer_stats st;
    pr_ds_result res = {0};
    pr_buf all, next;
    pr_err_info err;
    char rec[64];
    int i, rc, count = argc > 2 ? atoi(argv[2]) : 10, status = 1;
    int fresh = argc > 3 && strcmp(argv[3], "--fresh") == 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s STREAM_URL [COUNT] [--fresh]\n", argv[0]);
        return 2;
    }
    pr_buf_init(&all);
    pr_buf_init(&next);
    o.content_type = "text/plain";
    if ((rc = pr_ds_open(&ds, argv[1], &o, &err)) != PR_OK) goto fail;
    if (fresh) {
        rc = pr_ds_delete(ds, &res, &err, pr_deadline_in(10000));
        if (rc != PR_OK && res.error != PR_DS_NOT_FOUND) goto fail;
        pr_ds_result_deinit(&res);
    }
    /* 201 creates it; 200 means it is already there with this content type */
    if ((rc = pr_ds_create(ds, NULL, &res, &err, pr_deadline_in(10000))) != PR_OK) goto fail;
    pr_ds_result_deinit(&res);

    po.producer_id = "example-writer";
    po.epoch = (int64_t)time(NULL); /* higher than any earlier run's (see above) */
    po.auto_claim = 1;              /* refused as stale: go on in the server's epoch + 1 */
    po.linger_ms = 5;               /* gather records for 5 ms before sending a batch */
    po.on_error = on_error;
    if ((rc = pr_ds_producer_create(&p, ds, &po, &err)) != PR_OK) goto fail;
    for (i = 1; i <= count; i++) {
        int n = snprintf(rec, sizeof rec, "record %d\n", i);
        if ((rc = pr_ds_producer_append(p, rec, (size_t)n, pr_deadline_in(30000))) != PR_OK) goto failp;
    }
    if ((rc = pr_ds_producer_flush(p, pr_deadline_in(30000))) != PR_OK) goto failp;
    pr_ds_producer_stats_get(p, &st);
    printf("== %d records appended and acknowledged, %lu duplicates\n", count, (unsigned long)st.duplicate_batches);
    fprintf(stderr, "ds_producer: epoch %lld, %lu batches, %lu resends, tail %s\n", (long long)po.epoch,
            (unsigned long)st.acked_batches, (unsigned long)st.resends, pr_ds_producer_offset(p));

    /* Everything from the start to the tail, and the offset to go on from. */
    if ((rc = pr_ds_read_all(ds, "-1", 0, &all, &next, NULL, &err, pr_deadline_in(30000))) != PR_OK) goto fail;
    printf("== read back %lu bytes:\n", (unsigned long)all.len);
    fwrite(all.data, 1, all.len, stdout);
    fprintf(stderr, "ds_producer: resume reading at %.*s\n", (int)next.len, next.data);
    status = 0;
    goto out;
failp:
    pr_ds_producer_last_error(p, &err);
fail:
    fprintf(stderr, "ds_producer: %s: %s\n", pr_errname(rc), err.msg);
out:
    pr_ds_producer_destroy(p);
    pr_ds_result_deinit(&res);
    pr_buf_deinit(&all);
    pr_buf_deinit(&next);
    pr_ds_destroy(ds);
    pr_sched_destroy();
    return status;
}
