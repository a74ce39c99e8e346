/* pt.h - the pristine test harness (CONTRIBUTING.md, Tests). libc only, C99.

   PT_TEST(name) { ... }            a test: a static void function
   const pt_suite pt_suite_sse = { "sse", { PT_ENTRY(a), PT_ENTRY(b), {0, 0} } };

   Checks record a failure and go on (PT_REQUIRE and PT_SKIP return from the
   current void function). Nothing here longjmps or aborts: a test body runs
   on a coroutine stack, and jumping out of it would corrupt the scheduler.
   The definitions live in main.c; all.c compiles everything as one unit. */
#ifndef PT_H
#define PT_H

#include <stddef.h>
#include <string.h>

#define PT_MAX_TESTS 256 /* per suite */

typedef void (*pt_fn)(void);
typedef struct pt_entry { const char *name; pt_fn fn; } pt_entry;
typedef struct pt_suite { const char *name; pt_entry tests[PT_MAX_TESTS]; } pt_suite;

#define PT_TEST(name) static void name(void)
#define PT_ENTRY(name) { #name, name }

#if defined(__GNUC__) || defined(__clang__)
#define PT__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PT__PRINTF(f, a)
#endif

/* Record a failure of the running test: "FAIL suite.test file:line: <message>". */
void pt_fail(const char *file, int line, const char *fmt, ...) PT__PRINTF(3, 4);
void pt_fail_str(const char *file, int line, const char *got, const char *want);
void pt_check_mem(const char *file, int line, const void *got, const void *want, size_t n);
void pt_skip(const char *reason);
const char *pt_errname(int code);
/* The test's random numbers: seeded from PT_SEED (or the time) and the test's name. */
unsigned long long pt_rand(void);

#define PT_CHECK(cond) \
    do { if (!(cond)) pt_fail(__FILE__, __LINE__, "got false, want %s", #cond); } while (0)
#define PT_REQUIRE(cond) \
    do { if (!(cond)) { pt_fail(__FILE__, __LINE__, "got false, want %s", #cond); return; } } while (0)
#define PT_EQ_INT(got, want) \
    do { long long pt_g_ = (long long)(got), pt_w_ = (long long)(want); \
         if (pt_g_ != pt_w_) pt_fail(__FILE__, __LINE__, "got %lld, want %lld", pt_g_, pt_w_); } while (0)
#define PT_EQ_STR(got, want) \
    do { const char *pt_g_ = (got), *pt_w_ = (want); \
         if (pt_g_ != pt_w_ && (!pt_g_ || !pt_w_ || strcmp(pt_g_, pt_w_) != 0)) \
             pt_fail_str(__FILE__, __LINE__, pt_g_, pt_w_); } while (0)
#define PT_EQ_MEM(got, want, n) pt_check_mem(__FILE__, __LINE__, (got), (want), (n))
#define PT_EQ_ERR(got, want) \
    do { int pt_g_ = (got), pt_w_ = (want); \
         if (pt_g_ != pt_w_) \
             pt_fail(__FILE__, __LINE__, "got %s, want %s", pt_errname(pt_g_), pt_errname(pt_w_)); } while (0)
#define PT_SKIP(reason) do { pt_skip(reason); return; } while (0)

#endif /* PT_H */
