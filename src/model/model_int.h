/*
 * model_int.h - what a model format implements (private to src/model/).
 *
 * A format's loader parses a JSON document (jansson) into its own struct
 * that starts with struct rts_model, fills the common fields and the ops,
 * and returns it. model.c owns detection, reference counting and the public
 * accessors.
 */
#ifndef RTS_MODEL_MODEL_INT_H
#define RTS_MODEL_MODEL_INT_H

#include <jansson.h>
#include <stdatomic.h>

#include "model/model.h"

struct rts_model_ops {
    const char *format; /* "xgboost-json" */
    /* Rows as in rts_model_predict; nx already checked. Never allocates. */
    void (*predict)(const struct rts_model *m, const float *x, size_t n, float *y);
    void (*free)(struct rts_model *m); /* frees the whole object, names too */
};

struct rts_model {
    const struct rts_model_ops *ops;
    atomic_long refs;
    size_t nfeatures, noutputs;
    char **feature_names; /* nfeatures entries or NULL; freed by rts_model_free_common */
    char objective[64];
};

/* Loaders: parse @doc (the whole file) or return NULL with @eb filled, the
 * message naming the key path ("learner.gradient_booster.model.trees[3].
 * split_indices: ..."). */
struct rts_model *rts_gbt_load(json_t *doc, struct rts_errbuf *eb);
struct rts_model *rts_linear_load(json_t *doc, struct rts_errbuf *eb);
struct rts_model *rts_mlp_load(json_t *doc, struct rts_errbuf *eb);

/* For the loaders' checks: fill @eb (code @code, the formatted message) and
 * return -1, so that a check reads `return rts_model_bad(eb, ...);`. */
int rts_model_bad(struct rts_errbuf *eb, enum rts_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "an object", "an array", "a string", "a number", "a boolean" or "null":
 * what a loader found where it expected something else. */
const char *rts_model_json_kind(const json_t *v);

/* Frees feature_names (the loaders' free ops call it). */
void rts_model_free_common(struct rts_model *m);

#endif /* RTS_MODEL_MODEL_INT_H */
