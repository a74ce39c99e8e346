/* coro: context switch, stacks (guard, canary, caller memory, pool), stack sizes.
   The tests drive pr__coro_* directly from the test task, with a pr__coro of
   their own for the task's side (pr__coro_init_main works on any running
   context), and destroy what they create. */

/* ---- helpers ---- */

static int coro_t_child_exit_code(void (*fn)(void)) {
    int status;
    pid_t pid;
    fflush(NULL);
    pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        struct rlimit no_core = { 0, 0 };
        int fd = open("/dev/null", O_WRONLY);
        setrlimit(RLIMIT_CORE, &no_core);
        if (fd >= 0) dup2(fd, 2); /* the child's abort message is expected noise */
        fn();
        _exit(0);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 1000 + WTERMSIG(status);
}

static void coro_t_quiet_stderr(void) {
    int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) dup2(fd, 2);
}

/* ---- register preservation: a per-arch helper ----

   coro_t_regs(fn, a, b, io) saves its caller's callee-saved registers and FP
   control, loads every callee-saved GPR, FP register and the FP control word
   from io->in, calls fn(a, b) (the switch itself), and on return stores the
   same registers to io->out before restoring its caller's. Both sides of a
   switch run it with different values, so each side checks that the other
   side's values did not leak in. Slots (one 64-bit word each):
     x86-64:  rbx rbp r12 r13 r14 r15, [6] MXCSR | x87 CW << 32
     aarch64: x19..x28 x29, d8..d15, [19] FPCR
     riscv64: s0..s11, fs0..fs11, [24] fcsr
     arm:     r4..r11 (low word), d8..d15, [16] FPSCR */
typedef struct coro_t_io {
    uint64_t in[32];
    uint64_t out[32];
} coro_t_io;

#if defined(__x86_64__) && defined(__ELF__) && !defined(__ILP32__)
#define CORO_T_REGS_ASM 1
#define CORO_T_NGPR 6
#define CORO_T_NFP 0
#define CORO_T_FPCTL 6
__asm__(
    ".pushsection .text\n"
    ".globl coro_t_regs\n.hidden coro_t_regs\n.type coro_t_regs, @function\n"
    ".balign 16\n"
    "coro_t_regs:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  subq $24, %rsp\n"
    "  stmxcsr (%rsp)\n  fnstcw 4(%rsp)\n  movq %rcx, 8(%rsp)\n"
    "  movq %rdi, %rax\n  movq %rsi, %rdi\n  movq %rdx, %rsi\n"
    "  ldmxcsr 48(%rcx)\n  fldcw 52(%rcx)\n"
    "  movq 0(%rcx), %rbx\n  movq 8(%rcx), %rbp\n  movq 16(%rcx), %r12\n"
    "  movq 24(%rcx), %r13\n  movq 32(%rcx), %r14\n  movq 40(%rcx), %r15\n"
    "  callq *%rax\n"
    "  movq 8(%rsp), %rcx\n"
    "  movq %rbx, 256(%rcx)\n  movq %rbp, 264(%rcx)\n  movq %r12, 272(%rcx)\n"
    "  movq %r13, 280(%rcx)\n  movq %r14, 288(%rcx)\n  movq %r15, 296(%rcx)\n"
    "  stmxcsr 304(%rcx)\n  fnstcw 308(%rcx)\n"
    "  ldmxcsr (%rsp)\n  fldcw 4(%rsp)\n"
    "  addq $24, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size coro_t_regs, .-coro_t_regs\n"
    ".popsection\n");
/* MXCSR: all exceptions masked, random rounding, FZ, DAZ; x87: random precision and rounding.
   Valgrind models only the rounding modes. */
static uint64_t coro_t_fpctl(unsigned long long r) {
    uint64_t mxcsr = 0x1f80 | ((r & 3) << 13) | (((r >> 2) & 1) << 15) | (((r >> 3) & 1) << 6);
    uint64_t pc = (r >> 4) % 3 == 0 ? 0 : (r >> 4) % 3 == 1 ? 2 : 3;
    uint64_t cw = 0x037f & ~(uint64_t)0xf00;
#ifdef PR__VALGRIND
    if (RUNNING_ON_VALGRIND) {
        mxcsr = 0x1f80 | ((r & 3) << 13);
        pc = 3;
    }
#endif
    cw |= pc << 8 | ((r >> 6) & 3) << 10;
    return mxcsr | cw << 32;
}
static uint64_t coro_t_fpctl_mask(uint64_t v) { return v & ~(uint64_t)0x3f; } /* MXCSR flags may differ under ucontext */

#elif defined(__aarch64__) && defined(__ELF__) && !defined(__ILP32__)
#define CORO_T_REGS_ASM 1
#define CORO_T_NGPR 11
#define CORO_T_NFP 8
#define CORO_T_FPCTL 19
__asm__(
    ".pushsection .text\n"
    ".globl coro_t_regs\n.hidden coro_t_regs\n.type coro_t_regs, %function\n"
    ".balign 16\n"
    "coro_t_regs:\n"
    "  stp x29, x30, [sp, #-176]!\n"
    "  stp x19, x20, [sp, #16]\n  stp x21, x22, [sp, #32]\n  stp x23, x24, [sp, #48]\n"
    "  stp x25, x26, [sp, #64]\n  stp x27, x28, [sp, #80]\n"
    "  stp d8, d9, [sp, #96]\n  stp d10, d11, [sp, #112]\n  stp d12, d13, [sp, #128]\n  stp d14, d15, [sp, #144]\n"
    "  mrs x9, fpcr\n  stp x9, x3, [sp, #160]\n"
    "  mov x16, x0\n  mov x0, x1\n  mov x1, x2\n"
    "  ldr x9, [x3, #152]\n  msr fpcr, x9\n"
    "  ldp x19, x20, [x3, #0]\n  ldp x21, x22, [x3, #16]\n  ldp x23, x24, [x3, #32]\n"
    "  ldp x25, x26, [x3, #48]\n  ldp x27, x28, [x3, #64]\n  ldr x29, [x3, #80]\n"
    "  ldp d8, d9, [x3, #88]\n  ldp d10, d11, [x3, #104]\n  ldp d12, d13, [x3, #120]\n  ldp d14, d15, [x3, #136]\n"
    "  blr x16\n"
    "  ldr x9, [sp, #168]\n  add x9, x9, #256\n"
    "  stp x19, x20, [x9, #0]\n  stp x21, x22, [x9, #16]\n  stp x23, x24, [x9, #32]\n"
    "  stp x25, x26, [x9, #48]\n  stp x27, x28, [x9, #64]\n  str x29, [x9, #80]\n"
    "  stp d8, d9, [x9, #88]\n  stp d10, d11, [x9, #104]\n  stp d12, d13, [x9, #120]\n  stp d14, d15, [x9, #136]\n"
    "  mrs x10, fpcr\n  str x10, [x9, #152]\n"
    "  ldr x10, [sp, #160]\n  msr fpcr, x10\n"
    "  ldp x19, x20, [sp, #16]\n  ldp x21, x22, [sp, #32]\n  ldp x23, x24, [sp, #48]\n"
    "  ldp x25, x26, [sp, #64]\n  ldp x27, x28, [sp, #80]\n"
    "  ldp d8, d9, [sp, #96]\n  ldp d10, d11, [sp, #112]\n  ldp d12, d13, [sp, #128]\n  ldp d14, d15, [sp, #144]\n"
    "  ldp x29, x30, [sp], #176\n"
    "  ret\n"
    ".size coro_t_regs, .-coro_t_regs\n"
    ".popsection\n");
/* FPCR: random rounding mode, FZ, DN, AHP; no trap enables. */
static uint64_t coro_t_fpctl(unsigned long long r) {
    return ((r & 3) << 22) | (((r >> 2) & 1) << 24) | (((r >> 3) & 1) << 25) | (((r >> 4) & 1) << 26);
}
static uint64_t coro_t_fpctl_mask(uint64_t v) { return v; }

#elif defined(__riscv) && __riscv_xlen == 64 && defined(__riscv_float_abi_double) && defined(__ELF__)
#define CORO_T_REGS_ASM 1
#define CORO_T_NGPR 12
#define CORO_T_NFP 12
#define CORO_T_FPCTL 24
__asm__(
    ".pushsection .text\n"
    ".globl coro_t_regs\n.hidden coro_t_regs\n.type coro_t_regs, @function\n"
    ".balign 16\n"
    "coro_t_regs:\n"
    "  addi sp, sp, -224\n"
    "  sd ra, 0(sp)\n"
    "  sd s0, 8(sp)\n  sd s1, 16(sp)\n  sd s2, 24(sp)\n  sd s3, 32(sp)\n  sd s4, 40(sp)\n  sd s5, 48(sp)\n"
    "  sd s6, 56(sp)\n  sd s7, 64(sp)\n  sd s8, 72(sp)\n  sd s9, 80(sp)\n  sd s10, 88(sp)\n  sd s11, 96(sp)\n"
    "  fsd fs0, 104(sp)\n  fsd fs1, 112(sp)\n  fsd fs2, 120(sp)\n  fsd fs3, 128(sp)\n  fsd fs4, 136(sp)\n"
    "  fsd fs5, 144(sp)\n  fsd fs6, 152(sp)\n  fsd fs7, 160(sp)\n  fsd fs8, 168(sp)\n  fsd fs9, 176(sp)\n"
    "  fsd fs10, 184(sp)\n  fsd fs11, 192(sp)\n"
    "  frcsr t0\n  sd t0, 200(sp)\n  sd a3, 208(sp)\n"
    "  mv t2, a0\n  mv a0, a1\n  mv a1, a2\n"
    "  ld t0, 192(a3)\n  fscsr t0\n"
    "  ld s0, 0(a3)\n  ld s1, 8(a3)\n  ld s2, 16(a3)\n  ld s3, 24(a3)\n  ld s4, 32(a3)\n  ld s5, 40(a3)\n"
    "  ld s6, 48(a3)\n  ld s7, 56(a3)\n  ld s8, 64(a3)\n  ld s9, 72(a3)\n  ld s10, 80(a3)\n  ld s11, 88(a3)\n"
    "  fld fs0, 96(a3)\n  fld fs1, 104(a3)\n  fld fs2, 112(a3)\n  fld fs3, 120(a3)\n  fld fs4, 128(a3)\n"
    "  fld fs5, 136(a3)\n  fld fs6, 144(a3)\n  fld fs7, 152(a3)\n  fld fs8, 160(a3)\n  fld fs9, 168(a3)\n"
    "  fld fs10, 176(a3)\n  fld fs11, 184(a3)\n"
    "  jalr t2\n"
    "  ld t0, 208(sp)\n  addi t0, t0, 256\n"
    "  sd s0, 0(t0)\n  sd s1, 8(t0)\n  sd s2, 16(t0)\n  sd s3, 24(t0)\n  sd s4, 32(t0)\n  sd s5, 40(t0)\n"
    "  sd s6, 48(t0)\n  sd s7, 56(t0)\n  sd s8, 64(t0)\n  sd s9, 72(t0)\n  sd s10, 80(t0)\n  sd s11, 88(t0)\n"
    "  fsd fs0, 96(t0)\n  fsd fs1, 104(t0)\n  fsd fs2, 112(t0)\n  fsd fs3, 120(t0)\n  fsd fs4, 128(t0)\n"
    "  fsd fs5, 136(t0)\n  fsd fs6, 144(t0)\n  fsd fs7, 152(t0)\n  fsd fs8, 160(t0)\n  fsd fs9, 168(t0)\n"
    "  fsd fs10, 176(t0)\n  fsd fs11, 184(t0)\n"
    "  frcsr t1\n  sd t1, 192(t0)\n"
    "  ld t1, 200(sp)\n  fscsr t1\n"
    "  ld ra, 0(sp)\n"
    "  ld s0, 8(sp)\n  ld s1, 16(sp)\n  ld s2, 24(sp)\n  ld s3, 32(sp)\n  ld s4, 40(sp)\n  ld s5, 48(sp)\n"
    "  ld s6, 56(sp)\n  ld s7, 64(sp)\n  ld s8, 72(sp)\n  ld s9, 80(sp)\n  ld s10, 88(sp)\n  ld s11, 96(sp)\n"
    "  fld fs0, 104(sp)\n  fld fs1, 112(sp)\n  fld fs2, 120(sp)\n  fld fs3, 128(sp)\n  fld fs4, 136(sp)\n"
    "  fld fs5, 144(sp)\n  fld fs6, 152(sp)\n  fld fs7, 160(sp)\n  fld fs8, 168(sp)\n  fld fs9, 176(sp)\n"
    "  fld fs10, 184(sp)\n  fld fs11, 192(sp)\n"
    "  addi sp, sp, 224\n"
    "  ret\n"
    ".size coro_t_regs, .-coro_t_regs\n"
    ".popsection\n");
/* fcsr: random rounding mode (0..4) and accrued flags. */
static uint64_t coro_t_fpctl(unsigned long long r) { return ((r % 5) << 5) | ((r >> 3) & 0x1f); }
static uint64_t coro_t_fpctl_mask(uint64_t v) { return v; }

#elif defined(__arm__) && defined(__ARM_PCS_VFP) && defined(__ARM_ARCH_ISA_ARM) && defined(__ELF__)
#define CORO_T_REGS_ASM 1
#define CORO_T_NGPR 8
#define CORO_T_NFP 8
#define CORO_T_FPCTL 16
#if defined(__thumb__)
#define CORO_T_ARM_MODE ".thumb\n.thumb_func\n"
#else
#define CORO_T_ARM_MODE ".arm\n"
#endif
__asm__(
    ".pushsection .text\n"
    ".syntax unified\n"
    ".balign 16\n"
    ".globl coro_t_regs\n.hidden coro_t_regs\n"
    CORO_T_ARM_MODE
    ".type coro_t_regs, %function\n"
    "coro_t_regs:\n"
    "  push {r3-r11, lr}\n"
    "  vpush {d8-d15}\n"
    "  sub sp, sp, #8\n"
    "  vmrs r12, fpscr\n  str r12, [sp]\n"
    "  mov r12, r0\n  mov r0, r1\n  mov r1, r2\n"
    "  ldr r2, [r3, #128]\n  vmsr fpscr, r2\n"
    "  vldr d8, [r3, #64]\n  vldr d9, [r3, #72]\n  vldr d10, [r3, #80]\n  vldr d11, [r3, #88]\n"
    "  vldr d12, [r3, #96]\n  vldr d13, [r3, #104]\n  vldr d14, [r3, #112]\n  vldr d15, [r3, #120]\n"
    "  ldr r4, [r3, #0]\n  ldr r5, [r3, #8]\n  ldr r6, [r3, #16]\n  ldr r7, [r3, #24]\n"
    "  ldr r8, [r3, #32]\n  ldr r9, [r3, #40]\n  ldr r10, [r3, #48]\n  ldr r11, [r3, #56]\n"
    "  blx r12\n"
    "  ldr r3, [sp, #72]\n  add r3, r3, #256\n"
    "  str r4, [r3, #0]\n  str r5, [r3, #8]\n  str r6, [r3, #16]\n  str r7, [r3, #24]\n"
    "  str r8, [r3, #32]\n  str r9, [r3, #40]\n  str r10, [r3, #48]\n  str r11, [r3, #56]\n"
    "  vstr d8, [r3, #64]\n  vstr d9, [r3, #72]\n  vstr d10, [r3, #80]\n  vstr d11, [r3, #88]\n"
    "  vstr d12, [r3, #96]\n  vstr d13, [r3, #104]\n  vstr d14, [r3, #112]\n  vstr d15, [r3, #120]\n"
    "  vmrs r12, fpscr\n  str r12, [r3, #128]\n"
    "  ldr r12, [sp]\n  vmsr fpscr, r12\n"
    "  add sp, sp, #8\n"
    "  vpop {d8-d15}\n"
    "  pop {r3-r11, pc}\n"
    ".size coro_t_regs, .-coro_t_regs\n"
    ".popsection\n");
/* FPSCR: random rounding mode, FZ, DN, AHP, flags and NZCV; no traps, no vector length. */
static uint64_t coro_t_fpctl(unsigned long long r) {
    return ((r & 3) << 22) | (((r >> 2) & 1) << 24) | (((r >> 3) & 1) << 25) | (((r >> 4) & 1) << 26) |
           ((r >> 5) & 0x1f) | (((r >> 10) & 0xf) << 28);
}
static uint64_t coro_t_fpctl_mask(uint64_t v) { return v; }
#endif

#ifdef CORO_T_REGS_ASM
extern void coro_t_regs(void (*fn)(void **, void *), void **a, void *b, coro_t_io *io);

static pr__coro coro_t_rmain, *coro_t_rco;
static void (*coro_t_rswap)(void **, void *);
static coro_t_io coro_t_io_co[2];
static int coro_t_co_rounds, coro_t_co_bad;
#if !defined(PR__BASE_CORO_UCONTEXT) && PR__CORO_FP
static uint64_t coro_t_co_first_fpctl;
#endif

#ifdef PR__BASE_CORO_UCONTEXT
/* Under ucontext the "switch" the helper calls is swapcontext; a and b are the records. */
static void coro_t_ucswap(void **a, void *b) {
    pr__coro *from = (pr__coro *)(void *)a, *to = (pr__coro *)b;
    swapcontext(&from->uc, &to->uc);
}
#endif

static void coro_t_fill(coro_t_io *io, uint64_t fpctl) {
    int i;
    memset(io, 0, sizeof *io);
    for (i = 0; i < CORO_T_NGPR + CORO_T_NFP; i++) io->in[i] = (uint64_t)pt_rand();
#if defined(__arm__)
    for (i = 0; i < CORO_T_NGPR; i++) io->in[i] &= 0xffffffffu;
#endif
    io->in[CORO_T_FPCTL] = fpctl;
}

static int coro_t_io_ok(const coro_t_io *io) {
    int i;
    for (i = 0; i < CORO_T_NGPR + CORO_T_NFP; i++)
        if (io->in[i] != io->out[i]) return 0;
    return coro_t_fpctl_mask(io->in[CORO_T_FPCTL]) == coro_t_fpctl_mask(io->out[CORO_T_FPCTL]);
}

static void coro_t_regs_call(pr__coro *from, pr__coro *to, coro_t_io *io) {
    pr__coro_asan_before(from, to, 0);
#ifdef PR__BASE_CORO_UCONTEXT
    coro_t_regs(coro_t_rswap, (void **)(void *)from, to, io);
#else
    coro_t_regs(coro_t_rswap, &from->sp, to->sp, io);
#endif
    pr__coro_asan_after(from, 0);
}

/* The coroutine side: switch back with its own register values, check them when resumed. */
static void coro_t_regs_co(void *arg) {
    int k = 0;
    PR__UNUSED(arg);
#if !defined(PR__BASE_CORO_UCONTEXT) && PR__CORO_FP
    coro_t_co_first_fpctl = pr__coro_fp_control();
#endif
    for (;;) {
        coro_t_io *io = &coro_t_io_co[k];
        coro_t_regs_call(coro_t_rco, &coro_t_rmain, io);
        if (!coro_t_io_ok(io)) coro_t_co_bad++;
        coro_t_co_rounds++;
        k ^= 1;
    }
}
#endif

PT_TEST(coro_switch_preserves_registers_and_fp_control) {
#ifndef CORO_T_REGS_ASM
    PT_SKIP("no register helper for this architecture");
#else
    coro_t_io io;
    int round, i;
    uint64_t fpa, fpb;
#if !PR__CORO_FP && !defined(PR__BASE_CORO_UCONTEXT)
    uint64_t nofp;
#endif
#if !defined(PR__BASE_CORO_UCONTEXT) && PR__CORO_FP
    uint64_t creator_fpctl = pr__coro_fp_control();
#endif
#ifdef PR__BASE_CORO_UCONTEXT
    coro_t_rswap = coro_t_ucswap;
#else
    coro_t_rswap = pr__coro_swap;
#endif
    coro_t_co_rounds = coro_t_co_bad = 0;
#if !PR__CORO_FP && !defined(PR__BASE_CORO_UCONTEXT)
    nofp = coro_t_fpctl(pt_rand()); /* the control words are not part of a context in this build */
#endif
    pr__coro_init_main(&coro_t_rmain);
    PT_EQ_ERR(pr__coro_create(&coro_t_rco, NULL, 0, 0, NULL, 0, coro_t_regs_co, NULL), PR_OK);
    PT_REQUIRE(coro_t_rco != NULL);
    for (round = 0; round < 64; round++) {
        do {
            fpa = coro_t_fpctl(pt_rand());
            fpb = coro_t_fpctl(pt_rand());
        } while (coro_t_fpctl_mask(fpa) == coro_t_fpctl_mask(fpb));
#if !PR__CORO_FP && !defined(PR__BASE_CORO_UCONTEXT)
        fpa = fpb = nofp;
#endif
        coro_t_fill(&io, fpa);
        coro_t_fill(&coro_t_io_co[round & 1], fpb);
        /* the coroutine's next values must differ from this side's in every slot */
        for (i = 0; i < CORO_T_NGPR + CORO_T_NFP; i++)
            if (coro_t_io_co[round & 1].in[i] == io.in[i]) coro_t_io_co[round & 1].in[i] = ~io.in[i];
        coro_t_regs_call(&coro_t_rmain, coro_t_rco, &io);
        if (!coro_t_io_ok(&io)) {
            for (i = 0; i < CORO_T_NGPR + CORO_T_NFP + 1; i++) {
                int slot = i < CORO_T_NGPR + CORO_T_NFP ? i : CORO_T_FPCTL;
                if (io.in[slot] != io.out[slot])
                    pt_fail(__FILE__, __LINE__, "round %d slot %d: got %#llx, want %#llx", round, slot,
                            (unsigned long long)io.out[slot], (unsigned long long)io.in[slot]);
            }
            break;
        }
    }
    /* the coroutine checks its side when resumed: every round but the last */
    if (round == 64) PT_EQ_INT(coro_t_co_rounds, round - 1);
    PT_EQ_INT(coro_t_co_bad, 0);
#if !defined(PR__BASE_CORO_UCONTEXT) && PR__CORO_FP
    PT_EQ_INT(coro_t_fpctl_mask(coro_t_co_first_fpctl), coro_t_fpctl_mask(creator_fpctl));
#endif
    pr__coro_destroy(coro_t_rco);
    pr__coro_pool_drain();
#endif
}

/* ---- switching: ping-pong and register pressure in C ---- */

#define CORO_T_RING 4
static pr__coro coro_t_pmain, *coro_t_ring[CORO_T_RING];
static unsigned long coro_t_token;
static long coro_t_hops[CORO_T_RING];
static int coro_t_ring_left;

static void coro_t_ring_fn(void *arg) {
    int me = (int)(intptr_t)arg;
    for (;;) {
        coro_t_token = coro_t_token * 31 + (unsigned long)me + 1;
        coro_t_hops[me]++;
        if (me == CORO_T_RING - 1 && --coro_t_ring_left == 0)
            pr__coro_switch(coro_t_ring[me], &coro_t_pmain);
        else
            pr__coro_switch(coro_t_ring[me], coro_t_ring[(me + 1) % CORO_T_RING]);
    }
}

PT_TEST(coro_ping_pong_ring) {
    int i, laps = 25000;
    unsigned long want = 0;
    pr__coro_init_main(&coro_t_pmain);
    for (i = 0; i < CORO_T_RING; i++) {
        coro_t_hops[i] = 0;
        PT_EQ_ERR(pr__coro_create(&coro_t_ring[i], NULL, 0, 0, NULL, 0, coro_t_ring_fn, (void *)(intptr_t)i), PR_OK);
        PT_REQUIRE(coro_t_ring[i] != NULL);
    }
    coro_t_token = 0;
    coro_t_ring_left = laps / 2;
    pr__coro_switch(&coro_t_pmain, coro_t_ring[0]);
    coro_t_ring_left = laps - laps / 2; /* a second run resumes where the ring stopped */
    pr__coro_switch(&coro_t_pmain, coro_t_ring[0]);
    for (i = 0; i < laps * CORO_T_RING; i++) want = want * 31 + (unsigned long)(i % CORO_T_RING) + 1;
    PT_CHECK(coro_t_token == want);
    for (i = 0; i < CORO_T_RING; i++) PT_EQ_INT(coro_t_hops[i], laps);
    for (i = 0; i < CORO_T_RING; i++) pr__coro_destroy(coro_t_ring[i]);
}

/* Many live values across a switch, so the compiler keeps them in every callee-saved register. */
static pr__coro coro_t_kmain, *coro_t_kco;
static volatile uint64_t coro_t_seed = 0x243f6a8885a308d3ull;
static int coro_t_kbad;

static uint64_t coro_t_pressure(pr__coro *from, pr__coro *to, uint64_t s) {
    uint64_t a = s ^ coro_t_seed, b = a * 3, c = a * 5, d = a * 7, e = a * 11, f = a * 13, g = a * 17, h = a * 19;
    uint64_t i = a * 23, j = a * 29, k = a * 31, l = a * 37, m = a * 41, n = a * 43;
    double x = (double)(a >> 11), y = x * 1.5, z = x * 2.5, w = x * 3.5, u = x / 3.0, v = x / 7.0, q = x + 0.25;
    uint64_t before = a + b + c + d + e + f + g + h + i + j + k + l + m + n, after;
    double fbefore = x + y + z + w + u + v + q, fafter;
    pr__coro_switch(from, to);
    after = a + b + c + d + e + f + g + h + i + j + k + l + m + n;
    fafter = x + y + z + w + u + v + q;
    if (after != before || fafter != fbefore) coro_t_kbad++;
    return (a ^ b ^ c ^ d ^ e ^ f ^ g ^ h ^ i ^ j ^ k ^ l ^ m ^ n) + (uint64_t)(x + y + z + w + u + v + q);
}

static void coro_t_pressure_fn(void *arg) {
    uint64_t s = 99;
    PR__UNUSED(arg);
    for (;;) s += coro_t_pressure(coro_t_kco, &coro_t_kmain, s);
}

PT_TEST(coro_switch_under_register_pressure) {
    uint64_t s = 1;
    int i;
    coro_t_kbad = 0;
    pr__coro_init_main(&coro_t_kmain);
    PT_EQ_ERR(pr__coro_create(&coro_t_kco, NULL, 0, 0, NULL, 0, coro_t_pressure_fn, NULL), PR_OK);
    PT_REQUIRE(coro_t_kco != NULL);
    for (i = 0; i < 1000; i++) s += coro_t_pressure(&coro_t_kmain, coro_t_kco, s);
    PT_EQ_INT(coro_t_kbad, 0);
    PT_CHECK(s != 0);
    pr__coro_destroy(coro_t_kco);
}

/* ---- stacks ---- */

static pr__coro coro_t_smain, *coro_t_sco;
static size_t coro_t_want_depth; /* bytes of stack to use */
static size_t coro_t_used;
static int (*volatile coro_t_recurse_p)(char *, int);

static int coro_t_recurse(char *top, int n) {
    volatile char buf[256];
    size_t used = (size_t)((uintptr_t)top - (uintptr_t)__builtin_frame_address(0));
    buf[0] = (char)n;
    buf[255] = (char)(n >> 8);
    if (used > coro_t_used) coro_t_used = used;
    if (used >= coro_t_want_depth) return buf[0];
    return coro_t_recurse_p(top, n + 1) + buf[255];
}

static void coro_t_deep_fn(void *arg) {
    PR__UNUSED(arg);
    for (;;) {
        coro_t_recurse_p = coro_t_recurse;
        coro_t_recurse_p(coro_t_sco->hi, 0);
        pr__coro_switch(coro_t_sco, &coro_t_smain);
    }
}

PT_TEST(coro_deep_recursion_within_limit) {
    void *extra;
    unsigned char *x;
    size_t i;
    int bad = 0;
    pr__coro_init_main(&coro_t_smain);
    PT_EQ_ERR(pr__coro_create(&coro_t_sco, &extra, 200, 0, NULL, 0, coro_t_deep_fn, NULL), PR_OK);
    PT_REQUIRE(coro_t_sco != NULL && extra != NULL);
    PT_CHECK(coro_t_sco->guarded);
    PT_EQ_INT(coro_t_sco->size_key, 65536);
    x = (unsigned char *)extra;
    for (i = 0; i < 200; i++) x[i] = (unsigned char)(i * 7);
    coro_t_want_depth = 48 * 1024;
    coro_t_used = 0;
    pr__coro_switch(&coro_t_smain, coro_t_sco);
    PT_CHECK(coro_t_used >= 48 * 1024);
    PT_CHECK(coro_t_used < (size_t)(coro_t_sco->hi - coro_t_sco->lo));
    for (i = 0; i < 200; i++) bad += x[i] != (unsigned char)(i * 7);
    PT_EQ_INT(bad, 0);
    pr__coro_destroy(coro_t_sco);
}

/* Guard page: recurse without limit in a forked child; the SIGSEGV handler, on an alternate
   stack, exits 42 if the fault address is inside the guard page. */
static char coro_t_altstack[64 * 1024];
static volatile uintptr_t coro_t_guard_lo, coro_t_guard_hi;

static void coro_t_segv(int sig, siginfo_t *si, void *ctx) {
    uintptr_t a = (uintptr_t)si->si_addr;
    PR__UNUSED(sig);
    PR__UNUSED(ctx);
    _exit(a >= coro_t_guard_lo && a < coro_t_guard_hi ? 42 : 43);
}

static void coro_t_overflow_fn(void *arg) {
    PR__UNUSED(arg);
    coro_t_want_depth = (size_t)-1;
    coro_t_recurse_p = coro_t_recurse;
    coro_t_recurse_p(coro_t_sco->hi, 0);
    _exit(44);
}

static void coro_t_guard_child(void) {
    stack_t ss;
    struct sigaction sa;
    coro_t_quiet_stderr();
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = coro_t_altstack;
    ss.ss_size = sizeof coro_t_altstack;
    if (sigaltstack(&ss, NULL) != 0) _exit(45);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = coro_t_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0) _exit(46);
    pr__coro_init_main(&coro_t_smain);
    if (pr__coro_create(&coro_t_sco, NULL, 0, 0, NULL, 0, coro_t_overflow_fn, NULL) != PR_OK) _exit(47);
    if (!coro_t_sco->guarded) _exit(48);
    coro_t_guard_lo = (uintptr_t)coro_t_sco->map;
    coro_t_guard_hi = coro_t_guard_lo + pr__coro_stack_page();
    pr__coro_switch(&coro_t_smain, coro_t_sco);
    _exit(49);
}

PT_TEST(coro_guard_page_overflow_is_clean_segv) {
    PT_EQ_INT(coro_t_child_exit_code(coro_t_guard_child), 42);
}

/* Canary fallback: the guarded path is refused, the stack gets a canary instead. */
static int coro_t_smash;

static void coro_t_canary_fn(void *arg) {
    PR__UNUSED(arg);
    for (;;) {
        if (coro_t_smash) {
            volatile uint64_t *low = (volatile uint64_t *)(void *)(coro_t_sco->lo - 8);
            *low = (uint64_t)(uintptr_t)&coro_t_canary_fn; /* a deep overflow writes return addresses there */
        }
        pr__coro_switch(coro_t_sco, &coro_t_smain);
    }
}

static void coro_t_canary_child(void) {
    coro_t_quiet_stderr();
    pr__coro_test_fail_guard = 1;
    pr__coro_init_main(&coro_t_smain);
    if (pr__coro_create(&coro_t_sco, NULL, 0, 0, NULL, 0, coro_t_canary_fn, NULL) != PR_OK) _exit(50);
    if (coro_t_sco->guarded) _exit(51);
    coro_t_smash = 0;
    pr__coro_switch(&coro_t_smain, coro_t_sco);
    coro_t_smash = 1;
    pr__coro_switch(&coro_t_smain, coro_t_sco); /* the coroutine's switch back must abort */
    _exit(52);
}

PT_TEST(coro_canary_fallback) {
    size_t live0;
    int i, sig = 0;
    pr__coro_pool_drain();
    live0 = pr__coro_test_live_stacks();
    pr__coro_test_fail_guard = 1;
    pr__coro_init_main(&coro_t_smain);
    PT_EQ_ERR(pr__coro_create(&coro_t_sco, NULL, 0, 0, NULL, 0, coro_t_canary_fn, NULL), PR_OK);
    pr__coro_test_fail_guard = 0;
    PT_REQUIRE(coro_t_sco != NULL);
    PT_CHECK(!coro_t_sco->guarded);
    PT_CHECK(coro_t_sco->canary != &coro_t_sco->self_canary);
    PT_CHECK((const char *)coro_t_sco->canary < coro_t_sco->lo);
    PT_CHECK(__atomic_load_n(&pr__coro_stack_fallback_logged, __ATOMIC_RELAXED) == 1);
    PT_EQ_INT(pr__coro_test_live_stacks(), live0 + 1);
    coro_t_smash = 0;
    for (i = 0; i < 100; i++) pr__coro_switch(&coro_t_smain, coro_t_sco);
    PT_CHECK(pr__coro_stack_canary_intact(coro_t_sco));
    pr__coro_destroy(coro_t_sco);
    pr__coro_pool_drain(); /* no unguarded stack may outlive this test in the pool */
    PT_EQ_INT(pr__coro_test_live_stacks(), live0);
    /* a smashed canary aborts at the next switch away */
    PT_EQ_INT(pt_child_exits_by_signal(coro_t_canary_child, &sig), 1);
    PT_EQ_INT(sig, SIGABRT);
}

/* Caller-provided memory: no mapping, a canary, records carved from its top. */
static union { char bytes[40000]; uint64_t align; } coro_t_mem;

PT_TEST(coro_caller_memory) {
    size_t live0 = pr__coro_test_live_stacks();
    char *mem = coro_t_mem.bytes + 3; /* deliberately misaligned */
    size_t size = sizeof coro_t_mem.bytes - 3;
    void *extra;
    pr__coro_init_main(&coro_t_smain);
    PT_EQ_ERR(pr__coro_create(&coro_t_sco, &extra, 64, 0, coro_t_mem.bytes, 1000, coro_t_deep_fn, NULL), PR_EINVAL);
    PT_CHECK(coro_t_sco == NULL);
    PT_EQ_ERR(pr__coro_create(&coro_t_sco, &extra, 64, 0, mem, size, coro_t_deep_fn, NULL), PR_OK);
    PT_REQUIRE(coro_t_sco != NULL);
    PT_EQ_INT(pr__coro_test_live_stacks(), live0);
    PT_CHECK((char *)coro_t_sco > mem && (char *)coro_t_sco < mem + size);
    PT_CHECK((char *)extra >= mem && (char *)extra < (char *)coro_t_sco);
    PT_EQ_INT((uintptr_t)extra % 16, 0);
    PT_CHECK(coro_t_sco->lo >= mem && coro_t_sco->hi <= (char *)extra);
    PT_CHECK(!coro_t_sco->guarded);
    coro_t_want_depth = 24 * 1024;
    coro_t_used = 0;
    pr__coro_switch(&coro_t_smain, coro_t_sco);
    pr__coro_switch(&coro_t_smain, coro_t_sco);
    PT_CHECK(coro_t_used >= 24 * 1024);
    PT_CHECK(pr__coro_stack_canary_intact(coro_t_sco));
    pr__coro_destroy(coro_t_sco);
    PT_EQ_INT(pr__coro_test_live_stacks(), live0);
}

PT_TEST(coro_stack_size_validation) {
    size_t page = pr__coro_stack_page();
    PT_EQ_INT(pr_coro_stack_size(), 65536);
    PT_EQ_ERR(pr_coro_set_stack_size(0), PR_EINVAL);
    PT_EQ_ERR(pr_coro_set_stack_size(16 * 1024 - 1), PR_EINVAL);
    PT_EQ_ERR(pr_coro_set_stack_size((size_t)1024 * 1024 * 1024 + 1), PR_EINVAL);
    PT_EQ_INT(pr_coro_stack_size(), 65536);
    PT_EQ_ERR(pr_coro_set_stack_size(16 * 1024), PR_OK);
    PT_EQ_INT(pr_coro_stack_size(), (16 * 1024 + page - 1) / page * page);
    PT_EQ_ERR(pr_coro_set_stack_size(16 * 1024 + 1), PR_OK);
    PT_EQ_INT(pr_coro_stack_size(), (16 * 1024 + 1 + page - 1) / page * page);
    PT_EQ_ERR(pr_coro_set_stack_size((size_t)1024 * 1024 * 1024), PR_OK);
    PT_EQ_INT(pr_coro_stack_size(), (size_t)1024 * 1024 * 1024);
    PT_EQ_ERR(pr_coro_set_stack_size(65536), PR_OK);
    PT_EQ_INT(pr_coro_stack_size(), 65536);
}

PT_TEST(coro_stack_sizes_per_spawn_and_runtime) {
    size_t live0, page = pr__coro_stack_page();
    pr__coro *c = NULL;
    pr__coro_pool_drain();
    live0 = pr__coro_test_live_stacks();
    pr__coro_init_main(&coro_t_smain);
    PT_EQ_ERR(pr__coro_create(&c, NULL, 0, 1000, NULL, 0, coro_t_deep_fn, NULL), PR_EINVAL);
    PT_EQ_ERR(pr__coro_create(&c, NULL, 0, (size_t)2048 * 1024 * 1024, NULL, 0, coro_t_deep_fn, NULL), PR_EINVAL);
    PT_EQ_ERR(pr__coro_create(&c, NULL, 100000, 16 * 1024, NULL, 0, coro_t_deep_fn, NULL), PR_EINVAL);
    PT_CHECK(c == NULL);
    /* per spawn: 256 KiB, and 200 KiB of it used */
    PT_EQ_ERR(pr__coro_create(&coro_t_sco, NULL, 0, 256 * 1024, NULL, 0, coro_t_deep_fn, NULL), PR_OK);
    PT_REQUIRE(coro_t_sco != NULL);
    PT_EQ_INT(coro_t_sco->size_key, 256 * 1024);
    PT_EQ_INT(coro_t_sco->map_size, 256 * 1024 + page);
    PT_CHECK((size_t)(coro_t_sco->hi - coro_t_sco->lo) > 256 * 1024 - page);
    coro_t_want_depth = 200 * 1024;
    coro_t_used = 0;
    pr__coro_switch(&coro_t_smain, coro_t_sco);
    PT_CHECK(coro_t_used >= 200 * 1024);
    pr__coro_destroy(coro_t_sco); /* not the default size: unmapped, not pooled */
    PT_EQ_INT(pr__coro_test_live_stacks(), live0);
    PT_EQ_INT(pr__coro_test_pool_count(), 0);
    /* at run time: the default becomes 32 KiB */
    PT_EQ_ERR(pr_coro_set_stack_size(32 * 1024), PR_OK);
    PT_EQ_ERR(pr__coro_create(&coro_t_sco, NULL, 0, 0, NULL, 0, coro_t_deep_fn, NULL), PR_OK);
    PT_EQ_ERR(pr_coro_set_stack_size(65536), PR_OK);
    PT_REQUIRE(coro_t_sco != NULL);
    PT_EQ_INT(coro_t_sco->size_key, (32 * 1024 + page - 1) / page * page);
    coro_t_want_depth = 20 * 1024;
    coro_t_used = 0;
    pr__coro_switch(&coro_t_smain, coro_t_sco);
    PT_CHECK(coro_t_used >= 20 * 1024);
    pr__coro_destroy(coro_t_sco); /* the default changed back: unmapped */
    PT_EQ_INT(pr__coro_test_live_stacks(), live0);
    PT_EQ_INT(pr__coro_test_pool_count(), 0);
}

static void coro_t_idle_fn(void *arg) {
    PR__UNUSED(arg);
    pr__coro_fatal("coro_t_idle_fn ran");
}

PT_TEST(coro_pool_reuses_mapping_and_zeroes_extra) {
    pr__coro *a = NULL, *b = NULL;
    void *ea, *eb;
    size_t live0;
    pr__coro_pool_drain();
    live0 = pr__coro_test_live_stacks();
    PT_EQ_ERR(pr__coro_create(&a, &ea, 3000, 0, NULL, 0, coro_t_idle_fn, NULL), PR_OK);
    PT_REQUIRE(a != NULL && ea != NULL);
    PT_EQ_INT((uintptr_t)ea % 16, 0);
    memset(ea, 0xab, 3000);
    pr__coro_destroy(a);
    PT_EQ_INT(pr__coro_test_pool_count(), 1);
    PT_EQ_INT(pr__coro_test_live_stacks(), live0 + 1);
    PT_EQ_ERR(pr__coro_create(&b, &eb, 3000, 0, NULL, 0, coro_t_idle_fn, NULL), PR_OK);
    PT_REQUIRE(b != NULL);
    PT_CHECK(b == a); /* same mapping, same place at its top */
    PT_CHECK(eb == ea);
    PT_EQ_INT(pr__coro_test_pool_count(), 0);
    PT_EQ_INT(pr__coro_test_live_stacks(), live0 + 1);
    PT_CHECK(((unsigned char *)eb)[0] == 0 && ((unsigned char *)eb)[2999] == 0);
    pr__coro_destroy(b);
    pr__coro_pool_drain();
    PT_EQ_INT(pr__coro_test_live_stacks(), live0);
}

/* Does madvise(MADV_DONTNEED) give zero pages back here? (Some emulators ignore it.) */
static int coro_t_dontneed_works(void) {
    size_t page = pr__coro_stack_page();
    char *p = (char *)mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int ok;
    if (p == MAP_FAILED) return 0;
    p[0] = 1;
    ok = madvise(p, page, MADV_DONTNEED) == 0 && ((volatile char *)p)[0] == 0;
    munmap(p, page);
    return ok;
}

PT_TEST(coro_pool_bound_and_trim) {
    enum { N = 70 };
    static pr__coro *cs[N];
    size_t live0, trims0, trimmed0;
    int i, touched_zero = 1;
    char *probe;
    pr__coro_pool_drain();
    live0 = pr__coro_test_live_stacks();
    trims0 = __atomic_load_n(&pr__coro_test_trims, __ATOMIC_RELAXED);
    trimmed0 = __atomic_load_n(&pr__coro_test_trimmed, __ATOMIC_RELAXED);
    pr__coro_test_trim_ns = 0; /* every look is a trim pass */
    for (i = 0; i < N; i++) {
        PT_EQ_ERR(pr__coro_create(&cs[i], NULL, 0, 0, NULL, 0, coro_t_idle_fn, NULL), PR_OK);
        PT_REQUIRE(cs[i] != NULL);
    }
    PT_EQ_INT(pr__coro_test_live_stacks(), live0 + N);
    /* dirty the low end of the first stack; the trim must give it back */
    probe = cs[0]->lo + 100;
    memset(probe, 0x5a, 4096);
    for (i = 0; i < N; i++) pr__coro_destroy(cs[i]);
    pr__coro_test_trim_ns = -1;
    PT_EQ_INT(pr__coro_test_pool_count(), PR__CORO_POOL_MAX);
    PT_EQ_INT(pr__coro_test_live_stacks(), live0 + PR__CORO_POOL_MAX);
    PT_EQ_INT(__atomic_load_n(&pr__coro_test_trims, __ATOMIC_RELAXED) - trims0, PR__CORO_POOL_MAX / PR__CORO_TRIM_BATCH);
    /* a stack is trimmed by the first pass after a whole interval in the pool: all batches but the last */
    PT_EQ_INT(__atomic_load_n(&pr__coro_test_trimmed, __ATOMIC_RELAXED) - trimmed0,
              PR__CORO_POOL_MAX - PR__CORO_TRIM_BATCH);
    if (coro_t_dontneed_works())
        for (i = 0; i < 4096; i++) touched_zero &= probe[i] == 0;
    PT_CHECK(touched_zero);
    pr__coro_pool_drain();
    PT_EQ_INT(pr__coro_test_pool_count(), 0);
    PT_EQ_INT(pr__coro_test_live_stacks(), live0);
}

/* Steady churn trims nothing: every stack is handed out again well within an interval. */
PT_TEST(coro_pool_churn_is_not_trimmed) {
    enum { K = 24 };
    pr__coro *cs[K];
    size_t trimmed0, live0;
    int round, i;
    pr__coro_pool_drain();
    live0 = pr__coro_test_live_stacks();
    trimmed0 = __atomic_load_n(&pr__coro_test_trimmed, __ATOMIC_RELAXED);
    pr__coro_test_trim_ns = (int64_t)60 * 1000000000; /* the default (1 s) is too short for slow emulators */
    for (round = 0; round < 20; round++) {
        for (i = 0; i < K; i++) {
            PT_EQ_ERR(pr__coro_create(&cs[i], NULL, 0, 0, NULL, 0, coro_t_idle_fn, NULL), PR_OK);
            PT_REQUIRE(cs[i] != NULL);
        }
        for (i = 0; i < K; i++) pr__coro_destroy(cs[i]);
    }
    pr__coro_test_trim_ns = -1;
    PT_EQ_INT(__atomic_load_n(&pr__coro_test_trimmed, __ATOMIC_RELAXED) - trimmed0, 0);
    PT_EQ_INT(pr__coro_test_live_stacks(), live0 + K);
    pr__coro_pool_drain();
    PT_EQ_INT(pr__coro_test_live_stacks(), live0);
}

static void coro_t_return_fn(void *arg) { PR__UNUSED(arg); }

static void coro_t_return_child(void) {
    pr__coro_init_main(&coro_t_smain);
    if (pr__coro_create(&coro_t_sco, NULL, 0, 0, NULL, 0, coro_t_return_fn, NULL) != PR_OK) _exit(60);
    pr__coro_switch(&coro_t_smain, coro_t_sco);
    _exit(61);
}

PT_TEST(coro_entry_return_aborts) {
    PT_EQ_INT(coro_t_child_exit_code(coro_t_return_child), 1000 + SIGABRT);
}

const pt_suite pt_suite_coro = { "coro", {
    PT_ENTRY(coro_switch_preserves_registers_and_fp_control),
    PT_ENTRY(coro_ping_pong_ring),
    PT_ENTRY(coro_switch_under_register_pressure),
    PT_ENTRY(coro_deep_recursion_within_limit),
    PT_ENTRY(coro_guard_page_overflow_is_clean_segv),
    PT_ENTRY(coro_canary_fallback),
    PT_ENTRY(coro_caller_memory),
    PT_ENTRY(coro_stack_size_validation),
    PT_ENTRY(coro_stack_sizes_per_spawn_and_runtime),
    PT_ENTRY(coro_pool_reuses_mapping_and_zeroes_extra),
    PT_ENTRY(coro_pool_bound_and_trim),
    PT_ENTRY(coro_pool_churn_is_not_trimmed),
    PT_ENTRY(coro_entry_return_aborts),
    {0, 0} } };
