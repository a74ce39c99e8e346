/* cli: build/pristine (tools/pristine.c, built by tests/run.sh with the
   runner's flags) run as a child process against the embedded test server
   (tools/testserver.c) and the reference Durable Streams server (started
   as in test_ds.c). Each run's stdout, stderr and exit code are captured
   while the test's task keeps serving (the servers live on this thread);
   every run is bounded by a hang guard that kills it. Checks are on exit
   codes, outputs and counts, never on message text. */
#include <sys/wait.h>

#define CLI_BIN "build/pristine"

extern char **environ;

typedef struct cli_proc {
    pid_t pid;
    int out, err;    /* the parent's ends; -1 once at their end */
    int in;          /* the write end of stdin when in_path was "|", else -1 */
    pr_buf o, e;     /* what the child wrote so far */
    int code;        /* exit code (128 + signal when killed); -1 while it runs */
} cli_proc;

static const char *cli_text(const pr_buf *b) { return b->data ? b->data : ""; }

static long cli_lines(const pr_buf *b) {
    long n = 0;
    size_t i;
    for (i = 0; i < b->len; i++) n += b->data[i] == '\n';
    return n;
}

/* Start build/pristine with args (NULL-terminated) and the runner's
   environment without STREAM_URL / STREAM_AUTH, plus env (NULL-terminated
   "NAME=value"; NULL = none); stdin is the file at in_path (NULL =
   /dev/null; "|" = a pipe, p->in its write end). Only async-signal-safe
   calls happen in the child. */
static int cli_start(cli_proc *p, const char *const *args, const char *const *env, const char *in_path) {
    /* tests/cross.sh: PT_CLI_BIN, a foreign build of the program, started
       by the emulator PT_CLI_EMU (qemu-user does not follow execve) */
    const char *bin = getenv("PT_CLI_BIN") ? getenv("PT_CLI_BIN") : CLI_BIN, *emu = getenv("PT_CLI_EMU");
    const char *argv[41], *envp[400];
    int o[2], e[2], ip[2] = { -1, -1 }, in, i, n = 0, a = 0;
    memset(p, 0, sizeof *p);
    p->code = -1;
    p->in = -1;
    if (emu) argv[a++] = emu;
    argv[a++] = bin;
    for (i = 0; args[i] && i < 38; i++) argv[a + i] = args[i];
    argv[a + i] = NULL;
    for (i = 0; environ[i] && n < 380; i++)
        if (strncmp(environ[i], "STREAM_URL=", 11) != 0 && strncmp(environ[i], "STREAM_AUTH=", 12) != 0)
            envp[n++] = environ[i];
    for (i = 0; env && env[i] && n < 398; i++) envp[n++] = env[i];
    envp[n] = NULL;
    if (in_path && strcmp(in_path, "|") == 0) {
        if (pipe(ip) != 0) return PR_EIO;
        in = ip[0];
    } else if ((in = open(in_path ? in_path : "/dev/null", O_RDONLY)) < 0) {
        return PR_EIO;
    }
    if (pipe(o) != 0) {
        close(in);
        return PR_EIO;
    }
    if (pipe(e) != 0) {
        close(in);
        close(o[0]);
        close(o[1]);
        return PR_EIO;
    }
    fflush(NULL);
    if ((p->pid = fork()) == 0) {
        sigset_t none;
        int fd;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        dup2(in, 0);
        dup2(o[1], 1);
        dup2(e[1], 2);
        for (fd = 3; fd < 1024; fd++) close(fd);
        execve(argv[0], (char *const *)argv, (char *const *)envp);
        _exit(127);
    }
    close(in);
    close(o[1]);
    close(e[1]);
    p->in = ip[1];
    p->out = o[0];
    p->err = e[0];
    fcntl(p->out, F_SETFL, O_NONBLOCK);
    fcntl(p->err, F_SETFL, O_NONBLOCK);
    if (p->pid < 0) {
        close(p->out);
        close(p->err);
        return PR_EIO;
    }
    return PR_OK;
}

static void cli_drain(int *fd, pr_buf *b) {
    for (;;) {
        ssize_t n;
        if (*fd < 0 || pr_buf_reserve(b, 4096) != PR_OK) return;
        n = read(*fd, b->data + b->len, 4096);
        if (n > 0) {
            b->len += (size_t)n;
            b->data[b->len] = 0;
        } else if (n == 0 || errno != EAGAIN) {
            close(*fd);
            *fd = -1;
        } else {
            return;
        }
    }
}

/* Take in what the child wrote; note its exit. */
static void cli_poll(cli_proc *p) {
    int st;
    cli_drain(&p->out, &p->o);
    cli_drain(&p->err, &p->e);
    if (p->code < 0 && waitpid(p->pid, &st, WNOHANG) == p->pid)
        p->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Wait (at most ms, a hang guard) until stdout holds needle; 1 if it does. */
static int cli_wait_out(cli_proc *p, const char *needle, int ms) {
    int64_t until = pr_deadline_in(ms);
    for (;;) {
        cli_poll(p);
        if (strstr(cli_text(&p->o), needle)) return 1;
        if (p->out < 0 || pr_now() >= until) return 0;
        pr_sleep(pr_deadline_in(10));
    }
}

/* Wait (at most ms) for the child to exit and close its output; kill it
   past that (a failure). Returns its exit code. */
static int cli_end(cli_proc *p, int ms) {
    int64_t until = pr_deadline_in(ms);
    for (;;) {
        cli_poll(p);
        if (p->code >= 0 && p->out < 0 && p->err < 0) return p->code;
        if (pr_now() >= until) {
            pt_fail(__FILE__, __LINE__, "pristine still runs after %d ms: killed (stderr: %s)", ms, cli_text(&p->e));
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
            if (p->out >= 0) close(p->out);
            if (p->err >= 0) close(p->err);
            p->out = p->err = -1;
            return p->code = 999;
        }
        pr_sleep(pr_deadline_in(10));
    }
}

static void cli_free(cli_proc *p) {
    if (p->in >= 0) close(p->in);
    p->in = -1;
    pr_buf_deinit(&p->o);
    pr_buf_deinit(&p->e);
}

/* Run to the end (within 30 s): the exit code. */
static int cli_run(cli_proc *p, const char *const *args, const char *const *env, const char *in_path) {
    if (cli_start(p, args, env, in_path) != PR_OK) {
        pt_fail(__FILE__, __LINE__, "could not start %s", CLI_BIN);
        return -1;
    }
    return cli_end(p, 30000);
}

/* A file under build/ holding text, for stdin or -d @FILE. */
static const char *cli_file(const char *name, const char *text) {
    static char path[8][64];
    static int k;
    char *pth = path[k++ % 8];
    FILE *f;
    snprintf(pth, 64, "build/cli_%s", name);
    if (!(f = fopen(pth, "wb"))) return NULL;
    fputs(text, f);
    fclose(f);
    return pth;
}

/* A test server for a test; its base URL in base. */
static ts_server *cli_ts(char *base, size_t cap) {
    ts_server *s = NULL;
    ts_opts o;
    memset(&o, 0, sizeof o);
    o.max_lifetime_ms = 60000;
    if (ts_start(&s, &o) != PR_OK) return NULL;
    snprintf(base, cap, "http://127.0.0.1:%u", (unsigned)ts_port(s));
    return s;
}

/* ---- sse ---- */

/* Events print as an event stream (event, id, one data line per line, a
   blank line) or, with --json, one object per line; --max-events stops. */
PT_TEST(cli_sse_readable_and_json) {
    char base[64], url[160];
    ts_server *s;
    cli_proc p;
    PT_REQUIRE((s = cli_ts(base, sizeof base)) != NULL);
    snprintf(url, sizeof url, "%s/sse?events=3&id=1&type=tick&lines=2", base);
    {
        const char *args[] = { "sse", url, "--max-events", "2", NULL };
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 0);
        PT_EQ_STR(cli_text(&p.o), "event: tick\nid: 1\ndata: event 1\ndata: line 1\n\n"
                                  "event: tick\nid: 2\ndata: event 2\ndata: line 1\n\n");
        PT_EQ_INT(p.e.len, 0);
        cli_free(&p);
    }
    snprintf(url, sizeof url, "%s/sse?events=2&lines=2", base);
    {
        const char *args[] = { "--json", "sse", url, "--max-events", "2", NULL };
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 0);
        PT_EQ_STR(cli_text(&p.o), "{\"id\":null,\"event\":\"message\",\"data\":\"event 1\\nline 1\"}\n"
                                  "{\"id\":null,\"event\":\"message\",\"data\":\"event 2\\nline 1\"}\n");
        cli_free(&p);
    }
    ts_stop(s);
}

/* A stream that drops after every second event (half an event in flight)
   goes on with Last-Event-ID: ids 1..5, each once, in order. */
PT_TEST(cli_sse_resumes_across_drops) {
    char base[64], url[200];
    ts_server *s;
    cli_proc p;
    size_t i, with_lei = 0;
    PT_REQUIRE((s = cli_ts(base, sizeof base)) != NULL);
    snprintf(url, sizeof url, "%s/sse?events=5&id=1&retry=50&drop_after=2&drop_partial=1", base);
    {
        const char *args[] = { "sse", "--json", url, "--max-events", "5", NULL };
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 0);
    }
    PT_EQ_STR(cli_text(&p.o), "{\"id\":\"1\",\"event\":\"message\",\"data\":\"event 1\"}\n"
                              "{\"id\":\"2\",\"event\":\"message\",\"data\":\"event 2\"}\n"
                              "{\"id\":\"3\",\"event\":\"message\",\"data\":\"event 3\"}\n"
                              "{\"id\":\"4\",\"event\":\"message\",\"data\":\"event 4\"}\n"
                              "{\"id\":\"5\",\"event\":\"message\",\"data\":\"event 5\"}\n");
    PT_CHECK(ts_log_count(s) >= 3);
    for (i = 0; i < ts_log_count(s); i++) {
        pr_slice v;
        with_lei += ts_log_header(ts_log_get(s, i), "Last-Event-ID", &v) == 1;
    }
    PT_CHECK(with_lei >= 2);
    cli_free(&p);
    ts_stop(s);
}

/* -d @FILE sends the file as a POST body; the stream's end is final for a
   request that cannot be repeated: exit 0 after its events. -H reaches
   the server. */
PT_TEST(cli_sse_post_body_and_header) {
    static const char body[] = "{\"model\":\"m\",\"stream\":true,\"messages\":[\"hi\"]}\n";
    char base[64], url[160];
    const char *file = cli_file("post.json", body);
    const ts_logged *e;
    pr_slice v;
    ts_server *s;
    cli_proc p;
    PT_REQUIRE(file != NULL);
    PT_REQUIRE((s = cli_ts(base, sizeof base)) != NULL);
    snprintf(url, sizeof url, "%s/sse?events=2", base);
    {
        char data[80];
        const char *args[] = { "sse", "-d", data, "-H", "X-Cli-Test: 42", url, NULL };
        snprintf(data, sizeof data, "@%s", file);
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 0);
    }
    PT_EQ_INT(cli_lines(&p.o), 6);
    PT_EQ_INT(ts_log_count(s), 1);
    PT_REQUIRE((e = ts_log_get(s, 0)) != NULL);
    PT_CHECK(pr_slice_eq(e->method, pr_slice_cstr("POST")));
    PT_EQ_INT(e->body_len, strlen(body));
    PT_EQ_STR(e->body, body);
    PT_EQ_INT(ts_log_header(e, "X-Cli-Test", &v), 1);
    PT_CHECK(pr_slice_eq(v, pr_slice_cstr("42")));
    cli_free(&p);
    ts_stop(s);
}

/* SIGINT to a stream waiting for its next event: exit 130 with nothing
   on stderr. */
PT_TEST(cli_sse_sigint_exits_130) {
    char base[64], url[160];
    ts_server *s;
    cli_proc p;
    PT_REQUIRE((s = cli_ts(base, sizeof base)) != NULL);
    snprintf(url, sizeof url, "%s/sse?events=1&hold_ms=30000", base);
    {
        const char *args[] = { "sse", url, NULL };
        PT_REQUIRE(cli_start(&p, args, NULL, NULL) == PR_OK);
    }
    PT_CHECK(cli_wait_out(&p, "data: event 1\n\n", 10000));
    kill(p.pid, SIGINT);
    PT_EQ_INT(cli_end(&p, 10000), 130);
    PT_EQ_INT(p.e.len, 0);
    cli_free(&p);
    ts_stop(s);
}

/* A 204 is the server saying stop, at the start or on a reconnect: exit
   0, nothing on stderr (with -v: a line that says so). */
PT_TEST(cli_sse_204_is_the_end) {
    char base[64], url[160];
    ts_server *s;
    ts_step st[2];
    cli_proc p;
    PT_REQUIRE((s = cli_ts(base, sizeof base)) != NULL);
    snprintf(url, sizeof url, "%s/sse?status=204", base);
    {
        const char *args[] = { "sse", url, NULL };
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 0);
        PT_EQ_INT(p.o.len, 0);
        PT_EQ_INT(p.e.len, 0);
        cli_free(&p);
    }
    {
        const char *args[] = { "sse", "-v", url, NULL };
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 0);
        PT_CHECK(p.e.len > 0);
        cli_free(&p);
    }
    memset(st, 0, sizeof st);
    st[0].headers = "Content-Type: text/event-stream\r\n";
    st[0].body = "retry: 10\nid: 1\ndata: a\n\n"; /* then the body ends: a reconnect */
    st[1].status = 204;
    PT_EQ_ERR(ts_script(s, "/ends", st, 2), PR_OK);
    snprintf(url, sizeof url, "%s/ends", base);
    {
        const char *args[] = { "sse", url, NULL };
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 0);
        PT_EQ_STR(cli_text(&p.o), "event: message\nid: 1\ndata: a\n\n");
        PT_EQ_INT(p.e.len, 0);
        cli_free(&p);
    }
    PT_EQ_INT(ts_log_count(s), 4);
    ts_stop(s);
}

/* ---- get ---- */

/* A body to stdout and to -o FILE, byte for byte; a 404 is exit 3 with one
   line on stderr and nothing on stdout; --timeout on a stalled body is 5. */
PT_TEST(cli_get_body_404_timeout) {
    enum { LEN = 200000 };
    char base[64], url[160], *want;
    ts_server *s;
    cli_proc p;
    size_t i;
    FILE *f;
    PT_REQUIRE((want = (char *)malloc(LEN)) != NULL);
    for (i = 0; i < LEN; i++) want[i] = (char)('a' + i % 26);
    PT_REQUIRE((s = cli_ts(base, sizeof base)) != NULL);
    snprintf(url, sizeof url, "%s/fixed?len=%d", base, LEN);
    {
        const char *args[] = { "get", url, NULL };
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 0);
        PT_EQ_INT(p.o.len, LEN);
        if (p.o.len == LEN) PT_EQ_MEM(p.o.data, want, LEN);
        cli_free(&p);
    }
    {
        const char *args[] = { "get", "-o", "build/cli_get.out", url, NULL };
        char *got = (char *)malloc(LEN + 1);
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 0);
        PT_EQ_INT(p.o.len, 0);
        PT_REQUIRE(got != NULL);
        if ((f = fopen("build/cli_get.out", "rb")) != NULL) {
            PT_EQ_INT(fread(got, 1, LEN + 1, f), LEN);
            PT_EQ_MEM(got, want, LEN);
            fclose(f);
        } else {
            pt_fail(__FILE__, __LINE__, "no build/cli_get.out");
        }
        free(got);
        cli_free(&p);
    }
    snprintf(url, sizeof url, "%s/nothing-here", base);
    {
        const char *args[] = { "get", url, NULL };
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 3);
        PT_EQ_INT(p.o.len, 0);
        PT_EQ_INT(cli_lines(&p.e), 1);
        cli_free(&p);
    }
    snprintf(url, sizeof url, "%s/stall?after=10", base);
    {
        const char *args[] = { "get", url, "--timeout", "0.3", NULL };
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 5);
        PT_EQ_INT(p.o.len, 10);
        PT_EQ_INT(cli_lines(&p.e), 1);
        cli_free(&p);
    }
    free(want);
    ts_stop(s);
}

/* A body that stalls ends after --idle-timeout of silence without any
   --timeout: exit 2 (a connection failure, not the deadline), the bytes
   before the stall on stdout, one line on stderr. */
PT_TEST(cli_get_idle_timeout) {
    char base[64], url[160];
    ts_server *s;
    cli_proc p;
    PT_REQUIRE((s = cli_ts(base, sizeof base)) != NULL);
    snprintf(url, sizeof url, "%s/stall?after=10", base);
    {
        const char *args[] = { "get", url, "--idle-timeout", "0.3", "--retries", "0", NULL };
        PT_REQUIRE(cli_start(&p, args, NULL, NULL) == PR_OK);
        PT_EQ_INT(cli_end(&p, 15000), 2); /* a hang guard: the stall lasts the server's lifetime */
        PT_EQ_INT(p.o.len, 10);
        PT_EQ_INT(cli_lines(&p.e), 1);
        cli_free(&p);
    }
    {
        const char *args[] = { "get", url, "--idle-timeout", "x", NULL };
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 1);
        cli_free(&p);
    }
    ts_stop(s);
}

/* Mutual TLS through --cacert, --cert and --key: the body with them; exit
   4 and one line without the client certificate, and without --cacert
   (the test CA is no system anchor). */
PT_TEST(cli_get_mutual_tls) {
#ifdef PRISTINE_NO_TLS
    PT_SKIP("no TLS in this build");
#else
    ts_server *s = NULL;
    ts_opts so;
    char url[128];
    cli_proc p;
    if (system("sh tests/fixtures/tls_mkcerts.sh build/tls-fixtures") != 0) PT_SKIP("no openssl to make certificates");
    memset(&so, 0, sizeof so);
    so.tls_cert_file = "build/tls-fixtures/good.crt";
    so.tls_key_file = "build/tls-fixtures/good.key";
    so.tls_client_ca_file = "build/tls-fixtures/ca.crt";
    PT_REQUIRE(ts_start(&s, &so) == PR_OK);
    snprintf(url, sizeof url, "https://localhost:%u/fixed?len=26", (unsigned)ts_port(s));
    {
        const char *args[] = { "get", url, "--cacert", "build/tls-fixtures/ca.crt", "--cert",
                               "build/tls-fixtures/client.crt", "--key", "build/tls-fixtures/client.key", NULL };
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 0);
        PT_EQ_STR(cli_text(&p.o), "abcdefghijklmnopqrstuvwxyz");
        cli_free(&p);
    }
    {
        const char *args[] = { "get", url, "--cacert", "build/tls-fixtures/ca.crt", NULL };
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 4);
        PT_EQ_INT(cli_lines(&p.e), 1);
        cli_free(&p);
    }
    {
        const char *args[] = { "sse", url, "--cert", "build/tls-fixtures/client.crt", "--key",
                               "build/tls-fixtures/client.key", NULL };
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 4);
        PT_EQ_INT(cli_lines(&p.e), 1);
        cli_free(&p);
    }
    ts_stop(s);
#endif
}

/* A port that refuses: exit 2 and one line naming the URL, for get, sse
   and future. */
PT_TEST(cli_refused_port) {
    pr_listener *l = NULL;
    char url[80];
    cli_proc p;
    int i;
    PT_REQUIRE(pr_tcp_listen(&l, "127.0.0.1", 0, 1, NULL) == PR_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", (unsigned)pr_listener_port(l));
    pr_listener_destroy(l); /* nobody listens there now */
    for (i = 0; i < 3; i++) {
        const char *get[] = { "get", url, NULL };
        const char *sse[] = { "sse", url, "--retries", "0", NULL };
        const char *fut[] = { "future", url, "req-1", "--retries", "0", NULL };
        const char *const *args = i == 0 ? get : i == 1 ? sse : fut;
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 2);
        PT_EQ_INT(p.o.len, 0);
        PT_EQ_INT(cli_lines(&p.e), 1);
        PT_CHECK(strstr(cli_text(&p.e), url) != NULL); /* the line names the URL, future's too */
        PT_CHECK(strstr(cli_text(&p.e), "status 0") == NULL); /* no answer has no status */
        cli_free(&p);
    }
    /* stdin through the producer: its delivery timeout ends it with the
       cause (exit 2), not a flush timeout passed off as --timeout (5) */
    {
        const char *args[] = { "ds", "append", url, "--content-type", "text/plain", NULL };
        const char *in = cli_file("refused.in", "a line\n");
        PT_REQUIRE(in != NULL);
        PT_EQ_INT(cli_run(&p, args, NULL, in), 2);
        PT_EQ_INT(p.o.len, 0);
        PT_EQ_INT(cli_lines(&p.e), 1);
        PT_CHECK(strstr(cli_text(&p.e), "PR_EFAILED") != NULL);
        cli_free(&p);
    }
}

/* ---- future ---- */

/* A remote future polled until done prints its result; one the server
   fails is exit 2 with one line. */
PT_TEST(cli_future_result_and_failure) {
    char base[64];
    ts_server *s;
    cli_proc p;
    pr_json_doc *doc = NULL;
    ts_step st;
    size_t n;
    const char *v;
    PT_REQUIRE((s = cli_ts(base, sizeof base)) != NULL);
    {
        const char *args[] = { "future", base, "req-9", NULL };
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 0);
    }
    PT_EQ_INT(cli_lines(&p.o), 1);
    PT_EQ_ERR(pr_json_parse(&doc, cli_text(&p.o), p.o.len, NULL, NULL), PR_OK);
    v = pr_json_string(pr_json_get(pr_json_root(doc), "result"), &n);
    PT_EQ_STR(v, "done");
    v = pr_json_string(pr_json_get(pr_json_root(doc), "request_id"), &n);
    PT_EQ_STR(v, "req-9");
    pr_json_doc_destroy(doc);
    cli_free(&p);
    memset(&st, 0, sizeof st);
    st.headers = "Content-Type: application/json\r\n";
    st.body = "{\"status\":\"failed\",\"error\":\"boom\",\"category\":\"user\"}";
    PT_EQ_ERR(ts_script(s, "/api/v1/retrieve_future#bad-1", &st, 1), PR_OK);
    {
        const char *args[] = { "future", base, "bad-1", NULL };
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 2);
    }
    PT_EQ_INT(p.o.len, 0);
    PT_EQ_INT(cli_lines(&p.e), 1);
    cli_free(&p);
    ts_stop(s);
}

/* ---- ds ---- */

/* STREAM_URL and STREAM_AUTH, the npm CLI's variables: a stream name goes
   after the base, the value goes in Authorization (the test server logs
   it and answers 404: exit 3). */
PT_TEST(cli_ds_env_url_and_auth) {
    char base[64], env_url[120];
    const ts_logged *e;
    pr_slice v;
    ts_server *s;
    cli_proc p;
    PT_REQUIRE((s = cli_ts(base, sizeof base)) != NULL);
    snprintf(env_url, sizeof env_url, "STREAM_URL=%s/v1/stream/", base);
    {
        const char *args[] = { "ds", "head", "envs", NULL };
        const char *env[] = { env_url, "STREAM_AUTH=Bearer tok-1", NULL };
        PT_EQ_INT(cli_run(&p, args, env, NULL), 3);
    }
    PT_EQ_INT(cli_lines(&p.e), 1);
    PT_REQUIRE(ts_log_count(s) >= 1);
    e = ts_log_get(s, 0);
    PT_CHECK(pr_slice_eq(e->path, pr_slice_cstr("/v1/stream/envs")));
    PT_EQ_INT(ts_log_header(e, "Authorization", &v), 1);
    PT_CHECK(pr_slice_eq(v, pr_slice_cstr("Bearer tok-1")));
    cli_free(&p);
    ts_stop(s);
}

/* The offset printed on stdout or after "next-offset: " on stderr. */
static void cli_offset(const pr_buf *b, const char *prefix, char *out, size_t cap) {
    const char *t = strstr(cli_text(b), prefix);
    size_t n;
    out[0] = 0;
    if (!t) return;
    t += strlen(prefix);
    n = strcspn(t, "\r\n");
    if (n < cap) {
        memcpy(out, t, n);
        out[n] = 0;
    }
}

/* create, append (arguments), read, head, close, append after close,
   delete, head and read of a deleted stream (the line says read); by name
   under STREAM_URL. */
PT_TEST(cli_ds_round_trip) {
    ds_fx f;
    char env_url[200], off[128];
    const char *env[2];
    cli_proc p;
    if (ds_start(&f) != 0) {
        ds_stop(&f);
        return;
    }
    snprintf(env_url, sizeof env_url, "STREAM_URL=%s/v1/stream", f.base);
    env[0] = env_url;
    env[1] = NULL;
    {
        const char *args[] = { "ds", "create", "rt", "--content-type", "text/plain", NULL };
        PT_EQ_INT(cli_run(&p, args, env, NULL), 0);
        cli_free(&p);
    }
    {
        const char *args[] = { "ds", "append", "rt", "ab", "cd", NULL };
        PT_EQ_INT(cli_run(&p, args, env, NULL), 0);
        cli_offset(&p.o, "", off, sizeof off);
        PT_CHECK(off[0] != 0);
        cli_free(&p);
    }
    {
        char got[128];
        const char *args[] = { "ds", "read", "rt", NULL };
        PT_EQ_INT(cli_run(&p, args, env, NULL), 0);
        PT_EQ_STR(cli_text(&p.o), "abcd");
        cli_offset(&p.e, "next-offset: ", got, sizeof got);
        PT_EQ_STR(got, off);
        cli_free(&p);
    }
    {
        const char *args[] = { "ds", "head", "rt", NULL };
        PT_EQ_INT(cli_run(&p, args, env, NULL), 0);
        PT_CHECK(strstr(cli_text(&p.o), "content-type: text/plain\n") != NULL);
        PT_CHECK(strstr(cli_text(&p.o), "closed: false\n") != NULL);
        cli_free(&p);
    }
    {
        const char *args[] = { "ds", "close", "rt", NULL };
        const char *head[] = { "ds", "head", "rt", NULL };
        const char *again[] = { "ds", "append", "rt", "ef", NULL };
        PT_EQ_INT(cli_run(&p, args, env, NULL), 0);
        cli_free(&p);
        PT_EQ_INT(cli_run(&p, head, env, NULL), 0);
        PT_CHECK(strstr(cli_text(&p.o), "closed: true\n") != NULL);
        cli_free(&p);
        PT_EQ_INT(cli_run(&p, again, env, NULL), 3);
        PT_EQ_INT(cli_lines(&p.e), 1);
        cli_free(&p);
    }
    {
        const char *del[] = { "ds", "delete", "rt", NULL };
        const char *head[] = { "ds", "head", "rt", NULL };
        const char *read[] = { "ds", "read", "rt", NULL };
        PT_EQ_INT(cli_run(&p, del, env, NULL), 0);
        cli_free(&p);
        PT_EQ_INT(cli_run(&p, head, env, NULL), 3);
        PT_EQ_INT(cli_lines(&p.e), 1);
        cli_free(&p);
        PT_EQ_INT(cli_run(&p, read, env, NULL), 3);
        PT_EQ_INT(cli_lines(&p.e), 1);
        PT_CHECK(strstr(cli_text(&p.e), "read") != NULL); /* the read failed, not some head */
        cli_free(&p);
    }
    ds_stop(&f);
}

/* close with a final message on a text/plain and on a JSON stream: the
   data goes in the stream's own content type (learned with a HEAD), exit
   0, and it reads back. */
PT_TEST(cli_ds_close_with_data_learns_type) {
    static const char *const types[][3] = { { "/v1/stream/ct", "--content-type", "text/plain" },
                                            { "/v1/stream/cj", "--json", NULL } };
    static const char *const data[] = { "bye", "{\"a\":1}" }, *const want[] = { "ab bye", "\"x\"\n{\"a\":1}\n" };
    static const char *const first[] = { "ab ", "\"x\"" };
    ds_fx f;
    cli_proc p;
    size_t i;
    if (ds_start(&f) != 0) {
        ds_stop(&f);
        return;
    }
    for (i = 0; i < 2; i++) {
        const char *url = ds_url(&f, types[i][0]);
        const char *create[] = { "ds", "create", url, types[i][1], types[i][2], NULL };
        const char *append[] = { "ds", "append", url, first[i], NULL };
        const char *close[] = { "ds", "close", url, data[i], NULL };
        const char *read[] = { "ds", "read", url, NULL };
        PT_EQ_INT(cli_run(&p, create, NULL, NULL), 0);
        cli_free(&p);
        PT_EQ_INT(cli_run(&p, append, NULL, NULL), 0);
        cli_free(&p);
        PT_EQ_INT(cli_run(&p, close, NULL, NULL), 0);
        PT_EQ_INT(cli_lines(&p.o), 1); /* the final offset */
        cli_free(&p);
        PT_EQ_INT(cli_run(&p, read, NULL, NULL), 0);
        PT_EQ_STR(cli_text(&p.o), want[i]);
        cli_free(&p);
    }
    ds_stop(&f);
}

/* append --json from stdin: one message per line (blank lines skipped,
   the last one without its newline too), read back one per line; a line
   that is not JSON is exit 1. */
PT_TEST(cli_ds_append_json_stdin) {
    ds_fx f;
    cli_proc p;
    const char *in = cli_file("in.jsonl", "{\"a\":1}\n\n[1,2]\n  \"x\""), *bad = cli_file("bad.jsonl", "{\"a\":\n");
    if (ds_start(&f) != 0) {
        ds_stop(&f);
        return;
    }
    PT_REQUIRE(in != NULL && bad != NULL);
    {
        const char *create[] = { "ds", "create", ds_url(&f, "/v1/stream/j"), "--json", NULL };
        PT_EQ_INT(cli_run(&p, create, NULL, NULL), 0);
        cli_free(&p);
    }
    {
        const char *append[] = { "ds", "append", ds_url(&f, "/v1/stream/j"), "--json", NULL };
        PT_EQ_INT(cli_run(&p, append, NULL, in), 0);
        PT_EQ_INT(cli_lines(&p.o), 1); /* the new tail */
        cli_free(&p);
    }
    {
        const char *append[] = { "ds", "append", ds_url(&f, "/v1/stream/j"), NULL }; /* learns it is JSON */
        PT_EQ_INT(cli_run(&p, append, NULL, bad), 1);
        PT_EQ_INT(cli_lines(&p.e), 1);
        cli_free(&p);
    }
    {
        const char *read[] = { "ds", "read", ds_url(&f, "/v1/stream/j"), NULL };
        PT_EQ_INT(cli_run(&p, read, NULL, NULL), 0);
        PT_EQ_STR(cli_text(&p.o), "{\"a\":1}\n[1,2]\n\"x\"\n");
        cli_free(&p);
    }
    ds_stop(&f);
}

/* Ctrl-C to an append reading a pipe: what it read is in the stream, the
   exit is 130, quietly. */
PT_TEST(cli_ds_append_stdin_sigint) {
    ds_fx f;
    pr_ds *ds;
    pr_ds_result res;
    pr_buf got = { 0 };
    cli_proc p;
    int64_t until;
    if (ds_start(&f) != 0) {
        ds_stop(&f);
        return;
    }
    memset(&res, 0, sizeof res);
    PT_REQUIRE((ds = ds_handle(&f, "/v1/stream/pipe", "text/plain")) != NULL);
    PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    {
        const char *args[] = { "ds", "append", ds_url(&f, "/v1/stream/pipe"), NULL };
        PT_REQUIRE(cli_start(&p, args, NULL, "|") == PR_OK);
    }
    PT_EQ_INT(write(p.in, "hello\n", 6), 6);
    until = pr_deadline_in(10000);
    while (pr_now() < until && (pr_ds_read_all(ds, "-1", 0, &got, NULL, NULL, NULL, pr_deadline_in(5000)) != PR_OK ||
                                got.len < 6))
        pr_sleep(pr_deadline_in(20));
    PT_EQ_STR(got.data, "hello\n");
    kill(p.pid, SIGINT);
    PT_EQ_INT(cli_end(&p, 15000), 130);
    PT_EQ_INT(p.e.len, 0);
    PT_EQ_INT(p.o.len, 0);
    cli_free(&p);
    pr_buf_deinit(&got);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    ds_stop(&f);
}

/* ds tail through a proxy that cuts its connection, with each live mode:
   every byte once, in order, and the tail ends (0) when the stream closes. */
PT_TEST(cli_ds_tail_across_a_dropped_connection) {
    static const char *const modes[] = { "sse", "long-poll" };
    ds_fx f;
    pt_proxy cut;
    pr_ds_result res;
    pr_ds *ds;
    size_t m;
    if (ds_start(&f) != 0) {
        ds_stop(&f);
        return;
    }
    memset(&res, 0, sizeof res);
    for (m = 0; m < 2; m++) {
        char path[64], url[200];
        long before;
        cli_proc p;
        snprintf(path, sizeof path, "/v1/stream/tail-%u", (unsigned)m);
        PT_REQUIRE((ds = ds_handle(&f, path, "text/plain")) != NULL);
        PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
        PT_EQ_ERR(pr_ds_append(ds, "a1", 2, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
        PT_REQUIRE(pt_proxy_start(&cut, (uint16_t)atoi(strrchr(f.base, ':') + 1)) == PR_OK);
        snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)pt_proxy_port(&cut), path);
        {
            const char *args[] = { "ds", "tail", url, "--live", modes[m], NULL };
            PT_REQUIRE(cli_start(&p, args, NULL, NULL) == PR_OK);
        }
        PT_CHECK(cli_wait_out(&p, "a1", 10000));
        pr_sleep(pr_deadline_in(200)); /* the live request is out */
        before = cut.conns;
        pt_proxy_cut(&cut); /* drop every connection now */
        PT_EQ_ERR(pr_ds_append(ds, "b2", 2, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
        PT_CHECK(cli_wait_out(&p, "a1b2", 10000));
        PT_CHECK(cut.conns > before); /* it came back through a new connection */
        PT_EQ_ERR(pr_ds_append(ds, "c3", 2, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
        PT_EQ_ERR(pr_ds_close(ds, NULL, 0, &res, NULL, pr_deadline_in(5000)), PR_OK);
        PT_EQ_INT(cli_end(&p, 15000), 0);
        PT_EQ_STR(cli_text(&p.o), "a1b2c3");
        PT_CHECK(strstr(cli_text(&p.e), "next-offset: ") != NULL);
        pr_ds_result_deinit(&res);
        cli_free(&p);
        pt_proxy_stop(&cut);
        pr_ds_destroy(ds);
    }
    ds_stop(&f);
}

/* An interrupted tail (130) prints its next offset; --offset resumes
   there: the rest once, nothing twice. */
PT_TEST(cli_ds_tail_offset_resume) {
    ds_fx f;
    pr_ds_result res;
    pr_ds *ds;
    cli_proc p;
    char off[128];
    if (ds_start(&f) != 0) {
        ds_stop(&f);
        return;
    }
    memset(&res, 0, sizeof res);
    PT_REQUIRE((ds = ds_handle(&f, "/v1/stream/resume", NULL)) != NULL);
    PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_append(ds, "one,", 4, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    {
        const char *args[] = { "ds", "tail", ds_url(&f, "/v1/stream/resume"), "--live", "long-poll", NULL };
        PT_REQUIRE(cli_start(&p, args, NULL, NULL) == PR_OK);
    }
    PT_CHECK(cli_wait_out(&p, "one,", 10000));
    kill(p.pid, SIGINT);
    PT_EQ_INT(cli_end(&p, 10000), 130);
    cli_offset(&p.e, "next-offset: ", off, sizeof off);
    PT_REQUIRE(off[0] != 0);
    PT_EQ_INT(cli_lines(&p.e), 1); /* the offset, no error */
    cli_free(&p);
    PT_EQ_ERR(pr_ds_append(ds, "two,", 4, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_close(ds, "three", 5, &res, NULL, pr_deadline_in(5000)), PR_OK);
    {
        const char *args[] = { "ds", "tail", ds_url(&f, "/v1/stream/resume"), "--offset", off, NULL };
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 0);
        PT_EQ_STR(cli_text(&p.o), "two,three");
        cli_free(&p);
    }
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    ds_stop(&f);
}

/* ---- usage ---- */

/* --help and --version are 0 on stdout; --help says what an offset is
   (-1, now) and what future polls; no command, no ds operation, an
   unknown command or option, a missing value and a bad URL are 1 with one
   line on stderr (a missing command or operation says "missing"). */
PT_TEST(cli_usage_and_exit_codes) {
    static const char *const bad[][6] = {
        { NULL }, { "frobnicate", NULL }, { "get", "--nope", "http://127.0.0.1:1/", NULL }, { "get", "-H", NULL },
        { "get", "not a url", NULL }, { "ds", "create", NULL }, { "sse", "--max-events", "x", NULL },
        { "future", "http://127.0.0.1:1/", "req-1", "-H", "X-A: 1", NULL }, { "ds", NULL },
        { "get", "--idle-timeout", "-1", "http://127.0.0.1:1/", NULL },
    };
    cli_proc p;
    size_t i;
    {
        const char *args[] = { "--help", NULL };
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 0);
        PT_CHECK(strstr(cli_text(&p.o), "Exit codes") != NULL);
        PT_CHECK(strstr(cli_text(&p.o), "-1") != NULL); /* the start */
        PT_CHECK(strstr(cli_text(&p.o), "now") != NULL); /* the tail */
        PT_CHECK(strstr(cli_text(&p.o), "/api/v1/retrieve_future") != NULL);
        PT_CHECK(strstr(cli_text(&p.o), "request_id") != NULL);
        PT_CHECK(strstr(cli_text(&p.o), "--idle-timeout") != NULL);
        cli_free(&p);
    }
    {
        const char *args[] = { "--version", NULL };
        PT_EQ_INT(cli_run(&p, args, NULL, NULL), 0);
        PT_CHECK(strstr(cli_text(&p.o), PRISTINE_VERSION) != NULL);
        cli_free(&p);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        PT_EQ_INT(cli_run(&p, bad[i], NULL, NULL), 1);
        PT_EQ_INT(cli_lines(&p.e), 1);
        if (i == 0 || i == 8) PT_CHECK(strstr(cli_text(&p.e), "missing") != NULL);
        cli_free(&p);
    }
}

const pt_suite pt_suite_cli = { "cli", {
    PT_ENTRY(cli_sse_readable_and_json),
    PT_ENTRY(cli_sse_resumes_across_drops),
    PT_ENTRY(cli_sse_post_body_and_header),
    PT_ENTRY(cli_sse_sigint_exits_130),
    PT_ENTRY(cli_sse_204_is_the_end),
    PT_ENTRY(cli_get_body_404_timeout),
    PT_ENTRY(cli_get_idle_timeout),
    PT_ENTRY(cli_get_mutual_tls),
    PT_ENTRY(cli_refused_port),
    PT_ENTRY(cli_future_result_and_failure),
    PT_ENTRY(cli_ds_env_url_and_auth),
    PT_ENTRY(cli_ds_round_trip),
    PT_ENTRY(cli_ds_close_with_data_learns_type),
    PT_ENTRY(cli_ds_append_json_stdin),
    PT_ENTRY(cli_ds_append_stdin_sigint),
    PT_ENTRY(cli_ds_tail_across_a_dropped_connection),
    PT_ENTRY(cli_ds_tail_offset_resume),
    PT_ENTRY(cli_usage_and_exit_codes),
    {0, 0} } };
