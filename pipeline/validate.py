"""Episode-level checks shared by every input format, run before relabeling."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline import rejection
from pipeline import schema as sc
from pipeline.raw_format import RawEpisode
from pipeline.rejection import Rejected


def validate_episode(episode: RawEpisode, dims: Optional[tuple[sc.ObservationSpec, int]] = None,
                     expert_action_field: bool = True) -> None:
  """Raises `Rejected` if `episode` cannot be relabeled into the dataset.

  Args:
    episode: the parsed episode.
    dims: (observation spec, action_dim) of the dataset the episode is written to, if fixed; the
      spec is the observation dimension D for flat observations (`schema.ObservationSpec`).
    expert_action_field: the dataset's steps have `expert_action` (datasets created before it
      existed do not, and cannot store an episode's expert labels).
  """
  def reject(reason, detail):
    return Rejected(reason, detail, episode.source, episode_id=episode.episode_id)

  if isinstance(episode.observations, dict):
    _check_fields(episode.observations, reject)
    rows = {k: v.shape[0] for k, v in sorted(episode.observations.items())}
    if len(set(rows.values())) > 1:
      raise reject(rejection.INCONSISTENT_DIMENSIONS,
                   f'observation fields have different numbers of steps {rows}; every field '
                   'must be logged at every step, the final observation included')
    # The step count (T+1, the final observation included) is checked below as for v1.
    first = next(iter(episode.observations.values()))
    obs = first.reshape(first.shape[0], -1)
  else:
    obs = episode.observations
  act = episode.actions
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
  if isinstance(episode.observations, dict):  # NaN checks for float fields only
    observation_arrays = tuple((f'observations/{k}', v) for k, v in
                               sorted(episode.observations.items()) if v.dtype.kind == 'f')
  else:
    observation_arrays = (('observations', obs),)
  for name, values in (*observation_arrays, ('actions', act),
                       ('policy_actions', episode.policy_actions),
                       ('expert_actions', episode.expert_actions)):
    if values is None:
      continue
    bad = ~np.isfinite(values)
    if bad.any():
      rows = np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))
      raise reject(rejection.NON_FINITE,
                   f'{name} holds {int(bad.sum())} NaN/inf values, first at step {rows[0]}')
  spec = sc.observation_spec(episode.observations)
  if dims is not None and (spec, act.shape[1]) != tuple(dims):
    if isinstance(spec, tuple) or isinstance(dims[0], tuple):  # a dict on either side
      if spec != dims[0]:
        raise reject(rejection.OBSERVATION_SPEC_MISMATCH,
                     f'observations are {sc.describe_observation(spec)}; the dataset holds '
                     f'{sc.describe_observation(dims[0])} (fixed by its first round)')
      raise reject(rejection.DIMENSION_MISMATCH,
                   f'the action dim is {act.shape[1]}; the dataset holds {dims[1]}')
    raise reject(rejection.DIMENSION_MISMATCH,
                 f'observation/action dims are ({spec}, {act.shape[1]}); the dataset '
                 f'holds ({dims[0]}, {dims[1]})')
  if episode.expert_actions is not None and not expert_action_field:
    raise reject(rejection.EXPERT_ACTION_NOT_IN_DATASET,
                 'the episode logs expert_actions (labels), but the dataset was created before '
                 'steps had an `expert_action` field; write it to a new dataset')


def _check_fields(observations: dict, reject) -> None:
  """Per-field checks of a dict observation (raw format v2): vectors [T+1, D] (float32 once
  read), images [T+1, H, W, C] uint8 with C in `schema.IMAGE_CHANNELS`."""
  if not observations:
    raise reject(rejection.MISSING_FIELD, 'the observation dict has no fields')
  for name, value in sorted(observations.items()):
    step_shape = value.shape[1:]
    if sc.is_image_shape(step_shape):
      if value.dtype != np.uint8:
        raise reject(rejection.INVALID_IMAGE,
                     f'observations/{name} is an image [T+1, H, W, C] {value.shape} of dtype '
                     f'{value.dtype}; images must be uint8')
      if step_shape[2] not in sc.IMAGE_CHANNELS or 0 in step_shape:
        raise reject(rejection.INVALID_IMAGE,
                     f'observations/{name} has shape {value.shape}; images must be '
                     f'[T+1, H, W, C] with C in {sc.IMAGE_CHANNELS} (PNG) and H, W > 0')
    elif len(step_shape) != 1:
      kind = (rejection.INVALID_IMAGE if value.dtype == np.uint8
              else rejection.INCONSISTENT_DIMENSIONS)
      raise reject(kind, f'observations/{name} has shape {value.shape} ({value.dtype}); a field '
                   'must be a vector [T+1, D] or a uint8 image [T+1, H, W, C]')
