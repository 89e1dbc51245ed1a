/*
 * path.h - where a relative data path (a model bundle, a feature table) is
 * found: from the working directory, and failing that from the folder above
 * the executable, where a source build keeps the shipped examples (so that
 * `rtscore demo` finds them from any folder).
 */
#ifndef RTS_CORE_PATH_H
#define RTS_CORE_PATH_H

#include <stddef.h>

/* @path itself when it is absolute or exists from the working directory;
 * else EXE_DIR/../@path written to @buf (@cap bytes) when that exists; else
 * @path (the caller's open then fails with the path as written). Thread: any. */
const char *rts_path_resolve(const char *path, char *buf, size_t cap);

#endif /* RTS_CORE_PATH_H */
