/*
 * log.h: one line per event on stderr, as text or JSON. Safe from any
 * thread: each line is formatted locally. After log_start() lines go
 * through a bounded ring that a thread of its own writes out, so a
 * stalled reader of stderr costs dropped (and counted) lines, never a
 * stalled caller.
 */
#ifndef MQLB_LOG_H
#define MQLB_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "mqlb/config.h"

enum log_level {
    LOG_ERROR = 0,      /* our own failure */
    LOG_WARN,           /* degraded but running */
    LOG_NOTICE,         /* lifecycle: start, stop, reload, backend up */
    LOG_INFO,           /* one line per session */
    LOG_DEBUG,          /* per event; only in DEBUG=1 builds */
};

/* What one finished session reports. */
struct log_session {
    uint64_t            id;
    const char         *client;         /* "ip:port" */
    const char         *pool;
    const char         *backend;        /* "-" if none was reached */
    uint64_t            bytes_in;       /* client -> broker */
    uint64_t            bytes_out;      /* broker -> client */
    uint64_t            duration_ms;
    uint64_t            idle_ms;        /* its idle timeout, 0 = never */
    const char         *end;            /* how it ended */
};

/*
 * The fields of an event (a state change, a reload, an admin action): in
 * log_format = json each non-NULL field is a key of the line, so that log
 * pipelines need not parse the message. NULL fields are left out.
 */
struct log_fields {
    const char         *event;          /* "backend_state", "reload", ... */
    const char         *pool;
    const char         *backend;
    const char         *state;          /* the state now */
    const char         *from;           /* state before */
    const char         *to;             /* state after */
    const char         *reason;         /* why, in words */
    const char         *client;         /* who (an admin peer, a client) */
};

/*
 * Also decides the journald mode: when JOURNAL_STREAM names our stderr,
 * lines carry a syslog priority prefix ("<4>") and no timestamp, which
 * journald adds itself.
 */
void log_init(int level, enum config_log_format format);
bool log_journal_mode(void);
/* The syslog priority (3 err .. 7 debug) of one of our levels. */
int log_syslog_priority(int level);
int log_level_parse(const char *text);      /* -1 if unknown */
const char *log_level_name(int level);
int log_enabled(int level);

/* Start the writer thread; MQ_ERR if it cannot (lines stay direct). */
int log_start(void);
/* Write out what is queued (waiting at most ~2 s on a stalled reader),
 * end the thread; later lines are written directly. */
void log_stop(void);
/* Lines dropped because the ring was full, since the start. */
uint64_t log_dropped(void);

/*
 * A rate limit for lines a client can cause at will (refusals): at most
 * LOG_RATELIMIT_BURST lines a second per limiter. Zero-initialize it.
 */
struct log_ratelimit {
    _Atomic uint64_t    window_ms;      /* start of the current second */
    _Atomic unsigned    nlines;         /* lines let through in it */
    _Atomic uint64_t    nsuppressed;    /* lines held back, not yet said */
};

#define LOG_RATELIMIT_BURST 10

/*
 * True when a line may be logged now; <*nsuppressed> is then the number
 * of lines held back since the last one let through, for the caller to
 * append ("N similar lines suppressed"). False: skip the line.
 */
bool log_ratelimit_ok(struct log_ratelimit *rl, uint64_t *nsuppressed);

void log_msg(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_event(int level, const struct log_fields *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_session_end(const struct log_session *ls);

#define log_error(...)  log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)   log_msg(LOG_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)   log_msg(LOG_INFO, __VA_ARGS__)
#ifdef MQ_DEBUG
#define log_debug(...)  log_msg(LOG_DEBUG, __VA_ARGS__)
#else
#define log_debug(...)  ((void)0)
#endif

#endif /* MQLB_LOG_H */
