/* compile_clash.c - pristine.h with the implementation after <sys/prctl.h> and,
   when run.sh finds it (PT_HAVE_NSPR), NSPR's <nspr.h>: both define hundreds of
   PR_* names, and none may collide with ours (the reserved list is in amalgamate.py;
   CONTRIBUTING.md, Naming). */
#define _GNU_SOURCE 1
#include <sys/prctl.h>
#ifdef PT_HAVE_NSPR
#include <nspr.h>
#endif
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"

int main(void) {
    return pr_errname(PR_OK)[0] != 'P';
}
