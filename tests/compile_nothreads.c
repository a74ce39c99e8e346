/* compile_nothreads.c - PRISTINE_NO_THREADS: getaddrinfo runs inline. "127.1"
   is not a numeric host to pristine's fast path (inet_pton), so it goes to
   getaddrinfo, which reads it as 127.0.0.1 without any DNS traffic. */
#define PRISTINE_NO_THREADS
#define PRISTINE_NO_TLS
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"

int main(void) {
    pr_addrlist *l = NULL;
    int ok = pr_dns_resolve(&l, "127.1", 80, 0, NULL, pr_deadline_in(5000)) == PR_OK && l->count >= 1 &&
             l->addrs[0].family == AF_INET && memcmp(l->addrs[0].ip, "\177\0\0\1", 4) == 0 && l->addrs[0].port == 80;
    pr_addrlist_destroy(l);
    pr_sched_destroy();
    return ok ? 0 : 1;
}
