/*
 * drift.h - how far live model inputs and scores have moved from what the
 * model was trained on: the population stability index (PSI) of each input
 * and of the score against the bundle's reference histograms (bundle.h), over
 * a rolling window of recent traffic. Behind the drift_psi{feature} metric.
 *
 * Three parts with separate owners:
 *   struct rts_drift         the reference of one bundle, binned; immutable,
 *                            shared by every thread; built off the hot path.
 *   struct rts_drift_counts  one worker's live counts, written by that
 *                            worker only: each row is binned with the
 *                            reference's edges (plus a missing bin, NaN) and
 *                            counted, without allocating or locking.
 *   rts_drift_psi()          any thread (the metrics scrape): merges the
 *                            workers' counts over the window and computes
 *                            PSI = sum over bins (a - e) * ln(a / e), a the
 *                            live share, e the reference share, each raised
 *                            to epsilon when below it (an empty bin).
 *
 * The window is a ring of `sub_windows` sub-windows of `sub_window_us` each,
 * by the caller's clock: sub-window p holds what was counted while
 * floor(now / sub_window_us) == p. The worker moves to the current one with
 * rts_drift_tick() (once per batch is enough: it is one division and a
 * compare); reusing a slot empties it first. PSI at time now covers the
 * sub-windows p-K+1 .. p of p = floor(now / sub_window_us): between (K-1) and
 * K sub-windows of traffic, so the figure follows recent traffic and
 * forgets the old. The reader never blocks the writer: a slot being reused
 * while it is read is detected (a sequence count) and read again.
 *
 * A bundle without a reference has no drift: rts_drift_active() is 0, adds
 * are no-ops and every PSI is NaN. An input without a histogram in the
 * reference has a NaN PSI; so has any PSI while its window holds no row.
 */
#ifndef RTS_MODEL_DRIFT_H
#define RTS_MODEL_DRIFT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "model/bundle.h"

#define RTS_DRIFT_MAX_SUB_WINDOWS 1440
#define RTS_DRIFT_PSI_WARN 0.1  /* conventional: below, no significant change */
#define RTS_DRIFT_PSI_ALERT 0.25 /* conventional: from here, a major shift */

struct rts_drift;
struct rts_drift_counts;

/* Options; a zero field takes its default. */
struct rts_drift_opts {
    int64_t sub_window_us; /* default 60 s */
    unsigned sub_windows;  /* 1..RTS_DRIFT_MAX_SUB_WINDOWS; default 60 (a 1 h window) */
    double epsilon;        /* floor of a share in the PSI sum, (0, 0.1]; default 1e-4 */
};

/* What a PSI was computed from. */
struct rts_drift_window {
    uint64_t rows;       /* rows counted in the window, all workers */
    uint64_t score_rows; /* of those, rows with a score (rts_drift_add) */
    int64_t from_us;     /* the window: [from_us, to_us) */
    int64_t to_us;
};

/* The reference of bundle @b (copied: @b may go before the result). NULL
 * with @eb filled on a bad option (RTS_ERR_INVAL) or RTS_ERR_NOMEM. A bundle
 * without a reference gives an inactive drift, not an error. The caller owns
 * it; free it after every rts_drift_counts made from it. Thread: any. */
struct rts_drift *rts_drift_new(const struct rts_bundle *b, const struct rts_drift_opts *o,
                                struct rts_errbuf *eb) __attribute__((warn_unused_result));
void rts_drift_free(struct rts_drift *d); /* NULL is a no-op */

int rts_drift_active(const struct rts_drift *d); /* 1 if there is anything to compare */
size_t rts_drift_nfeatures(const struct rts_drift *d); /* the model's inputs */
const char *rts_drift_feature_name(const struct rts_drift *d, size_t i);
int rts_drift_has_feature(const struct rts_drift *d, size_t i); /* has a reference histogram */
int rts_drift_has_score(const struct rts_drift *d);

/* One worker's counts for @d, all memory allocated here. NULL with @eb
 * filled (RTS_ERR_NOMEM). The caller owns it. Thread: any, before the worker
 * uses it. */
struct rts_drift_counts *rts_drift_worker_new(const struct rts_drift *d, struct rts_errbuf *eb)
    __attribute__((warn_unused_result));
void rts_drift_worker_free(struct rts_drift_counts *w); /* NULL is a no-op; no reader may remain */

/* Move to the sub-window of @now_us (a time before the current sub-window is
 * ignored). Rows added before the first tick are not counted. Never
 * allocates. Thread: the worker. */
void rts_drift_tick(struct rts_drift_counts *w, int64_t now_us);

/* Count one row: @row holds the model's inputs in the model's order
 * (rts_drift_nfeatures() floats, NaN = missing) and @score the model's score
 * (NaN counts in the score's missing bin). rts_drift_add_row() counts the
 * inputs only (a row scored by the fallback). Never allocates, no lock.
 * Thread: the worker. */
void rts_drift_add(struct rts_drift_counts *w, const float *row, float score);
void rts_drift_add_row(struct rts_drift_counts *w, const float *row);

/* PSI over the window ending at @now_us, merged over @n workers' counts
 * (each made from @d; NULL entries are skipped): @psi_features gets
 * rts_drift_nfeatures() values (may be NULL), @psi_score one (may be NULL),
 * @win what they were computed from (may be NULL). NaN where there is no
 * reference or no row. Allocates a scratch array: RTS_ERR_NOMEM. Never
 * blocks the workers. Thread: any. */
enum rts_err rts_drift_psi(const struct rts_drift *d, struct rts_drift_counts *const *workers,
                           size_t n, int64_t now_us, double *psi_features, double *psi_score,
                           struct rts_drift_window *win);

/* PSI of @live against @ref (@nbins shares each, both adding up to about 1),
 * shares below @epsilon raised to it. The formula rts_drift_psi() uses,
 * exposed for tests and tools. Thread: any. */
double rts_drift_psi_shares(const double *live, const double *ref, size_t nbins, double epsilon);

/* 0 below RTS_DRIFT_PSI_WARN (and for NaN), 1 below RTS_DRIFT_PSI_ALERT, else 2. */
int rts_drift_level(double psi);

/* The inputs (and the score) whose PSI is at least @threshold, as one line
 * for a log ("drift over 0.25 in 2 of 12: amount_log 0.41, score 0.27"),
 * written to @msg (@cap bytes, truncated). Nothing is reported while @win
 * holds fewer than @min_rows rows (too few to tell). Returns how many are at
 * or over the threshold; @msg is "" when none. Thread: any. */
size_t rts_drift_warnings(const struct rts_drift *d, const double *psi_features, double psi_score,
                          const struct rts_drift_window *win, double threshold, uint64_t min_rows,
                          char *msg, size_t cap);

#endif /* RTS_MODEL_DRIFT_H */
