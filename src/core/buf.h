/*
 * buf.h - a growable byte buffer for work off the per-event path (config,
 * model files, reports). A zeroed struct rts_buf is empty and valid.
 * Per-event code uses fixed buffers instead.
 */
#ifndef RTS_CORE_BUF_H
#define RTS_CORE_BUF_H

#include <stddef.h>

#include "core/err.h"

struct rts_buf {
    char *data; /* NUL-terminated when len > 0 or after any append */
    size_t len, cap;
};

/* Append @n bytes; keeps data NUL-terminated. Returns RTS_ERR_NOMEM on failure. */
enum rts_err rts_buf_append(struct rts_buf *b, const void *p, size_t n);
enum rts_err rts_buf_printf(struct rts_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Replace the contents with the file at @path ("-" is stdin); at most @max
 * bytes, else RTS_ERR_LIMIT. Fills @eb with the path and the reason. */
enum rts_err rts_buf_read_file(struct rts_buf *b, const char *path, size_t max,
                               struct rts_errbuf *eb);
void rts_buf_fini(struct rts_buf *b); /* frees; leaves a zeroed buffer */

#endif /* RTS_CORE_BUF_H */
