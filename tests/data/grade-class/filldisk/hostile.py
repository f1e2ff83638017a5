"""Writes one file until the file size limit stops it."""
with open("fill.bin", "wb") as f:
    while True:
        f.write(b"\0" * (1 << 20))
