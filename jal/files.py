"""Result files written so that a kill at any instant leaves the old or the new file whole, and
the lock that keeps one run per workdir."""

import contextlib
import fcntl
import os
import pathlib
import tempfile

__all__ = ["atomic_write", "workdir_lock"]


def atomic_write(path: str | os.PathLike, data: bytes | str) -> pathlib.Path:
  """Writes ``data`` to ``path`` through a temporary file in the same folder and one
  ``os.replace``: readers (and a resumed run) see either the previous file or the new one,
  never a truncated one. Creates the folder; the file is made readable by all (0644)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  if isinstance(data, str):
    data = data.encode()
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
    os.replace(tmp, path)
  except BaseException:
    pathlib.Path(tmp).unlink(missing_ok=True)
    raise
  return path


@contextlib.contextmanager
def workdir_lock(workdir: str | os.PathLike):
  """Holds ``workdir/.lock`` for the duration: a second run on the same workdir is refused.

  The lock is an ``flock`` on an open file, so the operating system releases it when the
  process ends, however it ends: a killed run never leaves the workdir locked.

  Raises:
    ValueError: if another run holds the workdir, or it cannot be created / written.
  """
  path = pathlib.Path(workdir)
  try:
    path.mkdir(parents=True, exist_ok=True)
    f = open(path / ".lock", "a+")  # held (and locked) for the whole run
  except OSError as e:
    raise ValueError(f"cannot use workdir {str(path)!r}: {e.strerror or e}; choose another "
                     "--workdir") from e
  try:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      owner = f.read().strip() or "unknown"
      raise ValueError(f"workdir {str(path)!r} is in use by another run (pid {owner}); wait "
                       "for it to finish or use another --workdir") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    yield
  finally:
    f.close()
