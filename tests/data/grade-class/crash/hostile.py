"""Answers init, then dies at the first tick."""
import sys

sys.stdin.readline()
print('{"type": "init_ok"}', flush=True)
sys.stdin.readline()
raise SystemExit(3)
