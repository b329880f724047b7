#!/usr/bin/env python3
"""The include-layer check: calls go down, notifications come up through
hooks. Every src/*.c and include/mqlb/*.h may include headers of its own
layer or of the layers below it, never of a layer above. In the layers
marked "apart" the modules may not include one another either (a
listener knows no session; each is given hooks by its owner).

A new module needs a row here: put it in the lowest layer it can live in.
Run from the top of the tree: python3 tests/check_layers.py
"""
import os
import re
import sys

# Lowest first: (layer name, modules may include each other?, modules)
LAYERS = [
    ("base", True, """common log config config_diff acl net relay
        proxy_proto mqtt_connect probe nats_watch numtext histo procstat notify
        tls tls_rec tls_hello heartbeat lifetime rate rebalance fdpass handover
        ctlsock ctl state_file reject
        admin_api admin_guard privsep resolver waitq"""),
    ("balancing", True, """backend lb pool srclimit admission health
        stats history rebalancer discovery"""),
    ("connection", False, "session listener"),
    ("thread", True, "worker listen_set"),
    ("process", True, """gen admin mgmt mgmt_api members proc core reload
        persist takeover ctlserve"""),
    ("program", True, "main"),
]

INCLUDE = re.compile(r'^\s*#\s*include\s+"mqlb/([a-z0-9_]+)\.h"', re.M)


def module_of(path):
    """src/lb_rr.c -> lb, src/probe_redis.c -> probe, include/mqlb/x.h -> x"""
    name = os.path.splitext(os.path.basename(path))[0]
    rank = layer_of()
    if name in rank:
        return name
    for prefix in ("lb_", "probe_"):
        if name.startswith(prefix):
            return prefix[:-1]
    return name


def layer_of():
    rank = {}
    for i, (_, _, mods) in enumerate(LAYERS):
        for m in mods.split():
            rank[m] = i
    return rank


def main():
    rank = layer_of()
    files = sorted(
        [os.path.join("src", f) for f in os.listdir("src") if f.endswith(".c")]
        + [os.path.join("include/mqlb", f) for f in os.listdir("include/mqlb")
           if f.endswith(".h")])
    errors = []
    for path in files:
        mod = module_of(path)
        if mod not in rank:
            errors.append("%s: module '%s' has no layer in tests/"
                          "check_layers.py (add it to the lowest layer it "
                          "can live in)" % (path, mod))
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for inc in INCLUDE.findall(text):
            if inc == mod:
                continue
            if inc not in rank:
                errors.append("%s: includes mqlb/%s.h, which has no layer"
                              % (path, inc))
                continue
            mine, theirs = rank[mod], rank[inc]
            if theirs > mine:
                errors.append("%s: %s (layer %s) includes mqlb/%s.h of the "
                              "higher layer %s: call down, notify up through "
                              "a hook" % (path, mod, LAYERS[mine][0], inc,
                                          LAYERS[theirs][0]))
            elif theirs == mine and not LAYERS[mine][1]:
                errors.append("%s: %s includes mqlb/%s.h, a module of its "
                              "own layer %s whose modules stay apart"
                              % (path, mod, inc, LAYERS[mine][0]))
    for e in errors:
        print(e)
    if errors:
        print("check_layers: %d include(s) against the layering" % len(errors))
        return 1
    print("check_layers: %d files, every include goes down" % len(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
