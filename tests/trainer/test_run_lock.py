"""One process per run folder, checked with real processes: the holder is named, the lock dies
with its process, and the trainer's CLI and loop refuse a folder in use before writing anything
into it (the simulated loop's refusal: tests/sim/test_loop.py)."""

import os
import re
import signal
import subprocess
import sys
import threading

import pytest

from tests import lock_holder
from trainer import run_lock
from trainer import train_loop


def test_a_second_process_is_refused_with_the_holders_pid(held):
  run_dir, proc = held
  with pytest.raises(run_lock.RunInUse, match=re.escape(
      f'{run_dir} is in use by another process (pid {proc.pid} on ')) as refused:
    with run_lock.hold(run_dir):
      pass
  assert refused.value.holder.startswith(f'pid {proc.pid} on ')


def test_the_lock_dies_with_its_process_even_under_kill_9(held):
  run_dir, proc = held
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  with run_lock.hold(run_dir):
    assert f'pid {os.getpid()} ' in open(os.path.join(run_dir, run_lock.LOCK_FILE)).read()


def test_nested_holds_pass_another_thread_is_refused_and_the_outer_one_releases(tmp_path):
  run_dir = str(tmp_path / 'run')
  with run_lock.hold(run_dir):
    with run_lock.hold(os.path.join(run_dir, '.')):  # the same folder, spelled differently
      pass
    refused = []

    def other_thread():
      try:
        with run_lock.hold(run_dir):
          pass
      except run_lock.RunInUse as e:
        refused.append(e.holder)
    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert refused == [f'pid {os.getpid()}, another thread of this process']
    still_held = lock_holder.hold_once(run_dir)  # the inner exit did not release it
    assert still_held.returncode == 1 and 'RunInUse' in still_held.stderr
  released = lock_holder.hold_once(run_dir)
  assert released.returncode == 0 and released.stdout.strip() == 'held'


def test_a_hold_that_wrote_nothing_removes_only_the_folder_it_created(tmp_path):
  created = str(tmp_path / 'new' / 'run')
  with run_lock.hold(created):
    assert os.listdir(created) == [run_lock.LOCK_FILE]
  assert not os.path.exists(created) and os.path.isdir(tmp_path / 'new')  # parents stay
  used = str(tmp_path / 'used')
  with run_lock.hold(used):
    open(os.path.join(used, 'checkpoint'), 'w').close()
  assert sorted(os.listdir(used)) == [run_lock.LOCK_FILE, 'checkpoint']
  existing = tmp_path / 'existing'
  existing.mkdir()
  with run_lock.hold(str(existing)):
    pass
  assert os.listdir(existing) == [run_lock.LOCK_FILE]  # someone else's folder is kept


def test_a_lock_file_removed_between_open_and_flock_is_not_taken_as_the_lock(
    tmp_path, monkeypatch):
  """Another process's hold may remove its unused folder between our open and our flock: the
  flock then holds a file no path leads to. The hold takes a fresh lock file instead."""
  run_dir = str(tmp_path / 'run')
  real_open, opened = os.open, []

  def open_then_lose_the_file(path, *args):
    fd = real_open(path, *args)
    if not opened:  # the other hold's cleanup, right after our first open
      os.remove(path)
      os.rmdir(os.path.dirname(path))
    opened.append(fd)
    return fd

  monkeypatch.setattr(run_lock.os, 'open', open_then_lose_the_file)
  with run_lock.hold(run_dir):
    lock = os.path.join(run_dir, run_lock.LOCK_FILE)
    assert len(opened) == 2 and os.path.samestat(os.fstat(opened[1]), os.stat(lock))
    monkeypatch.undo()
    refused = lock_holder.hold_once(run_dir)  # the lock at the path is held
    assert refused.returncode == 1 and 'RunInUse' in refused.stderr
  assert not os.path.exists(run_dir)  # the hold made it again, so it removes it


def test_trainer_cli_on_a_missing_dataset_leaves_no_run_folder(tmp_path):
  run_dir = tmp_path / 'runs' / 'ds' / 'rlif'
  out = subprocess.run([sys.executable, '-m', 'trainer.main', '--dataset=ds',
                        f'--data_dir={tmp_path / "data"}', f'--run_dir={run_dir}',
                        '--num_steps=10', '--progress=false'], cwd=lock_holder.REPO,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 2, out.stderr[-2000:]
  assert out.stderr.startswith('error: ') and 'ds' in out.stderr, out.stderr[-2000:]
  assert not run_dir.exists()


def test_trainer_cli_refuses_a_folder_in_use_before_writing_into_it(held, raw_logs, tmp_path):
  from pipeline import round_job
  run_dir, proc = held
  data_dir = str(tmp_path / 'data')
  round_job.run_round([os.path.join(raw_logs('in0', 0, demos=True), '*')], data_dir, 'ds', 0,
                      runner='plain')
  out = subprocess.run([sys.executable, '-m', 'trainer.main', '--dataset=ds',
                        f'--data_dir={data_dir}', f'--run_dir={run_dir}', '--num_steps=10',
                        '--progress=false'], cwd=lock_holder.REPO, capture_output=True,
                       text=True, timeout=300)
  assert out.returncode == 2, out.stderr[-2000:]
  assert f'error: {run_dir} is in use by another process (pid {proc.pid} on ' in out.stderr
  assert os.listdir(run_dir) == [run_lock.LOCK_FILE]  # no checkpoints, summaries or exports


def test_a_loop_made_while_another_process_trains_sees_that_process_checkpoints(
    held, raw_logs, tmp_path):
  """A loop built while the folder was in use writes nothing, and when it runs later it resumes
  from what the other process left instead of training over it from step 0."""
  from tests.trainer.test_train_loop import TINY
  from tests.trainer.test_train_loop import write
  run_dir, proc = held
  write(raw_logs, str(tmp_path / 'data'), 0, demos=True)

  def make(messages):
    config = train_loop.LoopConfig(learner='rlpd', batch_size=16, progress=False,
                                   checkpoint_every=10, num_steps=10)
    return train_loop.TrainLoop(config, dict(TINY), str(tmp_path / 'data'), 'ds', run_dir,
                                log=messages.append)
  early_messages = []
  early = make(early_messages)
  with pytest.raises(run_lock.RunInUse, match=f'pid {proc.pid} '):
    early.run()
  assert os.listdir(run_dir) == [run_lock.LOCK_FILE]  # no checkpoints, no events file
  proc.kill()
  proc.wait()
  assert make([]).run()['step'] == 10  # the run the holder stood for
  exported = os.path.join(run_dir, 'policies', 'round_0', 'saved_model.pb')
  stamp = os.stat(exported).st_mtime_ns
  assert early.run()['step'] == 10
  assert any(m.startswith('resumed from ') and m.endswith(' at step 10')
             for m in early_messages), early_messages
  assert os.stat(exported).st_mtime_ns == stamp  # its export was not redone
