// build: mkdir -p build && cc -std=c99 -Wall -Wextra -Wpedantic -Werror -O2 -I. -o build/ex_get examples/get.c -lbearssl -lpthread
// run: $TS/chunked?sizes=5,21&delay_ms=100
/* get.c - GET a URL and copy the body to stdout as it arrives.

       build/ex_get URL > body

   pr_http_client_get returns once the response head is in (whatever the
   status: a 404 is PR_OK with status 404); pr_http_read then hands out
   the body's bytes as they come, chunked or not, so a large download
   never has to fit in memory. The status and the byte count go to
   stderr. Connections are pooled by the client: destroying a response
   read to its end puts its connection back for the next request.

   Any http or https URL works, e.g. build/ex_get https://example.org/
   (https needs -lbearssl; redirects are followed here up to 5 hops). The
   client retries transport failures and 408/429/5xx by default, but only
   until the head reaches you: a body you have started to read is never
   fetched again. Against the project's test server the body is the
   26 bytes a to z (no newline) in two chunks; examples/get.expected
   holds them. */
#define PRISTINE_IMPLEMENTATION
#include "pristine.h"

#include <stdio.h>

static char buf[16384]; /* static: a big buffer on a task's stack is a bad habit */

int main(int argc, char **argv) {
    pr_http_client *client = NULL;
    pr_http_client_opts opts = {0};
    pr_http_response *resp = NULL;
    pr_err_info err;
    ptrdiff_t n;
    long long total = 0;
    int rc, status = 1;

    if (argc < 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    opts.max_redirects = 5;
    opts.idle_timeout_ms = 30000; /* a connection silent this long counts as dead */
    if ((rc = pr_http_client_create(&client, &opts, &err)) != PR_OK) {
        fprintf(stderr, "get: %s: %s\n", pr_errname(rc), err.msg);
        return 1;
    }
    rc = pr_http_client_get(client, &resp, argv[1], &err, pr_deadline_in(30000));
    if (rc != PR_OK) { /* no response at all: DNS, refused, TLS, timed out ... */
        fprintf(stderr, "get: %s: %s\n", pr_errname(rc), err.msg);
        goto out;
    }
    fprintf(stderr, "get: status %d\n", pr_http_status(resp));

    /* n > 0: bytes; PR_ECLOSED: the end of the body; another PR_E* code: an error */
    while ((n = pr_http_read(resp, buf, sizeof buf, pr_deadline_in(30000))) > 0) {
        fwrite(buf, 1, (size_t)n, stdout);
        total += n;
    }
    fflush(stdout);
    if (n != PR_ECLOSED) {
        pr_http_last_error(resp, &err);
        fprintf(stderr, "get: the body broke off after %lld bytes: %s: %s\n", total, pr_errname((int)n), err.msg);
    } else {
        fprintf(stderr, "get: %lld bytes\n", total);
        status = pr_http_status(resp) / 100 == 2 ? 0 : 1;
    }
out:
    pr_http_response_destroy(resp); /* NULL is a no-op */
    pr_http_client_destroy(client);
    pr_sched_destroy();
    return status;
}
