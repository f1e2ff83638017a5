"""Forks until it cannot, each child sleeping, then crashes."""
import os
import time

for _ in range(100000):
    try:
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
    except OSError:
        break
raise SystemExit(1)
