/*
 * ctlserve.c: the control socket's conversations (see ctlserve.h). The
 * first frame is read here, with the socket's timeouts; a takeover goes
 * on in takeover.c, a command is carried out at once through mgmt.c (we
 * are on the main loop: a reload runs here as a SIGHUP's would) and its
 * answer sent back in one frame.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/core.h"
#include "mqlb/ctlserve.h"
#include "mqlb/ctlsock.h"
#include "mqlb/handover.h"
#include "mqlb/log.h"
#include "mqlb/mgmt.h"
#include "mqlb/takeover.h"

/* The wire's command as mgmt's, and its name for the log; NULL when this
 * build does not know <cmd>. */
static const char *
ctlserve_cmd(uint8_t cmd, enum mgmt_cmd *out)
{
    switch (cmd) {
    case HANDOVER_CMD_RELOAD:
        *out = MGMT_CMD_RELOAD;
        return "reload";
    case HANDOVER_CMD_STOP:
        *out = MGMT_CMD_STOP;
        return "stop";
    case HANDOVER_CMD_STATUS:
        *out = MGMT_CMD_STATUS;
        return "status";
    default:
        return NULL;
    }
}

/* Carry out <m> for the peer <pid> and answer on <fd>. */
static void
ctlserve_command(struct core *c, int fd, pid_t pid,
                 const struct handover_command *m)
{
    struct handover_buf b;
    enum mgmt_cmd cmd;
    const char *name;
    unsigned status = 500;
    char text[HANDOVER_TEXT_LEN];
    char *body;

    name = ctlserve_cmd(m->cmd, &cmd);
    if (name == NULL) {
        snprintf(text, sizeof(text), "unknown command %u: mqlb %s knows "
                 "reload, stop and status", (unsigned)m->cmd, MQLB_VERSION);
        log_warn("control socket: pid %d: %s", (int)pid, text);
        ctlsock_send_error(fd, text);
        return;
    }
    /* Who did what (a status is only read, and not worth a line). */
    if (cmd != MGMT_CMD_STATUS) {
        log_notice("control socket: pid %d asks for a %s", (int)pid, name);
    }
    body = mgmt_command(c, cmd, true, &status);
    if (body == NULL) {
        ctlsock_send_error(fd, "out of memory");
        return;
    }
    handover_buf_init(&b);
    if (handover_encode_reply(&b, status, body, strlen(body)) != MQ_OK) {
        ctlsock_send_error(fd, "the reply does not fit in a frame");
    } else if (ctlsock_send_frame(fd, &b) != MQ_OK) {
        log_warn("control socket: the %s reply to pid %d failed: %s, "
                 "ignored", name, (int)pid, strerror(errno));
    }
    handover_buf_deinit(&b);
    free(body);
}

void
ctlserve_conn(void *ctx, int fd, pid_t pid)
{
    struct core *c = ctx;
    struct handover_header h;
    struct handover_hello hello;
    struct handover_command cmd;
    char text[HANDOVER_TEXT_LEN];
    uint8_t *payload;
    int rc;

    rc = ctlsock_read_frame(fd, &h, &payload);
    if (rc == HANDOVER_EVERSION) {
        snprintf(text, sizeof(text), "handover version %u is not supported:"
                 " mqlb %s speaks version %d", (unsigned)h.version,
                 MQLB_VERSION, HANDOVER_VERSION);
        log_warn("control socket: pid %d: %s; still serving", (int)pid,
                 text);
        ctlsock_send_error(fd, text);
    } else if (rc != MQ_OK) {
        log_warn("control socket: pid %d: %s, connection closed", (int)pid,
                 ctlsock_frame_error(rc));
        if (rc != MQ_ERR) {
            ctlsock_send_error(fd, ctlsock_frame_error(rc));
        }
    } else if (h.type == HANDOVER_HELLO &&
               handover_decode_hello(payload, h.length, &hello) == MQ_OK) {
        free(payload);
        takeover_serve(c, fd, pid);     /* closes fd */
        return;
    } else if (h.type == HANDOVER_COMMAND &&
               handover_decode_command(payload, h.length, &cmd) == MQ_OK) {
        ctlserve_command(c, fd, pid, &cmd);
    } else {
        log_warn("control socket: pid %d sent %s, neither a takeover nor a "
                 "command; connection closed", (int)pid,
                 handover_type_name(h.type));
        ctlsock_send_error(fd, "expected HELLO or COMMAND");
    }
    free(payload);
    close(fd);
}
