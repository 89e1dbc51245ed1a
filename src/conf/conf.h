/*
 * conf.h - configuration as a tree of YAML nodes with positions, and the
 * declarative option tables that turn a mapping into a C struct.
 *
 * A document is parsed once (libyaml) into an immutable tree owned by a
 * struct rts_conf; every node keeps its line and column so that every error
 * names file, line and key path. Option tables (struct rts_opt) drive parsing,
 * defaults, unknown-key errors, `rtscore check` and docs/CONFIG.md: a source,
 * sink or section declares its options once and gets all of those.
 *
 * Thread: parse and apply at start-up only; a parsed tree is read-only.
 */
#ifndef RTS_CONF_CONF_H
#define RTS_CONF_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

enum rts_conf_kind { RTS_CONF_SCALAR = 1, RTS_CONF_MAP, RTS_CONF_SEQ };

struct rts_conf_node {
    enum rts_conf_kind kind;
    int line, column;       /* 1-based position in the source; 0 for a synthesized node */
    const char *file;       /* document name for messages (owned by the rts_conf); NULL if none */
    const char *str;        /* SCALAR: the text, NUL-terminated */
    size_t len;             /* SCALAR: bytes of str; MAP/SEQ: number of children */
    int quoted;             /* SCALAR: 1 if not plain: quoted ('' "") or a block scalar (| >);
                               such a scalar is a string, never null/bool/number */
    const char **keys;      /* MAP: key of each child, NUL-terminated, no NUL inside, unique */
    const int *key_lines;   /* MAP: line of each key */
    const int *key_columns; /* MAP: column of each key */
    struct rts_conf_node **items; /* MAP: values in document order; SEQ: elements */
};

struct rts_conf; /* owns a parsed document */

/* Parse YAML text @text (@len bytes, need not be NUL-terminated) named @name
 * (for messages; copied). Returns a document or NULL with @eb filled
 * ("pipeline.yaml:12:3: ..."): RTS_ERR_PARSE for YAML syntax (libyaml's
 * problem and position), RTS_ERR_INVAL for what this subset refuses (anchors,
 * aliases, tags, keys that are not scalars, duplicate keys, NUL bytes in keys,
 * more than one document, nesting deeper than 64), RTS_ERR_NOMEM. */
struct rts_conf *rts_conf_parse(const char *name, const char *text, size_t len,
                                struct rts_errbuf *eb) __attribute__((warn_unused_result));
void rts_conf_free(struct rts_conf *c); /* NULL is a no-op; frees every node */
/* NULL for an empty document (no content, or a null scalar as the root). */
const struct rts_conf_node *rts_conf_root(const struct rts_conf *c);
const char *rts_conf_name(const struct rts_conf *c);

/* Child of a MAP by key, or NULL (also when @map is NULL or not a MAP). */
const struct rts_conf_node *rts_conf_get(const struct rts_conf_node *map, const char *key);

/* 1 if @n is NULL or a plain null scalar: empty, "~", "null", "Null", "NULL". */
int rts_conf_is_null(const struct rts_conf_node *n);

/* Scalar parsers: return RTS_ERR_OK or RTS_ERR_INVAL with @eb as
 * rts_conf_errf() writes it ("p.yaml:7:13: features[2].window: expected a
 * duration like 5m or 250ms, got 'x'"). @path is the key path used in the
 * message. @out is written only on success. Int, double and bool refuse a
 * quoted scalar ("5" is a string); durations and sizes accept one.
 * Durations: "0", or a decimal number and one of us ms s m h d ("1.5s"),
 * in whole microseconds. Sizes: an integer, optionally followed by k, m, g or
 * t (also kb/kib..., any case), binary multiples. Ints: decimal, optional
 * sign, int64 range. Doubles: strtod() of the whole scalar (C locale), finite. */
enum rts_err rts_conf_duration_us(const struct rts_conf_node *n, const char *path, int64_t *out,
                                  struct rts_errbuf *eb); /* "250us" "5ms" "30s" "5m" "24h" "30d" */
enum rts_err rts_conf_size(const struct rts_conf_node *n, const char *path, uint64_t *out,
                           struct rts_errbuf *eb); /* 65536, 64k, 16MiB, 1g */
enum rts_err rts_conf_int(const struct rts_conf_node *n, const char *path, int64_t *out,
                          struct rts_errbuf *eb);
enum rts_err rts_conf_double(const struct rts_conf_node *n, const char *path, double *out,
                             struct rts_errbuf *eb);
enum rts_err rts_conf_bool(const struct rts_conf_node *n, const char *path, int *out,
                           struct rts_errbuf *eb); /* true/false/yes/no/on/off */
/* A scalar string (any scalar is accepted); maps and sequences are errors. */
enum rts_err rts_conf_string(const struct rts_conf_node *n, const char *path, const char **out,
                             struct rts_errbuf *eb);
/* Fill @eb with "FILE:LINE:COL: PATH: MESSAGE" for node @n. Returns RTS_ERR_INVAL.
 * The position is left out when @n is NULL or synthesized (line 0), "PATH: "
 * when @path is NULL or empty. */
enum rts_err rts_conf_errf(struct rts_errbuf *eb, const struct rts_conf_node *n, const char *path,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- declarative option tables ---- */

enum rts_opt_type {
    RTS_OPT_T_END = 0,
    RTS_OPT_T_STR,      /* const char * (points into the tree; valid while it lives) */
    RTS_OPT_T_INT,      /* int64_t */
    RTS_OPT_T_SIZE,     /* uint64_t, accepts k/m/g suffixes */
    RTS_OPT_T_DURATION, /* int64_t microseconds */
    RTS_OPT_T_DOUBLE,   /* double */
    RTS_OPT_T_BOOL,     /* int */
    RTS_OPT_T_NODE,     /* const struct rts_conf_node * (any kind; parsed by the owner) */
};

struct rts_opt {
    const char *name;       /* key in the mapping */
    enum rts_opt_type type;
    const char *def;        /* default as config text, parsed like a plain scalar when the key
                               is absent; NULL = no default: the target is left as it is
                               (zero in a zeroed struct). Must be NULL for NODE. */
    int required;           /* 1 = must be present (def is then unused) */
    size_t offset;          /* where the value goes in the target struct */
    const char *doc;        /* one line for docs/CONFIG.md and `rtscore check` */
};

#define RTS_OPT_STR(name, def, off, doc) {name, RTS_OPT_T_STR, def, 0, off, doc}
#define RTS_OPT_STR_REQ(name, off, doc) {name, RTS_OPT_T_STR, NULL, 1, off, doc}
#define RTS_OPT_INT(name, def, off, doc) {name, RTS_OPT_T_INT, def, 0, off, doc}
#define RTS_OPT_SIZE(name, def, off, doc) {name, RTS_OPT_T_SIZE, def, 0, off, doc}
#define RTS_OPT_DURATION(name, def, off, doc) {name, RTS_OPT_T_DURATION, def, 0, off, doc}
#define RTS_OPT_DOUBLE(name, def, off, doc) {name, RTS_OPT_T_DOUBLE, def, 0, off, doc}
#define RTS_OPT_BOOL(name, def, off, doc) {name, RTS_OPT_T_BOOL, def, 0, off, doc}
#define RTS_OPT_NODE(name, off, doc) {name, RTS_OPT_T_NODE, NULL, 0, off, doc}
/* A required option of any type, e.g. RTS_OPT_REQ("window", RTS_OPT_T_DURATION, off, doc). */
#define RTS_OPT_REQ(name, type, off, doc) {name, type, NULL, 1, off, doc}
#define RTS_OPT_END {NULL, RTS_OPT_T_END, NULL, 0, 0, NULL}

/* Apply @opts to MAP @map (NULL = every option takes its default) writing
 * into @target. Unknown keys, missing required options and values of the
 * wrong type are errors naming "@path.key" and the line. Keys listed in
 * @ignore (NULL-terminated, may be NULL) are skipped: the caller parses them.
 * Keys are checked and parsed in document order, then absent options take
 * their defaults in table order; a missing required key is reported at the
 * map's position ("p.yaml:3:3: source: missing required key 'topic'").
 * On error @target may be partly written. */
enum rts_err rts_opt_apply(const struct rts_opt *opts, const struct rts_conf_node *map,
                           const char *path, const char *const *ignore, void *target,
                           struct rts_errbuf *eb);

/* rts_opt_apply into a new zeroed context of @ctx_size bytes (the caller
 * frees it): how sources, sinks and stores get their options. NULL with @eb
 * filled on error. */
void *rts_opt_ctx_new(const struct rts_opt *opts, size_t ctx_size, const struct rts_conf_node *node,
                      const char *path, const char *const *ignore, struct rts_errbuf *eb);

/* Append a Markdown table of @opts to @out: a header row
 * "| key | type | default | description |", then one row per option; '|' in
 * text is escaped. Returns RTS_ERR_NOMEM if @out cannot grow. */
struct rts_buf;
enum rts_err rts_opt_doc(const struct rts_opt *opts, struct rts_buf *out);

#endif /* RTS_CONF_CONF_H */
