/*
 * test_decode.c - the JSON decoder and the event record: every DLQ reason
 * with its field and message, valid events around each of them, defaults,
 * escapes, id/key/time handling, every timestamp form, records moved with
 * memcpy, boundaries, number conversion against strtod, and a deterministic
 * mutation test. Every message is decoded from a heap block of exactly its
 * length, so ASan catches a read past the end.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "event/decode.h"
#include "event/schema.h"
#include "test.h"

#define MAXB 4096

static uint64_t recbuf[(MAXB * 3 + 65536) / 8];
static struct rts_decode_err derr;
static struct rts_event ev;
static union rts_val vals[512];

/* The fraud schema of DESIGN.md: txn_id (implicit id), card_id (key), ts
 * (implicit time), amount, merchant_id, mcc, country. */
static struct rts_schema *fraud_schema(void)
{
    struct rts_schema *s = rts_schema_new();
    struct rts_errbuf eb = {0};
    struct rts_field_spec f;

    memset(&f, 0, sizeof(f));
    f.name = "card_id";
    f.type = RTS_FT_STRING;
    f.required = 1;
    f.max_len = 64;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_OK);
    memset(&f, 0, sizeof(f));
    f.name = "amount";
    f.type = RTS_FT_FLOAT;
    f.required = 1;
    f.has_min = 1;
    f.min = 0;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_OK);
    memset(&f, 0, sizeof(f));
    f.name = "merchant_id";
    f.type = RTS_FT_STRING;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_OK);
    memset(&f, 0, sizeof(f));
    f.name = "mcc";
    f.type = RTS_FT_INT;
    f.has_default = 1;
    f.def_num = 0;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_OK);
    memset(&f, 0, sizeof(f));
    f.name = "country";
    f.type = RTS_FT_STRING;
    f.has_default = 1;
    f.def_str = "US";
    f.max_len = 2;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_OK);
    CHECK_INT(rts_schema_set_roles(s, "txn_id", "card_id", "ts", &eb), RTS_ERR_OK);
    return s;
}

enum { F_CARD, F_AMOUNT, F_MERCHANT, F_MCC, F_COUNTRY, F_TXN, F_TS };

/* Decode @json from an exact-size heap copy; view it on success. */
static size_t dec_n(const struct rts_schema *s, const char *json, size_t len, size_t max)
{
    char *m = malloc(len ? len : 1);
    size_t n;

    memcpy(m, json, len);
    memset(&derr, 0, sizeof(derr));
    n = rts_decode(s, m, len, max, 1234567, recbuf, sizeof(recbuf), &derr);
    free(m);
    if (n) {
        rts_event_view(s, recbuf, &ev, vals);
    }
    return n;
}

static size_t dec(const struct rts_schema *s, const char *json)
{
    return dec_n(s, json, strlen(json), MAXB);
}

/* Decoding @json fails with @reason at @field, and the message is @msg (NULL: any). */
#define CHECK_FAIL(s, json, want_reason, want_field, want_msg)                                     \
    do {                                                                                           \
        size_t n_ = dec((s), (json));                                                              \
        CHECK_INT(n_, 0);                                                                          \
        if (n_ == 0) {                                                                             \
            CHECK_STR(rts_dlq_reason_name(derr.reason), rts_dlq_reason_name(want_reason));         \
            CHECK_INT(derr.field, (want_field));                                                   \
            if ((want_msg) != NULL) {                                                              \
                CHECK_STR(derr.msg, (const char *)(want_msg));                                     \
            }                                                                                      \
            CHECK(derr.msg[0] != '\0');                                                            \
            CHECK(derr.pos <= strlen(json));                                                       \
        }                                                                                          \
    } while (0)

static int str_eq(struct rts_str v, const char *want)
{
    return v.p && v.n == strlen(want) && memcmp(v.p, want, v.n) == 0;
}

#define GOOD                                                                                       \
    "{\"txn_id\":\"t-1029\",\"card_id\":\"c-4711\",\"ts\":1700000000123,\"amount\":42.17,"         \
    "\"merchant_id\":\"m-2231\",\"mcc\":5411,\"country\":\"DE\",\"is_fraud\":0}"

TEST(reason_names)
{
    static const char *const want[] = {"invalid_json", "missing_field", "bad_type",
                                       "out_of_range", "too_large",     "bad_time",
                                       "bad_encoding", "duplicate_id",  "model_error"};
    enum rts_dlq_reason r;
    unsigned i;

    CHECK_INT(RTS_DLQ__COUNT, 9);
    for (i = 0; i < RTS_DLQ__COUNT; i++) {
        CHECK_STR(rts_dlq_reason_name((enum rts_dlq_reason)i), want[i]);
        CHECK_INT(rts_dlq_reason_parse(want[i], &r), 0);
        CHECK_INT(r, i);
    }
    CHECK_STR(rts_dlq_reason_name(RTS_DLQ__COUNT), "unknown");
    CHECK_INT(rts_dlq_reason_parse("nope", &r), -1);
}

TEST(valid_event)
{
    struct rts_schema *s = fraud_schema();
    size_t n = dec(s, GOOD);

    CHECK(n > 0);
    CHECK_INT(n % 8, 0);
    CHECK_INT(rts_record_size(recbuf), n);
    CHECK(str_eq(ev.id, "t-1029"));
    CHECK(str_eq(ev.key, "c-4711"));
    CHECK_INT(ev.ts_ms, 1700000000123LL);
    CHECK(ev.key_hash == rts_hash64("c-4711", 6));
    CHECK(rts_record_key_hash(recbuf) == ev.key_hash);
    CHECK(ev.payload.n == strlen(GOOD) && memcmp(ev.payload.p, GOOD, ev.payload.n) == 0);
    CHECK(ev.vals == vals);
    CHECK(str_eq(vals[F_CARD].str, "c-4711"));
    CHECK_NEAR(vals[F_AMOUNT].num, 42.17, 0);
    CHECK(str_eq(vals[F_MERCHANT].str, "m-2231"));
    CHECK_NEAR(vals[F_MCC].num, 5411, 0);
    CHECK(str_eq(vals[F_COUNTRY].str, "DE"));
    CHECK(str_eq(vals[F_TXN].str, "t-1029"));
    CHECK_NEAR(vals[F_TS].num, 1700000000123.0, 0);
    CHECK_INT(rts_record_ts_ms(recbuf), 1700000000123LL);
    CHECK(str_eq(rts_record_id(recbuf), "t-1029"));
    CHECK(str_eq(rts_record_key(recbuf), "c-4711"));
    CHECK(rts_record_payload(recbuf).n == strlen(GOOD));
    CHECK(n <= rts_decode_record_max(s, MAXB));
    /* Deterministic: the same input gives the same bytes. */
    {
        static uint64_t copy[(MAXB * 3 + 65536) / 8];
        memcpy(copy, recbuf, n);
        CHECK_INT(dec(s, GOOD), n);
        CHECK(memcmp(copy, recbuf, n) == 0);
    }
    rts_schema_free(s);
}

TEST(defaults_and_missing)
{
    struct rts_schema *s = fraud_schema();

    CHECK(dec(s, "{\"txn_id\":\"t\",\"card_id\":\"c1\",\"amount\":1}") > 0);
    CHECK_NEAR(vals[F_MCC].num, 0, 0);
    CHECK(str_eq(vals[F_COUNTRY].str, "US"));
    CHECK(vals[F_MERCHANT].str.p == NULL);
    CHECK(str_eq(ev.id, "t"));
    rts_schema_free(s);
}

TEST(null_is_absent)
{
    struct rts_schema *s = fraud_schema();

    CHECK(dec(s, "{\"txn_id\":\"t\",\"card_id\":\"c1\",\"amount\":1,\"mcc\":null,"
                 "\"country\":null,\"merchant_id\":null,\"ts\":null}") > 0);
    CHECK_NEAR(vals[F_MCC].num, 0, 0);
    CHECK(str_eq(vals[F_COUNTRY].str, "US"));
    CHECK(vals[F_MERCHANT].str.p == NULL);
    CHECK_INT(ev.ts_ms, 1234567);
    CHECK_NEAR(vals[F_TS].num, 1234567, 0);
    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":\"c1\",\"amount\":null}", RTS_DLQ_MISSING_FIELD,
               F_AMOUNT, "required field 'amount' is missing");
    rts_schema_free(s);
}

TEST(missing_field)
{
    struct rts_schema *s = fraud_schema();

    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":\"c1\"}", RTS_DLQ_MISSING_FIELD, F_AMOUNT,
               "required field 'amount' is missing");
    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"amount\":3}", RTS_DLQ_MISSING_FIELD, F_CARD,
               "required field 'card_id' is missing");
    CHECK_FAIL(s, "{\"card_id\":\"c\",\"amount\":3}", RTS_DLQ_MISSING_FIELD, F_TXN,
               "required field 'txn_id' is missing");
    CHECK_FAIL(s, "{}", RTS_DLQ_MISSING_FIELD, F_CARD, "required field 'card_id' is missing");
    /* The valid event right next to it. */
    CHECK(dec(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":3}") > 0);
    CHECK_INT(ev.ts_ms, 1234567);
    rts_schema_free(s);
}

TEST(bad_type)
{
    struct rts_schema *s = fraud_schema();

    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":\"12\"}", RTS_DLQ_BAD_TYPE,
               F_AMOUNT, "field 'amount': expected a number, got a string");
    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":true}", RTS_DLQ_BAD_TYPE,
               F_AMOUNT, "field 'amount': expected a number, got a bool");
    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":{}}", RTS_DLQ_BAD_TYPE, F_AMOUNT,
               "field 'amount': expected a number, got an object");
    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":[1]}", RTS_DLQ_BAD_TYPE, F_AMOUNT,
               "field 'amount': expected a number, got an array");
    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,\"mcc\":5.5}", RTS_DLQ_BAD_TYPE,
               F_MCC, "field 'mcc': expected an integer within +-2^53, got 5.5");
    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,\"mcc\":\"5411\"}",
               RTS_DLQ_BAD_TYPE, F_MCC, "field 'mcc': expected an integer, got a string");
    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,\"mcc\":9007199254740994}",
               RTS_DLQ_BAD_TYPE, F_MCC, NULL);
    /* The declared key does not accept an integer; the implicit id does. */
    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":4711,\"amount\":1}", RTS_DLQ_BAD_TYPE, F_CARD,
               "field 'card_id': expected a string, got a number");
    CHECK_FAIL(s, "{\"txn_id\":1.5,\"card_id\":\"c\",\"amount\":1}", RTS_DLQ_BAD_TYPE, F_TXN,
               "field 'txn_id': expected a string or an integer, got 1.5");
    CHECK_FAIL(s, "{\"txn_id\":true,\"card_id\":\"c\",\"amount\":1}", RTS_DLQ_BAD_TYPE, F_TXN,
               "field 'txn_id': expected a string or an integer, got a bool");
    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,\"merchant_id\":7}",
               RTS_DLQ_BAD_TYPE, F_MERCHANT,
               "field 'merchant_id': expected a string, got a number");
    /* Valid neighbours: 5.0 and 1e3 are integers; 2^53 is the limit. */
    CHECK(dec(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,\"mcc\":5.0}") > 0);
    CHECK_NEAR(vals[F_MCC].num, 5, 0);
    CHECK(dec(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,\"mcc\":1e3}") > 0);
    CHECK_NEAR(vals[F_MCC].num, 1000, 0);
    CHECK(dec(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,\"mcc\":-9007199254740992}") >
          0);
    CHECK_NEAR(vals[F_MCC].num, -9007199254740992.0, 0);
    rts_schema_free(s);
}

TEST(bool_fields)
{
    struct rts_schema *s = rts_schema_new();
    struct rts_field_spec f = {0};

    f.name = "flag";
    f.type = RTS_FT_BOOL;
    CHECK_INT(rts_schema_add(s, &f, NULL), RTS_ERR_OK);
    CHECK_INT(rts_schema_set_roles(s, NULL, "k", NULL, NULL), RTS_ERR_OK);
    CHECK(dec(s, "{\"k\":\"a\",\"flag\":true}") > 0);
    CHECK_NEAR(vals[0].num, 1, 0);
    CHECK(dec(s, "{\"k\":\"a\",\"flag\":false}") > 0);
    CHECK_NEAR(vals[0].num, 0, 0);
    CHECK(dec(s, "{\"k\":\"a\"}") > 0);
    CHECK(isnan(vals[0].num));
    CHECK(ev.id.p == NULL);
    CHECK_FAIL(s, "{\"k\":\"a\",\"flag\":0}", RTS_DLQ_BAD_TYPE, 0,
               "field 'flag': expected true or false, got a number");
    CHECK_FAIL(s, "{\"k\":\"a\",\"flag\":\"true\"}", RTS_DLQ_BAD_TYPE, 0,
               "field 'flag': expected true or false, got a string");
    CHECK_FAIL(s, "{\"k\":\"a\",\"flag\":tru}", RTS_DLQ_INVALID_JSON, 0, NULL);
    /* Implicit key accepts an integer: its text is the key. */
    CHECK(dec(s, "{\"k\":-4711}") > 0);
    CHECK(str_eq(ev.key, "-4711"));
    CHECK(ev.key_hash == rts_hash64("-4711", 5));
    rts_schema_free(s);
}

TEST(out_of_range)
{
    struct rts_schema *s = fraud_schema();
    char big[400];

    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":-5}", RTS_DLQ_OUT_OF_RANGE,
               F_AMOUNT, "field 'amount': -5 is below min 0");
    CHECK_INT(derr.pos, 37);
    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1e400}", RTS_DLQ_OUT_OF_RANGE,
               F_AMOUNT, "field 'amount': 1e400 overflows a double");
    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,\"country\":\"USA\"}",
               RTS_DLQ_OUT_OF_RANGE, F_COUNTRY, "field 'country': length 3 exceeds max_len 2");
    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":\"\",\"amount\":1}", RTS_DLQ_OUT_OF_RANGE, F_CARD,
               "field 'card_id': the key is empty");
    /* max_len counts bytes after unescaping: \u00e9 is two bytes. */
    CHECK(dec(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,\"country\":\"\\u00e9\"}") > 0);
    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,\"country\":\"a\\u00e9\"}",
               RTS_DLQ_OUT_OF_RANGE, F_COUNTRY, "field 'country': length 3 exceeds max_len 2");
    /* Inclusive min; -0 is not below 0. */
    CHECK(dec(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":0}") > 0);
    CHECK(dec(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":-0.0}") > 0);
    CHECK(dec(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1e308}") > 0);
    rts_schema_free(s);

    /* Key longer than 256 bytes on an implicit key; max_len on a declared one. */
    s = rts_schema_new();
    CHECK_INT(rts_schema_set_roles(s, "id", "k", NULL, NULL), RTS_ERR_OK);
    memset(big, 'x', sizeof(big));
    memcpy(big, "{\"id\":1,\"k\":\"", 13);
    big[13 + 256] = '"';
    big[13 + 257] = '}';
    big[13 + 258] = '\0';
    CHECK(dec(s, big) > 0);
    CHECK_INT(ev.key.n, 256);
    CHECK(str_eq(ev.id, "1"));
    memset(big + 13, 'x', 257);
    big[13 + 257] = '"';
    big[13 + 258] = '}';
    big[13 + 259] = '\0';
    CHECK_FAIL(s, big, RTS_DLQ_OUT_OF_RANGE, 1, "field 'k': the key is 257 bytes, longer than 256");
    rts_schema_free(s);
}

TEST(min_max_inclusive)
{
    struct rts_schema *s = rts_schema_new();
    struct rts_field_spec f = {0};

    f.name = "p";
    f.type = RTS_FT_FLOAT;
    f.has_min = f.has_max = 1;
    f.min = 0.5;
    f.max = 1.25;
    CHECK_INT(rts_schema_add(s, &f, NULL), RTS_ERR_OK);
    f.name = "n";
    f.type = RTS_FT_INT;
    f.min = -3;
    f.max = 7;
    CHECK_INT(rts_schema_add(s, &f, NULL), RTS_ERR_OK);
    CHECK_INT(rts_schema_set_roles(s, NULL, "k", NULL, NULL), RTS_ERR_OK);
    CHECK(dec(s, "{\"k\":\"a\",\"p\":0.5,\"n\":-3}") > 0);
    CHECK(dec(s, "{\"k\":\"a\",\"p\":1.25,\"n\":7}") > 0);
    CHECK_NEAR(vals[0].num, 1.25, 0);
    CHECK_NEAR(vals[1].num, 7, 0);
    CHECK_FAIL(s, "{\"k\":\"a\",\"p\":0.49}", RTS_DLQ_OUT_OF_RANGE, 0,
               "field 'p': 0.49 is below min 0.5");
    CHECK_FAIL(s, "{\"k\":\"a\",\"p\":1.2500001}", RTS_DLQ_OUT_OF_RANGE, 0,
               "field 'p': 1.2500001 is above max 1.25");
    CHECK_FAIL(s, "{\"k\":\"a\",\"n\":8}", RTS_DLQ_OUT_OF_RANGE, 1, "field 'n': 8 is above max 7");
    CHECK_FAIL(s, "{\"k\":\"a\",\"n\":-4}", RTS_DLQ_OUT_OF_RANGE, 1,
               "field 'n': -4 is below min -3");
    rts_schema_free(s);
}

TEST(too_large)
{
    struct rts_schema *s = fraud_schema();
    const char *m = "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1}";
    size_t len = strlen(m);

    CHECK(dec_n(s, m, len, len) > 0);
    CHECK_INT(dec_n(s, m, len, len - 1), 0);
    CHECK_INT(derr.reason, RTS_DLQ_TOO_LARGE);
    CHECK_INT(derr.field, -1);
    CHECK_INT(derr.pos, len - 1);
    CHECK_STR(derr.msg, "message is 39 bytes, larger than max_event_bytes 38");
    /* Checked first: even garbage is too_large. */
    CHECK_INT(dec_n(s, "garbage", 7, 6), 0);
    CHECK_INT(derr.reason, RTS_DLQ_TOO_LARGE);
    /* A record buffer too small for this message. */
    {
        static uint64_t small[16];
        CHECK_INT(rts_decode(s, m, len, 1000, 0, small, sizeof(small), &derr), 0);
        CHECK_INT(derr.reason, RTS_DLQ_TOO_LARGE);
        CHECK(strstr(derr.msg, "record buffer") != NULL);
    }
    rts_schema_free(s);
}

TEST(bad_time)
{
    struct rts_schema *s = fraud_schema();
    static const char *const bad[] = {
        "\"yesterday\"",
        "\"2023-11-14\"",
        "\"2023-11-14T22:13:20\"",
        "\"2023-13-01T00:00:00Z\"",
        "\"2023-02-29T00:00:00Z\"",
        "\"2023-11-14T24:00:00Z\"",
        "\"2023-11-14T22:60:00Z\"",
        "\"2023-11-14T22:13:60Z\"",
        "\"2023-11-14T22:13:20.Z\"",
        "\"2023-11-14T22:13:20.1234567890Z\"",
        "\"2023-11-14T22:13:20+0100\"",
        "\"2023-11-14T22:13:20+24:00\"",
        "\"2023-11-14X22:13:20Z\"",
        "\"2023-11-14T22:13:20Zjunk\"",
        "\" 2023-11-14T22:13:20Z\"",
        "\"1969-12-31T23:59:59Z\"",
        "\"1970-01-01T00:30:00+01:00\"",
        "\"9999-12-31T23:59:59-01:00\"",
        "-1",
        "-0.5",
        "253402300800000",
        "1e400",
        "-1e400",
        "true",
        "{}",
        "[]",
    };
    char buf[256];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(buf, sizeof(buf), "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,\"ts\":%s}",
                 bad[i]);
        CHECK_FAIL(s, buf, RTS_DLQ_BAD_TIME, F_TS, NULL);
        if (derr.reason != RTS_DLQ_BAD_TIME) {
            fprintf(stderr, "  input: %s -> %s\n", bad[i], derr.msg);
        }
        CHECK_INT(derr.pos, 44);
    }
    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,\"ts\":\"soon\"}",
               RTS_DLQ_BAD_TIME, F_TS,
               "field 'ts': 'soon' is not an RFC 3339 time like 2023-11-14T22:13:20Z");
    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,\"ts\":true}", RTS_DLQ_BAD_TIME,
               F_TS,
               "field 'ts': expected epoch ms, epoch seconds or an RFC 3339 string, got a bool");
    CHECK_FAIL(
        s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,\"ts\":\"1969-12-31T23:59:59Z\"}",
        RTS_DLQ_BAD_TIME, F_TS, "field 'ts': '1969-12-31T23:59:59Z' is outside years 1970-9999");
    rts_schema_free(s);
}

static int64_t ts_of(const struct rts_schema *s, const char *tsjson)
{
    char buf[256];

    snprintf(buf, sizeof(buf), "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,\"ts\":%s}",
             tsjson);
    if (dec(s, buf) == 0) {
        fprintf(stderr, "  ts %s: %s\n", tsjson, derr.msg);
        return -1;
    }
    CHECK_NEAR(vals[F_TS].num, (double)ev.ts_ms, 0);
    return ev.ts_ms;
}

TEST(timestamps)
{
    struct rts_schema *s = fraud_schema();

    CHECK_INT(ts_of(s, "1700000000123"), 1700000000123LL);
    CHECK_INT(ts_of(s, "1700000000"), 1700000000000LL);
    CHECK_INT(ts_of(s, "1700000000.123"), 1700000000123LL);
    CHECK_INT(ts_of(s, "1700000000.1235"), 1700000000124LL); /* rounded to ms */
    CHECK_INT(ts_of(s, "1.7e9"), 1700000000000LL);
    CHECK_INT(ts_of(s, "1700000000123.4"), 1700000000123LL);
    CHECK_INT(ts_of(s, "1.7e12"), 1700000000000LL);
    CHECK_INT(ts_of(s, "99999999999"), 99999999999000LL); /* below 1e11: seconds */
    CHECK_INT(ts_of(s, "100000000000"), 100000000000LL);  /* 1e11: ms */
    CHECK_INT(ts_of(s, "0"), 0);
    CHECK_INT(ts_of(s, "\"2023-11-14T22:13:20Z\""), 1700000000000LL);
    CHECK_INT(ts_of(s, "\"2023-11-14T22:13:20.123Z\""), 1700000000123LL);
    CHECK_INT(ts_of(s, "\"2023-11-14T22:13:20.1Z\""), 1700000000100LL);
    CHECK_INT(ts_of(s, "\"2023-11-14T22:13:20.123456789Z\""), 1700000000123LL);
    CHECK_INT(ts_of(s, "\"2023-11-14T23:13:20.123+01:00\""), 1700000000123LL);
    CHECK_INT(ts_of(s, "\"2023-11-14T17:43:20-04:30\""), 1700000000000LL);
    CHECK_INT(ts_of(s, "\"2023-11-14t22:13:20z\""), 1700000000000LL);
    CHECK_INT(ts_of(s, "\"2023-11-14 22:13:20Z\""), 1700000000000LL);
    CHECK_INT(ts_of(s, "\"2023-11-14T22:13:20+00:00\""), 1700000000000LL);
    CHECK_INT(ts_of(s, "\"2023-11-14T22:13:20-00:00\""), 1700000000000LL);
    CHECK_INT(ts_of(s, "\"1970-01-01T00:00:00Z\""), 0);
    CHECK_INT(ts_of(s, "\"2024-02-29T00:00:00Z\""), 1709164800000LL);
    CHECK_INT(ts_of(s, "\"2000-02-29T12:00:00Z\""), 951825600000LL);
    CHECK_INT(ts_of(s, "\"9999-12-31T23:59:59.999Z\""), 253402300799999LL);
    CHECK_INT(ts_of(s, "\"2023-11-14T22\\u003a13:20Z\""), 1700000000000LL); /* escaped ':' */
    /* Absent: the ingest time. */
    CHECK(dec(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1}") > 0);
    CHECK_INT(ev.ts_ms, 1234567);
    CHECK_NEAR(vals[F_TS].num, 1234567, 0);
    rts_schema_free(s);
}

TEST(invalid_json)
{
    struct rts_schema *s = fraud_schema();
    static const char *const bad[] = {
        "",
        "   ",
        "[]",
        "\"str\"",
        "42",
        "null",
        "{",
        "{\"txn_id\"",
        "{\"txn_id\":",
        "{\"txn_id\":\"t\"",
        "{\"txn_id\":\"t\",}",
        "{\"txn_id\" \"t\"}",
        "{txn_id:\"t\"}",
        "{'txn_id':'t'}",
        "{\"a\":1}{}",
        "{\"a\":1} x",
        "{\"a\":1}\n\n{",
        "{\"a\":01}",
        "{\"a\":-}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":1e}",
        "{\"a\":+1}",
        "{\"a\":0x10}",
        "{\"a\":NaN}",
        "{\"a\":Infinity}",
        "{\"a\":-Infinity}",
        "{\"a\":nul}",
        "{\"a\":True}",
        "{\"a\":[1,2,]}",
        "{\"a\":[1 2]}",
        "{\"a\":{\"b\"}}",
        "{\"a\":{\"b\":1,}}",
        "{\"a\":\"x\ty\"}",
        "{\"a\":\"x\ny\"}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":\"\\u12g4\"}",
        "{\"a\":\"abc",
        "{\"a\":\"abc\\",
        "{\"a\":\"abc\\\"}",
        "{\"amount\":01}",
        "{\"amount\":1.5.5}",
        "{\"amount\":--1}",
        "{\"mcc\":nan}",
        "{\"card_id\":\"c\" \"x\"}",
        "{\"a\":1,,\"b\":2}",
        "\xef\xbb\xbf{}",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = dec(s, bad[i]);
        CHECK_INT(n, 0);
        CHECK_INT(derr.reason, RTS_DLQ_INVALID_JSON);
        CHECK(derr.pos <= strlen(bad[i]));
        if (n != 0 || derr.reason != RTS_DLQ_INVALID_JSON) {
            fprintf(stderr, "  input %zu: %s -> %s\n", i, bad[i], derr.msg);
        }
    }
    CHECK_FAIL(s, "", RTS_DLQ_INVALID_JSON, -1, "empty message");
    CHECK_FAIL(s, "[1]", RTS_DLQ_INVALID_JSON, -1, "expected a JSON object at byte 0, got '['");
    CHECK_FAIL(s, "{\"amount\":01}", RTS_DLQ_INVALID_JSON, F_AMOUNT,
               "field 'amount': number with a leading zero at byte 10");
    CHECK_FAIL(s, "{\"x\":[1,]}", RTS_DLQ_INVALID_JSON, -1,
               "field 'x': expected a value at byte 8, got ']'");
    CHECK_FAIL(s, "{\"a\":1} x", RTS_DLQ_INVALID_JSON, -1,
               "unexpected data after the object at byte 8");
    CHECK_INT(derr.pos, 8);
    CHECK_FAIL(s, "{\"a\":1", RTS_DLQ_INVALID_JSON, -1,
               "unexpected end of message, expected ',' or '}'");
    CHECK_FAIL(s, "{\"card_id\":\"a\nb\"}", RTS_DLQ_INVALID_JSON, F_CARD,
               "field 'card_id': control character 0x0a in string at byte 13");
    CHECK_FAIL(s, "{\"card_id\":\"ab", RTS_DLQ_INVALID_JSON, F_CARD,
               "field 'card_id': unterminated string");
    rts_schema_free(s);
}

TEST(whitespace)
{
    struct rts_schema *s = fraud_schema();

    CHECK(dec(s, " \t\r\n{ \"txn_id\" : \"t\" ,\n\t\"card_id\"\r\n:\"c\" , \"amount\" : 1 } \n") >
          0);
    CHECK(dec(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1}\n") > 0);
    CHECK(dec(s, "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1}\r\n") > 0);
    CHECK(str_eq(ev.key, "c"));
    CHECK_INT(ev.payload.n, 41);
    rts_schema_free(s);
}

TEST(bad_encoding)
{
    struct rts_schema *s = fraud_schema();
    static const char *const bad[] = {
        "\xff",
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong */
        "\xf0\x80\x80\xaf", /* overlong */
        "\xed\xa0\x80",     /* UTF-8 encoded surrogate */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xc3",             /* truncated */
        "\xe2\x82",         /* truncated */
        "\x80",             /* lone continuation */
        "a\xc3(",
        "\\ud800",
        "\\udc00",
        "\\ud800\\u0041",
        "\\ud800x",
        "\\ud83d\\ud83d",
    };
    char buf[128];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(buf, sizeof(buf),
                 "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,"
                 "\"merchant_id\":\"%s\"}",
                 bad[i]);
        CHECK_FAIL(s, buf, RTS_DLQ_BAD_ENCODING, F_MERCHANT, NULL);
        /* Also in unknown fields and in keys. */
        snprintf(buf, sizeof(buf),
                 "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,"
                 "\"zz\":[\"%s\"]}",
                 bad[i]);
        CHECK_FAIL(s, buf, RTS_DLQ_BAD_ENCODING, -1, NULL);
        snprintf(buf, sizeof(buf),
                 "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,"
                 "\"%s\":1}",
                 bad[i]);
        CHECK_FAIL(s, buf, RTS_DLQ_BAD_ENCODING, -1, NULL);
    }
    CHECK_FAIL(s, "{\"merchant_id\":\"ab\xff\"}", RTS_DLQ_BAD_ENCODING, F_MERCHANT,
               "field 'merchant_id': invalid UTF-8 byte 0xff in string at byte 18");
    CHECK_INT(derr.pos, 18);
    CHECK_FAIL(s, "{\"merchant_id\":\"\\ud800\"}", RTS_DLQ_BAD_ENCODING, F_MERCHANT,
               "field 'merchant_id': high surrogate \\ud800 at byte 16 not followed by a low "
               "surrogate");
    /* Valid multi-byte UTF-8 around them, raw. */
    CHECK(dec(s, "{\"txn_id\":\"t\",\"card_id\":\"c\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\","
                 "\"amount\":1,\"\xc3\xa9t\xc3\xa9\":\"\xef\xbf\xbf\"}") > 0);
    CHECK(str_eq(ev.key, "c\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
    rts_schema_free(s);
}

TEST(escapes)
{
    struct rts_schema *s = fraud_schema();
    size_t n;

    n = dec(s, "{\"txn_id\":\"a\\nb\",\"card_id\":\"caf\\u00e9\",\"amount\":1,"
               "\"merchant_id\":\"\\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\b\\f\\r\\t\\u0041\"}");
    CHECK(n > 0);
    CHECK(str_eq(ev.id, "a\nb"));
    CHECK(str_eq(ev.key, "caf\xc3\xa9"));
    CHECK(ev.key_hash == rts_hash64("caf\xc3\xa9", 5));
    CHECK(str_eq(vals[F_MERCHANT].str, "\xf0\x9f\x98\x80 \"q\" \\ / \b\f\r\tA"));
    /* The unescaped strings live in the record, not in the payload. */
    CHECK(vals[F_MERCHANT].str.p >= (const char *)recbuf &&
          vals[F_MERCHANT].str.p + vals[F_MERCHANT].str.n <= (const char *)recbuf + n);
    /* \u0000 is valid JSON and kept. */
    CHECK(dec(s, "{\"txn_id\":\"t\",\"card_id\":\"a\\u0000b\",\"amount\":1}") > 0);
    CHECK(ev.key.n == 3 && memcmp(ev.key.p, "a\0b", 3) == 0);
    /* Escaped keys name fields too. */
    CHECK(dec(s, "{\"txn_id\":\"t\",\"card_\\u0069d\":\"c\",\"am\\u006funt\":7}") > 0);
    CHECK_NEAR(vals[F_AMOUNT].num, 7, 0);
    CHECK(str_eq(ev.key, "c"));
    /* Upper-case hex, and \u escapes of every UTF-8 length. */
    CHECK(dec(s, "{\"txn_id\":\"\\u00E9\\u20AC\\uD83D\\uDE00\\u007f\",\"card_id\":\"c\","
                 "\"amount\":1}") > 0);
    CHECK(str_eq(ev.id, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f"));
    rts_schema_free(s);
}

TEST(duplicates_last_wins)
{
    struct rts_schema *s = fraud_schema();

    CHECK(dec(s, "{\"txn_id\":\"t\",\"card_id\":\"a\",\"amount\":1,\"card_id\":\"b\\u0062\","
                 "\"amount\":2}") > 0);
    CHECK(str_eq(ev.key, "bb"));
    CHECK_NEAR(vals[F_AMOUNT].num, 2, 0);
    CHECK_FAIL(s, "{\"txn_id\":\"t\",\"card_id\":\"a\",\"amount\":1,\"amount\":null}",
               RTS_DLQ_MISSING_FIELD, F_AMOUNT, NULL);
    rts_schema_free(s);
}

TEST(unknown_fields)
{
    struct rts_schema *s = fraud_schema();
    char deep[512];
    int i, o;

    CHECK(dec(s, "{\"meta\":{\"a\":[1,-2.5e-3,true,false,null,\"x\\u00e9\",{},[],{\"b\":[[]]}]},"
                 "\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,\"\":0,\"big\":1e999}") > 0);
    /* Depth 64 (the top object counts) is fine, 65 is not. */
    for (int depth = 64; depth <= 65; depth++) {
        o = snprintf(deep, sizeof(deep), "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":1,\"d\":");
        for (i = 1; i < depth; i++) {
            deep[o++] = '[';
        }
        for (i = 1; i < depth; i++) {
            deep[o++] = ']';
        }
        deep[o++] = '}';
        deep[o] = '\0';
        if (depth == 64) {
            CHECK(dec(s, deep) > 0);
        } else {
            CHECK_FAIL(s, deep, RTS_DLQ_INVALID_JSON, -1, NULL);
            CHECK(strstr(derr.msg, "nesting deeper than 64") != NULL);
        }
    }
    /* A deep message does not overflow anything. */
    {
        size_t len = 200000;
        char *m = malloc(len);
        memset(m, '[', len);
        memcpy(m, "{\"a\":", 5);
        static uint64_t big[(200000 * 2 + 4096) / 8];
        CHECK_INT(rts_decode(s, m, len, len, 0, big, sizeof(big), &derr), 0);
        CHECK_INT(derr.reason, RTS_DLQ_INVALID_JSON);
        free(m);
    }
    rts_schema_free(s);
}

TEST(record_moves)
{
    struct rts_schema *s = fraud_schema();
    static uint64_t other[(MAXB * 3 + 65536) / 8];
    union rts_val v2[16];
    struct rts_event e2;
    size_t n;

    n = dec(s, "{\"txn_id\":\"t\\u0031\",\"card_id\":\"c-9\",\"amount\":3.25,\"ts\":"
               "\"2023-11-14T22:13:20Z\",\"merchant_id\":\"m\\n\"}");
    CHECK(n > 0);
    memcpy(other, recbuf, n);
    memset(recbuf, 0xa5, n);
    rts_event_view(s, other, &e2, v2);
    CHECK(str_eq(e2.id, "t1"));
    CHECK(str_eq(e2.key, "c-9"));
    CHECK(e2.key_hash == rts_hash64("c-9", 3));
    CHECK(rts_record_key_hash(other) == e2.key_hash);
    CHECK_INT(e2.ts_ms, 1700000000000LL);
    CHECK_NEAR(v2[F_AMOUNT].num, 3.25, 0);
    CHECK(str_eq(v2[F_MERCHANT].str, "m\n"));
    CHECK(str_eq(v2[F_COUNTRY].str, "US")); /* the default is in the record too */
    CHECK(v2[F_COUNTRY].str.p >= (const char *)other &&
          v2[F_COUNTRY].str.p < (const char *)other + n);
    CHECK_NEAR(v2[F_MCC].num, 0, 0);
    CHECK(e2.payload.p >= (const char *)other && e2.payload.p < (const char *)other + n);
    CHECK_INT(rts_record_size(other), n);
    rts_schema_free(s);
}

/* Implicit id == key: an integer is accepted and its text is both. */
TEST(implicit_roles)
{
    struct rts_schema *s = rts_schema_new();
    struct rts_field_spec f = {0};
    char name[16];
    int i;

    f.type = RTS_FT_FLOAT;
    for (i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        f.name = name;
        CHECK_INT(rts_schema_add(s, &f, NULL), RTS_ERR_OK);
    }
    CHECK_INT(rts_schema_set_roles(s, "id", "id", "t", NULL), RTS_ERR_OK);
    CHECK(dec(s, "{\"id\":77,\"f39\":2.5,\"t\":1,\"f3\":-1}") > 0);
    CHECK(str_eq(ev.id, "77"));
    CHECK(str_eq(ev.key, "77"));
    CHECK(ev.id.p == ev.key.p);
    CHECK_INT(ev.ts_ms, 1000);
    CHECK_NEAR(vals[39].num, 2.5, 0);
    CHECK_NEAR(vals[3].num, -1, 0);
    CHECK(isnan(vals[1].num));
    CHECK(str_eq(vals[40].str, "77"));
    CHECK_NEAR(vals[41].num, 1000, 0);
    CHECK_FAIL(s, "{\"f1\":1}", RTS_DLQ_MISSING_FIELD, 40, "required field 'id' is missing");
    rts_schema_free(s);
}

/* A schema without roles still decodes; the event has no id and no key. */
TEST(no_roles)
{
    struct rts_schema *s = rts_schema_new();
    struct rts_field_spec f = {0};

    f.name = "x";
    f.type = RTS_FT_INT;
    CHECK_INT(rts_schema_add(s, &f, NULL), RTS_ERR_OK);
    CHECK(dec(s, "{\"x\":3}") > 0);
    CHECK(ev.id.p == NULL && ev.key.p == NULL);
    CHECK_INT(ev.ts_ms, 1234567);
    CHECK_NEAR(vals[0].num, 3, 0);
    rts_schema_free(s);
    /* An empty schema: every field is unknown. */
    s = rts_schema_new();
    CHECK(dec(s, "{\"x\":3,\"y\":[{}]}") > 0);
    CHECK_INT(dec(s, "{\"x\":3,\"y\":[{]}"), 0);
    rts_schema_free(s);
}

TEST(declared_time_default)
{
    struct rts_schema *s = rts_schema_new();
    struct rts_field_spec f = {0};

    f.name = "when";
    f.type = RTS_FT_TIMESTAMP;
    f.has_default = 1;
    f.def_num = 5000;
    CHECK_INT(rts_schema_add(s, &f, NULL), RTS_ERR_OK);
    f.name = "other";
    f.has_default = 0;
    CHECK_INT(rts_schema_add(s, &f, NULL), RTS_ERR_OK);
    CHECK_INT(rts_schema_set_roles(s, NULL, "k", "when", NULL), RTS_ERR_OK);
    CHECK(dec(s, "{\"k\":\"x\"}") > 0);
    CHECK_INT(ev.ts_ms, 5000);
    CHECK(isnan(vals[1].num));
    CHECK(dec(s, "{\"k\":\"x\",\"other\":\"2023-11-14T22:13:20Z\",\"when\":1700000000}") > 0);
    CHECK_INT(ev.ts_ms, 1700000000000LL);
    CHECK_NEAR(vals[1].num, 1700000000000.0, 0);
    CHECK_FAIL(s, "{\"k\":\"x\",\"other\":\"nope\"}", RTS_DLQ_BAD_TIME, 1, NULL);
    rts_schema_free(s);
}

/* Numbers: the decoder's value equals strtod's for the same text. */
TEST(number_conversion)
{
    static const char *const nums[] = {
        "0",
        "-0",
        "1",
        "-1",
        "0.1",
        "0.3",
        "1e22",
        "1e23",
        "-1e-22",
        "1e-23",
        "123456789012345",
        "1234567890123456",
        "12345678901234567890",
        "123456789012345678901234567890",
        "9007199254740993",
        "2.2250738585072014e-308",
        "4.9e-324",
        "1e-400",
        "1.7976931348623157e308",
        "0.000001",
        "3.14159265358979323846264338327950288",
        "1E5",
        "1e+5",
        "1.5E-5",
        "0.0000000000000000000000000000001",
        "100000000000000000000000",
        "7e37",
        "12e30",
        "0.1e1",
        "00.5e-0",
    };
    struct rts_schema *s = rts_schema_new();
    struct rts_field_spec f = {0};
    char buf[160];
    uint64_t x = 88172645463325252ull;
    size_t i;

    f.name = "v";
    f.type = RTS_FT_FLOAT;
    CHECK_INT(rts_schema_add(s, &f, NULL), RTS_ERR_OK);
    CHECK_INT(rts_schema_set_roles(s, NULL, "k", NULL, NULL), RTS_ERR_OK);
    for (i = 0; i < sizeof(nums) / sizeof(nums[0]) - 1; i++) {
        snprintf(buf, sizeof(buf), "{\"k\":\"a\",\"v\":%s}", nums[i]);
        CHECK(dec(s, buf) > 0);
        CHECK(memcmp(&vals[0].num, &(double){strtod(nums[i], NULL)}, 8) == 0);
    }
    CHECK_INT(dec(s, "{\"k\":\"a\",\"v\":00.5e-0}"), 0);
    /* Random doubles printed with 17 and with fewer digits read back exactly. */
    for (i = 0; i < 20000; i++) {
        double v, want;
        int prec = 1 + (int)(i % 17);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(&v, &x, 8);
        if (!isfinite(v)) {
            continue;
        }
        if (i & 1) {
            v = (double)(x >> 20) / 1000.0;
        }
        snprintf(buf, sizeof(buf), "{\"k\":\"a\",\"v\":%.*g}", prec, v);
        want = strtod(buf + 13, NULL);
        if (dec(s, buf) == 0) {
            CHECK(isinf(want));
            continue;
        }
        if (memcmp(&vals[0].num, &want, 8) != 0) {
            CHECK(0);
            fprintf(stderr, "  %s -> %.17g\n", buf, vals[0].num);
            break;
        }
    }
    rts_schema_free(s);
}

/* Never reads past the message: the bytes after it must not matter. */
TEST(no_read_past_len)
{
    struct rts_schema *s = fraud_schema();
    const char *m = "{\"txn_id\":\"t\",\"card_id\":\"c\",\"amount\":12}";
    size_t len = strlen(m), i;

    for (i = 0; i < len; i++) {
        char *b = malloc(len + 8);
        memcpy(b, m, len);
        memcpy(b + i, "99999999", 8);
        /* Truncated at i, followed by digits that would change the parse. */
        memset(&derr, 0, sizeof(derr));
        CHECK_INT(rts_decode(s, b, i, MAXB, 0, recbuf, sizeof(recbuf), &derr), 0);
        CHECK(derr.pos <= i);
        free(b);
    }
    rts_schema_free(s);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

TEST(mutations)
{
    static const char *const seeds[] = {
        GOOD,
        "{\"txn_id\":\"t\\u00e9\\ud83d\\ude00\",\"card_id\":\"c\\n\",\"amount\":0.5e1,"
        "\"ts\":\"2023-11-14T22:13:20.5+01:00\",\"meta\":{\"a\":[1,true,null,\"x\"]}}",
        "{\"txn_id\":12,\"card_id\":\"k\",\"amount\":1e2,\"ts\":1700000000.25,"
        "\"country\":\"\xc3\xa9\"}",
    };
    static const char alphabet[] = "{}[]\":,\\u0123456789abcdefeE.-+ \ntrue\xc3\xa9\xed\xff";
    struct rts_schema *s = fraud_schema();
    int counts[RTS_DLQ__COUNT + 1] = {0};
    char buf[512];
    int it, k;

    for (it = 0; it < 100000; it++) {
        const char *seed = seeds[it % 3];
        size_t len = strlen(seed), n;
        int muts = 1 + (int)(rng() % 4);
        char *m;

        memcpy(buf, seed, len);
        for (k = 0; k < muts; k++) {
            size_t pos = len ? (size_t)(rng() % len) : 0;
            char c = (rng() & 1) ? alphabet[rng() % (sizeof(alphabet) - 1)] : (char)rng();
            switch (rng() % 4) {
            case 0: /* flip a bit */
                if (len) {
                    buf[pos] ^= (char)(1 << (rng() % 8));
                }
                break;
            case 1: /* replace */
                if (len) {
                    buf[pos] = c;
                }
                break;
            case 2: /* insert */
                if (len + 1 < sizeof(buf)) {
                    memmove(buf + pos + 1, buf + pos, len - pos);
                    buf[pos] = c;
                    len++;
                }
                break;
            default: /* delete */
                if (len) {
                    memmove(buf + pos, buf + pos + 1, len - pos - 1);
                    len--;
                }
                break;
            }
        }
        m = malloc(len ? len : 1);
        memcpy(m, buf, len);
        memset(&derr, 0xee, sizeof(derr));
        n = rts_decode(s, m, len, MAXB, 42, recbuf, sizeof(recbuf), &derr);
        if (n) {
            rts_event_view(s, recbuf, &ev, vals);
            if (ev.payload.n != len || memcmp(ev.payload.p, m, len) != 0 || n % 8 != 0 ||
                !ev.key.p || ev.key.n == 0 || ev.key_hash != rts_hash64(ev.key.p, ev.key.n)) {
                CHECK(0);
            }
            counts[RTS_DLQ__COUNT]++;
        } else {
            if ((unsigned)derr.reason >= RTS_DLQ__COUNT || derr.pos > len ||
                memchr(derr.msg, '\0', sizeof(derr.msg)) == NULL || derr.msg[0] == '\0' ||
                derr.field < -1 || derr.field >= (int)rts_schema_nfields(s)) {
                CHECK(0);
                break;
            }
            counts[derr.reason]++;
        }
        free(m);
    }
    CHECK(counts[RTS_DLQ__COUNT] > 1000);
    CHECK(counts[RTS_DLQ_INVALID_JSON] > 1000);
    CHECK(counts[RTS_DLQ_BAD_ENCODING] > 100);
    fprintf(stderr,
            "  mutations: %d ok, %d invalid_json, %d missing, %d bad_type, %d range, "
            "%d bad_time, %d encoding\n",
            counts[RTS_DLQ__COUNT], counts[RTS_DLQ_INVALID_JSON], counts[RTS_DLQ_MISSING_FIELD],
            counts[RTS_DLQ_BAD_TYPE], counts[RTS_DLQ_OUT_OF_RANGE], counts[RTS_DLQ_BAD_TIME],
            counts[RTS_DLQ_BAD_ENCODING]);
    rts_schema_free(s);
}

int main(void)
{
    RUN(reason_names);
    RUN(valid_event);
    RUN(defaults_and_missing);
    RUN(null_is_absent);
    RUN(missing_field);
    RUN(bad_type);
    RUN(bool_fields);
    RUN(out_of_range);
    RUN(min_max_inclusive);
    RUN(too_large);
    RUN(bad_time);
    RUN(timestamps);
    RUN(invalid_json);
    RUN(whitespace);
    RUN(bad_encoding);
    RUN(escapes);
    RUN(duplicates_last_wins);
    RUN(unknown_fields);
    RUN(record_moves);
    RUN(implicit_roles);
    RUN(no_roles);
    RUN(declared_time_default);
    RUN(number_conversion);
    RUN(no_read_past_len);
    RUN(mutations);
    return TEST_EXIT();
}
