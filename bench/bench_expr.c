/*
 * bench_expr.c - nanoseconds per rts_expr_eval for the expressions of the
 * fraud pipeline (DESIGN.md section 2): the fallback score, the two rules,
 * the alert condition and two features.
 *
 * Each expression runs over a small ring of frames with varied values (some
 * missing) so branches are not perfectly predicted; a volatile sink keeps the
 * compiler from dropping the calls. Each figure is the median of several
 * timed runs after a warm-up. The goal is well under 50 ns per evaluation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "expr/expr.h"

#include "bench.h"

#define NFRAMES 64
#define RUNS 9
#define ITERS 2000000

enum { S_AMOUNT, S_COUNT, S_SCORE, S_DECISION, S_MEAN, S_TS, S__COUNT };

static const char *const slot_names[S__COUNT] = {
    "amount", "txn_count_5m", "score", "decision", "amount_mean_30d", "ts",
};
static const enum rts_type slot_types[S__COUNT] = {
    RTS_T_NUM, RTS_T_NUM, RTS_T_NUM, RTS_T_STR, RTS_T_NUM, RTS_T_NUM,
};

static int resolve(void *ctx, const char *name, size_t len, enum rts_type *type)
{
    int i;

    for (i = 0; i < S__COUNT; i++) {
        if (strlen(slot_names[i]) == len && memcmp(slot_names[i], name, len) == 0) {
            *type = slot_types[i];
            return i;
        }
    }
    return -1;
}

static volatile double sink;

static double time_once(const struct rts_expr *e, union rts_val (*frames)[S__COUNT])
{
    uint64_t t0 = rts_now_ns(), t1;
    double acc = 0;
    int i;

    for (i = 0; i < ITERS; i++) {
        union rts_val v = rts_expr_eval(e, frames[i & (NFRAMES - 1)]);

        acc += v.num;
    }
    t1 = rts_now_ns();
    sink = acc;
    return (double)(t1 - t0) / ITERS;
}

int main(void)
{
    static const char *const exprs[] = {
        "min(1, amount / 20000 + (txn_count_5m > 10) * 0.5)",
        "score >= 0.6 or amount > 10000",
        "score >= 0.9",
        "decision == 'block'",
        "log1p(amount)",
        "amount / (amount_mean_30d + 1)",
        "hour_of_day(ts)",
    };
    static const char *const decisions[] = {"allow", "review", "block"};
    static union rts_val frames[NFRAMES][S__COUNT];
    struct rts_expr_scope scope = {resolve, NULL};
    double runs[RUNS];
    size_t i;
    int f, r;

    srand(42);
    for (f = 0; f < NFRAMES; f++) {
        const char *d = decisions[rand() % 3];

        frames[f][S_AMOUNT].num = f % 13 == 0 ? NAN : (double)(rand() % 30000);
        frames[f][S_COUNT].num = (double)(rand() % 20);
        frames[f][S_SCORE].num = (double)rand() / RAND_MAX;
        frames[f][S_DECISION].str.p = d;
        frames[f][S_DECISION].str.n = (uint32_t)strlen(d);
        frames[f][S_MEAN].num = f % 7 == 0 ? NAN : (double)(rand() % 5000);
        frames[f][S_TS].num = 1700000000000.0 + (double)rand() * 1000.0;
    }
    printf("%-55s %10s %10s %10s\n", "expression", "median ns", "min ns", "max ns");
    for (i = 0; i < sizeof(exprs) / sizeof(exprs[0]); i++) {
        struct rts_errbuf eb = {0};
        struct rts_expr *e = rts_expr_compile(exprs[i], &scope, &eb);

        if (!e) {
            fprintf(stderr, "bench_expr: '%s': column %d: %s\n", exprs[i], eb.column, eb.msg);
            return 1;
        }
        time_once(e, frames); /* warm-up */
        for (r = 0; r < RUNS; r++) {
            runs[r] = time_once(e, frames);
        }
        qsort(runs, RUNS, sizeof(runs[0]), bench_cmp_double);
        printf("%-55s %10.2f %10.2f %10.2f\n", exprs[i], runs[RUNS / 2], runs[0], runs[RUNS - 1]);
        rts_expr_free(e);
    }
    return 0;
}
