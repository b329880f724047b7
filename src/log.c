/*
 * log.c: stderr logging in text or JSON lines, and the clocks.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/log.h"

static _Atomic int log_level_cur = LOG_INFO;
static _Atomic int log_format_cur = LOG_FORMAT_TEXT;
static _Atomic bool log_journal = false;

static const char *const log_names[] = {
    "error", "warn", "notice", "info", "debug",
};

uint64_t
mq_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
mq_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * systemd sets JOURNAL_STREAM=DEV:INODE for the stream it connects to
 * stdout/stderr; only when stderr is that very stream do priority
 * prefixes reach journald (a redirect in between must see plain lines).
 */
static bool
log_detect_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
        fstat(STDERR_FILENO, &st) != 0) {
        return false;
    }
    return (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
}

void
log_init(int level, enum config_log_format format)
{
    atomic_store(&log_level_cur, level);
    atomic_store(&log_format_cur, (int)format);
    atomic_store(&log_journal, log_detect_journal());
}

bool
log_journal_mode(void)
{
    return atomic_load_explicit(&log_journal, memory_order_relaxed);
}

int
log_syslog_priority(int level)
{
    /* LOG_ERR 3, LOG_WARNING 4, LOG_NOTICE 5, LOG_INFO 6, LOG_DEBUG 7 */
    if (level < LOG_ERROR) {
        return 3;
    }
    if (level > LOG_DEBUG) {
        return 7;
    }
    return 3 + level;
}

int
log_level_parse(const char *text)
{
    size_t i;

    for (i = 0; i < MQ_NELEMS(log_names); i++) {
        if (strcmp(text, log_names[i]) == 0) {
            return (int)i;
        }
    }
    return -1;
}

const char *
log_level_name(int level)
{
    if (level < 0 || level >= (int)MQ_NELEMS(log_names)) {
        return "?";
    }
    return log_names[level];
}

int
log_enabled(int level)
{
    return level <= atomic_load_explicit(&log_level_cur,
                                         memory_order_relaxed);
}

/* "2026-11-27T13:40:00.123Z" into <buf> (at least 32 bytes). */
static void
log_timestamp(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    size_t n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Append <s> to <out> as the inside of a JSON string. */
static size_t
log_json_escape(char *out, size_t cap, size_t pos, const char *s)
{
    for (; *s != '\0' && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            out[pos++] = '\\';
            out[pos++] = (char)c;
        } else if (c < 0x20) {
            pos += (size_t)snprintf(out + pos, cap - pos, "\\u%04x", c);
        } else {
            out[pos++] = (char)c;
        }
    }
    return pos;
}

static void
log_write(const char *line, size_t len)
{
    ssize_t n;

    /* One write per line keeps lines whole between threads. */
    do {
        n = write(STDERR_FILENO, line, len);
    } while (n == -1 && errno == EINTR);
}

/*
 * The line head: "<N>" under journald (which stamps the time itself),
 * else the timestamp; for JSON the opening of the object.
 */
static size_t
log_head(char *line, size_t cap, int level, bool json)
{
    char ts[40];
    size_t pos = 0;

    if (log_journal_mode()) {
        pos = (size_t)snprintf(line, cap, "<%d>", log_syslog_priority(level));
        if (json) {
            pos += (size_t)snprintf(line + pos, cap - pos,
                                    "{\"level\":\"%s\"",
                                    log_level_name(level));
        } else {
            pos += (size_t)snprintf(line + pos, cap - pos, "%s ",
                                    log_level_name(level));
        }
        return pos;
    }
    log_timestamp(ts, sizeof(ts));
    if (json) {
        return (size_t)snprintf(line, cap, "{\"ts\":\"%s\",\"level\":\"%s\"",
                                ts, log_level_name(level));
    }
    return (size_t)snprintf(line, cap, "%s %s ", ts, log_level_name(level));
}

/* Append ,"<key>":"<val>" when <val> is set. */
static size_t
log_json_field(char *line, size_t cap, size_t pos, const char *key,
               const char *val)
{
    if (val == NULL || pos + 8 + strlen(key) >= cap) {
        return pos;
    }
    pos += (size_t)snprintf(line + pos, cap - pos, ",\"%s\":\"", key);
    pos = log_json_escape(line, cap - 4, pos, val);
    line[pos++] = '"';
    return pos;
}

static void
log_vemit(int level, const struct log_fields *f, const char *fmt, va_list ap)
{
    char msg[2048], line[4096];
    bool json = atomic_load(&log_format_cur) == LOG_FORMAT_JSON;
    size_t pos;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    pos = log_head(line, sizeof(line), level, json);
    if (json) {
        if (f != NULL) {
            pos = log_json_field(line, sizeof(line), pos, "event", f->event);
            pos = log_json_field(line, sizeof(line), pos, "pool", f->pool);
            pos = log_json_field(line, sizeof(line), pos, "backend",
                                 f->backend);
            pos = log_json_field(line, sizeof(line), pos, "state", f->state);
            pos = log_json_field(line, sizeof(line), pos, "from", f->from);
            pos = log_json_field(line, sizeof(line), pos, "to", f->to);
            pos = log_json_field(line, sizeof(line), pos, "reason",
                                 f->reason);
            pos = log_json_field(line, sizeof(line), pos, "client",
                                 f->client);
        }
        pos = log_json_field(line, sizeof(line), pos, "msg", msg);
        memcpy(line + pos, "}\n", 2);
        pos += 2;
    } else {
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "%s\n", msg);
        if (pos >= sizeof(line)) {
            pos = sizeof(line) - 1;
            line[pos - 1] = '\n';
        }
    }
    log_write(line, pos);
}

void
log_msg(int level, const char *fmt, ...)
{
    va_list ap;

    if (!log_enabled(level)) {
        return;
    }
    va_start(ap, fmt);
    log_vemit(level, NULL, fmt, ap);
    va_end(ap);
}

void
log_event(int level, const struct log_fields *f, const char *fmt, ...)
{
    va_list ap;

    if (!log_enabled(level)) {
        return;
    }
    va_start(ap, fmt);
    log_vemit(level, f, fmt, ap);
    va_end(ap);
}

void
log_session_end(const struct log_session *ls)
{
    char line[2048];
    bool json = atomic_load(&log_format_cur) == LOG_FORMAT_JSON;
    size_t pos;

    if (!log_enabled(LOG_INFO)) {
        return;
    }
    pos = log_head(line, sizeof(line), LOG_INFO, json);
    if (json) {
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos,
            ",\"event\":\"session\",\"id\":%llu",
            (unsigned long long)ls->id);
        pos = log_json_field(line, sizeof(line), pos, "client", ls->client);
        pos = log_json_field(line, sizeof(line), pos, "pool", ls->pool);
        pos = log_json_field(line, sizeof(line), pos, "backend", ls->backend);
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos,
            ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%llu,"
            "\"end\":\"%s\"}\n",
            (unsigned long long)ls->bytes_in,
            (unsigned long long)ls->bytes_out,
            (unsigned long long)ls->duration_ms, ls->end);
    } else {
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos,
            "session #%llu client=%s pool=%s backend=%s in=%llu "
            "out=%llu duration=%llums end=%s\n",
            (unsigned long long)ls->id, ls->client, ls->pool, ls->backend,
            (unsigned long long)ls->bytes_in,
            (unsigned long long)ls->bytes_out,
            (unsigned long long)ls->duration_ms, ls->end);
    }
    if (pos >= sizeof(line)) {
        pos = sizeof(line) - 1;
        line[pos - 1] = '\n';
    }
    log_write(line, pos);
}
