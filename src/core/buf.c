/*
 * buf.c - growable byte buffer; doubles its capacity, never shrinks.
 */
#include "core/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum rts_err buf_reserve(struct rts_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1, cap = b->cap ? b->cap : 64;
    char *p;

    if (need <= b->cap) {
        return RTS_ERR_OK;
    }
    while (cap < need) {
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (!p) {
        return RTS_ERR_NOMEM;
    }
    b->data = p;
    b->cap = cap;
    return RTS_ERR_OK;
}

enum rts_err rts_buf_append(struct rts_buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n)) {
        return RTS_ERR_NOMEM;
    }
    if (n) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return RTS_ERR_OK;
}

enum rts_err rts_buf_printf(struct rts_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n)) {
        return RTS_ERR_NOMEM;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return RTS_ERR_OK;
}

enum rts_err rts_buf_read_file(struct rts_buf *b, const char *path, size_t max,
                               struct rts_errbuf *eb)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char chunk[65536];
    size_t n;
    enum rts_err rc = RTS_ERR_OK;

    if (!f) {
        return rts_errf(eb, RTS_ERR_IO, 0, 0, "%s: cannot open: %s", path, strerror(errno));
    }
    b->len = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b->len + n > max) {
            rc = rts_errf(eb, RTS_ERR_LIMIT, 0, 0, "%s: larger than %zu bytes", path, max);
            goto out;
        }
        if (rts_buf_append(b, chunk, n)) {
            rc = rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: out of memory", path);
            goto out;
        }
    }
    if (ferror(f)) {
        rc = rts_errf(eb, RTS_ERR_IO, 0, 0, "%s: read error: %s", path, strerror(errno));
        goto out;
    }
    if (rts_buf_append(b, "", 0)) {
        rc = rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: out of memory", path);
    }
out:
    if (f != stdin) {
        fclose(f);
    }
    return rc;
}

void rts_buf_fini(struct rts_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
