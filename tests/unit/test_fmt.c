/*
 * test_fmt.c - unit tests of core/fmt and core/log (log has no test file of
 * its own: what it adds is formatting). fmt: integers at their limits,
 * doubles (exact strings for nice decimals, shortest digits on random nice
 * decimals, and a 1M-value strtod round trip over random bit patterns and
 * random decimals), JSON string escapes and UTF-8 handling. log: the line
 * layout through rts_log_set_fd, quoting, levels, truncation, the per-site
 * rate limit with its suppressed count, and whole lines from concurrent
 * threads.
 */
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/fmt.h"
#include "core/log.h"
#include "test.h"

static uint64_t rng_state = 88172645463325252u;

static uint64_t rng(void)
{
    uint64_t x = rng_state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static const char *fd(double v)
{
    static char buf[RTS_FMT_DOUBLE_MAX];
    size_t n = rts_fmt_double(buf, v);

    return n == strlen(buf) ? buf : "(bad length)";
}

TEST(integers)
{
    char b[RTS_FMT_INT_MAX];

    CHECK_INT(rts_fmt_u64(b, 0), 1);
    CHECK_STR(b, "0");
    rts_fmt_u64(b, 9);
    CHECK_STR(b, "9");
    rts_fmt_u64(b, 10);
    CHECK_STR(b, "10");
    rts_fmt_u64(b, 100);
    CHECK_STR(b, "100");
    CHECK_INT(rts_fmt_u64(b, UINT64_MAX), 20);
    CHECK_STR(b, "18446744073709551615");
    CHECK_INT(rts_fmt_i64(b, INT64_MIN), 20);
    CHECK_STR(b, "-9223372036854775808");
    rts_fmt_i64(b, INT64_MAX);
    CHECK_STR(b, "9223372036854775807");
    rts_fmt_i64(b, -1);
    CHECK_STR(b, "-1");
    rts_fmt_i64(b, 1700000000123);
    CHECK_STR(b, "1700000000123");
}

TEST(integers_random)
{
    char b[RTS_FMT_INT_MAX], want[32];
    size_t i, bad = 0;
    int64_t v;

    for (i = 0; i < 100000; i++) {
        v = (int64_t)(rng() >> (rng() % 64));
        if (i % 2) {
            v = -v;
        }
        snprintf(want, sizeof(want), "%lld", (long long)v);
        if (rts_fmt_i64(b, v) != strlen(want) || strcmp(b, want) != 0) {
            bad++;
        }
    }
    CHECK_INT(bad, 0);
}

TEST(double_exact)
{
    CHECK_STR(fd(0.0), "0");
    CHECK_STR(fd(-0.0), "-0");
    CHECK_STR(fd(3), "3");
    CHECK_STR(fd(-3), "-3");
    CHECK_STR(fd(0.1), "0.1");
    CHECK_STR(fd(-0.1), "-0.1");
    CHECK_STR(fd(42.17), "42.17");
    CHECK_STR(fd(0.931), "0.931");
    CHECK_STR(fd(0.9312345), "0.9312345");
    CHECK_STR(fd(1e-7), "0.0000001");
    CHECK_STR(fd(123456.789), "123456.789");
    CHECK_STR(fd(0.3), "0.3");
    CHECK_STR(fd(0.1 + 0.2), "0.30000000000000004");
    CHECK_STR(fd(1.0 / 3), "0.3333333333333333");
    CHECK_STR(fd(2.5), "2.5");
    CHECK_STR(fd(1e15), "1000000000000000");
    CHECK_STR(fd(9007199254740991.0), "9007199254740991");
    CHECK_STR(fd(9007199254740992.0), "9007199254740992");
    CHECK_STR(fd(1e22), "1e+22");
    CHECK_STR(fd(1e-10), "1e-10");
    CHECK(strtod(fd(5e-324), NULL) == 5e-324); /* %.15g: not always the shortest */
    /* the exact path: arbitrary doubles, float scores, small values */
    CHECK_STR(fd((double)0.93123448f), "0.9312344789505005");
    CHECK_STR(fd(1.2345678901e-5), "0.000012345678901");
    CHECK_STR(fd(-1.2345678901e-5), "-0.000012345678901");
    CHECK_STR(fd(3.2e-9), "0.0000000032");
    CHECK_STR(fd(2e-9), "0.000000002");
    CHECK_STR(fd(3.2e-10), "3.2e-10");
    CHECK_STR(fd(-1.2345678901234567e-9), "-0.0000000012345678901234566"); /* the longest */
    CHECK_STR(fd(-9.87654321e-10), "-9.87654321e-10");
    CHECK_STR(fd(1.234567891234e-11), "1.234567891234e-11");
    CHECK_STR(fd(2251799813685248.5), "2251799813685248.5");
    CHECK_STR(fd(-2251799813685247.5), "-2251799813685247.5");
    CHECK_STR(fd(0.1 + 0.7), "0.7999999999999999");
    CHECK_STR(fd(1.5e-7), "0.00000015");
    CHECK_STR(fd(1.0000000000000002), "1.0000000000000002");
    CHECK_STR(fd(0.9999999999999999), "0.9999999999999999");
    CHECK_STR(fd(NAN), "null");
    CHECK_STR(fd(INFINITY), "null");
    CHECK_STR(fd(-INFINITY), "null");
    CHECK(strtod(fd(1.7976931348623157e308), NULL) == 1.7976931348623157e308);
    CHECK(strlen(fd(-2.2250738585072014e-308)) < RTS_FMT_DOUBLE_MAX);
}

/* The text a decimal m / 10^k should print as: m's digits with the point
 * inserted and trailing fractional zeros removed. */
static void decimal_text(char *out, size_t cap, int64_t m, int k)
{
    char digits[32];
    size_t len, o = 0;
    int neg = m < 0, i;

    snprintf(digits, sizeof(digits), "%llu",
             (unsigned long long)(neg ? 0 - (uint64_t)m : (uint64_t)m));
    len = strlen(digits);
    while (k > 0 && len > 1 && digits[len - 1] == '0') {
        digits[--len] = '\0';
        k--;
    }
    if (m == 0) {
        snprintf(out, cap, "0");
        return;
    }
    if (neg) {
        out[o++] = '-';
    }
    if (k == 0) {
        snprintf(out + o, cap - o, "%s", digits);
    } else if ((int)len <= k) {
        out[o++] = '0';
        out[o++] = '.';
        for (i = (int)len; i < k; i++) {
            out[o++] = '0';
        }
        snprintf(out + o, cap - o, "%s", digits);
    } else {
        memcpy(out + o, digits, len - (size_t)k);
        o += len - (size_t)k;
        out[o++] = '.';
        snprintf(out + o, cap - o, "%s", digits + len - (size_t)k);
    }
}

/* Nice decimals (up to 12 significant digits, up to 9 decimals) print as
 * exactly their shortest decimal text. */
TEST(double_shortest)
{
    char want[48];
    size_t i, bad = 0;
    int64_t m;
    int k;
    double v;

    for (i = 0; i < 200000; i++) {
        m = (int64_t)(rng() % (i % 3 ? 100000000 : 1000000000000));
        k = (int)(rng() % 10);
        if (rng() % 2) {
            m = -m;
        }
        if (m == 0) {
            continue;
        }
        decimal_text(want, sizeof(want), m, k);
        v = strtod(want, NULL);
        if (strcmp(fd(v), want) != 0) {
            if (bad < 5) {
                fprintf(stderr, "  shortest: want %s got %s\n", want, fd(v));
            }
            bad++;
        }
    }
    CHECK_INT(bad, 0);
}

/* Significant digits of a formatted number. */
static int sig_digits(const char *s)
{
    int n = 0, lead = 1;

    for (; *s && *s != 'e'; s++) {
        if (*s >= '1' && *s <= '9') {
            lead = 0;
        }
        if (*s >= '0' && *s <= '9' && !lead) {
            n++;
        }
    }
    return n;
}

/* Arbitrary doubles in the exact path's range: as few digits as the smallest
 * correctly rounded "%.*e" that reads back. */
TEST(double_shortest_random)
{
    char ref[40];
    size_t i, bad = 0;
    uint64_t bits;
    double v;
    int n;

    for (i = 0; i < 30000; i++) {
        if (i < 3 * 90) {
            /* powers of two (the asymmetric gap) and their neighbours */
            v = ldexp(1, (int)(i / 3) - 37);
            v = i % 3 == 0 ? v : i % 3 == 1 ? nextafter(v, 0) : nextafter(v, INFINITY);
        } else if (i % 2) {
            v = (double)(rng() >> 11) / 9007199254740992.0;
        } else {
            bits = rng();
            memcpy(&v, &bits, sizeof(v));
            v = fmod(fabs(v), 1e9);
            if (!isfinite(v)) {
                continue;
            }
        }
        if (!(v >= 1e-11 && v < 9007199254740992.0) || v == floor(v)) {
            continue; /* out of range, or an integer (printed in full) */
        }
        for (n = 1; n <= 17; n++) {
            snprintf(ref, sizeof(ref), "%.*e", n - 1, v);
            if (strtod(ref, NULL) == v) {
                break;
            }
        }
        if (sig_digits(fd(v)) != n) {
            if (bad < 5) {
                fprintf(stderr, "  shortest: %s has %d digits, %s\n", fd(v), n, ref);
            }
            bad++;
        }
    }
    CHECK_INT(bad, 0);
}

/* 1M round trips: half random bit patterns, half random decimals. */
TEST(double_roundtrip)
{
    char want[48];
    size_t i, bad = 0, slow = 0, n;
    uint64_t bits;
    double v, back;
    const char *s;

    for (i = 0; i < 1000000; i++) {
        if (i % 2) {
            bits = rng();
            memcpy(&v, &bits, sizeof(v));
            if (!isfinite(v)) {
                continue;
            }
        } else {
            decimal_text(want, sizeof(want),
                         (int64_t)(rng() % 10000000000000000) - 5000000000000000,
                         (int)(rng() % 20));
            v = strtod(want, NULL);
            if (i % 10 == 0) {
                v *= pow(10, (double)(rng() % 40) - 20);
            }
        }
        s = fd(v);
        n = strlen(s);
        back = strtod(s, NULL);
        if (memcmp(&back, &v, sizeof(v)) != 0 || n >= RTS_FMT_DOUBLE_MAX || strchr(s, ',')) {
            if (bad < 5) {
                fprintf(stderr, "  roundtrip: %.17g printed as %s\n", v, s);
            }
            bad++;
        }
        slow += strchr(s, 'e') != NULL;
    }
    CHECK_INT(bad, 0);
    CHECK(slow > 0);
}

/* If a locale with a decimal comma is installed, output still uses '.'. */
TEST(double_locale)
{
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "ru_RU.UTF-8"};
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (setlocale(LC_NUMERIC, names[i])) {
            break;
        }
    }
    if (i == sizeof(names) / sizeof(names[0])) {
        fprintf(stderr, "     (no decimal-comma locale installed: skipped)\n");
        return;
    }
    CHECK_STR(fd(0.1 + 0.2), "0.30000000000000004");
    CHECK_STR(fd(1.5e-20), "1.5e-20");
    CHECK_STR(fd(42.17), "42.17");
    setlocale(LC_NUMERIC, "C");
}

static const char *js(const char *s, size_t n)
{
    static char buf[512];

    return rts_fmt_json_str(buf, sizeof(buf), s, n) ? buf : "(0)";
}

TEST(json_str)
{
    char small[8];

    CHECK_STR(js("", 0), "\"\"");
    CHECK_STR(js("abc", 3), "\"abc\"");
    CHECK_STR(js("a\"b\\c/", 6), "\"a\\\"b\\\\c/\"");
    CHECK_STR(js("\n\r\t\b\f", 5), "\"\\n\\r\\t\\b\\f\"");
    CHECK_STR(js("\x01\x1f\x7f", 3), "\"\\u0001\\u001f\x7f\"");
    CHECK_STR(js("a\0b", 3), "\"a\\u0000b\"");
    /* valid UTF-8: 2, 3, 4 bytes, and the edges */
    CHECK_STR(js("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14),
              "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    CHECK_STR(js("\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf", 14),
              "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf\"");
    /* invalid: each byte of a bad sequence becomes \ufffd */
    CHECK_STR(js("\xff", 1), "\"\\ufffd\"");
    CHECK_STR(js("a\x80z", 3), "\"a\\ufffdz\"");
    CHECK_STR(js("\xc0\xaf", 2), "\"\\ufffd\\ufffd\"");                       /* overlong '/' */
    CHECK_STR(js("\xe0\x80\xaf", 3), "\"\\ufffd\\ufffd\\ufffd\"");            /* overlong */
    CHECK_STR(js("\xed\xa0\x80", 3), "\"\\ufffd\\ufffd\\ufffd\"");            /* surrogate */
    CHECK_STR(js("\xf4\x90\x80\x80", 4), "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
    CHECK_STR(js("\xe2\x82", 2), "\"\\ufffd\\ufffd\"");                       /* truncated */
    CHECK_STR(js("\xe2\x82x", 3), "\"\\ufffd\\ufffdx\"");
    /* capacity: text + NUL */
    CHECK_INT(rts_fmt_json_str(small, 8, "abcde", 5), 7);
    CHECK_STR(small, "\"abcde\"");
    CHECK_INT(rts_fmt_json_str(small, 7, "abcde", 5), 0);
    CHECK_INT(rts_fmt_json_str(small, 7, "ab\n", 3), 6);
    CHECK_STR(small, "\"ab\\n\"");
    CHECK_INT(rts_fmt_json_str(small, 6, "ab\n", 3), 0);
    CHECK_INT(rts_fmt_json_str(small, 8, "\x01", 1), 0);
    CHECK_INT(rts_fmt_json_str(small, 2, "", 0), 0);
    CHECK_INT(rts_fmt_json_str(small, 3, "", 0), 2);
}

/* A minimal JSON string decoder: returns the decoded length or -1. */
static long json_decode(const char *s, size_t n, char *out)
{
    size_t i, o = 0;
    unsigned u;

    if (n < 2 || s[0] != '"' || s[n - 1] != '"') {
        return -1;
    }
    for (i = 1; i + 1 < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == '"') {
            return -1;
        }
        if (s[i] != '\\') {
            out[o++] = s[i];
            continue;
        }
        i++;
        switch (s[i]) {
        case '"':
        case '\\':
        case '/':
            out[o++] = s[i];
            break;
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u':
            if (sscanf(s + i + 1, "%4x", &u) != 1 || (u >= 0x80 && u != 0xfffd)) {
                return -1;
            }
            if (u == 0xfffd) {
                memcpy(out + o, "\xef\xbf\xbd", 3);
                o += 3;
            } else {
                out[o++] = (char)u;
            }
            i += 4;
            break;
        default:
            return -1;
        }
    }
    return (long)o;
}

/* Random strings of ASCII, controls and valid UTF-8 decode back to
 * themselves; random bytes always give a string the decoder accepts. */
TEST(json_str_random)
{
    static const char *const pieces[] = {
        "a",    "Z",    " ", "\"",       "\\",           "\n",
        "\x01", "\x1f", "/", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
        "\x7f"};
    char in[256], out[2048], dec[2048];
    size_t i, j, n, len, bad = 0, bad_any = 0;
    long d;

    for (i = 0; i < 20000; i++) {
        n = 0;
        for (j = rng() % 40; j > 0; j--) {
            const char *p = pieces[rng() % (sizeof(pieces) / sizeof(pieces[0]))];

            memcpy(in + n, p, strlen(p));
            n += strlen(p);
        }
        len = rts_fmt_json_str(out, sizeof(out), in, n);
        d = json_decode(out, len, dec);
        if (!len || d != (long)n || memcmp(dec, in, n) != 0) {
            bad++;
        }
        for (j = 0; j < 64; j++) {
            in[j] = (char)rng();
        }
        len = rts_fmt_json_str(out, sizeof(out), in, 64);
        if (!len || json_decode(out, len, dec) < 0) {
            bad_any++;
        }
    }
    CHECK_INT(bad, 0);
    CHECK_INT(bad_any, 0);
}

/* ---- log ---- */

static int log_pipe[2];
static const char *volatile null_str; /* NULL, hidden from -Wformat-overflow */

/* Everything written to the log pipe so far (non-blocking read). */
static size_t log_read(char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;

    while (n + 1 < cap) {
        struct timespec ts = {0, 1000000};

        r = read(log_pipe[0], buf + n, cap - 1 - n);
        if (r <= 0) {
            break;
        }
        n += (size_t)r;
        nanosleep(&ts, NULL);
    }
    buf[n] = '\0';
    return n;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* "ts=YYYY-MM-DDTHH:MM:SS.mmmZ " */
#define TS_LEN 28
static int ts_ok(const char *s)
{
    static const char pat[] = "ts=dddd-dd-ddTdd:dd:dd.dddZ ";
    size_t i;

    for (i = 0; pat[i]; i++) {
        if (pat[i] == 'd' ? !is_digit(s[i]) : s[i] != pat[i]) {
            return 0;
        }
    }
    return 1;
}

TEST(log_lines)
{
    char buf[16384];
    const char *rest;
    enum rts_log_level l;

    CHECK_INT(pipe(log_pipe), 0);
    CHECK_INT(fcntl(log_pipe[0], F_SETFL, O_NONBLOCK), 0);
    CHECK_INT(rts_log_set_fd(log_pipe[1]), 2);
    rts_log(RTS_LOG_INFO, "worker started", "worker=%d", 1);
    log_read(buf, sizeof(buf));
    CHECK(ts_ok(buf));
    rest = buf + TS_LEN;
    CHECK(memcmp(buf, "ts=20", 5) == 0);
    CHECK_STR(rest, "level=info msg=\"worker started\" worker=1\n");

    rts_log(RTS_LOG_WARN, "x", "path=%s empty=%s q=%s eq=%s nl=%s ctl=%s pct=%d%% n=%5.2f u=%zu",
            "a b", "", "say \"hi\"", "a=b", "l1\nl2", "\x01", 50, 3.14159, (size_t)7);
    log_read(buf, sizeof(buf));
    CHECK(ts_ok(buf));
    CHECK_STR(buf + TS_LEN, "level=warn msg=x path=\"a b\" empty=\"\" q=\"say \\\"hi\\\"\" "
                            "eq=\"a=b\" nl=\"l1\\nl2\" ctl=\"\\u0001\" pct=50% n=\" 3.14\" u=7\n");

    /* quotes in the format mean "quote this", spaces allowed inside */
    rts_log(RTS_LOG_ERROR, "quoted", "error=\"%s\" m=\"at %s: %d\" x=\"\" end=%d", "bad \"id\"",
            "f.yaml", 3, 1);
    log_read(buf, sizeof(buf));
    CHECK_STR(buf + TS_LEN, "level=error msg=quoted error=\"bad \\\"id\\\"\" "
                            "m=\"at f.yaml: 3\" x=\"\" end=1\n");
    rts_log(RTS_LOG_ERROR, "quoted word", "e=\"%s\"", "word");
    log_read(buf, sizeof(buf));
    CHECK_STR(buf + TS_LEN, "level=error msg=\"quoted word\" e=\"word\"\n");

    rts_log(RTS_LOG_ERROR, "no pairs", NULL);
    log_read(buf, sizeof(buf));
    CHECK_STR(buf + TS_LEN, "level=error msg=\"no pairs\"\n");

    rts_log(RTS_LOG_INFO, "types", "ll=%lld hx=%#x c=%c p=%s w=%*d pr=%.*s str=%s", -5LL, 255u, 'z',
            "tail", 4, 7, 2, "abc", null_str);
    log_read(buf, sizeof(buf));
    CHECK_STR(buf + TS_LEN, "level=info msg=types ll=-5 hx=0xff c=z p=tail w=\"   7\" pr=ab "
                            "str=(null)\n");

    /* levels */
    rts_log(RTS_LOG_DEBUG, "hidden", NULL);
    CHECK_INT(log_read(buf, sizeof(buf)), 0);
    CHECK(!rts_log_enabled(RTS_LOG_DEBUG));
    rts_log_set_level(RTS_LOG_DEBUG);
    rts_log(RTS_LOG_DEBUG, "shown", NULL);
    log_read(buf, sizeof(buf));
    CHECK_STR(buf + TS_LEN, "level=debug msg=shown\n");
    rts_log_set_level(RTS_LOG_ERROR);
    rts_log(RTS_LOG_WARN, "hidden warn", NULL);
    CHECK_INT(log_read(buf, sizeof(buf)), 0);
    rts_log_set_level(RTS_LOG_INFO);

    CHECK_INT(rts_log_level_parse("WARN", &l), 0);
    CHECK_INT(l, RTS_LOG_WARN);
    CHECK_INT(rts_log_level_parse("warning", &l), 0);
    CHECK_INT(rts_log_level_parse("debug", &l), 0);
    CHECK_INT(l, RTS_LOG_DEBUG);
    CHECK_INT(rts_log_level_parse("Error", &l), 0);
    CHECK_INT(l, RTS_LOG_ERROR);
    CHECK_INT(rts_log_level_parse("verbose", &l), -1);
    CHECK_INT(l, RTS_LOG_ERROR);
    CHECK_INT(rts_log_level_parse(NULL, &l), -1);
    CHECK_STR(rts_log_level_name(RTS_LOG_INFO), "info");
}

TEST(log_truncation)
{
    char big[3000], buf[16384];
    size_t n;

    memset(big, '"', sizeof(big) - 1); /* every byte doubles when escaped */
    big[sizeof(big) - 1] = '\0';
    rts_log(RTS_LOG_INFO, "long", "a=%s b=%s c=%s d=%s", big, big, big, big);
    n = log_read(buf, sizeof(buf));
    CHECK(n <= RTS_LOG_LINE_MAX);
    CHECK(n > RTS_LOG_LINE_MAX - 32);
    CHECK(n > 14 && memcmp(buf + n - 14, "\" truncated=1\n", 14) == 0);
    CHECK(strchr(buf, '\n') == buf + n - 1);
    /* a single value is cut at 1024 bytes, marked with "..." */
    memset(big, 'x', sizeof(big) - 1);
    rts_log(RTS_LOG_INFO, "long value", "v=%s", big);
    n = log_read(buf, sizeof(buf));
    CHECK(n < 1200);
    CHECK(n > 5 && memcmp(buf + n - 5, "x...\n", 5) == 0);
}

static void sleep_to_next_second(void)
{
    uint64_t now = rts_now_ns();
    long left = (long)(1000000000u - now % 1000000000u) + 1000000;
    struct timespec ts = {left / 1000000000L, left % 1000000000L};

    nanosleep(&ts, NULL);
}

TEST(log_rate_limit)
{
    char buf[16384], *p;
    size_t i, lines = 0;

    sleep_to_next_second();
    for (i = 0; i < 25; i++) {
        rts_log(RTS_LOG_WARN, "flood", "i=%zu", i);
    }
    rts_log(RTS_LOG_WARN, "another site", NULL);
    log_read(buf, sizeof(buf));
    for (p = buf; (p = strchr(p, '\n')); p++) {
        lines++;
    }
    CHECK_INT(lines, RTS_LOG_BURST + 1);
    CHECK(strstr(buf, "i=9\n") != NULL);
    CHECK(strstr(buf, "i=10\n") == NULL);
    CHECK(strstr(buf, "another site") != NULL);
    sleep_to_next_second();
    rts_log(RTS_LOG_WARN, "flood", "i=%zu", (size_t)99);
    rts_log(RTS_LOG_WARN, "flood", "i=%zu", (size_t)100);
    log_read(buf, sizeof(buf));
    p = strchr(buf, '\n');
    CHECK(p && p - buf > TS_LEN && strncmp(p - 18, "i=99 suppressed=15", 18) == 0);
    CHECK(p && strstr(p, "i=100\n") != NULL && strstr(p, "suppressed") == NULL);
}

/* Concurrent threads: each line arrives whole. */
#define LT_THREADS 4

static void *log_thread(void *arg)
{
    char v[2000];
    int id = (int)(intptr_t)arg, i;

    memset(v, 'a' + id, sizeof(v) - 1);
    v[sizeof(v) - 1] = '\0';
    for (i = 0; i < RTS_LOG_BURST; i++) {
        /* one call site per thread, or the rate limit would apply */
        switch (id) {
        case 0:
            rts_log(RTS_LOG_INFO, "concurrent", "t=%d v=%.1000s end=1", id, v);
            break;
        case 1:
            rts_log(RTS_LOG_INFO, "concurrent", "t=%d v=%.1000s end=1 ", id, v);
            break;
        case 2:
            rts_log(RTS_LOG_INFO, "concurrent", "t=%d v=%.1000s end=1  ", id, v);
            break;
        default:
            rts_log(RTS_LOG_INFO, "concurrent", "t=%d v=%.1000s end=1   ", id, v);
            break;
        }
    }
    return NULL;
}

TEST(log_concurrent)
{
    char path[] = "/tmp/rts_test_log_XXXXXX", *buf, *line, *nl;
    pthread_t t[LT_THREADS];
    int fdl, i, prev;
    size_t good = 0, total = 0, n;

    fdl = mkstemp(path);
    CHECK(fdl >= 0);
    unlink(path);
    prev = rts_log_set_fd(fdl);
    sleep_to_next_second();
    for (i = 0; i < LT_THREADS; i++) {
        pthread_create(&t[i], NULL, log_thread, (void *)(intptr_t)i);
    }
    for (i = 0; i < LT_THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    rts_log_set_fd(prev);
    n = (size_t)lseek(fdl, 0, SEEK_END);
    buf = malloc(n + 1);
    CHECK(pread(fdl, buf, n, 0) == (ssize_t)n);
    buf[n] = '\0';
    for (line = buf; (nl = strchr(line, '\n')); line = nl + 1) {
        char want[1100];

        total++;
        *nl = '\0';
        if (!ts_ok(line) || strlen(line) < TS_LEN + 40) {
            continue;
        }
        i = line[TS_LEN + 28] - '0'; /* after "level=info msg=concurrent t=" */
        if (i < 0 || i >= LT_THREADS) {
            continue;
        }
        snprintf(want, sizeof(want), "level=info msg=concurrent t=%d v=", i);
        if (strncmp(line + TS_LEN, want, strlen(want)) == 0 &&
            strlen(line + TS_LEN) == strlen(want) + 1000 + 6 &&
            strcmp(line + strlen(line) - 6, " end=1") == 0) {
            good++;
        }
    }
    CHECK_INT(total, LT_THREADS * RTS_LOG_BURST);
    CHECK_INT(good, LT_THREADS * RTS_LOG_BURST);
    free(buf);
    close(fdl);
}

int main(void)
{
    RUN(integers);
    RUN(integers_random);
    RUN(double_exact);
    RUN(double_shortest);
    RUN(double_shortest_random);
    RUN(double_roundtrip);
    RUN(double_locale);
    RUN(json_str);
    RUN(json_str_random);
    RUN(log_lines);
    RUN(log_truncation);
    RUN(log_rate_limit);
    RUN(log_concurrent);
    rts_log_set_fd(2);
    return TEST_EXIT();
}
