/* compile_notls.c - the implementation built with PRISTINE_NO_TLS (no BearSSL). */
#define PRISTINE_NO_TLS
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"

int main(void) {
    return pr_errname(PR_OK)[0] != 'P';
}
