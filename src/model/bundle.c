/*
 * bundle.c - load and cross-check a model bundle (bundle.h): the model file,
 * the manifest's name, version, format and feature list, and the optional
 * reference histograms, each checked for shape (ascending edges, one share
 * per bin, shares that add up) so that the drift monitor never has to.
 */
#include "model/bundle.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/buf.h"

struct manifest {
    const char *name, *format, *objective;
    int64_t version, score_class;
    const struct rts_conf_node *features, *hints, *metrics, *trained_at, *training, *reference;
};

static const struct rts_opt manifest_opts[] = {
    RTS_OPT_STR_REQ("name", offsetof(struct manifest, name), "model name"),
    RTS_OPT_INT("version", "1", offsetof(struct manifest, version), "model version"),
    RTS_OPT_STR_REQ("format", offsetof(struct manifest, format),
                    "xgboost-json | linear-json | mlp-json"),
    RTS_OPT_STR("objective", NULL, offsetof(struct manifest, objective), "training objective"),
    RTS_OPT_NODE("features", offsetof(struct manifest, features), "ordered feature names"),
    RTS_OPT_INT("score_class", "1", offsetof(struct manifest, score_class),
                "multi-class models: the class whose probability is the score"),
    RTS_OPT_NODE("threshold_hints", offsetof(struct manifest, hints), "cut-offs from training"),
    RTS_OPT_NODE("metrics", offsetof(struct manifest, metrics), "test-set metrics"),
    RTS_OPT_NODE("trained_at", offsetof(struct manifest, trained_at), "when"),
    RTS_OPT_NODE("training", offsetof(struct manifest, training), "what it was trained on"),
    RTS_OPT_NODE("reference", offsetof(struct manifest, reference),
                 "feature and score histograms of the training data (drift)"),
    RTS_OPT_END,
};

struct hist_conf {
    double missing;
    const char *from;
    const struct rts_conf_node *edges, *shares, *min, *max;
};

static const struct rts_opt hist_opts[] = {
    RTS_OPT_DOUBLE("missing", "0", offsetof(struct hist_conf, missing), "share of missing values"),
    RTS_OPT_NODE("edges", offsetof(struct hist_conf, edges), "cut points or bin boundaries"),
    RTS_OPT_NODE("shares", offsetof(struct hist_conf, shares), "share of rows in each bin"),
    RTS_OPT_NODE("min", offsetof(struct hist_conf, min), "smallest value seen"),
    RTS_OPT_NODE("max", offsetof(struct hist_conf, max), "largest value seen"),
    RTS_OPT_STR("from", NULL, offsetof(struct hist_conf, from), "which rows it was measured on"),
    RTS_OPT_END,
};

static void hist_fini(struct rts_bundle_hist *h)
{
    free(h->edges);
    free(h->shares);
    memset(h, 0, sizeof(*h));
}

static void reference_free(struct rts_bundle_ref *r, size_t nfeatures)
{
    if (!r) {
        return;
    }
    for (size_t i = 0; r->features && i < nfeatures; i++) {
        hist_fini(&r->features[i]);
    }
    free(r->features);
    hist_fini(&r->score);
    free(r);
}

void rts_bundle_free(struct rts_bundle *b)
{
    if (!b) {
        return;
    }
    reference_free(b->reference, b->nfeatures);
    free(b->dir);
    for (size_t i = 0; b->features && i < b->nfeatures; i++) {
        free(b->features[i]);
    }
    free(b->features);
    free(b->name);
    rts_model_unref(b->model);
    free(b);
}

/* The manifest's feature list against the model's own view of its inputs. */
static enum rts_err check_features(struct rts_bundle *b, const struct rts_conf_node *n,
                                   struct rts_errbuf *eb)
{
    size_t nx = rts_model_nfeatures(b->model);

    if (!n) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "manifest: missing required key 'features'");
    }
    if (n->kind != RTS_CONF_SEQ) {
        return rts_conf_errf(eb, n, "features", "expected the list of feature names");
    }
    if (n->len != nx) {
        return rts_conf_errf(eb, n, "features", "%zu names, the model reads %zu features", n->len,
                             nx);
    }
    b->features = calloc(nx ? nx : 1, sizeof(*b->features));
    if (!b->features) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
    }
    for (size_t i = 0; i < nx; i++) {
        const char *s, *own = rts_model_feature_name(b->model, i);
        if (rts_conf_string(n->items[i], "features", &s, eb)) {
            return RTS_ERR_INVAL;
        }
        if (own && strcmp(own, s) != 0) {
            return rts_conf_errf(eb, n->items[i], "features",
                                 "feature %zu is '%s' here and '%s' in the model file", i, s, own);
        }
        b->features[i] = strdup(s);
        if (!b->features[i]) {
            return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
        }
        b->nfeatures++;
    }
    return RTS_ERR_OK;
}

/* A sequence of at most @max finite numbers into a new array (*out, *n). */
static enum rts_err parse_numbers(const struct rts_conf_node *n, const char *path, size_t max,
                                  double **out, size_t *len, struct rts_errbuf *eb)
{
    char item[256];
    double *v;

    *out = NULL;
    *len = 0;
    if (!n || n->kind != RTS_CONF_SEQ) {
        return rts_conf_errf(eb, n, path, "expected a list of numbers");
    }
    if (n->len > max) {
        return rts_conf_errf(eb, n, path, "%zu numbers, at most %zu", n->len, max);
    }
    v = calloc(n->len ? n->len : 1, sizeof(*v));
    if (!v) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
    }
    for (size_t i = 0; i < n->len; i++) {
        snprintf(item, sizeof(item), "%s[%zu]", path, i);
        if (rts_conf_double(n->items[i], item, &v[i], eb)) {
            free(v);
            return RTS_ERR_INVAL;
        }
    }
    *out = v;
    *len = n->len;
    return RTS_ERR_OK;
}

static enum rts_err parse_bound(const struct rts_conf_node *n, const char *path, const char *key,
                                double *out, struct rts_errbuf *eb)
{
    char item[256];

    *out = NAN;
    if (rts_conf_is_null(n)) {
        return RTS_ERR_OK;
    }
    snprintf(item, sizeof(item), "%s.%s", path, key);
    return rts_conf_double(n, item, out, eb);
}

/* One histogram at @n (path @path) into @h, normalised to cut points. */
static enum rts_err parse_hist(const struct rts_conf_node *n, const char *path,
                               struct rts_bundle_hist *h, struct rts_errbuf *eb)
{
    struct hist_conf c = {0};
    char sub[256];
    double *edges = NULL, *shares = NULL, sum;
    size_t nedges, nshares, i;
    enum rts_err rc;

    if (!n || n->kind != RTS_CONF_MAP) {
        return rts_conf_errf(eb, n, path, "expected a map with edges, shares and missing");
    }
    rc = rts_opt_apply(hist_opts, n, path, NULL, &c, eb);
    if (rc) {
        return rc;
    }
    snprintf(sub, sizeof(sub), "%s.edges", path);
    rc = parse_numbers(c.edges, sub, RTS_BUNDLE_MAX_EDGES + 1, &edges, &nedges, eb);
    if (rc) {
        goto out;
    }
    snprintf(sub, sizeof(sub), "%s.shares", path);
    rc = parse_numbers(c.shares, sub, RTS_BUNDLE_MAX_EDGES + 1, &shares, &nshares, eb);
    if (rc) {
        goto out;
    }
    if (nshares == nedges + 1) {
        if (nedges > RTS_BUNDLE_MAX_EDGES) {
            rc = rts_conf_errf(eb, c.edges, sub, "%zu cut points, at most %d", nedges,
                               RTS_BUNDLE_MAX_EDGES);
            goto out;
        }
    } else if (nedges >= 2 && nshares == nedges - 1) {
        /* boundaries: keep the interior ones as cut points */
        memmove(edges, edges + 1, (nedges - 2) * sizeof(*edges));
        nedges -= 2;
    } else {
        rc = rts_conf_errf(eb, c.shares, sub,
                           "%zu shares for %zu edges: expected %zu (edges are cut points) or "
                           "%zu (edges are bin boundaries)",
                           nshares, nedges, nedges + 1, nedges ? nedges - 1 : 0);
        goto out;
    }
    for (i = 1; i < nedges; i++) {
        if (!(edges[i] > edges[i - 1])) {
            snprintf(sub, sizeof(sub), "%s.edges", path);
            rc = rts_conf_errf(eb, c.edges, sub, "edges must ascend strictly (%.17g then %.17g)",
                               edges[i - 1], edges[i]);
            goto out;
        }
    }
    sum = c.missing;
    if (!(c.missing >= 0 && c.missing <= 1)) {
        rc = rts_conf_errf(eb, rts_conf_get(n, "missing"), path, "missing: %g is not in [0, 1]",
                           c.missing);
        goto out;
    }
    for (i = 0; i < nshares; i++) {
        if (!(shares[i] >= 0 && shares[i] <= 1)) {
            rc = rts_conf_errf(eb, c.shares->items[i], sub, "share %zu: %g is not in [0, 1]", i,
                               shares[i]);
            goto out;
        }
        sum += shares[i];
    }
    if (fabs(sum - 1) > 1e-3) {
        rc = rts_conf_errf(eb, c.shares, sub, "shares and missing add up to %.6f, not 1", sum);
        goto out;
    }
    rc = parse_bound(c.min, path, "min", &h->min, eb);
    if (!rc) {
        rc = parse_bound(c.max, path, "max", &h->max, eb);
    }
    if (rc) {
        goto out;
    }
    h->edges = edges;
    h->nedges = nedges;
    h->shares = shares;
    h->missing = c.missing;
    edges = shares = NULL; /* moved to @h */
out:
    free(edges);
    free(shares);
    return rc;
}

/* reference: {features: {NAME: HIST, ...}, score: HIST}; both optional. */
static enum rts_err parse_reference(struct rts_bundle *b, const struct rts_conf_node *n,
                                    struct rts_errbuf *eb)
{
    const struct rts_conf_node *feats = NULL, *score = NULL;
    struct rts_bundle_ref *r;
    char path[256];
    size_t i, j;
    enum rts_err rc = RTS_ERR_OK;

    if (rts_conf_is_null(n)) {
        return RTS_ERR_OK;
    }
    if (n->kind != RTS_CONF_MAP) {
        return rts_conf_errf(eb, n, "reference", "expected a map with features and score");
    }
    for (i = 0; i < n->len; i++) {
        if (strcmp(n->keys[i], "features") == 0) {
            feats = n->items[i];
        } else if (strcmp(n->keys[i], "score") == 0) {
            score = n->items[i];
        } else {
            return rts_conf_errf(eb, n->items[i], "reference",
                                 "unknown key '%s' (expected features, score)", n->keys[i]);
        }
    }
    r = calloc(1, sizeof(*r));
    if (r) {
        r->features = calloc(b->nfeatures ? b->nfeatures : 1, sizeof(*r->features));
    }
    if (!r || !r->features) {
        free(r);
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
    }
    for (i = 0; i < b->nfeatures; i++) {
        r->features[i].min = r->features[i].max = NAN;
    }
    r->score.min = r->score.max = NAN;
    if (!rts_conf_is_null(feats)) {
        if (feats->kind != RTS_CONF_MAP) {
            rc = rts_conf_errf(eb, feats, "reference.features",
                               "expected a map from feature name to histogram");
            goto out;
        }
        for (i = 0; i < feats->len; i++) {
            snprintf(path, sizeof(path), "reference.features.%.200s", feats->keys[i]);
            j = 0;
            while (j < b->nfeatures && strcmp(b->features[j], feats->keys[i]) != 0) {
                j++;
            }
            if (j == b->nfeatures) {
                rc = rts_conf_errf(eb, feats->items[i], path, "not one of the model's features");
                goto out;
            }
            rc = parse_hist(feats->items[i], path, &r->features[j], eb);
            if (rc) {
                goto out;
            }
        }
    }
    if (!rts_conf_is_null(score)) {
        rc = parse_hist(score, "reference.score", &r->score, eb);
        if (rc) {
            goto out;
        }
    }
    b->reference = r;
    r = NULL;
out:
    reference_free(r, b->nfeatures);
    return rc;
}

struct rts_bundle *rts_bundle_load(const char *dir, struct rts_errbuf *eb)
{
    char path[4096];
    struct rts_buf text = {0};
    struct rts_conf *doc = NULL;
    struct rts_bundle *b = calloc(1, sizeof(*b));
    struct manifest m = {0};

    if (!b) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/model.json", dir);
    b->model = rts_model_load(path, eb);
    if (!b->model) {
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/manifest.yaml", dir);
    if (rts_buf_read_file(&text, path, 64u << 20, eb) ||
        !(doc = rts_conf_parse(path, text.data ? text.data : "", text.len, eb)) ||
        rts_opt_apply(manifest_opts, rts_conf_root(doc), "", NULL, &m, eb)) {
        goto fail;
    }
    if (strcmp(m.format, rts_model_format(b->model)) != 0) {
        rts_conf_errf(eb, rts_conf_get(rts_conf_root(doc), "format"), "format",
                      "'%s', but model.json is %s", m.format, rts_model_format(b->model));
        goto fail;
    }
    if (check_features(b, m.features, eb) || parse_reference(b, m.reference, eb)) {
        goto fail;
    }
    if (rts_model_noutputs(b->model) > 1 &&
        (m.score_class < 0 || (uint64_t)m.score_class >= rts_model_noutputs(b->model))) {
        rts_conf_errf(eb, rts_conf_get(rts_conf_root(doc), "score_class"), "score_class",
                      "%lld, but the model has classes 0..%zu", (long long)m.score_class,
                      rts_model_noutputs(b->model) - 1);
        goto fail;
    }
    b->score_class = rts_model_noutputs(b->model) > 1 ? (size_t)m.score_class : 0;
    b->name = strdup(m.name);
    b->dir = strdup(dir);
    b->version = (long)m.version;
    if (!b->name || !b->dir) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
        goto fail;
    }
    snprintf(b->label, sizeof(b->label), "%.80s@%ld", b->name, b->version);
    rts_conf_free(doc);
    rts_buf_fini(&text);
    return b;
fail:
    rts_conf_free(doc);
    rts_buf_fini(&text);
    rts_bundle_free(b);
    return NULL;
}
