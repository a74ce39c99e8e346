// build: mkdir -p build && cc -std=c99 -Wall -Wextra -Wpedantic -Werror -O2 -I. -o build/ex_hostloop examples/hostloop.c -lbearssl -lpthread
// run: $TS/sse?events=5&id=1&interval_ms=100 5
/* hostloop.c - pristine inside an event loop that is not its own.

       build/ex_hostloop URL [MAX_EVENTS]

   Programs built around a loop of their own (a GUI toolkit, libuv, a game
   loop, an embedded super-loop) cannot give main() to a scheduler. Here
   the host is a plain poll(2) loop that owns main(). pristine's work runs
   in a task (an ordinary blocking SSE read loop), and the host drives it
   with two calls:

     pr_sched_fd(&err)      one fd to watch for readability (the
                            scheduler's epoll/kqueue fd);
     pr_sched_step(&next)   run every task that can run, without blocking;
                            next = when to call it again if the fd stays
                            quiet (the earliest timer, PR_FOREVER = none).

   So: poll the fd with a timeout until `next`, then step; repeat. With
   libuv it is a uv_poll_t on the fd and a uv_timer_t set to `next`; with
   GLib a GSource, with Qt a QSocketNotifier and a QTimer. Host callbacks
   may call pr_go and pr_cancel (the fd turns readable; the next step runs
   the change); they should not call blocking pristine functions, which
   would hold up the host until they return.

   Point it at any event stream, e.g.
       build/ex_hostloop https://stream.wikimedia.org/v2/stream/recentchange 5
   The project's test server sends five events 100 ms apart;
   examples/hostloop.expected holds the output. How often the host woke up
   goes to stderr. */
#define PRISTINE_IMPLEMENTATION
#include "pristine.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct reader {
    const char *url;
    long max;        /* events to read; 0 = until the stream fails */
    long events;
    int done;        /* the task is returning: the host loop can end */
} reader;

/* The task: the same blocking loop a program without a host loop writes. */
static int read_stream(void *arg) {
    reader *r = (reader *)arg;
    pr_sse *s = NULL;
    pr_sse_event ev;
    pr_err_info err;
    int rc = pr_sse_open(&s, r->url, NULL, &err, pr_deadline_in(30000));
    if (rc != PR_OK) {
        fprintf(stderr, "hostloop: cannot open %s: %s: %s\n", r->url, pr_errname(rc), err.msg);
    } else {
        while ((r->max == 0 || r->events < r->max) && (rc = pr_sse_next(s, &ev, PR_FOREVER)) == PR_OK) {
            printf("event id=%s data=\"%.*s\"\n", ev.last_id, (int)ev.data_len, ev.data);
            fflush(stdout);
            r->events++;
        }
        if (rc != PR_OK && rc != PR_ECANCELED) {
            pr_sse_last_error(s, &err);
            fprintf(stderr, "hostloop: stream ended: %s: %s\n", pr_errname(rc), err.msg);
        }
        pr_sse_destroy(s);
    }
    r->done = 1;
    return rc;
}

int main(int argc, char **argv) {
    reader r = {0};
    pr_task *task = NULL;
    pr_err_info err;
    int64_t next = PR_FOREVER;
    long wakeups = 0;
    int fd, rc = PR_OK;

    if (argc < 2) {
        fprintf(stderr, "usage: %s URL [MAX_EVENTS]\n", argv[0]);
        return 2;
    }
    r.url = argv[1];
    r.max = argc > 2 ? atol(argv[2]) : 0;

    /* The fd to watch. A build with the poll(2) back end has none
       (PR_ENOTSUP): then the host steps on a short timer of its own. */
    fd = pr_sched_fd(&err);
    if (fd < 0 && fd != PR_ENOTSUP) {
        fprintf(stderr, "hostloop: pr_sched_fd: %s: %s\n", pr_errname(fd), err.msg);
        return 1;
    }
    if (pr_go(&task, read_stream, &r, NULL) != PR_OK) return 1;

    /* The host's loop. A real one also watches its own fds and timers. */
    while (!r.done) {
        struct pollfd p = {0};
        int64_t now = pr_now();
        int timeout = next == PR_FOREVER ? -1 : next <= now ? 0 : next - now > 60000 ? 60000 : (int)(next - now);
        if (fd < 0 && (timeout < 0 || timeout > 10)) timeout = 10;
        p.fd = fd;
        p.events = POLLIN;
        poll(&p, fd >= 0 ? 1 : 0, timeout); /* the host's own wait */
        wakeups++;
        pr_sched_step(&next); /* fd readable or the deadline passed: run pristine's tasks */
    }

    pr_join(task, &rc, 0); /* the task has returned: reap it without waiting */
    printf("== %ld events\n", r.events);
    fprintf(stderr, "hostloop: the host woke %ld times\n", wakeups);
    pr_sched_destroy(); /* closes the fd: stop watching it first */
    return rc == PR_OK ? 0 : 1;
}
