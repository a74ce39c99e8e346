// @pristine:module net - non-blocking DNS, TCP connect and listen, the pr_conn byte stream
// @pristine:public
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

// @pristine:impl
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
