/*
 * err.h - error codes and the caller-owned error buffer.
 *
 * Errors return by value. Details (what, where) go into a struct rts_errbuf
 * that the caller owns; there is no global error state. A zeroed errbuf is
 * empty and valid. Functions that fill @eb set eb->code to their return value.
 */
#ifndef RTS_CORE_ERR_H
#define RTS_CORE_ERR_H

#include <stddef.h>

#include "core/err_table.h"

enum rts_err {
#define RTS_ERR_ENUM(name, retriable, desc) RTS_ERR_##name,
    RTS_ERR_TABLE(RTS_ERR_ENUM)
#undef RTS_ERR_ENUM
        RTS_ERR__COUNT
};

struct rts_errbuf {
    enum rts_err code;
    int line, column; /* config / expression position, 1-based, 0 if none */
    size_t pos;       /* byte offset in the input, if any */
    char msg[256];    /* "features[3].window: expected a duration like 5m" */
};

const char *rts_err_name(enum rts_err e);  /* "INVAL"; "UNKNOWN" out of range */
const char *rts_err_desc(enum rts_err e);  /* one-line description */
int rts_err_is_retriable(enum rts_err e);  /* 1 if a retry may succeed */

/* Fill @eb (NULL is allowed and ignored) and return @code. @line/@column 0
 * when unknown. The message is formatted with printf rules and truncated to
 * fit. Thread: any. */
enum rts_err rts_errf(struct rts_errbuf *eb, enum rts_err code, int line, int column,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Prefix eb->msg with "@prefix: " (e.g. a file name); keeps code and position. */
void rts_err_prefix(struct rts_errbuf *eb, const char *prefix);

#endif /* RTS_CORE_ERR_H */
