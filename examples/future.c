// build: mkdir -p build && cc -std=c99 -Wall -Wextra -Wpedantic -Werror -O2 -I. -o build/ex_future examples/future.c -lbearssl -lpthread
// run: $TS
/* future.c - a remote job as a future: submit it, then await its result.

       build/ex_future BASE_URL

   A job service answers a submit with a request id at once and computes
   the result later; the client polls a retrieve endpoint until it is
   there. pr_rfuture_submit does both: it POSTs the job, reads the request
   id, and returns an ordinary pr_future that a poller resolves in the
   background (each poll POSTs {"request_id": ..} to
   BASE_URL/api/v1/retrieve_future; "try_again" answers are polled again
   after a short, growing pause). pr_future_await waits for one;
   pr_future_await_all for many.

   The built-in protocol profile is Thinking Machines' Tinker API; another
   service's names (the retrieve path, the request id's member, the
   headers) go in pr_rfuture_poller_opts.profile. An API key would go in
   the client's headers (pr_http_request) or a headers_fn. The project's
   test server hands out ids req-1, req-2, ... and answers each job's third
   poll with {"result": "done", "polls": 3}; examples/future.expected
   holds the output. */
#define PRISTINE_IMPLEMENTATION
#include "pristine.h"

#include <stdio.h>
#include <string.h>

enum { JOBS = 3 };

/* Print a resolved job's result document. */
static void show(const char *what, pr_future *f) {
    const pr_json *res = pr_rfuture_result(f); /* owned by the future */
    size_t n = 0;
    const char *result = pr_json_string(pr_json_get(res, "result"), &n);
    const char *id = pr_json_string(pr_json_get(res, "request_id"), NULL);
    int64_t polls = 0;
    pr_json_int(pr_json_get(res, "polls"), &polls);
    printf("%s: result \"%.*s\" after %lld polls\n", what, (int)n, result ? result : "", (long long)polls);
    fprintf(stderr, "future: %s was %s\n", what, id ? id : "?");
}

int main(int argc, char **argv) {
    pr_rfuture_poller *poller = NULL;
    pr_rfuture_poller_opts po = {0};
    pr_rfuture_opts fo = {0};
    pr_future *one = NULL, *many[JOBS] = {0};
    pr_err_info err;
    char body[64];
    size_t failed = 0;
    int i, rc, status = 1;

    if (argc < 2) {
        fprintf(stderr, "usage: %s BASE_URL\n", argv[0]);
        return 2;
    }
    po.base_url = argv[1];
    /* NULL client: the poller makes its own (po.tls for a private CA). */
    if ((rc = pr_rfuture_poller_create(&poller, NULL, &po, &err)) != PR_OK) {
        fprintf(stderr, "future: %s: %s\n", pr_errname(rc), err.msg);
        return 1;
    }
    fo.request_type = "Sample"; /* sent in the profile's type header */
    fo.timeout_ms = 60000;      /* give up on the job after a minute of polling */

    printf("== one job\n");
    rc = pr_rfuture_submit(&one, poller, "/api/v1/asample", "{\"prompt\":\"hello\"}", 18, &fo, &err,
                           pr_deadline_in(30000));
    if (rc != PR_OK) { /* the submit itself failed: err has the status and the server's words */
        fprintf(stderr, "future: submit: %s (status %d): %s\n", pr_errname(rc), err.http_status, err.msg);
        goto out;
    }
    rc = pr_future_await(one, NULL, pr_deadline_in(60000));
    if (rc != PR_OK) { /* the job failed, expired, or polling gave up: the detail is the future's */
        pr_future_last_error(one, &err);
        fprintf(stderr, "future: %s: %s\n", pr_errname(rc), err.msg);
        goto out;
    }
    show("job", one);

    printf("== %d jobs at once, one wait\n", JOBS);
    for (i = 0; i < JOBS; i++) {
        int n = snprintf(body, sizeof body, "{\"prompt\":\"job %d\"}", i + 1);
        if ((rc = pr_rfuture_submit(&many[i], poller, "/api/v1/asample", body, (size_t)n, &fo, &err,
                                    pr_deadline_in(30000))) != PR_OK) {
            fprintf(stderr, "future: submit %d: %s: %s\n", i + 1, pr_errname(rc), err.msg);
            goto out;
        }
    }
    /* PR_AWAIT_FAIL_FAST would return at the first rejection; 0 waits for all */
    rc = pr_future_await_all(many, JOBS, 0, &failed, pr_deadline_in(60000));
    printf("awaited %d jobs: %s, %zu failed\n", JOBS, pr_errname(rc), failed);
    for (i = 0; i < JOBS && rc == PR_OK; i++) {
        char what[16];
        snprintf(what, sizeof what, "job %d", i + 1);
        show(what, many[i]);
    }
    status = rc == PR_OK ? 0 : 1;
out:
    pr_future_destroy(one); /* drops our reference; NULL is a no-op */
    for (i = 0; i < JOBS; i++) pr_future_destroy(many[i]);
    pr_rfuture_poller_destroy(poller);
    pr_sched_destroy();
    return status;
}
