"""Leaves a child in a session of its own, then is a correct machine."""
import os
import time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(3600)
    os._exit(0)
import vm  # noqa: E402,F401 - the correct machine
