/*
 * bench_pipeline.c - the in-process pipeline: generator -> decode ->
 * features (the demo feature set) -> rules -> record formatting -> null sink.
 *
 * Prints, as medians of repeated runs on this machine:
 *  A. one thread, no queues: events/s of decode + features + rules + format
 *     over pre-generated events (the cost a worker thread pays per event);
 *  B. the threaded daemon (source thread + N workers, null sink) at
 *     saturation with 1 and 2 workers;
 *  E. the same with the shipped model scoring every event;
 *  C. per-event latency p50/p99 (ingest to emitted) at a fixed offered rate,
 *     in the steady state after a warm-up, with memory committed ahead
 *     (housekeeper and idle workers) and without;
 *  D. bytes of state per key (with A);
 *  N. the machine's noise floor: how often two threads spinning at once
 *     are stopped, and what those stops alone do to the latency at the
 *     offered rate of C and the per-event costs C measured (a model of the
 *     source and one worker replaying them).
 * Usage: bench_pipeline [events (default 1000000)] [rate for C (default 250000)]
 *                       [parts to run (default ABECN)]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/hist.h"
#include "daemon/daemon.h"
#include "source/gen.h"

#include "bench.h"

static const char *yaml_fmt =
    "pipeline: bench\n"
    "workers: %d\n"
    "source: {type: generator, events: %ld, seed: 42, fraud_rate: 0.01, cards: 50000, "
    "density: 200, rate: %ld}\n" BENCH_DEMO_EVENT_FEATURES "rules:\n"
    "  - {when: \"score >= 0.9\", decision: block}\n"
    "  - {when: \"score >= 0.6 or amount > 10000\", decision: review}\n"
    "  - {decision: allow}\n"
    "fallback:\n"
    "  score: \"min(1, amount / 20000 + (txn_count_5m > 10) * 0.5 + (amount_ratio > 8) * 0.3 "
    "+ (merchants_24h > 6) * 0.2 + (hour < 5) * 0.1 + foreign * 0.1)\"\n"
    "sink: {type: null}\n"
    "limits: {max_keys: 1000000}\n";

/* the shipped model, found from the working directory or next to the build */
static const char *model_yaml = "model: {path: examples/fraud/model, batch: {max: 64}}\n";
static int with_model;

static struct rts_pipeline_conf *make_conf(int workers, long events, long rate)
{
    char yaml[4096];
    struct rts_errbuf eb = {0};
    struct rts_pipeline_conf *c;
    int n = snprintf(yaml, sizeof(yaml), yaml_fmt, workers, events, rate);

    if (with_model) {
        snprintf(yaml + n, sizeof(yaml) - (size_t)n, "%s", model_yaml);
    }
    c = rts_pipeline_conf_parse("bench.yaml", yaml, strlen(yaml), &eb);
    if (!c) {
        fprintf(stderr, "bench: %s\n", eb.msg);
        exit(2);
    }
    return c;
}

/* Decode, evaluate and format events [from, to) of @text; returns seconds,
 * adds the features+rules time to *busy_ns. */
static double run_slice(const struct rts_pipeline *p, struct rts_eval *e, const char *text,
                        const size_t *offs, long from, long to, char *rec, size_t rec_cap,
                        char *out, size_t out_cap, uint64_t *busy_ns, struct rts_hist *svc)
{
    struct rts_decode_err err;
    uint64_t t0 = rts_now_ns(), sink = 0;

    for (long i = from; i < to; i++) {
        struct rts_event ev;
        size_t n = rts_decode(p->conf->schema, text + offs[i], offs[i + 1] - offs[i] - 1, 65536, 0,
                              rec, rec_cap, &err);
        if (!n) {
            continue;
        }
        rts_event_view(p->conf->schema, rec, &ev, e->rows[0].vals);
        rts_pipeline_eval(p, e, &ev);
        *busy_ns += e->rows[0].features_ns + e->rows[0].rules_ns;
        rts_hist_add(svc, e->rows[0].features_ns + e->rows[0].rules_ns);
        sink += rts_pipeline_format_score(p, &e->rows[0], &ev, 0, 0, out, out_cap);
    }
    if (sink == 0) {
        printf("?");
    }
    return (double)(rts_now_ns() - t0) * 1e-9;
}

/* A: one thread over pre-generated events: a cold pass over a fresh state
 * table (every key new, memory first touched), then a warm pass over the
 * next events (keys known: the steady state of a long-running scorer). */
static void bench_single(long events)
{
    struct rts_errbuf eb = {0};
    struct rts_pipeline *p = rts_pipeline_new(make_conf(1, events, 0), &eb);
    struct rts_gen_opts go;
    struct rts_gen *g;
    char *text, *rec, *out;
    size_t *offs, cap, used = 0, rec_cap, out_cap;
    long total = 2 * events;
    double cold[5], warm[5], warm_feat[5];
    static struct rts_hist svc[2]; /* features+rules per event: cold, warm */

    rts_gen_opts_default(&go);
    go.seed = 42;
    go.cards = 50000;
    go.events_per_sec = 200;
    g = rts_gen_new(&go, &eb);
    cap = (size_t)total * 200 + 4096;
    text = malloc(cap);
    offs = malloc(((size_t)total + 1) * sizeof(*offs));
    for (long i = 0; i < total; i++) {
        if (cap - used < 600) {
            cap *= 2;
            text = realloc(text, cap);
        }
        offs[i] = used;
        used += rts_gen_next(g, text + used, cap - used);
    }
    offs[total] = used;
    rts_gen_free(g);
    rec_cap = rts_decode_record_max(p->conf->schema, 65536);
    rec = aligned_alloc(8, (rec_cap + 7) & ~(size_t)7);
    out_cap = rts_pipeline_record_max(p);
    out = malloc(out_cap);

    for (int run = 0; run < 5; run++) {
        struct rts_eval e;
        uint64_t busy_cold = 0, busy_warm = 0;

        rts_eval_init(&e, p, 1000000, 1, &eb);
        cold[run] = (double)events / run_slice(p, &e, text, offs, 0, events, rec, rec_cap, out,
                                               out_cap, &busy_cold, &svc[0]);
        warm[run] = (double)events / run_slice(p, &e, text, offs, events, total, rec, rec_cap, out,
                                               out_cap, &busy_warm, &svc[1]);
        warm_feat[run] = (double)events / ((double)busy_warm * 1e-9);
        if (run == 4) {
            struct rts_feature_stats fs;
            rts_feature_worker_stats(e.fw, &fs);
            printf("D. state: %llu keys, %zu bytes of feature state per key, %zu bytes per key "
                   "entry (state + key + table bookkeeping), %.1f MiB committed\n",
                   (unsigned long long)fs.keys, rts_features_state_size(p->features), fs.key_bytes,
                   (double)fs.bytes_committed / 1048576.0);
        }
        rts_eval_fini(&e);
    }
    printf("A. one thread, decode+features+rules+format, median of 5:\n"
           "   cold (fresh state, %ld events): %.0f events/s (%.0f ns/event)\n"
           "   warm (next %ld events, keys known): %.0f events/s (%.0f ns/event); "
           "features+rules alone %.0f events/s\n",
           events, bench_median(cold, 5), 1e9 / bench_median(cold, 5), events,
           bench_median(warm, 5), 1e9 / bench_median(warm, 5), bench_median(warm_feat, 5));
    for (int i = 0; i < 2; i++) {
        printf(
            "   features+rules of one event, %s passes: p50 %.2f us, p99 %.2f us, p99.9 %.1f us, "
            "max %.0f us\n",
            i ? "warm" : "cold", (double)rts_hist_quantile(&svc[i], 0.5) / 1e3,
            (double)rts_hist_quantile(&svc[i], 0.99) / 1e3,
            (double)rts_hist_quantile(&svc[i], 0.999) / 1e3,
            (double)rts_hist_quantile(&svc[i], 1.0) / 1e3);
    }
    free(out);
    free(rec);
    free(offs);
    free(text);
    rts_pipeline_free(p);
}

struct daemon_result {
    double rate, p50_us, p99_us, worker_ns, batch;
};

static struct daemon_result run_daemon(int workers, long events, long rate, int lookahead)
{
    struct rts_errbuf eb = {0};
    struct rts_daemon_opts opts = {.no_lookahead = !lookahead};
    struct rts_daemon *d = rts_daemon_new(make_conf(workers, events, rate), &opts, &eb);
    struct rts_daemon_stats s;
    struct daemon_result r;
    const struct rts_hist *f, *ru, *em;

    if (!d || rts_daemon_run(d, &eb)) {
        fprintf(stderr, "bench: %s\n", eb.msg);
        exit(2);
    }
    rts_daemon_stats(d, &s);
    f = &s.hist[RTS_STAGE_FEATURES];
    ru = &s.hist[RTS_STAGE_RULES];
    em = &s.hist[RTS_STAGE_EMIT];
    r.rate = (double)s.scored / s.elapsed_s;
    r.p50_us = (double)rts_hist_quantile(&s.hist[RTS_STAGE_TOTAL], 0.5) / 1e3;
    r.p99_us = (double)rts_hist_quantile(&s.hist[RTS_STAGE_TOTAL], 0.99) / 1e3;
    r.worker_ns = (double)(f->sum + ru->sum + em->sum) / (double)(f->count ? f->count : 1);
    r.batch = s.batch.count ? (double)s.batch.sum / (double)s.batch.count : 0;
    rts_daemon_stats_fini(&s);
    rts_daemon_free(d);
    return r;
}

static void bench_daemon(int workers, long events)
{
    double rate[2][3], p99[2][3], wns[2][3];

    /* with and without lookahead, interleaved so that both see the same noise */
    for (int i = 0; i < 3; i++) {
        for (int la = 0; la < 2; la++) {
            struct daemon_result r = run_daemon(workers, events, 0, la);
            rate[la][i] = r.rate;
            p99[la][i] = r.p99_us;
            wns[la][i] = r.worker_ns;
        }
    }
    for (int la = 1; la >= 0; la--) {
        printf("B. daemon, %d worker%s, saturated, %s: %.0f events/s end to end; worker busy %.0f "
               "ns/event; p99 ingest->emitted %.0f us (queues full) (medians of 3)\n",
               workers, workers > 1 ? "s" : "", la ? "lookahead on " : "lookahead off",
               bench_median(rate[la], 3), bench_median(wns[la], 3), bench_median(p99[la], 3));
    }
}

/* E: the same with the shipped model scoring every event, against the
 * fallback score, interleaved. */
static void bench_model_on(int workers, long events)
{
    double rate[2][3], p99[2][3], batch[3];

    for (int i = 0; i < 3; i++) {
        for (int m = 0; m < 2; m++) {
            struct daemon_result r;
            with_model = m;
            r = run_daemon(workers, events, 0, 1);
            rate[m][i] = r.rate;
            p99[m][i] = r.p99_us;
            if (m) {
                batch[i] = r.batch;
            }
        }
    }
    with_model = 0;
    printf("E. daemon, %d worker%s, saturated, model fraud (XGBoost, 200 trees, batch max 64): "
           "%.0f events/s, p99 %.0f us, %.1f events per model call; fallback score instead: "
           "%.0f events/s, p99 %.0f us (medians of 3)\n",
           workers, workers > 1 ? "s" : "", bench_median(rate[1], 3), bench_median(p99[1], 3),
           bench_median(batch, 3), bench_median(rate[0], 3), bench_median(p99[0], 3));
}

/* C: latency at a fixed offered rate, after a warm-up. The daemon runs in
 * its own thread; the histograms are cumulative, so quantiles of the
 * difference between a snapshot after the warm-up and one at the end are
 * the latency of the steady state. Also the mean cost of one event in the
 * source (decode) and in the worker (features + rules + emit) at that rate,
 * for N's model. */
struct paced_result {
    double p50_us, p99_us, src_ns, wrk_ns;
};

static double hist_mean_between(const struct rts_daemon_stats *a, const struct rts_daemon_stats *b,
                                enum rts_stage st)
{
    struct rts_hist h;

    bench_hist_sub(&h, &b->hist[st], &a->hist[st]);
    return h.count ? (double)h.sum / (double)h.count : 0;
}

static struct paced_result bench_paced(int workers, long rate, int prefault, int warm_s,
                                       int measure_s)
{
    struct rts_daemon_opts opts = {.no_housekeeper = !prefault, .no_idle_prefault = !prefault};
    struct bench_paced_run pr = {0};
    struct rts_daemon_stats a, b;
    struct paced_result r;
    struct rts_hist h;
    pthread_t tid;
    struct timespec ts = {warm_s, 0};

    pr.d = rts_daemon_new(make_conf(workers, rate * (warm_s + measure_s), rate), &opts, &pr.eb);
    if (!pr.d) {
        fprintf(stderr, "bench: %s\n", pr.eb.msg);
        exit(2);
    }
    pthread_create(&tid, NULL, bench_paced_main, &pr);
    nanosleep(&ts, NULL);
    rts_daemon_stats(pr.d, &a);
    pthread_join(tid, NULL);
    rts_daemon_stats(pr.d, &b);
    bench_hist_sub(&h, &b.hist[RTS_STAGE_TOTAL], &a.hist[RTS_STAGE_TOTAL]);
    r.p50_us = (double)rts_hist_quantile(&h, 0.5) / 1e3;
    r.p99_us = (double)rts_hist_quantile(&h, 0.99) / 1e3;
    r.src_ns = hist_mean_between(&a, &b, RTS_STAGE_DECODE);
    r.wrk_ns = hist_mean_between(&a, &b, RTS_STAGE_FEATURES) +
               hist_mean_between(&a, &b, RTS_STAGE_RULES) +
               hist_mean_between(&a, &b, RTS_STAGE_EMIT);
    rts_daemon_stats_fini(&a);
    rts_daemon_stats_fini(&b);
    rts_daemon_free(pr.d);
    return r;
}

/* N: what the machine itself does to threads that never sleep: the gaps a
 * spinning loop sees between two clock reads are time it did not run. Two
 * threads spin at once, as the source and a worker do. `over50` is the time
 * during which a thread still had more than 50 us of such a gap ahead: the
 * share of random instants at which an event handed to it would wait over
 * 50 us before it even runs. */
#define NOISE_NS 3000000000u
#define GAPS_MAX (1 << 17)
struct stops {
    uint64_t t0;                          /* the common start */
    uint64_t at[GAPS_MAX], len[GAPS_MAX]; /* the stops over 5 us, for the model */
    size_t n;
    uint64_t n20, n100, stalled, worst, over50;
};
static struct stops noise[2];

static void *spin_stops(void *arg)
{
    struct stops *s = arg;
    uint64_t prev = rts_now_ns(), now, gap;

    while ((now = rts_now_ns()) - s->t0 < NOISE_NS) {
        gap = now - prev;
        if (gap > 5000 && s->n < GAPS_MAX) {
            s->at[s->n] = prev - s->t0;
            s->len[s->n++] = gap;
        }
        prev = now;
        if (gap > 20000) {
            s->n20++;
            s->stalled += gap;
        }
        s->n100 += gap > 100000;
        s->over50 += gap > 50000 ? gap - 50000 : 0;
        s->worst = gap > s->worst ? gap : s->worst;
    }
    return NULL;
}

/* When a thread that stopped as @s did, starting at @t, has done @work ns;
 * *@g is a cursor into its stops (call with times that never decrease). */
static uint64_t run_for(const struct stops *s, size_t *g, uint64_t t, uint64_t work)
{
    uint64_t end;

    while (*g < s->n && s->at[*g] + s->len[*g] <= t) {
        (*g)++;
    }
    if (*g < s->n && s->at[*g] <= t) { /* stopped at t */
        t = s->at[*g] + s->len[*g];
        (*g)++;
    }
    end = t + work;
    for (size_t j = *g; j < s->n && s->at[j] < end; j++) {
        end += s->len[j]; /* stopped in the middle */
    }
    return end;
}

/* N, the pipeline model: events due evenly at @rate; a source thread that
 * stops as @src did takes what is due (up to a poll batch, 256), stamps it
 * and queues each event after @src_ns; a worker that stops as @wrk did takes
 * what is queued (up to @batch) and emits the batch after @wrk_ns per event.
 * The latency from stamp to emit is what the daemon measures in C; here it
 * is only the queueing these stops cause at these costs: a floor under the
 * pipeline's on this machine, at that moment. @src NULL: a source that
 * never stops. */
static void pipeline_model(long rate, double src_ns, double wrk_ns, size_t batch,
                           const struct stops *src, const struct stops *wrk, double *p50,
                           double *p99)
{
    static const struct stops none;
    static struct rts_hist h;
    const double every = 1e9 / (double)rate;
    const size_t n = (size_t)((double)(NOISE_NS - 100000000u) / every); /* 0.1 s to drain */
    uint64_t *stamp = malloc(n * sizeof(*stamp)), *queued = malloc(n * sizeof(*queued)), t = 0;
    size_t gs = 0, gw = 0;

    src = src ? src : &none;
    memset(&h, 0, sizeof(h));
    for (size_t i = 0; i < n;) {
        uint64_t due = (uint64_t)((double)i * every), st;
        size_t j = i;

        st = t = run_for(src, &gs, t > due ? t : due, 0);
        while (j < n && j - i < 256 && (double)j * every <= (double)st) {
            j++;
        }
        for (; i < j; i++) {
            t = run_for(src, &gs, t, (uint64_t)src_ns);
            stamp[i] = st;
            queued[i] = t;
        }
    }
    t = 0;
    for (size_t k = 0; k < n;) {
        size_t m = k;

        t = run_for(wrk, &gw, t > queued[k] ? t : queued[k], 0);
        while (m < n && m - k < batch && queued[m] <= t) {
            m++;
        }
        t = run_for(wrk, &gw, t, (uint64_t)((double)(m - k) * wrk_ns));
        for (; k < m; k++) {
            rts_hist_add(&h, t - stamp[k]);
        }
    }
    free(stamp);
    free(queued);
    *p50 = (double)rts_hist_quantile(&h, 0.5) / 1e3;
    *p99 = (double)rts_hist_quantile(&h, 0.99) / 1e3;
}

/* @src_ns and @wrk_ns: the costs C measured, or 0 when C did not run */
static void noise_floor(long rate, double src_ns, double wrk_ns)
{
    pthread_t tid[2];
    double q50[3], q99[3];
    const char *costs = "measured in C";

    memset(noise, 0, sizeof(noise));
    noise[0].t0 = noise[1].t0 = rts_now_ns();
    for (int i = 0; i < 2; i++) {
        pthread_create(&tid[i], NULL, spin_stops, &noise[i]);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(tid[i], NULL);
    }
    for (int i = 0; i < 2; i++) {
        const struct stops *s = &noise[i];
        printf("N. noise floor, spinning thread %d of 2 (3 s): stopped %.0f times/s for > 20 us, "
               "%.0f times/s for > 100 us, %.2f%% of the time in all; longest %.2f ms; an event "
               "arriving at a random instant would wait > 50 us for it %.2f%% of the time\n",
               i + 1, (double)s->n20 / 3, (double)s->n100 / 3, (double)s->stalled / 3e7,
               (double)s->worst / 1e6, (double)s->over50 / 3e7);
    }
    if (src_ns <= 0 || wrk_ns <= 0) {
        src_ns = 200;
        wrk_ns = 1000;
        costs = "assumed: C did not run";
    }
    pipeline_model(rate, src_ns, wrk_ns, 64, &noise[0], &noise[1], &q50[0], &q99[0]);
    pipeline_model(rate, src_ns, wrk_ns, 64, NULL, &noise[1], &q50[1], &q99[1]);
    pipeline_model(rate, src_ns, wrk_ns / 2, 64, &noise[0], &noise[1], &q50[2], &q99[2]);
    printf("N. pipeline model: events at %ld/s taking %.2f us each to decode in the source and "
           "%.2f us in the worker (features + rules + emit; %s), the two threads stopped as "
           "these two were: p50 %.1f us, p99 %.1f us; a source that never stops: p99 %.1f us; "
           "at half the worker's cost: p99 %.1f us\n",
           rate, src_ns / 1e3, wrk_ns / 1e3, costs, q50[0], q99[0], q99[1], q99[2]);
}

int main(int argc, char **argv)
{
    long events = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    long rate = argc > 2 ? strtol(argv[2], NULL, 10) : 250000;
    const char *parts = argc > 3 ? argv[3] : "ABECN";
    double src_ns = 0, wrk_ns = 0; /* one event's cost in C, 1 worker, for N */

    printf("bench_pipeline: demo feature set (11 features), fallback score, 3 rules, null sink\n");
    if (strchr(parts, 'A')) {
        bench_single(events);
    }
    for (int w = 1; w <= 2 && strchr(parts, 'B'); w++) {
        bench_daemon(w, events);
    }
    for (int w = 1; w <= 2 && strchr(parts, 'E'); w++) {
        bench_model_on(w, events);
    }
    for (int w = 1; w <= 2 && strchr(parts, 'C'); w++) {
        double q50[2][3], q99[2][3], src[3], wrk[3];
        /* committing memory ahead (housekeeper and idle workers) on and off,
         * interleaved: the same noise for both */
        for (int i = 0; i < 3; i++) {
            for (int pf = 0; pf < 2; pf++) {
                struct paced_result r = bench_paced(w, rate, pf, 2, 4);
                q50[pf][i] = r.p50_us;
                q99[pf][i] = r.p99_us;
                if (pf) {
                    src[i] = r.src_ns;
                    wrk[i] = r.wrk_ns;
                }
            }
        }
        if (w == 1) {
            src_ns = bench_median(src, 3);
            wrk_ns = bench_median(wrk, 3);
        }
        for (int pf = 1; pf >= 0; pf--) {
            printf("C. daemon, %d worker%s, offered %ld events/s, prefault %s: latency "
                   "ingest->emitted over 4 s after a 2 s warm-up: p50 %.1f us, p99 %.1f us "
                   "(medians of 3)\n",
                   w, w > 1 ? "s" : "", rate, pf ? "on " : "off", bench_median(q50[pf], 3),
                   bench_median(q99[pf], 3));
        }
    }
    if (strchr(parts, 'N')) {
        noise_floor(rate, src_ns, wrk_ns);
    }
    return 0;
}
