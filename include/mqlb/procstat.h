/*
 * procstat.h: the standard process_* facts of the running process (the
 * names Prometheus client libraries export), read from /proc.
 */
#ifndef MQLB_PROCSTAT_H
#define MQLB_PROCSTAT_H

#include <stdint.h>

struct procstat {
    double      start_time_s;   /* Unix time the process started */
    double      cpu_s;          /* user + system CPU seconds */
    uint64_t    rss_bytes;      /* resident memory */
    uint64_t    vsize_bytes;    /* virtual memory */
    uint64_t    open_fds;       /* descriptors open now */
    uint64_t    max_fds;        /* soft RLIMIT_NOFILE */
};

/*
 * Parse the text of /proc/self/stat. <ticks> is sysconf(_SC_CLK_TCK),
 * <page> the page size, <boot_s> the boot time (btime of /proc/stat).
 * Returns 0, or -1 when the text is not a stat line.
 */
int procstat_parse_stat(const char *text, long ticks, long page,
                        double boot_s, struct procstat *out);
/* "btime N" of /proc/stat text; -1 when missing. */
double procstat_parse_btime(const char *text);

/* Fill <out> for this process. Returns 0, or -1 when /proc is unreadable. */
int procstat_read(struct procstat *out);

#endif /* MQLB_PROCSTAT_H */
