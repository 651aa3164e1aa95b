"""Resident memory of this process for the bench binaries (Linux ``/proc``; NaN elsewhere)."""

import resource

__all__ = ["peak_rss_mib", "reset_peak", "status_mib"]


def status_mib(field: str) -> float:
  """``VmRSS`` / ``VmHWM`` (or another ``kB`` field) of ``/proc/self/status``, in MiB."""
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith(field + ":"):
          return int(line.split()[1]) / 1024.0
  except OSError:
    pass
  return float("nan")


def reset_peak() -> bool:
  """Resets ``VmHWM`` to the current RSS (``/proc/self/clear_refs``, Linux >= 4.0); whether
  it could."""
  try:
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
    return True
  except OSError:
    return False


def peak_rss_mib() -> float:
  """The process's peak RSS since it started (``getrusage``; Linux reports KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
