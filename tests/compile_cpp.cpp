// compile_cpp.cpp - pristine.h as C++11, one of run.sh's compile-only checks.
// run.sh builds it twice: with the implementation, linked alone and run; and
// with PT_LINK_ONLY against the C-compiled implementation in compile_twice.o,
// which proves the declarations have C linkage in C++.
#ifndef PT_LINK_ONLY
#define PRISTINE_IMPLEMENTATION
#endif
#include "../pristine.h"
#include <cstring>

static int send_three(void *user_data) {
    pr_chan *ch = static_cast<pr_chan *>(user_data);
    int v = 3;
    return pr_chan_send(ch, &v, PR_FOREVER);
}

int main() {
    pr_chan *ch = NULL;
    pr_task *t = NULL;
    int v = 0, result = -1;
    if (std::strcmp(pr_errname(PR_ETIMEDOUT), "PR_ETIMEDOUT") != 0) return 1;
    if (pr_chan_create(&ch, sizeof v, 0) != PR_OK) return 2;
    if (pr_go(&t, send_three, ch, NULL) != PR_OK) return 3;
    if (pr_chan_recv(ch, &v, pr_deadline_in(5000)) != PR_OK || v != 3) return 4;
    if (pr_join(t, &result, PR_FOREVER) != PR_OK || result != PR_OK) return 5;
    pr_chan_destroy(ch);
    return pr_sched_destroy();
}
