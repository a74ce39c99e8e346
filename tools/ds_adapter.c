/* ds_adapter.c - the Durable Streams client conformance adapter: JSON
   lines on stdin (one command each), one JSON result per line on stdout,
   as language-neutral conformance runners speak it. Built and started by
   tools/ds-adapter (a script the runner spawns without arguments):

     cc -O2 -std=c11 tools/ds_adapter.c -o build/ds-adapter -lbearssl -lpthread

   Every request goes through pristine's ds module: handles, reads, the
   idempotent producer. The adapter only maps commands to calls and
   outcomes to the result fields and error codes the runners check.
   stderr carries diagnostics; stdout carries only results. */
#define _GNU_SOURCE 1
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#include <stdio.h>
#include <time.h>

#define DA_CMD_TIMEOUT_MS 25000 /* the runners give a command 30 s */

typedef struct da_kv {
    struct da_kv *next;
    char *name, *value;         /* value: a content type, or a dynamic item's kind */
    long counter;
    char *token;
} da_kv;

typedef struct da_prod {
    struct da_prod *next;
    char *key;                  /* path \n producer id \n epoch */
    pr_ds *ds;
    pr_ds_producer *p;
} da_prod;

static struct {
    char *server;
    pr_http_client *client;
    da_kv *types;               /* content type per path */
    da_kv *dyn_headers, *dyn_params;
    da_prod *prods;
    /* per command */
    pr_buf hdr_lines;           /* "Name: value" strings, NUL-separated */
    const char *hdrs[48];
    pr_buf params;              /* "name=value" strings */
    const char *pars[48];
    pr_buf sent_h, sent_p;      /* "name\0value\0" pairs reported back */
} da;

static char *da_dup(const char *s, size_t n) {
    char *d = (char *)malloc(n + 1);
    if (!d) abort();
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static const char *da_str(const pr_json *obj, const char *key, size_t *len) {
    const pr_json *v = pr_json_get(obj, key);
    if (len) *len = 0;
    return v && pr_json_type(v) == PR_JSON_STRING ? pr_json_string(v, len) : NULL;
}

static int da_has(const pr_json *obj, const char *key) { return pr_json_get(obj, key) != NULL; }

static int64_t da_int(const pr_json *obj, const char *key, int64_t def) {
    const pr_json *v = pr_json_get(obj, key);
    int64_t n;
    double d;
    if (v && pr_json_int(v, &n) == PR_OK) return n;
    if (v && pr_json_double(v, &d) == PR_OK) return (int64_t)d;
    return def;
}

static double da_num(const pr_json *obj, const char *key, double def) {
    const pr_json *v = pr_json_get(obj, key);
    double d;
    return v && pr_json_double(v, &d) == PR_OK ? d : def;
}

static int da_bool(const pr_json *obj, const char *key) {
    const pr_json *v = pr_json_get(obj, key);
    int b = 0;
    return v && pr_json_bool(v, &b) == PR_OK && b;
}

static da_kv *da_kv_find(da_kv *l, const char *name) {
    for (; l; l = l->next)
        if (strcmp(l->name, name) == 0) return l;
    return NULL;
}

static void da_kv_set(da_kv **l, const char *name, const char *value, size_t vlen) {
    da_kv *k = da_kv_find(*l, name);
    if (!k) {
        k = (da_kv *)calloc(1, sizeof *k);
        if (!k) abort();
        k->name = da_dup(name, strlen(name));
        k->next = *l;
        *l = k;
    } else {
        free(k->value);
    }
    k->value = da_dup(value, vlen);
}

static void da_kv_free(da_kv **l) {
    while (*l) {
        da_kv *k = *l;
        *l = k->next;
        free(k->name);
        free(k->value);
        free(k->token);
        free(k);
    }
}

/* ---- output ---- */

typedef struct da_out {
    pr_buf b;
    pr_json_writer w;
} da_out;

static void da_begin(da_out *o, const char *type, int success) {
    pr_buf_init(&o->b);
    pr_json_writer_init(&o->w, &o->b);
    pr_json_begin_object(&o->w);
    pr_json_key(&o->w, "type", 4);
    pr_json_write_string(&o->w, type, strlen(type));
    pr_json_key(&o->w, "success", 7);
    pr_json_write_bool(&o->w, success);
}

static void da_kstr(da_out *o, const char *key, const char *s, size_t n) {
    pr_json_key(&o->w, key, strlen(key));
    if (pr_json_write_string(&o->w, s, n) != PR_OK) { /* bytes that are not UTF-8: decoded as UTF-8 would */
        char *fix = (char *)malloc(3 * n + 1);
        size_t k;
        if (!fix) abort();
        k = pr__sse_utf8_repair(fix, s, n);
        pr_json_write_string(&o->w, fix, k);
        free(fix);
    }
}

static void da_kint(da_out *o, const char *key, int64_t v) {
    pr_json_key(&o->w, key, strlen(key));
    pr_json_write_int(&o->w, v);
}

static void da_kbool(da_out *o, const char *key, int v) {
    pr_json_key(&o->w, key, strlen(key));
    pr_json_write_bool(&o->w, v);
}

/* headersSent / paramsSent: the dynamic values this command sent. */
static void da_ksent(da_out *o) {
    const pr_buf *bs[2] = { &da.sent_h, &da.sent_p };
    const char *keys[2] = { "headersSent", "paramsSent" };
    int i;
    for (i = 0; i < 2; i++) {
        size_t pos = 0;
        if (!bs[i]->len) continue;
        pr_json_key(&o->w, keys[i], strlen(keys[i]));
        pr_json_begin_object(&o->w);
        while (pos < bs[i]->len) {
            const char *n = bs[i]->data + pos, *v = n + strlen(n) + 1;
            pos += strlen(n) + 1 + strlen(v) + 1;
            pr_json_key(&o->w, n, strlen(n));
            pr_json_write_string(&o->w, v, strlen(v));
        }
        pr_json_end_object(&o->w);
    }
}

static void da_end(da_out *o) {
    pr_json_end_object(&o->w);
    if (pr_json_writer_finish(&o->w) != PR_OK) {
        fputs("{\"type\":\"error\",\"success\":false,\"errorCode\":\"INTERNAL_ERROR\",\"message\":\"result encoding\"}\n",
              stdout);
    } else {
        fwrite(o->b.data, 1, o->b.len, stdout);
        fputc('\n', stdout);
    }
    fflush(stdout);
    pr_buf_deinit(&o->b);
}

static void da_error(const char *cmd, int status, const char *code, const char *msg) {
    da_out o;
    da_begin(&o, "error", 0);
    da_kstr(&o, "commandType", cmd, strlen(cmd));
    if (status) da_kint(&o, "status", status);
    da_kstr(&o, "errorCode", code, strlen(code));
    da_kstr(&o, "message", msg, strlen(msg));
    da_end(&o);
}

/* The error code of an outcome. */
static const char *da_code(int rc, int meaning, const char *cmd) {
    if (rc == PR_EHTTP) switch (meaning) {
        case PR_DS_NOT_FOUND: return "NOT_FOUND";
        case PR_DS_CONFLICT_EXISTS: return "CONFLICT";
        case PR_DS_CONFLICT_SEQ: return "SEQUENCE_CONFLICT";
        case PR_DS_STREAM_CLOSED: return "STREAM_CLOSED";
        case PR_DS_BAD_REQUEST: return strcmp(cmd, "read") == 0 ? "INVALID_OFFSET" : "UNEXPECTED_STATUS";
        case PR_DS_NOT_SUPPORTED: return "NOT_SUPPORTED";
        default: return "UNEXPECTED_STATUS";
        }
    if (rc == PR_ETIMEDOUT) return "TIMEOUT";
    if (rc == PR_EPROTO) return "PARSE_ERROR";
    if (rc == PR_EINVAL) return "INVALID_ARGUMENT";
    /* PR_EFAILED: a producer gave up on a batch the network kept from the server */
    if (rc == PR_EIO || rc == PR_ECLOSED || rc == PR_EDNS || rc == PR_ETLS || rc == PR_EFAILED) return "NETWORK_ERROR";
    return "INTERNAL_ERROR";
}

static void da_fail(const char *cmd, int rc, int meaning, int status, const pr_err_info *e) {
    da_error(cmd, rc == PR_EHTTP ? status : 0, da_code(rc, meaning, cmd), e && e->msg[0] ? e->msg : pr_strerror(rc));
}

/* ---- per command: headers, params, handles ---- */

static void da_dynamic_value(da_kv *k, char *out, size_t cap) {
    if (strcmp(k->value, "counter") == 0) snprintf(out, cap, "%ld", ++k->counter);
    else if (strcmp(k->value, "timestamp") == 0) snprintf(out, cap, "%lld", (long long)pr__time_wall_ms());
    else snprintf(out, cap, "%s", k->token ? k->token : "");
}

/* Evaluate the dynamic items once and gather the command's headers. */
static void da_prepare(const pr_json *cmd) {
    const pr_json *h = pr_json_get(cmd, "headers");
    size_t n = 0, np = 0, pos;
    da_kv *k;
    char v[64];
    pr_buf_clear(&da.hdr_lines);
    pr_buf_clear(&da.params);
    pr_buf_clear(&da.sent_h);
    pr_buf_clear(&da.sent_p);
    if (h && pr_json_type(h) == PR_JSON_OBJECT) {
        pr_json_iter it;
        pr_json_iter_init(&it, h);
        while (pr_json_iter_next(&it) && n < 40) {
            size_t vl;
            const char *val = pr_json_string(it.value, &vl);
            if (!val) continue;
            pr_buf_printf(&da.hdr_lines, "%.*s: %.*s", (int)it.key_len, it.key, (int)vl, val);
            pr_buf_append(&da.hdr_lines, "", 1);
            n++;
        }
    }
    for (k = da.dyn_headers; k; k = k->next) {
        int given = 0;
        if (h && pr_json_type(h) == PR_JSON_OBJECT) {
            pr_json_iter it;
            pr_json_iter_init(&it, h);
            while (pr_json_iter_next(&it))
                if (pr_ascii_icmp((pr_slice){ it.key, it.key_len }, pr_slice_cstr(k->name)) == 0) given = 1;
        }
        da_dynamic_value(k, v, sizeof v);
        if (given || n >= 40) continue; /* the command's own header wins */
        pr_buf_printf(&da.hdr_lines, "%s: %s", k->name, v);
        pr_buf_append(&da.hdr_lines, "", 1);
        n++;
        pr_buf_append(&da.sent_h, k->name, strlen(k->name) + 1);
        pr_buf_append(&da.sent_h, v, strlen(v) + 1);
    }
    for (k = da.dyn_params; k; k = k->next) {
        pr_buf pair;
        da_dynamic_value(k, v, sizeof v);
        if (np >= 40) continue;
        pr_buf_init(&pair);
        pr_url_query_append(&pair, k->name, v);
        pr_buf_append(&da.params, pair.data, pair.len + 1);
        pr_buf_deinit(&pair);
        np++;
        pr_buf_append(&da.sent_p, k->name, strlen(k->name) + 1);
        pr_buf_append(&da.sent_p, v, strlen(v) + 1);
    }
    for (pos = 0, n = 0; pos < da.hdr_lines.len; pos += strlen(da.hdr_lines.data + pos) + 1) da.hdrs[n++] = da.hdr_lines.data + pos;
    da.hdrs[n] = NULL;
    for (pos = 0, np = 0; pos < da.params.len; pos += strlen(da.params.data + pos) + 1) da.pars[np++] = da.params.data + pos;
    da.pars[np] = NULL;
}

static const char *da_type_of(const char *path) {
    da_kv *k = da_kv_find(da.types, path);
    return k ? k->value : "application/octet-stream";
}

/* A handle on the command's path with its headers and params. */
static int da_handle(pr_ds **out, const char *path, const char *ctype, pr_err_info *err) {
    pr_ds_opts o;
    char url[2048];
    memset(&o, 0, sizeof o);
    o.client = da.client;
    o.content_type = ctype ? ctype : da_type_of(path);
    o.headers = da.hdrs;
    o.params = da.pars;
    snprintf(url, sizeof url, "%s%s", da.server, path);
    return pr_ds_open(out, url, &o, err);
}

static int64_t da_deadline(void) { return pr_deadline_in(DA_CMD_TIMEOUT_MS); }

/* ---- commands ---- */

static void da_init(const pr_json *cmd) {
    da_out o;
    size_t n;
    const char *u = da_str(cmd, "serverUrl", &n);
    static const char *const feats[] = { "batching", "sse", "longPoll", "auto", "streaming", "dynamicHeaders",
                                         "retryOptions", "batchItems", "strictZeroValidation" };
    size_t i;
    if (!u) {
        da_error("init", 0, "INVALID_ARGUMENT", "init needs serverUrl");
        return;
    }
    free(da.server);
    while (n && u[n - 1] == '/') n--;
    da.server = da_dup(u, n);
    da_begin(&o, "init", 1);
    da_kstr(&o, "clientName", "pristine.h", 10);
    da_kstr(&o, "clientVersion", "0.1.0", 5);
    pr_json_key(&o.w, "features", 8);
    pr_json_begin_object(&o.w);
    for (i = 0; i < sizeof feats / sizeof feats[0]; i++) {
        pr_json_key(&o.w, feats[i], strlen(feats[i]));
        pr_json_write_bool(&o.w, 1);
    }
    pr_json_end_object(&o.w);
    da_end(&o);
}

static void da_offset_field(da_out *o, const char *key, pr_slice s) {
    if (s.len) da_kstr(o, key, s.ptr, s.len);
}

static void da_create(const pr_json *cmd, const char *path) {
    pr_ds *ds;
    pr_ds_result res;
    pr_err_info err;
    pr_ds_create_opts co;
    pr_err_info e;
    size_t n;
    const char *ct = da_str(cmd, "contentType", NULL), *data = da_str(cmd, "data", &n);
    int rc;
    da_out o;
    memset(&res, 0, sizeof res);
    if ((rc = da_handle(&ds, path, ct ? ct : "application/octet-stream", &e)) != PR_OK) {
        da_fail("create", rc, 0, 0, &e);
        return;
    }
    memset(&co, 0, sizeof co);
    co.ttl_s = da_int(cmd, "ttlSeconds", 0);
    co.expires_at = da_str(cmd, "expiresAt", NULL);
    co.closed = da_bool(cmd, "closed");
    co.body = data;
    co.body_len = data ? n : 0;
    rc = pr_ds_create(ds, &co, &res, &err, da_deadline());
    if (rc == PR_OK) {
        da_kv_set(&da.types, path, pr_ds_content_type(ds), strlen(pr_ds_content_type(ds)));
        da_begin(&o, "create", 1);
        da_kint(&o, "status", res.status);
        da_offset_field(&o, "offset", res.offset);
        da_end(&o);
    } else {
        da_fail("create", rc, res.error, res.status, &err);
    }
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
}

static void da_head(const pr_json *cmd, const char *path, const char *type) {
    pr_ds *ds;
    pr_ds_result res;
    pr_err_info err;
    pr_err_info e;
    int rc;
    da_out o;
    (void)cmd;
    memset(&res, 0, sizeof res);
    if ((rc = da_handle(&ds, path, NULL, &e)) != PR_OK) {
        da_fail(type, rc, 0, 0, &e);
        return;
    }
    rc = pr_ds_head(ds, &res, &err, da_deadline());
    if (rc == PR_OK) {
        if (res.content_type.len) da_kv_set(&da.types, path, res.content_type.ptr, res.content_type.len);
        da_begin(&o, type, 1);
        da_kint(&o, "status", 200);
        da_offset_field(&o, "offset", res.offset);
        if (strcmp(type, "head") == 0) {
            if (res.content_type.len) da_kstr(&o, "contentType", res.content_type.ptr, res.content_type.len);
            if (res.ttl_s >= 0) da_kint(&o, "ttlSeconds", res.ttl_s);
            if (res.expires_at.len) da_kstr(&o, "expiresAt", res.expires_at.ptr, res.expires_at.len);
            da_kbool(&o, "streamClosed", res.closed);
        }
        da_end(&o);
    } else {
        da_fail(type, rc, res.error, res.status, &err);
    }
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
}

static void da_delete(const char *path) {
    pr_ds *ds;
    pr_ds_result res;
    pr_err_info err;
    pr_err_info e;
    int rc;
    da_out o;
    memset(&res, 0, sizeof res);
    if ((rc = da_handle(&ds, path, NULL, &e)) != PR_OK) {
        da_fail("delete", rc, 0, 0, &e);
        return;
    }
    rc = pr_ds_delete(ds, &res, &err, da_deadline());
    if (rc == PR_OK) {
        da_begin(&o, "delete", 1);
        da_kint(&o, "status", 200);
        da_end(&o);
    } else {
        da_fail("delete", rc, res.error, res.status, &err);
    }
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
}

/* The command's data: text, or base64 when binary. */
static int da_data(const pr_json *cmd, pr_buf *out) {
    size_t n;
    const char *d = da_str(cmd, "data", &n);
    pr_buf_clear(out);
    if (!d) return PR_OK;
    if (da_bool(cmd, "binary")) return pr__ds_read_b64_decode(out, d, n);
    return pr_buf_append(out, d, n);
}

static void da_append(const pr_json *cmd, const char *path, int closing) {
    const char *type = closing ? "close" : "append";
    pr_ds *ds;
    pr_ds_result res;
    pr_err_info err;
    pr_ds_append_opts ao;
    pr_err_info e;
    pr_buf data;
    char seq[32];
    int rc;
    da_out o;
    memset(&res, 0, sizeof res);
    pr_buf_init(&data);
    if (da_data(cmd, &data) != PR_OK) {
        da_error(type, 0, "INVALID_ARGUMENT", "data is not base64");
        return;
    }
    if (!closing && !data.len) { /* the protocol's answer to an empty append, without a round trip */
        da_error(type, 400, "UNEXPECTED_STATUS", "an append needs data: 400 Bad Request");
        pr_buf_deinit(&data);
        return;
    }
    if ((rc = da_handle(&ds, path, closing ? da_str(cmd, "contentType", NULL) : NULL, &e)) != PR_OK) {
        da_fail(type, rc, 0, 0, &e);
        pr_buf_deinit(&data);
        return;
    }
    memset(&ao, 0, sizeof ao);
    ao.close = closing;
    if (da_has(cmd, "seq")) {
        const char *s = da_str(cmd, "seq", NULL);
        if (s) snprintf(seq, sizeof seq, "%s", s);
        else snprintf(seq, sizeof seq, "%lld", (long long)da_int(cmd, "seq", 0));
        ao.seq = seq;
    }
    rc = pr_ds_append(ds, data.data, data.len, &ao, &res, &err, da_deadline());
    if (rc == PR_OK) {
        da_begin(&o, type, 1);
        da_kint(&o, "status", 200);
        da_offset_field(&o, closing ? "finalOffset" : "offset", res.offset);
        if (!closing) da_ksent(&o);
        da_end(&o);
    } else {
        da_fail(type, rc, res.error, res.status, &err);
    }
    pr_buf_deinit(&data);
    pr_ds_result_deinit(&res);
    pr_ds_destroy(ds);
}

/* ---- reads ---- */

static void da_read(const pr_json *cmd, const char *path) {
    pr_ds *ds;
    pr_ds_read *rd = NULL;
    pr_ds_read_opts ro;
    pr_ds_chunk c;
    pr_err_info e;
    const pr_json *live = pr_json_get(cmd, "live");
    const char *off = da_str(cmd, "offset", NULL), *lv = live ? pr_json_string(live, NULL) : NULL;
    int64_t timeout = da_int(cmd, "timeoutMs", 5000), max_chunks = da_int(cmd, "maxChunks", 100);
    int64_t until = pr_deadline_in(timeout);
    int wait_utd = da_bool(cmd, "waitForUpToDate"), rc, up = 0, closed = 0, json, nchunks = 0;
    pr_buf all, chunks, offs;
    pr_json_writer aw;
    char offset[1100] = "";
    da_out o;
    memset(&ro, 0, sizeof ro);
    if (lv && strcmp(lv, "long-poll") == 0) ro.live = PR_DS_LIVE_LONG_POLL;
    else if (lv && strcmp(lv, "sse") == 0) ro.live = PR_DS_LIVE_SSE;
    else if (live && pr_json_type(live) == PR_JSON_TRUE) ro.live = PR_DS_LIVE_AUTO;
    if ((rc = da_handle(&ds, path, NULL, &e)) != PR_OK) {
        da_fail("read", rc, 0, 0, &e);
        return;
    }
    json = strstr(pr_ds_content_type(ds), "json") != NULL;
    if ((rc = pr_ds_read_open(&rd, ds, off ? off : "-1", &ro, NULL)) != PR_OK) {
        da_error("read", 0, "INVALID_ARGUMENT", "bad offset");
        pr_ds_destroy(ds);
        return;
    }
    pr_buf_init(&all);
    pr_buf_init(&chunks); /* per chunk: a size_t length, then the bytes (JSON text or data) */
    pr_buf_init(&offs);
    pr_json_writer_init(&aw, &all);
    if (json) pr_json_begin_array(&aw);
    for (;;) {
        int64_t dl = ro.live ? until : da_deadline();
        rc = pr_ds_read_next(rd, &c, dl);
        if (rc != PR_OK) break;
        snprintf(offset, sizeof offset, "%s", c.offset);
        up = c.up_to_date;
        closed = c.closed;
        if (json && c.items && pr_json_len(c.items)) {
            size_t i;
            if (ro.live) { /* one chunk per response */
                pr_buf one;
                pr_json_writer w1;
                pr_buf_init(&one);
                pr_json_writer_init(&w1, &one);
                pr_json_begin_array(&w1);
                for (i = 0; i < pr_json_len(c.items); i++) pr_json_write_value(&w1, pr_json_at(c.items, i));
                pr_json_end_array(&w1);
                pr_json_writer_finish(&w1);
                pr_buf_append(&chunks, &one.len, sizeof one.len);
                pr_buf_append(&chunks, one.data, one.len);
                pr_buf_deinit(&one);
                pr_buf_append(&offs, offset, strlen(offset) + 1);
                nchunks++;
            } else {
                for (i = 0; i < pr_json_len(c.items); i++) pr_json_write_value(&aw, pr_json_at(c.items, i));
                nchunks = 1;
            }
        } else if (!json && c.len) {
            if (ro.live) {
                size_t n = c.len;
                pr_buf_append(&chunks, &n, sizeof n);
                pr_buf_append(&chunks, c.data, c.len);
                pr_buf_append(&offs, offset, strlen(offset) + 1);
                nchunks++;
            } else {
                pr_buf_append(&all, c.data, c.len);
                nchunks = 1;
            }
        }
        if (closed) break;
        if (ro.live && (nchunks >= max_chunks || (wait_utd && up))) break;
    }
    if (json) {
        pr_json_end_array(&aw);
        pr_json_writer_finish(&aw);
    }
    if (rc == PR_OK || rc == PR_ECLOSED || (rc == PR_ETIMEDOUT && ro.live)) {
        size_t pos = 0, opos = 0;
        int i;
        if (rc == PR_ETIMEDOUT) up = 1; /* a live read that ran out of time is up to date */
        if (!offset[0]) snprintf(offset, sizeof offset, "%s", pr_ds_read_offset(rd, NULL));
        da_begin(&o, "read", 1);
        da_kint(&o, "status", pr_ds_read_status(rd));
        pr_json_key(&o.w, "chunks", 6);
        pr_json_begin_array(&o.w);
        if (ro.live) {
            for (i = 0; i < nchunks; i++) {
                const char *d, *of = offs.data + opos;
                size_t dl;
                memcpy(&dl, chunks.data + pos, sizeof dl); /* each chunk: its length, then its bytes */
                d = chunks.data + pos + sizeof dl;
                pos += sizeof dl + dl;
                opos += strlen(of) + 1;
                pr_json_begin_object(&o.w);
                da_kstr(&o, "data", d, dl);
                da_kstr(&o, "offset", of, strlen(of));
                pr_json_end_object(&o.w);
            }
        } else if (nchunks) {
            pr_json_begin_object(&o.w);
            da_kstr(&o, "data", all.data ? all.data : "", all.len);
            da_kstr(&o, "offset", offset, strlen(offset));
            pr_json_end_object(&o.w);
        }
        pr_json_end_array(&o.w);
        if (offset[0]) da_kstr(&o, "offset", offset, strlen(offset));
        da_kbool(&o, "upToDate", up);
        da_kbool(&o, "streamClosed", closed);
        da_ksent(&o);
        da_end(&o);
    } else {
        pr_err_info re;
        memset(&re, 0, sizeof re);
        pr_ds_read_last_error(rd, &re);
        da_fail("read", rc, re.meaning, pr_ds_read_status(rd), &re);
    }
    pr_buf_deinit(&all);
    pr_buf_deinit(&chunks);
    pr_buf_deinit(&offs);
    pr_ds_read_destroy(rd);
    pr_ds_destroy(ds);
}

/* ---- producers ---- */

static da_prod *da_prod_get(const char *path, const char *id, int64_t epoch, int auto_claim, int create) {
    char key[1200];
    da_prod *d;
    pr_ds_producer_opts po;
    pr_err_info e;
    snprintf(key, sizeof key, "%s\n%s\n%lld", path, id, (long long)epoch);
    for (d = da.prods; d; d = d->next)
        if (strcmp(d->key, key) == 0) return d;
    if (!create) return NULL;
    d = (da_prod *)calloc(1, sizeof *d);
    if (!d) abort();
    if (da_handle(&d->ds, path, NULL, &e) != PR_OK) {
        free(d);
        return NULL;
    }
    memset(&po, 0, sizeof po);
    po.producer_id = id;
    po.epoch = epoch;
    po.auto_claim = auto_claim;
    po.max_in_flight = 1;
    if (pr_ds_producer_create(&d->p, d->ds, &po, NULL) != PR_OK) {
        pr_ds_destroy(d->ds);
        free(d);
        return NULL;
    }
    d->key = da_dup(key, strlen(key));
    d->next = da.prods;
    da.prods = d;
    return d;
}

static void da_prod_drop(da_prod *d) {
    da_prod **pp = &da.prods;
    while (*pp && *pp != d) pp = &(*pp)->next;
    if (*pp) *pp = d->next;
    pr_ds_producer_destroy(d->p);
    pr_ds_destroy(d->ds);
    free(d->key);
    free(d);
}

static void da_prod_fail(const char *type, int rc, pr_ds_producer *p) {
    pr_err_info e;
    memset(&e, 0, sizeof e);
    pr_ds_producer_last_error(p, &e);
    da_fail(type, rc, e.meaning, e.http_status, &e);
}

static void da_idem_append(const pr_json *cmd, const char *path) {
    const char *id = da_str(cmd, "producerId", NULL);
    int64_t epoch = da_int(cmd, "epoch", 0), seq;
    long dups;
    da_prod *d;
    pr_buf data;
    int rc;
    da_out o;
    if (!id || !*id || epoch < 0) {
        da_error("idempotent-append", 0, "INVALID_ARGUMENT", "producerId and a non-negative epoch are required");
        return;
    }
    if (!(d = da_prod_get(path, id, epoch, da_bool(cmd, "autoClaim"), 1))) {
        da_error("idempotent-append", 0, "INTERNAL_ERROR", "could not create the producer");
        return;
    }
    pr_buf_init(&data);
    da_data(cmd, &data);
    dups = pr_ds_producer_duplicates(d->p);
    rc = data.len ? pr_ds_producer_append(d->p, data.data, data.len, da_deadline()) : PR_EINVAL;
    if (rc == PR_OK) rc = pr_ds_producer_flush(d->p, da_deadline());
    if (rc == PR_OK) {
        pr_ds_producer_epoch(d->p, &seq);
        da_begin(&o, "idempotent-append", 1);
        da_kint(&o, "status", 200);
        if (*pr_ds_producer_offset(d->p)) da_kstr(&o, "offset", pr_ds_producer_offset(d->p), strlen(pr_ds_producer_offset(d->p)));
        da_kbool(&o, "duplicate", pr_ds_producer_duplicates(d->p) > dups);
        da_kint(&o, "producerSeq", seq - 1);
        da_end(&o);
    } else {
        da_prod_fail("idempotent-append", rc, d->p);
    }
    pr_buf_deinit(&data);
}

static void da_idem_batch(const pr_json *cmd, const char *path) {
    const char *id = da_str(cmd, "producerId", NULL);
    const pr_json *items = pr_json_get(cmd, "items");
    int64_t epoch = da_int(cmd, "epoch", 0), in_flight = da_int(cmd, "maxInFlight", 1), seq;
    pr_ds *ds;
    pr_ds_producer *p;
    pr_ds_producer_opts po;
    pr_err_info e;
    size_t i;
    int rc;
    da_out o;
    if (!id || !*id || epoch < 0 || !items || pr_json_type(items) != PR_JSON_ARRAY || in_flight < 1) {
        da_error("idempotent-append-batch", 0, "INVALID_ARGUMENT", "producerId, epoch >= 0, items and maxInFlight >= 1");
        return;
    }
    if ((rc = da_handle(&ds, path, NULL, &e)) != PR_OK) {
        da_fail("idempotent-append-batch", rc, 0, 0, &e);
        return;
    }
    memset(&po, 0, sizeof po);
    po.producer_id = id;
    po.epoch = epoch;
    po.auto_claim = da_bool(cmd, "autoClaim");
    po.max_in_flight = (int)in_flight;
    po.max_batch_items = in_flight > 1 ? 1 : 0; /* 1 in flight: one batch; more: one item per request, pipelined */
    if ((rc = pr_ds_producer_create(&p, ds, &po, NULL)) != PR_OK) {
        pr_ds_destroy(ds);
        da_error("idempotent-append-batch", 0, "INVALID_ARGUMENT", "producer options");
        return;
    }
    for (i = 0, rc = PR_OK; rc == PR_OK && i < pr_json_len(items); i++) {
        size_t n;
        const char *s = pr_json_string(pr_json_at(items, i), &n);
        if (s && n) rc = pr_ds_producer_append(p, s, n, da_deadline());
    }
    if (rc == PR_OK) rc = pr_ds_producer_flush(p, da_deadline());
    if (rc == PR_OK) {
        pr_ds_producer_epoch(p, &seq);
        da_begin(&o, "idempotent-append-batch", 1);
        da_kint(&o, "status", 200);
        da_kint(&o, "producerSeq", seq - 1);
        da_end(&o);
    } else {
        da_prod_fail("idempotent-append-batch", rc, p);
    }
    pr_ds_producer_destroy(p);
    pr_ds_destroy(ds);
}

static void da_idem_close(const pr_json *cmd, const char *path) {
    const char *id = da_str(cmd, "producerId", NULL), *fin = NULL;
    int64_t epoch = da_int(cmd, "epoch", 0);
    da_prod *d;
    pr_buf data;
    int rc;
    da_out o;
    if (!id || !*id || epoch < 0) {
        da_error("idempotent-close", 0, "INVALID_ARGUMENT", "producerId and a non-negative epoch are required");
        return;
    }
    if (!(d = da_prod_get(path, id, epoch, da_bool(cmd, "autoClaim"), 1))) {
        da_error("idempotent-close", 0, "INTERNAL_ERROR", "could not create the producer");
        return;
    }
    pr_buf_init(&data);
    da_data(cmd, &data);
    rc = pr_ds_producer_close(d->p, data.data, data.len, &fin, da_deadline());
    if (rc == PR_OK) {
        da_begin(&o, "idempotent-close", 1);
        da_kint(&o, "status", 200);
        if (fin && *fin) da_kstr(&o, "finalOffset", fin, strlen(fin));
        da_end(&o);
    } else {
        da_prod_fail("idempotent-close", rc, d->p);
    }
    pr_buf_deinit(&data);
}

static void da_idem_detach(const pr_json *cmd, const char *path) {
    const char *id = da_str(cmd, "producerId", NULL);
    da_prod *d = id ? da_prod_get(path, id, da_int(cmd, "epoch", 0), 0, 0) : NULL;
    int rc = d ? pr_ds_producer_flush(d->p, da_deadline()) : PR_OK;
    da_out o;
    if (rc != PR_OK) {
        da_prod_fail("idempotent-detach", rc, d->p);
    } else {
        da_begin(&o, "idempotent-detach", 1);
        da_kint(&o, "status", 200);
        da_end(&o);
    }
    if (d) da_prod_drop(d);
}

/* ---- dynamic headers and params, validation ---- */

static void da_set_dynamic(const pr_json *cmd, int header) {
    const char *name = da_str(cmd, "name", NULL), *kind = da_str(cmd, "valueType", NULL);
    const char *type = header ? "set-dynamic-header" : "set-dynamic-param";
    da_kv **l = header ? &da.dyn_headers : &da.dyn_params, *k;
    da_out o;
    if (!name || !kind ||
        (strcmp(kind, "counter") && strcmp(kind, "timestamp") && (!header || strcmp(kind, "token")))) {
        da_error(type, 0, "INVALID_ARGUMENT", "name and valueType (counter, timestamp, token) are required");
        return;
    }
    da_kv_set(l, name, kind, strlen(kind));
    k = da_kv_find(*l, name);
    k->counter = 0;
    free(k->token);
    k->token = NULL;
    if (da_str(cmd, "initialValue", NULL)) {
        size_t n;
        const char *t = da_str(cmd, "initialValue", &n);
        k->token = da_dup(t, n);
    }
    da_begin(&o, type, 1);
    da_end(&o);
}

static void da_validate(const pr_json *cmd) {
    const pr_json *t = pr_json_get(cmd, "target");
    const char *target = t ? da_str(t, "target", NULL) : NULL;
    char msg[160] = "";
    da_out o;
    if (target && strcmp(target, "retry-options") == 0) {
        double init = da_num(t, "initialDelayMs", 100), max = da_num(t, "maxDelayMs", 60000);
        pr_backoff b = { PR_BACKOFF_EXPONENTIAL, PR_JITTER_FACTOR, 100, 60000, 1.0, 0.0, 0.0 };
        if (da_has(t, "maxRetries") && da_int(t, "maxRetries", 0) < 0) snprintf(msg, sizeof msg, "maxRetries must be >= 0");
        else if (da_has(t, "initialDelayMs") && init <= 0) snprintf(msg, sizeof msg, "initialDelayMs must be > 0");
        else if (da_has(t, "maxDelayMs") && max < init) snprintf(msg, sizeof msg, "maxDelayMs must be >= initialDelayMs");
        else if (da_has(t, "multiplier") && da_num(t, "multiplier", 1) < 1) snprintf(msg, sizeof msg, "multiplier must be >= 1");
        else {
            b.base_ms = (int64_t)init;
            b.max_ms = (int64_t)max;
            if (pr_backoff_check(&b) != PR_OK) snprintf(msg, sizeof msg, "initialDelayMs / maxDelayMs out of range");
        }
    } else if (target && strcmp(target, "idempotent-producer") == 0) {
        if (da_has(t, "epoch") && da_int(t, "epoch", 0) < 0) snprintf(msg, sizeof msg, "epoch must be >= 0");
        else if (da_has(t, "maxBatchBytes") && da_int(t, "maxBatchBytes", 1) <= 0) snprintf(msg, sizeof msg, "maxBatchBytes must be > 0");
        else if (da_has(t, "maxBatchItems") && da_int(t, "maxBatchItems", 1) <= 0) snprintf(msg, sizeof msg, "maxBatchItems must be > 0");
        else if (da_has(t, "producerId") && !da_str(t, "producerId", NULL)) snprintf(msg, sizeof msg, "producerId must be a string");
    } else {
        snprintf(msg, sizeof msg, "unknown validation target");
    }
    if (msg[0]) {
        da_error("validate", 0, "INVALID_ARGUMENT", msg);
        return;
    }
    da_begin(&o, "validate", 1);
    da_end(&o);
}

/* ---- benchmark ---- */

static int64_t da_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct da_rt {
    pr_ds *ds;
    int live;
    int got;
    int rc;
} da_rt;

static int da_rt_reader(void *arg) {
    da_rt *r = (da_rt *)arg;
    pr_ds_read *rd;
    pr_ds_read_opts ro;
    pr_ds_chunk c;
    memset(&ro, 0, sizeof ro);
    ro.live = r->live;
    if ((r->rc = pr_ds_read_open(&rd, r->ds, "-1", &ro, NULL)) != PR_OK) return 0;
    while ((r->rc = pr_ds_read_next(rd, &c, da_deadline())) == PR_OK)
        if (c.len && !(c.items && !pr_json_len(c.items))) {
            r->got = 1;
            break;
        }
    pr_ds_read_destroy(rd);
    return 0;
}

static void da_benchmark(const pr_json *cmd) {
    const pr_json *op = pr_json_get(cmd, "operation");
    const pr_json *iter = pr_json_get(cmd, "iterationId");
    const char *kind = op ? da_str(op, "op", NULL) : NULL, *path = op ? da_str(op, "path", NULL) : NULL;
    const char *ct = op ? da_str(op, "contentType", NULL) : NULL;
    int64_t size = op ? da_int(op, "size", 100) : 0, count = op ? da_int(op, "count", 1) : 0, t0, t1;
    int64_t msgs = 0, bytes = 0;
    pr_ds *ds = NULL;
    pr_ds_result res;
    pr_err_info err;
    pr_err_info e;
    pr_buf body;
    char num[32];
    int rc = PR_OK, known = 1;
    da_out o;
    memset(&res, 0, sizeof res);
    pr_buf_init(&body);
    if (!kind || !path) {
        da_error("benchmark", 0, "INVALID_ARGUMENT", "operation.op and operation.path are required");
        return;
    }
    if (size < 0 || size > (64 << 20)) size = 100;
    if (strcmp(kind, "roundtrip") == 0 && ct && strstr(ct, "json")) { /* a JSON payload of about size bytes */
        pr_buf_append(&body, "\"", 1);
        while ((int64_t)body.len < size - 1) pr_buf_append(&body, "*", 1);
        pr_buf_append(&body, "\"", 1);
    } else {
        while ((int64_t)body.len < size) pr_buf_append(&body, "*", 1);
    }
    if ((rc = da_handle(&ds, path, strcmp(kind, "roundtrip") == 0 || strcmp(kind, "create") == 0 ? (ct ? ct : "application/octet-stream") : NULL, &e)) != PR_OK) {
        da_fail("benchmark", rc, 0, 0, &e);
        pr_buf_deinit(&body);
        return;
    }
    t0 = da_ns();
    if (strcmp(kind, "append") == 0) {
        rc = pr_ds_append(ds, body.data, body.len, NULL, &res, &err, da_deadline());
        bytes = size;
        msgs = 1;
    } else if (strcmp(kind, "create") == 0) {
        rc = pr_ds_create(ds, NULL, &res, &err, da_deadline());
        msgs = 1;
    } else if (strcmp(kind, "read") == 0 || strcmp(kind, "throughput_read") == 0) {
        pr_ds_read *rd;
        pr_ds_chunk c;
        if ((rc = pr_ds_read_open(&rd, ds, da_str(op, "offset", NULL), NULL, NULL)) == PR_OK) {
            while ((rc = pr_ds_read_next(rd, &c, da_deadline())) == PR_OK) {
                if (c.items) {
                    size_t i;
                    pr_buf one;
                    for (i = 0; i < pr_json_len(c.items); i++) { /* every item, and its JSON length */
                        pr_json_writer w;
                        pr_buf_init(&one);
                        pr_json_writer_init(&w, &one);
                        pr_json_write_value(&w, pr_json_at(c.items, i));
                        pr_json_writer_finish(&w);
                        bytes += (int64_t)one.len;
                        pr_buf_deinit(&one);
                        msgs++;
                    }
                } else {
                    bytes += (int64_t)c.len;
                    msgs++;
                }
            }
            if (rc == PR_ECLOSED) rc = PR_OK;
            pr_ds_read_destroy(rd);
        }
    } else if (strcmp(kind, "roundtrip") == 0) {
        da_rt rt;
        pr_task *t;
        const char *lv = da_str(op, "live", NULL);
        memset(&rt, 0, sizeof rt);
        rt.ds = ds;
        rt.live = lv && strcmp(lv, "sse") == 0 ? PR_DS_LIVE_SSE : PR_DS_LIVE_LONG_POLL;
        if ((rc = pr_ds_create(ds, NULL, &res, &err, da_deadline())) == PR_OK && (rc = pr_go(&t, da_rt_reader, &rt, NULL)) == PR_OK) {
            pr_sleep(pr_deadline_in(1)); /* the reader is at the tail */
            rc = pr_ds_append(ds, body.data, body.len, NULL, &res, &err, da_deadline());
            pr_join(t, NULL, da_deadline());
            if (rc == PR_OK && !rt.got) rc = rt.rc ? rt.rc : PR_EPROTO;
        }
        bytes = size;
        msgs = 1;
    } else if (strcmp(kind, "throughput_append") == 0) {
        pr_ds_producer *p;
        pr_ds_producer_opts po;
        int64_t i;
        pr_ds_result cr;
        memset(&cr, 0, sizeof cr);
        rc = pr_ds_head(ds, &cr, NULL, da_deadline());
        if (rc == PR_EHTTP && cr.error == PR_DS_NOT_FOUND) rc = pr_ds_create(ds, NULL, &cr, NULL, da_deadline());
        pr_ds_result_deinit(&cr);
        memset(&po, 0, sizeof po);
        po.producer_id = "bench-producer";
        po.max_in_flight = 5;
        if (rc == PR_OK && (rc = pr_ds_producer_create(&p, ds, &po, NULL)) == PR_OK) {
            for (i = 0; rc == PR_OK && i < count; i++) rc = pr_ds_producer_append(p, body.data, body.len, da_deadline());
            if (rc == PR_OK) rc = pr_ds_producer_flush(p, da_deadline());
            pr_ds_producer_destroy(p);
        }
        msgs = count;
        bytes = count * size;
    } else {
        known = 0;
    }
    t1 = da_ns();
    if (!known) {
        da_error("benchmark", 0, "NOT_SUPPORTED", "unknown benchmark operation");
    } else if (rc == PR_OK) {
        double secs = (double)(t1 - t0) / 1e9;
        da_begin(&o, "benchmark", 1);
        if (iter) {
            pr_json_key(&o.w, "iterationId", 11);
            pr_json_write_value(&o.w, iter);
        }
        snprintf(num, sizeof num, "%lld", (long long)(t1 - t0));
        da_kstr(&o, "durationNs", num, strlen(num));
        pr_json_key(&o.w, "metrics", 7);
        pr_json_begin_object(&o.w);
        pr_json_key(&o.w, "bytesTransferred", 16);
        pr_json_write_int(&o.w, bytes);
        pr_json_key(&o.w, "messagesProcessed", 17);
        pr_json_write_int(&o.w, msgs);
        pr_json_key(&o.w, "opsPerSecond", 12);
        pr_json_write_double(&o.w, secs > 0 ? (double)msgs / secs : 0);
        pr_json_key(&o.w, "bytesPerSecond", 14);
        pr_json_write_double(&o.w, secs > 0 ? (double)bytes / secs : 0);
        pr_json_end_object(&o.w);
        da_end(&o);
    } else {
        da_fail("benchmark", rc, res.error, res.status, &err);
    }
    pr_ds_result_deinit(&res);
    pr_buf_deinit(&body);
    pr_ds_destroy(ds);
}

/* ---- main loop ---- */

static int da_command(const char *line, size_t len) {
    pr_json_doc *doc = NULL;
    const pr_json *cmd;
    const char *type, *path;
    da_out o;
    if (pr_json_parse(&doc, line, len, NULL, NULL) != PR_OK || pr_json_type(cmd = pr_json_root(doc)) != PR_JSON_OBJECT ||
        !(type = da_str(cmd, "type", NULL))) {
        pr_json_doc_destroy(doc);
        da_error("unknown", 0, "PARSE_ERROR", "a command line that is not a JSON object with a type");
        return 1;
    }
    path = da_str(cmd, "path", NULL);
    if (strcmp(type, "init") == 0) da_init(cmd);
    else if (strcmp(type, "shutdown") == 0) {
        da_begin(&o, "shutdown", 1);
        da_end(&o);
        pr_json_doc_destroy(doc);
        return 0;
    } else if (strcmp(type, "set-dynamic-header") == 0) da_set_dynamic(cmd, 1);
    else if (strcmp(type, "set-dynamic-param") == 0) da_set_dynamic(cmd, 0);
    else if (strcmp(type, "clear-dynamic") == 0) {
        da_kv_free(&da.dyn_headers);
        da_kv_free(&da.dyn_params);
        da_begin(&o, "clear-dynamic", 1);
        da_end(&o);
    } else if (strcmp(type, "validate") == 0) da_validate(cmd);
    else if (!da.server) da_error(type, 0, "INVALID_ARGUMENT", "init first");
    else if (strcmp(type, "benchmark") == 0) {
        da_prepare(cmd);
        da_benchmark(cmd);
    } else if (!path) da_error(type, 0, "INVALID_ARGUMENT", "path is required");
    else {
        da_prepare(cmd);
        if (strcmp(type, "create") == 0) da_create(cmd, path);
        else if (strcmp(type, "connect") == 0 || strcmp(type, "head") == 0) da_head(cmd, path, type);
        else if (strcmp(type, "delete") == 0) da_delete(path);
        else if (strcmp(type, "append") == 0) da_append(cmd, path, 0);
        else if (strcmp(type, "close") == 0) da_append(cmd, path, 1);
        else if (strcmp(type, "read") == 0) da_read(cmd, path);
        else if (strcmp(type, "idempotent-append") == 0) da_idem_append(cmd, path);
        else if (strcmp(type, "idempotent-append-batch") == 0) da_idem_batch(cmd, path);
        else if (strcmp(type, "idempotent-close") == 0) da_idem_close(cmd, path);
        else if (strcmp(type, "idempotent-detach") == 0) da_idem_detach(cmd, path);
        else da_error(type, 0, "NOT_SUPPORTED", "unknown command");
    }
    pr_json_doc_destroy(doc);
    return 1;
}

int main(void) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    pr_http_client_opts co;
    memset(&co, 0, sizeof co);
    co.max_redirects = 5;
    co.pool_max = 64;
    if (pr_http_client_create(&da.client, &co, NULL) != PR_OK) return 1;
    pr_buf_init(&da.hdr_lines);
    pr_buf_init(&da.params);
    pr_buf_init(&da.sent_h);
    pr_buf_init(&da.sent_p);
    while ((n = getline(&line, &cap, stdin)) > 0) {
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (!n) continue;
        if (!da_command(line, (size_t)n)) break;
    }
    free(line);
    while (da.prods) da_prod_drop(da.prods);
    da_kv_free(&da.types);
    da_kv_free(&da.dyn_headers);
    da_kv_free(&da.dyn_params);
    pr_buf_deinit(&da.hdr_lines);
    pr_buf_deinit(&da.params);
    pr_buf_deinit(&da.sent_h);
    pr_buf_deinit(&da.sent_p);
    free(da.server);
    pr_http_client_destroy(da.client);
    pr_sched_destroy();
    return 0;
}
