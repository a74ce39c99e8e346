/*
pristine.h 0.1.0 - coroutine networking in one C header

generated from src/ by amalgamate.py; edit src/, not this file
The license (MIT) and the revision history are at the end of the file.

USAGE
  In exactly one C or C++ file, include it with the switch, before any other
  header (the implementation needs POSIX/GNU declarations):

      #define PRISTINE_IMPLEMENTATION
      #include "pristine.h"

  Everywhere else, include it plainly. Link BearSSL (-lbearssl), or define
  PRISTINE_NO_TLS in every file to build without TLS. Needs C99 or C++11 and
  POSIX: Linux first (epoll), BSD and macOS (kqueue), anything else (poll).

CONTENTS (grep for an anchor: >>sse for the declarations, >>sse.impl for the code)
  base          >>base          version, API decoration, includes, error codes, allocator and log hooks, random numbers
  time          >>time          monotonic and wall clocks in ms, deadlines, PR_FOREVER, test clock
  buf           >>buf           growable byte buffers, slices, checked number parsing, case-insensitive compare
  json          >>json          RFC 8259 JSON reader (DOM on an arena) and writer
  url           >>url           URL parsing, percent-encoding, query building, reference resolution
  sse           >>sse           Server-Sent Events decoder (pure; no I/O)
  coro          >>coro          stackful contexts: hand-written switch per arch, guard-paged pooled stacks
  sched         >>sched         tasks, run queue, timers, fd readiness, sleep, groups, channels, cross-thread post, signals
  sync          >>sync          FIFO wait queues, counting and weighted semaphores
  future        >>future        in-process promises and futures; a task's result as a future
  retry         >>retry         backoff and jitter, retry runner, server hints, circuit breaker, backoff window
  net           >>net           non-blocking DNS, TCP connect and listen, the pr_conn byte stream
  tls           >>tls           BearSSL client and server over pr_conn, trust anchors, hostname checks
  http          >>http          one HTTP/1.1 exchange over a pr_conn: request writer, response parser, bodies
  proxy         >>proxy         HTTP proxies: proxy settings from the environment, no_proxy matching, CONNECT tunnels
  client        >>client        HTTP client: keep-alive pool, connection caps, redirects, retries, breaker, events
  eventsource   >>eventsource   the reconnecting Server-Sent Events stream (EventSource) over the HTTP client
  session       >>session       a job service's session: the submit throttle and the session heartbeat
  rfuture       >>rfuture       remote futures polled until done, with one built-in profile; queue-state observers
  ds            >>ds            Durable Streams client: the stream handle, its options and one request; create, head, delete, append, close
  ds_read       >>ds_read       Durable Streams reads: catch-up, long-poll, SSE and auto, resuming at their offset
  ds_producer   >>ds_producer   Durable Streams idempotent producer: batched exactly-once appends with epochs and sequence numbers
  ds_consumer   >>ds_consumer   Durable Streams consumer: a task that follows a stream from a checkpoint
  telemetry     >>telemetry     structured events from every module's observer (client, breakers, streams, futures, Durable Streams); a batching reporter

CONFIGURATION (define before the #include; "global" macros must agree in every file)
  macro                     default            scope         meaning
  PRISTINE_IMPLEMENTATION   undefined          one file      emit the implementation
  PRISTINE_STATIC           off                global        make every API function static
  PRISTINE_API              extern             global        declaration decoration (DLL export/import)
  PRISTINE_NO_TLS           off                global        no TLS, no BearSSL; https gives PR_ENOTSUP
  PRISTINE_DEBUG            on unless NDEBUG   impl          asserts and misuse checks
  PRISTINE_ASSERT(x)        assert(x)          impl          the assert used by PRISTINE_DEBUG
  PRISTINE_MALLOC(n)        malloc(n)          impl          compile-time allocator fallback;
  PRISTINE_REALLOC(p, n)    realloc(p, n)      impl            define all three or none
  PRISTINE_FREE(p)          free(p)            impl            (pr_set_allocator overrides them)
  PRISTINE_LOG_LEVEL        4                  impl          logging ceiling (0 strips all logging)
  PRISTINE_STACK_SIZE       65536              impl          default coroutine stack, bytes
  PRISTINE_CORO_ASM         auto               impl          hand-written context switch or #error
  PRISTINE_CORO_UCONTEXT    auto               impl          force the ucontext fallback
  PRISTINE_NO_FP_SAVE       off                impl          leave FP control words out of a switch
  PRISTINE_POLL_EPOLL       auto               impl          force the epoll poller
  PRISTINE_POLL_KQUEUE      auto               impl          force the kqueue poller
  PRISTINE_POLL_POLL        auto               impl          force the poll(2) poller
  PRISTINE_NO_THREADS       off                impl          no DNS helper threads: getaddrinfo runs
                                                               inline and stalls the scheduler
  PRISTINE_TESTING          off                impl, tests   test hooks and virtual clock; never ship it

CONVENTIONS
  Errors. Every fallible call returns PR_OK (0) or a negative PR_E* code;
  byte counts are ptrdiff_t (>= 0 bytes, < 0 an error). Constructors return
  the code and deliver the object through an out-parameter. pr_strerror and
  pr_errname turn a code into text. Why a call failed (a message naming the
  cause, errno, TLS or DNS error, HTTP status) is a pr_err_info, and one rule
  says where: an object that lives on keeps its last failure, read with
  pr_X_last_error(obj, &info); a call that creates an object (NULL on
  failure) or fills a result struct takes a pr_err_info *err parameter just
  before the deadline (last when it has none; NULL = not wanted). Creators
  whose only failures are PR_EINVAL and PR_ENOMEM (channels, semaphores,
  breakers...) have no more to say and take none. Never a thread-local, an
  options field or a result member.

  Deadlines. Every call that may suspend the calling task takes an absolute
  deadline in milliseconds on the pr_now() clock as its last parameter.
  PR_FOREVER (INT64_MAX) means no limit; a deadline at or before now means
  "do not block". Note: -1 is NOT forever here; it has already passed. Use
  pr_deadline_in(ms) to build one. Options hold durations; calls hold
  deadlines.

  Options. Option structs are passed as const pointers; NULL means all
  defaults, and a zero field means that field's default.

  Threads. pristine is a cooperative, single-threaded runtime per thread. A
  scheduler, and everything created under it (tasks, sockets, TLS sessions,
  HTTP clients, SSE decoders, futures, stream clients), belongs to the thread
  that runs that scheduler and may only be used from that thread. Different
  threads may each run their own scheduler at the same time; they share
  nothing except the global allocator and logger. Install those before the
  first scheduler starts and do not change them while any scheduler runs.
  Functions marked thread-safe in their documentation (for example the
  scheduler wake or post call) are the only ones that may be called from
  another thread. Your allocator and logger callbacks can be called
  concurrently from every thread that runs a scheduler. Coroutines never
  move between threads. Inside a task: do not block the thread with OS
  primitives (mutexes, condition variables, blocking reads), do not rely on
  thread-local variables for per-task state, and do not keep pointers into a
  task's stack after it ends. Name resolution (DNS) does not block the
  scheduler: getaddrinfo runs on up to 4 library-owned helper threads
  (started on demand, gone when idle) that wake the asking task with
  pr_sched_post; PRISTINE_NO_THREADS runs it inline instead.

EXAMPLE (prints got 1, got 2, got 3)

      #define PRISTINE_IMPLEMENTATION
      #define PRISTINE_NO_TLS
      #include "pristine.h"
      #include <stdio.h>

      static int producer(void *user_data) {
          pr_chan *ch = user_data;
          for (int i = 1; i <= 3; i++) {
              pr_sleep(pr_deadline_in(100));      // other tasks run meanwhile
              pr_chan_send(ch, &i, PR_FOREVER);
          }
          return pr_chan_close(ch);
      }

      int main(void) {
          pr_chan *ch; pr_task *t; int v;
          if (pr_chan_create(&ch, sizeof v, 0) != PR_OK) return 1;
          pr_go(&t, producer, ch, NULL);
          while (pr_chan_recv(ch, &v, pr_deadline_in(1000)) == PR_OK)
              printf("got %d\n", v);
          pr_join(t, NULL, PR_FOREVER);
          pr_chan_destroy(ch);
          return pr_sched_destroy();
      }
*/

#ifndef PRISTINE_H
#define PRISTINE_H

/* ==== base: version, API decoration, includes, error codes, allocator and log hooks, random numbers ==== >>base */
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

/* Everything below has C linkage in C++ (the #includes above stay outside). */
#ifdef __cplusplus
extern "C" {
#endif

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

/* ==== time: monotonic and wall clocks in ms, deadlines, PR_FOREVER, test clock ==== >>time */
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

/* ==== buf: growable byte buffers, slices, checked number parsing, case-insensitive compare ==== >>buf */
/*
 * buf: a pr_buf is a growable byte buffer owned by its user (init/deinit,
 * no allocation until the first append; data stays NUL-terminated once
 * allocated). A pr_slice is a borrowed view (pointer + length) that is
 * valid as long as the bytes it points into. Number parsing is strict and
 * checked: no sign where none is allowed, no spaces, overflow is an error.
 *
 * Offers to the modules after it: pr__buf_ascii_lower, pr__buf_dec,
 *     pr__buf_utf8_seq.
 */

/* A borrowed view of bytes; not NUL-terminated in general. */
typedef struct pr_slice {
    const char *ptr;
    size_t len;
} pr_slice;

/* A growable byte buffer. Zero-initialised is a valid empty buffer. */
typedef struct pr_buf {
    char *data;  /* NULL until the first growth; then always NUL-terminated */
    size_t len;  /* bytes in use, excluding the terminator */
    size_t cap;  /* bytes allocated */
} pr_buf;

/* Make b an empty buffer (no allocation).
   Params: b - caller-allocated buffer.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_buf_deinit. */
PRISTINE_API void pr_buf_init(pr_buf *b);

/* Release b's memory and leave it empty and reusable.
   Params: b - a buffer; NULL is a no-op.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_buf_init. */
PRISTINE_API void pr_buf_deinit(pr_buf *b);

/* Make room for at least extra more bytes (plus the terminator).
   Params: b - the buffer; extra - bytes wanted beyond len.
   Returns: PR_OK; PR_ENOMEM on allocation failure or size overflow (b is
            unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_buf_append. */
PRISTINE_API int pr_buf_reserve(pr_buf *b, size_t extra);

/* Append n bytes.
   Params: b - the buffer; p - the bytes (may be NULL when n is 0); n - count.
   Returns: PR_OK; PR_ENOMEM (b is unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_buf_append_str, pr_buf_printf. */
PRISTINE_API int pr_buf_append(pr_buf *b, const void *p, size_t n);

/* Append a NUL-terminated string (without its terminator).
   Params: b - the buffer; s - the string.
   Returns: PR_OK; PR_ENOMEM (b is unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_buf_append. */
PRISTINE_API int pr_buf_append_str(pr_buf *b, const char *s);

/* Append printf-formatted text.
   Params: b - the buffer; fmt, ... - as for printf.
   Returns: PR_OK; PR_ENOMEM (b is unchanged); PR_EINVAL on a format error.
   Blocks: no.
   Thread: owner.
   See: pr_buf_append. */
PRISTINE_API int pr_buf_printf(pr_buf *b, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Drop the first n bytes (all of them if n >= len), keeping the memory.
   Params: b - the buffer; n - bytes to drop.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_buf_clear. */
PRISTINE_API void pr_buf_consume(pr_buf *b, size_t n);

/* Set len to 0, keeping the memory.
   Params: b - the buffer.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_buf_consume. */
PRISTINE_API void pr_buf_clear(pr_buf *b);

/* A slice over a NUL-terminated string (NULL gives an empty slice).
   Params: s - the string.
   Returns: the slice.
   Blocks: no.
   Thread: any.
   See: pr_slice_eq. */
PRISTINE_API pr_slice pr_slice_cstr(const char *s);

/* Byte-wise equality.
   Params: a, b - slices.
   Returns: 1 if equal, 0 if not.
   Blocks: no.
   Thread: any.
   See: pr_slice_ieq. */
PRISTINE_API int pr_slice_eq(pr_slice a, pr_slice b);

/* ASCII case-insensitive equality (header names, schemes); bytes >= 0x80
   compare exactly.
   Params: a, b - slices.
   Returns: 1 if equal ignoring ASCII case, 0 if not.
   Blocks: no.
   Thread: any.
   See: pr_ascii_icmp. */
PRISTINE_API int pr_slice_ieq(pr_slice a, pr_slice b);

/* ASCII case-insensitive three-way compare (A-Z folded to a-z).
   Params: a, b - slices.
   Returns: <0, 0 or >0 as a sorts before, equal to or after b.
   Blocks: no.
   Thread: any.
   See: pr_slice_ieq. */
PRISTINE_API int pr_ascii_icmp(pr_slice a, pr_slice b);

/* The slice without leading and trailing spaces and tabs (HTTP OWS).
   Params: s - a slice.
   Returns: the trimmed slice (a view into s).
   Blocks: no.
   Thread: any.
   See: pr_slice_cstr. */
PRISTINE_API pr_slice pr_slice_trim(pr_slice s);

/* Parse a whole slice as a decimal signed integer: an optional '-' or '+',
   then one or more ASCII digits, nothing else.
   Params: s - the text; out - receives the value (untouched on error).
   Returns: PR_OK; PR_EINVAL for empty text or a stray byte; PR_ELIMIT
            when the value does not fit in int64_t.
   Blocks: no.
   Thread: any.
   See: pr_parse_u64. */
PRISTINE_API int pr_parse_i64(pr_slice s, int64_t *out);

/* Parse a whole slice as a decimal unsigned integer: one or more ASCII
   digits, nothing else (no sign, no spaces).
   Params: s - the text; out - receives the value (untouched on error).
   Returns: PR_OK; PR_EINVAL for empty text or a stray byte; PR_ELIMIT
            when the value does not fit in uint64_t.
   Blocks: no.
   Thread: any.
   See: pr_parse_i64. */
PRISTINE_API int pr_parse_u64(pr_slice s, uint64_t *out);

/* ==== json: RFC 8259 JSON reader (DOM on an arena) and writer ==== >>json */
/*
 * json: a strict RFC 8259 reader that builds a read-only DOM, and a writer
 * that emits compact JSON into a pr_buf.
 *
 * Reading: pr_json_parse turns text into a pr_json_doc. The document owns
 * every value, key and string in a few large arena chunks (no allocation
 * per value) and frees them all at once in pr_json_doc_destroy. A pr_json
 * is a value inside a document; pointers to values and the strings they
 * hold stay valid until the document is destroyed. The input text is not
 * referenced after the parse returns. The parser is iterative (no
 * recursion), validates UTF-8, combines surrogate pairs and rejects lone
 * surrogates (or replaces them with U+FFFD by option). Depth, document size
 * and string length are limited by pr_json_opts (exceeding one gives
 * PR_ELIMIT); malformed input gives PR_EPROTO and a position in
 * pr_json_error. Strings are stored NUL-terminated but may also contain
 * U+0000, so getters report their length. Object member lookup is a linear
 * scan (objects keep their members in document order, duplicates
 * included); array indexing is O(1).
 *
 * Writing: a pr_json_writer is a caller-allocated value struct over a
 * caller-owned pr_buf; it allocates nothing itself and tracks nesting, so a
 * misplaced call gives PR_ESTATE. It only appends to the buffer and keeps
 * no pointer into its bytes, so a caller streaming a large array may send
 * and pr_buf_clear (or pr_buf_consume) the buffer between any two calls.
 */

/* The type of a value (pr_json_type). 0 is returned for a NULL value. */
enum pr_json_type {
    PR_JSON_NULL = 1,
    PR_JSON_FALSE,
    PR_JSON_TRUE,
    PR_JSON_NUMBER,
    PR_JSON_STRING,
    PR_JSON_ARRAY,
    PR_JSON_OBJECT
};

/* A parsed document; owns all its values. */
typedef struct pr_json_doc pr_json_doc;

/* A value inside a document; valid until pr_json_doc_destroy. */
typedef struct pr_json pr_json;

/* Parser limits and options. Zero in every field means the default. */
typedef struct pr_json_opts {
    size_t max_depth;            /* 0 = 512 nested arrays/objects */
    size_t max_size;             /* 0 = 64 MiB of input text */
    size_t max_string;           /* 0 = 16 MiB per decoded string or key */
    int replace_lone_surrogates; /* 0 = a lone \uD800-\uDFFF escape is PR_EPROTO; 1 = U+FFFD */
} pr_json_opts;

/* Where and why a parse failed. offset is the byte offset of the problem
   in the input; line and column are 1-based (column counts bytes). */
typedef struct pr_json_error {
    int code;      /* PR_OK, PR_EPROTO, PR_ELIMIT, PR_ENOMEM or PR_EINVAL */
    size_t offset;
    size_t line;
    size_t column;
    char msg[96];  /* NUL-terminated English text */
} pr_json_error;

/* Parse one JSON text (RFC 8259: any value, surrounded by optional
   whitespace; no BOM, no comments, no trailing commas). Numbers that are
   written without fraction or exponent and fit int64_t are kept exactly;
   a number whose magnitude overflows a double is PR_ELIMIT.
   Params: out - receives the document (NULL on failure); text, len - the
           input, need not be NUL-terminated; opts - limits, NULL for the
           defaults; err - receives the failure position and message, may
           be NULL.
   Returns: PR_OK; PR_EPROTO for malformed JSON or invalid UTF-8; PR_ELIMIT
            when a limit of opts is exceeded or a number is out of range;
            PR_ENOMEM; PR_EINVAL if out is NULL or text is NULL with len > 0.
   Blocks: no.
   Thread: any.
   See: pr_json_doc_destroy, pr_json_root. */
PRISTINE_API int pr_json_parse(pr_json_doc **out, const char *text, size_t len, const pr_json_opts *opts,
                               pr_json_error *err);

/* Free a document and every value in it.
   Params: doc - the document; NULL is a no-op.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_json_parse. */
PRISTINE_API void pr_json_doc_destroy(pr_json_doc *doc);

/* The top-level value of a document.
   Params: doc - the document.
   Returns: the root value; NULL if doc is NULL.
   Blocks: no.
   Thread: any.
   See: pr_json_type. */
PRISTINE_API const pr_json *pr_json_root(const pr_json_doc *doc);

/* The type of a value.
   Params: v - a value or NULL.
   Returns: a PR_JSON_* type; 0 if v is NULL.
   Blocks: no.
   Thread: any.
   See: pr_json_len. */
PRISTINE_API int pr_json_type(const pr_json *v);

/* The number of elements of an array, members of an object, or bytes of a
   string.
   Params: v - a value or NULL.
   Returns: the count; 0 for other types and NULL.
   Blocks: no.
   Thread: any.
   See: pr_json_at, pr_json_string. */
PRISTINE_API size_t pr_json_len(const pr_json *v);

/* Look up an object member by key (a linear scan; when a key is present
   more than once the last member wins, as in JavaScript).
   Params: obj - an object (anything else gives NULL); key - NUL-terminated.
   Returns: the member's value, or NULL if absent.
   Blocks: no.
   Thread: any.
   See: pr_json_getn, pr_json_iter_init. */
PRISTINE_API const pr_json *pr_json_get(const pr_json *obj, const char *key);

/* Look up an object member by a key that may contain U+0000.
   Params: obj - an object; key, key_len - the key's bytes.
   Returns: the member's value (the last one if duplicated), or NULL.
   Blocks: no.
   Thread: any.
   See: pr_json_get. */
PRISTINE_API const pr_json *pr_json_getn(const pr_json *obj, const char *key, size_t key_len);

/* An array element by index (O(1)).
   Params: arr - an array (anything else gives NULL); i - 0-based index.
   Returns: the element, or NULL if i is out of range.
   Blocks: no.
   Thread: any.
   See: pr_json_len. */
PRISTINE_API const pr_json *pr_json_at(const pr_json *arr, size_t i);

/* A string's UTF-8 bytes (NUL-terminated; may also contain U+0000).
   Params: v - a string value; len - receives the byte length, may be NULL.
   Returns: the bytes, valid until the document is destroyed; NULL (and
            *len = 0) if v is not a string.
   Blocks: no.
   Thread: any.
   See: pr_json_len. */
PRISTINE_API const char *pr_json_string(const pr_json *v, size_t *len);

/* A number as an exact integer.
   Params: v - a value; out - receives the integer (untouched on error).
   Returns: PR_OK; PR_EINVAL if v is not a number or was written with a
            fraction or an exponent; PR_ELIMIT if the integer does not fit
            in int64_t.
   Blocks: no.
   Thread: any.
   See: pr_json_double. */
PRISTINE_API int pr_json_int(const pr_json *v, int64_t *out);

/* A number as a double (integers are converted, rounding if beyond 2^53).
   Params: v - a value; out - receives the number (untouched on error).
   Returns: PR_OK; PR_EINVAL if v is not a number.
   Blocks: no.
   Thread: any.
   See: pr_json_int. */
PRISTINE_API int pr_json_double(const pr_json *v, double *out);

/* A boolean.
   Params: v - a value; out - receives 1 for true, 0 for false.
   Returns: PR_OK; PR_EINVAL if v is neither true nor false.
   Blocks: no.
   Thread: any.
   See: pr_json_type. */
PRISTINE_API int pr_json_bool(const pr_json *v, int *out);

/* Whether a value is JSON null.
   Params: v - a value or NULL.
   Returns: 1 if v is null, 0 otherwise (including a NULL pointer).
   Blocks: no.
   Thread: any.
   See: pr_json_type. */
PRISTINE_API int pr_json_is_null(const pr_json *v);

/* An iterator over the members of an object or the elements of an array,
   in document order:
       pr_json_iter it;
       pr_json_iter_init(&it, obj);
       while (pr_json_iter_next(&it)) use(it.key, it.key_len, it.value);
   The priv_ fields are private. */
typedef struct pr_json_iter {
    const char *key;      /* the member's key (NUL-terminated); NULL for arrays */
    size_t key_len;       /* its length in bytes */
    const pr_json *value; /* the current member's value or element */
    size_t index;         /* 0-based position of the current item */
    const pr_json *priv_next, *priv_end;
    int priv_step;
} pr_json_iter;

/* Start iterating over a container.
   Params: it - caller-allocated iterator; v - an array or object (anything
           else, or NULL, gives an iterator that yields nothing).
   Returns: nothing.
   Blocks: no.
   Thread: any.
   See: pr_json_iter_next. */
PRISTINE_API void pr_json_iter_init(pr_json_iter *it, const pr_json *v);

/* Advance to the next item and fill key, key_len, value and index.
   Params: it - an iterator from pr_json_iter_init.
   Returns: 1 if an item was produced; 0 at the end.
   Blocks: no.
   Thread: any.
   See: pr_json_iter_init. */
PRISTINE_API int pr_json_iter_next(pr_json_iter *it);

/* The deepest nesting a writer tracks. */
#define PR_JSON_WRITER_MAX_DEPTH 1024

/* A compact JSON writer over a caller-owned pr_buf. A caller-allocated
   value struct (no deinit needed); all fields are private. */
typedef struct pr_json_writer {
    pr_buf *priv_out;
    int priv_err;            /* sticky PR_ENOMEM */
    unsigned priv_depth;
    unsigned priv_state;     /* flags of the innermost level */
    unsigned char priv_kind[PR_JSON_WRITER_MAX_DEPTH / 8]; /* bit set = object */
} pr_json_writer;

/* Start a writer that appends one JSON value to out. out's existing
   bytes are kept. Between calls the caller may send and consume out's
   bytes (for example after each element of a large array): the writer
   keeps no pointer into them.
   Params: w - caller-allocated writer; out - the destination buffer.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_json_writer_finish. */
PRISTINE_API void pr_json_writer_init(pr_json_writer *w, pr_buf *out);

/* Check that exactly one complete value has been written.
   Params: w - the writer.
   Returns: PR_OK; PR_ESTATE if a container is open or nothing was written;
            PR_ENOMEM if an earlier call ran out of memory.
   Blocks: no.
   Thread: owner.
   See: pr_json_writer_init. */
PRISTINE_API int pr_json_writer_finish(pr_json_writer *w);

/* Open an object ('{'); then alternate pr_json_key and a value.
   Params: w - the writer.
   Returns: PR_OK; PR_ESTATE where a value is not allowed (after the top
            value, or where a key is expected); PR_ELIMIT beyond
            PR_JSON_WRITER_MAX_DEPTH; PR_ENOMEM (sticky: every later call
            returns it too).
   Blocks: no.
   Thread: owner.
   See: pr_json_end_object, pr_json_key. */
PRISTINE_API int pr_json_begin_object(pr_json_writer *w);

/* Close the innermost object ('}').
   Params: w - the writer.
   Returns: PR_OK; PR_ESTATE if the innermost container is not an object
            or a key has no value yet; PR_ENOMEM (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_begin_object. */
PRISTINE_API int pr_json_end_object(pr_json_writer *w);

/* Open an array ('[').
   Params: w - the writer.
   Returns: PR_OK; PR_ESTATE where a value is not allowed; PR_ELIMIT beyond
            PR_JSON_WRITER_MAX_DEPTH; PR_ENOMEM (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_end_array. */
PRISTINE_API int pr_json_begin_array(pr_json_writer *w);

/* Close the innermost array (']').
   Params: w - the writer.
   Returns: PR_OK; PR_ESTATE if the innermost container is not an array;
            PR_ENOMEM (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_begin_array. */
PRISTINE_API int pr_json_end_array(pr_json_writer *w);

/* Write an object member's key.
   Params: w - the writer; key, len - UTF-8 bytes (may contain U+0000).
   Returns: PR_OK; PR_ESTATE if not inside an object or a key is already
            waiting for its value; PR_EINVAL for invalid UTF-8; PR_ENOMEM
            (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_write_string. */
PRISTINE_API int pr_json_key(pr_json_writer *w, const char *key, size_t len);

/* Write a string value, escaping '"', '\' and control characters;
   other UTF-8 passes through unchanged.
   Params: w - the writer; s, len - UTF-8 bytes (may contain U+0000).
   Returns: PR_OK; PR_ESTATE where a value is not allowed; PR_EINVAL for
            invalid UTF-8; PR_ENOMEM (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_key. */
PRISTINE_API int pr_json_write_string(pr_json_writer *w, const char *s, size_t len);

/* Write an integer, exactly.
   Params: w - the writer; v - the value.
   Returns: PR_OK; PR_ESTATE where a value is not allowed; PR_ENOMEM
            (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_write_double. */
PRISTINE_API int pr_json_write_int(pr_json_writer *w, int64_t v);

/* Write a double in the shortest of %.15g, %.16g and %.17g that reads back
   as the same double; a value without fraction or exponent gets ".0" so
   it reads back as a non-integer.
   Params: w - the writer; v - a finite value.
   Returns: PR_OK; PR_EINVAL for NaN or an infinity; PR_ESTATE where a
            value is not allowed; PR_ENOMEM (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_write_int. */
PRISTINE_API int pr_json_write_double(pr_json_writer *w, double v);

/* Write true or false.
   Params: w - the writer; v - nonzero for true.
   Returns: PR_OK; PR_ESTATE where a value is not allowed; PR_ENOMEM
            (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_write_null. */
PRISTINE_API int pr_json_write_bool(pr_json_writer *w, int v);

/* Write null.
   Params: w - the writer.
   Returns: PR_OK; PR_ESTATE where a value is not allowed; PR_ENOMEM
            (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_write_bool. */
PRISTINE_API int pr_json_write_null(pr_json_writer *w);

/* Write a parsed value and everything inside it (iteratively; it may
   allocate a small cursor stack).
   Params: w - the writer; v - a value from a document.
   Returns: PR_OK; PR_EINVAL if v is NULL; PR_ESTATE where a value is not
            allowed; PR_ELIMIT if nesting would exceed
            PR_JSON_WRITER_MAX_DEPTH; PR_ENOMEM (sticky).
   Blocks: no.
   Thread: owner.
   See: pr_json_parse. */
PRISTINE_API int pr_json_write_value(pr_json_writer *w, const pr_json *v);

/* A parsed value as compact JSON text (the writer's form, as
   pr_json_write_value writes it): appended to out, which stays
   NUL-terminated, so out.data is the string; pr_buf_deinit frees it.
       pr_buf s = {0};
       if (pr_json_to_buf(pr_json_root(doc), &s) == PR_OK) puts(s.data);
       pr_buf_deinit(&s);
   Params: v - a value from a document; out - the buffer (its bytes are
           kept; the text goes after them).
   Returns: PR_OK; PR_EINVAL if v or out is NULL; PR_ELIMIT if nesting
            exceeds PR_JSON_WRITER_MAX_DEPTH; PR_ENOMEM. On failure out
            holds what it held before.
   Blocks: no.
   Thread: any (out is the caller's).
   See: pr_json_write_value, pr_buf_deinit. */
PRISTINE_API int pr_json_to_buf(const pr_json *v, pr_buf *out);

/* ==== url: URL parsing, percent-encoding, query building, reference resolution ==== >>url */
/*
 * url: absolute http/https URLs for the HTTP client (RFC 3986), percent-
 * encoding and decoding, query building and relative-reference resolution
 * (RFC 3986 section 5, for redirects).
 *
 * Main type: pr_url, a parsed URL. pr_url_parse copies the text into one
 * allocation that the struct owns; every pr_slice in it points into that
 * copy, so the caller's string may go away at once. The slices stay valid
 * until pr_url_deinit. A zero-initialised pr_url is empty and may be passed
 * to pr_url_deinit.
 *
 * Parsing rules (strict; every rejection is PR_EINVAL with a message):
 * - the scheme is matched case-insensitively and stored in lower case; only
 *   "http" and "https" are accepted (other schemes are PR_EINVAL, "unsupported
 *   scheme"), and "//" must follow the colon;
 * - no control bytes (0x00-0x1f, 0x7f) and no spaces anywhere; every '%'
 *   must start a %XX escape (two hex digits) in every component;
 * - userinfo ("user:pass" before the last '@' of the authority) is kept raw
 *   (still percent-encoded; error messages never quote it) and may hold only unreserved, sub-delims, ':',
 *   %XX and bytes >= 0x80;
 * - the host must not be empty. ASCII letters are folded to lower case;
 *   bytes >= 0x80 (IDN in UTF-8) are kept as given, with no punycode step.
 *   An IPv6 literal must be bracketed ("[::1]") and must be a valid RFC 3986
 *   IPv6address; the slice holds it without the brackets and is_ipv6 is set.
 *   Zone identifiers (RFC 6874 "%25eth0") and IPvFuture ("[v1.x]") are
 *   rejected;
 * - a host whose last label is a number ("127.1", "0x7f.1", "2130706433",
 *   "0177.0.0.1", one trailing dot allowed) is an IPv4 address read the way
 *   browsers and curl read it (WHATWG URL: hex, octal, fewer than four
 *   parts) and stored as its dotted quad ("127.0.0.1"), so the resolver,
 *   TLS and the proxy rules all see the same address; one that does not
 *   parse or is out of range ("256.1.1.1", "1.2.3.4.5", "example.123") is
 *   rejected;
 * - the port is 1-65535 in decimal (leading zeros allowed). An empty port
 *   ("http://h:/") means the default port (RFC 3986 section 3.2.3) and
 *   port_explicit stays 0; defaults are 80 for http and 443 for https;
 * - path, query and fragment are kept raw; an empty path stays empty here
 *   and becomes "/" in pr_url_target.
 */

/* A parsed absolute http/https URL. Read the fields; do not write them. */
typedef struct pr_url {
    pr_slice scheme;    /* "http" or "https" (lower case) */
    pr_slice userinfo;  /* raw, without the '@'; empty if none */
    pr_slice host;      /* lower-cased ASCII; IPv6 without brackets */
    pr_slice path;      /* raw, may be empty */
    pr_slice query;     /* raw, without the '?' */
    pr_slice fragment;  /* raw, without the '#' */
    uint16_t port;      /* explicit port, or 80 / 443 */
    int port_explicit;  /* 1 if the text named a port */
    int is_ipv6;        /* 1 if the host was a bracketed IPv6 literal */
    int secure;         /* 1 for https */
    int has_userinfo;   /* 1 if an '@' was present (userinfo may be empty) */
    int has_query;      /* 1 if a '?' was present (query may be empty) */
    int has_fragment;   /* 1 if a '#' was present (fragment may be empty) */
    char *mem_;         /* private: the owned copy */
    size_t mem_len_;    /* private: its allocation size */
} pr_url;

/* Character sets for pr_url_encode: the bytes that are kept as they are.
   Every other byte becomes %XX (upper-case hex). */
enum pr_url_enc {
    PR_URL_ENC_COMPONENT = 0, /* only unreserved: A-Z a-z 0-9 - . _ ~ */
    PR_URL_ENC_PATH = 1,      /* unreserved, sub-delims, ':', '@', '/' */
    PR_URL_ENC_QUERY = 2,     /* unreserved and ! $ ' ( ) * , ; : @ / ?
                                 (not & = + #): a query key or value */
    PR_URL_ENC_FORM = 3       /* application/x-www-form-urlencoded:
                                 A-Z a-z 0-9 * - . _ kept, space as '+' */
};

/* Flags for pr_url_decode. */
enum pr_url_dec {
    PR_URL_DEC_PLUS = 1 /* decode '+' as a space (form encoding) */
};

/* Parse an absolute http or https URL into u (see the rules above).
   Params: u - receives the URL; it must not hold a parsed URL (deinit it
           first); on failure it is left zeroed. s, len - the text (need not
           be NUL-terminated; a NUL byte is rejected). err - optional; on
           failure receives the code and a message saying what was wrong.
   Returns: PR_OK; PR_EINVAL for malformed text, an unsupported scheme
            (anything but http and https), an empty host, a bad IPv6
            literal or a bad port; PR_ENOMEM.
   Blocks: no.
   Thread: any.
   See: pr_url_deinit, pr_url_format, pr_url_resolve. */
PRISTINE_API int pr_url_parse(pr_url *u, const char *s, size_t len, pr_err_info *err);

/* Release the memory of a parsed URL and zero it.
   Params: u - a URL from pr_url_parse or zero-initialised; NULL is a no-op.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_url_parse. */
PRISTINE_API void pr_url_deinit(pr_url *u);

/* Append the URL's text: scheme "://" [userinfo "@"] host [":" port]
   path ["?" query] ["#" fragment]. The port is written when the text had
   one; IPv6 hosts get brackets. Parsing the output gives equal components.
   Params: out - appended to; u - a parsed URL; with_fragment - 0 drops the
           fragment (what a redirect's base or a request needs).
   Returns: PR_OK; PR_ENOMEM (out is unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_url_target, pr_url_origin. */
PRISTINE_API int pr_url_format(pr_buf *out, const pr_url *u, int with_fragment);

/* Append the origin-form request target: path (or "/" when empty) and
   "?" query when the URL has one. Bytes that may not appear raw in a
   request line (>= 0x80 and " < > \ ^ ` { | }) are percent-encoded.
   Params: out - appended to; u - a parsed URL.
   Returns: PR_OK; PR_ENOMEM (out is unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_url_authority. */
PRISTINE_API int pr_url_target(pr_buf *out, const pr_url *u);

/* Append the authority host[:port], IPv6 in brackets, never the userinfo.
   The host is written as parsed: IDN bytes stay as given (convert to
   punycode first if the peer needs ASCII).
   Params: out - appended to; u - a parsed URL; always_port - 1 always
           writes the port (a CONNECT target); 0 omits it when it is the
           scheme's default (a Host header).
   Returns: PR_OK; PR_ENOMEM (out is unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_url_origin. */
PRISTINE_API int pr_url_authority(pr_buf *out, const pr_url *u, int always_port);

/* Append the origin "scheme://host:port", always with the port, e.g.
   "https://example.com:443" or "http://[::1]:80".
   Params: out - appended to; u - a parsed URL.
   Returns: PR_OK; PR_ENOMEM (out is unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_url_same_origin. */
PRISTINE_API int pr_url_origin(pr_buf *out, const pr_url *u);

/* Whether two URLs have the same origin (scheme, host and port).
   Params: a, b - parsed URLs.
   Returns: 1 if the origins are equal, 0 if not.
   Blocks: no.
   Thread: any.
   See: pr_url_origin. */
PRISTINE_API int pr_url_same_origin(const pr_url *a, const pr_url *b);

/* Percent-encode n bytes, keeping the bytes of one character set.
   Params: out - appended to; s - the bytes (may be NULL when n is 0);
           n - count; set - a PR_URL_ENC_* value.
   Returns: PR_OK; PR_EINVAL for an unknown set; PR_ENOMEM (out is
            unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_url_decode, pr_url_query_append. */
PRISTINE_API int pr_url_encode(pr_buf *out, const char *s, size_t n, int set);

/* Percent-decode n bytes. %XX (either hex case) becomes one byte, which may
   be any value including NUL (out->len counts it).
   Params: out - appended to; s - the text (may be NULL when n is 0);
           n - count; flags - 0 or PR_URL_DEC_PLUS.
   Returns: PR_OK; PR_EINVAL when a '%' is not followed by two hex digits
            (out is unchanged); PR_ENOMEM (out is unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_url_encode. */
PRISTINE_API int pr_url_decode(pr_buf *out, const char *s, size_t n, int flags);

/* Append one key=value pair to a query string: a '&' first when q is not
   empty, then key and value encoded with PR_URL_ENC_QUERY (so '&', '=',
   '+', '#' and spaces are escaped). No leading '?' is written.
   Params: q - the query being built; key - NUL-terminated; value -
           NUL-terminated, or NULL to write the key alone without '='.
   Returns: PR_OK; PR_EINVAL if key is NULL; PR_ENOMEM (q is unchanged).
   Blocks: no.
   Thread: owner.
   See: pr_url_encode. */
PRISTINE_API int pr_url_query_append(pr_buf *q, const char *key, const char *value);

/* Resolve a URI reference against an absolute base URI (RFC 3986 section
   5.2: strict mode, remove_dot_segments, recomposition per 5.3) and append
   the result. This works on generic URI syntax, so "g:h" against an http
   base gives "g:h"; parse the result with pr_url_parse to get an http URL
   (for a redirect: format the current URL without fragment as the base,
   resolve the trimmed Location value, parse). The base's fragment is
   ignored. Both inputs obey the same byte rules as pr_url_parse: no
   control bytes or spaces, and every '%' starts a %XX escape.
   Params: out - appended to; base, base_len - the base URI, which must
           have a scheme; ref, ref_len - the reference; err - optional,
           receives the code and a message on failure.
   Returns: PR_OK; PR_EINVAL for a base without a scheme or a bad byte in
            either input; PR_ENOMEM. On failure out is unchanged.
   Blocks: no.
   Thread: owner.
   See: pr_url_parse, pr_url_format. */
PRISTINE_API int pr_url_resolve(pr_buf *out, const char *base, size_t base_len,
                                const char *ref, size_t ref_len, pr_err_info *err);

/* ==== sse: Server-Sent Events decoder (pure; no I/O) ==== >>sse */
/*
 * sse: a byte-in, event-out decoder for the text/event-stream format,
 * following the WHATWG HTML standard's parsing rules: UTF-8 with one leading
 * BOM stripped per connection, CR / LF / CRLF line ends (a CR ends its line
 * at once, also at the end of a chunk), comments, `event`, `data`, `id`,
 * `retry`, dispatch on a blank line, the unterminated block dropped at the
 * end of the stream. It does no I/O; it is what a reconnecting EventSource
 * client feeds the bytes of each connection into.
 *
 * Use: pr_sse_decoder_create, then for every chunk of the body:
 *
 *     pr_sse_decoder_feed(d, bytes, n);
 *     while ((rc = pr_sse_decoder_next(d, &ev)) != PR_SSE_DECODER_MORE) {
 *         if (rc == PR_OK) handle(&ev);
 *         else if (rc == PR_ELIMIT) pr_sse_decoder_skip(d);   (say so, then go on)
 *         else break;                                        (PR_ENOMEM: retry later)
 *     }
 *
 * At the end of the body pr_sse_decoder_finish(d) and the same loop until
 * next returns PR_ECLOSED; pr_sse_decoder_reset(d) before the next
 * connection. A loop that stops at PR_ELIMIT without the skip leaves the
 * chunk unread, so the next feed is PR_ESTATE. pr_sse_open / pr_sse_next
 * (module eventsource) run this loop over a reconnecting connection.
 *
 * Lifetime: the decoder borrows each fed chunk until next returns
 * PR_SSE_DECODER_MORE (or PR_ECLOSED, or reset/destroy): keep those bytes
 * unchanged until then. An event's strings are views into the chunk or the
 * decoder's own buffers, valid until the next call on the decoder. Values
 * may contain U+0000 (data, type), so use the lengths.
 *
 * Ids: an event carries both views: the block's own
 * `id` (absent / empty / set) and the stream's last-event-ID at dispatch.
 * pr_sse_decoder_last_id is what to send as Last-Event-ID on reconnect; it
 * also sees blocks that carry only `id:` and so dispatch no event.
 */

/* pr_sse_decoder_next: no complete event in the bytes fed so far. Positive,
   so it is never mistaken for an error code. */
#define PR_SSE_DECODER_MORE 1

/* pr_sse_event.id_state: did the event's block carry an accepted `id`? */
enum pr_sse_id_state {
    PR_SSE_ID_ABSENT = 0, /* no `id` field (id is NULL) */
    PR_SSE_ID_EMPTY = 1,  /* `id` with an empty value: the block cleared it */
    PR_SSE_ID_SET = 2     /* `id` with a non-empty value */
};

/* Decoder options; NULL or all zero means defaults. */
typedef struct pr_sse_decoder_opts {
    size_t max_line_bytes;  /* 0 = 1 MiB; SIZE_MAX = no limit. One line, without its terminator */
    size_t max_event_bytes; /* 0 = 16 MiB; SIZE_MAX = no limit. One event's joined data */
    int raw_bytes;          /* 0 = invalid UTF-8 becomes U+FFFD (spec R1); 1 = bytes pass unchanged */
} pr_sse_decoder_opts;

/* One dispatched event. The strings are valid until the next call on the
   decoder. type, id and last_id are NUL-terminated; data is not in general
   (it may point into the fed chunk): use data_len. */
typedef struct pr_sse_event {
    const char *type;     /* the `event` field, or "message" when absent/empty */
    size_t type_len;
    const char *data;     /* `data` lines joined with LF, never NULL */
    size_t data_len;
    int id_state;         /* PR_SSE_ID_ABSENT, PR_SSE_ID_EMPTY or PR_SSE_ID_SET */
    const char *id;       /* the block's own id: NULL when absent, "" when empty */
    size_t id_len;
    const char *last_id;  /* the stream's last-event-ID at dispatch; never NULL, may be "" */
    size_t last_id_len;
    int64_t retry_ms;     /* this block's own last valid `retry`, or -1 when the block had none */
    int64_t stream_retry_ms; /* the stream's reconnection time at dispatch: the latest valid `retry`
                                of the stream (-1 until one came; pr_sse_next puts the stream's
                                time in use there, its initial one until a `retry` arrives) */
} pr_sse_event;

/* An SSE decoder (opaque). Owned by one thread. */
typedef struct pr_sse_decoder pr_sse_decoder;

/* Create a decoder.
   Params: out - receives the decoder (NULL on failure); opts - options, or
           NULL for defaults (copied).
   Returns: PR_OK; PR_EINVAL if out is NULL; PR_ENOMEM.
   Blocks: no.
   Thread: any (the decoder then belongs to the calling thread).
   See: pr_sse_decoder_destroy, pr_sse_decoder_feed. */
PRISTINE_API int pr_sse_decoder_create(pr_sse_decoder **out, const pr_sse_decoder_opts *opts);

/* Destroy a decoder and everything it owns.
   Params: d - a decoder; NULL is a no-op.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_sse_decoder_create. */
PRISTINE_API void pr_sse_decoder_destroy(pr_sse_decoder *d);

/* Hand the decoder the next chunk of the response body (any split works,
   one byte at a time included). The bytes are borrowed, not copied: keep
   them unchanged until pr_sse_decoder_next returns PR_SSE_DECODER_MORE.
   Params: d - the decoder; bytes - the chunk (may be NULL when n is 0);
           n - its length.
   Returns: PR_OK; PR_EINVAL if d is NULL or bytes is NULL with n > 0;
            PR_ESTATE if the previous chunk is not fully read yet (call
            next until PR_SSE_DECODER_MORE first) or after
            pr_sse_decoder_finish; PR_ENOMEM (nothing was taken; the call may be repeated).
   Blocks: no.
   Thread: owner.
   See: pr_sse_decoder_next, pr_sse_decoder_finish. */
PRISTINE_API int pr_sse_decoder_feed(pr_sse_decoder *d, const char *bytes, size_t n);

/* Decode up to the next event. Lines are processed as they complete, so
   `retry` and id-only blocks take effect even when no event follows.
   Params: d - the decoder; ev - receives the event when PR_OK is returned;
           its strings stay valid until the next call on d.
   Returns: PR_OK (an event); PR_SSE_DECODER_MORE (all fed bytes are used:
            feed the next chunk); PR_ECLOSED (after pr_sse_decoder_finish, once the
            fed bytes are used; the unterminated block was dropped);
            PR_ELIMIT (a line or an event exceeded its limit; the block was
            dropped; returned again until pr_sse_decoder_skip or
            pr_sse_decoder_reset); PR_EINVAL if d or ev is NULL; PR_ENOMEM
            (nothing was lost; the call may be repeated).
   Blocks: no.
   Thread: owner.
   See: pr_sse_decoder_feed, pr_sse_decoder_skip. */
PRISTINE_API int pr_sse_decoder_next(pr_sse_decoder *d, pr_sse_event *ev);

/* Mark the end of the body: once the fed bytes are used, next drops the
   incomplete line and block (its `id` never reaches the last-event-ID)
   and returns PR_ECLOSED.
   Params: d - the decoder.
   Returns: PR_OK; PR_EINVAL if d is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_sse_decoder_reset. */
PRISTINE_API int pr_sse_decoder_finish(pr_sse_decoder *d);

/* After PR_ELIMIT, go on with the same stream: the rest of the offending
   block is skipped up to its blank line, then decoding resumes (the fed
   chunk stays in use). Lines inside the skipped part have no effect.
   Params: d - the decoder.
   Returns: PR_OK; PR_EINVAL if d is NULL; PR_ESTATE if the last result was
            not PR_ELIMIT.
   Blocks: no.
   Thread: owner.
   See: pr_sse_decoder_next, pr_sse_decoder_reset. */
PRISTINE_API int pr_sse_decoder_skip(pr_sse_decoder *d);

/* Prepare for a new connection (also the way out of PR_ELIMIT when the
   connection is dropped): forgets the fed chunk, the partial line and block,
   the end-of-stream mark and any limit error; the next byte is a stream start
   again (one BOM is stripped). Keeps the last-event-ID (seeding the new
   parse with it, as a reconnect that sent Last-Event-ID should) and the
   retry time.
   Params: d - the decoder.
   Returns: PR_OK; PR_EINVAL if d is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_sse_decoder_set_last_id, pr_sse_decoder_skip. */
PRISTINE_API int pr_sse_decoder_reset(pr_sse_decoder *d);

/* Seed the stream's last-event-ID (resume), before the first byte of a
   connection: after create, reset, or finish.
   Params: d - the decoder; id - the id bytes (may be NULL when len is 0),
           copied; len - their length.
   Returns: PR_OK; PR_EINVAL if d is NULL, id is NULL with len > 0, or id
            contains NUL, CR or LF or is not valid UTF-8; PR_ESTATE if bytes
            were fed since create/reset and finish was not called;
            PR_ENOMEM (the old id is kept).
   Blocks: no.
   Thread: owner.
   See: pr_sse_decoder_last_id. */
PRISTINE_API int pr_sse_decoder_set_last_id(pr_sse_decoder *d, const char *id, size_t len);

/* The stream's last-event-ID: what to send as Last-Event-ID on reconnect
   (empty means send none). Moved by every dispatched block with an `id`,
   including blocks that dispatch no event.
   Params: d - the decoder; len - receives the length (may be NULL).
   Returns: a NUL-terminated string, never NULL, valid until the next call
            that changes it; "" if d is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_sse_decoder_set_last_id, pr_sse_event. */
PRISTINE_API const char *pr_sse_decoder_last_id(const pr_sse_decoder *d, size_t *len);

/* The stream's reconnection time set by `retry` (digits only; saturates at
   INT64_MAX), effective as soon as its line ends.
   Params: d - the decoder.
   Returns: milliseconds, or -1 if no valid `retry` was seen (or d is NULL).
   Blocks: no.
   Thread: owner.
   See: pr_sse_event. */
PRISTINE_API int64_t pr_sse_decoder_retry_ms(const pr_sse_decoder *d);

/* Parse an event's data as one JSON text (pr_json_parse).
   Params: ev - the event (read during the call only); out - receives the
           document, which owns its values (destroy it with
           pr_json_doc_destroy; NULL on failure); opts - JSON limits, NULL
           for defaults; err - receives the failure's code, byte offset in
           ev->data, line, column and message; may be NULL.
   Returns: PR_OK; PR_EPROTO when the data is empty (offset 0, "empty event
            data") or is not valid JSON; PR_ELIMIT when a JSON limit is
            exceeded; PR_ENOMEM; PR_EINVAL if ev or out is NULL.
   Blocks: no.
   Thread: any.
   See: pr_json_parse, pr_json_doc_destroy. */
PRISTINE_API int pr_sse_event_json(const pr_sse_event *ev, pr_json_doc **out, const pr_json_opts *opts,
                                   pr_json_error *err);

/* ==== coro: stackful contexts: hand-written switch per arch, guard-paged pooled stacks ==== >>coro */
/*
 * coro: the stackful contexts under every task. Each task runs on its own
 * stack: an mmap'd region with a PROT_NONE guard page below it, so an
 * overflow is a clean SIGSEGV instead of silent corruption. Stacks are
 * pooled per thread (up to 64 of the default size), and the pages of
 * stacks that stay idle in the pool are handed back to the kernel. A guard
 * page costs a memory-map area and the kernel caps those (vm.max_map_count,
 * about 32k guarded stacks by default): once stacks hold 7/8 of the cap, or
 * when the kernel refuses, new stacks get a canary at their low end instead
 * of a guard page, checked on every switch away from their task; the
 * fallback is logged once. The context switch is hand-written assembly
 * on x86-64, aarch64, riscv64 and 32-bit arm (hard-float), with a ucontext
 * fallback elsewhere (PRISTINE_CORO_UCONTEXT forces it, PRISTINE_CORO_ASM
 * forbids it). It saves the callee-saved registers and the floating-point control
 * words (MXCSR and the x87 control word, FPCR, fcsr, FPSCR); define
 * PRISTINE_NO_FP_SAVE to leave the control words out.
 *
 * Only the stack size is public: tasks are spawned through the sched module.
 *
 * Offers to the modules after it: pr__coro, pr__coro_create, pr__coro_destroy,
 *     pr__coro_exit, pr__coro_init_main, pr__coro_pool_drain, pr__coro_shed,
 *     pr__coro_switch.
 */

/* Set the default stack size for tasks spawned later (process-wide).
   Params: bytes - the usable size of each stack, rounded up to the page
           size; between 16 KiB and 1 GiB. The task's own records (well
           under a page) are carved from the top of it.
   Returns: PR_OK; PR_EINVAL if bytes < 16 KiB or bytes > 1 GiB.
   Blocks: no.
   Thread: any.
   See: pr_coro_stack_size. */
PRISTINE_API int pr_coro_set_stack_size(size_t bytes);

/* The default stack size for tasks spawned from now on.
   Params: none.
   Returns: the size in bytes; initially PRISTINE_STACK_SIZE (65536),
            rounded up to the page size.
   Blocks: no.
   Thread: any.
   See: pr_coro_set_stack_size. */
PRISTINE_API size_t pr_coro_stack_size(void);

/* ==== sched: tasks, run queue, timers, fd readiness, sleep, groups, channels, cross-thread post, signals ==== >>sched */
/*
 * sched: one cooperative scheduler per thread, created on first use. The
 * thread's own stack is a task too, so main() may call blocking functions:
 * while it waits, other tasks run, and when every task waits the thread
 * sleeps in the poller (epoll on Linux, kqueue on the BSDs and macOS, poll
 * anywhere; PRISTINE_POLL_* forces one).
 *
 * Tasks: pr_go spawns a task on its own stack (it runs when the spawner
 * next blocks or yields; a spawn never jumps the run queue). A task spawned
 * with a handle must be joined (pr_join frees it); one spawned without is
 * freed when it returns. pr_cancel is sticky: every blocking call in the
 * task returns PR_ECANCELED at once from then on, so it unwinds and exits.
 * When cancel and a timeout are due together, cancel wins.
 *
 * Groups (nurseries) own their children: pr_group_close cancels and reaps
 * them. Channels carry fixed-size values between tasks of one thread,
 * buffered or not; pr_chan_choose waits on several operations at once.
 * pr_sched_post is the one call another thread may make: it hands a
 * function to this scheduler, which runs it on its own thread.
 *
 * Signals: pr_signal_watch_start turns SIGINT and SIGTERM (or the signals
 * you name) into a cancellation, so Ctrl-C stops a program cleanly: the
 * task you name gets pr_cancel (whatever it is blocked in returns
 * PR_ECANCELED and it unwinds, closing what it opened), and pr_signal_wait
 * hands the signal number to any task that waits for it. The handler only
 * records the signal and writes to the scheduler's wake fd; the scheduler
 * acts on it in its poller, like any I/O. The first signal puts the
 * previous handlers back, so a second Ctrl-C kills the process the usual
 * way. One watch per process, owned by the thread that started it:
 *
 *     pr_go(&worker, run, &app, NULL);
 *     pr_signal_watch_start(&w, NULL, 0, worker, NULL);
 *     pr_join(worker, &rc, PR_FOREVER);      // run returns on Ctrl-C too
 *     pr_signal_watch_stop(w);
 *     // main is not cancelled: flush and close with a deadline of its own
 *
 * Inside a host's event loop (a GUI toolkit, libuv, a game loop) the
 * thread's main stack belongs to the host: pr_sched_fd gives it one file
 * descriptor to watch for readability (the epoll or kqueue fd, which the
 * scheduler's wake fd also feeds), and pr_sched_step, called when it is
 * readable and when the deadline step reported passes, runs every task
 * that can run without blocking and returns. Tasks do the blocking.
 *
 * For the modules after it: pr__sched_park / pr__sched_wake (a task waits for an
 * event and a deadline; sync builds its FIFO wait queues on them), and the
 * timer heap (pr__sched_theap: nodes by wake-up time, kept inside what they
 * time), which rfuture uses for its sleeping futures.
 *
 * Offers to the modules after it: pr__sched_canceled, pr__sched_fd_reserve,
 *     pr__sched_fdslot, pr__sched_get, pr__sched_join_cleanup, pr__sched_park,
 *     pr__sched_poller_add,
 *     pr__sched_spawn, PR__SCHED_T_PARKED, pr__sched_task_interrupt,
 *     PR__SCHED_TF_DETACHED, pr__sched_theap, pr__sched_theap_free,
 *     pr__sched_theap_node, pr__sched_theap_push, pr__sched_theap_remove,
 *     pr__sched_theap_reserve, pr__sched_theap_top, pr__sched_tls,
 *     pr__sched_wake.
 */

/* A task (coroutine). Owned by the scheduler of the thread that spawned it. */
typedef struct pr_task pr_task;
/* A thread's scheduler; used only as a target of pr_sched_post. */
typedef struct pr_sched pr_sched;
/* A task group: cancels and reaps its children when closed. */
typedef struct pr_group pr_group;
/* A channel of fixed-size values. */
typedef struct pr_chan pr_chan;

/* A task body. Its return value is the task's result (see pr_join). */
typedef int (*pr_task_fn)(void *user_data);

/* Options for pr_go and pr_group_go. NULL or all-zero means defaults. */
typedef struct pr_spawn_opts {
    size_t stack_size;     /* 0 = pr_coro_stack_size() (64 KiB unless changed); an https request
                              through the client uses about 13 KiB of it, the rest is yours */
    void *stack_mem;       /* caller memory for the stack (no guard page, a canary
                              instead); NULL = a pooled, guard-paged mmap stack.
                              Must stay valid until the task is joined or freed. */
    size_t stack_mem_size; /* bytes at stack_mem; at least 16 KiB */
} pr_spawn_opts;

/* Readiness kinds for pr_fd_wait. */
enum pr_wait_kind { PR_WAIT_READ = 1, PR_WAIT_WRITE = 2 };

/* A running signal watch (pr_signal_watch_start). */
typedef struct pr_signal_watch pr_signal_watch;

/* Channel operation kinds for pr_chan_choose. */
enum pr_chan_kind { PR_CHAN_SEND = 1, PR_CHAN_RECV = 2 };

/* One operation offered to pr_chan_choose. */
typedef struct pr_chan_op {
    pr_chan *chan;  /* the channel */
    int kind;       /* PR_CHAN_SEND or PR_CHAN_RECV */
    void *elem;     /* value to send, or where to store the received one */
    int result;     /* out: PR_OK, or PR_ECLOSED when the channel was closed */
} pr_chan_op;

/* Spawn a task running fn(user_data) on the calling thread's scheduler.
   It first runs when the caller blocks or yields.
   Params: out - receives the handle (then the task must be pr_join'ed); NULL
           spawns a detached task, freed when it returns; fn - the body;
           user_data - passed to fn; opts - stack options, NULL for defaults.
   Returns: PR_OK; PR_ENOMEM (no stack or scheduler memory); PR_EINVAL (fn is
            NULL or stack_mem_size too small).
   Blocks: no.
   Thread: owner.
   See: pr_join, pr_cancel, pr_group_go. */
PRISTINE_API int pr_go(pr_task **out, pr_task_fn fn, void *user_data, const pr_spawn_opts *opts);

/* Wait for a task to return, then free it.
   Params: t - a handle from pr_go; result - receives fn's return value (may be
           NULL); deadline - absolute ms (pr_now clock).
   Returns: PR_OK (t is freed); PR_ETIMEDOUT or PR_ECANCELED (t is still
            valid and running); PR_EINVAL (t is NULL, the caller itself, or
            the main task); PR_ESTATE (another task is already joining t).
   Blocks: yes.
   Thread: owner.
   See: pr_go, pr_cancel. */
PRISTINE_API int pr_join(pr_task *t, int *result, int64_t deadline);

/* Cancel a task: its current blocking call and every later one return
   PR_ECANCELED. Idempotent; cancelling the calling task is allowed.
   Params: t - the task.
   Returns: PR_OK; PR_EINVAL if t is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_join, pr_group_close. */
PRISTINE_API int pr_cancel(pr_task *t);

/* The calling task (the thread's main task outside any spawned task).
   Params: none.
   Returns: the task, or NULL when the scheduler cannot be created (no memory).
   Blocks: no.
   Thread: owner.
   See: pr_is_canceled. */
PRISTINE_API pr_task *pr_self(void);

/* Whether the calling task has been cancelled.
   Params: none.
   Returns: 1 if cancelled, else 0.
   Blocks: no.
   Thread: owner.
   See: pr_cancel. */
PRISTINE_API int pr_is_canceled(void);

/* Let every other ready task run once, then continue. Every few dozen
   switches the scheduler also checks timers and I/O without sleeping, so a
   task that only yields does not starve sleepers or I/O. Inside a posted
   function it returns at once.
   Params: none.
   Returns: PR_OK; PR_ECANCELED if the task is cancelled; PR_ENOMEM if the
            scheduler cannot be created.
   Blocks: no (it never waits; other tasks run meanwhile).
   Thread: owner.
   See: pr_sleep. */
PRISTINE_API int pr_yield(void);

/* Sleep until the deadline. A deadline in the past returns at once.
   Params: deadline - absolute ms.
   Returns: PR_OK when the deadline is reached; PR_ECANCELED; PR_ENOMEM (no
            scheduler). It never returns PR_ETIMEDOUT: reaching the deadline is
            the success case.
   Blocks: yes.
   Thread: owner.
   See: pr_deadline_in. */
PRISTINE_API int pr_sleep(int64_t deadline);

/* Wait until a non-blocking fd may be readable or writable. Try the
   operation first and wait only on EAGAIN; a wake-up may be spurious, so
   retry the operation and wait again if it still says EAGAIN. Error and
   hang-up conditions count as ready. The fd is registered with the poller on
   first use and stays registered until pr_fd_forget.
   Params: fd - the descriptor; kinds - PR_WAIT_READ, PR_WAIT_WRITE or both;
           deadline - absolute ms.
   Returns: PR_OK; PR_ETIMEDOUT; PR_ECANCELED; PR_ECLOSED (pr_fd_forget was
            called on fd meanwhile); PR_ESTATE (another task already waits on
            fd for the same kind); PR_EINVAL (bad fd or kinds); PR_EIO (the
            poller refused the fd); PR_ENOMEM.
   Blocks: yes.
   Thread: owner.
   See: pr_fd_forget. */
PRISTINE_API int pr_fd_wait(int fd, int kinds, int64_t deadline);

/* Read up to n bytes from a non-blocking fd, waiting while none are there.
   The scheduler remembers when an fd was drained (EAGAIN, or a short read
   from a byte stream: a stream socket or a pipe) and then waits for the
   poller's word before reading again, so a stream of small messages costs
   one read per message, not two. A deadline in the past still tries the
   read once.
   Params: fd - a non-blocking descriptor (socket, pipe); buf, n - where to
           put the bytes (n > 0); deadline - absolute ms.
   Returns: bytes read (> 0); PR_ECLOSED at end of stream; PR_EIO (errno
            holds the system error); PR_ETIMEDOUT; PR_ECANCELED; PR_EINVAL;
            PR_ENOMEM; PR_ESTATE (another task reads fd).
   Blocks: yes.
   Thread: owner.
   See: pr_fd_write, pr_fd_wait. */
PRISTINE_API ptrdiff_t pr_fd_read(int fd, void *buf, size_t n, int64_t deadline);

/* Write up to n bytes to a non-blocking fd, waiting while none can be
   written. Sockets are written with MSG_NOSIGNAL: a closed peer is
   PR_ECLOSED, never SIGPIPE. Call again for the rest after a short count.
   A deadline in the past still tries the write once.
   Params: fd - a non-blocking descriptor; buf, n - the bytes (n > 0);
           deadline - absolute ms.
   Returns: bytes written (> 0); PR_ECLOSED (peer gone); PR_EIO (errno holds
            the system error); PR_ETIMEDOUT; PR_ECANCELED; PR_EINVAL;
            PR_ENOMEM; PR_ESTATE (another task writes fd).
   Blocks: yes.
   Thread: owner.
   See: pr_fd_read, pr_fd_wait. */
PRISTINE_API ptrdiff_t pr_fd_write(int fd, const void *buf, size_t n, int64_t deadline);

/* Drop fd from the poller before closing it (so a reused fd number starts
   fresh). Tasks waiting on fd wake with PR_ECLOSED.
   Params: fd - the descriptor.
   Returns: PR_OK; PR_EINVAL for a negative fd.
   Blocks: no.
   Thread: owner.
   See: pr_fd_wait. */
PRISTINE_API int pr_fd_forget(int fd);

/* The calling thread's scheduler (created on first use), as a target for
   pr_sched_post from other threads. Also prepares the cross-thread wake fd.
   Params: none.
   Returns: the scheduler, or NULL when it cannot be created (no memory or
            no file descriptors).
   Blocks: no.
   Thread: owner.
   See: pr_sched_post. */
PRISTINE_API pr_sched *pr_sched_current(void);

/* Hand fn(user_data) to scheduler s: it runs soon on s's thread, inside
   the poller, so fn must not block: there, every blocking call acts as if
   its deadline had passed (PR_ETIMEDOUT, or PR_OK for pr_sleep and
   pr_yield) and no cancellation applies. It may spawn tasks, send on
   channels, resolve futures. The caller must ensure s is not destroyed
   before fn runs.
   Params: s - from pr_sched_current on the target thread; fn - the function;
           user_data - its argument.
   Returns: PR_OK; PR_EINVAL (s or fn NULL); PR_ENOMEM.
   Blocks: no.
   Thread: any.
   See: pr_sched_current. */
PRISTINE_API int pr_sched_post(pr_sched *s, void (*fn)(void *user_data), void *user_data);

/* Free the calling thread's scheduler: cancel every remaining task, run
   them until they return, free them and every pooled stack. A later
   pristine call on the thread creates a fresh scheduler. Call it before a
   thread exits (and at the end of main if leak checkers should stay quiet).
   Params: none.
   Returns: PR_OK (also when there was no scheduler); PR_ESTATE when called
            from a spawned task rather than the thread's main task.
   Blocks: no (it waits only for cancelled tasks to unwind).
   Thread: owner.
   See: pr_cancel. */
PRISTINE_API int pr_sched_destroy(void);

/* The file descriptor a host event loop watches to run this thread's
   scheduler from its own callbacks (see pr_sched_step): it turns readable
   when the scheduler has something to do: I/O a task waits for, work from
   pr_sched_post, a caught signal (pr_signal_watch_start), a task made
   ready by host code (pr_go, pr_cancel from a host callback). Timers do
   not: the host's own timer, set to pr_sched_step's next deadline, covers
   them. It is the scheduler's epoll or kqueue fd: watch it for
   readability only (level-triggered; uv_poll_t, GSource, QSocketNotifier,
   poll(2)), never read from or close it; stop watching before
   pr_sched_destroy closes it. The first call also prepares the wake fd
   (as pr_sched_current does); later calls return the same fd. With the
   poll(2) back end (PRISTINE_POLL_POLL, or a platform with neither epoll
   nor kqueue) there is no single fd: it returns PR_ENOTSUP, and a host
   must call pr_sched_step on a short timer of its own to notice I/O.
   Params: err - receives why it failed (NULL = not wanted).
   Returns: the fd (>= 0); PR_ENOTSUP (the poll(2) back end); PR_ENOMEM (no
            scheduler or wake fd: memory or file descriptors).
   Blocks: no.
   Thread: owner.
   See: pr_sched_step. */
PRISTINE_API int pr_sched_fd(pr_err_info *err);

/* Run the calling thread's scheduler from a host event loop, without
   blocking: look at I/O and timers without waiting, run every task that is
   ready, and again while that made others ready; return when every task
   waits (or after 64 such rounds, so a task that keeps yielding cannot
   hold the host: then *next_deadline is now). The host calls it when the
   pr_sched_fd fd is readable and when *next_deadline passes:

       int fd = pr_sched_fd(NULL);          // watch fd for readability
       int64_t next;
       pr_go(&t, body, arg, NULL);          // tasks do the work
       ...in the host's callbacks (fd readable, its timer fired):
       pr_sched_step(&next);                // re-arm the timer for next
                                            // (PR_FOREVER: none)

   Host callbacks may call the non-blocking calls (pr_go, pr_cancel,
   pr_join with a past deadline, a channel send with one): a task they make
   ready turns the fd readable. A blocking call on the main stack still
   works, but the host loop stands still until it returns (the scheduler
   waits in its own poller meanwhile): give such work to a task.
   Params: next_deadline - receives the absolute ms (pr_now clock) by which
           to call it again even if the fd stays quiet: the earliest timer
           of a waiting task, PR_FOREVER when none, now when tasks are
           still ready or more I/O events may be waiting; may be NULL.
   Returns: PR_OK; PR_ESTATE (called from a task, from a posted function,
            or from inside a step: only the thread's own stack steps its
            scheduler); PR_ENOMEM (no scheduler).
   Blocks: no (tasks run meanwhile, but it never waits).
   Thread: owner.
   See: pr_sched_fd, pr_sched_post. */
PRISTINE_API int pr_sched_step(int64_t *next_deadline);

/* Create a task group (nursery).
   Params: out - receives the group.
   Returns: PR_OK; PR_ENOMEM; PR_EINVAL if out is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_group_go, pr_group_close. */
PRISTINE_API int pr_group_create(pr_group **out);

/* Spawn a task owned by the group; its result is discarded.
   Params: g - the group; fn, user_data, opts - as for pr_go.
   Returns: PR_OK; PR_ENOMEM; PR_EINVAL; PR_ESTATE if the group is closing.
   Blocks: no.
   Thread: owner.
   See: pr_go. */
PRISTINE_API int pr_group_go(pr_group *g, pr_task_fn fn, void *user_data, const pr_spawn_opts *opts);

/* Wait until every child of the group has returned (without cancelling).
   Params: g - the group; deadline - absolute ms.
   Returns: PR_OK; PR_ETIMEDOUT; PR_ECANCELED; PR_ESTATE (another task
            already waits on g, or the caller is a child of g); PR_EINVAL.
   Blocks: yes.
   Thread: owner.
   See: pr_group_close. */
PRISTINE_API int pr_group_wait(pr_group *g, int64_t deadline);

/* Close the group: cancel every child, wait for all of them to return, and
   free the group. It waits even when the caller itself is cancelled, since
   its children are unwinding; only the deadline stops it.
   Params: g - the group (NULL is a no-op); deadline - absolute ms.
   Returns: PR_OK (g is freed); PR_ETIMEDOUT (children still unwinding; g is
            still valid: call again); PR_ESTATE (another task waits on g, or
            the caller is a child of g: it would wait for itself).
            It never returns PR_ECANCELED: cancellation does not stop a close.
   Blocks: yes.
   Thread: owner.
   See: pr_group_create. */
PRISTINE_API int pr_group_close(pr_group *g, int64_t deadline);

/* Create a channel carrying values of elem_size bytes.
   Params: out - receives the channel; elem_size - bytes per value (>0);
           capacity - buffered values; 0 makes an unbuffered channel, where a
           send completes only when a receiver takes the value.
   Returns: PR_OK; PR_ENOMEM; PR_EINVAL (out NULL, elem_size 0 or overflow).
   Blocks: no.
   Thread: owner.
   See: pr_chan_send, pr_chan_recv, pr_chan_close. */
PRISTINE_API int pr_chan_create(pr_chan **out, size_t elem_size, size_t capacity);

/* Send one value (elem_size bytes copied from elem).
   Params: c - the channel; elem - the value; deadline - absolute ms.
   Returns: PR_OK; PR_ECLOSED (the channel is closed; nothing was sent);
            PR_ETIMEDOUT; PR_ECANCELED; PR_EINVAL.
   Blocks: yes.
   Thread: owner.
   See: pr_chan_recv, pr_chan_choose. */
PRISTINE_API int pr_chan_send(pr_chan *c, const void *elem, int64_t deadline);

/* Receive one value into elem. Values buffered before a close are still
   delivered; after them, PR_ECLOSED.
   Params: c - the channel; elem - elem_size bytes of storage; deadline -
           absolute ms.
   Returns: PR_OK; PR_ECLOSED; PR_ETIMEDOUT; PR_ECANCELED; PR_EINVAL.
   Blocks: yes.
   Thread: owner.
   See: pr_chan_send, pr_chan_choose. */
PRISTINE_API int pr_chan_recv(pr_chan *c, void *elem, int64_t deadline);

/* Wait until one of several send/receive operations can complete, and
   complete exactly that one. When several are ready at once the choice
   rotates, so no operation starves.
   Params: ops - the operations (their result fields are outputs); n - how
           many (>0); deadline - absolute ms.
   Returns: the index (>= 0) of the operation done, whose result field is
            PR_OK or PR_ECLOSED; or PR_ETIMEDOUT; PR_ECANCELED; PR_ENOMEM
            (more than 8 operations and no memory); PR_EINVAL.
   Blocks: yes.
   Thread: owner.
   See: pr_chan_send, pr_chan_recv. */
PRISTINE_API int pr_chan_choose(pr_chan_op *ops, size_t n, int64_t deadline);

/* Close a channel: later sends fail with PR_ECLOSED, receivers drain the
   buffered values and then get PR_ECLOSED, and every waiting task wakes.
   Params: c - the channel.
   Returns: PR_OK; PR_ESTATE if already closed; PR_EINVAL if c is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_chan_destroy. */
PRISTINE_API int pr_chan_close(pr_chan *c);

/* Close (if needed) and free a channel. NULL is a no-op.
   Params: c - the channel.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_chan_create. */
PRISTINE_API void pr_chan_destroy(pr_chan *c);

/* Catch signals (Ctrl-C) and turn the first one into a cancellation: the
   handler only records it and wakes the calling thread's scheduler, which
   then cancels `cancel` (as pr_cancel: its blocking call returns
   PR_ECANCELED) and wakes the tasks in pr_signal_wait. That first signal
   also puts the previous handlers back, so a second one acts as it would
   without the watch (SIGINT's default: the process ends). One watch per
   process, owned by the calling thread (its scheduler acts on the signal,
   whichever thread the signal lands on); a task freed (pr_join, or a
   detached one returning) before the signal is forgotten. The handler keeps
   errno and uses SA_RESTART.
   Params: out - receives the watch; signals, nsignals - the signals to
           catch (NULL, 0 = SIGINT and SIGTERM; duplicates are ignored);
           cancel - the task to cancel on the signal (NULL = none: only
           pr_signal_wait hears it); err - receives why it failed (NULL =
           not wanted).
   Returns: PR_OK; PR_ESTATE (a watch is already running in the process);
            PR_EINVAL (out NULL, a signal that cannot be caught: SIGKILL,
            SIGSTOP, out of range; err's sys_errno is sigaction's);
            PR_ENOMEM (no memory, or no scheduler or wake fd).
   Blocks: no.
   Thread: owner.
   See: pr_signal_wait, pr_signal_watch_stop. */
PRISTINE_API int pr_signal_watch_start(pr_signal_watch **out, const int *signals, size_t nsignals, pr_task *cancel,
                                       pr_err_info *err);

/* Wait for the watch's signal. After it came, every call returns its
   number at once (a deadline in the past asks without waiting).
   Params: w - the watch; deadline - absolute ms.
   Returns: the signal number (> 0); PR_ETIMEDOUT; PR_ECANCELED;
            PR_ECLOSED (the watch was stopped, or its scheduler destroyed,
            before a signal came); PR_EINVAL (w NULL); PR_ENOMEM.
   Blocks: yes.
   Thread: owner.
   See: pr_signal_watch_start. */
PRISTINE_API int pr_signal_wait(pr_signal_watch *w, int64_t deadline);

/* Stop the watch and free it: the previous handlers are back (unless a
   signal already put them back), and tasks in pr_signal_wait return
   PR_ECLOSED. A signal caught but not yet acted on is dropped. NULL is a
   no-op.
   Params: w - the watch.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_signal_watch_start. */
PRISTINE_API void pr_signal_watch_stop(pr_signal_watch *w);

/* ==== sync: FIFO wait queues, counting and weighted semaphores ==== >>sync */
/*
 * sync: tasks of one scheduler waiting their turn, in order.
 *
 * - pr_sem, a counting semaphore (at most `permits` holders at once), and
 *   pr_wsem, a weighted one (a budget, of bytes say, that admits while it
 *   is not negative, so one request larger than the whole budget still runs
 *   when nothing else does). Waiters are served in FIFO order; a deadline
 *   or cancellation while waiting leaves the count exactly as it was;
 *   destroying one wakes its waiters with PR_ECLOSED.
 *
 * Semaphores belong to the thread that created them, like every object of
 * a scheduler; their updates never interleave (tasks switch only when they
 * block), so concurrent tasks never lose an update.
 *
 * For the modules after it: the FIFO wait queues (pr__sync_fifo, pr__sync_waiter:
 * pr__sync_fifo_park parks the calling task in order until it is granted, the
 * queue is closed, its deadline passes or it is cancelled;
 * pr__sync_fifo_wake_all wakes them all), which retry's backoff windows,
 * telemetry's reporter and the ds producer wait on.
 *
 * Offers to the modules after it: pr__sync_fifo*, pr__sync_waiter.
 */

/* A counting semaphore: at most `permits` holders at once. Opaque. */
typedef struct pr_sem pr_sem;
/* A weighted semaphore (a budget of bytes, say): an acquire of w takes w
   from the budget; it waits only while the budget is negative, so one
   request larger than the whole budget still runs when nothing else does.
   Opaque. */
typedef struct pr_wsem pr_wsem;

/* Create a counting semaphore.
   Params: out - receives it; permits - > 0.
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_sem_acquire. */
PRISTINE_API int pr_sem_create(pr_sem **out, int64_t permits);

/* Free a semaphore; tasks still waiting wake with PR_ECLOSED. NULL is a
   no-op.
   Params: s - the semaphore.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_sem_create. */
PRISTINE_API void pr_sem_destroy(pr_sem *s);

/* Take a permit, waiting in FIFO order while none is free. A deadline or
   cancellation while waiting leaves the count exactly as it was.
   Params: s - the semaphore; deadline - absolute ms.
   Returns: PR_OK (release it later); PR_ETIMEDOUT; PR_ECANCELED;
            PR_ECLOSED (destroyed while waiting); PR_EINVAL; PR_ENOMEM.
   Blocks: yes.
   Thread: owner.
   See: pr_sem_release. */
PRISTINE_API int pr_sem_acquire(pr_sem *s, int64_t deadline);

/* Take a permit only if one is free now (never waits, never jumps ahead
   of waiting tasks).
   Params: s - the semaphore.
   Returns: PR_OK; PR_ETIMEDOUT (none free: what a deadline in the past
            gives); PR_EINVAL.
   Blocks: no.
   Thread: owner.
   See: pr_sem_acquire. */
PRISTINE_API int pr_sem_try_acquire(pr_sem *s);

/* Give a permit back; the longest waiter gets it.
   Params: s - the semaphore.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_sem_acquire. */
PRISTINE_API void pr_sem_release(pr_sem *s);

/* Permits free now.
   Params: s - the semaphore.
   Returns: the count (0 for NULL).
   Blocks: no.
   Thread: owner.
   See: pr_sem_waiting. */
PRISTINE_API int64_t pr_sem_available(const pr_sem *s);

/* Tasks waiting for a permit.
   Params: s - the semaphore.
   Returns: the count (0 for NULL).
   Blocks: no.
   Thread: owner.
   See: pr_sem_available. */
PRISTINE_API size_t pr_sem_waiting(const pr_sem *s);

/* Create a weighted semaphore.
   Params: out - receives it; budget - the starting budget (> 0).
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_wsem_acquire. */
PRISTINE_API int pr_wsem_create(pr_wsem **out, int64_t budget);

/* Free a weighted semaphore; waiting tasks wake with PR_ECLOSED. NULL is a
   no-op.
   Params: w - the semaphore.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_wsem_create. */
PRISTINE_API void pr_wsem_destroy(pr_wsem *w);

/* Take weight from the budget: at once when the budget is >= 0 and nobody
   waits (even if it goes negative), else wait in FIFO order. A deadline or
   cancellation while waiting leaves the budget exactly as it was.
   Params: w - the semaphore; weight - >= 0; deadline - absolute ms.
   Returns: PR_OK (release the same weight later); PR_ETIMEDOUT;
            PR_ECANCELED; PR_ECLOSED; PR_EINVAL; PR_ENOMEM.
   Blocks: yes.
   Thread: owner.
   See: pr_wsem_release. */
PRISTINE_API int pr_wsem_acquire(pr_wsem *w, int64_t weight, int64_t deadline);

/* Take weight only if that is possible now (never waits).
   Params: w - the semaphore; weight - >= 0.
   Returns: PR_OK; PR_ETIMEDOUT (the budget is negative or others wait);
            PR_EINVAL.
   Blocks: no.
   Thread: owner.
   See: pr_wsem_acquire. */
PRISTINE_API int pr_wsem_try_acquire(pr_wsem *w, int64_t weight);

/* Give weight back; waiters are admitted in FIFO order while the budget is
   >= 0, each taking its weight, stopping once it turns negative.
   Params: w - the semaphore; weight - what was acquired.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_wsem_acquire. */
PRISTINE_API void pr_wsem_release(pr_wsem *w, int64_t weight);

/* The budget now (negative while over-committed).
   Params: w - the semaphore.
   Returns: the budget (0 for NULL).
   Blocks: no.
   Thread: owner.
   See: pr_wsem_acquire. */
PRISTINE_API int64_t pr_wsem_budget(const pr_wsem *w);

/* ==== future: in-process promises and futures; a task's result as a future ==== >>future */
/*
 * future: a pr_future is a value that arrives later. Its producer settles
 * it once (pr_future_resolve with a pointer, or pr_future_reject with a
 * PR_E* code); any number of tasks wait for it with pr_future_await. A
 * future belongs to the scheduler of the thread that created it; to settle
 * it from another thread, pr_sched_post a function that does.
 *
 * Lifetime: futures are reference-counted. pr_future_create and
 * pr_future_go hand the caller one reference; pr_future_retain adds one
 * (give one to each independent owner, e.g. the producer), and
 * pr_future_destroy drops one. The last drop frees it; a pending future
 * freed that way simply never settles.
 *
 * Timeouts do not cancel: when pr_future_await times out the future stays
 * pending and the producer keeps going. pr_future_cancel is the explicit
 * way to give up; it runs the producer's cancel hook.
 */

typedef struct pr_future pr_future;

/* Settlement states reported by pr_future_state. */
enum pr_future_state_kind { PR_FUTURE_PENDING = 0, PR_FUTURE_RESOLVED = 1, PR_FUTURE_REJECTED = 2 };

/* Create a pending future, owned by the calling thread.
   Params: out - receives it, holding one reference.
   Returns: PR_OK; PR_ENOMEM; PR_EINVAL if out is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_future_resolve, pr_future_await, pr_future_destroy. */
PRISTINE_API int pr_future_create(pr_future **out);

/* Add a reference.
   Params: f - the future.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_future_destroy. */
PRISTINE_API void pr_future_retain(pr_future *f);

/* Drop a reference; the last one frees the future. NULL is a no-op.
   Params: f - the future.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_future_retain. */
PRISTINE_API void pr_future_destroy(pr_future *f);

/* Settle the future with a value and wake every awaiting task.
   Params: f - the future; value - any pointer (borrowed: the future does not
           own or free it).
   Returns: PR_OK; PR_ESTATE if it was already settled (or cancelled);
            PR_EINVAL if f is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_future_reject. */
PRISTINE_API int pr_future_resolve(pr_future *f, void *value);

/* Settle the future with an error and wake every awaiting task.
   Params: f - the future; code - a negative PR_E* code.
   Returns: PR_OK; PR_ESTATE if already settled; PR_EINVAL if f is NULL or
            code is not negative.
   Blocks: no.
   Thread: owner.
   See: pr_future_resolve. */
PRISTINE_API int pr_future_reject(pr_future *f, int code);

/* Wait for the future to settle.
   Params: f - the future; out - receives the value when resolved (may be
           NULL); deadline - absolute ms.
   Returns: PR_OK (resolved; *out set); the rejection code when it was
            rejected (PR_ECANCELED after pr_future_cancel); PR_ETIMEDOUT (the
            future stays pending); PR_ECANCELED (the awaiting task was
            cancelled); PR_EINVAL (f is NULL); PR_ENOMEM (no scheduler).
            pr_future_state tells a cancelled future from a cancelled waiter.
   Blocks: yes.
   Thread: owner.
   See: pr_future_state. */
PRISTINE_API int pr_future_await(pr_future *f, void **out, int64_t deadline);

/* Where the future stands.
   Params: f - the future.
   Returns: PR_FUTURE_PENDING, PR_FUTURE_RESOLVED or PR_FUTURE_REJECTED (all
            >= 0); PR_EINVAL (negative) if f is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_future_await. */
PRISTINE_API int pr_future_state(const pr_future *f);

/* Give up on a pending future: it is rejected with PR_ECANCELED, awaiting
   tasks wake, and the producer's cancel hook runs (for pr_future_go, the
   task is cancelled).
   Params: f - the future.
   Returns: PR_OK; PR_ESTATE if already settled; PR_EINVAL if f is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_future_on_cancel. */
PRISTINE_API int pr_future_cancel(pr_future *f);

/* Set the producer's cancel hook, called once by pr_future_cancel.
   Params: f - the future; fn - the hook (NULL removes it); user_data - its
           argument.
   Returns: PR_OK; PR_EINVAL if f is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_future_cancel. */
PRISTINE_API int pr_future_on_cancel(pr_future *f, void (*fn)(void *user_data), void *user_data);

/* Reject the future with a code and its detail (copied), for
   pr_future_last_error to report.
   Params: f - the future; info - the detail; info->code (negative) is the
           rejection code.
   Returns: PR_OK; PR_ESTATE if already settled; PR_EINVAL if f or info is
            NULL or info->code is not negative; PR_ENOMEM (the future is
            still rejected, without the detail).
   Blocks: no.
   Thread: owner.
   See: pr_future_last_error. */
PRISTINE_API int pr_future_reject_info(pr_future *f, const pr_err_info *info);

/* The detail of a rejected future: what pr_future_reject_info gave, or
   just the code (with its text) for a plain rejection.
   Params: f - the future; out - receives the detail.
   Returns: PR_OK; PR_ESTATE (the future is pending or resolved: *out is
            zeroed); PR_EINVAL.
   Blocks: no.
   Thread: owner.
   See: pr_future_reject_info. */
PRISTINE_API int pr_future_last_error(const pr_future *f, pr_err_info *out);

/* The value of a resolved future (what pr_future_await would give).
   Params: f - the future.
   Returns: the value; NULL when f is NULL, pending or rejected.
   Blocks: no.
   Thread: owner.
   See: pr_future_await. */
PRISTINE_API void *pr_future_value(const pr_future *f);

/* Give the future's value a destructor: when the last reference goes and
   the future was resolved, free_value(value, user_data) runs. For
   producers whose value the future owns (a parsed document, say).
   Params: f - the future; free_value - the destructor (NULL removes it);
           user_data - its last argument.
   Returns: PR_OK; PR_EINVAL if f is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_future_destroy. */
PRISTINE_API int pr_future_on_free(pr_future *f, void (*free_value)(void *value, void *user_data), void *user_data);

/* pr_future_await_all flags. */
#define PR_AWAIT_FAIL_FAST 1 /* return at the first rejection, without waiting for the rest */

/* Wait until every future of fs is settled (or, with PR_AWAIT_FAIL_FAST,
   until one is rejected). Values are then read with pr_future_value, in
   input order. Work is linear in n however the futures settle.
   Params: fs, n - the futures (none NULL); flags - 0 or PR_AWAIT_FAIL_FAST;
           failed - receives the index of the rejected future reported (may
           be NULL); deadline - absolute ms.
   Returns: PR_OK (all resolved); the rejection code of the first rejected
            future in input order (with PR_AWAIT_FAIL_FAST: the first to be
            rejected), *failed set; PR_ETIMEDOUT or PR_ECANCELED (the waiter
            gave up: the futures keep going); PR_EINVAL; PR_ENOMEM.
   Blocks: yes.
   Thread: owner.
   See: pr_future_await, pr_future_value. */
PRISTINE_API int pr_future_await_all(pr_future *const *fs, size_t n, int flags, size_t *failed, int64_t deadline);

/* Run fn(user_data) as a task and get its result as a future: a result
   r >= 0 resolves it with the value (void *)(intptr_t)r, a negative r
   rejects it with r. Cancelling the future cancels the task.
   Params: out - receives the future (one reference); fn, user_data, opts -
           as for pr_go.
   Returns: PR_OK; PR_ENOMEM; PR_EINVAL.
   Blocks: no.
   Thread: owner.
   See: pr_go, pr_future_await. */
PRISTINE_API int pr_future_go(pr_future **out, pr_task_fn fn, void *user_data, const pr_spawn_opts *opts);

/* ==== retry: backoff and jitter, retry runner, server hints, circuit breaker, backoff window ==== >>retry */
/*
 * retry: the policies that keep a client alive against real servers.
 *
 * - pr_backoff is a value: a strategy (exponential, linear, constant or
 *   decorrelated), a base, a cap and a jitter kind. pr_backoff_delay is a
 *   pure function of (policy, attempt, previous delay, random number). The
 *   PR_BACKOFF_* presets are the policies of common SDKs, ready to copy:
 *   `pr_backoff b = PR_BACKOFF_HTTP;`.
 * - The retry runner repeats an attempt while its classifier says so,
 *   sleeping the backoff (or the delay a server asked for) in between. It
 *   never sleeps past the caller's deadline, max_elapsed_ms or the progress
 *   timeout: when the next sleep would cross one, it stops at once and the
 *   last attempt's outcome is the result. Loop form: pr_retry_begin, then
 *   pr_retry_next after every attempt; or pr_retry_run with a callback.
 * - Server hints, pure: Retry-After (decimal seconds or an HTTP-date in
 *   the three formats of RFC 9110), retry-after-ms, x-should-retry, and
 *   which HTTP statuses are worth retrying.
 * - pr_breaker: a circuit breaker (closed / open / half-open) with a
 *   registry so that many clients share one breaker per upstream.
 * - pr_backoff_window: per-key "do not send before" deadlines (a 429
 *   pauses every task that talks to that upstream; its waiters queue on
 *   sync's FIFO wait queues).
 *
 * Time and chance: the runner reads pr_now() and takes its random numbers
 * (base's pr_random), its sleep (pr_sleep) and the wall clock (time's, for
 * HTTP-dates) from pr_retry_hooks, so a test can make every delay exact
 * and instant. Breakers and windows belong to the thread that created
 * them, like every object of a scheduler; their updates never interleave
 * (tasks switch only when they block), so concurrent tasks never lose an
 * update. The semaphores are sync's (pr_sem, pr_wsem).
 *
 * For the modules after it (client, eventsource, rfuture, telemetry, ds):
 * pr__retry_delay_ms (a backoff delay in whole ms, jittered through the
 * hooks), pr__retry_hook_sleep (a sleep through the hooks) and
 * pr__retry_off (the policy of a request that must not be retried).
 *
 * Offers to the modules after it: pr__retry_delay_ms, pr__retry_hook_sleep,
 *     pr__retry_off.
 */

/* Backoff strategies: how the nominal delay grows with the attempt number a
   (a = 0 for the first retry). */
enum pr_backoff_strategy {
    PR_BACKOFF_EXPONENTIAL = 0, /* base * 2^a */
    PR_BACKOFF_LINEAR = 1,      /* base * (a + 1) */
    PR_BACKOFF_CONSTANT = 2,    /* base */
    PR_BACKOFF_DECORRELATED = 3 /* first base, then uniform(base, 3 * previous delay), capped; jitter unused */
};

/* Jitter kinds, applied to the capped delay d with a random r in [0, 1). */
enum pr_jitter_kind {
    PR_JITTER_NONE = 0,     /* d */
    PR_JITTER_FACTOR = 1,   /* d * (1 - j + r*j): in [d*(1-j), d) */
    PR_JITTER_ADDITIVE = 2, /* d + r*d*j: in [d, d*(1+j)), then capped again */
    PR_JITTER_RANGE = 3,    /* d * (min + r*(max - min)), then capped again */
    PR_JITTER_DOWN = 4      /* d * (1 - j*r): in (d*(1-j), d], exactly d for r = 0 */
};

/* A backoff policy. A value type: copy a preset or fill every field. */
typedef struct pr_backoff {
    int strategy;         /* PR_BACKOFF_* */
    int jitter;           /* PR_JITTER_* */
    int64_t base_ms;      /* > 0 */
    int64_t max_ms;       /* the cap, >= base_ms; PR_BACKOFF_UNCAPPED (0) = no cap */
    double jitter_factor; /* j for FACTOR, DOWN (0..1) and ADDITIVE (>= 0); 0 = no jitter */
    double range_min;     /* RANGE: 0 <= range_min <= range_max */
    double range_max;
} pr_backoff;

/* pr_backoff.max_ms: no cap (delays saturate near 9.2e18 ms, never overflow). */
#define PR_BACKOFF_UNCAPPED 0

/* Presets (brace initialisers: `pr_backoff b = PR_BACKOFF_HTTP;`). */
/* HTTP request retries (Stainless SDKs, Tinker): 500 ms * 2^a capped at 10 s,
   times (1 - 0.25 r): 500, 1000, 2000, 4000, 8000, 10000, ... at most. */
#define PR_BACKOFF_HTTP { PR_BACKOFF_EXPONENTIAL, PR_JITTER_DOWN, 500, 10000, 0.25, 0.0, 0.0 }
/* Operation retries (Tinker's retry handler): 500 ms * 2^a +-25 %, capped at 10 s. */
#define PR_BACKOFF_OPERATION { PR_BACKOFF_EXPONENTIAL, PR_JITTER_RANGE, 500, 10000, 0.0, 0.75, 1.25 }
/* Submission retries, and remote-future polling after 429 and connection
   errors: 1, 2, 4, 8, 16, 30, 30, ... s, no jitter. */
#define PR_BACKOFF_SUBMIT { PR_BACKOFF_EXPONENTIAL, PR_JITTER_NONE, 1000, 30000, 0.0, 0.0, 0.0 }
/* A polling interval that grows: 1 s doubling up to 10 s. */
#define PR_BACKOFF_POLL_INTERVAL { PR_BACKOFF_EXPONENTIAL, PR_JITTER_NONE, 1000, 10000, 0.0, 0.0, 0.0 }
/* Telemetry batch resends: 1 s * 2^a plus up to 10 %, uncapped (used for 3 retries). */
#define PR_BACKOFF_TELEMETRY { PR_BACKOFF_EXPONENTIAL, PR_JITTER_ADDITIVE, 1000, PR_BACKOFF_UNCAPPED, 0.1, 0.0, 0.0 }
/* A flat 1 s between resends. */
#define PR_BACKOFF_FLAT_1S { PR_BACKOFF_CONSTANT, PR_JITTER_NONE, 1000, 1000, 0.0, 0.0, 0.0 }
/* Polling for a free slot: 2 ms doubling to 50 ms, times [0.75, 1). */
#define PR_BACKOFF_ACQUIRE { PR_BACKOFF_EXPONENTIAL, PR_JITTER_FACTOR, 2, 50, 0.25, 0.0, 0.0 }
/* A billing pause: a flat 5 s. */
#define PR_BACKOFF_BILLING { PR_BACKOFF_CONSTANT, PR_JITTER_NONE, 5000, 5000, 0.0, 0.0, 0.0 }
/* AWS's "full jitter": uniform(0, min(cap, base * 2^a)), here 100 ms to 20 s. */
#define PR_BACKOFF_FULL_JITTER { PR_BACKOFF_EXPONENTIAL, PR_JITTER_RANGE, 100, 20000, 0.0, 0.0, 1.0 }
/* AWS's "decorrelated jitter", 100 ms to 20 s. */
#define PR_BACKOFF_DECORRELATED_JITTER { PR_BACKOFF_DECORRELATED, PR_JITTER_NONE, 100, 20000, 0.0, 0.0, 0.0 }

/* Check a backoff policy.
   Params: b - the policy.
   Returns: PR_OK; PR_EINVAL for an unknown strategy or jitter kind,
            base_ms <= 0, max_ms < 0 or below base_ms, a jitter_factor
            below 0 (or above 1 for FACTOR and DOWN), a range with
            range_min < 0 or range_min > range_max, NaN anywhere, or b NULL.
   Blocks: no.
   Thread: any.
   See: pr_backoff_delay. */
PRISTINE_API int pr_backoff_check(const pr_backoff *b);

/* The delay before retry `attempt` (0 = the first retry): nominal delay by
   strategy, capped, jittered with r, never negative, never above the cap
   (additive and range jitter included), saturating instead of overflowing.
   Pure: the same inputs give the same delay.
   Params: b - the policy; attempt - retries already taken (>= 0);
           prev_ms - the previous delay of this sequence, read only by
           PR_BACKOFF_DECORRELATED (<= 0 = none yet); r - a random number
           in [0, 1) (clamped into it; NaN counts as 0).
   Returns: the delay in ms, fractional (>= 0); PR_EINVAL (negative) for an
            invalid policy or a negative attempt.
   Blocks: no.
   Thread: any.
   See: pr_backoff_check, pr_random. */
PRISTINE_API double pr_backoff_delay(const pr_backoff *b, int attempt, double prev_ms, double r);

/* Time and chance for the runner. Every NULL field means the real thing. */
typedef struct pr_retry_hooks {
    double (*random)(void *user_data);                         /* NULL = pr_random */
    int (*sleep)(int64_t delay_ms, int64_t deadline, void *user_data); /* NULL = pr_sleep(deadline);
                                                                  return PR_OK or PR_ECANCELED */
    int64_t (*wall_clock_ms)(void *user_data);                 /* NULL = the system clock: ms since
                                                                  1970 UTC (for HTTP-date hints) */
    void *user_data;
} pr_retry_hooks;

/* Classifier verdicts. */
enum pr_retry_verdict {
    PR_RETRY_OK = 0,    /* success: stop (and it counts as progress) */
    PR_RETRY_FAIL = 1,  /* a failure not worth retrying: stop */
    PR_RETRY_AGAIN = 2, /* retry after the backoff delay */
    PR_RETRY_AFTER = 3  /* retry after *after_ms (a server hint), not the backoff */
};

/* pr_retry_policy.max_retries values besides a count. */
#define PR_RETRY_OFF (-1)       /* one attempt, no retries */
#define PR_RETRY_UNLIMITED (-2) /* no count limit (the deadline and timeouts still apply) */

/* Why pr_retry_next stopped (pr_retry.stop). */
enum pr_retry_stop {
    PR_RETRY_GOING = 0,    /* not stopped */
    PR_RETRY_DONE = 1,     /* the classifier said PR_RETRY_OK */
    PR_RETRY_FATAL = 2,    /* the classifier said PR_RETRY_FAIL */
    PR_RETRY_EXHAUSTED = 3,/* max_retries were taken */
    PR_RETRY_ELAPSED = 4,  /* the next sleep would end past max_elapsed_ms */
    PR_RETRY_STALLED = 5,  /* the next sleep would end past the progress timeout */
    PR_RETRY_DEADLINE = 6, /* the next sleep would end past the caller's deadline */
    PR_RETRY_CANCELED = 7  /* the task was cancelled (the outcome became PR_ECANCELED) */
};

/* What the on_retry hook is told before each sleep. */
typedef struct pr_retry_info {
    int retry;          /* 0 for the first retry, 1 for the second, ... */
    int outcome;        /* the failed attempt's outcome */
    int verdict;        /* PR_RETRY_AGAIN or PR_RETRY_AFTER */
    int64_t delay_ms;   /* the sleep about to start */
    int64_t elapsed_ms; /* since pr_retry_begin */
} pr_retry_info;

/* A retry policy. Zero in every field means the defaults of HTTP clients:
   10 retries, PR_BACKOFF_HTTP, no elapsed or progress limit. */
typedef struct pr_retry_policy {
    int max_retries;             /* 0 = 10; PR_RETRY_OFF; PR_RETRY_UNLIMITED; else the count */
    int64_t max_elapsed_ms;      /* 0 = none: give up rather than sleep past begin + this */
    int64_t progress_timeout_ms; /* 0 = none: give up rather than sleep past the last
                                    recorded progress (pr_retry_progress, or a success) + this */
    pr_backoff backoff;          /* base_ms 0 = PR_BACKOFF_HTTP */
    /* Decide what an outcome means; *after_ms (preset to -1) is read for
       PR_RETRY_AFTER. NULL = pr_retry_classify_default. */
    int (*classify)(int outcome, int64_t *after_ms, void *user_data);
    void (*on_retry)(const pr_retry_info *info, void *user_data); /* NULL = none */
    void *user_data;             /* for classify and on_retry */
    pr_retry_hooks hooks;
} pr_retry_policy;

/* The state of one retried operation (caller-allocated; read the fields,
   do not write them). */
typedef struct pr_retry {
    pr_retry_policy policy;  /* resolved copy */
    int retries;             /* retries taken (sleeps slept) */
    int stop;                /* PR_RETRY_GOING or why it stopped */
    int64_t start_ms;        /* pr_now() at pr_retry_begin */
    int64_t progress_ms;     /* last recorded progress */
    int64_t last_delay_ms;   /* the last sleep */
    double prev_delay_ms;    /* for decorrelated backoff */
} pr_retry;

/* The default classifier: outcome >= 0 is success; PR_ECANCELED, PR_EINVAL,
   PR_ENOMEM, PR_ELIMIT, PR_ESTATE, PR_ENOTSUP and PR_ECIRCUIT fail at once;
   every other negative code (timeouts, closed or reset connections, DNS,
   TLS, protocol errors, I/O errors) is retried with the backoff.
   Params: outcome - the attempt's result; after_ms - unused; user_data -
           unused.
   Returns: a PR_RETRY_* verdict.
   Blocks: no.
   Thread: any.
   See: pr_retry_policy. */
PRISTINE_API int pr_retry_classify_default(int outcome, int64_t *after_ms, void *user_data);

/* Start a retried operation.
   Params: st - the state to initialise; policy - NULL = defaults (copied).
   Returns: PR_OK; PR_EINVAL (st NULL, an invalid backoff, max_retries
            below PR_RETRY_UNLIMITED, negative limits).
   Blocks: no.
   Thread: owner.
   See: pr_retry_next. */
PRISTINE_API int pr_retry_begin(pr_retry *st, const pr_retry_policy *policy);

/* After an attempt: classify its outcome and either stop or sleep and say
   "again". Typical loop:
       pr_retry_begin(&st, &policy);
       for (;;) { rc = attempt(); if (!pr_retry_next(&st, &rc, deadline)) break; }
   When it stops, *outcome is the final result: the attempt's own outcome
   (success, a fatal failure, or the last failure when retries, time or
   the deadline ran out), or PR_ECANCELED when the task was cancelled
   before or during the sleep. st->stop says why it stopped.
   Params: st - from pr_retry_begin; outcome - in: the attempt's outcome,
           out: the final result when it returns 0; deadline - absolute ms;
           no sleep ends past it.
   Returns: 1 to make another attempt (the delay has been slept), 0 to stop.
   Blocks: yes (the sleep). A deadline that the next sleep would cross
           stops at once (st->stop = PR_RETRY_DEADLINE) and PR_ETIMEDOUT is
           never invented: the last outcome stays. PR_ECANCELED replaces it
           when the task is cancelled.
   Thread: owner.
   See: pr_retry_run, pr_retry_progress. */
PRISTINE_API int pr_retry_next(pr_retry *st, int *outcome, int64_t deadline);

/* The first half of pr_retry_next: classify the outcome and decide,
   without sleeping. Use it when something must happen between the
   decision and the sleep (release a connection, say), then call
   pr_retry_sleep with the delay.
   Params: st - the state; outcome - in/out as for pr_retry_next;
           until - the caller's deadline: a sleep that would end past it
           means stop (it is compared, not waited on).
   Returns: the delay to sleep in ms (>= 0) when another attempt should
            follow (on_retry has been called); -1 to stop (st->stop says
            why; *outcome is the final result).
   Blocks: no.
   Thread: owner.
   See: pr_retry_sleep, pr_retry_next. */
PRISTINE_API int64_t pr_retry_plan(pr_retry *st, int *outcome, int64_t until);

/* The second half of pr_retry_next: sleep the delay pr_retry_plan chose.
   Params: st - the state; delay_ms - from pr_retry_plan; outcome - set to
           PR_ECANCELED when the task is cancelled; deadline - absolute ms.
   Returns: 1 to make the next attempt; 0 when cancelled (st->stop =
            PR_RETRY_CANCELED, *outcome = PR_ECANCELED). Never PR_ETIMEDOUT:
            the sleep ends at the deadline at the latest.
   Blocks: yes.
   Thread: owner.
   See: pr_retry_plan. */
PRISTINE_API int pr_retry_sleep(pr_retry *st, int64_t delay_ms, int *outcome, int64_t deadline);

/* Record progress: the progress timeout counts from now.
   Params: st - the state.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_retry_policy. */
PRISTINE_API void pr_retry_progress(pr_retry *st);

/* Run fn until the policy stops it (pr_retry_begin + pr_retry_next).
   Params: policy - NULL = defaults; fn - one attempt: gets the attempt
           number (0 first) and user_data, returns its outcome; user_data -
           for fn; deadline - absolute ms.
   Returns: the final outcome (see pr_retry_next), PR_ECANCELED, or
            PR_EINVAL for a bad policy or fn NULL. PR_ETIMEDOUT only when an
            attempt returned it.
   Blocks: yes.
   Thread: owner.
   See: pr_retry_next. */
PRISTINE_API int pr_retry_run(const pr_retry_policy *policy, int (*fn)(int attempt, void *user_data),
                              void *user_data, int64_t deadline);

/* Whether an HTTP status is worth retrying by itself: 408, 409, 429 and
   500-599 (every other status, 2xx included, is not).
   Params: status - the status code.
   Returns: 1 or 0.
   Blocks: no.
   Thread: any.
   See: pr_retry_http_should_retry. */
PRISTINE_API int pr_retry_status_retryable(int status);

/* Read an x-should-retry header value: trimmed, ASCII case-insensitive.
   Params: value - the value; NULL = the header is absent.
   Returns: 1 for "true", 0 for "false", -1 for absent or anything else.
   Blocks: no.
   Thread: any.
   See: pr_retry_http_should_retry. */
PRISTINE_API int pr_retry_x_should_retry(const pr_slice *value);

/* Whether a response is worth retrying: never a 2xx; else x-should-retry
   when it says true or false; else pr_retry_status_retryable.
   Params: status - the status; x_should_retry - its header value or NULL.
   Returns: 1 or 0.
   Blocks: no.
   Thread: any.
   See: pr_retry_hint_ms. */
PRISTINE_API int pr_retry_http_should_retry(int status, const pr_slice *x_should_retry);

/* Parse an HTTP-date in any of the three formats of RFC 9110: IMF-fixdate
   ("Sun, 06 Nov 1994 08:49:37 GMT"), RFC 850 ("Sunday, 06-Nov-94 08:49:37
   GMT"; a two-digit year more than 50 years in the future of now_unix_ms
   is taken from the century before) and asctime ("Sun Nov  6 08:49:37
   1994"). The weekday must be the date's own; the year is 0 to 9999.
   Params: s - the text (surrounding spaces ignored); now_unix_ms - the
           current time (for RFC 850 years); out - receives ms since 1970 UTC.
   Returns: PR_OK; PR_EINVAL for anything else.
   Blocks: no.
   Thread: any.
   See: pr_retry_hint_ms. */
PRISTINE_API int pr_retry_parse_http_date(pr_slice s, int64_t now_unix_ms, int64_t *out);

/* The delay a server asked for, if it is usable. retry-after-ms (a decimal
   number of ms) wins when it is present and parses, even if its value is
   then refused; else Retry-After as decimal seconds or an HTTP-date
   (minus now_unix_ms). Numbers are whole-string decimals ("2", "1.5"); a
   sign, garbage, "nan", "inf" and numbers over 1e300 do not parse. A hint
   <= 0 is not usable (the caller's own backoff applies); a hint above
   max_ms is cut to max_ms, so a server asking for 120 s with the default
   cap waits 60 s, never the short backoff. Nothing overflows, whatever the
   value or the date.
   Params: retry_after_ms, retry_after - the header values, NULL when
           absent; now_unix_ms - the wall clock; max_ms - the longest
           delay (<= 0 = 60000); out - receives the hint in whole ms
           (rounded up), 0 < *out <= max_ms.
   Returns: 1 with *out set, or 0 (no usable hint).
   Blocks: no.
   Thread: any.
   See: pr_retry_parse_http_date. */
PRISTINE_API int pr_retry_hint_ms(const pr_slice *retry_after_ms, const pr_slice *retry_after, int64_t now_unix_ms,
                                  int64_t max_ms, int64_t *out);

/* ---- circuit breaker ---- */

/* A circuit breaker. Opaque; owned by the thread that created it. */
typedef struct pr_breaker pr_breaker;
/* A set of breakers by name, so that many clients share one per upstream. */
typedef struct pr_breaker_registry pr_breaker_registry;

/* Breaker states. */
enum pr_breaker_state { PR_BREAKER_CLOSED = 0, PR_BREAKER_OPEN = 1, PR_BREAKER_HALF_OPEN = 2 };

/* What a call's outcome means for the breaker. */
enum pr_breaker_outcome {
    PR_BREAKER_SUCCESS = 0, /* healthy: closes a half-open breaker, resets the failure count */
    PR_BREAKER_FAILURE = 1, /* counts toward opening; reopens a half-open breaker */
    PR_BREAKER_IGNORE = 2   /* no health signal (e.g. 429): frees a half-open probe slot */
};

/* Who watches a breaker (pr_telemetry_breaker_hook fits on_change). */
typedef struct pr_breaker_observer {
    /* Called on every state change, also when open becomes half-open as
       time passes (noticed by the next admit or state call). NULL = none. */
    void (*on_change)(const char *name, int from, int to, void *user_data);
    void *user_data;         /* for on_change */
} pr_breaker_observer;

/* Breaker options. Zero in every field means the default. */
typedef struct pr_breaker_opts {
    int failure_threshold;   /* 0 = 5: consecutive failures that open the breaker */
    int reset_timeout_ms;    /* 0 = 30000: open this long, then half-open */
    int half_open_max_calls; /* 0 = 1: probe calls admitted at once while half-open */
    pr_breaker_observer observer; /* state changes; zero = none */
} pr_breaker_opts;

/* Create a breaker.
   Params: out - receives it; name - a label for on_change (copied; NULL =
           ""); opts - NULL = defaults (copied).
   Returns: PR_OK; PR_EINVAL (out NULL, negative options); PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_admit, pr_breaker_destroy. */
PRISTINE_API int pr_breaker_create(pr_breaker **out, const char *name, const pr_breaker_opts *opts);

/* Free a breaker made by pr_breaker_create (not one from a registry). NULL
   is a no-op.
   Params: b - the breaker.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_create. */
PRISTINE_API void pr_breaker_destroy(pr_breaker *b);

/* Ask to make a call. Closed: yes. Open: no (until reset_timeout_ms have
   passed since it opened; then it is half-open). Half-open: yes while
   fewer than half_open_max_calls probes are in flight. An admitted call
   must be followed by pr_breaker_record.
   Params: b - the breaker.
   Returns: PR_OK (make the call); PR_ECIRCUIT (do not); PR_EINVAL (NULL).
   Blocks: no.
   Thread: owner.
   See: pr_breaker_record. */
PRISTINE_API int pr_breaker_admit(pr_breaker *b);

/* Report an admitted call's outcome (PR_BREAKER_SUCCESS, _FAILURE or
   _IGNORE; any other value counts as a failure). Failures of calls
   admitted before the breaker opened change nothing while it is open.
   Params: b - the breaker; outcome - the outcome.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_admit. */
PRISTINE_API void pr_breaker_record(pr_breaker *b, int outcome);

/* The current state (an open breaker reads half-open once its reset
   timeout has passed).
   Params: b - the breaker.
   Returns: PR_BREAKER_CLOSED, _OPEN or _HALF_OPEN; PR_EINVAL for NULL.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_admit. */
PRISTINE_API int pr_breaker_state(pr_breaker *b);

/* Consecutive failures counted while closed.
   Params: b - the breaker.
   Returns: the count (0 for NULL).
   Blocks: no.
   Thread: owner.
   See: pr_breaker_record. */
PRISTINE_API int pr_breaker_failures(const pr_breaker *b);

/* Close the breaker and clear its counters.
   Params: b - the breaker.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_state. */
PRISTINE_API void pr_breaker_reset(pr_breaker *b);

/* Create a registry of breakers by name.
   Params: out - receives it.
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_registry_get. */
PRISTINE_API int pr_breaker_registry_create(pr_breaker_registry **out);

/* Free a registry and every breaker in it. NULL is a no-op.
   Params: r - the registry.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_registry_create. */
PRISTINE_API void pr_breaker_registry_destroy(pr_breaker_registry *r);

/* The breaker of a name, created with opts on first use (later calls
   return the same breaker and ignore opts). The registry owns it.
   Params: r - the registry; name - NUL-terminated; opts - for creation,
           NULL = defaults; out - receives the breaker.
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_admit. */
PRISTINE_API int pr_breaker_registry_get(pr_breaker_registry *r, const char *name, const pr_breaker_opts *opts,
                                         pr_breaker **out);

/* The state of a name's breaker; a name never used reads closed.
   Params: r - the registry; name - NUL-terminated.
   Returns: a PR_BREAKER_* state; PR_EINVAL for NULL arguments.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_state. */
PRISTINE_API int pr_breaker_registry_state(pr_breaker_registry *r, const char *name);

/* ---- shared backoff window ---- */

/* Per-key "not before" deadlines on pr_now()'s clock. Opaque. */
typedef struct pr_backoff_window pr_backoff_window;

/* Create an empty window set.
   Params: out - receives it.
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_backoff_window_set. */
PRISTINE_API int pr_backoff_window_create(pr_backoff_window **out);

/* Free a window set; tasks waiting on it wake with PR_ECLOSED. NULL is a
   no-op.
   Params: w - the set.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_backoff_window_create. */
PRISTINE_API void pr_backoff_window_destroy(pr_backoff_window *w);

/* Open (or extend) the window of key until now + duration_ms. A window
   never shrinks: the deadline becomes the later of the old and the new.
   Params: w - the set; key - NUL-terminated (NULL = ""); duration_ms - >= 0.
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_backoff_window_wait. */
PRISTINE_API int pr_backoff_window_set(pr_backoff_window *w, const char *key, int64_t duration_ms);

/* Milliseconds left in key's window (0 = none: at its deadline exactly it
   is over).
   Params: w - the set; key - NUL-terminated (NULL = "").
   Returns: the remaining ms, 0 when there is no window or w is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_backoff_window_set. */
PRISTINE_API int64_t pr_backoff_window_remaining(pr_backoff_window *w, const char *key);

/* The window's deadline on pr_now()'s clock, or 0 when none was set (an
   expired one is still reported, so "recently backed off" can be told).
   Params: w - the set; key - NUL-terminated (NULL = "").
   Returns: the deadline or 0.
   Blocks: no.
   Thread: owner.
   See: pr_backoff_window_remaining. */
PRISTINE_API int64_t pr_backoff_window_until(pr_backoff_window *w, const char *key);

/* Wait until key has no window: sleeps to the deadline, then looks again
   (another task may have extended it), until none is left.
   Params: w - the set; key - NUL-terminated (NULL = ""); deadline - absolute ms.
   Returns: PR_OK; PR_ETIMEDOUT (the deadline came first); PR_ECANCELED;
            PR_ECLOSED (the set was destroyed); PR_EINVAL; PR_ENOMEM.
   Blocks: yes.
   Thread: owner.
   See: pr_backoff_window_set. */
PRISTINE_API int pr_backoff_window_wait(pr_backoff_window *w, const char *key, int64_t deadline);

/* Close key's window at once; its waiters return PR_OK.
   Params: w - the set; key - NUL-terminated (NULL = "").
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_backoff_window_set. */
PRISTINE_API void pr_backoff_window_clear(pr_backoff_window *w, const char *key);

/* ==== net: non-blocking DNS, TCP connect and listen, the pr_conn byte stream ==== >>net */
/*
 * net: name resolution, TCP connect and listen/accept, and the pr_conn
 * byte stream that TLS and HTTP sit on.
 *
 * pr_conn is the byte-stream interface: a socket (pr_conn_from_fd,
 * pr_tcp_connect, pr_tcp_accept), a TLS session over another pr_conn, or
 * an in-memory pipe for tests (pr_conn_pipe). Every implementation embeds a
 * pr_conn as its FIRST member and fills `ops`. A pr_conn belongs to the
 * scheduler thread that made it; pr_conn_destroy closes and frees it.
 *
 * DNS never stalls the scheduler: numeric hosts, "localhost" and entries of
 * the process-wide override table (pr_dns_override) are answered at once;
 * other names go to getaddrinfo on a small pool of helper threads (at most
 * 4, started on demand, gone after a few idle seconds) that wake the asking
 * task through pr_sched_post. A lookup that times out or is cancelled
 * returns at once; the helper frees its work when getaddrinfo finally
 * returns. Answers are cached for 30 s (process-wide, 32 names). With
 * PRISTINE_NO_THREADS, getaddrinfo runs inline and stalls the scheduler.
 *
 * pr_tcp_connect tries the addresses of a name with Happy Eyeballs (RFC
 * 8305): IPv6 and IPv4 interleaved, a new attempt every 250 ms while earlier
 * ones are pending, the first to connect wins. pr_addrlist is freed with
 * pr_addrlist_destroy, pr_listener with pr_listener_destroy.
 *
 * Offers to the modules after it: pr__net_conn_known_idle, pr__net_conn_wait.
 */

typedef struct pr_conn pr_conn;

/* The operations behind a pr_conn. read and write move "some" bytes: read
   returns > 0 bytes, PR_ECLOSED at the end of the stream, or an error;
   write returns > 0 bytes written (possibly fewer than n) or an error. */
typedef struct pr_conn_ops {
    ptrdiff_t (*read)(pr_conn *c, void *buf, size_t n, int64_t deadline);
    ptrdiff_t (*write)(pr_conn *c, const void *buf, size_t n, int64_t deadline);
    int (*shutdown)(pr_conn *c, int64_t deadline); /* end our sending side (TCP FIN, TLS close_notify) */
    void (*destroy)(pr_conn *c);                   /* close and free everything */
} pr_conn_ops;

/* The common head of every connection object. */
struct pr_conn {
    const pr_conn_ops *ops;
    pr_err_info err; /* detail of the last failure (pr_conn_last_error) */
};

/* Read up to n bytes, waiting while none are there.
   Params: c - the connection; buf, n - destination (n > 0); deadline -
           absolute ms.
   Returns: bytes read (> 0); PR_ECLOSED at the end of the stream; PR_EIO,
            PR_ETLS, PR_EPROTO (detail in pr_conn_last_error); PR_ETIMEDOUT;
            PR_ECANCELED; PR_EINVAL.
   Blocks: yes.
   Thread: owner.
   See: pr_conn_write, pr_conn_last_error. */
PRISTINE_API ptrdiff_t pr_conn_read(pr_conn *c, void *buf, size_t n, int64_t deadline);

/* Write all n bytes, waiting as needed.
   Params: c - the connection; buf, n - the bytes; deadline - absolute ms.
   Returns: PR_OK (all written); PR_ECLOSED (peer gone); PR_EIO, PR_ETLS
            (detail in pr_conn_last_error); PR_ETIMEDOUT or PR_ECANCELED
            (an unknown prefix may have been written); PR_EINVAL.
   Blocks: yes.
   Thread: owner.
   See: pr_conn_read. */
PRISTINE_API int pr_conn_write(pr_conn *c, const void *buf, size_t n, int64_t deadline);

/* End our sending side in order (TCP FIN; TLS close_notify first).
   Params: c - the connection; deadline - absolute ms.
   Returns: PR_OK; PR_EIO, PR_ETLS; PR_ETIMEDOUT; PR_ECANCELED; PR_EINVAL.
   Blocks: yes.
   Thread: owner.
   See: pr_conn_destroy. */
PRISTINE_API int pr_conn_shutdown(pr_conn *c, int64_t deadline);

/* Close the connection and free it. NULL is a no-op.
   Params: c - the connection.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_conn_shutdown. */
PRISTINE_API void pr_conn_destroy(pr_conn *c);

/* The detail of the connection's last failure.
   Params: c - the connection; out - receives a copy.
   Returns: PR_OK; PR_EINVAL if c or out is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_conn_read. */
PRISTINE_API int pr_conn_last_error(const pr_conn *c, pr_err_info *out);

/* One resolved address. */
typedef struct pr_addr {
    int family;           /* AF_INET or AF_INET6 */
    uint16_t port;        /* host byte order */
    unsigned char ip[16]; /* network byte order; the first 4 bytes for AF_INET */
    uint32_t scope_id;    /* IPv6 scope (interface index), else 0 */
} pr_addr;

/* The answer of pr_dns_resolve: count addresses, in the resolver's order,
   duplicates removed. */
typedef struct pr_addrlist {
    size_t count;
    pr_addr *addrs;
} pr_addrlist;

/* Options of pr_tcp_connect. NULL or all-zero means defaults. */
typedef struct pr_net_opts {
    int connect_timeout_ms; /* 0 = 30000; < 0 = no limit but the call's deadline */
    int attempt_delay_ms;   /* 0 = 250: head start of each address over the next */
    int keepalive;          /* 0 = off; > 0 = SO_KEEPALIVE, first probe after this many idle
                               seconds, then every 10 s, 6 unanswered = dead (PR_EIO) */
    int family;             /* 0 = any; AF_INET or AF_INET6 = only that family */
} pr_net_opts;

/* A listening TCP socket. */
typedef struct pr_listener pr_listener;

/* Wrap a connected socket (or any stream fd) as a pr_conn. The fd is made
   non-blocking and, for TCP, gets TCP_NODELAY. From success on the
   connection owns it: pr_conn_destroy forgets it in the poller and closes
   it. Writes never raise SIGPIPE; shutdown is shutdown(SHUT_WR).
   Params: out - receives the connection; fd - the descriptor.
   Returns: PR_OK; PR_ENOMEM (the fd stays the caller's); PR_EIO (fcntl
            failed; the fd stays the caller's); PR_EINVAL (out NULL, fd < 0).
   Blocks: no.
   Thread: owner.
   See: pr_conn_destroy, pr_tcp_connect. */
PRISTINE_API int pr_conn_from_fd(pr_conn **out, int fd);

/* An in-memory connected pair: what a writes, b reads, and the reverse.
   Each direction buffers 64 KiB; a writer waits while it is full, a reader
   while it is empty. After pr_conn_shutdown (or destroy) of one end, the
   other reads the rest and then PR_ECLOSED; writing toward a destroyed end
   gives PR_ECLOSED.
   Params: a, b - receive the two ends (destroy both); max_chunk - > 0 caps
           the bytes one read returns (1 = a byte at a time), 0 = no cap.
   Returns: PR_OK; PR_ENOMEM; PR_EINVAL (a or b NULL).
   Blocks: no.
   Thread: owner.
   See: pr_conn_read. */
PRISTINE_API int pr_conn_pipe(pr_conn **a, pr_conn **b, size_t max_chunk);

/* Resolve a host name to addresses without blocking the scheduler. Order:
   the override table, numeric addresses, "localhost" (::1 then 127.0.0.1),
   the cache, then getaddrinfo on a helper thread.
   Params: out - receives the list (pr_addrlist_destroy it); host - a name,
           or a numeric IPv4/IPv6 address (brackets allowed); port - copied
           into every address; family - 0 (any), AF_INET or AF_INET6;
           err - receives the detail of a failure (dns_error: getaddrinfo's
           code; sys_errno for EAI_SYSTEM and PR_EIO); NULL = not wanted;
           deadline - absolute ms.
   Returns: PR_OK; PR_EDNS (no such name, no address of that family, or a
            resolver failure); PR_ENOMEM; PR_EIO (no helper thread could be
            started); PR_EINVAL (NULL, empty or over-long host, bad family);
            PR_ETIMEDOUT; PR_ECANCELED (both return at once; the helper
            finishes and frees the lookup later).
   Blocks: yes.
   Thread: owner.
   See: pr_addrlist_destroy, pr_dns_override, pr_tcp_connect. */
PRISTINE_API int pr_dns_resolve(pr_addrlist **out, const char *host, uint16_t port, int family, pr_err_info *err,
                                int64_t deadline);

/* Free an address list. NULL is a no-op.
   Params: l - the list.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_dns_resolve. */
PRISTINE_API void pr_addrlist_destroy(pr_addrlist *l);

/* Add to the process-wide override table (like curl's RESOLVE): lookups
   of host (case-insensitive) for port give addr instead of asking DNS.
   Several calls for the same host and port add several addresses, in
   order. Meant for tests; the table holds 16 entries of 4 addresses.
   Params: host - the name; NULL clears the whole table; port - 0 matches
           every port; addr - numeric "127.0.0.1", "::1", optionally with a
           port that replaces the requested one ("127.0.0.1:8080",
           "[::1]:8080"); NULL removes the host's entry for port.
   Returns: PR_OK; PR_EINVAL (addr not numeric, host too long); PR_ELIMIT
            (table full).
   Blocks: no.
   Thread: any.
   See: pr_dns_resolve. */
PRISTINE_API int pr_dns_override(const char *host, uint16_t port, const char *addr);

/* Connect over TCP: resolve host, then try its addresses with Happy
   Eyeballs (IPv6 and IPv4 interleaved, a new attempt every
   attempt_delay_ms while earlier ones are pending, the first connection
   wins and the rest are closed). The whole call is bounded by
   min(deadline, now + connect_timeout_ms). TCP_NODELAY is on.
   Params: out - receives the connection; host, port - where to; opts -
           NULL for defaults; err - receives the detail of a failure (zeroed
           on success); NULL = not wanted; deadline - absolute ms.
   Returns: PR_OK; PR_EIO (every address refused or unreachable: err's
            sys_errno is the last attempt's errno, ECONNREFUSED say, and
            its message names that address); PR_EDNS (err as for
            pr_dns_resolve); PR_ENOMEM; PR_EINVAL; PR_ETIMEDOUT;
            PR_ECANCELED.
   Blocks: yes.
   Thread: owner.
   See: pr_dns_resolve, pr_conn_destroy. */
PRISTINE_API int pr_tcp_connect(pr_conn **out, const char *host, uint16_t port, const pr_net_opts *opts,
                                pr_err_info *err, int64_t deadline);

/* Listen on a TCP port (SO_REUSEADDR set).
   Params: out - receives the listener; host - a numeric address or
           "localhost" (127.0.0.1); NULL = 127.0.0.1; "0.0.0.0" or "::" for
           every interface; port - 0 = an ephemeral port (see
           pr_listener_port); backlog - the accept queue (<= 0 = SOMAXCONN);
           err - receives the detail of a failure; NULL = not wanted.
   Returns: PR_OK; PR_EIO (socket, bind or listen failed: err's sys_errno,
            EADDRINUSE say); PR_ENOMEM; PR_EINVAL (out NULL, host not
            numeric).
   Blocks: no.
   Thread: owner.
   See: pr_tcp_accept, pr_listener_destroy. */
PRISTINE_API int pr_tcp_listen(pr_listener **out, const char *host, uint16_t port, int backlog, pr_err_info *err);

/* The port a listener is bound to.
   Params: l - the listener.
   Returns: the port in host byte order; 0 if l is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_tcp_listen. */
PRISTINE_API uint16_t pr_listener_port(const pr_listener *l);

/* Accept one connection, waiting for it.
   Params: l - the listener; out - receives the connection; deadline -
           absolute ms.
   Returns: PR_OK; PR_EIO (accept failed; detail in pr_listener_last_error);
            PR_ECLOSED (another task destroyed l meanwhile; l is gone);
            PR_ENOMEM; PR_EINVAL; PR_ESTATE (another task accepts on l);
            PR_ETIMEDOUT; PR_ECANCELED.
   Blocks: yes.
   Thread: owner.
   See: pr_tcp_listen. */
PRISTINE_API int pr_tcp_accept(pr_listener *l, pr_conn **out, int64_t deadline);

/* The detail of the listener's last failure.
   Params: l - the listener; out - receives a copy.
   Returns: PR_OK; PR_EINVAL if l or out is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_tcp_accept. */
PRISTINE_API int pr_listener_last_error(const pr_listener *l, pr_err_info *out);

/* Close a listener and free it. NULL is a no-op.
   Params: l - the listener.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_tcp_listen. */
PRISTINE_API void pr_listener_destroy(pr_listener *l);

/* ==== tls: BearSSL client and server over pr_conn, trust anchors, hostname checks ==== >>tls */
/*
 * tls: TLS 1.2 (BearSSL) over any pr_conn. pr_tls_client and pr_tls_server
 * wrap an inner connection (a TCP socket, a memory pipe), run the handshake
 * and hand back a new pr_conn whose read, write, shutdown and destroy speak
 * TLS. The TLS connection owns the inner one. One task at a time may use a
 * connection: records are pumped in order (pending records first, then the
 * read), so a protocol where both sides write a lot without reading must
 * interleave its reads.
 *
 * Verification: the chain is checked against trust anchors (the system
 * bundle, loaded once per process and shared; or a PEM file or PEM bytes
 * per call), the validity dates against the clock, and the host name (SNI
 * plus the certificate's names). IP-literal hosts are matched against the
 * certificate's iPAddress SANs and send no SNI. Only TLS 1.2 with ECDHE and
 * AEAD suites is offered (AES-GCM first when the CPU has AES-NI); TLS 1.3-
 * only peers fail with a "protocol version" message.
 *
 * Client certificates (mutual TLS): pr_tls_opts names a PEM chain and key
 * (RSA or EC), or a pr_tls_identity parsed once; a server requires them
 * with pr_tls_server_cfg_require_client_cert.
 *
 * Errors: handshake and record failures are PR_ETLS with pr_err_info's
 * tls_error set to BearSSL's code (or a PR_TLS_* code below) and msg
 * naming the reason. A peer's close_notify reads as PR_ECLOSED; a
 * transport EOF without it reads as PR_ETLS / PR_TLS_TRUNCATED.
 *
 * Closing: pr_conn_shutdown sends close_notify, which in TLS 1.2 ends both
 * directions: application data not yet read is discarded and later reads
 * give PR_ECLOSED. Read to the end first if the rest matters. Another task
 * may destroy a connection while one waits in its read: the reader wakes
 * with PR_ECLOSED.
 *
 * Memory: a connection holds BearSSL's engine (about 4 KiB) and its record
 * buffer, allocated apart and touched only as far as records reach: full
 * duplex (33,178 bytes, pr_tls_client's default) or half duplex (16,709,
 * pr_tls_opts.half_duplex; the HTTP client's default). The certificate
 * checker is freed after the handshake, and the stack pages the handshake
 * touched are given back.
 *
 * Built with PRISTINE_NO_TLS, the declarations stay and every call fails
 * with PR_ENOTSUP.
 */

/* pr_err_info.tls_error when the peer ended the transport without a
   close_notify: after the handshake (a truncation attack or a sloppy peer)
   or during it. Not a BearSSL code (those stay below 1000). */
#define PR_TLS_TRUNCATED 1000
/* pr_err_info.tls_error when the server asked for a client certificate,
   none is configured, and the server then ended the handshake. */
#define PR_TLS_NO_CLIENT_CERT 1001
/* pr_err_info.tls_error when the server ended the handshake (a fatal
   alert such as bad_certificate or unknown_ca, a close or a reset) after
   asking for the client certificate we have: it does not accept that
   certificate (its CA, its key, or none of the signatures the key can
   make). msg names the alert. */
#define PR_TLS_CLIENT_CERT_REFUSED 1002

/* Trust anchors parsed once from PEM and shared read-only by any number of
   client connections, on any thread; they must outlive those connections.
   Parsing a large bundle costs tens of ms: do it once, not per connect. */
typedef struct pr_tls_anchors pr_tls_anchors;

/* A client certificate chain and its private key, parsed once from PEM and
   shared read-only by any number of client connections, on any thread;
   it must outlive them. */
typedef struct pr_tls_identity pr_tls_identity;

/* Options of pr_tls_client. NULL or all-zero means defaults. */
typedef struct pr_tls_opts {
    const char *ca_file;   /* PEM file of trust anchors, read by this call; NULL = ca_pem or,
                              without it, the system bundle (SSL_CERT_FILE, else
                              /etc/ssl/certs/ca-certificates.crt), loaded once per process */
    const char *ca_pem;    /* PEM trust anchors in memory, copied by this call; NULL = none;
                              takes precedence over ca_file */
    size_t ca_pem_len;     /* bytes at ca_pem; 0 = strlen(ca_pem) */
    int insecure_skip_verify_DANGEROUS; /* 0 = verify; 1 = accept ANY certificate for ANY
                                           name (tests only: no authentication at all) */
    const char *alpn;      /* comma-separated protocols to offer, copied; NULL = "http/1.1";
                              "" = no ALPN. At most 8 names, 255 bytes */
    const pr_tls_anchors *anchors; /* parsed once by pr_tls_anchors_create, borrowed; takes
                                      precedence over ca_pem and ca_file */
    const char *cert_file; /* client certificate: PEM file of the chain, leaf first, read by this
                              call; NULL = cert_pem or, without it, no client certificate */
    const char *cert_pem;  /* the chain as PEM in memory, copied; takes precedence over cert_file */
    size_t cert_pem_len;   /* bytes at cert_pem; 0 = strlen(cert_pem) */
    const char *key_file;  /* the certificate's private key (RSA or EC, PKCS#8 or raw PEM), read
                              by this call; required with a certificate, refused without one */
    const char *key_pem;   /* the key as PEM in memory, copied (and wiped); takes precedence over
                              key_file */
    size_t key_pem_len;    /* bytes at key_pem; 0 = strlen(key_pem) */
    const pr_tls_identity *identity; /* parsed once by pr_tls_identity_create, borrowed; takes
                                        precedence over the cert_* and key_* fields */
    int half_duplex;       /* record buffer: 0 = auto: full duplex from pr_tls_client, half duplex
                              for pr_http_client's connections; -1 = full duplex: 33,178 bytes, one
                              part per direction, so a read can go on while a write is stuck (for
                              protocols where both sides send at once); 1 = half duplex: one
                              16,709-byte buffer for both directions, half the memory and the same
                              record sizes, but a write waits while a received record is unread
                              (PR_ESTATE when that record holds data: read it first) and a read
                              waits until our records are out. Enough for request-then-response
                              protocols such as HTTP/1.1 (the request is sent whole before the
                              response is read; an early answer after which the peer closes is
                              still read). Only the touched part counts in resident memory */
} pr_tls_opts;

/* A server certificate chain and private key, shared read-only by the
   server connections made with it; it must outlive them. */
typedef struct pr_tls_server_cfg pr_tls_server_cfg;

/* Start TLS as a client over inner and run the handshake.
   Params: out - receives the TLS connection (pr_conn_destroy frees it and
           inner); inner - a connected stream, owned by this call from now on
           (destroyed on failure too); host - the server's name for SNI and
           verification: a DNS name (one trailing dot is ignored) or an IP
           literal ("127.0.0.1", "::1", "[::1]"); opts - NULL for defaults;
           err - receives the detail of a failure (zeroed on success); NULL
           = not wanted; deadline - absolute ms for the handshake.
   Returns: PR_OK; PR_ETLS (handshake failed: err's tls_error holds
            BearSSL's code or PR_TLS_TRUNCATED, msg the reason: expired,
            unknown CA, bad hostname, protocol version, ...; tls_error
            PR_TLS_NO_CLIENT_CERT: the server requires a client certificate
            and none is configured; PR_TLS_CLIENT_CERT_REFUSED: the server
            refused the one we sent, msg naming its alert; retrying cures
            neither); PR_EIO (transport: err's sys_errno), PR_ECLOSED;
            PR_EINVAL (NULL out/inner/host, empty or over-long host, bad
            alpn, no certificate in ca_file/ca_pem, a client certificate
            without a usable key or the reverse); PR_ENOMEM; PR_ETIMEDOUT;
            PR_ECANCELED.
   Blocks: yes.
   Thread: owner.
   See: pr_tls_server, pr_tls_alpn, pr_tls_global_cleanup. */
PRISTINE_API int pr_tls_client(pr_conn **out, pr_conn *inner, const char *host, const pr_tls_opts *opts,
                               pr_err_info *err, int64_t deadline);

/* Parse trust anchors once, for pr_tls_opts.anchors.
   Params: out - receives the anchors; ca_file - a PEM file, or NULL to use
           ca_pem; ca_pem, ca_pem_len - PEM in memory (ca_pem_len 0 =
           strlen), copied; err - NULL or receives the detail on failure.
   Returns: PR_OK; PR_EINVAL (NULL out, neither source, no certificate
            found); PR_EIO (file unreadable); PR_ENOMEM; PR_ENOTSUP (built
            with PRISTINE_NO_TLS).
   Blocks: no (reads the file; no network).
   Thread: any.
   See: pr_tls_anchors_destroy, pr_tls_client. */
PRISTINE_API int pr_tls_anchors_create(pr_tls_anchors **out, const char *ca_file, const char *ca_pem,
                                       size_t ca_pem_len, pr_err_info *err);

/* Free anchors from pr_tls_anchors_create. NULL is a no-op.
   Params: a - the anchors; no connection may still use them.
   Returns: nothing.
   Blocks: no.
   Thread: any.
   See: pr_tls_anchors_create. */
PRISTINE_API void pr_tls_anchors_destroy(pr_tls_anchors *a);

/* Parse a client certificate chain and its private key once, for
   pr_tls_opts.identity. Each comes from a file or from memory (the memory
   wins); the key must belong to the leaf certificate.
   Params: out - receives the identity; cert_file - PEM file of the chain,
           leaf first, or NULL to use cert_pem; cert_pem, cert_pem_len -
           the chain in memory (cert_pem_len 0 = strlen), copied; key_file,
           key_pem, key_pem_len - the RSA or EC private key (PKCS#8 or raw)
           the same way, copied; err - NULL or receives the detail on
           failure.
   Returns: PR_OK; PR_EINVAL (NULL out, no chain or no key given, no
            certificate found, no usable RSA or EC key found, a key that is
            not the leaf certificate's); PR_EIO (a file unreadable: err's
            sys_errno); PR_ENOMEM; PR_ENOTSUP (built with PRISTINE_NO_TLS).
   Blocks: no (reads the files; no network).
   Thread: any.
   See: pr_tls_identity_destroy, pr_tls_client. */
PRISTINE_API int pr_tls_identity_create(pr_tls_identity **out, const char *cert_file, const char *cert_pem,
                                        size_t cert_pem_len, const char *key_file, const char *key_pem,
                                        size_t key_pem_len, pr_err_info *err);

/* Free an identity from pr_tls_identity_create, wiping its key. NULL is a
   no-op.
   Params: id - the identity; no connection may still use it.
   Returns: nothing.
   Blocks: no.
   Thread: any.
   See: pr_tls_identity_create. */
PRISTINE_API void pr_tls_identity_destroy(pr_tls_identity *id);

/* Parse a server certificate chain and private key from PEM.
   Params: out - receives the configuration; cert_pem, cert_len - the chain,
           leaf first (cert_len 0 = strlen); key_pem, key_len - the RSA or EC
           private key, PKCS#8 or raw (key_len 0 = strlen). Both are copied;
           err - receives the detail of a failure; NULL = not wanted.
   Returns: PR_OK; PR_EINVAL (NULL argument, no certificate, no usable key,
            a key that is not the leaf certificate's); PR_ENOMEM;
            PR_ENOTSUP (built with PRISTINE_NO_TLS).
   Blocks: no.
   Thread: any.
   See: pr_tls_server, pr_tls_server_cfg_destroy. */
PRISTINE_API int pr_tls_server_cfg_create(pr_tls_server_cfg **out, const char *cert_pem, size_t cert_len,
                                          const char *key_pem, size_t key_len, pr_err_info *err);

/* Set the ALPN protocols the server accepts, in its order of preference.
   The default is "http/1.1". A client offering none of them still
   connects, with no protocol selected.
   Params: cfg - the configuration; alpn - comma-separated names, copied;
           "" or NULL = no ALPN.
   Returns: PR_OK; PR_EINVAL (cfg NULL, more than 8 names or 255 bytes);
            PR_ENOTSUP (built with PRISTINE_NO_TLS).
   Blocks: no.
   Thread: any, before the configuration is used.
   See: pr_tls_server_cfg_create. */
PRISTINE_API int pr_tls_server_cfg_set_alpn(pr_tls_server_cfg *cfg, const char *alpn);

/* Require every client to present a certificate that chains to one of the
   given CAs (mutual TLS). The server asks for it in the handshake, names
   these CAs, and checks the chain and its dates (not its names): a client
   with no certificate or an untrusted one fails pr_tls_server with
   PR_ETLS.
   Params: cfg - the configuration; ca_pem, ca_len - PEM trust anchors
           (ca_len 0 = strlen), copied; err - NULL or receives the detail
           on failure.
   Returns: PR_OK; PR_EINVAL (cfg or ca_pem NULL, no certificate found);
            PR_ENOMEM; PR_ENOTSUP (built with PRISTINE_NO_TLS).
   Blocks: no.
   Thread: any, before the configuration is used.
   See: pr_tls_server_cfg_create, pr_tls_opts. */
PRISTINE_API int pr_tls_server_cfg_require_client_cert(pr_tls_server_cfg *cfg, const char *ca_pem, size_t ca_len,
                                                       pr_err_info *err);

/* Free a server configuration. NULL is a no-op.
   Params: cfg - the configuration; no connection may still use it.
   Returns: nothing.
   Blocks: no.
   Thread: any.
   See: pr_tls_server_cfg_create. */
PRISTINE_API void pr_tls_server_cfg_destroy(pr_tls_server_cfg *cfg);

/* Start TLS as a server over inner and run the handshake.
   Params: out - receives the TLS connection; inner - a connected stream,
           owned by this call from now on (destroyed on failure too); cfg -
           chain and key, borrowed for the connection's life; err - receives
           the detail of a failure (zeroed on success); NULL = not wanted;
           deadline - absolute ms for the handshake.
   Returns: PR_OK; PR_ETLS (handshake failed, including the client closing
            during it; with pr_tls_server_cfg_require_client_cert, a client
            without a certificate, tls_error BR_ERR_NO_CLIENT_AUTH, or with
            an untrusted one, an X.509 code); PR_EIO, PR_ECLOSED (transport); PR_EINVAL (NULL
            argument); PR_ENOMEM; PR_ENOTSUP (no TLS in this build);
            PR_ETIMEDOUT; PR_ECANCELED.
   Blocks: yes.
   Thread: owner.
   See: pr_tls_server_cfg_create, pr_tls_client. */
PRISTINE_API int pr_tls_server(pr_conn **out, pr_conn *inner, const pr_tls_server_cfg *cfg, pr_err_info *err,
                               int64_t deadline);

/* The ALPN protocol negotiated on a TLS connection.
   Params: c - a connection from pr_tls_client or pr_tls_server.
   Returns: the protocol name (valid while c lives); NULL when none was
            negotiated or c is not a TLS connection.
   Blocks: no.
   Thread: owner.
   See: pr_tls_opts. */
PRISTINE_API const char *pr_tls_alpn(const pr_conn *c);

/* Free the process-wide cache of the system trust bundle (it is loaded
   again on next use). For leak checkers and tests.
   Params: none.
   Returns: nothing.
   Blocks: no.
   Thread: any, while no TLS client connection exists.
   See: pr_tls_client. */
PRISTINE_API void pr_tls_global_cleanup(void);

/* ==== http: one HTTP/1.1 exchange over a pr_conn: request writer, response parser, bodies ==== >>http */
/*
 * http: one HTTP/1.1 request/response exchange over a caller-owned pr_conn
 * (a TCP socket, a TLS session or an in-memory pipe).
 *
 * pr_http_exchange writes the request and reads the response head; the
 * body is then streamed with pr_http_read (copying) or pr_http_next_span
 * (zero-copy views into the receive buffer). Both return bytes as soon as
 * they arrive and PR_ECLOSED at the end of the body. An HTTP status is not
 * an error: a 503 is PR_OK with pr_http_status() == 503.
 *
 * Main types: pr_http_request (what to send, borrowed for the call),
 * pr_http_opts (limits; zero = default), pr_http_response (owned by the
 * caller until pr_http_response_destroy; it never owns or closes the conn).
 *
 * Header fields a caller supplies are field lines "Name: value": a static
 * set is a NULL-terminated array (pr_http_request.headers, and the
 * modules after this one take the same), a per-request callback appends
 * lines each ended by "\r\n" to a pr_buf. The module's internal offer to
 * the modules after it is the one parser and validator of both forms,
 * pr__http_fields (with pr__http_field_line for a single line): a token
 * name, a colon, a value without CR, LF or NUL, optional whitespace around
 * the value trimmed; a bad line is PR_EINVAL with a message naming its
 * field.
 *
 * Lifetime of views: header names and values (pr_http_header_at,
 * pr_http_header_get, pr_http_reason) point into the response's buffer
 * and stay valid until pr_http_response_destroy. A span from
 * pr_http_next_span is valid until the next read or span call.
 *
 * Parsing rules (RFC 9110/9112, strict):
 * - status line "HTTP/1.x SP 3DIGIT [SP reason]"; other versions and
 *   garbage are PR_EPROTO. Bare LF line ends are accepted in the head,
 *   a bare CR anywhere is PR_EPROTO; NUL, DEL and control bytes other than
 *   HT in field values are PR_EPROTO; whitespace before the colon is
 *   PR_EPROTO.
 * - obs-fold (a field line starting with SP/HT) is replaced by SP: the
 *   continuation is joined to the previous value in place. A fold before
 *   the first field is PR_EPROTO.
 * - Content-Length: every value of every Content-Length field (comma
 *   lists included) must be the same decimal number (digits only, no
 *   sign, no overflow), else PR_EPROTO; so is a field with no value.
 * - Transfer-Encoding ending in "chunked": chunked body; "chunked"
 *   anywhere else is PR_EPROTO; any other coding list: the body runs to
 *   connection close. TE with Content-Length: TE wins and the connection
 *   is not reusable. HTTP/1.0 with TE: body to close, not reusable.
 * - interim 1xx responses (100, 102, 103, ...) are skipped, at most
 *   max_interim of them, their bytes counted with the final head against
 *   one max_head_bytes; they never have a body, whatever Content-Length
 *   or Transfer-Encoding they carry. 101 Switching Protocols is accepted
 *   only when the request has an Upgrade field (else PR_EPROTO "101 ...
 *   asked for no Upgrade"); then it ends the exchange: it is the final
 *   response, the connection belongs to the new protocol, and its "body"
 *   is the raw byte stream that follows (bytes already received after the
 *   101 head first, then the conn, until close; the caller of
 *   pr_http_exchange writes on its conn). A 2xx answer to CONNECT is
 *   returned the same way (the tunnel). Neither is ever reusable.
 * - no body for HEAD requests, 204 and 304.
 * - chunk-size lines: 1 to 16 hex digits, optional BWS + ";" extensions
 *   (skipped), CRLF required; trailer lines follow the header field rules
 *   ("name: value", a token name, no whitespace before the colon, no
 *   control bytes but HT, obs-fold joined) with CRLF line ends, else
 *   PR_EPROTO; they are read and discarded (they never change framing),
 *   counted against max_head_bytes and max_fields.
 * - premature end of stream inside a Content-Length or chunked body is
 *   PR_EPROTO "truncated body"; the end of an until-close body is
 *   PR_ECLOSED (over TLS a truncation error from the conn propagates).
 *
 * Offers to the modules after it: pr__http_exchange, pr__http_field_line,
 *     pr__http_field_push, pr__http_field_set, pr__http_fields,
 *     pr__http_hdr_is, pr__http_is_token, pr__http_lines_join,
 *     pr__http_media_is, pr__http_media_type, pr__http_peer_gone.
 */

/* Limits and per-phase caps. Zero in every field means the default. */
typedef struct pr_http_opts {
    size_t max_head_bytes;  /* 0 = 65536: status lines + fields of one response, all its interim
                               1xx heads and the final head together (a CONNECT reply counts
                               toward the first response through its tunnel); the trailer
                               section has a budget of its own of this size */
    size_t max_fields;      /* 0 = 100: header fields per head (and trailer fields) */
    size_t max_chunk_line;  /* 0 = 4096: one chunk-size line including extensions */
    size_t max_interim;     /* 0 = 10: interim 1xx responses skipped before the final one */
    size_t recv_buf_size;   /* 0 = 65536: the largest receive buffer beyond the head (64 KiB
                               reads: smaller ones cost 8-25 % of the throughput on loopback).
                               A body starts with 12 KiB; the buffer doubles while reads fill
                               it and shrinks back after a run of small reads, so a slow
                               stream holds little */
    int idle_timeout_ms;    /* 0 = off (<0 = off too): the longest silence of the connection, from
                               the request's last byte sent or the last byte received, whatever
                               the calls in between; past it the response fails for good with
                               PR_EIO, sys_errno ETIMEDOUT (PR_ETIMEDOUT is only ever the
                               deadline of the call) */
} pr_http_opts;

/* One header field: views, not NUL-terminated. */
typedef struct pr_http_header {
    pr_slice name;
    pr_slice value;
} pr_http_header;

/* A streaming request body: write up to n bytes into buf and return how
   many (> 0), 0 at the end of the body, or a negative PR_E* code to abort
   the request (that code is returned by pr_http_exchange). */
typedef ptrdiff_t (*pr_http_body_fn)(void *buf, size_t n, void *user_data);

/* What to send. Everything is borrowed for the duration of the call. */
typedef struct pr_http_request {
    const char *method;             /* NULL = "GET"; a token */
    const pr_url *url;              /* required: target and Host come from it */
    const char *const *headers;     /* NULL = none: the caller's field lines, NULL-terminated,
                                       each "Name: value" without a line end (a token name, a
                                       colon, a value without CR, LF or NUL; spaces around the
                                       value trimmed), else PR_EINVAL. A Host line replaces the
                                       generated one; Content-Length and Transfer-Encoding are
                                       PR_EINVAL (the body fields set them) */
    const void *body;               /* body with Content-Length; NULL = none */
    size_t body_len;
    pr_http_body_fn body_fn;        /* streaming body, sent chunked; NULL = none */
    void *body_user_data;           /* passed to body_fn (and body_rewind) */
    /* Read by pr_http_client_request only (pr_http_exchange ignores them): */
    const pr_retry_policy *retry;   /* NULL = the client's retry policy; copied for the call */
    int (*body_rewind)(void *user_data); /* makes a body_fn request replayable: restart the body
                                       from its first byte and return PR_OK (else an error code,
                                       which ends the request). NULL = a body_fn request is
                                       never retried or replayed */
    const char *idempotency_key;    /* NULL = generated when the client has an idempotency_header;
                                       "" = none for this request; else sent as given */
    int idle_timeout_ms;            /* 0 = the client's idle_timeout_ms; > 0 = this request's own;
                                       < 0 = none: the longest silence of the connection (a live
                                       read's limit: a dead peer behind a proxy sends nothing) */
    const char *const *redirect_forward; /* NULL = none: names (NULL-terminated, any case) of this
                                       request's fields that are safe to send on to another origin
                                       when a redirect goes there, on top of the client's
                                       redirect_forward_headers; every other field but Accept,
                                       Accept-Language, User-Agent (and the body's Content-Type,
                                       -Language, -Encoding) is dropped there (see the client) */
} pr_http_request;

/* A response being read. Opaque. */
typedef struct pr_http_response pr_http_response;

/* Write a request on conn and read the response head (interim 1xx skipped).
   Request bytes: "METHOD target HTTP/1.1", Host (from the URL, without
   userinfo), the user's fields in order, then Content-Length (body, or 0
   for POST/PUT/PATCH without a body) or "Transfer-Encoding: chunked"
   (body_fn). No Accept-Encoding, no Connection field.
   Early response: when writing the request fails because the peer closed
   or reset the connection (a server may answer 413 or 401 before the body
   is sent, then close), the response head that arrived is read; a complete
   final response is returned (PR_OK, never reusable), otherwise the write
   error. This needs a conn that still reads after a failed write: TCP
   sockets, pipes, and TLS conns (the write side dies, reads go on).
   Params: out - receives the response (NULL on failure); conn - the
           connection (borrowed; the caller keeps owning it); req - the
           request; opts - limits, NULL = defaults (copied); err -
           receives the failure detail, also left in pr_conn_last_error(conn)
           (NULL = not wanted; zeroed on success); deadline - absolute ms for
           the whole call.
   Returns: PR_OK (whatever the status); PR_EINVAL (bad method, a header
            line that is not a field line, its field named in err, both
            body and body_fn, user framing fields, missing url); PR_ENOMEM;
            PR_EPROTO (malformed response, a 101 without an Upgrade request
            field); PR_ELIMIT (a limit of opts); PR_ECLOSED (closed before any response byte); a
            conn error (PR_EIO, PR_ETLS, ...); a negative code from body_fn;
            PR_EIO with sys_errno ETIMEDOUT (idle_timeout_ms of silence);
            PR_ETIMEDOUT (the deadline passed); PR_ECANCELED. After
            any failure the connection's state is unknown: destroy it.
   Blocks: yes.
   Thread: owner.
   See: pr_http_read, pr_http_next_span, pr_http_response_destroy. */
PRISTINE_API int pr_http_exchange(pr_http_response **out, pr_conn *conn, const pr_http_request *req,
                                  const pr_http_opts *opts, pr_err_info *err, int64_t deadline);

/* The final status code.
   Params: r - a response.
   Returns: the status (100-999); PR_EINVAL if r is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_http_reason. */
PRISTINE_API int pr_http_status(const pr_http_response *r);

/* The HTTP minor version of the response (0 for HTTP/1.0, 1 for HTTP/1.1).
   Params: r - a response.
   Returns: the minor version; PR_EINVAL if r is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_http_status. */
PRISTINE_API int pr_http_version_minor(const pr_http_response *r);

/* The reason phrase (informational only; may be empty).
   Params: r - a response.
   Returns: a view valid until pr_http_response_destroy (empty for NULL).
   Blocks: no.
   Thread: owner.
   See: pr_http_status. */
PRISTINE_API pr_slice pr_http_reason(const pr_http_response *r);

/* Number of header fields of the final response (obs-folds joined).
   Params: r - a response.
   Returns: the count; 0 for NULL.
   Blocks: no.
   Thread: owner.
   See: pr_http_header_at. */
PRISTINE_API size_t pr_http_header_count(const pr_http_response *r);

/* The i-th header field, in received order.
   Params: r - a response; i - index below pr_http_header_count; out -
           receives views valid until pr_http_response_destroy.
   Returns: PR_OK; PR_EINVAL if r or out is NULL or i is out of range.
   Blocks: no.
   Thread: owner.
   See: pr_http_header_get. */
PRISTINE_API int pr_http_header_at(const pr_http_response *r, size_t i, pr_http_header *out);

/* The value of the first field with this name (ASCII case-insensitive).
   Params: r - a response; name - NUL-terminated field name.
   Returns: a pointer to the value view (valid until
            pr_http_response_destroy); NULL if absent or r/name is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_http_header_at. */
PRISTINE_API const pr_slice *pr_http_header_get(const pr_http_response *r, const char *name);

/* Read body bytes: returns as soon as any are available (never waits to
   fill buf). Large Content-Length and until-close reads go straight into
   buf when nothing is buffered.
   Params: r - a response; buf, n - destination (n > 0); deadline -
           absolute ms (the idle timeout of opts applies within it).
   Returns: bytes (> 0); PR_ECLOSED at the end of the body (every later
            call too); PR_EPROTO (malformed chunk framing, "truncated
            body"); PR_ELIMIT (chunk line or trailer limits); a conn error
            (PR_EIO, PR_ETLS, ...); PR_ETIMEDOUT; PR_ECANCELED (both
            retryable: no byte is lost); PR_EINVAL. Other errors stick.
   Blocks: yes.
   Thread: owner.
   See: pr_http_next_span, pr_http_last_error. */
PRISTINE_API ptrdiff_t pr_http_read(pr_http_response *r, void *buf, size_t n, int64_t deadline);

/* The next span of body bytes as a view into the receive buffer (zero
   copy, for decoders). The span is consumed: the next call continues after
   it. It stays valid until the next read or span call on r.
   Params: r - a response; ptr, len - receive the span (len > 0);
           deadline - absolute ms.
   Returns: PR_OK; PR_ECLOSED at the end of the body; otherwise as
            pr_http_read (PR_EPROTO, PR_ELIMIT, conn errors, PR_ETIMEDOUT,
            PR_ECANCELED, PR_EINVAL).
   Blocks: yes.
   Thread: owner.
   See: pr_http_read. */
PRISTINE_API int pr_http_next_span(pr_http_response *r, const char **ptr, size_t *len, int64_t deadline);

/* Whether the connection may carry another request: HTTP/1.1 without
   "Connection: close" (or 1.0 with "keep-alive"), Content-Length or
   chunked framing without Transfer-Encoding + Content-Length, the body
   read to its end, no error and no stray bytes after the message.
   Params: r - a response.
   Returns: 1 if reusable, 0 if not (or r is NULL).
   Blocks: no.
   Thread: owner.
   See: pr_http_read. */
PRISTINE_API int pr_http_reusable(const pr_http_response *r);

/* Detail of the response's last body failure.
   Params: r - a response; out - receives a copy (http_status is set).
   Returns: PR_OK; PR_EINVAL if r or out is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_http_read. */
PRISTINE_API int pr_http_last_error(const pr_http_response *r, pr_err_info *out);

/* Free a response. The connection is not touched (the caller owns it).
   Params: r - a response; NULL is a no-op.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_http_exchange. */
PRISTINE_API void pr_http_response_destroy(pr_http_response *r);

/* ==== proxy: HTTP proxies: proxy settings from the environment, no_proxy matching, CONNECT tunnels ==== >>proxy */
/*
 * proxy: which proxy a client request goes through and how. It owns the
 * proxy settings (options, then the environment), no_proxy matching
 * (pr_http_no_proxy_match, public), the loopback rule, the proxy URL's
 * credentials as Proxy-Authorization: Basic, and the CONNECT tunnel for
 * https through a proxy (with a conn that first hands out the bytes that
 * arrived after the CONNECT reply). The client (the next module) calls
 * these internally: pr__proxy_pick and pr__proxy_parse at create,
 * pr__proxy_is_loopback and pr_http_no_proxy_match per request,
 * pr__proxy_basic for plain http through a proxy, pr__proxy_tunnel when
 * connecting.
 *
 * Proxies (curl's conventions): explicit options first, then (unless
 * ignore_env) the environment read once by pr_http_client_create:
 * http_proxy (lower case only: httpoxy), https_proxy / HTTPS_PROXY,
 * all_proxy / ALL_PROXY (fallback for both), no_proxy / NO_PROXY (see
 * pr_http_no_proxy_match). A proxy URL without a scheme means http://;
 * only http:// proxies are supported. Loopback origins never go through
 * a proxy: localhost, *.localhost and the addresses 127.0.0.0/8 and ::1
 * (parsed as addresses: "127.example.test" is a name and is proxied).
 * Plain http through a proxy sends the absolute-form target to the proxy (Host still sent);
 * https goes through a "CONNECT host:port" tunnel, then TLS to the origin
 * inside it. Proxy credentials in the proxy URL's userinfo become
 * "Proxy-Authorization: Basic". A CONNECT answered with a non-2xx status
 * is PR_EPROTO with the status in pr_err_info.http_status.
 *
 * Offers to the modules after it: pr__proxy_basic, pr__proxy_is_loopback,
 *     pr__proxy_parse, pr__proxy_pick, pr__proxy_tunnel.
 */

/* Whether host is excluded from proxying by a no_proxy list (curl's
   rules): comma-separated entries, surrounding spaces ignored, ASCII
   case-insensitive; "*" alone excludes every host; an entry matches the
   host itself or any subdomain (a leading dot is optional: ".example.com"
   and "example.com" both match "a.example.com" and "example.com", never
   "badexample.com"); a ":port" suffix of an entry is ignored; IPv6
   entries may be bracketed. An IP-literal host matches an entry that is
   the same address (compared as addresses: "::1" matches "0:0::1"; never
   as a domain suffix) or a CIDR range containing it (curl >= 7.86):
   "192.168.0.0/16", "10.0.0.0/8", "::1/128", "fe80::/10", "[fe80::]/10";
   a range never matches a host name, and a malformed range (bits beyond
   the address size, no digits) matches nothing.
   Params: no_proxy - the list (NULL or "" = nothing excluded); host - the
           URL's host (IPv6 with or without brackets).
   Returns: 1 if excluded (connect directly), 0 if not.
   Blocks: no.
   Thread: any.
   See: pr_http_client_opts, pr_http_client_create. */
PRISTINE_API int pr_http_no_proxy_match(const char *no_proxy, const char *host);

/* ==== client: HTTP client: keep-alive pool, connection caps, redirects, retries, breaker, events ==== >>client */
/*
 * client: pr_http_client owns connections. It connects (TCP, then a
 * proxy CONNECT tunnel and/or TLS for https), keeps idle keep-alive
 * connections in a pool, follows redirects when asked, and returns a
 * response that owns its connection until pr_http_response_destroy. A
 * response destroyed after its body was read to the end (and that
 * pr_http_reusable accepts) hands the connection back to the pool; any
 * other response closes it.
 *
 * Pool: per client, keyed by scheme, host, port and proxy (TLS settings
 * are per client, so they are part of the key implicitly). Idle
 * connections older than pool_idle_ms are closed. Before reuse a
 * non-blocking read checks the connection: anything readable (EOF, reset,
 * stray bytes) means it is discarded. If a REUSED connection dies before
 * the first response byte (the peer closed or reset it while the request
 * was written or the head awaited: PR_ECLOSED, PR_EIO with ECONNRESET,
 * EPIPE or ECONNABORTED, a TLS transport EOF), the request is sent once
 * more on a fresh connection when it is replayable: no body_fn (a buffer
 * body is replayed, whatever the method, as curl does). Never after a
 * response byte arrived, never for timeouts or cancellation, never for a
 * streaming body_fn request.
 *
 * Redirects (max_redirects > 0; at most 10): 301/302/303/307/308 with a
 * Location field. Location is resolved against the current URL
 * (pr_url_resolve). 303, and 301/302 answering a POST, become GET
 * without a body (curl's behaviour; HEAD stays HEAD on 303) and, as in
 * Fetch, lose the fields that describe the body: Content-Type,
 * Content-Language, Content-Encoding and Content-Location, whatever the
 * origin; 307/308 keep method and body. A request with a body_fn cannot be
 * replayed: a 307/308 (or any redirect keeping the body) is returned as
 * the final response instead. On an origin change (scheme, host or port)
 * every header field of the request is dropped for the rest of the chain
 * (Authorization, Cookie, X-Api-Key, any field: the client cannot tell a
 * credential by its name) except
 * - Accept, Accept-Language and User-Agent, which only describe the
 *   request; Content-Type, Content-Language and Content-Encoding while
 *   the body goes on;
 * - the fields the client adds itself (retry_count_header,
 *   timeout_header, idempotency_header);
 * - the fields named safe to forward: the client's
 *   redirect_forward_headers and the request's redirect_forward (a
 *   module on top of the client names its own protocol fields there).
 * A user Host field is dropped on an origin change in any case (it names
 * the old origin; the new Host comes from the URL). https -> http is
 * PR_EPROTO unless allow_https_to_http. More than max_redirects is
 * PR_ELIMIT. The bodies of followed 3xx responses are drained (up to 64
 * KiB, for at most 1 s within the deadline) so their connection can be
 * reused; a body not over by then closes that connection, and the next hop
 * goes on.
 *
 * Proxies: see the proxy module (the environment, no_proxy, loopback
 * origins, CONNECT tunnels); the client reads the proxy settings once at
 * create. Client TCP connections get TCP keep-alive (tcp_keepalive_s) and
 * TCP_NODELAY.
 *
 * Retries (the retry option; on by default): a request is one logical
 * call made of attempts; an attempt is connect + request + response head
 * (+ the whole body for pr_http_client_fetch) and follows the redirect
 * chain. A failed attempt is retried after a backoff sleep when
 * - it failed in transport: a temporary DNS failure, connect, reset or
 *   closed connection, a TLS handshake cut short, a malformed response, a
 *   timeout of the attempt (attempt_timeout_ms, idle_timeout_ms) - never
 *   the call's own deadline, cancellation or a limit (PR_ELIMIT), and never
 *   a cause that retrying cannot cure: a name that does not exist
 *   (PR_EDNS with dns_error EAI_NONAME, EAI_NODATA, EAI_FAIL), a TLS
 *   handshake either side refused (an untrusted certificate, a wrong host
 *   name, a peer that does not speak TLS: PR_ETLS), PR_EINVAL, PR_ENOTSUP;
 * - or the response says so: x-should-retry: true / false (trimmed, any
 *   case) decides first for any non-2xx status, else 408, 409, 429 and
 *   5xx are retried. retry-after-ms, then Retry-After (seconds or an
 *   HTTP-date) set the sleep when the hint is > 0, cut to
 *   max_retry_after_ms (60 s by default: a server asking for 120 s gets
 *   60 s); otherwise the policy's backoff (default PR_BACKOFF_HTTP: 0.5,
 *   1, 2, 4, 8, 10, 10 s... each shortened by up to a quarter).
 * Defaults: 10 retries. The request's retry field overrides the client's
 * policy; max_retries = PR_RETRY_OFF turns retries off. Only replayable
 * requests are retried (no body_fn unless body_rewind is given), and only
 * before the response head is handed to the caller: a body the caller has
 * started to read is never fetched again. A retried response is discarded
 * (a body already in the buffer is read so the connection can be reused;
 * otherwise it is closed). The final outcome is what the caller gets: a
 * response (PR_OK, whatever its status: a 503 after the last retry is a
 * 503 response with its body) or the last attempt's error. The sleep never
 * runs past the call's deadline: when the next one would, the last
 * attempt's outcome comes back at once. A policy classify hook sees each
 * outcome (an HTTP status >= 100, or a negative PR_E* code) with *after_ms
 * preset to the server's usable hint (-1 if none) and may decide
 * otherwise, except for a cause retrying cannot cure (above): that one
 * ends the call whatever the hook says. Optional per-attempt headers: retry_count_header (retries
 * taken so far), timeout_header (attempt_timeout_ms in seconds), and
 * idempotency_header: one random key per logical request other than GET
 * and HEAD, the same on every retry.
 *
 * Circuit breaker (breaker option): admitted before every attempt (a
 * refusal ends the call with PR_ECIRCUIT); an attempt that failed in
 * transport, a 408 and a 5xx count as failures, a 429 and cancellation
 * count as nothing, any other response as a success.
 *
 * Sharing: one client may be used by any number of tasks of its thread at
 * once; each request has its own connection (pool entries are handed to
 * one request at a time). max_connections and max_connections_per_origin
 * cap the connections in use at once (idle pooled ones hold no slot);
 * requests beyond the cap wait in FIFO order within their deadline. Do not
 * destroy the client while a request is in progress (responses may
 * outlive it).
 *
 * Events (the observer member: on_event and its own user_data, apart from
 * any other callback's, so telemetry installs itself there with
 * opts.observer.on_event = pr_telemetry_http_hook and
 * opts.observer.user_data = the hub): each request reports START, one
 * ATTEMPT per attempt (status or error, duration), RETRY before each sleep
 * (the delay and why) and DONE (the outcome, the whole duration). The URL
 * passed has no userinfo. With no hook set nothing is formatted.
 *
 * Errors: the calls that hand out a response or fill a result
 * (pr_http_client_request, _get, _send, _fetch) take a pr_err_info *err
 * parameter (NULL = not wanted) just before the deadline, which receives
 * that call's detail (code, sys_errno, tls_error, dns_error, http_status,
 * msg); pr_http_client_create takes one last. The client lives on, and
 * pr_http_client_last_error also keeps its last failure (shared by all its
 * tasks: the parameter is the one to read). Timeout messages name the phase
 * and the limit that fired, e.g. "http: timed out waiting for the response
 * head (attempt timeout 300 ms)". PR_ETIMEDOUT always means the call's
 * deadline passed: a limit of the client's own that ends the call sooner
 * (connect_timeout_ms, attempt_timeout_ms, idle_timeout_ms) is PR_EIO with
 * sys_errno ETIMEDOUT.
 *
 * Offers to the modules after it: pr__client_final.
 */

/* An HTTP client with a connection pool. Opaque. */
typedef struct pr_http_client pr_http_client;

/* What pr_http_client_opts.observer.on_event reports. */
enum pr_http_event_kind {
    PR_HTTP_EVENT_START = 1,   /* a request begins */
    PR_HTTP_EVENT_ATTEMPT = 2, /* an attempt ended: status, or error */
    PR_HTTP_EVENT_RETRY = 3,   /* a retry is scheduled: delay_ms, reason */
    PR_HTTP_EVENT_DONE = 4     /* the request ended: status or error, duration_ms of the whole call */
};

/* One event. Pointers are valid during the callback only. */
typedef struct pr_http_event {
    int kind;              /* PR_HTTP_EVENT_* */
    const char *method;
    const char *url;       /* the request's URL without userinfo */
    int attempt;           /* 0 for the first attempt */
    int status;            /* the response status, 0 if none */
    int error;             /* PR_OK, or the attempt's / request's error code */
    int64_t duration_ms;   /* ATTEMPT: of the attempt; DONE: of the request */
    int64_t delay_ms;      /* RETRY: the sleep before the next attempt */
    const char *reason;    /* RETRY: why, e.g. "status 503", "PR_ECLOSED: connection reset" */
    int hinted;            /* RETRY: 1 when the delay is the server's (Retry-After, retry-after-ms) */
} pr_http_event;

/* Who watches a client's requests (telemetry, logs): the notifications and
   their own context, apart from the caller's other callbacks. */
typedef struct pr_http_observer {
    void (*on_event)(const pr_http_event *ev, void *user_data); /* NULL = none */
    void *user_data;          /* passed to on_event */
} pr_http_observer;

/* Options of pr_http_client_create. Zero in every field means the default;
   strings are copied. */
typedef struct pr_http_client_opts {
    int connect_timeout_ms;   /* 0 = 30000; < 0 = only the call's deadline: caps DNS, TCP,
                                 proxy CONNECT and TLS handshake together (past it: PR_EIO,
                                 sys_errno ETIMEDOUT, retried like a refused connect) */
    int idle_timeout_ms;      /* 0 = off: the longest silence of a connection while a response is
                                 awaited or read, from the last byte either way (replaces
                                 http.idle_timeout_ms; pr_http_request.idle_timeout_ms overrides it) */
    int pool_idle_ms;         /* 0 = 60000: idle connections older than this are closed; < 0 = no pool */
    int pool_max;             /* 0 = 16: idle connections kept (all origins together) */
    int max_redirects;        /* 0 = redirects are returned, not followed; > 0 = follow up to this many (max 10) */
    int allow_https_to_http;  /* 0 = a redirect from https to http fails with PR_EPROTO */
    int ignore_env;           /* 0 = unset proxy fields come from the environment; 1 = never read it */
    const char *http_proxy;   /* proxy for http URLs; NULL = env http_proxy; "" = none */
    const char *https_proxy;  /* proxy for https URLs; NULL = env https_proxy, HTTPS_PROXY; "" = none */
    const char *all_proxy;    /* fallback for both; NULL = env all_proxy, ALL_PROXY; "" = none */
    const char *no_proxy;     /* hosts never proxied; NULL = env no_proxy, NO_PROXY; "" = none */
    pr_tls_opts tls;          /* for https origins: ca_file / ca_pem are parsed once by
                                 pr_http_client_create (unless tls.anchors is set: those are
                                 used, borrowed, and must outlive the client); so are the client
                                 certificate's cert_* / key_* (unless tls.identity is set,
                                 borrowed likewise); alpn copied; tls.half_duplex 0 = half
                                 duplex (half the TLS memory: an exchange sends the whole
                                 request before it reads), -1 = full duplex */
    pr_http_opts http;        /* parser limits of every exchange */
    int tcp_keepalive_s;      /* 0 = 60: TCP keep-alive probes after this many idle seconds; < 0 = off */
    pr_retry_policy retry;    /* retries (see above); zero = 10 retries with PR_BACKOFF_HTTP;
                                 retry.max_retries = PR_RETRY_OFF turns them off; copied */
    int attempt_timeout_ms;   /* 0 = none: caps each attempt inside the call's deadline (connect,
                                 request, head; for pr_http_client_fetch the whole body too) */
    const char *retry_count_header; /* NULL = none; e.g. "x-stainless-retry-count": retries taken so
                                 far (0, 1, 2...) on every attempt, unless the request has it */
    const char *timeout_header; /* NULL = none; e.g. "x-stainless-read-timeout": attempt_timeout_ms
                                 in seconds, unless the request has it */
    const char *idempotency_header; /* NULL = none; e.g. "X-Idempotency-Key": a key (32 hex digits)
                                 per logical non-GET/HEAD request, the same on every retry */
    int max_connections;      /* 0 = no cap: connections in use at once, all origins */
    int max_connections_per_origin; /* 0 = no cap: connections in use at once per origin */
    pr_breaker *breaker;      /* NULL = none: admits every attempt (borrowed; must outlive the client) */
    pr_http_observer observer; /* events of every request (see Events above); zero = none */
    size_t fetch_max_bytes;   /* 0 = 16 MiB: the largest body pr_http_client_fetch reads (PR_ELIMIT) */
    int max_retry_after_ms;   /* 0 = 60000 (< 0 too): the longest retry sleep a server's
                                 retry-after-ms / Retry-After gets; a longer hint is cut to it */
    const char *const *redirect_forward_headers; /* NULL = none: names (NULL-terminated, any case)
                                 of request fields safe to send on when a redirect changes the
                                 origin; copied. Every other field is dropped there but Accept,
                                 Accept-Language, User-Agent, the body's Content-Type, -Language,
                                 -Encoding and the client's own fields (see Redirects above);
                                 the request's redirect_forward adds names per request */
} pr_http_client_opts;

/* A whole response read by pr_http_client_fetch. Zero it before the first
   use; pr_http_result_deinit frees it. */
typedef struct pr_http_result {
    int status;               /* the final status; 0 when the request failed */
    pr_http_response *resp;   /* the final response's head (pr_http_header_get etc.); its body
                                 has been read and its connection given back; NULL on failure */
    char *body;               /* the body, NUL-terminated (the NUL is not counted); NULL on failure */
    size_t body_len;
    pr_json_doc *json;        /* the body parsed, when Content-Type is JSON (application/json or
                                 any +json) and it parses; else NULL */
    int attempts;             /* attempts made (1 + retries) */
} pr_http_result;

/* Create a client. Reads the proxy environment once (unless ignore_env)
   and parses the trust anchors of tls.ca_file / tls.ca_pem and the client
   certificate of tls.cert_* / tls.key_* once (shared by every https
   connection of the client; not in a PRISTINE_NO_TLS build).
   Params: out - receives the client; opts - NULL = defaults (copied);
           err - receives why it failed, naming the file or the proxy URL
           (NULL = not wanted; zeroed on success).
   Returns: PR_OK; PR_EINVAL (out NULL, a proxy URL that does not parse, no
            certificate in tls.ca_file / tls.ca_pem, a client certificate
            without a usable key or the reverse, an invalid retry policy,
            negative caps); PR_EIO (tls.ca_file, cert_file or key_file
            cannot be read; errno in err->sys_errno); PR_ENOTSUP (an
            https:// or other non-http proxy URL); PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_http_client_request, pr_http_client_destroy. */
PRISTINE_API int pr_http_client_create(pr_http_client **out, const pr_http_client_opts *opts, pr_err_info *err);

/* Destroy a client and close its idle connections. Responses still alive
   keep working; the client's memory goes with the last of them (their
   connections are then closed instead of pooled). NULL is a no-op.
   Params: c - the client.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_http_client_create. */
PRISTINE_API void pr_http_client_destroy(pr_http_client *c);

/* Send a request and read the final response head: pooled or new
   connection, proxy, TLS, one transparent replay on a dead reused
   connection, redirects when enabled, retries by the policy (see above).
   Any number of tasks of the thread may call it on one client at once.
   The response owns the
   connection; destroy it after reading the body to let the connection be
   reused. req->url and the request are borrowed for the call only. After
   a 101 the new protocol's bytes can be read here but not written: a
   protocol that writes after the switch uses pr_http_exchange on a
   connection of its own.
   Params: c - the client; out - receives the response (NULL on failure);
           req - the request (url required); err - receives this call's
           failure detail (NULL = not wanted; zeroed on success); deadline
           - absolute ms for the whole call (connect_timeout_ms caps the
           connect phase inside it).
   Returns: PR_OK (whatever the status); PR_EINVAL (bad request, see
            pr_http_exchange); PR_ENOMEM; PR_EDNS; PR_EIO; PR_ETLS;
            PR_ENOTSUP (https in a PRISTINE_NO_TLS build); PR_ECLOSED;
            PR_EPROTO (malformed response, proxy refused CONNECT, https ->
            http redirect refused); PR_ELIMIT (a parser limit, too many
            redirects); PR_ECIRCUIT (the breaker refused an attempt); a
            negative code from body_fn or body_rewind; PR_ETIMEDOUT
            (deadline, connect, attempt or idle timeout, waiting for a
            connection slot); PR_ECANCELED. After retries, the last
            attempt's outcome. Detail in err (and in
            pr_http_client_last_error).
   Blocks: yes.
   Thread: owner.
   See: pr_http_client_get, pr_http_read, pr_http_response_destroy. */
PRISTINE_API int pr_http_client_request(pr_http_client *c, pr_http_response **out, const pr_http_request *req,
                                        pr_err_info *err, int64_t deadline);

/* GET a URL given as text: pr_url_parse, then pr_http_client_request.
   Params: c - the client; out - receives the response; url - NUL-terminated
           absolute http/https URL; err - receives the failure detail (NULL
           = not wanted); deadline - absolute ms.
   Returns: as pr_http_client_request (PR_EINVAL for a URL that does not
            parse); PR_ETIMEDOUT; PR_ECANCELED.
   Blocks: yes.
   Thread: owner.
   See: pr_http_client_request. */
PRISTINE_API int pr_http_client_get(pr_http_client *c, pr_http_response **out, const char *url, pr_err_info *err,
                                    int64_t deadline);

/* Send a request given as text: method, URL, header lines and an
   optional body. Otherwise as pr_http_client_request (retries, redirects,
   events) with the client's retry policy.
   Params: c - the client; out - receives the response; method - NULL =
           "GET"; url - NUL-terminated absolute http/https URL; headers -
           NULL-terminated field lines "Name: value" (as
           pr_http_request.headers), or NULL; body, body_len - the body
           (NULL, 0 = none); err - receives the failure detail (NULL = not
           wanted); deadline - absolute ms.
   Returns: as pr_http_client_request; PR_EINVAL also for a URL that does
            not parse or a header line that is not a field line (the
            message names its field); PR_ETIMEDOUT; PR_ECANCELED.
   Blocks: yes.
   Thread: owner.
   See: pr_http_client_request, pr_http_client_fetch. */
PRISTINE_API int pr_http_client_send(pr_http_client *c, pr_http_response **out, const char *method, const char *url,
                                     const char *const *headers, const void *body, size_t body_len,
                                     pr_err_info *err, int64_t deadline);

/* Send a request and read the whole response into memory. The body is
   part of the attempt: a body that stalls past attempt_timeout_ms or is
   cut short is retried like a failed connection (nothing reached the
   caller yet). A JSON body is parsed as well.
   Params: c - the client; res - zeroed or deinit'ed result, filled; req -
           the request (as for pr_http_client_request); err - receives the
           failure detail, and for a final status >= 400 (a PR_OK call)
           http_status and the start of the body in msg with code PR_OK
           (NULL = not wanted); deadline - absolute ms.
   Returns: PR_OK (res->status may be any status: check it); PR_ELIMIT (a
            body over fetch_max_bytes); otherwise as pr_http_client_request
            (PR_ETIMEDOUT, PR_ECANCELED, ...), with err set.
   Blocks: yes.
   Thread: owner.
   See: pr_http_result_deinit. */
PRISTINE_API int pr_http_client_fetch(pr_http_client *c, pr_http_result *res, const pr_http_request *req,
                                      pr_err_info *err, int64_t deadline);

/* Free what a result holds and zero it (NULL is a no-op).
   Params: res - the result.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_http_client_fetch. */
PRISTINE_API void pr_http_result_deinit(pr_http_result *res);

/* Detail of the client's last failure.
   Params: c - the client; out - receives a copy.
   Returns: PR_OK; PR_EINVAL if c or out is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_http_client_request. */
PRISTINE_API int pr_http_client_last_error(const pr_http_client *c, pr_err_info *out);

/* Number of idle connections in the client's pool (for tests and stats).
   Params: c - the client.
   Returns: the count; 0 for NULL.
   Blocks: no.
   Thread: owner.
   See: pr_http_client_opts. */
PRISTINE_API size_t pr_http_client_idle_count(const pr_http_client *c);

/* ==== eventsource: the reconnecting Server-Sent Events stream (EventSource) over the HTTP client ==== >>eventsource */
/*
 * eventsource: the stream an application iterates.
 *
 *     pr_sse *s;
 *     pr_sse_event ev;
 *     int rc = pr_sse_open(&s, "https://api.example.com/v1/events", NULL, NULL, deadline);
 *     while (rc == PR_OK && (rc = pr_sse_next(s, &ev, deadline)) == PR_OK)
 *         printf("%.*s: %.*s\n", (int)ev.type_len, ev.type, (int)ev.data_len, ev.data);
 *     pr_sse_destroy(s);
 *
 * pr_sse_next suspends only the calling task. Underneath, the stream follows
 * the EventSource processing model of the WHATWG HTML standard, with the
 * two differences named here (whatwg_strict removes the first):
 *
 * - Opening. A connection opens only on a 200 (after redirects, which the
 *   stream's own client follows) whose Content-Type is text/event-stream
 *   (type and subtype in any case, parameters ignored).
 * - Final causes end the stream at once, at open or on any reconnect,
 *   with their own code and detail (err, pr_sse_last_error): 204 No
 *   Content (PR_ECLOSED: the server says stop); a status that is not
 *   retried (PR_EHTTP with it, and the message ends with the start of the
 *   answer's body, where an API says why: a bad key, an unknown model); a
 *   200 of another type (PR_EPROTO); more than 10 redirects (PR_EHTTP
 *   with the last 3xx); a response head over the client's limits
 *   (PR_EPROTO); a name
 *   that does not exist (PR_EDNS); a certificate that is not trusted or
 *   does not name the host, a peer that does not speak TLS, a refused
 *   client certificate (PR_ETLS); a bad URL, header or option (PR_EINVAL);
 *   https in a PRISTINE_NO_TLS build (PR_ENOTSUP). The standard lets a
 *   client fail the connection when retrying is known to be futile.
 * - Retried causes: a network error before a response (refused, reset, a
 *   connect or idle timeout, a temporary DNS failure, a connection cut
 *   during the TLS handshake) and the statuses 408, 409, 429 and 5xx.
 *   Difference 1: the standard fails the connection on every status but
 *   200; whatwg_strict does too (429 and 5xx included).
 * - Difference 2: pr_sse_open is bounded. It tries at most open_attempts
 *   (4) connections, waiting the backoff between them (1 s, 2 s, 4 s, each
 *   shortened by up to a quarter: tries at about 0, 1, 3 and 7 s; no
 *   reconnection time), or instead the wait the answer's Retry-After /
 *   retry-after-ms asks for (at most max_retry_ms). Then it returns the
 *   last try's cause: PR_EIO with its errno (ECONNREFUSED, ECONNRESET,
 *   ETIMEDOUT for a connect or idle timeout), PR_EHTTP with the status,
 *   and so on. When the next try would start after the deadline it
 *   returns that cause at once. PR_ETIMEDOUT means the caller's deadline
 *   passed, nothing else (a try was still running then).
 * - Once the stream has been open, a clean end of the body, a break in it,
 *   idle_timeout_ms of silence and every retried cause reconnect, without
 *   a bound unless max_failures sets one: after the stream's reconnection
 *   time (3000 ms until the server sends `retry:`, at most max_retry_ms),
 *   plus a backoff (1 s doubling to 30 s, each step shortened by up to a
 *   quarter) that takes its next step on every failed connection, and on
 *   every early end after the first: an end before the connection stayed
 *   up healthy_ms (60 s; LaunchDarkly's clients use the same). So a
 *   server that accepts and drops at once is met with a growing wait; a
 *   connection that stayed up that long resets the backoff. A retried
 *   status whose Retry-After / retry-after-ms asks for a wait gets exactly
 *   that wait (at most max_retry_ms) instead. No wait runs past the caller's
 *   deadline (then PR_ETIMEDOUT; the next call goes on). The failure count
 *   (max_failures, observer's failures) counts the connections since the
 *   last healthy one that did not open, or that ended within a second of
 *   opening before an event. The request is made again from the original
 *   URL with Last-Event-ID set to the stream's last-event-ID (no header
 *   while it is empty, or when it cannot travel in a header: see
 *   max_last_event_id); the partial block of the broken connection is
 *   dropped, so every event arrives complete, once, in order. A reconnect
 *   is not an error of pr_sse_next: observer.on_reconnect sees it
 *   (attempt, delay, reason).
 * - A request with a body, or a method other than GET, is sent again only
 *   when the server cannot have processed it, unless the options say it is
 *   repeatable: at open, after a refused connection, a DNS failure or a
 *   408, 429 or 503 (LLM APIs answer 429 to a first POST routinely); any
 *   other failure ends the open with it. Once its response began streaming
 *   it is never sent again: its end is PR_ECLOSED, a break that error.
 * - An over-long line or event is PR_ELIMIT once (the detail in
 *   pr_sse_last_error), then the stream goes on with the next event; with
 *   reconnect_on_limit it drops the connection and reconnects instead.
 *
 * Ids: ev.id is the event's own `id` (NULL when its block had none),
 * ev.last_id the stream's last-event-ID at dispatch (what a reconnect sends;
 * blocks with only `id:` move it too). ev.retry_ms is the block's own
 * `retry`, ev.stream_retry_ms the reconnection time in use at dispatch.
 *
 * One task reads a stream at a time. Cancelling that task ends a blocked
 * pr_sse_next with PR_ECANCELED (the stream stays usable); pr_sse_destroy
 * from another task of the thread ends it at once too and frees the stream
 * when that read has returned.
 *
 * Many streams: give each its task (pr_go) and let them share one
 * pr_http_client (opts.client). A quiet plaintext stream then costs about
 * 15 KiB of resident memory, its task stack's two touched pages included
 * (10,000 streams on one thread; over TLS about 36 KiB): the receive
 * buffer grows only while a stream outpaces it and shrinks back after.
 * Raise the open-file limit (RLIMIT_NOFILE) to the number of streams.
 */

/* A reconnecting event stream. Opaque; owned by the thread that opened it. */
typedef struct pr_sse pr_sse;

/* What observer.on_reconnect is told before the stream waits to connect
   again (the strings are valid during the callback only). */
typedef struct pr_sse_reconnect {
    long reconnects;            /* this reconnect's number: 1 for the first */
    int failures;               /* failed connections since the last healthy one (see max_failures) */
    int64_t delay_ms;           /* the wait before the next connection (a server's, or the
                                   reconnection time plus the backoff; before the stream first
                                   opened, the backoff alone) */
    int reason;                 /* PR_ECLOSED (the body ended), PR_EHTTP (a retried status),
                                   PR_ELIMIT (reconnect_on_limit), or the connection's error code
                                   (idle_timeout_ms of silence: PR_EIO, sys_errno ETIMEDOUT) */
    int status;                 /* the refused response's status, 0 if none */
    const char *detail;         /* why, in words */
    const char *last_event_id;  /* what the next request sends ("" = no Last-Event-ID) */
} pr_sse_reconnect;

/* What watches a stream from outside (telemetry's pr_telemetry_sse_hook,
   say), with a user_data of its own, apart from the options' callbacks. */
typedef struct pr_sse_observer {
    /* Called before the stream waits to connect again. NULL = none. */
    void (*on_reconnect)(const pr_sse_reconnect *info, void *user_data);
    void *user_data;            /* on_reconnect's argument */
} pr_sse_observer;

/* Options of pr_sse_open. Zero means the default; strings are copied. */
typedef struct pr_sse_stream_opts {
    pr_http_client *client;     /* NULL = one of its own (redirects followed, up to 10; tls below); else
                                   borrowed: it must outlive the stream, and its own settings apply */
    pr_tls_opts tls;            /* the own client's TLS settings (a private CA: tls.ca_file), copied
                                   into its options; all zero = the defaults. Must be all zero when
                                   client is set (PR_EINVAL): the borrowed client's apply */
    const char *method;         /* NULL = "GET" */
    const char *body;           /* request body (e.g. JSON for a POST stream); NULL = none */
    size_t body_len;
    int repeatable;             /* 1 = a request with a body or another method than GET may be sent
                                   again on any retry or reconnect; 0 = only before the stream opened,
                                   after a refused connection, a DNS failure, a 408, 429 or 503 */
    const char *const *headers; /* extra fields as "Name: value" strings, NULL-terminated; NULL = none */
    /* Called before every connection: append more fields as "Name: value\r\n"
       lines to out (a fresh token, say). A nonzero return fails the stream
       with that code. NULL = none. */
    int (*headers_fn)(pr_buf *out, void *user_data);
    void *user_data;            /* the argument of the options' own callbacks (headers_fn) */
    const char *last_event_id;  /* resume: sent on the first connection too; NULL = none */
    int64_t retry_ms;           /* 0 = 3000: the reconnection time until the server sends `retry:` */
    int64_t max_retry_ms;       /* 0 = 3600000 (an hour): the cap on every wait a server asks for
                                   (`retry:`, Retry-After, retry-after-ms) */
    pr_backoff backoff;         /* added to the reconnection time: one step more for each failed
                                   connection and each early end but the first since the last healthy
                                   one (healthy_ms); the whole wait between pr_sse_open's tries;
                                   base_ms 0 = 1 s doubling to 30 s, minus up to a quarter */
    int idle_timeout_ms;        /* 0 = 45000: silence on the connection (from its last byte, however
                                   often pr_sse_next is called meanwhile) after which it counts as
                                   dropped (servers send a comment every 15 s or so); < 0 = none */
    size_t max_last_event_id;   /* 0 = 4096: the longest last-event-ID sent as Last-Event-ID; a
                                   longer one, or one with a control byte, is not sent (a warning
                                   is logged) and the server decides where to resume */
    int max_failures;           /* 0 = unlimited; else failed connections (ones that did not open, or
                                   ended within a second without an event) since the last healthy one
                                   before the stream fails with the last one's error */
    int open_attempts;          /* 0 = 4: connections pr_sse_open tries before it returns the last
                                   one's cause (waits 1, 2, 4 s between them: the backoff); < 0 = no
                                   bound but the deadline */
    int healthy_ms;             /* 0 = 60000: a connection that stayed up this long resets the backoff
                                   and the failure count when it ends (a shorter one is an early end:
                                   see backoff); < 0 = any connection that did not end within a second
                                   without an event resets them */
    int whatwg_strict;          /* 1 = the standard's processing model exactly: every status but 200
                                   fails the stream (408, 409, 429 and 5xx too); a network error or
                                   the end of the body reconnects */
    int reconnect_on_limit;     /* 1 = PR_ELIMIT drops the connection and reconnects */
    pr_sse_decoder_opts decoder; /* line and event limits, raw bytes */
    pr_sse_observer observer;   /* reconnect notifications (telemetry); zero = none */
    pr_retry_hooks hooks;       /* the waits, their random numbers, the wall clock (tests) */
} pr_sse_stream_opts;

/* Open a stream: connect and check the response. A final cause returns at
   once; a retried one (a network error, 408, 409, 429, 5xx) is tried again,
   up to open_attempts connections in all (4: at about 0, 1, 3 and 7 s, or
   when the server's Retry-After says), then its cause is returned, also
   with PR_FOREVER. The rules are the module's (above).
   Params: out - receives the stream (NULL on failure); url - http or https
           (copied); opts - NULL = defaults; err - receives why the call
           failed (the status, the connection's errno, TLS or DNS detail;
           zeroed on success); NULL = not wanted; deadline - absolute ms for
           this call (the stream itself has no end).
   Returns: PR_OK; PR_ECLOSED (204: the server says do not connect);
            PR_EHTTP (a status that is not retried, or the last try's
            retried one; the status in err, and for the first the start of
            the answer's body in err.msg; more than 10 redirects, with
            the last 3xx); PR_EPROTO (not text/event-stream, or a response
            head over the client's limits); PR_EDNS (a name that does not exist, or the
            last try's resolver failure); PR_ETLS (certificate, hostname, a
            peer that does not speak TLS); PR_EIO (the last try's network
            error, err.sys_errno: ECONNREFUSED, ETIMEDOUT for a connect or
            idle timeout, ...); PR_ETIMEDOUT (the deadline passed while a
            try ran; the last finished try's cause in err); PR_ECANCELED;
            PR_EINVAL (a bad URL, header or option, tls with client);
            PR_ENOTSUP (https without TLS); PR_ENOMEM.
   Blocks: yes.
   Thread: owner.
   See: pr_sse_next, pr_sse_destroy. */
PRISTINE_API int pr_sse_open(pr_sse **out, const char *url, const pr_sse_stream_opts *opts, pr_err_info *err,
                             int64_t deadline);

/* The next event, reconnecting as needed.
   Params: s - the stream; ev - receives the event; its strings stay valid
           until the next call on s; deadline - absolute ms.
   Returns: PR_OK; PR_ETIMEDOUT (the deadline passed; nothing is lost, call
            again); PR_ECANCELED (the task was cancelled, or the stream is
            being destroyed); PR_ELIMIT (a line or event over its limit was
            dropped; call again for the next); PR_ECLOSED (the server sent
            204, or a stream that cannot be repeated ended); PR_EHTTP,
            PR_EPROTO, PR_EDNS, PR_ETLS or PR_EIO when the stream failed: a
            final cause on a reconnect, max_failures reached, or a break of
            a stream that cannot be repeated (then every later call returns
            it; PR_EIO with sys_errno ETIMEDOUT for an idle timeout, never
            PR_ETIMEDOUT; a limit that ends the stream, such as more than 10
            redirects, is PR_EHTTP or PR_EPROTO, never PR_ELIMIT);
            PR_EINVAL; PR_ENOMEM.
   Blocks: yes.
   Thread: owner.
   See: pr_sse_open, pr_sse_last_error. */
PRISTINE_API int pr_sse_next(pr_sse *s, pr_sse_event *ev, int64_t deadline);

/* Close the connection and free the stream. A task blocked in pr_sse_next
   on it returns PR_ECANCELED; the memory goes when it has. NULL is a no-op.
   Params: s - the stream.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_sse_open. */
PRISTINE_API void pr_sse_destroy(pr_sse *s);

/* The stream's last-event-ID: what the next connection sends.
   Params: s - the stream; len - receives its length (may be NULL).
   Returns: a NUL-terminated string, never NULL ("" = none), valid until
            the next call on s.
   Blocks: no.
   Thread: owner.
   See: pr_sse_event. */
PRISTINE_API const char *pr_sse_last_event_id(const pr_sse *s, size_t *len);

/* The reconnection time in use: the latest `retry:` of the stream, else
   the initial one, at most max_retry_ms.
   Params: s - the stream.
   Returns: milliseconds; -1 if s is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_sse_stream_opts. */
PRISTINE_API int64_t pr_sse_retry_ms(const pr_sse *s);

/* The current connection's status (0 while connecting).
   Params: s - the stream.
   Returns: the status or 0; PR_EINVAL if s is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_sse_header. */
PRISTINE_API int pr_sse_status(const pr_sse *s);

/* A field of the current connection's response head.
   Params: s - the stream; name - case-insensitive.
   Returns: the value (valid while that connection lasts) or NULL.
   Blocks: no.
   Thread: owner.
   See: pr_sse_status. */
PRISTINE_API const pr_slice *pr_sse_header(const pr_sse *s, const char *name);

/* How many times the stream has reconnected.
   Params: s - the stream.
   Returns: the count; 0 if s is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_sse_stream_opts. */
PRISTINE_API long pr_sse_reconnects(const pr_sse *s);

/* Why the last call failed, or the last reconnect happened.
   Params: s - the stream; out - receives the detail.
   Returns: PR_OK; PR_EINVAL.
   Blocks: no.
   Thread: owner.
   See: pr_sse_next. */
PRISTINE_API int pr_sse_last_error(const pr_sse *s, pr_err_info *out);

/* ==== session: a job service's session: the submit throttle and the session heartbeat ==== >>session */
/*
 * session: what a client of a job service needs around its requests,
 * built from the retry and client modules.
 *
 * pr_throttle holds a submit pipeline back in layers: a concurrency
 * semaphore, a second and smaller one while the pipeline has recently been
 * backed off, and a bytes budget whose weight grows then; a 429 opens a
 * backoff window (pr_backoff_window, shared or its own) that every
 * submitter waits out. A task acquires a ticket before its submit and
 * releases it after; the throttle is owned by its creator and freed with
 * pr_throttle_destroy once no task is inside it.
 *
 * pr_heartbeat is a task that keeps a session alive: it POSTs
 * {"session_id": .., "type": "session_heartbeat"} every interval, without
 * retries, counts the failures and warns (the log, or on_warning) once
 * none has succeeded for warn_after_ms. pr_heartbeat_stop ends it and
 * frees it.
 *
 * Both are independent of remote futures (the rfuture module), which a
 * pipeline usually pairs them with.
 *
 * Each takes an HTTP client, or makes one of its own (destroyed with it)
 * from the TLS settings in its options; so do the remote-future poller and
 * the telemetry reporter.
 *
 * Offers to the modules after it: pr__session_url, pr__session_client.
 */

/* ---- submit throttle ---- */

/* Layered limits for a submit pipeline: a concurrency semaphore; while
   "recently backed off" (during a backoff window and recent_ms after it)
   a second, smaller one; and a bytes semaphore whose weight is multiplied
   then. A 429 opens the shared window for everyone. Opaque. */
typedef struct pr_throttle pr_throttle;

/* Options of pr_throttle_create. Zero means the default. */
typedef struct pr_throttle_opts {
    int max_concurrent;          /* 0 = 400 */
    int backoff_concurrent;      /* 0 = 10: the extra limit while recently backed off */
    int64_t max_bytes;           /* 0 = 10 MiB: the bytes budget */
    int backoff_byte_factor;     /* 0 = 20: the weight multiplier while recently backed off */
    int recent_ms;               /* 0 = 10000: "recently" lasts this long after a window ends */
    int small_window_ms;         /* 0 = 1000: the window a 429 opens for a small request */
    int large_window_ms;         /* 0 = 5000: ... and for a large one */
    int64_t large_bytes;         /* 0 = 128 KiB: above this a request is large */
    pr_backoff_window *window;   /* NULL = one of its own; else shared (borrowed) */
    const char *key;             /* the window's key; NULL = "" (copied) */
} pr_throttle_opts;

/* What pr_throttle_acquire took, for pr_throttle_release. */
typedef struct pr_throttle_ticket {
    int64_t weight;              /* bytes taken from the budget */
    int backoff_slot;            /* a slot of the backoff semaphore was taken */
} pr_throttle_ticket;

/* Create a throttle.
   Params: out - receives it; opts - NULL = defaults.
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_throttle_acquire. */
PRISTINE_API int pr_throttle_create(pr_throttle **out, const pr_throttle_opts *opts);

/* Free a throttle (no task may be inside it). NULL is a no-op.
   Params: t - the throttle.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_throttle_create. */
PRISTINE_API void pr_throttle_destroy(pr_throttle *t);

/* Wait until a request of est_bytes may be sent: out of the backoff
   window, then the concurrency slot, the backoff slot when recently backed
   off, the bytes (times the factor when recently backed off), in that
   order. Hold them for the submission, then pr_throttle_release.
   Params: t - the throttle; est_bytes - the request's estimated size;
           tk - receives what was taken; deadline - absolute ms.
   Returns: PR_OK; PR_ETIMEDOUT; PR_ECANCELED (nothing is held);
            PR_EINVAL; PR_ENOMEM.
   Blocks: yes.
   Thread: owner.
   See: pr_throttle_release, pr_throttle_backoff. */
PRISTINE_API int pr_throttle_acquire(pr_throttle *t, int64_t est_bytes, pr_throttle_ticket *tk, int64_t deadline);

/* Give back what pr_throttle_acquire took.
   Params: t - the throttle; tk - the ticket.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_throttle_acquire. */
PRISTINE_API void pr_throttle_release(pr_throttle *t, const pr_throttle_ticket *tk);

/* A submit was answered 429: open the window (small_window_ms, or
   large_window_ms above large_bytes); the caller then acquires again and
   resubmits with the same sequence id.
   Params: t - the throttle; est_bytes - the refused request's size.
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_throttle_acquire. */
PRISTINE_API int pr_throttle_backoff(pr_throttle *t, int64_t est_bytes);

/* Whether the throttle counts as recently backed off now.
   Params: t - the throttle.
   Returns: 1 or 0.
   Blocks: no.
   Thread: owner.
   See: pr_throttle_opts. */
PRISTINE_API int pr_throttle_backed_off(pr_throttle *t);

/* ---- session heartbeat ---- */

/* A task that keeps a session alive. Opaque. */
typedef struct pr_heartbeat pr_heartbeat;

/* Options of pr_heartbeat_start. Zero means the default. */
typedef struct pr_heartbeat_opts {
    int interval_ms;             /* 0 = 10000: first beat after one interval, then every interval */
    int warn_after_ms;           /* 0 = 120000: warn at every tick once this long without success */
    int timeout_ms;              /* 0 = 10000: one beat (no retries) */
    const char *path;            /* NULL = "/api/v1/session_heartbeat" */
    pr_tls_opts tls;             /* the TLS settings of the heartbeat's own client (client NULL at
                                    start); must be zero when a client is given (its own apply) */
    /* Called with the warning instead of the log (warn level, module
       "session"). NULL = the log. */
    void (*on_warning)(const char *msg, int64_t since_success_ms, void *user_data);
    void *user_data;
} pr_heartbeat_opts;

/* Start beating: POST {"session_id": .., "type": "session_heartbeat"} to
   <base_url><path> every interval; failures are counted, never raised.
   Params: out - receives the heartbeat; client - the HTTP client
           (borrowed), or NULL: one of its own, made with opts->tls and
           destroyed with the heartbeat; base_url - scheme://host[:port];
           session_id - copied; opts - NULL = defaults; err - receives why
           it failed; NULL = not wanted.
   Returns: PR_OK; PR_EINVAL (a bad argument or URL; opts->tls set while a
            client is given); PR_EIO (the own client's tls.ca_file cannot
            be read); PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_heartbeat_stop. */
PRISTINE_API int pr_heartbeat_start(pr_heartbeat **out, pr_http_client *client, const char *base_url,
                                    const char *session_id, const pr_heartbeat_opts *opts, pr_err_info *err);

/* Stop beating: the task is cancelled at once (a beat in flight is
   abandoned; no new one starts) and frees everything as it ends: h is not
   to be used afterwards. NULL is a no-op.
   Params: h - the heartbeat.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_heartbeat_start. */
PRISTINE_API void pr_heartbeat_stop(pr_heartbeat *h);

/* Beats sent and beats that failed so far.
   Params: h - the heartbeat; sent, failed - receive the counts (may be NULL).
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_heartbeat_start. */
PRISTINE_API void pr_heartbeat_counts(const pr_heartbeat *h, long *sent, long *failed);

/* ==== rfuture: remote futures polled until done, with one built-in profile; queue-state observers ==== >>rfuture */
/*
 * rfuture: remote futures polled until done, with one built-in profile. A
 * remote job answers its submit with a request id; a pr_rfuture_poller
 * polls the service's retrieve endpoint for it until the job is done, and
 * hands the caller an ordinary pr_future:
 *
 *     pr_future *f;
 *     pr_rfuture_start(&f, poller, "req-1", NULL);
 *     if (pr_future_await(f, NULL, deadline) == PR_OK)
 *         use(pr_rfuture_result(f));      (the result, a JSON value)
 *     pr_future_destroy(f);               (frees the result too)
 *
 * The profile (pr_rfuture_profile, in the poller's options) names the
 * service's side of the protocol: the retrieve path, the poll's headers,
 * the JSON members that carry the request id, the metadata switch, a
 * payload's size, the queue state and a server's delay, and the prefix of
 * the event names. A zero field takes the built-in profile's value; the
 * built-in profile matches Thinking Machines' Tinker API (its
 * retrieve_future endpoint), and its names are the ones used below.
 *
 * The poll: POST <base_url><path> with {"request_id": ..,
 * "allow_metadata_only": ..}, the headers X-Tinker-Request-Iteration
 * (0, 1, 2... every poll), X-Tinker-Request-Type (when set) and, on the
 * first poll only, X-Tinker-Create-Promise-Roundtrip-Time (seconds since
 * the submit began, when known). Each poll is one HTTP attempt (the
 * client's own retries are off for it) whose deadline covers the whole
 * response, body included: a stalled body is a connection error.
 *
 * The answer, read in this order: {"type": "try_again"} (with queue_state,
 * queue_state_reason, retry_after_ms) or {"status": "pending"}: poll again;
 * {"status": "complete_metadata", "response_payload_size": N}: reserve N
 * bytes of the poller's response budget, poll again for the payload; a
 * wrapper {"status": "completed"|"complete"|"success", "result": R} (or
 * "type" completed / success): R is the result; {"status": "failed"} or
 * an "error" member: PR_EFAILED (message from error, or error.message;
 * category from category, or error.category: user, server or unknown);
 * any other object: the result itself. Not JSON, or not an object:
 * PR_EPROTO, as is a second complete_metadata. Strings the poller keeps
 * (a submit's request_id, a queue_state_reason) are checked as they
 * arrive: one with a NUL byte or over 1024 bytes is PR_EPROTO, never cut.
 *
 * Statuses: 200 as above; 408 (a try_again in an HTTP error's clothes,
 * its JSON body notifies the queue observer and resets the 400 budget)
 * and 5xx: poll again after poll_backoff; 429 and connection errors: back
 * off 1, 2, 4... 30 s (conn_backoff; the exponent counts them in a row and
 * is reset by any other HTTP answer); 400: polled again after poll_backoff
 * up to bad_request_budget (3) times, then PR_EHTTP; 410: PR_EEXPIRED
 * (submit the job again; a job marked resubmittable is submitted again by
 * the poller, up to max_resubmits times); 402: a billing pause, polled
 * every 5 s for up to billing_max_pause_ms (an incident ends after 5
 * minutes without a 402), then PR_EHTTP; any other status: PR_EHTTP.
 * pr_future_last_error gives every failure's detail (http_status,
 * sys_errno, tls_error, dns_error, category, msg).
 *
 * Failures: a cause that polling again cannot cure ends the future at the
 * first poll with its own code and detail: a name that does not exist
 * (PR_EDNS), TLS refused (an untrusted certificate, a hostname mismatch, a
 * peer that does not speak TLS: PR_ETLS), PR_EINVAL, PR_ENOTSUP,
 * PR_ENOMEM, PR_ELIMIT, an open breaker (PR_ECIRCUIT). Transient ones -
 * no answer (refused, reset, a poll past poll_timeout_ms), 408 without a
 * JSON body, 429, 5xx - are polled again: before any poll of the job was
 * answered at most open_attempts times (5: about 15 s against a port
 * that refuses), after that without a bound unless max_failures says
 * (a job runs for minutes); at the bound the last one's cause ends it
 * (PR_EIO with sys_errno, PR_EHTTP with http_status). PR_ETIMEDOUT is
 * only ever the caller's limit: opts.timeout_ms, or the deadline of
 * pr_future_await (which leaves the polling running) or of
 * pr_rfuture_submit.
 *
 * Pacing: poll_backoff (5 ms doubling to 1 s by default, by the number of
 * polls made) spaces the polls after answers with nothing new, so a
 * server that answers at once cannot drive a hot loop. A server's own
 * delay - retry_after_ms (> 0) in a 200's or a 408's JSON body, else a
 * retry-after-ms / Retry-After header on any answer (pr_retry_hint_ms) -
 * replaces poll_backoff, conn_backoff and the billing pause:
 * it is used as given, but never below poll_backoff.base_ms nor above
 * hint_max_ms (60 s). The payload poll after complete_metadata (one per future) goes at
 * once unless that answer carries a delay.
 *
 * Limits: at most max_polls polls in flight per poller (FIFO), and
 * complete_metadata payloads share max_response_bytes (held until the
 * result is decoded). opts.timeout_ms bounds the whole polling:
 * PR_ETIMEDOUT then, naming the last retryable failure. A timeout of
 * pr_future_await stops nothing; pr_future_cancel stops the polling at
 * once (whatever it was doing) and frees everything.
 *
 * Observer (pr_rfuture_observer, one user_data for both callbacks):
 * on_queue_state hears every change of the (queue_state,
 * queue_state_reason) pair of one future's answers, the first one included.
 * on_event reports what went wrong as the events of Tinker's SDK (the
 * profile's event_prefix, "APIFuture.result_async." by default, followed
 * by api_status_error, connection_error, application_error,
 * validation_error or timeout), a job submitted again (resubmitted, with
 * the old and the new request id) and the end of each future (resolved,
 * or the failure that ends it, marked settled); the telemetry module turns
 * them into reports. 402 pauses report nothing.
 *
 * The client: the poller uses the one it is given, or makes its own from
 * opts.tls (NULL client).
 *
 * The submit throttle and the session heartbeat that a pipeline pairs
 * with remote futures are the session module's.
 */

/* Queue states of a remote job. */
enum pr_queue_state {
    PR_QUEUE_NONE = 0,               /* nothing reported yet */
    PR_QUEUE_UNKNOWN = 1,            /* a value this library does not know */
    PR_QUEUE_ACTIVE = 2,             /* "active" */
    PR_QUEUE_PAUSED_RATE_LIMIT = 3,  /* "paused_rate_limit" */
    PR_QUEUE_PAUSED_CAPACITY = 4     /* "paused_capacity" */
};

/* A change of a future's queue state. Strings are valid during the call. */
typedef struct pr_queue_change {
    const char *request_id;
    int old_state;          /* PR_QUEUE_*; PR_QUEUE_NONE before the first report */
    const char *old_reason; /* NULL when none */
    int state;
    const char *reason;     /* the server's queue_state_reason, NULL when none */
} pr_queue_change;

/* What pr_rfuture_observer.on_event is told. Strings are valid during
   the call; fields that do not apply are 0 or NULL. */
typedef struct pr_rfuture_event {
    const char *name;            /* the profile's event_prefix + <what>, e.g.
                                    "APIFuture.result_async.resolved" */
    int severity;                /* PR_SEVERITY_* */
    const char *request_id;
    const char *request_type;    /* "" when none */
    int iteration;               /* the poll it is about, 0-based */
    double elapsed_s;            /* since polling began */
    int status_code;             /* the HTTP status; 0 for connection errors */
    const char *kind;            /* api_status_error: "retry", "retry_with_backoff",
                                    "retry_if_budget", "retryable_exception" or "fatal" */
    int should_retry;            /* kind is not "fatal" */
    int is_user_error;           /* 400 <= status < 500 and not 408; category user */
    int bad_request_retries;     /* 400s taken from the budget so far */
    int connection_error_retries;/* the backoff exponent */
    int category;                /* application_error: PR_CATEGORY_* */
    int64_t timeout_ms;          /* timeout: the limit */
    const char *detail;          /* the error's words */
    int settled;                 /* 1: the future settles with this event (the "resolved" event, or
                                    the failure that ends it) */
    int error;                   /* settled: the rejection code, PR_OK for "resolved" */
    const char *new_request_id;  /* "resubmitted": the new job's id (request_id is the expired one);
                                    else NULL */
} pr_rfuture_event;

/* The observer of a poller: the notifications the telemetry module adapts
   (observer.on_event = pr_telemetry_rfuture_hook, observer.on_queue_state
   = pr_telemetry_queue_hook, observer.user_data = the hub). Both callbacks
   run on the poller's thread and get user_data. */
typedef struct pr_rfuture_observer {
    void (*on_event)(const pr_rfuture_event *ev, void *user_data);          /* NULL = none */
    void (*on_queue_state)(const pr_queue_change *change, void *user_data); /* NULL = none */
    void *user_data;
} pr_rfuture_observer;

/* The names a service gives the protocol's pieces. A NULL field takes the
   built-in profile's value (Thinking Machines' Tinker API, its
   retrieve_future endpoint), given after "NULL =". A header set to ""
   is not sent. Strings are copied at create. */
typedef struct pr_rfuture_profile {
    const char *path;               /* NULL = "/api/v1/retrieve_future": the retrieve endpoint,
                                       after base_url */
    const char *iteration_header;   /* NULL = "X-Tinker-Request-Iteration": the poll's number */
    const char *type_header;        /* NULL = "X-Tinker-Request-Type": pr_rfuture_opts.request_type */
    const char *roundtrip_header;   /* NULL = "X-Tinker-Create-Promise-Roundtrip-Time": on the first
                                       poll, the seconds since the submit began */
    const char *request_id_field;   /* NULL = "request_id": in the poll's body and the submit's answer */
    const char *metadata_field;     /* NULL = "allow_metadata_only": the poll body's switch */
    const char *payload_size_field; /* NULL = "response_payload_size": complete_metadata's size */
    const char *queue_state_field;  /* NULL = "queue_state" */
    const char *queue_reason_field; /* NULL = "queue_state_reason" */
    const char *retry_after_field;  /* NULL = "retry_after_ms": a server's delay in an answer's body */
    const char *event_prefix;       /* NULL = "APIFuture.result_async.": each pr_rfuture_event.name is
                                       this + what happened ("resolved", "timeout", ...);
                                       at most 64 bytes */
} pr_rfuture_profile;

/* A poller: the client, the endpoint and the limits its futures share. Opaque. */
typedef struct pr_rfuture_poller pr_rfuture_poller;

/* Options of pr_rfuture_poller_create. Zero means the default; strings are copied. */
typedef struct pr_rfuture_poller_opts {
    const char *base_url;        /* required: scheme://host[:port][/prefix] */
    pr_rfuture_profile profile;  /* zero = the built-in profile (Tinker's retrieve_future) */
    int max_polls;               /* 0 = 100: polls in flight at once (the rest wait, FIFO) */
    int64_t max_response_bytes;  /* 0 = 50 MiB: complete_metadata payloads being fetched at once */
    int poll_timeout_ms;         /* 0 = 45000: one poll, body included */
    int bad_request_budget;      /* 0 = 3: 400 answers polled again before PR_EHTTP */
    int billing_max_pause_ms;    /* 0 = 3600000: how long 402 answers are waited out */
    pr_backoff poll_backoff;     /* after try_again / pending / 408 / 5xx / a 400 in the budget, by the
                                    polls made; its base_ms is also the least wait a server's hint gets.
                                    base_ms 0 = 5 ms doubling to 1000 ms, no jitter */
    pr_backoff conn_backoff;     /* after 429 and connection errors; base_ms 0 = PR_BACKOFF_SUBMIT */
    int64_t hint_max_ms;         /* 0 = 60000: the longest wait a server can ask for; a longer
                                    retry_after_ms (any JSON number) or Retry-After /
                                    retry-after-ms header is cut to it */
    pr_rfuture_observer observer; /* who hears the futures' events and queue states; zero = nobody */
    pr_retry_hooks hooks;        /* the sleeps between polls (tests make them instant) */
    int open_attempts;           /* 0 = 5: polls of a future that may fail transiently (no answer: refused,
                                    reset, timed out; 408 without a JSON body, 429, 5xx) before any poll
                                    was answered; the last one's cause then ends it (PR_EIO with
                                    sys_errno, PR_EHTTP with http_status). With the default backoffs a
                                    port that refuses gives up after about 15 s (1 + 2 + 4 + 8 s
                                    between the 5 polls), a server answering 503 after 5 polls.
                                    < 0 = no bound */
    int max_failures;            /* 0 = no bound: once a poll has been answered (a job runs for
                                    minutes), transient failures in a row before the last one's cause
                                    ends the future */
    pr_tls_opts tls;             /* the TLS settings of the poller's own client (client NULL at create);
                                    must be zero when a client is given (its own settings apply) */
} pr_rfuture_poller_opts;

/* Options of one future. Zero means the default. */
typedef struct pr_rfuture_opts {
    const char *request_type;    /* the profile's type_header, e.g. "Sample"; NULL = none (copied) */
    int64_t submitted_at_ms;     /* pr_now() when the submit began: the first poll reports the
                                    time since then; 0 = not reported */
    int64_t timeout_ms;          /* 0 = none: the whole polling ends with PR_ETIMEDOUT after this */
    /* Check the result before the future resolves; a nonzero return (with
       *why filled) rejects it with PR_EPROTO. NULL = any object is fine. */
    int (*validate)(const pr_json *result, pr_err_info *why, void *user_data);
    void *user_data;             /* validate's */
    int resubmittable;           /* 0 = a 410 (expired) rejects with PR_EEXPIRED; 1 = the job may run
                                    again (pr_rfuture_submit only: it keeps the path and body): a 410
                                    submits it again, as the submit did but without its deadline
                                    (poll_timeout_ms and timeout_ms bound it), and polls the new
                                    request id; on_event hears "resubmitted" with both ids */
    int max_resubmits;           /* 0 = 1: submits again of a resubmittable job; one more 410 is
                                    PR_EEXPIRED */
} pr_rfuture_opts;

/* Create a poller.
   Params: out - receives it; client - the HTTP client of every poll and
           submit (borrowed; must outlive the poller), or NULL: one of its
           own, made with opts->tls and destroyed with the poller;
           opts - base_url required; err - receives why it failed (NULL =
           not wanted).
   Returns: PR_OK; PR_EINVAL (no base_url, a URL that does not parse, a bad
            backoff, negative limits, a profile header that is not a
            header name, an event_prefix over 64 bytes, opts->tls set while
            a client is given); PR_EIO (the own client's tls.ca_file cannot
            be read); PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_rfuture_start. */
PRISTINE_API int pr_rfuture_poller_create(pr_rfuture_poller **out, pr_http_client *client,
                                          const pr_rfuture_poller_opts *opts, pr_err_info *err);

/* Destroy a poller: futures still polling are rejected with PR_ECANCELED
   and their tasks wind down; the memory goes when the last one has. NULL
   is a no-op.
   Params: p - the poller.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_rfuture_poller_create. */
PRISTINE_API void pr_rfuture_poller_destroy(pr_rfuture_poller *p);

/* Start polling for request_id. The future resolves with the result (a
   pr_json_doc *, owned by the future: valid until its last reference is
   dropped; pr_rfuture_result gives its root) or is rejected: PR_EFAILED,
   PR_EEXPIRED, PR_EHTTP, PR_EPROTO, PR_ELIMIT (a body over the client's
   fetch_max_bytes), PR_EIO (no answer, open_attempts or max_failures
   times), PR_EDNS, PR_ETLS (at once), PR_ETIMEDOUT (opts->timeout_ms),
   PR_ECANCELED, with the detail in pr_future_last_error.
   Params: out - receives the future (one reference); p - the poller;
           request_id - NUL-terminated (copied); opts - NULL = defaults.
   Returns: PR_OK; PR_EINVAL (also opts->resubmittable: there is no submit
            to send again); PR_ENOMEM; PR_ESTATE (the poller is being
            destroyed).
   Blocks: no.
   Thread: owner.
   See: pr_rfuture_result, pr_future_await, pr_future_cancel. */
PRISTINE_API int pr_rfuture_start(pr_future **out, pr_rfuture_poller *p, const char *request_id,
                                  const pr_rfuture_opts *opts);

/* Submit a job and start polling for it: POST body (JSON) to <base_url>
   <path>, read the request id (the profile's request_id_field) from the
   answer, then pr_rfuture_start
   with submitted_at_ms set. The submit uses the client's retry policy.
   With opts->resubmittable the path and body are kept, to submit the job
   again when it expires (410).
   Params: out - receives the future; p - the poller; path - e.g.
           "/api/v1/asample"; body, len - the JSON request; opts - as for
           pr_rfuture_start; err - receives why the submit failed (NULL =
           not wanted); deadline - absolute ms for the submit only.
   Returns: PR_OK; PR_EHTTP (a non-2xx answer, after the client's retries;
            err gets its status and body); PR_EPROTO (no request_id in
            the answer, or one with a NUL byte or over 1024 bytes: never
            cut); errors of pr_http_client_fetch (PR_ETIMEDOUT only
            when the deadline passed, PR_EIO, PR_EDNS, PR_ETLS,
            PR_ECANCELED, ...); PR_EINVAL; PR_ENOMEM.
   Blocks: yes.
   Thread: owner.
   See: pr_rfuture_start. */
PRISTINE_API int pr_rfuture_submit(pr_future **out, pr_rfuture_poller *p, const char *path, const char *body,
                                   size_t len, const pr_rfuture_opts *opts, pr_err_info *err, int64_t deadline);

/* The result of a resolved remote future: the root of its document.
   Params: f - a future from pr_rfuture_start.
   Returns: the value, NULL if f is not resolved (or not a remote future).
   Blocks: no.
   Thread: owner.
   See: pr_rfuture_start. */
PRISTINE_API const pr_json *pr_rfuture_result(const pr_future *f);

/* A ready-made observer.on_queue_state that logs (warn level) when a job
   is paused, at most once a minute per state, and ignores "active".
   observer.user_data: a pr_queue_log.
   Params: change - the change; user_data - a pr_queue_log.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_rfuture_observer. */
PRISTINE_API void pr_queue_log_change(const pr_queue_change *change, void *user_data);

/* The state of pr_queue_log_change: the kind of client it speaks for. */
typedef struct pr_queue_log {
    const char *what;    /* "Sampling", "Training", ...; NULL = "Remote job" */
    int64_t last_ms;     /* when it last logged (0 = never) */
} pr_queue_log;

/* ==== ds: Durable Streams client: the stream handle, its options and one request; create, head, delete, append, close ==== >>ds */
/*
 * ds: Durable Streams, append-only byte streams over HTTP. A stream is a
 * URL; every byte has an offset, an opaque string the server hands out
 * (Stream-Next-Offset) and takes back (?offset=) so that any reader can
 * resume exactly where it stopped.
 *
 *     pr_ds *ds;
 *     pr_ds_read *rd;
 *     pr_ds_chunk c;
 *     pr_ds_open(&ds, "http://127.0.0.1:4437/v1/stream/log", NULL, NULL);
 *     pr_ds_read_open(&rd, ds, "-1", &(pr_ds_read_opts){ .live = PR_DS_LIVE_LONG_POLL }, NULL);
 *     while (pr_ds_read_next(rd, &c, deadline) == PR_OK)
 *         fwrite(c.data, 1, c.len, stdout);   (c.offset: where to resume)
 *     pr_ds_read_destroy(rd);
 *     pr_ds_destroy(ds);
 *
 * Operations: pr_ds_create (PUT), pr_ds_head (HEAD), pr_ds_delete
 * (DELETE), pr_ds_append (POST), pr_ds_close (POST with Stream-Closed).
 * Each returns PR_OK on success, PR_EHTTP when the server answered with an
 * error status (res->error names it: PR_DS_NOT_FOUND, PR_DS_CONFLICT_EXISTS,
 * PR_DS_CONFLICT_SEQ, PR_DS_STREAM_CLOSED with the final offset in
 * res->offset, PR_DS_BAD_REQUEST, ...; res->status, the server's message
 * in res->http.body and every header through res->http.resp stay there
 * until pr_ds_result_deinit), or a transport error; the err argument
 * receives the failure's detail. Calls that create an object take an err
 * argument too (last); a read, a producer and a consumer answer later
 * with their *_last_error.
 *
 * Retries: network errors (a refused connection, a connection dropped in
 * the middle of a response, a body cut short), 429 (Retry-After honoured)
 * and 5xx are retried with backoff and jitter (100 ms, x1.3 per attempt,
 * up to 60 s, full jitter, no attempt limit: the caller's deadline ends
 * them); 400, 401, 403, 404, 409, 410 and 413 never are. opts.retry
 * replaces that policy. A read resumes from the last offset it delivered,
 * so no byte is lost or delivered twice however often the connection
 * fails. A 401, or a 403 that is no producer fencing, goes to
 * opts.on_auth_error when it is set: fresh credentials from it (a new
 * token) send the request again and stay for the later ones, at most
 * max_auth_refreshes times per request.
 *
 * Requests carry the handle's headers (static, and headers_fn evaluated
 * for every request, so a token can be refreshed) and query parameters
 * (static and params_fn), with the protocol's own (offset, live, cursor)
 * in one query sorted by name, which keeps CDN cache keys stable. No
 * Accept-Encoding is sent, so bodies are never compressed.
 *
 * Observers: opts.observer (pr_ds_observer) hears every request's start
 * and end, and the producers and consumers of the handle report to it
 * unless their own options name another (pr_telemetry_ds_hook adapts it).
 *
 * Reads, the idempotent producer and the consumer are the modules after
 * this one (ds_read, ds_producer, ds_consumer). They build on what ds
 * keeps private: struct pr_ds (the client, the resolved retry policy, the
 * content type), pr__ds_do (one logical request with the handle's
 * headers, parameters and retries, filling a pr_ds_result, told to an
 * observer), pr__ds_append (an append told to a given observer),
 * pr__ds_observer (the observer in force) and pr__ds_notify,
 * pr__ds_status_error (an error status as PR_EHTTP with its PR_DS_*
 * meaning and detail), pr__ds_hdr, pr__ds_setstr, pr__ds_token_ok (the
 * check of an offset or cursor), pr__ds_is_json / pr__ds_is_text and the
 * limits PR__DS_MAX_OFFSET and PR__DS_DEF_CHUNK.
 *
 * Offers to the modules after it: pr__ds_append, PR__DS_DEF_CHUNK, pr__ds_do,
 *     pr__ds_hdr, pr__ds_is_json, pr__ds_is_text, PR__DS_MAX_OFFSET,
 *     pr__ds_notify, pr__ds_observer, pr__ds_req, pr__ds_setstr,
 *     pr__ds_status_error, pr__ds_token_ok.
 */

/* A stream handle: its URL and what every request carries. Opaque; owned
   by the thread that opened it (any of its tasks may use it). */
typedef struct pr_ds pr_ds;

/* pr_ds_event.kind: what an observer of a handle, a consumer or a
   producer hears (pr_ds_observer). */
enum pr_ds_event_kind {
    PR_DS_EVENT_REQUEST_START = 1,      /* a request to the stream begins: op, method, url */
    PR_DS_EVENT_REQUEST_STOP = 2,       /* it ended with a response (any status; for an SSE read its
                                           head): status, duration_ms */
    PR_DS_EVENT_REQUEST_EXCEPTION = 3,  /* it ended without one, after the retries: error, err,
                                           duration_ms */
    PR_DS_EVENT_CONSUMER_BATCH = 4,     /* a consumer received a batch: items, bytes, offset */
    PR_DS_EVENT_CONSUMER_RECONNECT = 5, /* a consumer connects again after a failure: attempt,
                                           delay_ms, error (the reason), err, offset */
    PR_DS_EVENT_CONSUMER_STATE = 6,     /* a consumer's state changed: state, offset; error and err
                                           for the failure behind CONNECTING again or STOPPED */
    PR_DS_EVENT_PRODUCER_BATCH = 7,     /* the server stored a producer's batch: producer_id, epoch,
                                           seq, items, bytes, duration_ms, offset */
    PR_DS_EVENT_PRODUCER_DUPLICATE = 8, /* the server had that batch already (a 204 to a resend):
                                           the same fields */
    PR_DS_EVENT_AUTH_REFRESH = 9        /* a request was refused (401/403) and on_auth_error gave
                                           fresh fields: op, method, url, status (the refusal's),
                                           attempt (1 for the request's first refresh, 2, ...); the
                                           request goes again at once */
};

/* One observation. Valid during the callback only; the fields its kind
   does not name are 0, and its strings are "" (never NULL). */
typedef struct pr_ds_event {
    int kind;                   /* PR_DS_EVENT_* */
    const char *url;            /* the stream's URL; for a request, with its query */
    const char *op;             /* REQUEST_*, AUTH_REFRESH: "create", "head", "delete", "append", "close", "read" */
    const char *method;         /* REQUEST_*, AUTH_REFRESH: "PUT", "HEAD", "DELETE", "POST", "GET" */
    int status;                 /* REQUEST_STOP: the final HTTP status; AUTH_REFRESH: 401 or 403 */
    int error;                  /* the failure's PR_E* code (REQUEST_EXCEPTION, CONSUMER_RECONNECT,
                                   CONSUMER_STATE after a failure), else 0 */
    const pr_err_info *err;     /* its detail, or NULL */
    int64_t duration_ms;        /* REQUEST_STOP, _EXCEPTION: since the request began (its retries
                                   included); PRODUCER_*: since the batch's first send */
    int state;                  /* CONSUMER_STATE: PR_DS_CONSUMER_* */
    int attempt;                /* CONSUMER_RECONNECT: 1 for the first reconnect in a row, 2, ...;
                                   AUTH_REFRESH: 1 for the request's first refresh, 2, ... */
    int64_t delay_ms;           /* CONSUMER_RECONNECT: the wait before it */
    const char *offset;         /* CONSUMER_*: the checkpoint (after the batch); PRODUCER_*: the
                                   stream's offset after the batch ("" when the server gave none) */
    size_t items;               /* CONSUMER_BATCH: a JSON stream's messages, else 1; PRODUCER_*:
                                   the appends in the batch */
    size_t bytes;               /* CONSUMER_BATCH, PRODUCER_*: the batch's bytes */
    const char *producer_id;    /* PRODUCER_* */
    int64_t epoch, seq;         /* PRODUCER_*: the batch's producer epoch and sequence number */
} pr_ds_event;

/* An observer: one callback for every pr_ds_event, with its own context,
   apart from the options' own callbacks and user_data (telemetry:
   observer.on_event = pr_telemetry_ds_hook, observer.user_data = hub). */
typedef struct pr_ds_observer {
    void (*on_event)(const pr_ds_event *ev, void *user_data); /* NULL = none */
    void *user_data;            /* for on_event */
} pr_ds_observer;

/* What pr_ds_opts.on_auth_error is told of a refused request. Valid
   during the callback only. */
typedef struct pr_ds_auth_info {
    int status;                 /* 401, or 403 without Producer-Epoch (a producer's fencing is no
                                   refusal of credentials and never reaches the hook) */
    const char *op;             /* "create", "head", "delete", "append", "close", "read" */
    const char *method;         /* "PUT", "HEAD", "DELETE", "POST", "GET" */
    int attempt;                /* 1 for the request's first refusal, 2 after one refresh, ... */
    pr_slice www_authenticate;  /* the server's WWW-Authenticate (empty when it sent none) */
    int64_t deadline;           /* the request's: a hook that fetches a token (it may block, being
                                   called from the requesting task) should be done by then */
} pr_ds_auth_info;

typedef struct pr_ds_opts {
    pr_http_client *client;     /* NULL = a client of its own (redirects followed) */
    const char *content_type;   /* NULL = learned from pr_ds_head, else application/octet-stream:
                                   sent by create and append (copied) */
    const char *const *headers; /* NULL-terminated "Name: value" lines for every request (copied) */
    int (*headers_fn)(pr_buf *out, void *user_data); /* NULL = none: called before every request;
                                   appends "Name: value\r\n" lines; non-zero refuses the request */
    const char *const *params;  /* NULL-terminated "name=value" query pairs for every request,
                                   already encoded (copied) */
    int (*params_fn)(pr_buf *out, void *user_data); /* NULL = none: called before every request;
                                   appends encoded "name=value" pairs separated by '&' */
    void *user_data;            /* for headers_fn, params_fn and on_auth_error */
    pr_retry_policy retry;      /* zero = the Durable Streams policy above; classify is replaced
                                   by the protocol's (network errors, 429, 5xx) unless set */
    pr_ds_observer observer;    /* zero = none: the handle's requests; its consumers and producers
                                   report to it too unless their options set their own */
    int (*on_auth_error)(const pr_ds_auth_info *info, pr_buf *headers, pr_buf *params, void *user_data);
                                /* NULL = none: a 401/403 is the answer. Else called when any
                                   request of the handle (operations, reads, consumers, producers)
                                   is answered 401, or 403 without Producer-Epoch: it appends fresh
                                   "Name: value\r\n" lines to headers and/or encoded "name=value"
                                   pairs ('&'-separated) to params and returns nonzero to send the
                                   request again with them, 0 to give up (the 401/403 is the
                                   answer: PR_EHTTP, PR_DS_UNAUTHORIZED / PR_DS_FORBIDDEN). The
                                   fresh fields and pairs replace the handle's own of the same
                                   name (opts.headers, opts.params, the URL's query) for this and
                                   every later request; headers_fn and params_fn run again for the
                                   new try, so a callback that reads the token from user_data may
                                   append nothing and just return 1. A refused SSE response is
                                   closed before the new try. Malformed fields end the request
                                   with PR_EINVAL */
    int max_auth_refreshes;     /* 0 = 3: calls of on_auth_error per request; the refusal after the
                                   last one is the answer */
    pr_tls_opts tls;            /* the handle's own client's TLS settings (copied whole into
                                   pr_http_client_opts.tls); all-zero = the defaults. Must stay
                                   all-zero with client set (that client's settings apply):
                                   pr_ds_open refuses it with PR_EINVAL */
} pr_ds_opts;

/* pr_ds_result.error: what an error status means. */
enum pr_ds_error {
    PR_DS_OK = 0,
    PR_DS_NOT_FOUND,        /* 404: no such stream */
    PR_DS_CONFLICT_EXISTS,  /* 409 on create: the stream exists with another configuration */
    PR_DS_CONFLICT_SEQ,     /* 409 on append: Stream-Seq not above the last one, or another content type */
    PR_DS_STREAM_CLOSED,    /* 409 with Stream-Closed: true: the final offset in res->offset */
    PR_DS_SEQUENCE_GAP,     /* 409 with Producer-Expected-Seq: res->expected_seq, res->received_seq */
    PR_DS_STALE_EPOCH,      /* 403 with Producer-Epoch: a newer producer epoch exists
                               (res->producer_epoch) */
    PR_DS_BAD_REQUEST,      /* 400: bad offset, TTL, empty body, invalid JSON, producer headers */
    PR_DS_GONE,             /* 410: deleted, or an offset before the retained data */
    PR_DS_TOO_LARGE,        /* 413 */
    PR_DS_RATE_LIMITED,     /* 429 (after the retries) */
    PR_DS_SERVER_ERROR,     /* 5xx (after the retries) */
    PR_DS_NOT_SUPPORTED,    /* 405 or 501: the operation is not supported on this stream */
    PR_DS_UNEXPECTED_STATUS, /* any other status */
    PR_DS_UNAUTHORIZED,     /* 401: credentials missing or refused (after on_auth_error's refreshes) */
    PR_DS_FORBIDDEN         /* 403 without Producer-Epoch: not allowed (after on_auth_error's
                               refreshes); with it, PR_DS_STALE_EPOCH */
};

/* The answer to an operation. Zero it before the first use;
   pr_ds_result_deinit frees it (the slices point into http.resp). */
typedef struct pr_ds_result {
    int status;             /* the final HTTP status; 0 when no response came */
    int error;              /* PR_DS_* for an error status, else PR_DS_OK */
    pr_slice offset;        /* Stream-Next-Offset (the tail, the final offset of a closed stream) */
    pr_slice content_type;  /* Content-Type (head, create) */
    pr_slice etag;          /* ETag */
    pr_slice expires_at;    /* Stream-Expires-At */
    pr_slice cursor;        /* Stream-Cursor */
    int64_t ttl_s;          /* Stream-TTL, -1 when absent */
    int closed;             /* Stream-Closed: true */
    int up_to_date;         /* Stream-Up-To-Date: true */
    int64_t producer_epoch; /* Producer-Epoch, -1 when absent */
    int64_t producer_seq;   /* Producer-Seq, -1 when absent */
    int64_t expected_seq;   /* Producer-Expected-Seq, -1 when absent */
    int64_t received_seq;   /* Producer-Received-Seq, -1 when absent */
    pr_http_result http;    /* the response: headers (pr_http_header_get(res.http.resp, ..)),
                               body (the server's message on errors) */
} pr_ds_result;

/* Options of pr_ds_create; zero = a plain create. */
typedef struct pr_ds_create_opts {
    const char *content_type;   /* NULL = the handle's */
    int64_t ttl_s;              /* > 0: Stream-TTL (a sliding idle window in seconds) */
    const char *expires_at;     /* NULL = none: Stream-Expires-At (RFC 3339) */
    int closed;                 /* 1 = created closed (the body is then all of it) */
    const void *body;           /* the initial content; NULL = none */
    size_t body_len;
    const char *forked_from;    /* NULL = not a fork: Stream-Forked-From, the source stream's path
                                   on the same server ("/v1/stream/src"): the new stream starts
                                   with the source's data up to fork_offset, and has the source's
                                   content type (sent only when content_type or the handle's own
                                   names one, which must then be the source's) */
    const char *fork_offset;    /* NULL = the source's tail: Stream-Fork-Offset, an offset of the
                                   source (needs forked_from) */
    int64_t fork_sub_offset;    /* 0 = none: Stream-Fork-Sub-Offset, how far into the source's
                                   message at fork_offset the fork begins (bytes, or messages of a
                                   JSON stream; needs forked_from) */
} pr_ds_create_opts;

/* Options of pr_ds_append; NULL or zero = a plain append. */
typedef struct pr_ds_append_opts {
    const char *seq;            /* NULL = none: Stream-Seq, which must rise (byte-wise) per append */
    int close;                  /* 1 = append and close in one request */
    int raw_json;               /* on a JSON stream: 0 = data is one message, sent as [data];
                                   1 = data is sent as it is (an array is flattened one level) */
    const char *producer_id;    /* NULL = none; else Producer-Id/-Epoch/-Seq from the fields below */
    int64_t producer_epoch;
    int64_t producer_seq;
} pr_ds_append_opts;

/* Open a handle. No request is made.
   Params: out - receives the handle; url - the stream's absolute http or
           https URL (copied); opts - NULL for defaults (copied); err -
           receives why it failed (NULL = not wanted).
   Returns: PR_OK; PR_EINVAL (out or url NULL, a URL that does not parse, a
            malformed header or parameter, an invalid retry policy, a
            negative max_auth_refreshes, tls set with client, no
            certificate in tls.ca_file / tls.ca_pem); PR_EIO (tls.ca_file
            cannot be read); PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_ds_destroy. */
PRISTINE_API int pr_ds_open(pr_ds **out, const char *url, const pr_ds_opts *opts, pr_err_info *err);

/* Free a handle (and its own client). Reads of it must be destroyed first.
   Params: ds - the handle; NULL is a no-op.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_ds_open. */
PRISTINE_API void pr_ds_destroy(pr_ds *ds);

/* The content type the handle sends (given, learned from a head, or the
   default).
   Params: ds - the handle.
   Returns: a NUL-terminated string valid until the next operation.
   Blocks: no.
   Thread: owner.
   See: pr_ds_head. */
PRISTINE_API const char *pr_ds_content_type(const pr_ds *ds);

/* Create the stream (PUT). 201 creates it; 200 means it exists with the
   same configuration (both PR_OK: res->status tells which).
   Params: ds - the handle; opts - NULL = a plain create with the
           handle's content type; res - zeroed or deinit'ed result,
           filled; err - receives the failure's detail (NULL = not
           wanted; cleared on success); deadline - absolute ms.
   Returns: PR_OK; PR_EHTTP (res->error: PR_DS_CONFLICT_EXISTS,
            PR_DS_BAD_REQUEST, ...); PR_EINVAL; transport errors
            (PR_ETIMEDOUT, PR_ECANCELED, PR_EIO, ...).
   Blocks: yes.
   Thread: owner.
   See: pr_ds_head, pr_ds_delete. */
PRISTINE_API int pr_ds_create(pr_ds *ds, const pr_ds_create_opts *opts, pr_ds_result *res, pr_err_info *err,
                              int64_t deadline);

/* The stream's metadata (HEAD): res->offset (the tail), content_type,
   closed, ttl_s, expires_at, etag. A handle without a content type of its
   own adopts the stream's.
   Params: ds - the handle; res - result, filled; err - as for
           pr_ds_create; deadline - absolute ms.
   Returns: PR_OK; PR_EHTTP (PR_DS_NOT_FOUND, PR_DS_GONE); PR_ETIMEDOUT;
            PR_ECANCELED; transport errors.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_create. */
PRISTINE_API int pr_ds_head(pr_ds *ds, pr_ds_result *res, pr_err_info *err, int64_t deadline);

/* Delete the stream (DELETE).
   Params: ds - the handle; res - result, filled; err - as for
           pr_ds_create; deadline - absolute ms.
   Returns: PR_OK; PR_EHTTP (PR_DS_NOT_FOUND, PR_DS_GONE); PR_ETIMEDOUT;
            PR_ECANCELED; transport errors.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_create. */
PRISTINE_API int pr_ds_delete(pr_ds *ds, pr_ds_result *res, pr_err_info *err, int64_t deadline);

/* Append (POST) with the handle's content type. On a JSON stream data is
   one message, sent as [data] (opts->raw_json sends it as it is).
   res->offset is the new tail.
   Params: ds - the handle; data, len - the bytes (len 0 only with
           opts->close); opts - NULL = a plain append; res - result,
           filled; err - as for pr_ds_create; deadline - absolute ms.
   Returns: PR_OK; PR_EHTTP (PR_DS_STREAM_CLOSED with the final offset,
            PR_DS_CONFLICT_SEQ, PR_DS_NOT_FOUND, PR_DS_BAD_REQUEST,
            PR_DS_STALE_EPOCH, PR_DS_SEQUENCE_GAP, ...); PR_EINVAL (an
            empty append without close); PR_ETIMEDOUT; PR_ECANCELED;
            transport errors.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_close. */
PRISTINE_API int pr_ds_append(pr_ds *ds, const void *data, size_t len, const pr_ds_append_opts *opts,
                              pr_ds_result *res, pr_err_info *err, int64_t deadline);

/* Close the stream, with an optional final message (sent like an append).
   Closing a closed stream without a body is PR_OK too. res->offset is the
   final offset.
   Params: ds - the handle; data, len - the final message (NULL, 0 = none);
           res - result, filled; err - as for pr_ds_create; deadline -
           absolute ms.
   Returns: PR_OK; PR_EHTTP (PR_DS_STREAM_CLOSED for a final message on a
            closed stream, PR_DS_NOT_FOUND, ...); PR_ETIMEDOUT;
            PR_ECANCELED; transport errors.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_append. */
PRISTINE_API int pr_ds_close(pr_ds *ds, const void *data, size_t len, pr_ds_result *res, pr_err_info *err,
                             int64_t deadline);

/* Free what a result holds and zero it (NULL is a no-op).
   Params: res - the result.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_ds_create. */
PRISTINE_API void pr_ds_result_deinit(pr_ds_result *res);

/* ==== ds_read: Durable Streams reads: catch-up, long-poll, SSE and auto, resuming at their offset ==== >>ds_read */
/*
 * ds_read: a read of a Durable Stream (pr_ds_read), opened on a pr_ds
 * handle at an offset. It makes its requests through the ds module's
 * one request (the handle's headers, parameters and retry policy).
 *
 * Reads (pr_ds_read_open): PR_DS_LIVE_NONE reads from the offset to the
 * tail and ends (PR_ECLOSED after the up-to-date chunk);
 * PR_DS_LIVE_LONG_POLL catches up, then waits at the tail with
 * live=long-poll (the cursor sent back, a 204 at the tail polled again at
 * the same offset); PR_DS_LIVE_SSE catches up, then follows with
 * live=sse (data events up to each control event form one chunk, so a
 * chunk's offset is exact; base64 payloads decoded; unknown events
 * skipped; a malformed control event is PR_EPROTO; a connection the
 * server ends cleanly after at least sse_short_ms is followed at once,
 * other ends and breaks after the backoff); PR_DS_LIVE_AUTO
 * catches up, then follows with long-poll, or with SSE when
 * opts.prefer_sse is set, falling back to long-poll when SSE connections
 * keep dropping right after they open (a buffering proxy). A closed stream
 * ends every mode: the last chunk has closed = 1, the next call is
 * PR_ECLOSED. On an application/json stream each chunk's data is one JSON
 * array of messages, parsed: c.items is that array (pr_json_len,
 * pr_json_at), a body that does not parse is PR_EPROTO.
 *
 * Failures. A cause retrying cannot cure ends the call at once with its
 * code and detail: a name that does not exist (PR_EDNS), a certificate
 * not trusted or for another name, a peer that does not speak TLS
 * (PR_ETLS), a status that is the answer (400, 401, 403, 404, 409, 410,
 * ...: PR_EHTTP with its PR_DS_* meaning), an SSE answer that is not
 * text/event-stream (PR_EPROTO). A transient one (a refused, reset or cut
 * connection, 408, 429, 5xx) is tried again with the handle's backoff
 * (a server's Retry-After or retry-after-ms is the wait itself, up to the
 * client's cap): at most open_attempts times before the read has had an
 * answer, then max_failures in a row (0: for as long as it takes), the
 * count starting afresh only after healthy_ms without a failure; then the
 * last cause comes back. PR_ETIMEDOUT means the caller's deadline passed,
 * nothing else; a wait that would end past it returns the last cause at
 * once instead (the next call waits the rest of it first).
 *
 * A read's connection silent for idle_timeout_ms counts as dropped. Answers
 * that bring nothing new (a 204 or 304, an empty 200 that is not up to
 * date) and come back at once are asked again after a wait that starts
 * at 50 ms and doubles with each such answer in a row, up to 2 s, so a
 * server cannot drive a read into a busy loop; a server that holds its
 * long-poll is asked again at once. Offsets and cursors from the server
 * are checked where they enter: 1 to 1024 printable ASCII bytes (what
 * pr_ds_read_open takes back), else PR_EPROTO.
 *
 * To the modules after it (ds_consumer) it offers, privately,
 * pr__ds_read_transient: whether a read's failure is worth reconnecting
 * for (a transient cause, and the read's bound not used up).
 *
 * Offers to the modules after it: pr__ds_read_transient.
 */

/* A read of a stream (pr_ds_read_open). Opaque; one task reads it at a time. */
typedef struct pr_ds_read pr_ds_read;

/* pr_ds_read_opts.live */
enum { PR_DS_LIVE_NONE = 0, PR_DS_LIVE_LONG_POLL = 1, PR_DS_LIVE_SSE = 2, PR_DS_LIVE_AUTO = 3 };

typedef struct pr_ds_read_opts {
    int live;                   /* PR_DS_LIVE_*; 0 = catch-up only */
    int prefer_sse;             /* PR_DS_LIVE_AUTO: follow with SSE (falling back to long-poll) */
    int sse_short_ms;           /* 0 = 1000: an SSE connection that drops sooner counts as short */
    int sse_max_short;          /* 0 = 3: short SSE connections in a row before the fallback */
    size_t max_chunk_bytes;     /* 0 = 64 MiB: the largest response body or SSE batch (PR_ELIMIT);
                                   a catch-up answer is held whole, so a shared client's
                                   fetch_max_bytes (16 MiB by default) caps it too */
    int idle_timeout_ms;        /* 0 = 60000: silence on a read's connection (no byte, however
                                   often pr_ds_read_next is called) after which it counts as
                                   dropped and the read resumes from its offset on a new one;
                                   above the server's long-poll and SSE keep-alive interval (30 s
                                   on the reference server); < 0 = none */
    int open_attempts;          /* 0 = 8: until the read has had an answer, its requests are tried
                                   at most this many times in all, counted across calls (refused,
                                   reset or cut connections, 408, 429, 5xx; with the handle's
                                   default backoff the waits add up to under 13 s), then the last
                                   cause comes back (PR_EIO with its errno, PR_EHTTP with its
                                   status); once they are used up, each call tries once; < 0 = no
                                   bound (the handle's retry policy alone) */
    int max_failures;           /* 0 = unlimited: once the read has had an answer, failed attempts
                                   and dropped live connections in a row (no healthy_ms between
                                   them) after which the last cause comes back (as open_attempts) */
    int healthy_ms;             /* 0 = 60000: the failure count, and with it the backoff, starts
                                   afresh only after the read went this long without a failure
                                   (a server that accepts and drops is asked again later and
                                   later, never at a constant rate) */
} pr_ds_read_opts;

/* What pr_ds_read_next delivers. The views stay valid until the next
   call on the read. */
typedef struct pr_ds_chunk {
    const char *data;           /* the bytes (base64 decoded), or a JSON stream's array text */
    size_t len;                 /* may be 0: an up-to-date or closed signal without data */
    const pr_json *items;       /* JSON streams: the array of messages; NULL otherwise */
    const char *offset;         /* the offset after this chunk (NUL-terminated) */
    size_t offset_len;
    const char *cursor;         /* the latest cursor ("" if none; NUL-terminated) */
    int up_to_date;             /* the read has reached the tail (for now) */
    int closed;                 /* the stream is closed and this is its end */
    int status;                 /* the status of the response that carried it */
} pr_ds_chunk;

/* Start a read at an offset. No request is made until pr_ds_read_next.
   Params: out - receives the read; ds - the handle (must outlive the
           read); offset - "-1" (or NULL) for the start, "now" for the
           tail, or an offset from the server (copied); opts - NULL =
           catch-up; err - receives why it failed (NULL = not wanted).
   Returns: PR_OK; PR_EINVAL (out or ds NULL, an unknown mode, an offset
            with a byte outside printable ASCII or longer than 1024);
            PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_ds_read_next, pr_ds_read_destroy. */
PRISTINE_API int pr_ds_read_open(pr_ds_read **out, pr_ds *ds, const char *offset, const pr_ds_read_opts *opts,
                                 pr_err_info *err);

/* The next chunk of the read. Live modes wait at the tail for new data;
   a chunk is delivered when data arrived, when the read first reaches the
   tail (up_to_date, maybe without data) and when the stream closed.
   Params: r - the read; c - receives the chunk; deadline - absolute ms.
   Returns: PR_OK; PR_ECLOSED (after the closed chunk, or after the
            up-to-date chunk of a catch-up read: the read is over);
            PR_ETIMEDOUT (the deadline passed, and only then: the read
            stays usable and resumes from c->offset); PR_EIO (the network
            failed: refused, reset, a connection closed before its answer
            or timed out, a live connection that dropped; after the tries
            open_attempts / max_failures allow, errno kept; the read stays
            usable); PR_EHTTP (an error status: at once when it is the
            answer, 408, 429 and 5xx after the tries;
            pr_ds_read_last_error gives the detail and the PR_DS_*
            meaning); PR_EDNS (a name that does not exist: at once; a
            resolver's temporary failure after the tries); PR_ETLS (a
            certificate not trusted or for another name, a peer that does
            not speak TLS: at once); PR_EPROTO (a JSON body or SSE control
            event that does not parse, a response without
            Stream-Next-Offset, an SSE answer that is not
            text/event-stream); PR_ELIMIT; PR_ECANCELED; PR_EINVAL.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_read_open. */
PRISTINE_API int pr_ds_read_next(pr_ds_read *r, pr_ds_chunk *c, int64_t deadline);

/* The read's position: the offset after the last chunk delivered.
   Params: r - the read; len - receives the length (may be NULL).
   Returns: a NUL-terminated string valid until the next call on r.
   Blocks: no.
   Thread: owner.
   See: pr_ds_read_next. */
PRISTINE_API const char *pr_ds_read_offset(const pr_ds_read *r, size_t *len);

/* The status of the read's latest HTTP response (0 before the first).
   Params: r - the read.
   Returns: the status.
   Blocks: no.
   Thread: owner.
   See: pr_ds_read_next. */
PRISTINE_API int pr_ds_read_status(const pr_ds_read *r);

/* Why the read's last call failed: the detail, with out->meaning the
   PR_DS_* meaning of an error status (PR_DS_OK when it was no status).
   Params: r - the read; out - receives the detail.
   Returns: PR_OK; PR_EINVAL if r or out is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_ds_read_next. */
PRISTINE_API int pr_ds_read_last_error(const pr_ds_read *r, pr_err_info *out);

/* End a read and free it.
   Params: r - the read; NULL is a no-op.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_ds_read_open. */
PRISTINE_API void pr_ds_read_destroy(pr_ds_read *r);

/* Read everything from an offset up to the stream's current tail: a
   catch-up read (pr_ds_read_open with the defaults: open_attempts, the
   handle's retries) followed through as many answers as the server splits
   it into, until one is up to date.
   Params: ds - the handle; offset - where to start ("-1" or NULL for the
           start, or an offset from the server); max_bytes - the most bytes
           out may receive (0 = 64 MiB; SIZE_MAX = no limit); out -
           receives the bytes (cleared first): a JSON stream's messages
           as one JSON array ("[]" when there are none); next_offset -
           receives the offset after them, NUL-terminated, to resume from
           (cleared first; NULL = not wanted); closed - set to 1 when the
           stream is closed and out reaches its end, else 0 (NULL = not
           wanted); err - receives why it failed (NULL = not wanted);
           deadline - absolute ms.
   Returns: PR_OK; PR_ELIMIT (more than max_bytes); PR_EHTTP (an error
            status: err has it and its PR_DS_* meaning, e.g. 404
            PR_DS_NOT_FOUND); PR_EINVAL (ds or out NULL, an offset
            pr_ds_read_open refuses); PR_ETIMEDOUT (the deadline passed);
            PR_ECANCELED; the errors of pr_ds_read_next. On a failure out
            and next_offset hold what was read before it.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_read_open, pr_ds_read_next. */
PRISTINE_API int pr_ds_read_all(pr_ds *ds, const char *offset, size_t max_bytes, pr_buf *out, pr_buf *next_offset,
                                int *closed, pr_err_info *err, int64_t deadline);

/* ==== ds_producer: Durable Streams idempotent producer: batched exactly-once appends with epochs and sequence numbers ==== >>ds_producer */
/*
 * ds_producer: the idempotent producer (pr_ds_producer_create) on a
 * pr_ds handle: exactly-once appends through a producer id, an epoch and
 * a sequence number per request, each batch sent with the ds module's
 * pr_ds_append. The modules after it use nothing of it.
 *
 * append queues without blocking until max_buffer_bytes are queued or in
 * flight, then suspends the caller (backpressure); batches are sealed at
 * max_batch_bytes / max_batch_items or linger_ms after their first
 * message (0: as soon as the appending task yields), and up to
 * max_in_flight batches are in flight at once, each on its own connection.
 * The server's answers: 200 and 204 (a duplicate) are success; 403 (a
 * newer epoch) fails, or with auto_claim moves to the server's epoch + 1
 * and sends the same batch again as seq 0, with nothing else in flight
 * until that epoch is confirmed; 409 with an expected seq below the
 * batch's (the batches arrived out of order) waits for the lower batches'
 * answers and sends again (after a backoff when they are answered
 * already). A batch whose fate is unknown (a timeout, a broken
 * connection) or passing (429, 5xx) is sent again with the same epoch and
 * seq until the server answers it (the server stores it once), each send
 * within request_timeout_ms, with the handle's backoff between them, for
 * at most delivery_timeout_ms. Only then, or on an answer no resend can
 * mend (400, 404, 413, a fenced epoch without auto_claim, ...), does the
 * producer fail: on_error hears it at once, append, flush and close
 * return it from then on (PR_EHTTP with the status's meaning in
 * pr_ds_producer_last_error, PR_EFAILED when the delivery timeout passed, ...;
 * never PR_ETIMEDOUT, which only means the caller's own deadline), the
 * batches above the failed one are abandoned (the server would refuse
 * them as a gap), and pr_ds_producer_restart starts over in the next
 * epoch. Nothing accepted by append is dropped without a word. On a JSON
 * stream each append is one message and a batch is sent as one array.
 * One producer belongs to one thread; its calls may come from any of its
 * tasks, flush, close and restart from one task at a time.
 */

/* An idempotent producer. Opaque; one thread's (see above). */
typedef struct pr_ds_producer pr_ds_producer;

typedef struct pr_ds_producer_opts {
    const char *producer_id;    /* required, non-empty (copied) */
    int64_t epoch;              /* >= 0; 0 = the first */
    int auto_claim;             /* 1 = on 403 move to the server's epoch + 1 (see above) */
    size_t max_batch_bytes;     /* 0 = 1 MiB: a batch is sealed when it holds this much */
    size_t max_batch_items;     /* 0 = no limit: ... or this many messages */
    int linger_ms;              /* 0 = seal when the appending task yields; > 0 = this long after
                                   a batch's first message (unless it fills first) */
    int max_in_flight;          /* 0 = 5: batches sent at once */
    size_t max_buffer_bytes;    /* 0 = 16 MiB: bytes queued or in flight before append waits */
    int request_timeout_ms;     /* 0 = 30000: one send of a batch (with the handle's retries inside
                                   it); past it the batch's fate is unknown and it is sent again */
    int delivery_timeout_ms;    /* 0 = 120000: how long a batch may stay unconfirmed, from its
                                   sealing (sends, resends and waits together) before the producer
                                   fails with PR_EFAILED; < 0 = no limit */
    void (*on_error)(int rc, const pr_err_info *err, void *user_data); /* NULL = none */
    void *user_data;            /* for on_error */
    pr_ds_observer observer;    /* zero = the handle's: PR_DS_EVENT_PRODUCER_BATCH and _DUPLICATE
                                   for every batch the server has, and the producer's requests */
} pr_ds_producer_opts;

/* Create a producer on a handle (which must outlive it).
   Params: out - receives it; ds - the handle; opts - options
           (producer_id required); err - receives why it failed (NULL =
           not wanted).
   Returns: PR_OK; PR_EINVAL (no producer id, a negative epoch or limit);
            PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_ds_producer_append, pr_ds_producer_destroy. */
PRISTINE_API int pr_ds_producer_create(pr_ds_producer **out, pr_ds *ds, const pr_ds_producer_opts *opts,
                                       pr_err_info *err);

/* Queue one message (copied). Waits only while max_buffer_bytes are
   queued or in flight.
   Params: p - the producer; data, len - the message (len > 0); deadline -
           absolute ms for that wait.
   Returns: PR_OK; the producer's failure (PR_EHTTP with
            pr_ds_producer_last_error, PR_EFAILED, ...: every call until a
            restart); PR_ESTATE after close; PR_EINVAL; PR_ENOMEM;
            PR_ETIMEDOUT (the deadline passed while it waited for room);
            PR_ECANCELED.
   Blocks: yes (backpressure).
   Thread: owner.
   See: pr_ds_producer_flush. */
PRISTINE_API int pr_ds_producer_append(pr_ds_producer *p, const void *data, size_t len, int64_t deadline);

/* Send everything queued and wait until every batch is answered.
   Params: p - the producer; deadline - absolute ms.
   Returns: PR_OK; the producer's failure (at once once it has failed);
            PR_ETIMEDOUT (the deadline passed; the batches go on);
            PR_ECANCELED; PR_ESTATE (another task is flushing).
   Blocks: yes.
   Thread: owner.
   See: pr_ds_producer_append. */
PRISTINE_API int pr_ds_producer_flush(pr_ds_producer *p, int64_t deadline);

/* Flush, then close the stream with the producer's headers and an
   optional final message. Idempotent: a second call returns the first
   one's outcome and final offset without a request.
   Params: p - the producer; data, len - the final message (NULL, 0 =
           none); final_offset - receives the final offset
           (NUL-terminated, valid until destroy; may be NULL); deadline -
           absolute ms.
   Returns: PR_OK; PR_EHTTP (PR_DS_STREAM_CLOSED: closed by someone else,
            ...); the producer's failure; PR_ETIMEDOUT; PR_ECANCELED.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_producer_flush. */
PRISTINE_API int pr_ds_producer_close(pr_ds_producer *p, const void *data, size_t len, const char **final_offset,
                                      int64_t deadline);

/* Wait for every batch's end (answered, or abandoned after a failure),
   then start the next epoch (epoch + 1, seq 0) and clear the producer's
   failure: what a restarted writer does to fence off its older self, and
   how a failed producer goes on (messages appended but not yet sealed go
   in the new epoch; abandoned batches are not sent again).
   Params: p - the producer; deadline - absolute ms.
   Returns: PR_OK; the failure it clears (reported once more here);
            PR_ETIMEDOUT; PR_ECANCELED; PR_ESTATE (another task is
            flushing); the epoch moves on unless it is PR_ETIMEDOUT,
            PR_ECANCELED or PR_ESTATE.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_producer_epoch. */
PRISTINE_API int pr_ds_producer_restart(pr_ds_producer *p, int64_t deadline);

/* The producer's epoch, the seq its next batch gets, and the offset of its
   last accepted batch ("" before one; valid until the next call).
   Params: p - the producer; next_seq - receives the seq (may be NULL).
   Returns: the epoch.
   Blocks: no.
   Thread: owner.
   See: pr_ds_producer_offset. */
PRISTINE_API int64_t pr_ds_producer_epoch(const pr_ds_producer *p, int64_t *next_seq);

/* The offset after the producer's last accepted batch ("" before one).
   Params: p - the producer.
   Returns: a NUL-terminated string valid until the next call on p.
   Blocks: no.
   Thread: owner.
   See: pr_ds_producer_epoch. */
PRISTINE_API const char *pr_ds_producer_offset(const pr_ds_producer *p);

/* How many of the producer's batches the server answered as duplicates
   (204: sent before, stored once).
   Params: p - the producer.
   Returns: the count.
   Blocks: no.
   Thread: owner.
   See: pr_ds_producer_epoch. */
PRISTINE_API long pr_ds_producer_duplicates(const pr_ds_producer *p);

/* A producer's counters (pr_ds_producer_stats). Bytes are the batches'
   bodies as they stand (a JSON batch's brackets and commas included). */
typedef struct pr_ds_producer_stats {
    size_t pending_batches;     /* not sent yet: the batch being filled and sealed ones waiting for a
                                   send slot (max_in_flight) */
    size_t pending_bytes;
    size_t inflight_batches;    /* holding a send slot, not answered yet (sent, waiting to be sent
                                   again, or waiting for a lower batch or a new epoch) */
    size_t inflight_bytes;
    uint64_t acked_batches;     /* since create: batches the server has (200, or 204 duplicates) */
    uint64_t acked_bytes;
    uint64_t duplicate_batches; /* of them, answered 204 (pr_ds_producer_duplicates) */
    uint64_t resends;           /* sends of a batch after its first (an unknown fate, 429/5xx, a gap,
                                   a claimed epoch); the handle's retries inside one send not counted */
    uint64_t abandoned_batches; /* sealed batches that ended unanswered: the failed one and those
                                   above it */
} pr_ds_producer_stats;

/* The producer's counters now: what waits, what is in flight, what the
   server has acknowledged.
   Params: p - the producer; out - receives the counters.
   Returns: PR_OK; PR_EINVAL if p or out is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_ds_producer_flush, pr_ds_producer_duplicates. */
PRISTINE_API int pr_ds_producer_stats_get(const pr_ds_producer *p, pr_ds_producer_stats *out);

/* The detail of the producer's failure (or of the last one a restart
   cleared), with out->meaning its PR_DS_* meaning (PR_DS_OK when it was
   no status).
   Params: p - the producer; out - receives the detail.
   Returns: PR_OK; PR_EINVAL if p or out is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_ds_producer_append. */
PRISTINE_API int pr_ds_producer_last_error(const pr_ds_producer *p, pr_err_info *out);

/* Stop the producer and free it. Batches not yet answered are abandoned
   (flush first to send them: that is a detach).
   Params: p - the producer; NULL is a no-op.
   Returns: nothing.
   Blocks: no (its tasks are cancelled and joined; they unwind at once).
   Thread: owner.
   See: pr_ds_producer_flush. */
PRISTINE_API void pr_ds_producer_destroy(pr_ds_producer *p);

/* ==== ds_consumer: Durable Streams consumer: a task that follows a stream from a checkpoint ==== >>ds_consumer */
/*
 * ds_consumer: the consumer (pr_ds_consumer_start) on a pr_ds handle,
 * reading through ds_read: a task that follows a stream from a stored
 * offset until the stream closes or it is stopped. Each batch goes
 * to on_batch (the task waits for it: a slow handler holds the reader back
 * instead of buffering; to feed a channel, pr_chan_send from on_batch),
 * then on_checkpoint gets the offset after it: store that, and a restart
 * from it (opts.offset) neither loses nor repeats a byte. It reads
 * through one read, so the read's rules hold (pr_ds_read_opts): a cause
 * retrying cannot cure (a name that does not exist, a refused
 * certificate, 404, a malformed body, ...) stops it at once with that
 * code; transient ones (network errors, 408, 429, 5xx) are tried
 * open_attempts times until the first answer, then for as long as it
 * takes (max_failures), each failure the read returns followed by a
 * reconnect after the handle's backoff, which starts afresh only after
 * healthy_ms without a failure. State
 * changes go to on_state; the observer (the consumer's own, else the
 * handle's) hears every batch, reconnect and state change, and the
 * consumer's requests (pr_telemetry_ds_hook adapts it).
 */

/* A consumer. Opaque; owned by the thread that started it. */
typedef struct pr_ds_consumer pr_ds_consumer;

/* pr_ds_consumer_opts.on_state */
enum {
    PR_DS_CONSUMER_CONNECTING = 1,
    PR_DS_CONSUMER_LIVE = 2,
    PR_DS_CONSUMER_UP_TO_DATE = 3,
    PR_DS_CONSUMER_CLOSED = 4,
    PR_DS_CONSUMER_STOPPED = 5
};

typedef struct pr_ds_consumer_opts {
    const char *offset;         /* NULL = "-1": where to start (a checkpoint), copied */
    int live;                   /* PR_DS_LIVE_LONG_POLL, _SSE or _AUTO; 0 = PR_DS_LIVE_AUTO */
    int prefer_sse;             /* with PR_DS_LIVE_AUTO: SSE, falling back to long-poll */
    int (*on_batch)(const pr_ds_chunk *c, void *user_data); /* required: non-zero stops the consumer
                                   (that value is its result) */
    void (*on_checkpoint)(const char *offset, size_t len, void *user_data); /* NULL = none */
    void (*on_state)(int state, const pr_err_info *why, void *user_data); /* NULL = none; why: the
                                   failure behind CONNECTING (a reconnect) or STOPPED, else NULL */
    void *user_data;            /* for on_batch, on_checkpoint and on_state */
    pr_ds_observer observer;    /* zero = the handle's: PR_DS_EVENT_CONSUMER_BATCH, _RECONNECT and
                                   _STATE, and the consumer's requests */
    int idle_timeout_ms;        /* as pr_ds_read_opts.idle_timeout_ms (0 = 60000; < 0 = none) */
    int open_attempts;          /* as pr_ds_read_opts.open_attempts (0 = 8; < 0 = no bound): then
                                   the consumer stops with the last cause */
    int max_failures;           /* as pr_ds_read_opts.max_failures (0 = unlimited) */
    int healthy_ms;             /* as pr_ds_read_opts.healthy_ms (0 = 60000) */
} pr_ds_consumer_opts;

/* Start following the stream in a task of the calling thread.
   Params: out - receives the consumer; ds - the handle (must outlive it);
           opts - options (on_batch required); err - receives why it
           failed (NULL = not wanted).
   Returns: PR_OK; PR_EINVAL (out, ds or on_batch NULL, an unknown mode,
            an offset pr_ds_read_open would refuse); PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_ds_consumer_wait, pr_ds_consumer_stop. */
PRISTINE_API int pr_ds_consumer_start(pr_ds_consumer **out, pr_ds *ds, const pr_ds_consumer_opts *opts,
                                      pr_err_info *err);

/* Wait until the consumer ends by itself.
   Params: c - the consumer; deadline - absolute ms.
   Returns: PR_ECLOSED (the stream closed: every batch handled); on_batch's
            non-zero result; the failure that stopped it (PR_EHTTP, PR_EDNS,
            PR_ETLS, PR_EPROTO, PR_EIO once open_attempts or max_failures
            are used up, ...: pr_ds_consumer_last_error gives the detail);
            PR_ETIMEDOUT (still running); PR_ECANCELED.
   Blocks: yes.
   Thread: owner.
   See: pr_ds_consumer_stop. */
PRISTINE_API int pr_ds_consumer_wait(pr_ds_consumer *c, int64_t deadline);

/* The detail of the failure that stopped the consumer (the one on_state
   heard with PR_DS_CONSUMER_STOPPED), with out->meaning its PR_DS_*
   meaning (PR_DS_OK when it was no status, or none).
   Params: c - the consumer; out - receives the detail (zeroed while no
           failure stopped it).
   Returns: PR_OK; PR_EINVAL if c or out is NULL.
   Blocks: no.
   Thread: owner.
   See: pr_ds_consumer_wait. */
PRISTINE_API int pr_ds_consumer_last_error(const pr_ds_consumer *c, pr_err_info *out);

/* Stop the consumer (cancelling its task if it runs) and free it.
   on_batch is never called again once this returns.
   Params: c - the consumer; NULL is a no-op.
   Returns: nothing.
   Blocks: no (the task is cancelled and joined; it unwinds at once).
   Thread: owner.
   See: pr_ds_consumer_start. */
PRISTINE_API void pr_ds_consumer_stop(pr_ds_consumer *c);

/* ==== telemetry: structured events from every module's observer (client, breakers, streams, futures, Durable Streams); a batching reporter ==== >>telemetry */
/*
 * telemetry: two pieces.
 *
 * - pr_telemetry, a hub. Plug its adapters into the hooks of the other
 *   modules (pr_telemetry_http_hook as a client's observer.on_event,
 *   pr_telemetry_breaker_hook as a breaker's observer.on_change,
 *   pr_telemetry_sse_hook as an event stream's observer.on_reconnect,
 *   pr_telemetry_queue_hook and pr_telemetry_rfuture_hook into a poller,
 *   pr_telemetry_ds_hook as a Durable Streams observer),
 *   and the application's callback receives one kind of structured event
 *   for all of them: a kind, a name, a severity and named fields. URLs have
 *   their credentials removed and secret-looking query values redacted. A
 *   hub may also forward every event to a reporter. Nothing is built when
 *   a module has no hook set.
 * - pr_reporter, the batching reporter: a task that sends events to a
 *   telemetry endpoint as JSON batches ({"session_id", "platform",
 *   "sdk_version", "process_uuid", "events": [...]}) with SESSION_START,
 *   SESSION_END, GENERIC_EVENT and UNHANDLED_EXCEPTION events. At most
 *   batch_size (100) events per POST, a flush every flush_interval_ms (10
 *   s), when batch_size events wait, and after every exception; a queue of
 *   at most queue_max (10,000) events and queue_max_bytes (8 MiB; past
 *   either, events are dropped and counted); a failed POST is sent again
 *   up to 3 times (1, 2, 4 s plus up to 10 %), then dropped. Logging never
 *   blocks and never waits for the network; a dead endpoint never delays
 *   the application.
 *
 * Enable switch: with opts.enabled 0 the environment decides: the variable
 * (PRISTINE_TELEMETRY unless env_var names another) unset means on; set,
 * it means on only for 1, true, yes or on (any case). A disabled reporter
 * is NULL: every call on it accepts nothing and returns at once.
 *
 * User errors (pr_reporter_is_user_error): category user, or an HTTP
 * status 400-499 other than 408, 410 and 429, on the error or on its
 * causes (a bounded, cycle-safe walk). They are reported as a GENERIC_EVENT
 * "user_error" at WARNING; other errors as UNHANDLED_EXCEPTION.
 */

/* Event kinds of the hub. */
enum pr_telemetry_kind {
    PR_TELEMETRY_REQUEST_START = 1, /* an HTTP request begins */
    PR_TELEMETRY_REQUEST_STOP = 2,  /* it ended with a response (any status) */
    PR_TELEMETRY_REQUEST_ERROR = 3, /* it ended without one */
    PR_TELEMETRY_RETRY = 4,         /* a retry is scheduled */
    PR_TELEMETRY_BREAKER = 5,       /* a circuit breaker changed state */
    PR_TELEMETRY_QUEUE_STATE = 6,   /* a remote job's queue state changed */
    PR_TELEMETRY_FUTURE = 7,        /* a remote future's polling hit a problem */
    PR_TELEMETRY_FUTURE_RESOLVED = 8,
    PR_TELEMETRY_FUTURE_FAILED = 9,
    PR_TELEMETRY_STREAM_RECONNECT = 10, /* an event stream is about to connect again */
    PR_TELEMETRY_STREAM_STATE = 11,     /* a Durable Streams consumer changed state (ds module) */
    PR_TELEMETRY_STREAM_BATCH = 12,     /* a Durable Streams consumer received, or a producer stored, a batch */
    PR_TELEMETRY_STREAM_DUPLICATE = 13  /* a Durable Streams server had a producer's batch already */
};

/* Field value types. */
enum pr_telemetry_type { PR_TELEMETRY_STR = 1, PR_TELEMETRY_INT = 2, PR_TELEMETRY_DOUBLE = 3, PR_TELEMETRY_BOOL = 4 };

/* One named value of an event. */
typedef struct pr_telemetry_field {
    const char *key;
    int type;          /* PR_TELEMETRY_* */
    const char *s;     /* STR (never NULL) */
    int64_t i;         /* INT, BOOL */
    double d;          /* DOUBLE */
} pr_telemetry_field;

/* One event. Everything is valid during the callback only. */
typedef struct pr_telemetry_event {
    int kind;                         /* PR_TELEMETRY_* */
    const char *name;                 /* "http.request.stop", "APIFuture.result_async.timeout", ... */
    int severity;                     /* PR_SEVERITY_* */
    const pr_telemetry_field *fields;
    size_t nfields;
} pr_telemetry_event;

/* The field named key, or NULL.
   Params: ev - the event; key - NUL-terminated.
   Returns: the field or NULL.
   Blocks: no.
   Thread: any.
   See: pr_telemetry_event. */
PRISTINE_API const pr_telemetry_field *pr_telemetry_field_get(const pr_telemetry_event *ev, const char *key);

/* Write url without its credentials, with the values of secret-looking
   query parameters (names containing key, token, secret, password, passwd,
   pwd, auth, signature, sig, credential or session, in any case) replaced
   by REDACTED.
   Params: out - appended to; url - NUL-terminated.
   Returns: PR_OK; PR_ENOMEM; PR_EINVAL for NULL arguments.
   Blocks: no.
   Thread: any.
   See: pr_telemetry_http_hook. */
PRISTINE_API int pr_telemetry_sanitize_url(pr_buf *out, const char *url);

/* A hub. Opaque. */
typedef struct pr_telemetry pr_telemetry;
/* A batching reporter. Opaque. */
typedef struct pr_reporter pr_reporter;

/* Options of pr_telemetry_create. */
typedef struct pr_telemetry_opts {
    void (*on_event)(const pr_telemetry_event *ev, void *user_data); /* NULL = none */
    void *user_data;
    pr_reporter *reporter;   /* NULL = none: else every event also becomes a GENERIC_EVENT
                                "pristine.<name>" (ERROR for failures, else INFO); borrowed */
} pr_telemetry_opts;

/* Create a hub.
   Params: out - receives it; opts - copied.
   Returns: PR_OK; PR_EINVAL; PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_telemetry_http_hook. */
PRISTINE_API int pr_telemetry_create(pr_telemetry **out, const pr_telemetry_opts *opts);

/* Free a hub (after the clients, breakers and pollers that feed it). NULL
   is a no-op.
   Params: t - the hub.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_telemetry_create. */
PRISTINE_API void pr_telemetry_destroy(pr_telemetry *t);

/* An observer for pr_http_client_opts: install it as
   opts.observer.on_event = pr_telemetry_http_hook with
   opts.observer.user_data = the hub. START becomes
   REQUEST_START; DONE becomes REQUEST_STOP (a status) or REQUEST_ERROR;
   RETRY becomes RETRY. Fields: method, url, attempt, status, error,
   duration_ms, delay_ms, reason.
   Params: ev - the client's event; user_data - a pr_telemetry.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_http_client_opts. */
PRISTINE_API void pr_telemetry_http_hook(const pr_http_event *ev, void *user_data);

/* An on_change for pr_breaker_opts.observer: user_data is the hub.
   Fields: breaker, from, to (state names: closed, open, half_open).
   Params: name, from, to - as the breaker gives them; user_data - a hub.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_breaker_opts. */
PRISTINE_API void pr_telemetry_breaker_hook(const char *name, int from, int to, void *user_data);

/* An on_reconnect for pr_sse_stream_opts.observer: observer.user_data is
   the hub. Event
   "sse.reconnect" (WARNING after a failed connection, else INFO); fields:
   reconnects, failures, delay_ms, reason (the code's name), status,
   detail, last_event_id.
   Params: info - as the stream gives it; user_data - a hub.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_sse_observer. */
PRISTINE_API void pr_telemetry_sse_hook(const pr_sse_reconnect *info, void *user_data);

/* An on_queue_state for pr_rfuture_observer: observer.user_data is the hub.
   Fields: request_id, queue_state, queue_state_reason, old_queue_state.
   Params: change - the change; user_data - a hub.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_rfuture_observer. */
PRISTINE_API void pr_telemetry_queue_hook(const pr_queue_change *change, void *user_data);

/* An on_event for pr_rfuture_observer: observer.user_data is the hub. Problems
   become FUTURE events under their own names; the end of a future becomes
   FUTURE_RESOLVED or FUTURE_FAILED. Fields: request_id, request_type,
   iteration, elapsed_time, status_code, kind, should_retry, is_user_error,
   bad_request_retries, connection_error_retries, detail, error, and
   new_request_id on "resubmitted".
   Params: ev - the poller's event; user_data - a hub.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_rfuture_observer. */
PRISTINE_API void pr_telemetry_rfuture_hook(const pr_rfuture_event *ev, void *user_data);

/* An on_event for pr_ds_observer (a Durable Streams handle's, consumer's
   or producer's): user_data is the hub. Events and their fields (url,
   sanitized, on every one):
   "ds.request.start" (REQUEST_START): op, method;
   "ds.request.stop" (REQUEST_STOP): op, method, status, duration_ms;
   "ds.request.exception" (REQUEST_ERROR, ERROR): op, method, status,
   error (the code's name), detail, duration_ms;
   "ds.auth.refresh" (RETRY, WARNING: on_auth_error gave fresh
   credentials after a 401 / 403): op, method, status, attempt;
   "ds.consumer.batch" (STREAM_BATCH): items, bytes, offset;
   "ds.consumer.reconnect" (STREAM_RECONNECT, WARNING): attempt,
   delay_ms, reason (the code's name), detail, offset;
   "ds.consumer.state" (STREAM_STATE, WARNING after a failure): state
   (connecting, live, up_to_date, closed, stopped), offset, detail;
   "ds.producer.batch" (STREAM_BATCH) and "ds.producer.duplicate"
   (STREAM_DUPLICATE): producer_id, epoch, seq, items, bytes,
   duration_ms, offset.
   Params: ev - the observer's event; user_data - a hub.
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_ds_observer. */
PRISTINE_API void pr_telemetry_ds_hook(const pr_ds_event *ev, void *user_data);

/* Options of pr_reporter_start. Zero means the default; strings are copied. */
typedef struct pr_reporter_opts {
    pr_http_client *client;    /* borrowed, must outlive the reporter; NULL = one of its own, made with
                                  tls, destroyed with the reporter */
    const char *url;           /* required: the endpoint, e.g. "https://host/api/v1/telemetry" */
    const char *session_id;    /* NULL = session-less: "sessionless-<uuid>", no SESSION_START / END */
    const char *platform;      /* NULL = the system's name (uname), e.g. "Linux" */
    const char *sdk_version;   /* NULL = PRISTINE_VERSION */
    int batch_size;            /* 0 = 100 events per POST */
    int flush_interval_ms;     /* 0 = 10000 */
    int queue_max;             /* 0 = 10000 events waiting */
    int64_t queue_max_bytes;   /* 0 = 8 MiB: the bytes of the events waiting (each whole: its strings
                                  plus about 100 bytes); past it events are dropped and counted as
                                  past queue_max. Events being sent count until they are done; the
                                  POST in flight holds their JSON besides */
    int send_timeout_ms;       /* 0 = 5000 per POST */
    int max_send_retries;      /* 0 = 3; PR_RETRY_OFF = none */
    pr_backoff send_backoff;   /* base_ms 0 = PR_BACKOFF_TELEMETRY */
    int flush_timeout_ms;      /* 0 = 30000: how long stop and fatal logging wait for the queue */
    int enabled;               /* 0 = the environment decides; 1 = on; -1 = off */
    const char *env_var;       /* NULL = "PRISTINE_TELEMETRY" */
    pr_retry_hooks hooks;      /* the resend sleep, its random numbers, the wall clock of timestamps */
    pr_tls_opts tls;           /* the TLS settings of the own client (client NULL); must be zero when
                                  a client is given (its own settings apply) */
} pr_reporter_opts;

/* An error to report (pr_reporter_log_exception). */
typedef struct pr_reporter_error {
    const char *type;          /* e.g. "HTTPError"; NULL = "Error" */
    const char *message;       /* may be NULL */
    int status_code;           /* an HTTP status, 0 = none */
    int category;              /* PR_CATEGORY_*: USER makes it a user error */
    const char *body;          /* a response body, NULL = none */
    const char *traceback;     /* NULL = none */
    const struct pr_reporter_error *cause; /* what caused it, NULL = nothing */
} pr_reporter_error;

/* Start a reporter (its task sends SESSION_START first, unless
   session-less).
   Params: out - receives it, or NULL when telemetry is disabled (then
           PR_OK too: calls on NULL do nothing); opts - url required;
           err - receives why it failed; NULL = not wanted.
   Returns: PR_OK; PR_EINVAL (no url, a URL that does not parse, bad
            limits or backoff, tls set while a client is given); PR_EIO
            (the own client's tls.ca_file cannot be read); PR_ENOMEM.
   Blocks: no.
   Thread: owner.
   See: pr_reporter_log, pr_reporter_stop. */
PRISTINE_API int pr_reporter_start(pr_reporter **out, const pr_reporter_opts *opts, pr_err_info *err);

/* Queue a GENERIC_EVENT. data is a JSON object's text (NULL, or text that
   is not a JSON object, is sent as {}); it never blocks and never touches
   the network.
   Params: r - the reporter (NULL accepts nothing); name - the event name;
           data - JSON object text or NULL; severity - PR_SEVERITY_*.
   Returns: 1 when queued; 0 when dropped (queue full, disabled, no
            memory).
   Blocks: no.
   Thread: owner.
   See: pr_reporter_log_fields. */
PRISTINE_API int pr_reporter_log(pr_reporter *r, const char *name, const char *data, int severity);

/* Queue a GENERIC_EVENT whose event_data is built from fields.
   Params: r - the reporter; name - the event name; fields, n - the data;
           severity - PR_SEVERITY_*.
   Returns: 1 when queued, 0 when dropped.
   Blocks: no.
   Thread: owner.
   See: pr_reporter_log. */
PRISTINE_API int pr_reporter_log_fields(pr_reporter *r, const char *name, const pr_telemetry_field *fields, size_t n,
                                        int severity);

/* Queue an error and ask for a flush (not waited for): a user error as a
   GENERIC_EVENT "user_error" (WARNING; event_data error_type, message,
   status_code, body), any other as UNHANDLED_EXCEPTION with severity.
   Params: r - the reporter; e - the error; severity - PR_SEVERITY_*.
   Returns: 1 when queued, 0 when dropped.
   Blocks: no.
   Thread: owner.
   See: pr_reporter_is_user_error. */
PRISTINE_API int pr_reporter_log_exception(pr_reporter *r, const pr_reporter_error *e, int severity);

/* Queue an error and SESSION_END together (all or nothing), then wait until
   the queue has been sent, at most flush_timeout_ms or the deadline.
   Params: r - the reporter; e - the error; severity - PR_SEVERITY_*;
           deadline - absolute ms.
   Returns: PR_OK (sent); PR_ETIMEDOUT; PR_ECANCELED; PR_ELIMIT (the queue
            could not take both events: nothing queued); PR_EINVAL.
   Blocks: yes.
   Thread: owner.
   See: pr_reporter_log_exception. */
PRISTINE_API int pr_reporter_log_fatal(pr_reporter *r, const pr_reporter_error *e, int severity, int64_t deadline);

/* Whether an error is a user error (see above).
   Params: e - the error (NULL = no).
   Returns: 1 or 0.
   Blocks: no.
   Thread: any.
   See: pr_reporter_log_exception. */
PRISTINE_API int pr_reporter_is_user_error(const pr_reporter_error *e);

/* Ask for a flush and wait until every event queued before the call has
   been taken out for sending (sent or given up on), at most
   flush_timeout_ms or the deadline.
   Params: r - the reporter; deadline - absolute ms.
   Returns: PR_OK; PR_ETIMEDOUT; PR_ECANCELED; PR_EINVAL.
   Blocks: yes.
   Thread: owner.
   See: pr_reporter_stop. */
PRISTINE_API int pr_reporter_flush(pr_reporter *r, int64_t deadline);

/* Stop: queue SESSION_END (once, not session-less), flush within
   flush_timeout_ms and the deadline, and end the task (also when the flush
   timed out). Later calls do nothing; logging after it is refused.
   Params: r - the reporter (NULL: PR_OK); deadline - absolute ms.
   Returns: PR_OK; PR_ETIMEDOUT (events were left unsent); PR_ECANCELED.
   Blocks: yes.
   Thread: owner.
   See: pr_reporter_destroy. */
PRISTINE_API int pr_reporter_stop(pr_reporter *r, int64_t deadline);

/* Free a reporter; one not stopped is stopped first without a flush.
   NULL is a no-op.
   Params: r - the reporter.
   Returns: nothing.
   Blocks: no (a running task is cancelled and waited for as it unwinds).
   Thread: owner.
   See: pr_reporter_stop. */
PRISTINE_API void pr_reporter_destroy(pr_reporter *r);

/* Counters: events accepted, events taken out for sending, events dropped
   (refused by a full queue or lost with a batch that could not be sent).
   Params: r - the reporter; pushed, flushed, dropped - receive them (may be NULL).
   Returns: nothing.
   Blocks: no.
   Thread: owner.
   See: pr_reporter_log. */
PRISTINE_API void pr_reporter_counts(const pr_reporter *r, long *pushed, long *flushed, long *dropped);

/* The session id the reporter sends ("sessionless-..." when session-less).
   Params: r - the reporter.
   Returns: the id ("" for NULL); valid until pr_reporter_destroy.
   Blocks: no.
   Thread: owner.
   See: pr_reporter_opts. */
PRISTINE_API const char *pr_reporter_session_id(const pr_reporter *r);

#ifdef __cplusplus
}
#endif
#endif /* PRISTINE_H */

#if defined(PRISTINE_IMPLEMENTATION) && !defined(PRISTINE_IMPLEMENTATION_INCLUDED)
#define PRISTINE_IMPLEMENTATION_INCLUDED

/* ==== base: version, API decoration, includes, error codes, allocator and log hooks, random numbers ==== >>base.impl */
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

/* ==== time: monotonic and wall clocks in ms, deadlines, PR_FOREVER, test clock ==== >>time.impl */
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

/* ==== buf: growable byte buffers, slices, checked number parsing, case-insensitive compare ==== >>buf.impl */
/* v in decimal into out (room for 20 digits, no terminator); returns the length. */
static PR__MAYBE_UNUSED size_t pr__buf_dec(char *out, uint64_t v) {
    char t[20];
    size_t n = 0, i;
    do t[n++] = (char)('0' + v % 10); while ((v /= 10) != 0);
    for (i = 0; i < n; i++) out[i] = t[n - 1 - i];
    return n;
}

void pr_buf_init(pr_buf *b) {
    b->data = NULL;
    b->len = b->cap = 0;
}

void pr_buf_deinit(pr_buf *b) {
    if (!b) return;
    pr__free(b->data, b->cap);
    pr_buf_init(b);
}

int pr_buf_reserve(pr_buf *b, size_t extra) {
    size_t need, cap;
    char *p;
    if (extra > SIZE_MAX - 1 - b->len) return PR_ENOMEM;
    need = b->len + extra + 1;
    if (need <= b->cap) return PR_OK;
    cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = (char *)pr__realloc(b->data, b->cap, cap);
    if (!p) return PR_ENOMEM;
    if (!b->data) p[0] = 0;
    b->data = p;
    b->cap = cap;
    return PR_OK;
}

int pr_buf_append(pr_buf *b, const void *p, size_t n) {
    int rc = pr_buf_reserve(b, n);
    if (rc) return rc;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return PR_OK;
}

int pr_buf_append_str(pr_buf *b, const char *s) { return pr_buf_append(b, s, strlen(s)); }

int pr_buf_printf(pr_buf *b, const char *fmt, ...) {
    va_list ap;
    int n, rc;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return PR_EINVAL;
    if ((rc = pr_buf_reserve(b, (size_t)n)) != 0) return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return PR_OK;
}

void pr_buf_consume(pr_buf *b, size_t n) {
    if (n >= b->len) {
        pr_buf_clear(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = 0;
}

void pr_buf_clear(pr_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = 0;
}

pr_slice pr_slice_cstr(const char *s) {
    pr_slice r;
    r.ptr = s ? s : "";
    r.len = s ? strlen(s) : 0;
    return r;
}

int pr_slice_eq(pr_slice a, pr_slice b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int pr__buf_ascii_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

int pr_ascii_icmp(pr_slice a, pr_slice b) {
    size_t i, n = PR__MIN(a.len, b.len);
    for (i = 0; i < n; i++) {
        int x, y;
        if (a.ptr[i] == b.ptr[i]) continue;
        x = pr__buf_ascii_lower((unsigned char)a.ptr[i]);
        y = pr__buf_ascii_lower((unsigned char)b.ptr[i]);
        if (x != y) return x - y;
    }
    return a.len < b.len ? -1 : a.len > b.len;
}

int pr_slice_ieq(pr_slice a, pr_slice b) { return a.len == b.len && pr_ascii_icmp(a, b) == 0; }

pr_slice pr_slice_trim(pr_slice s) {
    while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) s.ptr++, s.len--;
    while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t')) s.len--;
    return s;
}

/* UTF-8 as the WHATWG decoder reads it: s has n >= 1 bytes. Returns the
   length (1-4) of the valid sequence at s, or -k when its first k bytes form
   one maximal invalid subpart (each such subpart becomes one U+FFFD). */
static PR__MAYBE_UNUSED int pr__buf_utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    int need, k;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        else if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F;
    } else
        return -1;
    for (k = 1; k <= need; k++) {
        if ((size_t)k >= n || s[k] < lo || s[k] > hi) return -k;
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

/* Digits of s into *out; limit is the largest magnitude allowed. */
static int pr__buf_parse_digits(pr_slice s, uint64_t limit, uint64_t *out) {
    uint64_t v = 0;
    size_t i;
    if (s.len == 0) return PR_EINVAL;
    for (i = 0; i < s.len; i++)
        if (s.ptr[i] < '0' || s.ptr[i] > '9') return PR_EINVAL;
    for (i = 0; i < s.len; i++) {
        unsigned d = (unsigned)(s.ptr[i] - '0');
        if (v > (limit - d) / 10) return PR_ELIMIT;
        v = v * 10 + d;
    }
    *out = v;
    return PR_OK;
}

int pr_parse_u64(pr_slice s, uint64_t *out) {
    uint64_t v;
    int rc = pr__buf_parse_digits(s, UINT64_MAX, &v);
    if (rc == PR_OK) *out = v;
    return rc;
}

int pr_parse_i64(pr_slice s, int64_t *out) {
    int neg = 0, rc;
    uint64_t v;
    if (s.len && (s.ptr[0] == '-' || s.ptr[0] == '+')) {
        neg = s.ptr[0] == '-';
        s.ptr++, s.len--;
    }
    rc = pr__buf_parse_digits(s, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &v);
    if (rc) return rc;
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return PR_OK;
}

/* ==== json: RFC 8259 JSON reader (DOM on an arena) and writer ==== >>json.impl */
/* ---- DOM ---- */

/* tag: type in the low byte, number flags above. */
#define PR__JSON_INT 0x100u   /* number held exactly in u.i */
#define PR__JSON_BIG 0x200u   /* integer literal beyond int64_t; u.d holds it */
#define PR__JSON_TYPE(v) ((int)((v)->tag & 0xffu))

struct pr_json {
    uint32_t tag;
    uint32_t len; /* string bytes, array elements, object members */
    union {
        const char *s;
        const pr_json *kids; /* arrays: len values; objects: 2*len (key, value) pairs */
        double d;
        int64_t i;
    } u;
};

typedef struct pr__json_chunk {
    struct pr__json_chunk *next;
    size_t size; /* bytes allocated, header included */
} pr__json_chunk;

struct pr_json_doc {
    pr__json_chunk *chunks;
    pr_json root;
};

#define PR__JSON_HDR ((sizeof(pr__json_chunk) + 15) & ~(size_t)15)

#ifdef PRISTINE_TESTING
/* Steps of the reader (bytes it examined or copied, values pushed and
   moved), so a fuzzer can check the work per input byte stays bounded. */
static size_t pr__json_test_work;
#define PR__JSON_WORK(n) (pr__json_test_work += (size_t)(n))
#else
#define PR__JSON_WORK(n) ((void)0)
#endif

typedef struct pr__json_parser {
    const unsigned char *begin, *p, *end;
    pr__json_chunk *chunks;
    unsigned char *cur, *lim; /* bump region of the newest chunk */
    size_t next_chunk;
    pr_json *vs;              /* value stack */
    size_t vlen, vcap;
    size_t *fs;               /* frame stack: vs index * 2 + is_object */
    size_t flen, fcap;
    size_t max_depth, max_string;
    int replace;
    int code;
    const unsigned char *err_at;
    const char *err_msg;
} pr__json_parser;

static void pr__json_free_chunks(pr__json_chunk *c) {
    while (c) {
        pr__json_chunk *n = c->next;
        pr__free(c, c->size);
        c = n;
    }
}

static void *pr__json_alloc(pr__json_parser *ps, size_t n) {
    void *r;
    n = (n + 7) & ~(size_t)7;
    if (PR__UNLIKELY((size_t)(ps->lim - ps->cur) < n)) {
        size_t size = ps->next_chunk;
        pr__json_chunk *c;
        if (n > SIZE_MAX / 2 - PR__JSON_HDR) return NULL;
        if (size < n + PR__JSON_HDR) size = n + PR__JSON_HDR;
        c = (pr__json_chunk *)pr__alloc(size);
        if (!c) return NULL;
        c->size = size;
        c->next = ps->chunks;
        ps->chunks = c;
        ps->cur = (unsigned char *)c + PR__JSON_HDR;
        ps->lim = (unsigned char *)c + size;
        if (ps->next_chunk < (SIZE_MAX >> 3)) ps->next_chunk *= 2;
    }
    r = ps->cur;
    ps->cur += n;
    return r;
}

static int pr__json_fail(pr__json_parser *ps, int code, const unsigned char *at, const char *msg) {
    ps->code = code;
    ps->err_at = at;
    ps->err_msg = msg;
    return code;
}

static int pr__json_nomem(pr__json_parser *ps) { return pr__json_fail(ps, PR_ENOMEM, ps->p, "out of memory"); }

/* Character classes for the string scanner: 0 = plain byte. */
static const unsigned char pr__json_strclass[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4
};

static int pr__json_hex4(const unsigned char *s, unsigned *out) {
    unsigned v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        unsigned c = s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') d = (c | 0x20) - 'a' + 10;
        else return 0;
        v = v * 16 + d;
    }
    *out = v;
    return 1;
}

/* Length of the valid UTF-8 sequence at s (before e), or 0 if invalid. */
static size_t pr__json_utf8_len(const unsigned char *s, const unsigned char *e) {
    int k = pr__buf_utf8_seq(s, (size_t)(e - s));
    return k > 0 ? (size_t)k : 0;
}

static unsigned char *pr__json_put_utf8(unsigned char *d, unsigned cp) {
    if (cp < 0x80) *d++ = (unsigned char)cp;
    else if (cp < 0x800) {
        *d++ = (unsigned char)(0xc0 | (cp >> 6));
        *d++ = (unsigned char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *d++ = (unsigned char)(0xe0 | (cp >> 12));
        *d++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        *d++ = (unsigned char)(0x80 | (cp & 0x3f));
    } else {
        *d++ = (unsigned char)(0xf0 | (cp >> 18));
        *d++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        *d++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        *d++ = (unsigned char)(0x80 | (cp & 0x3f));
    }
    return d;
}

/* Decode the string body s..e (escapes, UTF-8 checks) into d; returns the
   end of the output, or NULL after recording the error. */
static unsigned char *pr__json_decode(pr__json_parser *ps, const unsigned char *s, const unsigned char *e,
                                      unsigned char *d) {
    while (s < e) {
        unsigned c = *s;
        if (c == '\\') {
            unsigned cp;
            switch (s[1]) {
            case '"': *d++ = '"'; s += 2; continue;
            case '\\': *d++ = '\\'; s += 2; continue;
            case '/': *d++ = '/'; s += 2; continue;
            case 'b': *d++ = '\b'; s += 2; continue;
            case 'f': *d++ = '\f'; s += 2; continue;
            case 'n': *d++ = '\n'; s += 2; continue;
            case 'r': *d++ = '\r'; s += 2; continue;
            case 't': *d++ = '\t'; s += 2; continue;
            case 'u': break;
            default:
                pr__json_fail(ps, PR_EPROTO, s, "invalid escape in string");
                return NULL;
            }
            if (e - s < 6 || !pr__json_hex4(s + 2, &cp)) {
                pr__json_fail(ps, PR_EPROTO, s, "invalid \\u escape in string");
                return NULL;
            }
            if (cp >= 0xd800 && cp <= 0xdfff) {
                unsigned lo;
                if (cp <= 0xdbff && e - s >= 12 && s[6] == '\\' && s[7] == 'u' && pr__json_hex4(s + 8, &lo) &&
                    lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    s += 6;
                } else if (ps->replace) {
                    cp = 0xfffd;
                } else {
                    pr__json_fail(ps, PR_EPROTO, s, "lone surrogate in \\u escape");
                    return NULL;
                }
            }
            d = pr__json_put_utf8(d, cp);
            s += 6;
        } else if (c < 0x80) {
            *d++ = (unsigned char)c;
            s++;
        } else {
            size_t n = pr__json_utf8_len(s, e);
            if (!n) {
                pr__json_fail(ps, PR_EPROTO, s, "invalid UTF-8 in string");
                return NULL;
            }
            memcpy(d, s, n);
            d += n;
            s += n;
        }
    }
    return d;
}

/* Parse a string whose opening quote is at ps->p into v. */
static int pr__json_string(pr__json_parser *ps, pr_json *v) {
    const unsigned char *s = ps->p + 1, *q = s, *end = ps->end;
    unsigned char *dst, *de;
    int simple = 1;
    size_t raw, len;
    for (;;) {
        unsigned k;
        while (end - q >= 8) { /* 8 bytes at a time: stop near '"', '\\', < 0x20 or >= 0x80 */
            const uint64_t lo = 0x0101010101010101ull, hi = 0x8080808080808080ull;
            uint64_t w, a, b;
            memcpy(&w, q, 8);
            a = w ^ (lo * '"');
            b = w ^ (lo * '\\');
            if ((((a - lo) & ~a) | ((b - lo) & ~b) | ((w - lo * 0x20) & ~w) | w) & hi) break;
            q += 8;
        }
        while (q < end && !pr__json_strclass[*q]) q++;
        if (PR__UNLIKELY(q >= end)) return pr__json_fail(ps, PR_EPROTO, end, "unterminated string");
        k = pr__json_strclass[*q];
        if (k == 2) break;
        if (k == 3) {
            simple = 0;
            if (end - q < 2) return pr__json_fail(ps, PR_EPROTO, end, "unterminated string");
            q += 2;
        } else if (k == 1) {
            return pr__json_fail(ps, PR_EPROTO, q, "unescaped control character in string");
        } else {
            simple = 0;
            q++;
        }
    }
    raw = (size_t)(q - s);
    PR__JSON_WORK(2 * raw + 2); /* the scan, then the copy or decode */
    dst = (unsigned char *)pr__json_alloc(ps, raw + 1);
    if (!dst) return pr__json_nomem(ps);
    if (simple) {
        memcpy(dst, s, raw);
        len = raw;
    } else {
        de = pr__json_decode(ps, s, q, dst);
        if (!de) return ps->code;
        len = (size_t)(de - dst);
    }
    if (len > ps->max_string || len > UINT32_MAX)
        return pr__json_fail(ps, PR_ELIMIT, ps->p, "string longer than max_string");
    dst[len] = 0;
    v->tag = PR_JSON_STRING;
    v->len = (uint32_t)len;
    v->u.s = (const char *)dst;
    ps->p = q + 1;
    return PR_OK;
}

static const double pr__json_pow10[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

#define PR__JSON_MAXDIG 780

/* Lex a number at p (strict RFC 8259 grammar) into v; *stop receives the
   end. Returns PR_OK, PR_EPROTO (bad grammar, *stop at the bad byte) or
   PR_ELIMIT (beyond the double range). */
static int pr__json_number(const unsigned char *p, const unsigned char *end, const unsigned char **stop,
                           pr_json *v) {
    const unsigned char *start = p, *ib, *ie, *fb = NULL, *fe = NULL;
    int neg = 0;
    long long ex = 0;
    uint64_t m = 0;
    size_t nd;
    if (p < end && *p == '-') neg = 1, p++;
    ib = p;
    if (p < end && *p == '0') p++;
    else if (p < end && *p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') p++;
    } else {
        *stop = p;
        return PR_EPROTO;
    }
    ie = p;
    if (p < end && *p == '.') {
        p++;
        fb = p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        fe = p;
        if (fb == fe) {
            *stop = p;
            return PR_EPROTO;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        const unsigned char *eb;
        p++;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p == '-', p++;
        eb = p;
        while (p < end && *p >= '0' && *p <= '9') {
            if (ex < 100000000) ex = ex * 10 + (*p - '0');
            p++;
        }
        if (eb == p) {
            *stop = p;
            return PR_EPROTO;
        }
        if (eneg) ex = -ex;
        fb = fb ? fb : ie;
        fe = fe ? fe : ie;
    }
    *stop = p;
    PR__JSON_WORK(2 * (size_t)(p - start)); /* the scan, then the conversion */
    v->tag = PR_JSON_NUMBER;
    v->len = 0;
    nd = (size_t)(ie - ib);
    if (!fb) { /* integer literal */
        if (nd <= 18) {
            const unsigned char *q;
            for (q = ib; q < ie; q++) m = m * 10 + (uint64_t)(*q - '0');
            v->tag |= PR__JSON_INT;
            v->u.i = neg ? -(int64_t)m : (int64_t)m;
            return PR_OK;
        }
        if (nd <= 20) {
            const unsigned char *q;
            uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
            int ok = 1;
            for (q = ib; q < ie && ok; q++) {
                unsigned dg = (unsigned)(*q - '0');
                if (m > (lim - dg) / 10) ok = 0;
                else m = m * 10 + dg;
            }
            if (ok) {
                v->tag |= PR__JSON_INT;
                v->u.i = neg ? (m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m) : (int64_t)m;
                return PR_OK;
            }
        }
        v->tag |= PR__JSON_BIG;
        fb = fe = ie;
    }
    {
        /* digits G = int digits + fraction digits; value = G * 10^(ex - nfrac) */
        size_t nf = (size_t)(fe - fb), total = nd + nf, i;
        long long e10 = ex - (long long)nf;
        double d;
        if (total <= 19) {
            const unsigned char *q;
            for (q = ib; q < ie; q++) m = m * 10 + (uint64_t)(*q - '0');
            for (q = fb; q < fe; q++) m = m * 10 + (uint64_t)(*q - '0');
#if defined(__FLT_EVAL_METHOD__) && __FLT_EVAL_METHOD__ == 0
            if (m <= ((uint64_t)1 << 53) && e10 >= -22 && e10 <= 22) {
                d = (double)m;
                d = e10 < 0 ? d / pr__json_pow10[-e10] : d * pr__json_pow10[e10];
                v->u.d = neg ? -d : d;
                return PR_OK;
            }
#endif
            if (m == 0) {
                v->u.d = neg ? -0.0 : 0.0;
                return PR_OK;
            }
        }
        {
            char buf[PR__JSON_MAXDIG + 40];
            size_t n = 0, kept = 0;
            int sticky = 0, lead = 1;
            char *endp;
            if (neg) buf[n++] = '-';
            for (i = 0; i < total; i++) {
                char c = (char)(i < nd ? ib[i] : fb[i - nd]);
                if (lead && c == '0') continue;
                lead = 0;
                if (kept < PR__JSON_MAXDIG) buf[n++] = c, kept++;
                else {
                    e10++;
                    if (c != '0') sticky = 1;
                }
            }
            if (kept == 0) {
                v->u.d = neg ? -0.0 : 0.0;
                return PR_OK;
            }
            if (sticky) buf[n++] = '1', e10--;
            if (e10 > 100000000) e10 = 100000000;
            if (e10 < -100000000) e10 = -100000000;
            snprintf(buf + n, sizeof buf - n, "e%lld", e10);
            d = strtod(buf, &endp);
            if (d > 1.7976931348623157e308 || d < -1.7976931348623157e308) {
                *stop = start;
                return PR_ELIMIT;
            }
            v->u.d = d;
        }
    }
    return PR_OK;
}

static const unsigned char pr__json_ws[256] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0,
                                                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };

#define PR__JSON_SKIP_WS(p, end) while ((p) < (end) && pr__json_ws[*(p)]) PR__JSON_WORK(1), (p)++

static int pr__json_push(pr__json_parser *ps, const pr_json *v) {
    PR__JSON_WORK(1);
    if (PR__UNLIKELY(ps->vlen == ps->vcap)) {
        size_t ncap = ps->vcap * 2;
        PR__JSON_WORK(ps->vlen);
        pr_json *nv = (pr_json *)pr__realloc(ps->vs, ps->vcap * sizeof *nv, ncap * sizeof *nv);
        if (!nv) return pr__json_nomem(ps);
        ps->vs = nv;
        ps->vcap = ncap;
    }
    ps->vs[ps->vlen++] = *v;
    return PR_OK;
}

static int pr__json_open(pr__json_parser *ps, int is_obj) {
    if (ps->flen >= ps->max_depth) return pr__json_fail(ps, PR_ELIMIT, ps->p, "nesting deeper than max_depth");
    PR__JSON_WORK(1);
    if (ps->flen == ps->fcap) {
        size_t ncap = ps->fcap * 2;
        PR__JSON_WORK(ps->flen);
        size_t *nf = (size_t *)pr__realloc(ps->fs, ps->fcap * sizeof *nf, ncap * sizeof *nf);
        if (!nf) return pr__json_nomem(ps);
        ps->fs = nf;
        ps->fcap = ncap;
    }
    ps->fs[ps->flen++] = ps->vlen * 2 + (size_t)is_obj;
    ps->p++;
    return PR_OK;
}

static int pr__json_close(pr__json_parser *ps) {
    size_t f = ps->fs[--ps->flen], start = f / 2, n = ps->vlen - start;
    int is_obj = (int)(f & 1);
    pr_json c;
    c.tag = is_obj ? PR_JSON_OBJECT : PR_JSON_ARRAY;
    c.u.kids = NULL;
    if (is_obj) n &= ~(size_t)1;
    if ((is_obj ? n / 2 : n) > UINT32_MAX)
        return pr__json_fail(ps, PR_ELIMIT, ps->p, "too many elements in one container");
    c.len = (uint32_t)(is_obj ? n / 2 : n);
    if (n) {
        pr_json *k = (pr_json *)pr__json_alloc(ps, n * sizeof *k);
        if (!k) return pr__json_nomem(ps);
        memcpy(k, ps->vs + start, n * sizeof *k);
        PR__JSON_WORK(n);
        c.u.kids = k;
    }
    ps->vlen = start;
    ps->p++;
    return pr__json_push(ps, &c);
}

/* Expect a key string at ps->p, then ':'; pushes the key. */
static int pr__json_key(pr__json_parser *ps) {
    pr_json k;
    int rc;
    if (ps->p >= ps->end || *ps->p != '"')
        return pr__json_fail(ps, PR_EPROTO, ps->p, ps->p >= ps->end ? "unexpected end of input" : "expected a string key");
    if ((rc = pr__json_string(ps, &k)) != 0) return rc;
    if ((rc = pr__json_push(ps, &k)) != 0) return rc;
    PR__JSON_SKIP_WS(ps->p, ps->end);
    if (ps->p >= ps->end || *ps->p != ':')
        return pr__json_fail(ps, PR_EPROTO, ps->p, ps->p >= ps->end ? "unexpected end of input" : "expected ':'");
    ps->p++;
    return PR_OK;
}

static int pr__json_run(pr__json_parser *ps) {
    const unsigned char *end = ps->end;
    pr_json v;
    int rc;
value:
    PR__JSON_SKIP_WS(ps->p, end);
    if (PR__UNLIKELY(ps->p >= end)) return pr__json_fail(ps, PR_EPROTO, end, "unexpected end of input");
    switch (*ps->p) {
    case '"':
        if ((rc = pr__json_string(ps, &v)) != 0) return rc;
        break;
    case '{':
        if ((rc = pr__json_open(ps, 1)) != 0) return rc;
        PR__JSON_SKIP_WS(ps->p, end);
        if (ps->p < end && *ps->p == '}') {
            if ((rc = pr__json_close(ps)) != 0) return rc;
            goto after;
        }
        if ((rc = pr__json_key(ps)) != 0) return rc;
        goto value;
    case '[':
        if ((rc = pr__json_open(ps, 0)) != 0) return rc;
        PR__JSON_SKIP_WS(ps->p, end);
        if (ps->p < end && *ps->p == ']') {
            if ((rc = pr__json_close(ps)) != 0) return rc;
            goto after;
        }
        goto value;
    case 't':
        if (end - ps->p < 4 || memcmp(ps->p, "true", 4) != 0)
            return pr__json_fail(ps, PR_EPROTO, ps->p, "invalid literal");
        v.tag = PR_JSON_TRUE, v.len = 0, v.u.i = 0, ps->p += 4;
        break;
    case 'f':
        if (end - ps->p < 5 || memcmp(ps->p, "false", 5) != 0)
            return pr__json_fail(ps, PR_EPROTO, ps->p, "invalid literal");
        v.tag = PR_JSON_FALSE, v.len = 0, v.u.i = 0, ps->p += 5;
        break;
    case 'n':
        if (end - ps->p < 4 || memcmp(ps->p, "null", 4) != 0)
            return pr__json_fail(ps, PR_EPROTO, ps->p, "invalid literal");
        v.tag = PR_JSON_NULL, v.len = 0, v.u.i = 0, ps->p += 4;
        break;
    case '-': case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9': {
        const unsigned char *stop;
        rc = pr__json_number(ps->p, end, &stop, &v);
        if (rc == PR_ELIMIT) return pr__json_fail(ps, rc, stop, "number out of range");
        if (rc) return pr__json_fail(ps, rc, stop, "invalid number");
        ps->p = stop;
        break;
    }
    default:
        return pr__json_fail(ps, PR_EPROTO, ps->p, "unexpected character");
    }
    if ((rc = pr__json_push(ps, &v)) != 0) return rc;
after:
    PR__JSON_SKIP_WS(ps->p, end);
    if (ps->flen == 0) {
        if (ps->p != end) return pr__json_fail(ps, PR_EPROTO, ps->p, "unexpected text after the value");
        return PR_OK;
    }
    if (PR__UNLIKELY(ps->p >= end)) return pr__json_fail(ps, PR_EPROTO, end, "unexpected end of input");
    if (ps->fs[ps->flen - 1] & 1) {
        if (*ps->p == ',') {
            ps->p++;
            PR__JSON_SKIP_WS(ps->p, end);
            if ((rc = pr__json_key(ps)) != 0) return rc;
            goto value;
        }
        if (*ps->p == '}') {
            if ((rc = pr__json_close(ps)) != 0) return rc;
            goto after;
        }
        return pr__json_fail(ps, PR_EPROTO, ps->p, "expected ',' or '}'");
    }
    if (*ps->p == ',') {
        ps->p++;
        goto value;
    }
    if (*ps->p == ']') {
        if ((rc = pr__json_close(ps)) != 0) return rc;
        goto after;
    }
    return pr__json_fail(ps, PR_EPROTO, ps->p, "expected ',' or ']'");
}

static void pr__json_error_fill(pr_json_error *err, int code, const char *text, size_t off, const char *msg) {
    size_t i, line = 1, col = 1;
    if (!err) return;
    memset(err, 0, sizeof *err);
    err->code = code;
    if (code == PR_OK) return;
    PR__JSON_WORK(off);
    for (i = 0; text && i < off; i++) {
        if (text[i] == '\n') line++, col = 1;
        else col++;
    }
    err->offset = off;
    err->line = line;
    err->column = col;
    snprintf(err->msg, sizeof err->msg, "%s at line %lu column %lu", msg, (unsigned long)line,
             (unsigned long)col);
}

int pr_json_parse(pr_json_doc **out, const char *text, size_t len, const pr_json_opts *opts, pr_json_error *err) {
    pr__json_parser ps;
    pr_json_doc *doc;
    size_t max_size;
    int rc;
    if (out) *out = NULL;
    if (!out || (!text && len)) {
        pr__json_error_fill(err, PR_EINVAL, NULL, 0, "invalid argument");
        return PR_EINVAL;
    }
    memset(&ps, 0, sizeof ps);
    if (!text) text = "";
    max_size = opts ? PR__DEF(opts->max_size, (size_t)64 << 20) : (size_t)64 << 20;
    ps.max_depth = opts ? PR__DEF(opts->max_depth, 512) : 512;
    ps.max_string = opts ? PR__DEF(opts->max_string, (size_t)16 << 20) : (size_t)16 << 20;
    ps.replace = opts ? opts->replace_lone_surrogates != 0 : 0;
    if (len > max_size) {
        pr__json_error_fill(err, PR_ELIMIT, text, max_size, "document larger than max_size");
        return PR_ELIMIT;
    }
    ps.begin = ps.p = (const unsigned char *)text;
    ps.end = ps.begin + len;
    ps.next_chunk = len < 1024 ? 1024 : (len > SIZE_MAX / 4 ? len : len * 2);
    doc = (pr_json_doc *)pr__json_alloc(&ps, sizeof *doc);
    if (!doc) {
        pr__json_error_fill(err, PR_ENOMEM, text, 0, "out of memory");
        return PR_ENOMEM;
    }
    ps.vcap = 64;
    ps.fcap = 16;
    ps.vs = (pr_json *)pr__alloc(ps.vcap * sizeof *ps.vs);
    ps.fs = (size_t *)pr__alloc(ps.fcap * sizeof *ps.fs);
    if (!ps.vs || !ps.fs) rc = pr__json_nomem(&ps);
    else rc = pr__json_run(&ps);
    if (rc == PR_OK) doc->root = ps.vs[0];
    if (ps.vs) pr__free(ps.vs, ps.vcap * sizeof *ps.vs);
    if (ps.fs) pr__free(ps.fs, ps.fcap * sizeof *ps.fs);
    if (rc) {
        pr__json_free_chunks(ps.chunks);
        pr__json_error_fill(err, rc, text, (size_t)(ps.err_at - ps.begin), ps.err_msg);
        return rc;
    }
    doc->chunks = ps.chunks;
    *out = doc;
    pr__json_error_fill(err, PR_OK, text, 0, "");
    return PR_OK;
}

void pr_json_doc_destroy(pr_json_doc *doc) {
    if (doc) pr__json_free_chunks(doc->chunks);
}

const pr_json *pr_json_root(const pr_json_doc *doc) { return doc ? &doc->root : NULL; }

int pr_json_type(const pr_json *v) { return v ? PR__JSON_TYPE(v) : 0; }

size_t pr_json_len(const pr_json *v) {
    if (!v) return 0;
    switch (PR__JSON_TYPE(v)) {
    case PR_JSON_STRING: case PR_JSON_ARRAY: case PR_JSON_OBJECT: return v->len;
    default: return 0;
    }
}

const pr_json *pr_json_getn(const pr_json *obj, const char *key, size_t key_len) {
    size_t i;
    if (!obj || PR__JSON_TYPE(obj) != PR_JSON_OBJECT || (!key && key_len)) return NULL;
    for (i = obj->len; i-- > 0;) {
        const pr_json *k = &obj->u.kids[2 * i];
        if (k->len == key_len && (key_len == 0 || memcmp(k->u.s, key, key_len) == 0)) return k + 1;
    }
    return NULL;
}

const pr_json *pr_json_get(const pr_json *obj, const char *key) {
    return key ? pr_json_getn(obj, key, strlen(key)) : NULL;
}

const pr_json *pr_json_at(const pr_json *arr, size_t i) {
    if (!arr || PR__JSON_TYPE(arr) != PR_JSON_ARRAY || i >= arr->len) return NULL;
    return &arr->u.kids[i];
}

const char *pr_json_string(const pr_json *v, size_t *len) {
    if (!v || PR__JSON_TYPE(v) != PR_JSON_STRING) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = v->len;
    return v->u.s;
}

int pr_json_int(const pr_json *v, int64_t *out) {
    if (!v || PR__JSON_TYPE(v) != PR_JSON_NUMBER) return PR_EINVAL;
    if (v->tag & PR__JSON_BIG) return PR_ELIMIT;
    if (!(v->tag & PR__JSON_INT)) return PR_EINVAL;
    if (out) *out = v->u.i;
    return PR_OK;
}

int pr_json_double(const pr_json *v, double *out) {
    if (!v || PR__JSON_TYPE(v) != PR_JSON_NUMBER) return PR_EINVAL;
    if (out) *out = (v->tag & PR__JSON_INT) ? (double)v->u.i : v->u.d;
    return PR_OK;
}

int pr_json_bool(const pr_json *v, int *out) {
    if (!v || (PR__JSON_TYPE(v) != PR_JSON_TRUE && PR__JSON_TYPE(v) != PR_JSON_FALSE)) return PR_EINVAL;
    if (out) *out = PR__JSON_TYPE(v) == PR_JSON_TRUE;
    return PR_OK;
}

int pr_json_is_null(const pr_json *v) { return v && PR__JSON_TYPE(v) == PR_JSON_NULL; }

void pr_json_iter_init(pr_json_iter *it, const pr_json *v) {
    memset(it, 0, sizeof *it);
    if (!v || (PR__JSON_TYPE(v) != PR_JSON_ARRAY && PR__JSON_TYPE(v) != PR_JSON_OBJECT) || !v->len) return;
    it->priv_step = PR__JSON_TYPE(v) == PR_JSON_OBJECT ? 2 : 1;
    it->priv_next = v->u.kids;
    it->priv_end = v->u.kids + (size_t)v->len * (size_t)it->priv_step;
    it->index = (size_t)-1;
}

int pr_json_iter_next(pr_json_iter *it) {
    if (!it->priv_next || it->priv_next >= it->priv_end) {
        it->key = NULL;
        it->key_len = 0;
        it->value = NULL;
        return 0;
    }
    if (it->priv_step == 2) {
        it->key = it->priv_next->u.s;
        it->key_len = it->priv_next->len;
        it->value = it->priv_next + 1;
    } else {
        it->value = it->priv_next;
    }
    it->priv_next += it->priv_step;
    it->index++;
    return 1;
}

/* ---- writer ---- */

#define PR__JSON_W_HAS 1u  /* the innermost level has an item: a comma comes next */
#define PR__JSON_W_KEY 2u  /* a key waits for its value */
#define PR__JSON_W_DONE 4u /* the top-level value is complete */

void pr_json_writer_init(pr_json_writer *w, pr_buf *out) {
    memset(w, 0, sizeof *w);
    w->priv_out = out;
}

static int pr__json_w_is_obj(const pr_json_writer *w) {
    unsigned d = w->priv_depth - 1;
    return (w->priv_kind[d / 8] >> (d % 8)) & 1;
}

static int pr__json_w_put(pr_json_writer *w, const void *p, size_t n) {
    if (pr_buf_append(w->priv_out, p, n) != PR_OK) return w->priv_err = PR_ENOMEM;
    return PR_OK;
}

/* Check that a value may come here, and write the comma before it. */
static int pr__json_w_before(pr_json_writer *w) {
    if (w->priv_err) return w->priv_err;
    if (w->priv_depth == 0) return (w->priv_state & PR__JSON_W_DONE) ? PR_ESTATE : PR_OK;
    if (pr__json_w_is_obj(w)) return (w->priv_state & PR__JSON_W_KEY) ? PR_OK : PR_ESTATE;
    return (w->priv_state & PR__JSON_W_HAS) ? pr__json_w_put(w, ",", 1) : PR_OK;
}

static void pr__json_w_after(pr_json_writer *w) {
    w->priv_state = w->priv_depth == 0 ? PR__JSON_W_DONE : PR__JSON_W_HAS;
}

int pr_json_writer_finish(pr_json_writer *w) {
    if (w->priv_err) return w->priv_err;
    return w->priv_depth == 0 && (w->priv_state & PR__JSON_W_DONE) ? PR_OK : PR_ESTATE;
}

static int pr__json_w_begin(pr_json_writer *w, int is_obj) {
    unsigned d = w->priv_depth;
    int rc = w->priv_err;
    if (rc) return rc;
    if (d >= PR_JSON_WRITER_MAX_DEPTH) return PR_ELIMIT;
    if ((rc = pr__json_w_before(w)) != 0) return rc;
    if ((rc = pr__json_w_put(w, is_obj ? "{" : "[", 1)) != 0) return rc;
    if (is_obj) w->priv_kind[d / 8] = (unsigned char)(w->priv_kind[d / 8] | (1u << (d % 8)));
    else w->priv_kind[d / 8] = (unsigned char)(w->priv_kind[d / 8] & ~(1u << (d % 8)));
    w->priv_depth = d + 1;
    w->priv_state = 0;
    return PR_OK;
}

static int pr__json_w_end(pr_json_writer *w, int is_obj) {
    int rc;
    if (w->priv_err) return w->priv_err;
    if (w->priv_depth == 0 || pr__json_w_is_obj(w) != is_obj || (w->priv_state & PR__JSON_W_KEY)) return PR_ESTATE;
    if ((rc = pr__json_w_put(w, is_obj ? "}" : "]", 1)) != 0) return rc;
    w->priv_depth--;
    pr__json_w_after(w);
    return PR_OK;
}

int pr_json_begin_object(pr_json_writer *w) { return pr__json_w_begin(w, 1); }
int pr_json_end_object(pr_json_writer *w) { return pr__json_w_end(w, 1); }
int pr_json_begin_array(pr_json_writer *w) { return pr__json_w_begin(w, 0); }
int pr_json_end_array(pr_json_writer *w) { return pr__json_w_end(w, 0); }

/* Append str quoted and escaped; it is valid UTF-8 (the callers check that
   before they write anything). */
static int pr__json_w_str(pr_json_writer *w, const char *str, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str, *e = s + len, *run, *q;
    if (pr_buf_reserve(w->priv_out, len + 2) != PR_OK) return w->priv_err = PR_ENOMEM;
    if (pr__json_w_put(w, "\"", 1)) return PR_ENOMEM;
    for (run = q = s; q < e; q++) {
        unsigned c = *q;
        char esc[6];
        size_t n = 2;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (q > run && pr__json_w_put(w, run, (size_t)(q - run))) return PR_ENOMEM;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            n = 6;
        }
        if (pr__json_w_put(w, esc, n)) return PR_ENOMEM;
        run = q + 1;
    }
    if (q > run && pr__json_w_put(w, run, (size_t)(q - run))) return PR_ENOMEM;
    return pr__json_w_put(w, "\"", 1);
}

int pr_json_key(pr_json_writer *w, const char *key, size_t len) {
    int rc;
    const unsigned char *q, *e;
    if (w->priv_err) return w->priv_err;
    if (w->priv_depth == 0 || !pr__json_w_is_obj(w) || (w->priv_state & PR__JSON_W_KEY)) return PR_ESTATE;
    if (!key && len) return PR_EINVAL;
    for (q = (const unsigned char *)key, e = q + len; q < e;) {
        size_t n = *q < 0x80 ? 1 : pr__json_utf8_len(q, e);
        if (!n) return PR_EINVAL;
        q += n;
    }
    if ((w->priv_state & PR__JSON_W_HAS) && (rc = pr__json_w_put(w, ",", 1)) != 0) return rc;
    if ((rc = pr__json_w_str(w, key ? key : "", len)) != 0) return rc;
    if ((rc = pr__json_w_put(w, ":", 1)) != 0) return rc;
    w->priv_state |= PR__JSON_W_KEY;
    return PR_OK;
}

int pr_json_write_string(pr_json_writer *w, const char *s, size_t len) {
    int rc;
    const unsigned char *q, *e;
    if (w->priv_err) return w->priv_err;
    if (!s && len) return PR_EINVAL;
    for (q = (const unsigned char *)s, e = q + len; q < e;) {
        size_t n = *q < 0x80 ? 1 : pr__json_utf8_len(q, e);
        if (!n) return PR_EINVAL;
        q += n;
    }
    if ((rc = pr__json_w_before(w)) != 0) return rc;
    if ((rc = pr__json_w_str(w, s ? s : "", len)) != 0) return rc;
    pr__json_w_after(w);
    return PR_OK;
}

static int pr__json_w_token(pr_json_writer *w, const char *t, size_t n) {
    int rc;
    if ((rc = pr__json_w_before(w)) != 0) return rc;
    if ((rc = pr__json_w_put(w, t, n)) != 0) return rc;
    pr__json_w_after(w);
    return PR_OK;
}

int pr_json_write_int(pr_json_writer *w, int64_t v) {
    char buf[24], *p = buf + sizeof buf;
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + m % 10);
        m /= 10;
    } while (m);
    if (v < 0) *--p = '-';
    return pr__json_w_token(w, p, (size_t)(buf + sizeof buf - p));
}

/* Shortest %.15g/%.16g/%.17g form of d that reads back as d; returns its length. */
static size_t pr__json_fmt_double(double d, char *buf, size_t cap) {
    int prec, n = 0, i, plain;
    for (prec = 15; prec <= 17; prec++) {
        pr_json back;
        const unsigned char *stop;
        n = snprintf(buf, cap, "%.*g", prec, d);
        for (i = 0; i < n; i++)
            if (buf[i] == ',') buf[i] = '.'; /* a locale's decimal comma */
        if (prec == 17) break;
        if (pr__json_number((const unsigned char *)buf, (const unsigned char *)buf + n, &stop, &back) == PR_OK &&
            stop == (const unsigned char *)buf + n &&
            ((back.tag & PR__JSON_INT) ? (double)back.u.i : back.u.d) == d)
            break;
    }
    for (plain = 1, i = 0; i < n; i++)
        if (buf[i] == '.' || buf[i] == 'e') plain = 0;
    if (plain) buf[n++] = '.', buf[n++] = '0', buf[n] = 0;
    return (size_t)n;
}

int pr_json_write_double(pr_json_writer *w, double v) {
    char buf[40];
    if (w->priv_err) return w->priv_err;
    if (v != v || v > 1.7976931348623157e308 || v < -1.7976931348623157e308) return PR_EINVAL;
    return pr__json_w_token(w, buf, pr__json_fmt_double(v, buf, sizeof buf - 4));
}

int pr_json_write_bool(pr_json_writer *w, int v) {
    return v ? pr__json_w_token(w, "true", 4) : pr__json_w_token(w, "false", 5);
}

int pr_json_write_null(pr_json_writer *w) { return pr__json_w_token(w, "null", 4); }

static int pr__json_w_scalar(pr_json_writer *w, const pr_json *v) {
    switch (PR__JSON_TYPE(v)) {
    case PR_JSON_NULL: return pr_json_write_null(w);
    case PR_JSON_FALSE: return pr_json_write_bool(w, 0);
    case PR_JSON_TRUE: return pr_json_write_bool(w, 1);
    case PR_JSON_STRING: return pr_json_write_string(w, v->u.s, v->len);
    case PR_JSON_NUMBER:
        return (v->tag & PR__JSON_INT) ? pr_json_write_int(w, v->u.i) : pr_json_write_double(w, v->u.d);
    default: return PR_EINVAL;
    }
}

typedef struct pr__json_wframe {
    const pr_json *cur, *end;
} pr__json_wframe;

int pr_json_write_value(pr_json_writer *w, const pr_json *v) {
    pr__json_wframe *st = NULL;
    size_t n = 0, cap = 0;
    int rc = PR_OK;
    if (!v) return PR_EINVAL;
    for (;;) {
        int t = PR__JSON_TYPE(v);
        if (t == PR_JSON_ARRAY || t == PR_JSON_OBJECT) {
            if ((rc = pr__json_w_begin(w, t == PR_JSON_OBJECT)) != 0) break;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                pr__json_wframe *ns = (pr__json_wframe *)pr__realloc(st, cap * sizeof *st, ncap * sizeof *st);
                if (!ns) {
                    rc = w->priv_err = PR_ENOMEM;
                    break;
                }
                st = ns;
                cap = ncap;
            }
            st[n].cur = v->u.kids;
            st[n].end = v->u.kids ? v->u.kids + (size_t)v->len * (t == PR_JSON_OBJECT ? 2u : 1u) : NULL;
            n++;
        } else if ((rc = pr__json_w_scalar(w, v)) != 0) {
            break;
        }
        /* the next value, closing finished containers */
        while (n && st[n - 1].cur == st[n - 1].end) {
            if ((rc = pr__json_w_end(w, pr__json_w_is_obj(w))) != 0) break;
            n--;
        }
        if (rc || !n) break;
        if (pr__json_w_is_obj(w)) {
            const pr_json *k = st[n - 1].cur;
            if ((rc = pr_json_key(w, k->u.s, k->len)) != 0) break;
            v = k + 1;
            st[n - 1].cur += 2;
        } else {
            v = st[n - 1].cur++;
        }
    }
    if (st) pr__free(st, cap * sizeof *st);
    return rc;
}

int pr_json_to_buf(const pr_json *v, pr_buf *out) {
    pr_json_writer w;
    size_t len0;
    int rc;
    if (!v || !out) return PR_EINVAL;
    len0 = out->len;
    pr_json_writer_init(&w, out);
    rc = pr_json_write_value(&w, v);
    if (rc == PR_OK) rc = pr_json_writer_finish(&w);
    if (rc != PR_OK && out->data) {
        out->len = len0;
        out->data[len0] = 0;
    }
    return rc;
}

/* ==== url: URL parsing, percent-encoding, query building, reference resolution ==== >>url.impl */
/* Generic RFC 3986 components of a URI reference (appendix B split). */
typedef struct pr__url_parts {
    pr_slice scheme, auth, path, query, frag;
    int has_scheme, has_auth, has_query, has_frag;
} pr__url_parts;

static int pr__url_is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int pr__url_is_digit(int c) { return c >= '0' && c <= '9'; }
static int pr__url_hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
static int pr__url_in(int c, const char *set) { return c != 0 && strchr(set, c) != NULL; }
static int pr__url_unreserved(int c) {
    return pr__url_is_alpha(c) || pr__url_is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
static int pr__url_sub_delim(int c) { return pr__url_in(c, "!$&'()*+,;="); }

/* Check the byte rules shared by parse and resolve; 0 if fine, else the
   error with a message naming the offset. */
static int pr__url_check_bytes(const char *s, size_t n, const char *what, pr_err_info *err) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return pr__err_set(err, PR_EINVAL, 0, "url: %s: control byte 0x%02x at offset %lu", what,
                               (unsigned)c, (unsigned long)i);
        if (c == ' ')
            return pr__err_set(err, PR_EINVAL, 0, "url: %s: space at offset %lu", what, (unsigned long)i);
        if (c == '%' && (n - i < 3 || pr__url_hexval((unsigned char)s[i + 1]) < 0 ||
                         pr__url_hexval((unsigned char)s[i + 2]) < 0))
            return pr__err_set(err, PR_EINVAL, 0, "url: %s: malformed percent-encoding at offset %lu", what,
                               (unsigned long)i);
    }
    return PR_OK;
}

/* Length of a scheme at the start of s (excluding the ':'), or 0. */
static size_t pr__url_scheme_len(const char *s, size_t n) {
    size_t i;
    if (n == 0 || !pr__url_is_alpha((unsigned char)s[0])) return 0;
    for (i = 1; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == ':') return i;
        if (!pr__url_is_alpha(c) && !pr__url_is_digit(c) && c != '+' && c != '-' && c != '.') return 0;
    }
    return 0;
}

static pr_slice pr__url_sl(const char *p, size_t n) {
    pr_slice s;
    s.ptr = p;
    s.len = n;
    return s;
}

static void pr__url_split(const char *s, size_t n, pr__url_parts *p) {
    size_t i = 0, j, k;
    memset(p, 0, sizeof *p);
    p->scheme = p->auth = p->path = p->query = p->frag = pr__url_sl("", 0);
    k = pr__url_scheme_len(s, n);
    if (k) {
        p->has_scheme = 1;
        p->scheme = pr__url_sl(s, k);
        i = k + 1;
    }
    if (n - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        p->has_auth = 1;
        for (j = i + 2; j < n && s[j] != '/' && s[j] != '?' && s[j] != '#'; j++) {}
        p->auth = pr__url_sl(s + i + 2, j - i - 2);
        i = j;
    }
    for (j = i; j < n && s[j] != '?' && s[j] != '#'; j++) {}
    p->path = pr__url_sl(s + i, j - i);
    i = j;
    if (i < n && s[i] == '?') {
        p->has_query = 1;
        for (j = i + 1; j < n && s[j] != '#'; j++) {}
        p->query = pr__url_sl(s + i + 1, j - i - 1);
        i = j;
    }
    if (i < n && s[i] == '#') {
        p->has_frag = 1;
        p->frag = pr__url_sl(s + i + 1, n - i - 1);
    }
}

/* A dotted-quad IPv4 address filling all of s (RFC 3986 dec-octet). */
static int pr__url_ipv4_ok(const char *s, size_t n) {
    size_t i = 0;
    int part;
    for (part = 0; part < 4; part++) {
        size_t d = 0;
        unsigned v = 0;
        if (part) {
            if (i >= n || s[i] != '.') return 0;
            i++;
        }
        while (i < n && pr__url_is_digit((unsigned char)s[i]) && d < 4) v = v * 10 + (unsigned)(s[i++] - '0'), d++;
        if (d == 0 || d > 3 || v > 255 || (d > 1 && s[i - d] == '0')) return 0;
    }
    return i == n;
}

/* An RFC 3986 IPv6address filling all of s (no zone, no brackets). */
static int pr__url_ipv6_ok(const char *s, size_t n) {
    size_t i = 0;
    int groups = 0, dbl = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        dbl = 1;
        i = 2;
        if (i == n) return 1;
    } else if (n == 0 || s[0] == ':') {
        return 0;
    }
    for (;;) {
        size_t h = 0;
        while (i + h < n && h < 5 && pr__url_hexval((unsigned char)s[i + h]) >= 0) h++;
        if (i + h < n && s[i + h] == '.') {
            if (!pr__url_ipv4_ok(s + i, n - i)) return 0;
            groups += 2;
            break;
        }
        if (h == 0 || h > 4) return 0;
        groups++;
        i += h;
        if (i == n) break;
        if (s[i] != ':') return 0;
        i++;
        if (i < n && s[i] == ':') {
            if (dbl) return 0;
            dbl = 1;
            i++;
            if (i == n) break;
        } else if (i == n) {
            return 0;
        }
        if (groups > 8) return 0;
    }
    return dbl ? groups <= 7 : groups == 8;
}

/* Userinfo and reg-name bytes: unreserved, sub-delims, %XX (already
   checked), bytes >= 0x80, and ':' where colon is set. */
static int pr__url_name_ok(pr_slice s, int colon, size_t *bad) {
    size_t i;
    for (i = 0; i < s.len; i++) {
        int c = (unsigned char)s.ptr[i];
        if (pr__url_unreserved(c) || pr__url_sub_delim(c) || c == '%' || c >= 0x80 || (colon && c == ':'))
            continue;
        *bad = i;
        return 0;
    }
    return 1;
}

/* One part of a WHATWG IPv4 host: decimal, 0x hex or 0-led octal. Returns
   0 and *v, or -1. */
static int pr__url_v4_part(const char *p, size_t n, uint64_t *v) {
    unsigned radix = 10;
    size_t i;
    *v = 0;
    if (n == 0) return -1;
    if (n >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        radix = 16;
        p += 2;
        n -= 2;
    } else if (n >= 2 && p[0] == '0') {
        radix = 8;
        p++;
        n--;
    }
    for (i = 0; i < n; i++) {
        int d = pr__url_hexval((unsigned char)p[i]);
        if (d < 0 || (unsigned)d >= radix) return -1;
        *v = *v * radix + (unsigned)d;
        if (*v > 0xffffffffu) return -1;
    }
    return 0;
}

/* A host ending in a number is an IPv4 address (WHATWG URL host parsing).
   Returns 0 (not one: a name), 1 (out[16] holds the dotted quad) or -1
   (ends in a number but is no valid address). */
static int pr__url_ipv4(pr_slice h, char out[16]) {
    const char *dot, *last;
    size_t n = h.len, nparts = 0, start = 0, i, len;
    uint64_t parts[4], addr;
    if (n > 1 && h.ptr[n - 1] == '.') n--;
    dot = NULL;
    for (i = n; i > 0; i--)
        if (h.ptr[i - 1] == '.') {
            dot = h.ptr + i - 1;
            break;
        }
    last = dot ? dot + 1 : h.ptr;
    len = (size_t)(h.ptr + n - last);
    for (i = 0; i < len && pr__url_is_digit((unsigned char)last[i]); i++) {}
    if (i == 0 || i != len) { /* not all digits: "0x" and hex digits count too */
        if (len < 2 || last[0] != '0' || (last[1] != 'x' && last[1] != 'X')) return 0;
        for (i = 2; i < len; i++)
            if (pr__url_hexval((unsigned char)last[i]) < 0) return 0;
    }
    for (i = 0; i <= n; i++) {
        if (i < n && h.ptr[i] != '.') continue;
        if (nparts == 4 || pr__url_v4_part(h.ptr + start, i - start, &parts[nparts]) != 0) return -1;
        nparts++;
        start = i + 1;
    }
    for (i = 0; i + 1 < nparts; i++)
        if (parts[i] > 255) return -1;
    if (parts[nparts - 1] >= ((uint64_t)1 << (8 * (5 - nparts)))) return -1;
    addr = parts[nparts - 1];
    for (i = 0; i + 1 < nparts; i++) addr += parts[i] << (8 * (3 - i));
    snprintf(out, 16, "%u.%u.%u.%u", (unsigned)(addr >> 24), (unsigned)(addr >> 16) & 255u,
             (unsigned)(addr >> 8) & 255u, (unsigned)addr & 255u);
    return 1;
}

static int pr__url_fail(pr_url *u, pr_err_info *err, const char *fmt, const char *arg, size_t arg_len) {
    int n = (int)PR__MIN(arg_len, (size_t)40);
    memset(u, 0, sizeof *u);
    return pr__err_set(err, PR_EINVAL, 0, fmt, n, arg);
}

int pr_url_parse(pr_url *u, const char *s, size_t len, pr_err_info *err) {
    pr__url_parts p;
    pr_slice host, port = pr__url_sl("", 0), ui;
    size_t i, bad = 0;
    int rc, has_port = 0, is_ipv6 = 0, secure, v4 = 0;
    unsigned long pv = 0;
    char *mem, quad[16];
    if (!u) return pr__err_set(err, PR_EINVAL, 0, "url: NULL pr_url");
    memset(u, 0, sizeof *u);
    if (!s && len) return pr__err_set(err, PR_EINVAL, 0, "url: NULL text");
    if (!s) s = "";
    if ((rc = pr__url_check_bytes(s, len, "parse", err)) != 0) return rc;
    pr__url_split(s, len, &p);
    if (!p.has_scheme)
        return pr__url_fail(u, err, "url: not an absolute URL (no scheme)%.*s", "", 0);
    if (pr_slice_ieq(p.scheme, pr_slice_cstr("https"))) secure = 1;
    else if (pr_slice_ieq(p.scheme, pr_slice_cstr("http"))) secure = 0;
    else return pr__url_fail(u, err, "url: unsupported scheme \"%.*s\" (only http and https)", p.scheme.ptr, p.scheme.len);
    if (!p.has_auth) return pr__url_fail(u, err, "url: missing \"//\" after \"%.*s:\"", p.scheme.ptr, p.scheme.len);
    /* userinfo: everything before the last '@' */
    ui = pr__url_sl("", 0);
    host = p.auth;
    for (i = p.auth.len; i > 0; i--)
        if (p.auth.ptr[i - 1] == '@') break;
    if (i > 0) {
        ui = pr__url_sl(p.auth.ptr, i - 1);
        host = pr__url_sl(p.auth.ptr + i, p.auth.len - i);
        u->has_userinfo = 1;
        if (!pr__url_name_ok(ui, 1, &bad))
            return pr__url_fail(u, err, "url: invalid byte in userinfo: \"%.*s\"", ui.ptr + bad, 1);
    }
    if (host.len && host.ptr[0] == '[') {
        size_t e;
        for (e = 1; e < host.len && host.ptr[e] != ']'; e++) {}
        if (e == host.len) return pr__url_fail(u, err, "url: IPv6 literal without ']': \"%.*s\"", host.ptr, host.len);
        if (e + 1 < host.len) {
            if (host.ptr[e + 1] != ':')
                return pr__url_fail(u, err, "url: unexpected text after ']': \"%.*s\"", host.ptr + e + 1, host.len - e - 1);
            has_port = 1;
            port = pr__url_sl(host.ptr + e + 2, host.len - e - 2);
        }
        host = pr__url_sl(host.ptr + 1, e - 1);
        is_ipv6 = 1;
        if (memchr(host.ptr, '%', host.len))
            return pr__url_fail(u, err, "url: IPv6 zone identifiers are not supported: \"%.*s\"", host.ptr, host.len);
        if (host.len && (host.ptr[0] == 'v' || host.ptr[0] == 'V'))
            return pr__url_fail(u, err, "url: IPvFuture literals are not supported: \"%.*s\"", host.ptr, host.len);
        if (!pr__url_ipv6_ok(host.ptr, host.len))
            return pr__url_fail(u, err, "url: invalid IPv6 literal: \"%.*s\"", host.ptr, host.len);
    } else {
        const char *c = (const char *)memchr(host.ptr, ':', host.len);
        if (c) {
            has_port = 1;
            port = pr__url_sl(c + 1, host.len - (size_t)(c + 1 - host.ptr));
            host.len = (size_t)(c - host.ptr);
        }
        if (host.len == 0) return pr__url_fail(u, err, "url: empty host%.*s", "", 0);
        if (!pr__url_name_ok(host, 0, &bad))
            return pr__url_fail(u, err, "url: invalid byte in host: \"%.*s\"", host.ptr + bad, 1);
        v4 = pr__url_ipv4(host, quad);
        if (v4 < 0) return pr__url_fail(u, err, "url: invalid IPv4 address: \"%.*s\"", host.ptr, host.len);
    }
    if (has_port && port.len) {
        if (memchr(port.ptr, ':', port.len))
            return pr__url_fail(u, err, "url: bad port (an IPv6 address needs brackets): \"%.*s\"", host.ptr,
                                (size_t)(port.ptr + port.len - host.ptr));
        for (i = 0; i < port.len; i++) {
            if (!pr__url_is_digit((unsigned char)port.ptr[i]))
                return pr__url_fail(u, err, "url: port is not a number: \"%.*s\"", port.ptr, port.len);
            pv = pv * 10 + (unsigned long)(port.ptr[i] - '0');
            if (pv > 65535) return pr__url_fail(u, err, "url: port out of range: \"%.*s\"", port.ptr, port.len);
        }
        if (pv == 0) return pr__url_fail(u, err, "url: port 0 is not usable: \"%.*s\"", port.ptr, port.len);
    } else {
        has_port = 0;
    }
    mem = (char *)pr__alloc(len + 1 + (v4 > 0 ? sizeof quad : 0));
    if (!mem) {
        memset(u, 0, sizeof *u);
        return pr__err_set(err, PR_ENOMEM, 0, "url: out of memory");
    }
    memcpy(mem, s, len);
    mem[len] = 0;
#define PR__URL_REBASE(sl) pr__url_sl((sl).len ? mem + ((sl).ptr - s) : mem + len, (sl).len)
    u->scheme = PR__URL_REBASE(p.scheme);
    u->userinfo = PR__URL_REBASE(ui);
    u->host = PR__URL_REBASE(host);
    u->path = PR__URL_REBASE(p.path);
    u->query = PR__URL_REBASE(p.query);
    u->fragment = PR__URL_REBASE(p.frag);
#undef PR__URL_REBASE
    for (i = 0; i < u->scheme.len; i++) {
        char *c = mem + (u->scheme.ptr - mem) + i;
        *c = (char)pr__buf_ascii_lower((unsigned char)*c);
    }
    for (i = 0; i < u->host.len; i++) {
        char *c = mem + (u->host.ptr - mem) + i;
        *c = (char)pr__buf_ascii_lower((unsigned char)*c);
    }
    if (v4 > 0) { /* the dotted quad, after the copy of the text */
        memcpy(mem + len + 1, quad, sizeof quad);
        u->host = pr__url_sl(mem + len + 1, strlen(quad));
    }
    u->port = has_port ? (uint16_t)pv : (uint16_t)(secure ? 443 : 80);
    u->port_explicit = has_port;
    u->is_ipv6 = is_ipv6;
    u->secure = secure;
    u->has_query = p.has_query;
    u->has_fragment = p.has_frag;
    u->mem_ = mem;
    u->mem_len_ = len + 1 + (v4 > 0 ? sizeof quad : 0);
    return PR_OK;
}

void pr_url_deinit(pr_url *u) {
    if (!u) return;
    pr__free(u->mem_, u->mem_len_);
    memset(u, 0, sizeof *u);
}

/* Append helpers that roll out back to its old length on failure. */
static int pr__url_put(pr_buf *out, const char *p, size_t n) { return pr_buf_append(out, p, n); }
static int pr__url_put_sl(pr_buf *out, pr_slice s) { return pr_buf_append(out, s.ptr, s.len); }
static int pr__url_undo(pr_buf *out, size_t old, int rc) {
    if (rc && out->data) {
        out->len = old;
        out->data[old] = 0;
    }
    return rc;
}

static int pr__url_put_host_port(pr_buf *out, const pr_url *u, int with_port) {
    int rc = 0;
    char num[24];
    if (u->is_ipv6) rc = pr__url_put(out, "[", 1);
    if (!rc) rc = pr__url_put_sl(out, u->host);
    if (!rc && u->is_ipv6) rc = pr__url_put(out, "]", 1);
    if (!rc && with_port) {
        num[0] = ':';
        rc = pr__url_put(out, num, 1 + pr__buf_dec(num + 1, u->port));
    }
    return rc;
}

int pr_url_format(pr_buf *out, const pr_url *u, int with_fragment) {
    size_t old = out->len;
    int rc = pr__url_put_sl(out, u->scheme);
    if (!rc) rc = pr__url_put(out, "://", 3);
    if (!rc && u->has_userinfo) {
        rc = pr__url_put_sl(out, u->userinfo);
        if (!rc) rc = pr__url_put(out, "@", 1);
    }
    if (!rc) rc = pr__url_put_host_port(out, u, u->port_explicit);
    if (!rc) rc = pr__url_put_sl(out, u->path);
    if (!rc && u->has_query) {
        rc = pr__url_put(out, "?", 1);
        if (!rc) rc = pr__url_put_sl(out, u->query);
    }
    if (!rc && with_fragment && u->has_fragment) {
        rc = pr__url_put(out, "#", 1);
        if (!rc) rc = pr__url_put_sl(out, u->fragment);
    }
    return pr__url_undo(out, old, rc);
}

/* Append s, percent-encoding what a request line may not carry raw; runs of
   plain bytes are appended whole. */
static int pr__url_put_target_part(pr_buf *out, pr_slice s) {
    static const char hex[] = "0123456789ABCDEF";
    size_t i = 0, run;
    int rc = pr_buf_reserve(out, s.len);
    while (!rc && i < s.len) {
        for (run = i; run < s.len; run++) {
            unsigned char c = (unsigned char)s.ptr[run];
            if (c >= 0x80 || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' || c == '{' ||
                c == '|' || c == '}')
                break;
        }
        if (run > i) rc = pr__url_put(out, s.ptr + i, run - i);
        if (!rc && run < s.len) {
            unsigned char c = (unsigned char)s.ptr[run];
            char e[3];
            e[0] = '%';
            e[1] = hex[c >> 4];
            e[2] = hex[c & 15];
            rc = pr__url_put(out, e, 3);
            run++;
        }
        i = run;
    }
    return rc;
}

int pr_url_target(pr_buf *out, const pr_url *u) {
    size_t old = out->len;
    int rc = u->path.len ? pr__url_put_target_part(out, u->path) : pr__url_put(out, "/", 1);
    if (!rc && u->has_query) {
        rc = pr__url_put(out, "?", 1);
        if (!rc) rc = pr__url_put_target_part(out, u->query);
    }
    return pr__url_undo(out, old, rc);
}

int pr_url_authority(pr_buf *out, const pr_url *u, int always_port) {
    size_t old = out->len;
    int rc = pr__url_put_host_port(out, u, always_port || u->port != (u->secure ? 443 : 80));
    return pr__url_undo(out, old, rc);
}

int pr_url_origin(pr_buf *out, const pr_url *u) {
    size_t old = out->len;
    int rc = pr__url_put_sl(out, u->scheme);
    if (!rc) rc = pr__url_put(out, "://", 3);
    if (!rc) rc = pr__url_put_host_port(out, u, 1);
    return pr__url_undo(out, old, rc);
}

int pr_url_same_origin(const pr_url *a, const pr_url *b) {
    return a->secure == b->secure && a->port == b->port && a->is_ipv6 == b->is_ipv6 &&
           pr_slice_ieq(a->scheme, b->scheme) && pr_slice_ieq(a->host, b->host);
}

static int pr__url_keep(int c, int set) {
    switch (set) {
    case PR_URL_ENC_COMPONENT: return pr__url_unreserved(c);
    case PR_URL_ENC_PATH: return pr__url_unreserved(c) || pr__url_sub_delim(c) || c == ':' || c == '@' || c == '/';
    case PR_URL_ENC_QUERY: return pr__url_unreserved(c) || pr__url_in(c, "!$'()*,;:@/?");
    default: return pr__url_is_alpha(c) || pr__url_is_digit(c) || pr__url_in(c, "*-._");
    }
}

int pr_url_encode(pr_buf *out, const char *s, size_t n, int set) {
    static const char hex[] = "0123456789ABCDEF";
    size_t i, need = 0;
    char *w;
    int rc;
    if (set < PR_URL_ENC_COMPONENT || set > PR_URL_ENC_FORM || (!s && n)) return PR_EINVAL;
    for (i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        need += pr__url_keep(c, set) || (set == PR_URL_ENC_FORM && c == ' ') ? 1 : 3;
    }
    if ((rc = pr_buf_reserve(out, need)) != 0) return rc;
    w = out->data + out->len;
    for (i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (pr__url_keep(c, set)) {
            *w++ = (char)c;
        } else if (set == PR_URL_ENC_FORM && c == ' ') {
            *w++ = '+';
        } else {
            *w++ = '%';
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
        }
    }
    out->len += need;
    out->data[out->len] = 0;
    return PR_OK;
}

int pr_url_decode(pr_buf *out, const char *s, size_t n, int flags) {
    size_t i, need = 0;
    char *w;
    int rc;
    if (!s && n) return PR_EINVAL;
    for (i = 0; i < n; i++, need++) {
        if (s[i] != '%') continue;
        if (n - i < 3 || pr__url_hexval((unsigned char)s[i + 1]) < 0 || pr__url_hexval((unsigned char)s[i + 2]) < 0)
            return PR_EINVAL;
        i += 2;
    }
    if ((rc = pr_buf_reserve(out, need)) != 0) return rc;
    w = out->data + out->len;
    for (i = 0; i < n; i++) {
        if (s[i] == '%') {
            *w++ = (char)(pr__url_hexval((unsigned char)s[i + 1]) * 16 + pr__url_hexval((unsigned char)s[i + 2]));
            i += 2;
        } else if (s[i] == '+' && (flags & PR_URL_DEC_PLUS)) {
            *w++ = ' ';
        } else {
            *w++ = s[i];
        }
    }
    out->len += need;
    out->data[out->len] = 0;
    return PR_OK;
}

int pr_url_query_append(pr_buf *q, const char *key, const char *value) {
    size_t old = q->len;
    int rc = 0;
    if (!key) return PR_EINVAL;
    if (q->len) rc = pr__url_put(q, "&", 1);
    if (!rc) rc = pr_url_encode(q, key, strlen(key), PR_URL_ENC_QUERY);
    if (!rc && value) {
        rc = pr__url_put(q, "=", 1);
        if (!rc) rc = pr_url_encode(q, value, strlen(value), PR_URL_ENC_QUERY);
    }
    return pr__url_undo(q, old, rc);
}

/* RFC 3986 5.2.4 on w[0..n), in place; returns the new length. The output
   never overtakes the input, so one buffer serves both. */
static size_t pr__url_remove_dots(char *w, size_t n) {
    size_t in = 0, o = 0;
#define PR__URL_AT(str) (n - in >= sizeof(str) - 1 && memcmp(w + in, str, sizeof(str) - 1) == 0)
#define PR__URL_IS(str) (n - in == sizeof(str) - 1 && memcmp(w + in, str, sizeof(str) - 1) == 0)
    while (in < n) {
        if (PR__URL_AT("../")) {
            in += 3;
        } else if (PR__URL_AT("./")) {
            in += 2;
        } else if (PR__URL_AT("/./")) {
            in += 2;
        } else if (PR__URL_IS("/.")) {
            in += 1;
            w[in] = '/';
        } else if (PR__URL_AT("/../")) {
            in += 3;
            while (o > 0 && w[o - 1] != '/') o--;
            if (o > 0) o--;
        } else if (PR__URL_IS("/..")) {
            in += 2;
            w[in] = '/';
            while (o > 0 && w[o - 1] != '/') o--;
            if (o > 0) o--;
        } else if (PR__URL_IS(".") || PR__URL_IS("..")) {
            in = n;
        } else {
            size_t e = in + 1;
            while (e < n && w[e] != '/') e++;
            memmove(w + o, w + in, e - in);
            o += e - in;
            in = e;
        }
    }
#undef PR__URL_AT
#undef PR__URL_IS
    return o;
}

int pr_url_resolve(pr_buf *out, const char *base, size_t base_len, const char *ref, size_t ref_len,
                   pr_err_info *err) {
    pr__url_parts b, r;
    pr_slice scheme, auth, query;
    int has_auth, has_query, rc;
    size_t pstart;
    char *w;
    if ((!base && base_len) || (!ref && ref_len)) return pr__err_set(err, PR_EINVAL, 0, "url: NULL text");
    if (!base) base = "";
    if (!ref) ref = "";
    if ((rc = pr__url_check_bytes(base, base_len, "base", err)) != 0) return rc;
    if ((rc = pr__url_check_bytes(ref, ref_len, "reference", err)) != 0) return rc;
    pr__url_split(base, base_len, &b);
    pr__url_split(ref, ref_len, &r);
    if (!b.has_scheme) return pr__err_set(err, PR_EINVAL, 0, "url: the base is not absolute (no scheme)");
    /* The result is never longer than base + ref + "//" + "/" + "?" + "#" + ":". */
    if ((rc = pr_buf_reserve(out, base_len + ref_len + 8)) != 0)
        return pr__err_set(err, rc, 0, "url: out of memory");
    w = out->data + out->len;
#define PR__URL_W(p, n) (memcpy(w, (p), (n)), w += (n))
    if (r.has_scheme) {
        scheme = r.scheme;
        has_auth = r.has_auth, auth = r.auth;
        has_query = r.has_query, query = r.query;
    } else {
        scheme = b.scheme;
        if (r.has_auth) {
            has_auth = 1, auth = r.auth;
            has_query = r.has_query, query = r.query;
        } else {
            has_auth = b.has_auth, auth = b.auth;
            if (r.path.len == 0) {
                has_query = r.has_query ? 1 : b.has_query;
                query = r.has_query ? r.query : b.query;
            } else {
                has_query = r.has_query, query = r.query;
            }
        }
    }
    PR__URL_W(scheme.ptr, scheme.len);
    *w++ = ':';
    if (has_auth) {
        PR__URL_W("//", 2);
        PR__URL_W(auth.ptr, auth.len);
    }
    pstart = (size_t)(w - out->data);
    if (r.has_scheme || r.has_auth || (r.path.len && r.path.ptr[0] == '/')) {
        PR__URL_W(r.path.ptr, r.path.len);
        w = out->data + pstart + pr__url_remove_dots(out->data + pstart, r.path.len);
    } else if (r.path.len == 0) {
        PR__URL_W(b.path.ptr, b.path.len);
    } else {
        size_t keep = b.path.len, n;
        if (b.has_auth && b.path.len == 0) {
            *w++ = '/';
        } else {
            while (keep > 0 && b.path.ptr[keep - 1] != '/') keep--;
            PR__URL_W(b.path.ptr, keep);
        }
        PR__URL_W(r.path.ptr, r.path.len);
        n = (size_t)(w - out->data) - pstart;
        w = out->data + pstart + pr__url_remove_dots(out->data + pstart, n);
    }
    if (has_query) {
        *w++ = '?';
        PR__URL_W(query.ptr, query.len);
    }
    if (r.has_frag) {
        *w++ = '#';
        PR__URL_W(r.frag.ptr, r.frag.len);
    }
#undef PR__URL_W
    out->len = (size_t)(w - out->data);
    out->data[out->len] = 0;
    return PR_OK;
}

/* ==== sse: Server-Sent Events decoder (pure; no I/O) ==== >>sse.impl */
#define PR__SSE_DEF_MAX_LINE ((size_t)1 << 20)
#define PR__SSE_DEF_MAX_EVENT ((size_t)16 << 20)
#define PR__SSE_HI ((uint64_t)0x8080808080808080ull)

#ifdef PRISTINE_TESTING
/* Bytes the decoder examined or copied (line scans, value checks, copies),
   so a fuzzer can check the work per input byte stays bounded. */
static size_t pr__sse_test_work;
#define PR__SSE_WORK(n) (pr__sse_test_work += (size_t)(n))
#else
#define PR__SSE_WORK(n) ((void)0)
#endif

/* A private growable buffer: sized frees, NUL kept after len once allocated. */
typedef struct pr__sse_buf {
    char *p;
    size_t len, cap;
} pr__sse_buf;

struct pr_sse_decoder {
    size_t max_line, max_event;
    int raw;
    /* the borrowed chunk */
    const char *src;
    size_t src_len, src_pos;
    size_t lf_at, cr_at; /* next LF / CR at or after src_pos (src_len: none) */
    int lf_ok, cr_ok;    /* lf_at / cr_at computed for this chunk */
    size_t hi_at;        /* next byte >= 0x80 at or after the last scan start (src_len: none) */
    int hi_ok;           /* hi_at computed for this chunk */
    int cr_pending;      /* the last line ended with a CR: swallow one LF */
    int bom;             /* 0..2 BOM bytes matched so far (kept in line); 3 = decided */
    int eof, err, skipping, skip_midline, fed_any;
    pr__sse_buf line;    /* a partial line carried across chunks */
    /* the block being built */
    size_t data_lines;   /* `data` lines seen; 0 = empty data buffer */
    int data_is_view;    /* data is data_view (in the chunk), else data.p + data_off */
    const char *data_view;
    size_t data_view_len, data_off;
    pr__sse_buf data;
    pr__sse_buf type;    /* event-type buffer; len 0 = "message" */
    pr__sse_buf idb;     /* the block's id, meaningful while block_id */
    int block_id;        /* the block set the last-event-ID buffer */
    int64_t block_retry;
    /* stream state */
    pr__sse_buf last;    /* last-event-ID string */
    int64_t retry;
};

static void pr__sse_buf_free(pr__sse_buf *b) {
    pr__free(b->p, b->cap);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Make room for need bytes plus a NUL. Content up to len is kept. */
static int pr__sse_reserve(pr__sse_buf *b, size_t need) {
    size_t cap;
    char *q;
    if (need < b->cap) return PR_OK;
    if (need >= SIZE_MAX / 2) return PR_ENOMEM;
    cap = b->cap ? b->cap : 64;
    while (cap <= need) cap *= 2;
    q = (char *)pr__realloc(b->p, b->cap, cap);
    if (!q) return PR_ENOMEM;
    b->p = q;
    b->cap = cap;
    return PR_OK;
}

static int pr__sse_append(pr__sse_buf *b, const char *s, size_t n) {
    PR__SSE_WORK(n);
    if (b->len + n >= b->cap && pr__sse_reserve(b, b->len + n)) return PR_ENOMEM;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return PR_OK;
}

/* ---- UTF-8 (WHATWG decode, maximal-subpart replacement) ---- */

static int pr__sse_ascii8(const unsigned char *s) {
    uint64_t w;
    memcpy(&w, s, 8);
    return (w & PR__SSE_HI) == 0;
}

/* Is p[0..n) valid UTF-8? ASCII runs go 32 / 8 bytes at a time. */
static int pr__sse_utf8_ok(const char *p, size_t n) {
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    PR__SSE_WORK(n);
    while (i + 32 <= n) {
        uint64_t a, b, c, e;
        memcpy(&a, s + i, 8);
        memcpy(&b, s + i + 8, 8);
        memcpy(&c, s + i + 16, 8);
        memcpy(&e, s + i + 24, 8);
        if ((a | b | c | e) & PR__SSE_HI) break;
        i += 32;
    }
    while (i < n) {
        int k;
        if (s[i] < 0x80) {
            if (i + 8 <= n && pr__sse_ascii8(s + i)) i += 8;
            else i++;
            continue;
        }
        k = pr__buf_utf8_seq(s + i, n - i);
        if (k < 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

/* Length of the ASCII prefix of p[0..n), 64 bytes per step. */
static size_t pr__sse_ascii_prefix(const char *p, size_t n) {
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    while (i + 64 <= n) {
        uint64_t a, b, c, e, f, g, h, k;
        memcpy(&a, s + i, 8);
        memcpy(&b, s + i + 8, 8);
        memcpy(&c, s + i + 16, 8);
        memcpy(&e, s + i + 24, 8);
        memcpy(&f, s + i + 32, 8);
        memcpy(&g, s + i + 40, 8);
        memcpy(&h, s + i + 48, 8);
        memcpy(&k, s + i + 56, 8);
        if (((a | b) | (c | e) | (f | g) | (h | k)) & PR__SSE_HI) break;
        i += 64;
    }
    while (i + 8 <= n && pr__sse_ascii8(s + i)) i += 8;
    while (i < n && s[i] < 0x80) i++;
    PR__SSE_WORK(i + 1);
    return i;
}

/* Write p[0..n) to dst with every maximal invalid subpart replaced by
   U+FFFD; dst needs room for 3 * n bytes. Returns the bytes written. */
static size_t pr__sse_utf8_repair(char *dst, const char *p, size_t n) {
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0, o = 0;
    PR__SSE_WORK(n);
    while (i < n) {
        int k;
        if (s[i] < 0x80) {
            dst[o++] = (char)s[i++];
            continue;
        }
        k = pr__buf_utf8_seq(s + i, n - i);
        if (k > 0) {
            memcpy(dst + o, s + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        } else {
            dst[o++] = (char)0xEF;
            dst[o++] = (char)0xBF;
            dst[o++] = (char)0xBD;
            i += (size_t)-k;
        }
    }
    return o;
}

/* Is the value v[0..n) to be taken as is (raw mode or valid UTF-8)? Values
   inside the chunk use the chunk's cached position of the next non-ASCII
   byte, so ASCII streams are scanned once per chunk, not once per line. */
static int pr__sse_valid(pr_sse_decoder *d, const char *v, size_t n, int in_chunk) {
    if (d->raw) return 1;
    if (in_chunk) {
        size_t off = (size_t)(v - d->src);
        if (!d->hi_ok || d->hi_at < off) {
            d->hi_at = off + pr__sse_ascii_prefix(v, d->src_len - off);
            d->hi_ok = 1;
        }
        if (d->hi_at >= off + n) return 1;
    }
    return pr__sse_utf8_ok(v, n);
}

/* Set b to the (repaired) value v. Nothing changes on PR_ENOMEM. */
static int pr__sse_set_value(pr_sse_decoder *d, pr__sse_buf *b, const char *v, size_t n, int in_chunk) {
    PR__SSE_WORK(n);
    if (pr__sse_valid(d, v, n, in_chunk)) {
        if (pr__sse_reserve(b, n)) return PR_ENOMEM;
        memcpy(b->p, v, n);
        b->len = n;
    } else {
        if (pr__sse_reserve(b, 3 * n)) return PR_ENOMEM;
        b->len = pr__sse_utf8_repair(b->p, v, n);
    }
    b->p[b->len] = 0;
    return PR_OK;
}

/* ---- block state ---- */

static void pr__sse_drop_block(pr_sse_decoder *d) {
    d->data_lines = 0;
    d->data_is_view = 0;
    d->data.len = 0;
    d->data_off = 0;
    d->type.len = 0;
    d->block_id = 0;
    d->block_retry = -1;
}

/* Copy a data view that points into the chunk into the decoder's buffer. */
static int pr__sse_pin(pr_sse_decoder *d) {
    if (!d->data_is_view) return PR_OK;
    if (pr__sse_reserve(&d->data, d->data_view_len)) return PR_ENOMEM;
    PR__SSE_WORK(d->data_view_len);
    memcpy(d->data.p, d->data_view, d->data_view_len);
    d->data.len = d->data_view_len;
    d->data.p[d->data.len] = 0;
    d->data_off = 0;
    d->data_is_view = 0;
    return PR_OK;
}

/* A limit was exceeded: drop the block; next reports PR_ELIMIT until skip. */
static int pr__sse_limit(pr_sse_decoder *d, int midline) {
    pr__sse_drop_block(d);
    d->err = PR_ELIMIT;
    d->skip_midline = midline;
    return PR_ELIMIT;
}

/* R10: the blank line. Returns 1 with *ev filled, 0 for no event. */
static int pr__sse_dispatch(pr_sse_decoder *d, pr_sse_event *ev) {
    int state = PR_SSE_ID_ABSENT;
    if (d->block_id) {
        if (pr__sse_reserve(&d->last, d->idb.len)) return PR_ENOMEM;
        PR__SSE_WORK(d->idb.len);
        memcpy(d->last.p, d->idb.p, d->idb.len);
        d->last.len = d->idb.len;
        d->last.p[d->last.len] = 0;
        d->block_id = 0;
        state = d->last.len ? PR_SSE_ID_SET : PR_SSE_ID_EMPTY;
    }
    if (d->data_lines == 0) {
        d->type.len = 0;
        d->block_retry = -1;
        return 0;
    }
    if (d->type.len) {
        ev->type = d->type.p;
        ev->type_len = d->type.len;
    } else {
        ev->type = "message";
        ev->type_len = 7;
    }
    if (d->data_is_view) {
        ev->data = d->data_view;
        ev->data_len = d->data_view_len;
    } else {
        ev->data = d->data.p + d->data_off;
        ev->data_len = d->data.len - d->data_off;
    }
    ev->last_id = d->last.p ? d->last.p : "";
    ev->last_id_len = d->last.len;
    ev->id_state = state;
    ev->id = state == PR_SSE_ID_ABSENT ? NULL : ev->last_id;
    ev->id_len = state == PR_SSE_ID_ABSENT ? 0 : d->last.len;
    ev->retry_ms = d->block_retry;
    ev->stream_retry_ms = d->retry;
    pr__sse_drop_block(d);
    return 1;
}

/* R6 for one value. from_line: v points into d->line (a carried line). */
static int pr__sse_data(pr_sse_decoder *d, const char *v, size_t n, int from_line) {
    int valid = pr__sse_valid(d, v, n, !from_line);
    size_t cur, w;
    if (d->data_lines == 0) {
        if (valid) {
            if (n > d->max_event) return pr__sse_limit(d, 0);
            if (from_line) { /* adopt the carried line: no copy */
                pr__sse_buf t = d->data;
                d->data_off = (size_t)(v - d->line.p);
                d->data = d->line;
                d->data.len = d->data_off + n;
                d->line = t;
                d->line.len = 0;
            } else {
                d->data_view = v;
                d->data_view_len = n;
                d->data_is_view = 1;
            }
        } else {
            if (pr__sse_reserve(&d->data, 3 * n)) return PR_ENOMEM;
            d->data_off = 0;
            d->data.len = pr__sse_utf8_repair(d->data.p, v, n);
            d->data.p[d->data.len] = 0;
            d->data_is_view = 0;
            if (d->data.len > d->max_event) return pr__sse_limit(d, 0);
        }
        d->data_lines = 1;
        return PR_OK;
    }
    cur = d->data_is_view ? d->data_view_len : d->data.len - d->data_off;
    if (cur + 1 + n > d->max_event) return pr__sse_limit(d, 0);
    if (d->data_is_view) {
        if (pr__sse_reserve(&d->data, cur + 1 + (valid ? n : 3 * n))) return PR_ENOMEM;
        memcpy(d->data.p, d->data_view, cur);
        PR__SSE_WORK(cur);
        d->data.len = cur;
        d->data_off = 0;
        d->data_is_view = 0;
    } else if (pr__sse_reserve(&d->data, d->data.len + 1 + (valid ? n : 3 * n)))
        return PR_ENOMEM;
    d->data.p[d->data.len] = '\n';
    if (valid) {
        memcpy(d->data.p + d->data.len + 1, v, n);
        PR__SSE_WORK(n);
        w = n;
    } else {
        w = pr__sse_utf8_repair(d->data.p + d->data.len + 1, v, n);
        if (cur + 1 + w > d->max_event) return pr__sse_limit(d, 0);
    }
    d->data.len += 1 + w;
    d->data.p[d->data.len] = 0;
    d->data_lines++;
    return PR_OK;
}

/* One complete line (R3-R10). Returns 1 (event in *ev), 0, or a PR_E code;
   on PR_ENOMEM nothing changed. */
static int pr__sse_line(pr_sse_decoder *d, const char *p, size_t n, int from_line, pr_sse_event *ev) {
    const char *colon, *v;
    size_t name, vn;
    PR__SSE_WORK(n + 1); /* the name's scan and the value's parse */
    if (n == 0) return pr__sse_dispatch(d, ev);
    if (p[0] == ':') return 0;
    if (n >= 5 && memcmp(p, "data:", 5) == 0) { /* the hot path */
        v = p + 5;
        vn = n - 5;
        if (vn && *v == ' ') v++, vn--;
        return pr__sse_data(d, v, vn, from_line);
    }
    colon = (const char *)memchr(p, ':', n);
    if (colon) {
        name = (size_t)(colon - p);
        v = colon + 1;
        vn = n - name - 1;
        if (vn && *v == ' ') v++, vn--;
    } else {
        name = n;
        v = p + n;
        vn = 0;
    }
    switch (name) {
    case 4:
        if (memcmp(p, "data", 4) == 0) return pr__sse_data(d, v, vn, from_line);
        return 0;
    case 2:
        if (p[0] != 'i' || p[1] != 'd' || (vn && memchr(v, 0, vn))) return 0;
        if (pr__sse_set_value(d, &d->idb, v, vn, !from_line)) return PR_ENOMEM;
        d->block_id = 1;
        return 0;
    case 5:
        if (memcmp(p, "event", 5) == 0) return pr__sse_set_value(d, &d->type, v, vn, !from_line) ? PR_ENOMEM : 0;
        if (memcmp(p, "retry", 5) == 0 && vn) {
            int64_t r = 0;
            size_t i;
            for (i = 0; i < vn; i++)
                if (v[i] < '0' || v[i] > '9') return 0;
            for (i = 0; i < vn; i++) {
                int dg = v[i] - '0';
                r = r > (INT64_MAX - dg) / 10 ? INT64_MAX : r * 10 + dg;
            }
            d->retry = d->block_retry = r;
        }
        return 0;
    default:
        return 0;
    }
}

/* Offset of the first CR or LF at or after pos in the chunk (src_len: none). */
static size_t pr__sse_eol(pr_sse_decoder *d, size_t pos) {
    const char *s = d->src, *q;
    size_t n = d->src_len - pos;
    if (n < 16) { /* short tails (one byte per feed): no calls */
        size_t i;
        for (i = pos; i < d->src_len; i++)
            if (s[i] == '\n' || s[i] == '\r') break;
        PR__SSE_WORK(i - pos + 1);
        return i;
    }
    if (!d->lf_ok || d->lf_at < pos) {
        q = (const char *)memchr(s + pos, '\n', n);
        d->lf_at = q ? (size_t)(q - s) : d->src_len;
        d->lf_ok = 1;
        PR__SSE_WORK(d->lf_at - pos + 1);
    }
    if (!d->cr_ok || d->cr_at < pos) {
        q = (const char *)memchr(s + pos, '\r', n);
        d->cr_at = q ? (size_t)(q - s) : d->src_len;
        d->cr_ok = 1;
        PR__SSE_WORK(d->cr_at - pos + 1);
    }
    return d->lf_at < d->cr_at ? d->lf_at : d->cr_at;
}

int pr_sse_decoder_next(pr_sse_decoder *d, pr_sse_event *ev) {
    static const unsigned char bom[3] = { 0xEF, 0xBB, 0xBF };
    if (!d || !ev) return PR_EINVAL;
    if (d->err) return d->err;
    for (;;) {
        const char *s = d->src;
        size_t pos = d->src_pos, len = d->src_len, e, next;
        int cr = 0, rc;
        if (pos >= len) {
            if (d->data_is_view && pr__sse_pin(d)) return PR_ENOMEM;
            if (!d->eof) return PR_SSE_DECODER_MORE;
            pr__sse_drop_block(d);
            d->line.len = 0;
            d->cr_pending = 0;
            d->skipping = d->skip_midline = 0;
            return PR_ECLOSED;
        }
        if (d->cr_pending) {
            d->cr_pending = 0;
            if (s[pos] == '\n') {
                d->src_pos = pos + 1;
                continue;
            }
        }
        if (PR__UNLIKELY(d->bom < 3)) { /* R1: one BOM at the stream start */
            while (d->bom < 3 && pos < len) {
                if ((unsigned char)s[pos] != bom[d->bom]) {
                    d->bom = 3; /* the bytes matched so far stay in line as content */
                    break;
                }
                if (pr__sse_append(&d->line, s + pos, 1)) return PR_ENOMEM;
                pos++;
                if (++d->bom == 3) d->line.len = 0;
            }
            d->src_pos = pos;
            continue;
        }
        e = s[pos] == '\n' || s[pos] == '\r' ? pos : pr__sse_eol(d, pos);
        if (e < len) {
            next = e + 1;
            if (s[e] == '\r') {
                if (next == len) cr = 1;
                else if (s[next] == '\n') next++;
            }
        } else
            next = len;
        if (PR__UNLIKELY(d->skipping)) { /* after pr_sse_decoder_skip: find the blank line */
            if (e == pos && !d->skip_midline) d->skipping = 0;
            d->skip_midline = e == len;
            d->src_pos = next;
            d->cr_pending = cr;
            continue;
        }
        if (e == len) { /* a partial line: carry it */
            if (d->line.len + (len - pos) > d->max_line) {
                d->line.len = 0;
                d->src_pos = len;
                return pr__sse_limit(d, 1);
            }
            if (pr__sse_append(&d->line, s + pos, len - pos)) return PR_ENOMEM;
            d->src_pos = len;
            continue;
        }
        if (d->line.len) {
            size_t old = d->line.len;
            if (old + (e - pos) > d->max_line) {
                d->line.len = 0;
                rc = pr__sse_limit(d, 0);
            } else {
                if (pr__sse_append(&d->line, s + pos, e - pos)) return PR_ENOMEM;
                rc = pr__sse_line(d, d->line.p, d->line.len, 1, ev);
                if (rc == PR_ENOMEM) {
                    d->line.len = old;
                    return rc;
                }
                d->line.len = 0;
            }
        } else if (e - pos > d->max_line) {
            rc = pr__sse_limit(d, 0);
        } else {
            rc = pr__sse_line(d, s + pos, e - pos, 0, ev);
            if (rc == PR_ENOMEM) return rc;
        }
        d->src_pos = next;
        d->cr_pending = cr;
        if (rc == 1) return PR_OK;
        if (rc) return rc;
    }
}

int pr_sse_decoder_create(pr_sse_decoder **out, const pr_sse_decoder_opts *opts) {
    pr_sse_decoder *d;
    if (!out) return PR_EINVAL;
    *out = NULL;
    d = (pr_sse_decoder *)pr__calloc(1, sizeof *d);
    if (!d) return PR_ENOMEM;
    d->max_line = opts && opts->max_line_bytes ? opts->max_line_bytes : PR__SSE_DEF_MAX_LINE;
    d->max_event = opts && opts->max_event_bytes ? opts->max_event_bytes : PR__SSE_DEF_MAX_EVENT;
    d->raw = opts && opts->raw_bytes;
    d->block_retry = -1;
    d->retry = -1;
    *out = d;
    return PR_OK;
}

void pr_sse_decoder_destroy(pr_sse_decoder *d) {
    if (!d) return;
    pr__sse_buf_free(&d->line);
    pr__sse_buf_free(&d->data);
    pr__sse_buf_free(&d->type);
    pr__sse_buf_free(&d->idb);
    pr__sse_buf_free(&d->last);
    pr__free(d, sizeof *d);
}

int pr_sse_decoder_feed(pr_sse_decoder *d, const char *bytes, size_t n) {
    if (!d || (!bytes && n)) return PR_EINVAL;
    if (d->eof || d->src_pos < d->src_len) return PR_ESTATE;
    if (d->data_is_view && pr__sse_pin(d)) return PR_ENOMEM;
    d->src = bytes;
    d->src_len = n;
    d->src_pos = 0;
    d->lf_ok = d->cr_ok = d->hi_ok = 0;
    if (n) d->fed_any = 1;
    return PR_OK;
}

int pr_sse_decoder_finish(pr_sse_decoder *d) {
    if (!d) return PR_EINVAL;
    d->eof = 1;
    return PR_OK;
}

int pr_sse_decoder_skip(pr_sse_decoder *d) {
    if (!d) return PR_EINVAL;
    if (d->err != PR_ELIMIT) return PR_ESTATE;
    d->err = 0;
    d->skipping = 1;
    return PR_OK;
}

int pr_sse_decoder_reset(pr_sse_decoder *d) {
    if (!d) return PR_EINVAL;
    pr__sse_drop_block(d);
    d->src = NULL;
    d->src_len = d->src_pos = 0;
    d->lf_ok = d->cr_ok = d->hi_ok = 0;
    d->line.len = 0;
    d->cr_pending = 0;
    d->bom = 0;
    d->eof = d->err = d->skipping = d->skip_midline = d->fed_any = 0;
    return PR_OK;
}

int pr_sse_decoder_set_last_id(pr_sse_decoder *d, const char *id, size_t len) {
    size_t i;
    if (!d || (!id && len)) return PR_EINVAL;
    for (i = 0; i < len; i++)
        if (id[i] == 0 || id[i] == '\r' || id[i] == '\n') return PR_EINVAL;
    if (len && !pr__sse_utf8_ok(id, len)) return PR_EINVAL;
    if (d->fed_any && !d->eof) return PR_ESTATE;
    if (pr__sse_reserve(&d->last, len)) return PR_ENOMEM;
    if (len) memcpy(d->last.p, id, len);
    d->last.len = len;
    d->last.p[len] = 0;
    d->block_id = 0;
    return PR_OK;
}

const char *pr_sse_decoder_last_id(const pr_sse_decoder *d, size_t *len) {
    if (len) *len = d ? d->last.len : 0;
    return d && d->last.p ? d->last.p : "";
}

int64_t pr_sse_decoder_retry_ms(const pr_sse_decoder *d) { return d ? d->retry : -1; }

int pr_sse_event_json(const pr_sse_event *ev, pr_json_doc **out, const pr_json_opts *opts, pr_json_error *err) {
    if (out) *out = NULL;
    if (!ev || !out) {
        if (err) {
            memset(err, 0, sizeof *err);
            err->code = PR_EINVAL;
            snprintf(err->msg, sizeof err->msg, "%s", "NULL event or output");
        }
        return PR_EINVAL;
    }
    if (ev->data_len == 0) {
        if (err) {
            memset(err, 0, sizeof *err);
            err->code = PR_EPROTO;
            err->line = err->column = 1;
            snprintf(err->msg, sizeof err->msg, "%s", "empty event data");
        }
        return PR_EPROTO;
    }
    return pr_json_parse(out, ev->data, ev->data_len, opts, err);
}

/* ==== coro: stackful contexts: hand-written switch per arch, guard-paged pooled stacks ==== >>coro.impl */
#ifndef PRISTINE_STACK_SIZE
#define PRISTINE_STACK_SIZE 65536
#endif

#define PR__CORO_MIN_STACK ((size_t)16 * 1024)
#define PR__CORO_MAX_STACK ((size_t)1024 * 1024 * 1024)
#define PR__CORO_POOL_MAX 64     /* pooled stacks per thread */
#define PR__CORO_TRIM_BATCH 16   /* stacks returned between two looks for cold stacks */
#define PR__CORO_TRIM_NS ((int64_t)1000000000) /* idle this long (at least) = cold */
/* The canary of an unguarded stack: its lowest words must read zero. Zero,
   because a fresh anonymous page reads zero without being backed by memory:
   a non-zero canary would cost every unguarded stack a resident page at its
   bottom. A deep overflow writes return addresses and saved registers there. */
#define PR__CORO_CANARY ((uint64_t)0)
#define PR__CORO_CANARY_WORDS 4  /* canary words at the low end of an unguarded stack */
#define PR__CORO_MEM_MIN 4096    /* usable bytes required in caller-provided memory */

enum { PR__CORO_MAIN = 1, PR__CORO_MMAP = 2, PR__CORO_MEM = 3 };

typedef struct pr__coro pr__coro;

/* One context. For spawned contexts this record sits at the top of the
   context's own stack memory, with the caller's `extra` block below it. */
struct pr__coro {
    void *sp;                 /* saved stack pointer while suspended (asm switch) */
    const uint64_t *canary;   /* checked on every switch away: the top canary word, or &self_canary */
    uint64_t self_canary;     /* always PR__CORO_CANARY; for contexts without a canary */
    char *lo;                 /* lowest usable stack byte (above guard or canary) */
    char *hi;                 /* stack top, exclusive and 16-aligned; the records lie above */
    char *map;                /* start of the mapping (guard page included); NULL unless MMAP */
    size_t map_size;
    size_t size_key;          /* page-rounded requested stack size; the pool's key */
    void (*fn)(void *);
    void *arg;
    pr__coro *pool_next;
    unsigned char kind;       /* PR__CORO_MAIN, _MMAP or _MEM */
    unsigned char guarded;    /* has a PROT_NONE guard page below lo */
    unsigned char pool_trimmed; /* in the pool, with its cold pages given back */
#ifdef PR__BASE_CORO_UCONTEXT
    ucontext_t uc;
#endif
#ifdef PR__ASAN
    void *asan_fake;          /* ASan's fake stack of this context while suspended */
    const void *asan_bottom;  /* stack bounds for ASan; main learns them at the first switch back */
    size_t asan_size;
#endif
#ifdef PR__VALGRIND
    unsigned vg_id;
#endif
};

/* ---- the context switch ---- */
/* PR__CORO_FP: the switch saves and restores the FP control words. (The
   ucontext fallback does whatever libc's swapcontext does.) */
#ifdef PRISTINE_NO_FP_SAVE
#define PR__CORO_FP 0
#define PR__CORO_FPTAG "nofp"
#else
#define PR__CORO_FP 1
#define PR__CORO_FPTAG "fp"
#endif

#ifndef PR__BASE_CORO_UCONTEXT
#define PR__CORO_STR2(x) #x
#define PR__CORO_STR(x) PR__CORO_STR2(x)
/* Symbol names of the assembly routines. They are weak and hidden, so two
   translation units that each carry the implementation (PRISTINE_STATIC)
   link, and nothing leaks out of a shared object. The version and the FP
   mode are part of the name, so copies whose frame layouts differ can never
   be merged by the linker. */
#define PR__CORO_SYM(name) "pr__coro_" name "_v" PR__CORO_STR(PRISTINE_VERSION_MAJOR) "_" \
    PR__CORO_STR(PRISTINE_VERSION_MINOR) "_" PR__CORO_STR(PRISTINE_VERSION_PATCH) "_" PR__CORO_FPTAG
#define PR__CORO_SWAP PR__CORO_SYM("swap")
#define PR__CORO_BOOT PR__CORO_SYM("boot")
/* Each routine starts on a 32-byte boundary: where the linker happens to
   put it must not decide its speed (an x86 switch that straddled one ran
   1.7 times slower on a Xeon, its FP control-word loads included). */
#define PR__CORO_ASM_HEAD(sym, type) \
    ".weak " sym "\n.hidden " sym "\n.type " sym ", " type "\n.p2align 5\n" sym ":\n"

#if defined(__GNUC__) || defined(__clang__)
#define PR__CORO_HIDDEN __attribute__((visibility("hidden")))
#else
#define PR__CORO_HIDDEN
#endif
/* pr__coro_swap(save, to): push the callee-saved registers (and the FP
   control words) on the current stack, store the stack pointer in *save,
   switch to the stack pointer `to`, pop its registers and jump to the
   address on top of it. It ends with a pop and an indirect jump, not a
   return, which would mispredict on every switch. pr__coro_boot is where a
   new context starts: it calls entry(arg), both taken from callee-saved
   registers of the initial frame. */
extern PR__CORO_HIDDEN void pr__coro_swap(void **save, void *to) __asm__(PR__CORO_SWAP);
extern PR__CORO_HIDDEN void pr__coro_boot(void) __asm__(PR__CORO_BOOT);

#if defined(__x86_64__)
/* x86-64 SysV. Frame, from the saved sp up: [MXCSR, x87 CW] r15 r14 r13 r12 rbx rbp, return address. */
#if PR__CORO_FP
#define PR__CORO_FRAME 64
/* Unconditional: on the machines measured, reading MXCSR back to skip an
   unchanged restore cost more than the restore. */
#define PR__CORO_X86_SAVEFP "  subq $8, %rsp\n  stmxcsr (%rsp)\n  fnstcw 4(%rsp)\n"
#define PR__CORO_X86_LOADFP "  ldmxcsr (%rsp)\n  fldcw 4(%rsp)\n  addq $8, %rsp\n"
#else
#define PR__CORO_FRAME 56
#define PR__CORO_X86_SAVEFP ""
#define PR__CORO_X86_LOADFP ""
#endif
__asm__(
    ".pushsection .text\n"
    ".balign 16\n"
    PR__CORO_ASM_HEAD(PR__CORO_SWAP, "@function")
    "  pushq %rbp\n"
    "  pushq %rbx\n"
    "  pushq %r12\n"
    "  pushq %r13\n"
    "  pushq %r14\n"
    "  pushq %r15\n"
    PR__CORO_X86_SAVEFP
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    PR__CORO_X86_LOADFP
    "  popq %r15\n"
    "  popq %r14\n"
    "  popq %r13\n"
    "  popq %r12\n"
    "  popq %rbx\n"
    "  popq %rbp\n"
    "  popq %rcx\n"
    "  jmpq *%rcx\n"
    ".size " PR__CORO_SWAP ", .-" PR__CORO_SWAP "\n"
    ".balign 16\n"
    PR__CORO_ASM_HEAD(PR__CORO_BOOT, "@function")
    "  .cfi_startproc\n"
    "  .cfi_undefined rip\n"
    "  movq %r13, %rdi\n"
    "  callq *%r12\n"
    "  ud2\n"
    "  .cfi_endproc\n"
    ".size " PR__CORO_BOOT ", .-" PR__CORO_BOOT "\n"
    ".popsection\n"
    ".pushsection .note.GNU-stack,\"\",@progbits\n"
    ".popsection\n");

#elif defined(__aarch64__)
/* AAPCS64. Frame, from the saved sp up: x19..x28, x29, x30 (resume address), d8..d15, [FPCR, pad]. */
#if PR__CORO_FP
#define PR__CORO_FRAME 176
#define PR__CORO_A64_SAVEFP "  mrs x9, fpcr\n  str x9, [sp, #160]\n"
#define PR__CORO_A64_LOADFP "  ldr x10, [sp, #160]\n  cmp x9, x10\n  b.eq 1f\n  msr fpcr, x10\n1:\n"
#else
#define PR__CORO_FRAME 160
#define PR__CORO_A64_SAVEFP ""
#define PR__CORO_A64_LOADFP ""
#endif
/* With branch protection, an indirect branch may only land on a BTI pad, which return sites
   are not: use ret there. Otherwise br, which keeps the return-address predictor out of it. */
#if defined(__ARM_FEATURE_BTI_DEFAULT)
#define PR__CORO_A64_JUMP "  ret x30\n"
#else
#define PR__CORO_A64_JUMP "  br x30\n"
#endif
__asm__(
    ".pushsection .text\n"
    ".balign 16\n"
    PR__CORO_ASM_HEAD(PR__CORO_SWAP, "%function")
    "  sub sp, sp, #" PR__CORO_STR(PR__CORO_FRAME) "\n"
    "  stp x19, x20, [sp, #0]\n"
    "  stp x21, x22, [sp, #16]\n"
    "  stp x23, x24, [sp, #32]\n"
    "  stp x25, x26, [sp, #48]\n"
    "  stp x27, x28, [sp, #64]\n"
    "  stp x29, x30, [sp, #80]\n"
    "  stp d8, d9, [sp, #96]\n"
    "  stp d10, d11, [sp, #112]\n"
    "  stp d12, d13, [sp, #128]\n"
    "  stp d14, d15, [sp, #144]\n"
    PR__CORO_A64_SAVEFP
    "  mov x10, sp\n"
    "  str x10, [x0]\n"
    "  mov sp, x1\n"
    PR__CORO_A64_LOADFP
    "  ldp x19, x20, [sp, #0]\n"
    "  ldp x21, x22, [sp, #16]\n"
    "  ldp x23, x24, [sp, #32]\n"
    "  ldp x25, x26, [sp, #48]\n"
    "  ldp x27, x28, [sp, #64]\n"
    "  ldp x29, x30, [sp, #80]\n"
    "  ldp d8, d9, [sp, #96]\n"
    "  ldp d10, d11, [sp, #112]\n"
    "  ldp d12, d13, [sp, #128]\n"
    "  ldp d14, d15, [sp, #144]\n"
    "  add sp, sp, #" PR__CORO_STR(PR__CORO_FRAME) "\n"
    PR__CORO_A64_JUMP
    ".size " PR__CORO_SWAP ", .-" PR__CORO_SWAP "\n"
    ".balign 16\n"
    PR__CORO_ASM_HEAD(PR__CORO_BOOT, "%function")
    "  .cfi_startproc\n"
    "  .cfi_undefined x30\n"
    "  hint #36\n" /* bti j: reached through br */
    "  mov x0, x20\n"
    "  blr x19\n"
    "  brk #0\n"
    "  .cfi_endproc\n"
    ".size " PR__CORO_BOOT ", .-" PR__CORO_BOOT "\n"
    ".popsection\n"
    ".pushsection .note.GNU-stack,\"\",%progbits\n"
    ".popsection\n");

#elif defined(__riscv)
/* RV64 lp64d. Frame, from the saved sp up: s0..s11, ra (resume address), fs0..fs11, [fcsr]. The
   jump goes through t1, which the hardware does not treat as a return (only ra and t0 are). */
#define PR__CORO_FRAME 208
#if PR__CORO_FP
#define PR__CORO_RV_SAVEFP "  frcsr t0\n  sd t0, 200(sp)\n"
#define PR__CORO_RV_LOADFP "  ld t1, 200(sp)\n  beq t0, t1, 1f\n  fscsr t1\n1:\n"
#else
#define PR__CORO_RV_SAVEFP ""
#define PR__CORO_RV_LOADFP ""
#endif
__asm__(
    ".pushsection .text\n"
    ".balign 16\n"
    PR__CORO_ASM_HEAD(PR__CORO_SWAP, "@function")
    "  addi sp, sp, -208\n"
    "  sd s0, 0(sp)\n"
    "  sd s1, 8(sp)\n"
    "  sd s2, 16(sp)\n"
    "  sd s3, 24(sp)\n"
    "  sd s4, 32(sp)\n"
    "  sd s5, 40(sp)\n"
    "  sd s6, 48(sp)\n"
    "  sd s7, 56(sp)\n"
    "  sd s8, 64(sp)\n"
    "  sd s9, 72(sp)\n"
    "  sd s10, 80(sp)\n"
    "  sd s11, 88(sp)\n"
    "  sd ra, 96(sp)\n"
    "  fsd fs0, 104(sp)\n"
    "  fsd fs1, 112(sp)\n"
    "  fsd fs2, 120(sp)\n"
    "  fsd fs3, 128(sp)\n"
    "  fsd fs4, 136(sp)\n"
    "  fsd fs5, 144(sp)\n"
    "  fsd fs6, 152(sp)\n"
    "  fsd fs7, 160(sp)\n"
    "  fsd fs8, 168(sp)\n"
    "  fsd fs9, 176(sp)\n"
    "  fsd fs10, 184(sp)\n"
    "  fsd fs11, 192(sp)\n"
    PR__CORO_RV_SAVEFP
    "  sd sp, 0(a0)\n"
    "  mv sp, a1\n"
    PR__CORO_RV_LOADFP
    "  ld s0, 0(sp)\n"
    "  ld s1, 8(sp)\n"
    "  ld s2, 16(sp)\n"
    "  ld s3, 24(sp)\n"
    "  ld s4, 32(sp)\n"
    "  ld s5, 40(sp)\n"
    "  ld s6, 48(sp)\n"
    "  ld s7, 56(sp)\n"
    "  ld s8, 64(sp)\n"
    "  ld s9, 72(sp)\n"
    "  ld s10, 80(sp)\n"
    "  ld s11, 88(sp)\n"
    "  ld t1, 96(sp)\n"
    "  fld fs0, 104(sp)\n"
    "  fld fs1, 112(sp)\n"
    "  fld fs2, 120(sp)\n"
    "  fld fs3, 128(sp)\n"
    "  fld fs4, 136(sp)\n"
    "  fld fs5, 144(sp)\n"
    "  fld fs6, 152(sp)\n"
    "  fld fs7, 160(sp)\n"
    "  fld fs8, 168(sp)\n"
    "  fld fs9, 176(sp)\n"
    "  fld fs10, 184(sp)\n"
    "  fld fs11, 192(sp)\n"
    "  addi sp, sp, 208\n"
    "  jr t1\n"
    ".size " PR__CORO_SWAP ", .-" PR__CORO_SWAP "\n"
    ".balign 16\n"
    PR__CORO_ASM_HEAD(PR__CORO_BOOT, "@function")
    "  .cfi_startproc\n"
    "  .cfi_undefined ra\n"
    "  mv a0, s2\n"
    "  jalr s1\n"
    "  unimp\n"
    "  .cfi_endproc\n"
    ".size " PR__CORO_BOOT ", .-" PR__CORO_BOOT "\n"
    ".popsection\n"
    ".pushsection .note.GNU-stack,\"\",@progbits\n"
    ".popsection\n");

#elif defined(__arm__)
/* AAPCS hard-float, ARM or Thumb-2 (the code assembles as either; the mode is restated so the
   compiler's own output continues in its mode). Frame, from the saved sp up: d8..d15, [FPSCR or
   pad], r4..r11, resume address. The jump goes through ip, not lr, so it is not predicted as a
   return. */
#define PR__CORO_FRAME 104
#if defined(__thumb__)
#define PR__CORO_ARM_MODE ".thumb\n"
#define PR__CORO_ARM_FUNC ".thumb_func\n"
#else
#define PR__CORO_ARM_MODE ".arm\n"
#define PR__CORO_ARM_FUNC ""
#endif
#if PR__CORO_FP
#define PR__CORO_ARM_SAVEFP "  vmrs r2, fpscr\n"
#define PR__CORO_ARM_LOADFP "  cmp r2, r3\n  beq 1f\n  vmsr fpscr, r3\n1:\n"
#else
#define PR__CORO_ARM_SAVEFP ""
#define PR__CORO_ARM_LOADFP ""
#endif
__asm__(
    ".pushsection .text\n"
    ".syntax unified\n"
    PR__CORO_ARM_MODE
    ".balign 16\n"
    PR__CORO_ARM_FUNC
    PR__CORO_ASM_HEAD(PR__CORO_SWAP, "%function")
    PR__CORO_ARM_SAVEFP
    "  push {r2, r4-r11, lr}\n"
    "  vpush {d8-d15}\n"
    "  mov r3, sp\n"
    "  str r3, [r0]\n"
    "  mov sp, r1\n"
    "  vpop {d8-d15}\n"
    "  pop {r3, r4-r11, ip}\n"
    PR__CORO_ARM_LOADFP
    "  bx ip\n"
    ".size " PR__CORO_SWAP ", .-" PR__CORO_SWAP "\n"
    ".balign 16\n"
    PR__CORO_ARM_FUNC
    PR__CORO_ASM_HEAD(PR__CORO_BOOT, "%function")
    "  .cfi_startproc\n"
    "  .cfi_undefined lr\n"
    "  mov r0, r5\n"
    "  blx r4\n"
    "  udf #0\n"
    "  .cfi_endproc\n"
    ".size " PR__CORO_BOOT ", .-" PR__CORO_BOOT "\n"
    ".popsection\n"
    ".pushsection .note.GNU-stack,\"\",%progbits\n"
    ".popsection\n");
#endif

/* The FP control state a new context starts with: the creator's, without
   its sticky exception flags. */
#if PR__CORO_FP
static uint64_t pr__coro_fp_control(void) {
#if defined(__x86_64__)
    uint32_t mxcsr;
    uint16_t cw;
    __asm__ __volatile__("stmxcsr %0\n\tfnstcw %1" : "=m"(mxcsr), "=m"(cw));
    return (uint64_t)(mxcsr & ~(uint32_t)0x3f) | ((uint64_t)cw << 32);
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    return fpcr;
#elif defined(__riscv)
    uint64_t fcsr;
    __asm__ __volatile__("frcsr %0" : "=r"(fcsr));
    return fcsr & ~(uint64_t)0x1f;
#elif defined(__arm__)
    uint32_t fpscr;
    __asm__ __volatile__("vmrs %0, fpscr" : "=r"(fpscr));
    return fpscr & 0x07ffff00u;
#endif
}
#endif

/* Lay the initial frame below hi (16-aligned) so that the first switch to
   it "returns" into pr__coro_boot, which calls entry(arg). */
static void *pr__coro_make_frame(char *hi, void (*entry)(void *), void *arg) {
    void (*boot)(void) = pr__coro_boot;
    char *f = hi - PR__CORO_FRAME;
    size_t word = sizeof(void *), at_entry, at_arg, at_resume;
    memset(f, 0, PR__CORO_FRAME);
#if defined(__x86_64__)
#if PR__CORO_FP
    { uint64_t fp = pr__coro_fp_control(); memcpy(f, &fp, 8); f += 8; }
#endif
    at_entry = 3 * word;  /* r12 */
    at_arg = 2 * word;    /* r13 */
    at_resume = 6 * word;
#elif defined(__aarch64__)
    at_entry = 0;         /* x19 */
    at_arg = word;        /* x20 */
    at_resume = 11 * word;/* x30 */
#if PR__CORO_FP
    { uint64_t fp = pr__coro_fp_control(); memcpy(f + 160, &fp, 8); }
#endif
#elif defined(__riscv)
    at_entry = word;      /* s1 */
    at_arg = 2 * word;    /* s2 */
    at_resume = 12 * word;/* ra */
#if PR__CORO_FP
    { uint64_t fp = pr__coro_fp_control(); memcpy(f + 200, &fp, 8); }
#endif
#elif defined(__arm__)
#if PR__CORO_FP
    { uint32_t fp = (uint32_t)pr__coro_fp_control(); memcpy(f + 64, &fp, 4); }
#endif
    at_entry = 64 + word; /* r4 */
    at_arg = 64 + 2 * word; /* r5 */
    at_resume = 64 + 9 * word; /* ip */
#endif
    memcpy(f + at_entry, &entry, sizeof entry);
    memcpy(f + at_arg, &arg, sizeof arg);
    memcpy(f + at_resume, &boot, sizeof boot);
    return hi - PR__CORO_FRAME;
}
#endif /* !PR__BASE_CORO_UCONTEXT */

/* ---- sanitizer hooks around a switch ---- */
#ifdef PR__ASAN
static PR__THREAD pr__coro *pr__coro_asan_prev; /* the context that switched to the running one */
#endif

/* Call right before switching from `from` to `to`; pass dying = 1 when
   `from` will never run again (ASan then frees its fake stack). */
static inline void pr__coro_asan_before(pr__coro *from, pr__coro *to, int dying) {
#ifdef PR__ASAN
    pr__coro_asan_prev = from;
    __sanitizer_start_switch_fiber(dying ? NULL : &from->asan_fake, to->asan_bottom, to->asan_size);
#else
    PR__UNUSED(from); PR__UNUSED(to); PR__UNUSED(dying);
#endif
}

/* Call first thing when `self` runs again (or for the first time). It also
   teaches ASan's bounds of the previous stack to its record, which is how a
   main context learns the bounds of the thread's own stack. */
static inline void pr__coro_asan_after(pr__coro *self, int first) {
#ifdef PR__ASAN
    pr__coro *prev = pr__coro_asan_prev;
    if (prev)
        __sanitizer_finish_switch_fiber(first ? NULL : self->asan_fake, &prev->asan_bottom, &prev->asan_size);
    else
        __sanitizer_finish_switch_fiber(first ? NULL : self->asan_fake, NULL, NULL);
#else
    PR__UNUSED(self); PR__UNUSED(first);
#endif
}

/* Print even when no logger is installed: these end the process. */
static void pr__coro_fatal(const char *msg) {
    PR__LOG(PR_LEVEL_ERROR, "coro", "%s", msg);
    if (!pr__logger.fn) fprintf(stderr, "pristine error coro: %s\n", msg);
    abort();
}

static PR__NOINLINE void pr__coro_canary_fail(const pr__coro *c) {
    PR__UNUSED(c);
    pr__coro_fatal("stack overflow: the canary of an unguarded coroutine stack was overwritten; aborting");
}

static void pr__coro_entry(void *p) {
    pr__coro *c = (pr__coro *)p;
    pr__coro_asan_after(c, 1);
    c->fn(c->arg);
    pr__coro_fatal("a coroutine's entry function returned; it must switch away for the last time instead");
}

#ifdef PR__BASE_CORO_UCONTEXT
static void pr__coro_uc_entry(unsigned hi, unsigned lo) {
    uintptr_t p = ((uintptr_t)hi << 16 << 16) | (uintptr_t)lo;
    pr__coro_entry((void *)p);
}

/* getcontext returns twice: keep it out of callers with live locals. */
static PR__NOINLINE int pr__coro_uc_prepare(pr__coro *c) {
    pr__coro *volatile vc = c;
    uintptr_t p;
    if (getcontext(&vc->uc) != 0) return -1;
    p = (uintptr_t)vc;
    vc->uc.uc_stack.ss_sp = vc->lo;
    vc->uc.uc_stack.ss_size = (size_t)(vc->hi - vc->lo);
    vc->uc.uc_link = NULL;
    makecontext(&vc->uc, (void (*)(void))pr__coro_uc_entry, 2, (unsigned)(p >> 16 >> 16), (unsigned)p);
    return 0;
}
#endif

/* Check from's canary, tell ASan, save the current context into *from and
   resume *to; returns when something switches back to from. exiting: from
   will never be resumed (ASan may release its fake stack). */
static inline void pr__coro_jump(pr__coro *from, pr__coro *to, int exiting) {
    if (PR__UNLIKELY(*from->canary != PR__CORO_CANARY)) pr__coro_canary_fail(from);
    pr__coro_asan_before(from, to, exiting);
#ifdef PR__BASE_CORO_UCONTEXT
    if (swapcontext(&from->uc, &to->uc) != 0) pr__coro_fatal("swapcontext failed");
#else
    pr__coro_swap(&from->sp, to->sp);
#endif
}

/* Save the current context into *from and resume *to. */
static inline void pr__coro_switch(pr__coro *from, pr__coro *to) {
    pr__coro_jump(from, to, 0);
    pr__coro_asan_after(from, 0);
}

/* The last switch away from a context that will never be resumed (it will
   be destroyed by someone else). Same as pr__coro_switch, except that ASan
   can release the context's fake stack. */
static PR__MAYBE_UNUSED void pr__coro_exit(pr__coro *from, pr__coro *to) {
    pr__coro_jump(from, to, 1);
    pr__coro_fatal("a finished coroutine was resumed");
}

/* A record for the running context (the thread's own stack, normally). */
static PR__MAYBE_UNUSED void pr__coro_init_main(pr__coro *c) {
    memset(c, 0, sizeof *c);
    c->kind = PR__CORO_MAIN;
    c->self_canary = PR__CORO_CANARY;
    c->canary = &c->self_canary;
}

/* ---- stacks ---- */
static size_t pr__coro_default_size;  /* 0 = PRISTINE_STACK_SIZE; accessed atomically */
static size_t pr__coro_stack_live;         /* stack mappings alive in the process; atomic */
static int pr__coro_stack_fallback_logged; /* the unguarded fallback has been logged; atomic */
#ifdef PRISTINE_TESTING
static int pr__coro_test_fail_guard;  /* nonzero: the guarded path acts as if the kernel refused */
static size_t pr__coro_test_trims;    /* trim passes run (all threads) */
static size_t pr__coro_test_trimmed;  /* stacks trimmed (all threads) */
static int64_t pr__coro_test_trim_ns = -1; /* >= 0: replaces PR__CORO_TRIM_NS */
#endif

typedef struct pr__coro_stack_pool {
    pr__coro *head;  /* LIFO of idle stacks; the records at their tops link them */
    int count;
    int low;         /* the smallest count since `since` */
    int returned;    /* stacks returned since the last look */
    int64_t since;   /* start of the current idleness interval (pr__time_now_ns) */
} pr__coro_stack_pool;

static PR__THREAD pr__coro_stack_pool pr__coro_stack_pool_tls;

static size_t pr__coro_stack_page(void) {
    static size_t cached;
    size_t p = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (!p) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        __atomic_store_n(&cached, p, __ATOMIC_RELAXED);
    }
    return p;
}

static size_t pr__coro_stack_round(size_t n) {
    size_t page = pr__coro_stack_page();
    return (n + page - 1) & ~(page - 1);
}

int pr_coro_set_stack_size(size_t bytes) {
    if (bytes < PR__CORO_MIN_STACK || bytes > PR__CORO_MAX_STACK) return PR_EINVAL;
    __atomic_store_n(&pr__coro_default_size, pr__coro_stack_round(bytes), __ATOMIC_RELAXED);
    return PR_OK;
}

size_t pr_coro_stack_size(void) {
    size_t n = __atomic_load_n(&pr__coro_default_size, __ATOMIC_RELAXED);
    if (!n) {
        n = (size_t)PRISTINE_STACK_SIZE;
        if (n < PR__CORO_MIN_STACK) n = PR__CORO_MIN_STACK;
        n = pr__coro_stack_round(n);
    }
    return n;
}

#if defined(MAP_STACK)
#define PR__CORO_STACK_MAP_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK)
#else
#define PR__CORO_STACK_MAP_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS)
#endif

/* Memory-map areas (VMAs) our stacks hold, counted high: a guarded stack
   is two (guard + stack), an unguarded one at most one (neighbours merge). */
static size_t pr__coro_stack_vmas;

/* The kernel's cap on a process's memory-map areas (vm.max_map_count on
   Linux); 0 when unknown. Read once. */
static size_t pr__coro_stack_vma_limit(void) {
    static size_t cached; /* 0 = not read yet; SIZE_MAX = unknown */
    size_t v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (!v) {
        v = SIZE_MAX;
#if defined(__linux__)
        {
            char buf[32];
            int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                ssize_t n = read(fd, buf, sizeof buf - 1);
                close(fd);
                if (n > 0) {
                    unsigned long long x = 0;
                    ssize_t i;
                    for (i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) x = x * 10 + (unsigned)(buf[i] - '0');
                    if (i > 0 && x > 0 && x < SIZE_MAX) v = (size_t)x;
                }
            }
        }
#endif
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v == SIZE_MAX ? 0 : v;
}

static void pr__coro_stack_log_fallback(const char *why, int err) {
    if (!__atomic_exchange_n(&pr__coro_stack_fallback_logged, 1, __ATOMIC_RELAXED))
        PR__LOG(PR_LEVEL_WARN, "coro",
                "%s%s%s: new stacks get a canary instead of a guard page (raise vm.max_map_count for more guarded stacks)",
                why, err ? ": " : "", err ? strerror(err) : "");
}

/* Map size bytes of stack, with a guard page below when the kernel agrees.
   Returns the mapping (guard included) or NULL; *map_size and *guarded say
   what was made.

   The guard costs a second memory-map area, and the kernel caps those
   (vm.max_map_count, 65530 by default: about 32k guarded stacks). Guards
   stop when our stacks would take more than 7/8 of the cap, which leaves
   the rest of the process (malloc, threads, libraries) room, and whenever
   the kernel refuses one. Unguarded stacks mapped one after another merge
   into one area, so their number is bounded by memory, not by the cap. */
static char *pr__coro_stack_map(size_t size, size_t *map_size, int *guarded) {
    size_t page = pr__coro_stack_page(), limit = pr__coro_stack_vma_limit();
    void *p;
    int err = 0;
    const char *why = "guard page refused";
#ifdef PRISTINE_TESTING
    if (pr__coro_test_fail_guard) err = ENOMEM;
#endif
    if (!err && limit && __atomic_load_n(&pr__coro_stack_vmas, __ATOMIC_RELAXED) + 2 > limit - limit / 8) {
        why = "coroutine stacks hold 7/8 of vm.max_map_count";
        err = -1;
    }
    if (!err) {
        p = mmap(NULL, size + page, PROT_READ | PROT_WRITE, PR__CORO_STACK_MAP_FLAGS, -1, 0);
        if (p == MAP_FAILED) {
            err = errno;
        } else if (mprotect(p, page, PROT_NONE) != 0) {
            /* Splitting off the guard was refused: keep the mapping whole. */
            pr__coro_stack_log_fallback(why, errno);
            __atomic_fetch_add(&pr__coro_stack_live, 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&pr__coro_stack_vmas, 1, __ATOMIC_RELAXED);
            *map_size = size + page;
            *guarded = 0;
            return (char *)p;
        } else {
            __atomic_fetch_add(&pr__coro_stack_live, 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&pr__coro_stack_vmas, 2, __ATOMIC_RELAXED);
            *map_size = size + page;
            *guarded = 1;
            return (char *)p;
        }
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, PR__CORO_STACK_MAP_FLAGS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    pr__coro_stack_log_fallback(why, err > 0 ? err : 0);
    __atomic_fetch_add(&pr__coro_stack_live, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&pr__coro_stack_vmas, 1, __ATOMIC_RELAXED);
    *map_size = size;
    *guarded = 0;
    return (char *)p;
}

static void pr__coro_stack_unmap(pr__coro *c) {
    char *map = c->map; /* c lives in the mapping: read it all first */
    size_t n = c->map_size, vmas = c->guarded ? 2 : 1;
#ifdef PR__ASAN
    /* Frames of a task that never returned leave poison behind; the range
       may come back from mmap as anything. */
    __asan_unpoison_memory_region(c->lo, (size_t)(c->hi - c->lo));
#endif
    if (munmap(map, n) != 0) {
        /* Only when splitting a merged mapping would exceed the map
           limit. Give the memory back at least and keep the range. */
        PR__LOG(PR_LEVEL_ERROR, "coro", "munmap of a stack failed (%s); leaking its address range", strerror(errno));
        madvise(map, n, MADV_DONTNEED);
        return;
    }
    __atomic_fetch_sub(&pr__coro_stack_live, 1, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&pr__coro_stack_vmas, vmas, __ATOMIC_RELAXED);
}

/* Each time PR__CORO_TRIM_BATCH stacks have come back to the pool, look for
   cold stacks. The bottom `low` stacks of the LIFO have stayed in the pool
   since `since`; once that interval is PR__CORO_TRIM_NS long, they are cold
   and give their pages below the one holding the records back to the
   kernel (a trim pass), and a new interval starts. Stacks the pool hands out
   again, as under steady task churn, are not trimmed, so reusing them costs
   no page faults. An idle pool is never trimmed: it holds at most
   PR__CORO_POOL_MAX stacks. */
static void pr__coro_stack_trim(pr__coro_stack_pool *pool) {
    size_t page = pr__coro_stack_page();
    int64_t now = pr__time_now_ns(), wait = PR__CORO_TRIM_NS;
    int skip;
    pr__coro *c;
    pool->returned = 0;
#ifdef PRISTINE_TESTING
    if (pr__coro_test_trim_ns >= 0) wait = pr__coro_test_trim_ns;
#endif
    if (now - pool->since < wait) return;
    skip = pool->count - pool->low;
    for (c = pool->head; c; c = c->pool_next) {
        uintptr_t keep;
        char *base;
        if (skip > 0) {
            skip--;
            continue;
        }
        if (c->pool_trimmed) continue;
        c->pool_trimmed = 1;
        keep = (uintptr_t)c->hi & ~(uintptr_t)(page - 1);
        base = c->guarded ? c->map + page : c->map;
        if ((uintptr_t)base < keep)
            madvise(base, (size_t)(keep - (uintptr_t)base), MADV_DONTNEED);
#ifdef PRISTINE_TESTING
        __atomic_fetch_add(&pr__coro_test_trimmed, 1, __ATOMIC_RELAXED);
#endif
    }
    pool->low = pool->count;
    pool->since = now;
#ifdef PRISTINE_TESTING
    __atomic_fetch_add(&pr__coro_test_trims, 1, __ATOMIC_RELAXED);
#endif
}

/* Give back to the kernel the whole pages of c's stack below the caller's
   frame (less 1 KiB, room for this call and madvise's): a deep call that
   has returned (a TLS handshake) would otherwise keep them resident for the
   rest of a long-lived task. Those bytes are dead; a page read later reads
   zero (so does the canary). One madvise; nothing unless c is an mmap'd
   stack the caller runs on. */
static PR__NOINLINE PR__MAYBE_UNUSED void pr__coro_shed(pr__coro *c) {
    char here;
    size_t page = pr__coro_stack_page();
    uintptr_t sp = (uintptr_t)&here, base, end;
    if (!c || c->kind != PR__CORO_MMAP || sp <= (uintptr_t)c->lo + 2048 || sp >= (uintptr_t)c->hi) return;
    base = c->guarded ? (uintptr_t)c->map + page : (uintptr_t)c->map;
    end = (sp - 1024) & ~(uintptr_t)(page - 1);
    if (base < end) madvise((void *)base, (size_t)(end - base), MADV_DONTNEED);
}

static PR__MAYBE_UNUSED void pr__coro_pool_drain(void) {
    pr__coro_stack_pool *pool = &pr__coro_stack_pool_tls;
    while (pool->head) {
        pr__coro *c = pool->head;
        pool->head = c->pool_next;
        pr__coro_stack_unmap(c);
    }
    pool->count = 0;
    pool->low = 0;
    pool->returned = 0;
}

/* Make the canary words zero, writing only if they are not (a write would
   make a fresh page resident). */
static void pr__coro_stack_write_canary(char *lo) {
    uint64_t w[PR__CORO_CANARY_WORDS], any = 0;
    int i;
    memcpy(w, lo, sizeof w);
    for (i = 0; i < PR__CORO_CANARY_WORDS; i++) any |= w[i] ^ PR__CORO_CANARY;
    if (any) {
        for (i = 0; i < PR__CORO_CANARY_WORDS; i++) w[i] = PR__CORO_CANARY;
        memcpy(lo, w, sizeof w);
    }
}

static int pr__coro_stack_canary_intact(const pr__coro *c) {
    const uint64_t *w = c->canary - (PR__CORO_CANARY_WORDS - 1);
    int i;
    if (c->canary == &c->self_canary) return 1;
    for (i = 0; i < PR__CORO_CANARY_WORDS; i++)
        if (w[i] != PR__CORO_CANARY) return 0;
    return 1;
}

#define PR__CORO_ALIGN16(n) (((n) + 15) & ~(size_t)15)

#ifdef PR__VALGRIND
/* Whether the process runs under Valgrind, asked once: the client requests
   cost a few ns on every spawn otherwise. */
static int pr__coro_on_valgrind(void) {
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        v = RUNNING_ON_VALGRIND ? 1 : 0;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}
#endif

/* Zero n bytes at p (both multiples of 16). Written as a loop the compiler
   may not turn back into memset: with the size known it inlines memset as
   `rep stos`, whose start-up cost dominated task creation. */
static void pr__coro_zero16(void *p, size_t n) {
    char *q = (char *)p;
    const uint64_t z[2] = { 0, 0 };
    for (; n; n -= 16, q += 16) {
        memcpy(q, z, 16);
#if defined(__GNUC__) || defined(__clang__)
        __asm__ __volatile__("" : : "r"(q) : "memory");
#endif
    }
}

static void pr__coro_destroy(pr__coro *c);

static PR__MAYBE_UNUSED int pr__coro_create(pr__coro **out, void **extra_out, size_t extra, size_t stack_size, void *mem,
                           size_t mem_size, void (*fn)(void *), void *arg) {
    size_t rec = PR__CORO_ALIGN16(sizeof(pr__coro)), ext, hdr;
    char *top, *base, *map = NULL;
    size_t map_size = 0, key = 0;
    int kind, guarded = 0, fresh = 0;
    pr__coro *c = NULL;

    PR__ASSERT(out && fn);
    *out = NULL;
    if (extra_out) *extra_out = NULL;
    if (extra > PR__CORO_MAX_STACK) return PR_EINVAL;
    ext = PR__CORO_ALIGN16(extra);
    hdr = rec + ext;

    if (mem) {
        uintptr_t b = ((uintptr_t)mem + 15) & ~(uintptr_t)15, t;
        if (mem_size < PR__CORO_MIN_STACK || mem_size > UINTPTR_MAX - (uintptr_t)mem) return PR_EINVAL;
        t = ((uintptr_t)mem + mem_size) & ~(uintptr_t)15;
        if (t <= b || t - b < hdr + 8 * PR__CORO_CANARY_WORDS + PR__CORO_MEM_MIN) return PR_EINVAL;
        kind = PR__CORO_MEM;
        base = (char *)b;
        top = (char *)t;
    } else {
        pr__coro_stack_pool *pool = &pr__coro_stack_pool_tls;
        size_t def = pr_coro_stack_size();
        if (stack_size && (stack_size < PR__CORO_MIN_STACK || stack_size > PR__CORO_MAX_STACK)) return PR_EINVAL;
        key = stack_size ? pr__coro_stack_round(stack_size) : def;
        if (hdr + PR__CORO_MEM_MIN > key / 2 + key / 4) return PR_EINVAL;
        kind = PR__CORO_MMAP;
        if (key == def) {
            /* Stacks of an older default size are of no use any more. */
            while (pool->head && pool->head->size_key != key) {
                pr__coro *old = pool->head;
                pool->head = old->pool_next;
                pool->count--;
                pr__coro_stack_unmap(old);
            }
            if (pool->head) {
                c = pool->head;
                pool->head = c->pool_next;
                pool->count--;
                map = c->map;
                map_size = c->map_size;
                guarded = c->guarded;
            }
            if (pool->count < pool->low) pool->low = pool->count;
        }
        if (!map) {
            map = pr__coro_stack_map(key, &map_size, &guarded);
            if (!map) return PR_ENOMEM;
            fresh = 1;
        }
        top = map + map_size;
        base = guarded ? map + pr__coro_stack_page() : map;
    }

    c = (pr__coro *)(void *)(top - rec);
    pr__coro_zero16(top - hdr, hdr);
    c->kind = (unsigned char)kind;
    c->guarded = (unsigned char)guarded;
    c->map = map;
    c->map_size = map_size;
    c->size_key = key;
    c->fn = fn;
    c->arg = arg;
    c->self_canary = PR__CORO_CANARY;
    c->hi = top - hdr;
    if (guarded) {
        c->lo = base;
        c->canary = &c->self_canary;
    } else {
        if (!fresh) pr__coro_stack_write_canary(base); /* a fresh mapping reads zero already */
        c->lo = base + 8 * PR__CORO_CANARY_WORDS;
        c->canary = (const uint64_t *)(void *)(base + 8 * (PR__CORO_CANARY_WORDS - 1));
    }
#ifdef PR__ASAN
    /* A stack's earlier tenant died without unwinding: clear its poison. */
    __asan_unpoison_memory_region(c->lo, (size_t)(c->hi - c->lo));
    c->asan_bottom = c->lo;
    c->asan_size = (size_t)(c->hi - c->lo);
#endif
#ifdef PR__VALGRIND
    if (pr__coro_on_valgrind()) c->vg_id = VALGRIND_STACK_REGISTER(c->lo, c->hi);
#endif
#ifdef PR__BASE_CORO_UCONTEXT
    if (pr__coro_uc_prepare(c) != 0) {
        pr__coro_destroy(c);
        return PR_ENOMEM;
    }
#else
    c->sp = pr__coro_make_frame(c->hi, pr__coro_entry, c);
#endif
    *out = c;
    if (extra_out) *extra_out = ext ? (void *)(top - hdr) : NULL;
    return PR_OK;
}

static PR__MAYBE_UNUSED void pr__coro_destroy(pr__coro *c) {
    pr__coro_stack_pool *pool = &pr__coro_stack_pool_tls;
    if (!c) return;
    PR__ASSERT(c->kind == PR__CORO_MMAP || c->kind == PR__CORO_MEM);
    if (!pr__coro_stack_canary_intact(c)) pr__coro_canary_fail(c);
#ifdef PR__VALGRIND
    if (pr__coro_on_valgrind()) VALGRIND_STACK_DEREGISTER(c->vg_id);
#endif
    if (c->kind != PR__CORO_MMAP) return;
    if (c->size_key == pr_coro_stack_size() && pool->count < PR__CORO_POOL_MAX) {
        c->pool_next = pool->head;
        c->pool_trimmed = 0;
        pool->head = c;
        pool->count++;
        if (++pool->returned >= PR__CORO_TRIM_BATCH) pr__coro_stack_trim(pool);
        return;
    }
    pr__coro_stack_unmap(c);
}

#ifdef PRISTINE_TESTING
static PR__MAYBE_UNUSED size_t pr__coro_test_live_stacks(void) {
    return __atomic_load_n(&pr__coro_stack_live, __ATOMIC_RELAXED);
}

/* Stacks in this thread's pool. */
static PR__MAYBE_UNUSED int pr__coro_test_pool_count(void) { return pr__coro_stack_pool_tls.count; }
#endif

/* ==== sched: tasks, run queue, timers, fd readiness, sleep, groups, channels, cross-thread post, signals ==== >>sched.impl */
#if defined(PRISTINE_POLL_EPOLL)
#define PR__SCHED_POLLER_EPOLL 1
#elif defined(PRISTINE_POLL_KQUEUE)
#define PR__SCHED_POLLER_KQUEUE 1
#elif defined(PRISTINE_POLL_POLL)
#define PR__SCHED_POLLER_POLL 1
#elif defined(__linux__)
#define PR__SCHED_POLLER_EPOLL 1
#elif defined(PR__HAVE_KQUEUE)
#define PR__SCHED_POLLER_KQUEUE 1
#else
#define PR__SCHED_POLLER_POLL 1
#endif
#if defined(PR__SCHED_POLLER_EPOLL) && !defined(__linux__)
#error "pristine.h: PRISTINE_POLL_EPOLL needs Linux"
#endif
#if defined(PR__SCHED_POLLER_KQUEUE) && !defined(PR__HAVE_KQUEUE)
#error "pristine.h: PRISTINE_POLL_KQUEUE needs a BSD or macOS"
#endif

enum { PR__SCHED_T_READY = 1, PR__SCHED_T_RUNNING, PR__SCHED_T_PARKED, PR__SCHED_T_DONE };
enum { PR__SCHED_TF_CANCELED = 1, PR__SCHED_TF_DETACHED = 2, PR__SCHED_TF_MAIN = 4 };

/* The timer heap: a binary min-heap of nodes by key (a wake-up time), 1-based.
   A node lives inside what it times (PR__CONTAINER_OF gets that back): the
   scheduler's parked tasks, and rfuture's waiting futures use it too. Room is
   reserved ahead (pr__sched_theap_reserve), so a push never allocates. */
typedef struct pr__sched_theap_node {
    int64_t key;
    size_t idx;                 /* 1-based position; 0 = not in the heap */
} pr__sched_theap_node;

typedef struct pr__sched_theap {
    pr__sched_theap_node **v;         /* v[1..len] */
    size_t len, cap;
} pr__sched_theap;

struct pr_task {
    pr__coro *coro;
    struct pr_sched *sched;
    pr_task_fn fn;
    void *user_data;
    pr_task *next_ready;        /* run queue link */
    pr_task *prev, *next;       /* the scheduler's list of spawned tasks */
    pr_task *joiner;            /* the task blocked in pr_join on this one */
    pr_group *group;            /* owning group, or NULL */
    pr_task *gprev, *gnext;     /* links in the group */
    pr__sched_theap_node timer;       /* key: the wake-up time while parked */
    int result;
    int wake;                   /* why the task was woken: PR_OK, PR_ETIMEDOUT, ... */
    unsigned io_run;            /* fd reads and writes done since it last gave up the CPU */
    unsigned char state, flags;
};

/* A per-fd record: the tasks waiting for each kind, whether the fd is
   registered with the poller, and whether it is known to be drained (rd_idle:
   a read came back short or EAGAIN) or full (wr_idle: EAGAIN) since the
   poller last reported it. Zero means "unknown: try the syscall". */
typedef struct pr__sched_fdslot {
    pr_task *rd, *wr;
    unsigned char registered, rd_idle, wr_idle, notsock;
    unsigned char stream;         /* 0 unknown, 1 byte stream (a short read means drained), 2 not */
    unsigned char rd_hup;         /* the poller saw the peer close: a short read is not "drained" */
} pr__sched_fdslot;

typedef struct pr__sched_post {
    struct pr__sched_post *next;
    void (*fn)(void *);
    void *user_data;
} pr__sched_post;

struct pr_sched {
    pr_task *cur;                 /* the running task */
    pr_task *runq_head, *runq_tail;
    pr_task *tasks;               /* every spawned task not yet freed */
    size_t ntasks;
    pr_task *zombie;              /* a finished detached task, freed after the next switch */
    pr_task *destroyer;           /* main, waiting in pr_sched_destroy for tasks to end */
    pr__sched_theap timers;             /* parked tasks with a deadline */
    pr__sched_fdslot *fds;
    size_t nfds;
    size_t io_waiters;            /* tasks parked in pr_fd_wait */
    int in_post;                  /* running posted functions: no blocking, no cancel state */
    int host;                     /* pr_sched_fd was called: a host loop watches the poller fd */
    int stepping;                 /* main is inside pr_sched_step */
    unsigned polls_due;           /* run-queue picks left before a non-blocking poll */
    unsigned choose_rot;          /* rotation for pr_chan_choose fairness */
    int pollfd;                   /* epoll or kqueue fd; -1 for poll */
#ifdef PR__SCHED_POLLER_POLL
    struct pollfd *pfds;          /* poll's array: one slot per fd-table entry plus the wake fd */
    size_t npfds;
#endif
    int wake_rd, wake_wr;         /* cross-thread wake: eventfd (rd == wr) or pipe; -1 until needed */
    int wake_pending;             /* atomic: a wake byte is in flight */
    pthread_mutex_t post_mu;
    pr__sched_post *posts;
    pr__coro main_coro;
    pr_task main_task;
};

static PR__THREAD pr_sched *pr__sched_tls;

#ifdef PRISTINE_TESTING
/* The sweep hook (tests/test_sweep.c): while root is set and running, every
   suspension of root or of a task spawned from it (tagged, transitively)
   counts in suspends, and the cancel_at-th cancels root (at pr_now() = at). */
#define PR__SCHED_TF_SWEEP 8
static struct { pr_task *root; long suspends, cancel_at; int64_t at; } pr__sched_test_sweep;
#endif

/* ---- the timer heap ---- */
static void pr__sched_theap_set(pr__sched_theap *h, size_t i, pr__sched_theap_node *n) {
    h->v[i] = n;
    n->idx = i;
}

static void pr__sched_theap_up(pr__sched_theap *h, size_t i) {
    pr__sched_theap_node *n = h->v[i];
    while (i > 1 && h->v[i / 2]->key > n->key) {
        pr__sched_theap_set(h, i, h->v[i / 2]);
        i /= 2;
    }
    pr__sched_theap_set(h, i, n);
}

static void pr__sched_theap_down(pr__sched_theap *h, size_t i) {
    pr__sched_theap_node *n = h->v[i];
    for (;;) {
        size_t c = 2 * i;
        if (c > h->len) break;
        if (c < h->len && h->v[c + 1]->key < h->v[c]->key) c++;
        if (h->v[c]->key >= n->key) break;
        pr__sched_theap_set(h, i, h->v[c]);
        i = c;
    }
    pr__sched_theap_set(h, i, n);
}

/* Room for n nodes. */
static int pr__sched_theap_reserve(pr__sched_theap *h, size_t n) {
    size_t cap;
    pr__sched_theap_node **v;
    if (n + 1 <= h->cap) return PR_OK;
    cap = h->cap ? h->cap * 2 : 64;
    while (cap < n + 1) cap *= 2;
    v = (pr__sched_theap_node **)pr__realloc(h->v, h->cap * sizeof *v, cap * sizeof *v);
    if (!v) return PR_ENOMEM;
    h->v = v;
    h->cap = cap;
    return PR_OK;
}

static void pr__sched_theap_free(pr__sched_theap *h) {
    pr__free(h->v, h->cap * sizeof *h->v);
    memset(h, 0, sizeof *h);
}

/* Add n with key (room was reserved). */
static void pr__sched_theap_push(pr__sched_theap *h, pr__sched_theap_node *n, int64_t key) {
    PR__ASSERT(h->len + 1 < h->cap);
    n->key = key;
    h->v[++h->len] = n;
    pr__sched_theap_up(h, h->len);
}

/* Take n out; a node that is not in the heap is left alone. */
static void pr__sched_theap_remove(pr__sched_theap *h, pr__sched_theap_node *n) {
    size_t i = n->idx;
    pr__sched_theap_node *last;
    if (!i) return;
    last = h->v[h->len--];
    n->idx = 0;
    if (i > h->len) return;
    pr__sched_theap_set(h, i, last);
    pr__sched_theap_up(h, i);
    pr__sched_theap_down(h, last->idx);
}

/* The node with the smallest key, or NULL. */
static pr__sched_theap_node *pr__sched_theap_top(const pr__sched_theap *h) { return h->len ? h->v[1] : NULL; }

#define PR__SCHED_TASK_OF_TIMER(n) PR__CONTAINER_OF(n, pr_task, timer)

/* ---- run queue, wake and the switch ---- */
/* Make the wake fd readable (once until it is drained). */
static void pr__sched_wake_write(pr_sched *s) {
    if (!__atomic_exchange_n(&s->wake_pending, 1, __ATOMIC_SEQ_CST)) {
        uint64_t one = 1;
        ssize_t w = write(s->wake_wr, &one, s->wake_wr == s->wake_rd ? sizeof one : 1);
        PR__UNUSED(w); /* a full pipe already means "wake up" */
    }
}

static void pr__sched_runq_push(pr_sched *s, pr_task *t) {
    t->next_ready = NULL;
    if (s->runq_tail) s->runq_tail->next_ready = t;
    else s->runq_head = t;
    s->runq_tail = t;
    /* Host code made a task ready between steps: the host's fd must say so. */
    if (PR__UNLIKELY(s->host) && s->cur == &s->main_task && !s->stepping) pr__sched_wake_write(s);
}

/* Make a parked task runnable; `why` is what its pr__sched_park returns. */
static void pr__sched_wake(pr_task *t, int why) {
    if (t->state != PR__SCHED_T_PARKED) return;
    t->wake = why;
    t->state = PR__SCHED_T_READY;
    pr__sched_runq_push(t->sched, t);
}

/* The running task is cancelled (posted functions run outside any task's
   cancel state, whichever task happens to be in the poller). */
static int pr__sched_canceled(pr_sched *s) { return (s->cur->flags & PR__SCHED_TF_CANCELED) && !s->in_post; }

static void pr__sched_poll(pr_sched *s, int block);

static void pr__sched_sig_forget(pr_sched *s, pr_task *t);

static void pr__sched_task_free(pr_sched *s, pr_task *t) {
    pr__sched_sig_forget(s, t);
    if (t->prev) t->prev->next = t->next;
    else s->tasks = t->next;
    if (t->next) t->next->prev = t->prev;
    s->ntasks--;
    pr__coro_destroy(t->coro);
}

/* Take the next ready task off the run queue, polling I/O and timers while
   none is ready (and now and then even when some are, so I/O is not starved). */
static pr_task *pr__sched_pick(pr_sched *s) {
    pr_task *t;
    if (s->polls_due) {
        s->polls_due--;
    } else {
        s->polls_due = 61;
        if (s->timers.len || s->io_waiters || s->wake_rd >= 0) pr__sched_poll(s, 0);
    }
    while ((t = s->runq_head) == NULL) pr__sched_poll(s, 1);
    s->runq_head = t->next_ready;
    if (!s->runq_head) s->runq_tail = NULL;
    t->state = PR__SCHED_T_RUNNING;
    return t;
}

/* First thing after every resume: free a detached task that finished just
   before (it could not free the stack it was running on). */
static void pr__sched_reap(pr_sched *s) {
    pr_task *z = s->zombie;
    if (z) {
        s->zombie = NULL;
        pr__sched_task_free(s, z);
    }
}

/* Run the next ready task. The caller has already put itself on the run
   queue or parked; it continues here when it is picked again. */
static void pr__sched_next(pr_sched *s) {
    pr_task *cur = s->cur, *t;
    cur->io_run = 0;
#ifdef PRISTINE_TESTING
    if ((cur->flags & PR__SCHED_TF_SWEEP) && pr__sched_test_sweep.root &&
        pr__sched_test_sweep.root->state != PR__SCHED_T_DONE &&
        ++pr__sched_test_sweep.suspends == pr__sched_test_sweep.cancel_at) {
        pr__sched_test_sweep.at = pr_now();
        pr_cancel(pr__sched_test_sweep.root);
    }
#endif
    t = pr__sched_pick(s);
    if (t == cur) return;
    s->cur = t;
    pr__coro_switch(cur->coro, t->coro);
    pr__sched_reap(s);
}

/* Suspend the running task until pr__sched_wake, the deadline or cancellation.
   Returns PR_OK (woken), PR_ETIMEDOUT or PR_ECANCELED; cancel beats timeout,
   but a wake that completed an operation beats both. */
static int pr__sched_park_ex(pr_sched *s, int64_t deadline, int ignore_cancel) {
    pr_task *t = s->cur;
    if (!ignore_cancel && pr__sched_canceled(s)) return PR_ECANCELED;
    if (s->in_post) return PR_ETIMEDOUT; /* a posted function must not block */
    if (deadline != PR_FOREVER) {
        if (deadline <= pr_now()) return PR_ETIMEDOUT;
        pr__sched_theap_push(&s->timers, &t->timer, deadline);
    }
    t->state = PR__SCHED_T_PARKED;
    t->wake = PR_OK;
    pr__sched_next(s);
    pr__sched_theap_remove(&s->timers, &t->timer);
    if (t->wake == PR_ETIMEDOUT && !ignore_cancel && (t->flags & PR__SCHED_TF_CANCELED)) return PR_ECANCELED;
    if (t->wake == PR_ECANCELED && ignore_cancel) return PR_OK; /* the caller re-checks its condition */
    return t->wake;
}

static int pr__sched_park(pr_sched *s, int64_t deadline) { return pr__sched_park_ex(s, deadline, 0); }

/* Wake tasks whose deadline has passed. */
static void pr__sched_expire(pr_sched *s) {
    pr__sched_theap_node *n;
    int64_t now;
    if (!s->timers.len) return;
    now = pr_now();
    while ((n = pr__sched_theap_top(&s->timers)) != NULL && n->key <= now) {
        pr__sched_theap_remove(&s->timers, n);
        pr__sched_wake(PR__SCHED_TASK_OF_TIMER(n), PR_ETIMEDOUT);
    }
}

/* ---- fd table ---- */
static int pr__sched_fd_reserve(pr_sched *s, int fd) {
    size_t n = s->nfds ? s->nfds : 64;
    pr__sched_fdslot *f;
    if ((size_t)fd < s->nfds) return PR_OK;
    while (n <= (size_t)fd) n *= 2;
#ifdef PR__SCHED_POLLER_POLL
    if (n + 1 > s->npfds) {
        struct pollfd *p = (struct pollfd *)pr__realloc(s->pfds, s->npfds * sizeof *p, (n + 1) * sizeof *p);
        if (!p) return PR_ENOMEM;
        s->pfds = p;
        s->npfds = n + 1;
    }
#endif
    f = (pr__sched_fdslot *)pr__realloc(s->fds, s->nfds * sizeof *f, n * sizeof *f);
    if (!f) return PR_ENOMEM;
    memset(f + s->nfds, 0, (n - s->nfds) * sizeof *f);
    s->fds = f;
    s->nfds = n;
    return PR_OK;
}

/* The poller reports fd: wake its waiters for the kinds that are ready.
   hup: the peer has closed (or the fd failed): no further edge will come, so
   a short read no longer means "wait for the poller". */
static void pr__sched_fd_ready(pr_sched *s, int fd, int rd, int wr, int hup) {
    pr__sched_fdslot *f;
    if (fd < 0 || (size_t)fd >= s->nfds) return;
    f = &s->fds[fd];
    if (hup) f->rd_hup = 1;
    if (rd) {
        f->rd_idle = 0;
        if (f->rd) pr__sched_wake(f->rd, PR_OK);
    }
    if (wr) {
        f->wr_idle = 0;
        if (f->wr) pr__sched_wake(f->wr, PR_OK);
    }
}

static void pr__sched_run_posts(pr_sched *s);
static void pr__sched_sig_check(pr_sched *s);

/* Drain the cross-thread wake fd, act on a caught signal and run what was posted. */
static void pr__sched_wake_drain(pr_sched *s) {
    char tmp[64];
    while (read(s->wake_rd, tmp, sizeof tmp) > 0) {
    }
    __atomic_store_n(&s->wake_pending, 0, __ATOMIC_SEQ_CST);
    pr__sched_sig_check(s);
    pr__sched_run_posts(s);
}

/* ---- pollers: init, register once, wait and dispatch ----
   pr__sched_poller_wait returns how many events it took; PR__SCHED_BATCH
   (a full batch) means more may be waiting. */
#define PR__SCHED_BATCH 64
#if defined(PR__SCHED_POLLER_EPOLL)
static int pr__sched_poller_init(pr_sched *s) {
    s->pollfd = epoll_create1(EPOLL_CLOEXEC);
    return s->pollfd < 0 ? PR_EIO : PR_OK;
}

static int pr__sched_poller_add(pr_sched *s, int fd) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    if (epoll_ctl(s->pollfd, EPOLL_CTL_ADD, fd, &ev) == 0 || errno == EEXIST) return PR_OK;
    return errno == ENOMEM || errno == ENOSPC ? PR_ENOMEM : PR_EIO;
}

static void pr__sched_poller_del(pr_sched *s, int fd) { epoll_ctl(s->pollfd, EPOLL_CTL_DEL, fd, NULL); }

static int pr__sched_poller_wait(pr_sched *s, int timeout_ms) {
    struct epoll_event evs[PR__SCHED_BATCH];
    int i, n = epoll_wait(s->pollfd, evs, PR__SCHED_BATCH, timeout_ms);
    for (i = 0; i < n; i++) {
        unsigned e = evs[i].events;
        if (evs[i].data.fd == s->wake_rd) {
            pr__sched_wake_drain(s);
            continue;
        }
        pr__sched_fd_ready(s, evs[i].data.fd, (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0,
                     (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0, (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
    }
    return n;
}
#elif defined(PR__SCHED_POLLER_KQUEUE)
static int pr__sched_poller_init(pr_sched *s) {
    s->pollfd = kqueue();
    if (s->pollfd < 0) return PR_EIO;
    fcntl(s->pollfd, F_SETFD, FD_CLOEXEC);
    return PR_OK;
}

#ifdef EV_RECEIPT
#define PR__SCHED_EV_RECEIPT EV_RECEIPT
#else
#define PR__SCHED_EV_RECEIPT 0
#endif
/* Register both filters. Some BSDs refuse a filter with EPIPE when the
   other end is already gone: that is "hung up", which counts as ready
   (returned as 1; the fd is then left unregistered so a later wait asks
   again). */
static int pr__sched_poller_add(pr_sched *s, int fd) {
    struct kevent ch[2], res[2];
    int i, n, hup = 0;
    EV_SET(&ch[0], fd, EVFILT_READ, EV_ADD | EV_CLEAR | PR__SCHED_EV_RECEIPT, 0, 0, 0);
    EV_SET(&ch[1], fd, EVFILT_WRITE, EV_ADD | EV_CLEAR | PR__SCHED_EV_RECEIPT, 0, 0, 0);
    n = kevent(s->pollfd, ch, 2, res, PR__SCHED_EV_RECEIPT ? 2 : 0, NULL);
    if (n < 0) return errno == EPIPE ? 1 : errno == ENOMEM ? PR_ENOMEM : PR_EIO;
    for (i = 0; i < n; i++) {
        if (!(res[i].flags & EV_ERROR) || res[i].data == 0) continue;
        if (res[i].data == EPIPE) hup = 1;
        else return res[i].data == ENOMEM ? PR_ENOMEM : PR_EIO;
    }
    return hup;
}

static void pr__sched_poller_del(pr_sched *s, int fd) {
    struct kevent ch[2];
    EV_SET(&ch[0], fd, EVFILT_READ, EV_DELETE, 0, 0, 0);
    EV_SET(&ch[1], fd, EVFILT_WRITE, EV_DELETE, 0, 0, 0);
    kevent(s->pollfd, ch, 2, NULL, 0, NULL);
}

static int pr__sched_poller_wait(pr_sched *s, int timeout_ms) {
    struct kevent evs[PR__SCHED_BATCH];
    struct timespec ts, *tp = NULL;
    int i, n;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tp = &ts;
    }
    n = kevent(s->pollfd, NULL, 0, evs, PR__SCHED_BATCH, tp);
    for (i = 0; i < n; i++) {
        int fd = (int)evs[i].ident;
        if (fd == s->wake_rd) {
            pr__sched_wake_drain(s);
            continue;
        }
        pr__sched_fd_ready(s, fd, evs[i].filter == EVFILT_READ, evs[i].filter == EVFILT_WRITE,
                     evs[i].filter == EVFILT_READ && (evs[i].flags & EV_EOF));
    }
    return n;
}
#else /* poll(2): level-triggered, rebuilt from the fd table on each wait */
static int pr__sched_poller_init(pr_sched *s) {
    s->pollfd = -1;
    return PR_OK;
}

static int pr__sched_poller_add(pr_sched *s, int fd) {
    PR__UNUSED(s);
    PR__UNUSED(fd);
    return PR_OK;
}

static void pr__sched_poller_del(pr_sched *s, int fd) {
    PR__UNUSED(s);
    PR__UNUSED(fd);
}

static int pr__sched_poller_wait(pr_sched *s, int timeout_ms) {
    size_t i, n = 0;
    int k;
    for (i = 0; i < s->nfds; i++) {
        if (!s->fds[i].rd && !s->fds[i].wr) continue;
        s->pfds[n].fd = (int)i;
        s->pfds[n].events = (short)((s->fds[i].rd ? POLLIN : 0) | (s->fds[i].wr ? POLLOUT : 0));
        s->pfds[n++].revents = 0;
    }
    if (s->wake_rd >= 0) { /* pr_sched_current reserved its slot */
        s->pfds[n].fd = s->wake_rd;
        s->pfds[n].events = POLLIN;
        s->pfds[n++].revents = 0;
    }
    k = poll(s->pfds, (nfds_t)n, timeout_ms);
    for (i = 0; k > 0 && i < n; i++) {
        short r = s->pfds[i].revents;
        if (!r) continue;
        k--;
        if (s->pfds[i].fd == s->wake_rd) pr__sched_wake_drain(s);
        else pr__sched_fd_ready(s, s->pfds[i].fd, (r & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) != 0,
                          (r & (POLLOUT | POLLHUP | POLLERR | POLLNVAL)) != 0, (r & (POLLHUP | POLLERR)) != 0);
    }
    return 0; /* every ready fd was seen: never a full batch */
}
#endif

/* One round of I/O and timers. With block set, sleep until the next timer
   or an event (the run queue is empty then). */
static void pr__sched_poll(pr_sched *s, int block) {
    int timeout = 0;
    if (block) {
        if (!s->timers.len) {
            timeout = -1;
        } else {
            int64_t now = pr_now(), dl = pr__sched_theap_top(&s->timers)->key; /* dl - now may not fit: compare first */
            timeout = dl <= now ? 0 : dl >= pr__time_add(now, INT_MAX) ? INT_MAX : (int)(dl - now);
        }
#ifdef PRISTINE_TESTING
        /* Virtual clock: look at I/O without sleeping, then jump to the next timer. */
        if (pr__time_test_clock_on && s->timers.len) {
            pr__sched_poller_wait(s, 0);
            if (!s->runq_head && pr__sched_theap_top(&s->timers)->key > pr__time_test_clock_ms)
                pr__time_test_clock_ms = pr__sched_theap_top(&s->timers)->key;
            pr__sched_expire(s);
            return;
        }
#endif
    }
    pr__sched_poller_wait(s, timeout);
    pr__sched_expire(s);
}

/* ---- scheduler lifetime ---- */
static pr_sched *pr__sched_get(void) {
    pr_sched *s = pr__sched_tls;
    if (PR__LIKELY(s != NULL)) return s;
    s = (pr_sched *)pr__calloc(1, sizeof *s);
    if (!s) return NULL;
    s->wake_rd = s->wake_wr = -1;
    s->pollfd = -1;
    if (pr__sched_theap_reserve(&s->timers, 1) != PR_OK || pr__sched_poller_init(s) != PR_OK || pthread_mutex_init(&s->post_mu, NULL) != 0) {
        if (s->pollfd >= 0) close(s->pollfd);
        pr__sched_theap_free(&s->timers);
        pr__free(s, sizeof *s);
        return NULL;
    }
    pr__coro_init_main(&s->main_coro);
    s->main_task.coro = &s->main_coro;
    s->main_task.sched = s;
    s->main_task.state = PR__SCHED_T_RUNNING;
    s->main_task.flags = PR__SCHED_TF_MAIN;
    s->cur = &s->main_task;
    s->polls_due = 61;
    __atomic_add_fetch(&pr__live_scheds, 1, __ATOMIC_ACQ_REL);
    pr__sched_tls = s;
    return s;
}

static void pr__sched_sig_detach(pr_sched *s);

int pr_sched_destroy(void) {
    pr_sched *s = pr__sched_tls;
    pr_task *t;
    if (!s) return PR_OK;
    if (s->cur != &s->main_task) return PR_ESTATE;
    if (s->wake_rd >= 0) pr__sched_run_posts(s);
    /* Cancel everything and let it unwind; finished unjoined tasks stay listed. */
    for (;;) {
        size_t running = 0;
        for (t = s->tasks; t; t = t->next) {
            if (t->state == PR__SCHED_T_DONE) continue;
            running++;
            pr_cancel(t);
        }
        if (!running) break;
        s->destroyer = s->cur;
        pr__sched_park_ex(s, PR_FOREVER, 1);
        s->destroyer = NULL;
    }
    while (s->tasks) pr__sched_task_free(s, s->tasks);
    if (s->wake_rd >= 0) pr__sched_run_posts(s); /* posted while the tasks unwound */
    pr__sched_sig_detach(s);
    pr__coro_pool_drain();
    if (s->pollfd >= 0) close(s->pollfd);
    if (s->wake_rd >= 0) close(s->wake_rd);
    if (s->wake_wr >= 0 && s->wake_wr != s->wake_rd) close(s->wake_wr);
    pthread_mutex_destroy(&s->post_mu);
    pr__sched_theap_free(&s->timers);
    pr__free(s->fds, s->nfds * sizeof *s->fds);
#ifdef PR__SCHED_POLLER_POLL
    pr__free(s->pfds, s->npfds * sizeof *s->pfds);
#endif
    pr__sched_tls = NULL;
    pr__free(s, sizeof *s);
    __atomic_sub_fetch(&pr__live_scheds, 1, __ATOMIC_ACQ_REL);
    return PR_OK;
}

/* ---- tasks ---- */
struct pr_group {
    pr_task *children;
    pr_task *waiter;
    size_t live;
    int closing;
};

static void pr__sched_group_child_done(pr_group *g, pr_task *t) {
    if (t->gprev) t->gprev->gnext = t->gnext;
    else g->children = t->gnext;
    if (t->gnext) t->gnext->gprev = t->gprev;
    t->group = NULL;
    if (--g->live == 0 && g->waiter) pr__sched_wake(g->waiter, PR_OK);
}

/* First code on a new stack. The switcher set s->cur to the new task. */
static void pr__sched_task_entry(void *arg) {
    pr_sched *s = pr__sched_tls;
    pr_task *t = s->cur, *next;
    PR__UNUSED(arg);
    pr__sched_reap(s);
    t->result = t->fn(t->user_data);
    t->state = PR__SCHED_T_DONE;
    if (t->group) pr__sched_group_child_done(t->group, t);
    if (t->joiner) pr__sched_wake(t->joiner, PR_OK);
    if (t->flags & PR__SCHED_TF_DETACHED) s->zombie = t;
    if (s->destroyer) pr__sched_wake(s->destroyer, PR_OK);
    next = pr__sched_pick(s); /* never this task: it is on no queue */
    s->cur = next;
    pr__coro_exit(t->coro, next->coro);
}

static int pr__sched_spawn(pr_task **out, pr_task_fn fn, void *user_data, const pr_spawn_opts *opts, unsigned flags) {
    pr_sched *s = pr__sched_get();
    pr__coro *c;
    pr_task *t;
    void *extra;
    int rc;
    if (!fn) return PR_EINVAL;
    if (!s) return PR_ENOMEM;
    if ((rc = pr__sched_theap_reserve(&s->timers, s->ntasks + 2)) != PR_OK) return rc;
    rc = opts ? pr__coro_create(&c, &extra, sizeof *t, opts->stack_size, opts->stack_mem, opts->stack_mem_size,
                                pr__sched_task_entry, NULL)
              : pr__coro_create(&c, &extra, sizeof *t, 0, NULL, 0, pr__sched_task_entry, NULL);
    if (rc) return rc;
    t = (pr_task *)extra;
    t->coro = c;
    t->sched = s;
    t->fn = fn;
    t->user_data = user_data;
    t->flags = (unsigned char)flags;
#ifdef PRISTINE_TESTING
    t->flags |= (unsigned char)(s->cur->flags & PR__SCHED_TF_SWEEP);
#endif
    t->state = PR__SCHED_T_READY;
    t->next = s->tasks;
    if (s->tasks) s->tasks->prev = t;
    s->tasks = t;
    s->ntasks++;
    pr__sched_runq_push(s, t);
    if (out) *out = t;
    return PR_OK;
}

int pr_go(pr_task **out, pr_task_fn fn, void *user_data, const pr_spawn_opts *opts) {
    return pr__sched_spawn(out, fn, user_data, opts, out ? 0 : PR__SCHED_TF_DETACHED);
}

int pr_join(pr_task *t, int *result, int64_t deadline) {
    pr_sched *s = pr__sched_tls;
    int rc;
    if (!t || !s || t == s->cur || (t->flags & (PR__SCHED_TF_MAIN | PR__SCHED_TF_DETACHED))) return PR_EINVAL;
    if (t->joiner) return PR_ESTATE;
    while (t->state != PR__SCHED_T_DONE) {
        t->joiner = s->cur;
        rc = pr__sched_park(s, deadline);
        t->joiner = NULL;
        if (rc && t->state != PR__SCHED_T_DONE) return rc;
    }
    if (result) *result = t->result;
    pr__sched_task_free(s, t);
    return PR_OK;
}

/* Wake t out of the wait it is in as a cancel would (its wait returns
   PR_ECANCELED) without marking it cancelled, so its later waits work: how
   a stream's destroy ends the read another task is blocked in. */
/* pr_join for a destroy: cancel t, wait for it even when the caller is
   cancelled itself (a cancelled task unwinding frees what it owns), free
   it. t must end once cancelled. */
static PR__MAYBE_UNUSED void pr__sched_join_cleanup(pr_task *t) {
    pr_sched *s = pr__sched_tls;
    pr_cancel(t);
    while (t->state != PR__SCHED_T_DONE) {
        t->joiner = s->cur;
        pr__sched_park_ex(s, PR_FOREVER, 1);
        t->joiner = NULL;
    }
    pr__sched_task_free(s, t);
}

static PR__MAYBE_UNUSED void pr__sched_task_interrupt(pr_task *t) {
    if (t) pr__sched_wake(t, PR_ECANCELED);
}

int pr_cancel(pr_task *t) {
    if (!t) return PR_EINVAL;
    t->flags |= PR__SCHED_TF_CANCELED;
    pr__sched_wake(t, PR_ECANCELED);
    return PR_OK;
}

pr_task *pr_self(void) {
    pr_sched *s = pr__sched_get();
    return s ? s->cur : NULL;
}

int pr_is_canceled(void) {
    pr_sched *s = pr__sched_tls;
    return s && pr__sched_canceled(s) ? 1 : 0;
}

int pr_yield(void) {
    pr_sched *s = pr__sched_get();
    if (!s) return PR_ENOMEM;
    if (pr__sched_canceled(s)) return PR_ECANCELED;
    if (s->in_post) return PR_OK; /* posted functions run inside the poller: no switching */
    s->cur->state = PR__SCHED_T_READY;
    pr__sched_runq_push(s, s->cur);
    pr__sched_next(s);
    return pr__sched_canceled(s) ? PR_ECANCELED : PR_OK;
}

int pr_sleep(int64_t deadline) {
    pr_sched *s = pr__sched_get();
    int rc;
    if (!s) return PR_ENOMEM;
    if (pr__sched_canceled(s)) return PR_ECANCELED;
    if (deadline <= pr_now()) return PR_OK;
    do rc = pr__sched_park(s, deadline);
    while (rc == PR_OK); /* nobody else wakes a sleeper; be robust anyway */
    return rc == PR_ETIMEDOUT ? PR_OK : rc;
}

/* ---- fd readiness ---- */
int pr_fd_wait(int fd, int kinds, int64_t deadline) {
    pr_sched *s = pr__sched_get();
    pr__sched_fdslot *f;
    pr_task *self;
    int rc, hup = 0;
    if (fd < 0 || !(kinds & (PR_WAIT_READ | PR_WAIT_WRITE)) || (kinds & ~(PR_WAIT_READ | PR_WAIT_WRITE)))
        return PR_EINVAL;
    if (!s) return PR_ENOMEM;
    self = s->cur;
    if (pr__sched_canceled(s)) return PR_ECANCELED;
    if ((rc = pr__sched_fd_reserve(s, fd)) != PR_OK) return rc;
    f = &s->fds[fd];
    /* A waiter already woken (timed out, cancelled) but not yet run no longer counts. */
    if (f->rd && f->rd->state != PR__SCHED_T_PARKED) f->rd = NULL;
    if (f->wr && f->wr->state != PR__SCHED_T_PARKED) f->wr = NULL;
    if (((kinds & PR_WAIT_READ) && f->rd) || ((kinds & PR_WAIT_WRITE) && f->wr)) return PR_ESTATE;
    if (!f->registered) {
        if ((rc = pr__sched_poller_add(s, fd)) < 0) return rc;
        if (rc == 1) hup = 1; /* hung up: ready */
        else f->registered = 1;
        rc = PR_OK;
    }
    if (!hup) {
        if (kinds & PR_WAIT_READ) f->rd = self;
        if (kinds & PR_WAIT_WRITE) f->wr = self;
        s->io_waiters++;
        rc = pr__sched_park(s, deadline);
        s->io_waiters--;
        f = &s->fds[fd]; /* the table may have grown meanwhile */
        if (f->rd == self) f->rd = NULL;
        if (f->wr == self) f->wr = NULL;
    }
    if (rc == PR_OK) { /* woken: the next read or write tries again, even if the wake-up was spurious */
        if (kinds & PR_WAIT_READ) f->rd_idle = 0;
        if (kinds & PR_WAIT_WRITE) f->wr_idle = 0;
    }
    return rc;
}

int pr_fd_forget(int fd) {
    pr_sched *s = pr__sched_tls;
    pr__sched_fdslot *f;
    if (fd < 0) return PR_EINVAL;
    if (!s || (size_t)fd >= s->nfds) return PR_OK;
    f = &s->fds[fd];
    if (f->registered) pr__sched_poller_del(s, fd);
    if (f->rd) pr__sched_wake(f->rd, PR_ECLOSED);
    if (f->wr) pr__sched_wake(f->wr, PR_ECLOSED);
    memset(f, 0, sizeof *f);
    return PR_OK;
}

/* 1 if fd is a byte stream (stream socket or pipe), else 2; asked once per slot. */
static unsigned char pr__sched_fd_is_stream(int fd) {
    int type = 0;
    socklen_t len = sizeof type;
    struct stat st;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0) return type == SOCK_STREAM ? 1 : 2;
    return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) ? 1 : 2;
}

/* The fd's slot, for the I/O helpers (NULL on allocation failure). */
static pr__sched_fdslot *pr__sched_fd_slot(pr_sched *s, int fd) { return pr__sched_fd_reserve(s, fd) == PR_OK ? &s->fds[fd] : NULL; }

/* Fairness: a task whose reads and writes keep finishing without waiting
   (a fast peer) gives the others a turn every PR__SCHED_IO_BUDGET calls, after
   the poller has looked at timers and fds, so a sleeper or a ready task is
   never held up by a stream that is always ready. */
#define PR__SCHED_IO_BUDGET 32
static void pr__sched_io_turn(pr_sched *s) {
    if (++s->cur->io_run < PR__SCHED_IO_BUDGET || s->in_post) return;
    if (s->timers.len || s->io_waiters || s->wake_rd >= 0) pr__sched_poll(s, 0);
    s->cur->state = PR__SCHED_T_READY;
    pr__sched_runq_push(s, s->cur);
    pr__sched_next(s);
}

/* The checks pr_fd_read and pr_fd_write make before their first try. */
static int pr__sched_fd_io_check(pr_sched *s, int fd, const void *buf, size_t n) {
    if (fd < 0 || !buf || !n) return PR_EINVAL;
    if (!s) return PR_ENOMEM;
    return pr__sched_canceled(s) ? PR_ECANCELED : PR_OK;
}

ptrdiff_t pr_fd_read(int fd, void *buf, size_t n, int64_t deadline) {
    pr_sched *s = pr__sched_get();
    pr__sched_fdslot *f;
    int rc = pr__sched_fd_io_check(s, fd, buf, n);
    if (rc) return rc;
    while ((f = pr__sched_fd_slot(s, fd)) != NULL) {
        if (!f->rd_idle || deadline <= pr_now()) {
            ssize_t got = read(fd, buf, n);
            if (got > 0) {
                /* A byte stream returns short only when drained; datagrams and ttys may not. */
                if ((size_t)got < n) {
                    if (!f->stream) f->stream = pr__sched_fd_is_stream(fd);
                    f->rd_idle = f->stream == 1 && !f->rd_hup;
                }
                pr__sched_io_turn(s);
                return got;
            }
            if (got == 0) return PR_ECLOSED;
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) return PR_EIO;
            f->rd_idle = 1;
        }
        if ((rc = pr_fd_wait(fd, PR_WAIT_READ, deadline)) != PR_OK) return rc;
    }
    return PR_ENOMEM; /* no fd slot */
}

ptrdiff_t pr_fd_write(int fd, const void *buf, size_t n, int64_t deadline) {
    pr_sched *s = pr__sched_get();
    pr__sched_fdslot *f;
    int rc = pr__sched_fd_io_check(s, fd, buf, n);
    if (rc) return rc;
    while ((f = pr__sched_fd_slot(s, fd)) != NULL) {
        if (!f->wr_idle || deadline <= pr_now()) {
            ssize_t put;
#ifdef MSG_NOSIGNAL
            put = f->notsock ? write(fd, buf, n) : send(fd, buf, n, MSG_NOSIGNAL);
            if (put < 0 && errno == ENOTSOCK) {
                f->notsock = 1;
                continue;
            }
#else
#ifdef SO_NOSIGPIPE
            if (!f->notsock) { /* 1: not a socket; 2: a socket with SIGPIPE turned off */
                int one = 1;
                f->notsock = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) == 0 ? 2 : 1;
            }
#endif
            put = write(fd, buf, n);
#endif
            if (put >= 0) {
                pr__sched_io_turn(s);
                return put;
            }
            if (errno == EINTR) continue;
            if (errno == EPIPE || errno == ECONNRESET) return PR_ECLOSED;
            if (errno != EAGAIN && errno != EWOULDBLOCK) return PR_EIO;
            f->wr_idle = 1;
        }
        if ((rc = pr_fd_wait(fd, PR_WAIT_WRITE, deadline)) != PR_OK) return rc;
    }
    return PR_ENOMEM; /* no fd slot */
}

/* ---- cross-thread post ---- */
pr_sched *pr_sched_current(void) {
    pr_sched *s = pr__sched_get();
    if (!s || s->wake_rd >= 0) return s;
    if (pr__sched_fd_reserve(s, 0) != PR_OK) return NULL; /* poll(2) needs a slot for the wake fd */
#ifdef __linux__
    s->wake_rd = s->wake_wr = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->wake_rd < 0) return NULL;
#else
    {
        int p[2];
        if (pipe(p) != 0) return NULL;
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        fcntl(p[1], F_SETFL, O_NONBLOCK);
        fcntl(p[0], F_SETFD, FD_CLOEXEC);
        fcntl(p[1], F_SETFD, FD_CLOEXEC);
        s->wake_rd = p[0];
        s->wake_wr = p[1];
    }
#endif
    if (pr__sched_poller_add(s, s->wake_rd) != 0) {
        close(s->wake_rd);
        if (s->wake_wr != s->wake_rd) close(s->wake_wr);
        s->wake_rd = s->wake_wr = -1;
        return NULL;
    }
    return s;
}

int pr_sched_post(pr_sched *s, void (*fn)(void *user_data), void *user_data) {
    pr__sched_post *p;
    if (!s || !fn || s->wake_wr < 0) return PR_EINVAL;
    p = (pr__sched_post *)pr__alloc(sizeof *p);
    if (!p) return PR_ENOMEM;
    p->fn = fn;
    p->user_data = user_data;
    pthread_mutex_lock(&s->post_mu);
    p->next = s->posts;
    s->posts = p;
    pthread_mutex_unlock(&s->post_mu);
    pr__sched_wake_write(s);
    return PR_OK;
}

static void pr__sched_run_posts(pr_sched *s) {
    pr__sched_post *list, *rev = NULL;
    pthread_mutex_lock(&s->post_mu);
    list = s->posts;
    s->posts = NULL;
    pthread_mutex_unlock(&s->post_mu);
    while (list) { /* the list is newest first; run in posting order */
        pr__sched_post *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    s->in_post++;
    while (rev) {
        pr__sched_post *n = rev->next;
        rev->fn(rev->user_data);
        pr__free(rev, sizeof *rev);
        rev = n;
    }
    s->in_post--;
}

/* ---- running inside a host's event loop ---- */
int pr_sched_fd(pr_err_info *err) {
#ifdef PR__SCHED_POLLER_POLL
    return pr__err_set(err, PR_ENOTSUP, 0,
                       "sched: the poll(2) back end has no single fd to watch; call pr_sched_step on a timer");
#else
    pr_sched *s = pr_sched_current();
    if (!s) return pr__err_set(err, PR_ENOMEM, errno, "sched: no scheduler or wake fd");
    s->host = 1;
    if (err) memset(err, 0, sizeof *err);
    return s->pollfd;
#endif
}

/* Rounds of "every ready task runs once" in one pr_sched_step. */
#define PR__SCHED_STEP_ROUNDS 64

int pr_sched_step(int64_t *next_deadline) {
    pr_sched *s = pr__sched_get();
    int rounds = 0, more;
    if (next_deadline) *next_deadline = PR_FOREVER;
    if (!s) return PR_ENOMEM;
    if (s->cur != &s->main_task || s->stepping || s->in_post) return PR_ESTATE;
    s->stepping = 1;
    for (;;) {
        more = pr__sched_poller_wait(s, 0) == PR__SCHED_BATCH;
        pr__sched_expire(s);
        if (!s->runq_head || ++rounds > PR__SCHED_STEP_ROUNDS) break;
        /* Queue main behind the ready tasks: it is picked again once each has run. */
        s->main_task.state = PR__SCHED_T_READY;
        pr__sched_runq_push(s, &s->main_task);
        pr__sched_next(s);
    }
    s->stepping = 0;
    if (next_deadline) {
        if (s->runq_head || more) *next_deadline = pr_now();
        else if (s->timers.len) *next_deadline = pr__sched_theap_top(&s->timers)->key;
    }
    return PR_OK;
}

/* ---- groups ---- */
int pr_group_create(pr_group **out) {
    pr_group *g;
    if (!out) return PR_EINVAL;
    g = (pr_group *)pr__calloc(1, sizeof *g);
    if (!g) return PR_ENOMEM;
    *out = g;
    return PR_OK;
}

int pr_group_go(pr_group *g, pr_task_fn fn, void *user_data, const pr_spawn_opts *opts) {
    pr_task *t;
    int rc;
    if (!g) return PR_EINVAL;
    if (g->closing) return PR_ESTATE;
    if ((rc = pr__sched_spawn(&t, fn, user_data, opts, PR__SCHED_TF_DETACHED)) != PR_OK) return rc;
    t->group = g;
    t->gnext = g->children;
    if (g->children) g->children->gprev = t;
    g->children = t;
    g->live++;
    return PR_OK;
}

static int pr__sched_group_wait(pr_group *g, int64_t deadline, int ignore_cancel) {
    pr_sched *s;
    int rc = PR_OK;
    if (!g->live) return PR_OK;
    if (!(s = pr__sched_get())) return PR_ENOMEM;
    if (g->waiter || s->cur->group == g) return PR_ESTATE; /* a child would wait for itself */
    while (g->live && rc == PR_OK) {
        g->waiter = s->cur;
        rc = pr__sched_park_ex(s, deadline, ignore_cancel);
        g->waiter = NULL;
    }
    return g->live ? rc : PR_OK;
}

int pr_group_wait(pr_group *g, int64_t deadline) {
    if (!g) return PR_EINVAL;
    return pr__sched_group_wait(g, deadline, 0);
}

int pr_group_close(pr_group *g, int64_t deadline) {
    pr_task *t;
    int rc;
    if (!g) return PR_OK;
    if (g->waiter || (pr__sched_tls && pr__sched_tls->cur->group == g)) return PR_ESTATE;
    g->closing = 1;
    for (t = g->children; t; t = t->gnext) pr_cancel(t);
    if ((rc = pr__sched_group_wait(g, deadline, 1)) != PR_OK) return rc;
    pr__free(g, sizeof *g);
    return PR_OK;
}

/* ---- channels ---- */
typedef struct pr__sched_chan_sel pr__sched_chan_sel;

/* One offered operation of a parked task, queued on its channel. */
typedef struct pr__sched_chan_waiter {
    pr__link link;      /* in its channel's senders or receivers */
    pr__sched_chan_sel *sel;
    pr_chan *chan;
    size_t index;
    void *elem;
    int kind;
} pr__sched_chan_waiter;

/* The parked task's whole offer: done = index of the operation completed. */
struct pr__sched_chan_sel {
    pr_task *task;
    pr_chan_op *ops;
    pr__sched_chan_waiter *nodes;
    size_t n;
    ptrdiff_t done;
};

struct pr_chan {
    size_t elem_size, cap, head, count;
    char *ring;
    pr__list senders, receivers; /* of pr__sched_chan_waiter */
    int closed;
};

int pr_chan_create(pr_chan **out, size_t elem_size, size_t capacity) {
    pr_chan *c;
    if (!out || !elem_size || (capacity && elem_size > SIZE_MAX / capacity)) return PR_EINVAL;
    c = (pr_chan *)pr__calloc(1, sizeof *c);
    if (!c) return PR_ENOMEM;
    c->elem_size = elem_size;
    c->cap = capacity;
    if (capacity && !(c->ring = (char *)pr__alloc(elem_size * capacity))) {
        pr__free(c, sizeof *c);
        return PR_ENOMEM;
    }
    *out = c;
    return PR_OK;
}

/* The longest waiter of a channel queue, or NULL. */
static pr__sched_chan_waiter *pr__sched_chan_first(const pr__list *q) {
    return q->head ? PR__CONTAINER_OF(q->head, pr__sched_chan_waiter, link) : NULL;
}

static pr__list *pr__sched_chan_queue(pr_chan *c, int kind) { return kind == PR_CHAN_SEND ? &c->senders : &c->receivers; }

/* Complete operation w of a parked task with rc: withdraw all its offers and wake it. */
static void pr__sched_chan_fire(pr__sched_chan_waiter *w, int rc) {
    pr__sched_chan_sel *sel = w->sel;
    size_t i;
    for (i = 0; i < sel->n; i++) pr__list_unlink(pr__sched_chan_queue(sel->nodes[i].chan, sel->nodes[i].kind), &sel->nodes[i].link);
    sel->done = (ptrdiff_t)w->index;
    sel->ops[w->index].result = rc;
    pr__sched_wake(sel->task, PR_OK);
}

static void pr__sched_ring_put(pr_chan *c, const void *elem) {
    memcpy(c->ring + ((c->head + c->count) % c->cap) * c->elem_size, elem, c->elem_size);
    c->count++;
}

/* Try one operation without waiting. Returns 1 if done (op->result set), else 0. */
static int pr__sched_chan_try(pr_chan_op *op) {
    pr_chan *c = op->chan;
    pr__sched_chan_waiter *w;
    if (op->kind == PR_CHAN_SEND) {
        if (c->closed) {
            op->result = PR_ECLOSED;
        } else if ((w = pr__sched_chan_first(&c->receivers)) != NULL) {
            memcpy(w->elem, op->elem, c->elem_size);
            pr__sched_chan_fire(w, PR_OK);
            op->result = PR_OK;
        } else if (c->count < c->cap) {
            pr__sched_ring_put(c, op->elem);
            op->result = PR_OK;
        } else {
            return 0;
        }
        return 1;
    }
    if (c->count) {
        memcpy(op->elem, c->ring + c->head * c->elem_size, c->elem_size);
        c->head = (c->head + 1) % c->cap;
        c->count--;
        if ((w = pr__sched_chan_first(&c->senders)) != NULL) {
            pr__sched_ring_put(c, w->elem);
            pr__sched_chan_fire(w, PR_OK);
        }
        op->result = PR_OK;
    } else if ((w = pr__sched_chan_first(&c->senders)) != NULL) {
        memcpy(op->elem, w->elem, c->elem_size);
        pr__sched_chan_fire(w, PR_OK);
        op->result = PR_OK;
    } else if (c->closed) {
        op->result = PR_ECLOSED;
    } else {
        return 0;
    }
    return 1;
}

int pr_chan_choose(pr_chan_op *ops, size_t n, int64_t deadline) {
    pr_sched *s = pr__sched_get();
    pr__sched_chan_waiter local[8], *nodes = local;
    pr__sched_chan_sel sel;
    size_t i, start;
    int rc;
    if (!ops || !n) return PR_EINVAL;
    for (i = 0; i < n; i++)
        if (!ops[i].chan || !ops[i].elem || (ops[i].kind != PR_CHAN_SEND && ops[i].kind != PR_CHAN_RECV))
            return PR_EINVAL;
    if (!s) return PR_ENOMEM;
    if (pr__sched_canceled(s)) return PR_ECANCELED;
    start = n > 1 ? s->choose_rot++ % n : 0;
    for (i = 0; i < n; i++) {
        size_t k = (start + i) % n;
        if (pr__sched_chan_try(&ops[k])) return (int)k;
    }
    if (deadline <= pr_now()) return PR_ETIMEDOUT;
    if (n > 8 && !(nodes = (pr__sched_chan_waiter *)pr__alloc(n * sizeof *nodes))) return PR_ENOMEM;
    sel.task = s->cur;
    sel.ops = ops;
    sel.nodes = nodes;
    sel.n = n;
    sel.done = -1;
    for (i = 0; i < n; i++) {
        nodes[i].sel = &sel;
        nodes[i].chan = ops[i].chan;
        nodes[i].index = i;
        nodes[i].elem = ops[i].elem;
        nodes[i].kind = ops[i].kind;
        pr__list_push(pr__sched_chan_queue(ops[i].chan, ops[i].kind), &nodes[i].link);
    }
    rc = pr__sched_park(s, deadline);
    if (sel.done >= 0) {
        rc = (int)sel.done; /* the operation happened: report it even if cancelled meanwhile */
    } else {
        for (i = 0; i < n; i++) pr__list_unlink(pr__sched_chan_queue(nodes[i].chan, nodes[i].kind), &nodes[i].link);
        if (rc == PR_OK) rc = PR_ETIMEDOUT; /* not reachable: only a fire wakes with PR_OK */
    }
    if (nodes != local) pr__free(nodes, n * sizeof *nodes);
    return rc;
}

static int pr__sched_chan_one(pr_chan *c, int kind, void *elem, int64_t deadline) {
    pr_chan_op op;
    int rc;
    if (!c || !elem) return PR_EINVAL;
    op.chan = c;
    op.kind = kind;
    op.elem = elem;
    op.result = PR_OK;
    rc = pr_chan_choose(&op, 1, deadline);
    return rc < 0 ? rc : op.result;
}

int pr_chan_send(pr_chan *c, const void *elem, int64_t deadline) {
    return pr__sched_chan_one(c, PR_CHAN_SEND, (void *)(uintptr_t)elem, deadline);
}

int pr_chan_recv(pr_chan *c, void *elem, int64_t deadline) { return pr__sched_chan_one(c, PR_CHAN_RECV, elem, deadline); }

int pr_chan_close(pr_chan *c) {
    pr__sched_chan_waiter *w;
    if (!c) return PR_EINVAL;
    if (c->closed) return PR_ESTATE;
    c->closed = 1;
    while ((w = pr__sched_chan_first(&c->receivers)) != NULL) pr__sched_chan_fire(w, PR_ECLOSED);
    while ((w = pr__sched_chan_first(&c->senders)) != NULL) pr__sched_chan_fire(w, PR_ECLOSED);
    return PR_OK;
}

void pr_chan_destroy(pr_chan *c) {
    if (!c) return;
    if (!c->closed) pr_chan_close(c);
    pr__free(c->ring, c->cap * c->elem_size);
    pr__free(c, sizeof *c);
}

/* ---- signals ----
   The handler touches only the watch's atomics, sigaction and write (all
   async-signal-safe); the owner's scheduler learns of the signal through
   its wake fd and acts on it in pr__sched_sig_check. */

/* A task in pr_signal_wait; rc is set (and the node unlinked) when it is woken. */
typedef struct pr__sched_sig_waiter {
    pr__link link;
    pr_task *task;
    int rc;
} pr__sched_sig_waiter;

struct pr_signal_watch {
    pr_sched *sched;           /* the owner's scheduler; NULL once let go */
    pr_task *cancel;           /* cancelled on the signal; may be NULL */
    pr__list waiters;          /* of pr__sched_sig_waiter */
    int wake_wr;               /* the scheduler's wake fd */
    size_t wake_bytes;         /* 8 for an eventfd, 1 for a pipe */
    int got;                   /* atomic: the first signal caught; 0 before */
    int restored;              /* atomic: the previous handlers are back */
    int fired;                 /* the scheduler acted on it */
    size_t n, cap;             /* signals installed (atomic); room for */
    int *sigs;                 /* the signals caught, and their previous actions */
    struct sigaction *old;
};

/* The process's one running watch and its scheduler (atomics). */
static pr_signal_watch *pr__sched_sig_watch;
static pr_sched *pr__sched_sig_owner;

/* Put the previous handlers back, once (the handler or the owner, whichever comes first). */
static void pr__sched_sig_restore(pr_signal_watch *w) {
    size_t i, n = __atomic_load_n(&w->n, __ATOMIC_SEQ_CST);
    if (__atomic_exchange_n(&w->restored, 1, __ATOMIC_SEQ_CST)) return;
    for (i = 0; i < n; i++) sigaction(w->sigs[i], &w->old[i], NULL);
}

static void pr__sched_sig_handler(int signo) {
    int saved = errno, zero = 0;
    pr_signal_watch *w = __atomic_load_n(&pr__sched_sig_watch, __ATOMIC_SEQ_CST);
    if (w && __atomic_compare_exchange_n(&w->got, &zero, signo, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        uint64_t one = 1;
        ssize_t put;
        pr__sched_sig_restore(w);
        put = write(w->wake_wr, &one, w->wake_bytes);
        PR__UNUSED(put); /* a full pipe already means "wake up" */
    }
    errno = saved;
}

/* Wake every task in pr_signal_wait with rc. */
static void pr__sched_sig_wake_all(pr_signal_watch *w, int rc) {
    pr__link *l;
    while ((l = w->waiters.head) != NULL) {
        pr__sched_sig_waiter *x = PR__CONTAINER_OF(l, pr__sched_sig_waiter, link);
        pr__list_unlink(&w->waiters, l);
        x->rc = rc;
        pr__sched_wake(x->task, PR_OK);
    }
}

/* On the owner's thread: act on a caught signal once (cancel the task if
   it is still there, wake the waiters). */
static void pr__sched_sig_check(pr_sched *s) {
    pr_signal_watch *w;
    int signo;
    if (__atomic_load_n(&pr__sched_sig_owner, __ATOMIC_SEQ_CST) != s) return;
    w = __atomic_load_n(&pr__sched_sig_watch, __ATOMIC_SEQ_CST);
    if (!w || w->fired || (signo = __atomic_load_n(&w->got, __ATOMIC_SEQ_CST)) == 0) return;
    w->fired = 1;
    if (w->cancel) pr_cancel(w->cancel);
    pr__sched_sig_wake_all(w, signo);
}

/* A task is being freed: the running watch of its scheduler no longer
   cancels it. */
static void pr__sched_sig_forget(pr_sched *s, pr_task *t) {
    pr_signal_watch *w;
    if (PR__LIKELY(__atomic_load_n(&pr__sched_sig_owner, __ATOMIC_RELAXED) != s)) return;
    if ((w = __atomic_load_n(&pr__sched_sig_watch, __ATOMIC_SEQ_CST)) != NULL && w->cancel == t) w->cancel = NULL;
}

/* Let go of the handlers and the wake fd: w is no longer the running watch. */
static void pr__sched_sig_release(pr_signal_watch *w) {
    pr__sched_sig_restore(w);
    if (__atomic_load_n(&pr__sched_sig_watch, __ATOMIC_SEQ_CST) == w) {
        __atomic_store_n(&pr__sched_sig_owner, (pr_sched *)NULL, __ATOMIC_SEQ_CST);
        __atomic_store_n(&pr__sched_sig_watch, (pr_signal_watch *)NULL, __ATOMIC_SEQ_CST);
    }
    w->sched = NULL;
}

/* pr_sched_destroy: the wake fd is about to close; the running watch (still
   the user's to stop) acts on a signal already caught, then lets go. */
static void pr__sched_sig_detach(pr_sched *s) {
    pr_signal_watch *w;
    if (__atomic_load_n(&pr__sched_sig_owner, __ATOMIC_SEQ_CST) != s) return;
    if (!(w = __atomic_load_n(&pr__sched_sig_watch, __ATOMIC_SEQ_CST))) return;
    pr__sched_sig_check(s);
    pr__sched_sig_release(w);
    pr__sched_sig_wake_all(w, PR_ECLOSED);
}

static void pr__sched_sig_free(pr_signal_watch *w) {
    pr__free(w->sigs, w->cap * sizeof *w->sigs);
    pr__free(w->old, w->cap * sizeof *w->old);
    pr__free(w, sizeof *w);
}

int pr_signal_watch_start(pr_signal_watch **out, const int *signals, size_t nsignals, pr_task *cancel,
                          pr_err_info *err) {
    static const int defaults[] = { SIGINT, SIGTERM };
    pr_signal_watch *w, *none = NULL;
    pr_sched *s;
    struct sigaction sa;
    size_t i, j;
    if (!out) return pr__err_set(err, PR_EINVAL, 0, "signal: out is NULL");
    *out = NULL;
    if (!signals || !nsignals) {
        signals = defaults;
        nsignals = 2;
    }
    if (nsignals > SIZE_MAX / sizeof(struct sigaction)) return pr__err_set(err, PR_EINVAL, 0, "signal: too many signals");
    if (!(s = pr_sched_current())) return pr__err_set(err, PR_ENOMEM, 0, "signal: no scheduler or wake fd");
    if (!(w = (pr_signal_watch *)pr__calloc(1, sizeof *w))) return pr__err_set(err, PR_ENOMEM, 0, "signal: out of memory");
    w->cap = nsignals;
    w->sigs = (int *)pr__alloc(nsignals * sizeof *w->sigs);
    w->old = (struct sigaction *)pr__alloc(nsignals * sizeof *w->old);
    if (!w->sigs || !w->old) {
        pr__sched_sig_free(w);
        return pr__err_set(err, PR_ENOMEM, 0, "signal: out of memory");
    }
    w->sched = s;
    w->cancel = cancel;
    w->wake_wr = s->wake_wr;
    w->wake_bytes = s->wake_wr == s->wake_rd ? sizeof(uint64_t) : 1;
    if (!__atomic_compare_exchange_n(&pr__sched_sig_watch, &none, w, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        pr__sched_sig_free(w);
        return pr__err_set(err, PR_ESTATE, 0, "signal: a watch is already running in this process");
    }
    __atomic_store_n(&pr__sched_sig_owner, s, __ATOMIC_SEQ_CST);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pr__sched_sig_handler;
    sa.sa_flags = SA_RESTART; /* other threads' blocking calls go on; the poller wakes through the fd */
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < nsignals; i++) sigaddset(&sa.sa_mask, signals[i]); /* one of them at a time per thread */
    for (i = 0; i < nsignals; i++) {
        for (j = 0; j < w->n && w->sigs[j] != signals[i]; j++) {
        }
        if (j < w->n) continue; /* a duplicate: its "previous" action would be ours */
        w->sigs[w->n] = signals[i];
        if (sigaction(signals[i], &sa, &w->old[w->n]) != 0) {
            int e = errno;
            pr__sched_sig_release(w); /* the ones installed so far */
            pr__sched_sig_free(w);
            return pr__err_set(err, PR_EINVAL, e, "signal: cannot catch signal %d", signals[i]);
        }
        __atomic_add_fetch(&w->n, 1, __ATOMIC_SEQ_CST);
    }
    if (__atomic_load_n(&w->got, __ATOMIC_SEQ_CST)) { /* caught while installing: restore all of them */
        __atomic_store_n(&w->restored, 0, __ATOMIC_SEQ_CST);
        pr__sched_sig_restore(w);
    }
    *out = w;
    return PR_OK;
}

int pr_signal_wait(pr_signal_watch *w, int64_t deadline) {
    pr_sched *s = pr__sched_get();
    pr__sched_sig_waiter me;
    int rc;
    if (!w) return PR_EINVAL;
    if (!s) return PR_ENOMEM;
    if (w->sched) pr__sched_sig_check(s); /* caught, but the poller has not looked yet */
    if (w->fired) return w->got;
    if (!w->sched) return PR_ECLOSED;
    me.task = s->cur;
    me.rc = 0;
    pr__list_push(&w->waiters, &me.link);
    rc = pr__sched_park(s, deadline);
    if (me.rc) return me.rc; /* woken by the signal or the stop (w may be gone): that happened */
    pr__list_unlink(&w->waiters, &me.link);
    return rc == PR_OK ? PR_ETIMEDOUT : rc;
}

void pr_signal_watch_stop(pr_signal_watch *w) {
    if (!w) return;
    pr__sched_sig_release(w);
    pr__sched_sig_wake_all(w, PR_ECLOSED);
    pr__sched_sig_free(w);
}

/* ==== sync: FIFO wait queues, counting and weighted semaphores ==== >>sync.impl */
/* ---- FIFO wait queues ---- */
/* A parked task; lives on its stack while it waits. */
typedef struct pr__sync_waiter {
    pr__link link; /* in its pr__sync_fifo */
    pr_task *task;
    int64_t weight;
    int done;   /* granted (semaphores) or released (windows: cleared) */
    int closed; /* the object was destroyed: do not touch it */
} pr__sync_waiter;

/* A queue of pr__sync_waiter, oldest first (.n counts them). */
typedef pr__list pr__sync_fifo;

/* The longest waiter of q, or NULL. */
static pr__sync_waiter *pr__sync_first(const pr__sync_fifo *q) {
    return q->head ? PR__CONTAINER_OF(q->head, pr__sync_waiter, link) : NULL;
}

/* Take w off q and wake it, granted (closed 0) or told the object is gone. */
static void pr__sync_wake(pr__sync_fifo *q, pr__sync_waiter *w, int closed) {
    pr__list_unlink(q, &w->link);
    if (closed) w->closed = 1;
    else w->done = 1;
    pr__sched_wake(w->task, PR_OK);
}

/* Wake every waiter, marking them done (or closed) and leaving the queue empty. */
static void pr__sync_fifo_wake_all(pr__sync_fifo *q, int closed) {
    pr__sync_waiter *w;
    while ((w = pr__sync_first(q)) != NULL) pr__sync_wake(q, w, closed);
}

/* Park the calling task on q until done, closed, the deadline or
   cancellation. Returns PR_OK (done), PR_ECLOSED, PR_ETIMEDOUT,
   PR_ECANCELED or PR_ENOMEM; the waiter is off the queue when it returns. */
static int pr__sync_fifo_park(pr__sync_fifo *q, pr__sync_waiter *w, int64_t deadline) {
    pr_sched *s = pr__sched_get();
    int rc = PR_OK;
    if (!s) return PR_ENOMEM;
    w->task = s->cur;
    w->done = w->closed = 0;
    pr__list_push(q, &w->link);
    while (!w->done && !w->closed && rc == PR_OK) rc = pr__sched_park(s, deadline);
    if (w->closed) return PR_ECLOSED;
    if (w->done) return PR_OK; /* granted: that beats a timeout or cancel that came with it */
    pr__list_unlink(q, &w->link);
    return rc == PR_OK ? PR_ETIMEDOUT : rc;
}

/* ---- semaphores: one core, two admission rules ---- */
typedef struct pr__sync_semcore {
    int64_t budget;
    int weighted; /* 0: admit while budget >= weight (counting); 1: while budget >= 0 */
    pr__sync_fifo q;
} pr__sync_semcore;

struct pr_sem { pr__sync_semcore c; };
struct pr_wsem { pr__sync_semcore c; };

static int pr__sync_sem_admits(const pr__sync_semcore *c, int64_t weight) {
    return c->weighted ? c->budget >= 0 : c->budget >= weight;
}

static int pr__sync_sem_try(pr__sync_semcore *c, int64_t weight) {
    if (c->q.n || !pr__sync_sem_admits(c, weight)) return PR_ETIMEDOUT;
    c->budget -= weight;
    return PR_OK;
}

static int pr__sync_sem_acquire(pr__sync_semcore *c, int64_t weight, int64_t deadline) {
    pr__sync_waiter me;
    if (pr_is_canceled()) return PR_ECANCELED;
    if (pr__sync_sem_try(c, weight) == PR_OK) return PR_OK;
    memset(&me, 0, sizeof me);
    me.weight = weight;
    return pr__sync_fifo_park(&c->q, &me, deadline); /* a grant has already taken the weight */
}

/* Hand the budget to waiters in order while the head is admitted. */
static void pr__sync_sem_release(pr__sync_semcore *c, int64_t weight) {
    pr__sync_waiter *w;
    c->budget += weight;
    while ((w = pr__sync_first(&c->q)) != NULL && pr__sync_sem_admits(c, w->weight)) {
        c->budget -= w->weight;
        pr__sync_wake(&c->q, w, 0);
    }
}

/* Wake the waiters with PR_ECLOSED and free the semaphore (size bytes at c,
   its first member). */
static void pr__sync_sem_free(pr__sync_semcore *c, size_t size) {
    pr__sync_fifo_wake_all(&c->q, 1);
    pr__free(c, size);
}

static void *pr__sync_sem_new(size_t size, int64_t budget, int weighted) {
    pr__sync_semcore *c = (pr__sync_semcore *)pr__calloc(1, size);
    if (c) {
        c->budget = budget;
        c->weighted = weighted;
    }
    return c;
}

int pr_sem_create(pr_sem **out, int64_t permits) {
    if (!out || permits <= 0) return PR_EINVAL;
    *out = (pr_sem *)pr__sync_sem_new(sizeof(pr_sem), permits, 0);
    return *out ? PR_OK : PR_ENOMEM;
}

void pr_sem_destroy(pr_sem *s) {
    if (s) pr__sync_sem_free(&s->c, sizeof *s);
}

int pr_sem_acquire(pr_sem *s, int64_t deadline) { return s ? pr__sync_sem_acquire(&s->c, 1, deadline) : PR_EINVAL; }

int pr_sem_try_acquire(pr_sem *s) { return s ? pr__sync_sem_try(&s->c, 1) : PR_EINVAL; }

void pr_sem_release(pr_sem *s) {
    if (s) pr__sync_sem_release(&s->c, 1);
}

int64_t pr_sem_available(const pr_sem *s) { return s && s->c.budget > 0 ? s->c.budget : 0; }

size_t pr_sem_waiting(const pr_sem *s) { return s ? s->c.q.n : 0; }

int pr_wsem_create(pr_wsem **out, int64_t budget) {
    if (!out || budget <= 0) return PR_EINVAL;
    *out = (pr_wsem *)pr__sync_sem_new(sizeof(pr_wsem), budget, 1);
    return *out ? PR_OK : PR_ENOMEM;
}

void pr_wsem_destroy(pr_wsem *w) {
    if (w) pr__sync_sem_free(&w->c, sizeof *w);
}

int pr_wsem_acquire(pr_wsem *w, int64_t weight, int64_t deadline) {
    return w && weight >= 0 ? pr__sync_sem_acquire(&w->c, weight, deadline) : PR_EINVAL;
}

int pr_wsem_try_acquire(pr_wsem *w, int64_t weight) {
    return w && weight >= 0 ? pr__sync_sem_try(&w->c, weight) : PR_EINVAL;
}

void pr_wsem_release(pr_wsem *w, int64_t weight) {
    if (w && weight >= 0) pr__sync_sem_release(&w->c, weight);
}

int64_t pr_wsem_budget(const pr_wsem *w) { return w ? w->c.budget : 0; }

/* ==== future: in-process promises and futures; a task's result as a future ==== >>future.impl */
/* Where pr_future_await_all hears which futures settled. */
typedef struct pr__future_fgroup {
    size_t *settled; /* indices in settling order */
    size_t nsettled;
} pr__future_fgroup;

/* A task waiting in pr_future_await (on its stack) or pr_future_await_all. */
typedef struct pr__future_fwait {
    struct pr__future_fwait *prev, *next;
    pr_task *task;
    pr__future_fgroup *group; /* await_all: note idx there on settling; NULL otherwise */
    size_t idx;
} pr__future_fwait;

struct pr_future {
    pr__future_fwait *waiters;
    void *value;
    int code;                  /* rejection code */
    int state;                 /* PR_FUTURE_* */
    size_t refs;
    void (*on_cancel)(void *);
    void *on_cancel_data;
    pr_task *task;             /* pr_future_go's task while it runs */
    pr_task_fn fn;             /* pr_future_go's body */
    void *user_data;
    pr_err_info *detail;       /* pr_future_reject_info's copy, or NULL */
    void (*free_value)(void *value, void *user_data);
    void *free_data;
};

int pr_future_create(pr_future **out) {
    pr_future *f;
    if (!out) return PR_EINVAL;
    f = (pr_future *)pr__calloc(1, sizeof *f);
    if (!f) return PR_ENOMEM;
    f->refs = 1;
    *out = f;
    return PR_OK;
}

void pr_future_retain(pr_future *f) {
    if (f) f->refs++;
}

void pr_future_destroy(pr_future *f) {
    if (!f || --f->refs) return;
    PR__ASSERT(!f->waiters); /* a waiter holds a reference of its own */
    if (f->state == PR_FUTURE_RESOLVED && f->free_value) f->free_value(f->value, f->free_data);
    pr__free(f->detail, sizeof *f->detail);
    pr__free(f, sizeof *f);
}

static int pr__future_settle(pr_future *f, int state, void *value, int code) {
    pr__future_fwait *w;
    if (!f) return PR_EINVAL;
    if (f->state != PR_FUTURE_PENDING) return PR_ESTATE;
    f->state = state;
    f->value = value;
    f->code = code;
    for (w = f->waiters; w; w = w->next) {
        if (w->group) w->group->settled[w->group->nsettled++] = w->idx;
        pr__sched_wake(w->task, PR_OK);
    }
    return PR_OK;
}

int pr_future_resolve(pr_future *f, void *value) { return pr__future_settle(f, PR_FUTURE_RESOLVED, value, PR_OK); }

int pr_future_reject(pr_future *f, int code) {
    if (code >= 0) return PR_EINVAL;
    return pr__future_settle(f, PR_FUTURE_REJECTED, NULL, code);
}

int pr_future_state(const pr_future *f) { return f ? f->state : PR_EINVAL; }

int pr_future_reject_info(pr_future *f, const pr_err_info *info) {
    int rc;
    if (!f || !info || info->code >= 0) return PR_EINVAL;
    if (f->state != PR_FUTURE_PENDING) return PR_ESTATE;
    if (!f->detail) f->detail = (pr_err_info *)pr__alloc(sizeof *f->detail);
    if (f->detail) *f->detail = *info;
    rc = pr__future_settle(f, PR_FUTURE_REJECTED, NULL, info->code);
    return rc ? rc : f->detail ? PR_OK : PR_ENOMEM;
}

int pr_future_last_error(const pr_future *f, pr_err_info *out) {
    if (!f || !out) return PR_EINVAL;
    memset(out, 0, sizeof *out);
    if (f->state != PR_FUTURE_REJECTED) return PR_ESTATE;
    if (f->detail) *out = *f->detail;
    else pr__err_set(out, f->code, 0, "%s", pr_strerror(f->code));
    return PR_OK;
}

void *pr_future_value(const pr_future *f) { return f && f->state == PR_FUTURE_RESOLVED ? f->value : NULL; }

int pr_future_on_free(pr_future *f, void (*free_value)(void *value, void *user_data), void *user_data) {
    if (!f) return PR_EINVAL;
    f->free_value = free_value;
    f->free_data = user_data;
    return PR_OK;
}

/* Unlink w from f's waiters. */
static void pr__future_unwait(pr_future *f, pr__future_fwait *w) {
    if (w->prev) w->prev->next = w->next;
    else f->waiters = w->next;
    if (w->next) w->next->prev = w->prev;
}

int pr_future_await_all(pr_future *const *fs, size_t n, int flags, size_t *failed, int64_t deadline) {
    pr_sched *s;
    pr__future_fwait *ws = NULL;
    pr__future_fgroup g;
    size_t i, first_bad = n, done = 0;
    int rc = PR_OK;
    if (!fs && n) return PR_EINVAL;
    for (i = 0; i < n; i++)
        if (!fs[i]) return PR_EINVAL;
    if (!(s = pr__sched_get())) return PR_ENOMEM;
    memset(&g, 0, sizeof g);
    if (n && (!(ws = (pr__future_fwait *)pr__calloc(n, sizeof *ws)) ||
              !(g.settled = (size_t *)pr__alloc(n * sizeof *g.settled)))) {
        pr__free(ws, n * sizeof *ws);
        return PR_ENOMEM;
    }
    /* note what is settled already; wait on the rest */
    for (i = 0; i < n; i++) {
        pr_future *f = fs[i];
        if (f->state != PR_FUTURE_PENDING) {
            done++;
            if (f->state == PR_FUTURE_REJECTED && i < first_bad) first_bad = i;
            continue;
        }
        ws[i].task = s->cur;
        ws[i].group = &g;
        ws[i].idx = i;
        ws[i].next = f->waiters;
        if (f->waiters) f->waiters->prev = &ws[i];
        f->waiters = &ws[i];
        f->refs++;
    }
    for (;;) {
        size_t k = 0;
        while (k < g.nsettled) { /* each settled future once */
            size_t idx = g.settled[k++];
            done++;
            if (fs[idx]->state == PR_FUTURE_REJECTED && idx < first_bad) {
                first_bad = idx;
                if (flags & PR_AWAIT_FAIL_FAST) break;
            }
        }
        if (k) memmove(g.settled, g.settled + k, (g.nsettled - k) * sizeof *g.settled);
        g.nsettled -= k;
        if (done >= n || ((flags & PR_AWAIT_FAIL_FAST) && first_bad < n)) break;
        if ((rc = pr__sched_park(s, deadline)) != PR_OK) break;
    }
    for (i = 0; i < n; i++) {
        if (!ws[i].task) continue;
        pr__future_unwait(fs[i], &ws[i]);
        pr_future_destroy(fs[i]); /* the waiter's reference */
    }
    pr__free(ws, n * sizeof *ws);
    pr__free(g.settled, n * sizeof *g.settled);
    if (rc != PR_OK) return rc;
    if (first_bad < n) {
        if (failed) *failed = first_bad;
        return fs[first_bad]->code;
    }
    return PR_OK;
}

int pr_future_await(pr_future *f, void **out, int64_t deadline) {
    pr_sched *s;
    pr__future_fwait w;
    int rc = PR_OK;
    if (!f) return PR_EINVAL;
    if (f->state == PR_FUTURE_PENDING) {
        if (!(s = pr__sched_get())) return PR_ENOMEM;
        w.task = s->cur;
        w.group = NULL;
        w.prev = NULL;
        w.next = f->waiters;
        if (f->waiters) f->waiters->prev = &w;
        f->waiters = &w;
        f->refs++;
        while (f->state == PR_FUTURE_PENDING && rc == PR_OK) rc = pr__sched_park(s, deadline);
        pr__future_unwait(f, &w);
        if (f->state == PR_FUTURE_PENDING) {
            pr_future_destroy(f);
            return rc;
        }
        f->refs--; /* settled: the caller still holds its own reference */
    }
    if (f->state == PR_FUTURE_REJECTED) return f->code;
    if (out) *out = f->value;
    return PR_OK;
}

int pr_future_on_cancel(pr_future *f, void (*fn)(void *user_data), void *user_data) {
    if (!f) return PR_EINVAL;
    f->on_cancel = fn;
    f->on_cancel_data = user_data;
    return PR_OK;
}

int pr_future_cancel(pr_future *f) {
    int rc = pr__future_settle(f, PR_FUTURE_REJECTED, NULL, PR_ECANCELED);
    if (rc) return rc;
    if (f->task) pr_cancel(f->task);
    if (f->on_cancel) {
        void (*fn)(void *) = f->on_cancel;
        f->on_cancel = NULL;
        fn(f->on_cancel_data);
    }
    return PR_OK;
}

static int pr__future_task(void *arg) {
    pr_future *f = (pr_future *)arg;
    int r = f->fn(f->user_data);
    f->task = NULL;
    if (f->state == PR_FUTURE_PENDING) {
        if (r >= 0) pr_future_resolve(f, (void *)(intptr_t)r);
        else pr_future_reject(f, r);
    }
    pr_future_destroy(f); /* the task's reference */
    return r;
}

int pr_future_go(pr_future **out, pr_task_fn fn, void *user_data, const pr_spawn_opts *opts) {
    pr_future *f;
    pr_task *t;
    int rc;
    if (!out || !fn) return PR_EINVAL;
    if ((rc = pr_future_create(&f)) != PR_OK) return rc;
    f->fn = fn;
    f->user_data = user_data;
    f->refs = 2; /* the caller's and the task's */
    if ((rc = pr__sched_spawn(&t, pr__future_task, f, opts, PR__SCHED_TF_DETACHED)) != PR_OK) {
        pr__free(f, sizeof *f);
        return rc;
    }
    f->task = t;
    *out = f;
    return PR_OK;
}

/* ==== retry: backoff and jitter, retry runner, server hints, circuit breaker, backoff window ==== >>retry.impl */
/* ---- backoff ---- */
#define PR__RETRY_BACKOFF_SATURATE 9.2e18 /* just below INT64_MAX: a double that converts safely */

static int pr__retry_bad_double(double d) { return d != d || d > 1e300 || d < -1e300; }

int pr_backoff_check(const pr_backoff *b) {
    if (!b || b->strategy < PR_BACKOFF_EXPONENTIAL || b->strategy > PR_BACKOFF_DECORRELATED) return PR_EINVAL;
    if (b->jitter < PR_JITTER_NONE || b->jitter > PR_JITTER_DOWN) return PR_EINVAL;
    if (b->base_ms <= 0 || b->max_ms < 0 || (b->max_ms != PR_BACKOFF_UNCAPPED && b->max_ms < b->base_ms))
        return PR_EINVAL;
    if (pr__retry_bad_double(b->jitter_factor) || pr__retry_bad_double(b->range_min) || pr__retry_bad_double(b->range_max))
        return PR_EINVAL;
    if (b->jitter_factor < 0) return PR_EINVAL;
    if ((b->jitter == PR_JITTER_FACTOR || b->jitter == PR_JITTER_DOWN) && b->jitter_factor > 1) return PR_EINVAL;
    if (b->jitter == PR_JITTER_RANGE && (b->range_min < 0 || b->range_min > b->range_max)) return PR_EINVAL;
    return PR_OK;
}

double pr_backoff_delay(const pr_backoff *b, int attempt, double prev_ms, double r) {
    double cap, d, j;
    if (attempt < 0 || pr_backoff_check(b) != PR_OK) return PR_EINVAL;
    if (!(r >= 0)) r = 0; /* NaN too */
    if (r >= 1) r = 0.99999999999999989;
    cap = b->max_ms == PR_BACKOFF_UNCAPPED ? PR__RETRY_BACKOFF_SATURATE : (double)b->max_ms;
    switch (b->strategy) {
    case PR_BACKOFF_LINEAR:
        d = (double)b->base_ms * ((double)attempt + 1);
        break;
    case PR_BACKOFF_CONSTANT:
        d = (double)b->base_ms;
        break;
    case PR_BACKOFF_DECORRELATED:
        /* the first delay is the base; then uniform(base, 3 * previous) */
        d = (double)b->base_ms;
        if (attempt > 0 && prev_ms > 0) { /* prev_ms is clamped to the cap (inf and NaN included) */
            double hi = 3 * PR__MAX(PR__MIN(prev_ms, cap), d);
            d += r * (hi - d);
        }
        return PR__MIN(d, cap);
    default:
        d = attempt >= 63 ? PR__RETRY_BACKOFF_SATURATE : (double)b->base_ms * (double)((uint64_t)1 << attempt);
        break;
    }
    d = PR__MIN(d, cap);
    j = b->jitter_factor;
    switch (b->jitter) {
    case PR_JITTER_FACTOR:
        if (j > 0) d *= 1 - j + r * j;
        break;
    case PR_JITTER_ADDITIVE:
        if (j > 0) d += r * d * j;
        break;
    case PR_JITTER_RANGE:
        d *= b->range_min + r * (b->range_max - b->range_min);
        break;
    case PR_JITTER_DOWN:
        if (j > 0) d *= 1 - j * r;
        break;
    default:
        break;
    }
    if (!(d > 0)) return 0;
    return PR__MIN(d, cap);
}

/* A delay in ms as whole ms for the scheduler: rounded up (a 0.3 ms delay
   still waits), saturating at PR_FOREVER. */
static int64_t pr__retry_ms_ceil(double ms) {
    int64_t w;
    if (!(ms > 0)) return 0;
    if (ms >= PR__RETRY_BACKOFF_SATURATE) return PR_FOREVER;
    w = (int64_t)ms;
    return (double)w < ms ? w + 1 : w;
}

/* ---- time and chance through the hooks ---- */
/* A number in [0, 1) for jitter: the hooks' random, else pr_random(). */
static double pr__retry_random(const pr_retry_hooks *h) {
    return h->random ? h->random(h->user_data) : pr_random();
}

/* The backoff delay before retry `attempt` in whole ms (pr__retry_ms_ceil; 0 for
   an invalid policy), jittered with a number drawn through the hooks.
   prev_ms, unless NULL, holds the previous fractional delay (for
   PR_BACKOFF_DECORRELATED) and gets this one. The one way the runner, the
   SSE stream, the remote futures and the reporter compute a wait. */
static int64_t pr__retry_delay_ms(const pr_backoff *b, int attempt, double *prev_ms, const pr_retry_hooks *h) {
    double d = pr_backoff_delay(b, attempt, prev_ms ? *prev_ms : 0, pr__retry_random(h));
    if (prev_ms) *prev_ms = d;
    return pr__retry_ms_ceil(d);
}

/* Sleep delay_ms, waking by deadline: the hooks' sleep, else pr_sleep. */
static int pr__retry_hook_sleep(const pr_retry_hooks *h, int64_t delay_ms, int64_t deadline) {
    return h->sleep ? h->sleep(delay_ms, deadline, h->user_data) : pr_sleep(deadline);
}

/* The policy of a request that must not be retried (PR_RETRY_OFF), for the
   modules that run their own retries around the client. */
static PR__MAYBE_UNUSED const pr_retry_policy pr__retry_off = {
    PR_RETRY_OFF, 0, 0, { 0, 0, 0, 0, 0, 0, 0 }, NULL, NULL, NULL, { NULL, NULL, NULL, NULL } };

/* ---- the runner ---- */
int pr_retry_classify_default(int outcome, int64_t *after_ms, void *user_data) {
    PR__UNUSED(after_ms);
    PR__UNUSED(user_data);
    if (outcome >= 0) return PR_RETRY_OK;
    switch (outcome) {
    case PR_ECANCELED: case PR_EINVAL: case PR_ENOMEM: case PR_ELIMIT: case PR_ESTATE: case PR_ENOTSUP:
    case PR_ECIRCUIT:
        return PR_RETRY_FAIL;
    default:
        return PR_RETRY_AGAIN;
    }
}

static const pr_backoff pr__retry_backoff_http = PR_BACKOFF_HTTP;

int pr_retry_begin(pr_retry *st, const pr_retry_policy *policy) {
    pr_retry_policy *p;
    if (!st) return PR_EINVAL;
    memset(st, 0, sizeof *st);
    p = &st->policy;
    if (policy) *p = *policy;
    if (p->max_retries == 0) p->max_retries = 10;
    if (p->max_retries < PR_RETRY_UNLIMITED || p->max_elapsed_ms < 0 || p->progress_timeout_ms < 0) return PR_EINVAL;
    if (p->backoff.base_ms == 0) p->backoff = pr__retry_backoff_http;
    if (pr_backoff_check(&p->backoff) != PR_OK) return PR_EINVAL;
    if (!p->classify) p->classify = pr_retry_classify_default;
    st->start_ms = st->progress_ms = pr_now();
    return PR_OK;
}

void pr_retry_progress(pr_retry *st) {
    if (st) st->progress_ms = pr_now();
}

static int pr__retry_stop(pr_retry *st, int why) {
    st->stop = why;
    return -1;
}

int64_t pr_retry_plan(pr_retry *st, int *outcome, int64_t until) {
    const pr_retry_policy *p;
    int64_t after = -1, delay, now, wake;
    pr_retry_info info;
    int v;
    if (!st || !outcome) return -1;
    p = &st->policy;
    if (pr_is_canceled()) {
        *outcome = PR_ECANCELED;
        return pr__retry_stop(st, PR_RETRY_CANCELED);
    }
    v = p->classify(*outcome, &after, p->user_data);
    if (v == PR_RETRY_OK) {
        pr_retry_progress(st);
        return pr__retry_stop(st, PR_RETRY_DONE);
    }
    if (v != PR_RETRY_AGAIN && v != PR_RETRY_AFTER) return pr__retry_stop(st, PR_RETRY_FATAL);
    if (p->max_retries == PR_RETRY_OFF || (p->max_retries > 0 && st->retries >= p->max_retries))
        return pr__retry_stop(st, PR_RETRY_EXHAUSTED);
    if (v == PR_RETRY_AFTER && after >= 0) {
        delay = after;
    } else {
        delay = pr__retry_delay_ms(&p->backoff, st->retries, &st->prev_delay_ms, &p->hooks);
        v = PR_RETRY_AGAIN;
    }
    now = pr_now();
    wake = pr__time_add(now, delay);
    if (p->max_elapsed_ms > 0 && wake > pr__time_add(st->start_ms, p->max_elapsed_ms))
        return pr__retry_stop(st, PR_RETRY_ELAPSED);
    if (p->progress_timeout_ms > 0 && wake > pr__time_add(st->progress_ms, p->progress_timeout_ms))
        return pr__retry_stop(st, PR_RETRY_STALLED);
    if (wake > until) return pr__retry_stop(st, PR_RETRY_DEADLINE);
    if (p->on_retry) {
        info.retry = st->retries;
        info.outcome = *outcome;
        info.verdict = v;
        info.delay_ms = delay;
        info.elapsed_ms = now - st->start_ms;
        p->on_retry(&info, p->user_data);
    }
    return delay;
}

int pr_retry_sleep(pr_retry *st, int64_t delay_ms, int *outcome, int64_t deadline) {
    const pr_retry_policy *p;
    int64_t wake;
    int rc;
    if (!st || !outcome) return 0;
    p = &st->policy;
    wake = pr_deadline_min(pr_deadline_in(delay_ms), deadline);
    rc = pr__retry_hook_sleep(&p->hooks, delay_ms, wake);
    if (rc == PR_ECANCELED || pr_is_canceled()) {
        *outcome = PR_ECANCELED;
        st->stop = PR_RETRY_CANCELED;
        return 0;
    }
    st->retries++;
    st->last_delay_ms = delay_ms;
    return 1;
}

int pr_retry_next(pr_retry *st, int *outcome, int64_t deadline) {
    int64_t delay = pr_retry_plan(st, outcome, deadline);
    return delay >= 0 && pr_retry_sleep(st, delay, outcome, deadline);
}

int pr_retry_run(const pr_retry_policy *policy, int (*fn)(int attempt, void *user_data), void *user_data,
                 int64_t deadline) {
    pr_retry st;
    int rc;
    if (!fn || pr_retry_begin(&st, policy) != PR_OK) return PR_EINVAL;
    for (;;) {
        rc = fn(st.retries, user_data);
        if (!pr_retry_next(&st, &rc, deadline)) return rc;
    }
}

/* ---- server hints ---- */
int pr_retry_status_retryable(int status) {
    return status == 408 || status == 409 || status == 429 || (status >= 500 && status <= 599);
}

int pr_retry_x_should_retry(const pr_slice *value) {
    pr_slice v;
    if (!value) return -1;
    v = pr_slice_trim(*value);
    if (pr_slice_ieq(v, pr_slice_cstr("true"))) return 1;
    if (pr_slice_ieq(v, pr_slice_cstr("false"))) return 0;
    return -1;
}

int pr_retry_http_should_retry(int status, const pr_slice *x_should_retry) {
    int x;
    if (status >= 200 && status <= 299) return 0;
    x = pr_retry_x_should_retry(x_should_retry);
    if (x >= 0) return x;
    return pr_retry_status_retryable(status);
}

/* A whole-string decimal: [+-] digits [. digits] (or [+-] . digits). */
static int pr__retry_decimal(pr_slice s, double *out) {
    size_t i = 0, digits = 0;
    double v = 0, scale = 1;
    int neg = 0;
    s = pr_slice_trim(s);
    if (i < s.len && (s.ptr[i] == '+' || s.ptr[i] == '-')) neg = s.ptr[i++] == '-';
    for (; i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9'; i++, digits++) v = v * 10 + (s.ptr[i] - '0');
    if (i < s.len && s.ptr[i] == '.') {
        for (i++; i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9'; i++, digits++) {
            scale /= 10;
            v += (s.ptr[i] - '0') * scale;
        }
    }
    if (!digits || i != s.len || pr__retry_bad_double(v)) return PR_EINVAL;
    *out = neg ? -v : v;
    return PR_OK;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm). */
static int64_t pr__retry_days_from_civil(int64_t y, int m, int d) {
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int pr__retry_year_of(int64_t unix_ms) {
    int64_t days = unix_ms / 86400000, y, m, era, doe, yoe, doy, mp;
    if (unix_ms < 0 && unix_ms % 86400000) days--;
    days += 719468;
    era = (days >= 0 ? days : days - 146096) / 146097;
    doe = days - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    m = mp < 10 ? mp + 3 : mp - 9;
    return (int)(y + (m <= 2));
}

/* Read n digits at p as a number, or -1. */
static int pr__retry_digits(const char *p, size_t n) {
    int v = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* A name from a table at p (exact case, as RFC 9110 writes them); returns
   its index or -1; *len receives the name's length. */
static int pr__retry_name(const char *p, size_t avail, const char *const *names, int n, size_t *len) {
    int i;
    for (i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (l <= avail && memcmp(p, names[i], l) == 0) {
            *len = l;
            return i;
        }
    }
    return -1;
}

/* "HH:MM:SS" at p (8 bytes) into seconds of the day, or -1. */
static int pr__retry_hms(const char *p) {
    int h = pr__retry_digits(p, 2), m = pr__retry_digits(p + 3, 2), s = pr__retry_digits(p + 6, 2);
    if (p[2] != ':' || p[5] != ':' || h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 60) return -1;
    return h * 3600 + m * 60 + s;
}

int pr_retry_parse_http_date(pr_slice s, int64_t now_unix_ms, int64_t *out) {
    static const char *const wk[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const wkl[] = { "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday" };
    static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    const char *p;
    size_t n, l;
    int wday, day, month, year, secs;
    int64_t days;
    if (!out) return PR_EINVAL;
    s = pr_slice_trim(s);
    p = s.ptr;
    n = s.len;
    if (!p) return PR_EINVAL;
    if (n == 29 && p[3] == ',') { /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
        wday = pr__retry_name(p, 3, wk, 7, &l);
        day = pr__retry_digits(p + 5, 2);
        month = pr__retry_name(p + 8, 3, mon, 12, &l);
        year = pr__retry_digits(p + 12, 4);
        secs = pr__retry_hms(p + 17);
        if (p[4] != ' ' || p[7] != ' ' || p[11] != ' ' || p[16] != ' ' || memcmp(p + 25, " GMT", 4) != 0)
            return PR_EINVAL;
    } else if (n == 24 && p[3] == ' ') { /* asctime: "Sun Nov  6 08:49:37 1994" */
        wday = pr__retry_name(p, 3, wk, 7, &l);
        month = pr__retry_name(p + 4, 3, mon, 12, &l);
        day = p[8] == ' ' ? pr__retry_digits(p + 9, 1) : pr__retry_digits(p + 8, 2);
        secs = pr__retry_hms(p + 11);
        year = pr__retry_digits(p + 20, 4);
        if (p[7] != ' ' || p[10] != ' ' || p[19] != ' ') return PR_EINVAL;
    } else { /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
        int yy, now_year;
        wday = pr__retry_name(p, n, wkl, 7, &l);
        if (wday < 0 || n != l + 24 || p[l] != ',' || p[l + 1] != ' ') return PR_EINVAL;
        p += l + 2;
        day = pr__retry_digits(p, 2);
        month = pr__retry_name(p + 3, 3, mon, 12, &l);
        yy = pr__retry_digits(p + 7, 2);
        secs = pr__retry_hms(p + 10);
        if (p[2] != '-' || p[6] != '-' || p[9] != ' ' || memcmp(p + 18, " GMT", 4) != 0 || yy < 0) return PR_EINVAL;
        /* two-digit years: the nearest one that is not more than 50 years ahead */
        now_year = pr__retry_year_of(now_unix_ms);
        year = now_year - ((now_year % 100) + 100) % 100 + yy;
        if (year > now_year + 50) year -= 100;
        else if (year + 100 <= now_year + 50) year += 100;
    }
    /* years past 9999 (RFC 850 near a far-future wall clock) would overflow the ms */
    if (wday < 0 || month < 0 || day < 1 || year < 0 || year > 9999 || secs < 0 || day > mdays[month])
        return PR_EINVAL;
    if (month == 1 && day == 29 && !((year % 4 == 0 && year % 100 != 0) || year % 400 == 0)) return PR_EINVAL;
    days = pr__retry_days_from_civil(year, month + 1, day);
    if (((days % 7) + 11) % 7 != wday) return PR_EINVAL; /* 1970-01-01 was a Thursday (4) */
    *out = (days * 86400 + secs) * 1000;
    return PR_OK;
}

int pr_retry_hint_ms(const pr_slice *retry_after_ms, const pr_slice *retry_after, int64_t now_unix_ms,
                     int64_t max_ms, int64_t *out) {
    double ms = 0;
    int have = 0;
    if (retry_after_ms && pr__retry_decimal(*retry_after_ms, &ms) == PR_OK) {
        have = 1;
    } else if (retry_after) {
        double secs;
        int64_t when;
        if (pr__retry_decimal(*retry_after, &secs) == PR_OK) {
            ms = secs * 1000;
            have = 1;
        } else if (pr_retry_parse_http_date(*retry_after, now_unix_ms, &when) == PR_OK) {
            ms = (double)when - (double)now_unix_ms; /* in doubles: any clock, no overflow */
            have = 1;
        }
    }
    if (!have || !(ms > 0)) return 0;
    if (max_ms <= 0) max_ms = 60000;
    if (out) *out = ms < (double)max_ms ? pr__retry_ms_ceil(ms) : max_ms;
    return 1;
}

/* ---- circuit breaker ---- */
struct pr_breaker {
    struct pr_breaker *next; /* registry list */
    pr_breaker_opts o;       /* resolved */
    int state;               /* stored state (open is read half-open once due) */
    int failures, half_open_calls;
    int64_t opened_at;
    size_t name_len;         /* the name's bytes (NUL-terminated) follow the struct */
};

struct pr_breaker_registry {
    pr_breaker *list;
};

static const char *pr__retry_breaker_name(const pr_breaker *b) { return (const char *)(b + 1); }

static void pr__retry_breaker_to(pr_breaker *b, int to) {
    const pr_breaker_observer *ob = &b->o.observer;
    int from = b->state;
    if (from == to) return;
    b->state = to;
    if (to == PR_BREAKER_OPEN) b->opened_at = pr_now();
    if (to != PR_BREAKER_CLOSED) b->half_open_calls = 0;
    if (to == PR_BREAKER_CLOSED) b->failures = 0;
    if (ob->on_change) ob->on_change(pr__retry_breaker_name(b), from, to, ob->user_data);
}

int pr_breaker_create(pr_breaker **out, const char *name, const pr_breaker_opts *opts) {
    pr_breaker *b;
    size_t n = name ? strlen(name) : 0;
    if (out) *out = NULL;
    if (!out || (opts && (opts->failure_threshold < 0 || opts->reset_timeout_ms < 0 || opts->half_open_max_calls < 0)))
        return PR_EINVAL;
    if (!(b = (pr_breaker *)pr__calloc(1, sizeof *b + n + 1))) return PR_ENOMEM;
    if (opts) b->o = *opts;
    b->o.failure_threshold = PR__DEF(b->o.failure_threshold, 5);
    b->o.reset_timeout_ms = PR__DEF(b->o.reset_timeout_ms, 30000);
    b->o.half_open_max_calls = PR__DEF(b->o.half_open_max_calls, 1);
    b->name_len = n;
    if (n) memcpy(b + 1, name, n);
    *out = b;
    return PR_OK;
}

void pr_breaker_destroy(pr_breaker *b) {
    if (b) pr__free(b, sizeof *b + b->name_len + 1);
}

int pr_breaker_state(pr_breaker *b) {
    if (!b) return PR_EINVAL;
    if (b->state == PR_BREAKER_OPEN && pr_now() - b->opened_at >= b->o.reset_timeout_ms)
        pr__retry_breaker_to(b, PR_BREAKER_HALF_OPEN);
    return b->state;
}

int pr_breaker_admit(pr_breaker *b) {
    int st = pr_breaker_state(b);
    if (st < 0) return st;
    if (st == PR_BREAKER_CLOSED) return PR_OK;
    if (st == PR_BREAKER_HALF_OPEN && b->half_open_calls < b->o.half_open_max_calls) {
        b->half_open_calls++;
        return PR_OK;
    }
    return PR_ECIRCUIT;
}

void pr_breaker_record(pr_breaker *b, int outcome) {
    int st = pr_breaker_state(b);
    if (st < 0) return;
    if (outcome == PR_BREAKER_IGNORE) {
        if (st == PR_BREAKER_HALF_OPEN && b->half_open_calls > 0) b->half_open_calls--;
    } else if (outcome == PR_BREAKER_SUCCESS) {
        if (st == PR_BREAKER_CLOSED) b->failures = 0;
        else if (st == PR_BREAKER_HALF_OPEN) pr__retry_breaker_to(b, PR_BREAKER_CLOSED);
    } else if (st == PR_BREAKER_CLOSED) {
        if (++b->failures >= b->o.failure_threshold) pr__retry_breaker_to(b, PR_BREAKER_OPEN);
    } else if (st == PR_BREAKER_HALF_OPEN) {
        pr__retry_breaker_to(b, PR_BREAKER_OPEN); /* a failed probe: open again, a new opened_at */
    }
}

int pr_breaker_failures(const pr_breaker *b) { return b ? b->failures : 0; }

void pr_breaker_reset(pr_breaker *b) {
    if (!b) return;
    pr__retry_breaker_to(b, PR_BREAKER_CLOSED);
    b->failures = 0;
    b->half_open_calls = 0;
}

int pr_breaker_registry_create(pr_breaker_registry **out) {
    if (!out) return PR_EINVAL;
    *out = (pr_breaker_registry *)pr__calloc(1, sizeof **out);
    return *out ? PR_OK : PR_ENOMEM;
}

void pr_breaker_registry_destroy(pr_breaker_registry *r) {
    if (!r) return;
    while (r->list) {
        pr_breaker *b = r->list;
        r->list = b->next;
        pr_breaker_destroy(b);
    }
    pr__free(r, sizeof *r);
}

static pr_breaker *pr__retry_breaker_find(pr_breaker_registry *r, const char *name) {
    pr_breaker *b;
    size_t n = strlen(name);
    for (b = r->list; b; b = b->next)
        if (b->name_len == n && memcmp(b + 1, name, n) == 0) return b;
    return NULL;
}

int pr_breaker_registry_get(pr_breaker_registry *r, const char *name, const pr_breaker_opts *opts,
                            pr_breaker **out) {
    pr_breaker *b;
    int rc;
    if (out) *out = NULL;
    if (!r || !name || !out) return PR_EINVAL;
    if ((b = pr__retry_breaker_find(r, name)) == NULL) {
        if ((rc = pr_breaker_create(&b, name, opts)) != PR_OK) return rc;
        b->next = r->list;
        r->list = b;
    }
    *out = b;
    return PR_OK;
}

int pr_breaker_registry_state(pr_breaker_registry *r, const char *name) {
    pr_breaker *b;
    if (!r || !name) return PR_EINVAL;
    b = pr__retry_breaker_find(r, name);
    return b ? pr_breaker_state(b) : PR_BREAKER_CLOSED;
}

/* ---- backoff window ---- */
typedef struct pr__retry_window_key {
    struct pr__retry_window_key *next;
    int64_t until;   /* deadline on pr_now()'s clock */
    pr__sync_fifo waiters;
    size_t key_len;  /* key bytes follow */
} pr__retry_window_key;

struct pr_backoff_window {
    pr__retry_window_key *keys;
};

int pr_backoff_window_create(pr_backoff_window **out) {
    if (!out) return PR_EINVAL;
    *out = (pr_backoff_window *)pr__calloc(1, sizeof **out);
    return *out ? PR_OK : PR_ENOMEM;
}

static void pr__retry_window_key_free(pr__retry_window_key *k) { pr__free(k, sizeof *k + k->key_len); }

void pr_backoff_window_destroy(pr_backoff_window *w) {
    if (!w) return;
    while (w->keys) {
        pr__retry_window_key *k = w->keys;
        w->keys = k->next;
        pr__sync_fifo_wake_all(&k->waiters, 1);
        pr__retry_window_key_free(k);
    }
    pr__free(w, sizeof *w);
}

/* The entry of key; created when create is set. Creating also drops the
   entries that ended a minute ago and that nobody waits on, so the list
   holds recent windows only (a lookup never reads the clock). */
static pr__retry_window_key *pr__retry_window_find(pr_backoff_window *w, const char *key, int create) {
    pr__retry_window_key **pp = &w->keys, *k;
    size_t n;
    int64_t now = create ? pr_now() : 0;
    if (!key) key = "";
    n = strlen(key);
    while ((k = *pp) != NULL) {
        if (k->key_len == n && memcmp(k + 1, key, n) == 0) return k;
        if (create && pr__time_add(k->until, 60000) <= now && !k->waiters.n) {
            *pp = k->next;
            pr__retry_window_key_free(k);
            continue;
        }
        pp = &k->next;
    }
    if (!create || !(k = (pr__retry_window_key *)pr__calloc(1, sizeof *k + n))) return NULL;
    k->key_len = n;
    memcpy(k + 1, key, n);
    k->next = w->keys;
    w->keys = k;
    return k;
}

int pr_backoff_window_set(pr_backoff_window *w, const char *key, int64_t duration_ms) {
    pr__retry_window_key *k;
    int64_t until;
    if (!w || duration_ms < 0) return PR_EINVAL;
    if (!(k = pr__retry_window_find(w, key, 1))) return PR_ENOMEM;
    until = pr_deadline_in(duration_ms);
    if (until > k->until) k->until = until;
    return PR_OK;
}

int64_t pr_backoff_window_until(pr_backoff_window *w, const char *key) {
    pr__retry_window_key *k = w ? pr__retry_window_find(w, key, 0) : NULL;
    return k ? k->until : 0;
}

int64_t pr_backoff_window_remaining(pr_backoff_window *w, const char *key) {
    int64_t until = pr_backoff_window_until(w, key), now;
    if (!until) return 0; /* no window: no clock read on the hot path */
    now = pr_now();
    if (until <= now) return 0;
    return until > pr__time_add(now, PR_FOREVER) ? PR_FOREVER : until - now; /* a FOREVER window, any clock */
}

int pr_backoff_window_wait(pr_backoff_window *w, const char *key, int64_t deadline) {
    if (!w) return PR_EINVAL;
    if (pr_is_canceled()) return PR_ECANCELED;
    for (;;) {
        pr__retry_window_key *k = pr__retry_window_find(w, key, 0);
        pr__sync_waiter me;
        int rc;
        if (!k || k->until <= pr_now()) return PR_OK;
        if (deadline <= pr_now()) return PR_ETIMEDOUT;
        memset(&me, 0, sizeof me);
        rc = pr__sync_fifo_park(&k->waiters, &me, PR__MIN(k->until, deadline));
        /* PR_OK: cleared; PR_ETIMEDOUT: the window's end or the deadline.
           Either way look again: another task may have extended it. */
        if (rc != PR_OK && rc != PR_ETIMEDOUT) return rc;
    }
}

void pr_backoff_window_clear(pr_backoff_window *w, const char *key) {
    pr__retry_window_key *k = w ? pr__retry_window_find(w, key, 0) : NULL;
    if (!k) return;
    k->until = 0;
    pr__sync_fifo_wake_all(&k->waiters, 0);
}

/* ==== net: non-blocking DNS, TCP connect and listen, the pr_conn byte stream ==== >>net.impl */
ptrdiff_t pr_conn_read(pr_conn *c, void *buf, size_t n, int64_t deadline) {
    if (!c || !buf || !n) return PR_EINVAL;
    return c->ops->read(c, buf, n, deadline);
}

int pr_conn_write(pr_conn *c, const void *buf, size_t n, int64_t deadline) {
    const char *p = (const char *)buf;
    if (!c || (!buf && n)) return PR_EINVAL;
    while (n) {
        ptrdiff_t k = c->ops->write(c, p, n, deadline);
        if (k < 0) return (int)k;
        p += k;
        n -= (size_t)k;
    }
    return PR_OK;
}

int pr_conn_shutdown(pr_conn *c, int64_t deadline) {
    if (!c) return PR_EINVAL;
    return c->ops->shutdown(c, deadline);
}

void pr_conn_destroy(pr_conn *c) {
    if (c) c->ops->destroy(c);
}

int pr_conn_last_error(const pr_conn *c, pr_err_info *out) {
    if (!c || !out) return PR_EINVAL;
    *out = c->err;
    return PR_OK;
}

/* ---- sockets as pr_conn ---- */
typedef struct pr__net_sock {
    pr_conn base;
    int fd;
} pr__net_sock;

/* Record a failure in c->err and return its code. */
static int pr__net_fail(pr_conn *c, int code, int sys_errno, const char *what) {
    if (code == PR_EIO)
        return pr__err_set(&c->err, code, sys_errno, "%s: %s", what, strerror(sys_errno));
    return pr__err_set(&c->err, code, 0, "%s: %s", what, pr_strerror(code));
}

static ptrdiff_t pr__net_sock_read(pr_conn *c, void *buf, size_t n, int64_t deadline) {
    pr__net_sock *k = (pr__net_sock *)(void *)c;
    ptrdiff_t r = pr_fd_read(k->fd, buf, n, deadline);
    /* PR_ECLOSED is the end of the stream (or c destroyed by another task): c->err is left alone */
    if (r < 0 && r != PR_ECLOSED) pr__net_fail(c, (int)r, r == PR_EIO ? errno : 0, "read");
    return r;
}

static ptrdiff_t pr__net_sock_write(pr_conn *c, const void *buf, size_t n, int64_t deadline) {
    pr__net_sock *k = (pr__net_sock *)(void *)c;
    ptrdiff_t r = pr_fd_write(k->fd, buf, n, deadline);
    if (r < 0 && r != PR_ECLOSED) pr__net_fail(c, (int)r, r == PR_EIO ? errno : 0, "write");
    return r;
}

static int pr__net_sock_shutdown(pr_conn *c, int64_t deadline) {
    pr__net_sock *k = (pr__net_sock *)(void *)c;
    PR__UNUSED(deadline);
    if (pr_is_canceled()) return pr__net_fail(c, PR_ECANCELED, 0, "shutdown");
    if (shutdown(k->fd, SHUT_WR) != 0 && errno != ENOTCONN) return pr__net_fail(c, PR_EIO, errno, "shutdown");
    return PR_OK;
}

static void pr__net_sock_destroy(pr_conn *c) {
    pr__net_sock *k = (pr__net_sock *)(void *)c;
    pr_fd_forget(k->fd);
    close(k->fd);
    pr__free(k, sizeof *k);
}

static const pr_conn_ops pr__net_sock_ops = { pr__net_sock_read, pr__net_sock_write, pr__net_sock_shutdown,
                                              pr__net_sock_destroy };

/* Wait until a read or a write on c (kinds: PR_WAIT_READ, PR_WAIT_WRITE or
   both) may make progress, so a layer above (TLS) can wait on both
   directions while a write is stuck. Sockets only: PR_ENOTSUP otherwise. */
PR__MAYBE_UNUSED static int pr__net_conn_wait(pr_conn *c, int kinds, int64_t deadline) {
    if (c->ops != &pr__net_sock_ops) return PR_ENOTSUP;
    return pr_fd_wait(((pr__net_sock *)(void *)c)->fd, kinds, deadline);
}

/* Whether c is known to have nothing to read: a plain socket that was read
   dry and that the poller has not reported readable (data, EOF, reset)
   since. The answer may be stale by whatever arrived after the last poll,
   so a caller must cope with a connection that turns out dead; it saves
   the probe read that would tell. */
PR__MAYBE_UNUSED static int pr__net_conn_known_idle(pr_conn *c) {
    pr_sched *s = pr__sched_tls;
    int fd;
    if (!c || c->ops != &pr__net_sock_ops || !s) return 0;
    fd = ((pr__net_sock *)(void *)c)->fd;
    if (fd < 0 || (size_t)fd >= s->nfds) return 0;
    return s->fds[fd].registered && s->fds[fd].rd_idle && !s->fds[fd].rd_hup;
}

/* TCP keep-alive probes after idle_s idle seconds, every 10 s, 6 tries. */
static void pr__net_keepalive(int fd, int idle_s) {
    int one = 1, intvl = 10, cnt = 6;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
#if defined(TCP_KEEPIDLE)
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
#elif defined(TCP_KEEPALIVE)
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPALIVE, &idle_s, sizeof idle_s); /* macOS */
#endif
#if defined(TCP_KEEPINTVL) && defined(TCP_KEEPCNT)
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
#else
    PR__UNUSED(intvl);
    PR__UNUSED(cnt);
#endif
}

static int pr__net_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -1;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return -1;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    return 0;
}

int pr_conn_from_fd(pr_conn **out, int fd) {
    pr__net_sock *k;
    int one = 1;
    if (!out || fd < 0) return PR_EINVAL;
    k = (pr__net_sock *)pr__calloc(1, sizeof *k); /* first: a failure leaves the fd untouched */
    if (!k) return PR_ENOMEM;
    if (pr__net_nonblock(fd) != 0) {
        int e = errno;
        pr__free(k, sizeof *k);
        errno = e; /* for a caller that reports it */
        return PR_EIO;
    }
    pr_fd_forget(fd); /* a slot left by an earlier owner of this fd number starts fresh */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* fails harmlessly if not TCP */
#ifdef SO_NOSIGPIPE
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    k->base.ops = &pr__net_sock_ops;
    k->fd = fd;
    *out = &k->base;
    return PR_OK;
}

/* ---- in-memory pipe ---- */
#define PR__NET_PIPE_CAP 65536

/* One direction: a ring buffer, its shut flag and the parked tasks. */
typedef struct pr__net_dir {
    unsigned char *ring;
    size_t head, len;
    int shut;               /* the writer shut down or went away */
    int gone;               /* the reader went away */
    pr_task *reader, *writer;
} pr__net_dir;

typedef struct pr__net_pipe pr__net_pipe;

typedef struct pr__net_pipe_end {
    pr_conn base;
    pr__net_pipe *p;
    int side;               /* reads dir[side], writes dir[1 - side] */
    int destroyed;          /* pr_conn_destroy ran while a task was inside */
} pr__net_pipe_end;

struct pr__net_pipe {
    pr__net_pipe_end ends[2];
    pr__net_dir dir[2];
    size_t max_chunk;
    int live;               /* ends not destroyed */
    int busy;               /* tasks inside a read or write: memory stays until they leave */
};

static void pr__net_wake(pr_task **t) {
    if (*t) pr__sched_wake(*t, PR_OK);
}

/* Park the running task in *slot until woken, the deadline or cancel. */
static int pr__net_park_on(pr_task **slot, int64_t deadline) {
    pr_sched *s = pr__sched_get();
    int rc;
    if (!s) return PR_ENOMEM;
    if (*slot && (*slot)->state == PR__SCHED_T_PARKED) return PR_ESTATE;
    *slot = s->cur;
    rc = pr__sched_park(s, deadline);
    if (*slot == s->cur) *slot = NULL;
    return rc;
}

static void pr__net_pipe_free(pr__net_pipe *p) {
    pr__free(p->dir[0].ring, PR__NET_PIPE_CAP);
    pr__free(p->dir[1].ring, PR__NET_PIPE_CAP);
    pr__free(p, sizeof *p);
}

/* A task leaves a read or write: the last one out frees a fully destroyed pipe. */
static ptrdiff_t pr__net_pipe_leave(pr__net_pipe *p, ptrdiff_t rc) {
    if (--p->busy == 0 && p->live == 0) pr__net_pipe_free(p);
    return rc;
}

static ptrdiff_t pr__net_pipe_read_in(pr_conn *c, void *buf, size_t n, int64_t deadline) {
    pr__net_pipe_end *e = (pr__net_pipe_end *)(void *)c;
    pr__net_dir *d = &e->p->dir[e->side];
    size_t k, first;
    if (pr_is_canceled()) return pr__net_fail(c, PR_ECANCELED, 0, "read");
    while (d->len == 0) {
        int rc;
        if (e->destroyed) return PR_ECLOSED;
        if (d->shut) return pr__net_fail(c, PR_ECLOSED, 0, "read");
        if ((rc = pr__net_park_on(&d->reader, deadline)) != PR_OK) return pr__net_fail(c, rc, 0, "read");
    }
    k = PR__MIN(n, d->len);
    if (e->p->max_chunk) k = PR__MIN(k, e->p->max_chunk);
    first = PR__MIN(k, PR__NET_PIPE_CAP - d->head);
    memcpy(buf, d->ring + d->head, first);
    memcpy((unsigned char *)buf + first, d->ring, k - first);
    d->head = (d->head + k) % PR__NET_PIPE_CAP;
    d->len -= k;
    pr__net_wake(&d->writer);
    return (ptrdiff_t)k;
}

static ptrdiff_t pr__net_pipe_write_in(pr_conn *c, const void *buf, size_t n, int64_t deadline) {
    pr__net_pipe_end *e = (pr__net_pipe_end *)(void *)c;
    pr__net_dir *d = &e->p->dir[1 - e->side];
    size_t k, tail, first;
    if (pr_is_canceled()) return pr__net_fail(c, PR_ECANCELED, 0, "write");
    for (;;) {
        int rc;
        if (e->destroyed) return PR_ECLOSED;
        if (d->shut || d->gone) return pr__net_fail(c, PR_ECLOSED, 0, "write");
        if (d->len < PR__NET_PIPE_CAP) break;
        if ((rc = pr__net_park_on(&d->writer, deadline)) != PR_OK) return pr__net_fail(c, rc, 0, "write");
    }
    k = PR__MIN(n, PR__NET_PIPE_CAP - d->len);
    tail = (d->head + d->len) % PR__NET_PIPE_CAP;
    first = PR__MIN(k, PR__NET_PIPE_CAP - tail);
    memcpy(d->ring + tail, buf, first);
    memcpy(d->ring, (const unsigned char *)buf + first, k - first);
    d->len += k;
    pr__net_wake(&d->reader);
    return (ptrdiff_t)k;
}

static ptrdiff_t pr__net_pipe_read(pr_conn *c, void *buf, size_t n, int64_t deadline) {
    pr__net_pipe *p = ((pr__net_pipe_end *)(void *)c)->p;
    p->busy++;
    return pr__net_pipe_leave(p, pr__net_pipe_read_in(c, buf, n, deadline));
}

static ptrdiff_t pr__net_pipe_write(pr_conn *c, const void *buf, size_t n, int64_t deadline) {
    pr__net_pipe *p = ((pr__net_pipe_end *)(void *)c)->p;
    p->busy++;
    return pr__net_pipe_leave(p, pr__net_pipe_write_in(c, buf, n, deadline));
}

static int pr__net_pipe_shutdown(pr_conn *c, int64_t deadline) {
    pr__net_pipe_end *e = (pr__net_pipe_end *)(void *)c;
    pr__net_dir *d = &e->p->dir[1 - e->side];
    PR__UNUSED(deadline);
    if (pr_is_canceled()) return pr__net_fail(c, PR_ECANCELED, 0, "shutdown");
    d->shut = 1;
    pr__net_wake(&d->reader);
    return PR_OK;
}

static void pr__net_pipe_destroy(pr_conn *c) {
    pr__net_pipe_end *e = (pr__net_pipe_end *)(void *)c;
    pr__net_pipe *p = e->p;
    pr__net_dir *out = &p->dir[1 - e->side], *in = &p->dir[e->side];
    e->destroyed = 1;
    out->shut = 1;
    in->gone = 1;
    pr__net_wake(&out->reader);
    pr__net_wake(&in->writer);
    pr__net_wake(&in->reader);  /* tasks parked on this very end */
    pr__net_wake(&out->writer);
    if (--p->live == 0 && p->busy == 0) pr__net_pipe_free(p);
}

static const pr_conn_ops pr__net_pipe_ops = { pr__net_pipe_read, pr__net_pipe_write, pr__net_pipe_shutdown,
                                              pr__net_pipe_destroy };

int pr_conn_pipe(pr_conn **a, pr_conn **b, size_t max_chunk) {
    pr__net_pipe *p;
    int i;
    if (!a || !b) return PR_EINVAL;
    p = (pr__net_pipe *)pr__calloc(1, sizeof *p);
    if (!p) return PR_ENOMEM;
    p->dir[0].ring = (unsigned char *)pr__alloc(PR__NET_PIPE_CAP);
    p->dir[1].ring = (unsigned char *)pr__alloc(PR__NET_PIPE_CAP);
    if (!p->dir[0].ring || !p->dir[1].ring) {
        pr__free(p->dir[0].ring, PR__NET_PIPE_CAP);
        pr__free(p->dir[1].ring, PR__NET_PIPE_CAP);
        pr__free(p, sizeof *p);
        return PR_ENOMEM;
    }
    for (i = 0; i < 2; i++) {
        p->ends[i].base.ops = &pr__net_pipe_ops;
        p->ends[i].p = p;
        p->ends[i].side = i;
    }
    p->max_chunk = max_chunk;
    p->live = 2;
    *a = &p->ends[0].base;
    *b = &p->ends[1].base;
    return PR_OK;
}

/* ---- addresses ---- */
#define PR__NET_MAX_ADDRS 16
#define PR__NET_HOST_MAX 256

/* Parse a numeric address, brackets allowed ("[::1]"). 1 if numeric. */
static int pr__net_parse_ip(const char *s, size_t len, pr_addr *a) {
    char tmp[64];
    memset(a, 0, sizeof *a);
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        s++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof tmp) return 0;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    if (inet_pton(AF_INET, tmp, a->ip) == 1) {
        a->family = AF_INET;
        return 1;
    }
    if (inet_pton(AF_INET6, tmp, a->ip) == 1) {
        a->family = AF_INET6;
        return 1;
    }
    return 0;
}

/* "addr" or "addr:port" or "[v6]:port"; *port is left alone without one. */
static int pr__net_parse_ip_port(const char *s, pr_addr *a, int *port) {
    size_t len = strlen(s);
    const char *colon = strrchr(s, ':');
    if (pr__net_parse_ip(s, len, a)) return 1;
    if (colon && colon[1] &&
        ((s[0] == '[' && colon > s && colon[-1] == ']') || (s[0] != '[' && !memchr(s, ':', (size_t)(colon - s))))) {
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (*end || p <= 0 || p > 65535) return 0;
        if (!pr__net_parse_ip(s, (size_t)(colon - s), a)) return 0;
        *port = (int)p;
        return 1;
    }
    return 0;
}

static socklen_t pr__net_to_sockaddr(const pr_addr *a, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    if (a->family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)(void *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(a->port);
        memcpy(&in->sin_addr, a->ip, 4);
        return (socklen_t)sizeof *in;
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(a->port);
        memcpy(&in6->sin6_addr, a->ip, 16);
        in6->sin6_scope_id = a->scope_id;
        return (socklen_t)sizeof *in6;
    }
}

/* "127.0.0.1:80" or "[::1]:80" into buf. */
static const char *pr__net_fmt(const pr_addr *a, char *buf, size_t n) {
    char ip[64];
    if (!inet_ntop(a->family, a->ip, ip, sizeof ip)) snprintf(ip, sizeof ip, "?");
    snprintf(buf, n, a->family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, (unsigned)a->port);
    return buf;
}

static int pr__net_host_eq(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = *a, y = *b;
        if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
        if (x != y) return 0;
    }
    return *a == *b;
}

/* Append a to v (deduplicated) if it has the wanted family. */
static void pr__net_add(pr_addr *v, size_t *n, const pr_addr *a, int family) {
    size_t i;
    if (*n >= PR__NET_MAX_ADDRS || (family && a->family != family)) return;
    for (i = 0; i < *n; i++)
        if (v[i].family == a->family && v[i].port == a->port && memcmp(v[i].ip, a->ip, 16) == 0) return;
    v[(*n)++] = *a;
}

static int pr__net_list_make(pr_addrlist **out, const pr_addr *v, size_t n) {
    pr_addrlist *l = (pr_addrlist *)pr__alloc(sizeof *l + n * sizeof(pr_addr));
    if (!l) return PR_ENOMEM;
    l->count = n;
    l->addrs = (pr_addr *)(void *)(l + 1);
    memcpy(l->addrs, v, n * sizeof *v);
    *out = l;
    return PR_OK;
}

void pr_addrlist_destroy(pr_addrlist *l) {
    if (l) pr__free(l, sizeof *l + l->count * sizeof(pr_addr));
}

/* ---- process-wide DNS state: override table, cache, helper pool ---- */
static pthread_mutex_t pr__net_dns_mu = PTHREAD_MUTEX_INITIALIZER;

typedef struct pr__net_override {
    char host[PR__NET_HOST_MAX];
    uint16_t port;
    int n;
    pr_addr addrs[4];
    int ports[4];           /* -1 = the requested port */
} pr__net_override;
static pr__net_override pr__net_overrides[16];

int pr_dns_override(const char *host, uint16_t port, const char *addr) {
    pr_addr a;
    int p = -1, i, rc = PR_OK;
    pr__net_override *free_slot = NULL, *o = NULL;
    if (host && strlen(host) >= PR__NET_HOST_MAX) return PR_EINVAL;
    if (addr && !pr__net_parse_ip_port(addr, &a, &p)) return PR_EINVAL;
    pthread_mutex_lock(&pr__net_dns_mu);
    for (i = 0; i < 16; i++) {
        pr__net_override *e = &pr__net_overrides[i];
        if (!host) e->n = 0;
        else if (e->n && e->port == port && pr__net_host_eq(e->host, host)) o = e;
        else if (!e->n && !free_slot) free_slot = e;
    }
    if (host && !addr) {
        if (o) o->n = 0;
    } else if (host) {
        if (!o && free_slot) {
            o = free_slot;
            snprintf(o->host, sizeof o->host, "%s", host);
            o->port = port;
        }
        if (!o || o->n == 4) {
            rc = PR_ELIMIT;
        } else {
            o->addrs[o->n] = a;
            o->ports[o->n++] = p;
        }
    }
    pthread_mutex_unlock(&pr__net_dns_mu);
    return rc;
}

/* The override for host:port into v; 1 if there was one. Exact port first. */
static int pr__net_override_find(const char *host, uint16_t port, int family, pr_addr *v, size_t *n) {
    int i, j, pass, found = 0;
    pthread_mutex_lock(&pr__net_dns_mu);
    for (pass = 0; pass < 2 && !found; pass++) {
        for (i = 0; i < 16 && !found; i++) {
            pr__net_override *e = &pr__net_overrides[i];
            if (!e->n || e->port != (pass == 0 ? port : 0) || !pr__net_host_eq(e->host, host)) continue;
            found = 1;
            for (j = 0; j < e->n; j++) {
                pr_addr a = e->addrs[j];
                a.port = e->ports[j] >= 0 ? (uint16_t)e->ports[j] : port;
                pr__net_add(v, n, &a, family);
            }
        }
    }
    pthread_mutex_unlock(&pr__net_dns_mu);
    return found;
}

/* Positive cache: host + family -> addresses (ports ignored). */
#define PR__NET_CACHE_N 32
#define PR__NET_CACHE_MS 30000
typedef struct pr__net_cached {
    char host[PR__NET_HOST_MAX];
    int family;
    int64_t expires;
    size_t n;
    pr_addr addrs[PR__NET_MAX_ADDRS];
} pr__net_cached;
static pr__net_cached pr__net_cache[PR__NET_CACHE_N];

static int pr__net_cache_get(const char *host, int family, uint16_t port, pr_addr *v, size_t *n) {
    int i, hit = 0;
    int64_t now = pr_now();
    pthread_mutex_lock(&pr__net_dns_mu);
    for (i = 0; i < PR__NET_CACHE_N; i++) {
        pr__net_cached *c = &pr__net_cache[i];
        size_t j;
        if (!c->n || c->family != family || c->expires <= now || !pr__net_host_eq(c->host, host)) continue;
        for (j = 0; j < c->n; j++) {
            v[j] = c->addrs[j];
            v[j].port = port;
        }
        *n = c->n;
        hit = 1;
        break;
    }
    pthread_mutex_unlock(&pr__net_dns_mu);
    return hit;
}

static void pr__net_cache_put(const char *host, int family, const pr_addr *v, size_t n) {
    int i, victim = 0;
    pthread_mutex_lock(&pr__net_dns_mu);
    for (i = 0; i < PR__NET_CACHE_N; i++) { /* the same name, else the entry expiring first */
        pr__net_cached *c = &pr__net_cache[i];
        if (c->n && c->family == family && pr__net_host_eq(c->host, host)) {
            victim = i;
            break;
        }
        if (c->expires < pr__net_cache[victim].expires) victim = i;
    }
    snprintf(pr__net_cache[victim].host, PR__NET_HOST_MAX, "%s", host);
    pr__net_cache[victim].family = family;
    pr__net_cache[victim].expires = pr_deadline_in(PR__NET_CACHE_MS);
    pr__net_cache[victim].n = n;
    memcpy(pr__net_cache[victim].addrs, v, n * sizeof *v);
    pthread_mutex_unlock(&pr__net_dns_mu);
}

#ifdef PRISTINE_TESTING
static PR__MAYBE_UNUSED int pr__net_test_dns_delay_ms; /* helpers sleep this long before getaddrinfo */
static PR__MAYBE_UNUSED int pr__net_test_dns_offline;  /* helpers answer EAI_NONAME without asking: no DNS traffic */
static PR__MAYBE_UNUSED long pr__net_test_dns_jobs;     /* lookups handed to helpers and not yet freed */
static long pr__net_test_dns_cache_hits;
static PR__MAYBE_UNUSED void pr__net_test_dns_cache_clear(void) {
    pthread_mutex_lock(&pr__net_dns_mu);
    memset(pr__net_cache, 0, sizeof pr__net_cache);
    pthread_mutex_unlock(&pr__net_dns_mu);
}
#endif

/* getaddrinfo's answer into v. Returns the gai code (0 on success). */
static int pr__net_gai(const char *host, int family, pr_addr *v, size_t *n, int *err) {
    struct addrinfo hints, *res = NULL, *ai;
    int rc;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = family ? family : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    *n = 0;
#ifdef PRISTINE_TESTING
    if (__atomic_load_n(&pr__net_test_dns_offline, __ATOMIC_SEQ_CST)) {
        *err = 0;
        return EAI_NONAME;
    }
#endif
    rc = getaddrinfo(host, NULL, &hints, &res);
    *err = errno;
    if (rc != 0) return rc;
    for (ai = res; ai; ai = ai->ai_next) {
        pr_addr a;
        memset(&a, 0, sizeof a);
        if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in)) {
            a.family = AF_INET;
            memcpy(a.ip, &((struct sockaddr_in *)(void *)ai->ai_addr)->sin_addr, 4);
        } else if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(struct sockaddr_in6)) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ai->ai_addr;
            a.family = AF_INET6;
            memcpy(a.ip, &in6->sin6_addr, 16);
            a.scope_id = in6->sin6_scope_id;
        } else {
            continue;
        }
        pr__net_add(v, n, &a, family);
    }
    freeaddrinfo(res);
    return 0;
}

#ifndef PRISTINE_NO_THREADS
/* One lookup handed to the helper pool. Ownership: the task until it
   queues the job; then the job is freed by whichever side finishes last,
   decided under pr__net_dns_mu: a task that gives up sets `abandoned` and
   the helper (or its posted completion) frees; otherwise the completion
   sets `done` and the task frees. */
typedef struct pr__net_job {
    struct pr__net_job *next;
    pr_sched *sched;
    pr_task *waiter;
    int family, abandoned, done, gai_rc, gai_errno;
    size_t n;
    pr_addr addrs[PR__NET_MAX_ADDRS];
    char host[PR__NET_HOST_MAX];
} pr__net_job;

#define PR__NET_POOL_MAX 4
#define PR__NET_IDLE_S 5
static pthread_cond_t pr__net_dns_cv = PTHREAD_COND_INITIALIZER;
static pr__net_job *pr__net_q_head, *pr__net_q_tail;
static int pr__net_threads, pr__net_idle, pr__net_qlen; /* helpers, idle helpers, queued jobs */

static void pr__net_job_free(pr__net_job *j) {
#ifdef PRISTINE_TESTING
    __atomic_sub_fetch(&pr__net_test_dns_jobs, 1, __ATOMIC_SEQ_CST);
#endif
    pr__free(j, sizeof *j);
}

/* Runs on the asking task's scheduler thread (posted by the helper). */
static void pr__net_job_done(void *ud) {
    pr__net_job *j = (pr__net_job *)ud;
    pr_task *w;
    pthread_mutex_lock(&pr__net_dns_mu);
    if (j->abandoned) {
        pthread_mutex_unlock(&pr__net_dns_mu);
        pr__net_job_free(j);
        return;
    }
    j->done = 1;
    w = j->waiter;
    pthread_mutex_unlock(&pr__net_dns_mu);
    if (w) pr__sched_wake(w, PR_OK);
}

static void *pr__net_worker(void *arg) {
    PR__UNUSED(arg);
    pthread_mutex_lock(&pr__net_dns_mu);
    for (;;) {
        pr__net_job *j;
        while (!pr__net_q_head) {
            struct timespec ts;
            int rc;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += PR__NET_IDLE_S;
            pr__net_idle++;
            rc = pthread_cond_timedwait(&pr__net_dns_cv, &pr__net_dns_mu, &ts);
            pr__net_idle--;
            if (rc == ETIMEDOUT && !pr__net_q_head) {
                pr__net_threads--;
                pthread_mutex_unlock(&pr__net_dns_mu);
                return NULL;
            }
        }
        j = pr__net_q_head;
        pr__net_q_head = j->next;
        if (!pr__net_q_head) pr__net_q_tail = NULL;
        pr__net_qlen--;
        if (!j->abandoned) {
#ifdef PRISTINE_TESTING
            pthread_mutex_unlock(&pr__net_dns_mu);
            {
                int ms = __atomic_load_n(&pr__net_test_dns_delay_ms, __ATOMIC_SEQ_CST);
                if (ms > 0) {
                    struct timespec d;
                    d.tv_sec = ms / 1000;
                    d.tv_nsec = (long)(ms % 1000) * 1000000L;
                    while (nanosleep(&d, &d) != 0 && errno == EINTR) {
                    }
                }
            }
            pthread_mutex_lock(&pr__net_dns_mu);
#endif
            if (!j->abandoned) {
                pthread_mutex_unlock(&pr__net_dns_mu);
                j->gai_rc = pr__net_gai(j->host, j->family, j->addrs, &j->n, &j->gai_errno);
                pthread_mutex_lock(&pr__net_dns_mu);
            }
        }
        /* Post under the lock: the task cannot abandon (and its scheduler
           cannot go away) between the check and the post. */
        while (!j->abandoned && pr_sched_post(j->sched, pr__net_job_done, j) != PR_OK) {
            struct timespec d = { 0, 1000000L };
            pthread_mutex_unlock(&pr__net_dns_mu);
            nanosleep(&d, NULL);
            pthread_mutex_lock(&pr__net_dns_mu);
        }
        if (j->abandoned) {
            pthread_mutex_unlock(&pr__net_dns_mu);
            pr__net_job_free(j);
            pthread_mutex_lock(&pr__net_dns_mu);
        }
    }
}

/* Hand host to the pool and wait. Fills v/n, or returns an error. */
static int pr__net_pool_lookup(const char *host, int family, pr_addr *v, size_t *n, int *gai_rc, int *gai_errno,
                               int64_t deadline) {
    pr_sched *s = pr_sched_current();
    pr__net_job *j;
    int rc = PR_OK;
    if (!s) return PR_ENOMEM;
    if (pr__sched_canceled(s)) return PR_ECANCELED;
    if (deadline <= pr_now()) return PR_ETIMEDOUT;
    j = (pr__net_job *)pr__calloc(1, sizeof *j);
    if (!j) return PR_ENOMEM;
#ifdef PRISTINE_TESTING
    __atomic_add_fetch(&pr__net_test_dns_jobs, 1, __ATOMIC_SEQ_CST);
#endif
    j->sched = s;
    j->waiter = s->cur;
    j->family = family;
    snprintf(j->host, sizeof j->host, "%s", host);
    pthread_mutex_lock(&pr__net_dns_mu);
    /* A new helper when the queue outgrows the idle ones (an idle helper
       only leaves the idle count once it runs). */
    if (pr__net_qlen + 1 > pr__net_idle && pr__net_threads < PR__NET_POOL_MAX) {
        pthread_t th;
        pthread_attr_t at;
        int e = pthread_attr_init(&at);
        if (e == 0) {
            pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
            e = pthread_create(&th, &at, pr__net_worker, NULL);
            pthread_attr_destroy(&at);
        }
        if (e == 0) pr__net_threads++;
        if (e != 0 && pr__net_threads == 0) {
            pthread_mutex_unlock(&pr__net_dns_mu);
            pr__net_job_free(j);
            *gai_errno = e;
            return PR_EIO;
        }
    }
    if (pr__net_q_tail) pr__net_q_tail->next = j;
    else pr__net_q_head = j;
    pr__net_q_tail = j;
    pr__net_qlen++;
    pthread_cond_signal(&pr__net_dns_cv);
    pthread_mutex_unlock(&pr__net_dns_mu);
    while (!j->done && rc == PR_OK) rc = pr__sched_park(s, deadline); /* done is only written on this thread */
    pthread_mutex_lock(&pr__net_dns_mu);
    if (!j->done) {
        j->abandoned = 1; /* the helper or its posted completion frees j */
        pthread_mutex_unlock(&pr__net_dns_mu);
        return rc == PR_OK ? PR_ETIMEDOUT : rc;
    }
    pthread_mutex_unlock(&pr__net_dns_mu);
    *gai_rc = j->gai_rc;
    *gai_errno = j->gai_errno;
    *n = j->n;
    memcpy(v, j->addrs, j->n * sizeof *v);
    pr__net_job_free(j);
    return PR_OK;
}
#endif

/* pr_dns_resolve with failure detail in err (may be NULL). */
static int pr__net_resolve(pr_addrlist **out, const char *host, uint16_t port, int family, pr_err_info *err,
                           int64_t deadline) {
    pr_addr v[PR__NET_MAX_ADDRS], a;
    size_t n = 0, i, len;
    int rc, gai_rc = 0, gai_errno = 0;
    if (!out || !host || (family != 0 && family != AF_INET && family != AF_INET6))
        return pr__err_set(err, PR_EINVAL, 0, "resolve: invalid argument");
    len = strlen(host);
    if (len == 0 || len >= PR__NET_HOST_MAX) return pr__err_set(err, PR_EINVAL, 0, "resolve: bad host length");
    if (pr_is_canceled()) return pr__err_set(err, PR_ECANCELED, 0, "resolve %s: canceled", host);
    if (pr__net_override_find(host, port, family, v, &n)) {
        /* the override table */
    } else if (pr__net_parse_ip(host, len, &a)) {
        a.port = port;
        pr__net_add(v, &n, &a, family);
    } else if (pr__net_host_eq(host, "localhost") || (len > 10 && pr__net_host_eq(host + len - 10, ".localhost"))) {
        pr__net_parse_ip("::1", 3, &a);
        a.port = port;
        pr__net_add(v, &n, &a, family);
        pr__net_parse_ip("127.0.0.1", 9, &a);
        a.port = port;
        pr__net_add(v, &n, &a, family);
    } else if (pr__net_cache_get(host, family, port, v, &n)) {
#ifdef PRISTINE_TESTING
        __atomic_add_fetch(&pr__net_test_dns_cache_hits, 1, __ATOMIC_SEQ_CST);
#endif
    } else {
#ifdef PRISTINE_NO_THREADS
        PR__UNUSED(deadline);
        gai_rc = pr__net_gai(host, family, v, &n, &gai_errno); /* stalls the scheduler */
#else
        rc = pr__net_pool_lookup(host, family, v, &n, &gai_rc, &gai_errno, deadline);
        if (rc == PR_EIO)
            return pr__err_set(err, rc, gai_errno, "resolve %s: no helper thread: %s", host, strerror(gai_errno));
        if (rc != PR_OK) return pr__err_set(err, rc, 0, "resolve %s: %s", host, pr_strerror(rc));
#endif
        if (gai_rc != 0) {
            rc = pr__err_set(err, PR_EDNS, gai_rc == EAI_SYSTEM ? gai_errno : 0, "resolve %s: %s", host,
                             gai_strerror(gai_rc));
            if (err) err->dns_error = gai_rc;
            return rc;
        }
        if (n) pr__net_cache_put(host, family, v, n);
        for (i = 0; i < n; i++) v[i].port = port;
    }
    if (!n) {
        rc = pr__err_set(err, PR_EDNS, 0, "resolve %s: no address%s", host,
                         family == AF_INET ? " (IPv4)" : family == AF_INET6 ? " (IPv6)" : "");
        if (err) err->dns_error = EAI_NONAME;
        return rc;
    }
    if ((rc = pr__net_list_make(out, v, n)) != PR_OK) return pr__err_set(err, rc, 0, "resolve %s: out of memory", host);
    return PR_OK;
}

int pr_dns_resolve(pr_addrlist **out, const char *host, uint16_t port, int family, pr_err_info *err,
                   int64_t deadline) {
    if (err) memset(err, 0, sizeof *err);
    return pr__net_resolve(out, host, port, family, err, deadline);
}

/* ---- TCP connect (Happy Eyeballs, RFC 8305) ---- */
static int pr__net_socket(int family) {
    int fd;
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#else
    fd = socket(family, SOCK_STREAM, 0);
    if (fd >= 0 && pr__net_nonblock(fd) != 0) {
        close(fd);
        fd = -1;
    }
#endif
    return fd;
}

static void pr__net_close(int fd) {
    pr_fd_forget(fd);
    close(fd);
}

/* Park until one of fds may be writable (or has failed), or the deadline. */
static int pr__net_wait_writable(const int *fds, size_t n, int64_t deadline) {
    pr_sched *s = pr__sched_get();
    size_t i;
    int rc, maxfd = 0;
    if (!s) return PR_ENOMEM;
    if (pr__sched_canceled(s)) return PR_ECANCELED;
    for (i = 0; i < n; i++) maxfd = PR__MAX(maxfd, fds[i]);
    if ((rc = pr__sched_fd_reserve(s, maxfd)) != PR_OK) return rc;
    for (i = 0; i < n; i++) {
        pr__sched_fdslot *f = &s->fds[fds[i]];
        if (f->wr && f->wr->state == PR__SCHED_T_PARKED) return PR_ESTATE;
        if (!f->registered) {
            if ((rc = pr__sched_poller_add(s, fds[i])) < 0) return rc;
            if (rc == 1) return PR_OK;
            f->registered = 1;
        }
    }
    for (i = 0; i < n; i++) s->fds[fds[i]].wr = s->cur;
    s->io_waiters++;
    rc = pr__sched_park(s, deadline);
    s->io_waiters--;
    for (i = 0; i < n; i++)
        if (s->fds[fds[i]].wr == s->cur) s->fds[fds[i]].wr = NULL;
    return rc;
}

/* RFC 8305 order: alternate families, starting with the first address's. */
static void pr__net_interleave(const pr_addrlist *l, size_t *order) {
    size_t i, k = 0, a = 0, b = 0;
    int fam0 = l->addrs[0].family;
    while (k < l->count) {
        while (a < l->count && l->addrs[a].family != fam0) a++;
        if (a < l->count) order[k++] = a++;
        while (b < l->count && l->addrs[b].family == fam0) b++;
        if (b < l->count) order[k++] = b++;
    }
    for (i = k; i < l->count; i++) order[i] = i;
}

#ifdef PRISTINE_TESTING
/* A fuzzer's scripted network: when set, pr_tcp_connect returns its answer
   (a pr_conn of its own, or a failure with its detail) without a socket. */
static int (*pr__net_test_connect)(pr_conn **out, const char *host, uint16_t port, pr_err_info *err,
                                   int64_t deadline);
#endif

int pr_tcp_connect(pr_conn **out, const char *host, uint16_t port, const pr_net_opts *opts, pr_err_info *err,
                   int64_t deadline) {
    pr_net_opts o;
    pr_err_info tmp;
    pr_addrlist *l = NULL;
    size_t order[PR__NET_MAX_ADDRS], next = 0, live = 0, i;
    int fds[PR__NET_MAX_ADDRS], idx[PR__NET_MAX_ADDRS];
    int rc, winner = -1, last_errno = 0;
    int64_t next_start = 0, delay;
    const pr_addr *last_a = NULL; /* the address of the last failure, formatted only for the message */
    char last[80] = "";
    memset(&o, 0, sizeof o);
    if (opts) o = *opts;
    if (!err) err = &tmp;
    memset(err, 0, sizeof *err);
    if (!out || !host) return pr__err_set(err, PR_EINVAL, 0, "connect: invalid argument");
#ifdef PRISTINE_TESTING
    if (pr__net_test_connect) return pr__net_test_connect(out, host, port, err, deadline);
#endif
    if (o.connect_timeout_ms >= 0)
        deadline = pr_deadline_min(deadline, pr_deadline_in(PR__DEF(o.connect_timeout_ms, 30000)));
    delay = o.attempt_delay_ms > 0 ? o.attempt_delay_ms : 250;
    if ((rc = pr__net_resolve(&l, host, port, o.family, err, deadline)) != PR_OK) return rc;
    pr__net_interleave(l, order);
    for (;;) {
        struct pollfd pfd[PR__NET_MAX_ADDRS];
        int64_t now = pr_now();
        if (next < l->count && (live == 0 || now >= next_start)) {
            const pr_addr *a = &l->addrs[order[next++]];
            struct sockaddr_storage ss;
            socklen_t sl = pr__net_to_sockaddr(a, &ss);
            int fd = pr__net_socket(a->family);
            if (fd < 0) {
                last_errno = errno;
                last_a = a;
                continue;
            }
            if (o.keepalive > 0) pr__net_keepalive(fd, o.keepalive);
            if (connect(fd, (struct sockaddr *)(void *)&ss, sl) == 0) {
                winner = fd;
                break;
            }
            if (errno != EINPROGRESS && errno != EINTR && errno != EAGAIN) {
                last_errno = errno;
                last_a = a;
                close(fd);
                continue;
            }
            fds[live] = fd;
            idx[live++] = (int)(a - l->addrs);
            next_start = pr__time_add(now, delay);
            continue;
        }
        if (live == 0) {
            if (last_a) pr__net_fmt(last_a, last, sizeof last);
            rc = pr__err_set(err, PR_EIO, last_errno, "connect to %s: %s", last, strerror(last_errno));
            break;
        }
        /* Which attempts have finished? (poll with no wait: never blocks) */
        for (i = 0; i < live; i++) {
            pfd[i].fd = fds[i];
            pfd[i].events = POLLOUT;
            pfd[i].revents = 0;
        }
        if (poll(pfd, (nfds_t)live, 0) > 0) {
            size_t k = 0;
            for (i = 0; i < live; i++) {
                int e = 0;
                socklen_t el = sizeof e;
                if (pfd[i].revents && winner < 0) {
                    if (getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &e, &el) != 0) e = errno;
                    if (e == 0) {
                        winner = fds[i];
                        continue;
                    }
                    last_errno = e;
                    last_a = &l->addrs[idx[i]];
                    pr__net_close(fds[i]);
                    next_start = 0; /* a failure starts the next attempt at once */
                    continue;
                }
                fds[k] = fds[i];
                idx[k++] = idx[i];
            }
            live = k;
            if (winner >= 0) break;
            continue;
        }
        rc = pr__net_wait_writable(fds, live, next < l->count ? PR__MIN(next_start, deadline) : deadline);
        if (rc == PR_ETIMEDOUT && pr_now() < deadline) continue;
        if (rc == PR_OK) continue;
        if (rc == PR_ETIMEDOUT) {
            pr__err_set(err, rc, 0, "connect to %s port %u: timed out", host, (unsigned)port);
        } else {
            int e = rc == PR_EIO ? errno : 0; /* the poller's own failure */
            pr__err_set(err, rc, e, "connect to %s port %u: %s", host, (unsigned)port,
                        e ? strerror(e) : pr_strerror(rc));
        }
        break;
    }
    for (i = 0; i < live; i++) pr__net_close(fds[i]);
    pr_addrlist_destroy(l);
    if (winner < 0) return rc;
    if ((rc = pr_conn_from_fd(out, winner)) != PR_OK) {
        int e = rc == PR_EIO ? errno : 0;
        pr__net_close(winner);
        return pr__err_set(err, rc, e, "connect: %s", e ? strerror(e) : pr_strerror(rc));
    }
    return PR_OK;
}

/* ---- listen and accept ---- */
struct pr_listener {
    int fd;
    uint16_t port;
    pr_err_info err;
};

int pr_tcp_listen(pr_listener **out, const char *host, uint16_t port, int backlog, pr_err_info *err) {
    pr_listener *l;
    pr_addr a;
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, one = 1, e;
    const char *what;
    char where[80];
    if (err) memset(err, 0, sizeof *err);
    if (!out) return pr__err_set(err, PR_EINVAL, 0, "listen: invalid argument");
    if (!host || pr__net_host_eq(host, "localhost")) host = "127.0.0.1";
    if (!pr__net_parse_ip(host, strlen(host), &a))
        return pr__err_set(err, PR_EINVAL, 0, "listen: %s is not a numeric address", host);
    a.port = port;
    sl = pr__net_to_sockaddr(&a, &ss);
    pr__net_fmt(&a, where, sizeof where);
    if (!(l = (pr_listener *)pr__calloc(1, sizeof *l))) return pr__err_set(err, PR_ENOMEM, 0, "listen: out of memory");
    if ((fd = pr__net_socket(a.family)) < 0) {
        e = errno;
        pr__free(l, sizeof *l);
        return pr__err_set(err, PR_EIO, e, "listen on %s: socket: %s", where, strerror(e));
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)(void *)&ss, sl) != 0) what = "bind";
    else if (listen(fd, backlog > 0 ? backlog : SOMAXCONN) != 0) what = "listen";
    else if (getsockname(fd, (struct sockaddr *)(void *)&ss, &sl) != 0) what = "getsockname";
    else what = NULL;
    if (what) {
        e = errno;
        close(fd);
        pr__free(l, sizeof *l);
        return pr__err_set(err, PR_EIO, e, "listen on %s: %s: %s", where, what, strerror(e));
    }
    l->fd = fd;
    l->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)(void *)&ss)->sin_port
                                            : ((struct sockaddr_in6 *)(void *)&ss)->sin6_port);
    *out = l;
    return PR_OK;
}

uint16_t pr_listener_port(const pr_listener *l) { return l ? l->port : 0; }

int pr_tcp_accept(pr_listener *l, pr_conn **out, int64_t deadline) {
    int rc;
    if (!l || !out) return PR_EINVAL;
    if (pr_is_canceled()) return pr__err_set(&l->err, PR_ECANCELED, 0, "accept: canceled");
    for (;;) {
        int fd = accept(l->fd, NULL, NULL);
        if (fd >= 0) {
            if ((rc = pr_conn_from_fd(out, fd)) != PR_OK) {
                int e = rc == PR_EIO ? errno : 0;
                close(fd);
                return pr__err_set(&l->err, rc, e, "accept: %s", e ? strerror(e) : pr_strerror(rc));
            }
            return PR_OK;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* The connection stays queued and the listener readable: returning
               at once would let a retry loop spin and starve the tasks that
               could free descriptors. Back off, then try again. */
            int e = errno;
            int64_t now = pr_now();
            if (deadline <= now) return pr__err_set(&l->err, PR_EIO, e, "accept: %s", strerror(e));
            if ((rc = pr_sleep(pr_deadline_min(deadline, pr__time_add(now, 50)))) != PR_OK)
                return pr__err_set(&l->err, rc, 0, "accept: %s", pr_strerror(rc));
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return pr__err_set(&l->err, PR_EIO, errno, "accept: %s", strerror(errno));
        if ((rc = pr_fd_wait(l->fd, PR_WAIT_READ, deadline)) == PR_ECLOSED) return rc; /* l was destroyed */
        if (rc == PR_EIO) return pr__err_set(&l->err, rc, errno, "accept: %s", strerror(errno)); /* the poller */
        if (rc != PR_OK) return pr__err_set(&l->err, rc, 0, "accept: %s", pr_strerror(rc));
    }
}

int pr_listener_last_error(const pr_listener *l, pr_err_info *out) {
    if (!l || !out) return PR_EINVAL;
    *out = l->err;
    return PR_OK;
}

void pr_listener_destroy(pr_listener *l) {
    if (!l) return;
    pr__net_close(l->fd);
    pr__free(l, sizeof *l);
}

/* ==== tls: BearSSL client and server over pr_conn, trust anchors, hostname checks ==== >>tls.impl */
#ifndef PRISTINE_NO_TLS

/* ---- growable byte buffer (wiped on free: it may hold key material) ---- */
typedef struct pr__tls_bytes {
    unsigned char *p;
    size_t len, cap;
    int oom;
} pr__tls_bytes;

static void pr__tls_bytes_put(void *ctx, const void *src, size_t n) {
    pr__tls_bytes *b = (pr__tls_bytes *)ctx;
    if (b->oom || !n) return;
    if (n > b->cap - b->len) {
        size_t cap = PR__MAX(b->cap * 2, PR__MAX(b->len + n, (size_t)256));
        unsigned char *q = (unsigned char *)pr__realloc(b->p, b->cap, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void pr__tls_bytes_free(pr__tls_bytes *b) {
    if (b->p) {
        memset(b->p, 0, b->cap);
        pr__free(b->p, b->cap);
    }
    memset(b, 0, sizeof *b);
}

static int pr__tls_read_file(const char *path, pr__tls_bytes *out, pr_err_info *err) {
    unsigned char chunk[4096];
    size_t k;
    FILE *f = fopen(path, "rb");
    if (!f) return pr__err_set(err, PR_EIO, errno, "cannot open %s: %s", path, strerror(errno));
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) pr__tls_bytes_put(out, chunk, k);
    if (ferror(f)) {
        int e = errno;
        fclose(f);
        return pr__err_set(err, PR_EIO, e, "cannot read %s: %s", path, strerror(e));
    }
    fclose(f);
    if (out->oom) return pr__err_set(err, PR_ENOMEM, 0, "out of memory reading %s", path);
    return PR_OK;
}

/* ---- PEM: call fn for every object (name, DER bytes) ---- */
typedef int (*pr__tls_pem_fn)(void *ctx, const char *name, const unsigned char *der, size_t len);

static int pr__tls_pem_each(const char *pem, size_t len, pr__tls_pem_fn fn, void *ctx) {
    br_pem_decoder_context pc;
    pr__tls_bytes der;
    char name[128];
    const char *seg[2];
    size_t seglen[2];
    int s, in = 0, rc = PR_OK;
    memset(&der, 0, sizeof der);
    seg[0] = pem;
    seglen[0] = len;
    seg[1] = "\n"; /* the decoder needs a line end after the last END line */
    seglen[1] = 1;
    br_pem_decoder_init(&pc);
    for (s = 0; s < 2 && rc == PR_OK; s++) {
        const char *p = seg[s];
        size_t n = seglen[s];
        while (n > 0 && rc == PR_OK) {
            size_t k = br_pem_decoder_push(&pc, p, n);
            int ev = br_pem_decoder_event(&pc);
            p += k;
            n -= k;
            if (ev == BR_PEM_BEGIN_OBJ) {
                snprintf(name, sizeof name, "%s", br_pem_decoder_name(&pc));
                der.len = 0;
                in = 1;
                br_pem_decoder_setdest(&pc, pr__tls_bytes_put, &der);
            } else if (ev == BR_PEM_END_OBJ) {
                if (in) rc = der.oom ? PR_ENOMEM : fn(ctx, name, der.p, der.len);
                in = 0;
            } else if (ev == BR_PEM_ERROR) {
                in = 0; /* skip the broken object */
            } else if (k == 0) {
                break;
            }
        }
    }
    pr__tls_bytes_free(&der);
    return rc;
}

static int pr__tls_is_cert(const char *name) {
    return strcmp(name, "CERTIFICATE") == 0 || strcmp(name, "X509 CERTIFICATE") == 0;
}

/* ---- trust anchors ---- */
typedef struct pr__tls_tas {
    br_x509_trust_anchor *v;
    size_t n, cap;
} pr__tls_tas;

static size_t pr__tls_ta_bytes(const br_x509_trust_anchor *ta) {
    return ta->dn.len + (ta->pkey.key_type == BR_KEYTYPE_RSA ? ta->pkey.key.rsa.nlen + ta->pkey.key.rsa.elen
                                                             : ta->pkey.key.ec.qlen);
}

static void pr__tls_tas_free(pr__tls_tas *t) {
    size_t i;
    for (i = 0; i < t->n; i++) pr__free(t->v[i].dn.data, pr__tls_ta_bytes(&t->v[i]));
    if (t->v) pr__free(t->v, t->cap * sizeof *t->v);
    memset(t, 0, sizeof *t);
}

/* One certificate (DER) -> one anchor; undecodable certificates are skipped. */
static int pr__tls_ta_add(void *ctx, const char *name, const unsigned char *der, size_t len) {
    pr__tls_tas *t = (pr__tls_tas *)ctx;
    br_x509_decoder_context xd;
    pr__tls_bytes dn;
    br_x509_trust_anchor *ta;
    const br_x509_pkey *pk;
    unsigned char *mem;
    size_t keyn;
    int rc = PR_OK;
    if (!pr__tls_is_cert(name)) return PR_OK;
    memset(&dn, 0, sizeof dn);
    br_x509_decoder_init(&xd, pr__tls_bytes_put, &dn);
    br_x509_decoder_push(&xd, der, len);
    pk = br_x509_decoder_get_pkey(&xd);
    if (dn.oom) {
        rc = PR_ENOMEM;
        goto out;
    }
    if (!pk || (pk->key_type != BR_KEYTYPE_RSA && pk->key_type != BR_KEYTYPE_EC)) goto out;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        br_x509_trust_anchor *v =
            (br_x509_trust_anchor *)pr__realloc(t->v, t->cap * sizeof *t->v, cap * sizeof *t->v);
        if (!v) {
            rc = PR_ENOMEM;
            goto out;
        }
        t->v = v;
        t->cap = cap;
    }
    keyn = pk->key_type == BR_KEYTYPE_RSA ? pk->key.rsa.nlen + pk->key.rsa.elen : pk->key.ec.qlen;
    if (!(mem = (unsigned char *)pr__alloc(dn.len + keyn))) {
        rc = PR_ENOMEM;
        goto out;
    }
    ta = &t->v[t->n++];
    memset(ta, 0, sizeof *ta);
    if (dn.len) memcpy(mem, dn.p, dn.len);
    ta->dn.data = mem;
    ta->dn.len = dn.len;
    ta->flags = br_x509_decoder_isCA(&xd) ? BR_X509_TA_CA : 0;
    ta->pkey.key_type = pk->key_type;
    if (pk->key_type == BR_KEYTYPE_RSA) {
        ta->pkey.key.rsa.n = mem + dn.len;
        ta->pkey.key.rsa.nlen = pk->key.rsa.nlen;
        memcpy(ta->pkey.key.rsa.n, pk->key.rsa.n, pk->key.rsa.nlen);
        ta->pkey.key.rsa.e = mem + dn.len + pk->key.rsa.nlen;
        ta->pkey.key.rsa.elen = pk->key.rsa.elen;
        memcpy(ta->pkey.key.rsa.e, pk->key.rsa.e, pk->key.rsa.elen);
    } else {
        ta->pkey.key.ec.curve = pk->key.ec.curve;
        ta->pkey.key.ec.q = mem + dn.len;
        ta->pkey.key.ec.qlen = pk->key.ec.qlen;
        memcpy(ta->pkey.key.ec.q, pk->key.ec.q, pk->key.ec.qlen);
    }
out:
    pr__tls_bytes_free(&dn);
    return rc;
}

static int pr__tls_tas_load_pem(pr__tls_tas *t, const char *pem, size_t len, const char *what, pr_err_info *err) {
    int rc = pr__tls_pem_each(pem, len, pr__tls_ta_add, t);
    if (rc == PR_ENOMEM) return pr__err_set(err, rc, 0, "out of memory loading trust anchors");
    if (rc != PR_OK) return pr__err_set(err, rc, 0, "cannot load trust anchors from %s", what);
    return PR_OK;
}

static int pr__tls_tas_load_file(pr__tls_tas *t, const char *path, pr_err_info *err) {
    pr__tls_bytes b;
    int rc;
    memset(&b, 0, sizeof b);
    rc = pr__tls_read_file(path, &b, err);
    if (rc == PR_OK) rc = pr__tls_tas_load_pem(t, (const char *)b.p, b.len, path, err);
    pr__tls_bytes_free(&b);
    return rc;
}

/* Anchors from ca_pem (first) or ca_file; an empty set is an error. */
static int pr__tls_tas_load(pr__tls_tas *t, const char *ca_file, const char *ca_pem, size_t ca_pem_len,
                            pr_err_info *err) {
    int rc;
    if (ca_pem) rc = pr__tls_tas_load_pem(t, ca_pem, ca_pem_len ? ca_pem_len : strlen(ca_pem), "ca_pem", err);
    else rc = pr__tls_tas_load_file(t, ca_file, err);
    if (rc == PR_OK && t->n == 0)
        rc = pr__err_set(err, PR_EINVAL, 0, "no certificate found in %s", ca_pem ? "ca_pem" : ca_file);
    if (rc != PR_OK) pr__tls_tas_free(t);
    return rc;
}

struct pr_tls_anchors {
    pr__tls_tas tas;
};

int pr_tls_anchors_create(pr_tls_anchors **out, const char *ca_file, const char *ca_pem, size_t ca_pem_len,
                          pr_err_info *err) {
    pr_err_info scratch;
    pr_tls_anchors *a;
    int rc;
    if (!err) err = &scratch;
    memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out || (!ca_file && !ca_pem))
        return pr__err_set(err, PR_EINVAL, 0, "pr_tls_anchors_create: out and ca_file or ca_pem are required");
    if (!(a = (pr_tls_anchors *)pr__calloc(1, sizeof *a)))
        return pr__err_set(err, PR_ENOMEM, 0, "out of memory loading trust anchors");
    if ((rc = pr__tls_tas_load(&a->tas, ca_file, ca_pem, ca_pem_len, err)) != PR_OK) {
        pr__free(a, sizeof *a);
        return rc;
    }
    *out = a;
    return PR_OK;
}

void pr_tls_anchors_destroy(pr_tls_anchors *a) {
    if (!a) return;
    pr__tls_tas_free(&a->tas);
    pr__free(a, sizeof *a);
}

/* ---- identities: a certificate chain and its private key ---- */
struct pr_tls_identity {
    br_x509_certificate *chain; /* DER copies, leaf first */
    size_t nchain, capchain;
    br_skey_decoder_context key; /* the key points into it */
    int key_type;                /* BR_KEYTYPE_RSA or _EC once a key was found */
    unsigned issuer_key_type;    /* the key type of the leaf's issuer (EC keys need it) */
};

static int pr__tls_chain_add(void *ctx, const char *name, const unsigned char *der, size_t len) {
    pr_tls_identity *id = (pr_tls_identity *)ctx;
    unsigned char *copy;
    if (!pr__tls_is_cert(name) || len == 0) return PR_OK;
    if (id->nchain == id->capchain) {
        size_t cap = id->capchain ? id->capchain * 2 : 4;
        br_x509_certificate *v =
            (br_x509_certificate *)pr__realloc(id->chain, id->capchain * sizeof *v, cap * sizeof *v);
        if (!v) return PR_ENOMEM;
        id->chain = v;
        id->capchain = cap;
    }
    if (!(copy = (unsigned char *)pr__alloc(len))) return PR_ENOMEM;
    memcpy(copy, der, len);
    id->chain[id->nchain].data = copy;
    id->chain[id->nchain].data_len = len;
    id->nchain++;
    return PR_OK;
}

static int pr__tls_key_add(void *ctx, const char *name, const unsigned char *der, size_t len) {
    pr_tls_identity *id = (pr_tls_identity *)ctx;
    if (id->key_type || !strstr(name, "PRIVATE KEY")) return PR_OK;
    br_skey_decoder_init(&id->key);
    br_skey_decoder_push(&id->key, der, len);
    if (br_skey_decoder_last_error(&id->key) == 0) id->key_type = br_skey_decoder_key_type(&id->key);
    return PR_OK;
}

/* Free the chain and wipe the key. */
static void pr__tls_id_free(pr_tls_identity *id) {
    size_t i;
    for (i = 0; i < id->nchain; i++) pr__free(id->chain[i].data, id->chain[i].data_len);
    if (id->chain) pr__free(id->chain, id->capchain * sizeof *id->chain);
    memset(id, 0, sizeof *id);
}

/* Big-endian integers a and b equal, leading zeros aside. */
static int pr__tls_same_int(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen) {
    while (alen > 0 && *a == 0) a++, alen--;
    while (blen > 0 && *b == 0) b++, blen--;
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* Whether the private key belongs to the leaf's public key pk. */
static int pr__tls_key_matches(const pr_tls_identity *id, const br_x509_pkey *pk) {
    unsigned char buf[1024]; /* an RSA modulus up to 8192 bits, or an EC point */
    int ok = 0;
    if (id->key_type == BR_KEYTYPE_RSA && pk->key_type == BR_KEYTYPE_RSA) {
        const br_rsa_private_key *sk = br_skey_decoder_get_rsa(&id->key);
        br_rsa_compute_modulus mod = br_rsa_compute_modulus_get_default();
        size_t n = mod(NULL, sk);
        ok = n > 0 && n <= sizeof buf && mod(buf, sk) == n &&
             pr__tls_same_int(buf, n, pk->key.rsa.n, pk->key.rsa.nlen);
    } else if (id->key_type == BR_KEYTYPE_EC && pk->key_type == BR_KEYTYPE_EC) {
        const br_ec_private_key *sk = br_skey_decoder_get_ec(&id->key);
        br_ec_public_key pub;
        size_t n = sk->curve == pk->key.ec.curve ? br_ec_compute_pub(br_ec_get_default(), &pub, buf, sk) : 0;
        ok = n > 0 && n == pk->key.ec.qlen && memcmp(buf, pk->key.ec.q, n) == 0;
    }
    memset(buf, 0, sizeof buf);
    return ok;
}

/* Parse a chain (cert, named cert_what in messages) and its key into id.
   On failure id is freed and err says why, prefixed with who. */
static int pr__tls_id_parse(pr_tls_identity *id, const char *cert, size_t cert_len, const char *cert_what,
                            const char *key, size_t key_len, const char *key_what, const char *who,
                            pr_err_info *err) {
    br_x509_decoder_context xd;
    const br_x509_pkey *pk;
    int rc = pr__tls_pem_each(cert, cert_len, pr__tls_chain_add, id);
    if (rc == PR_OK) rc = pr__tls_pem_each(key, key_len, pr__tls_key_add, id);
    if (rc != PR_OK) {
        pr__tls_id_free(id);
        return pr__err_set(err, rc, 0, "%s: %s", who, pr_strerror(rc));
    }
    if (id->nchain == 0) {
        rc = pr__err_set(err, PR_EINVAL, 0, "%s: no certificate in %s", who, cert_what);
    } else if (id->key_type != BR_KEYTYPE_RSA && id->key_type != BR_KEYTYPE_EC) {
        rc = pr__err_set(err, PR_EINVAL, 0, "%s: no RSA or EC private key in %s", who, key_what);
    } else {
        br_x509_decoder_init(&xd, NULL, NULL);
        br_x509_decoder_push(&xd, id->chain[0].data, id->chain[0].data_len);
        pk = br_x509_decoder_get_pkey(&xd);
        if (br_x509_decoder_last_error(&xd) != 0 || !pk)
            rc = pr__err_set(err, PR_EINVAL, 0, "%s: the leaf certificate in %s cannot be decoded", who, cert_what);
        else if (!pr__tls_key_matches(id, pk))
            rc = pr__err_set(err, PR_EINVAL, 0, "%s: the key in %s does not belong to the leaf certificate in %s",
                             who, key_what, cert_what);
        else
            id->issuer_key_type = (unsigned)br_x509_decoder_get_signer_key_type(&xd);
    }
    if (rc != PR_OK) pr__tls_id_free(id);
    return rc;
}

/* A new identity from files or memory (memory wins), for
   pr_tls_identity_create and pr_tls_client. */
static int pr__tls_id_new(pr_tls_identity **out, const char *cert_file, const char *cert_pem, size_t cert_pem_len,
                          const char *key_file, const char *key_pem, size_t key_pem_len, pr_err_info *err) {
    static const char who[] = "TLS client certificate";
    pr__tls_bytes cb, kb;
    pr_tls_identity *id = NULL;
    int rc = PR_OK;
    *out = NULL;
    if (!cert_file && !cert_pem)
        return pr__err_set(err, PR_EINVAL, 0, "%s: a key without a certificate (cert_file or cert_pem)", who);
    if (!key_file && !key_pem)
        return pr__err_set(err, PR_EINVAL, 0, "%s: a certificate without its key (key_file or key_pem)", who);
    memset(&cb, 0, sizeof cb);
    memset(&kb, 0, sizeof kb);
    if (!cert_pem) rc = pr__tls_read_file(cert_file, &cb, err);
    if (rc == PR_OK && !key_pem) rc = pr__tls_read_file(key_file, &kb, err);
    if (rc == PR_OK && !(id = (pr_tls_identity *)pr__calloc(1, sizeof *id)))
        rc = pr__err_set(err, PR_ENOMEM, 0, "%s: out of memory", who);
    if (rc == PR_OK)
        rc = pr__tls_id_parse(id, cert_pem ? cert_pem : (const char *)cb.p,
                              cert_pem ? (cert_pem_len ? cert_pem_len : strlen(cert_pem)) : cb.len,
                              cert_pem ? "cert_pem" : cert_file, key_pem ? key_pem : (const char *)kb.p,
                              key_pem ? (key_pem_len ? key_pem_len : strlen(key_pem)) : kb.len,
                              key_pem ? "key_pem" : key_file, who, err);
    pr__tls_bytes_free(&cb);
    pr__tls_bytes_free(&kb); /* wiped */
    if (rc != PR_OK) {
        if (id) pr__free(id, sizeof *id);
        return rc;
    }
    *out = id;
    return PR_OK;
}

int pr_tls_identity_create(pr_tls_identity **out, const char *cert_file, const char *cert_pem, size_t cert_pem_len,
                           const char *key_file, const char *key_pem, size_t key_pem_len, pr_err_info *err) {
    pr_err_info scratch;
    if (!err) err = &scratch;
    memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out) return pr__err_set(err, PR_EINVAL, 0, "pr_tls_identity_create: out is NULL");
    return pr__tls_id_new(out, cert_file, cert_pem, cert_pem_len, key_file, key_pem, key_pem_len, err);
}

void pr_tls_identity_destroy(pr_tls_identity *id) {
    if (!id) return;
    pr__tls_id_free(id);
    pr__free(id, sizeof *id);
}

/* The system bundle: loaded on first use, shared read-only afterwards. */
static pthread_mutex_t pr__tls_sys_mu = PTHREAD_MUTEX_INITIALIZER;
static pr__tls_tas pr__tls_sys;
static int pr__tls_sys_loaded;

static int pr__tls_system_anchors(const pr__tls_tas **out, pr_err_info *err) {
    int rc = PR_OK;
    pthread_mutex_lock(&pr__tls_sys_mu);
    if (!pr__tls_sys_loaded) {
        const char *path = getenv("SSL_CERT_FILE"), *from = " (SSL_CERT_FILE)";
        if (!path || !*path) {
            path = "/etc/ssl/certs/ca-certificates.crt";
            from = " (the system bundle)";
        }
        rc = pr__tls_tas_load(&pr__tls_sys, path, NULL, 0, err); /* an empty bundle is an error here too */
        if (rc == PR_OK) {
            pr__tls_sys_loaded = 1;
        } else if (err) {
            size_t n = strlen(err->msg);
            snprintf(err->msg + n, sizeof err->msg - n, "%s", from);
        }
    }
    pthread_mutex_unlock(&pr__tls_sys_mu);
    *out = &pr__tls_sys;
    return rc;
}

void pr_tls_global_cleanup(void) {
    pthread_mutex_lock(&pr__tls_sys_mu);
    pr__tls_tas_free(&pr__tls_sys);
    pr__tls_sys_loaded = 0;
    pthread_mutex_unlock(&pr__tls_sys_mu);
}

/* ---- iPAddress SAN check (BearSSL matches DNS names only) ---- */
static int pr__tls_der(const unsigned char **p, const unsigned char *e, int *tag, const unsigned char **v,
                       size_t *vlen) {
    const unsigned char *q = *p;
    size_t len;
    if (e - q < 2) return -1;
    *tag = *q++;
    len = *q++;
    if (len & 0x80) {
        int k = (int)(len & 0x7f);
        if (k == 0 || k > 4 || e - q < k) return -1;
        for (len = 0; k > 0; k--) len = (len << 8) | *q++;
    }
    if ((size_t)(e - q) < len) return -1;
    *v = q;
    *vlen = len;
    *p = q + len;
    return 0;
}

/* Read the element at *p (moving *p past it), which must have tag want, and
   give its contents as [*in, *in_end). -1 when malformed or another tag. */
static int pr__tls_der_in(const unsigned char **p, const unsigned char *e, int want, const unsigned char **in,
                          const unsigned char **in_end) {
    const unsigned char *v;
    size_t vlen;
    int tag;
    if (pr__tls_der(p, e, &tag, &v, &vlen) || tag != want) return -1;
    *in = v;
    *in_end = v + vlen;
    return 0;
}

/* Whether the certificate (DER) lists ip (4 or 16 bytes) as an iPAddress SAN. */
static int pr__tls_ip_in_sans(const unsigned char *der, size_t n, const unsigned char *ip, size_t iplen) {
    static const unsigned char san_oid[] = { 0x55, 0x1d, 0x11 };
    const unsigned char *p = der, *e = der + n, *v, *q, *qe;
    size_t vlen;
    int tag;
    if (pr__tls_der_in(&p, e, 0x30, &p, &e) || pr__tls_der_in(&p, e, 0x30, &p, &e))
        return 0;                                                           /* Certificate, TBSCertificate */
    while (p < e) {
        if (pr__tls_der(&p, e, &tag, &v, &vlen)) return 0;
        if (tag != 0xa3) continue;                                          /* [3] extensions */
        if (pr__tls_der_in(&v, v + vlen, 0x30, &q, &qe)) return 0;
        while (q < qe) {
            const unsigned char *x, *xe, *ov;
            size_t olen;
            if (pr__tls_der_in(&q, qe, 0x30, &x, &xe)) return 0;            /* Extension */
            if (pr__tls_der(&x, xe, &tag, &ov, &olen) || tag != 0x06) return 0;
            if (olen != sizeof san_oid || memcmp(ov, san_oid, olen) != 0) continue;
            if (pr__tls_der(&x, xe, &tag, &v, &vlen)) return 0;
            if (tag == 0x01 && pr__tls_der(&x, xe, &tag, &v, &vlen)) return 0; /* critical */
            if (tag != 0x04) return 0;
            if (pr__tls_der_in(&v, v + vlen, 0x30, &x, &xe)) return 0;      /* GeneralNames */
            while (x < xe) {
                if (pr__tls_der(&x, xe, &tag, &v, &vlen)) return 0;
                if (tag == 0x87 && vlen == iplen && memcmp(v, ip, iplen) == 0) return 1;
            }
            return 0;
        }
        return 0;
    }
    return 0;
}

/* ---- X.509 wrapper: the minimal engine plus IP-SAN checks, or "insecure" ---- */
typedef struct pr__tls_x509 {
    const br_x509_class *vtable; /* first: BearSSL passes &vtable around */
    br_x509_minimal_context mini;
    br_x509_decoder_context dec; /* insecure mode: decodes the leaf only */
    pr__tls_bytes leaf;          /* IP hosts: the leaf's DER */
    unsigned char ip[16];
    size_t iplen; /* 4 or 16 for an IP-literal host, else 0 */
    int insecure;
    int ip_mismatch;
    uint32_t ncert;
    char host[256]; /* the name checked, for messages ("(client)" on a server) */
    pr__tls_tas own; /* client: anchors from ca_file/ca_pem */
} pr__tls_x509;

#define PR__TLS_X(ctx) ((pr__tls_x509 *)(void *)(ctx))

static void pr__tls_x_start_chain(const br_x509_class **ctx, const char *server_name) {
    pr__tls_x509 *x = PR__TLS_X(ctx);
    x->ncert = 0;
    x->ip_mismatch = 0;
    x->leaf.len = 0;
    x->leaf.oom = 0;
    if (x->insecure) br_x509_decoder_init(&x->dec, NULL, NULL);
    else x->mini.vtable->start_chain(&x->mini.vtable, server_name);
}

static void pr__tls_x_start_cert(const br_x509_class **ctx, uint32_t length) {
    pr__tls_x509 *x = PR__TLS_X(ctx);
    if (!x->insecure) x->mini.vtable->start_cert(&x->mini.vtable, length);
}

static void pr__tls_x_append(const br_x509_class **ctx, const unsigned char *buf, size_t len) {
    pr__tls_x509 *x = PR__TLS_X(ctx);
    if (x->ncert == 0) {
        if (x->insecure) br_x509_decoder_push(&x->dec, buf, len);
        else if (x->iplen) pr__tls_bytes_put(&x->leaf, buf, len);
    }
    if (!x->insecure) x->mini.vtable->append(&x->mini.vtable, buf, len);
}

static void pr__tls_x_end_cert(const br_x509_class **ctx) {
    pr__tls_x509 *x = PR__TLS_X(ctx);
    if (!x->insecure) x->mini.vtable->end_cert(&x->mini.vtable);
    x->ncert++;
}

static unsigned pr__tls_x_end_chain(const br_x509_class **ctx) {
    pr__tls_x509 *x = PR__TLS_X(ctx);
    unsigned r;
    if (x->insecure) return (unsigned)br_x509_decoder_last_error(&x->dec);
    r = x->mini.vtable->end_chain(&x->mini.vtable);
    if (r != 0 && r != BR_ERR_X509_OK) return r;
    if (x->iplen) {
        if (x->leaf.oom) return BR_ERR_X509_LIMIT_EXCEEDED;
        if (!pr__tls_ip_in_sans(x->leaf.p, x->leaf.len, x->ip, x->iplen)) {
            x->ip_mismatch = 1;
            return BR_ERR_X509_BAD_SERVER_NAME;
        }
    }
    return 0;
}

static const br_x509_pkey *pr__tls_x_get_pkey(const br_x509_class *const *ctx, unsigned *usages) {
    pr__tls_x509 *x = PR__TLS_X(ctx);
    if (x->insecure) {
        if (usages) *usages = BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN;
        return br_x509_decoder_get_pkey(&x->dec);
    }
    return x->mini.vtable->get_pkey(&x->mini.vtable, usages);
}

static const br_x509_class pr__tls_x509_vtable = {
    sizeof(pr__tls_x509), pr__tls_x_start_chain, pr__tls_x_start_cert, pr__tls_x_append,
    pr__tls_x_end_cert, pr__tls_x_end_chain, pr__tls_x_get_pkey
};

/* ---- client certificates: BearSSL's single-chain handler, wrapped to
   record that the server asked for one (even when we have none) ---- */
typedef struct pr__tls_cauth {
    const br_ssl_client_certificate_class *vtable; /* first: BearSSL passes &vtable around */
    const br_ssl_client_certificate_class **inner; /* the handler of our certificate; NULL = none */
    int asked; /* the server sent a CertificateRequest */
    int sent;  /* and we answered with a certificate */
} pr__tls_cauth;

#define PR__TLS_CA(ctx) ((pr__tls_cauth *)(void *)(ctx))

static void pr__tls_ca_start_names(const br_ssl_client_certificate_class **ctx) {
    pr__tls_cauth *a = PR__TLS_CA(ctx);
    a->asked = 1;
    if (a->inner) (*a->inner)->start_name_list(a->inner);
}

static void pr__tls_ca_start_name(const br_ssl_client_certificate_class **ctx, size_t len) {
    pr__tls_cauth *a = PR__TLS_CA(ctx);
    if (a->inner) (*a->inner)->start_name(a->inner, len);
}

static void pr__tls_ca_append_name(const br_ssl_client_certificate_class **ctx, const unsigned char *data,
                                   size_t len) {
    pr__tls_cauth *a = PR__TLS_CA(ctx);
    if (a->inner) (*a->inner)->append_name(a->inner, data, len);
}

static void pr__tls_ca_end_name(const br_ssl_client_certificate_class **ctx) {
    pr__tls_cauth *a = PR__TLS_CA(ctx);
    if (a->inner) (*a->inner)->end_name(a->inner);
}

static void pr__tls_ca_end_names(const br_ssl_client_certificate_class **ctx) {
    pr__tls_cauth *a = PR__TLS_CA(ctx);
    if (a->inner) (*a->inner)->end_name_list(a->inner);
}

static void pr__tls_ca_choose(const br_ssl_client_certificate_class **ctx, const br_ssl_client_context *cc,
                              uint32_t auth_types, br_ssl_client_certificate *choices) {
    pr__tls_cauth *a = PR__TLS_CA(ctx);
    memset(choices, 0, sizeof *choices); /* no chain: an empty Certificate message */
    if (a->inner) (*a->inner)->choose(a->inner, cc, auth_types, choices);
    a->sent = choices->chain_len > 0;
}

static uint32_t pr__tls_ca_do_keyx(const br_ssl_client_certificate_class **ctx, unsigned char *data, size_t *len) {
    pr__tls_cauth *a = PR__TLS_CA(ctx);
    return a->inner ? (*a->inner)->do_keyx(a->inner, data, len) : 0;
}

static size_t pr__tls_ca_do_sign(const br_ssl_client_certificate_class **ctx, int hash_id, size_t hv_len,
                                 unsigned char *data, size_t len) {
    pr__tls_cauth *a = PR__TLS_CA(ctx);
    return a->inner ? (*a->inner)->do_sign(a->inner, hash_id, hv_len, data, len) : 0;
}

static const br_ssl_client_certificate_class pr__tls_cauth_vtable = {
    sizeof(pr__tls_cauth), pr__tls_ca_start_names, pr__tls_ca_start_name, pr__tls_ca_append_name,
    pr__tls_ca_end_name, pr__tls_ca_end_names, pr__tls_ca_choose, pr__tls_ca_do_keyx, pr__tls_ca_do_sign
};

/* ---- connections ---- */
#define PR__TLS_MAX_ALPN 8

typedef struct pr__tls_conn {
    pr_conn base; /* first: the pr_conn handed out */
    pr_conn *inner;
    int server;
    int established; /* the handshake finished */
    int closing;     /* our close_notify is queued or sent */
    int wr_dead;     /* the transport refused writes after the peer left */
    int fatal;       /* sticky transport/truncation error, 0 = none */
    int busy;        /* tasks inside read/write/shutdown */
    int no_wait;     /* the transport cannot wait on both directions */
    int writing;     /* a task is pushing records out (or waiting to) */
    pr_task *duplex; /* the task waiting on both directions, if any */
    unsigned char first[5]; /* the peer's first bytes, to name a peer that does not speak TLS */
    size_t nfirst;
    int dead;        /* destroyed while busy: the last task out frees it */
    const char **alpn_names;  /* the engine's protocol names: NULL, pr__tls_alpn_http11 or our block */
    size_t alpn_size;         /* bytes of our block (names, then their text); 0 = none */
    size_t size;              /* bytes allocated for this record: the union holds only our role */
    pr__tls_x509 *x;          /* the chain check, for the handshake only (freed after it) */
    pr__tls_cauth cauth;      /* client: our certificate, if any, and whether the server asked */
    pr_tls_identity *own_id;  /* client: parsed from cert_* / key_* for this connection */
    unsigned char *iobuf;     /* BearSSL's record buffer, allocated to the mode's size (not zeroed:
                                 only the pages records reach are ever touched) */
    size_t iobuf_len;
    size_t iobuf_used;        /* end of the part records have reached, for the wipe on free */
    union {                   /* last: a client's record ends after u.c */
        br_ssl_client_context c;
        br_ssl_server_context s;
    } u;
} pr__tls_conn;

struct pr_tls_server_cfg {
    pr_tls_identity id;
    pr__tls_tas client_cas; /* n > 0: clients must present a certificate from these */
    char alpn[256];
};

static br_ssl_engine_context *pr__tls_eng(pr__tls_conn *t) { return t->server ? &t->u.s.eng : &t->u.c.eng; }

/* Note that records reached p[0..n) of the buffer (the wipe covers it). */
static void pr__tls_mark(pr__tls_conn *t, const unsigned char *p, size_t n) {
    size_t end = (size_t)(p - t->iobuf) + n;
    if (end > t->iobuf_used) t->iobuf_used = end;
}

/* Give the engine its record buffer: half (1) or full duplex. */
static int pr__tls_set_buffer(pr__tls_conn *t, int half) {
    t->iobuf_len = half ? BR_SSL_BUFSIZE_MONO : BR_SSL_BUFSIZE_BIDI;
    if (!(t->iobuf = (unsigned char *)pr__alloc(t->iobuf_len))) return PR_ENOMEM;
    br_ssl_engine_set_buffer(pr__tls_eng(t), t->iobuf, t->iobuf_len, !half);
    return PR_OK;
}

/* Split "a,b,c" into names (copied into buf). Returns the count or -1. */
static int pr__tls_alpn_parse(const char *list, char *buf, size_t bufn, const char **names) {
    size_t len = strlen(list);
    int n = 0;
    char *p;
    if (len >= bufn) return -1;
    memcpy(buf, list, len + 1);
    for (p = buf; *p;) {
        char *c = strchr(p, ',');
        if (c) *c = 0;
        if (*p) {
            if (n == PR__TLS_MAX_ALPN) return -1;
            names[n++] = p;
        }
        if (!c) break;
        p = c + 1;
    }
    return n;
}

static const char *pr__tls_alpn_http11[1] = { "http/1.1" };

/* Give the engine the protocol names of list (already checked by
   pr__tls_alpn_parse): the default list costs no memory, others one block. */
static int pr__tls_alpn_set(pr__tls_conn *t, const char *list) {
    const char *names[PR__TLS_MAX_ALPN];
    char buf[256];
    size_t len = strlen(list) + 1;
    int n = pr__tls_alpn_parse(list, buf, sizeof buf, names), i;
    if (n <= 0) return n < 0 ? PR_EINVAL : PR_OK;
    if (n == 1 && strcmp(names[0], "http/1.1") == 0) {
        t->alpn_names = pr__tls_alpn_http11;
    } else {
        char *text;
        t->alpn_size = (size_t)n * sizeof(char *) + len;
        if (!(t->alpn_names = (const char **)pr__alloc(t->alpn_size))) {
            t->alpn_size = 0;
            return PR_ENOMEM;
        }
        text = (char *)(t->alpn_names + n);
        memcpy(text, buf, len);
        for (i = 0; i < n; i++) t->alpn_names[i] = text + (names[i] - buf);
    }
    br_ssl_engine_set_protocol_names(pr__tls_eng(t), t->alpn_names, (size_t)n);
    return PR_OK;
}

static void pr__tls_setup_engine(br_ssl_engine_context *eng) {
    static const uint16_t aes_first[] = {
        BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    };
    static const uint16_t chacha_first[] = {
        BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
    };
    int aesni = br_aes_x86ni_ctr_get_vtable() != NULL && br_ghash_pclmul_get() != 0;
    br_ssl_engine_set_versions(eng, BR_TLS12, BR_TLS12);
    br_ssl_engine_set_suites(eng, aesni ? aes_first : chacha_first, sizeof aes_first / sizeof aes_first[0]);
    br_ssl_engine_add_flags(eng, BR_OPT_NO_RENEGOTIATION);
}

/* Mix OS randomness into the engine's seed (0.6 trusts RDRAND alone on x86). */
static void pr__tls_entropy(br_ssl_engine_context *eng) {
    unsigned char seed[32];
    size_t got = 0;
#if defined(__linux__)
    while (got < sizeof seed) {
        ssize_t r = getrandom(seed + got, sizeof seed - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
#endif
    if (got < sizeof seed) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            while (got < sizeof seed) {
                ssize_t r = read(fd, seed + got, sizeof seed - got);
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0) break;
                got += (size_t)r;
            }
            close(fd);
        }
    }
    if (got) br_ssl_engine_inject_entropy(eng, seed, got);
    memset(seed, 0, sizeof seed);
}

static const char *pr__tls_reason(int e) {
    switch (e) {
    case BR_ERR_BAD_PARAM: return "bad parameter (host name too long?)";
    case BR_ERR_UNSUPPORTED_VERSION:
    case BR_ERR_BAD_VERSION: return "unsupported protocol version (only TLS 1.2 is supported)";
    case BR_ERR_TOO_LARGE: return "record too large";
    case BR_ERR_BAD_MAC: return "bad record MAC (corrupted or forged data)";
    case BR_ERR_NO_RANDOM: return "no random source";
    case BR_ERR_BAD_CIPHER_SUITE: return "no common cipher suite";
    case BR_ERR_BAD_SNI: return "bad SNI from the client";
    case BR_ERR_BAD_SIGNATURE: return "bad signature in the key exchange";
    case BR_ERR_WRONG_KEY_USAGE: return "certificate key not usable with the chosen cipher suite";
    case BR_ERR_NO_CLIENT_AUTH: return "client certificate required";
    case BR_ERR_BAD_FINISHED: return "handshake Finished check failed";
    case BR_ERR_X509_EMPTY_CHAIN: return "peer sent no certificate";
    case BR_ERR_X509_BAD_SIGNATURE: return "certificate signature is invalid";
    case BR_ERR_X509_TIME_UNKNOWN: return "current time unknown for the certificate check";
    case BR_ERR_X509_EXPIRED: return "certificate expired or not yet valid";
    case BR_ERR_X509_DN_MISMATCH: return "certificate chain is broken (issuer does not match)";
    case BR_ERR_X509_BAD_SERVER_NAME: return "certificate does not match the host name (bad hostname)";
    case BR_ERR_X509_CRITICAL_EXTENSION: return "certificate has an unsupported critical extension";
    case BR_ERR_X509_NOT_CA: return "an issuing certificate is not a CA";
    case BR_ERR_X509_FORBIDDEN_KEY_USAGE: return "certificate key usage forbids this use";
    case BR_ERR_X509_WEAK_PUBLIC_KEY: return "certificate key is too weak";
    case BR_ERR_X509_NOT_TRUSTED: return "certificate signed by an unknown CA (not trusted)";
    case BR_ERR_X509_UNSUPPORTED: return "certificate uses an unsupported algorithm";
    case BR_ERR_X509_LIMIT_EXCEEDED: return "certificate chain too large";
    case BR_ERR_X509_WRONG_KEY_TYPE: return "certificate key type does not match its use";
    default: break;
    }
    if (e >= 33 && e < 64) return "malformed certificate";
    return "protocol error (malformed or unexpected message)";
}

static const char *pr__tls_alert(int a) {
    switch (a) {
    case 10: return "unexpected_message";
    case 20: return "bad_record_mac";
    case 22: return "record_overflow";
    case 40: return "handshake_failure: no common cipher suite or client certificate required";
    case 42: return "bad_certificate";
    case 43: return "unsupported_certificate";
    case 44: return "certificate_revoked";
    case 45: return "certificate_expired";
    case 46: return "certificate_unknown";
    case 47: return "illegal_parameter";
    case 48: return "unknown_ca";
    case 49: return "access_denied";
    case 50: return "decode_error";
    case 51: return "decrypt_error";
    case 70: return "protocol_version: protocol version not supported by the peer (TLS 1.3 only?)";
    case 71: return "insufficient_security";
    case 80: return "internal_error";
    case 90: return "user_canceled";
    case 100: return "no_renegotiation";
    case 110: return "unsupported_extension";
    case 112: return "unrecognized_name: the server does not know this host name";
    case 120: return "no_application_protocol: no common ALPN protocol";
    default: return "unknown alert";
    }
}

/* The handshake failed because the peer does not speak TLS (a wrong port
   or scheme): its first byte is no TLS record type (20-23). */
#define PR__TLS_NOT_TLS "TLS handshake failed: the peer does not speak TLS"
static int pr__tls_peer_not_tls(const pr__tls_conn *t) {
    return !t->established && t->nfirst > 0 && (t->first[0] < 20 || t->first[0] > 23);
}

/* Name what such a peer sent: plain HTTP, other text, or bytes. */
static void pr__tls_not_tls_err(pr__tls_conn *t) {
    size_t i;
    int text = 1;
    char shown[sizeof t->first + 1];
    for (i = 0; i < t->nfirst; i++) {
        unsigned char ch = t->first[i];
        if (ch < 0x20 || ch > 0x7e) text = 0;
        shown[i] = (char)ch;
    }
    shown[t->nfirst] = 0;
    if (t->nfirst == sizeof t->first && memcmp(t->first, "HTTP/", 5) == 0)
        pr__err_set(&t->base.err, PR_ETLS, 0, "%s (it answered in plain HTTP)", PR__TLS_NOT_TLS);
    else if (text)
        pr__err_set(&t->base.err, PR_ETLS, 0, "%s (it answered with text: \"%s...\")", PR__TLS_NOT_TLS, shown);
    else
        pr__err_set(&t->base.err, PR_ETLS, 0, "%s (its first byte 0x%02x is no TLS record)", PR__TLS_NOT_TLS,
                    t->first[0]);
}

/* Record BearSSL error e as PR_ETLS with a readable message. */
static int pr__tls_fail(pr__tls_conn *t, int e) {
    const char *stage = t->established ? "TLS" : "TLS handshake";
    if (pr__tls_peer_not_tls(t)) {
        pr__tls_not_tls_err(t);
    } else if (e == BR_ERR_X509_LIMIT_EXCEEDED && t->x && t->x->leaf.oom) { /* no memory to keep the leaf for its IP SANs */
        pr__err_set(&t->base.err, PR_ENOMEM, 0, "%s failed: out of memory checking the certificate", stage);
        t->base.err.tls_error = e;
        return PR_ENOMEM;
    } else if (e >= BR_ERR_SEND_FATAL_ALERT) {
        pr__err_set(&t->base.err, PR_ETLS, 0, "%s failed: we sent alert %d (%s)", stage, e - BR_ERR_SEND_FATAL_ALERT,
                    pr__tls_alert(e - BR_ERR_SEND_FATAL_ALERT));
    } else if (e >= BR_ERR_RECV_FATAL_ALERT) {
        pr__err_set(&t->base.err, PR_ETLS, 0, "%s failed: peer sent alert %d (%s)", stage,
                    e - BR_ERR_RECV_FATAL_ALERT, pr__tls_alert(e - BR_ERR_RECV_FATAL_ALERT));
    } else if (e == BR_ERR_X509_BAD_SERVER_NAME && t->x && t->x->ip_mismatch) {
        pr__err_set(&t->base.err, PR_ETLS, 0, "%s failed: certificate has no IP address SAN for %s (bad hostname)",
                    stage, t->x ? t->x->host : "");
    } else if (e == BR_ERR_X509_BAD_SERVER_NAME) {
        pr__err_set(&t->base.err, PR_ETLS, 0, "%s failed: certificate does not match host %s (bad hostname)", stage,
                    t->x ? t->x->host : "");
    } else {
        pr__err_set(&t->base.err, PR_ETLS, 0, "%s failed: %s (BearSSL error %d)", stage, pr__tls_reason(e), e);
    }
    t->base.err.tls_error = e;
    return PR_ETLS;
}

/* An error from the inner connection. Timeouts and cancellation leave the
   engine usable; anything else is sticky. */
static int pr__tls_transport(pr__tls_conn *t, int rc) {
    if (rc == PR_ETIMEDOUT || rc == PR_ECANCELED) { /* name the phase, as the http messages do */
        pr__err_set(&t->base.err, rc, 0, "TLS: %s %s%s", rc == PR_ETIMEDOUT ? "timed out" : "canceled",
                    t->established ? "on the connection" : "in the handshake",
                    rc == PR_ETIMEDOUT ? " (deadline)" : "");
        return rc;
    }
    t->base.err = t->inner->err;
    if (t->base.err.code != rc) pr__err_set(&t->base.err, rc, 0, "TLS transport: %s", pr_strerror(rc));
    t->fatal = rc;
    return rc;
}

/* The transport ended (EOF from the inner read). */
static int pr__tls_eof(pr__tls_conn *t) {
    if (t->closing) {
        pr__err_set(&t->base.err, PR_ECLOSED, 0, "TLS connection closed");
        return t->fatal = PR_ECLOSED;
    }
    if (pr__tls_peer_not_tls(t))
        pr__tls_not_tls_err(t);
    else if (!t->established)
        pr__err_set(&t->base.err, PR_ETLS, 0, "TLS handshake failed: peer closed the connection");
    else
        pr__err_set(&t->base.err, PR_ETLS, 0, "peer closed without close_notify (truncated)");
    t->base.err.tls_error = PR_TLS_TRUNCATED;
    return t->fatal = PR_ETLS;
}

/* Hand k > 0 bytes just read into the engine's record buffer p to it,
   keeping the first ones to name a peer that does not speak TLS. */
static void pr__tls_got(pr__tls_conn *t, const unsigned char *p, size_t k) {
    pr__tls_mark(t, p, k);
    if (t->nfirst < sizeof t->first) {
        size_t m = PR__MIN(k, sizeof t->first - t->nfirst);
        memcpy(t->first + t->nfirst, p, m);
        t->nfirst += m;
    }
    br_ssl_engine_recvrec_ack(pr__tls_eng(t), k);
}

/* Drive the engine until a state in want is reached (want 0: until no
   record is left to send). Pending records go out first. When a write is
   stuck and the engine could take a record, a task alone in the connection
   reads meanwhile and then waits on both directions (the full-duplex rule);
   a second task entering wakes it (pr__tls_enter) and it goes back to
   waiting on the write alone, since that task does the reading. */
static int pr__tls_pump(pr__tls_conn *t, unsigned want, int64_t deadline) {
    br_ssl_engine_context *eng = pr__tls_eng(t);
    for (;;) {
        unsigned st;
        unsigned char *p;
        size_t len;
        ptrdiff_t k;
        int ready, duplex, rc;
        if (t->dead) return PR_ECLOSED; /* destroyed by another task while we waited */
        if (t->fatal) return t->fatal;
        st = br_ssl_engine_current_state(eng);
        if (st & BR_SSL_CLOSED) {
            int e = br_ssl_engine_last_error(eng);
            if (e != 0) return pr__tls_fail(t, e);
            if (!t->established) {
                pr__err_set(&t->base.err, PR_ETLS, 0, "TLS handshake failed: peer closed the connection");
                t->base.err.tls_error = PR_TLS_TRUNCATED;
                return PR_ETLS;
            }
            return PR_ECLOSED;
        }
        if ((st & BR_SSL_SENDREC) && !t->writing) { /* writing: another task is pushing them */
            p = br_ssl_engine_sendrec_buf(eng, &len);
            pr__tls_mark(t, p, len);
            if (t->wr_dead) {
                /* A read still drains what the departed peer sent; a write must
                   not report data as sent that nobody will receive. */
                if (!(want & BR_SSL_RECVAPP))
                    return pr__err_set(&t->base.err, PR_ECLOSED, 0, "TLS write: the peer has gone");
                br_ssl_engine_sendrec_ack(eng, len);
                continue;
            }
            /* One try only when there is something else to do meanwhile: hand
               over data already decrypted, or (alone here) take in records. */
            ready = want & st & BR_SSL_RECVAPP;
            duplex = !ready && (st & BR_SSL_RECVREC) && t->busy == 1 && !t->no_wait;
            t->writing = 1;
            k = t->inner->ops->write(t->inner, p, len, ready || duplex ? 0 : deadline);
            t->writing = 0;
            if (t->dead) return PR_ECLOSED;
            if (k > 0) {
                br_ssl_engine_sendrec_ack(eng, (size_t)k);
                continue;
            }
            if (k == PR_ECLOSED && t->established) {
                t->wr_dead = 1; /* the peer left; what it sent can still be read */
                continue;
            }
            if (k != PR_ETIMEDOUT || !(ready || duplex)) return pr__tls_transport(t, k == 0 ? PR_EIO : (int)k);
            if (ready) return PR_OK; /* the record goes out on a later call */
            p = br_ssl_engine_recvrec_buf(eng, &len);
            k = t->inner->ops->read(t->inner, p, len, 0);
            if (t->dead) return PR_ECLOSED;
            if (k > 0) {
                pr__tls_got(t, p, (size_t)k);
                continue;
            }
            if (k == PR_ECLOSED) return pr__tls_eof(t);
            if (k != PR_ETIMEDOUT) return pr__tls_transport(t, k == 0 ? PR_EIO : (int)k);
            t->duplex = pr_self();
            t->writing = 1;
            rc = pr__net_conn_wait(t->inner, PR_WAIT_READ | PR_WAIT_WRITE, deadline);
            t->writing = 0;
            t->duplex = NULL;
            if (t->dead) return PR_ECLOSED;
            if (rc == PR_ENOTSUP) {
                t->no_wait = 1;
            } else if (rc == PR_EIO) { /* the poller's own failure: its errno, not the inner connection's */
                int e = errno;
                pr__err_set(&t->base.err, rc, e, "TLS transport: waiting on the socket: %s", strerror(e));
                return t->fatal = rc;
            } else if (rc != PR_OK) {
                return pr__tls_transport(t, rc);
            }
            continue;
        }
        if (want == 0 || (st & want)) return PR_OK;
        if (st & BR_SSL_RECVREC) {
            p = br_ssl_engine_recvrec_buf(eng, &len);
            k = t->inner->ops->read(t->inner, p, len, deadline);
            if (t->dead) return PR_ECLOSED;
            if (k > 0) {
                pr__tls_got(t, p, (size_t)k);
                continue;
            }
            if (k == PR_ECLOSED) return pr__tls_eof(t);
            return pr__tls_transport(t, k == 0 ? PR_EIO : (int)k);
        }
        if ((want & BR_SSL_SENDAPP) && (st & BR_SSL_RECVAPP))
            return pr__err_set(&t->base.err, PR_ESTATE, 0,
                               "TLS write in half duplex: received data is unread (read it first, or use full duplex)");
        pr__err_set(&t->base.err, PR_ESTATE, 0, "TLS engine cannot progress (state %u)", st);
        return PR_ESTATE;
    }
}

static ptrdiff_t pr__tls_read_in(pr_conn *c, void *buf, size_t n, int64_t deadline) {
    pr__tls_conn *t = (pr__tls_conn *)c;
    br_ssl_engine_context *eng = pr__tls_eng(t);
    unsigned char *p;
    size_t len;
    int rc = pr__tls_pump(t, BR_SSL_RECVAPP, deadline);
    if (rc != PR_OK) return rc;
    p = br_ssl_engine_recvapp_buf(eng, &len);
    len = PR__MIN(len, n);
    memcpy(buf, p, len);
    br_ssl_engine_recvapp_ack(eng, len);
    return (ptrdiff_t)len;
}

static ptrdiff_t pr__tls_write_in(pr_conn *c, const void *buf, size_t n, int64_t deadline) {
    pr__tls_conn *t = (pr__tls_conn *)c;
    br_ssl_engine_context *eng = pr__tls_eng(t);
    unsigned char *p;
    size_t len;
    int rc;
    if (t->closing) return pr__err_set(&t->base.err, PR_ESTATE, 0, "TLS write after shutdown");
    if ((rc = pr__tls_pump(t, BR_SSL_SENDAPP, deadline)) != PR_OK) return rc;
    p = br_ssl_engine_sendapp_buf(eng, &len);
    len = PR__MIN(len, n);
    pr__tls_mark(t, p, len);
    memcpy(p, buf, len);
    br_ssl_engine_sendapp_ack(eng, len);
    br_ssl_engine_flush(eng, 0);
    if ((rc = pr__tls_pump(t, 0, deadline)) != PR_OK) return rc;
    return (ptrdiff_t)len;
}

static void pr__tls_start_close(pr__tls_conn *t) {
    br_ssl_engine_context *eng = pr__tls_eng(t);
    unsigned char *p;
    size_t len;
    if (t->closing) return;
    while ((p = br_ssl_engine_recvapp_buf(eng, &len)) != NULL) br_ssl_engine_recvapp_ack(eng, len);
    br_ssl_engine_close(eng);
    t->closing = 1;
}

static int pr__tls_shutdown_in(pr_conn *c, int64_t deadline) {
    pr__tls_conn *t = (pr__tls_conn *)c;
    int rc;
    pr__tls_start_close(t);
    rc = pr__tls_pump(t, 0, deadline);
    if (rc == PR_ECLOSED) rc = PR_OK;
    if (rc == PR_OK) {
        rc = t->inner->ops->shutdown(t->inner, deadline);
        if (rc == PR_ECLOSED) rc = PR_OK;
    }
    return rc;
}

/* Free the chain checker and the anchors it used (own: from ca_file/ca_pem). */
static void pr__tls_x509_free(pr__tls_conn *t) {
    if (!t->x) return;
    pr__tls_tas_free(&t->x->own);
    pr__tls_bytes_free(&t->x->leaf);
    memset(t->x, 0, sizeof *t->x);
    pr__free(t->x, sizeof *t->x);
    t->x = NULL;
}

static void pr__tls_free(pr__tls_conn *t) {
    size_t n;
    if (t->iobuf) { /* wipe the pages records reached, and no other: they were never touched */
        size_t used = t->iobuf_used, page = 4096, over = (size_t)((uintptr_t)(t->iobuf + used) % page);
        if (over) used += page - over;
        memset(t->iobuf, 0, PR__MIN(used, t->iobuf_len));
        pr__free(t->iobuf, t->iobuf_len);
    }
    pr_tls_identity_destroy(t->own_id);
    pr__tls_x509_free(t);
    if (t->alpn_size) pr__free(t->alpn_names, t->alpn_size);
    n = t->size;
    memset(t, 0, n); /* session keys */
    pr__free(t, n);
}

/* Another task may destroy the connection while this one waits inside it
   (the way to abort a blocked read): destroy then closes the transport, which
   wakes us, and only marks t dead; the last task to leave frees it. */
static ptrdiff_t pr__tls_leave(pr__tls_conn *t, ptrdiff_t rc) {
    if (!t->dead) {
        t->busy--;
        return rc;
    }
    if (--t->busy == 0) pr__tls_free(t);
    return PR_ECLOSED;
}

/* A task enters the connection. One waiting on both directions is woken
   to wait on its write alone: reading is the newcomer's job now. */
static pr__tls_conn *pr__tls_enter(pr_conn *c) {
    pr__tls_conn *t = (pr__tls_conn *)c;
    t->busy++;
    if (t->duplex) {
        pr__sched_wake(t->duplex, PR_OK);
        t->duplex = NULL;
    }
    return t;
}

static ptrdiff_t pr__tls_read(pr_conn *c, void *buf, size_t n, int64_t deadline) {
    pr__tls_conn *t = pr__tls_enter(c);
    return pr__tls_leave(t, pr__tls_read_in(c, buf, n, deadline));
}

static ptrdiff_t pr__tls_write(pr_conn *c, const void *buf, size_t n, int64_t deadline) {
    pr__tls_conn *t = pr__tls_enter(c);
    return pr__tls_leave(t, pr__tls_write_in(c, buf, n, deadline));
}

static int pr__tls_shutdown(pr_conn *c, int64_t deadline) {
    pr__tls_conn *t = pr__tls_enter(c);
    return (int)pr__tls_leave(t, pr__tls_shutdown_in(c, deadline));
}

static void pr__tls_destroy(pr_conn *c) {
    pr__tls_conn *t = (pr__tls_conn *)c;
    if (t->dead) return;
    if (!t->busy && t->established && !t->closing && !t->fatal &&
        !(br_ssl_engine_current_state(pr__tls_eng(t)) & BR_SSL_CLOSED)) {
        pr__tls_start_close(t);
        (void)pr__tls_pump(t, 0, 0); /* best effort: one try, no waiting */
    }
    if (t->busy) t->dead = 1;
    pr_conn_destroy(t->inner); /* wakes a task waiting inside with PR_ECLOSED */
    t->inner = NULL;
    if (!t->busy) pr__tls_free(t);
}

static const pr_conn_ops pr__tls_ops = { pr__tls_read, pr__tls_write, pr__tls_shutdown, pr__tls_destroy };

static int pr__tls_handshake(pr__tls_conn *t, int64_t deadline) {
    int rc = pr__tls_pump(t, BR_SSL_SENDAPP | BR_SSL_RECVAPP, deadline);
    if (rc == PR_ECLOSED) {
        pr__err_set(&t->base.err, PR_ETLS, 0, "TLS handshake failed: peer closed the connection");
        t->base.err.tls_error = PR_TLS_TRUNCATED;
        rc = PR_ETLS;
    }
    if (rc == PR_OK) {
        t->established = 1;
        pr__tls_x509_free(t); /* renegotiation is off: the engine never checks a chain again */
    }
    return rc;
}

static pr__tls_conn *pr__tls_new(pr_conn *inner, int server) {
    size_t n = offsetof(pr__tls_conn, u) + (server ? sizeof(br_ssl_server_context) : sizeof(br_ssl_client_context));
    /* the checker first: the hole it leaves after the handshake fits the next one's */
    pr__tls_x509 *x = (pr__tls_x509 *)pr__calloc(1, sizeof *x);
    pr__tls_conn *t = x ? (pr__tls_conn *)pr__calloc(1, n) : NULL;
    if (!t) {
        if (x) pr__free(x, sizeof *x);
        return NULL;
    }
    t->size = n;
    t->x = x;
    t->base.ops = &pr__tls_ops;
    t->inner = inner;
    t->server = server;
    t->x->vtable = &pr__tls_x509_vtable;
    return t;
}

/* The start of pr_tls_client and pr_tls_server: clear *err and *out, check
   the arguments (ok; need names them), take inner and make the connection.
   On failure inner is destroyed and the code returned with err filled. */
static int pr__tls_begin(pr__tls_conn **tp, pr_conn **out, pr_conn *inner, int ok, int server, pr_err_info *err,
                         const char *need) {
    *tp = NULL;
    if (err) memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (ok && (*tp = pr__tls_new(inner, server)) != NULL) return PR_OK;
    pr_conn_destroy(inner);
    if (!ok) return pr__err_set(err, PR_EINVAL, 0, "%s are required", need);
    return pr__err_set(err, PR_ENOMEM, 0, "out of memory for a TLS connection");
}

static int pr__tls_warned_insecure;

/* The client handshake failed after the server asked for our certificate.
   When the server ended it (a fatal alert, a close, a reset), the
   certificate is why: we had none (PR_TLS_NO_CLIENT_CERT) or it was
   refused or unusable there (PR_TLS_CLIENT_CERT_REFUSED). Other failures
   keep their code. */
static int pr__tls_cauth_fail(pr__tls_conn *t, int rc) {
    pr_err_info *e = &t->base.err;
    int alert = rc == PR_ETLS && e->tls_error > BR_ERR_RECV_FATAL_ALERT && e->tls_error < BR_ERR_SEND_FATAL_ALERT
                    ? e->tls_error - BR_ERR_RECV_FATAL_ALERT
                    : 0;
    int gone = (rc == PR_ETLS && e->tls_error == PR_TLS_TRUNCATED) || rc == PR_ECLOSED ||
               (rc == PR_EIO && (e->sys_errno == ECONNRESET || e->sys_errno == EPIPE));
    char how[96];
    if (!alert && !gone) return rc;
    if (alert) snprintf(how, sizeof how, "it sent alert %d, %s", alert, pr__tls_alert(alert));
    else snprintf(how, sizeof how, "it closed the connection");
    if (t->cauth.sent)
        pr__err_set(e, PR_ETLS, 0, "TLS handshake failed: the server refused our client certificate (%s)", how);
    else if (t->cauth.inner) /* ours was not sent: the server accepts none of its signature algorithms */
        pr__err_set(e, PR_ETLS, 0, "TLS handshake failed: the server accepts no signature our client "
                                   "certificate's key can make (%s)", how);
    else
        pr__err_set(e, PR_ETLS, 0,
                    "TLS handshake failed: the server requires a client certificate and none is configured (%s)",
                    how);
    e->tls_error = t->cauth.inner ? PR_TLS_CLIENT_CERT_REFUSED : PR_TLS_NO_CLIENT_CERT;
    return PR_ETLS;
}

int pr_tls_client(pr_conn **out, pr_conn *inner, const char *host, const pr_tls_opts *opts, pr_err_info *err,
                  int64_t deadline) {
    pr_tls_opts o;
    pr_err_info scratch;
    pr__tls_conn *t = NULL;
    const pr__tls_tas *tas = NULL;
    const pr_tls_identity *id;
    br_ssl_engine_context *eng;
    const char *alpn;
    size_t hlen;
    int rc, nalpn;
    if (opts) o = *opts;
    else memset(&o, 0, sizeof o);
    if (!err) err = &scratch;
    if ((rc = pr__tls_begin(&t, out, inner, out && inner && host, 0, err, "pr_tls_client: out, inner and host")))
        return rc;
    /* host: "[v6]" -> "v6"; one trailing dot dropped; IP literals noted */
    hlen = strlen(host);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    if (hlen > 0 && host[hlen - 1] == '.') hlen--;
    if (hlen == 0 || hlen > 255) {
        rc = pr__err_set(err, PR_EINVAL, 0, "TLS host name is empty or longer than 255 bytes");
        goto fail;
    }
    memcpy(t->x->host, host, hlen);
    t->x->host[hlen] = 0;
    if (inet_pton(AF_INET, t->x->host, t->x->ip) == 1) t->x->iplen = 4;
    else if (inet_pton(AF_INET6, t->x->host, t->x->ip) == 1) t->x->iplen = 16;
    /* ALPN */
    alpn = o.alpn ? o.alpn : "http/1.1";
    {
        const char *names[PR__TLS_MAX_ALPN];
        char buf[256];
        nalpn = pr__tls_alpn_parse(alpn, buf, sizeof buf, names);
    }
    if (nalpn < 0) {
        rc = pr__err_set(err, PR_EINVAL, 0, "bad ALPN list (at most %d names, 255 bytes)", PR__TLS_MAX_ALPN);
        goto fail;
    }
    /* trust anchors */
    if (o.insecure_skip_verify_DANGEROUS) {
        t->x->insecure = 1;
        if (!__atomic_exchange_n(&pr__tls_warned_insecure, 1, __ATOMIC_RELAXED))
            PR__LOG(PR_LEVEL_WARN, "tls", "insecure_skip_verify_DANGEROUS: server certificates are NOT checked");
    } else if (o.anchors) {
        tas = &o.anchors->tas;
    } else if (o.ca_pem || o.ca_file) {
        if ((rc = pr__tls_tas_load(&t->x->own, o.ca_file, o.ca_pem, o.ca_pem_len, err)) != PR_OK) goto fail;
        tas = &t->x->own;
    } else if ((rc = pr__tls_system_anchors(&tas, err)) != PR_OK) {
        goto fail;
    }
    /* client certificate */
    id = o.identity;
    if (!id && (o.cert_file || o.cert_pem || o.key_file || o.key_pem)) {
        if ((rc = pr__tls_id_new(&t->own_id, o.cert_file, o.cert_pem, o.cert_pem_len, o.key_file, o.key_pem,
                                 o.key_pem_len, err)) != PR_OK)
            goto fail;
        id = t->own_id;
    }
    br_ssl_client_init_full(&t->u.c, &t->x->mini, tas ? tas->v : NULL, tas ? tas->n : 0);
    eng = &t->u.c.eng;
    pr__tls_setup_engine(eng);
    br_ssl_engine_set_x509(eng, &t->x->vtable);
    if (id && id->key_type == BR_KEYTYPE_RSA)
        br_ssl_client_set_single_rsa(&t->u.c, id->chain, id->nchain, br_skey_decoder_get_rsa(&id->key),
                                     br_rsa_pkcs1_sign_get_default());
    else if (id) /* ECDSA signatures only: every suite offered is ECDHE */
        br_ssl_client_set_single_ec(&t->u.c, id->chain, id->nchain, br_skey_decoder_get_ec(&id->key),
                                    BR_KEYTYPE_SIGN, id->issuer_key_type, br_ec_get_default(),
                                    br_ecdsa_sign_asn1_get_default());
    /* BearSSL 0.6 has no getter for the handler set_single_* installed: read it back */
    t->cauth.inner = id ? t->u.c.client_auth_vtable : NULL;
    t->cauth.vtable = &pr__tls_cauth_vtable;
    br_ssl_client_set_client_certificate(&t->u.c, &t->cauth.vtable);
    if (pr__tls_alpn_set(t, alpn) != PR_OK) {
        rc = pr__err_set(err, PR_ENOMEM, 0, "out of memory for the ALPN names");
        goto fail;
    }
    if (o.half_duplex > 1 || o.half_duplex < -1) {
        rc = pr__err_set(err, PR_EINVAL, 0, "pr_tls_opts.half_duplex is -1, 0 or 1");
        goto fail;
    }
    if (pr__tls_set_buffer(t, o.half_duplex > 0) != PR_OK) {
        rc = pr__err_set(err, PR_ENOMEM, 0, "out of memory for a TLS record buffer");
        goto fail;
    }
    pr__tls_entropy(eng);
    if (!br_ssl_client_reset(&t->u.c, t->x->iplen ? NULL : t->x->host, 0)) {
        rc = pr__tls_fail(t, br_ssl_engine_last_error(eng));
        *err = t->base.err;
        goto fail;
    }
    if ((rc = pr__tls_handshake(t, deadline)) != PR_OK) {
        if (t->cauth.asked) rc = pr__tls_cauth_fail(t, rc);
        *err = t->base.err;
        goto fail;
    }
    /* the handshake's deep frames (certificate checks, ECDHE) have returned:
       their stack pages need not stay resident for the connection's life */
    pr__coro_shed(pr_self() ? pr_self()->coro : NULL);
    *out = &t->base;
    return PR_OK;
fail:
    pr__tls_destroy(&t->base);
    return rc;
}

/* ---- server ---- */
void pr_tls_server_cfg_destroy(pr_tls_server_cfg *cfg) {
    if (!cfg) return;
    pr__tls_id_free(&cfg->id); /* wipes the private key */
    pr__tls_tas_free(&cfg->client_cas);
    pr__free(cfg, sizeof *cfg);
}

int pr_tls_server_cfg_create(pr_tls_server_cfg **out, const char *cert_pem, size_t cert_len, const char *key_pem,
                             size_t key_len, pr_err_info *err) {
    pr_tls_server_cfg *cfg;
    int rc;
    if (err) memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out || !cert_pem || !key_pem)
        return pr__err_set(err, PR_EINVAL, 0, "pr_tls_server_cfg_create: out, cert_pem and key_pem are required");
    if (!(cfg = (pr_tls_server_cfg *)pr__calloc(1, sizeof *cfg)))
        return pr__err_set(err, PR_ENOMEM, 0, "out of memory for a TLS server configuration");
    snprintf(cfg->alpn, sizeof cfg->alpn, "%s", "http/1.1");
    rc = pr__tls_id_parse(&cfg->id, cert_pem, cert_len ? cert_len : strlen(cert_pem), "cert_pem", key_pem,
                          key_len ? key_len : strlen(key_pem), "key_pem", "TLS server configuration", err);
    if (rc != PR_OK) {
        pr__free(cfg, sizeof *cfg);
        return rc;
    }
    *out = cfg;
    return PR_OK;
}

int pr_tls_server_cfg_require_client_cert(pr_tls_server_cfg *cfg, const char *ca_pem, size_t ca_len,
                                          pr_err_info *err) {
    pr__tls_tas tas;
    int rc;
    if (err) memset(err, 0, sizeof *err);
    if (!cfg || !ca_pem)
        return pr__err_set(err, PR_EINVAL, 0, "pr_tls_server_cfg_require_client_cert: cfg and ca_pem are required");
    memset(&tas, 0, sizeof tas);
    if ((rc = pr__tls_tas_load(&tas, NULL, ca_pem, ca_len, err)) != PR_OK) return rc;
    pr__tls_tas_free(&cfg->client_cas);
    cfg->client_cas = tas;
    return PR_OK;
}

int pr_tls_server_cfg_set_alpn(pr_tls_server_cfg *cfg, const char *alpn) {
    char buf[256];
    const char *names[PR__TLS_MAX_ALPN];
    if (!cfg) return PR_EINVAL;
    if (!alpn) alpn = "";
    if (pr__tls_alpn_parse(alpn, buf, sizeof buf, names) < 0) return PR_EINVAL;
    snprintf(cfg->alpn, sizeof cfg->alpn, "%s", alpn);
    return PR_OK;
}

int pr_tls_server(pr_conn **out, pr_conn *inner, const pr_tls_server_cfg *cfg, pr_err_info *err,
                  int64_t deadline) {
    pr__tls_conn *t;
    br_ssl_engine_context *eng;
    int rc;
    if ((rc = pr__tls_begin(&t, out, inner, out && inner && cfg, 1, err, "pr_tls_server: out, inner and cfg")))
        return rc;
    snprintf(t->x->host, sizeof t->x->host, "%s", "(client)");
    if (cfg->id.key_type == BR_KEYTYPE_RSA)
        br_ssl_server_init_full_rsa(&t->u.s, cfg->id.chain, cfg->id.nchain, br_skey_decoder_get_rsa(&cfg->id.key));
    else
        br_ssl_server_init_full_ec(&t->u.s, cfg->id.chain, cfg->id.nchain, cfg->id.issuer_key_type,
                                   br_skey_decoder_get_ec(&cfg->id.key));
    eng = &t->u.s.eng;
    pr__tls_setup_engine(eng);
    if (cfg->client_cas.n > 0) { /* ask for a client chain and check it against these CAs */
        br_x509_minimal_init_full(&t->x->mini, cfg->client_cas.v, cfg->client_cas.n);
        br_ssl_engine_set_x509(eng, &t->x->vtable);
        br_ssl_server_set_trust_anchor_names_alt(&t->u.s, cfg->client_cas.v, cfg->client_cas.n);
        br_ssl_engine_set_default_rsavrfy(eng); /* for the client's CertificateVerify */
        br_ssl_engine_set_default_ecdsa(eng);
    }
    if (pr__tls_alpn_set(t, cfg->alpn) != PR_OK || pr__tls_set_buffer(t, 0) != PR_OK) {
        if (err) pr__err_set(err, PR_ENOMEM, 0, "out of memory for a TLS connection");
        pr__tls_destroy(&t->base);
        return PR_ENOMEM;
    }
    pr__tls_entropy(eng);
    if (!br_ssl_server_reset(&t->u.s)) rc = pr__tls_fail(t, br_ssl_engine_last_error(eng));
    else rc = pr__tls_handshake(t, deadline);
    if (rc != PR_OK) {
        PR__LOG(PR_LEVEL_DEBUG, "tls", "server handshake: %s", t->base.err.msg);
        if (err) *err = t->base.err;
        pr__tls_destroy(&t->base);
        return rc;
    }
    *out = &t->base;
    return PR_OK;
}

const char *pr_tls_alpn(const pr_conn *c) {
    pr__tls_conn *t;
    if (!c || c->ops != &pr__tls_ops) return NULL;
    t = (pr__tls_conn *)(void *)(uintptr_t)c;
    return br_ssl_engine_get_selected_protocol(pr__tls_eng(t));
}

#undef PR__TLS_X
#undef PR__TLS_CA
#undef PR__TLS_MAX_ALPN

#else /* PRISTINE_NO_TLS: the API is there, TLS is not */

int pr_tls_client(pr_conn **out, pr_conn *inner, const char *host, const pr_tls_opts *opts, pr_err_info *err,
                  int64_t deadline) {
    PR__UNUSED(host);
    PR__UNUSED(opts);
    PR__UNUSED(deadline);
    if (out) *out = NULL;
    pr_conn_destroy(inner);
    return pr__err_set(err, PR_ENOTSUP, 0, "TLS is not built in (PRISTINE_NO_TLS)");
}

int pr_tls_anchors_create(pr_tls_anchors **out, const char *ca_file, const char *ca_pem, size_t ca_pem_len,
                          pr_err_info *err) {
    PR__UNUSED(ca_file);
    PR__UNUSED(ca_pem);
    PR__UNUSED(ca_pem_len);
    if (out) *out = NULL;
    return pr__err_set(err, PR_ENOTSUP, 0, "TLS is not built in (PRISTINE_NO_TLS)");
}

void pr_tls_anchors_destroy(pr_tls_anchors *a) { PR__UNUSED(a); }

int pr_tls_identity_create(pr_tls_identity **out, const char *cert_file, const char *cert_pem, size_t cert_pem_len,
                           const char *key_file, const char *key_pem, size_t key_pem_len, pr_err_info *err) {
    PR__UNUSED(cert_file);
    PR__UNUSED(cert_pem);
    PR__UNUSED(cert_pem_len);
    PR__UNUSED(key_file);
    PR__UNUSED(key_pem);
    PR__UNUSED(key_pem_len);
    if (out) *out = NULL;
    return pr__err_set(err, PR_ENOTSUP, 0, "TLS is not built in (PRISTINE_NO_TLS)");
}

void pr_tls_identity_destroy(pr_tls_identity *id) { PR__UNUSED(id); }

int pr_tls_server_cfg_require_client_cert(pr_tls_server_cfg *cfg, const char *ca_pem, size_t ca_len,
                                          pr_err_info *err) {
    PR__UNUSED(cfg);
    PR__UNUSED(ca_pem);
    PR__UNUSED(ca_len);
    return pr__err_set(err, PR_ENOTSUP, 0, "TLS is not built in (PRISTINE_NO_TLS)");
}

int pr_tls_server_cfg_create(pr_tls_server_cfg **out, const char *cert_pem, size_t cert_len, const char *key_pem,
                             size_t key_len, pr_err_info *err) {
    PR__UNUSED(cert_pem);
    PR__UNUSED(cert_len);
    PR__UNUSED(key_pem);
    PR__UNUSED(key_len);
    if (out) *out = NULL;
    return pr__err_set(err, PR_ENOTSUP, 0, "TLS is not built in (PRISTINE_NO_TLS)");
}

int pr_tls_server_cfg_set_alpn(pr_tls_server_cfg *cfg, const char *alpn) {
    PR__UNUSED(cfg);
    PR__UNUSED(alpn);
    return PR_ENOTSUP;
}

void pr_tls_server_cfg_destroy(pr_tls_server_cfg *cfg) { PR__UNUSED(cfg); }

int pr_tls_server(pr_conn **out, pr_conn *inner, const pr_tls_server_cfg *cfg, pr_err_info *err,
                  int64_t deadline) {
    PR__UNUSED(cfg);
    PR__UNUSED(deadline);
    if (out) *out = NULL;
    pr_conn_destroy(inner);
    return pr__err_set(err, PR_ENOTSUP, 0, "TLS is not built in (PRISTINE_NO_TLS)");
}

const char *pr_tls_alpn(const pr_conn *c) {
    PR__UNUSED(c);
    return NULL;
}

void pr_tls_global_cleanup(void) {}

#endif /* PRISTINE_NO_TLS */

/* ==== http: one HTTP/1.1 exchange over a pr_conn: request writer, response parser, bodies ==== >>http.impl */
#define PR__HTTP_DEF_HEAD 65536
#define PR__HTTP_DEF_FIELDS 100
#define PR__HTTP_DEF_CHUNK_LINE 4096
#define PR__HTTP_DEF_INTERIM 10
#define PR__HTTP_DEF_RECV 65536
#define PR__HTTP_CHUNK_OUT 16384 /* streaming request body chunk */
#define PR__HTTP_HEAD_ROOM 4096  /* buffer bytes expected to hold a head */
#define PR__HTTP_FIRST_BODY 12288 /* body bytes the first buffer holds beside the head */
#define PR__HTTP_INLINE_FIELDS 12 /* header fields held in the response itself */
#define PR__HTTP_SHRINK_FILLS 16  /* small reads in a row after which a grown body buffer shrinks back */

/* Body framing states. */
enum {
    PR__HTTP_B_DONE = 0,
    PR__HTTP_B_IDENT,      /* remaining bytes of a Content-Length body */
    PR__HTTP_B_EOF,        /* until the connection closes */
    PR__HTTP_B_CSIZE,      /* in a chunk-size line */
    PR__HTTP_B_CDATA,      /* remaining bytes of a chunk */
    PR__HTTP_B_CCRLF,      /* the CRLF after chunk data */
    PR__HTTP_B_TRAILER     /* trailer section */
};

/* Sub-states of a chunk-size line and of the trailer section. */
enum { PR__HTTP_CS_DIGITS, PR__HTTP_CS_BWS, PR__HTTP_CS_EXT, PR__HTTP_CS_LF };
enum { PR__HTTP_TR_START, PR__HTTP_TR_NAME, PR__HTTP_TR_VALUE, PR__HTTP_TR_LINE_LF, PR__HTTP_TR_END_LF };

struct pr_http_response {
    pr_conn *conn;
    pr_http_opts opts;        /* resolved */
    char *buf;                /* [0, base): the head; [base, cap): body area */
    size_t cap, base, rpos, wpos;
    char *head;               /* the head in a block of its own once the body buffer was resized
                                 (its views stay valid until destroy); then base is 0 */
    size_t head_len;
    int full_fill;            /* the last read filled the body area: the stream outruns the buffer */
    unsigned small_fills;     /* reads in a row that used little of a grown body area */
    pr_http_header *hdrs;     /* hdrs_inline until a head has more fields */
    size_t nhdrs, hdrs_cap;
    pr_http_header hdrs_inline[PR__HTTP_INLINE_FIELDS];
    int status, minor;
    pr_slice reason;
    int state, sub;           /* body state and chunk/trailer sub-state */
    uint64_t remaining;       /* IDENT / CDATA bytes left */
    unsigned ndigits;         /* chunk-size hex digits seen */
    size_t line_len;          /* bytes of the current chunk-size line */
    size_t tr_bytes, tr_fields;
    size_t head_used;         /* bytes of earlier heads (1xx, a CONNECT reply) in max_head_bytes */
    int keepalive;            /* framing and Connection allow reuse */
    int rx;                   /* a response byte has arrived */
    int64_t rx_at;            /* the idle clock: when the request went out or the last byte came */
    int err;                  /* sticky error, 0 = none */
    pr_err_info einfo;
    /* set by the layer that owns the connection (the client): called by
       pr_http_response_destroy before the buffers go, so it can hand the
       connection back to a pool (pr_http_reusable still answers) */
    void (*on_destroy)(pr_http_response *r, void *ctx);
    void *on_destroy_ctx;
    char limit[48];           /* names the deadline in timeout messages ("deadline") */
};

static void pr__http_opts_resolve(pr_http_opts *o, const pr_http_opts *in) {
    if (in) *o = *in;
    else memset(o, 0, sizeof *o);
    o->max_head_bytes = PR__DEF(o->max_head_bytes, PR__HTTP_DEF_HEAD);
    o->max_fields = PR__DEF(o->max_fields, PR__HTTP_DEF_FIELDS);
    o->max_chunk_line = PR__DEF(o->max_chunk_line, PR__HTTP_DEF_CHUNK_LINE);
    o->max_interim = PR__DEF(o->max_interim, PR__HTTP_DEF_INTERIM);
    o->recv_buf_size = PR__DEF(o->recv_buf_size, PR__HTTP_DEF_RECV);
    if (o->idle_timeout_ms < 0) o->idle_timeout_ms = 0;
}

/* Byte classes of a head: RFC 9110 tchar, a control byte a field may not
   carry (all but HTAB, and DEL), and CR. */
#define PR__HTTP_TCHAR 1
#define PR__HTTP_CTL 2
#define PR__HTTP_CR 4
#define PR__HTTP_HC(c)                                                                                                 \
    (((((c) >= '0' && (c) <= '9') || ((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || (c) == '!' ||   \
       (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || (c) == '\'' || (c) == '*' || (c) == '+' ||          \
       (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~')            \
          ? PR__HTTP_TCHAR                                                                                        \
          : 0) |                                                                                                  \
     ((c) == 0x7f || ((c) < 0x20 && (c) != '\t' && (c) != '\r') ? PR__HTTP_CTL : 0) | ((c) == '\r' ? PR__HTTP_CR : 0))
#define PR__HTTP_HC4(c) PR__HTTP_HC(c), PR__HTTP_HC((c) + 1), PR__HTTP_HC((c) + 2), PR__HTTP_HC((c) + 3)
#define PR__HTTP_HC16(c) PR__HTTP_HC4(c), PR__HTTP_HC4((c) + 4), PR__HTTP_HC4((c) + 8), PR__HTTP_HC4((c) + 12)
#define PR__HTTP_HC64(c) PR__HTTP_HC16(c), PR__HTTP_HC16((c) + 16), PR__HTTP_HC16((c) + 32), PR__HTTP_HC16((c) + 48)
static const unsigned char pr__http_cls[256] = { PR__HTTP_HC64(0), PR__HTTP_HC64(64), PR__HTTP_HC64(128), PR__HTTP_HC64(192) };
#undef PR__HTTP_HC64
#undef PR__HTTP_HC16
#undef PR__HTTP_HC4
#undef PR__HTTP_HC

static int pr__http_tchar(unsigned char c) { return pr__http_cls[c] & PR__HTTP_TCHAR; }

static int pr__http_is_token(const char *p, size_t n) {
    size_t i;
    if (!n) return 0;
    for (i = 0; i < n; i++)
        if (!pr__http_tchar((unsigned char)p[i])) return 0;
    return 1;
}

/* The media type of a Content-Type value: what precedes its parameters,
   trimmed ("text/html; charset=utf-8" gives "text/html"). */
static PR__MAYBE_UNUSED pr_slice pr__http_media_type(pr_slice ct) {
    const char *semi = ct.len ? (const char *)memchr(ct.ptr, ';', ct.len) : NULL;
    if (semi) ct.len = (size_t)(semi - ct.ptr);
    return pr_slice_trim(ct);
}

/* Whether a Content-Type value (NULL: none) has the media type type, in
   any case and with any parameters. */
static PR__MAYBE_UNUSED int pr__http_media_is(const pr_slice *ct, const char *type) {
    return ct && pr_slice_ieq(pr__http_media_type(*ct), pr_slice_cstr(type));
}

static int pr__http_hdr_is(pr_slice name, const char *s) { return pr_slice_ieq(name, pr_slice_cstr(s)); }

/* ---- field lines a caller supplies: the one parser (offered to the modules after http) ---- */

/* A field name (or the start of a line) for a message: at most 40 bytes,
   anything but printable ASCII as '?'. */
static const char *pr__http_field_shown(char *out, const char *p, size_t n) {
    size_t i;
    if (n > 40) n = 40;
    for (i = 0; i < n; i++) out[i] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
    out[n] = 0;
    return out;
}

/* Parse one caller-supplied field line line[0, len) (no line end): a token
   name, a colon, a value without CR, LF or NUL; whitespace around the value
   is trimmed. Returns PR_OK with *name, *value set (views into line), or
   PR_EINVAL with err (optional) naming the line's field. */
static int pr__http_field_line(const char *line, size_t len, pr_slice *name, pr_slice *value, pr_err_info *err) {
    const char *colon = line ? (const char *)memchr(line, ':', len) : NULL;
    char shown[41];
    size_t i, nl = colon ? (size_t)(colon - line) : len;
    if (!colon)
        return pr__err_set(err, PR_EINVAL, 0, "http: header line \"%s\" has no colon",
                           pr__http_field_shown(shown, line ? line : "", line ? len : 0));
    if (!pr__http_is_token(line, nl))
        return pr__err_set(err, PR_EINVAL, 0, "http: header field name \"%s\" is not a token",
                           pr__http_field_shown(shown, line, nl));
    for (i = nl + 1; i < len; i++)
        if (line[i] == '\r' || line[i] == '\n' || line[i] == 0)
            return pr__err_set(err, PR_EINVAL, 0, "http: header field \"%s\": the value has a CR, LF or NUL",
                               pr__http_field_shown(shown, line, nl));
    name->ptr = line;
    name->len = nl;
    value->ptr = colon + 1;
    value->len = len - nl - 1;
    *value = pr_slice_trim(*value);
    return PR_OK;
}

/* What pr__http_fields hands each valid field: a nonzero return stops the
   walk and is returned. */
typedef int (*pr__http_field_fn)(pr_slice name, pr_slice value, void *user_data);

/* Walk caller-supplied field lines: the NULL-terminated array lines (each
   line without a line end), or when lines is NULL the buffer buf[0, len)
   of lines each ended by "\r\n" (what a headers_fn appends). Every line is
   checked by pr__http_field_line and handed to fn (NULL = only check).
   Returns PR_OK; PR_EINVAL for a bad line (a line of the buffer without
   its "\r\n", an empty one, one pr__http_field_line refuses), err
   (optional) naming the line's field; or fn's nonzero return. */
static int pr__http_fields(const char *const *lines, const char *buf, size_t len, pr__http_field_fn fn,
                           void *user_data, pr_err_info *err) {
    pr_slice name, value;
    char shown[41];
    size_t pos = 0;
    int rc;
    for (; lines && *lines; lines++) {
        if ((rc = pr__http_field_line(*lines, strlen(*lines), &name, &value, err)) != PR_OK) return rc;
        if (fn && (rc = fn(name, value, user_data)) != 0) return rc;
    }
    while (!lines && buf && pos < len) {
        const char *line = buf + pos, *lf = (const char *)memchr(line, '\n', len - pos);
        size_t n = lf ? (size_t)(lf - line) : len - pos;
        if (!lf || !n || line[n - 1] != '\r') {
            const char *colon = (const char *)memchr(line, ':', n);
            return pr__err_set(err, PR_EINVAL, 0, "http: header line \"%s\" is not ended by CRLF",
                               pr__http_field_shown(shown, line, colon ? (size_t)(colon - line) : n));
        }
        if (n == 1) return pr__err_set(err, PR_EINVAL, 0, "http: an empty header line");
        if ((rc = pr__http_field_line(line, n - 1, &name, &value, err)) != PR_OK) return rc;
        if (fn && (rc = fn(name, value, user_data)) != 0) return rc;
        pos += n + 1;
    }
    return PR_OK;
}

/* Fields gathered as slices by pr__http_fields: fn = pr__http_field_push,
   user_data = the set. */
typedef struct pr__http_field_set {
    pr_http_header *h;
    size_t n, cap;
} pr__http_field_set;

/* pr__http_fields' fn that appends each field to a pr__http_field_set
   (the slices point into the walked lines); PR_ELIMIT when it is full. */
static PR__MAYBE_UNUSED int pr__http_field_push(pr_slice name, pr_slice value, void *user_data) {
    pr__http_field_set *set = (pr__http_field_set *)user_data;
    if (set->n >= set->cap) return PR_ELIMIT;
    set->h[set->n].name = name;
    set->h[set->n].value = value;
    set->n++;
    return PR_OK;
}

/* A NULL-terminated array of field lines in one block of *size bytes
   (free it with pr__free(*out, *size)): the pointers of lines (NULL =
   none; their strings are not copied), then "Name: value" lines made of
   the n fields h (copied into the block). For a caller that adds fields
   of its own to a request's lines, or still holds its fields as slices.
   Returns PR_OK or PR_ENOMEM. */
static PR__MAYBE_UNUSED int pr__http_lines_join(const char *const *lines, const pr_http_header *h, size_t n,
                                                const char ***out, size_t *size) {
    size_t k = 0, bytes = 0, i;
    char *p;
    while (lines && lines[k]) k++;
    for (i = 0; i < n; i++) bytes += h[i].name.len + 2 + h[i].value.len + 1;
    *size = (k + n + 1) * sizeof **out + bytes;
    if (!(*out = (const char **)pr__alloc(*size))) return PR_ENOMEM;
    p = (char *)(*out + k + n + 1);
    for (i = 0; i < k; i++) (*out)[i] = lines[i];
    for (i = 0; i < n; i++) {
        (*out)[k + i] = p;
        memcpy(p, h[i].name.ptr, h[i].name.len);
        p += h[i].name.len;
        memcpy(p, ": ", 2);
        p += 2;
        if (h[i].value.len) memcpy(p, h[i].value.ptr, h[i].value.len);
        p += h[i].value.len;
        *p++ = 0;
    }
    (*out)[k + n] = NULL;
    return PR_OK;
}

/* ---- request writer ---- */

/* What the request head's field lines say (pr__http_fields' walk). */
struct pr__http_head_facts { int host, upgrade; pr_err_info *err; };
static int pr__http_head_check(pr_slice name, pr_slice value, void *user_data) {
    struct pr__http_head_facts *f = (struct pr__http_head_facts *)user_data;
    char shown[41];
    PR__UNUSED(value);
    if (pr__http_hdr_is(name, "content-length") || pr__http_hdr_is(name, "transfer-encoding"))
        return pr__err_set(f->err, PR_EINVAL, 0, "http: header field \"%s\" is the library's (body, body_fn)",
                           pr__http_field_shown(shown, name.ptr, name.len));
    if (pr__http_hdr_is(name, "host")) f->host = 1;
    if (pr__http_hdr_is(name, "upgrade")) f->upgrade = 1;
    return 0;
}

static int pr__http_head_put(pr_slice name, pr_slice value, void *user_data) {
    pr_buf *b = (pr_buf *)user_data;
    int rc = pr_buf_append(b, name.ptr, name.len);
    if (!rc) rc = pr_buf_append(b, ": ", 2);
    if (!rc) rc = pr_buf_append(b, value.ptr, value.len);
    if (!rc) rc = pr_buf_append(b, "\r\n", 2);
    return rc;
}

/* Build the request head into b; *upgrade: the request has an Upgrade
   field. A bad field line is PR_EINVAL with err saying which. */
static int pr__http_build_head(pr_buf *b, const pr_http_request *req, const char *method, const pr_slice *target,
                               int *has_body, int *upgrade, pr_err_info *err) {
    size_t mlen = strlen(method);
    struct pr__http_head_facts f;
    int rc;
    f.host = f.upgrade = 0;
    f.err = err;
    if ((rc = pr__http_fields(req->headers, NULL, 0, pr__http_head_check, &f, err)) != PR_OK) return rc;
    *upgrade = f.upgrade;
    *has_body = req->body != NULL || req->body_len > 0 || req->body_fn != NULL;
    rc = pr_buf_append(b, method, mlen);
    if (!rc) rc = pr_buf_append(b, " ", 1);
    if (!rc) rc = target ? pr_buf_append(b, target->ptr, target->len) : pr_url_target(b, req->url);
    if (!rc) rc = pr_buf_append_str(b, " HTTP/1.1\r\n");
    if (!rc && !f.host) {
        rc = pr_buf_append_str(b, "Host: ");
        if (!rc) rc = pr_url_authority(b, req->url, 0);
        if (!rc) rc = pr_buf_append(b, "\r\n", 2);
    }
    if (!rc) rc = pr__http_fields(req->headers, NULL, 0, pr__http_head_put, b, NULL);
    if (!rc) {
        if (req->body_fn)
            rc = pr_buf_append_str(b, "Transfer-Encoding: chunked\r\n");
        else if (*has_body || (mlen == 4 && !memcmp(method, "POST", 4)) || (mlen == 3 && !memcmp(method, "PUT", 3)) ||
                 (mlen == 5 && !memcmp(method, "PATCH", 5))) {
            char num[20];
            rc = pr_buf_append_str(b, "Content-Length: ");
            if (!rc) rc = pr_buf_append(b, num, pr__buf_dec(num, (uint64_t)req->body_len));
            if (!rc) rc = pr_buf_append(b, "\r\n", 2);
        }
    }
    if (!rc) rc = pr_buf_append(b, "\r\n", 2);
    return rc;
}

/* Send a streaming body in chunked encoding. *wfail is set when a write
   (not body_fn or memory) failed. */
static int pr__http_send_chunked(pr_conn *conn, const pr_http_request *req, int64_t deadline, int *wfail) {
    enum { PR__HTTP_PRE = 18 }; /* up to 16 hex digits + CRLF */
    size_t cap = PR__HTTP_PRE + PR__HTTP_CHUNK_OUT + 2;
    char *b = (char *)pr__alloc(cap);
    int rc = PR_OK;
    if (!b) return PR_ENOMEM;
    for (;;) {
        char hex[20];
        int hl;
        ptrdiff_t k = req->body_fn(b + PR__HTTP_PRE, PR__HTTP_CHUNK_OUT, req->body_user_data);
        if (k < 0) {
            rc = (int)k;
            break;
        }
        if (k == 0) {
            rc = pr_conn_write(conn, "0\r\n\r\n", 5, deadline);
            if (rc) *wfail = 1;
            break;
        }
        if ((size_t)k > PR__HTTP_CHUNK_OUT) {
            rc = PR_EINVAL;
            break;
        }
        hl = snprintf(hex, sizeof hex, "%lx\r\n", (unsigned long)k);
        memcpy(b + PR__HTTP_PRE - hl, hex, (size_t)hl);
        memcpy(b + PR__HTTP_PRE + k, "\r\n", 2);
        rc = pr_conn_write(conn, b + PR__HTTP_PRE - hl, (size_t)hl + (size_t)k + 2, deadline);
        if (rc) {
            *wfail = 1;
            break;
        }
    }
    pr__free(b, cap);
    return rc;
}

/* ---- receiving ---- */

/* Record a failure in the response and mirror it into the connection. */
static int pr__http_fail(pr_http_response *r, int code, const char *msg) {
    pr__err_set(&r->einfo, code, 0, "http: %s", msg);
    r->einfo.http_status = r->status;
    r->conn->err = r->einfo;
    return code;
}

/* A conn error: keep the conn's detail. */
static int pr__http_conn_fail(pr_http_response *r, int code) {
    r->einfo = r->conn->err;
    r->einfo.code = code;
    r->einfo.http_status = r->status;
    return code;
}

/* Read more bytes into [wpos, cap). Returns > 0, PR_ECLOSED, or an error;
   timeout messages name the phase and the limit that fired. */
static ptrdiff_t pr__http_fill(pr_http_response *r, char *dst, size_t n, int64_t deadline) {
    const char *phase =
        r->state == PR__HTTP_B_DONE && !r->base && !r->head ? "waiting for the response head" : "reading the body";
    char msg[120];
    int64_t dl = deadline;
    ptrdiff_t k;
    int idle = 0;
    if (r->opts.idle_timeout_ms > 0) {
        int64_t idl = pr__time_add(r->rx_at, r->opts.idle_timeout_ms);
        if (idl < dl) {
            dl = idl;
            idle = 1;
        }
    }
    k = pr_conn_read(r->conn, dst, n, dl);
    if (k == 0) k = PR_ECLOSED; /* a conn must not return 0; never spin on it */
    if (k > 0) r->rx_at = pr_now();
    if (k == PR_ETIMEDOUT) {
        if (idle && pr_now() >= dl) { /* the connection went silent: it counts as dead, for good */
            /* a limit of ours, not the caller's deadline: PR_EIO, errno ETIMEDOUT */
            snprintf(msg, sizeof msg, "no byte for %d ms %s (idle timeout)", r->opts.idle_timeout_ms, phase);
            r->err = pr__http_fail(r, PR_EIO, msg);
            r->einfo.sys_errno = r->conn->err.sys_errno = ETIMEDOUT;
            return r->err;
        }
        snprintf(msg, sizeof msg, "timed out %s (%s)", phase, r->limit);
        return pr__http_fail(r, PR_ETIMEDOUT, msg);
    }
    if (k == PR_ECANCELED) {
        snprintf(msg, sizeof msg, "canceled %s", phase);
        return pr__http_fail(r, PR_ECANCELED, msg);
    }
    return k;
}

/* Find the end of the head in b[0, len): the index just past the blank
   line, or 0 if it has not arrived. *scan is where to resume the search
   (O(n) in total however the bytes are split). */
static size_t pr__http_head_end(const char *b, size_t *scan, size_t len) {
    size_t i = *scan;
    while (i < len) {
        const char *lf = (const char *)memchr(b + i, '\n', len - i);
        size_t x, j;
        if (!lf) break;
        x = (size_t)(lf - b);
        j = x + 1;
        if (j >= len || (b[j] == '\r' && j + 1 >= len)) {
            *scan = x; /* look at this line break again when more bytes are in */
            return 0;
        }
        if (b[j] == '\n') return j + 1;
        if (b[j] == '\r' && b[j + 1] == '\n') return j + 2;
        i = j;
    }
    *scan = len;
    return 0;
}

static int pr__http_add_hdr(pr_http_response *r, pr_slice name, pr_slice value) {
    if (r->nhdrs == r->hdrs_cap) {
        size_t nc = r->hdrs_cap * 2;
        pr_http_header *h;
        if (nc > r->opts.max_fields) nc = r->opts.max_fields;
        if (r->hdrs == r->hdrs_inline) {
            if ((h = (pr_http_header *)pr__alloc(nc * sizeof *h)) != NULL) memcpy(h, r->hdrs, r->nhdrs * sizeof *h);
        } else {
            h = (pr_http_header *)pr__realloc(r->hdrs, r->hdrs_cap * sizeof *h, nc * sizeof *h);
        }
        if (!h) return PR_ENOMEM;
        r->hdrs = h;
        r->hdrs_cap = nc;
    }
    r->hdrs[r->nhdrs].name = name;
    r->hdrs[r->nhdrs].value = value;
    r->nhdrs++;
    return PR_OK;
}

#ifdef PRISTINE_TESTING
/* Bytes the obs-fold join touched, so a test can check it stays linear. */
static size_t pr__http_test_fold_work;
#define PR__HTTP_FOLD_WORK(n) (pr__http_test_fold_work += (n))
/* Steps of the body framing (bytes it examined, spans handed out, bytes
   moved in the buffer, fills), so a fuzzer can check they stay linear. */
static size_t pr__http_test_body_work;
#define PR__HTTP_BODY_WORK(n) (pr__http_test_body_work += (size_t)(n))
#else
#define PR__HTTP_FOLD_WORK(n) ((void)0)
#define PR__HTTP_BODY_WORK(n) ((void)0)
#endif

/* Parse a complete head in buf[0, end). Fills status, reason and headers. */
static int pr__http_parse_head(pr_http_response *r, size_t end) {
    char *b = r->buf;
    size_t pos = 0, i, folded = 0; /* buf[0, folded) needs no more blanking */
    int first = 1;
    r->nhdrs = 0;
    while (pos < end) {
        char *line = b + pos, *lf = (char *)memchr(line, '\n', end - pos);
        size_t len = (size_t)(lf - line), next = pos + len + 1;
        if (len && line[len - 1] == '\r') len--;
        for (i = 0; i < len; i++) {
            unsigned char k = pr__http_cls[(unsigned char)line[i]];
            if (!(k & (PR__HTTP_CR | PR__HTTP_CTL))) continue;
            if (k & PR__HTTP_CR) return pr__http_fail(r, PR_EPROTO, "bare CR in the response head");
            return pr__http_fail(r, PR_EPROTO, "control byte in the response head");
        }
        if (first) {
            first = 0;
            if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || line[7] < '0' || line[7] > '9' || line[8] != ' ' ||
                line[9] < '1' || line[9] > '9' || line[10] < '0' || line[10] > '9' || line[11] < '0' ||
                line[11] > '9' || (len > 12 && line[12] != ' '))
                return pr__http_fail(r, PR_EPROTO, "malformed status line");
            r->minor = line[7] - '0';
            r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
            r->reason.ptr = line + (len > 12 ? 13 : 12);
            r->reason.len = len > 12 ? len - 13 : 0;
        } else if (len == 0) {
            break; /* the blank line */
        } else if (line[0] == ' ' || line[0] == '\t') {
            /* obs-fold: the line break becomes SP and the line's text (trimmed)
               extends the previous value. Each byte is blanked or scanned once,
               so a head of whitespace-only folds stays linear. */
            pr_http_header *h;
            size_t s0 = 0, s1 = len;
            if (!r->nhdrs) return pr__http_fail(r, PR_EPROTO, "obs-fold before the first header field");
            h = &r->hdrs[r->nhdrs - 1];
            for (i = PR__MAX((size_t)(h->value.ptr + h->value.len - b), folded); i < pos; i++) {
                b[i] = ' ';
                PR__HTTP_FOLD_WORK(1);
            }
            while (s0 < s1 && (line[s0] == ' ' || line[s0] == '\t')) s0++;
            while (s1 > s0 && (line[s1 - 1] == ' ' || line[s1 - 1] == '\t')) s1--;
            PR__HTTP_FOLD_WORK(len);
            if (s1 > s0) {
                if (!h->value.len) h->value.ptr = line + s0;
                h->value.len = (size_t)(line + s1 - h->value.ptr);
            }
            folded = pos + len;
        } else {
            const char *colon = (const char *)memchr(line, ':', len);
            pr_slice name, value;
            int rc;
            if (!colon || colon == line) return pr__http_fail(r, PR_EPROTO, "malformed header line");
            if (!pr__http_is_token(line, (size_t)(colon - line)))
                return pr__http_fail(r, PR_EPROTO, "invalid header field name");
            if (r->nhdrs >= r->opts.max_fields) return pr__http_fail(r, PR_ELIMIT, "too many header fields");
            name.ptr = line;
            name.len = (size_t)(colon - line);
            value.ptr = colon + 1;
            value.len = (size_t)(line + len - (colon + 1));
            value = pr_slice_trim(value);
            if (!value.len) value.ptr = line + len;
            rc = pr__http_add_hdr(r, name, value);
            if (rc) return pr__http_fail(r, rc, "out of memory");
        }
        pos = next;
    }
    return PR_OK;
}

/* Call fn(token) for each comma-separated element of every field named
   name; elements are trimmed, empty ones skipped. Stops on a nonzero return. */
typedef int (*pr__http_tok_fn)(pr_slice tok, void *user_data);
static int pr__http_each_token(pr_http_response *r, const char *name, pr__http_tok_fn fn, void *user_data) {
    size_t i;
    for (i = 0; i < r->nhdrs; i++) {
        pr_slice v = r->hdrs[i].value;
        size_t s = 0, k;
        if (!pr__http_hdr_is(r->hdrs[i].name, name)) continue;
        for (k = 0; k <= v.len; k++) {
            if (k == v.len || v.ptr[k] == ',') {
                pr_slice t;
                int rc;
                t.ptr = v.ptr + s;
                t.len = k - s;
                t = pr_slice_trim(t);
                s = k + 1;
                if (!t.len) continue;
                if ((rc = fn(t, user_data)) != 0) return rc;
            }
        }
    }
    return 0;
}

struct pr__http_cl { int seen; uint64_t v; };

/* Whether a Content-Length field has no element at all ("", ",", " , "). */
static int pr__http_cl_empty(const pr_http_response *r) {
    size_t i, k;
    for (i = 0; i < r->nhdrs; i++) {
        pr_slice v = r->hdrs[i].value;
        int any = 0;
        if (!pr__http_hdr_is(r->hdrs[i].name, "content-length")) continue;
        for (k = 0; k < v.len && !any; k++) any = v.ptr[k] != ',' && v.ptr[k] != ' ' && v.ptr[k] != '\t';
        if (!any) return 1;
    }
    return 0;
}
static int pr__http_cl_tok(pr_slice t, void *user_data) {
    struct pr__http_cl *cl = (struct pr__http_cl *)user_data;
    uint64_t v;
    if (pr_parse_u64(t, &v) != PR_OK) return PR_EPROTO;
    if (cl->seen && v != cl->v) return PR_EPROTO;
    cl->seen = 1;
    cl->v = v;
    return 0;
}

struct pr__http_te { int n, chunked_at; };
static int pr__http_te_tok(pr_slice t, void *user_data) {
    struct pr__http_te *te = (struct pr__http_te *)user_data;
    const char *semi = (const char *)memchr(t.ptr, ';', t.len);
    if (semi) t.len = (size_t)(semi - t.ptr);
    t = pr_slice_trim(t);
    te->n++;
    if (pr__http_hdr_is(t, "chunked")) {
        if (te->chunked_at) return PR_EPROTO; /* chunked twice */
        te->chunked_at = te->n;
    }
    return 0;
}

struct pr__http_conn_tok { int close, keep; };
static int pr__http_conn_tok_fn(pr_slice t, void *user_data) {
    struct pr__http_conn_tok *c = (struct pr__http_conn_tok *)user_data;
    if (pr__http_hdr_is(t, "close")) c->close = 1;
    else if (pr__http_hdr_is(t, "keep-alive")) c->keep = 1;
    return 0;
}

/* Decide the body framing of the final response. */
static int pr__http_framing(pr_http_response *r, const char *method) {
    struct pr__http_cl cl = { 0, 0 };
    struct pr__http_te te = { 0, 0 };
    struct pr__http_conn_tok ct = { 0, 0 };
    int head = strcmp(method, "HEAD") == 0, connect = strcmp(method, "CONNECT") == 0;
    if (pr__http_cl_empty(r) || pr__http_each_token(r, "content-length", pr__http_cl_tok, &cl))
        return pr__http_fail(r, PR_EPROTO, "invalid or conflicting Content-Length");
    if (pr__http_each_token(r, "transfer-encoding", pr__http_te_tok, &te))
        return pr__http_fail(r, PR_EPROTO, "chunked applied twice in Transfer-Encoding");
    if (te.chunked_at && te.chunked_at != te.n)
        return pr__http_fail(r, PR_EPROTO, "Transfer-Encoding: chunked is not the final coding");
    pr__http_each_token(r, "connection", pr__http_conn_tok_fn, &ct);
    r->keepalive = !ct.close && (r->minor >= 1 || ct.keep);
    if (r->status == 101 || (connect && r->status / 100 == 2)) {
        r->state = PR__HTTP_B_EOF; /* the raw stream of the upgraded/tunnelled connection */
        r->keepalive = 0;
    } else if (head || r->status == 204 || r->status == 304) {
        r->state = PR__HTTP_B_DONE;
    } else if (te.n && r->minor == 0) {
        r->state = PR__HTTP_B_EOF; /* HTTP/1.0 with TE: faulty framing */
        r->keepalive = 0;
    } else if (te.n && te.chunked_at) {
        r->state = PR__HTTP_B_CSIZE;
        r->sub = PR__HTTP_CS_DIGITS;
        if (cl.seen) r->keepalive = 0;
    } else if (te.n) {
        r->state = PR__HTTP_B_EOF;
        r->keepalive = 0;
    } else if (cl.seen) {
        r->remaining = cl.v;
        r->state = cl.v ? PR__HTTP_B_IDENT : PR__HTTP_B_DONE;
    } else {
        r->state = PR__HTTP_B_EOF;
        r->keepalive = 0;
    }
    return PR_OK;
}

/* Grow the buffer to at least want bytes. */
static int pr__http_grow(pr_http_response *r, size_t want) {
    char *nb;
    if (want <= r->cap) return PR_OK;
    nb = (char *)pr__realloc(r->buf, r->cap, want);
    if (!nb) return PR_ENOMEM;
    r->buf = nb;
    r->cap = want;
    return PR_OK;
}

/* Move the head to a block of its own (its views rebased before anyone
   sees them, so they stay valid until destroy) and give the body the whole
   buffer, so that the body buffer can later grow for a fast body and shrink
   back for a slow one. */
static int pr__http_split_head(pr_http_response *r) {
    char *h = (char *)pr__alloc(r->base);
    size_t i;
    if (!h) return PR_ENOMEM;
    memcpy(h, r->buf, r->base);
    for (i = 0; i < r->nhdrs; i++) {
        r->hdrs[i].name.ptr = h + (r->hdrs[i].name.ptr - r->buf);
        r->hdrs[i].value.ptr = h + (r->hdrs[i].value.ptr - r->buf);
    }
    r->reason.ptr = h + (r->reason.ptr - r->buf);
    r->head = h;
    r->head_len = r->base;
    memmove(r->buf, r->buf + r->rpos, r->wpos - r->rpos);
    r->wpos -= r->rpos;
    r->rpos = r->base = 0;
    return PR_OK;
}

/* Give a body buffer that holds no head `area` bytes (at least the unread
   bytes, which move to its start; only those are copied). */
static int pr__http_rebuf(pr_http_response *r, size_t area) {
    size_t live = r->wpos - r->rpos;
    char *nb;
    if (area < live) area = live;
    if (!(nb = (char *)pr__alloc(area))) return PR_ENOMEM;
    if (live) memcpy(nb, r->buf + r->rpos, live);
    PR__HTTP_BODY_WORK(live);
    pr__free(r->buf, r->cap);
    r->buf = nb;
    r->cap = area;
    r->rpos = 0;
    r->wpos = live;
    return PR_OK;
}

/* Read heads until a final one; leaves the head in buf[0, base) and any
   body bytes in [base, wpos). upgrade: the request asked for a protocol
   switch (an Upgrade field), so a 101 is final; otherwise it is PR_EPROTO. */
static int pr__http_read_head(pr_http_response *r, const char *method, int upgrade, int64_t deadline) {
    size_t interim = 0, scan = 0, end;
    int rc;
    for (;;) {
        size_t check = PR__MIN(r->wpos, (size_t)5);
        if (memcmp(r->buf, "HTTP/", check) != 0) return pr__http_fail(r, PR_EPROTO, "malformed status line");
        end = pr__http_head_end(r->buf, &scan, r->wpos);
        if (!end) {
            ptrdiff_t k;
            if (r->wpos > r->opts.max_head_bytes - PR__MIN(r->head_used, r->opts.max_head_bytes))
                return pr__http_fail(r, PR_ELIMIT, "response head too large");
            if (r->wpos == r->cap) {
                size_t nc = r->cap * 2, lim = r->opts.max_head_bytes + 4;
                if (nc > lim && r->cap < lim) nc = lim;
                if ((rc = pr__http_grow(r, nc)) != 0) return pr__http_fail(r, rc, "out of memory");
            }
            k = pr__http_fill(r, r->buf + r->wpos, r->cap - r->wpos, deadline);
            if (k == PR_ECLOSED)
                return r->wpos ? pr__http_fail(r, PR_EPROTO, "connection closed in the response head")
                               : pr__http_fail(r, PR_ECLOSED, "connection closed before the response");
            if (k < 0) return k == PR_ETIMEDOUT || k == PR_ECANCELED ? (int)k : pr__http_conn_fail(r, (int)k);
            r->wpos += (size_t)k;
            r->rx = 1;
            continue;
        }
        if (end > r->opts.max_head_bytes - PR__MIN(r->head_used, r->opts.max_head_bytes))
            return pr__http_fail(r, PR_ELIMIT, "response head too large");
        if ((rc = pr__http_parse_head(r, end)) != 0) return rc;
        if (r->status == 101 && !upgrade)
            return pr__http_fail(r, PR_EPROTO, "101 Switching Protocols to a request that asked for no Upgrade");
        if (r->status >= 100 && r->status < 200 && r->status != 101) {
            /* interim: no body, whatever Content-Length or Transfer-Encoding it carries */
            if (++interim > r->opts.max_interim) return pr__http_fail(r, PR_ELIMIT, "too many interim 1xx responses");
            r->head_used += end; /* one head budget for all heads of the response */
            memmove(r->buf, r->buf + end, r->wpos - end);
            r->wpos -= end;
            r->nhdrs = 0;
            scan = 0;
            continue;
        }
        r->base = r->rpos = end;
        if ((rc = pr__http_framing(r, method)) != 0) return rc;
        /* a body that may outgrow this buffer gets all of it, the head a block
           of its own: pr__http_span then grows the buffer (to recv_buf_size)
           only for a body that keeps filling it */
        if (r->state != PR__HTTP_B_DONE && r->cap - r->base < r->opts.recv_buf_size &&
            !(r->state == PR__HTTP_B_IDENT && r->remaining <= r->cap - r->base) && pr__http_split_head(r) != PR_OK)
            return pr__http_fail(r, PR_ENOMEM, "out of memory");
        return PR_OK;
    }
}

/* Whether a conn failure means the peer closed or reset the connection. */
static int pr__http_peer_gone(int rc, const pr_err_info *e) {
    if (rc == PR_ECLOSED) return 1;
    if (rc == PR_EIO) return e->sys_errno == ECONNRESET || e->sys_errno == EPIPE || e->sys_errno == ECONNABORTED;
#ifndef PRISTINE_NO_TLS
    if (rc == PR_ETLS) return e->tls_error == PR_TLS_TRUNCATED; /* transport EOF without close_notify */
#endif
    return 0;
}

/* pr_http_exchange with an optional request target replacing the
   origin-form one (absolute-form for proxies, authority-form for CONNECT).
   *rx (optional) tells whether any response byte arrived, also on failure.
   head_used: head bytes already spent on this connection's first response
   (a CONNECT reply), counted against max_head_bytes. limit: what the
   deadline is called in timeout messages (NULL = "deadline"). */
static int pr__http_exchange(pr_http_response **out, pr_conn *conn, const pr_http_request *req,
                             const pr_http_opts *opts, const pr_slice *target, size_t head_used, int64_t deadline,
                             int *rx, const char *limit) {
    const char *method;
    pr_http_response *r;
    pr_buf head;
    size_t i;
    int rc, has_body, wfail = 0, upgrade = 0;
    if (out) *out = NULL;
    if (rx) *rx = 0;
    if (!out || !conn || !req || !req->url) return PR_EINVAL;
    method = req->method ? req->method : "GET";
    if (!pr__http_is_token(method, strlen(method))) return PR_EINVAL;
    if (req->body_fn && (req->body || req->body_len)) return PR_EINVAL;
    if (req->body_len && !req->body) return PR_EINVAL;
    pr_buf_init(&head);
    { /* one allocation for the head (and a small body) in the common case */
        size_t est = 96 + strlen(method) + (target ? target->len : req->url->path.len + req->url->query.len) +
                     req->url->host.len + (req->body && req->body_len <= 16384 ? req->body_len : 0);
        for (i = 0; req->headers && req->headers[i]; i++) est += strlen(req->headers[i]) + 3;
        rc = pr_buf_reserve(&head, est);
    }
    if (!rc) rc = pr__http_build_head(&head, req, method, target, &has_body, &upgrade, &conn->err);
    if (rc) {
        pr_buf_deinit(&head);
        return rc;
    }
    r = (pr_http_response *)pr__calloc(1, sizeof *r);
    if (!r) {
        pr_buf_deinit(&head);
        return PR_ENOMEM;
    }
    r->conn = conn;
    r->hdrs = r->hdrs_inline;
    r->hdrs_cap = PR__HTTP_INLINE_FIELDS;
    r->head_used = head_used;
    {
        const char *l = limit ? limit : "deadline";
        size_t n = PR__MIN(strlen(l), sizeof r->limit - 1);
        memcpy(r->limit, l, n);
        r->limit[n] = 0;
    }
    pr__http_opts_resolve(&r->opts, opts);
    /* room for a typical head (4 KiB) and a small body; a longer body grows
       the buffer to recv_buf_size beyond the head once the head is read, so
       that move copies at most this first buffer */
    r->cap = PR__MIN(r->opts.recv_buf_size, (size_t)PR__HTTP_FIRST_BODY) + PR__HTTP_HEAD_ROOM;
    if (r->cap < 64) r->cap = 64;
    r->buf = (char *)pr__alloc(r->cap);
    if (!r->buf) {
        pr_buf_deinit(&head);
        pr_http_response_destroy(r);
        return PR_ENOMEM;
    }
    /* a small body goes out with the head in one write */
    if (req->body && req->body_len <= 16384) {
        rc = pr_buf_append(&head, req->body, req->body_len);
        has_body = 0;
    }
    if (!rc && (rc = pr_conn_write(conn, head.data, head.len, deadline)) != 0) wfail = 1;
    if (!rc && has_body && req->body && (rc = pr_conn_write(conn, req->body, req->body_len, deadline)) != 0)
        wfail = 1;
    if (!rc && req->body_fn) rc = pr__http_send_chunked(conn, req, deadline, &wfail);
    pr_buf_deinit(&head);
    r->rx_at = pr_now(); /* the idle clock starts when the request has gone out */
    if (wfail && (rc == PR_ETIMEDOUT || rc == PR_ECANCELED)) { /* name the phase, keep the conn's words */
        char why[sizeof conn->err.msg];
        int e = conn->err.sys_errno;
        snprintf(why, sizeof why, "%s", conn->err.msg);
        if (rc == PR_ETIMEDOUT) pr__err_set(&conn->err, rc, e, "http: timed out sending the request (%s): %s", r->limit, why);
        else pr__err_set(&conn->err, rc, e, "http: canceled sending the request: %s", why);
    }
    if (rc && wfail && pr__http_peer_gone(rc, &conn->err)) {
        /* the server may have answered early (413, 401) and closed: deliver
           a complete final response if one arrived, else the write error */
        pr_err_info we = conn->err;
        if (pr__http_read_head(r, method, upgrade, deadline) == PR_OK) {
            r->keepalive = 0; /* the request was cut short */
            rc = PR_OK;
        } else {
            conn->err = we;
        }
    } else if (!rc) {
        rc = pr__http_read_head(r, method, upgrade, deadline);
    }
    if (rc) {
        if (rx) *rx = r->rx;
        pr_http_response_destroy(r);
        return rc;
    }
    if (rx) *rx = 1;
    *out = r;
    return PR_OK;
}

int pr_http_exchange(pr_http_response **out, pr_conn *conn, const pr_http_request *req, const pr_http_opts *opts,
                     pr_err_info *err, int64_t deadline) {
    int rc;
    rc = pr__http_exchange(out, conn, req, opts, NULL, 0, deadline, NULL, NULL);
    if (err) {
        if (rc && conn && conn->err.code == rc) *err = conn->err;
        else if (rc) pr__err_set(err, rc, 0, "http: %s", pr_strerror(rc));
        else memset(err, 0, sizeof *err);
    }
    return rc;
}

/* Run the framing machine over buffered bytes until body data is at rpos
   (returns 1), the body ended (0) or more input is needed (2). */
static int pr__http_advance(pr_http_response *r) {
    while (r->rpos < r->wpos || r->state == PR__HTTP_B_DONE) {
        unsigned char c;
        PR__HTTP_BODY_WORK(1);
        switch (r->state) {
        case PR__HTTP_B_DONE:
            return 0;
        case PR__HTTP_B_IDENT:
        case PR__HTTP_B_EOF:
        case PR__HTTP_B_CDATA:
            return 1;
        case PR__HTTP_B_CSIZE:
            c = (unsigned char)r->buf[r->rpos++];
            if (++r->line_len > r->opts.max_chunk_line) return pr__http_fail(r, PR_ELIMIT, "chunk-size line too long");
            if (r->sub == PR__HTTP_CS_DIGITS) {
                int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                      : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
                if (d >= 0) {
                    if (++r->ndigits > 16) return pr__http_fail(r, PR_EPROTO, "chunk size too long");
                    r->remaining = (r->remaining << 4) | (uint64_t)d;
                    continue;
                }
                if (!r->ndigits) return pr__http_fail(r, PR_EPROTO, "malformed chunk size");
                if (c == ' ' || c == '\t') r->sub = PR__HTTP_CS_BWS;
                else if (c == ';') r->sub = PR__HTTP_CS_EXT;
                else if (c == '\r') r->sub = PR__HTTP_CS_LF;
                else return pr__http_fail(r, PR_EPROTO, "malformed chunk size");
            } else if (r->sub == PR__HTTP_CS_BWS) {
                if (c == ';') r->sub = PR__HTTP_CS_EXT;
                else if (c != ' ' && c != '\t') return pr__http_fail(r, PR_EPROTO, "malformed chunk size line");
            } else if (r->sub == PR__HTTP_CS_EXT) {
                if (c == '\r') r->sub = PR__HTTP_CS_LF;
                else if (c == 0x7f || (c < 0x20 && c != '\t'))
                    return pr__http_fail(r, PR_EPROTO, "control byte in a chunk extension");
            } else { /* PR__HTTP_CS_LF */
                if (c != '\n') return pr__http_fail(r, PR_EPROTO, "chunk size line without CRLF");
                r->line_len = 0;
                r->ndigits = 0;
                if (r->remaining) {
                    r->state = PR__HTTP_B_CDATA;
                } else {
                    r->state = PR__HTTP_B_TRAILER;
                    r->sub = PR__HTTP_TR_START;
                }
            }
            continue;
        case PR__HTTP_B_CCRLF:
            c = (unsigned char)r->buf[r->rpos++];
            if (r->sub == 0) {
                if (c != '\r') return pr__http_fail(r, PR_EPROTO, "chunk data not followed by CRLF");
                r->sub = 1;
            } else {
                if (c != '\n') return pr__http_fail(r, PR_EPROTO, "chunk data not followed by CRLF");
                r->state = PR__HTTP_B_CSIZE;
                r->sub = PR__HTTP_CS_DIGITS;
            }
            continue;
        case PR__HTTP_B_TRAILER:
            /* trailer lines: header field rules, CRLF line ends; discarded */
            c = (unsigned char)r->buf[r->rpos++];
            if (++r->tr_bytes > r->opts.max_head_bytes) return pr__http_fail(r, PR_ELIMIT, "trailer section too large");
            if (r->sub == PR__HTTP_TR_START) {
                if (c == '\r') {
                    r->sub = PR__HTTP_TR_END_LF;
                } else if (c == ' ' || c == '\t') { /* obs-fold: continues the previous field */
                    if (!r->tr_fields) return pr__http_fail(r, PR_EPROTO, "obs-fold before the first trailer field");
                    r->sub = PR__HTTP_TR_VALUE;
                } else if (pr__http_tchar(c)) {
                    if (++r->tr_fields > r->opts.max_fields) return pr__http_fail(r, PR_ELIMIT, "too many trailer fields");
                    r->sub = PR__HTTP_TR_NAME;
                } else {
                    return pr__http_fail(r, PR_EPROTO, "malformed trailer line");
                }
            } else if (r->sub == PR__HTTP_TR_NAME) {
                if (c == ':') r->sub = PR__HTTP_TR_VALUE;
                else if (!pr__http_tchar(c)) return pr__http_fail(r, PR_EPROTO, "malformed trailer line");
            } else if (r->sub == PR__HTTP_TR_VALUE) {
                if (c == '\r') r->sub = PR__HTTP_TR_LINE_LF;
                else if (c == '\n') return pr__http_fail(r, PR_EPROTO, "malformed trailer line");
                else if (c == 0x7f || (c < 0x20 && c != '\t'))
                    return pr__http_fail(r, PR_EPROTO, "control byte in a trailer line");
            } else if (r->sub == PR__HTTP_TR_LINE_LF) {
                if (c != '\n') return pr__http_fail(r, PR_EPROTO, "bare CR in a trailer line");
                r->sub = PR__HTTP_TR_START;
            } else {
                if (c != '\n') return pr__http_fail(r, PR_EPROTO, "malformed end of trailers");
                r->state = PR__HTTP_B_DONE;
            }
            continue;
        default:
            return pr__http_fail(r, PR_ESTATE, "bad state");
        }
    }
    return 2;
}

/* The next span of at most max body bytes. Returns PR_OK with *p, *n set,
   PR_ECLOSED at the end, or an error. dst/dst_n: optional direct-read
   target for big identity reads (then *p == dst). */
static int pr__http_span(pr_http_response *r, const char **p, size_t *n, size_t max, char *dst, int64_t deadline) {
    for (;;) {
        ptrdiff_t k;
        size_t avail, room;
        int a;
        if (r->err) return r->err;
        a = pr__http_advance(r);
        if (a < 0) return r->err = a;
        if (a == 0) return PR_ECLOSED;
        if (a == 1) {
            avail = PR__MIN(r->wpos - r->rpos, max);
            if (r->state != PR__HTTP_B_EOF && r->remaining < avail) avail = (size_t)r->remaining;
            *p = r->buf + r->rpos;
            *n = avail;
            PR__HTTP_BODY_WORK(1);
            r->rpos += avail;
            if (r->state != PR__HTTP_B_EOF) {
                r->remaining -= avail;
                if (!r->remaining) {
                    if (r->state == PR__HTTP_B_IDENT) {
                        r->state = PR__HTTP_B_DONE;
                    } else {
                        r->state = PR__HTTP_B_CCRLF;
                        r->sub = 0;
                    }
                }
            }
            return PR_OK;
        }
        /* need more input */
        if (r->rpos == r->wpos) r->rpos = r->wpos = r->base;
        if (dst && r->rpos == r->wpos && (r->state == PR__HTTP_B_EOF || r->state == PR__HTTP_B_IDENT) &&
            max >= r->opts.recv_buf_size / 2) {
            size_t want = max;
            if (r->state == PR__HTTP_B_IDENT && r->remaining < want) want = (size_t)r->remaining;
            PR__HTTP_BODY_WORK(1);
            k = pr__http_fill(r, dst, want, deadline);
            if (k > 0) {
                if (r->state == PR__HTTP_B_IDENT) {
                    r->remaining -= (uint64_t)k;
                    if (!r->remaining) r->state = PR__HTTP_B_DONE;
                }
                *p = dst;
                *n = (size_t)k;
                return PR_OK;
            }
        } else {
            size_t area = r->cap - r->base;
            /* resized only when it holds no head (pr__http_split_head) */
            if (!r->base && r->full_fill && area < r->opts.recv_buf_size) { /* a fast body: double it */
                if (pr__http_rebuf(r, PR__MIN(area * 2, r->opts.recv_buf_size)) != PR_OK)
                    return r->err = pr__http_fail(r, PR_ENOMEM, "out of memory");
                r->full_fill = 0;
            } else if (!r->base && r->rpos == r->wpos && area > PR__HTTP_FIRST_BODY &&
                       r->small_fills >= PR__HTTP_SHRINK_FILLS) {
                (void)pr__http_rebuf(r, PR__HTTP_FIRST_BODY); /* a slow one again: shrink (or keep it) */
                r->small_fills = 0;
            }
            if (r->wpos == r->cap) { /* compact the body area */
                PR__HTTP_BODY_WORK(r->wpos - r->rpos);
                memmove(r->buf + r->base, r->buf + r->rpos, r->wpos - r->rpos);
                r->wpos -= r->rpos - r->base;
                r->rpos = r->base;
            }
            room = r->cap - r->wpos;
            PR__HTTP_BODY_WORK(1);
            k = pr__http_fill(r, r->buf + r->wpos, room, deadline);
            if (k > 0) {
                area = r->cap - r->base;
                r->full_fill = (size_t)k == room && room >= area / 2;
                r->small_fills = (size_t)k < area / 8 ? r->small_fills + 1 : 0;
                r->wpos += (size_t)k;
                continue;
            }
        }
        if (k == PR_ECLOSED) {
            if (r->state == PR__HTTP_B_EOF) {
                r->state = PR__HTTP_B_DONE;
                return PR_ECLOSED;
            }
            return r->err = pr__http_fail(r, PR_EPROTO, "truncated body");
        }
        /* the caller's deadline: retryable, nothing was lost */
        if (k == PR_ETIMEDOUT || k == PR_ECANCELED) return (int)k;
        return r->err = pr__http_conn_fail(r, (int)k);
    }
}

ptrdiff_t pr_http_read(pr_http_response *r, void *buf, size_t n, int64_t deadline) {
    const char *p;
    size_t got;
    int rc;
    if (!r || !buf || !n) return PR_EINVAL;
    rc = pr__http_span(r, &p, &got, n, (char *)buf, deadline);
    if (rc) return rc;
    if (p != (const char *)buf) memcpy(buf, p, got);
    return (ptrdiff_t)got;
}

int pr_http_next_span(pr_http_response *r, const char **ptr, size_t *len, int64_t deadline) {
    if (!r || !ptr || !len) return PR_EINVAL;
    return pr__http_span(r, ptr, len, SIZE_MAX, NULL, deadline);
}

int pr_http_status(const pr_http_response *r) { return r ? r->status : PR_EINVAL; }

int pr_http_version_minor(const pr_http_response *r) { return r ? r->minor : PR_EINVAL; }

pr_slice pr_http_reason(const pr_http_response *r) {
    pr_slice s = { "", 0 };
    return r ? r->reason : s;
}

size_t pr_http_header_count(const pr_http_response *r) { return r ? r->nhdrs : 0; }

int pr_http_header_at(const pr_http_response *r, size_t i, pr_http_header *out) {
    if (!r || !out || i >= r->nhdrs) return PR_EINVAL;
    *out = r->hdrs[i];
    return PR_OK;
}

const pr_slice *pr_http_header_get(const pr_http_response *r, const char *name) {
    size_t i;
    pr_slice n;
    if (!r || !name) return NULL;
    n = pr_slice_cstr(name);
    for (i = 0; i < r->nhdrs; i++)
        if (pr_slice_ieq(r->hdrs[i].name, n)) return &r->hdrs[i].value;
    return NULL;
}

int pr_http_reusable(const pr_http_response *r) {
    return r && r->keepalive && !r->err && r->state == PR__HTTP_B_DONE && r->rpos == r->wpos;
}

int pr_http_last_error(const pr_http_response *r, pr_err_info *out) {
    if (!r || !out) return PR_EINVAL;
    *out = r->einfo;
    return PR_OK;
}

void pr_http_response_destroy(pr_http_response *r) {
    if (!r) return;
    if (r->on_destroy) r->on_destroy(r, r->on_destroy_ctx);
    pr__free(r->buf, r->cap);
    pr__free(r->head, r->head_len);
    if (r->hdrs != r->hdrs_inline) pr__free(r->hdrs, r->hdrs_cap * sizeof *r->hdrs);
    pr__free(r, sizeof *r);
}

/* ==== proxy: HTTP proxies: proxy settings from the environment, no_proxy matching, CONNECT tunnels ==== >>proxy.impl */
/* Parse a proxy URL ("host:port" means http://host:port). "" = none. */
static int pr__proxy_parse(pr_url *u, const char *s, pr_err_info *err) {
    const char *sep;
    pr_buf b;
    int rc = PR_OK;
    if (!s || !*s) return PR_OK;
    sep = strstr(s, "://");
    if (sep && !((size_t)(sep - s) == 4 && (s[0] | 0x20) == 'h' && (s[1] | 0x20) == 't' &&
                 (s[2] | 0x20) == 't' && (s[3] | 0x20) == 'p'))
        return pr__err_set(err, PR_ENOTSUP, 0, "http: only http:// proxies are supported, not %.60s", s);
    pr_buf_init(&b);
    if (!sep) rc = pr_buf_append_str(&b, "http://");
    if (!rc) rc = pr_buf_append_str(&b, s);
    if (!rc) rc = pr_url_parse(u, b.data, b.len, err);
    pr_buf_deinit(&b);
    if (rc == PR_EINVAL) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        pr__err_set(err, rc, 0, "http: proxy URL %.40s: %s", s, why);
    } else if (rc) {
        pr__err_set(err, rc, 0, "http: out of memory");
    }
    return rc;
}

static const char *pr__proxy_env2(const char *a, const char *b) {
    const char *v = a ? getenv(a) : NULL;
    if (!v && b) v = getenv(b);
    return v;
}

/* The proxy settings of a client: explicit options first (http, https,
   all, no), then unless ignore_env the environment: http_proxy (lower
   case only: httpoxy), https_proxy / HTTPS_PROXY, all_proxy / ALL_PROXY
   (the fallback for both), no_proxy / NO_PROXY. An explicit "" means
   none. *hp, *sp, *np receive the strings to use (NULL = none). */
static void pr__proxy_pick(const char *http, const char *https, const char *all, const char *no, int ignore_env,
                           const char **hp, const char **sp, const char **np) {
    const char *ap = all;
    *hp = http;
    *sp = https;
    *np = no;
    if (!ignore_env) {
        if (!*hp) *hp = pr__proxy_env2("http_proxy", NULL); /* lower case only (httpoxy) */
        if (!*sp) *sp = pr__proxy_env2("https_proxy", "HTTPS_PROXY");
        if (!ap) ap = pr__proxy_env2("all_proxy", "ALL_PROXY");
        if (!*np) *np = pr__proxy_env2("no_proxy", "NO_PROXY");
    }
    if (!*hp || !**hp) *hp = ap;
    if (!*sp || !**sp) *sp = ap;
    if (http && !*http) *hp = NULL; /* explicit "" = none */
    if (https && !*https) *sp = NULL;
}

/* ---- no_proxy ---- */

/* An IP literal (IPv6 optionally in brackets) into out[16]: returns 4
   (IPv4), 16 (IPv6) or 0 (not an IP literal). */
static int pr__proxy_ip_parse(pr_slice s, unsigned char *out) {
    char tmp[64];
    if (s.len >= 2 && s.ptr[0] == '[' && s.ptr[s.len - 1] == ']') {
        s.ptr++;
        s.len -= 2;
    }
    if (!s.len || s.len >= sizeof tmp) return 0;
    memcpy(tmp, s.ptr, s.len);
    tmp[s.len] = 0;
    if (inet_pton(AF_INET, tmp, out) == 1) return 4;
    if (inet_pton(AF_INET6, tmp, out) == 1) return 16;
    return 0;
}

/* Whether the address ip (alen bytes) lies in the range "addr/bits" of e
   (slash points at the '/'). A malformed range matches nothing. */
static int pr__proxy_cidr_match(pr_slice e, const char *slash, const unsigned char *ip, int alen) {
    unsigned char net[16];
    pr_slice a, b;
    unsigned long bits = 0;
    size_t i, full;
    a.ptr = e.ptr;
    a.len = (size_t)(slash - e.ptr);
    b.ptr = slash + 1;
    b.len = e.len - a.len - 1;
    if (!b.len || b.len > 3) return 0;
    for (i = 0; i < b.len; i++) {
        if (b.ptr[i] < '0' || b.ptr[i] > '9') return 0;
        bits = bits * 10 + (unsigned long)(b.ptr[i] - '0');
    }
    if (pr__proxy_ip_parse(a, net) != alen || bits > (unsigned long)alen * 8) return 0;
    full = bits / 8;
    if (memcmp(net, ip, full) != 0) return 0;
    if (bits % 8) {
        unsigned mask = (0xffu << (8 - bits % 8)) & 0xffu;
        if ((net[full] & mask) != (ip[full] & mask)) return 0;
    }
    return 1;
}

int pr_http_no_proxy_match(const char *no_proxy, const char *host) {
    pr_slice h, list;
    size_t i, s = 0;
    unsigned char hip[16];
    int hfam;
    if (!no_proxy || !host || !*host) return 0;
    h = pr_slice_cstr(host);
    if (h.len >= 2 && h.ptr[0] == '[' && h.ptr[h.len - 1] == ']') {
        h.ptr++;
        h.len -= 2;
    }
    if (h.len && h.ptr[h.len - 1] == '.') h.len--; /* "example.com." */
    hfam = pr__proxy_ip_parse(h, hip);
    list = pr_slice_cstr(no_proxy);
    for (i = 0; i <= list.len; i++) {
        pr_slice e;
        if (i < list.len && list.ptr[i] != ',') continue;
        e.ptr = list.ptr + s;
        e.len = i - s;
        s = i + 1;
        e = pr_slice_trim(e);
        if (!e.len) continue;
        if (e.len == 1 && e.ptr[0] == '*') return 1;
        {
            const char *slash = (const char *)memchr(e.ptr, '/', e.len);
            if (slash) { /* a CIDR range: only for IP-literal hosts */
                if (hfam && pr__proxy_cidr_match(e, slash, hip, hfam)) return 1;
                continue;
            }
        }
        if (e.ptr[0] == '[') { /* [v6] or [v6]:port */
            const char *rb = (const char *)memchr(e.ptr, ']', e.len);
            if (!rb) continue;
            e.ptr++;
            e.len = (size_t)(rb - e.ptr);
        } else {
            const char *c1 = (const char *)memchr(e.ptr, ':', e.len);
            if (c1 && !memchr(c1 + 1, ':', e.len - (size_t)(c1 + 1 - e.ptr))) e.len = (size_t)(c1 - e.ptr); /* port */
        }
        while (e.len && e.ptr[0] == '.') {
            e.ptr++;
            e.len--;
        }
        if (e.len && e.ptr[e.len - 1] == '.') e.len--;
        if (!e.len) continue;
        if (hfam) { /* an IP-literal host: the same address, never a suffix */
            unsigned char eip[16];
            if (pr__proxy_ip_parse(e, eip) == hfam && !memcmp(eip, hip, (size_t)hfam)) return 1;
            continue;
        }
        if (pr_slice_ieq(e, h)) return 1;
        if (h.len > e.len && h.ptr[h.len - e.len - 1] == '.') {
            pr_slice tail;
            tail.ptr = h.ptr + h.len - e.len;
            tail.len = e.len;
            if (pr_slice_ieq(tail, e)) return 1;
        }
    }
    return 0;
}

/* Loopback origins are never proxied: the names localhost and *.localhost
   (RFC 6761; the resolver answers them with loopback addresses), and the
   addresses 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104, parsed as addresses
   (a name such as "127.example.test" is not loopback). */
static int pr__proxy_is_loopback(pr_slice host) {
    static const unsigned char v6_1[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
    static const unsigned char v4map[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    pr_slice lh = pr_slice_cstr("localhost");
    unsigned char ip[16];
    int fam;
    if (host.len && host.ptr[host.len - 1] == '.') host.len--; /* "localhost." */
    if (pr_slice_ieq(host, lh)) return 1;
    if (host.len > lh.len + 1 && host.ptr[host.len - lh.len - 1] == '.') {
        pr_slice tail;
        tail.ptr = host.ptr + host.len - lh.len;
        tail.len = lh.len;
        if (pr_slice_ieq(tail, lh)) return 1;
    }
    fam = pr__proxy_ip_parse(host, ip); /* IPv6 with or without brackets */
    if (fam == 4) return ip[0] == 127;
    if (fam == 16) return !memcmp(ip, v6_1, 16) || (!memcmp(ip, v4map, 12) && ip[12] == 127);
    return 0;
}

/* ---- a connection that first returns bytes read past a CONNECT reply ---- */
typedef struct pr__proxy_pfx {
    pr_conn base; /* first */
    pr_conn *inner;
    char *buf;
    size_t len, pos;
} pr__proxy_pfx;

static ptrdiff_t pr__proxy_pfx_read(pr_conn *c, void *buf, size_t n, int64_t deadline) {
    pr__proxy_pfx *p = (pr__proxy_pfx *)(void *)c;
    ptrdiff_t k;
    if (p->pos < p->len) {
        size_t m = PR__MIN(n, p->len - p->pos);
        memcpy(buf, p->buf + p->pos, m);
        p->pos += m;
        return (ptrdiff_t)m;
    }
    k = p->inner->ops->read(p->inner, buf, n, deadline);
    if (k < 0) c->err = p->inner->err;
    return k;
}

static ptrdiff_t pr__proxy_pfx_write(pr_conn *c, const void *buf, size_t n, int64_t deadline) {
    pr__proxy_pfx *p = (pr__proxy_pfx *)(void *)c;
    ptrdiff_t k = p->inner->ops->write(p->inner, buf, n, deadline);
    if (k < 0) c->err = p->inner->err;
    return k;
}

static int pr__proxy_pfx_shutdown(pr_conn *c, int64_t deadline) {
    pr__proxy_pfx *p = (pr__proxy_pfx *)(void *)c;
    return p->inner->ops->shutdown(p->inner, deadline);
}

static void pr__proxy_pfx_destroy(pr_conn *c) {
    pr__proxy_pfx *p = (pr__proxy_pfx *)(void *)c;
    pr_conn_destroy(p->inner);
    pr__free(p->buf, p->len);
    pr__free(p, sizeof *p);
}

static const pr_conn_ops pr__proxy_pfx_ops = { pr__proxy_pfx_read, pr__proxy_pfx_write, pr__proxy_pfx_shutdown,
                                              pr__proxy_pfx_destroy };

static const char pr__proxy_b64c[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Append "Basic <base64(percent-decoded userinfo)>". */
static int pr__proxy_basic(pr_buf *out, const pr_url *proxy) {
    pr_buf raw;
    size_t i;
    int rc;
    pr_buf_init(&raw);
    rc = pr_url_decode(&raw, proxy->userinfo.ptr, proxy->userinfo.len, 0);
    if (!rc) rc = pr_buf_append_str(out, "Basic ");
    for (i = 0; !rc && i < raw.len; i += 3) {
        unsigned char *s = (unsigned char *)raw.data + i;
        size_t m = raw.len - i;
        char q[4];
        unsigned v = (unsigned)s[0] << 16 | (m > 1 ? (unsigned)s[1] << 8 : 0) | (m > 2 ? s[2] : 0);
        q[0] = pr__proxy_b64c[(v >> 18) & 63];
        q[1] = pr__proxy_b64c[(v >> 12) & 63];
        q[2] = m > 1 ? pr__proxy_b64c[(v >> 6) & 63] : '=';
        q[3] = m > 2 ? pr__proxy_b64c[v & 63] : '=';
        rc = pr_buf_append(out, q, 4);
    }
    pr_buf_deinit(&raw);
    return rc;
}

/* Open a CONNECT tunnel to u's authority through proxy over *conn (replaced
   by the tunnel on success; destroyed on failure), with the parser limits
   ho. *head_used receives the bytes of the reply heads; limit names the
   deadline in timeout messages. */
static int pr__proxy_tunnel(pr_conn **conn, const pr_url *u, const pr_url *proxy, const pr_http_opts *ho,
                            size_t *head_used, int64_t deadline, const char *limit, pr_err_info *err) {
    pr_buf auth, pa;
    pr_http_header h[2];
    pr_http_request req;
    pr_http_response *r = NULL;
    pr_slice target;
    const char **lines = NULL;
    size_t lines_size = 0;
    int rc;
    pr_buf_init(&auth);
    pr_buf_init(&pa);
    rc = pr_url_authority(&auth, u, 1);
    if (!rc && proxy->has_userinfo) rc = pr__proxy_basic(&pa, proxy);
    memset(&req, 0, sizeof req);
    if (!rc) {
        h[0].name = pr_slice_cstr("Host");
        h[0].value.ptr = auth.data;
        h[0].value.len = auth.len;
        h[1].name = pr_slice_cstr("Proxy-Authorization");
        h[1].value.ptr = pa.data;
        h[1].value.len = pa.len;
        rc = pr__http_lines_join(NULL, h, proxy->has_userinfo ? 2 : 1, &lines, &lines_size);
    }
    if (!rc) {
        req.method = "CONNECT";
        req.url = u;
        req.headers = lines;
        target.ptr = auth.data;
        target.len = auth.len;
        rc = pr__http_exchange(&r, *conn, &req, ho, &target, 0, deadline, NULL, limit);
        if (rc)
            pr__err_set(err, rc, (*conn)->err.sys_errno, "proxy CONNECT: %s",
                        (*conn)->err.msg[0] ? (*conn)->err.msg : pr_strerror(rc));
    } else {
        pr__err_set(err, rc, 0, "proxy CONNECT: out of memory");
    }
    if (!rc && r->status / 100 != 2) {
        int st = r->status;
        rc = pr__err_set(err, PR_EPROTO, 0, "proxy refused CONNECT with status %d", st);
        err->http_status = st;
    }
    if (!rc) *head_used = r->head_used + r->base + r->head_len; /* the origin's first head shares the budget */
    /* Bytes already read past the reply belong to the tunnel: a wrapper hands
       them out first. Without them the socket itself is the tunnel (and TLS
       over it can wait on both directions). */
    if (!rc && r->wpos > r->rpos) {
        size_t extra = r->wpos - r->rpos;
        pr__proxy_pfx *p = (pr__proxy_pfx *)pr__calloc(1, sizeof *p);
        if (p && !(p->buf = (char *)pr__alloc(extra))) {
            pr__free(p, sizeof *p);
            p = NULL;
        }
        if (!p) {
            rc = pr__err_set(err, PR_ENOMEM, 0, "proxy CONNECT: out of memory");
        } else {
            memcpy(p->buf, r->buf + r->rpos, extra);
            p->base.ops = &pr__proxy_pfx_ops;
            p->inner = *conn;
            p->len = extra;
            *conn = &p->base;
        }
    }
    pr_http_response_destroy(r);
    if (rc) {
        pr_conn_destroy(*conn);
        *conn = NULL;
    }
    pr__free(lines, lines_size);
    pr_buf_deinit(&auth);
    pr_buf_deinit(&pa);
    return rc;
}

/* ==== client: HTTP client: keep-alive pool, connection caps, redirects, retries, breaker, events ==== >>client.impl */
#define PR__CLIENT_DEF_CONNECT_MS 30000
#define PR__CLIENT_DEF_POOL_IDLE_MS 60000
#define PR__CLIENT_DEF_POOL_MAX 16
#define PR__CLIENT_MAX_REDIRECTS 10
#define PR__CLIENT_DRAIN_MAX 65536 /* bytes of a followed 3xx body read to keep its connection */
#define PR__CLIENT_DRAIN_MS 1000    /* time spent on that at most */
#define PR__CLIENT_DEF_FETCH_MAX (16u << 20)

/* An idle pooled connection; the key bytes follow the struct. */
typedef struct pr__client_pooled {
    struct pr__client_pooled *next;
    pr_conn *conn;
    int64_t since;
    size_t key_len;
} pr__client_pooled;

/* Connection slots of one origin (max_connections_per_origin); the key
   bytes follow the struct. */
typedef struct pr__client_origin {
    struct pr__client_origin *next;
    pr_sem *sem;
    long users;      /* holders and waiters; the entry goes when it drops to 0 */
    size_t key_len;
} pr__client_origin;

struct pr_http_client {
    pr_http_client_opts o;        /* resolved; string fields point at the copies below */
    char *ca_file, *ca_pem, *alpn, *no_proxy;
    size_t ca_file_n, ca_pem_n, alpn_n, no_proxy_n;
    char *hdr_count, *hdr_timeout, *hdr_idem; /* header names (copies; NUL-terminated) */
    char **fwd;                   /* redirect_forward_headers: one block, the pointers then the names */
    size_t fwd_size;
    pr_tls_anchors *anchors;      /* parsed from ca_file / ca_pem at create; owned */
    pr_tls_identity *identity;    /* parsed from cert_* / key_* at create; owned */
    pr_url proxy_http, proxy_https; /* mem_ == NULL: none */
    pr__client_pooled *pool;        /* most recently released first */
    size_t npool;
    pr_sem *slots;                /* max_connections, or NULL */
    pr__client_origin *origins;     /* max_connections_per_origin entries in use */
    long live;                    /* responses that own a connection */
    int destroyed;                /* pr_http_client_destroy ran; free with the last response */
    pr_err_info err;
};

/* A copy of an optional NUL-terminated string into *dst; PR_OK or PR_ENOMEM. */
static int pr__client_strdup_opt(char **dst, const char *s) {
    if (!s) return PR_OK;
    return (*dst = pr__strdup(s, NULL)) != NULL ? PR_OK : PR_ENOMEM;
}

/* A copy of a NULL-terminated list of strings in one block of *size bytes
   (NULL for an empty list). */
static int pr__client_list_dup(char ***out, size_t *size, const char *const *list) {
    size_t n = 0, bytes = 0, i;
    char *p;
    while (list && list[n]) bytes += strlen(list[n++]) + 1;
    if (!n) return PR_OK;
    *size = (n + 1) * sizeof **out + bytes;
    if (!(*out = (char **)pr__alloc(*size))) return PR_ENOMEM;
    p = (char *)(*out + n + 1);
    for (i = 0; i < n; i++) {
        size_t l = strlen(list[i]) + 1;
        (*out)[i] = (char *)memcpy(p, list[i], l);
        p += l;
    }
    (*out)[n] = NULL;
    return PR_OK;
}

static void pr__client_pool_free(pr__client_pooled *e) {
    pr_conn_destroy(e->conn);
    pr__free(e, sizeof *e + e->key_len);
}

/* Close every idle pooled connection. */
static void pr__client_pool_clear(pr_http_client *c) {
    while (c->pool) {
        pr__client_pooled *e = c->pool;
        c->pool = e->next;
        pr__client_pool_free(e);
    }
    c->npool = 0;
}

static void pr__client_free(pr_http_client *c) {
    pr__client_pool_clear(c);
    pr__free(c->ca_file, c->ca_file_n);
    pr__free(c->ca_pem, c->ca_pem_n);
    pr__free(c->alpn, c->alpn_n);
    pr__free(c->no_proxy, c->no_proxy_n);
    pr__strfree(&c->hdr_count);
    pr__strfree(&c->hdr_timeout);
    pr__strfree(&c->hdr_idem);
    pr__free(c->fwd, c->fwd_size);
    pr_sem_destroy(c->slots);
    pr_tls_anchors_destroy(c->anchors);
    pr_tls_identity_destroy(c->identity); /* wipes the key */
    pr_url_deinit(&c->proxy_http);
    pr_url_deinit(&c->proxy_https);
    pr__free(c, sizeof *c);
}

int pr_http_client_create(pr_http_client **out, const pr_http_client_opts *opts, pr_err_info *err) {
    pr_http_client *c;
    const char *hp, *sp, *np;
    int rc = PR_OK;
    if (err) memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out) return pr__err_set(err, PR_EINVAL, 0, "http: pr_http_client_create: out is NULL");
    c = (pr_http_client *)pr__calloc(1, sizeof *c);
    if (!c) return pr__err_set(err, PR_ENOMEM, 0, "http: out of memory");
    if (opts) c->o = *opts;
    c->o.connect_timeout_ms = PR__DEF(c->o.connect_timeout_ms, PR__CLIENT_DEF_CONNECT_MS);
    c->o.pool_idle_ms = PR__DEF(c->o.pool_idle_ms, PR__CLIENT_DEF_POOL_IDLE_MS);
    c->o.pool_max = PR__DEF(c->o.pool_max, PR__CLIENT_DEF_POOL_MAX);
    if (c->o.pool_max < 0) c->o.pool_max = 0;
    if (c->o.max_redirects < 0) c->o.max_redirects = 0;
    if (c->o.max_redirects > PR__CLIENT_MAX_REDIRECTS) c->o.max_redirects = PR__CLIENT_MAX_REDIRECTS;
    if (c->o.idle_timeout_ms) c->o.http.idle_timeout_ms = c->o.idle_timeout_ms;
    c->o.tcp_keepalive_s = PR__DEF(c->o.tcp_keepalive_s, 60);
    c->o.fetch_max_bytes = PR__DEF(c->o.fetch_max_bytes, PR__CLIENT_DEF_FETCH_MAX);
    if (c->o.attempt_timeout_ms < 0) c->o.attempt_timeout_ms = 0;
    {
        pr_retry probe; /* the policy must be valid now, not at the first request */
        if (pr_retry_begin(&probe, &c->o.retry) != PR_OK)
            rc = pr__err_set(&c->err, PR_EINVAL, 0, "http: invalid retry policy (backoff or limits)");
    }
    if (!rc && (c->o.max_connections < 0 || c->o.max_connections_per_origin < 0))
        rc = pr__err_set(&c->err, PR_EINVAL, 0, "http: negative max_connections");
    if (!rc && c->o.max_connections > 0 && pr_sem_create(&c->slots, c->o.max_connections) != PR_OK)
        rc = PR_ENOMEM;
    if (!rc && c->o.tls.ca_file && !(c->ca_file = pr__strdup(c->o.tls.ca_file, &c->ca_file_n))) rc = PR_ENOMEM;
    if (!rc && c->o.tls.ca_pem) {
        c->ca_pem_n = c->o.tls.ca_pem_len ? c->o.tls.ca_pem_len : strlen(c->o.tls.ca_pem);
        if ((c->ca_pem = (char *)pr__alloc(c->ca_pem_n)) != NULL) memcpy(c->ca_pem, c->o.tls.ca_pem, c->ca_pem_n);
        else rc = PR_ENOMEM;
        c->o.tls.ca_pem_len = c->ca_pem_n;
    }
    if (!rc && c->o.tls.alpn && !(c->alpn = pr__strdup(c->o.tls.alpn, &c->alpn_n))) rc = PR_ENOMEM;
    if (!rc) rc = pr__client_strdup_opt(&c->hdr_count, c->o.retry_count_header);
    if (!rc) rc = pr__client_strdup_opt(&c->hdr_timeout, c->o.timeout_header);
    if (!rc) rc = pr__client_strdup_opt(&c->hdr_idem, c->o.idempotency_header);
    if (!rc) rc = pr__client_list_dup(&c->fwd, &c->fwd_size, c->o.redirect_forward_headers);
    c->o.redirect_forward_headers = (const char *const *)c->fwd;
    c->o.retry_count_header = c->hdr_count;
    c->o.timeout_header = c->hdr_timeout;
    c->o.idempotency_header = c->hdr_idem;
    c->o.tls.ca_file = c->ca_file;
    c->o.tls.ca_pem = c->ca_pem;
    c->o.tls.alpn = c->alpn;
#ifndef PRISTINE_NO_TLS
    /* parse the trust anchors once; every connect shares them read-only */
    if (!rc && !c->o.tls.anchors && !c->o.tls.insecure_skip_verify_DANGEROUS && (c->ca_file || c->ca_pem)) {
        rc = pr_tls_anchors_create(&c->anchors, c->ca_pem ? NULL : c->ca_file, c->ca_pem, c->ca_pem_n, &c->err);
        if (rc) {
            char why[sizeof c->err.msg];
            int e = c->err.sys_errno;
            snprintf(why, sizeof why, "%s", c->err.msg);
            pr__err_set(&c->err, rc, e, "http: tls.%s: %s", c->ca_pem ? "ca_pem" : "ca_file", why);
        }
        c->o.tls.anchors = c->anchors;
    }
    if (!rc && c->o.tls.anchors) { /* the anchors win over ca_file / ca_pem: drop the copies */
        pr__free(c->ca_file, c->ca_file_n);
        pr__free(c->ca_pem, c->ca_pem_n);
        c->ca_file = c->ca_pem = NULL;
        c->ca_file_n = c->ca_pem_n = 0;
        c->o.tls.ca_file = c->o.tls.ca_pem = NULL;
        c->o.tls.ca_pem_len = 0;
    }
    /* the client certificate too, so a bad one fails here, not at the first connect */
    if (!rc && !c->o.tls.identity &&
        (c->o.tls.cert_file || c->o.tls.cert_pem || c->o.tls.key_file || c->o.tls.key_pem)) {
        rc = pr_tls_identity_create(&c->identity, c->o.tls.cert_file, c->o.tls.cert_pem, c->o.tls.cert_pem_len,
                                    c->o.tls.key_file, c->o.tls.key_pem, c->o.tls.key_pem_len, &c->err);
        if (rc) {
            char why[sizeof c->err.msg];
            int e = c->err.sys_errno;
            snprintf(why, sizeof why, "%s", c->err.msg);
            pr__err_set(&c->err, rc, e, "http: tls: %s", why);
        }
        c->o.tls.identity = c->identity;
    }
#endif
    /* never kept: the identity holds what connections need (the caller's strings may go) */
    c->o.tls.cert_file = c->o.tls.cert_pem = c->o.tls.key_file = c->o.tls.key_pem = NULL;
    c->o.tls.cert_pem_len = c->o.tls.key_pem_len = 0;
    pr__proxy_pick(c->o.http_proxy, c->o.https_proxy, c->o.all_proxy, c->o.no_proxy, c->o.ignore_env, &hp, &sp, &np);
    if (!rc) rc = pr__proxy_parse(&c->proxy_http, hp, &c->err);
    if (!rc) rc = pr__proxy_parse(&c->proxy_https, sp, &c->err);
    if (!rc && np && *np && !(c->no_proxy = pr__strdup(np, &c->no_proxy_n))) rc = PR_ENOMEM;
    c->o.http_proxy = c->o.https_proxy = c->o.all_proxy = NULL;
    c->o.no_proxy = c->no_proxy;
    if (rc) {
        if (c->err.code != rc) pr__err_set(&c->err, rc, 0, "http: %s", pr_strerror(rc));
        if (err) *err = c->err;
        pr__client_free(c);
        return rc;
    }
    *out = c;
    return PR_OK;
}

void pr_http_client_destroy(pr_http_client *c) {
    if (!c) return;
    pr__client_pool_clear(c);
    if (c->live > 0) c->destroyed = 1;
    else pr__client_free(c);
}

int pr_http_client_last_error(const pr_http_client *c, pr_err_info *out) {
    if (!c || !out) return PR_EINVAL;
    *out = c->err;
    return PR_OK;
}

size_t pr_http_client_idle_count(const pr_http_client *c) { return c ? c->npool : 0; }

/* The proxy for u, or NULL. */
static const pr_url *pr__client_proxy_for(pr_http_client *c, const pr_url *u) {
    const pr_url *p = u->secure ? &c->proxy_https : &c->proxy_http;
    char host[256];
    if (!p->mem_ || pr__proxy_is_loopback(u->host)) return NULL;
    if (c->no_proxy) {
        if (u->host.len >= sizeof host) return p;
        memcpy(host, u->host.ptr, u->host.len);
        host[u->host.len] = 0;
        if (pr_http_no_proxy_match(c->no_proxy, host)) return NULL;
    }
    return p;
}

/* ---- pool ---- */

static int pr__client_pool_key(pr_buf *k, const pr_url *u, const pr_url *proxy) {
    int rc = pr_url_origin(k, u);
    if (!rc && proxy) {
        rc = pr_buf_append(k, " via ", 5);
        if (!rc) rc = pr_url_origin(k, proxy);
        if (!rc) rc = pr_buf_append(k, "@", 1);
        if (!rc) rc = pr_buf_append(k, proxy->userinfo.ptr, proxy->userinfo.len);
    }
    return rc;
}

/* Take a live idle connection for key, closing expired and dead ones. */
static pr_conn *pr__client_pool_take(pr_http_client *c, const pr_buf *key) {
    pr__client_pooled **pp = &c->pool;
    int64_t now = pr_now();
    while (*pp) {
        pr__client_pooled *e = *pp;
        if (now - e->since >= c->o.pool_idle_ms) { /* expired */
            *pp = e->next;
            c->npool--;
            pr__client_pool_free(e);
            continue;
        }
        if (e->key_len == key->len && !memcmp(e + 1, key->data, key->len)) {
            char probe;
            ptrdiff_t k;
            pr_conn *conn = e->conn;
            *pp = e->next;
            c->npool--;
            /* dead-connection check: readable now (EOF, reset, stray bytes) =
               unusable. A socket the poller knows to be quiet needs no probe
               read (if it died since, the request's replay rule covers it). */
            k = pr__net_conn_known_idle(conn) ? (ptrdiff_t)PR_ETIMEDOUT : pr_conn_read(conn, &probe, 1, 0);
            if (k == PR_ETIMEDOUT) {
                pr__free(e, sizeof *e + e->key_len);
                return conn;
            }
            pr__client_pool_free(e);
            continue;
        }
        pp = &e->next;
    }
    return NULL;
}

/* Give a connection back (takes ownership of conn; key copied). */
static void pr__client_pool_put(pr_http_client *c, pr_conn *conn, const char *key, size_t key_len) {
    pr__client_pooled *e, **pp;
    size_t n;
    if (c->destroyed || c->o.pool_idle_ms < 0 || c->o.pool_max <= 0) {
        pr_conn_destroy(conn);
        return;
    }
    e = (pr__client_pooled *)pr__alloc(sizeof *e + key_len);
    if (!e) {
        pr_conn_destroy(conn);
        return;
    }
    e->conn = conn;
    e->since = pr_now();
    e->key_len = key_len;
    memcpy(e + 1, key, key_len);
    e->next = c->pool;
    c->pool = e;
    c->npool++;
    /* over the cap: close the oldest (the tail) */
    for (n = 1, pp = &c->pool; c->npool > (size_t)c->o.pool_max && *pp; n++) {
        if (n > (size_t)c->o.pool_max) {
            pr__client_pooled *x = *pp;
            *pp = x->next;
            c->npool--;
            pr__client_pool_free(x);
        } else {
            pp = &(*pp)->next;
        }
    }
}

/* ---- connection slots (max_connections, max_connections_per_origin) ---- */

/* Drop a use of an origin entry; the last one frees it. */
static void pr__client_origin_unref(pr_http_client *c, pr__client_origin *o) {
    pr__client_origin **pp = &c->origins;
    if (--o->users > 0) return;
    while (*pp != o) pp = &(*pp)->next;
    *pp = o->next;
    pr_sem_destroy(o->sem);
    pr__free(o, sizeof *o + o->key_len);
}

/* Take the slots a new connection for key needs: the origin's first (so a
   task holding a slot of the whole client never waits for its origin),
   then the client's. Waits in FIFO order until the deadline. */
static int pr__client_slots_take(pr_http_client *c, const pr_buf *key, pr__client_origin **og, int *slot,
                               int64_t deadline, const char *limit, pr_err_info *err) {
    pr__client_origin *o = NULL;
    int rc = PR_OK;
    *og = NULL;
    *slot = 0;
    if (c->o.max_connections_per_origin > 0) {
        for (o = c->origins; o; o = o->next)
            if (o->key_len == key->len && !memcmp(o + 1, key->data, key->len)) break;
        if (!o) {
            if (!(o = (pr__client_origin *)pr__calloc(1, sizeof *o + key->len)) ||
                pr_sem_create(&o->sem, c->o.max_connections_per_origin) != PR_OK) {
                pr__free(o, sizeof *o + key->len);
                return pr__err_set(err, PR_ENOMEM, 0, "http: out of memory");
            }
            o->key_len = key->len;
            memcpy(o + 1, key->data, key->len);
            o->next = c->origins;
            c->origins = o;
        }
        o->users++;
        if ((rc = pr_sem_acquire(o->sem, deadline)) != PR_OK) pr__client_origin_unref(c, o);
    }
    if (!rc && c->slots && (rc = pr_sem_acquire(c->slots, deadline)) != PR_OK && o) {
        pr_sem_release(o->sem);
        pr__client_origin_unref(c, o);
    }
    if (rc == PR_ETIMEDOUT) return pr__err_set(err, rc, 0, "http: timed out waiting for a free connection (%s)", limit);
    if (rc) return pr__err_set(err, rc, 0, "http: %s while waiting for a free connection", pr_strerror(rc));
    *og = o;
    *slot = c->slots != NULL;
    return PR_OK;
}

/* Give back slots from pr__client_slots_take. */
static void pr__client_slots_give(pr_http_client *c, pr__client_origin *o, int slot) {
    if (slot) pr_sem_release(c->slots);
    if (o) {
        pr_sem_release(o->sem);
        pr__client_origin_unref(c, o);
    }
}

/* What a client response holds until it is destroyed: its connection, its
   slots and the pool key to file the connection under. */
typedef struct pr__client_lease {
    pr_http_client *client;
    pr_conn *conn;
    pr__client_origin *origin; /* a per-origin slot, or NULL */
    int slot;                /* a max_connections slot */
    size_t key_len;          /* the key bytes follow the struct */
} pr__client_lease;

/* pr_http_response_destroy's hook for client responses: a connection whose
   response ended cleanly goes back to the pool, any other is closed. */
static void pr__client_lease_end(pr_http_response *r, void *ctx) {
    pr__client_lease *l = (pr__client_lease *)ctx;
    pr_http_client *c = l->client;
    if (pr_http_reusable(r)) pr__client_pool_put(c, l->conn, (const char *)(l + 1), l->key_len);
    else pr_conn_destroy(l->conn);
    r->on_destroy = NULL;
    r->conn = NULL;
    pr__client_slots_give(c, l->origin, l->slot);
    c->live--;
    pr__free(l, sizeof *l + l->key_len);
    if (c->destroyed && c->live <= 0) pr__client_free(c);
}

/* ---- connecting ---- */

/* A NUL-terminated copy of a host slice into h[256]. */
static int pr__client_host_cstr(char *h, pr_slice s) {
    if (s.len >= 256) return PR_EINVAL;
    memcpy(h, s.ptr, s.len);
    h[s.len] = 0;
    return PR_OK;
}

/* A fresh connection to u (through proxy when set): TCP, CONNECT, TLS, all
   under the connect cap. *head_used: bytes of a CONNECT reply (else 0).
   limit names deadline in timeout messages. */
static int pr__client_connect(pr_http_client *c, pr_conn **out, const pr_url *u, const pr_url *proxy,
                            size_t *head_used, int64_t deadline, const char *limit, pr_err_info *err) {
    const pr_url *to = proxy ? proxy : u;
    int64_t cdl = deadline;
    pr_net_opts no;
    pr_conn *conn = NULL;
    const char *phase;
    char host[256], capname[48];
    int rc;
    *out = NULL;
    *head_used = 0;
    if (c->o.connect_timeout_ms > 0) cdl = pr_deadline_min(deadline, pr_deadline_in(c->o.connect_timeout_ms));
    if (cdl < deadline) {
        snprintf(capname, sizeof capname, "connect timeout %d ms", c->o.connect_timeout_ms);
        limit = capname;
    }
    if (pr__client_host_cstr(host, to->host)) return pr__err_set(err, PR_EINVAL, 0, "http: host name too long");
    memset(&no, 0, sizeof no);
    no.connect_timeout_ms = -1; /* cdl holds the cap */
    no.keepalive = c->o.tcp_keepalive_s > 0 ? c->o.tcp_keepalive_s : 0;
    memset(err, 0, sizeof *err);
    phase = proxy ? "connecting to the proxy" : "resolving and connecting to";
    rc = pr_tcp_connect(&conn, host, to->port, &no, err, cdl);
    if (!rc && proxy && u->secure) {
        phase = "waiting for the CONNECT reply of the proxy";
        rc = pr__proxy_tunnel(&conn, u, proxy, &c->o.http, head_used, cdl, limit, err);
    }
    if (!rc && u->secure) {
        pr_conn *t = NULL;
        phase = "in the TLS handshake with";
        if (pr__client_host_cstr(host, u->host)) {
            pr_conn_destroy(conn);
            return pr__err_set(err, PR_EINVAL, 0, "http: host name too long");
        }
        pr_tls_opts topts = c->o.tls;
        if (!topts.half_duplex) topts.half_duplex = 1; /* a request is sent whole before its response is read */
        rc = pr_tls_client(&t, conn, host, &topts, err, cdl); /* owns conn from here on */
        conn = t;
    }
    if (rc) {
        if (err->code != rc) pr__err_set(err, rc, 0, "http: connect failed: %s", pr_strerror(rc));
        if (rc == PR_ETIMEDOUT) pr__err_set(err, rc, 0, "http: timed out %s %s (%s)", phase, host, limit);
        return rc;
    }
    *out = conn;
    return PR_OK;
}

/* ---- requests ---- */

static int pr__client_method_is(const char *m, const char *s) { return strcmp(m, s) == 0; }

/* Restart a streamed body for a replay: PR_OK, or why it cannot be. */
static int pr__client_rewind(const pr_http_request *req) {
    if (!req->body_fn) return PR_OK;
    return req->body_rewind ? req->body_rewind(req->body_user_data) : PR_ESTATE;
}

/* One request on one origin: pool or connect, exchange, one replay on a
   dead reused connection. */
static int pr__client_once(pr_http_client *c, pr_http_response **out, const pr_http_request *req,
                                int64_t deadline, const char *limit, pr_err_info *err) {
    const pr_url *u = req->url, *proxy = pr__client_proxy_for(c, u);
    pr_buf key, target, pauth;
    pr_slice tslice, *tp = NULL;
    pr_http_request rq = *req;
    const char **lines = NULL;
    pr__client_origin *og = NULL;
    size_t lines_size = 0;
    int rc, attempt, slot = 0;
    *out = NULL;
    pr_buf_init(&key);
    pr_buf_init(&target);
    pr_buf_init(&pauth);
    rc = pr__client_pool_key(&key, u, proxy);
    if (!rc && proxy && !u->secure) { /* absolute-form target, Proxy-Authorization */
        rc = pr_buf_append_str(&target, "http://");
        if (!rc) rc = pr_url_authority(&target, u, 0);
        if (!rc) rc = pr_url_target(&target, u);
        tslice.ptr = target.data;
        tslice.len = target.len;
        tp = &tslice;
        if (!rc && proxy->has_userinfo) {
            pr_http_header pa;
            rc = pr__proxy_basic(&pauth, proxy);
            pa.name = pr_slice_cstr("Proxy-Authorization");
            pa.value.ptr = pauth.data;
            pa.value.len = pauth.len;
            if (!rc) rc = pr__http_lines_join(req->headers, &pa, 1, &lines, &lines_size);
            rq.headers = lines;
        }
    }
    if (rc) {
        pr__err_set(err, rc, 0, "http: out of memory");
        goto done;
    }
    if ((rc = pr__client_slots_take(c, &key, &og, &slot, deadline, limit, err)) != PR_OK) goto done;
    for (attempt = 0;; attempt++) {
        pr_http_response *r = NULL;
        pr__client_lease *lease;
        pr_conn *conn = attempt == 0 ? pr__client_pool_take(c, &key) : NULL;
        int reused = conn != NULL, rx = 0;
        size_t head_used = 0;
        pr_http_opts ho = c->o.http;
        if (!conn && (rc = pr__client_connect(c, &conn, u, proxy, &head_used, deadline, limit, err)) != 0) break;
        if (req->idle_timeout_ms) ho.idle_timeout_ms = PR__MAX(req->idle_timeout_ms, 0); /* the request's own */
        rc = pr__http_exchange(&r, conn, &rq, &ho, tp, head_used, deadline, &rx, limit);
        if (rc) {
            pr_err_info e = conn->err;
            pr_conn_destroy(conn);
            /* transparent replay: a reused connection died before the first
               response byte and the request can be sent again */
            if (reused && !rx && pr__http_peer_gone(rc, &e) && pr__client_rewind(req) == PR_OK) continue;
            if (e.code != rc) pr__err_set(&e, rc, 0, "http: %s", pr_strerror(rc));
            *err = e;
            break;
        }
        lease = (pr__client_lease *)pr__alloc(sizeof *lease + key.len);
        if (!lease) {
            pr_http_response_destroy(r);
            pr_conn_destroy(conn);
            rc = pr__err_set(err, PR_ENOMEM, 0, "http: out of memory");
            break;
        }
        lease->client = c;
        lease->conn = conn;
        lease->origin = og;
        lease->slot = slot;
        lease->key_len = key.len;
        memcpy(lease + 1, key.data, key.len);
        r->on_destroy = pr__client_lease_end;
        r->on_destroy_ctx = lease;
        og = NULL;
        slot = 0;
        c->live++;
        *out = r;
        break;
    }
    pr__client_slots_give(c, og, slot); /* still ours only when no response holds them */
done:
    pr__free(lines, lines_size);
    pr_buf_deinit(&key);
    pr_buf_deinit(&target);
    pr_buf_deinit(&pauth);
    return rc;
}

/* Whether name is in a NULL-terminated list (any case). */
static int pr__client_name_in(pr_slice name, const char *const *list) {
    for (; list && *list; list++)
        if (pr__http_hdr_is(name, *list)) return 1;
    return 0;
}

/* Whether a request field goes on to the next hop of a redirect that
   changes the origin (cross) or not and keeps the body or not (see the
   module doc). */
static int pr__client_redirect_keeps(const pr_http_client *c, const pr_http_request *req, pr_slice name, int cross,
                                   int keep_body) {
    static const char *const safe[] = { "accept", "accept-language", "user-agent", /* then the body's: */
                                        "content-type", "content-language", "content-encoding", NULL };
    const char *const own[3] = { c->hdr_count, c->hdr_timeout, c->hdr_idem };
    size_t i;
    if (!keep_body && (pr__client_name_in(name, safe + 3) || pr__http_hdr_is(name, "content-location"))) return 0;
    if (!cross) return 1;
    if (pr__http_hdr_is(name, "host")) return 0; /* it names the old origin (curl drops it too) */
    for (i = 0; i < 3; i++)
        if (own[i] && pr__http_hdr_is(name, own[i])) return 1;
    return pr__client_name_in(name, safe) || pr__client_name_in(name, c->o.redirect_forward_headers) ||
           pr__client_name_in(name, req->redirect_forward);
}

/* Read what is already buffered of a response's body (no waiting) so that
   its connection can go back to the pool; then destroy it. */
static void pr__client_discard(pr_http_response *r) {
    const char *p;
    size_t got = 0, n;
    while (got < PR__CLIENT_DRAIN_MAX && pr_http_next_span(r, &p, &n, 0) == PR_OK) got += n;
    pr_http_response_destroy(r);
}

/* The redirect chain of one attempt. */
static int pr__client_chain(pr_http_client *c, pr_http_response **out, const pr_http_request *req, int64_t deadline,
                          const char *limit, pr_err_info *err) {
    pr_http_request rq;
    const char **lines = NULL;
    size_t lines_cap = 0, i;
    pr_url cur;
    int rc, hops = 0;
    memset(&cur, 0, sizeof cur);
    rq = *req;
    for (;;) {
        pr_http_response *r = NULL;
        const pr_slice *loc;
        int st, keep_body, cross;
        pr_buf base, next;
        pr_url nu;
        rc = pr__client_once(c, &r, &rq, deadline, limit, err);
        if (rc) break;
        st = pr_http_status(r);
        loc = pr_http_header_get(r, "location");
        if (!c->o.max_redirects || !loc || !(st == 301 || st == 302 || st == 303 || st == 307 || st == 308)) {
            *out = r;
            break;
        }
        keep_body = !(st == 303 || ((st == 301 || st == 302) && rq.method && pr__client_method_is(rq.method, "POST")));
        if (keep_body && rq.body_fn && !rq.body_rewind) { /* cannot replay a streamed body: the 3xx is the answer */
            *out = r;
            break;
        }
        if (++hops > c->o.max_redirects) {
            pr_http_response_destroy(r);
            rc = pr__err_set(err, PR_ELIMIT, 0, "http: more than %d redirects", c->o.max_redirects);
            err->http_status = st;
            break;
        }
        /* the next URL */
        pr_buf_init(&base);
        pr_buf_init(&next);
        memset(&nu, 0, sizeof nu);
        rc = pr_url_format(&base, rq.url, 0);
        if (!rc) rc = pr_url_resolve(&next, base.data, base.len, loc->ptr, loc->len, err);
        if (!rc) rc = pr_url_parse(&nu, next.data, next.len, err);
        pr_buf_deinit(&base);
        pr_buf_deinit(&next);
        if (rc) {
            if (rc == PR_EINVAL) rc = PR_EPROTO; /* the server's Location is bad, not the caller's request */
            err->code = rc;
            err->http_status = st;
            pr_http_response_destroy(r);
            pr_url_deinit(&nu);
            break;
        }
        if (rq.url->secure && !nu.secure && !c->o.allow_https_to_http) {
            pr_http_response_destroy(r);
            pr_url_deinit(&nu);
            rc = pr__err_set(err, PR_EPROTO, 0, "http: redirect from https to http refused");
            err->http_status = st;
            break;
        }
        /* drain the 3xx body so its connection can be reused, but only what
           is cheap: at most PR__CLIENT_DRAIN_MAX bytes within PR__CLIENT_DRAIN_MS
           (and the deadline). A body that has not ended by then leaves the
           response unreusable: destroying it closes the connection. */
        {
            const char *p;
            size_t got = 0, k;
            int64_t ddl = pr_deadline_min(deadline, pr_deadline_in(PR__CLIENT_DRAIN_MS));
            while (got < PR__CLIENT_DRAIN_MAX && pr_http_next_span(r, &p, &k, ddl) == PR_OK) got += k;
        }
        pr_http_response_destroy(r);
        cross = !pr_url_same_origin(rq.url, &nu);
        if ((cross || !keep_body) && rq.headers) { /* the fields that go on, for the rest of the chain */
            size_t n = 0;
            if (!lines) {
                while (rq.headers[lines_cap]) lines_cap++;
                lines = (const char **)pr__calloc(++lines_cap, sizeof *lines);
                if (!lines) {
                    lines_cap = 0;
                    pr_url_deinit(&nu);
                    rc = pr__err_set(err, PR_ENOMEM, 0, "http: out of memory");
                    break;
                }
            }
            for (i = 0; rq.headers[i]; i++) {
                pr_slice name, value;
                if (pr__http_field_line(rq.headers[i], strlen(rq.headers[i]), &name, &value, NULL) == PR_OK &&
                    pr__client_redirect_keeps(c, req, name, cross, keep_body))
                    lines[n++] = rq.headers[i];
            }
            lines[n] = NULL;
            rq.headers = lines;
        }
        if (!keep_body) {
            if (!rq.method || !pr__client_method_is(rq.method, "HEAD")) rq.method = "GET";
            rq.body = NULL;
            rq.body_len = 0;
            rq.body_fn = NULL;
            rq.body_user_data = NULL;
        } else if ((rc = pr__client_rewind(&rq)) != PR_OK) {
            pr_url_deinit(&nu);
            pr__err_set(err, rc, 0, "http: the request body could not be restarted for a redirect");
            break;
        }
        pr_url_deinit(&cur);
        cur = nu;
        rq.url = &cur;
    }
    pr__free(lines, lines_cap * sizeof *lines);
    pr_url_deinit(&cur);
    return rc;
}

/* ---- retries around the chain ---- */

/* One logical request: the state its attempts share. */
typedef struct pr__client_call {
    pr_http_client *c;
    const pr_http_request *req;
    const char *method;
    pr_err_info err;          /* the call's detail */
    int replayable;
    int status;               /* the last attempt's response status, 0 if none */
    int retry_status;         /* that status asks for a retry */
    int64_t hint_ms;          /* the server's usable delay hint, -1 = none */
    int fatal;                /* the last attempt's error must not be retried */
    int (*classify)(int outcome, int64_t *after_ms, void *user_data); /* the policy's own hooks */
    void (*on_retry)(const pr_retry_info *info, void *user_data);
    void *user_data;
    pr_retry_hooks hooks;     /* the policy's clock, for HTTP-date hints */
    pr_buf url;               /* without userinfo, for events (only with an observer) */
    int64_t t0;
} pr__client_call;

static void pr__client_emit(pr__client_call *k, int kind, int attempt, int status, int error, int64_t duration_ms,
                          int64_t delay_ms, const char *reason, int hinted) {
    pr_http_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.method = k->method;
    ev.url = k->url.data ? k->url.data : "";
    ev.attempt = attempt;
    ev.status = status;
    ev.error = error;
    ev.duration_ms = duration_ms;
    ev.delay_ms = delay_ms;
    ev.reason = reason;
    ev.hinted = hinted;
    k->c->o.observer.on_event(&ev, k->c->o.observer.user_data);
}

/* Whether a failure is one retrying cannot cure: a bad request, no memory,
   a name that does not exist, a TLS handshake refused either way. */
static int pr__client_final(int rc, const pr_err_info *e) {
    if (rc == PR_EINVAL || rc == PR_ENOMEM || rc == PR_ENOTSUP) return 1;
    /* the resolver's answer that the name does not exist, or has no address */
    if (rc == PR_EDNS) {
        if (e->dns_error == EAI_NONAME || e->dns_error == EAI_FAIL) return 1;
#ifdef EAI_NODATA
        if (e->dns_error == EAI_NODATA) return 1;
#endif
#ifdef EAI_ADDRFAMILY
        if (e->dns_error == EAI_ADDRFAMILY) return 1;
#endif
        return 0;
    }
    /* a handshake the peer or we refused (a certificate, a protocol, a peer
       that speaks no TLS) goes the same way again; a connection cut during it
       does not say so */
    if (rc == PR_ETLS) return e->tls_error != PR_TLS_TRUNCATED;
    return 0;
}

static int pr__client_call_classify(int outcome, int64_t *after_ms, void *user_data) {
    pr__client_call *k = (pr__client_call *)user_data;
    int v;
    if (outcome >= 0) v = !k->retry_status ? PR_RETRY_OK : k->hint_ms >= 0 ? PR_RETRY_AFTER : PR_RETRY_AGAIN;
    else v = k->fatal ? PR_RETRY_FAIL : pr_retry_classify_default(outcome, NULL, NULL);
    *after_ms = k->hint_ms;
    if (k->classify && !(outcome < 0 && pr__client_final(outcome, &k->err))) v = k->classify(outcome, after_ms, k->user_data);
    if (!k->replayable && (v == PR_RETRY_AGAIN || v == PR_RETRY_AFTER)) v = outcome >= 0 ? PR_RETRY_OK : PR_RETRY_FAIL;
    return v;
}

static void pr__client_call_on_retry(const pr_retry_info *info, void *user_data) {
    pr__client_call *k = (pr__client_call *)user_data;
    if (k->c->o.observer.on_event) {
        char why[sizeof k->err.msg + 32];
        if (info->outcome >= 0) snprintf(why, sizeof why, "status %d", info->outcome);
        else snprintf(why, sizeof why, "%s: %s", pr_errname(info->outcome), k->err.msg);
        pr__client_emit(k, PR_HTTP_EVENT_RETRY, info->retry + 1, k->status, info->outcome >= 0 ? PR_OK : info->outcome,
                      0, info->delay_ms, why, info->verdict == PR_RETRY_AFTER);
    }
    if (k->on_retry) k->on_retry(info, k->user_data);
}

/* Errors that say nothing about the upstream's health, and those that
   retrying cannot cure. */
static int pr__client_error_fatal(int rc, const pr_err_info *e) {
    return rc == PR_ELIMIT || rc == PR_ECANCELED || rc == PR_ECIRCUIT || rc == PR_ESTATE || pr__client_final(rc, e);
}

static void pr__client_breaker_record(pr_breaker *b, int outcome) {
    if (outcome == PR_ECANCELED || outcome == PR_EINVAL || outcome == PR_ENOMEM || outcome == PR_ECIRCUIT)
        pr_breaker_record(b, PR_BREAKER_IGNORE);
    else if (outcome < 0 || outcome == 408 || (outcome >= 500 && outcome <= 599))
        pr_breaker_record(b, PR_BREAKER_FAILURE);
    else if (outcome == 429)
        pr_breaker_record(b, PR_BREAKER_IGNORE);
    else
        pr_breaker_record(b, PR_BREAKER_SUCCESS);
}

/* Whether a response's Content-Type is JSON: application/json or any +json. */
static int pr__client_is_json(const pr_http_response *r) {
    const pr_slice *ct = pr_http_header_get(r, "content-type");
    pr_slice t;
    if (pr__http_media_is(ct, "application/json")) return 1;
    if (!ct) return 0;
    t = pr__http_media_type(*ct);
    if (t.len <= 5) return 0;
    t.ptr += t.len - 5;
    t.len = 5;
    return pr_slice_ieq(t, pr_slice_cstr("+json"));
}

/* Read the whole body of r into res (fetch). */
static int pr__client_read_all(pr_http_client *c, pr_http_response *r, pr_http_result *res, int64_t deadline,
                             pr_err_info *err) {
    pr_buf b;
    int rc;
    pr_buf_init(&b);
    for (;;) {
        const char *p;
        size_t n;
        rc = pr_http_next_span(r, &p, &n, deadline);
        if (rc == PR_ECLOSED) {
            rc = PR_OK;
            break;
        }
        if (rc) {
            pr_http_last_error(r, err);
            if (err->code != rc) pr__err_set(err, rc, 0, "http: %s reading the body", pr_strerror(rc));
            break;
        }
        if (b.len + n > c->o.fetch_max_bytes) {
            rc = pr__err_set(err, PR_ELIMIT, 0, "http: body over fetch_max_bytes (%lu)",
                             (unsigned long)c->o.fetch_max_bytes);
            break;
        }
        if ((rc = pr_buf_append(&b, p, n)) != PR_OK) {
            pr__err_set(err, rc, 0, "http: out of memory");
            break;
        }
    }
    if (!rc && (rc = pr_buf_append(&b, "", 1)) != PR_OK) pr__err_set(err, rc, 0, "http: out of memory");
    if (rc) {
        pr_buf_deinit(&b);
        return rc;
    }
    res->body_len = b.len - 1;
    /* exactly sized (pr_http_result_deinit frees body_len + 1): a shrink, in place with most allocators */
    res->body = (char *)pr__realloc(b.data, b.cap, b.len);
    if (!res->body) {
        pr_buf_deinit(&b);
        return pr__err_set(err, PR_ENOMEM, 0, "http: out of memory");
    }
    if (pr__client_is_json(r)) pr_json_parse(&res->json, res->body, res->body_len, NULL, NULL);
    if (r->on_destroy) r->on_destroy(r, r->on_destroy_ctx); /* the connection goes back now */
    return PR_OK;
}

/* One attempt: breaker, the chain, the retry facts of its response and,
   for fetch, the whole body. Returns the outcome: a status (*out set) or
   an error. */
static int pr__client_attempt(pr__client_call *k, pr_http_response **out, const pr_http_request *rq, int64_t deadline,
                            const char *limit, pr_http_result *fetch) {
    pr_http_client *c = k->c;
    pr_http_response *r = NULL;
    int rc;
    *out = NULL;
    k->status = k->retry_status = k->fatal = 0;
    k->hint_ms = -1;
    if (c->o.breaker && (rc = pr_breaker_admit(c->o.breaker)) != PR_OK) {
        k->fatal = 1;
        return pr__err_set(&k->err, rc, 0, "http: circuit breaker open: not sent");
    }
    rc = pr__client_chain(c, &r, rq, deadline, limit, &k->err);
    if (!rc) {
        const pr_slice *ra = pr_http_header_get(r, "retry-after"), *ram = pr_http_header_get(r, "retry-after-ms");
        int64_t now_wall = k->hooks.wall_clock_ms ? k->hooks.wall_clock_ms(k->hooks.user_data) : pr__time_wall_ms();
        k->status = pr_http_status(r);
        k->retry_status = pr_retry_http_should_retry(k->status, pr_http_header_get(r, "x-should-retry"));
        if (!pr_retry_hint_ms(ram, ra, now_wall, c->o.max_retry_after_ms, &k->hint_ms)) k->hint_ms = -1;
        if (fetch) {
            pr_http_result_deinit(fetch);
            rc = pr__client_read_all(c, r, fetch, deadline, &k->err);
            if (rc) {
                pr_http_result_deinit(fetch);
                pr_http_response_destroy(r);
                r = NULL;
                k->status = 0;
                k->fatal = pr__client_error_fatal(rc, &k->err);
            }
        }
    } else {
        k->fatal = pr__client_error_fatal(rc, &k->err);
    }
    if (c->o.breaker) pr__client_breaker_record(c->o.breaker, rc ? rc : k->status);
    *out = r;
    return rc ? rc : k->status;
}

/* The extra header fields of an attempt (retry count, timeout,
   idempotency key), unless the request has a field of that name. */
static int pr__client_has_field(const pr_http_request *req, const char *name) {
    const char *const *l;
    for (l = req->headers; l && *l; l++) {
        pr_slice n, v;
        if (pr__http_field_line(*l, strlen(*l), &n, &v, NULL) == PR_OK && pr__http_hdr_is(n, name)) return 1;
    }
    return 0;
}

static void pr__client_random_hex(char *out, size_t n) {
    static const char hex[] = "0123456789abcdef";
    size_t i;
    uint64_t v = 0;
    for (i = 0; i < n; i++) {
        if (i % 16 == 0) v = pr__random_u64();
        out[i] = hex[v & 15];
        v >>= 4;
    }
    out[n] = 0;
}

/* The whole logical request: attempts, retries, events. */
static int pr__client_call_run(pr_http_client *c, pr_http_response **out, const pr_http_request *req,
                             pr_err_info *err, int64_t deadline, pr_http_result *fetch) {
    pr__client_call k;
    pr_retry_policy p;
    pr_retry st;
    pr_http_request rq;
    pr_http_header extra[3];
    const char **lines = NULL;
    size_t nextra = 0, lines_size = 0;
    char count[24], secs[32], key[33], alimit[48];
    const char *idem = NULL;
    int rc, outcome, count_at = -1;
    if (out) *out = NULL;
    if (err) memset(err, 0, sizeof *err);
    if (!c || (!out && !fetch) || !req || !req->url)
        return pr__err_set(err, PR_EINVAL, 0, "http: %s is NULL", !c ? "the client" : !req ? "the request"
                                                                  : !req->url ? "req->url" : "out");
    memset(&k, 0, sizeof k);
    k.c = c;
    k.req = req;
    k.method = req->method ? req->method : "GET";
    k.replayable = !req->body_fn || req->body_rewind;
    k.t0 = pr_now();
    pr_buf_init(&k.url);
    p = req->retry ? *req->retry : c->o.retry;
    k.classify = p.classify;
    k.on_retry = p.on_retry;
    k.user_data = p.user_data;
    k.hooks = p.hooks;
    p.classify = pr__client_call_classify;
    p.on_retry = pr__client_call_on_retry;
    p.user_data = &k;
    if (pr_retry_begin(&st, &p) != PR_OK) {
        rc = pr__err_set(&k.err, PR_EINVAL, 0, "http: invalid retry policy");
        goto done;
    }
    if ((rc = pr__http_fields(req->headers, NULL, 0, NULL, NULL, &k.err)) != PR_OK) goto done;
#ifdef PRISTINE_NO_TLS
    if (req->url->secure) {
        rc = pr__err_set(&k.err, PR_ENOTSUP, 0, "http: https needs TLS (PRISTINE_NO_TLS)");
        goto done;
    }
#endif
    if (c->o.observer.on_event) {
        if (pr_buf_append_str(&k.url, req->url->secure ? "https://" : "http://") || pr_url_authority(&k.url, req->url, 0) ||
            pr_url_target(&k.url, req->url) || pr_buf_append(&k.url, "", 1)) {
            rc = pr__err_set(&k.err, PR_ENOMEM, 0, "http: out of memory");
            goto done;
        }
        pr__client_emit(&k, PR_HTTP_EVENT_START, 0, 0, PR_OK, 0, 0, NULL, 0);
    }
    /* the fields every attempt adds, and the idempotency key (once per call) */
    if (c->hdr_count && !pr__client_has_field(req, c->hdr_count)) {
        count_at = (int)nextra;
        extra[nextra].name = pr_slice_cstr(c->hdr_count);
        nextra++;
    }
    if (c->hdr_timeout && c->o.attempt_timeout_ms > 0 && !pr__client_has_field(req, c->hdr_timeout)) {
        int ms = c->o.attempt_timeout_ms;
        if (ms % 1000) snprintf(secs, sizeof secs, "%d.%03d", ms / 1000, ms % 1000);
        else snprintf(secs, sizeof secs, "%d", ms / 1000);
        extra[nextra].name = pr_slice_cstr(c->hdr_timeout);
        extra[nextra].value = pr_slice_cstr(secs);
        nextra++;
    }
    if (req->idempotency_key) idem = *req->idempotency_key ? req->idempotency_key : NULL;
    else if (c->hdr_idem && !pr__client_method_is(k.method, "GET") && !pr__client_method_is(k.method, "HEAD")) {
        pr__client_random_hex(key, 32);
        idem = key;
    }
    if (idem && c->hdr_idem && !pr__client_has_field(req, c->hdr_idem)) {
        extra[nextra].name = pr_slice_cstr(c->hdr_idem);
        extra[nextra].value = pr_slice_cstr(idem);
        nextra++;
    }
    rq = *req;
    for (;;) {
        pr_http_response *r = NULL;
        int64_t adl = deadline, t1 = pr_now(), delay;
        const char *limit = "deadline";
        if (c->o.attempt_timeout_ms > 0 && pr_deadline_in(c->o.attempt_timeout_ms) < deadline) {
            adl = pr_deadline_in(c->o.attempt_timeout_ms);
            snprintf(alimit, sizeof alimit, "attempt timeout %d ms", c->o.attempt_timeout_ms);
            limit = alimit;
        }
        if (count_at >= 0) {
            count[pr__buf_dec(count, (uint64_t)st.retries)] = 0;
            extra[count_at].value = pr_slice_cstr(count);
        }
        if (nextra) { /* the request's lines and this attempt's own (the count changes) */
            pr__free(lines, lines_size);
            if (pr__http_lines_join(req->headers, extra, nextra, &lines, &lines_size) != PR_OK) {
                lines = NULL;
                lines_size = 0;
                outcome = pr__err_set(&k.err, PR_ENOMEM, 0, "http: out of memory");
                break;
            }
            rq.headers = lines;
        }
        outcome = pr__client_attempt(&k, &r, &rq, adl, limit, fetch);
        if (c->o.observer.on_event)
            pr__client_emit(&k, PR_HTTP_EVENT_ATTEMPT, st.retries, k.status, outcome < 0 ? outcome : PR_OK,
                          pr_now() - t1, 0, NULL, 0);
        if ((delay = pr_retry_plan(&st, &outcome, deadline)) < 0) {
            if (r && outcome < 0) { /* cancelled after a response */
                pr_http_response_destroy(r);
                r = NULL;
            }
            if (out) *out = r;
            else pr_http_response_destroy(r);
            break;
        }
        if (r) pr__client_discard(r);
        if ((rc = pr__client_rewind(req)) != PR_OK) {
            outcome = pr__err_set(&k.err, rc, 0, "http: the request body could not be restarted for a retry");
            break;
        }
        if (!pr_retry_sleep(&st, delay, &outcome, deadline)) break;
    }
    if (fetch) {
        fetch->attempts = st.retries + 1;
        fetch->status = outcome >= 0 ? outcome : 0;
    }
    if (outcome >= 0) {
        rc = PR_OK;
        if (fetch && outcome >= 400) {
            pr__err_set(&k.err, PR_OK, 0, "http: status %d: %.80s", outcome, fetch->body ? fetch->body : "");
            k.err.http_status = outcome;
        }
    } else {
        rc = outcome;
        if (k.err.code != rc) pr__err_set(&k.err, rc, 0, "http: %s", pr_strerror(rc));
        if (rc == PR_ETIMEDOUT && pr_now() < deadline) { /* a limit of ours (connect, attempt), not the deadline */
            rc = k.err.code = PR_EIO;
            k.err.sys_errno = ETIMEDOUT;
        }
        if (st.retries > 0) {
            size_t n = strlen(k.err.msg);
            snprintf(k.err.msg + n, sizeof k.err.msg - n, " (after %d %s)", st.retries,
                     st.retries == 1 ? "retry" : "retries");
        }
        if (fetch) pr_http_result_deinit(fetch);
    }
done:
    if (c->o.observer.on_event && k.url.data)
        pr__client_emit(&k, PR_HTTP_EVENT_DONE, st.retries, rc ? 0 : k.status, rc, pr_now() - k.t0, 0, NULL, 0);
    if (rc) c->err = k.err;
    if (err) *err = k.err;
    pr__free(lines, lines_size);
    pr_buf_deinit(&k.url);
    return rc;
}

int pr_http_client_request(pr_http_client *c, pr_http_response **out, const pr_http_request *req,
                           pr_err_info *err, int64_t deadline) {
    if (!out) return pr__err_set(err, PR_EINVAL, 0, "http: out is NULL");
    return pr__client_call_run(c, out, req, err, deadline, NULL);
}

int pr_http_client_fetch(pr_http_client *c, pr_http_result *res, const pr_http_request *req, pr_err_info *err,
                         int64_t deadline) {
    pr_http_response *r = NULL;
    int rc;
    if (!res) return pr__err_set(err, PR_EINVAL, 0, "http: res is NULL");
    pr_http_result_deinit(res);
    rc = pr__client_call_run(c, &r, req, err, deadline, res);
    if (rc == PR_OK) res->resp = r;
    return rc;
}

void pr_http_result_deinit(pr_http_result *res) {
    if (!res) return;
    pr_http_response_destroy(res->resp);
    if (res->body) pr__free(res->body, res->body_len + 1);
    pr_json_doc_destroy(res->json);
    memset(res, 0, sizeof *res);
}

int pr_http_client_get(pr_http_client *c, pr_http_response **out, const char *url, pr_err_info *err,
                       int64_t deadline) {
    return pr_http_client_send(c, out, NULL, url, NULL, NULL, 0, err, deadline);
}

int pr_http_client_send(pr_http_client *c, pr_http_response **out, const char *method, const char *url,
                        const char *const *headers, const void *body, size_t body_len, pr_err_info *err,
                        int64_t deadline) {
    pr_http_request req;
    pr_url u;
    int rc;
    if (out) *out = NULL;
    if (err) memset(err, 0, sizeof *err);
    if (!c || !out || !url) return pr__err_set(err, PR_EINVAL, 0, "http: %s is NULL", !c ? "the client" : !out ? "out" : "url");
    memset(&u, 0, sizeof u);
    if ((rc = pr_url_parse(&u, url, strlen(url), &c->err)) != PR_OK) {
        if (err) *err = c->err;
        return rc;
    }
    memset(&req, 0, sizeof req);
    req.method = method;
    req.url = &u;
    req.headers = headers;
    req.body = body;
    req.body_len = body_len;
    rc = pr_http_client_request(c, out, &req, err, deadline);
    pr_url_deinit(&u);
    return rc;
}

/* ==== eventsource: the reconnecting Server-Sent Events stream (EventSource) over the HTTP client ==== >>eventsource.impl */
#define PR__EVENTSOURCE_DEF_RETRY 3000
#define PR__EVENTSOURCE_DEF_MAX_RETRY 3600000
#define PR__EVENTSOURCE_DEF_IDLE 45000
#define PR__EVENTSOURCE_DEF_MAX_LEI 4096
#define PR__EVENTSOURCE_SHORT_MS 1000
#define PR__EVENTSOURCE_DEF_OPEN_ATTEMPTS 4
#define PR__EVENTSOURCE_DEF_HEALTHY 60000
#define PR__EVENTSOURCE_MAX_FIELDS 32

struct pr_sse {
    pr_http_client *client;
    int own_client;
    pr_url url;
    char *method;
    char *body;
    size_t body_len;
    int repeatable;
    pr_buf fixed;               /* the static extra fields, "Name: value\r\n" lines */
    pr_sse_stream_opts o;       /* resolved; the strings above are the copies */
    pr_sse_decoder *dec;
    pr_http_response *resp;     /* the open connection, or NULL */
    int status;
    int opened;                 /* a connection has opened once */
    int dirty;                  /* the decoder has bytes of a connection: reset it for the next */
    int delivered;              /* the current connection has delivered an event */
    int64_t opened_at;          /* when it opened */
    int failures;               /* failed connections since the last healthy one */
    int steps;                  /* backoff steps taken since the last healthy connection */
    int early;                  /* connections that opened, did not fail, and ended before healthy_ms */
    int reason;                 /* why the next connection is needed (0 = the first) */
    int64_t next_at;            /* when the next connection may start (0 = at once) */
    int64_t open_until;         /* pr_sse_open's deadline, while it runs */
    long reconnects;
    int final;                  /* sticky end: 0 while the stream lives */
    int destroyed;
    pr_task *reader;            /* the task inside pr_sse_next, if any */
    pr_err_info err;
};

/* Whether n bytes at p are all zero (an options struct left unset). */
static int pr__eventsource_zero(const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    while (n && !b[n - 1]) n--;
    return n == 0;
}

static const pr_backoff pr__eventsource_backoff = { PR_BACKOFF_EXPONENTIAL, PR_JITTER_DOWN, 1000, 30000, 0.25, 0.0, 0.0 };

static void pr__eventsource_drop(pr_sse *s) {
    pr_http_response_destroy(s->resp);
    s->resp = NULL;
    s->status = 0;
}

static void pr__eventsource_free(pr_sse *s) {
    pr__eventsource_drop(s);
    pr_sse_decoder_destroy(s->dec);
    if (s->own_client) pr_http_client_destroy(s->client);
    pr_url_deinit(&s->url);
    if (s->method) pr__free(s->method, strlen(s->method) + 1);
    if (s->body) pr__free(s->body, s->body_len + 1);
    pr_buf_deinit(&s->fixed);
    pr__free(s, sizeof *s);
}

/* The last-event-ID as it may travel in a header field: "" when there is
   none, or when it cannot (over max_last_event_id, or a control byte that
   a field value may not carry; *why then says which). */
static const char *pr__eventsource_lei(const pr_sse *s, size_t *len, const char **why) {
    const char *id = pr_sse_last_event_id(s, len);
    size_t i;
    *why = NULL;
    for (i = 0; i < *len && !*why; i++)
        if (((unsigned char)id[i] < 0x20 && id[i] != '\t') || id[i] == 0x7f) *why = "has a control byte";
    if (*len > s->o.max_last_event_id) *why = "is over max_last_event_id";
    if (!*why) return id;
    *len = 0;
    return "";
}

static int pr__eventsource_sleep(pr_sse *s, int64_t delay, int64_t until) {
    return pr__retry_hook_sleep(&s->o.hooks, delay, until);
}

static int64_t pr__eventsource_wall(pr_sse *s) {
    return s->o.hooks.wall_clock_ms ? s->o.hooks.wall_clock_ms(s->o.hooks.user_data) : pr__time_wall_ms();
}

/* The stream cannot go on: remember why, for this and every later call. */
static int pr__eventsource_fail(pr_sse *s, int code, int status, const char *fmt, const char *arg) {
    pr__err_set(&s->err, code, 0, fmt, arg ? arg : "");
    s->err.http_status = status;
    s->final = code;
    pr__eventsource_drop(s);
    return code;
}

/* Whether the current connection came to nothing: it ends within
   PR__EVENTSOURCE_SHORT_MS of opening without an event. */
static int pr__eventsource_futile(const pr_sse *s) { return !s->delivered && pr_now() - s->opened_at < PR__EVENTSOURCE_SHORT_MS; }

/* Whether the current connection, ending now, stayed up long enough to
   reset the backoff and the failure count (healthy_ms). */
static int pr__eventsource_healthy(const pr_sse *s) {
    if (s->o.healthy_ms < 0) return !pr__eventsource_futile(s);
    return pr_now() - s->opened_at >= s->o.healthy_ms;
}

/* A request that cannot be repeated may still go again when the server
   cannot have processed it: a refused connection, no address, 408, 429
   and 503 (only before its response ever began streaming). */
static int pr__eventsource_unprocessed(int reason, int status, const pr_err_info *cause) {
    if (reason == PR_EHTTP) return status == 408 || status == 429 || status == 503;
    return reason == PR_EDNS || (reason == PR_EIO && cause->sys_errno == ECONNREFUSED);
}

/* The stream ends with a cause whose detail is already in s->err. A
   limit that ends it (reconnect_on_limit or a body's framing limit up to
   max_failures) is PR_EPROTO: a final PR_ELIMIT would read as "call again". */
static int pr__eventsource_end(pr_sse *s, int code) {
    if (code == PR_ELIMIT) code = PR_EPROTO;
    s->err.code = code;
    s->final = code;
    pr__eventsource_drop(s);
    return code;
}

/* Plan the next connection after a failure (failed = a connection that did
   not open) or an end (failed = 0); min_ms is a server's hint (0 = none).
   Fails the stream when the request may not go again, or a bound is
   reached (open_attempts before the stream opened, max_failures). */
static int pr__eventsource_plan(pr_sse *s, int reason, int status, int failed, int64_t min_ms) {
    pr_sse_reconnect info;
    const char *why;
    size_t n;
    int64_t delay;
    pr_err_info last = s->err; /* the cause, with its errno / TLS / DNS detail */
    const char *detail = last.msg;
    int ended = !failed && s->resp;
    if (ended && pr__eventsource_healthy(s)) {
        s->failures = s->steps = s->early = 0;
    } else if (failed || pr__eventsource_futile(s)) {
        s->failures++;
        s->steps++;
    } else if (s->early++ > 0) { /* the first early end is free; from the second on the backoff grows */
        s->steps++;
    }
    pr__eventsource_drop(s);
    if (!s->repeatable && (s->opened || !pr__eventsource_unprocessed(reason, status, &last))) {
        if (reason == PR_ECLOSED) return pr__eventsource_fail(s, PR_ECLOSED, 0, "sse: %s", "the stream ended (a request that cannot be repeated)");
        s->err = last;
        s->err.http_status = status;
        return pr__eventsource_end(s, reason);
    }
    if (!s->opened && s->o.open_attempts > 0 && s->failures >= s->o.open_attempts) {
        pr__err_wrap(&s->err, reason, &last, "sse: %d connections tried at open; the last", s->failures);
        s->err.http_status = status;
        return pr__eventsource_end(s, reason);
    }
    if (s->o.max_failures > 0 && s->failures >= s->o.max_failures) {
        pr__err_wrap(&s->err, reason, &last, "sse: %d failed connections; the last", s->failures);
        s->err.http_status = status;
        return pr__eventsource_end(s, reason);
    }
    if (min_ms > 0) delay = PR__MIN(min_ms, s->o.max_retry_ms); /* the server's wait, as given */
    else if (!s->opened) delay = pr__retry_delay_ms(&s->o.backoff, s->failures - 1, NULL, &s->o.hooks);
    else {
        delay = pr_sse_retry_ms(s);
        if (s->steps > 0) delay = pr__time_add(delay, pr__retry_delay_ms(&s->o.backoff, s->steps - 1, NULL, &s->o.hooks));
    }
    s->next_at = pr__time_add(pr_now(), delay);
    if (!s->opened && s->next_at > s->open_until) { /* the next try would come too late: this cause now */
        pr__err_wrap(&s->err, reason, &last, "sse: the next try would start after the deadline; the last");
        s->err.http_status = status;
        return pr__eventsource_end(s, reason);
    }
    s->reason = reason;
    s->reconnects++;
    if (s->o.observer.on_reconnect) {
        memset(&info, 0, sizeof info);
        info.reconnects = s->reconnects;
        info.failures = s->failures;
        info.delay_ms = delay;
        info.reason = reason;
        info.status = status;
        info.detail = detail;
        info.last_event_id = pr__eventsource_lei(s, &n, &why);
        s->o.observer.on_reconnect(&info, s->o.observer.user_data);
    }
    return PR_OK;
}

/* One connection: wait for its time, send the request, check the answer.
   Returns PR_OK (open, or a reconnect planned: loop), or what the caller
   gets (a deadline, a cancel, the stream's end). */
/* A connection's header lines (Accept, Cache-Control, Last-Event-ID, the
   options' fields and headers_fn's, which go to dyn) joined into *lines. A
   frame of its own, so that the field array is off the task's stack while
   the request runs (the stack a stream touches stays at two pages). */
static PR__NOINLINE int pr__eventsource_lines(pr_sse *s, pr_buf *dyn, const char ***lines, size_t *lines_size) {
    pr_http_header h[PR__EVENTSOURCE_MAX_FIELDS + 4];
    pr__http_field_set fields;
    pr_err_info e;
    const char *lei, *why;
    size_t n = 0, lei_len;
    int rc;
    if (s->o.headers_fn && (rc = s->o.headers_fn(dyn, s->o.user_data)) != 0)
        return pr__eventsource_fail(s, rc < 0 ? rc : PR_EINVAL, 0, "sse: %s", "headers_fn refused the connection");
    h[n].name = pr_slice_cstr("Accept");
    h[n++].value = pr_slice_cstr("text/event-stream");
    h[n].name = pr_slice_cstr("Cache-Control");
    h[n++].value = pr_slice_cstr("no-cache");
    lei = pr__eventsource_lei(s, &lei_len, &why);
    if (why)
        PR__LOG(PR_LEVEL_WARN, "sse", "the last-event-ID (%zu bytes) %s: connecting without Last-Event-ID",
                strlen(pr_sse_last_event_id(s, NULL)), why);
    if (lei_len) {
        h[n].name = pr_slice_cstr("Last-Event-ID");
        h[n].value.ptr = lei;
        h[n++].value.len = lei_len;
    }
    fields.h = h;
    fields.n = n;
    fields.cap = sizeof h / sizeof h[0];
    if ((rc = pr__http_fields(NULL, s->fixed.data, s->fixed.len, pr__http_field_push, &fields, &e)) != PR_OK ||
        (rc = pr__http_fields(NULL, dyn->data, dyn->len, pr__http_field_push, &fields, &e)) != PR_OK) {
        if (rc == PR_ELIMIT) return pr__eventsource_fail(s, PR_EINVAL, 0, "sse: %s", "too many header lines from headers_fn");
        return pr__eventsource_fail(s, PR_EINVAL, 0, "sse: headers_fn: %s", e.msg);
    }
    if (pr__http_lines_join(NULL, h, fields.n, lines, lines_size) != PR_OK)
        return pr__eventsource_fail(s, PR_ENOMEM, 0, "sse: %s", "out of memory");
    return PR_OK;
}

/* The start of a refused answer's body, for the failure's message: an API
   says there why it refused (a bad key, a model that does not exist).
   Control bytes and runs of white space become one space; a cut never
   splits a UTF-8 sequence. Reads at most cap - 1 bytes for at most a
   second within the deadline; "" when the body is empty or slow. */
static void pr__eventsource_excerpt(pr_http_response *r, char *out, size_t cap, int64_t deadline) {
    char buf[160];
    size_t n = 0, o = 0, i;
    int64_t until = pr_deadline_min(deadline, pr_deadline_in(1000));
    ptrdiff_t k;
    if (cap > sizeof buf) cap = sizeof buf;
    while (n + 1 < cap && (k = pr_http_read(r, buf + n, cap - 1 - n, until)) > 0) n += (size_t)k;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c > ' ' && c != 0x7f) out[o++] = (char)c;
        else if (o && out[o - 1] != ' ') out[o++] = ' ';
    }
    if (n + 1 >= cap) /* cut: drop a trailing sequence that may be incomplete */
        while (o && ((unsigned char)out[o - 1] & 0x80)) o--;
    while (o && out[o - 1] == ' ') o--;
    out[o] = '\0';
}

static int pr__eventsource_connect(pr_sse *s, int64_t deadline) {
    /* the protocol's own fields go on to another origin; the caller's do not */
    static const char *const fwd[] = { "Cache-Control", "Last-Event-ID", NULL };
    const char **lines = NULL;
    size_t lines_size = 0;
    pr_http_request req;
    pr_http_response *r = NULL;
    pr_buf dyn;
    pr_err_info e;
    int rc, st;
    const pr_slice *ct;
    if (s->next_at && pr_now() < s->next_at) {
        if (deadline < s->next_at) { /* the caller's deadline comes first: wait until it, then say so */
            if (deadline > pr_now() && (rc = pr__eventsource_sleep(s, deadline - pr_now(), deadline)) != PR_OK) return rc;
            return PR_ETIMEDOUT;
        }
        if ((rc = pr__eventsource_sleep(s, s->next_at - pr_now(), s->next_at)) != PR_OK) return rc;
    }
    s->next_at = 0;
    if (pr_is_canceled()) return PR_ECANCELED;
    pr_buf_init(&dyn);
    if ((rc = pr__eventsource_lines(s, &dyn, &lines, &lines_size)) != PR_OK) {
        pr_buf_deinit(&dyn);
        return rc;
    }
    memset(&req, 0, sizeof req);
    memset(&e, 0, sizeof e);
    req.method = s->method;
    req.url = &s->url;
    req.headers = lines;
    req.body = s->body;
    req.body_len = s->body_len;
    req.retry = &pr__retry_off;
    req.idle_timeout_ms = s->o.idle_timeout_ms;
    req.redirect_forward = fwd;
    rc = pr_http_client_request(s->client, &r, &req, &e, deadline);
    pr__free(lines, lines_size);
    pr_buf_deinit(&dyn);
    if (rc == PR_ECANCELED || (rc == PR_ETIMEDOUT && pr_now() >= deadline)) {
        s->err = e;
        return rc; /* the caller's limit: the next call tries again */
    }
    if (rc) {
        s->err = e; /* a connect or idle limit is PR_EIO, ETIMEDOUT: PR_ETIMEDOUT is the deadline's */
        /* what retrying cannot cure (a name that does not exist, a refused
           certificate, bad fields, no memory, https without TLS) ends it */
        if (pr__client_final(rc, &s->err))
            return pr__eventsource_end(s, rc);
        if (rc == PR_ELIMIT) /* an answer over the client's limits: a redirect loop (its last 3xx), a head too large */
            return pr__eventsource_end(s, s->err.http_status ? PR_EHTTP : PR_EPROTO);
        return pr__eventsource_plan(s, rc, 0, 1, 0); /* a network error: tried again */
    }
    st = pr_http_status(r);
    ct = pr_http_header_get(r, "content-type");
    if (st == 200 && pr__http_media_is(ct, "text/event-stream")) {
        s->resp = r;
        s->status = st;
        s->opened = 1;
        s->delivered = 0;
        s->opened_at = pr_now();
        s->next_at = 0;
        /* a stream waits long between events: the stack pages the connect
           touched (resolving, TLS, the request) need not stay resident */
        pr__coro_shed(pr_self() ? pr_self()->coro : NULL);
        if (s->dirty) pr_sse_decoder_reset(s->dec); /* the partial block of the last one goes */
        s->dirty = 0;
        return PR_OK;
    }
    s->resp = r; /* for the detail below; dropped by fail or plan */
    if (st == 204) return pr__eventsource_fail(s, PR_ECLOSED, st, "sse: %s", "204 No Content: the server ended the stream");
    if (st == 200) {
        char t[80];
        snprintf(t, sizeof t, "%.*s", ct ? (int)PR__MIN(ct->len, 60) : 0, ct ? ct->ptr : "");
        return pr__eventsource_fail(s, PR_EPROTO, st, ct ? "sse: 200 with Content-Type \"%s\", not text/event-stream"
                                                 : "sse: 200 without a Content-Type%s", t);
    }
    if (pr_retry_status_retryable(st) && !s->o.whatwg_strict) {
        int64_t hint = 0;
        if (!pr_retry_hint_ms(pr_http_header_get(r, "retry-after-ms"), pr_http_header_get(r, "retry-after"),
                              pr__eventsource_wall(s), s->o.max_retry_ms, &hint))
            hint = 0;
        pr__err_set(&s->err, PR_EHTTP, 0, "sse: status %d", st);
        s->err.http_status = st;
        return pr__eventsource_plan(s, PR_EHTTP, st, 1, hint);
    }
    {
        char t[200], x[150];
        pr__eventsource_excerpt(r, x, sizeof x, deadline);
        snprintf(t, sizeof t, "%d (not an event stream)%s%s", st, x[0] ? ": " : "", x);
        return pr__eventsource_fail(s, PR_EHTTP, st, "sse: status %s", t);
    }
}

int pr_sse_open(pr_sse **out, const char *url, const pr_sse_stream_opts *opts, pr_err_info *err,
                int64_t deadline) {
    pr_sse *s;
    const char *m;
    size_t i;
    int rc;
    if (err) memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out || !url) return pr__err_set(err, PR_EINVAL, 0, "sse: %s", "out and url are required");
    if (!(s = (pr_sse *)pr__calloc(1, sizeof *s))) return pr__err_set(err, PR_ENOMEM, 0, "sse: %s", "out of memory");
    if (opts) s->o = *opts;
    pr_buf_init(&s->fixed);
    m = PR__DEF(s->o.method, "GET");
    rc = pr_url_parse(&s->url, url, strlen(url), NULL);
    if (!rc && (s->o.retry_ms < 0 || s->o.max_retry_ms < 0 || (s->o.body_len && !s->o.body))) rc = PR_EINVAL;
    if (!rc && !(s->method = pr__strdup(m, NULL))) rc = PR_ENOMEM;
    if (!rc && s->o.body && !(s->body = pr__strndup(s->o.body, s->o.body_len))) rc = PR_ENOMEM;
    s->body_len = s->body ? s->o.body_len : 0;
    for (i = 0; !rc && s->o.headers && s->o.headers[i]; i++) {
        size_t n = strlen(s->o.headers[i]);
        pr_slice name, value;
        if (i >= PR__EVENTSOURCE_MAX_FIELDS) rc = pr__err_set(err, PR_EINVAL, 0, "sse: more than %d header lines", PR__EVENTSOURCE_MAX_FIELDS);
        else if ((rc = pr__http_field_line(s->o.headers[i], n, &name, &value, err)) != PR_OK) break;
        else if (pr_buf_append(&s->fixed, s->o.headers[i], n) || pr_buf_append(&s->fixed, "\r\n", 2)) rc = PR_ENOMEM;
    }
    if (!rc) rc = pr_sse_decoder_create(&s->dec, &s->o.decoder);
    if (!rc && s->o.last_event_id)
        rc = pr_sse_decoder_set_last_id(s->dec, s->o.last_event_id, strlen(s->o.last_event_id));
    if (!rc && s->o.client && !pr__eventsource_zero(&s->o.tls, sizeof s->o.tls))
        rc = pr__err_set(err, PR_EINVAL, 0, "sse: %s", "tls is for the stream's own client: set it on the borrowed client");
    if (!rc && !s->o.client) {
        pr_http_client_opts co;
        memset(&co, 0, sizeof co);
        co.max_redirects = 10;
        co.tls = s->o.tls;
        if ((rc = pr_http_client_create(&s->client, &co, NULL)) == PR_OK) s->own_client = 1;
    } else {
        s->client = s->o.client;
    }
    if (rc) {
        if (!err || err->code != rc)
            pr__err_set(err, rc, 0, "sse: %s", rc == PR_EINVAL ? "invalid URL or option" : pr_strerror(rc));
        pr__eventsource_free(s);
        return rc;
    }
    s->repeatable = s->o.repeatable || (!s->body && !strcmp(m, "GET"));
    s->o.retry_ms = PR__DEF(s->o.retry_ms, PR__EVENTSOURCE_DEF_RETRY);
    if (!s->o.backoff.base_ms) s->o.backoff = pr__eventsource_backoff;
    s->o.idle_timeout_ms = PR__DEF(s->o.idle_timeout_ms, PR__EVENTSOURCE_DEF_IDLE);
    s->o.max_retry_ms = PR__DEF(s->o.max_retry_ms, PR__EVENTSOURCE_DEF_MAX_RETRY);
    s->o.max_last_event_id = PR__DEF(s->o.max_last_event_id, PR__EVENTSOURCE_DEF_MAX_LEI);
    s->o.open_attempts = PR__DEF(s->o.open_attempts, PR__EVENTSOURCE_DEF_OPEN_ATTEMPTS);
    s->o.healthy_ms = PR__DEF(s->o.healthy_ms, PR__EVENTSOURCE_DEF_HEALTHY);
    memset(&s->o.tls, 0, sizeof s->o.tls); /* the client has its copy */
    s->o.method = s->o.body = NULL;
    s->o.headers = NULL;
    s->o.last_event_id = NULL;
    s->open_until = deadline;
    for (;;) { /* the first connection, reconnect rules included */
        rc = pr__eventsource_connect(s, deadline);
        if (rc || s->final || s->resp) break;
    }
    if (!rc && s->final) rc = s->final;
    if (rc) {
        /* the deadline or a cancel came between tries: say so, with the last try's cause */
        if (s->err.code != rc && s->err.msg[0])
            pr__err_wrap(&s->err, rc, &s->err, "sse: %s before the stream opened; the last try", pr_strerror(rc));
        else if (s->err.code != rc)
            pr__err_set(&s->err, rc, 0, "sse: %s before the stream opened", pr_strerror(rc));
        if (err) *err = s->err;
        pr__eventsource_free(s);
        return rc;
    }
    *out = s;
    return PR_OK;
}

/* Read the next bytes of the connection into the decoder; its end is the
   decoder's (drained, then a reconnect). */
static int pr__eventsource_read(pr_sse *s, int64_t deadline) {
    const char *p;
    size_t n;
    int rc = pr_http_next_span(s->resp, &p, &n, deadline);
    if (rc == PR_OK) {
        s->dirty = 1;
        if ((rc = pr_sse_decoder_feed(s->dec, p, n)) == PR_OK) return PR_OK;
        /* the bytes are gone: resume from the last-event-ID on a new connection */
        pr__err_set(&s->err, rc, 0, "sse: %s", "out of memory decoding the stream");
        return pr__eventsource_plan(s, rc, 0, 0, 0);
    }
    if (rc == PR_ECLOSED) { /* a clean end of the body: the complete events are still delivered */
        s->dirty = 1;
        return pr_sse_decoder_finish(s->dec);
    }
    if (rc == PR_ECANCELED || (rc == PR_ETIMEDOUT && pr_now() >= deadline)) return rc; /* the caller's limits */
    /* the connection went silent for idle_timeout_ms (PR_EIO, ETIMEDOUT), or broke mid-body (a
       reset, a truncated chunked body); TLS that ends without close_notify
       is an ordinary end of the stream */
    pr_http_last_error(s->resp, &s->err);
#ifndef PRISTINE_NO_TLS
    if (rc == PR_ETLS && s->err.tls_error == PR_TLS_TRUNCATED) rc = PR_ECLOSED;
#endif
    return pr__eventsource_plan(s, rc, 0, 0, 0);
}

static int pr__eventsource_next(pr_sse *s, pr_sse_event *ev, int64_t deadline) {
    int rc, reads = 0;
    for (;;) {
        if (s->destroyed) return PR_ECANCELED;
        if (s->final) return s->final;
        if (!s->resp) {
            if ((rc = pr__eventsource_connect(s, deadline)) != PR_OK) return rc;
            continue;
        }
        rc = pr_sse_decoder_next(s->dec, ev);
        if (rc == PR_OK) {
            s->delivered = 1;
            ev->stream_retry_ms = pr_sse_retry_ms(s);
            return PR_OK;
        }
        if (rc == PR_ELIMIT) {
            pr__err_set(&s->err, PR_ELIMIT, 0, "sse: %s", "a line or an event over its limit was dropped");
            if (s->o.reconnect_on_limit) {
                char keep[sizeof s->err.msg];
                snprintf(keep, sizeof keep, "%s", s->err.msg);
                if ((rc = pr__eventsource_plan(s, PR_ELIMIT, 0, 0, 0)) != PR_OK) return rc;
                pr__err_set(&s->err, PR_ELIMIT, 0, "%s", keep);
            } else {
                pr_sse_decoder_skip(s->dec);
            }
            return PR_ELIMIT;
        }
        if (rc == PR_ECLOSED) { /* the ended body is used up */
            pr__err_set(&s->err, PR_ECLOSED, 0, "sse: %s", "the server ended the body");
            if ((rc = pr__eventsource_plan(s, PR_ECLOSED, 0, 0, 0)) != PR_OK) return rc;
            continue;
        }
        if (rc != PR_SSE_DECODER_MORE) return rc; /* PR_ENOMEM */
        /* bytes that complete no event (comments, blank lines, id-only
           blocks) must not hold the caller past its deadline */
        if (reads++ && pr_now() >= deadline) return PR_ETIMEDOUT;
        if ((rc = pr__eventsource_read(s, deadline)) != PR_OK) return rc;
    }
}

int pr_sse_next(pr_sse *s, pr_sse_event *ev, int64_t deadline) {
    int rc;
    if (!s || !ev) return PR_EINVAL;
    if (s->reader) return PR_ESTATE; /* one reader at a time */
    s->reader = pr_self();
    rc = pr__eventsource_next(s, ev, deadline);
    s->reader = NULL;
    if (s->destroyed) {
        pr__eventsource_free(s);
        return PR_ECANCELED;
    }
    return rc;
}

void pr_sse_destroy(pr_sse *s) {
    if (!s) return;
    if (s->reader) { /* a task is inside pr_sse_next (or this is its callback): it frees the stream */
        s->destroyed = 1;
        if (s->reader != pr_self()) pr__sched_task_interrupt(s->reader);
        return;
    }
    pr__eventsource_free(s);
}

const char *pr_sse_last_event_id(const pr_sse *s, size_t *len) {
    if (!s) {
        if (len) *len = 0;
        return "";
    }
    return pr_sse_decoder_last_id(s->dec, len);
}

int64_t pr_sse_retry_ms(const pr_sse *s) {
    int64_t r;
    if (!s) return -1;
    r = pr_sse_decoder_retry_ms(s->dec);
    return PR__MIN(r >= 0 ? r : s->o.retry_ms, s->o.max_retry_ms);
}

int pr_sse_status(const pr_sse *s) { return s ? s->status : PR_EINVAL; }

const pr_slice *pr_sse_header(const pr_sse *s, const char *name) {
    return s && s->resp && name ? pr_http_header_get(s->resp, name) : NULL;
}

long pr_sse_reconnects(const pr_sse *s) { return s ? s->reconnects : 0; }

int pr_sse_last_error(const pr_sse *s, pr_err_info *out) {
    if (!s || !out) return PR_EINVAL;
    *out = s->err;
    return PR_OK;
}

/* ==== session: a job service's session: the submit throttle and the session heartbeat ==== >>session.impl */
/* Parse base (a trailing '/' dropped) + path into *url: the endpoint URLs
   of a service (the heartbeat's here; rfuture's poll and submit URLs). */
static int pr__session_url(pr_url *url, const char *base, const char *path, pr_err_info *err) {
    pr_buf u;
    int rc;
    pr_buf_init(&u);
    rc = pr_buf_append_str(&u, base);
    if (!rc && u.len && u.data[u.len - 1] == '/') u.len--;
    if (!rc) rc = pr_buf_append_str(&u, path);
    if (rc) pr__err_set(err, rc, 0, "out of memory");
    else rc = pr_url_parse(url, u.data, u.len, err);
    pr_buf_deinit(&u);
    return rc;
}

/* The client a module's object uses: given (borrowed), or, when given is
   NULL, one of its own made with tls (*own receives it, for the object to
   destroy). tls must be all zero when a client is given: those settings
   could not reach it. */
static int pr__session_client(pr_http_client *given, const pr_tls_opts *tls, pr_http_client **use,
                              pr_http_client **own, const char *who, pr_err_info *err) {
    pr_tls_opts none;
    pr_http_client_opts co;
    int rc;
    *use = *own = NULL;
    memset(&none, 0, sizeof none);
    if (given) {
        if (tls && memcmp(tls, &none, sizeof none) != 0)
            return pr__err_set(err, PR_EINVAL, 0, "%s: opts.tls is for its own client: the client given keeps its "
                                                  "own TLS settings (set them there, or pass no client)", who);
        *use = given;
        return PR_OK;
    }
    memset(&co, 0, sizeof co);
    if (tls) co.tls = *tls;
    if ((rc = pr_http_client_create(own, &co, err)) != PR_OK)
        return err ? pr__err_wrap(err, rc, err, "%s: its own client", who) : rc;
    *use = *own;
    return PR_OK;
}

/* ---- submit throttle ---- */
struct pr_throttle {
    pr_throttle_opts o;      /* resolved; key points at the copy */
    pr_sem *all, *backoff;
    pr_wsem *bytes;
    pr_backoff_window *own;  /* the window when none was given */
    char *key;
    size_t key_n;
};

int pr_throttle_create(pr_throttle **out, const pr_throttle_opts *opts) {
    pr_throttle *t;
    if (out) *out = NULL;
    if (!out) return PR_EINVAL;
    if (opts && (opts->max_concurrent < 0 || opts->backoff_concurrent < 0 || opts->max_bytes < 0 ||
                 opts->backoff_byte_factor < 0 || opts->recent_ms < 0 || opts->small_window_ms < 0 ||
                 opts->large_window_ms < 0 || opts->large_bytes < 0))
        return PR_EINVAL;
    if (!(t = (pr_throttle *)pr__calloc(1, sizeof *t))) return PR_ENOMEM;
    if (opts) t->o = *opts;
    t->o.max_concurrent = PR__DEF(t->o.max_concurrent, 400);
    t->o.backoff_concurrent = PR__DEF(t->o.backoff_concurrent, 10);
    t->o.max_bytes = PR__DEF(t->o.max_bytes, (int64_t)10 << 20);
    t->o.backoff_byte_factor = PR__DEF(t->o.backoff_byte_factor, 20);
    t->o.recent_ms = PR__DEF(t->o.recent_ms, 10000);
    t->o.small_window_ms = PR__DEF(t->o.small_window_ms, 1000);
    t->o.large_window_ms = PR__DEF(t->o.large_window_ms, 5000);
    t->o.large_bytes = PR__DEF(t->o.large_bytes, 128 * 1024);
    if (pr_sem_create(&t->all, t->o.max_concurrent) || pr_sem_create(&t->backoff, t->o.backoff_concurrent) ||
        pr_wsem_create(&t->bytes, t->o.max_bytes) || (!t->o.window && pr_backoff_window_create(&t->own)) ||
        !(t->key = pr__strdup(t->o.key ? t->o.key : "", &t->key_n))) {
        pr_throttle_destroy(t);
        return PR_ENOMEM;
    }
    if (!t->o.window) t->o.window = t->own;
    t->o.key = t->key;
    *out = t;
    return PR_OK;
}

void pr_throttle_destroy(pr_throttle *t) {
    if (!t) return;
    pr_sem_destroy(t->all);
    pr_sem_destroy(t->backoff);
    pr_wsem_destroy(t->bytes);
    pr_backoff_window_destroy(t->own);
    pr__free(t->key, t->key_n);
    pr__free(t, sizeof *t);
}

int pr_throttle_backed_off(pr_throttle *t) {
    int64_t until = t ? pr_backoff_window_until(t->o.window, t->key) : 0;
    return until && pr_now() - until < t->o.recent_ms;
}

int pr_throttle_acquire(pr_throttle *t, int64_t est_bytes, pr_throttle_ticket *tk, int64_t deadline) {
    int rc, recent;
    if (!t || !tk || est_bytes < 0) return PR_EINVAL;
    memset(tk, 0, sizeof *tk);
    if ((rc = pr_backoff_window_wait(t->o.window, t->key, deadline)) != PR_OK) return rc;
    recent = pr_throttle_backed_off(t); /* one snapshot for the whole acquisition */
    if ((rc = pr_sem_acquire(t->all, deadline)) != PR_OK) return rc;
    if (recent && (rc = pr_sem_acquire(t->backoff, deadline)) != PR_OK) {
        pr_sem_release(t->all);
        return rc;
    }
    tk->backoff_slot = recent;
    tk->weight = !recent ? est_bytes
                 : est_bytes > INT64_MAX / t->o.backoff_byte_factor ? INT64_MAX /* saturates: one runs alone */
                 : est_bytes * t->o.backoff_byte_factor;
    if ((rc = pr_wsem_acquire(t->bytes, tk->weight, deadline)) != PR_OK) {
        if (recent) pr_sem_release(t->backoff);
        pr_sem_release(t->all);
        memset(tk, 0, sizeof *tk);
        return rc;
    }
    return PR_OK;
}

void pr_throttle_release(pr_throttle *t, const pr_throttle_ticket *tk) {
    if (!t || !tk) return;
    pr_wsem_release(t->bytes, tk->weight);
    if (tk->backoff_slot) pr_sem_release(t->backoff);
    pr_sem_release(t->all);
}

int pr_throttle_backoff(pr_throttle *t, int64_t est_bytes) {
    if (!t || est_bytes < 0) return PR_EINVAL;
    return pr_backoff_window_set(t->o.window, t->key,
                                 est_bytes > t->o.large_bytes ? t->o.large_window_ms : t->o.small_window_ms);
}

/* ---- session heartbeat ---- */
struct pr_heartbeat {
    pr_heartbeat_opts o;
    pr_http_client *client;
    pr_http_client *own;  /* client, when it is the heartbeat's own */
    pr_url url;
    pr_buf body;
    pr_task *task;  /* set when the task runs */
    int stop;       /* stopped before it ran */
    long sent, failed;
};

static void pr__session_hb_free(pr_heartbeat *h) {
    pr_http_client_destroy(h->own);
    pr_url_deinit(&h->url);
    pr_buf_deinit(&h->body);
    pr__free(h, sizeof *h);
}

static int pr__session_hb_task(void *arg) {
    pr_heartbeat *h = (pr_heartbeat *)arg;
    static const char *const hd[] = { "Content-Type: application/json", NULL };
    int64_t last_ok = pr_now(), next = pr_deadline_in(h->o.interval_ms);
    h->task = pr_self();
    if (h->stop) pr_cancel(h->task);
    while (pr_sleep(next) == PR_OK) {
        pr_http_request req;
        pr_http_response *r = NULL;
        int rc, ok;
        next = pr_deadline_in(h->o.interval_ms);
        memset(&req, 0, sizeof req);
        req.method = "POST";
        req.url = &h->url;
        req.headers = hd;
        req.body = h->body.data;
        req.body_len = h->body.len;
        req.retry = &pr__retry_off;
        rc = pr_http_client_request(h->client, &r, &req, NULL, pr_deadline_in(h->o.timeout_ms));
        if (rc == PR_ECANCELED) break;
        h->sent++;
        ok = rc == PR_OK && pr_http_status(r) >= 200 && pr_http_status(r) <= 299;
        if (r) {
            char tmp[512]; /* read the (small) answer so the connection is kept */
            while (pr_http_read(r, tmp, sizeof tmp, pr_deadline_in(h->o.timeout_ms)) > 0) {}
            pr_http_response_destroy(r);
        }
        if (ok) {
            last_ok = pr_now();
            continue;
        }
        h->failed++;
        if (pr_now() - last_ok > h->o.warn_after_ms) {
            char msg[160];
            int64_t since = pr_now() - last_ok;
            snprintf(msg, sizeof msg, "session heartbeat failed for %lld s; the session will be terminated if this "
                                      "persists", (long long)(since / 1000));
            if (h->o.on_warning) h->o.on_warning(msg, since, h->o.user_data);
            else PR__LOG(PR_LEVEL_WARN, "session", "%s", msg);
        }
    }
    pr__session_hb_free(h);
    return 0;
}

int pr_heartbeat_start(pr_heartbeat **out, pr_http_client *client, const char *base_url, const char *session_id,
                       const pr_heartbeat_opts *opts, pr_err_info *err) {
    pr_heartbeat *h;
    pr_json_writer w;
    int rc;
    if (err) memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out || !base_url || !session_id)
        return pr__err_set(err, PR_EINVAL, 0, "heartbeat: %s", "out, base_url and session_id are required");
    if (opts && (opts->interval_ms < 0 || opts->warn_after_ms < 0 || opts->timeout_ms < 0))
        return pr__err_set(err, PR_EINVAL, 0, "heartbeat: %s", "a negative interval or timeout");
    if (!(h = (pr_heartbeat *)pr__calloc(1, sizeof *h))) return pr__err_set(err, PR_ENOMEM, 0, "heartbeat: %s", "out of memory");
    if (opts) h->o = *opts;
    h->o.interval_ms = PR__DEF(h->o.interval_ms, 10000);
    h->o.warn_after_ms = PR__DEF(h->o.warn_after_ms, 120000);
    h->o.timeout_ms = PR__DEF(h->o.timeout_ms, 10000);
    pr_buf_init(&h->body);
    rc = pr__session_client(client, opts ? &opts->tls : NULL, &h->client, &h->own, "heartbeat", err);
    if (!rc) rc = pr__session_url(&h->url, base_url, h->o.path ? h->o.path : "/api/v1/session_heartbeat", err);
    h->o.path = NULL;
    memset(&h->o.tls, 0, sizeof h->o.tls); /* the own client has copied what it needs */
    pr_json_writer_init(&w, &h->body);
    pr_json_begin_object(&w);
    pr_json_key(&w, "session_id", 10);
    pr_json_write_string(&w, session_id, strlen(session_id));
    pr_json_key(&w, "type", 4);
    pr_json_write_string(&w, "session_heartbeat", 17);
    pr_json_end_object(&w);
    if (!rc) rc = pr_json_writer_finish(&w);
    if (!rc) rc = pr_go(NULL, pr__session_hb_task, h, NULL);
    if (rc) {
        if (!err || err->code != rc) pr__err_set(err, rc, 0, "heartbeat: %s", pr_strerror(rc));
        pr__session_hb_free(h);
        return rc;
    }
    *out = h;
    return PR_OK;
}

void pr_heartbeat_stop(pr_heartbeat *h) {
    if (!h) return;
    if (h->task) pr_cancel(h->task); /* it frees h as it ends */
    else h->stop = 1;
}

void pr_heartbeat_counts(const pr_heartbeat *h, long *sent, long *failed) {
    if (sent) *sent = h ? h->sent : 0;
    if (failed) *failed = h ? h->failed : 0;
}

/* ==== rfuture: remote futures polled until done, with one built-in profile; queue-state observers ==== >>rfuture.impl */
#define PR__RFUTURE_PREFIX_MAX 64 /* bytes of the profile's event_prefix */
#define PR__RFUTURE_NAMES 11      /* the profile's fields */

/* The built-in profile: Thinking Machines' Tinker API, its retrieve_future. */
static const pr_rfuture_profile pr__rfuture_builtin = {
    "/api/v1/retrieve_future", "X-Tinker-Request-Iteration", "X-Tinker-Request-Type",
    "X-Tinker-Create-Promise-Roundtrip-Time", "request_id", "allow_metadata_only", "response_payload_size",
    "queue_state", "queue_state_reason", "retry_after_ms", "APIFuture.result_async."
};
#define PR__RFUTURE_BILLING_SLEEP_MS 5000
#define PR__RFUTURE_BILLING_RESET_MS 300000
#define PR__RFUTURE_STR_MAX 1024 /* bytes of a server's string the poller keeps */

struct pr__rfuture;

/* The poller runs no task per future: futures wait in a FIFO for one of
   max_polls poll slots; each poll is a short task (its stack comes from the
   pool); a future that must wait before its next poll sits in a timer heap,
   and one clock task moves due futures back to the FIFO (and times out
   those past their limit). */
struct pr_rfuture_poller {
    pr_rfuture_poller_opts o;    /* resolved; o.profile's strings point at names */
    char *names;                 /* the profile's strings, one block */
    size_t names_n;
    pr_http_client *client;
    pr_http_client *own;         /* client, when it is the poller's own */
    pr_url url;                  /* base_url + path, parsed */
    char *base;                  /* base_url (a copy), for the submit URLs */
    pr_wsem *bytes;
    struct pr__rfuture *live;    /* every future not finished */
    long nlive;
    struct pr__rfuture *ready, *ready_tail; /* waiting for a slot, FIFO */
    long nready;
    pr__sched_theap timers;            /* futures sleeping, or waiting with a limit (sched's heap) */
    int active;                  /* poll tasks running */
    pr_task *clock;              /* the timer task, once it runs */
    int clock_alive;             /* it has been spawned and has not ended */
    int64_t clock_due;           /* what it sleeps until (PR_FOREVER = nothing) */
    int destroyed;
};

enum { PR__RFUTURE_READY = 1, PR__RFUTURE_SLEEPING, PR__RFUTURE_POLLING };

/* One future's polling state. */
typedef struct pr__rfuture {
    struct pr__rfuture *prev, *next;  /* p->live */
    struct pr__rfuture *rnext;        /* p->ready */
    pr_rfuture_poller *p;
    pr_future *f;
    int state;                  /* PR__RFUTURE_* */
    pr_task *task;              /* the poll task while POLLING */
    int stop;                   /* cancelled before its poll task ran */
    pr__sched_theap_node timer;       /* in p->timers; key: the wake time, or until */
    int64_t until;              /* the polling's limit (PR_FOREVER = none) */
    char *id, *type;
    size_t id_n, type_n;
    pr_rfuture_opts o;
    int64_t created_ms, start_ms;
    int iteration;              /* polls made */
    int conn_errors;            /* 429s and connection errors in a row: the backoff exponent */
    int answered;               /* a poll of this request id has been answered */
    int failures;               /* transient failures in a row (open_attempts, max_failures) */
    char *spath, *sbody;        /* a resubmittable job's submit: path and body */
    size_t spath_n, sbody_n;    /* their allocations (the body's length is sbody_n - 1) */
    int resubmits;              /* submits again so far */
    int bad_requests;           /* 400s taken from bad_request_budget */
    int allow_md;               /* allow_metadata_only */
    int64_t reserved;           /* bytes held of p->bytes */
    int64_t first402, last402, warned402;
    int qstate;                 /* last notified queue state / reason */
    char *qreason;
    size_t qreason_n;
    pr_err_info last;           /* the last transient failure: the cause of giving up, or of a timeout */
} pr__rfuture;

static void pr__rfuture_poller_free(pr_rfuture_poller *p) {
    pr_http_client_destroy(p->own);
    pr__strfree(&p->base);
    pr__free(p->names, p->names_n);
    pr_wsem_destroy(p->bytes);
    pr_url_deinit(&p->url);
    pr__sched_theap_free(&p->timers);
    pr__free(p, sizeof *p);
}

static void pr__rfuture_finish(pr__rfuture *r);
static void pr__rfuture_maybe_free(pr_rfuture_poller *p);
static int pr__rfuture_resubmit(pr__rfuture *r);

/* Free a future's state (its strings, then itself). */
static void pr__rfuture_free(pr__rfuture *r) {
    pr__free(r->id, r->id_n);
    pr__free(r->type, r->type_n);
    pr__free(r->qreason, r->qreason_n);
    pr__free(r->spath, r->spath_n);
    pr__free(r->sbody, r->sbody_n);
    pr__free(r, sizeof *r);
}
static int pr__rfuture_clock(void *arg);
static void pr__rfuture_reject(pr__rfuture *r, int code, int status, int category, const char *fmt, ...);

/* The fields of a profile, in one order. */
static void pr__rfuture_names(pr_rfuture_profile *pf, const char **v[PR__RFUTURE_NAMES]) {
    int n = 0;
    v[n++] = &pf->path;
    v[n++] = &pf->iteration_header;
    v[n++] = &pf->type_header;
    v[n++] = &pf->roundtrip_header;
    v[n++] = &pf->request_id_field;
    v[n++] = &pf->metadata_field;
    v[n++] = &pf->payload_size_field;
    v[n++] = &pf->queue_state_field;
    v[n++] = &pf->queue_reason_field;
    v[n++] = &pf->retry_after_field;
    v[n++] = &pf->event_prefix;
}

/* Resolve the profile into p->o.profile: every name copied into one block,
   the built-in one's where the caller's is NULL. */
static int pr__rfuture_profile(pr_rfuture_poller *p, const pr_rfuture_profile *caller, pr_err_info *err) {
    pr_rfuture_profile *pf = &p->o.profile, in = *caller, def = pr__rfuture_builtin;
    const char **vin[PR__RFUTURE_NAMES], **vdef[PR__RFUTURE_NAMES], **vout[PR__RFUTURE_NAMES], *hdr[3];
    char *at;
    size_t i, n = 0;
    pr__rfuture_names(&in, vin);
    pr__rfuture_names(&def, vdef);
    pr__rfuture_names(pf, vout);
    for (i = 0; i < PR__RFUTURE_NAMES; i++) n += strlen(*vin[i] ? *vin[i] : *vdef[i]) + 1;
    if (!(p->names = (char *)pr__alloc(n))) return pr__err_set(err, PR_ENOMEM, 0, "out of memory");
    p->names_n = n;
    at = p->names;
    for (i = 0; i < PR__RFUTURE_NAMES; i++) {
        const char *v = *vin[i] ? *vin[i] : *vdef[i];
        size_t len = strlen(v) + 1;
        memcpy(at, v, len);
        *vout[i] = at;
        at += len;
    }
    hdr[0] = pf->iteration_header;
    hdr[1] = pf->type_header;
    hdr[2] = pf->roundtrip_header;
    for (i = 0; i < 3; i++)
        if (*hdr[i] && !pr__http_is_token(hdr[i], strlen(hdr[i])))
            return pr__err_set(err, PR_EINVAL, 0, "rfuture: the profile's header \"%.60s\" is not a header name",
                               hdr[i]);
    if (strlen(pf->event_prefix) > PR__RFUTURE_PREFIX_MAX)
        return pr__err_set(err, PR_EINVAL, 0, "rfuture: the profile's event_prefix is over 64 bytes");
    return PR_OK;
}

/* Put r in the heap with key due (room was reserved at start). */
static void pr__rfuture_heap_push(pr_rfuture_poller *p, pr__rfuture *r, int64_t due) {
    pr__sched_theap_push(&p->timers, &r->timer, due);
    if (p->clock && due < p->clock_due) pr__sched_wake(p->clock, PR_OK); /* it sleeps too long now */
}

int pr_rfuture_poller_create(pr_rfuture_poller **out, pr_http_client *client, const pr_rfuture_poller_opts *opts,
                             pr_err_info *err) {
    static const pr_backoff poll = PR_BACKOFF_SUBMIT,
                            pace = { PR_BACKOFF_EXPONENTIAL, PR_JITTER_NONE, 5, 1000, 0.0, 0.0, 0.0 };
    pr_err_info scratch;
    pr_rfuture_poller *p;
    int rc;
    if (!err) err = &scratch;
    memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out || !opts || !opts->base_url) return pr__err_set(err, PR_EINVAL, 0, "rfuture: opts->base_url is required");
    if (opts->max_polls < 0 || opts->max_response_bytes < 0 || opts->poll_timeout_ms < 0 ||
        opts->bad_request_budget < 0 || opts->billing_max_pause_ms < 0 || opts->hint_max_ms < 0 ||
        opts->max_failures < 0)
        return pr__err_set(err, PR_EINVAL, 0, "rfuture: negative limits");
    if (!(p = (pr_rfuture_poller *)pr__calloc(1, sizeof *p))) return pr__err_set(err, PR_ENOMEM, 0, "out of memory");
    p->o = *opts;
    memset(&p->o.tls, 0, sizeof p->o.tls); /* the own client copies what it needs */
    if ((rc = pr__session_client(client, &opts->tls, &p->client, &p->own, "rfuture", err)) != PR_OK) {
        pr__free(p, sizeof *p);
        return rc;
    }
    p->o.max_polls = PR__DEF(p->o.max_polls, 100);
    p->o.max_response_bytes = PR__DEF(p->o.max_response_bytes, (int64_t)50 << 20);
    p->o.poll_timeout_ms = PR__DEF(p->o.poll_timeout_ms, 45000);
    p->o.bad_request_budget = PR__DEF(p->o.bad_request_budget, 3);
    p->o.billing_max_pause_ms = PR__DEF(p->o.billing_max_pause_ms, 3600000);
    p->o.hint_max_ms = PR__DEF(p->o.hint_max_ms, 60000);
    p->o.open_attempts = PR__DEF(p->o.open_attempts, 5);
    if (!p->o.conn_backoff.base_ms) p->o.conn_backoff = poll;
    if (!p->o.poll_backoff.base_ms) p->o.poll_backoff = pace;
    rc = pr_backoff_check(&p->o.conn_backoff);
    if (!rc) rc = pr_backoff_check(&p->o.poll_backoff);
    if (rc) {
        pr_http_client_destroy(p->own);
        pr__free(p, sizeof *p);
        return pr__err_set(err, PR_EINVAL, 0, "rfuture: invalid backoff policy");
    }
    rc = pr__rfuture_profile(p, &opts->profile, err);
    if (!rc && (rc = pr__session_url(&p->url, opts->base_url, p->o.profile.path, err)) == PR_EINVAL)
        pr__err_wrap(err, rc, err, "rfuture: base_url + path");
    if (!rc && !(p->base = pr__strdup(opts->base_url, NULL))) rc = pr__err_set(err, PR_ENOMEM, 0, "out of memory");
    if (!rc && pr_wsem_create(&p->bytes, p->o.max_response_bytes)) rc = pr__err_set(err, PR_ENOMEM, 0, "out of memory");
    p->clock_due = PR_FOREVER;
    if (!rc && pr_go(NULL, pr__rfuture_clock, p, NULL) != PR_OK) rc = pr__err_set(err, PR_ENOMEM, 0, "out of memory");
    if (!rc) p->clock_alive = 1;
    if (rc) {
        pr__rfuture_poller_free(p);
        return rc;
    }
    p->o.base_url = NULL;
    *out = p;
    return PR_OK;
}

void pr_rfuture_poller_destroy(pr_rfuture_poller *p) {
    pr__rfuture *r, *next;
    if (!p) return;
    p->destroyed = 1;
    for (r = p->live; r; r = next) {
        next = r->next;
        if (r->state == PR__RFUTURE_POLLING) {
            pr_cancel(r->task); /* it rejects and finishes as it unwinds */
        } else {
            pr__rfuture_reject(r, PR_ECANCELED, 0, 0, "rfuture: request %.60s: polling cancelled", r->id);
            pr__rfuture_finish(r);
        }
    }
    if (p->clock) pr_cancel(p->clock); /* it frees p when it ends, if nothing is left */
    pr__rfuture_maybe_free(p);
}

static void pr__rfuture_doc_free(void *value, void *user_data) {
    PR__UNUSED(user_data);
    pr_json_doc_destroy((pr_json_doc *)value);
}

const pr_json *pr_rfuture_result(const pr_future *f) {
    pr_json_doc *d = (pr_json_doc *)pr_future_value(f);
    return d ? pr_json_root(d) : NULL;
}

static void pr__rfuture_event_full(pr__rfuture *r, const char *what, int severity, int status, const char *kind,
                                   const char *detail, int settled, int error, const char *new_id) {
    pr_rfuture_poller *p = r->p;
    pr_rfuture_event ev;
    char name[PR__RFUTURE_PREFIX_MAX + 32];
    if (!p->o.observer.on_event) return;
    memset(&ev, 0, sizeof ev);
    snprintf(name, sizeof name, "%s%s", p->o.profile.event_prefix, what);
    ev.name = name;
    ev.severity = severity;
    ev.request_id = r->id;
    ev.request_type = r->type ? r->type : "";
    ev.iteration = r->iteration - 1;
    ev.elapsed_s = (double)(pr_now() - r->start_ms) / 1000.0;
    ev.status_code = status;
    ev.kind = kind;
    ev.should_retry = kind && strcmp(kind, "fatal") != 0;
    ev.is_user_error = status >= 400 && status < 500 && status != 408;
    ev.bad_request_retries = r->bad_requests;
    ev.connection_error_retries = r->conn_errors;
    ev.timeout_ms = r->o.timeout_ms;
    ev.detail = detail;
    ev.settled = settled;
    ev.error = error;
    ev.new_request_id = new_id;
    p->o.observer.on_event(&ev, p->o.observer.user_data);
}

static void pr__rfuture_event_ex(pr__rfuture *r, const char *what, int severity, int status, const char *kind,
                                 const char *detail, int settled, int error) {
    pr__rfuture_event_full(r, what, severity, status, kind, detail, settled, error, NULL);
}

static void pr__rfuture_event(pr__rfuture *r, const char *what, int severity, int status, const char *kind,
                         const char *detail) {
    pr__rfuture_event_ex(r, what, severity, status, kind, detail, 0, 0);
}

/* Settle the future unless it is settled already (a cancel). */
static void pr__rfuture_reject(pr__rfuture *r, int code, int status, int category, const char *fmt, ...) {
    pr_err_info e;
    va_list ap;
    memset(&e, 0, sizeof e);
    e.code = code;
    e.http_status = status;
    e.category = category;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    if (pr_future_state(r->f) == PR_FUTURE_PENDING) pr_future_reject_info(r->f, &e);
}

/* Settle the future with cause's code and detail, its message after the
   words of fmt. */
static void pr__rfuture_reject_cause(pr__rfuture *r, const pr_err_info *cause, const char *fmt, ...) {
    pr_err_info e;
    char pre[sizeof e.msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    pr__err_wrap(&e, cause->code, cause, "%s", pre);
    if (pr_future_state(r->f) == PR_FUTURE_PENDING) pr_future_reject_info(r->f, &e);
}

/* A transient failure (cause: no answer, or 408 / 429 / 5xx) is counted:
   before the first answer against open_attempts, after it against
   max_failures. At the bound the future ends with cause (the event what,
   settled) and 1 is returned; else 0 and the caller polls again. */
static int pr__rfuture_gave_up(pr__rfuture *r, const pr_err_info *cause, const char *what) {
    pr_rfuture_poller *p = r->p;
    int bound = r->answered ? p->o.max_failures : p->o.open_attempts;
    r->last = *cause;
    r->failures++;
    if (bound <= 0 || r->failures < bound) return 0;
    pr__rfuture_event_ex(r, what, PR_SEVERITY_ERROR, cause->http_status, "fatal", cause->msg, 1, cause->code);
    pr__rfuture_reject_cause(r, cause, "rfuture: request %.40s: %d polls failed%s", r->id, r->failures,
                             r->answered ? " in a row" : ", none answered");
    return 1;
}

static int pr__rfuture_queue_state(const pr_json *v) {
    size_t n;
    const char *s = pr_json_string(v, &n);
    if (!s) return PR_QUEUE_UNKNOWN;
    if (!strcmp(s, "active")) return PR_QUEUE_ACTIVE;
    if (!strcmp(s, "paused_rate_limit")) return PR_QUEUE_PAUSED_RATE_LIMIT;
    if (!strcmp(s, "paused_capacity")) return PR_QUEUE_PAUSED_CAPACITY;
    return PR_QUEUE_UNKNOWN;
}

/* Why a server's string s (n bytes) cannot be kept whole, or NULL. */
static const char *pr__rfuture_str_bad(const char *s, size_t n) {
    return n > PR__RFUTURE_STR_MAX ? "is over 1024 bytes" : memchr(s, 0, n) ? "holds a NUL byte" : NULL;
}

/* Tell the observer about a (state, reason) pair if it changed. A report
   with no state and no reason is no report. Returns 1 when the reason is
   refused (the future is rejected with PR_EPROTO). */
static int pr__rfuture_queue(pr__rfuture *r, const pr_json *body, int status) {
    pr_rfuture_poller *p = r->p;
    const pr_json *qs = pr_json_get(body, p->o.profile.queue_state_field),
                  *qr = pr_json_get(body, p->o.profile.queue_reason_field);
    size_t rn = 0;
    const char *reason = pr_json_string(qr, &rn);
    int st = qs ? pr__rfuture_queue_state(qs) : PR_QUEUE_UNKNOWN;
    pr_queue_change ch;
    char *copy = NULL;
    const char *bad = reason ? pr__rfuture_str_bad(reason, rn) : NULL;
    if (bad) {
        char why[64];
        snprintf(why, sizeof why, "the %.40s %s", p->o.profile.queue_reason_field, bad);
        pr__rfuture_event_ex(r, "validation_error", PR_SEVERITY_ERROR, status, NULL, why, 1, PR_EPROTO);
        pr__rfuture_reject(r, PR_EPROTO, status, 0, "rfuture: request %.40s: %s", r->id, why);
        return 1;
    }
    if (!qs && !reason) return 0;
    if (reason && !rn) reason = NULL;
    if (st == r->qstate && ((!reason && !r->qreason) || (reason && r->qreason && !strcmp(reason, r->qreason))))
        return 0;
    if (reason && !(copy = (char *)pr__alloc(rn + 1))) return 0;
    if (copy) memcpy(copy, reason, rn + 1);
    ch.request_id = r->id;
    ch.old_state = r->qstate;
    ch.old_reason = r->qreason;
    ch.state = st;
    ch.reason = copy;
    if (p->o.observer.on_queue_state) p->o.observer.on_queue_state(&ch, p->o.observer.user_data);
    pr__free(r->qreason, r->qreason_n);
    r->qreason = copy;
    r->qreason_n = copy ? rn + 1 : 0;
    r->qstate = st;
    return 0;
}

static int64_t pr__rfuture_delay(const pr__rfuture *r, const pr_backoff *b, int attempt) {
    return pr__retry_delay_ms(b, attempt, NULL, &r->p->o.hooks);
}

/* The wait before the next poll: the server's delay when it gave one
   (retry_after_ms > 0 in body, else the answer's retry-after-ms /
   Retry-After) between poll_backoff.base_ms and hint_max_ms; else
   fallback. A number of any size is compared as a double first. */
static int64_t pr__rfuture_wait(const pr__rfuture *r, const pr_http_result *res, const pr_json *body, int64_t fallback) {
    const pr_retry_hooks *h = &r->p->o.hooks;
    int64_t hint, cap = r->p->o.hint_max_ms;
    double ms;
    if (pr_json_double(pr_json_get(body, r->p->o.profile.retry_after_field), &ms) == PR_OK && ms > 0)
        hint = ms < (double)cap ? (int64_t)ms + ((double)(int64_t)ms < ms) : cap;
    else if (!pr_retry_hint_ms(pr_http_header_get(res->resp, "retry-after-ms"),
                               pr_http_header_get(res->resp, "retry-after"),
                               h->wall_clock_ms ? h->wall_clock_ms(h->user_data) : pr__time_wall_ms(), cap, &hint))
        return fallback;
    return PR__MIN(PR__MAX(hint, r->p->o.poll_backoff.base_ms), cap);
}

/* One poll: the request, with the poll's deadline over the whole response. */
static int pr__rfuture_poll(pr__rfuture *r, pr_http_result *res, pr_err_info *err, int64_t deadline) {
    pr_rfuture_poller *p = r->p;
    const pr_rfuture_profile *pf = &p->o.profile;
    pr_http_header h[5];
    const char **lines = NULL;
    pr_http_request req;
    pr_json_writer w;
    pr_buf body;
    char iter[24], rt[40];
    size_t nh = 0, lines_size = 0;
    int rc;
    pr_buf_init(&body);
    pr_json_writer_init(&w, &body);
    pr_json_begin_object(&w);
    pr_json_key(&w, pf->request_id_field, strlen(pf->request_id_field));
    pr_json_write_string(&w, r->id, r->id_n - 1);
    pr_json_key(&w, pf->metadata_field, strlen(pf->metadata_field));
    pr_json_write_bool(&w, r->allow_md);
    pr_json_end_object(&w);
    if ((rc = pr_json_writer_finish(&w)) != PR_OK) {
        pr_buf_deinit(&body);
        return rc;
    }
    iter[pr__buf_dec(iter, (uint64_t)r->iteration)] = 0;
    h[nh].name = pr_slice_cstr("Content-Type");
    h[nh++].value = pr_slice_cstr("application/json");
    h[nh].name = pr_slice_cstr("Accept");
    h[nh++].value = pr_slice_cstr("application/json");
    if (*pf->iteration_header) {
        h[nh].name = pr_slice_cstr(pf->iteration_header);
        h[nh++].value = pr_slice_cstr(iter);
    }
    if (r->type && *pf->type_header) {
        h[nh].name = pr_slice_cstr(pf->type_header);
        h[nh++].value = pr_slice_cstr(r->type);
    }
    if (r->iteration == 0 && r->o.submitted_at_ms > 0 && *pf->roundtrip_header) {
        snprintf(rt, sizeof rt, "%.3f", (double)(r->created_ms - r->o.submitted_at_ms) / 1000.0);
        h[nh].name = pr_slice_cstr(pf->roundtrip_header);
        h[nh++].value = pr_slice_cstr(rt);
    }
    if (pr__http_lines_join(NULL, h, nh, &lines, &lines_size) != PR_OK) {
        pr_buf_deinit(&body);
        return PR_ENOMEM;
    }
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.url = &p->url;
    req.headers = lines;
    req.body = body.data;
    req.body_len = body.len;
    req.retry = &pr__retry_off;
    rc = pr_http_client_fetch(p->client, res, &req, err, deadline);
    pr__free(lines, lines_size);
    pr_buf_deinit(&body);
    return rc;
}

/* A string member, or NULL. */
static const char *pr__rfuture_str(const pr_json *o, const char *key) {
    size_t n;
    return pr_json_string(pr_json_get(o, key), &n);
}

static int pr__rfuture_category(const char *s) {
    if (s && !strcmp(s, "user")) return PR_CATEGORY_USER;
    if (s && !strcmp(s, "server")) return PR_CATEGORY_SERVER;
    return PR_CATEGORY_UNKNOWN;
}

/* The result value as a document of its own (the wrapper's "result"). */
static int pr__rfuture_subdoc(const pr_json *v, pr_json_doc **out) {
    pr_buf b;
    pr_json_writer w;
    int rc;
    pr_buf_init(&b);
    pr_json_writer_init(&w, &b);
    pr_json_write_value(&w, v);
    rc = pr_json_writer_finish(&w);
    if (!rc) rc = pr_json_parse(out, b.data, b.len, NULL, NULL);
    pr_buf_deinit(&b);
    return rc;
}

enum { PR__RFUTURE_AGAIN, PR__RFUTURE_DONE, PR__RFUTURE_RESUBMIT };

/* A 200 answer. Returns PR__RFUTURE_AGAIN (poll again after *delay) or
   PR__RFUTURE_DONE (the future is settled). */
static int pr__rfuture_answer(pr__rfuture *r, pr_http_result *res, int64_t until, int64_t *delay) {
    pr_rfuture_poller *p = r->p;
    pr_json_doc *doc = res->json;
    const pr_json *body, *result = NULL;
    const char *type, *status;
    int rc;
    if (doc) res->json = NULL; /* ours now */
    else if (pr_json_parse(&doc, res->body, res->body_len, NULL, NULL) != PR_OK) doc = NULL;
    body = doc ? pr_json_root(doc) : NULL;
    if (pr_json_type(body) != PR_JSON_OBJECT) {
        pr__rfuture_event_ex(r, "validation_error", PR_SEVERITY_ERROR, 200, NULL,
                        doc ? "the answer is not a JSON object" : "the answer is not JSON", 1, PR_EPROTO);
        pr__rfuture_reject(r, PR_EPROTO, 200, 0, "rfuture: request %.40s: the answer is %s", r->id,
                      doc ? "not a JSON object" : "not JSON");
        pr_json_doc_destroy(doc);
        return PR__RFUTURE_DONE;
    }
    type = pr__rfuture_str(body, "type");
    status = pr__rfuture_str(body, "status");
    if ((type && !strcmp(type, "try_again")) || (status && !strcmp(status, "pending"))) {
        if (type && pr__rfuture_queue(r, body, 200)) {
            pr_json_doc_destroy(doc);
            return PR__RFUTURE_DONE;
        }
        r->conn_errors = 0;
        *delay = pr__rfuture_wait(r, res, body, pr__rfuture_delay(r, &p->o.poll_backoff, r->iteration - 1));
        pr_json_doc_destroy(doc);
        return PR__RFUTURE_AGAIN;
    }
    if (status && !strcmp(status, "complete_metadata")) {
        int64_t size;
        if (!r->allow_md) {
            pr__rfuture_reject(r, PR_EPROTO, 200, 0, "rfuture: request %.40s: complete_metadata twice", r->id);
            pr_json_doc_destroy(doc);
            return PR__RFUTURE_DONE;
        }
        if (pr_json_int(pr_json_get(body, p->o.profile.payload_size_field), &size) != PR_OK || size < 0) {
            pr__rfuture_reject(r, PR_EPROTO, 200, 0, "rfuture: request %.40s: complete_metadata without a size", r->id);
            pr_json_doc_destroy(doc);
            return PR__RFUTURE_DONE;
        }
        *delay = pr__rfuture_wait(r, res, body, 0);
        pr_json_doc_destroy(doc);
        if ((rc = pr_wsem_acquire(p->bytes, size, until)) != PR_OK) {
            pr__rfuture_reject(r, rc, 0, 0, "rfuture: request %.40s: %s waiting for response bytes", r->id,
                          pr_strerror(rc));
            return PR__RFUTURE_DONE;
        }
        r->reserved = size;
        r->allow_md = 0;
        r->conn_errors = 0;
        return PR__RFUTURE_AGAIN;
    }
    if ((status && (!strcmp(status, "completed") || !strcmp(status, "complete") || !strcmp(status, "success"))) ||
        (type && (!strcmp(type, "completed") || !strcmp(type, "success")))) {
        result = pr_json_get(body, "result");
    }
    if (!result && ((status && !strcmp(status, "failed")) || pr_json_get(body, "error"))) {
        const pr_json *ev = pr_json_get(body, "error");
        const char *msg = pr_json_string(ev, NULL), *cat = pr__rfuture_str(body, "category");
        int category;
        if (!msg) msg = pr__rfuture_str(ev, "message");
        if (!cat) cat = pr__rfuture_str(ev, "category");
        category = pr__rfuture_category(cat);
        pr__rfuture_event_ex(r, "application_error",
                        category == PR_CATEGORY_USER ? PR_SEVERITY_WARNING : PR_SEVERITY_ERROR, 200, NULL,
                        msg ? msg : "failed", 1, PR_EFAILED);
        pr__rfuture_reject(r, PR_EFAILED, 200, category, "%.110s", msg ? msg : "the remote operation failed");
        pr_json_doc_destroy(doc);
        return PR__RFUTURE_DONE;
    }
    /* completed: the wrapper's result, or the whole body */
    if (result) {
        pr_json_doc *sub = NULL;
        if ((rc = pr__rfuture_subdoc(result, &sub)) != PR_OK) {
            pr_json_doc_destroy(doc);
            pr__rfuture_reject(r, rc, 200, 0, "rfuture: request %.40s: %s", r->id, pr_strerror(rc));
            return PR__RFUTURE_DONE;
        }
        pr_json_doc_destroy(doc);
        doc = sub;
    }
    if (r->o.validate) {
        pr_err_info why;
        memset(&why, 0, sizeof why);
        if (r->o.validate(pr_json_root(doc), &why, r->o.user_data) != 0) {
            pr__rfuture_event_ex(r, "validation_error", PR_SEVERITY_ERROR, 200, NULL, why.msg, 1, PR_EPROTO);
            pr__rfuture_reject(r, PR_EPROTO, 200, 0, "rfuture: request %.30s: invalid result: %.70s", r->id,
                          why.msg[0] ? why.msg : "refused by validate");
            pr_json_doc_destroy(doc);
            return PR__RFUTURE_DONE;
        }
    }
    if (pr_future_state(r->f) == PR_FUTURE_PENDING) {
        pr_future_on_free(r->f, pr__rfuture_doc_free, NULL);
        pr_future_resolve(r->f, doc);
        pr__rfuture_event_ex(r, "resolved", PR_SEVERITY_INFO, 200, NULL, NULL, 1, PR_OK);
    } else {
        pr_json_doc_destroy(doc);
    }
    return PR__RFUTURE_DONE;
}

/* An HTTP error status. Returns PR__RFUTURE_AGAIN (with *delay) or PR__RFUTURE_DONE. */
static int pr__rfuture_status(pr__rfuture *r, pr_http_result *res, int64_t *delay) {
    pr_rfuture_poller *p = r->p;
    int st = res->status;
    char detail[96];
    pr_err_info cause;
    snprintf(detail, sizeof detail, "HTTP %d: %.80s", st, res->body ? res->body : "");
    pr__err_set(&cause, PR_EHTTP, 0, "%s", detail);
    cause.http_status = st;
    r->last = cause;
    if (st == 429) {
        if (pr__rfuture_gave_up(r, &cause, "api_status_error")) return PR__RFUTURE_DONE;
        pr__rfuture_event(r, "api_status_error", PR_SEVERITY_WARNING, st, "retry_with_backoff", detail);
        *delay = pr__rfuture_wait(r, res, NULL, pr__rfuture_delay(r, &p->o.conn_backoff, r->conn_errors++));
        return PR__RFUTURE_AGAIN;
    }
    r->conn_errors = 0;
    if (st == 408 || (st >= 500 && st <= 599)) {
        pr_json_doc *doc = NULL;
        const pr_json *body = NULL;
        int bad = 0;
        if (st == 408) {
            if (!(doc = res->json)) pr_json_parse(&doc, res->body ? res->body : "", res->body_len, NULL, NULL);
            if (doc && pr_json_type(pr_json_root(doc)) == PR_JSON_OBJECT) {
                const char *qs = pr__rfuture_str(pr_json_root(doc), p->o.profile.queue_state_field);
                body = pr_json_root(doc);
                r->bad_requests = 0;
                r->answered = 1; /* a try_again in an error's clothes: the job is known */
                r->failures = 0;
                if (qs && *qs) bad = pr__rfuture_queue(r, body, st);
            }
        }
        if (!bad && !body && pr__rfuture_gave_up(r, &cause, "api_status_error")) {
            bad = 1;
        } else if (!bad) {
            pr__rfuture_event(r, "api_status_error", PR_SEVERITY_WARNING, st, "retry", detail);
            *delay = pr__rfuture_wait(r, res, body, pr__rfuture_delay(r, &p->o.poll_backoff, r->iteration - 1));
        }
        if (doc != res->json) pr_json_doc_destroy(doc);
        return bad ? PR__RFUTURE_DONE : PR__RFUTURE_AGAIN;
    }
    r->failures = 0; /* an answer that is not a transient failure */
    if (st == 400 && r->bad_requests < p->o.bad_request_budget) {
        r->bad_requests++;
        pr__rfuture_event(r, "api_status_error", PR_SEVERITY_WARNING, st, "retry_if_budget", detail);
        *delay = pr__rfuture_wait(r, res, NULL, pr__rfuture_delay(r, &p->o.poll_backoff, r->iteration - 1));
        return PR__RFUTURE_AGAIN;
    }
    if (st == 410 && r->sbody && r->resubmits < r->o.max_resubmits) {
        pr__rfuture_event(r, "api_status_error", PR_SEVERITY_WARNING, st, "retryable_exception", detail);
        return PR__RFUTURE_RESUBMIT;
    }
    if (st == 410) {
        pr__rfuture_event_ex(r, "api_status_error", PR_SEVERITY_WARNING, st, "retryable_exception", detail, 1,
                        PR_EEXPIRED);
        pr__rfuture_reject(r, PR_EEXPIRED, st, PR_CATEGORY_SERVER, "rfuture: promise expired or broken for request %.60s",
                      r->id);
        return PR__RFUTURE_DONE;
    }
    if (st == 402) {
        int64_t now = pr_now();
        if (!r->first402 || now - r->last402 > PR__RFUTURE_BILLING_RESET_MS) r->first402 = now; /* a new incident */
        r->last402 = now;
        if (now - r->first402 < p->o.billing_max_pause_ms) {
            if (!r->warned402 || now - r->warned402 >= 60000) {
                r->warned402 = now;
                PR__LOG(PR_LEVEL_WARN, "rfuture", "request %.60s: payment required (402); waiting", r->id);
            }
            *delay = pr__rfuture_wait(r, res, NULL, PR__RFUTURE_BILLING_SLEEP_MS);
            return PR__RFUTURE_AGAIN;
        }
    }
    pr__rfuture_event_ex(r, "api_status_error", PR_SEVERITY_ERROR, st, "fatal", detail, 1, PR_EHTTP);
    if (st == 400)
        pr__rfuture_reject(r, PR_EHTTP, st, PR_CATEGORY_USER, "rfuture: request %.40s: 400 after %d retries: %.50s", r->id,
                      r->bad_requests, res->body ? res->body : "");
    else
        pr__rfuture_reject(r, PR_EHTTP, st, st >= 400 && st < 500 ? PR_CATEGORY_USER : PR_CATEGORY_UNKNOWN,
                      "rfuture: request %.40s: HTTP %d: %.50s", r->id, st, res->body ? res->body : "");
    return PR__RFUTURE_DONE;
}

/* Finish a future whose outcome is settled: give back what it holds,
   drop the poller's reference, free the state. */
static void pr__rfuture_finish(pr__rfuture *r) {
    pr_rfuture_poller *p = r->p;
    if (r->state == PR__RFUTURE_READY) { /* unlink from the FIFO */
        pr__rfuture **pp = &p->ready, *prev = NULL;
        while (*pp && *pp != r) {
            prev = *pp;
            pp = &(*pp)->rnext;
        }
        if (*pp) {
            *pp = r->rnext;
            if (p->ready_tail == r) p->ready_tail = prev;
            p->nready--;
        }
    }
    pr__sched_theap_remove(&p->timers, &r->timer);
    if (r->reserved) pr_wsem_release(p->bytes, r->reserved);
    pr_future_on_cancel(r->f, NULL, NULL);
    pr_future_destroy(r->f); /* the poller's reference */
    if (r->prev) r->prev->next = r->next;
    else p->live = r->next;
    if (r->next) r->next->prev = r->prev;
    p->nlive--;
    pr__rfuture_free(r);
    pr__rfuture_maybe_free(p);
}

static void pr__rfuture_maybe_free(pr_rfuture_poller *p) {
    if (p->destroyed && !p->nlive && !p->clock_alive) pr__rfuture_poller_free(p);
}

static int pr__rfuture_poll_task(void *arg);

/* Start polls while there are slots and futures waiting for one. */
static void pr__rfuture_pump(pr_rfuture_poller *p) {
    while (p->active < p->o.max_polls && p->ready) {
        pr__rfuture *r = p->ready;
        p->ready = r->rnext;
        if (!p->ready) p->ready_tail = NULL;
        p->nready--;
        r->rnext = NULL;
        pr__sched_theap_remove(&p->timers, &r->timer);
        r->state = PR__RFUTURE_POLLING;
        r->task = NULL;
        p->active++;
        if (pr_go(NULL, pr__rfuture_poll_task, r, NULL) != PR_OK) {
            p->active--;
            pr__rfuture_reject(r, PR_ENOMEM, 0, 0, "rfuture: request %.60s: out of memory", r->id);
            pr__rfuture_finish(r);
        }
    }
}

/* r waits for a slot (its limit, if any, in the heap). */
static void pr__rfuture_ready(pr__rfuture *r) {
    pr_rfuture_poller *p = r->p;
    r->state = PR__RFUTURE_READY;
    r->rnext = NULL;
    if (p->ready_tail) p->ready_tail->rnext = r;
    else p->ready = r;
    p->ready_tail = r;
    p->nready++;
    if (r->until != PR_FOREVER) pr__rfuture_heap_push(p, r, r->until);
    pr__rfuture_pump(p);
}

/* r waits delay_ms (or until its limit) before it wants a slot again. */
static void pr__rfuture_sleep_until(pr__rfuture *r, int64_t delay_ms) {
    r->state = PR__RFUTURE_SLEEPING;
    pr__rfuture_heap_push(r->p, r, pr_deadline_min(pr_deadline_in(delay_ms), r->until));
}

/* The limit has passed: PR_ETIMEDOUT. */
static void pr__rfuture_timeout(pr__rfuture *r) {
    pr__rfuture_event_ex(r, "timeout", PR_SEVERITY_ERROR, 0, NULL, r->last.msg, 1, PR_ETIMEDOUT);
    pr__rfuture_reject(r, PR_ETIMEDOUT, 0, 0, "rfuture: timed out polling request %.30s (last: %.50s)", r->id,
                  r->last.msg[0] ? r->last.msg : "none");
    pr__rfuture_finish(r);
}

/* The clock: sleeps until the heap's first due, then moves due sleepers to
   the FIFO and times out futures past their limit. */
static int pr__rfuture_clock(void *arg) {
    pr_rfuture_poller *p = (pr_rfuture_poller *)arg;
    pr_sched *s = pr__sched_get();
    p->clock = pr_self();
    while (!p->destroyed) {
        pr__sched_theap_node *n = pr__sched_theap_top(&p->timers);
        int64_t now;
        p->clock_due = n ? n->key : PR_FOREVER;
        if (pr__sched_park(s, p->clock_due) == PR_ECANCELED) break;
        now = pr_now();
        while ((n = pr__sched_theap_top(&p->timers)) != NULL && n->key <= now) {
            pr__rfuture *r = PR__CONTAINER_OF(n, pr__rfuture, timer);
            pr__sched_theap_remove(&p->timers, n);
            if (now >= r->until) pr__rfuture_timeout(r);
            else if (r->state == PR__RFUTURE_SLEEPING) pr__rfuture_ready(r);
        }
    }
    p->clock = NULL;
    p->clock_alive = 0;
    pr__rfuture_maybe_free(p);
    return 0;
}

static void pr__rfuture_cancel_hook(void *user_data) {
    pr__rfuture *r = (pr__rfuture *)user_data;
    if (r->state == PR__RFUTURE_POLLING) {
        if (r->task) pr_cancel(r->task);
        else r->stop = 1; /* the task has not run yet */
    } else {
        pr__rfuture_finish(r); /* waiting: nothing runs for it; the future is already rejected */
    }
}

/* One poll of r, then its next step: finished, waiting for a slot, or
   waiting out a delay. */
static int pr__rfuture_poll_task(void *arg) {
    pr__rfuture *r = (pr__rfuture *)arg;
    pr_rfuture_poller *p = r->p;
    pr_http_result res;
    pr_err_info e;
    int64_t delay = 0;
    int rc, next = PR__RFUTURE_AGAIN;
    r->task = pr_self();
    if (r->stop) pr_cancel(r->task);
    if (!r->start_ms) r->start_ms = pr_now();
    if (pr_is_canceled()) {
        pr__rfuture_reject(r, PR_ECANCELED, 0, 0, "rfuture: request %.60s: polling cancelled", r->id);
        next = PR__RFUTURE_DONE;
    } else if (pr_now() >= r->until) {
        p->active--;
        r->task = NULL;
        pr__rfuture_timeout(r);
        pr__rfuture_pump(p);
        return 0;
    }
    if (next == PR__RFUTURE_AGAIN) {
        memset(&res, 0, sizeof res);
        rc = pr__rfuture_poll(r, &res, &e, pr_deadline_min(r->until, pr_deadline_in(p->o.poll_timeout_ms)));
        r->iteration++;
        if (rc == PR_ECANCELED || pr_is_canceled()) {
            pr__rfuture_reject(r, PR_ECANCELED, 0, 0, "rfuture: request %.60s: polling cancelled", r->id);
            next = PR__RFUTURE_DONE;
        } else if (rc == PR_ETIMEDOUT && pr_now() >= r->until) {
            delay = 0; /* the limit: the timeout below */
        } else if (rc == PR_ELIMIT || rc == PR_ECIRCUIT || pr__client_final(rc, &e)) {
            /* polling again cannot help: a name that does not exist, TLS refused, ... */
            e.code = rc;
            pr__rfuture_event_ex(r, "connection_error", PR_SEVERITY_ERROR, 0, "fatal", e.msg, 1, rc);
            pr__rfuture_reject_cause(r, &e, "rfuture: request %.40s", r->id);
            next = PR__RFUTURE_DONE;
        } else if (rc) { /* no answer: a connection error, back off */
            if (rc == PR_ETIMEDOUT) /* the poll's own limit, not the caller's */
                pr__err_set(&e, PR_EIO, ETIMEDOUT, "no answer within poll_timeout_ms (%d ms)", p->o.poll_timeout_ms);
            e.code = rc == PR_ETIMEDOUT ? PR_EIO : rc;
            if (pr__rfuture_gave_up(r, &e, "connection_error")) {
                next = PR__RFUTURE_DONE;
            } else {
                pr__rfuture_event(r, "connection_error", PR_SEVERITY_WARNING, 0, "retry_with_backoff", e.msg);
                delay = pr__rfuture_delay(r, &p->o.conn_backoff, r->conn_errors++);
            }
        } else if (res.status >= 200 && res.status <= 299) {
            r->answered = 1;
            r->failures = 0;
            next = pr__rfuture_answer(r, &res, r->until, &delay);
        } else {
            next = pr__rfuture_status(r, &res, &delay);
        }
        pr_http_result_deinit(&res);
        if (next == PR__RFUTURE_RESUBMIT) next = pr__rfuture_resubmit(r);
    }
    p->active--;
    r->task = NULL;
    if (next == PR__RFUTURE_DONE || pr_future_state(r->f) != PR_FUTURE_PENDING) {
        pr__rfuture_finish(r);
    } else if (pr_now() >= r->until) {
        pr__rfuture_timeout(r);
    } else if (delay > 0 && p->o.hooks.sleep) {
        /* the application's sleep (tests record it), on this task: the slot is
           free meanwhile, and a cancel reaches the task */
        r->task = pr_self();
        rc = p->o.hooks.sleep(delay, pr_deadline_min(pr_deadline_in(delay), r->until), p->o.hooks.user_data);
        if (rc == PR_ECANCELED || pr_is_canceled()) {
            pr__rfuture_reject(r, PR_ECANCELED, 0, 0, "rfuture: request %.60s: polling cancelled", r->id);
            pr__rfuture_finish(r);
        } else if (pr_now() >= r->until) {
            pr__rfuture_timeout(r);
        } else {
            pr__rfuture_ready(r);
        }
    } else if (delay > 0) {
        pr__rfuture_sleep_until(r, delay);
    } else {
        pr__rfuture_ready(r);
    }
    pr__rfuture_pump(p);
    return 0;
}

/* Start polling for request_id; a resubmittable job keeps its submit
   (path, body) to send again. */
static int pr__rfuture_begin(pr_future **out, pr_rfuture_poller *p, const char *request_id, const pr_rfuture_opts *opts,
                             const char *path, const char *body, size_t len) {
    pr__rfuture *r;
    int rc;
    if (out) *out = NULL;
    if (!out || !p || !request_id || (opts && (opts->max_resubmits < 0 || opts->resubmittable < 0))) return PR_EINVAL;
    if (p->destroyed) return PR_ESTATE;
    /* a heap slot for every live future: pushes never allocate */
    if (pr__sched_theap_reserve(&p->timers, (size_t)p->nlive + 1) != PR_OK) return PR_ENOMEM;
    if (!(r = (pr__rfuture *)pr__calloc(1, sizeof *r))) return PR_ENOMEM;
    if (opts) r->o = *opts;
    r->p = p;
    r->allow_md = 1;
    r->created_ms = pr_now();
    r->until = r->o.timeout_ms > 0 ? pr_deadline_in(r->o.timeout_ms) : PR_FOREVER;
    if (!(r->id = pr__strdup(request_id, &r->id_n)) ||
        (r->o.request_type && !(r->type = pr__strdup(r->o.request_type, &r->type_n)))) {
        pr__free(r->id, r->id_n);
        pr__free(r, sizeof *r);
        return PR_ENOMEM;
    }
    r->o.request_type = NULL;
    r->o.max_resubmits = PR__DEF(r->o.max_resubmits, 1);
    if (r->o.resubmittable && path) {
        if (!(r->spath = pr__strdup(path, &r->spath_n)) || !(r->sbody = (char *)pr__alloc(len + 1))) {
            pr__rfuture_free(r);
            return PR_ENOMEM;
        }
        r->sbody_n = len + 1;
        if (len) memcpy(r->sbody, body, len);
        r->sbody[len] = 0;
    }
    if ((rc = pr_future_create(&r->f)) != PR_OK) {
        pr__rfuture_free(r);
        return rc;
    }
    r->next = p->live;
    if (p->live) p->live->prev = r;
    p->live = r;
    p->nlive++;
    pr_future_retain(r->f); /* the poller's reference */
    pr_future_on_cancel(r->f, pr__rfuture_cancel_hook, r);
    *out = r->f;
    pr__rfuture_ready(r);
    return PR_OK;
}

int pr_rfuture_start(pr_future **out, pr_rfuture_poller *p, const char *request_id, const pr_rfuture_opts *opts) {
    if (out) *out = NULL;
    if (opts && opts->resubmittable) return PR_EINVAL; /* no submit to send again */
    return pr__rfuture_begin(out, p, request_id, opts, NULL, NULL, 0);
}

/* POST body (len bytes) to <base_url><path> with the client's retry
   policy, and take the request id of the answer: *id receives a copy
   (*id_n bytes allocated). */
static int pr__rfuture_post(pr_rfuture_poller *p, const char *path, const char *body, size_t len, char **id,
                            size_t *id_n, pr_err_info *e, int64_t deadline) {
    static const char *const h[] = { "Content-Type: application/json", "Accept: application/json", NULL };
    pr_http_request req;
    pr_http_result res;
    pr_url url;
    const char *v, *bad;
    int rc;
    *id = NULL;
    memset(&url, 0, sizeof url);
    if ((rc = pr__session_url(&url, p->base, path, e)) != PR_OK)
        return rc == PR_EINVAL ? pr__err_wrap(e, rc, e, "rfuture: base_url + the submit's path") : rc;
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.url = &url;
    req.headers = h;
    req.body = body ? body : "";
    req.body_len = len;
    memset(&res, 0, sizeof res);
    rc = pr_http_client_fetch(p->client, &res, &req, e, deadline);
    pr_url_deinit(&url);
    if (!rc && (res.status < 200 || res.status > 299)) {
        rc = PR_EHTTP;
        e->code = PR_EHTTP;
        e->http_status = res.status;
    }
    if (!rc) {
        size_t n = 0;
        pr_json_doc *doc = res.json;
        if (!doc) pr_json_parse(&doc, res.body, res.body_len, NULL, NULL);
        v = doc ? pr_json_string(pr_json_get(pr_json_root(doc), p->o.profile.request_id_field), &n) : NULL;
        bad = !v || !n ? "is missing" : pr__rfuture_str_bad(v, n);
        if (bad)
            rc = pr__err_set(e, PR_EPROTO, 0, "rfuture: the submit's %.40s %s", p->o.profile.request_id_field, bad);
        else if (!(*id = (char *)pr__alloc(n + 1)))
            rc = pr__err_set(e, PR_ENOMEM, 0, "out of memory");
        else {
            memcpy(*id, v, n + 1);
            *id_n = n + 1;
        }
        if (doc != res.json) pr_json_doc_destroy(doc);
    }
    pr_http_result_deinit(&res);
    return rc;
}

/* The job expired (410) and may run again: submit it again and poll the
   new id from the start. Runs on the poll task. */
static int pr__rfuture_resubmit(pr__rfuture *r) {
    pr_rfuture_poller *p = r->p;
    pr_err_info e;
    char *id = NULL;
    size_t id_n = 0;
    int64_t began = pr_now();
    int rc;
    memset(&e, 0, sizeof e);
    rc = pr__rfuture_post(p, r->spath, r->sbody, r->sbody_n - 1, &id, &id_n, &e,
                          pr_deadline_min(r->until, pr_deadline_in(p->o.poll_timeout_ms)));
    if (rc == PR_ECANCELED || pr_is_canceled()) {
        pr__free(id, id_n);
        pr__rfuture_reject(r, PR_ECANCELED, 0, 0, "rfuture: request %.60s: polling cancelled", r->id);
        return PR__RFUTURE_DONE;
    }
    if (rc == PR_ETIMEDOUT && pr_now() >= r->until) return PR__RFUTURE_AGAIN; /* the limit: timed out next */
    if (rc == PR_ETIMEDOUT) { /* poll_timeout_ms, not the caller's limit */
        rc = PR_EIO;
        e.code = PR_EIO;
        e.sys_errno = ETIMEDOUT;
    }
    if (rc) {
        e.code = rc;
        pr__rfuture_event_ex(r, e.http_status ? "api_status_error" : "connection_error", PR_SEVERITY_ERROR,
                             e.http_status, "fatal", e.msg, 1, rc);
        pr__rfuture_reject_cause(r, &e, "rfuture: request %.30s expired; submitting it again", r->id);
        return PR__RFUTURE_DONE;
    }
    r->resubmits++;
    pr__rfuture_event_full(r, "resubmitted", PR_SEVERITY_WARNING, 410, NULL, "expired (410): submitted again", 0, 0,
                           id);
    pr__free(r->id, r->id_n);
    r->id = id;
    r->id_n = id_n;
    /* a new job: its polls count from 0, its first poll reports the submit's time */
    if (r->reserved) pr_wsem_release(p->bytes, r->reserved);
    r->reserved = 0;
    r->allow_md = 1;
    r->iteration = 0;
    r->answered = r->failures = r->conn_errors = r->bad_requests = 0;
    r->o.submitted_at_ms = began;
    r->created_ms = pr_now();
    return PR__RFUTURE_AGAIN;
}

int pr_rfuture_submit(pr_future **out, pr_rfuture_poller *p, const char *path, const char *body, size_t len,
                      const pr_rfuture_opts *opts, pr_err_info *err, int64_t deadline) {
    pr_err_info e;
    pr_rfuture_opts o;
    char *id = NULL;
    size_t id_n = 0;
    int rc;
    if (out) *out = NULL;
    if (!out || !p || !path || (len && !body))
        return pr__err_set(err, PR_EINVAL, 0, "rfuture: submit needs out, a poller, a path and the body");
    memset(&o, 0, sizeof o);
    if (opts) o = *opts;
    o.submitted_at_ms = pr_now();
    memset(&e, 0, sizeof e);
    rc = pr__rfuture_post(p, path, body, len, &id, &id_n, &e, deadline);
    if (!rc && (rc = pr__rfuture_begin(out, p, id, &o, path, body, len)) != PR_OK && !e.code)
        pr__err_set(&e, rc, 0, "rfuture: starting the submitted job: %s", pr_strerror(rc));
    pr__free(id, id_n);
    if (rc && err) *err = e;
    return rc;
}

void pr_queue_log_change(const pr_queue_change *change, void *user_data) {
    pr_queue_log *l = (pr_queue_log *)user_data;
    const char *what = l && l->what ? l->what : "Remote job", *why;
    int64_t now = pr_now();
    if (!change || change->state == PR_QUEUE_ACTIVE) return;
    if (l && l->last_ms && now - l->last_ms < 60000) return;
    if (l) l->last_ms = now;
    why = change->reason ? change->reason
        : change->state == PR_QUEUE_PAUSED_RATE_LIMIT ? "the concurrency limit was hit"
        : change->state == PR_QUEUE_PAUSED_CAPACITY ? "the backend is running short on capacity, please wait"
        : "unknown";
    PR__LOG(PR_LEVEL_WARN, "rfuture", "%s (request %.60s) is paused. Reason: %s", what, change->request_id, why);
}

/* ==== ds: Durable Streams client: the stream handle, its options and one request; create, head, delete, append, close ==== >>ds.impl */
#define PR__DS_MAX_FIELDS 32
#define PR__DS_MAX_OFFSET 1024
#define PR__DS_DEF_CHUNK ((size_t)64 << 20)
#define PR__DS_DEF_AUTH_REFRESHES 3

struct pr_ds {
    pr_http_client *client;
    int own_client;
    pr_url url;                 /* without its query: that went into base_params */
    char *base;                 /* the URL text up to the query */
    pr_buf base_params;         /* the URL's own query pairs and opts.params, '&'-separated */
    pr_buf fixed;               /* opts.headers as "Name: value\r\n" lines */
    char *ctype;                /* the content type sent */
    int ctype_given;
    pr_ds_opts o;
    pr_retry_policy retry;
    char *etag, *etag_at;       /* the ETag of an empty catch-up answer at offset etag_at: sent as
                                   If-None-Match by the next catch-up there (304 = still nothing) */
};

/* 100 ms doubling to 60 s, full jitter (a uniform wait below the delay) */
static const pr_backoff pr__ds_backoff = { PR_BACKOFF_EXPONENTIAL, PR_JITTER_FACTOR, 100, 60000, 1.0, 0.0, 0.0 };


/* The protocol's verdict on an attempt: network errors as the default
   classifier says, 429 and 5xx again (after the server's hint when it
   gave one), every other status is the answer. */
static int pr__ds_classify(int outcome, int64_t *after_ms, void *user_data) {
    (void)user_data;
    if (outcome < 0) return pr_retry_classify_default(outcome, NULL, NULL);
    if (outcome == 429 || (outcome >= 500 && outcome <= 599)) return *after_ms >= 0 ? PR_RETRY_AFTER : PR_RETRY_AGAIN;
    return PR_RETRY_OK;
}

static void pr__ds_setstr(char **dst, const char *s, size_t n) {
    char *d = pr__strndup(s, n);
    if (!d) return; /* keep the old one */
    pr__strfree(dst);
    *dst = d;
}

/* An offset or cursor as the protocol carries it in a query: 1 to 1024
   printable ASCII bytes (no space, no control byte, no NUL). */
static int pr__ds_token_ok(const char *p, size_t n) {
    size_t i;
    if (!n || n > PR__DS_MAX_OFFSET) return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f) return 0;
    return 1;
}

int pr_ds_open(pr_ds **out, const char *url, const pr_ds_opts *opts, pr_err_info *err) {
    pr_ds *ds;
    pr_err_info tmp;
    size_t i, q;
    int rc = PR_OK;
    if (!err) err = &tmp;
    memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out || !url) return pr__err_set(err, PR_EINVAL, 0, "ds: out and url are required");
    if (!(ds = (pr_ds *)pr__calloc(1, sizeof *ds))) return pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
    if (opts) ds->o = *opts;
    pr_buf_init(&ds->base_params);
    pr_buf_init(&ds->fixed);
    q = strcspn(url, "?#");
    if ((rc = pr_url_parse(&ds->url, url, q, err)) != PR_OK) goto fail;
    if (!(ds->base = (char *)pr__alloc(q + 1))) goto nomem;
    memcpy(ds->base, url, q);
    ds->base[q] = 0;
    if (url[q] == '?') { /* the URL's own query joins the sorted parameters */
        size_t e = q + 1 + strcspn(url + q + 1, "#");
        if (e > q + 1 && pr_buf_append(&ds->base_params, url + q + 1, e - q - 1) != PR_OK) goto nomem;
    }
    for (i = 0; ds->o.params && ds->o.params[i]; i++) {
        const char *p = ds->o.params[i];
        if (!*p || strchr(p, '&') || strchr(p, '#') || strchr(p, ' ')) {
            rc = pr__err_set(err, PR_EINVAL, 0, "ds: query parameter %zu is not one encoded name=value pair", i);
            goto fail;
        }
        if ((ds->base_params.len && pr_buf_append(&ds->base_params, "&", 1) != PR_OK) ||
            pr_buf_append_str(&ds->base_params, p) != PR_OK)
            goto nomem;
    }
    for (i = 0; ds->o.headers && ds->o.headers[i]; i++) {
        const char *h = ds->o.headers[i];
        pr_slice name, value;
        if (i >= PR__DS_MAX_FIELDS) {
            rc = pr__err_set(err, PR_EINVAL, 0, "ds: more than %d header lines", PR__DS_MAX_FIELDS);
            goto fail;
        }
        if ((rc = pr__http_field_line(h, strlen(h), &name, &value, err)) != PR_OK) goto fail;
        if (pr_buf_append_str(&ds->fixed, h) != PR_OK || pr_buf_append(&ds->fixed, "\r\n", 2) != PR_OK) goto nomem;
    }
    ds->o.headers = NULL;
    ds->o.params = NULL;
    ds->ctype_given = ds->o.content_type != NULL;
    if (!(ds->ctype = pr__strdup(PR__DEF(ds->o.content_type, "application/octet-stream"), NULL)))
        goto nomem;
    ds->o.content_type = NULL;
    ds->retry = ds->o.retry;
    if (!ds->retry.backoff.base_ms) ds->retry.backoff = pr__ds_backoff;
    ds->retry.max_retries = PR__DEF(ds->retry.max_retries, PR_RETRY_UNLIMITED);
    ds->retry.classify = PR__DEF(ds->retry.classify, pr__ds_classify);
    if (pr_backoff_check(&ds->retry.backoff) != PR_OK) {
        rc = pr__err_set(err, PR_EINVAL, 0, "ds: invalid retry backoff");
        goto fail;
    }
    if (ds->o.max_auth_refreshes < 0) {
        rc = pr__err_set(err, PR_EINVAL, 0, "ds: a negative max_auth_refreshes");
        goto fail;
    }
    ds->o.max_auth_refreshes = PR__DEF(ds->o.max_auth_refreshes, PR__DS_DEF_AUTH_REFRESHES);
    if (ds->o.client) {
        const unsigned char *t = (const unsigned char *)&ds->o.tls;
        for (i = 0; i < sizeof ds->o.tls && !t[i]; i++) {}
        if (i < sizeof ds->o.tls) {
            rc = pr__err_set(err, PR_EINVAL, 0, "ds: opts.tls is for the handle's own client; opts.client has its own");
            goto fail;
        }
        ds->client = ds->o.client;
    } else {
        pr_http_client_opts co;
        memset(&co, 0, sizeof co);
        co.tls = ds->o.tls;
        co.max_redirects = 5;
        co.fetch_max_bytes = PR__DS_DEF_CHUNK; /* a catch-up answer is held whole */
        if ((rc = pr_http_client_create(&ds->client, &co, err)) != PR_OK) {
            pr__err_wrap(err, rc, err, "ds: could not create the HTTP client");
            goto fail;
        }
        ds->own_client = 1;
    }
    *out = ds;
    return PR_OK;
nomem:
    rc = pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
fail:
    pr_ds_destroy(ds);
    return rc;
}

void pr_ds_destroy(pr_ds *ds) {
    if (!ds) return;
    if (ds->own_client) pr_http_client_destroy(ds->client);
    pr_url_deinit(&ds->url);
    if (ds->base) pr__free(ds->base, strlen(ds->base) + 1);
    if (ds->ctype) pr__free(ds->ctype, strlen(ds->ctype) + 1);
    pr__strfree(&ds->etag);
    pr__strfree(&ds->etag_at);
    pr_buf_deinit(&ds->base_params);
    pr_buf_deinit(&ds->fixed);
    pr__free(ds, sizeof *ds);
}

const char *pr_ds_content_type(const pr_ds *ds) { return ds ? ds->ctype : NULL; }

/* The MIME essence of a content type: application/json (any case). */
static int pr__ds_is_json(const char *ct) {
    pr_slice t = pr_slice_cstr(ct ? ct : "");
    return pr__http_media_is(&t, "application/json");
}

/* text/... or application/json: SSE sends such streams as text. */
static int pr__ds_is_text(const char *ct) {
    pr_slice t = pr__http_media_type(pr_slice_cstr(ct ? ct : ""));
    if (pr__ds_is_json(ct)) return 1;
    t.len = PR__MIN(t.len, (size_t)5);
    return pr_slice_ieq(t, pr_slice_cstr("text/"));
}

/* ---- one request ---- */

typedef struct pr__ds_req {
    const char *method;
    const char *op;             /* what the observer is told: "create", "read", ... */
    const pr_ds_observer *obs;  /* the observer in force (pr__ds_observer), or NULL */
    const char *query;          /* protocol pairs "k=v&k=v" (encoded), or NULL */
    const pr_http_header *extra; /* protocol header fields */
    size_t nextra;
    const void *body;
    size_t body_len;
    int stream;                 /* 1 = leave the body to be read (SSE): *resp receives it */
    int idle_ms;                /* the connection's idle limit (reads), 0 = the client's */
    const pr_retry_policy *retry; /* NULL = the handle's (a read bounds its attempts) */
} pr__ds_req;

/* Compare two "k=v" pairs by key, then by the whole pair. */
static int pr__ds_pair_cmp(const void *a, const void *b) {
    const pr_slice *x = (const pr_slice *)a, *y = (const pr_slice *)b;
    const char *ex = (const char *)memchr(x->ptr, '=', x->len), *ey = (const char *)memchr(y->ptr, '=', y->len);
    size_t kx = ex ? (size_t)(ex - x->ptr) : x->len, ky = ey ? (size_t)(ey - y->ptr) : y->len, n;
    int c;
    n = kx < ky ? kx : ky;
    c = memcmp(x->ptr, y->ptr, n);
    if (c || kx != ky) return c ? c : (kx < ky ? -1 : 1);
    n = x->len < y->len ? x->len : y->len;
    c = memcmp(x->ptr, y->ptr, n);
    return c ? c : (x->len < y->len ? -1 : x->len > y->len);
}

/* The request's query (NUL-terminated): the handle's pairs, params_fn's
   and the protocol's (query), sorted by key, '&'-separated. */
static int pr__ds_build_query(pr_ds *ds, const char *query, pr_buf *out) {
    pr_buf all, dyn;
    pr_slice pairs[64];
    size_t n = 0, pos = 0, i;
    int rc = PR_OK;
    pr_buf_init(&all);
    pr_buf_init(&dyn);
    if (ds->o.params_fn && (rc = ds->o.params_fn(&dyn, ds->o.user_data)) != 0) {
        rc = rc < 0 ? rc : PR_EINVAL;
        goto done;
    }
    if ((ds->base_params.len && pr_buf_append(&all, ds->base_params.data, ds->base_params.len)) ||
        (dyn.len && ((all.len && pr_buf_append(&all, "&", 1)) || pr_buf_append(&all, dyn.data, dyn.len))) ||
        (query && *query && ((all.len && pr_buf_append(&all, "&", 1)) || pr_buf_append_str(&all, query)))) {
        rc = PR_ENOMEM;
        goto done;
    }
    while (pos < all.len) {
        const char *p = all.data + pos, *amp = (const char *)memchr(p, '&', all.len - pos);
        size_t len = amp ? (size_t)(amp - p) : all.len - pos;
        pos += len + 1;
        if (!len) continue;
        if (n == sizeof pairs / sizeof pairs[0]) {
            rc = PR_EINVAL;
            goto done;
        }
        pairs[n].ptr = p;
        pairs[n++].len = len;
    }
    qsort(pairs, n, sizeof pairs[0], pr__ds_pair_cmp);
    for (i = 0; i < n && rc == PR_OK; i++)
        if ((rc = i ? pr_buf_append(out, "&", 1) : PR_OK) == PR_OK) rc = pr_buf_append(out, pairs[i].ptr, pairs[i].len);
    if (rc == PR_OK) rc = pr_buf_append(out, "", 1);
    if (rc == PR_OK) out->len--;
done:
    pr_buf_deinit(&all);
    pr_buf_deinit(&dyn);
    return rc;
}

static int pr__ds_hex(unsigned char c) {
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* Whether a query may go in a request target as it is: what pr_url_parse
   takes (no control byte, no space, whole %XX escapes) and no '#'. */
static int pr__ds_query_ok(const char *q, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)q[i];
        if (c <= 0x20 || c == 0x7f || c == '#') return 0;
        if (c == '%' && (n - i < 3 || !pr__ds_hex((unsigned char)q[i + 1]) || !pr__ds_hex((unsigned char)q[i + 2])))
            return 0;
    }
    return 1;
}

/* The request URL as text (for the observer): base, then '?' and the query
   when there is one. */
static int pr__ds_url_text(const pr_ds *ds, const pr_buf *q, pr_buf *url) {
    int rc = pr_buf_append_str(url, ds->base);
    if (rc == PR_OK && q->len && (rc = pr_buf_append(url, "?", 1)) == PR_OK) rc = pr_buf_append(url, q->data, q->len);
    if (rc == PR_OK) rc = pr_buf_append(url, "", 1);
    if (rc == PR_OK) url->len--;
    return rc;
}

/* Fill the result's views from the response head. */
static void pr__ds_fill(pr_ds_result *res, pr_http_response *r) {
    const pr_slice *v;
    int64_t n;
    res->status = pr_http_status(r);
    res->ttl_s = res->producer_epoch = res->producer_seq = res->expected_seq = res->received_seq = -1;
#define PR__DS_VIEW(field, name) \
    if ((v = pr_http_header_get(r, name)) != NULL) res->field = pr_slice_trim(*v);
    PR__DS_VIEW(offset, "stream-next-offset")
    PR__DS_VIEW(content_type, "content-type")
    PR__DS_VIEW(etag, "etag")
    PR__DS_VIEW(expires_at, "stream-expires-at")
    PR__DS_VIEW(cursor, "stream-cursor")
#undef PR__DS_VIEW
#define PR__DS_NUM(field, name) \
    if ((v = pr_http_header_get(r, name)) != NULL && pr_parse_i64(pr_slice_trim(*v), &n) == PR_OK) res->field = n;
    PR__DS_NUM(ttl_s, "stream-ttl")
    PR__DS_NUM(producer_epoch, "producer-epoch")
    PR__DS_NUM(producer_seq, "producer-seq")
    PR__DS_NUM(expected_seq, "producer-expected-seq")
    PR__DS_NUM(received_seq, "producer-received-seq")
#undef PR__DS_NUM
    res->closed = (v = pr_http_header_get(r, "stream-closed")) != NULL && pr_slice_ieq(pr_slice_trim(*v), pr_slice_cstr("true"));
    res->up_to_date =
        (v = pr_http_header_get(r, "stream-up-to-date")) != NULL && pr_slice_ieq(pr_slice_trim(*v), pr_slice_cstr("true"));
}

/* The meaning of an error status for an operation ("create", "append", ...). */
static int pr__ds_meaning(const pr_ds_result *res, const char *op) {
    int st = res->status;
    if (st == 404) return PR_DS_NOT_FOUND;
    if (st == 409) {
        if (res->closed) return PR_DS_STREAM_CLOSED;
        if (res->expected_seq >= 0) return PR_DS_SEQUENCE_GAP;
        return strcmp(op, "create") == 0 ? PR_DS_CONFLICT_EXISTS : PR_DS_CONFLICT_SEQ;
    }
    if (st == 403) return res->producer_epoch >= 0 ? PR_DS_STALE_EPOCH : PR_DS_FORBIDDEN;
    if (st == 401) return PR_DS_UNAUTHORIZED;
    if (st == 400) return PR_DS_BAD_REQUEST;
    if (st == 410) return PR_DS_GONE;
    if (st == 413) return PR_DS_TOO_LARGE;
    if (st == 429) return PR_DS_RATE_LIMITED;
    if (st == 405 || st == 501) return PR_DS_NOT_SUPPORTED;
    if (st >= 500 && st <= 599) return PR_DS_SERVER_ERROR;
    return PR_DS_UNEXPECTED_STATUS;
}

static const char *pr__ds_meaning_text(int e) {
    switch (e) {
    case PR_DS_NOT_FOUND: return "stream not found";
    case PR_DS_CONFLICT_EXISTS: return "the stream exists with another configuration";
    case PR_DS_CONFLICT_SEQ: return "conflict: Stream-Seq not above the last one, or another content type";
    case PR_DS_STREAM_CLOSED: return "the stream is closed";
    case PR_DS_SEQUENCE_GAP: return "producer sequence gap";
    case PR_DS_STALE_EPOCH: return "stale producer epoch";
    case PR_DS_BAD_REQUEST: return "bad request";
    case PR_DS_GONE: return "gone";
    case PR_DS_TOO_LARGE: return "payload too large";
    case PR_DS_RATE_LIMITED: return "rate limited";
    case PR_DS_SERVER_ERROR: return "server error";
    case PR_DS_NOT_SUPPORTED: return "not supported on this stream";
    case PR_DS_UNAUTHORIZED: return "unauthorized";
    case PR_DS_FORBIDDEN: return "forbidden";
    default: return "unexpected status";
    }
}

/* Fill err for an error status: the meaning, the path, the server's
   words. Returns PR_EHTTP. */
static int pr__ds_status_error(pr_ds *ds, pr_ds_result *res, pr_err_info *err, const char *op) {
    int st = res->status;
    size_t n = res->http.body ? PR__MIN(res->http.body_len, (size_t)60) : 0, i;
    char msg[64];
    res->error = pr__ds_meaning(res, op);
    for (i = 0; i < n; i++) msg[i] = res->http.body[i] >= 0x20 && res->http.body[i] < 0x7f ? res->http.body[i] : ' ';
    msg[n] = 0;
    pr__err_set(err, PR_EHTTP, 0, "ds: %s %.*s: %d %s%s%s", op, (int)PR__MIN(ds->url.path.len, (size_t)90),
                ds->url.path.ptr, st, pr__ds_meaning_text(res->error), n ? ": " : "", msg);
    err->http_status = st;
    err->category = st >= 500 || st == 429 ? PR_CATEGORY_SERVER : PR_CATEGORY_USER;
    err->meaning = res->error;
    return PR_EHTTP;
}

/* The observer in force for an object with options own (NULL: none of
   its own): own when it sets a callback, else the handle's; NULL when
   neither does. */
static const pr_ds_observer *pr__ds_observer(const pr_ds *ds, const pr_ds_observer *own) {
    if (own && own->on_event) return own;
    return ds->o.observer.on_event ? &ds->o.observer : NULL;
}

/* Tell the observer (NULL: none) of ev, its NULL strings made "". */
static void pr__ds_notify(const pr_ds_observer *obs, pr_ds_event *ev) {
    if (!obs || !obs->on_event) return;
    if (!ev->url) ev->url = "";
    if (!ev->op) ev->op = "";
    if (!ev->method) ev->method = "";
    if (!ev->offset) ev->offset = "";
    if (!ev->producer_id) ev->producer_id = "";
    obs->on_event(ev, obs->user_data);
}

/* Whether two "k=v" pairs (or a pair and a bare key) have the same key. */
static int pr__ds_same_key(pr_slice x, pr_slice y) {
    const char *ex = (const char *)memchr(x.ptr, '=', x.len), *ey = (const char *)memchr(y.ptr, '=', y.len);
    size_t kx = ex ? (size_t)(ex - x.ptr) : x.len, ky = ey ? (size_t)(ey - y.ptr) : y.len;
    return kx == ky && memcmp(x.ptr, y.ptr, kx) == 0;
}

/* The next non-empty '&'-separated pair of q at *pos, or 0 at the end. */
static int pr__ds_next_pair(const pr_buf *q, size_t *pos, pr_slice *pair) {
    while (*pos < q->len) {
        const char *p = q->data + *pos, *amp = (const char *)memchr(p, '&', q->len - *pos);
        size_t len = amp ? (size_t)(amp - p) : q->len - *pos;
        *pos += len + 1;
        if (len) {
            pair->ptr = p;
            pair->len = len;
            return 1;
        }
    }
    return 0;
}

/* on_auth_error's fresh fields (hdrs, "Name: value\r\n" lines) and query
   pairs (params) replace the handle's of the same name. Nothing changes
   when they are malformed (PR_EINVAL) or memory runs out. */
static int pr__ds_refresh(pr_ds *ds, const pr_buf *hdrs, const pr_buf *params, pr_err_info *err) {
    pr_http_header oldh[PR__DS_MAX_FIELDS], newh[PR__DS_MAX_FIELDS];
    pr__http_field_set olds, news;
    pr_buf fixed, bp;
    pr_slice pair, other;
    size_t i, j, pos, kept = 0;
    int rc = PR_OK;
    olds.h = oldh;
    olds.n = 0;
    olds.cap = PR__DS_MAX_FIELDS;
    news.h = newh;
    news.n = 0;
    news.cap = PR__DS_MAX_FIELDS;
    pr_buf_init(&fixed);
    pr_buf_init(&bp);
    if ((rc = pr__http_fields(NULL, hdrs->data, hdrs->len, pr__http_field_push, &news, err)) != PR_OK)
        return rc == PR_ELIMIT ? pr__err_set(err, PR_EINVAL, 0, "ds: more than %d header lines from on_auth_error",
                                             PR__DS_MAX_FIELDS)
                               : pr__err_wrap(err, PR_EINVAL, err, "ds: on_auth_error");
    for (pos = 0; pr__ds_next_pair(params, &pos, &pair);)
        if (memchr(pair.ptr, '#', pair.len) || !pr__ds_query_ok(pair.ptr, pair.len) || pair.ptr[0] == '=')
            return pr__err_set(err, PR_EINVAL, 0, "ds: on_auth_error gave a query pair that is not encoded name=value");
    (void)pr__http_fields(NULL, ds->fixed.data, ds->fixed.len, pr__http_field_push, &olds, NULL); /* checked before */
    for (i = 0; i < olds.n + news.n && rc == PR_OK; i++) {
        const pr_http_header *f = i < olds.n ? &oldh[i] : &newh[i - olds.n];
        if (i < olds.n) { /* an old field stays unless a fresh one has its name */
            for (j = 0; j < news.n && !pr_slice_ieq(f->name, newh[j].name); j++) {}
            if (j < news.n) continue;
            kept++;
        }
        if (kept + news.n > PR__DS_MAX_FIELDS) {
            rc = pr__err_set(err, PR_EINVAL, 0, "ds: more than %d header lines after on_auth_error", PR__DS_MAX_FIELDS);
            break;
        }
        if (pr_buf_append(&fixed, f->name.ptr, f->name.len) || pr_buf_append(&fixed, ": ", 2) ||
            pr_buf_append(&fixed, f->value.ptr, f->value.len) || pr_buf_append(&fixed, "\r\n", 2))
            rc = pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
    }
    for (pos = 0; rc == PR_OK && pr__ds_next_pair(&ds->base_params, &pos, &pair);) {
        size_t p2 = 0;
        int replaced = 0;
        while (!replaced && pr__ds_next_pair(params, &p2, &other)) replaced = pr__ds_same_key(pair, other);
        if (replaced) continue;
        if ((bp.len && pr_buf_append(&bp, "&", 1)) || pr_buf_append(&bp, pair.ptr, pair.len))
            rc = pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
    }
    for (pos = 0; rc == PR_OK && pr__ds_next_pair(params, &pos, &pair);)
        if ((bp.len && pr_buf_append(&bp, "&", 1)) || pr_buf_append(&bp, pair.ptr, pair.len))
            rc = pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
    if (rc == PR_OK) {
        pr_buf t = ds->fixed;
        ds->fixed = fixed;
        fixed = t;
        t = ds->base_params;
        ds->base_params = bp;
        bp = t;
    }
    pr_buf_deinit(&fixed);
    pr_buf_deinit(&bp);
    return rc;
}

/* Whether a response refuses the request's credentials: 401, or 403
   without Producer-Epoch (that one fences a producer). */
static int pr__ds_refused(const pr_ds_result *res) {
    return res->status == 401 || (res->status == 403 && res->producer_epoch < 0);
}

/* Make one logical request (retried by the handle's policy, sent again
   after on_auth_error's refreshes), told to rq->obs; err (required)
   receives the detail of a failure. For a streamed body (rq->stream),
   *resp receives the open response. */
static int pr__ds_do(pr_ds *ds, const pr__ds_req *rq, pr_ds_result *res, pr_err_info *err, pr_http_response **resp,
                     int64_t deadline) {
    pr__http_field_set fields;
    /* the protocol's fields go on when a redirect leaves the origin; the caller's do not */
    static const char *const fwd[] = { "Stream-TTL", "Stream-Expires-At", "Stream-Closed", "Stream-Seq", "Producer-Id",
                                       "Producer-Epoch", "Producer-Seq", "If-None-Match", "Stream-Forked-From",
                                       "Stream-Fork-Offset", "Stream-Fork-Sub-Offset", NULL };
    pr_http_header h[PR__DS_MAX_FIELDS * 2 + 8];
    const char **lines = NULL;
    size_t lines_size = 0;
    pr_http_request req;
    pr_buf query, url, dyn, fresh_h, fresh_p;
    pr_http_response *r = NULL;
    pr_url u;
    pr_ds_event ev;
    int64_t started = pr_now();
    size_t n, i;
    int rc, refreshes = 0;
    pr_ds_result_deinit(res);
    memset(&ev, 0, sizeof ev);
    res->ttl_s = res->producer_epoch = res->producer_seq = res->expected_seq = res->received_seq = -1;
    pr_buf_init(&query);
    pr_buf_init(&url);
    pr_buf_init(&dyn);
    pr_buf_init(&fresh_h);
    pr_buf_init(&fresh_p);
    for (;;) {
        pr_buf_clear(&query);
        pr_buf_clear(&dyn);
        if ((rc = pr__ds_build_query(ds, rq->query, &query)) != PR_OK ||
            (!pr__ds_query_ok(query.data, query.len) && (rc = PR_EINVAL) != PR_OK)) {
            pr__err_set(err, rc, 0, "ds: %s", rc == PR_ENOMEM ? "out of memory" : "params_fn or the query is refused");
            goto done;
        }
        /* the handle's URL, parsed once, with this request's query (borrowed: never deinit'ed) */
        u = ds->url;
        u.query.ptr = query.len ? query.data : "";
        u.query.len = query.len;
        u.has_query = query.len > 0;
        if (rq->obs) {
            pr_buf_clear(&url);
            if ((rc = pr__ds_url_text(ds, &query, &url)) != PR_OK) {
                pr__err_set(err, rc, 0, "ds: %s", "out of memory");
                goto done;
            }
        }
        if (!ev.kind) {
            ev.kind = PR_DS_EVENT_REQUEST_START;
            ev.url = url.data;
            ev.op = rq->op;
            ev.method = rq->method;
            pr__ds_notify(rq->obs, &ev);
        }
        if (ds->o.headers_fn && (rc = ds->o.headers_fn(&dyn, ds->o.user_data)) != 0) {
            rc = rc < 0 ? rc : PR_EINVAL;
            pr__err_set(err, rc, 0, "ds: %s", "headers_fn refused the request");
            goto done;
        }
        for (n = 0, i = 0; i < rq->nextra; i++) h[n++] = rq->extra[i];
        fields.h = h;
        fields.n = n;
        fields.cap = sizeof h / sizeof h[0];
        if ((rc = pr__http_fields(NULL, ds->fixed.data, ds->fixed.len, pr__http_field_push, &fields, err)) != PR_OK ||
            (rc = pr__http_fields(NULL, dyn.data, dyn.len, pr__http_field_push, &fields, err)) != PR_OK) {
            if (rc == PR_ELIMIT) pr__err_set(err, PR_EINVAL, 0, "ds: more than %d header lines from headers_fn",
                                             PR__DS_MAX_FIELDS);
            else pr__err_wrap(err, PR_EINVAL, err, "ds: headers_fn");
            rc = PR_EINVAL;
            goto done;
        }
        n = fields.n;
        pr__free(lines, lines_size);
        lines = NULL;
        if ((rc = pr__http_lines_join(NULL, h, n, &lines, &lines_size)) != PR_OK) {
            pr__err_set(err, rc, 0, "ds: %s", "out of memory");
            goto done;
        }
        memset(&req, 0, sizeof req);
        req.method = rq->method;
        req.url = &u;
        req.headers = lines;
        req.body = rq->body;
        req.body_len = rq->body_len;
        req.retry = rq->retry ? rq->retry : &ds->retry;
        req.idle_timeout_ms = rq->idle_ms;
        req.redirect_forward = fwd;
        r = NULL;
        if (rq->stream) {
            rc = pr_http_client_request(ds->client, &r, &req, err, deadline);
            if (rc == PR_OK) pr__ds_fill(res, r);
        } else {
            rc = pr_http_client_fetch(ds->client, &res->http, &req, err, deadline);
            if (rc == PR_OK && res->http.resp) pr__ds_fill(res, res->http.resp);
        }
        if (rc == PR_OK && ds->o.on_auth_error && pr__ds_refused(res) && refreshes < ds->o.max_auth_refreshes) {
            pr_ds_auth_info ai;
            const pr_slice *wa = pr_http_header_get(r ? r : res->http.resp, "www-authenticate");
            memset(&ai, 0, sizeof ai);
            ai.status = res->status;
            ai.op = rq->op;
            ai.method = rq->method;
            ai.attempt = refreshes + 1;
            ai.www_authenticate = wa ? pr_slice_trim(*wa) : pr_slice_cstr("");
            ai.deadline = deadline;
            pr_buf_clear(&fresh_h);
            pr_buf_clear(&fresh_p);
            if (ds->o.on_auth_error(&ai, &fresh_h, &fresh_p, ds->o.user_data)) {
                pr_ds_event re;
                if ((rc = pr__ds_refresh(ds, &fresh_h, &fresh_p, err)) != PR_OK) goto done;
                memset(&re, 0, sizeof re);
                re.kind = PR_DS_EVENT_AUTH_REFRESH;
                re.url = url.data;
                re.op = rq->op;
                re.method = rq->method;
                re.status = res->status;
                re.attempt = ++refreshes;
                pr__ds_notify(rq->obs, &re);
                pr_http_response_destroy(r); /* a refused stream is closed before the new try */
                r = NULL;
                pr_ds_result_deinit(res);
                res->ttl_s = res->producer_epoch = res->producer_seq = res->expected_seq = res->received_seq = -1;
                continue;
            }
        }
        break;
    }
    /* what the server hands out, a read must take back (pr_ds_read_open) */
    if (rc == PR_OK && ((res->offset.len && !pr__ds_token_ok(res->offset.ptr, res->offset.len)) ||
                        (res->cursor.len && !pr__ds_token_ok(res->cursor.ptr, res->cursor.len))))
        rc = pr__err_set(err, PR_EPROTO, 0, "ds: the server's %s is not 1 to 1024 printable ASCII bytes",
                         res->offset.len && !pr__ds_token_ok(res->offset.ptr, res->offset.len) ? "offset" : "cursor");
done:
    if (rc == PR_OK && r) {
        *resp = r;
        r = NULL;
    }
    pr_http_response_destroy(r);
    if (ev.kind) { /* started: how it ended */
        ev.kind = rc == PR_OK ? PR_DS_EVENT_REQUEST_STOP : PR_DS_EVENT_REQUEST_EXCEPTION;
        ev.url = url.data;
        ev.status = res->status;
        ev.error = rc;
        ev.err = rc == PR_OK ? NULL : err;
        ev.duration_ms = pr_now() - started;
        pr__ds_notify(rq->obs, &ev);
    }
    pr__free(lines, lines_size);
    pr_buf_deinit(&query);
    pr_buf_deinit(&url);
    pr_buf_deinit(&dyn);
    pr_buf_deinit(&fresh_h);
    pr_buf_deinit(&fresh_p);
    return rc;
}

void pr_ds_result_deinit(pr_ds_result *res) {
    if (!res) return;
    pr_http_result_deinit(&res->http);
    memset(res, 0, sizeof *res);
}

/* An operation's err parameter, cleared: the caller's, or scratch when
   the caller passed NULL (not wanted). */
static pr_err_info *pr__ds_err(pr_err_info *err, pr_err_info *scratch) {
    err = err ? err : scratch;
    memset(err, 0, sizeof *err);
    return err;
}

static void pr__ds_hdr(pr_http_header *h, size_t *n, const char *name, const char *value, size_t len) {
    h[*n].name = pr_slice_cstr(name);
    h[*n].value.ptr = value;
    h[*n].value.len = len;
    (*n)++;
}

int pr_ds_create(pr_ds *ds, const pr_ds_create_opts *opts, pr_ds_result *res, pr_err_info *err,
                 int64_t deadline) {
    pr_err_info scratch;
    const pr_ds_create_opts *o = opts;
    pr_http_header h[7];
    pr__ds_req rq;
    char ttl[24], sub[24];
    const char *ct;
    size_t n = 0;
    int rc, fork = o && o->forked_from;
    err = pr__ds_err(err, &scratch);
    if (!ds || !res) return pr__err_set(err, PR_EINVAL, 0, "ds: ds and res are required");
    if (o && (o->fork_offset || o->fork_sub_offset) && !fork)
        return pr__err_set(err, PR_EINVAL, 0, "ds: fork_offset and fork_sub_offset need forked_from");
    if (fork && (o->forked_from[0] != '/' || !pr__ds_token_ok(o->forked_from, strlen(o->forked_from))))
        return pr__err_set(err, PR_EINVAL, 0, "ds: forked_from is not a path of 1 to %d printable ASCII bytes",
                           PR__DS_MAX_OFFSET);
    if (fork && o->fork_offset && !pr__ds_token_ok(o->fork_offset, strlen(o->fork_offset)))
        return pr__err_set(err, PR_EINVAL, 0, "ds: fork_offset is not 1 to %d printable ASCII bytes", PR__DS_MAX_OFFSET);
    if (o && o->fork_sub_offset < 0) return pr__err_set(err, PR_EINVAL, 0, "ds: a negative fork_sub_offset");
    ct = o && o->content_type ? o->content_type : ds->ctype;
    if (!fork || (o->content_type || ds->ctype_given)) pr__ds_hdr(h, &n, "Content-Type", ct, strlen(ct));
    else ct = NULL; /* a fork has its source's */
    if (fork) {
        pr__ds_hdr(h, &n, "Stream-Forked-From", o->forked_from, strlen(o->forked_from));
        if (o->fork_offset) pr__ds_hdr(h, &n, "Stream-Fork-Offset", o->fork_offset, strlen(o->fork_offset));
        if (o->fork_sub_offset > 0)
            pr__ds_hdr(h, &n, "Stream-Fork-Sub-Offset", sub, pr__buf_dec(sub, (uint64_t)o->fork_sub_offset));
    }
    if (o && o->ttl_s > 0) {
        size_t k = pr__buf_dec(ttl, (uint64_t)o->ttl_s);
        pr__ds_hdr(h, &n, "Stream-TTL", ttl, k);
    }
    if (o && o->expires_at) pr__ds_hdr(h, &n, "Stream-Expires-At", o->expires_at, strlen(o->expires_at));
    if (o && o->closed) pr__ds_hdr(h, &n, "Stream-Closed", "true", 4);
    memset(&rq, 0, sizeof rq);
    rq.method = "PUT";
    rq.op = "create";
    rq.obs = pr__ds_observer(ds, NULL);
    rq.extra = h;
    rq.nextra = n;
    rq.body = o ? o->body : NULL;
    rq.body_len = o && o->body ? o->body_len : 0;
    if ((rc = pr__ds_do(ds, &rq, res, err, NULL, deadline)) == PR_OK && res->status != 200 && res->status != 201)
        rc = pr__ds_status_error(ds, res, err, "create");
    if (rc == PR_OK && !ds->ctype_given) {
        if (ct && o && o->content_type) pr__ds_setstr(&ds->ctype, ct, strlen(ct));
        else if (!ct && res->content_type.len) pr__ds_setstr(&ds->ctype, res->content_type.ptr, res->content_type.len);
    }
    return rc;
}

/* A request with no body and no fields of its own (head, delete): status
   ok or ok2 is success, another is named. */
static int pr__ds_bare(pr_ds *ds, pr_ds_result *res, pr_err_info *err, const char *method, const char *op, int ok,
                       int ok2, int64_t deadline) {
    pr__ds_req rq;
    int rc;
    if (!ds || !res) return pr__err_set(err, PR_EINVAL, 0, "ds: ds and res are required");
    memset(&rq, 0, sizeof rq);
    rq.method = method;
    rq.op = op;
    rq.obs = pr__ds_observer(ds, NULL);
    if ((rc = pr__ds_do(ds, &rq, res, err, NULL, deadline)) == PR_OK && res->status != ok && res->status != ok2)
        rc = pr__ds_status_error(ds, res, err, op);
    return rc;
}

int pr_ds_head(pr_ds *ds, pr_ds_result *res, pr_err_info *err, int64_t deadline) {
    pr_err_info scratch;
    int rc = pr__ds_bare(ds, res, pr__ds_err(err, &scratch), "HEAD", "head", 200, 200, deadline);
    if (rc == PR_OK && !ds->ctype_given && res->content_type.len)
        pr__ds_setstr(&ds->ctype, res->content_type.ptr, res->content_type.len);
    return rc;
}

int pr_ds_delete(pr_ds *ds, pr_ds_result *res, pr_err_info *err, int64_t deadline) {
    pr_err_info scratch;
    return pr__ds_bare(ds, res, pr__ds_err(err, &scratch), "DELETE", "delete", 200, 204, deadline);
}

/* pr_ds_append, told to obs (pr__ds_observer). */
static int pr__ds_append(pr_ds *ds, const void *data, size_t len, const pr_ds_append_opts *o, pr_ds_result *res,
                         const pr_ds_observer *obs, pr_err_info *err, int64_t deadline) {
    pr_err_info scratch;
    pr_http_header h[7];
    pr__ds_req rq;
    pr_buf wrapped;
    char ep[24], sq[24];
    size_t n = 0;
    int rc, closing = o && o->close;
    err = pr__ds_err(err, &scratch);
    if (!ds || !res || (len && !data)) return pr__err_set(err, PR_EINVAL, 0, "ds: ds, res and data are required");
    if (!len && !closing) {
        pr_ds_result_deinit(res);
        return pr__err_set(err, PR_EINVAL, 0, "ds: an append needs data (or close)");
    }
    pr_buf_init(&wrapped);
    if (len) pr__ds_hdr(h, &n, "Content-Type", ds->ctype, strlen(ds->ctype));
    if (o && o->seq) pr__ds_hdr(h, &n, "Stream-Seq", o->seq, strlen(o->seq));
    if (closing) pr__ds_hdr(h, &n, "Stream-Closed", "true", 4);
    if (o && o->producer_id) {
        if (!*o->producer_id || o->producer_epoch < 0 || o->producer_seq < 0)
            return pr__err_set(err, PR_EINVAL, 0, "ds: an empty producer id, or a negative epoch or seq");
        pr__ds_hdr(h, &n, "Producer-Id", o->producer_id, strlen(o->producer_id));
        pr__ds_hdr(h, &n, "Producer-Epoch", ep, pr__buf_dec(ep, (uint64_t)o->producer_epoch));
        pr__ds_hdr(h, &n, "Producer-Seq", sq, pr__buf_dec(sq, (uint64_t)o->producer_seq));
    }
    if (len && pr__ds_is_json(ds->ctype) && !(o && o->raw_json)) {
        if (pr_buf_reserve(&wrapped, len + 2) != PR_OK) return pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
        pr_buf_append(&wrapped, "[", 1);
        pr_buf_append(&wrapped, data, len);
        pr_buf_append(&wrapped, "]", 1);
        data = wrapped.data;
        len = wrapped.len;
    }
    memset(&rq, 0, sizeof rq);
    rq.method = "POST";
    rq.op = closing ? "close" : "append";
    rq.obs = obs;
    rq.extra = h;
    rq.nextra = n;
    rq.body = data;
    rq.body_len = len;
    rc = pr__ds_do(ds, &rq, res, err, NULL, deadline);
    pr_buf_deinit(&wrapped);
    if (rc == PR_OK && res->status != 200 && res->status != 204)
        rc = pr__ds_status_error(ds, res, err, closing ? "close" : "append");
    return rc;
}

int pr_ds_append(pr_ds *ds, const void *data, size_t len, const pr_ds_append_opts *opts, pr_ds_result *res,
                 pr_err_info *err, int64_t deadline) {
    return pr__ds_append(ds, data, len, opts, res, ds ? pr__ds_observer(ds, NULL) : NULL, err, deadline);
}

int pr_ds_close(pr_ds *ds, const void *data, size_t len, pr_ds_result *res, pr_err_info *err, int64_t deadline) {
    pr_ds_append_opts o;
    memset(&o, 0, sizeof o);
    o.close = 1;
    return pr_ds_append(ds, data, len, &o, res, err, deadline);
}

/* ==== ds_read: Durable Streams reads: catch-up, long-poll, SSE and auto, resuming at their offset ==== >>ds_read.impl */
#define PR__DS_READ_DEF_IDLE 60000
#define PR__DS_READ_DEF_OPEN_ATTEMPTS 8
#define PR__DS_READ_DEF_HEALTHY 60000
#define PR__DS_READ_QUICK_MS 50       /* the wait after an answer that brought nothing new at once, */
#define PR__DS_READ_QUICK_MAX_MS 2000 /* doubling per such answer in a row up to this */
#define PR__DS_READ_TO_POLL 1 /* pr__ds_read_sse_next: SSE gave up, long-poll instead */

enum { PR__DS_READ_CATCHUP, PR__DS_READ_POLL, PR__DS_READ_SSE };

struct pr_ds_read {
    pr_ds *ds;
    const pr_ds_observer *obs;  /* told of the requests: the handle's, or a consumer's */
    pr_ds_read_opts o;
    char *offset;               /* the position: after the last chunk delivered */
    char *cursor;
    int phase;                  /* PR__DS_READ_CATCHUP, then the live way */
    int json, text;
    int up_to_date;             /* the up-to-date signal has been delivered */
    int ended;                  /* the last chunk (closed, or the end of a catch-up) is delivered */
    int status;
    int error;                  /* PR_DS_* of the last failure */
    pr_err_info err;
    pr_ds_result res;           /* the last response (the chunk's body lives here) */
    pr_json_doc *doc;           /* the last chunk's items */
    /* SSE */
    pr_http_response *sse;      /* the open SSE connection, or NULL */
    pr_sse_decoder *dec;
    int base64;
    int64_t sse_opened_at;
    int sse_short;              /* SSE connections in a row that dropped soon after opening */
    pr_buf batch;               /* data events since the last control event */
    pr_buf out;                 /* the chunk handed out */
    int answered;               /* the read has had an answer (open_attempts no longer applies) */
    int failures;               /* failed attempts and dropped connections in a row */
    int healthy;                /* no failure since healthy_at */
    int64_t healthy_at;
    int64_t next_at;            /* the next request starts no sooner (the backoff) */
    double prev_delay;          /* for a decorrelated backoff */
    pr_retry_policy pol;        /* the policy of the request in flight (pr__ds_read_policy) */
    int quick;                  /* answers in a row that brought nothing new, at once */
    int64_t asked_at;           /* when the last GET started */
};

int pr_ds_read_open(pr_ds_read **out, pr_ds *ds, const char *offset, const pr_ds_read_opts *opts, pr_err_info *err) {
    const pr_ds_read_opts *o = opts;
    pr_ds_read *r;
    pr_err_info tmp;
    if (!err) err = &tmp;
    memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out || !ds) return pr__err_set(err, PR_EINVAL, 0, "ds: out and ds are required");
    if (o && (o->live < PR_DS_LIVE_NONE || o->live > PR_DS_LIVE_AUTO))
        return pr__err_set(err, PR_EINVAL, 0, "ds: unknown live mode %d", o->live);
    offset = PR__DEF(offset, "-1");
    if (!pr__ds_token_ok(offset, strlen(offset)))
        return pr__err_set(err, PR_EINVAL, 0, "ds: an offset is 1 to %d printable ASCII bytes", PR__DS_MAX_OFFSET);
    if (!(r = (pr_ds_read *)pr__calloc(1, sizeof *r))) return pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
    r->ds = ds;
    r->obs = pr__ds_observer(ds, NULL);
    if (o) r->o = *o;
    r->o.sse_short_ms = PR__DEF(r->o.sse_short_ms, 1000);
    r->o.sse_max_short = PR__DEF(r->o.sse_max_short, 3);
    r->o.max_chunk_bytes = PR__DEF(r->o.max_chunk_bytes, PR__DS_DEF_CHUNK);
    r->o.idle_timeout_ms = PR__DEF(r->o.idle_timeout_ms, PR__DS_READ_DEF_IDLE);
    r->o.open_attempts = PR__DEF(r->o.open_attempts, PR__DS_READ_DEF_OPEN_ATTEMPTS);
    r->o.healthy_ms = PR__DEF(r->o.healthy_ms, PR__DS_READ_DEF_HEALTHY);
    pr_buf_init(&r->batch);
    pr_buf_init(&r->out);
    if (!(r->offset = pr__strdup(offset, NULL)) || !(r->cursor = pr__strdup("", NULL))) {
        pr_ds_read_destroy(r);
        return pr__err_set(err, PR_ENOMEM, 0, "ds: out of memory");
    }
    r->json = pr__ds_is_json(ds->ctype);
    r->text = pr__ds_is_text(ds->ctype);
    r->phase = PR__DS_READ_CATCHUP;
    *out = r;
    return PR_OK;
}

void pr_ds_read_destroy(pr_ds_read *r) {
    if (!r) return;
    pr_http_response_destroy(r->sse);
    pr_sse_decoder_destroy(r->dec);
    pr_json_doc_destroy(r->doc);
    pr_ds_result_deinit(&r->res);
    pr__strfree(&r->offset);
    pr__strfree(&r->cursor);
    pr_buf_deinit(&r->batch);
    pr_buf_deinit(&r->out);
    pr__free(r, sizeof *r);
}

const char *pr_ds_read_offset(const pr_ds_read *r, size_t *len) {
    if (len) *len = r && r->offset ? strlen(r->offset) : 0;
    return r ? r->offset : NULL;
}

int pr_ds_read_status(const pr_ds_read *r) { return r ? r->status : 0; }

int pr_ds_read_last_error(const pr_ds_read *r, pr_err_info *out) {
    if (!r || !out) return PR_EINVAL;
    *out = r->err;
    out->meaning = r->error;
    return PR_OK;
}

static int pr__ds_read_rfail(pr_ds_read *r, int rc, int meaning, const char *fmt, const char *arg) {
    r->error = meaning;
    pr__err_set(&r->err, rc, 0, fmt, arg);
    return rc;
}

/* Move the position to a new offset (and cursor). */
#ifdef PRISTINE_TESTING
/* Bytes the SSE read's own parsing examined or copied (data events into
   the batch, control events' offsets, chunks handed out), so a fuzzer can
   check the work per input byte stays bounded (with the decoder's and the
   JSON reader's own counters). */
static size_t pr__ds_read_test_work;
#define PR__DS_READ_WORK(n) (pr__ds_read_test_work += (size_t)(n))
#else
#define PR__DS_READ_WORK(n) ((void)0)
#endif

static int pr__ds_read_advance(pr_ds_read *r, pr_slice off, pr_slice cur) {
    char *d;
    PR__DS_READ_WORK(off.len + cur.len + 1);
    if (!off.len) return pr__ds_read_rfail(r, PR_EPROTO, PR_DS_OK, "ds: %s", "a response without Stream-Next-Offset");
    if (!pr__ds_token_ok(off.ptr, off.len))
        return pr__ds_read_rfail(r, PR_EPROTO, PR_DS_OK, "ds: %s", "the server's offset is not 1 to 1024 printable ASCII bytes");
    if (cur.len && !pr__ds_token_ok(cur.ptr, cur.len))
        return pr__ds_read_rfail(r, PR_EPROTO, PR_DS_OK, "ds: %s", "the server's cursor is not 1 to 1024 printable ASCII bytes");
    if (!(d = pr__strndup(off.ptr, off.len))) return pr__ds_read_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
    pr__strfree(&r->offset);
    r->offset = d;
    if (cur.len) pr__ds_setstr(&r->cursor, cur.ptr, cur.len);
    return PR_OK;
}

/* Hand out r->out as the chunk (parsing it on a JSON stream). */
static int pr__ds_read_emit(pr_ds_read *r, pr_ds_chunk *c, int up_to_date, int closed) {
    PR__DS_READ_WORK(r->out.len + 1);
    memset(c, 0, sizeof *c);
    pr_json_doc_destroy(r->doc);
    r->doc = NULL;
    if (r->json) {
        int rc;
        pr_json_error je;
        if (!r->out.len && pr_buf_append(&r->out, "[]", 2) != PR_OK)
            return pr__ds_read_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
        if ((rc = pr_json_parse(&r->doc, r->out.data, r->out.len, NULL, &je)) != PR_OK || pr_json_type(pr_json_root(r->doc)) != PR_JSON_ARRAY) {
            pr_json_doc_destroy(r->doc);
            r->doc = NULL;
            return pr__ds_read_rfail(r, rc == PR_ENOMEM ? PR_ENOMEM : PR_EPROTO, PR_DS_OK, "ds: %s",
                                "a JSON stream's data is not one JSON array");
        }
        c->items = pr_json_root(r->doc);
    }
    c->data = r->out.data ? r->out.data : "";
    c->len = r->out.len;
    c->offset = r->offset;
    c->offset_len = strlen(r->offset);
    c->cursor = r->cursor;
    c->up_to_date = up_to_date;
    c->closed = closed;
    c->status = r->status;
    if (up_to_date) r->up_to_date = 1;
    if (closed || (up_to_date && r->o.live == PR_DS_LIVE_NONE)) r->ended = 1;
    return PR_OK;
}

/* A JSON body's items go into the chunk: an empty array counts as no data. */
static int pr__ds_read_json_empty(const char *p, size_t n) {
    pr_slice t;
    t.ptr = p;
    t.len = n;
    t = pr_slice_trim(t);
    return t.len == 2 && t.ptr[0] == '[' && t.ptr[1] == ']';
}

/* ---- failures: which are final, which are tried again, how often ---- */

/* The failure count starts afresh after healthy_ms without a failure. */
static void pr__ds_read_settle(pr_ds_read *r) {
    if (r->healthy && pr_now() - r->healthy_at >= r->o.healthy_ms) {
        r->failures = 0;
        r->prev_delay = 0;
    }
}

/* A failed attempt, or a live connection that dropped. */
static void pr__ds_read_failed(pr_ds_read *r) {
    pr__ds_read_settle(r);
    r->healthy = 0;
    r->failures++;
}

/* An answer the read can use, or an SSE connection open. The first one
   ends the open_attempts phase. */
static void pr__ds_read_answered(pr_ds_read *r) {
    if (!r->answered) {
        r->answered = 1;
        r->failures = 0;
        r->prev_delay = 0;
    }
    if (!r->healthy) {
        r->healthy = 1;
        r->healthy_at = pr_now();
    }
}

/* The bound in force (<= 0: none): open_attempts, then max_failures. */
static int pr__ds_read_bound(const pr_ds_read *r) { return r->answered ? r->o.max_failures : r->o.open_attempts; }

static int pr__ds_read_used_up(const pr_ds_read *r) {
    int b = pr__ds_read_bound(r);
    return b > 0 && r->failures >= b;
}

/* Whether the cause of the read's failure rc (its detail in r->err) is
   worth another attempt: a transient status, or a transport error the
   client does not call final. */
static int pr__ds_read_cause_transient(const pr_ds_read *r, int rc) {
    int st = r->err.http_status;
    if (rc == PR_EHTTP) return st == 408 || st == 429 || (st >= 500 && st <= 599);
    if (rc == PR_ETIMEDOUT || rc == PR_EPROTO || rc == PR_ECANCELED || pr__client_final(rc, &r->err)) return 0;
    return pr_retry_classify_default(rc, NULL, NULL) == PR_RETRY_AGAIN;
}

/* Whether a read's failure is worth reconnecting for: a transient cause,
   with the read's bound not used up. */
static int pr__ds_read_transient(pr_ds_read *r, int rc) {
    return pr__ds_read_cause_transient(r, rc) && !pr__ds_read_used_up(r);
}

/* The handle's classifier, with 408 tried again, and a DNS or TLS
   failure handed back at once: only its detail tells a name that does
   not exist or a refused handshake from a temporary failure
   (pr__client_final), so the read decides (pr__ds_read_get). */
static int pr__ds_read_classify(int outcome, int64_t *after_ms, void *user_data) {
    const pr_ds_read *r = (const pr_ds_read *)user_data;
    int v = r->ds->retry.classify(outcome, after_ms, r->ds->retry.user_data);
    if (outcome == PR_EDNS || outcome == PR_ETLS) return PR_RETRY_FAIL;
    return outcome == 408 && v == PR_RETRY_OK ? PR_RETRY_AGAIN : v;
}

/* Every attempt the client tries again is a failure of the read. */
static void pr__ds_read_on_retry(const pr_retry_info *info, void *user_data) {
    pr_ds_read *r = (pr_ds_read *)user_data;
    pr__ds_read_failed(r);
    if (r->ds->retry.on_retry) r->ds->retry.on_retry(info, r->ds->retry.user_data);
}

/* The policy of the read's next request: the handle's, with its retries
   cut to what the bound in force leaves. */
static const pr_retry_policy *pr__ds_read_policy(pr_ds_read *r) {
    int b = pr__ds_read_bound(r);
    pr__ds_read_settle(r);
    r->pol = r->ds->retry;
    r->pol.classify = pr__ds_read_classify;
    r->pol.on_retry = pr__ds_read_on_retry;
    r->pol.user_data = r;
    if (b > 0) {
        int left = b - r->failures - 1; /* retries */
        if (left <= 0) r->pol.max_retries = PR_RETRY_OFF;
        else if (r->pol.max_retries == PR_RETRY_UNLIMITED || r->pol.max_retries > left) r->pol.max_retries = left;
    }
    return &r->pol;
}

/* Sleep through the handle's retry hooks (tests make waits instant). */
static int pr__ds_read_sleep(pr_ds *ds, int64_t delay, int64_t until) {
    return pr__retry_hook_sleep(&ds->retry.hooks, delay, until);
}

/* Wait until the earliest moment the next GET may start: the backoff
   after a failure, and answers that brought nothing new at once are asked
   again later and later (a server cannot make a busy loop of a read).
   PR_ETIMEDOUT when the deadline comes first. */
static int pr__ds_read_pace(pr_ds_read *r, int64_t deadline) {
    int64_t at = r->next_at, now = pr_now();
    if (r->quick)
        at = PR__MAX(at, pr__time_add(r->asked_at, PR__MIN((int64_t)PR__DS_READ_QUICK_MAX_MS,
                                                          (int64_t)PR__DS_READ_QUICK_MS << PR__MIN(r->quick - 1, 20))));
    if (at <= now) return PR_OK;
    if (deadline < at) {
        if (deadline > now) (void)pr__ds_read_sleep(r->ds, deadline - now, deadline);
        return PR_ETIMEDOUT;
    }
    return pr__ds_read_sleep(r->ds, at - now, at);
}

/* After an answer: whether it brought something (data, the close, the
   first up-to-date signal) or came back at once with nothing. */
static void pr__ds_read_paced(pr_ds_read *r, int progress) {
    int64_t next = PR__MIN((int64_t)PR__DS_READ_QUICK_MAX_MS, (int64_t)PR__DS_READ_QUICK_MS << PR__MIN(r->quick, 20));
    if (!progress && pr_now() - r->asked_at < next) r->quick++;
    else r->quick = 0; /* progress, or the server held the request */
}

/* After a failure the read counted (the cause in r->err): PR_OK to try
   again, at once (a clean end of a live connection that lasted, the first
   failure after a healthy period) or after the backoff (waited by
   pr__ds_read_pace); the cause when the bound or the handle's retries
   are used up or the wait would end past the deadline. */
static int pr__ds_read_again(pr_ds_read *r, int cause, int at_once, int64_t deadline) {
    const pr_retry_policy *p = &r->ds->retry;
    if (pr__ds_read_used_up(r)) return cause;
    if (at_once && r->failures == 1) return PR_OK;
    if (p->max_retries == PR_RETRY_OFF || (p->max_retries > 0 && r->failures > p->max_retries)) return cause;
    r->next_at = pr__time_add(pr_now(), pr__retry_delay_ms(&p->backoff, r->failures - 1, &r->prev_delay, &p->hooks));
    return r->next_at > deadline ? cause : PR_OK;
}

/* One catch-up or long-poll GET. Returns PR_OK with *got set when a chunk
   is ready in c, PR_OK with *got 0 to ask again, or an error. */
/* One GET of the read at its position into r->res: live NULL (catch-up),
   "long-poll" or "sse" (with the cursor); the extra header fields h; a
   streamed body (resp not NULL) is left open in *resp. A failure is the
   read's (pr_ds_read_last_error). */
static int pr__ds_read_get(pr_ds_read *r, const char *live, const pr_http_header *h, size_t nh,
                           pr_http_response **resp, int64_t deadline) {
    pr_err_info e;
    pr__ds_req rq;
    pr_buf q;
    int rc;
    pr_buf_init(&q);
    if (pr_url_query_append(&q, "offset", r->offset) != PR_OK ||
        (live && pr_url_query_append(&q, "live", live) != PR_OK) ||
        (live && *r->cursor && pr_url_query_append(&q, "cursor", r->cursor) != PR_OK)) {
        pr_buf_deinit(&q);
        return pr__ds_read_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
    }
    memset(&rq, 0, sizeof rq);
    rq.method = "GET";
    rq.op = "read";
    rq.obs = r->obs;
    rq.query = q.data;
    rq.extra = h;
    rq.nextra = nh;
    rq.stream = resp != NULL;
    rq.idle_ms = r->o.idle_timeout_ms;
    for (;;) {
        rq.retry = pr__ds_read_policy(r);
        if ((rc = pr__ds_do(r->ds, &rq, &r->res, &e, resp, deadline)) == PR_OK) break;
        r->err = e;
        r->error = PR_DS_OK;
        if (rc == PR_ETIMEDOUT && pr_now() < deadline) { /* a connection's own limit, not the caller's */
            rc = pr__err_wrap(&r->err, PR_EIO, &e, "ds: the connection timed out");
            r->err.sys_errno = ETIMEDOUT;
        } else if ((rc == PR_ECLOSED || rc == PR_EPROTO) && !r->res.status) {
            /* no whole answer: the connection closed before it, or cut it short (the
               HTTP layer's PR_EPROTO for a head or body that stops early): the network's */
            rc = pr__err_wrap(&r->err, PR_EIO, &e, "ds: the connection closed before the whole answer");
        }
        if (!pr__ds_read_cause_transient(r, rc)) break;
        pr__ds_read_failed(r);
        /* a temporary DNS failure or a handshake cut short, which the client handed back (pr__ds_read_classify) */
        if ((rc != PR_EDNS && rc != PR_ETLS) || pr__ds_read_again(r, rc, 0, deadline) != PR_OK) break;
        if ((rc = pr__ds_read_pace(r, deadline)) != PR_OK) break;
    }
    pr_buf_deinit(&q);
    return rc;
}

static int pr__ds_read_ds_get(pr_ds_read *r, pr_ds_chunk *c, int poll, int *got, int64_t deadline) {
    pr_http_header h[2];
    size_t nh = 0;
    int rc, st, has_data;
    *got = 0;
    if ((rc = pr__ds_read_pace(r, deadline)) != PR_OK) return rc;
    r->asked_at = pr_now();
    if (!poll && r->ds->etag && r->ds->etag_at && strcmp(r->ds->etag_at, r->offset) == 0)
        pr__ds_hdr(h, &nh, "If-None-Match", r->ds->etag, strlen(r->ds->etag));
    if ((rc = pr__ds_read_get(r, poll ? "long-poll" : NULL, h, nh, NULL, deadline)) != PR_OK) return rc;
    st = r->status = r->res.status;
    if (st == 200 || st == 204 || st == 304) pr__ds_read_answered(r);
    if (st == 304) { /* nothing new at this offset */
        pr_buf_clear(&r->out);
        pr__ds_read_paced(r, !r->up_to_date);
        if (r->up_to_date) return PR_OK;
        *got = 1;
        return pr__ds_read_emit(r, c, 1, 0);
    }
    if (st != 200 && st != 204) {
        rc = pr__ds_status_error(r->ds, &r->res, &r->err, "read");
        r->error = r->res.error;
        if (pr__ds_read_cause_transient(r, rc)) pr__ds_read_failed(r);
        return rc;
    }
    if (r->res.http.body_len > r->o.max_chunk_bytes)
        return pr__ds_read_rfail(r, PR_ELIMIT, PR_DS_OK, "ds: %s", "a response over max_chunk_bytes");
    has_data = st == 200 && r->res.http.body_len &&
               !(r->json && pr__ds_read_json_empty(r->res.http.body, r->res.http.body_len));
    if (!poll && st == 200 && !has_data && r->res.etag.len) { /* an empty tail: remember its ETag */
        pr__ds_setstr(&r->ds->etag, r->res.etag.ptr, r->res.etag.len);
        pr__ds_setstr(&r->ds->etag_at, r->offset, strlen(r->offset));
    }
    if ((rc = pr__ds_read_advance(r, r->res.offset, r->res.cursor)) != PR_OK) return rc;
    pr_buf_clear(&r->out);
    if (has_data && pr_buf_append(&r->out, r->res.http.body, r->res.http.body_len) != PR_OK)
        return pr__ds_read_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
    /* a 204 (long-poll at the tail) is up to date; a 200 says so in a header */
    pr__ds_read_paced(r, has_data || r->res.closed || ((r->res.up_to_date || st == 204) && !r->up_to_date));
    if (has_data || r->res.closed || ((r->res.up_to_date || st == 204) && !r->up_to_date)) {
        *got = 1;
        return pr__ds_read_emit(r, c, r->res.up_to_date || st == 204, r->res.closed);
    }
    return PR_OK;
}

/* ---- SSE ---- */

static int pr__ds_read_b64v(unsigned char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

/* Decode standard base64 (CR and LF skipped, '=' padding) onto out. */
static int pr__ds_read_b64_decode(pr_buf *out, const char *s, size_t n) {
    unsigned acc = 0;
    int bits = 0, pad = 0;
    size_t i, q = 0;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        int v;
        if (ch == '\r' || ch == '\n') continue;
        q++;
        if (ch == '=') {
            pad++;
            continue;
        }
        if (pad || (v = pr__ds_read_b64v(ch)) < 0) return PR_EPROTO;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            char b;
            bits -= 8;
            b = (char)((acc >> bits) & 0xff);
            if (pr_buf_append(out, &b, 1) != PR_OK) return PR_ENOMEM;
        }
    }
    if (q % 4 || pad > 2) return PR_EPROTO;
    return PR_OK;
}

/* Add a JSON array's items to the array open in b ("[" and items so far;
   the caller closes it). */
static int pr__ds_read_json_join(pr_buf *b, const char *p, size_t n) {
    pr_slice t;
    t.ptr = p;
    t.len = n;
    t = pr_slice_trim(t);
    if (t.len < 2 || t.ptr[0] != '[' || t.ptr[t.len - 1] != ']') return PR_EPROTO;
    t.ptr++;
    t.len -= 2;
    t = pr_slice_trim(t);
    if (!t.len) return PR_OK;
    if (pr_buf_append(b, b->len ? "," : "[", 1) != PR_OK) return PR_ENOMEM;
    return pr_buf_append(b, t.ptr, t.len);
}

/* Add one data event to the batch: bytes, text, or a JSON array whose
   items join the batch's array. */
static int pr__ds_read_batch_add(pr_ds_read *r, const char *p, size_t n) {
    PR__DS_READ_WORK(n + 1);
    if (r->base64) return pr__ds_read_b64_decode(&r->batch, p, n);
    if (r->json) return pr__ds_read_json_join(&r->batch, p, n);
    return pr_buf_append(&r->batch, p, n);
}

static void pr__ds_read_sse_drop(pr_ds_read *r) {
    pr_http_response_destroy(r->sse);
    r->sse = NULL;
    pr_buf_clear(&r->batch); /* data without its control event is read again */
    if (r->dec) pr_sse_decoder_reset(r->dec);
}

/* Open the SSE connection at the position. */
static int pr__ds_read_sse_open(pr_ds_read *r, int64_t deadline) {
    pr_http_header h[1];
    pr_http_response *resp = NULL;
    const pr_slice *ct, *enc;
    size_t nh = 0;
    int rc;
    pr__ds_hdr(h, &nh, "Accept", "text/event-stream", 17);
    if ((rc = pr__ds_read_get(r, "sse", h, nh, &resp, deadline)) != PR_OK) return rc;
    r->status = r->res.status;
    if (r->status != 200) {
        const char *p;
        size_t n;
        /* keep the start of the server's message for the detail */
        if (pr_http_next_span(resp, &p, &n, pr_deadline_min(deadline, pr_deadline_in(1000))) == PR_OK) {
            r->res.http.body = (char *)pr__alloc(PR__MIN(n, (size_t)200) + 1);
            if (r->res.http.body) {
                r->res.http.body_len = PR__MIN(n, (size_t)200);
                memcpy(r->res.http.body, p, r->res.http.body_len);
                r->res.http.body[r->res.http.body_len] = 0;
            }
        }
        pr_http_response_destroy(resp);
        rc = pr__ds_status_error(r->ds, &r->res, &r->err, "read");
        r->error = r->res.error;
        if (pr__ds_read_cause_transient(r, rc)) pr__ds_read_failed(r);
        return rc;
    }
    ct = pr_http_header_get(resp, "content-type");
    if (!pr__http_media_is(ct, "text/event-stream")) {
        pr_http_response_destroy(resp);
        return pr__ds_read_rfail(r, PR_EPROTO, PR_DS_OK, "ds: %s", "an SSE read answered without text/event-stream");
    }
    enc = pr_http_header_get(resp, "stream-sse-data-encoding");
    r->base64 = enc ? pr_slice_ieq(pr_slice_trim(*enc), pr_slice_cstr("base64")) : !r->text;
    if (!r->dec) {
        pr_sse_decoder_opts so;
        memset(&so, 0, sizeof so);
        so.max_event_bytes = r->o.max_chunk_bytes;
        if ((rc = pr_sse_decoder_create(&r->dec, &so)) != PR_OK)
            return pr_http_response_destroy(resp), pr__ds_read_rfail(r, rc, PR_DS_OK, "ds: %s", "out of memory");
    } else {
        pr_sse_decoder_reset(r->dec);
    }
    pr_buf_clear(&r->batch);
    r->sse = resp;
    r->sse_opened_at = pr_now();
    pr__ds_read_answered(r);
    return PR_OK;
}

/* Handle one SSE event. Sets *got when a chunk is ready. */
static int pr__ds_read_sse_event(pr_ds_read *r, const pr_sse_event *ev, pr_ds_chunk *c, int *got) {
    pr_slice type = { ev->type, ev->type_len };
    int rc;
    if (pr_slice_eq(type, pr_slice_cstr("data"))) {
        if (r->batch.len + ev->data_len > r->o.max_chunk_bytes)
            return pr__ds_read_rfail(r, PR_ELIMIT, PR_DS_OK, "ds: %s", "an SSE batch over max_chunk_bytes");
        if ((rc = pr__ds_read_batch_add(r, ev->data, ev->data_len)) != PR_OK)
            return pr__ds_read_rfail(r, rc, PR_DS_OK, "ds: %s",
                                rc == PR_ENOMEM ? "out of memory" : "an SSE data event that does not decode");
        return PR_OK;
    }
    if (pr_slice_eq(type, pr_slice_cstr("control"))) {
        pr_json_doc *doc = NULL;
        const pr_json *root, *v;
        pr_slice off = { NULL, 0 }, cur = { NULL, 0 };
        int up = 0, closed = 0, has_data;
        if (pr_json_parse(&doc, ev->data, ev->data_len, NULL, NULL) != PR_OK ||
            pr_json_type(root = pr_json_root(doc)) != PR_JSON_OBJECT ||
            !(v = pr_json_get(root, "streamNextOffset")) || !(off.ptr = pr_json_string(v, &off.len))) {
            pr_json_doc_destroy(doc);
            return pr__ds_read_rfail(r, PR_EPROTO, PR_DS_OK, "ds: %s", "an SSE control event that does not parse");
        }
        if ((v = pr_json_get(root, "streamCursor")) != NULL && pr_json_type(v) == PR_JSON_STRING)
            cur.ptr = pr_json_string(v, &cur.len);
        if ((v = pr_json_get(root, "upToDate")) != NULL) pr_json_bool(v, &up);
        if ((v = pr_json_get(root, "streamClosed")) != NULL) pr_json_bool(v, &closed);
        rc = pr__ds_read_advance(r, off, cur);
        pr_json_doc_destroy(doc);
        if (rc != PR_OK) return rc;
        has_data = r->batch.len > 0;
        pr_buf_clear(&r->out);
        if (has_data) {
            PR__DS_READ_WORK(r->batch.len);
            if (pr_buf_append(&r->out, r->batch.data, r->batch.len) != PR_OK ||
                (r->json && pr_buf_append(&r->out, "]", 1) != PR_OK))
                return pr__ds_read_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
            pr_buf_clear(&r->batch);
        }
        if (has_data || closed || (up && !r->up_to_date)) {
            *got = 1;
            return pr__ds_read_emit(r, c, up, closed);
        }
        return PR_OK;
    }
    return PR_OK; /* an event type of no meaning here */
}

/* Read the SSE connection until a chunk is ready. *from_conn says the
   failure came from the connection (PR_ECLOSED: it ended) rather than from
   decoding what the server sent. */
static int pr__ds_read_sse_pump(pr_ds_read *r, pr_ds_chunk *c, int64_t deadline, int *from_conn) {
    int reads = 0;
    for (;;) {
        pr_sse_event ev;
        const char *p;
        size_t n;
        int rc, got = 0;
        while ((rc = pr_sse_decoder_next(r->dec, &ev)) == PR_OK) {
            if ((rc = pr__ds_read_sse_event(r, &ev, c, &got)) != PR_OK) return rc;
            if (got) return PR_OK;
        }
        if (rc == PR_ELIMIT) return pr__ds_read_rfail(r, PR_ELIMIT, PR_DS_OK, "ds: %s", "an SSE event over the limit");
        /* events that make no chunk (control events without data, comments)
           must not hold the caller past its deadline */
        if (reads++ && pr_now() >= deadline) return PR_ETIMEDOUT;
        rc = pr_http_next_span(r->sse, &p, &n, deadline);
        if (rc != PR_OK) {
            *from_conn = 1;
            if (rc != PR_ETIMEDOUT && rc != PR_ECANCELED) pr_http_last_error(r->sse, &r->err);
            return rc;
        }
        if ((rc = pr_sse_decoder_feed(r->dec, p, n)) != PR_OK) return pr__ds_read_rfail(r, rc, PR_DS_OK, "ds: %s", "SSE decoding failed");
    }
}

static int pr__ds_read_sse_next(pr_ds_read *r, pr_ds_chunk *c, int64_t deadline) {
    for (;;) {
        int rc, from_conn = 0, lasted, clean;
        if (!r->sse) { /* the open's attempts are its request's (pr__ds_read_policy) */
            if ((rc = pr__ds_read_pace(r, deadline)) != PR_OK || (rc = pr__ds_read_sse_open(r, deadline)) != PR_OK)
                return rc;
        }
        rc = pr__ds_read_sse_pump(r, c, deadline, &from_conn);
        if (rc == PR_OK) {
            if (c->closed) pr__ds_read_sse_drop(r);
            return PR_OK;
        }
        if (rc == PR_ECANCELED || (rc == PR_ETIMEDOUT && pr_now() >= deadline))
            return rc; /* the caller's limits: the connection stays for the next call */
        if (!from_conn || pr_retry_classify_default(rc, NULL, NULL) == PR_RETRY_FAIL) {
            pr__ds_read_sse_drop(r);
            return rc; /* malformed data (reconnecting would read it again), a limit, no memory */
        }
        /* the connection ended, broke or went silent: resume from the position */
        lasted = pr_now() - r->sse_opened_at >= r->o.sse_short_ms;
        clean = rc == PR_ECLOSED;
        r->sse_short = lasted ? 0 : r->sse_short + 1;
        pr__ds_read_sse_drop(r);
        if (clean) {
            rc = pr__err_set(&r->err, PR_EIO, 0, "ds: the server ended the SSE connection");
        } else if (rc == PR_ETIMEDOUT) {
            rc = pr__err_set(&r->err, PR_EIO, 0, "ds: the SSE connection was silent for %d ms", r->o.idle_timeout_ms);
            r->err.sys_errno = ETIMEDOUT;
        } else {
            rc = pr__err_wrap(&r->err, PR_EIO, &r->err, "ds: the SSE connection broke");
        }
        if (r->o.live == PR_DS_LIVE_AUTO && r->sse_short >= r->o.sse_max_short) {
            r->phase = PR__DS_READ_POLL; /* SSE keeps dropping: a buffering proxy, probably */
            return PR__DS_READ_TO_POLL;
        }
        pr__ds_read_failed(r);
        if ((rc = pr__ds_read_again(r, rc, lasted && clean, deadline)) != PR_OK) return rc;
    }
}

int pr_ds_read_next(pr_ds_read *r, pr_ds_chunk *c, int64_t deadline) {
    if (!r || !c) return PR_EINVAL;
    memset(c, 0, sizeof *c);
    if (r->ended) return pr__ds_read_rfail(r, PR_ECLOSED, PR_DS_OK, "ds: %s", "the read is over");
    r->error = PR_DS_OK;
    memset(&r->err, 0, sizeof r->err);
    for (;;) {
        int rc, got = 0;
        if (pr_is_canceled()) return PR_ECANCELED;
        if (r->phase == PR__DS_READ_CATCHUP && strcmp(r->offset, "now") == 0 && r->o.live != PR_DS_LIVE_NONE) {
            /* "now": the live way starts at the tail (SSE says the offset in its first control event) */
            r->phase = r->o.live == PR_DS_LIVE_SSE || (r->o.live == PR_DS_LIVE_AUTO && r->o.prefer_sse) ? PR__DS_READ_SSE
                                                                                                         : PR__DS_READ_POLL;
        }
        if (r->phase == PR__DS_READ_SSE) {
            rc = pr__ds_read_sse_next(r, c, deadline);
            if (rc == PR__DS_READ_TO_POLL) continue;
            return rc;
        }
        rc = pr__ds_read_ds_get(r, c, r->phase == PR__DS_READ_POLL, &got, deadline);
        if (rc == PR_ECLOSED) /* a connection closed before its answer is the network's failure, not the read's end */
            return pr__err_wrap(&r->err, PR_EIO, &r->err, "ds: the connection closed before the answer");
        if (rc != PR_OK) return rc;
        if (r->phase == PR__DS_READ_CATCHUP && (r->res.up_to_date || r->res.closed || r->status == 304) &&
            r->o.live != PR_DS_LIVE_NONE)
            r->phase = r->o.live == PR_DS_LIVE_SSE || (r->o.live == PR_DS_LIVE_AUTO && r->o.prefer_sse) ? PR__DS_READ_SSE
                                                                                                         : PR__DS_READ_POLL;
        if (got) return PR_OK;
    }
}

int pr_ds_read_all(pr_ds *ds, const char *offset, size_t max_bytes, pr_buf *out, pr_buf *next_offset, int *closed,
                   pr_err_info *err, int64_t deadline) {
    pr_ds_read_opts ro;
    pr_ds_read *r = NULL;
    pr_ds_chunk c;
    pr_err_info tmp;
    int rc;
    if (!err) err = &tmp;
    memset(err, 0, sizeof *err);
    if (closed) *closed = 0;
    if (!out) return pr__err_set(err, PR_EINVAL, 0, "ds: out is required");
    pr_buf_clear(out);
    if (next_offset) pr_buf_clear(next_offset);
    memset(&ro, 0, sizeof ro);
    ro.max_chunk_bytes = max_bytes = PR__DEF(max_bytes, PR__DS_DEF_CHUNK);
    if ((rc = pr_ds_read_open(&r, ds, offset, &ro, err)) != PR_OK) return rc;
    while ((rc = pr_ds_read_next(r, &c, deadline)) == PR_OK) {
        if (c.len > max_bytes - PR__MIN(out->len, max_bytes)) {
            rc = pr__ds_read_rfail(r, PR_ELIMIT, PR_DS_OK, "ds: %s", "the stream holds more than max_bytes");
            break;
        }
        if ((r->json ? pr__ds_read_json_join(out, c.data, c.len) : pr_buf_append(out, c.data, c.len)) != PR_OK) {
            rc = pr__ds_read_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
            break;
        }
        if (next_offset) {
            pr_buf_clear(next_offset);
            if (pr_buf_append(next_offset, c.offset, c.offset_len) != PR_OK) {
                rc = pr__ds_read_rfail(r, PR_ENOMEM, PR_DS_OK, "ds: %s", "out of memory");
                break;
            }
        }
        if (closed && c.closed) *closed = 1;
    }
    if (rc == PR_ECLOSED) rc = PR_OK; /* the up-to-date (or closed) answer came: the read is over */
    else pr_ds_read_last_error(r, err);
    if (r->json && pr_buf_append(out, out->len ? "]" : "[]", out->len ? 1 : 2) != PR_OK && rc == PR_OK)
        rc = pr__err_set(err, PR_ENOMEM, 0, "ds: %s", "out of memory");
    pr_ds_read_destroy(r);
    return rc;
}

/* ==== ds_producer: Durable Streams idempotent producer: batched exactly-once appends with epochs and sequence numbers ==== >>ds_producer.impl */
#define PR__DS_PRODUCER_DEF_BATCH ((size_t)1 << 20)
#define PR__DS_PRODUCER_DEF_BUFFER ((size_t)16 << 20)
#define PR__DS_PRODUCER_DEF_REQUEST 30000
#define PR__DS_PRODUCER_DEF_DELIVERY 120000

typedef struct pr__ds_producer_batch {
    struct pr__ds_producer_batch *next;
    struct pr_ds_producer *p;
    pr_buf body;                /* the bytes, or "[m1,m2" until sealed ("]" then) */
    size_t items, weight;
    int64_t seq;
    int sealed;
    int inflight;               /* holds a send slot */
    long sends;
} pr__ds_producer_batch;

struct pr_ds_producer {
    pr_ds *ds;
    pr_ds_producer_opts o;
    const pr_ds_observer *obs;  /* its own or the handle's (pr__ds_observer), or NULL */
    char *id;
    int64_t epoch, next_seq;
    int epoch_ok;               /* a batch of this epoch was accepted */
    int json;
    pr__ds_producer_batch *cur;         /* being filled, or NULL */
    int64_t cur_started;
    pr__ds_producer_batch *head, *tail; /* sealed, unanswered, in seq order */
    pr_group *senders;
    pr_task *pump;              /* seals batches after linger_ms */
    pr_chan *kick;
    pr_sem *slots;
    pr_wsem *budget;
    pr__sync_fifo changed;           /* senders waiting for a lower batch's answer or a new epoch */
    int rc;                     /* the failure that stopped the producer, 0 = none (sticky) */
    int64_t fail_seq;           /* batches from this seq on are abandoned */
    int meaning;
    pr_err_info err;
    char offset[PR__DS_MAX_OFFSET + 1];       /* answers' offsets are checked to fit */
    int closed;
    int close_rc;
    char final_offset[PR__DS_MAX_OFFSET + 1];
    int flushing;
    long dups;                  /* batches answered 204 */
    uint64_t acked, acked_bytes, resends, abandoned; /* pr_ds_producer_stats_get */
};

/* Keep an offset from an answer (checked to fit where it entered); no
   allocation, so a kept offset is never stale. */
static void pr__ds_producer_setoff(char *dst, pr_slice off) {
    size_t n = PR__MIN(off.len, (size_t)PR__DS_MAX_OFFSET);
    if (n) memcpy(dst, off.ptr, n);
    dst[n] = 0;
}

/* The producer cannot deliver batch seq: it fails, for good (until a
   restart). Batches above seq are abandoned: the server would only answer
   them with a sequence gap. Lower ones go on. */
static void pr__ds_producer_fail(pr_ds_producer *p, int64_t seq, int rc, int meaning, const pr_err_info *e) {
    if (p->rc && seq >= p->fail_seq) return;
    p->fail_seq = seq;
    pr__sync_fifo_wake_all(&p->changed, 0);
    if (p->rc) return;
    p->rc = rc;
    p->meaning = meaning;
    if (e) p->err = *e;
    else pr__err_set(&p->err, rc, 0, "ds producer: %s", pr_strerror(rc));
    p->err.code = rc;
    if (p->o.on_error) p->o.on_error(rc, &p->err, p->o.user_data);
}

static void pr__ds_producer_free_batch(pr__ds_producer_batch *b) {
    pr_buf_deinit(&b->body);
    pr__free(b, sizeof *b);
}

/* Remove an answered (or abandoned) batch, give its bytes back to the
   budget, and tell the waiting senders. */
static void pr__ds_producer_unlink(pr_ds_producer *p, pr__ds_producer_batch *b) {
    pr__ds_producer_batch **pp = &p->head, *prev = NULL;
    while (*pp && *pp != b) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = b->next;
        if (p->tail == b) p->tail = prev;
    }
    pr_wsem_release(p->budget, (int64_t)b->weight);
    pr__ds_producer_free_batch(b);
    pr__sync_fifo_wake_all(&p->changed, 0);
}

static int pr__ds_producer_send_task(void *arg);

/* Seal the current batch: it gets the next seq and a sender. */
static int pr__ds_producer_seal(pr_ds_producer *p) {
    pr__ds_producer_batch *b = p->cur;
    int rc;
    if (!b) return PR_OK;
    p->cur = NULL;
    if (p->json && (rc = pr_buf_append(&b->body, "]", 1)) != PR_OK) {
        pr_wsem_release(p->budget, (int64_t)b->weight);
        pr__ds_producer_free_batch(b);
        pr__ds_producer_fail(p, p->next_seq, rc, PR_DS_OK, NULL);
        return rc;
    }
    b->seq = p->next_seq;
    b->sealed = 1;
    if ((rc = pr_group_go(p->senders, pr__ds_producer_send_task, b, NULL)) != PR_OK) {
        pr_wsem_release(p->budget, (int64_t)b->weight);
        pr__ds_producer_free_batch(b);
        pr__ds_producer_fail(p, p->next_seq, rc, PR_DS_OK, NULL);
        return rc;
    }
    p->next_seq++; /* only once a sender has it: a seq is never skipped */
    if (p->tail) p->tail->next = b;
    else p->head = b;
    p->tail = b;
    return PR_OK;
}

/* Whether every batch below seq has been answered. */
static int pr__ds_producer_lower_done(const pr_ds_producer *p, int64_t seq) {
    return !p->head || p->head->seq >= seq;
}

/* Wait until a batch is answered, the epoch moves or the producer fails. */
static int pr__ds_producer_wait_change(pr_ds_producer *p, int64_t until) {
    pr__sync_waiter w;
    int rc = pr__sync_fifo_park(&p->changed, &w, until);
    return rc == PR_ECLOSED ? PR_OK : rc;
}

/* Whether an answer leaves the batch's fate unknown or passing: the same
   seq goes again (the server keeps one copy). */
static int pr__ds_producer_resend(int rc, const pr_ds_result *res) {
    if (rc == PR_EHTTP) return res->status == 429 || (res->status >= 500 && res->status <= 599);
    return pr_retry_classify_default(rc, NULL, NULL) == PR_RETRY_AGAIN;
}

static int pr__ds_producer_always_again(int outcome, int64_t *after_ms, void *user_data) {
    (void)outcome;
    (void)after_ms;
    (void)user_data;
    return PR_RETRY_AGAIN;
}

/* Tell the observer that the server has batch b (res: its answer, sent
   as epoch, seq), duration_ms after its first send. */
static void pr__ds_producer_notify(const pr_ds_producer *p, const pr__ds_producer_batch *b, const pr_ds_result *res,
                                   int64_t epoch, int64_t seq, int64_t duration_ms) {
    pr_ds_event ev;
    if (!p->obs) return;
    memset(&ev, 0, sizeof ev);
    ev.kind = res->status == 204 ? PR_DS_EVENT_PRODUCER_DUPLICATE : PR_DS_EVENT_PRODUCER_BATCH;
    ev.url = p->ds->base;
    ev.producer_id = p->id;
    ev.epoch = epoch;
    ev.seq = seq;
    ev.items = b->items;
    ev.bytes = b->body.len;
    ev.duration_ms = duration_ms;
    ev.offset = res->offset.len ? p->offset : "";
    pr__ds_notify(p->obs, &ev);
}

/* One batch, from its first send until the server has it: every send
   carries the same (epoch, seq), so a batch whose outcome is unknown (a
   timeout, a broken connection) is sent again until an answer says it is
   stored (200) or was stored before (204). Only the delivery timeout, a
   failure no resend can mend, or a cancel ends that. */
static int pr__ds_producer_send_task(void *arg) {
    pr__ds_producer_batch *b = (pr__ds_producer_batch *)arg;
    pr_ds_producer *p = b->p;
    pr_ds_result res;
    pr_err_info e;
    pr_ds_append_opts ao;
    pr_retry_policy again;
    pr_retry st;
    int64_t until = p->o.delivery_timeout_ms > 0 ? pr_deadline_in(p->o.delivery_timeout_ms) : PR_FOREVER;
    int64_t first_send = -1;
    int rc, slot, waits = 0, acked = 0;
    memset(&e, 0, sizeof e);
    memset(&res, 0, sizeof res);
    b->inflight = slot = (rc = pr_sem_acquire(p->slots, until)) == PR_OK;
    while (rc == PR_OK) {
        int64_t sent_epoch;
        if (p->rc && b->seq >= p->fail_seq) break; /* abandoned: a lower batch failed */
        /* claiming an epoch: only the lowest batch goes until one is accepted */
        if (p->o.auto_claim && !p->epoch_ok && p->head != b) {
            rc = pr__ds_producer_wait_change(p, until);
            continue;
        }
        memset(&ao, 0, sizeof ao);
        ao.raw_json = 1;
        ao.producer_id = p->id;
        ao.producer_epoch = sent_epoch = p->epoch;
        ao.producer_seq = b->seq;
        if (first_send < 0) first_send = pr_now();
        if (b->sends++) p->resends++;
        rc = pr__ds_append(p->ds, b->body.data, b->body.len, &ao, &res, p->obs, &e,
                           pr_deadline_min(until, pr_deadline_in(p->o.request_timeout_ms)));
        if (rc == PR_OK) {
            if (sent_epoch == p->epoch) p->epoch_ok = 1;
            if (res.status == 204) p->dups++;
            p->acked++;
            acked = 1;
            p->acked_bytes += b->body.len;
            if (res.offset.len) pr__ds_producer_setoff(p->offset, res.offset);
            pr__ds_producer_notify(p, b, &res, sent_epoch, ao.producer_seq, pr_now() - first_send);
            break;
        }
        if (rc == PR_ECANCELED || pr_is_canceled()) {
            rc = PR_ECANCELED;
            break;
        }
        if (rc == PR_EHTTP && res.error == PR_DS_STALE_EPOCH && p->o.auto_claim && res.producer_epoch >= 0) {
            if (sent_epoch != p->epoch) { /* another batch has claimed meanwhile: send with the new numbers */
                rc = PR_OK;
                continue;
            }
            if (p->head == b && !p->rc) {
                pr__ds_producer_batch *x;
                int64_t seq = 0;
                p->epoch = res.producer_epoch + 1; /* the server's epoch + 1, every unanswered batch renumbered */
                p->epoch_ok = 0;
                for (x = p->head; x; x = x->next) x->seq = seq++;
                p->next_seq = seq;
                pr__sync_fifo_wake_all(&p->changed, 0);
                rc = PR_OK;
                continue;
            }
            rc = pr__ds_producer_wait_change(p, until); /* the lowest batch claims */
            continue;
        }
        if (rc == PR_EHTTP && res.error == PR_DS_SEQUENCE_GAP && res.expected_seq >= 0 && res.expected_seq < b->seq &&
            !pr__ds_producer_lower_done(p, b->seq)) {
            /* a lower batch has not arrived yet: send again once it is answered */
            while ((rc = pr__ds_producer_wait_change(p, until)) == PR_OK && !pr__ds_producer_lower_done(p, b->seq) &&
                   !(p->rc && b->seq >= p->fail_seq)) {}
            continue;
        }
        if (!pr__ds_producer_resend(rc, &res) && !(rc == PR_EHTTP && res.error == PR_DS_SEQUENCE_GAP &&
                                          res.expected_seq >= 0 && res.expected_seq < b->seq)) {
            pr__ds_producer_fail(p, b->seq, rc, rc == PR_EHTTP ? res.error : PR_DS_OK, &e);
            break;
        }
        /* unknown, passing, or a gap the lower batches should have closed:
           the same seq again after the handle's backoff */
        if (!waits++) {
            again = p->ds->retry;
            again.max_retries = PR_RETRY_UNLIMITED;
            again.max_elapsed_ms = again.progress_timeout_ms = 0;
            again.classify = pr__ds_producer_always_again;
            again.on_retry = NULL;
            if ((rc = pr_retry_begin(&st, &again)) != PR_OK) break;
        }
        {
            int outcome = rc;
            pr_err_info last = e;
            if (pr_retry_next(&st, &outcome, until)) {
                rc = PR_OK;
                continue;
            }
            if (outcome == PR_ECANCELED) {
                rc = PR_ECANCELED;
                break;
            }
            pr__err_wrap(&e, PR_EFAILED, &last,
                         "ds producer: batch %lld not stored within delivery_timeout_ms; the last try",
                         (long long)b->seq);
            pr__ds_producer_fail(p, b->seq, PR_EFAILED, rc == PR_EHTTP ? res.error : PR_DS_OK, &e);
            rc = PR_EFAILED;
            break;
        }
    }
    if (rc == PR_ETIMEDOUT) { /* the delivery timeout passed while it waited for a slot or a lower batch */
        pr__err_set(&e, PR_EFAILED, 0, "ds producer: batch %lld not stored within delivery_timeout_ms "
                    "(it waited for %s)", (long long)b->seq, slot ? "lower batches" : "a send slot");
        pr__ds_producer_fail(p, b->seq, PR_EFAILED, PR_DS_OK, &e);
    }
    pr_ds_result_deinit(&res);
    if (!acked) p->abandoned++;
    pr__ds_producer_unlink(p, b);
    if (slot) pr_sem_release(p->slots);
    if (p->kick) (void)pr_chan_send(p->kick, &rc, 0); /* a slot is free: the pump may seal */
    return 0;
}

/* Seals the current batch linger_ms after its first message (at the next
   turn for 0), once a send slot is free. */
static int pr__ds_producer_pump(void *arg) {
    pr_ds_producer *p = (pr_ds_producer *)arg;
    for (;;) {
        int x, rc;
        int64_t until = PR_FOREVER;
        if (p->cur) until = pr__time_add(p->cur_started, p->o.linger_ms);
        if (p->cur && pr_now() >= until) {
            if (pr_sem_available(p->slots) > 0 && !p->rc) pr__ds_producer_seal(p);
            until = PR_FOREVER; /* the next kick (a slot freed, a message) */
        }
        rc = pr_chan_recv(p->kick, &x, p->cur ? until : PR_FOREVER);
        if (rc == PR_ECLOSED || rc == PR_ECANCELED) return 0;
    }
}

int pr_ds_producer_create(pr_ds_producer **out, pr_ds *ds, const pr_ds_producer_opts *opts, pr_err_info *err) {
    const pr_ds_producer_opts *o = opts;
    pr_ds_producer *p;
    int rc;
    if (out) *out = NULL;
    if (!out || !ds || !o || !o->producer_id || !*o->producer_id)
        return pr__err_set(err, PR_EINVAL, 0, "ds producer: out, ds and a producer id are required");
    if (o->epoch < 0 || o->linger_ms < 0 || o->max_in_flight < 0 || o->request_timeout_ms < 0)
        return pr__err_set(err, PR_EINVAL, 0, "ds producer: a negative epoch, linger_ms, max_in_flight or "
                           "request_timeout_ms");
    if (!(p = (pr_ds_producer *)pr__calloc(1, sizeof *p))) return pr__err_set(err, PR_ENOMEM, 0, "ds producer: out of memory");
    p->ds = ds;
    p->o = *o;
    p->o.max_batch_bytes = PR__DEF(p->o.max_batch_bytes, PR__DS_PRODUCER_DEF_BATCH);
    p->o.max_in_flight = PR__DEF(p->o.max_in_flight, 5);
    p->o.max_buffer_bytes = PR__DEF(p->o.max_buffer_bytes, PR__DS_PRODUCER_DEF_BUFFER);
    p->o.request_timeout_ms = PR__DEF(p->o.request_timeout_ms, PR__DS_PRODUCER_DEF_REQUEST);
    p->o.delivery_timeout_ms = PR__DEF(p->o.delivery_timeout_ms, PR__DS_PRODUCER_DEF_DELIVERY);
    p->epoch = o->epoch;
    p->obs = pr__ds_observer(ds, &p->o.observer);
    p->json = pr__ds_is_json(ds->ctype);
    if (!(p->id = pr__strdup(o->producer_id, NULL)) ||
        (rc = pr_group_create(&p->senders)) != PR_OK || (rc = pr_chan_create(&p->kick, sizeof(int), 1)) != PR_OK ||
        (rc = pr_sem_create(&p->slots, p->o.max_in_flight)) != PR_OK ||
        (rc = pr_wsem_create(&p->budget, (int64_t)p->o.max_buffer_bytes)) != PR_OK ||
        (rc = pr_go(&p->pump, pr__ds_producer_pump, p, NULL)) != PR_OK) {
        pr_ds_producer_destroy(p);
        return pr__err_set(err, PR_ENOMEM, 0, "ds producer: out of memory");
    }
    p->o.producer_id = NULL;
    *out = p;
    if (err) memset(err, 0, sizeof *err);
    return PR_OK;
}

int pr_ds_producer_append(pr_ds_producer *p, const void *data, size_t len, int64_t deadline) {
    int rc;
    int64_t w;
    if (!p || !data || !len) return PR_EINVAL;
    if (p->rc) return p->rc;
    if (p->closed) return PR_ESTATE;
    w = (int64_t)PR__MIN(len, p->o.max_buffer_bytes);
    if ((rc = pr_wsem_acquire(p->budget, w, deadline)) != PR_OK) return rc;
    if (p->rc) { /* it failed meanwhile */
        pr_wsem_release(p->budget, w);
        return p->rc;
    }
    if (p->cur && p->cur->body.len + len + 2 > p->o.max_batch_bytes && p->cur->items) pr__ds_producer_seal(p);
    if (!p->cur) {
        pr__ds_producer_batch *b = (pr__ds_producer_batch *)pr__calloc(1, sizeof *b);
        if (!b) {
            pr_wsem_release(p->budget, w);
            return PR_ENOMEM;
        }
        b->p = p;
        pr_buf_init(&b->body);
        p->cur = b;
        p->cur_started = pr_now();
        (void)pr_chan_send(p->kick, &rc, 0);
    }
    if ((p->json && pr_buf_append(&p->cur->body, p->cur->items ? "," : "[", 1) != PR_OK) ||
        pr_buf_append(&p->cur->body, data, len) != PR_OK) {
        pr_wsem_release(p->budget, w);
        return PR_ENOMEM; /* the batch keeps what it had (a JSON batch may end in ","; sealed it fails at the server) */
    }
    p->cur->items++;
    p->cur->weight += (size_t)w;
    if (p->cur->body.len >= p->o.max_batch_bytes || (p->o.max_batch_items && p->cur->items >= p->o.max_batch_items))
        pr__ds_producer_seal(p);
    return p->rc;
}

int pr_ds_producer_flush(pr_ds_producer *p, int64_t deadline) {
    int rc;
    if (!p) return PR_EINVAL;
    if (p->rc) return p->rc;
    if (p->flushing) return PR_ESTATE;
    p->flushing = 1;
    pr__ds_producer_seal(p);
    rc = pr_group_wait(p->senders, deadline);
    p->flushing = 0;
    return p->rc ? p->rc : rc;
}

int pr_ds_producer_close(pr_ds_producer *p, const void *data, size_t len, const char **final_offset,
                         int64_t deadline) {
    pr_ds_result res;
    pr_err_info e;
    pr_ds_append_opts ao;
    pr_buf body;
    int rc;
    if (final_offset) *final_offset = NULL;
    if (!p || (len && !data)) return PR_EINVAL;
    if (p->closed) {
        if (final_offset) *final_offset = p->final_offset;
        return p->close_rc;
    }
    if ((rc = pr_ds_producer_flush(p, deadline)) != PR_OK) return rc;
    memset(&res, 0, sizeof res);
    pr_buf_init(&body);
    if (len && ((p->json && pr_buf_append(&body, "[", 1)) || pr_buf_append(&body, data, len) ||
                (p->json && pr_buf_append(&body, "]", 1)))) {
        pr_buf_deinit(&body);
        return PR_ENOMEM;
    }
    memset(&e, 0, sizeof e);
    for (;;) {
        memset(&ao, 0, sizeof ao);
        ao.close = 1;
        ao.raw_json = 1;
        ao.producer_id = p->id;
        ao.producer_epoch = p->epoch;
        ao.producer_seq = p->next_seq;
        rc = pr__ds_append(p->ds, body.data, body.len, &ao, &res, p->obs, &e, deadline);
        if (rc == PR_EHTTP && res.error == PR_DS_STALE_EPOCH && p->o.auto_claim && res.producer_epoch >= 0) {
            p->epoch = res.producer_epoch + 1;
            p->next_seq = 0;
            continue;
        }
        break;
    }
    pr_buf_deinit(&body);
    if (rc == PR_OK || rc == PR_EHTTP) {
        p->closed = 1;
        p->close_rc = rc;
        p->next_seq++;
        pr__ds_producer_setoff(p->final_offset, res.offset);
        if (final_offset) *final_offset = p->final_offset;
        if (rc != PR_OK) {
            p->meaning = res.error;
            p->err = e;
        }
    }
    pr_ds_result_deinit(&res);
    return rc;
}

int pr_ds_producer_restart(pr_ds_producer *p, int64_t deadline) {
    int rc;
    if (!p) return PR_EINVAL;
    if (p->flushing) return PR_ESTATE;
    p->flushing = 1;
    if (!p->rc) pr__ds_producer_seal(p);
    rc = pr_group_wait(p->senders, deadline); /* every sender ends: answered, or abandoned after a failure */
    p->flushing = 0;
    if (rc != PR_OK) return rc;
    rc = p->rc;
    p->rc = 0;
    p->epoch++;
    p->next_seq = 0;
    p->epoch_ok = 0;
    return rc;
}

int64_t pr_ds_producer_epoch(const pr_ds_producer *p, int64_t *next_seq) {
    if (next_seq) *next_seq = p ? p->next_seq : 0;
    return p ? p->epoch : -1;
}

const char *pr_ds_producer_offset(const pr_ds_producer *p) { return p ? p->offset : NULL; }

long pr_ds_producer_duplicates(const pr_ds_producer *p) { return p ? p->dups : 0; }

int pr_ds_producer_stats_get(const pr_ds_producer *p, pr_ds_producer_stats *out) {
    const pr__ds_producer_batch *b;
    if (!p || !out) return PR_EINVAL;
    memset(out, 0, sizeof *out);
    for (b = p->head; b; b = b->next) {
        if (b->inflight) {
            out->inflight_batches++;
            out->inflight_bytes += b->body.len;
        } else {
            out->pending_batches++;
            out->pending_bytes += b->body.len;
        }
    }
    if (p->cur) {
        out->pending_batches++;
        out->pending_bytes += p->cur->body.len;
    }
    out->acked_batches = p->acked;
    out->acked_bytes = p->acked_bytes;
    out->duplicate_batches = (uint64_t)p->dups;
    out->resends = p->resends;
    out->abandoned_batches = p->abandoned;
    return PR_OK;
}

int pr_ds_producer_last_error(const pr_ds_producer *p, pr_err_info *out) {
    if (!p || !out) return PR_EINVAL;
    *out = p->err;
    out->meaning = p->meaning;
    return PR_OK;
}

void pr_ds_producer_destroy(pr_ds_producer *p) {
    if (!p) return;
    if (p->kick) pr_chan_close(p->kick);
    if (p->pump) pr__sched_join_cleanup(p->pump); /* from a cancelled task too */
    if (p->senders) pr_group_close(p->senders, PR_FOREVER);
    while (p->head) pr__ds_producer_unlink(p, p->head);
    if (p->cur) {
        pr_wsem_release(p->budget, (int64_t)p->cur->weight);
        pr__ds_producer_free_batch(p->cur);
    }
    pr_chan_destroy(p->kick);
    pr_sem_destroy(p->slots);
    pr_wsem_destroy(p->budget);
    pr__strfree(&p->id);
    pr__free(p, sizeof *p);
}

/* ==== ds_consumer: Durable Streams consumer: a task that follows a stream from a checkpoint ==== >>ds_consumer.impl */
struct pr_ds_consumer {
    pr_ds *ds;
    pr_ds_consumer_opts o;
    const pr_ds_observer *obs;  /* its own or the handle's (pr__ds_observer), or NULL */
    char *offset;
    pr_task *task;
    pr_err_info err;            /* the failure that stopped it */
    int meaning;                /* its PR_DS_* meaning */
    int state;
    int result;
    int done;
};

/* Tell the observer: an event of kind with the consumer's URL, its
   checkpoint unless ev has an offset, and the failure why (NULL: none). */
static void pr__ds_consumer_notify(pr_ds_consumer *c, pr_ds_event *ev, int kind, const pr_err_info *why) {
    if (!c->obs) return;
    ev->kind = kind;
    ev->url = c->ds->base;
    if (!ev->offset) ev->offset = c->offset;
    ev->error = why ? why->code : 0;
    ev->err = why;
    pr__ds_notify(c->obs, ev);
}

static void pr__ds_consumer_state(pr_ds_consumer *c, int state, const pr_err_info *why) {
    if (c->state == state && !why) return;
    c->state = state;
    if (c->o.on_state) c->o.on_state(state, why, c->o.user_data);
    if (c->obs) {
        pr_ds_event ev;
        memset(&ev, 0, sizeof ev);
        ev.state = state;
        pr__ds_consumer_notify(c, &ev, PR_DS_EVENT_CONSUMER_STATE, why);
    }
}

static int pr__ds_consumer_task(void *arg) {
    pr_ds_consumer *c = (pr_ds_consumer *)arg;
    pr_ds_read_opts ro;
    pr_ds_read *rd = NULL;
    pr_retry backoff;
    pr_err_info why;
    int64_t delay, failed_at = 0;
    int failures = 0, rc, by_user = 0, ended = 0, healthy_ms = PR__DEF(c->o.healthy_ms, 60000);
    memset(&ro, 0, sizeof ro);
    ro.live = c->o.live ? c->o.live : PR_DS_LIVE_AUTO;
    ro.prefer_sse = c->o.prefer_sse;
    ro.idle_timeout_ms = c->o.idle_timeout_ms;
    ro.open_attempts = c->o.open_attempts;
    ro.max_failures = c->o.max_failures;
    ro.healthy_ms = c->o.healthy_ms;
    pr__ds_consumer_state(c, PR_DS_CONSUMER_CONNECTING, NULL);
    /* one read throughout: it resumes at its position and keeps its count of failures */
    if ((rc = pr_ds_read_open(&rd, c->ds, c->offset, &ro, &why)) != PR_OK) {
        c->err = why;
        pr__ds_consumer_state(c, PR_DS_CONSUMER_STOPPED, &why);
        c->result = rc;
        c->done = 1;
        return 0;
    }
    rd->obs = c->obs;
    for (;;) {
        pr_ds_chunk ch;
        int outcome;
        while ((rc = pr_ds_read_next(rd, &ch, PR_FOREVER)) == PR_OK) {
            int r;
            if (failures && pr_now() - failed_at >= healthy_ms) failures = 0; /* healthy again */
            pr__ds_consumer_state(c, ch.up_to_date ? PR_DS_CONSUMER_UP_TO_DATE : PR_DS_CONSUMER_LIVE, NULL);
            if (ch.len && c->obs) {
                pr_ds_event ev;
                memset(&ev, 0, sizeof ev);
                ev.items = ch.items ? pr_json_len(ch.items) : 1;
                ev.bytes = ch.len;
                ev.offset = ch.offset;
                pr__ds_consumer_notify(c, &ev, PR_DS_EVENT_CONSUMER_BATCH, NULL);
            }
            if ((ch.len || ch.closed) && (r = c->o.on_batch(&ch, c->o.user_data)) != 0) {
                rc = r;
                by_user = 1;
                break;
            }
            pr__ds_setstr(&c->offset, ch.offset, ch.offset_len);
            if (c->o.on_checkpoint) c->o.on_checkpoint(c->offset, strlen(c->offset), c->o.user_data);
            if (ch.closed) {
                pr__ds_consumer_state(c, PR_DS_CONSUMER_CLOSED, NULL);
                rc = PR_ECLOSED;
                ended = 1;
                break;
            }
        }
        if (by_user || ended || rc == PR_ECANCELED) break;
        pr_ds_read_last_error(rd, &why);
        if (!pr__ds_read_transient(rd, rc)) { /* a final cause, or the read's tries are used up */
            c->meaning = why.meaning;
            c->err = why;
            pr__ds_consumer_state(c, PR_DS_CONSUMER_STOPPED, &why);
            break;
        }
        /* a transient failure after the read's own tries: connect again after the backoff */
        pr__ds_consumer_state(c, PR_DS_CONSUMER_CONNECTING, &why);
        if (failures++ == 0 && pr_retry_begin(&backoff, &c->ds->retry) != PR_OK) {
            rc = PR_EINVAL;
            break;
        }
        failed_at = pr_now();
        outcome = rc;
        if ((delay = pr_retry_plan(&backoff, &outcome, PR_FOREVER)) < 0) {
            rc = outcome;
            break;
        }
        if (c->obs) {
            pr_ds_event ev;
            memset(&ev, 0, sizeof ev);
            ev.attempt = failures;
            ev.delay_ms = delay;
            pr__ds_consumer_notify(c, &ev, PR_DS_EVENT_CONSUMER_RECONNECT, &why);
        }
        if (!pr_retry_sleep(&backoff, delay, &outcome, PR_FOREVER)) {
            rc = outcome;
            break;
        }
    }
    pr_ds_read_destroy(rd);
    c->result = rc;
    c->done = 1;
    return 0;
}

int pr_ds_consumer_start(pr_ds_consumer **out, pr_ds *ds, const pr_ds_consumer_opts *opts, pr_err_info *err) {
    const pr_ds_consumer_opts *o = opts;
    pr_ds_consumer *c;
    int rc;
    if (out) *out = NULL;
    if (err) memset(err, 0, sizeof *err);
    if (!out || !ds || !o || !o->on_batch)
        return pr__err_set(err, PR_EINVAL, 0, "ds consumer: out, ds and on_batch are required");
    if (o->live < 0 || o->live > PR_DS_LIVE_AUTO)
        return pr__err_set(err, PR_EINVAL, 0, "ds consumer: unknown live mode %d", o->live);
    if (o->offset && !pr__ds_token_ok(o->offset, strlen(o->offset)))
        return pr__err_set(err, PR_EINVAL, 0, "ds consumer: an offset is 1 to %d printable ASCII bytes",
                           PR__DS_MAX_OFFSET);
    if (!(c = (pr_ds_consumer *)pr__calloc(1, sizeof *c)))
        return pr__err_set(err, PR_ENOMEM, 0, "ds consumer: out of memory");
    c->ds = ds;
    c->o = *o;
    c->o.offset = NULL;
    c->obs = pr__ds_observer(ds, &c->o.observer);
    if (!(c->offset = pr__strdup(PR__DEF(o->offset, "-1"), NULL))) {
        pr__free(c, sizeof *c);
        return pr__err_set(err, PR_ENOMEM, 0, "ds consumer: out of memory");
    }
    if ((rc = pr_go(&c->task, pr__ds_consumer_task, c, NULL)) != PR_OK) {
        pr__strfree(&c->offset);
        pr__free(c, sizeof *c);
        return pr__err_set(err, rc, 0, "ds consumer: could not start its task");
    }
    *out = c;
    return PR_OK;
}

int pr_ds_consumer_wait(pr_ds_consumer *c, int64_t deadline) {
    int rc;
    if (!c || !c->task) return PR_EINVAL;
    if ((rc = pr_join(c->task, NULL, deadline)) != PR_OK) return rc;
    c->task = NULL;
    return c->result;
}

int pr_ds_consumer_last_error(const pr_ds_consumer *c, pr_err_info *out) {
    if (!c || !out) return PR_EINVAL;
    *out = c->err;
    out->meaning = c->meaning;
    return PR_OK;
}

void pr_ds_consumer_stop(pr_ds_consumer *c) {
    if (!c) return;
    if (c->task) pr__sched_join_cleanup(c->task); /* from a cancelled task too */
    pr__strfree(&c->offset);
    pr__free(c, sizeof *c);
}

/* ==== telemetry: structured events from every module's observer (client, breakers, streams, futures, Durable Streams); a batching reporter ==== >>telemetry.impl */
/* ---- the hub ---- */
struct pr_telemetry {
    pr_telemetry_opts o;
};

const pr_telemetry_field *pr_telemetry_field_get(const pr_telemetry_event *ev, const char *key) {
    size_t i;
    if (!ev || !key) return NULL;
    for (i = 0; i < ev->nfields; i++)
        if (!strcmp(ev->fields[i].key, key)) return &ev->fields[i];
    return NULL;
}

int pr_telemetry_create(pr_telemetry **out, const pr_telemetry_opts *opts) {
    if (!out) return PR_EINVAL;
    *out = (pr_telemetry *)pr__calloc(1, sizeof **out);
    if (!*out) return PR_ENOMEM;
    if (opts) (*out)->o = *opts;
    return PR_OK;
}

void pr_telemetry_destroy(pr_telemetry *t) { pr__free(t, sizeof *t); }

static int pr__telemetry_secret_name(pr_slice n) {
    static const char *const words[] = { "key", "token", "secret", "password", "passwd", "pwd", "auth",
                                         "signature", "sig", "credential", "session" };
    size_t i, k;
    for (i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t wl = strlen(words[i]);
        for (k = 0; k + wl <= n.len; k++) {
            pr_slice part;
            part.ptr = n.ptr + k;
            part.len = wl;
            if (pr_slice_ieq(part, pr_slice_cstr(words[i]))) return 1;
        }
    }
    return 0;
}

int pr_telemetry_sanitize_url(pr_buf *out, const char *url) {
    const char *p, *q, *at, *end, *slash;
    int rc = PR_OK;
    if (!out || !url) return PR_EINVAL;
    end = url + strlen(url);
    p = strstr(url, "://");
    p = p ? p + 3 : url;
    slash = p + strcspn(p, "/?#");
    /* userinfo: the last '@' before the path */
    for (at = NULL, q = p; q < slash; q++)
        if (*q == '@') at = q;
    rc = pr_buf_append(out, url, (size_t)(p - url));
    if (!rc) rc = at ? pr_buf_append(out, at + 1, (size_t)(slash - at - 1)) : pr_buf_append(out, p, (size_t)(slash - p));
    q = slash + strcspn(slash, "?#");
    if (!rc) rc = pr_buf_append(out, slash, (size_t)(q - slash));
    if (!rc && q < end && *q == '?') {
        const char *qe = q + 1 + strcspn(q + 1, "#");
        const char *s = q + 1;
        rc = pr_buf_append(out, "?", 1);
        while (!rc && s < qe) {
            const char *amp = (const char *)memchr(s, '&', (size_t)(qe - s)), *pe = amp ? amp : qe;
            const char *eq = (const char *)memchr(s, '=', (size_t)(pe - s));
            pr_slice name;
            name.ptr = s;
            name.len = (size_t)((eq ? eq : pe) - s);
            if (eq && pr__telemetry_secret_name(name)) {
                rc = pr_buf_append(out, s, (size_t)(eq - s) + 1);
                if (!rc) rc = pr_buf_append_str(out, "REDACTED");
            } else {
                rc = pr_buf_append(out, s, (size_t)(pe - s));
            }
            if (!rc && amp) rc = pr_buf_append(out, "&", 1);
            s = amp ? amp + 1 : qe;
        }
        q = qe;
    }
    if (!rc && q < end) rc = pr_buf_append(out, q, (size_t)(end - q)); /* the fragment */
    return rc;
}

static void pr__telemetry_forward(pr_telemetry *t, const pr_telemetry_event *ev);

static void pr__telemetry_emit(pr_telemetry *t, int kind, const char *name, int severity, const pr_telemetry_field *f,
                         size_t n) {
    pr_telemetry_event ev;
    if (!t) return;
    ev.kind = kind;
    ev.name = name;
    ev.severity = severity;
    ev.fields = f;
    ev.nfields = n;
    if (t->o.on_event) t->o.on_event(&ev, t->o.user_data);
    if (t->o.reporter) pr__telemetry_forward(t, &ev);
}

static pr_telemetry_field pr__telemetry_s(const char *key, const char *s) {
    pr_telemetry_field f;
    memset(&f, 0, sizeof f);
    f.key = key;
    f.type = PR_TELEMETRY_STR;
    f.s = s ? s : "";
    return f;
}

static pr_telemetry_field pr__telemetry_i(const char *key, int64_t i) {
    pr_telemetry_field f;
    memset(&f, 0, sizeof f);
    f.key = key;
    f.type = PR_TELEMETRY_INT;
    f.i = i;
    return f;
}

static pr_telemetry_field pr__telemetry_b(const char *key, int b) {
    pr_telemetry_field f = pr__telemetry_i(key, b != 0);
    f.type = PR_TELEMETRY_BOOL;
    return f;
}

void pr_telemetry_http_hook(const pr_http_event *ev, void *user_data) {
    pr_telemetry *t = (pr_telemetry *)user_data;
    pr_telemetry_field f[8];
    pr_buf url;
    int kind, sev = PR_SEVERITY_INFO;
    const char *name;
    size_t n = 0;
    if (!t || !ev) return;
    switch (ev->kind) {
    case PR_HTTP_EVENT_START: kind = PR_TELEMETRY_REQUEST_START; name = "http.request.start"; break;
    case PR_HTTP_EVENT_RETRY: kind = PR_TELEMETRY_RETRY; name = "http.request.retry"; sev = PR_SEVERITY_WARNING; break;
    case PR_HTTP_EVENT_DONE:
        if (ev->error) {
            kind = PR_TELEMETRY_REQUEST_ERROR;
            name = "http.request.exception";
            sev = PR_SEVERITY_ERROR;
        } else {
            kind = PR_TELEMETRY_REQUEST_STOP;
            name = "http.request.stop";
        }
        break;
    default: return; /* attempts are seen through retries and the outcome */
    }
    pr_buf_init(&url);
    if (pr_telemetry_sanitize_url(&url, ev->url) || pr_buf_append(&url, "", 1)) {
        pr_buf_deinit(&url);
        return;
    }
    f[n++] = pr__telemetry_s("method", ev->method);
    f[n++] = pr__telemetry_s("url", url.data);
    f[n++] = pr__telemetry_i("attempt", ev->attempt);
    if (ev->kind != PR_HTTP_EVENT_START) {
        f[n++] = pr__telemetry_i("status", ev->status);
        f[n++] = pr__telemetry_s("error", ev->error ? pr_errname(ev->error) : "");
        f[n++] = pr__telemetry_i("duration_ms", ev->duration_ms);
    }
    if (ev->kind == PR_HTTP_EVENT_RETRY) {
        f[n++] = pr__telemetry_i("delay_ms", ev->delay_ms);
        f[n++] = pr__telemetry_s("reason", ev->reason);
    }
    pr__telemetry_emit(t, kind, name, sev, f, n);
    pr_buf_deinit(&url);
}

static const char *pr__telemetry_breaker_state(int s) {
    return s == PR_BREAKER_OPEN ? "open" : s == PR_BREAKER_HALF_OPEN ? "half_open" : "closed";
}

void pr_telemetry_breaker_hook(const char *name, int from, int to, void *user_data) {
    pr_telemetry_field f[3];
    f[0] = pr__telemetry_s("breaker", name);
    f[1] = pr__telemetry_s("from", pr__telemetry_breaker_state(from));
    f[2] = pr__telemetry_s("to", pr__telemetry_breaker_state(to));
    pr__telemetry_emit((pr_telemetry *)user_data, PR_TELEMETRY_BREAKER, "circuit.state_change",
                 to == PR_BREAKER_OPEN ? PR_SEVERITY_WARNING : PR_SEVERITY_INFO, f, 3);
}

void pr_telemetry_sse_hook(const pr_sse_reconnect *info, void *user_data) {
    pr_telemetry_field f[7];
    if (!info) return;
    f[0] = pr__telemetry_i("reconnects", info->reconnects);
    f[1] = pr__telemetry_i("failures", info->failures);
    f[2] = pr__telemetry_i("delay_ms", info->delay_ms);
    f[3] = pr__telemetry_s("reason", pr_errname(info->reason));
    f[4] = pr__telemetry_i("status", info->status);
    f[5] = pr__telemetry_s("detail", info->detail ? info->detail : "");
    f[6] = pr__telemetry_s("last_event_id", info->last_event_id ? info->last_event_id : "");
    pr__telemetry_emit((pr_telemetry *)user_data, PR_TELEMETRY_STREAM_RECONNECT, "sse.reconnect",
                 info->failures > 0 ? PR_SEVERITY_WARNING : PR_SEVERITY_INFO, f, 7);
}

static const char *pr__telemetry_queue_state(int s) {
    switch (s) {
    case PR_QUEUE_ACTIVE: return "active";
    case PR_QUEUE_PAUSED_RATE_LIMIT: return "paused_rate_limit";
    case PR_QUEUE_PAUSED_CAPACITY: return "paused_capacity";
    case PR_QUEUE_NONE: return "";
    default: return "unknown";
    }
}

void pr_telemetry_queue_hook(const pr_queue_change *change, void *user_data) {
    pr_telemetry_field f[4];
    if (!change) return;
    f[0] = pr__telemetry_s("request_id", change->request_id);
    f[1] = pr__telemetry_s("queue_state", pr__telemetry_queue_state(change->state));
    f[2] = pr__telemetry_s("queue_state_reason", change->reason);
    f[3] = pr__telemetry_s("old_queue_state", pr__telemetry_queue_state(change->old_state));
    pr__telemetry_emit((pr_telemetry *)user_data, PR_TELEMETRY_QUEUE_STATE, "queue.state_change", PR_SEVERITY_INFO, f, 4);
}

void pr_telemetry_rfuture_hook(const pr_rfuture_event *ev, void *user_data) {
    pr_telemetry_field f[14];
    size_t n = 0;
    int kind;
    if (!ev) return;
    kind = !ev->settled ? PR_TELEMETRY_FUTURE : ev->error ? PR_TELEMETRY_FUTURE_FAILED : PR_TELEMETRY_FUTURE_RESOLVED;
    f[n++] = pr__telemetry_s("request_id", ev->request_id);
    f[n++] = pr__telemetry_s("request_type", ev->request_type);
    f[n++] = pr__telemetry_i("iteration", ev->iteration);
    f[n].key = "elapsed_time";
    f[n].type = PR_TELEMETRY_DOUBLE;
    f[n].s = NULL;
    f[n].i = 0;
    f[n++].d = ev->elapsed_s;
    f[n++] = pr__telemetry_i("status_code", ev->status_code);
    if (ev->kind) {
        f[n++] = pr__telemetry_s("kind", ev->kind);
        f[n++] = pr__telemetry_b("should_retry", ev->should_retry);
        f[n++] = pr__telemetry_b("is_user_error", ev->is_user_error);
        f[n++] = pr__telemetry_i("bad_request_retries", ev->bad_request_retries);
        f[n++] = pr__telemetry_i("connection_error_retries", ev->connection_error_retries);
    }
    if (ev->detail) f[n++] = pr__telemetry_s("detail", ev->detail);
    if (ev->new_request_id) f[n++] = pr__telemetry_s("new_request_id", ev->new_request_id);
    if (ev->settled) f[n++] = pr__telemetry_s("error", ev->error ? pr_errname(ev->error) : "");
    pr__telemetry_emit((pr_telemetry *)user_data, kind, ev->name, ev->severity, f, n);
}

static const char *pr__telemetry_ds_state(int s) {
    switch (s) {
    case PR_DS_CONSUMER_CONNECTING: return "connecting";
    case PR_DS_CONSUMER_LIVE: return "live";
    case PR_DS_CONSUMER_UP_TO_DATE: return "up_to_date";
    case PR_DS_CONSUMER_CLOSED: return "closed";
    default: return "stopped";
    }
}

void pr_telemetry_ds_hook(const pr_ds_event *ev, void *user_data) {
    pr_telemetry *t = (pr_telemetry *)user_data;
    pr_telemetry_field f[8];
    pr_buf url;
    const char *name;
    int kind, sev = PR_SEVERITY_INFO;
    size_t n = 0;
    if (!t || !ev) return;
    switch (ev->kind) {
    case PR_DS_EVENT_REQUEST_START: kind = PR_TELEMETRY_REQUEST_START; name = "ds.request.start"; break;
    case PR_DS_EVENT_REQUEST_STOP: kind = PR_TELEMETRY_REQUEST_STOP; name = "ds.request.stop"; break;
    case PR_DS_EVENT_REQUEST_EXCEPTION:
        kind = PR_TELEMETRY_REQUEST_ERROR;
        name = "ds.request.exception";
        sev = PR_SEVERITY_ERROR;
        break;
    case PR_DS_EVENT_CONSUMER_BATCH: kind = PR_TELEMETRY_STREAM_BATCH; name = "ds.consumer.batch"; break;
    case PR_DS_EVENT_CONSUMER_RECONNECT:
        kind = PR_TELEMETRY_STREAM_RECONNECT;
        name = "ds.consumer.reconnect";
        sev = PR_SEVERITY_WARNING;
        break;
    case PR_DS_EVENT_CONSUMER_STATE:
        kind = PR_TELEMETRY_STREAM_STATE;
        name = "ds.consumer.state";
        if (ev->error) sev = PR_SEVERITY_WARNING;
        break;
    case PR_DS_EVENT_PRODUCER_BATCH: kind = PR_TELEMETRY_STREAM_BATCH; name = "ds.producer.batch"; break;
    case PR_DS_EVENT_PRODUCER_DUPLICATE: kind = PR_TELEMETRY_STREAM_DUPLICATE; name = "ds.producer.duplicate"; break;
    case PR_DS_EVENT_AUTH_REFRESH: /* fresh credentials, and the request again */
        kind = PR_TELEMETRY_RETRY;
        name = "ds.auth.refresh";
        sev = PR_SEVERITY_WARNING;
        break;
    default: return;
    }
    pr_buf_init(&url);
    if (pr_telemetry_sanitize_url(&url, ev->url ? ev->url : "") || pr_buf_append(&url, "", 1)) {
        pr_buf_deinit(&url);
        return;
    }
    f[n++] = pr__telemetry_s("url", url.data);
    switch (ev->kind) {
    case PR_DS_EVENT_REQUEST_START:
    case PR_DS_EVENT_REQUEST_STOP:
    case PR_DS_EVENT_REQUEST_EXCEPTION:
        f[n++] = pr__telemetry_s("op", ev->op);
        f[n++] = pr__telemetry_s("method", ev->method);
        if (ev->kind == PR_DS_EVENT_REQUEST_START) break;
        f[n++] = pr__telemetry_i("status", ev->status);
        f[n++] = pr__telemetry_i("duration_ms", ev->duration_ms);
        if (ev->kind == PR_DS_EVENT_REQUEST_STOP) break;
        f[n++] = pr__telemetry_s("error", pr_errname(ev->error));
        f[n++] = pr__telemetry_s("detail", ev->err ? ev->err->msg : "");
        break;
    case PR_DS_EVENT_CONSUMER_BATCH:
        f[n++] = pr__telemetry_i("items", (int64_t)ev->items);
        f[n++] = pr__telemetry_i("bytes", (int64_t)ev->bytes);
        f[n++] = pr__telemetry_s("offset", ev->offset);
        break;
    case PR_DS_EVENT_CONSUMER_RECONNECT:
        f[n++] = pr__telemetry_i("attempt", ev->attempt);
        f[n++] = pr__telemetry_i("delay_ms", ev->delay_ms);
        f[n++] = pr__telemetry_s("reason", pr_errname(ev->error));
        f[n++] = pr__telemetry_s("detail", ev->err ? ev->err->msg : "");
        f[n++] = pr__telemetry_s("offset", ev->offset);
        break;
    case PR_DS_EVENT_AUTH_REFRESH:
        f[n++] = pr__telemetry_s("op", ev->op);
        f[n++] = pr__telemetry_s("method", ev->method);
        f[n++] = pr__telemetry_i("status", ev->status);
        f[n++] = pr__telemetry_i("attempt", ev->attempt);
        break;
    case PR_DS_EVENT_CONSUMER_STATE:
        f[n++] = pr__telemetry_s("state", pr__telemetry_ds_state(ev->state));
        f[n++] = pr__telemetry_s("offset", ev->offset);
        f[n++] = pr__telemetry_s("detail", ev->err ? ev->err->msg : "");
        break;
    default: /* the producer's */
        f[n++] = pr__telemetry_s("producer_id", ev->producer_id);
        f[n++] = pr__telemetry_i("epoch", ev->epoch);
        f[n++] = pr__telemetry_i("seq", ev->seq);
        f[n++] = pr__telemetry_i("items", (int64_t)ev->items);
        f[n++] = pr__telemetry_i("bytes", (int64_t)ev->bytes);
        f[n++] = pr__telemetry_i("duration_ms", ev->duration_ms);
        f[n++] = pr__telemetry_s("offset", ev->offset);
        break;
    }
    pr__telemetry_emit(t, kind, name, sev, f, n);
    pr_buf_deinit(&url);
}

/* ---- the reporter ---- */

enum { PR__TELEMETRY_REP_START = 1, PR__TELEMETRY_REP_END, PR__TELEMETRY_REP_GENERIC, PR__TELEMETRY_REP_EXCEPTION };

/* One queued event; its strings follow the struct. */
typedef struct pr__telemetry_rep_ev {
    int kind, severity;
    int64_t index;           /* event_session_index */
    int64_t wall_us;         /* timestamp */
    uint64_t id[2];          /* event_id (UUID4 bits) */
    int64_t duration_ms;     /* SESSION_END */
    const char *name, *data; /* GENERIC_EVENT: event_name, event_data (JSON) */
    const char *etype, *emsg, *trace; /* UNHANDLED_EXCEPTION */
    size_t size;             /* of the whole allocation */
} pr__telemetry_rep_ev;

struct pr_reporter {
    pr_reporter_opts o;      /* resolved; strings point at the copies */
    pr_url url;
    pr_http_client *own;     /* o.client, when it is the reporter's own */
    char *session, *platform, *version;
    size_t session_n, platform_n, version_n;
    int sessionless, ended;
    pr__telemetry_rep_ev **q;          /* ring of queue_max */
    size_t qhead, qlen;
    uint64_t qbytes;         /* the size of every event in q */
    int64_t next_index, start_ms;
    long pushed, flushed, dropped;
    pr_chan *kick;           /* flush requests (capacity 1) */
    pr_retry_policy send_retry; /* a batch's resends: max_send_retries, send_backoff, hooks */
    pr_task *task;           /* joined by stop */
    int running;             /* the task has not ended */
    pr__sync_fifo drained;        /* tasks waiting for flushed to move */
    int stopping, stopped;
};

static char pr__telemetry_rep_uuid[37];
static pid_t pr__telemetry_rep_uuid_pid;

/* UUID4 text of two random words. */
static void pr__telemetry_rep_uuid_text(char *out, const uint64_t *w) {
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    int i, k = 0;
    for (i = 0; i < 8; i++) {
        b[i] = (unsigned char)(w[0] >> (8 * i));
        b[8 + i] = (unsigned char)(w[1] >> (8 * i));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[k++] = '-';
        out[k++] = hex[b[i] >> 4];
        out[k++] = hex[b[i] & 15];
    }
    out[k] = 0;
}

/* One UUID per process, made anew after a fork. */
static const char *pr__telemetry_rep_process_uuid(void) {
    if (!pr__telemetry_rep_uuid[0] || pr__telemetry_rep_uuid_pid != getpid()) {
        uint64_t w[2];
        w[0] = pr__random_u64();
        w[1] = pr__random_u64();
        pr__telemetry_rep_uuid_text(pr__telemetry_rep_uuid, w);
        pr__telemetry_rep_uuid_pid = getpid();
    }
    return pr__telemetry_rep_uuid;
}

static int64_t pr__telemetry_rep_wall_us(const pr_reporter *r) {
    struct timespec ts;
    if (r->o.hooks.wall_clock_ms) return r->o.hooks.wall_clock_ms(r->o.hooks.user_data) * 1000;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Is telemetry on, by the switch and the environment? */
static int pr__telemetry_rep_enabled(const pr_reporter_opts *o) {
    const char *v;
    if (o->enabled) return o->enabled > 0;
    v = getenv(o->env_var ? o->env_var : "PRISTINE_TELEMETRY");
    if (!v) return 1;
    {
        pr_slice s = pr_slice_trim(pr_slice_cstr(v));
        return pr_slice_ieq(s, pr_slice_cstr("1")) || pr_slice_ieq(s, pr_slice_cstr("true")) ||
               pr_slice_ieq(s, pr_slice_cstr("yes")) || pr_slice_ieq(s, pr_slice_cstr("on"));
    }
}

/* A new event with room for its strings (each NUL-terminated, copied). */
static pr__telemetry_rep_ev *pr__telemetry_rep_ev_new(pr_reporter *r, int kind, int severity, const char *const *strs, size_t nstr) {
    size_t need = sizeof(pr__telemetry_rep_ev), i, len[5];
    pr__telemetry_rep_ev *e;
    char *p;
    const char **dst[5];
    for (i = 0; i < nstr; i++) need += (len[i] = strs[i] ? strlen(strs[i]) + 1 : 0);
    if (!(e = (pr__telemetry_rep_ev *)pr__alloc(need))) return NULL;
    memset(e, 0, sizeof *e);
    e->size = need;
    e->kind = kind;
    e->severity = severity;
    e->wall_us = pr__telemetry_rep_wall_us(r);
    e->id[0] = pr__random_u64();
    e->id[1] = pr__random_u64();
    dst[0] = &e->name;
    dst[1] = &e->data;
    dst[2] = &e->etype;
    dst[3] = &e->emsg;
    dst[4] = &e->trace;
    p = (char *)(e + 1);
    for (i = 0; i < nstr; i++) {
        if (!strs[i]) continue;
        memcpy(p, strs[i], len[i]);
        *dst[i] = p;
        p += len[i];
    }
    return e;
}

static void pr__telemetry_rep_ev_free(pr__telemetry_rep_ev *e) {
    if (e) pr__free(e, e->size);
}

/* Ask the task to flush (never blocks). */
static void pr__telemetry_rep_kick(pr_reporter *r) {
    int one = 1;
    pr_chan_send(r->kick, &one, 0); /* full: a flush is asked for already */
}

/* Queue n events all or nothing; they get consecutive indices. */
static int pr__telemetry_rep_push(pr_reporter *r, pr__telemetry_rep_ev **evs, size_t n) {
    uint64_t bytes = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        if (!evs[i]) goto drop;
        bytes += evs[i]->size;
    }
    if (r->stopped) goto drop;
    if (r->qlen + n > (size_t)r->o.queue_max || r->qbytes + bytes > (uint64_t)r->o.queue_max_bytes) {
        PR__LOG(PR_LEVEL_WARN, "telemetry", "queue full (%d events, %lld bytes): dropping %lu", r->o.queue_max,
                (long long)r->o.queue_max_bytes, (unsigned long)n);
        goto drop;
    }
    r->qbytes += bytes;
    for (i = 0; i < n; i++) {
        evs[i]->index = r->next_index++;
        r->q[(r->qhead + r->qlen) % (size_t)r->o.queue_max] = evs[i];
        r->qlen++;
    }
    r->pushed += (long)n;
    if (r->qlen >= (size_t)r->o.batch_size) pr__telemetry_rep_kick(r);
    return 1;
drop:
    for (i = 0; i < n; i++) pr__telemetry_rep_ev_free(evs[i]);
    r->dropped += (long)n;
    return 0;
}

static const char *pr__telemetry_rep_severity(int s) {
    switch (s) {
    case PR_SEVERITY_DEBUG: return "DEBUG";
    case PR_SEVERITY_WARNING: return "WARNING";
    case PR_SEVERITY_ERROR: return "ERROR";
    case PR_SEVERITY_CRITICAL: return "CRITICAL";
    default: return "INFO";
    }
}

/* "2026-01-02T03:04:05.678901Z" */
static void pr__telemetry_rep_timestamp(char *out, size_t cap, int64_t wall_us) {
    time_t t = (time_t)(wall_us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (long)(((wall_us % 1000000) + 1000000) % 1000000));
}

/* A batch: the envelope and events [from, from + n) of the queue. */
static int pr__telemetry_rep_batch(pr_reporter *r, pr_buf *b, size_t n) {
    pr_json_writer w;
    size_t i;
    char ts[96], id[37];
    pr_buf_clear(b);
    pr_json_writer_init(&w, b);
    pr_json_begin_object(&w);
    pr_json_key(&w, "session_id", 10);
    pr_json_write_string(&w, r->session, strlen(r->session));
    pr_json_key(&w, "platform", 8);
    pr_json_write_string(&w, r->platform, strlen(r->platform));
    pr_json_key(&w, "sdk_version", 11);
    pr_json_write_string(&w, r->version, strlen(r->version));
    pr_json_key(&w, "process_uuid", 12);
    pr_json_write_string(&w, pr__telemetry_rep_process_uuid(), 36);
    pr_json_key(&w, "events", 6);
    pr_json_begin_array(&w);
    for (i = 0; i < n; i++) {
        const pr__telemetry_rep_ev *e = r->q[(r->qhead + i) % (size_t)r->o.queue_max];
        static const char *const kinds[] = { "", "SESSION_START", "SESSION_END", "GENERIC_EVENT", "UNHANDLED_EXCEPTION" };
        pr_json_begin_object(&w);
        pr_json_key(&w, "event", 5);
        pr_json_write_string(&w, kinds[e->kind], strlen(kinds[e->kind]));
        pr__telemetry_rep_uuid_text(id, e->id);
        pr_json_key(&w, "event_id", 8);
        pr_json_write_string(&w, id, 36);
        pr_json_key(&w, "event_session_index", 19);
        pr_json_write_int(&w, e->index);
        pr_json_key(&w, "severity", 8);
        pr_json_write_string(&w, pr__telemetry_rep_severity(e->severity), strlen(pr__telemetry_rep_severity(e->severity)));
        pr__telemetry_rep_timestamp(ts, sizeof ts, e->wall_us);
        pr_json_key(&w, "timestamp", 9);
        pr_json_write_string(&w, ts, strlen(ts));
        if (e->kind == PR__TELEMETRY_REP_GENERIC) {
            pr_json_doc *d = NULL;
            pr_json_key(&w, "event_name", 10);
            pr_json_write_string(&w, e->name, strlen(e->name));
            pr_json_key(&w, "event_data", 10);
            if (e->data && pr_json_parse(&d, e->data, strlen(e->data), NULL, NULL) == PR_OK)
                pr_json_write_value(&w, pr_json_root(d));
            else {
                pr_json_begin_object(&w);
                pr_json_end_object(&w);
            }
            pr_json_doc_destroy(d);
        } else if (e->kind == PR__TELEMETRY_REP_EXCEPTION) {
            pr_json_key(&w, "error_type", 10);
            pr_json_write_string(&w, e->etype, strlen(e->etype));
            pr_json_key(&w, "error_message", 13);
            pr_json_write_string(&w, e->emsg ? e->emsg : "", e->emsg ? strlen(e->emsg) : 0);
            if (e->trace) {
                pr_json_key(&w, "traceback", 9);
                pr_json_write_string(&w, e->trace, strlen(e->trace));
            }
        } else if (e->kind == PR__TELEMETRY_REP_END) {
            char dur[96];
            int64_t ms = e->duration_ms;
            if (ms % 1000) /* Python's timedelta text: the fraction only when there is one */
                snprintf(dur, sizeof dur, "%lld:%02d:%02d.%06d", (long long)(ms / 3600000), (int)(ms / 60000 % 60),
                         (int)(ms / 1000 % 60), (int)(ms % 1000) * 1000);
            else
                snprintf(dur, sizeof dur, "%lld:%02d:%02d", (long long)(ms / 3600000), (int)(ms / 60000 % 60),
                         (int)(ms / 1000 % 60));
            pr_json_key(&w, "duration", 8);
            pr_json_write_string(&w, dur, strlen(dur));
        }
        pr_json_end_object(&w);
    }
    pr_json_end_array(&w);
    pr_json_end_object(&w);
    return pr_json_writer_finish(&w);
}

/* The reporter's classifier: a 2xx answer is done, cancellation stops,
   anything else (no answer, another status) is worth sending again. */
static int pr__telemetry_rep_classify(int outcome, int64_t *after_ms, void *user_data) {
    PR__UNUSED(after_ms);
    PR__UNUSED(user_data);
    if (outcome == PR_OK) return PR_RETRY_OK;
    return outcome == PR_ECANCELED ? PR_RETRY_FAIL : PR_RETRY_AGAIN;
}

/* POST one batch on the shared retry loop: max_send_retries resends,
   send_backoff between them, through the hooks. */
static int pr__telemetry_rep_send(pr_reporter *r, const pr_buf *b) {
    static const char *const h[] = { "Content-Type: application/json", NULL };
    pr_retry st;
    int rc, status;
    if ((rc = pr_retry_begin(&st, &r->send_retry)) != PR_OK) return rc;
    do {
        pr_http_request req;
        pr_http_result res;
        memset(&req, 0, sizeof req);
        req.method = "POST";
        req.url = &r->url;
        req.headers = h;
        req.body = b->data;
        req.body_len = b->len;
        req.retry = &pr__retry_off;
        memset(&res, 0, sizeof res);
        rc = pr_http_client_fetch(r->o.client, &res, &req, NULL, pr_deadline_in(r->o.send_timeout_ms));
        status = res.status;
        pr_http_result_deinit(&res);
        if (rc == PR_OK && (status < 200 || status > 299)) rc = PR_EHTTP;
    } while (pr_retry_next(&st, &rc, PR_FOREVER));
    if (rc != PR_OK && rc != PR_ECANCELED)
        PR__LOG(PR_LEVEL_WARN, "telemetry", "a batch could not be sent (%s, status %d): dropped", pr_errname(rc),
                status);
    return rc;
}

/* Send everything queued, in batches. */
static int pr__telemetry_rep_flush_all(pr_reporter *r) {
    pr_buf b;
    int rc = PR_OK;
    pr_buf_init(&b);
    while (r->qlen && rc != PR_ECANCELED) {
        size_t n = PR__MIN(r->qlen, (size_t)r->o.batch_size), i;
        int sent;
        if ((rc = pr__telemetry_rep_batch(r, &b, n)) != PR_OK) break;
        sent = pr__telemetry_rep_send(r, &b);
        rc = sent == PR_ECANCELED ? PR_ECANCELED : PR_OK;
        for (i = 0; i < n; i++) {
            pr__telemetry_rep_ev *e = r->q[(r->qhead + i) % (size_t)r->o.queue_max];
            r->qbytes -= e->size;
            pr__telemetry_rep_ev_free(e);
        }
        r->qhead = (r->qhead + n) % (size_t)r->o.queue_max;
        r->qlen -= n;
        r->flushed += (long)n; /* sent or given up on: a drain never hangs on a dead endpoint */
        if (sent) r->dropped += (long)n;
        pr__sync_fifo_wake_all(&r->drained, 0);
    }
    pr_buf_deinit(&b);
    return rc;
}

static int pr__telemetry_rep_task(void *arg) {
    pr_reporter *r = (pr_reporter *)arg;
    for (;;) {
        int one, rc = pr_chan_recv(r->kick, &one, pr_deadline_in(r->o.flush_interval_ms));
        if (rc == PR_ECANCELED || rc == PR_ECLOSED) break;
        if (pr__telemetry_rep_flush_all(r) == PR_ECANCELED) break;
        if (r->stopping && !r->qlen) break;
    }
    r->running = 0;
    pr__sync_fifo_wake_all(&r->drained, 0);
    return 0;
}

static void pr__telemetry_rep_free(pr_reporter *r) {
    while (r->qlen) {
        pr__telemetry_rep_ev_free(r->q[r->qhead]);
        r->qhead = (r->qhead + 1) % (size_t)r->o.queue_max;
        r->qlen--;
    }
    pr__free(r->q, (size_t)r->o.queue_max * sizeof *r->q);
    pr_chan_destroy(r->kick);
    pr_http_client_destroy(r->own);
    pr_url_deinit(&r->url);
    pr__free(r->session, r->session_n);
    pr__free(r->platform, r->platform_n);
    pr__free(r->version, r->version_n);
    pr__free(r, sizeof *r);
}

int pr_reporter_start(pr_reporter **out, const pr_reporter_opts *opts, pr_err_info *err) {
    static const pr_backoff tel = PR_BACKOFF_TELEMETRY;
    pr_reporter *r;
    struct utsname un;
    char sess[64];
    int rc = PR_OK;
    memset(&un, 0, sizeof un);
    if (err) memset(err, 0, sizeof *err);
    if (out) *out = NULL;
    if (!out || !opts || !opts->url) return pr__err_set(err, PR_EINVAL, 0, "reporter: %s", "out and opts->url are required");
    if (opts->batch_size < 0 || opts->flush_interval_ms < 0 || opts->queue_max < 0 || opts->queue_max_bytes < 0 ||
        opts->send_timeout_ms < 0 || opts->max_send_retries < PR_RETRY_OFF || opts->flush_timeout_ms < 0)
        return pr__err_set(err, PR_EINVAL, 0, "reporter: %s", "a negative limit or timeout");
    if (!pr__telemetry_rep_enabled(opts)) return PR_OK;
    if (!(r = (pr_reporter *)pr__calloc(1, sizeof *r))) return pr__err_set(err, PR_ENOMEM, 0, "reporter: %s", "out of memory");
    r->o = *opts;
    r->o.batch_size = PR__DEF(r->o.batch_size, 100);
    r->o.flush_interval_ms = PR__DEF(r->o.flush_interval_ms, 10000);
    r->o.queue_max = PR__DEF(r->o.queue_max, 10000);
    r->o.queue_max_bytes = PR__DEF(r->o.queue_max_bytes, (int64_t)8 << 20);
    r->o.send_timeout_ms = PR__DEF(r->o.send_timeout_ms, 5000);
    r->o.max_send_retries = PR__DEF(r->o.max_send_retries, 3);
    r->o.flush_timeout_ms = PR__DEF(r->o.flush_timeout_ms, 30000);
    if (!r->o.send_backoff.base_ms) r->o.send_backoff = tel;
    r->send_retry.max_retries = r->o.max_send_retries;
    r->send_retry.backoff = r->o.send_backoff;
    r->send_retry.classify = pr__telemetry_rep_classify;
    r->send_retry.hooks = r->o.hooks;
    r->start_ms = pr_now();
    if (pr_backoff_check(&r->o.send_backoff) != PR_OK)
        rc = pr__err_set(err, PR_EINVAL, 0, "reporter: %s", "invalid send_backoff");
    else if (pr_url_parse(&r->url, opts->url, strlen(opts->url), err) != PR_OK)
        rc = PR_EINVAL;
    if (!rc) rc = pr__session_client(opts->client, &opts->tls, &r->o.client, &r->own, "telemetry reporter", err);
    memset(&r->o.tls, 0, sizeof r->o.tls); /* the own client has copied what it needs */
    if (!rc && !(r->q = (pr__telemetry_rep_ev **)pr__calloc((size_t)r->o.queue_max, sizeof *r->q))) rc = PR_ENOMEM;
    if (!rc && pr_chan_create(&r->kick, sizeof(int), 1) != PR_OK) rc = PR_ENOMEM;
    if (!rc) {
        r->sessionless = !opts->session_id;
        if (r->sessionless) {
            uint64_t w[2];
            char u[37];
            w[0] = pr__random_u64();
            w[1] = pr__random_u64();
            pr__telemetry_rep_uuid_text(u, w);
            snprintf(sess, sizeof sess, "sessionless-%s", u);
        }
        if (!(r->session = pr__strdup(r->sessionless ? sess : opts->session_id, &r->session_n))) rc = PR_ENOMEM;
    }
    if (!rc && !opts->platform && uname(&un) != 0) strcpy(un.sysname, "unknown");
    if (!rc && !(r->platform = pr__strdup(opts->platform ? opts->platform : un.sysname, &r->platform_n)))
        rc = PR_ENOMEM;
    if (!rc && !(r->version = pr__strdup(opts->sdk_version ? opts->sdk_version : PRISTINE_VERSION, &r->version_n)))
        rc = PR_ENOMEM;
    r->o.url = r->o.session_id = r->o.platform = r->o.sdk_version = r->o.env_var = NULL;
    if (!rc && !r->sessionless) {
        pr__telemetry_rep_ev *e = pr__telemetry_rep_ev_new(r, PR__TELEMETRY_REP_START, PR_SEVERITY_INFO, NULL, 0);
        if (!pr__telemetry_rep_push(r, &e, 1)) rc = PR_ENOMEM;
    }
    if (!rc) rc = pr_go(&r->task, pr__telemetry_rep_task, r, NULL);
    if (rc) {
        if (!err || err->code != rc) pr__err_set(err, rc, 0, "reporter: %s", pr_strerror(rc));
        pr__telemetry_rep_free(r);
        return rc;
    }
    r->running = 1;
    *out = r;
    return PR_OK;
}

int pr_reporter_log(pr_reporter *r, const char *name, const char *data, int severity) {
    const char *strs[2];
    pr__telemetry_rep_ev *e;
    if (!r || !name) return 0;
    strs[0] = name;
    strs[1] = data;
    e = pr__telemetry_rep_ev_new(r, PR__TELEMETRY_REP_GENERIC, severity, strs, 2);
    return pr__telemetry_rep_push(r, &e, 1);
}

/* event_data from fields. */
static int pr__telemetry_rep_fields_json(pr_buf *b, const pr_telemetry_field *f, size_t n) {
    pr_json_writer w;
    size_t i;
    pr_json_writer_init(&w, b);
    pr_json_begin_object(&w);
    for (i = 0; i < n; i++) {
        pr_json_key(&w, f[i].key, strlen(f[i].key));
        switch (f[i].type) {
        case PR_TELEMETRY_INT: pr_json_write_int(&w, f[i].i); break;
        case PR_TELEMETRY_DOUBLE: pr_json_write_double(&w, f[i].d); break;
        case PR_TELEMETRY_BOOL: pr_json_write_bool(&w, f[i].i != 0); break;
        default: pr_json_write_string(&w, f[i].s ? f[i].s : "", f[i].s ? strlen(f[i].s) : 0); break;
        }
    }
    pr_json_end_object(&w);
    return pr_json_writer_finish(&w) == PR_OK && pr_buf_append(b, "", 1) == PR_OK ? PR_OK : PR_ENOMEM;
}

int pr_reporter_log_fields(pr_reporter *r, const char *name, const pr_telemetry_field *fields, size_t n,
                           int severity) {
    const char *strs[2];
    pr__telemetry_rep_ev *e;
    pr_buf b;
    int ok;
    if (!r || !name || (n && !fields)) return 0;
    pr_buf_init(&b);
    if (pr__telemetry_rep_fields_json(&b, fields, n) != PR_OK) {
        pr_buf_deinit(&b);
        r->dropped++;
        return 0;
    }
    strs[0] = name;
    strs[1] = b.data;
    e = pr__telemetry_rep_ev_new(r, PR__TELEMETRY_REP_GENERIC, severity, strs, 2);
    ok = pr__telemetry_rep_push(r, &e, 1);
    pr_buf_deinit(&b);
    return ok;
}

static void pr__telemetry_forward(pr_telemetry *t, const pr_telemetry_event *ev) {
    char name[96];
    int sev = ev->kind == PR_TELEMETRY_REQUEST_ERROR || ev->kind == PR_TELEMETRY_FUTURE_FAILED ? PR_SEVERITY_ERROR
                                                                                             : PR_SEVERITY_INFO;
    snprintf(name, sizeof name, "pristine.%s", ev->name);
    pr_reporter_log_fields(t->o.reporter, name, ev->fields, ev->nfields, sev);
}

int pr_reporter_is_user_error(const pr_reporter_error *e) {
    const pr_reporter_error *seen[16];
    int n = 0, i;
    while (e && n < 16) {
        for (i = 0; i < n; i++)
            if (seen[i] == e) return 0; /* a cycle */
        seen[n++] = e;
        if (e->category == PR_CATEGORY_USER) return 1;
        if (e->status_code >= 400 && e->status_code < 500 && e->status_code != 408 && e->status_code != 410 &&
            e->status_code != 429)
            return 1;
        e = e->cause;
    }
    return 0;
}

/* The event for an error: user_error or UNHANDLED_EXCEPTION. */
static pr__telemetry_rep_ev *pr__telemetry_rep_error_ev(pr_reporter *r, const pr_reporter_error *e, int severity) {
    const char *type = e->type ? e->type : "Error";
    if (pr_reporter_is_user_error(e)) {
        pr_telemetry_field f[4];
        const char *strs[2];
        pr__telemetry_rep_ev *ev;
        size_t n = 0;
        pr_buf b;
        const pr_reporter_error *s = e;
        /* the status of the error, or of the cause that made it a user error */
        while (s && !s->status_code && s->cause) s = s->cause;
        f[n++] = pr__telemetry_s("error_type", type);
        if (e->message && *e->message) f[n++] = pr__telemetry_s("message", e->message);
        if (s && s->status_code) f[n++] = pr__telemetry_i("status_code", s->status_code);
        if (e->body) f[n++] = pr__telemetry_s("body", e->body);
        pr_buf_init(&b);
        if (pr__telemetry_rep_fields_json(&b, f, n) != PR_OK) {
            pr_buf_deinit(&b);
            return NULL;
        }
        strs[0] = "user_error";
        strs[1] = b.data;
        ev = pr__telemetry_rep_ev_new(r, PR__TELEMETRY_REP_GENERIC, PR_SEVERITY_WARNING, strs, 2);
        pr_buf_deinit(&b);
        return ev;
    } else {
        const char *strs[5];
        strs[0] = NULL;
        strs[1] = NULL;
        strs[2] = type;
        strs[3] = e->message ? e->message : "";
        strs[4] = e->traceback;
        return pr__telemetry_rep_ev_new(r, PR__TELEMETRY_REP_EXCEPTION, severity, strs, 5);
    }
}

int pr_reporter_log_exception(pr_reporter *r, const pr_reporter_error *e, int severity) {
    pr__telemetry_rep_ev *ev;
    int ok;
    if (!r || !e) return 0;
    ev = pr__telemetry_rep_error_ev(r, e, severity);
    ok = pr__telemetry_rep_push(r, &ev, 1);
    if (ok) pr__telemetry_rep_kick(r);
    return ok;
}

/* Wait until flushed reaches target (or the task is gone). */
static int pr__telemetry_rep_wait(pr_reporter *r, long target, int64_t deadline) {
    deadline = pr_deadline_min(deadline, pr_deadline_in(r->o.flush_timeout_ms));
    while (r->flushed < target && r->running) {
        pr__sync_waiter me;
        int rc;
        memset(&me, 0, sizeof me);
        rc = pr__sync_fifo_park(&r->drained, &me, deadline);
        if (rc == PR_ETIMEDOUT || rc == PR_ECANCELED) return rc;
    }
    return r->flushed >= target ? PR_OK : PR_ETIMEDOUT;
}

int pr_reporter_flush(pr_reporter *r, int64_t deadline) {
    if (!r) return PR_EINVAL;
    pr__telemetry_rep_kick(r);
    return pr__telemetry_rep_wait(r, r->pushed, deadline);
}

static pr__telemetry_rep_ev *pr__telemetry_rep_end_ev(pr_reporter *r) {
    pr__telemetry_rep_ev *e = pr__telemetry_rep_ev_new(r, PR__TELEMETRY_REP_END, PR_SEVERITY_INFO, NULL, 0);
    if (e) e->duration_ms = pr_now() - r->start_ms;
    return e;
}

int pr_reporter_log_fatal(pr_reporter *r, const pr_reporter_error *e, int severity, int64_t deadline) {
    pr__telemetry_rep_ev *evs[2];
    size_t n = 1;
    int rc;
    if (!r || !e) return PR_EINVAL;
    evs[0] = pr__telemetry_rep_error_ev(r, e, severity);
    if (!r->sessionless && !r->ended) evs[n++] = pr__telemetry_rep_end_ev(r);
    if (!pr__telemetry_rep_push(r, evs, n)) return PR_ELIMIT;
    if (n == 2) r->ended = 1;
    pr__telemetry_rep_kick(r);
    rc = pr__telemetry_rep_wait(r, r->pushed, deadline);
    if (rc == PR_OK) PR__LOG(PR_LEVEL_INFO, "telemetry", "exception logged for session %s", r->session);
    return rc;
}

int pr_reporter_stop(pr_reporter *r, int64_t deadline) {
    int rc;
    if (!r || r->stopped) return PR_OK;
    if (!r->sessionless && !r->ended) {
        pr__telemetry_rep_ev *e = pr__telemetry_rep_end_ev(r);
        if (pr__telemetry_rep_push(r, &e, 1)) r->ended = 1;
    }
    r->stopping = 1;
    pr__telemetry_rep_kick(r);
    rc = pr__telemetry_rep_wait(r, r->pushed, deadline);
    if (r->running) pr_cancel(r->task); /* the flush timed out: give up on the rest */
    /* it ends promptly once cancelled or drained; a cancelled caller cancels it */
    if (pr_join(r->task, NULL, PR_FOREVER) != PR_OK) pr__sched_join_cleanup(r->task);
    r->stopped = 1;
    return rc;
}

void pr_reporter_destroy(pr_reporter *r) {
    if (!r) return;
    if (!r->stopped) pr__sched_join_cleanup(r->task); /* from a cancelled task too */
    pr__telemetry_rep_free(r);
}

void pr_reporter_counts(const pr_reporter *r, long *pushed, long *flushed, long *dropped) {
    if (pushed) *pushed = r ? r->pushed : 0;
    if (flushed) *flushed = r ? r->flushed : 0;
    if (dropped) *dropped = r ? r->dropped : 0;
}

const char *pr_reporter_session_id(const pr_reporter *r) { return r ? r->session : ""; }

/* ==== end of the implementation: undefine the internal PR__ macros ====
   (test builds keep them: the tests share this translation unit and use them) */
#ifndef PRISTINE_TESTING
#undef PR__ASAN
#undef PR__ASSERT
#undef PR__BASE_CORO_HAVE_ASM
#undef PR__BASE_CORO_UCONTEXT
#undef PR__CLIENT_DEF_CONNECT_MS
#undef PR__CLIENT_DEF_FETCH_MAX
#undef PR__CLIENT_DEF_POOL_IDLE_MS
#undef PR__CLIENT_DEF_POOL_MAX
#undef PR__CLIENT_DRAIN_MAX
#undef PR__CLIENT_DRAIN_MS
#undef PR__CLIENT_MAX_REDIRECTS
#undef PR__CONTAINER_OF
#undef PR__CORO_A64_JUMP
#undef PR__CORO_A64_LOADFP
#undef PR__CORO_A64_SAVEFP
#undef PR__CORO_ALIGN16
#undef PR__CORO_ARM_FUNC
#undef PR__CORO_ARM_LOADFP
#undef PR__CORO_ARM_MODE
#undef PR__CORO_ARM_SAVEFP
#undef PR__CORO_ASM_HEAD
#undef PR__CORO_BOOT
#undef PR__CORO_CANARY
#undef PR__CORO_CANARY_WORDS
#undef PR__CORO_FP
#undef PR__CORO_FPTAG
#undef PR__CORO_FRAME
#undef PR__CORO_HIDDEN
#undef PR__CORO_MAX_STACK
#undef PR__CORO_MEM_MIN
#undef PR__CORO_MIN_STACK
#undef PR__CORO_POOL_MAX
#undef PR__CORO_RV_LOADFP
#undef PR__CORO_RV_SAVEFP
#undef PR__CORO_STACK_MAP_FLAGS
#undef PR__CORO_STR
#undef PR__CORO_STR2
#undef PR__CORO_SWAP
#undef PR__CORO_SYM
#undef PR__CORO_TRIM_BATCH
#undef PR__CORO_TRIM_NS
#undef PR__CORO_X86_LOADFP
#undef PR__CORO_X86_SAVEFP
#undef PR__DEF
#undef PR__DS_DEF_AUTH_REFRESHES
#undef PR__DS_DEF_CHUNK
#undef PR__DS_MAX_FIELDS
#undef PR__DS_MAX_OFFSET
#undef PR__DS_NUM
#undef PR__DS_PRODUCER_DEF_BATCH
#undef PR__DS_PRODUCER_DEF_BUFFER
#undef PR__DS_PRODUCER_DEF_DELIVERY
#undef PR__DS_PRODUCER_DEF_REQUEST
#undef PR__DS_READ_DEF_HEALTHY
#undef PR__DS_READ_DEF_IDLE
#undef PR__DS_READ_DEF_OPEN_ATTEMPTS
#undef PR__DS_READ_QUICK_MAX_MS
#undef PR__DS_READ_QUICK_MS
#undef PR__DS_READ_TO_POLL
#undef PR__DS_READ_WORK
#undef PR__DS_VIEW
#undef PR__ERRORS
#undef PR__ERR_ENUM
#undef PR__ERR_NAME
#undef PR__ERR_TEXT
#undef PR__EVENTSOURCE_DEF_HEALTHY
#undef PR__EVENTSOURCE_DEF_IDLE
#undef PR__EVENTSOURCE_DEF_MAX_LEI
#undef PR__EVENTSOURCE_DEF_MAX_RETRY
#undef PR__EVENTSOURCE_DEF_OPEN_ATTEMPTS
#undef PR__EVENTSOURCE_DEF_RETRY
#undef PR__EVENTSOURCE_MAX_FIELDS
#undef PR__EVENTSOURCE_SHORT_MS
#undef PR__HAVE_KQUEUE
#undef PR__HTTP_BODY_WORK
#undef PR__HTTP_CHUNK_OUT
#undef PR__HTTP_CR
#undef PR__HTTP_CTL
#undef PR__HTTP_DEF_CHUNK_LINE
#undef PR__HTTP_DEF_FIELDS
#undef PR__HTTP_DEF_HEAD
#undef PR__HTTP_DEF_INTERIM
#undef PR__HTTP_DEF_RECV
#undef PR__HTTP_FIRST_BODY
#undef PR__HTTP_FOLD_WORK
#undef PR__HTTP_HC
#undef PR__HTTP_HC16
#undef PR__HTTP_HC4
#undef PR__HTTP_HC64
#undef PR__HTTP_HEAD_ROOM
#undef PR__HTTP_INLINE_FIELDS
#undef PR__HTTP_SHRINK_FILLS
#undef PR__HTTP_TCHAR
#undef PR__JSON_BIG
#undef PR__JSON_HDR
#undef PR__JSON_INT
#undef PR__JSON_MAXDIG
#undef PR__JSON_SKIP_WS
#undef PR__JSON_TYPE
#undef PR__JSON_WORK
#undef PR__JSON_W_DONE
#undef PR__JSON_W_HAS
#undef PR__JSON_W_KEY
#undef PR__LIKELY
#undef PR__LOG
#undef PR__MAX
#undef PR__MAYBE_UNUSED
#undef PR__MIN
#undef PR__NET_CACHE_MS
#undef PR__NET_CACHE_N
#undef PR__NET_HOST_MAX
#undef PR__NET_IDLE_S
#undef PR__NET_MAX_ADDRS
#undef PR__NET_PIPE_CAP
#undef PR__NET_POOL_MAX
#undef PR__NOINLINE
#undef PR__RETRY_BACKOFF_SATURATE
#undef PR__RFUTURE_BILLING_RESET_MS
#undef PR__RFUTURE_BILLING_SLEEP_MS
#undef PR__RFUTURE_NAMES
#undef PR__RFUTURE_PREFIX_MAX
#undef PR__RFUTURE_STR_MAX
#undef PR__SCHED_BATCH
#undef PR__SCHED_EV_RECEIPT
#undef PR__SCHED_IO_BUDGET
#undef PR__SCHED_POLLER_EPOLL
#undef PR__SCHED_POLLER_KQUEUE
#undef PR__SCHED_POLLER_POLL
#undef PR__SCHED_STEP_ROUNDS
#undef PR__SCHED_TASK_OF_TIMER
#undef PR__SCHED_TF_SWEEP
#undef PR__SSE_DEF_MAX_EVENT
#undef PR__SSE_DEF_MAX_LINE
#undef PR__SSE_HI
#undef PR__SSE_WORK
#undef PR__THREAD
#undef PR__TLS_CA
#undef PR__TLS_MAX_ALPN
#undef PR__TLS_NOT_TLS
#undef PR__TLS_X
#undef PR__UNLIKELY
#undef PR__UNUSED
#undef PR__URL_AT
#undef PR__URL_IS
#undef PR__URL_REBASE
#undef PR__URL_W
#undef PR__VALGRIND
#endif
#endif /* PRISTINE_IMPLEMENTATION */

/*
MIT License

Copyright (c) 2026 the pristine.h authors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
*/

/*
REVISION HISTORY
  Every public change: a new or renamed name, a changed signature, a changed
  default or a changed meaning. Newest first. While the version is 0.x a
  release may break the API; each break is listed here.

  unreleased (after 0.1.0)
    Renamed or removed
      PR_DS_CONNECTING, PR_DS_LIVE, PR_DS_UP_TO_DATE, PR_DS_CLOSED,
      PR_DS_STOPPED           are PR_DS_CONSUMER_CONNECTING, _LIVE,
                              _UP_TO_DATE, _CLOSED, _STOPPED: the consumer's
                              states, apart from the PR_DS_LIVE_* read modes
      PR_BACKOFF_POLL         removed: it was PR_BACKOFF_SUBMIT under another
                              name (1 s doubling to 30 s, no jitter); use that
      pr_throttle_*, pr_heartbeat_*
                              moved from rfuture to the new module session
                              (names unchanged); the heartbeat's warning is
                              logged under the module name "session" (was
                              "rfuture")
      PR_SEVERITY_*           moved from rfuture to base (names unchanged):
                              the severity of any module's events
      pr_rfuture_poller_opts.path
                              is profile.path (pr_rfuture_profile)
      pr_rfuture_poller_opts.on_event, on_queue_state, event_user_data,
      queue_user_data         are observer.on_event, observer.on_queue_state
                              and observer.user_data (pr_rfuture_observer):
                              one user_data for both callbacks
      pr_rfuture_poller_opts.err, pr_rfuture_opts.err
                              removed: the err parameter of
                              pr_rfuture_poller_create and pr_rfuture_submit
      pr_breaker_opts.on_change, .user_data
                              are .observer.on_change and .observer.user_data
                              (a pr_breaker_observer, like the other
                              modules' observers): opts.observer.on_change =
                              pr_telemetry_breaker_hook
      pr_ds_read_error        is pr_ds_read_last_error
      pr_ds_producer_error    is pr_ds_producer_last_error
      pr_ds_read_last_error, pr_ds_producer_last_error,
      pr_ds_consumer_last_error
                              return PR_OK / PR_EINVAL like every
                              *_last_error (was: the PR_DS_* meaning); the
                              meaning is out->meaning
      pr_ds_opts.err, pr_ds_read_opts.err
                              removed: the err parameter of pr_ds_open and
                              pr_ds_read_open
      pr_ds_consumer_opts.telemetry
                              removed: observer.on_event = pr_telemetry_ds_hook
                              with observer.user_data = the hub (the event
                              "ds.consumer.state" keeps its fields)
      pr_future_error         is pr_future_last_error: an object that lives on
                              answers with *_last_error
      pr_net_opts.err, pr_tls_opts.err, pr_sse_stream_opts.err
                              removed: the call that creates the object takes
                              pr_err_info *err (below)
      pr_sse_opts             is pr_sse_decoder_opts: the decoder's options,
                              apart from pr_sse_stream_opts (pr_sse_open's)
      PR_SSE_MORE             is PR_SSE_DECODER_MORE (only the decoder returns it)
      pr_sse_decoder_retry    is pr_sse_decoder_retry_ms (like pr_sse_retry_ms)
      pr_sse_stream_opts.headers_user_data
                              is pr_sse_stream_opts.user_data: the argument of
                              the options' own callbacks (headers_fn)
      pr_sse_stream_opts.on_reconnect, .reconnect_user_data
                              are .observer.on_reconnect and .observer.user_data
                              (new type pr_sse_observer): telemetry installs
                              there (observer.on_reconnect =
                              pr_telemetry_sse_hook, observer.user_data = hub)
    Changed signature
      pr_heartbeat_start, pr_reporter_start
                              take pr_err_info *err last (they can fail for
                              more than a bad argument now: their own client's
                              TLS files); the reason was only logged
      pr_http_client_opts     on_event + event_user_data are the member
                              observer, a pr_http_observer { on_event,
                              user_data }: install telemetry with
                              observer.on_event = pr_telemetry_http_hook,
                              observer.user_data = the hub
      pr_http_request         headers is const char *const *: NULL-terminated
                              field lines "Name: value", the one header form
                              of the library (was pr_http_header slices);
                              nheaders removed; a bad line is PR_EINVAL with
                              a message naming its field
      pr_http_exchange        takes pr_err_info *err just before the deadline
                              (it creates the response; the detail also
                              stays in pr_conn_last_error(conn))
      pr_http_client_create   takes pr_err_info *err last (was opts->err);
                              pr_http_client_opts.err removed
      pr_http_client_request, pr_http_client_get, pr_http_client_send,
      pr_http_client_fetch    take pr_err_info *err just before the deadline:
                              the call's detail (NULL = not wanted; zeroed on
                              success; for fetch, a final status >= 400 puts
                              http_status and the body's start there);
                              pr_http_request.err and pr_http_result.err
                              removed (so is pr_ds_result's http.err: the ds
                              operations take an err parameter)
      pr_tcp_connect, pr_tls_client, pr_sse_open
                              take pr_err_info *err before the deadline (was
                              opts->err); NULL = not wanted, zeroed on success
      pr_dns_resolve, pr_tls_server
                              take pr_err_info *err before the deadline (their
                              detail had no way out)
      pr_tcp_listen, pr_tls_server_cfg_create
                              take pr_err_info *err last (pr_tcp_listen: was
                              errno; sys_errno holds it now)
      pr_retry_hint_ms        takes int64_t max_ms before out (<= 0 = 60000);
                              a hint above it is cut to it (was: refused, so
                              a server asking for 120 s got the short backoff)
      pr_rfuture_poller_create
                              takes pr_err_info *err last (NULL = not
                              wanted; was opts->err)
      pr_rfuture_submit       takes pr_err_info *err before the deadline
                              (NULL = not wanted; was opts->err); an
                              invalid argument fills it too
      pr_ds_open, pr_ds_read_open, pr_ds_producer_create, pr_ds_consumer_start
                              take pr_err_info *err last (NULL = not wanted):
                              why the call failed
      pr_ds_create, pr_ds_head, pr_ds_delete, pr_ds_append, pr_ds_close
                              take pr_err_info *err before the deadline (NULL
                              = not wanted): a failure's detail, cleared on
                              success
    New options and fields
      pr_tls_opts             half_duplex (0 = auto: full duplex from
                              pr_tls_client, half duplex for pr_http_client's
                              connections; 1 = half: one 16,709-byte record
                              buffer for both directions; -1 = full: 33,178
                              bytes; else PR_EINVAL)
      pr_json_to_buf          new: a parsed value as compact JSON text,
                              appended to a pr_buf (pr_buf_deinit frees it)
      pr_err_info             meaning: what a protocol says the failure is
                              (PR_DS_* for Durable Streams calls and objects)
      pr_http_observer        a client's observer: on_event and its own
                              user_data (pr_http_client_opts.observer)
      pr_http_request         idle_timeout_ms (0 = the client's, > 0 own,
                              < 0 none); redirect_forward (names of this
                              request's fields that may go to another origin)
      pr_http_client_opts     max_retry_after_ms (0 = 60000);
                              redirect_forward_headers (copied)
      pr_sse_stream_opts      max_retry_ms (0 = an hour): the cap on retry:
                              and every wait a server asks for;
                              max_last_event_id (0 = 4096 bytes)
      pr_sse_stream_opts      tls (copied into the stream's own client, which
                              keeps following redirects; PR_EINVAL beside
                              client); open_attempts (0 = 4, < 0 = only the
                              deadline): connections pr_sse_open tries;
                              healthy_ms (0 = 60000, < 0 = the former rule):
                              how long a connection stays up to reset the
                              backoff and failure count; whatwg_strict (1 =
                              every status but 200 fails the stream)
      pr_ds_read_opts         idle_timeout_ms (0 = 60000, < 0 none)
      pr_ds_consumer_opts     idle_timeout_ms (the same, for its reads)
      pr_ds_producer_opts     delivery_timeout_ms (0 = 120000, < 0 none)
      pr_rfuture_poller_opts  hint_max_ms (0 = 60000); profile: a
                              pr_rfuture_profile naming the service's
                              retrieve path, poll headers, JSON members and
                              event-name prefix (zero = the built-in
                              profile, Tinker's retrieve_future, as before)
      pr_ds_opts, pr_ds_producer_opts, pr_ds_consumer_opts
                              observer (pr_ds_observer: on_event, user_data):
                              pr_ds_event (PR_DS_EVENT_REQUEST_START, _STOP,
                              _EXCEPTION, _CONSUMER_BATCH, _CONSUMER_RECONNECT,
                              _CONSUMER_STATE, _PRODUCER_BATCH,
                              _PRODUCER_DUPLICATE); a producer or consumer
                              without its own uses its handle's
      pr_ds_consumer_last_error
                              the detail and PR_DS_* meaning of the failure
                              that stopped a consumer
      pr_telemetry_ds_hook    the observer's adapter: ds.request.start, .stop,
                              .exception, ds.consumer.batch, .reconnect, .state,
                              ds.producer.batch, .duplicate;
                              PR_TELEMETRY_STREAM_BATCH, _STREAM_DUPLICATE
      pr_rfuture_poller_opts  hint_max_ms (0 = 60000)
      pr_reporter_opts        queue_max_bytes (0 = 8 MiB)
      pr_rfuture_poller_opts  open_attempts (0 = 5, < 0 no bound): polls
                              that may fail transiently before a job's
                              first answer; max_failures (0 = no bound):
                              failures in a row after it
      pr_rfuture_opts         resubmittable (0 = off): a 410 submits the job
                              again (pr_rfuture_submit keeps path and body);
                              max_resubmits (0 = 1)
      pr_rfuture_event        new_request_id: the new job's id of a
                              "resubmitted" event
      pr_rfuture_poller_opts, pr_reporter_opts, pr_heartbeat_opts
                              tls (pr_tls_opts): the settings of the object's
                              own client (no client given); PR_EINVAL when
                              set while a client is given
      pr_signal_watch_start, pr_signal_wait, pr_signal_watch_stop
                              (sched) Ctrl-C as a cancellation: the first of
                              SIGINT, SIGTERM (signals NULL, 0) or the signals
                              given cancels a task (optional) and wakes
                              pr_signal_wait with its number, and puts the
                              previous handlers back (a second one acts as
                              before); stop restores them too; one watch per
                              process (a second start: PR_ESTATE)
      pr_sched_fd, pr_sched_step
                              (sched) running inside a host's event loop: a
                              file descriptor to watch for readability (the
                              epoll/kqueue fd; PR_ENOTSUP with the poll(2)
                              back end) and a non-blocking step that runs
                              every ready task and reports the next timer
                              deadline (PR_FOREVER = none); PR_ESTATE from
                              a task
      pr_ds_opts              on_auth_error (NULL = none; pr_ds_auth_info:
                              status, op, method, attempt, www_authenticate,
                              deadline): a 401, or a 403 without
                              Producer-Epoch, on any request of the handle
                              (operations, reads, consumers, producers) asks
                              it for fresh header lines / query pairs, which
                              replace the handle's of the same name and send
                              the request again; max_auth_refreshes (0 = 3
                              per request); PR_DS_EVENT_AUTH_REFRESH tells the
                              observer
      pr_ds_opts              tls (pr_tls_opts, all-zero = defaults): the
                              handle's own client's TLS settings; with
                              client set it must stay all-zero (PR_EINVAL)
      pr_ds_create_opts       forked_from, fork_offset, fork_sub_offset (NULL,
                              NULL, 0 = not a fork): Stream-Forked-From,
                              Stream-Fork-Offset, Stream-Fork-Sub-Offset;
                              malformed values are PR_EINVAL before sending
      PR_DS_UNAUTHORIZED, PR_DS_FORBIDDEN
                              the meanings of a 401 and of a 403 without
                              Producer-Epoch
      pr_ds_producer_stats_get
                              a producer's counters (pr_ds_producer_stats):
                              pending and in-flight batches and bytes,
                              acknowledged batches and bytes, duplicates,
                              resends, abandoned batches
      pr_tls_opts             a client certificate (mutual TLS): cert_file,
                              cert_pem, cert_pem_len, key_file, key_pem,
                              key_pem_len (NULL = none; RSA or EC; a half
                              pair or a key of another certificate is
                              PR_EINVAL); identity (a pr_tls_identity,
                              borrowed; wins over them). In
                              pr_http_client_opts.tls they are parsed once by
                              pr_http_client_create and not kept
      pr_tls_identity_create, pr_tls_identity_destroy
                              a client certificate and key parsed once, shared
                              by connections (like pr_tls_anchors)
      pr_tls_server_cfg_require_client_cert
                              a pr_tls_server asks for a client certificate
                              and refuses a client without one from the given
                              CAs (default: none asked)
      PR_TLS_NO_CLIENT_CERT, PR_TLS_CLIENT_CERT_REFUSED
                              pr_err_info.tls_error of a client handshake the
                              server ended after asking for a certificate: we
                              had none / it refused ours (was PR_EIO with
                              ECONNRESET, or PR_TLS_TRUNCATED, or BearSSL's
                              received-alert code)
      pr_ds_read_opts, pr_ds_consumer_opts
                              open_attempts (0 = 8, < 0 no bound): tries until
                              the read's first answer; max_failures (0 =
                              unlimited): failures in a row after it;
                              healthy_ms (0 = 60000): the failure count and
                              backoff start afresh only after this long
                              without a failure
      pr_ds_read_all          everything from an offset up to the current
                              tail in one buffer (a JSON stream's messages as
                              one array), max_bytes (0 = 64 MiB, PR_ELIMIT),
                              the offset to resume from and the closed flag
    Changed behaviour
      client   https connections are half duplex (tls.half_duplex 0) unless
               tls.half_duplex is -1: one 16,709-byte record buffer instead of
               33,178, the same record sizes. An exchange sends its whole
               request before it reads, so nothing else changes.
      tls      A connection allocates its record buffer apart, to the mode's
               size, frees its certificate checker after the handshake, and
               gives back the stack pages the handshake touched (one madvise).
               Resident memory of an event stream over TLS, 10,000 at once:
               62,261 bytes before, 20,588 after (bench/README.md).
      sse      An open stream gives back the stack pages its connect touched
               (one madvise per connect): a plaintext stream holds one stack
               page instead of two.
      ds       A read whose connection closes before the whole answer (in its
               head, or in a body with Content-Length or chunked framing) gets
               PR_EIO, a transient failure: the read stays usable and the
               consumer reconnects (was: PR_EPROTO, final, once the client's
               retries or the deadline ran out: the consumer stopped). An
               answer the HTTP layer cannot parse at all (no status) goes the
               same way, as the client's retries already treated it; the
               wrapped cause stays in the message.
      sse      A status that ends the stream (PR_EHTTP: a 400, 401, 404...)
               has the start of the answer's body (up to about 150 bytes,
               white space folded) at the end of the failure's message, where
               an API says why it refused (was: the status alone).
      sse      Final causes end pr_sse_open and a reconnect at once with their
               own code: a name that does not exist (PR_EDNS), a refused TLS
               handshake (PR_ETLS) (both were retried). pr_sse_open tries
               open_attempts connections (waits: the backoff alone, about 1,
               2, 4 s; was: the reconnection time plus backoff until the
               deadline), then returns the last cause (PR_EIO with errno,
               PR_EHTTP with the status), at once when the next try would
               start after the deadline (was PR_ETIMEDOUT). The backoff and
               failure count reset only after a connection stayed up
               healthy_ms (was: any connection that did not end within a
               second without an event); the second and later early ends
               before that add backoff steps. Retry-After / retry-after-ms on a
               retried status is the wait itself, capped at max_retry_ms (was:
               at least the reconnection time plus backoff). A request that
               cannot be repeated is sent again at open after a refused
               connection, a DNS failure, 408, 429 or 503 (was: never).
               max_failures counts failures since the last healthy connection.
      client   PR_ETIMEDOUT means the call's deadline passed, nothing else: a
               limit of the client's own that ends a call sooner
               (connect_timeout_ms, attempt_timeout_ms) returns PR_EIO with
               sys_errno ETIMEDOUT (was PR_ETIMEDOUT). Causes retrying cannot
               cure are no longer retried by the default classification: a
               name that does not exist (PR_EDNS, dns_error EAI_NONAME,
               EAI_NODATA, EAI_FAIL) and any TLS handshake refusal (PR_ETLS
               but PR_TLS_TRUNCATED: was only a refused certificate), and a
               retry policy's classify hook cannot make them retried.
      http     idle_timeout_ms of silence fails a response with PR_EIO,
               sys_errno ETIMEDOUT (was PR_ETIMEDOUT); pr_sse_reconnect.reason
               is PR_EIO for it too.
      pr_tls_server_cfg_create
                              refuses (PR_EINVAL) a key that is not the leaf
                              certificate's (was: accepted, every handshake
                              then failed)
      ds_read  A cause retrying cannot cure (a name that does not exist, a
               certificate not trusted or for another name, a peer that does
               not speak TLS) ends pr_ds_read_next at once with its code (was
               retried until the deadline, with PR_FOREVER for ever);
               transient ones are tried open_attempts times until the read's
               first answer (was: until the deadline); PR_ETIMEDOUT only when
               the caller's deadline passed (a connection's own timeout is
               PR_EIO with errno ETIMEDOUT; a backoff that would end past the
               deadline returns the last cause at once); a live SSE
               connection that ends, cleanly too, is followed at once only
               after a healthy period (was: after sse_short_ms, so a server
               that accepts and drops was asked again at a constant rate);
               408 is tried again like 429.
      ds_consumer  Stops on a final cause with its code, and once its read's
               open_attempts or max_failures are used up (was: reconnected
               for ever); it keeps one read throughout, and its backoff starts
               afresh only after healthy_ms without a failure (was: at every
               batch).
      ds_read  A catch-up or long-poll read whose connection closes before its
               answer (after the handle's retries) returns PR_EIO with the
               cause (was PR_ECLOSED, which means the read is over).
      proxy    A module of its own between http and client (proxy settings,
               no_proxy matching, CONNECT tunnels): pr_http_no_proxy_match
               moves there unchanged; client keeps pool, redirects, retries.
      base     pr_err_info.msg is 200 bytes (was 120); a message that wraps
               another's (a stream's "the last: ...", the producer's "the
               last try: ...") keeps the cause whole and its detail
               (sys_errno, tls_error, dns_error, http_status). pr_random is
               declared in base (was: retry); the name is unchanged.
      sync     A new module after sched: the counting and weighted
               semaphores (pr_sem, pr_wsem; names unchanged) move there
               from retry, over the FIFO wait queues that sched held.
               (sys_errno, tls_error, dns_error, http_status).
      net, tls sys_errno holds the errno wherever PR_EIO comes from a system
               call (a poller or fcntl failure in connect, accept and a TLS
               connection's wait on both directions too).
      http     The idle timeout is the connection's silence since its last
               byte, across calls; a connection found silent stays failed.
      client   A redirect to another origin drops every field of the request
               but Accept, Accept-Language, User-Agent, the body's
               Content-Type/-Language/-Encoding while the body goes on, the
               client's own retry fields and the names given as safe (was:
               only Authorization, Cookie, Proxy-Authorization). A redirect
               that turns the request into a GET drops the body's fields.
      retry    Every sum of a time and a duration saturates; an HTTP-date
               past the year 9999 is PR_EINVAL.
      sse      The stream's idle clock spans calls (a 1 s deadline in a loop
               no longer hides a dead connection); the caller's deadline
               holds while bytes arrive that complete no event; a connection
               that ends within a second without an event counts as failed
               (backoff), a longer one that ends cleanly does not; an ID
               with a control byte or longer than max_last_event_id is not
               sent as Last-Event-ID; Cache-Control and Last-Event-ID follow
               a redirect to another origin. pr_sse_open whose deadline
               passes (or that is cancelled) between tries says so, code
               PR_ETIMEDOUT / PR_ECANCELED, with the last try's cause and its
               detail in err (was: the bare cause, whose code differed).
      ds       The producer resends a batch with the same (epoch, seq) until
               the server answers or delivery_timeout_ms passes; a 409 gap
               waits for the lower batches instead of resending at once; a
               failure it cannot mend stops it for good (append, flush and
               close return it: PR_EFAILED when the delivery timeout passed,
               never PR_ETIMEDOUT, which is only the caller's own deadline)
               until pr_ds_producer_restart. Live reads drop a silent
               connection after idle_timeout_ms and resume from their
               offset; answers that bring nothing new at once are paced
               (50 ms doubling to 2 s); a clean SSE end after sse_short_ms
               reconnects at once; offsets and cursors from a server are
               1 to 1024 printable ASCII bytes, else PR_EPROTO; the protocol's
               fields follow a redirect to another origin.
               The module is four: ds (the handle and its operations),
               ds_read, ds_producer, ds_consumer; telemetry comes after them.
               A consumer whose read fails with PR_ECLOSED (a connection
               closed before the response, after the retries) reconnects
               (was: it ended as if the stream had closed, without a word).
               pr_ds_consumer_start refuses an offset pr_ds_read_open would
               (PR_EINVAL; was: the consumer's task ended with it).
               A handle parses its URL once; each request reuses it with its
               own query (a '#' from params_fn is refused like a space or a
               control byte; was: it silently cut the query there).
               A 403 without Producer-Epoch means PR_DS_FORBIDDEN and a 401
               PR_DS_UNAUTHORIZED (were PR_DS_STALE_EPOCH and
               PR_DS_UNEXPECTED_STATUS). A fork created without a content
               type of its own (neither the create's nor the handle's) sends
               none and takes the source's. pr_ds_open's err carries the
               HTTP client's own detail when creating it fails (a tls.ca_file
               that cannot be read: PR_EIO with its errno).
      rfuture  poll_backoff defaults to 5 ms doubling to 1 s (was: at once); a
               server's delay on
               any answer is honoured, between poll_backoff.base_ms and
               hint_max_ms; a request_id or queue_state_reason with a NUL
               byte or over 1024 bytes is PR_EPROTO. pr_rfuture_submit posts
               to <base_url><path> with the poller's own path set too (was:
               the base_url's prefix was dropped then).
      rfuture  A poll's cause that polling again cannot cure (a name that
               does not exist, TLS refused, PR_EINVAL, PR_ENOTSUP,
               PR_ENOMEM) ends the future at once with its code and detail
               (was: PR_EDNS and PR_ETLS were polled again forever);
               transient failures before a job's first answer (refused,
               reset, timed out, 408 without a body, 429, 5xx) end it after
               open_attempts polls with the last cause, PR_EIO with
               sys_errno or PR_EHTTP with http_status (was: polled forever);
               a poll past poll_timeout_ms counts as PR_EIO with ETIMEDOUT,
               never PR_ETIMEDOUT, which is only the caller's limit.
               pr_rfuture_poller_create's client may be NULL: the poller
               makes its own from opts.tls and destroys it with itself.
      session  pr_heartbeat_start's client may be NULL: one of its own, from
               opts.tls, destroyed with the heartbeat.
      telemetry  The reporter's queue is bounded in bytes as well as events.
               pr_reporter_opts.client may be NULL: one of its own, from
               opts.tls, destroyed with the reporter.
      tls      Running out of memory while checking a server certificate
               against an IP address host is PR_ENOMEM (was PR_ETLS).
      ds_producer  pr_ds_producer_destroy called from a cancelled task
               waits for the producer's own task (was: left it alive);
               pr_ds_producer_close's final offset is never NULL after
               PR_OK, and pr_ds_producer_offset never stale, when memory
               runs out (both were copies that could fail).
      ds_consumer, telemetry  pr_ds_consumer_stop, pr_reporter_stop and
               pr_reporter_destroy called from a cancelled task wait for
               the object's task (was: left it alive; the consumer's then
               ran on freed memory).
      sse      More than 10 redirects end the stream at once with PR_EHTTP and
               the last 3xx in err.http_status, and a response head over the
               client's limits with PR_EPROTO (both were retried, then ended
               with PR_ELIMIT, which pr_sse_next documents as "call again").
               A stream never ends with PR_ELIMIT: a limit that ends it
               (reconnect_on_limit up to max_failures) is PR_EPROTO.

  0.1.0
    First release: runtime, transport, HTTP client, SSE, retry, remote
    futures, telemetry and the Durable Streams client.
*/
