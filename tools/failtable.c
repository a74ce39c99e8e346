/* failtable.c - for each way a server can say no, what each high-level call
   returns and after how long: once with a 5 s deadline, once with
   PR_FOREVER (a 120 s guard cancels a call that would hang). Servers: the
   test server on 127.0.0.1 (plain, and TLS with a certificate of the test
   CA, which the calls do not trust); a closed port; a .invalid name.
   `make failtable` builds and runs it from the repository root. */
#define PRISTINE_IMPLEMENTATION
#include "pristine.h"
#include "tools/testserver.c"
#include <stdio.h>
#include <string.h>

typedef struct row { const char *name; char url[128]; } row;
typedef struct job { int call; const char *url; int64_t deadline; int rc; pr_err_info e; } job;

static char *slurp(const char *p) {
    FILE *f = fopen(p, "rb");
    static char buf[4][8192];
    static int i;
    char *b = buf[i++ % 4];
    size_t n;
    if (!f) return NULL;
    n = fread(b, 1, sizeof buf[0] - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

static int run_call(void *arg) {
    job *j = (job *)arg;
    char u[160];
    memset(&j->e, 0, sizeof j->e);
    if (j->call == 0) {
        pr_sse *s = NULL;
        snprintf(u, sizeof u, "%s/x", j->url);
        j->rc = pr_sse_open(&s, u, NULL, &j->e, j->deadline);
        pr_sse_destroy(s);
    } else if (j->call == 1) {
        pr_http_client *c = NULL;
        pr_http_response *r = NULL;
        snprintf(u, sizeof u, "%s/x", j->url);
        pr_http_client_create(&c, NULL, NULL);
        j->rc = pr_http_client_get(c, &r, u, &j->e, j->deadline);
        if (j->rc == PR_OK) j->rc = pr_http_status(r);
        pr_http_response_destroy(r);
        pr_http_client_destroy(c);
    } else if (j->call == 2) {
        pr_ds *ds = NULL;
        pr_ds_read *rd = NULL;
        pr_ds_read_opts ro;
        pr_ds_chunk ch;
        snprintf(u, sizeof u, "%s/x", j->url);
        memset(&ro, 0, sizeof ro);
        ro.live = PR_DS_LIVE_LONG_POLL;
        if ((j->rc = pr_ds_open(&ds, u, NULL, &j->e)) == PR_OK &&
            (j->rc = pr_ds_read_open(&rd, ds, "-1", &ro, &j->e)) == PR_OK) {
            j->rc = pr_ds_read_next(rd, &ch, j->deadline);
            pr_ds_read_last_error(rd, &j->e);
        }
        pr_ds_read_destroy(rd);
        pr_ds_destroy(ds);
    } else {
        pr_http_client *c = NULL;
        pr_rfuture_poller *p = NULL;
        pr_rfuture_poller_opts po;
        pr_future *f = NULL;
        void *out;
        memset(&po, 0, sizeof po);
        po.base_url = j->url;
        pr_http_client_create(&c, NULL, NULL);
        if ((j->rc = pr_rfuture_poller_create(&p, c, &po, &j->e)) == PR_OK &&
            (j->rc = pr_rfuture_start(&f, p, "req-1", NULL)) == PR_OK) {
            j->rc = pr_future_await(f, &out, j->deadline);
            pr_future_last_error(f, &j->e);
        }
        pr_future_destroy(f);
        pr_rfuture_poller_destroy(p);
        pr_http_client_destroy(c);
    }
    return 0;
}

static void measure(int call, const char *url, int64_t deadline) {
    job j;
    pr_task *t = NULL;
    int64_t t0 = pr_now();
    memset(&j, 0, sizeof j);
    j.call = call;
    j.url = url;
    j.deadline = deadline;
    pr_go(&t, run_call, &j, NULL);
    if (pr_join(t, NULL, pr_deadline_in(120000)) != PR_OK) {
        printf(" | still waiting at 120 s");
        pr_cancel(t);
        pr_join(t, NULL, PR_FOREVER);
        return;
    }
    if (j.rc >= 100) printf(" | status %d, %lld ms", j.rc, (long long)(pr_now() - t0));
    else printf(" | %s, %lld ms", pr_errname(j.rc), (long long)(pr_now() - t0));
    fflush(stdout);
}

int main(void) {
    static const char *calls[] = { "pr_sse_open", "pr_http_client_get", "pr_ds_read_next (long-poll)",
                                   "pr_future_await (remote future)" };
    ts_server *plain = NULL, *tls = NULL;
    ts_opts o;
    ts_step st;
    pr_listener *l = NULL;
    row rows[5];
    int i, c, d;
    pr_tcp_listen(&l, "127.0.0.1", 0, 0, NULL);
    memset(rows, 0, sizeof rows);
    rows[0].name = "wrong port (refused)";
    snprintf(rows[0].url, sizeof rows[0].url, "http://127.0.0.1:%u", pr_listener_port(l));
    pr_listener_destroy(l);
    rows[1].name = "name does not resolve";
    snprintf(rows[1].url, sizeof rows[1].url, "http://no-such-host.invalid");
    memset(&o, 0, sizeof o);
    o.max_lifetime_ms = 1800000;
    ts_start(&plain, &o);
    rows[2].name = "https to a plain-HTTP server";
    snprintf(rows[2].url, sizeof rows[2].url, "https://127.0.0.1:%u", ts_port(plain));
    o.tls_cert_pem = slurp("build/tls-fixtures/good.crt");
    o.tls_key_pem = slurp("build/tls-fixtures/good.key");
    if (!o.tls_cert_pem || !o.tls_key_pem) {
        fprintf(stderr, "no build/tls-fixtures: run the test suite once\n");
        return 1;
    }
    ts_start(&tls, &o);
    rows[3].name = "untrusted certificate";
    snprintf(rows[3].url, sizeof rows[3].url, "https://localhost:%u", ts_port(tls));
    memset(&st, 0, sizeof st);
    st.status = 503;
    st.body = "busy\n";
    ts_script_default(plain, "/x", &st);
    ts_script_default(plain, "/api/v1/retrieve_future", &st);
    rows[4].name = "persistent 503";
    snprintf(rows[4].url, sizeof rows[4].url, "http://127.0.0.1:%u", ts_port(plain));
    for (c = 0; c < 4; c++) {
        printf("\n%s\n| case | 5 s deadline | PR_FOREVER | requests reaching the server (5 s run) |\n|---|---|---|---|\n",
               calls[c]);
        for (i = 0; i < 5; i++) {
            long before = ts_requests(plain) + ts_requests(tls), accepted = ts_accepted(plain) + ts_accepted(tls), n5;
            printf("| %s", rows[i].name);
            for (d = 0; d < 2; d++) {
                measure(c, rows[i].url, d == 0 ? pr_deadline_in(5000) : PR_FOREVER);
                if (d == 0) n5 = (ts_requests(plain) + ts_requests(tls) - before) * 1000 +
                                 (ts_accepted(plain) + ts_accepted(tls) - accepted);
            }
            if (i >= 2) printf(" | %ld requests, %ld connections |\n", n5 / 1000, n5 % 1000);
            else printf(" | - |\n");
        }
    }
    ts_stop(plain);
    ts_stop(tls);
    return 0;
}
