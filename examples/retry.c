// build: mkdir -p build && cc -std=c99 -Wall -Wextra -Wpedantic -Werror -O2 -I. -o build/ex_retry examples/retry.c -lbearssl -lpthread
// run: $TS
/* retry.c - retries with backoff, and a circuit breaker that stops them
   when an upstream keeps failing.

       build/ex_retry BASE_URL

   1. The HTTP client retries by itself: transport failures and 408, 409,
      429 and 5xx answers, after a backoff (or the server's Retry-After).
      The policy is a pr_retry_policy in the client's options; here 4
      retries, 100 ms doubling, no jitter so the output is exact. The
      observer prints every attempt and retry.
   2. A pr_breaker in the client's options is asked before every attempt.
      After 3 failures in a row it opens: the next attempt is not sent and
      the call ends with PR_ECIRCUIT, and so does every call until the
      breaker's reset timeout has passed; then one probe is let through,
      and its success closes the breaker again.

   BASE_URL is the project's test server: /seq?key=K&codes=503,503,200
   answers 503, 503, then 200; /status?code=C always answers C. For a real
   service keep the policy and the breaker, and put your URLs in place of
   those (one breaker per upstream: pr_breaker_registry_get shares them).
   examples/retry.expected holds the output. */
#define PRISTINE_IMPLEMENTATION
#include "pristine.h"

#include <stdio.h>

static const char *state_name(int st) {
    return st == PR_BREAKER_OPEN ? "open" : st == PR_BREAKER_HALF_OPEN ? "half-open" : "closed";
}

/* The client's observer: one line per attempt and per retry. */
static void on_event(const pr_http_event *ev, void *user_data) {
    (void)user_data;
    if (ev->kind == PR_HTTP_EVENT_ATTEMPT) {
        if (ev->status) printf("  attempt %d: status %d\n", ev->attempt + 1, ev->status);
        else printf("  attempt %d: %s\n", ev->attempt + 1, pr_errname(ev->error));
    } else if (ev->kind == PR_HTTP_EVENT_RETRY) {
        printf("  retry in %lld ms (%s)\n", (long long)ev->delay_ms, ev->reason);
    }
}

/* The breaker's observer: every state change. */
static void on_change(const char *name, int from, int to, void *user_data) {
    (void)user_data;
    printf("  breaker %s: %s -> %s\n", name, state_name(from), state_name(to));
}

/* One GET: the final status, or the error that ended the call. */
static void get(pr_http_client *c, const char *base, const char *path) {
    char url[512];
    pr_http_response *r = NULL;
    pr_err_info err;
    int rc;
    snprintf(url, sizeof url, "%s%s", base, path);
    printf("GET %s\n", path);
    rc = pr_http_client_get(c, &r, url, &err, pr_deadline_in(10000));
    if (rc == PR_OK) printf("  => status %d\n", pr_http_status(r)); /* a 503 after the last retry is a response */
    else printf("  => %s (%s)\n", pr_errname(rc), rc == PR_ECIRCUIT ? "not sent: the breaker is open" : err.msg);
    pr_http_response_destroy(r); /* reads nothing more: the connection is closed, not pooled */
}

int main(int argc, char **argv) {
    pr_breaker *breaker = NULL;
    pr_breaker_opts bo = {0};
    pr_http_client *client = NULL;
    pr_http_client_opts co = {0};
    pr_err_info err;
    int rc;

    if (argc < 2) {
        fprintf(stderr, "usage: %s BASE_URL\n", argv[0]);
        return 2;
    }
    bo.failure_threshold = 3;   /* 3 failures in a row open it */
    bo.reset_timeout_ms = 1000; /* open for 1 s, then half-open: one probe */
    bo.observer.on_change = on_change;
    if ((rc = pr_breaker_create(&breaker, "upstream", &bo)) != PR_OK) return 1;

    co.retry.max_retries = 4;
    co.retry.backoff.strategy = PR_BACKOFF_EXPONENTIAL;
    co.retry.backoff.jitter = PR_JITTER_NONE; /* real clients want jitter: leave backoff zero for the default */
    co.retry.backoff.base_ms = 100;
    co.retry.backoff.max_ms = 2000;
    co.breaker = breaker;
    co.observer.on_event = on_event;
    if ((rc = pr_http_client_create(&client, &co, &err)) != PR_OK) {
        fprintf(stderr, "retry: %s: %s\n", pr_errname(rc), err.msg);
        return 1;
    }

    printf("== 1. retries: two 503s, then 200\n");
    get(client, argv[1], "/seq?key=retry-example&codes=503,503,200&cycle=1");

    printf("== 2. a breaker: the upstream keeps failing\n");
    get(client, argv[1], "/status?code=503");  /* 3 attempts fail, the 4th is refused */
    get(client, argv[1], "/status?code=503");  /* refused at once: nothing is sent */
    pr_sleep(pr_deadline_in(1200));            /* past the reset timeout */
    printf("(after %d ms the breaker is %s)\n", bo.reset_timeout_ms, state_name(pr_breaker_state(breaker)));
    get(client, argv[1], "/status?code=200");  /* the probe succeeds: closed again */

    pr_http_client_destroy(client);
    pr_breaker_destroy(breaker); /* after the client that borrows it */
    pr_sched_destroy();
    return 0;
}
