"""tox plugin of this project: find the Pythons that pyenv installed but keeps off PATH.

pyenv puts only its shims on PATH, and a shim answers only for the versions selected in
the shell, so tox would skip py310..py313 on a machine that has them all. Before tox looks
for interpreters, this adds the newest installed patch release of each version of the
matrix to the end of PATH (the current ``python`` stays first).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

from tox.plugin import impl

MATRIX = ("3.10", "3.11", "3.12", "3.13")


def _pyenv_bins() -> list[str]:
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return []
    versions = Path(root) / "versions"
    found = []
    for want in MATRIX:
        pattern = re.compile(rf"^{re.escape(want)}\.(\d+)$")
        candidates = [(int(m.group(1)), d) for d in versions.glob(f"{want}.*")
                      if (m := pattern.match(d.name)) and (d / "bin" / f"python{want}").exists()]
        if candidates:
            found.append(str(max(candidates)[1] / "bin"))
    return found


@impl
def tox_add_core_config(core_conf: Any, state: Any) -> None:  # noqa: ARG001 - tox's hook
    extra = [b for b in _pyenv_bins() if b not in os.environ.get("PATH", "").split(os.pathsep)]
    if extra:
        os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), *extra])
