/*
 * test.h - the unit test harness: a test file defines TEST(name) functions and
 * lists them in main() with RUN(name). A failed CHECK prints file:line and the
 * values, marks the test failed and goes on; main returns non-zero if any
 * check failed, which is what ctest reads.
 */
#ifndef RTS_TESTS_TEST_H
#define RTS_TESTS_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        test_checks++;                                                                             \
        if (!(cond)) {                                                                             \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        test_checks++;                                                                             \
        if (va_ != vb_) {                                                                          \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b,  \
                    va_, vb_);                                                                     \
        }                                                                                          \
    } while (0)

/* Doubles equal within @eps; two NaNs are equal (missing == missing). */
#define CHECK_NEAR(a, b, eps)                                                                      \
    do {                                                                                           \
        double va_ = (double)(a), vb_ = (double)(b);                                               \
        test_checks++;                                                                             \
        if (!((isnan(va_) && isnan(vb_)) || fabs(va_ - vb_) <= (eps))) {                           \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: %s ~= %s failed: %.17g != %.17g\n", __FILE__, __LINE__, #a,    \
                    #b, va_, vb_);                                                                 \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *va_ = (a), *vb_ = (b);                                                         \
        test_checks++;                                                                             \
        if (!va_ || !vb_ || strcmp(va_, vb_) != 0) {                                               \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, #a,  \
                    #b, va_ ? va_ : "(null)", vb_ ? vb_ : "(null)");                               \
        }                                                                                          \
    } while (0)

#define TEST(name) static void test_##name(void)
#define RUN(name)                                                                                  \
    do {                                                                                           \
        int before_ = test_failures;                                                               \
        test_##name();                                                                             \
        fprintf(stderr, "%s %s\n", test_failures == before_ ? "ok  " : "FAIL", #name);             \
    } while (0)
#define TEST_EXIT()                                                                                \
    (fprintf(stderr, "%d checks, %d failed\n", test_checks, test_failures), test_failures != 0)

#endif /* RTS_TESTS_TEST_H */
