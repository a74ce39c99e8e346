// @pristine:module base - version, API decoration, includes, error codes, allocator and log hooks, random numbers
// @pristine:public
/*
 * base: what every other module stands on. It carries the version, the
 * PRISTINE_API decoration, every #include of the library, the error codes
 * (one X-macro list gives the enum, pr_strerror and pr_errname), the
 * process-wide allocator hook, the logger hook, pr_random, a per-thread
 * generator of random numbers (not for cryptography), and the severities
 * (PR_SEVERITY_*) of the events modules report to their observers.
 *
 * Lifetime: the allocator and the logger are process-wide. Install them
 * before the first scheduler starts and leave them alone while any runs.
 *
 * For the modules after it: the error detail (pr__err_set, pr__err_wrap),
 * the allocator (pr__alloc, pr__calloc, pr__realloc, pr__free), string
 * copies (pr__strdup, pr__strndup, pr__strfree), intrusive FIFO lists
 * (pr__list, pr__link), PR__LOG, the small macros
 * (PR__MIN, PR__DEF, PR__CONTAINER_OF, ...) and pr__random_u64, 64 random
 * bits (retry's jitter, telemetry's UUIDs, the client's idempotency
 * keys).
 */
#define PRISTINE_VERSION_MAJOR 0
#define PRISTINE_VERSION_MINOR 1
#define PRISTINE_VERSION_PATCH 0
#define PRISTINE_VERSION "0.1.0"

/* The implementation needs POSIX and GNU declarations (mmap flags, pipe2,
   eventfd). They are only visible when requested before the first system
   header, so the translation unit that defines PRISTINE_IMPLEMENTATION
   should include pristine.h first (or define _GNU_SOURCE itself). */
#if defined(PRISTINE_IMPLEMENTATION) && !defined(_GNU_SOURCE) && !defined(PRISTINE_IMPLEMENTATION_INCLUDED)
#define _GNU_SOURCE 1
#endif
/* macOS: the ucontext fallback needs _XOPEN_SOURCE, which hides MAP_ANON
   unless _DARWIN_C_SOURCE is set too. */
#if defined(PRISTINE_IMPLEMENTATION) && defined(__APPLE__) && !defined(PRISTINE_IMPLEMENTATION_INCLUDED)
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 600
#endif
#ifndef _DARWIN_C_SOURCE
#define _DARWIN_C_SOURCE 1
#endif
#endif

#include <stddef.h>
#include <stdint.h>

#ifndef PRISTINE_API
#if defined(PRISTINE_STATIC) && (defined(__GNUC__) || defined(__clang__))
#define PRISTINE_API static __attribute__((unused))
#elif defined(PRISTINE_STATIC)
#define PRISTINE_API static
#else
#define PRISTINE_API extern
#endif
#endif

/* Error codes: append-only, never renumbered. X(name, value, text). */
#define PR__ERRORS(X) \
    X(PR_OK,        0,   "success") \
    X(PR_EINVAL,   -1,   "invalid argument") \
    X(PR_ENOMEM,   -2,   "out of memory") \
    X(PR_ETIMEDOUT,-3,   "deadline passed") \
    X(PR_ECANCELED,-4,   "canceled") \
    X(PR_ECLOSED,  -5,   "closed by the peer or at end of stream") \
    X(PR_EIO,      -6,   "system I/O error") \
    X(PR_EDNS,     -7,   "name resolution failed") \
    X(PR_ETLS,     -8,   "TLS failure") \
    X(PR_EPROTO,   -9,   "protocol violation by the peer") \
    X(PR_ELIMIT,   -10,  "a configured size limit was exceeded") \
    X(PR_ESTATE,   -11,  "call not valid in the object's current state") \
    X(PR_ENOTSUP,  -12,  "not supported by this build or platform") \
    X(PR_ECIRCUIT, -13,  "circuit breaker open: the call was not made") \
    X(PR_EFAILED,  -14,  "the remote operation failed") \
    X(PR_EEXPIRED, -15,  "the remote result expired: submit the operation again") \
    X(PR_EHTTP,    -16,  "the server answered with an error status")

#define PR__ERR_ENUM(name, value, text) name = value,
/* The library's error codes. Every fallible call returns PR_OK (0) or one
   of these negative values. */
enum pr_error { PR__ERRORS(PR__ERR_ENUM) };

/* Why a call failed: an object's last failure (its `*_last_error` call)
   or a call's own (its `pr_err_info *err` parameter); never thread-local.
   The detail fields keep the cause's values when another code wraps it
   (a stream's PR_ETIMEDOUT whose last try was refused keeps ECONNREFUSED). */
typedef struct pr_err_info {
    int code;        /* PR_E* code */
    int sys_errno;   /* errno of the system call behind the failure (PR_EIO, a refused
                        or reset connection...), else 0 */
    int tls_error;   /* BearSSL error or PR_TLS_* code (PR_TLS_TRUNCATED,
                        PR_TLS_NO_CLIENT_CERT, PR_TLS_CLIENT_CERT_REFUSED) of a
                        PR_ETLS failure (or its cause), else 0 */
    int dns_error;   /* resolver error of a PR_EDNS failure (or its cause), else 0 */
    int http_status; /* last HTTP status seen, 0 if none */
    char msg[200];   /* human-readable, NUL-terminated; a wrapped cause is kept whole */
    int category;    /* whose fault a remote failure is: PR_CATEGORY_*, 0 = unknown */
    int meaning;     /* what a protocol says the failure is: PR_DS_* for a Durable
                        Streams call or object, else 0 */
} pr_err_info;

/* pr_err_info.category: who caused a remote operation's failure. */
enum pr_category { PR_CATEGORY_UNKNOWN = 0, PR_CATEGORY_SERVER = 1, PR_CATEGORY_USER = 2 };

/* Human-readable text of an error code.
   Params: code - PR_OK or a PR_E* value.
   Returns: a static string; "unknown error" for values not in the list.
   Blocks: no.
   Thread: any.
   See: pr_errname. */
PRISTINE_API const char *pr_strerror(int code);

/* The symbolic name of an error code, e.g. "PR_ETIMEDOUT".
   Params: code - PR_OK or a PR_E* value.
   Returns: a static string; "PR_E?" for values not in the list.
   Blocks: no.
   Thread: any.
   See: pr_strerror. */
PRISTINE_API const char *pr_errname(int code);

/* A process-wide allocator. alloc and free are required; realloc may be
   NULL (then it is emulated with alloc + copy + free). The sizes passed to
   realloc and free are the sizes the library asked for, so pool and arena
   allocators need no headers. Coroutine stacks are not allocated here: they
   are mmap'd (see the coro module). */
typedef struct pr_allocator {
    void *(*alloc)(size_t n, void *user_data);
    void *(*realloc)(void *p, size_t old_n, size_t new_n, void *user_data);
    void (*free)(void *p, size_t n, void *user_data);
    void *user_data;
} pr_allocator;

/* Install the process-wide allocator.
   Params: a - the hooks, copied; NULL restores the default (libc, or
           PRISTINE_MALLOC/PRISTINE_REALLOC/PRISTINE_FREE).
   Returns: PR_OK; PR_EINVAL if alloc or free is missing; PR_ESTATE if a
            scheduler is running on any thread.
   Blocks: no.
   Thread: any, before the first scheduler starts.
   See: pr_set_logger. */
PRISTINE_API int pr_set_allocator(const pr_allocator *a);

/* Log levels (miniaudio's numbering). */
enum pr_level { PR_LEVEL_ERROR = 1, PR_LEVEL_WARN = 2, PR_LEVEL_INFO = 3, PR_LEVEL_DEBUG = 4 };

/* The severity of an event a module reports to its observer (rfuture's
   and ds's events, telemetry's reports and the reporter's log calls). */
enum pr_severity {
    PR_SEVERITY_DEBUG = 1, PR_SEVERITY_INFO = 2, PR_SEVERITY_WARNING = 3, PR_SEVERITY_ERROR = 4,
    PR_SEVERITY_CRITICAL = 5
};

/* A process-wide logger. fn is called with a formatted, NUL-terminated
   message; it must be thread-safe and must not call back into pristine.
   Messages above max_level are dropped before they are formatted. */
typedef struct pr_logger {
    void (*fn)(int level, const char *module, const char *msg, void *user_data);
    void *user_data;
    int max_level; /* 0 = PR_LEVEL_WARN */
} pr_logger;

/* Install the process-wide logger. The default is silent.
   Params: l - the hook, copied; NULL (or l->fn NULL) silences logging.
   Returns: PR_OK; PR_ESTATE if a scheduler is running on any thread.
   Blocks: no.
   Thread: any, before the first scheduler starts.
   See: pr_log_stderr. */
PRISTINE_API int pr_set_logger(const pr_logger *l);

/* A ready-made logger function printing "pristine <level> <module>: msg"
   to stderr, for `pr_set_logger(&(pr_logger){ .fn = pr_log_stderr })`.
   Params: level, module, msg - as given by the library; user_data - unused.
   Returns: nothing.
   Blocks: no.
   Thread: any.
   See: pr_set_logger. */
PRISTINE_API void pr_log_stderr(int level, const char *module, const char *msg, void *user_data);

/* A uniform random number in [0, 1) from a per-thread generator seeded from
   the operating system (not for cryptography).
   Params: none.
   Returns: the number.
   Blocks: no.
   Thread: any (each thread has its own generator).
   See: pr_retry_hooks. */
PRISTINE_API double pr_random(void);

// @pristine:impl
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/utsname.h> /* telemetry: the platform's name */
#include <poll.h>
#include <netdb.h>       /* net: getaddrinfo */
#include <netinet/in.h>  /* net: sockaddr_in, sockaddr_in6 */
#include <netinet/tcp.h> /* net: TCP_NODELAY */
#include <arpa/inet.h>   /* net: inet_pton, inet_ntop */
#if defined(__linux__)
#include <sys/epoll.h>
#include <sys/eventfd.h>
#endif
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__) || \
    defined(__DragonFly__) || defined(PRISTINE_POLL_KQUEUE)
#include <sys/event.h> /* elsewhere (Linux + libkqueue) only when PRISTINE_POLL_KQUEUE asks for it */
#define PR__HAVE_KQUEUE 1
#endif
/* coro's context-switch method: hand-written assembly on the ELF targets
   below, ucontext elsewhere or when PRISTINE_CORO_UCONTEXT asks for it. */
#if defined(__ELF__) && ((defined(__x86_64__) && !defined(__ILP32__)) || \
    (defined(__aarch64__) && !defined(__ILP32__)) || \
    (defined(__riscv) && __riscv_xlen == 64 && defined(__riscv_float_abi_double)) || \
    (defined(__arm__) && defined(__ARM_PCS_VFP) && defined(__ARM_ARCH_ISA_ARM)))
#define PR__BASE_CORO_HAVE_ASM 1
#endif
#if defined(PRISTINE_CORO_ASM) && defined(PRISTINE_CORO_UCONTEXT)
#error "pristine.h: define at most one of PRISTINE_CORO_ASM and PRISTINE_CORO_UCONTEXT"
#elif defined(PRISTINE_CORO_ASM) && !defined(PR__BASE_CORO_HAVE_ASM)
#error "pristine.h: PRISTINE_CORO_ASM: no hand-written context switch for this target (x86-64, aarch64, riscv64 lp64d, arm hard-float; ELF only); use PRISTINE_CORO_UCONTEXT"
#elif defined(PRISTINE_CORO_UCONTEXT) || !defined(PR__BASE_CORO_HAVE_ASM)
#define PR__BASE_CORO_UCONTEXT 1
#include <ucontext.h>
#endif
#ifndef PRISTINE_NO_TLS
#include <bearssl.h>
#endif
#if defined(__linux__)
#include <sys/random.h> /* getrandom(): the TLS engine seed, pr_random's seed */
#endif

#if !defined(MAP_ANONYMOUS) && defined(MAP_ANON)
#define MAP_ANONYMOUS MAP_ANON
#endif
#if !defined(MAP_ANONYMOUS)
#error "pristine.h: MAP_ANONYMOUS is not declared. Include pristine.h first in the implementation file, or define _GNU_SOURCE before any include."
#endif

/* Sanitizer and Valgrind detection, used by coro for fiber annotations. */
#if defined(__SANITIZE_ADDRESS__)
#define PR__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PR__ASAN 1
#endif
#endif
#ifdef PR__ASAN
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/asan_interface.h>
#endif
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define PR__VALGRIND 1
#endif
#endif

/* ---- config checks ---- */
#if defined(PRISTINE_MALLOC) || defined(PRISTINE_REALLOC) || defined(PRISTINE_FREE)
#if !defined(PRISTINE_MALLOC) || !defined(PRISTINE_REALLOC) || !defined(PRISTINE_FREE)
#error "pristine.h: define all of PRISTINE_MALLOC, PRISTINE_REALLOC and PRISTINE_FREE, or none"
#endif
#else
#define PRISTINE_MALLOC(n) malloc(n)
#define PRISTINE_REALLOC(p, n) realloc(p, n)
#define PRISTINE_FREE(p) free(p)
#endif

#ifndef PRISTINE_DEBUG
#ifndef NDEBUG
#define PRISTINE_DEBUG 1
#else
#define PRISTINE_DEBUG 0
#endif
#endif
#ifndef PRISTINE_ASSERT
#define PRISTINE_ASSERT(x) assert(x)
#endif
#if PRISTINE_DEBUG
#define PR__ASSERT(x) PRISTINE_ASSERT(x)
#else
#define PR__ASSERT(x) ((void)0)
#endif
#ifndef PRISTINE_LOG_LEVEL
#define PRISTINE_LOG_LEVEL 4
#endif

#define PR__MIN(a, b) ((a) < (b) ? (a) : (b))
#define PR__MAX(a, b) ((a) > (b) ? (a) : (b))
#define PR__DEF(v, d) ((v) == 0 ? (d) : (v))
#define PR__UNUSED(x) ((void)(x))
#define PR__CONTAINER_OF(p, type, field) ((type *)(void *)((char *)(p) - offsetof(type, field)))
#if defined(__GNUC__) || defined(__clang__)
#define PR__LIKELY(x) __builtin_expect(!!(x), 1)
#define PR__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PR__NOINLINE __attribute__((noinline))
#define PR__MAYBE_UNUSED __attribute__((unused))
#define PR__THREAD __thread
#else
#define PR__LIKELY(x) (x)
#define PR__UNLIKELY(x) (x)
#define PR__NOINLINE
#define PR__MAYBE_UNUSED
#define PR__THREAD _Thread_local
#endif

/* ---- errors ---- */
#define PR__ERR_TEXT(name, value, text) case value: return text;
#define PR__ERR_NAME(name, value, text) case value: return #name;

const char *pr_strerror(int code) {
    switch (code) { PR__ERRORS(PR__ERR_TEXT) default: return "unknown error"; }
}

const char *pr_errname(int code) {
    switch (code) { PR__ERRORS(PR__ERR_NAME) default: return "PR_E?"; }
}

/* Fill an error info block; msg is printf-style and truncated to fit. */
static PR__MAYBE_UNUSED int pr__err_set(pr_err_info *info, int code, int sys_errno, const char *fmt, ...) {
    if (info) {
        va_list ap;
        memset(info, 0, sizeof *info);
        info->code = code;
        info->sys_errno = sys_errno;
        va_start(ap, fmt);
        vsnprintf(info->msg, sizeof info->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Fill info with code and "<prefix>: <cause's message>", keeping the cause's
   detail (errno, TLS and DNS errors, status, category); info may be cause.
   The cause survives whole: when both do not fit, the prefix is cut. */
static PR__MAYBE_UNUSED int pr__err_wrap(pr_err_info *info, int code, const pr_err_info *cause, const char *fmt, ...) {
    pr_err_info c;
    char pre[sizeof c.msg];
    size_t np, nc, room = sizeof c.msg - 1;
    va_list ap;
    if (!info) return code;
    c = *cause;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    *info = c;
    info->code = code;
    np = strlen(pre);
    nc = strlen(c.msg);
    if (!nc) {
        memcpy(info->msg, pre, np + 1);
        return code;
    }
    if (np + 2 + nc > room) np = nc + 2 < room ? room - nc - 2 : 0;
    if (np) {
        memcpy(info->msg, pre, np);
        memcpy(info->msg + np, ": ", 2);
        np += 2;
    }
    memcpy(info->msg + np, c.msg, nc + 1); /* np + nc <= room: nc < sizeof c.msg, and np fits beside it */
    return code;
}

/* ---- process-wide hooks ---- */
/* Number of schedulers alive on any thread; the hooks are frozen while > 0. */
static int pr__live_scheds;

static void *pr__libc_alloc(size_t n, void *ud) { PR__UNUSED(ud); return PRISTINE_MALLOC(n); }
static void *pr__libc_realloc(void *p, size_t o, size_t n, void *ud) {
    PR__UNUSED(o); PR__UNUSED(ud); return PRISTINE_REALLOC(p, n);
}
static void pr__libc_free(void *p, size_t n, void *ud) { PR__UNUSED(n); PR__UNUSED(ud); PRISTINE_FREE(p); }

static pr_allocator pr__allocator = { pr__libc_alloc, pr__libc_realloc, pr__libc_free, NULL };
static pr_logger pr__logger = { NULL, NULL, PR_LEVEL_WARN };

int pr_set_allocator(const pr_allocator *a) {
    if (__atomic_load_n(&pr__live_scheds, __ATOMIC_ACQUIRE) > 0) return PR_ESTATE;
    if (!a) {
        pr_allocator d = { pr__libc_alloc, pr__libc_realloc, pr__libc_free, NULL };
        pr__allocator = d;
        return PR_OK;
    }
    if (!a->alloc || !a->free) return PR_EINVAL;
    pr__allocator = *a;
    return PR_OK;
}

int pr_set_logger(const pr_logger *l) {
    if (__atomic_load_n(&pr__live_scheds, __ATOMIC_ACQUIRE) > 0) return PR_ESTATE;
    if (!l || !l->fn) {
        pr__logger.fn = NULL;
        return PR_OK;
    }
    pr__logger = *l;
    if (pr__logger.max_level == 0) pr__logger.max_level = PR_LEVEL_WARN;
    return PR_OK;
}

static void *pr__alloc(size_t n) { return pr__allocator.alloc(n ? n : 1, pr__allocator.user_data); }

static void pr__free(void *p, size_t n) {
    if (p) pr__allocator.free(p, n ? n : 1, pr__allocator.user_data);
}

static PR__MAYBE_UNUSED void *pr__calloc(size_t count, size_t size) {
    void *p;
    if (size && count > SIZE_MAX / size) return NULL;
    p = pr__alloc(count * size);
    if (p && count && size) memset(p, 0, count * size);
    return p;
}

/* Resize p from old_n to new_n bytes; on failure p is left untouched. */
static PR__MAYBE_UNUSED void *pr__realloc(void *p, size_t old_n, size_t new_n) {
    void *q;
    if (!p) return pr__alloc(new_n);
    if (pr__allocator.realloc)
        return pr__allocator.realloc(p, old_n ? old_n : 1, new_n ? new_n : 1, pr__allocator.user_data);
    q = pr__alloc(new_n);
    if (!q) return NULL;
    memcpy(q, p, PR__MIN(old_n, new_n));
    pr__free(p, old_n);
    return q;
}

/* A NUL-terminated heap copy of the n bytes at p (p need not be terminated
   and may hold NULs); NULL when out of memory. Its size is n + 1. */
static PR__MAYBE_UNUSED char *pr__strndup(const char *p, size_t n) {
    char *d = (char *)pr__alloc(n + 1);
    if (d) {
        if (n) memcpy(d, p, n);
        d[n] = 0;
    }
    return d;
}

/* A heap copy of the NUL-terminated s, or NULL when out of memory; *size,
   unless size is NULL, gets the bytes allocated (strlen(s) + 1). */
static PR__MAYBE_UNUSED char *pr__strdup(const char *s, size_t *size) {
    size_t n = strlen(s);
    if (size) *size = n + 1;
    return pr__strndup(s, n);
}

/* Free *s, a copy from pr__strdup or pr__strndup with no NUL inside, and
   set it to NULL. */
static PR__MAYBE_UNUSED void pr__strfree(char **s) {
    if (*s) pr__free(*s, strlen(*s) + 1);
    *s = NULL;
}

/* ---- intrusive FIFO lists ---- */
/* A node kept inside what it lists (PR__CONTAINER_OF gets back to that). */
typedef struct pr__link {
    struct pr__link *prev, *next;
} pr__link;

/* A doubly-linked list of links: pushed at the tail, unlinked from
   anywhere. sched's channel queues and sync's wait queues are these. */
typedef struct pr__list {
    pr__link *head, *tail;
    size_t n;
} pr__list;

static PR__MAYBE_UNUSED void pr__list_push(pr__list *q, pr__link *x) {
    x->next = NULL;
    x->prev = q->tail;
    if (q->tail) q->tail->next = x;
    else q->head = x;
    q->tail = x;
    q->n++;
}

static PR__MAYBE_UNUSED void pr__list_unlink(pr__list *q, pr__link *x) {
    if (x->prev) x->prev->next = x->next;
    else q->head = x->next;
    if (x->next) x->next->prev = x->prev;
    else q->tail = x->prev;
    x->prev = x->next = NULL;
    q->n--;
}

void pr_log_stderr(int level, const char *module, const char *msg, void *user_data) {
    static const char *names[] = { "?", "error", "warn", "info", "debug" };
    PR__UNUSED(user_data);
    fprintf(stderr, "pristine %s %s: %s\n", names[level >= 1 && level <= 4 ? level : 0], module, msg);
}

static void pr__log_emit(int level, const char *module, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof msg) memcpy(msg + sizeof msg - 4, "...", 4);
    pr__logger.fn(level, module, msg, pr__logger.user_data);
}

/* ---- random numbers ---- */
static PR__THREAD uint64_t pr__rng_state[2];

static uint64_t pr__splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* 64 random bits: xorshift128+, seeded once per thread from getrandom
   (where there is one), the clock and the thread's address space. */
static uint64_t pr__random_u64(void) {
    uint64_t s1, s0;
    if (PR__UNLIKELY(!pr__rng_state[0] && !pr__rng_state[1])) {
        struct timespec ts;
        uint64_t seed;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ ((uint64_t)(uintptr_t)&seed << 16) ^
               (uint64_t)getpid();
#if defined(__linux__)
        {
            uint64_t os = 0;
            if (getrandom(&os, sizeof os, GRND_NONBLOCK) == (ssize_t)sizeof os) seed ^= os;
        }
#endif
        pr__rng_state[0] = pr__splitmix(&seed);
        pr__rng_state[1] = pr__splitmix(&seed) | 1;
    }
    s1 = pr__rng_state[0];
    s0 = pr__rng_state[1];
    pr__rng_state[0] = s0;
    s1 ^= s1 << 23;
    pr__rng_state[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return pr__rng_state[1] + s0;
}

double pr_random(void) { return (double)(pr__random_u64() >> 11) * (1.0 / 9007199254740992.0); }

/* PR__LOG(level, module, fmt, ...): checks the level before formatting. */
#define PR__LOG(level, ...) \
    do { \
        if ((level) <= PRISTINE_LOG_LEVEL && pr__logger.fn && (level) <= pr__logger.max_level) \
            pr__log_emit((level), __VA_ARGS__); \
    } while (0)
