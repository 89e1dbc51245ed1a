/*
 * schema.c - building and querying the event schema.
 *
 * Invariants once built: field names are unique and non-empty; every field
 * with a default is optional and its default satisfies its own limits; the
 * id and key fields are strings and the time field a timestamp; the lookup
 * table holds every field exactly once and has at least one empty slot, so a
 * probe always ends; missing[] has one "missing" record slot per field (NaN
 * for numbers and bools, offset 0 for strings). All of it is rebuilt off the
 * hot path, on each rts_schema_add and rts_schema_set_roles.
 */
#define RTS_SCHEMA_PRIVATE
#include "event/schema.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {
    [RTS_FT_STRING] = "string",       [RTS_FT_INT] = "int",
    [RTS_FT_FLOAT] = "float",         [RTS_FT_BOOL] = "bool",
    [RTS_FT_TIMESTAMP] = "timestamp",
};

/* Epoch ms of 10000-01-01T00:00:00Z: timestamps are in [0, this). */
#define TS_MS_END 253402300800000.0

const char *rts_field_type_name(enum rts_field_type t)
{
    return (t >= RTS_FT_STRING && t <= RTS_FT_TIMESTAMP) ? type_names[t] : "unknown";
}

int rts_field_type_parse(const char *s, enum rts_field_type *out)
{
    int t;

    if (!s) {
        return -1;
    }
    for (t = RTS_FT_STRING; t <= RTS_FT_TIMESTAMP; t++) {
        if (strcmp(s, type_names[t]) == 0) {
            *out = (enum rts_field_type)t;
            return 0;
        }
    }
    return -1;
}

enum rts_type rts_field_value_type(enum rts_field_type t)
{
    switch (t) {
    case RTS_FT_STRING:
        return RTS_T_STR;
    case RTS_FT_BOOL:
        return RTS_T_BOOL;
    case RTS_FT_INT:
    case RTS_FT_FLOAT:
    case RTS_FT_TIMESTAMP:
        return RTS_T_NUM;
    }
    return RTS_T_NONE;
}

/* Seeds tried in turn when looking for a collision-free table. */
static uint64_t seed_at(int i)
{
    uint64_t z = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (z ^ (z >> 31)) | 1;
}

/* Place every field into @tab (1 << @bits slots) with @seed. With @perfect,
 * give up at the first collision (returns -1). */
static int place(const struct rts_schema *s, const uint64_t *keys, uint16_t *tab, uint32_t bits,
                 uint64_t seed, int perfect)
{
    uint32_t mask = (uint32_t)(((size_t)1 << bits) - 1);
    size_t i;

    memset(tab, 0, ((size_t)mask + 1) * sizeof(*tab));
    for (i = 0; i < s->n; i++) {
        uint32_t h = rts_schema_lut_slot(keys[i], seed, 64 - bits);
        while (tab[h]) {
            if (perfect) {
                return -1;
            }
            h = (h + 1) & mask;
        }
        tab[h] = (uint16_t)(i + 1);
    }
    return 0;
}

/* Build the lookup table. Up to 256 fields, look for a seed that puts every
 * name in its home slot, in a table of 2n to 8n slots (at least 8); when no
 * seed can (two names with the same hash input) or none is found, use 4n
 * slots and linear probing. Start-up only. */
static int build_lut(struct rts_schema *s)
{
    uint32_t bits = 3, b = 0;
    uint64_t *keys = malloc((s->n ? s->n : 1) * sizeof(*keys));
    uint16_t *tab = NULL;
    uint64_t seed = seed_at(0);
    size_t i, j;
    int found = 0, t, dup = 0;

    if (!keys) {
        return -1;
    }
    while (((size_t)1 << bits) < 2 * s->n) {
        bits++;
    }
    tab = calloc((size_t)1 << (bits + 2), sizeof(*tab));
    if (!tab) {
        free(keys);
        return -1;
    }
    for (i = 0; i < s->n; i++) {
        keys[i] = rts_schema_name_key(s->f[i].spec.name, s->f[i].name_len);
    }
    for (i = 0; i < s->n && s->n <= 256 && !dup; i++) {
        for (j = i + 1; j < s->n; j++) {
            if (keys[i] == keys[j]) {
                dup = 1;
                break;
            }
        }
    }
    for (b = bits; s->n <= 256 && !dup && b <= bits + 2; b++) {
        for (t = 0; t < 32 && !found; t++) {
            seed = seed_at(t);
            found = place(s, keys, tab, b, seed, 1) == 0;
        }
        if (found) {
            break;
        }
    }
    if (!found) {
        b = bits + 1;
        seed = seed_at(0);
        place(s, keys, tab, b, seed, 0);
    }
    free(keys);
    free(s->lut);
    s->lut = tab;
    s->lut_shift = 64 - b;
    s->lut_mask = (uint32_t)(((size_t)1 << b) - 1);
    s->lut_seed = seed;
    return 0;
}

/* Re-insert the fields into the current table with its seed: used to drop
 * entries after an undo, when no allocation may fail. */
static void relut_in_place(struct rts_schema *s)
{
    size_t i;

    memset(s->lut, 0, ((size_t)s->lut_mask + 1) * sizeof(*s->lut));
    for (i = 0; i < s->n; i++) {
        const struct rts_schema_field_int *f = &s->f[i];
        uint64_t key = rts_schema_name_key(f->spec.name, f->name_len);
        uint32_t h = rts_schema_lut_slot(key, s->lut_seed, s->lut_shift);
        while (s->lut[h]) {
            h = (h + 1) & s->lut_mask;
        }
        s->lut[h] = (uint16_t)(i + 1);
    }
}

static int build_missing(struct rts_schema *s)
{
    uint64_t *m = malloc((s->n ? s->n : 1) * sizeof(*m));
    double nan_v = NAN;
    uint64_t nan_bits;
    size_t i;

    if (!m) {
        return -1;
    }
    memcpy(&nan_bits, &nan_v, sizeof(nan_bits));
    for (i = 0; i < s->n; i++) {
        m[i] = s->f[i].spec.type == RTS_FT_STRING ? 0 : nan_bits;
    }
    free(s->missing);
    s->missing = m;
    return 0;
}

struct rts_schema *rts_schema_new(void)
{
    struct rts_schema *s = calloc(1, sizeof(*s));

    if (!s) {
        return NULL;
    }
    s->roles[0] = s->roles[1] = s->roles[2] = -1;
    s->c_numeric = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (build_lut(s) != 0 || build_missing(s) != 0) {
        rts_schema_free(s);
        return NULL;
    }
    return s;
}

void rts_schema_free(struct rts_schema *s)
{
    size_t i;

    if (!s) {
        return;
    }
    for (i = 0; i < s->n; i++) {
        free((char *)s->f[i].spec.name);
        free((char *)s->f[i].spec.def_str);
    }
    free(s->f);
    free(s->lut);
    free(s->missing);
    if (s->c_numeric) {
        freelocale(s->c_numeric);
    }
    free(s);
}

size_t rts_schema_nfields(const struct rts_schema *s)
{
    return s->n;
}

const struct rts_field_spec *rts_schema_field(const struct rts_schema *s, size_t i)
{
    return i < s->n ? &s->f[i].spec : NULL;
}

int rts_schema_field_implicit(const struct rts_schema *s, size_t i)
{
    return i < s->n ? s->f[i].implicit : 0;
}

int rts_schema_find(const struct rts_schema *s, const char *name, size_t len)
{
    if (!name || len == 0) {
        return -1;
    }
    return rts_schema_lookup(s, name, len);
}

int rts_schema_role(const struct rts_schema *s, int role)
{
    return (role >= 0 && role <= 2) ? s->roles[role] : -1;
}

/* Check one spec on its own; the message names the field. */
static enum rts_err check_spec(const struct rts_field_spec *f, struct rts_errbuf *eb)
{
    const char *nm = f->name;
    size_t nlen;

    if (!nm || !*nm) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "field name is empty");
    }
    nlen = strlen(nm);
    if (nlen > RTS_SCHEMA_MAX_NAME) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "field name '%.40s...' is longer than %d bytes",
                        nm, RTS_SCHEMA_MAX_NAME);
    }
    if (f->type < RTS_FT_STRING || f->type > RTS_FT_TIMESTAMP) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "field '%s': unknown type %d", nm, (int)f->type);
    }
    if (f->type == RTS_FT_STRING || f->type == RTS_FT_BOOL) {
        if (f->has_min || f->has_max) {
            return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "field '%s': min/max apply to numbers, not %s",
                            nm, rts_field_type_name(f->type));
        }
    } else {
        if ((f->has_min && isnan(f->min)) || (f->has_max && isnan(f->max))) {
            return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "field '%s': min/max is not a number", nm);
        }
        if (f->has_min && f->has_max && f->min > f->max) {
            return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "field '%s': min %g is above max %g", nm,
                            f->min, f->max);
        }
    }
    if (f->type != RTS_FT_STRING && f->max_len) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "field '%s': max_len applies to strings, not %s",
                        nm, rts_field_type_name(f->type));
    }
    if (!f->has_default) {
        return RTS_ERR_OK;
    }
    if (f->required) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                        "field '%s': a required field cannot have a default", nm);
    }
    if (f->type == RTS_FT_STRING) {
        if (!f->def_str) {
            return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "field '%s': the default must be a string",
                            nm);
        }
        if (f->max_len && strlen(f->def_str) > f->max_len) {
            return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                            "field '%s': the default is longer than max_len %u", nm,
                            (unsigned)f->max_len);
        }
        return RTS_ERR_OK;
    }
    if (!isfinite(f->def_num)) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "field '%s': the default must be a finite number",
                        nm);
    }
    if (f->type == RTS_FT_BOOL && f->def_num != 0 && f->def_num != 1) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "field '%s': a bool default must be true or false",
                        nm);
    }
    if (f->type == RTS_FT_INT &&
        (f->def_num != floor(f->def_num) || fabs(f->def_num) > 9007199254740992.0)) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "field '%s': the default %g is not an integer", nm,
                        f->def_num);
    }
    if (f->type == RTS_FT_TIMESTAMP && (f->def_num < 0 || f->def_num >= TS_MS_END)) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                        "field '%s': the default %g is not an epoch ms in years 1970-9999", nm,
                        f->def_num);
    }
    if ((f->has_min && f->def_num < f->min) || (f->has_max && f->def_num > f->max)) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "field '%s': the default %g is outside min/max",
                        nm, f->def_num);
    }
    return RTS_ERR_OK;
}

static char *dup_str(const char *p)
{
    size_t n = strlen(p) + 1;
    char *c = malloc(n);

    if (c) {
        memcpy(c, p, n);
    }
    return c;
}

/* Append a checked spec; @implicit marks a role field added by set_roles. */
static enum rts_err append_field(struct rts_schema *s, const struct rts_field_spec *f, int implicit,
                                 struct rts_errbuf *eb)
{
    struct rts_schema_field_int *fi;
    char *name = NULL, *def = NULL;

    if (s->n >= RTS_SCHEMA_MAX_FIELDS) {
        return rts_errf(eb, RTS_ERR_LIMIT, 0, 0, "field '%s': a schema has at most %d fields",
                        f->name, RTS_SCHEMA_MAX_FIELDS);
    }
    if (rts_schema_find(s, f->name, strlen(f->name)) >= 0) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "field '%s' is declared twice", f->name);
    }
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        struct rts_schema_field_int *nf = realloc(s->f, ncap * sizeof(*nf));
        if (!nf) {
            goto nomem;
        }
        s->f = nf;
        s->cap = ncap;
    }
    name = dup_str(f->name);
    if (!name) {
        goto nomem;
    }
    if (f->type == RTS_FT_STRING && f->has_default) {
        def = dup_str(f->def_str);
        if (!def) {
            goto nomem;
        }
    }
    fi = &s->f[s->n];
    memset(fi, 0, sizeof(*fi));
    fi->spec = *f;
    fi->spec.name = name;
    fi->spec.def_str = def;
    if (f->type != RTS_FT_STRING) {
        fi->spec.max_len = 0;
    }
    fi->name_len = (uint32_t)strlen(name);
    fi->def_len = def ? (uint32_t)strlen(def) : 0;
    fi->lo = f->has_min ? f->min : -INFINITY;
    fi->hi = f->has_max ? f->max : INFINITY;
    fi->max_len = (f->type == RTS_FT_STRING && f->max_len) ? f->max_len : UINT32_MAX;
    fi->implicit = (uint8_t)(implicit != 0);
    fi->post = (uint8_t)(f->required || f->has_default);
    s->n++;
    if (build_lut(s) != 0 || build_missing(s) != 0) {
        s->n--;
        relut_in_place(s); /* a new table may already hold the dropped field */
        goto nomem;
    }
    s->def_bytes += fi->def_len;
    return RTS_ERR_OK;
nomem:
    free(def);
    free(name);
    return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "field '%s': out of memory", f->name);
}

enum rts_err rts_schema_add(struct rts_schema *s, const struct rts_field_spec *f,
                            struct rts_errbuf *eb)
{
    enum rts_err rc;

    if (!f) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "no field spec");
    }
    if (s->roles_set) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "field '%s': added after the roles were set",
                        f->name ? f->name : "");
    }
    rc = check_spec(f, eb);
    if (rc) {
        return rc;
    }
    return append_field(s, f, 0, eb);
}

/* Check a role name against what is declared; -2 when it must be added. */
static int role_index(const struct rts_schema *s, const char *what, const char *name,
                      enum rts_field_type want, struct rts_errbuf *eb)
{
    int i;

    if (!*name) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "event.%s: empty field name", what);
        return -1;
    }
    if (strlen(name) > RTS_SCHEMA_MAX_NAME) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "event.%s: field name longer than %d bytes", what,
                 RTS_SCHEMA_MAX_NAME);
        return -1;
    }
    i = rts_schema_find(s, name, strlen(name));
    if (i < 0) {
        return -2;
    }
    if (s->f[i].spec.type != want) {
        if (want == RTS_FT_STRING) {
            rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                     "event.%s: field '%s' is declared as %s, but the %s must be a string "
                     "(leave it out of fields to accept integers too)",
                     what, name, rts_field_type_name(s->f[i].spec.type), what);
        } else {
            rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                     "event.%s: field '%s' is declared as %s, but the time must be a timestamp",
                     what, name, rts_field_type_name(s->f[i].spec.type));
        }
        return -1;
    }
    return i;
}

enum rts_err rts_schema_set_roles(struct rts_schema *s, const char *id, const char *key,
                                  const char *time, struct rts_errbuf *eb)
{
    const char *names[3] = {id, key, time};
    static const char *const what[3] = {"id", "key", "time"};
    int idx[3] = {-1, -1, -1};
    size_t n0 = s->n, def0 = s->def_bytes;
    enum rts_err rc;
    int r;

    if (s->roles_set) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "event roles are already set");
    }
    if (!key) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "event.key: a key field is required");
    }
    for (r = 0; r < 3; r++) {
        if (!names[r]) {
            continue;
        }
        idx[r] = role_index(s, what[r], names[r], r == 2 ? RTS_FT_TIMESTAMP : RTS_FT_STRING, eb);
        if (idx[r] == -1) {
            return RTS_ERR_INVAL;
        }
        if (r == RTS_ROLE_KEY && idx[r] >= 0 && s->f[idx[r]].spec.has_default &&
            (s->f[idx[r]].def_len == 0 || s->f[idx[r]].def_len > RTS_KEY_MAX_BYTES)) {
            return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                            "event.key: the default of field '%s' must be 1 to %d bytes", names[r],
                            RTS_KEY_MAX_BYTES);
        }
    }
    /* Add the implicit fields only after every declared one checked out. */
    for (r = 0; r < 3; r++) {
        struct rts_field_spec spec;

        if (idx[r] != -2) {
            continue;
        }
        idx[r] = rts_schema_find(s, names[r], strlen(names[r])); /* id == key: added once */
        if (idx[r] >= 0 && s->f[idx[r]].spec.type != (r == 2 ? RTS_FT_TIMESTAMP : RTS_FT_STRING)) {
            rc = rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                          "event.%s: field '%s' is also the %s; a time field cannot be the id "
                          "or the key",
                          what[r], names[r], r == 2 ? "id or key" : "time");
            goto undo;
        }
        if (idx[r] >= 0) {
            continue;
        }
        memset(&spec, 0, sizeof(spec));
        spec.name = names[r];
        spec.type = r == 2 ? RTS_FT_TIMESTAMP : RTS_FT_STRING;
        spec.required = r != 2;
        rc = append_field(s, &spec, 1, eb);
        if (rc) {
            goto undo;
        }
        idx[r] = (int)s->n - 1;
    }
    for (r = 0; r < 3; r++) {
        s->roles[r] = idx[r];
        if (idx[r] >= 0) {
            s->f[idx[r]].roles |= (uint8_t)(1u << r);
            s->f[idx[r]].post = 1;
        }
    }
    s->roles_set = 1;
    return RTS_ERR_OK;
undo:
    while (s->n > n0) {
        s->n--;
        free((char *)s->f[s->n].spec.name);
        free((char *)s->f[s->n].spec.def_str);
    }
    s->def_bytes = def0;
    relut_in_place(s);
    return rc;
}
