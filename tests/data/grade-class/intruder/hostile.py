"""Tries to read and write beyond its own folder; if any of it works, it says so and
crashes (so a grade of full marks proves it could not). Otherwise it is a correct machine.

targets.txt (written by the test) lists absolute paths: other submissions, the grader's
output. It also tries its neighbours through ../ and ../../.
"""
import glob
import os
import sys


def reached(path):
    try:
        if os.path.isdir(path):
            os.listdir(path)
            open(os.path.join(path, "intruder-was-here"), "w").close()
        else:
            open(path, "rb").read(1)
        return True
    except OSError:
        return False


targets = []
if os.path.exists("targets.txt"):
    targets = [t for t in open("targets.txt").read().split("\n") if t]
targets += ["..", "../runs", "../..", "../../w"] + glob.glob("/tmp/lclock-grade-*/w/copy")
here = os.path.realpath(".")
found = [t for t in targets if os.path.realpath(t) != here and reached(t)]
if found:
    sys.stderr.write("INTRUDER REACHED " + " ".join(found) + "\n")
    raise SystemExit(3)
import vm  # noqa: E402,F401 - the correct machine
