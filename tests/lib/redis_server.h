/*
 * redis_server.h - a redis-server of a test's or benchmark's own: started
 * on a free loopback port, with no persistence, in a temporary folder,
 * stopped (folder removed) at the end. Tests also hang it (SIGSTOP), kill it
 * and start it again on the same port. Shared by tests/unit and bench/;
 * header-only: static inline functions.
 */
#ifndef RTS_TESTS_LIB_REDIS_SERVER_H
#define RTS_TESTS_LIB_REDIS_SERVER_H

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

struct redis_server {
    pid_t pid; /* > 0 while running */
    int port;
    char dir[64];         /* its working folder, removed by redis_stop */
    const char *password; /* requirepass, or NULL */
};

/* A loopback port nobody listens on right now (the kernel's pick for port 0). */
static inline int redis_free_port(void)
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

/* 1 if something accepts connections on loopback @port. */
static inline int redis_accepts(int port)
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

/* Start the server on r->port in r->dir (again, after redis_kill); 0 once
 * it accepts connections (within 10 s), -1 if it exits or never answers. */
static inline int redis_launch(struct redis_server *r)
{
    char ps[16];

    snprintf(ps, sizeof(ps), "%d", r->port);
    r->pid = fork();
    if (r->pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2); /* holds no pipe of the caller's open, should the caller die */
        if (r->password) {
            execlp("redis-server", "redis-server", "--port", ps, "--bind", "127.0.0.1", "--save",
                   "", "--appendonly", "no", "--dir", r->dir, "--requirepass", r->password,
                   (char *)NULL);
        } else {
            execlp("redis-server", "redis-server", "--port", ps, "--bind", "127.0.0.1", "--save",
                   "", "--appendonly", "no", "--dir", r->dir, (char *)NULL);
        }
        _exit(127);
    }
    for (int i = 0; r->pid > 0 && i < 1000; i++) {
        int st;
        if (redis_accepts(r->port)) {
            return 0;
        }
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            r->pid = -1; /* exited: no redis-server, or the port was taken */
            return -1;
        }
        usleep(10000);
    }
    return -1;
}

/* SIGKILL; the folder and port stay for a redis_launch. */
static inline void redis_kill(struct redis_server *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        r->pid = -1;
    }
}

/* SIGSTOP it and wait until it is stopped: kill() only queues the signal,
 * and a server still running for a moment would answer. SIGCONT resumes. */
static inline void redis_pause(struct redis_server *r)
{
    char path[64], buf[256];

    kill(r->pid, SIGSTOP);
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)r->pid);
    for (int i = 0; i < 1000; i++) {
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        const char *end;
        if (f) {
            fclose(f);
        }
        buf[n] = '\0';
        end = strrchr(buf, ')'); /* "pid (comm) S ..." */
        if (end && (end[2] == 'T' || end[2] == 't')) {
            return;
        }
        usleep(1000);
    }
}

/* Stop it and remove its folder. */
static inline void redis_stop(struct redis_server *r)
{
    char cmd[96];

    redis_kill(r);
    if (r->dir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", r->dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", r->dir);
        }
        r->dir[0] = '\0';
    }
}

/* A new folder, a free port (a few are tried), @password (or NULL; the
 * string must outlive the server); 0 once it accepts connections, -1 if
 * redis-server is missing or never answers. */
static inline int redis_start(struct redis_server *r, const char *password)
{
    memset(r, 0, sizeof(*r));
    r->pid = -1;
    r->password = password;
    snprintf(r->dir, sizeof(r->dir), "/tmp/rts_redis_XXXXXX");
    if (!mkdtemp(r->dir)) {
        r->dir[0] = '\0';
        return -1;
    }
    for (int tries = 0; tries < 5; tries++) {
        r->port = redis_free_port();
        if (r->port > 0 && redis_launch(r) == 0) {
            return 0;
        }
        redis_kill(r);
    }
    return -1;
}

#endif /* RTS_TESTS_LIB_REDIS_SERVER_H */
