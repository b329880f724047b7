/*
 * procstat.c: process_* metrics from /proc/self/stat, /proc/stat and
 * /proc/self/fd, as the Prometheus client libraries compute them.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/procstat.h"

#define PROCSTAT_TEXT_LEN   4096    /* /proc/self/stat is one short line */

int
procstat_parse_stat(const char *text, long ticks, long page, double boot_s,
                    struct procstat *out)
{
    unsigned long long utime, stime, start, vsize;
    long long rss;
    const char *p;

    /* The command name may hold spaces and ')': skip to the last ')'. */
    p = strrchr(text, ')');
    if (p == NULL || ticks <= 0) {
        return -1;
    }
    /* Fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime(14) stime(15) cutime cstime priority nice
     * threads itrealvalue starttime(22) vsize(23) rss(24). */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
               "%llu %*d %*d %*d %*d %*d %*d %llu %llu %lld",
               &utime, &stime, &start, &vsize, &rss) != 5) {
        return -1;
    }
    out->cpu_s = (double)(utime + stime) / (double)ticks;
    out->start_time_s = boot_s + (double)start / (double)ticks;
    out->vsize_bytes = vsize;
    out->rss_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page : 0;
    return 0;
}

double
procstat_parse_btime(const char *text)
{
    const char *p = strstr(text, "\nbtime ");

    if (p == NULL) {
        return -1;
    }
    return strtod(p + 7, NULL);
}

/* Read up to PROCSTAT_TEXT_LEN - 1 bytes of <path> into <buf>. */
static int
procstat_slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    size_t n;

    if (f == NULL) {
        return -1;
    }
    n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return 0;
}

static uint64_t
procstat_count_fds(void)
{
    struct dirent *de;
    uint64_t n = 0;
    DIR *d = opendir("/proc/self/fd");

    if (d == NULL) {
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    /* The directory stream itself held one descriptor. */
    return n > 0 ? n - 1 : 0;
}

int
procstat_read(struct procstat *out)
{
    char text[PROCSTAT_TEXT_LEN], line[256];
    struct rlimit rl;
    double boot = 0;
    FILE *f;

    memset(out, 0, sizeof(*out));
    /* /proc/stat can be long on many-core machines: read it by line. */
    f = fopen("/proc/stat", "re");
    if (f != NULL) {
        line[0] = '\n';
        while (fgets(line + 1, sizeof(line) - 1, f) != NULL) {
            if (strncmp(line + 1, "btime ", 6) == 0) {
                boot = procstat_parse_btime(line);
                break;
            }
        }
        fclose(f);
    }
    if (procstat_slurp("/proc/self/stat", text, sizeof(text)) != 0 ||
        procstat_parse_stat(text, sysconf(_SC_CLK_TCK),
                            sysconf(_SC_PAGESIZE), boot > 0 ? boot : 0,
                            out) != 0) {
        return -1;
    }
    out->open_fds = procstat_count_fds();
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        out->max_fds = (uint64_t)rl.rlim_cur;
    }
    return 0;
}
