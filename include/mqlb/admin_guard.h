/*
 * admin_guard.h: what keeps a web page in the operator's browser away
 * from the admin port. Pure functions over header values, used by
 * admin.c before its token check:
 *
 *   - DNS rebinding: a page of evil.example whose name is made to point
 *     at 127.0.0.1 talks to the admin port as a same-origin page. Its
 *     requests carry "Host: evil.example:9000", so a request whose Host
 *     is not the admin's own address, "localhost" (loopback listen) or a
 *     name in [admin] allowed_hosts is refused.
 *   - Cross-site requests: a page may POST to any address (a "simple"
 *     request needs no CORS preflight), and it carries the page's Origin.
 *     A POST whose Origin is not the admin port's own is refused.
 */
#ifndef MQLB_ADMIN_GUARD_H
#define MQLB_ADMIN_GUARD_H

#include <stdbool.h>

#include "mqlb/config.h"

/*
 * True when the Host header <host> (NULL when absent: HTTP/1.0 tools)
 * names the admin port listening on <listen>: an IP literal equal to the
 * listen address (any IP literal when it listens on 0.0.0.0 or ::), the
 * host written in the listen address, "localhost" for a loopback listen,
 * or one of the names in <names> (blank- or comma-separated, NULL for
 * none; compared without case). The port in <host> is not looked at.
 */
bool admin_guard_host_ok(const char *host, const struct config_addr *listen,
                         const char *names);

/*
 * True when a request carrying Origin <origin> (NULL when absent) and
 * Host <host> comes from the admin port's own page: no Origin (curl,
 * scripts), or "http://HOST" / "https://HOST" with the request's own Host.
 * "null" and every other origin are refused.
 */
bool admin_guard_origin_ok(const char *origin, const char *host);

#endif /* MQLB_ADMIN_GUARD_H */
