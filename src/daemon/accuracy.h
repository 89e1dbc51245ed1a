/*
 * accuracy.h - how well the scores separate labelled events: ROC AUC from
 * score histograms, and precision and recall of each rule's cut-off. For
 * `rtscore demo` and `rtscore run --label FIELD`, where the events carry
 * their label (the generator's is_fraud).
 *
 * Two scorers are tracked side by side: the model (rows it scored) and the
 * fallback score (every row). One struct per worker, written by that worker
 * only with relaxed stores; readers merge copies (rts_daemon_stats' rule).
 * AUC is computed over 1,001 score bins of width 0.001 (ties within a bin
 * count half), so it is exact to about 1e-3.
 */
#ifndef RTS_DAEMON_ACCURACY_H
#define RTS_DAEMON_ACCURACY_H

#include <stddef.h>
#include <stdint.h>

#define RTS_ACC_BINS 1001

enum rts_acc_scorer { RTS_ACC_MODEL, RTS_ACC_FALLBACK, RTS_ACC__COUNT };

struct rts_accuracy {
    size_t nrules;
    uint64_t bins[RTS_ACC__COUNT][2][RTS_ACC_BINS]; /* [scorer][positive][score bin] */
    uint64_t *rules; /* [scorer][positive][rule + 1]: the matched rule, [0] none */
};

int rts_accuracy_init(struct rts_accuracy *a, size_t nrules); /* 0, or -1 out of memory */
void rts_accuracy_fini(struct rts_accuracy *a);

/* One labelled row: @score (NaN is not counted in the AUC) and the rule it
 * matched (-1 = none). Thread: the owner. */
void rts_accuracy_add(struct rts_accuracy *a, enum rts_acc_scorer s, int positive, double score,
                      int rule);
/* Add @from's counts to @into (same nrules). Any thread. */
void rts_accuracy_merge(struct rts_accuracy *into, const struct rts_accuracy *from);

/* Rows counted for @s, and how many of them were positive. */
uint64_t rts_accuracy_rows(const struct rts_accuracy *a, enum rts_acc_scorer s,
                           uint64_t *positives);
/* ROC AUC of @s; NaN without both classes. */
double rts_accuracy_auc(const struct rts_accuracy *a, enum rts_acc_scorer s);
/* Rows flagged by rules 0..@upto (first match), among them the positives:
 * precision = *tp / *flagged, recall = *tp / positives. */
void rts_accuracy_flagged(const struct rts_accuracy *a, enum rts_acc_scorer s, size_t upto,
                          uint64_t *flagged, uint64_t *tp);

#endif /* RTS_DAEMON_ACCURACY_H */
