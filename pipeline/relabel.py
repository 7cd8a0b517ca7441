"""The reward rule: RLIF's intervention-feedback rewards, and how takeover steps are kept.

This module is the one place that decides what reward and discount a logged step gets. The rule's
name and version are written into every episode's metadata; bump `RULE_VERSION` whenever the
output of `relabel` changes for some input.

Rule `rlif` (version 1), in RLDS SAR alignment (step t holds s_t, a_t and the reward of the
transition (s_t, a_t, s_t+1)):
  * reward_t = -1 when step t was under policy control and step t+1 is the first step of a human
    takeover; 0 everywhere else. A takeover at step 0 has no preceding transition and so no -1.
    When the operator ends the episode by taking over (the intervention flag of the final
    observation is set), the last policy transition gets -1.
  * takeover steps stay in the episode with reward 0 and `is_intervention=True` (`takeover=keep`,
    the default), so an imitation baseline can select them; or only the last step of each takeover
    is kept (`takeover=drop`, the reference implementation's replay contents). Dropping steps
    would join transitions that never happened, so `drop` splits the episode at each dropped run:
    the part before ends at the takeover's first observation as a truncation (is_last, not
    terminal: the learner bootstraps there) and the next part starts at the takeover's last step.
  * discount_t = 1, except 0 on the transition into a true terminal state.
  * episodes without intervention flags (prior data, demonstrations) get all-zero rewards.
"""

from __future__ import annotations

import dataclasses
import enum

import numpy as np

from pipeline import schema as sc
from pipeline.raw_format import RawEpisode

RULE_NAME = 'rlif'
RULE_VERSION = 1
INTERVENTION_REWARD = -1.0


class Takeover(str, enum.Enum):
  KEEP = 'keep'
  DROP = 'drop'


@dataclasses.dataclass(frozen=True)
class RldsEpisode:
  """One relabeled RLDS episode: `steps` maps step field -> [T+1, ...] array."""
  steps: dict
  segment: int
  num_intervention_steps: int
  num_takeovers: int
  takeover_lengths: tuple[int, ...]


def intervention_flags(episode: RawEpisode) -> np.ndarray:
  """[T+1] bool: who was in control at each logged step (the final observation included)."""
  T = episode.num_transitions
  flags = np.zeros(T + 1, dtype=bool)
  if episode.interventions is not None:
    flags[:episode.interventions.shape[0]] = episode.interventions
  return flags


def intervention_rewards(flags: np.ndarray) -> np.ndarray:
  """[T] rewards from [T+1] control flags: -1 on each transition into a takeover's first step."""
  takeover_starts = flags[1:] & ~flags[:-1]
  return np.where(takeover_starts, INTERVENTION_REWARD, 0.0).astype(np.float32)


def takeover_runs(flags: np.ndarray) -> list[tuple[int, int]]:
  """[(first, last)] inclusive index ranges of consecutive True flags."""
  padded = np.concatenate([[False], flags, [False]])
  edges = np.flatnonzero(padded[1:] != padded[:-1])
  return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def _rlds_steps(episode: RawEpisode, flags: np.ndarray, rewards: np.ndarray) -> dict:
  """Whole-episode RLDS step arrays ([T+1] leading axis) before any takeover dropping."""
  T = episode.num_transitions
  A = episode.actions.shape[1]
  terminal_discount = 0.0 if episode.terminated else 1.0
  discount = np.ones(T + 1, dtype=np.float32)
  discount[T - 1] = terminal_discount
  discount[T] = terminal_discount  # Placeholder on the final step (RLDS: not a transition).
  policy_action = np.full((T + 1, A), np.nan, dtype=np.float32)
  if episode.policy_actions is not None:
    policy_action[:T] = episode.policy_actions
  expert_action = np.full((T + 1, A), np.nan, dtype=np.float32)
  if episode.expert_actions is not None:
    expert_action[:T] = episode.expert_actions
  index = np.arange(T + 1)
  return {
      sc.OBSERVATION: _observations(episode.observations),
      sc.ACTION: np.concatenate([episode.actions, np.zeros((1, A), np.float32)]),
      sc.POLICY_ACTION: policy_action,
      sc.EXPERT_ACTION: expert_action,
      sc.REWARD: np.append(rewards, np.float32(0.0)).astype(np.float32),
      sc.DISCOUNT: discount,
      sc.IS_FIRST: index == 0,
      sc.IS_LAST: index == T,
      sc.IS_TERMINAL: (index == T) & bool(episode.terminated),
      sc.IS_INTERVENTION: flags.copy(),
  }


def _observations(observations):
  """A flat [T+1, D] array as float32; a dict's fields as they are (float32 vectors, uint8
  images: validated, never copied, so an episode's frames exist once in memory)."""
  if isinstance(observations, dict):
    return dict(observations)
  return observations.astype(np.float32)


def _rows(value, start: int, stop: int):
  if isinstance(value, dict):
    return {k: v[start:stop] for k, v in value.items()}  # views: observations are not edited
  return value[start:stop].copy()


def _segment(steps: dict, start: int, stop: int) -> dict:
  """Steps [start, stop] (inclusive: `stop` becomes the final observation) as a truncation."""
  part = {key: _rows(value, start, stop + 1) for key, value in steps.items()}
  n = stop - start
  part[sc.ACTION][n] = 0.0
  part[sc.POLICY_ACTION][n] = np.nan
  part[sc.EXPERT_ACTION][n] = np.nan
  part[sc.REWARD][n] = 0.0
  part[sc.DISCOUNT][n] = 1.0
  part[sc.IS_FIRST] = np.arange(n + 1) == 0
  part[sc.IS_LAST] = np.arange(n + 1) == n
  part[sc.IS_TERMINAL] = np.zeros(n + 1, dtype=bool)
  return part


def relabel(episode: RawEpisode, takeover: Takeover = Takeover.KEEP) -> list[RldsEpisode]:
  """Applies rule `rlif` to a validated episode; returns one RLDS episode (or, with
  `takeover=drop`, one per contiguous kept part)."""
  takeover = Takeover(takeover)
  flags = intervention_flags(episode)
  rewards = intervention_rewards(flags)
  steps = _rlds_steps(episode, flags, rewards)
  T = episode.num_transitions
  runs = takeover_runs(flags)
  lengths = tuple(b - a + 1 for a, b in runs)
  stats = dict(num_intervention_steps=int(flags[:T].sum()), num_takeovers=len(runs),
               takeover_lengths=lengths)
  if takeover is Takeover.KEEP:
    return [RldsEpisode(steps=steps, segment=0, **stats)]

  # Kept transitions form contiguous parts; each dropped run [a, b-1] (b = last takeover step
  # with an action) ends the part before it at s_a and starts the next one at s_b.
  parts, start = [], 0
  for a, b in runs:
    b = min(b, T - 1)  # A flag on the final observation has no transition to drop.
    if b <= a:
      continue
    if a > start:
      parts.append((start, a))
    start = b
  parts.append((start, T))
  episodes = []
  for index, (first, last) in enumerate(parts):
    part = steps if (first, last) == (0, T) else _segment(steps, first, last)
    if last == T:  # The part holding the episode's true end keeps its terminal information.
      part[sc.IS_TERMINAL] = steps[sc.IS_TERMINAL][first:].copy()
      part[sc.DISCOUNT][-2:] = steps[sc.DISCOUNT][-2:]
    episodes.append(RldsEpisode(steps=part, segment=index, **stats))
  return episodes
