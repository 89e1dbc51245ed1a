/*
 * http.c - the HTTP server of http.h on libmicrohttpd (MHD).
 *
 * We bind the listening socket ourselves (clear errors, the loopback check on
 * the exact address bound, the port read back) and hand it to MHD, which
 * runs a pool of RTS_HTTP_THREADS threads and closes the socket when it
 * stops. MHD calls on_request() at least twice per request: once when the
 * headers are in (where the server decides everything that does not need
 * the body: admin token, route, declared body size, and answers at once if
 * it must refuse), then once per body chunk, then once with no data, where
 * the handler runs. Per-request state (struct req) is made by on_uri(),
 * which MHD calls with the raw URI before it strips the query, and freed by
 * on_done(), which MHD calls for every request on_uri() saw.
 *
 * Nothing here logs a request header, the query or the token: MHD's own
 * messages go through mhd_log(), which drops any that mention credentials.
 */
#include "serve/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fmt.h"
#include "core/log.h"

#define TOKEN_FILE_MAX 4096 /* bytes of a token file */
#define DISCARD_MAX                                                                                \
    (16u * RTS_HTTP_MAX_BODY) /* body bytes read past the limit before hanging up                  \
                               */
#define ERROR_MSG_MAX 320     /* bytes of an error message in a JSON error */

struct route {
    char *method, *path;
    void (*handler)(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp);
    void *arg;
};

struct rts_http {
    struct MHD_Daemon *mhd;
    uint16_t port;
    size_t token_len; /* 0: no token, /admin is open (loopback only) */
    char token[RTS_HTTP_TOKEN_MAX + 1];
    size_t nroutes;
    struct route routes[RTS_HTTP_MAX_ROUTES];
};

/* One request, from on_uri() to on_done(). */
struct req {
    char *query;               /* raw query, NULL if none */
    const struct route *route; /* chosen when the headers are in */
    int admitted;              /* the header-time checks passed */
    int too_large, nomem;      /* the body did not fit / could not be kept */
    size_t discarded;          /* body bytes dropped past the limit */
    struct rts_buf body;
};

/* ---- responses ---- */

enum rts_err rts_http_error(struct rts_http_resp *resp, int status, const char *msg)
{
    char esc[6 * ERROR_MSG_MAX + 3];
    size_t n = msg ? strlen(msg) : 0;

    resp->status = status;
    resp->content_type = "application/json";
    resp->body.len = 0;
    /* a cut in the middle of a UTF-8 sequence comes out as \ufffd */
    n = rts_fmt_json_str(esc, sizeof(esc), msg ? msg : "", n > ERROR_MSG_MAX ? ERROR_MSG_MAX : n);
    if (rts_buf_append(&resp->body, "{\"error\":", 9) || rts_buf_append(&resp->body, esc, n) ||
        rts_buf_append(&resp->body, "}\n", 2)) {
        return RTS_ERR_NOMEM;
    }
    return RTS_ERR_OK;
}

/* Queue @body (taken over when the response is built) with @status. @allow
 * adds an Allow header (405), @challenge a WWW-Authenticate (401). */
static enum MHD_Result reply(struct MHD_Connection *c, int status, const char *ctype,
                             struct rts_buf *body, const char *allow, int challenge)
{
    struct MHD_Response *r;
    enum MHD_Result ret = MHD_NO;

    if (body->data) {
        r = MHD_create_response_from_buffer_with_free_callback(body->len, body->data, free);
        if (r) {
            memset(body, 0, sizeof(*body)); /* the response frees it */
        }
    } else {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!r) {
        return MHD_NO; /* out of memory: MHD closes the connection */
    }
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) == MHD_NO ||
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_NO ||
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") == MHD_NO ||
        (allow && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow) == MHD_NO) ||
        (challenge && MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                              "Bearer realm=\"rtscore admin\"") == MHD_NO)) {
        goto out;
    }
    ret = MHD_queue_response(c, (unsigned)status, r);
out:
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, int status, const char *msg,
                                   const char *allow, int challenge)
{
    struct rts_http_resp resp = {0};
    enum MHD_Result ret = MHD_NO;

    if (rts_http_error(&resp, status, msg) == RTS_ERR_OK) {
        ret = reply(c, status, "application/json", &resp.body, allow, challenge);
    }
    rts_buf_fini(&resp.body);
    return ret;
}

/* ---- admission: token, route, declared size ---- */

static int is_admin_path(const char *path)
{
    return strncmp(path, "/admin", 6) == 0 && (path[6] == '\0' || path[6] == '/');
}

/* @got[0..gn) equals the token, in time that depends on the lengths only. */
static int token_equal(const struct rts_http *h, const char *got, size_t gn)
{
    volatile unsigned char diff = 0;
    size_t i;

    for (i = 0; i < h->token_len; i++) {
        diff |= (unsigned char)h->token[i] ^ (unsigned char)(i < gn ? got[i] : 0);
    }
    return diff == 0 && gn == h->token_len;
}

static int authorized(const struct rts_http *h, struct MHD_Connection *c)
{
    const char *v;
    size_t n;

    if (h->token_len == 0) {
        return 1;
    }
    v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    /* the scheme is case-insensitive (RFC 7235) */
    if (!v || strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t')) {
        return 0;
    }
    for (v += 6; *v == ' ' || *v == '\t'; v++) {
    }
    for (n = strlen(v); n && (v[n - 1] == ' ' || v[n - 1] == '\t'); n--) {
    }
    return token_equal(h, v, n);
}

/* The route for @method @path, or NULL and the methods the path has in
 * @allow (empty if it has none). HEAD falls back to the GET route. */
static const struct route *find_route(const struct rts_http *h, const char *method,
                                      const char *path, char *allow, size_t cap)
{
    const struct route *get = NULL;
    size_t i, used = 0;
    int has_get = 0;

    allow[0] = '\0';
    for (i = 0; i < h->nroutes; i++) {
        if (strcmp(h->routes[i].path, path) != 0) {
            continue;
        }
        if (strcmp(h->routes[i].method, method) == 0) {
            return &h->routes[i];
        }
        if (strcmp(h->routes[i].method, "GET") == 0) {
            get = &h->routes[i];
            has_get = 1;
        }
        used += (size_t)snprintf(allow + used, cap - used, "%s%s", used ? ", " : "",
                                 h->routes[i].method);
        if (used >= cap) {
            used = cap - 1;
        }
    }
    if (get && strcmp(method, "HEAD") == 0) {
        return get;
    }
    if (has_get) {
        snprintf(allow + used, cap - used, ", HEAD");
    }
    return NULL;
}

/* Header-time checks. Returns MHD_YES with r->admitted set to go on reading
 * the request, or the result of queueing the refusal. */
static enum MHD_Result admit(struct rts_http *h, struct MHD_Connection *c, struct req *r,
                             const char *method, const char *path)
{
    char allow[RTS_HTTP_MAX_ROUTES * 10];
    const char *cl;
    char *end;
    unsigned long long declared;

    if (is_admin_path(path) && !authorized(h, c)) {
        return reply_error(c, MHD_HTTP_UNAUTHORIZED, "missing or wrong admin token", NULL, 1);
    }
    r->route = find_route(h, method, path, allow, sizeof(allow));
    if (!r->route) {
        if (allow[0]) {
            return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", allow, 0);
        }
        return reply_error(c, MHD_HTTP_NOT_FOUND, "not found", NULL, 0);
    }
    cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        errno = 0;
        declared = strtoull(cl, &end, 10);
        if (errno == 0 && end != cl && declared > RTS_HTTP_MAX_BODY) {
            /* refused before a byte of it is read */
            return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large", NULL, 0);
        }
    }
    r->admitted = 1;
    return MHD_YES;
}

/* ---- MHD callbacks ---- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct req *r = calloc(1, sizeof(*r));
    const char *q = strchr(uri, '?');

    (void)cls;
    (void)c;
    if (r && q) {
        r->query = strdup(q + 1); /* NULL (no memory) reads as no query */
    }
    return r;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    struct req *r = *con_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (r) {
        free(r->query);
        rts_buf_fini(&r->body);
        free(r);
        *con_cls = NULL;
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct rts_http *h = cls;
    struct req *r = *con_cls;
    struct rts_http_req req;
    struct rts_http_resp resp;
    enum MHD_Result ret;
    size_t n = *upload_size;

    (void)version;
    if (!r) {
        /* on_uri() had no memory */
        r = calloc(1, sizeof(*r));
        if (!r) {
            return MHD_NO;
        }
        *con_cls = r;
    }
    if (!r->admitted) {
        return admit(h, c, r, method, url);
    }
    if (n) {
        *upload_size = 0;
        if (r->too_large || r->body.len + n > RTS_HTTP_MAX_BODY) {
            /* chunked or lying about its length: read and drop the rest (a
             * 413 needs the request read), hang up on a very long one */
            if (!r->too_large) {
                r->too_large = 1;
                rts_buf_fini(&r->body);
            }
            r->discarded += n;
            return r->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
        }
        if (!r->nomem && rts_buf_append(&r->body, upload, n)) {
            r->nomem = 1;
        }
        return MHD_YES;
    }
    if (r->too_large) {
        return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large", NULL, 0);
    }
    if (r->nomem) {
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL, 0);
    }
    req.method = method;
    req.path = url;
    req.query = r->query ? r->query : "";
    req.body = r->body.data ? r->body.data : "";
    req.body_len = r->body.len;
    resp.status = MHD_HTTP_OK;
    resp.content_type = "application/json";
    memset(&resp.body, 0, sizeof(resp.body));
    r->route->handler(r->route->arg, &req, &resp);
    if (resp.status < 200 || resp.status > 599) {
        rts_http_error(&resp, MHD_HTTP_INTERNAL_SERVER_ERROR, "handler gave no valid status");
    }
    ret = reply(c, resp.status, resp.content_type ? resp.content_type : "application/json",
                &resp.body, NULL, 0);
    rts_buf_fini(&resp.body);
    return ret;
}

/* 1 if @s holds @word (lower case), in any case. */
static int mentions(const char *s, const char *word)
{
    size_t n = strlen(word);

    for (; *s; s++) {
        if (strncasecmp(s, word, n) == 0) {
            return 1;
        }
    }
    return 0;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    size_t n;

    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
        line[--n] = '\0';
    }
    /* never let a header value reach the log */
    if (mentions(line, "authoriz") || mentions(line, "bearer") || mentions(line, "token")) {
        rts_log(RTS_LOG_DEBUG, "http: libmicrohttpd message withheld (mentions credentials)", NULL);
        return;
    }
    /* debug: nearly all of them are about one client's bad or broken
     * request, which any port scan produces; failures to start are
     * reported by rts_http_new() itself */
    rts_log(RTS_LOG_DEBUG, "http: libmicrohttpd", "detail=\"%s\"", line);
}

/* ---- setup ---- */

/* Visible ASCII, RTS_HTTP_TOKEN_MIN..RTS_HTTP_TOKEN_MAX bytes. */
static enum rts_err check_token(const char *tok, size_t n, const char *what, struct rts_errbuf *eb)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if ((unsigned char)tok[i] <= 0x20 || (unsigned char)tok[i] >= 0x7f) {
            return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                            "%s: the admin token holds a space, control or non-ASCII character",
                            what);
        }
    }
    if (n < RTS_HTTP_TOKEN_MIN || n > RTS_HTTP_TOKEN_MAX) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                        "%s: the admin token is %zu bytes; it must be %d to %d (e.g. `openssl "
                        "rand -hex 32`)",
                        what, n, RTS_HTTP_TOKEN_MIN, RTS_HTTP_TOKEN_MAX);
    }
    return RTS_ERR_OK;
}

static enum rts_err check_routes(const struct rts_http_route *routes, size_t n,
                                 struct rts_errbuf *eb)
{
    const char *m;
    size_t i, j;

    if (n > RTS_HTTP_MAX_ROUTES || (n && !routes)) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "http: %zu routes (at most %d)", n,
                        RTS_HTTP_MAX_ROUTES);
    }
    for (i = 0; i < n; i++) {
        m = routes[i].method;
        if (!m || !*m || strspn(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(m) || strlen(m) > 8 ||
            !routes[i].path || routes[i].path[0] != '/' || strchr(routes[i].path, '?') ||
            !routes[i].handler) {
            return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                            "http: route %zu: needs an upper-case method, a path starting with "
                            "'/' (no query) and a handler",
                            i);
        }
        for (j = 0; j < i; j++) {
            if (strcmp(routes[j].method, m) == 0 && strcmp(routes[j].path, routes[i].path) == 0) {
                return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "http: route %s %s given twice", m,
                                routes[i].path);
            }
        }
    }
    return RTS_ERR_OK;
}

/* "host:port", "[v6]:port", ":port" into @host and @port. */
static enum rts_err split_listen(const char *addr, char *host, size_t hcap, char *port,
                                 struct rts_errbuf *eb)
{
    const char *colon, *hs = addr, *he;
    size_t i;

    if (!addr) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "http.listen: missing; expected host:port");
    }
    if (addr[0] == '[') {
        hs = addr + 1;
        he = strchr(hs, ']');
        colon = he && he[1] == ':' ? he + 1 : NULL;
    } else {
        colon = strrchr(addr, ':');
        he = colon;
        if (colon && memchr(addr, ':', (size_t)(colon - addr))) {
            colon = NULL; /* a bare IPv6 address */
        }
    }
    if (!colon || !colon[1] || strlen(colon + 1) > 5 ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        strtoul(colon + 1, NULL, 10) > 65535 || (size_t)(he - hs) >= hcap) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                        "http.listen '%s': expected host:port, [ipv6]:port or :port with a port "
                        "of 0 to 65535",
                        addr);
    }
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    for (i = 0; colon[1 + i]; i++) {
        port[i] = colon[1 + i];
    }
    port[i] = '\0';
    return RTS_ERR_OK;
}

static int is_loopback(const struct sockaddr *sa)
{
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

    if (sa->sa_family == AF_INET) {
        return (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
               (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127);
    }
    return 0;
}

/* A bound, listening, non-blocking socket for @addr, its port in *@port. */
static enum rts_err open_listener(const char *addr, int open_admin, int *fd_out, uint16_t *port,
                                  struct rts_errbuf *eb)
{
    struct addrinfo hints, *res = NULL, *ai;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[256], portstr[6];
    int fd = -1, one = 1, gai, err = 0;
    enum rts_err rc;

    rc = split_listen(addr, host, sizeof(host), portstr, eb);
    if (rc) {
        return rc;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    gai = getaddrinfo(host[0] ? host : "0.0.0.0", portstr, &hints, &res);
    if (gai) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "http.listen '%s': %s", addr, gai_strerror(gai));
    }
    for (ai = res; ai; ai = ai->ai_next) {
        if (open_admin && !is_loopback(ai->ai_addr)) {
            rc = rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                          "http.listen '%s' is not a loopback address, and the admin API has no "
                          "token: set http.admin_token_file, or addr on 127.0.0.1 or [::1]",
                          addr);
            goto out;
        }
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0 &&
            getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
            break;
        }
        err = errno;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        rc = rts_errf(eb, RTS_ERR_IO, 0, 0, "http.listen '%s': cannot listen: %s", addr,
                      strerror(err ? err : EADDRNOTAVAIL));
        goto out;
    }
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
out:
    freeaddrinfo(res);
    return rc;
}

struct rts_http *rts_http_new(const char *listen, const char *token,
                              const struct rts_http_route *routes, size_t nroutes,
                              struct rts_errbuf *eb)
{
    struct rts_http *h = NULL;
    struct stat before, after;
    int fd = -1, admin = 0;
    size_t i;

    if (check_routes(routes, nroutes, eb)) {
        return NULL;
    }
    if (token && *token && check_token(token, strlen(token), "http", eb)) {
        return NULL;
    }
    h = calloc(1, sizeof(*h));
    if (!h) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "http: out of memory");
        return NULL;
    }
    if (token && *token) {
        h->token_len = strlen(token);
        memcpy(h->token, token, h->token_len);
    }
    for (i = 0; i < nroutes; i++) {
        h->routes[i].method = strdup(routes[i].method);
        h->routes[i].path = strdup(routes[i].path);
        h->routes[i].handler = routes[i].handler;
        h->routes[i].arg = routes[i].arg;
        h->nroutes = i + 1;
        if (!h->routes[i].method || !h->routes[i].path) {
            rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "http: out of memory");
            goto fail;
        }
        admin |= is_admin_path(routes[i].path);
    }
    if (open_listener(listen, admin && !h->token_len, &fd, &h->port, eb)) {
        goto fail;
    }
    fstat(fd, &before);
    h->mhd = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, h,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)RTS_HTTP_THREADS, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)RTS_HTTP_MAX_CONNS, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)RTS_HTTP_TIMEOUT_S,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
        MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
    if (!h->mhd) {
        /* close the socket unless MHD already did (same inode: still ours) */
        if (fstat(fd, &after) == 0 && after.st_ino == before.st_ino &&
            after.st_dev == before.st_dev) {
            close(fd);
        }
        rts_errf(eb, RTS_ERR_IO, 0, 0, "http.listen '%s': the HTTP server did not start", listen);
        goto fail;
    }
    if (admin && !h->token_len) {
        rts_log(RTS_LOG_WARN, "http: admin API without a token, open to local users only",
                "listen=%s", listen);
    }
    return h;
fail:
    rts_http_free(h);
    return NULL;
}

uint16_t rts_http_port(const struct rts_http *h)
{
    return h->port;
}

void rts_http_free(struct rts_http *h)
{
    size_t i;

    if (!h) {
        return;
    }
    if (h->mhd) {
        MHD_stop_daemon(h->mhd); /* joins the threads, closes the socket */
    }
    for (i = 0; i < h->nroutes; i++) {
        free(h->routes[i].method);
        free(h->routes[i].path);
    }
    explicit_bzero(h->token, sizeof(h->token));
    free(h);
}

/* ---- the token file ---- */

enum rts_err rts_http_read_token(const char *path, char *out, size_t cap, struct rts_errbuf *eb)
{
    char buf[TOKEN_FILE_MAX + 1];
    struct stat st;
    size_t len = 0, s, e;
    ssize_t n;
    enum rts_err rc = RTS_ERR_OK;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        return rts_errf(eb, RTS_ERR_IO, 0, 0, "%s: cannot open the admin token file: %s", path,
                        strerror(errno));
    }
    if (fstat(fd, &st) != 0) {
        rc = rts_errf(eb, RTS_ERR_IO, 0, 0, "%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s: the admin token file is not a regular file",
                      path);
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        rc = rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                      "%s: the admin token file is accessible by group or others (mode %04o); "
                      "run chmod 600 on it",
                      path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    while (len < sizeof(buf)) {
        n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = rts_errf(eb, RTS_ERR_IO, 0, 0, "%s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    if (len > TOKEN_FILE_MAX) {
        rc = rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s: the admin token file is larger than %d bytes",
                      path, TOKEN_FILE_MAX);
        goto out;
    }
    for (s = 0; s < len && buf[s] && strchr(" \t\r\n\v\f", buf[s]); s++) {
    }
    for (e = len; e > s && buf[e - 1] && strchr(" \t\r\n\v\f", buf[e - 1]); e--) {
    }
    if (e == s) {
        rc = rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s: the admin token file is empty", path);
        goto out;
    }
    rc = check_token(buf + s, e - s, path, eb);
    if (rc) {
        goto out;
    }
    if (e - s >= cap) {
        rc = rts_errf(eb, RTS_ERR_LIMIT, 0, 0, "%s: the token does not fit the caller's buffer",
                      path);
        goto out;
    }
    memcpy(out, buf + s, e - s);
    out[e - s] = '\0';
out:
    explicit_bzero(buf, sizeof(buf));
    close(fd);
    return rc;
}
