"""RLDS episodes -> one-step transitions, formed inside an episode only.

Pure numpy; the learners never see RLDS steps. An observation is one [N, D] float32 array, or,
for a dict observation (raw format v2), a dict of per-field arrays: float32 vectors [N, D] and
camera images kept as uint8 [N, H, W, C] (a quarter of float32's memory; the learners' encoder
converts them).
"""

from __future__ import annotations

import numpy as np

from pipeline import schema as sc

# Per-transition arrays produced by `episode_transitions`.
FIELDS = ('observation', 'action', 'reward', 'discount', 'next_observation', 'is_intervention',
          'expert_action')


def transition_discount(step_discount: np.ndarray, next_is_terminal: np.ndarray) -> np.ndarray:
  """The discount of each transition (s_t, a_t, s_t+1): the one place deciding terminal vs
  truncation.

  A transition into a true terminal state (the next step has `is_terminal`) gets 0: there is no
  future to bootstrap from. A truncated episode's last step is `is_last` but not `is_terminal`:
  the episode was cut, not finished, so its last transition keeps the logged discount (1) and
  the learner bootstraps from the final observation. Any other discount the dataset logged is
  kept as is.
  """
  return np.where(next_is_terminal, 0.0, step_discount).astype(np.float32)


def episode_transitions(steps: dict) -> dict:
  """All transitions of one RLDS episode (SAR alignment, [N] steps -> [N-1] transitions).

  The final step contributes only its observation (its action, reward and discount are
  placeholders), so no transition reaches across an episode boundary.
  """
  observation = steps[sc.OBSERVATION]
  n = len(steps[sc.ACTION])
  if n < 2:
    return empty(sc.observation_spec(observation), steps[sc.ACTION].shape[-1])
  # Datasets created before expert labels existed have no such field: nothing is labelled.
  expert_action = steps.get(sc.EXPERT_ACTION, np.full_like(steps[sc.ACTION], np.nan))
  return {
      'observation': _observations(observation, slice(None, -1)),
      'action': steps[sc.ACTION][:-1].astype(np.float32),
      'reward': steps[sc.REWARD][:-1].astype(np.float32),
      'discount': transition_discount(steps[sc.DISCOUNT][:-1], steps[sc.IS_TERMINAL][1:]),
      'next_observation': _observations(observation, slice(1, None)),
      'is_intervention': steps[sc.IS_INTERVENTION][:-1].astype(bool),
      'expert_action': expert_action[:-1].astype(np.float32),
  }


def multi_step(transitions: dict, episode_sizes, n: int, gamma: float) -> dict:
  """One-step transitions (consecutive within each episode, episodes back to back, sizes
  `episode_sizes`) as n-step transitions for a TD target r + gamma * discount * Q(s', a'):

    reward_t   = sum_{k<m} gamma^k (prod_{j<k} d_t+j) r_t+k
    discount_t = gamma^(m-1) prod_{k<m} d_t+k
    next_observation_t = next_observation_t+m-1

  with m = min(n, the steps left in t's episode): the window never crosses an episode's end, and
  a terminal transition (d = 0) ends it (nothing after it is counted, nothing bootstrapped).
  Folding gamma^(m-1) into the discount keeps the learner's target as it is. The observation,
  action and flags stay the one-step transition's. n = 1 returns `transitions` unchanged.
  The logged actions after t are the behaviour's, so the sum rates the logged continuation (the
  policy's own, or the human's after a takeover), not the learner's: the usual n-step bias,
  traded for rewards that reach back n steps per update instead of one.
  """
  if n < 1:
    raise ValueError(f'n-step returns need n >= 1, got {n}')
  if n == 1:
    return transitions
  sizes, total = _episode_sizes(transitions, episode_sizes), size(transitions)
  reward = transitions['reward'].astype(np.float64)
  step_discount = transitions['discount'].astype(np.float64)
  index = np.arange(total)
  end = np.repeat(np.cumsum(sizes), sizes)  # one past each transition's episode's last
  summed = np.zeros(total)
  bootstrap = np.zeros(total)
  scale = np.ones(total)  # gamma^k prod_{j<k} d_t+j
  last = index.copy()
  for k in range(n):
    at = index + k
    live = at < end
    t, at = index[live], at[live]
    summed[t] += scale[t] * reward[at]
    bootstrap[t] = scale[t] * step_discount[at]
    last[t] = at
    scale[t] *= gamma * step_discount[at]
  out = dict(transitions)
  out['reward'] = summed.astype(np.float32)
  out['discount'] = bootstrap.astype(np.float32)
  out['next_observation'] = _observations(transitions['next_observation'], last)
  return out


def _episode_sizes(transitions: dict, episode_sizes) -> np.ndarray:
  """`episode_sizes` as int64, checked to cover the transitions exactly."""
  sizes = np.asarray(episode_sizes, np.int64)
  if int(sizes.sum()) != size(transitions):
    raise ValueError(f'episode sizes sum to {int(sizes.sum())}, but there are '
                     f'{size(transitions)} transitions')
  return sizes


def refused_proposals(steps: dict) -> dict:
  """The policy's proposals that a takeover refused, as transitions the critic learns from.

  A penalised transition (reward < 0: under rule `rlif`, the policy transition into a takeover's
  first step s_t) ends where the operator took the controls; the policy had proposed an action
  for s_t too (the logged `policy_action`), and the operator's decision refused it. Each such
  proposal becomes (s_t, a_pi(s_t), r, s_t) with the penalised transition's reward r and
  discount 0: a terminal transition whose value is the takeover's cost, because the refused
  action never ran and its next state is unknown (`next_observation` repeats s_t and is not
  used). Beside the human's action at the same state (reward 0, bootstrapped), the critic then
  sees the two actions the operator compared. A state without a logged proposal (the episode's
  final observation, data without `policy_action`) gives none. `is_intervention` is False and
  `expert_action` NaN: the action is the policy's, and never one to imitate.
  """
  observation = steps[sc.OBSERVATION]
  n = len(steps[sc.ACTION])
  proposed = steps.get(sc.POLICY_ACTION)
  if n < 2 or proposed is None:
    return empty(sc.observation_spec(observation), steps[sc.ACTION].shape[-1])
  reward = steps[sc.REWARD][:-1].astype(np.float32)
  # t + 1 for each penalised transition t, where the next step logs what the policy proposed.
  at = np.flatnonzero(reward < 0) + 1
  at = at[np.isfinite(proposed[at]).all(axis=-1)]
  states = _observations(observation, at)
  return {
      'observation': states,
      'action': proposed[at].astype(np.float32),
      'reward': reward[at - 1],
      'discount': np.zeros(len(at), np.float32),
      'next_observation': states,  # never read (discount 0); the same arrays, not a second copy
      'is_intervention': np.zeros(len(at), bool),
      'expert_action': np.full((len(at), proposed.shape[-1]), np.nan, np.float32),
  }


def _observations(observation, steps):
  """The observations of `steps` (a slice or indices): float32 vectors; a dict's images stay
  uint8."""
  if not isinstance(observation, dict):
    return observation[steps].astype(np.float32)
  return {name: (value[steps] if sc.is_image_shape(value.shape[1:])
                 else value[steps].astype(np.float32))
          for name, value in observation.items()}


def _empty_observation(observation) -> np.ndarray | dict:
  """[0, ...] observations of a dataset's observation spec (pipeline.schema.ObservationSpec)."""
  if isinstance(observation, (int, np.integer)):
    return np.zeros((0, observation), np.float32)
  return {f.name: np.zeros((0, *f.shape), np.uint8 if f.is_image else np.float32)
          for f in observation}


def empty(observation, action_dim: int) -> dict:
  """No transitions, for `observation` an int D or a dict observation's fields."""
  return {
      'observation': _empty_observation(observation),
      'action': np.zeros((0, action_dim), np.float32),
      'reward': np.zeros((0,), np.float32),
      'discount': np.zeros((0,), np.float32),
      'next_observation': _empty_observation(observation),
      'is_intervention': np.zeros((0,), bool),
      'expert_action': np.zeros((0, action_dim), np.float32),
  }


def demonstrated(transitions: dict, is_prior: bool, operator_weight: float = 1.0) -> np.ndarray:
  """[N] float32, the weight of each logged action in the behaviour term: 1 where it is a
  demonstration, 0 where the policy acted: the one place that decides which actions a learner
  may imitate, and how much.

  Every action of prior data (expert demonstrations, round 0) is a demonstration; in an
  intervention round only the human-controlled steps (`is_intervention`) are. The policy's own
  actions there are logged too, including the ones that led to a takeover (reward -1): an
  imitation term over them would pull the actor toward what the human just corrected.
  Where `transitions` hold an `accepted` array (`accepted`; the train loop adds it when its
  `accepted_window` > 0), the policy's own actions it marks are imitated too, with weight 1.
  The operator's own steps in an intervention round weigh `operator_weight`: a correction made
  at a state the policy reached, where HG-DAgger's batches hold as many of them as of prior data
  while here they are a few percent of the term (the train loop's `operator_weight`).
  """
  if operator_weight < 0:
    raise ValueError(f'operator_weight must be >= 0, got {operator_weight}')
  n = size(transitions)
  if is_prior:
    return np.ones(n, np.float32)
  operator = transitions['is_intervention'].astype(bool)
  weights = np.where(operator, np.float32(operator_weight), np.float32(0))
  if 'accepted' in transitions:
    weights = np.where(transitions['accepted'].astype(bool) & ~operator, np.float32(1), weights)
  return weights


def accepted(transitions: dict, episode_sizes, window: int) -> np.ndarray:
  """[N] bool: the policy's own actions that the operator let run, one-step transitions
  (consecutive within each episode, episodes back to back, sizes `episode_sizes`).

  A policy-controlled transition t is accepted when no transition in t, t+1, ..., t+window-1 of
  its episode is penalised (reward < 0: under rule `rlif`, the policy transition into a
  takeover's first step). The operator watched those actions and did not take over, which is
  the intervention signal's own approval; the `window` actions before each takeover are the ones
  it corrected. Human-controlled steps are never accepted here: they are demonstrations already.
  A window past the episode's end sees no takeover there. Read the rewards before any n-step
  sum (`multi_step` spreads a -1 over the steps before it).
  """
  if window < 1:
    raise ValueError(f'the accepted window needs window >= 1, got {window}')
  sizes, total = _episode_sizes(transitions, episode_sizes), size(transitions)
  penalised = np.concatenate([[0], np.cumsum(transitions['reward'] < 0)])
  index = np.arange(total)
  stop = np.minimum(index + window, np.repeat(np.cumsum(sizes), sizes))
  near_takeover = penalised[stop] - penalised[index] > 0
  return ~transitions['is_intervention'].astype(bool) & ~near_takeover


def expert_labelled(transitions: dict) -> dict:
  """The transitions that carry the expert's action for their state, with `action` set to it:
  DAgger's training set from one round.

  A step's label is its logged `expert_action` (the expert labelled a state the policy visited);
  a human-controlled step without one is labelled by the action the human executed. Steps with
  neither are left out.
  """
  labelled = np.isfinite(transitions['expert_action']).all(axis=-1)
  keep = labelled | transitions['is_intervention']
  out = select(transitions, keep)
  out['action'] = np.where(labelled[keep][:, None], out['expert_action'], out['action'])
  return out


def concatenate(parts: list[dict]) -> dict:
  """Parts with the same keys (pairing.FIELDS, and any extra per-transition arrays) joined."""
  keys = list(parts[0])
  for part in parts[1:]:
    if set(part) != set(keys):
      raise ValueError(f'cannot concatenate transitions with keys {sorted(part)} and '
                       f'{sorted(keys)}')
  return {key: _concatenate([p[key] for p in parts]) for key in keys}


def _concatenate(values: list):
  """Arrays joined along the first axis; dict observations field by field."""
  if isinstance(values[0], dict):
    return {name: np.concatenate([v[name] for v in values]) for name in values[0]}
  return np.concatenate(values)


def select(transitions: dict, mask: np.ndarray) -> dict:
  return {key: ({name: v[mask] for name, v in value.items()} if isinstance(value, dict)
                else value[mask])
          for key, value in transitions.items()}


def size(transitions: dict) -> int:
  return int(transitions['reward'].shape[0])
