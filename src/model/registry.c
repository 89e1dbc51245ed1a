/*
 * registry.c - model slots, views and their reclamation (registry.h).
 *
 * A loaded bundle lives in an entry: the bundle, the pipeline's context for
 * it, and when/how long it took to load. An entry is referenced by the slots
 * that hold it (live, candidate, previous) and by every view, current or
 * retired, that shows it; the count is only touched under the mutex, and
 * the entry (context, then bundle) is freed when it drops to zero. A view is
 * referenced by the workers through the reclamation protocol of registry.h:
 *
 *   control (mutex held)                 worker
 *   build view n+1                       online: v = load_acquire(current);
 *   store_sc(current, view n+1)                  if v changed:
 *   store_sc(published, n+1)                       store_release(announce, v.gen)
 *   retire view n                        from idle: g = load_sc(published)
 *   min = min over readers of                       store_sc(announce, g)
 *         load_sc(announce)                         v = load_sc(current)
 *   free retired views with gen < min               store_release(announce, v.gen)
 *                                        idle: store_release(announce, IDLE)
 *
 * A worker's announcement never exceeds the generation of a view it can
 * still dereference, and the release/acquire pair on `announce` orders its
 * last reads of a view before the free.
 */
#include "model/registry.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/fmt.h"

#define IDLE UINT64_MAX
#define LINE 64

struct entry {
    struct rts_bundle *bundle;
    void *ctx;
    int refs;
    int64_t loaded_at_ms;
    uint64_t load_ns;
    uint64_t warmup_ns;
    int warmed; /* a warmup hook ran */
};

struct view_node {
    struct rts_registry_view pub;
    struct entry *live, *cand; /* one reference each */
    struct view_node *next;    /* retired list */
};

struct rts_registry_reader {
    alignas(LINE) _Atomic uint64_t announce;
    _Atomic int used;
    struct rts_registry *reg;
    const struct view_node *last; /* the view held; NULL when idle */
};

struct rts_registry {
    pthread_mutex_t mu;
    _Atomic(struct view_node *) current;
    _Atomic uint64_t published;

    /* under mu */
    struct entry *live, *cand, *prev;
    double canary;
    int shadow;
    uint64_t gen;
    struct view_node *retired;
    size_t nretired;

    char *root, *name;
    struct rts_registry_hooks hooks;
    unsigned nreaders;
    struct rts_registry_reader *readers;
};

/* ---- entries ---- */

static struct entry *entry_ref(struct entry *e)
{
    if (e) {
        e->refs++;
    }
    return e;
}

static void entry_free(const struct rts_registry_hooks *h, struct entry *e)
{
    if (e->ctx && h->release) {
        h->release(h->arg, e->bundle, e->ctx);
    }
    rts_bundle_free(e->bundle);
    free(e);
}

static void entry_unref(struct rts_registry *r, struct entry *e)
{
    if (e && --e->refs == 0) {
        entry_free(&r->hooks, e);
    }
}

/* ---- views ---- */

static void view_free(struct rts_registry *r, struct view_node *v)
{
    entry_unref(r, v->live);
    entry_unref(r, v->cand);
    free(v);
}

static uint64_t canary_cut(double percent)
{
    return (uint64_t)llround(percent / 100.0 * 4294967296.0);
}

/* Free what no reader can see. Under mu. */
static void reclaim_locked(struct rts_registry *r)
{
    uint64_t min = IDLE, a;
    struct view_node **pp, *v;
    unsigned i;

    if (!r->retired) {
        return;
    }
    for (i = 0; i < r->nreaders; i++) {
        a = atomic_load(&r->readers[i].announce);
        if (a < min) {
            min = a;
        }
    }
    pp = &r->retired;
    while ((v = *pp) != NULL) {
        if (v->pub.generation < min) {
            *pp = v->next;
            view_free(r, v);
            r->nretired--;
        } else {
            pp = &v->next;
        }
    }
}

/* Room to retire one more view? Under mu. */
static enum rts_err make_room(struct rts_registry *r, struct rts_errbuf *eb)
{
    reclaim_locked(r);
    if (r->nretired >= RTS_REGISTRY_MAX_RETIRED) {
        return rts_errf(eb, RTS_ERR_AGAIN, 0, 0,
                        "models: %zu older views are still in use by workers; retry shortly",
                        r->nretired);
    }
    return RTS_ERR_OK;
}

/* Publish the slots as a new view and retire the old one. Under mu, after
 * make_room() (so it cannot fail but for memory). */
static enum rts_err publish(struct rts_registry *r, struct rts_errbuf *eb)
{
    struct view_node *v = calloc(1, sizeof(*v)), *old;

    if (!v) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "models: out of memory");
    }
    v->live = entry_ref(r->live);
    v->cand = entry_ref(r->cand);
    v->pub.generation = ++r->gen;
    if (r->live) {
        v->pub.live.bundle = r->live->bundle;
        v->pub.live.ctx = r->live->ctx;
    }
    if (r->cand) {
        v->pub.candidate.bundle = r->cand->bundle;
        v->pub.candidate.ctx = r->cand->ctx;
    }
    v->pub.canary_percent = r->canary;
    v->pub.canary_cut = canary_cut(r->canary);
    v->pub.shadow = r->shadow;
    old = atomic_load(&r->current);
    atomic_store(&r->current, v);
    atomic_store(&r->published, v->pub.generation);
    if (old) {
        old->next = r->retired;
        r->retired = old;
        r->nretired++;
    }
    reclaim_locked(r);
    return RTS_ERR_OK;
}

/* ---- creation ---- */

struct rts_registry *rts_registry_new(const struct rts_registry_opts *o, struct rts_errbuf *eb)
{
    struct rts_registry_opts opt = {0};
    struct rts_registry *r;
    unsigned i;

    if (o) {
        opt = *o;
    }
    if (opt.max_readers == 0) {
        opt.max_readers = 64;
    }
    if (opt.max_readers > RTS_REGISTRY_MAX_READERS) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "models: max_readers: %u is more than %d",
                 opt.max_readers, RTS_REGISTRY_MAX_READERS);
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        goto nomem;
    }
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        r = NULL;
        goto nomem;
    }
    atomic_init(&r->current, NULL);
    atomic_init(&r->published, 0);
    r->hooks = opt.hooks;
    r->nreaders = opt.max_readers;
    r->readers = aligned_alloc(LINE, sizeof(*r->readers) * opt.max_readers);
    r->root = opt.root ? strdup(opt.root) : NULL;
    r->name = opt.name ? strdup(opt.name) : NULL;
    if (!r->readers || (opt.root && !r->root) || (opt.name && !r->name)) {
        goto nomem;
    }
    for (i = 0; i < r->nreaders; i++) {
        atomic_init(&r->readers[i].announce, IDLE);
        atomic_init(&r->readers[i].used, 0);
        r->readers[i].reg = r;
        r->readers[i].last = NULL;
    }
    if (publish(r, eb)) {
        goto fail;
    }
    return r;
nomem:
    rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "models: out of memory");
fail:
    rts_registry_free(r);
    return NULL;
}

void rts_registry_free(struct rts_registry *r)
{
    struct view_node *v;

    if (!r) {
        return;
    }
    while ((v = r->retired) != NULL) {
        r->retired = v->next;
        view_free(r, v);
    }
    v = atomic_load(&r->current);
    if (v) {
        view_free(r, v);
    }
    entry_unref(r, r->live);
    entry_unref(r, r->cand);
    entry_unref(r, r->prev);
    free(r->readers);
    free(r->root);
    free(r->name);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* ---- control side ---- */

/* Load, validate and warm up the bundle at @dir into a new entry (no lock). */
static enum rts_err entry_load(struct rts_registry *r, const char *dir, struct entry **out,
                               struct rts_errbuf *eb)
{
    struct entry *e = calloc(1, sizeof(*e));
    uint64_t t0 = rts_now_ns(), t1;
    enum rts_err rc;

    if (!e) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "models: out of memory");
    }
    e->refs = 1;
    e->loaded_at_ms = rts_wall_ms();
    e->bundle = rts_bundle_load(dir, eb);
    if (!e->bundle) {
        free(e);
        return eb && eb->code ? eb->code : RTS_ERR_INVAL;
    }
    if (r->hooks.validate) {
        rc = r->hooks.validate(r->hooks.arg, e->bundle, &e->ctx, eb);
        if (rc) {
            goto refused;
        }
    }
    t1 = rts_now_ns();
    e->load_ns = t1 - t0;
    if (r->hooks.warmup) {
        rc = r->hooks.warmup(r->hooks.arg, e->bundle, e->ctx, eb);
        if (rc) {
            goto refused;
        }
        e->warmed = 1;
        e->warmup_ns = rts_now_ns() - t1;
    }
    *out = e;
    return RTS_ERR_OK;
refused:
    if (eb && eb->code != rc) {
        eb->code = rc;
    }
    rts_err_prefix(eb, e->bundle->label);
    entry_free(&r->hooks, e);
    return rc;
}

static enum rts_err install_candidate(struct rts_registry *r, struct entry *e,
                                      struct rts_errbuf *eb)
{
    struct entry *old_cand;
    double old_canary;
    enum rts_err rc;

    pthread_mutex_lock(&r->mu);
    rc = make_room(r, eb);
    if (rc) {
        goto out;
    }
    old_cand = r->cand;
    old_canary = r->canary;
    r->cand = e;
    r->canary = 0;
    rc = publish(r, eb);
    if (rc) {
        r->cand = old_cand;
        r->canary = old_canary;
        goto out;
    }
    e = NULL; /* the slot holds it */
    entry_unref(r, old_cand);
out:
    if (e) {
        entry_unref(r, e);
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

enum rts_err rts_registry_load(struct rts_registry *r, const char *dir, struct rts_errbuf *eb)
{
    struct entry *e = NULL;
    enum rts_err rc;

    if (!dir || !*dir) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "models: load: no folder given");
    }
    rc = entry_load(r, dir, &e, eb);
    if (rc) {
        return rc;
    }
    return install_candidate(r, e, eb);
}

enum rts_err rts_registry_load_version(struct rts_registry *r, long version,
                                       struct rts_errbuf *eb)
{
    char name[256], dir[4096];
    struct entry *e = NULL;
    enum rts_err rc;

    if (!r->root) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                        "models: load by version: no registry directory is configured");
    }
    if (version < 1) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "models: version %ld: expected 1 or more",
                        version);
    }
    pthread_mutex_lock(&r->mu);
    snprintf(name, sizeof(name), "%s",
             r->name ? r->name : r->live ? r->live->bundle->name : "");
    pthread_mutex_unlock(&r->mu);
    if (!*name) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                        "models: load by version: no model name (none configured, none live)");
    }
    if (strchr(name, '/') || strcmp(name, "..") == 0 || strcmp(name, ".") == 0) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "models: model name '%s' is not a folder name",
                        name);
    }
    snprintf(dir, sizeof(dir), "%s/%s/%ld", r->root, name, version);
    rc = entry_load(r, dir, &e, eb);
    if (rc) {
        return rc;
    }
    if (strcmp(e->bundle->name, name) != 0 || e->bundle->version != version) {
        rc = rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s: the manifest says %s, expected %s@%ld", dir,
                      e->bundle->label, name, version);
        pthread_mutex_lock(&r->mu);
        entry_unref(r, e);
        pthread_mutex_unlock(&r->mu);
        return rc;
    }
    return install_candidate(r, e, eb);
}

enum rts_err rts_registry_promote(struct rts_registry *r, struct rts_errbuf *eb)
{
    struct entry *old_live, *old_prev, *old_cand;
    double old_canary;
    enum rts_err rc;

    pthread_mutex_lock(&r->mu);
    if (!r->cand) {
        rc = rts_errf(eb, RTS_ERR_CONFLICT, 0, 0, "models: no candidate to promote");
        goto out;
    }
    rc = make_room(r, eb);
    if (rc) {
        goto out;
    }
    old_live = r->live;
    old_prev = r->prev;
    old_cand = r->cand;
    old_canary = r->canary;
    r->prev = old_live;
    r->live = old_cand;
    r->cand = NULL;
    r->canary = 0;
    rc = publish(r, eb);
    if (rc) {
        r->live = old_live;
        r->prev = old_prev;
        r->cand = old_cand;
        r->canary = old_canary;
        goto out;
    }
    entry_unref(r, old_prev);
out:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

enum rts_err rts_registry_rollback(struct rts_registry *r, struct rts_errbuf *eb)
{
    struct entry *old_live, *old_prev;
    enum rts_err rc;

    pthread_mutex_lock(&r->mu);
    if (!r->prev) {
        rc = rts_errf(eb, RTS_ERR_CONFLICT, 0, 0, "models: no previous model to roll back to");
        goto out;
    }
    rc = make_room(r, eb);
    if (rc) {
        goto out;
    }
    old_live = r->live;
    old_prev = r->prev;
    r->live = old_prev;
    r->prev = NULL;
    rc = publish(r, eb);
    if (rc) {
        r->live = old_live;
        r->prev = old_prev;
        goto out;
    }
    entry_unref(r, old_live);
out:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

enum rts_err rts_registry_set_canary(struct rts_registry *r, double percent,
                                     struct rts_errbuf *eb)
{
    double old;
    enum rts_err rc;

    if (!(percent >= 0 && percent <= 100)) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "models: canary percent %g is not in 0..100",
                        percent);
    }
    pthread_mutex_lock(&r->mu);
    if (percent > 0 && !r->cand) {
        rc = rts_errf(eb, RTS_ERR_CONFLICT, 0, 0, "models: no candidate for a canary");
        goto out;
    }
    rc = make_room(r, eb);
    if (rc) {
        goto out;
    }
    old = r->canary;
    r->canary = percent;
    rc = publish(r, eb);
    if (rc) {
        r->canary = old;
    }
out:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

enum rts_err rts_registry_set_shadow(struct rts_registry *r, int on, struct rts_errbuf *eb)
{
    int old;
    enum rts_err rc;

    pthread_mutex_lock(&r->mu);
    rc = make_room(r, eb);
    if (rc) {
        goto out;
    }
    old = r->shadow;
    r->shadow = on != 0;
    rc = publish(r, eb);
    if (rc) {
        r->shadow = old;
    }
out:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

size_t rts_registry_reclaim(struct rts_registry *r)
{
    size_t n;

    pthread_mutex_lock(&r->mu);
    reclaim_locked(r);
    n = r->nretired;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* ---- describe ---- */

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static void model_info(const struct entry *e, struct rts_registry_model_info *out)
{
    memset(out, 0, sizeof(*out));
    if (!e) {
        return;
    }
    out->present = 1;
    copy_str(out->name, sizeof(out->name), e->bundle->name);
    out->version = e->bundle->version;
    copy_str(out->label, sizeof(out->label), e->bundle->label);
    copy_str(out->format, sizeof(out->format), rts_model_format(e->bundle->model));
    copy_str(out->path, sizeof(out->path), e->bundle->dir);
    out->loaded_at_ms = e->loaded_at_ms;
    out->load_ms = (double)e->load_ns / 1e6;
    out->warmup_ms = e->warmed ? (double)e->warmup_ns / 1e6 : NAN;
}

void rts_registry_info(struct rts_registry *r, struct rts_registry_info *out)
{
    pthread_mutex_lock(&r->mu);
    model_info(r->live, &out->live);
    model_info(r->cand, &out->candidate);
    model_info(r->prev, &out->previous);
    out->canary_percent = r->canary;
    out->shadow = r->shadow;
    out->generation = r->gen;
    out->retired = r->nretired;
    pthread_mutex_unlock(&r->mu);
}

static enum rts_err json_str(struct rts_buf *out, const char *s)
{
    char buf[4096]; /* the longest field (path, 511 bytes) escaped 6 to 1 fits */
    size_t n = rts_fmt_json_str(buf, sizeof(buf), s, strlen(s));

    return n ? rts_buf_append(out, buf, n) : rts_buf_append(out, "\"\"", 2);
}

static enum rts_err json_num(struct rts_buf *out, double v)
{
    char buf[RTS_FMT_DOUBLE_MAX];

    return rts_buf_append(out, buf, rts_fmt_double(buf, v));
}

static enum rts_err describe_model(struct rts_buf *out, const char *key,
                                   const struct rts_registry_model_info *m)
{
    enum rts_err rc = rts_buf_printf(out, "\"%s\":", key);

    if (rc || !m->present) {
        return rc ? rc : rts_buf_append(out, "null", 4);
    }
    if (rts_buf_append(out, "{\"name\":", 8) || json_str(out, m->name) ||
        rts_buf_printf(out, ",\"version\":%ld,\"label\":", m->version) ||
        json_str(out, m->label) || rts_buf_append(out, ",\"format\":", 10) ||
        json_str(out, m->format) || rts_buf_append(out, ",\"path\":", 8) ||
        json_str(out, m->path) ||
        rts_buf_printf(out, ",\"loaded_at_ms\":%lld,\"load_ms\":", (long long)m->loaded_at_ms) ||
        json_num(out, m->load_ms) || rts_buf_append(out, ",\"warmup_ms\":", 13) ||
        json_num(out, m->warmup_ms) || rts_buf_append(out, "}", 1)) {
        return RTS_ERR_NOMEM;
    }
    return RTS_ERR_OK;
}

enum rts_err rts_registry_describe(struct rts_registry *r, struct rts_buf *out)
{
    struct rts_registry_info *in = malloc(sizeof(*in));
    enum rts_err rc;

    if (!in) {
        return RTS_ERR_NOMEM;
    }
    rts_registry_info(r, in);
    rc = rts_buf_append(out, "{", 1);
    rc = rc ? rc : describe_model(out, "live", &in->live);
    rc = rc ? rc : rts_buf_append(out, ",", 1);
    rc = rc ? rc : describe_model(out, "candidate", &in->candidate);
    rc = rc ? rc : rts_buf_append(out, ",", 1);
    rc = rc ? rc : describe_model(out, "previous", &in->previous);
    rc = rc ? rc : rts_buf_append(out, ",\"canary_percent\":", 18);
    rc = rc ? rc : json_num(out, in->canary_percent);
    rc = rc ? rc
            : rts_buf_printf(out, ",\"shadow\":%s,\"generation\":%llu}",
                             in->shadow ? "true" : "false", (unsigned long long)in->generation);
    free(in);
    return rc;
}

/* ---- the registry directory ---- */

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;

    return (x > y) - (x < y);
}

/* @s as a version: decimal digits only, > 0, fits a long. */
static long parse_version(const char *s)
{
    long v = 0;

    if (!*s) {
        return 0;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (LONG_MAX - 9) / 10) {
            return 0;
        }
        v = v * 10 + (*s - '0');
    }
    return v;
}

enum rts_err rts_registry_versions(const char *root, const char *name, long **out, size_t *n,
                                   struct rts_errbuf *eb)
{
    char dir[4096], path[4352];
    struct dirent *de;
    struct stat st;
    long *v = NULL, *grown, ver;
    size_t len = 0, cap = 0;
    enum rts_err rc = RTS_ERR_OK;
    DIR *dh;

    *out = NULL;
    *n = 0;
    snprintf(dir, sizeof(dir), "%s/%s", root, name);
    dh = opendir(dir);
    if (!dh) {
        return rts_errf(eb, RTS_ERR_IO, 0, 0, "%s: %s", dir, strerror(errno));
    }
    while ((de = readdir(dh)) != NULL) {
        ver = parse_version(de->d_name);
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (ver <= 0 || stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            continue;
        }
        if (len == RTS_REGISTRY_MAX_VERSIONS) {
            rc = rts_errf(eb, RTS_ERR_LIMIT, 0, 0, "%s: more than %d versions", dir,
                          RTS_REGISTRY_MAX_VERSIONS);
            goto out;
        }
        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            grown = realloc(v, cap * sizeof(*v));
            if (!grown) {
                rc = rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
                goto out;
            }
            v = grown;
        }
        v[len++] = ver;
    }
    qsort(v, len, sizeof(*v), cmp_long);
    *out = v;
    *n = len;
    v = NULL;
out:
    closedir(dh);
    free(v);
    return rc;
}

/* ---- worker side ---- */

struct rts_registry_reader *rts_registry_reader_new(struct rts_registry *r, struct rts_errbuf *eb)
{
    int expect;

    for (unsigned i = 0; i < r->nreaders; i++) {
        expect = 0;
        if (atomic_compare_exchange_strong(&r->readers[i].used, &expect, 1)) {
            r->readers[i].last = NULL;
            atomic_store(&r->readers[i].announce, IDLE);
            return &r->readers[i];
        }
    }
    rts_errf(eb, RTS_ERR_LIMIT, 0, 0, "models: all %u reader slots are taken", r->nreaders);
    return NULL;
}

void rts_registry_reader_free(struct rts_registry_reader *rd)
{
    if (!rd) {
        return;
    }
    rts_registry_reader_idle(rd);
    atomic_store(&rd->used, 0);
}

const struct rts_registry_view *rts_registry_view(struct rts_registry_reader *rd)
{
    struct rts_registry *r = rd->reg;
    struct view_node *v;

    if (rd->last) {
        v = atomic_load_explicit(&r->current, memory_order_acquire);
        if (v == rd->last) {
            return &v->pub;
        }
    } else {
        /* Coming back from idle: announce a generation no newer than the
         * view about to be loaded, before loading it. */
        atomic_store(&rd->announce, atomic_load(&r->published));
        v = atomic_load(&r->current);
    }
    atomic_store_explicit(&rd->announce, v->pub.generation, memory_order_release);
    rd->last = v;
    return &v->pub;
}

void rts_registry_reader_idle(struct rts_registry_reader *rd)
{
    atomic_store_explicit(&rd->announce, IDLE, memory_order_release);
    rd->last = NULL;
}

const struct rts_registry_slot *rts_registry_route(const struct rts_registry_view *v,
                                                   uint64_t key_hash)
{
    if (v->candidate.bundle && (uint64_t)(uint32_t)key_hash < v->canary_cut) {
        return &v->candidate;
    }
    return &v->live;
}

const struct rts_registry_slot *rts_registry_shadow_slot(const struct rts_registry_view *v,
                                                         const struct rts_registry_slot *routed)
{
    if (v->shadow && v->candidate.bundle && routed != &v->candidate) {
        return &v->candidate;
    }
    return NULL;
}
