"""The datasets are RLDS: RLDS's own transformations read them and agree with the pipeline's
report and with the trainer's transitions."""

import os

import numpy as np
import rlds
import tensorflow_datasets as tfds

from pipeline import round_job
from pipeline import schema as sc
from trainer import pairing


def test_rlds_transformations_agree_with_the_report_and_the_trainer(raw_logs, tmp_path):
  result = round_job.run_round([os.path.join(raw_logs('r1', 1), '*')], str(tmp_path / 'out'),
                               'ds', 1, runner='plain')
  report = result.report
  episodes = tfds.builder_from_directory(result.version_dir).as_dataset(split='round_1')
  # Sum of rewards over every step of every episode: one -1 per takeover.
  total = rlds.transformations.sum_nested_steps(episodes, lambda step: step[sc.REWARD])
  assert float(total) == -report['negative_rewards'] < 0
  lengths, transitions = [], 0
  for episode in episodes:
    steps = episode[sc.STEPS]
    length = int(rlds.transformations.episode_length(steps))
    lengths.append(length)
    # RLDS windows of two consecutive steps are the trainer's transitions (SAR alignment: the
    # final step only closes the last window).
    pairs = list(rlds.transformations.batch(steps, size=2, shift=1, drop_remainder=True))
    arrays = {k: np.stack([s[k].numpy() for s in steps]) for k in
              (sc.OBSERVATION, sc.ACTION, sc.REWARD, sc.DISCOUNT, sc.IS_TERMINAL,
               sc.IS_INTERVENTION)}
    ours = pairing.episode_transitions(arrays)
    assert len(pairs) == pairing.size(ours) == length - 1
    np.testing.assert_array_equal(np.stack([p[sc.OBSERVATION][0] for p in pairs]),
                                  ours['observation'])
    np.testing.assert_array_equal(np.stack([p[sc.OBSERVATION][1] for p in pairs]),
                                  ours['next_observation'])
    np.testing.assert_array_equal(np.stack([p[sc.REWARD][0] for p in pairs]), ours['reward'])
    transitions += length - 1
  assert transitions == report['transitions']
  assert sum(lengths) == report['rlds_steps']
  assert len(lengths) == report['rlds_episodes_written'] == 7
