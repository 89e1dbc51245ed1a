/*
 * accuracy.c - ROC AUC and per-rule precision and recall from counts
 * (accuracy.h).
 */
#include "daemon/accuracy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define BUMP(x) __atomic_store_n(&(x), LOAD(x) + 1, __ATOMIC_RELAXED)

static uint64_t *rule_counts(const struct rts_accuracy *a, enum rts_acc_scorer s, int positive)
{
    return a->rules + ((size_t)s * 2 + (size_t)positive) * (a->nrules + 1);
}

int rts_accuracy_init(struct rts_accuracy *a, size_t nrules)
{
    memset(a, 0, sizeof(*a));
    a->nrules = nrules;
    a->rules = calloc(RTS_ACC__COUNT * 2 * (nrules + 1), sizeof(*a->rules));
    return a->rules ? 0 : -1;
}

void rts_accuracy_fini(struct rts_accuracy *a)
{
    free(a->rules);
    a->rules = NULL;
}

void rts_accuracy_add(struct rts_accuracy *a, enum rts_acc_scorer s, int positive, double score,
                      int rule)
{
    positive = positive != 0;
    if (!isnan(score)) {
        double b = score <= 0 ? 0 : score >= 1 ? RTS_ACC_BINS - 1 : score * (RTS_ACC_BINS - 1);
        BUMP(a->bins[s][positive][(size_t)b]);
    }
    BUMP(rule_counts(a, s, positive)[rule + 1]);
}

void rts_accuracy_merge(struct rts_accuracy *into, const struct rts_accuracy *from)
{
    for (int s = 0; s < RTS_ACC__COUNT; s++) {
        for (int y = 0; y < 2; y++) {
            uint64_t *dst = rule_counts(into, (enum rts_acc_scorer)s, y);
            const uint64_t *src = rule_counts(from, (enum rts_acc_scorer)s, y);
            for (size_t b = 0; b < RTS_ACC_BINS; b++) {
                into->bins[s][y][b] += LOAD(from->bins[s][y][b]);
            }
            for (size_t r = 0; r <= into->nrules; r++) {
                dst[r] += LOAD(src[r]);
            }
        }
    }
}

uint64_t rts_accuracy_rows(const struct rts_accuracy *a, enum rts_acc_scorer s,
                           uint64_t *positives)
{
    uint64_t n[2] = {0, 0};

    for (int y = 0; y < 2; y++) {
        const uint64_t *c = rule_counts(a, s, y);
        for (size_t r = 0; r <= a->nrules; r++) {
            n[y] += c[r];
        }
    }
    if (positives) {
        *positives = n[1];
    }
    return n[0] + n[1];
}

double rts_accuracy_auc(const struct rts_accuracy *a, enum rts_acc_scorer s)
{
    /* the probability that a random positive outscores a random negative:
     * walk the bins upwards, pairing each bin's positives with the
     * negatives below it (ties: half) */
    double pairs = 0, neg_below = 0, pos = 0, neg = 0;

    for (size_t b = 0; b < RTS_ACC_BINS; b++) {
        double p = (double)a->bins[s][1][b], n = (double)a->bins[s][0][b];
        pairs += p * (neg_below + 0.5 * n);
        neg_below += n;
        pos += p;
        neg += n;
    }
    return pos > 0 && neg > 0 ? pairs / (pos * neg) : NAN;
}

void rts_accuracy_flagged(const struct rts_accuracy *a, enum rts_acc_scorer s, size_t upto,
                          uint64_t *flagged, uint64_t *tp)
{
    const uint64_t *neg = rule_counts(a, s, 0), *pos = rule_counts(a, s, 1);

    *flagged = *tp = 0;
    for (size_t r = 0; r <= upto && r < a->nrules; r++) {
        *flagged += neg[r + 1] + pos[r + 1];
        *tp += pos[r + 1];
    }
}
