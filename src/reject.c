/*
 * reject.c: the names of the rejection reasons.
 */
#include "mqlb/reject.h"

static const char *const reject_names[REJECT_NREASONS] = {
    [REJECT_NO_BACKEND] = "no_backend",
    [REJECT_ALLOW] = "allow",
    [REJECT_SOURCE_LIMIT] = "source_limit",
    [REJECT_MAX_CONNECTIONS] = "max_connections",
    [REJECT_QUEUE] = "queue",
    [REJECT_SNI] = "sni",
};

const char *
reject_reason_name(enum reject_reason r)
{
    return (unsigned)r < REJECT_NREASONS ? reject_names[r] : "unknown";
}
