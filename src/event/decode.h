/*
 * decode.h - the hot-path JSON decoder and validator, and the event record.
 *
 * rts_decode turns one JSON message into a record: a self-contained,
 * position-independent block of bytes (8-byte aligned, a multiple of 8 long)
 * that holds a copy of the raw message, every unescaped string value, the
 * typed value of every schema field with defaults applied, the id, the key,
 * its hash and the event time. A record has offsets, never pointers, so it
 * may be memcpy'd into a queue slot and viewed there with rts_event_view. It
 * is a deterministic function of (schema, message, ingest time).
 *
 * A message that fails validation yields no record and one DLQ reason (the
 * first problem found, in message order; missing required fields are found
 * at the end of the object, in schema order) with the field, the byte offset
 * and a short message naming the field.
 *
 * Rules (DESIGN.md section 4): the top level is one JSON object, whitespace
 * around it allowed. Unknown fields are skipped but validated (depth <= 64).
 * Duplicate keys: every occurrence is validated, the last one is kept.
 * null = absent. Absent optional fields take their default, else missing
 * (NaN / NULL string). The time field's value is the event time: when absent
 * it is the ingest time, in the record and in its field slot alike.
 *
 * Thread: any; the decoder keeps no state and never allocates.
 */
#ifndef RTS_EVENT_DECODE_H
#define RTS_EVENT_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "event/schema.h"
#include "event/value.h"

/* The DLQ reasons: X(NAME, "wire name"). Generates enum rts_dlq_reason and
 * rts_dlq_reason_name(). Add a reason here and nowhere else. */
#define RTS_DLQ_REASONS(X)                                                                         \
    X(INVALID_JSON, "invalid_json")                                                                \
    X(MISSING_FIELD, "missing_field")                                                              \
    X(BAD_TYPE, "bad_type")                                                                        \
    X(OUT_OF_RANGE, "out_of_range")                                                                \
    X(TOO_LARGE, "too_large")                                                                      \
    X(BAD_TIME, "bad_time")                                                                        \
    X(BAD_ENCODING, "bad_encoding")                                                                \
    X(DUPLICATE_ID, "duplicate_id")                                                                \
    X(MODEL_ERROR, "model_error")

enum rts_dlq_reason {
#define RTS_DLQ_ENUM(name, str) RTS_DLQ_##name,
    RTS_DLQ_REASONS(RTS_DLQ_ENUM)
#undef RTS_DLQ_ENUM
        RTS_DLQ__COUNT
};

/* "invalid_json", ...; "unknown" out of range. */
const char *rts_dlq_reason_name(enum rts_dlq_reason r);
/* Parse a wire name: 0 ok, -1 unknown. */
int rts_dlq_reason_parse(const char *s, enum rts_dlq_reason *out);

struct rts_decode_err {
    enum rts_dlq_reason reason;
    int field;     /* schema index or -1 (not a schema field, or no field) */
    size_t pos;    /* byte offset in the message of the problem; the message
                    * length for a missing field; max_event_bytes for too_large */
    char msg[160]; /* "field 'amount': -5 is below min 0", NUL-terminated */
};

struct rts_event {
    struct rts_str id, key;    /* id.p == NULL when the schema has no id or it is absent */
    int64_t ts_ms;             /* event time; the ingest time when the event has none */
    uint64_t key_hash;         /* rts_hash64(key) */
    const union rts_val *vals; /* one per schema field, schema order; defaults applied */
    struct rts_str payload;    /* the raw message bytes */
};

/* Longest message a record can hold, whatever max_event_bytes says. */
#define RTS_DECODE_MAX_BYTES ((size_t)1 << 28)

/* Record capacity needed to decode any message of <= @max_event_bytes bytes
 * against @s (a few bytes per field, about 2 x max_event_bytes, the string
 * defaults). A multiple of 8. */
size_t rts_decode_record_max(const struct rts_schema *s, size_t max_event_bytes);

/* Decode and validate the @len bytes at @msg into a record at @rec (8-byte
 * aligned, @cap bytes; rts_decode_record_max(s, max_event_bytes) is always
 * enough). @ingest_ms is the event time when the message has none. Returns
 * the record size (> 0, a multiple of 8), or 0 with @err filled. A message
 * longer than @max_event_bytes (or RTS_DECODE_MAX_BYTES) is too_large before
 * anything else; a @cap too small for this message is also too_large, with a
 * message saying so. Never allocates, never reads @msg past @len; @msg need
 * not be NUL-terminated. Thread: any. */
size_t rts_decode(const struct rts_schema *s, const char *msg, size_t len, size_t max_event_bytes,
                  int64_t ingest_ms, void *rec, size_t cap, struct rts_decode_err *err);

/* View a record made by rts_decode with the same schema (at any 8-aligned
 * address): fills @ev and @vals (nfields entries) with pointers into @rec,
 * valid while the record stays where it is. ev->vals = @vals. */
void rts_event_view(const struct rts_schema *s, const void *rec, struct rts_event *ev,
                    union rts_val *vals);

/* Fields of a record without a full view: what the router and dedup need. */
uint64_t rts_record_key_hash(const void *rec);
size_t rts_record_size(const void *rec);
int64_t rts_record_ts_ms(const void *rec);
struct rts_str rts_record_id(const void *rec);
struct rts_str rts_record_key(const void *rec);
struct rts_str rts_record_payload(const void *rec);

#endif /* RTS_EVENT_DECODE_H */
