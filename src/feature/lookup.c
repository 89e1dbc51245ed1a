/*
 * lookup.c - the lookup stage: key templates, per-worker caches, one store
 * call per store per batch, freshness, defaults and breakers. See lookup.h.
 *
 * Compiled (shared): stores, key groups (one per distinct store + template:
 * the features of a group share its key and one cache entry), features.
 * Each store asks for the union of its features' fields, so one cache entry
 * and one HMGET per key serve all of them.
 *
 * A batch runs in four passes, none of which allocates:
 *   1. build every (event, group) key, probe the cache; a fresh entry is a
 *      hit, anything else a miss, deduplicated per store with a small
 *      generation-stamped hash table (no clearing between batches);
 *   2. per store with misses: ask the breaker, then the store, once;
 *   3. resolve each (event, feature) from the hit, the fetched row or - the
 *      call having failed or been refused - an expired cache entry, then
 *      freshness and defaults; count, and mark degraded events;
 *   4. put what was fetched into the cache.
 * Cache entries are only written in pass 4, so pointers into the cache
 * taken in pass 1 stay valid through pass 3.
 *
 * Cache: per store and worker, set-associative (4 ways), fixed entries:
 * header, the store's fields, the key bytes. An insert takes the matching
 * entry, else a free way, else the way fetched longest ago. Keys longer than
 * the slot (at most RTS_LOOKUP_CACHE_KEY_MAX) bypass the cache.
 */
#include "feature/lookup.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/fmt.h"
#include "core/hash.h"
#include "core/log.h"

#define WAYS 4

/* ---- key templates ---- */

struct tseg {
    int field;        /* schema index; -1: literal lit[off, off + len) */
    enum rts_type type;
    uint32_t off, len;
};

struct tmpl {
    char *src; /* the template as written */
    char *lit; /* literal text, unescaped */
    struct tseg *seg;
    size_t nseg;
    size_t max_len; /* longest key it can build, capped at RTS_STORE_KEY_MAX */
};

static void tmpl_fini(struct tmpl *t)
{
    free(t->src);
    free(t->lit);
    free(t->seg);
    memset(t, 0, sizeof(*t));
}

/* Compile @src; @t is zeroed on entry. On error @t may hold partial
 * allocations (tmpl_fini frees them). */
static enum rts_err tmpl_compile(const struct rts_schema *schema, const char *src, struct tmpl *t,
                                 struct rts_errbuf *eb)
{
    size_t n = strlen(src), lit_len = 0, max = 0;

    if (n == 0) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "an empty key template");
    }
    t->src = strdup(src);
    t->lit = malloc(n + 1);
    t->seg = calloc(n + 1, sizeof(*t->seg));
    if (!t->src || !t->lit || !t->seg) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
    }
    for (size_t i = 0; i < n;) {
        if ((src[i] == '{' && src[i + 1] == '{') || (src[i] == '}' && src[i + 1] == '}') ||
            (src[i] != '{' && src[i] != '}')) {
            struct tseg *s = t->nseg ? &t->seg[t->nseg - 1] : NULL;
            if (!s || s->field >= 0) {
                s = &t->seg[t->nseg++];
                s->field = -1;
                s->off = (uint32_t)lit_len;
                s->len = 0;
            }
            t->lit[lit_len++] = src[i];
            s->len++;
            max++;
            i += (src[i] == '{' || src[i] == '}') ? 2 : 1;
            continue;
        }
        if (src[i] == '}') {
            return rts_errf(eb, RTS_ERR_INVAL, 0, (int)i + 1,
                            "'}' without '{' at column %zu of \"%s\" (write }} for a brace)",
                            i + 1, src);
        }
        {
            const char *close = strchr(src + i + 1, '}');
            const char *open = strchr(src + i + 1, '{');
            size_t len;
            int f;
            if (!close || (open && open < close)) {
                return rts_errf(eb, RTS_ERR_INVAL, 0, (int)i + 1,
                                "'{' at column %zu of \"%s\" is not closed (write {{ for a "
                                "brace)", i + 1, src);
            }
            len = (size_t)(close - src) - i - 1;
            if (len == 0) {
                return rts_errf(eb, RTS_ERR_INVAL, 0, (int)i + 1,
                                "'{}' at column %zu of \"%s\" names no field", i + 1, src);
            }
            f = rts_schema_find(schema, src + i + 1, len);
            if (f < 0) {
                return rts_errf(eb, RTS_ERR_INVAL, 0, (int)i + 2,
                                "unknown field '%.*s' at column %zu of \"%s\"", (int)len,
                                src + i + 1, i + 2, src);
            }
            {
                const struct rts_field_spec *fs = rts_schema_field(schema, (size_t)f);
                struct tseg *s = &t->seg[t->nseg++];
                s->field = f;
                s->type = rts_field_value_type(fs->type);
                max += s->type == RTS_T_STR ? (fs->max_len ? fs->max_len : RTS_STORE_KEY_MAX)
                       : s->type == RTS_T_BOOL ? 5
                                               : RTS_FMT_DOUBLE_MAX;
            }
            i += len + 2;
        }
    }
    t->lit[lit_len] = '\0';
    t->max_len = max < RTS_STORE_KEY_MAX ? max : RTS_STORE_KEY_MAX;
    return RTS_ERR_OK;
}

enum rts_err rts_lookup_template_check(const struct rts_schema *schema, const char *tmpl,
                                       struct rts_errbuf *eb)
{
    struct tmpl t = {0};
    enum rts_err rc = tmpl_compile(schema, tmpl, &t, eb);

    tmpl_fini(&t);
    return rc;
}

/* The key of @vals into @buf (@cap bytes); its length, or 0 when a field is
 * missing or the key does not fit. */
static size_t tmpl_build(const struct tmpl *t, const union rts_val *vals, char *buf, size_t cap)
{
    size_t o = 0;

    for (size_t k = 0; k < t->nseg; k++) {
        const struct tseg *s = &t->seg[k];
        const char *p;
        size_t n;
        char num[RTS_FMT_DOUBLE_MAX];

        if (s->field < 0) {
            p = t->lit + s->off;
            n = s->len;
        } else if (s->type == RTS_T_STR) {
            if (!vals[s->field].str.p) {
                return 0;
            }
            p = vals[s->field].str.p;
            n = vals[s->field].str.n;
        } else {
            double v = vals[s->field].num;
            if (isnan(v)) {
                return 0;
            }
            if (s->type == RTS_T_BOOL) {
                p = v != 0 ? "true" : "false";
                n = v != 0 ? 4 : 5;
            } else {
                n = rts_fmt_double(num, v);
                p = num;
            }
        }
        if (n > cap - o) {
            return 0;
        }
        memcpy(buf + o, p, n);
        o += n;
    }
    return o;
}

/* ---- compiled stage ---- */

struct lk_store {
    const struct rts_store_def *def;
    struct rts_store *store;
    struct rts_breaker *breaker;
    const char **fields;
    size_t nfields;
    size_t ngroups;  /* key groups of this store */
    size_t key_max;  /* longest key of its groups */
    size_t ckey_max; /* key bytes of a cache entry */
    uint64_t ttl_ns; /* 0 = no cache */
};

struct lk_group {
    size_t store;
    struct tmpl t;
    size_t key_off; /* offset of its key in a worker's per-event key row */
};

struct lk_feat {
    const struct rts_feature_def *def;
    size_t feature; /* position in the definitions */
    size_t group;
    size_t field; /* index in its store's fields */
};

struct rts_lookup {
    struct lk_store *st;
    size_t nst;
    struct lk_group *g;
    size_t ng;
    struct lk_feat *f;
    size_t nf;
    size_t key_row; /* bytes of all groups' keys of one event */
};

void rts_lookup_free(struct rts_lookup *l)
{
    if (!l) {
        return;
    }
    for (size_t s = 0; l->st && s < l->nst; s++) {
        rts_store_close(l->st[s].store);
        rts_breaker_free(l->st[s].breaker);
        free(l->st[s].fields);
    }
    for (size_t g = 0; l->g && g < l->ng; g++) {
        tmpl_fini(&l->g[g].t);
    }
    free(l->st);
    free(l->g);
    free(l->f);
    free(l);
}

static size_t find_store(const struct rts_store_def *stores, size_t n, const char *name)
{
    for (size_t s = 0; s < n; s++) {
        if (strcmp(stores[s].name, name) == 0) {
            return s;
        }
    }
    return n;
}

/* Field @name of store @st: its index, added if new; SIZE_MAX when full. */
static size_t store_field(struct lk_store *st, const char *name)
{
    for (size_t i = 0; i < st->nfields; i++) {
        if (strcmp(st->fields[i], name) == 0) {
            return i;
        }
    }
    if (st->nfields == RTS_STORE_MAX_FIELDS) {
        return SIZE_MAX;
    }
    st->fields[st->nfields] = name;
    return st->nfields++;
}

static enum rts_err compile_feature(struct rts_lookup *l, const struct rts_schema *schema,
                                    const struct rts_feature_def *d, size_t idx,
                                    const struct rts_store_def *stores, size_t nstores,
                                    struct rts_errbuf *eb)
{
    struct lk_feat *f = &l->f[l->nf];
    size_t s = find_store(stores, nstores, d->store ? d->store : "");
    size_t g;
    enum rts_err rc;

    if (s == nstores) {
        return rts_errf(eb, RTS_ERR_INVAL, d->line, d->column,
                        "features[%zu] (%s): unknown store '%s'", idx, d->name,
                        d->store ? d->store : "");
    }
    for (g = 0; g < l->ng; g++) {
        if (l->g[g].store == s && strcmp(l->g[g].t.src, d->key) == 0) {
            break;
        }
    }
    if (g == l->ng) {
        rc = tmpl_compile(schema, d->key ? d->key : "", &l->g[g].t, eb);
        l->ng++; /* counted even on failure, so rts_lookup_free frees it */
        if (rc) {
            rts_err_prefix(eb, d->name);
            return rc;
        }
        l->g[g].store = s;
        l->g[g].key_off = l->key_row;
        l->key_row += l->g[g].t.max_len;
        l->st[s].ngroups++;
        if (l->g[g].t.max_len > l->st[s].key_max) {
            l->st[s].key_max = l->g[g].t.max_len;
        }
    }
    f->def = d;
    f->feature = idx;
    f->group = g;
    f->field = store_field(&l->st[s], d->field ? d->field : d->name);
    if (f->field == SIZE_MAX) {
        return rts_errf(eb, RTS_ERR_LIMIT, 0, 0, "store %s: more than %d fields",
                        stores[s].name, RTS_STORE_MAX_FIELDS);
    }
    l->nf++;
    return RTS_ERR_OK;
}

static enum rts_err open_store(struct lk_store *st, const struct rts_store_def *def,
                               struct rts_errbuf *eb)
{
    struct rts_store_env env = {def->name, def->updated_field};
    struct rts_breaker_opts bo = def->breaker;
    char bname[RTS_BREAKER_NAME_MAX];

    st->def = def;
    st->ttl_ns = def->cache_ttl_ms > 0 ? (uint64_t)def->cache_ttl_ms * 1000000 : 0;
    st->store = rts_store_open(def->ops, def->node, def->path, &env, eb);
    if (!st->store) {
        return eb ? eb->code : RTS_ERR_INVAL;
    }
    snprintf(bname, sizeof(bname), "store:%s", def->name);
    if (!bo.on_transition) {
        bo.on_transition = rts_breaker_log_transition;
    }
    st->breaker = rts_breaker_new(bname, &bo, eb);
    if (!st->breaker) {
        rts_err_prefix(eb, def->path);
        return RTS_ERR_INVAL;
    }
    st->ckey_max = st->key_max < RTS_LOOKUP_CACHE_KEY_MAX ? st->key_max : RTS_LOOKUP_CACHE_KEY_MAX;
    return RTS_ERR_OK;
}

struct rts_lookup *rts_lookup_new(const struct rts_schema *schema,
                                  const struct rts_feature_def *defs, size_t ndefs,
                                  const struct rts_store_def *stores, size_t nstores,
                                  struct rts_errbuf *eb)
{
    struct rts_lookup *l = calloc(1, sizeof(*l));

    if (nstores > RTS_LOOKUP_MAX_STORES) {
        rts_errf(eb, RTS_ERR_LIMIT, 0, 0, "stores: at most %d", RTS_LOOKUP_MAX_STORES);
        free(l);
        return NULL;
    }
    if (!l || !(l->st = calloc(nstores ? nstores : 1, sizeof(*l->st))) ||
        !(l->g = calloc(ndefs ? ndefs : 1, sizeof(*l->g))) ||
        !(l->f = calloc(ndefs ? ndefs : 1, sizeof(*l->f)))) {
        goto nomem;
    }
    l->nst = nstores;
    for (size_t s = 0; s < nstores; s++) {
        l->st[s].fields = calloc(RTS_STORE_MAX_FIELDS, sizeof(*l->st[s].fields));
        if (!l->st[s].fields) {
            goto nomem;
        }
    }
    for (size_t i = 0; i < ndefs; i++) {
        if (defs[i].kind == RTS_FEAT_LOOKUP &&
            compile_feature(l, schema, &defs[i], i, stores, nstores, eb)) {
            goto fail;
        }
    }
    for (size_t s = 0; s < nstores; s++) {
        if (open_store(&l->st[s], &stores[s], eb)) {
            goto fail;
        }
    }
    return l;
nomem:
    rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "lookups: out of memory");
fail:
    rts_lookup_free(l);
    return NULL;
}

size_t rts_lookup_count(const struct rts_lookup *l)
{
    return l->nf;
}

size_t rts_lookup_feature_index(const struct rts_lookup *l, size_t j)
{
    return l->f[j].feature;
}

const char *rts_lookup_feature_name(const struct rts_lookup *l, size_t j)
{
    return l->f[j].def->name;
}

size_t rts_lookup_nstores(const struct rts_lookup *l)
{
    return l->nst;
}

const char *rts_lookup_store_name(const struct rts_lookup *l, size_t s)
{
    return l->st[s].def->name;
}

struct rts_store *rts_lookup_store(const struct rts_lookup *l, size_t s)
{
    return l->st[s].store;
}

struct rts_breaker *rts_lookup_breaker(const struct rts_lookup *l, size_t s)
{
    return l->st[s].breaker;
}

void rts_lookup_fill(const struct rts_lookup *l, const double *row, union rts_val *frame,
                     size_t nfields)
{
    for (size_t j = 0; j < l->nf; j++) {
        frame[nfields + l->f[j].feature].num = row[j];
    }
}

void rts_lookup_defaults(const struct rts_lookup *l, double *row)
{
    for (size_t j = 0; j < l->nf; j++) {
        row[j] = l->f[j].def->def;
    }
}

size_t rts_lookup_degraded_max(const struct rts_lookup *l)
{
    size_t n = 3 + 8; /* [] and ,"state" */

    for (size_t s = 0; l && s < l->nst; s++) {
        n += 6 * strlen(l->st[s].def->name) + 3;
    }
    return n;
}

size_t rts_lookup_degraded_json(const struct rts_lookup *l, uint32_t mask, char *buf, size_t cap)
{
    size_t o = 0;

    if (cap < 3) {
        return 0;
    }
    buf[o++] = '[';
    for (size_t s = 0; s < (l ? l->nst : 0) + 1; s++) {
        const char *name = l && s < l->nst ? l->st[s].def->name : "state";
        size_t w;
        if (!(mask & (l && s < l->nst ? 1u << s : RTS_DEGRADED_STATE))) {
            continue;
        }
        if (o > 1 && o < cap) {
            buf[o++] = ',';
        }
        w = rts_fmt_json_str(buf + o, cap - o, name, strlen(name));
        if (w == 0) {
            return 0;
        }
        o += w;
    }
    if (o + 1 >= cap) {
        return 0;
    }
    buf[o++] = ']';
    buf[o] = '\0';
    return o;
}

void rts_lookup_tick(struct rts_lookup *l, uint64_t now_ns)
{
    for (size_t s = 0; s < l->nst; s++) {
        rts_store_tick(l->st[s].store, now_ns);
    }
}

enum rts_err rts_lookup_reload(struct rts_lookup *l, const char *name, struct rts_errbuf *eb)
{
    for (size_t s = 0; s < l->nst; s++) {
        if (strcmp(l->st[s].def->name, name) == 0) {
            return rts_store_reload(l->st[s].store, eb);
        }
    }
    return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "no store named '%s'", name);
}

/* ---- per worker ---- */

struct centry {
    uint64_t hash;
    uint64_t fetched_ns;
    int64_t updated_ms;
    uint32_t key_len;
    uint32_t used;
    /* then nfields doubles, then the key bytes */
};

enum ref_state { REF_BAD = 0, REF_HIT, REF_MISS };

struct lk_wstore {
    void *conn;
    /* cache */
    char *cache;
    size_t esize, set_mask;
    /* misses of the batch */
    struct rts_str *mkeys;
    uint64_t *mhash;
    double *mvals;
    int64_t *mupd;
    size_t nmiss;
    uint32_t *dd_slot, *dd_gen; /* miss + 1 by key hash, valid when dd_gen == gen */
    size_t dd_mask;
    uint32_t gen;
    int answered; /* the batch's call succeeded */
    struct rts_lookup_store_stats c;
};

struct rts_lookup_worker {
    const struct rts_lookup *l;
    size_t max_batch;
    struct lk_wstore *st;
    char *keys; /* max_batch rows of l->key_row bytes */
    /* per (event, group) */
    struct rts_str *rkey;
    uint64_t *rhash;
    uint8_t *rstate;
    uint32_t *rmiss;
    const struct centry **rentry; /* the cache entry found in pass 1, fresh or not */
    struct rts_lookup_feature_stats *fs;
};

/* Single writer, concurrent readers: a relaxed load + store, never torn. */
#define BUMP(field, by) __atomic_store_n(&(field), (field) + (by), __ATOMIC_RELAXED)

static inline double *entry_vals(struct centry *e)
{
    return (double *)(e + 1);
}

static inline char *entry_key(struct centry *e, size_t nfields)
{
    return (char *)(e + 1) + nfields * sizeof(double);
}

static struct centry *cache_find(const struct lk_store *st, struct lk_wstore *ws, const char *key,
                                 size_t n, uint64_t h)
{
    char *set;

    if (!ws->cache || n > st->ckey_max) {
        return NULL;
    }
    set = ws->cache + (h & ws->set_mask) * WAYS * ws->esize;
    for (size_t w = 0; w < WAYS; w++) {
        struct centry *e = (struct centry *)(set + w * ws->esize);
        if (e->used && e->hash == h && e->key_len == n &&
            memcmp(entry_key(e, st->nfields), key, n) == 0) {
            return e;
        }
    }
    return NULL;
}

static void cache_put(const struct lk_store *st, struct lk_wstore *ws, const char *key, size_t n,
                      uint64_t h, const double *vals, int64_t upd, uint64_t now)
{
    struct centry *e, *pick = NULL;
    char *set;

    if (!ws->cache || n > st->ckey_max) {
        return;
    }
    e = cache_find(st, ws, key, n, h);
    set = ws->cache + (h & ws->set_mask) * WAYS * ws->esize;
    for (size_t w = 0; !e && w < WAYS; w++) {
        struct centry *c = (struct centry *)(set + w * ws->esize);
        if (!c->used) {
            e = c;
        } else if (!pick || c->fetched_ns < pick->fetched_ns) {
            pick = c;
        }
    }
    if (!e) {
        e = pick;
    }
    e->used = 1;
    e->hash = h;
    e->key_len = (uint32_t)n;
    e->fetched_ns = now;
    e->updated_ms = upd;
    memcpy(entry_vals(e), vals, st->nfields * sizeof(double));
    memcpy(entry_key(e, st->nfields), key, n);
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 1;

    while (p < n) {
        p *= 2;
    }
    return p;
}

static enum rts_err wstore_init(const struct lk_store *st, struct lk_wstore *ws, size_t max_batch,
                                struct rts_errbuf *eb)
{
    size_t refs = max_batch * (st->ngroups ? st->ngroups : 1);
    size_t nf = st->nfields ? st->nfields : 1;

    ws->conn = rts_store_conn_new(st->store, eb);
    if (!ws->conn) {
        return eb ? eb->code : RTS_ERR_NOMEM;
    }
    if (st->ttl_ns && st->def->cache_max >= 1 && st->ckey_max) {
        size_t sets = 1;
        while (sets * 2 * WAYS <= st->def->cache_max) {
            sets *= 2; /* largest power of two with sets * WAYS <= cache_max */
        }
        ws->esize = (sizeof(struct centry) + nf * sizeof(double) + st->ckey_max + 7) & ~(size_t)7;
        ws->set_mask = sets - 1;
        ws->cache = calloc(sets * WAYS, ws->esize);
    }
    ws->dd_mask = pow2_at_least(2 * refs) - 1;
    ws->mkeys = calloc(refs, sizeof(*ws->mkeys));
    ws->mhash = calloc(refs, sizeof(*ws->mhash));
    ws->mvals = calloc(refs * nf, sizeof(*ws->mvals));
    ws->mupd = calloc(refs, sizeof(*ws->mupd));
    ws->dd_slot = calloc(ws->dd_mask + 1, sizeof(*ws->dd_slot));
    ws->dd_gen = calloc(ws->dd_mask + 1, sizeof(*ws->dd_gen));
    if ((st->ttl_ns && st->def->cache_max >= 1 && st->ckey_max && !ws->cache) || !ws->mkeys ||
        !ws->mhash || !ws->mvals || !ws->mupd || !ws->dd_slot || !ws->dd_gen) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "store %s: out of memory for the cache",
                        st->def->name);
    }
    return RTS_ERR_OK;
}

void rts_lookup_worker_free(struct rts_lookup_worker *w)
{
    if (!w) {
        return;
    }
    for (size_t s = 0; w->st && s < w->l->nst; s++) {
        struct lk_wstore *ws = &w->st[s];
        rts_store_conn_free(w->l->st[s].store, ws->conn);
        free(ws->cache);
        free(ws->mkeys);
        free(ws->mhash);
        free(ws->mvals);
        free(ws->mupd);
        free(ws->dd_slot);
        free(ws->dd_gen);
    }
    free(w->st);
    free(w->keys);
    free(w->rkey);
    free(w->rhash);
    free(w->rstate);
    free(w->rmiss);
    free(w->rentry);
    free(w->fs);
    free(w);
}

struct rts_lookup_worker *rts_lookup_worker_new(const struct rts_lookup *l, size_t max_batch,
                                                struct rts_errbuf *eb)
{
    struct rts_lookup_worker *w = calloc(1, sizeof(*w));
    size_t refs;

    if (max_batch < 1 || max_batch > RTS_LOOKUP_MAX_BATCH) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "lookups: a batch of 1..%d events",
                 RTS_LOOKUP_MAX_BATCH);
        free(w);
        return NULL;
    }
    refs = max_batch * (l->ng ? l->ng : 1);
    if (!w || !(w->st = calloc(l->nst ? l->nst : 1, sizeof(*w->st)))) {
        goto nomem;
    }
    w->l = l;
    w->max_batch = max_batch;
    w->keys = malloc(max_batch * (l->key_row ? l->key_row : 1));
    w->rkey = calloc(refs, sizeof(*w->rkey));
    w->rhash = calloc(refs, sizeof(*w->rhash));
    w->rstate = calloc(refs, sizeof(*w->rstate));
    w->rmiss = calloc(refs, sizeof(*w->rmiss));
    w->rentry = calloc(refs, sizeof(*w->rentry));
    w->fs = calloc(l->nf ? l->nf : 1, sizeof(*w->fs));
    if (!w->keys || !w->rkey || !w->rhash || !w->rstate || !w->rmiss || !w->rentry || !w->fs) {
        goto nomem;
    }
    for (size_t s = 0; s < l->nst; s++) {
        if (wstore_init(&l->st[s], &w->st[s], max_batch, eb)) {
            rts_lookup_worker_free(w);
            return NULL;
        }
    }
    return w;
nomem:
    rts_lookup_worker_free(w);
    rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "lookups: out of memory");
    return NULL;
}

/* Index of a miss for key @k (hash @h) of store @ws, added if new. */
static uint32_t add_miss(struct lk_wstore *ws, struct rts_str k, uint64_t h)
{
    size_t i = (size_t)h & ws->dd_mask;

    for (;; i = (i + 1) & ws->dd_mask) {
        uint32_t m;
        if (ws->dd_gen[i] != ws->gen) {
            ws->dd_gen[i] = ws->gen;
            ws->dd_slot[i] = (uint32_t)ws->nmiss + 1;
            break;
        }
        m = ws->dd_slot[i] - 1;
        if (ws->mhash[m] == h && ws->mkeys[m].n == k.n && memcmp(ws->mkeys[m].p, k.p, k.n) == 0) {
            return m;
        }
    }
    ws->mkeys[ws->nmiss] = k;
    ws->mhash[ws->nmiss] = h;
    return (uint32_t)ws->nmiss++;
}

/* Pass 2 for one store: one call for all its misses, unless the breaker says no. */
static void fetch(const struct lk_store *st, struct lk_wstore *ws, uint64_t now_ns,
                  uint64_t deadline_ns)
{
    struct rts_store_query q = {ws->nmiss, ws->mkeys, st->nfields, st->fields,
                                ws->mvals, ws->mupd,  deadline_ns};
    struct rts_errbuf eb = {0};
    enum rts_store_status r;
    uint64_t t0, t1;

    ws->answered = 0;
    if (!rts_breaker_allow(st->breaker, now_ns)) {
        BUMP(ws->c.refused, 1);
        return;
    }
    t0 = rts_now_ns();
    r = rts_store_lookup(st->store, ws->conn, &q, &eb);
    t1 = rts_now_ns();
    rts_breaker_record(st->breaker, now_ns + (t1 - t0), r == RTS_STORE_OK, t1 - t0);
    BUMP(ws->c.calls, 1);
    BUMP(ws->c.fetched, ws->nmiss);
    if (r == RTS_STORE_OK) {
        ws->answered = 1;
        return;
    }
    if (r == RTS_STORE_TIMEOUT) {
        BUMP(ws->c.timeouts, 1);
    } else {
        BUMP(ws->c.errors, 1);
    }
    rts_log(RTS_LOG_WARN, "store lookup failed", "store=%s error=\"%s\"", st->def->name, eb.msg);
}

static void resolve(const struct lk_feat *f, struct rts_lookup_feature_stats *fs,
                    const double *vals, int64_t upd, int unanswered, int64_t ts_ms, double *out)
{
    const struct rts_feature_def *d = f->def;
    double v = vals ? vals[f->field] : NAN;

    if (isnan(v)) {
        *out = d->def;
        BUMP(fs->defaults, 1);
        if (!vals && unanswered) {
            BUMP(fs->degraded, 1);
        } else {
            BUMP(fs->missing, 1);
        }
        return;
    }
    if (upd >= 0) {
        int64_t age = ts_ms - upd;
        const int64_t cap = INT64_MAX / 1000000; /* ~292 years in ms */
        rts_hist_add(&fs->staleness, age <= 0 ? 0 : (uint64_t)(age < cap ? age : cap) * 1000000u);
    }
    if (d->max_age_ms > 0 && (upd < 0 || ts_ms - upd > d->max_age_ms)) {
        *out = d->def;
        BUMP(fs->defaults, 1);
        BUMP(fs->stale, 1);
        return;
    }
    *out = v;
    BUMP(fs->values, 1);
}

static void batch_chunk(struct rts_lookup_worker *w, const struct rts_event *evs, size_t n,
                        uint64_t now_ns, uint64_t deadline_ns, double *out, uint32_t *degraded)
{
    const struct rts_lookup *l = w->l;
    size_t ng = l->ng;

    /* 1. keys and cache */
    for (size_t s = 0; s < l->nst; s++) {
        w->st[s].nmiss = 0;
        if (++w->st[s].gen == 0) { /* wrapped: stamps of 2^32 batches ago would match */
            memset(w->st[s].dd_gen, 0, (w->st[s].dd_mask + 1) * sizeof(uint32_t));
            w->st[s].gen = 1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        char *row = w->keys + i * l->key_row;
        for (size_t g = 0; g < ng; g++) {
            const struct lk_group *gr = &l->g[g];
            const struct lk_store *st = &l->st[gr->store];
            struct lk_wstore *ws = &w->st[gr->store];
            size_t r = i * ng + g;
            size_t len = tmpl_build(&gr->t, evs[i].vals, row + gr->key_off, gr->t.max_len);
            struct centry *e;

            BUMP(ws->c.keys, 1);
            w->rentry[r] = NULL;
            if (len == 0) {
                w->rstate[r] = REF_BAD;
                BUMP(ws->c.bad_keys, 1);
                continue;
            }
            w->rkey[r].p = row + gr->key_off;
            w->rkey[r].n = (uint32_t)len;
            w->rhash[r] = rts_hash64(w->rkey[r].p, len);
            e = cache_find(st, ws, w->rkey[r].p, len, w->rhash[r]);
            w->rentry[r] = e;
            if (e && now_ns - e->fetched_ns < st->ttl_ns) {
                w->rstate[r] = REF_HIT;
                BUMP(ws->c.hits, 1);
                continue;
            }
            w->rstate[r] = REF_MISS;
            w->rmiss[r] = add_miss(ws, w->rkey[r], w->rhash[r]);
        }
    }
    /* 2. one call per store */
    for (size_t s = 0; s < l->nst; s++) {
        if (w->st[s].nmiss) {
            fetch(&l->st[s], &w->st[s], now_ns, deadline_ns);
        }
    }
    /* 3. resolve */
    for (size_t i = 0; i < n; i++) {
        uint32_t mask = 0;
        for (size_t g = 0; g < ng; g++) {
            size_t r = i * ng + g, s = l->g[g].store;
            if (w->rstate[r] == REF_MISS && !w->st[s].answered) {
                if (!(mask & (1u << s))) {
                    BUMP(w->st[s].c.degraded, 1);
                }
                mask |= 1u << s;
                if (w->rentry[r]) {
                    BUMP(w->st[s].c.stale_served, 1);
                }
            }
        }
        for (size_t j = 0; j < l->nf; j++) {
            const struct lk_feat *f = &l->f[j];
            size_t r = i * ng + f->group, s = l->g[f->group].store;
            struct lk_wstore *ws = &w->st[s];
            const double *vals = NULL;
            int64_t upd = -1;
            int unanswered = 0;
            struct centry *e = (struct centry *)w->rentry[r];

            if (w->rstate[r] == REF_HIT) {
                vals = entry_vals(e);
                upd = e->updated_ms;
            } else if (w->rstate[r] == REF_MISS && ws->answered) {
                vals = ws->mvals + (size_t)w->rmiss[r] * l->st[s].nfields;
                upd = ws->mupd[w->rmiss[r]];
            } else if (w->rstate[r] == REF_MISS) {
                unanswered = 1;
                if (e) { /* stale if error: the expired entry beats nothing */
                    vals = entry_vals(e);
                    upd = e->updated_ms;
                }
            }
            resolve(f, &w->fs[j], vals, upd, unanswered, evs[i].ts_ms, &out[i * l->nf + j]);
        }
        if (degraded) {
            degraded[i] = mask;
        }
    }
    /* 4. remember what was fetched */
    for (size_t s = 0; s < l->nst; s++) {
        struct lk_wstore *ws = &w->st[s];
        if (!ws->answered || !ws->cache) {
            continue;
        }
        for (size_t m = 0; m < ws->nmiss; m++) {
            cache_put(&l->st[s], ws, ws->mkeys[m].p, ws->mkeys[m].n, ws->mhash[m],
                      ws->mvals + m * l->st[s].nfields, ws->mupd[m], now_ns);
        }
    }
}

void rts_lookup_batch(struct rts_lookup_worker *w, const struct rts_event *evs, size_t n,
                      uint64_t now_ns, uint64_t deadline_ns, double *out, uint32_t *degraded)
{
    size_t L = w->l->nf;

    for (size_t i = 0; i < n; i += w->max_batch) {
        size_t k = n - i < w->max_batch ? n - i : w->max_batch;
        batch_chunk(w, evs + i, k, now_ns, deadline_ns, out + i * L, degraded ? degraded + i : NULL);
    }
}

void rts_lookup_worker_stats_add(const struct rts_lookup_worker *w,
                                 struct rts_lookup_feature_stats *feat,
                                 struct rts_lookup_store_stats *store)
{
#define ADD(dst, src, f) (dst)->f += __atomic_load_n(&(src)->f, __ATOMIC_RELAXED)
    for (size_t j = 0; feat && j < w->l->nf; j++) {
        const struct rts_lookup_feature_stats *s = &w->fs[j];
        ADD(&feat[j], s, values);
        ADD(&feat[j], s, defaults);
        ADD(&feat[j], s, missing);
        ADD(&feat[j], s, stale);
        ADD(&feat[j], s, degraded);
        rts_hist_merge(&feat[j].staleness, &s->staleness);
    }
    for (size_t k = 0; store && k < w->l->nst; k++) {
        const struct rts_lookup_store_stats *s = &w->st[k].c;
        ADD(&store[k], s, keys);
        ADD(&store[k], s, hits);
        ADD(&store[k], s, fetched);
        ADD(&store[k], s, calls);
        ADD(&store[k], s, errors);
        ADD(&store[k], s, timeouts);
        ADD(&store[k], s, refused);
        ADD(&store[k], s, stale_served);
        ADD(&store[k], s, bad_keys);
        ADD(&store[k], s, degraded);
    }
#undef ADD
}
