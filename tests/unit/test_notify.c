/*
 * test_notify.c - unit tests of serve/notify: NOTIFY_SOCKET points at a
 * datagram socket the test owns (abstract namespace, so nothing is left on
 * disk), and each call's message must be waiting on it when the call
 * returns (a local datagram is queued by the send itself, so the test reads
 * with MSG_DONTWAIT and never waits). Also: no-ops without NOTIFY_SOCKET, an
 * unreachable socket reported as RTS_ERR_IO, status sanitising, and the
 * watchdog interval from WATCHDOG_USEC / WATCHDOG_PID.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "serve/notify.h"
#include "test.h"

static int sock = -1;

/* The next datagram, or "" if none is waiting. */
static const char *next_msg(void)
{
    static char buf[1024];
    ssize_t n = recv(sock, buf, sizeof(buf) - 1, MSG_DONTWAIT);

    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static int open_receiver(char *name, size_t cap)
{
    struct sockaddr_un sa;
    socklen_t len;
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(name, cap, "rts-test-notify-%ld-%ld", (long)getpid(), (long)ts.tv_nsec);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path + 1, name, strlen(name)); /* abstract: leading NUL */
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
    sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || bind(sock, (struct sockaddr *)&sa, len) != 0) {
        perror("notify receiver");
        return -1;
    }
    return 0;
}

TEST(messages_arrive)
{
    struct rts_errbuf eb = {0};

    CHECK_INT(rts_notify_ready("scoring: 2 workers, model fraud@3", &eb), RTS_ERR_OK);
    CHECK_STR(next_msg(), "READY=1\nSTATUS=scoring: 2 workers, model fraud@3");
    CHECK_INT(rts_notify_ready(NULL, &eb), RTS_ERR_OK);
    CHECK_STR(next_msg(), "READY=1");
    CHECK_INT(rts_notify_watchdog(&eb), RTS_ERR_OK);
    CHECK_STR(next_msg(), "WATCHDOG=1");
    CHECK_INT(rts_notify_status("12000 ev/s, p99 3ms", &eb), RTS_ERR_OK);
    CHECK_STR(next_msg(), "STATUS=12000 ev/s, p99 3ms");
    CHECK_INT(rts_notify_stopping("draining", &eb), RTS_ERR_OK);
    CHECK_STR(next_msg(), "STOPPING=1\nSTATUS=draining");
    CHECK_INT(rts_notify_stopping(NULL, &eb), RTS_ERR_OK);
    CHECK_STR(next_msg(), "STOPPING=1");
    CHECK_STR(next_msg(), ""); /* nothing else was sent */
}

/* A status cannot smuggle in another assignment, and is cut. */
TEST(status_sanitised)
{
    struct rts_errbuf eb = {0};
    char longs[RTS_NOTIFY_STATUS_MAX + 50];
    const char *m;

    CHECK_INT(rts_notify_status("ok\nREADY=1\r\tx", &eb), RTS_ERR_OK);
    CHECK_STR(next_msg(), "STATUS=ok READY=1  x");
    memset(longs, 'a', sizeof(longs) - 1);
    longs[sizeof(longs) - 1] = '\0';
    CHECK_INT(rts_notify_ready(longs, &eb), RTS_ERR_OK);
    m = next_msg();
    CHECK_INT(strlen(m), strlen("READY=1\nSTATUS=") + RTS_NOTIFY_STATUS_MAX);
}

TEST(without_systemd)
{
    struct rts_errbuf eb = {0};
    char saved[256];

    snprintf(saved, sizeof(saved), "%s", getenv("NOTIFY_SOCKET"));
    unsetenv("NOTIFY_SOCKET");
    CHECK_INT(rts_notify_ready("x", &eb), RTS_ERR_OK);
    CHECK_INT(rts_notify_watchdog(&eb), RTS_ERR_OK);
    CHECK_INT(rts_notify_stopping(NULL, &eb), RTS_ERR_OK);
    CHECK_INT(eb.code, RTS_ERR_OK);
    CHECK_STR(next_msg(), "");

    /* a socket nobody listens on: reported, not fatal */
    setenv("NOTIFY_SOCKET", "@rts-test-notify-nobody-listens-here", 1);
    CHECK_INT(rts_notify_watchdog(&eb), RTS_ERR_IO);
    CHECK_INT(eb.code, RTS_ERR_IO);
    CHECK(strstr(eb.msg, "watchdog") != NULL);
    setenv("NOTIFY_SOCKET", saved, 1);
    CHECK_INT(rts_notify_watchdog(NULL), RTS_ERR_OK);
    CHECK_STR(next_msg(), "WATCHDOG=1");
}

TEST(watchdog_interval)
{
    char pid[32];

    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    CHECK_INT(rts_notify_watchdog_interval_ns(), 0);
    setenv("WATCHDOG_USEC", "30000000", 1); /* WatchdogSec=30s */
    CHECK_INT(rts_notify_watchdog_interval_ns(), 15000000000ull);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    CHECK_INT(rts_notify_watchdog_interval_ns(), 15000000000ull);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1); /* meant for another process */
    setenv("WATCHDOG_PID", pid, 1);
    CHECK_INT(rts_notify_watchdog_interval_ns(), 0);
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "not-a-number", 1);
    CHECK_INT(rts_notify_watchdog_interval_ns(), 0);
    setenv("WATCHDOG_USEC", "0", 1);
    CHECK_INT(rts_notify_watchdog_interval_ns(), 0);
    unsetenv("WATCHDOG_USEC");
}

int main(void)
{
    char name[108], env[112];

    if (open_receiver(name, sizeof(name)) != 0) {
        return 1;
    }
    snprintf(env, sizeof(env), "@%s", name);
    setenv("NOTIFY_SOCKET", env, 1);
    RUN(messages_arrive);
    RUN(status_sanitised);
    RUN(without_systemd);
    RUN(watchdog_interval);
    unsetenv("NOTIFY_SOCKET");
    close(sock);
    return TEST_EXIT();
}
