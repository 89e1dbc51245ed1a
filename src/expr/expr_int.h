/*
 * expr_int.h - private to src/expr: tokens, the typed syntax tree, the
 * bytecode and the layout of a compiled expression.
 *
 * The pipeline: lex.c cuts the source into tokens; parse.c builds a tree in
 * one array, checks types and folds constant subtrees as each node is made
 * (by running the VM on the node's own code, so folding and evaluation can
 * never disagree); expr.c emits stack bytecode from the tree and packs code,
 * constants, slots, strings and source into one immutable block; vm.c runs
 * it. What the VM trusts the compiler for: every program ends in OP_RET,
 * jumps land inside the program, the stack never holds more than
 * RTS_EXPR_MAX_DEPTH values, each opcode finds operands of its types.
 */
#ifndef RTS_EXPR_EXPR_INT_H
#define RTS_EXPR_EXPR_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "event/value.h"
#include "expr/expr.h"

/* Tree height bound: code generation recurses once per level. A left-leaning
 * chain such as a + b + c + ... adds a level per operator without nesting. */
#define RTS_EXPR_MAX_HEIGHT 512

/* ---- tokens (lex.c) ---- */

enum rts_expr_tk {
    TK_END,
    TK_ERROR, /* a lexical error; msg and errpos say what and where */
    TK_NUM,
    TK_STR,
    TK_NAME,
    TK_TRUE,
    TK_FALSE,
    TK_AND,
    TK_OR,
    TK_NOT,
    TK_IN,
    TK_LPAREN,
    TK_RPAREN,
    TK_LBRACK,
    TK_RBRACK,
    TK_COMMA,
    TK_QUEST,
    TK_COLON,
    TK_PLUS,
    TK_MINUS,
    TK_STAR,
    TK_SLASH,
    TK_PERCENT,
    TK_EQ,
    TK_NE,
    TK_LT,
    TK_LE,
    TK_GT,
    TK_GE,
};

struct rts_expr_tok {
    enum rts_expr_tk kind;
    uint32_t pos, len;  /* bytes of source */
    double num;         /* TK_NUM */
    struct rts_str str; /* TK_STR: decoded, NUL-terminated, in the lexer's string buffer */
    uint32_t errpos;    /* TK_ERROR */
    char msg[80];       /* TK_ERROR */
};

struct rts_expr_lexer {
    const char *src;
    size_t len, pos;
    char *sbuf; /* decoded string literals; len + 1 bytes is always enough */
    size_t sused;
};

void rts_expr_lex_init(struct rts_expr_lexer *lx, const char *src, size_t len, char *sbuf);
void rts_expr_lex_next(struct rts_expr_lexer *lx, struct rts_expr_tok *t);

/* ---- opcodes (vm.c runs them, expr.c emits them) ---- */

enum rts_expr_op {
    OP_RET,
    OP_CONST, /* push k[arg] */
    OP_LOAD,  /* push frame[arg] */
    OP_JMP,   /* pc = arg */
    OP_JF,    /* pop; jump to arg if not truthy */
    OP_ANDJ,  /* top falsy: top = 0, jump to arg; else pop */
    OP_ORJ,   /* top truthy: top = 1, jump to arg; else pop */
    OP_BOOL,  /* top = truthy(top) */
    OP_NEG,
    OP_NOT,
    /* binary numeric ops; each has a K twin (same order) whose right operand is k[arg] */
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_MOD,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_MIN,
    OP_MAX,
    OP_ADDK,
    OP_SUBK,
    OP_MULK,
    OP_DIVK,
    OP_MODK,
    OP_EQK,
    OP_NEK,
    OP_LTK,
    OP_LEK,
    OP_GTK,
    OP_GEK,
    OP_MINK,
    OP_MAXK,
    /* strings */
    OP_SEQ,
    OP_SNE,
    OP_SLT,
    OP_SLE,
    OP_SGT,
    OP_SGE,
    /* membership in k[arg .. arg + aux) */
    OP_IN,
    OP_NIN,
    OP_SIN,
    OP_SNIN,
    /* functions */
    OP_LOG1P,
    OP_ABS,
    OP_SQRT,
    OP_EXP,
    OP_CLAMP,
    OP_HOUR,
    OP_DOW,
    OP_MISS,  /* number or bool */
    OP_SMISS, /* string */
    OP__COUNT
};

#define RTS_EXPR_OP_K (OP_ADDK - OP_ADD)

struct rts_expr_insn {
    uint8_t op;
    uint8_t pad;
    uint16_t aux; /* list length for the OP_IN family */
    uint32_t arg; /* constant index, slot, or jump target */
};

/* ---- the syntax tree (parse.c builds it, expr.c walks it) ---- */

enum rts_expr_nk {
    N_CONST,  /* val */
    N_LOAD,   /* slot */
    N_OP,     /* children in order, then op */
    N_MINMAX, /* two or more children folded pairwise with op (OP_MIN or OP_MAX) */
    N_AND,
    N_OR,
    N_COND, /* condition, then, else */
    N_IN,   /* the operand, then constant items; op is one of the OP_IN family */
};

#define RTS_EXPR_F01 1u /* the value is always 0 or 1, never missing */

struct rts_expr_node {
    uint8_t kind;  /* enum rts_expr_nk */
    uint8_t op;    /* enum rts_expr_op */
    uint8_t type;  /* enum rts_type */
    uint8_t flags; /* RTS_EXPR_F01 */
    uint32_t pos;  /* source offset for messages */
    uint32_t height;
    int kid, next;     /* first child, next sibling; -1 for none */
    uint32_t slot;     /* N_LOAD */
    union rts_val val; /* N_CONST */
};

struct rts_expr_ast {
    struct rts_expr_node *nodes;
    int n, cap;
    int root;
    char *sbuf; /* string literals; N_CONST strings point here */
    size_t slen;
};

/* Parse and check @src (@len bytes, NUL-terminated) into @ast. Returns 0, or
 * -1 with @eb filled. @ast must be zeroed before and finished after, also on
 * failure. */
int rts_expr_parse(struct rts_expr_ast *ast, const char *src, size_t len,
                   const struct rts_expr_scope *scope, struct rts_errbuf *eb);
void rts_expr_ast_fini(struct rts_expr_ast *ast);

/* ---- code generation (expr.c) ---- */

struct rts_expr_prog {
    struct rts_expr_insn *code;
    uint32_t ncode, capcode;
    union rts_val *k;
    uint8_t *ktype; /* enum rts_type of each constant, to relocate strings */
    uint32_t nk, capk;
    int *slots; /* distinct, in order of first use */
    uint32_t nslots, capslots;
    int depth, maxdepth;
};

/* Append the code of tree @root, then OP_RET, to @p (zeroed, or reset by
 * rts_expr_prog_reset). Returns 0 or -1 with @eb filled (stack limit,
 * out of memory). */
int rts_expr_gen(struct rts_expr_prog *p, const struct rts_expr_node *nodes, int root,
                 struct rts_errbuf *eb);
void rts_expr_prog_reset(struct rts_expr_prog *p); /* empty, keeps the memory */
void rts_expr_prog_fini(struct rts_expr_prog *p);

/* Fill @eb with @code at source offset @pos (column pos + 1); returns -1. */
int rts_expr_fail(struct rts_errbuf *eb, enum rts_err code, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- the compiled expression (expr.c packs it, vm.c reads it) ---- */

struct rts_expr {
    enum rts_type type;
    uint32_t ncode, nk, nslots;
    const struct rts_expr_insn *code;
    const union rts_val *k;
    const int *slots;
    const char *src;
    union rts_val data[]; /* constants, code, slots, strings, source */
};

/* Run @code with constants @k over @frame (NULL when the code loads nothing). */
union rts_val rts_expr_run(const struct rts_expr_insn *code, const union rts_val *k,
                           const union rts_val *frame);

#endif /* RTS_EXPR_EXPR_INT_H */
