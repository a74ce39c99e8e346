// build: mkdir -p build && cc -std=c99 -Wall -Wextra -Wpedantic -Werror -O2 -I. -o build/ex_ds_tail examples/ds_tail.c -lbearssl -lpthread
// run: $DS/v1/stream/example-tail --demo
/* ds_tail.c - follow a Durable Stream live, like `tail -f`, until it closes.

       build/ex_ds_tail STREAM_URL [--demo]

   A Durable Stream is an append-only log over HTTP with resumable
   offsets. pr_ds_read_open starts a read at an offset ("-1" = the start,
   "now" = the tail, or an offset the server handed out earlier);
   pr_ds_read_next catches up, then waits at the tail for new data (here
   over SSE; PR_DS_LIVE_LONG_POLL works without it) and reconnects from
   its offset when a connection drops. When the stream is closed the last
   chunk has closed = 1 and the next call returns PR_ECLOSED: the tail ends
   by itself.

   --demo makes its own content: it deletes and creates the stream, and a
   second task appends five lines, one every 100 ms, then closes the
   stream, while the main task tails it. Without --demo it only reads: point
   it at any stream (credentials go in pr_ds_opts.headers or headers_fn).
   examples/ds_tail.expected holds the --demo output. */
#define PRISTINE_IMPLEMENTATION
#include "pristine.h"

#include <stdio.h>
#include <string.h>

/* The demo's writer: five appends, then close (a task of its own). */
static int writer(void *user_data) {
    pr_ds *ds = (pr_ds *)user_data;
    pr_ds_result res = {0};
    pr_err_info err;
    char line[32];
    int i, rc = PR_OK;
    for (i = 1; i <= 5 && rc == PR_OK; i++) {
        int n = snprintf(line, sizeof line, "line %d\n", i);
        if ((rc = pr_sleep(pr_deadline_in(100))) == PR_OK)
            rc = pr_ds_append(ds, line, (size_t)n, NULL, &res, &err, pr_deadline_in(10000));
    }
    if (rc == PR_OK) rc = pr_ds_close(ds, NULL, 0, &res, &err, pr_deadline_in(10000));
    if (rc != PR_OK) fprintf(stderr, "ds_tail: writer: %s: %s\n", pr_errname(rc), err.msg);
    pr_ds_result_deinit(&res);
    return rc;
}

/* Delete the stream if it is there, then create it empty. */
static int make_fresh(pr_ds *ds) {
    pr_ds_result res = {0};
    pr_err_info err;
    int rc = pr_ds_delete(ds, &res, &err, pr_deadline_in(10000));
    if (rc != PR_OK && res.error != PR_DS_NOT_FOUND) goto fail;
    pr_ds_result_deinit(&res);
    if ((rc = pr_ds_create(ds, NULL, &res, &err, pr_deadline_in(10000))) != PR_OK) goto fail;
    pr_ds_result_deinit(&res);
    return PR_OK;
fail:
    fprintf(stderr, "ds_tail: %s: %s\n", pr_errname(rc), err.msg);
    pr_ds_result_deinit(&res);
    return rc;
}

int main(int argc, char **argv) {
    pr_ds *ds = NULL;
    pr_ds_opts o = {0};
    pr_ds_read *rd = NULL;
    pr_ds_read_opts ro = {0};
    pr_ds_chunk c;
    pr_err_info err;
    pr_task *w = NULL;
    int rc, demo = argc > 2 && strcmp(argv[2], "--demo") == 0, status = 1;

    if (argc < 2) {
        fprintf(stderr, "usage: %s STREAM_URL [--demo]\n", argv[0]);
        return 2;
    }
    o.content_type = "text/plain";
    if ((rc = pr_ds_open(&ds, argv[1], &o, &err)) != PR_OK) { /* no request yet: only checks */
        fprintf(stderr, "ds_tail: %s: %s\n", pr_errname(rc), err.msg);
        return 1;
    }
    if (demo && (make_fresh(ds) != PR_OK || pr_go(&w, writer, ds, NULL) != PR_OK)) goto out;

    ro.live = PR_DS_LIVE_SSE;
    if ((rc = pr_ds_read_open(&rd, ds, "-1", &ro, &err)) != PR_OK) {
        fprintf(stderr, "ds_tail: %s: %s\n", pr_errname(rc), err.msg);
        goto out;
    }
    /* Chunks are whatever the server sends together: print the bytes. */
    while ((rc = pr_ds_read_next(rd, &c, PR_FOREVER)) == PR_OK) {
        fwrite(c.data, 1, c.len, stdout);
        fflush(stdout);
        fprintf(stderr, "ds_tail: %zu bytes, next offset %s%s\n", c.len, c.offset, c.up_to_date ? " (up to date)" : "");
    }
    if (rc == PR_ECLOSED) {
        printf("== the stream is closed\n");
        status = 0;
    } else { /* a 404, a refused certificate, the server gone for good ... */
        pr_ds_read_last_error(rd, &err);
        fprintf(stderr, "ds_tail: %s (status %d): %s\n", pr_errname(rc), err.http_status, err.msg);
    }
out:
    if (w) pr_join(w, NULL, pr_deadline_in(10000));
    pr_ds_read_destroy(rd);
    pr_ds_destroy(ds);
    pr_sched_destroy();
    return status;
}
