"""Atomic writes: a crash (even `kill -9`) leaves either the old file/directory or the new one, never half.

The trick is the usual one: write beside the destination, fsync, then `os.replace`, which POSIX makes
atomic within one filesystem.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some filesystems (and Windows) cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# What the frameworks' writers raise when the file system refuses a write, without an errno: MLX's
# save_safetensors ("[write] Unable to write N bytes to file.") and torch.save's zip writer ("unexpected
# pos ...", "PytorchStreamWriter failed writing file ...").
WRITE_FAILED = re.compile(
    r"^\[write\] Unable to write|unexpected pos \d+ vs \d+|PytorchStreamWriter failed writing"
)
SHORT_WRITE = re.compile(r"^\d+ requested and \d+ written$")
FULL = 1 << 20  # bytes free below which a failed write is put down to a full file system


def name_the_file(dest: Path, e: BaseException) -> OSError | None:
    """Make a file-system failure that names no file name `dest`, so the user reads where
    (jai/cli/__init__.py).

    A full disk is an OSError without a file name from write() or fsync() (named here in place), a
    SafetensorError "... (os error 28)" from safetensors, or a RuntimeError of MLX's or torch's writer
    that gives no reason (`WRITE_FAILED`), or numpy's short write (an OSError without errno); each is
    returned as the OSError it stands for."""
    if isinstance(e, OSError) and e.filename is None and e.errno is not None:
        e.filename = str(dest)
    found = re.search(r"\(os error (\d+)\)", str(e)) if type(e).__name__ == "SafetensorError" else None
    if found:
        code = int(found.group(1))
        return OSError(code, os.strerror(code), str(dest))
    short = isinstance(e, OSError) and e.errno is None and SHORT_WRITE.search(str(e))  # numpy's tofile
    if short or (isinstance(e, RuntimeError) and WRITE_FAILED.search(str(e))):
        code = errno.ENOSPC if free_bytes(dest) < FULL else errno.EIO
        return OSError(code, os.strerror(code), str(dest))
    return None


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the file system that holds `path` (or its parent)."""
    for folder in (path, *path.parents):
        try:
            st = os.statvfs(folder)
        except OSError:
            continue
        return st.f_bavail * st.f_frsize
    return 0


@contextmanager
def atomic_file(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; on success it replaces `dest` in one rename."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files owner-only; give them the usual mode
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        named = name_the_file(dest, e)
        if named is None:
            raise
        raise named from e


def write_text_atomic(dest: str | os.PathLike, text: str) -> None:
    with atomic_file(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(dest: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(dest, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def _fsync_tree(folder: Path, mode: int) -> None:
    """Flush every file under `folder`, then the folders themselves, before the rename publishes them.

    Files get the usual mode on the way: some writers (safetensors among them) make owner-only files,
    and a checkpoint whose model file others cannot read while its config.json is 0644 surprises."""
    for f in folder.iterdir():
        if f.is_dir():
            _fsync_tree(f, mode)
        elif f.is_file():
            os.chmod(f, mode)
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(folder)


@contextmanager
def atomic_directory(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory; on success it takes the place of `dest`.

    A directory cannot be renamed over a non-empty one, so an existing `dest` is first moved aside and
    deleted only once the new one is in place: at every instant a complete checkpoint exists under
    `dest` or under its `.old-*` sibling, never a partial one under `dest`.
    """
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise FileExistsError(f"{dest} exists and is not a directory; refusing to replace it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes directories owner-only
    try:
        yield tmp
        _fsync_tree(tmp, 0o666 & ~_umask())
        if dest.exists():
            old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and e.filename and Path(e.filename).is_relative_to(tmp):
            e.filename = str(dest / Path(e.filename).relative_to(tmp))  # the user's name, not the temporary's
        named = name_the_file(dest, e)
        if named is None:
            raise
        raise named from e
