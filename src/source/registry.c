/*
 * registry.c - the list of source types. A new source adds one line here.
 */
#include <string.h>

#include "source/source.h"

const struct rts_source_ops *const rts_sources[] = {
    &rts_source_file,
    &rts_source_generator,
    &rts_source_kafka,
    NULL,
};

const struct rts_source_ops *rts_source_find(const char *name)
{
    for (size_t i = 0; rts_sources[i]; i++) {
        if (strcmp(rts_sources[i]->name, name) == 0) {
            return rts_sources[i];
        }
    }
    return NULL;
}
