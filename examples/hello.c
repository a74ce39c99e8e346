// build: mkdir -p build && cc -std=c99 -Wall -Wextra -Wpedantic -Werror -O2 -I. -DPRISTINE_NO_TLS -o build/ex_hello examples/hello.c -lpthread
// run:
/* hello.c - the first pristine.h program: a tour of the runtime core.

   1. main() is a task like any other: it calls blocking functions directly,
      and while it waits the tasks it spawned with pr_go run.
   2. A producer and a consumer talk over a channel. The producer lives in a
      group; the consumer's result comes back as a future.
   3. Closing the group cancels what is still running in it.
   4. A deadline that passes leaves the work running: a future that timed
      out can still be awaited again.

   The output is deterministic; examples/hello.expected holds it. */
#define PRISTINE_IMPLEMENTATION
#include "pristine.h"

#include <stdint.h>
#include <stdio.h>

/* Stop main on the first unexpected error (in main only: it returns). */
#define TRY(call) \
    do { \
        int rc_ = (call); \
        if (rc_ < 0) { \
            fprintf(stderr, "hello: %s: %s\n", #call, pr_errname(rc_)); \
            pr_sched_destroy(); \
            return 1; \
        } \
    } while (0)

/* ---- 1. tasks and sleep ---- */
typedef struct greeting {
    const char *word;
    int delay_ms;
} greeting;

static int greet(void *user_data) {
    const greeting *g = (const greeting *)user_data;
    int rc = pr_sleep(pr_deadline_in(g->delay_ms)); /* the other tasks run meanwhile */
    if (rc != PR_OK) return rc;
    printf("slept %d ms: %s\n", g->delay_ms, g->word);
    return g->delay_ms;
}

/* ---- 2. a producer and a consumer ---- */
static int produce(void *user_data) {
    pr_chan *ch = (pr_chan *)user_data;
    int i, rc;
    for (i = 1; i <= 5; i++)
        if ((rc = pr_chan_send(ch, &i, PR_FOREVER)) != PR_OK) return rc; /* waits while the buffer is full */
    return pr_chan_close(ch); /* the consumer drains the buffer, then gets PR_ECLOSED */
}

static int consume(void *user_data) {
    pr_chan *ch = (pr_chan *)user_data;
    int v, rc, total = 0;
    while ((rc = pr_chan_recv(ch, &v, PR_FOREVER)) == PR_OK) {
        printf("got %d\n", v);
        total += v;
    }
    return rc == PR_ECLOSED ? total : rc; /* >= 0 resolves the future, < 0 rejects it */
}

/* ---- 3. a task that only stops when cancelled ---- */
static int watchdog(void *user_data) {
    int rc = pr_sleep(pr_deadline_in(60 * 1000));
    (void)user_data;
    printf("watchdog: %s\n", rc == PR_OK ? "the pipeline is stuck" : pr_errname(rc));
    return rc;
}

/* ---- 4. work that takes longer than we are willing to wait ---- */
static int slow_answer(void *user_data) {
    int rc = pr_sleep(pr_deadline_in(50));
    (void)user_data;
    return rc == PR_OK ? 42 : rc;
}

int main(void) {
    /* One deadline for the whole run; each wait below is bounded by it. */
    int64_t deadline = pr_deadline_in(10 * 1000);
    greeting later = { "world", 40 }, sooner = { "hello", 10 };
    pr_task *a, *b;
    pr_chan *ch;
    pr_group *g;
    pr_future *total, *answer;
    void *value;
    int ra, rb, rc;

    printf("== tasks: sleeping lets the others run\n");
    TRY(pr_go(&a, greet, &later, NULL)); /* spawned first, finishes last */
    TRY(pr_go(&b, greet, &sooner, NULL));
    TRY(pr_join(a, &ra, deadline)); /* main blocks here; a and b run */
    TRY(pr_join(b, &rb, deadline));
    printf("joined: %d and %d\n", ra, rb);

    printf("== channel: a producer, a consumer, a future for the total\n");
    TRY(pr_chan_create(&ch, sizeof(int), 2)); /* ints, two of them buffered */
    TRY(pr_group_create(&g));
    TRY(pr_group_go(g, produce, ch, NULL));
    TRY(pr_group_go(g, watchdog, NULL, NULL));
    TRY(pr_future_go(&total, consume, ch, NULL));
    TRY(pr_future_await(total, &value, deadline));
    printf("total: %d\n", (int)(intptr_t)value);
    pr_future_destroy(total);

    printf("== group: closing cancels what still runs\n");
    TRY(pr_group_close(g, deadline)); /* cancels the watchdog, waits for it */
    printf("group closed\n");
    pr_chan_destroy(ch);

    printf("== deadlines: a timeout does not cancel the work\n");
    TRY(pr_future_go(&answer, slow_answer, NULL, NULL));
    rc = pr_future_await(answer, &value, pr_deadline_min(pr_deadline_in(10), deadline));
    printf("await for 10 ms: %s, still pending: %s\n", pr_errname(rc),
           pr_future_state(answer) == PR_FUTURE_PENDING ? "yes" : "no");
    TRY(pr_future_await(answer, &value, deadline));
    printf("await again: %d\n", (int)(intptr_t)value);
    pr_future_destroy(answer);

    TRY(pr_sched_destroy()); /* frees the scheduler and its pooled stacks */
    return 0;
}
