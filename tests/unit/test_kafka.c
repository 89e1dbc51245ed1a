/*
 * test_kafka.c - the kafka source and sink against librdkafka's mock cluster,
 * started in this process on free loopback ports (one cluster per test).
 *
 * Source, through its ops table only (init, poll, label, hold, release,
 * pause, lag, fini): offsets are committed only behind releases and in
 * partition order when releases come out of order (read back with
 * rd_kafka_committed from a separate handle of the same group); a restarted
 * member resumes from the committed offsets, missing nothing and repeating
 * only what was not committable; a second member joining moves partitions
 * (revoke commits, old tokens go stale, the new owners start from the
 * committed offsets); a partition paused when revoked comes back unpaused;
 * pause and the per-partition max_inflight stop delivery
 * and resume it without gaps or repeats; one poll is one topic and label()
 * names it; lag() from cached watermarks. Sink: key, value and headers of
 * each record, an acknowledgement per token; a broker down in the middle of
 * production and back: every record delivered and acknowledged once; records
 * refused (too large) or timed out acknowledged as failed with a reason and
 * reported by flush. Exit with the cluster gone does not hang. Both:
 * `kafka:` pass-through errors with the key path.
 *
 * Waits are generous and polled (the first group join alone takes about 3 s
 * in the mock); nothing asserts on timing.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "conf/conf.h"
#include "core/clock.h"
#include "core/log.h"
#include "sink/sink.h"
#include "source/source.h"
#include "test.h"

#define WAIT_MS 60000 /* the longest any wait may take before it counts as a failure */

static const char *const src_ignore[] = {"type", NULL};

/* ---- the mock cluster ---- */

struct cluster {
    rd_kafka_t *rk; /* owns the cluster; also the test's producer */
    rd_kafka_mock_cluster_t *mc;
    char boot[256];
};

static int cluster_start(struct cluster *c, int brokers)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char n[8], err[256];

    memset(c, 0, sizeof(*c));
    snprintf(n, sizeof(n), "%d", brokers);
    if (rd_kafka_conf_set(conf, "test.mock.num.brokers", n, err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "log_level", "2", err, sizeof(err)) ||
        !(c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err)))) {
        fprintf(stderr, "mock cluster: %s\n", err);
        return -1;
    }
    c->mc = rd_kafka_handle_mock_cluster(c->rk);
    snprintf(c->boot, sizeof(c->boot), "%s", rd_kafka_mock_cluster_bootstraps(c->mc));
    return 0;
}

static void cluster_stop(struct cluster *c)
{
    if (c->rk) {
        rd_kafka_destroy(c->rk);
    }
    memset(c, 0, sizeof(*c));
}

/* @n messages {"topic":T,"n":i} with key k<i> to partition i % @parts. */
static void produce(struct cluster *c, const char *topic, int parts, int first, int n)
{
    for (int i = first; i < first + n; i++) {
        char key[16], val[64];
        int kl = snprintf(key, sizeof(key), "k%d", i);
        int vl = snprintf(val, sizeof(val), "{\"topic\":\"%s\",\"n\":%d}", topic, i);
        rd_kafka_resp_err_t err = rd_kafka_producev(
            c->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(i % parts),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, (size_t)kl),
            RD_KAFKA_V_VALUE(val, (size_t)vl), RD_KAFKA_V_END);
        CHECK_INT(err, 0);
    }
    CHECK_INT(rd_kafka_flush(c->rk, WAIT_MS), 0);
}

/* ---- a source driven through its ops ---- */

#define GOT_MAX 256

struct got {
    int32_t partition;
    int64_t offset;
    uint64_t token;
    char topic[16]; /* label() after the poll that returned it */
    char data[64];
};

struct src {
    struct rts_conf *doc;
    void *ctx;
    int ready;
    struct got got[GOT_MAX];
    size_t n;           /* messages received */
    size_t polls_mixed; /* polls whose messages were not all of label()'s topic */
};

static const struct rts_source_ops *K = &rts_source_kafka;

/* Options as YAML (block style); 0 or the init error in @eb. */
static enum rts_err src_open(struct src *s, const char *yaml, struct rts_errbuf *eb)
{
    struct rts_source_env env = {65536};

    memset(s, 0, sizeof(*s));
    s->doc = rts_conf_parse("t.yaml", yaml, strlen(yaml), eb);
    if (!s->doc) {
        return eb->code;
    }
    s->ctx = rts_opt_ctx_new(K->opts, K->ctx_size, rts_conf_get(rts_conf_root(s->doc), "source"),
                             "source", src_ignore, eb);
    if (!s->ctx) {
        return eb->code;
    }
    if (K->init(s->ctx, &env, eb)) {
        return eb->code;
    }
    s->ready = 1;
    return RTS_ERR_OK;
}

static void src_close(struct src *s)
{
    if (s->ctx) {
        K->fini(s->ctx); /* also after a failed init */
    }
    free(s->ctx);
    rts_conf_free(s->doc);
    s->ctx = NULL;
    s->doc = NULL;
}

static void src_yaml(char *buf, size_t cap, const struct cluster *c, const char *topic,
                     const char *group, int max_inflight)
{
    snprintf(buf, cap,
             "source:\n"
             "  type: kafka\n"
             "  brokers: \"%s\"\n"
             "  topic: \"%s\"\n"
             "  group: %s\n"
             "  start: earliest\n"
             "  commit_interval: 0\n"
             "  max_inflight: %d\n"
             "  kafka:\n"
             "    session.timeout.ms: 6000\n"
             "    heartbeat.interval.ms: 300\n"
             "    topic.metadata.refresh.interval.ms: 1000\n"
             "    log_level: 3\n",
             c->boot, topic, group, max_inflight);
}

/* One poll of up to @max messages; returns how many. */
static size_t src_poll(struct src *s, size_t max, int timeout_ms)
{
    struct rts_msg msgs[64];
    struct rts_errbuf eb = {0};
    size_t n = 0;
    const char *label;

    if (max > 64) {
        max = 64;
    }
    CHECK_INT(K->poll(s->ctx, msgs, max, &n, timeout_ms, &eb), RTS_SRC_OK);
    label = K->label(s->ctx);
    for (size_t i = 0; i < n; i++) {
        struct got *g;
        char want[40];
        int wl = snprintf(want, sizeof(want), "{\"topic\":\"%s\"", label);

        CHECK(msgs[i].token != 0);
        if (msgs[i].len < (size_t)wl || memcmp(msgs[i].data, want, (size_t)wl) != 0) {
            s->polls_mixed++;
        }
        if (s->n == GOT_MAX) {
            CHECK(!"too many messages");
            continue;
        }
        g = &s->got[s->n++];
        g->partition = msgs[i].partition;
        g->offset = msgs[i].offset;
        g->token = msgs[i].token;
        snprintf(g->topic, sizeof(g->topic), "%s", label);
        snprintf(g->data, sizeof(g->data), "%.*s", (int)msgs[i].len, msgs[i].data);
    }
    return n;
}

/* Poll until @s has @want messages in all; 1 if it got there. */
static int src_wait(struct src *s, size_t want)
{
    uint64_t end = rts_now_ns() + (uint64_t)WAIT_MS * 1000000u;

    while (s->n < want && rts_now_ns() < end) {
        src_poll(s, 64, 100);
    }
    return s->n >= want;
}

/* Poll for @ms (commits go out, callbacks run); returns messages received. */
static size_t src_pump(struct src *s, int ms)
{
    uint64_t end = rts_now_ns() + (uint64_t)ms * 1000000u;
    size_t n = 0;

    while (rts_now_ns() < end) {
        n += src_poll(s, 64, 50);
    }
    return n;
}

static struct got *find(struct src *s, const char *topic, int32_t p, int64_t off, size_t from)
{
    for (size_t i = from; i < s->n; i++) {
        if (s->got[i].partition == p && s->got[i].offset == off &&
            (!topic || strcmp(s->got[i].topic, topic) == 0)) {
            return &s->got[i];
        }
    }
    return NULL;
}

static void release(struct src *s, int32_t p, int64_t off)
{
    struct got *g = find(s, NULL, p, off, 0);

    CHECK(g != NULL);
    if (g) {
        K->release(s->ctx, g->token);
    }
}

/* ---- committed offsets, read by another handle of the group ---- */

static rd_kafka_t *checker_new(const struct cluster *c, const char *group)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];

    rd_kafka_conf_set(conf, "bootstrap.servers", c->boot, err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    return rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
}

/* Committed offset of @topic/@p; -1 when none. */
static int64_t committed(rd_kafka_t *chk, const char *topic, int32_t p)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    int64_t off = -2;

    rd_kafka_topic_partition_list_add(l, topic, p);
    if (rd_kafka_committed(chk, l, 10000) == 0 && l->elems[0].err == 0) {
        off = l->elems[0].offset < 0 ? -1 : l->elems[0].offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return off;
}

/* Pump @s until @topic/@p is committed at @want; returns the last value read. */
static int64_t wait_committed(struct src *s, rd_kafka_t *chk, const char *topic, int32_t p,
                              int64_t want)
{
    uint64_t end = rts_now_ns() + (uint64_t)WAIT_MS * 1000000u;
    int64_t got;

    while ((got = committed(chk, topic, p)) != want && rts_now_ns() < end) {
        src_pump(s, 200);
    }
    return got;
}

/* ---- tests: source ---- */

TEST(commit_only_after_release_in_order)
{
    struct cluster c;
    struct src s;
    struct rts_errbuf eb = {0};
    rd_kafka_t *chk;
    char yaml[1024];
    struct rts_lag lag[8];
    size_t nl;

    if (cluster_start(&c, 1)) {
        CHECK(!"cluster");
        return;
    }
    CHECK_INT(rd_kafka_mock_topic_create(c.mc, "t", 4, 1), 0);
    produce(&c, "t", 4, 0, 40);
    src_yaml(yaml, sizeof(yaml), &c, "t", "g1", 100);
    CHECK_INT(src_open(&s, yaml, &eb), RTS_ERR_OK);
    chk = checker_new(&c, "g1");
    CHECK(src_wait(&s, 40));
    CHECK_INT(s.n, 40);
    for (int32_t p = 0; p < 4; p++) {
        for (int64_t o = 0; o < 10; o++) {
            CHECK(find(&s, "t", p, o, 0) != NULL);
        }
    }
    CHECK_STR(K->label(s.ctx), "t");

    /* delivered, nothing released: nothing committed */
    CHECK_INT(src_pump(&s, 1500), 0);
    for (int32_t p = 0; p < 4; p++) {
        CHECK_INT(committed(chk, "t", p), -1);
    }
    /* partition 0: the tail finishes first */
    for (int64_t o = 9; o >= 5; o--) {
        release(&s, 0, o);
    }
    src_pump(&s, 1000);
    CHECK_INT(committed(chk, "t", 0), -1);
    release(&s, 0, 2);
    release(&s, 0, 0);
    release(&s, 0, 1);
    CHECK_INT(wait_committed(&s, chk, "t", 0, 3), 3);
    /* offset 3 gets two outputs; its processing hold goes, then offset 4 */
    K->hold(s.ctx, find(&s, NULL, 0, 3, 0)->token, 2);
    release(&s, 0, 3);
    release(&s, 0, 4);
    src_pump(&s, 1000);
    CHECK_INT(committed(chk, "t", 0), 3);
    release(&s, 0, 3); /* first output acknowledged */
    src_pump(&s, 500);
    CHECK_INT(committed(chk, "t", 0), 3);
    release(&s, 0, 3); /* the second: 3..9 are all done */
    CHECK_INT(wait_committed(&s, chk, "t", 0, 10), 10);
    CHECK_INT(committed(chk, "t", 1), -1);

    /* the other partitions, released in reverse order */
    for (int32_t p = 1; p < 4; p++) {
        for (int64_t o = 9; o >= 0; o--) {
            release(&s, p, o);
        }
    }
    for (int32_t p = 1; p < 4; p++) {
        CHECK_INT(wait_committed(&s, chk, "t", p, 10), 10);
    }
    /* everything read: no lag on any of the four partitions */
    nl = K->lag(s.ctx, lag, 8);
    CHECK_INT(nl, 4);
    for (size_t i = 0; i < nl; i++) {
        CHECK_STR(lag[i].topic, "t");
        CHECK_INT(lag[i].lag, 0);
    }
    CHECK_INT(K->lag(s.ctx, lag, 2), 2);
    src_close(&s);
    rd_kafka_destroy(chk);
    cluster_stop(&c);
}

TEST(restart_resumes_from_committed)
{
    struct cluster c;
    struct src a, b;
    struct rts_errbuf eb = {0};
    rd_kafka_t *chk;
    char yaml[1024];

    if (cluster_start(&c, 1)) {
        CHECK(!"cluster");
        return;
    }
    CHECK_INT(rd_kafka_mock_topic_create(c.mc, "r", 4, 1), 0);
    produce(&c, "r", 4, 0, 40);
    src_yaml(yaml, sizeof(yaml), &c, "r", "g2", 100);
    CHECK_INT(src_open(&a, yaml, &eb), RTS_ERR_OK);
    CHECK(src_wait(&a, 40));
    /* per partition: 0..4 done, and 7 done out of order */
    for (int32_t p = 0; p < 4; p++) {
        for (int64_t o = 0; o < 5; o++) {
            release(&a, p, o);
        }
        release(&a, p, 7);
    }
    src_close(&a); /* the final commit */
    chk = checker_new(&c, "g2");
    for (int32_t p = 0; p < 4; p++) {
        CHECK_INT(committed(chk, "r", p), 5);
    }

    /* the next member of the group starts where the first one committed */
    CHECK_INT(src_open(&b, yaml, &eb), RTS_ERR_OK);
    CHECK(src_wait(&b, 20));
    CHECK_INT(src_pump(&b, 1500), 0);
    CHECK_INT(b.n, 20);
    for (int32_t p = 0; p < 4; p++) {
        for (int64_t o = 5; o < 10; o++) {
            CHECK(find(&b, "r", p, o, 0) != NULL); /* 7 again: it was past the prefix */
        }
    }
    for (size_t i = 0; i < b.n; i++) {
        K->release(b.ctx, b.got[i].token);
    }
    for (int32_t p = 0; p < 4; p++) {
        CHECK_INT(wait_committed(&b, chk, "r", p, 10), 10);
    }
    src_close(&b);
    rd_kafka_destroy(chk);
    cluster_stop(&c);
}

/* Partitions of @s per lag(). */
static size_t assigned(struct src *s, int32_t *parts)
{
    struct rts_lag lag[8];
    size_t n = K->lag(s->ctx, lag, 8);

    for (size_t i = 0; i < n && parts; i++) {
        parts[i] = lag[i].partition;
    }
    return n;
}

static int owns(const int32_t *parts, size_t n, int32_t p)
{
    for (size_t i = 0; i < n; i++) {
        if (parts[i] == p) {
            return 1;
        }
    }
    return 0;
}

/* 1 when, for every partition, its owner (a or b per @pa/@pb) has received
 * offsets 2+p..9 since @a_from (a) or ever (b). */
static int all_redelivered(struct src *a, size_t a_from, struct src *b, const int32_t *pa,
                           size_t na)
{
    for (int32_t p = 0; p < 4; p++) {
        struct src *own = owns(pa, na, p) ? a : b;
        for (int64_t o = 2 + p; o < 10; o++) {
            if (!find(own, "rb", p, o, own == a ? a_from : 0)) {
                return 0;
            }
        }
    }
    return 1;
}

TEST(rebalance_moves_partitions)
{
    struct cluster c;
    struct src *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    struct rts_errbuf eb = {0};
    rd_kafka_t *chk;
    char yaml[1024];
    int32_t pa[8], pb[8];
    size_t na = 0, nb = 0, a_before;
    uint64_t end;
    int done = 0;

    if (cluster_start(&c, 1)) {
        CHECK(!"cluster");
        return;
    }
    CHECK_INT(rd_kafka_mock_topic_create(c.mc, "rb", 4, 1), 0);
    produce(&c, "rb", 4, 0, 40);
    src_yaml(yaml, sizeof(yaml), &c, "rb", "g3", 100);
    chk = checker_new(&c, "g3");
    CHECK_INT(src_open(a, yaml, &eb), RTS_ERR_OK);
    CHECK(src_wait(a, 40));
    /* partition p: 0 .. p+1 done and committed; 9 done too, past the prefix */
    for (int32_t p = 0; p < 4; p++) {
        for (int64_t o = 0; o < 2 + p; o++) {
            release(a, p, o);
        }
        release(a, p, 9);
    }
    for (int32_t p = 0; p < 4; p++) {
        CHECK_INT(wait_committed(a, chk, "rb", p, 2 + p), 2 + p);
    }
    a_before = a->n;

    /* a second member joins: both poll until the group has settled 2 + 2 and
     * the owners have every unfinished message again. (The mock may take
     * more than one rebalance; each starts again from the committed offsets.) */
    CHECK_INT(src_open(b, yaml, &eb), RTS_ERR_OK);
    end = rts_now_ns() + (uint64_t)WAIT_MS * 1000000u;
    while (rts_now_ns() < end) {
        src_poll(a, 64, 50);
        src_poll(b, 64, 50);
        na = assigned(a, pa);
        nb = assigned(b, pb);
        if (na == 2 && nb == 2 && all_redelivered(a, a_before, b, pa, na)) {
            break;
        }
    }
    CHECK_INT(na, 2);
    CHECK_INT(nb, 2);
    CHECK(all_redelivered(a, a_before, b, pa, na));
    for (int32_t p = 0; p < 4; p++) {
        struct src *own = owns(pa, na, p) ? a : b;

        CHECK(owns(pa, na, p) != owns(pb, nb, p));
        /* nothing below the committed offset comes back */
        for (int64_t o = 0; o < 2 + p; o++) {
            CHECK(find(own, "rb", p, o, own == a ? a_before : 0) == NULL);
        }
        CHECK_INT(committed(chk, "rb", p), 2 + p);
    }
    /* the first member's tokens from before the rebalance are stale now:
     * releasing them changes nothing */
    for (size_t i = 0; i < a_before; i++) {
        if (a->got[i].offset >= 2 + a->got[i].partition && a->got[i].offset != 9) {
            K->release(a->ctx, a->got[i].token);
        }
    }
    src_pump(a, 500);
    src_pump(b, 500);
    for (int32_t p = 0; p < 4; p++) {
        CHECK_INT(committed(chk, "rb", p), 2 + p);
    }
    /* the owners finish what they got (stale tokens of any later rebalance
     * are ignored; what comes again is finished too): all committed */
    end = rts_now_ns() + (uint64_t)WAIT_MS * 1000000u;
    for (size_t ra = a_before, rb = 0; !done && rts_now_ns() < end;) {
        for (; ra < a->n; ra++) {
            K->release(a->ctx, a->got[ra].token);
        }
        for (; rb < b->n; rb++) {
            K->release(b->ctx, b->got[rb].token);
        }
        src_pump(a, 100);
        src_pump(b, 100);
        done = 1;
        for (int32_t p = 0; p < 4; p++) {
            done &= committed(chk, "rb", p) == 10;
        }
    }
    CHECK(done);
    src_close(a);
    src_close(b);
    rd_kafka_destroy(chk);
    cluster_stop(&c);
    free(a);
    free(b);
}

/* A partition paused (full) when it is revoked: resumed as it leaves, so
 * that it comes back to its first owner unpaused, and flowing, after the
 * second member has finished it and left. (librdkafka keeps a pause across
 * unassign and assign; the source never resumes a partition that librdkafka
 * has not paused, which makes librdkafka 2.0 fetch again from where it last
 * paused the partition: a rewind, messages delivered twice.) */
TEST(paused_partition_moves_and_comes_back)
{
    struct cluster c;
    struct src *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    struct rts_errbuf eb = {0};
    char yaml_a[1024], yaml_b[1024];
    int32_t pa[8], pb[8], x;
    size_t na = 0, nb = 0, a_back;
    uint64_t end;

    if (cluster_start(&c, 1)) {
        CHECK(!"cluster");
        return;
    }
    CHECK_INT(rd_kafka_mock_topic_create(c.mc, "pm", 2, 1), 0);
    produce(&c, "pm", 2, 0, 8); /* offsets 0..3 in each partition */
    src_yaml(yaml_a, sizeof(yaml_a), &c, "pm", "g12", 2);
    src_yaml(yaml_b, sizeof(yaml_b), &c, "pm", "g12", 100);
    CHECK_INT(src_open(a, yaml_a, &eb), RTS_ERR_OK);
    CHECK(src_wait(a, 4)); /* two per partition: both full, paused */
    CHECK_INT(src_pump(a, 1000), 0);

    /* b joins and takes one partition, x, from offset 0 */
    CHECK_INT(src_open(b, yaml_b, &eb), RTS_ERR_OK);
    end = rts_now_ns() + (uint64_t)WAIT_MS * 1000000u;
    while (rts_now_ns() < end && !(na == 1 && nb == 1 && find(b, "pm", pb[0], 3, 0))) {
        src_poll(a, 64, 50);
        src_poll(b, 64, 50);
        na = assigned(a, pa);
        nb = assigned(b, pb);
    }
    CHECK_INT(na, 1);
    CHECK_INT(nb, 1);
    x = pb[0];
    CHECK(x != pa[0]);
    for (size_t i = 0; i < b->n; i++) {
        K->release(b->ctx, b->got[i].token); /* committed as b leaves */
    }
    src_pump(b, 300);
    src_close(b);

    /* x comes back to a, which reads what follows b's commit */
    a_back = a->n;
    produce(&c, "pm", 2, 8, 8); /* offsets 4..7 */
    end = rts_now_ns() + (uint64_t)WAIT_MS * 1000000u;
    for (size_t i = a_back; rts_now_ns() < end && !find(a, "pm", x, 7, a_back);) {
        src_poll(a, 64, 50);
        for (; i < a->n; i++) {
            if (a->got[i].partition == x) {
                K->release(a->ctx, a->got[i].token); /* two in flight at most */
            }
        }
    }
    CHECK_INT(assigned(a, pa), 2);
    for (int64_t o = 0; o < 8; o++) {
        struct got *g = find(a, "pm", x, o, a_back);

        CHECK(o < 4 ? g == NULL : g != NULL);
        CHECK(g == NULL || find(a, "pm", x, o, (size_t)(g - a->got) + 1) == NULL);
    }
    src_close(a);
    cluster_stop(&c);
    free(a);
    free(b);
}

TEST(pause_and_resume)
{
    struct cluster c;
    struct src s;
    struct rts_errbuf eb = {0};
    char yaml[1024];
    uint64_t end;

    if (cluster_start(&c, 1)) {
        CHECK(!"cluster");
        return;
    }
    CHECK_INT(rd_kafka_mock_topic_create(c.mc, "pz", 2, 1), 0);
    produce(&c, "pz", 2, 0, 10);
    src_yaml(yaml, sizeof(yaml), &c, "pz", "g4", 100);
    CHECK_INT(src_open(&s, yaml, &eb), RTS_ERR_OK);

    /* paused from the start: the group is joined, nothing is delivered */
    K->pause(s.ctx, 1);
    end = rts_now_ns() + (uint64_t)WAIT_MS * 1000000u;
    while (assigned(&s, NULL) < 2 && rts_now_ns() < end) {
        src_poll(&s, 64, 100);
    }
    CHECK_INT(assigned(&s, NULL), 2);
    CHECK_INT(src_pump(&s, 1500), 0);
    CHECK_INT(src_poll(&s, 0, 100), 0); /* max 0: still serves the group */
    K->pause(s.ctx, 0);
    CHECK(src_wait(&s, 10));

    /* paused in the middle of a stream: what was fetched is fetched again */
    produce(&c, "pz", 2, 10, 30);
    end = rts_now_ns() + (uint64_t)WAIT_MS * 1000000u;
    while (s.n == 10 && rts_now_ns() < end) {
        src_poll(&s, 3, 100);
    }
    CHECK(s.n > 10 && s.n < 40);
    K->pause(s.ctx, 1);
    CHECK_INT(src_pump(&s, 1500), 0);
    K->pause(s.ctx, 0);
    CHECK(src_wait(&s, 40));
    CHECK_INT(src_pump(&s, 1000), 0);
    CHECK_INT(s.n, 40);
    for (int32_t p = 0; p < 2; p++) {
        for (int64_t o = 0; o < 20; o++) {
            struct got *g = find(&s, "pz", p, o, 0);
            CHECK(g != NULL);
            CHECK(g == NULL || find(&s, "pz", p, o, (size_t)(g - s.got) + 1) == NULL);
        }
    }
    src_close(&s);
    cluster_stop(&c);
}

/* What the daemon does when its queues are full in the middle of a batch:
 * pause, then poll with max 0 now and then to stay in the group, while the
 * rest of the batch still waits to be queued. Those polls must leave the
 * batch's messages valid (source.h): before the fix they destroyed them, the
 * daemon decoded freed memory (ASan: heap-use-after-free; without ASan,
 * events dead-lettered as invalid_json with a payload of zero bytes, their
 * offsets committed: lost). */
TEST(serve_poll_keeps_the_batch)
{
    struct cluster c;
    struct src s;
    struct rts_errbuf eb = {0};
    struct rts_msg msgs[64];
    char yaml[1024];
    size_t n = 0, zero;
    uint64_t end;

    if (cluster_start(&c, 1)) {
        CHECK(!"cluster");
        return;
    }
    CHECK_INT(rd_kafka_mock_topic_create(c.mc, "kb", 1, 1), 0);
    produce(&c, "kb", 1, 0, 200);
    src_yaml(yaml, sizeof(yaml), &c, "kb", "g10", 1000);
    CHECK_INT(src_open(&s, yaml, &eb), RTS_ERR_OK);
    end = rts_now_ns() + (uint64_t)WAIT_MS * 1000000u;
    while (n < 32 && rts_now_ns() < end) {
        CHECK_INT(K->poll(s.ctx, msgs, 64, &n, 100, &eb), RTS_SRC_OK);
    }
    CHECK(n >= 32);
    K->pause(s.ctx, 1);
    end = rts_now_ns() + 500ull * 1000000u;
    while (rts_now_ns() < end) {
        CHECK_INT(K->poll(s.ctx, NULL, 0, &zero, 50, &eb), RTS_SRC_OK);
        CHECK_INT(zero, 0);
    }
    for (size_t i = 0; i < n; i++) {
        char want[64];
        int wl = snprintf(want, sizeof(want), "{\"topic\":\"kb\",\"n\":%lld}",
                          (long long)msgs[i].offset);
        CHECK(msgs[i].len == (size_t)wl && memcmp(msgs[i].data, want, (size_t)wl) == 0);
        K->release(s.ctx, msgs[i].token);
    }
    K->pause(s.ctx, 0);
    CHECK_INT(K->poll(s.ctx, msgs, 64, &n, 100, &eb), RTS_SRC_OK);
    src_close(&s);
    cluster_stop(&c);
}

TEST(max_inflight_pauses_a_partition)
{
    struct cluster c;
    struct src s;
    struct rts_errbuf eb = {0};
    rd_kafka_t *chk;
    char yaml[1024];
    struct rts_lag lag[4];
    uint64_t end;

    if (cluster_start(&c, 1)) {
        CHECK(!"cluster");
        return;
    }
    CHECK_INT(rd_kafka_mock_topic_create(c.mc, "mi", 1, 1), 0);
    produce(&c, "mi", 1, 0, 20);
    src_yaml(yaml, sizeof(yaml), &c, "mi", "g5", 4);
    CHECK_INT(src_open(&s, yaml, &eb), RTS_ERR_OK);
    CHECK(src_wait(&s, 4));
    CHECK_INT(src_pump(&s, 1500), 0);
    CHECK_INT(s.n, 4);
    CHECK_INT(K->lag(s.ctx, lag, 4), 1);
    CHECK_INT(lag[0].lag, 16); /* high watermark 20, position 4 */
    /* 3 of 4 done, but the first is not: still full */
    release(&s, 0, 1);
    release(&s, 0, 2);
    release(&s, 0, 3);
    CHECK_INT(src_pump(&s, 1000), 0);
    /* the first done: all four finish, the partition resumes */
    release(&s, 0, 0);
    CHECK(src_wait(&s, 8));
    CHECK_INT(src_pump(&s, 1000), 0);
    CHECK_INT(s.n, 8);
    /* keep finishing: everything arrives once, in order */
    end = rts_now_ns() + (uint64_t)WAIT_MS * 1000000u;
    for (size_t done = 4; done < 20 && rts_now_ns() < end;) {
        while (done < s.n) {
            K->release(s.ctx, s.got[done++].token);
        }
        src_poll(&s, 64, 100);
    }
    CHECK_INT(s.n, 20);
    for (size_t i = 0; i < s.n; i++) {
        CHECK_INT(s.got[i].offset, (int64_t)i);
    }
    chk = checker_new(&c, "g5");
    CHECK_INT(wait_committed(&s, chk, "mi", 0, 20), 20);
    src_close(&s);
    rd_kafka_destroy(chk);
    cluster_stop(&c);
}

TEST(one_topic_per_poll)
{
    struct cluster c;
    struct src s;
    struct rts_errbuf eb = {0};
    char yaml[1024];
    size_t na = 0;

    if (cluster_start(&c, 1)) {
        CHECK(!"cluster");
        return;
    }
    CHECK_INT(rd_kafka_mock_topic_create(c.mc, "ta", 2, 1), 0);
    CHECK_INT(rd_kafka_mock_topic_create(c.mc, "tb", 2, 1), 0);
    produce(&c, "ta", 2, 0, 30);
    produce(&c, "tb", 2, 0, 30);
    src_yaml(yaml, sizeof(yaml), &c, "ta, tb", "g6", 100);
    CHECK_INT(src_open(&s, yaml, &eb), RTS_ERR_OK);
    CHECK(src_wait(&s, 60));
    CHECK_INT(src_pump(&s, 1000), 0);
    CHECK_INT(s.n, 60);
    CHECK_INT(s.polls_mixed, 0); /* every message is of the topic label() named */
    for (size_t i = 0; i < s.n; i++) {
        na += strcmp(s.got[i].topic, "ta") == 0;
    }
    CHECK_INT(na, 30);
    CHECK_INT(assigned(&s, NULL), 4);
    src_close(&s);
    cluster_stop(&c);
}

/* An error the operator must fix ends the source: poll says what. */
TEST(authorization_error_is_fatal)
{
    struct cluster c;
    struct src s;
    struct rts_errbuf eb = {0};
    char yaml[1024];
    enum rts_src_status st = RTS_SRC_OK;
    uint64_t end;

    if (cluster_start(&c, 1)) {
        CHECK(!"cluster");
        return;
    }
    CHECK_INT(rd_kafka_mock_topic_create(c.mc, "secret", 1, 1), 0);
    rd_kafka_mock_topic_set_error(c.mc, "secret", RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    src_yaml(yaml, sizeof(yaml), &c, "secret", "g8", 100);
    CHECK_INT(src_open(&s, yaml, &eb), RTS_ERR_OK);
    end = rts_now_ns() + (uint64_t)WAIT_MS * 1000000u;
    while (st == RTS_SRC_OK && rts_now_ns() < end) {
        struct rts_msg m[4];
        size_t n;
        st = K->poll(s.ctx, m, 4, &n, 100, &eb);
    }
    CHECK_INT(st, RTS_SRC_ERROR);
    CHECK(strstr(eb.msg, "not authorized (topic 'secret')") != NULL);
    src_close(&s);
    cluster_stop(&c);
}

/* fini commits and leaves the group with bounded waits: with the cluster
 * gone, rd_kafka_commit and rd_kafka_consumer_close would block for good (a
 * hang here is caught by the test's timeout). */
TEST(fini_with_cluster_down)
{
    struct cluster c;
    struct src s;
    struct rts_errbuf eb = {0};
    char yaml[1024];
    uint64_t t0;

    if (cluster_start(&c, 1)) {
        CHECK(!"cluster");
        return;
    }
    CHECK_INT(rd_kafka_mock_topic_create(c.mc, "fd", 2, 1), 0);
    produce(&c, "fd", 2, 0, 10);
    src_yaml(yaml, sizeof(yaml), &c, "fd", "g7", 100);
    CHECK_INT(src_open(&s, yaml, &eb), RTS_ERR_OK);
    CHECK(src_wait(&s, 10));
    for (size_t i = 0; i < s.n; i++) {
        K->release(s.ctx, s.got[i].token);
    }
    CHECK_INT(rd_kafka_mock_broker_set_down(c.mc, 1), 0);
    t0 = rts_now_ns();
    src_close(&s);
    fprintf(stderr, "  fini with the cluster down took %.1f s\n",
            (double)(rts_now_ns() - t0) / 1e9);
    cluster_stop(&c);
}

/* Stopping while librdkafka still holds fetched messages that were never
 * delivered (a SIGTERM mid-stream): leaving the group serves the close queue,
 * which then carries those messages too. They are dropped, not delivered,
 * and do not abort the process (librdkafka asserts when a queue holding
 * messages is served with rd_kafka_queue_poll_callback); what was finished is
 * committed, and the next member starts right after it. */
TEST(fini_with_messages_left)
{
    struct cluster c;
    struct src s, b;
    struct rts_errbuf eb = {0};
    rd_kafka_t *chk;
    char yaml[1024];
    struct timespec ts = {0, 500 * 1000 * 1000};
    int64_t next[2] = {0, 0};

    if (cluster_start(&c, 1)) {
        CHECK(!"cluster");
        return;
    }
    CHECK_INT(rd_kafka_mock_topic_create(c.mc, "ml", 2, 1), 0);
    produce(&c, "ml", 2, 0, 2000);
    src_yaml(yaml, sizeof(yaml), &c, "ml", "g9", 5000);
    CHECK_INT(src_open(&s, yaml, &eb), RTS_ERR_OK);
    CHECK(src_wait(&s, 1));
    for (size_t i = 0; i < s.n; i++) {
        K->release(s.ctx, s.got[i].token);
        if (s.got[i].offset + 1 > next[s.got[i].partition]) {
            next[s.got[i].partition] = s.got[i].offset + 1;
        }
    }
    CHECK(s.n < 2000);
    nanosleep(&ts, NULL); /* librdkafka fetches ahead meanwhile */
    src_close(&s);
    chk = checker_new(&c, "g9");
    for (int32_t p = 0; p < 2; p++) {
        CHECK_INT(committed(chk, "ml", p), next[p] ? next[p] : -1);
    }
    /* the next member resumes at the commit: nothing skipped */
    CHECK_INT(src_open(&b, yaml, &eb), RTS_ERR_OK);
    CHECK(src_wait(&b, 1));
    for (int32_t p = 0; p < 2; p++) {
        int64_t first = -1;
        for (size_t i = 0; i < b.n; i++) {
            if (b.got[i].partition == p && (first < 0 || b.got[i].offset < first)) {
                first = b.got[i].offset;
            }
        }
        CHECK(first < 0 || first == next[p]);
    }
    src_close(&b);
    rd_kafka_destroy(chk);
    cluster_stop(&c);
}

/* ---- tests: sink ---- */

struct acks {
    pthread_mutex_t mu;
    size_t n, ok, bad, bad_with_reason;
    unsigned char seen[1024]; /* by token */
    size_t twice;
};

static void on_ack(void *arg, uint64_t token, int ok, const char *why)
{
    struct acks *a = arg;

    pthread_mutex_lock(&a->mu);
    a->n++;
    if (ok) {
        a->ok++;
    } else {
        a->bad++;
        a->bad_with_reason += why && *why;
    }
    if (token < sizeof(a->seen)) {
        a->twice += a->seen[token]++ > 0;
    }
    pthread_mutex_unlock(&a->mu);
}

struct sink {
    struct rts_conf *doc;
    void *ctx;
};

static const struct rts_sink_ops *S = &rts_sink_kafka;

static enum rts_err sink_open(struct sink *k, const char *yaml, const struct rts_sink_env *env,
                              struct rts_errbuf *eb)
{
    memset(k, 0, sizeof(*k));
    k->doc = rts_conf_parse("t.yaml", yaml, strlen(yaml), eb);
    if (!k->doc) {
        return eb->code;
    }
    k->ctx = rts_opt_ctx_new(S->opts, S->ctx_size, rts_conf_get(rts_conf_root(k->doc), "sink"),
                             "sink", src_ignore, eb);
    if (!k->ctx) {
        return eb->code;
    }
    return S->init(k->ctx, env, eb);
}

static void sink_close(struct sink *k)
{
    if (k->ctx) {
        S->fini(k->ctx);
    }
    free(k->ctx);
    rts_conf_free(k->doc);
}

/* Write records first..first+n-1 as batches of 10: id i-<n>, key c-<n%7>,
 * model m@1 on even ones, token n+1 (0 for every 10th). */
static void write_records(struct sink *k, int first, int n)
{
    char buf[2048];
    struct rts_rec recs[10];
    char ids[10][16], keys[10][16];
    struct rts_errbuf eb = {0};

    for (int at = first; at < first + n; at += 10) {
        struct rts_batch b = {buf, 0, recs, 0};
        size_t len = 0;

        for (int i = at; i < at + 10 && i < first + n; i++) {
            struct rts_rec *r = &recs[b.n];
            int il = snprintf(ids[b.n], 16, "i-%d", i), kl = snprintf(keys[b.n], 16, "c-%d", i % 7);
            int l = snprintf(buf + len, sizeof(buf) - len, "{\"id\":\"i-%d\",\"score\":0.5}\n", i);

            r->off = (uint32_t)len;
            r->len = (uint32_t)l;
            r->id = (struct rts_str){ids[b.n], (uint32_t)il};
            r->key = (struct rts_str){keys[b.n], (uint32_t)kl};
            r->model = i % 2 == 0 ? (struct rts_str){"m@1", 3} : (struct rts_str){NULL, 0};
            r->token = i % 10 == 0 ? 0 : (uint64_t)i + 1;
            len += (size_t)l;
            b.n++;
        }
        b.len = len;
        CHECK_INT(S->write(k->ctx, &b, &eb), RTS_SINK_OK);
    }
}

/* Read every message of @topic (@parts partitions) from the start, records
 * @first..@first+@want-1 of write_records; checks each (with the headers id
 * and model when @headers, without any otherwise); returns how many,
 * counting repeats in *dups. */
static size_t read_back(const struct cluster *c, const char *topic, int parts, int first, int want,
                        size_t *dups, int headers)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    unsigned char *seen = calloc((size_t)want, 1);
    uint64_t end = rts_now_ns() + (uint64_t)WAIT_MS * 1000000u, quiet = 0;
    char err[256];
    size_t n = 0;
    rd_kafka_t *rk;

    *dups = 0;
    rd_kafka_conf_set(conf, "bootstrap.servers", c->boot, err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", "reader", err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    for (int p = 0; p < parts; p++) {
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    while (rts_now_ns() < end && (n < (size_t)want || quiet < 10)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t vl;
        int i;
        char val[128], key[16];

        if (!m) {
            quiet++;
            continue;
        }
        quiet = 0;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        snprintf(val, sizeof(val), "%.*s", (int)m->len, (const char *)m->payload);
        if (sscanf(val, "{\"id\":\"i-%d\"", &i) != 1 || i < first || i >= first + want) {
            CHECK(!"unexpected value");
            rd_kafka_message_destroy(m);
            continue;
        }
        n++;
        *dups += seen[i - first]++ > 0;
        CHECK(m->len > 0 && ((const char *)m->payload)[m->len - 1] == '}'); /* no '\n' */
        snprintf(key, sizeof(key), "c-%d", i % 7);
        CHECK(m->key_len == strlen(key) && memcmp(m->key, key, m->key_len) == 0);
        CHECK_INT(rd_kafka_message_headers(m, &h), headers ? 0 : RD_KAFKA_RESP_ERR__NOENT);
        if (h) {
            char id[16];
            snprintf(id, sizeof(id), "i-%d", i);
            CHECK_INT(rd_kafka_header_get_last(h, "id", &v, &vl), 0);
            CHECK(vl == strlen(id) && memcmp(v, id, vl) == 0);
            if (i % 2 == 0) {
                CHECK_INT(rd_kafka_header_get_last(h, "model", &v, &vl), 0);
                CHECK(vl == 3 && memcmp(v, "m@1", 3) == 0);
            } else {
                CHECK(rd_kafka_header_get_last(h, "model", &v, &vl) != 0);
            }
        }
        rd_kafka_message_destroy(m);
    }
    for (int i = 0; i < want; i++) {
        if (!seen[i]) {
            fprintf(stderr, "  record i-%d is missing\n", first + i);
        }
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    free(seen);
    return n;
}

static void acks_init(struct acks *a)
{
    memset(a, 0, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
}

TEST(sink_delivers_with_key_and_headers)
{
    struct cluster c;
    struct sink k;
    struct acks a;
    struct rts_errbuf eb = {0};
    struct rts_sink_env env = {on_ack, &a, "sink", NULL, NULL};
    char yaml[512];
    size_t dups;

    acks_init(&a);
    if (cluster_start(&c, 1)) {
        CHECK(!"cluster");
        return;
    }
    CHECK_INT(rd_kafka_mock_topic_create(c.mc, "out", 3, 1), 0);
    snprintf(yaml, sizeof(yaml), "sink:\n  type: kafka\n  topic: out\n  kafka: {log_level: 3}\n");
    env.brokers = c.boot; /* from the source, as the daemon passes it */
    CHECK_INT(sink_open(&k, yaml, &env, &eb), RTS_ERR_OK);
    write_records(&k, 0, 100);
    CHECK_INT(S->flush(k.ctx, &eb), RTS_ERR_OK);
    pthread_mutex_lock(&a.mu);
    CHECK_INT(a.n, 90); /* every record with a token, once */
    CHECK_INT(a.ok, 90);
    CHECK_INT(a.twice, 0);
    for (int i = 0; i < 100; i++) {
        CHECK_INT(a.seen[i + 1], i % 10 != 0);
    }
    pthread_mutex_unlock(&a.mu);
    CHECK_INT(read_back(&c, "out", 3, 0, 100, &dups, 1), 100);
    CHECK_INT(dups, 0);
    sink_close(&k);
    /* headers: false */
    snprintf(yaml, sizeof(yaml),
             "sink:\n  type: kafka\n  topic: bare\n  headers: false\n  kafka: {log_level: 3}\n");
    CHECK_INT(rd_kafka_mock_topic_create(c.mc, "bare", 1, 1), 0);
    CHECK_INT(sink_open(&k, yaml, &env, &eb), RTS_ERR_OK);
    write_records(&k, 0, 30);
    CHECK_INT(S->flush(k.ctx, &eb), RTS_ERR_OK);
    CHECK_INT(read_back(&c, "bare", 1, 0, 30, &dups, 0), 30);
    sink_close(&k);
    cluster_stop(&c);
    pthread_mutex_destroy(&a.mu);
}

TEST(sink_survives_a_broker_down)
{
    struct cluster c;
    struct sink k;
    struct acks a;
    struct rts_errbuf eb = {0};
    struct rts_sink_env env = {on_ack, &a, "sink", NULL, NULL};
    char yaml[512];
    size_t dups;
    struct timespec two = {2, 0};

    acks_init(&a);
    if (cluster_start(&c, 1)) {
        CHECK(!"cluster");
        return;
    }
    CHECK_INT(rd_kafka_mock_topic_create(c.mc, "down", 2, 1), 0);
    snprintf(yaml, sizeof(yaml),
             "sink:\n  type: kafka\n  brokers: \"%s\"\n  topic: down\n"
             "  kafka: {log_level: 0, reconnect.backoff.max.ms: 200}\n",
             c.boot);
    CHECK_INT(sink_open(&k, yaml, &env, &eb), RTS_ERR_OK);
    write_records(&k, 0, 200);
    CHECK_INT(rd_kafka_mock_broker_set_down(c.mc, 1), 0);
    write_records(&k, 200, 200);
    nanosleep(&two, NULL);
    CHECK_INT(rd_kafka_mock_broker_set_up(c.mc, 1), 0);
    CHECK_INT(S->flush(k.ctx, &eb), RTS_ERR_OK);
    pthread_mutex_lock(&a.mu);
    CHECK_INT(a.n, 360);
    CHECK_INT(a.ok, 360);
    CHECK_INT(a.twice, 0);
    pthread_mutex_unlock(&a.mu);
    CHECK_INT(read_back(&c, "down", 2, 0, 400, &dups, 1), 400);
    CHECK_INT(dups, 0); /* idempotent producer: retries are not repeats */
    sink_close(&k);
    cluster_stop(&c);
    pthread_mutex_destroy(&a.mu);
}

TEST(sink_reports_failed_deliveries)
{
    struct cluster c;
    struct sink k;
    struct acks a;
    struct rts_errbuf eb = {0};
    struct rts_sink_env env = {on_ack, &a, "dlq", NULL, NULL};
    char yaml[512], big[3000];
    struct rts_rec rec = {0};
    struct rts_batch b = {big, 0, &rec, 1};

    acks_init(&a);
    if (cluster_start(&c, 1)) {
        CHECK(!"cluster");
        return;
    }
    CHECK_INT(rd_kafka_mock_topic_create(c.mc, "lost", 1, 1), 0);
    snprintf(yaml, sizeof(yaml),
             "sink:\n  type: kafka\n  brokers: \"%s\"\n  topic: lost\n"
             "  kafka: {log_level: 0, message.timeout.ms: 1500, message.max.bytes: 1000}\n",
             c.boot);
    CHECK_INT(sink_open(&k, yaml, &env, &eb), RTS_ERR_OK);
    /* refused at once: larger than message.max.bytes */
    memset(big, 'x', sizeof(big));
    big[sizeof(big) - 1] = '\n';
    rec.len = sizeof(big);
    rec.token = 500;
    b.len = sizeof(big);
    CHECK_INT(S->write(k.ctx, &b, &eb), RTS_SINK_OK);
    /* the broker is gone for longer than message.timeout.ms */
    CHECK_INT(rd_kafka_mock_broker_set_down(c.mc, 1), 0);
    write_records(&k, 0, 20);
    CHECK_INT(S->flush(k.ctx, &eb), RTS_ERR_IO);
    CHECK(strstr(eb.msg, "dlq: 21 records failed delivery to 'lost'") != NULL);
    pthread_mutex_lock(&a.mu);
    CHECK_INT(a.n, 19); /* 18 tokens of write_records and the big one: failed, not dropped */
    CHECK_INT(a.ok, 0);
    CHECK_INT(a.bad_with_reason, 19);
    CHECK_INT(a.seen[500], 1);
    pthread_mutex_unlock(&a.mu);
    CHECK_INT(S->flush(k.ctx, &eb), RTS_ERR_OK); /* reported once */
    sink_close(&k);
    cluster_stop(&c);
    pthread_mutex_destroy(&a.mu);
}

/* Kafka sinks with the same brokers and options share one producer; each
 * sink's delivery reports release its own tokens only; a failure of one is
 * reported by that one; a sink that closes first leaves the other working,
 * and reports of its records that come after its fini reach nothing (ASan
 * would see them reach freed memory); the last one closes the producer. */
TEST(sinks_share_a_producer)
{
    struct cluster c;
    struct sink ka, kb, kc, kd;
    struct acks aa, ab, ac, ad;
    struct rts_errbuf eb = {0};
    struct rts_sink_share *sh = rts_sink_share_new();
    struct rts_sink_env ea = {on_ack, &aa, "sink", NULL, sh},
                        eb_env = {on_ack, &ab, "dlq", NULL, sh},
                        ec = {on_ack, &ac, "alerts.sink", NULL, sh},
                        ed = {on_ack, &ad, "shadow", NULL, sh};
    char ya[512], yc[512], big[3000];
    struct rts_rec rec = {0};
    struct rts_batch b = {big, 0, &rec, 1};
    size_t dups;
    const char *opts = "  kafka: {log_level: 3, message.max.bytes: 1000}\n";

    acks_init(&aa);
    acks_init(&ab);
    acks_init(&ac);
    acks_init(&ad);
    if (!sh || cluster_start(&c, 1)) {
        CHECK(!"cluster");
        rts_sink_share_free(sh);
        return;
    }
    CHECK_INT(rd_kafka_mock_topic_create(c.mc, "ta", 2, 1), 0);
    CHECK_INT(rd_kafka_mock_topic_create(c.mc, "tb", 1, 1), 0);
    ea.brokers = eb_env.brokers = ec.brokers = ed.brokers = c.boot;

    /* a and b: one producer */
    snprintf(ya, sizeof(ya), "sink:\n  type: kafka\n  topic: ta\n%s", opts);
    CHECK_INT(sink_open(&ka, ya, &ea, &eb), RTS_ERR_OK);
    snprintf(ya, sizeof(ya), "sink:\n  type: kafka\n  topic: tb\n%s", opts);
    CHECK_INT(sink_open(&kb, ya, &eb_env, &eb), RTS_ERR_OK);
    CHECK_INT(rts_sink_share_count(sh), 1);
    /* other options: a producer of its own; the same topic as a: also */
    snprintf(yc, sizeof(yc), "sink:\n  type: kafka\n  topic: tb\n  kafka: {log_level: 3}\n");
    CHECK_INT(sink_open(&kc, yc, &ec, &eb), RTS_ERR_OK);
    CHECK_INT(rts_sink_share_count(sh), 2);
    snprintf(ya, sizeof(ya), "sink:\n  type: kafka\n  topic: ta\n%s", opts);
    CHECK_INT(sink_open(&kd, ya, &ed, &eb), RTS_ERR_OK);
    CHECK_INT(rts_sink_share_count(sh), 2); /* not registered: not shareable under that key */

    /* records 0..99 to a (tokens 1..100 but every 10th), 100..199 to b, and
     * one too large for message.max.bytes to b */
    write_records(&ka, 0, 100);
    write_records(&kb, 100, 100);
    memset(big, 'x', sizeof(big));
    big[sizeof(big) - 1] = '\n';
    rec.len = sizeof(big);
    rec.token = 900;
    b.len = sizeof(big);
    CHECK_INT(S->write(kb.ctx, &b, &eb), RTS_SINK_OK);
    CHECK_INT(S->flush(ka.ctx, &eb), RTS_ERR_OK);
    CHECK_INT(S->flush(kb.ctx, &eb), RTS_ERR_IO);
    CHECK(strstr(eb.msg, "dlq: 1 records failed delivery to 'tb'") != NULL);
    pthread_mutex_lock(&aa.mu);
    CHECK_INT(aa.n, 90);
    CHECK_INT(aa.ok, 90);
    CHECK_INT(aa.twice, 0);
    for (int i = 0; i < 100; i++) {
        CHECK_INT(aa.seen[i + 1], i % 10 != 0);
        CHECK_INT(aa.seen[i + 101], 0); /* none of b's */
    }
    pthread_mutex_unlock(&aa.mu);
    pthread_mutex_lock(&ab.mu);
    CHECK_INT(ab.n, 91);
    CHECK_INT(ab.ok, 90);
    CHECK_INT(ab.bad_with_reason, 1);
    CHECK_INT(ab.seen[900], 1);
    CHECK_INT(ab.twice, 0);
    for (int i = 0; i < 100; i++) {
        CHECK_INT(ab.seen[i + 1], 0); /* none of a's */
        CHECK_INT(ab.seen[i + 101], i % 10 != 0);
    }
    pthread_mutex_unlock(&ab.mu);
    CHECK_INT(read_back(&c, "ta", 2, 0, 100, &dups, 1), 100);
    CHECK_INT(dups, 0);

    /* a closes with records in flight: b goes on alone */
    write_records(&ka, 200, 50);
    sink_close(&ka);
    write_records(&kb, 300, 100);
    CHECK_INT(S->flush(kb.ctx, &eb), RTS_ERR_OK);
    pthread_mutex_lock(&ab.mu);
    CHECK_INT(ab.ok, 180);
    CHECK_INT(ab.twice, 0);
    pthread_mutex_unlock(&ab.mu);
    pthread_mutex_lock(&aa.mu);
    CHECK(aa.n <= 90 + 45); /* at most the ones delivered before its fini */
    CHECK_INT(aa.bad, 0);
    pthread_mutex_unlock(&aa.mu);
    CHECK_INT(rts_sink_share_count(sh), 2); /* b's (and a's) and c's */
    sink_close(&kb);
    CHECK_INT(rts_sink_share_count(sh), 1); /* c's */
    sink_close(&kc);
    sink_close(&kd);
    CHECK_INT(rts_sink_share_count(sh), 0);
    rts_sink_share_free(sh);
    cluster_stop(&c);
    pthread_mutex_destroy(&aa.mu);
    pthread_mutex_destroy(&ab.mu);
    pthread_mutex_destroy(&ac.mu);
    pthread_mutex_destroy(&ad.mu);
}

/* ---- tests: configuration ---- */

static void expect_src_error(const char *kafka_yaml, const char *start, const char *want)
{
    struct src s;
    struct rts_errbuf eb = {0};
    char yaml[1024];

    snprintf(yaml, sizeof(yaml),
             "source:\n  type: kafka\n  brokers: 127.0.0.1:1\n  topic: t\n  group: g\n%s"
             "  kafka:\n%s",
             start, kafka_yaml);
    CHECK_INT(src_open(&s, yaml, &eb), RTS_ERR_INVAL);
    if (!strstr(eb.msg, want)) {
        fprintf(stderr, "  message '%s' lacks '%s'\n", eb.msg, want);
        CHECK(!"message");
    }
    src_close(&s);
}

TEST(passthrough_errors)
{
    struct sink k;
    struct rts_errbuf eb = {0};
    struct rts_sink_env env = {on_ack, NULL, "alerts.sink", NULL, NULL};
    struct rts_conf *doc;
    void *ctx;
    const char *yaml;

    expect_src_error("    security.protocol: plaintext\n    no.such.property: 1\n", "",
                     "t.yaml:8:5: source.kafka.no.such.property: unknown librdkafka property");
    expect_src_error("    session.timeout.ms: soon\n", "", "t.yaml:7:25: source.kafka.session");
    expect_src_error("    group.id: other\n", "",
                     "source.kafka.group.id: set by rtscore; use "
                     "source.group");
    expect_src_error("    enable.auto.commit: true\n", "", "source.kafka.enable.auto.commit");
    expect_src_error("    sasl: {mechanism: PLAIN}\n", "", "source.kafka.sasl: expected a value");
    expect_src_error("    auto.offset.reset: earliest\n", "  start: latest\n",
                     "source.start and source.kafka.auto.offset.reset are both set");
    expect_src_error("    fetch.max.bytes: 1048576\n", "  start: beginning\n",
                     "source.start: expected earliest or latest");

    /* the same checks without connecting, as `rtscore check` runs them */
    yaml = "source: {type: kafka, brokers: x, topic: \"a,,b\", group: g}\n";
    doc = rts_conf_parse("c.yaml", yaml, strlen(yaml), &eb);
    ctx = rts_opt_ctx_new(K->opts, K->ctx_size, rts_conf_get(rts_conf_root(doc), "source"),
                          "source", src_ignore, &eb);
    CHECK(ctx != NULL);
    CHECK_INT(K->check(ctx, "source", &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "source.topic: expected topic names") != NULL);
    free(ctx);
    rts_conf_free(doc);

    /* sinks: the key path is the sink's */
    CHECK_INT(sink_open(&k,
                        "sink:\n  type: kafka\n  brokers: b:1\n  topic: o\n"
                        "  kafka: {linger.ms: 5, bogus.key: 1}\n",
                        &env, &eb),
              RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "t.yaml:5:25: alerts.sink.kafka.bogus.key: unknown librdkafka") != NULL);
    sink_close(&k);
    CHECK_INT(sink_open(&k, "sink:\n  type: kafka\n  topic: o\n", &env, &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "alerts.sink.brokers: required") != NULL);
    sink_close(&k);
    CHECK_INT(sink_open(&k,
                        "sink:\n  type: kafka\n  topic: o\n  brokers: b:1\n"
                        "  kafka: {bootstrap.servers: x}\n",
                        &env, &eb),
              RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "alerts.sink.kafka.bootstrap.servers: set by rtscore; use "
                         "alerts.sink.brokers") != NULL);
    sink_close(&k);
    /* good options: init succeeds without a broker to talk to */
    CHECK_INT(sink_open(&k,
                        "sink:\n  type: kafka\n  topic: o\n  brokers: 127.0.0.1:1\n"
                        "  kafka: {compression.type: lz4, log_level: 0}\n",
                        &env, &eb),
              RTS_ERR_OK);
    CHECK_INT(S->check(k.ctx, "sink", &eb), RTS_ERR_OK);
    sink_close(&k);
    CHECK(rts_source_find("kafka") == K);
    CHECK(rts_sink_find("kafka") == S);
    CHECK(S->async_ack);
}

/* RTS_KAFKA_TEST=name runs that test only */
#define RUN_SOME(name)                                                                             \
    do {                                                                                           \
        const char *only_ = getenv("RTS_KAFKA_TEST");                                              \
        if (!only_ || strcmp(only_, #name) == 0) {                                                 \
            RUN(name);                                                                             \
        }                                                                                          \
    } while (0)

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

int main(void)
{
#ifdef UNDER_TSAN
    /* librdkafka (Debian's build) starts its threads with C11 thrd_create,
     * which this TSan does not intercept: it crashes in those threads. The
     * lock-free part, the offsets tracker, runs under TSan in test_offsets. */
    fprintf(stderr, "test_kafka: not run under TSan (librdkafka's C11 threads)\n");
    return 0;
#endif
    rts_log_set_level(getenv("RTS_KAFKA_DEBUG") ? RTS_LOG_DEBUG : RTS_LOG_ERROR);
    RUN_SOME(passthrough_errors);
    RUN_SOME(sink_delivers_with_key_and_headers);
    RUN_SOME(sink_survives_a_broker_down);
    RUN_SOME(sink_reports_failed_deliveries);
    RUN_SOME(sinks_share_a_producer);
    RUN_SOME(commit_only_after_release_in_order);
    RUN_SOME(restart_resumes_from_committed);
    RUN_SOME(rebalance_moves_partitions);
    RUN_SOME(paused_partition_moves_and_comes_back);
    RUN_SOME(pause_and_resume);
    RUN_SOME(serve_poll_keeps_the_batch);
    RUN_SOME(max_inflight_pauses_a_partition);
    RUN_SOME(one_topic_per_poll);
    RUN_SOME(authorization_error_is_fatal);
    RUN_SOME(fini_with_cluster_down);
    RUN_SOME(fini_with_messages_left);
    return TEST_EXIT();
}
