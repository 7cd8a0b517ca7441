"""TFDS builder test on dummy_data/ (pen): round 0 demonstrations, round 1 takeovers; and the
`pen_camera` config built from a round the simulator collected with a 64x64 camera."""

import json

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


def test_pen_camera_builds_from_a_simulated_camera_round(tmp_path):
  """`tfds build --config=pen_camera`: the frames and states the simulator logged reach the
  dataset as `camera` (Image) and `state`, and the trainer reads it as rlif_adroit/pen_camera."""
  from pipeline import schema as sc
  from sim import collector
  from sim import intervention as iv
  from sim import tasks
  from tests.sim import rendering
  from trainer import rounds_data
  rendering.skip_without_off_screen_rendering()
  rng = np.random.default_rng(0)

  class RandomExpert:
    action_dim = 24

    def act(self, obs, rng_):
      return rng.uniform(-1, 1, 24).astype(np.float32).astype(np.float64)

  manual = tmp_path / 'manual' / 'pen_camera'
  length = 6
  collector.expert_demonstrations('pen', RandomExpert(), 2, str(manual / 'round_0'), seed=0,
                                  episode_length=length, camera=(64, 64))
  summary = collector.collect_round(
      'pen', lambda obs: np.zeros(24), RandomExpert(),
      iv.make_model('random', seed=1, config=iv.RandomConfig(expert_fraction=0.5)), 2,
      str(manual / 'round_1'), seed=0, round_index=1, episode_length=length, camera=(64, 64))

  data_dir = str(tmp_path / 'tfds')
  builder = rlif_adroit_dataset_builder.Builder(config='pen_camera', data_dir=data_dir)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(tmp_path / 'manual')))
  observation = builder.info.features[sc.STEPS].feature[sc.OBSERVATION]
  assert isinstance(observation['camera'], tfds.features.Image)
  assert observation['camera'].shape == (64, 64, 3)
  for path in summary['paths']:
    episode_id = json.loads(str(np.load(path)['metadata']))['episode_id']
    logged = np.load(path)
    stored = [e for e in tfds.as_numpy(builder.as_dataset(split='round_1'))
              if e[sc.EPISODE_METADATA][sc.EPISODE_ID].decode() == episode_id]
    assert len(stored) == 1, episode_id
    steps = list(stored[0][sc.STEPS])
    np.testing.assert_array_equal(np.stack([s[sc.OBSERVATION]['camera'] for s in steps]),
                                  logged['observations/camera'])
    np.testing.assert_array_equal(np.stack([s[sc.OBSERVATION]['state'] for s in steps]),
                                  logged['observations/state'].astype(np.float32))

  data = rounds_data.RlifDataset(data_dir, 'rlif_adroit/pen_camera')
  assert data.rounds() == [0, 1]
  assert data.observation_spec == builder.builder_config.observation_spec
  assert data.load_round(1).transitions['observation']['camera'].shape == (2 * length, 64, 64, 3)


if __name__ == '__main__':
  tfds.testing.test_main()
