/*
 * store_file.c - the `file` store: a CSV or JSON-lines file loaded into an
 * immutable in-memory table, keyed by the `key` column (the same strings the
 * lookup templates build, e.g. "card:c-42"), every other column a number.
 *
 * Table: rows of doubles (NaN = empty cell or not a number), the update time
 * column as epoch ms, and an open-addressing index (linear probing, load at
 * most 1/2) from key hash to row. A duplicate key keeps its last row.
 *
 * Reload builds a whole new table beside the old one and swaps one atomic
 * pointer; a failed reload leaves the old table serving. The old table is
 * freed once no reader can still hold it. Readers are connections (one per
 * worker), which take the pointer once per lookup batch. The scheme is an
 * epoch counter: a reader announces the epoch it read (non-zero) before it
 * loads the pointer and clears it after its batch; a table swapped out when
 * the epoch became E is freed once every reader is idle (0) or announces an
 * epoch >= E. Every access is sequentially consistent, so a reader that
 * loaded the old pointer announced an epoch < E before the writer looked,
 * and a reader the writer saw idle can only load the new pointer.
 * A lookup never waits, never allocates and takes no lock; reload, tick and
 * registering a connection take a mutex off the per-event path.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "feature/rows.h"
#include "core/path.h"
#include "feature/store.h"

#define MAX_COLUMNS 1024

struct ftable {
    size_t nrows, ncols;
    char **cols; /* column names */
    int upd_col; /* column of the update time, -1 = none */
    double *vals;  /* nrows x ncols */
    int64_t *upd;  /* nrows; -1 = none */
    char **keys;   /* nrows, into keytext */
    uint32_t *key_len;
    uint64_t *hash;
    char *keytext;
    size_t keytext_len;
    uint32_t *slots; /* row + 1; 0 = empty */
    size_t mask;
    /* what it was loaded from */
    struct stat st;
    /* retirement */
    uint64_t retired_at;
    struct ftable *next;
};

struct fconn {
    uint64_t active; /* announced epoch; 0 = idle (atomic) */
    struct fconn *next;
    char pad[48]; /* one cache line per reader */
};

struct file_store {
    /* options */
    const char *path, *format_name, *key_column;
    int64_t max_rows;
    uint64_t max_bytes;
    int64_t watch_us;
    /* state */
    char resolved[4096]; /* path, from the working directory or next to the binary */
    enum rts_rows_format format;
    const struct rts_store_env *env;
    struct ftable *table; /* current (atomic) */
    uint64_t epoch;       /* starts at 1 (atomic) */
    pthread_mutex_t mu;   /* conns, retired, reloads */
    int mu_ok;
    struct fconn *conns;
    struct ftable *retired;
    uint64_t next_watch_ns;
    struct stat failed_st; /* a file that failed to load: not retried until it changes */
    int failed;
    char label[320];
};

static const struct rts_opt file_store_opts[] = {
    RTS_OPT_STR_REQ("path", offsetof(struct file_store, path),
                    "CSV (a header row names the columns) or JSON lines, from the working "
                    "directory"),
    RTS_OPT_STR("format", NULL, offsetof(struct file_store, format_name),
                "csv | jsonl; default by extension (.jsonl, .json, .ndjson: jsonl; else csv)"),
    RTS_OPT_STR("key_column", "key", offsetof(struct file_store, key_column),
                "column with the key the lookup templates build, e.g. card:c-42"),
    RTS_OPT_INT("max_rows", "10000000", offsetof(struct file_store, max_rows),
                "more rows is an error"),
    RTS_OPT_SIZE("max_bytes", "1GiB", offsetof(struct file_store, max_bytes),
                 "a larger file is an error"),
    RTS_OPT_DURATION("watch", "0", offsetof(struct file_store, watch_us),
                     "the housekeeper checks the file this often and reloads it when it "
                     "changed; 0 = only on an explicit reload"),
    RTS_OPT_END,
};

static void table_free(struct ftable *t)
{
    if (!t) {
        return;
    }
    for (size_t i = 0; t->cols && i < t->ncols; i++) {
        free(t->cols[i]);
    }
    free(t->cols);
    free(t->vals);
    free(t->upd);
    free(t->keys);
    free(t->key_len);
    free(t->hash);
    free(t->keytext);
    free(t->slots);
    free(t);
}

static int str_eq(struct rts_str a, const char *b)
{
    return strlen(b) == a.n && memcmp(a.p, b, a.n) == 0;
}

static int find_col(const struct ftable *t, struct rts_str name, size_t hint)
{
    if (hint < t->ncols && str_eq(name, t->cols[hint])) {
        return (int)hint;
    }
    for (size_t i = 0; i < t->ncols; i++) {
        if (str_eq(name, t->cols[i])) {
            return (int)i;
        }
    }
    return -1;
}

static long table_find(const struct ftable *t, const char *key, size_t n, uint64_t h)
{
    size_t i = (size_t)h & t->mask;

    for (;;) {
        uint32_t r = t->slots[i];
        if (r == 0) {
            return -1;
        }
        r--;
        if (t->hash[r] == h && t->key_len[r] == n && memcmp(t->keys[r], key, n) == 0) {
            return (long)r;
        }
        i = (i + 1) & t->mask;
    }
}

/* ---- loading: pass 1 counts rows and collects columns, pass 2 fills ---- */

struct load {
    const struct file_store *fs;
    struct ftable *t;
    int pass;
    size_t rows, keybytes, dups, not_numbers;
};

static struct rts_str find_cell(const struct rts_row *row, const char *name)
{
    struct rts_str none = {NULL, 0};

    for (size_t i = 0; i < row->n; i++) {
        if (str_eq(row->names[i], name)) {
            return row->cells[i];
        }
    }
    return none;
}

static enum rts_err load_row(void *arg, const struct rts_row *row, struct rts_errbuf *eb)
{
    struct load *ld = arg;
    const struct file_store *fs = ld->fs;
    struct ftable *t = ld->t;
    struct rts_str key = find_cell(row, fs->key_column);

    if (!key.p) {
        return rts_errf(eb, RTS_ERR_PARSE, 0, 0, "%s:%zu: no '%s' (the key column)", fs->path,
                        row->line, fs->key_column);
    }
    if (key.n > RTS_STORE_KEY_MAX) {
        return rts_errf(eb, RTS_ERR_PARSE, 0, 0, "%s:%zu: a key of %u bytes (most %d)", fs->path,
                        row->line, key.n, RTS_STORE_KEY_MAX);
    }
    if (ld->pass == 1) {
        if (ld->rows >= (size_t)fs->max_rows) {
            return rts_errf(eb, RTS_ERR_LIMIT, 0, 0, "%s: more than max_rows (%lld) rows",
                            fs->path, (long long)fs->max_rows);
        }
        ld->rows++;
        ld->keybytes += key.n;
        for (size_t i = 0; i < row->n; i++) {
            if (str_eq(row->names[i], fs->key_column) || find_col(t, row->names[i], i) >= 0) {
                continue;
            }
            if (t->ncols == MAX_COLUMNS) {
                return rts_errf(eb, RTS_ERR_LIMIT, 0, 0, "%s:%zu: more than %d columns",
                                fs->path, row->line, MAX_COLUMNS);
            }
            t->cols[t->ncols] = strndup(row->names[i].p, row->names[i].n);
            if (!t->cols[t->ncols]) {
                return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: out of memory", fs->path);
            }
            t->ncols++;
        }
        return RTS_ERR_OK;
    }
    {
        size_t r = ld->rows++;
        double *v = t->vals + r * t->ncols;
        uint64_t h = rts_hash64(key.p, key.n);
        size_t i;

        for (size_t c = 0; c < t->ncols; c++) {
            v[c] = NAN;
        }
        for (size_t c = 0; c < row->n; c++) {
            int col;
            if (!row->cells[c].p || str_eq(row->names[c], fs->key_column)) {
                continue;
            }
            col = find_col(t, row->names[c], c ? c - 1 : 0);
            v[col] = rts_store_parse_num(row->cells[c].p, row->cells[c].n);
            ld->not_numbers += isnan(v[col]);
        }
        t->upd[r] = -1;
        if (t->upd_col >= 0 && v[t->upd_col] >= 0 && v[t->upd_col] < 9e18) {
            t->upd[r] = (int64_t)v[t->upd_col];
        }
        t->keys[r] = t->keytext + t->keytext_len;
        memcpy(t->keys[r], key.p, key.n);
        t->keytext_len += key.n;
        t->key_len[r] = key.n;
        t->hash[r] = h;
        for (i = (size_t)h & t->mask; t->slots[i]; i = (i + 1) & t->mask) {
            uint32_t o = t->slots[i] - 1;
            if (t->hash[o] == h && t->key_len[o] == key.n && memcmp(t->keys[o], key.p, key.n) == 0) {
                break; /* a duplicate: the last row wins */
            }
        }
        ld->dups += t->slots[i] != 0;
        t->slots[i] = (uint32_t)r + 1;
    }
    return RTS_ERR_OK;
}

static struct ftable *table_load(const struct file_store *fs, struct rts_errbuf *eb)
{
    struct rts_buf b = {0};
    struct load ld = {fs, NULL, 1, 0, 0, 0, 0};
    struct rts_rows_cb cb = {load_row, &ld};
    struct ftable *t = calloc(1, sizeof(*t));
    size_t cap = 2;

    if (!t || !(t->cols = calloc(MAX_COLUMNS, sizeof(*t->cols)))) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: out of memory", fs->path);
        goto fail;
    }
    t->upd_col = -1;
    ld.t = t;
    if (stat(fs->path, &t->st) != 0) {
        rts_errf(eb, RTS_ERR_IO, 0, 0, "cannot read '%s': %s", fs->path, strerror(errno));
        goto fail;
    }
    if (rts_buf_read_file(&b, fs->path, fs->max_bytes, eb) ||
        rts_rows_parse(fs->path, b.data ? b.data : "", b.len, fs->format, &cb, eb)) {
        goto fail;
    }
    if (ld.rows >= UINT32_MAX / 2) {
        rts_errf(eb, RTS_ERR_LIMIT, 0, 0, "%s: too many rows", fs->path);
        goto fail;
    }
    while (cap < 2 * ld.rows) {
        cap *= 2;
    }
    t->nrows = ld.rows;
    t->mask = cap - 1;
    t->vals = malloc((ld.rows * t->ncols + 1) * sizeof(*t->vals));
    t->upd = malloc((ld.rows ? ld.rows : 1) * sizeof(*t->upd));
    t->keys = malloc((ld.rows ? ld.rows : 1) * sizeof(*t->keys));
    t->key_len = malloc((ld.rows ? ld.rows : 1) * sizeof(*t->key_len));
    t->hash = malloc((ld.rows ? ld.rows : 1) * sizeof(*t->hash));
    t->keytext = malloc(ld.keybytes ? ld.keybytes : 1);
    t->slots = calloc(cap, sizeof(*t->slots));
    if (!t->vals || !t->upd || !t->keys || !t->key_len || !t->hash || !t->keytext || !t->slots) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: out of memory for %zu rows", fs->path, ld.rows);
        goto fail;
    }
    for (size_t c = 0; fs->env->updated_field && c < t->ncols; c++) {
        if (strcmp(t->cols[c], fs->env->updated_field) == 0) {
            t->upd_col = (int)c;
        }
    }
    ld.pass = 2;
    ld.rows = 0;
    if (rts_rows_parse(fs->path, b.data ? b.data : "", b.len, fs->format, &cb, eb)) {
        goto fail; /* the file is in memory: only a callback error can get here */
    }
    rts_buf_fini(&b);
    rts_log(RTS_LOG_INFO, "store loaded", "store=%s path=%s rows=%zu columns=%zu duplicates=%zu "
            "not_numbers=%zu", fs->env->name, fs->path, t->nrows, t->ncols, ld.dups,
            ld.not_numbers);
    return t;
fail:
    rts_buf_fini(&b);
    table_free(t);
    return NULL;
}

/* ---- epochs ---- */

static uint64_t min_active(struct file_store *fs)
{
    uint64_t m = UINT64_MAX;

    for (struct fconn *c = fs->conns; c; c = c->next) {
        uint64_t a = __atomic_load_n(&c->active, __ATOMIC_SEQ_CST);
        if (a && a < m) {
            m = a;
        }
    }
    return m;
}

/* Free retired tables no reader can hold. Under fs->mu. */
static void reclaim(struct file_store *fs)
{
    uint64_t m = min_active(fs);
    struct ftable **pp = &fs->retired;

    while (*pp) {
        struct ftable *t = *pp;
        if (t->retired_at <= m) {
            *pp = t->next;
            table_free(t);
        } else {
            pp = &t->next;
        }
    }
}

/* Swap in @t; retire the old table. Under fs->mu. */
static void swap_in(struct file_store *fs, struct ftable *t)
{
    struct ftable *old = __atomic_exchange_n(&fs->table, t, __ATOMIC_SEQ_CST);

    old->retired_at = __atomic_add_fetch(&fs->epoch, 1, __ATOMIC_SEQ_CST);
    old->next = fs->retired;
    fs->retired = old;
    reclaim(fs);
}

/* ---- ops ---- */

static enum rts_err file_check(void *ctx, const struct rts_conf_node *node, const char *path,
                               struct rts_errbuf *eb)
{
    struct file_store *fs = ctx;
    enum rts_rows_format f;

    if (fs->format_name && rts_rows_format_parse(fs->format_name, &f) != 0) {
        return rts_conf_errf(eb, rts_conf_get(node, "format"), path,
                             "unknown format '%s'; expected csv or jsonl", fs->format_name);
    }
    if (fs->max_rows < 1 || fs->watch_us < 0 || !*fs->key_column) {
        return rts_conf_errf(eb, node, path, "max_rows >= 1, watch >= 0 and a key_column");
    }
    return RTS_ERR_OK;
}

static enum rts_err file_init(void *ctx, const struct rts_store_env *env, struct rts_errbuf *eb)
{
    struct file_store *fs = ctx;
    struct ftable *t;

    fs->env = env;
    fs->epoch = 1;
    fs->path = rts_path_resolve(fs->path, fs->resolved, sizeof(fs->resolved));
    fs->format = rts_rows_format_of(fs->path);
    if (fs->format_name) {
        rts_rows_format_parse(fs->format_name, &fs->format);
    }
    snprintf(fs->label, sizeof(fs->label), "file %s", fs->path);
    if (pthread_mutex_init(&fs->mu, NULL) != 0) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "store %s: cannot create a mutex", env->name);
    }
    fs->mu_ok = 1;
    t = table_load(fs, eb);
    if (!t) {
        rts_err_prefix(eb, env->name);
        return eb ? eb->code : RTS_ERR_IO;
    }
    __atomic_store_n(&fs->table, t, __ATOMIC_SEQ_CST);
    return RTS_ERR_OK;
}

static void file_fini(void *ctx)
{
    struct file_store *fs = ctx;

    table_free(fs->table);
    while (fs->retired) {
        struct ftable *t = fs->retired;
        fs->retired = t->next;
        table_free(t);
    }
    if (fs->mu_ok) {
        pthread_mutex_destroy(&fs->mu);
    }
}

static enum rts_err file_conn_init(void *ctx, void *conn, struct rts_errbuf *eb)
{
    struct file_store *fs = ctx;
    struct fconn *c = conn;

    (void)eb;
    pthread_mutex_lock(&fs->mu);
    c->next = fs->conns;
    fs->conns = c;
    pthread_mutex_unlock(&fs->mu);
    return RTS_ERR_OK;
}

static void file_conn_fini(void *ctx, void *conn)
{
    struct file_store *fs = ctx;
    struct fconn **pp;

    pthread_mutex_lock(&fs->mu);
    for (pp = &fs->conns; *pp; pp = &(*pp)->next) {
        if (*pp == conn) {
            *pp = ((struct fconn *)conn)->next;
            break;
        }
    }
    reclaim(fs);
    pthread_mutex_unlock(&fs->mu);
}

static enum rts_store_status file_lookup(void *ctx, void *conn, const struct rts_store_query *q,
                                         struct rts_errbuf *eb)
{
    struct file_store *fs = ctx;
    struct fconn *c = conn;
    const struct ftable *t;
    int col[RTS_STORE_MAX_FIELDS];

    (void)eb;
    __atomic_store_n(&c->active, __atomic_load_n(&fs->epoch, __ATOMIC_SEQ_CST), __ATOMIC_SEQ_CST);
    t = __atomic_load_n(&fs->table, __ATOMIC_SEQ_CST);
    for (size_t f = 0; f < q->nfields; f++) {
        struct rts_str name = {q->fields[f], (uint32_t)strlen(q->fields[f])};
        col[f] = find_col(t, name, f);
    }
    for (size_t i = 0; i < q->n; i++) {
        const struct rts_str *k = &q->keys[i];
        long r = table_find(t, k->p, k->n, rts_hash64(k->p, k->n));
        double *out = q->values + i * q->nfields;

        for (size_t f = 0; f < q->nfields; f++) {
            out[f] = r >= 0 && col[f] >= 0 ? t->vals[(size_t)r * t->ncols + (size_t)col[f]] : NAN;
        }
        q->updated_ms[i] = r >= 0 ? t->upd[r] : -1;
    }
    __atomic_store_n(&c->active, 0, __ATOMIC_SEQ_CST);
    return RTS_STORE_OK;
}

static enum rts_err file_reload(void *ctx, struct rts_errbuf *eb)
{
    struct file_store *fs = ctx;
    struct ftable *t;
    enum rts_err rc = RTS_ERR_OK;

    pthread_mutex_lock(&fs->mu);
    t = table_load(fs, eb);
    if (t) {
        swap_in(fs, t);
        fs->failed = 0;
    } else {
        rc = eb ? eb->code : RTS_ERR_IO;
        rts_log(RTS_LOG_WARN, "store reload failed; the previous table keeps serving",
                "store=%s error=\"%s\"", fs->env->name, eb ? eb->msg : "?");
    }
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void file_tick(void *ctx, uint64_t now_ns)
{
    struct file_store *fs = ctx;
    struct stat st;
    int changed = 0;

    memset(&st, 0, sizeof(st));
    pthread_mutex_lock(&fs->mu);
    reclaim(fs);
    if (fs->watch_us > 0 && now_ns >= fs->next_watch_ns) {
        fs->next_watch_ns = now_ns + (uint64_t)fs->watch_us * 1000;
        changed = stat(fs->path, &st) == 0 && !same_file(&st, &fs->table->st) &&
                  !(fs->failed && same_file(&st, &fs->failed_st));
    }
    pthread_mutex_unlock(&fs->mu);
    if (changed) {
        struct rts_errbuf eb = {0};
        if (file_reload(fs, &eb)) {
            pthread_mutex_lock(&fs->mu);
            fs->failed = 1;
            fs->failed_st = st;
            pthread_mutex_unlock(&fs->mu);
        }
    }
}

static const char *file_label(void *ctx)
{
    return ((struct file_store *)ctx)->label;
}

const struct rts_store_ops rts_store_file = {
    .name = "file",
    .description = "a CSV or JSON-lines file held in memory (key column + numeric columns); "
                   "reloadable while serving",
    .opts = file_store_opts,
    .ctx_size = sizeof(struct file_store),
    .conn_size = sizeof(struct fconn),
    .check = file_check,
    .init = file_init,
    .fini = file_fini,
    .conn_init = file_conn_init,
    .conn_fini = file_conn_fini,
    .lookup = file_lookup,
    .reload = file_reload,
    .tick = file_tick,
    .label = file_label,
};
