/*
 * registry.h - model slots for zero-downtime deployment: the `live` model
 * scores, a `candidate` can be tried beside it (on a sticky share of keys:
 * canary; or on every event without deciding anything: shadow), promoted to
 * live, and the model it replaced kept as `previous` for a rollback. Behind
 * GET/POST /admin/models (DESIGN.md section 5) and the registry directory
 * models/<name>/<version>/ (section 6).
 *
 * Two sides:
 *   control  load, promote, rollback, canary, shadow, describe, reclaim: any
 *            thread, serialised by a mutex the workers never touch. A load
 *            parses, validates and warms up the bundle before taking the
 *            mutex; a failure leaves every slot as it was and says why.
 *   workers  read an immutable snapshot, struct rts_registry_view: live and
 *            candidate (bundle and the pipeline's context for it), canary
 *            share, shadow flag, generation. A worker takes the current view
 *            with rts_registry_view() at the start of each batch - one atomic
 *            load when nothing changed - and uses only that view for the
 *            whole batch: each worker switches models at one point, between
 *            batches. Workers never block and never wait for the control side.
 *            Any other thread that reads what a view points to (the metrics
 *            scrape reading drift counters through slot.ctx) takes a reader
 *            too, and goes idle when done.
 *
 * Safe reclamation (quiescent-state based). Every change publishes a new view
 * with the next generation number; the old one is retired, not freed. Each
 * worker has a reader slot (rts_registry_reader_new) where it announces the
 * generation of the view it holds, updated by rts_registry_view() when it
 * picks up a newer one; a worker between batches with nothing to hold (about
 * to wait for input) announces "idle" with rts_registry_reader_idle(). A
 * retired view of generation g is freed, with the bundles only it still
 * references, once every reader announces a generation above g or idle: a
 * reader that announced g' > g loaded the current view after g was replaced,
 * so it can never see g again. A reader coming back from idle announces the
 * published generation before it loads the view (sequentially consistent), so
 * the control side either sees that announcement or has already published
 * past it. The control side reclaims at each change and whenever
 * rts_registry_reclaim() is called (call it from a housekeeping timer); it
 * never waits. At most RTS_REGISTRY_MAX_RETIRED views wait to be freed; a
 * change that would retire one more fails with RTS_ERR_AGAIN (a worker is
 * stuck in a batch or forgot to go idle) and changes nothing.
 *
 * Routing: with a candidate and canary_percent P, a key goes to the
 * candidate exactly when the low 32 bits of its hash are below P% of 2^32:
 * sticky per key, and raising P only moves keys from live to the candidate.
 * (The low bits, because workers are chosen from the high bits.)
 *
 * Errors, and the HTTP status the admin API should give them:
 *   RTS_ERR_CONFLICT  409: nothing to promote or roll back, canary without
 *                     a candidate
 *   RTS_ERR_INVAL     400 for a bad argument (canary percent, version);
 *                     from a load, 422 like the rest of the load errors
 *   RTS_ERR_AGAIN     503: old views still in use, retry shortly
 *   anything else from a load (PARSE, IO, MODEL, LIMIT, INVAL from the
 *                     validate hook ...): 422, the model was refused,
 *                     eb->msg says why
 */
#ifndef RTS_MODEL_REGISTRY_H
#define RTS_MODEL_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "model/bundle.h"

#define RTS_REGISTRY_MAX_READERS 4096
#define RTS_REGISTRY_MAX_RETIRED 64
#define RTS_REGISTRY_MAX_VERSIONS 100000 /* listed by rts_registry_versions */

struct rts_registry;
struct rts_registry_reader;
struct rts_buf;

/* One slot as the workers see it. */
struct rts_registry_slot {
    const struct rts_bundle *bundle; /* NULL: the slot is empty (no model: fallback) */
    void *ctx;                       /* what the validate hook attached, or NULL */
};

/* A snapshot; immutable, valid until the reader's next rts_registry_view()
 * or rts_registry_reader_idle(). */
struct rts_registry_view {
    uint64_t generation; /* 1 for the empty start, +1 for each change */
    struct rts_registry_slot live;
    struct rts_registry_slot candidate;
    double canary_percent; /* 0..100, as set */
    uint64_t canary_cut;   /* 0..2^32: keys with (uint32_t)hash < cut go to the candidate */
    int shadow;            /* 1: also score every live-routed event with the candidate */
};

/* The pipeline's part in a load; every hook is optional. */
struct rts_registry_hooks {
    /* Check @b against the pipeline (its features, outputs); RTS_ERR_OK to
     * accept, else an error with @eb saying why (the load is refused). May
     * set *@ctx to what workers need with this bundle (input mapping, drift
     * counters...): it is in every view as slot.ctx. Called by the loading
     * thread, outside the registry's lock. */
    enum rts_err (*validate)(void *arg, const struct rts_bundle *b, void **ctx,
                             struct rts_errbuf *eb);
    /* Warm the model up after validate (first predictions, caches); timed
     * and reported as warmup_ms. An error refuses the load. Same thread. */
    enum rts_err (*warmup)(void *arg, const struct rts_bundle *b, void *ctx,
                           struct rts_errbuf *eb);
    /* Free @ctx: called once no view or slot references the bundle, right
     * before the bundle is freed, on a control thread, under the registry's
     * lock (it must not call the registry). Also for a refused load whose
     * validate set a ctx. */
    void (*release)(void *arg, const struct rts_bundle *b, void *ctx);
    void *arg;
};

struct rts_registry_opts {
    const char *root;     /* the registry directory (root/NAME/VERSION/); NULL: loads by
                             version are refused. Copied. */
    const char *name;     /* NAME for loads by version; NULL: the live model's name. Copied. */
    unsigned max_readers; /* reader slots (workers); 1..RTS_REGISTRY_MAX_READERS, default 64 */
    struct rts_registry_hooks hooks;
};

/* What a slot holds, for describe and metrics (model_info{model,version,slot}). */
struct rts_registry_model_info {
    int present;          /* 0: the slot is empty, the rest is zero */
    char name[64];        /* truncated if longer */
    long version;
    char label[96];       /* "fraud@3" */
    char format[32];      /* "xgboost-json" */
    char path[512];       /* the folder it was loaded from (truncated if longer) */
    int64_t loaded_at_ms; /* wall clock, epoch ms */
    double load_ms;       /* parse + validate */
    double warmup_ms;     /* the warmup hook; NaN without one */
};

struct rts_registry_info {
    struct rts_registry_model_info live, candidate, previous;
    double canary_percent;
    int shadow;
    uint64_t generation;
    size_t retired; /* views waiting for workers to move on */
};

/* An empty registry (no live model: generation 1, every slot empty). NULL
 * with @eb filled (RTS_ERR_INVAL for options, RTS_ERR_NOMEM). The caller owns
 * it. Thread: any. */
struct rts_registry *rts_registry_new(const struct rts_registry_opts *o, struct rts_errbuf *eb)
    __attribute__((warn_unused_result));
/* Frees everything, calling the release hook for each context. Every reader
 * must have been freed (the workers have stopped). NULL is a no-op. */
void rts_registry_free(struct rts_registry *r);

/* ---- control side (any thread; serialised) ---- */

/* Load the bundle in folder @dir into the candidate slot: parse, validate
 * hook, warmup hook, then swap (the previous candidate is dropped, canary
 * back to 0). Start-up is a load and a promote. On error nothing changed. */
enum rts_err rts_registry_load(struct rts_registry *r, const char *dir, struct rts_errbuf *eb);
/* The same for root/NAME/@version/; the manifest must say NAME and
 * @version. RTS_ERR_INVAL without a root or a name. */
enum rts_err rts_registry_load_version(struct rts_registry *r, long version,
                                       struct rts_errbuf *eb);
/* candidate -> live, live -> previous (the old previous is dropped), canary
 * back to 0; RTS_ERR_CONFLICT without a candidate. */
enum rts_err rts_registry_promote(struct rts_registry *r, struct rts_errbuf *eb);
/* previous -> live; the rolled-back live model is dropped and previous left
 * empty (a second rollback is a CONFLICT); the candidate stays. */
enum rts_err rts_registry_rollback(struct rts_registry *r, struct rts_errbuf *eb);
/* Send @percent (0..100, fractions allowed) of keys to the candidate.
 * RTS_ERR_INVAL out of range, RTS_ERR_CONFLICT above 0 without a candidate. */
enum rts_err rts_registry_set_canary(struct rts_registry *r, double percent,
                                     struct rts_errbuf *eb);
/* Shadow scoring on or off (kept across loads and promotes; without a
 * candidate it has no effect). */
enum rts_err rts_registry_set_shadow(struct rts_registry *r, int on, struct rts_errbuf *eb);

/* Free the retired views no reader can still see; returns how many remain. */
size_t rts_registry_reclaim(struct rts_registry *r);

/* What each slot holds, copied under the lock. */
void rts_registry_info(struct rts_registry *r, struct rts_registry_info *out);

/* Append the GET /admin/models body to @out:
 * {"live":{"name":"fraud","version":3,"label":"fraud@3","format":"xgboost-json",
 *   "path":"models/fraud/3","loaded_at_ms":1700000000000,"load_ms":12.5,"warmup_ms":3.25},
 *  "candidate":null,"previous":{...},"canary_percent":0,"shadow":false,"generation":7}
 * (warmup_ms null without a warmup hook). RTS_ERR_NOMEM if @out cannot grow. */
enum rts_err rts_registry_describe(struct rts_registry *r, struct rts_buf *out);

/* The versions in @root/@name/: folders named by a decimal integer > 0,
 * ascending, into a new array *@out (free() it) of *@n. A missing folder is
 * RTS_ERR_IO; more than RTS_REGISTRY_MAX_VERSIONS is RTS_ERR_LIMIT.
 * Thread: any; reads the file system. */
enum rts_err rts_registry_versions(const char *root, const char *name, long **out, size_t *n,
                                   struct rts_errbuf *eb);

/* ---- worker side ---- */

/* A reader slot for one worker thread (idle until its first view). NULL
 * with @eb filled when all max_readers slots are taken. Thread: any. */
struct rts_registry_reader *rts_registry_reader_new(struct rts_registry *r, struct rts_errbuf *eb)
    __attribute__((warn_unused_result));
void rts_registry_reader_free(struct rts_registry_reader *rd); /* NULL is a no-op */

/* The current view; the previous one returned to this reader must not be
 * used any more. Never blocks, never allocates; one atomic load when the
 * view has not changed. Thread: the reader's worker only. */
const struct rts_registry_view *rts_registry_view(struct rts_registry_reader *rd);

/* The worker holds no view until its next rts_registry_view() (call it
 * before waiting for input, so old models can be freed meanwhile).
 * Thread: the reader's worker only. */
void rts_registry_reader_idle(struct rts_registry_reader *rd);

/* The slot that scores the key with hash @key_hash: the candidate for the
 * canary share of keys when there is a candidate, else live. Never NULL
 * (its bundle may be). Thread: any holding @v. */
const struct rts_registry_slot *rts_registry_route(const struct rts_registry_view *v,
                                                   uint64_t key_hash);

/* The slot to shadow-score an event with, given the slot @routed it was
 * scored with: the candidate when shadow is on, there is a candidate and
 * @routed is not it; else NULL. Thread: any holding @v. */
const struct rts_registry_slot *rts_registry_shadow_slot(const struct rts_registry_view *v,
                                                         const struct rts_registry_slot *routed);

#endif /* RTS_MODEL_REGISTRY_H */
