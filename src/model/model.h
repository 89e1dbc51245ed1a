/*
 * model.h - embedded model evaluators behind one interface.
 *
 * A model is immutable once loaded and shared by reference: whoever holds a
 * pointer holds a reference (rts_model_ref / rts_model_unref); the last
 * unref frees it. Loading parses the file off the hot path (any allocation
 * happens there); rts_model_predict never allocates and may be called by
 * many threads at once on the same model.
 *
 * Formats, detected from the file's content:
 *   xgboost-json  XGBoost's save_model("*.json") (gbtree): gbt.c
 *   linear-json   rtscore's linear/logistic format (docs/MODELS.md): linear.c
 *   mlp-json      rtscore's small MLP format (docs/MODELS.md): mlp.c
 */
#ifndef RTS_MODEL_MODEL_H
#define RTS_MODEL_MODEL_H

#include <stddef.h>

#include "core/err.h"

struct rts_model;

/* Load a model file. Returns a model holding one reference, or NULL with
 * @eb filled (what is wrong, with the JSON key path where there is one).
 * Thread: any; does not touch the workers. */
struct rts_model *rts_model_load(const char *path, struct rts_errbuf *eb)
    __attribute__((warn_unused_result));
/* The same from bytes in memory; @name is used in messages. */
struct rts_model *rts_model_load_mem(const char *name, const char *data, size_t len,
                                     struct rts_errbuf *eb) __attribute__((warn_unused_result));

struct rts_model *rts_model_ref(struct rts_model *m); /* returns @m */
void rts_model_unref(struct rts_model *m);            /* NULL is a no-op */

/* Features the model reads per row, and their names if the file has them
 * (NULL otherwise). */
size_t rts_model_nfeatures(const struct rts_model *m);
const char *rts_model_feature_name(const struct rts_model *m, size_t i);
/* Outputs per row: 1 (a score), or K for multi-class (probability of each). */
size_t rts_model_noutputs(const struct rts_model *m);
/* "xgboost-json", "linear-json" or "mlp-json"; and the objective, e.g.
 * "binary:logistic", "multi:softprob", "logistic", "identity". */
const char *rts_model_format(const struct rts_model *m);
const char *rts_model_objective(const struct rts_model *m);

/* Score @n rows of @nx features each (row-major; NaN = missing) into @y
 * (n * noutputs values, row-major). @nx must equal rts_model_nfeatures().
 * Never allocates. Thread: any; @m is read-only. */
enum rts_err rts_model_predict(const struct rts_model *m, const float *x, size_t n, size_t nx,
                               float *y);

#endif /* RTS_MODEL_MODEL_H */
