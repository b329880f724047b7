/*
 * test_common.c: the shared helpers of common.h.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mqlb/common.h"

/* mq_copy_str writes what snprintf "%s" writes, for every cut. */
Test(common, copy_str_is_snprintf_s)
{
    static const char *const srcs[] = { "", "a", "backend-0001",
                                        "a name longer than the buffer" };
    char got[16], want[16];
    size_t i, cap;

    for (i = 0; i < MQ_NELEMS(srcs); i++) {
        for (cap = 1; cap <= sizeof(got); cap++) {
            memset(got, 'x', sizeof(got));
            memset(want, 'x', sizeof(want));
            mq_copy_str(got, cap, srcs[i]);
            snprintf(want, cap, "%s", srcs[i]);
            cr_assert_str_eq(got, want, "\"%s\" in %zu", srcs[i], cap);
            cr_assert_eq(memcmp(got, want, sizeof(got)), 0,
                         "\"%s\" in %zu: bytes past the NUL", srcs[i], cap);
        }
    }
}
