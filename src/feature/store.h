/*
 * store.h - online feature stores: an ops table per store type (redis, file)
 * plus a declarative option table, like sources and sinks.
 *
 * A store instance (struct rts_store) is created once from its `stores.NAME`
 * mapping and shared by every worker: its context is read-only after init,
 * except what a type documents as safe to swap (the file store's table).
 * Per-worker state is a connection (ops->conn_size bytes): a Redis socket, a
 * file-store reader slot. A connection is used by one thread at a time, the
 * worker that owns it, so a lookup takes no lock.
 *
 * A lookup is a batch: n keys, one list of fields, one call, one deadline.
 * Values are numbers (NaN = absent: no such key, no such field, not a
 * number); each key also gets its update time, epoch milliseconds read from
 * the store's `updated_field`, -1 when absent. The lookup stage
 * (feature/lookup.h) puts a cache and a circuit breaker in front.
 *
 * The option tree of the config must outlive every store made from it:
 * option strings point into it.
 */
#ifndef RTS_FEATURE_STORE_H
#define RTS_FEATURE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "core/err.h"
#include "event/value.h"

#define RTS_STORE_MAX_FIELDS 64 /* fields of one query or write, the update field not counted */
#define RTS_STORE_KEY_MAX 512   /* longest key, bytes */

enum rts_store_status {
    RTS_STORE_OK,      /* every key answered (found or not) */
    RTS_STORE_TIMEOUT, /* the deadline passed first; no value of the batch is usable */
    RTS_STORE_ERROR,   /* the store failed or is unreachable; @eb says why */
};

/* What a store is given at init besides its options. */
struct rts_store_env {
    const char *name;          /* "profiles": for messages and logs */
    const char *updated_field; /* field / column holding the update time (epoch ms); NULL = none */
};

struct rts_store_query {
    size_t n;                   /* keys */
    const struct rts_str *keys; /* n keys, each 1..RTS_STORE_KEY_MAX bytes */
    size_t nfields;             /* 1..RTS_STORE_MAX_FIELDS */
    const char *const *fields;  /* field names */
    double *values;             /* out: n x nfields, row-major; NaN = absent */
    int64_t *updated_ms;        /* out: n; -1 = absent */
    uint64_t deadline_ns;       /* rts_now_ns() time to give up at; 0 = the store's own timeout */
};

/* A bulk write (`rtscore store load`): each row sets its present cells and,
 * when updated_ms[i] >= 0, the update field. */
struct rts_store_rows {
    size_t n, nfields;
    const char *const *fields;   /* nfields names, <= RTS_STORE_MAX_FIELDS */
    const struct rts_str *keys;  /* n */
    const struct rts_str *cells; /* n x nfields, row-major, text; p == NULL: not written */
    const int64_t *updated_ms;   /* n; < 0: not written */
    uint64_t deadline_ns;        /* rts_now_ns() time to give up at; 0 = 30 s from the call */
};

/* A pipelined batch of raw commands, for a store that speaks them (redis):
 * the Redis window state (feature/rstate.h) sends its reads and writes so,
 * over the store's connection handling (deadline, reconnect, backoff, AUTH).
 * The commands come formatted in the server's protocol (RESP arrays of bulk
 * strings: the caller formats a batch in one pass into its own buffer, so
 * nothing is allocated per command); replies are hiredis' own objects,
 * handed over in order as they arrive. */
struct redisReply;
struct rts_store_cmds {
    size_t n;          /* commands in @resp */
    const char *resp;  /* the n commands, RESP-formatted, one after another */
    size_t len;        /* bytes of @resp */
    /* reply @i of the batch, valid during the call only; never NULL */
    void (*on_reply)(void *arg, size_t i, const struct redisReply *r);
    void *arg;
    uint64_t deadline_ns; /* rts_now_ns() time to give up at; 0 = the store's own timeout */
    size_t done;          /* out: replies handed to on_reply (all n on RTS_STORE_OK) */
};

struct rts_store_ops {
    const char *name;        /* "redis", "file" */
    const char *description; /* one line for docs/CONFIG.md */
    const struct rts_opt *opts;
    size_t ctx_size;  /* per store: zeroed, options applied, then init */
    size_t conn_size; /* per worker: zeroed, then conn_init */
    /* Optional: refuse option values without side effects (no I/O), for
     * `rtscore check`. @node is the store's mapping, @path its key path. */
    enum rts_err (*check)(void *ctx, const struct rts_conf_node *node, const char *path,
                          struct rts_errbuf *eb);
    enum rts_err (*init)(void *ctx, const struct rts_store_env *env, struct rts_errbuf *eb);
    void (*fini)(void *ctx); /* cannot fail; every connection is gone by then */
    /* A connection for one worker. Failing to reach the store is not an
     * error here (the first lookup reports it); a bad configuration is. */
    enum rts_err (*conn_init)(void *ctx, void *conn, struct rts_errbuf *eb);
    void (*conn_fini)(void *ctx, void *conn);
    /* Fill q->values and q->updated_ms for q->keys; on TIMEOUT or ERROR their
     * contents are unspecified. Thread: the owner of @conn. */
    enum rts_store_status (*lookup)(void *ctx, void *conn, const struct rts_store_query *q,
                                    struct rts_errbuf *eb);
    /* Optional (NULL: the store is read-only). Thread: the owner of @conn. */
    enum rts_err (*write)(void *ctx, void *conn, const struct rts_store_rows *r,
                          struct rts_errbuf *eb);
    /* Optional (NULL: the store takes no raw commands): send @c's commands in
     * one pipelined round trip and hand each reply to c->on_reply, in order,
     * until c->deadline_ns. Thread: the owner of @conn. */
    enum rts_store_status (*exec)(void *ctx, void *conn, struct rts_store_cmds *c,
                                  struct rts_errbuf *eb);
    /* Optional: rebuild from the source now (file store). Any one thread at
     * a time; concurrent lookups go on. */
    enum rts_err (*reload)(void *ctx, struct rts_errbuf *eb);
    /* Optional: periodic upkeep (watch a file, free what readers left).
     * One thread, e.g. the daemon's housekeeper, every second or so. */
    void (*tick)(void *ctx, uint64_t now_ns);
    /* "redis 127.0.0.1:6379", "file examples/fraud/profiles.csv" */
    const char *(*label)(void *ctx);
};

extern const struct rts_store_ops rts_store_redis;
extern const struct rts_store_ops rts_store_file;

/* The registry of store types, NULL-terminated; a new type adds one line
 * in store.c. rts_store_find: the type named @name or NULL. Any thread. */
extern const struct rts_store_ops *const rts_stores[];
const struct rts_store_ops *rts_store_find(const char *name);

/* ---- the keys every store mapping has, whatever its type ---- */

struct rts_store_common {
    const char *type;
    const char *updated_field;         /* "" = none */
    int64_t cache_ttl_us;              /* 0 = no cache */
    uint64_t cache_max;                /* entries per worker */
    const struct rts_conf_node *breaker;
};
extern const struct rts_opt rts_store_common_opts[];

/* Parse one `stores.NAME` mapping @node (key path @path): the type, the
 * common keys into @common, the type's own options (checked, then dropped:
 * rts_store_open applies them again). Unknown keys, a missing or unknown
 * type and the type's check() are errors at file:line. Thread: start-up. */
enum rts_err rts_store_parse(const struct rts_conf_node *node, const char *path,
                             struct rts_store_common *common, const struct rts_store_ops **ops,
                             struct rts_errbuf *eb);

/* ---- instances ---- */

struct rts_store;

/* A store of type @ops from mapping @node (already checked by
 * rts_store_parse), initialised. NULL with @eb filled on failure. The
 * caller owns it; @node, @env strings must outlive it. Thread: start-up. */
struct rts_store *rts_store_open(const struct rts_store_ops *ops, const struct rts_conf_node *node,
                                 const char *path, const struct rts_store_env *env,
                                 struct rts_errbuf *eb) __attribute__((warn_unused_result));
void rts_store_close(struct rts_store *s); /* NULL is a no-op; no connection may remain */

/* For a mapping that holds a store's options among keys of its own (the
 * `state:` section): rts_store_check_opts applies and checks @ops' options
 * of @node, skipping the keys in @ignore (NULL-terminated; they are the
 * caller's), without side effects; rts_store_open_with opens a store from
 * such a mapping. rts_store_parse and rts_store_open are these with the
 * common store keys as @ignore. Thread: start-up. */
enum rts_err rts_store_check_opts(const struct rts_store_ops *ops, const struct rts_conf_node *node,
                                  const char *path, const char *const *ignore,
                                  struct rts_errbuf *eb);
struct rts_store *rts_store_open_with(const struct rts_store_ops *ops,
                                      const struct rts_conf_node *node, const char *path,
                                      const struct rts_store_env *env, const char *const *ignore,
                                      struct rts_errbuf *eb) __attribute__((warn_unused_result));

/* A connection for the calling worker (NULL with @eb filled). It belongs to
 * one thread at a time. */
void *rts_store_conn_new(struct rts_store *s, struct rts_errbuf *eb)
    __attribute__((warn_unused_result));
void rts_store_conn_free(struct rts_store *s, void *conn); /* NULL conn is a no-op */

/* The ops calls, with the checks every caller would otherwise repeat.
 * Threads as for the ops: lookup and write on the thread that owns @conn
 * (they may block until the query's deadline, never longer); reload on one
 * control thread; tick on the housekeeper; the accessors on any thread. */
enum rts_store_status rts_store_lookup(struct rts_store *s, void *conn,
                                       const struct rts_store_query *q, struct rts_errbuf *eb);
enum rts_err rts_store_write(struct rts_store *s, void *conn, const struct rts_store_rows *r,
                             struct rts_errbuf *eb); /* RTS_ERR_INVAL when read-only */
enum rts_err rts_store_reload(struct rts_store *s, struct rts_errbuf *eb); /* OK if no reload */
/* RTS_STORE_ERROR (INVAL) when the type takes no raw commands. */
enum rts_store_status rts_store_exec(struct rts_store *s, void *conn, struct rts_store_cmds *c,
                                     struct rts_errbuf *eb);
void rts_store_tick(struct rts_store *s, uint64_t now_ns);
const struct rts_store_ops *rts_store_ops_of(const struct rts_store *s);
const char *rts_store_label(const struct rts_store *s);
const char *rts_store_name(const struct rts_store *s);
const char *rts_store_updated_field(const struct rts_store *s); /* NULL = none */

/* Parse the text of a number as a store value: the whole of @s[0..n)
 * (blanks around allowed) as a finite decimal number, else NaN. Any thread. */
double rts_store_parse_num(const char *s, size_t n);

#endif /* RTS_FEATURE_STORE_H */
