/* base: error codes, allocator and logger hooks, random numbers, the
   intrusive FIFO list. */

PT_TEST(base_errname_and_text) {
    PT_EQ_STR(pr_errname(PR_OK), "PR_OK");
    PT_EQ_STR(pr_errname(PR_ETIMEDOUT), "PR_ETIMEDOUT");
    PT_EQ_STR(pr_errname(PR_ENOTSUP), "PR_ENOTSUP");
    PT_EQ_STR(pr_errname(-999), "PR_E?");
    PT_EQ_STR(pr_strerror(PR_ECANCELED), "canceled");
    PT_EQ_STR(pr_strerror(12345), "unknown error");
}

PT_TEST(base_error_values_stable) {
    /* Append-only: these numbers are ABI. */
    PT_EQ_INT(PR_EINVAL, -1);
    PT_EQ_INT(PR_ENOMEM, -2);
    PT_EQ_INT(PR_ETIMEDOUT, -3);
    PT_EQ_INT(PR_ECANCELED, -4);
    PT_EQ_INT(PR_ECLOSED, -5);
    PT_EQ_INT(PR_EIO, -6);
    PT_EQ_INT(PR_ENOTSUP, -12);
}

PT_TEST(base_hooks_frozen_while_sched_runs) {
    /* The test body runs inside a scheduler, so both setters refuse. */
    pr_allocator a = { 0, 0, 0, 0 };
    pr_logger l = { pr_log_stderr, NULL, PR_LEVEL_DEBUG };
    PT_EQ_ERR(pr_set_allocator(&a), PR_ESTATE);
    PT_EQ_ERR(pr_set_logger(&l), PR_ESTATE);
}

static char base_log_msg[300];
static int base_log_level;
static void base_log_fn(int level, const char *module, const char *msg, void *ud) {
    (void)ud;
    base_log_level = level;
    snprintf(base_log_msg, sizeof base_log_msg, "%s|%s", module, msg);
}

static void *base_thread_logs(void *arg) {
    /* A thread without a scheduler may install hooks only while no scheduler
       runs anywhere; here we call the log macro directly instead. */
    (void)arg;
    PR__LOG(PR_LEVEL_WARN, "test", "value=%d", 42);
    PR__LOG(PR_LEVEL_DEBUG, "test", "dropped %d", 1);
    return NULL;
}

PT_TEST(base_log_levels_and_truncation) {
    pr_logger saved = pr__logger;
    pthread_t th;
    char big[600];
    pr__logger.fn = base_log_fn;
    pr__logger.max_level = PR_LEVEL_WARN;
    base_log_msg[0] = 0;
    pthread_create(&th, NULL, base_thread_logs, NULL);
    pthread_join(th, NULL);
    PT_EQ_STR(base_log_msg, "test|value=42");
    PT_EQ_INT(base_log_level, PR_LEVEL_WARN);
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    PR__LOG(PR_LEVEL_ERROR, "test", "%s", big);
    PT_EQ_INT((long long)strlen(base_log_msg), (long long)strlen("test|") + 255);
    PT_CHECK(strcmp(base_log_msg + strlen(base_log_msg) - 3, "...") == 0);
    pr__logger = saved;
}

PT_TEST(base_err_info_fill) {
    pr_err_info info;
    PT_EQ_ERR(pr__err_set(&info, PR_EIO, 11, "read %s failed", "fd"), PR_EIO);
    PT_EQ_INT(info.code, PR_EIO);
    PT_EQ_INT(info.sys_errno, 11);
    PT_EQ_STR(info.msg, "read fd failed");
}

/* A wrapped error keeps its cause whole (the prefix gives way) and the
   cause's detail; the cause may be the block being filled. */
PT_TEST(base_err_wrap_keeps_the_cause) {
    static const char tls[] = "TLS handshake failed: certificate signed by an unknown CA (not trusted) (BearSSL error 62)";
    pr_err_info cause, out;
    char pre[300], want[sizeof out.msg];
    size_t room = sizeof out.msg - 1, keep;
    pr__err_set(&cause, PR_EIO, 111, "connect to 127.0.0.1:1: %s", "Connection refused");
    cause.tls_error = 7;
    cause.http_status = 503;
    PT_EQ_ERR(pr__err_wrap(&out, PR_EHTTP, &cause, "sse: %d failed connections in a row; the last", 3), PR_EHTTP);
    PT_EQ_INT(out.code, PR_EHTTP);
    PT_EQ_INT(out.sys_errno, 111);
    PT_EQ_INT(out.tls_error, 7);
    PT_EQ_INT(out.http_status, 503);
    PT_EQ_STR(out.msg, "sse: 3 failed connections in a row; the last: connect to 127.0.0.1:1: Connection refused");
    /* too long together: the prefix is cut, never the cause */
    pr__err_set(&cause, PR_ETLS, 0, "%s", tls);
    memset(pre, 'p', sizeof pre - 1);
    pre[sizeof pre - 1] = 0;
    pr__err_wrap(&cause, PR_EFAILED, &cause, "%s", pre);
    keep = room - strlen(tls) - 2;
    memset(want, 'p', keep);
    snprintf(want + keep, sizeof want - keep, ": %s", tls);
    PT_EQ_STR(cause.msg, want);
    PT_EQ_INT((long long)strlen(cause.msg), (long long)room);
    /* no message in the cause: the prefix alone */
    memset(&cause, 0, sizeof cause);
    pr__err_wrap(&out, PR_EIO, &cause, "ds: %s", "append");
    PT_EQ_STR(out.msg, "ds: append");
}

PT_TEST(base_realloc_emulated_without_hook) {
    pr_allocator saved = pr__allocator;
    char *p;
    pr__allocator.realloc = NULL; /* direct poke: the public setter refuses while a scheduler runs */
    p = (char *)pr__alloc(4);
    PT_REQUIRE(p != NULL);
    memcpy(p, "abcd", 4);
    p = (char *)pr__realloc(p, 4, 100);
    PT_REQUIRE(p != NULL);
    PT_EQ_MEM(p, "abcd", 4);
    pr__free(p, 100);
    pr__allocator = saved;
}

typedef struct base_item {
    int id;
    pr__link link;
} base_item;

/* The ids of l from head to tail (and back from the tail, checked), into out. */
static size_t base_list_ids(const pr__list *l, int *out, size_t max) {
    const pr__link *x, *prev = NULL;
    size_t n = 0;
    for (x = l->head; x && n < max; prev = x, x = x->next) {
        PT_CHECK(x->prev == prev);
        out[n++] = PR__CONTAINER_OF(x, base_item, link)->id;
    }
    PT_CHECK(l->tail == prev);
    return n;
}

PT_TEST(base_list_fifo_unlink_anywhere) {
    base_item it[4];
    pr__list l;
    int ids[8];
    size_t i;
    memset(&l, 0, sizeof l);
    for (i = 0; i < 4; i++) {
        it[i].id = (int)i;
        pr__list_push(&l, &it[i].link);
    }
    PT_EQ_INT(l.n, 4);
    PT_EQ_INT(base_list_ids(&l, ids, 8), 4);
    for (i = 0; i < 4; i++) PT_EQ_INT(ids[i], (int)i);
    pr__list_unlink(&l, &it[1].link); /* the middle */
    PT_CHECK(!it[1].link.prev && !it[1].link.next);
    pr__list_unlink(&l, &it[0].link); /* the head */
    pr__list_unlink(&l, &it[3].link); /* the tail */
    PT_EQ_INT(l.n, 1);
    PT_EQ_INT(base_list_ids(&l, ids, 8), 1);
    PT_EQ_INT(ids[0], 2);
    pr__list_push(&l, &it[0].link); /* a node goes back at the tail */
    PT_EQ_INT(base_list_ids(&l, ids, 8), 2);
    PT_EQ_INT(ids[0], 2);
    PT_EQ_INT(ids[1], 0);
    pr__list_unlink(&l, &it[2].link);
    pr__list_unlink(&l, &it[0].link);
    PT_CHECK(!l.head && !l.tail && l.n == 0);
}

PT_TEST(base_random_bounds) {
    double lo = 1, hi = 0, sum = 0;
    int i;
    for (i = 0; i < 10000; i++) {
        double r = pr_random();
        PT_REQUIRE(r >= 0 && r < 1);
        if (r < lo) lo = r;
        if (r > hi) hi = r;
        sum += r;
    }
    PT_CHECK(lo < 0.01 && hi > 0.99);
    PT_CHECK(sum / 10000 > 0.45 && sum / 10000 < 0.55);
    PT_CHECK(pr__random_u64() != pr__random_u64());
}

const pt_suite pt_suite_base = { "base", {
    PT_ENTRY(base_errname_and_text),
    PT_ENTRY(base_error_values_stable),
    PT_ENTRY(base_hooks_frozen_while_sched_runs),
    PT_ENTRY(base_log_levels_and_truncation),
    PT_ENTRY(base_err_info_fill),
    PT_ENTRY(base_err_wrap_keeps_the_cause),
    PT_ENTRY(base_realloc_emulated_without_hook),
    PT_ENTRY(base_list_fifo_unlink_anywhere),
    PT_ENTRY(base_random_bounds),
    {0, 0} } };
