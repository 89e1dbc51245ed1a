/*
 * lex.c - the expression tokenizer.
 *
 * Tokens are produced on demand, one at a time. A lexical error does not stop
 * the lexer: it becomes a TK_ERROR token carrying its message and position,
 * so the parser reports whichever problem comes first in the source. String
 * literals are decoded into the caller's buffer; a decoded literal plus its
 * NUL is never longer than the quoted source text, so a buffer of source
 * length + 1 bytes cannot overflow. Numbers are checked against the grammar
 * here and only then converted by strtod (which expects the "C" locale's
 * decimal point, the default of a process that never calls setlocale).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr_int.h"

static const struct {
    const char *word;
    enum rts_expr_tk kind;
} keywords[] = {
    {"and", TK_AND}, {"or", TK_OR},     {"not", TK_NOT},
    {"in", TK_IN},   {"true", TK_TRUE}, {"false", TK_FALSE},
};

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_name_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_name_char(int c)
{
    return is_name_start(c) || is_digit(c);
}

void rts_expr_lex_init(struct rts_expr_lexer *lx, const char *src, size_t len, char *sbuf)
{
    lx->src = src;
    lx->len = len;
    lx->pos = 0;
    lx->sbuf = sbuf;
    lx->sused = 0;
}

static int peekc(const struct rts_expr_lexer *lx, size_t ahead)
{
    return lx->pos + ahead < lx->len ? (unsigned char)lx->src[lx->pos + ahead] : -1;
}

static void lex_error(struct rts_expr_tok *t, size_t errpos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void lex_error(struct rts_expr_tok *t, size_t errpos, const char *fmt, ...)
{
    va_list ap;

    t->kind = TK_ERROR;
    t->errpos = (uint32_t)errpos;
    va_start(ap, fmt);
    vsnprintf(t->msg, sizeof(t->msg), fmt, ap);
    va_end(ap);
}

static void lex_number(struct rts_expr_lexer *lx, struct rts_expr_tok *t)
{
    size_t start = lx->pos, digits = 0;
    char *end = NULL;

    while (is_digit(peekc(lx, 0))) {
        lx->pos++;
        digits++;
    }
    if (peekc(lx, 0) == '.') {
        lx->pos++;
        while (is_digit(peekc(lx, 0))) {
            lx->pos++;
            digits++;
        }
    }
    if (digits && (peekc(lx, 0) == 'e' || peekc(lx, 0) == 'E')) {
        size_t exp_digits = 0;

        lx->pos++;
        if (peekc(lx, 0) == '+' || peekc(lx, 0) == '-') {
            lx->pos++;
        }
        while (is_digit(peekc(lx, 0))) {
            lx->pos++;
            exp_digits++;
        }
        if (!exp_digits) {
            digits = 0;
        }
    }
    /* "12abc", "1.2.3", "1e" are one malformed number, not a number and a name */
    while (is_name_char(peekc(lx, 0)) || peekc(lx, 0) == '.') {
        lx->pos++;
        digits = 0;
    }
    t->len = (uint32_t)(lx->pos - start);
    if (!digits) {
        lex_error(t, start, "malformed number");
        return;
    }
    /* the source is NUL-terminated and the token is followed by a byte that
     * cannot continue a number, so strtod stops exactly at the token's end */
    t->num = strtod(lx->src + start, &end);
    if (end != lx->src + lx->pos) {
        lex_error(t, start, "malformed number");
        return;
    }
    if (isinf(t->num)) {
        lex_error(t, start, "number out of range");
        return;
    }
    t->kind = TK_NUM;
}

static void lex_string(struct rts_expr_lexer *lx, struct rts_expr_tok *t)
{
    size_t start = lx->pos;
    int quote = peekc(lx, 0);
    char *out = lx->sbuf + lx->sused;
    size_t n = 0;

    lx->pos++;
    for (;;) {
        int c = peekc(lx, 0);

        if (c < 0) {
            t->len = (uint32_t)(lx->pos - start);
            lex_error(t, start, "unterminated string (missing closing %c)", quote);
            return;
        }
        lx->pos++;
        if (c == quote) {
            break;
        }
        if (c == '\\') {
            int e = peekc(lx, 0);

            switch (e) {
            case '\\':
            case '\'':
            case '"':
                c = e;
                break;
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            default:
                /* skip to the end of the literal so the token has its full extent */
                t->len = (uint32_t)(lx->pos - start);
                if (e < 0) {
                    lex_error(t, start, "unterminated string (missing closing %c)", quote);
                } else if (e >= 0x20 && e < 0x7f) {
                    lex_error(t, lx->pos - 1, "unknown escape '\\%c' in string", e);
                } else {
                    lex_error(t, lx->pos - 1, "unknown escape (byte 0x%02x) in string", e);
                }
                return;
            }
            lx->pos++;
        }
        out[n++] = (char)c;
    }
    out[n] = '\0';
    lx->sused += n + 1;
    t->kind = TK_STR;
    t->len = (uint32_t)(lx->pos - start);
    t->str.p = out;
    t->str.n = (uint32_t)n;
}

static void lex_name(struct rts_expr_lexer *lx, struct rts_expr_tok *t)
{
    size_t start = lx->pos, i;

    while (is_name_char(peekc(lx, 0))) {
        lx->pos++;
    }
    t->len = (uint32_t)(lx->pos - start);
    t->kind = TK_NAME;
    for (i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
        if (strlen(keywords[i].word) == t->len &&
            memcmp(keywords[i].word, lx->src + start, t->len) == 0) {
            t->kind = keywords[i].kind;
            break;
        }
    }
}

/* An operator of one byte, or of two when the next byte is '=': @one or @two.
 * '=' and '!' have no one-byte form; their callers check for the '=' first. */
static void lex_op(struct rts_expr_lexer *lx, struct rts_expr_tok *t, enum rts_expr_tk one,
                   enum rts_expr_tk two)
{
    if (peekc(lx, 1) == '=') {
        t->kind = two;
        t->len = 2;
    } else {
        t->kind = one;
        t->len = 1;
    }
    lx->pos += t->len;
}

void rts_expr_lex_next(struct rts_expr_lexer *lx, struct rts_expr_tok *t)
{
    static const char single[] = "()[],?:+-*/%";
    static const enum rts_expr_tk single_kind[] = {
        TK_LPAREN, TK_RPAREN, TK_LBRACK, TK_RBRACK, TK_COMMA, TK_QUEST,
        TK_COLON,  TK_PLUS,   TK_MINUS,  TK_STAR,   TK_SLASH, TK_PERCENT,
    };
    const char *hit;
    int c;

    memset(t, 0, sizeof(*t));
    while ((c = peekc(lx, 0)) == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v') {
        lx->pos++;
    }
    t->pos = (uint32_t)lx->pos;
    if (c < 0) {
        t->kind = TK_END;
        return;
    }
    if (is_digit(c) || (c == '.' && is_digit(peekc(lx, 1)))) {
        lex_number(lx, t);
        return;
    }
    if (c == '\'' || c == '"') {
        lex_string(lx, t);
        return;
    }
    if (is_name_start(c)) {
        lex_name(lx, t);
        return;
    }
    hit = c ? strchr(single, c) : NULL;
    if (hit) {
        t->kind = single_kind[hit - single];
        t->len = 1;
        lx->pos++;
        return;
    }
    switch (c) {
    case '<':
        lex_op(lx, t, TK_LT, TK_LE);
        return;
    case '>':
        lex_op(lx, t, TK_GT, TK_GE);
        return;
    case '=':
        if (peekc(lx, 1) == '=') {
            lex_op(lx, t, TK_ERROR, TK_EQ);
            return;
        }
        t->len = 1;
        lx->pos++;
        lex_error(t, t->pos, "unexpected '%c' (use '==' to compare)", c);
        return;
    case '!':
        if (peekc(lx, 1) == '=') {
            lex_op(lx, t, TK_ERROR, TK_NE);
            return;
        }
        t->len = 1;
        lx->pos++;
        lex_error(t, t->pos, "unexpected '%c' (use 'not')", c);
        return;
    case '&':
        t->len = peekc(lx, 1) == '&' ? 2 : 1;
        lx->pos += t->len;
        lex_error(t, t->pos, "unexpected '%c' (use 'and')", c);
        return;
    case '|':
        t->len = peekc(lx, 1) == '|' ? 2 : 1;
        lx->pos += t->len;
        lex_error(t, t->pos, "unexpected '%c' (use 'or')", c);
        return;
    default:
        t->len = 1;
        lx->pos++;
        if (c > 0x20 && c < 0x7f) {
            lex_error(t, t->pos, "unexpected character '%c'", c);
        } else {
            lex_error(t, t->pos, "unexpected byte 0x%02x", c);
        }
        return;
    }
}
