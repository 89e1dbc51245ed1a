/*
 * kafka.c - the `kafka` source: a librdkafka consumer group member whose
 * offsets are committed only behind acknowledged messages.
 *
 * Every delivered message is tracked in source/offsets (one slot per assigned
 * partition) and carries its token; offsets are never stored or committed by
 * librdkafka on its own (enable.auto.commit and enable.auto.offset.store are
 * off). What is committed, per partition, is the position after the longest
 * prefix of delivered messages whose holds are all released: periodically
 * from poll(), synchronously on revoke (then the partition is forgotten and
 * its tokens go stale), and once more in fini before the consumer closes.
 *
 * Backpressure: a partition with max_inflight messages in flight is paused
 * in librdkafka and resumed when half of them have finished; pause(1) pauses
 * every assigned partition. Pausing is synchronous in librdkafka and drops
 * what was fetched for the partition, so no message of a paused partition is
 * returned; poll() keeps serving the group protocol meanwhile.
 *
 * One poll() returns messages of one topic only, so label() (the topic of the
 * last poll's messages) is the label of every message of that poll; a
 * message of another topic waits in `pending` for the next poll. Messages
 * stay valid until the next poll() with max > 0, which destroys them (a
 * poll with max 0, made while the caller is still queueing the batch,
 * leaves them alone).
 *
 * Threads: poll, pause, label, fini and the librdkafka callbacks (served by
 * rd_kafka_consumer_poll and rd_kafka_consumer_close) run on the source
 * thread. hold and release are the tracker's, lock-free. lag() may run on any
 * thread: it takes `mu`, which the source thread holds only while the
 * partition table changes (rebalance).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/rdkafka.h"
#include "core/clock.h"
#include "core/log.h"
#include "source/offsets.h"
#include "source/source.h"

#define KSRC_MAX_TOPICS 1024     /* distinct topic names remembered (for labels and lag) */
#define KSRC_SUB_MAX 64          /* topics (or patterns) in `topic` */
#define KSRC_COMMIT_WAIT_MS 5000 /* a commit on revoke or at exit waits this long at most */
#define KSRC_CLOSE_WAIT_MS 10000 /* leaving the group at exit waits this long at most */

struct kpart {
    int used;
    const char *topic; /* interned, lives until fini */
    int32_t partition;
    int slot;             /* in the offsets tracker */
    int paused;           /* as last set in librdkafka */
    int full;             /* paused because max_inflight messages are in flight */
    int rewound;          /* dropping messages fetched again (drop_refetched) */
    int64_t committed;    /* last position committed (or being committed); -1 none */
    _Atomic int64_t next; /* offset after the last delivered message; -1 none */
};

struct ktopic {
    char *name;
    int *part;     /* partition number -> index in parts, -1 none */
    int32_t npart; /* entries of part */
};

struct kafka_src {
    /* options */
    const char *brokers;
    const char *topic;
    const char *group;
    const char *start;
    int64_t commit_interval_us;
    uint64_t max_inflight;
    uint64_t max_partitions;
    const struct rts_conf_node *kafka;
    /* state */
    rd_kafka_t *rk;
    struct rts_offsets *offs;
    size_t max_bytes;
    int mu_ok;
    pthread_mutex_t mu; /* parts[] and topics[] while lag() reads them */
    struct kpart *parts;
    size_t nparts; /* entries of parts (max_partitions) */
    struct ktopic *topics;
    size_t ntopics;
    struct ktopic *last; /* topic of the previous message: most lookups hit it */
    size_t nfull;        /* partitions paused because full */
    int paused_all;
    rd_kafka_message_t **kept; /* the messages of the last poll */
    size_t nkept, kept_cap;
    rd_kafka_message_t *pending; /* fetched, to be delivered by the next poll */
    const char *label;
    uint64_t refetched; /* messages dropped by drop_refetched */
    uint64_t next_commit_ns;
    char fatal[200]; /* set once: poll returns RTS_SRC_ERROR */
};

static const struct rts_opt kafka_src_opts[] = {
    RTS_OPT_STR_REQ("brokers", offsetof(struct kafka_src, brokers),
                    "bootstrap brokers, host:port[,host:port...]"),
    RTS_OPT_STR_REQ("topic", offsetof(struct kafka_src, topic),
                    "topic to consume; a comma-separated list for several; ^regex for a "
                    "pattern"),
    RTS_OPT_STR_REQ("group", offsetof(struct kafka_src, group),
                    "consumer group id: offsets are committed for it, partitions shared in it"),
    RTS_OPT_STR("start", NULL, offsetof(struct kafka_src, start),
                "earliest or latest: where a group without a committed offset starts "
                "(auto.offset.reset; librdkafka's default is latest)"),
    RTS_OPT_DURATION("commit_interval", "1s", offsetof(struct kafka_src, commit_interval_us),
                     "how often acknowledged offsets are committed (also on revoke and at "
                     "exit); 0 = on every poll"),
    RTS_OPT_SIZE("max_inflight", "10000", offsetof(struct kafka_src, max_inflight),
                 "messages per partition delivered and not yet acknowledged; at the limit the "
                 "partition is paused until half of them are (memory: 16 bytes each)"),
    RTS_OPT_SIZE("max_partitions", "1024", offsetof(struct kafka_src, max_partitions),
                 "partitions this instance may be assigned at once; more is an error"),
    RTS_OPT_NODE("kafka", offsetof(struct kafka_src, kafka),
                 "librdkafka properties passed verbatim (security.protocol, sasl.*, ssl.*, "
                 "fetch.max.bytes, session.timeout.ms, ...); unknown keys are errors"),
    RTS_OPT_END,
};

/* pass-through keys that rtscore owns */
static const struct rts_rdkafka_managed managed_keys[] = {
    {"bootstrap.servers", "source.brokers"},
    {"metadata.broker.list", "source.brokers"},
    {"group.id", "source.group"},
    {"enable.auto.commit", "source.commit_interval (offsets follow acknowledgements)"},
    {"enable.auto.offset.store", "source.commit_interval (offsets follow acknowledgements)"},
    {NULL, NULL},
};

/* ---- options ---- */

/* Split the `topic` option into @subs (names or ^patterns, trimmed). */
static enum rts_err split_topics(const char *spec, const char *path,
                                 rd_kafka_topic_partition_list_t **out, struct rts_errbuf *eb)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    const char *p = spec;

    for (;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char name[256];

        while (n > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) {
            n--;
        }
        if (n == 0 || n >= sizeof(name) || l->cnt >= KSRC_SUB_MAX) {
            rd_kafka_topic_partition_list_destroy(l);
            return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                            "%s.topic: expected topic names separated by commas (at most %d, "
                            "each 1..255 bytes), got '%s'",
                            path, KSRC_SUB_MAX, spec);
        }
        memcpy(name, p, n);
        name[n] = '\0';
        rd_kafka_topic_partition_list_add(l, name, RD_KAFKA_PARTITION_UA);
        if (!e) {
            break;
        }
        p = e + 1;
    }
    *out = l;
    return RTS_ERR_OK;
}

/* The consumer's configuration from the options; NULL with @eb filled. */
static rd_kafka_conf_t *build_conf(struct kafka_src *k, const char *path, struct rts_errbuf *eb)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char what[64], kpath[64];

    snprintf(kpath, sizeof(kpath), "%s.kafka", path);
    if (k->start && strcmp(k->start, "earliest") != 0 && strcmp(k->start, "latest") != 0) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s.start: expected earliest or latest, got '%s'", path,
                 k->start);
        goto fail;
    }
    if (k->start && rts_conf_get(k->kafka, "auto.offset.reset")) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                 "%s.start and %s.kafka.auto.offset.reset are both set; keep one", path, path);
        goto fail;
    }
    if (k->max_inflight < 1 || k->max_inflight > RTS_OFFSETS_MAX_INFLIGHT) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s.max_inflight: expected 1..%u, got %llu", path,
                 RTS_OFFSETS_MAX_INFLIGHT, (unsigned long long)k->max_inflight);
        goto fail;
    }
    if (k->max_partitions < 1 || k->max_partitions > RTS_OFFSETS_MAX_SLOTS) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s.max_partitions: expected 1..%u, got %llu", path,
                 RTS_OFFSETS_MAX_SLOTS, (unsigned long long)k->max_partitions);
        goto fail;
    }
    if (k->commit_interval_us < 0) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s.commit_interval: must not be negative", path);
        goto fail;
    }
    snprintf(what, sizeof(what), "%s.brokers", path);
    if (rts_rdkafka_set(conf, "bootstrap.servers", k->brokers, what, eb)) {
        goto fail;
    }
    snprintf(what, sizeof(what), "%s.group", path);
    if (rts_rdkafka_set(conf, "group.id", k->group, what, eb)) {
        goto fail;
    }
    snprintf(what, sizeof(what), "%s.start", path);
    if (rts_rdkafka_set(conf, "client.id", "rtscore", path, eb) ||
        rts_rdkafka_set(conf, "enable.auto.commit", "false", path, eb) ||
        rts_rdkafka_set(conf, "enable.auto.offset.store", "false", path, eb) ||
        (k->start && rts_rdkafka_set(conf, "auto.offset.reset", k->start, what, eb)) ||
        rts_rdkafka_apply(conf, k->kafka, kpath, managed_keys, eb)) {
        goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static enum rts_err kafka_src_check(void *ctx, const char *path, struct rts_errbuf *eb)
{
    struct kafka_src *k = ctx;
    rd_kafka_topic_partition_list_t *subs = NULL;
    rd_kafka_conf_t *conf;

    if (split_topics(k->topic, path, &subs, eb)) {
        return RTS_ERR_INVAL;
    }
    rd_kafka_topic_partition_list_destroy(subs);
    conf = build_conf(k, path, eb);
    if (!conf) {
        return RTS_ERR_INVAL;
    }
    rd_kafka_conf_destroy(conf);
    return RTS_ERR_OK;
}

/* ---- the partition table ---- */

static void set_fatal(struct kafka_src *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The first failure wins: poll() reports it. */
static void set_fatal(struct kafka_src *k, const char *fmt, ...)
{
    va_list ap;

    if (k->fatal[0]) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(k->fatal, sizeof(k->fatal), fmt, ap);
    va_end(ap);
    rts_log(RTS_LOG_ERROR, "kafka source failed", "error=\"%s\"", k->fatal);
}

static struct ktopic *topic_find(struct kafka_src *k, const char *name)
{
    if (k->last && strcmp(k->last->name, name) == 0) {
        return k->last;
    }
    for (size_t i = 0; i < k->ntopics; i++) {
        if (strcmp(k->topics[i].name, name) == 0) {
            k->last = &k->topics[i];
            return k->last;
        }
    }
    return NULL;
}

static struct kpart *part_find(struct kafka_src *k, const char *topic, int32_t partition)
{
    struct ktopic *t = topic_find(k, topic);

    if (!t || partition < 0 || partition >= t->npart || t->part[partition] < 0) {
        return NULL;
    }
    return &k->parts[t->part[partition]];
}

/* Add a newly assigned partition. Under mu. -1 on failure (fatal set). */
static int part_add(struct kafka_src *k, const char *topic, int32_t partition)
{
    struct rts_errbuf eb = {0};
    struct ktopic *t = topic_find(k, topic);
    struct kpart *p = NULL;
    size_t idx;

    if (part_find(k, topic, partition)) {
        return 0; /* already ours (a cooperative rebalance repeating itself) */
    }
    if (!t) {
        if (k->ntopics == KSRC_MAX_TOPICS) {
            set_fatal(k, "kafka source: more than %d distinct topics assigned", KSRC_MAX_TOPICS);
            return -1;
        }
        t = &k->topics[k->ntopics];
        memset(t, 0, sizeof(*t));
        t->name = strdup(topic);
        if (!t->name) {
            goto nomem;
        }
        k->ntopics++;
    }
    if (partition < 0) {
        return 0;
    }
    if (partition >= t->npart) {
        int32_t n = partition + 1 > 2 * t->npart ? partition + 1 : 2 * t->npart;
        int *a = realloc(t->part, (size_t)n * sizeof(*a));
        if (!a) {
            goto nomem;
        }
        for (int32_t i = t->npart; i < n; i++) {
            a[i] = -1;
        }
        t->part = a;
        t->npart = n;
    }
    for (idx = 0; idx < k->nparts && k->parts[idx].used; idx++) {
    }
    if (idx == k->nparts) {
        set_fatal(k,
                  "kafka source: more than %zu partitions assigned; raise "
                  "source.max_partitions",
                  k->nparts);
        return -1;
    }
    p = &k->parts[idx];
    p->slot = rts_offsets_assign(k->offs, &eb);
    if (p->slot < 0) {
        set_fatal(k, "kafka source: %s", eb.msg);
        return -1;
    }
    p->used = 1;
    p->topic = t->name;
    p->partition = partition;
    p->paused = 0;
    p->full = 0;
    p->rewound = 0;
    p->committed = -1;
    atomic_store_explicit(&p->next, -1, memory_order_relaxed);
    t->part[partition] = (int)idx;
    return 0;
nomem:
    set_fatal(k, "kafka source: out of memory for the partition table");
    return -1;
}

/* Forget a partition: its tokens go stale. Under mu. A paused partition is
 * resumed as it leaves: librdkafka keeps a pause across unassign and assign,
 * and a resume of a partition it has not paused makes librdkafka 2.0 fetch
 * again from where the partition was last paused (a rewind: messages
 * delivered twice). So partitions come back unpaused, and only what was
 * paused is ever resumed. */
static void part_remove(struct kafka_src *k, struct kpart *p)
{
    struct ktopic *t = topic_find(k, p->topic);

    if (p->paused) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);

        rd_kafka_topic_partition_list_add(l, p->topic, p->partition);
        rd_kafka_resume_partitions(k->rk, l);
        rd_kafka_topic_partition_list_destroy(l);
    }
    if (p->full) {
        k->nfull--;
    }
    rts_offsets_revoke(k->offs, p->slot);
    if (t) {
        t->part[p->partition] = -1;
    }
    if (k->pending && strcmp(rd_kafka_topic_name(k->pending->rkt), p->topic) == 0 &&
        k->pending->partition == p->partition) {
        rd_kafka_message_destroy(k->pending); /* the next owner reads it */
        k->pending = NULL;
    }
    p->used = 0;
}

/* ---- pause and resume ---- */

/* Make librdkafka's pause state of every partition match what we want. */
static void apply_pause(struct kafka_src *k)
{
    rd_kafka_topic_partition_list_t *stop = NULL, *go = NULL;

    for (size_t i = 0; i < k->nparts; i++) {
        struct kpart *p = &k->parts[i];
        int want = k->paused_all || p->full;
        rd_kafka_topic_partition_list_t **l = want ? &stop : &go;

        if (!p->used || p->paused == want) {
            continue;
        }
        if (!*l) {
            *l = rd_kafka_topic_partition_list_new(8);
        }
        rd_kafka_topic_partition_list_add(*l, p->topic, p->partition);
        p->paused = want;
    }
    if (stop) {
        rd_kafka_pause_partitions(k->rk, stop);
        rd_kafka_topic_partition_list_destroy(stop);
    }
    if (go) {
        rd_kafka_resume_partitions(k->rk, go);
        rd_kafka_topic_partition_list_destroy(go);
    }
}

/* Resume partitions paused as full once half their messages have finished. */
static void resume_drained(struct kafka_src *k)
{
    int changed = 0;

    if (k->nfull == 0) {
        return;
    }
    for (size_t i = 0; i < k->nparts; i++) {
        struct kpart *p = &k->parts[i];
        if (p->used && p->full && rts_offsets_inflight(k->offs, p->slot) <= k->max_inflight / 2) {
            p->full = 0;
            k->nfull--;
            changed = 1;
        }
    }
    if (changed) {
        apply_pause(k);
    }
}

/* ---- commits ---- */

/* The result of a commit that fini or a revoke waits for. */
struct commit_wait {
    struct kafka_src *k;
    int done;
};

static void on_commit_waited(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    struct commit_wait *w = opaque;

    (void)rk;
    w->done = 1;
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        rd_kafka_topic_partition_t *e = &offsets->elems[i];
        struct kpart *p = part_find(w->k, e->topic, e->partition);

        if (err || e->err) {
            rts_log(RTS_LOG_WARN, "kafka commit failed", "topic=%s partition=%d error=\"%s\"",
                    e->topic, (int)e->partition, rd_kafka_err2str(e->err ? e->err : err));
        } else if (p) {
            p->committed = e->offset;
        }
    }
}

/* Commit the committable position of the partitions in @only (all when NULL)
 * that moved since their last commit. Asynchronously (the result comes to
 * on_commit through poll), or waiting at most KSRC_COMMIT_WAIT_MS: a commit
 * cannot complete without the group coordinator, and neither a revoke nor
 * the exit may hang on a cluster that is gone. */
static void commit(struct kafka_src *k, const rd_kafka_topic_partition_list_t *only, int async,
                   const char *why)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    struct commit_wait w = {k, 0};
    rd_kafka_queue_t *q = NULL;
    rd_kafka_resp_err_t err;
    uint64_t end;

    for (size_t i = 0; i < k->nparts; i++) {
        struct kpart *p = &k->parts[i];
        int64_t pos;

        if (!p->used ||
            (only && !rd_kafka_topic_partition_list_find(only, p->topic, p->partition))) {
            continue;
        }
        pos = rts_offsets_committable(k->offs, p->slot);
        if (pos >= 0 && pos > p->committed) {
            rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = pos;
        }
    }
    if (l->cnt == 0) {
        goto out;
    }
    if (async) {
        err = rd_kafka_commit(k->rk, l, 1);
        for (int i = 0; !err && i < l->cnt; i++) {
            struct kpart *p = part_find(k, l->elems[i].topic, l->elems[i].partition);
            if (p) {
                p->committed = l->elems[i].offset; /* on_commit resets it on failure */
            }
        }
    } else {
        q = rd_kafka_queue_new(k->rk);
        err = rd_kafka_commit_queue(k->rk, l, q, on_commit_waited, &w);
        end = rts_now_ns() + (uint64_t)KSRC_COMMIT_WAIT_MS * 1000000u;
        while (!err && !w.done && rts_now_ns() < end) {
            rd_kafka_queue_poll_callback(q, 100);
        }
        if (!err && !w.done) {
            rts_log(RTS_LOG_WARN, "kafka commit not confirmed", "when=%s wait_ms=%d", why,
                    KSRC_COMMIT_WAIT_MS);
        }
    }
    if (err) {
        rts_log(RTS_LOG_WARN, "kafka commit failed", "when=%s error=\"%s\"", why,
                rd_kafka_err2str(err));
    }
out:
    if (q) {
        rd_kafka_queue_destroy(q); /* a late result is dropped with it */
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* ---- librdkafka callbacks (source thread) ---- */

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    struct kafka_src *k = opaque;

    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
        return;
    }
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        rd_kafka_topic_partition_t *e = &offsets->elems[i];
        if (e->err || err) {
            struct kpart *p = part_find(k, e->topic, e->partition);
            if (p) {
                p->committed = -1; /* commit again next time */
            }
            rts_log(RTS_LOG_WARN, "kafka commit failed", "topic=%s partition=%d error=\"%s\"",
                    e->topic, (int)e->partition, rd_kafka_err2str(e->err ? e->err : err));
        }
    }
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct kafka_src *k = opaque;
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        pthread_mutex_lock(&k->mu);
        for (int i = 0; i < parts->cnt; i++) {
            part_add(k, parts->elems[i].topic, parts->elems[i].partition);
        }
        pthread_mutex_unlock(&k->mu);
        if (coop) {
            error = rd_kafka_incremental_assign(rk, parts);
        } else {
            rd_kafka_assign(rk, parts);
        }
        apply_pause(k); /* new partitions are unpaused (part_remove) */
        rts_log(RTS_LOG_INFO, "kafka partitions assigned", "count=%d group=%s", parts->cnt,
                k->group);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        if (!rd_kafka_assignment_lost(rk)) {
            commit(k, parts, 0, "revoke");
        }
        pthread_mutex_lock(&k->mu);
        for (int i = 0; i < parts->cnt; i++) {
            struct kpart *p = part_find(k, parts->elems[i].topic, parts->elems[i].partition);
            if (p) {
                part_remove(k, p);
            }
        }
        pthread_mutex_unlock(&k->mu);
        if (coop) {
            error = rd_kafka_incremental_unassign(rk, parts);
        } else {
            rd_kafka_assign(rk, NULL);
        }
        rts_log(RTS_LOG_INFO, "kafka partitions revoked", "count=%d group=%s lost=%d", parts->cnt,
                k->group, rd_kafka_assignment_lost(rk));
    } else {
        rts_log(RTS_LOG_ERROR, "kafka rebalance failed", "group=%s error=\"%s\"", k->group,
                rd_kafka_err2str(err));
        pthread_mutex_lock(&k->mu);
        for (size_t i = 0; i < k->nparts; i++) {
            if (k->parts[i].used) {
                part_remove(k, &k->parts[i]);
            }
        }
        pthread_mutex_unlock(&k->mu);
        rd_kafka_assign(rk, NULL);
    }
    if (error) {
        rts_log(RTS_LOG_ERROR, "kafka incremental rebalance failed", "error=\"%s\"",
                rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka_src *k = opaque;

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[160];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof(why));
        set_fatal(k, "kafka source: fatal consumer error %s: %s", rd_kafka_err2name(orig), why);
        return;
    }
    /* transport errors, brokers down, ...: librdkafka retries on its own */
    rts_log(RTS_LOG_WARN, "kafka consumer error", "error=%s reason=\"%s\"",
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* ---- ops ---- */

static enum rts_err kafka_src_init(void *ctx, const struct rts_source_env *env,
                                   struct rts_errbuf *eb)
{
    struct kafka_src *k = ctx;
    rd_kafka_topic_partition_list_t *subs = NULL;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_resp_err_t err;
    char errstr[256];
    enum rts_err rc = RTS_ERR_INVAL;

    k->max_bytes = env->max_event_bytes ? env->max_event_bytes : SIZE_MAX;
    if (split_topics(k->topic, "source", &subs, eb) || !(conf = build_conf(k, "source", eb))) {
        goto out;
    }
    rc = RTS_ERR_NOMEM;
    if (pthread_mutex_init(&k->mu, NULL) != 0) {
        rts_errf(eb, rc, 0, 0, "source: cannot create a mutex");
        goto out;
    }
    k->mu_ok = 1;
    k->nparts = (size_t)k->max_partitions;
    k->parts = calloc(k->nparts, sizeof(*k->parts));
    k->topics = calloc(KSRC_MAX_TOPICS, sizeof(*k->topics));
    if (!k->parts || !k->topics) {
        rts_errf(eb, rc, 0, 0, "source: out of memory");
        goto out;
    }
    k->offs = rts_offsets_new((uint32_t)k->max_partitions, (uint32_t)k->max_inflight, eb);
    if (!k->offs) {
        rc = eb ? eb->code : RTS_ERR_NOMEM;
        goto out;
    }
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, rts_rdkafka_log);
    k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!k->rk) {
        rc = rts_errf(eb, RTS_ERR_INVAL, 0, 0, "source: cannot create the Kafka consumer: %s",
                      errstr);
        goto out;
    }
    conf = NULL; /* owned by rk */
    rd_kafka_poll_set_consumer(k->rk);
    err = rd_kafka_subscribe(k->rk, subs);
    if (err) {
        rc = rts_errf(eb, RTS_ERR_INVAL, 0, 0, "source.topic: cannot subscribe to '%s': %s",
                      k->topic, rd_kafka_err2str(err));
        goto out;
    }
    k->next_commit_ns = rts_now_ns() + (uint64_t)k->commit_interval_us * 1000;
    rts_log(RTS_LOG_INFO, "kafka source subscribed", "topic=%s group=%s brokers=%s", k->topic,
            k->group, k->brokers);
    rc = RTS_ERR_OK;
out:
    if (conf) {
        rd_kafka_conf_destroy(conf);
    }
    if (subs) {
        rd_kafka_topic_partition_list_destroy(subs);
    }
    return rc;
}

static void release_kept(struct kafka_src *k)
{
    for (size_t i = 0; i < k->nkept; i++) {
        rd_kafka_message_destroy(k->kept[i]);
    }
    k->nkept = 0;
}

/* A message that carries a consumer error: logged, or fatal for the source. */
static void message_error(struct kafka_src *k, const rd_kafka_message_t *m)
{
    const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "";

    switch (m->err) {
    case RD_KAFKA_RESP_ERR__PARTITION_EOF:
        break; /* not an error */
    case RD_KAFKA_RESP_ERR__FATAL:
        on_error(k->rk, RD_KAFKA_RESP_ERR__FATAL, "", k);
        break;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
        set_fatal(k, "kafka source: not authorized (topic '%s'): %s", topic,
                  rd_kafka_message_errstr(m));
        break;
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        rts_log(RTS_LOG_WARN, "kafka topic not available", "topic=%s error=\"%s\"", topic,
                rd_kafka_message_errstr(m));
        break;
    default:
        rts_log(RTS_LOG_WARN, "kafka consumer error", "topic=%s partition=%d error=\"%s\"", topic,
                (int)m->partition, rd_kafka_message_errstr(m));
        break;
    }
}

/* A message that cannot be delivered now: keep it for the next poll, or make
 * librdkafka fetch it again (its partition resumes from there). */
static void put_back(struct kafka_src *k, rd_kafka_message_t *m)
{
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_error_t *error;

    if (!k->pending) {
        k->pending = m;
        return;
    }
    l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt), m->partition)->offset =
        m->offset;
    error = rd_kafka_seek_partitions(k->rk, l, 0);
    if (error) {
        set_fatal(k, "kafka source: cannot seek back to an undelivered message: %s",
                  rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_message_destroy(m);
}

/* A message this assignment has delivered already, fetched again because
 * librdkafka restarted a fetch behind the position (2.0 does after a resume
 * of a partition it had not paused): it is tracked already, so it is
 * dropped, and the rewind logged once. */
static void drop_refetched(struct kafka_src *k, struct kpart *p, rd_kafka_message_t *m)
{
    if (!p->rewound) {
        p->rewound = 1;
        rts_log(RTS_LOG_WARN, "kafka fetch went back; dropping what was delivered before",
                "topic=%s partition=%d offset=%lld next=%lld", p->topic, (int)p->partition,
                (long long)m->offset,
                (long long)atomic_load_explicit(&p->next, memory_order_relaxed));
    }
    k->refetched++;
    rd_kafka_message_destroy(m);
}

/* 1 if the pending message may be delivered now. */
static int pending_ready(struct kafka_src *k)
{
    const struct kpart *p;

    if (!k->pending || k->paused_all) {
        return 0;
    }
    p = part_find(k, rd_kafka_topic_name(k->pending->rkt), k->pending->partition);
    return p && !p->paused;
}

/* Mark @p full and pause it. */
static void set_full(struct kafka_src *k, struct kpart *p)
{
    if (!p->full) {
        p->full = 1;
        k->nfull++;
        apply_pause(k);
    }
}

static enum rts_src_status kafka_src_poll(void *ctx, struct rts_msg *msgs, size_t max, size_t *n,
                                          int timeout_ms, struct rts_errbuf *eb)
{
    struct kafka_src *k = ctx;
    uint64_t now = rts_now_ns(),
             deadline = now + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
    const char *batch_topic = NULL;

    *n = 0;
    if (max > 0) {
        release_kept(k); /* a poll with max 0 serves the group: the batch stays valid */
    }
    if (max > k->kept_cap) {
        rd_kafka_message_t **a = realloc(k->kept, max * sizeof(*a));
        if (!a) {
            rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "source: out of memory");
            return RTS_SRC_ERROR;
        }
        k->kept = a;
        k->kept_cap = max;
    }
    resume_drained(k);
    if (now >= k->next_commit_ns) {
        commit(k, NULL, 1, "interval");
        k->next_commit_ns = now + (uint64_t)k->commit_interval_us * 1000;
    }
    while (!k->fatal[0]) {
        rd_kafka_message_t *m = NULL;
        struct kpart *p;
        const char *topic;
        uint64_t token;

        if (*n >= max && max > 0) {
            break;
        }
        if (*n == 0 && pending_ready(k)) {
            m = k->pending;
            k->pending = NULL;
        } else {
            /* the clock only while nothing is in hand: with a batch in hand
             * the poll does not wait (one clock read per message costs more
             * than the rest of this loop) */
            uint64_t t = *n > 0 ? 0 : rts_now_ns();
            int wait = *n > 0 || t >= deadline ? 0 : (int)((deadline - t + 999999) / 1000000);
            m = rd_kafka_consumer_poll(k->rk, wait);
            if (!m) {
                if (*n > 0 || rts_now_ns() >= deadline) {
                    break;
                }
                continue;
            }
        }
        if (m->err) {
            message_error(k, m);
            rd_kafka_message_destroy(m);
            continue;
        }
        topic = rd_kafka_topic_name(m->rkt);
        p = part_find(k, topic, m->partition);
        if (!p) {
            rd_kafka_message_destroy(m); /* of a partition revoked since it was fetched */
            continue;
        }
        if (m->offset < atomic_load_explicit(&p->next, memory_order_relaxed)) {
            drop_refetched(k, p, m);
            continue;
        }
        if (max == 0 || p->paused || (batch_topic && strcmp(batch_topic, topic) != 0)) {
            put_back(k, m); /* one topic per poll; nothing from a paused partition */
            if (max == 0 || p->paused) {
                continue;
            }
            break;
        }
        token = rts_offsets_track(k->offs, p->slot, m->offset);
        if (!token) {
            set_full(k, p); /* not expected: a full partition is paused at once */
            put_back(k, m);
            continue;
        }
        msgs[*n].data = m->payload ? (const char *)m->payload : "";
        msgs[*n].len = m->len > k->max_bytes ? k->max_bytes : m->len;
        msgs[*n].truncated = m->len > k->max_bytes;
        msgs[*n].partition = m->partition;
        msgs[*n].offset = m->offset;
        msgs[*n].token = token;
        k->kept[k->nkept++] = m;
        (*n)++;
        atomic_store_explicit(&p->next, m->offset + 1, memory_order_relaxed);
        p->rewound = 0;
        batch_topic = p->topic;
        if (rts_offsets_full(k->offs, p->slot)) {
            set_full(k, p);
        }
    }
    if (*n > 0) {
        k->label = batch_topic;
    }
    if (k->fatal[0]) {
        rts_errf(eb, RTS_ERR_UNAVAIL, 0, 0, "%s", k->fatal);
        return RTS_SRC_ERROR;
    }
    return RTS_SRC_OK;
}

static const char *kafka_src_label(void *ctx)
{
    struct kafka_src *k = ctx;

    return k->label ? k->label : k->topic;
}

static void kafka_src_hold(void *ctx, uint64_t token, unsigned n)
{
    struct kafka_src *k = ctx;

    if (k->offs && rts_offsets_hold(k->offs, token, n) == RTS_OFFSETS_INVALID) {
        rts_log(RTS_LOG_ERROR, "kafka source: hold of an invalid or finished token",
                "token=%llu n=%u", (unsigned long long)token, n);
    }
}

static void kafka_src_release(void *ctx, uint64_t token)
{
    struct kafka_src *k = ctx;

    if (k->offs && rts_offsets_release(k->offs, token) == RTS_OFFSETS_INVALID) {
        rts_log(RTS_LOG_ERROR, "kafka source: release of an invalid or finished token",
                "token=%llu", (unsigned long long)token);
    }
}

static void kafka_src_pause(void *ctx, int paused)
{
    struct kafka_src *k = ctx;

    k->paused_all = paused != 0;
    if (k->rk) {
        apply_pause(k);
    }
}

static size_t kafka_src_lag(void *ctx, struct rts_lag *out, size_t max)
{
    struct kafka_src *k = ctx;
    size_t n = 0;

    if (!k->mu_ok || !k->rk) {
        return 0;
    }
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->nparts && n < max; i++) {
        const struct kpart *p = &k->parts[i];
        int64_t lo = -1, hi = -1, pos;

        if (!p->used) {
            continue;
        }
        pos = atomic_load_explicit(&p->next, memory_order_relaxed);
        out[n].topic = p->topic;
        out[n].partition = p->partition;
        out[n].lag = -1;
        /* cached from the last fetch response: no request, no wait */
        if (pos >= 0 &&
            rd_kafka_get_watermark_offsets(k->rk, p->topic, p->partition, &lo, &hi) == 0 &&
            hi >= 0) {
            out[n].lag = hi > pos ? hi - pos : 0;
        }
        n++;
    }
    pthread_mutex_unlock(&k->mu);
    return n;
}

/* One event of the close queue: what rd_kafka_consumer_poll would have
 * handled through the callbacks. The queue also carries the messages that
 * were fetched and never delivered: they are dropped (the next owner of the
 * partition reads them from the committed offset). Serving this queue with
 * rd_kafka_queue_poll_callback instead aborts the process on the first such
 * message (librdkafka asserts that every op was handled). */
static void close_event(struct kafka_src *k, rd_kafka_event_t *ev)
{
    switch (rd_kafka_event_type(ev)) {
    case RD_KAFKA_EVENT_REBALANCE:
        on_rebalance(k->rk, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev), k);
        break;
    case RD_KAFKA_EVENT_OFFSET_COMMIT:
        on_commit(k->rk, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev), k);
        break;
    case RD_KAFKA_EVENT_ERROR:
        on_error(k->rk, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev), k);
        break;
    default:
        break; /* fetched messages (RD_KAFKA_EVENT_FETCH) and the rest */
    }
    rd_kafka_event_destroy(ev);
}

/* Leave the group (the revoke callback commits) within KSRC_CLOSE_WAIT_MS;
 * rd_kafka_consumer_close() itself would wait for the coordinator forever. */
static void close_consumer(struct kafka_src *k)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(k->rk);
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(k->rk, q);
    uint64_t end = rts_now_ns() + (uint64_t)KSRC_CLOSE_WAIT_MS * 1000000u;
    int closed;

    if (error) {
        rts_log(RTS_LOG_WARN, "kafka consumer close failed", "error=\"%s\"",
                rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    while (!error && !rd_kafka_consumer_closed(k->rk) && rts_now_ns() < end) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
        if (ev) {
            close_event(k, ev);
        }
    }
    closed = rd_kafka_consumer_closed(k->rk);
    rd_kafka_queue_destroy(q);
    if (!closed) {
        rts_log(RTS_LOG_WARN, "kafka consumer did not leave its group in time",
                "group=%s wait_ms=%d", k->group, KSRC_CLOSE_WAIT_MS);
    }
    rd_kafka_destroy_flags(k->rk, closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    k->rk = NULL;
}

static void kafka_src_fini(void *ctx)
{
    struct kafka_src *k = ctx;

    if (k->rk) {
        release_kept(k);
        if (k->pending) {
            rd_kafka_message_destroy(k->pending);
            k->pending = NULL;
        }
        commit(k, NULL, 0, "exit");
        close_consumer(k); /* the revoke callback commits again: nothing new */
    }
    if (k->refetched) {
        rts_log(RTS_LOG_WARN, "kafka messages fetched again were dropped", "count=%llu",
                (unsigned long long)k->refetched);
    }
    free(k->kept);
    rts_offsets_free(k->offs);
    for (size_t i = 0; k->topics && i < k->ntopics; i++) {
        free(k->topics[i].name);
        free(k->topics[i].part);
    }
    free(k->topics);
    free(k->parts);
    if (k->mu_ok) {
        pthread_mutex_destroy(&k->mu);
    }
}

const struct rts_source_ops rts_source_kafka = {
    .name = "kafka",
    .description = "a Kafka consumer group member; offsets are committed only behind "
                   "acknowledged outputs (docs/KAFKA.md)",
    .opts = kafka_src_opts,
    .ctx_size = sizeof(struct kafka_src),
    .init = kafka_src_init,
    .poll = kafka_src_poll,
    .label = kafka_src_label,
    .fini = kafka_src_fini,
    .hold = kafka_src_hold,
    .release = kafka_src_release,
    .pause = kafka_src_pause,
    .lag = kafka_src_lag,
    .check = kafka_src_check,
};
