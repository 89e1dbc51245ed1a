/*
 * err.c - names and descriptions generated from err_table.h, and the
 * formatting helpers of struct rts_errbuf.
 */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int retriable;
    const char *desc;
} err_info[] = {
#define RTS_ERR_INFO(name, retriable, desc) {#name, retriable, desc},
    RTS_ERR_TABLE(RTS_ERR_INFO)
#undef RTS_ERR_INFO
};

const char *rts_err_name(enum rts_err e)
{
    return (unsigned)e < RTS_ERR__COUNT ? err_info[e].name : "UNKNOWN";
}

const char *rts_err_desc(enum rts_err e)
{
    return (unsigned)e < RTS_ERR__COUNT ? err_info[e].desc : "unknown error";
}

int rts_err_is_retriable(enum rts_err e)
{
    return (unsigned)e < RTS_ERR__COUNT ? err_info[e].retriable : 0;
}

enum rts_err rts_errf(struct rts_errbuf *eb, enum rts_err code, int line, int column,
                      const char *fmt, ...)
{
    va_list ap;

    if (!eb) {
        return code;
    }
    eb->code = code;
    eb->line = line;
    eb->column = column;
    va_start(ap, fmt);
    vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
    va_end(ap);
    return code;
}

void rts_err_prefix(struct rts_errbuf *eb, const char *prefix)
{
    char tmp[2 * sizeof(eb->msg)];

    if (!eb || !prefix || !*prefix) {
        return;
    }
    snprintf(tmp, sizeof(tmp), "%.*s: %s", (int)(sizeof(eb->msg) / 2), prefix, eb->msg);
    memcpy(eb->msg, tmp, sizeof(eb->msg) - 1); /* cut to fit */
    eb->msg[sizeof(eb->msg) - 1] = '\0';
}
