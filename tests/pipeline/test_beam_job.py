"""The round job on real Beam runners, read back with TFDS."""

import glob
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from pipeline import raw_format
from pipeline import relabel as rl
from pipeline import round_job
from pipeline import schema as sc


def expected_rewards(inputs):
  """{episode_id: rewards of its transitions} computed from the raw files by the rule."""
  result = {}
  for path in glob.glob(os.path.join(inputs, '*.npz')):
    with open(path, 'rb') as f:
      ep = raw_format.parse_npz_episode(f.read(), path)
    result[ep.episode_id] = rl.relabel(ep)[0].steps[sc.REWARD][:-1]
  return result


def by_id(version_dir, split):
  builder = tfds.builder_from_directory(version_dir)
  return {e[sc.EPISODE_METADATA][sc.EPISODE_ID].decode(): e
          for e in tfds.as_numpy(builder.as_dataset(split=split))}


def steps_of(episode):
  return {k: np.stack([s[k] for s in episode[sc.STEPS]]) for k in (sc.REWARD, sc.IS_LAST,
                                                                     sc.IS_INTERVENTION)}


def test_two_rounds_on_the_default_direct_runner(raw_logs, tmp_path):
  """Embedded default: DirectRunner with 2 worker processes."""
  out = str(tmp_path / 'out')
  demos = raw_logs('r0', 0, num_npz=3, num_streamed=0, demos=True)
  takeovers = raw_logs('r1', 1)
  r0 = round_job.run_round([os.path.join(demos, '*')], out, 'rlif_test', 0)
  r1 = round_job.run_round([os.path.join(takeovers, '*.npz'),
                            os.path.join(takeovers, '*.jsonl*')], out, 'rlif_test', 1)
  assert (r0.report['episodes_written'], r1.report['episodes_written']) == (3, 7)
  episodes = by_id(r1.version_dir, 'round_0+round_1')
  assert len(episodes) == 10
  for episode_id in ('n0_0', 'n0_1', 'n0_2'):  # Demonstrations: all-zero rewards.
    assert not steps_of(episodes[episode_id])[sc.REWARD].any()
  for episode_id, rewards in expected_rewards(takeovers).items():
    np.testing.assert_array_equal(steps_of(episodes[episode_id])[sc.REWARD][:-1], rewards)
  streamed = steps_of(episodes['s1_2'])  # Assembled from two shuffled files.
  assert streamed[sc.REWARD].tolist().count(-1) == 1 and streamed[sc.REWARD][4] == -1
  assert streamed[sc.IS_INTERVENTION][5:9].all() and streamed[sc.IS_LAST][-1]
  metadata = episodes['s1_2'][sc.EPISODE_METADATA]
  assert metadata[sc.ROUND] == 1 and metadata[sc.REWARD_RULE] == b'rlif'
  assert metadata[sc.REWARD_RULE_VERSION] == rl.RULE_VERSION
  assert metadata[sc.NUM_TAKEOVERS] == 1 and metadata[sc.HAS_POLICY_ACTION]
  assert metadata[sc.SOURCE] == b'fleet1_a.jsonl,fleet1_b.jsonl.gz'  # Path-free.


def test_dask_runner_on_a_local_two_worker_cluster(raw_logs, tmp_path):
  distributed = pytest.importorskip('distributed')
  inputs = raw_logs('r1', 1)
  plain = round_job.run_round([os.path.join(inputs, '*')], str(tmp_path / 'plain'), 'ds', 0,
                              runner='plain')
  with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                dashboard_address=None) as cluster:
    result = round_job.run_round(
        [os.path.join(inputs, '*')], str(tmp_path / 'dask'), 'ds', 0,
        beam_options=['--runner=apache_beam.runners.dask.dask_runner.DaskRunner',
                      f'--dask_client_address={cluster.scheduler_address}'])
  assert result.report == plain.report
  a, b = by_id(plain.version_dir, 'round_0'), by_id(result.version_dir, 'round_0')
  assert sorted(a) == sorted(b)
  for episode_id in a:
    for key, value in steps_of(a[episode_id]).items():
      np.testing.assert_array_equal(steps_of(b[episode_id])[key], value)
