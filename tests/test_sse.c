/* sse: the decoder against the WHATWG event-stream parsing rules, split
   invariance, limits, resume, JSON and allocation failures.

   The sections below (and the R numbers in src/sse.c's comments) number
   those rules R1-R13, this file's own numbering:
     R1  UTF-8 decoding: one leading BOM stripped per connection, invalid
         bytes become U+FFFD (unless raw_bytes)
     R2  line ends: CRLF, LF or CR; a CR ends its line at once; bytes after
         the last line end are an incomplete line
     R3  line kinds: blank line, comment (leading ':'), field; the first ':'
         splits name and value, one leading space is dropped from the value;
         no ':' means the whole line is the name and the value is empty
     R4  field names match byte for byte (case and spaces count)
     R5  event: sets the event type
     R6  data: appends the value and a LF to the data buffer
     R7  id: sets the last event ID (empty clears it); a value with NUL is
         ignored
     R8  retry: only ASCII digits set the reconnection time; else ignored
     R9  unknown field names are ignored
     R10 a blank line dispatches: no event when the data buffer is empty,
         one trailing LF removed, type "message" by default, buffers reset
     R11 at the end of the stream an incomplete block is discarded
     R12 a dispatched event carries the last event ID as well as its own
         block's id
     R13 resume: the last event ID survives a reset and can be seeded for
         the next connection (it is what Last-Event-ID sends)

   Events are logged as text lines and compared with the expected text:
     type=<t> data=<d> id=<- | "" | value> last=<l> retry=<r>
   bytes outside printable ASCII (and '\') are written as \xHH; a run ends
   with "end last=<l> retry=<r>". Every expectation is checked for the whole
   input, one byte per feed and every split into two chunks; each chunk is a
   fresh malloc'd copy, poisoned and freed once next returns PR_SSE_DECODER_MORE. */

typedef struct sse__log {
    char *p;
    size_t len, cap;
} sse__log;

static void sse__puts(sse__log *l, const char *s, size_t n) {
    if (l->len + n + 1 > l->cap) {
        size_t cap = l->cap ? l->cap : 256;
        while (cap < l->len + n + 1) cap *= 2;
        l->p = (char *)realloc(l->p, cap);
        if (!l->p) abort();
        l->cap = cap;
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
    l->p[l->len] = 0;
}

static void sse__putc(sse__log *l, const char *s) { sse__puts(l, s, strlen(s)); }

static void sse__esc(sse__log *l, const char *s, size_t n) {
    size_t i;
    char hex[8];
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '\\') {
            snprintf(hex, sizeof hex, "\\x%02x", c);
            sse__putc(l, hex);
        } else
            sse__puts(l, s + i, 1);
    }
}

static void sse__put_ev(sse__log *l, const pr_sse_event *ev) {
    char num[40];
    /* invariants of every event */
    PT_CHECK(ev->type && ev->type[ev->type_len] == 0);
    PT_CHECK(ev->data != NULL);
    PT_CHECK(ev->last_id && ev->last_id[ev->last_id_len] == 0);
    PT_CHECK((ev->id == NULL) == (ev->id_state == PR_SSE_ID_ABSENT));
    PT_CHECK(ev->id_state != PR_SSE_ID_EMPTY || ev->id_len == 0);
    PT_CHECK(ev->id_state != PR_SSE_ID_SET || ev->id_len > 0);
    sse__putc(l, "type=");
    sse__esc(l, ev->type, ev->type_len);
    sse__putc(l, " data=");
    sse__esc(l, ev->data, ev->data_len);
    sse__putc(l, " id=");
    if (ev->id_state == PR_SSE_ID_ABSENT) sse__putc(l, "-");
    else if (ev->id_state == PR_SSE_ID_EMPTY) sse__putc(l, "\"\"");
    else sse__esc(l, ev->id, ev->id_len);
    sse__putc(l, " last=");
    sse__esc(l, ev->last_id, ev->last_id_len);
    snprintf(num, sizeof num, " retry=%lld\n", (long long)ev->retry_ms);
    sse__putc(l, num);
}

/* Drain the decoder into the log. retry_nomem: repeat calls that fail with
   PR_ENOMEM (the decoder promises nothing is lost). Returns the final code. */
static int sse__drain(pr_sse_decoder *d, sse__log *l, int retry_nomem) {
    pr_sse_event ev;
    for (;;) {
        int rc = pr_sse_decoder_next(d, &ev);
        if (rc == PR_OK) sse__put_ev(l, &ev);
        else if (rc == PR_ELIMIT) {
            sse__putc(l, "limit\n");
            PT_EQ_ERR(pr_sse_decoder_skip(d), PR_OK);
        } else if (rc == PR_ENOMEM && retry_nomem)
            continue;
        else
            return rc;
    }
}

/* Decode in[0..n) cut at the ascending offsets cuts[0..ncuts); returns the
   malloc'd log. */
static char *sse__run_cuts(const char *in, size_t n, const size_t *cuts, size_t ncuts,
                           const pr_sse_decoder_opts *opts, int retry_nomem) {
    sse__log l = { 0, 0, 0 };
    pr_sse_decoder *d = NULL;
    size_t k, a = 0;
    char tail[64];
    int rc;
    while ((rc = pr_sse_decoder_create(&d, opts)) == PR_ENOMEM && retry_nomem) {}
    if (rc != PR_OK) {
        PT_EQ_ERR(rc, PR_OK);
        sse__putc(&l, "create failed\n");
        return l.p;
    }
    for (k = 0; k <= ncuts; k++) {
        size_t b = k < ncuts ? cuts[k] : n;
        char *chunk = (char *)malloc(b - a + 1);
        memcpy(chunk, in + a, b - a);
        while ((rc = pr_sse_decoder_feed(d, chunk, b - a)) == PR_ENOMEM && retry_nomem) {}
        PT_EQ_ERR(rc, PR_OK);
        rc = sse__drain(d, &l, retry_nomem);
        PT_EQ_ERR(rc, PR_SSE_DECODER_MORE);
        memset(chunk, 0xAA, b - a + 1);
        free(chunk);
        a = b;
    }
    PT_EQ_ERR(pr_sse_decoder_finish(d), PR_OK);
    PT_EQ_ERR(sse__drain(d, &l, retry_nomem), PR_ECLOSED);
    {
        size_t len;
        const char *last = pr_sse_decoder_last_id(d, &len);
        sse__putc(&l, "end last=");
        sse__esc(&l, last, len);
        snprintf(tail, sizeof tail, " retry=%lld\n", (long long)pr_sse_decoder_retry_ms(d));
        sse__putc(&l, tail);
    }
    pr_sse_decoder_destroy(d);
    return l.p;
}

static char *sse__run_step(const char *in, size_t n, size_t step, const pr_sse_decoder_opts *opts) {
    size_t *cuts = (size_t *)malloc((n / (step ? step : 1) + 1) * sizeof *cuts), nc = 0, i;
    char *r;
    if (step)
        for (i = step; i < n; i += step) cuts[nc++] = i;
    r = sse__run_cuts(in, n, cuts, nc, opts, 0);
    free(cuts);
    return r;
}

/* Check the log of in[0..n) against want for the whole input, one byte per
   feed, every two-chunk split and a three-chunk sweep. */
static void sse__expect(const char *file, int line, const char *in, size_t n, const pr_sse_decoder_opts *opts,
                        const char *want) {
    char *got = sse__run_step(in, n, 0, opts);
    size_t i, j;
    if (strcmp(got, want)) {
        pt_fail(file, line, "whole input:\ngot:\n%swant:\n%s", got, want);
        free(got);
        return;
    }
    free(got);
    got = sse__run_step(in, n, 1, opts);
    if (strcmp(got, want)) pt_fail(file, line, "one byte per feed differs:\n%s", got);
    free(got);
    for (i = 1; i < n; i++) {
        got = sse__run_cuts(in, n, &i, 1, opts, 0);
        if (strcmp(got, want)) {
            pt_fail(file, line, "split at %lu differs:\n%s", (unsigned long)i, got);
            free(got);
            return;
        }
        free(got);
    }
    for (i = 1; i < n && n <= 64; i++)
        for (j = i + 1; j < n; j++) {
            size_t cuts[2];
            cuts[0] = i;
            cuts[1] = j;
            got = sse__run_cuts(in, n, cuts, 2, opts, 0);
            if (strcmp(got, want)) {
                pt_fail(file, line, "split at %lu,%lu differs:\n%s", (unsigned long)i, (unsigned long)j, got);
                free(got);
                return;
            }
            free(got);
        }
}

#define SSE_EXPECT(in, opts, want) sse__expect(__FILE__, __LINE__, (in), sizeof(in) - 1, (opts), (want))
#define SSE_END "end last= retry=-1\n"
#define SSE_MSG(d) "type=message data=" d " id=- last= retry=-1\n"
#define SSE_FFFD "\\xef\\xbf\\xbd"

/* ---- R1 ---- */

PT_TEST(sse_r1_bom_stripped_once) {
    SSE_EXPECT("\xEF\xBB\xBF" "data: a\n\n", NULL, SSE_MSG("a") SSE_END);
    /* a second BOM is content: it becomes part of the first field name */
    SSE_EXPECT("\xEF\xBB\xBF\xEF\xBB\xBF" "data: a\n\ndata: b\n\n", NULL, SSE_MSG("b") SSE_END);
    /* a BOM after a blank line, or inside a value, is content */
    SSE_EXPECT("\n\xEF\xBB\xBF" "data: a\n\ndata: b\n\n", NULL, SSE_MSG("b") SSE_END);
    SSE_EXPECT("data: \xEF\xBB\xBFx\n\n", NULL, SSE_MSG("\\xef\\xbb\\xbfx") SSE_END);
    /* no BOM: the first bytes are content */
    SSE_EXPECT("data: a\n\n", NULL, SSE_MSG("a") SSE_END);
    SSE_EXPECT("\xEF" "data: a\n\ndata: b\n\n", NULL, SSE_MSG("b") SSE_END);
}

PT_TEST(sse_r1_partial_bom_is_one_fffd) {
    /* EF BB then d: one U+FFFD, so the line's name is "\uFFFDdata": unknown */
    SSE_EXPECT("\xEF\xBB" "data: a\n\ndata: b\n\n", NULL, SSE_MSG("b") SSE_END);
    /* the partial BOM as a line of its own is a harmless unknown field */
    SSE_EXPECT("\xEF\xBB\ndata: a\n\n", NULL, SSE_MSG("a") SSE_END);
    /* as an event type it shows: the partial BOM becomes exactly one U+FFFD */
    SSE_EXPECT("\xEF\xBB\xBF" "event:\xEF\xBB" "d\ndata: x\n\n", NULL,
               "type=" SSE_FFFD "d data=x id=- last= retry=-1\n" SSE_END);
    /* a partial BOM at the end of the stream is an incomplete line */
    SSE_EXPECT("\xEF\xBB", NULL, SSE_END);
}

PT_TEST(sse_r1_replacement_counts) {
    SSE_EXPECT("data: \xED\xA0\x80\n\n", NULL, SSE_MSG(SSE_FFFD SSE_FFFD SSE_FFFD) SSE_END);
    SSE_EXPECT("data: \xC0\xAF\n\n", NULL, SSE_MSG(SSE_FFFD SSE_FFFD) SSE_END);
    SSE_EXPECT("data: \xF4\x90\x80\x80\n\n", NULL, SSE_MSG(SSE_FFFD SSE_FFFD SSE_FFFD SSE_FFFD) SSE_END);
    SSE_EXPECT("data: \xE2\x82x\n\n", NULL, SSE_MSG(SSE_FFFD "x") SSE_END);
    SSE_EXPECT("data: \xFF\n\n", NULL, SSE_MSG(SSE_FFFD) SSE_END);
    /* truncated at the end of the value (the line end is ASCII) */
    SSE_EXPECT("data: a\xF0\x9F\x98\n\n", NULL, SSE_MSG("a" SSE_FFFD) SSE_END);
    /* valid sequences of every length pass unchanged, also next to bad ones */
    SSE_EXPECT("data: \xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\x80\xF4\x8F\xBF\xBF\n\n", NULL,
               SSE_MSG("\\xc3\\xa9\\xe2\\x82\\xac\\xf0\\x9f\\x98\\x80" SSE_FFFD "\\xf4\\x8f\\xbf\\xbf") SSE_END);
    /* a long ASCII run then a bad byte (the 8-byte fast path hands over) */
    SSE_EXPECT("data: 0123456789abcdef0123456789abcdef0123456789\xFFz\n\n", NULL,
               SSE_MSG("0123456789abcdef0123456789abcdef0123456789" SSE_FFFD "z") SSE_END);
    /* second data line, event type and id are repaired too */
    SSE_EXPECT("event: \xFF" "e\nid: \xC0\ndata: a\ndata: \xE0\x80\n\n", NULL,
               "type=" SSE_FFFD "e data=a\\x0a" SSE_FFFD SSE_FFFD " id=" SSE_FFFD " last=" SSE_FFFD " retry=-1\n"
               "end last=" SSE_FFFD " retry=-1\n");
}

PT_TEST(sse_r1_raw_bytes_option) {
    pr_sse_decoder_opts o;
    memset(&o, 0, sizeof o);
    o.raw_bytes = 1;
    SSE_EXPECT("\xEF\xBB\xBF" "data: \xED\xA0\x80\xFF\n\n", &o, SSE_MSG("\\xed\\xa0\\x80\\xff") SSE_END);
    SSE_EXPECT("event: \xC0\ndata: a\ndata: \xE2\x82\n\n", &o,
               "type=\\xc0 data=a\\x0a\\xe2\\x82 id=- last= retry=-1\n" SSE_END);
}

/* ---- R2 ---- */

PT_TEST(sse_r2_line_ends) {
    SSE_EXPECT("data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: d\r\n\n", NULL,
               SSE_MSG("a") SSE_MSG("b") SSE_MSG("c") SSE_MSG("d") SSE_END);
    /* CR LF LF: one terminator then a blank line; LF CR: two line ends */
    SSE_EXPECT("data: a\r\n\ndata: b\n\r", NULL, SSE_MSG("a") SSE_MSG("b") SSE_END);
    /* CR CR LF: a blank line after the CR line; the LF ends that blank line */
    SSE_EXPECT("data: a\r\r\ndata: b\n\n", NULL, SSE_MSG("a") SSE_MSG("b") SSE_END);
    /* not line ends: U+2028, U+2029, U+0085, VT, FF */
    SSE_EXPECT("data: a\xE2\x80\xA8" "b\xE2\x80\xA9\xC2\x85\x0B\x0C" "c\n\n", NULL,
               SSE_MSG("a\\xe2\\x80\\xa8b\\xe2\\x80\\xa9\\xc2\\x85\\x0b\\x0cc") SSE_END);
    /* bytes after the last terminator are an incomplete line: dropped */
    SSE_EXPECT("data: a\n\ndata: b\n\ndata: c", NULL, SSE_MSG("a") SSE_MSG("b") SSE_END);
    SSE_EXPECT("data: a\n\ndata: b\n", NULL, SSE_MSG("a") SSE_END);
}

PT_TEST(sse_r2_cr_is_not_held_back) {
    pr_sse_decoder *d;
    pr_sse_event ev;
    PT_REQUIRE(pr_sse_decoder_create(&d, NULL) == PR_OK);
    /* the event is out the moment the second CR arrives */
    PT_EQ_ERR(pr_sse_decoder_feed(d, "data: a\r\r", 9), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_OK);
    PT_EQ_MEM(ev.data, "a", 1);
    PT_EQ_INT(ev.data_len, 1);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_SSE_DECODER_MORE);
    /* the LF that follows in the next chunk belongs to that CR: no extra line */
    PT_EQ_ERR(pr_sse_decoder_feed(d, "\ndata: b\r", 9), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_SSE_DECODER_MORE);
    PT_EQ_ERR(pr_sse_decoder_feed(d, "\n", 1), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_SSE_DECODER_MORE);
    PT_EQ_ERR(pr_sse_decoder_feed(d, "\r", 1), PR_OK); /* blank line by a lone CR */
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_OK);
    PT_EQ_MEM(ev.data, "b", 1);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_SSE_DECODER_MORE);
    /* an LF after that CR is swallowed, a second LF is a blank line again */
    PT_EQ_ERR(pr_sse_decoder_feed(d, "\n", 1), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_SSE_DECODER_MORE);
    PT_EQ_ERR(pr_sse_decoder_feed(d, "id: 1\n\n", 7), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_SSE_DECODER_MORE);
    PT_EQ_STR(pr_sse_decoder_last_id(d, NULL), "1");
    pr_sse_decoder_destroy(d);
}

/* ---- R3, R4, R9 ---- */

PT_TEST(sse_r3_line_kinds) {
    /* comments; the first colon splits; one space removed, not a tab, not two */
    SSE_EXPECT(": comment\n:\ndata:a:b\n\ndata:  two\n\ndata:\tt\n\ndata: \n\n", NULL,
               SSE_MSG("a:b") SSE_MSG(" two") SSE_MSG("\\x09t") SSE_MSG("") SSE_END);
    /* no colon: the whole line is the name, the value is empty */
    SSE_EXPECT("data\n\ndata\ndata\n\nevent\ndata: x\n\n", NULL,
               SSE_MSG("") SSE_MSG("\\x0a") SSE_MSG("x") SSE_END);
    /* a comment inside a block does not end it */
    SSE_EXPECT("data: a\n: keep-alive\ndata: b\n\n", NULL, SSE_MSG("a\\x0ab") SSE_END);
    /* values keep NUL bytes */
    SSE_EXPECT("data: a\0b\n\n", NULL, SSE_MSG("a\\x00b") SSE_END);
}

PT_TEST(sse_r4_r9_names_byte_exact_unknown_ignored) {
    SSE_EXPECT("Data: a\ndata : b\n data: c\nDATA: d\nfoo: e\nevent : f\nID: 1\nRetry: 5\ndata: z\n\n", NULL,
               SSE_MSG("z") SSE_END);
    SSE_EXPECT("dat: a\ndatax: b\nevents: c\nidx: 3\ni: 4\n\n", NULL, SSE_END);
}

/* ---- R5, R6, R10 ---- */

PT_TEST(sse_r5_event_type) {
    SSE_EXPECT("event: a\nevent: b\ndata: 1\n\nevent:\ndata: 2\n\nevent: c\nevent\ndata: 3\n\n", NULL,
               "type=b data=1 id=- last= retry=-1\n" SSE_MSG("2") SSE_MSG("3") SSE_END);
    /* the type does not leak into the next block */
    SSE_EXPECT("event: x\ndata: 1\n\ndata: 2\n\n", NULL,
               "type=x data=1 id=- last= retry=-1\n" SSE_MSG("2") SSE_END);
}

PT_TEST(sse_r6_r10_data_join_and_dispatch) {
    /* joined with LF, one trailing LF removed */
    SSE_EXPECT("data: a\ndata: b\ndata: c\n\n", NULL, SSE_MSG("a\\x0ab\\x0ac") SSE_END);
    SSE_EXPECT("data: a\ndata:\n\n", NULL, SSE_MSG("a\\x0a") SSE_END);
    SSE_EXPECT("data:\ndata:\ndata:\n\n", NULL, SSE_MSG("\\x0a\\x0a") SSE_END);
    /* empty data buffer: nothing dispatched, and the type buffer is cleared */
    SSE_EXPECT("event: x\n\ndata: 1\n\n", NULL, SSE_MSG("1") SSE_END);
    SSE_EXPECT("\n\n\n: c\n\nretry: 7\n\n", NULL, "end last= retry=7\n");
    /* blank lines between events change nothing */
    SSE_EXPECT("data: 1\n\n\n\ndata: 2\n\n", NULL, SSE_MSG("1") SSE_MSG("2") SSE_END);
}

/* ---- R7, R12 (both views of the id) ---- */

PT_TEST(sse_r7_r12_ids) {
    SSE_EXPECT("id: 1\ndata: a\n\n"          /* set */
               "data: b\n\n"                  /* absent; last persists */
               "id\ndata: c\n\n"              /* empty: clears */
               "data: d\n\n"
               "id: 2\n\n"                    /* id-only block moves last */
               "data: e\n\n"
               "id: 3\nid: 4\ndata: f\n\n"    /* last id field wins */
               "id: x\0y\ndata: g\n\n"        /* NUL: ignored, neither sets nor clears */
               "id: 5\nid: \0\ndata: h\n\n",
               NULL,
               "type=message data=a id=1 last=1 retry=-1\n"
               "type=message data=b id=- last=1 retry=-1\n"
               "type=message data=c id=\"\" last= retry=-1\n"
               "type=message data=d id=- last= retry=-1\n"
               "type=message data=e id=- last=2 retry=-1\n"
               "type=message data=f id=4 last=4 retry=-1\n"
               "type=message data=g id=- last=4 retry=-1\n"
               "type=message data=h id=5 last=5 retry=-1\n"
               "end last=5 retry=-1\n");
    /* id before or after data in the block: same */
    SSE_EXPECT("data: a\nid: 9\n\n", NULL, "type=message data=a id=9 last=9 retry=-1\nend last=9 retry=-1\n");
    /* id of an unterminated block never reaches the last-event-ID */
    SSE_EXPECT("id: 1\n\nid: 2\ndata: x\n", NULL, "end last=1 retry=-1\n");
}

PT_TEST(sse_r7_id_only_block_seen_by_getter) {
    pr_sse_decoder *d;
    pr_sse_event ev;
    size_t n = 99;
    PT_REQUIRE(pr_sse_decoder_create(&d, NULL) == PR_OK);
    PT_EQ_STR(pr_sse_decoder_last_id(d, &n), "");
    PT_EQ_INT(n, 0);
    PT_EQ_ERR(pr_sse_decoder_feed(d, "id: 42\n", 7), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_SSE_DECODER_MORE);
    PT_EQ_STR(pr_sse_decoder_last_id(d, NULL), ""); /* not before dispatch */
    PT_EQ_ERR(pr_sse_decoder_feed(d, "\n", 1), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_SSE_DECODER_MORE);
    PT_EQ_STR(pr_sse_decoder_last_id(d, &n), "42");
    PT_EQ_INT(n, 2);
    pr_sse_decoder_destroy(d);
}

/* ---- R8 ---- */

PT_TEST(sse_r8_retry) {
    SSE_EXPECT("retry: 1500\ndata: a\n\ndata: b\n\n", NULL,
               "type=message data=a id=- last= retry=1500\n" SSE_MSG("b") "end last= retry=1500\n");
    /* ignored: two spaces, sign, point, hex, unit, empty, trailing space, non-ASCII digit */
    SSE_EXPECT("retry: 10\nretry:  100\nretry: -1\nretry: +1\nretry: 1.5\nretry: 0x10\nretry: 5s\n"
               "retry:\nretry\nretry: 7 \nretry: \xD9\xA1\ndata: a\n\n", NULL,
               "type=message data=a id=- last= retry=10\nend last= retry=10\n");
    /* 64 bits, saturating */
    SSE_EXPECT("retry: 4294967296000\n\n", NULL, "end last= retry=4294967296000\n");
    SSE_EXPECT("retry: 99999999999999999999999\n\n", NULL, "end last= retry=9223372036854775807\n");
    SSE_EXPECT("retry: 9223372036854775807\n\n", NULL, "end last= retry=9223372036854775807\n");
    SSE_EXPECT("retry: 9223372036854775806\n\n", NULL, "end last= retry=9223372036854775806\n");
    SSE_EXPECT("retry: 9223372036854775808\n\n", NULL, "end last= retry=9223372036854775807\n");
    SSE_EXPECT("retry: 92233720368547758070\n\n", NULL, "end last= retry=9223372036854775807\n");
    { /* 400 digits (SAN=1: no signed overflow on the way) */
        static char line[7 + 400 + 2 + 1];
        memcpy(line, "retry: ", 7);
        memset(line + 7, '9', 400);
        memcpy(line + 407, "\n\n", 2);
        SSE_EXPECT(line, NULL, "end last= retry=9223372036854775807\n");
    }
    SSE_EXPECT("retry: 0\n\n", NULL, "end last= retry=0\n");
    /* takes effect at once: survives an unterminated block at the end */
    SSE_EXPECT("data: a\nretry: 300\n", NULL, "end last= retry=300\n");
}

/* ---- R11 ---- */

PT_TEST(sse_r11_finish_discards_incomplete_block) {
    pr_sse_decoder *d;
    pr_sse_event ev;
    PT_REQUIRE(pr_sse_decoder_create(&d, NULL) == PR_OK);
    PT_EQ_ERR(pr_sse_decoder_feed(d, "id: 1\ndata: a\n\nid: 2\ndata: b\nretry: 9\ndata: partial", 48), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_finish(d), PR_OK); /* bytes still unread: they are still decoded */
    PT_EQ_ERR(pr_sse_decoder_feed(d, "x", 1), PR_ESTATE);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_ECLOSED);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_ECLOSED);
    PT_EQ_STR(pr_sse_decoder_last_id(d, NULL), "1");
    PT_EQ_INT(pr_sse_decoder_retry_ms(d), 9);
    PT_EQ_ERR(pr_sse_decoder_feed(d, "x", 1), PR_ESTATE);
    /* a new connection: the dropped block is gone, not continued */
    PT_EQ_ERR(pr_sse_decoder_reset(d), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_feed(d, "\n\ndata: c\n\n", 11), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_OK);
    PT_EQ_MEM(ev.data, "c", 1);
    PT_EQ_INT(ev.data_len, 1);
    PT_EQ_STR(ev.last_id, "1");
    PT_EQ_INT(ev.id_state, PR_SSE_ID_ABSENT);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_SSE_DECODER_MORE);
    pr_sse_decoder_destroy(d);
}

PT_TEST(sse_reset_is_a_new_connection) {
    pr_sse_decoder *d;
    pr_sse_event ev;
    PT_REQUIRE(pr_sse_decoder_create(&d, NULL) == PR_OK);
    PT_EQ_ERR(pr_sse_decoder_feed(d, "\xEF\xBB\xBFid: 7\ndata: a\n\ndata: half\r", 30), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_SSE_DECODER_MORE);
    PT_EQ_ERR(pr_sse_decoder_reset(d), PR_OK);
    /* BOM stripped again, pending CR forgotten (the LF is a blank line), id kept */
    PT_EQ_ERR(pr_sse_decoder_feed(d, "\xEF\xBB\xBF\ndata: b\n\n", 13), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_OK);
    PT_EQ_MEM(ev.data, "b", 1);
    PT_EQ_INT(ev.data_len, 1);
    PT_EQ_STR(ev.last_id, "7");
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_SSE_DECODER_MORE);
    /* reset forgets an unread chunk too */
    PT_EQ_ERR(pr_sse_decoder_feed(d, "data: c\n\ndata: d\n\n", 18), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_reset(d), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_SSE_DECODER_MORE);
    pr_sse_decoder_destroy(d);
}

/* ---- R13: resume ---- */

PT_TEST(sse_r13_seed_last_id) {
    pr_sse_decoder *d;
    pr_sse_event ev;
    size_t n;
    PT_REQUIRE(pr_sse_decoder_create(&d, NULL) == PR_OK);
    PT_EQ_ERR(pr_sse_decoder_set_last_id(d, "a\nb", 3), PR_EINVAL);
    PT_EQ_ERR(pr_sse_decoder_set_last_id(d, "a\rb", 3), PR_EINVAL);
    PT_EQ_ERR(pr_sse_decoder_set_last_id(d, "a\0b", 3), PR_EINVAL);
    PT_EQ_ERR(pr_sse_decoder_set_last_id(d, "a\xFF", 2), PR_EINVAL);
    PT_EQ_ERR(pr_sse_decoder_set_last_id(d, NULL, 1), PR_EINVAL);
    PT_EQ_ERR(pr_sse_decoder_set_last_id(NULL, "x", 1), PR_EINVAL);
    PT_EQ_ERR(pr_sse_decoder_set_last_id(d, "off-\xC3\xA9-12", 9), PR_OK);
    PT_EQ_STR(pr_sse_decoder_last_id(d, &n), "off-\xC3\xA9-12");
    PT_EQ_INT(n, 9);
    PT_EQ_ERR(pr_sse_decoder_feed(d, "data: a\n\n", 9), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_OK);
    PT_EQ_STR(ev.last_id, "off-\xC3\xA9-12");
    PT_EQ_INT(ev.id_state, PR_SSE_ID_ABSENT);
    PT_CHECK(ev.id == NULL);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_SSE_DECODER_MORE);
    PT_EQ_ERR(pr_sse_decoder_set_last_id(d, "z", 1), PR_ESTATE); /* mid-connection */
    PT_EQ_ERR(pr_sse_decoder_reset(d), PR_OK);
    PT_EQ_STR(pr_sse_decoder_last_id(d, NULL), "off-\xC3\xA9-12");
    PT_EQ_ERR(pr_sse_decoder_set_last_id(d, NULL, 0), PR_OK);
    PT_EQ_STR(pr_sse_decoder_last_id(d, &n), "");
    PT_EQ_INT(n, 0);
    pr_sse_decoder_destroy(d);
}

/* ---- incremental feeding ---- */

static const char sse__multi[] =
    "\xEF\xBB\xBF: hello\r\n"
    "retry: 2500\r\n"
    "event: update\r\nid: 17\r\ndata: {\"a\": 1,\r\ndata:  \"b\": [1, 2]}\r\n\r\n"
    "data: caf\xC3\xA9 \xF0\x9F\x98\x80 \xFF\xE2\x82|\rdata\r\r"
    "id\nevent: x\n\n"
    "id: 18\n\n"
    "data: plain\n\n"
    "data: a\0b\ndata: 0123456789abcdef0123456789abcdef\n\n"
    "id: 19\ndata: tail";

PT_TEST(sse_every_split_gives_the_same_events) {
    SSE_EXPECT(sse__multi, NULL,
               "type=update data={\"a\": 1,\\x0a \"b\": [1, 2]} id=17 last=17 retry=2500\n"
               "type=message data=caf\\xc3\\xa9 \\xf0\\x9f\\x98\\x80 " SSE_FFFD SSE_FFFD "|\\x0a id=- last=17 retry=-1\n"
               "type=message data=plain id=- last=18 retry=-1\n"
               "type=message data=a\\x00b\\x0a0123456789abcdef0123456789abcdef id=- last=18 retry=-1\n"
               "end last=18 retry=2500\n");
}

PT_TEST(sse_random_splits_match_whole) {
#define SSE_P(x) { x, sizeof(x) - 1 }
    static const struct { const char *s; size_t n; } parts[] = {
        SSE_P("data: x\n"), SSE_P("data:\n"), SSE_P("\n"), SSE_P("\r\n"), SSE_P("\r"), SSE_P("id: 5\n"),
        SSE_P("id\n"), SSE_P(": c\n"), SSE_P("event: e\n"), SSE_P("retry: 12\n"), SSE_P("data: \xC3\xA9\xFF\n"),
        SSE_P("\xEF\xBB\xBF"), SSE_P("data: longer value with spaces and, punctuation\n"), SSE_P("id: \0\n"),
        SSE_P("x\n"), SSE_P("data: \xE2\x82"), SSE_P("\xAC\n") };
#undef SSE_P
    int round;
    for (round = 0; round < 60; round++) {
        char in[600];
        size_t n = 0, cuts[8], nc = 0, i;
        char *whole, *got;
        while (n < 400) {
            size_t k = (size_t)(pt_rand() % (sizeof parts / sizeof parts[0]));
            memcpy(in + n, parts[k].s, parts[k].n);
            n += parts[k].n;
        }
        whole = sse__run_step(in, n, 0, NULL);
        got = sse__run_step(in, n, 1, NULL);
        PT_EQ_STR(got, whole);
        free(got);
        got = sse__run_step(in, n, 1 + pt_rand() % 37, NULL);
        PT_EQ_STR(got, whole);
        free(got);
        for (i = 0; i < 8; i++) cuts[i] = pt_rand() % n;
        for (i = 1; i < 8; i++) { /* sort */
            size_t j = i, t = cuts[i];
            while (j && cuts[j - 1] > t) cuts[j] = cuts[j - 1], j--;
            cuts[j] = t;
        }
        for (i = 0; i < 8; i++) cuts[nc++] = cuts[i];
        got = sse__run_cuts(in, n, cuts, nc, NULL, 0);
        PT_EQ_STR(got, whole);
        free(got);
        free(whole);
    }
}

PT_TEST(sse_data_spanning_chunks) {
    /* a long data line that spans many chunks is assembled */
    char *in = (char *)malloc(70000), *got;
    size_t n = 0, i;
    sse__log want = { 0, 0, 0 };
    memcpy(in, "data: ", 6);
    n = 6;
    for (i = 0; i < 65536; i++) in[n++] = (char)('a' + i % 26);
    memcpy(in + n, "\ndata: z\n\n", 10);
    n += 10;
    sse__putc(&want, "type=message data=");
    sse__puts(&want, in + 6, 65536);
    sse__putc(&want, "\\x0az id=- last= retry=-1\n" SSE_END);
    got = sse__run_step(in, n, 0, NULL);
    PT_EQ_STR(got, want.p);
    free(got);
    got = sse__run_step(in, n, 1000, NULL);
    PT_EQ_STR(got, want.p);
    free(got);
    got = sse__run_step(in, n, 1, NULL);
    PT_EQ_STR(got, want.p);
    free(got);
    free(want.p);
    free(in);
}

PT_TEST(sse_feed_contract) {
    pr_sse_decoder *d;
    pr_sse_event ev;
    PT_EQ_ERR(pr_sse_decoder_create(NULL, NULL), PR_EINVAL);
    PT_REQUIRE(pr_sse_decoder_create(&d, NULL) == PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_SSE_DECODER_MORE);
    PT_EQ_ERR(pr_sse_decoder_feed(d, NULL, 0), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_feed(d, NULL, 1), PR_EINVAL);
    PT_EQ_ERR(pr_sse_decoder_feed(NULL, "x", 1), PR_EINVAL);
    PT_EQ_ERR(pr_sse_decoder_next(d, NULL), PR_EINVAL);
    PT_EQ_ERR(pr_sse_decoder_next(NULL, &ev), PR_EINVAL);
    PT_EQ_ERR(pr_sse_decoder_feed(d, "data: 1\n\ndata: 2\n\n", 18), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_feed(d, "x", 1), PR_ESTATE); /* previous chunk unread */
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_feed(d, "x", 1), PR_ESTATE);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_OK);
    PT_EQ_MEM(ev.data, "2", 1);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_SSE_DECODER_MORE);
    PT_EQ_ERR(pr_sse_decoder_skip(d), PR_ESTATE);
    PT_EQ_ERR(pr_sse_decoder_skip(NULL), PR_EINVAL);
    PT_EQ_ERR(pr_sse_decoder_finish(NULL), PR_EINVAL);
    PT_EQ_ERR(pr_sse_decoder_reset(NULL), PR_EINVAL);
    PT_EQ_INT(pr_sse_decoder_retry_ms(NULL), -1);
    PT_EQ_STR(pr_sse_decoder_last_id(NULL, NULL), "");
    pr_sse_decoder_destroy(d);
    pr_sse_decoder_destroy(NULL);
}

/* ---- limits ---- */

PT_TEST(sse_limits_line_and_skip) {
    pr_sse_decoder_opts o;
    memset(&o, 0, sizeof o);
    o.max_line_bytes = 16;
    /* a 16-byte line is fine, 17 is not; the rest of that block is skipped,
       its id and type included; retry inside the skipped part is ignored */
    SSE_EXPECT("data: 0123456789\n\n"
               "id: 1\nevent: e\ndata: 0123456789a\nretry: 5\nid: 2\ndata: b\n\n"
               "data: c\n\n",
               &o,
               SSE_MSG("0123456789") "limit\n" SSE_MSG("c") SSE_END);
    /* an over-long partial line at the end of a chunk; the skip crosses chunks */
    SSE_EXPECT("data: a\ndata: 0123456789abcdefghijklmnopqrstuvwxyz\r\ndata: x\r\n\r\ndata: c\r\n\r\n", &o,
               "limit\n" SSE_MSG("c") SSE_END);
    /* comments and unknown fields count as lines too */
    SSE_EXPECT(": 0123456789abcdefghij\ndata: c\n\n", &o, "limit\n" SSE_END);
    SSE_EXPECT(": 0123456789abcdefghij\n\ndata: c\n\n", &o, "limit\n" SSE_MSG("c") SSE_END);
}

PT_TEST(sse_limits_event_size) {
    pr_sse_decoder_opts o;
    memset(&o, 0, sizeof o);
    o.max_event_bytes = 8;
    SSE_EXPECT("data: 1234\ndata: 123\n\ndata: 1234\ndata: 1234\ndata: x\n\ndata: 123456789\n\ndata: ok\n\n",
               &o, SSE_MSG("1234\\x0a123") "limit\n" "limit\n" SSE_MSG("ok") SSE_END);
    /* replacement counts against the limit: 3 bad bytes become 9 */
    SSE_EXPECT("data: \xFF\xFF\xFF\n\ndata: \xFF\xFF\n\n", &o, "limit\n" SSE_MSG(SSE_FFFD SSE_FFFD) SSE_END);
    SSE_EXPECT("data: 1\ndata: \xFF\xFF\xFF\n\ndata: ok\n\n", &o, "limit\n" SSE_MSG("ok") SSE_END);
}

PT_TEST(sse_limit_is_sticky_until_skip_or_reset) {
    pr_sse_decoder *d;
    pr_sse_event ev;
    pr_sse_decoder_opts o;
    memset(&o, 0, sizeof o);
    o.max_line_bytes = 4;
    PT_REQUIRE(pr_sse_decoder_create(&d, &o) == PR_OK);
    PT_EQ_ERR(pr_sse_decoder_feed(d, "data: long\n\ndata\n\n", 18), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_ELIMIT);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_ELIMIT);
    PT_EQ_ERR(pr_sse_decoder_feed(d, "x", 1), PR_ESTATE);
    PT_EQ_ERR(pr_sse_decoder_reset(d), PR_OK); /* drop the connection instead */
    PT_EQ_ERR(pr_sse_decoder_feed(d, "data\n\n", 6), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_OK);
    PT_EQ_INT(ev.data_len, 0);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_SSE_DECODER_MORE);
    /* defaults: 1 MiB lines */
    pr_sse_decoder_destroy(d);
    PT_REQUIRE(pr_sse_decoder_create(&d, NULL) == PR_OK);
    {
        size_t n = (1u << 20) + 8, i;
        char *big = (char *)malloc(n);
        memcpy(big, "data: ", 6);
        for (i = 6; i < n; i++) big[i] = 'q';
        PT_EQ_ERR(pr_sse_decoder_feed(d, big, n), PR_OK);
        PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_ELIMIT);
        PT_EQ_ERR(pr_sse_decoder_skip(d), PR_OK);
        PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_SSE_DECODER_MORE);
        free(big);
    }
    PT_EQ_ERR(pr_sse_decoder_feed(d, "qq\ndata: n\n\ndata: y\n\n", 21), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_OK);
    PT_EQ_MEM(ev.data, "y", 1);
    pr_sse_decoder_destroy(d);
}

/* ---- JSON ---- */

PT_TEST(sse_event_json) {
    pr_sse_decoder *d;
    pr_sse_event ev;
    pr_json_doc *doc = NULL;
    pr_json_error err;
    int64_t v = 0;
    static const char in[] = "data: {\"a\": 1,\ndata:  \"b\": [2]}\n\ndata\n\ndata: {\"a\":\ndata: 1,}\n\n";
    PT_REQUIRE(pr_sse_decoder_create(&d, NULL) == PR_OK);
    PT_EQ_ERR(pr_sse_decoder_feed(d, in, sizeof in - 1), PR_OK);
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_OK);
    PT_EQ_ERR(pr_sse_event_json(&ev, &doc, NULL, &err), PR_OK);
    PT_REQUIRE(doc != NULL);
    PT_EQ_ERR(pr_json_int(pr_json_get(pr_json_root(doc), "a"), &v), PR_OK);
    PT_EQ_INT(v, 1);
    PT_EQ_INT(pr_json_len(pr_json_get(pr_json_root(doc), "b")), 1);
    pr_json_doc_destroy(doc);
    /* empty data */
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_OK);
    PT_EQ_INT(ev.data_len, 0);
    doc = (pr_json_doc *)&err;
    PT_EQ_ERR(pr_sse_event_json(&ev, &doc, NULL, &err), PR_EPROTO);
    PT_CHECK(doc == NULL);
    PT_EQ_ERR(err.code, PR_EPROTO);
    PT_EQ_INT(err.offset, 0);
    PT_EQ_STR(err.msg, "empty event data");
    /* invalid: the position is in the joined data (line 2 is "1,}") */
    PT_EQ_ERR(pr_sse_decoder_next(d, &ev), PR_OK);
    PT_EQ_ERR(pr_sse_event_json(&ev, &doc, NULL, &err), PR_EPROTO);
    PT_CHECK(doc == NULL);
    PT_EQ_ERR(err.code, PR_EPROTO);
    PT_EQ_INT(err.offset, 8);
    PT_EQ_INT(err.line, 2);
    PT_EQ_INT(err.column, 3);
    PT_CHECK(err.msg[0] != 0);
    PT_EQ_ERR(pr_sse_event_json(NULL, &doc, NULL, &err), PR_EINVAL);
    PT_EQ_ERR(pr_sse_event_json(&ev, NULL, NULL, NULL), PR_EINVAL);
    pr_sse_decoder_destroy(d);
}

/* ---- allocation failures ---- */

PT_TEST(sse_fail_nth_allocation_sweep) {
    char *want = sse__run_step(sse__multi, sizeof sse__multi - 1, 0, NULL);
    long nth;
    int steps[3] = { 0, 1, 5 }, s;
    for (s = 0; s < 3; s++)
        for (nth = 1; nth < 40; nth++) {
            size_t *cuts = (size_t *)malloc(sizeof sse__multi * sizeof *cuts), nc = 0, i;
            char *got;
            if (steps[s])
                for (i = (size_t)steps[s]; i < sizeof sse__multi - 1; i += (size_t)steps[s]) cuts[nc++] = i;
            pt_alloc_fail_nth(nth);
            got = sse__run_cuts(sse__multi, sizeof sse__multi - 1, cuts, nc, NULL, 1);
            pt_alloc_fail_nth(0);
            if (strcmp(got, want)) pt_fail(__FILE__, __LINE__, "fail nth %ld, step %d:\n%s", nth, steps[s], got);
            free(got);
            free(cuts);
        }
    free(want);
    {
        pr_sse_decoder *d = NULL;
        pt_alloc_fail_nth(1);
        PT_EQ_ERR(pr_sse_decoder_create(&d, NULL), PR_ENOMEM);
        PT_CHECK(d == NULL);
        pt_alloc_fail_nth(0);
        PT_REQUIRE(pr_sse_decoder_create(&d, NULL) == PR_OK);
        pt_alloc_fail_nth(1);
        PT_EQ_ERR(pr_sse_decoder_set_last_id(d, "abc", 3), PR_ENOMEM);
        PT_EQ_STR(pr_sse_decoder_last_id(d, NULL), "");
        pt_alloc_fail_nth(0);
        pr_sse_decoder_destroy(d);
    }
}

const pt_suite pt_suite_sse = { "sse", {
    PT_ENTRY(sse_r1_bom_stripped_once),
    PT_ENTRY(sse_r1_partial_bom_is_one_fffd),
    PT_ENTRY(sse_r1_replacement_counts),
    PT_ENTRY(sse_r1_raw_bytes_option),
    PT_ENTRY(sse_r2_line_ends),
    PT_ENTRY(sse_r2_cr_is_not_held_back),
    PT_ENTRY(sse_r3_line_kinds),
    PT_ENTRY(sse_r4_r9_names_byte_exact_unknown_ignored),
    PT_ENTRY(sse_r5_event_type),
    PT_ENTRY(sse_r6_r10_data_join_and_dispatch),
    PT_ENTRY(sse_r7_r12_ids),
    PT_ENTRY(sse_r7_id_only_block_seen_by_getter),
    PT_ENTRY(sse_r8_retry),
    PT_ENTRY(sse_r11_finish_discards_incomplete_block),
    PT_ENTRY(sse_reset_is_a_new_connection),
    PT_ENTRY(sse_r13_seed_last_id),
    PT_ENTRY(sse_every_split_gives_the_same_events),
    PT_ENTRY(sse_random_splits_match_whole),
    PT_ENTRY(sse_data_spanning_chunks),
    PT_ENTRY(sse_feed_contract),
    PT_ENTRY(sse_limits_line_and_skip),
    PT_ENTRY(sse_limits_event_size),
    PT_ENTRY(sse_limit_is_sticky_until_skip_or_reset),
    PT_ENTRY(sse_event_json),
    PT_ENTRY(sse_fail_nth_allocation_sweep),
    {0, 0} } };
