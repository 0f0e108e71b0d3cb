"""The rule that no output may ever replace an input, checked before anything is written.

A run first lists every file it will read (all inputs of the whole batch: labels,
predictions, targets, masks, array parameters) and every file it will write (the maps,
the ``--csv`` table). :func:`conflicts` compares them as the filesystem sees them:

- an output that *is* an input: the same file after resolving ``..`` and symlinks
  (``os.path.realpath``), by inode when both exist (hard links, and case on a filesystem
  that folds it: there ``A.TIF`` exists when ``a.tif`` does);
- an output folder (``.zarr``, replaced whole by ``--overwrite``) that holds an input, and
  an output inside an input folder (a ``.zarr`` input);
- two outputs that would be the same file (``a.npy`` and ``a.tif`` into one folder), also
  when they differ only in case on a filesystem that folds case (probed per folder).

Any conflict refuses the whole run before its first write. :func:`clean_stale_temps` then
removes the hidden temporary files that a killed run (SIGKILL, a power cut) left in the
output folders: their names hold the process id of the run that made them, and only
those of processes that no longer exist are removed.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

__all__ = ["Output", "clean_stale_temps", "conflicts", "temp_name"]

# .{stem}.{pid}-{8 hex}.tmp{suffix} for a file or folder being written, and
# .{name}.{pid}-{8 hex}.old for a replaced .zarr folder about to be deleted
_TEMP = re.compile(r"^\..+\.(?P<pid>\d+)-[0-9a-f]{8}\.(tmp.*|old)$")


def temp_name(path: Path, kind: str = "tmp") -> Path:
    """A hidden name next to ``path`` for a temporary (``tmp``) or replaced (``old``) file."""
    tag = f"{os.getpid()}-{secrets.token_hex(4)}"
    if kind == "old":
        return path.with_name(f".{path.name}.{tag}.old")
    return path.with_name(f".{path.stem}.{tag}.tmp{path.suffix}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or not ours to judge: leave its files
    return True


def clean_stale_temps(folder: Path) -> list[Path]:
    """Remove the temporary files and folders that a killed ``losslens`` run left in
    ``folder`` (those whose process no longer exists); return what was removed."""
    removed: list[Path] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _TEMP.match(name)
        if match is None or _alive(int(match["pid"])):
            continue
        path = folder / name
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


@cache
def _folds_case(folder: str) -> bool:
    """Whether the filesystem of ``folder`` (which exists) folds case: probed by a file."""
    probe = Path(folder) / f".losslens-case-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        probe.touch(exist_ok=False)
    except OSError:
        return os.path.normcase("A") == "a"  # cannot probe: the platform's rule
    try:
        return probe.with_name(probe.name.upper()).exists()
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def _key(path: Path) -> str:
    """``path`` as the filesystem names it: resolved, and case-folded where it folds case."""
    real = os.path.realpath(path)
    folder = os.path.dirname(real)
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    return real.casefold() if folder and _folds_case(folder) else real


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _inside(inner: str, outer: str) -> bool:
    return inner.startswith(outer.rstrip(os.sep) + os.sep)


class Output:
    """A file a run will write: its ``path`` and ``who`` writes it (an input, ``--csv``)."""

    def __init__(self, path: Path, who: str) -> None:
        self.path = path
        self.who = who


def conflicts(inputs: Iterable[Path], outputs: Sequence[Output]) -> list[str]:
    """One message per output that would replace, hold or lie in an input, or that
    another output would also write; empty when the run is safe to start."""
    existing = [p for p in dict.fromkeys(inputs) if p.exists()]
    input_keys = [(p, _key(p)) for p in existing]
    problems: list[str] = []
    taken: dict[str, Output] = {}
    for out in outputs:
        key = _key(out.path)
        for inp, inp_key in input_keys:
            if key == inp_key or _same(out.path, inp):
                problems.append(f"{out.who}: the output {out.path} would replace the input {inp}")
                break
            if _inside(inp_key, key):
                problems.append(
                    f"{out.who}: the output {out.path} would replace a folder that holds "
                    f"the input {inp}"
                )
                break
            if _inside(key, inp_key):
                problems.append(
                    f"{out.who}: the output {out.path} would be inside the input {inp}"
                )
                break
        if key in taken:
            first = taken[key]
            problems.append(
                f"{out.who}: same output name as {first.who}: both would write {out.path}"
            )
        else:
            taken[key] = out
    return problems
