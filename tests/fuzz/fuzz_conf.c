/*
 * fuzz_conf.c - libFuzzer target: YAML parsing, every scalar parser and
 * rts_opt_apply over arbitrary bytes. Built by the fuzz preset (make fuzz).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "conf/conf.h"
#include "core/buf.h"
struct t { const char *s; int64_t i, d; uint64_t z; double f; int b; const struct rts_conf_node *n; };
static const struct rts_opt opts[] = {
    RTS_OPT_STR("s", "x", offsetof(struct t, s), "s"),
    RTS_OPT_INT("i", "1", offsetof(struct t, i), "i"),
    RTS_OPT_DURATION("d", "1s", offsetof(struct t, d), "d"),
    RTS_OPT_SIZE("z", "1k", offsetof(struct t, z), "z"),
    RTS_OPT_DOUBLE("f", "1.5", offsetof(struct t, f), "f"),
    RTS_OPT_BOOL("b", "on", offsetof(struct t, b), "b"),
    RTS_OPT_NODE("n", offsetof(struct t, n), "n"),
    RTS_OPT_END};
static void walk(const struct rts_conf_node *n, int depth)
{
    struct rts_errbuf eb; struct t t; size_t i;
    memset(&eb, 0, sizeof eb); memset(&t, 0, sizeof t);
    if (n->kind == RTS_CONF_SCALAR) {
        rts_conf_duration_us(n, "p", &t.d, &eb); rts_conf_size(n, "p", &t.z, &eb);
        rts_conf_int(n, "p", &t.i, &eb); rts_conf_double(n, "p", &t.f, &eb);
        rts_conf_bool(n, "p", &t.b, &eb); rts_conf_string(n, "p", &t.s, &eb);
        rts_conf_is_null(n);
        return;
    }
    if (n->kind == RTS_CONF_MAP) {
        static const char *const ig[] = {"n", NULL};
        rts_opt_apply(opts, n, "p", ig, &t, &eb);
        for (i = 0; i < n->len; i++) { rts_conf_get(n, n->keys[i]); }
    }
    for (i = 0; i < n->len; i++) { walk(n->items[i], depth + 1); }
}
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rts_errbuf eb;
    struct rts_conf *c;
    memset(&eb, 0, sizeof eb);
    c = rts_conf_parse("f.yaml", (const char *)data, size, &eb);
    if (c) {
        if (rts_conf_root(c)) { walk(rts_conf_root(c), 0); }
        rts_conf_free(c);
    } else if (!memchr(eb.msg, '\0', sizeof eb.msg)) {
        __builtin_trap();
    }
    return 0;
}
