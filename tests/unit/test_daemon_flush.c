/*
 * test_daemon_flush.c - a busy worker hands its batched records to the sinks
 * within about a millisecond, also for a rare output.
 *
 * A worker batches the records of each sink in a buffer and used to hand a
 * buffer over only when it was full (64 KiB) or when the worker ran dry. A
 * worker that never runs dry then kept alerts (1% of events) for 26,000
 * events; with a source that commits behind acknowledgements (Kafka) every
 * later event of that partition waited behind them, until max_inflight
 * paused the partition: the pipeline stalled for hundreds of milliseconds
 * at a time under a steady 100,000 events/s.
 *
 * Here the daemon runs the generator as fast as it goes (1% fraud, every
 * fraud event alerts) with one worker slowed by its scores sink (20 us per
 * record), so its queue never runs dry; test sinks note when each record
 * was handed over. Each alert must reach its sink soon after the score of
 * the same event: before the fix the gap was up to the whole run.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "sink/sink.h"
#include "test.h"

#define EVENTS 30000
#define GAP_MAX_NS (100ull * 1000 * 1000) /* an alert may follow its score by this much */

static uint64_t score_ns[EVENTS + 1], alert_ns[EVENTS + 1]; /* by event number */
static atomic_long alerts_n;

static const struct rts_opt no_opts[] = {RTS_OPT_END};

struct tsink {
    int alerts;
};

static enum rts_err scores_init(void *ctx, const struct rts_sink_env *env, struct rts_errbuf *eb)
{
    (void)env;
    (void)eb;
    ((struct tsink *)ctx)->alerts = 0;
    return RTS_ERR_OK;
}

static enum rts_err alerts_init(void *ctx, const struct rts_sink_env *env, struct rts_errbuf *eb)
{
    (void)env;
    (void)eb;
    ((struct tsink *)ctx)->alerts = 1;
    return RTS_ERR_OK;
}

/* Note the time of each record of @b, by the number of its id ("t-N"). */
static enum rts_sink_status tsink_write(void *ctx, const struct rts_batch *b, struct rts_errbuf *eb)
{
    struct tsink *t = ctx;
    uint64_t now = rts_now_ns();

    (void)eb;
    for (size_t i = 0; i < b->n; i++) {
        const struct rts_str *id = &b->recs[i].id;
        long n = 0;
        for (uint32_t j = 2; id->p && j < id->n; j++) {
            n = n * 10 + (id->p[j] - '0');
        }
        if (n > 0 && n <= EVENTS) {
            if (t->alerts) {
                alert_ns[n] = now;
                atomic_fetch_add(&alerts_n, 1);
            } else {
                score_ns[n] = now;
            }
        }
    }
    if (!t->alerts) {
        /* a slow scores sink keeps the worker busy: its queue never runs dry */
        struct timespec ts = {0, (long)b->n * 20000L};
        nanosleep(&ts, NULL);
    }
    return RTS_SINK_OK;
}

static enum rts_err tsink_flush(void *ctx, struct rts_errbuf *eb)
{
    (void)ctx;
    (void)eb;
    return RTS_ERR_OK;
}

static void tsink_fini(void *ctx)
{
    (void)ctx;
}

static const struct rts_sink_ops scores_sink = {
    .name = "test-scores",
    .opts = no_opts,
    .ctx_size = sizeof(struct tsink),
    .init = scores_init,
    .write = tsink_write,
    .flush = tsink_flush,
    .fini = tsink_fini,
};

static const struct rts_sink_ops alerts_sink = {
    .name = "test-alerts",
    .opts = no_opts,
    .ctx_size = sizeof(struct tsink),
    .init = alerts_init,
    .write = tsink_write,
    .flush = tsink_flush,
    .fini = tsink_fini,
};

static const char yaml[] = "pipeline: flush\n"
                           "workers: 1\n"
                           "source: {type: generator, events: 30000, rate: 0, seed: 7,\n"
                           "         fraud_rate: 0.01, bad_rate: 0}\n"
                           "event:\n"
                           "  id: txn_id\n"
                           "  key: card_id\n"
                           "  fields:\n"
                           "    card_id: {type: string, required: true}\n"
                           "    amount: {type: float, required: true}\n"
                           "    is_fraud: {type: int, default: 0}\n"
                           "features:\n"
                           "  - {name: n5m, agg: count, window: 5m}\n"
                           "rules:\n"
                           "  - {when: \"is_fraud == 1\", decision: block}\n"
                           "  - {decision: allow}\n"
                           "fallback: {score: \"0\"}\n"
                           "sink: {type: null}\n"
                           "alerts: {when: \"decision == 'block'\", sink: {type: null}}\n";

TEST(busy_worker_hands_over_alerts)
{
    struct rts_errbuf eb = {0};
    struct rts_pipeline_conf *conf = rts_pipeline_conf_parse("flush.yaml", yaml, strlen(yaml), &eb);
    struct rts_daemon_opts opts = {0};
    struct rts_daemon *d;
    uint64_t worst = 0;
    long paired = 0;

    CHECK(conf != NULL);
    if (!conf) {
        fprintf(stderr, "%s\n", eb.msg);
        return;
    }
    conf->sink.ops = &scores_sink;
    conf->alerts.ops = &alerts_sink;
    opts.no_housekeeper = 1;
    d = rts_daemon_new(conf, &opts, &eb);
    CHECK(d != NULL);
    if (!d) {
        fprintf(stderr, "%s\n", eb.msg);
        return;
    }
    CHECK_INT(rts_daemon_run(d, &eb), RTS_ERR_OK);
    rts_daemon_free(d);
    for (long n = 1; n <= EVENTS; n++) {
        if (alert_ns[n]) {
            uint64_t gap = alert_ns[n] > score_ns[n] ? alert_ns[n] - score_ns[n] : 0;
            CHECK(score_ns[n] != 0);
            worst = gap > worst ? gap : worst;
            paired++;
        }
    }
    CHECK(paired > 100); /* about 300 alerts */
    CHECK_INT(paired, atomic_load(&alerts_n));
    if (worst >= GAP_MAX_NS) {
        fprintf(stderr, "  an alert came %.1f ms after its score\n", (double)worst / 1e6);
    }
    CHECK(worst < GAP_MAX_NS);
}

int main(void)
{
    rts_log_set_level(RTS_LOG_ERROR);
    RUN(busy_worker_hands_over_alerts);
    return TEST_EXIT();
}
