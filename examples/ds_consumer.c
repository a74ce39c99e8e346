// build: mkdir -p build && cc -std=c99 -Wall -Wextra -Wpedantic -Werror -O2 -I. -o build/ex_ds_consumer examples/ds_consumer.c -lbearssl -lpthread
// run: $DS/v1/stream/example-consumer build/ex_ds_consumer.offset --demo
/* ds_consumer.c - process a Durable Stream in runs, each resuming where
   the last one stopped (a checkpoint).

       build/ex_ds_consumer STREAM_URL CHECKPOINT_FILE [--follow | --demo]

   pr_ds_consumer_start follows a stream from an offset in a task of its
   own: every batch goes to on_batch, then on_checkpoint gets the offset
   after it. Store that offset where the next run finds it (here a small
   file), and a run that starts from it neither loses nor repeats a byte:
   a job that runs every hour processes exactly what came since.

   A run ends when the consumer has caught up with the stream (or, with
   --follow, only when the stream is closed or the program stopped); it
   always ends when the stream is closed. Network failures reconnect with
   backoff; a cause no retry can cure (404, a refused certificate) stops
   the consumer with that code.

   --demo: creates the stream afresh with three records, forgets the
   checkpoint, runs once (records 1-3), appends two more and closes the
   stream, then runs again from the checkpoint (records 4-5 only).
   examples/ds_consumer.expected holds that output. */
#define PRISTINE_IMPLEMENTATION
#include "pristine.h"

#include <stdio.h>
#include <string.h>

typedef struct run {
    const char *checkpoint_file;
    int follow;          /* 1 = do not stop when caught up */
    pr_future *done;     /* resolved when this run should end */
    long batches;
} run;

/* Each batch: process it (here: print it). Non-zero would stop the consumer. */
static int on_batch(const pr_ds_chunk *c, void *user_data) {
    run *r = (run *)user_data;
    fwrite(c->data, 1, c->len, stdout);
    if (c->closed) printf("(the stream is closed)\n");
    r->batches++;
    return 0;
}

/* After each batch: save the offset. (A real job writes a temporary file
   and renames it, or stores the offset with its results in one transaction.) */
static void on_checkpoint(const char *offset, size_t len, void *user_data) {
    run *r = (run *)user_data;
    FILE *f = fopen(r->checkpoint_file, "w");
    if (!f || fwrite(offset, 1, len, f) != len) fprintf(stderr, "ds_consumer: cannot save the checkpoint\n");
    if (f) fclose(f);
}

/* State changes: end the run when caught up (unless following), closed or stopped. */
static void on_state(int state, const pr_err_info *why, void *user_data) {
    run *r = (run *)user_data;
    if (state == PR_DS_CONSUMER_CONNECTING && why)
        fprintf(stderr, "ds_consumer: reconnecting after %s: %s\n", pr_errname(why->code), why->msg);
    if ((state == PR_DS_CONSUMER_UP_TO_DATE && !r->follow) || state == PR_DS_CONSUMER_CLOSED ||
        state == PR_DS_CONSUMER_STOPPED)
        pr_future_resolve(r->done, NULL); /* a second resolve is refused: harmless */
}

/* One run from the saved checkpoint ("-1", the start, if there is none). */
static int consume(pr_ds *ds, const char *checkpoint_file, int follow) {
    char offset[1100] = "-1";
    FILE *f = fopen(checkpoint_file, "r");
    pr_ds_consumer *c = NULL;
    pr_ds_consumer_opts o = {0};
    pr_err_info err;
    run r = {0};
    int rc;

    if (f) {
        size_t n = fread(offset, 1, sizeof offset - 1, f);
        offset[n] = 0;
        fclose(f);
    }
    fprintf(stderr, "ds_consumer: starting at %s\n", offset);
    r.checkpoint_file = checkpoint_file;
    r.follow = follow;
    if ((rc = pr_future_create(&r.done)) != PR_OK) return rc;
    o.offset = offset;
    o.live = PR_DS_LIVE_LONG_POLL;
    o.on_batch = on_batch;
    o.on_checkpoint = on_checkpoint;
    o.on_state = on_state;
    o.user_data = &r;
    if ((rc = pr_ds_consumer_start(&c, ds, &o, &err)) != PR_OK) {
        fprintf(stderr, "ds_consumer: %s: %s\n", pr_errname(rc), err.msg);
        pr_future_destroy(r.done);
        return rc;
    }
    pr_future_await(r.done, NULL, PR_FOREVER); /* Ctrl-C: see examples/ctrlc.c */
    rc = pr_ds_consumer_wait(c, pr_deadline_in(0)); /* PR_ETIMEDOUT: still running, stopped below */
    if (rc != PR_ETIMEDOUT && rc != PR_ECLOSED) {
        pr_ds_consumer_last_error(c, &err);
        fprintf(stderr, "ds_consumer: stopped: %s: %s\n", pr_errname(rc), err.msg);
    }
    pr_ds_consumer_stop(c);
    pr_future_destroy(r.done);
    fprintf(stderr, "ds_consumer: %ld batches\n", r.batches);
    return rc == PR_ETIMEDOUT || rc == PR_ECLOSED ? PR_OK : rc;
}

/* --demo: a fresh stream with records from..to appended; close = 1 closes it. */
static int demo_write(pr_ds *ds, int fresh, int from, int to, int close) {
    pr_ds_result res = {0};
    pr_err_info err;
    char rec[32];
    int i, rc = PR_OK;
    if (fresh) {
        rc = pr_ds_delete(ds, &res, &err, pr_deadline_in(10000));
        if (rc == PR_OK || res.error == PR_DS_NOT_FOUND) rc = pr_ds_create(ds, NULL, &res, &err, pr_deadline_in(10000));
    }
    for (i = from; i <= to && rc == PR_OK; i++) {
        int n = snprintf(rec, sizeof rec, "record %d\n", i);
        pr_ds_result_deinit(&res);
        rc = pr_ds_append(ds, rec, (size_t)n, NULL, &res, &err, pr_deadline_in(10000));
    }
    if (rc == PR_OK && close) {
        pr_ds_result_deinit(&res);
        rc = pr_ds_close(ds, NULL, 0, &res, &err, pr_deadline_in(10000));
    }
    if (rc != PR_OK) fprintf(stderr, "ds_consumer: demo: %s: %s\n", pr_errname(rc), err.msg);
    pr_ds_result_deinit(&res);
    return rc;
}

int main(int argc, char **argv) {
    pr_ds *ds = NULL;
    pr_ds_opts o = {0};
    pr_err_info err;
    int rc, demo = argc > 3 && strcmp(argv[3], "--demo") == 0, follow = argc > 3 && strcmp(argv[3], "--follow") == 0;

    if (argc < 3) {
        fprintf(stderr, "usage: %s STREAM_URL CHECKPOINT_FILE [--follow | --demo]\n", argv[0]);
        return 2;
    }
    o.content_type = "text/plain";
    if ((rc = pr_ds_open(&ds, argv[1], &o, &err)) != PR_OK) {
        fprintf(stderr, "ds_consumer: %s: %s\n", pr_errname(rc), err.msg);
        return 1;
    }
    if (demo) {
        remove(argv[2]); /* forget the checkpoint */
        if ((rc = demo_write(ds, 1, 1, 3, 0)) != PR_OK) goto out;
        printf("== run 1\n");
        if ((rc = consume(ds, argv[2], 0)) != PR_OK) goto out;
        if ((rc = demo_write(ds, 0, 4, 5, 1)) != PR_OK) goto out;
        printf("== run 2, from the checkpoint\n");
    }
    rc = consume(ds, argv[2], follow);
out:
    pr_ds_destroy(ds);
    pr_sched_destroy();
    return rc == PR_OK ? 0 : 1;
}
