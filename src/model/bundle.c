/*
 * bundle.c - load and cross-check a model bundle (bundle.h).
 */
#include "model/bundle.h"

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

void rts_bundle_free(struct rts_bundle *b)
{
    if (!b) {
        return;
    }
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
    if (check_features(b, m.features, eb)) {
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
    b->version = (long)m.version;
    if (!b->name) {
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
