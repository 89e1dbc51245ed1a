/*
 * backfill.c - offline feature computation for training sets (backfill.h).
 *
 * All events are decoded first (bad ones counted and skipped), then sorted
 * by event time - stable, so events with equal times keep their input order -
 * and evaluated one by one with the same rts_pipeline_eval() the workers use.
 * Memory is the decoded input; backfill is a batch job, not the hot path.
 */
#include "daemon/backfill.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/fmt.h"
#include "core/text.h"
#include "daemon/pipeline.h"

struct row {
    int64_t ts;
    size_t seq, off;
};

static int row_cmp(const void *a, const void *b)
{
    const struct row *x = a, *y = b;

    if (x->ts != y->ts) {
        return x->ts < y->ts ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int put_csv(FILE *f, const char *s, size_t n)
{
    char tmp[2 * 512 + 2];

    if (n > 512) {
        n = 512;
    }
    return fwrite(tmp, 1, rts_csv_field(tmp, sizeof(tmp), s, n), f) > 0 || n == 0 ? 0 : -1;
}

static void put_value(FILE *f, enum rts_type t, union rts_val v)
{
    char num[40];

    if (rts_val_missing(t, v)) {
        return; /* missing: an empty cell */
    }
    if (t == RTS_T_STR) {
        put_csv(f, v.str.p, v.str.n);
    } else {
        fwrite(num, 1, rts_fmt_double(num, v.num), f);
    }
}

/* Decode every line of @text into @recs, indexing them in @rows. */
static enum rts_err decode_all(const struct rts_pipeline_conf *c, const char *text, size_t len,
                               struct rts_buf *recs, struct row **rows, size_t *nrows,
                               struct rts_backfill_stats *st, struct rts_errbuf *eb)
{
    size_t cap = rts_decode_record_max(c->schema, c->limits.max_event_bytes), nalloc = 0;
    char *scratch = aligned_alloc(8, (cap + 7) & ~(size_t)7);
    const char *p = text, *end = text + len;
    struct rts_decode_err err;
    enum rts_err rc = RTS_ERR_OK;

    if (!scratch) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p), size;
        const char *line = p;

        p += n + (nl != NULL);
        if (n > 0 && line[n - 1] == '\r') {
            n--;
        }
        if (n == 0) {
            continue;
        }
        size = rts_decode(c->schema, line, n, c->limits.max_event_bytes, 0, scratch, cap, &err);
        if (!size) {
            st->dlq++;
            continue;
        }
        if (*nrows == nalloc) {
            struct row *nr;
            nalloc = nalloc ? 2 * nalloc : 4096;
            nr = realloc(*rows, nalloc * sizeof(*nr));
            if (!nr) {
                rc = rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
                break;
            }
            *rows = nr;
        }
        (*rows)[*nrows].seq = *nrows;
        (*rows)[*nrows].off = recs->len; /* records are 8-byte multiples: offsets stay aligned */
        (*rows)[*nrows].ts = 0;           /* read from the record once all are decoded */
        if (rts_buf_append(recs, scratch, size)) {
            rc = rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
            break;
        }
        (*nrows)++;
    }
    free(scratch);
    return rc;
}

enum rts_err rts_backfill(struct rts_pipeline_conf *conf, const char *in, const char *out,
                          const char *label, struct rts_backfill_stats *st,
                          struct rts_errbuf *eb)
{
    struct rts_pipeline *p = NULL;
    struct rts_eval e = {0};
    struct rts_buf text = {0}, recs = {0};
    struct row *rows = NULL;
    size_t nrows = 0;
    int label_idx = -1;
    enum rts_type label_type = RTS_T_NUM;
    FILE *f = NULL;
    enum rts_err rc;

    memset(st, 0, sizeof(*st));
    if (label) {
        label_idx = rts_schema_find(conf->schema, label, strlen(label));
        if (label_idx < 0) {
            rts_pipeline_conf_free(conf);
            return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                            "--label %s: not a field of event.fields (declare it, e.g. "
                            "%s: {type: int, default: 0})", label, label);
        }
        label_type = rts_field_value_type(rts_schema_field(conf->schema, (size_t)label_idx)->type);
    }
    /* offline, in event-time order: the local state, never the live Redis
     * state (its values are the same but distinct's HyperLogLog) */
    memset(&conf->state, 0, sizeof(conf->state));
    p = rts_pipeline_new(conf, eb);
    if (!p) {
        return eb ? eb->code : RTS_ERR_INVAL;
    }
    rc = rts_eval_init(&e, p, (uint64_t)p->conf->limits.max_keys, 1, eb);
    if (rc) {
        goto out;
    }
    e.features_only = 1; /* a training set needs the features, not today's score */
    rc = rts_buf_read_file(&text, in, (size_t)1 << 36, eb);
    if (rc) {
        goto out;
    }
    rc = decode_all(p->conf, text.data ? text.data : "", text.len, &recs, &rows, &nrows, st, eb);
    if (rc) {
        goto out;
    }
    for (size_t i = 0; i < nrows; i++) {
        struct rts_event ev;
        rts_event_view(p->conf->schema, recs.data + rows[i].off, &ev, e.rows[0].vals);
        rows[i].ts = ev.ts_ms;
    }
    qsort(rows, nrows, sizeof(*rows), row_cmp);
    f = strcmp(out, "-") == 0 ? stdout : fopen(out, "w");
    if (!f) {
        rc = rts_errf(eb, RTS_ERR_IO, 0, 0, "cannot open '%s' for writing", out);
        goto out;
    }
    fputs("id,key,ts", f);
    for (size_t i = 0; i < p->nfeatures; i++) {
        fputc(',', f);
        put_csv(f, rts_features_name(p->features, i), strlen(rts_features_name(p->features, i)));
    }
    if (label) {
        fputc(',', f);
        put_csv(f, label, strlen(label));
    }
    fputc('\n', f);
    for (size_t i = 0; i < nrows; i++) {
        struct rts_event ev;
        char num[32];

        rts_event_view(p->conf->schema, recs.data + rows[i].off, &ev, e.rows[0].vals);
        rts_pipeline_eval(p, &e, &ev);
        put_csv(f, ev.id.p, ev.id.n);
        fputc(',', f);
        put_csv(f, ev.key.p, ev.key.n);
        fputc(',', f);
        fwrite(num, 1, rts_fmt_i64(num, ev.ts_ms), f);
        for (size_t k = 0; k < p->nfeatures; k++) {
            fputc(',', f);
            put_value(f, RTS_T_NUM, e.rows[0].frame[p->nfields + k]);
        }
        if (label_idx >= 0) {
            fputc(',', f);
            put_value(f, label_type, e.rows[0].frame[label_idx]);
        }
        fputc('\n', f);
        st->rows++;
    }
    if (fflush(f) != 0 || ferror(f)) {
        rc = rts_errf(eb, RTS_ERR_IO, 0, 0, "writing '%s' failed", out);
    }
out:
    if (f && f != stdout) {
        fclose(f);
    }
    free(rows);
    rts_buf_fini(&recs);
    rts_buf_fini(&text);
    rts_eval_fini(&e);
    rts_pipeline_free(p);
    return rc;
}
