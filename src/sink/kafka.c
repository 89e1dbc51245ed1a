/*
 * kafka.c - the `kafka` sink: each record is one message on a topic, through
 * an idempotent librdkafka producer, acknowledged when the broker has it.
 *
 * A record's message has the event key as its key, the JSON line without its
 * '\n' as its value, and (unless `headers: false`) the headers `id` (the
 * event id, when there is one) and `model` (when the record names one). Its
 * acknowledgement token is the message's opaque; the delivery report calls
 * env->ack exactly once per accepted record with a non-zero token: ok after
 * the broker acknowledged it (acks=all with idempotence), not ok when
 * librdkafka gave up after its own retries (message.timeout.ms) or the record
 * was refused at once (too large) or purged at exit. Failures are logged at
 * error level and counted; the next flush() reports them.
 *
 * One producer for several sinks: the kafka sinks of a pipeline with the same
 * brokers, queue_max and `kafka:` map share one producer (struct kprod, found
 * in env->share), so a pipeline with scores, alerts and a DLQ on Kafka runs
 * one set of librdkafka threads, connections and requests instead of three.
 * Each sink has its own topic handle, whose opaque is the sink's route; a
 * delivery report goes to the sink of its message's topic. Two sinks on the
 * same topic get separate producers (a topic handle has one opaque). The
 * producer is idempotent as a whole; a fatal producer error stops every sink
 * on it. The last sink to close destroys it.
 *
 * Delivery reports are served by the producer's thread, which polls every
 * KPROD_BUSY_MS while reports come and every KPROD_IDLE_MS when none came:
 * one wake-up for a few milliseconds of reports rather than one per produce
 * response. Reports are served under the producer's `mu` only, and flush()
 * waits for the sink's own count of outstanding records rather than serving
 * reports itself, so a sink that closes detaches its route under `mu` and no
 * report can reach it after its fini (a report of a record still outstanding
 * then, after a flush that timed out, finds no sink and is dropped: that
 * record is never acknowledged, so its offset is never committed).
 *
 * write() is called by several threads at once; librdkafka's produce is
 * thread-safe, so no lock is taken here. When librdkafka's queue is full,
 * write() returns RETRY if no record of the batch was accepted yet (the
 * daemon retries the whole batch), and otherwise waits for room: a batch is
 * either not accepted at all or accepted whole (except records refused for
 * good, which are acknowledged as failed), so a retried batch never produces
 * duplicates or double acknowledgements. The wait is bounded by librdkafka's
 * message.timeout.ms, after which queued messages fail and make room.
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
#include "core/clock.h"
#include "core/log.h"
#include "sink/sink.h"

#define KSINK_FULL_WAIT_MS 50 /* queue full at the first record: wait this long, then RETRY */
#define KPROD_BUSY_MS 5       /* delivery reports are served this often while they come */
#define KPROD_IDLE_MS 20      /* ... and this often while none come */
#define KPROD_KIND "kafka producer"
#define KPROD_KEY_MAX 4096 /* a longer brokers + options key is not shared */

struct kafka_sink;

/* A topic handle's opaque: the sink its delivery reports go to. Owned by the
 * producer and freed with it, so a late report of a sink that has closed
 * finds k == NULL here, never freed memory. k changes under kprod.mu. */
struct kroute {
    struct kroute *next;
    struct kafka_sink *k;
    char *topic;
};

struct kprod {
    rd_kafka_t *rk;
    struct rts_sink_share *share; /* where it is registered; NULL = not shared */
    struct kroute *routes;
    int users;       /* sinks attached */
    char names[160]; /* their key paths, for messages */
    pthread_t poller;
    int poller_ok;
    atomic_int stop;
    atomic_int fatal;
    int mu_ok;
    pthread_mutex_t mu; /* held while reports are served and while routes change */
};

struct kafka_sink {
    /* options */
    const char *brokers;
    const char *topic;
    uint64_t queue_max;
    int64_t flush_timeout_us;
    int headers;
    const struct rts_conf_node *kafka;
    /* state */
    const char *path;
    void (*ack)(void *arg, uint64_t token, int ok, const char *why);
    void *ack_arg;
    struct kprod *p;
    struct kroute *route;
    rd_kafka_topic_t *rkt;
    atomic_llong outstanding;    /* records accepted and not yet reported */
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
                 "(queue.buffering.max.messages; shared by the sinks that share a producer)"),
    RTS_OPT_DURATION("flush_timeout", "30s", offsetof(struct kafka_sink, flush_timeout_us),
                     "how long a flush (at exit) waits for outstanding deliveries"),
    RTS_OPT_BOOL("headers", "true", offsetof(struct kafka_sink, headers),
                 "add the headers id and model to each message; false saves librdkafka four "
                 "allocations and the header encoding per record (the JSON value has both)"),
    RTS_OPT_NODE("kafka", offsetof(struct kafka_sink, kafka),
                 "librdkafka properties passed verbatim (security.protocol, sasl.*, ssl.*, "
                 "compression.type, linger.ms, ...); unknown keys are errors. Kafka sinks with "
                 "the same brokers, queue_max and kafka map share one producer"),
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

/* What makes two sinks' producers the same: brokers, queue_max and the
 * `kafka:` map (keys sorted). 0 if it does not fit in @cap (not shared). */
static int share_key(const struct kafka_sink *k, const char *brokers, char *buf, size_t cap)
{
    const struct rts_conf_node *m = rts_conf_is_null(k->kafka) ? NULL : k->kafka;
    size_t n = m && m->kind == RTS_CONF_MAP ? m->len : 0, at;
    size_t order[64];
    int len;

    if (n > sizeof(order) / sizeof(order[0])) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (j > 0 && strcmp(m->keys[order[j - 1]], m->keys[i]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    len = snprintf(buf, cap, "%s\n%llu\n", brokers, (unsigned long long)k->queue_max);
    if (len < 0 || (size_t)len >= cap) {
        return 0;
    }
    at = (size_t)len;
    for (size_t i = 0; i < n; i++) {
        const struct rts_conf_node *v = m->items[order[i]];
        len = snprintf(buf + at, cap - at, "%s=%s\n", m->keys[order[i]], v->str ? v->str : "");
        if (len < 0 || (size_t)len >= cap - at) {
            return 0;
        }
        at += (size_t)len;
    }
    return 1;
}

static void note_failure(struct kafka_sink *k, const char *why)
{
    atomic_fetch_add(&k->failed, 1);
    pthread_mutex_lock(&k->mu);
    snprintf(k->last_error, sizeof(k->last_error), "%s", why);
    pthread_mutex_unlock(&k->mu);
}

/* Delivery report: the producer's thread, under its mu (or the last fini,
 * once that thread has stopped). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    const struct kroute *r = m->rkt ? rd_kafka_topic_opaque(m->rkt) : NULL;
    struct kafka_sink *k = r ? r->k : NULL;
    uint64_t token = (uint64_t)(uintptr_t)m->_private;

    (void)rk;
    (void)opaque;
    if (!k) {
        return; /* its sink has closed: the record is never acknowledged */
    }
    if (m->err) {
        const char *why = rd_kafka_err2str(m->err);
        note_failure(k, why);
        rts_log(RTS_LOG_ERROR, "kafka delivery failed", "sink=%s topic=%s error=\"%s\"", k->path,
                k->topic, why);
    }
    if (token && k->ack) {
        k->ack(k->ack_arg, token, m->err == 0, m->err ? rd_kafka_err2str(m->err) : NULL);
    }
    atomic_fetch_sub_explicit(&k->outstanding, 1, memory_order_release);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kprod *p = opaque;

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[160];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof(why));
        atomic_store(&p->fatal, 1);
        rts_log(RTS_LOG_ERROR, "kafka producer failed",
                "sinks=%s error=\"fatal producer error %s: %s\"", p->names, rd_kafka_err2name(orig),
                why);
        return;
    }
    rts_log(RTS_LOG_WARN, "kafka producer error", "sinks=%s error=%s reason=\"%s\"", p->names,
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void *poller_main(void *arg)
{
    struct kprod *p = arg;

    prctl(PR_SET_NAME, "rts-kdelivery", 0, 0, 0);
    while (!atomic_load(&p->stop)) {
        int n;
        pthread_mutex_lock(&p->mu);
        n = rd_kafka_poll(p->rk, 0);
        pthread_mutex_unlock(&p->mu);
        sleep_ms(n > 0 ? KPROD_BUSY_MS : KPROD_IDLE_MS);
    }
    return NULL;
}

/* Stop the thread, fail what is left (a report each, to the sinks still
 * attached), destroy. @rkt: the last sink's topic handle, destroyed once its
 * reports are in. Single-threaded from here on. */
static void kprod_free(struct kprod *p, rd_kafka_topic_t *rkt)
{
    if (p->poller_ok) {
        atomic_store(&p->stop, 1);
        pthread_join(p->poller, NULL);
    }
    rts_sink_share_remove(p->share, p);
    if (p->rk) {
        /* what flush did not deliver fails now, with a report each */
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        for (int i = 0; i < 50 && rd_kafka_outq_len(p->rk) > 0; i++) {
            rd_kafka_poll(p->rk, 100);
        }
        if (rkt) {
            rd_kafka_topic_destroy(rkt);
        }
        rd_kafka_destroy(p->rk);
    }
    while (p->routes) {
        struct kroute *r = p->routes;
        p->routes = r->next;
        free(r->topic);
        free(r);
    }
    if (p->mu_ok) {
        pthread_mutex_destroy(&p->mu);
    }
    free(p);
}

/* A new producer for @k (its delivery thread running); registered in
 * @share under @key unless either is NULL. NULL with @eb filled. */
static struct kprod *kprod_new(struct kafka_sink *k, const char *brokers,
                               struct rts_sink_share *share, const char *key, struct rts_errbuf *eb)
{
    struct kprod *p = calloc(1, sizeof(*p));
    rd_kafka_conf_t *conf;
    char errstr[256];

    if (!p) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: out of memory", k->path);
        return NULL;
    }
    atomic_init(&p->stop, 0);
    atomic_init(&p->fatal, 0);
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: cannot create a mutex", k->path);
        goto fail;
    }
    p->mu_ok = 1;
    conf = build_conf(k, k->path, brokers, eb);
    if (!conf) {
        goto fail;
    }
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, rts_rdkafka_log);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!p->rk) {
        rd_kafka_conf_destroy(conf);
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s: cannot create the Kafka producer: %s", k->path,
                 errstr);
        goto fail;
    }
    if (pthread_create(&p->poller, NULL, poller_main, p) != 0) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: cannot start the delivery thread", k->path);
        goto fail;
    }
    p->poller_ok = 1;
    if (share && key) {
        if (rts_sink_share_add(share, KPROD_KIND, key, p, eb)) {
            goto fail;
        }
        p->share = share;
    }
    return p;
fail:
    kprod_free(p, NULL);
    return NULL;
}

/* The route of @topic, if a sink of @p has produced to it. */
static struct kroute *route_find(const struct kprod *p, const char *topic)
{
    for (struct kroute *r = p->routes; r; r = r->next) {
        if (strcmp(r->topic, topic) == 0) {
            return r;
        }
    }
    return NULL;
}

/* Attach @k to @p: its route and topic handle. On failure @k is not
 * attached (a route made for it stays with @p, unused). */
static enum rts_err kprod_attach(struct kprod *p, struct kafka_sink *k, struct rts_errbuf *eb)
{
    struct kroute *r = route_find(p, k->topic);
    rd_kafka_topic_conf_t *tconf;
    rd_kafka_topic_t *rkt;
    size_t nl = strlen(p->names);

    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r || !(r->topic = strdup(k->topic))) {
            free(r);
            return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: out of memory", k->path);
        }
        r->next = p->routes;
        p->routes = r;
    }
    /* the producer's topic defaults (message.timeout.ms, compression.type,
     * ... from the kafka map), with the route as the handle's opaque; a
     * topic seen before keeps its first handle and opaque: this route */
    tconf = rd_kafka_default_topic_conf_dup(p->rk);
    if (!tconf) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: out of memory", k->path);
    }
    rd_kafka_topic_conf_set_opaque(tconf, r);
    rkt = rd_kafka_topic_new(p->rk, k->topic, tconf);
    if (!rkt) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s.topic: '%s': %s", k->path, k->topic,
                        rd_kafka_err2str(rd_kafka_last_error()));
    }
    pthread_mutex_lock(&p->mu);
    r->k = k;
    pthread_mutex_unlock(&p->mu);
    k->rkt = rkt;
    k->route = r;
    k->p = p;
    p->users++;
    snprintf(p->names + nl, sizeof(p->names) - nl, "%s%s", nl ? "," : "", k->path);
    return RTS_ERR_OK;
}

/* Detach @k from @p; the last sink frees the producer, its own reports
 * served until the producer is gone. */
static void kprod_detach(struct kprod *p, struct kafka_sink *k)
{
    if (p->users > 1) {
        pthread_mutex_lock(&p->mu);
        k->route->k = NULL; /* no report reaches @k after this */
        pthread_mutex_unlock(&p->mu);
        rd_kafka_topic_destroy(k->rkt);
        p->users--;
        return;
    }
    kprod_free(p, k->rkt);
}

static enum rts_err kafka_sink_init(void *ctx, const struct rts_sink_env *env,
                                    struct rts_errbuf *eb)
{
    struct kafka_sink *k = ctx;
    const char *brokers = k->brokers ? k->brokers : env->brokers;
    struct kprod *p = NULL;
    char *key = NULL;
    rd_kafka_conf_t *conf;
    enum rts_err rc;

    k->path = env->path ? env->path : "sink";
    k->ack = env->ack;
    k->ack_arg = env->ack_arg;
    atomic_init(&k->outstanding, 0);
    atomic_init(&k->failed, 0);
    if (!brokers) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                        "%s.brokers: required (the source is not kafka, so there is no default)",
                        k->path);
    }
    if (pthread_mutex_init(&k->mu, NULL) != 0) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: cannot create a mutex", k->path);
    }
    k->mu_ok = 1;
    conf = build_conf(k, k->path, brokers, eb); /* the options are checked for every sink */
    if (!conf) {
        return RTS_ERR_INVAL;
    }
    rd_kafka_conf_destroy(conf);
    if (env->share && (key = malloc(KPROD_KEY_MAX)) && !share_key(k, brokers, key, KPROD_KEY_MAX)) {
        free(key);
        key = NULL; /* too long to compare: not shared */
    }
    if (key) {
        struct kprod *found = rts_sink_share_find(env->share, KPROD_KIND, key);
        const struct kroute *r = found ? route_find(found, k->topic) : NULL;
        if (found && !(r && r->k)) {
            p = found;
        } else if (found) {
            free(key);
            key = NULL; /* a sink of that producer writes to this topic: one of its own */
        }
    }
    if (!p) {
        p = kprod_new(k, brokers, env->share, key, eb);
    }
    free(key);
    if (!p) {
        return eb && eb->code ? eb->code : RTS_ERR_INVAL;
    }
    rc = kprod_attach(p, k, eb);
    if (rc && p->users == 0) {
        kprod_free(p, NULL);
    }
    return rc;
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

    if (k->headers && (r->id.p || r->model.n)) {
        /* librdkafka's API allocates the list, its array and each header
         * (freed with the message after delivery): the one per-record
         * allocation rtscore asks for besides the message itself */
        h = rd_kafka_headers_new(2);
        if (r->id.p) {
            rd_kafka_header_add(h, "id", 2, r->id.p, (ssize_t)r->id.n);
        }
        if (r->model.n) {
            rd_kafka_header_add(h, "model", 5, r->model.p, (ssize_t)r->model.n);
        }
        err = rd_kafka_producev(
            k->p->rk, RD_KAFKA_V_RKT(k->rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_KEY(key, key ? r->key.n : 0),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (err) {
            rd_kafka_headers_destroy(h); /* the message owns them only when accepted */
        }
        return err;
    }
    return rd_kafka_producev(
        k->p->rk, RD_KAFKA_V_RKT(k->rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_KEY(key, key ? r->key.n : 0),
        RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
}

static enum rts_sink_status fatal_status(struct kafka_sink *k, struct rts_errbuf *eb)
{
    char why[160];
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(k->p->rk, why, sizeof(why));

    rts_errf(eb, RTS_ERR_UNAVAIL, 0, 0, "kafka producer failed for good: %s: %s",
             rd_kafka_err2name(orig), why);
    return RTS_SINK_ERROR;
}

static enum rts_sink_status kafka_sink_write(void *ctx, const struct rts_batch *b,
                                             struct rts_errbuf *eb)
{
    struct kafka_sink *k = ctx;
    long long accepted = 0;
    enum rts_sink_status st = RTS_SINK_OK;

    if (atomic_load(&k->p->fatal)) {
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
            st = fatal_status(k, eb); /* records before i are reported by delivery */
            break;
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
            continue;
        }
        accepted++;
    }
    /* once per batch, not per record: a report may come first (the count
     * goes below zero for a moment); flush() runs after the writers */
    atomic_fetch_add_explicit(&k->outstanding, accepted, memory_order_relaxed);
    return st;
}

static enum rts_err kafka_sink_flush(void *ctx, struct rts_errbuf *eb)
{
    struct kafka_sink *k = ctx;
    int ms = (int)(k->flush_timeout_us / 1000);
    uint64_t end = rts_now_ns() + (uint64_t)ms * 1000000u, failed;
    long long left;

    if (!k->p) {
        return RTS_ERR_OK;
    }
    /* the producer's thread serves the reports; lingering batches go out
     * within linger.ms */
    while ((left = atomic_load_explicit(&k->outstanding, memory_order_acquire)) > 0 &&
           rts_now_ns() < end) {
        sleep_ms(1);
    }
    if (left > 0) {
        return rts_errf(eb, RTS_ERR_TIMEOUT, 0, 0,
                        "%s: %lld records not delivered to '%s' after %d ms", k->path, left,
                        k->topic, ms);
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

    if (k->p) {
        kprod_detach(k->p, k);
        k->p = NULL;
    }
    if (k->mu_ok) {
        pthread_mutex_destroy(&k->mu);
    }
}

const struct rts_sink_ops rts_sink_kafka = {
    .name = "kafka",
    .description = "one message per record on a topic (key = event key, headers id and model) "
                   "through an idempotent producer, shared by the kafka sinks with the same "
                   "brokers and options; acknowledged on delivery (docs/KAFKA.md)",
    .opts = kafka_sink_opts,
    .ctx_size = sizeof(struct kafka_sink),
    .async_ack = 1,
    .init = kafka_sink_init,
    .write = kafka_sink_write,
    .flush = kafka_sink_flush,
    .fini = kafka_sink_fini,
    .check = kafka_sink_check,
};
