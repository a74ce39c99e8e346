// @pristine:module sched - tasks, run queue, timers, fd readiness, sleep, groups, channels, cross-thread post, signals
// @pristine:public
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

// @pristine:impl
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
