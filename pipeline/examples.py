"""Relabeled episodes -> serialized TFDS examples (the bytes stored in a round's shards)."""

from __future__ import annotations

import functools
import json

import numpy as np

from pipeline import relabel as rl
from pipeline import schema as sc
from pipeline.raw_format import RawEpisode


def episode_key(episode_id: str, segment: int) -> str:
  """Stable, path-free key of one RLDS episode in a round."""
  return f'{episode_id}#{segment}'


@functools.lru_cache(maxsize=4)
def _codec(dims: tuple[int, int], expert_action: bool):
  from tensorflow_datasets.core import example_serializer
  features = sc.make_features(*dims, expert_action=expert_action)
  return features, example_serializer.ExampleSerializer(features.get_serialized_info())


def to_example(raw: RawEpisode, episode: rl.RldsEpisode, round_index: int,
               takeover: rl.Takeover, expert_action: bool = True) -> dict:
  """The TFDS example of one RLDS episode; `expert_action=False` for a dataset whose schema
  predates that field (`sc.make_features`)."""
  extra = {k: v for k, v in raw.metadata.items() if k != 'episode_id'}
  steps = episode.steps
  labels = {sc.HAS_EXPERT_ACTION: raw.expert_actions is not None}
  if not expert_action:
    steps = {k: v for k, v in steps.items() if k != sc.EXPERT_ACTION}
    labels = {}
  return {
      sc.STEPS: steps,
      sc.EPISODE_METADATA: {
          sc.EPISODE_ID: raw.episode_id,
          sc.SEGMENT: episode.segment,
          sc.ROUND: round_index,
          sc.REWARD_RULE: rl.RULE_NAME,
          sc.REWARD_RULE_VERSION: rl.RULE_VERSION,
          sc.TAKEOVER_MODE: rl.Takeover(takeover).value,
          sc.NUM_INTERVENTION_STEPS: episode.num_intervention_steps,
          sc.NUM_TAKEOVERS: episode.num_takeovers,
          sc.HAS_POLICY_ACTION: raw.policy_actions is not None,
          **labels,
          sc.SOURCE: raw.source,
          sc.EXTRA_METADATA_JSON: json.dumps(extra, sort_keys=True),
      },
  }


def serialize(example: dict, dims: tuple[int, int], expert_action: bool = True) -> bytes:
  features, serializer = _codec(tuple(dims), bool(expert_action))
  return serializer.serialize_example(features.encode_example(example))


def episode_stats(raw: RawEpisode, episode: rl.RldsEpisode) -> dict:
  """Per-input-episode numbers for the round report."""
  actions = raw.actions
  return {
      'transitions': raw.num_transitions,
      'has_intervention_flags': raw.interventions is not None,
      'intervention_steps': episode.num_intervention_steps,
      'takeovers': episode.num_takeovers,
      'takeover_lengths': list(episode.takeover_lengths),
      'negative_rewards': int((rl.intervention_rewards(rl.intervention_flags(raw)) < 0).sum()),
      'terminated': bool(raw.terminated),
      'actions_out_of_bounds': int((np.abs(actions) > 1.0).any(axis=1).sum()),
  }
