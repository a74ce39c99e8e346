/* fuzz_retry.c - libFuzzer target for the retry module's pure parts.
   clang -std=c11 -g -O1 -DPRISTINE_NO_TLS -DPRISTINE_TESTING -fsanitize=fuzzer,address,undefined \
       -fno-sanitize-recover=all tests/fuzz_retry.c -o build/fuzz/retry -lpthread

   Properties checked:
   - pr_retry_parse_http_date never crashes; an accepted date, written back
     as an IMF-fixdate, parses to the same instant;
   - pr_retry_hint_ms gives a hint only in (0, cap] ms, whichever header
     the input fills, for the default cap and for caps up to INT64_MAX,
     against wall clocks from INT64_MIN to INT64_MAX (UBSan: no overflow);
   - pr_retry_parse_http_date does not overflow for any wall clock;
   - pr_retry_x_should_retry answers -1, 0 or 1;
   - a backoff policy built from the input bytes that pr_backoff_check
     accepts gives delays in [0, cap] for any attempt and r. */
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#include <time.h>

static void fz_die(const char *what) {
    fprintf(stderr, "fuzz_retry: %s\n", what);
    abort();
}

/* ms since 1970 as an IMF-fixdate. */
static void fz_imf(int64_t ms, char *out, size_t cap) {
    static const char *const wk[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", wk[tm.tm_wday], tm.tm_mday, mon[tm.tm_mon],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const int64_t now = 1767225600000LL; /* 2026-01-01 */
    pr_slice s, a, b;
    int64_t v = 0, h = -1;
    size_t half = size / 2;
    s.ptr = (const char *)data;
    s.len = size;
    if (pr_retry_parse_http_date(s, now, &v) == PR_OK) {
        char imf[64];
        int64_t w = 0;
        if (v % 1000) fz_die("a date with milliseconds");
        if (v >= 0) { /* dates from 1970 on: gmtime and the parser agree */
            fz_imf(v, imf, sizeof imf);
            if (pr_retry_parse_http_date(pr_slice_cstr(imf), now, &w) != PR_OK || w != v)
                fz_die("an accepted date does not round-trip as an IMF-fixdate");
        }
    }
    a.ptr = (const char *)data;
    a.len = half;
    b.ptr = (const char *)data + half;
    b.len = size - half;
    if (pr_retry_hint_ms(&a, &b, now, 0, &h) && (h <= 0 || h > 60000)) fz_die("a hint outside (0, 60000] ms");
    if (pr_retry_hint_ms(NULL, &s, now, 0, &h) && (h <= 0 || h > 60000)) fz_die("a hint outside (0, 60000] ms");
    if (size >= 16) { /* the first 16 bytes: a wall clock and a cap, the rest a Retry-After */
        int64_t wall, cap;
        pr_slice t;
        memcpy(&wall, data, sizeof wall);
        memcpy(&cap, data + 8, sizeof cap);
        t.ptr = (const char *)data + 16;
        t.len = size - 16;
        if (pr_retry_hint_ms(NULL, &t, wall, cap, &h) && (h <= 0 || h > (cap > 0 ? cap : 60000)))
            fz_die("a hint outside (0, cap] ms");
        (void)pr_retry_parse_http_date(t, wall, &v);
    }
    {
        int x = pr_retry_x_should_retry(&s);
        if (x < -1 || x > 1) fz_die("x-should-retry out of range");
    }
    if (size >= 48) {
        pr_backoff bo;
        double r, d;
        int attempt;
        memcpy(&bo, data, sizeof bo < 48 ? sizeof bo : 48);
        memcpy(&attempt, data + size - sizeof attempt, sizeof attempt);
        memcpy(&r, data + size - sizeof attempt - sizeof r, sizeof r);
        if (pr_backoff_check(&bo) == PR_OK) {
            if (attempt < 0) attempt = -(attempt + 1);
            d = pr_backoff_delay(&bo, attempt, r * 1000, r);
            if (!(d >= 0)) fz_die("a negative or NaN delay");
            if (bo.max_ms != PR_BACKOFF_UNCAPPED && d > (double)bo.max_ms) fz_die("a delay above the cap");
            if (d > 9.3e18) fz_die("a delay past the saturation point");
        }
    }
    return 0;
}
