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


def make_features(observation_dim: int, action_dim: int, expert_action: bool = True):
  """The TFDS FeaturesDict of an RLIF dataset with the given dimensions.

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
          OBSERVATION: tfds.features.Tensor(shape=(observation_dim,), dtype=f32),
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


def dims_of_features(features) -> tuple[int, int]:
  """(observation_dim, action_dim) of a FeaturesDict made by `make_features`."""
  steps = features[STEPS].feature
  return int(steps[OBSERVATION].shape[0]), int(steps[ACTION].shape[0])
