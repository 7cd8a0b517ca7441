"""Publishing a dataset version, and loading it with TFDS alone."""

import json
import os
import subprocess
import sys

from pipeline import publish
from pipeline import round_job


def test_published_dataset_loads_with_only_tfds(raw_logs, tmp_path):
  out = str(tmp_path / 'out')
  round_job.run_round([os.path.join(raw_logs('r0', 0), '*')], out, 'shared_ds', 0,
                      runner='plain')
  result = round_job.run_round([os.path.join(raw_logs('r1', 1), '*')], out, 'shared_ds', 1,
                               runner='plain')
  target = publish.publish(result.version_dir, str(tmp_path / 'bucket'))
  assert target == str(tmp_path / 'bucket' / 'shared_ds' / '1.0.0')
  card = open(os.path.join(target, 'CARD.md')).read()
  assert '| 1 | 7 | 140 | 20.0 | 0.200 | 7 | 4.0 | 7 | 0 | 0 | rlif v1, takeover=keep |' in card
  assert f'({publish.PLOT_NAME})' in card
  with open(os.path.join(target, publish.PLOT_NAME), 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  assert not os.path.exists(os.path.join(target, 'rejected'))
  script = (
      'import json, sys\n'
      'import tensorflow_datasets as tfds\n'
      f'ds = tfds.load("shared_ds", data_dir={str(tmp_path / "bucket")!r}, '
      'split="round_0+round_1")\n'
      'episodes = list(tfds.as_numpy(ds))\n'
      'rewards = sum(float(s["reward"]) for e in episodes for s in e["steps"])\n'
      "ours = [m for m in sys.modules if m.split('.')[0] in ('pipeline', 'trainer', 'configs')]\n"
      'print(json.dumps([len(episodes), rewards, ours]))\n')
  out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                       cwd=str(tmp_path), timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  assert json.loads(out.stdout.strip().splitlines()[-1]) == [14, -14.0, []]


def test_publishing_again_copies_only_new_files(raw_logs, tmp_path, capsys):
  out = str(tmp_path / 'out')
  first = round_job.run_round([os.path.join(raw_logs('r0', 0), '*')], out, 'ds', 0,
                              runner='plain')
  publish.publish(first.version_dir, str(tmp_path / 'bucket'))
  round_job.run_round([os.path.join(raw_logs('r1', 1), '*')], out, 'ds', 1, runner='plain')
  capsys.readouterr()
  publish.publish(first.version_dir, str(tmp_path / 'bucket'))
  # Round 1: its shard, manifest, summary, plus the metadata.
  assert 'published ds 1.0.0: 4 files copied' in capsys.readouterr().out
