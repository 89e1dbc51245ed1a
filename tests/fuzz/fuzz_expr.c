/*
 * fuzz_expr.c - libFuzzer target for the expression compiler and VM.
 *
 * The input bytes, cut at the first NUL and at RTS_EXPR_MAX_LEN + 1 bytes,
 * are compiled against a fixed scope of every type. Whatever compiles is
 * evaluated over a few frames (present, missing, extreme values) and the
 * results are checked against the contract: a number is never infinite, a
 * bool is 0, 1 or missing, a string points into the frame or is NUL-
 * terminated in the pool. A failed compile must fill the error buffer with a
 * known code and a column inside the source. Any violation aborts.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { F_X, F_Y, F_TS, F_B, F_S, F_T, F__COUNT };

static const char *const fz_names[F__COUNT] = {"x", "y", "ts", "b", "s", "t"};
static const enum rts_type fz_types[F__COUNT] = {
    RTS_T_NUM, RTS_T_NUM, RTS_T_NUM, RTS_T_BOOL, RTS_T_STR, RTS_T_STR,
};

static int fz_resolve(void *ctx, const char *name, size_t len, enum rts_type *type)
{
    int i;

    (void)ctx;
    for (i = 0; i < F__COUNT; i++) {
        if (strlen(fz_names[i]) == len && memcmp(fz_names[i], name, len) == 0) {
            *type = fz_types[i];
            return i * 3 + 1; /* sparse slots */
        }
    }
    return -1;
}

static void check(int ok)
{
    if (!ok) {
        abort();
    }
}

static void set_frame(union rts_val *f, int variant)
{
    static const double nums[][4] = {
        {7, -2.5, 1700000000000.0, 1},
        {NAN, NAN, NAN, NAN},
        {1e308, -1e308, -1, 0},
        {0, -0.0, 4102444800000.0, 1},
    };
    static const char *const strs[][2] = {{"abc", ""}, {NULL, NULL}, {"x", "\xff\x00y"}, {"", "a"}};
    int i;

    memset(f, 0, sizeof(union rts_val) * (F__COUNT * 3 + 1));
    for (i = 0; i < 4; i++) {
        f[(i < 3 ? i : F_B) * 3 + 1].num = nums[variant][i];
    }
    for (i = 0; i < 2; i++) {
        const char *p = strs[variant][i];

        f[(F_S + i) * 3 + 1].str.p = p;
        f[(F_S + i) * 3 + 1].str.n = p ? (uint32_t)(i == 1 && variant == 2 ? 3 : strlen(p)) : 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char src[RTS_EXPR_MAX_LEN + 2];
    struct rts_expr_scope scope = {fz_resolve, NULL};
    union rts_val frame[F__COUNT * 3 + 1];
    struct rts_errbuf eb;
    struct rts_expr *e;
    const int *slots;
    size_t n = size < sizeof(src) - 1 ? size : sizeof(src) - 1, len, i;
    int v;

    memcpy(src, data, n);
    src[n] = '\0';
    len = strlen(src);
    memset(&eb, 0, sizeof(eb));
    e = rts_expr_compile(src, &scope, &eb);
    if (!e) {
        check(eb.code == RTS_ERR_PARSE || eb.code == RTS_ERR_INVAL || eb.code == RTS_ERR_LIMIT ||
              eb.code == RTS_ERR_NOMEM);
        check(eb.column >= 1 && (size_t)eb.column <= len + 1);
        check(eb.pos == (size_t)eb.column - 1);
        check(eb.msg[0] != '\0');
        return 0;
    }
    check(strcmp(rts_expr_source(e), src) == 0);
    n = rts_expr_slots(e, &slots);
    for (i = 0; i < n; i++) {
        check(slots[i] >= 1 && slots[i] <= (F__COUNT - 1) * 3 + 1 && (slots[i] - 1) % 3 == 0);
    }
    for (v = 0; v < 4; v++) {
        union rts_val r;

        set_frame(frame, v);
        r = rts_expr_eval(e, frame);
        switch (rts_expr_type(e)) {
        case RTS_T_NUM:
            check(!isinf(r.num));
            break;
        case RTS_T_BOOL:
            check(isnan(r.num) || r.num == 0 || r.num == 1);
            break;
        case RTS_T_STR:
            if (r.str.p && r.str.p != frame[F_S * 3 + 1].str.p &&
                r.str.p != frame[F_T * 3 + 1].str.p) {
                check(r.str.p[r.str.n] == '\0'); /* a pool string */
            }
            break;
        default:
            check(0);
        }
    }
    rts_expr_free(e);
    return 0;
}
