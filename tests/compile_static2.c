/* compile_static2.c - the second translation unit of compile_static.c. */
#define PRISTINE_STATIC
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"

int compile_static2(void);

static int eight(void *user_data) {
    (void)user_data;
    return 8;
}

int compile_static2(void) {
    pr_task *t;
    int result = 0;
    if (pr_go(&t, eight, NULL, NULL) != PR_OK || pr_join(t, &result, PR_FOREVER) != PR_OK) return 3;
    if (result != 8 || pr_sched_destroy() != PR_OK) return 4;
    return 0;
}
