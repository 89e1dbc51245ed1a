/*
 * file.c - the `file` sink: JSON lines appended to a path or "-" (stdout).
 *
 * Each write() is one batch of whole records written with write(2) under the
 * sink's mutex, so lines from different workers never interleave and a crash
 * leaves at most a torn last line. flush() fsyncs when `fsync` is set.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sink/sink.h"

struct file_sink {
    /* options */
    const char *path;
    int append;
    int fsync;
    /* state */
    int fd;
    int mutex_ok;
    pthread_mutex_t mu;
};

static const struct rts_opt file_sink_opts[] = {
    RTS_OPT_STR_REQ("path", offsetof(struct file_sink, path),
                    "output file of JSON lines; \"-\" is stdout; parent folders are created"),
    RTS_OPT_BOOL("append", "false", offsetof(struct file_sink, append),
                 "append to an existing file instead of starting it anew"),
    RTS_OPT_BOOL("fsync", "false", offsetof(struct file_sink, fsync),
                 "fsync on every flush (offset commits wait for it)"),
    RTS_OPT_END,
};

/* mkdir -p of the folder part of @path */
static int make_parents(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);

    if (n >= sizeof(tmp)) {
        return -1;
    }
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    return 0;
}

static enum rts_err file_sink_init(void *ctx, const struct rts_sink_env *env, struct rts_errbuf *eb)
{
    struct file_sink *s = ctx;
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (s->append ? O_APPEND : O_TRUNC);

    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "sink: cannot create a mutex");
    }
    s->mutex_ok = 1;
    if (strcmp(s->path, "-") == 0) {
        s->fd = 1;
        return RTS_ERR_OK;
    }
    if (make_parents(s->path) != 0) {
        return rts_errf(eb, RTS_ERR_IO, 0, 0, "sink: cannot create the folder of '%s': %s", s->path,
                        strerror(errno));
    }
    s->fd = open(s->path, flags, 0644);
    if (s->fd < 0) {
        return rts_errf(eb, RTS_ERR_IO, 0, 0, "sink: cannot open '%s': %s", s->path,
                        strerror(errno));
    }
    return RTS_ERR_OK;
}

static enum rts_sink_status file_sink_write(void *ctx, const struct rts_batch *b,
                                            struct rts_errbuf *eb)
{
    struct file_sink *s = ctx;
    size_t done = 0;
    enum rts_sink_status st = RTS_SINK_OK;

    pthread_mutex_lock(&s->mu);
    while (done < b->len) {
        ssize_t w = write(s->fd, b->buf + done, b->len - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            rts_errf(eb, RTS_ERR_IO, 0, 0, "sink: writing '%s': %s", s->path, strerror(errno));
            st = errno == ENOSPC || errno == EAGAIN ? RTS_SINK_RETRY : RTS_SINK_ERROR;
            break;
        }
        done += (size_t)w;
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

static enum rts_err file_sink_flush(void *ctx, struct rts_errbuf *eb)
{
    struct file_sink *s = ctx;

    if (s->fsync && s->fd > 2 && fsync(s->fd) != 0) {
        return rts_errf(eb, RTS_ERR_IO, 0, 0, "sink: fsync '%s': %s", s->path, strerror(errno));
    }
    return RTS_ERR_OK;
}

static void file_sink_fini(void *ctx)
{
    struct file_sink *s = ctx;

    if (s->fd > 2) {
        close(s->fd);
    }
    if (s->mutex_ok) {
        pthread_mutex_destroy(&s->mu);
    }
}

const struct rts_sink_ops rts_sink_file = {
    .name = "file",
    .description = "JSON lines to a file or stdout",
    .opts = file_sink_opts,
    .ctx_size = sizeof(struct file_sink),
    .init = file_sink_init,
    .write = file_sink_write,
    .flush = file_sink_flush,
    .fini = file_sink_fini,
};
