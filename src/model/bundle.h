/*
 * bundle.h - a model bundle: a folder with model.json (the model as the
 * training library wrote it) and manifest.yaml (name, version, format,
 * objective, the ordered feature names, and what training measured).
 *
 * Loading checks the manifest against the model: the same format, as many
 * features, the same names in the same order when the model file names
 * them. A bundle is immutable once loaded. Thread: load and free off the
 * hot path; readers may share it.
 */
#ifndef RTS_MODEL_BUNDLE_H
#define RTS_MODEL_BUNDLE_H

#include <stddef.h>

#include "core/err.h"
#include "model/model.h"

struct rts_bundle {
    struct rts_model *model; /* one reference, dropped by rts_bundle_free */
    char *name;
    long version;
    char **features; /* nfeatures names, the model's input order */
    size_t nfeatures;
    size_t score_class; /* the output that is the score (multi-class; else 0) */
    char label[96]; /* "fraud@3", for records and logs */
};

/* Load the bundle in folder @dir. NULL with @eb filled ("DIR/manifest.yaml:
 * 7:3: features: 11 names, the model reads 12"). */
struct rts_bundle *rts_bundle_load(const char *dir, struct rts_errbuf *eb)
    __attribute__((warn_unused_result));
void rts_bundle_free(struct rts_bundle *b); /* NULL is a no-op */

#endif /* RTS_MODEL_BUNDLE_H */
