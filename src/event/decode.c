/*
 * decode.c - one pass over a JSON message into an event record.
 *
 * Record layout (all offsets from the record start, little or big endian as
 * the host, never pointers):
 *
 *   struct rec_hdr                      48 bytes
 *   slot[nfields]                       8 bytes each: a double (numbers, bools,
 *                                       timestamps; NaN = missing) or
 *                                       (len << 32 | off) for strings (off 0 =
 *                                       missing)
 *   payload                             the raw message, len bytes
 *   >= PAD zero bytes                   the sentinel the scanner relies on
 *   tail                                unescaped strings, string defaults
 *
 * The message is copied first and parsed in its copy: the zero bytes after it
 * stop every scanning loop without a bounds check (a NUL is not whitespace,
 * not a digit, and a control character inside a string), and every read is at
 * most a few bytes past one known to be before the end, inside the padding.
 * A string without escapes is not copied again: its slot points into the
 * payload copy. A string with escapes is unescaped into the tail; a string
 * that is only validated (unknown fields, keys) is unescaped there as scratch
 * without advancing the tail. Unescaping never grows a string and every
 * string occupies its own bytes of the message, so the tail never needs more
 * than len bytes plus the string defaults: rts_decode checks the capacity
 * once, up front. The copy is modified only to put a NUL after a number
 * handed to strtod, and restored at once.
 */
#define RTS_SCHEMA_PRIVATE
#include "event/decode.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

#define PAD 16                       /* zero bytes after the payload copy, at least */
#define MAX_DEPTH 64                 /* the top-level object is depth 1 */
#define TS_MS_END 253402300800000.0  /* 10000-01-01T00:00:00Z */
#define TS_MS_THRESHOLD 1e11         /* numbers >= this are epoch ms, below epoch s */
#define INT_LIMIT 9007199254740992.0 /* 2^53 */

struct rec_hdr {
    uint32_t size;
    uint32_t nfields;
    uint64_t key_hash;
    int64_t ts_ms;
    uint32_t payload_off, payload_len;
    uint32_t id_off, id_len;
    uint32_t key_off, key_len;
};

_Static_assert(sizeof(struct rec_hdr) == 48, "record header is 48 bytes");

static const char *const reason_names[] = {
#define RTS_DLQ_NAME(name, str) str,
    RTS_DLQ_REASONS(RTS_DLQ_NAME)
#undef RTS_DLQ_NAME
};

const char *rts_dlq_reason_name(enum rts_dlq_reason r)
{
    return (unsigned)r < RTS_DLQ__COUNT ? reason_names[r] : "unknown";
}

int rts_dlq_reason_parse(const char *s, enum rts_dlq_reason *out)
{
    unsigned i;

    for (i = 0; s && i < RTS_DLQ__COUNT; i++) {
        if (strcmp(s, reason_names[i]) == 0) {
            *out = (enum rts_dlq_reason)i;
            return 0;
        }
    }
    return -1;
}

/* Bytes that end the fast scan of a string: controls, quote, backslash, non-ASCII. */
static const uint8_t str_special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

static const uint8_t ws_char[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* Exact powers of ten for Clinger's fast path. */
static const double pow10_tab[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

struct dec {
    const struct rts_schema *s;
    char *rec;
    char *base;          /* the payload copy; base[len..len+PAD) are zero */
    const char *end;     /* base + len */
    char *tail;          /* next free byte for unescaped strings */
    uint64_t *slot;      /* nfields record slots */
    const char *cur_key; /* raw bytes of the current top-level key, for messages */
    uint32_t cur_key_n;
    struct rts_decode_err *err;
};

static inline int is_digit(char c)
{
    return (unsigned char)(c - '0') < 10;
}

static inline const char *skip_ws(const char *p)
{
    while (ws_char[(unsigned char)*p]) {
        p++;
    }
    return p;
}

static inline uint64_t slot_str(uint32_t off, uint32_t n)
{
    return ((uint64_t)n << 32) | off;
}

static inline uint64_t slot_num(double v)
{
    uint64_t u;

    memcpy(&u, &v, sizeof(u));
    return u;
}

static inline size_t round8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* ---- error reporting (cold) ---- */

/* Printable, bounded copy of @n bytes at @p for a message. */
static const char *snip(const char *p, size_t n, char *buf, size_t cap)
{
    size_t i, o = 0, lim = cap - 4;

    for (i = 0; i < n && o < lim; i++) {
        unsigned char c = (unsigned char)p[i];
        buf[o++] = (c >= 0x20 && c < 0x7f && c != '\'') ? (char)c : '?';
    }
    if (i < n) {
        buf[o++] = '.';
        buf[o++] = '.';
        buf[o++] = '.';
    }
    buf[o] = '\0';
    return buf;
}

/* Shortest of %.15g / %.17g that reads back as @v. */
static const char *fmt_num(double v, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.15g", v);
    if (strtod(buf, NULL) != v) {
        snprintf(buf, cap, "%.17g", v);
    }
    return buf;
}

static void fail_v(struct dec *d, enum rts_dlq_reason r, int field, const char *at, int prefix,
                   const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

static void fail_v(struct dec *d, enum rts_dlq_reason r, int field, const char *at, int prefix,
                   const char *fmt, va_list ap)
{
    struct rts_decode_err *e = d->err;
    size_t o = 0;
    char kb[48];
    int w;

    e->reason = r;
    e->field = field;
    e->pos = at ? (size_t)(at - d->base) : 0;
    e->msg[0] = '\0';
    if (prefix && field >= 0) {
        w = snprintf(e->msg, sizeof(e->msg), "field '%s': ", d->s->f[field].spec.name);
        o = w > 0 ? (size_t)w : 0;
    } else if (prefix && d->cur_key) {
        w = snprintf(e->msg, sizeof(e->msg),
                     "field '%s': ", snip(d->cur_key, d->cur_key_n, kb, sizeof(kb)));
        o = w > 0 ? (size_t)w : 0;
    }
    if (o < sizeof(e->msg)) {
        vsnprintf(e->msg + o, sizeof(e->msg) - o, fmt, ap);
    }
}

/* Report @r at @at; the message is prefixed with the field being decoded. */
static void fail(struct dec *d, enum rts_dlq_reason r, int field, const char *at, const char *fmt,
                 ...) __attribute__((format(printf, 5, 6), cold));

static void fail(struct dec *d, enum rts_dlq_reason r, int field, const char *at, const char *fmt,
                 ...)
{
    va_list ap;

    va_start(ap, fmt);
    fail_v(d, r, field, at, 1, fmt, ap);
    va_end(ap);
}

/* invalid_json: "expected X at byte N, got 'c'" or "unexpected end of message, expected X". */
static void __attribute__((cold))
syntax(struct dec *d, int field, const char *p, const char *expected)
{
    unsigned char c = (unsigned char)*p;

    if (p >= d->end) {
        fail(d, RTS_DLQ_INVALID_JSON, field, d->end, "unexpected end of message, expected %s",
             expected);
    } else if (c >= 0x20 && c < 0x7f) {
        fail(d, RTS_DLQ_INVALID_JSON, field, p, "expected %s at byte %zu, got '%c'", expected,
             (size_t)(p - d->base), c);
    } else {
        fail(d, RTS_DLQ_INVALID_JSON, field, p, "expected %s at byte %zu, got byte 0x%02x",
             expected, (size_t)(p - d->base), c);
    }
}

/* ---- strings ---- */

/* Check the UTF-8 sequence starting with the byte >= 0x80 at @p: shortest
 * form, no surrogates, at most U+10FFFF. Returns the byte after it or NULL. */
static const char *utf8_seq(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    unsigned c = u[0], lo = 0x80, hi = 0xbf;

    if (c < 0xc2) {
        return NULL;
    }
    if (c < 0xe0) {
        return (u[1] & 0xc0) == 0x80 ? p + 2 : NULL;
    }
    if (c < 0xf0) {
        if (c == 0xe0) {
            lo = 0xa0;
        } else if (c == 0xed) {
            hi = 0x9f;
        }
        if (u[1] < lo || u[1] > hi || (u[2] & 0xc0) != 0x80) {
            return NULL;
        }
        return p + 3;
    }
    if (c < 0xf5) {
        if (c == 0xf0) {
            lo = 0x90;
        } else if (c == 0xf4) {
            hi = 0x8f;
        }
        if (u[1] < lo || u[1] > hi || (u[2] & 0xc0) != 0x80 || (u[3] & 0xc0) != 0x80) {
            return NULL;
        }
        return p + 4;
    }
    return NULL;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        unsigned char c = (unsigned char)p[i];
        unsigned dgt;
        if (c >= '0' && c <= '9') {
            dgt = c - '0';
        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            dgt = (c | 0x20) - 'a' + 10;
        } else {
            return -1;
        }
        v = v << 4 | dgt;
    }
    *out = v;
    return 0;
}

static char *put_utf8(char *w, unsigned cp)
{
    if (cp < 0x80) {
        *w++ = (char)cp;
    } else if (cp < 0x800) {
        *w++ = (char)(0xc0 | cp >> 6);
        *w++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *w++ = (char)(0xe0 | cp >> 12);
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *w++ = (char)(0xf0 | cp >> 18);
        *w++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
    }
    return w;
}

static void __attribute__((cold))
string_char_error(struct dec *d, int field, const char *p, int in_key)
{
    const char *what = in_key ? "object key" : "string";

    if (p >= d->end) {
        fail(d, RTS_DLQ_INVALID_JSON, field, d->end, "unterminated %s", what);
    } else {
        fail(d, RTS_DLQ_INVALID_JSON, field, p, "control character 0x%02x in %s at byte %zu",
             (unsigned char)*p, what, (size_t)(p - d->base));
    }
}

static void __attribute__((cold)) utf8_error(struct dec *d, int field, const char *p, int in_key)
{
    fail(d, RTS_DLQ_BAD_ENCODING, field, p, "invalid UTF-8 byte 0x%02x in %s at byte %zu",
         (unsigned char)*p, in_key ? "object key" : "string", (size_t)(p - d->base));
}

/* The rest of a string from the first backslash at @p: unescape from @s0
 * into the tail. Returns the byte after the closing quote, or NULL. */
static const char *scan_string_slow(struct dec *d, const char *s0, const char *p, int field,
                                    int in_key, int commit, const char **vp, uint32_t *vn)
{
    char *w0 = d->tail, *w = w0;
    unsigned cp, lo;

    memcpy(w, s0, (size_t)(p - s0));
    w += p - s0;
    for (;;) {
        unsigned char c = (unsigned char)*p;

        if (!str_special[c]) {
            *w++ = (char)c;
            p++;
            continue;
        }
        if (c == '"') {
            break;
        }
        if (c >= 0x80) {
            const char *q = utf8_seq(p);
            if (!q) {
                utf8_error(d, field, p, in_key);
                return NULL;
            }
            while (p < q) {
                *w++ = *p++;
            }
            continue;
        }
        if (c != '\\') {
            string_char_error(d, field, p, in_key);
            return NULL;
        }
        switch (p[1]) {
        case '"':
        case '\\':
        case '/':
            *w++ = p[1];
            break;
        case 'b':
            *w++ = '\b';
            break;
        case 'f':
            *w++ = '\f';
            break;
        case 'n':
            *w++ = '\n';
            break;
        case 'r':
            *w++ = '\r';
            break;
        case 't':
            *w++ = '\t';
            break;
        case 'u':
            if (hex4(p + 2, &cp) != 0) {
                fail(d, RTS_DLQ_INVALID_JSON, field, p, "invalid \\u escape at byte %zu",
                     (size_t)(p - d->base));
                return NULL;
            }
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                fail(d, RTS_DLQ_BAD_ENCODING, field, p, "lone low surrogate \\u%04x at byte %zu",
                     cp, (size_t)(p - d->base));
                return NULL;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (p[6] != '\\' || p[7] != 'u' || hex4(p + 8, &lo) != 0 || lo < 0xdc00 ||
                    lo > 0xdfff) {
                    fail(d, RTS_DLQ_BAD_ENCODING, field, p,
                         "high surrogate \\u%04x at byte %zu not followed by a low surrogate", cp,
                         (size_t)(p - d->base));
                    return NULL;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }
            w = put_utf8(w, cp);
            p += 4;
            break;
        default:
            if (p + 1 >= d->end) {
                fail(d, RTS_DLQ_INVALID_JSON, field, d->end, "unterminated %s",
                     in_key ? "object key" : "string");
            } else {
                fail(d, RTS_DLQ_INVALID_JSON, field, p, "invalid escape at byte %zu",
                     (size_t)(p - d->base));
            }
            return NULL;
        }
        p += 2;
    }
    *vp = w0;
    *vn = (uint32_t)(w - w0);
    if (commit) {
        d->tail = w;
    }
    return p + 1;
}

/* Scan the string whose opening quote is at p[-1]. Returns the byte after
 * the closing quote with the unescaped value in *vp, *vn (in the payload copy
 * when it has no escape, else in the tail, kept there when @commit), or NULL
 * with the error reported. */
static inline const char *scan_string(struct dec *d, const char *p, int field, int in_key,
                                      int commit, const char **vp, uint32_t *vn)
{
    const char *s0 = p;

    for (;;) {
        while (!str_special[(unsigned char)p[0]]) {
            if (str_special[(unsigned char)p[1]]) {
                p += 1;
                break;
            }
            if (str_special[(unsigned char)p[2]]) {
                p += 2;
                break;
            }
            if (str_special[(unsigned char)p[3]]) {
                p += 3;
                break;
            }
            p += 4;
        }
        if (*p == '"') {
            *vp = s0;
            *vn = (uint32_t)(p - s0);
            return p + 1;
        }
        if ((unsigned char)*p >= 0x80) {
            const char *q = utf8_seq(p);
            if (!q) {
                utf8_error(d, field, p, in_key);
                return NULL;
            }
            p = q;
            continue;
        }
        if (*p == '\\') {
            return scan_string_slow(d, s0, p, field, in_key, commit, vp, vn);
        }
        string_char_error(d, field, p, in_key);
        return NULL;
    }
}

/* ---- numbers ---- */

struct num {
    double v;
    const char *a, *b; /* the token */
    int is_int;        /* no fraction, no exponent */
};

/* Parse the JSON number at @p ('-' or a digit). With @convert, also its
 * value: Clinger's fast path when exact, else strtod on the token. */
static const char *parse_number(struct dec *d, const char *p, int field, int convert,
                                struct num *out)
{
    const char *a = p;
    uint64_t mant = 0;
    int ndig = 0, exp10 = 0, many = 0, neg = 0;

    out->is_int = 1;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (*p == '0') {
        p++;
        if (is_digit(*p)) {
            fail(d, RTS_DLQ_INVALID_JSON, field, a, "number with a leading zero at byte %zu",
                 (size_t)(a - d->base));
            return NULL;
        }
    } else if (is_digit(*p)) {
        do {
            if (ndig < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                ndig++;
            } else {
                exp10++;
                many = 1;
            }
            p++;
        } while (is_digit(*p));
    } else {
        syntax(d, field, p, "a digit");
        return NULL;
    }
    if (*p == '.') {
        out->is_int = 0;
        p++;
        if (!is_digit(*p)) {
            syntax(d, field, p, "a digit after '.'");
            return NULL;
        }
        do {
            if (mant == 0 && *p == '0') {
                exp10--;
            } else if (ndig < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                ndig++;
                exp10--;
            } else {
                many = 1;
            }
            p++;
        } while (is_digit(*p));
    }
    if ((*p | 0x20) == 'e') {
        int esign = 1, e = 0;

        out->is_int = 0;
        p++;
        if (*p == '+' || *p == '-') {
            esign = *p == '-' ? -1 : 1;
            p++;
        }
        if (!is_digit(*p)) {
            syntax(d, field, p, "a digit in the exponent");
            return NULL;
        }
        do {
            if (e < 1000000) {
                e = e * 10 + (*p - '0');
            }
            p++;
        } while (is_digit(*p));
        exp10 += esign * e;
    }
    out->a = a;
    out->b = p;
    if (!convert) {
        return p;
    }
    if (mant == 0) {
        out->v = neg ? -0.0 : 0.0;
    } else if (!many && ndig <= 15 && exp10 >= -22 && exp10 <= 22) {
        double m = (double)mant;
        out->v = exp10 < 0 ? m / pow10_tab[-exp10] : m * pow10_tab[exp10];
        if (neg) {
            out->v = -out->v;
        }
    } else if (!many && ndig <= 15 && exp10 > 22 && exp10 - 22 <= 15 - ndig) {
        /* mant * 10^(exp10-22) still has <= 15 digits: two exact steps. */
        double m = (double)mant * pow10_tab[exp10 - 22];
        out->v = m * 1e22;
        if (neg) {
            out->v = -out->v;
        }
    } else {
        /* strtod on the token in place, under the C locale whatever the
         * process set, so that '.' is always the decimal point. */
        char *t = (char *)p, save = *t;
        locale_t old = d->s->c_numeric ? uselocale(d->s->c_numeric) : (locale_t)0;
        *t = '\0';
        out->v = strtod(a, NULL);
        *t = save;
        if (old) {
            uselocale(old);
        }
    }
    return p;
}

/* ---- skipping (validating) values of unknown fields ---- */

static const char *skip_value(struct dec *d, const char *p, int depth);

static const char *skip_container(struct dec *d, const char *p, int depth)
{
    int is_obj = *p == '{';
    const char *vp;
    uint32_t vn;

    if (depth > MAX_DEPTH) {
        fail(d, RTS_DLQ_INVALID_JSON, -1, p, "nesting deeper than %d at byte %zu", MAX_DEPTH,
             (size_t)(p - d->base));
        return NULL;
    }
    p = skip_ws(p + 1);
    if (*p == (is_obj ? '}' : ']')) {
        return p + 1;
    }
    for (;;) {
        if (is_obj) {
            if (*p != '"') {
                syntax(d, -1, p, "a string key");
                return NULL;
            }
            p = scan_string(d, p + 1, -1, 1, 0, &vp, &vn);
            if (!p) {
                return NULL;
            }
            p = skip_ws(p);
            if (*p != ':') {
                syntax(d, -1, p, "':'");
                return NULL;
            }
            p = skip_ws(p + 1);
        }
        p = skip_value(d, p, depth + 1);
        if (!p) {
            return NULL;
        }
        p = skip_ws(p);
        if (*p == ',') {
            p = skip_ws(p + 1);
            continue;
        }
        if (*p == (is_obj ? '}' : ']')) {
            return p + 1;
        }
        syntax(d, -1, p, is_obj ? "',' or '}'" : "',' or ']'");
        return NULL;
    }
}

static const char *skip_literal(struct dec *d, const char *p, int field)
{
    if (memcmp(p, "true", 4) == 0) {
        return p + 4;
    }
    if (memcmp(p, "false", 5) == 0) {
        return p + 5;
    }
    if (memcmp(p, "null", 4) == 0) {
        return p + 4;
    }
    syntax(d, field, p, "a value");
    return NULL;
}

/* @depth: the depth a container starting at @p would have. */
static const char *skip_value(struct dec *d, const char *p, int depth)
{
    struct num nm;
    const char *vp;
    uint32_t vn;

    switch (*p) {
    case '"':
        return scan_string(d, p + 1, -1, 0, 0, &vp, &vn);
    case '{':
    case '[':
        return skip_container(d, p, depth);
    case 't':
    case 'f':
    case 'n':
        return skip_literal(d, p, -1);
    default:
        if (*p == '-' || is_digit(*p)) {
            return parse_number(d, p, -1, 0, &nm);
        }
        syntax(d, -1, p, "a value");
        return NULL;
    }
}

/* ---- typed field values ---- */

/* What the value at @p is, for "expected a number, got a string"; NULL when
 * it is no JSON value at all (an invalid_json has been reported). */
static const char *kind_of(struct dec *d, const char *p, int field)
{
    switch (*p) {
    case '"':
        return "a string";
    case '{':
        return "an object";
    case '[':
        return "an array";
    case 't':
    case 'f':
        if (memcmp(p, "true", 4) == 0 || memcmp(p, "false", 5) == 0) {
            return "a bool";
        }
        break;
    default:
        if (*p == '-' || is_digit(*p)) {
            return "a number";
        }
        break;
    }
    syntax(d, field, p, "a value");
    return NULL;
}

static int days_in_month(int y, int m)
{
    static const int dim[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) {
        return 29;
    }
    return dim[m];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int dd)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (unsigned)((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + dd - 1);
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int dig2(const char *s)
{
    if (!is_digit(s[0]) || !is_digit(s[1])) {
        return -1;
    }
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* RFC 3339 date-time in @n bytes at @s to epoch ms (fraction truncated).
 * 0 ok, -1 not RFC 3339, -2 outside years 1970-9999 in UTC. */
static int parse_rfc3339(const char *s, size_t n, int64_t *out)
{
    int y, mo, dd, hh, mi, ss, oh = 0, om = 0, sign = 0, nd = 0;
    int64_t frac = 0, secs, ms;
    size_t i = 19;

    if (n < 20) {
        return -1;
    }
    if (dig2(s) < 0 || dig2(s + 2) < 0 || s[4] != '-' || s[7] != '-' || s[13] != ':' ||
        s[16] != ':' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ')) {
        return -1;
    }
    y = dig2(s) * 100 + dig2(s + 2);
    mo = dig2(s + 5);
    dd = dig2(s + 8);
    hh = dig2(s + 11);
    mi = dig2(s + 14);
    ss = dig2(s + 17);
    if (s[i] == '.') {
        for (i++; i < n && is_digit(s[i]); i++, nd++) {
            if (nd < 3) {
                frac = frac * 10 + (s[i] - '0');
            }
        }
        if (nd == 0 || nd > 9) {
            return -1;
        }
        for (; nd < 3; nd++) {
            frac *= 10;
        }
    }
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 <= n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        sign = s[i] == '-' ? -1 : 1;
        oh = dig2(s + i + 1);
        om = dig2(s + i + 4);
        i += 6;
    } else {
        return -1;
    }
    if (i != n || mo < 1 || mo > 12 || dd < 1 || hh < 0 || hh > 23 || mi < 0 || mi > 59 || ss < 0 ||
        ss > 59 || oh < 0 || oh > 23 || om < 0 || om > 59) {
        return -1;
    }
    if (dd > days_in_month(y, mo)) {
        return -1;
    }
    secs = days_from_civil(y, mo, dd) * 86400 + hh * 3600 + mi * 60 + ss;
    secs -= sign * (oh * 3600 + om * 60);
    ms = secs * 1000 + frac;
    if (ms < 0 || (double)ms >= TS_MS_END) {
        return -2;
    }
    *out = ms;
    return 0;
}

static inline int check_range(struct dec *d, int fi, const struct num *nm)
{
    const struct rts_schema_field_int *f = &d->s->f[fi];
    char a[48], b[32];

    if (nm->v < f->lo) {
        fail(d, RTS_DLQ_OUT_OF_RANGE, fi, nm->a, "%s is below min %s",
             snip(nm->a, (size_t)(nm->b - nm->a), a, sizeof(a)), fmt_num(f->lo, b, sizeof(b)));
        return -1;
    }
    if (nm->v > f->hi) {
        fail(d, RTS_DLQ_OUT_OF_RANGE, fi, nm->a, "%s is above max %s",
             snip(nm->a, (size_t)(nm->b - nm->a), a, sizeof(a)), fmt_num(f->hi, b, sizeof(b)));
        return -1;
    }
    return 0;
}

static void __attribute__((cold)) bad_type(struct dec *d, int fi, const char *p, const char *want)
{
    const char *k = kind_of(d, p, fi);

    if (k) {
        fail(d, RTS_DLQ_BAD_TYPE, fi, p, "expected %s, got %s", want, k);
    }
}

static void __attribute__((cold)) bad_time(struct dec *d, int fi, const char *p)
{
    const char *k = kind_of(d, p, fi);

    if (k) {
        fail(d, RTS_DLQ_BAD_TIME, fi, p,
             "expected epoch ms, epoch seconds or an RFC 3339 string, got %s", k);
    }
}

/* A string value (or an integer's text for an implicit id/key) of @n bytes
 * at @v for field @fi: check length limits, store. */
static inline int put_string(struct dec *d, int fi, const char *at, const char *v, uint32_t n)
{
    const struct rts_schema_field_int *f = &d->s->f[fi];

    if (n > f->max_len) {
        fail(d, RTS_DLQ_OUT_OF_RANGE, fi, at, "length %u exceeds max_len %u", (unsigned)n,
             (unsigned)f->max_len);
        return -1;
    }
    if (f->roles & RTS_FIELD_ROLE_KEY) {
        if (n == 0) {
            fail(d, RTS_DLQ_OUT_OF_RANGE, fi, at, "the key is empty");
            return -1;
        }
        if (n > RTS_KEY_MAX_BYTES) {
            fail(d, RTS_DLQ_OUT_OF_RANGE, fi, at, "the key is %u bytes, longer than %d",
                 (unsigned)n, RTS_KEY_MAX_BYTES);
            return -1;
        }
    }
    d->slot[fi] = slot_str((uint32_t)(v - d->rec), n);
    return 0;
}

/* Decode the value at @p for field @fi. Returns the byte after it or NULL. */
static const char *parse_field(struct dec *d, const char *p, int fi)
{
    const struct rts_schema_field_int *f = &d->s->f[fi];
    const char *q, *vp;
    struct num nm;
    uint32_t vn;
    int64_t ms;
    int rc;

    if (*p == 'n') {
        if (memcmp(p, "null", 4) != 0) {
            syntax(d, fi, p, "a value");
            return NULL;
        }
        d->slot[fi] = d->s->missing[fi];
        return p + 4;
    }
    switch (f->spec.type) {
    case RTS_FT_STRING:
        if (*p == '"') {
            q = scan_string(d, p + 1, fi, 0, 1, &vp, &vn);
            if (!q || put_string(d, fi, p, vp, vn) != 0) {
                return NULL;
            }
            return q;
        }
        if (f->implicit && (*p == '-' || is_digit(*p))) {
            q = parse_number(d, p, fi, 0, &nm);
            if (!q) {
                return NULL;
            }
            if (!nm.is_int) {
                fail(d, RTS_DLQ_BAD_TYPE, fi, p, "expected a string or an integer, got %.*s",
                     (int)(q - p > 40 ? 40 : q - p), p);
                return NULL;
            }
            return put_string(d, fi, p, p, (uint32_t)(q - p)) != 0 ? NULL : q;
        }
        bad_type(d, fi, p, f->implicit ? "a string or an integer" : "a string");
        return NULL;
    case RTS_FT_INT:
    case RTS_FT_FLOAT:
        if (*p != '-' && !is_digit(*p)) {
            bad_type(d, fi, p, f->spec.type == RTS_FT_INT ? "an integer" : "a number");
            return NULL;
        }
        q = parse_number(d, p, fi, 1, &nm);
        if (!q) {
            return NULL;
        }
        if (!isfinite(nm.v)) {
            char a[48];
            fail(d, RTS_DLQ_OUT_OF_RANGE, fi, p, "%s overflows a double",
                 snip(p, (size_t)(q - p), a, sizeof(a)));
            return NULL;
        }
        if (f->spec.type == RTS_FT_INT &&
            (!(fabs(nm.v) <= INT_LIMIT) || nm.v != (double)(int64_t)nm.v)) {
            char a[48];
            fail(d, RTS_DLQ_BAD_TYPE, fi, p, "expected an integer within +-2^53, got %s",
                 snip(p, (size_t)(q - p), a, sizeof(a)));
            return NULL;
        }
        if (check_range(d, fi, &nm) != 0) {
            return NULL;
        }
        d->slot[fi] = slot_num(nm.v);
        return q;
    case RTS_FT_BOOL:
        if (memcmp(p, "true", 4) == 0) {
            d->slot[fi] = slot_num(1.0);
            return p + 4;
        }
        if (memcmp(p, "false", 5) == 0) {
            d->slot[fi] = slot_num(0.0);
            return p + 5;
        }
        bad_type(d, fi, p, "true or false");
        return NULL;
    case RTS_FT_TIMESTAMP:
        if (*p == '"') {
            q = scan_string(d, p + 1, fi, 0, 0, &vp, &vn);
            if (!q) {
                return NULL;
            }
            rc = parse_rfc3339(vp, vn, &ms);
            if (rc != 0) {
                char a[48];
                fail(d, RTS_DLQ_BAD_TIME, fi, p,
                     rc == -2 ? "'%s' is outside years 1970-9999"
                              : "'%s' is not an RFC 3339 time like 2023-11-14T22:13:20Z",
                     snip(vp, vn, a, sizeof(a)));
                return NULL;
            }
            nm.a = p;
            nm.b = q;
        } else if (*p == '-' || is_digit(*p)) {
            double m;
            q = parse_number(d, p, fi, 1, &nm);
            if (!q) {
                return NULL;
            }
            /* Every number outside the years, even one past a double, is a bad time. */
            m = floor((nm.v >= TS_MS_THRESHOLD ? nm.v : nm.v * 1000.0) + 0.5);
            if (!(m >= 0 && m < TS_MS_END)) {
                char a[48];
                fail(d, RTS_DLQ_BAD_TIME, fi, p, "%s is outside years 1970-9999",
                     snip(p, (size_t)(q - p), a, sizeof(a)));
                return NULL;
            }
            ms = (int64_t)m;
        } else {
            bad_time(d, fi, p);
            return NULL;
        }
        nm.v = (double)ms;
        if (check_range(d, fi, &nm) != 0) {
            return NULL;
        }
        d->slot[fi] = slot_num(nm.v);
        return q;
    }
    return NULL;
}

/* ---- the object ---- */

static size_t tail_start(size_t nfields, size_t len)
{
    return sizeof(struct rec_hdr) + 8 * nfields + round8(len + PAD);
}

size_t rts_decode_record_max(const struct rts_schema *s, size_t max_event_bytes)
{
    if (max_event_bytes > RTS_DECODE_MAX_BYTES) {
        max_event_bytes = RTS_DECODE_MAX_BYTES;
    }
    return round8(tail_start(s->n, max_event_bytes) + max_event_bytes + s->def_bytes);
}

/* Apply defaults, check required fields, fill the header. */
static size_t finish(struct dec *d, size_t len, int64_t ingest_ms)
{
    const struct rts_schema *s = d->s;
    struct rec_hdr *h = (struct rec_hdr *)d->rec;
    size_t i, size;
    int r;

    for (i = 0; i < s->n; i++) {
        const struct rts_schema_field_int *f = &s->f[i];
        if (!f->post || d->slot[i] != s->missing[i]) {
            continue;
        }
        if (f->spec.required || (f->roles & RTS_FIELD_ROLE_KEY)) {
            struct rts_decode_err *e = d->err;
            e->reason = RTS_DLQ_MISSING_FIELD;
            e->field = (int)i;
            e->pos = len;
            snprintf(e->msg, sizeof(e->msg), "required field '%s' is missing", f->spec.name);
            return 0;
        }
        if (f->spec.has_default) {
            if (f->spec.type == RTS_FT_STRING) {
                memcpy(d->tail, f->spec.def_str, f->def_len);
                d->slot[i] = slot_str((uint32_t)(d->tail - d->rec), f->def_len);
                d->tail += f->def_len;
            } else {
                d->slot[i] = slot_num(f->spec.def_num);
            }
        }
    }
    h->ts_ms = ingest_ms;
    r = s->roles[RTS_ROLE_TIME];
    if (r >= 0) {
        if (d->slot[r] != s->missing[r]) {
            double v;
            memcpy(&v, &d->slot[r], sizeof(v));
            h->ts_ms = (int64_t)v;
        } else {
            d->slot[r] = slot_num((double)ingest_ms);
        }
    }
    h->id_off = h->id_len = 0;
    r = s->roles[RTS_ROLE_ID];
    if (r >= 0) {
        h->id_off = (uint32_t)d->slot[r];
        h->id_len = (uint32_t)(d->slot[r] >> 32);
    }
    h->key_off = h->key_len = 0;
    r = s->roles[RTS_ROLE_KEY];
    if (r >= 0) {
        h->key_off = (uint32_t)d->slot[r];
        h->key_len = (uint32_t)(d->slot[r] >> 32);
    }
    h->key_hash = rts_hash64(d->rec + h->key_off, h->key_len);
    size = (size_t)(d->tail - d->rec);
    memset(d->tail, 0, round8(size) - size);
    size = round8(size);
    h->size = (uint32_t)size;
    h->nfields = (uint32_t)s->n;
    h->payload_off = (uint32_t)(d->base - d->rec);
    h->payload_len = (uint32_t)len;
    return size;
}

size_t rts_decode(const struct rts_schema *s, const char *msg, size_t len, size_t max_event_bytes,
                  int64_t ingest_ms, void *rec, size_t cap, struct rts_decode_err *err)
{
    struct rts_decode_err dummy;
    struct dec d;
    const char *p, *kp;
    size_t ts;
    uint32_t kn;

    d.s = s;
    d.err = err ? err : &dummy;
    d.rec = rec;
    d.base = (char *)rec + sizeof(struct rec_hdr) + 8 * s->n;
    d.end = d.base + len;
    d.cur_key = NULL;
    d.cur_key_n = 0;
    if (len > max_event_bytes || len > RTS_DECODE_MAX_BYTES) {
        size_t lim =
            max_event_bytes < RTS_DECODE_MAX_BYTES ? max_event_bytes : RTS_DECODE_MAX_BYTES;
        d.err->reason = RTS_DLQ_TOO_LARGE;
        d.err->field = -1;
        d.err->pos = lim;
        snprintf(d.err->msg, sizeof(d.err->msg),
                 "message is %zu bytes, larger than max_event_bytes %zu", len, lim);
        return 0;
    }
    ts = tail_start(s->n, len);
    if (((uintptr_t)rec & 7) != 0 || cap < round8(ts + len + s->def_bytes)) {
        d.err->reason = RTS_DLQ_TOO_LARGE;
        d.err->field = -1;
        d.err->pos = 0;
        snprintf(d.err->msg, sizeof(d.err->msg),
                 "record buffer of %zu bytes is too small or misaligned for a %zu-byte message",
                 cap, len);
        return 0;
    }
    if (len) {
        memcpy(d.base, msg, len);
    }
    memset(d.base + len, 0, ts - (sizeof(struct rec_hdr) + 8 * s->n) - len);
    d.tail = (char *)rec + ts;
    d.slot = (uint64_t *)((char *)rec + sizeof(struct rec_hdr));
    memcpy(d.slot, s->missing, 8 * s->n);

    p = skip_ws(d.base);
    if (*p != '{') {
        if (p >= d.end) {
            fail(&d, RTS_DLQ_INVALID_JSON, -1, p, "empty message");
        } else {
            syntax(&d, -1, p, "a JSON object");
        }
        return 0;
    }
    p = skip_ws(p + 1);
    if (*p == '}') {
        p++;
        goto closed;
    }
    for (;;) {
        int fi;

        if (*p != '"') {
            syntax(&d, -1, p, "a string key");
            return 0;
        }
        d.cur_key = NULL;
        kp = p + 1;
        p = scan_string(&d, kp, -1, 1, 0, &kp, &kn);
        if (!p) {
            return 0;
        }
        p = skip_ws(p);
        if (*p != ':') {
            syntax(&d, -1, p, "':' after the key");
            return 0;
        }
        p = skip_ws(p + 1);
        fi = kn ? rts_schema_lookup(s, kp, kn) : -1;
        if (fi >= 0) {
            p = parse_field(&d, p, fi);
        } else {
            d.cur_key = kp;
            d.cur_key_n = kn;
            p = skip_value(&d, p, 2);
        }
        if (!p) {
            return 0;
        }
        p = skip_ws(p);
        if (*p == ',') {
            p = skip_ws(p + 1);
            continue;
        }
        if (*p == '}') {
            p++;
            break;
        }
        d.cur_key = NULL;
        syntax(&d, -1, p, "',' or '}'");
        return 0;
    }
closed:
    p = skip_ws(p);
    if (p != d.end) {
        d.cur_key = NULL;
        fail(&d, RTS_DLQ_INVALID_JSON, -1, p, "unexpected data after the object at byte %zu",
             (size_t)(p - d.base));
        return 0;
    }
    return finish(&d, len, ingest_ms);
}

/* ---- reading records ---- */

void rts_event_view(const struct rts_schema *s, const void *rec, struct rts_event *ev,
                    union rts_val *vals)
{
    const struct rec_hdr *h = rec;
    const char *r = rec;
    const uint64_t *slot = (const uint64_t *)(r + sizeof(*h));
    size_t i, n = s->n < h->nfields ? s->n : h->nfields;

    for (i = 0; i < n; i++) {
        uint64_t u = slot[i];
        if (s->f[i].spec.type == RTS_FT_STRING) {
            uint32_t off = (uint32_t)u;
            vals[i].str.p = off ? r + off : NULL;
            vals[i].str.n = (uint32_t)(u >> 32);
        } else {
            memcpy(&vals[i].num, &u, sizeof(double));
        }
    }
    ev->id.p = h->id_off ? r + h->id_off : NULL;
    ev->id.n = h->id_len;
    ev->key.p = h->key_off ? r + h->key_off : NULL;
    ev->key.n = h->key_len;
    ev->ts_ms = h->ts_ms;
    ev->key_hash = h->key_hash;
    ev->vals = vals;
    ev->payload.p = r + h->payload_off;
    ev->payload.n = h->payload_len;
}

uint64_t rts_record_key_hash(const void *rec)
{
    return ((const struct rec_hdr *)rec)->key_hash;
}

size_t rts_record_size(const void *rec)
{
    return ((const struct rec_hdr *)rec)->size;
}

int64_t rts_record_ts_ms(const void *rec)
{
    return ((const struct rec_hdr *)rec)->ts_ms;
}

struct rts_str rts_record_id(const void *rec)
{
    const struct rec_hdr *h = rec;
    struct rts_str v = {h->id_off ? (const char *)rec + h->id_off : NULL, h->id_len};

    return v;
}

struct rts_str rts_record_key(const void *rec)
{
    const struct rec_hdr *h = rec;
    struct rts_str v = {h->key_off ? (const char *)rec + h->key_off : NULL, h->key_len};

    return v;
}

struct rts_str rts_record_payload(const void *rec)
{
    const struct rec_hdr *h = rec;
    struct rts_str v = {(const char *)rec + h->payload_off, h->payload_len};

    return v;
}
