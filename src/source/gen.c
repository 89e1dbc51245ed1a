/*
 * gen.c - the synthetic transaction generator (contract in gen.h).
 *
 * Determinism: everything that shapes the bytes is integer arithmetic: the
 * PRNG (xoshiro256**, seeded through splitmix64), event time in 2^-20 ms
 * units, log2 and exp2 in fixed point, normal variates as a scaled sum of four
 * uniforms; the log2/exp2 tables are built from integers too. Doubles appear
 * only in rts_gen_new, where each option becomes a fixed-point constant by a
 * few IEEE divisions and multiplications, with no multiply-add to fuse. So the
 * stream depends on neither libm, FMA contraction, nor the machine.
 *
 * Cards and merchants are not stored. A card's profile (home country, typical
 * spend and spread, usual merchants, active hours, travel habit) is a hash of
 * the seed and its number, recomputed when the card is drawn; a merchant's
 * MCC likewise. Memory is fixed at creation and does not grow with cards.
 *
 * Slots: event time is a Poisson process of density events_per_sec; each slot
 * is, by precedence, (1) a bad line, with probability bad_rate; (2) the next
 * event of the active fraud episode due soonest, if it is due; (3) a fresh
 * event, which may open a new episode (and then is its first event) or else
 * is the legit event of a card drawn by activity and hour. Active episodes
 * live in a min-heap on (due time, creation order) whose capacity is fixed at
 * creation from the expected concurrency; a full heap postpones new episodes.
 * The clock starts at WARM_MS, not 0: the hour before start_ms is simulated
 * for fraud only, so the stream starts with the episodes already under way.
 *
 * Fraud share: a budget (Q32 events) gains fraud_rate per line and loses the
 * planned length of each episode opened; the chance to open one is a base
 * rate scaled by the budget (16 events owed double it), so the long-run share
 * is fraud_rate whatever the episode mix and hour.
 */
#include "source/gen.h"

#include <stdlib.h>
#include <string.h>

#include "core/fmt.h"

#define GOLDEN 0x9E3779B97F4A7C15u
#define CLOCK_SHIFT 20 /* event clock unit: 2^-20 ms */
#define HOUR_MS 3600000
#define DAY_MS 86400000
#define START_MS_MAX 253402300799999 /* 9999-12-31T23:59:59.999Z */
#define CARD_TRIES 24                /* draws to find a card awake at this hour */
#define FLAG_TRIES 32                /* draws to find a merchant of a wanted kind */
#define HEAP_MIN ((size_t)64)
#define HEAP_MAX ((size_t)1 << 20) /* 32 MB of episodes */
#define EP_MEAN_LEN 7.5            /* events per episode, about; seeds the base rate */
#define EP_MEAN_SECS 900.0         /* generous mean episode span; sizes the heap */
#define BUDGET_MAX ((int64_t)256 << 32)
#define LOG2_3500_Q16 771564 /* a median card spends $35 */
#define SQRT3_Q16 113512
#define LN2_Q16 45426
#define USUAL_Q16 53740    /* 82% of spend goes to the card's usual merchants */
#define BIG_Q16 262        /* 0.4% of legit spend is a big purchase */
#define ABROAD_Q8 218      /* 85% of a travel day's spend is abroad */
#define LONG_CARD_BYTES 80 /* the card_id of a BAD_LONG_CARD line */
#define WARM_MS 3600000    /* the longest episode; the clock starts here */

enum region { R_NA, R_EU, R_EE, R_APAC, R_LATAM, R_MEA };

static const struct country {
    char code[3];
    uint8_t region;
    uint16_t home;  /* weight as a home country, out of 1024 */
    uint8_t travel; /* legit travellers go there */
    uint8_t far;    /* fraud is run from there */
} countries[] = {
    {"US", R_NA, 820, 1, 0},  {"CA", R_NA, 50, 1, 0},   {"MX", R_NA, 20, 1, 0},
    {"GB", R_EU, 30, 1, 0},   {"DE", R_EU, 20, 1, 0},   {"FR", R_EU, 20, 1, 0},
    {"ES", R_EU, 10, 1, 0},   {"IT", R_EU, 10, 1, 0},   {"NL", R_EU, 4, 1, 0},
    {"JP", R_APAC, 10, 1, 0}, {"AU", R_APAC, 10, 1, 0}, {"SG", R_APAC, 0, 1, 0},
    {"IN", R_APAC, 10, 0, 1}, {"CN", R_APAC, 0, 0, 1},  {"PH", R_APAC, 0, 0, 1},
    {"VN", R_APAC, 0, 0, 1},  {"ID", R_APAC, 0, 0, 1},  {"BR", R_LATAM, 10, 1, 1},
    {"AR", R_LATAM, 0, 1, 0}, {"CO", R_LATAM, 0, 0, 1}, {"NG", R_MEA, 0, 0, 1},
    {"ZA", R_MEA, 0, 1, 0},   {"AE", R_MEA, 0, 1, 0},   {"TR", R_MEA, 0, 1, 1},
    {"RU", R_EE, 0, 0, 1},    {"UA", R_EE, 0, 0, 1},    {"RO", R_EE, 0, 0, 1},
};
#define N_COUNTRIES (sizeof(countries) / sizeof(countries[0]))
#define FAR_FALLBACK 24 /* RU: no home country is in its region */

enum { MCC_DIGITAL = 1, MCC_BIG = 2, MCC_RISKY = 4 };

static const struct mcc {
    uint16_t code;
    uint16_t weight; /* share of merchants, out of 1024 */
    uint8_t flags;
} mccs[] = {
    {5411, 215, 0},                  /* grocery */
    {5812, 120, 0},                  /* restaurants */
    {5814, 110, 0},                  /* fast food */
    {5541, 100, 0},                  /* fuel */
    {5912, 50, 0},                   /* drug stores */
    {5311, 40, MCC_BIG | MCC_RISKY}, /* department stores */
    {5999, 50, MCC_RISKY},           /* misc retail */
    {5691, 40, MCC_RISKY},           /* clothing */
    {5651, 20, 0},                   /* family clothing */
    {4121, 40, 0},                   /* taxis */
    {5942, 15, 0},                   /* books */
    {5200, 25, 0},                   /* home supply */
    {5815, 30, MCC_DIGITAL},         /* digital media */
    {5816, 15, MCC_DIGITAL},         /* games */
    {5818, 20, MCC_DIGITAL},         /* digital goods */
    {4814, 20, MCC_DIGITAL},         /* telecom */
    {5732, 30, MCC_BIG | MCC_RISKY}, /* electronics */
    {5944, 10, MCC_BIG | MCC_RISKY}, /* jewelry */
    {4511, 20, MCC_BIG},             /* airlines */
    {7011, 25, MCC_BIG},             /* hotels */
    {6051, 5, MCC_BIG | MCC_RISKY},  /* quasi-cash */
    {4829, 5, MCC_RISKY},            /* wire transfer */
    {5967, 10, MCC_DIGITAL},         /* direct marketing */
    {7995, 9, MCC_RISKY},            /* gambling */
};
#define N_MCCS (sizeof(mccs) / sizeof(mccs[0]))

/* Chance (out of 256) that a drawn card transacts at this UTC hour. */
static const uint8_t day_hours[24] = {60,  16,  8,   6,   8,   24,  80,  150, 210, 240, 255, 255,
                                      255, 255, 255, 255, 255, 255, 255, 250, 230, 200, 160, 110};
static const uint8_t owl_hours[24] = {230, 230, 230, 230, 230, 230, 220, 200, 200, 200, 200, 200,
                                      200, 200, 200, 200, 200, 200, 200, 210, 220, 230, 230, 230};

/* 2^(2^-i) for i = 1..16, Q30 */
static const uint32_t exp2_frac[16] = {
    1518500250, 1276901417, 1170923762, 1121280436, 1097253708, 1085434106, 1079572136, 1076653033,
    1075196443, 1074468888, 1074105294, 1073923544, 1073832680, 1073787251, 1073764537, 1073753181,
};

enum ep_kind { EP_TEST, EP_LARGE, EP_SPREE, EP_NIGHT, EP_ABROAD };

enum bad_kind {
    BAD_TRUNCATED,
    BAD_NO_AMOUNT,
    BAD_AMOUNT_STRING,
    BAD_NEGATIVE,
    BAD_TS,
    BAD_UTF8,
    BAD_LONG_CARD,
    BAD_NOT_OBJECT,
    BAD__COUNT
};

struct episode {
    uint64_t due;   /* event clock of its next event */
    uint64_t order; /* creation number: equal due times keep creation order */
    uint32_t card;
    uint32_t med;    /* the card's typical spend, cents */
    uint8_t kind;    /* enum ep_kind of the first phase */
    uint8_t country; /* index in countries[] of all its events */
    uint8_t left1;   /* events left in the first phase */
    uint8_t left2;   /* cash-out (large) events left after it */
};

struct card {
    uint64_t h; /* profile hash; the fields below derive from it */
    uint32_t n;
    int32_t med_l2; /* log2 of the typical spend in cents, Q16 */
    int32_t sig_l2; /* spread of amounts around it, log2 units, Q16 */
    uint8_t home;
    uint8_t n_usual;
    uint16_t travel; /* chance per day to be travelling, Q16 */
};

struct txn {
    uint64_t cents;
    uint32_t card, merchant;
    uint16_t mcc;
    uint8_t country;
    uint8_t fraud;
};

struct rts_gen {
    struct rts_gen_opts o;
    uint64_t s[4]; /* xoshiro256** */
    uint64_t card_key, merch_key, travel_key;
    uint64_t card_mul, card_add, merch_mul, merch_add; /* activity rank -> number */
    uint64_t clock;   /* event time of the next line, 2^-20 ms after start_ms */
    uint64_t gap_q20; /* mean gap between lines */
    uint64_t seq;     /* lines produced */
    int64_t budget;   /* fraud events owed, Q32 */
    uint64_t fraud_q32, bad_q32, start_q32;
    unsigned bad_next;
    struct rts_gen_stats stats;
    uint8_t home_slot[1024], mcc_slot[1024];
    uint32_t exp2_hi[256], exp2_lo[256]; /* 2^(i/256), 2^(i/65536), Q30 */
    uint32_t log2_tab[1025];             /* log2(1 + i/1024), Q20 */
    uint8_t far[N_COUNTRIES], travel[N_COUNTRIES];
    unsigned n_far, n_travel;
    size_t line_len; /* bytes of line[] not yet delivered */
    int line_fraud, line_bad;
    char line[RTS_GEN_LINE_MAX];
    size_t heap_n, heap_cap;
    uint64_t ep_order;
    struct episode heap[];
};

/* ---- integers ---------------------------------------------------------------------------- */

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng(struct rts_gen *g)
{
    uint64_t *s = g->s;
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *x)
{
    *x += GOLDEN;
    return mix64(*x);
}

/* Uniform in [0, n) from the top 32 bits of @u; n <= 2^32. */
static inline uint64_t below(uint64_t u, uint64_t n)
{
    return ((u >> 32) * n) >> 32;
}

static inline uint64_t between(struct rts_gen *g, uint64_t lo, uint64_t hi)
{
    return lo + below(rng(g), hi - lo + 1);
}

/* Rank in [0, n) with density ~ rank^-1/2: a few ranks are much busier. */
static inline uint64_t zipf_rank(uint64_t u, uint64_t n)
{
    uint64_t a = u >> 32;

    a = (a * a) >> 32;
    return (a * n) >> 32;
}

/* Standard normal (Irwin-Hall of four 16-bit uniforms, within +-3.46), Q16. */
static inline int64_t normal_q16(uint64_t u)
{
    int64_t s = (int64_t)((u & 0xffff) + ((u >> 16) & 0xffff) + ((u >> 32) & 0xffff) + (u >> 48));

    return (s - 131070) * SQRT3_Q16 / 65536;
}

/* 2^(f / 2^16) for f in [0, 2^16), Q30, one factor 2^(2^-i) per bit: slow but exact
 * to the rounding of each product; fills the tables of exp2_q16(). */
static uint64_t exp2_frac_q30(unsigned f)
{
    uint64_t r = (uint64_t)1 << 30;

    for (unsigned i = 0; i < 16; i++) {
        if (f & (0x8000u >> i)) {
            r = (r * exp2_frac[i] + ((uint64_t)1 << 29)) >> 30;
        }
    }
    return r;
}

/* log2(m / 2^30) for m in [2^30, 2^31), Q20, by repeated squaring; fills log2_tab. */
static uint32_t log2_mant_q20(uint64_t m)
{
    uint32_t frac = 0;

    for (unsigned i = 0; i < 20; i++) {
        m = (m * m) >> 30;
        if (m >= (uint64_t)1 << 31) {
            m >>= 1;
            frac |= (uint32_t)1 << (19 - i);
        }
    }
    return frac;
}

/* round(2^(x / 2^16)), x clamped to [0, 40]. */
static inline uint64_t exp2_q16(const struct rts_gen *g, int64_t x)
{
    uint64_t r;
    unsigned n;

    if (x < 0) {
        x = 0;
    }
    if (x > (int64_t)40 << 16) {
        x = (int64_t)40 << 16;
    }
    n = (unsigned)(x >> 16);
    r = ((uint64_t)g->exp2_hi[(x >> 8) & 255] * g->exp2_lo[x & 255] + ((uint64_t)1 << 29)) >> 30;
    if (n >= 30) {
        return r << (n - 30);
    }
    return (r + ((uint64_t)1 << (29 - n))) >> (30 - n);
}

/* An exponential variate of mean 1, Q16: -ln(U) for U from the top 32 bits of @u. */
static inline uint64_t exp_q16(const struct rts_gen *g, uint64_t u)
{
    uint64_t v = (u >> 32) | 1;
    unsigned k = 63 - (unsigned)__builtin_clzll(v);
    uint64_t frac = (v << (31 - k)) & 0x7fffffff; /* mantissa bits below the leading one */
    unsigned i = (unsigned)(frac >> 21);
    uint64_t r = (frac >> 1) & 0xfffff, lo = g->log2_tab[i], hi = g->log2_tab[i + 1];
    uint64_t l2 = ((uint64_t)k << 20) + lo + (((hi - lo) * r) >> 20);

    return ((((uint64_t)32 << 20) - l2) * LN2_Q16) >> 20;
}

static uint64_t clock_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static unsigned hour_of(int64_t ts)
{
    int64_t d = ts % DAY_MS;

    return (unsigned)((d < 0 ? d + DAY_MS : d) / HOUR_MS);
}

/* Event time (epoch ms) of a clock value; the clock reads WARM_MS at start_ms. */
static int64_t ts_of(const struct rts_gen *g, uint64_t clock)
{
    return g->o.start_ms + (int64_t)(clock >> CLOCK_SHIFT) - WARM_MS;
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* An odd multiplier below 2^32 coprime with @n: rank * mul + add (mod n) permutes [0, n). */
static uint64_t coprime(uint64_t x, uint64_t n)
{
    uint64_t m = (x >> 33) | 1;

    while (gcd(m, n) != 1) {
        m += 2;
    }
    return m;
}

/* ---- cards, merchants, countries --------------------------------------------------------- */

static inline uint64_t card_hash(const struct rts_gen *g, uint64_t n)
{
    return mix64(g->card_key ^ (n * GOLDEN));
}

static inline int card_is_owl(uint64_t h)
{
    return ((h >> 10) & 63) < 6; /* 9% of cards keep late hours */
}

static void card_profile(const struct rts_gen *g, uint32_t n, uint64_t h, struct card *p)
{
    unsigned t = (unsigned)((h >> 27) & 255);

    p->h = h;
    p->n = n;
    p->home = g->home_slot[h & 1023];
    p->sig_l2 = 36045 + (int32_t)((h >> 16) & 255) * 154; /* 0.55 .. 1.15 octaves */
    p->n_usual = (uint8_t)(2 + ((h >> 24) & 7));
    p->travel = (uint16_t)(t < 20 ? 5243 : 131 + t * 4); /* 8% a day, else 0.2% .. 1.7% */
    p->med_l2 = LOG2_3500_Q16 + (int32_t)normal_q16(mix64(h ^ 0x5851F42D4C957F2Du));
}

/* A card by activity rank, accepted by its active hours (bounded retries). */
static void pick_card(struct rts_gen *g, unsigned hour, struct card *p)
{
    uint64_t n = 0, h = 0;

    for (unsigned i = 0; i < CARD_TRIES; i++) {
        uint64_t u = rng(g);
        unsigned w;

        n = (zipf_rank(u, g->o.cards) * g->card_mul + g->card_add) % g->o.cards;
        h = card_hash(g, n);
        w = card_is_owl(h) ? owl_hours[hour] : day_hours[hour];
        if ((u & 255) < w) {
            break;
        }
    }
    card_profile(g, (uint32_t)n, h, p);
}

static inline uint32_t merchant_popular(const struct rts_gen *g, uint64_t u)
{
    return (uint32_t)((zipf_rank(u, g->o.merchants) * g->merch_mul + g->merch_add) %
                      g->o.merchants);
}

static inline uint32_t merchant_usual(const struct rts_gen *g, const struct card *p, unsigned k)
{
    return merchant_popular(g, mix64(p->h + (k + 1) * 0xD1B54A32D192ED03u));
}

static inline unsigned mcc_of(const struct rts_gen *g, uint32_t m)
{
    return g->mcc_slot[mix64(g->merch_key ^ (m * GOLDEN)) & 1023];
}

/* A merchant whose MCC has one of @flags, popular or uniform (bounded retries). */
static uint32_t merchant_with(struct rts_gen *g, unsigned flags, int popular)
{
    uint32_t m = 0;

    for (unsigned i = 0; i < FLAG_TRIES; i++) {
        uint64_t u = rng(g);

        m = popular ? merchant_popular(g, u) : (uint32_t)below(u, g->o.merchants);
        if (mccs[mcc_of(g, m)].flags & flags) {
            break;
        }
    }
    return m;
}

/* Where a card travels on a given day: 60% within its home region. */
static uint8_t travel_dest(const struct rts_gen *g, uint8_t home, uint64_t bits)
{
    int near = (bits & 255) < 154;

    for (unsigned i = 0; i < 16; i++) {
        uint8_t c;

        bits = mix64(bits + i);
        c = g->travel[below(bits, g->n_travel)];
        if (c != home && (!near || i >= 8 || countries[c].region == countries[home].region)) {
            return c;
        }
    }
    return home == 0 ? 1 : 0;
}

static uint8_t far_country(struct rts_gen *g, uint8_t home)
{
    for (unsigned i = 0; i < 16; i++) {
        uint8_t c = g->far[below(rng(g), g->n_far)];

        if (countries[c].region != countries[home].region) {
            return c;
        }
    }
    return FAR_FALLBACK;
}

/* ---- events ------------------------------------------------------------------------------ */

static void legit_event(struct rts_gen *g, int64_t ts, struct txn *t)
{
    struct card p;
    uint64_t u, th;
    int away;

    pick_card(g, hour_of(ts), &p);
    u = rng(g);
    th = mix64(g->travel_key ^ p.h ^ ((uint64_t)(ts / DAY_MS) * GOLDEN));
    away = (th & 0xffff) < p.travel && (u & 255) < ABROAD_Q8;
    t->card = p.n;
    t->fraud = 0;
    t->country = away ? travel_dest(g, p.home, th >> 16) : p.home;
    if (((u >> 8) & 0xffff) < BIG_Q16) {
        t->cents = exp2_q16(g, p.med_l2) * between(g, 5, 30) + below(rng(g), 100);
        t->merchant = merchant_with(g, MCC_BIG, 1);
    } else {
        int64_t z = normal_q16(rng(g));

        t->cents = exp2_q16(g, p.med_l2 + (int64_t)p.sig_l2 * z / 65536);
        if (t->cents == 0) {
            t->cents = 1;
        }
        if (away || ((u >> 24) & 0xffff) >= USUAL_Q16) {
            t->merchant = merchant_popular(g, rng(g));
        } else {
            uint64_t a = (u >> 40) & 0xffff;

            a = (a * a) >> 16; /* the first usual merchants are the most usual */
            t->merchant = merchant_usual(g, &p, (unsigned)((a * p.n_usual) >> 16));
        }
    }
    t->mcc = mccs[mcc_of(g, t->merchant)].code;
}

static inline int ep_before(const struct episode *a, const struct episode *b)
{
    return a->due < b->due || (a->due == b->due && a->order < b->order);
}

static void heap_up(struct rts_gen *g, size_t i)
{
    struct episode e = g->heap[i];

    while (i > 0 && ep_before(&e, &g->heap[(i - 1) / 2])) {
        g->heap[i] = g->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    g->heap[i] = e;
}

static void heap_down(struct rts_gen *g, size_t i)
{
    struct episode e = g->heap[i];

    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= g->heap_n) {
            break;
        }
        if (c + 1 < g->heap_n && ep_before(&g->heap[c + 1], &g->heap[c])) {
            c++;
        }
        if (!ep_before(&g->heap[c], &e)) {
            break;
        }
        g->heap[i] = g->heap[c];
        i = c;
    }
    g->heap[i] = e;
}

/* The chance to open an episode at a fresh slot follows the fraud budget. */
static int want_episode(struct rts_gen *g)
{
    int64_t m = 256 + g->budget / ((int64_t)1 << 28); /* Q8; 16 events owed double it */

    if (m <= 0) {
        return 0;
    }
    if (m > 1024) {
        m = 1024;
    }
    return (rng(g) >> 32) < ((g->start_q32 * (uint64_t)m) >> 8);
}

/* Plan a fraud episode opening at @clock on a uniformly drawn card. */
static void episode_plan(struct rts_gen *g, uint64_t clock, struct episode *e)
{
    unsigned hour = hour_of(ts_of(g, clock));
    uint64_t u = rng(g), n = 0, h = 0;
    unsigned pick = (unsigned)(u & 255), cash = (unsigned)((u >> 16) & 255);
    struct card p;
    int foreign;

    if (hour >= 1 && hour < 5) { /* odd hours: mostly quiet spending at new merchants */
        e->kind = pick < 102   ? EP_NIGHT
                  : pick < 166 ? EP_TEST
                  : pick < 204 ? EP_SPREE
                  : pick < 230 ? EP_LARGE
                               : EP_ABROAD;
    } else {
        e->kind = pick < 77 ? EP_TEST : pick < 141 ? EP_LARGE : pick < 205 ? EP_SPREE : EP_ABROAD;
    }
    foreign = e->kind == EP_ABROAD || ((u >> 8) & 255) < 77;
    e->left2 = 0;
    switch (e->kind) {
    case EP_TEST:
        e->left1 = (uint8_t)between(g, 5, 20);
        if (cash < 128) { /* tested, then cashed out */
            e->left2 = (uint8_t)(1 + ((u >> 24) & 1));
        }
        break;
    case EP_LARGE:
        e->left1 = (uint8_t)between(g, 1, 3);
        break;
    case EP_SPREE:
        e->left1 = (uint8_t)between(g, 4, 12);
        e->left2 = cash < 77;
        break;
    case EP_NIGHT:
        e->left1 = (uint8_t)between(g, 2, 6);
        e->left2 = cash < 51;
        break;
    default:
        e->left1 = (uint8_t)between(g, 2, 8);
        break;
    }
    for (unsigned i = 0; i < 4; i++) { /* night fraud is odd for a card that sleeps */
        n = below(rng(g), g->o.cards);
        h = card_hash(g, n);
        if (e->kind != EP_NIGHT || !card_is_owl(h)) {
            break;
        }
    }
    card_profile(g, (uint32_t)n, h, &p);
    e->card = p.n;
    e->med = (uint32_t)exp2_q16(g, p.med_l2);
    e->country = foreign ? far_country(g, p.home) : p.home;
    e->due = clock;
    e->order = g->ep_order++;
}

/* Count off the due event of @e and schedule its next; 0 when none is left.
 * Times follow the plan, not the slots, so a late event does not stretch a burst. */
static int episode_step(struct rts_gen *g, struct episode *e)
{
    static const uint16_t gap_lo[] = {2, 60, 20, 60, 30}, gap_hi[] = {30, 600, 240, 600, 300};
    uint64_t gap_ms;

    if (e->left1) {
        e->left1--;
        if (e->left1) { /* seconds between events, by kind */
            gap_ms = between(g, gap_lo[e->kind] * 1000u, gap_hi[e->kind] * 1000u);
        } else if (e->left2) {
            gap_ms = between(g, 60000, 600000); /* the pause before cashing out */
        } else {
            return 0;
        }
    } else {
        if (--e->left2 == 0) {
            return 0;
        }
        gap_ms = between(g, 60000, 300000);
    }
    e->due = clock_add(e->due, gap_ms << CLOCK_SHIFT);
    return 1;
}

static void heap_push(struct rts_gen *g, const struct episode *e)
{
    g->heap[g->heap_n++] = *e;
    heap_up(g, g->heap_n - 1);
}

/* The due event of the episode at the heap top. */
static void episode_event(struct rts_gen *g, struct txn *t)
{
    struct episode *e = &g->heap[0];

    t->card = e->card;
    t->country = e->country;
    t->fraud = 1;
    switch (e->left1 ? e->kind : EP_LARGE) {
    case EP_TEST: /* small probes at digital merchants */
        t->cents = between(g, 50, 500);
        t->merchant = merchant_with(g, MCC_DIGITAL, 0);
        break;
    case EP_LARGE: /* 10-50x the card's typical spend */
        t->cents = (uint64_t)e->med * between(g, 10, 50) + below(rng(g), 100);
        t->merchant = merchant_with(g, MCC_BIG, 0);
        break;
    case EP_SPREE: /* many new merchants, half of them risky */
        t->cents = (uint64_t)e->med * between(g, 8, 64) / 16;
        t->merchant = (rng(g) >> 63) ? merchant_with(g, MCC_RISKY, 0)
                                     : (uint32_t)below(rng(g), g->o.merchants);
        break;
    case EP_NIGHT:
        t->cents = (uint64_t)e->med * between(g, 8, 48) / 16;
        t->merchant = (uint32_t)below(rng(g), g->o.merchants);
        break;
    default: /* EP_ABROAD */
        t->cents = (uint64_t)e->med * between(g, 16, 80) / 16;
        t->merchant = (uint32_t)below(rng(g), g->o.merchants);
        break;
    }
    if (t->cents == 0) {
        t->cents = 1;
    }
    t->mcc = mccs[mcc_of(g, t->merchant)].code;
    if (episode_step(g, e)) {
        heap_down(g, 0);
    } else {
        g->heap[0] = g->heap[--g->heap_n];
        if (g->heap_n) {
            heap_down(g, 0);
        }
    }
}

/* Open an episode due now; 0 if the heap is full. */
static int episode_open(struct rts_gen *g)
{
    struct episode e;

    if (g->heap_n == g->heap_cap) {
        return 0;
    }
    episode_plan(g, g->clock, &e);
    g->budget -= (int64_t)(e.left1 + e.left2) << 32;
    heap_push(g, &e);
    return 1;
}

/* Start in the steady state: open the episodes of the WARM_MS before start_ms
 * at the base rate and drop their events before it, so that a short stream
 * has its share of fraud from the first line. */
static void warm_up(struct rts_gen *g, double per_sec)
{
    uint64_t end = (uint64_t)WARM_MS << CLOCK_SHIFT, c, mean;
    double span_ms = (double)WARM_MS, mean_ms;

    if (per_sec <= 0) {
        return;
    }
    if (span_ms > 2000.0 * (double)g->heap_cap / per_sec) { /* the heap holds no more */
        span_ms = 2000.0 * (double)g->heap_cap / per_sec;
    }
    mean_ms = 1000.0 / per_sec;
    if (mean_ms > (double)WARM_MS) {
        mean_ms = (double)WARM_MS;
    }
    mean = (uint64_t)(mean_ms * (double)(1 << CLOCK_SHIFT));
    c = end - ((uint64_t)span_ms << CLOCK_SHIFT);
    for (;;) {
        struct episode e;
        int live = 1;

        c += (mean * exp_q16(g, rng(g))) >> 16;
        if (c >= end || g->heap_n == g->heap_cap) {
            break;
        }
        episode_plan(g, c, &e);
        while (live && e.due < end) {
            live = episode_step(g, &e);
        }
        if (live) {
            heap_push(g, &e);
        }
    }
}

/* ---- text -------------------------------------------------------------------------------- */

#define PUT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) + sizeof(lit) - 1)

/* The line always goes on after a number, so rts_fmt_u64's NUL is overwritten. */
static char *put_u64(char *p, uint64_t v)
{
    return p + rts_fmt_u64(p, v);
}

static char *put_cents(char *p, uint64_t c)
{
    p = put_u64(p, c / 100);
    *p++ = '.';
    *p++ = (char)('0' + c % 100 / 10);
    *p++ = (char)('0' + c % 10);
    return p;
}

/* Write @t as a line into @line (RTS_GEN_LINE_MAX bytes), spoilt as @bad says
 * (-1: not), and return its length. */
static size_t render(char *line, const struct txn *t, uint64_t seq, int64_t ts, int bad)
{
    char *p = line, *v;
    size_t n;

    if (bad == BAD_NOT_OBJECT) {
        p = PUT(p, "[1,2]\n");
        return (size_t)(p - line);
    }
    p = PUT(p, "{\"txn_id\":\"t-");
    p = put_u64(p, seq);
    p = PUT(p, "\",\"card_id\":\"c-");
    v = p - 2;
    p = put_u64(p, t->card);
    if (bad == BAD_LONG_CARD) {
        *p++ = '-';
        while (p - v < LONG_CARD_BYTES) {
            *p++ = 'x';
        }
    }
    p = PUT(p, "\",\"ts\":");
    if (bad == BAD_TS) {
        p = PUT(p, "\"yesterday\"");
    } else {
        p = put_u64(p, (uint64_t)ts);
    }
    if (bad != BAD_NO_AMOUNT) {
        p = PUT(p, ",\"amount\":");
        if (bad == BAD_AMOUNT_STRING) {
            *p++ = '"';
        } else if (bad == BAD_NEGATIVE) {
            *p++ = '-';
        }
        p = put_cents(p, t->cents);
        if (bad == BAD_AMOUNT_STRING) {
            *p++ = '"';
        }
    }
    p = PUT(p, ",\"merchant_id\":\"m-");
    if (bad == BAD_UTF8) {
        p = PUT(p, "\xff\xfe"); /* bytes that never occur in UTF-8 */
    }
    p = put_u64(p, t->merchant);
    p = PUT(p, "\",\"mcc\":");
    p = put_u64(p, t->mcc);
    p = PUT(p, ",\"country\":\"");
    memcpy(p, countries[t->country].code, 2);
    p += 2;
    p = PUT(p, "\",\"is_fraud\":");
    *p++ = t->fraud ? '1' : '0';
    p = PUT(p, "}\n");
    n = (size_t)(p - line);
    if (bad == BAD_TRUNCATED) {
        n /= 2;
        line[n++] = '\n';
    }
    return n;
}

/* Produce the next line into g->line. */
static void produce(struct rts_gen *g)
{
    int64_t ts = ts_of(g, g->clock);
    struct txn t;
    int bad = -1;

    g->seq++;
    if (g->bad_q32 && (rng(g) >> 32) < g->bad_q32) {
        bad = (int)g->bad_next;
        g->bad_next = (g->bad_next + 1) % BAD__COUNT;
        legit_event(g, ts, &t);
    } else if (g->heap_n && g->heap[0].due <= g->clock) {
        episode_event(g, &t);
    } else if (g->fraud_q32 && want_episode(g) && episode_open(g)) {
        episode_event(g, &t);
    } else {
        legit_event(g, ts, &t);
    }
    g->line_len = render(g->line, &t, g->seq, ts, bad);
    g->line_fraud = t.fraud;
    g->line_bad = bad >= 0;
    g->budget += (int64_t)g->fraud_q32;
    if (g->budget > BUDGET_MAX) {
        g->budget = BUDGET_MAX;
    } else if (g->budget < -BUDGET_MAX) {
        g->budget = -BUDGET_MAX;
    }
    g->clock = clock_add(g->clock, (g->gap_q20 * exp_q16(g, rng(g))) >> 16);
}

/* ---- interface --------------------------------------------------------------------------- */

void rts_gen_opts_default(struct rts_gen_opts *o)
{
    o->seed = 1;
    o->fraud_rate = 0.01;
    o->bad_rate = 0.0;
    o->cards = 100000;
    o->merchants = 20000;
    o->start_ms = 1700000000000;
    o->events_per_sec = 500;
}

static enum rts_err check_opts(const struct rts_gen_opts *o, struct rts_errbuf *eb)
{
    if (!(o->fraud_rate >= 0 && o->fraud_rate <= 0.5)) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                        "generator: fraud_rate must be in [0, 0.5], got %g", o->fraud_rate);
    }
    if (!(o->bad_rate >= 0 && o->bad_rate <= 0.5)) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "generator: bad_rate must be in [0, 0.5], got %g",
                        o->bad_rate);
    }
    if (o->fraud_rate + o->bad_rate > 0.9) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                        "generator: fraud_rate + bad_rate must be at most 0.9, got %g",
                        o->fraud_rate + o->bad_rate);
    }
    if (o->cards < 1 || o->cards > UINT32_MAX) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                        "generator: cards must be in [1, 4294967295], got %llu",
                        (unsigned long long)o->cards);
    }
    if (o->merchants < 1 || o->merchants > UINT32_MAX) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                        "generator: merchants must be in [1, 4294967295], got %llu",
                        (unsigned long long)o->merchants);
    }
    if (o->start_ms < 0 || o->start_ms > START_MS_MAX) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                        "generator: start_ms must be epoch ms in [0, %lld], got %lld",
                        (long long)START_MS_MAX, (long long)o->start_ms);
    }
    if (!(o->events_per_sec >= 0.001 && o->events_per_sec <= 1e7)) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                        "generator: events_per_sec must be in [0.001, 1e7], got %g",
                        o->events_per_sec);
    }
    return RTS_ERR_OK;
}

struct rts_gen *rts_gen_new(const struct rts_gen_opts *o, struct rts_errbuf *eb)
{
    struct rts_gen *g;
    double need, fresh, gap;
    size_t cap = HEAP_MIN, n;
    uint64_t x;

    if (!o) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "generator: no options");
        return NULL;
    }
    if (check_opts(o, eb)) {
        return NULL;
    }
    /* episodes open at fraud_rate * eps / EP_MEAN_LEN per second and last about
     * EP_MEAN_SECS (the mix averages about 600 s): room for twice that many */
    need = 2.0 * (o->fraud_rate * o->events_per_sec / EP_MEAN_LEN) * EP_MEAN_SECS;
    while (cap < HEAP_MAX && (double)cap < need + (double)HEAP_MIN) {
        cap *= 2;
    }
    g = calloc(1, sizeof(*g) + cap * sizeof(g->heap[0]));
    if (!g) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "generator: out of memory for %zu episodes", cap);
        return NULL;
    }
    g->o = *o;
    g->heap_cap = cap;
    x = o->seed;
    for (unsigned i = 0; i < 4; i++) {
        g->s[i] = splitmix64(&x);
    }
    g->card_key = splitmix64(&x);
    g->merch_key = splitmix64(&x);
    g->travel_key = splitmix64(&x);
    g->card_mul = coprime(splitmix64(&x), o->cards);
    g->card_add = splitmix64(&x) % o->cards;
    g->merch_mul = coprime(splitmix64(&x), o->merchants);
    g->merch_add = splitmix64(&x) % o->merchants;

    gap = 1000.0 / o->events_per_sec;
    g->gap_q20 = (uint64_t)(gap * (double)(1 << CLOCK_SHIFT));
    if (g->gap_q20 == 0) {
        g->gap_q20 = 1;
    }
    g->fraud_q32 = (uint64_t)(o->fraud_rate * 4294967296.0);
    g->bad_q32 = (uint64_t)(o->bad_rate * 4294967296.0);
    fresh = 1.0 - o->fraud_rate - o->bad_rate;
    g->start_q32 = (uint64_t)(o->fraud_rate / (fresh * EP_MEAN_LEN) * 4294967296.0);
    g->clock = (uint64_t)WARM_MS << CLOCK_SHIFT;

    n = 0;
    for (size_t i = 0; i < N_COUNTRIES; i++) {
        for (unsigned w = 0; w < countries[i].home && n < 1024; w++) {
            g->home_slot[n++] = (uint8_t)i;
        }
        if (countries[i].far) {
            g->far[g->n_far++] = (uint8_t)i;
        }
        if (countries[i].travel) {
            g->travel[g->n_travel++] = (uint8_t)i;
        }
    }
    n = 0;
    for (size_t i = 0; i < N_MCCS; i++) {
        for (unsigned w = 0; w < mccs[i].weight && n < 1024; w++) {
            g->mcc_slot[n++] = (uint8_t)i;
        }
    }
    for (unsigned i = 0; i < 256; i++) {
        g->exp2_hi[i] = (uint32_t)exp2_frac_q30(i << 8);
        g->exp2_lo[i] = (uint32_t)exp2_frac_q30(i);
    }
    for (unsigned i = 0; i < 1024; i++) {
        g->log2_tab[i] = log2_mant_q20((uint64_t)(1024 + i) << 20);
    }
    g->log2_tab[1024] = 1u << 20;
    warm_up(g, o->fraud_rate * o->events_per_sec / EP_MEAN_LEN);
    return g;
}

void rts_gen_free(struct rts_gen *g)
{
    free(g);
}

size_t rts_gen_next(struct rts_gen *g, char *buf, size_t cap)
{
    size_t n;

    if (!g->line_len) {
        produce(g);
    }
    n = g->line_len;
    if (!buf || cap < n) {
        return 0;
    }
    memcpy(buf, g->line, n);
    if (cap > n) {
        buf[n] = '\0';
    }
    g->line_len = 0;
    g->stats.events++;
    g->stats.fraud += (uint64_t)g->line_fraud;
    g->stats.bad += (uint64_t)g->line_bad;
    return n;
}

void rts_gen_stats(const struct rts_gen *g, struct rts_gen_stats *out)
{
    *out = g->stats;
}

uint64_t rts_gen_card_spend_cents(const struct rts_gen *g, uint64_t card)
{
    struct card p;

    card_profile(g, (uint32_t)card, card_hash(g, card), &p);
    return exp2_q16(g, p.med_l2);
}
