/*
 * daemon.c - threads, queues, output batching, counters and the report of a
 * running pipeline. See daemon.h for the threading model.
 *
 * Counters and histograms are per thread with a single writer each; the
 * writer stores with relaxed atomics and readers merge with relaxed loads,
 * so the per-event path has no lock and no read-modify-write.
 *
 * Output: each thread batches records per sink in its own buffer (struct
 * outbuf) and hands a batch to the sink when the buffer is full or when its
 * queue runs dry, so sinks see one call per batch, not per event.
 */
#include "daemon/daemon.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/ring.h"
#include "daemon/serve.h"
#include "guard/dedup.h"
#include "model/drift.h"
#include "model/registry.h"
#include "serve/notify.h"

static atomic_int stop_flag; /* lock-free, so safe to store from a signal handler */

void rts_stop_request(void)
{
    atomic_store_explicit(&stop_flag, 1, memory_order_relaxed);
}

int rts_stop_requested(void)
{
    return atomic_load_explicit(&stop_flag, memory_order_relaxed);
}

static atomic_int reload_flag;

void rts_reload_request(void)
{
    atomic_store_explicit(&reload_flag, 1, memory_order_relaxed);
}

/* 1 once per request (the request is consumed). */
static int reload_requested(void)
{
    return atomic_exchange_explicit(&reload_flag, 0, memory_order_relaxed);
}

#define BUMP(x, n) __atomic_store_n(&(x), (x) + (n), __ATOMIC_RELAXED)
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define POLL_BATCH 256
#define OUT_FLUSH_BYTES (64 * 1024)
#define OUT_MAX_RECS 1024
#define OUT_MAX_AGE_NS (1000 * 1000) /* a busy worker hands over records this old */
#define WORKER_SPIN_NS (50 * 1000)
#define WORKER_PREFAULT_STEP (16 * 1024) /* 4 pages: a few microseconds */
#define SINK_RETRY_NS (30ull * 1000 * 1000 * 1000) /* a full sink, when stopping */
#define PRED_MAX 8 /* models a worker keeps prediction counts of (a swap adds one) */
#define DRIFT_CHECK_NS (10ull * 1000 * 1000 * 1000) /* how often drift is looked at */
#define DRIFT_MIN_ROWS 1000                          /* fewer rows in the window: too few to tell */

struct sink_inst {
    const struct rts_sink_ops *ops;
    void *ctx;
    const char *path; /* config key, for messages */
    int ready;
    struct rts_sink_env env;
    struct rts_daemon *d;
};

struct outbuf {
    struct sink_inst *sink;
    char *buf;
    size_t len, cap, rec_max;
    struct rts_rec *recs;
    size_t n;
    uint64_t first_ns; /* when the oldest record in the buffer came */
};

/* queue record header, followed by the decoded event record */
struct qhdr {
    uint64_t ingest_ns;
    uint64_t size;  /* bytes of the decoded record */
    uint64_t token; /* the source's acknowledgement token; 0 = none */
};

struct worker {
    struct rts_daemon *d;
    int id;
    pthread_t tid;
    int started;
    struct rts_ring *ring;
    struct rts_eval ev;
    struct outbuf scores, alerts;
    uint64_t scored, alerts_n, by_fallback;
    uint64_t *by_rule;
    uint64_t budget[RTS_STAGE__COUNT];
    struct rts_hist hist[RTS_STAGE__COUNT];
    struct rts_hist hist_batch; /* events per batch */
    struct rts_hist hist_score; /* scores in millionths */
    struct rts_hist hist_e2e;   /* event time to emitted, ns (events from the past only) */
    uint64_t beat_ns;           /* the worker's loop last went round (health) */
    struct rts_accuracy acc;    /* with opts.label */
    struct rts_registry_reader *rd; /* the models of each batch */
    struct rts_dedup *dedup;        /* with dedup: ids seen by this worker */
    uint64_t dups;                  /* events dropped as duplicates */
    struct outbuf shadow;       /* shadow records */
    struct rts_pred_count preds[PRED_MAX]; /* per model label; published by `used` */
    int pred_last;
    uint64_t shadow_n, shadow_agree; /* shadow scores, and decisions equal to the live one */
    struct rts_hist hist_shadow_diff; /* |shadow - live score| in millionths */
    struct rts_event *evs;      /* views of the batch's events */
    int64_t wall_ms;            /* wall clock at the batch's emit */
    int done;
};

struct rts_daemon {
    struct rts_pipeline *p;
    struct rts_daemon_opts opts;
    const struct rts_source_ops *src_ops;
    void *src_ctx;
    struct sink_inst scores, alerts, dlq, shadow;
    struct rts_registry *reg; /* model slots; NULL without a model */
    int nworkers;
    struct worker *w;
    int label_slot; /* frame slot of opts.label; -1 = none */
    const char *src_brokers; /* a kafka source's brokers: the kafka sinks' default */
    struct rts_sink_share *sink_share; /* what the sinks share (one Kafka producer) */
    struct rts_serve *serve; /* the HTTP control plane, when configured */
    uint64_t wd_interval_ns, wd_last_ns; /* systemd watchdog */
    uint64_t drift_checked_ns;
    int stopping_sent;
    /* source thread */
    pthread_t src_tid;
    int src_started, src_done;
    uint64_t src_beat_ns;
    int src_paused;  /* source thread only */
    uint64_t pauses; /* times the source was paused for backpressure */
    struct outbuf src_dlq;
    char *scratch; /* one decoded record */
    size_t scratch_cap;
    uint64_t in, dlq_n;
    uint64_t dlq_by_reason[RTS_DLQ__COUNT];
    uint64_t budget_decode;
    struct rts_hist hist_decode;
    /* run */
    uint64_t t0_ns, t1_ns;
    pthread_t hk_tid;
    int hk_started, hk_stop;
    int failed;
    pthread_mutex_t fail_mu;
    struct rts_errbuf fail;
};

/* ---- failure: the first one wins and stops the pipeline ---- */

static void daemon_fail(struct rts_daemon *d, const struct rts_errbuf *eb)
{
    pthread_mutex_lock(&d->fail_mu);
    if (!d->failed) {
        d->fail = *eb;
        __atomic_store_n(&d->failed, 1, __ATOMIC_RELEASE);
        rts_log(RTS_LOG_ERROR, "pipeline failed", "error=\"%s\"", eb->msg);
    }
    pthread_mutex_unlock(&d->fail_mu);
}

static int daemon_failed(const struct rts_daemon *d)
{
    return __atomic_load_n(&d->failed, __ATOMIC_ACQUIRE);
}

/* ---- output batching ---- */

static enum rts_err outbuf_init(struct outbuf *o, struct sink_inst *s, size_t rec_max)
{
    o->sink = s;
    if (!s->ops) {
        return RTS_ERR_OK;
    }
    o->rec_max = rec_max;
    o->cap = OUT_FLUSH_BYTES + rec_max;
    o->buf = malloc(o->cap);
    o->recs = calloc(OUT_MAX_RECS, sizeof(*o->recs));
    return o->buf && o->recs ? RTS_ERR_OK : RTS_ERR_NOMEM;
}

static void outbuf_fini(struct outbuf *o)
{
    free(o->buf);
    free(o->recs);
}

static void outbuf_flush(struct rts_daemon *d, struct outbuf *o)
{
    struct rts_batch b = {o->buf, o->len, o->recs, o->n};
    struct rts_errbuf eb = {0};
    enum rts_sink_status st;

    if (o->n == 0) {
        return;
    }
    uint64_t t0 = rts_now_ns();

    /* a full sink is waited for, also while draining for a stop (what is
     * batched must be delivered), for at most SINK_RETRY_NS then */
    while ((st = o->sink->ops->write(o->sink->ctx, &b, &eb)) == RTS_SINK_RETRY) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        if (daemon_failed(d) || (rts_stop_requested() && rts_now_ns() - t0 > SINK_RETRY_NS)) {
            rts_errf(&eb, RTS_ERR_TIMEOUT, 0, 0, "the sink took no records for %.0f s",
                     (double)(rts_now_ns() - t0) / 1e9);
            st = RTS_SINK_ERROR;
            break;
        }
        nanosleep(&ts, NULL);
    }
    if (st != RTS_SINK_OK) {
        rts_err_prefix(&eb, o->sink->path);
        daemon_fail(d, &eb);
    } else if (!o->sink->ops->async_ack && d->src_ops->release) {
        /* written: a synchronous sink's records are acknowledged now */
        for (size_t i = 0; i < o->n; i++) {
            if (o->recs[i].token) {
                d->src_ops->release(d->src_ctx, o->recs[i].token);
            }
        }
    }
    o->len = 0;
    o->n = 0;
}

/* Room for one more record of up to rec_max bytes: flush first if needed. */
static char *outbuf_room(struct rts_daemon *d, struct outbuf *o)
{
    if (o->len + o->rec_max > o->cap || o->n == OUT_MAX_RECS) {
        outbuf_flush(d, o);
    }
    return o->buf + o->len;
}

static void outbuf_commit(struct rts_daemon *d, struct outbuf *o, size_t len,
                          const struct rts_event *ev, uint64_t token, const char *model)
{
    struct rts_rec *r = &o->recs[o->n++];

    if (o->n == 1) {
        o->first_ns = rts_now_ns();
    }
    r->off = (uint32_t)o->len;
    r->len = (uint32_t)len;
    r->token = token;
    r->model.p = model;
    r->model.n = model ? (uint32_t)strlen(model) : 0;
    if (ev) {
        r->key = ev->key;
        r->id = ev->id;
    } else {
        memset(&r->key, 0, sizeof(r->key));
        memset(&r->id, 0, sizeof(r->id));
    }
    o->len += len;
    if (o->len >= OUT_FLUSH_BYTES) {
        outbuf_flush(d, o);
    }
}

/* The acknowledgement protocol of source.h: no-ops for sources without it. */
static void source_hold(struct rts_daemon *d, uint64_t token, unsigned n)
{
    if (token && n && d->src_ops->hold) {
        d->src_ops->hold(d->src_ctx, token, n);
    }
}

static void source_release(struct rts_daemon *d, uint64_t token)
{
    if (token && d->src_ops->release) {
        d->src_ops->release(d->src_ctx, token);
    }
}

/* A sink's delivery report (sink.h): a delivered output releases its hold;
 * an output lost for good stops the pipeline before its offset can be
 * committed. Any thread. */
static void sink_ack(void *arg, uint64_t token, int ok, const char *why)
{
    struct sink_inst *s = arg;
    struct rts_daemon *d = s->d;

    if (ok) {
        source_release(d, token);
    } else {
        struct rts_errbuf eb = {0};
        rts_errf(&eb, RTS_ERR_IO, 0, 0, "%s: a record could not be delivered: %s", s->path,
                 why ? why : "unknown error");
        daemon_fail(d, &eb);
    }
}

/* ---- sinks and source ---- */

static enum rts_err sink_open(struct rts_daemon *d, struct sink_inst *s,
                              const struct rts_sink_conf *sc, struct rts_errbuf *eb)
{
    static const char *const ignore[] = {"type", "emit_features", NULL};

    if (!sc->ops) {
        return RTS_ERR_OK;
    }
    s->ops = sc->ops;
    s->path = sc->path;
    s->d = d;
    s->env.ack = sink_ack;
    s->env.ack_arg = s;
    s->env.path = sc->path;
    s->env.brokers = d->src_brokers;
    s->env.share = d->sink_share;
    s->ctx = rts_opt_ctx_new(sc->ops->opts, sc->ops->ctx_size, sc->node, sc->path, ignore, eb);
    if (!s->ctx) {
        return RTS_ERR_INVAL;
    }
    if (s->ops->init(s->ctx, &s->env, eb)) {
        return eb ? eb->code : RTS_ERR_IO;
    }
    s->ready = 1;
    return RTS_ERR_OK;
}

static void sink_close(struct sink_inst *s)
{
    if (s->ready) {
        struct rts_errbuf eb = {0};
        if (s->ops->flush(s->ctx, &eb)) {
            rts_log(RTS_LOG_ERROR, "sink flush failed", "sink=%s error=\"%s\"", s->path, eb.msg);
        }
    }
    if (s->ops && s->ctx) {
        s->ops->fini(s->ctx);
    }
    free(s->ctx);
    memset(s, 0, sizeof(*s));
}

static void dead_letter(struct rts_daemon *d, struct outbuf *o, const struct rts_msg *m,
                        enum rts_dlq_reason reason, const char *field, const char *error)
{
    size_t len;

    BUMP(d->dlq_by_reason[reason], 1);
    BUMP(d->dlq_n, 1);
    if (!o->sink->ops) {
        source_release(d, m->token); /* no dlq sink: counted, and the count is reported */
        return;
    }
    len = rts_dlq_format(outbuf_room(d, o), o->rec_max, rts_dlq_reason_name(reason), field,
                         "decode", d->src_ops->label(d->src_ctx), m->partition, m->offset, error,
                         m->data, m->len, m->truncated);
    source_hold(d, m->token, 1); /* the DLQ record's delivery, then the decode is done */
    outbuf_commit(d, o, len, NULL, m->token, NULL);
    source_release(d, m->token);
}

/* ---- the source thread ---- */

static int route(const struct rts_daemon *d, uint64_t key_hash)
{
    /* high bits: the state tables index with the low ones */
    return (int)(((key_hash >> 32) * (uint64_t)d->nworkers) >> 32);
}

static void enqueue(struct rts_daemon *d, size_t size, uint64_t ingest_ns, uint64_t token)
{
    struct worker *w = &d->w[route(d, rts_record_key_hash(d->scratch))];
    size_t need = sizeof(struct qhdr) + size;
    struct qhdr *q;
    uint64_t served = rts_now_ns();

    while (!(q = rts_ring_reserve(w->ring, need))) {
        /* backpressure: the worker is behind; hand over DLQ output and wait.
         * A source that can pause (Kafka) stops fetching meanwhile, and is
         * still polled so that it keeps its group membership (with max 0,
         * which keeps the rest of the batch in hand valid). */
        outbuf_flush(d, &d->src_dlq);
        if (d->src_ops->pause && !d->src_paused) {
            d->src_ops->pause(d->src_ctx, 1);
            d->src_paused = 1;
            BUMP(d->pauses, 1);
        }
        rts_ring_wait_writable(w->ring, need, 10 * 1000 * 1000);
        if (d->src_paused && rts_now_ns() - served > 100 * 1000 * 1000) {
            struct rts_errbuf eb = {0};
            size_t n = 0;
            d->src_ops->poll(d->src_ctx, NULL, 0, &n, 0, &eb);
            served = rts_now_ns();
        }
        __atomic_store_n(&d->src_beat_ns, rts_now_ns(), __ATOMIC_RELAXED);
    }
    q->ingest_ns = ingest_ns;
    q->size = size;
    q->token = token;
    memcpy(q + 1, d->scratch, size);
    rts_ring_commit(w->ring, need);
}

static void source_message(struct rts_daemon *d, const struct rts_msg *m, uint64_t ingest_ns,
                           int64_t ingest_ms)
{
    const struct rts_pipeline_conf *c = d->p->conf;
    struct rts_decode_err err;
    uint64_t t0 = rts_now_ns(), dt;
    size_t size = 0;

    BUMP(d->in, 1);
    if (m->truncated) {
        char msg[128];
        snprintf(msg, sizeof(msg), "message is longer than max_event_bytes %llu",
                 (unsigned long long)c->limits.max_event_bytes);
        dead_letter(d, &d->src_dlq, m, RTS_DLQ_TOO_LARGE, NULL, msg);
        return;
    }
    size = rts_decode(c->schema, m->data, m->len, c->limits.max_event_bytes, ingest_ms,
                      d->scratch, d->scratch_cap, &err);
    dt = rts_now_ns() - t0;
    rts_hist_add(&d->hist_decode, dt);
    if (c->budget_us[RTS_STAGE_DECODE] && dt > (uint64_t)c->budget_us[RTS_STAGE_DECODE] * 1000) {
        BUMP(d->budget_decode, 1);
    }
    if (!size) {
        const char *field =
            err.field >= 0 ? rts_schema_field(c->schema, (size_t)err.field)->name : NULL;
        dead_letter(d, &d->src_dlq, m, err.reason, field, err.msg);
        return;
    }
    enqueue(d, size, ingest_ns, m->token);
}

/* Names the calling thread for top -H, perf and /proc: @base, or @base-@id
 * when @id >= 0 (the kernel keeps 15 characters). */
static void name_thread(const char *base, int id)
{
    char name[32];

    if (id >= 0) {
        snprintf(name, sizeof(name), "%s-%d", base, id);
    } else {
        snprintf(name, sizeof(name), "%s", base);
    }
    name[15] = '\0';
    prctl(PR_SET_NAME, name, 0, 0, 0);
}

static void *source_main(void *arg)
{
    struct rts_daemon *d = arg;
    struct rts_msg msgs[POLL_BATCH];
    struct rts_errbuf eb = {0};

    name_thread("rts-source", -1);

    memset(msgs, 0, sizeof(msgs)); /* a source without acknowledgements leaves token 0 */
    /* a paced source sleeps between events: without this the kernel's default
     * 50 us timer slack turns a steady rate into bursts, each burst queueing */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    while (!rts_stop_requested() && !daemon_failed(d)) {
        size_t n = 0;
        __atomic_store_n(&d->src_beat_ns, rts_now_ns(), __ATOMIC_RELAXED);
        enum rts_src_status st = d->src_ops->poll(d->src_ctx, msgs, POLL_BATCH, &n, 100, &eb);
        uint64_t ingest_ns = rts_now_ns();
        int64_t ingest_ms = rts_wall_ms();

        if (st == RTS_SRC_ERROR) {
            daemon_fail(d, &eb);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            source_message(d, &msgs[i], ingest_ns, ingest_ms);
        }
        if (d->src_paused) {
            d->src_ops->pause(d->src_ctx, 0); /* everything in hand is queued */
            d->src_paused = 0;
        }
        outbuf_flush(d, &d->src_dlq);
        if (st == RTS_SRC_EOF) {
            break;
        }
    }
    outbuf_flush(d, &d->src_dlq);
    for (int i = 0; i < d->nworkers; i++) {
        rts_ring_close(d->w[i].ring);
    }
    __atomic_store_n(&d->src_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* ---- workers ---- */

static void worker_stage(struct worker *w, enum rts_stage s, uint64_t ns)
{
    const int64_t budget_us = w->d->p->conf->budget_us[s];

    rts_hist_add(&w->hist[s], ns);
    if (budget_us && ns > (uint64_t)budget_us * 1000) {
        BUMP(w->budget[s], 1);
    }
}

/* Prediction counts per model label: the entry of @b (found by label, as a
 * freed bundle's address may come back), or a new one while there is room. */
static void count_prediction(struct worker *w, const struct rts_bundle *b, int shadow)
{
    struct rts_pred_count *e = &w->preds[w->pred_last];

    if (!e->used || strcmp(e->label, b->label) != 0) {
        int i = 0;
        while (i < PRED_MAX && w->preds[i].used && strcmp(w->preds[i].label, b->label) != 0) {
            i++;
        }
        if (i == PRED_MAX) {
            return; /* more models than entries since the start: not counted by label */
        }
        e = &w->preds[i];
        w->pred_last = i;
        if (!e->used) {
            snprintf(e->label, sizeof(e->label), "%s", b->label);
            snprintf(e->name, sizeof(e->name), "%s", b->name);
            e->version = b->version;
            __atomic_store_n(&e->used, 1, __ATOMIC_RELEASE);
        }
    }
    if (shadow) {
        BUMP(e->shadow, 1);
    } else {
        BUMP(e->model, 1);
    }
}

/* The candidate's score of row @i in shadow mode: counted, compared with the
 * live decision, and written to the shadow sink as the candidate's record. */
static void worker_shadow(struct worker *w, size_t i, const struct qhdr *q,
                          const struct rts_event *ev)
{
    struct rts_daemon *d = w->d;
    const struct rts_pipeline *p = d->p;
    struct rts_eval_row *r = &w->ev.rows[i];
    double live = r->frame[p->slot_score].num, diff = fabs(r->shadow_score - live);

    count_prediction(w, w->ev.cand->bundle, 1);
    BUMP(w->shadow_n, 1);
    if (r->shadow_rule == r->rule) {
        BUMP(w->shadow_agree, 1);
    }
    rts_hist_add(&w->hist_shadow_diff, diff >= 1 ? 1000000 : (uint64_t)(diff * 1e6));
    if (d->shadow.ops) {
        struct rts_eval_row sr = *r;
        size_t len;
        sr.model = w->ev.cand;
        sr.rule = r->shadow_rule;
        sr.as_shadow = 1;
        r->frame[p->slot_score].num = r->shadow_score;
        len = rts_pipeline_format_score(p, &sr, ev, (rts_now_ns() - q->ingest_ns) / 1000, 0,
                                        outbuf_room(d, &w->shadow), w->shadow.rec_max);
        r->frame[p->slot_score].num = live;
        outbuf_commit(d, &w->shadow, len, ev, 0, w->ev.cand->bundle->label);
    }
}

/* Emit row @i of the evaluated batch and account for it. */
static void worker_emit(struct worker *w, size_t i, const struct qhdr *q,
                        const struct rts_event *ev)
{
    struct rts_daemon *d = w->d;
    const struct rts_pipeline *p = d->p;
    const struct rts_eval_row *r = &w->ev.rows[i];
    uint64_t t0 = rts_now_ns(), t1;
    char *out = outbuf_room(d, &w->scores);
    size_t len = rts_pipeline_format_score(p, r, ev, (t0 - q->ingest_ns) / 1000,
                                           p->conf->sink.emit_features, out, w->scores.rec_max);

    const char *model = r->model ? r->model->bundle->label : NULL;
    int alert = rts_pipeline_is_alert(p, r);

    /* one hold per output, then the processing hold goes: the offset is
     * committed once both records are delivered */
    source_hold(d, q->token, 1 + (alert && w->alerts.sink->ops));
    source_release(d, q->token);
    if (alert) {
        if (w->alerts.sink->ops) {
            memcpy(outbuf_room(d, &w->alerts), out, len);
            outbuf_commit(d, &w->alerts, len, ev, q->token, model);
        }
        BUMP(w->alerts_n, 1);
    }
    outbuf_commit(d, &w->scores, len, ev, q->token, model);
    t1 = rts_now_ns();
    if (p->lookup) {
        worker_stage(w, RTS_STAGE_LOOKUP, w->ev.lookup_ns); /* each row waited for the batch's */
    }
    worker_stage(w, RTS_STAGE_FEATURES, r->features_ns);
    if (r->by_model) {
        worker_stage(w, RTS_STAGE_MODEL, w->ev.model_ns); /* each row waited for the call */
    }
    worker_stage(w, RTS_STAGE_RULES, r->rules_ns);
    worker_stage(w, RTS_STAGE_EMIT, t1 - t0);
    worker_stage(w, RTS_STAGE_TOTAL, t1 - q->ingest_ns);
    if (!isnan(r->frame[p->slot_score].num)) {
        double sc = r->frame[p->slot_score].num;
        rts_hist_add(&w->hist_score, sc <= 0 ? 0 : sc >= 1 ? 1000000 : (uint64_t)(sc * 1e6));
    }
    if (w->wall_ms >= ev->ts_ms) {
        rts_hist_add(&w->hist_e2e, (uint64_t)(w->wall_ms - ev->ts_ms) * 1000000u);
    }
    if (d->label_slot >= 0) {
        double y = r->frame[d->label_slot].num;
        int positive = !isnan(y) && y != 0;
        if (r->by_model) {
            rts_accuracy_add(&w->acc, RTS_ACC_MODEL, positive, r->frame[p->slot_score].num,
                             r->rule);
        }
        rts_accuracy_add(&w->acc, RTS_ACC_FALLBACK, positive, r->fallback_score,
                         r->fallback_rule);
    }
    if (r->model) {
        count_prediction(w, r->model->bundle, 0);
    }
    if (!isnan(r->shadow_score)) {
        worker_shadow(w, i, q, ev);
    }
    BUMP(w->by_rule[r->rule + 1], 1);
    BUMP(w->scored, 1);
    if (p->bundle && !r->by_model) {
        BUMP(w->by_fallback, 1); /* the model's circuit was open */
    }
}

/* Take up to batch_max queued events. When fewer are queued and max_wait is
 * set, wait that long at most for more. */
static size_t worker_take(struct worker *w, const struct qhdr *q0, const struct qhdr **qs)
{
    const struct rts_pipeline_conf *c = w->d->p->conf;
    size_t n = 1, max = w->ev.batch_max, len;
    uint64_t deadline = 0;

    qs[0] = q0;
    for (;;) {
        const void *r;
        while (n < max && (r = rts_ring_peek_next(w->ring, qs[n - 1], &len))) {
            qs[n++] = r;
        }
        if (n == max || !c->batch_wait_us || rts_ring_closed(w->ring)) {
            return n;
        }
        if (!deadline) {
            deadline = rts_now_ns() + (uint64_t)c->batch_wait_us * 1000;
        } else if (rts_now_ns() >= deadline) {
            return n;
        }
        sched_yield();
    }
}

static void drift_tick(struct worker *w, const struct rts_model_ctx *m)
{
    if (m && m->counts) {
        rts_drift_tick(m->counts[w->id], rts_wall_ms() * 1000);
    }
}

/* Drop the events of @qs[0..n) whose id this worker saw within the dedup
 * horizon (counted, their offsets released); returns how many remain, in
 * order. */
static size_t worker_dedup(struct worker *w, const struct qhdr **qs, size_t n)
{
    int64_t now_us = rts_wall_ms() * 1000;
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        struct rts_str id = rts_record_id(qs[i] + 1);
        if (id.p && rts_dedup_seen(w->dedup, rts_hash64(id.p, id.n), now_us)) {
            BUMP(w->dups, 1);
            source_release(w->d, qs[i]->token);
            continue;
        }
        qs[k++] = qs[i];
    }
    return k;
}

static void worker_batch(struct worker *w, const struct qhdr *q0)
{
    const struct rts_schema *schema = w->d->p->conf->schema;
    const struct qhdr *qs[RTS_BATCH_MAX];
    size_t taken = worker_take(w, q0, qs), n = w->dedup ? worker_dedup(w, qs, taken) : taken;

    for (size_t i = 0; i < n; i++) {
        rts_event_view(schema, qs[i] + 1, &w->evs[i], w->ev.rows[i].vals);
    }
    if (w->rd) {
        /* the models of this whole batch: a worker switches between batches */
        const struct rts_registry_view *v = rts_registry_view(w->rd);
        w->ev.live = v->live.ctx;
        w->ev.cand = v->candidate.ctx;
        w->ev.canary_cut = v->canary_cut;
        w->ev.shadow = v->shadow;
        drift_tick(w, w->ev.live);
        drift_tick(w, w->ev.cand);
    }
    if (n) {
        rts_pipeline_eval_batch(w->d->p, &w->ev, w->evs, n);
    }
    w->wall_ms = rts_wall_ms();
    for (size_t i = 0; i < n; i++) {
        worker_emit(w, i, qs[i], &w->evs[i]);
    }
    if (n) {
        rts_hist_add(&w->hist_batch, n);
    }
    for (size_t i = 0; i < taken; i++) {
        size_t len;
        rts_ring_peek(w->ring, &len); /* release drops the record peek returned */
        rts_ring_release(w->ring);
    }
}

/* A worker that never runs dry would keep a rare output (alerts: about 1%
 * of events) in its buffer until 64 KiB of it have come, hundreds of
 * milliseconds at 50,000 events/s, and with a source that commits behind
 * acknowledgements (Kafka) every event of that partition after it waits
 * too, until the partition has max_inflight events in flight and is paused.
 * So after each batch, a buffer whose oldest record is OUT_MAX_AGE_NS old is
 * handed over: one write per sink and millisecond at most. */
static void worker_flush_old(struct worker *w)
{
    struct outbuf *const bufs[] = {&w->scores, &w->alerts, &w->shadow};
    uint64_t now = 0;

    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) {
        struct outbuf *o = bufs[i];
        if (o->n == 0) {
            continue;
        }
        if (!now) {
            now = rts_now_ns();
        }
        if (now - o->first_ns >= OUT_MAX_AGE_NS) {
            outbuf_flush(w->d, o);
        }
    }
}

static void worker_flush(struct worker *w)
{
    outbuf_flush(w->d, &w->scores);
    if (w->shadow.sink->ops) {
        outbuf_flush(w->d, &w->shadow);
    }
    if (w->alerts.sink->ops) {
        outbuf_flush(w->d, &w->alerts);
    }
}

/* An idle worker looks again for a short while before it sleeps: at
 * moderate rates the next event comes sooner than a futex sleep and wake-up
 * take (tens of microseconds in a VM). It yields the CPU meanwhile, so the
 * source thread is not starved when threads outnumber cores. 1 if a record
 * arrived. */
static int worker_spin(struct worker *w)
{
    uint64_t t0 = rts_now_ns();
    size_t n;

    do {
        if (rts_ring_peek(w->ring, &n)) {
            return 1;
        }
        sched_yield();
    } while (rts_now_ns() - t0 < WORKER_SPIN_NS);
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    name_thread("rts-worker", w->id);
    for (;;) {
        size_t n;
        const struct qhdr *q = rts_ring_peek(w->ring, &n);

        __atomic_store_n(&w->beat_ns, rts_now_ns(), __ATOMIC_RELAXED);
        if (!q) {
            worker_flush(w); /* idle: hand over what is batched */
            if (w->rd) {
                rts_registry_reader_idle(w->rd); /* old models may go meanwhile */
            }
            if (rts_ring_closed(w->ring)) {
                break;
            }
            if (!w->d->opts.no_idle_prefault &&
                rts_feature_worker_prefault(w->ev.fw, WORKER_PREFAULT_STEP)) {
                continue; /* commit what new keys and sketches take next, a step at a time */
            }
            if (!worker_spin(w)) {
                rts_ring_wait_readable(w->ring, 50 * 1000 * 1000);
            }
            continue;
        }
        worker_batch(w, q);
        worker_flush_old(w);
    }
    worker_flush(w);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* ---- the housekeeper ---- */

#ifndef SCHED_IDLE
#define SCHED_IDLE 5 /* Linux's idle class; <sched.h> names it only with _GNU_SOURCE */
#endif

/* Commits memory ahead of the workers (new keys, dense sketches) so that
 * their page faults happen here. It runs under SCHED_IDLE: only on a core
 * nothing else wants, and it gives way at once to the source and workers;
 * each step is at most 64 KiB, so it never holds a core for long. Idle
 * workers do the same in 16 KiB steps (worker_main): on a busy machine an
 * idle-class thread may not run for seconds, while a worker below
 * saturation is idle most of the time. */
static void *housekeeper_main(void *arg)
{
    struct rts_daemon *d = arg;
    struct sched_param sp = {0};

    name_thread("rts-housekeeper", -1);
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    while (!__atomic_load_n(&d->hk_stop, __ATOMIC_ACQUIRE)) {
        int more = 0;
        for (int i = 0; i < d->nworkers; i++) {
            more |= rts_feature_worker_prefault(d->w[i].ev.fw, 64 * 1024);
        }
        if (!more) {
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

/* ---- life cycle ---- */

static int online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

static enum rts_err worker_init(struct rts_daemon *d, struct worker *w, int id,
                                struct rts_errbuf *eb)
{
    const struct rts_pipeline *p = d->p;
    const struct rts_limits *l = &p->conf->limits;
    uint64_t keys = ((uint64_t)l->max_keys + (uint64_t)d->nworkers - 1) / (uint64_t)d->nworkers;
    size_t rec_max = rts_pipeline_record_max(p);

    w->d = d;
    w->id = id;
    w->ring = rts_ring_new(l->queue_bytes, (size_t)l->queue, eb);
    if (!w->ring) {
        return eb ? eb->code : RTS_ERR_NOMEM;
    }
    if (rts_eval_init(&w->ev, p, keys, (size_t)p->conf->batch_max, eb)) {
        return eb ? eb->code : RTS_ERR_NOMEM;
    }
    w->ev.no_prefetch = d->opts.no_lookahead;
    w->ev.with_fallback = d->label_slot >= 0;
    if (d->label_slot >= 0 && rts_accuracy_init(&w->acc, p->nrules)) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
    }
    w->by_rule = calloc(p->nrules + 1, sizeof(*w->by_rule));
    w->evs = calloc(w->ev.batch_max, sizeof(*w->evs));
    if (!w->by_rule || !w->evs || outbuf_init(&w->scores, &d->scores, rec_max) ||
        outbuf_init(&w->alerts, &d->alerts, rec_max) ||
        outbuf_init(&w->shadow, &d->shadow, rec_max)) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
    }
    w->ev.worker = id;
    if (p->conf->dedup.on) {
        uint64_t ids = ((uint64_t)p->conf->dedup.max_ids + (uint64_t)d->nworkers - 1) /
                       (uint64_t)d->nworkers;
        w->dedup = rts_dedup_new(p->conf->dedup.horizon_us, ids, eb);
        if (!w->dedup) {
            return eb ? eb->code : RTS_ERR_NOMEM;
        }
    }
    if (d->reg && !(w->rd = rts_registry_reader_new(d->reg, eb))) {
        return eb ? eb->code : RTS_ERR_NOMEM;
    }
    return RTS_ERR_OK;
}

/* ---- model slots ---- */

static enum rts_err reg_validate(void *arg, const struct rts_bundle *b, void **ctx,
                                 struct rts_errbuf *eb)
{
    struct rts_daemon *d = arg;

    *ctx = rts_model_ctx_new(d->p, b, d->nworkers, eb);
    return *ctx ? RTS_ERR_OK : eb && eb->code ? eb->code : RTS_ERR_INVAL;
}

static enum rts_err reg_warmup(void *arg, const struct rts_bundle *b, void *ctx,
                               struct rts_errbuf *eb)
{
    struct rts_daemon *d = arg;
    double row_ns, ms = rts_bundle_warm_up(b, &row_ns);

    (void)ctx;
    (void)eb;
    if (b == d->p->bundle || !d->p->warmup_ms) {
        d->p->warmup_ms = ms; /* the report's figure: the first model's */
        d->p->warmup_row_ns = row_ns;
    }
    rts_log(RTS_LOG_INFO, "model warmed up", "model=%s ms=%.1f row_ns=%.0f", b->label, ms, row_ns);
    return RTS_ERR_OK;
}

static void reg_release(void *arg, const struct rts_bundle *b, void *ctx)
{
    (void)arg;
    (void)b;
    rts_model_ctx_free(ctx);
}

/* The registry of model slots, with the pipeline's model live (loaded,
 * validated and warmed up before any event is read). */
static enum rts_err open_registry(struct rts_daemon *d, struct rts_errbuf *eb)
{
    const struct rts_pipeline_conf *c = d->p->conf;
    struct rts_registry_opts o = {
        .root = c->model_registry,
        .name = d->p->bundle->name,
        .max_readers = (unsigned)d->nworkers + 8,
        .hooks = {reg_validate, reg_warmup, reg_release, d},
    };

    d->reg = rts_registry_new(&o, eb);
    if (!d->reg || rts_registry_load(d->reg, d->p->bundle->dir, eb) ||
        rts_registry_promote(d->reg, eb)) {
        rts_err_prefix(eb, "model");
        return eb && eb->code ? eb->code : RTS_ERR_INVAL;
    }
    return RTS_ERR_OK;
}

struct rts_registry *rts_daemon_registry(const struct rts_daemon *d)
{
    return d->reg;
}

struct model_load {
    struct rts_registry *reg;
    const char *dir;
    long version;
    struct rts_errbuf *eb;
    enum rts_err rc;
};

static void *model_load_main(void *arg)
{
    struct model_load *ml = arg;

    name_thread("rts-model-load", -1);
    /* parsing and warming a model up take tens of milliseconds of CPU: at
     * the lowest priority, so it takes what the workers and the source leave
     * (nice 19 rather than the idle class: a saturated machine must still
     * finish a deployment, slowly, rather than never) */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) != 0) {
        rts_log(RTS_LOG_DEBUG, "model load at normal priority", "error=%d", errno);
    }
    ml->rc = ml->dir ? rts_registry_load(ml->reg, ml->dir, ml->eb)
                     : rts_registry_load_version(ml->reg, ml->version, ml->eb);
    return NULL;
}

enum rts_err rts_daemon_load_model(struct rts_daemon *d, const char *dir, long version,
                                   struct rts_errbuf *eb)
{
    struct model_load ml = {d->reg, dir, version, eb, RTS_ERR_OK};
    pthread_t tid;

    if (!d->reg) {
        return rts_errf(eb, RTS_ERR_CONFLICT, 0, 0, "the pipeline has no model section");
    }
    if (pthread_create(&tid, NULL, model_load_main, &ml) != 0) {
        model_load_main(&ml); /* no thread: load here, at this thread's priority */
        return ml.rc;
    }
    pthread_join(tid, NULL);
    return ml.rc;
}

struct rts_daemon *rts_daemon_new(struct rts_pipeline_conf *conf,
                                  const struct rts_daemon_opts *opts, struct rts_errbuf *eb)
{
    static const char *const src_ignore[] = {"type", NULL};
    struct rts_daemon *d = calloc(1, sizeof(*d));
    struct rts_source_env env;

    if (!d) {
        rts_pipeline_conf_free(conf);
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&d->fail_mu, NULL);
    if (opts) {
        d->opts = *opts;
    }
    d->p = rts_pipeline_new(conf, eb);
    if (!d->p) {
        goto fail;
    }
    conf = d->p->conf;
    d->nworkers = conf->workers ? conf->workers : online_cores();
    if (d->p->bundle && open_registry(d, eb)) {
        goto fail;
    }
    d->label_slot = -1;
    if (d->opts.label) {
        int f = rts_schema_find(conf->schema, d->opts.label, strlen(d->opts.label));
        if (f < 0 || rts_field_value_type(rts_schema_field(conf->schema, (size_t)f)->type) ==
                         RTS_T_STR) {
            rts_errf(eb, RTS_ERR_INVAL, 0, 0, "--label %s: not a numeric field of the event",
                     d->opts.label);
            goto fail;
        }
        d->label_slot = f; /* fields come first in the frame */
    }
    d->src_ops = conf->source_ops;
    d->src_ctx = rts_opt_ctx_new(d->src_ops->opts, d->src_ops->ctx_size, conf->source_node,
                                     "source", src_ignore, eb);
    if (!d->src_ctx) {
        goto fail;
    }
    env.max_event_bytes = conf->limits.max_event_bytes;
    if (d->src_ops->init(d->src_ctx, &env, eb)) {
        goto fail;
    }
    if (strcmp(d->src_ops->name, "kafka") == 0) {
        const struct rts_conf_node *b = rts_conf_get(conf->source_node, "brokers");
        d->src_brokers = b && b->kind == RTS_CONF_SCALAR ? b->str : NULL;
    }
    d->sink_share = rts_sink_share_new();
    if (!d->sink_share) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
        goto fail;
    }
    if (sink_open(d, &d->scores, &conf->sink, eb) || sink_open(d, &d->alerts, &conf->alerts, eb) ||
        sink_open(d, &d->dlq, &conf->dlq, eb) || sink_open(d, &d->shadow, &conf->shadow, eb)) {
        goto fail;
    }
    d->scratch_cap = rts_decode_record_max(conf->schema, conf->limits.max_event_bytes);
    d->scratch = aligned_alloc(8, (d->scratch_cap + 7) & ~(size_t)7);
    d->w = calloc((size_t)d->nworkers, sizeof(*d->w));
    if (!d->scratch || !d->w ||
        outbuf_init(&d->src_dlq, &d->dlq, rts_dlq_record_max(conf->limits.max_event_bytes))) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
        goto fail;
    }
    for (int i = 0; i < d->nworkers; i++) {
        if (worker_init(d, &d->w[i], i, eb)) {
            goto fail;
        }
    }
    if (eb) {
        eb->code = RTS_ERR_OK;
    }
    d->serve = rts_serve_new(d, eb);
    if (!d->serve && eb && eb->code) {
        goto fail;
    }
    return d;
fail:
    rts_daemon_free(d);
    return NULL;
}

const struct rts_pipeline *rts_daemon_pipeline(const struct rts_daemon *d)
{
    return d->p;
}

static void progress_line(const struct rts_daemon *d, double *last_t, uint64_t *last_n);

/* systemd (no-ops outside it): READY=1 once everything runs, WATCHDOG=1 at
 * half the watchdog interval while every thread makes progress, STOPPING=1
 * when a stop is requested. Errors are only worth a debug line. */
static void notify(struct rts_daemon *d, int tick)
{
    struct rts_errbuf eb = {0};
    char why[256];
    uint64_t now = rts_now_ns();

    if (!tick) {
        d->wd_interval_ns = rts_notify_watchdog_interval_ns();
        snprintf(why, sizeof(why), "scoring: pipeline %s, %d workers", d->p->conf->name,
                 d->nworkers);
        rts_notify_ready(why, &eb);
        return;
    }
    if (rts_stop_requested() && !d->stopping_sent) {
        d->stopping_sent = 1;
        rts_notify_stopping("draining", &eb);
    }
    if (d->wd_interval_ns && now - d->wd_last_ns >= d->wd_interval_ns &&
        rts_daemon_health(d, 10ull * 1000 * 1000 * 1000, why, sizeof(why))) {
        d->wd_last_ns = now;
        rts_notify_watchdog(&eb);
    }
}

/* Every DRIFT_CHECK_NS: a warning when an input or the score of the live
 * model has drifted past model.drift_warn (PSI over the drift window). */
static void drift_check(struct rts_daemon *d, int now_anyway)
{
    const struct rts_pipeline_conf *c = d->p->conf;
    uint64_t now = rts_now_ns();
    struct rts_errbuf eb = {0};
    struct rts_registry_reader *rd;
    const struct rts_model_ctx *m;

    if (!c->drift_warn || (!now_anyway && now - d->drift_checked_ns < DRIFT_CHECK_NS)) {
        return;
    }
    d->drift_checked_ns = now;
    rd = rts_registry_reader_new(d->reg, &eb);
    if (!rd) {
        return;
    }
    m = rts_registry_view(rd)->live.ctx;
    if (m && m->drift && rts_drift_active(m->drift)) {
        size_t n = rts_drift_nfeatures(m->drift);
        double *psi = calloc(n ? n : 1, sizeof(*psi)), psi_score = NAN;
        struct rts_drift_window win;
        char msg[512];
        if (psi && rts_drift_psi(m->drift, m->counts, (size_t)m->nworkers, rts_wall_ms() * 1000,
                                 psi, &psi_score, &win) == RTS_ERR_OK &&
            rts_drift_warnings(m->drift, psi, psi_score, &win, c->drift_warn, DRIFT_MIN_ROWS, msg,
                               sizeof(msg))) {
            rts_log(RTS_LOG_WARN, "model drift", "model=%s rows=%llu detail=\"%s\"",
                    m->bundle->label, (unsigned long long)win.rows, msg);
        }
        free(psi);
    }
    rts_registry_reader_idle(rd);
    rts_registry_reader_free(rd);
}

/* The main loop's chores, every 100 ms: free retired models, let stores
 * reload and expire, and on SIGHUP reread the file stores and load the
 * registry's newest version as the candidate. */
static void upkeep(struct rts_daemon *d)
{
    struct rts_errbuf eb = {0};
    const struct rts_pipeline_conf *c = d->p->conf;

    if (d->reg) {
        rts_registry_reclaim(d->reg);
        drift_check(d, 0);
    }
    if (d->p->lookup) {
        rts_lookup_tick(d->p->lookup, rts_now_ns());
    }
    if (!reload_requested()) {
        return;
    }
    for (size_t i = 0; i < c->nstores; i++) {
        if (rts_lookup_reload(d->p->lookup, c->stores[i].name, &eb)) {
            rts_log(RTS_LOG_ERROR, "store reload failed", "store=%s error=\"%s\"",
                    c->stores[i].name, eb.msg);
        }
    }
    if (d->reg && c->model_registry) {
        long *vs = NULL;
        size_t n = 0;
        struct rts_registry_info ri;
        rts_registry_info(d->reg, &ri);
        if (rts_registry_versions(c->model_registry, d->p->bundle->name, &vs, &n, &eb) == 0 &&
            n && vs[n - 1] > ri.live.version && vs[n - 1] != ri.candidate.version) {
            if (rts_daemon_load_model(d, NULL, vs[n - 1], &eb)) {
                rts_log(RTS_LOG_ERROR, "registry: newest version refused", "version=%ld error=\"%s\"",
                        vs[n - 1], eb.msg);
            } else {
                rts_log(RTS_LOG_INFO, "registry: newest version loaded as the candidate",
                        "version=%ld", vs[n - 1]);
            }
        }
        free(vs);
    }
}

enum rts_err rts_daemon_run(struct rts_daemon *d, struct rts_errbuf *eb)
{
    double last_t = 0;
    uint64_t last_n = 0;
    int all_done = 0;

    d->hk_started = !d->opts.no_housekeeper &&
                    pthread_create(&d->hk_tid, NULL, housekeeper_main, d) == 0;
    d->t0_ns = rts_now_ns();
    for (int i = 0; i < d->nworkers; i++) {
        if (pthread_create(&d->w[i].tid, NULL, worker_main, &d->w[i]) != 0) {
            rts_stop_request();
            break;
        }
        d->w[i].started = 1;
    }
    if (!rts_stop_requested() && pthread_create(&d->src_tid, NULL, source_main, d) == 0) {
        d->src_started = 1;
    } else {
        for (int i = 0; i < d->nworkers; i++) {
            rts_ring_close(d->w[i].ring);
        }
    }
    rts_log(RTS_LOG_INFO, "pipeline started", "pipeline=%s workers=%d source=%s",
            d->p->conf->name, d->nworkers, d->src_ops->name);
    notify(d, 0);
    d->drift_checked_ns = rts_now_ns(); /* the first look after a window's worth of traffic */
    while (!all_done) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        notify(d, 1);
        upkeep(d);
        all_done = 1;
        for (int i = 0; i < d->nworkers; i++) {
            all_done &= !d->w[i].started || __atomic_load_n(&d->w[i].done, __ATOMIC_ACQUIRE);
        }
        all_done &= !d->src_started || __atomic_load_n(&d->src_done, __ATOMIC_ACQUIRE);
        if (d->opts.progress) {
            progress_line(d, &last_t, &last_n);
        }
    }
    if (d->src_started) {
        pthread_join(d->src_tid, NULL);
        d->src_started = 0;
    }
    for (int i = 0; i < d->nworkers; i++) {
        if (d->w[i].started) {
            pthread_join(d->w[i].tid, NULL);
            d->w[i].started = 0;
        }
    }
    d->t1_ns = rts_now_ns();
    if (d->reg) {
        drift_check(d, 1); /* what the run saw, also when it was short */
    }
    if (d->hk_started) {
        __atomic_store_n(&d->hk_stop, 1, __ATOMIC_RELEASE);
        pthread_join(d->hk_tid, NULL);
        d->hk_started = 0;
    }
    if (d->opts.progress) {
        fputs("\r\033[K", stderr);
    }
    if (daemon_failed(d)) {
        if (eb) {
            *eb = d->fail;
        }
        return d->fail.code ? d->fail.code : RTS_ERR_IO;
    }
    return RTS_ERR_OK;
}

void rts_daemon_free(struct rts_daemon *d)
{
    if (!d) {
        return;
    }
    rts_serve_free(d->serve); /* first: its handlers read everything below */
    for (int i = 0; d->w && i < d->nworkers; i++) {
        struct worker *w = &d->w[i];
        rts_ring_free(w->ring);
        rts_eval_fini(&w->ev);
        free(w->by_rule);
        free(w->evs);
        rts_accuracy_fini(&w->acc);
        outbuf_fini(&w->scores);
        outbuf_fini(&w->alerts);
        outbuf_fini(&w->shadow);
        rts_registry_reader_free(w->rd);
        rts_dedup_free(w->dedup);
    }
    free(d->w);
    outbuf_fini(&d->src_dlq);
    free(d->scratch);
    sink_close(&d->scores);
    sink_close(&d->alerts);
    sink_close(&d->dlq);
    sink_close(&d->shadow);
    rts_sink_share_free(d->sink_share); /* after the last sink that shared */
    rts_registry_free(d->reg); /* after the readers (workers) */
    if (d->src_ctx) {
        d->src_ops->fini(d->src_ctx); /* safe after a failed or partial init */
    }
    free(d->src_ctx);
    rts_pipeline_free(d->p);
    pthread_mutex_destroy(&d->fail_mu);
    free(d);
}

/* ---- stats, progress, report ---- */

static void merge_pred(struct rts_daemon_stats *s, const struct rts_pred_count *e)
{
    int k = 0;

    if (!__atomic_load_n(&e->used, __ATOMIC_ACQUIRE)) {
        return;
    }
    while (k < s->npreds && strcmp(s->preds[k].label, e->label) != 0) {
        k++;
    }
    if (k == s->npreds) {
        if (k == RTS_STATS_PRED_MAX) {
            return;
        }
        s->preds[k] = *e;
        s->preds[k].model = s->preds[k].shadow = 0;
        s->npreds++;
    }
    s->preds[k].model += LOAD(e->model);
    s->preds[k].shadow += LOAD(e->shadow);
}

void rts_daemon_stats(const struct rts_daemon *d, struct rts_daemon_stats *s)
{
    size_t nr = d->p->nrules + 1;
    uint64_t end = d->t1_ns ? d->t1_ns : rts_now_ns();

    memset(s, 0, sizeof(*s));
    s->by_rule = calloc(nr, sizeof(*s->by_rule));
    if (d->label_slot >= 0 && rts_accuracy_init(&s->acc, d->p->nrules)) {
        s->acc.rules = NULL; /* out of memory: the report goes without */
    }
    if (d->p->lookup) {
        s->lookup_feat = calloc(rts_lookup_count(d->p->lookup) + 1, sizeof(*s->lookup_feat));
        s->lookup_store = calloc(rts_lookup_nstores(d->p->lookup) + 1, sizeof(*s->lookup_store));
        if (!s->lookup_feat || !s->lookup_store) {
            free(s->lookup_feat);
            free(s->lookup_store);
            s->lookup_feat = NULL;
            s->lookup_store = NULL;
        }
    }
    s->workers = d->nworkers;
    s->elapsed_s = d->t0_ns ? (double)(end - d->t0_ns) * 1e-9 : 0;
    s->in = LOAD(d->in);
    s->dlq = LOAD(d->dlq_n);
    s->pauses = LOAD(d->pauses);
    for (int r = 0; r < RTS_DLQ__COUNT; r++) {
        s->dlq_by_reason[r] = LOAD(d->dlq_by_reason[r]);
    }
    s->budget_exceeded[RTS_STAGE_DECODE] = LOAD(d->budget_decode);
    rts_hist_merge(&s->hist[RTS_STAGE_DECODE], &d->hist_decode);
    for (int i = 0; i < d->nworkers; i++) {
        const struct worker *w = &d->w[i];
        struct rts_feature_stats fs;

        s->scored += LOAD(w->scored);
        s->duplicates += LOAD(w->dups);
        s->by_fallback += LOAD(w->by_fallback);
        s->alerts += LOAD(w->alerts_n);
        for (size_t r = 0; s->by_rule && r < nr; r++) {
            s->by_rule[r] += LOAD(w->by_rule[r]);
        }
        for (int st = 0; st < RTS_STAGE__COUNT; st++) {
            if (st != RTS_STAGE_DECODE) {
                s->budget_exceeded[st] += LOAD(w->budget[st]);
                rts_hist_merge(&s->hist[st], &w->hist[st]);
            }
        }
        rts_hist_merge(&s->batch, &w->hist_batch);
        rts_hist_merge(&s->shadow_diff, &w->hist_shadow_diff);
        if (w->ev.lw) {
            rts_lookup_worker_stats_add(w->ev.lw, s->lookup_feat, s->lookup_store);
        }
        s->shadow += LOAD(w->shadow_n);
        s->shadow_agree += LOAD(w->shadow_agree);
        for (int k = 0; k < PRED_MAX; k++) {
            merge_pred(s, &w->preds[k]);
        }
        rts_hist_merge(&s->score, &w->hist_score);
        rts_hist_merge(&s->e2e, &w->hist_e2e);
        if (s->acc.rules) {
            rts_accuracy_merge(&s->acc, &w->acc);
        }
        rts_feature_worker_stats(w->ev.fw, &fs);
        s->state.keys += fs.keys;
        s->state.evicted += fs.evicted;
        s->state.expired += fs.expired;
        s->state.late += fs.late;
        s->state.exact_overflow += fs.exact_overflow;
        if (w->ev.sw) {
            /* the Redis window state counts these itself (the local table is unused) */
            struct rts_rstate_stats rs = {0};
            rts_rstate_worker_stats_add(w->ev.sw, &rs);
            s->state.late += rs.late;
            s->state.exact_overflow += rs.exact_overflow;
        }
        s->state.sketches_in_use += fs.sketches_in_use;
        s->state.sketches_exhausted += fs.sketches_exhausted;
        s->state.lists_in_use += fs.lists_in_use;
        s->state.key_bytes = fs.key_bytes;
        s->state.bytes_committed += fs.bytes_committed;
        s->queued += rts_ring_count(w->ring);
    }
}

void rts_daemon_stats_fini(struct rts_daemon_stats *s)
{
    free(s->by_rule);
    s->by_rule = NULL;
    rts_accuracy_fini(&s->acc);
    free(s->lookup_feat);
    free(s->lookup_store);
    s->lookup_feat = NULL;
    s->lookup_store = NULL;
}

static void human_count(char *buf, size_t cap, double v)
{
    if (v >= 1e6) {
        snprintf(buf, cap, "%.2fM", v / 1e6);
    } else if (v >= 1e4) {
        snprintf(buf, cap, "%.1fK", v / 1e3);
    } else {
        snprintf(buf, cap, "%.0f", v);
    }
}

static void human_ns(char *buf, size_t cap, uint64_t ns)
{
    if (ns >= 1000000000u) {
        snprintf(buf, cap, "%.2f s", (double)ns / 1e9);
    } else if (ns >= 1000000u) {
        snprintf(buf, cap, "%.2f ms", (double)ns / 1e6);
    } else {
        snprintf(buf, cap, "%.1f us", (double)ns / 1e3);
    }
}

/* decision label -> count, in order of first appearance among the rules */
static size_t decision_totals(const struct rts_daemon *d, const struct rts_daemon_stats *s,
                              const char **labels, uint64_t *counts, size_t max)
{
    size_t n = 0;

    for (size_t r = 0; r < d->p->nrules && s->by_rule; r++) {
        const char *lab = d->p->rules[r].decision.p;
        size_t k = 0;
        while (k < n && strcmp(labels[k], lab) != 0) {
            k++;
        }
        if (k == n) {
            if (n == max) {
                continue;
            }
            labels[n] = lab;
            counts[n++] = 0;
        }
        counts[k] += s->by_rule[r + 1];
    }
    return n;
}

static void progress_line(const struct rts_daemon *d, double *last_t, uint64_t *last_n)
{
    struct rts_daemon_stats s;
    const char *labels[16];
    uint64_t counts[16];
    char done[32], rate[32], p99[32], line[512];
    size_t nl, o;
    double dt;

    rts_daemon_stats(d, &s);
    dt = s.elapsed_s - *last_t;
    if (dt < 0.5) {
        rts_daemon_stats_fini(&s);
        return;
    }
    human_count(done, sizeof(done), (double)s.in);
    human_count(rate, sizeof(rate), (double)(s.scored + s.dlq - *last_n) / dt);
    human_ns(p99, sizeof(p99), rts_hist_quantile(&s.hist[RTS_STAGE_TOTAL], 0.99));
    *last_t = s.elapsed_s;
    *last_n = s.scored + s.dlq;
    o = (size_t)snprintf(line, sizeof(line), "\r\033[K%s events  %s ev/s  p99 %s  dlq %llu",
                         done, rate, p99, (unsigned long long)s.dlq);
    if (d->src_ops->lag) {
        struct rts_lag lags[64];
        size_t np = d->src_ops->lag(d->src_ctx, lags, 64);
        int64_t total = 0;
        for (size_t i = 0; i < np; i++) {
            total += lags[i].lag > 0 ? lags[i].lag : 0;
        }
        o += (size_t)snprintf(line + o, sizeof(line) - o, "  lag %lld", (long long)total);
    }
    nl = decision_totals(d, &s, labels, counts, 16);
    for (size_t i = 0; i < nl && o < sizeof(line) - 64; i++) {
        o += (size_t)snprintf(line + o, sizeof(line) - o, "  %s %.2f%%", labels[i],
                              s.scored ? 100.0 * (double)counts[i] / (double)s.scored : 0.0);
    }
    fputs(line, stderr);
    fflush(stderr);
    rts_daemon_stats_fini(&s);
}

/* ROC AUC and, per rule with a condition, precision and recall of the
 * events flagged by it or an earlier rule: the model against the fallback. */
static void report_accuracy(const struct rts_daemon *d, const struct rts_daemon_stats *s,
                            FILE *out)
{
    static const char *const names[RTS_ACC__COUNT] = {"model", "fallback score"};
    const struct rts_pipeline *p = d->p;
    uint64_t pos, rows = rts_accuracy_rows(&s->acc, RTS_ACC_FALLBACK, &pos);
    size_t ncut = 0;

    while (ncut < p->nrules && ncut < 3 && p->rules[ncut].when) {
        ncut++;
    }
    fprintf(out, "  accuracy   against %s: %llu of %llu events positive (%.2f%%)\n",
            d->opts.label, (unsigned long long)pos, (unsigned long long)rows,
            rows ? 100.0 * (double)pos / (double)rows : 0.0);
    fprintf(out, "             %-16s %7s", "scorer", "ROC AUC");
    for (size_t r = 0; r < ncut; r++) {
        char head[48];
        snprintf(head, sizeof(head), "%s%s: precision recall", p->rules[r].decision.p,
                 r ? " or above" : "");
        fprintf(out, "   %32s", head);
    }
    fprintf(out, "\n");
    for (int sc = 0; sc < RTS_ACC__COUNT; sc++) {
        uint64_t n = rts_accuracy_rows(&s->acc, (enum rts_acc_scorer)sc, &pos);
        if (!n) {
            continue;
        }
        fprintf(out, "             %-16s %7.3f", names[sc],
                rts_accuracy_auc(&s->acc, (enum rts_acc_scorer)sc));
        for (size_t r = 0; r < ncut; r++) {
            uint64_t flagged, tp;
            rts_accuracy_flagged(&s->acc, (enum rts_acc_scorer)sc, r, &flagged, &tp);
            fprintf(out, "   %20s%6.3f %6.3f", "", flagged ? (double)tp / (double)flagged : 0.0,
                    pos ? (double)tp / (double)pos : 0.0);
        }
        fprintf(out, "\n");
    }
}

void rts_daemon_report(const struct rts_daemon *d, FILE *out)
{
    const struct rts_pipeline_conf *c = d->p->conf;
    struct rts_daemon_stats s;
    const char *labels[16];
    uint64_t counts[16];
    size_t nl;
    char b[4][32];

    rts_daemon_stats(d, &s);
    fprintf(out, "%s: pipeline %s, %d workers, source %s\n",
            d->opts.title ? d->opts.title : "rtscore", c->name, s.workers, d->src_ops->name);
    fprintf(out, "  events     %llu in %.2f s: %.0f events/s\n", (unsigned long long)s.in,
            s.elapsed_s, s.elapsed_s > 0 ? (double)s.in / s.elapsed_s : 0.0);
    fprintf(out, "  outcomes   scored %llu, dlq %llu, duplicate %llu, shed %llu\n",
            (unsigned long long)s.scored, (unsigned long long)s.dlq,
            (unsigned long long)s.duplicates, (unsigned long long)s.shed);
    fprintf(out, "  latency    %-10s %10s %10s %10s %10s\n", "stage", "p50", "p95", "p99", "max");
    for (int st = 0; st < RTS_STAGE__COUNT; st++) {
        const struct rts_hist *h = &s.hist[st];
        if (h->count == 0) {
            continue;
        }
        human_ns(b[0], sizeof(b[0]), rts_hist_quantile(h, 0.50));
        human_ns(b[1], sizeof(b[1]), rts_hist_quantile(h, 0.95));
        human_ns(b[2], sizeof(b[2]), rts_hist_quantile(h, 0.99));
        human_ns(b[3], sizeof(b[3]), h->max);
        fprintf(out, "             %-10s %10s %10s %10s %10s\n", rts_stage_name((enum rts_stage)st),
                b[0], b[1], b[2], b[3]);
    }
    nl = decision_totals(d, &s, labels, counts, 16);
    fprintf(out, "  decisions ");
    for (size_t i = 0; i < nl; i++) {
        fprintf(out, " %s %llu (%.2f%%)%s", labels[i], (unsigned long long)counts[i],
                s.scored ? 100.0 * (double)counts[i] / (double)s.scored : 0.0,
                i + 1 < nl ? "," : "");
    }
    if (s.by_rule && s.by_rule[0]) {
        fprintf(out, "%s no rule matched %llu", nl ? "," : "", (unsigned long long)s.by_rule[0]);
    }
    fprintf(out, "\n");
    if (d->p->bundle) {
        fprintf(out, "  model     ");
        for (int k = 0; k < s.npreds; k++) {
            if (s.preds[k].model) {
                fprintf(out, " %s scored %llu,", s.preds[k].label,
                        (unsigned long long)s.preds[k].model);
            }
        }
        for (int k = 0; k < s.npreds; k++) {
            if (s.preds[k].shadow) {
                fprintf(out, " %s shadow-scored %llu (same decision %.2f%%),", s.preds[k].label,
                        (unsigned long long)s.preds[k].shadow,
                        s.shadow ? 100.0 * (double)s.shadow_agree / (double)s.shadow : 0.0);
            }
        }
        fprintf(out, " the fallback %llu", (unsigned long long)s.by_fallback);
        if (d->p->breaker) {
            struct rts_breaker_stats bs;
            rts_breaker_stats(d->p->breaker, &bs);
            fprintf(out, "; circuit %s, opened %llu times",
                    rts_breaker_state_name(rts_breaker_state(d->p->breaker)),
                    (unsigned long long)bs.transitions[RTS_BREAKER_CLOSED_OPEN]);
        }
        if (s.batch.count) {
            fprintf(out, "; batches of %.1f events on average (p99 %llu, max %d)",
                    (double)s.batch.sum / (double)s.batch.count,
                    (unsigned long long)rts_hist_quantile(&s.batch, 0.99), c->batch_max);
        }
        fprintf(out, "; warm-up %.0f ms", d->p->warmup_ms);
        fprintf(out, "\n");
    }
    if (s.acc.rules) {
        report_accuracy(d, &s, out);
    }
    for (size_t i = 0; s.lookup_store && i < rts_lookup_nstores(d->p->lookup); i++) {
        const struct rts_lookup_store_stats *st = &s.lookup_store[i];
        fprintf(out,
                "  lookups    %s: %llu keys, %.1f%% from the cache, %llu fetched in %llu calls, "
                "%llu errors, %llu timeouts, %llu events degraded\n",
                rts_lookup_store_name(d->p->lookup, i), (unsigned long long)st->keys,
                st->keys ? 100.0 * (double)st->hits / (double)st->keys : 0.0,
                (unsigned long long)st->fetched, (unsigned long long)st->calls,
                (unsigned long long)st->errors, (unsigned long long)st->timeouts,
                (unsigned long long)st->degraded);
    }
    if (d->alerts.ops) {
        fprintf(out, "  alerts     %llu\n", (unsigned long long)s.alerts);
    }
    fprintf(out, "  dlq       ");
    if (s.dlq == 0) {
        fprintf(out, " none");
    }
    for (int r = 0, first = 1; r < RTS_DLQ__COUNT; r++) {
        if (s.dlq_by_reason[r]) {
            fprintf(out, "%s %s %llu", first ? "" : ",", rts_dlq_reason_name((enum rts_dlq_reason)r),
                    (unsigned long long)s.dlq_by_reason[r]);
            first = 0;
        }
    }
    fprintf(out, "%s\n", d->dlq.ops || s.dlq == 0 ? "" : " (no dlq sink: counted only)");
    if (s.pauses) {
        fprintf(out, "  paused     the source %llu times: worker queues were full (backpressure)\n",
                (unsigned long long)s.pauses);
    }
    if (d->p->rstate) {
        struct rts_rstate_stats rs = {0};
        for (int i = 0; i < d->nworkers; i++) {
            rts_rstate_worker_stats_add(d->w[i].ev.sw, &rs);
        }
        fprintf(out,
                "  state      %s: %llu round trips, %llu errors, %llu timeouts, %llu refused by "
                "the open circuit, %llu events degraded, late events %llu, exact window "
                "overflows %llu\n",
                rts_rstate_label(d->p->rstate), (unsigned long long)rs.batches,
                (unsigned long long)rs.errors, (unsigned long long)rs.timeouts,
                (unsigned long long)rs.refused, (unsigned long long)rs.degraded,
                (unsigned long long)rs.late, (unsigned long long)rs.exact_overflow);
    } else {
        fprintf(out,
                "  state      %llu keys, %zu bytes per key, %.1f MiB in use; evicted %llu, "
                "expired %llu, late events %llu, exact window overflows %llu\n",
                (unsigned long long)s.state.keys, s.state.key_bytes,
                (double)s.state.bytes_committed / (1024.0 * 1024.0),
                (unsigned long long)s.state.evicted, (unsigned long long)s.state.expired,
                (unsigned long long)s.state.late, (unsigned long long)s.state.exact_overflow);
    }
    if (s.state.sketches_in_use || s.state.lists_in_use || s.state.sketches_exhausted) {
        fprintf(out,
                "  distinct   %llu list blocks (exact), %llu dense HyperLogLog sketches in use, "
                "pool exhausted %llu times\n",
                (unsigned long long)s.state.lists_in_use,
                (unsigned long long)s.state.sketches_in_use,
                (unsigned long long)s.state.sketches_exhausted);
    }
    for (int st = 0; st < RTS_STAGE__COUNT; st++) {
        if (s.budget_exceeded[st]) {
            fprintf(out, "  budget     %s exceeded %llu times\n",
                    rts_stage_name((enum rts_stage)st), (unsigned long long)s.budget_exceeded[st]);
        }
    }
    rts_daemon_stats_fini(&s);
}

/* ---- for the control plane ---- */

int rts_daemon_nworkers(const struct rts_daemon *d)
{
    return d->nworkers;
}

void rts_daemon_worker_info(const struct rts_daemon *d, int i, struct rts_daemon_worker_info *wi)
{
    const struct worker *w = &d->w[i];
    struct rts_feature_stats fs;

    rts_feature_worker_stats(w->ev.fw, &fs);
    wi->queued = rts_ring_count(w->ring);
    wi->keys = fs.keys;
    wi->scored = LOAD(w->scored);
    wi->beat_ns = __atomic_load_n(&w->beat_ns, __ATOMIC_RELAXED);
    wi->done = __atomic_load_n(&w->done, __ATOMIC_ACQUIRE);
}

int rts_daemon_health(const struct rts_daemon *d, uint64_t max_stall_ns, char *why, size_t cap)
{
    uint64_t now = rts_now_ns();

    if (daemon_failed(d)) {
        snprintf(why, cap, "failed: %s", d->fail.msg);
        return 0;
    }
    for (int i = 0; i < d->nworkers; i++) {
        struct rts_daemon_worker_info wi;
        rts_daemon_worker_info(d, i, &wi);
        if (!wi.done && wi.beat_ns && wi.beat_ns < now && now - wi.beat_ns > max_stall_ns) {
            snprintf(why, cap, "worker %d has not gone round its loop for %.1f s", i,
                     (double)(now - wi.beat_ns) / 1e9);
            return 0;
        }
    }
    if (d->src_started && !__atomic_load_n(&d->src_done, __ATOMIC_ACQUIRE)) {
        uint64_t b = __atomic_load_n(&d->src_beat_ns, __ATOMIC_RELAXED);
        if (b && b < now && now - b > max_stall_ns) { /* b may be newer than now */
            snprintf(why, cap, "the source thread has been blocked for %.1f s (backpressure?)",
                     (double)(now - b) / 1e9);
            return 0;
        }
    }
    snprintf(why, cap, "ok");
    return 1;
}

int rts_daemon_ready(const struct rts_daemon *d, char *why, size_t cap)
{
    if (rts_stop_requested() || daemon_failed(d)) {
        snprintf(why, cap, "%s", daemon_failed(d) ? "failed" : "stopping");
        return 0;
    }
    if (!d->src_started || __atomic_load_n(&d->src_done, __ATOMIC_ACQUIRE)) {
        snprintf(why, cap, "%s", d->src_started ? "the source has ended" : "starting");
        return 0;
    }
    snprintf(why, cap, "ok");
    return 1;
}

const char *rts_daemon_source_name(const struct rts_daemon *d)
{
    return d->src_ops->name;
}

size_t rts_daemon_lag(const struct rts_daemon *d, struct rts_lag *out, size_t max)
{
    return d->src_ops->lag ? d->src_ops->lag(d->src_ctx, out, max) : 0;
}
