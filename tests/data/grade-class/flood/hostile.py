"""Floods stderr, then stdout with lines that are not the protocol."""
import sys

block = "x" * 65536 + "\n"
for _ in range(300):  # about 20 MB
    sys.stderr.write(block)
while True:
    sys.stdout.write(block)
