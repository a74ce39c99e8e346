/* ds: the Durable Streams client against the reference server
   (@durable-streams/server from the npm registry, installed into build/ds
   by tools/setup.sh), started per test by tools/ds-server.mjs on
   127.0.0.1 with an ephemeral port and a 500 ms long-poll timeout; it
   stops when its stdin closes (or after 120 s). Fault injection goes
   through the server's /_test/inject-error. */
#include <sys/wait.h>

#define DS_MODULES "build/ds"

typedef struct ds_fx {
    pid_t pid;
    int in_fd;
    char base[160];
    char url[320];
    pr_http_client *client;
    int64_t sleeps[32];
    int nsleeps;
} ds_fx;

static int ds_sleep_hook(int64_t delay, int64_t deadline, void *ud) {
    ds_fx *f = (ds_fx *)ud;
    (void)deadline;
    if (f->nsleeps < 32) f->sleeps[f->nsleeps] = delay;
    f->nsleeps++;
    return pr_is_canceled() ? PR_ECANCELED : PR_OK;
}

/* Start the server; 0 on success. */
static int ds_start(ds_fx *f) {
    int out[2], in[2];
    char line[160];
    size_t len = 0;
    int64_t until = pr_deadline_in(20000);
    memset(f, 0, sizeof *f);
    f->pid = -1;
    if (access(DS_MODULES "/node_modules/@durable-streams/server/package.json", R_OK) != 0) {
        pt_fail(__FILE__, __LINE__, "the reference server is not installed in " DS_MODULES " (run tools/setup.sh)");
        return -1;
    }
    if (pipe(out) != 0) return -1;
    if (pipe(in) != 0) {
        close(out[0]);
        close(out[1]);
        return -1;
    }
    f->pid = fork();
    if (f->pid == 0) {
        dup2(out[1], 1);
        dup2(in[0], 0);
        close(out[0]);
        close(in[1]);
        execlp("node", "node", "tools/ds-server.mjs", DS_MODULES, "0", "500", "120000", "--stdin", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(in[0]);
    f->in_fd = in[1];
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    while (len + 1 < sizeof line && pr_now() < until) {
        ssize_t n = read(out[0], line + len, sizeof line - 1 - len);
        if (n > 0) {
            len += (size_t)n;
            line[len] = 0;
            if (strchr(line, '\n')) break;
        } else if (n == 0) {
            break;
        } else {
            pr_sleep(pr_deadline_in(20));
        }
    }
    close(out[0]);
    line[len] = 0;
    if (strncmp(line, "listening http://", 17) != 0) {
        pt_fail(__FILE__, __LINE__, "the reference server did not start: \"%s\"", line);
        return -1;
    }
    line[strcspn(line, "\r\n")] = 0;
    snprintf(f->base, sizeof f->base, "%s", line + 10);
    return pr_http_client_create(&f->client, NULL, NULL) == PR_OK ? 0 : -1;
}

static void ds_stop(ds_fx *f) {
    pr_http_client_destroy(f->client);
    if (f->in_fd > 0) close(f->in_fd);
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
    }
}

static const char *ds_url(ds_fx *f, const char *path) {
    snprintf(f->url, sizeof f->url, "%s%s", f->base, path);
    return f->url;
}

/* A handle on path with a content type (NULL = octet-stream), its
   retries sleeping through the recording hook. */
static pr_ds *ds_handle(ds_fx *f, const char *path, const char *ct) {
    pr_ds_opts o;
    pr_ds *ds = NULL;
    memset(&o, 0, sizeof o);
    o.client = f->client;
    o.content_type = ct;
    o.retry.hooks.sleep = ds_sleep_hook;
    o.retry.hooks.user_data = f;
    if (pr_ds_open(&ds, ds_url(f, path), &o, NULL) != PR_OK) return NULL;
    return ds;
}

/* POST /_test/inject-error with a JSON body. */
static int ds_inject(ds_fx *f, const char *json) {
    pr_http_response *r = NULL;
    static const char *const h[] = { "Content-Type: application/json", NULL };
    int rc = pr_http_client_send(f->client, &r, "POST", ds_url(f, "/_test/inject-error"), h, json, strlen(json), NULL,
                                 pr_deadline_in(5000));
    if (rc == PR_OK) rc = pr_http_status(r) / 100 == 2 ? PR_OK : PR_EHTTP;
    pr_http_response_destroy(r);
    return rc;
}

/* DELETE /_test/inject-error: no faults left. */
static int ds_clear(ds_fx *f) {
    pr_http_response *r = NULL;
    int rc = pr_http_client_send(f->client, &r, "DELETE", ds_url(f, "/_test/inject-error"), NULL, NULL, 0, NULL,
                                 pr_deadline_in(5000));
    pr_http_response_destroy(r);
    return rc;
}

/* Read everything a read delivers until PR_ECLOSED or the deadline, into out. */
static int ds_drain(pr_ds_read *rd, pr_buf *out, int *closed, int64_t deadline) {
    pr_ds_chunk c;
    int rc;
    while ((rc = pr_ds_read_next(rd, &c, deadline)) == PR_OK) {
        if (pr_buf_append(out, c.data, c.len) != PR_OK) return PR_ENOMEM;
        if (closed && c.closed) *closed = 1;
    }
    return rc;
}

PT_TEST(ds_create_head_delete) {
    ds_fx f;
    pr_ds *ds, *other;
    pr_ds_result res;
    pr_ds_create_opts co;
    pr_err_info err;
    memset(&res, 0, sizeof res);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((ds = ds_handle(&f, "/v1/t/one", "text/plain")) != NULL);
    memset(&co, 0, sizeof co);
    co.ttl_s = 3600;
    co.body = "hello";
    co.body_len = 5;
    PT_EQ_ERR(pr_ds_create(ds, &co, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(res.status, 201);
    PT_CHECK(res.offset.len > 0);
    PT_EQ_ERR(pr_ds_create(ds, &co, &res, NULL, pr_deadline_in(5000)), PR_OK); /* same configuration */
    PT_EQ_INT(res.status, 200);
    PT_REQUIRE((other = ds_handle(&f, "/v1/t/one", "application/json")) != NULL);
    PT_EQ_ERR(pr_ds_create(other, NULL, &res, &err, pr_deadline_in(5000)), PR_EHTTP);
    PT_EQ_INT(res.status, 409);
    PT_EQ_INT(res.error, PR_DS_CONFLICT_EXISTS);
    PT_EQ_ERR(err.code, PR_EHTTP); /* the err argument has the detail */
    PT_EQ_INT(err.http_status, 409);
    PT_CHECK(strstr(err.msg, "/v1/t/one") != NULL);
    PT_EQ_ERR(pr_ds_head(other, &res, &err, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(err.code, PR_OK); /* cleared on success */
    PT_EQ_ERR(pr_ds_head(NULL, &res, &err, pr_deadline_in(5000)), PR_EINVAL);
    PT_EQ_ERR(err.code, PR_EINVAL);
    pr_ds_destroy(other);
    PT_REQUIRE((other = ds_handle(&f, "/v1/t/one", NULL)) != NULL); /* learns the type */
    PT_EQ_ERR(pr_ds_head(other, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(res.status, 200);
    PT_CHECK(pr_slice_eq(res.content_type, pr_slice_cstr("text/plain")));
    PT_EQ_STR(pr_ds_content_type(other), "text/plain");
    PT_EQ_INT(res.ttl_s, 3600);
    PT_EQ_INT(res.closed, 0);
    PT_CHECK(res.offset.len > 0);
    PT_EQ_ERR(pr_ds_delete(ds, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_head(other, &res, NULL, pr_deadline_in(5000)), PR_EHTTP);
    PT_EQ_INT(res.error, PR_DS_NOT_FOUND);
    PT_EQ_ERR(pr_ds_delete(ds, &res, NULL, pr_deadline_in(5000)), PR_EHTTP);
    PT_EQ_INT(res.status, 404);
    PT_EQ_INT(f.nsleeps, 0); /* 4xx are never retried */
    pr_ds_result_deinit(&res);
    pr_ds_destroy(other);
    pr_ds_destroy(ds);
    ds_stop(&f);
}

PT_TEST(ds_append_close_and_status_mapping) {
    ds_fx f;
    pr_ds *ds, *missing;
    pr_ds_result res;
    pr_err_info err;
    pr_ds_append_opts ao;
    char first[64], final_off[64];
    memset(&res, 0, sizeof res);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((ds = ds_handle(&f, "/v1/t/app", "text/plain")) != NULL);
    PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_append(ds, "hello", 5, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(res.status, 204);
    snprintf(first, sizeof first, "%.*s", (int)res.offset.len, res.offset.ptr);
    memset(&ao, 0, sizeof ao);
    ao.seq = "0002";
    PT_EQ_ERR(pr_ds_append(ds, " world", 6, &ao, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_CHECK(strncmp(res.offset.ptr, first, strlen(first)) > 0); /* offsets rise byte-wise */
    ao.seq = "0001";
    PT_EQ_ERR(pr_ds_append(ds, "x", 1, &ao, &res, NULL, pr_deadline_in(5000)), PR_EHTTP);
    PT_EQ_INT(res.status, 409);
    PT_EQ_INT(res.error, PR_DS_CONFLICT_SEQ);
    PT_EQ_ERR(pr_ds_append(ds, "", 0, NULL, &res, NULL, pr_deadline_in(5000)), PR_EINVAL);
    PT_EQ_ERR(pr_ds_close(ds, "!", 1, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(res.closed, 1);
    snprintf(final_off, sizeof final_off, "%.*s", (int)res.offset.len, res.offset.ptr);
    PT_EQ_ERR(pr_ds_append(ds, "late", 4, NULL, &res, NULL, pr_deadline_in(5000)), PR_EHTTP);
    PT_EQ_INT(res.error, PR_DS_STREAM_CLOSED);
    PT_CHECK(pr_slice_eq(res.offset, pr_slice_cstr(final_off))); /* the final offset comes with it */
    PT_EQ_ERR(pr_ds_close(ds, NULL, 0, &res, NULL, pr_deadline_in(5000)), PR_OK); /* idempotent */
    PT_CHECK(pr_slice_eq(res.offset, pr_slice_cstr(final_off)));
    PT_EQ_ERR(pr_ds_close(ds, "more", 4, &res, NULL, pr_deadline_in(5000)), PR_EHTTP);
    PT_EQ_INT(res.error, PR_DS_STREAM_CLOSED);
    PT_EQ_ERR(pr_ds_head(ds, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(res.closed, 1);
    PT_REQUIRE((missing = ds_handle(&f, "/v1/t/none", "text/plain")) != NULL);
    PT_EQ_ERR(pr_ds_append(missing, "x", 1, NULL, &res, &err, pr_deadline_in(5000)), PR_EHTTP);
    PT_EQ_INT(res.error, PR_DS_NOT_FOUND);
    PT_CHECK(strstr(err.msg, "/v1/t/none") != NULL);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(missing);
    pr_ds_destroy(ds);
    ds_stop(&f);
}

PT_TEST(ds_catchup_offsets_and_etag) {
    ds_fx f;
    pr_ds *ds;
    pr_ds_result res;
    pr_ds_read *rd;
    pr_ds_chunk c;
    pr_buf got;
    pr_err_info err;
    char mid[64];
    memset(&res, 0, sizeof res);
    pr_buf_init(&got);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((ds = ds_handle(&f, "/v1/t/cu", "text/plain")) != NULL);
    PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_append(ds, "hello", 5, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    snprintf(mid, sizeof mid, "%.*s", (int)res.offset.len, res.offset.ptr);
    PT_EQ_ERR(pr_ds_append(ds, " world", 6, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    /* from the start: everything, up to date, then the end of the read */
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, "-1", NULL, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_OK);
    PT_EQ_MEM(c.data, "hello world", 11);
    PT_EQ_INT(c.len, 11);
    PT_EQ_INT(c.up_to_date, 1);
    PT_EQ_INT(c.closed, 0);
    PT_CHECK(pr_slice_eq(res.offset, pr_slice_cstr(c.offset)));
    PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_ECLOSED);
    pr_ds_read_destroy(rd);
    /* from an opaque offset: the rest */
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, mid, NULL, NULL), PR_OK);
    PT_EQ_ERR(ds_drain(rd, &got, NULL, pr_deadline_in(5000)), PR_ECLOSED);
    PT_EQ_INT(got.len, 6);
    PT_EQ_MEM(got.data, " world", 6);
    pr_ds_read_destroy(rd);
    /* "now": an empty up-to-date chunk at the tail */
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, "now", NULL, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(c.len, 0);
    PT_EQ_INT(c.up_to_date, 1);
    PT_CHECK(pr_slice_eq(res.offset, pr_slice_cstr(c.offset)));
    snprintf(mid, sizeof mid, "%s", c.offset);
    pr_ds_read_destroy(rd);
    /* polling the tail with catch-up reads: the second one sends the empty
       answer's ETag back and gets 304 (nothing new), an empty up-to-date chunk */
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, mid, NULL, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(c.len, 0);
    PT_EQ_INT(pr_ds_read_status(rd), 200);
    snprintf(mid, sizeof mid, "%s", c.offset);
    pr_ds_read_destroy(rd);
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, mid, NULL, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(c.len, 0);
    PT_EQ_INT(c.up_to_date, 1);
    PT_EQ_INT(pr_ds_read_status(rd), 304);
    PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_ECLOSED);
    pr_ds_read_destroy(rd);
    /* new data after it: a 200 with the data, never a stale 304 */
    PT_EQ_ERR(pr_ds_append(ds, "!", 1, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, mid, NULL, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(c.len, 1);
    PT_EQ_INT(pr_ds_read_status(rd), 200);
    pr_ds_read_destroy(rd);
    /* a bad offset is the server's 400 */
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, "zzz", NULL, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_EHTTP);
    PT_EQ_ERR(pr_ds_read_last_error(rd, &err), PR_OK);
    PT_EQ_INT(err.meaning, PR_DS_BAD_REQUEST);
    PT_EQ_INT(pr_ds_read_status(rd), 400);
    pr_ds_read_destroy(rd);
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, "bad offset", NULL, &err), PR_EINVAL);
    PT_EQ_ERR(err.code, PR_EINVAL);
    PT_CHECK(rd == NULL && strstr(err.msg, "offset") != NULL);
    pr_buf_deinit(&got);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    ds_stop(&f);
}

/* A writer task for the live tests: appends parts with pauses, then closes. */
typedef struct ds_writer {
    pr_ds *ds;
    const char *const *parts;
    size_t nparts;
    int64_t gap_ms;
    int rc;
} ds_writer;

static int ds_writer_task(void *arg) {
    ds_writer *w = (ds_writer *)arg;
    pr_ds_result res;
    size_t i;
    memset(&res, 0, sizeof res);
    w->rc = PR_OK;
    for (i = 0; i < w->nparts && w->rc == PR_OK; i++) {
        pr_sleep(pr_deadline_in(w->gap_ms));
        w->rc = pr_ds_append(w->ds, w->parts[i], strlen(w->parts[i]), NULL, &res, NULL, pr_deadline_in(5000));
    }
    pr_sleep(pr_deadline_in(w->gap_ms));
    if (w->rc == PR_OK) w->rc = pr_ds_close(w->ds, NULL, 0, &res, NULL, pr_deadline_in(5000));
    pr_ds_result_deinit(&res);
    return 0;
}

/* Follow a stream live in one mode while a task writes; everything written
   arrives, once, in order, and the close ends the read. */
static void ds_live_case(int live, int prefer_sse, const char *ct) {
    ds_fx f;
    pr_ds *ds;
    pr_ds_result res;
    pr_ds_read *rd;
    pr_ds_read_opts ro;
    pr_task *t;
    pr_buf got;
    static const char *const parts[] = { "alpha ", "beta ", "gamma" };
    ds_writer w;
    int closed = 0;
    memset(&res, 0, sizeof res);
    pr_buf_init(&got);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((ds = ds_handle(&f, "/v1/t/live", ct)) != NULL);
    PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_append(ds, "start ", 6, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    memset(&ro, 0, sizeof ro);
    ro.live = live;
    ro.prefer_sse = prefer_sse;
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, "-1", &ro, NULL), PR_OK);
    memset(&w, 0, sizeof w);
    w.ds = ds;
    w.parts = parts;
    w.nparts = 3;
    w.gap_ms = 150; /* with a 500 ms long-poll: data arrives while a poll waits */
    PT_EQ_ERR(pr_go(&t, ds_writer_task, &w, NULL), PR_OK);
    PT_EQ_ERR(ds_drain(rd, &got, &closed, pr_deadline_in(15000)), PR_ECLOSED);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(w.rc, PR_OK);
    PT_EQ_INT(closed, 1);
    PT_EQ_INT(got.len, 22);
    PT_EQ_MEM(got.data, "start alpha beta gamma", 22);
    pr_buf_deinit(&got);
    pr_ds_read_destroy(rd);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    ds_stop(&f);
}

PT_TEST(ds_long_poll_follows_to_close) { ds_live_case(PR_DS_LIVE_LONG_POLL, 0, "text/plain"); }
PT_TEST(ds_sse_follows_to_close) { ds_live_case(PR_DS_LIVE_SSE, 0, "text/plain"); }
PT_TEST(ds_sse_base64_follows_to_close) { ds_live_case(PR_DS_LIVE_SSE, 0, NULL); }
PT_TEST(ds_auto_follows_to_close) { ds_live_case(PR_DS_LIVE_AUTO, 0, "text/plain"); }

/* Every byte value over SSE (base64 on an octet stream) and catch-up. */
PT_TEST(ds_binary_all_bytes) {
    ds_fx f;
    pr_ds *ds;
    pr_ds_result res;
    pr_ds_read *rd;
    pr_ds_read_opts ro;
    pr_buf got;
    char all[256 * 20];
    int i, mode, closed;
    for (i = 0; i < (int)sizeof all; i++) all[i] = (char)(i * 7 % 256);
    memset(&res, 0, sizeof res);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((ds = ds_handle(&f, "/v1/t/bin", NULL)) != NULL);
    PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_append(ds, all, sizeof all, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_append(ds, "\0\0", 2, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_close(ds, NULL, 0, &res, NULL, pr_deadline_in(5000)), PR_OK);
    for (mode = 0; mode < 3; mode++) {
        memset(&ro, 0, sizeof ro);
        ro.live = mode == 0 ? PR_DS_LIVE_NONE : mode == 1 ? PR_DS_LIVE_SSE : PR_DS_LIVE_LONG_POLL;
        pr_buf_init(&got);
        closed = 0;
        PT_EQ_ERR(pr_ds_read_open(&rd, ds, "-1", &ro, NULL), PR_OK);
        PT_EQ_ERR(ds_drain(rd, &got, &closed, pr_deadline_in(5000)), PR_ECLOSED);
        PT_EQ_INT(got.len, sizeof all + 2);
        PT_CHECK(got.len == sizeof all + 2 && memcmp(got.data, all, sizeof all) == 0);
        PT_EQ_INT(closed, 1);
        pr_ds_read_destroy(rd);
        pr_buf_deinit(&got);
    }
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    ds_stop(&f);
}

/* JSON mode: one message per append (an array stays one message), the
   chunk's items in catch-up and SSE, and a corrupted body is PR_EPROTO. */
PT_TEST(ds_json_items) {
    ds_fx f;
    pr_ds *ds;
    pr_ds_result res;
    pr_ds_read *rd;
    pr_ds_read_opts ro;
    pr_ds_chunk c;
    pr_ds_append_opts ao;
    int mode, rc;
    size_t items;
    memset(&res, 0, sizeof res);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((ds = ds_handle(&f, "/v1/t/json", "application/json")) != NULL);
    PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_append(ds, "{\"a\":1}", 7, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_append(ds, "[1,2]", 5, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK); /* one message */
    memset(&ao, 0, sizeof ao);
    ao.raw_json = 1;
    PT_EQ_ERR(pr_ds_append(ds, "[\"x\",\"y\"]", 9, &ao, &res, NULL, pr_deadline_in(5000)), PR_OK); /* two */
    PT_EQ_ERR(pr_ds_close(ds, NULL, 0, &res, NULL, pr_deadline_in(5000)), PR_OK);
    for (mode = 0; mode < 2; mode++) {
        memset(&ro, 0, sizeof ro);
        ro.live = mode ? PR_DS_LIVE_SSE : PR_DS_LIVE_NONE;
        items = 0;
        PT_EQ_ERR(pr_ds_read_open(&rd, ds, "-1", &ro, NULL), PR_OK);
        while ((rc = pr_ds_read_next(rd, &c, pr_deadline_in(5000))) == PR_OK) {
            size_t i;
            PT_REQUIRE(c.items != NULL);
            for (i = 0; i < pr_json_len(c.items); i++, items++) {
                const pr_json *v = pr_json_at(c.items, i);
                if (items == 0) PT_EQ_INT(pr_json_type(pr_json_get(v, "a")), PR_JSON_NUMBER);
                if (items == 1) PT_EQ_INT(pr_json_len(v), 2);
                if (items == 3) PT_EQ_STR(pr_json_string(v, NULL), "y");
            }
        }
        PT_EQ_ERR(rc, PR_ECLOSED);
        PT_EQ_INT(items, 4);
        pr_ds_read_destroy(rd);
    }
    /* a truncated or corrupted JSON body is the reader's PR_EPROTO */
    PT_EQ_ERR(ds_inject(&f, "{\"path\":\"/v1/t/json\",\"method\":\"GET\",\"truncateBodyBytes\":9}"), PR_OK);
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, "-1", NULL, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_EPROTO);
    pr_ds_read_destroy(rd);
    PT_EQ_ERR(ds_inject(&f, "{\"path\":\"/v1/t/json\",\"method\":\"GET\",\"corruptBody\":true}"), PR_OK);
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, "-1", NULL, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_EPROTO);
    pr_ds_read_destroy(rd);
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, "-1", NULL, NULL), PR_OK); /* the faults are used up */
    PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(pr_json_len(c.items), 4);
    pr_ds_read_destroy(rd);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    ds_stop(&f);
}

/* Faults in every read mode: 5xx, 429 with Retry-After, dropped
   connections and delays; the bytes delivered equal the bytes appended
   exactly. (The server's truncateBodyBytes sends a shorter body with
   correct framing: a byte stream cannot tell, a JSON stream can, see
   ds_json_items.) */
PT_TEST(ds_faults_lose_nothing) {
    ds_fx f;
    pr_ds *ds;
    pr_ds_result res;
    pr_ds_read *rd;
    pr_ds_read_opts ro;
    pr_buf want, got;
    char part[64];
    int i, mode, closed, k;
    static const char *const faults[] = {
        "{\"path\":\"/v1/t/fault\",\"method\":\"GET\",\"status\":503,\"count\":2}",
        "{\"path\":\"/v1/t/fault\",\"method\":\"GET\",\"status\":429,\"retryAfter\":1,\"count\":1}",
        "{\"path\":\"/v1/t/fault\",\"method\":\"GET\",\"dropConnection\":true,\"count\":2}",
        "{\"path\":\"/v1/t/fault\",\"method\":\"GET\",\"delayMs\":300,\"count\":2}",
    };
    memset(&res, 0, sizeof res);
    pr_buf_init(&want);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((ds = ds_handle(&f, "/v1/t/fault", "text/plain")) != NULL);
    PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    /* appends through faults too */
    PT_EQ_ERR(ds_inject(&f, "{\"path\":\"/v1/t/fault\",\"method\":\"POST\",\"status\":500,\"count\":2}"), PR_OK);
    for (i = 0; i < 20; i++) {
        snprintf(part, sizeof part, "part %02d;", i);
        PT_EQ_ERR(pr_ds_append(ds, part, strlen(part), NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
        PT_EQ_ERR(pr_buf_append_str(&want, part), PR_OK);
    }
    PT_CHECK(f.nsleeps >= 2);
    PT_EQ_ERR(pr_ds_close(ds, NULL, 0, &res, NULL, pr_deadline_in(5000)), PR_OK);
    for (mode = 0; mode < 3; mode++)
        for (k = 0; k < (int)(sizeof faults / sizeof faults[0]); k++) {
            memset(&ro, 0, sizeof ro);
            ro.live = mode == 0 ? PR_DS_LIVE_NONE : mode == 1 ? PR_DS_LIVE_LONG_POLL : PR_DS_LIVE_SSE;
            f.nsleeps = 0;
            PT_EQ_ERR(ds_inject(&f, faults[k]), PR_OK);
            pr_buf_init(&got);
            closed = 0;
            PT_EQ_ERR(pr_ds_read_open(&rd, ds, "-1", &ro, NULL), PR_OK);
            PT_EQ_ERR(ds_drain(rd, &got, &closed, pr_deadline_in(10000)), PR_ECLOSED);
            PT_EQ_INT(got.len, want.len);
            PT_CHECK(got.len == want.len && memcmp(got.data, want.data, want.len) == 0);
            PT_EQ_INT(closed, 1);
            if (k == 1) { /* Retry-After: 1 is honoured (the hook sleeps, not the test) */
                PT_CHECK(f.nsleeps >= 1);
                if (f.nsleeps >= 1) PT_CHECK(f.sleeps[0] >= 1000);
            }
            pr_ds_read_destroy(rd);
            pr_buf_deinit(&got);
            PT_EQ_ERR(ds_clear(&f), PR_OK);
        }
    pr_buf_deinit(&want);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    ds_stop(&f);
}

/* Every allocation failing in turn across an SSE read (open, control
   event, data event) and an append: an error, never a crash or a leak;
   once no allocation fails, the whole run works. */
PT_TEST(ds_fail_nth_allocation_sse_and_append) {
    ds_fx f;
    pr_ds *setup;
    pr_ds_result res;
    int n, ok = 0;
    memset(&res, 0, sizeof res);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((setup = ds_handle(&f, "/v1/t/nth", "text/plain")) != NULL);
    PT_EQ_ERR(pr_ds_create(setup, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    for (n = 1; n < 2000 && !ok; n++) {
        pr_ds *ds;
        pr_ds_read *rd = NULL;
        pr_ds_read_opts ro;
        pr_ds_chunk c;
        pr_ds_result r2;
        int rc, up = 0, data = 0, done;
        memset(&r2, 0, sizeof r2);
        memset(&ro, 0, sizeof ro);
        ro.live = PR_DS_LIVE_SSE;
        pt_alloc_fail_nth(n);
        ds = ds_handle(&f, "/v1/t/nth", "text/plain");
        rc = ds ? pr_ds_read_open(&rd, ds, "now", &ro, NULL) : PR_ENOMEM;
        if (rc == PR_OK && (rc = pr_ds_read_next(rd, &c, pr_deadline_in(5000))) == PR_OK) up = c.up_to_date;
        if (rc == PR_OK) rc = pr_ds_append(ds, "x", 1, NULL, &r2, NULL, pr_deadline_in(5000));
        if (rc == PR_OK && (rc = pr_ds_read_next(rd, &c, pr_deadline_in(5000))) == PR_OK)
            data = c.len == 1 && c.data[0] == 'x';
        done = __atomic_load_n(&pt__mem.fail_nth, __ATOMIC_RELAXED) > 0;
        pt_alloc_fail_nth(0);
        pr_ds_result_deinit(&r2);
        pr_ds_read_destroy(rd);
        pr_ds_destroy(ds);
        if (done) {
            PT_EQ_ERR(rc, PR_OK);
            PT_EQ_INT(up, 1);
            PT_EQ_INT(data, 1);
            ok = 1;
        }
    }
    PT_CHECK(ok);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(setup);
    ds_stop(&f);
}

/* The stream's whole content by a catch-up read. */
static int ds_content(pr_ds *ds, pr_buf *out) {
    pr_ds_read *rd;
    int rc = pr_ds_read_open(&rd, ds, "-1", NULL, NULL);
    if (rc == PR_OK) rc = ds_drain(rd, out, NULL, pr_deadline_in(5000));
    pr_ds_read_destroy(rd);
    return rc == PR_ECLOSED ? PR_OK : rc;
}

static pr_ds_producer *ds_producer(pr_ds *ds, const char *id, int64_t epoch, int auto_claim, int in_flight,
                                   size_t batch) {
    pr_ds_producer_opts po;
    pr_ds_producer *p = NULL;
    memset(&po, 0, sizeof po);
    po.producer_id = id;
    po.epoch = epoch;
    po.auto_claim = auto_claim;
    po.max_in_flight = in_flight;
    po.max_batch_bytes = batch;
    return pr_ds_producer_create(&p, ds, &po, NULL) == PR_OK ? p : NULL;
}

/* Batches by size, several in flight, every message once in order; the
   same producer tuples again are deduplicated by the server (204): the
   second round appends without yielding, so its batches are sealed by
   size alone, at most as many as the first round's. */
PT_TEST(ds_producer_batches_and_dedup) {
    ds_fx f;
    pr_ds *ds;
    pr_ds_result res;
    pr_ds_producer *p;
    pr_buf want, got;
    char m[32];
    int i, round;
    int64_t seq;
    memset(&res, 0, sizeof res);
    pr_buf_init(&want);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((ds = ds_handle(&f, "/v1/t/prod", "text/plain")) != NULL);
    PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    for (round = 0; round < 2; round++) {
        PT_REQUIRE((p = ds_producer(ds, "writer-1", 0, 0, 3, 100)) != NULL);
        for (i = 0; i < 300; i++) {
            snprintf(m, sizeof m, "m%03d;", i);
            PT_EQ_ERR(pr_ds_producer_append(p, m, strlen(m), pr_deadline_in(5000)), PR_OK);
            if (round == 0) pr_buf_append_str(&want, m);
            if (i % 50 == 0 && round == 0) pr_sleep(pr_deadline_in(1)); /* let batches go while appending */
        }
        PT_EQ_ERR(pr_ds_producer_flush(p, pr_deadline_in(10000)), PR_OK);
        PT_EQ_INT(pr_ds_producer_epoch(p, &seq), 0);
        PT_CHECK(seq >= 15); /* 1,500 bytes in batches of at most 100 */
        pr_ds_producer_destroy(p);
    }
    pr_buf_init(&got);
    PT_EQ_ERR(ds_content(ds, &got), PR_OK);
    PT_EQ_INT(got.len, want.len); /* the second round stored nothing */
    PT_CHECK(got.len == want.len && memcmp(got.data, want.data, want.len) == 0);
    pr_buf_deinit(&got);
    pr_buf_deinit(&want);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    ds_stop(&f);
}

/* A newer epoch fences an older producer (403, kept and returned by
   flush); with auto_claim it moves to the server's epoch + 1. */
PT_TEST(ds_producer_stale_epoch_and_auto_claim) {
    ds_fx f;
    pr_ds *ds;
    pr_ds_result res;
    pr_err_info err;
    pr_ds_producer *a, *b, *c;
    pr_buf got;
    int64_t seq;
    memset(&res, 0, sizeof res);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((ds = ds_handle(&f, "/v1/t/epoch", "text/plain")) != NULL);
    PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_REQUIRE((a = ds_producer(ds, "w", 3, 0, 1, 0)) != NULL);
    PT_EQ_ERR(pr_ds_producer_append(a, "a", 1, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_producer_flush(a, pr_deadline_in(5000)), PR_OK);
    PT_CHECK(*pr_ds_producer_offset(a) != 0);
    PT_REQUIRE((b = ds_producer(ds, "w", 1, 0, 1, 0)) != NULL);
    PT_EQ_ERR(pr_ds_producer_append(b, "b", 1, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_producer_flush(b, pr_deadline_in(5000)), PR_EHTTP);
    PT_EQ_ERR(pr_ds_producer_last_error(b, &err), PR_OK);
    PT_EQ_INT(err.meaning, PR_DS_STALE_EPOCH);
    PT_EQ_ERR(pr_ds_producer_flush(b, pr_deadline_in(5000)), PR_EHTTP); /* failed for good */
    PT_EQ_ERR(pr_ds_producer_append(b, "x", 1, pr_deadline_in(5000)), PR_EHTTP); /* nothing taken to be lost */
    PT_REQUIRE((c = ds_producer(ds, "w", 0, 1, 4, 1)) != NULL);
    PT_EQ_ERR(pr_ds_producer_append(c, "c", 1, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_producer_append(c, "d", 1, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_producer_flush(c, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(pr_ds_producer_epoch(c, &seq), 4);
    PT_EQ_INT(seq, 2);
    /* restart: the next epoch from seq 0 fences the old one */
    PT_EQ_ERR(pr_ds_producer_restart(c, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(pr_ds_producer_epoch(c, &seq), 5);
    PT_EQ_INT(seq, 0);
    PT_EQ_ERR(pr_ds_producer_append(c, "e", 1, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_producer_flush(c, pr_deadline_in(5000)), PR_OK);
    pr_buf_init(&got);
    PT_EQ_ERR(ds_content(ds, &got), PR_OK);
    PT_EQ_INT(got.len, 4);
    PT_EQ_MEM(got.data, "acde", 4);
    pr_buf_deinit(&got);
    pr_ds_producer_destroy(a);
    pr_ds_producer_destroy(b);
    pr_ds_producer_destroy(c);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    ds_stop(&f);
}

/* Pipelined batches that reach the server out of order (the first one
   delayed): 409 with a lower expected seq waits and sends again; dropped
   connections resend with the same seq; the content is exact. */
PT_TEST(ds_producer_out_of_order_and_drops) {
    ds_fx f;
    pr_ds *ds;
    pr_ds_result res;
    pr_ds_producer *p;
    pr_buf want, got;
    char m[32];
    int i;
    memset(&res, 0, sizeof res);
    pr_buf_init(&want);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((ds = ds_handle(&f, "/v1/t/ooo", "text/plain")) != NULL);
    PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(ds_inject(&f, "{\"path\":\"/v1/t/ooo\",\"method\":\"POST\",\"delayMs\":300,\"count\":1}"), PR_OK);
    PT_REQUIRE((p = ds_producer(ds, "w", 0, 0, 4, 8)) != NULL);
    for (i = 0; i < 8; i++) {
        snprintf(m, sizeof m, "<%d>", i);
        PT_EQ_ERR(pr_ds_producer_append(p, m, strlen(m), pr_deadline_in(5000)), PR_OK);
        pr_buf_append_str(&want, m);
        if (i == 1) pr_sleep(pr_deadline_in(20)); /* the delayed batch first, then the rest */
    }
    PT_EQ_ERR(pr_ds_producer_flush(p, pr_deadline_in(10000)), PR_OK);
    PT_EQ_ERR(ds_inject(&f, "{\"path\":\"/v1/t/ooo\",\"method\":\"POST\",\"dropConnection\":true,\"count\":2}"), PR_OK);
    for (i = 8; i < 12; i++) {
        snprintf(m, sizeof m, "<%d>", i);
        PT_EQ_ERR(pr_ds_producer_append(p, m, strlen(m), pr_deadline_in(5000)), PR_OK);
        pr_buf_append_str(&want, m);
    }
    PT_EQ_ERR(pr_ds_producer_flush(p, pr_deadline_in(10000)), PR_OK);
    pr_buf_init(&got);
    PT_EQ_ERR(ds_content(ds, &got), PR_OK);
    PT_EQ_INT(got.len, want.len);
    PT_CHECK(got.len == want.len && memcmp(got.data, want.data, want.len) == 0);
    pr_buf_deinit(&got);
    pr_buf_deinit(&want);
    pr_ds_producer_destroy(p);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    ds_stop(&f);
}

/* Backpressure: append waits while max_buffer_bytes are queued or in
   flight. JSON batches are one array; close is idempotent. */
PT_TEST(ds_producer_backpressure_json_close) {
    ds_fx f;
    pr_ds *ds;
    pr_ds_result res;
    pr_ds_producer *p;
    pr_ds_producer_opts po;
    pr_ds_read *rd;
    pr_ds_chunk c;
    const char *fin = NULL, *fin2 = NULL;
    memset(&res, 0, sizeof res);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((ds = ds_handle(&f, "/v1/t/pj", "application/json")) != NULL);
    PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(ds_inject(&f, "{\"path\":\"/v1/t/pj\",\"method\":\"POST\",\"delayMs\":300,\"count\":1}"), PR_OK);
    memset(&po, 0, sizeof po);
    po.producer_id = "j";
    po.max_buffer_bytes = 10;
    PT_EQ_ERR(pr_ds_producer_create(&p, ds, &po, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_producer_append(p, "{\"i\":1}", 7, pr_deadline_in(5000)), PR_OK);
    pr_sleep(pr_deadline_in(30)); /* sealed and sent: held 300 ms by the server */
    PT_EQ_ERR(pr_ds_producer_append(p, "{\"i\":2}", 7, pr_deadline_in(5000)), PR_OK); /* the budget goes negative */
    PT_EQ_ERR(pr_ds_producer_append(p, "{\"i\":3}", 7, pr_deadline_in(50)), PR_ETIMEDOUT); /* then it waits */
    PT_EQ_ERR(pr_ds_producer_append(p, "{\"i\":3}", 7, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_producer_close(p, "{\"i\":4}", 7, &fin, pr_deadline_in(5000)), PR_OK);
    PT_REQUIRE(fin != NULL && *fin);
    PT_EQ_ERR(pr_ds_producer_close(p, NULL, 0, &fin2, pr_deadline_in(5000)), PR_OK); /* the first outcome */
    PT_CHECK(fin2 != NULL && strcmp(fin, fin2) == 0);
    PT_EQ_ERR(pr_ds_producer_append(p, "{}", 2, pr_deadline_in(5000)), PR_ESTATE);
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, "-1", NULL, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_OK);
    PT_REQUIRE(c.items != NULL);
    PT_EQ_INT(pr_json_len(c.items), 4);
    PT_EQ_INT(c.closed, 1);
    PT_CHECK(strcmp(c.offset, fin) == 0);
    pr_ds_read_destroy(rd);
    pr_ds_producer_destroy(p);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    ds_stop(&f);
}

/* linger_ms: messages appended within it travel as one batch, sealed by
   the linger alone (no flush); the long-poll reader sees the cursor. */
PT_TEST(ds_producer_linger_and_cursor) {
    ds_fx f;
    pr_ds *ds;
    pr_ds_result res;
    pr_ds_producer *p;
    pr_ds_producer_opts po;
    pr_ds_read *rd;
    pr_ds_read_opts ro;
    pr_ds_chunk c;
    int64_t seq;
    int i;
    memset(&res, 0, sizeof res);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((ds = ds_handle(&f, "/v1/t/linger", "text/plain")) != NULL);
    PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    memset(&po, 0, sizeof po);
    po.producer_id = "l";
    po.linger_ms = 150;
    PT_EQ_ERR(pr_ds_producer_create(&p, ds, &po, NULL), PR_OK);
    for (i = 0; i < 3; i++) {
        PT_EQ_ERR(pr_ds_producer_append(p, "abc", 3, pr_deadline_in(5000)), PR_OK);
        pr_sleep(pr_deadline_in(10)); /* yields: the batch still lingers */
    }
    pr_ds_producer_epoch(p, &seq);
    PT_EQ_INT(seq, 0); /* not sealed yet */
    memset(&ro, 0, sizeof ro);
    ro.live = PR_DS_LIVE_LONG_POLL;
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, "now", &ro, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_OK); /* the linger sends it meanwhile */
    if (c.len == 0) PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(c.len, 9);
    PT_EQ_MEM(c.data, "abcabcabc", 9);
    PT_CHECK(*c.cursor != 0); /* the long-poll answer's cursor, sent back on the next poll */
    pr_ds_producer_epoch(p, &seq);
    PT_EQ_INT(seq, 1); /* one batch */
    pr_ds_read_destroy(rd);
    pr_ds_producer_destroy(p);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    ds_stop(&f);
}

/* The port of a started server's base URL. */
static uint16_t ds_port(const ds_fx *f) {
    const char *c = strrchr(f->base, ':');
    return c ? (uint16_t)atoi(c + 1) : 0;
}

static void ds_count_409(const pr_http_event *ev, void *ud) {
    if (ev->kind == PR_HTTP_EVENT_ATTEMPT && ev->status == 409) ++*(long *)ud;
}

/* An outage longer than request_timeout_ms in the middle of a stream of
   appends (the proxy holds every byte, new connections too, then lets
   them through): the batch whose fate was unknown is sent again with its
   seq, nothing is dropped, and once the network is back every record is
   stored exactly once, in order, with few 409s and no hot loop. */
PT_TEST(ds_producer_survives_an_outage) {
    ds_fx f;
    pt_proxy px;
    pr_ds *direct, *ds = NULL;
    pr_ds_opts o;
    pr_http_client_opts co;
    pr_http_client *c = NULL;
    pr_ds_result res;
    pr_ds_producer *p = NULL;
    pr_ds_producer_opts po;
    pr_buf want, got;
    char url[128], m[16];
    long n409 = 0;
    int i;
    memset(&res, 0, sizeof res);
    pr_buf_init(&want);
    pr_buf_init(&got);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((direct = ds_handle(&f, "/v1/t/outage", "text/plain")) != NULL);
    PT_EQ_ERR(pr_ds_create(direct, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_REQUIRE(pt_proxy_start(&px, ds_port(&f)) == PR_OK);
    memset(&co, 0, sizeof co);
    co.observer.on_event = ds_count_409;
    co.observer.user_data = &n409;
    PT_EQ_ERR(pr_http_client_create(&c, &co, NULL), PR_OK);
    memset(&o, 0, sizeof o);
    o.client = c;
    o.content_type = "text/plain";
    snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/t/outage", (unsigned)pt_proxy_port(&px));
    PT_EQ_ERR(pr_ds_open(&ds, url, &o, NULL), PR_OK);
    memset(&po, 0, sizeof po);
    po.producer_id = "outage";
    po.linger_ms = 5;
    po.max_in_flight = 5;
    po.request_timeout_ms = 1000;
    PT_EQ_ERR(pr_ds_producer_create(&p, ds, &po, NULL), PR_OK);
    for (i = 0; i < 300; i++) { /* 9-byte records every 20 ms; no network from 1 s to 4 s */
        if (i == 50) pt_proxy_outage(&px, 1);
        if (i == 200) pt_proxy_outage(&px, 0);
        snprintf(m, sizeof m, "rec%05d\n", i);
        PT_EQ_ERR(pr_ds_producer_append(p, m, 9, pr_deadline_in(5000)), PR_OK);
        pr_buf_append(&want, m, 9);
        pr_sleep(pr_deadline_in(20));
    }
    PT_EQ_ERR(pr_ds_producer_flush(p, pr_deadline_in(20000)), PR_OK);
    PT_EQ_ERR(ds_content(direct, &got), PR_OK);
    PT_EQ_INT(got.len, want.len); /* every record once */
    PT_CHECK(got.len == want.len && memcmp(got.data, want.data, want.len) == 0); /* in order */
    PT_CHECK(n409 < 30);
    pr_ds_producer_destroy(p);
    pr_ds_destroy(ds);
    pr_http_client_destroy(c);
    pt_proxy_stop(&px);
    pr_buf_deinit(&got);
    pr_buf_deinit(&want);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(direct);
    ds_stop(&f);
}

/* A batch the network never takes within delivery_timeout_ms: the
   producer stops with PR_EFAILED (never PR_ETIMEDOUT, which is only the
   caller's own deadline) and says why; every append and flush returns it
   until pr_ds_producer_restart, after which it delivers again. */
PT_TEST(ds_producer_failure_is_sticky_and_distinct) {
    ds_fx f;
    pt_proxy px;
    pr_ds *direct, *ds = NULL;
    pr_ds_opts o;
    pr_ds_result res;
    pr_ds_producer *p = NULL;
    pr_ds_producer_opts po;
    pr_err_info e;
    pr_buf got;
    char url[128];
    memset(&res, 0, sizeof res);
    pr_buf_init(&got);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((direct = ds_handle(&f, "/v1/t/sticky", "text/plain")) != NULL);
    PT_EQ_ERR(pr_ds_create(direct, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_REQUIRE(pt_proxy_start(&px, ds_port(&f)) == PR_OK);
    memset(&o, 0, sizeof o);
    o.content_type = "text/plain";
    snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/t/sticky", (unsigned)pt_proxy_port(&px));
    PT_EQ_ERR(pr_ds_open(&ds, url, &o, NULL), PR_OK);
    memset(&po, 0, sizeof po);
    po.producer_id = "sticky";
    po.linger_ms = 1;
    po.request_timeout_ms = 100;
    po.delivery_timeout_ms = 400;
    PT_EQ_ERR(pr_ds_producer_create(&p, ds, &po, NULL), PR_OK);
    pt_proxy_outage(&px, 1);
    PT_EQ_ERR(pr_ds_producer_append(p, "lost\n", 5, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_producer_flush(p, pr_deadline_in(20000)), PR_EFAILED);
    memset(&e, 0, sizeof e);
    pr_ds_producer_last_error(p, &e);
    PT_EQ_ERR(e.code, PR_EFAILED);
    PT_CHECK(strstr(e.msg, "delivery_timeout_ms") != NULL);
    PT_EQ_ERR(pr_ds_producer_append(p, "more\n", 5, pr_deadline_in(5000)), PR_EFAILED); /* sticky */
    PT_EQ_ERR(pr_ds_producer_flush(p, pr_deadline_in(5000)), PR_EFAILED);
    pt_proxy_outage(&px, 0);
    PT_EQ_ERR(pr_ds_producer_restart(p, pr_deadline_in(20000)), PR_EFAILED); /* the failure it clears, once more */
    PT_EQ_ERR(pr_ds_producer_append(p, "back\n", 5, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_producer_flush(p, pr_deadline_in(20000)), PR_OK);
    PT_EQ_ERR(ds_content(direct, &got), PR_OK);
    PT_CHECK(got.len >= 5 && memcmp(got.data + got.len - 5, "back\n", 5) == 0);
    PT_CHECK(!pr_buf_append(&got, "", 1) && strstr(got.data, "more") == NULL); /* refused, never sent */
    pr_ds_producer_destroy(p);
    pr_ds_destroy(ds);
    pt_proxy_stop(&px);
    pr_buf_deinit(&got);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(direct);
    ds_stop(&f);
}

/* Every allocation failing in turn across a producer's batches: an error
   from append, flush or create, never a crash, a hang or a leak; once none
   fails, every message is stored once. */
PT_TEST(ds_fail_nth_allocation_producer) {
    ds_fx f;
    pr_ds *setup;
    pr_ds_result res;
    int n, ok = 0;
    char path[64];
    memset(&res, 0, sizeof res);
    PT_REQUIRE(ds_start(&f) == 0);
    for (n = 1; n < 2000 && !ok; n++) {
        pr_ds *ds;
        pr_ds_producer *p = NULL;
        pr_ds_producer_opts po;
        int rc, i, done;
        snprintf(path, sizeof path, "/v1/t/nthp-%d", n);
        PT_REQUIRE((setup = ds_handle(&f, path, "text/plain")) != NULL);
        PT_EQ_ERR(pr_ds_create(setup, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
        memset(&po, 0, sizeof po);
        po.producer_id = "n";
        po.max_batch_bytes = 8;
        po.max_in_flight = 2;
        pt_alloc_fail_nth(n);
        ds = ds_handle(&f, path, "text/plain");
        rc = ds ? pr_ds_producer_create(&p, ds, &po, NULL) : PR_ENOMEM;
        for (i = 0; rc == PR_OK && i < 4; i++) rc = pr_ds_producer_append(p, "abcd", 4, pr_deadline_in(5000));
        if (rc == PR_OK) rc = pr_ds_producer_flush(p, pr_deadline_in(5000));
        done = __atomic_load_n(&pt__mem.fail_nth, __ATOMIC_RELAXED) > 0;
        pt_alloc_fail_nth(0);
        pr_ds_producer_destroy(p);
        pr_ds_destroy(ds);
        if (done) {
            pr_buf got;
            pr_buf_init(&got);
            PT_EQ_ERR(rc, PR_OK);
            PT_EQ_ERR(ds_content(setup, &got), PR_OK);
            PT_EQ_INT(got.len, 16);
            pr_buf_deinit(&got);
            ok = 1;
        }
        pr_ds_destroy(setup);
    }
    PT_CHECK(ok);
    pr_ds_result_deinit(&res);
    ds_stop(&f);
}


/* A redirect to another origin carries the protocol's fields (Producer-*,
   Stream-Seq, the body's Content-Type) but not the caller's own (a key in
   headers): the handle names its fields to the client. */
PT_TEST(ds_cross_origin_redirect_keeps_protocol_fields) {
    static const char *const hs[] = { "X-Api-Key: secret", NULL };
    ts_server *a, *b;
    ts_step st;
    char url[160], loc[160];
    pr_ds *ds;
    pr_ds_opts o;
    pr_ds_append_opts ao;
    pr_ds_result res;
    pr_slice v;
    PT_REQUIRE(ts_start(&a, NULL) == PR_OK);
    PT_REQUIRE(ts_start(&b, NULL) == PR_OK);
    snprintf(loc, sizeof loc, "Location: http://127.0.0.1:%u/s\r\n", (unsigned)ts_port(b));
    st = hr_step(307, loc, NULL);
    PT_EQ_ERR(ts_script(a, "/s", &st, 1), PR_OK);
    st = hr_step(204, "Stream-Next-Offset: 9\r\nProducer-Epoch: 0\r\nProducer-Seq: 0\r\n", NULL);
    PT_EQ_ERR(ts_script(b, "/s", &st, 1), PR_OK);
    memset(&o, 0, sizeof o);
    o.content_type = "text/plain";
    o.headers = hs;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/s", (unsigned)ts_port(a));
    PT_EQ_ERR(pr_ds_open(&ds, url, &o, NULL), PR_OK);
    memset(&ao, 0, sizeof ao);
    memset(&res, 0, sizeof res);
    ao.seq = "0001";
    ao.producer_id = "p1";
    PT_EQ_ERR(pr_ds_append(ds, "hello", 5, &ao, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(ts_log_count(a), 1);
    PT_EQ_INT(ts_log_count(b), 1);
    PT_CHECK(ts_log_header(ts_log_get(a, 0), "X-Api-Key", &v)); /* the origin: sent */
    PT_CHECK(!ts_log_header(ts_log_get(b, 0), "X-Api-Key", &v)); /* another origin: not */
    PT_REQUIRE(ts_log_header(ts_log_get(b, 0), "Producer-Id", &v));
    PT_CHECK(pr_slice_eq(v, pr_slice_cstr("p1")));
    PT_REQUIRE(ts_log_header(ts_log_get(b, 0), "Producer-Epoch", &v));
    PT_CHECK(pr_slice_eq(v, pr_slice_cstr("0")));
    PT_REQUIRE(ts_log_header(ts_log_get(b, 0), "Producer-Seq", &v));
    PT_CHECK(pr_slice_eq(v, pr_slice_cstr("0")));
    PT_REQUIRE(ts_log_header(ts_log_get(b, 0), "Stream-Seq", &v));
    PT_CHECK(pr_slice_eq(v, pr_slice_cstr("0001")));
    PT_REQUIRE(ts_log_header(ts_log_get(b, 0), "Content-Type", &v));
    PT_CHECK(pr_slice_eq(v, pr_slice_cstr("text/plain")));
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    ts_stop(b);
    ts_stop(a);
}

/* The consumer: batches to the callback with a checkpoint after each,
   state changes, dropped connections resumed from the checkpoint, the
   close ends it; a new consumer from a stored checkpoint gets the rest. */
typedef struct ds_cons {
    pr_buf got;
    char checkpoints[8][64];
    int ncheck, states[16], nstates;
} ds_cons;

static int ds_on_batch(const pr_ds_chunk *c, void *ud) {
    ds_cons *k = (ds_cons *)ud;
    return pr_buf_append(&k->got, c->data, c->len);
}

static void ds_on_checkpoint(const char *off, size_t len, void *ud) {
    ds_cons *k = (ds_cons *)ud;
    if (k->ncheck < 8) snprintf(k->checkpoints[k->ncheck], sizeof k->checkpoints[0], "%.*s", (int)len, off);
    k->ncheck++;
}

static void ds_on_telemetry(const pr_telemetry_event *ev, void *ud) {
    int *closed_events = (int *)ud;
    const pr_telemetry_field *st = pr_telemetry_field_get(ev, "state");
    if (ev->kind == PR_TELEMETRY_STREAM_STATE && strcmp(ev->name, "ds.consumer.state") == 0 && st &&
        strcmp(st->s, "closed") == 0)
        (*closed_events)++;
}

static void ds_on_state(int state, const pr_err_info *why, void *ud) {
    ds_cons *k = (ds_cons *)ud;
    (void)why;
    if (k->nstates < 16) k->states[k->nstates] = state;
    k->nstates++;
}

PT_TEST(ds_consumer_checkpoints_and_resume) {
    ds_fx f;
    pr_ds *ds;
    pr_ds_result res;
    pr_ds_consumer *c;
    pr_ds_consumer_opts co;
    ds_cons k, k2;
    ds_writer w;
    pr_task *t;
    static const char *const parts[] = { "one;", "two;", "three;" };
    int i, saw_up = 0, saw_closed = 0, tel_closed = 0;
    pr_ds *gone;
    pr_err_info err;
    pr_telemetry *tel;
    pr_telemetry_opts to;
    memset(&to, 0, sizeof to);
    to.on_event = ds_on_telemetry;
    to.user_data = &tel_closed;
    PT_REQUIRE(pr_telemetry_create(&tel, &to) == PR_OK);
    memset(&res, 0, sizeof res);
    memset(&k, 0, sizeof k);
    memset(&k2, 0, sizeof k2);
    pr_buf_init(&k.got);
    pr_buf_init(&k2.got);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((ds = ds_handle(&f, "/v1/t/cons", "text/plain")) != NULL);
    PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_append(ds, "zero;", 5, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(ds_inject(&f, "{\"path\":\"/v1/t/cons\",\"method\":\"GET\",\"dropConnection\":true,\"count\":3}"), PR_OK);
    memset(&co, 0, sizeof co);
    co.live = PR_DS_LIVE_LONG_POLL;
    co.on_batch = ds_on_batch;
    co.on_checkpoint = ds_on_checkpoint;
    co.on_state = ds_on_state;
    co.user_data = &k;
    co.observer.on_event = pr_telemetry_ds_hook; /* its own observer: the handle has none */
    co.observer.user_data = tel;
    PT_EQ_ERR(pr_ds_consumer_start(&c, ds, &co, NULL), PR_OK);
    memset(&w, 0, sizeof w);
    w.ds = ds;
    w.parts = parts;
    w.nparts = 3;
    w.gap_ms = 100;
    PT_EQ_ERR(pr_go(&t, ds_writer_task, &w, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_consumer_wait(c, pr_deadline_in(15000)), PR_ECLOSED);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(5000)), PR_OK);
    pr_ds_consumer_stop(c);
    PT_EQ_INT(k.got.len, 19);
    PT_EQ_MEM(k.got.data, "zero;one;two;three;", 19);
    PT_CHECK(k.ncheck >= 4);
    PT_EQ_INT(k.states[0], PR_DS_CONSUMER_CONNECTING);
    for (i = 0; i < k.nstates && i < 16; i++) {
        if (k.states[i] == PR_DS_CONSUMER_UP_TO_DATE) saw_up = 1;
        if (k.states[i] == PR_DS_CONSUMER_CLOSED) saw_closed = 1;
    }
    PT_CHECK(saw_up && saw_closed);
    PT_EQ_INT(tel_closed, 1); /* the same change through the telemetry hub */
    memset(&co.observer, 0, sizeof co.observer);
    /* from the first checkpoint (after "zero;"): the rest, nothing twice */
    co.user_data = &k2;
    co.offset = k.checkpoints[0];
    PT_EQ_ERR(pr_ds_consumer_start(&c, ds, &co, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_consumer_wait(c, pr_deadline_in(10000)), PR_ECLOSED);
    pr_ds_consumer_stop(c);
    PT_EQ_INT(k2.got.len, 14);
    PT_EQ_MEM(k2.got.data, "one;two;three;", 14);
    /* stopped while it waits at the tail of an open stream */
    PT_REQUIRE((ds = (pr_ds_destroy(ds), ds_handle(&f, "/v1/t/cons2", "text/plain"))) != NULL);
    PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    co.offset = NULL;
    co.on_state = NULL;
    PT_EQ_ERR(pr_ds_consumer_start(&c, ds, &co, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_consumer_wait(c, pr_deadline_in(300)), PR_ETIMEDOUT);
    PT_EQ_ERR(pr_ds_consumer_last_error(c, &err), PR_OK);
    PT_EQ_INT(err.meaning, PR_DS_OK);
    PT_EQ_ERR(err.code, PR_OK);
    pr_ds_consumer_stop(c);
    /* an offset a read would refuse is refused at once; a stream that does
       not exist stops the consumer, whose last error keeps why */
    co.offset = "bad offset";
    PT_EQ_ERR(pr_ds_consumer_start(&c, ds, &co, &err), PR_EINVAL);
    PT_CHECK(strstr(err.msg, "offset") != NULL);
    co.offset = NULL;
    PT_REQUIRE((gone = ds_handle(&f, "/v1/t/none", "text/plain")) != NULL);
    PT_EQ_ERR(pr_ds_consumer_start(&c, gone, &co, &err), PR_OK);
    PT_EQ_ERR(pr_ds_consumer_wait(c, pr_deadline_in(5000)), PR_EHTTP);
    PT_EQ_ERR(pr_ds_consumer_last_error(c, &err), PR_OK);
    PT_EQ_INT(err.meaning, PR_DS_NOT_FOUND);
    PT_EQ_ERR(err.code, PR_EHTTP);
    PT_EQ_INT(err.http_status, 404);
    pr_ds_consumer_stop(c);
    pr_ds_destroy(gone);
    pr_buf_deinit(&k.got);
    pr_buf_deinit(&k2.got);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    pr_telemetry_destroy(tel);
    ds_stop(&f);
}

/* tools/ds-adapter driven through its stdin and stdout as a conformance
   runner drives it: one JSON result per command, in order, with the
   field names, normalised statuses and error codes runners check. */
PT_TEST(ds_adapter_speaks_the_protocol) {
    ds_fx f;
    int in[2], out[2], status = -1;
    pid_t pid;
    pr_buf cmds, got;
    char buf[4096];
    int64_t until = pr_deadline_in(90000);
    const char *p, *line[32];
    int nlines = 0, i;
    static const char *const script[] = {
        "{\"type\":\"init\",\"serverUrl\":\"%s\"}",
        "{\"type\":\"create\",\"path\":\"/ad/s\",\"contentType\":\"text/plain\"}",
        "{\"type\":\"append\",\"path\":\"/ad/s\",\"data\":\"hello\"}",
        "{\"type\":\"append\",\"path\":\"/ad/s\",\"data\":\" world\",\"seq\":2}",
        "{\"type\":\"append\",\"path\":\"/ad/s\",\"data\":\"x\",\"seq\":1}",
        "{\"type\":\"read\",\"path\":\"/ad/s\",\"offset\":\"-1\"}",
        "{\"type\":\"read\",\"path\":\"/ad/s\",\"offset\":\"-1\",\"live\":\"sse\",\"waitForUpToDate\":true}",
        "{\"type\":\"head\",\"path\":\"/ad/s\"}",
        "{\"type\":\"idempotent-append\",\"path\":\"/ad/s\",\"data\":\"!\",\"producerId\":\"w\",\"epoch\":0,\"autoClaim\":false}",
        "{\"type\":\"idempotent-append\",\"path\":\"/ad/s\",\"data\":\"?\",\"producerId\":\"w\",\"epoch\":0,\"autoClaim\":false}",
        "{\"type\":\"idempotent-close\",\"path\":\"/ad/s\",\"producerId\":\"w\",\"epoch\":0,\"autoClaim\":false}",
        "{\"type\":\"idempotent-close\",\"path\":\"/ad/s\",\"producerId\":\"w\",\"epoch\":0,\"autoClaim\":false}",
        "{\"type\":\"idempotent-close\",\"path\":\"/ad/s\",\"producerId\":\"other\",\"epoch\":0,\"autoClaim\":false}",
        "{\"type\":\"read\",\"path\":\"/ad/missing\",\"offset\":\"-1\"}",
        "{\"type\":\"validate\",\"target\":{\"target\":\"idempotent-producer\",\"maxBatchBytes\":0}}",
        "{\"type\":\"benchmark\",\"iterationId\":\"it-1\",\"operation\":{\"op\":\"create\",\"path\":\"/ad/b\"}}",
        "{\"type\":\"shutdown\"}",
    };
    static const char *const want[][3] = {
        { "\"type\":\"init\",\"success\":true", "\"strictZeroValidation\":true", NULL },
        { "\"status\":201", "\"offset\":\"", NULL },
        { "\"type\":\"append\",\"success\":true", "\"status\":200", NULL },
        { "\"status\":200", NULL, NULL },
        { "\"errorCode\":\"SEQUENCE_CONFLICT\"", "\"status\":409", NULL },
        { "\"chunks\":[{\"data\":\"hello world\"", "\"upToDate\":true", "\"streamClosed\":false" },
        { "\"data\":\"hello world\"", "\"upToDate\":true", NULL },
        { "\"contentType\":\"text/plain\"", "\"streamClosed\":false", NULL },
        { "\"producerSeq\":0", "\"duplicate\":false", NULL },
        { "\"producerSeq\":1", "\"status\":200", NULL },
        { "\"finalOffset\":\"", "\"status\":200", NULL },
        { "\"finalOffset\":\"", "\"status\":200", NULL },
        { "\"errorCode\":\"STREAM_CLOSED\"", "\"status\":409", NULL },
        { "\"errorCode\":\"NOT_FOUND\"", "/ad/missing", NULL },
        { "\"errorCode\":\"INVALID_ARGUMENT\"", "maxBatchBytes", NULL },
        { "\"iterationId\":\"it-1\"", "\"durationNs\":\"", NULL },
        { "\"type\":\"shutdown\",\"success\":true", NULL, NULL },
    };
    PT_REQUIRE(ds_start(&f) == 0);
    pr_buf_init(&cmds);
    pr_buf_init(&got);
    for (i = 0; i < (int)(sizeof script / sizeof script[0]); i++) {
        PT_EQ_ERR(pr_buf_printf(&cmds, script[i], f.base), PR_OK);
        PT_EQ_ERR(pr_buf_append(&cmds, "\n", 1), PR_OK);
    }
    PT_REQUIRE(pipe(in) == 0 && pipe(out) == 0);
    pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execl("tools/ds-adapter", "tools/ds-adapter", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    PT_CHECK(write(in[1], cmds.data, cmds.len) == (ssize_t)cmds.len);
    close(in[1]);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    while (pr_now() < until) { /* until the adapter closes stdout (it builds itself first when needed) */
        ssize_t n = read(out[0], buf, sizeof buf);
        if (n > 0) pr_buf_append(&got, buf, (size_t)n);
        else if (n == 0) break;
        else pr_sleep(pr_deadline_in(20));
    }
    close(out[0]);
    waitpid(pid, &status, 0);
    PT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (p = got.data; p && *p && nlines < 32; nlines++) {
        const char *nl = strchr(p, '\n');
        line[nlines] = p;
        if (!nl) break;
        *(char *)nl = 0;
        p = nl + 1;
    }
    PT_EQ_INT(nlines, (int)(sizeof script / sizeof script[0]));
    for (i = 0; i < nlines && i < (int)(sizeof want / sizeof want[0]); i++) {
        int k;
        for (k = 0; k < 3 && want[i][k]; k++)
            if (!strstr(line[i], want[i][k])) pt_fail(__FILE__, __LINE__, "result %d: %s lacks %s", i, line[i], want[i][k]);
    }
    pr_buf_deinit(&cmds);
    pr_buf_deinit(&got);
    ds_stop(&f);
}

/* Query pairs: the handle's, params_fn's and the protocol's, sorted by key;
   headers_fn runs for every request. */
static int ds_params(pr_buf *out, void *ud) {
    int *n = (int *)ud;
    return pr_buf_printf(out, "zeta=%d&alpha=1", ++*n);
}

PT_TEST(ds_query_sorted) {
    pr_ds *ds;
    pr_ds_opts o;
    pr_buf u;
    pr_err_info err;
    int n = 0;
    static const char *const params[] = { "mid=2", NULL };
    memset(&o, 0, sizeof o);
    o.params = params;
    o.params_fn = ds_params;
    o.user_data = &n;
    PT_EQ_ERR(pr_ds_open(&ds, "http://127.0.0.1:9/s?b=1", &o, NULL), PR_OK);
    pr_buf_init(&u);
    PT_EQ_ERR(pr__ds_build_query(ds, "offset=-1&live=long-poll&cursor=7", &u), PR_OK);
    PT_EQ_STR(u.data, "alpha=1&b=1&cursor=7&live=long-poll&mid=2&offset=-1&zeta=1");
    pr_buf_deinit(&u);
    /* what goes into a request target as it is, as a URL would be parsed */
    PT_CHECK(pr__ds_query_ok("a=%20&b=%7e", 11));
    PT_CHECK(!pr__ds_query_ok("a=b c", 5));
    PT_CHECK(!pr__ds_query_ok("a=%2", 4));
    PT_CHECK(!pr__ds_query_ok("a=%zz", 5));
    PT_CHECK(!pr__ds_query_ok("a=b#c", 5));
    PT_CHECK(!pr__ds_query_ok("a=\x01", 3));
    pr_ds_destroy(ds);
    PT_EQ_ERR(pr_ds_open(&ds, "not a url", NULL, &err), PR_EINVAL);
    PT_EQ_ERR(err.code, PR_EINVAL);
    PT_CHECK(ds == NULL && strstr(err.msg, "url") != NULL);
    o.params = NULL;
    {
        static const char *const bad[] = { "a=1&b=2", NULL };
        o.params = bad;
        PT_EQ_ERR(pr_ds_open(&ds, "http://127.0.0.1:9/s", &o, &err), PR_EINVAL);
        PT_CHECK(strstr(err.msg, "query parameter 0") != NULL);
    }
}

/* A writer that appends "r<i>;" every gap_ms, n times (no close). */
typedef struct ds_ticker {
    pr_ds *ds;
    int n, gap_ms, rc;
} ds_ticker;

static int ds_ticker_task(void *arg) {
    ds_ticker *t = (ds_ticker *)arg;
    pr_ds_result res;
    char m[16];
    int i;
    memset(&res, 0, sizeof res);
    for (i = 0; i < t->n && t->rc == PR_OK; i++) {
        pr_sleep(pr_deadline_in(t->gap_ms));
        snprintf(m, sizeof m, "r%02d;", i);
        t->rc = pr_ds_append(t->ds, m, strlen(m), NULL, &res, NULL, pr_deadline_in(5000));
    }
    pr_ds_result_deinit(&res);
    return 0;
}

/* What n ticks wrote. */
static void ds_ticks(pr_buf *b, int n) {
    char m[16];
    int i;
    for (i = 0; i < n; i++) {
        snprintf(m, sizeof m, "r%02d;", i);
        pr_buf_append_str(b, m);
    }
}

typedef struct ds_freeze_case {
    int live;          /* a read of this mode, or 0 = the consumer (long-poll) */
    int consumer_sse;
} ds_freeze_case;

/* Live reads and the consumer notice a silent connection: a proxy freezes
   every open connection (TCP stays up) while new ones pass; the read
   counts the silent one as dropped after idle_timeout_ms and resumes from
   its offset, so every record arrives, once, in order. */
PT_TEST(ds_live_reads_notice_a_silent_connection) {
    static const ds_freeze_case cases[] = { { PR_DS_LIVE_LONG_POLL, 0 }, { PR_DS_LIVE_SSE, 0 }, { 0, 0 }, { 0, 1 } };
    size_t k;
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ds_fx f;
        pt_proxy px;
        pr_ds *direct, *ds = NULL;
        pr_ds_opts o;
        pr_ds_result res;
        pr_http_client *c = NULL;
        pr_task *t;
        ds_ticker tk;
        pr_buf want, got;
        char url[128];
        int i, froze = 0;
        memset(&res, 0, sizeof res);
        pr_buf_init(&want);
        pr_buf_init(&got);
        PT_REQUIRE(ds_start(&f) == 0);
        PT_REQUIRE((direct = ds_handle(&f, "/v1/t/frozen", "text/plain")) != NULL);
        PT_EQ_ERR(pr_ds_create(direct, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
        PT_REQUIRE(pt_proxy_start(&px, ds_port(&f)) == PR_OK);
        PT_EQ_ERR(pr_http_client_create(&c, NULL, NULL), PR_OK);
        memset(&o, 0, sizeof o);
        o.client = c;
        o.content_type = "text/plain";
        snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/t/frozen", (unsigned)pt_proxy_port(&px));
        PT_EQ_ERR(pr_ds_open(&ds, url, &o, NULL), PR_OK);
        memset(&tk, 0, sizeof tk);
        tk.ds = direct;
        tk.n = 16;
        tk.gap_ms = 100;
        ds_ticks(&want, tk.n);
        PT_EQ_ERR(pr_go(&t, ds_ticker_task, &tk, NULL), PR_OK);
        if (cases[k].live) {
            pr_ds_read *rd;
            pr_ds_read_opts ro;
            pr_ds_chunk ch;
            memset(&ro, 0, sizeof ro);
            ro.live = cases[k].live;
            ro.idle_timeout_ms = 1500; /* above the server's 500 ms long-poll and keep-alive */
            PT_EQ_ERR(pr_ds_read_open(&rd, ds, "-1", &ro, NULL), PR_OK);
            for (i = 0; i < 200 && got.len < want.len; i++) {
                int rc = pr_ds_read_next(rd, &ch, pr_deadline_in(10000));
                PT_EQ_ERR(rc, PR_OK);
                if (rc != PR_OK) break;
                pr_buf_append(&got, ch.data, ch.len);
                if (!froze && got.len >= 8) { /* two records in: freeze every open connection */
                    pt_proxy_freeze(&px);
                    froze = 1;
                }
            }
            pr_ds_read_destroy(rd);
        } else {
            pr_ds_consumer *cs;
            pr_ds_consumer_opts co;
            ds_cons kc;
            memset(&kc, 0, sizeof kc);
            pr_buf_init(&kc.got);
            memset(&co, 0, sizeof co);
            co.live = cases[k].consumer_sse ? PR_DS_LIVE_SSE : PR_DS_LIVE_LONG_POLL;
            co.on_batch = ds_on_batch;
            co.user_data = &kc;
            co.idle_timeout_ms = 1500;
            PT_EQ_ERR(pr_ds_consumer_start(&cs, ds, &co, NULL), PR_OK);
            for (i = 0; i < 400 && kc.got.len < want.len; i++) {
                pr_sleep(pr_deadline_in(50));
                if (!froze && kc.got.len >= 8) {
                    pt_proxy_freeze(&px);
                    froze = 1;
                }
            }
            pr_ds_consumer_stop(cs);
            pr_buf_append(&got, kc.got.data, kc.got.len);
            pr_buf_deinit(&kc.got);
        }
        PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(10000)), PR_OK);
        PT_EQ_ERR(tk.rc, PR_OK);
        PT_CHECK(froze);
        PT_EQ_INT(got.len, want.len);
        PT_CHECK(got.len == want.len && memcmp(got.data, want.data, want.len) == 0);
        pr_ds_destroy(ds);
        pr_http_client_destroy(c);
        pt_proxy_stop(&px);
        pr_buf_deinit(&got);
        pr_buf_deinit(&want);
        pr_ds_result_deinit(&res);
        pr_ds_destroy(direct);
        ds_stop(&f);
    }
}

/* A handle on a test server's path (URL query included), with real waits. */
static pr_ds *ds_ts_handle(ts_server *s, const char *path_query) {
    char url[256];
    pr_ds *ds = NULL;
    pr_ds_opts o;
    memset(&o, 0, sizeof o);
    o.content_type = "text/plain";
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)ts_port(s), path_query);
    return pr_ds_open(&ds, url, &o, NULL) == PR_OK ? ds : NULL;
}

/* An SSE read's deadline holds while the server (a process of its own)
   sends bytes or control events that make no chunk: it returns while they
   still flow. */
PT_TEST(ds_sse_deadline_holds_under_a_flood) {
    static const char *const pieces[] = { ":\n", "event: control\ndata: {\"streamNextOffset\":\"7\"}\n\n" };
    size_t k;
    for (k = 0; k < 2; k++) {
        pt_flood fl;
        pr_ds *ds = NULL;
        pr_ds_opts o;
        pr_ds_read *rd;
        pr_ds_read_opts ro;
        pr_ds_chunk c;
        char url[64];
        PT_REQUIRE(pt_flood_start(&fl, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n", pieces[k],
                                  20000) == PR_OK);
        memset(&o, 0, sizeof o);
        o.content_type = "text/plain";
        snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/t/flood", (unsigned)fl.port);
        PT_EQ_ERR(pr_ds_open(&ds, url, &o, NULL), PR_OK);
        memset(&ro, 0, sizeof ro);
        ro.live = PR_DS_LIVE_SSE;
        PT_EQ_ERR(pr_ds_read_open(&rd, ds, "now", &ro, NULL), PR_OK);
        PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(300)), PR_ETIMEDOUT);
        PT_CHECK(pt_flood_running(&fl)); /* returned in the middle of the flood */
        pr_ds_read_destroy(rd);
        pr_ds_destroy(ds);
        pt_flood_stop(&fl);
    }
}

/* Answers that bring nothing new at once (a long-poll answered 204 at
   once, a catch-up answered 200 empty without Stream-Up-To-Date) are
   asked again later and later, never in a busy loop. */
PT_TEST(ds_instant_empty_answers_are_paced) {
    ts_server *s;
    int mode;
    PT_REQUIRE(ts_start(&s, NULL) == PR_OK);
    for (mode = 0; mode < 2; mode++) {
        pr_ds *ds;
        pr_ds_read *rd;
        pr_ds_read_opts ro;
        pr_ds_chunk c;
        ts_step st[2];
        long n;
        int64_t prev = -1, gap, min_gap = PR_FOREVER;
        size_t i;
        ts_script_clear(s);
        memset(st, 0, sizeof st);
        st[0].headers = "Stream-Next-Offset: 5\r\nStream-Up-To-Date: true\r\n";
        st[1].status = mode == 0 ? 204 : 200;
        st[1].headers = "Stream-Next-Offset: 5\r\n";
        if (mode == 0) PT_EQ_ERR(ts_script(s, "/lp", st, 1), PR_OK); /* the catch-up: at the tail */
        PT_EQ_ERR(ts_script_default(s, "/lp", &st[1]), PR_OK);
        PT_REQUIRE((ds = ds_ts_handle(s, "/lp")) != NULL);
        memset(&ro, 0, sizeof ro);
        ro.live = mode == 0 ? PR_DS_LIVE_LONG_POLL : PR_DS_LIVE_NONE;
        PT_EQ_ERR(pr_ds_read_open(&rd, ds, "-1", &ro, NULL), PR_OK);
        if (mode == 0) {
            PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_OK);
            PT_EQ_INT(c.up_to_date, 1);
        }
        PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(1600)), PR_ETIMEDOUT);
        n = (long)ts_log_count(s);
        PT_CHECK(n >= 4 && n <= 10); /* waits of 50, 100, 200, 400, 800 ms between them */
        for (i = 1 + (mode == 0); i < ts_log_count(s); i++) {
            int64_t at = ts_log_get(s, i)->at_ms;
            if (prev >= 0 && (gap = at - prev) < min_gap) min_gap = gap;
            prev = at;
        }
        PT_CHECK(min_gap >= 90); /* the first wait is 50 ms, the next ones longer */
        pr_ds_read_destroy(rd);
        pr_ds_destroy(ds);
    }
    ts_stop(s);
}

/* An SSE connection the server (or a proxy's idle cut) ends cleanly after
   a while (healthy_ms) is followed at once: no backoff builds up on an
   idle stream. */
PT_TEST(ds_sse_clean_end_resets_the_backoff) {
    ds_fx f;
    ts_server *s;
    pr_ds *ds;
    pr_ds_opts o;
    pr_ds_read *rd;
    pr_ds_read_opts ro;
    pr_ds_chunk c;
    char url[160];
    memset(&f, 0, sizeof f);
    PT_REQUIRE(ts_start(&s, NULL) == PR_OK);
    memset(&o, 0, sizeof o);
    o.content_type = "text/plain";
    o.retry.hooks.sleep = ds_sleep_hook;
    o.retry.hooks.user_data = &f;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/sse?events=0&comment=1&hold_ms=300", (unsigned)ts_port(s));
    PT_EQ_ERR(pr_ds_open(&ds, url, &o, NULL), PR_OK);
    memset(&ro, 0, sizeof ro);
    ro.live = PR_DS_LIVE_SSE;
    ro.sse_short_ms = 200;
    ro.healthy_ms = 250;
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, "now", &ro, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(1500)), PR_ETIMEDOUT);
    PT_CHECK(ts_log_count(s) >= 3); /* connections of 300 ms, one after the other */
    PT_EQ_INT(f.nsleeps, 0);       /* and no backoff between them */
    pr_ds_read_destroy(rd);
    pr_ds_destroy(ds);
    ts_stop(s);
}

/* A server that closes every connection unanswered: a read whose retries
   run out says the network failed (PR_EIO, the cause kept), never
   PR_ECLOSED, which means the read is over: a caller's loop must not take
   a cut connection for the stream's end. */
PT_TEST(ds_read_cut_connection_is_not_the_end) {
    ts_server *s;
    ts_step st;
    pr_ds *ds;
    pr_ds_read *rd;
    pr_ds_chunk c;
    pr_err_info e;
    PT_REQUIRE(ts_start(&s, NULL) == PR_OK);
    memset(&st, 0, sizeof st);
    st.close_without_response = 1;
    st.count = 1000;
    PT_EQ_ERR(ts_script(s, "/cut", &st, 1), PR_OK);
    PT_REQUIRE((ds = ds_ts_handle(s, "/cut")) != NULL);
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, "-1", NULL, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(1500)), PR_EIO);
    memset(&e, 0, sizeof e);
    PT_EQ_ERR(pr_ds_read_last_error(rd, &e), PR_OK);
    PT_EQ_ERR(e.code, PR_EIO);
    PT_CHECK(strstr(e.msg, "closed before") != NULL);
    PT_EQ_STR(pr_ds_read_offset(rd, NULL), "-1"); /* nothing skipped: the next call resumes here */
    pr_ds_read_destroy(rd);
    pr_ds_destroy(ds);
    ts_stop(s);
}

/* Offsets and cursors from the server are checked where they enter: one
   with CR/LF, an embedded NUL or over 1024 bytes is PR_EPROTO, never
   handed out as a checkpoint that pr_ds_read_open would refuse, never cut. */
PT_TEST(ds_server_offsets_checked_where_they_enter) {
    ts_server *s;
    pr_buf big;
    int k;
    PT_REQUIRE(ts_start(&s, NULL) == PR_OK);
    pr_buf_init(&big);
    pr_buf_append_str(&big, "event: control\ndata: {\"streamNextOffset\":\"5\",\"streamCursor\":\"");
    for (k = 0; k < 1100; k++) pr_buf_append(&big, "c", 1);
    pr_buf_append_str(&big, "\",\"upToDate\":true}\n\n");
    PT_REQUIRE(pr_buf_append(&big, "", 1) == PR_OK);
    for (k = 0; k < 4; k++) {
        static const char *const bodies[] = {
            "event: control\ndata: {\"streamNextOffset\":\"a\\r\\nb\",\"upToDate\":true}\n\n",
            "event: control\ndata: {\"streamNextOffset\":\"a\\u0000b\",\"upToDate\":true}\n\n",
            "event: control\ndata: {\"streamNextOffset\":\"a b\",\"upToDate\":true}\n\n",
            NULL,
        };
        pr_ds *ds;
        pr_ds_read *rd;
        pr_ds_read_opts ro;
        pr_ds_chunk c;
        pr_err_info e;
        ts_step st;
        ts_script_clear(s);
        memset(&st, 0, sizeof st);
        st.headers = "Content-Type: text/event-stream\r\n";
        st.body = bodies[k] ? bodies[k] : big.data;
        PT_EQ_ERR(ts_script(s, "/bad", &st, 1), PR_OK);
        PT_REQUIRE((ds = ds_ts_handle(s, "/bad")) != NULL);
        memset(&ro, 0, sizeof ro);
        ro.live = PR_DS_LIVE_SSE;
        PT_EQ_ERR(pr_ds_read_open(&rd, ds, "now", &ro, NULL), PR_OK);
        PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_EPROTO);
        pr_ds_read_last_error(rd, &e);
        PT_CHECK(strstr(e.msg, k == 3 ? "cursor" : "offset") != NULL);
        PT_EQ_STR(pr_ds_read_offset(rd, NULL), "now"); /* the position did not move */
        pr_ds_read_destroy(rd);
        pr_ds_destroy(ds);
    }
    { /* in a header: a catch-up's Stream-Next-Offset, a head's */
        pr_ds *ds;
        pr_ds_read *rd;
        pr_ds_chunk c;
        pr_ds_result res;
        pr_err_info e;
        ts_step st;
        ts_script_clear(s);
        memset(&res, 0, sizeof res);
        memset(&st, 0, sizeof st);
        st.headers = "Stream-Next-Offset: a b\r\nStream-Up-To-Date: true\r\n";
        st.body = "data";
        st.count = 2;
        PT_EQ_ERR(ts_script(s, "/bad", &st, 1), PR_OK);
        PT_REQUIRE((ds = ds_ts_handle(s, "/bad")) != NULL);
        PT_EQ_ERR(pr_ds_read_open(&rd, ds, "-1", NULL, NULL), PR_OK);
        PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_EPROTO);
        PT_EQ_STR(pr_ds_read_offset(rd, NULL), "-1");
        PT_EQ_ERR(pr_ds_head(ds, &res, &e, pr_deadline_in(5000)), PR_EPROTO);
        PT_CHECK(strstr(e.msg, "offset") != NULL);
        pr_ds_result_deinit(&res);
        pr_ds_read_destroy(rd);
        pr_ds_destroy(ds);
    }
    pr_buf_deinit(&big);
    ts_stop(s);
}

/* A telemetry hub's events as lines "name key=value key=value ...". */
typedef struct ds_tel_log {
    pr_buf text;
} ds_tel_log;

static void ds_tel_record(const pr_telemetry_event *ev, void *ud) {
    ds_tel_log *l = (ds_tel_log *)ud;
    size_t i;
    pr_buf_printf(&l->text, "%s", ev->name);
    for (i = 0; i < ev->nfields; i++) {
        const pr_telemetry_field *fl = &ev->fields[i];
        if (fl->type == PR_TELEMETRY_STR) pr_buf_printf(&l->text, " %s=%s", fl->key, fl->s);
        else pr_buf_printf(&l->text, " %s=%lld", fl->key, (long long)fl->i);
    }
    pr_buf_append(&l->text, "\n", 1);
}

/* The lines of event name (NULL = any) that hold each of a, b and c
   (NULL = no condition). */
static int ds_tel_count(const ds_tel_log *l, const char *name, const char *a, const char *b, const char *c) {
    const char *p = l->text.data, *end = l->text.data + l->text.len;
    int n = 0;
    while (p && p < end) {
        const char *nl = (const char *)memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)len, p);
        if ((!name || (strncmp(line, name, strlen(name)) == 0 && line[strlen(name)] == ' ')) && (!a || strstr(line, a)) &&
            (!b || strstr(line, b)) && (!c || strstr(line, c)))
            n++;
        p = nl ? nl + 1 : end;
    }
    return n;
}

/* Every observation through the telemetry adapter (pr_telemetry_ds_hook
   on the handle's observer, which its producers and consumers inherit):
   requests that end with a status (an error status too) or without one,
   a producer's stored and duplicate batches, and a consumer's reconnect,
   batch and states. URLs are sanitized. */
PT_TEST(ds_observer_through_telemetry) {
    ds_fx f;
    pr_ds *ds, *none, *dead;
    pr_ds_opts o;
    pr_ds_result res;
    pr_ds_producer *p;
    pr_ds_producer_opts po;
    pr_ds_consumer *c;
    pr_ds_consumer_opts co;
    pr_telemetry *tel;
    pr_telemetry_opts to;
    ds_tel_log log;
    ds_cons k;
    char want[64];
    int round, rc;
    memset(&res, 0, sizeof res);
    memset(&k, 0, sizeof k);
    pr_buf_init(&log.text);
    pr_buf_init(&k.got);
    memset(&to, 0, sizeof to);
    to.on_event = ds_tel_record;
    to.user_data = &log;
    PT_REQUIRE(pr_telemetry_create(&tel, &to) == PR_OK);
    PT_REQUIRE(ds_start(&f) == 0);
    memset(&o, 0, sizeof o);
    o.client = f.client;
    o.content_type = "text/plain";
    o.retry.max_retries = 1; /* a read fails after one retry, so the consumer reconnects */
    o.retry.hooks.sleep = ds_sleep_hook;
    o.retry.hooks.user_data = &f;
    o.observer.on_event = pr_telemetry_ds_hook;
    o.observer.user_data = tel;
    PT_EQ_ERR(pr_ds_open(&ds, ds_url(&f, "/v1/t/observed?token=s3cret"), &o, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_open(&none, ds_url(&f, "/v1/t/absent"), &o, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_open(&dead, "http://127.0.0.1:1/v1/t/dead", &o, NULL), PR_OK);
    /* requests: a stop with its status, an error status is a stop too, no response is an exception */
    PT_EQ_ERR(pr_ds_create(ds, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(ds_tel_count(&log, "ds.request.start", " op=create", " method=PUT", "token=REDACTED"), 1);
    PT_EQ_INT(ds_tel_count(&log, "ds.request.stop", " op=create", " status=201", " duration_ms="), 1);
    PT_EQ_ERR(pr_ds_head(none, &res, NULL, pr_deadline_in(5000)), PR_EHTTP);
    PT_EQ_INT(ds_tel_count(&log, "ds.request.stop", " op=head", " method=HEAD", " status=404"), 1);
    rc = pr_ds_head(dead, &res, NULL, pr_deadline_in(5000));
    PT_CHECK(rc < 0 && rc != PR_EHTTP);
    snprintf(want, sizeof want, " error=%s", pr_errname(rc));
    PT_EQ_INT(ds_tel_count(&log, "ds.request.exception", " op=head", want, " detail="), 1);
    PT_EQ_INT(ds_tel_count(&log, "ds.request.stop", "/v1/t/dead", NULL, NULL), 0);
    /* a producer's batch, then the same (id, epoch, seq) again: a duplicate */
    for (round = 0; round < 2; round++) {
        memset(&po, 0, sizeof po);
        po.producer_id = "obs-writer";
        PT_REQUIRE(pr_ds_producer_create(&p, ds, &po, NULL) == PR_OK);
        PT_EQ_ERR(pr_ds_producer_append(p, "a;", 2, pr_deadline_in(5000)), PR_OK);
        PT_EQ_ERR(pr_ds_producer_append(p, "b;", 2, pr_deadline_in(5000)), PR_OK);
        PT_EQ_ERR(pr_ds_producer_append(p, "c;", 2, pr_deadline_in(5000)), PR_OK);
        PT_EQ_ERR(pr_ds_producer_flush(p, pr_deadline_in(5000)), PR_OK);
        pr_ds_producer_destroy(p);
    }
    PT_EQ_INT(ds_tel_count(&log, "ds.producer.batch", " producer_id=obs-writer epoch=0 seq=0 items=3 bytes=6",
                           " duration_ms=", " offset="), 1);
    PT_EQ_INT(ds_tel_count(&log, "ds.producer.duplicate", " producer_id=obs-writer epoch=0 seq=0 items=3 bytes=6",
                           NULL, NULL), 1);
    PT_EQ_INT(ds_tel_count(&log, "ds.request.stop", " op=append", " status=204", NULL), 1);
    PT_EQ_ERR(pr_ds_close(ds, NULL, 0, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(ds_tel_count(&log, "ds.request.stop", " op=close", " method=POST", NULL), 1);
    /* a consumer whose first read fails (two dropped connections): a reconnect, then the batch */
    PT_EQ_ERR(ds_inject(&f, "{\"path\":\"/v1/t/observed\",\"method\":\"GET\",\"dropConnection\":true,\"count\":2}"),
              PR_OK);
    memset(&co, 0, sizeof co);
    co.live = PR_DS_LIVE_LONG_POLL;
    co.on_batch = ds_on_batch;
    co.user_data = &k;
    PT_EQ_ERR(pr_ds_consumer_start(&c, ds, &co, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_consumer_wait(c, pr_deadline_in(10000)), PR_ECLOSED);
    pr_ds_consumer_stop(c);
    PT_EQ_INT(k.got.len, 6);
    PT_EQ_INT(ds_tel_count(&log, "ds.request.exception", " op=read", " method=GET", NULL), 1);
    PT_EQ_INT(ds_tel_count(&log, "ds.consumer.reconnect", " attempt=1 delay_ms=", " reason=PR_E", " offset=-1"), 1);
    PT_EQ_INT(ds_tel_count(&log, "ds.consumer.batch", " items=1 bytes=6 offset=", NULL, NULL), 1);
    PT_EQ_INT(ds_tel_count(&log, "ds.consumer.state", " state=connecting offset=-1 detail=", NULL, NULL), 2);
    PT_EQ_INT(ds_tel_count(&log, "ds.consumer.state", " state=closed", NULL, NULL), 1);
    PT_EQ_INT(ds_tel_count(&log, NULL, "s3cret", NULL, NULL), 0);
    pr_buf_deinit(&k.got);
    pr_buf_deinit(&log.text);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(dead);
    pr_ds_destroy(none);
    pr_ds_destroy(ds);
    pr_telemetry_destroy(tel);
    ds_stop(&f);
}

/* ---- on_auth_error, fork fields, producer counters, TLS settings ---- */

typedef struct ds_auth {
    int calls, give;            /* give: 1 = fresh fields, 0 = give up, 2 = a malformed line */
    int status, attempt, op_read;
    char www[64];
    int refresh_events, starts, stops;
} ds_auth;

static int ds_on_auth(const pr_ds_auth_info *info, pr_buf *headers, pr_buf *params, void *user_data) {
    ds_auth *a = (ds_auth *)user_data;
    a->calls++;
    a->status = info->status;
    a->attempt = info->attempt;
    a->op_read = strcmp(info->op, "read") == 0;
    snprintf(a->www, sizeof a->www, "%.*s", (int)info->www_authenticate.len, info->www_authenticate.ptr);
    if (a->give == 2) return pr_buf_append_str(headers, "no colon here\r\n") == PR_OK;
    if (!a->give) return 0;
    return pr_buf_append_str(headers, "Authorization: Bearer new\r\n") == PR_OK &&
           pr_buf_append_str(params, "token=new") == PR_OK;
}

static void ds_auth_observe(const pr_ds_event *ev, void *user_data) {
    ds_auth *a = (ds_auth *)user_data;
    if (ev->kind == PR_DS_EVENT_AUTH_REFRESH) a->refresh_events++;
    if (ev->kind == PR_DS_EVENT_REQUEST_START) a->starts++;
    if (ev->kind == PR_DS_EVENT_REQUEST_STOP) a->stops++;
}

/* A handle on a test server's path with the old token in a header and a
   query parameter, on_auth_error and an observer on a. */
static pr_ds *ds_auth_handle(ts_server *s, const char *path, ds_auth *a) {
    static const char *const hs[] = { "Authorization: Bearer old", "X-Keep: 1", NULL };
    static const char *const ps[] = { "token=old", "k=v", NULL };
    char url[256];
    pr_ds *ds = NULL;
    pr_ds_opts o;
    memset(&o, 0, sizeof o);
    o.content_type = "text/plain";
    o.headers = hs;
    o.params = ps;
    o.on_auth_error = ds_on_auth;
    o.user_data = a;
    o.observer.on_event = ds_auth_observe;
    o.observer.user_data = a;
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)ts_port(s), path);
    return pr_ds_open(&ds, url, &o, NULL) == PR_OK ? ds : NULL;
}

static int ds_slice_has(pr_slice hay, const char *needle) {
    size_t n = strlen(needle), i;
    for (i = 0; i + n <= hay.len; i++)
        if (memcmp(hay.ptr + i, needle, n) == 0) return 1;
    return 0;
}

/* Whether logged request i carries Authorization: Bearer <tok> (once),
   the query pair token=<tok> (and no other token), X-Keep and k=v. */
static int ds_auth_carries(ts_server *s, size_t i, const char *tok) {
    const ts_logged *e = ts_log_get(s, i);
    char want[64], q[64];
    const char *first;
    pr_slice v;
    if (!e || !ts_log_header(e, "Authorization", &v)) return 0;
    snprintf(want, sizeof want, "Bearer %s", tok);
    snprintf(q, sizeof q, "token=%s", tok);
    first = strstr(e->head, "Authorization:");
    return pr_slice_eq(v, pr_slice_cstr(want)) && first && !strstr(first + 1, "Authorization:") &&
           ts_log_header(e, "X-Keep", &v) && ds_slice_has(e->target, q) && ds_slice_has(e->target, "k=v") &&
           (strcmp(tok, "old") == 0 || !ds_slice_has(e->target, "token=old"));
}

/* A 401 calls on_auth_error with what the server said; its fresh token
   (a header and a query parameter) replaces the old one for the request
   sent again and for every later one; the observer hears the refresh.
   One refresh per refusal, at most max_auth_refreshes (3) per request:
   then the 401/403 is the answer (PR_EHTTP with PR_DS_UNAUTHORIZED /
   PR_DS_FORBIDDEN). A hook that gives up, or gives a malformed line,
   ends the request at once; a producer's 403 with Producer-Epoch
   (fencing) never reaches the hook. */
PT_TEST(ds_auth_error_hook_refreshes_once_per_refusal) {
    ts_server *s;
    ts_step st[2];
    pr_ds *ds;
    pr_ds_result res;
    pr_err_info e;
    pr_ds_append_opts ao;
    ds_auth a;
    memset(&a, 0, sizeof a);
    memset(&res, 0, sizeof res);
    a.give = 1;
    PT_REQUIRE(ts_start(&s, NULL) == PR_OK);
    st[0] = hr_step(401, "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n", "expired");
    st[1] = hr_step(200, "Stream-Next-Offset: 5\r\n", NULL);
    st[1].count = 2;
    PT_EQ_ERR(ts_script(s, "/a", st, 2), PR_OK);
    PT_REQUIRE((ds = ds_auth_handle(s, "/a?z=1", &a)) != NULL);
    PT_EQ_ERR(pr_ds_head(ds, &res, &e, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(res.status, 200);
    PT_EQ_INT(a.calls, 1);
    PT_EQ_INT(a.status, 401);
    PT_EQ_INT(a.attempt, 1);
    PT_EQ_INT(a.op_read, 0);
    PT_EQ_STR(a.www, "Bearer error=\"invalid_token\"");
    PT_EQ_INT(a.refresh_events, 1);
    PT_EQ_INT(a.starts, 1); /* one request, refreshed inside it */
    PT_EQ_INT(a.stops, 1);
    PT_REQUIRE(ts_log_count(s) == 2);
    PT_CHECK(ds_auth_carries(s, 0, "old"));
    PT_CHECK(ds_auth_carries(s, 1, "new"));
    PT_CHECK(ds_slice_has(ts_log_get(s, 1)->target, "z=1")); /* the URL's own pair stays */
    PT_EQ_ERR(pr_ds_head(ds, &res, &e, pr_deadline_in(5000)), PR_OK); /* the new token sticks */
    PT_EQ_INT(a.calls, 1);
    PT_REQUIRE(ts_log_count(s) == 3);
    PT_CHECK(ds_auth_carries(s, 2, "new"));
    /* refused every time: 3 refreshes, then the 403 is the answer */
    ts_script_clear(s);
    st[0] = hr_step(403, NULL, "no");
    st[0].count = 100;
    PT_EQ_ERR(ts_script(s, "/a", st, 1), PR_OK);
    a.calls = 0;
    PT_EQ_ERR(pr_ds_head(ds, &res, &e, pr_deadline_in(5000)), PR_EHTTP);
    PT_EQ_INT(res.status, 403);
    PT_EQ_INT(res.error, PR_DS_FORBIDDEN);
    PT_EQ_ERR(e.code, PR_EHTTP);
    PT_EQ_INT(e.http_status, 403);
    PT_EQ_INT(e.meaning, PR_DS_FORBIDDEN);
    PT_EQ_INT(a.calls, 3);
    PT_EQ_INT(a.attempt, 3);
    PT_EQ_INT(ts_log_count(s), 4); /* (the log starts again with the script) */
    /* a hook that gives up: the 401 at once */
    ts_script_clear(s);
    st[0] = hr_step(401, NULL, NULL);
    st[0].count = 100;
    PT_EQ_ERR(ts_script(s, "/a", st, 1), PR_OK);
    a.calls = 0;
    a.give = 0;
    PT_EQ_ERR(pr_ds_delete(ds, &res, &e, pr_deadline_in(5000)), PR_EHTTP);
    PT_EQ_INT(res.error, PR_DS_UNAUTHORIZED);
    PT_EQ_INT(e.meaning, PR_DS_UNAUTHORIZED);
    PT_EQ_INT(a.calls, 1);
    PT_EQ_INT(ts_log_count(s), 1);
    /* a malformed line from the hook: PR_EINVAL, nothing sent again, the token kept */
    a.give = 2;
    PT_EQ_ERR(pr_ds_head(ds, &res, &e, pr_deadline_in(5000)), PR_EINVAL);
    PT_EQ_INT(ts_log_count(s), 2);
    PT_CHECK(ds_auth_carries(s, 1, "new"));
    /* a producer's fencing (403 with Producer-Epoch) is no refusal of credentials */
    ts_script_clear(s);
    st[0] = hr_step(403, "Producer-Epoch: 4\r\n", NULL);
    PT_EQ_ERR(ts_script(s, "/a", st, 1), PR_OK);
    a.calls = 0;
    a.give = 1;
    memset(&ao, 0, sizeof ao);
    ao.producer_id = "p";
    PT_EQ_ERR(pr_ds_append(ds, "x", 1, &ao, &res, &e, pr_deadline_in(5000)), PR_EHTTP);
    PT_EQ_INT(res.error, PR_DS_STALE_EPOCH);
    PT_EQ_INT(a.calls, 0);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
    ts_stop(s);
}

/* The hook serves every request of the handle: an SSE read (the refused
   response closed, the read opened again with the new token) and a
   producer's batch. */
PT_TEST(ds_auth_error_hook_serves_reads_and_producers) {
    ts_server *s;
    ts_step st[2];
    pr_ds *ds;
    pr_ds_read *rd;
    pr_ds_chunk c;
    pr_ds_producer *p;
    pr_ds_producer_opts po;
    ds_auth a;
    memset(&a, 0, sizeof a);
    a.give = 1;
    PT_REQUIRE(ts_start(&s, NULL) == PR_OK);
    st[0] = hr_step(401, NULL, "expired");
    st[1] = hr_step(200, "Content-Type: text/event-stream\r\n",
                    "event: data\ndata: hi\n\nevent: control\ndata: {\"streamNextOffset\":\"5\",\"streamClosed\":true}\n\n");
    PT_EQ_ERR(ts_script(s, "/r", st, 2), PR_OK);
    PT_REQUIRE((ds = ds_auth_handle(s, "/r", &a)) != NULL);
    PT_EQ_ERR(pr_ds_read_open(&rd, ds, "now", &(pr_ds_read_opts){ .live = PR_DS_LIVE_SSE }, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_read_next(rd, &c, pr_deadline_in(5000)), PR_OK);
    PT_EQ_MEM(c.data, "hi", 2);
    PT_EQ_INT(c.closed, 1);
    PT_EQ_INT(a.calls, 1);
    PT_EQ_INT(a.op_read, 1);
    PT_REQUIRE(ts_log_count(s) == 2);
    PT_CHECK(ds_auth_carries(s, 0, "old"));
    PT_CHECK(ds_auth_carries(s, 1, "new"));
    pr_ds_read_destroy(rd);
    pr_ds_destroy(ds);
    /* a producer's batch refused, then taken with the fresh token */
    memset(&a, 0, sizeof a);
    a.give = 1;
    st[0] = hr_step(401, NULL, NULL);
    st[1] = hr_step(200, "Stream-Next-Offset: 9\r\nProducer-Epoch: 0\r\nProducer-Seq: 0\r\n", NULL);
    PT_EQ_ERR(ts_script(s, "/w", st, 2), PR_OK);
    PT_REQUIRE((ds = ds_auth_handle(s, "/w", &a)) != NULL);
    memset(&po, 0, sizeof po);
    po.producer_id = "w1";
    PT_EQ_ERR(pr_ds_producer_create(&p, ds, &po, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_producer_append(p, "abc", 3, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_producer_flush(p, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(a.calls, 1);
    PT_EQ_STR(pr_ds_producer_offset(p), "9");
    PT_REQUIRE(ts_log_count(s) == 4);
    PT_CHECK(ds_auth_carries(s, 3, "new"));
    pr_ds_producer_destroy(p);
    pr_ds_destroy(ds);
    ts_stop(s);
}

/* Forks (create with Stream-Forked-From, -Fork-Offset, -Fork-Sub-Offset)
   on the reference server: a fork holds the source's data up to the fork
   offset, then its own; the source is untouched. Bad fork fields are
   PR_EINVAL before any request; a missing source is the server's 404. */
PT_TEST(ds_create_forks) {
    ds_fx f;
    pr_ds *src, *fork, *fork2;
    pr_ds_result res;
    pr_ds_create_opts co;
    pr_ds_read *rd;
    pr_buf got;
    char mid[64];
    memset(&res, 0, sizeof res);
    pr_buf_init(&got);
    PT_REQUIRE(ds_start(&f) == 0);
    PT_REQUIRE((src = ds_handle(&f, "/v1/t/src", "text/plain")) != NULL);
    PT_EQ_ERR(pr_ds_create(src, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_append(src, "hello", 5, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    snprintf(mid, sizeof mid, "%.*s", (int)res.offset.len, res.offset.ptr);
    PT_EQ_ERR(pr_ds_append(src, "world", 5, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    /* a fork at mid, without a content type of its own: the source's */
    PT_REQUIRE((fork = ds_handle(&f, "/v1/t/fork", NULL)) != NULL);
    memset(&co, 0, sizeof co);
    co.forked_from = "/v1/t/src";
    co.fork_offset = mid;
    PT_EQ_ERR(pr_ds_create(fork, &co, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(res.status, 201);
    PT_EQ_ERR(pr_ds_head(fork, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_STR(pr_ds_content_type(fork), "text/plain");
    PT_EQ_ERR(pr_ds_append(fork, "!!", 2, NULL, &res, NULL, pr_deadline_in(5000)), PR_OK);
    PT_EQ_ERR(pr_ds_read_open(&rd, fork, "-1", NULL, NULL), PR_OK);
    PT_EQ_ERR(ds_drain(rd, &got, NULL, pr_deadline_in(5000)), PR_ECLOSED);
    PT_EQ_INT(got.len, 7);
    PT_EQ_MEM(got.data, "hello!!", 7);
    pr_ds_read_destroy(rd);
    pr_buf_clear(&got);
    PT_EQ_ERR(pr_ds_read_open(&rd, src, "-1", NULL, NULL), PR_OK);
    PT_EQ_ERR(ds_drain(rd, &got, NULL, pr_deadline_in(5000)), PR_ECLOSED);
    PT_EQ_INT(got.len, 10);
    PT_EQ_MEM(got.data, "helloworld", 10);
    pr_ds_read_destroy(rd);
    /* a sub-offset: 3 bytes into the source's message at mid */
    PT_REQUIRE((fork2 = ds_handle(&f, "/v1/t/fork2", "text/plain")) != NULL);
    co.fork_sub_offset = 3;
    PT_EQ_ERR(pr_ds_create(fork2, &co, &res, NULL, pr_deadline_in(5000)), PR_OK);
    pr_buf_clear(&got);
    PT_EQ_ERR(pr_ds_read_open(&rd, fork2, "-1", NULL, NULL), PR_OK);
    PT_EQ_ERR(ds_drain(rd, &got, NULL, pr_deadline_in(5000)), PR_ECLOSED);
    PT_EQ_INT(got.len, 8);
    PT_EQ_MEM(got.data, "hellowor", 8);
    pr_ds_read_destroy(rd);
    pr_ds_destroy(fork2);
    /* bad fields: refused before sending */
    PT_REQUIRE((fork2 = ds_handle(&f, "/v1/t/fork3", "text/plain")) != NULL);
    memset(&co, 0, sizeof co);
    co.fork_offset = mid; /* without forked_from */
    PT_EQ_ERR(pr_ds_create(fork2, &co, &res, NULL, pr_deadline_in(5000)), PR_EINVAL);
    co.fork_offset = NULL;
    co.fork_sub_offset = 2;
    PT_EQ_ERR(pr_ds_create(fork2, &co, &res, NULL, pr_deadline_in(5000)), PR_EINVAL);
    co.forked_from = "/v1/t/src";
    co.fork_sub_offset = -1;
    PT_EQ_ERR(pr_ds_create(fork2, &co, &res, NULL, pr_deadline_in(5000)), PR_EINVAL);
    co.fork_sub_offset = 0;
    co.forked_from = "v1/t/src"; /* not a path */
    PT_EQ_ERR(pr_ds_create(fork2, &co, &res, NULL, pr_deadline_in(5000)), PR_EINVAL);
    co.forked_from = "/v1/t/src\r\nX: y";
    PT_EQ_ERR(pr_ds_create(fork2, &co, &res, NULL, pr_deadline_in(5000)), PR_EINVAL);
    co.forked_from = "/v1/t/src";
    co.fork_offset = "a b";
    PT_EQ_ERR(pr_ds_create(fork2, &co, &res, NULL, pr_deadline_in(5000)), PR_EINVAL);
    PT_EQ_ERR(pr_ds_head(fork2, &res, NULL, pr_deadline_in(5000)), PR_EHTTP); /* nothing was created */
    PT_EQ_INT(res.error, PR_DS_NOT_FOUND);
    co.forked_from = "/v1/t/missing";
    co.fork_offset = NULL;
    PT_EQ_ERR(pr_ds_create(fork2, &co, &res, NULL, pr_deadline_in(5000)), PR_EHTTP);
    PT_EQ_INT(res.error, PR_DS_NOT_FOUND);
    pr_buf_deinit(&got);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(fork2);
    pr_ds_destroy(fork);
    pr_ds_destroy(src);
    ds_stop(&f);
}

static int ds_nosleep(int64_t delay, int64_t deadline, void *ud) {
    (void)delay;
    (void)deadline;
    (void)ud;
    return pr_is_canceled() ? PR_ECANCELED : PR_OK;
}

typedef struct ds_flusher {
    pr_ds_producer *p;
    int rc;
} ds_flusher;

static int ds_flush_task(void *arg) {
    ds_flusher *fl = (ds_flusher *)arg;
    fl->rc = pr_ds_producer_flush(fl->p, pr_deadline_in(10000));
    return 0;
}

/* A producer's counters at known points: appends under a linger are
   pending; during a flush against a server that holds its answers, one
   batch is in flight (max_in_flight 1) and the others wait; a 503 the
   handle does not retry is a resend; after the flush nothing is pending
   or in flight and every batch is acknowledged. */
PT_TEST(ds_producer_stats_counts_batches) {
    ts_server *s;
    ts_step st[2];
    pr_ds *ds;
    pr_ds_opts o;
    pr_ds_producer *p;
    pr_ds_producer_opts po;
    pr_ds_producer_stats ps;
    ds_flusher fl;
    pr_task *t;
    char url[128];
    int64_t until;
    PT_REQUIRE(ts_start(&s, NULL) == PR_OK);
    st[0] = hr_step(503, NULL, NULL);
    st[0].count = 2; /* the handle's one retry, then the producer's resend */
    st[1] = hr_step(200, "Stream-Next-Offset: 9\r\nProducer-Epoch: 0\r\nProducer-Seq: 0\r\n", NULL);
    st[1].delay_head_ms = 400;
    st[1].count = 10;
    PT_EQ_ERR(ts_script(s, "/p", st, 2), PR_OK);
    memset(&o, 0, sizeof o);
    o.content_type = "text/plain";
    o.retry.max_retries = 1;
    o.retry.hooks.sleep = ds_nosleep;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/p", (unsigned)ts_port(s));
    PT_EQ_ERR(pr_ds_open(&ds, url, &o, NULL), PR_OK);
    memset(&po, 0, sizeof po);
    po.producer_id = "s1";
    po.linger_ms = 60000;
    po.max_batch_items = 2;
    po.max_in_flight = 1;
    PT_EQ_ERR(pr_ds_producer_create(&p, ds, &po, NULL), PR_OK);
    PT_EQ_ERR(pr_ds_producer_stats_get(NULL, &ps), PR_EINVAL);
    PT_EQ_ERR(pr_ds_producer_stats_get(p, NULL), PR_EINVAL);
    PT_EQ_ERR(pr_ds_producer_stats_get(p, &ps), PR_OK);
    PT_EQ_INT(ps.pending_batches, 0);
    PT_EQ_ERR(pr_ds_producer_append(p, "a", 1, pr_deadline_in(1000)), PR_OK);
    PT_EQ_ERR(pr_ds_producer_stats_get(p, &ps), PR_OK); /* under the linger: one open batch */
    PT_EQ_INT(ps.pending_batches, 1);
    PT_EQ_INT(ps.pending_bytes, 1);
    PT_EQ_INT(ps.inflight_batches, 0);
    PT_EQ_ERR(pr_ds_producer_append(p, "bb", 2, pr_deadline_in(1000)), PR_OK); /* sealed: 2 items */
    PT_EQ_ERR(pr_ds_producer_append(p, "ccc", 3, pr_deadline_in(1000)), PR_OK);
    PT_EQ_ERR(pr_ds_producer_append(p, "dddd", 4, pr_deadline_in(1000)), PR_OK); /* sealed */
    PT_EQ_ERR(pr_ds_producer_append(p, "eeeee", 5, pr_deadline_in(1000)), PR_OK);
    fl.p = p;
    fl.rc = -1000;
    PT_EQ_ERR(pr_go(&t, ds_flush_task, &fl, NULL), PR_OK);
    until = pr_deadline_in(5000); /* a hang guard: the held answer to the first batch */
    while (ts_log_count(s) < 3 && pr_now() < until) pr_sleep(pr_deadline_in(5));
    PT_EQ_INT(ts_log_count(s), 3);
    PT_EQ_ERR(pr_ds_producer_stats_get(p, &ps), PR_OK);
    PT_EQ_INT(ps.inflight_batches, 1);
    PT_EQ_INT(ps.inflight_bytes, 3);
    PT_EQ_INT(ps.pending_batches, 2);
    PT_EQ_INT(ps.pending_bytes, 12);
    PT_EQ_INT(ps.acked_batches, 0);
    PT_EQ_INT(ps.resends, 1);
    PT_EQ_ERR(pr_join(t, NULL, pr_deadline_in(10000)), PR_OK);
    PT_EQ_ERR(fl.rc, PR_OK);
    PT_EQ_ERR(pr_ds_producer_stats_get(p, &ps), PR_OK);
    PT_EQ_INT(ps.pending_batches, 0);
    PT_EQ_INT(ps.pending_bytes, 0);
    PT_EQ_INT(ps.inflight_batches, 0);
    PT_EQ_INT(ps.inflight_bytes, 0);
    PT_EQ_INT(ps.acked_batches, 3);
    PT_EQ_INT(ps.acked_bytes, 15);
    PT_EQ_INT(ps.duplicate_batches, 0);
    PT_EQ_INT(ps.resends, 1);
    PT_EQ_INT(ps.abandoned_batches, 0);
    PT_EQ_INT(ts_log_count(s), 5);
    pr_ds_producer_destroy(p);
    pr_ds_destroy(ds);
    ts_stop(s);
}

/* opts.tls configures the handle's own client: an https stream whose
   certificate the test CA signed works with tls.ca_file; without it the
   open succeeds and the first operation fails with PR_ETLS; tls with a
   borrowed client is PR_EINVAL. */
PT_TEST(ds_tls_settings_reach_the_own_client) {
#ifdef PRISTINE_NO_TLS
    PT_SKIP("no TLS in this build");
#else
    ts_server *s;
    ts_opts so;
    ts_step st;
    pr_ds *ds;
    pr_ds_opts o;
    pr_ds_result res;
    pr_err_info e;
    pr_http_client *c;
    char url[128];
    if (!tls_fixtures()) PT_SKIP("no openssl to make certificates");
    memset(&so, 0, sizeof so);
    so.tls_cert_file = TLS_DIR "/good.crt";
    so.tls_key_file = TLS_DIR "/good.key";
    PT_REQUIRE(ts_start(&s, &so) == PR_OK);
    st = hr_step(200, "Stream-Next-Offset: 3\r\nContent-Type: text/plain\r\n", NULL);
    st.count = 10;
    PT_EQ_ERR(ts_script(s, "/t", &st, 1), PR_OK);
    memset(&res, 0, sizeof res);
    snprintf(url, sizeof url, "https://127.0.0.1:%u/t", (unsigned)ts_port(s));
    memset(&o, 0, sizeof o);
    o.tls.ca_file = TLS_DIR "/ca.crt";
    PT_EQ_ERR(pr_ds_open(&ds, url, &o, &e), PR_OK);
    PT_EQ_ERR(pr_ds_head(ds, &res, &e, pr_deadline_in(5000)), PR_OK);
    PT_EQ_INT(res.status, 200);
    pr_ds_destroy(ds);
    /* without the CA: the default anchors (the bundle SSL_CERT_FILE names,
       here an unrelated CA) do not know it */
    pr_tls_global_cleanup();
    setenv("SSL_CERT_FILE", TLS_DIR "/other.crt", 1);
    memset(&o, 0, sizeof o);
    o.retry.max_retries = PR_RETRY_OFF;
    PT_EQ_ERR(pr_ds_open(&ds, url, &o, &e), PR_OK);
    PT_EQ_ERR(pr_ds_head(ds, &res, &e, pr_deadline_in(5000)), PR_ETLS);
    PT_EQ_ERR(e.code, PR_ETLS);
    pr_ds_destroy(ds);
    pr_tls_global_cleanup();
    unsetenv("SSL_CERT_FILE");
    /* a borrowed client brings its own settings */
    PT_EQ_ERR(pr_http_client_create(&c, NULL, NULL), PR_OK);
    memset(&o, 0, sizeof o);
    o.client = c;
    o.tls.ca_file = TLS_DIR "/ca.crt";
    PT_EQ_ERR(pr_ds_open(&ds, url, &o, &e), PR_EINVAL);
    PT_EQ_ERR(e.code, PR_EINVAL);
    PT_CHECK(ds == NULL);
    pr_http_client_destroy(c);
    pr_ds_result_deinit(&res);
    ts_stop(s);
#endif
}

const pt_suite pt_suite_ds = { "ds", {
    PT_ENTRY(ds_create_head_delete),
    PT_ENTRY(ds_append_close_and_status_mapping),
    PT_ENTRY(ds_catchup_offsets_and_etag),
    PT_ENTRY(ds_long_poll_follows_to_close),
    PT_ENTRY(ds_sse_follows_to_close),
    PT_ENTRY(ds_sse_base64_follows_to_close),
    PT_ENTRY(ds_auto_follows_to_close),
    PT_ENTRY(ds_binary_all_bytes),
    PT_ENTRY(ds_json_items),
    PT_ENTRY(ds_faults_lose_nothing),
    PT_ENTRY(ds_fail_nth_allocation_sse_and_append),
    PT_ENTRY(ds_producer_batches_and_dedup),
    PT_ENTRY(ds_producer_stale_epoch_and_auto_claim),
    PT_ENTRY(ds_producer_out_of_order_and_drops),
    PT_ENTRY(ds_producer_backpressure_json_close),
    PT_ENTRY(ds_producer_linger_and_cursor),
    PT_ENTRY(ds_fail_nth_allocation_producer),
    PT_ENTRY(ds_producer_survives_an_outage),
    PT_ENTRY(ds_producer_failure_is_sticky_and_distinct),
    PT_ENTRY(ds_live_reads_notice_a_silent_connection),
    PT_ENTRY(ds_sse_deadline_holds_under_a_flood),
    PT_ENTRY(ds_instant_empty_answers_are_paced),
    PT_ENTRY(ds_sse_clean_end_resets_the_backoff),
    PT_ENTRY(ds_server_offsets_checked_where_they_enter),
    PT_ENTRY(ds_read_cut_connection_is_not_the_end),
    PT_ENTRY(ds_cross_origin_redirect_keeps_protocol_fields),
    PT_ENTRY(ds_consumer_checkpoints_and_resume),
    PT_ENTRY(ds_observer_through_telemetry),
    PT_ENTRY(ds_adapter_speaks_the_protocol),
    PT_ENTRY(ds_query_sorted),
    PT_ENTRY(ds_auth_error_hook_refreshes_once_per_refusal),
    PT_ENTRY(ds_auth_error_hook_serves_reads_and_producers),
    PT_ENTRY(ds_create_forks),
    PT_ENTRY(ds_producer_stats_counts_batches),
    PT_ENTRY(ds_tls_settings_reach_the_own_client),
    {0, 0} } };
