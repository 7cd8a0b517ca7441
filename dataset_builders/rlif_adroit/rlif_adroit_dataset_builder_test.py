"""TFDS builder test on dummy_data/ (pen): round 0 demonstrations, round 1 takeovers."""

import numpy as np
import tensorflow_datasets as tfds

from dataset_builders.rlif_adroit import rlif_adroit_dataset_builder


class RlifAdroitTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = rlif_adroit_dataset_builder.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ['pen']
  SPLITS = {'round_0': 2, 'round_1': 2}  # The broken line is dead-lettered, not an episode.
  SKIP_CHECKSUMS = True

  def test_rewards_follow_the_rlif_rule(self):
    builder = self.DATASET_CLASS(config='pen', data_dir=self.tmp_dir)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=self.dummy_data))
    for episode in tfds.as_numpy(builder.as_dataset(split='round_1')):
      steps = list(episode['steps'])
      np.testing.assert_array_equal([s['reward'] for s in steps], [-1, 0, 0, 0, 0, 0])
      np.testing.assert_array_equal([s['is_intervention'] for s in steps],
                                    [False, True, True, False, False, False])
    for episode in tfds.as_numpy(builder.as_dataset(split='round_0')):
      assert not any(s['reward'] for s in episode['steps'])

  def test_the_trainer_reads_the_build_by_name_and_config(self):
    """`tfds build --config=pen` writes DIR/rlif_adroit/pen/<version>; the trainer takes that
    dataset as `rlif_adroit/pen`, TFDS's name/config form."""
    from trainer import rounds_data
    builder = self.DATASET_CLASS(config='pen', data_dir=self.tmp_dir)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=self.dummy_data))
    data = rounds_data.RlifDataset(self.tmp_dir, 'rlif_adroit/pen')
    assert data.rounds() == [0, 1]
    round_1 = data.load_round(1)
    assert round_1.episodes == 2
    assert (round_1.transitions['reward'] == -1).sum() == 2


if __name__ == '__main__':
  tfds.testing.test_main()
