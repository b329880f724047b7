/*
 * test_backend.c: a backend's health counter (rise/fall), active check
 * verdicts, passive connect failures (max_fails), the slow-start weight
 * ramp and the precedence of admin, health and protocol states.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/config.h"

#define RISE    2
#define FALL    3
#define TOP     (RISE + FALL - 1)

static struct backend *tb;

/* A backend "b1" of pool "p", weight 10, max_conns 0 and up. */
static void
tb_setup(void)
{
    struct config_backend cb;

    memset(&cb, 0, sizeof(cb));
    snprintf(cb.name, sizeof(cb.name), "b1");
    cr_assert_eq(config_parse_addr("127.0.0.1:7101", &cb.addr), MQ_OK);
    cb.weight = 10;
    tb = backend_create(&cb, "p");
    cr_assert_not_null(tb);
}

static void
tb_teardown(void)
{
    backend_release(tb);
}

TestSuite(backend, .init = tb_setup, .fini = tb_teardown);

/* Apply a string of verdicts ('+' pass, '-' fail) from <h>. */
static int
tb_steps(int h, const char *verdicts)
{
    for (; *verdicts != '\0'; verdicts++) {
        h = backend_health_step(h, *verdicts == '+', RISE, FALL);
    }
    return h;
}

static bool
tb_check(bool pass)
{
    return backend_check_done(tb, pass, pass ? "" : "refused", 3, RISE,
                              FALL);
}

/* ---- backend_health_step ----------------------------------------------- */

Test(backend, three_fails_from_the_top_take_it_down)
{
    int h = TOP;

    h = backend_health_step(h, false, RISE, FALL);
    cr_expect_eq(h, 3);
    cr_expect_geq(h, RISE, "still up after one fail");
    h = backend_health_step(h, false, RISE, FALL);
    cr_expect_eq(h, 2);
    cr_expect_geq(h, RISE, "still up after two fails");
    h = backend_health_step(h, false, RISE, FALL);
    cr_expect_lt(h, RISE, "down after three fails");
    cr_expect_eq(h, 0);
}

Test(backend, two_passes_from_down_bring_it_up)
{
    int h = 0;

    h = backend_health_step(h, true, RISE, FALL);
    cr_expect_eq(h, 1);
    cr_expect_lt(h, RISE, "still down after one pass");
    h = backend_health_step(h, true, RISE, FALL);
    cr_expect_eq(h, RISE, "up after two passes");
}

Test(backend, a_fail_while_rising_resets_the_count)
{
    cr_expect_eq(tb_steps(0, "+-"), 0);
    cr_expect_lt(tb_steps(0, "+-+"), RISE, "needs two passes in a row");
    cr_expect_eq(tb_steps(0, "+-++"), RISE);
    cr_expect_eq(tb_steps(0, "++-"), 0, "at rise one fail goes down again");
}

Test(backend, a_pass_while_falling_climbs_back_one_step)
{
    /* 4 -> 3 -> 2 -> 3: two more fails take it down, not three. */
    cr_expect_eq(tb_steps(TOP, "--+"), 3);
    cr_expect_geq(tb_steps(TOP, "--+-"), RISE);
    cr_expect_eq(tb_steps(TOP, "--+--"), 0);
    cr_expect_eq(tb_steps(TOP, "--++"), TOP, "two passes refill it");
}

Test(backend, health_is_clamped_at_both_ends)
{
    cr_expect_eq(tb_steps(TOP, "++++++"), TOP);
    cr_expect_eq(tb_steps(0, "------"), 0);
    cr_expect_eq(tb_steps(0, "++++++++"), TOP);
}

Test(backend, rise_1_fall_1_flips_on_every_change)
{
    cr_expect_eq(backend_health_step(0, true, 1, 1), 1);
    cr_expect_eq(backend_health_step(1, true, 1, 1), 1);
    cr_expect_eq(backend_health_step(1, false, 1, 1), 0);
    cr_expect_eq(backend_health_step(0, false, 1, 1), 0);
}

/* ---- backend_check_done ----------------------------------------------- */

Test(backend, new_backend_is_up_with_one_reference)
{
    cr_expect_str_eq(tb->name, "b1");
    cr_expect_str_eq(tb->pool_name, "p");
    cr_expect_str_eq(backend_addr(tb)->text, "127.0.0.1:7101");
    cr_expect(atomic_load(&tb->up));
    cr_expect_eq(atomic_load(&tb->weight), 10);
    cr_expect_eq(atomic_load(&tb->refcnt), 1);
    cr_expect_eq(backend_state(tb), BACKEND_UP);
    cr_expect(backend_is_eligible(tb));
}

Test(backend, check_done_reports_only_changes)
{
    uint64_t v0 = atomic_load(&tb->version);

    cr_expect_not(tb_check(true), "up and passing: no change");
    cr_expect_not(tb_check(true));
    cr_expect_eq(atomic_load(&tb->version), v0);
    /* At the top now: fall = 3 fails take it down, only the 3rd reports. */
    cr_expect_not(tb_check(false));
    cr_expect_not(tb_check(false));
    cr_expect(atomic_load(&tb->up));
    cr_expect(tb_check(false), "the 3rd fail takes it down");
    cr_expect_not(atomic_load(&tb->up));
    cr_expect_eq(backend_state(tb), BACKEND_DOWN);
    cr_expect_gt(atomic_load(&tb->version), v0);
    cr_expect_not(tb_check(false), "already down");

    cr_expect_not(tb_check(true));
    cr_expect_not(atomic_load(&tb->up));
    cr_expect(tb_check(true), "the 2nd pass brings it up");
    cr_expect(atomic_load(&tb->up));
    cr_expect_gt(atomic_load(&tb->up_at_ms), 0);
    cr_expect_not(tb_check(true));

    cr_expect_eq(atomic_load(&tb->nchecks_pass), 5);
    cr_expect_eq(atomic_load(&tb->nchecks_fail), 4);
}

Test(backend, first_failed_check_takes_a_new_backend_down)
{
    /* haproxy's start: health sits at rise, the lowest up value. */
    cr_expect(tb_check(false));
    cr_expect_not(atomic_load(&tb->up));
}

Test(backend, check_done_records_the_last_verdict)
{
    struct backend_check c;

    backend_check_done(tb, false, "connection refused", 7, RISE, FALL);
    backend_get_check(tb, &c);
    cr_expect_eq(c.result, BACKEND_CHECK_FAIL);
    cr_expect_str_eq(c.reason, "connection refused");
    cr_expect_eq(c.latency_ms, 7);
    cr_expect_gt(c.at_ms, 0);

    backend_check_done(tb, true, "ignored on a pass", 2, RISE, FALL);
    backend_get_check(tb, &c);
    cr_expect_eq(c.result, BACKEND_CHECK_PASS);
    cr_expect_str_eq(c.reason, "");
    cr_expect_eq(c.latency_ms, 2);
}

Test(backend, a_fail_between_passes_delays_recovery)
{
    cr_expect(tb_check(false));             /* down */
    cr_expect_not(tb_check(true));
    cr_expect_not(tb_check(false));         /* resets the rise count */
    cr_expect_not(tb_check(true));
    cr_expect_not(atomic_load(&tb->up));
    cr_expect(tb_check(true));
    cr_expect(atomic_load(&tb->up));
}

Test(backend, disabled_backends_checks_do_not_count)
{
    int i;

    backend_set_admin(tb, BACKEND_ADMIN_DISABLE);
    for (i = 0; i < 10; i++) {
        cr_expect_not(tb_check(false));
    }
    cr_expect(atomic_load(&tb->up), "the health verdict did not move");
    cr_expect_eq(atomic_load(&tb->nchecks_fail), 10, "but they are counted");
    cr_expect_eq(backend_state(tb), BACKEND_DISABLED);

    backend_set_admin(tb, BACKEND_ADMIN_NONE);
    cr_expect_eq(backend_state(tb), BACKEND_UP);
    cr_expect(tb_check(false), "counting again once enabled");
}

Test(backend, drained_backends_checks_still_count)
{
    backend_set_admin(tb, BACKEND_ADMIN_DRAIN);
    cr_expect(tb_check(false));
    cr_expect_not(atomic_load(&tb->up));
    cr_expect_eq(backend_state(tb), BACKEND_DOWN, "down wins over drain");
    cr_expect_str_eq(backend_admin_name(tb), "drain");
}

Test(backend, rise_passes_are_needed_after_a_passive_ejection)
{
    cr_expect_not(tb_check(true));
    cr_expect_not(tb_check(true));          /* health at the top */
    backend_connect_fail(tb, 1, "refused");
    cr_expect_not(atomic_load(&tb->up));
    cr_expect_not(tb_check(true), "one pass is not enough");
    cr_expect(tb_check(true));
    cr_expect(atomic_load(&tb->up));
    cr_expect_eq(atomic_load(&tb->nfails_row), 0, "recovery clears the row");
}

/* ---- passive health --------------------------------------------------- */

Test(backend, third_consecutive_connect_failure_marks_it_down)
{
    uint64_t v0 = atomic_load(&tb->version);

    cr_expect_not(backend_connect_fail(tb, 3, "refused"));
    cr_expect_not(backend_connect_fail(tb, 3, "refused"));
    cr_expect(atomic_load(&tb->up));
    cr_expect_eq(atomic_load(&tb->version), v0);
    cr_expect(backend_connect_fail(tb, 3, "refused"));
    cr_expect_not(atomic_load(&tb->up));
    cr_expect_gt(atomic_load(&tb->version), v0);
    cr_expect_not(backend_connect_fail(tb, 3, "refused"), "already down");
    cr_expect_eq(atomic_load(&tb->nfailed), 4);
}

Test(backend, connect_ok_resets_the_failure_run)
{
    cr_expect_not(backend_connect_fail(tb, 3, "refused"));
    cr_expect_not(backend_connect_fail(tb, 3, "refused"));
    backend_connect_ok(tb);
    cr_expect_eq(atomic_load(&tb->nfails_row), 0);
    cr_expect_not(backend_connect_fail(tb, 3, "refused"));
    cr_expect_not(backend_connect_fail(tb, 3, "refused"));
    cr_expect(atomic_load(&tb->up), "the run started again");
    cr_expect(backend_connect_fail(tb, 3, "refused"));
    cr_expect_not(atomic_load(&tb->up));
}

Test(backend, max_fails_0_never_ejects)
{
    int i;

    for (i = 0; i < 100; i++) {
        cr_expect_not(backend_connect_fail(tb, 0, "refused"));
    }
    cr_expect(atomic_load(&tb->up));
    cr_expect_eq(atomic_load(&tb->nfailed), 100);
}

/* ---- slow start -------------------------------------------------------- */

Test(backend, eff_weight_ramps_up_over_slow_start)
{
    const uint64_t up_at = 1000000, ss = 10000;

    atomic_store(&tb->up_at_ms, up_at);
    cr_expect_eq(backend_eff_weight(tb, up_at, ss), 1, "never 0");
    cr_expect_eq(backend_eff_weight(tb, up_at + 999, ss), 1);
    cr_expect_eq(backend_eff_weight(tb, up_at + 1000, ss), 1);
    cr_expect_eq(backend_eff_weight(tb, up_at + 2500, ss), 2);
    cr_expect_eq(backend_eff_weight(tb, up_at + ss / 2, ss), 5, "halfway");
    cr_expect_eq(backend_eff_weight(tb, up_at + ss - 1, ss), 9);
    cr_expect_eq(backend_eff_weight(tb, up_at + ss, ss), 10, "full after");
    cr_expect_eq(backend_eff_weight(tb, up_at + 10 * ss, ss), 10);
}

Test(backend, eff_weight_is_never_0_while_weight_is_positive)
{
    const uint64_t up_at = 5000, ss = 60000;
    uint64_t t;

    atomic_store(&tb->weight, 1);
    atomic_store(&tb->up_at_ms, up_at);
    for (t = up_at; t <= up_at + ss + 10; t += 997) {
        cr_expect_geq(backend_eff_weight(tb, t, ss), 1, "at +%llu ms",
                      (unsigned long long)(t - up_at));
    }
    cr_expect_eq(backend_eff_weight(tb, up_at + ss / 2, ss), 1);
    atomic_store(&tb->weight, 256);
    cr_expect_eq(backend_eff_weight(tb, up_at + ss / 2, ss), 128);
}

Test(backend, eff_weight_is_full_without_slow_start_or_recovery)
{
    cr_expect_eq(backend_eff_weight(tb, 123456, 10000), 10,
                 "up from the start: up_at_ms is 0");
    atomic_store(&tb->up_at_ms, 123000);
    cr_expect_eq(backend_eff_weight(tb, 123456, 0), 10, "slow_start = 0");
    atomic_store(&tb->weight, 0);
    cr_expect_eq(backend_eff_weight(tb, 123456, 10000), 0, "weight 0 stays");
}

Test(backend, recovery_by_checks_starts_the_ramp)
{
    uint64_t up_at;

    cr_expect(tb_check(false));
    cr_expect_not(tb_check(true));
    cr_expect(tb_check(true));
    up_at = atomic_load(&tb->up_at_ms);
    cr_assert_gt(up_at, 0);
    cr_expect_lt(backend_eff_weight(tb, up_at + 100, 10000), 10);
    cr_expect_eq(backend_eff_weight(tb, up_at + 10000, 10000), 10);
}

/* ---- state ------------------------------------------------------------- */

Test(backend, state_precedence_is_down_disabled_drain_proto_drain_up)
{
    /* Down wins over drain and disabled (SPEC part two): the admin
     * state is shown apart, in "admin" and "reason". */
    atomic_store(&tb->up, false);
    atomic_store(&tb->proto_drain, true);
    atomic_store(&tb->admin, BACKEND_ADMIN_DISABLE);
    cr_expect_eq(backend_state(tb), BACKEND_DOWN);
    atomic_store(&tb->admin, BACKEND_ADMIN_DRAIN);
    cr_expect_eq(backend_state(tb), BACKEND_DOWN);
    atomic_store(&tb->admin, BACKEND_ADMIN_NONE);
    cr_expect_eq(backend_state(tb), BACKEND_DOWN, "down beats proto drain");
    atomic_store(&tb->up, true);
    cr_expect_eq(backend_state(tb), BACKEND_DRAIN, "proto drain while up");
    atomic_store(&tb->admin, BACKEND_ADMIN_DISABLE);
    cr_expect_eq(backend_state(tb), BACKEND_DISABLED);
    atomic_store(&tb->admin, BACKEND_ADMIN_DRAIN);
    cr_expect_eq(backend_state(tb), BACKEND_DRAIN);
    atomic_store(&tb->admin, BACKEND_ADMIN_NONE);
    atomic_store(&tb->proto_drain, false);
    cr_expect_eq(backend_state(tb), BACKEND_UP);
}

Test(backend, state_names)
{
    cr_expect_str_eq(backend_state_name(BACKEND_UP), "up");
    cr_expect_str_eq(backend_state_name(BACKEND_DOWN), "down");
    cr_expect_str_eq(backend_state_name(BACKEND_DRAIN), "drain");
    cr_expect_str_eq(backend_state_name(BACKEND_DISABLED), "disabled");
}

Test(backend, admin_changes_bump_the_version_once)
{
    uint64_t v0 = atomic_load(&tb->version);

    backend_set_admin(tb, BACKEND_ADMIN_DRAIN);
    cr_expect_eq(atomic_load(&tb->version), v0 + 1);
    backend_set_admin(tb, BACKEND_ADMIN_DRAIN);
    cr_expect_eq(atomic_load(&tb->version), v0 + 1, "no change, no bump");
    backend_set_weight(tb, 3);
    cr_expect_eq(atomic_load(&tb->version), v0 + 2);
    backend_set_proto_drain(tb, true);
    cr_expect_eq(atomic_load(&tb->version), v0 + 3);
}

Test(backend, eligible_needs_up_weight_and_room)
{
    cr_expect(backend_is_eligible(tb));
    atomic_store(&tb->max_conns, 2);
    backend_session_start(tb);
    cr_expect(backend_is_eligible(tb));
    backend_session_start(tb);
    cr_expect_not(backend_is_eligible(tb), "full at max_conns");
    backend_session_end(tb);
    cr_expect(backend_is_eligible(tb));
    backend_session_end(tb);
    cr_expect_eq(atomic_load(&tb->ntotal), 2);

    atomic_store(&tb->weight, 0);
    cr_expect_not(backend_is_eligible(tb), "weight 0");
    atomic_store(&tb->weight, 1);
    backend_set_proto_drain(tb, true);
    cr_expect_not(backend_is_eligible(tb), "protocol drain");
    backend_set_proto_drain(tb, false);
    atomic_store(&tb->up, false);
    cr_expect_not(backend_is_eligible(tb), "down");
}

/* ---- health, admin and reason, as /status shows them ------------------ */

static const char *
tb_reason(void)
{
    static char buf[BACKEND_REASON_MAX];

    backend_reason(tb, buf, sizeof(buf));
    return buf;
}

Test(backend, up_and_ready_has_no_reason)
{
    cr_expect(backend_is_up(tb));
    cr_expect_str_eq(backend_admin_name(tb), "ready");
    cr_expect_str_eq(tb_reason(), "");
}

Test(backend, check_down_says_check_failed_and_up_clears_it)
{
    cr_expect(tb_check(false));
    cr_expect_not(backend_is_up(tb));
    cr_expect_str_eq(backend_admin_name(tb), "ready");
    cr_expect_str_eq(tb_reason(), "check failed: refused");
    tb_check(true);
    cr_expect(tb_check(true));
    cr_expect_str_eq(tb_reason(), "");
}

Test(backend, passive_down_says_how_many_failures_and_the_last)
{
    cr_expect_not(backend_connect_fail(tb, 3, "refused"));
    cr_expect_not(backend_connect_fail(tb, 3, "refused"));
    cr_expect(backend_connect_fail(tb, 3, "timeout"));
    cr_expect_str_eq(tb_reason(), "3 connect failures in a row: timeout");
    /* A check that passes now and then does not rewrite the cause. */
    cr_expect_not(backend_connect_fail(tb, 3, "refused"));
    cr_expect_str_eq(tb_reason(), "3 connect failures in a row: timeout");
}

Test(backend, admin_states_name_who_and_a_dead_drained_backend_says_both)
{
    backend_set_admin_by(tb, BACKEND_ADMIN_DRAIN, "127.0.0.1");
    cr_expect(backend_is_up(tb));
    cr_expect_str_eq(backend_admin_name(tb), "drain");
    cr_expect_str_eq(tb_reason(), "drained by admin (127.0.0.1)");
    cr_expect(tb_check(false));
    cr_expect_eq(backend_state(tb), BACKEND_DOWN, "down wins in state");
    cr_expect_str_eq(tb_reason(), "check failed: refused; drained by admin "
                     "(127.0.0.1)");
    backend_set_admin_by(tb, BACKEND_ADMIN_DISABLE, "::1");
    cr_expect_str_eq(backend_admin_name(tb), "disabled");
    cr_expect_str_eq(tb_reason(), "check failed: refused; disabled by admin "
                     "(::1)");
    backend_set_admin(tb, BACKEND_ADMIN_DRAIN);
    cr_expect_str_eq(tb_reason(), "check failed: refused; drained by admin");
    backend_set_admin_by(tb, BACKEND_ADMIN_NONE, "127.0.0.1");
    cr_expect_str_eq(backend_admin_name(tb), "ready");
    cr_expect_str_eq(tb_reason(), "check failed: refused");
}

Test(backend, lame_duck_mode_is_a_drain_with_its_reason)
{
    backend_set_proto_drain(tb, true);
    cr_expect(backend_is_up(tb));
    cr_expect_str_eq(backend_admin_name(tb), "drain");
    cr_expect_str_eq(tb_reason(), "lame duck mode");
    backend_set_proto_drain(tb, false);
    cr_expect_str_eq(tb_reason(), "");
}

Test(backend, reason_fits_any_buffer)
{
    char small[8];

    backend_set_admin_by(tb, BACKEND_ADMIN_DRAIN, "127.0.0.1");
    tb_check(false);
    backend_reason(tb, small, sizeof(small));
    cr_expect_str_eq(small, "check f");
    backend_reason(tb, small, 1);
    cr_expect_str_eq(small, "");
}
