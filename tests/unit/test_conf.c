/*
 * test_conf.c - unit tests of the configuration tree and option tables:
 * block and flow styles, positions of nodes and keys, quoting, every scalar
 * parser with its exact messages, what the YAML subset refuses (anchors,
 * aliases, tags, duplicate and complex keys, several documents, deep
 * nesting), syntax error positions, rts_opt_apply and rts_opt_doc.
 *
 * Each test parses its own text and frees it; ASan's leak checker sees the
 * whole run.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/buf.h"
#include "test.h"

static struct rts_conf *parse(const char *text, struct rts_errbuf *eb)
{
    memset(eb, 0, sizeof(*eb));
    return rts_conf_parse("t.yaml", text, strlen(text), eb);
}

/* Parse @text, expect failure with @code, @msg and position @line:@col. */
static void parse_fails(const char *text, enum rts_err code, const char *msg, int line, int col)
{
    struct rts_errbuf eb;
    struct rts_conf *c = parse(text, &eb);
    int before = test_failures;

    CHECK(c == NULL);
    CHECK_INT(eb.code, code);
    CHECK_STR(eb.msg, msg);
    CHECK_INT(eb.line, line);
    CHECK_INT(eb.column, col);
    if (test_failures != before) {
        fprintf(stderr, "  input: \"%s\"\n", text);
    }
    rts_conf_free(c);
}

/* The node of key "v" in the document "v: @value". */
static const struct rts_conf_node *value_of(struct rts_conf **c, const char *value)
{
    char text[512];
    struct rts_errbuf eb;

    snprintf(text, sizeof(text), "v: %s\n", value);
    *c = parse(text, &eb);
    if (!*c) {
        fprintf(stderr, "  cannot parse \"%s\": %s\n", text, eb.msg);
        return NULL;
    }
    return rts_conf_get(rts_conf_root(*c), "v");
}

enum scalar_kind { K_DUR, K_SIZE, K_INT, K_DOUBLE, K_BOOL, K_STR };

/* Run one scalar parser on "v: @value" with path "x.v"; the result in the
 * outputs, the message in @eb. */
static enum rts_err run_parser(enum scalar_kind k, const char *value, int64_t *i, uint64_t *u,
                               double *d, const char **s, struct rts_errbuf *eb)
{
    struct rts_conf *c = NULL;
    const struct rts_conf_node *n = value_of(&c, value);
    enum rts_err rc = RTS_ERR_PARSE;
    int b = -1;

    memset(eb, 0, sizeof(*eb));
    if (n) {
        switch (k) {
        case K_DUR:
            rc = rts_conf_duration_us(n, "x.v", i, eb);
            break;
        case K_SIZE:
            rc = rts_conf_size(n, "x.v", u, eb);
            break;
        case K_INT:
            rc = rts_conf_int(n, "x.v", i, eb);
            break;
        case K_DOUBLE:
            rc = rts_conf_double(n, "x.v", d, eb);
            break;
        case K_BOOL:
            rc = rts_conf_bool(n, "x.v", &b, eb);
            if (!rc) {
                *i = b;
            }
            break;
        case K_STR:
            rc = rts_conf_string(n, "x.v", s, eb);
            if (!rc) {
                /* the string lives in the tree; copy what the test looks at */
                static char copy[256];

                snprintf(copy, sizeof(copy), "%s", *s);
                *s = copy;
            }
            break;
        }
    }
    rts_conf_free(c);
    return rc;
}

static void scalar_bad(enum scalar_kind k, const char *value, const char *msg)
{
    struct rts_errbuf eb;
    int64_t i = 12345;
    uint64_t u = 12345;
    double d = 12345;
    const char *s = NULL;
    int before = test_failures;

    CHECK_INT(run_parser(k, value, &i, &u, &d, &s, &eb), RTS_ERR_INVAL);
    CHECK_INT(eb.code, RTS_ERR_INVAL);
    CHECK_STR(eb.msg, msg);
    CHECK_INT(eb.line, 1);
    /* the value's column, 4, except for an empty plain value: just after the colon */
    CHECK_INT(eb.column, strncmp(msg, "t.yaml:1:3:", 11) == 0 ? 3 : 4);
    CHECK(i == 12345 && u == 12345 && d == 12345); /* untouched on error */
    if (test_failures != before) {
        fprintf(stderr, "  value: \"%s\"\n", value);
    }
}

static int64_t dur_ok(const char *value)
{
    struct rts_errbuf eb;
    int64_t v = -1;
    uint64_t u;
    double d;
    const char *s;

    if (run_parser(K_DUR, value, &v, &u, &d, &s, &eb)) {
        fprintf(stderr, "  duration \"%s\": %s\n", value, eb.msg);
    }
    return v;
}

static uint64_t size_ok(const char *value)
{
    struct rts_errbuf eb;
    int64_t i;
    uint64_t v = 1;
    double d;
    const char *s;

    if (run_parser(K_SIZE, value, &i, &v, &d, &s, &eb)) {
        fprintf(stderr, "  size \"%s\": %s\n", value, eb.msg);
        return 1;
    }
    return v;
}

static int64_t int_ok(const char *value)
{
    struct rts_errbuf eb;
    int64_t v = 1;
    uint64_t u;
    double d;
    const char *s;

    if (run_parser(K_INT, value, &v, &u, &d, &s, &eb)) {
        fprintf(stderr, "  int \"%s\": %s\n", value, eb.msg);
        return 1;
    }
    return v;
}

static double double_ok(const char *value)
{
    struct rts_errbuf eb;
    int64_t i;
    uint64_t u;
    double v = -999;
    const char *s;

    if (run_parser(K_DOUBLE, value, &i, &u, &v, &s, &eb)) {
        fprintf(stderr, "  double \"%s\": %s\n", value, eb.msg);
    }
    return v;
}

static int bool_ok(const char *value)
{
    struct rts_errbuf eb;
    int64_t v = -1;
    uint64_t u;
    double d;
    const char *s;

    if (run_parser(K_BOOL, value, &v, &u, &d, &s, &eb)) {
        fprintf(stderr, "  bool \"%s\": %s\n", value, eb.msg);
        return -1;
    }
    return (int)v;
}

static const char *str_ok(const char *value)
{
    struct rts_errbuf eb;
    int64_t i;
    uint64_t u;
    double d;
    const char *v = NULL;

    if (run_parser(K_STR, value, &i, &u, &d, &v, &eb)) {
        fprintf(stderr, "  string \"%s\": %s\n", value, eb.msg);
        return NULL;
    }
    return v;
}

/* ---- the tree ---- */

TEST(block_style)
{
    static const char text[] = "pipeline: fraud\n"
                               "workers: auto   # a comment\n"
                               "source:\n"
                               "  type: kafka\n"
                               "  topic: transactions\n"
                               "features:\n"
                               "  - name: a\n"
                               "    window: 5m\n"
                               "  - b\n";
    struct rts_errbuf eb;
    struct rts_conf *c = parse(text, &eb);
    const struct rts_conf_node *root, *src, *feat, *f0;

    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "  %s\n", eb.msg);
        return;
    }
    CHECK_STR(rts_conf_name(c), "t.yaml");
    root = rts_conf_root(c);
    CHECK_INT(root->kind, RTS_CONF_MAP);
    CHECK_INT(root->len, 4);
    CHECK_INT(root->line, 1);
    CHECK_INT(root->column, 1);
    CHECK_STR(root->file, "t.yaml");
    CHECK_STR(root->keys[0], "pipeline");
    CHECK_STR(root->keys[3], "features");
    CHECK_INT(root->key_lines[2], 3);
    CHECK_INT(root->key_columns[2], 1);
    CHECK_STR(rts_conf_get(root, "pipeline")->str, "fraud");
    CHECK_INT(rts_conf_get(root, "pipeline")->len, 5);
    CHECK_STR(rts_conf_get(root, "workers")->str, "auto");
    CHECK_INT(rts_conf_get(root, "workers")->column, 10);

    src = rts_conf_get(root, "source");
    CHECK_INT(src->kind, RTS_CONF_MAP);
    CHECK_INT(src->len, 2);
    CHECK_INT(src->line, 4); /* a block map starts at its first key */
    CHECK_INT(src->column, 3);
    CHECK_INT(src->key_lines[1], 5);
    CHECK_INT(src->key_columns[1], 3);
    CHECK_STR(rts_conf_get(src, "topic")->str, "transactions");
    CHECK_INT(rts_conf_get(src, "topic")->line, 5);
    CHECK_INT(rts_conf_get(src, "topic")->column, 10);
    CHECK_STR(rts_conf_get(src, "topic")->file, "t.yaml");

    feat = rts_conf_get(root, "features");
    CHECK_INT(feat->kind, RTS_CONF_SEQ);
    CHECK_INT(feat->len, 2);
    CHECK(feat->keys == NULL);
    f0 = feat->items[0];
    CHECK_INT(f0->kind, RTS_CONF_MAP);
    CHECK_INT(f0->line, 7);
    CHECK_INT(f0->column, 5);
    CHECK_STR(rts_conf_get(f0, "window")->str, "5m");
    CHECK_INT(rts_conf_get(f0, "window")->line, 8);
    CHECK_INT(rts_conf_get(f0, "window")->column, 13);
    CHECK_INT(feat->items[1]->kind, RTS_CONF_SCALAR);
    CHECK_STR(feat->items[1]->str, "b");
    CHECK_INT(feat->items[1]->line, 9);
    CHECK_INT(feat->items[1]->column, 5);

    CHECK(rts_conf_get(root, "nope") == NULL);
    CHECK(rts_conf_get(feat, "a") == NULL);
    CHECK(rts_conf_get(NULL, "a") == NULL);
    CHECK(rts_conf_get(root, NULL) == NULL);
    rts_conf_free(c);
}

TEST(flow_style)
{
    static const char text[] =
        "source: {type: kafka, topic: x, kafka: {auto.offset.reset: earliest}}\n"
        "list: [1, [2, 3], {a: b}, \"q\"]\n"
        "empty_map: {}\n"
        "empty_seq: []\n";
    struct rts_errbuf eb;
    struct rts_conf *c = parse(text, &eb);
    const struct rts_conf_node *root, *src, *list, *k;

    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "  %s\n", eb.msg);
        return;
    }
    root = rts_conf_root(c);
    src = rts_conf_get(root, "source");
    CHECK_INT(src->kind, RTS_CONF_MAP);
    CHECK_INT(src->len, 3);
    CHECK_INT(src->line, 1);
    CHECK_INT(src->column, 9); /* a flow map starts at its brace */
    CHECK_STR(src->keys[1], "topic");
    CHECK_INT(src->key_columns[1], 23);
    CHECK_STR(rts_conf_get(src, "type")->str, "kafka");
    CHECK_INT(rts_conf_get(src, "type")->column, 16);
    k = rts_conf_get(src, "kafka");
    CHECK_INT(k->kind, RTS_CONF_MAP);
    CHECK_STR(rts_conf_get(k, "auto.offset.reset")->str, "earliest");

    list = rts_conf_get(root, "list");
    CHECK_INT(list->kind, RTS_CONF_SEQ);
    CHECK_INT(list->len, 4);
    CHECK_INT(list->line, 2);
    CHECK_INT(list->column, 7);
    CHECK_STR(list->items[0]->str, "1");
    CHECK_INT(list->items[1]->kind, RTS_CONF_SEQ);
    CHECK_INT(list->items[1]->len, 2);
    CHECK_STR(list->items[1]->items[1]->str, "3");
    CHECK_INT(list->items[1]->items[1]->column, 15);
    CHECK_STR(rts_conf_get(list->items[2], "a")->str, "b");
    CHECK_STR(list->items[3]->str, "q");
    CHECK_INT(list->items[3]->quoted, 1);

    CHECK_INT(rts_conf_get(root, "empty_map")->kind, RTS_CONF_MAP);
    CHECK_INT(rts_conf_get(root, "empty_map")->len, 0);
    CHECK_INT(rts_conf_get(root, "empty_seq")->kind, RTS_CONF_SEQ);
    CHECK_INT(rts_conf_get(root, "empty_seq")->len, 0);
    rts_conf_free(c);
}

TEST(quoting_and_null)
{
    static const char text[] = "plain: 5\n"
                               "dq: \"5\"\n"
                               "sq: '5'\n"
                               "esc: \"a\\tb\\u00e9\"\n"
                               "lit: |\n"
                               "  line one\n"
                               "  line two\n"
                               "fold: >\n"
                               "  a\n"
                               "  b\n"
                               "empty:\n"
                               "tilde: ~\n"
                               "null_word: null\n"
                               "null_quoted: \"null\"\n"
                               "empty_quoted: \"\"\n"
                               "multi: one\n"
                               "  two\n";
    struct rts_errbuf eb;
    struct rts_conf *c = parse(text, &eb);
    const struct rts_conf_node *root;

    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "  %s\n", eb.msg);
        return;
    }
    root = rts_conf_root(c);
    CHECK_INT(rts_conf_get(root, "plain")->quoted, 0);
    CHECK_INT(rts_conf_get(root, "dq")->quoted, 1);
    CHECK_STR(rts_conf_get(root, "dq")->str, "5");
    CHECK_INT(rts_conf_get(root, "dq")->column, 5); /* at the quote */
    CHECK_INT(rts_conf_get(root, "sq")->quoted, 1);
    CHECK_STR(rts_conf_get(root, "esc")->str, "a\tb\xc3\xa9");
    CHECK_INT(rts_conf_get(root, "esc")->len, 5);
    CHECK_STR(rts_conf_get(root, "lit")->str, "line one\nline two\n");
    CHECK_INT(rts_conf_get(root, "lit")->quoted, 1);
    CHECK_STR(rts_conf_get(root, "fold")->str, "a b\n");
    CHECK_STR(rts_conf_get(root, "multi")->str, "one two");
    CHECK_STR(rts_conf_get(root, "empty")->str, "");
    CHECK_INT(rts_conf_get(root, "empty")->len, 0);

    CHECK(rts_conf_is_null(rts_conf_get(root, "empty")));
    CHECK(rts_conf_is_null(rts_conf_get(root, "tilde")));
    CHECK(rts_conf_is_null(rts_conf_get(root, "null_word")));
    CHECK(rts_conf_is_null(NULL));
    CHECK(!rts_conf_is_null(rts_conf_get(root, "null_quoted")));
    CHECK(!rts_conf_is_null(rts_conf_get(root, "empty_quoted")));
    CHECK(!rts_conf_is_null(rts_conf_get(root, "plain")));
    CHECK(!rts_conf_is_null(root));
    rts_conf_free(c);
}

TEST(empty_documents)
{
    static const char *const empty[] = {"",       "# just a comment\n", "---\n", "--- ~\n", "\n\n",
                                        "null\n", "---\n...\n"};
    struct rts_errbuf eb;
    struct rts_conf *c;
    size_t i;

    for (i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
        c = parse(empty[i], &eb);
        CHECK(c != NULL);
        CHECK(rts_conf_root(c) == NULL);
        rts_conf_free(c);
    }
    c = rts_conf_parse("t.yaml", NULL, 0, &eb);
    CHECK(c != NULL && rts_conf_root(c) == NULL);
    rts_conf_free(c);

    /* a scalar or sequence root is a document too; the caller decides */
    c = parse("hello\n", &eb);
    CHECK(c != NULL);
    CHECK_STR(rts_conf_root(c)->str, "hello");
    rts_conf_free(c);
    c = parse("--- [a, b]\n...\n", &eb);
    CHECK(c != NULL);
    CHECK_INT(rts_conf_root(c)->kind, RTS_CONF_SEQ);
    rts_conf_free(c);

    /* the text need not be NUL-terminated: only @len bytes are read */
    c = rts_conf_parse("t.yaml", "a: 1\nb: 2 GARBAGE: [", 10, &eb);
    CHECK(c != NULL);
    CHECK_INT(rts_conf_root(c)->len, 2);
    rts_conf_free(c);

    CHECK(rts_conf_root(NULL) == NULL);
    CHECK(rts_conf_name(NULL) == NULL);
    rts_conf_free(NULL);
}

TEST(default_name)
{
    struct rts_errbuf eb;
    struct rts_conf *c;

    memset(&eb, 0, sizeof(eb));
    c = rts_conf_parse(NULL, "a: [", 4, &eb);
    CHECK(c == NULL);
    /* libyaml puts the end of a stream without a final newline on the next line */
    CHECK_STR(eb.msg, "<config>:2:1: did not find expected node content (while parsing a flow "
                      "node at line 2, column 1)");
    /* a NULL errbuf is allowed */
    c = rts_conf_parse("t.yaml", "a: [", 4, NULL);
    CHECK(c == NULL);
    c = rts_conf_parse("t.yaml", "a: 1\na: 2\n", 10, NULL);
    CHECK(c == NULL);
}

/* ---- what the subset refuses ---- */

TEST(duplicate_keys)
{
    char big[4096];
    size_t used = 0;
    int i;

    parse_fails("a: 1\nb: 2\na: 3\n", RTS_ERR_INVAL, "t.yaml:3:1: duplicate key 'a'", 3, 1);
    parse_fails("x: {k: 1, j: 2, k: 3}\n", RTS_ERR_INVAL, "t.yaml:1:17: duplicate key 'k'", 1, 17);
    parse_fails("s:\n  - {n: 1}\n  - n: 1\n    m: 2\n    n: 3\n", RTS_ERR_INVAL,
                "t.yaml:5:5: duplicate key 'n'", 5, 5);
    /* quoting does not make a different key */
    parse_fails("a: 1\n\"a\": 2\n", RTS_ERR_INVAL, "t.yaml:2:1: duplicate key 'a'", 2, 1);

    /* in a large map the first repeat in document order is reported */
    for (i = 0; i < 200; i++) {
        int key = i == 150 ? 20 : i == 120 ? 99 : i;

        used += (size_t)snprintf(big + used, sizeof(big) - used, "k%d: %d\n", key, i);
    }
    parse_fails(big, RTS_ERR_INVAL, "t.yaml:121:1: duplicate key 'k99'", 121, 1);
}

TEST(anchors_aliases_tags)
{
    parse_fails("a: &x 1\nb: *x\n", RTS_ERR_INVAL, "t.yaml:1:4: anchors are not supported ('&x')",
                1, 4);
    parse_fails("base: &base {a: 1}\n", RTS_ERR_INVAL,
                "t.yaml:1:7: anchors are not supported ('&base')", 1, 7);
    parse_fails("a: 1\nb: *x\n", RTS_ERR_INVAL,
                "t.yaml:2:4: aliases are not supported ('*x'); repeat the value instead", 2, 4);
    parse_fails("a:\n  - 1\n  - *y\n", RTS_ERR_INVAL,
                "t.yaml:3:5: aliases are not supported ('*y'); repeat the value instead", 3, 5);
    parse_fails("? *k\n: 1\n", RTS_ERR_INVAL,
                "t.yaml:1:3: aliases are not supported ('*k'); repeat the value instead", 1, 3);
    parse_fails("a: !!str 5\n", RTS_ERR_INVAL,
                "t.yaml:1:4: tags are not supported ('tag:yaml.org,2002:str')", 1, 4);
    parse_fails("a: !custom {b: 1}\n", RTS_ERR_INVAL,
                "t.yaml:1:4: tags are not supported ('!custom')", 1, 4);
}

TEST(complex_keys)
{
    parse_fails("? [a, b]\n: 1\n", RTS_ERR_INVAL,
                "t.yaml:1:3: a mapping key must be a scalar, not a sequence", 1, 3);
    parse_fails("{{a: 1}: 2}\n", RTS_ERR_INVAL,
                "t.yaml:1:2: a mapping key must be a scalar, not a mapping", 1, 2);
    parse_fails("\"a\\0b\": 1\n", RTS_ERR_INVAL, "t.yaml:1:1: key 'a?b' contains a NUL byte", 1, 1);
}

TEST(several_documents)
{
    parse_fails("a: 1\n---\nb: 2\n", RTS_ERR_INVAL,
                "t.yaml:2:1: only one document is allowed in a configuration file", 2, 1);
    parse_fails("a: 1\n...\n--- b\n", RTS_ERR_INVAL,
                "t.yaml:3:1: only one document is allowed in a configuration file", 3, 1);
}

TEST(syntax_errors)
{
    struct rts_errbuf eb;
    struct rts_conf *c;

    parse_fails("a: b: c\n", RTS_ERR_PARSE,
                "t.yaml:1:5: mapping values are not allowed in this context", 1, 5);
    parse_fails("a: 1\nb: [1, 2\nc: 3\n", RTS_ERR_PARSE,
                "t.yaml:3:2: did not find expected ',' or ']' "
                "(while parsing a flow sequence at line 2, column 4)",
                3, 2);
    parse_fails("source:\n  type: kafka\n topic: x\n", RTS_ERR_PARSE,
                "t.yaml:3:2: did not find expected key (while parsing a block mapping at line 1, "
                "column 1)",
                3, 2);
    parse_fails("a:\n\t- 1\n", RTS_ERR_PARSE,
                "t.yaml:2:1: found character that cannot start any token "
                "(while scanning for the next token at line 2, column 1)",
                2, 1);
    parse_fails("a: \"open\n", RTS_ERR_PARSE,
                "t.yaml:2:1: found unexpected end of stream "
                "(while scanning a quoted scalar at line 1, column 4)",
                2, 1);
    /* a reader error has a byte offset; the position is derived from it */
    parse_fails("a: 1\nb: caf\xc3\xa9 \xff\n", RTS_ERR_PARSE,
                "t.yaml:2:9: invalid leading UTF-8 octet (byte 0xFF)", 2,
                9); /* columns count characters */

    /* eb->pos is the byte offset of the problem */
    c = parse("a: 1\nb: c: d\n", &eb);
    CHECK(c == NULL);
    CHECK_INT(eb.pos, 9);
}

TEST(nesting_limit)
{
    char deep[256];
    struct rts_errbuf eb;
    struct rts_conf *c;
    int i;

    for (i = 0; i < 64; i++) {
        deep[i] = '[';
    }
    for (i = 0; i < 64; i++) {
        deep[64 + i] = ']';
    }
    deep[128] = '\0';
    c = parse(deep, &eb);
    CHECK(c != NULL); /* 64 levels are fine */
    rts_conf_free(c);

    memmove(deep + 1, deep, 129); /* one level more */
    deep[0] = '[';
    deep[129] = ']';
    deep[130] = '\0';
    parse_fails(deep, RTS_ERR_INVAL, "t.yaml:1:65: nesting is deeper than 64 levels", 1, 65);
}

/* ---- scalar parsers ---- */

TEST(duration)
{
    CHECK_INT(dur_ok("0"), 0);
    CHECK_INT(dur_ok("0s"), 0);
    CHECK_INT(dur_ok("250us"), 250);
    CHECK_INT(dur_ok("5ms"), 5000);
    CHECK_INT(dur_ok("30s"), 30000000);
    CHECK_INT(dur_ok("5m"), 300000000);
    CHECK_INT(dur_ok("24h"), 86400000000LL);
    CHECK_INT(dur_ok("30d"), 2592000000000LL);
    CHECK_INT(dur_ok("1.5s"), 1500000);
    CHECK_INT(dur_ok("1.50s"), 1500000);
    CHECK_INT(dur_ok("0.5ms"), 500);
    CHECK_INT(dur_ok("1.25h"), 4500000000LL);
    CHECK_INT(dur_ok("0.000001s"), 1);
    CHECK_INT(dur_ok("1.000000000000000000000000us"), 1);
    CHECK_INT(dur_ok("\"5m\""), 300000000); /* a quoted duration is fine */
    CHECK_INT(dur_ok("106751991d"), 9223372022400000000LL);
    CHECK_INT(dur_ok("106751991.167d"), 9223372036828800000LL);
    CHECK_INT(dur_ok("9223372036854775807us"), INT64_MAX);

    scalar_bad(K_DUR, "5", "t.yaml:1:4: x.v: expected a duration like 5m or 250ms, got '5'");
    scalar_bad(K_DUR, "0.0", "t.yaml:1:4: x.v: expected a duration like 5m or 250ms, got '0.0'");
    scalar_bad(K_DUR, "5x", "t.yaml:1:4: x.v: expected a duration like 5m or 250ms, got '5x'");
    scalar_bad(K_DUR, "5M", "t.yaml:1:4: x.v: expected a duration like 5m or 250ms, got '5M'");
    scalar_bad(K_DUR, "-5s", "t.yaml:1:4: x.v: expected a duration like 5m or 250ms, got '-5s'");
    scalar_bad(K_DUR, "1.s", "t.yaml:1:4: x.v: expected a duration like 5m or 250ms, got '1.s'");
    scalar_bad(K_DUR, ".5s", "t.yaml:1:4: x.v: expected a duration like 5m or 250ms, got '.5s'");
    scalar_bad(K_DUR, "5 s", "t.yaml:1:4: x.v: expected a duration like 5m or 250ms, got '5 s'");
    scalar_bad(K_DUR, "s", "t.yaml:1:4: x.v: expected a duration like 5m or 250ms, got 's'");
    scalar_bad(K_DUR, "\"\"", "t.yaml:1:4: x.v: expected a duration like 5m or 250ms, got ''");
    scalar_bad(K_DUR, "1.5us", "t.yaml:1:4: x.v: duration '1.5us' is finer than 1us");
    scalar_bad(K_DUR, "0.0000001s", "t.yaml:1:4: x.v: duration '0.0000001s' is finer than 1us");
    scalar_bad(K_DUR, "0.0000000000000000001d",
               "t.yaml:1:4: x.v: duration '0.0000000000000000001d' is finer than 1us");
    scalar_bad(K_DUR, "106751992d", "t.yaml:1:4: x.v: duration '106751992d' is too large");
    scalar_bad(K_DUR, "106751991.168d", "t.yaml:1:4: x.v: duration '106751991.168d' is too large");
    scalar_bad(K_DUR, "9223372036854775808us",
               "t.yaml:1:4: x.v: duration '9223372036854775808us' is too large");
    scalar_bad(K_DUR, "99999999999999999999999s",
               "t.yaml:1:4: x.v: duration '99999999999999999999999s' is too large");
    scalar_bad(K_DUR, "{a: 1}",
               "t.yaml:1:4: x.v: expected a duration like 5m or 250ms, got a mapping");
    scalar_bad(K_DUR, "[5m]",
               "t.yaml:1:4: x.v: expected a duration like 5m or 250ms, got a sequence");
}

TEST(size)
{
    CHECK_INT(size_ok("0"), 0);
    CHECK_INT(size_ok("65536"), 65536);
    CHECK_INT(size_ok("64k"), 65536);
    CHECK_INT(size_ok("64K"), 65536);
    CHECK_INT(size_ok("64kb"), 65536);
    CHECK_INT(size_ok("64KiB"), 65536);
    CHECK_INT(size_ok("16MiB"), 16777216);
    CHECK_INT(size_ok("16m"), 16777216);
    CHECK_INT(size_ok("16MB"), 16777216);
    CHECK_INT(size_ok("1g"), 1073741824);
    CHECK_INT(size_ok("1GiB"), 1073741824);
    CHECK_INT(size_ok("2t"), 2199023255552LL);
    CHECK_INT(size_ok("'64k'"), 65536);
    CHECK(size_ok("18446744073709551615") == UINT64_MAX);
    CHECK(size_ok("16777215t") == UINT64_C(16777215) << 40);

    scalar_bad(K_SIZE, "1.5g",
               "t.yaml:1:4: x.v: expected a size like 65536, 64k or 16MiB, got '1.5g'");
    scalar_bad(K_SIZE, "-1", "t.yaml:1:4: x.v: expected a size like 65536, 64k or 16MiB, got '-1'");
    scalar_bad(K_SIZE, "64x",
               "t.yaml:1:4: x.v: expected a size like 65536, 64k or 16MiB, got '64x'");
    scalar_bad(K_SIZE, "k", "t.yaml:1:4: x.v: expected a size like 65536, 64k or 16MiB, got 'k'");
    scalar_bad(K_SIZE, "64 k",
               "t.yaml:1:4: x.v: expected a size like 65536, 64k or 16MiB, got '64 k'");
    scalar_bad(K_SIZE, "18446744073709551616",
               "t.yaml:1:4: x.v: size '18446744073709551616' is too large");
    scalar_bad(K_SIZE, "16777216t", "t.yaml:1:4: x.v: size '16777216t' is too large");
    scalar_bad(K_SIZE, "[1]",
               "t.yaml:1:4: x.v: expected a size like 65536, 64k or 16MiB, got a sequence");
}

TEST(integer)
{
    CHECK_INT(int_ok("42"), 42);
    CHECK_INT(int_ok("-42"), -42);
    CHECK_INT(int_ok("+7"), 7);
    CHECK_INT(int_ok("0"), 0);
    CHECK_INT(int_ok("007"), 7);
    CHECK_INT(int_ok("9223372036854775807"), INT64_MAX);
    CHECK_INT(int_ok("-9223372036854775808"), INT64_MIN);

    scalar_bad(K_INT, "9223372036854775808",
               "t.yaml:1:4: x.v: integer '9223372036854775808' is out of range");
    scalar_bad(K_INT, "-9223372036854775809",
               "t.yaml:1:4: x.v: integer '-9223372036854775809' is out of range");
    scalar_bad(K_INT, "123456789012345678901234567890",
               "t.yaml:1:4: x.v: integer '123456789012345678901234567890' is out of range");
    scalar_bad(K_INT, "4.2", "t.yaml:1:4: x.v: expected an integer, got '4.2'");
    scalar_bad(K_INT, "0x10", "t.yaml:1:4: x.v: expected an integer, got '0x10'");
    scalar_bad(K_INT, "1_000", "t.yaml:1:4: x.v: expected an integer, got '1_000'");
    scalar_bad(K_INT, "+-1", "t.yaml:1:4: x.v: expected an integer, got '+-1'");
    scalar_bad(K_INT, "'-'",
               "t.yaml:1:4: x.v: expected an integer, got the string \"-\" (remove the quotes)");
    scalar_bad(K_INT, "", "t.yaml:1:3: x.v: expected an integer, got ''");
    scalar_bad(K_INT, "\"5\"",
               "t.yaml:1:4: x.v: expected an integer, got the string \"5\" (remove the quotes)");
    scalar_bad(K_INT, "{}", "t.yaml:1:4: x.v: expected an integer, got a mapping");
}

TEST(number)
{
    CHECK_NEAR(double_ok("3.5"), 3.5, 0);
    CHECK_NEAR(double_ok("-1e-3"), -0.001, 1e-18);
    CHECK_NEAR(double_ok("0"), 0, 0);
    CHECK_NEAR(double_ok("10000"), 10000, 0);
    CHECK_NEAR(double_ok("1e-400"), 0, 1e-300); /* underflow: kept */

    scalar_bad(K_DOUBLE, "inf", "t.yaml:1:4: x.v: expected a finite number, got 'inf'");
    scalar_bad(K_DOUBLE, "nan", "t.yaml:1:4: x.v: expected a finite number, got 'nan'");
    scalar_bad(K_DOUBLE, "1e999", "t.yaml:1:4: x.v: number '1e999' is out of range");
    scalar_bad(K_DOUBLE, "abc", "t.yaml:1:4: x.v: expected a number, got 'abc'");
    scalar_bad(K_DOUBLE, "1.5x", "t.yaml:1:4: x.v: expected a number, got '1.5x'");
    scalar_bad(K_DOUBLE, "", "t.yaml:1:3: x.v: expected a number, got ''");
    scalar_bad(K_DOUBLE, "' 1.5'",
               "t.yaml:1:4: x.v: expected a number, got the string \" 1.5\" (remove the quotes)");
    scalar_bad(K_DOUBLE, "[1.5]", "t.yaml:1:4: x.v: expected a number, got a sequence");
}

TEST(boolean)
{
    CHECK_INT(bool_ok("true"), 1);
    CHECK_INT(bool_ok("True"), 1);
    CHECK_INT(bool_ok("TRUE"), 1);
    CHECK_INT(bool_ok("yes"), 1);
    CHECK_INT(bool_ok("On"), 1);
    CHECK_INT(bool_ok("false"), 0);
    CHECK_INT(bool_ok("No"), 0);
    CHECK_INT(bool_ok("OFF"), 0);

    scalar_bad(K_BOOL, "maybe", "t.yaml:1:4: x.v: expected true or false, got 'maybe'");
    scalar_bad(K_BOOL, "1", "t.yaml:1:4: x.v: expected true or false, got '1'");
    scalar_bad(K_BOOL, "", "t.yaml:1:3: x.v: expected true or false, got ''");
    scalar_bad(
        K_BOOL, "\"true\"",
        "t.yaml:1:4: x.v: expected true or false, got the string \"true\" (remove the quotes)");
    scalar_bad(K_BOOL, "[true]", "t.yaml:1:4: x.v: expected true or false, got a sequence");
}

TEST(string)
{
    CHECK_STR(str_ok("hello world"), "hello world");
    CHECK_STR(str_ok("\"quoted: yes\""), "quoted: yes");
    CHECK_STR(str_ok("'it''s'"), "it's");
    CHECK_STR(str_ok("42"), "42");
    CHECK_STR(str_ok("true"), "true");
    CHECK_STR(str_ok(""), "");
    CHECK_STR(str_ok("127.0.0.1:9092"), "127.0.0.1:9092");

    scalar_bad(K_STR, "{a: 1}", "t.yaml:1:4: x.v: expected a string, got a mapping");
    scalar_bad(K_STR, "[a]", "t.yaml:1:4: x.v: expected a string, got a sequence");
    scalar_bad(K_STR, "\"a\\0b\"",
               "t.yaml:1:4: x.v: expected a string, got a string with a NUL byte");
}

TEST(messages)
{
    char value[128];
    struct rts_errbuf eb;
    struct rts_conf *c;
    const struct rts_conf_node *n;

    /* long values are cut at 40 bytes, control bytes shown as '?' */
    memset(value, 'x', 100);
    value[100] = '\0';
    scalar_bad(
        K_INT, value,
        "t.yaml:1:4: x.v: expected an integer, got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'");
    scalar_bad(K_INT, "\"a\\tb\"",
               "t.yaml:1:4: x.v: expected an integer, got the string \"a?b\" (remove the quotes)");
    /* a cut never splits a UTF-8 sequence: 39 x then a 2-byte character */
    memset(value, 'x', 39);
    memcpy(value + 39, "\xc3\xa9yyy", 6);
    scalar_bad(
        K_INT, value,
        "t.yaml:1:4: x.v: expected an integer, got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'");

    /* rts_conf_errf: position, path, message */
    c = parse("a:\n  b: [1, 2]\n", &eb);
    n = rts_conf_get(rts_conf_get(rts_conf_root(c), "a"), "b");
    memset(&eb, 0, sizeof(eb));
    CHECK_INT(rts_conf_errf(&eb, n, "a.b", "wanted %d items", 3), RTS_ERR_INVAL);
    CHECK_INT(eb.code, RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "t.yaml:2:6: a.b: wanted 3 items");
    CHECK_INT(eb.line, 2);
    CHECK_INT(eb.column, 6);
    rts_conf_errf(&eb, n->items[1], "a.b[1]", "too big");
    CHECK_STR(eb.msg, "t.yaml:2:10: a.b[1]: too big");
    rts_conf_errf(&eb, n, NULL, "no path");
    CHECK_STR(eb.msg, "t.yaml:2:6: no path");
    rts_conf_errf(&eb, n, "", "empty path");
    CHECK_STR(eb.msg, "t.yaml:2:6: empty path");
    rts_conf_errf(&eb, NULL, "a.c", "no node");
    CHECK_STR(eb.msg, "a.c: no node");
    CHECK_INT(eb.line, 0);
    CHECK_INT(rts_conf_errf(NULL, n, "a", "ignored"), RTS_ERR_INVAL);
    /* a NULL node to a parser */
    CHECK_INT(rts_conf_int(NULL, "a.c", NULL, &eb), RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "a.c: expected an integer, got nothing");
    rts_conf_free(c);
}

/* ---- option tables ---- */

struct src_conf {
    const char *brokers, *topic, *group;
    const struct rts_conf_node *kafka;
    int64_t timeout_us, retries;
    uint64_t queue;
    double ratio;
    int follow;
};

static const struct rts_opt src_opts[] = {
    RTS_OPT_STR("brokers", "127.0.0.1:9092", offsetof(struct src_conf, brokers), "host:port[,...]"),
    RTS_OPT_STR_REQ("topic", offsetof(struct src_conf, topic), "topic to consume"),
    RTS_OPT_STR("group", NULL, offsetof(struct src_conf, group), "consumer group"),
    RTS_OPT_NODE("kafka", offsetof(struct src_conf, kafka), "librdkafka properties, verbatim"),
    RTS_OPT_END,
};

static const struct rts_opt all_opts[] = {
    RTS_OPT_STR("name", "anon", offsetof(struct src_conf, brokers), "a | name"),
    RTS_OPT_DURATION("timeout", "5ms", offsetof(struct src_conf, timeout_us), "per request"),
    RTS_OPT_SIZE("queue", "64k", offsetof(struct src_conf, queue), "queue bytes"),
    RTS_OPT_INT("retries", "-1", offsetof(struct src_conf, retries), "-1 = forever"),
    RTS_OPT_DOUBLE("ratio", "0.25", offsetof(struct src_conf, ratio), "sampled share"),
    RTS_OPT_BOOL("follow", "on", offsetof(struct src_conf, follow), "tail the file"),
    RTS_OPT_NODE("extra", offsetof(struct src_conf, kafka), NULL),
    RTS_OPT_REQ("group", RTS_OPT_T_STR, offsetof(struct src_conf, group), "required group"),
    RTS_OPT_END,
};

/* Parse @text and apply @opts to its key "source" (path "source"). */
static enum rts_err apply(const char *text, const struct rts_opt *opts, const char *const *ignore,
                          struct src_conf *out, struct rts_errbuf *eb, struct rts_conf **c)
{
    *c = parse(text, eb);
    memset(out, 0, sizeof(*out));
    if (!*c) {
        fprintf(stderr, "  cannot parse: %s\n", eb->msg);
        return RTS_ERR_PARSE;
    }
    return rts_opt_apply(opts, rts_conf_get(rts_conf_root(*c), "source"), "source", ignore, out,
                         eb);
}

TEST(opt_apply_values_and_defaults)
{
    struct rts_errbuf eb;
    struct rts_conf *c;
    struct src_conf s;

    CHECK_INT(apply("source:\n  brokers: b1:9092,b2:9092\n  topic: tx\n  group: g\n"
                    "  kafka: {auto.offset.reset: earliest}\n",
                    src_opts, NULL, &s, &eb, &c),
              RTS_ERR_OK);
    CHECK_STR(s.brokers, "b1:9092,b2:9092");
    CHECK_STR(s.topic, "tx");
    CHECK_STR(s.group, "g");
    CHECK(s.kafka != NULL && s.kafka->kind == RTS_CONF_MAP);
    CHECK_STR(rts_conf_get(s.kafka, "auto.offset.reset")->str, "earliest");
    rts_conf_free(c);

    /* absent optional keys: the default text, or untouched (zero) without one */
    CHECK_INT(apply("source: {topic: tx}\n", src_opts, NULL, &s, &eb, &c), RTS_ERR_OK);
    CHECK_STR(s.brokers, "127.0.0.1:9092");
    CHECK_STR(s.topic, "tx");
    CHECK(s.group == NULL);
    CHECK(s.kafka == NULL);
    rts_conf_free(c);

    /* every type, from the map */
    CHECK_INT(apply("source: {name: n, timeout: 1.5s, queue: 1MiB, retries: 3, ratio: 0.5,"
                    " follow: no, extra: [1, 2], group: g}\n",
                    all_opts, NULL, &s, &eb, &c),
              RTS_ERR_OK);
    CHECK_STR(s.brokers, "n");
    CHECK_INT(s.timeout_us, 1500000);
    CHECK_INT(s.queue, 1048576);
    CHECK_INT(s.retries, 3);
    CHECK_NEAR(s.ratio, 0.5, 0);
    CHECK_INT(s.follow, 0);
    CHECK(s.kafka != NULL && s.kafka->kind == RTS_CONF_SEQ && s.kafka->len == 2);
    CHECK_STR(s.group, "g");
    rts_conf_free(c);

    /* every type, from the defaults */
    CHECK_INT(apply("source: {group: g}\n", all_opts, NULL, &s, &eb, &c), RTS_ERR_OK);
    CHECK_STR(s.brokers, "anon");
    CHECK_INT(s.timeout_us, 5000);
    CHECK_INT(s.queue, 65536);
    CHECK_INT(s.retries, -1);
    CHECK_NEAR(s.ratio, 0.25, 0);
    CHECK_INT(s.follow, 1);
    CHECK(s.kafka == NULL);
    rts_conf_free(c);
}

TEST(opt_apply_null_map)
{
    static const struct rts_opt opts[] = {
        RTS_OPT_DURATION("every", "30s", offsetof(struct src_conf, timeout_us), "interval"),
        RTS_OPT_END,
    };
    struct rts_errbuf eb;
    struct src_conf s;

    memset(&s, 0, sizeof(s));
    memset(&eb, 0, sizeof(eb));
    CHECK_INT(rts_opt_apply(opts, NULL, "checkpoint", NULL, &s, &eb), RTS_ERR_OK);
    CHECK_INT(s.timeout_us, 30000000);
    /* a NULL map with a required option: no position to give */
    CHECK_INT(rts_opt_apply(src_opts, NULL, "source", NULL, &s, &eb), RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "source: missing required key 'topic'");
    CHECK_INT(eb.line, 0);
}

TEST(opt_apply_errors)
{
    static const char *const ignore[] = {"type", NULL};
    struct rts_errbuf eb;
    struct rts_conf *c;
    struct src_conf s;

    /* missing required: at the map's position */
    CHECK_INT(
        apply("pipeline: p\nsource:\n  brokers: b\n  group: g\n", src_opts, NULL, &s, &eb, &c),
        RTS_ERR_INVAL);
    CHECK_INT(eb.code, RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "t.yaml:3:3: source: missing required key 'topic'");
    CHECK_INT(eb.line, 3);
    CHECK_INT(eb.column, 3);
    rts_conf_free(c);

    /* unknown key: at the key, listing the valid ones */
    CHECK_INT(apply("source:\n  topic: t\n  topic2: u\n", src_opts, NULL, &s, &eb, &c),
              RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "t.yaml:3:3: source.topic2: unknown key; expected one of: brokers, topic, "
                      "group, kafka");
    CHECK_INT(eb.line, 3);
    CHECK_INT(eb.column, 3);
    rts_conf_free(c);

    /* ignored keys are skipped, and named among the valid ones */
    CHECK_INT(apply("source: {type: kafka, topic: t}\n", src_opts, ignore, &s, &eb, &c),
              RTS_ERR_OK);
    CHECK_STR(s.topic, "t");
    rts_conf_free(c);
    CHECK_INT(apply("source: {type: kafka, topic: t, tpoic: u}\n", src_opts, ignore, &s, &eb, &c),
              RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "t.yaml:1:33: source.tpoic: unknown key; expected one of: brokers, topic, "
                      "group, kafka, type");
    rts_conf_free(c);
    /* without the ignore list, "type" is unknown */
    CHECK_INT(apply("source: {type: kafka, topic: t}\n", src_opts, NULL, &s, &eb, &c),
              RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "t.yaml:1:10: source.type: unknown key; expected one of: brokers, topic, "
                      "group, kafka");
    rts_conf_free(c);

    /* wrong types name the key path and the value's position */
    CHECK_INT(apply("source:\n  group: g\n  timeout: 5\n", all_opts, NULL, &s, &eb, &c),
              RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "t.yaml:3:12: source.timeout: expected a duration like 5m or 250ms, got '5'");
    rts_conf_free(c);
    CHECK_INT(apply("source:\n  group: g\n  follow: \"yes\"\n", all_opts, NULL, &s, &eb, &c),
              RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "t.yaml:3:11: source.follow: expected true or false, got the string \"yes\" "
                      "(remove the quotes)");
    rts_conf_free(c);
    CHECK_INT(apply("source: {topic: {a: 1}}\n", src_opts, NULL, &s, &eb, &c), RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "t.yaml:1:17: source.topic: expected a string, got a mapping");
    rts_conf_free(c);
    /* errors come in document order */
    CHECK_INT(apply("source: {queue: x, retries: y, group: g}\n", all_opts, NULL, &s, &eb, &c),
              RTS_ERR_INVAL);
    CHECK_STR(eb.msg,
              "t.yaml:1:17: source.queue: expected a size like 65536, 64k or 16MiB, got 'x'");
    rts_conf_free(c);

    /* not a mapping */
    CHECK_INT(apply("source: [a, b]\n", src_opts, NULL, &s, &eb, &c), RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "t.yaml:1:9: source: expected a mapping, got a sequence");
    rts_conf_free(c);
    CHECK_INT(apply("source: kafka\n", src_opts, NULL, &s, &eb, &c), RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "t.yaml:1:9: source: expected a mapping, got a scalar");
    rts_conf_free(c);
}

TEST(opt_apply_paths_and_tables)
{
    static const struct rts_opt none[] = {RTS_OPT_END};
    static const struct rts_opt bad_def[] = {
        RTS_OPT_DURATION("every", "30", offsetof(struct src_conf, timeout_us), "interval"),
        RTS_OPT_END,
    };
    static const char *const many[] = {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                       "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                                       "cccccccccccccccccccccccccccccccccccccccccccc",
                                       "dddddddddddddddddddddddddddddddddddddddddddd",
                                       "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
                                       "ffffffffffffffffffffffffffffffffffffffffffff",
                                       NULL};
    struct rts_errbuf eb;
    struct rts_conf *c;
    struct src_conf s;

    /* a top-level section: no path prefix */
    memset(&s, 0, sizeof(s));
    c = parse("topic: t\nextra: 1\n", &eb);
    CHECK_INT(rts_opt_apply(src_opts, rts_conf_root(c), "", NULL, &s, &eb), RTS_ERR_INVAL);
    CHECK_STR(eb.msg,
              "t.yaml:2:1: extra: unknown key; expected one of: brokers, topic, group, kafka");
    CHECK_INT(rts_opt_apply(src_opts, rts_conf_root(c), NULL, NULL, &s, &eb), RTS_ERR_INVAL);
    CHECK_STR(eb.msg,
              "t.yaml:2:1: extra: unknown key; expected one of: brokers, topic, group, kafka");
    /* a section that takes no keys */
    CHECK_INT(rts_opt_apply(none, rts_conf_root(c), "x", NULL, &s, &eb), RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "t.yaml:1:1: x.topic: unknown key; this section takes no keys");
    /* a long list of valid keys is cut, not overflowed */
    CHECK_INT(rts_opt_apply(none, rts_conf_root(c), "x", many, &s, &eb), RTS_ERR_INVAL);
    CHECK(strncmp(eb.msg, "t.yaml:1:1: x.topic: unknown key; expected one of: aaaa", 55) == 0);
    CHECK(strstr(eb.msg, "...") != NULL);
    rts_conf_free(c);

    /* a sequence element's path is the caller's */
    c = parse("features:\n  - {name: a}\n  - {name: b, oops: 1}\n", &eb);
    CHECK_INT(rts_opt_apply(all_opts, rts_conf_get(rts_conf_root(c), "features")->items[1],
                            "features[1]", NULL, &s, &eb),
              RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "t.yaml:3:15: features[1].oops: unknown key; expected one of: name, "
                      "timeout, queue, retries, ratio, follow, extra, group");
    rts_conf_free(c);

    /* a bad default is the table's fault and says so */
    CHECK_INT(rts_opt_apply(bad_def, NULL, "checkpoint", NULL, &s, &eb), RTS_ERR_INVAL);
    CHECK_STR(eb.msg, "bad default in option table: checkpoint.every: expected a duration like "
                      "5m or 250ms, got '30'");
}

TEST(opt_doc)
{
    struct rts_buf out = {0};

    CHECK_INT(rts_opt_doc(src_opts, &out), RTS_ERR_OK);
    CHECK_STR(out.data, "| key | type | default | description |\n"
                        "|---|---|---|---|\n"
                        "| `brokers` | string | `127.0.0.1:9092` | host:port[,...] |\n"
                        "| `topic` | string | required | topic to consume |\n"
                        "| `group` | string |  | consumer group |\n"
                        "| `kafka` | any |  | librdkafka properties, verbatim |\n");
    rts_buf_fini(&out);

    CHECK_INT(rts_opt_doc(all_opts, &out), RTS_ERR_OK);
    CHECK_STR(out.data, "| key | type | default | description |\n"
                        "|---|---|---|---|\n"
                        "| `name` | string | `anon` | a \\| name |\n"
                        "| `timeout` | duration | `5ms` | per request |\n"
                        "| `queue` | size | `64k` | queue bytes |\n"
                        "| `retries` | int | `-1` | -1 = forever |\n"
                        "| `ratio` | number | `0.25` | sampled share |\n"
                        "| `follow` | bool | `on` | tail the file |\n"
                        "| `extra` | any |  |  |\n"
                        "| `group` | string | required | required group |\n");
    rts_buf_fini(&out);
}

/* The pipeline of DESIGN.md section 2, in part: the shapes the other modules read. */
TEST(design_pipeline)
{
    static const char text[] =
        "pipeline: fraud\n"
        "workers: auto                    # number of shard workers\n"
        "source:                          # kafka | file | generator\n"
        "  type: kafka\n"
        "  brokers: 127.0.0.1:9092\n"
        "  topic: transactions\n"
        "  group: fraud-scorer\n"
        "  kafka: {auto.offset.reset: earliest}\n"
        "event:\n"
        "  fields:\n"
        "    card_id:     {type: string, required: true, max_len: 64}\n"
        "    country:     {type: string, default: \"US\"}\n"
        "features:\n"
        "  - {name: amount_log,       expr: \"log1p(amount)\"}\n"
        "  - {name: avg_spend_90d,    lookup: {store: profiles, key: \"card:{card_id}\", "
        "field: avg_spend_90d,\n"
        "                                      max_age: 24h, default: 0}}\n"
        "rules:\n"
        "  - {when: \"score >= 0.9\", decision: block}\n"
        "  - {decision: allow}\n"
        "limits: {queue: 65536, max_event_bytes: 65536, max_keys: 10000000, key_ttl: 30d}\n";
    static const char *const ignore[] = {"type", NULL};
    struct rts_errbuf eb;
    struct rts_conf *c = parse(text, &eb);
    const struct rts_conf_node *root, *lookup, *age;
    struct src_conf s;
    int64_t us = 0;

    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "  %s\n", eb.msg);
        return;
    }
    root = rts_conf_root(c);
    CHECK_INT(root->len, 7);
    memset(&s, 0, sizeof(s));
    CHECK_INT(rts_opt_apply(src_opts, rts_conf_get(root, "source"), "source", ignore, &s, &eb),
              RTS_ERR_OK);
    CHECK_STR(s.topic, "transactions");
    CHECK_STR(s.group, "fraud-scorer");
    lookup = rts_conf_get(rts_conf_get(root, "features")->items[1], "lookup");
    CHECK_INT(lookup->kind, RTS_CONF_MAP);
    CHECK_STR(rts_conf_get(lookup, "key")->str, "card:{card_id}");
    age = rts_conf_get(lookup, "max_age");
    CHECK_INT(age->line, 16);
    CHECK_INT(age->column, 48);
    CHECK_INT(rts_conf_duration_us(age, "features[1].lookup.max_age", &us, &eb), RTS_ERR_OK);
    CHECK_INT(us, 86400000000LL);
    CHECK_INT(
        rts_conf_get(rts_conf_get(rts_conf_get(rts_conf_get(root, "event"), "fields"), "country"),
                     "default")
            ->quoted,
        1);
    CHECK_INT(rts_conf_get(root, "rules")->len, 2);
    rts_conf_free(c);
}

int main(void)
{
    RUN(block_style);
    RUN(flow_style);
    RUN(quoting_and_null);
    RUN(empty_documents);
    RUN(default_name);
    RUN(duplicate_keys);
    RUN(anchors_aliases_tags);
    RUN(complex_keys);
    RUN(several_documents);
    RUN(syntax_errors);
    RUN(nesting_limit);
    RUN(duration);
    RUN(size);
    RUN(integer);
    RUN(number);
    RUN(boolean);
    RUN(string);
    RUN(messages);
    RUN(opt_apply_values_and_defaults);
    RUN(opt_apply_null_map);
    RUN(opt_apply_errors);
    RUN(opt_apply_paths_and_tables);
    RUN(opt_doc);
    RUN(design_pipeline);
    return TEST_EXIT();
}
