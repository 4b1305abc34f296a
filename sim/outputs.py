"""Where chargetwin may write: every writer replaces only what it recognises as its own output.

A results folder, a sweep folder, a summary file: each writer names how it recognises its
own output (a manifest, a marker key), and `check_folder` / `check_file` refuse anything
else that exists before any work starts, so a mistyped ``--out`` never costs a user a file.
``force`` lets a writer replace a folder or file it does not recognise; the current folder,
a folder that holds it, the home folder and a folder holding one of the run's inputs are
never replaced.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["OutputRefusedError", "check_file", "check_folder", "describe", "json_with_keys", "write_text_atomic"]


class OutputRefusedError(ValueError):
    """An output path that holds something chargetwin did not write; nothing was run, nothing removed."""


def json_with_keys(path: Path, keys: Iterable[str]) -> bool:
    """`path` is a JSON object holding every key of `keys` (how writers recognise their manifests)."""
    try:
        with path.open("rb") as f:
            data: Any = json.loads(f.read(1 << 20))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and all(k in data for k in keys)


def describe(entries: list[Path], limit: int = 5) -> str:
    """``3 entries: a.txt, b/, c.csv`` for a message."""
    names = sorted(p.name + ("/" if p.is_dir() and not p.is_symlink() else "") for p in entries)
    shown = ", ".join(names[:limit]) + (f", … ({len(names) - limit} more)" if len(names) > limit else "")
    return f"{len(names)} entr{'y' if len(names) == 1 else 'ies'}: {shown}"


def _never_replaced(path: Path, inputs: Iterable[Path]) -> str | None:
    """Why `path` may not be replaced even with force, or None."""
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        return "is the current folder or holds it"
    if resolved == Path.home().resolve() or resolved == Path(resolved.anchor):
        return "is the home or root folder"
    for item in inputs:
        if resolved in Path(item).resolve().parents:
            return f"holds {item}, an input of this command"
    return None


def _parent_problem(path: Path) -> str | None:
    """Why a new `path` cannot be created (a file where a folder must be), or None."""
    for parent in path.absolute().parents:
        if parent.exists():
            return None if parent.is_dir() else f"{parent} is a file, not a folder"
    return None


def check_folder(
    path: Path,
    *,
    owned: Callable[[Path], bool],
    what: str,
    flag: str = "--out",
    force: bool = False,
    inputs: Iterable[Path] = (),
) -> list[Path]:
    """Raise OutputRefusedError unless a writer may create or replace the folder `path`.

    Allowed: a path that does not exist, an empty folder, a folder `owned` recognises; with
    `force`, also any other folder, except the current folder (or one holding it), home, root
    and a folder holding one of `inputs`.

    Args:
        path: The folder a writer is about to create or replace.
        owned: Recognises the writer's own output (e.g. a results folder by its manifest).
        what: The writer's output in words, for the message ("a results folder (manifest.json)").
        flag: The option that named `path`, for the message.
        force: Replace a folder `owned` does not recognise.
        inputs: Files this command reads; a folder holding one is never replaced.

    Returns:
        What a forced replace removes: the entries of an unrecognised folder (empty otherwise).
    """
    path = Path(path)
    inputs = list(inputs)
    if path.is_symlink():
        raise OutputRefusedError(f"{flag} {path}: is a symbolic link; give the folder itself or a new path")
    if not path.exists():
        problem = _parent_problem(path)
        if problem:
            raise OutputRefusedError(f"{flag} {path}: {problem}; give another {flag}")
        return []
    never = _never_replaced(path, inputs)
    if never is not None:
        raise OutputRefusedError(f"{flag} {path}: {never}, so it is never replaced; give a new folder, e.g. out/run1")
    if not path.is_dir():
        raise OutputRefusedError(
            f"{flag} {path}: is a file, and chargetwin writes a folder there; give another {flag} "
            "(the file is left as it is)"
        )
    entries = list(path.iterdir())
    if not entries or owned(path):
        return []
    if not force:
        raise OutputRefusedError(
            f"{flag} {path}: holds {describe(entries)} but is not {what}, so it is left as it is; "
            f"give a new or empty folder, or add --force to remove what it holds"
        )
    return entries


def check_file(path: Path, *, owned: Callable[[Path], bool], what: str, flag: str, force: bool = False) -> bool:
    """Raise OutputRefusedError unless a writer may create or overwrite the file `path`.

    Allowed: a path that does not exist, an empty file, a file `owned` recognises, and with
    `force` any other file; a folder is always refused.

    Returns:
        True when an existing file that is not the writer's own output will be overwritten (force).
    """
    path = Path(path)
    if not path.exists():
        problem = _parent_problem(path)
        if problem:
            raise OutputRefusedError(f"{flag} {path}: {problem}; give another {flag}")
        return False
    if path.is_dir():
        raise OutputRefusedError(f"{flag} {path}: is a folder; give a file name, e.g. {path / 'summary.json'}")
    if path.stat().st_size == 0 or owned(path):
        return False
    if not force:
        raise OutputRefusedError(
            f"{flag} {path}: the file exists and is not {what}, so it is left as it is; "
            f"give another file name, or add --force to overwrite it"
        )
    return True


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file beside it: a reader sees the old or the new file whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
