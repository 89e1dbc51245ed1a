/*
 * fmt.c - number and JSON string formatting of fmt.h.
 *
 * rts_fmt_double tries three ways, cheapest first; every text it writes reads
 * back (strtod) as exactly the same double.
 *
 * 1. Nice decimals. An integral |v| < 2^53 prints as an integer. Otherwise,
 *    for k = 1..9 fractional digits, m is v * 10^k rounded to an integer; if
 *    m / 10^k == v (both operands exact doubles, one correctly rounded
 *    division: exactly what strtod computes for the text "m with k decimals")
 *    the text round-trips. The smallest such k gives the fewest significant
 *    digits: a match at k with a trailing zero would have matched at k - 1,
 *    and a text with more decimals but fewer digits would be a closer decimal
 *    that matched earlier. The loop stops once |v * 10^k| reaches 2^50, where
 *    the product's rounding error (< |m| * 2^-52) could pick the wrong m.
 *
 * 2. Exact shortest, for 1e-11 <= |v| < 2^53 (arbitrary doubles: model
 *    scores, ratios). With v = mv * 2^ev (mv the 53-bit mantissa) and k chosen
 *    so that F = floor(v * 10^k) has 17 digits, v * 10^k = P / 2^t exactly with
 *    P = mv * 5^k (a 128-bit integer; 5^27 fits 64 bits). The n-digit
 *    candidate is F correctly rounded to n digits, decided exactly from the
 *    remainder of P. It reads back as v iff it lies within half an ulp of v,
 *    i.e. |C * 2^(t+1) - 2P| < 5^k in integers (ties go to the even mantissa;
 *    below a power of two the gap under v is half as wide). The first n that
 *    passes, scanning down from 15 (or up to 16, 17), is the shortest: a
 *    shorter decimal padded with zeros is an n-digit decimal, and the correct
 *    n-digit rounding is at least as close. Plain notation down to 1e-9,
 *    like path 1 ("0.000000002"), exponent notation ("1.5e-10", like %g)
 *    below.
 *
 * 3. Whatever is left (|v| < 1e-11, integers beyond 2^53): "%.15g", "%.16g",
 *    "%.17g", each checked with strtod in the same locale, then the locale's
 *    decimal point rewritten as '.'. %.17g always round-trips.
 *
 * unsigned __int128 is a GCC/Clang extension, available on every 64-bit
 * target we build for.
 */
#include "core/fmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char digit_pairs[] = "00010203040506070809"
                                  "10111213141516171819"
                                  "20212223242526272829"
                                  "30313233343536373839"
                                  "40414243444546474849"
                                  "50515253545556575859"
                                  "60616263646566676869"
                                  "70717273747576777879"
                                  "80818283848586878889"
                                  "90919293949596979899";

static const double pow10_tab[10] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

/* Digits of @v right-aligned ending at @end; returns the first digit. */
static char *u64_digits(char *end, uint64_t v)
{
    char *p = end;

    while (v >= 100) {
        unsigned i = (unsigned)(v % 100) * 2;

        v /= 100;
        p -= 2;
        memcpy(p, digit_pairs + i, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, digit_pairs + v * 2, 2);
    } else {
        *--p = (char)('0' + v);
    }
    return p;
}

size_t rts_fmt_u64(char *buf, uint64_t v)
{
    char tmp[20], *p = u64_digits(tmp + sizeof(tmp), v);
    size_t len = (size_t)(tmp + sizeof(tmp) - p);

    memcpy(buf, p, len);
    buf[len] = '\0';
    return len;
}

size_t rts_fmt_i64(char *buf, int64_t v)
{
    if (v < 0) {
        buf[0] = '-';
        /* 0 - (uint64_t)v is |v| even for INT64_MIN */
        return 1 + rts_fmt_u64(buf + 1, 0 - (uint64_t)v);
    }
    return rts_fmt_u64(buf, (uint64_t)v);
}

/* Round half to even for |x| < 2^52 (the FPU's default mode, as nearbyint
 * would, without a libm call): adding 2^52 leaves no fraction bits. */
static double round_even(double x)
{
    const double two52 = 4503599627370496.0;

    return x >= 0 ? (x + two52) - two52 : (x - two52) + two52;
}

/* printf fallback: shortest of %.15g/%.16g/%.17g that reads back, with the
 * locale's decimal point (whatever bytes) rewritten as '.'. */
static size_t fmt_double_slow(char *buf, double v)
{
    char tmp[40];
    int prec;
    size_t i, o = 0;
    int in_point = 0;

    for (prec = 15; prec < 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) {
            break;
        }
    }
    if (prec == 17) {
        snprintf(tmp, sizeof(tmp), "%.17g", v);
    }
    for (i = 0; tmp[i]; i++) {
        char c = tmp[i];

        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e' || c == 'E') {
            buf[o++] = c;
            in_point = 0;
        } else if (!in_point) {
            buf[o++] = '.';
            in_point = 1;
        }
    }
    buf[o] = '\0';
    return o;
}

__extension__ typedef unsigned __int128 fmt_u128;

/* clang-format off */
static const uint64_t pow10_u64[18] = {
    1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull, 100000000ull,
    1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull, 10000000000000ull,
    100000000000000ull, 1000000000000000ull, 10000000000000000ull, 100000000000000000ull};
/* clang-format on */

/* 5^k for k = 0..27 (5^27 < 2^63) */
/* clang-format off */
static const uint64_t pow5_tab[28] = {
    1ull, 5ull, 25ull, 125ull, 625ull, 3125ull, 15625ull, 78125ull, 390625ull, 1953125ull,
    9765625ull, 48828125ull, 244140625ull, 1220703125ull, 6103515625ull, 30517578125ull,
    152587890625ull, 762939453125ull, 3814697265625ull, 19073486328125ull, 95367431640625ull,
    476837158203125ull, 2384185791015625ull, 11920928955078125ull, 59604644775390625ull,
    298023223876953125ull, 1490116119384765625ull, 7450580596923828125ull};
/* clang-format on */

/* Sign, then the digits of @c with the decimal point @frac digits from the
 * right (zeros added as needed on either side); exponent form "d.ddde-XX"
 * when @sci, with @frac then giving the scale. */
static size_t put_decimal(char *buf, int neg, uint64_t c, int frac, int sci)
{
    char tmp[24], *end = tmp + sizeof(tmp), *p = u64_digits(end, c);
    size_t len = (size_t)(end - p), o = 0;
    int e;

    if (neg) {
        buf[o++] = '-';
    }
    if (sci) {
        e = (int)len - 1 - frac;
        buf[o++] = p[0];
        if (len > 1) {
            buf[o++] = '.';
            memcpy(buf + o, p + 1, len - 1);
            o += len - 1;
        }
        buf[o++] = 'e';
        buf[o++] = e < 0 ? '-' : '+';
        e = e < 0 ? -e : e;
        if (e >= 100) {
            buf[o++] = (char)('0' + e / 100);
        }
        buf[o++] = (char)('0' + e / 10 % 10);
        buf[o++] = (char)('0' + e % 10);
    } else if (frac <= 0) {
        memcpy(buf + o, p, len);
        o += len;
        for (; frac < 0; frac++) {
            buf[o++] = '0';
        }
    } else if (len <= (size_t)frac) {
        buf[o++] = '0';
        buf[o++] = '.';
        memset(buf + o, '0', (size_t)frac - len);
        o += (size_t)frac - len;
        memcpy(buf + o, p, len);
        o += len;
    } else {
        memcpy(buf + o, p, len - (size_t)frac);
        o += len - (size_t)frac;
        buf[o++] = '.';
        memcpy(buf + o, p + len - (size_t)frac, (size_t)frac);
        o += (size_t)frac;
    }
    buf[o] = '\0';
    return o;
}

/* |v| * 10^k as pp / 2^t exactly, with f = floor of it (17 digits). */
struct exact {
    uint64_t mv, f, p5;
    fmt_u128 pp, pp2;
    int t;
};

/* Does F rounded to @n digits (into *@c, in units of 10^(17 - n)) read back
 * as v? */
static int exact_try(const struct exact *x, int n, uint64_t *c)
{
    uint64_t d10 = pow10_u64[17 - n], q = x->f / d10;
    /* twice the remainder below q * 10^(17-n), against twice half a unit */
    fmt_u128 rem2 = (x->pp - ((fmt_u128)(q * d10) << x->t)) << 1;
    fmt_u128 unit = (fmt_u128)d10 << x->t, a, diff;

    *c = q + (rem2 > unit || (rem2 == unit && (q & 1))); /* half to even */
    a = (fmt_u128)(*c * d10) << (x->t + 1);
    diff = a > x->pp2 ? a - x->pp2 : x->pp2 - a;
    if (x->mv == (UINT64_C(1) << 52) && a < x->pp2) {
        return diff * 2 <= x->p5; /* below a power of two: half the gap */
    }
    return diff < x->p5 || (diff == x->p5 && !(x->mv & 1));
}

/* Path 2 of the header comment; returns 0 if @v is out of its range. */
static size_t fmt_double_exact(char *buf, double v)
{
    struct exact x;
    uint64_t bits, c, best_c;
    int ev, e10, k, n, best;

    memcpy(&bits, &v, sizeof(bits));
    x.mv = (bits & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1) << 52);
    ev = (int)((bits >> 52) & 0x7ff) - 1075; /* |v| = mv * 2^ev; normal here */
    /* 10^(16 - k) <= |v| < 10^(17 - k): k = 16 - floor(log10 |v|), estimated
     * from the binary exponent (78913 / 2^18 ~ log10 2), off by at most one */
    e10 = (ev + 52) * 78913;
    e10 = e10 >= 0 ? e10 >> 18 : -((-e10 + (1 << 18) - 1) >> 18);
    k = 16 - e10;
    for (;;) {
        if (k < 0 || k > 27) {
            return 0;
        }
        x.p5 = pow5_tab[k];
        x.pp = (fmt_u128)x.mv * x.p5; /* |v| * 10^k = pp * 2^(ev + k) */
        x.t = -(ev + k);
        if (x.t < 0) {
            x.pp <<= -x.t;
            x.t = 0;
        }
        x.f = (uint64_t)(x.pp >> x.t);
        if (x.f < pow10_u64[16]) {
            k++;
        } else if (x.f >= pow10_u64[17]) {
            k--;
        } else {
            break;
        }
    }
    x.pp2 = x.pp << 1;
    if (exact_try(&x, 15, &best_c)) {
        for (best = 15; best > 1 && exact_try(&x, best - 1, &c); best--) {
            best_c = c;
        }
    } else if (exact_try(&x, 16, &best_c)) {
        best = 16;
    } else if (exact_try(&x, 17, &best_c)) {
        best = 17;
    } else {
        return 0; /* cannot happen: 17 digits always read back */
    }
    n = 17 - best; /* the text is best_c * 10^(n - k) */
    while (best_c % 10 == 0) {
        best_c /= 10;
        n++;
    }
    return put_decimal(buf, signbit(v) != 0, best_c, k - n, fabs(v) < 1e-9);
}

size_t rts_fmt_double(char *buf, double v)
{
    const double two50 = 1125899906842624.0, two53 = 9007199254740992.0;
    double a = fabs(v), x, m;
    int k;

    if (!isfinite(v)) {
        memcpy(buf, "null", 5);
        return 4;
    }
    if (a < two53) {
        if (v == 0) {
            if (signbit(v)) {
                memcpy(buf, "-0", 3);
                return 2;
            }
            memcpy(buf, "0", 2);
            return 1;
        }
        if (v == (double)(int64_t)v) {
            return rts_fmt_i64(buf, (int64_t)v);
        }
    }
    if (a >= 5e-10 && a < two50) {
        for (k = 1; k <= 9; k++) {
            x = v * pow10_tab[k];
            if (fabs(x) >= two50) {
                break;
            }
            m = round_even(x);
            /* Cheap filter before the division: a true match has
             * |x - m| <= |m| * 2^-52 (two roundings). */
            if (m != 0 && fabs(x - m) <= fabs(x) * 1e-15 && m / pow10_tab[k] == v) {
                return put_decimal(buf, m < 0, (uint64_t)fabs(m), k, 0);
            }
        }
    }
    if (a >= 1e-11 && a < two53) {
        size_t n = fmt_double_exact(buf, v);

        if (n) {
            return n;
        }
    }
    return fmt_double_slow(buf, v);
}

/* Length of the valid UTF-8 sequence at @s (@n bytes left, s[0] >= 0x80),
 * or 0 if invalid (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len, i;

    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) {
            lo = 0xA0;
        } else if (c == 0xED) {
            hi = 0x9F;
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) {
            lo = 0x90;
        } else if (c == 0xF4) {
            hi = 0x8F;
        }
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) {
            return 0;
        }
    }
    return len;
}

/* 0: copy as is; 1: escape; 2: UTF-8 lead or invalid byte. */
static unsigned char json_class(unsigned char c)
{
    if (c < 0x20 || c == '"' || c == '\\') {
        return 1;
    }
    return c >= 0x80 ? 2 : 0;
}

size_t rts_fmt_escape_byte(char *out, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    static const char short_form[] = {['"'] = '"', ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
                                      ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};

    if (c < sizeof(short_form) && short_form[c]) {
        out[0] = '\\';
        out[1] = short_form[c];
        return 2;
    }
    if (c < 0x20 || c == 0x7f) {
        memcpy(out, "\\u00", 4);
        out[4] = hex[c >> 4];
        out[5] = hex[c & 15];
        return 6;
    }
    out[0] = (char)c;
    return 1;
}

size_t rts_fmt_json_str(char *buf, size_t cap, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, o = 0, run, len;
    char esc[8];

    if (cap < 3) {
        return 0;
    }
    buf[o++] = '"';
    while (i < n) {
        run = i;
        while (run < n && json_class(u[run]) == 0) {
            run++;
        }
        if (run > i) {
            /* room for the run, the closing quote and the NUL */
            if (cap - o < run - i + 2) {
                return 0;
            }
            memcpy(buf + o, s + i, run - i);
            o += run - i;
            i = run;
            continue;
        }
        if (json_class(u[i]) == 2) {
            len = utf8_len(u + i, n - i);
            if (len) {
                if (cap - o < len + 2) {
                    return 0;
                }
                memcpy(buf + o, s + i, len);
                o += len;
                i += len;
                continue;
            }
            memcpy(esc, "\\ufffd", 6);
            len = 6;
        } else {
            len = rts_fmt_escape_byte(esc, u[i]);
        }
        if (cap - o < len + 2) {
            return 0;
        }
        memcpy(buf + o, esc, len);
        o += len;
        i++;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return o;
}
