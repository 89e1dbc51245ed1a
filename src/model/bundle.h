/*
 * bundle.h - a model bundle: a folder with model.json (the model as the
 * training library wrote it) and manifest.yaml (name, version, format,
 * objective, the ordered feature names, and what training measured).
 *
 * Loading checks the manifest against the model: the same format, as many
 * features, the same names in the same order when the model file names
 * them. A bundle is immutable once loaded. Thread: load and free off the
 * hot path; readers may share it.
 *
 * The manifest's optional `reference:` (what training saw, for the drift
 * monitor in drift.h) is parsed into struct rts_bundle_ref: one histogram
 * per model input that the manifest describes, and one of the scores. Two
 * layouts of `edges` are accepted and stored the same way, as cut points:
 *   len(shares) == len(edges) + 1   edges are cut points (the features):
 *                                   bin 0 is (-inf, e0), bin i [e(i-1), ei),
 *                                   the last [e(n-1), +inf);
 *   len(shares) == len(edges) - 1   edges are bin boundaries (the score,
 *                                   numpy.histogram style): values below the
 *                                   first boundary count in the first bin and
 *                                   values from the last one up in the last;
 *                                   the interior boundaries are the cut points.
 * Either way a value x goes to bin "number of cut points <= x", and NaN to
 * `missing`. Edges must ascend strictly, shares lie in [0, 1] and with
 * `missing` add up to 1 (within 1e-3: the manifest rounds them).
 */
#ifndef RTS_MODEL_BUNDLE_H
#define RTS_MODEL_BUNDLE_H

#include <stddef.h>

#include "core/err.h"
#include "model/model.h"

#define RTS_BUNDLE_MAX_EDGES 1024 /* per reference histogram */

/* One reference histogram; shares == NULL: none for this input. */
struct rts_bundle_hist {
    double *edges;  /* nedges cut points, strictly ascending */
    size_t nedges;
    double *shares; /* nedges + 1 shares of all rows, bin by bin */
    double missing; /* share of rows where the value is missing */
    double min, max; /* range seen in training; NaN when the manifest has none */
};

struct rts_bundle_ref {
    struct rts_bundle_hist *features; /* nfeatures entries, the model's input order */
    struct rts_bundle_hist score;     /* score.shares == NULL: no score histogram */
};

struct rts_bundle {
    struct rts_model *model; /* one reference, dropped by rts_bundle_free */
    char *name;
    long version;
    char **features; /* nfeatures names, the model's input order */
    size_t nfeatures;
    size_t score_class; /* the output that is the score (multi-class; else 0) */
    char label[96]; /* "fraud@3", for records and logs */
    /* Added with the registry and the drift monitor. */
    struct rts_bundle_ref *reference; /* NULL: the manifest has no reference */
    char *dir;                        /* the folder it was loaded from */
};

/* Load the bundle in folder @dir. NULL with @eb filled ("DIR/manifest.yaml:
 * 7:3: features: 11 names, the model reads 12"). */
struct rts_bundle *rts_bundle_load(const char *dir, struct rts_errbuf *eb)
    __attribute__((warn_unused_result));
void rts_bundle_free(struct rts_bundle *b); /* NULL is a no-op */

#endif /* RTS_MODEL_BUNDLE_H */
