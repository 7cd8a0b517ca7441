"""Episode-level checks shared by every input format, run before relabeling."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline import rejection
from pipeline.raw_format import RawEpisode
from pipeline.rejection import Rejected


def validate_episode(episode: RawEpisode, dims: Optional[tuple[int, int]] = None,
                     expert_action_field: bool = True) -> None:
  """Raises `Rejected` if `episode` cannot be relabeled into the dataset.

  Args:
    episode: the parsed episode.
    dims: (observation_dim, action_dim) of the dataset the episode is written to, if fixed.
    expert_action_field: the dataset's steps have `expert_action` (datasets created before it
      existed do not, and cannot store an episode's expert labels).
  """
  obs, act = episode.observations, episode.actions
  def reject(reason, detail):
    return Rejected(reason, detail, episode.source, episode_id=episode.episode_id)

  if obs.ndim != 2 or act.ndim != 2:
    raise reject(rejection.INCONSISTENT_DIMENSIONS,
                 f'observations must be [T+1, D] and actions [T, A]; got {obs.shape} and '
                 f'{act.shape}')
  T = act.shape[0]
  if T == 0:
    raise reject(rejection.EMPTY_EPISODE, 'the episode has no transitions')
  if obs.shape[0] == T:
    raise reject(rejection.MISSING_FINAL_OBSERVATION,
                 f'{T} actions but only {T} observations; the observation after the last '
                 'action must be logged (observations have T+1 rows)')
  if obs.shape[0] != T + 1:
    raise reject(rejection.INCONSISTENT_DIMENSIONS,
                 f'{obs.shape[0]} observations for {T} actions (expected {T + 1})')
  if episode.interventions is not None and (
      episode.interventions.ndim != 1 or episode.interventions.shape[0] not in (T, T + 1)):
    raise reject(rejection.INCONSISTENT_DIMENSIONS,
                 f'interventions has shape {episode.interventions.shape}; expected [{T}] or '
                 f'[{T + 1}]')
  if episode.policy_actions is not None and episode.policy_actions.shape != act.shape:
    raise reject(rejection.INCONSISTENT_DIMENSIONS,
                 f'policy_actions has shape {episode.policy_actions.shape}, actions '
                 f'{act.shape}')
  if episode.expert_actions is not None and episode.expert_actions.shape != act.shape:
    raise reject(rejection.INCONSISTENT_DIMENSIONS,
                 f'expert_actions has shape {episode.expert_actions.shape}, actions '
                 f'{act.shape}')
  for name, values in (('observations', obs), ('actions', act),
                       ('policy_actions', episode.policy_actions),
                       ('expert_actions', episode.expert_actions)):
    if values is None:
      continue
    bad = ~np.isfinite(values)
    if bad.any():
      rows = np.flatnonzero(bad.any(axis=1))
      raise reject(rejection.NON_FINITE,
                   f'{name} holds {int(bad.sum())} NaN/inf values, first at step {rows[0]}')
  if dims is not None and (obs.shape[1], act.shape[1]) != tuple(dims):
    raise reject(rejection.DIMENSION_MISMATCH,
                 f'observation/action dims are ({obs.shape[1]}, {act.shape[1]}); the dataset '
                 f'holds ({dims[0]}, {dims[1]})')
  if episode.expert_actions is not None and not expert_action_field:
    raise reject(rejection.EXPERT_ACTION_NOT_IN_DATASET,
                 'the episode logs expert_actions (labels), but the dataset was created before '
                 'steps had an `expert_action` field; write it to a new dataset')
