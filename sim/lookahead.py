"""Looking ahead in the simulator: what an action leads to, for simulated operators.

The value-based intervention model (RLIF Eq. A.2) compares Q_ref(s, a_exp) with Q_ref(s, a_pi).
The paper's Q_ref is a trained expert's critic. A simulated operator can instead look ahead: from
a copy of the episode's state, take the action, let an actor continue for the rest of `horizon`
steps, and sum the discounted dense reward,

    R_H(s, a; actor) = r(s, a) + sum_{h=1}^{H-1} gamma^h r(s_h, actor(s_h)).

With the expert as the actor this is the expert's Q truncated at H steps, exact in the simulator
(deterministic physics and expert). `compare` rates the two choices an operator has at a step:
the expert's action followed by the expert, and the policy's action followed by the policy
(`sim.intervention.ForesightIntervention`). Rows run side by side in a pool of scratch
environments (one batched call per actor per lookahead step); the episodes' own environments are
never touched. States are `snapshot`s: MuJoCo's whole integration state and the model fields the
tasks randomise, so a restored copy steps to the bit as the episode would.
"""

from __future__ import annotations

from typing import Callable, Sequence

import mujoco
import numpy as np

from sim import tasks as tasks_lib


# The model fields the Adroit tasks set at reset: pen's target orientation (body_quat), door's
# and hammer's body positions, relocate's object start (body_pos) and target (site_pos).
_MODEL_FIELDS = ('body_pos', 'body_quat', 'site_pos', 'site_quat')
# Values a task computes at reset from its random pose and its rewards read (pen's lengths, which
# differ in the last bit from pose to pose).
_ENV_ATTRIBUTES = ('pen_length', 'tar_length')
# Positions, velocities, actuator state, time, controls and applied forces, and the solver's warm
# start: everything MuJoCo's next step reads from mjData.
_INTEGRATION = mujoco.mjtState.mjSTATE_INTEGRATION


def snapshot(env) -> dict:
  """What the next steps of `env` (an Adroit env, wrapped or not) depend on, for `restore`.

  Not the tasks' own `get_env_state`: relocate's stores the object's world position where its
  setter writes the body's start, so a restored ball sits off by however far it has moved (29 cm
  after 80 expert steps), and none of them carries the solver's warm start (restored states
  drifted by ~1e-6 within 5 steps). Nor does any carry pen's lengths, which its reward divides
  by."""
  e = env.unwrapped
  integration = np.empty(mujoco.mj_stateSize(e.model, _INTEGRATION))
  mujoco.mj_getState(e.model, e.data, integration, _INTEGRATION)
  return {'integration': integration,
          **{field: getattr(e.model, field).copy() for field in _MODEL_FIELDS},
          **{name: getattr(e, name) for name in _ENV_ATTRIBUTES if hasattr(e, name)}}


def restore(env, state: dict) -> None:
  """Puts `env` where `snapshot` found its environment: its next steps repeat that one's exactly."""
  e = env.unwrapped
  for field in _MODEL_FIELDS:
    getattr(e.model, field)[:] = state[field]
  for name in _ENV_ATTRIBUTES:
    if name in state:
      setattr(e, name, state[name])
  mujoco.mj_setState(e.model, e.data, state['integration'], _INTEGRATION)
  mujoco.mj_forward(e.model, e.data)


class LookaheadCritic:
  """H-step discounted returns of choices on `task`, continued by the deterministic `expert`
  (`act_all` on batches) or by a policy. Near an episode's end a lookahead still runs its whole
  horizon, past the step where the episode is cut off: truncation is not termination, so where
  an action leads after the cut is part of its value, as in the learner's own Q."""

  def __init__(self, task, expert, horizon: int, gamma: float = 0.99):
    if horizon < 1:
      raise ValueError(f'horizon must be >= 1, got {horizon}')
    from sim import experts as experts_lib  # experts -> collector -> here
    if not isinstance(expert, experts_lib.DeterministicExpert):
      raise TypeError(f'the lookahead continues with the noise-free expert (a '
                      f'DeterministicExpert), got {type(expert).__name__}')
    self.task = tasks_lib.get_task(task)
    self.expert, self.horizon, self.gamma = expert, int(horizon), float(gamma)
    self._envs = []
    self.steps = 0  # simulator steps taken by lookaheads (the operator's, not the budget's)

  def _pool(self, n: int) -> list:
    while len(self._envs) < n:
      self._envs.append(tasks_lib.make_env(self.task, seed=len(self._envs)).unwrapped)
    return self._envs[:n]

  def returns(self, states: Sequence[dict], first_actions, continuations: Sequence[Callable]):
    """R_H for each row j: from `states[j]` (a `snapshot`), `first_actions[j]`, then
    `continuations[j]` (a function of a batch of observations [n, D] -> actions [n, A]; rows
    that share one function are called together). A row stops accumulating at a true terminal
    state."""
    first_actions = np.asarray(first_actions, np.float64)
    n = len(first_actions)
    if not len(states) == len(continuations) == n:
      raise ValueError(f'{len(states)} states, {n} actions, {len(continuations)} continuations')
    envs = self._pool(n)
    low, high = envs[0].action_space.low, envs[0].action_space.high
    for env, state in zip(envs, states):
      restore(env, state)
    groups = {}
    for j, actor in enumerate(continuations):
      groups.setdefault(id(actor), (actor, []))[1].append(j)
    total = np.zeros(n)
    alive = np.ones(n, bool)
    obs = [None] * n
    actions = first_actions
    for h in range(self.horizon):
      if h > 0:
        actions = np.zeros_like(first_actions)
        for actor, rows in groups.values():
          rows = [j for j in rows if alive[j]]
          if rows:
            actions[rows] = np.asarray(actor(np.stack([obs[j] for j in rows])),
                                       np.float64).reshape(len(rows), -1)
      rows = np.flatnonzero(alive)
      if not rows.size:
        break
      for j in rows:
        obs[j], reward, terminated, _, _ = envs[j].step(np.clip(actions[j], low, high))
        total[j] += self.gamma ** h * reward
        alive[j] = not terminated
      self.steps += rows.size
    return total

  def _expert_actor(self, observations):
    return self.expert.act_all(observations, [None] * len(observations))

  def q(self, states: Sequence[dict], actions) -> np.ndarray:
    """The expert's Q truncated at H steps: each action, then the expert."""
    return self.returns(states, actions, [self._expert_actor] * len(states))

  def compare(self, states: Sequence[dict], expert_actions, policy_actions,
              policy: Callable) -> tuple[np.ndarray, np.ndarray]:
    """(R_H of the expert's action then the expert, R_H of the policy's action then `policy`)
    for each row, in one batch of 2N lookaheads. `policy` maps observations [n, D] to actions
    and must not keep state (a random stream, a recurrent memory) that the episode's own steps
    also use: the lookahead's calls would change the episode. The loop's exported policies are
    deterministic. A policy that acts on camera frames cannot be followed (the lookahead has
    states only)."""
    if getattr(policy, 'observation_fields', None):
      raise ValueError('foresight cannot follow a policy that acts on camera frames: the '
                       'lookahead simulates states only')
    from sim import collector
    follow = lambda observations: collector.policy_actions(policy, observations)
    n = len(states)
    r = self.returns(list(states) * 2, np.concatenate([expert_actions, policy_actions]),
                     [self._expert_actor] * n + [follow] * n)
    return r[:n], r[n:]

  def close(self) -> None:
    for env in self._envs:
      env.close()
    self._envs = []
