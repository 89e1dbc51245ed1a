/*
 * value.h - the value every stage speaks: event fields, features, expression
 * frames. A value has no tag at run time; its type is known when the
 * pipeline is compiled (enum rts_type), so a frame is a plain array.
 *
 * Missing: a number or bool is NaN; a string has p == NULL. Bools are 0 or 1.
 * Strings are not owned: they point into an event record, a constant pool
 * or the config, which outlive the frame that holds them.
 */
#ifndef RTS_EVENT_VALUE_H
#define RTS_EVENT_VALUE_H

#include <math.h>
#include <stdint.h>

enum rts_type {
    RTS_T_NONE = 0,
    RTS_T_NUM,  /* double; ints and timestamps (epoch ms) too */
    RTS_T_BOOL, /* double 0 or 1 */
    RTS_T_STR,
};

struct rts_str {
    const char *p; /* NULL = missing */
    uint32_t n;
};

union rts_val {
    double num;
    struct rts_str str;
};

static inline int rts_val_missing(enum rts_type t, union rts_val v)
{
    return t == RTS_T_STR ? v.str.p == NULL : isnan(v.num);
}

static inline const char *rts_type_name(enum rts_type t)
{
    return t == RTS_T_NUM ? "number" : t == RTS_T_BOOL ? "bool" : t == RTS_T_STR ? "string" : "none";
}

#endif /* RTS_EVENT_VALUE_H */
