/*
 * drift.c - PSI of live inputs and scores against a bundle's reference
 * (drift.h).
 *
 * Every histogram tracked (the inputs with a reference, then the score) owns
 * nedges + 2 consecutive counters in a sub-window: its bins, then its missing
 * bin. A sub-window ("slot") of a worker is one run of atomic words:
 *   [0] seq         even while the slot is stable, odd while it is reset
 *   [1] tag         1 + the period it counts, 0 if never used
 *   [2] rows        rows added
 *   [3] score_rows  rows added with a score
 *   [4..]           the counters
 * The worker is the only writer of its slots: a count is a load and a
 * store (no read-modify-write needed), so counting costs what plain
 * increments cost, and readers on other threads see each word whole. Reusing
 * a slot for a new period is a seqlock write (seq odd, zero, tag, seq even);
 * a reader copies a slot between two reads of seq and retries if they differ,
 * so it never mixes two periods and never makes the worker wait. Without
 * fences (TSan does not model them): every store to a slot after the odd seq
 * is a release and every load of the copy an acquire, so a copy that saw any
 * word written after the odd seq sees seq changed on its second read. On
 * x86 these are plain moves.
 */
#include "model/drift.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOT_SEQ 0
#define SLOT_TAG 1
#define SLOT_ROWS 2
#define SLOT_SCORE_ROWS 3
#define SLOT_HDR 4
#define READ_TRIES 8

struct hist {
    size_t nedges;       /* cut points */
    const double *edges; /* into rts_drift.store */
    const double *ref;   /* nedges + 2 shares: the bins, then missing */
    size_t off;          /* its first counter, from SLOT_HDR */
    int active;
};

struct rts_drift {
    size_t nfeatures;
    char **names;
    struct hist *feat; /* nfeatures */
    struct hist score;
    double *store;  /* every edge and share */
    size_t ncounts; /* counters in a slot, after the header */
    size_t stride;  /* SLOT_HDR + ncounts */
    int64_t sub_us;
    unsigned k;
    double eps;
    int active;
};

struct rts_drift_counts {
    const struct rts_drift *d;
    _Atomic uint64_t *slots; /* k * stride */
    _Atomic uint64_t *cur;   /* the slot of period, NULL before the first tick */
    int64_t period;
};

/* ---- the reference ---- */

static size_t hist_store(const struct rts_bundle_hist *h)
{
    return h && h->shares ? h->nedges + h->nedges + 2 : 0;
}

/* Copy @h into @at (edges, then shares and missing); returns the next free
 * double. Counters are given out from *@next. */
static double *hist_copy(struct hist *dst, const struct rts_bundle_hist *h, double *at,
                         size_t *next)
{
    if (!h || !h->shares) {
        return at;
    }
    dst->nedges = h->nedges;
    dst->edges = at;
    memcpy(at, h->edges, h->nedges * sizeof(*at));
    at += h->nedges;
    dst->ref = at;
    memcpy(at, h->shares, (h->nedges + 1) * sizeof(*at));
    at[h->nedges + 1] = h->missing;
    at += h->nedges + 2;
    dst->off = *next;
    *next += h->nedges + 2;
    dst->active = 1;
    return at;
}

struct rts_drift *rts_drift_new(const struct rts_bundle *b, const struct rts_drift_opts *o,
                                struct rts_errbuf *eb)
{
    struct rts_drift_opts opt = {0};
    const struct rts_bundle_ref *ref = b ? b->reference : NULL;
    struct rts_drift *d;
    size_t i, ndoubles = 0, next = 0;
    double *at;

    if (o) {
        opt = *o;
    }
    if (opt.sub_window_us == 0) {
        opt.sub_window_us = INT64_C(60000000);
    }
    if (opt.sub_windows == 0) {
        opt.sub_windows = 60;
    }
    if (opt.epsilon == 0) {
        opt.epsilon = 1e-4;
    }
    if (opt.sub_window_us < 1000) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "drift: sub_window: %lld us is less than 1 ms",
                 (long long)opt.sub_window_us);
        return NULL;
    }
    if (opt.sub_windows > RTS_DRIFT_MAX_SUB_WINDOWS) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "drift: sub_windows: %u is more than %d",
                 opt.sub_windows, RTS_DRIFT_MAX_SUB_WINDOWS);
        return NULL;
    }
    if (!(opt.epsilon > 0 && opt.epsilon <= 0.1)) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "drift: epsilon: %g is not in (0, 0.1]", opt.epsilon);
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (!d) {
        goto nomem;
    }
    d->sub_us = opt.sub_window_us;
    d->k = opt.sub_windows;
    d->eps = opt.epsilon;
    d->nfeatures = b ? b->nfeatures : 0;
    d->names = calloc(d->nfeatures + 1, sizeof(*d->names));
    d->feat = calloc(d->nfeatures + 1, sizeof(*d->feat));
    if (!d->names || !d->feat) {
        goto nomem;
    }
    for (i = 0; i < d->nfeatures; i++) {
        d->names[i] = strdup(b->features[i]);
        if (!d->names[i]) {
            goto nomem;
        }
        ndoubles += ref ? hist_store(&ref->features[i]) : 0;
    }
    ndoubles += ref ? hist_store(&ref->score) : 0;
    d->store = calloc(ndoubles + 1, sizeof(*d->store));
    if (!d->store) {
        goto nomem;
    }
    at = d->store;
    for (i = 0; ref && i < d->nfeatures; i++) {
        at = hist_copy(&d->feat[i], &ref->features[i], at, &next);
        d->active |= d->feat[i].active;
    }
    if (ref) {
        at = hist_copy(&d->score, &ref->score, at, &next);
        d->active |= d->score.active;
    }
    d->ncounts = next;
    d->stride = SLOT_HDR + next;
    return d;
nomem:
    rts_drift_free(d);
    rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "drift: out of memory");
    return NULL;
}

void rts_drift_free(struct rts_drift *d)
{
    if (!d) {
        return;
    }
    for (size_t i = 0; d->names && i < d->nfeatures; i++) {
        free(d->names[i]);
    }
    free(d->names);
    free(d->feat);
    free(d->store);
    free(d);
}

int rts_drift_active(const struct rts_drift *d)
{
    return d->active;
}

size_t rts_drift_nfeatures(const struct rts_drift *d)
{
    return d->nfeatures;
}

const char *rts_drift_feature_name(const struct rts_drift *d, size_t i)
{
    return i < d->nfeatures ? d->names[i] : NULL;
}

int rts_drift_has_feature(const struct rts_drift *d, size_t i)
{
    return i < d->nfeatures && d->feat[i].active;
}

int rts_drift_has_score(const struct rts_drift *d)
{
    return d->score.active;
}

/* ---- the worker's counts ---- */

struct rts_drift_counts *rts_drift_worker_new(const struct rts_drift *d, struct rts_errbuf *eb)
{
    struct rts_drift_counts *w = calloc(1, sizeof(*w));
    size_t i, n = (size_t)d->k * d->stride;

    if (w) {
        w->slots = calloc(n, sizeof(*w->slots));
    }
    if (!w || !w->slots) {
        free(w);
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "drift: out of memory for %zu counters", n);
        return NULL;
    }
    for (i = 0; i < n; i++) {
        atomic_init(&w->slots[i], 0);
    }
    w->d = d;
    return w;
}

void rts_drift_worker_free(struct rts_drift_counts *w)
{
    if (!w) {
        return;
    }
    free(w->slots);
    free(w);
}

void rts_drift_tick(struct rts_drift_counts *w, int64_t now_us)
{
    const struct rts_drift *d = w->d;
    _Atomic uint64_t *s;
    int64_t p;
    uint64_t seq;
    size_t i;

    if (now_us < 0) {
        return;
    }
    p = now_us / d->sub_us;
    if (w->cur && p <= w->period) {
        return;
    }
    s = w->slots + (size_t)(p % d->k) * d->stride;
    seq = atomic_load_explicit(&s[SLOT_SEQ], memory_order_relaxed);
    atomic_store_explicit(&s[SLOT_SEQ], seq + 1, memory_order_relaxed);
    for (i = SLOT_ROWS; i < d->stride; i++) {
        atomic_store_explicit(&s[i], 0, memory_order_release);
    }
    atomic_store_explicit(&s[SLOT_TAG], (uint64_t)p + 1, memory_order_release);
    atomic_store_explicit(&s[SLOT_SEQ], seq + 2, memory_order_release);
    w->cur = s;
    w->period = p;
}

/* Release: a reader that sees this count also sees the odd seq of the reset
 * before it (a plain store on x86). */
static void inc(_Atomic uint64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_release);
}

/* The bin of @x: how many cut points are <= x; the missing bin for NaN. */
static size_t bin_of(const struct hist *h, double x)
{
    size_t lo = 0, hi = h->nedges, mid;

    if (isnan(x)) {
        return h->nedges + 1;
    }
    while (lo < hi) {
        mid = (lo + hi) / 2;
        if (h->edges[mid] <= x) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

void rts_drift_add_row(struct rts_drift_counts *w, const float *row)
{
    const struct rts_drift *d = w->d;
    _Atomic uint64_t *c = w->cur;
    size_t i;

    if (!c) {
        return;
    }
    for (i = 0; i < d->nfeatures; i++) {
        if (d->feat[i].active) {
            inc(&c[SLOT_HDR + d->feat[i].off + bin_of(&d->feat[i], row[i])]);
        }
    }
    inc(&c[SLOT_ROWS]);
}

void rts_drift_add(struct rts_drift_counts *w, const float *row, float score)
{
    const struct rts_drift *d = w->d;

    if (!w->cur) {
        return;
    }
    rts_drift_add_row(w, row);
    if (d->score.active) {
        inc(&w->cur[SLOT_HDR + d->score.off + bin_of(&d->score, score)]);
    }
    inc(&w->cur[SLOT_SCORE_ROWS]);
}

/* ---- PSI ---- */

static double psi_term(double a, double e, double eps)
{
    if (a < eps) {
        a = eps;
    }
    if (e < eps) {
        e = eps;
    }
    return (a - e) * log(a / e);
}

double rts_drift_psi_shares(const double *live, const double *ref, size_t nbins, double epsilon)
{
    double psi = 0;

    for (size_t i = 0; i < nbins; i++) {
        psi += psi_term(live[i], ref[i], epsilon);
    }
    return psi;
}

/* The shares are taken over the histogram's own total, not the rows
 * counter: a slot read while its worker counts is not one instant, and
 * shares of one total always add up to 1. */
static double hist_psi(const struct rts_drift *d, const struct hist *h, const uint64_t *sum)
{
    uint64_t total = 0;
    double psi = 0;
    size_t i;

    if (!h->active) {
        return NAN;
    }
    for (i = 0; i < h->nedges + 2; i++) {
        total += sum[h->off + i];
    }
    if (total == 0) {
        return NAN;
    }
    for (i = 0; i < h->nedges + 2; i++) {
        psi += psi_term((double)sum[h->off + i] / (double)total, h->ref[i], d->eps);
    }
    return psi;
}

/* Copy slot @s into @tmp if it is stable across the copy; 0 if it kept
 * changing period (being reset) for READ_TRIES attempts. */
static int slot_read(const struct rts_drift *d, _Atomic uint64_t *s, uint64_t *tmp)
{
    uint64_t s1, s2;
    size_t i;

    for (int t = 0; t < READ_TRIES; t++) {
        s1 = atomic_load_explicit(&s[SLOT_SEQ], memory_order_acquire);
        if (s1 & 1) {
            continue;
        }
        for (i = SLOT_TAG; i < d->stride; i++) {
            tmp[i] = atomic_load_explicit(&s[i], memory_order_acquire);
        }
        s2 = atomic_load_explicit(&s[SLOT_SEQ], memory_order_relaxed);
        if (s1 == s2) {
            return 1;
        }
    }
    return 0;
}

enum rts_err rts_drift_psi(const struct rts_drift *d, struct rts_drift_counts *const *workers,
                           size_t n, int64_t now_us, double *psi_features, double *psi_score,
                           struct rts_drift_window *win)
{
    int64_t p = now_us < 0 ? 0 : now_us / d->sub_us, first = p - (int64_t)d->k + 1, tp;
    uint64_t *sum = calloc(d->ncounts + 1, sizeof(*sum));
    uint64_t *tmp = calloc(d->stride, sizeof(*tmp));
    uint64_t rows = 0, score_rows = 0;
    size_t i, j, s;

    if (!sum || !tmp) {
        free(sum);
        free(tmp);
        return RTS_ERR_NOMEM;
    }
    for (i = 0; i < n; i++) {
        if (!workers[i]) {
            continue;
        }
        for (s = 0; s < d->k; s++) {
            if (!slot_read(d, workers[i]->slots + s * d->stride, tmp) || tmp[SLOT_TAG] == 0) {
                continue;
            }
            tp = (int64_t)(tmp[SLOT_TAG] - 1);
            if (tp < first || tp > p) {
                continue;
            }
            rows += tmp[SLOT_ROWS];
            score_rows += tmp[SLOT_SCORE_ROWS];
            for (j = 0; j < d->ncounts; j++) {
                sum[j] += tmp[SLOT_HDR + j];
            }
        }
    }
    for (i = 0; psi_features && i < d->nfeatures; i++) {
        psi_features[i] = hist_psi(d, &d->feat[i], sum);
    }
    if (psi_score) {
        *psi_score = hist_psi(d, &d->score, sum);
    }
    if (win) {
        win->rows = rows;
        win->score_rows = score_rows;
        win->from_us = (first < 0 ? 0 : first) * d->sub_us;
        win->to_us = (p + 1) * d->sub_us;
    }
    free(sum);
    free(tmp);
    return RTS_ERR_OK;
}

/* ---- warnings ---- */

int rts_drift_level(double psi)
{
    if (!(psi >= RTS_DRIFT_PSI_WARN)) {
        return 0;
    }
    return psi < RTS_DRIFT_PSI_ALERT ? 1 : 2;
}

/* Append to @msg at *@len, keeping it NUL-terminated and within @cap. */
static void append(char *msg, size_t cap, size_t *len, const char *name, double v)
{
    int k;

    if (*len + 1 >= cap) {
        return;
    }
    k = snprintf(msg + *len, cap - *len, "%s%s %.2f", msg[*len - 1] == ':' ? " " : ", ", name, v);
    if (k > 0) {
        *len += (size_t)k < cap - *len ? (size_t)k : cap - *len - 1;
    }
}

size_t rts_drift_warnings(const struct rts_drift *d, const double *psi_features, double psi_score,
                          const struct rts_drift_window *win, double threshold, uint64_t min_rows,
                          char *msg, size_t cap)
{
    size_t i, over = 0, tracked = 0, len;
    int k;

    if (cap) {
        msg[0] = '\0';
    }
    if (win && win->rows < min_rows) {
        return 0;
    }
    for (i = 0; i < d->nfeatures; i++) {
        tracked += d->feat[i].active;
        over += psi_features && psi_features[i] >= threshold;
    }
    tracked += d->score.active;
    over += psi_score >= threshold && !(win && win->score_rows < min_rows);
    if (over == 0 || cap == 0) {
        return over;
    }
    k = snprintf(msg, cap, "drift over %.2f in %zu of %zu:", threshold, over, tracked);
    len = k < 0 ? 0 : (size_t)k < cap ? (size_t)k : cap - 1;
    for (i = 0; len > 0 && i < d->nfeatures; i++) {
        if (psi_features && psi_features[i] >= threshold) {
            append(msg, cap, &len, d->names[i], psi_features[i]);
        }
    }
    if (len > 0 && psi_score >= threshold && !(win && win->score_rows < min_rows)) {
        append(msg, cap, &len, "score", psi_score);
    }
    return over;
}
