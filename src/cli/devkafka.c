/*
 * devkafka.c - `rtscore dev-kafka`: a local Kafka-protocol cluster for
 * development and tests, librdkafka's mock cluster in this process.
 *
 * It listens on free loopback ports, creates the topics asked for, prints the
 * bootstrap servers as one line on stdout (flushed, so a script can read it
 * and go on), and serves until SIGTERM or SIGINT, then exits 0. Everything is
 * in memory and gone at exit; the mock keeps only the last few MiB of each
 * partition (docs/KAFKA.md). Any Kafka client can use it, kcat included.
 *
 * Control channel: lines on stdin inject faults and inspect the cluster
 * (down/up/rtt of a broker, a group's committed offsets); each command is
 * answered by one line on stdout, so a script can wait for the answer. The
 * mock's fault API only works in the process that owns the cluster, and this
 * is that process. End of input only ends the channel: `rtscore dev-kafka &`
 * (stdin at end of file) keeps serving.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "cli/cli.h"
#include "conf/rdkafka.h"
#include "core/log.h"
#include "daemon/daemon.h"

#define USAGE                                                                                      \
    "usage: rtscore dev-kafka [--brokers N] [--partitions N] [--topics a,b,...]\n"                 \
    "commands on stdin (one answer line each on stdout):\n"                                        \
    "  down B | up B            take broker B (1..N) down / bring it back\n"                       \
    "  rtt B MS                 delay every response of broker B by MS milliseconds\n"             \
    "  offsets GROUP TOPIC      the committed offsets of GROUP on TOPIC's partitions\n"            \
    "  help"
#define CTL_LINE_MAX 512
#define CTL_WAIT_MS 10000 /* an offsets query waits this long for the cluster at most */

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

/* ---- the control channel ---- */

struct ctl {
    rd_kafka_mock_cluster_t *mc;
    long brokers;
    char line[CTL_LINE_MAX];
    size_t len;
    int eof;  /* stdin ended: no more commands, keep serving */
    int skip; /* discarding the rest of a line longer than CTL_LINE_MAX */
};

static void answer(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void answer(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* The broker number of @s, or -1 (answered). */
static long ctl_broker(const struct ctl *c, const char *s)
{
    long b = s ? parse_count(s, 1, c->brokers) : -1;

    if (b < 0) {
        answer("error: expected a broker number 1..%ld", c->brokers);
    }
    return b;
}

/* `offsets GROUP TOPIC`: one line "offsets GROUP TOPIC P=OFFSET ..." with -1
 * for a partition without a committed offset, read by a consumer handle of
 * the group that does not join it (an OffsetFetch, as kafka-consumer-groups
 * --describe does). */
static void ctl_offsets(const struct ctl *c, const char *group, const char *topic)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    const struct rd_kafka_metadata *md = NULL;
    const struct rd_kafka_metadata_topic *t = NULL;
    rd_kafka_topic_partition_list_t *l = NULL;
    rd_kafka_resp_err_t err;
    char errstr[256], out[4096];
    size_t o;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(c->mc),
                          errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "client.id", "rtscore-dev-kafka-ctl", errstr, sizeof(errstr))) {
        rd_kafka_conf_destroy(conf);
        answer("error: %s", errstr);
        return;
    }
    rd_kafka_conf_set_log_cb(conf, rts_rdkafka_log);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        answer("error: %s", errstr);
        return;
    }
    /* all topics: asking for this one would create it in the mock */
    err = rd_kafka_metadata(rk, 1, NULL, &md, CTL_WAIT_MS);
    for (int i = 0; !err && i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) == 0) {
            t = &md->topics[i];
        }
    }
    if (!err && (!t || t->err)) {
        err = t ? t->err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    }
    if (err) {
        answer("error: topic '%s': %s", topic, rd_kafka_err2str(err));
        goto out;
    }
    l = rd_kafka_topic_partition_list_new(t->partition_cnt);
    for (int i = 0; i < t->partition_cnt; i++) {
        rd_kafka_topic_partition_list_add(l, topic, t->partitions[i].id);
    }
    rd_kafka_topic_partition_list_sort(l, NULL, NULL);
    err = rd_kafka_committed(rk, l, CTL_WAIT_MS);
    if (err) {
        answer("error: group '%s': %s", group, rd_kafka_err2str(err));
        goto out;
    }
    o = (size_t)snprintf(out, sizeof(out), "offsets %s %s", group, topic);
    for (int i = 0; i < l->cnt && o < sizeof(out); i++) {
        const rd_kafka_topic_partition_t *e = &l->elems[i];
        o += (size_t)snprintf(out + o, sizeof(out) - o, " %d=%lld", (int)e->partition,
                              (long long)(e->err || e->offset < 0 ? -1 : e->offset));
    }
    answer("%s", out);
out:
    if (l) {
        rd_kafka_topic_partition_list_destroy(l);
    }
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

/* Run one command line (NUL-terminated, without its newline). */
static void ctl_command(const struct ctl *c, char *line)
{
    char *save = NULL, *cmd = strtok_r(line, " \t\r", &save);
    char *a1 = cmd ? strtok_r(NULL, " \t\r", &save) : NULL;
    char *a2 = a1 ? strtok_r(NULL, " \t\r", &save) : NULL;
    char *more = a2 ? strtok_r(NULL, " \t\r", &save) : NULL;
    long b, ms;

    if (!cmd || cmd[0] == '#') {
        return; /* blank lines and comments are not commands: no answer */
    }
    if (strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0) {
        if (a2) {
            answer("error: usage: %s BROKER", cmd);
        } else if ((b = ctl_broker(c, a1)) > 0) {
            rd_kafka_resp_err_t err = cmd[0] == 'd'
                                          ? rd_kafka_mock_broker_set_down(c->mc, (int32_t)b)
                                          : rd_kafka_mock_broker_set_up(c->mc, (int32_t)b);
            if (err) {
                answer("error: %s", rd_kafka_err2str(err));
            } else {
                rts_log(RTS_LOG_INFO, "dev-kafka broker", "broker=%ld state=%s", b, cmd);
                answer("ok %s %ld", cmd, b);
            }
        }
    } else if (strcmp(cmd, "rtt") == 0) {
        if (!a2 || more || (ms = parse_count(a2, 0, 3600 * 1000)) < 0) {
            answer("error: usage: rtt BROKER MS (0..3600000)");
        } else if ((b = ctl_broker(c, a1)) > 0) {
            rd_kafka_resp_err_t err = rd_kafka_mock_broker_set_rtt(c->mc, (int32_t)b, (int)ms);
            if (err) {
                answer("error: %s", rd_kafka_err2str(err));
            } else {
                rts_log(RTS_LOG_INFO, "dev-kafka broker", "broker=%ld rtt_ms=%ld", b, ms);
                answer("ok rtt %ld %ld", b, ms);
            }
        }
    } else if (strcmp(cmd, "offsets") == 0) {
        if (!a2 || more) {
            answer("error: usage: offsets GROUP TOPIC");
        } else {
            ctl_offsets(c, a1, a2);
        }
    } else if (strcmp(cmd, "help") == 0) {
        answer("commands: down B, up B, rtt B MS, offsets GROUP TOPIC, help");
    } else {
        answer("error: unknown command '%s' (try help)", cmd);
    }
}

/* Read what stdin has (it is readable) and run the complete lines. */
static void ctl_read(struct ctl *c)
{
    char buf[1024];
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return;
    }
    if (n <= 0) {
        c->eof = 1;
        if (c->len && !c->skip) {
            c->line[c->len] = '\0';
            ctl_command(c, c->line);
        }
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            if (c->skip) {
                answer("error: line longer than %d bytes", CTL_LINE_MAX - 1);
            } else {
                c->line[c->len] = '\0';
                ctl_command(c, c->line);
            }
            c->len = 0;
            c->skip = 0;
        } else if (c->len + 1 < sizeof(c->line)) {
            c->line[c->len++] = buf[i];
        } else {
            c->skip = 1;
        }
    }
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
    struct ctl ctl = {0};
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
    ctl.mc = mc;
    ctl.brokers = brokers;
    while (!rts_stop_requested()) {
        struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
        if (ctl.eof) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        } else if (poll(&pfd, 1, 100) > 0) {
            ctl_read(&ctl); /* POLLHUP and POLLNVAL read as the end */
        }
    }
    rts_log(RTS_LOG_INFO, "dev-kafka stopping", NULL);
out:
    rd_kafka_destroy(rk);
    return rc;
}
