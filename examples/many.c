// build: mkdir -p build && cc -std=c99 -Wall -Wextra -Wpedantic -Werror -O2 -I. -o build/ex_many examples/many.c -lbearssl -lpthread
// run: $TS/sse?events=20&id=1&interval_ms=10 100 20
/* many.c - many event streams at once, in one thread.

       build/ex_many URL [STREAMS] [EVENTS_EACH]

   Every stream gets a task of its own (pr_group_go) running the same
   plain while loop as examples/sse.c; while one waits for its next event
   the others run. The streams share one pr_http_client (opts.client), and
   a group waits for them all. A quiet plaintext stream costs about 15 KiB;
   ten thousand fit in one thread (raise the open-file limit, ulimit -n,
   above the number of streams).

   Each task reads EVENTS_EACH events and stops; the totals are printed at
   the end (examples/many.expected). For a real service, put one URL per
   task in its struct (a list of topics, say), and a Ctrl-C handler (see
   examples/ctrlc.c) that closes the group. */
#define PRISTINE_IMPLEMENTATION
#include "pristine.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct reader {
    const char *url;
    pr_http_client *client; /* shared */
    long want, got;         /* events to read; events read */
    int rc;                 /* how it ended */
} reader;

/* One stream's task. */
static int read_stream(void *user_data) {
    reader *r = (reader *)user_data;
    pr_sse *s = NULL;
    pr_sse_stream_opts o = {0};
    pr_sse_event ev;
    o.client = r->client;
    r->rc = pr_sse_open(&s, r->url, &o, NULL, pr_deadline_in(30000));
    while (r->rc == PR_OK && r->got < r->want && (r->rc = pr_sse_next(s, &ev, pr_deadline_in(30000))) == PR_OK)
        r->got++;
    pr_sse_destroy(s);
    return r->rc;
}

int main(int argc, char **argv) {
    int n = argc > 2 ? atoi(argv[2]) : 100, i, ok = 0;
    long each = argc > 3 ? atol(argv[3]) : 20, total = 0;
    pr_http_client *client = NULL;
    pr_group *g = NULL;
    reader *rs;
    int64_t t0 = pr_now();

    if (argc < 2 || n <= 0) {
        fprintf(stderr, "usage: %s URL [STREAMS] [EVENTS_EACH]\n", argv[0]);
        return 2;
    }
    if (!(rs = (reader *)calloc((size_t)n, sizeof *rs))) return 1;
    if (pr_http_client_create(&client, NULL, NULL) != PR_OK || pr_group_create(&g) != PR_OK) return 1;
    for (i = 0; i < n; i++) {
        rs[i].url = argv[1];
        rs[i].client = client;
        rs[i].want = each;
        if (pr_group_go(g, read_stream, &rs[i], NULL) != PR_OK) {
            fprintf(stderr, "many: cannot spawn task %d\n", i);
            break;
        }
    }
    /* Wait for every task (pr_group_close would cancel them instead). */
    pr_group_wait(g, pr_deadline_in(120000));
    pr_group_close(g, pr_deadline_in(10000)); /* cancels any straggler, frees the group */
    for (i = 0; i < n; i++) {
        total += rs[i].got;
        if (rs[i].got == each) ok++;
        else fprintf(stderr, "many: stream %d: %ld events, %s\n", i, rs[i].got, pr_errname(rs[i].rc));
    }
    printf("%d streams, %d complete, %ld events\n", n, ok, total);
    fprintf(stderr, "many: %lld ms\n", (long long)(pr_now() - t0));
    free(rs);
    pr_http_client_destroy(client);
    pr_sched_destroy();
    return ok == n ? 0 : 1;
}
