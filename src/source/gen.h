/*
 * gen.h - synthetic labelled card transactions, one JSON line per event.
 *
 * The stream is a pure function of the options: the same options give the
 * same bytes on any machine (integer arithmetic only once the generator is
 * built). Event time is simulated, starts at start_ms, never decreases and
 * advances by exponential gaps of mean 1/events_per_sec; it has nothing to do
 * with the wall clock. Each line is
 *
 *   {"txn_id":"t-<seq>","card_id":"c-<n>","ts":<ms>,"amount":<d.dd>,
 *    "merchant_id":"m-<n>","mcc":<int>,"country":"<ISO2>","is_fraud":0|1}
 *
 * in that key order, compact, followed by '\n'; seq counts from 1, card and
 * merchant numbers from 0. Cards have a home country, a typical spend, usual
 * merchants, daytime-heavy active hours (UTC) and Zipf-like activity. Fraud
 * comes in episodes on one card (card testing, large amounts, merchant
 * sprees, odd hours, far-away countries, combined), every event of which has
 * is_fraud 1; legit cards also travel and sometimes buy big. The share of
 * fraud lines tracks fraud_rate from the first line on (typically within 5%
 * over 1M lines, 10% over 200k) as long as fraud_rate * events_per_sec <=
 * 10^4; beyond that the bounded episode heap makes the share fall short. A share bad_rate of lines
 * is malformed on purpose, cycling through eight kinds: truncated JSON, no amount, amount as a
 * string, negative amount, ts "yesterday", invalid UTF-8 in merchant_id, a card_id of 80 bytes, and
 * the non-object [1,2].
 *
 * A generator is owned by one thread at a time and never allocates after
 * rts_gen_new.
 */
#ifndef RTS_SOURCE_GEN_H
#define RTS_SOURCE_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* The longest line rts_gen_next() writes, '\n' included. */
#define RTS_GEN_LINE_MAX 512

struct rts_gen_opts {
    uint64_t seed;         /* same seed, same stream, byte for byte, on any machine */
    double fraud_rate;     /* share of events that are fraud (labelled), 0..0.5 */
    double bad_rate;       /* share of malformed events, 0..0.5; fraud + bad <= 0.9 */
    uint64_t cards;        /* number of cards, 1..2^32-1 */
    uint64_t merchants;    /* number of merchants, 1..2^32-1 */
    int64_t start_ms;      /* event time of the first event (epoch ms), 0..year 9999 */
    double events_per_sec; /* events per second of event time, 0.001..1e7 */
};

/* Fill @o with the defaults: seed 1, fraud 0.01, bad 0, 100000 cards, 20000
 * merchants, start 1700000000000 (2023-11-14T22:13:20Z), 500 events/s. */
void rts_gen_opts_default(struct rts_gen_opts *o);

/* Build a generator from @o (copied). Returns NULL with @eb filled in (INVAL
 * naming the option, or NOMEM). The memory it takes is fixed here: ~10 KB
 * plus the heap of active fraud episodes, sized from fraud_rate and
 * events_per_sec (at most 32 MB). Thread: any. */
struct rts_gen *rts_gen_new(const struct rts_gen_opts *o, struct rts_errbuf *eb)
    __attribute__((warn_unused_result));

void rts_gen_free(struct rts_gen *g); /* NULL is a no-op */

/* Write the next line (one JSON object or, for bad events, whatever the bad
 * kind is, then '\n') into @buf and return its length, '\n' included; a NUL
 * follows when @cap leaves room for it (not counted). Returns 0 and writes
 * nothing when @cap is smaller than the line; the line is kept and the next
 * call returns it, so the stream does not depend on buffer sizes. A @cap of
 * RTS_GEN_LINE_MAX always suffices. Never allocates. Thread: the owner. */
size_t rts_gen_next(struct rts_gen *g, char *buf, size_t cap);

/* Lines delivered so far by rts_gen_next(), how many were labelled fraud and
 * how many were bad on purpose. */
struct rts_gen_stats {
    uint64_t events, fraud, bad;
};
void rts_gen_stats(const struct rts_gen *g, struct rts_gen_stats *out);

/* The typical spend, in cents, of card number @card (< cards): what the
 * card's ordinary amounts centre on, from the same profile the stream uses
 * (integer arithmetic: the same on any machine). For reference data such as
 * examples/fraud/profiles.csv. Thread: any (reads only). */
uint64_t rts_gen_card_spend_cents(const struct rts_gen *g, uint64_t card);

#endif /* RTS_SOURCE_GEN_H */
