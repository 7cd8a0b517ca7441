"""Jobs appending to one dataset at the same moment, as real processes: nothing is lost."""

import json
import os
import subprocess
import sys
import time

import pytest

from pipeline import rounds

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Imports first, then wait for the start file: every process reaches its commit at about the
# same moment.
_JOB = r'''
import json, os, sys, time
from pipeline import round_job
from pipeline import rounds
inputs, out, round_index, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
while not os.path.exists(start):
  time.sleep(0.005)
try:
  result = round_job.run_round([os.path.join(inputs, '*')], out, 'ds', round_index,
                               runner='plain')
  print(json.dumps({'status': result.status,
                    'written': result.report['episodes_written']}))
except rounds.RoundConflict as e:
  print(json.dumps({'conflict': str(e)}))
'''


def _run_together(jobs, start):
  """Starts one process per (inputs, out, round), releases them at once, returns their JSON."""
  procs = [subprocess.Popen([sys.executable, '-c', _JOB, inputs, out, str(r), start], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for inputs, out, r in jobs]
  time.sleep(8)  # let them import TensorFlow
  open(start, 'w').close()
  results = []
  for proc in procs:
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    results.append(json.loads(stdout.strip().splitlines()[-1]))
  return results


def _rounds(out):
  return sorted(rounds.committed_rounds(rounds.DatasetLayout(out, 'ds')))


@pytest.mark.parametrize('attempt', range(3))
def test_different_rounds_appended_at_once_all_land(raw_logs, tmp_path, attempt):
  out = str(tmp_path / 'out')
  from pipeline import round_job
  round_job.run_round([os.path.join(raw_logs('r0', 0), '*')], out, 'ds', 0, runner='plain')
  jobs = [(raw_logs(f'r{r}', 10 * attempt + r, num_streamed=0, num_npz=1 + r), out, r)
          for r in (1, 2, 3)]
  results = _run_together(jobs, str(tmp_path / 'start'))
  assert [r['status'] for r in results] == ['new'] * 3
  assert _rounds(out) == [0, 1, 2, 3]  # none of the three vanished
  import tensorflow_datasets as tfds
  builder = tfds.builder_from_directory(rounds.DatasetLayout(out, 'ds').version_dir)
  for r in (1, 2, 3):
    assert builder.info.splits[f'round_{r}'].num_examples == 1 + r
    assert len(list(builder.as_dataset(split=f'round_{r}'))) == 1 + r


def test_the_same_round_from_two_jobs_lands_once_and_the_other_is_told_why(raw_logs, tmp_path):
  out = str(tmp_path / 'out')
  from pipeline import round_job
  round_job.run_round([os.path.join(raw_logs('r0', 0), '*')], out, 'ds', 0, runner='plain')
  a = raw_logs('a', 1, num_streamed=0, num_npz=2)
  b = raw_logs('b', 2, num_streamed=0, num_npz=3)
  results = _run_together([(a, out, 1), (b, out, 1)], str(tmp_path / 'start'))
  landed = [r for r in results if 'status' in r]
  refused = [r for r in results if 'conflict' in r]
  assert len(landed) == 1 and len(refused) == 1, results
  assert 'round_1' in refused[0]['conflict'] and 'different input' in refused[0]['conflict']
  assert _rounds(out) == [0, 1]
  manifest = rounds.read_manifest(rounds.DatasetLayout(out, 'ds'), 1)
  assert manifest['report']['episodes_written'] == landed[0]['written']
  # Nothing of the refused job is left behind in the dataset.
  staging = os.path.join(rounds.DatasetLayout(out, 'ds').version_dir, '.staging')
  assert not os.path.exists(staging) or os.listdir(staging) == []
