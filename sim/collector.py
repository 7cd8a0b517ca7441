"""Deploys a policy under a simulated expert and writes each episode as a raw log (format v1;
v2 with a camera).

At every step the policy proposes `a_policy`, the expert proposes `a_expert`, the intervention
model decides who is in control, and the environment executes the controller's action. Both
proposals are clipped to the action box [-1, 1] before anything else sees them: the Adroit
environments clip anyway, and clipping here makes the logged action the one that was executed.
Episodes end by truncation (the Adroit tasks have no terminal states), so files carry
`terminated=False`.

With a camera (`camera=(height, width)` or a `tasks.CameraSpec`) each step's frame of the state
reached is rendered and logged beside the state: observations become {'state': [T+1, D] float32,
'camera': [T+1, H, W, 3] uint8} and files are raw format v2. The experts and the intervention
model act on the state vector alone (they need the state). A policy acts on the state too, unless
it takes dict observations (`observation_fields`: the pixel learner's exported policies, trained on
such a dataset): it then gets {'state': the state, 'camera': the frame of the same step}, the
observation it was trained on (`acting_observations`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Optional, Union

import numpy as np

from pipeline import schema as sc
from sim import lookahead
from sim import tasks as tasks_lib

# Episodes stepped side by side by `run_episodes` (a round's 20 in one batch): the policy, the
# expert and the reference critic run once per step for all of them.
EPISODES_TOGETHER = 32
# Dict observation fields (raw format v2) of episodes collected with a camera.
STATE_FIELD = sc.STATE_FIELD
CAMERA_FIELD = 'camera'


@dataclasses.dataclass
class Episode:
  observations: Union[np.ndarray, dict]  # [T+1, D]; with a camera {STATE_FIELD: [T+1, D],
  #                                        CAMERA_FIELD: [T+1, H, W, 3] uint8}
  actions: np.ndarray                 # [T, A] executed
  rewards: np.ndarray                 # [T] the environment's dense reward
  success_flags: np.ndarray           # [T] info['success'] after each step
  success: bool                       # by the task's rule
  terminated: bool
  policy_actions: Optional[np.ndarray] = None  # [T, A]; None for expert-only episodes
  interventions: Optional[np.ndarray] = None   # [T] bool; None for expert-only episodes
  expert_actions: Optional[np.ndarray] = None  # [T, A] the expert's proposal at every step of
  #                                              a policy episode (DAgger's labels)

  @property
  def states(self) -> np.ndarray:
    """[T+1, D] the state vectors, with or without a camera."""
    if isinstance(self.observations, dict):
      return self.observations[STATE_FIELD]
    return self.observations

  @property
  def episode_return(self) -> float:
    return float(np.sum(self.rewards))


def episode_seed(seed: int, round_index: int, index: int) -> int:
  """The reset seed of episode `index` of a round: reproducible per episode, distinct across
  (seed, round, index)."""
  return int(np.random.SeedSequence([seed, round_index, index]).generate_state(1)[0])


def episode_id(task_name: str, round_index: int, seed: int, index: int) -> str:
  """Stable, path-free id; file names are `<episode_id>.npz`."""
  return f'{task_name}-r{round_index}-s{seed}-{index:05d}'


def bound(expert, env):
  """`expert` ready to act in `env`: experts that plan on the simulator state (`sim.planner`)
  have `bind(env)` and are bound to the environment the collector steps; others are returned
  as they are."""
  return expert.bind(env) if hasattr(expert, 'bind') else expert


def run_episode(env, task, expert, policy: Optional[Callable] = None, intervention=None,
                seed: int = 0, episode_length: Optional[int] = None) -> Episode:
  """One episode. Without `policy` the expert acts alone (no intervention flags are recorded).

  `expert.act(obs, rng)` gets a Generator seeded from `seed` (used by noisy experts only).
  """
  return run_together([env], task, [expert], [seed], policy, intervention, episode_length)[0]


def run_together(envs, task, experts, seeds, policy: Optional[Callable] = None,
                 intervention=None, episode_length: Optional[int] = None,
                 on_step: Optional[Callable[[int], None]] = None) -> list[Episode]:
  """Episodes side by side, episode i in `envs[i]` with `experts[i]` (bound to it), reset with
  `seeds[i]`: at each step the policy, the expert and the intervention model see every running
  episode as one batch, then each environment steps. Episode i is the episode `run_episode`
  gives alone with the same seed: its expert draws from `default_rng(seeds[i])`, the
  intervention model's stream is per episode (`InterventionModel.reset`), and the batch only
  changes how often the networks are called. Bit for bit where the networks give each row what
  they give it alone: the experts do (`experts.DeterministicExpert.act_all`), so expert-only
  rounds do not depend on the batch; a TensorFlow policy or critic called on a batch may round a
  row differently in the last bits, which the simulation can amplify over an episode, so policy
  rounds are reproducible for a given batch size (`run_episodes`' `together`). `on_step(n)` is
  told after each step how many episodes took it (a progress bar). Environments made with a
  camera (`tasks.make_env(..., camera=...)`) give episodes with dict observations (state and
  frames); the experts see the states only, and so does the policy unless it takes dict
  observations (`acting_observations`).
  """
  task = tasks_lib.get_task(task)
  length = episode_length or task.episode_length
  low, high = envs[0].action_space.low, envs[0].action_space.high
  n = len(envs)
  rngs = [np.random.default_rng(seed) for seed in seeds]
  resets = [env.reset(seed=seed) for env, seed in zip(envs, seeds)]
  obs = np.stack([o for o, _ in resets])
  frames = [[info[tasks_lib.CAMERA_INFO_KEY]] if tasks_lib.CAMERA_INFO_KEY in info else None
            for _, info in resets]
  if intervention is not None:
    intervention.reset(n)
  observations = [[o.copy()] for o in obs]
  # Per episode: executed actions, rewards, success flags; the policy's proposals, who was in
  # control and the expert's labels (policy episodes only).
  actions, rewards, successes, proposed, flags, labels = ([[] for _ in range(n)]
                                                          for _ in range(6))
  terminated = [False] * n
  running = np.arange(n)
  for _ in range(length):
    current = obs[running]
    current_frames = (None if frames[0] is None else
                      np.stack([frames[i][-1] for i in running]))
    expert_action = np.clip(
        act_together([experts[i] for i in running],
                     acting_observations(experts[0], current, current_frames),
                     [rngs[i] for i in running]), low, high)
    if policy is None:
      action = expert_action
    else:
      policy_action = np.clip(
          policy_actions(policy, acting_observations(policy, current, current_frames))
          .astype(np.float64).reshape(expert_action.shape), low, high)
      looking_ahead = (
          {'env_states': [lookahead.snapshot(envs[i]) for i in running], 'policy': policy}
          if intervention.needs_simulator else {})
      in_control = intervention.decide_all(current, policy_action, expert_action, running,
                                           **looking_ahead)
      action = np.where(in_control[:, None], expert_action, policy_action)
    finished = []
    for j, i in enumerate(running):
      if policy is not None:
        proposed[i].append(policy_action[j])
        flags[i].append(bool(in_control[j]))
        labels[i].append(expert_action[j])
      next_obs, reward, terminated[i], truncated, info = envs[i].step(action[j])
      obs[i] = next_obs
      observations[i].append(next_obs)
      if frames[i] is not None:
        frames[i].append(info[tasks_lib.CAMERA_INFO_KEY])
      actions[i].append(action[j])
      rewards[i].append(reward)
      successes[i].append(bool(info.get('success', False)))
      if terminated[i] or truncated:
        finished.append(i)
    if on_step is not None:
      on_step(len(running))
    running = np.setdiff1d(running, finished)
    if not running.size:
      break
  episodes = []
  for i in range(n):
    flags_i = np.array(successes[i], bool)
    states = np.array(observations[i], np.float32)
    episodes.append(Episode(
        observations=(states if frames[i] is None else
                      {STATE_FIELD: states, CAMERA_FIELD: np.stack(frames[i])}),
        actions=np.array(actions[i], np.float32),
        rewards=np.array(rewards[i], np.float64),
        success_flags=flags_i,
        success=task.is_success(flags_i),
        terminated=bool(terminated[i]),
        policy_actions=np.array(proposed[i], np.float32) if policy is not None else None,
        interventions=np.array(flags[i], bool) if policy is not None else None,
        expert_actions=np.array(labels[i], np.float32) if policy is not None else None))
  return episodes


def act_together(experts, observations, rngs) -> np.ndarray:
  """The actions [N, A] of `experts[i]` at `observations[i]`: one batched call where all rows
  share one expert that acts on batches (`act_all`), else one call per row."""
  first = experts[0]
  if hasattr(first, 'act_all') and all(e is first for e in experts):
    return np.asarray(first.act_all(observations, rngs), np.float64)
  return np.stack([np.asarray(e.act(o, r), np.float64)
                   for e, o, r in zip(experts, observations, rngs)])


def acting_observations(actor, states: np.ndarray, frames: Optional[np.ndarray]):
  """What `actor` (a policy or an expert) acts on for a batch of steps: the states [N, D]; or,
  when it takes dict observations (its `observation_fields`, as a pixel policy loaded by
  `load_saved_policy` has), {STATE_FIELD: states, CAMERA_FIELD: frames [N, H, W, 3]}, the
  fields a camera episode logs."""
  fields = getattr(actor, 'observation_fields', None)
  if fields is None:
    return states
  known = {STATE_FIELD: states, CAMERA_FIELD: frames}
  unknown = sorted(set(fields) - set(known))
  if unknown:
    raise ValueError(f'the policy takes observation fields {unknown} that the simulator does not '
                     f'make (it makes {sorted(known)})')
  if CAMERA_FIELD in fields:
    if frames is None:
      raise ValueError('the policy takes camera images: make the environments with a camera '
                       f'(camera={tuple(fields[CAMERA_FIELD].shape[:2])})')
    if frames.shape[1:] != tuple(fields[CAMERA_FIELD].shape):
      raise ValueError(f'the policy takes {CAMERA_FIELD} images of shape '
                       f'{tuple(fields[CAMERA_FIELD].shape)}, the camera renders '
                       f'{frames.shape[1:]}')
  return {name: known[name] for name in fields}


def policy_actions(policy: Callable, observations) -> np.ndarray:
  """`policy` on a batch of observations ([N, D], or a dict of [N, ...] fields) -> [N, A]: one
  call if the policy takes batches (`policy.takes_batches`, e.g. `load_saved_policy`'s), else
  one call per row."""
  if getattr(policy, 'takes_batches', False):
    return np.asarray(policy(observations))
  if isinstance(observations, dict):
    n = len(next(iter(observations.values())))
    return np.stack([np.asarray(policy({k: v[i] for k, v in observations.items()}))
                     for i in range(n)])
  return np.stack([np.asarray(policy(o)) for o in observations])


def _progress(steps: int, progress: bool, label: str):
  """A bar over env steps (the episodes of a batch advance together)."""
  if not progress:
    return None
  from tqdm import tqdm
  return tqdm(total=steps, desc=label, unit='step', dynamic_ncols=True)


def _write(path: str, episode: Episode, metadata: dict, expert_labels: bool = False) -> None:
  from pipeline import raw_writer
  optional = {'terminated': episode.terminated}
  if episode.interventions is not None:
    optional['interventions'] = episode.interventions
    optional['policy_actions'] = episode.policy_actions
  if expert_labels and episode.expert_actions is not None:
    optional['expert_actions'] = episode.expert_actions
  raw_writer.write_npz_episode(path, episode.observations, episode.actions, metadata, **optional)


def _summary(episodes: list[Episode], paths: list[str]) -> dict:
  steps = sum(len(e.actions) for e in episodes)
  expert_steps = sum(int(np.sum(e.interventions)) for e in episodes
                     if e.interventions is not None)
  takeovers = sum(int(np.sum(e.interventions[1:] & ~e.interventions[:-1]) + e.interventions[0])
                  for e in episodes if e.interventions is not None and len(e.interventions))
  return {
      'episodes': len(episodes),
      'steps': steps,
      'success_rate': float(np.mean([e.success for e in episodes])) if episodes else 0.0,
      'mean_return': float(np.mean([e.episode_return for e in episodes])) if episodes else 0.0,
      'intervention_rate': expert_steps / steps if steps else 0.0,
      'takeovers': takeovers,
      'paths': paths,
  }


def collect_round(task, policy: Callable, expert, intervention_model, num_episodes: int,
                  out_dir: str, seed: int, round_index: int,
                  episode_length: Optional[int] = None, progress: bool = False,
                  expert_labels: bool = False, camera=None) -> dict:
  """Runs `num_episodes` policy episodes under expert intervention and writes one raw npz per
  episode into `out_dir` (raw format v2 with the frames of `camera`, (height, width) or a
  `tasks.CameraSpec`, when given). Returns a summary: episodes, steps, success_rate,
  mean_return, intervention_rate (share of steps under expert control), takeovers, paths, and
  the model's `intervention_decisions` in this round (its `counts`: decisions, takeovers and,
  for a model with a rule, the flagged decisions and flagged takeovers).

  `expert_labels` also logs the expert's proposal at every step (`expert_actions`, DAgger's
  labels); off for RLIF and HG-DAgger, whose operators only decide when to take over.
  """
  return _collect(task, expert, num_episodes, out_dir, seed, round_index, episode_length,
                  progress, policy, intervention_model, expert_labels, camera)


def expert_demonstrations(task, expert, num_episodes: int, out_dir: str, seed: int,
                          episode_length: Optional[int] = None, round_index: int = 0,
                          progress: bool = False, camera=None) -> dict:
  """Prior data: expert-only episodes, written without intervention flags (the pipeline gives
  them all-zero rewards). Round 0 holds the initial demonstrations; the BC baseline collects
  later rounds the same way, from the same initial states as `collect_round`'s episodes of that
  round. Same summary as `collect_round`."""
  return _collect(task, expert, num_episodes, out_dir, seed, round_index, episode_length,
                  progress, camera=camera)


def run_episodes(task, expert, num_episodes: int, seed: int, round_index: int = 0,
                 episode_length: Optional[int] = None, policy: Optional[Callable] = None,
                 intervention_model=None, progress: bool = False,
                 together: int = EPISODES_TOGETHER, camera=None):
  """Yields (i, Episode) for episodes i = 0..num_episodes-1 of a round, episode i starting from
  `reset(seed=episode_seed(seed, round_index, i))`: the same initial states for every expert or
  policy given the same (seed, round_index). Up to `together` episodes run side by side
  (`run_together`), each in its own environment with `expert` bound to it; the environments are
  closed when the generator ends. With `camera` ((height, width) or a `tasks.CameraSpec`) the
  episodes' observations hold the rendered frames too (`run_together`)."""
  task = tasks_lib.get_task(task)
  together = max(1, min(together, num_episodes))
  envs = [tasks_lib.make_env(task, seed, episode_length, camera=camera)
          for _ in range(together)]
  experts = [bound(expert, env) for env in envs]
  bar = _progress(num_episodes * (episode_length or task.episode_length), progress,
                  f'{task.name} round {round_index}, {num_episodes} episodes')
  try:
    for first in range(0, num_episodes, together):
      indices = range(first, min(first + together, num_episodes))
      episodes = run_together(envs[:len(indices)], task, experts[:len(indices)],
                              [episode_seed(seed, round_index, i) for i in indices], policy,
                              intervention_model, episode_length,
                              on_step=bar.update if bar is not None else None)
      yield from zip(indices, episodes)
  finally:
    if bar is not None:
      bar.close()
    for env in envs:
      env.close()


def _collect(task, expert, num_episodes, out_dir, seed, round_index, episode_length, progress,
             policy=None, intervention_model=None, expert_labels=False, camera=None) -> dict:
  """Writes the episodes of `run_episodes` as raw npz files, with or without a policy."""
  import tensorflow as tf
  task = tasks_lib.get_task(task)
  tf.io.gfile.makedirs(out_dir)
  episodes, paths = [], []
  counts_before = dict(intervention_model.counts) if intervention_model is not None else None
  for i, episode in run_episodes(task, expert, num_episodes, seed, round_index, episode_length,
                                 policy, intervention_model, progress, camera=camera):
    if policy is None:
      eid = (f'{task.name}-demo-s{seed}-{i:05d}' if round_index == 0
             else f'{task.name}-demo-r{round_index}-s{seed}-{i:05d}')
      origin = {'source': 'expert_demonstration'}
    else:
      eid = episode_id(task.name, round_index, seed, i)
      origin = {'intervention_model': intervention_model.describe()}
    metadata = {
        'episode_id': eid, 'task': task.name, 'round': round_index, 'seed': seed, **origin,
        'expert': expert.describe() if hasattr(expert, 'describe') else repr(expert),
        'success': episode.success, 'return': episode.episode_return,
    }
    if camera is not None:
      metadata['camera'] = dataclasses.asdict(tasks_lib.camera_spec(camera))
    path = os.path.join(out_dir, eid + '.npz')
    _write(path, episode, metadata, expert_labels)
    episodes.append(episode)
    paths.append(path)
  summary = _summary(episodes, paths)
  if counts_before is not None:  # what the operator decided in this round (sim/intervention.py)
    summary['intervention_decisions'] = {
        k: v - counts_before[k] for k, v in intervention_model.counts.items()}
  return summary


_OBSERVATION_INPUT = '0/observation'  # the action signature's observation (PolicySaver's names)


def load_saved_policy(path: str) -> Callable[[np.ndarray], np.ndarray]:
  """A TF-Agents PolicySaver SavedModel as a callable obs -> action [A], or a batch -> [N, A]
  (numpy).

  A flat policy takes obs [D] or [N, D]. A policy trained on dict observations (the pixel
  learner) takes a dict {name: value}, one step ({'state': [D], 'camera': [H, W, C] uint8}) or a
  batch ([N, ...] per field); its fields, with their per-step shapes and dtypes, are
  `policy.observation_fields` (None for a flat policy). Calls the exported `action` signature
  with step_type 0 (FIRST), reward 0 and discount 1; the actor policies here are stateless, so
  the step type does not change the action.
  """
  import tensorflow as tf
  import tensorflow_probability  # noqa: F401  registers the distribution ops the graph uses
  saved = tf.saved_model.load(path)
  action_signature = saved.signatures['action']
  inputs = {spec.name: spec for spec in action_signature.structured_input_signature[1].values()}
  prefix = _OBSERVATION_INPUT + '/'
  fields = {name[len(prefix):]: tf.TensorSpec(spec.shape[1:], spec.dtype)
            for name, spec in inputs.items() if name.startswith(prefix)} or None

  def policy(obs) -> np.ndarray:
    if fields is None:
      obs = np.asarray(obs, np.float32)
      single = obs.ndim == 1
      observation = {_OBSERVATION_INPUT: tf.constant(obs[None] if single else obs)}
    else:
      missing = sorted(set(fields) - set(obs))
      if missing:
        raise ValueError(f'the policy takes the observation fields {sorted(fields)}; '
                         f'missing {missing}')
      values = {name: np.asarray(obs[name], spec.dtype.as_numpy_dtype)
                for name, spec in fields.items()}
      first = sorted(fields)[0]
      single = values[first].ndim == fields[first].shape.rank
      observation = {prefix + name: tf.constant(value[None] if single else value)
                     for name, value in values.items()}
    n = int(next(iter(observation.values())).shape[0])
    out = action_signature(**{'0/step_type': tf.zeros([n], tf.int32),
                              '0/reward': tf.zeros([n], tf.float32),
                              '0/discount': tf.ones([n], tf.float32), **observation})
    actions = out['action'].numpy()
    return actions[0] if single else actions

  policy.takes_batches = True
  policy.observation_fields = fields
  policy.saved_model = saved  # keeps the loaded object (and its variables) alive
  return policy


def exploring(policy: Callable, sigma: float, rng: np.random.Generator) -> Callable:
  """`policy` with N(0, sigma^2) added to every action dimension of every action it proposes
  (the environment clips): the deployed policy acts deterministically (tanh(mean)), so without
  this a loop's policy explores only through the operator's takeovers. The same observation
  fields and batching as `policy`; draws from `rng` in call order."""
  def noisy(observations) -> np.ndarray:
    actions = np.asarray(policy(observations), np.float64)
    return actions + sigma * rng.standard_normal(actions.shape)

  noisy.takes_batches = getattr(policy, 'takes_batches', False)
  noisy.observation_fields = getattr(policy, 'observation_fields', None)
  return noisy


def policy_camera(policy) -> Optional[tuple[int, int]]:
  """(height, width) of the camera images a policy takes (`observation_fields`); None for a
  policy that takes none."""
  fields = getattr(policy, 'observation_fields', None)
  if not fields or CAMERA_FIELD not in fields:
    return None
  height, width = fields[CAMERA_FIELD].shape[:2]
  return int(height), int(width)
