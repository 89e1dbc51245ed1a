/*
 * test_state.c - the keyed state table (state.h): insert and find, value
 * persistence, LRU eviction order, TTL expiry, the drop callback, key length
 * limits, and heavy churn against a reference model (also with colliding
 * hashes), which checks that backward-shift deletion keeps every key findable.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/hash.h"
#include "core/populate.h"
#include "feature/state.h"
#include "test.h"

struct val {
    uint64_t id;   /* the key's number */
    uint64_t hits; /* gets since the key was created */
    uint64_t pad[2];
};

/* The drop callback records what it saw. */
static uint64_t dropped[100000];
static size_t ndropped;

static void on_drop(void *ctx, void *value)
{
    const struct val *v = value;

    CHECK(ctx == (void *)dropped);
    if (ndropped < sizeof(dropped) / sizeof(dropped[0])) {
        dropped[ndropped] = v->id;
    }
    ndropped++;
}

static struct rts_state_table *table(uint64_t max_keys, uint32_t max_key_len, size_t value_size,
                                     int64_t ttl)
{
    struct rts_errbuf eb = {0};
    struct rts_state_table *t = rts_state_new(max_keys, max_key_len, value_size, ttl, &eb);

    if (!t) {
        fprintf(stderr, "rts_state_new: %s\n", eb.msg);
        exit(1);
    }
    ndropped = 0;
    rts_state_set_drop(t, on_drop, dropped);
    return t;
}

static int key_of(uint64_t id, char *buf)
{
    return snprintf(buf, 32, "key-%llu", (unsigned long long)id);
}

/* get key @id with its real hash; sets v->id and counts the hit */
static struct val *get(struct rts_state_table *t, uint64_t id, int64_t ts, int *is_new)
{
    char k[32];
    int n = key_of(id, k);
    struct val *v = rts_state_get(t, k, (uint32_t)n, rts_hash64(k, (size_t)n), ts, is_new);

    if (v) {
        if (*is_new) {
            CHECK_INT(v->id, 0);
            CHECK_INT(v->hits, 0);
            v->id = id;
        }
        CHECK_INT(v->id, id);
        v->hits++;
    }
    return v;
}

static struct rts_state_stats stats(const struct rts_state_table *t)
{
    struct rts_state_stats s;

    rts_state_stats(t, &s);
    return s;
}

TEST(create_errors)
{
    struct rts_errbuf eb = {0};

    CHECK(rts_state_new(0, 16, 8, 0, &eb) == NULL);
    CHECK_INT(eb.code, RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "max_keys") != NULL);
    CHECK(rts_state_new(10, 0, 8, 0, &eb) == NULL);
    CHECK(rts_state_new(10, 16, 8, -1, &eb) == NULL);
    CHECK(rts_state_new((1ULL << 31) + 1, 16, 8, 0, NULL) == NULL);
    rts_state_free(NULL);
}

TEST(insert_find_persist)
{
    struct rts_state_table *t = table(100, 32, sizeof(struct val), 0);
    struct val *a, *b, *again;
    struct rts_state_stats s;
    int is_new = -1;

    a = get(t, 1, 1000, &is_new);
    CHECK(a != NULL);
    CHECK_INT(is_new, 1);
    CHECK_INT((uintptr_t)a % 8, 0);
    a->pad[0] = 0xfeed;
    b = get(t, 2, 1001, &is_new);
    CHECK_INT(is_new, 1);
    CHECK(a != b);
    again = get(t, 1, 1002, &is_new);
    CHECK_INT(is_new, 0);
    CHECK(again == a);
    CHECK_INT(again->pad[0], 0xfeed);
    CHECK_INT(again->hits, 2);
    s = stats(t);
    CHECK_INT(s.keys, 2);
    CHECK_INT(s.evicted, 0);
    CHECK_INT(s.expired, 0);
    CHECK_INT(s.entry_bytes, 32 + sizeof(struct val) + 32);
    CHECK(s.bytes_committed >= 256 * 8 + 2 * s.entry_bytes);
    CHECK_INT(ndropped, 0);
    rts_state_free(t);
}

/* Same hash, different bytes; same prefix, different lengths; the empty key. */
TEST(collisions_and_lengths)
{
    struct rts_state_table *t = table(16, 8, 8, 0);
    uint64_t *v1, *v2, *v3, *v4, *v0;
    int is_new;

    v1 = rts_state_get(t, "abc", 3, 42, 0, &is_new);
    *v1 = 1;
    v2 = rts_state_get(t, "abd", 3, 42, 0, &is_new);
    CHECK_INT(is_new, 1);
    *v2 = 2;
    v3 = rts_state_get(t, "ab", 2, 42, 0, &is_new);
    CHECK_INT(is_new, 1);
    *v3 = 3;
    v4 = rts_state_get(t, "abcdefgh", 8, 42, 0, &is_new); /* max length */
    CHECK(v4 != NULL);
    CHECK_INT(is_new, 1);
    *v4 = 4;
    CHECK(rts_state_get(t, "abcdefghi", 9, 42, 0, &is_new) == NULL); /* too long */
    v0 = rts_state_get(t, "", 0, 42, 0, &is_new);
    CHECK_INT(is_new, 1);
    *v0 = 5;
    CHECK_INT(*(uint64_t *)rts_state_get(t, "abc", 3, 42, 0, &is_new), 1);
    CHECK_INT(is_new, 0);
    CHECK_INT(*(uint64_t *)rts_state_get(t, "abd", 3, 42, 0, &is_new), 2);
    CHECK_INT(*(uint64_t *)rts_state_get(t, "ab", 2, 42, 0, &is_new), 3);
    CHECK_INT(*(uint64_t *)rts_state_get(t, "abcdefgh", 8, 42, 0, &is_new), 4);
    CHECK_INT(*(uint64_t *)rts_state_get(t, "", 0, 42, 0, &is_new), 5);
    CHECK_INT(is_new, 0);
    /* the same bytes under another hash are another key (the caller's hash rules) */
    rts_state_get(t, "abc", 3, 43, 0, &is_new);
    CHECK_INT(is_new, 1);
    CHECK_INT(stats(t).keys, 6);
    rts_state_free(t);
}

TEST(max_key_len_64)
{
    struct rts_state_table *t = table(4, 64, 8, 0);
    char k[80];
    int is_new;
    uint64_t *v;

    memset(k, 'k', sizeof(k));
    v = rts_state_get(t, k, 64, rts_hash64(k, 64), 0, &is_new);
    CHECK(v != NULL);
    *v = 64;
    k[63] = 'x'; /* differs only in the last byte */
    v = rts_state_get(t, k, 64, rts_hash64(k, 64), 0, &is_new);
    CHECK_INT(is_new, 1);
    k[63] = 'k';
    v = rts_state_get(t, k, 64, rts_hash64(k, 64), 0, &is_new);
    CHECK_INT(is_new, 0);
    CHECK_INT(*v, 64);
    CHECK(rts_state_get(t, k, 65, rts_hash64(k, 65), 0, &is_new) == NULL);
    CHECK_INT(stats(t).keys, 2);
    rts_state_free(t);
}

TEST(lru_eviction_order)
{
    struct rts_state_table *t = table(4, 16, sizeof(struct val), 0);
    int is_new;

    get(t, 1, 0, &is_new);
    get(t, 2, 0, &is_new);
    get(t, 3, 0, &is_new);
    get(t, 4, 0, &is_new);
    get(t, 1, 0, &is_new); /* order now, oldest first: 2 3 4 1 */
    CHECK_INT(is_new, 0);
    CHECK_INT(ndropped, 0);

    get(t, 5, 0, &is_new); /* evicts 2 */
    CHECK_INT(is_new, 1);
    CHECK_INT(ndropped, 1);
    CHECK_INT(dropped[0], 2);
    get(t, 3, 0, &is_new); /* 4 1 5 3 */
    CHECK_INT(is_new, 0);
    get(t, 6, 0, &is_new); /* evicts 4 */
    get(t, 2, 0, &is_new); /* evicts 1; 2 comes back new */
    CHECK_INT(is_new, 1);
    CHECK_INT(ndropped, 3);
    CHECK_INT(dropped[1], 4);
    CHECK_INT(dropped[2], 1);
    CHECK_INT(stats(t).keys, 4);
    CHECK_INT(stats(t).evicted, 3);
    CHECK_INT(stats(t).expired, 0);
    /* survivors: 5 3 6 2 */
    get(t, 5, 0, &is_new);
    CHECK_INT(is_new, 0);
    get(t, 3, 0, &is_new);
    CHECK_INT(is_new, 0);
    get(t, 6, 0, &is_new);
    CHECK_INT(is_new, 0);
    get(t, 2, 0, &is_new);
    CHECK_INT(is_new, 0);
    CHECK_INT(ndropped, 3);
    rts_state_free(t);
}

TEST(ttl_expiry)
{
    struct rts_state_table *t = table(100, 16, sizeof(struct val), 1000);
    struct val *v;
    int is_new, i;

    get(t, 1, 0, &is_new);
    get(t, 2, 500, &is_new);
    get(t, 3, 600, &is_new);
    get(t, 4, 900, &is_new);
    /* newest 1600: 1 (age 1600) and 2 (1100) expire; 3 (age 1000) does not */
    get(t, 5, 1600, &is_new);
    CHECK_INT(stats(t).expired, 2);
    CHECK_INT(stats(t).keys, 3);
    CHECK_INT(ndropped, 2);
    CHECK_INT(dropped[0], 1);
    CHECK_INT(dropped[1], 2);
    v = get(t, 3, 1600, &is_new);
    CHECK_INT(is_new, 0);
    CHECK_INT(v->hits, 2);

    /* order, oldest first: 4 5 3; at 2000 only 4 (age 1100) has expired */
    for (i = 10; i < 15; i++) {
        get(t, (uint64_t)i, 2000, &is_new);
    }
    CHECK_INT(stats(t).expired, 3);
    CHECK_INT(dropped[2], 4);
    /* at 5000 everything has expired: at most 2 keys go per call */
    get(t, 99, 5000, &is_new); /* 5 3 */
    CHECK_INT(stats(t).expired, 5);
    get(t, 99, 5000, &is_new); /* 10 11 */
    CHECK_INT(is_new, 0);
    CHECK_INT(stats(t).expired, 7);
    get(t, 99, 5000, &is_new); /* 12 13 */
    CHECK_INT(stats(t).expired, 9);
    get(t, 99, 5000, &is_new); /* 14 */
    CHECK_INT(stats(t).expired, 10);
    CHECK_INT(stats(t).keys, 1);
    CHECK_INT(dropped[9], 14);
    CHECK_INT(ndropped, stats(t).expired);
    rts_state_free(t);
}

/* A key that expired while not at the tail is recreated when it is looked up. */
TEST(ttl_expired_on_lookup)
{
    struct rts_state_table *t = table(100, 16, sizeof(struct val), 1000);
    struct val *v;
    int is_new;

    get(t, 1, 5000, &is_new);
    get(t, 2, 100, &is_new); /* a late event: last seen 100, but recently accessed */
    get(t, 3, 5100, &is_new);
    CHECK_INT(stats(t).expired, 0); /* the tail (1) is not expired */
    v = get(t, 2, 200, &is_new);
    CHECK_INT(is_new, 1);
    CHECK_INT(v->hits, 1);
    CHECK_INT(stats(t).expired, 1);
    CHECK_INT(stats(t).keys, 3);
    CHECK_INT(ndropped, 1);
    CHECK_INT(dropped[0], 2);
    rts_state_free(t);
}

TEST(no_ttl)
{
    struct rts_state_table *t = table(10, 16, sizeof(struct val), 0);
    int is_new;

    get(t, 1, INT64_MIN, &is_new);
    get(t, 2, INT64_MAX, &is_new);
    get(t, 1, 0, &is_new);
    CHECK_INT(is_new, 0);
    CHECK_INT(stats(t).expired, 0);
    rts_state_free(t);

    t = table(10, 16, sizeof(struct val), 1);
    get(t, 1, INT64_MIN, &is_new);
    get(t, 2, INT64_MAX, &is_new); /* age 2^64 - 1: no overflow */
    CHECK_INT(stats(t).expired, 1);
    rts_state_free(t);
}

/* ---- churn against a reference model ---- */

#define UNIVERSE 300
#define MODEL_MAX 64

struct model {
    int present[UNIVERSE];
    int64_t last[UNIVERSE];
    uint64_t order[UNIVERSE]; /* access clock: smaller = less recent */
    uint64_t hits[UNIVERSE];
    uint64_t clock, keys, evicted, expired;
    int64_t newest, ttl;
    int seen;
    uint64_t drops[100000];
    size_t ndrops;
};

static struct model md;

static int model_expired(uint64_t id)
{
    return md.ttl > 0 && md.last[id] < md.newest &&
           (uint64_t)md.newest - (uint64_t)md.last[id] > (uint64_t)md.ttl;
}

static int model_tail(void)
{
    int i, best = -1;

    for (i = 0; i < UNIVERSE; i++) {
        if (md.present[i] && (best < 0 || md.order[i] < md.order[best])) {
            best = i;
        }
    }
    return best;
}

static void model_drop(int id, uint64_t *counter)
{
    md.present[id] = 0;
    md.keys--;
    (*counter)++;
    md.drops[md.ndrops++] = (uint64_t)id;
}

static int model_get(uint64_t id, int64_t ts)
{
    int k, is_new;

    if (!md.seen || ts > md.newest) {
        md.newest = ts;
        md.seen = 1;
    }
    for (k = 0; k < 2; k++) {
        int tl = model_tail();

        if (tl < 0 || !model_expired((uint64_t)tl)) {
            break;
        }
        model_drop(tl, &md.expired);
    }
    if (md.present[id] && model_expired(id)) {
        md.expired++;
        md.drops[md.ndrops++] = id;
        md.hits[id] = 0;
        md.last[id] = ts;
        is_new = 1;
    } else if (md.present[id]) {
        if (ts > md.last[id]) {
            md.last[id] = ts;
        }
        is_new = 0;
    } else {
        if (md.keys == MODEL_MAX) {
            model_drop(model_tail(), &md.evicted);
        }
        md.present[id] = 1;
        md.keys++;
        md.last[id] = ts;
        md.hits[id] = 0;
        is_new = 1;
    }
    md.order[id] = ++md.clock;
    md.hits[id]++;
    return is_new;
}

static uint64_t rng = 0x2545F4914F6CDD1DULL;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* @hash_mod: 0 = real hashes, else hash = id % hash_mod (forced collisions). */
static void churn(int64_t ttl, uint64_t hash_mod, int steps)
{
    struct rts_state_table *t = table(MODEL_MAX, 16, sizeof(struct val), ttl);
    int64_t ts = 1000000;
    int step, bad = 0;
    struct rts_state_stats s;

    memset(&md, 0, sizeof(md));
    md.ttl = ttl;
    for (step = 0; step < steps; step++) {
        /* a hot set and a long tail, so keys both stay and churn */
        uint64_t id = rnd() % 4 ? rnd() % 40 : rnd() % UNIVERSE;
        uint64_t r = rnd() % 100;
        int64_t t_ev;
        char k[32];
        int n = key_of(id, k), is_new, want;
        uint64_t h = hash_mod ? id % hash_mod : rts_hash64(k, (size_t)n);
        struct val *v;

        if (r < 80) {
            ts += (int64_t)(rnd() % 5); /* mostly forward */
        } else if (r < 82) {
            ts += (int64_t)(rnd() % (uint64_t)(ttl ? 2 * ttl : 1000)); /* a jump */
        }
        t_ev = r >= 95 ? ts - (int64_t)(rnd() % 300) : ts; /* some late events */
        want = model_get(id, t_ev);
        v = rts_state_get(t, k, (uint32_t)n, h, t_ev, &is_new);
        if (!v || is_new != want || (!is_new && v->id != id) || (is_new && v->hits != 0)) {
            if (bad++ < 5) {
                fprintf(stderr, "step %d id %llu: is_new %d want %d\n", step,
                        (unsigned long long)id, is_new, want);
            }
            continue;
        }
        v->id = id;
        v->hits++;
        if (v->hits != md.hits[id]) {
            bad++;
        }
    }
    CHECK_INT(bad, 0);
    s = stats(t);
    CHECK_INT(s.keys, md.keys);
    CHECK_INT(s.evicted, md.evicted);
    CHECK_INT(s.expired, md.expired);
    CHECK_INT(ndropped, md.ndrops);
    CHECK(ndropped <= sizeof(dropped) / sizeof(dropped[0]));
    CHECK(memcmp(dropped, md.drops, md.ndrops * sizeof(uint64_t)) == 0);
    CHECK(s.evicted > 100);
    if (ttl) {
        CHECK(s.expired > 100);
    }
    /* every live key is findable, with its value; nothing else is */
    for (uint64_t id = 0; id < UNIVERSE; id++) {
        char k[32];
        int n = key_of(id, k), is_new;
        uint64_t h = hash_mod ? id % hash_mod : rts_hash64(k, (size_t)n);

        if (md.present[id] && !model_expired(id)) {
            struct val *v = rts_state_get(t, k, (uint32_t)n, h, md.newest, &is_new);

            CHECK_INT(is_new, 0);
            CHECK_INT(v->id, id);
        }
    }
    rts_state_free(t);
}

TEST(churn_real_hash)
{
    churn(0, 0, 50000);
}

TEST(churn_ttl)
{
    churn(400, 0, 50000);
}

TEST(churn_colliding_hash)
{
    churn(0, 3, 30000);   /* three probe clusters, long shifts */
    churn(300, 1, 30000); /* every key on one hash: one cluster */
}

/* Many keys: all findable after inserting, then after evicting half. */
TEST(many_keys)
{
    const uint64_t n = 100000;
    struct rts_state_table *t = table(n, 16, sizeof(struct val), 0);
    uint64_t i, bad = 0;
    int is_new;

    for (i = 0; i < n; i++) {
        struct val *v = get(t, i, 0, &is_new);

        bad += !is_new;
        v->pad[1] = i * 7;
    }
    for (i = 0; i < n; i++) {
        struct val *v = get(t, i, 0, &is_new);

        bad += is_new || v->pad[1] != i * 7;
    }
    CHECK_INT(bad, 0);
    for (i = n; i < n + n / 2; i++) { /* evicts 0 .. n/2 - 1 */
        get(t, i, 0, &is_new);
    }
    CHECK_INT(stats(t).evicted, n / 2);
    CHECK_INT(ndropped, n / 2);
    for (i = n / 2; i < n; i++) {
        struct val *v = get(t, i, 0, &is_new);

        bad += is_new || v->pad[1] != i * 7;
    }
    CHECK_INT(bad, 0);
    CHECK_INT(stats(t).keys, n);
    rts_state_free(t);
}

/* Prefaulting threads step the table while its owner inserts keys. */
struct prefaulter {
    struct rts_state_table *t;
    int stop; /* atomic */
    long steps;
};

static void *prefault_main(void *arg)
{
    struct prefaulter *pf = arg;

    while (!__atomic_load_n(&pf->stop, __ATOMIC_ACQUIRE)) {
        pf->steps += rts_state_prefault(pf->t, 4096, 16 * 1024);
    }
    return NULL;
}

TEST(prefault_while_the_owner_works)
{
    const uint64_t n = 50000;
    struct rts_state_table *t = table(n, 16, sizeof(struct val), 0);
    struct prefaulter pf[2] = {{t, 0, 0}, {t, 0, 0}};
    pthread_t tid[2];
    uint64_t i, bad = 0;
    int is_new;

    for (int k = 0; k < 2; k++) {
        CHECK_INT(pthread_create(&tid[k], NULL, prefault_main, &pf[k]), 0);
    }
    for (i = 0; i < n; i++) {
        struct val *v = get(t, i, 0, &is_new);

        bad += !is_new;
        v->pad[0] = i + 1;
    }
    for (int k = 0; k < 2; k++) {
        __atomic_store_n(&pf[k].stop, 1, __ATOMIC_RELEASE);
        pthread_join(tid[k], NULL);
    }
    for (i = 0; i < n; i++) {
        bad += get(t, i, 0, &is_new)->pad[0] != i + 1 || is_new;
    }
    CHECK_INT(bad, 0);
    CHECK(pf[0].steps + pf[1].steps > 0);
    while (rts_state_prefault(t, 4096, 16 * 1024)) { /* the rest: the table is full */
    }
    CHECK_INT(rts_state_prefault(t, 4096, 16 * 1024), 0);
    rts_state_free(t);
}

/* Two threads step one region: together they commit every page of it, and
 * then both see nothing left. */
struct stepper {
    struct rts_populate *r;
    unsigned char *base;
    size_t to;
    long claimed;
};

static void *step_main(void *arg)
{
    struct stepper *s = arg;

    while (rts_populate_step(s->r, s->base, s->to, 3 * RTS_POPULATE_PAGE)) {
        s->claimed++;
    }
    return NULL;
}

TEST(populate_two_threads)
{
    const size_t bytes = 4u << 20;
    unsigned char *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    struct rts_populate r = {0, 0};
    struct stepper st[2] = {{&r, base, bytes - 100, 0}, {&r, base, bytes - 100, 0}};
    unsigned char vec[(4u << 20) / RTS_POPULATE_PAGE];
    size_t resident = 0;
    pthread_t tid[2];

    CHECK(base != MAP_FAILED);
    for (int k = 0; k < 2; k++) {
        CHECK_INT(pthread_create(&tid[k], NULL, step_main, &st[k]), 0);
    }
    for (int k = 0; k < 2; k++) {
        pthread_join(tid[k], NULL);
    }
    CHECK_INT(rts_populate_step(&r, base, bytes - 100, RTS_POPULATE_PAGE), 0);
    if (!r.off) { /* a kernel with MADV_POPULATE_WRITE (Linux 5.14+) */
        CHECK_INT(r.ready, bytes);
        CHECK(st[0].claimed + st[1].claimed >= (long)(bytes / (3 * RTS_POPULATE_PAGE)));
        CHECK_INT(mincore(base, bytes, vec), 0);
        for (size_t i = 0; i < sizeof(vec); i++) {
            resident += vec[i] & 1;
        }
        CHECK_INT(resident, sizeof(vec));
    }
    munmap(base, bytes);
}

int main(void)
{
    RUN(create_errors);
    RUN(insert_find_persist);
    RUN(collisions_and_lengths);
    RUN(max_key_len_64);
    RUN(lru_eviction_order);
    RUN(ttl_expiry);
    RUN(ttl_expired_on_lookup);
    RUN(no_ttl);
    RUN(churn_real_hash);
    RUN(churn_ttl);
    RUN(churn_colliding_hash);
    RUN(many_keys);
    RUN(prefault_while_the_owner_works);
    RUN(populate_two_threads);
    return TEST_EXIT();
}
