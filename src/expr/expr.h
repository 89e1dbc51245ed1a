/*
 * expr.h - the expression language of features, rules, fallback scores and
 * alerts: compiled once to bytecode, evaluated per event without allocating.
 *
 * An expression is typed at compile time (number, bool or string; bools are
 * the doubles 0 and 1 and promote to numbers). Names are resolved through a
 * caller-supplied scope to frame slots, so evaluation is an array read, not
 * a lookup. A compiled struct rts_expr is immutable: any number of threads
 * may evaluate it at once, each with its own frame. Missing values (NaN, or
 * a string with p == NULL) propagate through arithmetic and functions, make
 * comparisons false, and never turn into errors at run time. A number result
 * is never +-inf: overflow and division by zero give missing.
 *
 * The language is described in DESIGN.md section 2 and in the comment on
 * rts_expr_compile() below.
 */
#ifndef RTS_EXPR_EXPR_H
#define RTS_EXPR_EXPR_H

#include <stddef.h>

#include "core/err.h"
#include "event/value.h"

#define RTS_EXPR_MAX_LEN 4096 /* bytes of source */
#define RTS_EXPR_MAX_DEPTH 64 /* nesting levels in the source, and values on the VM stack */

struct rts_expr;

struct rts_expr_scope {
    /* Resolve @name (@len bytes, not NUL-terminated). Return a slot index >= 0
     * and set *type (RTS_T_NUM, RTS_T_BOOL or RTS_T_STR), or -1 if the name is
     * unknown. Called only while compiling. */
    int (*resolve)(void *ctx, const char *name, size_t len, enum rts_type *type);
    void *ctx;
};

/* Compile the NUL-terminated @src. Names are resolved through @scope (NULL:
 * every name is unknown). Returns an expression the caller owns (free it with
 * rts_expr_free), or NULL with @eb filled: eb->column is the 1-based byte
 * column of the problem (eb->pos the 0-based offset; eb->line is 0, the
 * caller knows where the expression sits), eb->code is RTS_ERR_PARSE for
 * syntax, RTS_ERR_INVAL for an unknown name or function, a wrong argument
 * count or a type error, RTS_ERR_LIMIT for a source longer than
 * RTS_EXPR_MAX_LEN or nesting deeper than RTS_EXPR_MAX_DEPTH, RTS_ERR_NOMEM.
 *
 * Syntax, lowest precedence first:
 *   c ? a : b                 right associative; c bool or number
 *   a or b                    short-circuit, bool result, missing counts as false
 *   a and b
 *   not a
 *   a == b  !=  <  <=  >  >=  non-associative; also  a in [k, ...]  a not in [k, ...]
 *   a + b   a - b
 *   a * b   a / b   a % b     % is fmod: the sign follows a
 *   -a
 *   f(args)  name  123  1.5e-3  .5  'str'  "str"  true  false  (a)
 * Functions: log1p abs sqrt exp hour_of_day day_of_week (1 number), min max
 * (2 or more numbers, missing arguments ignored), clamp(x, lo, hi) (that is
 * min(max(x, lo), hi): hi wins if lo > hi),
 * is_missing(any). hour_of_day and day_of_week take epoch milliseconds (UTC);
 * day_of_week counts Monday as 0. Strings escape \\ \' \" \n \t.
 * Thread: any; only calls @scope->resolve. */
struct rts_expr *rts_expr_compile(const char *src, const struct rts_expr_scope *scope,
                                  struct rts_errbuf *eb) __attribute__((warn_unused_result));

/* The result type: RTS_T_NUM, RTS_T_BOOL or RTS_T_STR. */
enum rts_type rts_expr_type(const struct rts_expr *e);

/* Evaluate @e over @frame, where frame[slot] holds the value of every name
 * the scope resolved to that slot. Never allocates, takes no lock, uses a
 * fixed stack of RTS_EXPR_MAX_DEPTH values on the C stack. A string result
 * points into @frame's strings or into @e's constant pool (NUL-terminated
 * there), so it lives as long as both. Thread: any, concurrently. */
union rts_val rts_expr_eval(const struct rts_expr *e, const union rts_val *frame);

/* The truth of a value of type @t: a bool or number is true when it is not
 * missing and not 0; a string is true when it is present. */
int rts_expr_truthy(enum rts_type t, union rts_val v);

/* Set *@slots to the distinct slots @e reads, in order of first use, and
 * return how many there are (for dependency ordering). Names removed by
 * constant folding ("true or x") are not listed. The array belongs to @e. */
size_t rts_expr_slots(const struct rts_expr *e, const int **slots);

/* The source text @e was compiled from, NUL-terminated; belongs to @e. */
const char *rts_expr_source(const struct rts_expr *e);

void rts_expr_free(struct rts_expr *e); /* NULL is a no-op */

#endif /* RTS_EXPR_EXPR_H */
