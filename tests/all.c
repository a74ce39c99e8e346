/* all.c - the whole test suite as one translation unit (see tests/README.md):
   the implementation first (so its pr__ internals are in scope), then the
   harness, every test file in manifest order, and the runner. */
#define PRISTINE_IMPLEMENTATION
#include "../pristine.h"
#include "pt.h"
#include "support.h"

#include "test_base.c"
#include "test_time.c"
#include "test_buf.c"
#include "test_json.c"
#include "test_url.c"
#include "test_sse.c"
#include "test_coro.c"
#include "test_sched.c"
#include "test_future.c"
#include "test_retry.c"
#include "test_net.c"
#include "test_tls.c"
#include "test_http.c"
#include "test_proxy.c"
#include "test_client.c"
#include "test_client_edge.c"
#include "test_server.c"
#include "test_http_retry.c"
#include "test_eventsource.c"
#include "test_rfuture.c"
#include "test_telemetry.c"
#include "test_ds.c"
#include "test_nginx.c"

#include "main.c"
