/*
 * registry.c - the list of sink types. A new sink adds one line here.
 */
#include <string.h>

#include "sink/sink.h"

const struct rts_sink_ops *const rts_sinks[] = {
    &rts_sink_file,
    &rts_sink_null,
    &rts_sink_kafka,
    NULL,
};

const struct rts_sink_ops *rts_sink_find(const char *name)
{
    for (size_t i = 0; rts_sinks[i]; i++) {
        if (strcmp(rts_sinks[i]->name, name) == 0) {
            return rts_sinks[i];
        }
    }
    return NULL;
}
