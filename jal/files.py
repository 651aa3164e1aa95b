"""Result files written so that a kill at any instant leaves the old or the new file whole."""

import os
import pathlib
import tempfile

__all__ = ["atomic_write"]


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
