/*
 * test_expr.c - unit tests of src/expr: the expression compiler and VM.
 *
 * Hand-computed results for every operator, function, precedence level and
 * missing-value rule; errors with their code, column and message; limits;
 * the DESIGN.md examples. Then two randomized tests: well-typed random
 * expressions (printed fully parenthesized or with minimal parentheses)
 * evaluated by the VM and by an independent tree-walking oracle written here
 * from the language rules, which must agree; and random token soup, which
 * must compile or fail cleanly and evaluate without crashing. Finally a few
 * threads evaluate one expression at once (reentrancy).
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "expr/expr.h"
#include "test.h"

/* ---- scope and frames ---- */

enum {
    S_AMOUNT,
    S_COUNT,
    S_SCORE,
    S_DECISION,
    S_MEAN,
    S_TS,
    S_FLAG,
    S_COUNTRY,
    S_X,
    S_Y,
    S_Z,
    S_S,
    S_T,
    S_B,
    S_MISS,
    S_SMISS,
    S_BMISS,
    S_BIG,
    S_INF,
    S__COUNT
};

static const struct {
    const char *name;
    enum rts_type type;
} names[S__COUNT] = {
    [S_AMOUNT] = {"amount", RTS_T_NUM},
    [S_COUNT] = {"txn_count_5m", RTS_T_NUM},
    [S_SCORE] = {"score", RTS_T_NUM},
    [S_DECISION] = {"decision", RTS_T_STR},
    [S_MEAN] = {"amount_mean_30d", RTS_T_NUM},
    [S_TS] = {"ts", RTS_T_NUM},
    [S_FLAG] = {"flag", RTS_T_BOOL},
    [S_COUNTRY] = {"country", RTS_T_STR},
    [S_X] = {"x", RTS_T_NUM},
    [S_Y] = {"y", RTS_T_NUM},
    [S_Z] = {"z", RTS_T_NUM},
    [S_S] = {"s", RTS_T_STR},
    [S_T] = {"t", RTS_T_STR},
    [S_B] = {"b", RTS_T_BOOL},
    [S_MISS] = {"miss", RTS_T_NUM},
    [S_SMISS] = {"smiss", RTS_T_STR},
    [S_BMISS] = {"bmiss", RTS_T_BOOL},
    [S_BIG] = {"big", RTS_T_NUM},
    [S_INF] = {"inf", RTS_T_NUM},
};

static int resolve_calls;

static int resolve(void *ctx, const char *name, size_t len, enum rts_type *type)
{
    int i;

    (void)ctx;
    resolve_calls++;
    for (i = 0; i < S__COUNT; i++) {
        if (strlen(names[i].name) == len && memcmp(names[i].name, name, len) == 0) {
            *type = names[i].type;
            return i;
        }
    }
    return -1;
}

static const struct rts_expr_scope scope = {resolve, NULL};

static union rts_val str_val(const char *p)
{
    union rts_val v;

    v.str.p = p;
    v.str.n = p ? (uint32_t)strlen(p) : 0;
    return v;
}

static union rts_val num_val(double d)
{
    union rts_val v;

    memset(&v, 0, sizeof(v));
    v.num = d;
    return v;
}

static void default_frame(union rts_val *f)
{
    f[S_AMOUNT] = num_val(15000);
    f[S_COUNT] = num_val(12);
    f[S_SCORE] = num_val(0.7);
    f[S_DECISION] = str_val("block");
    f[S_MEAN] = num_val(499);
    f[S_TS] = num_val(1700000000000.0);
    f[S_FLAG] = num_val(1);
    f[S_COUNTRY] = str_val("US");
    f[S_X] = num_val(7);
    f[S_Y] = num_val(2);
    f[S_Z] = num_val(-3);
    f[S_S] = str_val("abc");
    f[S_T] = str_val("abd");
    f[S_B] = num_val(0);
    f[S_MISS] = num_val(NAN);
    f[S_SMISS] = str_val(NULL);
    f[S_BMISS] = num_val(NAN);
    f[S_BIG] = num_val(1e300);
    f[S_INF] = num_val(INFINITY);
}

static union rts_val frame[S__COUNT];

struct result {
    int ok;
    enum rts_type type;
    union rts_val v; /* a string result's bytes are copied to str: the pool is gone */
    int str_missing;
    char str[256];
    struct rts_errbuf eb;
};

static struct result run_in(const char *src, const union rts_val *f)
{
    struct result r;
    struct rts_expr *e;

    memset(&r, 0, sizeof(r));
    e = rts_expr_compile(src, &scope, &r.eb);
    if (!e) {
        return r;
    }
    r.ok = 1;
    r.type = rts_expr_type(e);
    r.v = rts_expr_eval(e, f);
    if (r.type == RTS_T_STR) {
        r.str_missing = r.v.str.p == NULL;
        if (r.v.str.p && r.v.str.n < sizeof(r.str)) {
            memcpy(r.str, r.v.str.p, r.v.str.n);
        }
        r.v.str.p = NULL;
    }
    rts_expr_free(e);
    return r;
}

static struct result run(const char *src)
{
    return run_in(src, frame);
}

/* Report the source of a failed check: the CHECK macros only show the C text. */
#define WITH_SRC(src, body)                                                                        \
    do {                                                                                           \
        int before_ = test_failures;                                                               \
        body;                                                                                      \
        if (test_failures != before_) {                                                            \
            fprintf(stderr, "    in expression: %s\n", (src));                                     \
        }                                                                                          \
    } while (0)

/* @src compiles, has type @type and evaluates (over frame @f) to @want; NaN = missing */
#define EXPECT_IN(f, src, type_, want)                                                             \
    WITH_SRC(src, {                                                                                \
        struct result r_ = run_in((src), (f));                                                     \
        CHECK(r_.ok);                                                                              \
        if (!r_.ok) {                                                                              \
            fprintf(stderr, "    error: column %d: %s\n", r_.eb.column, r_.eb.msg);                \
        } else {                                                                                   \
            CHECK_INT(r_.type, (type_));                                                           \
            CHECK_NEAR(r_.v.num, (want), 1e-12);                                                   \
        }                                                                                          \
    })
#define EXPECT_NUM(src, want) EXPECT_IN(frame, src, RTS_T_NUM, want)
#define EXPECT_BOOL(src, want) EXPECT_IN(frame, src, RTS_T_BOOL, want)

/* @src compiles to a string expression whose value is @want (NULL = missing) */
#define EXPECT_STR(src, want)                                                                      \
    WITH_SRC(src, {                                                                                \
        struct result r_ = run(src);                                                               \
        const char *w_ = (want);                                                                   \
        CHECK(r_.ok);                                                                              \
        if (r_.ok) {                                                                               \
            CHECK_INT(r_.type, RTS_T_STR);                                                         \
            CHECK((w_ == NULL) == r_.str_missing);                                                 \
            if (w_ && !r_.str_missing) {                                                           \
                CHECK_INT(r_.v.str.n, strlen(w_));                                                 \
                CHECK(memcmp(r_.str, w_, strlen(w_)) == 0);                                        \
            }                                                                                      \
        }                                                                                          \
    })

/* @src fails with @code at @column and a message containing @text */
#define EXPECT_ERR(src, code_, column_, text)                                                      \
    WITH_SRC(src, {                                                                                \
        struct result r_ = run(src);                                                               \
        CHECK(!r_.ok);                                                                             \
        if (!r_.ok) {                                                                              \
            CHECK_INT(r_.eb.code, (code_));                                                        \
            CHECK_INT(r_.eb.column, (column_));                                                    \
            CHECK_INT(r_.eb.pos, (column_)-1);                                                     \
            CHECK(strstr(r_.eb.msg, (text)) != NULL);                                              \
            if (!strstr(r_.eb.msg, (text))) {                                                      \
                fprintf(stderr, "    message: %s\n", r_.eb.msg);                                   \
            }                                                                                      \
        }                                                                                          \
    })

/* ---- the examples of DESIGN.md ---- */

TEST(design_examples)
{
    union rts_val f[S__COUNT];

    EXPECT_NUM("log1p(amount)", 9.6158721445288897); /* ln(15001) */
    EXPECT_NUM("amount / (amount_mean_30d + 1)", 30.0);
    EXPECT_NUM("min(1, amount / 20000 + (txn_count_5m > 10) * 0.5)", 1.0); /* 0.75 + 0.5 */
    EXPECT_BOOL("score >= 0.6 or amount > 10000", 1);
    EXPECT_BOOL("decision == 'block'", 1);
    EXPECT_BOOL("score >= 0.9", 0);
    EXPECT_NUM("hour_of_day(ts)", 22);

    default_frame(f);
    f[S_AMOUNT] = num_val(4000);
    f[S_COUNT] = num_val(3);
    EXPECT_IN(f, "min(1, amount / 20000 + (txn_count_5m > 10) * 0.5)", RTS_T_NUM, 0.2);
    f[S_COUNT] = num_val(11);
    EXPECT_IN(f, "min(1, amount / 20000 + (txn_count_5m > 10) * 0.5)", RTS_T_NUM, 0.7);
    f[S_AMOUNT] = num_val(NAN);
    EXPECT_IN(f, "min(1, amount / 20000 + (txn_count_5m > 10) * 0.5)", RTS_T_NUM, 1.0);
    f[S_MEAN] = num_val(NAN);
    EXPECT_IN(f, "amount / (amount_mean_30d + 1)", RTS_T_NUM, NAN);
    EXPECT_IN(f, "log1p(amount)", RTS_T_NUM, NAN);

    default_frame(f);
    f[S_SCORE] = num_val(0.5);
    f[S_AMOUNT] = num_val(5000);
    EXPECT_IN(f, "score >= 0.6 or amount > 10000", RTS_T_BOOL, 0);
    f[S_AMOUNT] = num_val(20000);
    EXPECT_IN(f, "score >= 0.6 or amount > 10000", RTS_T_BOOL, 1);
    f[S_SCORE] = num_val(NAN);
    f[S_AMOUNT] = num_val(NAN);
    EXPECT_IN(f, "score >= 0.6 or amount > 10000", RTS_T_BOOL, 0);

    f[S_DECISION] = str_val("allow");
    EXPECT_IN(f, "decision == 'block'", RTS_T_BOOL, 0);
    f[S_DECISION] = str_val("blocked");
    EXPECT_IN(f, "decision == 'block'", RTS_T_BOOL, 0);
    f[S_DECISION] = str_val(NULL);
    EXPECT_IN(f, "decision == 'block'", RTS_T_BOOL, 0);
}

/* ---- literals ---- */

TEST(literals)
{
    EXPECT_NUM("123", 123);
    EXPECT_NUM("1.5", 1.5);
    EXPECT_NUM("1e-3", 0.001);
    EXPECT_NUM(".5", 0.5);
    EXPECT_NUM("2.", 2);
    EXPECT_NUM("1.e2", 100);
    EXPECT_NUM("2E+2", 200);
    EXPECT_NUM("0.25e1", 2.5);
    EXPECT_NUM("007", 7);
    EXPECT_NUM("  42  ", 42);
    EXPECT_NUM("\t1\n+\r\n2", 3);
    EXPECT_NUM("1e-400", 0); /* underflow is zero, not an error */
    EXPECT_BOOL("true", 1);
    EXPECT_BOOL("false", 0);
    EXPECT_STR("'abc'", "abc");
    EXPECT_STR("\"abc\"", "abc");
    EXPECT_STR("''", "");
    EXPECT_STR("'it\\'s'", "it's");
    EXPECT_STR("\"say \\\"hi\\\"\"", "say \"hi\"");
    EXPECT_STR("'a\"b'", "a\"b");
    EXPECT_STR("\"a'b\"", "a'b");
    EXPECT_STR("'a\\\\b'", "a\\b");
    EXPECT_STR("'x\\ny\\tz'", "x\ny\tz");
    EXPECT_STR("'caf\xc3\xa9'", "caf\xc3\xa9");
    EXPECT_BOOL("'it\\'s' == \"it's\"", 1);
}

/* ---- precedence and associativity ---- */

TEST(precedence)
{
    EXPECT_NUM("1 + 2 * 3", 7);
    EXPECT_NUM("(1 + 2) * 3", 9);
    EXPECT_NUM("10 - 4 - 3", 3);   /* left */
    EXPECT_NUM("100 / 10 / 5", 2); /* left */
    EXPECT_NUM("2 * 3 % 4", 2);    /* (2 * 3) % 4 */
    EXPECT_NUM("2 + 3 % 2", 3);    /* % over + */
    EXPECT_NUM("17 % 5 * 2", 4);   /* (17 % 5) * 2 */
    EXPECT_NUM("x - y - z", 8);    /* (7 - 2) - -3 */
    EXPECT_NUM("x - (y - z)", 2);
    EXPECT_NUM("x / y / 2", 1.75);
    EXPECT_NUM("-2 * 3", -6);
    EXPECT_NUM("-x * y", -14);
    EXPECT_NUM("- 2 + 3", 1); /* unary binds tighter than + */
    EXPECT_NUM("--3", 3);
    EXPECT_NUM("- - -x", -7);
    EXPECT_NUM("2 * -3", -6);
    EXPECT_NUM("2 - -3", 5);
    EXPECT_NUM("-(2 + 3)", -5);
    EXPECT_BOOL("1 + 2 > 2", 1); /* + over comparison */
    EXPECT_BOOL("x > y * 3", 1); /* 7 > 6 */
    EXPECT_BOOL("x * 2 == 14", 1);
    EXPECT_BOOL("not 1 > 2", 1); /* not (1 > 2) */
    EXPECT_BOOL("not x == 7", 0);
    EXPECT_BOOL("not true and false", 0); /* (not true) and false */
    EXPECT_BOOL("not (true and false)", 1);
    EXPECT_BOOL("not not true", 1);
    EXPECT_BOOL("not false or true", 1);
    EXPECT_BOOL("true or false and false", 1); /* true or (false and false) */
    EXPECT_BOOL("(true or false) and false", 0);
    EXPECT_BOOL("false and false or true", 1); /* (false and false) or true */
    EXPECT_BOOL("false or false or true", 1);
    EXPECT_BOOL("true and true and false", 0);
    EXPECT_BOOL("x > 1 and y > 1", 1);
    EXPECT_BOOL("x > 1 and not y > 1", 0);
    EXPECT_NUM("1 ? 2 : 3 ? 4 : 5", 2); /* right: 1 ? 2 : (3 ? 4 : 5) */
    EXPECT_NUM("0 ? 2 : 1 ? 4 : 5", 4);
    EXPECT_NUM("0 ? 2 : 0 ? 4 : 5", 5);
    EXPECT_NUM("(0 ? 2 : 1) ? 4 : 5", 4);
    EXPECT_NUM("1 ? 0 ? 7 : 8 : 9", 8);         /* the middle is a full expression */
    EXPECT_NUM("x > 5 or false ? 10 : 20", 10); /* ?: is lowest */
    EXPECT_NUM("1 + 1 ? 3 : 4", 3);
    EXPECT_NUM("x ? y + 1 : z * 2", 3);
    EXPECT_BOOL("1 + 1 in [2]", 1); /* (1 + 1) in [2] */
    EXPECT_BOOL("not x in [7]", 0); /* not (x in [7]) */
    EXPECT_BOOL("x in [7] and y in [2]", 1);
    EXPECT_BOOL("x not in [1] or false", 1);
    EXPECT_NUM("(x > 1) * 0.5 + 1", 1.5);
    EXPECT_NUM("((((x))))", 7);
}

/* ---- arithmetic, bool promotion, missing and never-infinite ---- */

TEST(arithmetic)
{
    EXPECT_NUM("x + y", 9);
    EXPECT_NUM("x - y", 5);
    EXPECT_NUM("x * y", 14);
    EXPECT_NUM("x / y", 3.5);
    EXPECT_NUM("x % y", 1);
    EXPECT_NUM("-x % y", -1); /* fmod: the sign of the dividend */
    EXPECT_NUM("x % -2", 1);
    EXPECT_NUM("7.5 % 2", 1.5);
    EXPECT_NUM("1 / 4", 0.25);
    EXPECT_NUM("y - x", -5);
    EXPECT_NUM("0.1 + 0.2", 0.1 + 0.2);
    EXPECT_NUM("-z", 3);
    EXPECT_NUM("2 + x", 9); /* constant on the left */
    EXPECT_NUM("20 - x", 13);
    EXPECT_NUM("21 / x", 3);
    EXPECT_NUM("15 % x", 1);
    EXPECT_NUM("3 * x", 21);

    /* bools promote to 0/1 */
    EXPECT_NUM("(txn_count_5m > 10) * 0.5", 0.5);
    EXPECT_NUM("(txn_count_5m > 20) * 0.5", 0);
    EXPECT_NUM("true + true", 2);
    EXPECT_NUM("-true", -1);
    EXPECT_NUM("flag + 1", 2);
    EXPECT_NUM("b * 10", 0);
    EXPECT_NUM("x * (x > 1)", 7);
    EXPECT_BOOL("flag == 1", 1);
    EXPECT_BOOL("true == 1", 1);
    EXPECT_BOOL("b != true", 1);
    EXPECT_BOOL("(x > 1) == (y > 1)", 1);
    EXPECT_BOOL("(x > 1) > b", 1);
}

TEST(missing)
{
    union rts_val f[S__COUNT];

    EXPECT_NUM("miss", NAN);
    EXPECT_NUM("miss + 1", NAN);
    EXPECT_NUM("1 - miss", NAN);
    EXPECT_NUM("miss * 0", NAN);
    EXPECT_NUM("miss / 1", NAN);
    EXPECT_NUM("1 % miss", NAN);
    EXPECT_NUM("miss % 2", NAN);
    EXPECT_NUM("-miss", NAN);
    EXPECT_NUM("bmiss + 1", NAN);
    EXPECT_NUM("x + miss * 2", NAN);

    /* division and % by zero are missing, not inf */
    EXPECT_NUM("x / 0", NAN);
    EXPECT_NUM("-x / 0", NAN);
    EXPECT_NUM("0 / 0", NAN);
    EXPECT_NUM("x / (y - 2)", NAN);
    EXPECT_NUM("x % 0", NAN);
    EXPECT_NUM("x % (y - y)", NAN);
    EXPECT_NUM("1 / 0", NAN); /* folded */
    EXPECT_NUM("1 / -0", NAN);

    /* overflow is missing, at compile time and at run time */
    EXPECT_NUM("1e308 * 10", NAN);
    EXPECT_NUM("big * big", NAN);
    EXPECT_NUM("big * 1e10", NAN);
    EXPECT_NUM("-big * 1e10", NAN);
    EXPECT_NUM("big * 1e8 + big * 9e7", NAN);
    EXPECT_NUM("big / 1e-300", NAN);
    EXPECT_NUM("inf", NAN); /* an infinite input is not passed through */
    EXPECT_NUM("inf + 1", NAN);
    EXPECT_BOOL("big * big > 0", 0);

    /* comparisons with missing are false, != included */
    EXPECT_BOOL("miss == 1", 0);
    EXPECT_BOOL("miss != 1", 0);
    EXPECT_BOOL("1 != miss", 0);
    EXPECT_BOOL("miss < 1", 0);
    EXPECT_BOOL("miss <= 1", 0);
    EXPECT_BOOL("miss > 1", 0);
    EXPECT_BOOL("miss >= 1", 0);
    EXPECT_BOOL("miss == miss", 0);
    EXPECT_BOOL("miss != miss", 0);
    EXPECT_BOOL("x != miss", 0);
    EXPECT_BOOL("bmiss == true", 0);
    EXPECT_BOOL("bmiss != true", 0);
    EXPECT_BOOL("smiss == 'a'", 0);
    EXPECT_BOOL("smiss != 'a'", 0);
    EXPECT_BOOL("'a' != smiss", 0);
    EXPECT_BOOL("smiss == smiss", 0);
    EXPECT_BOOL("smiss < 'a'", 0);
    EXPECT_BOOL("smiss >= ''", 0);
    EXPECT_BOOL("1 / 0 == 1 / 0", 0);
    EXPECT_BOOL("1 / 0 != 1", 0);

    /* and / or / not read missing as false and are never missing */
    EXPECT_BOOL("miss or false", 0);
    EXPECT_BOOL("miss or true", 1);
    EXPECT_BOOL("miss and true", 0);
    EXPECT_BOOL("true and miss", 0);
    EXPECT_BOOL("false or bmiss", 0);
    EXPECT_BOOL("not miss", 1);
    EXPECT_BOOL("not bmiss", 1);
    EXPECT_BOOL("bmiss and bmiss", 0);

    /* ?: takes the else branch on a missing condition */
    EXPECT_NUM("miss ? 1 : 2", 2);
    EXPECT_NUM("bmiss ? 1 : 2", 2);
    EXPECT_NUM("1 / 0 ? 1 : 2", 2);
    EXPECT_NUM("miss > 1 ? 1 : 2", 2);
    EXPECT_NUM("flag ? miss : 2", NAN);
    EXPECT_STR("miss ? 'a' : 'b'", "b");
    EXPECT_STR("flag ? smiss : 'b'", NULL);

    /* a missing bool passes through as missing */
    EXPECT_BOOL("bmiss", NAN);
    EXPECT_BOOL("flag ? bmiss : true", NAN);

    default_frame(f);
    f[S_X] = num_val(NAN);
    EXPECT_IN(f, "x * 2 + y", RTS_T_NUM, NAN);
    EXPECT_IN(f, "x > 1 or y > 1", RTS_T_BOOL, 1);
    EXPECT_IN(f, "x > 1 and y > 1", RTS_T_BOOL, 0);
    EXPECT_IN(f, "min(x, y)", RTS_T_NUM, 2);
    EXPECT_IN(f, "is_missing(x) ? 0 : x", RTS_T_NUM, 0);
}

/* ---- comparisons ---- */

TEST(comparisons)
{
    EXPECT_BOOL("x == 7", 1);
    EXPECT_BOOL("x == 7.0000001", 0);
    EXPECT_BOOL("x != 7", 0);
    EXPECT_BOOL("x != 8", 1);
    EXPECT_BOOL("x < 8", 1);
    EXPECT_BOOL("x < 7", 0);
    EXPECT_BOOL("x <= 7", 1);
    EXPECT_BOOL("x <= 6.5", 0);
    EXPECT_BOOL("x > 6", 1);
    EXPECT_BOOL("x > 7", 0);
    EXPECT_BOOL("x >= 7", 1);
    EXPECT_BOOL("x >= 7.5", 0);
    EXPECT_BOOL("8 > x", 1); /* constant on the left: operands flip */
    EXPECT_BOOL("7 >= x", 1);
    EXPECT_BOOL("6 < x", 1);
    EXPECT_BOOL("7 <= x", 1);
    EXPECT_BOOL("7 == x", 1);
    EXPECT_BOOL("6 != x", 1);
    EXPECT_BOOL("x < y", 0);
    EXPECT_BOOL("z < y", 1);
    EXPECT_BOOL("x >= x", 1);
    EXPECT_BOOL("-0 == 0", 1);

    /* strings: bytes, lexicographic */
    EXPECT_BOOL("s == 'abc'", 1);
    EXPECT_BOOL("s == 'ab'", 0);
    EXPECT_BOOL("s == 'abcd'", 0);
    EXPECT_BOOL("s == 'ABC'", 0);
    EXPECT_BOOL("s != 'abd'", 1);
    EXPECT_BOOL("s != \"abc\"", 0);
    EXPECT_BOOL("s == t", 0);
    EXPECT_BOOL("s < t", 1);
    EXPECT_BOOL("s <= t", 1);
    EXPECT_BOOL("s > t", 0);
    EXPECT_BOOL("s >= t", 0);
    EXPECT_BOOL("t > s", 1);
    EXPECT_BOOL("'a' < 'b'", 1);
    EXPECT_BOOL("'ab' < 'abc'", 1);
    EXPECT_BOOL("'abc' > 'ab'", 1);
    EXPECT_BOOL("'b' > 'abc'", 1);
    EXPECT_BOOL("'abc' <= 'abc'", 1);
    EXPECT_BOOL("'abc' >= 'abc'", 1);
    EXPECT_BOOL("'' < 'a'", 1);
    EXPECT_BOOL("'' == ''", 1);
    EXPECT_BOOL("'Z' < 'a'", 1);
    EXPECT_BOOL("'\xc3\xa9' > 'z'", 1); /* bytes compare unsigned */
    EXPECT_BOOL("country == 'US'", 1);
    EXPECT_BOOL("decision == 'block' and country != 'FR'", 1);
}

TEST(membership)
{
    EXPECT_BOOL("x in [1, 7, 9]", 1);
    EXPECT_BOOL("x in [1, 9]", 0);
    EXPECT_BOOL("x in [7]", 1);
    EXPECT_BOOL("x in []", 0);
    EXPECT_BOOL("x not in []", 1);
    EXPECT_BOOL("x not in [1, 9]", 1);
    EXPECT_BOOL("x not in [1, 7]", 0);
    EXPECT_BOOL("z in [-3]", 1);
    EXPECT_BOOL("x in [7.0]", 1);
    EXPECT_BOOL("x in [3 + 4]", 1); /* constant expressions are constants */
    EXPECT_BOOL("x in [-7, 1e1]", 0);
    EXPECT_BOOL("flag in [true]", 1);
    EXPECT_BOOL("flag in [1]", 1);
    EXPECT_BOOL("b in [true]", 0);
    EXPECT_BOOL("(x > 1) in [1]", 1);
    EXPECT_BOOL("miss in [1]", 0);
    EXPECT_BOOL("miss not in [1]", 0); /* missing is never in or not in */
    EXPECT_BOOL("miss in []", 0);
    EXPECT_BOOL("miss not in []", 0);
    EXPECT_BOOL("x in [1 / 0]", 0); /* a missing item matches nothing */
    EXPECT_BOOL("miss in [1 / 0]", 0);
    EXPECT_BOOL("s in ['abc', 'x']", 1);
    EXPECT_BOOL("s in ['ab', 'abcd', '']", 0);
    EXPECT_BOOL("s not in ['ab', 'abcd']", 1);
    EXPECT_BOOL("s not in ['abc']", 0);
    EXPECT_BOOL("s in []", 0);
    EXPECT_BOOL("s not in []", 1);
    EXPECT_BOOL("smiss in ['a']", 0);
    EXPECT_BOOL("smiss not in ['a']", 0);
    EXPECT_BOOL("smiss not in []", 0);
    EXPECT_BOOL("decision in ['block', 'review']", 1);
    EXPECT_BOOL("country not in [\"US\", 'CA']", 0);
    EXPECT_BOOL("2 in [1, 2]", 1); /* folded */
    EXPECT_BOOL("'q' not in ['a', 'b']", 1);
}

TEST(logic)
{
    EXPECT_BOOL("true and true", 1);
    EXPECT_BOOL("true and false", 0);
    EXPECT_BOOL("false and true", 0);
    EXPECT_BOOL("false and false", 0);
    EXPECT_BOOL("true or true", 1);
    EXPECT_BOOL("true or false", 1);
    EXPECT_BOOL("false or true", 1);
    EXPECT_BOOL("false or false", 0);
    EXPECT_BOOL("not true", 0);
    EXPECT_BOOL("not false", 1);
    /* numbers: true when not 0 and not missing; the result is 0 or 1 */
    EXPECT_BOOL("x and y", 1);
    EXPECT_BOOL("x and 0", 0);
    EXPECT_BOOL("0 or x", 1);
    EXPECT_BOOL("x or 0", 1);
    EXPECT_BOOL("z and x", 1);
    EXPECT_BOOL("0 or 0", 0);
    EXPECT_BOOL("not 0", 1);
    EXPECT_BOOL("not 5", 0);
    EXPECT_BOOL("not x", 0);
    EXPECT_BOOL("not -0.5", 0);
    EXPECT_BOOL("flag and b", 0);
    EXPECT_BOOL("flag or b", 1);
    EXPECT_BOOL("b or x > 3", 1);
    EXPECT_BOOL("flag and (x > 3 or miss)", 1);
    /* constant operands decide at compile time, whatever the other side */
    EXPECT_BOOL("false and x", 0);
    EXPECT_BOOL("x and false", 0);
    EXPECT_BOOL("true or x", 1);
    EXPECT_BOOL("x or true", 1);
    EXPECT_BOOL("true and x", 1);
    EXPECT_BOOL("false or x", 1);
    EXPECT_BOOL("false or y - 2", 0);
    EXPECT_BOOL("x > 1 and (y > 1 and (z < 0 and (score > 0.5 and true)))", 1);
    EXPECT_BOOL("x < 1 or (y < 1 or (z > 0 or (score < 0.5 or false)))", 0);
}

TEST(conditional)
{
    EXPECT_STR("x > 5 ? 'big' : 'small'", "big");
    EXPECT_STR("x > 10 ? 'big' : 'small'", "small");
    EXPECT_NUM("flag ? 1 : 2", 1);
    EXPECT_NUM("b ? 1 : 2", 2);
    EXPECT_NUM("x ? 1 : 2", 1);
    EXPECT_NUM("0 ? 1 : 2", 2);
    EXPECT_NUM("flag ? x : y", 7);
    EXPECT_NUM("b ? x : y", 2);
    EXPECT_NUM("flag ? 1 : true", 1); /* NUM and BOOL unify to NUM */
    EXPECT_NUM("b ? 1 : true", 1);
    EXPECT_NUM("b ? x > 1 : 5", 5);
    EXPECT_BOOL("flag ? true : false", 1);
    EXPECT_BOOL("b ? true : x > 100", 0);
    EXPECT_STR("flag ? s : t", "abc");
    EXPECT_STR("b ? s : t", "abd");
    EXPECT_STR("true ? 'a' : 'b'", "a"); /* folded */
    EXPECT_STR("false ? s : 'b'", "b");
    EXPECT_NUM("true ? x : 1 / 0", 7);
    EXPECT_NUM("x > 0 ? x > 5 ? 2 : 1 : 0", 2);
    EXPECT_NUM("z > 0 ? 1 : z > -5 ? 2 : 3", 2);
    EXPECT_NUM("(flag ? x : y) * 2", 14);
    EXPECT_NUM("1 + (b ? 10 : 20)", 21);
}

TEST(strings_point_into_frame_or_pool)
{
    const char *src = "flag ? s : 'fallback'";
    char *copy = malloc(strlen(src) + 1);
    struct rts_errbuf eb = {0};
    struct rts_expr *e;
    union rts_val v, f[S__COUNT];

    memcpy(copy, src, strlen(src) + 1);
    e = rts_expr_compile(copy, &scope, &eb);
    memset(copy, 'X', strlen(src));
    free(copy); /* the expression keeps what it needs */
    CHECK(e != NULL);
    if (!e) {
        return;
    }
    default_frame(f);
    v = rts_expr_eval(e, f);
    CHECK(v.str.p == f[S_S].str.p); /* the frame's bytes, not a copy */
    CHECK_INT(v.str.n, 3);
    f[S_FLAG] = num_val(0);
    v = rts_expr_eval(e, f);
    CHECK_INT(v.str.n, 8);
    CHECK_STR(v.str.p, "fallback"); /* NUL-terminated in the pool */
    CHECK_STR(rts_expr_source(e), src);
    rts_expr_free(e);

    e = rts_expr_compile("decision", &scope, &eb);
    CHECK(e != NULL);
    if (e) {
        v = rts_expr_eval(e, f);
        CHECK(v.str.p == f[S_DECISION].str.p);
        rts_expr_free(e);
    }
}

/* ---- functions ---- */

TEST(functions)
{
    EXPECT_NUM("log1p(0)", 0);
    EXPECT_NUM("log1p(1)", 0.69314718055994531);
    EXPECT_NUM("log1p(x)", 2.0794415416798357); /* ln 8 */
    EXPECT_NUM("log1p(-0.5)", -0.69314718055994531);
    EXPECT_NUM("log1p(-1)", NAN); /* -inf */
    EXPECT_NUM("log1p(-2)", NAN);
    EXPECT_NUM("log1p(z)", NAN);
    EXPECT_NUM("log1p(miss)", NAN);
    EXPECT_NUM("abs(-3)", 3);
    EXPECT_NUM("abs(z)", 3);
    EXPECT_NUM("abs(x)", 7);
    EXPECT_NUM("abs(-0.5)", 0.5);
    EXPECT_NUM("abs(miss)", NAN);
    EXPECT_NUM("sqrt(16)", 4);
    EXPECT_NUM("sqrt(y)", 1.4142135623730951);
    EXPECT_NUM("sqrt(0)", 0);
    EXPECT_NUM("sqrt(-1)", NAN);
    EXPECT_NUM("sqrt(z)", NAN);
    EXPECT_NUM("sqrt(miss)", NAN);
    EXPECT_NUM("exp(0)", 1);
    EXPECT_NUM("exp(1)", 2.7182818284590451);
    EXPECT_NUM("exp(-y)", 0.1353352832366127);
    EXPECT_NUM("exp(1000)", NAN); /* overflow is missing, not inf */
    EXPECT_NUM("exp(x * 1000)", NAN);
    EXPECT_NUM("exp(-1000)", 0);
    EXPECT_NUM("exp(miss)", NAN);
    EXPECT_NUM("min(3, 1, 2)", 1);
    EXPECT_NUM("max(3, 1, 2)", 3);
    EXPECT_NUM("min(x, y)", 2);
    EXPECT_NUM("max(x, y)", 7);
    EXPECT_NUM("min(x, y, z)", -3);
    EXPECT_NUM("max(z, y, x, 1)", 7);
    EXPECT_NUM("min(1, x)", 1);
    EXPECT_NUM("min(x, 100)", 7);
    EXPECT_NUM("max(100, x, y)", 100);
    EXPECT_NUM("min(miss, 5)", 5); /* missing arguments are skipped */
    EXPECT_NUM("max(5, miss)", 5);
    EXPECT_NUM("min(miss, x)", 7);
    EXPECT_NUM("max(miss, miss, z)", -3);
    EXPECT_NUM("min(miss, 2, miss, 1)", 1);
    EXPECT_NUM("min(miss, miss)", NAN); /* ... missing only if all are */
    EXPECT_NUM("max(miss, 1 / 0)", NAN);
    EXPECT_NUM("min(true, 5)", 1);
    EXPECT_NUM("min(1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,0.5,x)", 0.5);
    EXPECT_NUM("clamp(5, 0, 3)", 3);
    EXPECT_NUM("clamp(-1, 0, 3)", 0);
    EXPECT_NUM("clamp(2, 0, 3)", 2);
    EXPECT_NUM("clamp(x, 0, 10)", 7);
    EXPECT_NUM("clamp(x, y, 5)", 5);
    EXPECT_NUM("clamp(z, y, 5)", 2);
    EXPECT_NUM("clamp(5, 3, 1)", 1); /* lo > hi: hi wins, as in numpy.clip */
    EXPECT_NUM("clamp(0, 3, 1)", 1);
    EXPECT_NUM("clamp(miss, 0, 1)", NAN);
    EXPECT_NUM("clamp(0.5, miss, 1)", NAN);
    EXPECT_NUM("clamp(0.5, 0, miss)", NAN);
    EXPECT_BOOL("is_missing(miss)", 1);
    EXPECT_BOOL("is_missing(x)", 0);
    EXPECT_BOOL("is_missing(smiss)", 1);
    EXPECT_BOOL("is_missing(s)", 0);
    EXPECT_BOOL("is_missing('')", 0);
    EXPECT_BOOL("is_missing(bmiss)", 1);
    EXPECT_BOOL("is_missing(flag)", 0);
    EXPECT_BOOL("is_missing(x / 0)", 1);
    EXPECT_BOOL("is_missing(sqrt(-1))", 1);
    EXPECT_BOOL("is_missing(miss > 1)", 0); /* a comparison is never missing */
    EXPECT_NUM("abs(min(z, -10)) + sqrt(max(16, y))", 14);
    EXPECT_NUM("log1p(exp(1) - 1)", 1);
    EXPECT_NUM("min ( 1 , 2 )", 1);
}

TEST(time_functions)
{
    union rts_val f[S__COUNT];

    /* 1700000000000 ms = 2023-11-14 22:13:20 UTC, a Tuesday */
    EXPECT_NUM("hour_of_day(1700000000000)", 22);
    EXPECT_NUM("day_of_week(1700000000000)", 1);
    EXPECT_NUM("hour_of_day(ts)", 22);
    EXPECT_NUM("day_of_week(ts)", 1);
    /* 1970-01-01 00:00 UTC was a Thursday */
    EXPECT_NUM("hour_of_day(0)", 0);
    EXPECT_NUM("day_of_week(0)", 3);
    /* 2023-11-13 00:00:00.000 UTC, Monday; 2023-11-19 23:59:59.999, Sunday */
    EXPECT_NUM("hour_of_day(1699833600000)", 0);
    EXPECT_NUM("day_of_week(1699833600000)", 0);
    EXPECT_NUM("hour_of_day(1700438399999)", 23);
    EXPECT_NUM("day_of_week(1700438399999)", 6);
    EXPECT_NUM("day_of_week(1700438400000)", 0);
    EXPECT_NUM("hour_of_day(ts + 2 * 3600000)", 0); /* past midnight */
    EXPECT_NUM("day_of_week(ts + 2 * 3600000)", 2); /* Wednesday */
    /* before 1970: -1 ms is 1969-12-31 23:59:59.999, a Wednesday */
    EXPECT_NUM("hour_of_day(-1)", 23);
    EXPECT_NUM("day_of_week(-1)", 2);
    EXPECT_NUM("day_of_week(-86400000 * 4)", 6); /* 1969-12-28, Sunday */
    EXPECT_NUM("hour_of_day(miss)", NAN);
    EXPECT_NUM("day_of_week(miss)", NAN);
    EXPECT_NUM("hour_of_day(inf)", NAN);
    EXPECT_NUM("hour_of_day(3599999)", 0);
    EXPECT_NUM("hour_of_day(3600000)", 1);
    EXPECT_NUM("hour_of_day(1700000000000.5)", 22);
    EXPECT_NUM("hour_of_day(-0.5)", 23); /* floors, 1969-12-31 23:59:59.9995 */
    EXPECT_NUM("day_of_week(-0.5)", 2);
    EXPECT_NUM("hour_of_day(-86400000)", 0);
    EXPECT_NUM("day_of_week(-86400000)", 2);
    /* far beyond any real timestamp, still defined (1e19 ms is 317 million years) */
    EXPECT_NUM("hour_of_day(1e19)", 17);
    EXPECT_NUM("day_of_week(1e19)", 5);
    EXPECT_NUM("hour_of_day(-1e19)", 6);
    EXPECT_NUM("day_of_week(-1e19)", 0);

    default_frame(f);
    /* 2024-02-29 12:00:00 UTC, Thursday */
    f[S_TS] = num_val(1709208000000.0);
    EXPECT_IN(f, "hour_of_day(ts)", RTS_T_NUM, 12);
    EXPECT_IN(f, "day_of_week(ts)", RTS_T_NUM, 3);
    EXPECT_IN(f, "day_of_week(ts) >= 5 or hour_of_day(ts) < 6", RTS_T_BOOL, 0);
}

/* ---- types ---- */

TEST(types)
{
    static const struct {
        const char *src;
        enum rts_type type;
    } cases[] = {
        {"1", RTS_T_NUM},
        {"x", RTS_T_NUM},
        {"flag", RTS_T_BOOL},
        {"s", RTS_T_STR},
        {"'a'", RTS_T_STR},
        {"true", RTS_T_BOOL},
        {"flag + flag", RTS_T_NUM},
        {"-flag", RTS_T_NUM},
        {"x > 1", RTS_T_BOOL},
        {"s == t", RTS_T_BOOL},
        {"x in [1]", RTS_T_BOOL},
        {"not x", RTS_T_BOOL},
        {"x and 1", RTS_T_BOOL},
        {"x or 1", RTS_T_BOOL},
        {"flag ? 1 : 2", RTS_T_NUM},
        {"flag ? true : 1", RTS_T_NUM},
        {"flag ? true : false", RTS_T_BOOL},
        {"true ? true : 2", RTS_T_NUM}, /* folded, still the unified type */
        {"flag ? s : 'x'", RTS_T_STR},
        {"is_missing(s)", RTS_T_BOOL},
        {"min(flag, true)", RTS_T_NUM},
        {"hour_of_day(ts)", RTS_T_NUM},
        {"(x > 1) * 0.5", RTS_T_NUM},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct result r = run(cases[i].src);

        WITH_SRC(cases[i].src, {
            CHECK(r.ok);
            CHECK_INT(r.type, cases[i].type);
        });
    }
}

/* ---- errors ---- */

TEST(syntax_errors)
{
    EXPECT_ERR("(1 + 2", RTS_ERR_PARSE, 7, "expected ')'");
    EXPECT_ERR("min(1, 2", RTS_ERR_PARSE, 9, "expected ',' or ')'");
    EXPECT_ERR("min(1 2)", RTS_ERR_PARSE, 7, "expected ',' or ')'");
    EXPECT_ERR("min(1,)", RTS_ERR_PARSE, 7, "expected an expression");
    EXPECT_ERR("1 +", RTS_ERR_PARSE, 4, "expected an expression, got end of expression");
    EXPECT_ERR("1 + * 2", RTS_ERR_PARSE, 5, "expected an expression, got '*'");
    EXPECT_ERR("", RTS_ERR_PARSE, 1, "expected an expression");
    EXPECT_ERR("   ", RTS_ERR_PARSE, 4, "expected an expression");
    EXPECT_ERR("()", RTS_ERR_PARSE, 2, "expected an expression, got ')'");
    EXPECT_ERR("x y", RTS_ERR_PARSE, 3, "got 'y'");
    EXPECT_ERR("1 2", RTS_ERR_PARSE, 3, "got '2'");
    EXPECT_ERR("x)", RTS_ERR_PARSE, 2, "got ')'");
    EXPECT_ERR("x not 1", RTS_ERR_PARSE, 3, "got 'not'");
    EXPECT_ERR("'abc", RTS_ERR_PARSE, 1, "unterminated string");
    EXPECT_ERR("x == \"abc", RTS_ERR_PARSE, 6, "unterminated string");
    EXPECT_ERR("'abc\\", RTS_ERR_PARSE, 1, "unterminated string");
    EXPECT_ERR("'a\\zb'", RTS_ERR_PARSE, 3, "unknown escape '\\z'");
    EXPECT_ERR("1 = 2", RTS_ERR_PARSE, 3, "use '=='");
    EXPECT_ERR("x ! 2", RTS_ERR_PARSE, 3, "use 'not'");
    EXPECT_ERR("flag && b", RTS_ERR_PARSE, 6, "use 'and'");
    EXPECT_ERR("flag || b", RTS_ERR_PARSE, 6, "use 'or'");
    EXPECT_ERR("x # 1", RTS_ERR_PARSE, 3, "unexpected character '#'");
    EXPECT_ERR("x \x01", RTS_ERR_PARSE, 3, "unexpected byte 0x01");
    EXPECT_ERR("x + \xc3\xa9", RTS_ERR_PARSE, 5, "unexpected byte 0xc3");
    EXPECT_ERR("1.2.3", RTS_ERR_PARSE, 1, "malformed number");
    EXPECT_ERR("x + 12abc", RTS_ERR_PARSE, 5, "malformed number");
    EXPECT_ERR("1e", RTS_ERR_PARSE, 1, "malformed number");
    EXPECT_ERR("1e+", RTS_ERR_PARSE, 1, "malformed number");
    EXPECT_ERR("0x10", RTS_ERR_PARSE, 1, "malformed number");
    EXPECT_ERR("1e999", RTS_ERR_PARSE, 1, "number out of range");
    EXPECT_ERR("1 < 2 < 3", RTS_ERR_PARSE, 7, "comparisons do not chain");
    EXPECT_ERR("x == 1 == true", RTS_ERR_PARSE, 8, "comparisons do not chain");
    EXPECT_ERR("x in [1] == true", RTS_ERR_PARSE, 10, "comparisons do not chain");
    EXPECT_ERR("x > 1 in [true]", RTS_ERR_PARSE, 7, "comparisons do not chain");
    EXPECT_ERR("x in 1", RTS_ERR_PARSE, 6, "expected '[' after 'in'");
    EXPECT_ERR("x in [1", RTS_ERR_PARSE, 8, "expected ',' or ']'");
    EXPECT_ERR("x in [1,]", RTS_ERR_PARSE, 9, "expected an expression, got ']'");
    EXPECT_ERR("x not in 1", RTS_ERR_PARSE, 10, "expected '['");
    EXPECT_ERR("not", RTS_ERR_PARSE, 4, "expected an expression");
    EXPECT_ERR("x and", RTS_ERR_PARSE, 6, "expected an expression");
    EXPECT_ERR("and x", RTS_ERR_PARSE, 1, "got 'and'");
    EXPECT_ERR("in + 1", RTS_ERR_PARSE, 1, "got 'in'");
    EXPECT_ERR("true(1)", RTS_ERR_PARSE, 5, "got '('");
    EXPECT_ERR("flag ? 1", RTS_ERR_PARSE, 9, "expected ':'");
    EXPECT_ERR("flag ? 1 2", RTS_ERR_PARSE, 10, "expected ':'");
    EXPECT_ERR("flag : 1", RTS_ERR_PARSE, 6, "got ':'");
    EXPECT_ERR("+1", RTS_ERR_PARSE, 1, "expected an expression, got '+'");
    EXPECT_ERR("x + 1 'a'", RTS_ERR_PARSE, 7, "got ''a''");
    EXPECT_ERR("[1]", RTS_ERR_PARSE, 1, "got '['");
    /* the first problem in the source wins, lexical or not */
    EXPECT_ERR("1 + ) 'abc", RTS_ERR_PARSE, 5, "got ')'");
    EXPECT_ERR("1 + # )", RTS_ERR_PARSE, 5, "'#'");
}

TEST(name_and_type_errors)
{
    struct rts_errbuf eb = {0};
    struct rts_expr *e;

    EXPECT_ERR("amout > 1", RTS_ERR_INVAL, 1, "unknown name 'amout'");
    EXPECT_ERR("x + amout", RTS_ERR_INVAL, 5, "unknown name 'amout'");
    EXPECT_ERR("min(x, amout)", RTS_ERR_INVAL, 8, "unknown name 'amout'");
    EXPECT_ERR("foo(1)", RTS_ERR_INVAL, 1, "unknown function 'foo'");
    EXPECT_ERR("x + log(1)", RTS_ERR_INVAL, 5, "unknown function 'log'");
    EXPECT_ERR("amount(1)", RTS_ERR_INVAL, 1, "unknown function 'amount'");
    EXPECT_ERR("min(1)", RTS_ERR_INVAL, 1, "function 'min' takes 2 or more arguments");
    EXPECT_ERR("max()", RTS_ERR_INVAL, 1, "function 'max' takes 2 or more arguments");
    EXPECT_ERR("log1p(1, 2)", RTS_ERR_INVAL, 1, "function 'log1p' takes 1 argument, got 2");
    EXPECT_ERR("x + sqrt()", RTS_ERR_INVAL, 5, "function 'sqrt' takes 1 argument, got 0");
    EXPECT_ERR("clamp(1, 2)", RTS_ERR_INVAL, 1, "function 'clamp' takes 3 arguments");
    EXPECT_ERR("clamp(1, 2, 3, 4)", RTS_ERR_INVAL, 1, "function 'clamp' takes 3 arguments");
    EXPECT_ERR("is_missing(x, y)", RTS_ERR_INVAL, 1, "takes 1 argument");
    EXPECT_ERR("sqrt(s)", RTS_ERR_INVAL, 6, "function 'sqrt' needs numbers, got string");
    EXPECT_ERR("min(1, 'a')", RTS_ERR_INVAL, 8, "function 'min' needs numbers, got string");
    EXPECT_ERR("hour_of_day(decision)", RTS_ERR_INVAL, 13, "needs numbers, got string");

    EXPECT_ERR("s + 1", RTS_ERR_INVAL, 3, "operator '+' needs numbers, got string");
    EXPECT_ERR("decision + 1", RTS_ERR_INVAL, 10, "operator '+' needs numbers, got string");
    EXPECT_ERR("1 - s", RTS_ERR_INVAL, 3, "operator '-' needs numbers, got string");
    EXPECT_ERR("s * 2", RTS_ERR_INVAL, 3, "operator '*' needs numbers");
    EXPECT_ERR("2 / s", RTS_ERR_INVAL, 3, "operator '/' needs numbers");
    EXPECT_ERR("s % 2", RTS_ERR_INVAL, 3, "operator '%' needs numbers");
    EXPECT_ERR("s + t", RTS_ERR_INVAL, 3, "operator '+' needs numbers, got string");
    EXPECT_ERR("-s", RTS_ERR_INVAL, 1, "operator '-' needs a number, got string");
    EXPECT_ERR("s == 1", RTS_ERR_INVAL, 3, "operator '==' cannot compare string with number");
    EXPECT_ERR("x < s", RTS_ERR_INVAL, 3, "operator '<' cannot compare number with string");
    EXPECT_ERR("flag != 'a'", RTS_ERR_INVAL, 6, "cannot compare bool with string");
    EXPECT_ERR("s and true", RTS_ERR_INVAL, 3, "operator 'and' needs bool or number, got string");
    EXPECT_ERR("true or s", RTS_ERR_INVAL, 6, "operator 'or' needs bool or number, got string");
    EXPECT_ERR("not s", RTS_ERR_INVAL, 1, "operator 'not' needs bool or number, got string");
    EXPECT_ERR("s ? 1 : 2", RTS_ERR_INVAL, 3, "condition of '?:' must be bool or number");
    EXPECT_ERR("flag ? 1 : 'a'", RTS_ERR_INVAL, 10, "branches of '?:' have different types");
    EXPECT_ERR("flag ? s : true", RTS_ERR_INVAL, 10, "string and bool");
    EXPECT_ERR("x in [y]", RTS_ERR_INVAL, 7, "items of an 'in' list must be constants");
    EXPECT_ERR("x in [1, 'a']", RTS_ERR_INVAL, 10, "'in' list item is a string");
    EXPECT_ERR("s in [1]", RTS_ERR_INVAL, 7,
               "'in' list item is a number but the left side is a "
               "string");
    EXPECT_ERR("s + 1 > amout", RTS_ERR_INVAL, 3, "needs numbers"); /* first problem wins */

    /* no scope: every name is unknown, constants still compile */
    e = rts_expr_compile("x + 1", NULL, &eb);
    CHECK(e == NULL);
    CHECK_INT(eb.code, RTS_ERR_INVAL);
    CHECK_INT(eb.column, 1);
    e = rts_expr_compile("min(1, 2) * 3", NULL, &eb);
    CHECK(e != NULL);
    if (e) {
        CHECK_NEAR(rts_expr_eval(e, NULL).num, 3, 0);
        rts_expr_free(e);
    }
    e = rts_expr_compile(NULL, &scope, &eb);
    CHECK(e == NULL);
    CHECK_INT(eb.code, RTS_ERR_INVAL);
    CHECK(rts_expr_compile("(", &scope, NULL) == NULL); /* a NULL errbuf is allowed */
}

/* a scope that resolves names to an invalid type */
static int resolve_none(void *ctx, const char *name, size_t len, enum rts_type *type)
{
    (void)ctx;
    (void)name;
    (void)len;
    *type = RTS_T_NONE;
    return 0;
}

TEST(scope_contract)
{
    struct rts_expr_scope bad = {resolve_none, NULL};
    struct rts_errbuf eb = {0};
    struct rts_expr *e;

    e = rts_expr_compile("1 + thing", &bad, &eb);
    CHECK(e == NULL);
    CHECK_INT(eb.code, RTS_ERR_INVAL);
    CHECK_INT(eb.column, 5);
    CHECK(strstr(eb.msg, "'thing'") != NULL);

    /* keywords and function names called as functions never reach the scope */
    resolve_calls = 0;
    e = rts_expr_compile("true and not false or min(1, 2) in [1]", &scope, &eb);
    CHECK(e != NULL);
    CHECK_INT(resolve_calls, 0);
    rts_expr_free(e);
    rts_expr_free(NULL);
}

static char *repeat(const char *head, const char *unit, int n, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * (size_t)n + tl + 1), *p = s;
    int i;

    memcpy(p, head, hl);
    p += hl;
    for (i = 0; i < n; i++) {
        memcpy(p, unit, ul);
        p += ul;
    }
    memcpy(p, tail, tl + 1);
    return s;
}

static int compiles(const char *src, struct rts_errbuf *eb)
{
    struct rts_expr *e = rts_expr_compile(src, &scope, eb);

    rts_expr_free(e);
    return e != NULL;
}

TEST(limits)
{
    struct rts_errbuf eb = {0};
    char *src, *parens;

    /* length: 4096 bytes is fine, 4097 is not */
    src = repeat("x", " ", RTS_EXPR_MAX_LEN - 1, "");
    CHECK(compiles(src, &eb));
    free(src);
    src = repeat("x", " ", RTS_EXPR_MAX_LEN, "");
    CHECK(!compiles(src, &eb));
    CHECK_INT(eb.code, RTS_ERR_LIMIT);
    CHECK_INT(eb.column, RTS_EXPR_MAX_LEN + 1);
    CHECK(strstr(eb.msg, "longer than 4096 bytes") != NULL);
    free(src);

    /* nesting: 63 parentheses inside the top level are fine, 64 are not */
    src = repeat("", "(", RTS_EXPR_MAX_DEPTH - 1, "x");
    parens = repeat(src, ")", RTS_EXPR_MAX_DEPTH - 1, "");
    CHECK(compiles(parens, &eb));
    free(src);
    free(parens);
    src = repeat("", "(", RTS_EXPR_MAX_DEPTH, "x");
    parens = repeat(src, ")", RTS_EXPR_MAX_DEPTH, "");
    CHECK(!compiles(parens, &eb));
    CHECK_INT(eb.code, RTS_ERR_LIMIT);
    CHECK_INT(eb.column, RTS_EXPR_MAX_DEPTH + 1);
    CHECK(strstr(eb.msg, "nested too deeply") != NULL);
    free(src);
    free(parens);

    /* a deep pile of parentheses fails cleanly, without recursing deeply */
    src = repeat("", "(", 4000, "");
    CHECK(!compiles(src, &eb));
    CHECK_INT(eb.code, RTS_ERR_LIMIT);
    free(src);
    src = repeat("", "-", 4000, "x");
    CHECK(!compiles(src, &eb));
    CHECK_INT(eb.code, RTS_ERR_LIMIT);
    free(src);
    src = repeat("", "not ", 1000, "x");
    CHECK(!compiles(src, &eb));
    CHECK_INT(eb.code, RTS_ERR_LIMIT);
    free(src);
    src = repeat("x", " ? 1 : x", 500, "");
    CHECK(!compiles(src, &eb));
    CHECK_INT(eb.code, RTS_ERR_LIMIT);
    free(src);

    /* stack: x + (x + (...)) keeps one value per level */
    src = repeat("", "x + (", 62, "x");
    parens = repeat(src, ")", 62, "");
    CHECK(compiles(parens, &eb));
    free(src);
    free(parens);
    src = repeat("", "clamp(x, x, ", 40, "x");
    parens = repeat(src, ")", 40, "");
    CHECK(!compiles(parens, &eb));
    CHECK_INT(eb.code, RTS_ERR_LIMIT);
    CHECK(strstr(eb.msg, "stack") != NULL);
    free(src);
    free(parens);

    /* long left-leaning chains need no stack, but the tree height is bounded */
    src = repeat("x", " + x", 500, "");
    CHECK(compiles(src, &eb));
    free(src);
    src = repeat("x", "+x", 1000, "");
    CHECK(!compiles(src, &eb));
    CHECK_INT(eb.code, RTS_ERR_LIMIT);
    CHECK(strstr(eb.msg, "too complex") != NULL);
    free(src);
    /* constant chains fold as they are read, so their height stays 1 */
    src = repeat("1", "+1", 2000, "");
    CHECK(compiles(src, &eb));
    free(src);
    /* many arguments and list items are not deep */
    src = repeat("min(x", ", x", 1000, ")");
    CHECK(compiles(src, &eb));
    free(src);
    src = repeat("x in [0", ", 1", 1300, "]");
    CHECK(compiles(src, &eb));
    free(src);

    /* a long expression of many kinds of nodes */
    src = repeat("x", " + min(y, 2) * (s == 'a')", 150, "");
    CHECK(compiles(src, &eb));
    free(src);
}

TEST(slots_and_source)
{
    struct rts_errbuf eb = {0};
    struct rts_expr *e;
    const int *slots = NULL;
    size_t n;

    e = rts_expr_compile("x + y * x - min(y, score)", &scope, &eb);
    CHECK(e != NULL);
    if (e) {
        n = rts_expr_slots(e, &slots);
        CHECK_INT(n, 3);
        if (n == 3) {
            CHECK_INT(slots[0], S_X);
            CHECK_INT(slots[1], S_Y);
            CHECK_INT(slots[2], S_SCORE);
        }
        CHECK_STR(rts_expr_source(e), "x + y * x - min(y, score)");
        rts_expr_free(e);
    }
    e = rts_expr_compile("1 + 2", &scope, &eb);
    CHECK(e != NULL);
    if (e) {
        CHECK_INT(rts_expr_slots(e, &slots), 0);
        rts_expr_free(e);
    }
    e = rts_expr_compile("true or decision == 'x'", &scope, &eb);
    CHECK(e != NULL);
    if (e) {
        CHECK_INT(rts_expr_slots(e, &slots), 0); /* folded away: never read */
        rts_expr_free(e);
    }
    e = rts_expr_compile("decision in ['a'] and is_missing(country)", &scope, &eb);
    CHECK(e != NULL);
    if (e) {
        n = rts_expr_slots(e, &slots);
        CHECK_INT(n, 2);
        if (n == 2) {
            CHECK_INT(slots[0], S_DECISION);
            CHECK_INT(slots[1], S_COUNTRY);
        }
        rts_expr_free(e);
    }
}

TEST(truthy)
{
    CHECK(rts_expr_truthy(RTS_T_NUM, num_val(1)));
    CHECK(rts_expr_truthy(RTS_T_NUM, num_val(-0.1)));
    CHECK(!rts_expr_truthy(RTS_T_NUM, num_val(0)));
    CHECK(!rts_expr_truthy(RTS_T_NUM, num_val(-0.0)));
    CHECK(!rts_expr_truthy(RTS_T_NUM, num_val(NAN)));
    CHECK(rts_expr_truthy(RTS_T_BOOL, num_val(1)));
    CHECK(!rts_expr_truthy(RTS_T_BOOL, num_val(0)));
    CHECK(!rts_expr_truthy(RTS_T_BOOL, num_val(NAN)));
    CHECK(rts_expr_truthy(RTS_T_STR, str_val("")));
    CHECK(rts_expr_truthy(RTS_T_STR, str_val("x")));
    CHECK(!rts_expr_truthy(RTS_T_STR, str_val(NULL)));
}

/* ---- randomized: the VM against a tree-walking oracle ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)((rng_state >> 11) % n);
}

enum { R_X, R_Y, R_Z, R_TS, R_B, R_S, R_T, R__COUNT };

static const char *const r_names[R__COUNT] = {"x", "y", "z", "ts", "b", "s", "t"};
static const enum rts_type r_types[R__COUNT] = {
    RTS_T_NUM, RTS_T_NUM, RTS_T_NUM, RTS_T_NUM, RTS_T_BOOL, RTS_T_STR, RTS_T_STR,
};

static int r_resolve(void *ctx, const char *name, size_t len, enum rts_type *type)
{
    int i;

    (void)ctx;
    for (i = 0; i < R__COUNT; i++) {
        if (strlen(r_names[i]) == len && memcmp(r_names[i], name, len) == 0) {
            *type = r_types[i];
            return i;
        }
    }
    return -1;
}

static const double r_nums[] = {0, 1, 2, 0.5, 3.25, 10, 7, 1e300, 1e-300, 12345.678, 0.1, 100};
static const double r_frame_nums[] = {NAN, 0, 1, -1, 2.5, 7, -3, 1e300, -1e300, 0.1, 12345.678};
static const double r_ts[] = {NAN,
                              0,
                              -1,
                              -1.5,
                              1700000000000.0,
                              1699833600000.0,
                              1709208000000.5,
                              -86400000.0 * 400,
                              -86400000.5,
                              4102444800000.0};
static const char *const r_strs[] = {"",     "a",        "abc",       "ab",    "b",        "it's",
                                     "q\"x", "back\\sl", "tab\there", "nl\nx", "\xc3\xa9", "ABC"};

enum tkind {
    K_NUM,
    K_BOOL,
    K_STR,
    K_VAR,
    K_ARITH,
    K_NEG,
    K_CMP,
    K_AND,
    K_OR,
    K_NOT,
    K_COND,
    K_IN,
    K_CALL
};
enum fn { F_LOG1P, F_ABS, F_SQRT, F_EXP, F_MIN, F_MAX, F_CLAMP, F_HOUR, F_DOW, F_MISS };
static const char *const fn_names[] = {"log1p",       "abs",       "sqrt",  "exp",
                                       "min",         "max",       "clamp", "hour_of_day",
                                       "day_of_week", "is_missing"};

#define MAXKIDS 5
#define MAXNODES 4096

struct tnode {
    int kind, op, type, negate;
    double num;
    const char *str;
    int var;
    int kid[MAXKIDS], nkid;
    int nitems;
    double inum[4];
    const char *istr[4];
};

static struct tnode tn[MAXNODES];
static int ntn;

static int tnew(int kind, int type)
{
    struct tnode *n;

    if (ntn == MAXNODES) {
        return -1;
    }
    n = &tn[ntn];
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->type = type;
    return ntn++;
}

static int gen_expr(int depth, int want);

/* a leaf of type @want (RTS_T_NUM accepts bools too when @loose) */
static int gen_leaf(int want)
{
    int n;

    if (want == RTS_T_STR) {
        if (rnd(2)) {
            n = tnew(K_VAR, RTS_T_STR);
            tn[n].var = rnd(2) ? R_S : R_T;
        } else {
            n = tnew(K_STR, RTS_T_STR);
            tn[n].str = r_strs[rnd(sizeof(r_strs) / sizeof(r_strs[0]))];
        }
        return n;
    }
    if (want == RTS_T_BOOL) {
        if (rnd(2)) {
            n = tnew(K_VAR, RTS_T_BOOL);
            tn[n].var = R_B;
        } else {
            n = tnew(K_BOOL, RTS_T_BOOL);
            tn[n].num = rnd(2);
        }
        return n;
    }
    switch (rnd(4)) {
    case 0:
        n = tnew(K_NUM, RTS_T_NUM);
        tn[n].num = r_nums[rnd(sizeof(r_nums) / sizeof(r_nums[0]))];
        tn[n].num *= rnd(4) ? 1 : -1;
        return n;
    case 1:
        return gen_leaf(RTS_T_BOOL);
    default:
        n = tnew(K_VAR, RTS_T_NUM);
        tn[n].var = (int)rnd(3); /* x, y, z */
        return n;
    }
}

/* NUM or BOOL, either */
static int gen_numlike(int depth)
{
    return gen_expr(depth, rnd(3) ? RTS_T_NUM : RTS_T_BOOL);
}

static int gen_expr(int depth, int want)
{
    int n, i, k;

    if (depth <= 0 || rnd(5) == 0 || ntn > MAXNODES - 64) {
        return gen_leaf(want);
    }
    if (rnd(6) == 0) { /* ?: of any result type */
        n = tnew(K_COND, want);
        tn[n].kid[0] = gen_numlike(depth - 1);
        tn[n].kid[1] = gen_expr(depth - 1, want);
        tn[n].kid[2] = gen_expr(depth - 1, want);
        if (want == RTS_T_NUM && rnd(3) == 0) {
            k = 1 + (int)rnd(2);
            tn[n].kid[k] = gen_expr(depth - 1, RTS_T_BOOL); /* NUM and BOOL unify */
        }
        tn[n].nkid = 3;
        if (want != RTS_T_STR) {
            tn[n].type = tn[tn[n].kid[1]].type == RTS_T_BOOL && tn[tn[n].kid[2]].type == RTS_T_BOOL
                             ? RTS_T_BOOL
                             : RTS_T_NUM;
        }
        return n;
    }
    if (want == RTS_T_STR) {
        return gen_leaf(want);
    }
    if (want == RTS_T_BOOL) {
        switch (rnd(6)) {
        case 0: /* comparison */
            n = tnew(K_CMP, RTS_T_BOOL);
            tn[n].op = (int)rnd(6);
            if (rnd(3) == 0) {
                tn[n].kid[0] = gen_expr(depth - 1, RTS_T_STR);
                tn[n].kid[1] = gen_expr(depth - 1, RTS_T_STR);
            } else {
                tn[n].kid[0] = gen_numlike(depth - 1);
                tn[n].kid[1] = gen_numlike(depth - 1);
            }
            tn[n].nkid = 2;
            return n;
        case 1:
        case 2: /* and / or */
            n = tnew(rnd(2) ? K_AND : K_OR, RTS_T_BOOL);
            tn[n].kid[0] = gen_numlike(depth - 1);
            tn[n].kid[1] = gen_numlike(depth - 1);
            tn[n].nkid = 2;
            return n;
        case 3:
            n = tnew(K_NOT, RTS_T_BOOL);
            tn[n].kid[0] = gen_numlike(depth - 1);
            tn[n].nkid = 1;
            return n;
        case 4: /* in / not in */
            n = tnew(K_IN, RTS_T_BOOL);
            tn[n].negate = (int)rnd(2);
            tn[n].nitems = (int)rnd(5);
            if (rnd(3) == 0) {
                tn[n].kid[0] = gen_expr(depth - 1, RTS_T_STR);
                for (i = 0; i < tn[n].nitems; i++) {
                    tn[n].istr[i] = r_strs[rnd(sizeof(r_strs) / sizeof(r_strs[0]))];
                }
            } else {
                tn[n].kid[0] = gen_numlike(depth - 1);
                for (i = 0; i < tn[n].nitems; i++) {
                    tn[n].inum[i] = rnd(3) ? (double)rnd(4) - 1 : r_frame_nums[rnd(11)];
                }
            }
            tn[n].nkid = 1;
            return n;
        default:
            n = tnew(K_CALL, RTS_T_BOOL);
            tn[n].op = F_MISS;
            k = (int)rnd(3);
            tn[n].kid[0] = gen_expr(depth - 1, k == 0   ? RTS_T_STR
                                               : k == 1 ? RTS_T_BOOL
                                                        : RTS_T_NUM);
            tn[n].nkid = 1;
            return n;
        }
    }
    /* RTS_T_NUM */
    switch (rnd(4)) {
    case 0:
    case 1:
        n = tnew(K_ARITH, RTS_T_NUM);
        tn[n].op = "+-*/%"[rnd(5)];
        tn[n].kid[0] = gen_numlike(depth - 1);
        tn[n].kid[1] = gen_numlike(depth - 1);
        tn[n].nkid = 2;
        return n;
    case 2:
        n = tnew(K_NEG, RTS_T_NUM);
        tn[n].kid[0] = gen_numlike(depth - 1);
        tn[n].nkid = 1;
        return n;
    default:
        n = tnew(K_CALL, RTS_T_NUM);
        tn[n].op = (int)rnd(F_MISS);
        switch (tn[n].op) {
        case F_MIN:
        case F_MAX:
            tn[n].nkid = 2 + (int)rnd(MAXKIDS - 1);
            break;
        case F_CLAMP:
            tn[n].nkid = 3;
            break;
        default:
            tn[n].nkid = 1;
        }
        for (i = 0; i < tn[n].nkid; i++) {
            if (tn[n].op == F_HOUR || tn[n].op == F_DOW) {
                /* keep timestamps in gmtime's range: the ts slot */
                tn[n].kid[i] = tnew(K_VAR, RTS_T_NUM);
                tn[tn[n].kid[i]].var = R_TS;
            } else {
                tn[n].kid[i] = gen_numlike(depth - 1);
            }
        }
        return n;
    }
}

/* -- the oracle: the language rules, written directly -- */

static double fix(double v) /* results are never +-inf */
{
    return isinf(v) ? NAN : v;
}

static int o_truthy(double v)
{
    return !isnan(v) && v != 0;
}

static int o_strcmp(struct rts_str a, struct rts_str b)
{
    size_t i;

    for (i = 0; i < a.n && i < b.n; i++) {
        if ((unsigned char)a.p[i] != (unsigned char)b.p[i]) {
            return (unsigned char)a.p[i] < (unsigned char)b.p[i] ? -1 : 1;
        }
    }
    return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
}

static union rts_val oracle(int i, const union rts_val *f)
{
    const struct tnode *n = &tn[i];
    union rts_val r, a, b, c;
    int j;

    memset(&r, 0, sizeof(r));
    switch (n->kind) {
    case K_NUM:
    case K_BOOL:
        r.num = n->num;
        return r;
    case K_STR:
        return str_val(n->str);
    case K_VAR:
        return f[n->var];
    case K_NEG:
        r.num = -oracle(n->kid[0], f).num;
        return r;
    case K_ARITH:
        a = oracle(n->kid[0], f);
        b = oracle(n->kid[1], f);
        if (isnan(a.num) || isnan(b.num)) {
            r.num = NAN;
        } else if ((n->op == '/' || n->op == '%') && b.num == 0) {
            r.num = NAN;
        } else if (n->op == '+') {
            r.num = fix(a.num + b.num);
        } else if (n->op == '-') {
            r.num = fix(a.num - b.num);
        } else if (n->op == '*') {
            r.num = fix(a.num * b.num);
        } else if (n->op == '/') {
            r.num = fix(a.num / b.num);
        } else {
            r.num = fmod(a.num, b.num);
        }
        return r;
    case K_CMP:
        a = oracle(n->kid[0], f);
        b = oracle(n->kid[1], f);
        if (tn[n->kid[0]].type == RTS_T_STR) {
            int cmp;

            if (!a.str.p || !b.str.p) {
                r.num = 0;
                return r;
            }
            cmp = o_strcmp(a.str, b.str);
            a.num = cmp;
            b.num = 0;
        } else if (isnan(a.num) || isnan(b.num)) {
            r.num = 0;
            return r;
        }
        switch (n->op) {
        case 0:
            r.num = a.num == b.num;
            break;
        case 1:
            r.num = a.num != b.num;
            break;
        case 2:
            r.num = a.num < b.num;
            break;
        case 3:
            r.num = a.num <= b.num;
            break;
        case 4:
            r.num = a.num > b.num;
            break;
        default:
            r.num = a.num >= b.num;
        }
        return r;
    case K_AND:
        r.num = o_truthy(oracle(n->kid[0], f).num) && o_truthy(oracle(n->kid[1], f).num);
        return r;
    case K_OR:
        r.num = o_truthy(oracle(n->kid[0], f).num) || o_truthy(oracle(n->kid[1], f).num);
        return r;
    case K_NOT:
        r.num = !o_truthy(oracle(n->kid[0], f).num);
        return r;
    case K_COND:
        return o_truthy(oracle(n->kid[0], f).num) ? oracle(n->kid[1], f) : oracle(n->kid[2], f);
    case K_IN:
        a = oracle(n->kid[0], f);
        if (tn[n->kid[0]].type == RTS_T_STR ? !a.str.p : isnan(a.num)) {
            r.num = 0;
            return r;
        }
        r.num = 0;
        for (j = 0; j < n->nitems; j++) {
            if (tn[n->kid[0]].type == RTS_T_STR ? o_strcmp(a.str, str_val(n->istr[j]).str) == 0
                                                : a.num == n->inum[j]) {
                r.num = 1;
            }
        }
        if (n->negate) {
            r.num = !r.num;
        }
        return r;
    case K_CALL:
        if (n->op == F_MISS) {
            a = oracle(n->kid[0], f);
            r.num = tn[n->kid[0]].type == RTS_T_STR ? a.str.p == NULL : isnan(a.num);
            return r;
        }
        if (n->op == F_MIN || n->op == F_MAX) {
            r.num = NAN;
            for (j = 0; j < n->nkid; j++) {
                a = oracle(n->kid[j], f);
                if (isnan(a.num)) {
                    continue;
                }
                if (isnan(r.num) || (n->op == F_MIN ? a.num < r.num : a.num > r.num)) {
                    r.num = a.num;
                }
            }
            return r;
        }
        a = oracle(n->kid[0], f);
        if (n->op == F_CLAMP) {
            b = oracle(n->kid[1], f);
            c = oracle(n->kid[2], f);
            if (isnan(a.num) || isnan(b.num) || isnan(c.num)) {
                r.num = NAN;
            } else {
                r.num = fmin(fmax(a.num, b.num), c.num); /* lo > hi: hi, as numpy.clip */
            }
            return r;
        }
        if (isnan(a.num)) {
            r.num = NAN;
            return r;
        }
        switch (n->op) {
        case F_LOG1P:
            r.num = a.num <= -1 ? NAN : log1p(a.num);
            break;
        case F_ABS:
            r.num = fabs(a.num);
            break;
        case F_SQRT:
            r.num = a.num < 0 ? NAN : sqrt(a.num);
            break;
        case F_EXP:
            r.num = fix(exp(a.num));
            break;
        default: {
            time_t secs = (time_t)floor(a.num / 1000.0);
            struct tm tm;

            gmtime_r(&secs, &tm);
            r.num = n->op == F_HOUR ? tm.tm_hour : (tm.tm_wday + 6) % 7;
        }
        }
        return r;
    default:
        r.num = NAN;
        return r;
    }
}

/* -- printing: fully parenthesized, or with as few parentheses as precedence allows -- */

struct out {
    char buf[RTS_EXPR_MAX_LEN * 4];
    size_t len;
    int overflow;
};

static void put(struct out *o, const char *s)
{
    size_t n = strlen(s);

    if (o->len + n >= sizeof(o->buf)) {
        o->overflow = 1;
        return;
    }
    memcpy(o->buf + o->len, s, n + 1);
    o->len += n;
}

static void put_num(struct out *o, double d)
{
    char tmp[64];

    snprintf(tmp, sizeof(tmp), "%.17g", fabs(d));
    if (d < 0 || (d == 0 && signbit(d))) {
        put(o, "-");
    }
    put(o, tmp);
}

static void put_str(struct out *o, const char *s)
{
    char q = rnd(2) ? '\'' : '"', tmp[3] = {0};

    tmp[0] = q;
    put(o, tmp);
    for (; *s; s++) {
        if (*s == '\\') {
            put(o, "\\\\");
        } else if (*s == q) {
            put(o, q == '\'' ? "\\'" : "\\\"");
        } else if (*s == '\n') {
            put(o, "\\n");
        } else if (*s == '\t') {
            put(o, "\\t");
        } else if ((*s == '\'' || *s == '"') && rnd(2)) {
            put(o, *s == '\'' ? "\\'" : "\\\""); /* escaping the other quote is allowed */
        } else {
            tmp[0] = *s;
            tmp[1] = 0;
            put(o, tmp);
        }
    }
    tmp[0] = q;
    tmp[1] = 0;
    put(o, tmp);
}

/* precedence levels: 1 ?:, 2 or, 3 and, 4 not, 5 comparison, 6 sum, 7 product, 8 unary,
 * 9 primary */
static int level(int i)
{
    const struct tnode *n = &tn[i];

    switch (n->kind) {
    case K_COND:
        return 1;
    case K_OR:
        return 2;
    case K_AND:
        return 3;
    case K_NOT:
        return 4;
    case K_CMP:
    case K_IN:
        return 5;
    case K_ARITH:
        return n->op == '+' || n->op == '-' ? 6 : 7;
    case K_NEG:
        return 8;
    case K_NUM:
        return n->num < 0 || (n->num == 0 && signbit(n->num)) ? 8 : 9;
    default:
        return 9;
    }
}

static void print(struct out *o, int i, int need, int minimal)
{
    static const char *const cmp_ops[] = {"==", "!=", "<", "<=", ">", ">="};
    const struct tnode *n = &tn[i];
    int paren = minimal ? level(i) < need : level(i) < 9, j;

    if (paren) {
        put(o, "(");
    }
    switch (n->kind) {
    case K_NUM:
        put_num(o, n->num);
        break;
    case K_BOOL:
        put(o, n->num ? "true" : "false");
        break;
    case K_STR:
        put_str(o, n->str);
        break;
    case K_VAR:
        put(o, r_names[n->var]);
        break;
    case K_NEG:
        put(o, "-");
        print(o, n->kid[0], 8, minimal);
        break;
    case K_ARITH: {
        char op[4] = {' ', (char)n->op, ' ', 0};
        int lv = level(i);

        print(o, n->kid[0], lv, minimal);
        put(o, op);
        print(o, n->kid[1], lv + 1, minimal);
        break;
    }
    case K_CMP:
        print(o, n->kid[0], 6, minimal);
        put(o, " ");
        put(o, cmp_ops[n->op]);
        put(o, " ");
        print(o, n->kid[1], 6, minimal);
        break;
    case K_AND:
    case K_OR:
        print(o, n->kid[0], level(i), minimal);
        put(o, n->kind == K_AND ? " and " : " or ");
        print(o, n->kid[1], level(i) + 1, minimal);
        break;
    case K_NOT:
        put(o, "not ");
        print(o, n->kid[0], 4, minimal);
        break;
    case K_COND:
        print(o, n->kid[0], 2, minimal);
        put(o, " ? ");
        print(o, n->kid[1], 1, minimal);
        put(o, " : ");
        print(o, n->kid[2], 1, minimal);
        break;
    case K_IN:
        print(o, n->kid[0], 6, minimal);
        put(o, n->negate ? " not in [" : " in [");
        for (j = 0; j < n->nitems; j++) {
            if (j) {
                put(o, ", ");
            }
            if (tn[n->kid[0]].type == RTS_T_STR) {
                put_str(o, n->istr[j]);
            } else if (isnan(n->inum[j])) {
                put(o, "1 / 0"); /* a missing constant */
            } else {
                put_num(o, n->inum[j]);
            }
        }
        put(o, "]");
        break;
    case K_CALL:
        put(o, fn_names[n->op]);
        put(o, "(");
        for (j = 0; j < n->nkid; j++) {
            if (j) {
                put(o, ", ");
            }
            print(o, n->kid[j], 1, minimal);
        }
        put(o, ")");
        break;
    }
    if (paren) {
        put(o, ")");
    }
}

static void random_frame(union rts_val *f)
{
    int i;

    for (i = 0; i < R_TS; i++) {
        f[i] = num_val(r_frame_nums[rnd(sizeof(r_frame_nums) / sizeof(r_frame_nums[0]))]);
    }
    f[R_TS] = num_val(r_ts[rnd(sizeof(r_ts) / sizeof(r_ts[0]))]);
    f[R_B] = num_val(rnd(3) == 0 ? NAN : rnd(2));
    f[R_S] = str_val(rnd(5) == 0 ? NULL : r_strs[rnd(sizeof(r_strs) / sizeof(r_strs[0]))]);
    f[R_T] = str_val(rnd(5) == 0 ? NULL : r_strs[rnd(sizeof(r_strs) / sizeof(r_strs[0]))]);
}

static int same_value(int type, union rts_val a, union rts_val b)
{
    if (type == RTS_T_STR) {
        if (!a.str.p || !b.str.p) {
            return !a.str.p && !b.str.p;
        }
        return a.str.n == b.str.n && memcmp(a.str.p, b.str.p, a.str.n) == 0;
    }
    if (isnan(a.num) || isnan(b.num)) {
        return isnan(a.num) && isnan(b.num);
    }
    return a.num == b.num || fabs(a.num - b.num) <= 1e-12 * fabs(b.num);
}

TEST(random_against_oracle)
{
    static struct out o;
    struct rts_expr_scope rs = {r_resolve, NULL};
    union rts_val f[R__COUNT];
    int iter, fr, compiled = 0, bad = 0;

    for (iter = 0; iter < 20000; iter++) {
        struct rts_errbuf eb = {0};
        struct rts_expr *e;
        int want = rnd(5) == 0 ? RTS_T_STR : rnd(2) ? RTS_T_BOOL : RTS_T_NUM;
        int root;

        ntn = 0;
        root = gen_expr(1 + (int)rnd(6), want);
        o.len = 0;
        o.overflow = 0;
        o.buf[0] = 0;
        print(&o, root, 1, (int)rnd(2));
        if (o.overflow || o.len > RTS_EXPR_MAX_LEN) {
            continue;
        }
        e = rts_expr_compile(o.buf, &rs, &eb);
        if (!e) {
            /* only the limits may refuse a well-typed expression */
            if (eb.code != RTS_ERR_LIMIT) {
                CHECK(e != NULL);
                fprintf(stderr, "    %s\n    column %d: %s\n", o.buf, eb.column, eb.msg);
                if (++bad > 5) {
                    return;
                }
            }
            continue;
        }
        compiled++;
        CHECK_INT(rts_expr_type(e), tn[root].type);
        for (fr = 0; fr < 8; fr++) {
            union rts_val got, exp;

            random_frame(f);
            got = rts_expr_eval(e, f);
            exp = oracle(root, f);
            if (tn[root].type != RTS_T_STR && isinf(exp.num)) {
                exp.num = NAN; /* a raw input passed through is still never infinite */
            }
            if (!same_value(tn[root].type, got, exp)) {
                CHECK(same_value(tn[root].type, got, exp));
                fprintf(stderr, "    %s\n    frame x=%g y=%g z=%g ts=%.17g b=%g s=%s t=%s\n", o.buf,
                        f[R_X].num, f[R_Y].num, f[R_Z].num, f[R_TS].num, f[R_B].num,
                        f[R_S].str.p ? f[R_S].str.p : "(missing)",
                        f[R_T].str.p ? f[R_T].str.p : "(missing)");
                if (tn[root].type != RTS_T_STR) {
                    fprintf(stderr, "    vm %.17g oracle %.17g\n", got.num, exp.num);
                }
                if (++bad > 5) {
                    rts_expr_free(e);
                    return;
                }
            }
        }
        rts_expr_free(e);
    }
    CHECK(compiled > 15000);
    fprintf(stderr, "     %d random expressions checked against the oracle\n", compiled);
}

/* ---- randomized: token soup must compile or fail cleanly ---- */

TEST(random_token_soup)
{
    static const char *const toks[] = {
        "x",    "y",     "s",           "b",           "ts",         "1",     "0",     ".5",
        "1e3",  "'a'",   "\"b\"",       "true",        "false",      "(",     ")",     "[",
        "]",    ",",     "?",           ":",           "+",          "-",     "*",     "/",
        "%",    "==",    "!=",          "<",           "<=",         ">",     ">=",    "and",
        "or",   "not",   "in",          "min",         "max",        "clamp", "log1p", "abs",
        "sqrt", "exp",   "hour_of_day", "day_of_week", "is_missing", "nope",  "=",     "'",
        "\\",   "1e999", "@",
    };
    struct rts_expr_scope rs = {r_resolve, NULL};
    union rts_val f[R__COUNT];
    char src[512];
    int iter, ok = 0;

    for (iter = 0; iter < 50000; iter++) {
        struct rts_errbuf eb = {0};
        struct rts_expr *e;
        size_t len = 0;
        int ntok = 1 + (int)rnd(14), i;

        for (i = 0; i < ntok; i++) {
            const char *t = toks[rnd(sizeof(toks) / sizeof(toks[0]))];
            size_t tl = strlen(t);

            memcpy(src + len, t, tl);
            len += tl;
            if (rnd(4)) {
                src[len++] = ' ';
            }
        }
        src[len] = '\0';
        e = rts_expr_compile(src, &rs, &eb);
        if (!e) {
            CHECK(eb.code == RTS_ERR_PARSE || eb.code == RTS_ERR_INVAL);
            CHECK(eb.column >= 1 && (size_t)eb.column <= len + 1);
            CHECK(eb.msg[0] != '\0');
            continue;
        }
        ok++;
        random_frame(f);
        {
            union rts_val v = rts_expr_eval(e, f);
            enum rts_type t = rts_expr_type(e);

            if (t == RTS_T_NUM) {
                CHECK(!isinf(v.num));
            } else if (t == RTS_T_BOOL) {
                CHECK(isnan(v.num) || v.num == 0 || v.num == 1);
            } else {
                CHECK(t == RTS_T_STR);
            }
        }
        rts_expr_free(e);
    }
    CHECK(ok > 100);
    fprintf(stderr, "     %d of 50000 random token sequences compiled\n", ok);
}

/* ---- reentrancy: one expression, several threads ---- */

struct worker {
    const struct rts_expr *e;
    double sum;
    int mismatches;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    union rts_val f[S__COUNT];
    int i;

    default_frame(f);
    for (i = 0; i < 200000; i++) {
        double want;
        union rts_val v;

        f[S_AMOUNT] = num_val((double)(i % 40000));
        f[S_COUNT] = num_val((double)(i % 17));
        want = fmin(1, (double)(i % 40000) / 20000 + ((i % 17) > 10) * 0.5);
        v = rts_expr_eval(w->e, f);
        w->sum += v.num;
        if (v.num != want) {
            w->mismatches++;
        }
    }
    return NULL;
}

TEST(threads)
{
    struct rts_errbuf eb = {0};
    struct rts_expr *e;
    struct worker w[4];
    pthread_t th[4];
    int i;

    e = rts_expr_compile("min(1, amount / 20000 + (txn_count_5m > 10) * 0.5)", &scope, &eb);
    CHECK(e != NULL);
    if (!e) {
        return;
    }
    for (i = 0; i < 4; i++) {
        w[i].e = e;
        w[i].sum = 0;
        w[i].mismatches = 0;
        CHECK_INT(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(w[i].mismatches, 0);
        CHECK_NEAR(w[i].sum, w[0].sum, 0);
    }
    rts_expr_free(e);
}

int main(void)
{
    default_frame(frame);
    RUN(design_examples);
    RUN(literals);
    RUN(precedence);
    RUN(arithmetic);
    RUN(missing);
    RUN(comparisons);
    RUN(membership);
    RUN(logic);
    RUN(conditional);
    RUN(strings_point_into_frame_or_pool);
    RUN(functions);
    RUN(time_functions);
    RUN(types);
    RUN(syntax_errors);
    RUN(name_and_type_errors);
    RUN(scope_contract);
    RUN(limits);
    RUN(slots_and_source);
    RUN(truthy);
    RUN(random_against_oracle);
    RUN(random_token_soup);
    RUN(threads);
    return TEST_EXIT();
}
