/*
 * fmt.h - number and JSON string formatting for output records, CSV and logs.
 *
 * Everything writes into a caller buffer, never allocates, and does not
 * depend on the locale (the decimal point is always '.'). Outputs are
 * NUL-terminated; the returned length does not count the NUL.
 *
 * rts_fmt_double() writes the shortest decimal text that strtod() reads back
 * as exactly the same double, so scores and features survive a round trip
 * through JSON or CSV bit for bit (backfill parity depends on it).
 */
#ifndef RTS_CORE_FMT_H
#define RTS_CORE_FMT_H

#include <stddef.h>
#include <stdint.h>

#define RTS_FMT_DOUBLE_MAX 32 /* buffer size for rts_fmt_double */
#define RTS_FMT_INT_MAX 21    /* buffer size for rts_fmt_i64 / rts_fmt_u64 */

/* @v as the shortest text that strtod() reads back as exactly @v (fewest
 * significant digits). Integral values below 2^53 print as integers ("3",
 * "-0" stays "-0"); other values from 1e-9 up in plain notation ("42.17",
 * "0.0000001", "0.30000000000000004"); smaller ones with an exponent
 * ("1.5e-10"). Below 1e-11 and for integers from 2^53 up ("1e+22") the text
 * is the first of %.15g, %.16g, %.17g that reads back: exact, though not
 * always the fewest digits. Non-finite values write "null" (JSON's missing;
 * CSV writers test isfinite first and write an empty cell). @buf holds at
 * least RTS_FMT_DOUBLE_MAX bytes. Returns the length. Thread: any. */
size_t rts_fmt_double(char *buf, double v);

size_t rts_fmt_i64(char *buf, int64_t v);  /* @buf >= RTS_FMT_INT_MAX; returns the length */
size_t rts_fmt_u64(char *buf, uint64_t v); /* @buf >= RTS_FMT_INT_MAX; returns the length */

/* The JSON escape of one byte: the short forms (\" \\ \b \f \n \r \t),
 * \u00XX for other control bytes and DEL, else the byte itself. @out has
 * room for 6 bytes; returns how many were written. Logs quote with it too. */
size_t rts_fmt_escape_byte(char *out, unsigned char c);

/* @s (@n bytes, NULs allowed) as a quoted JSON string: '"' and '\\' escaped,
 * \b \f \n \r \t by their short escapes, other bytes below 0x20 as \u00XX,
 * valid UTF-8 passed through, each byte of an invalid UTF-8 sequence (stray
 * continuation, overlong form, surrogate, beyond U+10FFFF, truncated) as
 * \ufffd, so the output is always valid JSON. Returns the length, or 0 if
 * the text and its NUL do not fit in @cap bytes (then @buf holds garbage).
 * Thread: any. */
size_t rts_fmt_json_str(char *buf, size_t cap, const char *s, size_t n);

#endif /* RTS_CORE_FMT_H */
