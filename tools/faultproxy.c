/* faultproxy.c - a fault-injecting TCP proxy built on pristine itself.

       build/faultproxy --listen PORT --to HOST:PORT [--seed N] [--faults LIST]
                        [--rate PCT] [--script LIST] [--stall MS] [--outage MS]
                        [--chaos MS] [--lifetime MS] [-v]

   It sits between a client and a server on 127.0.0.1 and passes bytes both
   ways, except when it decides to break something. Per connection (chosen
   at accept, from the script or at random from the seed):

     reset        pass N bytes toward the client, then reset (RST) it
     stall        pass N bytes, then not a byte more toward the client for
                  --stall ms with TCP up (longer than the client's idle
                  timeout), then close
     half-close   pass N bytes, then FIN toward the client, keep reading it
     drip         from byte N on, one byte every 5 ms (200 bytes), then on
     truncate     pass N bytes, then close both sides in order (FIN)
     delay-accept accept, then wait --delay ms before connecting upstream
     empty        accept, then close at once without a byte
     accept-rst   accept, then reset at once

   N is a byte count toward the client (uniform in 0..--at bytes), and a
   fault fires after at most --after ms when the bytes do not come first,
   so long-lived streams are hit too. For the whole proxy (a "chaos" task
   picks one every --chaos ms on average):

     refuse       stop listening for --outage ms (connects are refused)
     restart      drop every connection at once (RST) and stop listening
                  for --outage ms: the server side of a restart

   Comment floods are not a proxy fault: the proxy is byte-transparent, and
   inserting `: comment` lines safely would mean parsing HTTP framing
   (chunk sizes, Content-Length) and SSE event boundaries, then rewriting
   the framing, which is a second HTTP implementation inside the fault
   injector. The server makes them instead: the test server's
   /sse?flood=F sends F comment lines before every event (tools/README.md).

   Two ways to use it, like tools/testserver.c:
   (a) #include "../tools/faultproxy.c" after pristine.h with
       PRISTINE_IMPLEMENTATION (tests/soak.c does), then from a task:
           fp_proxy *p; fp_opts o = {0};
           o.to_port = 4437; o.seed = 7;
           fp_start(&p, &o);            listens on 127.0.0.1:fp_port(p)
           ...                          fp_faults(p): faults injected so far
           fp_quiet_at(p)               when the faults so far are over
           fp_stop(p);                  cancels every task, closes everything
   (b) standalone: cc -DPR_FAULTPROXY_MAIN tools/faultproxy.c (make faultproxy).

   What it shows of the library: one task per connection direction, spawned
   in a pr_group; pr_fd_wait on a listening socket of its own (so it can
   close and reopen it); pr_conn_from_fd and pr_tcp_connect; deadlines as
   fault timers (a read that times out is a trigger, not an error);
   pr_cancel to stop the other direction and every connection at once.

   Every name here starts with fp_. */
#ifdef PR_FAULTPROXY_MAIN
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#endif

#ifndef FP_FAULTPROXY_C
#define FP_FAULTPROXY_C

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#if defined(__GNUC__) || defined(__clang__)
#define FP_UNUSED __attribute__((unused))
#else
#define FP_UNUSED
#endif

/* The fault kinds. The first ones hit one connection, the last two the proxy. */
enum fp_kind {
    FP_NONE,
    FP_RESET,
    FP_STALL,
    FP_HALF_CLOSE,
    FP_DRIP,
    FP_TRUNCATE,
    FP_DELAY_ACCEPT,
    FP_EMPTY,
    FP_ACCEPT_RST,
    FP_REFUSE,  /* proxy-wide from here on */
    FP_RESTART,
    FP_NKINDS
};
static const char *const fp_kind_names[FP_NKINDS] = {"none",  "reset",      "stall",  "half-close",
                                                      "drip",  "truncate",   "delay-accept", "empty",
                                                      "accept-rst", "refuse", "restart"};
#define FP_BIT(k) (1u << (k))
#define FP_CONN_KINDS 0x1feu  /* reset .. accept-rst */
#define FP_PROXY_KINDS (FP_BIT(FP_REFUSE) | FP_BIT(FP_RESTART))

/* Options; all-zero means defaults. */
typedef struct fp_opts {
    const char *to_host;   /* the server: NULL = "127.0.0.1" (numeric or localhost) */
    uint16_t to_port;      /* required */
    uint16_t listen_port;  /* 0 = an ephemeral port on 127.0.0.1 */
    uint64_t seed;         /* the random choices; 0 = 1 */
    unsigned kinds;        /* FP_BIT(FP_RESET) | ...: the faults chosen at random; 0 = all */
    int rate_pct;          /* 0 = 30: the share of connections that get a fault; < 0 = none */
    const char *script;    /* "reset@100,none,stall@0,...": the faults of the first connections
                              in order (kind[@byte]); then the random ones. NULL = none */
    int at_max;            /* 0 = 8192: a fault's byte N is uniform in 0..at_max */
    int after_max_ms;      /* 0 = 3000: ... and it fires after at most this long anyway */
    int stall_ms;          /* 0 = 5000: a stall's silence */
    int delay_ms;          /* 0 = 1000: a delayed accept's wait */
    int outage_ms;         /* 0 = 2000: refuse and restart stop listening this long (up to 1.5 x) */
    int chaos_ms;          /* 0 = 10000: mean gap between proxy-wide faults; < 0 = none */
    int drip_ms;           /* 0 = 5: a drip's gap between bytes */
    int drip_bytes;        /* 0 = 200: bytes dripped before the connection goes on normally */
    int verbose;           /* 1 = one line per fault on stderr */
} fp_opts;

typedef struct fp_proxy fp_proxy;

/* One proxied connection: the client side, the server side, two tasks. */
typedef struct fp_link {
    fp_proxy *p;
    struct fp_link *prev, *next; /* the proxy's live links */
    long id;
    int cfd;                     /* the client socket (for SO_LINGER) */
    pr_conn *client, *server;
    pr_task *down, *up;          /* server -> client (and the faults), client -> server */
    int refs;                    /* running tasks; the last one out frees the link */
    int ended;                   /* 1 = stopped: a task that has not started yet returns at once */
    int rst;                     /* 1 = reset the client when the link ends */
    int kind;                    /* the fault planned for it */
    long at;                     /* its byte N */
    int64_t fire_at;             /* ... or this moment, whichever comes first */
} fp_link;

struct fp_proxy {
    fp_opts o;
    pr_group *g;                 /* the accept task, the chaos task, every link's tasks */
    int lfd;                     /* the listening socket (-1 while refusing) */
    uint16_t port;
    uint64_t rng;
    const char *script;          /* the rest of the script */
    int64_t refuse_until;        /* pr_now() until which the listener stays closed */
    int stopping;
    int calm;                    /* 1 = inject nothing more */
    long conns, faults, by_kind[FP_NKINDS];
    int64_t quiet_at;            /* when the faults injected so far are over (pr_now clock) */
    fp_link *links;
};

/* xorshift64*: the proxy's own generator, so a seed repeats a run's choices. */
static uint64_t fp_rand(fp_proxy *p) {
    p->rng ^= p->rng >> 12;
    p->rng ^= p->rng << 25;
    p->rng ^= p->rng >> 27;
    return p->rng * 2685821657736338717ull;
}
static int64_t fp_uniform(fp_proxy *p, int64_t lo, int64_t hi) { /* lo..hi inclusive */
    return hi <= lo ? lo : lo + (int64_t)(fp_rand(p) % (uint64_t)(hi - lo + 1));
}

/* Count a fault as it fires, and note when it is over: a stall, a drip or a
   delay last a while, refuse and restart until the listener is back. */
static void fp_count(fp_proxy *p, fp_link *k, int kind, long byte) {
    int64_t end = pr_now();
    if (kind == FP_STALL || kind == FP_HALF_CLOSE) end += p->o.stall_ms;
    else if (kind == FP_DRIP) end += (int64_t)p->o.drip_bytes * p->o.drip_ms;
    else if (kind == FP_DELAY_ACCEPT) end += p->o.delay_ms;
    else if (kind == FP_REFUSE || kind == FP_RESTART) end = p->refuse_until;
    if (end > p->quiet_at) p->quiet_at = end;
    p->faults++;
    p->by_kind[kind]++;
    if (p->o.verbose) {
        if (k)
            fprintf(stderr, "faultproxy %lld :%u conn %ld: %s at byte %ld\n", (long long)pr_now(), p->port, k->id,
                    fp_kind_names[kind], byte);
        else fprintf(stderr, "faultproxy %lld :%u: %s\n", (long long)pr_now(), p->port, fp_kind_names[kind]);
    }
}

/* A kind name (with an optional "@N") from the front of *s; -1 if none matches. */
static int fp_parse_kind(const char **s, long *at) {
    int k;
    *at = -1;
    for (k = 0; k < FP_NKINDS; k++) {
        size_t n = strlen(fp_kind_names[k]);
        if (strncmp(*s, fp_kind_names[k], n) == 0 && ((*s)[n] == 0 || (*s)[n] == ',' || (*s)[n] == '@')) {
            *s += n;
            if (**s == '@') *at = strtol(*s + 1, (char **)s, 10);
            if (**s == ',') (*s)++;
            return k;
        }
    }
    return -1;
}

/* "reset,stall,..." as a kind mask; 0 (all) when list is NULL; -1 on a bad name. */
static FP_UNUSED long fp_kinds_mask(const char *list) {
    unsigned m = 0;
    long at;
    while (list && *list) {
        int k = fp_parse_kind(&list, &at);
        if (k < 0) return -1;
        m |= FP_BIT(k);
    }
    return (long)m;
}

/* SO_LINGER {1, 0}: closing the socket sends a reset instead of a FIN. */
static void fp_linger0(int fd) {
    struct linger lg;
    lg.l_onoff = 1;
    lg.l_linger = 0;
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

/* ---- the listener: a socket of our own, so it can be closed and reopened ---- */

static int fp_listen_open(fp_proxy *p) {
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return PR_EIO;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(p->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 128) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        close(fd);
        return PR_EIO;
    }
    p->port = ntohs(a.sin_port);
    p->lfd = fd;
    return PR_OK;
}

/* Close the listener: the accept task, waiting in pr_fd_wait, wakes with PR_ECLOSED. */
static void fp_listen_close(fp_proxy *p) {
    if (p->lfd < 0) return;
    pr_fd_forget(p->lfd);
    close(p->lfd);
    p->lfd = -1;
}

/* ---- links ---- */

/* End a link: cancel both of its tasks (not the caller; it is returning). */
static void fp_link_stop(fp_link *k) {
    pr_task *self = pr_self();
    k->ended = 1;
    if (k->down && k->down != self) pr_cancel(k->down);
    if (k->up && k->up != self) pr_cancel(k->up);
}

/* A task of the link returns: the last one closes the sockets and frees it. */
static int fp_link_leave(fp_link *k, pr_task **slot) {
    *slot = NULL;
    if (--k->refs > 0) {
        fp_link_stop(k);
        return 0;
    }
    if (k->rst && k->cfd >= 0) fp_linger0(k->cfd);
    if (k->client) pr_conn_destroy(k->client);
    else if (k->cfd >= 0) close(k->cfd);
    pr_conn_destroy(k->server);
    if (k->prev) k->prev->next = k->next;
    else k->p->links = k->next;
    if (k->next) k->next->prev = k->prev;
    free(k);
    return 0;
}

/* Write all of buf to c; PR_OK or the failure. */
static int fp_write(pr_conn *c, const char *buf, size_t n) {
    return n ? pr_conn_write(c, buf, n, PR_FOREVER) : PR_OK;
}

/* client -> server: plain forwarding; the client leaving ends the link. */
static int fp_up(void *arg) {
    fp_link *k = (fp_link *)arg;
    char buf[16384];
    ptrdiff_t n;
    k->up = pr_self();
    while (!k->ended && (n = pr_conn_read(k->client, buf, sizeof buf, PR_FOREVER)) > 0)
        if (fp_write(k->server, buf, (size_t)n) != PR_OK) break;
    return fp_link_leave(k, &k->up);
}

/* The fault of a link's byte N: what happens once N bytes went to the client. */
static int fp_fire(fp_link *k, long byte) {
    fp_proxy *p = k->p;
    fp_count(p, k, k->kind, byte);
    switch (k->kind) {
    case FP_RESET:
        k->rst = 1;
        return PR_ECLOSED;
    case FP_TRUNCATE:
        return PR_ECLOSED;
    case FP_STALL: /* TCP up, not a byte more toward the client; then a plain close */
        pr_sleep(pr_deadline_in(p->o.stall_ms));
        return PR_ECLOSED;
    case FP_HALF_CLOSE: /* a FIN toward the client; the client's own end ends the link */
        pr_conn_shutdown(k->client, pr_deadline_in(1000));
        pr_sleep(pr_deadline_in(p->o.stall_ms));
        return PR_ECLOSED;
    default:
        return PR_OK;
    }
}

/* server -> client, with the fault: forward until byte N or the fire time,
   then break the link the planned way. */
static int fp_down(fp_link *k) {
    fp_proxy *p = k->p;
    char buf[16384];
    long sent = 0, dripped = 0;
    int armed = k->kind != FP_NONE, rc = PR_OK;
    while (rc == PR_OK) {
        int64_t until = armed ? k->fire_at : PR_FOREVER;
        size_t want = sizeof buf;
        ptrdiff_t n;
        if (armed && k->at - sent < (long)want) want = (size_t)(k->at - sent);
        if (!armed && k->kind == FP_DRIP && dripped < p->o.drip_bytes) want = 1;
        if (armed && want == 0) n = PR_ETIMEDOUT; /* byte N reached */
        else n = pr_conn_read(k->server, buf, want, until);
        if (n == PR_ETIMEDOUT && armed) { /* the trigger: byte N, or the fire time */
            armed = 0;
            if (p->calm) k->kind = FP_NONE;
            else rc = fp_fire(k, sent);
            continue;
        }
        if (n <= 0) break; /* the server ended (or failed): end the link */
        if (!armed && k->kind == FP_DRIP && dripped < p->o.drip_bytes) {
            if ((rc = pr_sleep(pr_deadline_in(p->o.drip_ms))) != PR_OK) break;
            dripped++;
        }
        rc = fp_write(k->client, buf, (size_t)n);
        sent += (long)n;
    }
    return rc;
}

/* One accepted connection: pick its fault, connect upstream, run both ways. */
static int fp_link_main(void *arg) {
    fp_link *k = (fp_link *)arg;
    fp_proxy *p = k->p;
    pr_net_opts no;
    memset(&no, 0, sizeof no);
    no.connect_timeout_ms = 5000;
    k->down = pr_self();
    if (k->ended) return fp_link_leave(k, &k->down);
    if (k->kind == FP_EMPTY || k->kind == FP_ACCEPT_RST || k->kind == FP_REFUSE || k->kind == FP_RESTART) {
        if (k->kind == FP_REFUSE || k->kind == FP_RESTART)
            p->refuse_until = pr_now() + fp_uniform(p, p->o.outage_ms, p->o.outage_ms * 3 / 2);
        fp_count(p, k, k->kind, 0);
        k->rst = k->kind != FP_EMPTY;
        if (k->kind == FP_REFUSE || k->kind == FP_RESTART) {
            fp_link *o;
            fp_listen_close(p);
            for (o = p->links; o && k->kind == FP_RESTART; o = o->next)
                if (o != k) {
                    o->rst = 1;
                    fp_link_stop(o);
                }
        }
        return fp_link_leave(k, &k->down);
    }
    if (k->kind == FP_DELAY_ACCEPT) {
        fp_count(p, k, k->kind, 0);
        if (pr_sleep(pr_deadline_in(p->o.delay_ms)) != PR_OK) return fp_link_leave(k, &k->down);
        k->kind = FP_NONE;
    }
    if (pr_tcp_connect(&k->server, p->o.to_host, p->o.to_port, &no, NULL, pr_deadline_in(5000)) != PR_OK) {
        k->rst = 1; /* the server is not there: the client sees a reset */
        return fp_link_leave(k, &k->down);
    }
    k->refs++;
    if (pr_group_go(p->g, fp_up, k, NULL) != PR_OK) {
        k->refs--;
        return fp_link_leave(k, &k->down);
    }
    fp_down(k);
    return fp_link_leave(k, &k->down);
}

/* The plan for the next connection: the script's next entry, else at random. */
static void fp_plan(fp_proxy *p, fp_link *k) {
    long at = -1;
    int kind = FP_NONE;
    unsigned mask = p->o.kinds & FP_CONN_KINDS;
    if (p->script && *p->script) {
        kind = fp_parse_kind(&p->script, &at);
        if (kind < 0) p->script = NULL, kind = FP_NONE;
    } else if (!p->calm && mask && p->o.rate_pct > 0 && fp_uniform(p, 1, 100) <= p->o.rate_pct) {
        int n = 0, i, pick;
        for (i = 0; i < FP_NKINDS; i++) n += (mask >> i) & 1;
        pick = (int)fp_uniform(p, 0, n - 1);
        for (i = 0; i < FP_NKINDS; i++)
            if (((mask >> i) & 1) && pick-- == 0) kind = i;
    }
    k->kind = kind;
    k->at = at >= 0 ? at : (long)fp_uniform(p, 0, p->o.at_max);
    k->fire_at = at >= 0 ? PR_FOREVER : pr_now() + fp_uniform(p, 0, p->o.after_max_ms);
}

/* Accept connections; while refusing, keep the listener closed. */
static int fp_accept_task(void *arg) {
    fp_proxy *p = (fp_proxy *)arg;
    while (!p->stopping) {
        fp_link *k;
        int fd, rc;
        if (p->lfd < 0) { /* refusing: wait, then listen again on the same port */
            if (pr_sleep(p->refuse_until) != PR_OK) break;
            if (fp_listen_open(p) != PR_OK && pr_sleep(pr_deadline_in(50)) != PR_OK) break;
            continue;
        }
        fd = accept(p->lfd, NULL, NULL);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) break;
            rc = pr_fd_wait(p->lfd, PR_WAIT_READ, PR_FOREVER);
            if (rc == PR_ECANCELED) break;
            continue; /* PR_ECLOSED: a refuse closed it */
        }
        if (!(k = (fp_link *)calloc(1, sizeof *k))) {
            close(fd);
            continue;
        }
        k->p = p;
        k->id = ++p->conns;
        k->cfd = fd;
        k->refs = 1;
        if (pr_conn_from_fd(&k->client, fd) != PR_OK) {
            close(fd);
            free(k);
            continue;
        }
        fp_plan(p, k);
        k->next = p->links;
        if (p->links) p->links->prev = k;
        p->links = k;
        if (pr_group_go(p->g, fp_link_main, k, NULL) != PR_OK) {
            k->rst = 1;
            fp_link_leave(k, &k->down);
        }
    }
    return 0;
}

/* Proxy-wide faults, now and then. */
static int fp_chaos_task(void *arg) {
    fp_proxy *p = (fp_proxy *)arg;
    unsigned mask = p->o.kinds & FP_PROXY_KINDS;
    while (mask && p->o.chaos_ms > 0) {
        fp_link *o;
        int kind = mask == FP_PROXY_KINDS ? (fp_rand(p) & 1 ? FP_RESTART : FP_REFUSE)
                                          : (mask & FP_BIT(FP_REFUSE) ? FP_REFUSE : FP_RESTART);
        if (pr_sleep(pr_deadline_in(fp_uniform(p, p->o.chaos_ms / 2, p->o.chaos_ms * 3 / 2))) != PR_OK) break;
        if (p->calm || p->lfd < 0) continue;
        p->refuse_until = pr_now() + fp_uniform(p, p->o.outage_ms, p->o.outage_ms * 3 / 2);
        fp_count(p, NULL, kind, 0);
        fp_listen_close(p);
        for (o = p->links; o && kind == FP_RESTART; o = o->next) {
            o->rst = 1;
            fp_link_stop(o);
        }
    }
    return 0;
}

/* ---- the public face ---- */

/* Start a proxy (from a task): listen, then accept and inject in tasks of
   its own. PR_OK, PR_EINVAL (no to_port), PR_EIO (cannot listen), PR_ENOMEM. */
static FP_UNUSED int fp_start(fp_proxy **out, const fp_opts *opts) {
    fp_proxy *p;
    int rc;
    *out = NULL;
    if (!opts || !opts->to_port) return PR_EINVAL;
    if (!(p = (fp_proxy *)calloc(1, sizeof *p))) return PR_ENOMEM;
    p->o = *opts;
    if (!p->o.to_host) p->o.to_host = "127.0.0.1";
    if (!p->o.kinds) p->o.kinds = FP_CONN_KINDS | FP_PROXY_KINDS;
    if (!p->o.rate_pct) p->o.rate_pct = 30;
    if (!p->o.at_max) p->o.at_max = 8192;
    if (!p->o.after_max_ms) p->o.after_max_ms = 3000;
    if (!p->o.stall_ms) p->o.stall_ms = 5000;
    if (!p->o.delay_ms) p->o.delay_ms = 1000;
    if (!p->o.outage_ms) p->o.outage_ms = 2000;
    if (!p->o.chaos_ms) p->o.chaos_ms = 10000;
    if (!p->o.drip_ms) p->o.drip_ms = 5;
    if (!p->o.drip_bytes) p->o.drip_bytes = 200;
    p->rng = opts->seed ? opts->seed : 1;
    p->script = opts->script;
    p->port = opts->listen_port;
    p->lfd = -1;
    if ((rc = fp_listen_open(p)) != PR_OK) {
        free(p);
        return rc;
    }
    if ((rc = pr_group_create(&p->g)) != PR_OK || (rc = pr_group_go(p->g, fp_accept_task, p, NULL)) != PR_OK ||
        (rc = pr_group_go(p->g, fp_chaos_task, p, NULL)) != PR_OK) {
        if (p->g) pr_group_close(p->g, PR_FOREVER);
        fp_listen_close(p);
        free(p);
        return rc;
    }
    *out = p;
    return PR_OK;
}

static FP_UNUSED uint16_t fp_port(const fp_proxy *p) { return p ? p->port : 0; }
static FP_UNUSED long fp_faults(const fp_proxy *p) { return p ? p->faults : 0; }
static FP_UNUSED long fp_faults_of(const fp_proxy *p, int kind) { return p ? p->by_kind[kind] : 0; }
static FP_UNUSED long fp_conns(const fp_proxy *p) { return p ? p->conns : 0; }
/* When the faults injected so far are over: a client should have recovered
   a reconnect (its idle timeout plus its backoff) after it. */
static FP_UNUSED int64_t fp_quiet_at(const fp_proxy *p) { return p ? p->quiet_at : 0; }
/* 1 = inject nothing more (connections already planned still fire); 0 = go on. */
static FP_UNUSED void fp_calm(fp_proxy *p, int calm) { if (p) p->calm = calm; }

/* Stop: close the listener, cancel every task (each link closes its
   sockets as its last task returns), free the proxy. */
static FP_UNUSED void fp_stop(fp_proxy *p) {
    if (!p) return;
    p->stopping = 1;
    fp_listen_close(p);
    pr_group_close(p->g, PR_FOREVER);
    free(p);
}

#endif /* FP_FAULTPROXY_C */

#ifdef PR_FAULTPROXY_MAIN
static int fp_usage(int rc) {
    fprintf(rc ? stderr : stdout,
            "usage: faultproxy --listen PORT --to HOST:PORT [options]\n"
            "  a TCP proxy on 127.0.0.1:PORT to HOST:PORT that injects faults\n"
            "  --seed N        the random choices (1); the same seed, the same faults\n"
            "  --faults LIST   the kinds chosen at random, comma-separated (all):\n"
            "                  reset stall half-close drip truncate delay-accept empty\n"
            "                  accept-rst (per connection), refuse restart (the proxy)\n"
            "  --rate PCT      the share of connections that get a fault (30)\n"
            "  --script LIST   the first connections' faults in order, kind[@BYTE]\n"
            "                  (e.g. reset@100,none,stall@0), then the random ones\n"
            "  --at N          a fault fires at a byte in 0..N toward the client (8192)\n"
            "  --after MS      ... or after at most MS anyway (3000)\n"
            "  --stall MS      a stall's silence (5000)       --delay MS  delayed accept (1000)\n"
            "  --outage MS     refuse/restart: not listening for MS..1.5 MS (2000)\n"
            "  --chaos MS      mean gap between refuse/restart faults (10000; 0 = none)\n"
            "  --lifetime MS   stop after MS (3600000); -v  one line per fault on stderr\n"
            "It prints its port, and at the end the faults it injected, by kind.\n");
    return rc;
}

int main(int argc, char **argv) {
    fp_opts o;
    fp_proxy *p = NULL;
    long lifetime = 3600000, mask;
    int i, rc, k;
    memset(&o, 0, sizeof o);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return fp_usage(0);
        if (strcmp(a, "-v") == 0) {
            o.verbose = 1;
            continue;
        }
        if (!v) return fp_usage(2);
        i++;
        if (strcmp(a, "--listen") == 0) o.listen_port = (uint16_t)atoi(v);
        else if (strcmp(a, "--to") == 0) {
            const char *c = strrchr(v, ':');
            static char host[256];
            if (!c || (size_t)(c - v) >= sizeof host) return fp_usage(2);
            memcpy(host, v, (size_t)(c - v));
            host[c - v] = 0;
            o.to_host = host;
            o.to_port = (uint16_t)atoi(c + 1);
        } else if (strcmp(a, "--seed") == 0) o.seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--faults") == 0) {
            if ((mask = fp_kinds_mask(v)) <= 0) return fp_usage(2);
            o.kinds = (unsigned)mask;
        } else if (strcmp(a, "--rate") == 0) o.rate_pct = atoi(v) ? atoi(v) : -1;
        else if (strcmp(a, "--script") == 0) o.script = v;
        else if (strcmp(a, "--at") == 0) o.at_max = atoi(v);
        else if (strcmp(a, "--after") == 0) o.after_max_ms = atoi(v);
        else if (strcmp(a, "--stall") == 0) o.stall_ms = atoi(v);
        else if (strcmp(a, "--delay") == 0) o.delay_ms = atoi(v);
        else if (strcmp(a, "--outage") == 0) o.outage_ms = atoi(v);
        else if (strcmp(a, "--chaos") == 0) o.chaos_ms = atoi(v) ? atoi(v) : -1;
        else if (strcmp(a, "--lifetime") == 0) lifetime = atol(v);
        else return fp_usage(2);
    }
    if (!o.to_port) return fp_usage(2);
    if ((rc = fp_start(&p, &o)) != PR_OK) {
        fprintf(stderr, "faultproxy: cannot listen: %s\n", pr_strerror(rc));
        return 1;
    }
    printf("%u\n", (unsigned)fp_port(p));
    fflush(stdout);
    pr_sleep(pr_deadline_in(lifetime));
    printf("faults=%ld conns=%ld", fp_faults(p), fp_conns(p));
    for (k = 1; k < FP_NKINDS; k++) printf(" %s=%ld", fp_kind_names[k], fp_faults_of(p, k));
    printf("\n");
    fp_stop(p);
    pr_sched_destroy();
    return 0;
}
#endif
