// @pristine:module coro - stackful contexts: hand-written switch per arch, guard-paged pooled stacks
// @pristine:public
/*
 * coro: the stackful contexts under every task. Each task runs on its own
 * stack: an mmap'd region with a PROT_NONE guard page below it, so an
 * overflow is a clean SIGSEGV instead of silent corruption. Stacks are
 * pooled per thread (up to 64 of the default size), and the pages of
 * stacks that stay idle in the pool are handed back to the kernel. A guard
 * page costs a memory-map area and the kernel caps those (vm.max_map_count,
 * about 32k guarded stacks by default): once stacks hold 7/8 of the cap, or
 * when the kernel refuses, new stacks get a canary at their low end instead
 * of a guard page, checked on every switch away from their task; the
 * fallback is logged once. The context switch is hand-written assembly
 * on x86-64, aarch64, riscv64 and 32-bit arm (hard-float), with a ucontext
 * fallback elsewhere (PRISTINE_CORO_UCONTEXT forces it, PRISTINE_CORO_ASM
 * forbids it). It saves the callee-saved registers and the floating-point control
 * words (MXCSR and the x87 control word, FPCR, fcsr, FPSCR); define
 * PRISTINE_NO_FP_SAVE to leave the control words out.
 *
 * Only the stack size is public: tasks are spawned through the sched module.
 *
 * Offers to the modules after it: pr__coro, pr__coro_create, pr__coro_destroy,
 *     pr__coro_exit, pr__coro_init_main, pr__coro_pool_drain, pr__coro_shed,
 *     pr__coro_switch.
 */

/* Set the default stack size for tasks spawned later (process-wide).
   Params: bytes - the usable size of each stack, rounded up to the page
           size; between 16 KiB and 1 GiB. The task's own records (well
           under a page) are carved from the top of it.
   Returns: PR_OK; PR_EINVAL if bytes < 16 KiB or bytes > 1 GiB.
   Blocks: no.
   Thread: any.
   See: pr_coro_stack_size. */
PRISTINE_API int pr_coro_set_stack_size(size_t bytes);

/* The default stack size for tasks spawned from now on.
   Params: none.
   Returns: the size in bytes; initially PRISTINE_STACK_SIZE (65536),
            rounded up to the page size.
   Blocks: no.
   Thread: any.
   See: pr_coro_set_stack_size. */
PRISTINE_API size_t pr_coro_stack_size(void);

// @pristine:impl
#ifndef PRISTINE_STACK_SIZE
#define PRISTINE_STACK_SIZE 65536
#endif

#define PR__CORO_MIN_STACK ((size_t)16 * 1024)
#define PR__CORO_MAX_STACK ((size_t)1024 * 1024 * 1024)
#define PR__CORO_POOL_MAX 64     /* pooled stacks per thread */
#define PR__CORO_TRIM_BATCH 16   /* stacks returned between two looks for cold stacks */
#define PR__CORO_TRIM_NS ((int64_t)1000000000) /* idle this long (at least) = cold */
/* The canary of an unguarded stack: its lowest words must read zero. Zero,
   because a fresh anonymous page reads zero without being backed by memory:
   a non-zero canary would cost every unguarded stack a resident page at its
   bottom. A deep overflow writes return addresses and saved registers there. */
#define PR__CORO_CANARY ((uint64_t)0)
#define PR__CORO_CANARY_WORDS 4  /* canary words at the low end of an unguarded stack */
#define PR__CORO_MEM_MIN 4096    /* usable bytes required in caller-provided memory */

enum { PR__CORO_MAIN = 1, PR__CORO_MMAP = 2, PR__CORO_MEM = 3 };

typedef struct pr__coro pr__coro;

/* One context. For spawned contexts this record sits at the top of the
   context's own stack memory, with the caller's `extra` block below it. */
struct pr__coro {
    void *sp;                 /* saved stack pointer while suspended (asm switch) */
    const uint64_t *canary;   /* checked on every switch away: the top canary word, or &self_canary */
    uint64_t self_canary;     /* always PR__CORO_CANARY; for contexts without a canary */
    char *lo;                 /* lowest usable stack byte (above guard or canary) */
    char *hi;                 /* stack top, exclusive and 16-aligned; the records lie above */
    char *map;                /* start of the mapping (guard page included); NULL unless MMAP */
    size_t map_size;
    size_t size_key;          /* page-rounded requested stack size; the pool's key */
    void (*fn)(void *);
    void *arg;
    pr__coro *pool_next;
    unsigned char kind;       /* PR__CORO_MAIN, _MMAP or _MEM */
    unsigned char guarded;    /* has a PROT_NONE guard page below lo */
    unsigned char pool_trimmed; /* in the pool, with its cold pages given back */
#ifdef PR__BASE_CORO_UCONTEXT
    ucontext_t uc;
#endif
#ifdef PR__ASAN
    void *asan_fake;          /* ASan's fake stack of this context while suspended */
    const void *asan_bottom;  /* stack bounds for ASan; main learns them at the first switch back */
    size_t asan_size;
#endif
#ifdef PR__VALGRIND
    unsigned vg_id;
#endif
};

/* ---- the context switch ---- */
/* PR__CORO_FP: the switch saves and restores the FP control words. (The
   ucontext fallback does whatever libc's swapcontext does.) */
#ifdef PRISTINE_NO_FP_SAVE
#define PR__CORO_FP 0
#define PR__CORO_FPTAG "nofp"
#else
#define PR__CORO_FP 1
#define PR__CORO_FPTAG "fp"
#endif

#ifndef PR__BASE_CORO_UCONTEXT
#define PR__CORO_STR2(x) #x
#define PR__CORO_STR(x) PR__CORO_STR2(x)
/* Symbol names of the assembly routines. They are weak and hidden, so two
   translation units that each carry the implementation (PRISTINE_STATIC)
   link, and nothing leaks out of a shared object. The version and the FP
   mode are part of the name, so copies whose frame layouts differ can never
   be merged by the linker. */
#define PR__CORO_SYM(name) "pr__coro_" name "_v" PR__CORO_STR(PRISTINE_VERSION_MAJOR) "_" \
    PR__CORO_STR(PRISTINE_VERSION_MINOR) "_" PR__CORO_STR(PRISTINE_VERSION_PATCH) "_" PR__CORO_FPTAG
#define PR__CORO_SWAP PR__CORO_SYM("swap")
#define PR__CORO_BOOT PR__CORO_SYM("boot")
/* Each routine starts on a 32-byte boundary: where the linker happens to
   put it must not decide its speed (an x86 switch that straddled one ran
   1.7 times slower on a Xeon, its FP control-word loads included). */
#define PR__CORO_ASM_HEAD(sym, type) \
    ".weak " sym "\n.hidden " sym "\n.type " sym ", " type "\n.p2align 5\n" sym ":\n"

#if defined(__GNUC__) || defined(__clang__)
#define PR__CORO_HIDDEN __attribute__((visibility("hidden")))
#else
#define PR__CORO_HIDDEN
#endif
/* pr__coro_swap(save, to): push the callee-saved registers (and the FP
   control words) on the current stack, store the stack pointer in *save,
   switch to the stack pointer `to`, pop its registers and jump to the
   address on top of it. It ends with a pop and an indirect jump, not a
   return, which would mispredict on every switch. pr__coro_boot is where a
   new context starts: it calls entry(arg), both taken from callee-saved
   registers of the initial frame. */
extern PR__CORO_HIDDEN void pr__coro_swap(void **save, void *to) __asm__(PR__CORO_SWAP);
extern PR__CORO_HIDDEN void pr__coro_boot(void) __asm__(PR__CORO_BOOT);

#if defined(__x86_64__)
/* x86-64 SysV. Frame, from the saved sp up: [MXCSR, x87 CW] r15 r14 r13 r12 rbx rbp, return address. */
#if PR__CORO_FP
#define PR__CORO_FRAME 64
/* Unconditional: on the machines measured, reading MXCSR back to skip an
   unchanged restore cost more than the restore. */
#define PR__CORO_X86_SAVEFP "  subq $8, %rsp\n  stmxcsr (%rsp)\n  fnstcw 4(%rsp)\n"
#define PR__CORO_X86_LOADFP "  ldmxcsr (%rsp)\n  fldcw 4(%rsp)\n  addq $8, %rsp\n"
#else
#define PR__CORO_FRAME 56
#define PR__CORO_X86_SAVEFP ""
#define PR__CORO_X86_LOADFP ""
#endif
__asm__(
    ".pushsection .text\n"
    ".balign 16\n"
    PR__CORO_ASM_HEAD(PR__CORO_SWAP, "@function")
    "  pushq %rbp\n"
    "  pushq %rbx\n"
    "  pushq %r12\n"
    "  pushq %r13\n"
    "  pushq %r14\n"
    "  pushq %r15\n"
    PR__CORO_X86_SAVEFP
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    PR__CORO_X86_LOADFP
    "  popq %r15\n"
    "  popq %r14\n"
    "  popq %r13\n"
    "  popq %r12\n"
    "  popq %rbx\n"
    "  popq %rbp\n"
    "  popq %rcx\n"
    "  jmpq *%rcx\n"
    ".size " PR__CORO_SWAP ", .-" PR__CORO_SWAP "\n"
    ".balign 16\n"
    PR__CORO_ASM_HEAD(PR__CORO_BOOT, "@function")
    "  .cfi_startproc\n"
    "  .cfi_undefined rip\n"
    "  movq %r13, %rdi\n"
    "  callq *%r12\n"
    "  ud2\n"
    "  .cfi_endproc\n"
    ".size " PR__CORO_BOOT ", .-" PR__CORO_BOOT "\n"
    ".popsection\n"
    ".pushsection .note.GNU-stack,\"\",@progbits\n"
    ".popsection\n");

#elif defined(__aarch64__)
/* AAPCS64. Frame, from the saved sp up: x19..x28, x29, x30 (resume address), d8..d15, [FPCR, pad]. */
#if PR__CORO_FP
#define PR__CORO_FRAME 176
#define PR__CORO_A64_SAVEFP "  mrs x9, fpcr\n  str x9, [sp, #160]\n"
#define PR__CORO_A64_LOADFP "  ldr x10, [sp, #160]\n  cmp x9, x10\n  b.eq 1f\n  msr fpcr, x10\n1:\n"
#else
#define PR__CORO_FRAME 160
#define PR__CORO_A64_SAVEFP ""
#define PR__CORO_A64_LOADFP ""
#endif
/* With branch protection, an indirect branch may only land on a BTI pad, which return sites
   are not: use ret there. Otherwise br, which keeps the return-address predictor out of it. */
#if defined(__ARM_FEATURE_BTI_DEFAULT)
#define PR__CORO_A64_JUMP "  ret x30\n"
#else
#define PR__CORO_A64_JUMP "  br x30\n"
#endif
__asm__(
    ".pushsection .text\n"
    ".balign 16\n"
    PR__CORO_ASM_HEAD(PR__CORO_SWAP, "%function")
    "  sub sp, sp, #" PR__CORO_STR(PR__CORO_FRAME) "\n"
    "  stp x19, x20, [sp, #0]\n"
    "  stp x21, x22, [sp, #16]\n"
    "  stp x23, x24, [sp, #32]\n"
    "  stp x25, x26, [sp, #48]\n"
    "  stp x27, x28, [sp, #64]\n"
    "  stp x29, x30, [sp, #80]\n"
    "  stp d8, d9, [sp, #96]\n"
    "  stp d10, d11, [sp, #112]\n"
    "  stp d12, d13, [sp, #128]\n"
    "  stp d14, d15, [sp, #144]\n"
    PR__CORO_A64_SAVEFP
    "  mov x10, sp\n"
    "  str x10, [x0]\n"
    "  mov sp, x1\n"
    PR__CORO_A64_LOADFP
    "  ldp x19, x20, [sp, #0]\n"
    "  ldp x21, x22, [sp, #16]\n"
    "  ldp x23, x24, [sp, #32]\n"
    "  ldp x25, x26, [sp, #48]\n"
    "  ldp x27, x28, [sp, #64]\n"
    "  ldp x29, x30, [sp, #80]\n"
    "  ldp d8, d9, [sp, #96]\n"
    "  ldp d10, d11, [sp, #112]\n"
    "  ldp d12, d13, [sp, #128]\n"
    "  ldp d14, d15, [sp, #144]\n"
    "  add sp, sp, #" PR__CORO_STR(PR__CORO_FRAME) "\n"
    PR__CORO_A64_JUMP
    ".size " PR__CORO_SWAP ", .-" PR__CORO_SWAP "\n"
    ".balign 16\n"
    PR__CORO_ASM_HEAD(PR__CORO_BOOT, "%function")
    "  .cfi_startproc\n"
    "  .cfi_undefined x30\n"
    "  hint #36\n" /* bti j: reached through br */
    "  mov x0, x20\n"
    "  blr x19\n"
    "  brk #0\n"
    "  .cfi_endproc\n"
    ".size " PR__CORO_BOOT ", .-" PR__CORO_BOOT "\n"
    ".popsection\n"
    ".pushsection .note.GNU-stack,\"\",%progbits\n"
    ".popsection\n");

#elif defined(__riscv)
/* RV64 lp64d. Frame, from the saved sp up: s0..s11, ra (resume address), fs0..fs11, [fcsr]. The
   jump goes through t1, which the hardware does not treat as a return (only ra and t0 are). */
#define PR__CORO_FRAME 208
#if PR__CORO_FP
#define PR__CORO_RV_SAVEFP "  frcsr t0\n  sd t0, 200(sp)\n"
#define PR__CORO_RV_LOADFP "  ld t1, 200(sp)\n  beq t0, t1, 1f\n  fscsr t1\n1:\n"
#else
#define PR__CORO_RV_SAVEFP ""
#define PR__CORO_RV_LOADFP ""
#endif
__asm__(
    ".pushsection .text\n"
    ".balign 16\n"
    PR__CORO_ASM_HEAD(PR__CORO_SWAP, "@function")
    "  addi sp, sp, -208\n"
    "  sd s0, 0(sp)\n"
    "  sd s1, 8(sp)\n"
    "  sd s2, 16(sp)\n"
    "  sd s3, 24(sp)\n"
    "  sd s4, 32(sp)\n"
    "  sd s5, 40(sp)\n"
    "  sd s6, 48(sp)\n"
    "  sd s7, 56(sp)\n"
    "  sd s8, 64(sp)\n"
    "  sd s9, 72(sp)\n"
    "  sd s10, 80(sp)\n"
    "  sd s11, 88(sp)\n"
    "  sd ra, 96(sp)\n"
    "  fsd fs0, 104(sp)\n"
    "  fsd fs1, 112(sp)\n"
    "  fsd fs2, 120(sp)\n"
    "  fsd fs3, 128(sp)\n"
    "  fsd fs4, 136(sp)\n"
    "  fsd fs5, 144(sp)\n"
    "  fsd fs6, 152(sp)\n"
    "  fsd fs7, 160(sp)\n"
    "  fsd fs8, 168(sp)\n"
    "  fsd fs9, 176(sp)\n"
    "  fsd fs10, 184(sp)\n"
    "  fsd fs11, 192(sp)\n"
    PR__CORO_RV_SAVEFP
    "  sd sp, 0(a0)\n"
    "  mv sp, a1\n"
    PR__CORO_RV_LOADFP
    "  ld s0, 0(sp)\n"
    "  ld s1, 8(sp)\n"
    "  ld s2, 16(sp)\n"
    "  ld s3, 24(sp)\n"
    "  ld s4, 32(sp)\n"
    "  ld s5, 40(sp)\n"
    "  ld s6, 48(sp)\n"
    "  ld s7, 56(sp)\n"
    "  ld s8, 64(sp)\n"
    "  ld s9, 72(sp)\n"
    "  ld s10, 80(sp)\n"
    "  ld s11, 88(sp)\n"
    "  ld t1, 96(sp)\n"
    "  fld fs0, 104(sp)\n"
    "  fld fs1, 112(sp)\n"
    "  fld fs2, 120(sp)\n"
    "  fld fs3, 128(sp)\n"
    "  fld fs4, 136(sp)\n"
    "  fld fs5, 144(sp)\n"
    "  fld fs6, 152(sp)\n"
    "  fld fs7, 160(sp)\n"
    "  fld fs8, 168(sp)\n"
    "  fld fs9, 176(sp)\n"
    "  fld fs10, 184(sp)\n"
    "  fld fs11, 192(sp)\n"
    "  addi sp, sp, 208\n"
    "  jr t1\n"
    ".size " PR__CORO_SWAP ", .-" PR__CORO_SWAP "\n"
    ".balign 16\n"
    PR__CORO_ASM_HEAD(PR__CORO_BOOT, "@function")
    "  .cfi_startproc\n"
    "  .cfi_undefined ra\n"
    "  mv a0, s2\n"
    "  jalr s1\n"
    "  unimp\n"
    "  .cfi_endproc\n"
    ".size " PR__CORO_BOOT ", .-" PR__CORO_BOOT "\n"
    ".popsection\n"
    ".pushsection .note.GNU-stack,\"\",@progbits\n"
    ".popsection\n");

#elif defined(__arm__)
/* AAPCS hard-float, ARM or Thumb-2 (the code assembles as either; the mode is restated so the
   compiler's own output continues in its mode). Frame, from the saved sp up: d8..d15, [FPSCR or
   pad], r4..r11, resume address. The jump goes through ip, not lr, so it is not predicted as a
   return. */
#define PR__CORO_FRAME 104
#if defined(__thumb__)
#define PR__CORO_ARM_MODE ".thumb\n"
#define PR__CORO_ARM_FUNC ".thumb_func\n"
#else
#define PR__CORO_ARM_MODE ".arm\n"
#define PR__CORO_ARM_FUNC ""
#endif
#if PR__CORO_FP
#define PR__CORO_ARM_SAVEFP "  vmrs r2, fpscr\n"
#define PR__CORO_ARM_LOADFP "  cmp r2, r3\n  beq 1f\n  vmsr fpscr, r3\n1:\n"
#else
#define PR__CORO_ARM_SAVEFP ""
#define PR__CORO_ARM_LOADFP ""
#endif
__asm__(
    ".pushsection .text\n"
    ".syntax unified\n"
    PR__CORO_ARM_MODE
    ".balign 16\n"
    PR__CORO_ARM_FUNC
    PR__CORO_ASM_HEAD(PR__CORO_SWAP, "%function")
    PR__CORO_ARM_SAVEFP
    "  push {r2, r4-r11, lr}\n"
    "  vpush {d8-d15}\n"
    "  mov r3, sp\n"
    "  str r3, [r0]\n"
    "  mov sp, r1\n"
    "  vpop {d8-d15}\n"
    "  pop {r3, r4-r11, ip}\n"
    PR__CORO_ARM_LOADFP
    "  bx ip\n"
    ".size " PR__CORO_SWAP ", .-" PR__CORO_SWAP "\n"
    ".balign 16\n"
    PR__CORO_ARM_FUNC
    PR__CORO_ASM_HEAD(PR__CORO_BOOT, "%function")
    "  .cfi_startproc\n"
    "  .cfi_undefined lr\n"
    "  mov r0, r5\n"
    "  blx r4\n"
    "  udf #0\n"
    "  .cfi_endproc\n"
    ".size " PR__CORO_BOOT ", .-" PR__CORO_BOOT "\n"
    ".popsection\n"
    ".pushsection .note.GNU-stack,\"\",%progbits\n"
    ".popsection\n");
#endif

/* The FP control state a new context starts with: the creator's, without
   its sticky exception flags. */
#if PR__CORO_FP
static uint64_t pr__coro_fp_control(void) {
#if defined(__x86_64__)
    uint32_t mxcsr;
    uint16_t cw;
    __asm__ __volatile__("stmxcsr %0\n\tfnstcw %1" : "=m"(mxcsr), "=m"(cw));
    return (uint64_t)(mxcsr & ~(uint32_t)0x3f) | ((uint64_t)cw << 32);
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    return fpcr;
#elif defined(__riscv)
    uint64_t fcsr;
    __asm__ __volatile__("frcsr %0" : "=r"(fcsr));
    return fcsr & ~(uint64_t)0x1f;
#elif defined(__arm__)
    uint32_t fpscr;
    __asm__ __volatile__("vmrs %0, fpscr" : "=r"(fpscr));
    return fpscr & 0x07ffff00u;
#endif
}
#endif

/* Lay the initial frame below hi (16-aligned) so that the first switch to
   it "returns" into pr__coro_boot, which calls entry(arg). */
static void *pr__coro_make_frame(char *hi, void (*entry)(void *), void *arg) {
    void (*boot)(void) = pr__coro_boot;
    char *f = hi - PR__CORO_FRAME;
    size_t word = sizeof(void *), at_entry, at_arg, at_resume;
    memset(f, 0, PR__CORO_FRAME);
#if defined(__x86_64__)
#if PR__CORO_FP
    { uint64_t fp = pr__coro_fp_control(); memcpy(f, &fp, 8); f += 8; }
#endif
    at_entry = 3 * word;  /* r12 */
    at_arg = 2 * word;    /* r13 */
    at_resume = 6 * word;
#elif defined(__aarch64__)
    at_entry = 0;         /* x19 */
    at_arg = word;        /* x20 */
    at_resume = 11 * word;/* x30 */
#if PR__CORO_FP
    { uint64_t fp = pr__coro_fp_control(); memcpy(f + 160, &fp, 8); }
#endif
#elif defined(__riscv)
    at_entry = word;      /* s1 */
    at_arg = 2 * word;    /* s2 */
    at_resume = 12 * word;/* ra */
#if PR__CORO_FP
    { uint64_t fp = pr__coro_fp_control(); memcpy(f + 200, &fp, 8); }
#endif
#elif defined(__arm__)
#if PR__CORO_FP
    { uint32_t fp = (uint32_t)pr__coro_fp_control(); memcpy(f + 64, &fp, 4); }
#endif
    at_entry = 64 + word; /* r4 */
    at_arg = 64 + 2 * word; /* r5 */
    at_resume = 64 + 9 * word; /* ip */
#endif
    memcpy(f + at_entry, &entry, sizeof entry);
    memcpy(f + at_arg, &arg, sizeof arg);
    memcpy(f + at_resume, &boot, sizeof boot);
    return hi - PR__CORO_FRAME;
}
#endif /* !PR__BASE_CORO_UCONTEXT */

/* ---- sanitizer hooks around a switch ---- */
#ifdef PR__ASAN
static PR__THREAD pr__coro *pr__coro_asan_prev; /* the context that switched to the running one */
#endif

/* Call right before switching from `from` to `to`; pass dying = 1 when
   `from` will never run again (ASan then frees its fake stack). */
static inline void pr__coro_asan_before(pr__coro *from, pr__coro *to, int dying) {
#ifdef PR__ASAN
    pr__coro_asan_prev = from;
    __sanitizer_start_switch_fiber(dying ? NULL : &from->asan_fake, to->asan_bottom, to->asan_size);
#else
    PR__UNUSED(from); PR__UNUSED(to); PR__UNUSED(dying);
#endif
}

/* Call first thing when `self` runs again (or for the first time). It also
   teaches ASan's bounds of the previous stack to its record, which is how a
   main context learns the bounds of the thread's own stack. */
static inline void pr__coro_asan_after(pr__coro *self, int first) {
#ifdef PR__ASAN
    pr__coro *prev = pr__coro_asan_prev;
    if (prev)
        __sanitizer_finish_switch_fiber(first ? NULL : self->asan_fake, &prev->asan_bottom, &prev->asan_size);
    else
        __sanitizer_finish_switch_fiber(first ? NULL : self->asan_fake, NULL, NULL);
#else
    PR__UNUSED(self); PR__UNUSED(first);
#endif
}

/* Print even when no logger is installed: these end the process. */
static void pr__coro_fatal(const char *msg) {
    PR__LOG(PR_LEVEL_ERROR, "coro", "%s", msg);
    if (!pr__logger.fn) fprintf(stderr, "pristine error coro: %s\n", msg);
    abort();
}

static PR__NOINLINE void pr__coro_canary_fail(const pr__coro *c) {
    PR__UNUSED(c);
    pr__coro_fatal("stack overflow: the canary of an unguarded coroutine stack was overwritten; aborting");
}

static void pr__coro_entry(void *p) {
    pr__coro *c = (pr__coro *)p;
    pr__coro_asan_after(c, 1);
    c->fn(c->arg);
    pr__coro_fatal("a coroutine's entry function returned; it must switch away for the last time instead");
}

#ifdef PR__BASE_CORO_UCONTEXT
static void pr__coro_uc_entry(unsigned hi, unsigned lo) {
    uintptr_t p = ((uintptr_t)hi << 16 << 16) | (uintptr_t)lo;
    pr__coro_entry((void *)p);
}

/* getcontext returns twice: keep it out of callers with live locals. */
static PR__NOINLINE int pr__coro_uc_prepare(pr__coro *c) {
    pr__coro *volatile vc = c;
    uintptr_t p;
    if (getcontext(&vc->uc) != 0) return -1;
    p = (uintptr_t)vc;
    vc->uc.uc_stack.ss_sp = vc->lo;
    vc->uc.uc_stack.ss_size = (size_t)(vc->hi - vc->lo);
    vc->uc.uc_link = NULL;
    makecontext(&vc->uc, (void (*)(void))pr__coro_uc_entry, 2, (unsigned)(p >> 16 >> 16), (unsigned)p);
    return 0;
}
#endif

/* Check from's canary, tell ASan, save the current context into *from and
   resume *to; returns when something switches back to from. exiting: from
   will never be resumed (ASan may release its fake stack). */
static inline void pr__coro_jump(pr__coro *from, pr__coro *to, int exiting) {
    if (PR__UNLIKELY(*from->canary != PR__CORO_CANARY)) pr__coro_canary_fail(from);
    pr__coro_asan_before(from, to, exiting);
#ifdef PR__BASE_CORO_UCONTEXT
    if (swapcontext(&from->uc, &to->uc) != 0) pr__coro_fatal("swapcontext failed");
#else
    pr__coro_swap(&from->sp, to->sp);
#endif
}

/* Save the current context into *from and resume *to. */
static inline void pr__coro_switch(pr__coro *from, pr__coro *to) {
    pr__coro_jump(from, to, 0);
    pr__coro_asan_after(from, 0);
}

/* The last switch away from a context that will never be resumed (it will
   be destroyed by someone else). Same as pr__coro_switch, except that ASan
   can release the context's fake stack. */
static PR__MAYBE_UNUSED void pr__coro_exit(pr__coro *from, pr__coro *to) {
    pr__coro_jump(from, to, 1);
    pr__coro_fatal("a finished coroutine was resumed");
}

/* A record for the running context (the thread's own stack, normally). */
static PR__MAYBE_UNUSED void pr__coro_init_main(pr__coro *c) {
    memset(c, 0, sizeof *c);
    c->kind = PR__CORO_MAIN;
    c->self_canary = PR__CORO_CANARY;
    c->canary = &c->self_canary;
}

/* ---- stacks ---- */
static size_t pr__coro_default_size;  /* 0 = PRISTINE_STACK_SIZE; accessed atomically */
static size_t pr__coro_stack_live;         /* stack mappings alive in the process; atomic */
static int pr__coro_stack_fallback_logged; /* the unguarded fallback has been logged; atomic */
#ifdef PRISTINE_TESTING
static int pr__coro_test_fail_guard;  /* nonzero: the guarded path acts as if the kernel refused */
static size_t pr__coro_test_trims;    /* trim passes run (all threads) */
static size_t pr__coro_test_trimmed;  /* stacks trimmed (all threads) */
static int64_t pr__coro_test_trim_ns = -1; /* >= 0: replaces PR__CORO_TRIM_NS */
#endif

typedef struct pr__coro_stack_pool {
    pr__coro *head;  /* LIFO of idle stacks; the records at their tops link them */
    int count;
    int low;         /* the smallest count since `since` */
    int returned;    /* stacks returned since the last look */
    int64_t since;   /* start of the current idleness interval (pr__time_now_ns) */
} pr__coro_stack_pool;

static PR__THREAD pr__coro_stack_pool pr__coro_stack_pool_tls;

static size_t pr__coro_stack_page(void) {
    static size_t cached;
    size_t p = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (!p) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        __atomic_store_n(&cached, p, __ATOMIC_RELAXED);
    }
    return p;
}

static size_t pr__coro_stack_round(size_t n) {
    size_t page = pr__coro_stack_page();
    return (n + page - 1) & ~(page - 1);
}

int pr_coro_set_stack_size(size_t bytes) {
    if (bytes < PR__CORO_MIN_STACK || bytes > PR__CORO_MAX_STACK) return PR_EINVAL;
    __atomic_store_n(&pr__coro_default_size, pr__coro_stack_round(bytes), __ATOMIC_RELAXED);
    return PR_OK;
}

size_t pr_coro_stack_size(void) {
    size_t n = __atomic_load_n(&pr__coro_default_size, __ATOMIC_RELAXED);
    if (!n) {
        n = (size_t)PRISTINE_STACK_SIZE;
        if (n < PR__CORO_MIN_STACK) n = PR__CORO_MIN_STACK;
        n = pr__coro_stack_round(n);
    }
    return n;
}

#if defined(MAP_STACK)
#define PR__CORO_STACK_MAP_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK)
#else
#define PR__CORO_STACK_MAP_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS)
#endif

/* Memory-map areas (VMAs) our stacks hold, counted high: a guarded stack
   is two (guard + stack), an unguarded one at most one (neighbours merge). */
static size_t pr__coro_stack_vmas;

/* The kernel's cap on a process's memory-map areas (vm.max_map_count on
   Linux); 0 when unknown. Read once. */
static size_t pr__coro_stack_vma_limit(void) {
    static size_t cached; /* 0 = not read yet; SIZE_MAX = unknown */
    size_t v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (!v) {
        v = SIZE_MAX;
#if defined(__linux__)
        {
            char buf[32];
            int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                ssize_t n = read(fd, buf, sizeof buf - 1);
                close(fd);
                if (n > 0) {
                    unsigned long long x = 0;
                    ssize_t i;
                    for (i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) x = x * 10 + (unsigned)(buf[i] - '0');
                    if (i > 0 && x > 0 && x < SIZE_MAX) v = (size_t)x;
                }
            }
        }
#endif
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v == SIZE_MAX ? 0 : v;
}

static void pr__coro_stack_log_fallback(const char *why, int err) {
    if (!__atomic_exchange_n(&pr__coro_stack_fallback_logged, 1, __ATOMIC_RELAXED))
        PR__LOG(PR_LEVEL_WARN, "coro",
                "%s%s%s: new stacks get a canary instead of a guard page (raise vm.max_map_count for more guarded stacks)",
                why, err ? ": " : "", err ? strerror(err) : "");
}

/* Map size bytes of stack, with a guard page below when the kernel agrees.
   Returns the mapping (guard included) or NULL; *map_size and *guarded say
   what was made.

   The guard costs a second memory-map area, and the kernel caps those
   (vm.max_map_count, 65530 by default: about 32k guarded stacks). Guards
   stop when our stacks would take more than 7/8 of the cap, which leaves
   the rest of the process (malloc, threads, libraries) room, and whenever
   the kernel refuses one. Unguarded stacks mapped one after another merge
   into one area, so their number is bounded by memory, not by the cap. */
static char *pr__coro_stack_map(size_t size, size_t *map_size, int *guarded) {
    size_t page = pr__coro_stack_page(), limit = pr__coro_stack_vma_limit();
    void *p;
    int err = 0;
    const char *why = "guard page refused";
#ifdef PRISTINE_TESTING
    if (pr__coro_test_fail_guard) err = ENOMEM;
#endif
    if (!err && limit && __atomic_load_n(&pr__coro_stack_vmas, __ATOMIC_RELAXED) + 2 > limit - limit / 8) {
        why = "coroutine stacks hold 7/8 of vm.max_map_count";
        err = -1;
    }
    if (!err) {
        p = mmap(NULL, size + page, PROT_READ | PROT_WRITE, PR__CORO_STACK_MAP_FLAGS, -1, 0);
        if (p == MAP_FAILED) {
            err = errno;
        } else if (mprotect(p, page, PROT_NONE) != 0) {
            /* Splitting off the guard was refused: keep the mapping whole. */
            pr__coro_stack_log_fallback(why, errno);
            __atomic_fetch_add(&pr__coro_stack_live, 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&pr__coro_stack_vmas, 1, __ATOMIC_RELAXED);
            *map_size = size + page;
            *guarded = 0;
            return (char *)p;
        } else {
            __atomic_fetch_add(&pr__coro_stack_live, 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&pr__coro_stack_vmas, 2, __ATOMIC_RELAXED);
            *map_size = size + page;
            *guarded = 1;
            return (char *)p;
        }
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, PR__CORO_STACK_MAP_FLAGS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    pr__coro_stack_log_fallback(why, err > 0 ? err : 0);
    __atomic_fetch_add(&pr__coro_stack_live, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&pr__coro_stack_vmas, 1, __ATOMIC_RELAXED);
    *map_size = size;
    *guarded = 0;
    return (char *)p;
}

static void pr__coro_stack_unmap(pr__coro *c) {
    char *map = c->map; /* c lives in the mapping: read it all first */
    size_t n = c->map_size, vmas = c->guarded ? 2 : 1;
#ifdef PR__ASAN
    /* Frames of a task that never returned leave poison behind; the range
       may come back from mmap as anything. */
    __asan_unpoison_memory_region(c->lo, (size_t)(c->hi - c->lo));
#endif
    if (munmap(map, n) != 0) {
        /* Only when splitting a merged mapping would exceed the map
           limit. Give the memory back at least and keep the range. */
        PR__LOG(PR_LEVEL_ERROR, "coro", "munmap of a stack failed (%s); leaking its address range", strerror(errno));
        madvise(map, n, MADV_DONTNEED);
        return;
    }
    __atomic_fetch_sub(&pr__coro_stack_live, 1, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&pr__coro_stack_vmas, vmas, __ATOMIC_RELAXED);
}

/* Each time PR__CORO_TRIM_BATCH stacks have come back to the pool, look for
   cold stacks. The bottom `low` stacks of the LIFO have stayed in the pool
   since `since`; once that interval is PR__CORO_TRIM_NS long, they are cold
   and give their pages below the one holding the records back to the
   kernel (a trim pass), and a new interval starts. Stacks the pool hands out
   again, as under steady task churn, are not trimmed, so reusing them costs
   no page faults. An idle pool is never trimmed: it holds at most
   PR__CORO_POOL_MAX stacks. */
static void pr__coro_stack_trim(pr__coro_stack_pool *pool) {
    size_t page = pr__coro_stack_page();
    int64_t now = pr__time_now_ns(), wait = PR__CORO_TRIM_NS;
    int skip;
    pr__coro *c;
    pool->returned = 0;
#ifdef PRISTINE_TESTING
    if (pr__coro_test_trim_ns >= 0) wait = pr__coro_test_trim_ns;
#endif
    if (now - pool->since < wait) return;
    skip = pool->count - pool->low;
    for (c = pool->head; c; c = c->pool_next) {
        uintptr_t keep;
        char *base;
        if (skip > 0) {
            skip--;
            continue;
        }
        if (c->pool_trimmed) continue;
        c->pool_trimmed = 1;
        keep = (uintptr_t)c->hi & ~(uintptr_t)(page - 1);
        base = c->guarded ? c->map + page : c->map;
        if ((uintptr_t)base < keep)
            madvise(base, (size_t)(keep - (uintptr_t)base), MADV_DONTNEED);
#ifdef PRISTINE_TESTING
        __atomic_fetch_add(&pr__coro_test_trimmed, 1, __ATOMIC_RELAXED);
#endif
    }
    pool->low = pool->count;
    pool->since = now;
#ifdef PRISTINE_TESTING
    __atomic_fetch_add(&pr__coro_test_trims, 1, __ATOMIC_RELAXED);
#endif
}

/* Give back to the kernel the whole pages of c's stack below the caller's
   frame (less 1 KiB, room for this call and madvise's): a deep call that
   has returned (a TLS handshake) would otherwise keep them resident for the
   rest of a long-lived task. Those bytes are dead; a page read later reads
   zero (so does the canary). One madvise; nothing unless c is an mmap'd
   stack the caller runs on. */
static PR__NOINLINE PR__MAYBE_UNUSED void pr__coro_shed(pr__coro *c) {
    char here;
    size_t page = pr__coro_stack_page();
    uintptr_t sp = (uintptr_t)&here, base, end;
    if (!c || c->kind != PR__CORO_MMAP || sp <= (uintptr_t)c->lo + 2048 || sp >= (uintptr_t)c->hi) return;
    base = c->guarded ? (uintptr_t)c->map + page : (uintptr_t)c->map;
    end = (sp - 1024) & ~(uintptr_t)(page - 1);
    if (base < end) madvise((void *)base, (size_t)(end - base), MADV_DONTNEED);
}

static PR__MAYBE_UNUSED void pr__coro_pool_drain(void) {
    pr__coro_stack_pool *pool = &pr__coro_stack_pool_tls;
    while (pool->head) {
        pr__coro *c = pool->head;
        pool->head = c->pool_next;
        pr__coro_stack_unmap(c);
    }
    pool->count = 0;
    pool->low = 0;
    pool->returned = 0;
}

/* Make the canary words zero, writing only if they are not (a write would
   make a fresh page resident). */
static void pr__coro_stack_write_canary(char *lo) {
    uint64_t w[PR__CORO_CANARY_WORDS], any = 0;
    int i;
    memcpy(w, lo, sizeof w);
    for (i = 0; i < PR__CORO_CANARY_WORDS; i++) any |= w[i] ^ PR__CORO_CANARY;
    if (any) {
        for (i = 0; i < PR__CORO_CANARY_WORDS; i++) w[i] = PR__CORO_CANARY;
        memcpy(lo, w, sizeof w);
    }
}

static int pr__coro_stack_canary_intact(const pr__coro *c) {
    const uint64_t *w = c->canary - (PR__CORO_CANARY_WORDS - 1);
    int i;
    if (c->canary == &c->self_canary) return 1;
    for (i = 0; i < PR__CORO_CANARY_WORDS; i++)
        if (w[i] != PR__CORO_CANARY) return 0;
    return 1;
}

#define PR__CORO_ALIGN16(n) (((n) + 15) & ~(size_t)15)

#ifdef PR__VALGRIND
/* Whether the process runs under Valgrind, asked once: the client requests
   cost a few ns on every spawn otherwise. */
static int pr__coro_on_valgrind(void) {
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        v = RUNNING_ON_VALGRIND ? 1 : 0;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}
#endif

/* Zero n bytes at p (both multiples of 16). Written as a loop the compiler
   may not turn back into memset: with the size known it inlines memset as
   `rep stos`, whose start-up cost dominated task creation. */
static void pr__coro_zero16(void *p, size_t n) {
    char *q = (char *)p;
    const uint64_t z[2] = { 0, 0 };
    for (; n; n -= 16, q += 16) {
        memcpy(q, z, 16);
#if defined(__GNUC__) || defined(__clang__)
        __asm__ __volatile__("" : : "r"(q) : "memory");
#endif
    }
}

static void pr__coro_destroy(pr__coro *c);

static PR__MAYBE_UNUSED int pr__coro_create(pr__coro **out, void **extra_out, size_t extra, size_t stack_size, void *mem,
                           size_t mem_size, void (*fn)(void *), void *arg) {
    size_t rec = PR__CORO_ALIGN16(sizeof(pr__coro)), ext, hdr;
    char *top, *base, *map = NULL;
    size_t map_size = 0, key = 0;
    int kind, guarded = 0, fresh = 0;
    pr__coro *c = NULL;

    PR__ASSERT(out && fn);
    *out = NULL;
    if (extra_out) *extra_out = NULL;
    if (extra > PR__CORO_MAX_STACK) return PR_EINVAL;
    ext = PR__CORO_ALIGN16(extra);
    hdr = rec + ext;

    if (mem) {
        uintptr_t b = ((uintptr_t)mem + 15) & ~(uintptr_t)15, t;
        if (mem_size < PR__CORO_MIN_STACK || mem_size > UINTPTR_MAX - (uintptr_t)mem) return PR_EINVAL;
        t = ((uintptr_t)mem + mem_size) & ~(uintptr_t)15;
        if (t <= b || t - b < hdr + 8 * PR__CORO_CANARY_WORDS + PR__CORO_MEM_MIN) return PR_EINVAL;
        kind = PR__CORO_MEM;
        base = (char *)b;
        top = (char *)t;
    } else {
        pr__coro_stack_pool *pool = &pr__coro_stack_pool_tls;
        size_t def = pr_coro_stack_size();
        if (stack_size && (stack_size < PR__CORO_MIN_STACK || stack_size > PR__CORO_MAX_STACK)) return PR_EINVAL;
        key = stack_size ? pr__coro_stack_round(stack_size) : def;
        if (hdr + PR__CORO_MEM_MIN > key / 2 + key / 4) return PR_EINVAL;
        kind = PR__CORO_MMAP;
        if (key == def) {
            /* Stacks of an older default size are of no use any more. */
            while (pool->head && pool->head->size_key != key) {
                pr__coro *old = pool->head;
                pool->head = old->pool_next;
                pool->count--;
                pr__coro_stack_unmap(old);
            }
            if (pool->head) {
                c = pool->head;
                pool->head = c->pool_next;
                pool->count--;
                map = c->map;
                map_size = c->map_size;
                guarded = c->guarded;
            }
            if (pool->count < pool->low) pool->low = pool->count;
        }
        if (!map) {
            map = pr__coro_stack_map(key, &map_size, &guarded);
            if (!map) return PR_ENOMEM;
            fresh = 1;
        }
        top = map + map_size;
        base = guarded ? map + pr__coro_stack_page() : map;
    }

    c = (pr__coro *)(void *)(top - rec);
    pr__coro_zero16(top - hdr, hdr);
    c->kind = (unsigned char)kind;
    c->guarded = (unsigned char)guarded;
    c->map = map;
    c->map_size = map_size;
    c->size_key = key;
    c->fn = fn;
    c->arg = arg;
    c->self_canary = PR__CORO_CANARY;
    c->hi = top - hdr;
    if (guarded) {
        c->lo = base;
        c->canary = &c->self_canary;
    } else {
        if (!fresh) pr__coro_stack_write_canary(base); /* a fresh mapping reads zero already */
        c->lo = base + 8 * PR__CORO_CANARY_WORDS;
        c->canary = (const uint64_t *)(void *)(base + 8 * (PR__CORO_CANARY_WORDS - 1));
    }
#ifdef PR__ASAN
    /* A stack's earlier tenant died without unwinding: clear its poison. */
    __asan_unpoison_memory_region(c->lo, (size_t)(c->hi - c->lo));
    c->asan_bottom = c->lo;
    c->asan_size = (size_t)(c->hi - c->lo);
#endif
#ifdef PR__VALGRIND
    if (pr__coro_on_valgrind()) c->vg_id = VALGRIND_STACK_REGISTER(c->lo, c->hi);
#endif
#ifdef PR__BASE_CORO_UCONTEXT
    if (pr__coro_uc_prepare(c) != 0) {
        pr__coro_destroy(c);
        return PR_ENOMEM;
    }
#else
    c->sp = pr__coro_make_frame(c->hi, pr__coro_entry, c);
#endif
    *out = c;
    if (extra_out) *extra_out = ext ? (void *)(top - hdr) : NULL;
    return PR_OK;
}

static PR__MAYBE_UNUSED void pr__coro_destroy(pr__coro *c) {
    pr__coro_stack_pool *pool = &pr__coro_stack_pool_tls;
    if (!c) return;
    PR__ASSERT(c->kind == PR__CORO_MMAP || c->kind == PR__CORO_MEM);
    if (!pr__coro_stack_canary_intact(c)) pr__coro_canary_fail(c);
#ifdef PR__VALGRIND
    if (pr__coro_on_valgrind()) VALGRIND_STACK_DEREGISTER(c->vg_id);
#endif
    if (c->kind != PR__CORO_MMAP) return;
    if (c->size_key == pr_coro_stack_size() && pool->count < PR__CORO_POOL_MAX) {
        c->pool_next = pool->head;
        c->pool_trimmed = 0;
        pool->head = c;
        pool->count++;
        if (++pool->returned >= PR__CORO_TRIM_BATCH) pr__coro_stack_trim(pool);
        return;
    }
    pr__coro_stack_unmap(c);
}

#ifdef PRISTINE_TESTING
static PR__MAYBE_UNUSED size_t pr__coro_test_live_stacks(void) {
    return __atomic_load_n(&pr__coro_stack_live, __ATOMIC_RELAXED);
}

/* Stacks in this thread's pool. */
static PR__MAYBE_UNUSED int pr__coro_test_pool_count(void) { return pr__coro_stack_pool_tls.count; }
#endif
