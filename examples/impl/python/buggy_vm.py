"""vm.py (the reference machine of SPEC section 9) with a bug on purpose, for teaching and tests.

Run it with:  lclock sim --impl "python3 examples/impl/python/buggy_vm.py --bug NAME"
Without --bug it is vm.py, correct. With --bug NAME it makes one classic bug of `lclock check --bugs` (for teaching and tests):
receive-ignores-message, receive-no-increment, receive-takes-message, send-no-increment,
internal-no-increment, send-per-recipient, send-carries-old-clock, vector-no-merge,
vector-no-own-increment.
"""

import json
import sys

lclock, vclock, hlc, me, clocks = 0, [], [0, 0], 0, []
BUGS = ("receive-ignores-message", "receive-no-increment", "receive-takes-message",
        "send-no-increment", "internal-no-increment", "send-per-recipient",
        "send-carries-old-clock", "vector-no-merge", "vector-no-own-increment")
# nothing, or exactly --bug NAME: a typo (in the name or the flag) or a second bug must not
# run another machine than the one asked for
BUG = sys.argv[2] if len(sys.argv) == 3 and sys.argv[1] == "--bug" else ""
if BUG not in ("", *BUGS) or len(sys.argv) > 1 and not BUG:
    sys.exit(f"buggy_vm.py: --bug: one of {', '.join(BUGS)}, given once "
             f"(got {' '.join(sys.argv[1:]) if len(sys.argv) > 1 else 'nothing'})")


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
        m = msg["lclock"]
        lclock = {"receive-ignores-message": lclock + 1, "receive-no-increment": max(lclock, m),
                  "receive-takes-message": m + 1}.get(BUG, max(lclock, m) + 1)
        if vclock and BUG != "vector-no-merge":
            vclock[:] = [max(a, b) for a, b in zip(vclock, msg["vclock"])]
        if "hlc" in clocks:
            hlc = hlc_update(req["pt"], msg["hlc"])
    else:  # send or internal: one event
        skip = BUG == req["do"] + "-no-increment"
        lclock += 0 if skip else len(req.get("to", [0])) if BUG == "send-per-recipient" else 1
        if "hlc" in clocks:
            hlc = hlc_update(req["pt"])
    if vclock and not (BUG == "vector-no-own-increment" and req["do"] == "receive"):
        vclock[me - 1] += 1
    done = {"type": "done", "tick": req["tick"], "lclock": lclock}
    if vclock:
        done["vclock"] = vclock
    if "hlc" in clocks:
        done["hlc"] = hlc
    if req["do"] == "send":
        done["msg"] = {k: v for k, v in done.items() if k in ("lclock", "vclock", "hlc")}
        done["msg"]["lclock"] -= BUG == "send-carries-old-clock"
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
