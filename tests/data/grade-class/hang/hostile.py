"""Answers init, then never answers again."""
import sys
import time

sys.stdin.readline()
print('{"type": "init_ok"}', flush=True)
while True:
    time.sleep(60)
