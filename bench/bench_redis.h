/*
 * bench_redis.h - a redis-server of the benchmark's own, for the benchmarks
 * that measure online store lookups: started on a free loopback port, with no
 * persistence, in a temporary folder, and stopped (folder removed) at the
 * end. It shares the machine's cores with the benchmark, as a Redis next to
 * the scorer would. Header-only: static inline functions.
 */
#ifndef RTS_BENCH_BENCH_REDIS_H
#define RTS_BENCH_BENCH_REDIS_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

struct bench_redis {
    pid_t pid; /* > 0 while running */
    int port;
    char dir[64];
};

/* A loopback port nobody listens on right now (the kernel's pick for port 0). */
static inline int bench_free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), p = -1;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        p = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return p;
}

static inline int bench_redis_accepts(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

static inline void bench_redis_stop(struct bench_redis *r)
{
    char cmd[96];

    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        waitpid(r->pid, NULL, 0);
        r->pid = -1;
    }
    if (r->dir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", r->dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "bench: could not remove %s\n", r->dir);
        }
        r->dir[0] = '\0';
    }
}

/* Start one (a few ports are tried); 0 once it accepts connections, -1 if
 * redis-server is missing or never answers. */
static inline int bench_redis_start(struct bench_redis *r)
{
    memset(r, 0, sizeof(*r));
    r->pid = -1;
    snprintf(r->dir, sizeof(r->dir), "/tmp/rts_bench_XXXXXX");
    if (!mkdtemp(r->dir)) {
        r->dir[0] = '\0';
        return -1;
    }
    for (int tries = 0; tries < 5; tries++) {
        char ps[16];
        r->port = bench_free_port();
        snprintf(ps, sizeof(ps), "%d", r->port);
        r->pid = fork();
        if (r->pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1);
            execlp("redis-server", "redis-server", "--port", ps, "--bind", "127.0.0.1", "--save",
                   "", "--appendonly", "no", "--dir", r->dir, (char *)NULL);
            _exit(127);
        }
        for (int i = 0; r->pid > 0 && i < 1000; i++) {
            int st;
            if (bench_redis_accepts(r->port)) {
                return 0;
            }
            if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
                r->pid = -1; /* exited: no redis-server, or the port was taken */
            }
            usleep(10000);
        }
        if (r->pid > 0) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, NULL, 0);
            r->pid = -1;
        }
    }
    return -1;
}

#endif /* RTS_BENCH_BENCH_REDIS_H */
