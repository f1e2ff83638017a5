"""Grading on a Dask cluster (``lclock grade --cluster ADDR``), as ``experiment --cluster``.

A task gets the submission's folder as a tar archive (workers need no shared filesystem,
only the same lclock), grades it in a temporary folder and returns its files as bytes.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lclock.experiment.cluster import RETRIES, connect, describe_error
from lclock.grade.grade_one import Graded, grade_one
from lclock.grade.rubric import Rubric, rubric_from_text
from lclock.grade.workspace import sweep, work_prefix
from lclock.settings import SettingsError

MAX_ARCHIVE = 256 << 20


def pack(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name, recursive=True)
    return buf.getvalue()


def _member(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tar's "data" filter, but a member it refuses (a link out, a device) is left out."""
    try:
        return tarfile.data_filter(member, dest)
    except tarfile.FilterError:
        return None


def remote_grade(name: str, archive: bytes, index: int, rubric_text: str) -> Graded:
    """What a Dask task runs: the submission unpacked, graded, its files returned."""
    rubric = rubric_from_text(rubric_text)
    sweep(Path(tempfile.gettempdir()))
    with tempfile.TemporaryDirectory(prefix=work_prefix() + "task-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            tar.extractall(tmp, filter=_member)
        return grade_one(Path(tmp) / name, index, rubric, (tmp,))


def cluster_client(address: str) -> Any:
    """A client of the scheduler at ``address``, or BadInput (one line): asked before the
    grades' folder is made, so a cluster that is not there leaves nothing behind."""
    try:
        return connect(address)
    except SettingsError as e:
        from lclock.errors import BadInput

        raise BadInput(str(e)) from None


def grade_on_cluster(client: Any, todo: list[tuple[int, Path]], rubric: Rubric) -> Iterator[Graded]:
    """Every submission as a task of the cluster; the client is the caller's to close."""
    from distributed import as_completed

    futures: list[Any] = []
    try:
        for index, folder in todo:
            futures.append(client.submit(remote_grade, folder.name, pack(folder), index,
                                         rubric.text, pure=False, retries=RETRIES))
        names = {f.key: folder.name for f, (_i, folder) in zip(futures, todo, strict=True)}
        for fut in as_completed(futures, loop=client.loop):
            try:
                yield fut.result()
            except Exception as exc:  # noqa: BLE001 - the task's error, after the retries
                yield _lost(names[fut.key], describe_error(exc))
    finally:
        client.cancel(futures, force=True)


def _lost(name: str, why: str) -> Graded:
    """A submission the cluster could not grade: no score, status lost, the reason."""
    g = Graded(name, 0.0, 0.0, "not-graded", [])
    g.files["results.json"] = ('{"score": 0, "output": "not graded: ' + why.replace('"', "'")
                               + '", "tests": []}\n').encode()
    return g
