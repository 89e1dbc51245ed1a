/*
 * vm.c - the bytecode interpreter and the run-time semantics of every
 * operator and function.
 *
 * One loop over one switch, a value stack of RTS_EXPR_MAX_DEPTH entries on
 * the C stack with its top cached in a local, no allocation, no shared
 * mutable state: any number of threads may run one program at once. The
 * compiler guarantees the program is well formed (see expr_int.h), so nothing
 * is checked here at run time.
 *
 * Missing values: arithmetic and the functions propagate NaN; an infinite
 * result becomes NaN (so division by zero and overflow are missing, never
 * +-inf); comparisons and membership with a missing operand are false, even
 * !=; and/or/not and ?: read missing as false; min and max skip missing
 * arguments. Constant folding runs this same code at compile time.
 */
#include <math.h>
#include <string.h>

#include "expr/expr_int.h"

#define MS_PER_HOUR 3600000.0
#define MS_PER_DAY 86400000.0

static inline int truthy(double v)
{
    return v != 0 && !isnan(v);
}

/* +-inf becomes missing */
static inline double finite_or_nan(double v)
{
    return isinf(v) ? NAN : v;
}

static inline double b2d(int b)
{
    return b ? 1.0 : 0.0;
}

/* min and max that skip a missing operand: missing only if both are */
static inline double min_skip(double a, double b)
{
    return (a < b || isnan(b)) ? a : b;
}

static inline double max_skip(double a, double b)
{
    return (a > b || isnan(b)) ? a : b;
}

static inline double ne_num(double a, double b)
{
    return b2d(a != b && !isnan(a) && !isnan(b));
}

/* min(max(x, lo), hi): when lo > hi, hi wins (numpy.clip does the same) */
static inline double clamp(double x, double lo, double hi)
{
    if (isnan(x) || isnan(lo) || isnan(hi)) {
        return NAN;
    }
    x = x < lo ? lo : x;
    return x > hi ? hi : x;
}

/* Hour of day (0..23) and day of week (Monday 0 .. Sunday 6) of epoch
 * milliseconds @ts, UTC, flooring so that times before 1970 fall in the right
 * day; 1970-01-01 was a Thursday (3). Integer arithmetic while @ts fits an
 * int64 (any real timestamp), fmod beyond. Returns 0 if @ts is missing. */
static inline int civil(double ts, double *hour, double *dow)
{
    double ms, day;

    if (ts > -9e18 && ts < 9e18) {
        int64_t t = (int64_t)ts, d, r;

        t -= (double)t > ts; /* floor: the cast truncates toward zero */
        d = t / 86400000;
        r = t % 86400000;
        if (r < 0) {
            r += 86400000;
            d--;
        }
        *hour = (double)(r / 3600000);
        *dow = (double)(((d + 3) % 7 + 7) % 7);
        return 1;
    }
    if (!isfinite(ts)) {
        return 0;
    }
    ms = fmod(ts, MS_PER_DAY); /* |ts| >= 9e18 is an integer: exact */
    if (ms < 0) {
        ms += MS_PER_DAY;
    }
    day = floor(ts / MS_PER_DAY);
    *hour = floor(ms / MS_PER_HOUR);
    *dow = fmod(fmod(day + 3.0, 7.0) + 7.0, 7.0);
    return 1;
}

static inline double hour_of_day(double ts)
{
    double hour, dow;

    return civil(ts, &hour, &dow) ? hour : NAN;
}

static inline double day_of_week(double ts)
{
    double hour, dow;

    return civil(ts, &hour, &dow) ? dow : NAN;
}

/* Byte order of two present strings, then the shorter first. */
static inline int str_cmp(struct rts_str a, struct rts_str b)
{
    int r = memcmp(a.p, b.p, a.n < b.n ? a.n : b.n);

    return r ? r : (a.n > b.n) - (a.n < b.n);
}

static inline int str_eq(struct rts_str a, struct rts_str b)
{
    return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

static inline int in_num(double x, const union rts_val *k, unsigned n)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        if (k[i].num == x) {
            return 1;
        }
    }
    return 0;
}

static inline int in_str(struct rts_str x, const union rts_val *k, unsigned n)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        if (str_eq(k[i].str, x)) {
            return 1;
        }
    }
    return 0;
}

/* The top of the stack lives in a local (a register), the rest in memory:
 * T is the top, POP() takes the value below it. Binary operators pop their
 * left operand and replace T, so a chain of operations never round-trips
 * its intermediate results through memory. */
#define T (top)
#define K (k[in->arg])
#define PUSH(v) (*sp++ = top, top = (v))
#define POP() (*--sp)
#define BINARY(expr)                                                                               \
    do {                                                                                           \
        const union rts_val a = POP();                                                             \
        top.num = (expr);                                                                          \
    } while (0)

static inline union rts_val run(const struct rts_expr_insn *code, const union rts_val *k,
                                const union rts_val *frame)
{
    union rts_val stack[RTS_EXPR_MAX_DEPTH]; /* the first push saves the empty top here */
    union rts_val *sp = stack;               /* next free entry */
    union rts_val top = {0};
    const struct rts_expr_insn *pc = code;

    for (;;) {
        const struct rts_expr_insn *in = pc++;

        switch ((enum rts_expr_op)in->op) {
        case OP_RET:
            return T;
        case OP_CONST:
            PUSH(K);
            break;
        case OP_LOAD:
            PUSH(frame[in->arg]);
            break;
        case OP_JMP:
            pc = code + in->arg;
            break;
        case OP_JF:
            if (!truthy(T.num)) {
                pc = code + in->arg;
            }
            T = POP();
            break;
        case OP_ANDJ:
            if (!truthy(T.num)) {
                T.num = 0.0;
                pc = code + in->arg;
            } else {
                T = POP();
            }
            break;
        case OP_ORJ:
            if (truthy(T.num)) {
                T.num = 1.0;
                pc = code + in->arg;
            } else {
                T = POP();
            }
            break;
        case OP_BOOL:
            T.num = b2d(truthy(T.num));
            break;
        case OP_NEG:
            T.num = -T.num;
            break;
        case OP_NOT:
            T.num = b2d(!truthy(T.num));
            break;

        case OP_ADD:
            BINARY(finite_or_nan(a.num + T.num));
            break;
        case OP_SUB:
            BINARY(finite_or_nan(a.num - T.num));
            break;
        case OP_MUL:
            BINARY(finite_or_nan(a.num * T.num));
            break;
        case OP_DIV:
            BINARY(finite_or_nan(a.num / T.num)); /* x/0 is +-inf or NaN: missing */
            break;
        case OP_MOD:
            BINARY(fmod(a.num, T.num)); /* NaN for x % 0 */
            break;
        case OP_EQ:
            BINARY(b2d(a.num == T.num));
            break;
        case OP_NE:
            BINARY(ne_num(a.num, T.num));
            break;
        case OP_LT:
            BINARY(b2d(a.num < T.num));
            break;
        case OP_LE:
            BINARY(b2d(a.num <= T.num));
            break;
        case OP_GT:
            BINARY(b2d(a.num > T.num));
            break;
        case OP_GE:
            BINARY(b2d(a.num >= T.num));
            break;
        case OP_MIN:
            BINARY(min_skip(a.num, T.num));
            break;
        case OP_MAX:
            BINARY(max_skip(a.num, T.num));
            break;

        case OP_ADDK:
            T.num = finite_or_nan(T.num + K.num);
            break;
        case OP_SUBK:
            T.num = finite_or_nan(T.num - K.num);
            break;
        case OP_MULK:
            T.num = finite_or_nan(T.num * K.num);
            break;
        case OP_DIVK:
            T.num = finite_or_nan(T.num / K.num);
            break;
        case OP_MODK:
            T.num = fmod(T.num, K.num);
            break;
        case OP_EQK:
            T.num = b2d(T.num == K.num);
            break;
        case OP_NEK:
            T.num = ne_num(T.num, K.num);
            break;
        case OP_LTK:
            T.num = b2d(T.num < K.num);
            break;
        case OP_LEK:
            T.num = b2d(T.num <= K.num);
            break;
        case OP_GTK:
            T.num = b2d(T.num > K.num);
            break;
        case OP_GEK:
            T.num = b2d(T.num >= K.num);
            break;
        case OP_MINK:
            T.num = min_skip(T.num, K.num);
            break;
        case OP_MAXK:
            T.num = max_skip(T.num, K.num);
            break;

        case OP_SEQ:
            BINARY(b2d(a.str.p && T.str.p && str_eq(a.str, T.str)));
            break;
        case OP_SNE:
            BINARY(b2d(a.str.p && T.str.p && !str_eq(a.str, T.str)));
            break;
        case OP_SLT:
            BINARY(b2d(a.str.p && T.str.p && str_cmp(a.str, T.str) < 0));
            break;
        case OP_SLE:
            BINARY(b2d(a.str.p && T.str.p && str_cmp(a.str, T.str) <= 0));
            break;
        case OP_SGT:
            BINARY(b2d(a.str.p && T.str.p && str_cmp(a.str, T.str) > 0));
            break;
        case OP_SGE:
            BINARY(b2d(a.str.p && T.str.p && str_cmp(a.str, T.str) >= 0));
            break;

        case OP_IN:
            T.num = b2d(in_num(T.num, &K, in->aux)); /* NaN equals nothing */
            break;
        case OP_NIN:
            T.num = b2d(!isnan(T.num) && !in_num(T.num, &K, in->aux));
            break;
        case OP_SIN:
            T.num = b2d(T.str.p && in_str(T.str, &K, in->aux));
            break;
        case OP_SNIN:
            T.num = b2d(T.str.p && !in_str(T.str, &K, in->aux));
            break;

        case OP_LOG1P:
            T.num = finite_or_nan(log1p(T.num)); /* log1p(-1) = -inf, x < -1 NaN */
            break;
        case OP_ABS:
            T.num = finite_or_nan(fabs(T.num));
            break;
        case OP_SQRT:
            T.num = finite_or_nan(sqrt(T.num));
            break;
        case OP_EXP:
            T.num = finite_or_nan(exp(T.num));
            break;
        case OP_CLAMP: {
            const union rts_val lo = POP(), x = POP();

            T.num = clamp(x.num, lo.num, T.num);
            break;
        }
        case OP_HOUR:
            T.num = hour_of_day(T.num);
            break;
        case OP_DOW:
            T.num = day_of_week(T.num);
            break;
        case OP_MISS:
            T.num = b2d(isnan(T.num));
            break;
        case OP_SMISS:
            T.num = b2d(T.str.p == NULL);
            break;
        case OP__COUNT:
        default:
            return T; /* unreachable for compiler output */
        }
    }
}

#undef T
#undef K
#undef PUSH
#undef POP
#undef BINARY

union rts_val rts_expr_run(const struct rts_expr_insn *code, const union rts_val *k,
                           const union rts_val *frame)
{
    return run(code, k, frame);
}

union rts_val rts_expr_eval(const struct rts_expr *e, const union rts_val *frame)
{
    union rts_val v = run(e->code, e->k, frame);

    /* a number loaded straight from the frame may be infinite */
    if (e->type == RTS_T_NUM && isinf(v.num)) {
        v.num = NAN;
    }
    return v;
}

int rts_expr_truthy(enum rts_type t, union rts_val v)
{
    return t == RTS_T_STR ? v.str.p != NULL : truthy(v.num);
}
