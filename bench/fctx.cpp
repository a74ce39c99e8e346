// Boost.Context fcontext baseline for bench/bench.c (see bench/README.md).
// Build: c++ -O2 -c bench/fctx.cpp -o build/fctx.o
// Exposes plain C functions; each returns nanoseconds per operation for one
// timed repetition (the caller takes medians).
#include <boost/context/detail/fcontext.hpp>

#include <cstdlib>
#include <ctime>

namespace ctx = boost::context::detail;

namespace {

const std::size_t kStack = 64 * 1024;

long long now_ns() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// Ping-pong partner: bounces every jump straight back, forever.
void bounce(ctx::transfer_t t) {
    for (;;) t = ctx::jump_fcontext(t.fctx, t.data);
}

// Cheapest possible "task": entered once, jumps out, never resumed again.
void once(ctx::transfer_t t) {
    ctx::jump_fcontext(t.fctx, (void *)1);
    std::abort(); // never resumed
}

// One 64 KiB stack, page-aligned like pristine's mmap'd stacks (a malloc'd
// one lands at an arbitrary offset in its page, and the round trip then
// varies by 2x between builds with how its frames alias the caller's).
void *stack_mem() {
    static void *mem;
    if (!mem && !(mem = std::aligned_alloc(4096, kStack))) std::abort();
    return mem;
}

} // namespace

extern "C" {

// Resume + yield round trip (two jump_fcontext calls) between the caller
// and a context on a 64 KiB malloc'd stack.
double fctx_roundtrip_ns(long iters) {
    char *top = static_cast<char *>(stack_mem()) + kStack;
    ctx::fcontext_t c = ctx::make_fcontext(top, kStack, bounce);
    ctx::transfer_t t = ctx::jump_fcontext(c, nullptr); // start it
    c = t.fctx;
    long long t0 = now_ns();
    for (long i = 0; i < iters; i++) c = ctx::jump_fcontext(c, nullptr).fctx;
    long long t1 = now_ns();
    // The context stays suspended on the reused stack; nothing to free.
    return double(t1 - t0) / double(iters);
}

// make_fcontext on a reused, preallocated stack + jump in + jump out: the
// floor for "spawn, run a trivial body, finish" with fcontext.
double fctx_make_jump_ns(long iters) {
    char *top = static_cast<char *>(stack_mem()) + kStack;
    void *sink = nullptr;
    long long t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        ctx::fcontext_t c = ctx::make_fcontext(top, kStack, once);
        sink = ctx::jump_fcontext(c, nullptr).data;
    }
    long long t1 = now_ns();
    if (!sink) std::abort();
    return double(t1 - t0) / double(iters);
}

} // extern "C"
