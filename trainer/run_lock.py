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

`exclusive(path)` is the waiting kind, for work that one process does while others queue for it
(a grid's report, a shared reference agent): an exclusive flock on the file `path`, taken as soon
as its holder lets go.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import threading
import time
from typing import Callable, Iterator, Optional

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
  created: bool  # the outermost hold made the folder
  thread: int
  depth: int = 1


_held: dict[str, _Held] = {}  # realpath of a folder this process holds -> its lock
_registry = threading.Lock()


@contextlib.contextmanager
def hold(run_dir: str) -> Iterator[None]:
  """Holds `run_dir` for this block; raises `RunInUse` at once if another holds it."""
  if '://' in run_dir:
    yield
    return
  key = os.path.realpath(run_dir)
  with _registry:
    held = _held.get(key)
    if held is not None:
      if held.thread != threading.get_ident():
        raise RunInUse(run_dir, f'pid {os.getpid()}, another thread of this process')
      held.depth += 1
    else:
      _held[key] = _Held(*_lock(run_dir), threading.get_ident())
  try:
    yield
  finally:
    with _registry:
      held = _held[key]
      held.depth -= 1
      if not held.depth:
        del _held[key]
        try:
          if held.created:
            _remove_unused(key)  # still under the flock: nobody else can be using it
        finally:
          os.close(held.fd)  # releases the flock


def _remove_unused(run_dir: str) -> None:
  """Removes a folder this hold created if it holds only its lock file."""
  try:
    if os.listdir(run_dir) == [LOCK_FILE]:
      os.remove(os.path.join(run_dir, LOCK_FILE))
      os.rmdir(run_dir)
  except OSError:  # gone, or something appeared meanwhile: leave it
    pass


def _lock(run_dir: str) -> tuple[int, bool]:
  """(the flocked descriptor of RUN_DIR/.run.lock, its content naming this process; whether
  this call made the folder). A lock taken on a lock file that another process's hold removed
  meanwhile (with the folder it had made, between our open and our flock) is no lock: the file
  at the path is checked to be the one locked, and otherwise it starts again."""
  import fcntl
  path = os.path.join(run_dir, LOCK_FILE)
  made = False
  while True:
    if not os.path.isdir(run_dir):
      os.makedirs(run_dir, exist_ok=True)
      made = True
    try:
      fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    except FileNotFoundError:  # the folder was removed since: make it again
      continue
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 512, 0).decode(errors='replace').strip() or 'holder unknown'
      os.close(fd)
      raise RunInUse(run_dir, holder) from None
    except BaseException:
      os.close(fd)
      raise
    try:
      current = os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
      current = False
    if current:
      break
    os.close(fd)
  os.ftruncate(fd, 0)
  os.pwrite(fd, (f'pid {os.getpid()} on {socket.gethostname()}, since '
                 f'{time.strftime("%Y-%m-%d %H:%M:%S %Z")}').encode(), 0)
  return fd, made


@contextlib.contextmanager
def exclusive(path: str, on_wait: Optional[Callable[[], None]] = None) -> Iterator[None]:
  """Holds an exclusive flock on the file `path` (made if absent; its folder must exist) for the
  block, waiting as long as another process holds it; `on_wait` is called once before a wait.
  The kernel drops the lock when its holder exits, kill -9 included."""
  import fcntl
  fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      if on_wait is not None:
        on_wait()
      fcntl.flock(fd, fcntl.LOCK_EX)
    yield
  finally:
    os.close(fd)  # releases the flock
