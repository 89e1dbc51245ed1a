/*
 * commands.c - the subcommands: run, check, backfill, gen, demo, help,
 * version. Argument parsing and output only; the work is in daemon/.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "conf/conf.h"
#include "core/buf.h"
#include "core/log.h"
#include "daemon/backfill.h"
#include "daemon/daemon.h"
#include "event/decode.h"
#include "source/source.h"

extern const char rts_embedded_default_yaml[];
extern const size_t rts_embedded_default_yaml_len;

#define EMBEDDED_NAME "examples/fraud/pipeline.yaml (embedded)"

enum { OPT_LOG_LEVEL = 1000, OPT_PROGRESS, OPT_NO_PROGRESS, OPT_PRINT_CONFIG, OPT_LABEL };

static int set_log_level(const char *s)
{
    enum rts_log_level l;

    if (rts_log_level_parse(s, &l) != 0) {
        fprintf(stderr, "rtscore: --log-level: expected debug, info, warn or error\n");
        return -1;
    }
    rts_log_set_level(l);
    return 0;
}

static int usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "rtscore %s: %s\n(see rtscore help)\n", cmd, msg);
    return 1;
}

static int config_error(const struct rts_errbuf *eb)
{
    fprintf(stderr, "rtscore: %s\n", eb->msg);
    return 1;
}

/* Run a daemon on @conf and print the report; the exit code. */
static int run_daemon(struct rts_pipeline_conf *conf, int progress, const char *title,
                      const char *label, FILE *report)
{
    struct rts_errbuf eb = {0};
    struct rts_daemon_opts opts = {.progress = progress, .title = title, .label = label};
    struct rts_daemon *d;
    enum rts_err rc;

    d = rts_daemon_new(conf, &opts, &eb);
    if (!d) {
        fprintf(stderr, "rtscore: %s\n", eb.msg);
        return eb.code == RTS_ERR_INVAL || eb.code == RTS_ERR_PARSE ? 1 : 2;
    }
    rts_cli_signals();
    rc = rts_daemon_run(d, &eb);
    rts_daemon_report(d, report);
    rts_daemon_free(d);
    if (rc) {
        fprintf(stderr, "rtscore: %s\n", eb.msg);
        return 2;
    }
    return 0;
}

int rts_cmd_run(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
        {"label", required_argument, NULL, OPT_LABEL},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *label = NULL;
    int progress = isatty(2), c;
    struct rts_errbuf eb = {0};
    struct rts_pipeline_conf *conf;

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", lopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case OPT_LOG_LEVEL:
            if (set_log_level(optarg)) {
                return 1;
            }
            break;
        case OPT_PROGRESS:
            progress = 1;
            break;
        case OPT_NO_PROGRESS:
            progress = 0;
            break;
        case OPT_LABEL:
            label = optarg;
            break;
        default:
            return usage_error("run", "usage: rtscore run -c pipeline.yaml [--label FIELD]");
        }
    }
    if (!path) {
        return usage_error("run", "missing -c pipeline.yaml");
    }
    conf = rts_pipeline_conf_load(path, &eb);
    if (!conf) {
        return config_error(&eb);
    }
    return run_daemon(conf, progress, "rtscore run", label, stderr);
}

int rts_cmd_check(int argc, char **argv)
{
    const char *path = NULL;
    struct rts_errbuf eb = {0};
    struct rts_pipeline_conf *conf;
    struct rts_pipeline *p;
    int c;

    optind = 1;
    while ((c = getopt(argc, argv, "c:")) != -1) {
        if (c != 'c') {
            return usage_error("check", "usage: rtscore check -c pipeline.yaml");
        }
        path = optarg;
    }
    if (!path) {
        return usage_error("check", "missing -c pipeline.yaml");
    }
    conf = rts_pipeline_conf_load(path, &eb);
    if (!conf) {
        return config_error(&eb);
    }
    p = rts_pipeline_new(conf, &eb);
    if (!p) {
        return config_error(&eb);
    }
    printf("%s: ok: pipeline %s, %zu fields, %zu features (%zu bytes of state per key), "
           "%zu rules, source %s, sink %s%s%s\n",
           path, p->conf->name, p->nfields, p->nfeatures,
           rts_features_state_size(p->features), p->nrules, p->conf->source_ops->name,
           p->conf->sink.ops->name, p->conf->alerts.ops ? ", alerts " : "",
           p->conf->alerts.ops ? p->conf->alerts.ops->name : "");
    rts_pipeline_free(p);
    return 0;
}

int rts_cmd_backfill(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"config", required_argument, NULL, 'c'}, {"input", required_argument, NULL, 'i'},
        {"output", required_argument, NULL, 'o'}, {"label", required_argument, NULL, OPT_LABEL},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *in = NULL, *out = NULL, *label = NULL;
    struct rts_errbuf eb = {0};
    struct rts_backfill_stats st;
    struct rts_pipeline_conf *conf;
    enum rts_err rc;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:i:o:", lopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'i':
            in = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case OPT_LABEL:
            label = optarg;
            break;
        default:
            return usage_error("backfill", "usage: rtscore backfill -c pipeline.yaml -i "
                                           "events.jsonl -o features.csv [--label FIELD]");
        }
    }
    if (!path || !in || !out) {
        return usage_error("backfill", "needs -c, -i and -o");
    }
    conf = rts_pipeline_conf_load(path, &eb);
    if (!conf) {
        return config_error(&eb);
    }
    rc = rts_backfill(conf, in, out, label, &st, &eb);
    if (rc) {
        fprintf(stderr, "rtscore: %s\n", eb.msg);
        return rc == RTS_ERR_INVAL ? 1 : 2;
    }
    fprintf(stderr, "backfill: %llu rows written to %s, %llu bad events skipped\n",
            (unsigned long long)st.rows, out, (unsigned long long)st.dlq);
    return 0;
}

/* `rtscore gen` drives the generator source itself (same pacing code). */
int rts_cmd_gen(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"events", required_argument, NULL, 'n'},     {"seed", required_argument, NULL, 's'},
        {"fraud-rate", required_argument, NULL, 'f'}, {"bad-rate", required_argument, NULL, 'b'},
        {"rate", required_argument, NULL, 'r'},       {"cards", required_argument, NULL, 'k'},
        {"density", required_argument, NULL, 'd'},
        {"output", required_argument, NULL, 'o'},     {NULL, 0, NULL, 0},
    };
    const char *events = "1000", *seed = "1", *fraud = "0.01", *bad = "0", *rate = "0",
               *cards = "100000", *density = "500", *out = "-";
    char yaml[512];
    struct rts_errbuf eb = {0};
    struct rts_conf *doc = NULL;
    void *ctx = NULL;
    struct rts_source_env env = {4096};
    struct rts_msg msgs[256];
    FILE *f = stdout;
    int c, rc = 0;

    optind = 1;
    while ((c = getopt_long(argc, argv, "n:s:o:", lopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            events = optarg;
            break;
        case 's':
            seed = optarg;
            break;
        case 'f':
            fraud = optarg;
            break;
        case 'b':
            bad = optarg;
            break;
        case 'r':
            rate = optarg;
            break;
        case 'k':
            cards = optarg;
            break;
        case 'd':
            density = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        default:
            return usage_error("gen", "usage: rtscore gen --events N [--seed S] [--fraud-rate R] "
                                      "[--bad-rate R] [--rate EPS] [--cards N] [--density EPS] "
                                      "[-o FILE]");
        }
    }
    /* options become the source's own option mapping, so they are checked alike */
    {
        const char *vals[] = {events, seed, fraud, bad, rate, cards, density};
        for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
            if (!*vals[i] || strspn(vals[i], "0123456789.eE+-") != strlen(vals[i])) {
                return usage_error("gen", "options take numbers");
            }
        }
    }
    snprintf(yaml, sizeof(yaml),
             "{events: %s, seed: %s, fraud_rate: %s, bad_rate: %s, rate: %s, cards: %s, "
             "density: %s}",
             events, seed, fraud, bad, rate, cards, density);
    doc = rts_conf_parse("gen options", yaml, strlen(yaml), &eb);
    if (!doc || !(ctx = rts_opt_ctx_new(rts_source_generator.opts,
                                            rts_source_generator.ctx_size, rts_conf_root(doc),
                                            "gen", NULL, &eb)) ||
        rts_source_generator.init(ctx, &env, &eb)) {
        fprintf(stderr, "rtscore gen: %s\n", eb.msg);
        rc = 1;
        goto out;
    }
    if (strcmp(out, "-") != 0 && !(f = fopen(out, "w"))) {
        fprintf(stderr, "rtscore gen: cannot open '%s' for writing\n", out);
        rc = 1;
        goto out;
    }
    rts_cli_signals();
    while (!rts_stop_requested()) {
        size_t n = 0;
        enum rts_src_status st = rts_source_generator.poll(ctx, msgs, 256, &n, 100, &eb);
        for (size_t i = 0; i < n; i++) {
            fwrite(msgs[i].data, 1, msgs[i].len, f);
            fputc('\n', f);
        }
        if (st != RTS_SRC_OK || ferror(f)) {
            rc = st == RTS_SRC_EOF ? 0 : 2;
            break;
        }
    }
    if (fflush(f) != 0) {
        rc = 2;
    }
out:
    if (f && f != stdout) {
        fclose(f);
    }
    if (ctx) {
        rts_source_generator.fini(ctx);
        free(ctx);
    }
    rts_conf_free(doc);
    return rc;
}

int rts_cmd_demo(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"print-config", no_argument, NULL, OPT_PRINT_CONFIG},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {NULL, 0, NULL, 0},
    };
    struct rts_errbuf eb = {0};
    struct rts_pipeline_conf *conf;
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        if (c == OPT_PRINT_CONFIG) {
            fwrite(rts_embedded_default_yaml, 1, rts_embedded_default_yaml_len, stdout);
            return 0;
        }
        if (c != OPT_LOG_LEVEL) {
            return usage_error("demo", "usage: rtscore demo [--print-config] [--log-level L]");
        }
    }
    rts_log_set_level(RTS_LOG_WARN); /* the report says it all; --log-level overrides */
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        if (c == OPT_LOG_LEVEL && set_log_level(optarg)) {
            return 1;
        }
    }
    conf = rts_pipeline_conf_parse(EMBEDDED_NAME, rts_embedded_default_yaml,
                                   rts_embedded_default_yaml_len, &eb);
    if (!conf) {
        return config_error(&eb);
    }
    printf("rtscore demo: scoring synthetic card transactions with the fraud pipeline\n"
           "(generator source, local keyed state, the shipped XGBoost model; outputs under "
           "out/demo/)\n\n");
    fflush(stdout);
    rc = run_daemon(conf, isatty(2), "rtscore demo", "is_fraud", stdout);
    if (rc == 0) {
        printf("\n  outputs    out/demo/scores.jsonl, out/demo/alerts.jsonl, out/demo/dlq.jsonl\n"
               "  config     rtscore demo --print-config\n");
    }
    return rc;
}

int rts_cmd_help(int argc, char **argv)
{
    struct rts_buf b = {0};

    if (argc < 2) {
        rts_cli_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "config") == 0) {
        if (rts_buf_printf(&b, "# rtscore pipeline configuration reference\n\n"
                               "Generated by `rtscore help config` from the option tables in the "
                               "code; do not edit by hand.\nFeature semantics: docs/FEATURES.md. "
                               "Durations take us, ms, s, m, h, d; sizes take k, m, g "
                               "(binary).\n") ||
            rts_pipeline_conf_doc(&b)) {
            rts_buf_fini(&b);
            return 2;
        }
        fwrite(b.data, 1, b.len, stdout);
        rts_buf_fini(&b);
        return 0;
    }
    if (strcmp(argv[1], "errors") == 0) {
        printf("# rtscore error codes\n\nGenerated by `rtscore help errors`.\n\n"
               "| code | retriable | meaning |\n|---|---|---|\n");
        for (int e = 0; e < RTS_ERR__COUNT; e++) {
            printf("| %s | %s | %s |\n", rts_err_name((enum rts_err)e),
                   rts_err_is_retriable((enum rts_err)e) ? "yes" : "no",
                   rts_err_desc((enum rts_err)e));
        }
        printf("\n## Dead-letter reasons\n\n");
        for (int r = 0; r < RTS_DLQ__COUNT; r++) {
            printf("- `%s`\n", rts_dlq_reason_name((enum rts_dlq_reason)r));
        }
        return 0;
    }
    fprintf(stderr, "rtscore help: unknown topic '%s' (config, errors)\n", argv[1]);
    return 1;
}

int rts_cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("rtscore %s\n", RTS_VERSION);
    return 0;
}
