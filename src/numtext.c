/*
 * numtext.c: decimal text for unsigned integers and fixed-point seconds,
 * two digits per division, written back to front.
 */
#include <string.h>

#include "mqlb/numtext.h"

/* "00" "01" ... "99": one lookup per two digits. */
static const char numtext_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";

/* Digits in <v>: the length is known before writing, so no copy. */
static size_t
numtext_digits(uint64_t v)
{
    size_t n = 1;

    while (v >= 10000) {
        v /= 10000;
        n += 4;
    }
    return n + (v >= 10) + (v >= 100) + (v >= 1000);
}

size_t
numtext_u64(char *out, uint64_t v)
{
    size_t n = numtext_digits(v), d;
    char *p = out + n;

    while (v >= 100) {
        d = (size_t)(v % 100) * 2;
        v /= 100;
        *--p = numtext_pairs[d + 1];
        *--p = numtext_pairs[d];
    }
    if (v >= 10) {
        d = (size_t)v * 2;
        *--p = numtext_pairs[d + 1];
        *--p = numtext_pairs[d];
    } else {
        *--p = (char)('0' + v);
    }
    return n;
}

size_t
numtext_milli(char *out, uint64_t v)
{
    size_t n;
    unsigned f = (unsigned)(v % 1000);

    n = numtext_u64(out, v / 1000);
    out[n] = '.';
    out[n + 1] = (char)('0' + f / 100);
    out[n + 2] = (char)('0' + f / 10 % 10);
    out[n + 3] = (char)('0' + f % 10);
    return n + 4;
}

size_t
numtext_micro(char *out, uint64_t us)
{
    unsigned f = (unsigned)(us % 1000000);
    size_t n;

    n = numtext_u64(out, us / 1000000);
    if (f == 0) {
        return n;
    }
    out[n] = '.';
    memcpy(out + n + 1, numtext_pairs + f / 10000 * 2, 2);
    memcpy(out + n + 3, numtext_pairs + f / 100 % 100 * 2, 2);
    memcpy(out + n + 5, numtext_pairs + f % 100 * 2, 2);
    n += 7;
    while (out[n - 1] == '0') {
        n--;
    }
    return n;
}
