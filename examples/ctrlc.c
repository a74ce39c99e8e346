// build: mkdir -p build && cc -std=c99 -Wall -Wextra -Wpedantic -Werror -O2 -I. -o build/ex_ctrlc examples/ctrlc.c -lbearssl -lpthread
// run: $TS/sse?events=1000&id=1&interval_ms=100 --self-interrupt-after 3
/* ctrlc.c - stop cleanly on Ctrl-C: the task reading a stream is
   cancelled, unwinds, and main closes what is left.

       build/ex_ctrlc URL [--self-interrupt-after N]

   pr_signal_watch_start turns the first SIGINT or SIGTERM into
   pr_cancel of the task you name: whatever that task is blocked in
   (pr_sse_next here, or a connect, a sleep, a read) returns PR_ECANCELED
   at once, so it leaves its loop and frees what it opened. The signal
   handler only records the signal and wakes the scheduler; nothing runs
   inside the handler. A second Ctrl-C kills the program the usual way.

   Run it and press Ctrl-C. --self-interrupt-after N sends the program a
   SIGINT itself (raise) after the N-th event, which is how
   examples/run.sh tests it (examples/ctrlc.expected). */
#define PRISTINE_IMPLEMENTATION
#include "pristine.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct app {
    const char *url;
    long interrupt_after; /* 0 = never: wait for a real Ctrl-C */
    long events;
} app;

/* The worker: an ordinary stream loop. It needs no signal code at all. */
static int worker(void *user_data) {
    app *a = (app *)user_data;
    pr_sse *s = NULL;
    pr_sse_event ev;
    pr_err_info err;
    int rc = pr_sse_open(&s, a->url, NULL, &err, pr_deadline_in(30000));
    if (rc != PR_OK) {
        fprintf(stderr, "ctrlc: %s: %s\n", pr_errname(rc), err.msg);
        return rc;
    }
    while ((rc = pr_sse_next(s, &ev, PR_FOREVER)) == PR_OK) {
        printf("%.*s\n", (int)ev.data_len, ev.data);
        fflush(stdout);
        if (++a->events == a->interrupt_after) raise(SIGINT); /* the test's Ctrl-C */
    }
    printf("worker: pr_sse_next returned %s after %ld events; closing the stream\n", pr_errname(rc), a->events);
    pr_sse_destroy(s);
    return rc;
}

int main(int argc, char **argv) {
    app a = {0};
    pr_task *t = NULL;
    pr_signal_watch *w = NULL;
    pr_err_info err;
    int rc, result = 0, sig;

    if (argc < 2) {
        fprintf(stderr, "usage: %s URL [--self-interrupt-after N]\n", argv[0]);
        return 2;
    }
    a.url = argv[1];
    if (argc > 3 && strcmp(argv[2], "--self-interrupt-after") == 0) a.interrupt_after = atol(argv[3]);

    if ((rc = pr_go(&t, worker, &a, NULL)) != PR_OK) return 1;
    /* SIGINT and SIGTERM (NULL, 0) cancel the worker. */
    if ((rc = pr_signal_watch_start(&w, NULL, 0, t, &err)) != PR_OK) {
        fprintf(stderr, "ctrlc: %s: %s\n", pr_errname(rc), err.msg);
        pr_cancel(t);
    }
    fprintf(stderr, "ctrlc: reading %s; press Ctrl-C to stop\n", a.url);
    pr_join(t, &result, PR_FOREVER); /* returns once the worker has unwound */

    /* Which signal came (a deadline in the past only asks). main itself is
       not cancelled: it may still flush and close with deadlines of its own. */
    sig = w ? pr_signal_wait(w, pr_deadline_in(0)) : 0;
    if (sig == SIGINT) printf("main: stopped by SIGINT\n");
    else if (sig == SIGTERM) printf("main: stopped by SIGTERM\n");
    else printf("main: the stream ended by itself (%s)\n", pr_errname(result));
    pr_signal_watch_stop(w);
    pr_sched_destroy();
    return result == PR_ECANCELED ? 0 : 1;
}
