"""The explorer page: the template, the vendored d3, our script (the modules of ``js/``
bundled into one, see ``bundle``) and style, and the data, in one HTML file that needs nothing else (no network, no other file: it works from a USB stick).

The data goes into a ``<script type="application/json">`` block. Every ``<`` in it is written
as ``\\u003c`` (the same character to JSON), so no string in a log can end the block early.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from lclock.explorer.bundle import explorer_script
from lclock.outfile import write_bytes

D3 = "vendor/d3.v7.9.0.min.js"
_OPTS = orjson.OPT_SERIALIZE_NUMPY


def _asset(name: str) -> str:
    return (resources.files("lclock.explorer") / name).read_text(encoding="utf-8")


def _inline_script(code: str) -> str:
    return code.replace("</script", "<\\/script")


def data_json(payload: dict[str, Any]) -> bytes:
    """The data as JSON safe inside a script block."""
    return orjson.dumps(payload, option=_OPTS).replace(b"<", b"\\u003c")


def render(runs: list[dict[str, Any]]) -> bytes:
    """The whole page for one run, or two runs to compare."""
    title = " vs ".join(str(r["run"]["id"]) for r in runs)
    page = (_asset("template.html").replace("{{title}}", _escape(title))
            .replace("/*{{css}}*/", _asset("explorer.css"))
            .replace("/*{{d3}}*/", _inline_script(_asset(D3)))
            .replace("/*{{js}}*/", _inline_script(explorer_script())))
    head, _, tail = page.partition("<!--DATA-->")
    data = data_json({"runs": runs})
    return b"".join([head.encode(), b'<script type="application/json" id="lclock-data">', data,
                     b"</script>", tail.encode()])


def _escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write(path: Path, page: bytes, runs: Sequence[Path] = ()) -> None:
    """Write atomically: a reader (or a failed write) never leaves half a page behind;
    never over a run's record nor into a run folder other than ``runs``."""
    write_bytes(path, page, runs=runs)
