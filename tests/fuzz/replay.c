/*
 * The fuzz targets' driver for make check: a main() that feeds files to
 * LLVMFuzzerTestOneInput() without libFuzzer, so that the checked-in corpus
 * and every past crash input fail the ordinary suite (and its ASan and TSan
 * trees) when a regression comes back.
 *
 *   replay [FILE|DIR]...
 *
 * Without arguments it replays $HERMES_TEST_SRCDIR/tests/fuzz/corpus/NAME
 * (which must exist and hold at least one file: an empty corpus fails
 * rather than passing silently) and, when present,
 * $HERMES_TEST_SRCDIR/tests/fuzz/crashes/NAME, where NAME is the target's
 * name (FUZZ_TARGET, set when it is built).  Files are fed in name order,
 * each in a buffer of exactly its size so that ASan catches overreads.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#ifndef FUZZ_TARGET
#error "build with -DFUZZ_TARGET='\"name\"'"
#endif

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *b = realloc(buf, cap *= 2);
            if (!b) {
                free(buf);
                buf = NULL;
            } else {
                buf = b;
            }
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        fprintf(stderr, "replay: %s: cannot read\n", path);
        free(buf);
        return -1;
    }
    /* Exactly n bytes, so that reading one more is an ASan error. */
    unsigned char *exact = malloc(n ? n : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays path (a file, or every regular file in a directory); returns the
 * number of files replayed, or -1. */
static long replay_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return replay_file(path) == 0 ? 1 : -1;
    struct dirent **names;
    int n = scandir(path, &names, NULL, NULL);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char **files = calloc((size_t)n + 1, sizeof *files);
    size_t nf = 0;
    long done = 0;
    for (int i = 0; i < n; i++) {
        if (files && names[i]->d_name[0] != '.') {
            size_t l = strlen(path) + strlen(names[i]->d_name) + 2;
            char *f = malloc(l);
            if (f) {
                snprintf(f, l, "%s/%s", path, names[i]->d_name);
                if (stat(f, &st) == 0 && S_ISREG(st.st_mode))
                    files[nf++] = f;
                else
                    free(f);
            }
        }
        free(names[i]);
    }
    free(names);
    if (!files)
        return -1;
    qsort(files, nf, sizeof *files, by_name);
    for (size_t i = 0; i < nf; i++) {
        if (done >= 0) {
            fprintf(stderr, "replay: %s\n", files[i]);
            done = replay_file(files[i]) == 0 ? done + 1 : -1;
        }
        free(files[i]);
    }
    free(files);
    return done;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        long total = 0;
        for (int i = 1; i < argc; i++) {
            long n = replay_path(argv[i]);
            if (n < 0)
                return 1;
            total += n;
        }
        printf("%s: replayed %ld inputs\n", FUZZ_TARGET, total);
        return 0;
    }
    const char *src = getenv("HERMES_TEST_SRCDIR");
    if (!src)
        src = ".";
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", src, FUZZ_TARGET);
    long corpus = replay_path(dir);
    if (corpus <= 0) {
        fprintf(stderr, "replay: %s: no corpus to replay\n", dir);
        return 1;
    }
    long crashes = 0;
    snprintf(dir, sizeof dir, "%s/tests/fuzz/crashes/%s", src, FUZZ_TARGET);
    struct stat st;
    if (stat(dir, &st) == 0 && (crashes = replay_path(dir)) < 0)
        return 1;
    printf("%s: replayed %ld corpus inputs and %ld past crash inputs\n",
           FUZZ_TARGET, corpus, crashes);
    return 0;
}
