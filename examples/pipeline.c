// build: mkdir -p build && cc -std=c99 -Wall -Wextra -Wpedantic -Werror -O2 -I. -o build/ex_pipeline examples/pipeline.c -lbearssl -lpthread
// run: $TS
/* pipeline.c - a request pipeline built from the resilience primitives:
   submit remote jobs through a throttle, then await their results.

   1. Eight jobs are submitted at once, each by its own task. A throttle
      (pr_throttle) holds them back in layers: a concurrency limit, a bytes
      budget, and a shared backoff window.
   2. The server answers the first submit with 429. That job opens the
      window (pr_throttle_backoff) and submits again with the same sequence
      id; every other job waits out the same window instead of hammering
      the server too.
   3. Each accepted submit hands back a request id; pr_rfuture_submit turns
      it into an ordinary pr_future, polled in the background until the job
      is done. One pr_future_await_all waits for the eight of them.

       build/ex_pipeline BASE_URL

   BASE_URL is the project's test server: its submit route, asked with
   key=pipeline&codes=429,200,...&cycle=1, refuses the first of every nine
   submits with 429, and its retrieve route answers "try again" twice and
   the result on the third poll. For a real service, put its submit path
   in SUBMIT_PATH and its limits in the throttle's options.

   The output is deterministic; examples/pipeline.expected holds it. */
#define PRISTINE_IMPLEMENTATION
#include "pristine.h"

#include <stdio.h>
#include <string.h>

enum { JOBS = 8 };

/* The test server's submit route: the first of every 9 submits (8 jobs and
   one resubmit) is answered 429. */
#define SUBMIT_PATH "/api/v1/asample?key=pipeline&codes=429,200,200,200,200,200,200,200,200&cycle=1"

typedef struct job {
    int seq;                  /* the sequence id: the same on every resubmit */
    pr_throttle *throttle;
    pr_rfuture_poller *poller;
    pr_future *result;        /* the remote future, once the submit is accepted */
    int submits, refused;     /* submits sent; answered 429 */
    int64_t first_at, last_at;
} job;

/* One job's submit: acquire, send, release; a 429 opens the shared window
   and the same request goes again once the throttle lets it. */
static int submit_job(void *arg) {
    job *j = (job *)arg;
    char body[64];
    int n = snprintf(body, sizeof body, "{\"seq_id\":%d,\"prompt\":\"job %d\"}", j->seq, j->seq);
    for (;;) {
        pr_throttle_ticket tk;
        pr_rfuture_opts o;
        pr_err_info why;
        int rc = pr_throttle_acquire(j->throttle, n, &tk, pr_deadline_in(30000));
        if (rc) return rc;
        if (!j->submits) j->first_at = pr_now();
        j->last_at = pr_now();
        j->submits++;
        memset(&o, 0, sizeof o);
        o.request_type = "Sample";
        rc = pr_rfuture_submit(&j->result, j->poller, SUBMIT_PATH, body, (size_t)n, &o, &why,
                               pr_deadline_in(10000));
        pr_throttle_release(j->throttle, &tk);
        if (rc == PR_EHTTP && why.http_status == 429) {
            j->refused++;
            pr_throttle_backoff(j->throttle, n);
            continue;
        }
        if (rc) fprintf(stderr, "pipeline: job %d: %s\n", j->seq, why.msg);
        return rc;
    }
}

int main(int argc, char **argv) {
    pr_http_client *client = NULL;
    pr_rfuture_poller *poller = NULL;
    pr_throttle *throttle = NULL;
    pr_http_client_opts co;
    pr_rfuture_poller_opts po;
    pr_throttle_opts to;
    job jobs[JOBS];
    pr_task *tasks[JOBS];
    pr_future *results[JOBS];
    int i, rc, refused = 0, submits = 0, waited = 1, status = 1;
    size_t failed = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s BASE_URL\n", argv[0]);
        return 2;
    }
    memset(jobs, 0, sizeof jobs);

    /* The throttle answers 429s, so the client itself does not retry them. */
    memset(&co, 0, sizeof co);
    co.ignore_env = 1;
    co.retry.max_retries = PR_RETRY_OFF;
    memset(&po, 0, sizeof po);
    po.base_url = argv[1];
    memset(&to, 0, sizeof to);
    to.max_concurrent = 4; /* at most 4 submits in flight */
    if (pr_http_client_create(&client, &co, NULL) != PR_OK || pr_rfuture_poller_create(&poller, client, &po, NULL) != PR_OK ||
        pr_throttle_create(&throttle, &to) != PR_OK) {
        fprintf(stderr, "pipeline: setup failed\n");
        goto out;
    }

    /* 1 and 2: every job submits from its own task */
    for (i = 0; i < JOBS; i++) {
        jobs[i].seq = i + 1;
        jobs[i].throttle = throttle;
        jobs[i].poller = poller;
        if ((rc = pr_go(&tasks[i], submit_job, &jobs[i], NULL)) != PR_OK) {
            fprintf(stderr, "pipeline: pr_go: %s\n", pr_errname(rc));
            goto out;
        }
    }
    for (i = 0; i < JOBS; i++) {
        int r = -1;
        pr_join(tasks[i], &r, PR_FOREVER);
        if (r != PR_OK) {
            fprintf(stderr, "pipeline: job %d was not accepted\n", i + 1);
            goto out;
        }
        results[i] = jobs[i].result;
        submits += jobs[i].submits;
        refused += jobs[i].refused;
    }
    printf("== submitted %d jobs with %d submits: %d answered 429 and went again\n", JOBS, submits, refused);
    for (i = 0; i < JOBS; i++)
        if (jobs[i].refused && jobs[i].last_at - jobs[i].first_at < 1000) waited = 0;
    printf("the resubmit waited out the 1 s backoff window: %s\n", waited ? "yes" : "no");

    /* 3: N submits, then one wait */
    rc = pr_future_await_all(results, JOBS, 0, &failed, pr_deadline_in(30000));
    printf("== awaited all %d results: %s\n", JOBS, rc == PR_OK ? "ok" : pr_errname(rc));
    for (i = 0; i < JOBS; i++) {
        const pr_json *res = pr_rfuture_result(results[i]);
        size_t n;
        const char *id = pr_json_string(pr_json_get(res, "request_id"), &n);
        int64_t polls = 0;
        pr_json_int(pr_json_get(res, "polls"), &polls);
        printf("job %d: %s after %lld polls\n", i + 1, id && n ? "resolved" : "no result",
               (long long)polls);
    }
    status = rc == PR_OK ? 0 : 1;

out:
    for (i = 0; i < JOBS; i++)
        if (jobs[i].result) pr_future_destroy(jobs[i].result);
    pr_throttle_destroy(throttle);
    pr_rfuture_poller_destroy(poller);
    pr_http_client_destroy(client);
    pr_sched_destroy();
    return status;
}
