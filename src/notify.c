/*
 * notify.c: sd_notify messages. libsystemd does the socket work (abstract
 * and path sockets, credentials); this file only says what and when.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "mqlb/notify.h"

#define NOTIFY_LINE_LEN 512

bool
notify_enabled(void)
{
    return getenv("NOTIFY_SOCKET") != NULL;
}

void
notify_ready(const char *status)
{
    if (status != NULL) {
        sd_notifyf(0, "READY=1\nSTATUS=%s", status);
    } else {
        sd_notify(0, "READY=1");
    }
}

void
notify_mainpid(void)
{
    sd_notifyf(0, "MAINPID=%lu\nREADY=1", (unsigned long)getpid());
}

void
notify_reloading(void)
{
    struct timespec ts;
    unsigned long long usec;

    /* systemd 253+ needs MONOTONIC_USEC with RELOADING=1 (Type=notify-reload);
     * older ones ignore it. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    usec = (unsigned long long)ts.tv_sec * 1000000ULL +
           (unsigned long long)ts.tv_nsec / 1000ULL;
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", usec);
}

void
notify_stopping(void)
{
    sd_notify(0, "STOPPING=1");
}

void
notify_status(const char *status)
{
    char line[NOTIFY_LINE_LEN];

    snprintf(line, sizeof(line), "STATUS=%s", status);
    sd_notify(0, line);
}

void
notify_watchdog(void)
{
    sd_notify(0, "WATCHDOG=1");
}

uint64_t
notify_watchdog_ms(void)
{
    uint64_t usec = 0;

    if (sd_watchdog_enabled(0, &usec) <= 0) {
        return 0;
    }
    return usec / 2000;
}
