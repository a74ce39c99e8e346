/* nginx_run.h - start and stop a private nginx for tests/test_nginx.c and
   bench/bench_http.c. libc + POSIX only; include after pristine.h (which
   defines _GNU_SOURCE in the implementation).

   ngxr_start(&n, prefix, cert, key, cpu) makes <prefix>/html (the document
   root, shared by concurrent runs: files are written aside and renamed)
   and a private run directory <prefix>/run.<pid> (removed by ngxr_stop),
   renders tests/nginx/nginx.conf.in into <run>/nginx.conf with four free
   127.0.0.1 ports (n.plain, n.tls, n.shrt, n.tlsshort), and runs
   `nginx -p <run> -c nginx.conf -g 'daemon off; pid ...; error_log ...;'`
   as a single foreground process (master_process off). The child gets
   PR_SET_PDEATHSIG=SIGKILL, so nginx dies with the thread that started it
   even if the caller _exits. ngxr_stop sends SIGTERM, waits up to 3 s,
   then SIGKILL, and reaps it. Must run from the repository root. */
#ifndef NGINX_RUN_H
#define NGINX_RUN_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NGXR_BIN "/usr/sbin/nginx"
#define NGXR_TEMPLATE "tests/nginx/nginx.conf.in"

typedef struct ngxr {
    pid_t pid;             /* 0 = not running */
    int plain, tls, shrt, tlsshort;
    char prefix[512];      /* absolute; the files are in <prefix>/html */
    char run[560];         /* <prefix>/run.<pid>: config, logs, temp dirs */
    char msg[1024];        /* why the last call failed */
} ngxr;

/* Pick n distinct free ports: bind them all to port 0 at once, then close. */
static int ngxr_free_ports(int *ports, int n) {
    int fds[8], i, ok = 1;
    for (i = 0; i < n; i++) fds[i] = -1;
    for (i = 0; i < n && ok; i++) {
        struct sockaddr_in a;
        socklen_t len = sizeof a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if ((fds[i] = socket(AF_INET, SOCK_STREAM, 0)) < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0
            || getsockname(fds[i], (struct sockaddr *)&a, &len) != 0)
            ok = 0;
        else ports[i] = ntohs(a.sin_port);
    }
    for (i = 0; i < n; i++)
        if (fds[i] >= 0) close(fds[i]);
    return ok;
}

static int ngxr_mkdirs(const char *path) {
    char tmp[600];
    size_t i, n = strlen(path);
    if (n >= sizeof tmp) return 0;
    memcpy(tmp, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == '\0') {
            char c = tmp[i];
            tmp[i] = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return 0;
            tmp[i] = c;
        }
    }
    return 1;
}

/* The byte at offset i of the generated files (not a short period, so
   misplaced blocks show). */
static unsigned char ngxr_byte(unsigned long long i) {
    unsigned long long z = (i >> 4) * 0x9e3779b97f4a7c15ull;
    return (unsigned char)((z >> 56) ^ (i & 15) * 17u);
}

/* Write prefix/html/name with size bytes of ngxr_byte, unless it is there
   with that size already. */
static int ngxr_make_file(ngxr *n, const char *name, unsigned long long size) {
    char path[700], tmp[720];
    static unsigned char block[1 << 16];
    struct stat st;
    unsigned long long off = 0;
    FILE *f;
    snprintf(path, sizeof path, "%s/html/%s", n->prefix, name);
    if (stat(path, &st) == 0 && (unsigned long long)st.st_size == size) return 1;
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    if (!(f = fopen(tmp, "wb"))) {
        snprintf(n->msg, sizeof n->msg, "cannot create %s: %s", tmp, strerror(errno));
        return 0;
    }
    while (off < size) {
        size_t k, m = size - off < sizeof block ? (size_t)(size - off) : sizeof block;
        for (k = 0; k < m; k++) block[k] = ngxr_byte(off + k);
        if (fwrite(block, 1, m, f) != m) break;
        off += m;
    }
    if (fclose(f) != 0 || off != size || rename(tmp, path) != 0) {
        snprintf(n->msg, sizeof n->msg, "cannot write %s", path);
        unlink(tmp);
        return 0;
    }
    return 1;
}

/* Render the template with this instance's values. */
static int ngxr_render(ngxr *n, const char *cert, const char *key) {
    char path[700], html[600], ports[4][16], *in = NULL;
    const char *names[8] = { "@HTML@", "@PLAIN@", "@TLS@", "@SHORT@", "@TLSSHORT@", "@CERT@", "@KEY@", "@RUN@" };
    const char *vals[8];
    long len;
    int i, ok = 0;
    FILE *f = fopen(NGXR_TEMPLATE, "rb"), *o = NULL;
    snprintf(ports[0], 16, "%d", n->plain);
    snprintf(ports[1], 16, "%d", n->tls);
    snprintf(ports[2], 16, "%d", n->shrt);
    snprintf(ports[3], 16, "%d", n->tlsshort);
    snprintf(html, sizeof html, "%s/html", n->prefix);
    vals[0] = html;
    vals[1] = ports[0];
    vals[2] = ports[1];
    vals[3] = ports[2];
    vals[4] = ports[3];
    vals[5] = cert;
    vals[6] = key;
    vals[7] = n->run;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0
        || !(in = (char *)malloc((size_t)len + 1)) || fread(in, 1, (size_t)len, f) != (size_t)len) {
        snprintf(n->msg, sizeof n->msg, "cannot read %s (run from the repository root)", NGXR_TEMPLATE);
        goto out;
    }
    in[len] = '\0';
    snprintf(path, sizeof path, "%s/nginx.conf", n->run);
    if (!(o = fopen(path, "wb"))) {
        snprintf(n->msg, sizeof n->msg, "cannot create %s", path);
        goto out;
    }
    {
        const char *p = in;
        while (*p) {
            int hit = -1;
            for (i = 0; i < 8 && hit < 0; i++)
                if (strncmp(p, names[i], strlen(names[i])) == 0) hit = i;
            if (hit >= 0) {
                fputs(vals[hit], o);
                p += strlen(names[hit]);
            } else {
                fputc(*p++, o);
            }
        }
    }
    ok = 1;
out:
    if (o && fclose(o) != 0) ok = 0;
    if (f) fclose(f);
    free(in);
    return ok;
}

static int ngxr_port_open(int port) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    if (fd < 0) return 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Append the tail of prefix/error.log to n->msg. */
static void ngxr_log_tail(ngxr *n) {
    char path[700], buf[600];
    size_t used = strlen(n->msg), k;
    FILE *f;
    snprintf(path, sizeof path, "%s/error.log", n->run);
    if (!(f = fopen(path, "rb"))) return;
    if (fseek(f, -(long)sizeof buf + 1, SEEK_END) != 0) fseek(f, 0, SEEK_SET);
    k = fread(buf, 1, sizeof buf - 1, f);
    buf[k] = '\0';
    fclose(f);
    snprintf(n->msg + used, sizeof n->msg - used, "; error.log: %s", buf);
}

static void ngxr_stop(ngxr *n) {
    int i, st;
    if (n->pid > 0) {
        kill(n->pid, SIGTERM);
        for (i = 0; i < 300; i++) {
            if (waitpid(n->pid, &st, WNOHANG) == n->pid) break;
            usleep(10000);
        }
        if (i == 300) {
            kill(n->pid, SIGKILL);
            waitpid(n->pid, &st, 0);
        }
    }
    n->pid = 0;
    if (n->run[0]) { /* the run directory holds only what nginx and ngxr_render made */
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", n->run);
        if (system(cmd) != 0) fprintf(stderr, "nginx_run: could not remove %s\n", n->run);
        n->run[0] = '\0';
    }
}

/* cpu >= 0 pins nginx to that CPU. Returns 1 when nginx answers on every
   port, else 0 with n->msg saying why (nginx is stopped then). */
static int ngxr_start(ngxr *n, const char *prefix, const char *cert, const char *key, int cpu) {
    char cwd[400], path[700], gopt[1600];
    int ports[4], i, st;
    const char *sub[] = { "html", "run", "run/tmp", "run/logs" };
    memset(n, 0, sizeof *n);
    if (access(NGXR_BIN, X_OK) != 0) {
        snprintf(n->msg, sizeof n->msg, NGXR_BIN " is missing: install nginx-light (tools/setup.sh does)");
        return 0;
    }
    if (!getcwd(cwd, sizeof cwd)) return 0;
    if (prefix[0] == '/') snprintf(n->prefix, sizeof n->prefix, "%s", prefix);
    else snprintf(n->prefix, sizeof n->prefix, "%s/%s", cwd, prefix);
    snprintf(n->run, sizeof n->run, "%s/run.%d", n->prefix, (int)getpid());
    for (i = 0; i < 4; i++) {
        if (i == 0) snprintf(path, sizeof path, "%s/%s", n->prefix, sub[i]);
        else snprintf(path, sizeof path, "%s%s", n->run, sub[i] + 3);
        if (!ngxr_mkdirs(path)) {
            snprintf(n->msg, sizeof n->msg, "cannot create %s: %s", path, strerror(errno));
            return 0;
        }
    }
    if (!ngxr_make_file(n, "empty.txt", 0)) return 0;
    if (!ngxr_free_ports(ports, 4)) {
        snprintf(n->msg, sizeof n->msg, "cannot pick free ports: %s", strerror(errno));
        return 0;
    }
    n->plain = ports[0];
    n->tls = ports[1];
    n->shrt = ports[2];
    n->tlsshort = ports[3];
    {
        char c[600], k[600];
        snprintf(c, sizeof c, "%s%s%s", cert[0] == '/' ? "" : cwd, cert[0] == '/' ? "" : "/", cert);
        snprintf(k, sizeof k, "%s%s%s", key[0] == '/' ? "" : cwd, key[0] == '/' ? "" : "/", key);
        if (!ngxr_render(n, c, k)) return 0;
    }
    snprintf(path, sizeof path, "%s/error.log", n->run);
    unlink(path);
    snprintf(gopt, sizeof gopt, "daemon off; pid %s/nginx.pid; error_log %s/error.log;", n->run, n->run);
    fflush(NULL);
    n->pid = fork();
    if (n->pid < 0) {
        snprintf(n->msg, sizeof n->msg, "fork: %s", strerror(errno));
        n->pid = 0;
        return 0;
    }
    if (n->pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1) _exit(127); /* the parent is already gone */
#ifdef CPU_SET
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            sched_setaffinity(0, sizeof set, &set);
        }
#else
        (void)cpu;
#endif
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1); /* nginx's stderr stays ours: startup errors show */
        }
        execl(NGXR_BIN, "nginx", "-p", n->run, "-c", "nginx.conf", "-e", path, "-g", gopt, (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 500; i++) { /* up to 5 s */
        if (waitpid(n->pid, &st, WNOHANG) == n->pid) {
            snprintf(n->msg, sizeof n->msg, "nginx exited at startup (status %d)", st);
            n->pid = 0;
            ngxr_log_tail(n);
            return 0;
        }
        if (ngxr_port_open(n->plain) && ngxr_port_open(n->tls) && ngxr_port_open(n->shrt)
            && ngxr_port_open(n->tlsshort))
            return 1;
        usleep(10000);
    }
    snprintf(n->msg, sizeof n->msg, "nginx did not listen within 5 s");
    ngxr_log_tail(n);
    ngxr_stop(n);
    return 0;
}

#endif /* NGINX_RUN_H */
