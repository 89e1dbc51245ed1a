/*
 * serve.h - the daemon's HTTP control plane: /metrics, /healthz, /readyz,
 * /status (serve.c). Started by the daemon when the pipeline has `http:`.
 */
#ifndef RTS_DAEMON_SERVE_H
#define RTS_DAEMON_SERVE_H

#include "core/err.h"
#include "daemon/daemon.h"

struct rts_serve;

/* Start serving @d's http section. NULL with @eb->code == 0 when the
 * pipeline has no `http:`; NULL with @eb filled on failure (a bad token
 * file, an address in use). The server must be freed before @d. */
struct rts_serve *rts_serve_new(struct rts_daemon *d, struct rts_errbuf *eb);
void rts_serve_free(struct rts_serve *sv); /* NULL is a no-op; waits for running handlers */

#endif /* RTS_DAEMON_SERVE_H */
