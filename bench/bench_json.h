/* bench_json.h - json_parse_mbps: pr_json_parse throughput over a
   deterministic in-memory document set (about 64 MB): API-response-like
   arrays of objects (strings with escapes and non-ASCII, integers, doubles,
   nested arrays) and many small LLM-token-event objects, each parsed as its
   own document. The baseline is a plain memchr scan for '"' over the same
   bytes: the floor for any parser that looks at every string. Included by
   bench/bench_codecs.c after pristine.h with the implementation. */

static unsigned long long bench_json__rng = 0x9e3779b97f4a7c15ull;
static unsigned bench_json__rand(unsigned n) {
    bench_json__rng = bench_json__rng * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)((bench_json__rng >> 33) % n);
}

static double bench_json__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_json__text(pr_json_writer *w, unsigned words) {
    static const char *vocab[] = { "the", "model", "stream", "token", "r\xc3\xa9sum\xc3\xa9", "quick", "\"quoted\"",
                                   "line\n", "tab\t", "\xe2\x82\xac" "42", "na\xc3\xafve", "JSON", "parser", "fast" };
    char buf[2048];
    size_t n = 0;
    unsigned i;
    for (i = 0; i < words && n < sizeof buf - 32; i++) {
        const char *s = vocab[bench_json__rand(14)];
        size_t l = strlen(s);
        if (i) buf[n++] = ' ';
        memcpy(buf + n, s, l);
        n += l;
    }
    pr_json_write_string(w, buf, n);
}

static void bench_json__api_object(pr_json_writer *w, unsigned i) {
    char id[32];
    unsigned k, n;
    snprintf(id, sizeof id, "chatcmpl-%08u", i);
    pr_json_begin_object(w);
    pr_json_key(w, "id", 2), pr_json_write_string(w, id, strlen(id));
    pr_json_key(w, "object", 6), pr_json_write_string(w, "chat.completion", 15);
    pr_json_key(w, "created", 7), pr_json_write_int(w, 1700000000 + (int64_t)i);
    pr_json_key(w, "model", 5), pr_json_write_string(w, "pristine-large-2", 16);
    pr_json_key(w, "choices", 7), pr_json_begin_array(w);
    pr_json_begin_object(w);
    pr_json_key(w, "index", 5), pr_json_write_int(w, 0);
    pr_json_key(w, "message", 7), pr_json_begin_object(w);
    pr_json_key(w, "role", 4), pr_json_write_string(w, "assistant", 9);
    pr_json_key(w, "content", 7), bench_json__text(w, 20 + bench_json__rand(80));
    pr_json_end_object(w);
    pr_json_key(w, "finish_reason", 13), pr_json_write_string(w, "stop", 4);
    pr_json_key(w, "logprobs", 8), pr_json_write_null(w);
    pr_json_end_object(w);
    pr_json_end_array(w);
    pr_json_key(w, "usage", 5), pr_json_begin_object(w);
    pr_json_key(w, "prompt_tokens", 13), pr_json_write_int(w, bench_json__rand(4000));
    pr_json_key(w, "completion_tokens", 17), pr_json_write_int(w, bench_json__rand(1000));
    pr_json_key(w, "cached", 6), pr_json_write_bool(w, (int)bench_json__rand(2));
    pr_json_end_object(w);
    pr_json_key(w, "scores", 6), pr_json_begin_array(w);
    for (k = 0, n = 4 + bench_json__rand(12); k < n; k++)
        pr_json_write_double(w, (double)bench_json__rand(1000000) / 7919.0);
    pr_json_end_array(w);
    pr_json_key(w, "tags", 4), pr_json_begin_array(w);
    for (k = 0, n = bench_json__rand(5); k < n; k++) bench_json__text(w, 1);
    pr_json_end_array(w);
    pr_json_end_object(w);
}

static void bench_json__token_event(pr_json_writer *w, unsigned i) {
    char id[32];
    snprintf(id, sizeof id, "chatcmpl-%08u", i / 64);
    pr_json_begin_object(w);
    pr_json_key(w, "id", 2), pr_json_write_string(w, id, strlen(id));
    pr_json_key(w, "object", 6), pr_json_write_string(w, "chat.completion.chunk", 21);
    pr_json_key(w, "created", 7), pr_json_write_int(w, 1700000000 + (int64_t)(i / 64));
    pr_json_key(w, "choices", 7), pr_json_begin_array(w);
    pr_json_begin_object(w);
    pr_json_key(w, "index", 5), pr_json_write_int(w, 0);
    pr_json_key(w, "delta", 5), pr_json_begin_object(w);
    pr_json_key(w, "content", 7), bench_json__text(w, 1 + bench_json__rand(2));
    pr_json_end_object(w);
    pr_json_key(w, "finish_reason", 13), pr_json_write_null(w);
    pr_json_end_object(w);
    pr_json_end_array(w);
    pr_json_end_object(w);
}

static int bench_json__cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void bench_json_run(void) {
    pr_buf all;
    size_t *off, ndocs = 0, cap = 1 << 20, i;
    double tp[5], tb[5], mp, mb;
    unsigned long long quotes = 0;
    int r, failed = 0;
    unsigned k;
    pr_buf_init(&all);
    off = (size_t *)malloc(cap * sizeof *off);
    if (!off) return;
    off[ndocs++] = 0;
    while (all.len < (size_t)40 << 20) { /* API responses: arrays of 50 objects */
        pr_json_writer w;
        pr_json_writer_init(&w, &all);
        pr_json_begin_array(&w);
        for (k = 0; k < 50; k++) bench_json__api_object(&w, (unsigned)ndocs * 50 + k);
        pr_json_end_array(&w);
        off[ndocs++] = all.len;
    }
    for (k = 0; all.len < (size_t)64 << 20 && ndocs < cap; k++) { /* token events */
        pr_json_writer w;
        pr_json_writer_init(&w, &all);
        bench_json__token_event(&w, k);
        off[ndocs++] = all.len;
    }
    for (r = 0; r < 5; r++) {
        double t0 = bench_json__now();
        for (i = 0; i + 1 < ndocs; i++) {
            pr_json_doc *d = NULL;
            if (pr_json_parse(&d, all.data + off[i], off[i + 1] - off[i], NULL, NULL) != PR_OK) failed++;
            pr_json_doc_destroy(d);
        }
        tp[r] = bench_json__now() - t0;
        t0 = bench_json__now();
        for (i = 0; i + 1 < ndocs; i++) {
            const char *p = all.data + off[i], *e = all.data + off[i + 1];
            while ((p = (const char *)memchr(p, '"', (size_t)(e - p))) != NULL) p++, quotes++;
        }
        tb[r] = bench_json__now() - t0;
    }
    qsort(tp, 5, sizeof tp[0], bench_json__cmp);
    qsort(tb, 5, sizeof tb[0], bench_json__cmp);
    mp = (double)all.len / 1e6 / tp[2];
    mb = (double)all.len / 1e6 / tb[2];
    printf("metric=json_parse_mbps unit=MB/s pristine=%.1f baseline=memchr_scan:%.1f ratio=%.3f\n", mp, mb, mp / mb);
    printf("# json: %.1f MB in %lu documents (API-response arrays + token events), median of 5; %d parse failures; "
           "%llu quotes\n", (double)all.len / 1e6, (unsigned long)(ndocs - 1), failed, quotes / 5);
    free(off);
    pr_buf_deinit(&all);
}
