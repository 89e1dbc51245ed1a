/*
 * rows.h - tables of named cells from CSV (RFC 4180, a header row names the
 * columns) or JSON lines (one flat object per line): what the file store
 * loads and `rtscore store load` writes.
 *
 * The parser walks a text in memory and hands one row at a time to a
 * callback; names and cells point into scratch buffers that live until the
 * callback returns. A cell is text: CSV cells as written (quotes removed),
 * JSON strings unescaped, JSON numbers as their shortest text, true/false as
 * 1/0. An empty CSV cell and a JSON null are absent (p == NULL). Off the
 * per-event path: it allocates.
 *
 * Thread: any; no shared state.
 */
#ifndef RTS_FEATURE_ROWS_H
#define RTS_FEATURE_ROWS_H

#include <stddef.h>

#include "core/err.h"
#include "event/value.h"

enum rts_rows_format { RTS_ROWS_CSV = 1, RTS_ROWS_JSONL };

/* "csv", "jsonl" (also "json", "ndjson"): 0 ok, -1 unknown. */
int rts_rows_format_parse(const char *s, enum rts_rows_format *out);
/* By the file name's extension: .jsonl, .json, .ndjson are JSON lines,
 * anything else CSV. */
enum rts_rows_format rts_rows_format_of(const char *path);

struct rts_row {
    size_t n;                    /* cells */
    const struct rts_str *names; /* n column names (CSV: the header; JSON: the keys) */
    const struct rts_str *cells; /* n values; p == NULL: absent */
    size_t line;                 /* 1-based line where the row starts */
};

/* Returns RTS_ERR_OK to go on; anything else stops the parse and is
 * returned by rts_rows_parse (with @eb as the callback filled it). */
struct rts_rows_cb {
    enum rts_err (*row)(void *arg, const struct rts_row *row, struct rts_errbuf *eb);
    void *arg;
};

/* Parse @len bytes of @text named @name (for messages) as @fmt, calling
 * cb->row for each row in order. Blank lines are skipped; a UTF-8 byte order
 * mark at the start is ignored. Errors are RTS_ERR_PARSE with "NAME:LINE:
 * what" (a CSV row whose cell count differs from the header's, an
 * unterminated quote, a duplicate or empty column name, a JSON line that is
 * not an object of scalars) or RTS_ERR_NOMEM. */
enum rts_err rts_rows_parse(const char *name, const char *text, size_t len,
                            enum rts_rows_format fmt, const struct rts_rows_cb *cb,
                            struct rts_errbuf *eb);

#endif /* RTS_FEATURE_ROWS_H */
