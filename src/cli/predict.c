/*
 * predict.c - `rtscore predict -m MODEL -i rows.csv -o scores.csv`: score
 * rows of features offline with the same evaluators the pipeline uses.
 *
 * The CSV header names the columns (RFC 4180 quoting). Columns are matched to
 * the model's feature names when it has them (extra columns are ignored),
 * else the first N columns are taken in order. An empty cell or nan is a
 * missing value. Output: a header `score`, or `p0,p1,...` for multi-class,
 * then one line per input row, each value the shortest text that reads back
 * as the same float. Rows are scored in batches of 256.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "model/model.h"

#define PREDICT_BATCH 256
#define CSV_MAX_COLS 65536

/* Split one CSV record (@line, NUL-terminated, no newline) in place into
 * @cols (at most @max); returns the number of fields or -1 on a bad quote. */
static int csv_split(char *line, char **cols, int max)
{
    int n = 0;
    char *p = line;

    for (;;) {
        char *out = p, *start = p;
        if (n == max) {
            return -1;
        }
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0') {
                    return -1;
                }
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *out++ = *p++;
                }
            }
            if (*p != ',' && *p != '\0') {
                return -1;
            }
        } else {
            while (*p && *p != ',') {
                p++;
            }
            out = p;
        }
        cols[n++] = start;
        if (*p == '\0') {
            *out = '\0';
            return n;
        }
        *out = '\0';
        p++;
    }
}

static void chomp(char *s)
{
    size_t n = strlen(s);

    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) {
        s[--n] = '\0';
    }
}

/* A cell as a float: empty or nan is missing (NaN); 0 ok, -1 not a number. */
static int cell_value(const char *s, float *out)
{
    char *end;
    double v;

    while (*s == ' ') {
        s++;
    }
    if (*s == '\0' || strcasecmp(s, "nan") == 0) {
        *out = NAN;
        return 0;
    }
    errno = 0;
    v = strtod(s, &end);
    while (*end == ' ') {
        end++;
    }
    if (end == s || *end != '\0') {
        return -1;
    }
    *out = (float)v;
    return 0;
}

/* The shortest decimal that reads back as @f. */
static void put_float(FILE *out, float f)
{
    char buf[32];

    if (isnan(f)) {
        return; /* missing: an empty cell */
    }
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) {
            break;
        }
    }
    fputs(buf, out);
}

static void write_batch(FILE *out, const float *y, size_t rows, size_t k)
{
    for (size_t r = 0; r < rows; r++) {
        for (size_t j = 0; j < k; j++) {
            if (j) {
                fputc(',', out);
            }
            put_float(out, y[r * k + j]);
        }
        fputc('\n', out);
    }
}

/* Map model features to CSV columns; -1 on a missing column (message printed). */
static int map_columns(const struct rts_model *m, char **hdr, int ncols, int *map, const char *in)
{
    size_t nx = rts_model_nfeatures(m);

    for (size_t i = 0; i < nx; i++) {
        const char *name = rts_model_feature_name(m, i);
        map[i] = -1;
        if (!name) {
            map[i] = (int)i < ncols ? (int)i : -1;
        } else {
            for (int c = 0; c < ncols && map[i] < 0; c++) {
                if (strcmp(hdr[c], name) == 0) {
                    map[i] = c;
                }
            }
        }
        if (map[i] < 0) {
            if (name) {
                fprintf(stderr, "rtscore predict: %s: no column '%s' (a feature of the model)\n",
                        in, name);
            } else {
                fprintf(stderr, "rtscore predict: %s: %d columns, the model reads %zu\n", in,
                        ncols, nx);
            }
            return -1;
        }
    }
    return 0;
}

static const char *model_file(const char *path, char *buf, size_t cap)
{
    struct stat st;

    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(buf, cap, "%s/model.json", path); /* a bundle folder */
        return buf;
    }
    return path;
}

int rts_cmd_predict(int argc, char **argv)
{
    const char *mpath = NULL, *in = NULL, *outp = NULL;
    char mbuf[4096], *line = NULL, **cols = NULL;
    size_t cap = 0, nx, k, rows = 0;
    long lineno = 1;
    int c, ncols, *map = NULL, rc = 2;
    struct rts_errbuf eb = {0};
    struct rts_model *m = NULL;
    FILE *fin = NULL, *fout = NULL;
    float *x = NULL, *y = NULL;

    static const struct option lopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"input", required_argument, NULL, 'i'},
        {"output", required_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };

    optind = 1;
    while ((c = getopt_long(argc, argv, "m:i:o:", lopts, NULL)) != -1) {
        if (c == 'm') {
            mpath = optarg;
        } else if (c == 'i') {
            in = optarg;
        } else if (c == 'o') {
            outp = optarg;
        } else {
            mpath = NULL;
            break;
        }
    }
    if (!mpath || !in || !outp) {
        fprintf(stderr, "usage: rtscore predict -m MODEL -i rows.csv -o scores.csv\n");
        return 1;
    }
    m = rts_model_load(model_file(mpath, mbuf, sizeof(mbuf)), &eb);
    if (!m) {
        fprintf(stderr, "rtscore predict: %s\n", eb.msg);
        return 1;
    }
    nx = rts_model_nfeatures(m);
    k = rts_model_noutputs(m);
    fin = strcmp(in, "-") == 0 ? stdin : fopen(in, "r");
    fout = strcmp(outp, "-") == 0 ? stdout : fopen(outp, "w");
    cols = malloc(CSV_MAX_COLS * sizeof(*cols));
    map = malloc((nx ? nx : 1) * sizeof(*map));
    x = malloc(PREDICT_BATCH * (nx ? nx : 1) * sizeof(*x));
    y = malloc(PREDICT_BATCH * k * sizeof(*y));
    if (!fin || !fout) {
        fprintf(stderr, "rtscore predict: cannot open %s\n", !fin ? in : outp);
        goto out;
    }
    if (!cols || !map || !x || !y) {
        fprintf(stderr, "rtscore predict: out of memory\n");
        goto out;
    }
    if (getline(&line, &cap, fin) < 0) {
        fprintf(stderr, "rtscore predict: %s: empty (expected a header line)\n", in);
        goto out;
    }
    chomp(line);
    ncols = csv_split(line, cols, CSV_MAX_COLS);
    if (ncols < 0 || map_columns(m, cols, ncols, map, in) != 0) {
        if (ncols < 0) {
            fprintf(stderr, "rtscore predict: %s:1: bad header\n", in);
        }
        rc = 1;
        goto out;
    }
    if (k == 1) {
        fputs("score\n", fout);
    } else {
        for (size_t j = 0; j < k; j++) {
            fprintf(fout, "%sp%zu", j ? "," : "", j);
        }
        fputc('\n', fout);
    }
    while (getline(&line, &cap, fin) >= 0) {
        lineno++;
        chomp(line);
        if (line[0] == '\0') {
            continue;
        }
        ncols = csv_split(line, cols, CSV_MAX_COLS);
        for (size_t i = 0; i < nx; i++) {
            if (ncols < 0 || map[i] >= ncols ||
                cell_value(cols[map[i]], &x[rows * nx + i]) != 0) {
                fprintf(stderr, "rtscore predict: %s:%ld: %s\n", in, lineno,
                        ncols < 0 ? "bad quoting" : map[i] >= ncols ? "too few columns"
                                                                   : "not a number");
                rc = 1;
                goto out;
            }
        }
        if (++rows == PREDICT_BATCH) {
            rts_model_predict(m, x, rows, nx, y);
            write_batch(fout, y, rows, k);
            rows = 0;
        }
    }
    if (rows) {
        rts_model_predict(m, x, rows, nx, y);
        write_batch(fout, y, rows, k);
    }
    rc = fflush(fout) == 0 && !ferror(fout) ? 0 : 2;
out:
    if (fin && fin != stdin) {
        fclose(fin);
    }
    if (fout && fout != stdout) {
        fclose(fout);
    }
    free(line);
    free(cols);
    free(map);
    free(x);
    free(y);
    rts_model_unref(m);
    return rc;
}
