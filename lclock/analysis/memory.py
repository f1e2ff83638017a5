"""Keep freed memory in the process while a command reads a large run.

Reading a run allocates and frees the same few megabytes of numpy arrays for every chunk
of lines. glibc returns freed memory at the top of the heap to the system once more than
``M_TRIM_THRESHOLD`` is free, and serves large arrays with fresh ``mmap`` pages, so every
chunk page-faults its memory in again: on a virtual machine that was a quarter of
``lclock check``'s time. Raising both thresholds lets the next chunk reuse the same pages;
the price is at most ``TRIM`` bytes of free memory held until the command ends.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
TRIM = 64 << 20
MMAP = 32 << 20


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse; False where there is no glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_TRIM_THRESHOLD, TRIM)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP))
