/*
 * parse.c - recursive descent parser, type checker and constant folder.
 *
 * One function per precedence level (cond, or, and, not, comparison, sum,
 * product, unary, primary). Each node is type-checked the moment it is made,
 * from its already-checked children, and folded right away when all its
 * children are constants; so the tree is built, checked and folded in one
 * bottom-up pass without a second walk. Folding runs the node's bytecode on
 * the VM: the compile-time value is by construction the run-time value.
 *
 * Nodes live in one growable array and refer to each other by index; a node
 * lists its children through kid/next. Recursion is bounded twice: source
 * nesting (parentheses, unary operators, ?: and call arguments) by
 * RTS_EXPR_MAX_DEPTH here, tree height by RTS_EXPR_MAX_HEIGHT for the code
 * generator. The first error wins; every function returns -1 after it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr_int.h"

struct parser {
    struct rts_expr_lexer lx;
    struct rts_expr_tok cur, nxt;
    struct rts_expr_ast *ast;
    const struct rts_expr_scope *scope;
    struct rts_errbuf *eb;
    struct rts_expr_prog fold; /* scratch program for constant folding */
    int depth;
};

enum arg_kind { ARG_NUM, ARG_ANY };

static const struct {
    const char *name;
    uint8_t op;
    uint8_t min_args, max_args; /* max_args 0: no upper bound */
    uint8_t arg;                /* enum arg_kind */
    uint8_t type;               /* result */
} functions[] = {
    {"log1p", OP_LOG1P, 1, 1, ARG_NUM, RTS_T_NUM},
    {"abs", OP_ABS, 1, 1, ARG_NUM, RTS_T_NUM},
    {"sqrt", OP_SQRT, 1, 1, ARG_NUM, RTS_T_NUM},
    {"exp", OP_EXP, 1, 1, ARG_NUM, RTS_T_NUM},
    {"min", OP_MIN, 2, 0, ARG_NUM, RTS_T_NUM},
    {"max", OP_MAX, 2, 0, ARG_NUM, RTS_T_NUM},
    {"clamp", OP_CLAMP, 3, 3, ARG_NUM, RTS_T_NUM},
    {"hour_of_day", OP_HOUR, 1, 1, ARG_NUM, RTS_T_NUM},
    {"day_of_week", OP_DOW, 1, 1, ARG_NUM, RTS_T_NUM},
    {"is_missing", OP_MISS, 1, 1, ARG_ANY, RTS_T_BOOL},
};

static int parse_cond(struct parser *ps);

static int is_numlike(int type)
{
    return type == RTS_T_NUM || type == RTS_T_BOOL;
}

static struct rts_expr_node *nd(struct parser *ps, int i)
{
    return &ps->ast->nodes[i];
}

/* ---- tokens ---- */

static void advance(struct parser *ps)
{
    ps->cur = ps->nxt;
    if (ps->cur.kind != TK_END) {
        rts_expr_lex_next(&ps->lx, &ps->nxt);
    }
}

/* "'foo'", "end of expression": how a message names the token @t */
static const char *describe(const struct parser *ps, const struct rts_expr_tok *t, char *buf,
                            size_t n)
{
    if (t->kind == TK_END) {
        return "end of expression";
    }
    if (t->len > 32) {
        snprintf(buf, n, "'%.29s...'", ps->lx.src + t->pos);
    } else {
        snprintf(buf, n, "'%.*s'", (int)t->len, ps->lx.src + t->pos);
    }
    return buf;
}

/* A lexical error in the current token, or "expected @what, got ..." */
static int unexpected(struct parser *ps, const char *what)
{
    char buf[48];

    if (ps->cur.kind == TK_ERROR) {
        return rts_expr_fail(ps->eb, RTS_ERR_PARSE, ps->cur.errpos, "%s", ps->cur.msg);
    }
    return rts_expr_fail(ps->eb, RTS_ERR_PARSE, ps->cur.pos, "expected %s, got %s", what,
                         describe(ps, &ps->cur, buf, sizeof(buf)));
}

static int expect(struct parser *ps, enum rts_expr_tk kind, const char *what)
{
    if (ps->cur.kind != kind) {
        return unexpected(ps, what);
    }
    advance(ps);
    return 0;
}

static int nest_in(struct parser *ps, uint32_t pos)
{
    if (++ps->depth > RTS_EXPR_MAX_DEPTH) {
        return rts_expr_fail(ps->eb, RTS_ERR_LIMIT, pos,
                             "expression nested too deeply (more than %d levels)",
                             RTS_EXPR_MAX_DEPTH);
    }
    return 0;
}

/* ---- nodes ---- */

static int node_new(struct parser *ps, int kind, int op, int type, uint32_t pos)
{
    struct rts_expr_ast *ast = ps->ast;
    struct rts_expr_node *n;

    if (ast->n == ast->cap) {
        int cap = ast->cap ? ast->cap * 2 : 32;
        struct rts_expr_node *nodes = realloc(ast->nodes, (size_t)cap * sizeof(*nodes));

        if (!nodes) {
            return rts_expr_fail(ps->eb, RTS_ERR_NOMEM, pos, "out of memory");
        }
        ast->nodes = nodes;
        ast->cap = cap;
    }
    n = &ast->nodes[ast->n];
    memset(n, 0, sizeof(*n));
    n->kind = (uint8_t)kind;
    n->op = (uint8_t)op;
    n->type = (uint8_t)type;
    n->pos = pos;
    n->height = 1;
    n->kid = -1;
    n->next = -1;
    return ast->n++;
}

static int node_const(struct parser *ps, int type, union rts_val v, uint32_t pos)
{
    int n = node_new(ps, N_CONST, 0, type, pos);

    if (n >= 0) {
        nd(ps, n)->val = v;
        if (type == RTS_T_BOOL) {
            nd(ps, n)->flags = RTS_EXPR_F01;
        }
    }
    return n;
}

/* Replace node @n by a copy of node @src (a child of @n), keeping @n's type. */
static void node_become(struct parser *ps, int n, int src)
{
    uint8_t type = nd(ps, n)->type;
    int next = nd(ps, n)->next;

    *nd(ps, n) = *nd(ps, src);
    nd(ps, n)->type = type;
    nd(ps, n)->next = next;
}

static void node_set_const(struct parser *ps, int n, union rts_val v)
{
    struct rts_expr_node *x = nd(ps, n);

    x->kind = N_CONST;
    x->kid = -1;
    x->height = 1;
    x->val = v;
    x->flags = (x->type == RTS_T_BOOL && !isnan(v.num)) ? RTS_EXPR_F01 : 0;
}

static int all_kids_const(struct parser *ps, int n)
{
    int k;

    for (k = nd(ps, n)->kid; k >= 0; k = nd(ps, k)->next) {
        if (nd(ps, k)->kind != N_CONST) {
            return 0;
        }
    }
    return 1;
}

/* Fold what is decided at compile time: a node whose children are all
 * constants; ?: with a constant condition; and/or with an operand that
 * decides the result. */
static int fold(struct parser *ps, int n)
{
    struct rts_expr_node *x = nd(ps, n);
    union rts_val v;

    if (x->kind == N_COND) {
        int c = x->kid, a = nd(ps, c)->next, b = nd(ps, a)->next;

        if (nd(ps, c)->kind == N_CONST) {
            node_become(ps, n, rts_expr_truthy(RTS_T_NUM, nd(ps, c)->val) ? a : b);
        }
        return 0;
    }
    if (x->kind == N_AND || x->kind == N_OR) {
        int k;

        for (k = x->kid; k >= 0; k = nd(ps, k)->next) {
            const struct rts_expr_node *y = nd(ps, k);

            if (y->kind == N_CONST && rts_expr_truthy(RTS_T_NUM, y->val) == (x->kind == N_OR)) {
                v.num = x->kind == N_OR;
                node_set_const(ps, n, v);
                return 0;
            }
        }
    }
    if (!all_kids_const(ps, n)) {
        return 0;
    }
    rts_expr_prog_reset(&ps->fold);
    if (rts_expr_gen(&ps->fold, ps->ast->nodes, n, ps->eb) < 0) {
        return -1;
    }
    v = rts_expr_run(ps->fold.code, ps->fold.k, NULL);
    if (nd(ps, n)->type != RTS_T_STR && isinf(v.num)) {
        v.num = NAN;
    }
    node_set_const(ps, n, v);
    return 0;
}

/* Link @nkids children to @n, compute its height, fold it. Returns @n or -1. */
static int node_finish(struct parser *ps, int n, const int *kids, int nkids)
{
    uint32_t h = 0;
    int i;

    for (i = 0; i < nkids; i++) {
        if (nd(ps, kids[i])->height > h) {
            h = nd(ps, kids[i])->height;
        }
        if (i == 0) {
            nd(ps, n)->kid = kids[0];
        } else {
            nd(ps, kids[i - 1])->next = kids[i];
        }
    }
    nd(ps, n)->height = h + 1;
    if (h + 1 > RTS_EXPR_MAX_HEIGHT) {
        return rts_expr_fail(ps->eb, RTS_ERR_LIMIT, nd(ps, n)->pos,
                             "expression too complex (more than %d operators in a chain)",
                             RTS_EXPR_MAX_HEIGHT);
    }
    return fold(ps, n) < 0 ? -1 : n;
}

/* A node over children already linked through kid/next (calls, lists). */
static int node_finish_linked(struct parser *ps, int n, int first)
{
    uint32_t h = 0;
    int k;

    nd(ps, n)->kid = first;
    for (k = first; k >= 0; k = nd(ps, k)->next) {
        if (nd(ps, k)->height > h) {
            h = nd(ps, k)->height;
        }
    }
    nd(ps, n)->height = h + 1;
    if (h + 1 > RTS_EXPR_MAX_HEIGHT) {
        return rts_expr_fail(ps->eb, RTS_ERR_LIMIT, nd(ps, n)->pos,
                             "expression too complex (more than %d operators in a chain)",
                             RTS_EXPR_MAX_HEIGHT);
    }
    return fold(ps, n) < 0 ? -1 : n;
}

/* ---- typed constructors ---- */

static const char *op_text(enum rts_expr_tk kind)
{
    switch (kind) {
    case TK_PLUS:
        return "+";
    case TK_MINUS:
        return "-";
    case TK_STAR:
        return "*";
    case TK_SLASH:
        return "/";
    case TK_PERCENT:
        return "%";
    case TK_EQ:
        return "==";
    case TK_NE:
        return "!=";
    case TK_LT:
        return "<";
    case TK_LE:
        return "<=";
    case TK_GT:
        return ">";
    case TK_GE:
        return ">=";
    case TK_AND:
        return "and";
    case TK_OR:
        return "or";
    case TK_NOT:
        return "not";
    default:
        return "?";
    }
}

static int mk_arith(struct parser *ps, enum rts_expr_tk tk, uint32_t pos, int a, int b)
{
    static const uint8_t ops[] = {
        [TK_PLUS] = OP_ADD,  [TK_MINUS] = OP_SUB,   [TK_STAR] = OP_MUL,
        [TK_SLASH] = OP_DIV, [TK_PERCENT] = OP_MOD,
    };
    int kids[2] = {a, b}, n, i;

    for (i = 0; i < 2; i++) {
        if (!is_numlike(nd(ps, kids[i])->type)) {
            return rts_expr_fail(ps->eb, RTS_ERR_INVAL, pos, "operator '%s' needs numbers, got %s",
                                 op_text(tk), rts_type_name(nd(ps, kids[i])->type));
        }
    }
    n = node_new(ps, N_OP, ops[tk], RTS_T_NUM, pos);
    return n < 0 ? -1 : node_finish(ps, n, kids, 2);
}

static int mk_compare(struct parser *ps, enum rts_expr_tk tk, uint32_t pos, int a, int b)
{
    static const uint8_t num_ops[] = {
        [TK_EQ] = OP_EQ, [TK_NE] = OP_NE, [TK_LT] = OP_LT,
        [TK_LE] = OP_LE, [TK_GT] = OP_GT, [TK_GE] = OP_GE,
    };
    static const uint8_t str_ops[] = {
        [TK_EQ] = OP_SEQ, [TK_NE] = OP_SNE, [TK_LT] = OP_SLT,
        [TK_LE] = OP_SLE, [TK_GT] = OP_SGT, [TK_GE] = OP_SGE,
    };
    int ta = nd(ps, a)->type, tb = nd(ps, b)->type, kids[2] = {a, b}, n, op;

    if (ta == RTS_T_STR && tb == RTS_T_STR) {
        op = str_ops[tk];
    } else if (is_numlike(ta) && is_numlike(tb)) {
        op = num_ops[tk];
    } else {
        return rts_expr_fail(ps->eb, RTS_ERR_INVAL, pos, "operator '%s' cannot compare %s with %s",
                             op_text(tk), rts_type_name(ta), rts_type_name(tb));
    }
    n = node_new(ps, N_OP, op, RTS_T_BOOL, pos);
    if (n < 0) {
        return -1;
    }
    nd(ps, n)->flags = RTS_EXPR_F01;
    return node_finish(ps, n, kids, 2);
}

static int mk_logic(struct parser *ps, enum rts_expr_tk tk, uint32_t pos, const int *kids,
                    int nkids)
{
    static const uint8_t kinds[] = {[TK_AND] = N_AND, [TK_OR] = N_OR, [TK_NOT] = N_OP};
    int n, i;

    for (i = 0; i < nkids; i++) {
        if (!is_numlike(nd(ps, kids[i])->type)) {
            return rts_expr_fail(ps->eb, RTS_ERR_INVAL, pos,
                                 "operator '%s' needs bool or number, got %s", op_text(tk),
                                 rts_type_name(nd(ps, kids[i])->type));
        }
    }
    n = node_new(ps, kinds[tk], tk == TK_NOT ? OP_NOT : 0, RTS_T_BOOL, pos);
    if (n < 0) {
        return -1;
    }
    nd(ps, n)->flags = RTS_EXPR_F01;
    return node_finish(ps, n, kids, nkids);
}

/* ---- grammar ---- */

/* '[' [item {',' item}] ']' after 'in' or 'not in'; items are constants of
 * the operand's kind (strings, or numbers and bools). */
static int parse_list(struct parser *ps, int x, int negate, uint32_t pos)
{
    int is_str = nd(ps, x)->type == RTS_T_STR;
    int op = is_str ? (negate ? OP_SNIN : OP_SIN) : (negate ? OP_NIN : OP_IN);
    int first = -1, last = -1, count = 0, n;

    if (expect(ps, TK_LBRACK, "'[' after 'in'") < 0) {
        return -1;
    }
    if (ps->cur.kind != TK_RBRACK) {
        for (;;) {
            uint32_t ipos = ps->cur.pos;
            int item = parse_cond(ps);

            if (item < 0) {
                return -1;
            }
            if (nd(ps, item)->kind != N_CONST) {
                return rts_expr_fail(ps->eb, RTS_ERR_INVAL, ipos,
                                     "items of an 'in' list must be constants");
            }
            if ((nd(ps, item)->type == RTS_T_STR) != is_str) {
                return rts_expr_fail(
                    ps->eb, RTS_ERR_INVAL, ipos, "'in' list item is a %s but the left side is a %s",
                    rts_type_name(nd(ps, item)->type), rts_type_name(nd(ps, x)->type));
            }
            if (last >= 0) {
                nd(ps, last)->next = item;
            } else {
                first = item;
            }
            last = item;
            count++;
            if (ps->cur.kind != TK_COMMA) {
                break;
            }
            advance(ps);
        }
    }
    if (expect(ps, TK_RBRACK, "',' or ']' in the list") < 0) {
        return -1;
    }
    if (count > UINT16_MAX) {
        return rts_expr_fail(ps->eb, RTS_ERR_LIMIT, pos, "'in' list has too many items");
    }
    n = node_new(ps, N_IN, op, RTS_T_BOOL, pos);
    if (n < 0) {
        return -1;
    }
    nd(ps, n)->flags = RTS_EXPR_F01;
    nd(ps, x)->next = first;
    return node_finish_linked(ps, n, x);
}

/* name '(' args ')' with the name already consumed */
static int parse_call(struct parser *ps, const struct rts_expr_tok *name)
{
    const char *text = ps->lx.src + name->pos;
    int fn = -1, first = -1, last = -1, nargs = 0, n, op;
    size_t i;

    for (i = 0; i < sizeof(functions) / sizeof(functions[0]); i++) {
        if (strlen(functions[i].name) == name->len &&
            memcmp(functions[i].name, text, name->len) == 0) {
            fn = (int)i;
            break;
        }
    }
    if (fn < 0) {
        return rts_expr_fail(ps->eb, RTS_ERR_INVAL, name->pos, "unknown function '%.*s'",
                             (int)(name->len > 64 ? 64 : name->len), text);
    }
    advance(ps); /* '(' */
    if (ps->cur.kind != TK_RPAREN) {
        for (;;) {
            uint32_t apos = ps->cur.pos;
            int arg = parse_cond(ps);

            if (arg < 0) {
                return -1;
            }
            if (functions[fn].arg == ARG_NUM && !is_numlike(nd(ps, arg)->type)) {
                return rts_expr_fail(ps->eb, RTS_ERR_INVAL, apos,
                                     "function '%s' needs numbers, got %s", functions[fn].name,
                                     rts_type_name(nd(ps, arg)->type));
            }
            if (last >= 0) {
                nd(ps, last)->next = arg;
            } else {
                first = arg;
            }
            last = arg;
            nargs++;
            if (ps->cur.kind != TK_COMMA) {
                break;
            }
            advance(ps);
        }
    }
    if (expect(ps, TK_RPAREN, "',' or ')'") < 0) {
        return -1;
    }
    if (nargs < functions[fn].min_args ||
        (functions[fn].max_args && nargs > functions[fn].max_args)) {
        int want = functions[fn].min_args;

        if (!functions[fn].max_args) {
            return rts_expr_fail(ps->eb, RTS_ERR_INVAL, name->pos,
                                 "function '%s' takes %d or more arguments, got %d",
                                 functions[fn].name, want, nargs);
        }
        return rts_expr_fail(ps->eb, RTS_ERR_INVAL, name->pos,
                             "function '%s' takes %d argument%s, got %d", functions[fn].name, want,
                             want == 1 ? "" : "s", nargs);
    }
    op = functions[fn].op;
    if (op == OP_MISS && nd(ps, first)->type == RTS_T_STR) {
        op = OP_SMISS;
    }
    n = node_new(ps, op == OP_MIN || op == OP_MAX ? N_MINMAX : N_OP, op, functions[fn].type,
                 name->pos);
    if (n < 0) {
        return -1;
    }
    if (op == OP_MISS || op == OP_SMISS) {
        nd(ps, n)->flags = RTS_EXPR_F01;
    }
    return node_finish_linked(ps, n, first);
}

static int parse_name(struct parser *ps)
{
    struct rts_expr_tok name = ps->cur;
    const char *text = ps->lx.src + name.pos;
    int shown = (int)(name.len > 64 ? 64 : name.len);
    enum rts_type type = RTS_T_NONE;
    int slot = -1, n;

    advance(ps);
    if (ps->cur.kind == TK_LPAREN) {
        return parse_call(ps, &name);
    }
    if (ps->scope && ps->scope->resolve) {
        slot = ps->scope->resolve(ps->scope->ctx, text, name.len, &type);
    }
    if (slot < 0) {
        return rts_expr_fail(ps->eb, RTS_ERR_INVAL, name.pos, "unknown name '%.*s'", shown, text);
    }
    if (type != RTS_T_NUM && type != RTS_T_BOOL && type != RTS_T_STR) {
        return rts_expr_fail(ps->eb, RTS_ERR_INVAL, name.pos, "name '%.*s' has no usable type",
                             shown, text);
    }
    n = node_new(ps, N_LOAD, OP_LOAD, type, name.pos);
    if (n >= 0) {
        nd(ps, n)->slot = (uint32_t)slot;
    }
    return n;
}

static int parse_primary(struct parser *ps)
{
    struct rts_expr_tok t = ps->cur;
    union rts_val v;
    int n;

    switch (t.kind) {
    case TK_NUM:
        advance(ps);
        v.num = t.num;
        return node_const(ps, RTS_T_NUM, v, t.pos);
    case TK_STR:
        advance(ps);
        v.str = t.str;
        return node_const(ps, RTS_T_STR, v, t.pos);
    case TK_TRUE:
    case TK_FALSE:
        advance(ps);
        v.num = t.kind == TK_TRUE;
        return node_const(ps, RTS_T_BOOL, v, t.pos);
    case TK_NAME:
        return parse_name(ps);
    case TK_LPAREN:
        advance(ps);
        n = parse_cond(ps);
        if (n < 0 || expect(ps, TK_RPAREN, "')'") < 0) {
            return -1;
        }
        return n;
    default:
        return unexpected(ps, "an expression");
    }
}

static int parse_unary(struct parser *ps)
{
    uint32_t pos = ps->cur.pos;
    int x, n;

    if (ps->cur.kind != TK_MINUS) {
        return parse_primary(ps);
    }
    advance(ps);
    if (nest_in(ps, pos) < 0) {
        return -1;
    }
    x = parse_unary(ps);
    ps->depth--;
    if (x < 0) {
        return -1;
    }
    if (!is_numlike(nd(ps, x)->type)) {
        return rts_expr_fail(ps->eb, RTS_ERR_INVAL, pos, "operator '-' needs a number, got %s",
                             rts_type_name(nd(ps, x)->type));
    }
    n = node_new(ps, N_OP, OP_NEG, RTS_T_NUM, pos);
    return n < 0 ? -1 : node_finish(ps, n, &x, 1);
}

static int parse_product(struct parser *ps)
{
    int a = parse_unary(ps);

    while (a >= 0 &&
           (ps->cur.kind == TK_STAR || ps->cur.kind == TK_SLASH || ps->cur.kind == TK_PERCENT)) {
        struct rts_expr_tok op = ps->cur;
        int b;

        advance(ps);
        b = parse_unary(ps);
        a = b < 0 ? -1 : mk_arith(ps, op.kind, op.pos, a, b);
    }
    return a;
}

static int parse_sum(struct parser *ps)
{
    int a = parse_product(ps);

    while (a >= 0 && (ps->cur.kind == TK_PLUS || ps->cur.kind == TK_MINUS)) {
        struct rts_expr_tok op = ps->cur;
        int b;

        advance(ps);
        b = parse_product(ps);
        a = b < 0 ? -1 : mk_arith(ps, op.kind, op.pos, a, b);
    }
    return a;
}

static int is_comparison(const struct parser *ps)
{
    switch (ps->cur.kind) {
    case TK_EQ:
    case TK_NE:
    case TK_LT:
    case TK_LE:
    case TK_GT:
    case TK_GE:
    case TK_IN:
        return 1;
    case TK_NOT:
        return ps->nxt.kind == TK_IN;
    default:
        return 0;
    }
}

static int parse_comparison(struct parser *ps)
{
    struct rts_expr_tok op;
    int a = parse_sum(ps), b;

    if (a < 0 || !is_comparison(ps)) {
        return a;
    }
    op = ps->cur;
    advance(ps);
    if (op.kind == TK_IN) {
        a = parse_list(ps, a, 0, op.pos);
    } else if (op.kind == TK_NOT) {
        advance(ps); /* 'in' */
        a = parse_list(ps, a, 1, op.pos);
    } else {
        b = parse_sum(ps);
        a = b < 0 ? -1 : mk_compare(ps, op.kind, op.pos, a, b);
    }
    if (a >= 0 && is_comparison(ps)) {
        return rts_expr_fail(ps->eb, RTS_ERR_PARSE, ps->cur.pos,
                             "comparisons do not chain; use parentheses or 'and'");
    }
    return a;
}

static int parse_not(struct parser *ps)
{
    uint32_t pos = ps->cur.pos;
    int x;

    if (ps->cur.kind != TK_NOT) {
        return parse_comparison(ps);
    }
    advance(ps);
    if (nest_in(ps, pos) < 0) {
        return -1;
    }
    x = parse_not(ps);
    ps->depth--;
    return x < 0 ? -1 : mk_logic(ps, TK_NOT, pos, &x, 1);
}

/* A left-associative chain of @tok (and, or) over operands parsed by @sub,
 * the next tighter level. */
static int parse_logic_chain(struct parser *ps, enum rts_expr_tk tok,
                             int (*sub)(struct parser *))
{
    int a = sub(ps);

    while (a >= 0 && ps->cur.kind == tok) {
        uint32_t pos = ps->cur.pos;
        int kids[2] = {a, -1};

        advance(ps);
        kids[1] = sub(ps);
        a = kids[1] < 0 ? -1 : mk_logic(ps, tok, pos, kids, 2);
    }
    return a;
}

static int parse_and(struct parser *ps)
{
    return parse_logic_chain(ps, TK_AND, parse_not);
}

static int parse_or(struct parser *ps)
{
    return parse_logic_chain(ps, TK_OR, parse_and);
}

/* or-expr ['?' cond ':' cond]: the full expression, one nesting level */
static int parse_cond(struct parser *ps)
{
    struct rts_expr_tok q, colon;
    int kids[3], n, ta, tb, type;

    if (nest_in(ps, ps->cur.pos) < 0) {
        return -1;
    }
    kids[0] = parse_or(ps);
    if (kids[0] < 0 || ps->cur.kind != TK_QUEST) {
        ps->depth--;
        return kids[0];
    }
    q = ps->cur;
    if (!is_numlike(nd(ps, kids[0])->type)) {
        return rts_expr_fail(ps->eb, RTS_ERR_INVAL, q.pos,
                             "condition of '?:' must be bool or number, got %s",
                             rts_type_name(nd(ps, kids[0])->type));
    }
    advance(ps);
    kids[1] = parse_cond(ps);
    if (kids[1] < 0) {
        return -1;
    }
    colon = ps->cur;
    if (expect(ps, TK_COLON, "':' of '?:'") < 0) {
        return -1;
    }
    kids[2] = parse_cond(ps);
    if (kids[2] < 0) {
        return -1;
    }
    ps->depth--;
    ta = nd(ps, kids[1])->type;
    tb = nd(ps, kids[2])->type;
    if (ta == tb) {
        type = ta;
    } else if (is_numlike(ta) && is_numlike(tb)) {
        type = RTS_T_NUM;
    } else {
        return rts_expr_fail(ps->eb, RTS_ERR_INVAL, colon.pos,
                             "branches of '?:' have different types: %s and %s", rts_type_name(ta),
                             rts_type_name(tb));
    }
    n = node_new(ps, N_COND, 0, type, q.pos);
    if (n < 0) {
        return -1;
    }
    if (nd(ps, kids[1])->flags & nd(ps, kids[2])->flags & RTS_EXPR_F01) {
        nd(ps, n)->flags = RTS_EXPR_F01;
    }
    return node_finish(ps, n, kids, 3);
}

int rts_expr_parse(struct rts_expr_ast *ast, const char *src, size_t len,
                   const struct rts_expr_scope *scope, struct rts_errbuf *eb)
{
    struct parser ps;
    int rc = -1;

    memset(&ps, 0, sizeof(ps));
    ast->root = -1;
    ast->sbuf = malloc(len + 1);
    if (!ast->sbuf) {
        return rts_expr_fail(eb, RTS_ERR_NOMEM, 0, "out of memory");
    }
    ps.ast = ast;
    ps.scope = scope;
    ps.eb = eb;
    rts_expr_lex_init(&ps.lx, src, len, ast->sbuf);
    rts_expr_lex_next(&ps.lx, &ps.nxt);
    advance(&ps);
    ast->root = parse_cond(&ps);
    if (ast->root < 0) {
        goto out;
    }
    if (ps.cur.kind != TK_END) {
        unexpected(&ps, "an operator or end of expression");
        goto out;
    }
    ast->slen = ps.lx.sused;
    rc = 0;
out:
    rts_expr_prog_fini(&ps.fold);
    return rc;
}

void rts_expr_ast_fini(struct rts_expr_ast *ast)
{
    free(ast->nodes);
    free(ast->sbuf);
    memset(ast, 0, sizeof(*ast));
}
