/*
 * vm.c - the bytecode interpreter and the run-time semantics of every
 * operator and function.
 *
 * One loop over one switch, a value stack of RTS_EXPR_MAX_DEPTH entries on
 * the C stack, no allocation, no shared mutable state: any number of threads
 * may run one program at once. The compiler guarantees the program is well
 * formed (see expr_int.h), so nothing is checked here at run time.
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

/* The two topmost values: A below B. Binary ops pop B and write into A. */
#define A (sp[-2])
#define B (sp[-1])
#define K (k[in->arg])

static inline union rts_val run(const struct rts_expr_insn *code, const union rts_val *k,
                                const union rts_val *frame)
{
    union rts_val stack[RTS_EXPR_MAX_DEPTH];
    union rts_val *sp = stack; /* next free entry */
    const struct rts_expr_insn *pc = code;

    for (;;) {
        const struct rts_expr_insn *in = pc++;

        switch ((enum rts_expr_op)in->op) {
        case OP_RET:
            return B;
        case OP_CONST:
            *sp++ = K;
            break;
        case OP_LOAD:
            *sp++ = frame[in->arg];
            break;
        case OP_JMP:
            pc = code + in->arg;
            break;
        case OP_JF:
            sp--;
            if (!truthy(sp->num)) {
                pc = code + in->arg;
            }
            break;
        case OP_ANDJ:
            if (!truthy(B.num)) {
                B.num = 0.0;
                pc = code + in->arg;
            } else {
                sp--;
            }
            break;
        case OP_ORJ:
            if (truthy(B.num)) {
                B.num = 1.0;
                pc = code + in->arg;
            } else {
                sp--;
            }
            break;
        case OP_BOOL:
            B.num = b2d(truthy(B.num));
            break;
        case OP_NEG:
            B.num = -B.num;
            break;
        case OP_NOT:
            B.num = b2d(!truthy(B.num));
            break;

        case OP_ADD:
            A.num = finite_or_nan(A.num + B.num);
            sp--;
            break;
        case OP_SUB:
            A.num = finite_or_nan(A.num - B.num);
            sp--;
            break;
        case OP_MUL:
            A.num = finite_or_nan(A.num * B.num);
            sp--;
            break;
        case OP_DIV:
            A.num = finite_or_nan(A.num / B.num); /* x/0 is +-inf or NaN: missing */
            sp--;
            break;
        case OP_MOD:
            A.num = fmod(A.num, B.num); /* NaN for x % 0 */
            sp--;
            break;
        case OP_EQ:
            A.num = b2d(A.num == B.num);
            sp--;
            break;
        case OP_NE:
            A.num = ne_num(A.num, B.num);
            sp--;
            break;
        case OP_LT:
            A.num = b2d(A.num < B.num);
            sp--;
            break;
        case OP_LE:
            A.num = b2d(A.num <= B.num);
            sp--;
            break;
        case OP_GT:
            A.num = b2d(A.num > B.num);
            sp--;
            break;
        case OP_GE:
            A.num = b2d(A.num >= B.num);
            sp--;
            break;
        case OP_MIN:
            A.num = min_skip(A.num, B.num);
            sp--;
            break;
        case OP_MAX:
            A.num = max_skip(A.num, B.num);
            sp--;
            break;

        case OP_ADDK:
            B.num = finite_or_nan(B.num + K.num);
            break;
        case OP_SUBK:
            B.num = finite_or_nan(B.num - K.num);
            break;
        case OP_MULK:
            B.num = finite_or_nan(B.num * K.num);
            break;
        case OP_DIVK:
            B.num = finite_or_nan(B.num / K.num);
            break;
        case OP_MODK:
            B.num = fmod(B.num, K.num);
            break;
        case OP_EQK:
            B.num = b2d(B.num == K.num);
            break;
        case OP_NEK:
            B.num = ne_num(B.num, K.num);
            break;
        case OP_LTK:
            B.num = b2d(B.num < K.num);
            break;
        case OP_LEK:
            B.num = b2d(B.num <= K.num);
            break;
        case OP_GTK:
            B.num = b2d(B.num > K.num);
            break;
        case OP_GEK:
            B.num = b2d(B.num >= K.num);
            break;
        case OP_MINK:
            B.num = min_skip(B.num, K.num);
            break;
        case OP_MAXK:
            B.num = max_skip(B.num, K.num);
            break;

        case OP_SEQ:
            A.num = b2d(A.str.p && B.str.p && str_eq(A.str, B.str));
            sp--;
            break;
        case OP_SNE:
            A.num = b2d(A.str.p && B.str.p && !str_eq(A.str, B.str));
            sp--;
            break;
        case OP_SLT:
            A.num = b2d(A.str.p && B.str.p && str_cmp(A.str, B.str) < 0);
            sp--;
            break;
        case OP_SLE:
            A.num = b2d(A.str.p && B.str.p && str_cmp(A.str, B.str) <= 0);
            sp--;
            break;
        case OP_SGT:
            A.num = b2d(A.str.p && B.str.p && str_cmp(A.str, B.str) > 0);
            sp--;
            break;
        case OP_SGE:
            A.num = b2d(A.str.p && B.str.p && str_cmp(A.str, B.str) >= 0);
            sp--;
            break;

        case OP_IN:
            B.num = b2d(in_num(B.num, &K, in->aux)); /* NaN equals nothing */
            break;
        case OP_NIN:
            B.num = b2d(!isnan(B.num) && !in_num(B.num, &K, in->aux));
            break;
        case OP_SIN:
            B.num = b2d(B.str.p && in_str(B.str, &K, in->aux));
            break;
        case OP_SNIN:
            B.num = b2d(B.str.p && !in_str(B.str, &K, in->aux));
            break;

        case OP_LOG1P:
            B.num = finite_or_nan(log1p(B.num)); /* log1p(-1) = -inf, x < -1 NaN */
            break;
        case OP_ABS:
            B.num = finite_or_nan(fabs(B.num));
            break;
        case OP_SQRT:
            B.num = finite_or_nan(sqrt(B.num));
            break;
        case OP_EXP:
            B.num = finite_or_nan(exp(B.num));
            break;
        case OP_CLAMP:
            sp[-3].num = clamp(sp[-3].num, A.num, B.num);
            sp -= 2;
            break;
        case OP_HOUR:
            B.num = hour_of_day(B.num);
            break;
        case OP_DOW:
            B.num = day_of_week(B.num);
            break;
        case OP_MISS:
            B.num = b2d(isnan(B.num));
            break;
        case OP_SMISS:
            B.num = b2d(B.str.p == NULL);
            break;
        case OP__COUNT:
        default:
            return B; /* unreachable for compiler output */
        }
    }
}

#undef A
#undef B
#undef K

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
