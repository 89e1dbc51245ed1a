/*
 * bench_control.c - what the control plane costs the data path.
 *
 *   A. throughput, saturated, with the HTTP server up and /metrics scraped
 *      ten times a second (far more often than Prometheus does) against the
 *      same run without HTTP; interleaved runs, medians.
 *   B. p99 ingest->emitted at a fixed offered rate in a steady window and in
 *      a window where the model is swapped continuously (load a bundle, warm
 *      it up, promote, roll back: a full cycle every 250 ms); both windows in
 *      the same run, medians over runs.
 *
 * The demo's features and the shipped model (examples/fraud/model, found
 * from the working directory or next to the build) on the generator; null
 * sink. Usage: bench_control [events_for_A] [rate_for_B]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/hist.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "model/registry.h"

#include "bench.h"

static const char *yaml_fmt =
    "pipeline: bench\n"
    "workers: 1\n"
    "source: {type: generator, events: %ld, seed: 42, fraud_rate: 0.01, cards: 50000, "
    "density: 200, rate: %ld}\n"
    BENCH_DEMO_EVENT_FEATURES
    "model: {path: examples/fraud/model, batch: {max: 64}}\n"
    "rules:\n"
    "  - {when: \"score >= 0.5\", decision: block}\n"
    "  - {when: \"score >= 0.15 or amount > 10000\", decision: review}\n"
    "  - {decision: allow}\n"
    "fallback: {score: \"min(1, amount / 20000)\"}\n"
    "sink: {type: null}\n"
    "limits: {max_keys: 1000000}\n"
    "%s";

static struct rts_daemon *make_daemon(long events, long rate, int port)
{
    char yaml[4096], http[64] = "";
    struct rts_errbuf eb = {0};
    struct rts_daemon_opts opts = {0};
    struct rts_pipeline_conf *c;
    struct rts_daemon *d;

    if (port) {
        snprintf(http, sizeof(http), "http: {listen: 127.0.0.1:%d}\n", port);
    }
    snprintf(yaml, sizeof(yaml), yaml_fmt, events, rate, http);
    c = rts_pipeline_conf_parse("bench.yaml", yaml, strlen(yaml), &eb);
    d = c ? rts_daemon_new(c, &opts, &eb) : NULL;
    if (!d) {
        fprintf(stderr, "bench_control: %s\n", eb.msg);
        exit(2);
    }
    return d;
}

static int free_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t n = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &n) != 0) {
        perror("bench_control: port");
        exit(2);
    }
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* One GET /metrics; returns the bytes read. */
static size_t scrape(int port)
{
    struct sockaddr_in a = {0};
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    char buf[65536];
    size_t total = 0;
    ssize_t r;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        if (fd >= 0) {
            close(fd);
        }
        return 0;
    }
    while ((r = read(fd, buf, sizeof(buf))) > 0) {
        total += (size_t)r;
    }
    close(fd);
    return total;
}

struct runner {
    struct rts_daemon *d;
    struct rts_errbuf eb;
    atomic_int done;
    int port;
    uint64_t scrapes, bytes;
};

static void *run_main(void *arg)
{
    struct runner *r = arg;

    if (rts_daemon_run(r->d, &r->eb)) {
        fprintf(stderr, "bench_control: %s\n", r->eb.msg);
        exit(2);
    }
    atomic_store(&r->done, 1);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A: events/s of one saturated run, scraped every @every_ms when @port. */
static double run_saturated(long events, int port, long every_ms)
{
    struct runner r = {0};
    struct rts_daemon_stats s;
    pthread_t tid;
    double rate;

    r.d = make_daemon(events, 0, port);
    pthread_create(&tid, NULL, run_main, &r);
    while (!atomic_load(&r.done)) {
        sleep_ms(port ? every_ms : 100);
        if (port) {
            r.bytes += scrape(port);
            r.scrapes++;
        }
    }
    pthread_join(tid, NULL);
    rts_daemon_stats(r.d, &s);
    rate = (double)s.scored / s.elapsed_s;
    if (port && r.bytes == 0) {
        fprintf(stderr, "bench_control: no scrape answered\n");
        exit(2);
    }
    rts_daemon_stats_fini(&s);
    rts_daemon_free(r.d);
    return rate;
}

static double window_p99(struct rts_daemon *d, long ms, struct rts_registry *swap_reg,
                         const char *dir, int *cycles)
{
    struct rts_daemon_stats a, b;
    struct rts_hist h;
    struct rts_errbuf eb = {0};
    uint64_t end = rts_now_ns() + (uint64_t)ms * 1000000u;
    double p99;

    rts_daemon_stats(d, &a);
    while (rts_now_ns() < end) {
        if (!swap_reg) {
            sleep_ms(50);
            continue;
        }
        /* a full deployment cycle: load + warm-up, promote, roll back */
        if (rts_daemon_load_model(d, dir, 0, &eb) || rts_registry_promote(swap_reg, &eb) ||
            rts_registry_rollback(swap_reg, &eb)) {
            fprintf(stderr, "bench_control: swap: %s\n", eb.msg);
            exit(2);
        }
        (*cycles)++;
        sleep_ms(250);
    }
    rts_daemon_stats(d, &b);
    bench_hist_sub(&h, &b.hist[RTS_STAGE_TOTAL], &a.hist[RTS_STAGE_TOTAL]);
    p99 = (double)rts_hist_quantile(&h, 0.99) / 1e3;
    rts_daemon_stats_fini(&a);
    rts_daemon_stats_fini(&b);
    return p99;
}

/* B: p99 in a steady window and in a swapping window of the same run. */
static void run_swaps(long rate, double *steady, double *swapping, int *cycles)
{
    struct runner r = {0};
    pthread_t tid;
    const long warm_ms = 2000, win_ms = 3000;
    struct rts_registry_info ri;

    r.d = make_daemon(rate * (warm_ms + 2 * win_ms + 1000) / 1000, rate, 0);
    rts_registry_info(rts_daemon_registry(r.d), &ri);
    pthread_create(&tid, NULL, run_main, &r);
    sleep_ms(warm_ms);
    *steady = window_p99(r.d, win_ms, NULL, NULL, cycles);
    *swapping = window_p99(r.d, win_ms, rts_daemon_registry(r.d), ri.live.path, cycles);
    pthread_join(tid, NULL);
    rts_daemon_free(r.d);
}

int main(int argc, char **argv)
{
    long events = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    long rate = argc > 2 ? strtol(argv[2], NULL, 10) : 100000;
    double off[5], on[5], ratio[5], steady[3], swapping[3], rel[3];
    static const long every[] = {1000, 100};
    int port = free_port(), cycles = 0;

    printf("bench_control: demo features, model fraud (XGBoost, batch 64), 1 worker, null sink, "
           "%ld online cores\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 5; i++) {
            off[i] = run_saturated(events, 0, 0);
            on[i] = run_saturated(events, port, every[k]);
            ratio[i] = on[i] / off[i];
        }
        printf("A. saturated, %ld events: HTTP off %.0f events/s, HTTP on and /metrics scraped "
               "every %ld ms %.0f events/s; on/off %.3f (medians of 5, interleaved; the ratio is "
               "the median of the pairs)\n",
               events, bench_median(off, 5), every[k], bench_median(on, 5),
               bench_median(ratio, 5));
        fflush(stdout);
    }
    for (int i = 0; i < 3; i++) {
        run_swaps(rate, &steady[i], &swapping[i], &cycles);
        rel[i] = swapping[i] / steady[i];
    }
    printf("B. offered %ld events/s: p99 ingest->emitted steady %.1f us, while swapping models "
           "(load + warm-up + promote + rollback every 250 ms, %d cycles in all) %.1f us; "
           "swapping/steady %.2f (medians of 3 runs, each with both 3 s windows)\n",
           rate, bench_median(steady, 3), cycles, bench_median(swapping, 3),
           bench_median(rel, 3));
    return 0;
}
