"""`rlif_adroit`: RLIF-relabeled intervention rounds on the Adroit hand tasks, built with TFDS.

The relabeling is the pipeline's (pipeline/stages.py `relabeled_examples`); this builder only
maps TFDS's manual directory onto rounds:

  <manual_dir>/<config>/round_<N>/*.npz | *.jsonl | *.jsonl.gz   (raw log format v1)

Configs: the four tasks' state vectors (`pen`, `door`, `hammer`, `relocate`), and `pen_camera`:
pen with the state vector as `state` and one 64x64 RGB camera as `camera` (raw format v2, npz
only; what `sim.collector` logs with `camera=(64, 64)`), the layout the pixel learner trains on.

  tfds build dataset_builders/rlif_adroit --config=pen --manual_dir=DIR \
      [--beam_pipeline_options="runner=DirectRunner,direct_num_workers=2"]

Rejected input is written, with its reason, under
<download_dir>/rlif_rejected/<task>/round_<N>/rejected/.
For appending rounds to a dataset that is already published, use `python -m pipeline.main`,
which writes the same splits incrementally.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf
import tensorflow_datasets as tfds

from pipeline import relabel as rl
from pipeline import round_job
from pipeline import schema as sc
from pipeline import stages


@dataclasses.dataclass
class AdroitConfig(tfds.core.BuilderConfig):
  observation_dim: int = 0
  action_dim: int = 0
  env_id: str = ''
  camera: tuple = ()  # (height, width): the observation is {camera: uint8 image, state: vector}

  @property
  def observation_spec(self) -> sc.ObservationSpec:
    if not self.camera:
      return self.observation_dim
    return (sc.ObservationField('camera', (*self.camera, 3)),
            sc.ObservationField('state', (self.observation_dim,)))


def _config(task, env_id, observation_dim, action_dim, camera=(), name=None):
  config = AdroitConfig(name=name or task, observation_dim=observation_dim,
                        action_dim=action_dim, env_id=env_id, camera=tuple(camera))
  config.description = (f'{env_id}: observation '
                        f'{sc.describe_observation(config.observation_spec)}, '
                        f'action {action_dim}-D')
  return config


class Builder(tfds.core.GeneratorBasedBuilder):
  """RLIF intervention rounds for Adroit pen, door, hammer and relocate."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {
      '1.0.0': 'Initial release: reward rule rlif v1, takeover steps kept, one split per round.',
  }
  BUILDER_CONFIGS = [
      _config('pen', 'AdroitHandPen-v1', 45, 24),
      _config('door', 'AdroitHandDoor-v1', 39, 28),
      _config('hammer', 'AdroitHandHammer-v1', 46, 26),
      _config('relocate', 'AdroitHandRelocate-v1', 39, 30),
      _config('pen', 'AdroitHandPen-v1', 45, 24, camera=(64, 64), name='pen_camera'),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put raw intervention logs (format v1, see WORKSPACE.md of the rlif project) under
  `<manual_dir>/<task>/round_<N>/`, for example `manual_dir/pen/round_0/*.npz` (prior
  demonstrations) and `manual_dir/pen/round_1/*.jsonl.gz` (a round of policy rollouts with
  human takeovers). The simulator's collector (sim/collector.py) writes this layout.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=sc.make_features(self.builder_config.observation_spec,
                                  self.builder_config.action_dim),
        supervised_keys=None,
        homepage='https://arxiv.org/abs/2311.12996',
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    task_dir = os.path.join(dl_manager.manual_dir, self.builder_config.name)
    if not tf.io.gfile.isdir(task_dir):
      raise FileNotFoundError(f'no raw logs for task {self.builder_config.name!r}: expected '
                              f'{task_dir}/round_<N>/ ({self.MANUAL_DOWNLOAD_INSTRUCTIONS})')
    splits = {}
    for name in sorted(n.rstrip('/') for n in tf.io.gfile.listdir(task_dir)):
      try:
        round_index = sc.round_of_split(name)
      except ValueError:
        continue
      files = round_job.expand_inputs([os.path.join(task_dir, name, '*')])
      rejected = os.path.join(dl_manager.download_dir, 'rlif_rejected',
                              self.builder_config.name, name)
      job = stages.JobSpec(round_index=round_index,
                           dims=(self.builder_config.observation_spec,
                                 self.builder_config.action_dim),
                           takeover=rl.Takeover.KEEP.value, staging_dir=rejected)
      splits[name] = self._generate_examples(files, job)
    if not splits:
      raise FileNotFoundError(f'{task_dir} holds no round_<N>/ folder')
    return splits

  def _generate_examples(self, files, job):
    beam = tfds.core.lazy_imports.apache_beam
    from pipeline import beam_job

    def expand(pipeline):
      return (beam_job.read_episodes(pipeline, files, job)
              | 'Relabel' >> beam.FlatMap(stages.relabeled_examples, job)
              | 'DropStats' >> beam.Map(_key_and_example))
    return beam.ptransform_fn(expand)()


def _key_and_example(item):
  key, example, _ = item
  return key, example
