// build: mkdir -p build && cc -std=c99 -Wall -Wextra -Wpedantic -Werror -O2 -I. -o build/ex_llm examples/llm.c -lbearssl -lpthread
// run: $TS/v1/chat/completions "Tell me about streams"
/* llm.c - stream a chat completion from an OpenAI-compatible API and
   print the text as it arrives.

       build/ex_llm URL PROMPT [MODEL]

   The request is a POST with a JSON body and "stream": true; the answer is
   an event stream of chat-completion chunks,
       data: {"choices":[{"delta":{"content":"Hello"}, ...}], ...}
   ended by `data: [DONE]`. pr_sse_open sends the POST (method, body and
   headers in its options); each event's data is parsed with
   pr_sse_event_json and the content of choices[0].delta is printed.

   A POST is not sent again once its answer began streaming (the model
   would start over): a break mid-answer ends pr_sse_next with the error.
   Before that, a refused connection, 408, 429 or 503 is tried again.

   For a real service:
       OPENAI_API_KEY=sk-... build/ex_llm https://api.openai.com/v1/chat/completions "Hello" gpt-4o-mini
   (the key, when set, goes in an Authorization: Bearer header). The
   project's test server answers "You said: " and the prompt, a word per
   event; examples/llm.expected holds that output. */
#define PRISTINE_IMPLEMENTATION
#include "pristine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Build {"model": .., "stream": true, "messages": [{"role": "user", "content": ..}]}
   with the JSON writer (it escapes the prompt). */
static int build_body(pr_buf *out, const char *model, const char *prompt) {
    pr_json_writer w;
    pr_json_writer_init(&w, out);
    pr_json_begin_object(&w);
    pr_json_key(&w, "model", 5);
    pr_json_write_string(&w, model, strlen(model));
    pr_json_key(&w, "stream", 6);
    pr_json_write_bool(&w, 1);
    pr_json_key(&w, "messages", 8);
    pr_json_begin_array(&w);
    pr_json_begin_object(&w);
    pr_json_key(&w, "role", 4);
    pr_json_write_string(&w, "user", 4);
    pr_json_key(&w, "content", 7);
    pr_json_write_string(&w, prompt, strlen(prompt));
    pr_json_end_object(&w);
    pr_json_end_array(&w);
    pr_json_end_object(&w);
    return pr_json_writer_finish(&w); /* PR_ENOMEM if any step ran out of memory */
}

int main(int argc, char **argv) {
    const char *key = getenv("OPENAI_API_KEY");
    const char *headers[3];
    char auth[512];
    pr_buf body;
    pr_sse *s = NULL;
    pr_sse_stream_opts opts = {0};
    pr_sse_event ev;
    pr_err_info err;
    int rc, status = 1;
    size_t pieces = 0;

    if (argc < 3) {
        fprintf(stderr, "usage: %s URL PROMPT [MODEL]\n", argv[0]);
        return 2;
    }
    pr_buf_init(&body);
    if (build_body(&body, argc > 3 ? argv[3] : "gpt-4o-mini", argv[2]) != PR_OK) return 1;

    headers[0] = "Content-Type: application/json";
    headers[1] = NULL;
    if (key && *key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        headers[1] = auth;
    }
    headers[2] = NULL;
    opts.method = "POST";
    opts.body = body.data;
    opts.body_len = body.len;
    opts.headers = headers;

    rc = pr_sse_open(&s, argv[1], &opts, &err, pr_deadline_in(60000));
    if (rc != PR_OK) {
        fprintf(stderr, "llm: %s: %s (HTTP status %d)\n", pr_errname(rc), err.msg, err.http_status);
        goto out;
    }
    for (;;) {
        pr_json_doc *doc = NULL;
        pr_json_error jerr;
        const pr_json *delta;
        const char *text;
        size_t len = 0;
        /* A model may think for a while before its first token: the
           deadline is per event, and the stream's idle_timeout_ms (45 s)
           notices a dead connection meanwhile. */
        rc = pr_sse_next(s, &ev, pr_deadline_in(120000));
        if (rc != PR_OK) {
            pr_sse_last_error(s, &err);
            fprintf(stderr, "\nllm: the answer broke off: %s: %s\n", pr_errname(rc), err.msg);
            break;
        }
        if (ev.data_len == 6 && memcmp(ev.data, "[DONE]", 6) == 0) { /* the end of the answer */
            status = 0;
            break;
        }
        if (pr_sse_event_json(&ev, &doc, NULL, &jerr) != PR_OK) {
            fprintf(stderr, "llm: an event that is not JSON: %s\n", jerr.msg);
            continue;
        }
        /* choices[0].delta.content; absent in the role and finish chunks */
        delta = pr_json_get(pr_json_at(pr_json_get(pr_json_root(doc), "choices"), 0), "delta");
        text = pr_json_string(pr_json_get(delta, "content"), &len);
        if (text && len) {
            fwrite(text, 1, len, stdout);
            fflush(stdout); /* show each piece as it arrives */
            pieces++;
        }
        pr_json_doc_destroy(doc);
    }
    printf("\n");
    fprintf(stderr, "llm: %zu pieces\n", pieces);
out:
    pr_sse_destroy(s);
    pr_buf_deinit(&body);
    pr_sched_destroy();
    return status;
}
