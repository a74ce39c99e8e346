/* fuzz.h - what the libFuzzer targets (tests/fuzz_*.c) share. Include it
   after pristine.h.

   - fz_conn: a scripted pr_conn. Its reads hand out head (may be empty)
     then data, each read a fresh heap copy so a view kept past its read is
     caught by ASan. With splits, each read is cut to the next of nsplits
     sizes (cycled), over the first split_len bytes of data only when
     split_len > 0 (the rest then comes as asked). Writes are swallowed;
     the end of the script reads as PR_ECLOSED.
   - fz_log: a growable byte log, for differential checks.
   - fz_read_body: a response body read to its end in one of three styles,
     into a log. */
#ifndef PRISTINE_FUZZ_H
#define PRISTINE_FUZZ_H

typedef struct fz_conn {
    pr_conn base; /* first */
    const unsigned char *head, *data;
    size_t head_len, len, pos;   /* pos runs over head, then data */
    const unsigned char *splits; /* read sizes (each >= 1), cycled; NULL = as much as asked */
    unsigned nsplits, si;
    size_t split_len;            /* > 0: only the first split_len bytes of data are cut */
} fz_conn;

static inline ptrdiff_t fz_read(pr_conn *c, void *buf, size_t n, int64_t deadline) {
    fz_conn *f = (fz_conn *)(void *)c;
    size_t k = f->head_len + f->len - f->pos, i;
    unsigned char *tmp;
    (void)deadline;
    if (!k) return PR_ECLOSED;
    if (k > n) k = n;
    if (f->splits && !(f->split_len && f->pos >= f->head_len + f->split_len)) {
        size_t s = f->splits[f->si++ % f->nsplits];
        if (k > s) k = s;
    }
    tmp = (unsigned char *)malloc(k);
    if (!tmp) abort();
    for (i = 0; i < k; i++) {
        size_t at = f->pos + i;
        tmp[i] = at < f->head_len ? f->head[at] : f->data[at - f->head_len];
    }
    memcpy(buf, tmp, k);
    free(tmp);
    f->pos += k;
    return (ptrdiff_t)k;
}

static inline ptrdiff_t fz_write(pr_conn *c, const void *buf, size_t n, int64_t deadline) {
    (void)c, (void)buf, (void)deadline;
    return (ptrdiff_t)n;
}

static inline int fz_shutdown(pr_conn *c, int64_t deadline) {
    (void)c, (void)deadline;
    return PR_OK;
}

static inline void fz_destroy(pr_conn *c) { (void)c; }

static const pr_conn_ops fz_ops = { fz_read, fz_write, fz_shutdown, fz_destroy };

/* A connection that hands out data whole (set splits after, to cut it). */
static inline void fz_conn_init(fz_conn *f, const unsigned char *data, size_t len) {
    memset(f, 0, sizeof *f);
    f->base.ops = &fz_ops;
    f->data = data;
    f->len = len;
}

typedef struct fz_log {
    unsigned char *p;
    size_t len, cap;
} fz_log;

static inline void fz_put(fz_log *l, const void *s, size_t n) {
    if (l->len + n > l->cap) {
        size_t cap = l->cap ? l->cap : 1024;
        while (cap < l->len + n) cap *= 2;
        l->p = (unsigned char *)realloc(l->p, cap);
        if (!l->p) abort();
        l->cap = cap;
    }
    if (n) memcpy(l->p + l->len, s, n);
    l->len += n;
}

/* A string with its length in front, so that neighbours cannot blur. */
static inline void fz_put_str(fz_log *l, const char *s, size_t n) {
    fz_put(l, &n, sizeof n);
    fz_put(l, s, n);
}

static inline int fz_log_same(const fz_log *a, const fz_log *b) {
    return a->len == b->len && (!a->len || memcmp(a->p, b->p, a->len) == 0);
}

/* Read r's body to its end into out: mode 0 with pr_http_read into 7
   bytes, 1 into 64 KiB and more, 2 with pr_http_next_span. Returns the
   code that ended it (PR_ECLOSED at a clean end). */
static inline int fz_read_body(pr_http_response *r, int mode, fz_log *out) {
    static char big[70000];
    for (;;) {
        if (mode == 2) {
            const char *p;
            size_t n;
            int rc = pr_http_next_span(r, &p, &n, PR_FOREVER);
            if (rc) return rc;
            if (!n) abort();
            fz_put(out, p, n);
        } else {
            size_t want = mode == 1 ? sizeof big : 7;
            ptrdiff_t k = pr_http_read(r, big, want, PR_FOREVER);
            if (k <= 0) return (int)k;
            if ((size_t)k > want) abort();
            fz_put(out, big, (size_t)k);
        }
    }
}

#endif
