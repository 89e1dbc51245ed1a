/*
 * test_linear.c - the linear-json and mlp-json formats (linear.c, mlp.c):
 * tiny hand-written models with hand-computed outputs (logistic, softmax and
 * identity objectives, an MLP through every activation, missing values
 * replaced and standardized), bad files rejected with messages naming the
 * key path (shapes that do not chain, unknown activations, non-numbers,
 * sizes over the limits, unknown or absent keys), and every prefix of a
 * valid file failing cleanly.
 *
 * Models are written with ' for " to keep them readable; load() swaps them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "model/model.h"
#include "test.h"

static struct rts_model *load_text(const char *text, struct rts_errbuf *eb)
{
    size_t n = strlen(text);
    char *s = malloc(n + 1);
    struct rts_model *m;

    if (!s) {
        exit(1);
    }
    for (size_t i = 0; i <= n; i++) {
        s[i] = text[i] == '\'' ? '"' : text[i];
    }
    m = rts_model_load_mem("t.json", s, n, eb);
    free(s);
    return m;
}

static struct rts_model *load(const char *text)
{
    struct rts_errbuf eb = {0};
    struct rts_model *m = load_text(text, &eb);

    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "load: %s\n", eb.msg);
    }
    return m;
}

/* @text must fail with @code and a message containing @frag. */
static void bad_model(const char *text, enum rts_err code, const char *frag, int line)
{
    struct rts_errbuf eb = {0};
    struct rts_model *m = load_text(text, &eb);

    CHECK(m == NULL);
    rts_model_unref(m);
    if (eb.code != code || !strstr(eb.msg, frag)) {
        fprintf(stderr, "line %d: got %s \"%s\", want %s with \"%s\"\n", line,
                rts_err_name(eb.code), eb.msg, rts_err_name(code), frag);
        CHECK(0);
    }
}
#define BAD(text, code, frag) bad_model(text, code, frag, __LINE__)

#define HEAD2                                                                                      \
    "{'format':'linear-json','version':1,'features':['a','b'],'missing':{'strategy':'zero'},"
#define MLP2 "{'format':'mlp-json','version':1,'features':['a','b'],'missing':{'strategy':'zero'},"

static const char *const logistic_text = HEAD2 "'objective':'logistic','coef':[[1,-2]],"
                                               "'intercept':[0.5]}";

TEST(logistic)
{
    struct rts_model *m = load(logistic_text);
    float x[] = {1, 1, NAN, 0.25f, 1000, -1000}, y[3];

    if (!m) {
        return;
    }
    CHECK_STR(rts_model_format(m), "linear-json");
    CHECK_STR(rts_model_objective(m), "logistic");
    CHECK_INT(rts_model_nfeatures(m), 2);
    CHECK_INT(rts_model_noutputs(m), 1);
    CHECK_STR(rts_model_feature_name(m, 0), "a");
    CHECK_STR(rts_model_feature_name(m, 1), "b");
    CHECK(rts_model_feature_name(m, 2) == NULL);
    CHECK_INT(rts_model_predict(m, x, 3, 2, y), RTS_ERR_OK);
    CHECK_NEAR(y[0], 0.3775406687981454, 1e-7); /* sigmoid(1 - 2 + 0.5) */
    CHECK_NEAR(y[1], 0.5, 1e-7);                /* NaN -> 0: sigmoid(-0.5 + 0.5) */
    CHECK_NEAR(y[2], 1.0, 1e-7);                /* saturates, no overflow */
    CHECK_INT(rts_model_predict(m, x, 1, 3, y), RTS_ERR_INVAL);
    CHECK(rts_model_ref(m) == m);
    rts_model_unref(m);
    rts_model_unref(m);
    rts_model_unref(NULL);
}

TEST(softmax)
{
    struct rts_model *m = load(HEAD2 "'objective':'softmax','coef':[[1,0],[0,1],[0,0]],"
                                     "'intercept':[0,0,0]}");
    float x[] = {0.6931471805599453f, 0, 0, 0, -800, -800}, y[9];

    if (!m) {
        return;
    }
    CHECK_STR(rts_model_objective(m), "softmax");
    CHECK_INT(rts_model_noutputs(m), 3);
    rts_model_predict(m, x, 3, 2, y);
    CHECK_NEAR(y[0], 0.5, 1e-7);
    CHECK_NEAR(y[1], 0.25, 1e-7);
    CHECK_NEAR(y[2], 0.25, 1e-7);
    for (int i = 3; i < 6; i++) {
        CHECK_NEAR(y[i], 1.0 / 3, 1e-7);
    }
    CHECK_NEAR(y[6], 0, 1e-7); /* exp(-800) underflows; max subtracted first */
    CHECK_NEAR(y[7], 0, 1e-7);
    CHECK_NEAR(y[8], 1, 1e-7);
    rts_model_unref(m);
}

TEST(identity)
{
    struct rts_model *m = load(HEAD2 "'objective':'identity','coef':[[2,3],[0,-1]],"
                                     "'intercept':[1,10],'meta':{'anything':[1,'x']}}");
    float x[] = {1, 2}, y[2];

    if (!m) {
        return;
    }
    CHECK_INT(rts_model_noutputs(m), 2);
    rts_model_predict(m, x, 1, 2, y);
    CHECK_NEAR(y[0], 9, 1e-9);
    CHECK_NEAR(y[1], 8, 1e-9);
    rts_model_unref(m);
}

/* NaN is replaced in raw feature space, then standardized: (x - mean) / scale. */
TEST(missing_mean)
{
    struct rts_model *m =
        load("{'format':'linear-json','version':1,'features':['a','b'],'objective':'identity',"
             "'missing':{'strategy':'mean','values':[10,-4]},"
             "'standardize':{'mean':[2,0],'scale':[4,2]},'coef':[[1,1]],'intercept':[0]}");
    float x[] = {NAN, NAN, 6, 1, NAN, 3}, y[3];

    if (!m) {
        return;
    }
    rts_model_predict(m, x, 3, 2, y);
    CHECK_NEAR(y[0], 0, 1e-9);   /* (10 - 2) / 4 + (-4 - 0) / 2 */
    CHECK_NEAR(y[1], 1.5, 1e-9); /* (6 - 2) / 4 + 1 / 2 */
    CHECK_NEAR(y[2], 3.5, 1e-9);
    rts_model_unref(m);

    m = load("{'format':'mlp-json','version':1,'features':['a'],'objective':'identity',"
             "'missing':{'strategy':'constant','values':[-1]},"
             "'layers':[{'weights':[[1]],'bias':[0],'activation':'relu'}]}");
    if (m) {
        float xm[] = {NAN, 2}, ym[2];
        rts_model_predict(m, xm, 2, 1, ym);
        CHECK_NEAR(ym[0], 0, 1e-9); /* relu(-1) */
        CHECK_NEAR(ym[1], 2, 1e-9);
        rts_model_unref(m);
    }
}

/* relu -> tanh -> logistic -> identity, identity objective:
 * 3 * logistic(2 * tanh(relu(x) + relu(-x)) - 1) + 1 */
TEST(mlp_activations)
{
    struct rts_model *m =
        load("{'format':'mlp-json','version':1,'features':['x'],'missing':{'strategy':'zero'},"
             "'objective':'identity','layers':["
             "{'weights':[[1],[-1]],'bias':[0,0],'activation':'relu'},"
             "{'weights':[[1,1]],'bias':[0],'activation':'tanh'},"
             "{'weights':[[2]],'bias':[-1],'activation':'logistic'},"
             "{'weights':[[3]],'bias':[1],'activation':'identity'}]}");
    float x[] = {0.5f, -2, NAN}, y[3];

    if (!m) {
        return;
    }
    CHECK_STR(rts_model_format(m), "mlp-json");
    CHECK_STR(rts_model_objective(m), "identity");
    rts_model_predict(m, x, 3, 1, y);
    CHECK_NEAR(y[0], 2.44320290331377, 1e-6);
    CHECK_NEAR(y[1], 3.150041659385982, 1e-6);
    CHECK_NEAR(y[2], 3 / (1 + exp(1)) + 1, 1e-6); /* tanh(0) = 0 */
    rts_model_unref(m);
}

/* hidden relu h = (relu(a - b), relu(0.5a + 0.5b - 1)) */
TEST(mlp_classifiers)
{
    struct rts_model *m =
        load(MLP2 "'objective':'softmax','layers':["
                  "{'weights':[[1,-1],[0.5,0.5]],'bias':[0,-1],'activation':'relu'},"
                  "{'weights':[[1,2],[-1,0.5]],'bias':[0.1,-0.2],"
                  "'activation':'identity'}]}");
    float x[] = {3, 1, 0, 0, 4, 4}, y[6];

    if (!m) {
        return;
    }
    CHECK_INT(rts_model_noutputs(m), 2);
    rts_model_predict(m, x, 2, 2, y);
    CHECK_NEAR(y[0], 0.9969815836752917, 1e-7);
    CHECK_NEAR(y[1], 0.0030184163247084245, 1e-7);
    CHECK_NEAR(y[2], 0.574442516811659, 1e-7);
    CHECK_NEAR(y[3], 0.425557483188341, 1e-7);
    rts_model_unref(m);

    m = load(MLP2 "'objective':'logistic','layers':["
                  "{'weights':[[1,-1],[0.5,0.5]],'bias':[0,-1],'activation':'relu'},"
                  "{'weights':[[1,-1]],'bias':[0.25],'activation':'identity'}]}");
    if (!m) {
        return;
    }
    CHECK_INT(rts_model_noutputs(m), 1);
    rts_model_predict(m, x, 3, 2, y);
    CHECK_NEAR(y[0], 0.7772998611746911, 1e-7);
    CHECK_NEAR(y[1], 0.5621765008857981, 1e-7);
    CHECK_NEAR(y[2], 0.060086650174007626, 1e-7);
    rts_model_unref(m);
}

TEST(bad_shapes)
{
    BAD(HEAD2 "'objective':'identity','coef':[[1,2],[3]],'intercept':[0,0]}", RTS_ERR_PARSE,
        "t.json: coef[1]: expected 2 numbers (one per feature), got 1");
    BAD(HEAD2 "'objective':'identity','coef':[[1,2]],'intercept':[0,0]}", RTS_ERR_PARSE,
        "intercept: expected 1 numbers (one per output), got 2");
    BAD(HEAD2 "'objective':'identity','coef':[1,2],'intercept':[0]}", RTS_ERR_PARSE,
        "coef[0]: expected an array of 2 numbers");
    BAD(HEAD2 "'objective':'identity','coef':[],'intercept':[]}", RTS_ERR_PARSE,
        "coef: expected a non-empty array");
    BAD(HEAD2 "'objective':'softmax','coef':[[1,2]],'intercept':[0]}", RTS_ERR_PARSE,
        "objective: softmax needs at least 2 outputs, the model has 1");
    BAD(MLP2 "'objective':'identity','layers':[{'weights':[[1,2],[3,4]],'bias':[0,0],"
             "'activation':'relu'},{'weights':[[1,2,3]],'bias':[0],'activation':'identity'}]}",
        RTS_ERR_PARSE, "layers[1].weights[0]: expected 2 numbers (the width of layers[0]), got 3");
    BAD(MLP2 "'objective':'identity','layers':[{'weights':[[1,2],[3]],'bias':[0,0],"
             "'activation':'relu'}]}",
        RTS_ERR_PARSE, "layers[0].weights[1]: expected 2 numbers (one per feature), got 1");
    BAD(MLP2 "'objective':'identity','layers':[{'weights':[[1,2],[3,4]],'bias':[0],"
             "'activation':'relu'}]}",
        RTS_ERR_PARSE, "layers[0].bias: expected 2 numbers (one per unit), got 1");
    BAD(MLP2 "'objective':'identity','layers':[]}", RTS_ERR_PARSE,
        "layers: expected a non-empty array");
    BAD(MLP2 "'objective':'identity','layers':[[1]]}", RTS_ERR_PARSE,
        "layers[0]: expected an object");
    BAD("{'format':'linear-json','version':1,'features':['a','b'],'objective':'identity',"
        "'missing':{'strategy':'mean','values':[1]},'coef':[[1,2]],'intercept':[0]}",
        RTS_ERR_PARSE, "missing.values: expected 2 numbers (one per feature), got 1");
    BAD("{'format':'linear-json','version':1,'features':['a','b'],'objective':'identity',"
        "'missing':{'strategy':'zero'},'standardize':{'mean':[0,0],'scale':[1]},"
        "'coef':[[1,2]],'intercept':[0]}",
        RTS_ERR_PARSE, "standardize.scale: expected 2 numbers (one per feature), got 1");
}

TEST(bad_values)
{
    BAD(HEAD2 "'objective':'identity','coef':[[1,'2']],'intercept':[0]}", RTS_ERR_PARSE,
        "coef[0][1]: expected a number");
    BAD(HEAD2 "'objective':'identity','coef':[[1,2]],'intercept':[null]}", RTS_ERR_PARSE,
        "intercept[0]: expected a number");
    BAD(MLP2 "'objective':'identity','layers':[{'weights':[[1,2],[true,4]],'bias':[0,0],"
             "'activation':'relu'}]}",
        RTS_ERR_PARSE, "layers[0].weights[1][0]: expected a number, got a boolean");
    BAD(MLP2 "'objective':'identity','layers':[{'weights':[[1,2]],'bias':[0],"
             "'activation':'softmax'}]}",
        RTS_ERR_PARSE, "layers[0].activation: expected relu, tanh, logistic or identity");
    BAD(MLP2 "'objective':'identity','layers':[{'weights':[[1,2]],'bias':[0],"
             "'activation':'sigmoid'}]}",
        RTS_ERR_PARSE, "layers[0].activation: expected relu");
    BAD(MLP2 "'objective':'identity','layers':[{'weights':[[1,2]],'bias':[0]}]}", RTS_ERR_PARSE,
        "layers[0].activation: required");
    BAD(MLP2 "'objective':'identity','layers':[{'weights':[[1,2]],'bias':[0],'activation':'relu',"
             "'dropout':0.5}]}",
        RTS_ERR_PARSE, "layers[0].dropout: unknown key");
    BAD(MLP2 "'objective':'relu','layers':[{'weights':[[1,2]],'bias':[0],'activation':'relu'}]}",
        RTS_ERR_PARSE, "objective: expected logistic, softmax or identity");
    BAD(HEAD2 "'objective':'probit','coef':[[1,2]],'intercept':[0]}", RTS_ERR_PARSE,
        "objective: expected logistic, softmax or identity");
    BAD(HEAD2 "'coef':[[1,2]],'intercept':[0]}", RTS_ERR_PARSE, "objective: required");
    BAD(HEAD2 "'objective':'identity','coef':[[1,2]]}", RTS_ERR_PARSE, "intercept: required");
    BAD(HEAD2 "'objective':'identity','coef':[[1,2]],'intercept':[0],'layers':[]}", RTS_ERR_PARSE,
        "layers: unknown key");
    BAD(MLP2 "'objective':'identity','coef':[[1,2]],'intercept':[0]}", RTS_ERR_PARSE,
        "coef: unknown key");
    BAD("{'format':'linear-json','version':2,'features':['a'],'missing':{'strategy':'zero'},"
        "'objective':'identity','coef':[[1]],'intercept':[0]}",
        RTS_ERR_PARSE, "version: expected 1");
    BAD("{'format':'linear-json','features':['a'],'missing':{'strategy':'zero'},"
        "'objective':'identity','coef':[[1]],'intercept':[0]}",
        RTS_ERR_PARSE, "version: required");
    BAD("{'format':'linear-json','version':1,'features':['a'],'objective':'identity',"
        "'coef':[[1]],'intercept':[0]}",
        RTS_ERR_PARSE, "missing: required");
    BAD("{'format':'linear-json','version':1,'features':['a'],'objective':'identity',"
        "'missing':{'strategy':'mean'},'coef':[[1]],'intercept':[0]}",
        RTS_ERR_PARSE, "missing.values: required");
    BAD("{'format':'linear-json','version':1,'features':['a'],'objective':'identity',"
        "'missing':{'strategy':'zero','values':[2]},'coef':[[1]],'intercept':[0]}",
        RTS_ERR_PARSE, "missing.values[0]: strategy zero needs 0, got 2");
    BAD("{'format':'linear-json','version':1,'features':['a'],'objective':'identity',"
        "'missing':{'strategy':'nearest'},'coef':[[1]],'intercept':[0]}",
        RTS_ERR_PARSE, "missing.strategy: expected zero, mean");
    BAD("{'format':'linear-json','version':1,'features':['a'],'objective':'identity',"
        "'missing':'zero','coef':[[1]],'intercept':[0]}",
        RTS_ERR_PARSE, "missing: expected an object");
    BAD("{'format':'linear-json','version':1,'features':['a'],'objective':'identity',"
        "'missing':{'strategy':'zero','how':1},'coef':[[1]],'intercept':[0]}",
        RTS_ERR_PARSE, "missing.how: unknown key");
    BAD("{'format':'linear-json','version':1,'features':['a','b'],'objective':'identity',"
        "'missing':{'strategy':'zero'},'standardize':{'mean':[0,0],'scale':[1,0]},"
        "'coef':[[1,2]],'intercept':[0]}",
        RTS_ERR_PARSE, "standardize.scale[1]: must not be 0");
    BAD("{'format':'linear-json','version':1,'features':['a','a'],'objective':'identity',"
        "'missing':{'strategy':'zero'},'coef':[[1,2]],'intercept':[0]}",
        RTS_ERR_PARSE, "features[1]: \"a\" already named at features[0]");
    BAD("{'format':'linear-json','version':1,'features':['a',3],'objective':'identity',"
        "'missing':{'strategy':'zero'},'coef':[[1,2]],'intercept':[0]}",
        RTS_ERR_PARSE, "features[1]: expected a non-empty name");
    BAD("{'format':'linear-json','version':1,'features':'a','objective':'identity',"
        "'missing':{'strategy':'zero'},'coef':[[1]],'intercept':[0]}",
        RTS_ERR_PARSE, "features: expected a non-empty array of names");
    BAD("{'format':'linear-json','version':1,'features':[],'objective':'identity',"
        "'missing':{'strategy':'zero'},'coef':[[]],'intercept':[0]}",
        RTS_ERR_PARSE, "features: expected a non-empty array of names");
    BAD("{'format':'svm-json'}", RTS_ERR_INVAL, "unknown model format");
    BAD("[1,2]", RTS_ERR_PARSE, "expected a JSON object");
    BAD("{'format':'linear-json','version':1,'coef':1e999}", RTS_ERR_PARSE, "not valid JSON");
}

/* Sizes over the limits are LIMIT errors; at the limit they load. */
static void big_model(struct rts_buf *b, size_t nfeat, size_t units, size_t layers)
{
    b->len = 0;
    rts_buf_printf(b, "{\"format\":\"mlp-json\",\"version\":1,\"objective\":\"identity\","
                      "\"missing\":{\"strategy\":\"zero\"},\"features\":[");
    for (size_t i = 0; i < nfeat; i++) {
        rts_buf_printf(b, "%s\"f%zu\"", i ? "," : "", i);
    }
    rts_buf_printf(b, "],\"layers\":[");
    for (size_t l = 0; l < layers; l++) {
        size_t nin = l == 0 ? nfeat : units, nout = l + 1 == layers ? 1 : units;
        rts_buf_printf(b, "%s{\"activation\":\"relu\",\"weights\":[", l ? "," : "");
        for (size_t i = 0; i < nout; i++) {
            rts_buf_printf(b, "%s[", i ? "," : "");
            for (size_t j = 0; j < nin; j++) {
                rts_buf_printf(b, "%s0.001", j ? "," : "");
            }
            rts_buf_printf(b, "]");
        }
        rts_buf_printf(b, "],\"bias\":[");
        for (size_t i = 0; i < nout; i++) {
            rts_buf_printf(b, "%s1", i ? "," : "");
        }
        rts_buf_printf(b, "]}");
    }
    rts_buf_printf(b, "]}");
}

static void big_check(size_t nfeat, size_t units, size_t layers, const char *frag)
{
    struct rts_buf b = {0};
    struct rts_errbuf eb = {0};
    struct rts_model *m;

    big_model(&b, nfeat, units, layers);
    m = rts_model_load_mem("big", b.data, b.len, &eb);
    if (!frag) {
        CHECK(m != NULL);
        if (m) {
            float *x = calloc(nfeat, sizeof(float)), y = 0;
            CHECK(x != NULL);
            if (x) {
                CHECK_INT(rts_model_predict(m, x, 1, nfeat, &y), RTS_ERR_OK);
                CHECK(y > 0);
            }
            free(x);
        } else {
            fprintf(stderr, "big: %s\n", eb.msg);
        }
    } else {
        CHECK(m == NULL);
        CHECK_INT(eb.code, RTS_ERR_LIMIT);
        CHECK(strstr(eb.msg, frag) != NULL);
        if (!strstr(eb.msg, frag)) {
            fprintf(stderr, "big: got \"%s\", want \"%s\"\n", eb.msg, frag);
        }
    }
    rts_model_unref(m);
    rts_buf_fini(&b);
}

TEST(limits)
{
    struct rts_buf b = {0};
    struct rts_errbuf eb = {0};
    struct rts_model *m;

    big_check(4096, 8, 2, NULL);
    big_check(4, 1024, 3, NULL);
    big_check(4, 8, 16, NULL);
    big_check(4097, 2, 2, "features: 4097 names, at most 4096");
    big_check(4, 1025, 2, "layers[0].weights: 1025 units, at most 1024");
    big_check(4, 2, 17, "layers: 17 layers, at most 16");

    rts_buf_printf(&b, "{\"format\":\"linear-json\",\"version\":1,\"objective\":\"softmax\","
                       "\"missing\":{\"strategy\":\"zero\"},\"features\":[\"a\"],\"coef\":[");
    for (int i = 0; i < 1025; i++) {
        rts_buf_printf(&b, "%s[1]", i ? "," : "");
    }
    rts_buf_printf(&b, "],\"intercept\":[]}");
    m = rts_model_load_mem("big", b.data, b.len, &eb);
    CHECK(m == NULL);
    CHECK_INT(eb.code, RTS_ERR_LIMIT);
    CHECK(strstr(eb.msg, "coef: 1025 outputs, at most 1024") != NULL);
    rts_buf_fini(&b);
}

/* Every proper prefix of a valid file is rejected with a message, no leak. */
static void prefixes(const char *text)
{
    size_t n = strlen(text);
    char *s = malloc(n + 1);
    struct rts_errbuf eb = {0};
    struct rts_model *m;

    if (!s) {
        exit(1);
    }
    for (size_t i = 0; i <= n; i++) {
        s[i] = text[i] == '\'' ? '"' : text[i];
    }
    m = rts_model_load_mem("p", s, n, &eb);
    CHECK(m != NULL);
    rts_model_unref(m);
    for (size_t len = 0; len < n; len++) {
        memset(&eb, 0, sizeof(eb));
        m = rts_model_load_mem("p", s, len, &eb);
        if (m || eb.code == RTS_ERR_OK || eb.msg[0] == '\0') {
            fprintf(stderr, "prefix of %zu bytes: loaded or no message\n", len);
            CHECK(0);
            rts_model_unref(m);
        }
    }
    free(s);
}

TEST(prefixes)
{
    prefixes(logistic_text);
    prefixes("{'format':'mlp-json','version':1,'features':['a','b'],'objective':'softmax',"
             "'missing':{'strategy':'mean','values':[0.5,-1]},"
             "'standardize':{'mean':[1,2],'scale':[3,4]},'layers':["
             "{'weights':[[1,-1],[0.5,0.5]],'bias':[0,-1],'activation':'tanh'},"
             "{'weights':[[1,2],[-1,0.5]],'bias':[0.1,-0.2],'activation':'identity'}]}");
}

int main(void)
{
    RUN(logistic);
    RUN(softmax);
    RUN(identity);
    RUN(missing_mean);
    RUN(mlp_activations);
    RUN(mlp_classifiers);
    RUN(bad_shapes);
    RUN(bad_values);
    RUN(limits);
    RUN(prefixes);
    return TEST_EXIT();
}
