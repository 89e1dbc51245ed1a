/*
 * rows.c - the CSV and JSON-lines row reader of rows.h.
 *
 * CSV: a record is cells separated by commas and ended by LF or CRLF; a cell
 * in double quotes may hold commas, line breaks and doubled quotes. Each
 * record is unescaped into one scratch buffer (cells are offsets into it
 * until the record is complete, since the buffer may move as it grows).
 * JSON lines go through jansson, one line at a time.
 */
#include "feature/rows.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/fmt.h"

int rts_rows_format_parse(const char *s, enum rts_rows_format *out)
{
    if (strcmp(s, "csv") == 0) {
        *out = RTS_ROWS_CSV;
    } else if (strcmp(s, "jsonl") == 0 || strcmp(s, "json") == 0 || strcmp(s, "ndjson") == 0) {
        *out = RTS_ROWS_JSONL;
    } else {
        return -1;
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

enum rts_rows_format rts_rows_format_of(const char *path)
{
    return ends_with(path, ".jsonl") || ends_with(path, ".json") || ends_with(path, ".ndjson")
               ? RTS_ROWS_JSONL
               : RTS_ROWS_CSV;
}

/* Scratch space of one row: text bytes, and per cell an offset and length
 * (SIZE_MAX offset = absent) that become rts_str once the row is whole. */
struct scratch {
    char *text;
    size_t len, cap;
    size_t *off, *cell_len;
    struct rts_str *names, *cells;
    size_t n, ncap;
};

static int scratch_put(struct scratch *s, const char *p, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        char *t;
        while (cap < s->len + n + 1) {
            cap *= 2;
        }
        t = realloc(s->text, cap);
        if (!t) {
            return -1;
        }
        s->text = t;
        s->cap = cap;
    }
    memcpy(s->text + s->len, p, n);
    s->len += n;
    return 0;
}

/* Start a new cell; 0 ok, -1 out of memory. */
static int scratch_cell(struct scratch *s)
{
    if (s->n == s->ncap) {
        size_t cap = s->ncap ? 2 * s->ncap : 16;
        size_t *o = realloc(s->off, cap * sizeof(*o));
        size_t *l = o ? realloc(s->cell_len, cap * sizeof(*l)) : NULL;
        struct rts_str *nm = l ? realloc(s->names, cap * sizeof(*nm)) : NULL;
        struct rts_str *c = nm ? realloc(s->cells, cap * sizeof(*c)) : NULL;
        if (o) {
            s->off = o;
        }
        if (l) {
            s->cell_len = l;
        }
        if (nm) {
            s->names = nm;
        }
        if (!c) {
            return -1;
        }
        s->cells = c;
        s->ncap = cap;
    }
    s->off[s->n] = s->len;
    s->cell_len[s->n] = 0;
    s->n++;
    return 0;
}

/* Offsets to pointers: cells [from, n) into @dst. Empty cells are absent. */
static void scratch_finish(struct scratch *s, struct rts_str *dst, size_t from)
{
    for (size_t i = from; i < s->n; i++) {
        dst[i - from].p = s->cell_len[i] ? s->text + s->off[i] : NULL;
        dst[i - from].n = (uint32_t)s->cell_len[i];
    }
}

static void scratch_free(struct scratch *s)
{
    free(s->text);
    free(s->off);
    free(s->cell_len);
    free(s->names);
    free(s->cells);
}

static enum rts_err nomem(struct rts_errbuf *eb, const char *name)
{
    return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: out of memory", name);
}

/* Read one CSV record starting at *pos into @s (cells appended from s->n).
 * Advances *pos past its line end and *line by the lines it spans. */
static enum rts_err csv_record(const char *name, const char *t, size_t len, size_t *pos,
                               size_t *line, struct scratch *s, struct rts_errbuf *eb)
{
    size_t i = *pos, start_line = *line;

    if (scratch_cell(s)) {
        return nomem(eb, name);
    }
    while (i < len && t[i] != '\n') {
        char c = t[i];
        if (c == ',') {
            if (scratch_cell(s)) {
                return nomem(eb, name);
            }
            i++;
            continue;
        }
        if (c == '"' && s->cell_len[s->n - 1] == 0) {
            i++;
            for (;;) {
                size_t j = i;
                while (j < len && t[j] != '"') {
                    *line += t[j] == '\n';
                    j++;
                }
                if (j >= len) {
                    return rts_errf(eb, RTS_ERR_PARSE, 0, 0,
                                    "%s:%zu: a quoted cell is not closed", name, start_line);
                }
                if (scratch_put(s, t + i, j - i)) {
                    return nomem(eb, name);
                }
                s->cell_len[s->n - 1] += j - i;
                if (j + 1 < len && t[j + 1] == '"') { /* "" is one quote */
                    if (scratch_put(s, "\"", 1)) {
                        return nomem(eb, name);
                    }
                    s->cell_len[s->n - 1]++;
                    i = j + 2;
                    continue;
                }
                i = j + 1;
                break;
            }
            if (i < len && t[i] != ',' && t[i] != '\n' && t[i] != '\r') {
                return rts_errf(eb, RTS_ERR_PARSE, 0, 0,
                                "%s:%zu: text after a quoted cell (cells are separated by "
                                "commas)", name, *line);
            }
            continue;
        }
        if (c == '\r' && (i + 1 == len || t[i + 1] == '\n')) {
            i++;
            continue;
        }
        if (scratch_put(s, &c, 1)) {
            return nomem(eb, name);
        }
        s->cell_len[s->n - 1]++;
        i++;
    }
    *pos = i < len ? i + 1 : i;
    (*line)++;
    return RTS_ERR_OK;
}

/* 1 if the line at @pos holds only blanks; *end is its end. */
static int blank_line(const char *t, size_t len, size_t pos, size_t *end)
{
    int blank = 1;

    while (pos < len && t[pos] != '\n') {
        if (t[pos] != ' ' && t[pos] != '\t' && t[pos] != '\r') {
            blank = 0;
        }
        pos++;
    }
    *end = pos < len ? pos + 1 : pos;
    return blank;
}

static enum rts_err parse_csv(const char *name, const char *t, size_t len,
                              const struct rts_rows_cb *cb, struct rts_errbuf *eb)
{
    struct scratch s = {0};
    struct rts_row row = {0};
    size_t pos = 0, line = 1, ncols, end;
    enum rts_err rc = RTS_ERR_OK;

    while (pos < len && blank_line(t, len, pos, &end)) {
        pos = end;
        line++;
    }
    if (pos >= len) {
        return rts_errf(eb, RTS_ERR_PARSE, 0, 0, "%s: no header row (CSV needs one naming the "
                                                  "columns)", name);
    }
    rc = csv_record(name, t, len, &pos, &line, &s, eb);
    if (rc) {
        goto out;
    }
    ncols = s.n;
    /* the header stays at the start of the scratch text; rows go after it */
    scratch_finish(&s, s.names, 0);
    for (size_t i = 0; i < ncols; i++) {
        if (!s.names[i].p) {
            rc = rts_errf(eb, RTS_ERR_PARSE, 0, 0, "%s:%zu: column %zu has no name", name,
                          line - 1, i + 1);
            goto out;
        }
        for (size_t j = 0; j < i; j++) {
            if (s.names[j].n == s.names[i].n &&
                memcmp(s.names[j].p, s.names[i].p, s.names[i].n) == 0) {
                rc = rts_errf(eb, RTS_ERR_PARSE, 0, 0, "%s:%zu: column '%.*s' appears twice",
                              name, line - 1, (int)s.names[i].n, s.names[i].p);
                goto out;
            }
        }
    }
    {
        size_t head_len = s.len;
        struct rts_str *names = malloc(ncols * sizeof(*names));
        if (!names) {
            rc = nomem(eb, name);
            goto out;
        }
        for (size_t i = 0; i < ncols; i++) {
            names[i].n = s.names[i].n;
            names[i].p = (const char *)(uintptr_t)(s.names[i].p - s.text); /* offset for now */
        }
        while (pos < len) {
            size_t row_line = line;
            if (blank_line(t, len, pos, &end)) {
                pos = end;
                line++;
                continue;
            }
            s.len = head_len;
            s.n = ncols;
            rc = csv_record(name, t, len, &pos, &line, &s, eb);
            if (rc) {
                break;
            }
            if (s.n - ncols != ncols) {
                rc = rts_errf(eb, RTS_ERR_PARSE, 0, 0, "%s:%zu: %zu cells, the header has %zu",
                              name, row_line, s.n - ncols, ncols);
                break;
            }
            /* the text may have moved: names are re-pointed for every row */
            for (size_t i = 0; i < ncols; i++) {
                s.names[i].p = s.text + (uintptr_t)names[i].p;
                s.names[i].n = names[i].n;
            }
            scratch_finish(&s, s.cells, ncols);
            row.n = ncols;
            row.names = s.names;
            row.cells = s.cells;
            row.line = row_line;
            rc = cb->row(cb->arg, &row, eb);
            if (rc) {
                break;
            }
        }
        free(names);
    }
out:
    scratch_free(&s);
    return rc;
}

/* One JSON scalar as cell text appended to @s; 1 if it is not a scalar. */
static int json_cell(struct scratch *s, json_t *v, int *oom)
{
    char num[RTS_FMT_DOUBLE_MAX];
    size_t n;

    *oom = 0;
    switch (json_typeof(v)) {
    case JSON_STRING:
        *oom = scratch_put(s, json_string_value(v), json_string_length(v));
        s->cell_len[s->n - 1] = json_string_length(v);
        return 0;
    case JSON_INTEGER:
        n = rts_fmt_i64(num, (int64_t)json_integer_value(v));
        break;
    case JSON_REAL:
        n = rts_fmt_double(num, json_real_value(v));
        break;
    case JSON_TRUE:
        num[0] = '1';
        n = 1;
        break;
    case JSON_FALSE:
        num[0] = '0';
        n = 1;
        break;
    case JSON_NULL:
        return 0; /* absent: length 0 */
    default:
        return 1;
    }
    *oom = scratch_put(s, num, n);
    s->cell_len[s->n - 1] = n;
    return 0;
}

static enum rts_err parse_jsonl(const char *name, const char *t, size_t len,
                                const struct rts_rows_cb *cb, struct rts_errbuf *eb)
{
    struct scratch s = {0};
    size_t pos = 0, line = 0, end;
    enum rts_err rc = RTS_ERR_OK;

    while (pos < len && !rc) {
        json_error_t jerr;
        json_t *obj, *v;
        const char *key;
        struct rts_row row;
        size_t lstart = pos, llen;
        int oom = 0;

        line++;
        if (blank_line(t, len, pos, &end)) {
            pos = end;
            continue;
        }
        llen = end - lstart;
        pos = end;
        obj = json_loadb(t + lstart, llen, JSON_DECODE_ANY, &jerr);
        if (!obj || !json_is_object(obj)) {
            rc = rts_errf(eb, RTS_ERR_PARSE, 0, 0, "%s:%zu: %s", name, line,
                          obj ? "expected one JSON object per line" : jerr.text);
            json_decref(obj);
            break;
        }
        s.len = 0;
        s.n = 0;
        json_object_foreach(obj, key, v)
        {
            size_t kn = strlen(key);
            if (scratch_cell(&s) || scratch_put(&s, key, kn)) {
                oom = 1;
                break;
            }
            s.cell_len[s.n - 1] = kn;
            if (scratch_cell(&s)) {
                oom = 1;
                break;
            }
            if (json_cell(&s, v, &oom) || oom) {
                if (!oom) {
                    rc = rts_errf(eb, RTS_ERR_PARSE, 0, 0,
                                  "%s:%zu: '%s' holds an object or array; expected a number, "
                                  "string, bool or null",
                                  name, line, key);
                }
                break;
            }
        }
        json_decref(obj);
        if (oom) {
            rc = nomem(eb, name);
        }
        if (rc) {
            break;
        }
        /* cells alternate name, value: split them */
        for (size_t i = 0; i < s.n / 2; i++) {
            s.names[i].p = s.text + s.off[2 * i];
            s.names[i].n = (uint32_t)s.cell_len[2 * i];
            s.cells[i].p = s.cell_len[2 * i + 1] ? s.text + s.off[2 * i + 1] : NULL;
            s.cells[i].n = (uint32_t)s.cell_len[2 * i + 1];
        }
        row.n = s.n / 2;
        row.names = s.names;
        row.cells = s.cells;
        row.line = line;
        rc = cb->row(cb->arg, &row, eb);
    }
    scratch_free(&s);
    return rc;
}

enum rts_err rts_rows_parse(const char *name, const char *text, size_t len,
                            enum rts_rows_format fmt, const struct rts_rows_cb *cb,
                            struct rts_errbuf *eb)
{
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        len -= 3;
    }
    if (fmt == RTS_ROWS_JSONL) {
        return parse_jsonl(name, text, len, cb, eb);
    }
    return parse_csv(name, text, len, cb, eb);
}
