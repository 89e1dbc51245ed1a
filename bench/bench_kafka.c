/*
 * bench_kafka.c - the fraud pipeline through Kafka on one machine: librdkafka's
 * mock cluster, the bench's producer and consumer, and rtscore's daemon all
 * in this process, sharing the cores (one broker; topic `in` and `scores`
 * with 8 partitions, `alerts` and `dlq` with 1).
 *
 * The pipeline is examples/fraud/pipeline.yaml as shipped (the demo's 14
 * features with the file-store lookups, the XGBoost model, 3 rules, alerts)
 * with its source replaced by a kafka source and its three sinks by kafka
 * sinks. The input is the generator's stream (0.1% malformed, as in the
 * demo), keyed by card, lz4-compressed.
 *
 *  S. Saturation: 200,000 events are produced into `in` first; then the
 *     daemon starts, and the figure is events / (time from its first read to
 *     the moment scores + dlq hold one record per event, i.e. every output
 *     acknowledged by the broker). The group join (~3 s in the mock) is not
 *     counted.
 *  L. Latency at an offered rate (100,000 events/s by default): a producer
 *     thread paces the stream in 1 ms steps, stamping each event's ts with
 *     the wall clock at its produce() call; a consumer of `scores` (no group,
 *     all partitions) takes each score record's id back to that send time.
 *     Measured: produce() of the input event -> the score record received by
 *     a consumer of the scores topic. A consumer only sees a record once the
 *     broker has appended it, which is what the sink's delivery report
 *     acknowledges (acks=all, one broker), so this is an upper bound of
 *     "event time -> score acknowledged": it also holds the bench producer's
 *     and the sink's batching (linger.ms, 5 ms by default), the source's and
 *     the bench consumer's fetches, and the measuring consumer's own delay.
 *     Quantiles over the events sent after a 3 s warm-up.
 *
 * The mock broker answers a fetch that finds no data after the whole
 * fetch.wait.max.ms (a real broker answers as soon as data arrives), so the
 * consumers here (rtscore's source and the bench's) use fetch.wait.max.ms 2
 * instead of librdkafka's 500; everything else is librdkafka's default
 * (linger.ms 5 on every producer). Each run also reports the CPU time of the
 * whole process (broker, load generator, measuring consumer and rtscore)
 * per wall second, and rtscore's own ingest -> emitted latency over the same
 * window, which separates the pipeline from the Kafka transport. CPU per
 * event (process CPU time / events, far steadier than a wall-clock rate on a
 * shared machine) is printed whole and by thread class: the mock broker, the
 * bench's producer, rtscore's Kafka clients (librdkafka's threads), rtscore's
 * own threads, and the measuring consumer.
 *
 * Each run is a child process (a clean cluster, heap and stop flag); figures
 * are medians of the runs. Run from the repository root or the build folder
 * (the pipeline, model and profiles are found as rtscore finds them).
 * Usage: bench_kafka [rate (100000)] [seconds (12)] [runs (3)] [preload (200000)]
 *                    [all|saturation|latency]
 */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "core/clock.h"
#include "core/hist.h"
#include "core/log.h"
#include "core/path.h"
#include "daemon/daemon.h"
#include "source/gen.h"

#include "bench.h"

#define NPART 8
#define WARM_S 3
#define FETCH_WAIT_MS "2"

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_kafka: %s: %s\n", what, why);
    exit(2);
}

/* ---- the cluster (its owner handle is also the bench's producer) ---- */

struct cluster {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    char boot[256];
};

static void cluster_start(struct cluster *c)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];

    if (rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "compression.type", "lz4", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err)) ||
        !(c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err)))) {
        die("mock cluster", err);
    }
    c->mc = rd_kafka_handle_mock_cluster(c->rk);
    snprintf(c->boot, sizeof(c->boot), "%s", rd_kafka_mock_cluster_bootstraps(c->mc));
    if (rd_kafka_mock_topic_create(c->mc, "in", NPART, 1) ||
        rd_kafka_mock_topic_create(c->mc, "scores", NPART, 1) ||
        rd_kafka_mock_topic_create(c->mc, "alerts", 1, 1) ||
        rd_kafka_mock_topic_create(c->mc, "dlq", 1, 1)) {
        die("mock cluster", "cannot create the topics");
    }
}

/* Messages in @topic: the sum of its partitions' high watermarks. */
static int64_t end_offsets(struct cluster *c, const char *topic, int parts)
{
    int64_t sum = 0;

    for (int p = 0; p < parts; p++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(c->rk, topic, p, &lo, &hi, 5000)) {
            return -1;
        }
        sum += hi;
    }
    return sum;
}

/* ---- the input ---- */

static struct rts_gen *gen_new(void)
{
    struct rts_gen_opts o;
    struct rts_errbuf eb = {0};
    struct rts_gen *g;

    rts_gen_opts_default(&o); /* the demo's stream */
    o.seed = 42;
    o.fraud_rate = 0.01;
    o.bad_rate = 0.001;
    o.cards = 50000;
    o.events_per_sec = 200;
    g = rts_gen_new(&o, &eb);
    if (!g) {
        die("generator", eb.msg);
    }
    return g;
}

/* Produce one generator line keyed by its card (none for a line without). */
static void produce_line(struct cluster *c, const char *line, size_t len)
{
    const char *k = strstr(line, "\"card_id\":\""), *ke = NULL;
    rd_kafka_resp_err_t err;

    if (k) {
        k += 11;
        ke = memchr(k, '"', len - (size_t)(k - line));
    }
    while ((err = rd_kafka_producev(c->rk, RD_KAFKA_V_TOPIC("in"),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_KEY(ke ? k : NULL, ke ? (size_t)(ke - k) : 0),
                                    RD_KAFKA_V_VALUE((void *)line, len), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(c->rk, 1);
    }
    if (err) {
        die("produce", rd_kafka_err2str(err));
    }
}

/* Overwrite the 13-digit event time of @line with @ms (same width until 2286). */
static void stamp(char *line, int64_t ms)
{
    char *t = strstr(line, "\"ts\":");
    char digits[16];

    if (t && snprintf(digits, sizeof(digits), "%lld", (long long)ms) == 13 &&
        strspn(t + 5, "0123456789") == 13) {
        memcpy(t + 5, digits, 13);
    }
}

/* ---- the daemon ---- */

/* examples/fraud/pipeline.yaml with a kafka source and kafka sinks. */
static struct rts_pipeline_conf *make_conf(const char *boot)
{
    char pbuf[4096], *yaml, line[1024];
    const char *path = rts_path_resolve("examples/fraud/pipeline.yaml", pbuf, sizeof(pbuf));
    FILE *f = fopen(path, "r"), *out;
    size_t ylen = 0;
    int skip = 0;
    struct rts_errbuf eb = {0};
    struct rts_pipeline_conf *conf;

    if (!f) {
        die(path, "cannot open (run from the repository root)");
    }
    out = open_memstream(&yaml, &ylen);
    while (fgets(line, sizeof(line), f)) {
        if (skip && line[0] != ' ' && line[0] != '#' && line[0] != '\n') {
            skip = 0;
        }
        if (strncmp(line, "source:", 7) == 0) {
            fprintf(out,
                    "source:\n  type: kafka\n  brokers: \"%s\"\n  topic: in\n  group: bench\n"
                    "  start: earliest\n  commit_interval: 1s\n"
                    "  kafka: {fetch.wait.max.ms: " FETCH_WAIT_MS "}\n",
                    boot);
            skip = 1;
        } else if (skip) {
            continue;
        } else if (strncmp(line, "sink:", 5) == 0) {
            fprintf(out, "sink: {type: kafka, topic: scores}\n");
        } else if (strncmp(line, "alerts:", 7) == 0) {
            fprintf(out, "alerts: {when: \"decision == 'block'\", sink: {type: kafka, topic: "
                         "alerts}}\n");
        } else if (strncmp(line, "dlq:", 4) == 0) {
            fprintf(out, "dlq: {type: kafka, topic: dlq}\n");
        } else {
            fputs(line, out);
        }
    }
    fclose(f);
    fclose(out);
    conf = rts_pipeline_conf_parse("bench_kafka.yaml", yaml, ylen, &eb);
    free(yaml);
    if (!conf) {
        die("pipeline", eb.msg);
    }
    return conf;
}

struct runner {
    struct rts_daemon *d;
    struct rts_errbuf eb;
    int rc;
    pthread_t tid;
};

static void *runner_main(void *arg)
{
    struct runner *r = arg;

    r->rc = rts_daemon_run(r->d, &r->eb);
    return NULL;
}

static void daemon_start(struct runner *r, const char *boot)
{
    struct rts_daemon_opts opts = {0};

    memset(r, 0, sizeof(*r));
    r->d = rts_daemon_new(make_conf(boot), &opts, &r->eb);
    if (!r->d) {
        die("daemon", r->eb.msg);
    }
    pthread_create(&r->tid, NULL, runner_main, r);
}

static void daemon_stop(struct runner *r)
{
    rts_stop_request();
    pthread_join(r->tid, NULL);
    if (r->rc) {
        die("daemon", r->eb.msg);
    }
    rts_daemon_free(r->d);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* ---- CPU time by thread class ----
 *
 * Each thread of the process is put in a class when it is first seen: the
 * bench tags the threads that exist at each step of a run (the cluster's,
 * then rtscore's, then the measuring consumer's), so librdkafka's threads,
 * which all have the same names, are told apart by when they appeared. CPU
 * time is a thread's run time from /proc/self/task/TID/schedstat (ns). */

enum cls { CLS_MOCK, CLS_BENCH, CLS_RTS_KAFKA, CLS_RTS_APP, CLS_CATCHER, CLS__COUNT };

static const char *const cls_name[CLS__COUNT] = {"mock broker", "bench producer",
                                                 "rtscore's kafka clients", "rtscore's threads",
                                                 "measuring consumer"};

#define MAX_TASKS 512

static struct {
    int n;
    long tid[MAX_TASKS];
    int cls[MAX_TASKS];
} tasks;

static int read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f) {
        return -1;
    }
    n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return 0;
}

/* Threads not seen before join class @cls (the cluster's thread is the
 * broker; librdkafka's threads seen while rtscore's are tagged are its Kafka
 * clients; a thread named b:pacer is the bench producer's). */
static void tasks_tag(enum cls cls)
{
    DIR *dir = opendir("/proc/self/task");
    struct dirent *e;

    while (dir && (e = readdir(dir)) && tasks.n < MAX_TASKS) {
        long tid = strtol(e->d_name, NULL, 10);
        char path[64], comm[32];
        int known = 0, c = (int)cls;

        if (tid <= 0) {
            continue;
        }
        for (int i = 0; i < tasks.n && !known; i++) {
            known = tasks.tid[i] == tid;
        }
        if (known) {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/self/task/%ld/comm", tid);
        if (read_small(path, comm, sizeof(comm))) {
            continue;
        }
        if (strncmp(comm, "rdk:mock", 8) == 0) {
            c = CLS_MOCK;
        } else if (strncmp(comm, "b:pacer", 7) == 0) {
            c = CLS_BENCH;
        } else if (cls == CLS_RTS_APP && strncmp(comm, "rdk:", 4) == 0) {
            c = CLS_RTS_KAFKA;
        }
        tasks.tid[tasks.n] = tid;
        tasks.cls[tasks.n++] = c;
    }
    if (dir) {
        closedir(dir);
    }
}

/* CPU seconds so far of each class (threads that have ended are not counted). */
static void tasks_cpu(double *out)
{
    memset(out, 0, CLS__COUNT * sizeof(*out));
    for (int i = 0; i < tasks.n; i++) {
        char path[64], buf[128];
        snprintf(path, sizeof(path), "/proc/self/task/%ld/schedstat", tasks.tid[i]);
        if (read_small(path, buf, sizeof(buf)) == 0) {
            out[tasks.cls[i]] += (double)strtoull(buf, NULL, 10) / 1e9;
        }
    }
}

/* µs of CPU per event of each class between two tasks_cpu() readings. */
static void cpu_per_event(double *us, const double *c0, const double *c1, double events)
{
    for (int i = 0; i < CLS__COUNT; i++) {
        us[i] = (c1[i] - c0[i]) / events * 1e6;
    }
}

/* CPU seconds the whole machine has been busy (all cores, /proc/stat):
 * minus this process's own, what the other jobs on the shared machine took. */
static double machine_busy_s(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    double busy = -1;

    if (f) {
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) == 8) {
            busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) /
                   (double)sysconf(_SC_CLK_TCK); /* all but idle and iowait */
        }
        fclose(f);
    }
    return busy;
}

/* ---- S: saturation ---- */

struct sat_result {
    double rate, cores, us; /* us: process CPU per event, µs */
    double others;          /* cores the machine's other jobs kept busy meanwhile */
    double cls_us[CLS__COUNT];
};

static struct sat_result run_saturation(long preload)
{
    struct cluster c;
    struct runner r;
    struct rts_gen *g = gen_new();
    char line[RTS_GEN_LINE_MAX];
    struct rts_daemon_stats s;
    struct sat_result res = {0};
    uint64_t t0 = 0, t1, end;
    double c0, m0, k0[CLS__COUNT], k1[CLS__COUNT];

    cluster_start(&c);
    tasks_tag(CLS_BENCH);
    for (long i = 0; i < preload; i++) {
        size_t n = rts_gen_next(g, line, sizeof(line));
        produce_line(&c, line, n - 1);
        rd_kafka_poll(c.rk, 0);
    }
    rts_gen_free(g);
    if (rd_kafka_flush(c.rk, 60000)) {
        die("preload", "not delivered");
    }
    daemon_start(&r, c.boot);
    end = rts_now_ns() + 60ull * 1000000000u;
    while (!t0 && rts_now_ns() < end) {
        tasks_tag(CLS_RTS_APP);
        rts_daemon_stats(r.d, &s);
        if (s.in) {
            t0 = rts_now_ns();
        }
        rts_daemon_stats_fini(&s);
        sleep_ms(1);
    }
    tasks_tag(CLS_RTS_APP);
    tasks_cpu(k0);
    c0 = cpu_s();
    m0 = machine_busy_s();
    end = rts_now_ns() + 600ull * 1000000000u;
    while ((t1 = rts_now_ns()) < end &&
           end_offsets(&c, "scores", NPART) + end_offsets(&c, "dlq", 1) < preload) {
        sleep_ms(5);
    }
    if (t1 >= end || !t0) {
        die("saturation", "the outputs did not arrive");
    }
    res.rate = (double)preload / ((double)(t1 - t0) / 1e9);
    res.cores = (cpu_s() - c0) / ((double)(t1 - t0) / 1e9);
    res.others = fmax(0, (machine_busy_s() - m0) / ((double)(t1 - t0) / 1e9) - res.cores);
    res.us = (cpu_s() - c0) / (double)preload * 1e6;
    tasks_cpu(k1);
    cpu_per_event(res.cls_us, k0, k1, (double)preload);
    daemon_stop(&r);
    rd_kafka_destroy(c.rk);
    return res;
}

/* ---- L: latency at an offered rate ---- */

struct lat {
    struct cluster *c;
    long rate, total;
    uint64_t *sent_ns; /* by sequence number (1-based), 0 = not sent */
    uint64_t warm_seq; /* events with a higher number count */
    _Atomic long sent; /* produced so far */
    _Atomic int stop;
    _Atomic int catcher_ready; /* its client exists (its threads are tagged) */
    struct rts_hist h;         /* consumer thread only, read after it ended */
    _Atomic long received;     /* score records of sent events (the main thread waits on it) */
    long counted;
    double offered; /* the rate the pacer achieved */
};

static void *pacer_main(void *arg)
{
    struct lat *l = arg;
    struct rts_gen *g = gen_new();
    char line[RTS_GEN_LINE_MAX];
    uint64_t t0 = rts_now_ns(), now;
    long seq = 0;

    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* 1 ms steps, not 1.05 */
    prctl(PR_SET_NAME, "b:pacer", 0, 0, 0);
    while (seq < l->total) {
        long due;
        now = rts_now_ns();
        due = (long)((double)(now - t0) * 1e-9 * (double)l->rate) + 1;
        if (due > l->total) {
            due = l->total;
        }
        while (seq < due) {
            size_t n = rts_gen_next(g, line, sizeof(line));
            int64_t ms = rts_wall_ms();
            seq++;
            stamp(line, ms);
            l->sent_ns[seq] = rts_now_ns();
            produce_line(l->c, line, n - 1);
        }
        atomic_store(&l->sent, seq);
        rd_kafka_poll(l->c->rk, 0);
        sleep_ms(1);
    }
    l->offered = (double)seq / ((double)(rts_now_ns() - t0) / 1e9);
    rts_gen_free(g);
    return NULL;
}

static void *catcher_main(void *arg)
{
    struct lat *l = arg;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(NPART);
    char err[256];
    rd_kafka_t *rk;

    prctl(PR_SET_NAME, "b:catcher", 0, 0, 0);
    if (rd_kafka_conf_set(conf, "bootstrap.servers", l->c->boot, err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", FETCH_WAIT_MS, err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "group.id", "bench-catcher", err, sizeof(err)) || /* assigned */
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err)) ||
        !(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err)))) {
        die("consumer", err);
    }
    for (int p = 0; p < NPART; p++) {
        rd_kafka_topic_partition_list_add(parts, "scores", p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    atomic_store(&l->catcher_ready, 1);
    while (!atomic_load(&l->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        uint64_t now = rts_now_ns();
        const char *id;
        long seq;

        if (!m) {
            continue;
        }
        id = m->payload;
        /* a score record opens with its id: {"id":"t-19",... */
        if (!m->err && m->len > 9 && memcmp(id, "{\"id\":\"t-", 9) == 0) {
            seq = strtol(id + 9, NULL, 10);
            if (seq > 0 && seq <= l->total && l->sent_ns[seq]) {
                atomic_fetch_add(&l->received, 1);
                if ((uint64_t)seq > l->warm_seq) {
                    rts_hist_add(&l->h, now - l->sent_ns[seq]);
                    l->counted++;
                }
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return NULL;
}

struct lat_result {
    double offered, p50, p95, p99, max, lost, cores, daemon_p50, daemon_p99;
    double us;     /* process CPU per event offered, µs */
    double others; /* cores the machine's other jobs kept busy meanwhile */
    double cls_us[CLS__COUNT];
};

static struct lat_result run_latency(long rate, int seconds)
{
    struct cluster c;
    struct runner r;
    struct lat *l = calloc(1, sizeof(*l));
    struct lat_result res = {0};
    struct rts_daemon_stats s, warm;
    struct rts_hist h;
    struct rts_lag lags[NPART];
    pthread_t pacer, catcher;
    uint64_t end;
    long expect;
    double c0, m0, t0, k0[CLS__COUNT], k1[CLS__COUNT];

    cluster_start(&c);
    tasks_tag(CLS_BENCH);
    daemon_start(&r, c.boot);
    end = rts_now_ns() + 60ull * 1000000000u;
    while (rts_daemon_lag(r.d, lags, NPART) < NPART && rts_now_ns() < end) {
        sleep_ms(10); /* until the group is joined */
    }
    tasks_tag(CLS_RTS_APP);
    l->c = &c;
    l->rate = rate;
    l->total = rate * seconds;
    l->warm_seq = (uint64_t)rate * WARM_S;
    l->sent_ns = calloc((size_t)l->total + 1, sizeof(*l->sent_ns));
    pthread_create(&catcher, NULL, catcher_main, l);
    while (!atomic_load(&l->catcher_ready)) {
        sleep_ms(1);
    }
    sleep_ms(100); /* its broker threads */
    tasks_tag(CLS_CATCHER);
    tasks_cpu(k0);
    c0 = cpu_s();
    m0 = machine_busy_s();
    t0 = (double)rts_now_ns();
    pthread_create(&pacer, NULL, pacer_main, l);
    while (atomic_load(&l->sent) < (long)l->warm_seq) {
        sleep_ms(10);
    }
    rts_daemon_stats(r.d, &warm); /* rtscore's own view of the steady state starts here */
    pthread_join(pacer, NULL);
    res.cores = (cpu_s() - c0) / (((double)rts_now_ns() - t0) / 1e9);
    res.others = fmax(0, (machine_busy_s() - m0) / (((double)rts_now_ns() - t0) / 1e9) -
                             res.cores); /* tick granularity: a few hundredths either way */
    res.us = (cpu_s() - c0) / (double)l->total * 1e6;
    tasks_tag(CLS_CATCHER);
    tasks_cpu(k1);
    cpu_per_event(res.cls_us, k0, k1, (double)l->total);
    /* the last events' scores: a few seconds at most, unless it fell behind */
    rts_daemon_stats(r.d, &s);
    expect = l->total - (long)s.dlq;
    rts_daemon_stats_fini(&s);
    end = rts_now_ns() + 30ull * 1000000000u;
    while (atomic_load(&l->received) < expect && rts_now_ns() < end) {
        sleep_ms(50);
        rts_daemon_stats(r.d, &s);
        expect = l->total - (long)s.dlq;
        rts_daemon_stats_fini(&s);
    }
    atomic_store(&l->stop, 1);
    pthread_join(catcher, NULL);
    rts_daemon_stats(r.d, &s);
    bench_hist_sub(&h, &s.hist[RTS_STAGE_TOTAL], &warm.hist[RTS_STAGE_TOTAL]);
    res.daemon_p50 = (double)rts_hist_quantile(&h, 0.50) / 1e6;
    res.daemon_p99 = (double)rts_hist_quantile(&h, 0.99) / 1e6;
    rts_daemon_stats_fini(&s);
    rts_daemon_stats_fini(&warm);
    daemon_stop(&r);
    res.offered = l->offered;
    res.p50 = (double)rts_hist_quantile(&l->h, 0.50) / 1e6;
    res.p95 = (double)rts_hist_quantile(&l->h, 0.95) / 1e6;
    res.p99 = (double)rts_hist_quantile(&l->h, 0.99) / 1e6;
    res.max = (double)l->h.max / 1e6;
    res.lost = (double)(expect - atomic_load(&l->received));
    free(l->sent_ns);
    free(l);
    rd_kafka_destroy(c.rk);
    return res;
}

/* ---- runs in child processes ---- */

/* Run @fn in a child; its result comes back through a pipe. */
static void in_child(void (*fn)(void *out, const void *arg), const void *arg, void *out,
                     size_t size)
{
    int fd[2];
    pid_t pid;
    int status;

    if (pipe(fd) != 0) {
        die("pipe", "failed");
    }
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(fd[0]);
        fn(out, arg);
        if (write(fd[1], out, size) != (ssize_t)size) {
            _exit(2);
        }
        _exit(0);
    }
    close(fd[1]);
    if (read(fd[0], out, size) != (ssize_t)size) {
        die("run", "the child failed");
    }
    close(fd[0]);
    waitpid(pid, &status, 0);
}

struct args {
    long rate, preload;
    int seconds;
};

static void sat_child(void *out, const void *arg)
{
    const struct args *a = arg;
    *(struct sat_result *)out = run_saturation(a->preload);
}

static void lat_child(void *out, const void *arg)
{
    const struct args *a = arg;
    *(struct lat_result *)out = run_latency(a->rate, a->seconds);
}

/* The load average (1 min) now: the machine is shared, so it goes with the figures. */
static double loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");

    if (f) {
        if (fscanf(f, "%lf", &l) != 1) {
            l = -1;
        }
        fclose(f);
    }
    return l;
}

/* CPU per event, whole process and by thread class (medians of @runs). */
static void print_cpu(const char *what, double *us, double cls[][16], int runs)
{
    printf("   %s CPU per event: %.1f us (median of %d):", what, bench_median(us, (size_t)runs),
           runs);
    for (int k = 0; k < CLS__COUNT; k++) {
        printf("%s %s %.1f", k ? "," : "", cls_name[k], bench_median(cls[k], (size_t)runs));
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    struct args a = {argc > 1 ? strtol(argv[1], NULL, 10) : 100000,
                     argc > 4 ? strtol(argv[4], NULL, 10) : 200000,
                     argc > 2 ? (int)strtol(argv[2], NULL, 10) : 12};
    int runs = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 3;
    const char *mode = argc > 5 ? argv[5] : "all";
    int do_sat = strcmp(mode, "latency") != 0, do_lat = strcmp(mode, "saturation") != 0;
    double sat[16], satc[16], p50[16], p95[16], p99[16], mx[16], off[16], lost[16], latc[16],
        dp50[16], dp99[16], load[16], satus[16], latus[16], satcls[CLS__COUNT][16],
        latcls[CLS__COUNT][16], satoth[16], latoth[16];

    if (runs < 1 || runs > 16 || a.rate < 1000 || a.seconds <= WARM_S || a.preload < 1000 ||
        (!do_sat && !do_lat) || (strcmp(mode, "all") && do_sat && do_lat)) {
        fprintf(stderr,
                "usage: bench_kafka [rate >= 1000 (100000)] [seconds > %d (12)] [runs 1..16 (3)] "
                "[preload >= 1000 (200000)] [all|saturation|latency]\n",
                WARM_S);
        return 1;
    }
    rts_log_set_level(RTS_LOG_ERROR);
    printf("bench_kafka: examples/fraud/pipeline.yaml (14 features, file-store lookups, XGBoost "
           "model, 3 rules, alerts) with a kafka source and kafka sinks, librdkafka %s mock "
           "cluster (1 broker) in the same process; %ld online cores\n",
           rd_kafka_version_str(), sysconf(_SC_NPROCESSORS_ONLN));
    for (int i = 0; i < runs; i++) {
        struct sat_result sr = {0};
        struct lat_result lr = {0};

        load[i] = loadavg();
        printf("  run %d (load average %.2f):", i + 1, load[i]);
        if (do_sat) {
            in_child(sat_child, &a, &sr, sizeof(sr));
            printf(" saturation %.0f events/s (%.2f cores busy, %.1f us CPU per event; other jobs "
                   "%.2f cores)%s",
                   sr.rate, sr.cores, sr.us, sr.others, do_lat ? ";" : "");
        }
        if (do_lat) {
            in_child(lat_child, &a, &lr, sizeof(lr));
            printf(" at %.0f events/s offered: p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f "
                   "ms, %.0f scores missing, %.2f cores busy; rtscore's own ingest->emitted p50 "
                   "%.2f ms, p99 %.2f ms; %.1f us CPU per event; other jobs %.2f cores",
                   lr.offered, lr.p50, lr.p95, lr.p99, lr.max, lr.lost, lr.cores, lr.daemon_p50,
                   lr.daemon_p99, lr.us, lr.others);
        }
        printf("\n");
        sat[i] = sr.rate;
        satc[i] = sr.cores;
        off[i] = lr.offered;
        p50[i] = lr.p50;
        p95[i] = lr.p95;
        p99[i] = lr.p99;
        mx[i] = lr.max;
        lost[i] = lr.lost;
        latc[i] = lr.cores;
        dp50[i] = lr.daemon_p50;
        dp99[i] = lr.daemon_p99;
        satoth[i] = sr.others;
        latoth[i] = lr.others;
        satus[i] = sr.us;
        latus[i] = lr.us;
        for (int k = 0; k < CLS__COUNT; k++) {
            satcls[k][i] = sr.cls_us[k];
            latcls[k][i] = lr.cls_us[k];
        }
    }
    if (do_sat) {
        printf("S. saturation (%ld events preloaded, until every output is in its topic): %.0f "
               "events/s, %.2f cores busy (median of %d)\n",
               a.preload, bench_median(sat, (size_t)runs), bench_median(satc, (size_t)runs), runs);
        print_cpu("S", satus, satcls, runs);
    }
    if (do_lat) {
        printf("L. offered %.0f events/s for %d s, latency produce(input) -> score record at a "
               "consumer of the scores topic, after a %d s warm-up: p50 %.1f ms, p95 %.1f ms, "
               "p99 %.1f ms, max %.1f ms; %.0f scores missing; %.2f cores busy; rtscore's own "
               "ingest->emitted p50 %.2f ms, p99 %.2f ms (medians of %d)\n",
               bench_median(off, (size_t)runs), a.seconds, WARM_S, bench_median(p50, (size_t)runs),
               bench_median(p95, (size_t)runs), bench_median(p99, (size_t)runs),
               bench_median(mx, (size_t)runs), bench_median(lost, (size_t)runs),
               bench_median(latc, (size_t)runs), bench_median(dp50, (size_t)runs),
               bench_median(dp99, (size_t)runs), runs);
        print_cpu("L", latus, latcls, runs);
    }
    printf("   load average (1 min) at the runs' starts: median %.2f; the machine's other jobs "
           "kept cores busy during the runs (median):",
           bench_median(load, (size_t)runs));
    if (do_sat) {
        printf(" S %.2f", bench_median(satoth, (size_t)runs));
    }
    if (do_lat) {
        printf(" L %.2f", bench_median(latoth, (size_t)runs));
    }
    printf("\n");
    return 0;
}
