"""Field names and the on-disk RLDS/TFDS schema of an RLIF dataset.

Every stage (pipeline, dataset builders, trainer) imports its names from here, so no stage
re-decides what a step means.

An episode is stored in RLDS SAR alignment: step t holds observation s_t, the executed action
a_t, and the reward r_t and discount d_t of the transition (s_t, a_t, s_t+1). The final step
(`is_last=True`) carries only the final observation; its action is zeros, its reward 0 and its
discount 0 when the episode ended in a true terminal state (1 otherwise): these three values are
placeholders and must not be used to form a transition.
"""

from __future__ import annotations

import dataclasses
from typing import Union

import numpy as np

# Step fields.
STEPS = 'steps'
OBSERVATION = 'observation'
ACTION = 'action'
POLICY_ACTION = 'policy_action'
EXPERT_ACTION = 'expert_action'
REWARD = 'reward'
DISCOUNT = 'discount'
IS_FIRST = 'is_first'
IS_LAST = 'is_last'
IS_TERMINAL = 'is_terminal'
IS_INTERVENTION = 'is_intervention'

# Episode metadata fields.
EPISODE_METADATA = 'episode_metadata'
EPISODE_ID = 'episode_id'
ROUND = 'round'
REWARD_RULE = 'reward_rule'
REWARD_RULE_VERSION = 'reward_rule_version'
TAKEOVER_MODE = 'takeover_mode'
NUM_INTERVENTION_STEPS = 'num_intervention_steps'
NUM_TAKEOVERS = 'num_takeovers'
HAS_POLICY_ACTION = 'has_policy_action'
HAS_EXPERT_ACTION = 'has_expert_action'
SOURCE = 'source'
SEGMENT = 'segment'
EXTRA_METADATA_JSON = 'extra_metadata_json'

SPLIT_PREFIX = 'round_'


def split_name(round_index: int) -> str:
  """The TFDS split that holds intervention round `round_index`."""
  return f'{SPLIT_PREFIX}{int(round_index)}'


def round_of_split(split: str) -> int:
  """Inverse of `split_name`; raises ValueError for a split that is not a round."""
  if not split.startswith(SPLIT_PREFIX) or not split[len(SPLIT_PREFIX):].isdigit():
    raise ValueError(f'{split!r} is not a round split (expected {SPLIT_PREFIX}<N>)')
  return int(split[len(SPLIT_PREFIX):])


@dataclasses.dataclass(frozen=True, order=True)
class ObservationField:
  """One named field of a dict observation (raw format v2), by its shape at one step: (D,) is a
  float32 vector, (H, W, C) a uint8 image (`is_image_shape` decides)."""
  name: str
  shape: tuple[int, ...]

  @property
  def is_image(self) -> bool:
    return is_image_shape(self.shape)

  def describe(self) -> str:
    if self.is_image:
      return f'{self.name}: {"x".join(map(str, self.shape))} uint8 image'
    return f'{self.name}: {self.shape[0]}-D float32'


# What a dataset's steps hold as `observation`: an int D for one flat float32 vector (raw format
# v1; stored as a Tensor), or the sorted fields of a dict observation (v2; a FeaturesDict).
ObservationSpec = Union[int, tuple[ObservationField, ...]]
# The field a dict observation's state vector goes by, wherever the project makes such an
# observation (the simulator's camera episodes, LeRobot datasets read with their cameras).
STATE_FIELD = 'state'

IMAGE_CHANNELS = (1, 3, 4)  # What PNG (tfds.features.Image) stores.


def is_image_shape(step_shape: tuple[int, ...]) -> bool:
  """The one rule for what a dict observation field is: rank 3 at one step ([H, W, C]) is an
  image (it must be uint8, C in IMAGE_CHANNELS); rank 1 ([D]) a float vector; others neither."""
  return len(step_shape) == 3


def observation_spec(observations) -> ObservationSpec:
  """The spec of one episode's (validated) observations: D for a [T+1, D] array, the sorted
  fields (per-step shapes) for a dict of [T+1, ...] arrays."""
  if isinstance(observations, dict):
    return tuple(sorted(ObservationField(name, tuple(int(n) for n in value.shape[1:]))
                        for name, value in observations.items()))
  return int(observations.shape[1])


def describe_observation(spec: ObservationSpec) -> str:
  """'45-D' or '{camera: 16x16x3 uint8 image, state: 5-D float32}', for messages and cards."""
  if isinstance(spec, tuple):
    return '{' + ', '.join(f.describe() for f in spec) + '}'
  return f'{spec}-D'


def observation_spec_to_json(spec: ObservationSpec):
  """JSON form for reports: D, or [{'name', 'shape', 'kind'}] per field."""
  if isinstance(spec, tuple):
    return [{'name': f.name, 'shape': list(f.shape), 'kind': 'image' if f.is_image else 'vector'}
            for f in spec]
  return int(spec)


def _observation_feature(spec: ObservationSpec):
  import tensorflow_datasets as tfds
  if not isinstance(spec, tuple):
    return tfds.features.Tensor(shape=(spec,), dtype=np.float32)
  return tfds.features.FeaturesDict({
      f.name: (tfds.features.Image(shape=f.shape, dtype=np.uint8, encoding_format='png')
               if f.is_image else tfds.features.Tensor(shape=f.shape, dtype=np.float32))
      for f in spec})


def make_features(observation: ObservationSpec, action_dim: int, expert_action: bool = True):
  """The TFDS FeaturesDict of an RLIF dataset with the given observation spec and action
  dimension. A flat observation (an int D) is a float32 Tensor [D]; a dict observation a
  FeaturesDict of float32 Tensors (vectors) and PNG-encoded `tfds.features.Image`s, the layout
  Open X-Embodiment datasets use.

  `policy_action` is always part of the schema so that rounds with and without a logged
  policy action combine; where it was not logged it holds NaN and the episode's
  `has_policy_action` is False. `expert_action` (the expert's label, DAgger) likewise, with
  `has_expert_action`; `expert_action=False` gives the schema of datasets created before that
  field existed, which keep it when rounds are appended.
  """
  import tensorflow_datasets as tfds  # Heavy import kept out of the pure modules' import path.

  f32, boolean, i32 = np.float32, np.bool_, np.int32
  return tfds.features.FeaturesDict({
      STEPS: tfds.features.Dataset({
          OBSERVATION: _observation_feature(observation),
          ACTION: tfds.features.Tensor(shape=(action_dim,), dtype=f32),
          POLICY_ACTION: tfds.features.Tensor(shape=(action_dim,), dtype=f32),
          **({EXPERT_ACTION: tfds.features.Tensor(shape=(action_dim,), dtype=f32)}
             if expert_action else {}),
          REWARD: tfds.features.Scalar(dtype=f32),
          DISCOUNT: tfds.features.Scalar(dtype=f32),
          IS_FIRST: tfds.features.Scalar(dtype=boolean),
          IS_LAST: tfds.features.Scalar(dtype=boolean),
          IS_TERMINAL: tfds.features.Scalar(dtype=boolean),
          IS_INTERVENTION: tfds.features.Scalar(dtype=boolean),
      }),
      EPISODE_METADATA: {
          EPISODE_ID: tfds.features.Text(),
          SEGMENT: tfds.features.Scalar(dtype=i32),
          ROUND: tfds.features.Scalar(dtype=i32),
          REWARD_RULE: tfds.features.Text(),
          REWARD_RULE_VERSION: tfds.features.Scalar(dtype=i32),
          TAKEOVER_MODE: tfds.features.Text(),
          NUM_INTERVENTION_STEPS: tfds.features.Scalar(dtype=i32),
          NUM_TAKEOVERS: tfds.features.Scalar(dtype=i32),
          HAS_POLICY_ACTION: tfds.features.Scalar(dtype=boolean),
          **({HAS_EXPERT_ACTION: tfds.features.Scalar(dtype=boolean)} if expert_action else {}),
          SOURCE: tfds.features.Text(),
          EXTRA_METADATA_JSON: tfds.features.Text(),
      },
  })


def has_expert_action(features) -> bool:
  """Whether a dataset's steps have `expert_action` (see `make_features`)."""
  return EXPERT_ACTION in features[STEPS].feature


def has_dict_observation(features) -> bool:
  """Whether a dataset's steps hold `observation` as a dict (raw format v2) rather than one
  flat vector."""
  import tensorflow_datasets as tfds
  return isinstance(features[STEPS].feature[OBSERVATION], tfds.features.FeaturesDict)


def dims_of_features(features) -> tuple[ObservationSpec, int]:
  """(observation spec, action_dim) of a FeaturesDict made by `make_features`: the spec is the
  observation dimension D for flat observations, the sorted `ObservationField`s for dicts."""
  steps = features[STEPS].feature
  observation = steps[OBSERVATION]
  if has_dict_observation(features):
    spec = tuple(sorted(ObservationField(name, tuple(int(n) for n in feature.shape))
                        for name, feature in observation.items()))
    return spec, int(steps[ACTION].shape[0])
  return int(observation.shape[0]), int(steps[ACTION].shape[0])
