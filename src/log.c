/*
 * log.c: stderr logging in text or JSON lines, and the clocks.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/log.h"

static _Atomic int log_level_cur = LOG_INFO;
static _Atomic int log_format_cur = LOG_FORMAT_TEXT;

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

void
log_init(int level, enum config_log_format format)
{
    atomic_store(&log_level_cur, level);
    atomic_store(&log_format_cur, (int)format);
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

void
log_msg(int level, const char *fmt, ...)
{
    char msg[2048], line[4096], ts[40];
    size_t pos;
    va_list ap;

    if (!log_enabled(level)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_timestamp(ts, sizeof(ts));

    if (atomic_load(&log_format_cur) == LOG_FORMAT_JSON) {
        pos = (size_t)snprintf(line, sizeof(line),
                               "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"",
                               ts, log_level_name(level));
        pos = log_json_escape(line, sizeof(line) - 4, pos, msg);
        memcpy(line + pos, "\"}\n", 3);
        pos += 3;
    } else {
        pos = (size_t)snprintf(line, sizeof(line), "%s %s %s\n", ts,
                               log_level_name(level), msg);
        if (pos >= sizeof(line)) {
            pos = sizeof(line) - 1;
            line[pos - 1] = '\n';
        }
    }
    log_write(line, pos);
}

void
log_session_end(const struct log_session *ls)
{
    char line[2048], ts[40];
    size_t pos;

    if (!log_enabled(LOG_INFO)) {
        return;
    }
    log_timestamp(ts, sizeof(ts));
    if (atomic_load(&log_format_cur) == LOG_FORMAT_JSON) {
        pos = (size_t)snprintf(line, sizeof(line),
            "{\"ts\":\"%s\",\"level\":\"info\",\"event\":\"session\","
            "\"id\":%llu,\"client\":\"", ts, (unsigned long long)ls->id);
        pos = log_json_escape(line, sizeof(line), pos, ls->client);
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos,
                                "\",\"pool\":\"");
        pos = log_json_escape(line, sizeof(line), pos, ls->pool);
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos,
                                "\",\"backend\":\"");
        pos = log_json_escape(line, sizeof(line), pos, ls->backend);
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos,
            "\",\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%llu,"
            "\"end\":\"%s\"}\n",
            (unsigned long long)ls->bytes_in,
            (unsigned long long)ls->bytes_out,
            (unsigned long long)ls->duration_ms, ls->end);
    } else {
        pos = (size_t)snprintf(line, sizeof(line),
            "%s info session #%llu client=%s pool=%s backend=%s in=%llu "
            "out=%llu duration=%llums end=%s\n", ts,
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
