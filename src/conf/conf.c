/*
 * conf.c - YAML configuration tree (libyaml event API) and option tables.
 *
 * The whole tree of a document lives in one arena owned by its struct
 * rts_conf: nodes, key arrays, scalar text and the document name are carved
 * from a list of blocks and freed at once by rts_conf_free(). Children are
 * collected in a temporary malloc'd vector while their collection is open and
 * copied into the arena when it closes, so a finished tree is immutable and
 * holds no pointer outside the arena. The builder recurses once per nesting
 * level, bounded by CONF_MAX_DEPTH. Every node records its 1-based position
 * (libyaml marks are 0-based) and the document name, so any later error can
 * say "FILE:LINE:COL: PATH: what".
 *
 * The subset accepted is plain configuration: one document, no anchors,
 * aliases or tags, scalar keys unique within their map.
 */
#include "conf/conf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "core/buf.h"

#define CONF_MAX_DEPTH 64
#define CONF_BLOCK_MIN 4096
#define CONF_BLOCK_MAX (1024 * 1024)
#define CONF_SHOW_MAX 40 /* bytes of a value quoted in a message */

union arena_align {
    max_align_t a;
    void *p;
    long double ld;
};

struct arena_blk {
    struct arena_blk *next;
    size_t cap, used;
    union arena_align data[]; /* cap bytes */
};

struct rts_conf {
    struct arena_blk *blocks; /* newest first */
    size_t next_cap;
    const char *name;
    struct rts_conf_node *root;
};

/* ---- arena ---- */

/* Zeroed, max_align_t-aligned memory that lives as long as @c. */
static void *arena_alloc(struct rts_conf *c, size_t size)
{
    const size_t align = sizeof(union arena_align);
    struct arena_blk *b = c->blocks;
    void *p;

    if (size == 0) {
        size = 1;
    }
    if (size > SIZE_MAX - align) {
        return NULL;
    }
    size = (size + align - 1) / align * align;
    if (!b || b->cap - b->used < size) {
        size_t cap = c->next_cap ? c->next_cap : CONF_BLOCK_MIN;

        if (cap < size) {
            cap = size;
        }
        if (cap > SIZE_MAX - sizeof(*b)) {
            return NULL;
        }
        b = calloc(1, sizeof(*b) + cap);
        if (!b) {
            return NULL;
        }
        b->cap = cap;
        b->next = c->blocks;
        c->blocks = b;
        if (c->next_cap < CONF_BLOCK_MAX) {
            c->next_cap = c->next_cap ? c->next_cap * 2 : CONF_BLOCK_MIN * 2;
        }
    }
    p = (unsigned char *)b->data + b->used;
    b->used += size;
    return p;
}

static char *arena_strndup(struct rts_conf *c, const char *s, size_t n)
{
    char *p;

    if (n == SIZE_MAX) {
        return NULL;
    }
    p = arena_alloc(c, n + 1);
    if (p && n) {
        memcpy(p, s, n);
    }
    return p; /* arena memory is zeroed: terminated */
}

/* ---- small helpers for messages ---- */

static int clamp_int(size_t v)
{
    return v >= (size_t)INT_MAX ? INT_MAX : (int)v;
}

static const char *kind_name(const struct rts_conf_node *n)
{
    switch (n->kind) {
    case RTS_CONF_MAP:
        return "a mapping";
    case RTS_CONF_SEQ:
        return "a sequence";
    default:
        return "a scalar";
    }
}

/* Copy at most CONF_SHOW_MAX bytes of @s (@n bytes) into @out for a message:
 * control bytes become '?', a cut never splits a UTF-8 sequence, "..." marks
 * a cut. */
static const char *show(const char *s, size_t n, char out[CONF_SHOW_MAX + 4])
{
    size_t i, m = n;

    if (m > CONF_SHOW_MAX) {
        m = CONF_SHOW_MAX;
        while (m > 0 && ((unsigned char)s[m] & 0xC0) == 0x80) {
            m--;
        }
    }
    for (i = 0; i < m; i++) {
        unsigned char ch = (unsigned char)s[i];

        out[i] = (ch < 0x20 || ch == 0x7F) ? '?' : (char)ch;
    }
    if (m < n) {
        memcpy(out + m, "...", 3);
        m += 3;
    }
    out[m] = '\0';
    return out;
}

static enum rts_err conf_verrf(struct rts_errbuf *eb, const struct rts_conf_node *n,
                               const char *path, const char *fmt, va_list ap)
{
    char msg[sizeof(eb->msg)];
    const char *sep = (path && *path) ? ": " : "";
    int line = n ? n->line : 0, col = n ? n->column : 0;

    if (!eb) {
        return RTS_ERR_INVAL;
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    eb->pos = 0; /* a tree node has a position, not a byte offset */
    if (!path) {
        path = "";
    }
    if (n && n->file && line > 0) {
        return rts_errf(eb, RTS_ERR_INVAL, line, col, "%s:%d:%d: %s%s%.*s", n->file, line, col,
                        path, sep, (int)sizeof(msg), msg);
    }
    return rts_errf(eb, RTS_ERR_INVAL, line, col, "%s%s%.*s", path, sep, (int)sizeof(msg), msg);
}

enum rts_err rts_conf_errf(struct rts_errbuf *eb, const struct rts_conf_node *n, const char *path,
                           const char *fmt, ...)
{
    va_list ap;
    enum rts_err rc;

    va_start(ap, fmt);
    rc = conf_verrf(eb, n, path, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- the builder: libyaml events to nodes ---- */

struct builder {
    yaml_parser_t parser;
    struct rts_conf *c;
    struct rts_errbuf *eb;
    const char *text;
    size_t len;
};

struct entry {
    const char *key;
    int line, column;
    size_t idx; /* position in the map */
    struct rts_conf_node *node;
};

struct entries {
    struct entry *v;
    size_t len, cap;
};

static enum rts_err mark_errf(struct builder *b, enum rts_err code, yaml_mark_t m, const char *fmt,
                              ...) __attribute__((format(printf, 4, 5)));

static enum rts_err mark_errf(struct builder *b, enum rts_err code, yaml_mark_t m, const char *fmt,
                              ...)
{
    char msg[sizeof(b->eb->msg)];
    int line = clamp_int(m.line + 1), col = clamp_int(m.column + 1);
    va_list ap;

    if (!b->eb) {
        return code;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rts_errf(b->eb, code, line, col, "%s:%d:%d: %.*s", b->c->name, line, col, (int)sizeof(msg),
             msg);
    b->eb->pos = m.index;
    return code;
}

static enum rts_err nomem(struct builder *b)
{
    return rts_errf(b->eb, RTS_ERR_NOMEM, 0, 0, "%s: out of memory", b->c->name);
}

/* A reader error (bad encoding) has a byte offset, not a mark: derive one. */
static yaml_mark_t offset_mark(const struct builder *b, size_t off)
{
    yaml_mark_t m = {off, 0, 0};
    size_t i;

    if (off > b->len) {
        off = b->len;
    }
    for (i = 0; i < off; i++) {
        unsigned char ch = (unsigned char)b->text[i];

        if (ch == '\n') {
            m.line++;
            m.column = 0;
        } else if ((ch & 0xC0) != 0x80) {
            m.column++;
        }
    }
    return m;
}

static enum rts_err next_event(struct builder *b, yaml_event_t *ev)
{
    yaml_parser_t *p = &b->parser;

    if (yaml_parser_parse(p, ev)) {
        return RTS_ERR_OK;
    }
    memset(ev, 0, sizeof(*ev)); /* deleting it stays harmless */
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return nomem(b);
    case YAML_READER_ERROR:
        if (p->problem_value != -1) {
            return mark_errf(b, RTS_ERR_PARSE, offset_mark(b, p->problem_offset),
                             "%s (byte 0x%02X)", p->problem ? p->problem : "invalid input",
                             (unsigned)p->problem_value & 0xFFu);
        }
        return mark_errf(b, RTS_ERR_PARSE, offset_mark(b, p->problem_offset), "%s",
                         p->problem ? p->problem : "invalid input");
    default:
        if (p->context) {
            return mark_errf(b, RTS_ERR_PARSE, p->problem_mark, "%s (%s at line %d, column %d)",
                             p->problem ? p->problem : "syntax error", p->context,
                             clamp_int(p->context_mark.line + 1),
                             clamp_int(p->context_mark.column + 1));
        }
        return mark_errf(b, RTS_ERR_PARSE, p->problem_mark, "%s",
                         p->problem ? p->problem : "syntax error");
    }
}

/* Refuse what this subset does not support on a node or key event. */
static enum rts_err check_props(struct builder *b, const yaml_event_t *ev)
{
    const yaml_char_t *anchor = NULL, *tag = NULL;
    char s[CONF_SHOW_MAX + 4];

    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        anchor = ev->data.alias.anchor;
        return mark_errf(b, RTS_ERR_INVAL, ev->start_mark,
                         "aliases are not supported ('*%s'); repeat the value instead",
                         show((const char *)anchor, strlen((const char *)anchor), s));
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
        break;
    default:
        return mark_errf(b, RTS_ERR_PARSE, ev->start_mark, "unexpected YAML event %d",
                         (int)ev->type);
    }
    if (anchor) {
        return mark_errf(b, RTS_ERR_INVAL, ev->start_mark, "anchors are not supported ('&%s')",
                         show((const char *)anchor, strlen((const char *)anchor), s));
    }
    if (tag) {
        return mark_errf(b, RTS_ERR_INVAL, ev->start_mark, "tags are not supported ('%s')",
                         show((const char *)tag, strlen((const char *)tag), s));
    }
    return RTS_ERR_OK;
}

static enum rts_err entries_push(struct builder *b, struct entries *es, const struct entry *e)
{
    if (es->len == es->cap) {
        size_t cap = es->cap ? es->cap * 2 : 8;
        struct entry *v;

        if (cap > SIZE_MAX / sizeof(*v)) {
            return nomem(b);
        }
        v = realloc(es->v, cap * sizeof(*v));
        if (!v) {
            return nomem(b);
        }
        es->v = v;
        es->cap = cap;
    }
    es->v[es->len] = *e;
    es->v[es->len].idx = es->len;
    es->len++;
    return RTS_ERR_OK;
}

static int entry_cmp(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    int r = strcmp(a->key, b->key);

    if (r) {
        return r;
    }
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* Report the first key, in document order, that repeats an earlier one.
 * Sorting a copy keeps large maps O(n log n). */
static enum rts_err check_duplicates(struct builder *b, const struct entries *es)
{
    struct entry *v, *dup = NULL;
    size_t i;
    char s[CONF_SHOW_MAX + 4];
    yaml_mark_t m = {0, 0, 0};

    if (es->len < 2) {
        return RTS_ERR_OK;
    }
    v = malloc(es->len * sizeof(*v));
    if (!v) {
        return nomem(b);
    }
    memcpy(v, es->v, es->len * sizeof(*v));
    qsort(v, es->len, sizeof(*v), entry_cmp);
    for (i = 1; i < es->len; i++) {
        /* every entry equal to its predecessor is a repeat; report the earliest */
        if (strcmp(v[i].key, v[i - 1].key) == 0 && (!dup || v[i].idx < dup->idx)) {
            dup = &v[i];
        }
    }
    if (!dup) {
        free(v);
        return RTS_ERR_OK;
    }
    m.line = (size_t)dup->line - 1;
    m.column = (size_t)dup->column - 1;
    show(dup->key, strlen(dup->key), s);
    free(v);
    return mark_errf(b, RTS_ERR_INVAL, m, "duplicate key '%s'", s);
}

static enum rts_err build_node(struct builder *b, const yaml_event_t *ev, int depth,
                               struct rts_conf_node **out);

/* Read a key event and its value into @e. *@end is set at the closing event. */
static enum rts_err build_map_entry(struct builder *b, int depth, struct entry *e, int *end)
{
    yaml_event_t ev;
    enum rts_err rc;
    char s[CONF_SHOW_MAX + 4];

    rc = next_event(b, &ev);
    if (rc) {
        return rc;
    }
    if (ev.type == YAML_MAPPING_END_EVENT) {
        *end = 1;
        goto out;
    }
    if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT) {
        rc = mark_errf(b, RTS_ERR_INVAL, ev.start_mark, "a mapping key must be a scalar, not %s",
                       ev.type == YAML_MAPPING_START_EVENT ? "a mapping" : "a sequence");
        goto out;
    }
    rc = check_props(b, &ev);
    if (rc) {
        goto out;
    }
    if (strlen((const char *)ev.data.scalar.value) != ev.data.scalar.length) {
        rc = mark_errf(b, RTS_ERR_INVAL, ev.start_mark, "key '%s' contains a NUL byte",
                       show((const char *)ev.data.scalar.value, ev.data.scalar.length, s));
        goto out;
    }
    e->key = arena_strndup(b->c, (const char *)ev.data.scalar.value, ev.data.scalar.length);
    if (!e->key) {
        rc = nomem(b);
        goto out;
    }
    e->line = clamp_int(ev.start_mark.line + 1);
    e->column = clamp_int(ev.start_mark.column + 1);
    yaml_event_delete(&ev);

    rc = next_event(b, &ev);
    if (rc) {
        return rc;
    }
    rc = build_node(b, &ev, depth + 1, &e->node);
out:
    yaml_event_delete(&ev);
    return rc;
}

/* Read the children of an open collection up to its closing event. */
static enum rts_err build_collection(struct builder *b, int depth, struct rts_conf_node *node)
{
    struct entries es = {NULL, 0, 0};
    enum rts_err rc = RTS_ERR_OK;
    size_t i;

    for (;;) {
        struct entry e = {NULL, 0, 0, 0, NULL};
        int end = 0;

        if (node->kind == RTS_CONF_MAP) {
            rc = build_map_entry(b, depth, &e, &end);
        } else {
            yaml_event_t ev;

            rc = next_event(b, &ev);
            if (!rc) {
                if (ev.type == YAML_SEQUENCE_END_EVENT) {
                    end = 1;
                } else {
                    rc = build_node(b, &ev, depth + 1, &e.node);
                }
                yaml_event_delete(&ev);
            }
        }
        if (rc) {
            goto out;
        }
        if (end) {
            break;
        }
        rc = entries_push(b, &es, &e);
        if (rc) {
            goto out;
        }
    }
    if (node->kind == RTS_CONF_MAP) {
        rc = check_duplicates(b, &es);
        if (rc) {
            goto out;
        }
    }
    node->len = es.len;
    if (es.len == 0) {
        goto out;
    }
    if (es.len > SIZE_MAX / sizeof(void *) / 2) {
        rc = nomem(b);
        goto out;
    }
    node->items = arena_alloc(b->c, es.len * sizeof(*node->items));
    if (!node->items) {
        rc = nomem(b);
        goto out;
    }
    if (node->kind == RTS_CONF_MAP) {
        const char **keys = arena_alloc(b->c, es.len * sizeof(*keys));
        int *lines = arena_alloc(b->c, es.len * sizeof(*lines));
        int *cols = arena_alloc(b->c, es.len * sizeof(*cols));

        if (!keys || !lines || !cols) {
            rc = nomem(b);
            goto out;
        }
        for (i = 0; i < es.len; i++) {
            keys[i] = es.v[i].key;
            lines[i] = es.v[i].line;
            cols[i] = es.v[i].column;
        }
        node->keys = keys;
        node->key_lines = lines;
        node->key_columns = cols;
    }
    for (i = 0; i < es.len; i++) {
        node->items[i] = es.v[i].node;
    }
out:
    free(es.v);
    return rc;
}

/* Build the node that starts with @ev (owned by the caller), reading the
 * events of its children. */
static enum rts_err build_node(struct builder *b, const yaml_event_t *ev, int depth,
                               struct rts_conf_node **out)
{
    struct rts_conf_node *n;
    enum rts_err rc;

    rc = check_props(b, ev);
    if (rc) {
        return rc;
    }
    n = arena_alloc(b->c, sizeof(*n));
    if (!n) {
        return nomem(b);
    }
    n->line = clamp_int(ev->start_mark.line + 1);
    n->column = clamp_int(ev->start_mark.column + 1);
    n->file = b->c->name;
    if (ev->type == YAML_SCALAR_EVENT) {
        n->kind = RTS_CONF_SCALAR;
        n->len = ev->data.scalar.length;
        n->str = arena_strndup(b->c, (const char *)ev->data.scalar.value, n->len);
        if (!n->str) {
            return nomem(b);
        }
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        *out = n;
        return RTS_ERR_OK;
    }
    if (depth >= CONF_MAX_DEPTH) {
        return mark_errf(b, RTS_ERR_INVAL, ev->start_mark, "nesting is deeper than %d levels",
                         CONF_MAX_DEPTH);
    }
    n->kind = ev->type == YAML_MAPPING_START_EVENT ? RTS_CONF_MAP : RTS_CONF_SEQ;
    rc = build_collection(b, depth, n);
    if (rc) {
        return rc;
    }
    *out = n;
    return RTS_ERR_OK;
}

/* Stream: STREAM-START, at most one DOCUMENT-START node DOCUMENT-END, STREAM-END. */
static enum rts_err build_stream(struct builder *b)
{
    yaml_event_t ev;
    enum rts_err rc;
    struct rts_conf_node *root = NULL;

    rc = next_event(b, &ev); /* STREAM-START */
    yaml_event_delete(&ev);
    if (rc) {
        return rc;
    }
    rc = next_event(b, &ev);
    if (rc || ev.type == YAML_STREAM_END_EVENT) {
        goto out; /* empty stream: no document */
    }
    yaml_event_delete(&ev);
    rc = next_event(b, &ev); /* the root node */
    if (rc) {
        return rc;
    }
    rc = build_node(b, &ev, 0, &root);
    yaml_event_delete(&ev);
    if (rc) {
        return rc;
    }
    rc = next_event(b, &ev); /* DOCUMENT-END */
    yaml_event_delete(&ev);
    if (rc) {
        return rc;
    }
    rc = next_event(b, &ev);
    if (rc) {
        return rc;
    }
    if (ev.type == YAML_DOCUMENT_START_EVENT) {
        rc = mark_errf(b, RTS_ERR_INVAL, ev.start_mark,
                       "only one document is allowed in a configuration file");
        goto out;
    }
    b->c->root = rts_conf_is_null(root) ? NULL : root;
out:
    yaml_event_delete(&ev);
    return rc;
}

struct rts_conf *rts_conf_parse(const char *name, const char *text, size_t len,
                                struct rts_errbuf *eb)
{
    struct builder b;
    struct rts_conf *c;
    enum rts_err rc;

    memset(&b, 0, sizeof(b));
    if (!name) {
        name = "<config>";
    }
    if (!text) {
        text = "";
        len = 0;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: out of memory", name);
        return NULL;
    }
    c->name = arena_strndup(c, name, strlen(name));
    if (!c->name) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: out of memory", name);
        goto fail_conf;
    }
    if (!yaml_parser_initialize(&b.parser)) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: out of memory", name);
        goto fail_conf;
    }
    b.c = c;
    b.eb = eb;
    b.text = text;
    b.len = len;
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, len);
    rc = build_stream(&b);
    yaml_parser_delete(&b.parser);
    if (rc) {
        goto fail_conf;
    }
    return c;
fail_conf:
    rts_conf_free(c);
    return NULL;
}

void rts_conf_free(struct rts_conf *c)
{
    struct arena_blk *b, *next;

    if (!c) {
        return;
    }
    for (b = c->blocks; b; b = next) {
        next = b->next;
        free(b);
    }
    free(c);
}

const struct rts_conf_node *rts_conf_root(const struct rts_conf *c)
{
    return c ? c->root : NULL;
}

const char *rts_conf_name(const struct rts_conf *c)
{
    return c ? c->name : NULL;
}

const struct rts_conf_node *rts_conf_get(const struct rts_conf_node *map, const char *key)
{
    size_t i;

    if (!map || map->kind != RTS_CONF_MAP || !key) {
        return NULL;
    }
    for (i = 0; i < map->len; i++) {
        if (strcmp(map->keys[i], key) == 0) {
            return map->items[i];
        }
    }
    return NULL;
}

int rts_conf_is_null(const struct rts_conf_node *n)
{
    if (!n) {
        return 1;
    }
    if (n->kind != RTS_CONF_SCALAR || n->quoted) {
        return 0;
    }
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

/* ---- scalar parsers ---- */

/* Common checks: @n is a scalar without NUL bytes and, when @plain, unquoted. */
static enum rts_err want_scalar(const struct rts_conf_node *n, const char *path, const char *what,
                                int plain, struct rts_errbuf *eb)
{
    char s[CONF_SHOW_MAX + 4];

    if (!n) {
        return rts_conf_errf(eb, NULL, path, "expected %s, got nothing", what);
    }
    if (n->kind != RTS_CONF_SCALAR) {
        return rts_conf_errf(eb, n, path, "expected %s, got %s", what, kind_name(n));
    }
    if (!n->str || strlen(n->str) != n->len) {
        return rts_conf_errf(eb, n, path, "expected %s, got a string with a NUL byte", what);
    }
    if (plain && n->quoted) {
        return rts_conf_errf(eb, n, path, "expected %s, got the string \"%s\" (remove the quotes)",
                             what, show(n->str, n->len, s));
    }
    return RTS_ERR_OK;
}

/* Parse decimal digits at *@p into @v; 0 if there are none or on overflow
 * (*@ovf set). */
static int parse_u64(const char **p, uint64_t *v, int *ovf)
{
    const char *s = *p;
    uint64_t x = 0;

    if (!isdigit((unsigned char)*s)) {
        return 0;
    }
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');

        if (x > (UINT64_MAX - d) / 10) {
            *ovf = 1;
            x = UINT64_MAX;
        } else if (!*ovf) {
            x = x * 10 + d;
        }
    }
    *p = s;
    *v = x;
    return 1;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;

        a = b;
        b = t;
    }
    return a;
}

enum rts_err rts_conf_duration_us(const struct rts_conf_node *n, const char *path, int64_t *out,
                                  struct rts_errbuf *eb)
{
    static const struct {
        const char *unit;
        uint64_t us;
    } units[] = {
        {"us", 1},       {"ms", 1000},         {"s", 1000000},
        {"m", 60000000}, {"h", 3600000000ULL}, {"d", 86400000000ULL},
    };
    const char *what = "a duration like 5m or 250ms";
    char s[CONF_SHOW_MAX + 4];
    const char *p, *frac = NULL;
    uint64_t ip = 0, fp = 0, mult = 0, pow10 = 1, total;
    size_t i, nfrac = 0;
    int ovf = 0;
    enum rts_err rc;

    rc = want_scalar(n, path, what, 0, eb);
    if (rc) {
        return rc;
    }
    if (strcmp(n->str, "0") == 0) {
        *out = 0;
        return RTS_ERR_OK;
    }
    p = n->str;
    if (!parse_u64(&p, &ip, &ovf)) {
        goto bad;
    }
    if (*p == '.') {
        frac = ++p;
        while (isdigit((unsigned char)*p)) {
            p++;
        }
        nfrac = (size_t)(p - frac);
        if (nfrac == 0) {
            goto bad;
        }
    }
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].unit) == 0) {
            mult = units[i].us;
            break;
        }
    }
    if (!mult) {
        goto bad;
    }
    if (ovf || ip > (uint64_t)INT64_MAX / mult) {
        goto big;
    }
    total = ip * mult;
    if (frac) {
        uint64_t g, need;

        while (nfrac > 0 && frac[nfrac - 1] == '0') {
            nfrac--; /* trailing zeros change nothing */
        }
        if (nfrac > 18) {
            goto fine;
        }
        for (i = 0; i < nfrac; i++) {
            fp = fp * 10 + (uint64_t)(frac[i] - '0');
            pow10 *= 10;
        }
        /* fp/pow10 of a unit is fp*mult/pow10 us; divide first so that
         * nothing overflows: the result is below mult. */
        g = gcd_u64(mult, pow10);
        need = pow10 / g;
        if (fp % need) {
            goto fine;
        }
        fp = fp / need * (mult / g);
        if (total > (uint64_t)INT64_MAX - fp) {
            goto big;
        }
        total += fp;
    }
    *out = (int64_t)total;
    return RTS_ERR_OK;
bad:
    return rts_conf_errf(eb, n, path, "expected %s, got '%s'", what, show(n->str, n->len, s));
big:
    return rts_conf_errf(eb, n, path, "duration '%s' is too large", show(n->str, n->len, s));
fine:
    return rts_conf_errf(eb, n, path, "duration '%s' is finer than 1us", show(n->str, n->len, s));
}

enum rts_err rts_conf_size(const struct rts_conf_node *n, const char *path, uint64_t *out,
                           struct rts_errbuf *eb)
{
    static const struct {
        const char *suffix;
        unsigned shift;
    } sfx[] = {
        {"", 0},   {"k", 10},  {"kb", 10},  {"kib", 10}, {"m", 20},  {"mb", 20},  {"mib", 20},
        {"g", 30}, {"gb", 30}, {"gib", 30}, {"t", 40},   {"tb", 40}, {"tib", 40},
    };
    const char *what = "a size like 65536, 64k or 16MiB";
    char s[CONF_SHOW_MAX + 4];
    const char *p;
    uint64_t v = 0;
    size_t i;
    int ovf = 0;
    enum rts_err rc;

    rc = want_scalar(n, path, what, 0, eb);
    if (rc) {
        return rc;
    }
    p = n->str;
    if (!parse_u64(&p, &v, &ovf)) {
        goto bad;
    }
    for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
        if (strcasecmp(p, sfx[i].suffix) == 0) {
            if (ovf || v > (UINT64_MAX >> sfx[i].shift)) {
                return rts_conf_errf(eb, n, path, "size '%s' is too large",
                                     show(n->str, n->len, s));
            }
            *out = v << sfx[i].shift;
            return RTS_ERR_OK;
        }
    }
bad:
    return rts_conf_errf(eb, n, path, "expected %s, got '%s'", what, show(n->str, n->len, s));
}

enum rts_err rts_conf_int(const struct rts_conf_node *n, const char *path, int64_t *out,
                          struct rts_errbuf *eb)
{
    const char *what = "an integer";
    char s[CONF_SHOW_MAX + 4];
    const char *p;
    uint64_t v = 0;
    int neg = 0, ovf = 0;
    enum rts_err rc;

    rc = want_scalar(n, path, what, 1, eb);
    if (rc) {
        return rc;
    }
    p = n->str;
    if (*p == '-' || *p == '+') {
        neg = *p == '-';
        p++;
    }
    if (!parse_u64(&p, &v, &ovf) || *p) {
        return rts_conf_errf(eb, n, path, "expected %s, got '%s'", what, show(n->str, n->len, s));
    }
    if (ovf || v > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX)) {
        return rts_conf_errf(eb, n, path, "integer '%s' is out of range", show(n->str, n->len, s));
    }
    if (neg) {
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        *out = (int64_t)v;
    }
    return RTS_ERR_OK;
}

enum rts_err rts_conf_double(const struct rts_conf_node *n, const char *path, double *out,
                             struct rts_errbuf *eb)
{
    const char *what = "a number";
    char s[CONF_SHOW_MAX + 4];
    char *end;
    double v;
    enum rts_err rc;

    rc = want_scalar(n, path, what, 1, eb);
    if (rc) {
        return rc;
    }
    if (n->len == 0 || isspace((unsigned char)n->str[0])) {
        goto bad;
    }
    errno = 0;
    v = strtod(n->str, &end);
    if (end == n->str || *end) {
        goto bad;
    }
    if (!isfinite(v)) {
        /* "inf", "nan", or an overflow to HUGE_VAL; an underflow is kept */
        if (errno == ERANGE) {
            return rts_conf_errf(eb, n, path, "number '%s' is out of range",
                                 show(n->str, n->len, s));
        }
        return rts_conf_errf(eb, n, path, "expected a finite number, got '%s'",
                             show(n->str, n->len, s));
    }
    *out = v;
    return RTS_ERR_OK;
bad:
    return rts_conf_errf(eb, n, path, "expected %s, got '%s'", what, show(n->str, n->len, s));
}

enum rts_err rts_conf_bool(const struct rts_conf_node *n, const char *path, int *out,
                           struct rts_errbuf *eb)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    const char *what = "true or false";
    char s[CONF_SHOW_MAX + 4];
    size_t i;
    enum rts_err rc;

    rc = want_scalar(n, path, what, 1, eb);
    if (rc) {
        return rc;
    }
    for (i = 0; i < 3; i++) {
        if (strcasecmp(n->str, yes[i]) == 0) {
            *out = 1;
            return RTS_ERR_OK;
        }
        if (strcasecmp(n->str, no[i]) == 0) {
            *out = 0;
            return RTS_ERR_OK;
        }
    }
    return rts_conf_errf(eb, n, path, "expected %s, got '%s'", what, show(n->str, n->len, s));
}

enum rts_err rts_conf_string(const struct rts_conf_node *n, const char *path, const char **out,
                             struct rts_errbuf *eb)
{
    enum rts_err rc = want_scalar(n, path, "a string", 0, eb);

    if (rc) {
        return rc;
    }
    *out = n->str;
    return RTS_ERR_OK;
}

/* ---- option tables ---- */

/* "@path.@key", or @key alone at the top. Truncated to fit @size. */
static const char *join_path(char *buf, size_t size, const char *path, const char *key)
{
    if (path && *path) {
        snprintf(buf, size, "%s.%s", path, key);
    } else {
        snprintf(buf, size, "%s", key);
    }
    return buf;
}

static int in_list(const char *const *list, const char *key)
{
    for (; list && *list; list++) {
        if (strcmp(*list, key) == 0) {
            return 1;
        }
    }
    return 0;
}

static enum rts_err opt_parse(const struct rts_opt *o, const struct rts_conf_node *n,
                              const char *kpath, void *target, struct rts_errbuf *eb)
{
    unsigned char *dst = (unsigned char *)target + o->offset;
    enum rts_err rc;

    switch (o->type) {
    case RTS_OPT_T_STR: {
        const char *v;

        rc = rts_conf_string(n, kpath, &v, eb);
        if (!rc) {
            memcpy(dst, &v, sizeof(v));
        }
        return rc;
    }
    case RTS_OPT_T_INT:
    case RTS_OPT_T_DURATION: {
        int64_t v;

        rc = o->type == RTS_OPT_T_INT ? rts_conf_int(n, kpath, &v, eb)
                                      : rts_conf_duration_us(n, kpath, &v, eb);
        if (!rc) {
            memcpy(dst, &v, sizeof(v));
        }
        return rc;
    }
    case RTS_OPT_T_SIZE: {
        uint64_t v;

        rc = rts_conf_size(n, kpath, &v, eb);
        if (!rc) {
            memcpy(dst, &v, sizeof(v));
        }
        return rc;
    }
    case RTS_OPT_T_DOUBLE: {
        double v;

        rc = rts_conf_double(n, kpath, &v, eb);
        if (!rc) {
            memcpy(dst, &v, sizeof(v));
        }
        return rc;
    }
    case RTS_OPT_T_BOOL: {
        int v;

        rc = rts_conf_bool(n, kpath, &v, eb);
        if (!rc) {
            memcpy(dst, &v, sizeof(v));
        }
        return rc;
    }
    case RTS_OPT_T_NODE:
        memcpy(dst, &n, sizeof(n));
        return RTS_ERR_OK;
    default:
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s: option table: unknown type %d", kpath,
                        (int)o->type);
    }
}

static enum rts_err unknown_key(const struct rts_opt *opts, const struct rts_conf_node *map,
                                size_t i, const char *kpath, const char *const *ignore,
                                struct rts_errbuf *eb)
{
    char list[160]; /* leaves room in eb->msg for the position, path and "..." */
    size_t used = 0;
    const struct rts_opt *o;
    const char *const *ig;
    struct rts_conf_node at = *map;
    int full = 0;

    list[0] = '\0';
    for (o = opts; o->name && !full; o++) {
        if (in_list(ignore, o->name)) {
            continue;
        }
        full = used + strlen(o->name) + 8 >= sizeof(list);
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "",
                                 full ? "..." : o->name);
    }
    for (ig = ignore; ig && *ig && !full; ig++) {
        full = used + strlen(*ig) + 8 >= sizeof(list);
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "",
                                 full ? "..." : *ig);
    }
    at.line = map->key_lines[i];
    at.column = map->key_columns[i];
    if (!used) {
        return rts_conf_errf(eb, &at, kpath, "unknown key; this section takes no keys");
    }
    return rts_conf_errf(eb, &at, kpath, "unknown key; expected one of: %s", list);
}

enum rts_err rts_opt_apply(const struct rts_opt *opts, const struct rts_conf_node *map,
                           const char *path, const char *const *ignore, void *target,
                           struct rts_errbuf *eb)
{
    char kpath[sizeof(eb->msg)];
    const struct rts_opt *o;
    size_t i;
    enum rts_err rc;

    if (map && map->kind != RTS_CONF_MAP) {
        return rts_conf_errf(eb, map, path, "expected a mapping, got %s", kind_name(map));
    }
    for (i = 0; map && i < map->len; i++) {
        const char *key = map->keys[i];

        if (in_list(ignore, key)) {
            continue;
        }
        join_path(kpath, sizeof(kpath), path, key);
        for (o = opts; o->name && strcmp(o->name, key) != 0; o++) {
        }
        if (!o->name) {
            return unknown_key(opts, map, i, kpath, ignore, eb);
        }
        rc = opt_parse(o, map->items[i], kpath, target, eb);
        if (rc) {
            return rc;
        }
    }
    for (o = opts; o->name; o++) {
        struct rts_conf_node def;

        if (in_list(ignore, o->name) || rts_conf_get(map, o->name)) {
            continue;
        }
        if (o->required) {
            return rts_conf_errf(eb, map, path, "missing required key '%s'", o->name);
        }
        if (!o->def) {
            continue;
        }
        join_path(kpath, sizeof(kpath), path, o->name);
        if (o->type == RTS_OPT_T_NODE) {
            return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                            "%s: option table: a NODE option cannot have a default", kpath);
        }
        memset(&def, 0, sizeof(def));
        def.kind = RTS_CONF_SCALAR;
        def.str = o->def;
        def.len = strlen(o->def);
        rc = opt_parse(o, &def, kpath, target, eb);
        if (rc) {
            rts_err_prefix(eb, "bad default in option table");
            return rc;
        }
    }
    return RTS_ERR_OK;
}

/* Append @s as the text of a table cell: '|' escaped, line breaks as spaces. */
static enum rts_err md_cell(struct rts_buf *out, const char *s)
{
    for (; s && *s; s++) {
        enum rts_err rc;

        if (*s == '|') {
            rc = rts_buf_append(out, "\\|", 2);
        } else if (*s == '\n' || *s == '\r') {
            rc = rts_buf_append(out, " ", 1);
        } else {
            rc = rts_buf_append(out, s, 1);
        }
        if (rc) {
            return rc;
        }
    }
    return RTS_ERR_OK;
}

static const char *opt_type_name(enum rts_opt_type t)
{
    switch (t) {
    case RTS_OPT_T_STR:
        return "string";
    case RTS_OPT_T_INT:
        return "int";
    case RTS_OPT_T_SIZE:
        return "size";
    case RTS_OPT_T_DURATION:
        return "duration";
    case RTS_OPT_T_DOUBLE:
        return "number";
    case RTS_OPT_T_BOOL:
        return "bool";
    case RTS_OPT_T_NODE:
        return "any";
    default:
        return "?";
    }
}

enum rts_err rts_opt_doc(const struct rts_opt *opts, struct rts_buf *out)
{
    const struct rts_opt *o;
    static const char head[] = "| key | type | default | description |\n|---|---|---|---|\n";

    if (rts_buf_append(out, head, sizeof(head) - 1)) {
        return RTS_ERR_NOMEM;
    }
    for (o = opts; o->name; o++) {
        if (rts_buf_append(out, "| `", 3) || md_cell(out, o->name) ||
            rts_buf_printf(out, "` | %s | ", opt_type_name(o->type))) {
            return RTS_ERR_NOMEM;
        }
        if (o->required) {
            if (rts_buf_append(out, "required", 8)) {
                return RTS_ERR_NOMEM;
            }
        } else if (o->def) {
            if (rts_buf_append(out, "`", 1) || md_cell(out, o->def) ||
                rts_buf_append(out, "`", 1)) {
                return RTS_ERR_NOMEM;
            }
        }
        if (rts_buf_append(out, " | ", 3) || md_cell(out, o->doc) ||
            rts_buf_append(out, " |\n", 3)) {
            return RTS_ERR_NOMEM;
        }
    }
    return RTS_ERR_OK;
}

void *rts_opt_ctx_new(const struct rts_opt *opts, size_t ctx_size,
                      const struct rts_conf_node *node, const char *path,
                      const char *const *ignore, struct rts_errbuf *eb)
{
    void *ctx = calloc(1, ctx_size ? ctx_size : 1);

    if (!ctx) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: out of memory", path);
        return NULL;
    }
    if (rts_opt_apply(opts, node, path, ignore, ctx, eb) != RTS_ERR_OK) {
        free(ctx);
        return NULL;
    }
    return ctx;
}
