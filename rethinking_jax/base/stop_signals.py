"""SIGTERM, SIGINT and SIGHUP as a request to stop at the next point where a long job can save
its progress (a training run's evaluation point, a kernel job's filter block); one place for
it, so every long job stops, saves and resumes the same way."""

from __future__ import annotations

import signal

from absl import logging


class Interrupted(Exception):
  """The job stopped on SIGTERM/SIGINT/SIGHUP after saving its progress; rerun to resume."""


class StopSignals:
  """Turns SIGTERM/SIGINT/SIGHUP into a request to stop at the next save point.

  A second Ctrl-C stops the process at once, even inside a long compiled chunk (Python runs
  signal handlers only between bytecodes, so it goes back to the operating system's default
  action): no traceback, and the job resumes from its last save (written atomically).
  """

  def __init__(self, wait=lambda: "at the next save point"):
    self.received: str | None = None
    self._previous = {}
    self._wait = wait  # () -> where and when the job will stop

  def __enter__(self):
    # SIGHUP: the terminal closed or the ssh session dropped; a run outlives it as on SIGTERM.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread: no signal handling
        pass
    return self

  def _handle(self, signum, frame):
    self.received = signal.Signals(signum).name
    logging.warning("%s: stopping %s, with a checkpoint%s", self.received, self._wait(),
                    "; press Ctrl-C again to stop at once (the run then resumes from its "
                    "last checkpoint)" if signum == signal.SIGINT else "")
    if signum == signal.SIGINT:
      signal.signal(signal.SIGINT, signal.SIG_DFL)

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
