"""One process at a time per run folder.

Two processes training into one run folder would interleave their checkpoints, exports and
summaries, and neither would notice. `hold(run_dir)` takes an exclusive `fcntl.flock` on
RUN_DIR/.run.lock for as long as its `with` block runs; a second process asking for the same
folder gets `RunInUse` at once, naming the holder's pid and host and when it started. The
kernel releases the lock when the holder exits, kill -9 included, so a crashed run never
leaves a stale lock behind. The lock belongs to the process: a `hold` nested inside another on
the same folder (the CLI around the loop's own) passes through.

Local folders only: a `tf.io.gfile` URL (gs://...) has no flock, and its run is not locked.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import Iterator

LOCK_FILE = '.run.lock'
_held: dict[str, int] = {}  # folders this process holds -> nesting depth


class RunInUse(RuntimeError):
  """Another process holds the run folder."""


@contextlib.contextmanager
def hold(run_dir: str) -> Iterator[None]:
  if '://' in run_dir:
    yield
    return
  import fcntl
  os.makedirs(run_dir, exist_ok=True)
  key = os.path.realpath(run_dir)
  if key in _held:
    _held[key] += 1
    try:
      yield
    finally:
      _held[key] -= 1
    return
  path = os.path.join(run_dir, LOCK_FILE)
  fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 512, 0).decode(errors='replace').strip() or 'unknown'
      raise RunInUse(
          f'{run_dir} is in use by another process ({holder}); two processes writing one '
          'run folder would mix their checkpoints and exports: wait for it to finish, or '
          'give this job another run folder') from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, (f'pid {os.getpid()} on {socket.gethostname()}, since '
                   f'{time.strftime("%Y-%m-%d %H:%M:%S %Z")}').encode(), 0)
    _held[key] = 1
    try:
      yield
    finally:
      del _held[key]
  finally:
    os.close(fd)  # releases the flock
