/*
 * kafka.c - the `kafka` sink: each record is one message on a topic, through
 * an idempotent librdkafka producer, acknowledged when the broker has it.
 *
 * A record's message has the event key as its key, the JSON line without its
 * '\n' as its value, and the headers `id` (the event id, when there is one)
 * and `model` (when the record names one). Its acknowledgement token is the
 * message's opaque; the delivery report calls env->ack exactly once per
 * accepted record with a non-zero token: ok after the broker acknowledged it
 * (acks=all with idempotence), not ok when librdkafka gave up after its own
 * retries (message.timeout.ms) or the record was refused at once (too large)
 * or purged at exit. Failures are logged at error level and counted; the next
 * flush() reports them.
 *
 * write() is called by several threads at once; librdkafka's produce is
 * thread-safe, so no lock is taken here. When librdkafka's queue is full,
 * write() returns RETRY if no record of the batch was accepted yet (the
 * daemon retries the whole batch), and otherwise waits for room: a batch is
 * either not accepted at all or accepted whole (except records refused for
 * good, which are acknowledged as failed), so a retried batch never produces
 * duplicates or double acknowledgements. The wait is bounded by librdkafka's
 * message.timeout.ms, after which queued messages fail and make room.
 *
 * A background thread serves delivery reports (rd_kafka_poll) from init to
 * fini; flush() serves them too while it waits.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "conf/rdkafka.h"
#include "core/log.h"
#include "sink/sink.h"

#define KSINK_FULL_WAIT_MS 50 /* queue full at the first record: wait this long, then RETRY */

struct kafka_sink {
    /* options */
    const char *brokers;
    const char *topic;
    uint64_t queue_max;
    int64_t flush_timeout_us;
    const struct rts_conf_node *kafka;
    /* state */
    const char *path;
    void (*ack)(void *arg, uint64_t token, int ok, const char *why);
    void *ack_arg;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    pthread_t poller;
    int poller_ok;
    atomic_int stop;
    atomic_int fatal;
    atomic_uint_fast64_t failed; /* records failed since the last flush */
    int mu_ok;
    pthread_mutex_t mu; /* last_error */
    char last_error[200];
};

static const struct rts_opt kafka_sink_opts[] = {
    RTS_OPT_STR("brokers", NULL, offsetof(struct kafka_sink, brokers),
                "bootstrap brokers, host:port[,host:port...]; default: the kafka source's"),
    RTS_OPT_STR_REQ("topic", offsetof(struct kafka_sink, topic), "destination topic"),
    RTS_OPT_SIZE("queue_max", "100000", offsetof(struct kafka_sink, queue_max),
                 "records accepted and not yet delivered; when full, writers wait "
                 "(queue.buffering.max.messages)"),
    RTS_OPT_DURATION("flush_timeout", "30s", offsetof(struct kafka_sink, flush_timeout_us),
                     "how long a flush (at exit) waits for outstanding deliveries"),
    RTS_OPT_NODE("kafka", offsetof(struct kafka_sink, kafka),
                 "librdkafka properties passed verbatim (security.protocol, sasl.*, ssl.*, "
                 "compression.type, linger.ms, ...); unknown keys are errors"),
    RTS_OPT_END,
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* The producer's configuration; NULL with @eb filled. */
static rd_kafka_conf_t *build_conf(struct kafka_sink *k, const char *path, const char *brokers,
                                   struct rts_errbuf *eb)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char what[96], kpath[96], qmax[32];
    char bk[96], qk[96];
    const struct rts_rdkafka_managed managed[] = {
        {"bootstrap.servers", bk},
        {"metadata.broker.list", bk},
        {"queue.buffering.max.messages", qk},
        {NULL, NULL},
    };

    snprintf(bk, sizeof(bk), "%s.brokers", path);
    snprintf(qk, sizeof(qk), "%s.queue_max", path);
    snprintf(kpath, sizeof(kpath), "%s.kafka", path);
    snprintf(what, sizeof(what), "%s.queue_max", path);
    snprintf(qmax, sizeof(qmax), "%llu", (unsigned long long)k->queue_max);
    if (k->flush_timeout_us < 0) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s.flush_timeout: must not be negative", path);
        goto fail;
    }
    if (rts_rdkafka_set(conf, "queue.buffering.max.messages", qmax, what, eb)) {
        goto fail;
    }
    snprintf(what, sizeof(what), "%s.brokers", path);
    if ((brokers && rts_rdkafka_set(conf, "bootstrap.servers", brokers, what, eb)) ||
        rts_rdkafka_set(conf, "client.id", "rtscore", path, eb) ||
        rts_rdkafka_set(conf, "enable.idempotence", "true", path, eb) ||
        rts_rdkafka_apply(conf, k->kafka, kpath, managed, eb)) {
        goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static enum rts_err kafka_sink_check(void *ctx, const char *path, struct rts_errbuf *eb)
{
    struct kafka_sink *k = ctx;
    rd_kafka_conf_t *conf = build_conf(k, path, k->brokers, eb);

    if (!conf) {
        return RTS_ERR_INVAL;
    }
    rd_kafka_conf_destroy(conf);
    return RTS_ERR_OK;
}

static void note_failure(struct kafka_sink *k, const char *why)
{
    atomic_fetch_add(&k->failed, 1);
    pthread_mutex_lock(&k->mu);
    snprintf(k->last_error, sizeof(k->last_error), "%s", why);
    pthread_mutex_unlock(&k->mu);
}

/* Delivery report: poller thread (or a thread in flush). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct kafka_sink *k = opaque;
    uint64_t token = (uint64_t)(uintptr_t)m->_private;

    (void)rk;
    if (m->err) {
        const char *why = rd_kafka_err2str(m->err);
        note_failure(k, why);
        rts_log(RTS_LOG_ERROR, "kafka delivery failed", "sink=%s topic=%s error=\"%s\"", k->path,
                k->topic, why);
    }
    if (token && k->ack) {
        k->ack(k->ack_arg, token, m->err == 0, m->err ? rd_kafka_err2str(m->err) : NULL);
    }
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka_sink *k = opaque;

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[160], msg[200];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof(why));
        snprintf(msg, sizeof(msg), "fatal producer error %s: %s", rd_kafka_err2name(orig), why);
        note_failure(k, msg);
        atomic_store(&k->fatal, 1);
        rts_log(RTS_LOG_ERROR, "kafka producer failed", "sink=%s error=\"%s\"", k->path, msg);
        return;
    }
    rts_log(RTS_LOG_WARN, "kafka producer error", "sink=%s error=%s reason=\"%s\"", k->path,
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void *poller_main(void *arg)
{
    struct kafka_sink *k = arg;

    prctl(PR_SET_NAME, "rts:kdelivery", 0, 0, 0);
    while (!atomic_load(&k->stop)) {
        rd_kafka_poll(k->rk, 100);
    }
    return NULL;
}

static enum rts_err kafka_sink_init(void *ctx, const struct rts_sink_env *env,
                                    struct rts_errbuf *eb)
{
    struct kafka_sink *k = ctx;
    rd_kafka_conf_t *conf;
    const char *brokers = k->brokers ? k->brokers : env->brokers;
    char errstr[256];

    k->path = env->path ? env->path : "sink";
    k->ack = env->ack;
    k->ack_arg = env->ack_arg;
    if (!brokers) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                        "%s.brokers: required (the source is not kafka, so there is no default)",
                        k->path);
    }
    if (pthread_mutex_init(&k->mu, NULL) != 0) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: cannot create a mutex", k->path);
    }
    k->mu_ok = 1;
    conf = build_conf(k, k->path, brokers, eb);
    if (!conf) {
        return RTS_ERR_INVAL;
    }
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, rts_rdkafka_log);
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!k->rk) {
        rd_kafka_conf_destroy(conf);
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s: cannot create the Kafka producer: %s",
                        k->path, errstr);
    }
    k->rkt = rd_kafka_topic_new(k->rk, k->topic, NULL);
    if (!k->rkt) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s.topic: '%s': %s", k->path, k->topic,
                        rd_kafka_err2str(rd_kafka_last_error()));
    }
    if (pthread_create(&k->poller, NULL, poller_main, k) != 0) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: cannot start the delivery thread", k->path);
    }
    k->poller_ok = 1;
    return RTS_ERR_OK;
}

static rd_kafka_resp_err_t produce(struct kafka_sink *k, const struct rts_batch *b,
                                   const struct rts_rec *r)
{
    const char *val = b->buf + r->off;
    size_t vlen = r->len > 0 && val[r->len - 1] == '\n' ? r->len - 1 : r->len;
    const void *key = r->key.n ? r->key.p : NULL;
    void *opaque = (void *)(uintptr_t)r->token;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_resp_err_t err;

    if (r->id.p || r->model.n) {
        h = rd_kafka_headers_new(2);
        if (r->id.p) {
            rd_kafka_header_add(h, "id", 2, r->id.p, (ssize_t)r->id.n);
        }
        if (r->model.n) {
            rd_kafka_header_add(h, "model", 5, r->model.p, (ssize_t)r->model.n);
        }
        err = rd_kafka_producev(
            k->rk, RD_KAFKA_V_RKT(k->rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_KEY(key, key ? r->key.n : 0),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (err) {
            rd_kafka_headers_destroy(h); /* the message owns them only when accepted */
        }
        return err;
    }
    return rd_kafka_producev(
        k->rk, RD_KAFKA_V_RKT(k->rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_KEY(key, key ? r->key.n : 0),
        RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
}

static enum rts_sink_status fatal_status(struct kafka_sink *k, struct rts_errbuf *eb)
{
    char why[160];
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(k->rk, why, sizeof(why));

    rts_errf(eb, RTS_ERR_UNAVAIL, 0, 0, "kafka producer failed for good: %s: %s",
             rd_kafka_err2name(orig), why);
    return RTS_SINK_ERROR;
}

static enum rts_sink_status kafka_sink_write(void *ctx, const struct rts_batch *b,
                                             struct rts_errbuf *eb)
{
    struct kafka_sink *k = ctx;

    if (atomic_load(&k->fatal)) {
        return fatal_status(k, eb);
    }
    for (size_t i = 0; i < b->n; i++) {
        const struct rts_rec *r = &b->recs[i];
        int waited = 0;
        rd_kafka_resp_err_t err;

        while ((err = produce(k, b, r)) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (i == 0 && waited >= KSINK_FULL_WAIT_MS) {
                rts_errf(eb, RTS_ERR_AGAIN, 0, 0, "%s: the producer queue is full (%llu records)",
                         k->path, (unsigned long long)k->queue_max);
                return RTS_SINK_RETRY; /* nothing of this batch was accepted */
            }
            sleep_ms(5);
            waited += 5;
        }
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
            return fatal_status(k, eb); /* records before i are reported by delivery */
        }
        if (err) {
            /* refused for good (too large, ...): acknowledged as failed, never dropped */
            const char *why = rd_kafka_err2str(err);
            note_failure(k, why);
            rts_log(RTS_LOG_ERROR, "kafka produce refused", "sink=%s topic=%s error=\"%s\"",
                    k->path, k->topic, why);
            if (r->token && k->ack) {
                k->ack(k->ack_arg, r->token, 0, why);
            }
        }
    }
    return RTS_SINK_OK;
}

static enum rts_err kafka_sink_flush(void *ctx, struct rts_errbuf *eb)
{
    struct kafka_sink *k = ctx;
    int ms = (int)(k->flush_timeout_us / 1000);
    uint64_t failed;
    rd_kafka_resp_err_t err;

    if (!k->rk) {
        return RTS_ERR_OK;
    }
    err = rd_kafka_flush(k->rk, ms);
    if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        return rts_errf(eb, RTS_ERR_TIMEOUT, 0, 0,
                        "%s: %d records not delivered to '%s' after %d ms", k->path,
                        rd_kafka_outq_len(k->rk), k->topic, ms);
    }
    failed = atomic_exchange(&k->failed, 0);
    if (failed) {
        char last[sizeof(k->last_error)];
        pthread_mutex_lock(&k->mu);
        memcpy(last, k->last_error, sizeof(last));
        pthread_mutex_unlock(&k->mu);
        return rts_errf(eb, RTS_ERR_IO, 0, 0, "%s: %llu records failed delivery to '%s' (last: %s)",
                        k->path, (unsigned long long)failed, k->topic, last);
    }
    return RTS_ERR_OK;
}

static void kafka_sink_fini(void *ctx)
{
    struct kafka_sink *k = ctx;

    if (k->poller_ok) {
        atomic_store(&k->stop, 1);
        pthread_join(k->poller, NULL);
        k->poller_ok = 0;
    }
    if (k->rk) {
        /* what flush did not deliver fails now, with a report each */
        rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        for (int i = 0; i < 50 && rd_kafka_outq_len(k->rk) > 0; i++) {
            rd_kafka_poll(k->rk, 100);
        }
        if (k->rkt) {
            rd_kafka_topic_destroy(k->rkt);
        }
        rd_kafka_destroy(k->rk);
        k->rk = NULL;
    }
    if (k->mu_ok) {
        pthread_mutex_destroy(&k->mu);
    }
}

const struct rts_sink_ops rts_sink_kafka = {
    .name = "kafka",
    .description = "one message per record on a topic (key = event key, headers id and model) "
                   "through an idempotent producer; acknowledged on delivery (docs/KAFKA.md)",
    .opts = kafka_sink_opts,
    .ctx_size = sizeof(struct kafka_sink),
    .async_ack = 1,
    .init = kafka_sink_init,
    .write = kafka_sink_write,
    .flush = kafka_sink_flush,
    .fini = kafka_sink_fini,
    .check = kafka_sink_check,
};
