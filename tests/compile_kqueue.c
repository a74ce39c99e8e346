/* The kqueue back end, compiled (not linked) on Linux against tests/shim's
   BSD-shaped <sys/event.h>: catches type and syntax errors in code this
   machine cannot run. */
#define PRISTINE_IMPLEMENTATION
#define PRISTINE_POLL_KQUEUE
#include "../pristine.h"
