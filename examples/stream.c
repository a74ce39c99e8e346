// build: mkdir -p build && cc -std=c99 -O2 -o build/stream examples/stream.c -lbearssl -lpthread
/* stream.c - the main demo: a live Server-Sent Events stream read in a
   plain while loop, across a dropped connection.

   The program starts the project's test server (tools/testserver.c) in
   this process, on 127.0.0.1 and a free port, and opens an event stream on
   it with pr_sse_open. The server sends an event every 200 ms and, after
   the fifth, drops the connection in the middle of the next one. The loop
   does not notice: pr_sse_next reconnects after the reconnection time the
   server asked for (`retry: 500`), sends Last-Event-ID: 5, and the server
   goes on with event 6. Nothing is missed and nothing comes twice; the
   half-sent event of the broken connection is never delivered.

   The output is deterministic; examples/stream.expected holds it. */
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#include "../tools/testserver.c"

#include <stdio.h>
#include <string.h>

static char resumed_from[32];

/* Called before the stream waits to connect again. */
static void on_reconnect(const pr_sse_reconnect *info, void *user_data) {
    (void)user_data;
    snprintf(resumed_from, sizeof resumed_from, "%s", info->last_event_id);
    printf("-- connection lost (%s); reconnecting in %lld ms with Last-Event-ID: %s\n",
           info->reason == PR_ECLOSED ? "the server ended the body" : "the server dropped it",
           (long long)info->delay_ms, info->last_event_id);
}

int main(void) {
    ts_server *server = NULL;
    pr_sse *s = NULL;
    pr_sse_stream_opts opts;
    pr_sse_event ev;
    pr_err_info err;
    char url[160];

    int rc, n = 0;

    if (ts_start(&server, NULL) != PR_OK) {
        fprintf(stderr, "stream: the local server did not start\n");
        return 1;
    }
    snprintf(url, sizeof url,
             "http://127.0.0.1:%u/sse?events=10&id=1&retry=500&interval_ms=200&drop_after=5&drop_partial=1",
             (unsigned)ts_port(server));

    memset(&opts, 0, sizeof opts);
    opts.observer.on_reconnect = on_reconnect;
    rc = pr_sse_open(&s, url, &opts, &err, pr_deadline_in(10000));
    if (rc != PR_OK) {
        fprintf(stderr, "stream: pr_sse_open: %s: %s\n", pr_errname(rc), err.msg);
        ts_stop(server);
        return 1;
    }
    {
        const pr_slice *ct = pr_sse_header(s, "content-type");
        printf("== connected: status %d, %.*s\n", pr_sse_status(s), ct ? (int)ct->len : 0, ct ? ct->ptr : "");
    }

    /* the loop the library is for */
    while (n < 10 && (rc = pr_sse_next(s, &ev, pr_deadline_in(10000))) == PR_OK) {
        printf("event id=%s type=%.*s data=\"%.*s\" (reconnection time %lld ms)\n", ev.last_id, (int)ev.type_len,
               ev.type, (int)ev.data_len, ev.data, (long long)ev.stream_retry_ms);
        n++;
    }
    if (rc != PR_OK) {
        pr_sse_last_error(s, &err);
        fprintf(stderr, "stream: pr_sse_next: %s: %s\n", pr_errname(rc), err.msg);
    }
    printf("== %d events, %ld reconnect, resumed after id %s\n", n, pr_sse_reconnects(s), resumed_from);

    pr_sse_destroy(s);
    ts_stop(server);
    pr_sched_destroy();
    return n == 10 ? 0 : 1;
}
