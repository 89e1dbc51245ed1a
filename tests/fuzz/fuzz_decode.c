/*
 * fuzz_decode.c - libFuzzer target for the JSON decoder.
 *
 * Decodes arbitrary bytes against two fixed schemas (the fraud schema with
 * implicit id and time, and one with every field type, a declared id and a
 * declared timestamp) and checks what must hold whatever the input: the
 * decoder returns a record or one known reason with a NUL-terminated message
 * and a position inside the message; a record is a multiple of 8, within the
 * advertised maximum, holds the exact payload, a non-empty key of at most
 * RTS_KEY_MAX_BYTES whose hash matches, every string inside the record, and
 * is the same when decoded twice and when viewed after a memcpy.
 *
 * Build: clang -fsanitize=fuzzer,address -Isrc tests/fuzz/fuzz_decode.c
 *        src/event/schema.c src/event/decode.c src/core/err.c -lxxhash -lm
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "event/decode.h"
#include "event/schema.h"

#define MAXB 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rts_schema *schemas[2];
static uint64_t rec1[(3 * MAXB + 4096) / 8];
static uint64_t rec2[(3 * MAXB + 4096) / 8];
static union rts_val vals[32];

static void add(struct rts_schema *s, const char *name, enum rts_field_type t, int required)
{
    struct rts_field_spec f;

    memset(&f, 0, sizeof(f));
    f.name = name;
    f.type = t;
    f.required = required;
    if (rts_schema_add(s, &f, NULL) != RTS_ERR_OK) {
        abort();
    }
}

static void build(void)
{
    struct rts_field_spec f;
    struct rts_schema *s;

    s = rts_schema_new();
    memset(&f, 0, sizeof(f));
    f.name = "card_id";
    f.type = RTS_FT_STRING;
    f.required = 1;
    f.max_len = 64;
    rts_schema_add(s, &f, NULL);
    memset(&f, 0, sizeof(f));
    f.name = "amount";
    f.type = RTS_FT_FLOAT;
    f.required = 1;
    f.has_min = 1;
    rts_schema_add(s, &f, NULL);
    add(s, "merchant_id", RTS_FT_STRING, 0);
    memset(&f, 0, sizeof(f));
    f.name = "mcc";
    f.type = RTS_FT_INT;
    f.has_default = 1;
    rts_schema_add(s, &f, NULL);
    memset(&f, 0, sizeof(f));
    f.name = "country";
    f.type = RTS_FT_STRING;
    f.has_default = 1;
    f.def_str = "US";
    f.max_len = 2;
    rts_schema_add(s, &f, NULL);
    if (rts_schema_set_roles(s, "txn_id", "card_id", "ts", NULL) != RTS_ERR_OK) {
        abort();
    }
    schemas[0] = s;

    s = rts_schema_new();
    add(s, "id", RTS_FT_STRING, 0);
    add(s, "s", RTS_FT_STRING, 0);
    add(s, "i", RTS_FT_INT, 0);
    add(s, "f", RTS_FT_FLOAT, 0);
    add(s, "b", RTS_FT_BOOL, 1);
    add(s, "t", RTS_FT_TIMESTAMP, 0);
    add(s, "when", RTS_FT_TIMESTAMP, 0);
    memset(&f, 0, sizeof(f));
    f.name = "r";
    f.type = RTS_FT_FLOAT;
    f.has_min = f.has_max = 1;
    f.min = -1;
    f.max = 1;
    f.has_default = 1;
    f.def_num = 0.5;
    rts_schema_add(s, &f, NULL);
    if (rts_schema_set_roles(s, "id", "k", "when", NULL) != RTS_ERR_OK) {
        abort();
    }
    schemas[1] = s;
}

static int inside(struct rts_str v, const void *rec, size_t n)
{
    const char *r = rec;

    return v.p == NULL || (v.p >= r && v.p + v.n <= r + n);
}

static void check_one(const struct rts_schema *s, const uint8_t *data, size_t size)
{
    struct rts_decode_err err;
    struct rts_event ev;
    size_t n, n2, i, nf = rts_schema_nfields(s);

    memset(&err, 0xcc, sizeof(err));
    n = rts_decode(s, (const char *)data, size, MAXB, 1700000000000, rec1, sizeof(rec1), &err);
    if (n == 0) {
        if ((unsigned)err.reason >= RTS_DLQ__COUNT || err.pos > size ||
            memchr(err.msg, '\0', sizeof(err.msg)) == NULL || err.msg[0] == '\0' ||
            err.field < -1 || err.field >= (int)nf) {
            abort();
        }
        return;
    }
    if (n % 8 != 0 || n > rts_decode_record_max(s, MAXB) || n != rts_record_size(rec1)) {
        abort();
    }
    n2 = rts_decode(s, (const char *)data, size, MAXB, 1700000000000, rec2, sizeof(rec2), &err);
    if (n2 != n || memcmp(rec1, rec2, n) != 0) {
        abort();
    }
    memset(rec1, 0xa5, n);
    rts_event_view(s, rec2, &ev, vals);
    if (ev.payload.n != size || memcmp(ev.payload.p, data, size) != 0) {
        abort();
    }
    if (!ev.key.p || ev.key.n == 0 || ev.key.n > RTS_KEY_MAX_BYTES ||
        ev.key_hash != rts_hash64(ev.key.p, ev.key.n) || !inside(ev.key, rec2, n) ||
        !inside(ev.id, rec2, n)) {
        abort();
    }
    for (i = 0; i < nf; i++) {
        const struct rts_field_spec *f = rts_schema_field(s, i);
        if (f->type == RTS_FT_STRING) {
            if (!inside(vals[i].str, rec2, n) || (f->max_len && vals[i].str.n > f->max_len)) {
                abort();
            }
        } else if (f->type == RTS_FT_BOOL) {
            if (!(isnan(vals[i].num) || vals[i].num == 0 || vals[i].num == 1)) {
                abort();
            }
        } else if (!isnan(vals[i].num) && !isfinite(vals[i].num)) {
            abort();
        }
        if (f->required && rts_val_missing(rts_field_value_type(f->type), vals[i])) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!schemas[0]) {
        build();
    }
    check_one(schemas[0], data, size);
    check_one(schemas[1], data, size);
    return 0;
}
