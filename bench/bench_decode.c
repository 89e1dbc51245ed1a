/*
 * bench_decode.c - decode+validate throughput of typical fraud events.
 *
 * Builds the fraud schema of DESIGN.md, generates a few thousand varied
 * ~180-byte events (so the branch predictor does not learn one message),
 * decodes them all into one record buffer, and prints the median of several
 * runs as ns/event and MB/s. Time is this thread's CPU time, so that other
 * work on a shared machine does not count. Also times events with escapes and
 * RFC 3339 times, and the error path. Not a test: it checks only that every
 * event decodes.
 *
 * Usage: bench_decode [runs] [events-per-run]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event/decode.h"
#include "event/schema.h"

#include "bench.h"

#define NMSG 4096
#define MAXB 65536

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

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
    rts_schema_add(s, &f, &eb);
    memset(&f, 0, sizeof(f));
    f.name = "amount";
    f.type = RTS_FT_FLOAT;
    f.required = 1;
    f.has_min = 1;
    rts_schema_add(s, &f, &eb);
    memset(&f, 0, sizeof(f));
    f.name = "merchant_id";
    f.type = RTS_FT_STRING;
    rts_schema_add(s, &f, &eb);
    memset(&f, 0, sizeof(f));
    f.name = "mcc";
    f.type = RTS_FT_INT;
    f.has_default = 1;
    rts_schema_add(s, &f, &eb);
    memset(&f, 0, sizeof(f));
    f.name = "country";
    f.type = RTS_FT_STRING;
    f.has_default = 1;
    f.def_str = "US";
    f.max_len = 2;
    rts_schema_add(s, &f, &eb);
    memset(&f, 0, sizeof(f));
    f.name = "is_fraud";
    f.type = RTS_FT_INT;
    f.has_default = 1;
    rts_schema_add(s, &f, &eb);
    if (rts_schema_set_roles(s, "txn_id", "card_id", "ts", &eb) != RTS_ERR_OK) {
        fprintf(stderr, "schema: %s\n", eb.msg);
        exit(2);
    }
    return s;
}

struct corpus {
    char *buf;
    size_t off[NMSG + 1];
    size_t bytes;
};

static void make_corpus(struct corpus *c, int kind)
{
    static const char *const cc[] = {"US", "DE", "FR", "GB", "NL", "ES", "IT", "BR"};
    uint64_t x = 0x2545f4914f6cdd1dull;
    size_t o = 0;
    int i;

    c->buf = malloc((size_t)NMSG * 512);
    for (i = 0; i < NMSG; i++) {
        int n;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c->off[i] = o;
        if (kind == 0) {
            n = snprintf(c->buf + o, 512,
                         "{\"txn_id\":\"t-%d\",\"card_id\":\"c-%u\",\"ts\":%llu,\"amount\":%u.%02u,"
                         "\"merchant_id\":\"m-%u\",\"mcc\":%u,\"country\":\"%s\",\"is_fraud\":%u}",
                         1000 + i, (unsigned)(x % 100000), 1700000000000ull + (x % 86400000),
                         (unsigned)(x >> 20) % 5000, (unsigned)(x >> 40) % 100,
                         (unsigned)(x >> 8) % 10000, 1000 + (unsigned)(x >> 24) % 8999,
                         cc[(x >> 50) % 8], (unsigned)((x >> 60) == 0));
        } else if (kind == 3) {
            n = snprintf(c->buf + o, 512,
                         "{\"txn_id\":\"t-%d\",\"card_id\":\"c-%u\",\"ts\":%llu,\"amount\":%u.%02u,"
                         "\"merchant_id\":\"m-%u\",\"mcc\":%u,\"country\":\"%s\",\"is_fraud\":%u,"
                         "\"channel\":\"pos\",\"device_id\":\"d-%08x\",\"ip\":\"10.%u.%u.7\"}",
                         1000 + i, (unsigned)(x % 100000), 1700000000000ull + (x % 86400000),
                         (unsigned)(x >> 20) % 5000, (unsigned)(x >> 40) % 100,
                         (unsigned)(x >> 8) % 10000, 1000 + (unsigned)(x >> 24) % 8999,
                         cc[(x >> 50) % 8], (unsigned)((x >> 60) == 0), (unsigned)(x >> 3),
                         (unsigned)(x >> 12) % 256, (unsigned)(x >> 28) % 256);
        } else if (kind == 1) {
            n = snprintf(
                c->buf + o, 512,
                "{\"txn_id\":\"t-%d\",\"card_id\":\"c-\\u00e9%u\",\"ts\":"
                "\"2023-11-14T22:%02u:%02u.%03uZ\",\"amount\":%u.%02u,"
                "\"merchant_id\":\"m \\\"%u\\\"\",\"mcc\":%u,\"country\":\"%s\","
                "\"note\":{\"tags\":[\"a\",\"b\"],\"ok\":true}}",
                1000 + i, (unsigned)(x % 100000), (unsigned)(x >> 8) % 60, (unsigned)(x >> 16) % 60,
                (unsigned)(x >> 24) % 1000, (unsigned)(x >> 20) % 5000, (unsigned)(x >> 40) % 100,
                (unsigned)(x >> 8) % 10000, 1000 + (unsigned)(x >> 24) % 8999, cc[(x >> 50) % 8]);
        } else {
            n = snprintf(c->buf + o, 512,
                         "{\"txn_id\":\"t-%d\",\"card_id\":\"c-%u\",\"ts\":%llu,\"amount\":-%u.5,"
                         "\"merchant_id\":\"m-%u\",\"mcc\":%u,\"country\":\"%s\"}",
                         1000 + i, (unsigned)(x % 100000), 1700000000000ull + (x % 86400000),
                         (unsigned)(x >> 20) % 5000, (unsigned)(x >> 8) % 10000,
                         1000 + (unsigned)(x >> 24) % 8999, cc[(x >> 50) % 8]);
        }
        o += (size_t)n;
    }
    c->off[NMSG] = o;
    c->bytes = o;
}

static void bench(const char *name, const struct rts_schema *s, const struct corpus *c, int runs,
                  long per_run, int expect_ok)
{
    size_t cap = rts_decode_record_max(s, MAXB);
    void *rec = aligned_alloc(8, cap);
    double *t = malloc((size_t)runs * sizeof(double));
    struct rts_decode_err err;
    uint64_t sink = 0;
    size_t bytes = 0;
    long k;
    int r;

    for (r = 0; r < runs; r++) {
        double t0 = now_s();
        bytes = 0;
        for (k = 0; k < per_run; k++) {
            size_t i = (size_t)k % NMSG;
            size_t len = c->off[i + 1] - c->off[i];
            size_t n = rts_decode(s, c->buf + c->off[i], len, MAXB, 1700000000000, rec, cap, &err);
            if ((n != 0) != expect_ok) {
                fprintf(stderr, "%s: unexpected result for %.*s: %s\n", name, (int)len,
                        c->buf + c->off[i], n ? "ok" : err.msg);
                exit(2);
            }
            sink += n ? rts_record_key_hash(rec) : (uint64_t)err.reason;
            bytes += len;
        }
        t[r] = now_s() - t0;
    }
    qsort(t, (size_t)runs, sizeof(double), bench_cmp_double);
    printf("%-22s %7.1f ns/event  %7.1f MB/s  (%zu bytes/event avg, median of %d x %ld)%s\n", name,
           t[runs / 2] * 1e9 / (double)per_run, (double)bytes / t[runs / 2] / 1e6,
           bytes / (size_t)per_run, runs, per_run, sink == 42 ? " " : "");
    free(t);
    free(rec);
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 7;
    long per_run = argc > 2 ? strtol(argv[2], NULL, 10) : 2000000;
    struct rts_schema *s = fraud_schema();
    struct corpus plain, wide, rich, bad;

    make_corpus(&plain, 0);
    make_corpus(&wide, 3);
    make_corpus(&rich, 1);
    make_corpus(&bad, 2);
    printf("typical event: %.*s\n", (int)(plain.off[1] - plain.off[0]), plain.buf);
    printf("wider event:   %.*s\n", (int)(wide.off[1] - wide.off[0]), wide.buf);
    bench("typical", s, &plain, runs, per_run, 1);
    bench("wider (3 unknown)", s, &wide, runs, per_run, 1);
    bench("escapes+rfc3339+nested", s, &rich, runs, per_run / 2, 1);
    bench("error (out_of_range)", s, &bad, runs, per_run / 2, 0);
    free(plain.buf);
    free(wide.buf);
    free(rich.buf);
    free(bad.buf);
    rts_schema_free(s);
    return 0;
}
