/* main.c - the test runner (CONTRIBUTING.md, Tests); all.c includes it last.

   pristine_tests [-l] [-q] [-t SECONDS] [substring]

   Each test body runs as a task under a deadline (-t, default 30 s); then the
   thread's scheduler is destroyed, and any allocation or coroutine stack left
   alive is a failure. A test that cannot run here (PT_SKIP: no IPv6
   loopback, test data absent) prints "skip" and its reason and counts as
   neither. The last line is "N passed, N failed", with ", N skipped" when
   any was; the exit status is 0 iff nothing failed. PT_SEED=n repeats a run's random numbers. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The suites, in manifest order. */
extern const pt_suite pt_suite_base, pt_suite_time, pt_suite_buf, pt_suite_json, pt_suite_url, pt_suite_sse,
    pt_suite_coro, pt_suite_sched, pt_suite_sync, pt_suite_future, pt_suite_retry, pt_suite_net, pt_suite_tls, pt_suite_http,
    pt_suite_proxy, pt_suite_client, pt_suite_client_edge, pt_suite_server, pt_suite_http_retry, pt_suite_eventsource, pt_suite_session, pt_suite_rfuture, pt_suite_telemetry, pt_suite_ds, pt_suite_ds_fail, pt_suite_sweep, pt_suite_signal, pt_suite_hostloop, pt_suite_nginx, pt_suite_cli;
static const pt_suite *const pt__suites[] = {
    &pt_suite_base, &pt_suite_time, &pt_suite_buf, &pt_suite_json, &pt_suite_url, &pt_suite_sse,
    &pt_suite_coro, &pt_suite_sched, &pt_suite_sync, &pt_suite_future, &pt_suite_retry, &pt_suite_net, &pt_suite_tls, &pt_suite_http,
    &pt_suite_proxy, &pt_suite_client, &pt_suite_client_edge, &pt_suite_server, &pt_suite_http_retry, &pt_suite_eventsource, &pt_suite_session, &pt_suite_rfuture, &pt_suite_telemetry, &pt_suite_ds, &pt_suite_ds_fail, &pt_suite_sweep, &pt_suite_signal, &pt_suite_hostloop, &pt_suite_nginx, &pt_suite_cli, NULL
};

#define PT__SHOWN 5 /* failures printed per test */

static struct {
    const char *suite, *test;
    int failures, skipped, quiet;
    char skip_reason[200];
    unsigned long long seed, rng;
    long passed, failed, nskipped;
    char hang_msg[400];
} pt__;

void pt_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    if (++pt__.failures > PT__SHOWN) return;
    printf("FAIL %s.%s %s:%d: ", pt__.suite, pt__.test, file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* Append s to out as a C string literal (or NULL), at most max source bytes. */
static void pt__quote(char *out, size_t cap, const char *s, size_t max) {
    size_t n = 0, i;
    if (!s) {
        snprintf(out, cap, "NULL");
        return;
    }
    out[n++] = '"';
    for (i = 0; s[i] && i < max && n + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') n += (size_t)snprintf(out + n, cap - n, "\\%c", c);
        else if (c == '\n') n += (size_t)snprintf(out + n, cap - n, "\\n");
        else if (c == '\r') n += (size_t)snprintf(out + n, cap - n, "\\r");
        else if (c < 32 || c > 126) n += (size_t)snprintf(out + n, cap - n, "\\x%02x", c);
        else out[n++] = (char)c;
    }
    snprintf(out + n, cap - n, s[i] ? "\"..." : "\"");
}

void pt_fail_str(const char *file, int line, const char *got, const char *want) {
    char g[600], w[600];
    pt__quote(g, sizeof g, got, 120);
    pt__quote(w, sizeof w, want, 120);
    pt_fail(file, line, "got %s, want %s", g, w);
}

/* Up to 16 bytes from off as hex. */
static void pt__hex(char *out, const unsigned char *p, size_t off, size_t n) {
    size_t i;
    out[0] = 0;
    for (i = off; i < n && i < off + 16; i++) sprintf(out + 3 * (i - off), "%02x ", p[i]);
    if (i > off) out[3 * (i - off) - 1] = 0;
}

void pt_check_mem(const char *file, int line, const void *got, const void *want, size_t n) {
    const unsigned char *g = (const unsigned char *)got, *w = (const unsigned char *)want;
    char gh[64], wh[64];
    size_t i, row;
    if (n == 0 || got == want) return;
    if (!g || !w) {
        pt_fail(file, line, "got %s, want %s (%lu bytes)", g ? "bytes" : "NULL", w ? "bytes" : "NULL",
                (unsigned long)n);
        return;
    }
    for (i = 0; i < n && g[i] == w[i]; i++) {}
    if (i == n) return;
    pt_fail(file, line, "got 0x%02x at offset %lu of %lu, want 0x%02x", g[i], (unsigned long)i,
            (unsigned long)n, w[i]);
    if (pt__.failures > PT__SHOWN) return;
    for (row = i & ~(size_t)15; row < n && row < (i & ~(size_t)15) + 64; row += 16) {
        pt__hex(gh, g, row, n);
        pt__hex(wh, w, row, n);
        printf("    %04lx got  %s\n    %04lx want %s\n", (unsigned long)row, gh, (unsigned long)row, wh);
    }
}

void pt_skip(const char *reason) {
    pt__.skipped = 1;
    snprintf(pt__.skip_reason, sizeof pt__.skip_reason, "%s", reason);
}

const char *pt_errname(int code) {
    static char buf[2][24];
    static int k;
    const char *s = pr_errname(code);
    if (s && strcmp(s, "PR_E?") != 0) return s;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%d", code);
    return buf[k];
}

/* splitmix64 */
unsigned long long pt_rand(void) {
    unsigned long long z = (pt__.rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A body that never yields cannot be stopped by a deadline: SIGALRM ends the run. */
static void pt__hung(int sig) {
    ssize_t r = write(1, pt__.hang_msg, strlen(pt__.hang_msg));
    (void)sig;
    (void)r;
    _exit(1);
}

static int pt__trampoline(void *user_data) {
    (*(pt_fn *)user_data)();
    return 0;
}

static void pt__run(const pt_suite *s, const pt_entry *e, int timeout_s) {
    pt_fn fn = e->fn;
    pr_task *t;
    size_t bytes0, bytes, stacks;
    long live0, live;
    const char *c;
    int rc;
    pt__.suite = s->name;
    pt__.test = e->name;
    pt__.failures = pt__.skipped = 0;
    pt__.rng = pt__.seed;
    for (c = e->name; *c; c++) pt__.rng = (pt__.rng ^ (unsigned char)*c) * 0x100000001b3ull;
    pt_alloc_reset();
    live0 = pt_alloc_live(&bytes0);
    snprintf(pt__.hang_msg, sizeof pt__.hang_msg,
             "FAIL %s.%s %s:%d: got no yield for %d s, want the test to finish or block\n%ld passed, %ld failed\n",
             s->name, e->name, __FILE__, __LINE__, timeout_s + 10, pt__.passed, pt__.failed + 1);
    alarm((unsigned)timeout_s + 10);
    rc = pr_go(&t, pt__trampoline, &fn, NULL);
    if (rc == PR_OK) {
        rc = pr_join(t, NULL, pr_deadline_in((int64_t)timeout_s * 1000));
        if (rc == PR_ETIMEDOUT) {
            pt_fail(__FILE__, __LINE__, "timed out after %d s", timeout_s);
            pr_cancel(t);
            rc = pr_join(t, NULL, PR_FOREVER);
        }
    }
    if (rc != PR_OK) pt_fail(__FILE__, __LINE__, "got %s running the test task, want PR_OK", pt_errname(rc));
    pt_alloc_reset();
    rc = pr_sched_destroy();
    if (rc != PR_OK) pt_fail(__FILE__, __LINE__, "got %s from pr_sched_destroy, want PR_OK", pt_errname(rc));
    alarm(0);
    live = pt_alloc_live(&bytes);
    if (live != live0)
        pt_fail(__FILE__, __LINE__, "got %ld allocations (%ld bytes) leaked, want 0", live - live0,
                (long)(bytes - bytes0));
    stacks = pr__coro_test_live_stacks();
    if (stacks) pt_fail(__FILE__, __LINE__, "got %lu coroutine stacks leaked, want 0", (unsigned long)stacks);
    if (pt__.failures > PT__SHOWN)
        printf("FAIL %s.%s: %d more failures not shown\n", pt__.suite, pt__.test, pt__.failures - PT__SHOWN);
    if (pt__.failures) {
        pt__.failed++;
    } else if (pt__.skipped) {
        pt__.nskipped++;
        printf("skip %s.%s (%s)\n", pt__.suite, pt__.test, pt__.skip_reason);
    } else {
        pt__.passed++;
        if (!pt__.quiet) printf("ok   %s.%s\n", pt__.suite, pt__.test);
    }
}

static int pt__usage(void) {
    fprintf(stderr, "usage: pristine_tests [-l] [-q] [-t SECONDS] [substring of suite.test | ^prefix of suite.test]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *filter = NULL, *seed = getenv("PT_SEED");
    int list = 0, timeout_s = 30, i, rc;
    const pt_suite *const *s;
    const pt_entry *e;
    char name[256];
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-l") == 0) list = 1;
        else if (strcmp(argv[i], "-q") == 0) pt__.quiet = 1;
        else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0) timeout_s = atoi(argv[++i]);
        else if (argv[i][0] == '-' || filter) return pt__usage();
        else filter = argv[i];
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    pt__.seed = seed ? strtoull(seed, NULL, 10) : (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);
    signal(SIGALRM, pt__hung);
    if (!list && (rc = pt_alloc_install()) != PR_OK) {
        printf("FAIL runner: pr_set_allocator gave %s\n0 passed, 1 failed\n", pt_errname(rc));
        return 1;
    }
    for (s = pt__suites; *s; s++) {
        for (e = (*s)->tests; e->name; e++) {
            snprintf(name, sizeof name, "%s.%s", (*s)->name, e->name);
            if (filter && (filter[0] == '^' ? strncmp(name, filter + 1, strlen(filter + 1)) != 0 : !strstr(name, filter)))
                continue; /* "^future." is the future suite alone, not rfuture too */
            if (list) printf("%s\n", name);
            else pt__run(*s, e, timeout_s);
        }
    }
    if (list) return 0;
    if (pt__.failed) printf("PT_SEED=%llu repeats this run's pt_rand() numbers\n", pt__.seed);
    if (pt__.nskipped) printf("%ld passed, %ld failed, %ld skipped\n", pt__.passed, pt__.failed, pt__.nskipped);
    else printf("%ld passed, %ld failed\n", pt__.passed, pt__.failed);
    return pt__.failed != 0;
}
