/*
 * replay.c: the main() of a fuzz target built without libFuzzer. Each
 * argument is an input file, given once to LLVMFuzzerTestOneInput; the
 * target's own checks abort() on a wrong verdict, and the build's
 * sanitizers (make test SAN=1) report what the input did wrong. `make
 * test` replays the seed corpora and regression inputs this way, with the
 * objects it built anyway; `make fuzz` links the same targets with
 * libFuzzer (clang) to look for new inputs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define REPLAY_TIMEOUT  10          /* seconds per input, as libFuzzer's -timeout */
#define REPLAY_MAX      (1u << 24)  /* bytes of one input, at most */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
    FILE *f;
    uint8_t *buf;
    long size;
    size_t n;

    f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0 || (unsigned long)size > REPLAY_MAX) {
        fclose(f);
        fprintf(stderr, "%s: not a readable input of at most %u bytes\n",
                path, REPLAY_MAX);
        return 1;
    }
    /* Exactly the input's size, as libFuzzer gives it: a read past its
     * end is the sanitizer's to report, not a read of spare room. */
    buf = malloc((size_t)size);
    if (buf == NULL && size > 0) {
        fclose(f);
        fprintf(stderr, "%s: out of memory\n", path);
        return 1;
    }
    n = fread(buf, 1, (size_t)size, f);
    fclose(f);
    if (n != (size_t)size) {
        free(buf);
        fprintf(stderr, "%s: short read\n", path);
        return 1;
    }
    alarm(REPLAY_TIMEOUT);          /* SIGALRM kills a hang: a failure */
    LLVMFuzzerTestOneInput(buf, n);
    alarm(0);
    free(buf);
    return 0;
}

int
main(int argc, char **argv)
{
    int i, bad = 0;

    for (i = 1; i < argc; i++) {
        bad |= replay_file(argv[i]);
    }
    printf("replayed %d input(s)\n", argc - 1);
    return bad;
}
