/*
 * test_procstat.c: the /proc/self/stat parser and a live read.
 */
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "mqlb/procstat.h"

Test(procstat, parses_a_stat_line_with_a_tricky_name)
{
    /* The comm field may hold spaces and parentheses. */
    const char *line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 "
        "1000 0 0 0 250 150 0 0 20 0 3 0 5000 104857600 2560 "
        "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
    struct procstat ps;

    memset(&ps, 0, sizeof(ps));
    cr_assert_eq(procstat_parse_stat(line, 100, 4096, 1700000000.0, &ps), 0);
    cr_assert_float_eq(ps.cpu_s, 4.0, 1e-9);
    cr_assert_float_eq(ps.start_time_s, 1700000050.0, 1e-6);
    cr_assert_eq(ps.vsize_bytes, 104857600ULL);
    cr_assert_eq(ps.rss_bytes, 2560ULL * 4096);
}

Test(procstat, refuses_garbage)
{
    struct procstat ps;

    cr_assert_eq(procstat_parse_stat("nothing here", 100, 4096, 0, &ps), -1);
    cr_assert_eq(procstat_parse_stat("1 (x) S 1 2", 100, 4096, 0, &ps), -1);
    cr_assert_float_eq(procstat_parse_btime("cpu 1 2\nbtime 1700000000\n"),
                       1700000000.0, 1e-9);
    cr_assert_lt(procstat_parse_btime("cpu 1 2\n"), 0);
}

Test(procstat, reads_this_process)
{
    struct procstat ps;

    cr_assert_eq(procstat_read(&ps), 0);
    cr_assert_gt(ps.rss_bytes, 0);
    cr_assert_gt(ps.open_fds, 2);       /* stdin, stdout, stderr at least */
    cr_assert_geq(ps.max_fds, ps.open_fds);
    cr_assert_gt(ps.start_time_s, 1.0e9);
}
