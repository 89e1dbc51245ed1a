/*
 * test_gbt.c - the XGBoost JSON gbtree evaluator (src/model/gbt.c) on
 * hand-written tiny models: a stump, missing values taking the default child
 * left or right, a value equal to the threshold going right, children listed
 * out of order, pruned nodes left in the arrays, multi-class softmax, base_score
 * for each objective, batches against single rows; then every kind of bad
 * input with the message fragment it must produce, and a truncation sweep
 * (every prefix of a valid file fails cleanly). Parity with XGBoost itself on
 * trained models is tests/integration/xgb_parity.sh.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "test.h"

/* One tree from its parallel arrays (without brackets). */
#define TREE(l, r, si, sc, dl, st)                                                                 \
    "{\"left_children\":[" l "],\"right_children\":[" r "],\"split_indices\":[" si                 \
    "],\"split_conditions\":[" sc "],\"default_left\":[" dl "],\"split_type\":[" st "]}"

/* x0 < 0.5 ? -1 : 2; missing goes left. */
#define STUMP_L TREE("1,-1,-1", "2,-1,-1", "0,0,0", "0.5,-1.0,2.0", "1,0,0", "0,0,0")
/* x1 < 3 ? 0.25 : -0.75; missing goes right. */
#define STUMP_R TREE("1,-1,-1", "2,-1,-1", "1,0,0", "3,0.25,-0.75", "0,0,0", "0,0,0")

static char doc[16384];

/* A whole model document around @trees and @info. */
static const char *model(const char *objective, const char *base_score, const char *num_class,
                         const char *num_feature, const char *names, const char *booster,
                         const char *trees, const char *info)
{
    snprintf(doc, sizeof(doc),
             "{\"learner\":{\"attributes\":{},\"feature_names\":[%s],\"feature_types\":[],"
             "\"gradient_booster\":{\"model\":{\"gbtree_model_param\":{\"num_parallel_tree\":"
             "\"1\",\"num_trees\":\"1\",\"size_leaf_vector\":\"0\"},\"tree_info\":[%s],"
             "\"trees\":[%s]},\"name\":\"%s\"},\"learner_model_param\":{\"base_score\":\"%s\","
             "\"boost_from_average\":\"1\",\"num_class\":\"%s\",\"num_feature\":\"%s\","
             "\"num_target\":\"1\"},\"objective\":{\"name\":\"%s\",\"reg_loss_param\":"
             "{\"scale_pos_weight\":\"1\"}}},\"version\":[1,7,4]}",
             names, info, trees, booster, base_score, num_class, num_feature, objective);
    return doc;
}

static const char *reg(const char *trees, const char *info)
{
    return model("reg:squarederror", "5E-1", "0", "2", "", "gbtree", trees, info);
}

static struct rts_model *load(const char *json, struct rts_errbuf *eb)
{
    memset(eb, 0, sizeof(*eb));
    return rts_model_load_mem("m.json", json, strlen(json), eb);
}

static float score1(const struct rts_model *m, float x0, float x1)
{
    float x[2] = {x0, x1}, y = -12345.0f;

    CHECK_INT(rts_model_predict(m, x, 1, 2, &y), RTS_ERR_OK);
    return y;
}

/* Load must fail with a message containing @frag. */
static void expect_error(const char *json, const char *frag, int line)
{
    struct rts_errbuf eb;
    struct rts_model *m = load(json, &eb);

    if (m) {
        rts_model_unref(m);
    }
    CHECK(m == NULL);
    CHECK(eb.code != RTS_ERR_OK);
    if (!strstr(eb.msg, frag)) {
        fprintf(stderr, "test_gbt.c:%d: message \"%s\" lacks \"%s\"\n", line, eb.msg, frag);
        test_failures++;
    }
}
#define EXPECT_ERROR(json, frag) expect_error((json), (frag), __LINE__)

TEST(stump)
{
    struct rts_errbuf eb;
    struct rts_model *m = load(reg(STUMP_L, "0"), &eb);

    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "%s\n", eb.msg);
        return;
    }
    CHECK_STR(rts_model_format(m), "xgboost-json");
    CHECK_STR(rts_model_objective(m), "reg:squarederror");
    CHECK_INT(rts_model_nfeatures(m), 2);
    CHECK_INT(rts_model_noutputs(m), 1);
    CHECK(rts_model_feature_name(m, 0) == NULL);
    CHECK_NEAR(score1(m, 0.4f, 0.0f), -0.5, 0);
    CHECK_NEAR(score1(m, 0.5f, 0.0f), 2.5, 0); /* equal to the threshold: right */
    CHECK_NEAR(score1(m, nextafterf(0.5f, 0.0f), 0.0f), -0.5, 0);
    CHECK_NEAR(score1(m, -INFINITY, 0.0f), -0.5, 0);
    CHECK_NEAR(score1(m, INFINITY, 0.0f), 2.5, 0);
    CHECK_NEAR(score1(m, NAN, 0.0f), -0.5, 0); /* missing: default left */
    {
        float x[3] = {0.0f, 0.0f, 0.0f}, y;
        CHECK_INT(rts_model_predict(m, x, 1, 3, &y), RTS_ERR_INVAL);
    }
    CHECK(rts_model_ref(m) == m);
    rts_model_unref(m);
    rts_model_unref(m);
    rts_model_unref(NULL);
}

TEST(missing_default_right)
{
    struct rts_errbuf eb;
    struct rts_model *m = load(reg(STUMP_R, "0"), &eb);

    CHECK(m != NULL);
    if (!m) {
        return;
    }
    CHECK_NEAR(score1(m, 0.0f, 2.0f), 0.75, 0);
    CHECK_NEAR(score1(m, 0.0f, 3.0f), -0.25, 0);
    CHECK_NEAR(score1(m, 0.0f, NAN), -0.25, 0); /* missing: default right */
    CHECK_NEAR(score1(m, NAN, 2.0f), 0.75, 0);  /* x0 unused */
    rts_model_unref(m);
}

TEST(two_trees_sum_in_order)
{
    struct rts_errbuf eb;
    struct rts_model *m = load(reg(STUMP_L "," STUMP_R, "0,0"), &eb);

    CHECK(m != NULL);
    if (!m) {
        return;
    }
    CHECK_NEAR(score1(m, 0.0f, 0.0f), 0.5f + -1.0f + 0.25f, 0);
    CHECK_NEAR(score1(m, 1.0f, 5.0f), 0.5f + 2.0f + -0.75f, 0);
    CHECK_NEAR(score1(m, NAN, NAN), 0.5f + -1.0f + -0.75f, 0);
    rts_model_unref(m);
}

/* Children listed before their parents, a leaf-only tree, a pruned node
 * (unreachable, garbage split index) left in the arrays. */
#define ODD_TREE                                                                                   \
    TREE("3,-1,-1,2,-1,-1", "1,-1,-1,4,-1,-1", "1,0,0,0,0,2147483647", "10,7,1.5,0,-3,99",         \
         "0,0,0,1,0,0", "0,0,0,0,0,0")
#define LEAF_TREE TREE("-1", "-1", "0", "0.125", "0", "0")

TEST(odd_shapes)
{
    struct rts_errbuf eb;
    struct rts_model *m = load(reg(ODD_TREE "," LEAF_TREE, "0,0"), &eb);

    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "%s\n", eb.msg);
        return;
    }
    /* node 0: x1 < 10 -> node 3 (x0 < 0 -> node 2 (1.5) else node 4 (-3)); else node 1 (7) */
    CHECK_NEAR(score1(m, -1.0f, 0.0f), 0.5f + 1.5f + 0.125f, 0);
    CHECK_NEAR(score1(m, 0.0f, 0.0f), 0.5f + -3.0f + 0.125f, 0);
    CHECK_NEAR(score1(m, NAN, 0.0f), 0.5f + 1.5f + 0.125f, 0); /* node 3 default left */
    CHECK_NEAR(score1(m, -1.0f, 10.0f), 0.5f + 7.0f + 0.125f, 0);
    CHECK_NEAR(score1(m, -1.0f, NAN), 0.5f + 7.0f + 0.125f, 0); /* node 0 default right */
    rts_model_unref(m);
}

TEST(base_score)
{
    struct rts_errbuf eb;
    struct rts_model *m;
    const char *zero = TREE("-1", "-1", "0", "0", "0", "0");
    const char *one = TREE("-1", "-1", "0", "1", "0", "0");

    m = load(model("binary:logistic", "2E-1", "0", "2", "", "gbtree", zero, "0"), &eb);
    CHECK(m != NULL);
    if (m) {
        CHECK_NEAR(score1(m, 0, 0), 0.2, 1e-7); /* logit then sigmoid */
        rts_model_unref(m);
    }
    m = load(model("binary:logistic", "5E-1", "0", "2", "", "gbtree", one, "0"), &eb);
    CHECK(m != NULL);
    if (m) {
        CHECK_NEAR(score1(m, 0, 0), 1.0 / (1.0 + exp(-1.0)), 1e-7);
        rts_model_unref(m);
    }
    m = load(model("reg:logistic", "4E-1", "0", "2", "", "gbtree", one, "0"), &eb);
    CHECK(m != NULL);
    if (m) {
        CHECK_NEAR(score1(m, 0, 0), 1.0 / (1.0 + exp(-(log(0.4 / 0.6) + 1.0))), 1e-7);
        rts_model_unref(m);
    }
    /* logitraw: base_score is a margin, no transform */
    m = load(model("binary:logitraw", "3E-1", "0", "2", "", "gbtree", one, "0"), &eb);
    CHECK(m != NULL);
    if (m) {
        CHECK_NEAR(score1(m, 0, 0), 1.3f, 0);
        rts_model_unref(m);
    }
    m = load(model("reg:squarederror", "2.5E0", "0", "2", "", "gbtree", one, "0"), &eb);
    CHECK(m != NULL);
    if (m) {
        CHECK_NEAR(score1(m, 0, 0), 3.5, 0);
        rts_model_unref(m);
    }
    EXPECT_ERROR(model("binary:logistic", "1.5", "0", "2", "", "gbtree", one, "0"),
                 "base_score: 1.5 is not a probability");
    EXPECT_ERROR(model("reg:squarederror", "abc", "0", "2", "", "gbtree", one, "0"),
                 "learner.learner_model_param.base_score: expected a number");
}

TEST(multi_class)
{
    struct rts_errbuf eb;
    struct rts_model *m;
    float x[2 * 9], y[3 * 9], y1[3];
    double e[3], s;
    int i, k;

    m = load(model("multi:softprob", "5E-1", "3", "2", "\"a\",\"b\"", "gbtree",
                   STUMP_L "," STUMP_R "," LEAF_TREE "," STUMP_R, "0,1,2,0"),
             &eb);
    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "%s\n", eb.msg);
        return;
    }
    CHECK_INT(rts_model_noutputs(m), 3);
    CHECK_STR(rts_model_objective(m), "multi:softprob");
    CHECK_STR(rts_model_feature_name(m, 0), "a");
    CHECK_STR(rts_model_feature_name(m, 1), "b");
    CHECK(rts_model_feature_name(m, 2) == NULL);
    for (i = 0; i < 9; i++) {
        x[2 * i] = i % 3 == 0 ? NAN : (float)i * 0.1f;
        x[2 * i + 1] = i % 4 == 0 ? NAN : (float)i * 0.5f;
    }
    CHECK_INT(rts_model_predict(m, x, 9, 2, y), RTS_ERR_OK);
    for (i = 0; i < 9; i++) {
        float x0 = x[2 * i], x1 = x[2 * i + 1];
        e[0] = 0.5 + (x0 < 0.5f || isnan(x0) ? -1.0 : 2.0) + (x1 < 3.0f ? 0.25 : -0.75);
        e[1] = 0.5 + (x1 < 3.0f ? 0.25 : -0.75);
        e[2] = 0.5 + 0.125;
        s = exp(e[0]) + exp(e[1]) + exp(e[2]);
        for (k = 0; k < 3; k++) {
            CHECK_NEAR(y[3 * i + k], exp(e[k]) / s, 1e-6);
        }
        CHECK_INT(rts_model_predict(m, x + 2 * i, 1, 2, y1), RTS_ERR_OK);
        for (k = 0; k < 3; k++) {
            CHECK_NEAR(y1[k], y[3 * i + k], 0); /* one row or a batch: the same bits */
        }
    }
    rts_model_unref(m);
    EXPECT_ERROR(model("multi:softprob", "5E-1", "3", "2", "", "gbtree", STUMP_L, "3"),
                 "tree_info[0]: expected an output group 0..2");
    EXPECT_ERROR(model("multi:softprob", "5E-1", "0", "2", "", "gbtree", STUMP_L, "0"),
                 "multi:softprob needs 2 or more classes");
    EXPECT_ERROR(model("binary:logistic", "5E-1", "3", "2", "", "gbtree", STUMP_L, "0"),
                 "num_class: 3 classes with objective binary:logistic");
}

/* A batch (tiles of 8 rows, then single rows) equals row by row, bit for bit. */
TEST(batch_equals_rows)
{
    struct rts_errbuf eb;
    struct rts_model *m;
    float x[2 * 37], y[37], y1;
    int i;

    m = load(model("binary:logistic", "5E-1", "0", "2", "", "gbtree",
                   ODD_TREE "," STUMP_L "," STUMP_R "," LEAF_TREE "," ODD_TREE "," STUMP_R
                            "," STUMP_L "," STUMP_L "," STUMP_R "," ODD_TREE,
                   "0,0,0,0,0,0,0,0,0,0"),
             &eb);
    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "%s\n", eb.msg);
        return;
    }
    for (i = 0; i < 37; i++) {
        x[2 * i] = i % 5 == 0 ? NAN : (float)(i - 18) * 0.07f;
        x[2 * i + 1] = i % 7 == 0 ? NAN : (float)(i % 13);
    }
    CHECK_INT(rts_model_predict(m, x, 37, 2, y), RTS_ERR_OK);
    for (i = 0; i < 37; i++) {
        CHECK_INT(rts_model_predict(m, x + 2 * i, 1, 2, &y1), RTS_ERR_OK);
        CHECK_NEAR(y1, y[i], 0);
        CHECK(y[i] >= 0.0f && y[i] <= 1.0f);
    }
    CHECK_INT(rts_model_predict(m, x, 0, 2, y), RTS_ERR_OK);
    rts_model_unref(m);
}

/* Threshold 0 with missing going left: -0.0 is not < 0, the smallest
 * negative denormal is; infinities take their side. */
TEST(threshold_edges)
{
    struct rts_errbuf eb;
    struct rts_model *m =
        load(reg(TREE("1,-1,-1", "2,-1,-1", "0,0,0", "0,-1,2", "1,0,0", "0,0,0") "," TREE(
                     "1,-1,-1", "2,-1,-1", "1,0,0", "-0.0,10,20", "0,0,0", "0,0,0"),
                 "0,0"),
             &eb);

    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "%s\n", eb.msg);
        return;
    }
    CHECK_NEAR(score1(m, 0.0f, 0.0f), 0.5f + 2.0f + 20.0f, 0);
    CHECK_NEAR(score1(m, -0.0f, -0.0f), 0.5f + 2.0f + 20.0f, 0);
    CHECK_NEAR(score1(m, -1e-45f, -1e-45f), 0.5f + -1.0f + 10.0f, 0);
    CHECK_NEAR(score1(m, 1e-45f, 1e-45f), 0.5f + 2.0f + 20.0f, 0);
    CHECK_NEAR(score1(m, -INFINITY, -INFINITY), 0.5f + -1.0f + 10.0f, 0);
    CHECK_NEAR(score1(m, INFINITY, INFINITY), 0.5f + 2.0f + 20.0f, 0);
    CHECK_NEAR(score1(m, NAN, NAN), 0.5f + -1.0f + 20.0f, 0);
    CHECK_NEAR(score1(m, -FLT_MAX, FLT_MAX), 0.5f + -1.0f + 20.0f, 0);
    rts_model_unref(m);
}

/* More features than the row copy on the stack holds: the on-the-fly path
 * gives the same bits as the narrow model with the same trees. */
TEST(wide_model)
{
    enum { NX = 300, ROWS = 19 };
    struct rts_errbuf eb;
    struct rts_model *narrow, *wide;
    const char *trees = ODD_TREE "," STUMP_L "," STUMP_R "," LEAF_TREE "," STUMP_L "," ODD_TREE
                                 "," STUMP_R "," STUMP_R "," ODD_TREE;
    static float xw[NX * ROWS];
    float xn[2 * ROWS], yn[ROWS], yw[ROWS], y1;
    int i;

    narrow = load(
        model("binary:logitraw", "5E-1", "0", "2", "", "gbtree", trees, "0,0,0,0,0,0,0,0,0"), &eb);
    wide =
        load(model("binary:logitraw", "5E-1", "0", "300", "", "gbtree", trees, "0,0,0,0,0,0,0,0,0"),
             &eb);
    CHECK(narrow != NULL && wide != NULL);
    if (!narrow || !wide) {
        rts_model_unref(narrow);
        rts_model_unref(wide);
        return;
    }
    CHECK_INT(rts_model_nfeatures(wide), NX);
    for (i = 0; i < NX * ROWS; i++) {
        xw[i] = (float)(i % 17) - 8.0f;
    }
    for (i = 0; i < ROWS; i++) {
        xn[2 * i] = xw[NX * i] = i % 4 == 0 ? NAN : (float)(i - 9) * 0.25f;
        xn[2 * i + 1] = xw[NX * i + 1] = i % 3 == 0 ? NAN : (float)(i % 12);
    }
    CHECK_INT(rts_model_predict(narrow, xn, ROWS, 2, yn), RTS_ERR_OK);
    CHECK_INT(rts_model_predict(wide, xw, ROWS, NX, yw), RTS_ERR_OK);
    for (i = 0; i < ROWS; i++) {
        CHECK_NEAR(yw[i], yn[i], 0);
        CHECK_INT(rts_model_predict(wide, xw + NX * i, 1, NX, &y1), RTS_ERR_OK);
        CHECK_NEAR(y1, yn[i], 0);
    }
    rts_model_unref(narrow);
    rts_model_unref(wide);
}

TEST(feature_names)
{
    EXPECT_ERROR(model("reg:squarederror", "5E-1", "0", "2", "\"a\"", "gbtree", STUMP_L, "0"),
                 "learner.feature_names: 1 names but num_feature is 2");
    EXPECT_ERROR(model("reg:squarederror", "5E-1", "0", "2", "\"a\",\"a\"", "gbtree", STUMP_L, "0"),
                 "learner.feature_names[1]: \"a\" repeats feature 0");
    EXPECT_ERROR(model("reg:squarederror", "5E-1", "0", "2", "\"a\",3", "gbtree", STUMP_L, "0"),
                 "learner.feature_names[1]: expected a string");
}

TEST(unsupported)
{
    EXPECT_ERROR(model("reg:squarederror", "5E-1", "0", "2", "", "dart", STUMP_L, "0"),
                 "learner.gradient_booster.name: \"dart\" is not supported");
    EXPECT_ERROR(model("reg:squarederror", "5E-1", "0", "2", "", "gblinear", STUMP_L, "0"),
                 "learner.gradient_booster.name: \"gblinear\" is not supported");
    EXPECT_ERROR(model("rank:pairwise", "5E-1", "0", "2", "", "gbtree", STUMP_L, "0"),
                 "learner.objective.name: \"rank:pairwise\" is not supported (supported: "
                 "binary:logistic, binary:logitraw");
    EXPECT_ERROR(reg(TREE("1,-1,-1", "2,-1,-1", "0,0,0", "0.5,1,2", "1,0,0", "1,0,0"), "0"),
                 "trees[0].split_type[0]: categorical split (type 1) in tree 0 is not supported");
    {
        char cat[1024];
        snprintf(cat, sizeof(cat), "%s",
                 "{\"left_children\":[-1],\"right_children\":[-1],\"split_indices\":[0],"
                 "\"split_conditions\":[1],\"default_left\":[0],\"split_type\":[0],"
                 "\"categories_nodes\":[0]}");
        EXPECT_ERROR(reg(cat, "0"), "trees[0]: categorical splits are not supported");
    }
    {
        const char *m = reg(STUMP_L, "0");
        char *p = strstr(doc, "\"num_target\":\"1\"");
        p[14] = '2';
        EXPECT_ERROR(m, "num_target: 2 targets");
    }
}

TEST(bad_structure)
{
    /* child out of range, named with its key path */
    EXPECT_ERROR(reg(TREE("99,-1,-1", "2,-1,-1", "0,0,0", "0.5,1,2", "1,0,0", "0,0,0"), "0"),
                 "learner.gradient_booster.model.trees[0].left_children[0]: child 99 out of "
                 "range (tree has 3 nodes)");
    EXPECT_ERROR(reg(TREE("1,-1,-1", "15,-1,-1", "0,0,0", "0.5,1,2", "1,0,0", "0,0,0"), "0"),
                 "learner.gradient_booster.model.trees[0].right_children[0]: child 15 out of "
                 "range (tree has 3 nodes)");
    EXPECT_ERROR(reg(STUMP_L "," TREE("1,3,-1,-1", "2,-1,-1,-1", "0,0,0,0", "0.5,1,1,2", "1,0,0,0",
                                      "0,0,0,0"),
                     "0,0"),
                 "trees[1]: node 1 has one child (left 3, right -1)");
    EXPECT_ERROR(reg(TREE("1,-7,-1", "2,-1,-1", "0,0,0", "0.5,1,2", "1,0,0", "0,0,0"), "0"),
                 "trees[0]: node 1 has one child (left -7, right -1)");
    EXPECT_ERROR(reg(TREE("-2,-1,-1", "2,-1,-1", "0,0,0", "0.5,1,2", "1,0,0", "0,0,0"), "0"),
                 "trees[0].left_children[0]: child -2 out of range");
    /* cycles and shared children */
    EXPECT_ERROR(reg(TREE("1,0,-1", "2,2,-1", "0,0,0", "0.5,1,2", "1,0,0", "0,0,0"), "0"),
                 "trees[0].left_children[1]: node 0 is reached twice");
    EXPECT_ERROR(reg(TREE("1,1,-1", "1,2,-1", "0,0,0", "0.5,1,2", "1,0,0", "0,0,0"), "0"),
                 "reached twice");
    EXPECT_ERROR(reg(TREE("0,-1,-1", "2,-1,-1", "0,0,0", "0.5,1,2", "1,0,0", "0,0,0"), "0"),
                 "trees[0].left_children[0]: node 0 is reached twice");
    EXPECT_ERROR(reg(TREE("1,3,-1,1,-1", "2,4,-1,2,-1", "0,0,0,0,0", "0.5,1,2,3,4", "1,0,0,0,0",
                          "0,0,0,0,0"),
                     "0"),
                 "reached twice");
    /* split index beyond num_feature */
    EXPECT_ERROR(reg(TREE("1,-1,-1", "2,-1,-1", "2,0,0", "0.5,1,2", "1,0,0", "0,0,0"), "0"),
                 "trees[0].split_indices[0]: feature 2 out of range (num_feature is 2)");
    EXPECT_ERROR(reg(TREE("1,-1,-1", "2,-1,-1", "-1,0,0", "0.5,1,2", "1,0,0", "0,0,0"), "0"),
                 "trees[0].split_indices[0]: feature -1 out of range");
    /* array lengths */
    EXPECT_ERROR(reg(TREE("1,-1,-1", "2,-1", "0,0,0", "0.5,1,2", "1,0,0", "0,0,0"), "0"),
                 "trees[0].right_children: 2 entries but left_children has 3");
    EXPECT_ERROR(reg(TREE("1,-1,-1", "2,-1,-1", "0,0,0", "0.5,1,2", "1,0,0", "0,0"), "0"),
                 "trees[0].split_type: 2 entries but left_children has 3");
    EXPECT_ERROR(reg(TREE("", "", "", "", "", ""), "0"), "trees[0].left_children: empty tree");
    EXPECT_ERROR(reg(STUMP_L, "0,0"), "tree_info: 2 entries but there are 1 trees");
    EXPECT_ERROR(reg(STUMP_L, "\"0\""), "tree_info[0]: expected an output group");
    EXPECT_ERROR(reg(TREE("1,-1,-1", "2,-1,-1", "0,0,0", "0.5,1,2", "2,0,0", "0,0,0"), "0"),
                 "trees[0].default_left[0]: expected 0 or 1, got 2");
}

TEST(wrong_types)
{
    EXPECT_ERROR("{\"learner\": 3}", "learner: expected an object, got a number");
    EXPECT_ERROR("{\"learner\": {}}", "learner.learner_model_param: missing");
    EXPECT_ERROR(model("reg:squarederror", "5E-1", "0", "x", "", "gbtree", STUMP_L, "0"),
                 "learner.learner_model_param.num_feature: expected a count like \"3\", got "
                 "\"x\"");
    EXPECT_ERROR(model("reg:squarederror", "5E-1", "0", "-2", "", "gbtree", STUMP_L, "0"),
                 "num_feature: expected a count");
    EXPECT_ERROR(model("reg:squarederror", "5E-1", "99999999999999999999999", "2", "", "gbtree",
                       STUMP_L, "0"),
                 "learner.learner_model_param.num_class: out of range");
    EXPECT_ERROR(reg("[]", "0"), "trees[0]: expected an object, got an array");
    EXPECT_ERROR(reg(TREE("1,-1,-1", "2,-1,-1", "0,0,0", "0.5,\"1\",2", "1,0,0", "0,0,0"), "0"),
                 "trees[0].split_conditions[1]: expected a number, got a string");
    EXPECT_ERROR(reg(TREE("1.5,-1,-1", "2,-1,-1", "0,0,0", "0.5,1,2", "1,0,0", "0,0,0"), "0"),
                 "trees[0].left_children[0]: expected an integer, got a number");
    EXPECT_ERROR(reg(TREE("1,-1,-1", "2,-1,-1", "0,0,0", "1e300,1,2", "1,0,0", "0,0,0"), "0"),
                 "trees[0].split_conditions[0]: 1e+300 is not a finite float");
    {
        char t[512];
        snprintf(t, sizeof(t), "%s",
                 "{\"left_children\":{},\"right_children\":[-1],\"split_indices\":[0],"
                 "\"split_conditions\":[1],\"default_left\":[0],\"split_type\":[0]}");
        EXPECT_ERROR(reg(t, "0"), "trees[0].left_children: expected an array, got an object");
    }
    {
        const char *m = model("reg:squarederror", "5E-1", "0", "2", "", "gbtree", STUMP_L, "0");
        char *p = strstr(doc, "\"objective\":{\"name\":\"");
        memcpy(p + 13, "\"nome\"", 6);
        EXPECT_ERROR(m, "learner.objective.name: missing");
    }
    EXPECT_ERROR("[1,2]", "expected a JSON object");
    EXPECT_ERROR("{\"learner\": {\"learner_model_param\"", "not valid JSON");
}

/* Every proper prefix of a valid model fails to load, with a message. */
TEST(truncation_sweep)
{
    char *full;
    size_t n, len, fails = 0;
    struct rts_errbuf eb;
    struct rts_model *m;

    model("multi:softprob", "5E-1", "3", "2", "\"a\",\"b\"", "gbtree",
          STUMP_L "," ODD_TREE "," LEAF_TREE "," STUMP_R, "0,1,2,0");
    len = strlen(doc);
    full = malloc(len);
    CHECK(full != NULL);
    if (!full) {
        return;
    }
    memcpy(full, doc, len);
    m = rts_model_load_mem("m.json", full, len, &eb);
    CHECK(m != NULL);
    rts_model_unref(m);
    for (n = 0; n < len; n++) {
        char *p = malloc(n + 1); /* exact size so that ASan sees any overread */
        memcpy(p, full, n);
        memset(&eb, 0, sizeof(eb));
        m = rts_model_load_mem("m.json", p, n, &eb);
        if (m || eb.code == RTS_ERR_OK || eb.msg[0] == '\0') {
            fails++;
        }
        rts_model_unref(m);
        free(p);
    }
    CHECK_INT(fails, 0);
    free(full);
}

/* Each byte of a valid model replaced in turn by a few others: never a crash. */
TEST(mutation_sweep)
{
    static const char subst[] = {'0', '9', '-', '"', ']', '}', 'x'};
    char *p;
    size_t len, i, k;
    struct rts_errbuf eb;
    struct rts_model *m;
    float x[2] = {0.3f, NAN}, y[3];

    model("multi:softprob", "5E-1", "3", "2", "\"a\",\"b\"", "gbtree",
          STUMP_L "," ODD_TREE "," LEAF_TREE, "0,1,2");
    len = strlen(doc);
    p = malloc(len);
    if (!p) {
        return;
    }
    for (i = 0; i < len; i++) {
        for (k = 0; k < sizeof(subst); k++) {
            memcpy(p, doc, len);
            p[i] = subst[k];
            memset(&eb, 0, sizeof(eb));
            m = rts_model_load_mem("m.json", p, len, &eb);
            if (m) {
                if (rts_model_nfeatures(m) == 2 && rts_model_noutputs(m) <= 3) {
                    CHECK_INT(rts_model_predict(m, x, 1, 2, y), RTS_ERR_OK);
                }
                rts_model_unref(m);
            } else {
                CHECK(eb.msg[0] != '\0');
            }
        }
    }
    free(p);
}

int main(void)
{
    RUN(stump);
    RUN(missing_default_right);
    RUN(two_trees_sum_in_order);
    RUN(odd_shapes);
    RUN(base_score);
    RUN(multi_class);
    RUN(batch_equals_rows);
    RUN(threshold_edges);
    RUN(wide_model);
    RUN(feature_names);
    RUN(unsupported);
    RUN(bad_structure);
    RUN(wrong_types);
    RUN(truncation_sweep);
    RUN(mutation_sweep);
    return TEST_EXIT();
}
