/*
 * main.c - the rtscore command line: dispatch to subcommands, exit codes
 * (0 ok, 1 usage or configuration error, 2 runtime failure), signals.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/log.h"
#include "daemon/daemon.h"

static void on_stop(int sig)
{
    (void)sig;
    rts_stop_request();
}

static void on_hup(int sig)
{
    (void)sig;
    rts_reload_request();
}

void rts_cli_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;
} commands[] = {
    {"run", rts_cmd_run, "run      -c pipeline.yaml         the daemon (SIGTERM/SIGINT: drain, exit 0)"},
    {"check", rts_cmd_check, "check    -c pipeline.yaml         validate the config; exit 1 with a clear error"},
    {"backfill", rts_cmd_backfill,
     "backfill -c pipeline.yaml -i events.jsonl -o features.csv [--label FIELD]"},
    {"gen", rts_cmd_gen,
     "gen      --events N [--seed S] [--fraud-rate R] [--bad-rate R] [--rate EPS]\n"
     "                 [--cards N] [--density EPS (event time)] [-o FILE]"},
    {"predict", rts_cmd_predict,
     "predict  -m MODEL -i rows.csv -o scores.csv   score feature rows with a model"},
    {"store", rts_cmd_store,
     "store    load -c pipeline.yaml --store NAME -i FILE   bulk-write a feature store\n"
     "                 (also: store get ... KEY..., store profiles; see rtscore store)"},
    {"demo", rts_cmd_demo, "demo     [--print-config]         the fraud pipeline on the embedded default"},
    {"dev-kafka", rts_cmd_dev_kafka,
     "dev-kafka [--brokers N] [--partitions N] [--topics a,b]   a local Kafka (mock) for development\n"
     "                 stdin: down B | up B | rtt B MS | offsets GROUP TOPIC (see docs/KAFKA.md)"},
    {"help", rts_cmd_help, "help     [config | errors]        this text, the config reference, the error codes"},
    {"version", rts_cmd_version, "version"},
};

void rts_cli_usage(FILE *out)
{
    fprintf(out, "rtscore %s - real-time streaming inference\n\nusage: rtscore COMMAND [options]\n\n",
            RTS_VERSION);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        fprintf(out, "  rtscore %s\n", commands[i].usage);
    }
    fprintf(out, "\nCommon options: --log-level debug|info|warn|error\n"
                 "Exit codes: 0 ok, 1 usage or configuration error, 2 runtime failure.\n");
}

int main(int argc, char **argv)
{
    const char *lvl = getenv("RTS_LOG_LEVEL");
    enum rts_log_level level;

    if (lvl && rts_log_level_parse(lvl, &level) == 0) {
        rts_log_set_level(level);
    }
    if (argc < 2) {
        rts_cli_usage(stderr);
        return 1;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        rts_cli_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        return rts_cmd_version(argc - 1, argv + 1);
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            return commands[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "rtscore: unknown command '%s'\n\n", argv[1]);
    rts_cli_usage(stderr);
    return 1;
}
