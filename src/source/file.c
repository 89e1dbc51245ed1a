/*
 * file.c - the `file` source: JSON lines from a path or "-" (stdin).
 *
 * Lines are cut out of one read buffer and returned in place (no copy); they
 * stay valid until the next poll, which compacts the buffer. The offset of a
 * message is its 1-based line number. A line longer than max_event_bytes is
 * returned truncated (flagged) and the rest of it skipped, so one bad line
 * cannot stall the stream or grow memory. Without `follow` the source ends
 * at end of file; with it, it waits for the file to grow (and starts over
 * when the file is truncated, as log rotation does).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "source/source.h"

struct file_src {
    /* options */
    const char *path;
    int follow;
    int64_t poll_us;
    /* state */
    int fd;
    char *buf;
    size_t cap, start, end; /* unread bytes are buf[start, end) */
    size_t max_line;
    int64_t line;
    int skipping; /* inside an over-long line: drop bytes to the next '\n' */
    int eof;
    off_t pos; /* bytes consumed from the file, to notice truncation */
};

static const struct rts_opt file_opts[] = {
    RTS_OPT_STR_REQ("path", offsetof(struct file_src, path), "file of JSON lines; \"-\" is stdin"),
    RTS_OPT_BOOL("follow", "false", offsetof(struct file_src, follow),
                 "keep reading as the file grows (like tail -F) instead of ending at EOF"),
    RTS_OPT_DURATION("poll", "100ms", offsetof(struct file_src, poll_us),
                     "with follow: how often to look for new data"),
    RTS_OPT_END,
};

static enum rts_err file_init(void *ctx, const struct rts_source_env *env, struct rts_errbuf *eb)
{
    struct file_src *f = ctx;

    f->max_line = env->max_event_bytes;
    f->cap = f->max_line + 1 > (1u << 20) ? 2 * (f->max_line + 1) : (1u << 20);
    f->fd = strcmp(f->path, "-") == 0 ? 0 : open(f->path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        return rts_errf(eb, RTS_ERR_IO, 0, 0, "source.path: cannot open '%s': %s", f->path,
                        strerror(errno));
    }
    f->buf = malloc(f->cap);
    if (!f->buf) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "source: out of memory");
    }
    return RTS_ERR_OK;
}

/* Read more bytes after compacting; returns bytes read, 0 at EOF, -1 error. */
static ssize_t file_fill(struct file_src *f)
{
    ssize_t n;

    if (f->start > 0) {
        memmove(f->buf, f->buf + f->start, f->end - f->start);
        f->end -= f->start;
        f->start = 0;
    }
    do {
        n = read(f->fd, f->buf + f->end, f->cap - f->end);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        f->end += (size_t)n;
        f->pos += n;
    }
    return n;
}

/* With follow at EOF: start over if the file was truncated under us. */
static void file_check_truncated(struct file_src *f)
{
    struct stat st;

    if (f->fd != 0 && fstat(f->fd, &st) == 0 && st.st_size < f->pos) {
        lseek(f->fd, 0, SEEK_SET);
        f->pos = 0;
        f->start = f->end = 0;
        f->skipping = 0;
    }
}

static void sleep_us(int64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};

    nanosleep(&ts, NULL);
}

static void file_emit(struct file_src *f, struct rts_msg *m, const char *p, size_t len, int trunc)
{
    if (len > 0 && p[len - 1] == '\r') {
        len--;
    }
    m->data = p;
    m->len = len;
    m->partition = -1;
    m->offset = f->line;
    m->truncated = trunc;
}

static enum rts_src_status file_poll(void *ctx, struct rts_msg *msgs, size_t max, size_t *n,
                                     int timeout_ms, struct rts_errbuf *eb)
{
    struct file_src *f = ctx;
    int64_t waited_us = 0;

    *n = 0;
    for (;;) {
        /* cut complete lines out of the buffer */
        while (*n < max && f->start < f->end) {
            char *p = f->buf + f->start;
            size_t avail = f->end - f->start;
            char *nl = memchr(p, '\n', avail);
            size_t len = nl ? (size_t)(nl - p) : avail;

            if (f->skipping) {
                f->start += nl ? len + 1 : len;
                f->skipping = nl == NULL;
                continue;
            }
            if (!nl && len <= f->max_line && !f->eof) {
                break; /* a partial line: read more */
            }
            f->line++;
            if (len > f->max_line) {
                file_emit(f, &msgs[(*n)++], p, f->max_line, 1);
                f->start += nl ? len + 1 : len;
                f->skipping = nl == NULL;
                continue;
            }
            f->start += nl ? len + 1 : len;
            if (len == 0 || (len == 1 && p[0] == '\r')) {
                continue; /* blank lines are not events */
            }
            file_emit(f, &msgs[(*n)++], p, len, 0);
        }
        if (*n > 0) {
            return RTS_SRC_OK;
        }
        if (f->eof && !f->follow) {
            return RTS_SRC_EOF;
        }
        ssize_t r = file_fill(f);
        if (r < 0) {
            rts_errf(eb, RTS_ERR_IO, 0, 0, "source: reading '%s': %s", f->path, strerror(errno));
            return RTS_SRC_ERROR;
        }
        if (r > 0) {
            f->eof = 0;
            continue;
        }
        if (!f->follow) {
            f->eof = 1; /* deliver a last line without '\n', then EOF */
            continue;
        }
        if (waited_us >= (int64_t)timeout_ms * 1000) {
            return RTS_SRC_OK;
        }
        file_check_truncated(f);
        sleep_us(f->poll_us < 1000 ? 1000 : f->poll_us);
        waited_us += f->poll_us < 1000 ? 1000 : f->poll_us;
    }
}

static const char *file_label(void *ctx)
{
    struct file_src *f = ctx;

    return f->path;
}

static void file_fini(void *ctx)
{
    struct file_src *f = ctx;

    if (f->fd > 0) {
        close(f->fd);
    }
    free(f->buf);
}

const struct rts_source_ops rts_source_file = {
    .name = "file",
    .description = "JSON lines from a file or stdin; ends at EOF unless follow is set",
    .opts = file_opts,
    .ctx_size = sizeof(struct file_src),
    .init = file_init,
    .poll = file_poll,
    .label = file_label,
    .fini = file_fini,
};
