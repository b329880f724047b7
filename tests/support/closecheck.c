/*
 * closecheck.c: an LD_PRELOAD shim for tests. close(2) on a descriptor
 * that is not open means two owners closed it (the second close could as
 * well have hit a socket that reused the number): print it and abort, so
 * the test that ran mqlb sees the crash at once.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int close(int fd);

int
close(int fd)
{
    static int (*real_close)(int);
    char msg[96];
    int rc, n;

    if (real_close == NULL) {
        real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
    }
    rc = real_close(fd);
    if (rc == -1 && errno == EBADF) {
        n = snprintf(msg, sizeof(msg), "closecheck: close(%d) of a "
                     "descriptor that is not open\n", fd);
        if (n > 0) {
            (void)write(STDERR_FILENO, msg, (size_t)n);
        }
        abort();
    }
    return rc;
}
