/*
 * share.c - the registry of objects that sinks of one pipeline share (see
 * sink.h): a short list searched by kind and key. It holds a handful of
 * entries (one per distinct Kafka producer), is used only while sinks are
 * opened and closed, and never on the per-record path.
 */
#include <stdlib.h>
#include <string.h>

#include "sink/sink.h"

struct share_entry {
    struct share_entry *next;
    char *kind, *key;
    void *obj;
};

struct rts_sink_share {
    struct share_entry *head;
};

struct rts_sink_share *rts_sink_share_new(void)
{
    return calloc(1, sizeof(struct rts_sink_share));
}

static void entry_free(struct share_entry *e)
{
    free(e->kind);
    free(e->key);
    free(e);
}

void rts_sink_share_free(struct rts_sink_share *sh)
{
    if (!sh) {
        return;
    }
    while (sh->head) {
        struct share_entry *e = sh->head;
        sh->head = e->next;
        entry_free(e);
    }
    free(sh);
}

void *rts_sink_share_find(const struct rts_sink_share *sh, const char *kind, const char *key)
{
    for (const struct share_entry *e = sh ? sh->head : NULL; e; e = e->next) {
        if (strcmp(e->kind, kind) == 0 && strcmp(e->key, key) == 0) {
            return e->obj;
        }
    }
    return NULL;
}

enum rts_err rts_sink_share_add(struct rts_sink_share *sh, const char *kind, const char *key,
                                void *obj, struct rts_errbuf *eb)
{
    struct share_entry *e = calloc(1, sizeof(*e));

    if (!e || !(e->kind = strdup(kind)) || !(e->key = strdup(key))) {
        if (e) {
            entry_free(e);
        }
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
    }
    e->obj = obj;
    e->next = sh->head;
    sh->head = e;
    return RTS_ERR_OK;
}

void rts_sink_share_remove(struct rts_sink_share *sh, const void *obj)
{
    for (struct share_entry **at = sh ? &sh->head : NULL; at && *at; at = &(*at)->next) {
        if ((*at)->obj == obj) {
            struct share_entry *e = *at;
            *at = e->next;
            entry_free(e);
            return;
        }
    }
}

size_t rts_sink_share_count(const struct rts_sink_share *sh)
{
    size_t n = 0;

    for (const struct share_entry *e = sh ? sh->head : NULL; e; e = e->next) {
        n++;
    }
    return n;
}
