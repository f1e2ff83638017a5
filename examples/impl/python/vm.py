"""A machine for lclock (SPEC section 9): Lamport, vector and hybrid logical clocks.

Run it with:  lclock sim --impl "python3 examples/impl/python/vm.py" --duration 60
lclock sends one JSON line per request on stdin; we answer each with one line on stdout.
"""

import json
import sys

lclock, vclock, hlc, me, clocks = 0, [], [0, 0], 0, []


def hlc_update(pt, m=None):
    """HLC (Kulkarni et al. 2014): a local or send event, or a receive of m = [lm, cm]."""
    l, c = hlc
    lm, cm = m if m else (l, c)
    new = max(l, lm, pt)
    if m is None:
        c = c + 1 if new == l else 0
    elif new == l == lm:
        c = max(c, cm) + 1
    elif new == l:
        c = c + 1
    elif new == lm:
        c = cm + 1
    else:
        c = 0
    return [new, c]


def tick(req):
    global lclock, hlc
    if req["do"] == "receive":
        msg = req["msg"]
        lclock = max(lclock, msg["lclock"]) + 1
        if vclock:
            vclock[:] = [max(a, b) for a, b in zip(vclock, msg["vclock"])]
        if "hlc" in clocks:
            hlc = hlc_update(req["pt"], msg["hlc"])
    else:  # send or internal: one event
        lclock += 1
        if "hlc" in clocks:
            hlc = hlc_update(req["pt"])
    if vclock:
        vclock[me - 1] += 1
    done = {"type": "done", "tick": req["tick"], "lclock": lclock}
    if vclock:
        done["vclock"] = vclock
    if "hlc" in clocks:
        done["hlc"] = hlc
    if req["do"] == "send":
        done["msg"] = {k: v for k, v in done.items() if k in ("lclock", "vclock", "hlc")}
    return done


for line in sys.stdin:
    req = json.loads(line)
    if req["type"] == "init":
        me, clocks = req["machine"], req["clocks"]
        vclock = [0] * req["machines"] if "vector" in clocks else []
        answer = {"type": "init_ok"}
    elif req["type"] == "tick":
        answer = tick(req)
    else:  # stop
        print(json.dumps({"type": "stop_ok"}), flush=True)
        break
    print(json.dumps(answer), flush=True)
