/* tests/consumer: a tiny program using an installed or vendored pristine.h,
   built by tests/consumer/run.sh with pkg-config and with CMake
   (add_subdirectory, FetchContent, find_package). The implementation is in
   impl.c; this file includes the header plainly. Prints the version, whether
   TLS is compiled in, a parsed URL and a task's result; exits 0 when all is
   as expected. */
#include <pristine.h>
#include <stdio.h>
#include <string.h>

static int square(void *user_data) { /* a task */
    int v = *(int *)user_data;
    pr_sleep(pr_deadline_in(10));
    return v * v;
}

int main(void) {
    pr_url u;
    pr_task *t;
    int v = 7, r = 0, ok;
    if (pr_url_parse(&u, "https://example.com:8443/v1/stream", strlen("https://example.com:8443/v1/stream"),
                     NULL) != PR_OK)
        return 1;
    ok = u.secure && u.port == 8443 && u.path.len == 10;
    pr_url_deinit(&u);
    if (pr_go(&t, square, &v, NULL) != PR_OK || pr_join(t, &r, pr_deadline_in(5000)) != PR_OK) return 1;
#ifdef PRISTINE_NO_TLS
    printf("pristine %s, tls no, url %s, task %d\n", PRISTINE_VERSION, ok ? "ok" : "bad", r);
#else
    printf("pristine %s, tls yes, url %s, task %d\n", PRISTINE_VERSION, ok ? "ok" : "bad", r);
#endif
    return ok && r == 49 && pr_sched_destroy() == PR_OK ? 0 : 1;
}
