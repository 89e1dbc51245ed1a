/*
 * notify.c - the sd_notify(3) wrappers of notify.h.
 *
 * A message is built on the stack (bounded by RTS_NOTIFY_STATUS_MAX) and
 * sent with one sd_notify() call: a datagram, so either all of its lines
 * arrive or none. sd_notify() returns 0 when NOTIFY_SOCKET is not set, which
 * is the no-op case.
 */
#include "serve/notify.h"

#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#define MSG_MAX (64 + RTS_NOTIFY_STATUS_MAX)

/* Append "STATUS=" and @status, cut and with control characters as spaces. */
static void put_status(char *msg, size_t cap, const char *status)
{
    size_t n = strlen(msg), i;

    if (!status) {
        return;
    }
    n += (size_t)snprintf(msg + n, cap - n, "%sSTATUS=", n ? "\n" : "");
    for (i = 0; status[i] && i < RTS_NOTIFY_STATUS_MAX && n + 1 < cap; i++) {
        msg[n++] = (unsigned char)status[i] < 0x20 || status[i] == 0x7f ? ' ' : status[i];
    }
    msg[n] = '\0';
}

static enum rts_err send_msg(const char *what, const char *msg, struct rts_errbuf *eb)
{
    int r = sd_notify(0, msg);

    if (r < 0) {
        return rts_errf(eb, RTS_ERR_IO, 0, 0, "systemd notify (%s): %s", what, strerror(-r));
    }
    return RTS_ERR_OK; /* sent (r > 0) or not under systemd (r == 0) */
}

enum rts_err rts_notify_ready(const char *status, struct rts_errbuf *eb)
{
    char msg[MSG_MAX] = "READY=1";

    put_status(msg, sizeof(msg), status);
    return send_msg("ready", msg, eb);
}

enum rts_err rts_notify_status(const char *status, struct rts_errbuf *eb)
{
    char msg[MSG_MAX] = "";

    put_status(msg, sizeof(msg), status ? status : "");
    return send_msg("status", msg, eb);
}

enum rts_err rts_notify_watchdog(struct rts_errbuf *eb)
{
    return send_msg("watchdog", "WATCHDOG=1", eb);
}

enum rts_err rts_notify_stopping(const char *status, struct rts_errbuf *eb)
{
    char msg[MSG_MAX] = "STOPPING=1";

    put_status(msg, sizeof(msg), status);
    return send_msg("stopping", msg, eb);
}

uint64_t rts_notify_watchdog_interval_ns(void)
{
    uint64_t usec = 0;

    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) {
        return 0;
    }
    if (usec / 2 > UINT64_MAX / 1000u) {
        return UINT64_MAX;
    }
    return usec / 2 * 1000u;
}
