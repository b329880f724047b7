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
#define REPLAY_MAX      (1u << 24)  /* bytes read from one input */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
    FILE *f;
    uint8_t *buf;
    size_t n;

    f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    buf = malloc(REPLAY_MAX);
    if (buf == NULL) {
        fclose(f);
        fprintf(stderr, "%s: out of memory\n", path);
        return 1;
    }
    n = fread(buf, 1, REPLAY_MAX, f);
    fclose(f);
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
