/*
 * log.h - structured logs: one logfmt line per call on stderr.
 *
 *   ts=2026-11-22T15:39:43.123Z level=info msg="worker started" worker=1
 *
 * The timestamp is UTC wall-clock time in milliseconds. Values containing
 * spaces, quotes, '=', backslashes or control characters, and empty values,
 * are quoted and escaped (\" \\ \n \r \t, other controls as \u00XX). A line is
 * written with one write(2), so lines of concurrent threads never interleave
 * (at most RTS_LOG_LINE_MAX bytes; longer lines are cut and end with
 * truncated=1).
 *
 * Repeats are rate-limited per call site (the @msg and @kvfmt pointers): at
 * most RTS_LOG_BURST lines per second each; the next line of that site that
 * gets through carries suppressed=K, the number dropped in between.
 *
 * Globals: the minimum level (set once at start; the one global of this
 * module, with the test hook's fd and the fixed call-site table that the rate
 * limit needs). Thread: every function may be called from any thread.
 */
#ifndef RTS_CORE_LOG_H
#define RTS_CORE_LOG_H

#define RTS_LOG_BURST 10      /* lines per second per call site */
#define RTS_LOG_LINE_MAX 4096 /* bytes per line, newline included */

enum rts_log_level { RTS_LOG_DEBUG, RTS_LOG_INFO, RTS_LOG_WARN, RTS_LOG_ERROR };

/* Drop lines below @l (default RTS_LOG_INFO). Call once at start. */
void rts_log_set_level(enum rts_log_level l);

/* 1 if a line at @l would be written: lets callers skip costly arguments. */
int rts_log_enabled(enum rts_log_level l);

/* "debug", "info", "warn" (or "warning"), "error", any case, into *@out.
 * Returns 0, or -1 (and leaves *@out) for anything else. */
int rts_log_level_parse(const char *s, enum rts_log_level *out);

const char *rts_log_level_name(enum rts_log_level l); /* "info"; "?" out of range */

/* Write one line at level @l: ts, level, msg=@msg, then the key=value pairs
 * of @kvfmt (printf-style, e.g. "worker=%d topic=%s"; NULL for none). Pairs
 * are separated by spaces in @kvfmt; each value (what follows '=' up to the
 * next space of the format) is formatted, then quoted if it needs to be, so
 * "path=%s" with "a b" gives path="a b". A value written in quotes in the
 * format (error="%s", spaces allowed inside) is always quoted, and quotes
 * inside it escaped: the quotes of the format are not doubled. A value is cut
 * at 1024 bytes.
 * Keeps errno. */
void rts_log(enum rts_log_level l, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Test hook: send lines to @fd instead of 2 (stderr). Returns the previous fd. */
int rts_log_set_fd(int fd);

#endif /* RTS_CORE_LOG_H */
