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

size_t
numtext_u64(char *out, uint64_t v)
{
    char tmp[20];                       /* UINT64_MAX has 20 digits */
    char *p = tmp + sizeof(tmp);
    size_t n, d;

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
    n = (size_t)(tmp + sizeof(tmp) - p);
    memcpy(out, p, n);
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
    size_t n, i;

    n = numtext_u64(out, us / 1000000);
    if (f == 0) {
        return n;
    }
    out[n] = '.';
    for (i = 6; i > 0; i--) {
        out[n + i] = (char)('0' + f % 10);
        f /= 10;
    }
    n += 7;
    while (out[n - 1] == '0') {
        n--;
    }
    return n;
}
