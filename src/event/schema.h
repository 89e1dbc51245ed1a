/*
 * schema.h - the event schema: the typed fields of one pipeline's events and
 * which of them are the id, the key and the event time.
 *
 * A schema is built once at start-up (rts_schema_new, rts_schema_add for each
 * declared field, then rts_schema_set_roles once) and is read-only afterwards:
 * any number of threads may then read it and decode against it without locks.
 * Field indexes are stable: they are the order of rts_schema_add, followed by
 * the role fields that rts_schema_set_roles added implicitly. Every value of a
 * decoded event is found at its field's index (event/decode.h).
 *
 * The schema owns copies of every name and default string it was given. The
 * key lookup used by the decoder is a hash of (length, first, second and last
 * byte) into a table chosen at build time to be collision-free when possible,
 * verified with memcmp; it is rebuilt after every rts_schema_add.
 *
 * Thread: build on one thread; read from any once built.
 */
#ifndef RTS_EVENT_SCHEMA_H
#define RTS_EVENT_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "event/value.h"

/* Most fields one schema accepts; rts_schema_add fails with RTS_ERR_LIMIT beyond. */
#define RTS_SCHEMA_MAX_FIELDS 4096
/* Longest field name, in bytes. */
#define RTS_SCHEMA_MAX_NAME 255
/* Longest accepted key value, in bytes (the routing and state key). */
#define RTS_KEY_MAX_BYTES 256

enum rts_field_type { RTS_FT_STRING = 1, RTS_FT_INT, RTS_FT_FLOAT, RTS_FT_BOOL, RTS_FT_TIMESTAMP };

/* Roles for rts_schema_role(). */
enum rts_role { RTS_ROLE_ID = 0, RTS_ROLE_KEY = 1, RTS_ROLE_TIME = 2 };

struct rts_field_spec {
    const char *name; /* copied by rts_schema_add */
    enum rts_field_type type;
    int required;
    int has_default;      /* default for an absent/null optional field */
    double def_num;       /* int, float, bool (0/1), timestamp (epoch ms) */
    const char *def_str;  /* string; copied by rts_schema_add */
    int has_min, has_max; /* numbers (timestamps in epoch ms): inclusive range */
    double min, max;
    uint32_t max_len; /* strings: max bytes after unescaping, 0 = none */
};

struct rts_schema;

/* An empty schema, or NULL when out of memory. Free with rts_schema_free. */
struct rts_schema *rts_schema_new(void) __attribute__((warn_unused_result));

/* Append field @f (copied, with its name and def_str). Errors (RTS_ERR_INVAL,
 * message naming the field): empty or too long name, duplicate name, unknown
 * type, a default on a required field, a default of the wrong kind or outside
 * min/max, min > max, min/max on a string or bool, max_len on a non-string,
 * adding after rts_schema_set_roles. RTS_ERR_LIMIT past RTS_SCHEMA_MAX_FIELDS,
 * RTS_ERR_NOMEM. On error the schema is unchanged. */
enum rts_err rts_schema_add(struct rts_schema *s, const struct rts_field_spec *f,
                            struct rts_errbuf *eb);

/* Name the id, key and time fields. @key is required; @id may be NULL (no
 * dedup id) and @time may be NULL (events take their ingest time). A role
 * field that was not added is added implicitly: id and key as required
 * strings that also accept a JSON integer (its text is the value), time as an
 * optional timestamp. A declared id or key must be a string field; a declared
 * time must be a timestamp field. Call once, after all rts_schema_add; a
 * second call is RTS_ERR_INVAL. On error the schema is unchanged. */
enum rts_err rts_schema_set_roles(struct rts_schema *s, const char *id, const char *key,
                                  const char *time, struct rts_errbuf *eb);

size_t rts_schema_nfields(const struct rts_schema *s);
/* Field @i (< nfields); the pointer lives as long as the schema. */
const struct rts_field_spec *rts_schema_field(const struct rts_schema *s, size_t i);
/* Index of the field named by the @len bytes at @name, or -1. */
int rts_schema_find(const struct rts_schema *s, const char *name, size_t len);
/* Field index of role @role (enum rts_role: 0 id, 1 key, 2 time), or -1. */
int rts_schema_role(const struct rts_schema *s, int role);
/* 1 if field @i was added implicitly by rts_schema_set_roles. */
int rts_schema_field_implicit(const struct rts_schema *s, size_t i);

/* STRING -> RTS_T_STR, BOOL -> RTS_T_BOOL, others -> RTS_T_NUM (timestamps are epoch ms). */
enum rts_type rts_field_value_type(enum rts_field_type t);
/* "string" "int" "float" "bool" "timestamp"; "unknown" out of range. */
const char *rts_field_type_name(enum rts_field_type t);
/* Parse one of the names above into @out: 0 ok, -1 unknown. */
int rts_field_type_parse(const char *s, enum rts_field_type *out);

void rts_schema_free(struct rts_schema *s); /* NULL is a no-op */

#ifdef RTS_SCHEMA_PRIVATE
#include <locale.h>
#include <string.h>

/*
 * The layout below is shared by schema.c and decode.c only, so that the
 * decoder can inline its key lookup and per-field checks. Other modules must
 * not define RTS_SCHEMA_PRIVATE: to them struct rts_schema is opaque.
 */
enum { RTS_FIELD_ROLE_ID = 1, RTS_FIELD_ROLE_KEY = 2, RTS_FIELD_ROLE_TIME = 4 };

struct rts_schema_field_int {
    struct rts_field_spec spec; /* name and def_str point into owned copies */
    uint32_t name_len;
    uint32_t def_len; /* bytes of def_str */
    double lo, hi;    /* range; -inf/+inf when unset */
    uint32_t max_len; /* UINT32_MAX when unset */
    uint8_t implicit; /* added by set_roles: id/key accept integers */
    uint8_t roles;    /* RTS_FIELD_ROLE_* bits */
    uint8_t post;     /* needs a check after the object: required, default, role */
};

struct rts_schema {
    struct rts_schema_field_int *f;
    size_t n, cap;
    int roles[3];
    int roles_set;
    uint16_t *lut;      /* field index + 1, 0 = empty slot */
    uint32_t lut_shift; /* 64 - log2(table size) */
    uint32_t lut_mask;
    uint64_t lut_seed;  /* odd multiplier */
    size_t def_bytes;   /* sum of def_len over string fields with a default */
    uint64_t *missing;  /* nfields record slots, each one "missing" for its type */
    locale_t c_numeric; /* the C locale for strtod, (locale_t)0 if unavailable */
};

/* A name's hash input: its length, its first and last 8 bytes (4, or 3
 * single bytes, for shorter names), mixed. Names that differ only in the
 * middle of a long name share it and are told apart by probing. */
static inline uint64_t rts_schema_name_key(const char *k, size_t n)
{
    const unsigned char *u = (const unsigned char *)k;
    uint64_t a, b, x;
    uint32_t a4, b4;

    if (n >= 8) {
        memcpy(&a, k, 8);
        memcpy(&b, k + n - 8, 8);
    } else if (n >= 4) {
        memcpy(&a4, k, 4);
        memcpy(&b4, k + n - 4, 4);
        a = a4;
        b = b4;
    } else {
        a = (uint64_t)u[0] | (uint64_t)u[n >> 1] << 8 | (uint64_t)u[n - 1] << 16;
        b = 0;
    }
    x = (a ^ n) * 0x9e3779b97f4a7c15ull + b;
    x = (x ^ (x >> 31)) * 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 29);
}

static inline uint32_t rts_schema_lut_slot(uint64_t key, uint64_t seed, uint32_t shift)
{
    return (uint32_t)((key * seed) >> shift);
}

/* Equality of @n bytes without a call: names are short. */
static inline int rts_schema_eq(const char *a, const char *b, size_t n)
{
    uint64_t x, y, u, v;
    uint32_t x4, y4, u4, v4;

    if (n >= 8) {
        if (n > 16) {
            return memcmp(a, b, n) == 0;
        }
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        memcpy(&u, a + n - 8, 8);
        memcpy(&v, b + n - 8, 8);
        return ((x ^ y) | (u ^ v)) == 0;
    }
    if (n >= 4) {
        memcpy(&x4, a, 4);
        memcpy(&y4, b, 4);
        memcpy(&u4, a + n - 4, 4);
        memcpy(&v4, b + n - 4, 4);
        return ((x4 ^ y4) | (u4 ^ v4)) == 0;
    }
    while (n--) {
        if (a[n] != b[n]) {
            return 0;
        }
    }
    return 1;
}

/* Lookup inlined into the decoder: @n >= 1. */
static inline int rts_schema_lookup(const struct rts_schema *s, const char *k, size_t n)
{
    uint32_t h = rts_schema_lut_slot(rts_schema_name_key(k, n), s->lut_seed, s->lut_shift);

    for (;;) {
        unsigned v = s->lut[h];
        if (v == 0) {
            return -1;
        }
        const struct rts_schema_field_int *f = &s->f[v - 1];
        if (f->name_len == n && rts_schema_eq(f->spec.name, k, n)) {
            return (int)v - 1;
        }
        h = (h + 1) & s->lut_mask;
    }
}
#endif /* RTS_SCHEMA_PRIVATE */

#endif /* RTS_EVENT_SCHEMA_H */
