/*
 * http.h - the control-plane HTTP server (/metrics, /healthz, /readyz,
 * /status, /admin/...) on libmicrohttpd.
 *
 * A server owns one listening socket and a small pool of RTS_HTTP_THREADS
 * threads that accept, parse and answer; handlers run on those threads, so
 * up to RTS_HTTP_THREADS handlers may run at once. Everything is bounded: at
 * most RTS_HTTP_MAX_CONNS connections, RTS_HTTP_MAX_BODY bytes of request
 * body (413 past it), request headers within libmicrohttpd's per-connection
 * memory (32 KiB), and RTS_HTTP_TIMEOUT_S seconds of inactivity per
 * connection.
 *
 * Routing is exact: method + path (decoded, without the query). A path with
 * no route is 404, a path routed for other methods is 405 (with Allow), HEAD
 * is served by the GET route (without the body). Every error the server
 * writes is JSON: {"error":"..."}.
 *
 * Admin: every path equal to /admin or under /admin/ requires
 * "Authorization: Bearer <token>", checked before routing (an unknown admin
 * path is 401 too, so routes are not disclosed) and before any body is read,
 * and compared in time independent of where the strings differ; missing or
 * wrong is 401 with WWW-Authenticate: Bearer. With no token, admin routes
 * are open, which is only allowed on loopback: rts_http_new() refuses a
 * non-loopback listen address when admin routes exist and no token is set.
 * The token and the Authorization header are never logged.
 */
#ifndef RTS_SERVE_HTTP_H
#define RTS_SERVE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define RTS_HTTP_THREADS 2            /* server threads (handlers run on them) */
#define RTS_HTTP_MAX_CONNS 64         /* open connections in all */
#define RTS_HTTP_MAX_BODY (64u << 10) /* request body bytes */
#define RTS_HTTP_TIMEOUT_S 10         /* idle seconds before a connection is closed */
#define RTS_HTTP_MAX_ROUTES 64        /* routes per server */
#define RTS_HTTP_TOKEN_MIN 16         /* admin token length, bytes */
#define RTS_HTTP_TOKEN_MAX 256        /* (a token buffer needs one more for the NUL) */

struct rts_http;

/* A request as a handler sees it; valid during the handler call only. */
struct rts_http_req {
    const char *method; /* "GET", "POST", "HEAD" (served by the GET route), ... */
    const char *path;   /* percent-decoded path without the query: "/admin/models" */
    const char *query;  /* raw query after '?', not decoded; "" if none */
    const char *body;   /* the body, NUL-terminated after body_len bytes; "" if none */
    size_t body_len;    /* <= RTS_HTTP_MAX_BODY */
};

/* The handler's answer. The server sets status 200, content type
 * "application/json" and an empty body before the call; the handler
 * changes what it needs. content_type must live until the handler returns
 * (a string literal). The body is taken over by the server. */
struct rts_http_resp {
    int status; /* 200..599; anything else is sent as 500 */
    const char *content_type;
    struct rts_buf body;
};

/* A route: @handler(@arg, req, resp) answers @method @path. Paths are exact
 * and start with '/'; at most one route per method and path. */
struct rts_http_route {
    const char *method;
    const char *path;
    void (*handler)(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp);
    void *arg;
};

/* Start a server listening on @listen, "host:port": an IPv4 address, a name
 * ("localhost"), "[v6addr]", or an empty host for every IPv4 interface; port
 * 0 takes any free port (see rts_http_port). @token (NULL or "" for none)
 * guards /admin; it must be RTS_HTTP_TOKEN_MIN..RTS_HTTP_TOKEN_MAX visible
 * ASCII characters and is copied. @routes[0..@nroutes) are copied (their
 * strings too); handlers and args must stay valid until rts_http_free().
 * Returns the running server, or NULL with @eb filled in: RTS_ERR_INVAL for
 * a bad address, token or route table, or a non-loopback address with admin
 * routes and no token; RTS_ERR_IO when the address cannot be bound.
 * Thread: the owner's (not a handler). */
struct rts_http *rts_http_new(const char *listen, const char *token,
                              const struct rts_http_route *routes, size_t nroutes,
                              struct rts_errbuf *eb) __attribute__((warn_unused_result));

/* The bound port (the one picked when the listen port was 0). Thread: any. */
uint16_t rts_http_port(const struct rts_http *h);

/* Stop: close the socket, finish or drop the connections, join the server
 * threads, free. NULL is a no-op. Thread: the owner's, never a handler
 * (it waits for the handlers). */
void rts_http_free(struct rts_http *h);

/* Set @resp to a JSON error: @status and {"error":@msg} (@msg escaped).
 * Returns RTS_ERR_NOMEM if the body could not be built (status is set
 * anyway). Thread: any (a handler). */
enum rts_err rts_http_error(struct rts_http_resp *resp, int status, const char *msg);

/* Read the admin token from the file at @path into @out (@cap bytes, at
 * least RTS_HTTP_TOKEN_MAX + 1): surrounding whitespace is trimmed; the file
 * must be a regular file without any permission for group or others (mode
 * 0600 or 0400), at most 4 KiB, and the token must be non-empty, visible
 * ASCII, RTS_HTTP_TOKEN_MIN..RTS_HTTP_TOKEN_MAX bytes. Errors name the file
 * and the reason, never the content: RTS_ERR_IO (cannot open or read),
 * RTS_ERR_INVAL (permissions, empty, bad characters, length).
 * Thread: any (at start). */
enum rts_err rts_http_read_token(const char *path, char *out, size_t cap, struct rts_errbuf *eb);

#endif /* RTS_SERVE_HTTP_H */
