/*
 * prom.c - the Prometheus text exposition writer of prom.h.
 *
 * Every public call validates all of its input before it writes a byte, and
 * a call that fails midway (limit, out of memory) cuts the buffer back to
 * where it started, so the output never holds half a line. Family names are
 * not copied: the writer remembers where each one sits in the output (the
 * name written after "# HELP ") and compares against that, which keeps the
 * writer a fixed size. Histogram counts mirror rts_hist_quantile() exactly
 * (see rts_prom_hist_le), which is what the unit tests check.
 */
#include "serve/prom.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/fmt.h"
#include "core/text.h"

const double rts_prom_seconds_bounds[RTS_PROM_SECONDS_BOUNDS] = {
    0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025,
    0.0005,   0.001,     0.0025,   0.005,   0.01,     0.025,   0.05,   0.1,
    0.25,     0.5,       1,        2.5,     5,        10,
};

const double rts_prom_age_bounds[RTS_PROM_AGE_BOUNDS] = {
    0.1,   1,     10,    60,    300,    900,    1800,   3600,   7200,
    14400, 21600, 43200, 86400, 172800, 259200, 432000, 604800,
};

static const char *const type_names[] = {
    [RTS_PROM_COUNTER] = "counter", [RTS_PROM_GAUGE] = "gauge", [RTS_PROM_HISTOGRAM] = "histogram"};

/* Keep the first error; later ones only return their code. */
static enum rts_err prom_fail(struct rts_prom *p, enum rts_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum rts_err prom_fail(struct rts_prom *p, enum rts_err code, const char *fmt, ...)
{
    va_list ap;

    if (p->err.code == RTS_ERR_OK) {
        p->err.code = code;
        va_start(ap, fmt);
        vsnprintf(p->err.msg, sizeof(p->err.msg), fmt, ap);
        va_end(ap);
    }
    return p->err.code;
}

/* Cut the output back to @mark (a failed call leaves nothing behind). */
static void prom_rewind(struct rts_prom *p, size_t mark)
{
    p->out->len = mark;
    if (p->out->data) {
        p->out->data[mark] = '\0';
    }
}

static enum rts_err put(struct rts_prom *p, const char *s, size_t n)
{
    if (n > p->max_bytes || p->out->len > p->max_bytes - n) {
        return prom_fail(p, RTS_ERR_LIMIT, "metrics exposition larger than %zu bytes",
                         p->max_bytes);
    }
    if (rts_buf_append(p->out, s, n)) {
        return prom_fail(p, RTS_ERR_NOMEM, "metrics exposition: out of memory");
    }
    return RTS_ERR_OK;
}

static enum rts_err puts_(struct rts_prom *p, const char *s)
{
    return put(p, s, strlen(s));
}

/* @s escaped for a label value (@quote: \\ \" \n) or a help text (\\ \n);
 * invalid UTF-8 bytes become U+FFFD one by one. */
static enum rts_err put_escaped(struct rts_prom *p, const char *s, int quote)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), i = 0, run, len;
    enum rts_err rc;

    while (i < n) {
        run = i;
        while (run < n && u[run] < 0x80 && u[run] != '\\' && u[run] != '\n' &&
               !(quote && u[run] == '"')) {
            run++;
        }
        if (run > i) {
            rc = put(p, s + i, run - i);
            if (rc) {
                return rc;
            }
            i = run;
            continue;
        }
        if (u[i] < 0x80) {
            rc = put(p, u[i] == '\\' ? "\\\\" : u[i] == '"' ? "\\\"" : "\\n", 2);
            i++;
        } else {
            len = u[i] >= 0xF0 ? 4 : u[i] >= 0xE0 ? 3 : 2;
            if (len <= n - i && rts_utf8_valid(s + i, len)) {
                rc = put(p, s + i, len);
                i += len;
            } else {
                rc = put(p, "\xEF\xBF\xBD", 3);
                i++;
            }
        }
        if (rc) {
            return rc;
        }
    }
    return RTS_ERR_OK;
}

/* [a-zA-Z_][a-zA-Z0-9_]*, 1..RTS_PROM_NAME_MAX bytes. */
static int name_ok(const char *s)
{
    size_t i;

    if (!s || !*s || (*s >= '0' && *s <= '9')) {
        return 0;
    }
    for (i = 0; s[i]; i++) {
        if (i >= RTS_PROM_NAME_MAX ||
            !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) {
            return 0;
        }
    }
    return 1;
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);

    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* 1 if family @i's name is @s[0..n) followed by @suffix. */
static int fam_is(const struct rts_prom *p, size_t i, const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);

    return p->fam_len[i] == n + k && memcmp(p->out->data + p->fam_off[i], s, n) == 0 &&
           memcmp(p->out->data + p->fam_off[i] + n, suffix, k) == 0;
}

static const char *const hist_suffixes[] = {"_bucket", "_sum", "_count"};

/* 1 if @name was written already or collides with a histogram's series. */
static int fam_clash(const struct rts_prom *p, const char *name, enum rts_prom_type type)
{
    size_t n = strlen(name), i, k, el;
    const char *e;

    for (i = 0; i < p->nfam; i++) {
        e = p->out->data + p->fam_off[i];
        el = p->fam_len[i];
        if (fam_is(p, i, name, n, "")) {
            return 1;
        }
        for (k = 0; k < 3; k++) {
            /* an earlier histogram's series, or this histogram's series
             * already taken by an earlier family */
            if ((p->fam_hist[i] && n == el + strlen(hist_suffixes[k]) && memcmp(name, e, el) == 0 &&
                 strcmp(name + el, hist_suffixes[k]) == 0) ||
                (type == RTS_PROM_HISTOGRAM && fam_is(p, i, name, n, hist_suffixes[k]))) {
                return 1;
            }
        }
    }
    return 0;
}

void rts_prom_init(struct rts_prom *p, struct rts_buf *out, size_t max_bytes)
{
    memset(p, 0, sizeof(*p));
    p->out = out;
    p->max_bytes = max_bytes ? max_bytes : RTS_PROM_DEFAULT_MAX_BYTES;
}

enum rts_err rts_prom_family(struct rts_prom *p, const char *name, enum rts_prom_type type,
                             const char *help)
{
    size_t mark = p->out->len, n;
    enum rts_err rc;

    if (p->err.code) {
        return p->err.code;
    }
    if (!name_ok(name)) {
        return prom_fail(p, RTS_ERR_INVAL,
                         "metric name '%.*s' is not [a-zA-Z_][a-zA-Z0-9_]* of at most %d bytes",
                         RTS_PROM_NAME_MAX, name ? name : "(null)", RTS_PROM_NAME_MAX);
    }
    n = strlen(name);
    if ((unsigned)type > RTS_PROM_HISTOGRAM) {
        return prom_fail(p, RTS_ERR_INVAL, "%s: unknown metric type %d", name, (int)type);
    }
    if ((type == RTS_PROM_COUNTER) != ends_with(name, n, "_total")) {
        return prom_fail(p, RTS_ERR_INVAL, "%s: %s", name,
                         type == RTS_PROM_COUNTER ? "a counter's name must end in _total"
                                                  : "only counters may end in _total");
    }
    if (!help || !*help || strlen(help) > RTS_PROM_HELP_MAX) {
        return prom_fail(p, RTS_ERR_INVAL, "%s: help text must be 1 to %d bytes", name,
                         RTS_PROM_HELP_MAX);
    }
    if (fam_clash(p, name, type)) {
        return prom_fail(p, RTS_ERR_INVAL,
                         "%s: metric family written twice or clashing with a "
                         "histogram's _bucket/_sum/_count series",
                         name);
    }
    if (p->nfam >= RTS_PROM_MAX_FAMILIES) {
        return prom_fail(p, RTS_ERR_LIMIT, "%s: more than %d metric families", name,
                         RTS_PROM_MAX_FAMILIES);
    }
    if ((rc = puts_(p, "# HELP ")) || (rc = put(p, name, n)) || (rc = puts_(p, " ")) ||
        (rc = put_escaped(p, help, 0)) || (rc = puts_(p, "\n# TYPE ")) || (rc = put(p, name, n)) ||
        (rc = puts_(p, " ")) || (rc = puts_(p, type_names[type])) || (rc = puts_(p, "\n"))) {
        prom_rewind(p, mark);
        return rc;
    }
    p->fam_off[p->nfam] = mark + 7; /* after "# HELP " */
    p->fam_len[p->nfam] = (unsigned char)n;
    p->fam_hist[p->nfam] = type == RTS_PROM_HISTOGRAM;
    p->nfam++;
    p->type = type;
    p->open = 1;
    return RTS_ERR_OK;
}

/* The open family is of a kind that takes this sample (@hist: a histogram). */
static enum rts_err check_family(struct rts_prom *p, int hist)
{
    if (p->err.code) {
        return p->err.code;
    }
    if (!p->open) {
        return prom_fail(p, RTS_ERR_INVAL, "metric sample written before any family");
    }
    if ((p->type == RTS_PROM_HISTOGRAM) != hist) {
        return prom_fail(p, RTS_ERR_INVAL, "%.*s: %s sample in a %s family",
                         p->fam_len[p->nfam - 1], p->out->data + p->fam_off[p->nfam - 1],
                         hist ? "histogram" : "plain", type_names[p->type]);
    }
    return RTS_ERR_OK;
}

static enum rts_err check_labels(struct rts_prom *p, const struct rts_prom_label *l, size_t nl)
{
    const char *fam = p->out->data + p->fam_off[p->nfam - 1];
    int flen = p->fam_len[p->nfam - 1];
    size_t i, j;

    if (nl > RTS_PROM_MAX_LABELS || (nl && !l)) {
        return prom_fail(p, RTS_ERR_INVAL, "%.*s: %zu labels (at most %d)", flen, fam, nl,
                         RTS_PROM_MAX_LABELS);
    }
    for (i = 0; i < nl; i++) {
        if (!name_ok(l[i].name) || strncmp(l[i].name, "__", 2) == 0 ||
            strcmp(l[i].name, "le") == 0 || strcmp(l[i].name, "quantile") == 0) {
            return prom_fail(p, RTS_ERR_INVAL,
                             "%.*s: label name '%.*s' is invalid or reserved (le, quantile, __*)",
                             flen, fam, RTS_PROM_NAME_MAX, l[i].name ? l[i].name : "(null)");
        }
        if (!l[i].value || strlen(l[i].value) > RTS_PROM_VALUE_MAX) {
            return prom_fail(p, RTS_ERR_INVAL, "%.*s: label %s: value missing or over %d bytes",
                             flen, fam, l[i].name, RTS_PROM_VALUE_MAX);
        }
        for (j = 0; j < i; j++) {
            if (strcmp(l[i].name, l[j].name) == 0) {
                return prom_fail(p, RTS_ERR_INVAL, "%.*s: label %s given twice", flen, fam,
                                 l[i].name);
            }
        }
    }
    return RTS_ERR_OK;
}

/* One line: family name + @suffix, the labels (+ le=@le), a space, @value. */
static enum rts_err put_line(struct rts_prom *p, const char *suffix, const struct rts_prom_label *l,
                             size_t nl, const char *le, const char *value)
{
    size_t i, off = p->fam_off[p->nfam - 1], len = p->fam_len[p->nfam - 1];
    char name[RTS_PROM_NAME_MAX + 1];
    enum rts_err rc;

    /* copied out: appending may move the buffer the name lives in */
    memcpy(name, p->out->data + off, len);
    if ((rc = put(p, name, len)) || (rc = puts_(p, suffix))) {
        return rc;
    }
    if (nl || le) {
        rc = puts_(p, "{");
        for (i = 0; !rc && i < nl; i++) {
            if ((rc = puts_(p, i ? "," : "")) || (rc = puts_(p, l[i].name)) ||
                (rc = puts_(p, "=\"")) || (rc = put_escaped(p, l[i].value, 1)) ||
                (rc = puts_(p, "\""))) {
                break;
            }
        }
        if (!rc && le) {
            if ((rc = puts_(p, nl ? ",le=\"" : "le=\"")) || (rc = puts_(p, le)) ||
                (rc = puts_(p, "\""))) {
                return rc;
            }
        }
        if (rc || (rc = puts_(p, "}"))) {
            return rc;
        }
    }
    if ((rc = puts_(p, " ")) || (rc = puts_(p, value)) || (rc = puts_(p, "\n"))) {
        return rc;
    }
    return RTS_ERR_OK;
}

/* A sample value: NaN, +Inf, -Inf, or the shortest round-trip decimal. */
static void fmt_value(char *buf, double v)
{
    if (isnan(v)) {
        memcpy(buf, "NaN", 4);
    } else if (isinf(v)) {
        memcpy(buf, v > 0 ? "+Inf" : "-Inf", 5);
    } else {
        rts_fmt_double(buf, v);
    }
}

static enum rts_err sample_text(struct rts_prom *p, const struct rts_prom_label *l, size_t nl,
                                const char *value)
{
    size_t mark = p->out->len;
    enum rts_err rc;

    if ((rc = check_family(p, 0)) || (rc = check_labels(p, l, nl))) {
        return rc;
    }
    rc = put_line(p, "", l, nl, NULL, value);
    if (rc) {
        prom_rewind(p, mark);
    }
    return rc;
}

enum rts_err rts_prom_sample(struct rts_prom *p, const struct rts_prom_label *l, size_t nl,
                             double v)
{
    char buf[RTS_FMT_DOUBLE_MAX];

    if (!p->err.code && p->open && p->type == RTS_PROM_COUNTER && !(v >= 0)) {
        return prom_fail(p, RTS_ERR_INVAL, "%.*s: a counter cannot be negative or NaN",
                         p->fam_len[p->nfam - 1], p->out->data + p->fam_off[p->nfam - 1]);
    }
    fmt_value(buf, v);
    return sample_text(p, l, nl, buf);
}

enum rts_err rts_prom_sample_u64(struct rts_prom *p, const struct rts_prom_label *l, size_t nl,
                                 uint64_t v)
{
    char buf[RTS_FMT_INT_MAX];

    rts_fmt_u64(buf, v);
    return sample_text(p, l, nl, buf);
}

static enum rts_err check_bounds(struct rts_prom *p, const double *bounds, size_t nb)
{
    size_t i;

    if (nb > RTS_PROM_MAX_BOUNDS || (nb && !bounds)) {
        return prom_fail(p, RTS_ERR_INVAL, "histogram: %zu bounds (at most %d)", nb,
                         RTS_PROM_MAX_BOUNDS);
    }
    for (i = 0; i < nb; i++) {
        if (!isfinite(bounds[i]) || (i && !(bounds[i] > bounds[i - 1]))) {
            return prom_fail(p, RTS_ERR_INVAL,
                             "histogram: bounds must be finite and strictly increasing (at %zu)",
                             i);
        }
    }
    return RTS_ERR_OK;
}

/* The bucket lines (cumulative @cum[0..nb), then +Inf = @count), _sum, _count. */
static enum rts_err put_hist(struct rts_prom *p, const struct rts_prom_label *l, size_t nl,
                             const double *bounds, const uint64_t *cum, size_t nb, uint64_t count,
                             double sum)
{
    char le[RTS_FMT_DOUBLE_MAX], val[RTS_FMT_DOUBLE_MAX];
    size_t mark = p->out->len, i;
    enum rts_err rc = RTS_ERR_OK;

    for (i = 0; !rc && i < nb; i++) {
        rts_fmt_double(le, bounds[i]);
        rts_fmt_u64(val, cum[i]);
        rc = put_line(p, "_bucket", l, nl, le, val);
    }
    rts_fmt_u64(val, count);
    if (!rc) {
        rc = put_line(p, "_bucket", l, nl, "+Inf", val);
    }
    if (!rc) {
        fmt_value(le, sum);
        rc = put_line(p, "_sum", l, nl, NULL, le);
    }
    if (!rc) {
        rc = put_line(p, "_count", l, nl, NULL, val);
    }
    if (rc) {
        prom_rewind(p, mark);
    }
    return rc;
}

uint64_t rts_prom_hist_le(const struct rts_hist *h, uint64_t le)
{
    uint64_t n = 0, cnt = 0, lo, hi, mid, base, c;
    size_t i, top = 0;

    for (i = 0; i < RTS_HIST_BUCKETS; i++) {
        if (h->b[i]) {
            n += h->b[i];
            top = i;
        }
    }
    for (i = 0; n && i <= top; i++) {
        c = h->b[i];
        if (!c) {
            continue;
        }
        lo = rts_hist_bucket_lower(i);
        if (lo > le) {
            break; /* every representative from here on is >= lo */
        }
        hi = rts_hist_bucket_upper(i);
        mid = lo + (hi - lo + 1) / 2;
        if (h->max < lo || h->max > hi) {
            /* rts_hist_quantile reports the midpoint for every rank here */
            cnt += mid <= le ? c : 0;
            continue;
        }
        /* The bucket holding max: ranks report min(mid, max), and the very
         * last rank (in the top bucket) reports max itself. */
        base = mid > h->max ? h->max : mid;
        if (i == top) {
            cnt += (base <= le ? c - 1 : 0) + (h->max <= le);
        } else {
            cnt += base <= le ? c : 0;
        }
    }
    return cnt;
}

/* A bound in exposed units as a threshold in @h's units: @b * @unit rounded
 * to the nearest integer when it is one up to rounding error (1e-6 * 1e9 is
 * not exactly 1000), else its floor. -1: below every value; UINT64_MAX: above. */
static int threshold(double b, double unit, uint64_t *out)
{
    double t = b * unit, r;

    if (t < 0) {
        return -1;
    }
    if (t >= 18446744073709551615.0) {
        *out = UINT64_MAX;
        return 0;
    }
    r = nearbyint(t);
    *out = (uint64_t)(fabs(t - r) <= 1e-9 * (t > 1 ? t : 1) ? r : floor(t));
    return 0;
}

enum rts_err rts_prom_hist_scaled(struct rts_prom *p, const struct rts_prom_label *l, size_t nl,
                                  const struct rts_hist *h, double unit, const double *bounds,
                                  size_t nb)
{
    uint64_t cum[RTS_PROM_MAX_BOUNDS], n = 0, t;
    enum rts_err rc;
    size_t i;

    if ((rc = check_family(p, 1)) || (rc = check_labels(p, l, nl)) ||
        (rc = check_bounds(p, bounds, nb))) {
        return rc;
    }
    if (!h || !(unit > 0) || !isfinite(unit)) {
        return prom_fail(p, RTS_ERR_INVAL, "histogram: no histogram or a unit that is not > 0");
    }
    for (i = 0; i < RTS_HIST_BUCKETS; i++) {
        n += h->b[i];
    }
    for (i = 0; i < nb; i++) {
        cum[i] = threshold(bounds[i], unit, &t) < 0 ? 0 : rts_prom_hist_le(h, t);
    }
    return put_hist(p, l, nl, bounds, cum, nb, n, (double)h->sum / unit);
}

enum rts_err rts_prom_hist_seconds(struct rts_prom *p, const struct rts_prom_label *l, size_t nl,
                                   const struct rts_hist *h)
{
    return rts_prom_hist_scaled(p, l, nl, h, 1e9, rts_prom_seconds_bounds, RTS_PROM_SECONDS_BOUNDS);
}

enum rts_err rts_prom_hist_counts(struct rts_prom *p, const struct rts_prom_label *l, size_t nl,
                                  const double *bounds, const uint64_t *counts, size_t nb,
                                  double sum)
{
    uint64_t cum[RTS_PROM_MAX_BOUNDS], n = 0;
    enum rts_err rc;
    size_t i;

    if ((rc = check_family(p, 1)) || (rc = check_labels(p, l, nl)) ||
        (rc = check_bounds(p, bounds, nb))) {
        return rc;
    }
    if (!counts) {
        return prom_fail(p, RTS_ERR_INVAL, "histogram: no counts");
    }
    for (i = 0; i <= nb; i++) {
        if (counts[i] > UINT64_MAX - n) {
            return prom_fail(p, RTS_ERR_INVAL, "histogram: counts overflow 64 bits");
        }
        n += counts[i];
        if (i < nb) {
            cum[i] = n;
        }
    }
    return put_hist(p, l, nl, bounds, cum, nb, n, sum);
}

enum rts_err rts_prom_finish(struct rts_prom *p, struct rts_errbuf *eb)
{
    if (p->err.code && eb) {
        *eb = p->err;
    }
    p->open = 0;
    return p->err.code;
}
