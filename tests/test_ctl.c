/*
 * test_ctl.c: how `mqlb -s` finds the running instance in a config file,
 * including one that has errors elsewhere.
 */
#include <criterion/criterion.h>

#include "mqlb/ctl.h"

Test(ctl, default_admin_address)
{
    struct ctl_target t;

    cr_assert_eq(ctl_parse_target("[global]\nworkers = 2\n", &t), 0);
    cr_assert_str_eq(t.host, "127.0.0.1");
    cr_assert_str_eq(t.port, "9000");
    cr_assert_str_eq(t.token, "");
    cr_assert_str_eq(t.sock, "");       /* no control socket: admin port */
}

Test(ctl, control_socket_is_taken_from_global_only)
{
    struct ctl_target t;
    const char *text =
        "[global]\nworkers = banana\ncontrol_socket = /run/mqlb/ctl.sock\n"
        "[pool p]\ncontrol_socket = /elsewhere\n"
        "[admin]\nlisten = 127.0.0.1:9100\ntoken = s3cret\n";

    cr_assert_eq(ctl_parse_target(text, &t), 0);
    cr_assert_str_eq(t.sock, "/run/mqlb/ctl.sock");
    cr_assert_str_eq(t.port, "9100");   /* still read: the fallback */
}

Test(ctl, admin_listen_and_token_despite_errors)
{
    struct ctl_target t;
    const char *text =
        "[global]\nworkers = banana\n"
        "[pool p]\nlisten = 127.0.0.1:99999\nbackend = nope\n"
        "[admin]\nlisten = 0.0.0.0:9100 ; all v4\ntoken = s3cret\n";

    cr_assert_eq(ctl_parse_target(text, &t), 0);
    cr_assert_str_eq(t.host, "127.0.0.1");   /* wildcard: via loopback */
    cr_assert_str_eq(t.port, "9100");
    cr_assert_str_eq(t.token, "s3cret");
}

Test(ctl, ipv6_and_broken_listen)
{
    struct ctl_target t;

    cr_assert_eq(ctl_parse_target("[admin]\nlisten = [::1]:9001\n", &t), 0);
    cr_assert_str_eq(t.host, "::1");
    cr_assert_str_eq(t.port, "9001");
    cr_assert_eq(ctl_parse_target("[admin]\nlisten = [::]:9001\n", &t), 0);
    cr_assert_str_eq(t.host, "::1");
    cr_assert_eq(ctl_parse_target("[admin]\nlisten = nowhere\n", &t), -1);
}
