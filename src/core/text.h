/*
 * text.h - small text checks and encodings for output records: UTF-8
 * validation (RFC 3629: no overlongs, no surrogates, <= U+10FFFF), base64
 * (RFC 4648) and CSV field quoting (RFC 4180). Callers' buffers, no malloc.
 */
#ifndef RTS_CORE_TEXT_H
#define RTS_CORE_TEXT_H

#include <stddef.h>

/* 1 if @s[0..n) is valid UTF-8. */
int rts_utf8_valid(const char *s, size_t n);
/* Base64 of @n bytes into @out (cap >= 4 * ((n + 2) / 3)); returns bytes written. */
size_t rts_base64(char *out, const void *in, size_t n);
/* @s as one CSV field: quoted (and quotes doubled) only when it holds a comma,
 * quote, CR or LF. cap >= 2 * n + 2 suffices. Returns bytes, 0 if cap too small. */
size_t rts_csv_field(char *out, size_t cap, const char *s, size_t n);

#endif /* RTS_CORE_TEXT_H */
