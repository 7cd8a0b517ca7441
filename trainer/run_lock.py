"""One process at a time per run folder.

Two processes training into one run folder would interleave their checkpoints, exports and
summaries, and neither would notice. `hold(run_dir)` takes an exclusive `fcntl.flock` on
RUN_DIR/.run.lock for as long as its `with` block runs; a second process asking for the same
folder gets `RunInUse` at once, naming the holder's pid and host and when it started. The
kernel releases the lock when the holder exits, kill -9 included, so a crashed run never
leaves a stale lock behind. A `hold` nested inside another on the same folder in the same
thread (the CLI around the loop's own) passes through; another thread of the holding process is
refused like another process. A hold that had to create the folder removes it again if nothing
but the lock file is in it when the hold ends (a job that failed before writing anything, e.g.
on a dataset it could not read, leaves no empty run folder behind).

Local folders only: a `tf.io.gfile` URL (gs://...) has no flock, and its run is not locked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import threading
import time
from typing import Iterator

LOCK_FILE = '.run.lock'


class RunInUse(RuntimeError):
  """Another process (or thread) holds the run folder; `holder` says which."""

  def __init__(self, run_dir: str, holder: str):
    super().__init__(
        f'{run_dir} is in use by another process ({holder}); two processes writing one run '
        'folder would mix their checkpoints and exports: wait for it to finish, or give this '
        'job another run folder')
    self.run_dir, self.holder = run_dir, holder


@dataclasses.dataclass
class _Held:
  fd: int
  thread: int
  created: bool  # the outermost hold made the folder
  depth: int = 1


_held: dict[str, _Held] = {}  # realpath of a folder this process holds -> its lock
_registry = threading.Lock()


@contextlib.contextmanager
def hold(run_dir: str) -> Iterator[None]:
  """Holds `run_dir` for this block; raises `RunInUse` at once if another holds it."""
  if '://' in run_dir:
    yield
    return
  created = not os.path.isdir(run_dir)
  os.makedirs(run_dir, exist_ok=True)
  key = os.path.realpath(run_dir)
  with _registry:
    held = _held.get(key)
    if held is not None:
      if held.thread != threading.get_ident():
        raise RunInUse(run_dir, f'pid {os.getpid()}, another thread of this process')
      held.depth += 1
    else:
      _held[key] = _Held(_lock(run_dir), threading.get_ident(), created)
  try:
    yield
  finally:
    with _registry:
      held = _held[key]
      held.depth -= 1
      if not held.depth:
        del _held[key]
        if held.created and os.listdir(run_dir) == [LOCK_FILE]:
          _remove_unused(run_dir)  # still under the flock: nobody else can be using it
        os.close(held.fd)  # releases the flock


def _remove_unused(run_dir: str) -> None:
  """Removes a folder this hold created that holds only its lock file."""
  try:
    os.remove(os.path.join(run_dir, LOCK_FILE))
    os.rmdir(run_dir)
  except OSError:  # something appeared meanwhile: keep the folder
    pass


def _lock(run_dir: str) -> int:
  """The flocked descriptor of RUN_DIR/.run.lock, its content naming this process."""
  import fcntl
  try:
    fd = os.open(os.path.join(run_dir, LOCK_FILE), os.O_CREAT | os.O_RDWR, 0o644)
  except FileNotFoundError:  # a failed job's hold removed the folder since our makedirs
    os.makedirs(run_dir, exist_ok=True)
    fd = os.open(os.path.join(run_dir, LOCK_FILE), os.O_CREAT | os.O_RDWR, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    holder = os.pread(fd, 512, 0).decode(errors='replace').strip() or 'holder unknown'
    os.close(fd)
    raise RunInUse(run_dir, holder) from None
  except BaseException:
    os.close(fd)
    raise
  os.ftruncate(fd, 0)
  os.pwrite(fd, (f'pid {os.getpid()} on {socket.gethostname()}, since '
                 f'{time.strftime("%Y-%m-%d %H:%M:%S %Z")}').encode(), 0)
  return fd
