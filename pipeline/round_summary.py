"""What a person wants to see about a round, computed from the dataset's own step arrays.

Pure numpy: no TFDS, no files, no HTML (`pipeline/view.py` reads, `pipeline/html_page.py`
draws). Everything here is measured on the steps as stored (RLDS, SAR alignment: step t holds
s_t, a_t and the reward of (s_t, a_t, s_t+1); the final step carries only the final
observation), so the page shows what a learner reading the dataset sees:

  * transitions: steps that are not `is_last` (the final step's action and reward are
    placeholders);
  * intervention rate: the share of transitions with `is_intervention` (the round report's rule);
  * takeovers: runs of consecutive `is_intervention` steps, the final observation included (an
    operator who ends the episode by taking over is a takeover), as `relabel.takeover_runs`
    defines them for the report;
  * -1 rewards: transitions with a negative reward (rule `rlif`: the policy step that led to a
    takeover).

With `--takeover=drop` a takeover keeps only its last step as a transition (its first step ends
the segment before it), so takeover lengths measured here are 2 (`takeover_lengths` joins the
segments); the job report (rounds/round_N.json) keeps the logged lengths.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Optional, Sequence

import numpy as np

from pipeline import relabel
from pipeline import schema as sc

# Frames shown around a takeover's first step: this many before and after it.
FRAME_RADIUS = 2


@dataclasses.dataclass(frozen=True)
class EpisodeSummary:
  """One stored (RLDS) episode, reduced to what the page shows.

  Attributes:
    transitions: T, the steps with a real action (the final step excluded).
    intervention_steps: transitions under human control.
    takeover_spans: inclusive (first, last) step ranges of consecutive human control, over all
      T + 1 steps.
    negative_reward_steps: steps t < T whose transition has reward < 0.
  """
  episode_id: str
  segment: int
  transitions: int
  intervention_steps: int
  takeover_spans: tuple[tuple[int, int], ...]
  negative_reward_steps: tuple[int, ...]

  @property
  def takeover_lengths(self) -> tuple[int, ...]:
    return tuple(b - a + 1 for a, b in self.takeover_spans)


@dataclasses.dataclass(frozen=True)
class EpisodeTimeline:
  """An episode's summary plus the arrays its timeline draws: actions [T, A] (transitions
  only), and the camera frames around each takeover start ({field: {step: [H, W, C] uint8}})."""
  summary: EpisodeSummary
  actions: np.ndarray
  frames: dict

  @property
  def action_norm(self) -> np.ndarray:
    return action_norm(self.actions)


@dataclasses.dataclass(frozen=True)
class LengthDistribution:
  count: int
  min: int
  median: float
  max: int
  mean: float
  histogram: tuple[tuple[int, int, int], ...]  # (low, high, count), inclusive integer bins


@dataclasses.dataclass(frozen=True)
class DeadLetterGroup:
  reason: str
  count: int


@dataclasses.dataclass(frozen=True)
class RoundSummary:
  round_index: int
  episodes: int        # distinct episode ids
  rlds_episodes: int   # stored episodes (more than `episodes` when takeover=drop split some)
  transitions: int
  intervention_steps: int
  takeovers: LengthDistribution
  negative_rewards: int
  episodes_with_takeover: int
  dead_letters: tuple[dict, ...]
  dead_letters_by_reason: tuple[DeadLetterGroup, ...]
  takeover_mode: Optional[str] = None

  @property
  def intervention_rate(self) -> float:
    return self.intervention_steps / self.transitions if self.transitions else 0.0


def _steps_field(steps: dict, name: str) -> np.ndarray:
  if name not in steps:
    raise KeyError(f'steps lack `{name}` (fields: {sorted(steps)})')
  return np.asarray(steps[name])


def summarize_episode(steps: dict, episode_id: str = '', segment: int = 0) -> EpisodeSummary:
  """`steps` maps step field -> [T+1, ...] array (one stored episode, final step included)."""
  is_intervention = _steps_field(steps, sc.IS_INTERVENTION).astype(bool)
  reward = _steps_field(steps, sc.REWARD).astype(np.float64)
  T = max(len(is_intervention) - 1, 0)
  return EpisodeSummary(
      episode_id=episode_id, segment=int(segment), transitions=T,
      intervention_steps=int(is_intervention[:T].sum()),
      takeover_spans=tuple(relabel.takeover_runs(is_intervention)),
      negative_reward_steps=tuple(int(t) for t in np.flatnonzero(reward[:T] < 0)))


def action_norm(actions: np.ndarray) -> np.ndarray:
  """[T] Euclidean norm of each action."""
  actions = np.asarray(actions, np.float64)
  return np.sqrt((actions ** 2).sum(axis=1)) if actions.size else np.zeros(len(actions))


def image_fields(observation) -> list[str]:
  """Names of camera fields in a step-batched observation: uint8 arrays [T+1, H, W] or
  [T+1, H, W, C] with C in (1, 3, 4). A flat vector observation has none."""
  if not isinstance(observation, dict):
    return []
  names = []
  for name, value in sorted(observation.items()):
    value = np.asarray(value)
    if value.dtype == np.uint8 and (value.ndim == 3 or (value.ndim == 4
                                                        and value.shape[-1] in (1, 3, 4))):
      names.append(name)
  return names


def frame_steps(takeover_start: int, num_steps: int,
                radius: int = FRAME_RADIUS) -> list[int]:
  """Steps shown around a takeover that starts at `takeover_start`, within [0, num_steps)."""
  return list(range(max(takeover_start - radius, 0), min(takeover_start + radius + 1,
                                                         num_steps)))


def episode_timeline(steps: dict, episode_id: str = '', segment: int = 0,
                     frame_radius: int = FRAME_RADIUS) -> EpisodeTimeline:
  """The summary, the transitions' actions and, for camera observations, the frames around each
  takeover's first step."""
  summary = summarize_episode(steps, episode_id, segment)
  actions = np.asarray(_steps_field(steps, sc.ACTION), np.float32)[:summary.transitions]
  observation = steps.get(sc.OBSERVATION)
  frames = {}
  for name in image_fields(observation):
    images = np.asarray(observation[name])
    wanted = sorted({t for a, _ in summary.takeover_spans
                     for t in frame_steps(a, len(images), frame_radius)})
    frames[name] = {t: images[t] for t in wanted}
  return EpisodeTimeline(summary=summary, actions=actions, frames=frames)


def length_histogram(lengths: Sequence[int],
                     max_bins: int = 12) -> tuple[tuple[int, int, int], ...]:
  """(low, high, count) bins over integer lengths, inclusive: one bin per length when the range
  fits in `max_bins`, else `max_bins` bins of equal integer width."""
  if not len(lengths):
    return ()
  lengths = np.asarray(lengths, np.int64)
  low, high = int(lengths.min()), int(lengths.max())
  width = max(1, -(-(high - low + 1) // max_bins))  # ceil
  bins = []
  for start in range(low, high + 1, width):
    stop = min(start + width - 1, high)
    bins.append((start, stop, int(((lengths >= start) & (lengths <= stop)).sum())))
  return tuple(bins)


def length_distribution(lengths: Sequence[int]) -> LengthDistribution:
  if not len(lengths):
    return LengthDistribution(0, 0, 0.0, 0, 0.0, ())
  values = np.asarray(lengths, np.int64)
  return LengthDistribution(count=len(values), min=int(values.min()),
                            median=float(np.median(values)), max=int(values.max()),
                            mean=float(values.mean()), histogram=length_histogram(values))


def group_dead_letters(records: Sequence[dict]) -> tuple[DeadLetterGroup, ...]:
  """Counts by reason, most frequent first (ties by name)."""
  counts = collections.Counter(r.get('reason', 'unknown') for r in records)
  return tuple(DeadLetterGroup(reason, n)
               for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def takeover_lengths(episodes: Sequence[EpisodeSummary]) -> list[int]:
  """Stored takeover lengths of a round. `--takeover=drop` cuts an episode at each dropped run:
  one segment ends on the takeover's first step and the next starts on its last, so a segment
  that ends on a human step followed by one that starts on a human step holds one takeover,
  counted once here."""
  by_episode = collections.defaultdict(list)
  for e in episodes:
    by_episode[e.episode_id].append(e)
  lengths = []
  for segments in by_episode.values():
    segments.sort(key=lambda e: e.segment)
    carry = 0
    for e, following in zip(segments, segments[1:] + [None]):
      lengths_here = list(e.takeover_lengths)
      if carry:
        lengths_here[0] += carry
        carry = 0
      if (following is not None and following.segment == e.segment + 1
          and e.takeover_spans and e.takeover_spans[-1][1] == e.transitions
          and following.takeover_spans and following.takeover_spans[0][0] == 0):
        carry = lengths_here.pop()
      lengths.extend(lengths_here)
  return lengths


def summarize_round(round_index: int, episodes: Sequence[EpisodeSummary],
                    dead_letters: Sequence[dict] = (),
                    takeover_mode: Optional[str] = None) -> RoundSummary:
  lengths = takeover_lengths(episodes)
  return RoundSummary(
      round_index=int(round_index),
      episodes=len({e.episode_id for e in episodes}),
      rlds_episodes=len(episodes),
      transitions=sum(e.transitions for e in episodes),
      intervention_steps=sum(e.intervention_steps for e in episodes),
      takeovers=length_distribution(lengths),
      negative_rewards=sum(len(e.negative_reward_steps) for e in episodes),
      episodes_with_takeover=len({e.episode_id for e in episodes if e.takeover_spans}),
      dead_letters=tuple(dead_letters),
      dead_letters_by_reason=group_dead_letters(dead_letters),
      takeover_mode=takeover_mode)


@dataclasses.dataclass(frozen=True)
class DatasetSummary:
  """Everything the page shows about one dataset version.

  Attributes:
    reports: round -> the job report from the round's manifest (None where there is none, e.g.
      a dataset built with `tfds build`).
    dead_letter_sources: round -> where its dead letters were read ('rejected/round_N/', the
      manifest's report, or '' when neither exists).
    shown_round: the round whose episodes get timelines; `timelines` are its first
      `len(timelines)` episodes by (episode id, segment), out of `shown_round_episodes`.
    camera_fields: observation fields that are images (empty: no camera).
  """
  name: str
  version: str
  version_dir: str
  observation: str
  action_dim: int
  rounds: tuple[RoundSummary, ...]
  reports: dict
  dead_letter_sources: dict
  shown_round: int
  timelines: tuple[EpisodeTimeline, ...]
  shown_round_episodes: int
  camera_fields: tuple[str, ...] = ()
