// @pristine:module time - monotonic and wall clocks in ms, deadlines, PR_FOREVER, test clock
// @pristine:public
/*
 * time: every call that may suspend takes an absolute deadline in
 * milliseconds on the monotonic clock returned by pr_now(). PR_FOREVER
 * (INT64_MAX) means no limit; any deadline at or before pr_now() (0 and
 * negative values included) means "do not block". Note: -1 is NOT
 * "forever" here, unlike libdill. Options hold durations; calls hold
 * deadlines.
 *
 * For the modules after it: pr__time_add (a time plus a duration,
 * saturating; every such sum goes through it), pr__time_wall_ms (the wall clock,
 * ms since 1970 UTC, for HTTP-dates and timestamps), pr__time_now_ns (the
 * monotonic clock in ns, for timing) and, in test builds, the virtual clock
 * (pr__time_test_clock_virtual) that the scheduler advances to its next timer.
 *
 * Offers to the modules after it: pr__time_add, pr__time_now_ns,
 *     pr__time_test_clock_ms, pr__time_test_clock_on, pr__time_wall_ms.
 */
#define PR_FOREVER INT64_MAX

/* The monotonic clock in milliseconds.
   Params: none.
   Returns: milliseconds since an unspecified start; never decreases.
   Blocks: no.
   Thread: any.
   See: pr_deadline_in. */
PRISTINE_API int64_t pr_now(void);

/* A deadline ms milliseconds from now, saturating at PR_FOREVER.
   Params: ms - duration; negative values give a deadline in the past.
   Returns: pr_now() + ms, or PR_FOREVER on overflow.
   Blocks: no.
   Thread: any.
   See: pr_deadline_min. */
PRISTINE_API int64_t pr_deadline_in(int64_t ms);

/* The earlier of two deadlines.
   Params: a, b - deadlines.
   Returns: the smaller one.
   Blocks: no.
   Thread: any.
   See: pr_deadline_in. */
PRISTINE_API int64_t pr_deadline_min(int64_t a, int64_t b);

// @pristine:impl
#ifdef PRISTINE_TESTING
/* Virtual clock for tests: when on, pr_now() returns pr__time_test_clock_ms and
   the scheduler advances it to the next timer instead of sleeping. */
static int pr__time_test_clock_on;
static int64_t pr__time_test_clock_ms;

static PR__MAYBE_UNUSED void pr__time_test_clock_virtual(int on, int64_t start_ms) {
    pr__time_test_clock_on = on;
    pr__time_test_clock_ms = start_ms;
}

static PR__MAYBE_UNUSED void pr__time_test_clock_advance(int64_t ms) { pr__time_test_clock_ms += ms; }
#endif

/* The real monotonic clock in nanoseconds (benchmarks, timing logs). */
static PR__MAYBE_UNUSED int64_t pr__time_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The wall clock: milliseconds since 1970 UTC (HTTP-dates, timestamps).
   The virtual test clock does not touch it; retry's hooks replace it. */
static PR__MAYBE_UNUSED int64_t pr__time_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t pr_now(void) {
    struct timespec ts;
#ifdef PRISTINE_TESTING
    if (pr__time_test_clock_on) return pr__time_test_clock_ms;
#endif
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* t + ms without overflow: saturates at PR_FOREVER and INT64_MIN. Every
   sum of a time and a duration in the library goes through it (a server's
   `retry:` or a wild option must not wrap a deadline into the past). */
static int64_t pr__time_add(int64_t t, int64_t ms) {
    if (ms > 0 && t > PR_FOREVER - ms) return PR_FOREVER;
    if (ms < 0 && t < INT64_MIN - ms) return INT64_MIN;
    return t + ms;
}

int64_t pr_deadline_in(int64_t ms) { return pr__time_add(pr_now(), ms); }

int64_t pr_deadline_min(int64_t a, int64_t b) { return a < b ? a : b; }
