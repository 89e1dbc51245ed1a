/*
 * null.c - the `null` sink: accepts and discards, counting what it saw.
 * For benchmarks and for outputs nobody needs (e.g. alerts in a test).
 */
#include <stdatomic.h>

#include "sink/sink.h"

struct null_sink {
    atomic_ullong records, bytes;
};

static const struct rts_opt null_sink_opts[] = {
    RTS_OPT_END,
};

static enum rts_err null_sink_init(void *ctx, const struct rts_sink_env *env, struct rts_errbuf *eb)
{
    (void)ctx;
    (void)eb;
    return RTS_ERR_OK;
}

static enum rts_sink_status null_sink_write(void *ctx, const struct rts_batch *b,
                                            struct rts_errbuf *eb)
{
    struct null_sink *s = ctx;

    (void)eb;
    atomic_fetch_add_explicit(&s->records, b->n, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->bytes, b->len, memory_order_relaxed);
    return RTS_SINK_OK;
}

static enum rts_err null_sink_flush(void *ctx, struct rts_errbuf *eb)
{
    (void)ctx;
    (void)eb;
    return RTS_ERR_OK;
}

static void null_sink_fini(void *ctx)
{
    (void)ctx;
}

const struct rts_sink_ops rts_sink_null = {
    .name = "null",
    .description = "discards records (benchmarks)",
    .opts = null_sink_opts,
    .ctx_size = sizeof(struct null_sink),
    .init = null_sink_init,
    .write = null_sink_write,
    .flush = null_sink_flush,
    .fini = null_sink_fini,
};
