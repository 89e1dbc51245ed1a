/*
 * tmp_bundle.h - model bundles written to temporary folders for tests of the
 * bundle loader, the drift monitor and the registry: a linear-json model
 * over the inputs a, b, c (score = logistic(a + b + c)) and a manifest with
 * the given name, version and optional extra YAML (a reference: section).
 * tmp_dir() makes a folder under /tmp, tmp_rm() removes a tree.
 */
#ifndef RTS_TESTS_TMP_BUNDLE_H
#define RTS_TESTS_TMP_BUNDLE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A new folder /tmp/rts-test-@tag-XXXXXX into @buf (>= 64 bytes); NULL on failure. */
static inline char *tmp_dir(char *buf, const char *tag)
{
    snprintf(buf, 64, "/tmp/rts-test-%.20s-XXXXXX", tag);
    return mkdtemp(buf);
}

/* Write the bundle into folder @dir (created if missing). 0 on success. */
static inline int tmp_bundle_write(const char *dir, const char *name, long version,
                                   const char *extra_yaml)
{
    char path[512];
    FILE *f;

    mkdir(dir, 0755);
    snprintf(path, sizeof(path), "%s/model.json", dir);
    f = fopen(path, "w");
    if (!f) {
        return -1;
    }
    fputs("{\"format\": \"linear-json\", \"version\": 1, \"objective\": \"logistic\",\n"
          " \"features\": [\"a\", \"b\", \"c\"], \"missing\": {\"strategy\": \"zero\"},\n"
          " \"coef\": [[1, 1, 1]], \"intercept\": [0]}\n",
          f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/manifest.yaml", dir);
    f = fopen(path, "w");
    if (!f) {
        return -1;
    }
    fprintf(f, "name: %s\nversion: %ld\nformat: linear-json\nobjective: logistic\n"
               "features: [a, b, c]\n%s",
            name, version, extra_yaml ? extra_yaml : "");
    fclose(f);
    return 0;
}

/* Remove the tree at @dir (best effort; no symbolic links are followed). */
static inline void tmp_rm(const char *dir)
{
    char path[1024];
    struct dirent *e;
    struct stat st;
    DIR *dh;

    if (!dir || lstat(dir, &st) != 0) {
        return;
    }
    if (S_ISDIR(st.st_mode) && (dh = opendir(dir)) != NULL) {
        while ((e = readdir(dh)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                tmp_rm(path);
            }
        }
        closedir(dh);
    }
    remove(dir);
}

#endif /* RTS_TESTS_TMP_BUNDLE_H */
