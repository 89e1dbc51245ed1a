/*
 * devkafka.c - `rtscore dev-kafka`: a local Kafka-protocol cluster for
 * development and tests, librdkafka's mock cluster in this process.
 *
 * It listens on free loopback ports, creates the topics asked for, prints the
 * bootstrap servers as one line on stdout (flushed, so a script can read it
 * and go on), and serves until SIGTERM or SIGINT, then exits 0. Everything is
 * in memory and gone at exit; the mock keeps only the last few MiB of each
 * partition (docs/KAFKA.md). Any Kafka client can use it, kcat included.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "cli/cli.h"
#include "conf/rdkafka.h"
#include "core/log.h"
#include "daemon/daemon.h"

#define USAGE "usage: rtscore dev-kafka [--brokers N] [--partitions N] [--topics a,b,...]"

static int dev_usage(const char *msg)
{
    fprintf(stderr, "rtscore dev-kafka: %s\n%s\n", msg, USAGE);
    return 1;
}

/* A whole decimal number in [lo, hi], or -1. */
static long parse_count(const char *s, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);

    return *s && !*end && v >= lo && v <= hi ? v : -1;
}

/* Create each topic of the comma-separated @list; 0 or -1 (message printed). */
static int create_topics(rd_kafka_mock_cluster_t *mc, const char *list, int partitions,
                         int replicas)
{
    const char *p = list;

    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char name[250];
        rd_kafka_resp_err_t err;

        if (n == 0 || n >= sizeof(name)) {
            fprintf(stderr, "rtscore dev-kafka: --topics: expected names separated by commas\n");
            return -1;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        err = rd_kafka_mock_topic_create(mc, name, partitions, replicas);
        if (err) {
            fprintf(stderr, "rtscore dev-kafka: cannot create topic '%s': %s\n", name,
                    rd_kafka_err2str(err));
            return -1;
        }
        p += e ? n + 1 : n;
    }
    return 0;
}

int rts_cmd_dev_kafka(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"partitions", required_argument, NULL, 'p'},
        {"topics", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    long brokers = 1, partitions = 4;
    const char *topics = "";
    char nb[16], errstr[256];
    rd_kafka_conf_t *conf;
    rd_kafka_mock_cluster_t *mc;
    rd_kafka_t *rk;
    int c, rc = 0;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if ((brokers = parse_count(optarg, 1, 16)) < 0) {
                return dev_usage("--brokers: expected 1..16");
            }
            break;
        case 'p':
            if ((partitions = parse_count(optarg, 1, 1000)) < 0) {
                return dev_usage("--partitions: expected 1..1000");
            }
            break;
        case 't':
            topics = optarg;
            break;
        default:
            return dev_usage("unknown option");
        }
    }
    if (optind < argc) {
        return dev_usage("unexpected argument");
    }
    /* the client that owns the cluster: the cluster lives as long as it does */
    conf = rd_kafka_conf_new();
    snprintf(nb, sizeof(nb), "%ld", brokers);
    rd_kafka_conf_set_log_cb(conf, rts_rdkafka_log);
    if (rd_kafka_conf_set(conf, "test.mock.num.brokers", nb, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "client.id", "rtscore-dev-kafka", errstr, sizeof(errstr))) {
        fprintf(stderr, "rtscore dev-kafka: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "rtscore dev-kafka: cannot start the mock cluster: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    mc = rd_kafka_handle_mock_cluster(rk);
    if (!mc) {
        fprintf(stderr, "rtscore dev-kafka: this librdkafka has no mock cluster\n");
        rc = 2;
        goto out;
    }
    if (create_topics(mc, topics, (int)partitions, brokers < 3 ? (int)brokers : 3)) {
        rc = 1;
        goto out;
    }
    rts_cli_signals();
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    rts_log(RTS_LOG_INFO, "dev-kafka ready", "bootstrap=%s brokers=%ld partitions=%ld topics=%s",
            rd_kafka_mock_cluster_bootstraps(mc), brokers, partitions, topics);
    while (!rts_stop_requested()) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    rts_log(RTS_LOG_INFO, "dev-kafka stopping", NULL);
out:
    rd_kafka_destroy(rk);
    return rc;
}
