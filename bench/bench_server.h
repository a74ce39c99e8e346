/* bench_server.h - build/testserver (tools/testserver.c built standalone)
   in a child process for the benchmarks; never a fork of the benchmark
   itself, whose scheduler's poller would then be shared. */
#ifndef BENCH_SERVER_H
#define BENCH_SERVER_H
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Start it with the extra arguments (NULL-terminated, at most 8); returns
   its port (<= 0 on failure), *pid its pid. */
static inline int bf_server_args(pid_t *pid, const char *const *extra) {
    const char *argv[20] = { "testserver", "--lifetime", "600000", "--idle", "600000", "--backlog", "512" };
    int fds[2], i, k = 7;
    char line[32];
    ssize_t n;
    size_t len = 0;
    for (i = 0; extra && extra[i] && i < 8; i++) argv[k++] = extra[i];
    argv[k] = NULL;
    if (pipe(fds) != 0) return -1;
    *pid = fork();
    if (*pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execv("build/testserver", (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    while (len + 1 < sizeof line && (n = read(fds[0], line + len, sizeof line - 1 - len)) > 0) {
        len += (size_t)n;
        if (memchr(line, '\n', len)) break;
    }
    line[len] = 0;
    close(fds[0]);
    return atoi(line);
}

/* The server for remote futures: unscripted ids resolve on poll `polls`,
   try_again answers held hold_ms. */
static inline int bf_server_futures(int polls, int hold_ms, pid_t *pid) {
    char ps[16], hs[16];
    const char *extra[5];
    snprintf(ps, sizeof ps, "%d", polls);
    snprintf(hs, sizeof hs, "%d", hold_ms);
    extra[0] = "--future-polls";
    extra[1] = ps;
    extra[2] = "--future-hold";
    extra[3] = hs;
    extra[4] = NULL;
    return bf_server_args(pid, extra);
}

static inline void bf_server_stop(pid_t pid) {
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}
#endif
