/*
 * notify.h: tell the service manager how we are (systemd's sd_notify
 * protocol, through libsystemd). Without NOTIFY_SOCKET every call is a
 * no-op, so mqlb behaves the same outside systemd.
 */
#ifndef MQLB_NOTIFY_H
#define MQLB_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* True when a service manager listens (NOTIFY_SOCKET is set). */
bool notify_enabled(void);
void notify_ready(const char *status);
/* A reload begins (RELOADING=1 with the monotonic time systemd wants). */
void notify_reloading(void);
void notify_stopping(void);
/* After a takeover: this process is the service's main process now
 * (MAINPID=, with READY=1; needs NotifyAccess=all). */
void notify_mainpid(void);
void notify_status(const char *status);
/* Keep-alive for WatchdogSec=. */
void notify_watchdog(void);
/*
 * The interval at which to call notify_watchdog() in milliseconds (half
 * of WatchdogSec), or 0 when the watchdog is off.
 */
uint64_t notify_watchdog_ms(void);

#endif /* MQLB_NOTIFY_H */
