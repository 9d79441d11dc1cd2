"""Atomic file publication: nothing half-written under a final name."""

import contextlib
import os
import pathlib
import re
import shutil
import tempfile

# Temporary entries are named `.<final name>.tmp-pid<PID>.<random><suffix>`:
# hidden, next to their final name, and tagged with the writer's process
# id, so that a later run can tell the leftovers of a killed writer (pid
# gone) from the files of a writer that is still running.
_TEMP_TAG = "tmp-pid"
_TEMP_RE = re.compile(r"^\..+\." + _TEMP_TAG + r"(\d+)\.[^/]+$")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(tmp_path, final_path, directory=False):
    """Give `tmp_path` normal permissions and rename it to `final_path`.

    `tempfile` creates private (0600/0700) entries; published files get the
    usual `0666 & ~umask` (folders `0777 & ~umask`). The rename is atomic
    within a file system.
    """
    mode = (0o777 if directory else 0o666) & ~_umask()
    os.chmod(tmp_path, mode)
    os.replace(tmp_path, final_path)
    return pathlib.Path(final_path)


def temp_prefix(final_name, pid=None):
    """`tempfile` prefix for a temporary of `final_name` (see `_TEMP_RE`)."""
    return f".{final_name}.{_TEMP_TAG}{os.getpid() if pid is None else pid}."


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_stale_temps(folder):
    """Delete the temporaries that killed writers left in `folder`.

    Only entries named by `temp_prefix` whose process no longer exists are
    removed (files and folders); a concurrent writer's are kept.

    Returns:
        The removed paths (sorted).
    """
    folder = pathlib.Path(folder)
    removed = []
    try:
        entries = sorted(folder.iterdir())
    except OSError:  # missing or unreadable: nothing to clean
        return removed
    for entry in entries:
        match = _TEMP_RE.match(entry.name)
        if not match or _alive(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_path(final_path):
    """Yield a temporary path next to `final_path`; publish it on success.

    On an exception the temporary file is deleted and `final_path` is left
    as it was.
    """
    final_path = pathlib.Path(final_path)
    final_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=temp_prefix(final_path.name),
        suffix=".part",
        dir=final_path.parent,
    )
    os.close(fd)
    try:
        yield tmp
        publish(tmp, final_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(final_dir):
    """Yield a temporary folder next to `final_dir`; rename it on success.

    Raises:
        FileExistsError: `final_dir` already exists (never overwritten).
    """
    final_dir = pathlib.Path(final_dir)
    if final_dir.exists():
        raise FileExistsError(f"{final_dir} already exists")
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(
        prefix=temp_prefix(final_dir.name),
        suffix=".part",
        dir=final_dir.parent,
    )
    try:
        yield tmp
        publish(tmp, final_dir, directory=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def output_dir_problem(path):
    """Why `path` cannot be (made) an output folder, or None if it can.

    Checked before any work, so that a file in the way is one clear line
    instead of a `FileExistsError` / `NotADirectoryError` after minutes of
    work: `path` or one of its ancestors is an existing non-folder, or the
    nearest existing ancestor is not writable.
    """
    path = pathlib.Path(path)
    for p in (path, *path.parents):
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                which = "is" if p == path else f"is inside {p}, which is"
                return f"{path} {which} a file, not a folder"
            if not os.access(p, os.W_OK | os.X_OK):
                return f"{p} is not writable"
            return None
    return None


def write_text_atomic(path, text):
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        pathlib.Path(tmp).write_text(text, encoding="utf-8")
    return pathlib.Path(path)


def dir_size(path):
    """Total bytes of the files under `path` (recursively)."""
    return sum(
        p.stat().st_size for p in pathlib.Path(path).rglob("*") if p.is_file()
    )
