"""A project-owned pen teleoperator that plans on the simulator itself (MPPI).

Not the project's pen expert any more (sim/project_expert.py): it succeeds on 80-87% of episodes
but costs ~15 s an episode, and behaviour cloning could not learn from its demonstrations
(sim/EXPERTS.md). It stays as a planning teleoperator on the true simulator state.

`PenPlanner` is receding-horizon MPPI on the `AdroitHandPen-v1` MuJoCo model. At every step it
reads the bound environment's physics state, rolls out `num_samples` perturbed action sequences of
`horizon` steps on a scratch `MjData` (`mujoco.rollout`, so the real environment is never stepped
or changed), scores each sequence by the pen task's dense reward plus two shaping terms summed
over the horizon, executes the first action of the score-weighted mean sequence, and keeps the
rest, shifted by one step, as the next plan's starting point (warm start). By default the
rollouts use a coarser copy of the physics (one 10 ms step per environment step instead of five
of 2 ms), which buys a horizon of 30 steps (0.3 s) in the time budget: the horizon mattered more
than the accuracy of the model (see sim/EXPERTS.md).

Binding. Planning needs the true simulator state (hand joint velocities, the pen's joint angles,
the goal orientation), which the 45-dim observation does not carry in full, so a planner is bound
to the environment the collector steps: `PenPlanner(config).bind(env)` or
`PenPlanner(config, env)`. `act(obs, rng)` then plans from `env`'s current state; `obs` is only
checked against that state, so a planner bound to a different environment fails loudly instead
of planning for the wrong pen. A new episode clears the warm start: the planner notices it when
the simulation clock has not advanced since its last `act` (`env.reset` sets it back to 0).
Sampling uses the `rng` the collector passes (seeded per episode), so an episode is reproducible
from its seed; with `rng=None` the planner's own generator, seeded with `config.seed`, is used.

The dense reward (gymnasium-robotics 1.4.2 `AdroitHandPenEnv.step`), with the pen's and the
goal's unit axes `o`, `g` and the pen-to-goal-centre distance `d`:
  r = -d + o.g + 10 [d < 0.075 and o.g > 0.9] + 50 [d < 0.075 and o.g > 0.95] - 5 [pen z < 0.075]
and `info['success']` is d < 0.075 and o.g > 0.95. `pen_dense_reward` computes it for a batch.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import NamedTuple, Optional

import mujoco
from mujoco import rollout
import numpy as np

from sim import tasks as tasks_lib

PEN_TASK = 'pen'
GOAL_RADIUS = 0.075          # pen centre within this distance of the goal centre
ORIENTATION_CLOSE = 0.9      # o.g above this earns the first bonus
ORIENTATION_SUCCESS = 0.95   # o.g above this earns the second bonus and counts as success
DROP_HEIGHT = 0.075          # pen centre below this height: dropped
STATE_SPEC = mujoco.mjtState.mjSTATE_FULLPHYSICS  # time, qpos, qvel, act: what a step changes


def rotate(vectors: np.ndarray, axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
  """Rotates `vectors` [..., 3] by `angles` [...] about the unit `axis` [3] (Rodrigues)."""
  cos, sin = np.cos(angles)[..., None], np.sin(angles)[..., None]
  along = (vectors @ axis)[..., None] * axis
  return vectors * cos + np.cross(axis, vectors) * sin + along * (1.0 - cos)


@dataclasses.dataclass(frozen=True)
class PenKinematics:
  """Where the pen's centre is and where its axis points, for a batch of `qpos`, in numpy.

  The pen body hangs from the world with three slide joints then three hinges, all at its origin
  (`adroit_pen.xml`), so its centre is origin + R0 (sum of slide axes * q) and its orientation is
  R0 Rot(a3, q3) Rot(a4, q4) Rot(a5, q5): the joints compose in order, each about its axis in
  the frame the previous ones left. One vectorised call replaces a `mj_kinematics` per rolled-out
  state, which cost more than the physics at long horizons.
  """
  origin: np.ndarray         # [3] body position in the world
  rotation: np.ndarray       # [3, 3] body orientation R0
  qpos_index: np.ndarray     # [6] qpos addresses of the slides, then the hinges
  joint_axes: np.ndarray     # [6, 3] joint axes in the body frame
  tip: np.ndarray            # [3] top site minus bottom site, body frame
  length: float              # the environment's pen_length: the axis is tip / length

  @classmethod
  def of(cls, env) -> 'PenKinematics':
    inner = env.unwrapped
    model, body = inner.model, inner.obj_body_id
    first, count = model.body_jntadr[body], model.body_jntnum[body]
    joints = np.arange(first, first + count)
    slide, hinge = mujoco.mjtJoint.mjJNT_SLIDE, mujoco.mjtJoint.mjJNT_HINGE
    if (count != 6 or list(model.jnt_type[joints]) != [slide] * 3 + [hinge] * 3
        or np.any(model.jnt_pos[joints] != 0) or model.body_parentid[body] != 0):
      raise ValueError('the pen body is not 3 slides + 3 hinges at its origin under the world; '
                       'PenKinematics does not apply to this model')
    rotation = np.empty(9)
    mujoco.mju_quat2Mat(rotation, model.body_quat[body])
    tip = model.site_pos[inner.obj_t_site_id] - model.site_pos[inner.obj_b_site_id]
    return cls(model.body_pos[body].copy(), rotation.reshape(3, 3),
               model.jnt_qposadr[joints].copy(), model.jnt_axis[joints].copy(), tip,
               float(inner.pen_length))

  def pose(self, qpos: np.ndarray):
    """(centre [..., 3], unit axis [..., 3]) of the pen for `qpos` [..., nq]."""
    q = qpos[..., self.qpos_index]
    centre = self.origin + (q[..., :3] @ self.joint_axes[:3]) @ self.rotation.T
    axis = np.broadcast_to(self.tip, q.shape[:-1] + (3,))
    for k in (5, 4, 3):  # innermost joint first
      axis = rotate(axis, self.joint_axes[k], q[..., k])
    return centre, (axis @ self.rotation.T) / self.length


class Prediction(NamedTuple):
  """What the planning model predicts after each step of each action sequence, [N, H]."""
  reward: np.ndarray      # the dense reward the environment would pay
  distance: np.ndarray    # pen centre to goal centre (m)
  similarity: np.ndarray  # o.g, the cosine between the pen's and the goal's axes


def pen_dense_reward(distance, similarity, height) -> np.ndarray:
  """The pen task's dense reward for arrays of pen-to-goal distances, axis dot products o.g and
  pen heights (same formula as the environment's `step`, see the module docstring)."""
  distance, similarity, height = (np.asarray(x, np.float64) for x in (distance, similarity, height))
  near = distance < GOAL_RADIUS
  return (-distance + similarity
          + 10.0 * (near & (similarity > ORIENTATION_CLOSE))
          + 50.0 * (near & (similarity > ORIENTATION_SUCCESS))
          - 5.0 * (height < DROP_HEIGHT))


@dataclasses.dataclass(frozen=True)
class PlannerConfig:
  """MPPI settings; the defaults are the measured pen expert (sim/EXPERTS.md). Actions are in
  the environment's normalised units [-1, 1] per joint."""
  num_samples: int = 48          # sequences rolled out per step (one is the unperturbed plan)
  horizon: int = 30              # environment steps per sequence
  noise_scale: float = 0.3       # std of the action perturbations
  noise_correlation: float = 0.5  # AR(1) coefficient of the perturbations along the horizon:
                                  # smooth perturbations move the pen further than white noise
  temperature: float = 0.1       # MPPI softmax temperature, in units of the score's std
  # Shaping added to the dense reward when scoring (planning only; the logged reward is the
  # environment's). Inside the goal the dense reward is nearly flat (o.g from 0.95 to 1 adds
  # 0.05), so a plan hovers at the threshold and noise tips the pen out; and the pen leaving the
  # goal centre (where it starts, in the palm) is the early sign of a drop, which the dense
  # reward punishes only once the pen is below the palm. Without them the planner dropped the pen
  # in most episodes.
  orientation_weight: float = 5.0  # extra reward per unit of o.g
  distance_weight: float = 100.0   # extra penalty per metre of pen-to-goal distance
  substeps: Optional[int] = 1     # physics steps per environment step in the planning model
                                  # (None: the env's frame_skip, 5, the exact dynamics; 1 is five
                                  # times cheaper and approximate, and buys the long horizon)
  seed: int = 0                  # the planner's own sampling stream when `act` gets no rng
  iterations: int = 1            # MPPI updates per step; more re-plan a warm start that no
                                 # longer fits the state (another actor drove), at that cost


class PenPlanner:
  """MPPI teleoperator for the pen task, bound to one environment (see the module docstring)."""

  def __init__(self, config: PlannerConfig = PlannerConfig(), env=None):
    self.config = config
    self._rng = np.random.default_rng(config.seed)
    self.env = None
    if env is not None:
      self._attach(env)

  def bind(self, env) -> 'PenPlanner':
    """A planner with the same config acting on `env` (the one the collector steps)."""
    return PenPlanner(self.config, env)

  def _attach(self, env) -> None:
    inner = env.unwrapped
    if not hasattr(inner, 'obj_t_site_id') or not hasattr(inner, 'tar_t_site_id'):
      raise TypeError(f'PenPlanner needs an AdroitHandPen environment, got {type(inner).__name__}')
    self.env = env
    self._inner = inner
    frame_skip = inner.frame_skip
    substeps = self.config.substeps or frame_skip
    if substeps == frame_skip:
      self._model = inner.model  # exact dynamics; rollouts only read the model
    else:
      # A private copy with a longer timestep covering the same time per environment step.
      self._model = copy.copy(inner.model)
      self._model.opt.timestep = inner.model.opt.timestep * frame_skip / substeps
    self._substeps = substeps
    self._scored_substep = round(substeps * (frame_skip - 1) / frame_skip)
    self._rollout_data = mujoco.MjData(self._model)
    self._kinematics = PenKinematics.of(env)
    self._state = np.empty(mujoco.mj_stateSize(inner.model, STATE_SPEC))
    self._plan = None
    self._last_time = -1.0

  # The collector's expert interface.

  def act(self, obs, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """The first action of the plan from the bound environment's current state."""
    if self.env is None:
      raise RuntimeError('PenPlanner is not bound to an environment: use '
                         "planner.bind(env) or PenPlanner(config, env)")
    self._check_observation(obs)
    data = self._inner.data
    if self._plan is None or data.time <= self._last_time:
      self._plan = self._holding_plan()
    self._last_time = data.time
    rng = self._rng if rng is None else rng
    for _ in range(self.config.iterations):
      self._plan = self._improve(self._plan, rng)
    action = self._plan[0].copy()
    # Warm start: the rest of the plan, its last action repeated.
    self._plan = np.concatenate([self._plan[1:], self._plan[-1:]])
    return action

  def describe(self) -> dict:
    return {'kind': 'mppi_planner', 'task': PEN_TASK, **dataclasses.asdict(self.config)}

  # Planning.

  def _check_observation(self, obs) -> None:
    """The observation's hand joints must be the bound environment's (obs[:24] = qpos[:24])."""
    obs = np.asarray(obs, np.float64)
    hand = self._inner.data.qpos[:24]
    if obs.shape[-1] != 45 or not np.allclose(obs[:24], hand, atol=1e-4):
      raise ValueError('the observation does not match the state of the environment this '
                       'planner is bound to; bind it to the environment the collector steps')

  def _holding_plan(self) -> np.ndarray:
    """A plan that holds the hand's current joint angles (position targets = positions)."""
    inner = self._inner
    hold = (inner.data.qpos[:24] - inner.act_mean) / inner.act_rng
    return np.tile(np.clip(hold, -1.0, 1.0), (self.config.horizon, 1))

  def _sample(self, plan: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`num_samples` sequences [N, H, A]: the plan itself, then the plan plus AR(1) noise."""
    c = self.config
    rho = c.noise_correlation
    white = rng.standard_normal((c.num_samples - 1,) + plan.shape)
    noise = np.empty_like(white)
    noise[:, 0] = white[:, 0]
    for t in range(1, plan.shape[0]):
      noise[:, t] = rho * noise[:, t - 1] + np.sqrt(1.0 - rho ** 2) * white[:, t]
    samples = np.concatenate([plan[None], plan[None] + c.noise_scale * noise])
    return np.clip(samples, -1.0, 1.0)

  def _improve(self, plan: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One MPPI update: sample, roll out, score, and average the sequences by exp(score)."""
    samples = self._sample(plan, rng)
    scores = self.scores(samples)
    spread = scores.std()
    if spread < 1e-12:  # every sequence equally good: keep the unperturbed plan
      return samples[0]
    weights = np.exp((scores - scores.max()) / (self.config.temperature * spread))
    weights /= weights.sum()
    return np.einsum('n,nha->ha', weights, samples)

  def scores(self, samples: np.ndarray) -> np.ndarray:
    """The planning score of each action sequence [N, H, A]: dense reward plus the config's
    shaping terms, summed over the horizon, from the bound environment's current state (which is
    left untouched)."""
    predicted = self.predict(samples)
    c = self.config
    shaped = (predicted.reward + c.orientation_weight * predicted.similarity
              - c.distance_weight * predicted.distance)
    return shaped.sum(axis=1)

  def rewards(self, samples: np.ndarray) -> np.ndarray:
    """The dense reward [N, H] after each step of each action sequence [N, H, A]."""
    return self.predict(samples).reward

  def predict(self, samples: np.ndarray) -> 'Prediction':
    """Rolls out action sequences [N, H, A] from the bound environment's current state in the
    planning model; the dense reward, pen-to-goal distance and o.g after each step, [N, H]."""
    inner = self._inner
    mujoco.mj_getState(inner.model, inner.data, self._state, STATE_SPEC)
    if self._model is not inner.model:
      # The goal orientation lives in the model (body_quat), and changes at every reset.
      self._model.body_quat[:] = inner.model.body_quat
    controls = inner.act_mean + samples * inner.act_rng   # the env's own action scaling
    controls = np.repeat(controls, self._substeps, axis=1)  # held over the physics steps
    states, _ = rollout.rollout(self._model, self._rollout_data, self._state[None], controls,
                                initial_warmstart=inner.data.qacc_warmstart[None])
    # The environment reads positions from `data.xpos`/`site_xpos` after `mj_step`, which hold
    # the kinematics of the state *before* the last physics step of the frame (8 ms into a 10 ms
    # step); score the planning model's state nearest that time, so that with the exact physics
    # planned and paid rewards agree exactly.
    every = np.concatenate([np.broadcast_to(self._state, (len(states), 1, len(self._state))),
                            states], axis=1)  # [N, 1 + H * substeps, nstate], from the start
    first = self._scored_substep
    return self._reward_of_states(every[:, first:first + samples.shape[1] * self._substeps:
                                        self._substeps])

  def _reward_of_states(self, states: np.ndarray):
    """Dense reward, pen-to-goal distance and o.g of physics states [N, H, nstate]."""
    inner = self._inner
    goal_centre = inner.data.site_xpos[inner.eps_ball_site_id]
    goal_axis = (inner.data.site_xpos[inner.tar_t_site_id]
                 - inner.data.site_xpos[inner.tar_b_site_id]) / inner.tar_length
    nq = inner.model.nq
    centre, axis = self._kinematics.pose(states[..., 1:1 + nq])  # state = (time, qpos, ...)
    distance = np.linalg.norm(centre - goal_centre, axis=-1)
    similarity = axis @ goal_axis
    return Prediction(pen_dense_reward(distance, similarity, centre[..., 2]), distance,
                      similarity)


def measure(num_episodes: int, seed: int, config: Optional[PlannerConfig] = None,
            episode_length: Optional[int] = None, log=None) -> dict:
  """Success rate (the paper's pen rule) and seconds per step of the planner alone on
  `num_episodes` episodes whose reset seeds are `collector.episode_seed(seed, 0, i)`, the initial
  states `sim.experts.success_rate` uses, so the numbers compare with the DAPG expert's."""
  import time
  from sim import collector
  env = tasks_lib.make_env(PEN_TASK, seed, episode_length)
  expert = PenPlanner(config or PlannerConfig(), env)
  episodes, start = [], time.perf_counter()
  try:
    for i in range(num_episodes):
      episode = collector.run_episode(env, PEN_TASK, expert,
                                      seed=collector.episode_seed(seed, 0, i),
                                      episode_length=episode_length)
      episodes.append(episode)
      if log:
        log(f'episode {i}: success {episode.success}, success steps '
            f'{int(episode.success_flags.sum())}, return {episode.episode_return:.1f}')
  finally:
    env.close()
  seconds = time.perf_counter() - start
  steps = sum(len(e.actions) for e in episodes)
  return {'episodes': num_episodes, 'seed': seed,
          'success_rate': float(np.mean([e.success for e in episodes])),
          'successes': int(sum(e.success for e in episodes)),
          'mean_return': float(np.mean([e.episode_return for e in episodes])),
          'seconds_per_step': seconds / steps, 'seconds': seconds,
          'expert': expert.describe()}


def main(argv=None) -> None:
  """python -m sim.planner --episodes 20 --seed 1000: measures the MPPI planner alone."""
  import argparse
  import json
  parser = argparse.ArgumentParser(description=main.__doc__)
  parser.add_argument('--episodes', type=int, default=20)
  parser.add_argument('--seed', type=int, default=1000)
  parser.add_argument('--config', default='{}',
                      help='JSON overrides of PlannerConfig fields, e.g. {"num_samples": 32}')
  args = parser.parse_args(argv)
  config = PlannerConfig(**json.loads(args.config))
  print(json.dumps(measure(args.episodes, args.seed, config, log=print)))


if __name__ == '__main__':
  main()
