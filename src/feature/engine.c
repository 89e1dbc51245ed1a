/*
 * engine.c - compiles feature definitions into a per-key state layout and an
 * evaluation plan, and runs the plan per event.
 *
 * Layout of a key's value block: a header (time of the key's latest event),
 * then one sliding window per distinct (window, buckets, of, exact) - so
 * sum_24h and max_24h of `amount` share one ring (and, with the same
 * `exact`, one set of held events) - then one last-N ring per
 * (of, N), then one HyperLogLog state per distinct feature. Aggregates are
 * read first (the state before the event), then expression features are
 * evaluated in dependency order, then the event is applied.
 */
#include "feature/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "expr/expr.h"
#include "feature/hll.h"
#include "feature/state.h"
#include "feature/window.h"

const char *rts_agg_name(enum rts_agg a)
{
    static const char *const names[] = {
#define RTS_AGG_NAME(name, text) text,
        RTS_AGGS(RTS_AGG_NAME)
#undef RTS_AGG_NAME
    };
    return (unsigned)a < RTS_AGG__COUNT ? names[a] : "?";
}

int rts_agg_parse(const char *s, enum rts_agg *out)
{
    for (int a = 0; a < RTS_AGG__COUNT; a++) {
        if (strcmp(s, rts_agg_name((enum rts_agg)a)) == 0) {
            *out = (enum rts_agg)a;
            return 0;
        }
    }
    return -1;
}

struct key_hdr {
    int64_t last_ts;
    int64_t seen; /* events applied to this key */
};

struct win_group {
    struct rts_win_spec spec;
    int of;
    size_t off;
};

struct lastn_group {
    uint32_t n;
    int of;
    size_t off; /* struct lastn_hdr, then n doubles */
};

struct lastn_hdr {
    uint32_t count, pos; /* values held (<= n), next write position */
};

struct distinct_feat {
    struct rts_distinct_spec spec;
    int of;
    size_t off;
};

struct feat {
    char *name;
    enum rts_feat_kind kind;
    enum rts_agg agg;
    int group;     /* index into wg, lg or dg by agg kind */
    int windowed;  /* group indexes wg (else lg for last-N) */
    int has_of;    /* velocity: sum of `of` per second, else events per second */
    double per_sec; /* 1000 / window_ms */
    struct rts_expr *expr;
};

struct rts_features {
    const struct rts_schema *schema;
    size_t nfields;
    struct feat *f;
    size_t n;
    struct win_group *wg;
    size_t nwg;
    struct lastn_group *lg;
    size_t nlg;
    struct distinct_feat *dg;
    size_t ndg;
    size_t *order; /* expression features in evaluation order */
    size_t norder;
    size_t state_size;
};

struct rts_feature_worker {
    const struct rts_features *f;
    struct rts_state_table *table;
    struct rts_hll_pool **pools; /* one per distinct feature */
    uint64_t late;
    uint64_t exact_overflow; /* events an exact window answered from its ring */
    struct rts_win_agg *agg; /* scratch: one result per window group */
    void *scratch;           /* zeroed state for a key the table cannot hold */
};

/* ---- compile ---- */

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static int uses_window(const struct rts_feature_def *d)
{
    return d->window_ms > 0 && d->agg != RTS_AGG_DISTINCT;
}

static unsigned win_aggs_for(const struct rts_feature_def *d)
{
    switch (d->agg) {
    case RTS_AGG_VELOCITY:
        return d->of >= 0 ? RTS_WIN_SUM : 0;
    case RTS_AGG_SUM:
    case RTS_AGG_MEAN:
        return RTS_WIN_SUM;
    case RTS_AGG_MIN:
        return RTS_WIN_MIN;
    case RTS_AGG_MAX:
        return RTS_WIN_MAX;
    default:
        return 0;
    }
}

/* Events held exactly (window.h): count, sum, mean, min and max windows. */
static uint32_t win_exact_for(const struct rts_feature_def *d)
{
    return d->agg == RTS_AGG_VELOCITY ? 0 : d->exact;
}

static int add_window(struct rts_features *fs, const struct rts_feature_def *d)
{
    int of = d->agg == RTS_AGG_COUNT || (d->agg == RTS_AGG_VELOCITY && d->of < 0) ? -1 : d->of;

    for (size_t i = 0; i < fs->nwg; i++) {
        struct win_group *g = &fs->wg[i];
        if (g->of == of && g->spec.width_ms == d->window_ms && g->spec.nbuckets == d->buckets &&
            g->spec.exact == win_exact_for(d)) {
            g->spec.aggs |= win_aggs_for(d);
            return (int)i;
        }
    }
    fs->wg[fs->nwg].spec.width_ms = d->window_ms;
    fs->wg[fs->nwg].spec.nbuckets = d->buckets;
    fs->wg[fs->nwg].spec.aggs = win_aggs_for(d);
    fs->wg[fs->nwg].spec.exact = win_exact_for(d);
    fs->wg[fs->nwg].of = of;
    return (int)fs->nwg++;
}

static int add_lastn(struct rts_features *fs, const struct rts_feature_def *d)
{
    for (size_t i = 0; i < fs->nlg; i++) {
        if (fs->lg[i].of == d->of && fs->lg[i].n == d->last_n) {
            return (int)i;
        }
    }
    fs->lg[fs->nlg].n = d->last_n;
    fs->lg[fs->nlg].of = d->of;
    return (int)fs->nlg++;
}

struct scope_ctx {
    const struct rts_features *fs;
};

static int scope_resolve(void *ctx, const char *name, size_t len, enum rts_type *type)
{
    const struct scope_ctx *sc = ctx;

    return rts_features_resolve(sc->fs, name, len, type);
}

int rts_features_resolve(const struct rts_features *f, const char *name, size_t len,
                         enum rts_type *type)
{
    int i = rts_schema_find(f->schema, name, len);

    if (i >= 0) {
        *type = rts_field_value_type(rts_schema_field(f->schema, (size_t)i)->type);
        return i;
    }
    for (size_t j = 0; j < f->n; j++) {
        if (strlen(f->f[j].name) == len && memcmp(f->f[j].name, name, len) == 0) {
            *type = RTS_T_NUM;
            return (int)(f->nfields + j);
        }
    }
    return -1;
}

/* Depth-first topological order of expression features; refuses cycles. */
static enum rts_err visit(struct rts_features *fs, size_t i, unsigned char *mark, size_t *stack,
                          size_t depth, const struct rts_feature_def *defs, struct rts_errbuf *eb)
{
    const int *slots;
    size_t ns;

    if (mark[i] == 2 || fs->f[i].kind != RTS_FEAT_EXPR) {
        return RTS_ERR_OK;
    }
    stack[depth] = i;
    if (mark[i] == 1) {
        char chain[200] = "";
        size_t used = 0, start = 0;
        while (stack[start] != i) {
            start++;
        }
        for (size_t k = start; k <= depth && used < sizeof(chain) - 1; k++) {
            int w = snprintf(chain + used, sizeof(chain) - used, "%s%s", k > start ? " -> " : "",
                             fs->f[stack[k]].name);
            used += w > 0 ? (size_t)w : 0;
        }
        return rts_errf(eb, RTS_ERR_INVAL, defs[i].line, defs[i].column,
                        "%s:%d:%d: features: cycle between expression features: %s",
                        defs[i].file ? defs[i].file : "config", defs[i].line, defs[i].column,
                        chain);
    }
    mark[i] = 1;
    ns = rts_expr_slots(fs->f[i].expr, &slots);
    for (size_t k = 0; k < ns; k++) {
        if ((size_t)slots[k] >= fs->nfields) {
            enum rts_err rc =
                visit(fs, (size_t)slots[k] - fs->nfields, mark, stack, depth + 1, defs, eb);
            if (rc) {
                return rc;
            }
        }
    }
    mark[i] = 2;
    fs->order[fs->norder++] = i;
    return RTS_ERR_OK;
}

static enum rts_err compile_exprs(struct rts_features *fs, const struct rts_feature_def *defs,
                                  struct rts_errbuf *eb)
{
    struct scope_ctx sc = {fs};
    struct rts_expr_scope scope = {scope_resolve, &sc};
    unsigned char *mark = calloc(fs->n ? fs->n : 1, 1);
    size_t *stack = calloc(fs->n + 1, sizeof(*stack));
    enum rts_err rc = RTS_ERR_OK;

    if (!mark || !stack) {
        rc = rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < fs->n; i++) {
        const struct rts_feature_def *d = &defs[i];
        enum rts_type t;
        if (d->kind != RTS_FEAT_EXPR) {
            continue;
        }
        fs->f[i].expr = rts_expr_compile(d->expr, &scope, eb);
        if (!fs->f[i].expr) {
            char msg[sizeof(eb->msg)];
            memcpy(msg, eb->msg, sizeof(msg));
            rc = rts_errf(eb, RTS_ERR_INVAL, d->line, d->column,
                          "%s:%d:%d: features[%zu] (%s).expr: %s (column %d of \"%s\")",
                          d->file ? d->file : "config", d->line, d->column, i, d->name, msg,
                          eb->column, d->expr);
            goto out;
        }
        t = rts_expr_type(fs->f[i].expr);
        if (t != RTS_T_NUM && t != RTS_T_BOOL) {
            rc = rts_errf(eb, RTS_ERR_INVAL, d->line, d->column,
                          "%s:%d:%d: features[%zu] (%s).expr: a feature is a number or a bool, "
                          "this expression is a %s",
                          d->file ? d->file : "config", d->line, d->column, i, d->name,
                          rts_type_name(t));
            goto out;
        }
    }
    for (size_t i = 0; i < fs->n && !rc; i++) {
        rc = visit(fs, i, mark, stack, 0, defs, eb);
    }
out:
    free(mark);
    free(stack);
    return rc;
}

struct rts_features *rts_features_compile(const struct rts_schema *schema,
                                          const struct rts_feature_def *defs, size_t n,
                                          struct rts_errbuf *eb)
{
    struct rts_features *fs = calloc(1, sizeof(*fs));
    size_t off;

    if (!fs) {
        goto nomem;
    }
    fs->schema = schema;
    fs->nfields = rts_schema_nfields(schema);
    fs->n = n;
    fs->f = calloc(n ? n : 1, sizeof(*fs->f));
    fs->wg = calloc(n ? n : 1, sizeof(*fs->wg));
    fs->lg = calloc(n ? n : 1, sizeof(*fs->lg));
    fs->dg = calloc(n ? n : 1, sizeof(*fs->dg));
    fs->order = calloc(n ? n : 1, sizeof(*fs->order));
    if (!fs->f || !fs->wg || !fs->lg || !fs->dg || !fs->order) {
        goto nomem;
    }
    for (size_t i = 0; i < n; i++) {
        const struct rts_feature_def *d = &defs[i];
        struct feat *f = &fs->f[i];

        f->name = strdup(d->name);
        if (!f->name) {
            goto nomem;
        }
        f->kind = d->kind;
        f->agg = d->agg;
        if (d->kind != RTS_FEAT_AGG || d->agg == RTS_AGG_SINCE_LAST) {
            continue;
        }
        if (d->agg == RTS_AGG_DISTINCT) {
            struct distinct_feat *g = &fs->dg[fs->ndg];
            g->spec.width_ms = d->window_ms;
            g->spec.nbuckets = d->buckets;
            g->spec.sparse_cap = d->exact;
            g->of = d->of;
            f->group = (int)fs->ndg++;
        } else if (uses_window(d)) {
            f->group = add_window(fs, d);
            f->windowed = 1;
            f->has_of = d->of >= 0;
            f->per_sec = 1000.0 / (double)d->window_ms;
        } else {
            f->group = add_lastn(fs, d);
        }
    }
    off = align8(sizeof(struct key_hdr));
    for (size_t i = 0; i < fs->nwg; i++) {
        fs->wg[i].off = off;
        off += align8(rts_win_size(&fs->wg[i].spec));
    }
    for (size_t i = 0; i < fs->nlg; i++) {
        fs->lg[i].off = off;
        off += align8(sizeof(struct lastn_hdr) + fs->lg[i].n * sizeof(double));
    }
    for (size_t i = 0; i < fs->ndg; i++) {
        fs->dg[i].off = off;
        off += align8(rts_distinct_size(&fs->dg[i].spec));
    }
    fs->state_size = off;
    if (compile_exprs(fs, defs, eb)) {
        rts_features_free(fs);
        return NULL;
    }
    return fs;
nomem:
    rts_features_free(fs);
    rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "features: out of memory");
    return NULL;
}

void rts_features_free(struct rts_features *f)
{
    if (!f) {
        return;
    }
    for (size_t i = 0; f->f && i < f->n; i++) {
        free(f->f[i].name);
        rts_expr_free(f->f[i].expr);
    }
    free(f->f);
    free(f->wg);
    free(f->lg);
    free(f->dg);
    free(f->order);
    free(f);
}

size_t rts_features_count(const struct rts_features *f)
{
    return f->n;
}

const char *rts_features_name(const struct rts_features *f, size_t i)
{
    return f->f[i].name;
}

size_t rts_features_state_size(const struct rts_features *f)
{
    return f->state_size;
}

/* ---- per worker ---- */

static void worker_drop(void *ctx, void *value)
{
    struct rts_feature_worker *w = ctx;
    const struct rts_features *f = w->f;

    for (size_t i = 0; i < f->ndg; i++) {
        rts_distinct_release(&f->dg[i].spec, (char *)value + f->dg[i].off, w->pools[i]);
    }
}

struct rts_feature_worker *rts_feature_worker_new(const struct rts_features *f,
                                                  const struct rts_feature_limits *lim,
                                                  struct rts_errbuf *eb)
{
    struct rts_feature_worker *w = calloc(1, sizeof(*w));

    if (!w) {
        goto nomem;
    }
    w->f = f;
    w->pools = calloc(f->ndg ? f->ndg : 1, sizeof(*w->pools));
    w->agg = calloc(f->nwg ? f->nwg : 1, sizeof(*w->agg));
    w->scratch = calloc(1, f->state_size);
    if (!w->pools || !w->agg || !w->scratch) {
        goto nomem;
    }
    for (size_t i = 0; i < f->ndg; i++) {
        w->pools[i] =
            rts_hll_pool_new(&f->dg[i].spec, lim->max_sketches,
                             rts_hll_lists_like_sketches(&f->dg[i].spec, lim->max_sketches), eb);
        if (!w->pools[i]) {
            rts_feature_worker_free(w);
            return NULL;
        }
    }
    w->table = rts_state_new(lim->max_keys, lim->max_key_bytes, f->state_size, lim->key_ttl_ms,
                             eb);
    if (!w->table) {
        rts_feature_worker_free(w);
        return NULL;
    }
    rts_state_set_drop(w->table, worker_drop, w);
    return w;
nomem:
    rts_feature_worker_free(w);
    rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "features: out of memory");
    return NULL;
}

void rts_feature_worker_free(struct rts_feature_worker *w)
{
    if (!w) {
        return;
    }
    rts_state_free(w->table);
    for (size_t i = 0; w->pools && i < w->f->ndg; i++) {
        rts_hll_pool_free(w->pools[i]);
    }
    free(w->pools);
    free(w->agg);
    free(w->scratch);
    free(w);
}

static uint64_t value_hash(enum rts_type t, union rts_val v)
{
    if (t == RTS_T_STR) {
        return rts_hash64(v.str.p, v.str.n);
    }
    double d = v.num == 0 ? 0.0 : v.num; /* -0 and 0 are one value */
    return rts_hash64(&d, sizeof(d));
}

static double lastn_value(const struct lastn_group *g, const char *st, enum rts_agg agg)
{
    const struct lastn_hdr *h = (const void *)(st + g->off);
    const double *v = (const double *)(h + 1);
    double acc;

    if (agg == RTS_AGG_COUNT) {
        return h->count;
    }
    if (h->count == 0) {
        return agg == RTS_AGG_SUM ? 0 : NAN;
    }
    if (agg == RTS_AGG_LAST) {
        return v[(h->pos + g->n - 1) % g->n];
    }
    acc = agg == RTS_AGG_SUM || agg == RTS_AGG_MEAN ? 0 : v[0];
    for (uint32_t i = 0; i < h->count; i++) {
        switch (agg) {
        case RTS_AGG_MIN:
            acc = v[i] < acc ? v[i] : acc;
            break;
        case RTS_AGG_MAX:
            acc = v[i] > acc ? v[i] : acc;
            break;
        default:
            acc += v[i];
            break;
        }
    }
    return agg == RTS_AGG_MEAN ? acc / h->count : acc;
}

static double window_value(const struct feat *f, const struct rts_win_agg *a)
{
    switch (f->agg) {
    case RTS_AGG_COUNT:
        return a->count;
    case RTS_AGG_SUM:
        return a->sum;
    case RTS_AGG_MEAN:
        return a->count > 0 ? a->sum / a->count : NAN;
    case RTS_AGG_MIN:
        return a->min;
    case RTS_AGG_MAX:
        return a->max;
    case RTS_AGG_VELOCITY:
        return (f->has_of ? a->sum : a->count) * f->per_sec;
    default:
        return NAN;
    }
}

void rts_features_process(const struct rts_features *f, struct rts_feature_worker *w,
                          const struct rts_event *ev, union rts_val *frame)
{
    int is_new = 0;
    char *st = rts_state_get(w->table, ev->key.p, ev->key.n, ev->key_hash, ev->ts_ms, &is_new);
    int persist = st != NULL, late = 0, overflow = 0;
    struct key_hdr *hdr;
    union rts_val *out = frame + f->nfields;

    if (!st) {
        st = w->scratch;
        memset(st, 0, f->state_size);
    }
    hdr = (struct key_hdr *)st;

    /* 1. read: the state before this event */
    for (size_t i = 0; i < f->nwg; i++) {
        overflow |= rts_win_query(&f->wg[i].spec, st + f->wg[i].off, ev->ts_ms, &w->agg[i]) ==
                    RTS_WIN_OVERFLOW;
    }
    for (size_t i = 0; i < f->n; i++) {
        const struct feat *ft = &f->f[i];
        if (ft->kind != RTS_FEAT_AGG) {
            continue;
        }
        if (ft->agg == RTS_AGG_SINCE_LAST) {
            int64_t d = ev->ts_ms - hdr->last_ts;
            out[i].num = hdr->seen ? (double)(d > 0 ? d : 0) / 1000.0 : NAN;
        } else if (ft->agg == RTS_AGG_DISTINCT) {
            out[i].num = rts_distinct_query(&f->dg[ft->group].spec, st + f->dg[ft->group].off,
                                            w->pools[ft->group], ev->ts_ms);
        } else if (ft->windowed) {
            out[i].num = window_value(ft, &w->agg[ft->group]);
        } else {
            out[i].num = lastn_value(&f->lg[ft->group], st, ft->agg);
        }
    }
    for (size_t k = 0; k < f->norder; k++) {
        size_t i = f->order[k];
        out[i] = rts_expr_eval(f->f[i].expr, frame);
    }

    /* single writer; stats readers in other threads load it atomically */
    __atomic_store_n(&w->exact_overflow, w->exact_overflow + (uint64_t)overflow, __ATOMIC_RELAXED);

    /* 2. apply the event */
    if (!persist) {
        return;
    }
    if (!hdr->seen || ev->ts_ms > hdr->last_ts) {
        hdr->last_ts = ev->ts_ms;
    }
    hdr->seen++;
    for (size_t i = 0; i < f->nwg; i++) {
        const struct win_group *g = &f->wg[i];
        double v = g->of >= 0 ? frame[g->of].num : 0;
        if (!isnan(v)) {
            late |= rts_win_add(&g->spec, st + g->off, ev->ts_ms, v);
        }
    }
    for (size_t i = 0; i < f->nlg; i++) {
        const struct lastn_group *g = &f->lg[i];
        struct lastn_hdr *h = (struct lastn_hdr *)(st + g->off);
        double v = frame[g->of].num;
        if (!isnan(v)) {
            ((double *)(h + 1))[h->pos] = v;
            h->pos = (h->pos + 1) % g->n;
            h->count += h->count < g->n;
        }
    }
    for (size_t i = 0; i < f->ndg; i++) {
        const struct distinct_feat *g = &f->dg[i];
        enum rts_type t = rts_field_value_type(rts_schema_field(f->schema, (size_t)g->of)->type);
        if (!rts_val_missing(t, frame[g->of])) {
            late |= rts_distinct_add(&g->spec, st + g->off, w->pools[i], ev->ts_ms,
                                     value_hash(t, frame[g->of]));
        }
    }
    /* single writer; stats readers in other threads load it atomically */
    __atomic_store_n(&w->late, w->late + (uint64_t)late, __ATOMIC_RELAXED);
    (void)is_new;
}

void rts_features_exprs(const struct rts_features *f, union rts_val *frame)
{
    union rts_val *out = frame + f->nfields;

    for (size_t k = 0; k < f->norder; k++) {
        size_t i = f->order[k];
        out[i] = rts_expr_eval(f->f[i].expr, frame);
    }
}

void rts_features_prefetch(const struct rts_feature_worker *w, uint64_t key_hash, int stage)
{
    rts_state_prefetch(w->table, key_hash, stage);
}

int rts_feature_worker_prefault(struct rts_feature_worker *w, size_t chunk)
{
    if (rts_state_prefault(w->table, 4096, chunk)) {
        return 1;
    }
    for (size_t i = 0; i < w->f->ndg; i++) {
        if (rts_hll_pool_prefault(w->pools[i], 64, chunk)) {
            return 1;
        }
    }
    return 0;
}

void rts_feature_worker_stats(const struct rts_feature_worker *w, struct rts_feature_stats *out)
{
    struct rts_state_stats ss;

    memset(out, 0, sizeof(*out));
    rts_state_stats(w->table, &ss);
    out->keys = ss.keys;
    out->evicted = ss.evicted;
    out->expired = ss.expired;
    out->key_bytes = ss.entry_bytes;
    out->bytes_committed = ss.bytes_committed;
    out->late = __atomic_load_n(&w->late, __ATOMIC_RELAXED);
    out->exact_overflow = __atomic_load_n(&w->exact_overflow, __ATOMIC_RELAXED);
    for (size_t i = 0; i < w->f->ndg; i++) {
        struct rts_hll_pool_stats ps;
        rts_hll_pool_stats(w->pools[i], &ps);
        out->sketches_in_use += ps.in_use;
        out->sketches_exhausted += ps.exhausted;
        out->lists_in_use += ps.lists_in_use;
        out->bytes_committed +=
            ps.in_use * ps.bytes_per_sketch + ps.lists_in_use * ps.bytes_per_list;
    }
}
