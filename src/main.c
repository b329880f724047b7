/*
 * main.c: the command line. Only this file exits the process.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/config.h"
#include "mqlb/core.h"
#include "mqlb/ctl.h"
#include "mqlb/log.h"

#define MAIN_DEFAULT_CONFIG "etc/mqlb.ini"

static void
main_usage(FILE *out)
{
    fprintf(out,
        "usage: mqlb [-c FILE]       run in the foreground (default %s)\n"
        "       mqlb -t [-c FILE]    check FILE and exit (0 valid, 1 not)\n"
        "       mqlb -s reload|stop|status [-c FILE]\n"
        "                            ask the running instance (on FILE's\n"
        "                            control_socket, else its admin port)\n"
        "                            and wait for the outcome (exit 1:\n"
        "                            failed, 3: not running)\n"
        "       mqlb -c FILE --takeover\n"
        "                            take over the listening sockets, the\n"
        "                            sessions and the runtime state of the\n"
        "                            instance on FILE's control_socket\n"
        "       mqlb -V              print the version\n"
        "       mqlb -h              this help\n"
        "signals: HUP reloads, TERM/INT stop gracefully (twice: at once)\n",
        MAIN_DEFAULT_CONFIG);
}

int
main(int argc, char **argv)
{
    struct config_errors errs = { NULL, 0 };
    const char *path = MAIN_DEFAULT_CONFIG, *signal_cmd = NULL;
    struct config *cf;
    struct core core;
    static const struct option longopts[] = {
        { "takeover", no_argument, NULL, 'T' },
        { NULL, 0, NULL, 0 },
    };
    bool takeover = false;
    int opt, test = 0, rc;
    size_t i;

    while ((opt = getopt_long(argc, argv, "c:s:tVh", longopts, NULL))
           != -1) {
        switch (opt) {
        case 'T':
            takeover = true;
            break;
        case 'c':
            path = optarg;
            break;
        case 't':
            test = 1;
            break;
        case 's':
            signal_cmd = optarg;
            break;
        case 'V':
            printf("mqlb %s\n", MQLB_VERSION);
            return 0;
        case 'h':
            main_usage(stdout);
            return 0;
        default:
            main_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mqlb: unexpected argument '%s'\n", argv[optind]);
        main_usage(stderr);
        return 2;
    }

    if (signal_cmd != NULL) {
        return ctl_run(signal_cmd, path);
    }
    cf = config_load(path, &errs);
    if (cf == NULL) {
        for (i = 0; i < errs.nmsgs; i++) {
            fprintf(stderr, "%s\n", errs.msgs[i]);
        }
        fprintf(stderr, "mqlb: %s: %zu error%s, not started\n", path,
                errs.nmsgs, errs.nmsgs == 1 ? "" : "s");
        config_errors_deinit(&errs);
        return 1;
    }
    /* Warnings go where the errors would: stderr for -t, else the log. */
    if (!test) {
        log_init(cf->log_level, cf->log_format);
    }
    config_warnings(cf, &errs);
    for (i = 0; i < errs.nmsgs; i++) {
        if (test) {
            fprintf(stderr, "%s\n", errs.msgs[i]);
        } else {
            log_warn("%s", errs.msgs[i]);
        }
    }
    config_errors_deinit(&errs);
    if (test) {
        config_dump(cf, stdout);
        fprintf(stderr, "mqlb: %s: configuration is valid\n", path);
        config_destroy(cf);
        return 0;
    }
    if (core_init(&core, cf, takeover) != MQ_OK) {
        return 1;
    }
    rc = core_run(&core);
    core_deinit(&core);
    return rc;
}
