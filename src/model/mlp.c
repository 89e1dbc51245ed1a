/*
 * mlp.c - the "mlp-json" format (docs/MODELS.md): a stack of dense layers
 * behind an input stage, and the evaluator that linear.c reuses for
 * "linear-json" (a linear model is a network with one identity layer).
 *
 * A row is scored in double: the input stage replaces NaN with the feature's
 * "missing" value and then, if the file has "standardize", computes
 * (x - mean) / scale - the order scikit-learn's SimpleImputer and
 * StandardScaler use. Each layer computes act(W a + b); the objective
 * (logistic, softmax or identity) turns the last layer into the outputs,
 * which are rounded to float only at the end.
 *
 * Invariants after a successful load: 1 <= nfeatures <= MLP_MAX_FEATURES,
 * 1..MLP_MAX_LAYERS layers of 1..MLP_MAX_UNITS units each, shapes chain
 * (layer 0 reads nfeatures values, layer l reads layer l-1's width), every
 * number finite, scale never 0. That is what lets predict work in fixed
 * stack scratch and never allocate. The object is immutable after load.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_int.h"

#define MLP_MAX_FEATURES 4096
#define MLP_MAX_UNITS 1024
#define MLP_MAX_LAYERS 16

enum mlp_act { ACT_IDENTITY, ACT_RELU, ACT_TANH, ACT_LOGISTIC, ACT_SOFTMAX };

struct mlp_layer {
    size_t nin, nout;
    double *w; /* nout rows of nin weights */
    double *b; /* nout */
    enum mlp_act act;
};

struct mlp {
    struct rts_model base; /* first: the loader returns &base */
    double *fill;          /* nfeatures: what replaces NaN */
    double *mean, *scale;  /* nfeatures each, or both NULL without "standardize" */
    enum mlp_act out;      /* the objective: ACT_LOGISTIC, ACT_SOFTMAX or ACT_IDENTITY */
    size_t nlayers;
    struct mlp_layer layers[MLP_MAX_LAYERS];
};

static const char *act_name(enum mlp_act a)
{
    switch (a) {
    case ACT_IDENTITY:
        return "identity";
    case ACT_RELU:
        return "relu";
    case ACT_TANH:
        return "tanh";
    case ACT_LOGISTIC:
        return "logistic";
    case ACT_SOFTMAX:
        return "softmax";
    }
    return "?";
}

static const enum mlp_act hidden_acts[] = {ACT_RELU, ACT_TANH, ACT_LOGISTIC, ACT_IDENTITY};
static const enum mlp_act objectives[] = {ACT_LOGISTIC, ACT_SOFTMAX, ACT_IDENTITY};

static const char *const strategies[] = {"zero",     "mean",          "median",
                                         "constant", "most_frequent", NULL};

static void mlp_free(struct rts_model *m)
{
    struct mlp *net = (struct mlp *)m;

    if (!net) {
        return;
    }
    for (size_t l = 0; l < net->nlayers; l++) {
        free(net->layers[l].w);
        free(net->layers[l].b);
    }
    free(net->fill);
    free(net->mean);
    free(net->scale);
    rts_model_free_common(&net->base);
    free(net);
}

/* ---- predict ---------------------------------------------------------- */

static void activate(enum mlp_act act, double *v, size_t n)
{
    double max, sum;

    switch (act) {
    case ACT_IDENTITY:
        break;
    case ACT_RELU:
        for (size_t i = 0; i < n; i++) {
            v[i] = v[i] > 0.0 ? v[i] : 0.0;
        }
        break;
    case ACT_TANH:
        for (size_t i = 0; i < n; i++) {
            v[i] = tanh(v[i]);
        }
        break;
    case ACT_LOGISTIC:
        for (size_t i = 0; i < n; i++) {
            v[i] = 1.0 / (1.0 + exp(-v[i]));
        }
        break;
    case ACT_SOFTMAX:
        /* as scikit-learn: subtract the max, exponentiate, divide by the sum */
        max = v[0];
        for (size_t i = 1; i < n; i++) {
            max = v[i] > max ? v[i] : max;
        }
        sum = 0.0;
        for (size_t i = 0; i < n; i++) {
            v[i] = exp(v[i] - max);
            sum += v[i];
        }
        for (size_t i = 0; i < n; i++) {
            v[i] /= sum;
        }
        break;
    }
}

static void dense(const struct mlp_layer *ly, const double *in, double *out)
{
    for (size_t i = 0; i < ly->nout; i++) {
        const double *w = ly->w + i * ly->nin;
        double s = 0.0;
        for (size_t j = 0; j < ly->nin; j++) {
            s += w[j] * in[j];
        }
        out[i] = s + ly->b[i];
    }
    activate(ly->act, out, ly->nout);
}

/* 48 KiB of stack scratch: the input row and two ping-pong layer buffers. */
static void mlp_predict(const struct rts_model *m, const float *x, size_t n, float *y)
{
    const struct mlp *net = (const struct mlp *)(const void *)m;
    size_t nf = m->nfeatures, k = m->noutputs;
    double in[MLP_MAX_FEATURES], h[2][MLP_MAX_UNITS];

    for (size_t r = 0; r < n; r++) {
        const float *xr = x + r * nf;
        const double *a = in;
        double *o = in;
        for (size_t j = 0; j < nf; j++) {
            double v = isnan(xr[j]) ? net->fill[j] : (double)xr[j];
            in[j] = net->mean ? (v - net->mean[j]) / net->scale[j] : v;
        }
        for (size_t l = 0; l < net->nlayers; l++) {
            o = h[l & 1];
            dense(&net->layers[l], a, o);
            a = o;
        }
        activate(net->out, o, k);
        for (size_t i = 0; i < k; i++) {
            y[r * k + i] = (float)o[i];
        }
    }
}

static const struct rts_model_ops mlp_ops = {
    .format = "mlp-json",
    .predict = mlp_predict,
    .free = mlp_free,
};

/* linear.c hands over "linear-json" documents lowered to one layer; the
 * model keeps reporting its own format. */
static const struct rts_model_ops linear_ops = {
    .format = "linear-json",
    .predict = mlp_predict,
    .free = mlp_free,
};

/* ---- load ------------------------------------------------------------- */



/* A required member of @obj; NULL with "@path.@key: required" if absent. */
static json_t *member(json_t *obj, const char *path, const char *key, struct rts_errbuf *eb)
{
    json_t *v = json_object_get(obj, key);

    if (!v) {
        rts_errf(eb, RTS_ERR_PARSE, 0, 0, "%s%s%s: required", path, *path ? "." : "", key);
    }
    return v;
}

/* Every key of @obj is in @allowed (NULL-terminated), else an error naming it. */
static int known_keys(json_t *obj, const char *path, const char *const *allowed,
                      struct rts_errbuf *eb)
{
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *key = json_object_iter_key(it);
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0) {
            i++;
        }
        if (!allowed[i]) {
            rts_errf(eb, RTS_ERR_PARSE, 0, 0, "%s%s%s: unknown key", path, *path ? "." : "", key);
            return -1;
        }
    }
    return 0;
}

/* @n numbers from the array @arr into @dst (NULL: only check). @what says
 * what the count is, for the message ("one per feature"). */
static int numbers(const json_t *arr, size_t n, double *dst, const char *path, const char *what,
                   struct rts_errbuf *eb)
{
    if (!json_is_array(arr)) {
        return rts_model_bad(eb, RTS_ERR_PARSE, "%s: expected an array of %zu numbers%s, got %s", path, n,
                   what, rts_model_json_kind(arr));
    }
    if (json_array_size(arr) != n) {
        return rts_model_bad(eb, RTS_ERR_PARSE, "%s: expected %zu numbers%s, got %zu", path, n, what,
                   json_array_size(arr));
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(arr, i);
        if (!json_is_number(v)) {
            return rts_model_bad(eb, RTS_ERR_PARSE, "%s[%zu]: expected a number, got %s", path, i, rts_model_json_kind(v));
        }
        if (!isfinite(json_number_value(v))) {
            return rts_model_bad(eb, RTS_ERR_PARSE, "%s[%zu]: not a finite number", path, i);
        }
        if (dst) {
            dst[i] = json_number_value(v);
        }
    }
    return 0;
}

static double *alloc_doubles(size_t n, struct rts_errbuf *eb)
{
    double *p = calloc(n ? n : 1, sizeof(*p));

    if (!p) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
    }
    return p;
}

static int load_header(json_t *doc, struct mlp *net, struct rts_errbuf *eb)
{
    json_t *fmt = member(doc, "", "format", eb), *ver;

    if (!fmt) {
        return -1;
    }
    if (json_is_string(fmt) && strcmp(json_string_value(fmt), "mlp-json") == 0) {
        net->base.ops = &mlp_ops;
    } else if (json_is_string(fmt) && strcmp(json_string_value(fmt), "linear-json") == 0) {
        net->base.ops = &linear_ops;
    } else {
        return rts_model_bad(eb, RTS_ERR_PARSE, "format: expected \"mlp-json\"");
    }
    ver = member(doc, "", "version", eb);
    if (!ver) {
        return -1;
    }
    if (!json_is_integer(ver) || json_integer_value(ver) != 1) {
        return rts_model_bad(eb, RTS_ERR_PARSE, "version: expected 1 (the only version this rtscore reads)");
    }
    return 0;
}

static int load_features(json_t *doc, struct mlp *net, struct rts_errbuf *eb)
{
    json_t *arr = member(doc, "", "features", eb);
    size_t n;

    if (!arr) {
        return -1;
    }
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        return rts_model_bad(eb, RTS_ERR_PARSE, "features: expected a non-empty array of names");
    }
    n = json_array_size(arr);
    if (n > MLP_MAX_FEATURES) {
        return rts_model_bad(eb, RTS_ERR_LIMIT, "features: %zu names, at most %d", n, MLP_MAX_FEATURES);
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(arr, i);
        if (!json_is_string(v) || json_string_length(v) == 0) {
            return rts_model_bad(eb, RTS_ERR_PARSE, "features[%zu]: expected a non-empty name", i);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(json_string_value(v), json_string_value(json_array_get(arr, j))) == 0) {
                return rts_model_bad(eb, RTS_ERR_PARSE,
                           "features[%zu]: \"%s\" already named at features[%zu]", i,
                           json_string_value(v), j);
            }
        }
    }
    net->base.feature_names = calloc(n, sizeof(char *));
    if (!net->base.feature_names) {
        return rts_model_bad(eb, RTS_ERR_NOMEM, "out of memory");
    }
    net->base.nfeatures = n; /* rts_model_free_common frees what was copied */
    for (size_t i = 0; i < n; i++) {
        net->base.feature_names[i] = strdup(json_string_value(json_array_get(arr, i)));
        if (!net->base.feature_names[i]) {
            return rts_model_bad(eb, RTS_ERR_NOMEM, "out of memory");
        }
    }
    return 0;
}

static int load_missing(json_t *doc, struct mlp *net, struct rts_errbuf *eb)
{
    static const char *const keys[] = {"strategy", "values", NULL};
    json_t *obj = member(doc, "", "missing", eb), *st, *vals;
    size_t n = net->base.nfeatures, i = 0;

    if (!obj) {
        return -1;
    }
    if (!json_is_object(obj)) {
        return rts_model_bad(eb, RTS_ERR_PARSE, "missing: expected an object like {\"strategy\": \"zero\"}");
    }
    if (known_keys(obj, "missing", keys, eb) != 0 ||
        !(st = member(obj, "missing", "strategy", eb))) {
        return -1;
    }
    while (json_is_string(st) && strategies[i] &&
           strcmp(strategies[i], json_string_value(st)) != 0) {
        i++;
    }
    if (!json_is_string(st) || !strategies[i]) {
        return rts_model_bad(eb, RTS_ERR_PARSE,
                   "missing.strategy: expected zero, mean, median, constant or "
                   "most_frequent");
    }
    net->fill = alloc_doubles(n, eb);
    if (!net->fill) {
        return -1;
    }
    vals = json_object_get(obj, "values");
    if (i == 0) { /* zero: values may be left out; if given they must all be 0 */
        if (vals && numbers(vals, n, net->fill, "missing.values", " (one per feature)", eb) != 0) {
            return -1;
        }
        for (size_t j = 0; j < n; j++) {
            if (net->fill[j] != 0.0) {
                return rts_model_bad(eb, RTS_ERR_PARSE,
                           "missing.values[%zu]: strategy zero needs 0, got %.17g", j,
                           net->fill[j]);
            }
        }
        return 0;
    }
    if (!(vals = member(obj, "missing", "values", eb))) {
        return -1;
    }
    return numbers(vals, n, net->fill, "missing.values", " (one per feature)", eb);
}

static int load_standardize(json_t *doc, struct mlp *net, struct rts_errbuf *eb)
{
    static const char *const keys[] = {"mean", "scale", NULL};
    json_t *obj = json_object_get(doc, "standardize"), *mean, *scale;
    size_t n = net->base.nfeatures;

    if (!obj) {
        return 0; /* optional */
    }
    if (!json_is_object(obj)) {
        return rts_model_bad(eb, RTS_ERR_PARSE,
                   "standardize: expected an object {\"mean\": [...], \"scale\": [...]}");
    }
    if (known_keys(obj, "standardize", keys, eb) != 0 ||
        !(mean = member(obj, "standardize", "mean", eb)) ||
        !(scale = member(obj, "standardize", "scale", eb))) {
        return -1;
    }
    net->mean = alloc_doubles(n, eb);
    net->scale = alloc_doubles(n, eb);
    if (!net->mean || !net->scale ||
        numbers(mean, n, net->mean, "standardize.mean", " (one per feature)", eb) != 0 ||
        numbers(scale, n, net->scale, "standardize.scale", " (one per feature)", eb) != 0) {
        return -1;
    }
    for (size_t j = 0; j < n; j++) {
        if (net->scale[j] == 0.0) {
            return rts_model_bad(eb, RTS_ERR_PARSE, "standardize.scale[%zu]: must not be 0", j);
        }
    }
    return 0;
}

/* @v names one of the @n activations in @set; -1 if not. */
static int parse_act(const json_t *v, const enum mlp_act *set, size_t n, enum mlp_act *out)
{
    for (size_t i = 0; json_is_string(v) && i < n; i++) {
        if (strcmp(json_string_value(v), act_name(set[i])) == 0) {
            *out = set[i];
            return 0;
        }
    }
    return -1;
}

static int load_layer(json_t *v, size_t l, size_t nin, struct mlp_layer *ly, struct rts_errbuf *eb)
{
    static const char *const keys[] = {"weights", "bias", "activation", NULL};
    char path[64], rpath[96], what[64];
    json_t *w, *b, *act;
    size_t nout;

    snprintf(path, sizeof(path), "layers[%zu]", l);
    if (!json_is_object(v)) {
        return rts_model_bad(eb, RTS_ERR_PARSE,
                   "%s: expected an object {\"weights\", \"bias\", \"activation\"}, got %s", path,
                   rts_model_json_kind(v));
    }
    if (known_keys(v, path, keys, eb) != 0 || !(w = member(v, path, "weights", eb)) ||
        !(b = member(v, path, "bias", eb)) || !(act = member(v, path, "activation", eb))) {
        return -1;
    }
    if (parse_act(act, hidden_acts, sizeof(hidden_acts) / sizeof(hidden_acts[0]), &ly->act) != 0) {
        return rts_model_bad(eb, RTS_ERR_PARSE, "%s.activation: expected relu, tanh, logistic or identity",
                   path);
    }
    if (!json_is_array(w) || json_array_size(w) == 0) {
        return rts_model_bad(eb, RTS_ERR_PARSE,
                   "%s.weights: expected a non-empty array of rows (one per unit)", path);
    }
    nout = json_array_size(w);
    if (nout > MLP_MAX_UNITS) {
        return rts_model_bad(eb, RTS_ERR_LIMIT, "%s.weights: %zu units, at most %d", path, nout,
                   MLP_MAX_UNITS);
    }
    ly->nin = nin;
    if (!(ly->w = alloc_doubles(nout * nin, eb)) || !(ly->b = alloc_doubles(nout, eb))) {
        return -1;
    }
    ly->nout = nout;
    if (l == 0) {
        snprintf(what, sizeof(what), " (one per feature)");
    } else {
        snprintf(what, sizeof(what), " (the width of layers[%zu])", l - 1);
    }
    for (size_t i = 0; i < nout; i++) {
        snprintf(rpath, sizeof(rpath), "%s.weights[%zu]", path, i);
        if (numbers(json_array_get(w, i), nin, ly->w + i * nin, rpath, what, eb) != 0) {
            return -1;
        }
    }
    snprintf(rpath, sizeof(rpath), "%s.bias", path);
    return numbers(b, nout, ly->b, rpath, " (one per unit)", eb);
}

static int load_layers(json_t *doc, struct mlp *net, struct rts_errbuf *eb)
{
    json_t *arr = member(doc, "", "layers", eb);
    size_t n, nin = net->base.nfeatures;

    if (!arr) {
        return -1;
    }
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        return rts_model_bad(eb, RTS_ERR_PARSE, "layers: expected a non-empty array of layers");
    }
    n = json_array_size(arr);
    if (n > MLP_MAX_LAYERS) {
        return rts_model_bad(eb, RTS_ERR_LIMIT, "layers: %zu layers, at most %d", n, MLP_MAX_LAYERS);
    }
    for (size_t l = 0; l < n; l++) {
        net->nlayers = l + 1; /* mlp_free frees what this layer allocated */
        if (load_layer(json_array_get(arr, l), l, nin, &net->layers[l], eb) != 0) {
            return -1;
        }
        nin = net->layers[l].nout;
    }
    net->base.noutputs = nin;
    return 0;
}

static int load_objective(json_t *doc, struct mlp *net, struct rts_errbuf *eb)
{
    json_t *obj = member(doc, "", "objective", eb);

    if (!obj) {
        return -1;
    }
    if (parse_act(obj, objectives, sizeof(objectives) / sizeof(objectives[0]), &net->out) != 0) {
        return rts_model_bad(eb, RTS_ERR_PARSE, "objective: expected logistic, softmax or identity");
    }
    snprintf(net->base.objective, sizeof(net->base.objective), "%s", act_name(net->out));
    return 0;
}

struct rts_model *rts_mlp_load(json_t *doc, struct rts_errbuf *eb)
{
    static const char *const keys[] = {"format",      "version", "objective", "features", "missing",
                                       "standardize", "layers",  "meta",      NULL};
    struct mlp *net = calloc(1, sizeof(*net));

    if (!net) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
        return NULL;
    }
    if (!json_is_object(doc)) {
        rts_errf(eb, RTS_ERR_PARSE, 0, 0, "expected a JSON object");
        goto fail;
    }
    if (known_keys(doc, "", keys, eb) != 0 || load_header(doc, net, eb) != 0 ||
        load_objective(doc, net, eb) != 0 || load_features(doc, net, eb) != 0 ||
        load_missing(doc, net, eb) != 0 || load_standardize(doc, net, eb) != 0 ||
        load_layers(doc, net, eb) != 0) {
        goto fail;
    }
    if (net->out == ACT_SOFTMAX && net->base.noutputs < 2) {
        rts_errf(eb, RTS_ERR_PARSE, 0, 0,
                 "objective: softmax needs at least 2 outputs, the model has %zu",
                 net->base.noutputs);
        goto fail;
    }
    return &net->base;
fail:
    mlp_free(&net->base);
    return NULL;
}
