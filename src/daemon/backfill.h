/*
 * backfill.h - `rtscore backfill`: the serving pipeline's decode and feature
 * code run offline over a file of events, in event-time order, writing one
 * CSV row of features per event: the training set. Single-threaded; uses
 * rts_pipeline_eval() exactly as the workers do.
 */
#ifndef RTS_DAEMON_BACKFILL_H
#define RTS_DAEMON_BACKFILL_H

#include <stdio.h>

#include "daemon/config.h"

struct rts_backfill_stats {
    uint64_t rows, dlq;
};

/* Read JSON lines from @in ("-" = stdin), write CSV to @out ("-" = stdout):
 * id,key,ts,<features...>[,<label>]. @label names an event field (declared
 * in event.fields) or is NULL. Bad events are skipped and counted. Takes
 * ownership of @conf. */
enum rts_err rts_backfill(struct rts_pipeline_conf *conf, const char *in, const char *out,
                          const char *label, struct rts_backfill_stats *st,
                          struct rts_errbuf *eb);

#endif /* RTS_DAEMON_BACKFILL_H */
