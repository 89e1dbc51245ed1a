/*
 * test_store_redis.c - the redis store and the lookup stage against a real
 * redis-server that the test starts on a free loopback port (no
 * persistence, a temporary folder, a password) and stops.
 *
 * What is written with the store's bulk write (what `rtscore store load`
 * calls) comes back from lookups, one round trip per batch; stale and
 * missing values take defaults and are counted; a wrong password fails
 * without the password in the message; a stopped server (SIGSTOP) makes a
 * batch time out without waiting much past the timeout; a connect left in
 * progress by a hung server does not fail the first call after it is back; a
 * killed server
 * makes lookups fail at once, the breaker open and answers come from the
 * cache or the defaults; once the server is back, the breaker closes and
 * values return. Timing checks are generous bounds, not measurements.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "feature/lookup.h"
#include "feature/store.h"
#include "../lib/redis_server.h"
#include "test.h"

#define MS UINT64_C(1000000)
#define PASSWORD "s3cret-pw"

static struct redis_server rs; /* the test's own redis-server */

/* ---- helpers ---- */

/* The store's options; @timeout is generous unless a test is about it:
 * a loaded machine running sanitizers can take milliseconds per batch. */
static struct rts_conf *store_yaml(const char *timeout, struct rts_errbuf *eb)
{
    char yaml[512];

    snprintf(yaml, sizeof(yaml),
             "{type: redis, addr: \"127.0.0.1:%d\", password_file: %s/pw, backoff: 10ms, "
             "max_backoff: 50ms, timeout: %s}",
             rs.port, rs.dir, timeout);
    return rts_conf_parse("t", yaml, strlen(yaml), eb);
}

static struct rts_store *open_store(struct rts_conf *doc, struct rts_errbuf *eb)
{
    struct rts_store_env env = {"profiles", "_updated_at"};

    return rts_store_open(&rts_store_redis, rts_conf_root(doc), "stores.profiles", &env, eb);
}

/* Write @n rows "card:<prefix><i>" with a = i, b = 2i (none for every
 * tenth), updated 1 s before @now_ms (48 h for every fifth). */
static enum rts_err write_rows(struct rts_store *st, void *conn, const char *prefix, int n,
                               int64_t now_ms, struct rts_errbuf *eb)
{
    static char keys[512][32], cells[512][2][32];
    struct rts_str k[512], c[512 * 2];
    int64_t upd[512];
    const char *fields[2] = {"a", "b"};
    struct rts_store_rows rows = {(size_t)n, 2, fields, k, c, upd, 0};

    for (int i = 0; i < n; i++) {
        snprintf(keys[i], sizeof(keys[i]), "card:%s%d", prefix, i);
        snprintf(cells[i][0], sizeof(cells[i][0]), "%d", i);
        snprintf(cells[i][1], sizeof(cells[i][1]), "%d", 2 * i);
        k[i].p = keys[i];
        k[i].n = (uint32_t)strlen(keys[i]);
        c[2 * i].p = cells[i][0];
        c[2 * i].n = (uint32_t)strlen(cells[i][0]);
        c[2 * i + 1].p = i % 10 == 9 ? NULL : cells[i][1]; /* every tenth: no b */
        c[2 * i + 1].n = (uint32_t)strlen(cells[i][1]);
        upd[i] = i % 5 == 4 ? now_ms - 48 * 3600 * 1000 : now_ms - 1000; /* every fifth: old */
    }
    return rts_store_write(st, conn, &rows, eb);
}

/* ---- tests ---- */

TEST(write_and_read)
{
    struct rts_errbuf eb = {0};
    struct rts_conf *doc = store_yaml("5s", &eb);
    struct rts_store *st = open_store(doc, &eb);
    void *conn = st ? rts_store_conn_new(st, &eb) : NULL;
    struct rts_str keys[3] = {{"card:c-3", 8}, {"card:none", 9}, {"card:c-9", 8}};
    const char *fields[3] = {"b", "a", "zz"};
    double v[9];
    int64_t upd[3];
    struct rts_store_query q = {3, keys, 3, fields, v, upd, 0};

    CHECK(conn != NULL);
    if (!conn) {
        fprintf(stderr, "%s\n", eb.msg);
        goto out;
    }
    CHECK_INT(write_rows(st, conn, "c-", 100, 1000000000, &eb), RTS_ERR_OK);
    CHECK_INT(rts_store_lookup(st, conn, &q, &eb), RTS_STORE_OK);
    CHECK_NEAR(v[0], 6, 0);
    CHECK_NEAR(v[1], 3, 0);
    CHECK(isnan(v[2]));
    CHECK_INT(upd[0], 1000000000 - 1000);
    CHECK(isnan(v[3]) && isnan(v[4]) && isnan(v[5]));
    CHECK_INT(upd[1], -1);
    CHECK(isnan(v[6])); /* c-9 has no b */
    CHECK_NEAR(v[7], 9, 0);
    CHECK_INT(upd[2], 1000000000 - 48 * 3600 * 1000);
    CHECK(strstr(rts_store_label(st), "redis 127.0.0.1:") != NULL);
out:
    rts_store_conn_free(st, conn);
    rts_store_close(st);
    rts_conf_free(doc);
}

TEST(wrong_password)
{
    struct rts_errbuf eb = {0};
    char yaml[256];
    struct rts_conf *doc;
    struct rts_store *st;
    void *conn;
    struct rts_str k = {"x", 1};
    const char *f[1] = {"a"};
    double v;
    int64_t upd;
    struct rts_store_query q = {1, &k, 1, f, &v, &upd, 0};

    snprintf(yaml, sizeof(yaml), "{type: redis, addr: \"127.0.0.1:%d\", password: not-%s}", rs.port,
             PASSWORD);
    doc = rts_conf_parse("t", yaml, strlen(yaml), &eb);
    st = open_store(doc, &eb);
    conn = st ? rts_store_conn_new(st, &eb) : NULL; /* connecting is not fatal here */
    CHECK(conn != NULL);
    if (conn) {
        CHECK_INT(rts_store_lookup(st, conn, &q, &eb), RTS_STORE_ERROR);
        CHECK(strstr(eb.msg, PASSWORD) == NULL);
        CHECK(strstr(eb.msg, "AUTH") != NULL || strstr(eb.msg, "reconnecting") != NULL);
    }
    rts_store_conn_free(st, conn);
    rts_store_close(st);
    rts_conf_free(doc);
}

TEST(stopped_server_times_out)
{
    struct rts_errbuf eb = {0};
    struct rts_conf *doc = store_yaml("300ms", &eb);
    struct rts_store *st = open_store(doc, &eb);
    void *conn = st ? rts_store_conn_new(st, &eb) : NULL;
    struct rts_str k = {"card:c-1", 8};
    const char *f[1] = {"a"};
    double v;
    int64_t upd;
    struct rts_store_query q = {1, &k, 1, f, &v, &upd, 0};
    uint64_t t0, took;

    CHECK(conn != NULL);
    if (!conn) {
        goto out;
    }
    CHECK_INT(rts_store_lookup(st, conn, &q, &eb), RTS_STORE_OK);
    redis_pause(&rs);
    t0 = rts_now_ns();
    CHECK_INT(rts_store_lookup(st, conn, &q, &eb), RTS_STORE_TIMEOUT);
    took = rts_now_ns() - t0;
    kill(rs.pid, SIGCONT);
    CHECK(took >= 290 * MS);  /* it did wait for the answer */
    CHECK(took < 3000 * MS);  /* and gave up near the timeout (generous: a busy machine) */
    CHECK(strstr(eb.msg, "within the deadline") != NULL);
    /* a caller's deadline shorter than the store's timeout wins */
    redis_pause(&rs);
    q.deadline_ns = rts_now_ns() + 20 * MS;
    t0 = rts_now_ns();
    CHECK_INT(rts_store_lookup(st, conn, &q, &eb), RTS_STORE_TIMEOUT);
    took = rts_now_ns() - t0;
    kill(rs.pid, SIGCONT);
    CHECK(took < 3000 * MS);
    fprintf(stderr, "timeout with a 20 ms caller deadline (store timeout 300 ms) took %.1f ms\n",
            (double)took / 1e6);
    q.deadline_ns = 0;
    /* the next call reconnects and works */
    CHECK_INT(rts_store_lookup(st, conn, &q, &eb), RTS_STORE_OK);
    CHECK_NEAR(v, 1, 0);
out:
    rts_store_conn_free(st, conn);
    rts_store_close(st);
    rts_conf_free(doc);
}

/* Fill the stopped server's accept queue: connect until a connect is left
 * unanswered (its SYN dropped, as by a hung server or a full backlog).
 * Returns how many sockets are open in @fds. */
static int fill_backlog(int *fds, int max)
{
    struct sockaddr_in a;
    int n = 0;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)rs.port);
    while (n < max) {
        struct pollfd pfd;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            break;
        }
        fds[n++] = fd;
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
            continue;
        }
        pfd.fd = fd;
        pfd.events = POLLOUT;
        pfd.revents = 0;
        if (errno != EINPROGRESS || poll(&pfd, 1, 100) == 0) {
            break; /* not answered within 100 ms: the queue is full */
        }
    }
    return n;
}

/* A connect left in progress by a hung server, with no batch waiting on it
 * past its connect_timeout (the lookup stage's circuit is open and calls
 * nothing), failed back then: once the server answers again, the next call
 * (the breaker's probe) connects afresh instead of failing on the stale
 * attempt, whose SYN the kernel would only resend a second later. */
TEST(stale_connect_is_not_the_next_calls_failure)
{
    struct rts_errbuf eb = {0};
    char yaml[512];
    struct rts_conf *doc;
    struct rts_store *st;
    void *conn;
    struct rts_str k = {"card:s-3", 8};
    const char *f[1] = {"a"};
    double v = 0;
    int64_t upd;
    struct rts_store_query q = {1, &k, 1, f, &v, &upd, 0};
    static int fds[8192];
    int nfds;
    enum rts_store_status r;

    snprintf(yaml, sizeof(yaml),
             "{type: redis, addr: \"127.0.0.1:%d\", password_file: %s/pw, timeout: 20ms, "
             "connect_timeout: 50ms, backoff: 10ms, max_backoff: 50ms}",
             rs.port, rs.dir);
    doc = rts_conf_parse("t", yaml, strlen(yaml), &eb);
    st = doc ? open_store(doc, &eb) : NULL;
    conn = st ? rts_store_conn_new(st, &eb) : NULL;
    CHECK(conn != NULL);
    if (!conn) {
        goto out;
    }
    CHECK_INT(write_rows(st, conn, "s-", 10, rts_wall_ms(), &eb), RTS_ERR_OK);
    CHECK_INT(rts_store_lookup(st, conn, &q, &eb), RTS_STORE_OK);
    redis_pause(&rs);
    nfds = fill_backlog(fds, (int)(sizeof(fds) / sizeof(fds[0])));
    /* the open connection: no answer, the call times out and closes it */
    CHECK_INT(rts_store_lookup(st, conn, &q, &eb), RTS_STORE_TIMEOUT);
    /* a new connect: its SYN is dropped, it is left in progress */
    CHECK_INT(rts_store_lookup(st, conn, &q, &eb), RTS_STORE_TIMEOUT);
    CHECK(strstr(eb.msg, "still connecting") != NULL);
    /* the server is back; no call for longer than connect_timeout */
    kill(rs.pid, SIGCONT);
    for (int i = 0; i < nfds; i++) {
        close(fds[i]);
    }
    usleep(150000);
    r = rts_store_lookup(st, conn, &q, &eb);
    CHECK_INT(r, RTS_STORE_OK);
    if (r != RTS_STORE_OK) {
        fprintf(stderr, "after the server came back: %s\n", eb.msg);
    }
    CHECK_NEAR(v, 3, 0);
out:
    rts_store_conn_free(st, conn);
    rts_store_close(st);
    rts_conf_free(doc);
}

/* The lookup stage through a kill and a restart of the server. */
TEST(lookup_stage_kill_and_restart)
{
    struct rts_errbuf eb = {0};
    struct rts_schema *s = rts_schema_new();
    struct rts_field_spec fsp;
    struct rts_feature_def defs[2];
    struct rts_store_def sd;
    struct rts_conf *doc = store_yaml("5s", &eb);
    struct rts_lookup *l = NULL;
    struct rts_lookup_worker *w = NULL;
    struct rts_store *wst = NULL;
    void *wconn = NULL;
    enum { N = 64 };
    static char names[N][16];
    union rts_val vals[N][4];
    struct rts_event ev[N];
    double out[N * 2];
    uint32_t deg[N];
    struct rts_lookup_feature_stats fst[2];
    struct rts_lookup_store_stats sst[1];
    const int64_t now_ms = rts_wall_ms();
    uint64_t calls_open;
    int closed = 0;

    memset(&fsp, 0, sizeof(fsp));
    fsp.name = "card_id";
    fsp.type = RTS_FT_STRING;
    CHECK_INT(rts_schema_add(s, &fsp, &eb), RTS_ERR_OK);
    CHECK_INT(rts_schema_set_roles(s, NULL, "card_id", NULL, &eb), RTS_ERR_OK);
    memset(defs, 0, sizeof(defs));
    defs[0].name = "a";
    defs[0].kind = RTS_FEAT_LOOKUP;
    defs[0].store = "profiles";
    defs[0].key = "card:{card_id}";
    defs[0].field = "a";
    defs[0].max_age_ms = 24 * 3600 * 1000;
    defs[0].def = -1;
    defs[1] = defs[0];
    defs[1].name = "b";
    defs[1].field = "b";
    defs[1].max_age_ms = 0;
    defs[1].def = -2;
    memset(&sd, 0, sizeof(sd));
    sd.name = "profiles";
    sd.path = "stores.profiles";
    sd.ops = &rts_store_redis;
    sd.node = rts_conf_root(doc);
    sd.updated_field = "_updated_at";
    sd.cache_ttl_ms = 1; /* entries expire at once: every batch asks, the cache is the fallback */
    sd.cache_max = 1024;
    sd.breaker.window_ms = 10000;
    sd.breaker.min_calls = 3;
    sd.breaker.failure_ratio = 0.5;
    sd.breaker.open_ms = 300;
    sd.breaker.max_open_ms = 300;
    sd.breaker.probe_calls = 1;
    l = rts_lookup_new(s, defs, 2, &sd, 1, &eb);
    CHECK(l != NULL);
    w = l ? rts_lookup_worker_new(l, N, &eb) : NULL;
    CHECK(w != NULL);
    if (!w) {
        fprintf(stderr, "%s\n", eb.msg);
        goto out;
    }
    /* data, as `store load` writes it */
    wst = open_store(doc, &eb);
    wconn = wst ? rts_store_conn_new(wst, &eb) : NULL;
    CHECK(wconn != NULL && write_rows(wst, wconn, "d-", 50, now_ms, &eb) == RTS_ERR_OK);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "d-%d", i); /* d-50.. are not in the store */
        memset(&ev[i], 0, sizeof(ev[i]));
        vals[i][0].str.p = names[i];
        vals[i][0].str.n = (uint32_t)strlen(names[i]);
        ev[i].vals = vals[i];
        ev[i].ts_ms = now_ms;
    }

    /* healthy: values, stale and missing ones defaulted and counted */
    rts_lookup_batch(w, ev, N, rts_now_ns(), 0, out, deg);
    CHECK_NEAR(out[3 * 2 + 0], 3, 0);
    CHECK_NEAR(out[3 * 2 + 1], 6, 0);
    CHECK_NEAR(out[4 * 2 + 0], -1, 0); /* 48 h old, max_age 24 h */
    CHECK_NEAR(out[4 * 2 + 1], 8, 0);  /* no max_age on b */
    CHECK_NEAR(out[9 * 2 + 1], -2, 0); /* no b */
    CHECK_NEAR(out[55 * 2 + 0], -1, 0);
    CHECK_INT(deg[3], 0);
    memset(fst, 0, sizeof(fst));
    memset(sst, 0, sizeof(sst));
    rts_lookup_worker_stats_add(w, fst, sst);
    CHECK_INT(sst[0].calls, 1); /* one round trip for the batch */
    CHECK_INT(sst[0].fetched, N);
    CHECK_INT(fst[0].values, 40);  /* 50 minus every fifth */
    CHECK_INT(fst[0].stale, 10);
    CHECK_INT(fst[0].missing, 14); /* d-50..d-63 */
    CHECK_INT(fst[1].missing, 19); /* 5 without b + 14 */
    CHECK_INT(fst[0].staleness.count, 50);

    /* killed: calls fail at once (refused), the breaker opens after 3, the
     * expired cache answers; nothing waits for the timeout */
    redis_kill(&rs);
    for (int i = 0; i < 6; i++) {
        uint64_t t0 = rts_now_ns();
        rts_lookup_batch(w, ev, N, rts_now_ns(), 0, out, deg);
        CHECK(rts_now_ns() - t0 < 2000 * MS); /* generous; a refused connect takes microseconds */
        CHECK_INT(deg[3], 1);
        CHECK_NEAR(out[3 * 2 + 0], 3, 0);  /* from the cache */
        CHECK_NEAR(out[55 * 2 + 0], -1, 0); /* cached as not found: the default */
    }
    CHECK_INT(rts_breaker_state(rts_lookup_breaker(l, 0)), RTS_BREAKER_OPEN);
    memset(sst, 0, sizeof(sst));
    rts_lookup_worker_stats_add(w, NULL, sst);
    calls_open = sst[0].calls;
    CHECK(sst[0].errors >= 2);
    CHECK(sst[0].refused >= 1);
    CHECK(sst[0].stale_served > 0);
    rts_lookup_batch(w, ev, N, rts_now_ns(), 0, out, deg);
    memset(sst, 0, sizeof(sst));
    rts_lookup_worker_stats_add(w, NULL, sst);
    CHECK(sst[0].calls == calls_open || sst[0].calls == calls_open + 1); /* at most a probe */

    /* back: the server restarts empty, data is loaded again; the breaker
     * probes after open_for and closes; fresh values return */
    CHECK_INT(redis_launch(&rs), 0);
    {
        /* the writer's connection died with the server: it reconnects (with
         * backoff, within connect_timeout, which a loaded machine can miss) */
        enum rts_err wr = RTS_ERR_IO;
        for (int i = 0; i < 40 && wr != RTS_ERR_OK; i++) {
            wr = write_rows(wst, wconn, "d-", 50, now_ms, &eb);
            if (wr != RTS_ERR_OK) {
                usleep(50000);
            }
        }
        CHECK_INT(wr, RTS_ERR_OK);
    }
    for (int i = 0; i < 200 && !closed; i++) {
        usleep(50000);
        rts_lookup_batch(w, ev, N, rts_now_ns(), 0, out, deg);
        closed = rts_breaker_state(rts_lookup_breaker(l, 0)) == RTS_BREAKER_CLOSED && deg[3] == 0;
    }
    CHECK(closed);
    CHECK_NEAR(out[3 * 2 + 1], 6, 0);
    CHECK_INT(deg[3], 0);
out:
    rts_store_conn_free(wst, wconn);
    rts_store_close(wst);
    rts_lookup_worker_free(w);
    rts_lookup_free(l);
    rts_conf_free(doc);
    rts_schema_free(s);
}

int main(void)
{
    char path[128];
    FILE *f;

    signal(SIGPIPE, SIG_IGN); /* hiredis writes with write(2) */
    if (redis_start(&rs, PASSWORD) != 0) {
        fprintf(stderr, "cannot start redis-server (is it installed? make deps-test)\n");
        redis_stop(&rs);
        return 1;
    }
    snprintf(path, sizeof(path), "%s/pw", rs.dir);
    f = fopen(path, "w");
    if (!f) {
        redis_stop(&rs);
        return 1;
    }
    fprintf(f, "%s\n", PASSWORD);
    fclose(f);
    RUN(write_and_read);
    RUN(wrong_password);
    RUN(stopped_server_times_out);
    RUN(stale_connect_is_not_the_next_calls_failure);
    RUN(lookup_stage_kill_and_restart);
    redis_stop(&rs);
    return TEST_EXIT();
}
