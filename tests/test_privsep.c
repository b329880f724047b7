/*
 * test_privsep.c: the privileged helper's two requests, end to end
 * through a real fork and socketpair: the config file read back whole
 * (also larger than one message), its errors, and a listening socket
 * passed back ready to accept.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "mqlb/common.h"
#include "mqlb/privsep.h"

static char tp_path[64];

static void
tp_write(size_t len)
{
    FILE *f;
    size_t i;
    int fd;

    snprintf(tp_path, sizeof(tp_path), "/tmp/mqlb-privsep-XXXXXX");
    fd = mkstemp(tp_path);
    cr_assert_neq(fd, -1);
    f = fdopen(fd, "w");
    cr_assert_not_null(f);
    for (i = 0; i < len; i++) {
        fputc("[global]\n"[i % 9], f);
    }
    fclose(f);
}

Test(privsep, reads_the_config_file_whole)
{
    char err[MQ_ERR_LEN], *text;
    struct privsep *ps;
    size_t len, i;

    tp_write(100 * 1024 + 7);       /* several messages */
    ps = privsep_start(tp_path, err);
    cr_assert_not_null(ps, "%s", err);
    cr_assert_gt(privsep_pid(ps), 0);
    for (i = 0; i < 2; i++) {       /* and again, as each reload does */
        text = privsep_read_config(ps, &len, err);
        cr_assert_not_null(text, "%s", err);
        cr_assert_eq(len, 100 * 1024 + 7);
        cr_assert_eq(strlen(text), len);
        cr_assert(strncmp(text, "[global]\n[global]\n", 18) == 0);
        free(text);
    }
    unlink(tp_path);
    text = privsep_read_config(ps, &len, err);
    cr_assert_null(text);
    cr_assert_str_eq(err, "cannot open: No such file or directory");
    privsep_stop(ps);
}

Test(privsep, passes_back_a_listening_socket)
{
    struct config_addr a;
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    char err[MQ_ERR_LEN];
    struct privsep *ps;
    int fd, c, s;

    tp_write(10);
    ps = privsep_start(tp_path, err);
    cr_assert_not_null(ps, "%s", err);
    cr_assert_eq(config_parse_addr("127.0.0.1:1", &a), MQ_OK);
    ((struct sockaddr_in *)&a.ss)->sin_port = 0;    /* the kernel's pick */
    fd = privsep_listen(ps, &a, 16, err);
    cr_assert_geq(fd, 0, "%s", err);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
    c = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(connect(c, (struct sockaddr *)&sin, slen), 0);
    do {
        s = accept(fd, NULL, NULL);
    } while (s == -1);
    close(s);
    close(c);
    close(fd);
    /* A port in use: the helper's own error comes back. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sin.sin_port = 0;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    cr_assert_eq(listen(fd, 1), 0);
    slen = sizeof(sin);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
    ((struct sockaddr_in *)&a.ss)->sin_port = sin.sin_port;
    cr_assert_eq(privsep_listen(ps, &a, 16, err), -1);
    cr_assert(strstr(err, "Address already in use") != NULL, "%s", err);
    close(fd);
    privsep_stop(ps);
    unlink(tp_path);
}
