/*
 * test_state_file.c: the runtime state file round-trips, skips (and
 * names) lines it cannot read, treats a missing file as no state, and is
 * replaced atomically (no temporary file left behind).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/state_file.h"

struct sf_warnings {
    char    text[1024];
    int     n;
};

static void
sf_warn(void *ctx, const char *msg)
{
    struct sf_warnings *w = ctx;

    w->n++;
    strncat(w->text, msg, sizeof(w->text) - strlen(w->text) - 2);
    strcat(w->text, "\n");
}

Test(state_file, write_then_read_gives_the_same_entries)
{
    char dir[] = "/tmp/mqlb-state-XXXXXX", path[64], tmp[80], err[256];
    struct state_entry in[3], *out;
    struct stat st;
    size_t n;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/state", dir);
    memset(in, 0, sizeof(in));
    strcpy(in[0].pool, "mqtt");
    strcpy(in[0].backend, "m1");
    in[0].admin = STATE_ADMIN_DRAIN;
    strcpy(in[1].pool, "mqtt");
    strcpy(in[1].backend, "m2");
    in[1].has_weight = true;
    in[1].weight = 7;
    in[1].file_weight = 1;
    strcpy(in[2].pool, "redis");
    strcpy(in[2].backend, "r9");
    in[2].added = true;
    strcpy(in[2].addr, "127.0.0.1:6390");
    in[2].weight = 2;
    in[2].max_conns = 50;
    in[2].backup = true;
    in[2].admin = STATE_ADMIN_DISABLE;
    cr_assert_eq(state_file_write(path, in, 3, err), MQ_OK, "%s", err);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    cr_assert_eq(access(tmp, F_OK), -1, "no temporary file is left");
    cr_assert_eq(state_file_read(path, &out, &n, NULL, NULL, err), MQ_OK);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(out[0].backend, "m1");
    cr_assert_eq(out[0].admin, STATE_ADMIN_DRAIN);
    cr_assert(!out[0].has_weight);
    cr_assert_eq(out[1].weight, 7);
    cr_assert_eq(out[1].file_weight, 1);
    cr_assert(out[1].has_weight);
    cr_assert_eq(out[1].admin, STATE_ADMIN_READY);
    cr_assert(out[2].added);
    cr_assert_str_eq(out[2].addr, "127.0.0.1:6390");
    cr_assert_eq(out[2].weight, 2);
    cr_assert_eq(out[2].max_conns, 50);
    cr_assert(out[2].backup);
    cr_assert_eq(out[2].admin, STATE_ADMIN_DISABLE);
    cr_assert_eq(out[2].line, 5);
    free(out);
    /* rewriting replaces, never appends */
    cr_assert_eq(state_file_write(path, in, 1, err), MQ_OK);
    cr_assert_eq(state_file_read(path, &out, &n, NULL, NULL, err), MQ_OK);
    cr_assert_eq(n, 1);
    free(out);
    unlink(path);
    rmdir(dir);
}

Test(state_file, bad_lines_are_skipped_with_their_line_number)
{
    struct sf_warnings w = { "", 0 };
    struct state_entry *out;
    size_t n;

    cr_assert_eq(state_file_parse(
        "# comment\n"
        "\n"
        "backend p a admin=drain\n"
        "backend p\n"
        "backend p b admin=sleepy\n"
        "backend p c weight=999\n"
        "frobnicate p d\n"
        "backend p/x e admin=drain\n"
        "backend p f weight=3 file_weight=2 admin=ready\r\n",
        "st", &out, &n, sf_warn, &w), MQ_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(out[0].backend, "a");
    cr_assert_str_eq(out[1].backend, "f");
    cr_assert_eq(out[1].line, 9);
    cr_assert_eq(w.n, 5);
    cr_assert_not_null(strstr(w.text, "st:4: too few fields, ignored"));
    cr_assert_not_null(strstr(w.text, "st:5: admin must be"));
    cr_assert_not_null(strstr(w.text, "st:6: weight must be 0..256"));
    cr_assert_not_null(strstr(w.text, "st:7: expected"));
    cr_assert_not_null(strstr(w.text, "st:8: bad pool or backend name"));
    free(out);
}

Test(state_file, a_missing_file_is_no_state)
{
    struct state_entry *out = (void *)1;
    char err[256];
    size_t n = 9;

    cr_assert_eq(state_file_read("/nonexistent/mqlb/state", &out, &n, NULL,
                                 NULL, err), MQ_OK);
    cr_assert_eq(n, 0);
    cr_assert_null(out);
}

Test(state_file, an_unwritable_place_is_an_error_naming_it)
{
    struct state_entry e;
    char err[256];

    memset(&e, 0, sizeof(e));
    strcpy(e.pool, "p");
    strcpy(e.backend, "b");
    cr_assert_eq(state_file_write("/nonexistent/dir/state", &e, 1, err),
                 MQ_ERR);
    cr_assert_not_null(strstr(err, "/nonexistent/dir/state"), "%s", err);
}
