"""Another process holding a run folder (trainer/run_lock.py), for the tests of the lock."""

import contextlib
import os
import select
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = ('import sys, time\n'
          'from trainer import run_lock\n'
          'with run_lock.hold(sys.argv[1]):\n'
          '  print("held", flush=True)\n'
          '  time.sleep(float(sys.argv[2]))\n')


def hold_once(run_dir: str) -> subprocess.CompletedProcess:
  """Another process takes the folder and lets it go at once."""
  return subprocess.run([sys.executable, '-c', SCRIPT, run_dir, '0'], cwd=REPO,
                        capture_output=True, text=True, timeout=120)


@contextlib.contextmanager
def start(run_dir: str, seconds: float = 600):
  """Yields a process that holds `run_dir` (for `seconds`), killed on exit."""
  proc = subprocess.Popen([sys.executable, '-c', SCRIPT, run_dir, str(seconds)], cwd=REPO,
                          text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  try:
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    line = proc.stdout.readline() if ready else ''
    if line.strip() != 'held':
      proc.kill()
      raise AssertionError(f'the holder did not start: {proc.stderr.read()[-2000:]}')
    yield proc
  finally:
    proc.kill()
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
