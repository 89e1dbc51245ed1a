/*
 * test_registry.c - unit tests of model/registry: the slot life cycle (load,
 * promote, rollback and their 409-style conflicts); failed loads (missing
 * folder, refused by the validate hook, failed warm-up, wrong version in the
 * registry) leave every slot untouched and say why; loads by version and the
 * registry directory scan; canary routing (share within 2 points over
 * 100,000 keys at several percents, sticky per key, monotone in the
 * percent) and shadow; the describe JSON; contexts released exactly once;
 * reclamation (a worker holding a view keeps its bundles alive, idle workers
 * do not, a stuck worker makes changes fail with AGAIN instead of blocking);
 * and a stress test: reader threads take views in a loop and read everything
 * in them while the control thread loads, promotes, rolls back and changes
 * canary and shadow; generations seen by each reader never go back and no
 * reader ever sees a released context (run under ASan and TSan).
 * RTS_REGISTRY_STRESS_N overrides the number of control operations.
 */
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/buf.h"
#include "core/hash.h"
#include "model/registry.h"
#include "test.h"
#include "tmp_bundle.h"

#define CTX_ALIVE UINT64_C(0xA11CEA11CEA11CE5)
#define CTX_DEAD UINT64_C(0xDEADDEADDEADDEAD)

static char root[64]; /* root/t/1, /2, /3: bundles t@1..3 */

struct ctx {
    _Atomic uint64_t magic;
    long version;
};

struct hooks_state {
    _Atomic long validated, released, warmed;
    int refuse_c;    /* validate refuses bundles whose version is this */
    int fail_warmup; /* warmup fails */
};

static enum rts_err hook_validate(void *arg, const struct rts_bundle *b, void **ctx,
                                  struct rts_errbuf *eb)
{
    struct hooks_state *h = arg;
    struct ctx *c = malloc(sizeof(*c));

    if (!c) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
    }
    atomic_init(&c->magic, CTX_ALIVE);
    c->version = b->version;
    *ctx = c; /* set even when refusing: release must still run */
    atomic_fetch_add(&h->validated, 1);
    if (h->refuse_c && b->version == h->refuse_c) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "the pipeline has no feature 'c'");
    }
    return RTS_ERR_OK;
}

static enum rts_err hook_warmup(void *arg, const struct rts_bundle *b, void *ctx,
                                struct rts_errbuf *eb)
{
    struct hooks_state *h = arg;
    float row[3] = {0, 0, 0}, y;

    atomic_fetch_add(&h->warmed, 1);
    if (h->fail_warmup) {
        return rts_errf(eb, RTS_ERR_MODEL, 0, 0, "warm-up prediction failed");
    }
    return rts_model_predict(b->model, row, 1, 3, &y);
}

static void hook_release(void *arg, const struct rts_bundle *b, void *ctx)
{
    struct hooks_state *h = arg;
    struct ctx *c = ctx;

    (void)b;
    atomic_store(&c->magic, CTX_DEAD);
    atomic_fetch_add(&h->released, 1);
    free(c);
}

static struct rts_registry *new_registry(struct hooks_state *h, const char *name)
{
    struct rts_registry_opts o = {
        .root = root,
        .name = name,
        .max_readers = 8,
        .hooks = {.validate = hook_validate, .warmup = hook_warmup, .release = hook_release,
                  .arg = h},
    };
    struct rts_errbuf eb = {0};
    struct rts_registry *r = rts_registry_new(&o, &eb);

    if (!r) {
        fprintf(stderr, "%s\n", eb.msg);
    }
    return r;
}

static const char *dir_of(long version)
{
    static char dir[4][128];

    snprintf(dir[version % 4], sizeof(dir[0]), "%s/t/%ld", root, version);
    return dir[version % 4];
}

static long live_version(struct rts_registry_reader *rd)
{
    const struct rts_registry_view *v = rts_registry_view(rd);

    return v->live.bundle ? v->live.bundle->version : 0;
}

static long cand_version(struct rts_registry_reader *rd)
{
    const struct rts_registry_view *v = rts_registry_view(rd);

    return v->candidate.bundle ? v->candidate.bundle->version : 0;
}

TEST(lifecycle)
{
    struct hooks_state h = {0};
    struct rts_registry *r = new_registry(&h, NULL);
    struct rts_registry_reader *rd = rts_registry_reader_new(r, NULL);
    struct rts_errbuf eb = {0};
    struct rts_registry_info in;
    const struct rts_registry_view *v;

    v = rts_registry_view(rd);
    CHECK_INT(v->generation, 1);
    CHECK(v->live.bundle == NULL && v->candidate.bundle == NULL);
    CHECK(rts_registry_route(v, 12345) == &v->live);

    CHECK_INT(rts_registry_promote(r, &eb), RTS_ERR_CONFLICT);
    CHECK(strstr(eb.msg, "no candidate to promote") != NULL);
    CHECK_INT(rts_registry_rollback(r, &eb), RTS_ERR_CONFLICT);
    CHECK(strstr(eb.msg, "no previous model") != NULL);
    CHECK_INT(rts_registry_view(rd)->generation, 1);

    /* start-up: load and promote */
    CHECK_INT(rts_registry_load(r, dir_of(1), &eb), RTS_ERR_OK);
    CHECK_INT(cand_version(rd), 1);
    CHECK_INT(live_version(rd), 0);
    CHECK_INT(rts_registry_view(rd)->generation, 2);
    CHECK_INT(rts_registry_promote(r, &eb), RTS_ERR_OK);
    CHECK_INT(live_version(rd), 1);
    CHECK_INT(cand_version(rd), 0);
    v = rts_registry_view(rd);
    CHECK_INT(((struct ctx *)v->live.ctx)->version, 1);
    CHECK_STR(v->live.bundle->label, "t@1");

    /* blue-green: v2 beside v1, promoted, rolled back */
    CHECK_INT(rts_registry_load(r, dir_of(2), &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_promote(r, &eb), RTS_ERR_OK);
    rts_registry_info(r, &in);
    CHECK_INT(in.live.version, 2);
    CHECK_INT(in.previous.version, 1);
    CHECK_INT(in.candidate.present, 0);
    CHECK_INT(rts_registry_rollback(r, &eb), RTS_ERR_OK);
    rts_registry_info(r, &in);
    CHECK_INT(in.live.version, 1);
    CHECK_INT(in.previous.present, 0);
    CHECK_INT(rts_registry_rollback(r, &eb), RTS_ERR_CONFLICT);
    CHECK_INT(live_version(rd), 1);

    /* a new candidate replaces the old one; the candidate survives a rollback */
    CHECK_INT(rts_registry_load(r, dir_of(2), &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_load(r, dir_of(3), &eb), RTS_ERR_OK);
    CHECK_INT(cand_version(rd), 3);
    CHECK_INT(rts_registry_promote(r, &eb), RTS_ERR_OK); /* live 3, previous 1 */
    CHECK_INT(rts_registry_load(r, dir_of(2), &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_rollback(r, &eb), RTS_ERR_OK); /* live 1, candidate 2 */
    CHECK_INT(live_version(rd), 1);
    CHECK_INT(cand_version(rd), 2);
    rts_registry_info(r, &in);
    CHECK_INT(in.generation, rts_registry_view(rd)->generation);
    CHECK_STR(in.live.format, "linear-json");
    CHECK_STR(in.live.path, dir_of(1));
    CHECK(in.live.loaded_at_ms > 1600000000000LL);
    CHECK(in.live.load_ms > 0 && in.live.warmup_ms >= 0);

    /* every context is released once, when nothing shows its bundle */
    rts_registry_reader_free(rd);
    CHECK_INT(rts_registry_reclaim(r), 0);
    CHECK_INT(atomic_load(&h.released), atomic_load(&h.validated) - 2); /* live 1, cand 2 */
    rts_registry_free(r);
    CHECK_INT(atomic_load(&h.released), atomic_load(&h.validated));
    CHECK_INT(atomic_load(&h.warmed), atomic_load(&h.validated));
}

TEST(failed_loads_change_nothing)
{
    struct hooks_state h = {0};
    struct rts_registry *r = new_registry(&h, NULL);
    struct rts_registry_reader *rd = rts_registry_reader_new(r, NULL);
    struct rts_errbuf eb = {0};
    struct rts_buf before = {0}, after = {0};
    char bad[128];
    uint64_t gen;

    CHECK_INT(rts_registry_load(r, dir_of(1), &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_promote(r, &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_load(r, dir_of(2), &eb), RTS_ERR_OK);
    gen = rts_registry_view(rd)->generation;
    CHECK_INT(rts_registry_describe(r, &before), RTS_ERR_OK);

    /* no such folder */
    CHECK(rts_registry_load(r, "/nonexistent/bundle", &eb) != RTS_ERR_OK);
    CHECK(strstr(eb.msg, "/nonexistent/bundle") != NULL);
    CHECK_INT(rts_registry_load(r, "", &eb), RTS_ERR_INVAL);
    /* refused by the pipeline */
    h.refuse_c = 3;
    CHECK_INT(rts_registry_load(r, dir_of(3), &eb), RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "t@3: the pipeline has no feature 'c'");
    h.refuse_c = 0;
    /* warm-up failed */
    h.fail_warmup = 1;
    CHECK_INT(rts_registry_load(r, dir_of(3), &eb), RTS_ERR_MODEL);
    CHECK(strstr(eb.msg, "warm-up prediction failed") != NULL);
    h.fail_warmup = 0;
    /* a broken bundle */
    snprintf(bad, sizeof(bad), "%s/broken", root);
    tmp_bundle_write(bad, "t", 9, "reference: {features: {a: {edges: [1], shares: [2, 0]}}}\n");
    CHECK(rts_registry_load(r, bad, &eb) != RTS_ERR_OK);
    CHECK(strstr(eb.msg, "reference.features.a") != NULL);

    CHECK_INT(rts_registry_view(rd)->generation, gen);
    CHECK_INT(live_version(rd), 1);
    CHECK_INT(cand_version(rd), 2);
    CHECK_INT(rts_registry_describe(r, &after), RTS_ERR_OK);
    CHECK_STR(after.data, before.data);
    /* the refused contexts were released at once */
    CHECK_INT(atomic_load(&h.released), 2);
    rts_buf_fini(&before);
    rts_buf_fini(&after);
    rts_registry_reader_free(rd);
    rts_registry_free(r);
    CHECK_INT(atomic_load(&h.released), atomic_load(&h.validated));
}

TEST(versions)
{
    struct hooks_state h = {0};
    struct rts_registry *r;
    struct rts_registry_info in;
    struct rts_errbuf eb = {0};
    char path[256];
    long *v = NULL;
    size_t n = 0;
    FILE *f;

    /* the scan: numeric folders only, numerically sorted */
    snprintf(path, sizeof(path), "%s/t/10", root);
    tmp_bundle_write(path, "t", 11, NULL); /* says 11: refused below */
    snprintf(path, sizeof(path), "%s/t/latest", root);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/t/0", root);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/t/5", root);
    f = fopen(path, "w"); /* a file, not a folder */
    if (f) {
        fclose(f);
    }
    CHECK_INT(rts_registry_versions(root, "t", &v, &n, &eb), RTS_ERR_OK);
    CHECK_INT(n, 4);
    if (n == 4) {
        CHECK_INT(v[0], 1);
        CHECK_INT(v[1], 2);
        CHECK_INT(v[2], 3);
        CHECK_INT(v[3], 10);
    }
    free(v);
    CHECK_INT(rts_registry_versions(root, "nope", &v, &n, &eb), RTS_ERR_IO);
    CHECK(v == NULL && n == 0);

    /* by version, the name configured */
    r = new_registry(&h, "t");
    CHECK_INT(rts_registry_load_version(r, 2, &eb), RTS_ERR_OK);
    rts_registry_info(r, &in);
    CHECK_INT(in.candidate.version, 2);
    CHECK_INT(rts_registry_load_version(r, 10, &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "the manifest says t@11, expected t@10") != NULL);
    CHECK(rts_registry_load_version(r, 7, &eb) != RTS_ERR_OK); /* no such version */
    CHECK_INT(rts_registry_load_version(r, 0, &eb), RTS_ERR_INVAL);
    rts_registry_info(r, &in);
    CHECK_INT(in.candidate.version, 2);
    rts_registry_free(r);

    /* the name from the live model; none before there is one */
    r = new_registry(&h, NULL);
    CHECK_INT(rts_registry_load_version(r, 2, &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "no model name") != NULL);
    CHECK_INT(rts_registry_load(r, dir_of(1), &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_promote(r, &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_load_version(r, 3, &eb), RTS_ERR_OK);
    rts_registry_info(r, &in);
    CHECK_INT(in.candidate.version, 3);
    rts_registry_free(r);

    /* no registry directory */
    r = rts_registry_new(NULL, &eb);
    CHECK_INT(rts_registry_load_version(r, 1, &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "no registry directory") != NULL);
    rts_registry_free(r);
    CHECK_INT(atomic_load(&h.released), atomic_load(&h.validated));
}

static uint64_t key_hash(long i)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "card-%ld", i);

    return rts_hash64(buf, (size_t)n);
}

TEST(canary_and_shadow)
{
    enum { KEYS = 100000 };
    static const double percents[] = {0, 0.5, 1, 10, 25, 50, 75, 99, 100};
    static unsigned char prev_to_cand[KEYS];
    struct hooks_state h = {0};
    struct rts_registry *r = new_registry(&h, NULL);
    struct rts_registry_reader *rd = rts_registry_reader_new(r, NULL);
    const struct rts_registry_view *v;
    const struct rts_registry_slot *s;
    struct rts_errbuf eb = {0};
    long i, to_cand, unsticky, shrunk;

    CHECK_INT(rts_registry_set_canary(r, -1, &eb), RTS_ERR_INVAL);
    CHECK_INT(rts_registry_set_canary(r, 100.5, &eb), RTS_ERR_INVAL);
    CHECK_INT(rts_registry_set_canary(r, NAN, &eb), RTS_ERR_INVAL);
    CHECK_INT(rts_registry_set_canary(r, 10, &eb), RTS_ERR_CONFLICT);
    CHECK(strstr(eb.msg, "no candidate") != NULL);
    CHECK_INT(rts_registry_set_canary(r, 0, &eb), RTS_ERR_OK);

    CHECK_INT(rts_registry_load(r, dir_of(1), &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_promote(r, &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_load(r, dir_of(2), &eb), RTS_ERR_OK);
    memset(prev_to_cand, 0, sizeof(prev_to_cand));
    for (size_t p = 0; p < sizeof(percents) / sizeof(percents[0]); p++) {
        CHECK_INT(rts_registry_set_canary(r, percents[p], &eb), RTS_ERR_OK);
        v = rts_registry_view(rd);
        CHECK_NEAR(v->canary_percent, percents[p], 0);
        to_cand = unsticky = shrunk = 0;
        for (i = 0; i < KEYS; i++) {
            s = rts_registry_route(v, key_hash(i));
            CHECK(s == &v->live || s == &v->candidate);
            to_cand += s == &v->candidate;
            /* sticky: the same answer again; monotone: a candidate key stays one */
            unsticky += rts_registry_route(v, key_hash(i)) != s;
            shrunk += prev_to_cand[i] && s != &v->candidate;
            prev_to_cand[i] = s == &v->candidate;
        }
        CHECK_NEAR(100.0 * (double)to_cand / KEYS, percents[p], 2.0);
        CHECK_INT(unsticky, 0);
        CHECK_INT(shrunk, 0);
    }
    /* exactly by the low 32 bits of the hash */
    CHECK_INT(rts_registry_set_canary(r, 50, &eb), RTS_ERR_OK);
    v = rts_registry_view(rd);
    CHECK(rts_registry_route(v, UINT64_C(0xFFFFFFFF7FFFFFFF)) == &v->candidate);
    CHECK(rts_registry_route(v, UINT64_C(0x0000000080000000)) == &v->live);
    CHECK(rts_registry_route(v, 0) == &v->candidate);

    /* shadow: the candidate beside live-routed events only */
    CHECK(rts_registry_shadow_slot(v, &v->live) == NULL);
    CHECK_INT(rts_registry_set_shadow(r, 1, &eb), RTS_ERR_OK);
    v = rts_registry_view(rd);
    CHECK_INT(v->shadow, 1);
    CHECK(rts_registry_shadow_slot(v, &v->live) == &v->candidate);
    CHECK(rts_registry_shadow_slot(v, &v->candidate) == NULL);
    CHECK_NEAR(v->canary_percent, 50, 0); /* the other settings stay */

    /* a new candidate starts with no canary; shadow stays */
    CHECK_INT(rts_registry_load(r, dir_of(3), &eb), RTS_ERR_OK);
    v = rts_registry_view(rd);
    CHECK_NEAR(v->canary_percent, 0, 0);
    CHECK(rts_registry_route(v, 0) == &v->live);
    CHECK_INT(v->shadow, 1);
    /* promoting ends the canary; with no candidate, nothing is shadowed */
    CHECK_INT(rts_registry_set_canary(r, 100, &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_promote(r, &eb), RTS_ERR_OK);
    v = rts_registry_view(rd);
    CHECK_NEAR(v->canary_percent, 0, 0);
    CHECK(rts_registry_route(v, 0) == &v->live);
    CHECK_INT(v->live.bundle->version, 3);
    CHECK(rts_registry_shadow_slot(v, &v->live) == NULL);
    CHECK_INT(rts_registry_set_shadow(r, 0, &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_view(rd)->shadow, 0);
    rts_registry_reader_free(rd);
    rts_registry_free(r);
}

TEST(describe)
{
    struct hooks_state h = {0};
    struct rts_registry *r = new_registry(&h, NULL);
    struct rts_buf out = {0};
    struct rts_errbuf eb = {0};
    json_error_t jerr;
    json_t *doc, *live;

    CHECK_INT(rts_registry_describe(r, &out), RTS_ERR_OK);
    CHECK_STR(out.data, "{\"live\":null,\"candidate\":null,\"previous\":null,"
                        "\"canary_percent\":0,\"shadow\":false,\"generation\":1}");
    rts_buf_fini(&out);

    CHECK_INT(rts_registry_load(r, dir_of(1), &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_promote(r, &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_load(r, dir_of(2), &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_set_canary(r, 12.5, &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_set_shadow(r, 1, &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_describe(r, &out), RTS_ERR_OK);
    doc = json_loads(out.data, 0, &jerr);
    CHECK(doc != NULL);
    if (doc) {
        live = json_object_get(doc, "live");
        CHECK_STR(json_string_value(json_object_get(live, "name")), "t");
        CHECK_INT(json_integer_value(json_object_get(live, "version")), 1);
        CHECK_STR(json_string_value(json_object_get(live, "label")), "t@1");
        CHECK_STR(json_string_value(json_object_get(live, "format")), "linear-json");
        CHECK_STR(json_string_value(json_object_get(live, "path")), dir_of(1));
        CHECK(json_integer_value(json_object_get(live, "loaded_at_ms")) > 1600000000000LL);
        CHECK(json_is_number(json_object_get(live, "load_ms")));
        CHECK(json_is_number(json_object_get(live, "warmup_ms")));
        CHECK_INT(json_integer_value(
                      json_object_get(json_object_get(doc, "candidate"), "version")),
                  2);
        CHECK(json_is_null(json_object_get(doc, "previous")));
        CHECK_NEAR(json_number_value(json_object_get(doc, "canary_percent")), 12.5, 0);
        CHECK(json_is_true(json_object_get(doc, "shadow")));
        CHECK_INT(json_integer_value(json_object_get(doc, "generation")), 6);
        json_decref(doc);
    }
    rts_buf_fini(&out);
    rts_registry_free(r);

    /* without a warm-up hook, warmup_ms is null */
    {
        struct rts_registry_opts o = {.hooks = {.validate = hook_validate,
                                                .release = hook_release,
                                                .arg = &h}};
        r = rts_registry_new(&o, &eb);
        CHECK_INT(rts_registry_load(r, dir_of(1), &eb), RTS_ERR_OK);
        CHECK_INT(rts_registry_describe(r, &out), RTS_ERR_OK);
        CHECK(strstr(out.data, "\"warmup_ms\":null") != NULL);
        rts_buf_fini(&out);
        rts_registry_free(r);
    }
    CHECK_INT(atomic_load(&h.released), atomic_load(&h.validated));
}

TEST(reclamation)
{
    struct hooks_state h = {0};
    struct rts_registry *r = new_registry(&h, NULL);
    struct rts_registry_reader *a = rts_registry_reader_new(r, NULL);
    struct rts_registry_reader *b = rts_registry_reader_new(r, NULL);
    const struct rts_registry_view *va;
    struct rts_errbuf eb = {0};
    struct ctx *held;
    int i, again = 0;

    CHECK_INT(rts_registry_load(r, dir_of(1), &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_promote(r, &eb), RTS_ERR_OK);
    va = rts_registry_view(a); /* a holds t@1 */
    held = va->live.ctx;
    rts_registry_view(b);
    rts_registry_reader_idle(b); /* b holds nothing */
    /* replace t@1 entirely: live 2, then live 3 (t@1 dropped from previous) */
    CHECK_INT(rts_registry_load(r, dir_of(2), &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_promote(r, &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_load(r, dir_of(3), &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_promote(r, &eb), RTS_ERR_OK);
    CHECK(rts_registry_reclaim(r) > 0);
    /* a's view still works: t@1 is alive */
    CHECK_INT(atomic_load(&held->magic), CTX_ALIVE);
    CHECK_INT(va->live.bundle->version, 1);
    CHECK_INT(atomic_load(&h.released), 0);
    /* a moves on at its next batch; then t@1 goes */
    va = rts_registry_view(a);
    CHECK_INT(va->live.bundle->version, 3);
    CHECK_INT(rts_registry_reclaim(r), 0);
    CHECK_INT(atomic_load(&h.released), 1);

    /* a stuck worker: changes fail with AGAIN instead of waiting, and
     * succeed again once it moves on */
    for (i = 0; i < RTS_REGISTRY_MAX_RETIRED + 5; i++) {
        if (rts_registry_set_shadow(r, i % 2, &eb) == RTS_ERR_AGAIN) {
            again++;
        }
    }
    CHECK_INT(again, 5);
    CHECK(strstr(eb.msg, "still in use") != NULL);
    CHECK_INT(rts_registry_promote(r, &eb), RTS_ERR_CONFLICT); /* checked first */
    CHECK_INT(rts_registry_load(r, dir_of(2), &eb), RTS_ERR_AGAIN);
    rts_registry_view(a);
    CHECK_INT(rts_registry_set_shadow(r, 0, &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_reclaim(r), 1); /* the view a holds, replaced just now */
    rts_registry_view(a);
    CHECK_INT(rts_registry_reclaim(r), 0);
    /* an idle reader's next view is the current one */
    CHECK_INT(rts_registry_view(b)->generation, rts_registry_view(a)->generation);

    /* reader slots are bounded and reused */
    {
        struct rts_registry_reader *rs[8];
        int got = 2;

        for (i = 0; i < 8; i++) {
            rs[i] = rts_registry_reader_new(r, &eb);
            got += rs[i] != NULL;
        }
        CHECK_INT(got, 8);
        CHECK_INT(eb.code, RTS_ERR_LIMIT);
        for (i = 0; i < 8; i++) {
            rts_registry_reader_free(rs[i]);
        }
    }
    rts_registry_reader_free(a);
    rts_registry_reader_free(b);
    rts_registry_free(r);
    CHECK_INT(atomic_load(&h.released), atomic_load(&h.validated));
}

/* ---- stress ---- */

#define READERS 3

struct stress {
    struct rts_registry *r;
    _Atomic int stop;
    long views[READERS], switches[READERS], bad[READERS];
};

struct reader_arg {
    struct stress *s;
    int id;
};

static void *stress_reader(void *p)
{
    struct reader_arg *ra = p;
    struct stress *s = ra->s;
    struct rts_registry_reader *rd = rts_registry_reader_new(s->r, NULL);
    const struct rts_registry_view *v;
    const struct rts_registry_slot *slot;
    uint64_t last_gen = 0, i = 0;
    struct ctx *c;
    float row[3] = {1, 2, 3}, y;

    if (!rd) {
        s->bad[ra->id]++;
        return NULL;
    }
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        v = rts_registry_view(rd);
        s->views[ra->id]++;
        if (v->generation < last_gen) {
            s->bad[ra->id]++;
        }
        s->switches[ra->id] += v->generation != last_gen;
        last_gen = v->generation;
        /* a batch: route keys, read everything the slots point to */
        for (int k = 0; k < 8; k++) {
            slot = rts_registry_route(v, key_hash((long)(i++ % 1000)));
            if (!slot->bundle) {
                continue;
            }
            c = slot->ctx;
            if (!c || atomic_load(&c->magic) != CTX_ALIVE || c->version != slot->bundle->version ||
                slot->bundle->nfeatures != 3 || strcmp(slot->bundle->name, "t") != 0) {
                s->bad[ra->id]++;
            }
            if (rts_model_predict(slot->bundle->model, row, 1, 3, &y) != RTS_ERR_OK) {
                s->bad[ra->id]++;
            }
            slot = rts_registry_shadow_slot(v, slot);
            if (slot && (!slot->bundle || atomic_load(&((struct ctx *)slot->ctx)->magic) !=
                                              CTX_ALIVE)) {
                s->bad[ra->id]++;
            }
        }
        if (i % 64 == 0) {
            rts_registry_reader_idle(rd); /* waiting for input; generations still only grow */
        }
    }
    rts_registry_reader_free(rd);
    return NULL;
}

TEST(stress)
{
    struct hooks_state h = {0};
    struct stress *s = calloc(1, sizeof(*s));
    struct reader_arg ra[READERS];
    pthread_t t[READERS];
    struct rts_errbuf eb = {0};
    const char *env = getenv("RTS_REGISTRY_STRESS_N");
    long n = env ? strtol(env, NULL, 10) : 10000, i, ok = 0, again = 0, other = 0;
    enum rts_err rc;
    int k;

    if (!s) {
        CHECK(0);
        return;
    }
    s->r = new_registry(&h, "t");
    atomic_init(&s->stop, 0);
    CHECK_INT(rts_registry_load(s->r, dir_of(1), &eb), RTS_ERR_OK);
    CHECK_INT(rts_registry_promote(s->r, &eb), RTS_ERR_OK);
    for (k = 0; k < READERS; k++) {
        ra[k].s = s;
        ra[k].id = k;
        CHECK_INT(pthread_create(&t[k], NULL, stress_reader, &ra[k]), 0);
    }
    for (i = 0; i < n; i++) {
    retry:
        switch (i % 8) {
        case 0:
            rc = rts_registry_load_version(s->r, 1 + (i / 8) % 3, &eb);
            break;
        case 1:
            rc = rts_registry_set_canary(s->r, (double)(i % 101), &eb);
            break;
        case 2:
            rc = rts_registry_set_shadow(s->r, (int)(i / 8) % 2, &eb);
            break;
        case 3:
            rc = rts_registry_promote(s->r, &eb);
            break;
        case 4:
            rc = rts_registry_load(s->r, dir_of(1 + (i / 8) % 3), &eb);
            break;
        case 5:
            rc = rts_registry_rollback(s->r, &eb);
            break;
        case 6:
            rc = (i / 8) % 2 ? rts_registry_promote(s->r, &eb) : rts_registry_rollback(s->r, &eb);
            break;
        default:
            rts_registry_reclaim(s->r);
            rc = RTS_ERR_OK;
            break;
        }
        if (rc == RTS_ERR_AGAIN) {
            /* readers descheduled while holding views: let them run (they
             * never stop taking views, so this ends) */
            again++;
            sched_yield();
            goto retry;
        }
        if (rc == RTS_ERR_OK) {
            ok++;
        } else if (rc != RTS_ERR_CONFLICT) {
            other++;
            fprintf(stderr, "stress: %s: %s\n", rts_err_name(rc), eb.msg);
        }
    }
    atomic_store(&s->stop, 1);
    for (k = 0; k < READERS; k++) {
        pthread_join(t[k], NULL);
    }
    CHECK_INT(other, 0);
    CHECK(ok > n / 2);
    for (k = 0; k < READERS; k++) {
        CHECK_INT(s->bad[k], 0);
        CHECK(s->views[k] > 0);
    }
    fprintf(stderr, "stress: %ld operations (%ld ok, %ld AGAIN), reader views %ld/%ld/%ld, "
                    "switches %ld/%ld/%ld\n",
            n, ok, again, s->views[0], s->views[1], s->views[2], s->switches[0], s->switches[1],
            s->switches[2]);
    CHECK_INT(rts_registry_reclaim(s->r), 0); /* every reader is gone */
    rts_registry_free(s->r);
    CHECK_INT(atomic_load(&h.released), atomic_load(&h.validated));
    free(s);
}

int main(void)
{
    char dir[128];

    if (!tmp_dir(root, "registry")) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(dir, sizeof(dir), "%s/t", root);
    mkdir(dir, 0755);
    for (long v = 1; v <= 3; v++) {
        if (tmp_bundle_write(dir_of(v), "t", v, NULL) != 0) {
            perror("bundle");
            return 1;
        }
    }
    RUN(lifecycle);
    RUN(failed_loads_change_nothing);
    RUN(versions);
    RUN(canary_and_shadow);
    RUN(describe);
    RUN(reclamation);
    RUN(stress);
    tmp_rm(root);
    return TEST_EXIT();
}
