/* compile_static.c + compile_static2.c - PRISTINE_STATIC (stb rule 4): two
   translation units, each with its own static copy of the implementation,
   linked into one program that runs a task in each copy. */
#define PRISTINE_STATIC
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"

int compile_static2(void);

static int seven(void *user_data) {
    (void)user_data;
    return 7;
}

int main(void) {
    pr_task *t;
    int result = 0;
    if (pr_go(&t, seven, NULL, NULL) != PR_OK || pr_join(t, &result, PR_FOREVER) != PR_OK) return 1;
    if (result != 7 || pr_sched_destroy() != PR_OK) return 2;
    return compile_static2();
}
