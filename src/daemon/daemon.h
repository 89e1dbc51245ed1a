/*
 * daemon.h - the owner object of a running pipeline: source thread, shard
 * workers, sinks, counters. The only layer that knows all others.
 *
 * Threads: one source thread reads, decodes and validates, dead-letters bad
 * events and routes good ones by key hash into a bounded SPSC queue per
 * worker (it waits when a queue is full: backpressure, nothing dropped).
 * Each worker owns the keys routed to it, so events of one key are processed
 * in arrival order without locks. The calling thread of rts_daemon_run()
 * watches for the stop flag and draws the progress line.
 *
 * Every event ends as exactly one of scored, dlq or shed; the counters below
 * add up (tested).
 */
#ifndef RTS_DAEMON_DAEMON_H
#define RTS_DAEMON_DAEMON_H

#include <stdint.h>
#include <stdio.h>

#include "core/hist.h"
#include "daemon/config.h"
#include "daemon/accuracy.h"
#include "daemon/pipeline.h"
#include "event/decode.h"

/* The signal flag: SIGINT/SIGTERM handlers call rts_stop_request() (async-
 * signal-safe: a lock-free atomic store); every thread polls
 * rts_stop_requested() and the pipeline drains, flushes and exits. */
void rts_stop_request(void);
int rts_stop_requested(void);
/* SIGHUP: reread file stores, load the registry's newest model version as
 * the candidate (async-signal-safe; handled by the daemon's main loop). */
void rts_reload_request(void);

struct rts_daemon;

struct rts_daemon_opts {
    int progress;       /* draw a live progress line on stderr */
    const char *title;  /* report heading, e.g. "rtscore demo" */
    int no_lookahead;   /* benchmarks only: workers do not prefetch queued keys */
    int no_housekeeper; /* benchmarks only: no thread commits memory ahead */
    const char *label;  /* a field holding each event's true label (non-zero = positive):
                         * the report adds ROC AUC, precision and recall */
    int no_idle_prefault; /* benchmarks only: idle workers do not commit memory ahead */
};

/* Build everything (takes ownership of @conf, also on failure): compile,
 * open source and sinks, reserve state. Threads start in rts_daemon_run. */
struct rts_daemon *rts_daemon_new(struct rts_pipeline_conf *conf,
                                  const struct rts_daemon_opts *opts, struct rts_errbuf *eb)
    __attribute__((warn_unused_result));

/* Run until the source ends (then drain) or a stop is requested (then stop
 * reading, drain what is queued). Returns RTS_ERR_OK, or the failure that
 * stopped it (a sink or source error) with @eb filled. */
enum rts_err rts_daemon_run(struct rts_daemon *d, struct rts_errbuf *eb);

/* Predictions of one model (by label), model path and shadow path. */
struct rts_pred_count {
    char label[96], name[64];
    long version;
    uint64_t model, shadow;
    int used;
};
#define RTS_STATS_PRED_MAX 16

struct rts_daemon_stats {
    double elapsed_s;
    uint64_t in, scored, dlq, shed, alerts, duplicates;
    uint64_t by_fallback; /* scored by the fallback while the model's circuit was open */
    uint64_t dlq_by_reason[RTS_DLQ__COUNT];
    uint64_t *by_rule; /* nrules + 1 entries: [0] no rule matched, [i+1] rule i */
    uint64_t budget_exceeded[RTS_STAGE__COUNT];
    struct rts_hist hist[RTS_STAGE__COUNT];
    struct rts_hist batch; /* events per worker batch */
    struct rts_hist score; /* scores, in millionths */
    struct rts_hist e2e;   /* event time to emitted, ns */
    struct rts_accuracy acc; /* with opts.label (acc.rules != NULL) */
    struct rts_pred_count preds[RTS_STATS_PRED_MAX];
    int npreds;
    uint64_t shadow, shadow_agree; /* shadow scores; decisions equal to the live one */
    struct rts_hist shadow_diff;   /* |shadow - live| in millionths */
    struct rts_lookup_feature_stats *lookup_feat; /* per lookup feature, or NULL */
    struct rts_lookup_store_stats *lookup_store;  /* per store, or NULL */
    struct rts_feature_stats state;
    uint64_t queued;
    uint64_t pauses; /* times a full queue paused the source (backpressure) */
    int workers;
};

/* Merge every thread's counters (any thread; a moment old). by_rule is
 * allocated; free with rts_daemon_stats_fini. */
void rts_daemon_stats(const struct rts_daemon *d, struct rts_daemon_stats *s);
void rts_daemon_stats_fini(struct rts_daemon_stats *s);

/* The final report (human text) of a finished run. */
void rts_daemon_report(const struct rts_daemon *d, FILE *out);

const struct rts_pipeline *rts_daemon_pipeline(const struct rts_daemon *d);
const char *rts_daemon_source_name(const struct rts_daemon *d);
/* Consumer lag per assigned partition (sources with partitions; else 0). */
size_t rts_daemon_lag(const struct rts_daemon *d, struct rts_lag *out, size_t max);
/* The model slots (admin API); NULL without a model. */
struct rts_registry *rts_daemon_registry(const struct rts_daemon *d);
/* Load the bundle in @dir (or, with @dir NULL, registry version @version)
 * into the candidate slot like rts_registry_load, on a thread at the lowest
 * priority (nice 19) so that parsing and warm-up take little CPU from the
 * pipeline. Blocks until done. Thread: any control thread. */
enum rts_err rts_daemon_load_model(struct rts_daemon *d, const char *dir, long version,
                                   struct rts_errbuf *eb);

/* For the control plane (any thread, values a moment old). */
struct rts_daemon_worker_info {
    uint64_t queued, keys, scored;
    uint64_t beat_ns; /* clock when its loop last went round; 0 = not started */
    int done;
};
int rts_daemon_nworkers(const struct rts_daemon *d);
void rts_daemon_worker_info(const struct rts_daemon *d, int i, struct rts_daemon_worker_info *wi);
/* 1 if every thread made progress within @max_stall_ns, else 0 with @why. */
int rts_daemon_health(const struct rts_daemon *d, uint64_t max_stall_ns, char *why, size_t cap);
/* 1 if the pipeline takes events (model warmed, source running, not stopping). */
int rts_daemon_ready(const struct rts_daemon *d, char *why, size_t cap);
void rts_daemon_free(struct rts_daemon *d);

#endif /* RTS_DAEMON_DAEMON_H */
