/*
 * generator.c - the `generator` source: synthetic labelled card transactions
 * from gen.c, as JSON text, so that the demo and the benchmarks exercise the
 * same decode path as real input. Seeded and reproducible; paced to `rate`
 * events per second of wall clock, or as fast as the pipeline takes them.
 * The offset of a message is its sequence number (1-based).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "source/gen.h"
#include "source/source.h"

#define GEN_BATCH 256
#define GEN_LINE_MAX 512

struct gen_src {
    /* options */
    int64_t events;
    int64_t seed;
    double fraud_rate, bad_rate, rate, density;
    int64_t cards, merchants, start_ms;
    /* state */
    struct rts_gen *gen;
    char *buf;
    int64_t produced;
    uint64_t t0_ns;
};

static const struct rts_opt gen_opts[] = {
    RTS_OPT_INT("events", "0", offsetof(struct gen_src, events),
                "events to produce, then end as a file does; 0 = unbounded"),
    RTS_OPT_INT("seed", "1", offsetof(struct gen_src, seed), "same seed, same events"),
    RTS_OPT_DOUBLE("fraud_rate", "0.01", offsetof(struct gen_src, fraud_rate),
                   "share of events that are labelled fraud"),
    RTS_OPT_DOUBLE("bad_rate", "0", offsetof(struct gen_src, bad_rate),
                   "share of malformed events (they go to the DLQ)"),
    RTS_OPT_DOUBLE("rate", "0", offsetof(struct gen_src, rate),
                   "events per second of wall clock; 0 = as fast as possible"),
    RTS_OPT_DOUBLE("density", "500", offsetof(struct gen_src, density),
                   "events per second of event time (the simulated traffic)"),
    RTS_OPT_INT("cards", "100000", offsetof(struct gen_src, cards), "number of cards"),
    RTS_OPT_INT("merchants", "20000", offsetof(struct gen_src, merchants), "number of merchants"),
    RTS_OPT_INT("start_ms", "1700000000000", offsetof(struct gen_src, start_ms),
                "event time of the first event, epoch ms"),
    RTS_OPT_END,
};

static enum rts_err gen_init(void *ctx, const struct rts_source_env *env, struct rts_errbuf *eb)
{
    struct gen_src *s = ctx;
    struct rts_gen_opts o;

    rts_gen_opts_default(&o);
    if (s->events < 0 || s->cards <= 0 || s->merchants <= 0 || s->density <= 0 || s->rate < 0 ||
        s->fraud_rate < 0 || s->fraud_rate > 1 || s->bad_rate < 0 || s->bad_rate > 1) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                        "source: generator options out of range (events >= 0, cards > 0, "
                        "merchants > 0, density > 0, rate >= 0, rates in [0, 1])");
    }
    o.seed = (uint64_t)s->seed;
    o.fraud_rate = s->fraud_rate;
    o.bad_rate = s->bad_rate;
    o.cards = (uint64_t)s->cards;
    o.merchants = (uint64_t)s->merchants;
    o.start_ms = s->start_ms;
    o.events_per_sec = s->density;
    s->gen = rts_gen_new(&o, eb);
    if (!s->gen) {
        return eb ? eb->code : RTS_ERR_INVAL;
    }
    s->buf = malloc((size_t)GEN_BATCH * GEN_LINE_MAX);
    if (!s->buf) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "source: out of memory");
    }
    (void)env;
    return RTS_ERR_OK;
}

/* How many events pacing allows now; sleeps up to @timeout_ms for one. */
static size_t gen_allowance(struct gen_src *s, size_t want, int timeout_ms)
{
    uint64_t now = rts_now_ns();
    double due;

    if (s->rate <= 0) {
        return want;
    }
    if (s->t0_ns == 0) {
        s->t0_ns = now;
    }
    due = (double)(now - s->t0_ns) * 1e-9 * s->rate - (double)s->produced;
    if (due < 1) {
        double wait_ns = (1 - due) / s->rate * 1e9;
        if (wait_ns > (double)timeout_ms * 1e6) {
            wait_ns = (double)timeout_ms * 1e6;
        }
        struct timespec ts = {(time_t)(wait_ns / 1e9), (long)((uint64_t)wait_ns % 1000000000u)};
        nanosleep(&ts, NULL);
        due = (double)(rts_now_ns() - s->t0_ns) * 1e-9 * s->rate - (double)s->produced;
        if (due < 1) {
            return 0;
        }
    }
    return due < (double)want ? (size_t)due : want;
}

static enum rts_src_status gen_poll(void *ctx, struct rts_msg *msgs, size_t max, size_t *n,
                                    int timeout_ms, struct rts_errbuf *eb)
{
    struct gen_src *s = ctx;
    size_t want = max < GEN_BATCH ? max : GEN_BATCH, off = 0;

    *n = 0;
    if (s->events > 0 && s->produced >= s->events) {
        return RTS_SRC_EOF;
    }
    if (s->events > 0 && (int64_t)want > s->events - s->produced) {
        want = (size_t)(s->events - s->produced);
    }
    want = gen_allowance(s, want, timeout_ms);
    for (size_t i = 0; i < want; i++) {
        size_t len = rts_gen_next(s->gen, s->buf + off, GEN_LINE_MAX);
        if (len == 0) {
            rts_errf(eb, RTS_ERR_LIMIT, 0, 0, "source: generator line over %d bytes",
                     GEN_LINE_MAX);
            return RTS_SRC_ERROR;
        }
        s->produced++;
        msgs[i].data = s->buf + off;
        msgs[i].len = len - 1; /* without the '\n' */
        msgs[i].partition = -1;
        msgs[i].offset = s->produced;
        msgs[i].truncated = 0;
        off += len;
    }
    *n = want;
    return RTS_SRC_OK;
}

static const char *gen_label(void *ctx)
{
    (void)ctx;
    return "generator";
}

static void gen_fini(void *ctx)
{
    struct gen_src *s = ctx;

    rts_gen_free(s->gen);
    free(s->buf);
}

const struct rts_source_ops rts_source_generator = {
    .name = "generator",
    .description = "synthetic labelled card transactions (the demo's source)",
    .opts = gen_opts,
    .ctx_size = sizeof(struct gen_src),
    .init = gen_init,
    .poll = gen_poll,
    .label = gen_label,
    .fini = gen_fini,
};
