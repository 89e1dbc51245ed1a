/*
 * prom.h - a writer of the Prometheus text exposition format 0.0.4 (what a
 * GET /metrics returns) into a struct rts_buf.
 *
 * A scrape opens a family (name, type, help: one # HELP and one # TYPE line),
 * writes its samples, opens the next family, and so on; every sample belongs
 * to the family opened last, so the lines of a family are always together. A
 * family name may be opened once per exposition, and it may not clash with
 * the _bucket/_sum/_count series of a histogram family (checked).
 *
 * Names: metric names match [a-zA-Z_][a-zA-Z0-9_]* (colons are refused: the
 * format reserves them for recording rules); counter names end in _total
 * (the name given is the name exposed); label names match [a-zA-Z_][a-zA-Z0-9_]*,
 * never start with "__", are unique within a sample, and "le" is refused (the
 * writer adds it to histogram buckets). Label values are escaped (\\ \" \n);
 * bytes of invalid UTF-8 become U+FFFD, so the output is always valid UTF-8.
 * HELP text escapes \\ and \n.
 *
 * Histograms are cumulative: bucket le="B" counts the values <= B, the +Inf
 * bucket equals _count. From a struct rts_hist (log-linear buckets that do not
 * line up with round le bounds), a value counts under le="B" when its
 * representative is <= B, the representative being what rts_hist_quantile()
 * reports for its rank (its bucket's midpoint, max for the largest). So
 * quantiles computed by Prometheus from these buckets agree with the
 * quantiles that rtscore reports itself, and a count is off by at most the
 * values within 1/32 (relative) of B.
 *
 * Errors are sticky: the first error (bad name, limit, out of memory) is kept
 * with its message, the sample that caused it is not written (the buffer is
 * cut back to before it), and every later call does nothing and returns the
 * same code. rts_prom_finish() reports it; on error the caller answers 500
 * and discards the buffer.
 *
 * Bounded: at most RTS_PROM_MAX_FAMILIES families, RTS_PROM_MAX_LABELS
 * labels per sample, RTS_PROM_MAX_BOUNDS buckets per histogram, and max_bytes
 * of output in all. Allocation: only the growth of the output buffer.
 *
 * Threads: a writer is used by one thread (the scraping thread); it reads the
 * histograms it is given and never writes them.
 */
#ifndef RTS_SERVE_PROM_H
#define RTS_SERVE_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/hist.h"

#define RTS_PROM_NAME_MAX 128                  /* bytes of a metric or label name */
#define RTS_PROM_VALUE_MAX 1024                /* bytes of one label value */
#define RTS_PROM_HELP_MAX 1024                 /* bytes of a help text */
#define RTS_PROM_MAX_LABELS 16                 /* labels per sample */
#define RTS_PROM_MAX_FAMILIES 512              /* families per exposition */
#define RTS_PROM_MAX_BOUNDS 64                 /* le bounds per histogram, +Inf not counted */
#define RTS_PROM_DEFAULT_MAX_BYTES (16u << 20) /* output bound when max_bytes is 0 */

/* The content type of a 0.0.4 text exposition (for the HTTP response). */
#define RTS_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The fixed le bounds of latency histograms, in seconds: 1us to 10s in
 * 1-2.5-5 steps (22 bounds; +Inf is added). */
#define RTS_PROM_SECONDS_BOUNDS 22
extern const double rts_prom_seconds_bounds[RTS_PROM_SECONDS_BOUNDS];

/* Bounds for ages (feature staleness, checkpoint age), in seconds: 100ms to
 * 7 days (17 bounds; +Inf is added). Use with rts_prom_hist_scaled, unit 1e9
 * for nanoseconds or 1e3 for milliseconds. */
#define RTS_PROM_AGE_BOUNDS 17
extern const double rts_prom_age_bounds[RTS_PROM_AGE_BOUNDS];

enum rts_prom_type { RTS_PROM_COUNTER, RTS_PROM_GAUGE, RTS_PROM_HISTOGRAM };

/* One label; both strings are read during the call only. */
struct rts_prom_label {
    const char *name;
    const char *value;
};

/* The writer. Its fields are private (use the functions); it lives on the
 * scraping thread's stack. The output buffer must not be touched by anyone
 * else between rts_prom_init() and rts_prom_finish(). */
struct rts_prom {
    struct rts_buf *out;
    size_t max_bytes;
    int open;                              /* a family is open */
    enum rts_prom_type type;               /* the open family's */
    size_t nfam;                           /* families opened; the last is the open one */
    size_t fam_off[RTS_PROM_MAX_FAMILIES]; /* each family's name, as an offset in out */
    unsigned char fam_len[RTS_PROM_MAX_FAMILIES];
    unsigned char fam_hist[RTS_PROM_MAX_FAMILIES];
    struct rts_errbuf err; /* the first error; code OK while none */
};

/* Start writing to @out (appended to what it holds; @out stays the caller's).
 * @max_bytes bounds out->len (0: RTS_PROM_DEFAULT_MAX_BYTES); going past it
 * is RTS_ERR_LIMIT. Cannot fail. Thread: the writer's. */
void rts_prom_init(struct rts_prom *p, struct rts_buf *out, size_t max_bytes);

/* Open family @name of @type with @help (non-empty, one line or escaped)
 * and write its # HELP and # TYPE lines. RTS_ERR_INVAL for a bad or reused
 * name, a counter not named *_total, a non-counter named *_total, or an
 * empty help; RTS_ERR_LIMIT past the bounds. Thread: the writer's. */
enum rts_err rts_prom_family(struct rts_prom *p, const char *name, enum rts_prom_type type,
                             const char *help);

/* One sample of the open counter or gauge family, labels @l[0..@nl) (NULL
 * and 0 for none). Counters refuse negative and NaN values; NaN and
 * infinities of gauges are written as NaN, +Inf, -Inf. _u64 writes the
 * integer exactly. Thread: the writer's. */
enum rts_err rts_prom_sample(struct rts_prom *p, const struct rts_prom_label *l, size_t nl,
                             double v);
enum rts_err rts_prom_sample_u64(struct rts_prom *p, const struct rts_prom_label *l, size_t nl,
                                 uint64_t v);

/* One histogram of the open histogram family from @h, whose values are
 * nanoseconds, exposed in seconds with rts_prom_seconds_bounds. @h should be
 * private (a merged copy, see rts_hist_merge). Thread: the writer's. */
enum rts_err rts_prom_hist_seconds(struct rts_prom *p, const struct rts_prom_label *l, size_t nl,
                                   const struct rts_hist *h);

/* The same with caller bounds: a value v of @h is exposed as v / @unit
 * (1e9 for ns to s, 1 for counts like batch sizes, 1e6 for scores kept in
 * millionths), against @bounds[0..@nb) in exposed units (finite, strictly
 * increasing, nb <= RTS_PROM_MAX_BOUNDS; +Inf is added). Thread: the writer's. */
enum rts_err rts_prom_hist_scaled(struct rts_prom *p, const struct rts_prom_label *l, size_t nl,
                                  const struct rts_hist *h, double unit, const double *bounds,
                                  size_t nb);

/* One histogram of plain values kept by the caller: @counts[i] values fell
 * in (bounds[i-1], bounds[i]] (not cumulative), @counts[@nb] above the last
 * bound; @sum is the sum of the values. Bounds as above. Thread: the writer's. */
enum rts_err rts_prom_hist_counts(struct rts_prom *p, const struct rts_prom_label *l, size_t nl,
                                  const double *bounds, const uint64_t *counts, size_t nb,
                                  double sum);

/* The number of values of @h counted under a bound of @le (in @h's own
 * units): those whose representative (see above) is <= @le. What the
 * histogram writers use; pure, any thread, @h private. */
uint64_t rts_prom_hist_le(const struct rts_hist *h, uint64_t le);

/* End the exposition: returns the first error (and copies it into @eb) or
 * RTS_ERR_OK. The output stays in the caller's buffer either way.
 * Thread: the writer's. */
enum rts_err rts_prom_finish(struct rts_prom *p, struct rts_errbuf *eb);

#endif /* RTS_SERVE_PROM_H */
