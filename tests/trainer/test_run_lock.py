"""One process per run folder, checked with real processes: the holder is named, the lock dies
with its process, and the trainer's CLI and the simulated loop refuse a folder in use before
writing anything into it (the simulated loop's refusal: tests/sim/test_loop.py)."""

import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import HOLDER
from tests.conftest import REPO
from trainer import run_lock


def test_a_second_process_is_refused_with_the_holders_pid(held):
  run_dir, proc = held
  with pytest.raises(run_lock.RunInUse, match=rf'{run_dir} is in use by another process '
                                              rf'\(pid {proc.pid} on '):
    with run_lock.hold(run_dir):
      pass


def test_the_lock_dies_with_its_process_even_under_kill_9(held):
  run_dir, proc = held
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  with run_lock.hold(run_dir):
    assert f'pid {os.getpid()} ' in open(os.path.join(run_dir, run_lock.LOCK_FILE)).read()


def test_nested_holds_pass_and_the_outer_one_releases(tmp_path):
  run_dir = str(tmp_path / 'run')
  with run_lock.hold(run_dir):
    with run_lock.hold(os.path.join(run_dir, '.')):  # the same folder, spelled differently
      pass
    still_held = subprocess.run([sys.executable, '-c', HOLDER.replace('time.sleep(600)', ''),
                                 run_dir], cwd=REPO, capture_output=True, text=True)
    assert still_held.returncode == 1 and 'RunInUse' in still_held.stderr
  released = subprocess.run([sys.executable, '-c', HOLDER.replace('time.sleep(600)', ''),
                             run_dir], cwd=REPO, capture_output=True, text=True)
  assert released.returncode == 0 and released.stdout.strip() == 'held'


def test_trainer_cli_refuses_a_folder_in_use_before_writing_into_it(held, raw_logs, tmp_path):
  from pipeline import round_job
  run_dir, proc = held
  data_dir = str(tmp_path / 'data')
  round_job.run_round([os.path.join(raw_logs('in0', 0, demos=True), '*')], data_dir, 'ds', 0,
                      runner='plain')
  out = subprocess.run([sys.executable, '-m', 'trainer.main', '--dataset=ds',
                        f'--data_dir={data_dir}', f'--run_dir={run_dir}', '--num_steps=10',
                        '--progress=false'], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
  assert out.returncode == 2, out.stderr[-2000:]
  assert f'error: {run_dir} is in use by another process (pid {proc.pid} on ' in out.stderr
  assert os.listdir(run_dir) == [run_lock.LOCK_FILE]  # no checkpoints, summaries or exports


def test_a_train_loop_refuses_to_train_into_a_folder_in_use(held, raw_logs, tmp_path):
  from tests.trainer.test_train_loop import loop
  from tests.trainer.test_train_loop import write
  run_dir, proc = held
  write(raw_logs, str(tmp_path / 'data'), 0, demos=True)
  trainer = loop(tmp_path, num_steps=10)
  assert trainer.run_dir == run_dir
  with pytest.raises(run_lock.RunInUse, match=f'pid {proc.pid} '):
    trainer.run()
  assert not os.path.exists(os.path.join(run_dir, 'checkpoints'))
  assert trainer.step == 0
  proc.kill()
  proc.wait()
  assert trainer.run()['step'] == 10  # the same loop trains once the holder is gone
