/*
 * store.c - `rtscore store`: operate the online feature stores of a
 * pipeline file.
 *
 *   store load -c pipeline.yaml --store NAME -i FILE   bulk write CSV / JSON lines
 *   store get  -c pipeline.yaml --store NAME KEY...    read keys as the lookups do
 *   store profiles [--cards N] [--seed S] [-o FILE]    the demo's card profiles
 *
 * load: each row's `key` column is the key; every other column is written
 * as a field (HSET key field value ...), and the store's updated_field gets
 * the row's own value of that column when it has one, else the time of the
 * load (epoch ms). Rows go in pipelined batches (--batch, default 1000).
 * profiles: a deterministic function of the generator's options, so the
 * file matches the cards (and their typical spend) of `rtscore gen` and the
 * demo; examples/fraud/profiles.csv is its output for the demo's options.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/fmt.h"
#include "daemon/config.h"
#include "feature/rows.h"
#include "feature/store.h"
#include "source/gen.h"

enum { OPT_STORE = 2000, OPT_FORMAT, OPT_KEY_COLUMN, OPT_BATCH, OPT_FIELD, OPT_CARDS, OPT_SEED,
       OPT_START };

static int store_usage(const char *msg)
{
    fprintf(stderr,
            "rtscore store: %s\n"
            "usage: rtscore store load -c pipeline.yaml --store NAME -i FILE [--format csv|jsonl]\n"
            "                          [--key-column key] [--batch N]\n"
            "       rtscore store get  -c pipeline.yaml --store NAME [--field F]... KEY...\n"
            "       rtscore store profiles [--cards N] [--seed S] [--start-ms MS] [-o FILE]\n",
            msg);
    return 1;
}

/* The pipeline's store @name, opened, with one connection. */
struct opened {
    struct rts_pipeline_conf *conf;
    const struct rts_store_def *def;
    struct rts_store *store;
    void *conn;
};

static int open_store(const char *path, const char *name, struct opened *o)
{
    struct rts_errbuf eb = {0};
    struct rts_store_env env;

    memset(o, 0, sizeof(*o));
    o->conf = rts_pipeline_conf_load(path, &eb);
    if (!o->conf) {
        fprintf(stderr, "rtscore: %s\n", eb.msg);
        return 1;
    }
    for (size_t i = 0; i < o->conf->nstores; i++) {
        if (strcmp(o->conf->stores[i].name, name) == 0) {
            o->def = &o->conf->stores[i];
        }
    }
    if (!o->def) {
        fprintf(stderr, "rtscore store: %s has no store '%s'%s", path, name,
                o->conf->nstores ? "; its stores:" : " (no stores: section)");
        for (size_t i = 0; i < o->conf->nstores; i++) {
            fprintf(stderr, " %s", o->conf->stores[i].name);
        }
        fputc('\n', stderr);
        return 1;
    }
    env.name = o->def->name;
    env.updated_field = o->def->updated_field;
    o->store = rts_store_open(o->def->ops, o->def->node, o->def->path, &env, &eb);
    if (!o->store || !(o->conn = rts_store_conn_new(o->store, &eb))) {
        fprintf(stderr, "rtscore: %s\n", eb.msg);
        return eb.code == RTS_ERR_INVAL ? 1 : 2;
    }
    return 0;
}

static void close_store(struct opened *o)
{
    if (o->store) {
        rts_store_conn_free(o->store, o->conn);
        rts_store_close(o->store);
    }
    rts_pipeline_conf_free(o->conf);
}

/* ---- load ---- */

struct loader {
    struct opened *o;
    const char *key_column, *upd_field;
    size_t batch;
    int64_t now_ms;
    /* the batch being gathered; text holds keys and cells, offsets below */
    char *fields[RTS_STORE_MAX_FIELDS];
    size_t nfields;
    struct rts_buf text;
    size_t *key_off, *key_len, *cell_off, *cell_len; /* cell_off SIZE_MAX = absent */
    int64_t *upd;
    size_t n;
    /* the arrays handed to the store */
    struct rts_str *keys, *cells;
    uint64_t rows;
};

static enum rts_err flush_batch(struct loader *ld, struct rts_errbuf *eb)
{
    struct rts_store_rows r;
    enum rts_err rc;

    if (ld->n == 0) {
        return RTS_ERR_OK;
    }
    for (size_t i = 0; i < ld->n; i++) {
        ld->keys[i].p = ld->text.data + ld->key_off[i];
        ld->keys[i].n = (uint32_t)ld->key_len[i];
        for (size_t f = 0; f < ld->nfields; f++) {
            size_t k = i * RTS_STORE_MAX_FIELDS + f, c = i * ld->nfields + f;
            ld->cells[c].p = ld->cell_off[k] == SIZE_MAX ? NULL : ld->text.data + ld->cell_off[k];
            ld->cells[c].n = (uint32_t)ld->cell_len[k];
        }
    }
    r.n = ld->n;
    r.nfields = ld->nfields;
    r.fields = (const char *const *)ld->fields;
    r.keys = ld->keys;
    r.cells = ld->cells;
    r.updated_ms = ld->upd;
    r.deadline_ns = 0;
    rc = rts_store_write(ld->o->store, ld->o->conn, &r, eb);
    ld->rows += rc ? 0 : ld->n;
    ld->n = 0;
    ld->text.len = 0;
    return rc;
}

static int cell_is(const struct rts_str *s, const char *name)
{
    return name && strlen(name) == s->n && memcmp(s->p, name, s->n) == 0;
}

static enum rts_err load_row(void *arg, const struct rts_row *row, struct rts_errbuf *eb)
{
    struct loader *ld = arg;
    size_t i = ld->n, base = i * RTS_STORE_MAX_FIELDS;
    int have_key = 0;

    ld->upd[i] = ld->upd_field ? ld->now_ms : -1;
    for (size_t f = 0; f < RTS_STORE_MAX_FIELDS; f++) {
        ld->cell_off[base + f] = SIZE_MAX;
        ld->cell_len[base + f] = 0;
    }
    for (size_t c = 0; c < row->n; c++) {
        const struct rts_str *nm = &row->names[c], *v = &row->cells[c];
        size_t f;

        if (cell_is(nm, ld->key_column)) {
            if (!v->p || v->n > RTS_STORE_KEY_MAX) {
                break;
            }
            ld->key_off[i] = ld->text.len;
            ld->key_len[i] = v->n;
            if (rts_buf_append(&ld->text, v->p, v->n)) {
                return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
            }
            have_key = 1;
            continue;
        }
        if (cell_is(nm, ld->upd_field)) {
            double t = v->p ? rts_store_parse_num(v->p, v->n) : NAN;
            if (t >= 0 && t < 9e18) {
                ld->upd[i] = (int64_t)t;
            }
            continue;
        }
        for (f = 0; f < ld->nfields && !cell_is(nm, ld->fields[f]); f++) {
        }
        if (f == ld->nfields) { /* a new field: the batch so far is written first */
            enum rts_err rc;
            if (f == RTS_STORE_MAX_FIELDS) {
                return rts_errf(eb, RTS_ERR_LIMIT, 0, 0, "line %zu: more than %d fields",
                                row->line, RTS_STORE_MAX_FIELDS);
            }
            if (ld->n) {
                /* the rows so far go out with the fields they have; this
                 * row's partial text is dropped and it starts again */
                rc = flush_batch(ld, eb);
                return rc ? rc : load_row(ld, row, eb);
            }
            ld->fields[f] = strndup(nm->p, nm->n);
            if (!ld->fields[f]) {
                return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
            }
            ld->nfields++;
        }
        if (v->p) {
            ld->cell_off[base + f] = ld->text.len;
            ld->cell_len[base + f] = v->n;
            if (rts_buf_append(&ld->text, v->p, v->n)) {
                return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
            }
        }
    }
    if (!have_key) {
        return rts_errf(eb, RTS_ERR_PARSE, 0, 0, "line %zu: no '%s' (the key column), or longer "
                        "than %d bytes", row->line, ld->key_column, RTS_STORE_KEY_MAX);
    }
    ld->n++;
    return ld->n == ld->batch ? flush_batch(ld, eb) : RTS_ERR_OK;
}

static int cmd_load(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"input", required_argument, NULL, 'i'},
        {"store", required_argument, NULL, OPT_STORE},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"key-column", required_argument, NULL, OPT_KEY_COLUMN},
        {"batch", required_argument, NULL, OPT_BATCH},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *in = NULL, *name = NULL, *fmt_name = NULL, *key_column = "key";
    long batch = 1000;
    enum rts_rows_format fmt;
    struct rts_errbuf eb = {0};
    struct rts_buf file = {0};
    struct loader ld;
    struct opened o;
    uint64_t t0;
    double secs;
    int c, rc = 0;

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:i:", lopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'i':
            in = optarg;
            break;
        case OPT_STORE:
            name = optarg;
            break;
        case OPT_FORMAT:
            fmt_name = optarg;
            break;
        case OPT_KEY_COLUMN:
            key_column = optarg;
            break;
        case OPT_BATCH:
            batch = strtol(optarg, NULL, 10);
            break;
        default:
            return store_usage("unknown option");
        }
    }
    if (!path || !in || !name) {
        return store_usage("load needs -c, --store and -i");
    }
    if (batch < 1 || batch > 100000) {
        return store_usage("--batch is 1..100000");
    }
    fmt = rts_rows_format_of(in);
    if (fmt_name && rts_rows_format_parse(fmt_name, &fmt) != 0) {
        return store_usage("--format is csv or jsonl");
    }
    signal(SIGPIPE, SIG_IGN); /* a server that goes away must not kill us (hiredis writes) */
    rc = open_store(path, name, &o);
    if (rc) {
        close_store(&o);
        return rc;
    }
    memset(&ld, 0, sizeof(ld));
    ld.o = &o;
    ld.key_column = key_column;
    ld.upd_field = rts_store_updated_field(o.store);
    ld.batch = (size_t)batch;
    ld.now_ms = rts_wall_ms();
    ld.key_off = calloc(ld.batch, sizeof(size_t));
    ld.key_len = calloc(ld.batch, sizeof(size_t));
    ld.cell_off = calloc(ld.batch * RTS_STORE_MAX_FIELDS, sizeof(size_t));
    ld.cell_len = calloc(ld.batch * RTS_STORE_MAX_FIELDS, sizeof(size_t));
    ld.upd = calloc(ld.batch, sizeof(int64_t));
    ld.keys = calloc(ld.batch, sizeof(*ld.keys));
    ld.cells = calloc(ld.batch * RTS_STORE_MAX_FIELDS, sizeof(*ld.cells));
    if (!ld.key_off || !ld.key_len || !ld.cell_off || !ld.cell_len || !ld.upd || !ld.keys ||
        !ld.cells) {
        fprintf(stderr, "rtscore store: out of memory\n");
        rc = 2;
        goto out;
    }
    t0 = rts_now_ns();
    {
        struct rts_rows_cb cb = {load_row, &ld};
        if (rts_buf_read_file(&file, in, (size_t)1 << 32, &eb) ||
            rts_rows_parse(in, file.data ? file.data : "", file.len, fmt, &cb, &eb) ||
            flush_batch(&ld, &eb)) {
            fprintf(stderr, "rtscore store load: %s (%llu rows written before)\n", eb.msg,
                    (unsigned long long)ld.rows);
            rc = eb.code == RTS_ERR_PARSE || eb.code == RTS_ERR_INVAL ? 1 : 2;
            goto out;
        }
    }
    secs = (double)(rts_now_ns() - t0) / 1e9;
    printf("store load: %llu rows (%zu fields) into %s (%s) in %.3f s: %.0f rows/s\n",
           (unsigned long long)ld.rows, ld.nfields, name, rts_store_label(o.store), secs,
           secs > 0 ? (double)ld.rows / secs : 0.0);
out:
    for (size_t f = 0; f < ld.nfields; f++) {
        free(ld.fields[f]);
    }
    free(ld.key_off);
    free(ld.key_len);
    free(ld.cell_off);
    free(ld.cell_len);
    free(ld.upd);
    free(ld.keys);
    free(ld.cells);
    rts_buf_fini(&ld.text);
    rts_buf_fini(&file);
    close_store(&o);
    return rc;
}

/* ---- get ---- */

static int cmd_get(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"store", required_argument, NULL, OPT_STORE},
        {"field", required_argument, NULL, OPT_FIELD},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *name = NULL;
    const char *fields[RTS_STORE_MAX_FIELDS];
    size_t nf = 0, nkeys;
    struct rts_errbuf eb = {0};
    struct rts_store_query q;
    struct rts_str *keys = NULL;
    double *vals = NULL;
    int64_t *upd = NULL;
    struct opened o;
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", lopts, NULL)) != -1) {
        if (c == 'c') {
            path = optarg;
        } else if (c == OPT_STORE) {
            name = optarg;
        } else if (c == OPT_FIELD && nf < RTS_STORE_MAX_FIELDS) {
            fields[nf++] = optarg;
        } else {
            return store_usage("unknown option");
        }
    }
    nkeys = (size_t)(argc - optind);
    if (!path || !name || nkeys == 0) {
        return store_usage("get needs -c, --store and keys");
    }
    signal(SIGPIPE, SIG_IGN);
    rc = open_store(path, name, &o);
    if (rc) {
        goto out;
    }
    /* without --field: the fields the pipeline's lookups read from this store */
    for (size_t i = 0, given = nf; given == 0 && i < o.conf->nfeatures; i++) {
        const struct rts_feature_def *d = &o.conf->features[i];
        if (d->kind == RTS_FEAT_LOOKUP && strcmp(d->store, name) == 0) {
            size_t k;
            for (k = 0; k < nf && strcmp(fields[k], d->field) != 0; k++) {
            }
            if (k == nf && nf < RTS_STORE_MAX_FIELDS) {
                fields[nf++] = d->field;
            }
        }
    }
    if (nf == 0) {
        rc = store_usage("no lookup feature reads this store: name fields with --field");
        goto out;
    }
    keys = calloc(nkeys, sizeof(*keys));
    vals = calloc(nkeys * nf, sizeof(*vals));
    upd = calloc(nkeys, sizeof(*upd));
    if (!keys || !vals || !upd) {
        rc = 2;
        goto out;
    }
    for (size_t i = 0; i < nkeys; i++) {
        keys[i].p = argv[optind + (int)i];
        keys[i].n = (uint32_t)strlen(keys[i].p);
    }
    q.n = nkeys;
    q.keys = keys;
    q.nfields = nf;
    q.fields = fields;
    q.values = vals;
    q.updated_ms = upd;
    q.deadline_ns = 0;
    if (rts_store_lookup(o.store, o.conn, &q, &eb) != RTS_STORE_OK) {
        fprintf(stderr, "rtscore store get: %s\n", eb.msg);
        rc = 2;
        goto out;
    }
    for (size_t i = 0; i < nkeys; i++) {
        char buf[2 * RTS_STORE_KEY_MAX + 8], num[RTS_FMT_DOUBLE_MAX];
        rts_fmt_json_str(buf, sizeof(buf), keys[i].p, keys[i].n);
        printf("{\"key\":%s,\"updated_ms\":", buf);
        if (upd[i] >= 0) {
            rts_fmt_i64(num, upd[i]);
            printf("%s", num);
        } else {
            printf("null");
        }
        printf(",\"fields\":{");
        for (size_t f = 0; f < nf; f++) {
            rts_fmt_json_str(buf, sizeof(buf), fields[f], strlen(fields[f]));
            rts_fmt_double(num, vals[i * nf + f]);
            printf("%s%s:%s", f ? "," : "", buf, num);
        }
        printf("}}\n");
    }
out:
    free(keys);
    free(vals);
    free(upd);
    close_store(&o);
    return rc;
}

/* ---- profiles ---- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int cmd_profiles(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"cards", required_argument, NULL, OPT_CARDS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"start-ms", required_argument, NULL, OPT_START},
        {"output", required_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    struct rts_gen_opts go;
    struct rts_errbuf eb = {0};
    struct rts_gen *g;
    const char *out = "-";
    FILE *f = stdout;
    int c, rc = 0;
    const int64_t hour = 3600 * 1000;

    rts_gen_opts_default(&go);
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:", lopts, NULL)) != -1) {
        switch (c) {
        case OPT_CARDS:
            go.cards = strtoull(optarg, NULL, 10);
            break;
        case OPT_SEED:
            go.seed = strtoull(optarg, NULL, 10);
            break;
        case OPT_START:
            go.start_ms = strtoll(optarg, NULL, 10);
            break;
        case 'o':
            out = optarg;
            break;
        default:
            return store_usage("unknown option");
        }
    }
    g = rts_gen_new(&go, &eb);
    if (!g) {
        fprintf(stderr, "rtscore store profiles: %s\n", eb.msg);
        return 1;
    }
    if (strcmp(out, "-") != 0 && !(f = fopen(out, "w"))) {
        fprintf(stderr, "rtscore store profiles: cannot open '%s' for writing\n", out);
        rts_gen_free(g);
        return 1;
    }
    /* Per card, from a hash of (seed, card): 2% have no profile (lookups
     * take the default), 10% were updated 25-72 h before the stream starts
     * (older than a 24h max_age), the rest within 20 h. */
    fprintf(f, "key,avg_spend_90d,account_age_days,chargebacks_1y,_updated_at\n");
    for (uint64_t n = 0; n < go.cards; n++) {
        uint64_t h = mix(go.seed * 0x9e3779b97f4a7c15ull ^ mix(n + 1)), h2 = mix(h);
        uint64_t cents = rts_gen_card_spend_cents(g, n) * (80 + (h >> 8) % 41) / 100;
        unsigned cb = (h >> 32) % 100 < 90 ? 0 : (h >> 32) % 100 < 97 ? 1 : 2 + (h >> 40) % 3;
        int64_t age = (h >> 48) % 10 == 0 ? 25 * hour + (int64_t)(h2 % (uint64_t)(47 * hour))
                                           : (int64_t)(h2 % (uint64_t)(20 * hour));
        if (h % 100 < 2) {
            continue;
        }
        fprintf(f, "card:c-%llu,%llu.%02llu,%llu,%u,%lld\n", (unsigned long long)n,
                (unsigned long long)(cents / 100), (unsigned long long)(cents % 100),
                (unsigned long long)(1 + (h >> 20) % 3650), cb, (long long)(go.start_ms - age));
    }
    if (fflush(f) != 0 || ferror(f)) {
        fprintf(stderr, "rtscore store profiles: write error\n");
        rc = 2;
    }
    if (f != stdout) {
        fclose(f);
    }
    rts_gen_free(g);
    return rc;
}

int rts_cmd_store(int argc, char **argv)
{
    if (argc < 2) {
        return store_usage("expected load, get or profiles");
    }
    if (strcmp(argv[1], "load") == 0) {
        return cmd_load(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "get") == 0) {
        return cmd_get(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "profiles") == 0) {
        return cmd_profiles(argc - 1, argv + 1);
    }
    return store_usage("expected load, get or profiles");
}
