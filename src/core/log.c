/*
 * log.c - logfmt lines of log.h.
 *
 * A line is built on the stack and written with one write(2); nothing is
 * locked and nothing allocated. The key=value part is not passed to
 * vsnprintf whole: the format is walked pair by pair, each conversion is
 * formatted on its own (snprintf with that one conversion and its argument,
 * taken from the va_list by type), and each value is then quoted as needed.
 *
 * Rate limit: a fixed open-addressing table of call sites keyed by the
 * (msg, kvfmt) pointers, claimed lock-free with a compare-and-swap. Each site
 * packs (second << 20 | lines this second) in one atomic word, so concurrent
 * callers of one site agree on the count without a lock. A full table simply
 * stops rate-limiting new sites.
 */
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "core/clock.h"
#include "core/fmt.h"

#define LOG_VALUE_MAX 1024
#define LOG_TAIL 16 /* room kept for ' truncated=1', the closing quote and '\n' */
#define LOG_SITES 256
#define LOG_PROBES 16
#define LOG_COUNT_BITS 20

struct log_site {
    _Atomic uintptr_t key;       /* 0: free */
    _Atomic uint64_t window;     /* second << LOG_COUNT_BITS | lines in that second */
    _Atomic uint64_t suppressed; /* dropped since the last line written */
};

static struct {
    atomic_int level;
    atomic_int fd;
    struct log_site sites[LOG_SITES];
} log_g = {RTS_LOG_INFO, 2, {{0, 0, 0}}};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* The line being built: appends past cap - LOG_TAIL are refused and mark it
 * truncated; the tail room is for the end of the line. */
struct line {
    char buf[RTS_LOG_LINE_MAX];
    size_t len;
    int trunc;
};

static void put(struct line *ln, const char *s, size_t n)
{
    if (ln->trunc || n > sizeof(ln->buf) - LOG_TAIL - ln->len) {
        ln->trunc = 1;
        return;
    }
    memcpy(ln->buf + ln->len, s, n);
    ln->len += n;
}

static void puts_(struct line *ln, const char *s)
{
    put(ln, s, strlen(s));
}

static int needs_quote(const char *s, size_t n)
{
    size_t i;

    if (n == 0) {
        return 1;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) {
            return 1;
        }
    }
    return 0;
}

/* @s as a value: bare if it can be, else quoted and escaped. A value cut
 * short by the line limit still gets its closing quote (from the tail). */
static void put_value(struct line *ln, const char *s, size_t n, int force_quote)
{
    char esc[6];
    size_t i;

    if (!force_quote && !needs_quote(s, n)) {
        put(ln, s, n);
        return;
    }
    put(ln, "\"", 1);
    if (ln->trunc) {
        return;
    }
    for (i = 0; i < n && !ln->trunc; i++) {
        put(ln, esc, rts_fmt_escape_byte(esc, (unsigned char)s[i]));
    }
    put(ln, "\"", 1);
    if (ln->trunc) {
        /* Cut short: close the quote anyway, in the tail room. Nothing is
         * appended after a truncation but the tail, so this happens once. */
        ln->buf[ln->len++] = '"';
    }
}

/* Expanded text of a format segment, at most LOG_VALUE_MAX - 1 bytes. */
struct text {
    char buf[LOG_VALUE_MAX];
    size_t len;
    int cut;
};

static void text_put(struct text *t, const char *s, size_t n)
{
    size_t room = sizeof(t->buf) - 1 - t->len;

    if (n > room) {
        n = room;
        t->cut = 1;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

/* Format one conversion @spec (a complete "%...c" with '*' already replaced by
 * numbers) taking its argument from @ap by type. */
static void text_conv(struct text *t, const char *spec, const char *len_mod, char conv, va_list *ap)
{
    char tmp[LOG_VALUE_MAX];
    int n = 0;
    int l = len_mod[0] == 'l' && len_mod[1] != 'l';
    int ll = len_mod[0] == 'l' && len_mod[1] == 'l';

    switch (conv) {
    case 'd':
    case 'i':
    case 'u':
    case 'o':
    case 'x':
    case 'X':
    case 'c':
        if (ll) {
            n = snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, long long));
        } else if (l) {
            n = snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, long));
        } else if (len_mod[0] == 'z') {
            n = snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, size_t));
        } else if (len_mod[0] == 'j') {
            n = snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, intmax_t));
        } else if (len_mod[0] == 't') {
            n = snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, ptrdiff_t));
        } else {
            n = snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, int));
        }
        break;
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G':
    case 'a':
    case 'A':
        if (len_mod[0] == 'L') {
            n = snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, long double));
        } else {
            n = snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, double));
        }
        break;
    case 's':
        if (l) {
            (void)va_arg(*ap, const wchar_t *); /* wide strings are not logged */
            n = snprintf(tmp, sizeof(tmp), "?");
        } else {
            const char *s = va_arg(*ap, const char *);

            n = snprintf(tmp, sizeof(tmp), spec, s ? s : "(null)");
        }
        break;
    case 'p':
        n = snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, void *));
        break;
    case 'n':
        (void)va_arg(*ap, void *); /* never write through a log argument */
        break;
    default:
        break;
    }
    if (n < 0) {
        n = 0;
    }
    if ((size_t)n >= sizeof(tmp)) {
        n = (int)sizeof(tmp) - 1;
        t->cut = 1;
    }
    text_put(t, tmp, (size_t)n);
}

/* Expand @fmt up to (not including) an unescaped literal char in @stop or its
 * end, into @t. Returns where it stopped. */
static const char *expand(struct text *t, const char *fmt, const char *stop, va_list *ap)
{
    char spec[48], len_mod[3];
    size_t sn, ln;
    const char *p = fmt;

    while (*p && !strchr(stop, *p)) {
        if (*p != '%') {
            text_put(t, p, 1);
            p++;
            continue;
        }
        if (p[1] == '%') {
            text_put(t, "%", 1);
            p += 2;
            continue;
        }
        /* %[flags][width][.prec][length]conv, '*' replaced by its value */
        sn = 0;
        spec[sn++] = *p++;
        while (*p && strchr("-+ #0", *p) && sn < 8) {
            spec[sn++] = *p++;
        }
        if (*p == '*') {
            sn += (size_t)snprintf(spec + sn, 12, "%d", va_arg(*ap, int));
            p++;
        } else {
            while (*p >= '0' && *p <= '9' && sn < 20) {
                spec[sn++] = *p++;
            }
        }
        if (*p == '.') {
            spec[sn++] = *p++;
            if (*p == '*') {
                sn += (size_t)snprintf(spec + sn, 12, "%d", va_arg(*ap, int));
                p++;
            } else {
                while (*p >= '0' && *p <= '9' && sn < 40) {
                    spec[sn++] = *p++;
                }
            }
        }
        ln = 0;
        while (*p && strchr("hlLzjt", *p) && ln < 2) {
            len_mod[ln++] = *p;
            spec[sn++] = *p++;
        }
        len_mod[ln] = '\0';
        if (!*p) {
            break; /* a dangling '%': drop it */
        }
        spec[sn++] = *p;
        spec[sn] = '\0';
        text_conv(t, spec, len_mod, *p, ap);
        p++;
    }
    return p;
}

/* The key=value pairs of @kvfmt, each preceded by a space. */
static void put_pairs(struct line *ln, const char *kvfmt, va_list *ap)
{
    struct text t;
    const char *p = kvfmt;
    int quoted;

    while (*p) {
        if (*p == ' ') {
            p++;
            continue;
        }
        t.len = 0;
        t.cut = 0;
        t.buf[0] = '\0';
        p = expand(&t, p, " =", ap);
        put(ln, " ", 1);
        put(ln, t.buf, t.len);
        if (*p != '=') {
            continue; /* a bare word */
        }
        p++;
        put(ln, "=", 1);
        t.len = 0;
        t.cut = 0;
        t.buf[0] = '\0';
        quoted = *p == '"';
        if (quoted) {
            /* key="..." in the format: the quotes are the caller asking
             * for quoting; the value runs to the closing quote. */
            p = expand(&t, p + 1, "\"", ap);
            p += *p == '"';
        } else {
            p = expand(&t, p, " ", ap);
        }
        if (t.cut && t.len >= 3) {
            memcpy(t.buf + t.len - 3, "...", 3);
        }
        put_value(ln, t.buf, t.len, quoted);
    }
}

static void put_u(struct line *ln, unsigned v, int width)
{
    char d[12];
    int i;

    for (i = width - 1; i >= 0; i--) {
        d[i] = (char)('0' + v % 10);
        v /= 10;
    }
    put(ln, d, (size_t)width);
}

static void put_ts(struct line *ln)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    puts_(ln, "ts=");
    put_u(ln, (unsigned)tm.tm_year + 1900, 4);
    put(ln, "-", 1);
    put_u(ln, (unsigned)tm.tm_mon + 1, 2);
    put(ln, "-", 1);
    put_u(ln, (unsigned)tm.tm_mday, 2);
    put(ln, "T", 1);
    put_u(ln, (unsigned)tm.tm_hour, 2);
    put(ln, ":", 1);
    put_u(ln, (unsigned)tm.tm_min, 2);
    put(ln, ":", 1);
    put_u(ln, (unsigned)tm.tm_sec, 2);
    put(ln, ".", 1);
    put_u(ln, (unsigned)(ts.tv_nsec / 1000000), 3);
    put(ln, "Z", 1);
}

/* The call site of (@msg, @kvfmt), or NULL if the table is full. */
static struct log_site *site_of(const char *msg, const char *kvfmt)
{
    uintptr_t key = (uintptr_t)msg ^ ((uintptr_t)kvfmt << 1), cur;
    size_t h, i;

    if (!key) {
        key = 1;
    }
    h = (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 32);
    for (i = 0; i < LOG_PROBES; i++) {
        struct log_site *s = &log_g.sites[(h + i) % LOG_SITES];

        cur = atomic_load_explicit(&s->key, memory_order_acquire);
        if (cur == key) {
            return s;
        }
        if (cur == 0) {
            if (atomic_compare_exchange_strong_explicit(&s->key, &cur, key, memory_order_acq_rel,
                                                        memory_order_acquire) ||
                cur == key) {
                return s;
            }
        }
    }
    return NULL;
}

/* 1 if this line of @s may be written in the current second. */
static int site_admit(struct log_site *s)
{
    uint64_t now = rts_now_ns() / 1000000000u, w, next;

    w = atomic_load_explicit(&s->window, memory_order_relaxed);
    do {
        if (w >> LOG_COUNT_BITS != now) {
            next = now << LOG_COUNT_BITS | 1;
        } else if ((w & ((1u << LOG_COUNT_BITS) - 1)) < RTS_LOG_BURST) {
            next = w + 1;
        } else {
            atomic_fetch_add_explicit(&s->suppressed, 1, memory_order_relaxed);
            return 0;
        }
    } while (!atomic_compare_exchange_weak_explicit(&s->window, &w, next, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 1;
}

void rts_log_set_level(enum rts_log_level l)
{
    atomic_store_explicit(&log_g.level, (int)l, memory_order_relaxed);
}

int rts_log_enabled(enum rts_log_level l)
{
    return (int)l >= atomic_load_explicit(&log_g.level, memory_order_relaxed);
}

int rts_log_level_parse(const char *s, enum rts_log_level *out)
{
    int i;

    if (!s) {
        return -1;
    }
    for (i = RTS_LOG_DEBUG; i <= RTS_LOG_ERROR; i++) {
        if (!strcasecmp(s, level_names[i])) {
            *out = (enum rts_log_level)i;
            return 0;
        }
    }
    if (!strcasecmp(s, "warning")) {
        *out = RTS_LOG_WARN;
        return 0;
    }
    return -1;
}

const char *rts_log_level_name(enum rts_log_level l)
{
    return (unsigned)l <= RTS_LOG_ERROR ? level_names[l] : "?";
}

int rts_log_set_fd(int fd)
{
    return atomic_exchange_explicit(&log_g.fd, fd, memory_order_relaxed);
}

void rts_log(enum rts_log_level l, const char *msg, const char *kvfmt, ...)
{
    struct line ln;
    struct log_site *site;
    uint64_t suppressed = 0;
    size_t off;
    ssize_t w;
    va_list ap;
    int saved = errno, fd;

    if (!rts_log_enabled(l)) {
        return;
    }
    site = site_of(msg, kvfmt);
    if (site) {
        if (!site_admit(site)) {
            return;
        }
        suppressed = atomic_exchange_explicit(&site->suppressed, 0, memory_order_relaxed);
    }
    ln.len = 0;
    ln.trunc = 0;
    put_ts(&ln);
    puts_(&ln, " level=");
    puts_(&ln, rts_log_level_name(l));
    puts_(&ln, " msg=");
    put_value(&ln, msg ? msg : "", msg ? strlen(msg) : 0, 0);
    if (kvfmt) {
        va_start(ap, kvfmt);
        put_pairs(&ln, kvfmt, &ap);
        va_end(ap);
    }
    if (suppressed) {
        char num[24];

        put(&ln, num,
            (size_t)snprintf(num, sizeof(num), " suppressed=%llu", (unsigned long long)suppressed));
    }
    if (ln.trunc) {
        memcpy(ln.buf + ln.len, " truncated=1", 12);
        ln.len += 12;
    }
    ln.buf[ln.len++] = '\n';
    fd = atomic_load_explicit(&log_g.fd, memory_order_relaxed);
    for (off = 0; off < ln.len;) {
        w = write(fd, ln.buf + off, ln.len - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            break;
        }
        off += (size_t)w;
    }
    errno = saved;
}
