/*
 * test_log.c: journald priority prefixes (only when JOURNAL_STREAM names
 * our stderr) and the fields of structured events in JSON lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "mqlb/log.h"

/* Point stderr at a fresh temp file; returns its stream for reading. */
static FILE *
test_log_capture(void)
{
    FILE *f = tmpfile();

    cr_assert_not_null(f);
    cr_assert_eq(dup2(fileno(f), STDERR_FILENO), STDERR_FILENO);
    return f;
}

static char *
test_log_read(FILE *f)
{
    static char buf[8192];
    size_t n;

    fflush(stderr);
    rewind(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    return buf;
}

static void
test_log_set_journal(bool match)
{
    struct stat st;
    char v[64];

    cr_assert_eq(fstat(STDERR_FILENO, &st), 0);
    snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + (match ? 0 : 1));
    setenv("JOURNAL_STREAM", v, 1);
}

Test(log, journald_prefix_when_stream_is_stderr)
{
    FILE *f = test_log_capture();
    char *out;

    test_log_set_journal(true);
    log_init(LOG_INFO, LOG_FORMAT_TEXT);
    cr_assert(log_journal_mode());
    log_warn("backend %s is down", "p/b1");
    log_error("bad");
    log_notice("up");
    out = test_log_read(f);
    cr_assert(strstr(out, "<4>warn backend p/b1 is down\n") == out,
              "got: %s", out);
    cr_assert(strstr(out, "<3>error bad\n") != NULL);
    cr_assert(strstr(out, "<5>notice up\n") != NULL);
}

Test(log, no_prefix_when_stream_is_elsewhere)
{
    FILE *f = test_log_capture();
    char *out;

    test_log_set_journal(false);
    log_init(LOG_INFO, LOG_FORMAT_TEXT);
    cr_assert_not(log_journal_mode());
    log_warn("plain");
    out = test_log_read(f);
    cr_assert_neq(out[0], '<');
    /* "2026-...Z warn plain": a timestamp leads */
    cr_assert(strstr(out, "Z warn plain\n") != NULL, "got: %s", out);
    unsetenv("JOURNAL_STREAM");
}

Test(log, json_event_has_fields)
{
    FILE *f = test_log_capture();
    struct log_fields lf = {
        .event = "backend_state", .pool = "mqtt", .backend = "m\"1",
        .from = "up", .to = "down", .state = "down",
        .reason = "check failed: refused",
    };
    json_error_t jerr;
    json_t *j;
    char *out;

    unsetenv("JOURNAL_STREAM");
    log_init(LOG_INFO, LOG_FORMAT_JSON);
    log_event(LOG_WARN, &lf, "backend %s/%s is down", "mqtt", "m1");
    out = test_log_read(f);
    j = json_loads(out, JSON_DISABLE_EOF_CHECK, &jerr);
    cr_assert_not_null(j, "not JSON: %s", out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "event")),
                     "backend_state");
    cr_assert_str_eq(json_string_value(json_object_get(j, "backend")), "m\"1");
    cr_assert_str_eq(json_string_value(json_object_get(j, "to")), "down");
    cr_assert_str_eq(json_string_value(json_object_get(j, "reason")),
                     "check failed: refused");
    cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "warn");
    cr_assert_str_eq(json_string_value(json_object_get(j, "msg")),
                     "backend mqtt/m1 is down");
    cr_assert_null(json_object_get(j, "client"));
    json_decref(j);
}

Test(log, priorities_map_levels)
{
    cr_assert_eq(log_syslog_priority(LOG_ERROR), 3);
    cr_assert_eq(log_syslog_priority(LOG_WARN), 4);
    cr_assert_eq(log_syslog_priority(LOG_NOTICE), 5);
    cr_assert_eq(log_syslog_priority(LOG_INFO), 6);
    cr_assert_eq(log_syslog_priority(LOG_DEBUG), 7);
}
