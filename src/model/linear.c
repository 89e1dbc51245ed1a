/*
 * linear.c - the "linear-json" format (docs/MODELS.md): linear and logistic
 * models, y = objective(coef x + intercept).
 *
 * A linear model is a dense network with a single identity layer, so this
 * file only validates what is particular to the format ("coef" is outputs x
 * features, "intercept" one number per output) with messages naming those
 * keys, then lowers the document onto mlp.c's loader: the input stage
 * (missing values, standardize), the objective, the checks on everything
 * shared, the evaluator and its numerics are one code path for both formats.
 * The model still reports its format as "linear-json".
 */
#include <stdio.h>
#include <string.h>

#include "model/model_int.h"

#define LINEAR_MAX_OUTPUTS 1024 /* mlp.c's units per layer */


/* @arr is an array of @n numbers, else an error on @path[index]. */
static int check_numbers(const json_t *arr, size_t n, const char *path, const char *what,
                         struct rts_errbuf *eb)
{
    if (!json_is_array(arr)) {
        return rts_model_bad(eb, RTS_ERR_PARSE, "%s: expected an array of %zu numbers%s", path, n, what);
    }
    if (json_array_size(arr) != n) {
        return rts_model_bad(eb, RTS_ERR_PARSE, "%s: expected %zu numbers%s, got %zu", path, n, what,
                   json_array_size(arr));
    }
    for (size_t i = 0; i < n; i++) {
        if (!json_is_number(json_array_get(arr, i))) {
            return rts_model_bad(eb, RTS_ERR_PARSE, "%s[%zu]: expected a number", path, i);
        }
    }
    return 0;
}

/* "coef" and "intercept": K rows of one number per feature, K numbers. The
 * lowered layer is checked again by mlp.c, which then cannot fail on it. */
static int check_coef(json_t *doc, struct rts_errbuf *eb)
{
    json_t *coef = json_object_get(doc, "coef"), *icpt = json_object_get(doc, "intercept");
    json_t *feats = json_object_get(doc, "features");
    size_t k, nf;
    char path[48];

    if (!coef) {
        return rts_model_bad(eb, RTS_ERR_PARSE, "coef: required");
    }
    if (!icpt) {
        return rts_model_bad(eb, RTS_ERR_PARSE, "intercept: required");
    }
    if (!json_is_array(coef) || json_array_size(coef) == 0) {
        return rts_model_bad(eb, RTS_ERR_PARSE,
                   "coef: expected a non-empty array of rows (one per output), each one number "
                   "per feature");
    }
    k = json_array_size(coef);
    if (k > LINEAR_MAX_OUTPUTS) {
        return rts_model_bad(eb, RTS_ERR_LIMIT, "coef: %zu outputs, at most %d", k, LINEAR_MAX_OUTPUTS);
    }
    if (!json_is_array(feats) || json_array_size(feats) == 0) {
        return 0; /* mlp.c reports "features" before it looks at the layer */
    }
    nf = json_array_size(feats);
    for (size_t i = 0; i < k; i++) {
        snprintf(path, sizeof(path), "coef[%zu]", i);
        if (check_numbers(json_array_get(coef, i), nf, path, " (one per feature)", eb) != 0) {
            return -1;
        }
    }
    return check_numbers(icpt, k, "intercept", " (one per output)", eb);
}

struct rts_model *rts_linear_load(json_t *doc, struct rts_errbuf *eb)
{
    static const char *const keys[] = {"format",      "version", "objective", "features", "missing",
                                       "standardize", "coef",    "intercept", "meta",     NULL};
    struct rts_model *m = NULL;
    json_t *low = NULL, *layer = NULL;

    if (!json_is_object(doc)) {
        rts_model_bad(eb, RTS_ERR_PARSE, "expected a JSON object");
        return NULL;
    }
    for (void *it = json_object_iter(doc); it; it = json_object_iter_next(doc, it)) {
        const char *key = json_object_iter_key(it);
        size_t i = 0;
        while (keys[i] && strcmp(keys[i], key) != 0) {
            i++;
        }
        if (!keys[i]) {
            rts_model_bad(eb, RTS_ERR_PARSE, "%s: unknown key", key);
            return NULL;
        }
    }
    if (check_coef(doc, eb) != 0) {
        return NULL;
    }
    /* shallow copies: the numbers are shared with @doc, not duplicated */
    low = json_copy(doc);
    layer = json_pack("{s:O, s:O, s:s}", "weights", json_object_get(doc, "coef"), "bias",
                      json_object_get(doc, "intercept"), "activation", "identity");
    if (!low || !layer || json_object_del(low, "coef") != 0 ||
        json_object_del(low, "intercept") != 0 ||
        json_object_set_new(low, "layers", json_pack("[O]", layer)) != 0) {
        rts_model_bad(eb, RTS_ERR_NOMEM, "out of memory");
        goto out;
    }
    m = rts_mlp_load(low, eb);
out:
    json_decref(layer);
    json_decref(low);
    return m;
}
