/*
 * notify.h - telling systemd (Type=notify) about the daemon's life: ready,
 * status lines, watchdog keep-alives and stopping, over sd_notify(3).
 *
 * Every call is a no-op returning RTS_ERR_OK when the process does not run
 * under a service manager that asked for notifications (NOTIFY_SOCKET is
 * not set), so the daemon calls them unconditionally. The environment is
 * left as it is (children started later would inherit it; rtscore starts
 * none). Status texts are cut to RTS_NOTIFY_STATUS_MAX bytes and control
 * characters (newlines included) become spaces, so a status can never add
 * another assignment to the message.
 *
 * The watchdog: with WatchdogSec= set, systemd restarts the service when no
 * WATCHDOG=1 arrives within that time. Ping every
 * rts_notify_watchdog_interval_ns() (half the timeout) from the loop whose
 * liveness the ping vouches for (the daemon's main loop, after checking the
 * workers' progress), never from a timer thread that would keep pinging
 * while the pipeline is stuck.
 *
 * Threads: any thread may call any function (each call is one datagram).
 */
#ifndef RTS_SERVE_NOTIFY_H
#define RTS_SERVE_NOTIFY_H

#include <stdint.h>

#include "core/err.h"

#define RTS_NOTIFY_STATUS_MAX 200 /* bytes of a STATUS= text */

/* READY=1 and STATUS=@status (NULL: no status): startup is complete. Returns
 * RTS_ERR_OK when sent or not under systemd, RTS_ERR_IO (with @eb) when the
 * message could not be sent. Thread: any. */
enum rts_err rts_notify_ready(const char *status, struct rts_errbuf *eb);

/* STATUS=@status: a one-line state for `systemctl status`. Thread: any. */
enum rts_err rts_notify_status(const char *status, struct rts_errbuf *eb);

/* WATCHDOG=1: a keep-alive. Thread: any (see above for which one should). */
enum rts_err rts_notify_watchdog(struct rts_errbuf *eb);

/* STOPPING=1 and STATUS=@status (NULL: none): shutdown (drain) has begun.
 * Thread: any. */
enum rts_err rts_notify_stopping(const char *status, struct rts_errbuf *eb);

/* How often to ping, in nanoseconds: half of WATCHDOG_USEC when the service
 * manager enabled the watchdog for this process (WATCHDOG_PID, when set,
 * must be ours), else 0 (do not ping). Read the environment once at start.
 * Thread: any. */
uint64_t rts_notify_watchdog_interval_ns(void);

#endif /* RTS_SERVE_NOTIFY_H */
