/* base: error codes, allocator and logger hooks. */

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

const pt_suite pt_suite_base = { "base", {
    PT_ENTRY(base_errname_and_text),
    PT_ENTRY(base_error_values_stable),
    PT_ENTRY(base_hooks_frozen_while_sched_runs),
    PT_ENTRY(base_log_levels_and_truncation),
    PT_ENTRY(base_err_info_fill),
    PT_ENTRY(base_err_wrap_keeps_the_cause),
    PT_ENTRY(base_realloc_emulated_without_hook),
    {0, 0} } };
