/*
 * log.c: stderr logging in text or JSON lines, and the clocks.
 *
 * Once log_start() ran, a line is only copied into a per-process ring
 * (LOG_RING_SIZE bytes, one mutex held for a memcpy) and one thread of
 * its own writes the ring to stderr. A worker never waits on the log
 * reader: when the ring is full the line is dropped and counted, and the
 * count is reported in a line of its own once the reader caught up.
 * Before log_start() and after log_stop() lines are written directly.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/log.h"

#define LOG_RING_SIZE       (256 * 1024)    /* bytes waiting for stderr */
#define LOG_CHUNK           4096            /* bytes per write(2) */
#define LOG_STOP_WAIT_MS    2000            /* at exit, wait this long for
                                               a stalled reader */

/* The lines waiting for the writer thread. */
struct log_ring {
    pthread_mutex_t     lock;           /* guards every member below */
    pthread_cond_t      cond;           /* the writer sleeps on it */
    pthread_t           thread;         /* the writer */
    char                buf[LOG_RING_SIZE];
    size_t              head;           /* next byte to write out */
    size_t              len;            /* bytes waiting */
    uint64_t            ndropped;       /* lines dropped, not yet said */
    uint64_t            ndropped_total; /* lines dropped since start */
    bool                running;        /* the writer thread exists */
    bool                stopping;       /* writer: flush and leave */
    bool                sleeping;       /* writer waits on <cond> */
};

static _Atomic int log_level_cur = LOG_INFO;
static _Atomic int log_format_cur = LOG_FORMAT_TEXT;
static _Atomic bool log_journal = false;
static _Atomic bool log_ring_on;
static struct log_ring log_ring = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
};

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
mq_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
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
log_write_direct(const char *line, size_t len)
{
    ssize_t n;

    /* One write per line keeps lines whole between threads. */
    do {
        n = write(STDERR_FILENO, line, len);
    } while (n == -1 && errno == EINTR);
}

/*
 * Queue one whole line, or drop and count it when the ring has no room:
 * the caller never waits on the reader of stderr.
 */
static void
log_write(const char *line, size_t len)
{
    struct log_ring *r = &log_ring;
    size_t tail, first;
    bool wake;

    if (!atomic_load_explicit(&log_ring_on, memory_order_acquire)) {
        log_write_direct(line, len);
        return;
    }
    pthread_mutex_lock(&r->lock);
    if (!r->running) {
        pthread_mutex_unlock(&r->lock);
        log_write_direct(line, len);
        return;
    }
    if (len > LOG_RING_SIZE - r->len) {
        r->ndropped++;
        r->ndropped_total++;
        pthread_mutex_unlock(&r->lock);
        return;
    }
    tail = (r->head + r->len) % LOG_RING_SIZE;
    first = MQ_MIN(len, LOG_RING_SIZE - tail);
    memcpy(r->buf + tail, line, first);
    memcpy(r->buf, line + first, len - first);
    r->len += len;
    wake = r->sleeping;
    r->sleeping = false;
    pthread_mutex_unlock(&r->lock);
    if (wake) {
        pthread_cond_signal(&r->cond);
    }
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

/* Format one line into <line> (<cap> bytes); returns its length. */
static size_t
log_vformat(char *line, size_t cap, int level, const struct log_fields *f,
            const char *fmt, va_list ap)
{
    char msg[2048];
    bool json = atomic_load(&log_format_cur) == LOG_FORMAT_JSON;
    size_t pos;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    pos = log_head(line, cap, level, json);
    if (json) {
        if (f != NULL) {
            pos = log_json_field(line, cap, pos, "event", f->event);
            pos = log_json_field(line, cap, pos, "pool", f->pool);
            pos = log_json_field(line, cap, pos, "backend",
                                 f->backend);
            pos = log_json_field(line, cap, pos, "state", f->state);
            pos = log_json_field(line, cap, pos, "from", f->from);
            pos = log_json_field(line, cap, pos, "to", f->to);
            pos = log_json_field(line, cap, pos, "reason",
                                 f->reason);
            pos = log_json_field(line, cap, pos, "client",
                                 f->client);
        }
        pos = log_json_field(line, cap, pos, "msg", msg);
        memcpy(line + pos, "}\n", 2);
        pos += 2;
    } else {
        pos += (size_t)snprintf(line + pos, cap - pos, "%s\n", msg);
        if (pos >= cap) {
            pos = cap - 1;
            line[pos - 1] = '\n';
        }
    }
    return pos;
}

static void
log_vemit(int level, const struct log_fields *f, const char *fmt, va_list ap)
{
    char line[4096];

    log_write(line, log_vformat(line, sizeof(line), level, f, fmt, ap));
}

static size_t
log_format(char *line, size_t cap, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t
log_format(char *line, size_t cap, int level, const char *fmt, ...)
{
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    n = log_vformat(line, cap, level, NULL, fmt, ap);
    va_end(ap);
    return n;
}

/*
 * Write <len> bytes to stderr from the writer thread. While stopping, a
 * reader that takes nothing for LOG_STOP_WAIT_MS loses the rest (false).
 */
static bool
log_flush_out(const char *p, size_t len, bool stopping)
{
    struct pollfd pfd = { .fd = STDERR_FILENO, .events = POLLOUT };
    ssize_t n;

    while (len > 0) {
        if (stopping && poll(&pfd, 1, LOG_STOP_WAIT_MS) == 0) {
            return false;
        }
        n = write(STDERR_FILENO, p, MQ_MIN(len, LOG_CHUNK));
        if (n == -1) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            return false;       /* stderr closed: nothing to do */
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/*
 * The writer thread: copy a chunk out under the lock, write it without
 * the lock. When the ring runs empty after lines were dropped, say how
 * many.
 */
static void *
log_writer_main(void *arg)
{
    struct log_ring *r = &log_ring;
    char chunk[LOG_CHUNK], line[512];
    uint64_t dropped;
    size_t n, first;
    bool stopping, ok;

    (void)arg;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        while (r->len == 0 && r->ndropped == 0 && !r->stopping) {
            r->sleeping = true;
            pthread_cond_wait(&r->cond, &r->lock);
        }
        stopping = r->stopping;
        if (r->len == 0 && r->ndropped == 0) {
            break;      /* stopping, all out */
        }
        n = 0;
        dropped = 0;
        if (r->len > 0) {
            n = MQ_MIN(r->len, sizeof(chunk));
            first = MQ_MIN(n, LOG_RING_SIZE - r->head);
            memcpy(chunk, r->buf + r->head, first);
            memcpy(chunk + first, r->buf, n - first);
            r->head = (r->head + n) % LOG_RING_SIZE;
            r->len -= n;
        } else {
            dropped = r->ndropped;
            r->ndropped = 0;
        }
        pthread_mutex_unlock(&r->lock);
        if (dropped > 0) {
            n = log_format(line, sizeof(line), LOG_WARN, "dropped %llu log "
                           "lines: stderr was not read fast enough",
                           (unsigned long long)dropped);
            ok = log_flush_out(line, n, stopping);
        } else {
            ok = log_flush_out(chunk, n, stopping);
        }
        pthread_mutex_lock(&r->lock);
        if (!ok && r->stopping) {
            break;
        }
    }
    r->running = false;
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

int
log_start(void)
{
    struct log_ring *r = &log_ring;

    pthread_mutex_lock(&r->lock);
    if (r->running) {
        pthread_mutex_unlock(&r->lock);
        return MQ_OK;
    }
    r->head = 0;
    r->len = 0;
    r->stopping = false;
    r->sleeping = false;
    if (pthread_create(&r->thread, NULL, log_writer_main, NULL) != 0) {
        pthread_mutex_unlock(&r->lock);
        return MQ_ERR;
    }
    (void)pthread_setname_np(r->thread, "mqlb-log");
    r->running = true;
    pthread_mutex_unlock(&r->lock);
    atomic_store_explicit(&log_ring_on, true, memory_order_release);
    return MQ_OK;
}

void
log_stop(void)
{
    struct log_ring *r = &log_ring;

    if (!atomic_load(&log_ring_on)) {
        return;
    }
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_mutex_unlock(&r->lock);
    pthread_cond_signal(&r->cond);
    pthread_join(r->thread, NULL);
    atomic_store(&log_ring_on, false);
}

uint64_t
log_dropped(void)
{
    uint64_t n;

    pthread_mutex_lock(&log_ring.lock);
    n = log_ring.ndropped_total;
    pthread_mutex_unlock(&log_ring.lock);
    return n;
}

bool
log_ratelimit_ok(struct log_ratelimit *rl, uint64_t *nsuppressed)
{
    uint64_t now = mq_now_ms();
    uint64_t start = atomic_load_explicit(&rl->window_ms,
                                          memory_order_relaxed);

    if (now - start >= 1000 &&
        atomic_compare_exchange_strong(&rl->window_ms, &start, now)) {
        atomic_store_explicit(&rl->nlines, 0, memory_order_relaxed);
    }
    if (atomic_fetch_add_explicit(&rl->nlines, 1, memory_order_relaxed)
        < LOG_RATELIMIT_BURST) {
        *nsuppressed = atomic_exchange_explicit(&rl->nsuppressed, 0,
                                                memory_order_relaxed);
        return true;
    }
    atomic_fetch_add_explicit(&rl->nsuppressed, 1, memory_order_relaxed);
    return false;
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
    char line[2048], idle[24];
    bool json = atomic_load(&log_format_cur) == LOG_FORMAT_JSON;
    size_t pos;

    if (!log_enabled(LOG_INFO)) {
        return;
    }
    if (ls->idle_ms == 0) {
        snprintf(idle, sizeof(idle), "never");
    } else {
        snprintf(idle, sizeof(idle), "%llums",
                 (unsigned long long)ls->idle_ms);
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
            "\"idle_timeout_ms\":%llu,\"end\":\"%s\"}\n",
            (unsigned long long)ls->bytes_in,
            (unsigned long long)ls->bytes_out,
            (unsigned long long)ls->duration_ms,
            (unsigned long long)ls->idle_ms, ls->end);
    } else {
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos,
            "session #%llu client=%s pool=%s backend=%s in=%llu "
            "out=%llu duration=%llums idle=%s end=%s\n",
            (unsigned long long)ls->id, ls->client, ls->pool, ls->backend,
            (unsigned long long)ls->bytes_in,
            (unsigned long long)ls->bytes_out,
            (unsigned long long)ls->duration_ms, idle, ls->end);
    }
    if (pos >= sizeof(line)) {
        pos = sizeof(line) - 1;
        line[pos - 1] = '\n';
    }
    log_write(line, pos);
}
