"""The embedded default of `python -m trainer.main`, end to end on a tiny budget."""

import json
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_quickstart_prepares_trains_evaluates_and_exports(tmp_path):
  data_dir, run_dir = tmp_path / 'data', tmp_path / 'run'
  command = [sys.executable, '-m', 'trainer.main', f'--data_dir={data_dir}',
             f'--run_dir={run_dir}', f'--manual_dir={tmp_path / "no_manual"}', '--simulate',
             '--num_demos=1', '--episodes_per_round=1', '--num_steps=10', '--eval_episodes=1',
             '--set=actor_warm_start=10', '--noprogress']
  out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert 'collecting 1 pen demonstrations with the project expert' in out.stdout
  # The README's lines, not the notices libraries print on every start (trainer/console.py).
  for noise in ('cpu_feature_guard', 'Gym has been unmaintained', 'reward functions were updated',
                'Sanitizing', 'SyntaxWarning', 'Encoding a StructuredValue'):
    assert noise not in out.stdout + out.stderr, noise
  # Round 1: a BC policy on round 0 acts, the expert takes over on ~30% of the steps.
  assert '[collection policy] exported policy after round 0' in out.stdout
  joined = re.search(r'round 1 joined \(intervention data\): 1 episodes, 200 transitions, '
                     r'intervention rate ([0-9.]+)', out.stdout)
  assert joined and 0.1 < float(joined.group(1)) < 0.6, out.stdout[-3000:]
  rewards = re.search(r'round 1 -> .*?(\d+) rewards of -1', out.stdout, re.S)
  assert rewards and int(rewards.group(1)) >= 1
  assert f'dataset:     {data_dir}/rlif_adroit/1.0.0' in out.stdout
  assert os.path.isdir(run_dir / 'policies' / 'round_1')
  with open(run_dir / 'evaluation.json') as f:
    evaluation = json.load(f)
  assert evaluation['episodes'] == 1 and evaluation['success_rate'] in (0.0, 1.0)
  assert len(os.listdir(data_dir / 'rlif_adroit_raw' / 'round_0')) == 1
  assert len([f for f in os.listdir(data_dir / 'rlif_adroit_raw' / 'round_1')
              if f.endswith('.npz')]) == 1
  # A second start finds the dataset and does not collect again.
  again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
  assert again.returncode == 0, again.stderr[-3000:]
  assert 'collecting' not in again.stdout


def test_run_dir_local_folders_become_absolute_urls_stay_as_given(tmp_path, monkeypatch):
  from trainer import main
  monkeypatch.chdir(tmp_path)
  assert main.resolve_run_dir(None, 'ds', 'rlif') == str(tmp_path / 'runs' / 'ds' / 'rlif')
  assert main.resolve_run_dir('out/r1', 'ds', 'rlif') == str(tmp_path / 'out' / 'r1')
  assert main.resolve_run_dir('gs://bucket/runs/r1', 'ds', 'rlif') == 'gs://bucket/runs/r1'
