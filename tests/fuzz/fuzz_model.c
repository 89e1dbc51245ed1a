/*
 * fuzz_model.c - libFuzzer target: rts_model_load_mem over arbitrary bytes
 * (every model format; XGBoost JSON is the one with the most structure), and
 * for any model that loads, a prediction on rows of zeros, NaNs and extremes
 * in single-row and batch calls. A failed load must leave a terminated
 * message. Built by the fuzz preset (make fuzz).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

#define FUZZ_MAX_FEATURES 4096
#define FUZZ_MAX_OUTPUTS 4096
#define FUZZ_ROWS 9

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const float vals[] = {0.0f, NAN, -1.0f, 1e30f, -INFINITY, 0.5f, 3.0f};
    struct rts_errbuf eb;
    struct rts_model *m;
    size_t nx, ny, i;
    float *x, *y;

    memset(&eb, 0, sizeof(eb));
    m = rts_model_load_mem("fuzz.json", (const char *)data, size, &eb);
    if (!m) {
        if (!memchr(eb.msg, '\0', sizeof(eb.msg)) || eb.msg[0] == '\0') {
            __builtin_trap();
        }
        return 0;
    }
    nx = rts_model_nfeatures(m);
    ny = rts_model_noutputs(m);
    if (nx <= FUZZ_MAX_FEATURES && ny >= 1 && ny <= FUZZ_MAX_OUTPUTS) {
        x = malloc((nx ? nx : 1) * FUZZ_ROWS * sizeof(*x));
        y = malloc(ny * FUZZ_ROWS * sizeof(*y));
        if (x && y) {
            for (i = 0; i < nx * FUZZ_ROWS; i++) {
                x[i] = vals[i % (sizeof(vals) / sizeof(vals[0]))];
            }
            if (rts_model_predict(m, x, 1, nx, y) != RTS_ERR_OK ||
                rts_model_predict(m, x, FUZZ_ROWS, nx, y) != RTS_ERR_OK) {
                __builtin_trap();
            }
        }
        free(x);
        free(y);
    }
    for (i = 0; i < nx; i++) {
        (void)rts_model_feature_name(m, i);
    }
    (void)rts_model_format(m);
    (void)rts_model_objective(m);
    rts_model_unref(rts_model_ref(m));
    rts_model_unref(m);
    return 0;
}
