/*
 * gbt.c - the XGBoost JSON gbtree evaluator (save_model("*.json"), 1.7 layout).
 *
 * Loading validates the whole document and flattens every tree into one node
 * array, renumbered breadth-first so that the two children of a split sit
 * side by side: a step is `i = left + (v >= thr)`, one comparison and no
 * branch. XGBoost's rule (strict `x < t` goes left, a missing value takes the
 * default child) is folded into the layout and into a per-row copy of the
 * features, `r`, of 2 * nfeatures floats:
 *     r[f]      = x[f]   (+inf if missing)
 *     r[nx + f] = -x[f]  (+inf if missing)
 *   default right:  v = r[f],      thr = t,              slots (left, right)
 *   default left:   v = r[nx + f], thr = nextup(-t),     slots (right, left)
 * so `v >= thr` is `x >= t` (or missing) for the first, and `-x > -t`, that
 * is `x < t` (or missing), for the second. A leaf points to itself with a
 * NaN threshold, so a walk of exactly `depth` steps ends on the leaf whatever
 * the tree's shape. (The comparisons assume the FPU does not flush
 * denormals to zero, i.e. no -ffast-math in the process.) Walks are
 * interleaved, a row against eight trees or eight rows against one tree, so
 * that their loads overlap; the tree count is padded to a multiple of eight
 * with zero leaves. Margins are summed into the caller's output in float32,
 * in tree order, from the base margin, as XGBoost does, then transformed.
 * Models with more than GBT_FAST_FEATURES features skip the row copy (which
 * lives on the stack) and compute r on the fly.
 *
 * Invariants after a successful load: every reachable node was visited once
 * from the root (no cycles, no shared nodes), every split index is below
 * nfeatures, thresholds and leaf values are finite, every tree's output
 * group is below ngroups. predict() never allocates.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_int.h"

#define GBT_TILE 8            /* walks interleaved per step */
#define GBT_FAST_FEATURES 256 /* rows copied on the stack up to this width */
#define GBT_MAX_CLASSES 65536
#define GBT_MAX_FEATURES ((size_t)1 << 30) /* 2 * nfeatures fits in uint32_t */
#define GBT_MAX_NODES ((size_t)1 << 30)    /* all trees together */
#define GBT_PATH "learner.gradient_booster.model"

enum gbt_transform { GBT_IDENTITY, GBT_SIGMOID, GBT_SOFTMAX };

struct gbt_node {
    float thr;     /* threshold in the row copy's terms (see above); NaN at a leaf */
    uint32_t feat; /* index into the row copy: f, or nfeatures + f for default left */
    uint32_t left; /* global index of slot 0 (slot 1 = left + 1); self at a leaf */
    float leaf;    /* leaf value (0 at splits) */
};

struct gbt {
    struct rts_model base;
    struct gbt_node *nodes;
    size_t nnodes, cap;
    size_t ntrees, ntrees_padded; /* padded to a multiple of GBT_TILE */
    uint32_t *roots;              /* per tree: index of its root in nodes */
    uint32_t *group;              /* per tree: output group */
    uint32_t *depth;              /* per tree: steps from the root to its deepest leaf */
    uint32_t *tile_depth;         /* per tile of GBT_TILE trees: the largest depth */
    size_t ngroups;
    enum gbt_transform transform;
    float base_margin;
};

static const struct rts_model_ops gbt_ops;

/* ---- loading ---- */

static void gbt_free(struct rts_model *m)
{
    struct gbt *g = (struct gbt *)m;

    if (!g) {
        return;
    }
    rts_model_free_common(&g->base);
    free(g->nodes);
    free(g->roots);
    free(g->group);
    free(g->depth);
    free(g->tile_depth);
    free(g);
}



/* @obj.@key of JSON type @type, or NULL with "path.key: ..." in @eb. */
static json_t *get_typed(json_t *obj, const char *path, const char *key, json_type type,
                         struct rts_errbuf *eb)
{
    json_t *v = json_object_get(obj, key);
    static const char *const want[] = {"an object", "an array",  "a string",  "an integer",
                                       "a number",  "a boolean", "a boolean", "null"};

    if (!v) {
        rts_errf(eb, RTS_ERR_PARSE, 0, 0, "%s%s%s: missing", path, *path ? "." : "", key);
        return NULL;
    }
    if (json_typeof(v) != type) {
        rts_errf(eb, RTS_ERR_PARSE, 0, 0, "%s%s%s: expected %s, got %s", path, *path ? "." : "",
                 key, want[type], rts_model_json_kind(v));
        return NULL;
    }
    return v;
}

/* A count stored as XGBoost does ("3") or as a JSON integer; 0..@max. */
static int get_count(json_t *obj, const char *path, const char *key, size_t max, size_t *out,
                     struct rts_errbuf *eb)
{
    json_t *v = json_object_get(obj, key);
    const char *s;
    char *end;
    unsigned long long u;

    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0 || (unsigned long long)json_integer_value(v) > max) {
            goto range;
        }
        *out = (size_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v)) {
        rts_errf(eb, RTS_ERR_PARSE, 0, 0, "%s.%s: %s", path, key,
                 v ? "expected a count like \"3\"" : "missing");
        return -1;
    }
    s = json_string_value(v);
    if (*s < '0' || *s > '9') {
        goto bad;
    }
    errno = 0;
    u = strtoull(s, &end, 10);
    if (*end != '\0') {
        goto bad;
    }
    if (errno == ERANGE || u > max) {
        goto range;
    }
    *out = (size_t)u;
    return 0;
bad:
    rts_errf(eb, RTS_ERR_PARSE, 0, 0, "%s.%s: expected a count like \"3\", got \"%.40s\"", path,
             key, s);
    return -1;
range:
    rts_errf(eb, RTS_ERR_PARSE, 0, 0, "%s.%s: out of range (0..%zu)", path, key, max);
    return -1;
}

/* base_score: a decimal string ("5E-1") read straight to float32 as XGBoost does. */
static int get_base_score(json_t *lmp, float *out, struct rts_errbuf *eb)
{
    json_t *v = json_object_get(lmp, "base_score");
    const char *s;
    char *end;

    if (json_is_number(v)) {
        *out = (float)json_number_value(v);
    } else if (json_is_string(v)) {
        s = json_string_value(v);
        errno = 0;
        *out = strtof(s, &end);
        if (end == s || *end != '\0') {
            return rts_model_bad(eb, RTS_ERR_PARSE,
                           "learner.learner_model_param.base_score: expected a number like "
                           "\"5E-1\", got \"%.40s\"",
                           s);
        }
    } else {
        return rts_model_bad(eb, RTS_ERR_PARSE, "learner.learner_model_param.base_score: %s",
                       v ? "expected a number like \"5E-1\"" : "missing");
    }
    if (!isfinite(*out)) {
        return rts_model_bad(eb, RTS_ERR_PARSE,
                       "learner.learner_model_param.base_score: not a finite number");
    }
    return 0;
}

static const struct {
    const char *name;
    enum gbt_transform transform;
    int logit_base; /* base_score is a probability: margin starts at logit(base_score) */
} gbt_objectives[] = {
    /* binary:logitraw takes base_score as a margin (checked against XGBoost 1.7.4) */
    {"binary:logistic", GBT_SIGMOID, 1}, {"binary:logitraw", GBT_IDENTITY, 0},
    {"reg:logistic", GBT_SIGMOID, 1},    {"reg:squarederror", GBT_IDENTITY, 0},
    {"multi:softprob", GBT_SOFTMAX, 0},
};

static int parse_objective(struct gbt *g, json_t *learner, float base_score, size_t num_class,
                           struct rts_errbuf *eb)
{
    json_t *obj, *name;
    const char *s;
    size_t i;

    if (!(obj = get_typed(learner, "learner", "objective", JSON_OBJECT, eb)) ||
        !(name = get_typed(obj, "learner.objective", "name", JSON_STRING, eb))) {
        return -1;
    }
    s = json_string_value(name);
    for (i = 0; i < sizeof(gbt_objectives) / sizeof(gbt_objectives[0]); i++) {
        if (strcmp(s, gbt_objectives[i].name) == 0) {
            break;
        }
    }
    if (i == sizeof(gbt_objectives) / sizeof(gbt_objectives[0])) {
        return rts_model_bad(eb, RTS_ERR_INVAL,
                       "learner.objective.name: \"%.40s\" is not supported (supported: "
                       "binary:logistic, binary:logitraw, reg:logistic, reg:squarederror, "
                       "multi:softprob)",
                       s);
    }
    g->transform = gbt_objectives[i].transform;
    if (g->transform == GBT_SOFTMAX) {
        if (num_class < 2) {
            return rts_model_bad(eb, RTS_ERR_PARSE,
                           "learner.learner_model_param.num_class: multi:softprob needs 2 or "
                           "more classes, got %zu",
                           num_class);
        }
        g->ngroups = num_class;
    } else if (num_class > 1) {
        return rts_model_bad(eb, RTS_ERR_PARSE,
                       "learner.learner_model_param.num_class: %zu classes with objective %s",
                       num_class, s);
    } else {
        g->ngroups = 1;
    }
    g->base.noutputs = g->ngroups;
    snprintf(g->base.objective, sizeof(g->base.objective), "%s", s);
    if (gbt_objectives[i].logit_base) {
        if (!(base_score > 0.0f && base_score < 1.0f)) {
            return rts_model_bad(eb, RTS_ERR_PARSE,
                           "learner.learner_model_param.base_score: %g is not a probability "
                           "in (0, 1) as %s needs",
                           (double)base_score, s);
        }
        g->base_margin = -logf(1.0f / base_score - 1.0f); /* XGBoost's ProbToMargin */
    } else {
        g->base_margin = base_score;
    }
    return 0;
}

static int parse_feature_names(struct gbt *g, json_t *learner, struct rts_errbuf *eb)
{
    json_t *names = json_object_get(learner, "feature_names"), *v;
    size_t i, j, n;

    if (!names) {
        return 0;
    }
    if (!json_is_array(names)) {
        return rts_model_bad(eb, RTS_ERR_PARSE, "learner.feature_names: expected an array");
    }
    n = json_array_size(names);
    if (n == 0) {
        return 0;
    }
    if (n != g->base.nfeatures) {
        return rts_model_bad(eb, RTS_ERR_PARSE, "learner.feature_names: %zu names but num_feature is %zu",
                       n, g->base.nfeatures);
    }
    g->base.feature_names = calloc(n, sizeof(char *));
    if (!g->base.feature_names) {
        return rts_model_bad(eb, RTS_ERR_NOMEM, "out of memory");
    }
    for (i = 0; i < n; i++) {
        v = json_array_get(names, i);
        if (!json_is_string(v)) {
            return rts_model_bad(eb, RTS_ERR_PARSE,
                           "learner.feature_names[%zu]: expected a string, got %s", i,
                           rts_model_json_kind(v));
        }
        for (j = 0; j < i; j++) {
            if (strcmp(g->base.feature_names[j], json_string_value(v)) == 0) {
                return rts_model_bad(eb, RTS_ERR_PARSE,
                               "learner.feature_names[%zu]: \"%.40s\" repeats feature %zu", i,
                               json_string_value(v), j);
            }
        }
        g->base.feature_names[i] = strdup(json_string_value(v));
        if (!g->base.feature_names[i]) {
            return rts_model_bad(eb, RTS_ERR_NOMEM, "out of memory");
        }
    }
    return 0;
}

/* The parallel arrays of one tree, all of the same length. */
struct gbt_tree_json {
    json_t *left, *right, *split_index, *split_cond, *default_left, *split_type;
    size_t n;
};

static int get_tree_arrays(json_t *tree, size_t t, struct gbt_tree_json *tj, struct rts_errbuf *eb)
{
    static const char *const keys[] = {"left_children",    "right_children", "split_indices",
                                       "split_conditions", "default_left",   "split_type"};
    json_t **slots[] = {&tj->left,       &tj->right,        &tj->split_index,
                        &tj->split_cond, &tj->default_left, &tj->split_type};
    json_t *cats;
    char path[96];
    size_t k;

    snprintf(path, sizeof(path), GBT_PATH ".trees[%zu]", t);
    if (!json_is_object(tree)) {
        return rts_model_bad(eb, RTS_ERR_PARSE, "%s: expected an object, got %s", path, rts_model_json_kind(tree));
    }
    for (k = 0; k < 6; k++) {
        if (k == 5 && !json_object_get(tree, keys[k])) {
            *slots[k] = NULL; /* split_type is absent before XGBoost 1.6: all numerical */
            continue;
        }
        if (!(*slots[k] = get_typed(tree, path, keys[k], JSON_ARRAY, eb))) {
            return -1;
        }
        if (k == 0) {
            tj->n = json_array_size(tj->left);
            if (tj->n == 0) {
                return rts_model_bad(eb, RTS_ERR_PARSE, "%s.left_children: empty tree", path);
            }
        } else if (json_array_size(*slots[k]) != tj->n) {
            return rts_model_bad(eb, RTS_ERR_PARSE, "%s.%s: %zu entries but left_children has %zu", path,
                           keys[k], json_array_size(*slots[k]), tj->n);
        }
    }
    cats = json_object_get(tree, "categories_nodes");
    if (json_is_array(cats) && json_array_size(cats) > 0) {
        return rts_model_bad(eb, RTS_ERR_INVAL,
                       "%s: categorical splits are not supported (categories_nodes is not "
                       "empty)",
                       path);
    }
    return 0;
}

/* Integer element @i of @arr into @out; fills @eb naming "path.key[i]". */
static int get_int_at(json_t *arr, size_t t, const char *key, size_t i, long long *out,
                      struct rts_errbuf *eb)
{
    json_t *v = json_array_get(arr, i);

    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_boolean(v)) { /* default_left was a boolean in some versions */
        *out = json_is_true(v);
        return 0;
    }
    return rts_model_bad(eb, RTS_ERR_PARSE,
                   GBT_PATH ".trees[%zu].%s[%zu]: expected an "
                            "integer, got %s",
                   t, key, i, rts_model_json_kind(v));
}

static int get_float_at(json_t *arr, size_t t, size_t i, float *out, struct rts_errbuf *eb)
{
    json_t *v = json_array_get(arr, i);
    double d;

    if (!json_is_number(v)) {
        return rts_model_bad(eb, RTS_ERR_PARSE,
                       GBT_PATH ".trees[%zu].split_conditions[%zu]: "
                                "expected a number, got %s",
                       t, i, rts_model_json_kind(v));
    }
    d = json_number_value(v);
    *out = (float)d;
    if (!isfinite(*out)) {
        return rts_model_bad(eb, RTS_ERR_PARSE,
                       GBT_PATH ".trees[%zu].split_conditions[%zu]: "
                                "%g is not a finite float",
                       t, i, d);
    }
    return 0;
}

/* Scratch reused from tree to tree while loading. */
struct gbt_scratch {
    uint32_t *order; /* breadth-first position -> node index in the file */
    uint32_t *level; /* breadth-first position -> depth */
    unsigned char *seen;
    size_t cap;
};

static int scratch_reserve(struct gbt_scratch *s, size_t n, struct rts_errbuf *eb)
{
    uint32_t *o, *l;
    unsigned char *seen;

    if (n <= s->cap) {
        return 0;
    }
    o = realloc(s->order, n * sizeof(*o));
    if (o) {
        s->order = o;
    }
    l = realloc(s->level, n * sizeof(*l));
    if (l) {
        s->level = l;
    }
    seen = realloc(s->seen, n);
    if (seen) {
        s->seen = seen;
    }
    if (!o || !l || !seen) {
        return rts_model_bad(eb, RTS_ERR_NOMEM, "out of memory");
    }
    s->cap = n;
    return 0;
}

static int nodes_reserve(struct gbt *g, size_t more, struct rts_errbuf *eb)
{
    size_t cap = g->cap ? g->cap : 1024;
    struct gbt_node *p;

    if (g->nnodes + more > GBT_MAX_NODES) {
        return rts_model_bad(eb, RTS_ERR_LIMIT, GBT_PATH ".trees: more than %zu nodes in all",
                       GBT_MAX_NODES);
    }
    while (cap < g->nnodes + more) {
        cap *= 2;
    }
    if (cap != g->cap) {
        p = realloc(g->nodes, cap * sizeof(*p));
        if (!p) {
            return rts_model_bad(eb, RTS_ERR_NOMEM, "out of memory");
        }
        g->nodes = p;
        g->cap = cap;
    }
    return 0;
}

/* Validate tree @t and append its nodes, renumbered breadth-first. Only the
 * nodes reachable from the root are read (XGBoost leaves pruned nodes in the
 * arrays with garbage split indices). */
static int load_tree(struct gbt *g, json_t *tree, size_t t, struct gbt_scratch *s,
                     struct rts_errbuf *eb)
{
    struct gbt_tree_json tj;
    struct gbt_node *nd;
    size_t q, pos = 1, base;
    uint32_t v, depth = 0;
    long long l = 0, r = 0, fi = 0, dl = 0, st = 0;
    float val = 0.0f;

    if (get_tree_arrays(tree, t, &tj, eb) || scratch_reserve(s, tj.n, eb) ||
        nodes_reserve(g, tj.n, eb)) {
        return -1;
    }
    base = g->nnodes;
    memset(s->seen, 0, tj.n);
    s->order[0] = 0;
    s->level[0] = 0;
    s->seen[0] = 1;
    for (q = 0; q < pos; q++) {
        v = s->order[q];
        nd = &g->nodes[base + q];
        if (get_int_at(tj.left, t, "left_children", v, &l, eb) ||
            get_int_at(tj.right, t, "right_children", v, &r, eb) ||
            get_float_at(tj.split_cond, t, v, &val, eb)) {
            return -1;
        }
        if (l == -1 || r == -1) {
            if (l != r) {
                return rts_model_bad(eb, RTS_ERR_PARSE,
                               GBT_PATH ".trees[%zu]: node %u has one child (left %lld, right "
                                        "%lld)",
                               t, v, l, r);
            }
            nd->thr = NAN;
            nd->feat = 0;
            nd->left = (uint32_t)(base + q);
            nd->leaf = val;
            if (s->level[q] > depth) {
                depth = s->level[q];
            }
            continue;
        }
        if (l < 0 || (size_t)l >= tj.n || r < 0 || (size_t)r >= tj.n) {
            return rts_model_bad(eb, RTS_ERR_PARSE,
                           GBT_PATH ".trees[%zu].%s[%u]: child %lld out of range (tree has %zu "
                                    "nodes)",
                           t, l < 0 || (size_t)l >= tj.n ? "left_children" : "right_children", v,
                           l < 0 || (size_t)l >= tj.n ? l : r, tj.n);
        }
        if (s->seen[l] || s->seen[r] || l == r) {
            return rts_model_bad(eb, RTS_ERR_PARSE,
                           GBT_PATH ".trees[%zu].%s[%u]: node %lld is reached twice (a cycle "
                                    "or a shared child)",
                           t, s->seen[l] ? "left_children" : "right_children", v,
                           s->seen[l] ? l : r);
        }
        if (get_int_at(tj.split_index, t, "split_indices", v, &fi, eb) ||
            get_int_at(tj.default_left, t, "default_left", v, &dl, eb) ||
            (tj.split_type && get_int_at(tj.split_type, t, "split_type", v, &st, eb))) {
            return -1;
        }
        if (fi < 0 || (unsigned long long)fi >= g->base.nfeatures) {
            return rts_model_bad(eb, RTS_ERR_PARSE,
                           GBT_PATH ".trees[%zu].split_indices[%u]: feature %lld out of range "
                                    "(num_feature is %zu)",
                           t, v, fi, g->base.nfeatures);
        }
        if (dl != 0 && dl != 1) {
            return rts_model_bad(eb, RTS_ERR_PARSE,
                           GBT_PATH ".trees[%zu].default_left[%u]: expected 0 or 1, got %lld", t, v,
                           dl);
        }
        if (tj.split_type && st != 0) {
            return rts_model_bad(eb, RTS_ERR_INVAL,
                           GBT_PATH ".trees[%zu].split_type[%u]: categorical split (type "
                                    "%lld) in tree %zu is not supported",
                           t, v, st, t);
        }
        s->seen[l] = s->seen[r] = 1;
        s->order[pos] = (uint32_t)(dl ? r : l); /* slot 0 */
        s->order[pos + 1] = (uint32_t)(dl ? l : r);
        s->level[pos] = s->level[pos + 1] = s->level[q] + 1;
        nd->thr = dl ? nextafterf(-val, INFINITY) : val;
        nd->feat = (uint32_t)fi + (dl ? (uint32_t)g->base.nfeatures : 0);
        nd->left = (uint32_t)(base + pos);
        nd->leaf = 0.0f;
        pos += 2;
    }
    g->nnodes = base + pos;
    g->roots[t] = (uint32_t)base;
    g->depth[t] = depth;
    return 0;
}

static int load_trees(struct gbt *g, json_t *learner, struct rts_errbuf *eb)
{
    json_t *gb, *name, *model, *trees, *info, *v;
    struct gbt_scratch s = {0};
    size_t t, k, nt;
    int rc = -1;

    if (!(gb = get_typed(learner, "learner", "gradient_booster", JSON_OBJECT, eb)) ||
        !(name = get_typed(gb, "learner.gradient_booster", "name", JSON_STRING, eb))) {
        return -1;
    }
    if (strcmp(json_string_value(name), "gbtree") != 0) {
        return rts_model_bad(eb, RTS_ERR_INVAL,
                       "learner.gradient_booster.name: \"%.40s\" is not supported (only "
                       "\"gbtree\")",
                       json_string_value(name));
    }
    if (!(model = get_typed(gb, "learner.gradient_booster", "model", JSON_OBJECT, eb)) ||
        !(trees = get_typed(model, GBT_PATH, "trees", JSON_ARRAY, eb)) ||
        !(info = get_typed(model, GBT_PATH, "tree_info", JSON_ARRAY, eb))) {
        return -1;
    }
    nt = json_array_size(trees);
    if (json_array_size(info) != nt) {
        return rts_model_bad(eb, RTS_ERR_PARSE,
                       GBT_PATH ".tree_info: %zu entries but there are %zu trees",
                       json_array_size(info), nt);
    }
    if (nt > GBT_MAX_NODES) {
        return rts_model_bad(eb, RTS_ERR_LIMIT, GBT_PATH ".trees: too many trees");
    }
    g->ntrees = nt;
    g->ntrees_padded = (nt + GBT_TILE - 1) / GBT_TILE * GBT_TILE;
    g->roots = calloc(g->ntrees_padded + 1, sizeof(*g->roots));
    g->group = calloc(g->ntrees_padded + 1, sizeof(*g->group));
    g->depth = calloc(g->ntrees_padded + 1, sizeof(*g->depth));
    g->tile_depth = calloc(g->ntrees_padded / GBT_TILE + 1, sizeof(*g->tile_depth));
    if (!g->roots || !g->group || !g->depth || !g->tile_depth) {
        return rts_model_bad(eb, RTS_ERR_NOMEM, "out of memory");
    }
    for (t = 0; t < nt; t++) {
        v = json_array_get(info, t);
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            (unsigned long long)json_integer_value(v) >= g->ngroups) {
            rts_errf(eb, RTS_ERR_PARSE, 0, 0,
                     GBT_PATH ".tree_info[%zu]: expected an output group 0..%zu", t,
                     g->ngroups - 1);
            goto out;
        }
        g->group[t] = (uint32_t)json_integer_value(v);
        if (load_tree(g, json_array_get(trees, t), t, &s, eb)) {
            goto out;
        }
    }
    /* Padding trees: one leaf of value 0 (x + 0.0f == x), group 0. */
    if (g->ntrees_padded > nt) {
        if (nodes_reserve(g, 1, eb)) {
            goto out;
        }
        g->nodes[g->nnodes] = (struct gbt_node){NAN, 0, (uint32_t)g->nnodes, 0.0f};
        for (t = nt; t < g->ntrees_padded; t++) {
            g->roots[t] = (uint32_t)g->nnodes;
        }
        g->nnodes++;
    }
    for (t = 0; t < g->ntrees_padded; t += GBT_TILE) {
        for (k = 0; k < GBT_TILE; k++) {
            if (g->depth[t + k] > g->tile_depth[t / GBT_TILE]) {
                g->tile_depth[t / GBT_TILE] = g->depth[t + k];
            }
        }
    }
    rc = 0;
out:
    free(s.order);
    free(s.level);
    free(s.seen);
    return rc;
}

struct rts_model *rts_gbt_load(json_t *doc, struct rts_errbuf *eb)
{
    json_t *learner, *lmp;
    struct gbt *g;
    size_t num_class, num_target = 1;
    float base_score = 0.0f;

    g = calloc(1, sizeof(*g));
    if (!g) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
        return NULL;
    }
    g->base.ops = &gbt_ops;
    if (!(learner = get_typed(doc, "", "learner", JSON_OBJECT, eb)) ||
        !(lmp = get_typed(learner, "learner", "learner_model_param", JSON_OBJECT, eb)) ||
        get_count(lmp, "learner.learner_model_param", "num_feature", GBT_MAX_FEATURES,
                  &g->base.nfeatures, eb) ||
        get_count(lmp, "learner.learner_model_param", "num_class", GBT_MAX_CLASSES, &num_class,
                  eb) ||
        (json_object_get(lmp, "num_target") &&
         get_count(lmp, "learner.learner_model_param", "num_target", 1024, &num_target, eb)) ||
        get_base_score(lmp, &base_score, eb)) {
        goto fail;
    }
    if (num_target > 1) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                 "learner.learner_model_param.num_target: %zu targets (multi-output trees) are "
                 "not supported",
                 num_target);
        goto fail;
    }
    if (parse_objective(g, learner, base_score, num_class, eb) ||
        parse_feature_names(g, learner, eb) || load_trees(g, learner, eb)) {
        goto fail;
    }
    return &g->base;
fail:
    gbt_free(&g->base);
    return NULL;
}

/* ---- prediction ---- */

/* The row copy r of the header comment. */
static void gbt_prepare(const float *x, size_t nx, float *r)
{
    size_t f;

    for (f = 0; f < nx; f++) {
        float v = x[f];
        r[f] = isnan(v) ? INFINITY : v;
        r[nx + f] = isnan(v) ? INFINITY : -v;
    }
}

/* r[f] computed from the row itself (wide models). */
static float gbt_fetch(const float *x, size_t nx, uint32_t f)
{
    float v = f < nx ? x[f] : -x[f - nx];

    return isnan(v) ? INFINITY : v;
}

/* One step from node @i. @r is the row copy when @direct, else the row. */
static inline __attribute__((always_inline)) uint32_t
gbt_step(const struct gbt_node *nodes, uint32_t i, const float *r, size_t nx, int direct)
{
    const struct gbt_node *nd = &nodes[i];
    float v = direct ? r[nd->feat] : gbt_fetch(r, nx, nd->feat);

    return nd->left + (uint32_t)(v >= nd->thr);
}

/* One row against the trees, GBT_TILE at a time; adds the leaves into @y. */
static inline __attribute__((always_inline)) void predict_row(const struct gbt *g, const float *r,
                                                              float *y, int direct)
{
    const struct gbt_node *nodes = g->nodes;
    const size_t nx = g->base.nfeatures;
    uint32_t idx[GBT_TILE];
    size_t t, k, d, depth;

    for (t = 0; t < g->ntrees_padded; t += GBT_TILE) {
#pragma GCC unroll 8
        for (k = 0; k < GBT_TILE; k++) {
            idx[k] = g->roots[t + k];
        }
        depth = g->tile_depth[t / GBT_TILE];
        for (d = 0; d < depth; d++) {
#pragma GCC unroll 8
            for (k = 0; k < GBT_TILE; k++) {
                idx[k] = gbt_step(nodes, idx[k], r, nx, direct);
            }
        }
#pragma GCC unroll 8
        for (k = 0; k < GBT_TILE; k++) {
            y[g->group[t + k]] += nodes[idx[k]].leaf;
        }
    }
}

/* GBT_TILE row copies (@stride apart) against each tree in turn; adds the
 * leaves into @y. */
static void predict_tile(const struct gbt *g, const float *r, size_t stride, float *y)
{
    const struct gbt_node *nodes = g->nodes;
    const size_t K = g->ngroups;
    uint32_t idx[GBT_TILE], root;
    size_t t, k, d, depth;

    for (t = 0; t < g->ntrees; t++) {
        root = g->roots[t];
        for (k = 0; k < GBT_TILE; k++) {
            idx[k] = root;
        }
        depth = g->depth[t];
        for (d = 0; d < depth; d++) {
#pragma GCC unroll 8
            for (k = 0; k < GBT_TILE; k++) {
                idx[k] = gbt_step(nodes, idx[k], r + k * stride, 0, 1);
            }
        }
        for (k = 0; k < GBT_TILE; k++) {
            y[k * K + g->group[t]] += nodes[idx[k]].leaf;
        }
    }
}

/* XGBoost's common::Sigmoid, float for float. */
static float gbt_sigmoid(float x)
{
    float e = 88.7f < -x ? 88.7f : -x;
    float denom = expf(e) + 1.0f + 1e-16f;

    return 1.0f / denom;
}

/* XGBoost's common::Softmax: float exponentials, double sum. */
static void gbt_softmax(float *p, size_t k)
{
    float wmax = p[0];
    double wsum = 0.0;
    size_t i;

    for (i = 1; i < k; i++) {
        wmax = fmaxf(p[i], wmax);
    }
    for (i = 0; i < k; i++) {
        p[i] = expf(p[i] - wmax);
        wsum += p[i];
    }
    for (i = 0; i < k; i++) {
        p[i] /= (float)wsum;
    }
}

static void gbt_predict(const struct rts_model *m, const float *x, size_t n, float *y)
{
    const struct gbt *g = (const struct gbt *)m;
    const size_t K = g->ngroups, nx = g->base.nfeatures;
    float r[GBT_TILE * 2 * GBT_FAST_FEATURES];
    size_t i, k;

    for (i = 0; i < n * K; i++) {
        y[i] = g->base_margin;
    }
    i = 0;
    if (nx > GBT_FAST_FEATURES) {
        for (; i < n; i++) {
            predict_row(g, x + i * nx, y + i * K, 0);
        }
    }
    for (; i + GBT_TILE <= n; i += GBT_TILE) {
        for (k = 0; k < GBT_TILE; k++) {
            gbt_prepare(x + (i + k) * nx, nx, r + k * 2 * nx);
        }
        predict_tile(g, r, 2 * nx, y + i * K);
    }
    for (; i < n; i++) {
        gbt_prepare(x + i * nx, nx, r);
        predict_row(g, r, y + i * K, 1);
    }
    if (g->transform == GBT_SIGMOID) {
        for (i = 0; i < n; i++) {
            y[i] = gbt_sigmoid(y[i]);
        }
    } else if (g->transform == GBT_SOFTMAX) {
        for (i = 0; i < n; i++) {
            gbt_softmax(y + i * K, K);
        }
    }
}

static const struct rts_model_ops gbt_ops = {
    .format = "xgboost-json",
    .predict = gbt_predict,
    .free = gbt_free,
};
