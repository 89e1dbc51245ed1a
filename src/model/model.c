/*
 * model.c - format detection, reference counting and the accessors shared by
 * every model format (model.h).
 */
#include "model/model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "model/model_int.h"

#define MODEL_MAX_BYTES ((size_t)1 << 30)

struct rts_model *rts_model_load_mem(const char *name, const char *data, size_t len,
                                     struct rts_errbuf *eb)
{
    json_error_t je;
    json_t *doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je), *fmt;
    struct rts_model *m = NULL;

    if (!doc) {
        rts_errf(eb, RTS_ERR_PARSE, je.line, je.column, "%s: not valid JSON at line %d, column %d: %s",
                 name, je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(doc)) {
        rts_errf(eb, RTS_ERR_PARSE, 0, 0, "%s: expected a JSON object", name);
        goto out;
    }
    fmt = json_object_get(doc, "format");
    if (json_object_get(doc, "learner")) {
        m = rts_gbt_load(doc, eb);
    } else if (json_is_string(fmt) && strcmp(json_string_value(fmt), "linear-json") == 0) {
        m = rts_linear_load(doc, eb);
    } else if (json_is_string(fmt) && strcmp(json_string_value(fmt), "mlp-json") == 0) {
        m = rts_mlp_load(doc, eb);
    } else {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                 "%s: unknown model format: expected an XGBoost JSON model (a 'learner' key) or "
                 "\"format\": \"linear-json\" or \"mlp-json\"", name);
        goto out;
    }
    if (!m) {
        rts_err_prefix(eb, name);
        goto out;
    }
    atomic_init(&m->refs, 1);
out:
    json_decref(doc);
    return m;
}

struct rts_model *rts_model_load(const char *path, struct rts_errbuf *eb)
{
    struct rts_buf b = {0};
    struct rts_model *m = NULL;

    if (rts_buf_read_file(&b, path, MODEL_MAX_BYTES, eb) == RTS_ERR_OK) {
        m = rts_model_load_mem(path, b.data ? b.data : "", b.len, eb);
    }
    rts_buf_fini(&b);
    return m;
}

struct rts_model *rts_model_ref(struct rts_model *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

void rts_model_unref(struct rts_model *m)
{
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
        m->ops->free(m);
    }
}

int rts_model_bad(struct rts_errbuf *eb, enum rts_err code, const char *fmt, ...)
{
    char msg[sizeof(eb->msg)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rts_errf(eb, code, 0, 0, "%s", msg);
    return -1;
}

const char *rts_model_json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

void rts_model_free_common(struct rts_model *m)
{
    for (size_t i = 0; m->feature_names && i < m->nfeatures; i++) {
        free(m->feature_names[i]);
    }
    free(m->feature_names);
    m->feature_names = NULL;
}

size_t rts_model_nfeatures(const struct rts_model *m)
{
    return m->nfeatures;
}

const char *rts_model_feature_name(const struct rts_model *m, size_t i)
{
    return m->feature_names && i < m->nfeatures ? m->feature_names[i] : NULL;
}

size_t rts_model_noutputs(const struct rts_model *m)
{
    return m->noutputs;
}

const char *rts_model_format(const struct rts_model *m)
{
    return m->ops->format;
}

const char *rts_model_objective(const struct rts_model *m)
{
    return m->objective;
}

enum rts_err rts_model_predict(const struct rts_model *m, const float *x, size_t n, size_t nx,
                               float *y)
{
    if (nx != m->nfeatures) {
        return RTS_ERR_INVAL;
    }
    m->ops->predict(m, x, n, y);
    return RTS_ERR_OK;
}
