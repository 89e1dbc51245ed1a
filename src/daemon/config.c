/*
 * config.c - parse and check the pipeline YAML into struct rts_pipeline_conf.
 *
 * Every section is described by an option table (conf.h), which gives the
 * unknown-key errors with line numbers, the defaults and docs/CONFIG.md from
 * one declaration. Cross-references (a feature's `of`, role fields) are
 * resolved here; expressions are only located here and compiled by the
 * pipeline. Sections of the design that this build does not implement yet
 * are refused by name rather than ignored.
 */
#include "daemon/config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "feature/hll.h"
#include "feature/window.h"

#define PATH_MAX_LEN 160

const char *rts_stage_name(enum rts_stage s)
{
    static const char *const names[] = {
#define RTS_STAGE_NAME(name, text) text,
        RTS_STAGES(RTS_STAGE_NAME)
#undef RTS_STAGE_NAME
    };
    return (unsigned)s < RTS_STAGE__COUNT ? names[s] : "?";
}

/* ---- section option tables ---- */

struct top_opts {
    const char *pipeline;
    const struct rts_conf_node *workers, *source, *event, *features, *rules, *fallback, *sink,
        *alerts, *dlq, *shadow, *limits, *latency_budget;
    const struct rts_conf_node *stores, *model, *dedup, *checkpoint, *http, *state;
};

static const struct rts_opt top_opts_table[] = {
    RTS_OPT_STR("pipeline", "pipeline", offsetof(struct top_opts, pipeline),
                "name of the pipeline (logs, metrics)"),
    RTS_OPT_NODE("workers", offsetof(struct top_opts, workers),
                 "shard workers: a number or auto (= online cores); default auto"),
    RTS_OPT_NODE("source", offsetof(struct top_opts, source), "where events come from (required)"),
    RTS_OPT_NODE("event", offsetof(struct top_opts, event), "event format and schema (required)"),
    RTS_OPT_NODE("features", offsetof(struct top_opts, features), "list of features, in order"),
    RTS_OPT_NODE("rules", offsetof(struct top_opts, rules),
                 "decision rules; the first match wins"),
    RTS_OPT_NODE("fallback", offsetof(struct top_opts, fallback),
                 "the rule-based score (used while no model serves)"),
    RTS_OPT_NODE("sink", offsetof(struct top_opts, sink), "where score records go (required)"),
    RTS_OPT_NODE("alerts", offsetof(struct top_opts, alerts),
                 "records matching `when` also go to their own sink"),
    RTS_OPT_NODE("dlq", offsetof(struct top_opts, dlq), "where dead-letter records go"),
    RTS_OPT_NODE("shadow", offsetof(struct top_opts, shadow),
                 "where the candidate model's shadow scores go (\"path\":\"shadow\"); a sink"),
    RTS_OPT_NODE("limits", offsetof(struct top_opts, limits), "bounds of queues, events and state"),
    RTS_OPT_NODE("latency_budget", offsetof(struct top_opts, latency_budget),
                 "per-stage budgets; exceeding one is counted"),
    RTS_OPT_NODE("stores", offsetof(struct top_opts, stores),
                 "online feature stores for lookups: name -> {type: redis | file, ...}"),
    RTS_OPT_NODE("model", offsetof(struct top_opts, model),
                 "the embedded model; without it, score = fallback.score"),
    RTS_OPT_NODE("dedup", offsetof(struct top_opts, dedup),
                 "drop repeated event ids within a horizon (counted as duplicates)"),
    RTS_OPT_NODE("checkpoint", offsetof(struct top_opts, checkpoint), "checkpoints (not yet)"),
    RTS_OPT_NODE("http", offsetof(struct top_opts, http),
                 "HTTP control plane: metrics, health, status, admin API"),
    RTS_OPT_NODE("state", offsetof(struct top_opts, state),
                 "where windowed state lives: {type: local} (default) or {type: redis, ...}"),
    RTS_OPT_END,
};

struct event_opts {
    const char *format, *id, *key, *time;
    const struct rts_conf_node *fields;
};

static const struct rts_opt event_opts_table[] = {
    RTS_OPT_STR("format", "json", offsetof(struct event_opts, format),
                "message format: json (one object per message or line)"),
    RTS_OPT_STR_REQ("id", offsetof(struct event_opts, id), "field with the event id"),
    RTS_OPT_STR_REQ("key", offsetof(struct event_opts, key),
                    "field with the state and routing key"),
    RTS_OPT_STR("time", NULL, offsetof(struct event_opts, time),
                "field with the event time (epoch ms, epoch s or RFC 3339); "
                "absent = ingest time"),
    RTS_OPT_NODE("fields", offsetof(struct event_opts, fields),
                 "map of field name to {type, required, default, min, max, max_len}"),
    RTS_OPT_END,
};

struct field_opts {
    const char *type;
    int required;
    const struct rts_conf_node *def, *min, *max;
    int64_t max_len;
};

static const struct rts_opt field_opts_table[] = {
    RTS_OPT_STR_REQ("type", offsetof(struct field_opts, type),
                    "string | int | float | bool | timestamp"),
    RTS_OPT_BOOL("required", "false", offsetof(struct field_opts, required),
                 "an event without it goes to the DLQ (missing_field)"),
    RTS_OPT_NODE("default", offsetof(struct field_opts, def), "value when absent or null"),
    RTS_OPT_NODE("min", offsetof(struct field_opts, min), "numbers: smallest allowed value"),
    RTS_OPT_NODE("max", offsetof(struct field_opts, max), "numbers: largest allowed value"),
    RTS_OPT_INT("max_len", "0", offsetof(struct field_opts, max_len),
                "strings: most bytes allowed; 0 = no limit"),
    RTS_OPT_END,
};

struct feature_opts {
    const char *name, *expr, *agg, *of;
    const struct rts_conf_node *window;
    int64_t last, buckets, exact;
    const struct rts_conf_node *lookup;
};

static const struct rts_opt feature_opts_table[] = {
    RTS_OPT_STR_REQ("name", offsetof(struct feature_opts, name), "feature name (an identifier)"),
    RTS_OPT_STR("expr", NULL, offsetof(struct feature_opts, expr),
                "an expression over fields and other features"),
    RTS_OPT_STR("agg", NULL, offsetof(struct feature_opts, agg),
                "count | sum | mean | min | max | distinct | last | since_last | velocity"),
    RTS_OPT_STR("of", NULL, offsetof(struct feature_opts, of), "the field aggregated"),
    RTS_OPT_NODE("window", offsetof(struct feature_opts, window),
                 "sliding event-time window, e.g. 5m, 24h, 30d"),
    RTS_OPT_INT("last", "0", offsetof(struct feature_opts, last),
                "aggregate over the last N values instead of a window"),
    RTS_OPT_INT("buckets", "0", offsetof(struct feature_opts, buckets),
                "window resolution: window / buckets (default 32; distinct 8)"),
    RTS_OPT_INT("exact", "0", offsetof(struct feature_opts, exact),
                "distinct: values counted exactly in the key's own state (default 16; each "
                "costs 12 bytes per key); beyond, in a 4 KiB list block of up to 339 values, "
                "then HyperLogLog. count, sum, mean, min, max with "
                "window: the N newest events of the key are kept with their time and value; "
                "while they cover the window the value is exact at the window edge, else "
                "bucketed and counted as an exact window overflow (1..4096; 0 = off; 16 bytes "
                "per event per key)"),
    RTS_OPT_NODE("lookup", offsetof(struct feature_opts, lookup),
                 "read from an online store: {store, key, field, max_age, default}"),
    RTS_OPT_END,
};

struct rule_opts {
    const char *when, *decision, *reason;
};

static const struct rts_opt rule_opts_table[] = {
    RTS_OPT_STR("when", NULL, offsetof(struct rule_opts, when),
                "condition; absent = always (the default decision)"),
    RTS_OPT_STR_REQ("decision", offsetof(struct rule_opts, decision),
                    "decision label, e.g. allow, review, block"),
    RTS_OPT_STR("reason", NULL, offsetof(struct rule_opts, reason),
                "recorded reason; default the text of `when`"),
    RTS_OPT_END,
};

struct model_opts {
    const char *path, *registry;
    int64_t drift_window_us;
    double drift_warn;
    const struct rts_conf_node *batch, *breaker;
    int64_t timeout_us;
};

static const struct rts_opt model_opts_table[] = {
    RTS_OPT_STR_REQ("path", offsetof(struct model_opts, path),
                    "bundle folder (model.json + manifest.yaml), from the working directory"),
    RTS_OPT_STR("registry", NULL, offsetof(struct model_opts, registry),
                "registry folder of bundles REGISTRY/<name>/<version>/, for "
                "POST /admin/models/load {\"version\": V}"),
    RTS_OPT_DURATION("drift_window", "1h", offsetof(struct model_opts, drift_window_us),
                     "drift (PSI against the bundle's reference) is computed over this much "
                     "recent traffic"),
    RTS_OPT_DOUBLE("drift_warn", "0.25", offsetof(struct model_opts, drift_warn),
                   "log a warning when an input's or the score's PSI reaches this (0 = never)"),
    RTS_OPT_NODE("batch", offsetof(struct model_opts, batch),
                 "micro-batching: {max, max_wait} (see model.batch)"),
    RTS_OPT_DURATION("timeout", "0", offsetof(struct model_opts, timeout_us),
                     "a model call slower than this counts as a failure for the circuit "
                     "breaker; 0 = no breaker"),
    RTS_OPT_NODE("breaker", offsetof(struct model_opts, breaker),
                 "circuit breaker settings (with timeout)"),
    RTS_OPT_END,
};

static const struct rts_opt dedup_opts_table[] = {
    RTS_OPT_DURATION("horizon", "10m", offsetof(struct rts_dedup_conf, horizon_us),
                     "an id seen again within this time of its first sighting is a duplicate"),
    RTS_OPT_INT("max_ids", "10000000", offsetof(struct rts_dedup_conf, max_ids),
                "ids remembered, all workers together (about 25 bytes each); the oldest go "
                "first when full"),
    RTS_OPT_END,
};

static const struct rts_opt http_opts_table[] = {
    RTS_OPT_STR_REQ("listen", offsetof(struct rts_http_conf, listen),
                    "host:port to serve on, e.g. 127.0.0.1:9464 (port 0: any free port, logged)"),
    RTS_OPT_STR("admin_token_file", NULL, offsetof(struct rts_http_conf, admin_token_file),
                "file holding the bearer token of /admin/* (owner-only permissions); required "
                "to listen on an address other than loopback"),
    RTS_OPT_END,
};

struct batch_opts {
    int64_t max, max_wait_us;
};

static const struct rts_opt batch_opts_table[] = {
    RTS_OPT_INT("max", "64", offsetof(struct batch_opts, max),
                "events scored by one model call at most (1..1024); a worker takes what is "
                "queued, up to this many"),
    RTS_OPT_DURATION("max_wait", "0", offsetof(struct batch_opts, max_wait_us),
                     "when fewer than max events are queued, wait this long at most for more "
                     "(0: score what is there at once; under load batches fill by themselves)"),
    RTS_OPT_END,
};

static const struct rts_opt breaker_opts_table[] = {
    RTS_OPT_DURATION("window", "10s", offsetof(struct rts_breaker_conf, window_us),
                     "rolling window over which failures are counted"),
    RTS_OPT_INT("min_calls", "20", offsetof(struct rts_breaker_conf, min_calls),
                "calls in the window before it may open"),
    RTS_OPT_DOUBLE("failure_ratio", "0.5", offsetof(struct rts_breaker_conf, failure_ratio),
                   "share of failed or slow calls that opens it"),
    RTS_OPT_DURATION("open_for", "5s", offsetof(struct rts_breaker_conf, open_us),
                     "how long it stays open before probing (doubles on a failed probe)"),
    RTS_OPT_DURATION("max_open", "60s", offsetof(struct rts_breaker_conf, max_open_us),
                     "the longest it stays open"),
    RTS_OPT_INT("probes", "3", offsetof(struct rts_breaker_conf, probes),
                "trial calls when half-open; that many successes close it"),
    RTS_OPT_INT("consecutive", "20", offsetof(struct rts_breaker_conf, consecutive),
                "failed or slow calls in a row that open it at once, whatever the window "
                "holds (0: no such rule)"),
    RTS_OPT_END,
};

int rts_breaker_conf_opts(const struct rts_breaker_conf *bc, struct rts_breaker_opts *o)
{
    if (bc->window_us < 1000 || bc->open_us < 1000 || bc->window_us / 1000 > UINT32_MAX ||
        bc->open_us / 1000 > UINT32_MAX || bc->max_open_us / 1000 > UINT32_MAX ||
        bc->min_calls < 1 || bc->min_calls > UINT32_MAX || bc->probes < 1 ||
        bc->probes > UINT32_MAX || bc->consecutive < 0 || bc->consecutive > UINT32_MAX) {
        return -1;
    }
    o->window_ms = (uint32_t)(bc->window_us / 1000);
    o->min_calls = (uint32_t)bc->min_calls;
    o->consecutive = (uint32_t)bc->consecutive;
    o->failure_ratio = bc->failure_ratio;
    o->open_ms = (uint32_t)(bc->open_us / 1000);
    o->max_open_ms = (uint32_t)(bc->max_open_us / 1000);
    if (o->max_open_ms < o->open_ms) {
        o->max_open_ms = o->open_ms;
    }
    o->probe_calls = (uint32_t)bc->probes;
    return 0;
}

struct fallback_opts {
    const char *score;
};

static const struct rts_opt fallback_opts_table[] = {
    RTS_OPT_STR_REQ("score", offsetof(struct fallback_opts, score),
                    "expression giving the score without a model"),
    RTS_OPT_END,
};

struct alerts_opts {
    const char *when;
    const struct rts_conf_node *sink;
};

static const struct rts_opt alerts_opts_table[] = {
    RTS_OPT_STR_REQ("when", offsetof(struct alerts_opts, when),
                    "condition over score, decision, fields and features"),
    RTS_OPT_NODE("sink", offsetof(struct alerts_opts, sink), "where alerts go (required)"),
    RTS_OPT_END,
};

static const struct rts_opt limits_opts_table[] = {
    RTS_OPT_INT("queue", "65536", offsetof(struct rts_limits, queue),
                "events queued per worker before the source waits"),
    RTS_OPT_SIZE("queue_bytes", "16MiB", offsetof(struct rts_limits, queue_bytes),
                 "bytes queued per worker before the source waits"),
    RTS_OPT_SIZE("max_event_bytes", "65536", offsetof(struct rts_limits, max_event_bytes),
                 "larger messages go to the DLQ as too_large"),
    RTS_OPT_INT("max_keys", "10000000", offsetof(struct rts_limits, max_keys),
                "keys of keyed state (all workers); the least recently seen is evicted"),
    RTS_OPT_DURATION("key_ttl", "30d", offsetof(struct rts_limits, key_ttl_us),
                     "a key unseen this long (event time) expires; 0 = never"),
    RTS_OPT_INT("max_sketches", "10000", offsetof(struct rts_limits, max_sketches),
                "dense HyperLogLog sketches per distinct feature and worker"),
    RTS_OPT_END,
};

static const struct rts_opt budget_opts_table[] = {
#define RTS_BUDGET_OPT(name, text)                                                                 \
    RTS_OPT_DURATION(text, "0", sizeof(int64_t) * RTS_STAGE_##name,                                \
                     "budget of the " text " stage; 0 = none"),
    RTS_STAGES(RTS_BUDGET_OPT)
#undef RTS_BUDGET_OPT
        RTS_OPT_END,
};

static const char *const plugin_ignore[] = {"type", NULL};
static const char *const score_sink_ignore[] = {"type", "emit_features", NULL};

/* ---- helpers ---- */

/* Re-address an error from a lower layer (no position) at node @n. */
static enum rts_err at_node(struct rts_errbuf *eb, const struct rts_conf_node *n, const char *path)
{
    char msg[sizeof(eb->msg)];

    memcpy(msg, eb->msg, sizeof(msg));
    return rts_conf_errf(eb, n, path, "%s", msg);
}

/* An identifier of at most 64 bytes (names go into records unescaped-bounded). */
static int is_ident(const char *s)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_') || strlen(s) > 64) {
        return 0;
    }
    for (s++; *s; s++) {
        if (!(isalnum((unsigned char)*s) || *s == '_')) {
            return 0;
        }
    }
    return 1;
}

static int is_reserved(const char *s)
{
    static const char *const words[] = {"and", "or", "not", "in", "true", "false", "score",
                                        "decision", NULL};
    for (size_t i = 0; words[i]; i++) {
        if (strcmp(s, words[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static void expr_at(struct rts_conf_expr *e, const struct rts_conf_node *map, const char *key,
                    const char *src, const char *path)
{
    const struct rts_conf_node *n = rts_conf_get(map, key);

    e->src = src;
    e->path = path;
    e->line = n ? n->line : map->line;
    e->column = n ? n->column : map->column;
}

/* A path string that lives as long as the config (kept in a list). */
struct path_list {
    char **v;
    size_t n;
};

/* "PREFIX.NAME", or "PREFIX[IDX]" when @name is NULL: a key path for
 * messages, kept as long as the config. */
static const char *keep_path(struct path_list *pl, const char *prefix, const char *name,
                             size_t idx)
{
    char tmp[PATH_MAX_LEN];
    char **nv;

    if (name) {
        snprintf(tmp, sizeof(tmp), "%s.%s", prefix, name);
    } else {
        snprintf(tmp, sizeof(tmp), "%s[%zu]", prefix, idx);
    }
    nv = realloc(pl->v, (pl->n + 1) * sizeof(*nv));
    if (!nv) {
        return "?";
    }
    pl->v = nv;
    pl->v[pl->n] = strdup(tmp);
    return pl->v[pl->n] ? pl->v[pl->n++] : "?";
}

struct rts_conf_full {
    struct rts_pipeline_conf pub;
    struct path_list paths;
};

static enum rts_err parse_source(struct rts_pipeline_conf *c, const struct rts_conf_node *n,
                                 struct rts_errbuf *eb)
{
    const struct rts_conf_node *t;
    const char *type;
    void *ctx;

    if (!n) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s: missing required key 'source'", c->file);
    }
    if (n->kind != RTS_CONF_MAP) {
        return rts_conf_errf(eb, n, "source", "expected a mapping with a type");
    }
    t = rts_conf_get(n, "type");
    if (!t) {
        return rts_conf_errf(eb, n, "source",
                             "missing required key 'type' (kafka | file | generator)");
    }
    if (rts_conf_string(t, "source.type", &type, eb)) {
        return RTS_ERR_INVAL;
    }
    c->source_ops = rts_source_find(type);
    if (!c->source_ops) {
        return rts_conf_errf(eb, t, "source.type",
                             "unknown source '%s'; expected kafka, file or generator", type);
    }
    c->source_node = n;
    ctx = rts_opt_ctx_new(c->source_ops->opts, c->source_ops->ctx_size, n, "source",
                              plugin_ignore, eb);
    if (ctx && c->source_ops->check && c->source_ops->check(ctx, "source", eb)) {
        free(ctx);
        return eb && eb->code ? eb->code : RTS_ERR_INVAL;
    }
    free(ctx);
    return ctx ? RTS_ERR_OK : RTS_ERR_INVAL;
}

static enum rts_err parse_sink(const struct rts_conf_node *n, const char *path, int score_sink,
                               struct rts_sink_conf *out, struct rts_errbuf *eb)
{
    const struct rts_conf_node *t, *ef;
    const char *type;
    void *ctx;

    if (n->kind != RTS_CONF_MAP) {
        return rts_conf_errf(eb, n, path, "expected a mapping with a type");
    }
    t = rts_conf_get(n, "type");
    if (!t) {
        return rts_conf_errf(eb, n, path, "missing required key 'type' (kafka | file | null)");
    }
    if (rts_conf_string(t, path, &type, eb)) {
        return RTS_ERR_INVAL;
    }
    out->ops = rts_sink_find(type);
    if (!out->ops) {
        return rts_conf_errf(eb, t, path, "unknown sink '%s'; expected kafka, file or null",
                             type);
    }
    out->node = n;
    out->path = path;
    ef = rts_conf_get(n, "emit_features");
    if (score_sink && ef && rts_conf_bool(ef, path, &out->emit_features, eb)) {
        return RTS_ERR_INVAL;
    }
    ctx = rts_opt_ctx_new(out->ops->opts, out->ops->ctx_size, n, path,
                              score_sink ? score_sink_ignore : plugin_ignore, eb);
    if (ctx && out->ops->check && out->ops->check(ctx, path, eb)) {
        free(ctx);
        return eb && eb->code ? eb->code : RTS_ERR_INVAL;
    }
    free(ctx);
    return ctx ? RTS_ERR_OK : RTS_ERR_INVAL;
}

static enum rts_err parse_num_node(const struct rts_conf_node *n, const char *path, double *out,
                                   struct rts_errbuf *eb)
{
    return rts_conf_double(n, path, out, eb);
}

static enum rts_err parse_fields(struct rts_conf_full *cf, const struct rts_conf_node *fields,
                                 struct rts_errbuf *eb)
{
    struct rts_pipeline_conf *c = &cf->pub;

    if (!fields) {
        return RTS_ERR_OK;
    }
    if (fields->kind != RTS_CONF_MAP) {
        return rts_conf_errf(eb, fields, "event.fields", "expected a mapping of field name to "
                                                         "{type: ...}");
    }
    for (size_t i = 0; i < fields->len; i++) {
        const struct rts_conf_node *fn = fields->items[i];
        const char *name = fields->keys[i];
        const char *path = keep_path(&cf->paths, "event.fields", name, 0);
        struct field_opts fo = {0};
        struct rts_field_spec spec = {0};
        double d;

        if (!is_ident(name) || is_reserved(name)) {
            return rts_conf_errf(eb, fn, path, "'%s' is not a usable field name (an identifier, "
                                               "not a reserved word)", name);
        }
        if (rts_opt_apply(field_opts_table, fn, path, NULL, &fo, eb)) {
            return RTS_ERR_INVAL;
        }
        spec.name = name;
        if (rts_field_type_parse(fo.type, &spec.type) != 0) {
            return rts_conf_errf(eb, rts_conf_get(fn, "type"), path,
                                 "unknown type '%s'; expected string, int, float, bool or "
                                 "timestamp", fo.type);
        }
        spec.required = fo.required;
        if (fo.max_len < 0 || fo.max_len > UINT32_MAX) {
            return rts_conf_errf(eb, rts_conf_get(fn, "max_len"), path, "max_len out of range");
        }
        spec.max_len = (uint32_t)fo.max_len;
        if ((fo.min || fo.max) && spec.type == RTS_FT_STRING) {
            return rts_conf_errf(eb, fn, path, "min and max apply to numbers; strings have "
                                               "max_len");
        }
        if (fo.min) {
            if (parse_num_node(fo.min, path, &spec.min, eb)) {
                return RTS_ERR_INVAL;
            }
            spec.has_min = 1;
        }
        if (fo.max) {
            if (parse_num_node(fo.max, path, &spec.max, eb)) {
                return RTS_ERR_INVAL;
            }
            spec.has_max = 1;
        }
        if (spec.has_min && spec.has_max && spec.min > spec.max) {
            return rts_conf_errf(eb, fn, path, "min is larger than max");
        }
        if (fo.def) {
            spec.has_default = 1;
            if (spec.type == RTS_FT_STRING) {
                if (rts_conf_string(fo.def, path, &spec.def_str, eb)) {
                    return RTS_ERR_INVAL;
                }
            } else if (spec.type == RTS_FT_BOOL) {
                int b;
                if (rts_conf_bool(fo.def, path, &b, eb)) {
                    return RTS_ERR_INVAL;
                }
                spec.def_num = b;
            } else {
                if (parse_num_node(fo.def, path, &d, eb)) {
                    return RTS_ERR_INVAL;
                }
                spec.def_num = d;
            }
        }
        if (rts_schema_add(c->schema, &spec, eb)) {
            return at_node(eb, fn, path);
        }
    }
    return RTS_ERR_OK;
}

static enum rts_err parse_event(struct rts_conf_full *cf, const struct rts_conf_node *n,
                                struct rts_errbuf *eb)
{
    struct rts_pipeline_conf *c = &cf->pub;
    struct event_opts eo = {0};

    if (!n) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s: missing required key 'event'", c->file);
    }
    if (rts_opt_apply(event_opts_table, n, "event", NULL, &eo, eb)) {
        return RTS_ERR_INVAL;
    }
    if (strcmp(eo.format, "json") != 0) {
        return rts_conf_errf(eb, rts_conf_get(n, "format"), "event.format",
                             "unknown format '%s'; expected json", eo.format);
    }
    c->schema = rts_schema_new();
    if (!c->schema) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
    }
    if (parse_fields(cf, eo.fields, eb)) {
        return RTS_ERR_INVAL;
    }
    if (rts_schema_set_roles(c->schema, eo.id, eo.key, eo.time, eb)) {
        return at_node(eb, n, "event");
    }
    return RTS_ERR_OK;
}

static int field_is_numeric(const struct rts_schema *s, int i)
{
    return rts_field_value_type(rts_schema_field(s, (size_t)i)->type) != RTS_T_STR;
}

/* ---- online stores and lookup features ---- */

struct lookup_opts {
    const char *store, *key, *field;
    int64_t max_age_us;
    const struct rts_conf_node *def;
};

static const struct rts_opt lookup_opts_table[] = {
    RTS_OPT_STR_REQ("store", offsetof(struct lookup_opts, store), "a name under stores:"),
    RTS_OPT_STR_REQ("key", offsetof(struct lookup_opts, key),
                    "key template: event fields in braces, e.g. \"card:{card_id}\" ({{ and }} "
                    "are literal braces)"),
    RTS_OPT_STR("field", NULL, offsetof(struct lookup_opts, field),
                "field of the stored record; default the feature's name"),
    RTS_OPT_DURATION("max_age", "0", offsetof(struct lookup_opts, max_age_us),
                     "a value updated longer ago than this, at the event's time, takes the "
                     "default; 0 = any age"),
    RTS_OPT_NODE("default", offsetof(struct lookup_opts, def),
                 "a number: the value when the key or field is missing, too old, or the store "
                 "does not answer; default missing (NaN)"),
    RTS_OPT_END,
};

static enum rts_err parse_stores(struct rts_conf_full *cf, const struct rts_conf_node *n,
                                 struct rts_errbuf *eb)
{
    struct rts_pipeline_conf *c = &cf->pub;

    if (!n) {
        return RTS_ERR_OK;
    }
    if (n->kind != RTS_CONF_MAP || n->len > RTS_LOOKUP_MAX_STORES) {
        return rts_conf_errf(eb, n, "stores", "expected a mapping of at most %d store names to "
                                              "{type: redis | file, ...}", RTS_LOOKUP_MAX_STORES);
    }
    c->stores = calloc(n->len ? n->len : 1, sizeof(*c->stores));
    if (!c->stores) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
    }
    for (size_t i = 0; i < n->len; i++) {
        struct rts_store_def *sd = &c->stores[i];
        struct rts_store_common co = {0};
        struct rts_breaker_conf bc = {0};
        struct rts_breaker *b;
        const char *path = keep_path(&cf->paths, "stores", n->keys[i], 0);
        const char *bpath = keep_path(&cf->paths, path, "breaker", 0);

        if (!is_ident(n->keys[i])) {
            return rts_conf_errf(eb, n->items[i], path, "'%s' is not a usable store name (an "
                                                        "identifier)", n->keys[i]);
        }
        if (rts_store_parse(n->items[i], path, &co, &sd->ops, eb) ||
            rts_opt_apply(breaker_opts_table, co.breaker, bpath, NULL, &bc, eb)) {
            return RTS_ERR_INVAL;
        }
        if ((co.cache_ttl_us > 0 && co.cache_ttl_us < 1000) || co.cache_ttl_us < 0 ||
            co.cache_max < 1 || co.cache_max > (1u << 30)) {
            return rts_conf_errf(eb, n->items[i], path, "cache_ttl is 0 (no cache) or at least "
                                                        "1ms; cache_max is 1..2^30");
        }
        if (rts_breaker_conf_opts(&bc, &sd->breaker)) {
            return rts_conf_errf(eb, co.breaker ? co.breaker : n->items[i], bpath,
                                 "%s", RTS_BREAKER_CONF_RANGES);
        }
        sd->name = n->keys[i];
        sd->path = path;
        sd->node = n->items[i];
        sd->updated_field = co.updated_field;
        sd->cache_ttl_ms = co.cache_ttl_us / 1000;
        sd->cache_max = co.cache_max;
        b = rts_breaker_new(path, &sd->breaker, eb); /* its own range checks */
        if (!b) {
            return at_node(eb, co.breaker ? co.breaker : n->items[i], bpath);
        }
        rts_breaker_free(b);
        c->nstores++;
    }
    return RTS_ERR_OK;
}

/* {name, lookup: {store, key, field, max_age, default}}: an external
 * feature that the lookup stage fills (feature/lookup.h). */
static enum rts_err parse_lookup(struct rts_conf_full *cf, const struct rts_conf_node *fn,
                                 const char *path, const struct feature_opts *fo,
                                 struct rts_feature_def *d, struct rts_errbuf *eb)
{
    struct rts_pipeline_conf *c = &cf->pub;
    const char *lpath = keep_path(&cf->paths, path, "lookup", 0);
    struct lookup_opts lo = {0};
    size_t s;

    if (fo->expr || fo->agg || fo->of || fo->window || fo->last || fo->buckets || fo->exact) {
        return rts_conf_errf(eb, fn, path, "a lookup feature takes no expr, agg, of, window, "
                                           "last, buckets or exact");
    }
    if (fo->lookup->kind != RTS_CONF_MAP) {
        return rts_conf_errf(eb, fo->lookup, lpath, "expected {store, key, field, max_age, "
                                                    "default}");
    }
    if (rts_opt_apply(lookup_opts_table, fo->lookup, lpath, NULL, &lo, eb)) {
        return RTS_ERR_INVAL;
    }
    for (s = 0; s < c->nstores && strcmp(c->stores[s].name, lo.store) != 0; s++) {
    }
    if (s == c->nstores) {
        return rts_conf_errf(eb, rts_conf_get(fo->lookup, "store"), lpath,
                             "unknown store '%s'; stores are defined under stores:", lo.store);
    }
    if (rts_lookup_template_check(c->schema, lo.key, eb)) {
        return at_node(eb, rts_conf_get(fo->lookup, "key"), keep_path(&cf->paths, lpath, "key", 0));
    }
    if ((lo.field && !*lo.field) || lo.max_age_us < 0 || (lo.max_age_us && lo.max_age_us < 1000)) {
        return rts_conf_errf(eb, fo->lookup, lpath, "field is not empty; max_age is 0 (any age) "
                                                    "or at least 1ms");
    }
    d->kind = RTS_FEAT_LOOKUP;
    d->store = lo.store;
    d->key = lo.key;
    d->field = lo.field ? lo.field : fo->name;
    d->max_age_ms = lo.max_age_us / 1000;
    d->def = NAN;
    if (lo.def && rts_conf_double(lo.def, lpath, &d->def, eb)) {
        return RTS_ERR_INVAL;
    }
    return RTS_ERR_OK;
}

static enum rts_err parse_feature(struct rts_conf_full *cf, const struct rts_conf_node *fn,
                                  size_t idx, struct rts_feature_def *d, struct rts_errbuf *eb)
{
    struct rts_pipeline_conf *c = &cf->pub;
    const char *path = keep_path(&cf->paths, "features", NULL, idx);
    struct feature_opts fo = {0};
    int64_t win_us = 0;

    if (fn->kind != RTS_CONF_MAP) {
        return rts_conf_errf(eb, fn, path, "expected a mapping like {name: x, agg: count, "
                                           "window: 5m}");
    }
    if (rts_opt_apply(feature_opts_table, fn, path, NULL, &fo, eb)) {
        return RTS_ERR_INVAL;
    }
    d->name = fo.name;
    d->file = c->file;
    d->line = fn->line;
    d->column = fn->column;
    d->of = -1;
    if (!is_ident(fo.name) || is_reserved(fo.name)) {
        return rts_conf_errf(eb, rts_conf_get(fn, "name"), path,
                             "'%s' is not a usable feature name (an identifier, not a reserved "
                             "word)", fo.name);
    }
    if (rts_schema_find(c->schema, fo.name, strlen(fo.name)) >= 0) {
        return rts_conf_errf(eb, rts_conf_get(fn, "name"), path,
                             "'%s' is already an event field", fo.name);
    }
    for (size_t j = 0; j < idx; j++) {
        if (strcmp(c->features[j].name, fo.name) == 0) {
            return rts_conf_errf(eb, rts_conf_get(fn, "name"), path,
                                 "feature '%s' is defined twice (first at line %d)", fo.name,
                                 c->features[j].line);
        }
    }
    if (fo.lookup) {
        return parse_lookup(cf, fn, path, &fo, d, eb);
    }
    if (!!fo.expr + !!fo.agg != 1) {
        return rts_conf_errf(eb, fn, path, "a feature has exactly one of expr or agg");
    }
    if (fo.exact && !fo.agg) {
        return rts_conf_errf(eb, rts_conf_get(fn, "exact"), keep_path(&cf->paths, path, "exact", 0),
                             "goes with agg: distinct, or count, sum, mean, min, max with a "
                             "window; not with expr");
    }
    if (fo.expr) {
        if (fo.of || fo.window || fo.last || fo.buckets) {
            return rts_conf_errf(eb, fn, path, "of, window, last and buckets go with agg, not "
                                               "expr");
        }
        d->kind = RTS_FEAT_EXPR;
        d->expr = fo.expr;
        d->line = rts_conf_get(fn, "expr")->line;
        d->column = rts_conf_get(fn, "expr")->column;
        return RTS_ERR_OK;
    }
    d->kind = RTS_FEAT_AGG;
    if (rts_agg_parse(fo.agg, &d->agg) != 0) {
        return rts_conf_errf(eb, rts_conf_get(fn, "agg"), path,
                             "unknown agg '%s'; expected count, sum, mean, min, max, distinct, "
                             "last, since_last or velocity", fo.agg);
    }
    if (fo.of) {
        d->of = rts_schema_find(c->schema, fo.of, strlen(fo.of));
        if (d->of < 0) {
            return rts_conf_errf(eb, rts_conf_get(fn, "of"), path, "unknown field '%s'", fo.of);
        }
    }
    if (fo.window && rts_conf_duration_us(fo.window, path, &win_us, eb)) {
        return RTS_ERR_INVAL;
    }
    if (fo.window && win_us < 1000) {
        return rts_conf_errf(eb, fo.window, path, "window must be at least 1ms");
    }
    if (fo.last < 0 || fo.last > 1024) {
        return rts_conf_errf(eb, rts_conf_get(fn, "last"), path, "last must be 1..1024");
    }
    if (fo.buckets < 0 || fo.buckets > 4096) {
        return rts_conf_errf(eb, rts_conf_get(fn, "buckets"), path, "buckets must be 1..4096");
    }
    d->window_ms = win_us / 1000;
    d->last_n = (uint32_t)fo.last;
    d->buckets = (uint32_t)(fo.buckets ? fo.buckets : d->agg == RTS_AGG_DISTINCT ? 8 : 32);
    switch (d->agg) {
    case RTS_AGG_SINCE_LAST:
    case RTS_AGG_LAST:
    case RTS_AGG_VELOCITY:
        if (fo.exact) {
            return rts_conf_errf(eb, rts_conf_get(fn, "exact"),
                                 keep_path(&cf->paths, path, "exact", 0),
                                 "goes with agg: distinct, or count, sum, mean, min, max with a "
                                 "window; not with %s",
                                 fo.agg);
        }
        break;
    case RTS_AGG_DISTINCT:
        break; /* its own exact, below */
    default:
        if (fo.exact && fo.last) {
            return rts_conf_errf(eb, rts_conf_get(fn, "exact"),
                                 keep_path(&cf->paths, path, "exact", 0),
                                 "goes with a window, not with last (last: N keeps N values "
                                 "already)");
        }
        if (fo.exact < 0 || fo.exact > RTS_WIN_MAX_EXACT) {
            return rts_conf_errf(eb, rts_conf_get(fn, "exact"),
                                 keep_path(&cf->paths, path, "exact", 0),
                                 "must be 1..%u (events held per key), got %lld", RTS_WIN_MAX_EXACT,
                                 (long long)fo.exact);
        }
        d->exact = (uint32_t)fo.exact;
        break;
    }
    switch (d->agg) {
    case RTS_AGG_SINCE_LAST:
        if (fo.of || fo.window || fo.last) {
            return rts_conf_errf(eb, fn, path, "since_last takes no of, window or last");
        }
        return RTS_ERR_OK;
    case RTS_AGG_LAST:
        if (!fo.of || fo.window) {
            return rts_conf_errf(eb, fn, path, "last needs of and takes no window (last: N "
                                               "keeps N values, default 1)");
        }
        if (!d->last_n) {
            d->last_n = 1;
        }
        break;
    case RTS_AGG_DISTINCT:
        if (!fo.of || !fo.window || fo.last) {
            return rts_conf_errf(eb, fn, path, "distinct needs of and window");
        }
        if (d->buckets > RTS_HLL_MAX_BUCKETS) {
            return rts_conf_errf(eb, rts_conf_get(fn, "buckets"), path,
                                 "distinct takes at most %u buckets", RTS_HLL_MAX_BUCKETS);
        }
        if (fo.exact < 0 || fo.exact > RTS_HLL_MAX_SPARSE) {
            return rts_conf_errf(eb, rts_conf_get(fn, "exact"), path, "exact must be 1..%u",
                                 RTS_HLL_MAX_SPARSE);
        }
        d->exact = (uint32_t)(fo.exact ? fo.exact : 16);
        return RTS_ERR_OK;
    case RTS_AGG_COUNT:
    case RTS_AGG_VELOCITY:
        if (!fo.window == !fo.last || (d->agg == RTS_AGG_VELOCITY && fo.last)) {
            return rts_conf_errf(eb, fn, path, "%s needs a window%s", fo.agg,
                                 d->agg == RTS_AGG_COUNT ? " or last" : "");
        }
        if (fo.last && !fo.of) {
            return rts_conf_errf(eb, fn, path, "count with last needs of (values counted)");
        }
        break;
    default:
        if (!fo.of) {
            return rts_conf_errf(eb, fn, path, "%s needs of (the field aggregated)", fo.agg);
        }
        if (!fo.window == !fo.last) {
            return rts_conf_errf(eb, fn, path, "%s needs exactly one of window or last", fo.agg);
        }
        break;
    }
    if (d->of >= 0 && !field_is_numeric(c->schema, d->of)) {
        return rts_conf_errf(eb, rts_conf_get(fn, "of"), path,
                             "%s needs a numeric field; '%s' is a string", fo.agg, fo.of);
    }
    return RTS_ERR_OK;
}

static enum rts_err parse_features(struct rts_conf_full *cf, const struct rts_conf_node *n,
                                   struct rts_errbuf *eb)
{
    struct rts_pipeline_conf *c = &cf->pub;

    if (!n) {
        return RTS_ERR_OK;
    }
    if (n->kind != RTS_CONF_SEQ) {
        return rts_conf_errf(eb, n, "features", "expected a list of features");
    }
    c->features = calloc(n->len ? n->len : 1, sizeof(*c->features));
    if (!c->features) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
    }
    for (size_t i = 0; i < n->len; i++) {
        if (parse_feature(cf, n->items[i], i, &c->features[i], eb)) {
            return RTS_ERR_INVAL;
        }
        c->nfeatures++;
    }
    return RTS_ERR_OK;
}

static enum rts_err parse_rules(struct rts_conf_full *cf, const struct rts_conf_node *n,
                                struct rts_errbuf *eb)
{
    struct rts_pipeline_conf *c = &cf->pub;

    if (!n) {
        return RTS_ERR_OK;
    }
    if (n->kind != RTS_CONF_SEQ) {
        return rts_conf_errf(eb, n, "rules", "expected a list of {when, decision}");
    }
    c->rules = calloc(n->len ? n->len : 1, sizeof(*c->rules));
    if (!c->rules) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
    }
    for (size_t i = 0; i < n->len; i++) {
        const char *path = keep_path(&cf->paths, "rules", NULL, i);
        struct rule_opts ro = {0};
        struct rts_rule_conf *r = &c->rules[i];

        if (rts_opt_apply(rule_opts_table, n->items[i], path, NULL, &ro, eb)) {
            return RTS_ERR_INVAL;
        }
        if (!is_ident(ro.decision)) {
            return rts_conf_errf(eb, rts_conf_get(n->items[i], "decision"), path,
                                 "decision '%s' must be a word like allow, review or block",
                                 ro.decision);
        }
        expr_at(&r->when, n->items[i], "when", ro.when, path);
        r->decision = ro.decision;
        r->reason = ro.reason ? ro.reason : ro.when;
        c->nrules++;
    }
    return RTS_ERR_OK;
}

/* state: {type: local | redis, ...} (feature/rstate.h); the breaker keys
 * are model.breaker's. */
static enum rts_err parse_state(struct rts_pipeline_conf *c, const struct rts_conf_node *n,
                                struct rts_errbuf *eb)
{
    struct rts_rstate_conf *s = &c->state;
    struct rts_breaker_conf bc = {0};

    if (rts_rstate_parse(n, "state", s, eb) ||
        (s->redis &&
         rts_opt_apply(breaker_opts_table, s->breaker_node, "state.breaker", NULL, &bc, eb))) {
        return RTS_ERR_INVAL;
    }
    if (s->redis && rts_breaker_conf_opts(&bc, &s->breaker)) {
        return rts_conf_errf(eb, s->breaker_node ? s->breaker_node : n, "state.breaker", "%s",
                             RTS_BREAKER_CONF_RANGES);
    }
    return RTS_ERR_OK;
}

static enum rts_err parse_workers(struct rts_pipeline_conf *c, const struct rts_conf_node *n,
                                  struct rts_errbuf *eb)
{
    int64_t w;

    if (!n || (n->kind == RTS_CONF_SCALAR && strcmp(n->str, "auto") == 0)) {
        c->workers = 0;
        return RTS_ERR_OK;
    }
    if (rts_conf_int(n, "workers", &w, eb)) {
        return rts_conf_errf(eb, n, "workers", "expected a number of workers or auto");
    }
    if (w < 1 || w > 256) {
        return rts_conf_errf(eb, n, "workers", "expected 1..256 or auto, got %lld",
                             (long long)w);
    }
    c->workers = (int)w;
    return RTS_ERR_OK;
}

static enum rts_err refuse_later(const struct top_opts *t, struct rts_errbuf *eb)
{
    const struct {
        const struct rts_conf_node *n;
        const char *key, *what;
    } later[] = {
        {t->checkpoint, "checkpoint", "checkpoints"},
    };
    for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++) {
        if (later[i].n) {
            return rts_conf_errf(eb, later[i].n, later[i].key,
                                 "%s are not available in this build yet; remove '%s'",
                                 later[i].what, later[i].key);
        }
    }
    return RTS_ERR_OK;
}

struct rts_pipeline_conf *rts_pipeline_conf_parse(const char *file, const char *text, size_t len,
                                                  struct rts_errbuf *eb)
{
    struct rts_conf_full *cf = calloc(1, sizeof(*cf));
    struct rts_pipeline_conf *c;
    const struct rts_conf_node *root;
    struct top_opts t = {0};
    struct fallback_opts fo = {0};
    struct alerts_opts ao = {0};

    if (!cf) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
        return NULL;
    }
    c = &cf->pub;
    c->file = file;
    c->doc = rts_conf_parse(file, text, len, eb);
    if (!c->doc) {
        goto fail;
    }
    root = rts_conf_root(c->doc);
    if (!root || root->kind != RTS_CONF_MAP) {
        rts_errf(eb, RTS_ERR_INVAL, 1, 1, "%s: expected a mapping with source, event, sink, ...",
                 file);
        goto fail;
    }
    if (rts_opt_apply(top_opts_table, root, "", NULL, &t, eb) || refuse_later(&t, eb)) {
        goto fail;
    }
    c->name = t.pipeline;
    if (parse_workers(c, t.workers, eb) || parse_source(c, t.source, eb) ||
        parse_event(cf, t.event, eb) || parse_stores(cf, t.stores, eb) ||
        parse_features(cf, t.features, eb) || parse_rules(cf, t.rules, eb) ||
        parse_state(c, t.state, eb)) {
        goto fail;
    }
    if (t.http && rts_opt_apply(http_opts_table, t.http, "http", NULL, &c->http, eb)) {
        goto fail;
    }
    if (t.dedup) {
        if (rts_opt_apply(dedup_opts_table, t.dedup, "dedup", NULL, &c->dedup, eb)) {
            goto fail;
        }
        if (c->dedup.max_ids < 1 || c->dedup.horizon_us < 1000) {
            rts_conf_errf(eb, t.dedup, "dedup", "max_ids >= 1 and horizon >= 1ms");
            goto fail;
        }
        c->dedup.on = 1;
    }
    c->batch_max = 64;
    if (t.model) {
        struct model_opts mo = {0};
        struct batch_opts bo = {0};
        if (rts_opt_apply(model_opts_table, t.model, "model", NULL, &mo, eb)) {
            goto fail;
        }
        if (rts_opt_apply(batch_opts_table, mo.batch, "model.batch", NULL, &bo, eb)) {
            goto fail;
        }
        if (bo.max < 1 || bo.max > RTS_BATCH_MAX) {
            rts_conf_errf(eb, mo.batch, "model.batch.max", "expected 1..%d, got %lld",
                          RTS_BATCH_MAX, (long long)bo.max);
            goto fail;
        }
        c->batch_max = (int)bo.max;
        c->batch_wait_us = bo.max_wait_us;
        if (mo.breaker && !mo.timeout_us) {
            rts_conf_errf(eb, mo.breaker, "model.breaker", "needs model.timeout");
            goto fail;
        }
        if (rts_opt_apply(breaker_opts_table, mo.breaker, "model.breaker", NULL, &c->breaker,
                          eb)) {
            goto fail;
        }
        c->model_path = mo.path;
        c->model_registry = mo.registry;
        c->drift_window_us = mo.drift_window_us;
        c->drift_warn = mo.drift_warn;
        if (mo.drift_window_us < 60 * 1000 || mo.drift_warn < 0) {
            rts_conf_errf(eb, t.model, "model", "drift_window >= 60ms and drift_warn >= 0");
            goto fail;
        }
        c->model_timeout_us = mo.timeout_us;
    }
    if (!t.fallback) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                 "%s: missing required key 'fallback' (fallback.score gives the score while "
                 "there is no model)", file);
        goto fail;
    }
    if (rts_opt_apply(fallback_opts_table, t.fallback, "fallback", NULL, &fo, eb)) {
        goto fail;
    }
    expr_at(&c->fallback_score, t.fallback, "score", fo.score, "fallback.score");
    if (!t.sink) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s: missing required key 'sink'", file);
        goto fail;
    }
    if (parse_sink(t.sink, "sink", 1, &c->sink, eb)) {
        goto fail;
    }
    if (t.alerts) {
        if (rts_opt_apply(alerts_opts_table, t.alerts, "alerts", NULL, &ao, eb)) {
            goto fail;
        }
        if (!ao.sink) {
            rts_conf_errf(eb, t.alerts, "alerts", "missing required key 'sink'");
            goto fail;
        }
        expr_at(&c->alerts_when, t.alerts, "when", ao.when, "alerts.when");
        if (parse_sink(ao.sink, "alerts.sink", 0, &c->alerts, eb)) {
            goto fail;
        }
    }
    if (t.shadow && parse_sink(t.shadow, "shadow", 0, &c->shadow, eb)) {
        goto fail;
    }
    if (t.dlq && parse_sink(t.dlq, "dlq", 0, &c->dlq, eb)) {
        goto fail;
    }
    if (rts_opt_apply(limits_opts_table, t.limits, "limits", NULL, &c->limits, eb) ||
        rts_opt_apply(budget_opts_table, t.latency_budget, "latency_budget", NULL, c->budget_us,
                      eb)) {
        goto fail;
    }
    if (c->limits.queue < 16 || c->limits.queue_bytes < 2 * c->limits.max_event_bytes + 4096 ||
        c->limits.max_event_bytes < 64 || c->limits.max_keys < 1 || c->limits.key_ttl_us < 0 ||
        c->limits.max_sketches < 0) {
        rts_conf_errf(eb, t.limits ? t.limits : root, "limits",
                      "out of range: queue >= 16, max_event_bytes >= 64, queue_bytes >= 2 * "
                      "max_event_bytes + 4096, max_keys >= 1");
        goto fail;
    }
    return c;
fail:
    rts_pipeline_conf_free(c);
    return NULL;
}

struct rts_pipeline_conf *rts_pipeline_conf_load(const char *path, struct rts_errbuf *eb)
{
    struct rts_buf b = {0};
    struct rts_pipeline_conf *c = NULL;

    if (rts_buf_read_file(&b, path, 4u << 20, eb) == RTS_ERR_OK) {
        c = rts_pipeline_conf_parse(path, b.data ? b.data : "", b.len, eb);
    }
    rts_buf_fini(&b);
    return c;
}

void rts_pipeline_conf_free(struct rts_pipeline_conf *c)
{
    struct rts_conf_full *cf = (struct rts_conf_full *)c;

    if (!c) {
        return;
    }
    for (size_t i = 0; i < cf->paths.n; i++) {
        free(cf->paths.v[i]);
    }
    free(cf->paths.v);
    free(c->features);
    free(c->stores);
    free(c->rules);
    rts_schema_free(c->schema);
    rts_conf_free(c->doc);
    free(cf);
}

static enum rts_err doc_section(struct rts_buf *out, const char *title, const char *intro,
                                const struct rts_opt *opts)
{
    if (rts_buf_printf(out, "\n### %s\n\n%s\n\n", title, intro)) {
        return RTS_ERR_NOMEM;
    }
    return rts_opt_doc(opts, out);
}

enum rts_err rts_pipeline_conf_doc(struct rts_buf *out)
{
    enum rts_err rc = RTS_ERR_OK;

    rc |= doc_section(out, "Top level", "The keys of a pipeline file.", top_opts_table);
    rc |= doc_section(out, "event", "The message format and the role fields.", event_opts_table);
    rc |= doc_section(out, "event.fields.NAME", "One entry per schema field.", field_opts_table);
    rc |= doc_section(out, "features[]", "One entry per feature; exactly one of expr or agg.",
                      feature_opts_table);
    rc |= doc_section(out, "features[].lookup",
                      "A feature read from an online store by key (docs/STORES.md).",
                      lookup_opts_table);
    rc |= doc_section(out, "stores.NAME",
                      "An online feature store: these keys, then those of its type.",
                      rts_store_common_opts);
    for (size_t i = 0; rts_stores[i]; i++) {
        char title[64];
        snprintf(title, sizeof(title), "store type: %s", rts_stores[i]->name);
        rc |= doc_section(out, title, rts_stores[i]->description, rts_stores[i]->opts);
    }
    rc |= doc_section(out, "state",
                      "Where the windowed state of the aggregates lives (docs/FEATURES.md, "
                      "\"Redis window state\"). With type redis the section also takes the "
                      "connection keys of store type redis but timeout, which is the state's.",
                      rts_rstate_opts);
    rc |= doc_section(out, "rules[]", "Evaluated in order; the first match decides.",
                      rule_opts_table);
    rc |= doc_section(out, "model", "The model that gives the score (docs/MODELS.md).",
                      model_opts_table);
    rc |= doc_section(out, "dedup",
                      "Dedup by event id: one bounded set per worker (events of a key, and so "
                      "the repeats of an event, go to one worker).",
                      dedup_opts_table);
    rc |= doc_section(out, "http",
                      "The control plane (docs/OPERATIONS.md): GET /metrics (Prometheus), "
                      "/healthz, /readyz, /status; /admin/* with a bearer token.",
                      http_opts_table);
    rc |= doc_section(out, "model.batch",
                      "Micro-batching: each worker scores the events it has queued with one "
                      "model call.",
                      batch_opts_table);
    rc |= doc_section(out, "model.breaker",
                      "While it is open, events are scored by fallback.score (path: fallback).",
                      breaker_opts_table);
    rc |= doc_section(out, "fallback", "The score when no model serves.", fallback_opts_table);
    rc |= doc_section(out, "alerts", "Score records that also go to an alert sink.",
                      alerts_opts_table);
    rc |= doc_section(out, "limits", "Every queue, buffer and table is bounded.",
                      limits_opts_table);
    rc |= doc_section(out, "latency_budget", "Per-stage budgets, counted when exceeded.",
                      budget_opts_table);
    for (size_t i = 0; rts_sources[i]; i++) {
        char title[64];
        snprintf(title, sizeof(title), "source type: %s", rts_sources[i]->name);
        rc |= doc_section(out, title, rts_sources[i]->description, rts_sources[i]->opts);
    }
    for (size_t i = 0; rts_sinks[i]; i++) {
        char title[64];
        snprintf(title, sizeof(title), "sink type: %s", rts_sinks[i]->name);
        rc |= doc_section(out, title, rts_sinks[i]->description, rts_sinks[i]->opts);
    }
    return rc ? RTS_ERR_NOMEM : RTS_ERR_OK;
}
