/*
 * path.c - relative data paths, from the working directory or next to the
 * executable (path.h).
 */
#include "core/path.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *rts_path_resolve(const char *path, char *buf, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n;
    char *slash;

    if (path[0] == '/' || access(path, F_OK) == 0) {
        return path;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        return path;
    }
    exe[n] = 0;
    slash = strrchr(exe, '/');
    if (!slash) {
        return path;
    }
    *slash = 0;
    if ((size_t)snprintf(buf, cap, "%s/../%s", exe, path) >= cap || access(buf, F_OK) != 0) {
        return path;
    }
    return buf;
}
