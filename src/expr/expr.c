/*
 * expr.c - the compiler driver: code generation from the checked tree and
 * packing of the result into one immutable block.
 *
 * Code is a stack machine program in postfix order. The generator tracks the
 * stack depth of every instruction it emits and refuses a program that would
 * need more than RTS_EXPR_MAX_DEPTH values, which is what lets the VM use a
 * fixed array on the C stack without checks. Binary operators whose right
 * (or, when the operator commutes or flips, left) operand is a constant use
 * a K form that reads the constant directly: one instruction fewer per
 * constant, which is most of them in feature and rule expressions. min and
 * max fold their arguments pairwise, so a long argument list needs two stack
 * slots, not one per argument.
 *
 * The compiled block holds, after the header: constants, code, slots, the
 * decoded string literals (string constants point here) and the source.
 * Nothing in it changes after rts_expr_compile returns.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr_int.h"

/* stack effect of each opcode; for jumps, of the path that falls through */
static const int8_t stack_effect[OP__COUNT] = {
    [OP_RET] = -1, [OP_CONST] = 1, [OP_LOAD] = 1, [OP_JMP] = 0,  [OP_JF] = -1,  [OP_ANDJ] = -1,
    [OP_ORJ] = -1, [OP_BOOL] = 0,  [OP_NEG] = 0,  [OP_NOT] = 0,  [OP_ADD] = -1, [OP_SUB] = -1,
    [OP_MUL] = -1, [OP_DIV] = -1,  [OP_MOD] = -1, [OP_EQ] = -1,  [OP_NE] = -1,  [OP_LT] = -1,
    [OP_LE] = -1,  [OP_GT] = -1,   [OP_GE] = -1,  [OP_MIN] = -1, [OP_MAX] = -1, [OP_SEQ] = -1,
    [OP_SNE] = -1, [OP_SLT] = -1,  [OP_SLE] = -1, [OP_SGT] = -1, [OP_SGE] = -1, [OP_CLAMP] = -2,
};

/* For a binary numeric op with a constant left operand: the op that takes
 * the operands the other way round, or 0 if there is none. */
static const uint8_t swapped[OP__COUNT] = {
    [OP_ADD] = OP_ADD, [OP_MUL] = OP_MUL, [OP_EQ] = OP_EQ, [OP_NE] = OP_NE,   [OP_LT] = OP_GT,
    [OP_LE] = OP_GE,   [OP_GT] = OP_LT,   [OP_GE] = OP_LE, [OP_MIN] = OP_MIN, [OP_MAX] = OP_MAX,
};

struct gen {
    struct rts_expr_prog *p;
    const struct rts_expr_node *nodes;
    struct rts_errbuf *eb;
};

int rts_expr_fail(struct rts_errbuf *eb, enum rts_err code, size_t pos, const char *fmt, ...)
{
    char msg[sizeof(eb->msg)];
    va_list ap;

    if (!eb) {
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rts_errf(eb, code, 0, (int)pos + 1, "%s", msg);
    eb->pos = pos;
    return -1;
}

/* Make room for @need elements in *@arr; returns 0, or -1 with *@arr unchanged. */
static int grow(void *arr, uint32_t *cap, uint32_t need, size_t elem)
{
    void *p, *old;
    uint32_t ncap;

    if (need <= *cap) {
        return 0;
    }
    ncap = *cap ? *cap * 2 : 16;
    while (ncap < need) {
        ncap *= 2;
    }
    memcpy(&old, arr, sizeof(old));
    p = realloc(old, (size_t)ncap * elem);
    if (!p) {
        return -1;
    }
    memcpy(arr, &p, sizeof(p));
    *cap = ncap;
    return 0;
}

static int emit(struct gen *g, int op, uint32_t arg, uint32_t aux, uint32_t pos)
{
    struct rts_expr_prog *p = g->p;
    struct rts_expr_insn *in;

    if (grow(&p->code, &p->capcode, p->ncode + 1, sizeof(*p->code)) < 0) {
        return rts_expr_fail(g->eb, RTS_ERR_NOMEM, pos, "out of memory");
    }
    in = &p->code[p->ncode];
    in->op = (uint8_t)op;
    in->pad = 0;
    in->aux = (uint16_t)aux;
    in->arg = arg;
    p->depth += stack_effect[op];
    if (p->depth > p->maxdepth) {
        p->maxdepth = p->depth;
        if (p->depth > RTS_EXPR_MAX_DEPTH) {
            return rts_expr_fail(g->eb, RTS_ERR_LIMIT, pos,
                                 "expression needs more than %d stack values; "
                                 "simplify or split it",
                                 RTS_EXPR_MAX_DEPTH);
        }
    }
    return (int)p->ncode++;
}

/* Index of a new constant holding node @n's value, or -1. */
static int add_const(struct gen *g, int n)
{
    struct rts_expr_prog *p = g->p;
    const struct rts_expr_node *x = &g->nodes[n];
    uint32_t capk = p->capk; /* k and ktype share one capacity: ktype grows against a copy */

    if (grow(&p->ktype, &capk, p->nk + 1, 1) < 0 ||
        grow(&p->k, &p->capk, p->nk + 1, sizeof(*p->k)) < 0) {
        return rts_expr_fail(g->eb, RTS_ERR_NOMEM, x->pos, "out of memory");
    }
    p->k[p->nk] = x->val;
    p->ktype[p->nk] = x->type;
    return (int)p->nk++;
}

static int add_slot(struct gen *g, int slot, uint32_t pos)
{
    struct rts_expr_prog *p = g->p;
    uint32_t i;

    for (i = 0; i < p->nslots; i++) {
        if (p->slots[i] == slot) {
            return 0;
        }
    }
    if (grow(&p->slots, &p->capslots, p->nslots + 1, sizeof(*p->slots)) < 0) {
        return rts_expr_fail(g->eb, RTS_ERR_NOMEM, pos, "out of memory");
    }
    p->slots[p->nslots++] = slot;
    return 0;
}

static int gen_node(struct gen *g, int n);

/* @op applied to the value on the stack and the constant node @k */
static int emit_k(struct gen *g, int op, int k, uint32_t pos)
{
    int idx = add_const(g, k);

    return idx < 0 ? -1 : emit(g, op + RTS_EXPR_OP_K, (uint32_t)idx, 0, pos);
}

static int gen_op(struct gen *g, int n)
{
    const struct rts_expr_node *x = &g->nodes[n];
    int a = x->kid, b = a >= 0 ? g->nodes[a].next : -1, k;

    if (x->op >= OP_ADD && x->op <= OP_MAX && b >= 0) {
        if (g->nodes[b].kind == N_CONST) {
            return gen_node(g, a) < 0 ? -1 : emit_k(g, x->op, b, x->pos);
        }
        if (g->nodes[a].kind == N_CONST && swapped[x->op]) {
            return gen_node(g, b) < 0 ? -1 : emit_k(g, swapped[x->op], a, x->pos);
        }
    }
    for (k = a; k >= 0; k = g->nodes[k].next) {
        if (gen_node(g, k) < 0) {
            return -1;
        }
    }
    return emit(g, x->op, 0, 0, x->pos);
}

/* min/max: start from a non-constant argument, fold the rest in pairwise */
static int gen_minmax(struct gen *g, int n)
{
    const struct rts_expr_node *x = &g->nodes[n];
    int base = x->kid, k;

    for (k = x->kid; k >= 0; k = g->nodes[k].next) {
        if (g->nodes[k].kind != N_CONST) {
            base = k;
            break;
        }
    }
    if (gen_node(g, base) < 0) {
        return -1;
    }
    for (k = x->kid; k >= 0; k = g->nodes[k].next) {
        if (k == base) {
            continue;
        }
        if (g->nodes[k].kind == N_CONST) {
            if (emit_k(g, x->op, k, x->pos) < 0) {
                return -1;
            }
        } else if (gen_node(g, k) < 0 || emit(g, x->op, 0, 0, x->pos) < 0) {
            return -1;
        }
    }
    return 0;
}

static int gen_logic(struct gen *g, int n)
{
    const struct rts_expr_node *x = &g->nodes[n];
    int a = x->kid, b = g->nodes[a].next, jump;

    if (gen_node(g, a) < 0) {
        return -1;
    }
    jump = emit(g, x->kind == N_AND ? OP_ANDJ : OP_ORJ, 0, 0, x->pos);
    if (jump < 0 || gen_node(g, b) < 0) {
        return -1;
    }
    if (!(g->nodes[b].flags & RTS_EXPR_F01) && emit(g, OP_BOOL, 0, 0, x->pos) < 0) {
        return -1;
    }
    g->p->code[jump].arg = g->p->ncode;
    return 0;
}

static int gen_cond(struct gen *g, int n)
{
    const struct rts_expr_node *x = &g->nodes[n];
    int c = x->kid, a = g->nodes[c].next, b = g->nodes[a].next, to_else, to_end;

    if (gen_node(g, c) < 0 || (to_else = emit(g, OP_JF, 0, 0, x->pos)) < 0 || gen_node(g, a) < 0 ||
        (to_end = emit(g, OP_JMP, 0, 0, x->pos)) < 0) {
        return -1;
    }
    g->p->code[to_else].arg = g->p->ncode;
    g->p->depth--; /* the else branch starts where the then branch did */
    if (gen_node(g, b) < 0) {
        return -1;
    }
    g->p->code[to_end].arg = g->p->ncode;
    return 0;
}

static int gen_in(struct gen *g, int n)
{
    const struct rts_expr_node *x = &g->nodes[n];
    uint32_t first, count = 0;
    int k;

    if (gen_node(g, x->kid) < 0) {
        return -1;
    }
    first = g->p->nk; /* after the operand's own constants */
    for (k = g->nodes[x->kid].next; k >= 0; k = g->nodes[k].next) {
        if (add_const(g, k) < 0) {
            return -1;
        }
        count++;
    }
    return emit(g, x->op, first, count, x->pos);
}

static int gen_node(struct gen *g, int n)
{
    const struct rts_expr_node *x = &g->nodes[n];
    int k;

    switch (x->kind) {
    case N_CONST:
        k = add_const(g, n);
        return k < 0 ? -1 : emit(g, OP_CONST, (uint32_t)k, 0, x->pos);
    case N_LOAD:
        return add_slot(g, (int)x->slot, x->pos) < 0 ? -1 : emit(g, OP_LOAD, x->slot, 0, x->pos);
    case N_OP:
        return gen_op(g, n);
    case N_MINMAX:
        return gen_minmax(g, n);
    case N_AND:
    case N_OR:
        return gen_logic(g, n);
    case N_COND:
        return gen_cond(g, n);
    case N_IN:
        return gen_in(g, n);
    default:
        return rts_expr_fail(g->eb, RTS_ERR_INVAL, x->pos, "internal error: node kind %d", x->kind);
    }
}

int rts_expr_gen(struct rts_expr_prog *p, const struct rts_expr_node *nodes, int root,
                 struct rts_errbuf *eb)
{
    struct gen g = {p, nodes, eb};

    if (gen_node(&g, root) < 0 || emit(&g, OP_RET, 0, 0, nodes[root].pos) < 0) {
        return -1;
    }
    return 0;
}

void rts_expr_prog_reset(struct rts_expr_prog *p)
{
    p->ncode = 0;
    p->nk = 0;
    p->nslots = 0;
    p->depth = 0;
    p->maxdepth = 0;
}

void rts_expr_prog_fini(struct rts_expr_prog *p)
{
    free(p->code);
    free(p->k);
    free(p->ktype);
    free(p->slots);
    memset(p, 0, sizeof(*p));
}

/* One block: header, constants, code, slots, string literals, source. */
static struct rts_expr *pack(const struct rts_expr_prog *p, const struct rts_expr_ast *ast,
                             const char *src, size_t len, struct rts_errbuf *eb)
{
    size_t kbytes = p->nk * sizeof(union rts_val), cbytes = p->ncode * sizeof(*p->code);
    size_t sbytes = p->nslots * sizeof(int);
    struct rts_expr *e = malloc(sizeof(*e) + kbytes + cbytes + sbytes + ast->slen + len + 1);
    char *at, *strings;
    uint32_t i;

    if (!e) {
        rts_expr_fail(eb, RTS_ERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    at = (char *)e->data;
    e->type = (enum rts_type)ast->nodes[ast->root].type;
    e->ncode = p->ncode;
    e->nk = p->nk;
    e->nslots = p->nslots;
    e->k = (const union rts_val *)(void *)at;
    if (kbytes) {
        memcpy(at, p->k, kbytes);
    }
    at += kbytes;
    e->code = (const struct rts_expr_insn *)(void *)at;
    memcpy(at, p->code, cbytes);
    at += cbytes;
    e->slots = (const int *)(void *)at;
    if (sbytes) {
        memcpy(at, p->slots, sbytes);
    }
    at += sbytes;
    strings = at;
    if (ast->slen) {
        memcpy(strings, ast->sbuf, ast->slen);
    }
    at += ast->slen;
    memcpy(at, src, len);
    at[len] = '\0';
    e->src = at;
    for (i = 0; i < p->nk; i++) {
        union rts_val *k = (union rts_val *)(void *)e->data + i;

        if (p->ktype[i] == RTS_T_STR && k->str.p) {
            k->str.p = strings + (k->str.p - ast->sbuf);
        }
    }
    return e;
}

struct rts_expr *rts_expr_compile(const char *src, const struct rts_expr_scope *scope,
                                  struct rts_errbuf *eb)
{
    struct rts_expr_ast ast;
    struct rts_expr_prog prog;
    struct rts_expr *e = NULL;
    size_t len;

    memset(&ast, 0, sizeof(ast));
    memset(&prog, 0, sizeof(prog));
    if (!src) {
        rts_expr_fail(eb, RTS_ERR_INVAL, 0, "no expression");
        return NULL;
    }
    len = strnlen(src, RTS_EXPR_MAX_LEN + 1);
    if (len > RTS_EXPR_MAX_LEN) {
        rts_expr_fail(eb, RTS_ERR_LIMIT, RTS_EXPR_MAX_LEN, "expression longer than %d bytes",
                      RTS_EXPR_MAX_LEN);
        return NULL;
    }
    if (rts_expr_parse(&ast, src, len, scope, eb) < 0 ||
        rts_expr_gen(&prog, ast.nodes, ast.root, eb) < 0) {
        goto out;
    }
    e = pack(&prog, &ast, src, len, eb);
out:
    rts_expr_prog_fini(&prog);
    rts_expr_ast_fini(&ast);
    return e;
}

enum rts_type rts_expr_type(const struct rts_expr *e)
{
    return e->type;
}

size_t rts_expr_slots(const struct rts_expr *e, const int **slots)
{
    *slots = e->slots;
    return e->nslots;
}

const char *rts_expr_source(const struct rts_expr *e)
{
    return e->src;
}

void rts_expr_free(struct rts_expr *e)
{
    free(e);
}
