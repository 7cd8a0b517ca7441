"""The reference agent whose critic the value-based intervention model consults (Q_ref).

The RLIF authors trained a reference RL agent on the task's dense reward and let a simulated
expert intervene when that agent's critic rates the expert's action clearly above the policy's.
Ours is the project's own learner (`trainer.rlpd_agent.RlpdAgent`, fed by the trainer's
`MixedReplay`) trained offline on the dense reward, on transitions from the task's expert at
several Gaussian noise levels (`NoisyExpert`): the noise spreads the actions around the expert's,
so the critic sees both good and worse actions in the same states, which is what Eq. A.2 compares.

The trained agent is cached under `cache_dir/<task>-<key>/` (a TF checkpoint plus `spec.json`);
`key` hashes the spec and the expert, so a changed recipe trains a new agent and an unchanged one
is reused by every run that asks for it. One process trains a given agent: the others that ask for
it meanwhile (a grid's walkers starting together) wait on a flock on `<task>-<key>.lock` and then
reuse it, where each would otherwise spend the ~20 minutes of training it again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from sim import collector
from sim import experts as experts_lib
from sim import tasks as tasks_lib


@dataclasses.dataclass(frozen=True)
class ReferenceSpec:
  """How the reference agent is made. Rewards are multiplied by `reward_scale` (pen's dense
  reward reaches ~50 per step; scaled it keeps Q in a range the default learning rates handle)."""
  noise_scales: tuple = (0.0, 0.25, 0.5, 0.75, 1.0)
  episodes_per_level: int = 10
  num_updates: int = 5000
  batch_size: int = 256
  reward_scale: float = 0.1
  learner_settings: tuple = (('num_critics', 10), ('num_min_critics', 2),
                             ('critic_hidden', (256, 256)), ('actor_hidden', (256, 256)),
                             ('gamma', 0.99))
  seed: int = 0
  episode_length: Optional[int] = None  # None: the task's (tests shorten it)

  @classmethod
  def for_task(cls, task, **overrides) -> 'ReferenceSpec':
    """The default recipe with noise levels fitted to `task`'s expert: five evenly spaced scales
    from 0 to 4/3 of its calibrated ~10% level, so the data spans the expert, the benchmark's
    degraded experts and somewhat worse (pen: 0, 0.25, ..., 1.0, the class default)."""
    top = 4 / 3 * experts_lib.calibrated_noise(task, '10')
    scales = tuple(round(float(s), 4) for s in np.linspace(0.0, top, 5))
    return cls(**{'noise_scales': scales, **overrides})

  def key(self, expert_describe: dict) -> str:
    blob = json.dumps({'spec': dataclasses.asdict(self), 'expert': expert_describe},
                      sort_keys=True, default=list)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def dense_reward_transitions(task, expert, spec: ReferenceSpec) -> dict:
  """Transitions (pairing.FIELDS) of expert episodes at every noise level, with the task's dense
  reward times `spec.reward_scale`. Episodes end by truncation, so discounts are 1 except into a
  true terminal state."""
  from trainer import pairing
  parts = []
  for level, scale in enumerate(spec.noise_scales):
    actor = experts_lib.NoisyExpert(expert, float(scale))
    # Level l's episodes start from episode_seed(seed + 7919, l, i): held apart from the rounds.
    for _, episode in collector.run_episodes(task, actor, spec.episodes_per_level,
                                             spec.seed + 7919, level, spec.episode_length):
      T = len(episode.actions)
      discount = np.ones(T, np.float32)
      discount[-1] = 0.0 if episode.terminated else 1.0
      parts.append({
          'observation': episode.observations[:-1],
          'action': episode.actions,
          'reward': (episode.rewards * spec.reward_scale).astype(np.float32),
          'discount': discount,
          'next_observation': episode.observations[1:],
          'is_intervention': np.zeros(T, bool),
          'expert_action': np.full_like(episode.actions, np.nan, dtype=np.float32),
      })
  return pairing.concatenate(parts)


class ReferenceAgent:
  """A trained `RlpdAgent` seen through its critic: `q(obs [N, D], actions [N, A]) -> [N]`, the
  mean over the ensemble (the value Eq. A.2 compares)."""

  def __init__(self, agent, directory: str, spec: ReferenceSpec, stats: dict):
    import tensorflow as tf
    self.agent, self.directory, self.spec, self.stats = agent, directory, spec, stats

    @tf.function(reduce_retracing=True)
    def q(observation, action):
      return tf.reduce_mean(agent.critic_network((observation, action))[0], axis=0)

    self._q = q

  def q(self, observations, actions) -> np.ndarray:
    import tensorflow as tf
    return self._q(tf.constant(np.asarray(observations, np.float32)),
                   tf.constant(np.asarray(actions, np.float32))).numpy()

  __call__ = q


def _make_agent(task, spec: ReferenceSpec):
  from trainer.rlpd_agent import RlpdAgent
  settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.learner_settings}
  return RlpdAgent.from_dims(task.observation_dim, task.action_dim, seed=spec.seed, **settings)


def ranking_accuracy(reference: Callable, task, expert, noise_scale: float = 0.5,
                     num_episodes: int = 3, seed: int = 12345,
                     episode_length: Optional[int] = None) -> float:
  """How often Q_ref rates the expert's action above a noisy version of it, over the states of
  `num_episodes` held-out expert episodes: 0.5 is chance, 1.0 a perfect ranking. The number that
  says whether the value-based intervention model has something to go on."""
  rng = np.random.default_rng(seed)
  wins, total = 0, 0
  for _, episode in collector.run_episodes(task, expert, num_episodes, seed,
                                           episode_length=episode_length):
    obs = episode.observations[:-1]
    good = episode.actions
    bad = np.clip(good + noise_scale * rng.standard_normal(good.shape), -1, 1)
    wins += int(np.sum(reference(obs, good) > reference(obs, bad)))
    total += len(obs)
  return wins / max(total, 1)


@contextlib.contextmanager
def _one_trainer(directory: str, log: Callable[[str], None]) -> Iterator[None]:
  """Holds `directory`.lock (`trainer.run_lock.exclusive`) for the block, saying so if it must
  wait for another process. A URL (gs://...) has no flock: there the block runs unguarded."""
  if '://' in directory:
    yield
    return
  from trainer import run_lock
  os.makedirs(os.path.dirname(directory) or '.', exist_ok=True)
  waiting = lambda: log(f'reference agent: waiting for another process that is training '
                        f'{directory} ...')
  with run_lock.exclusive(f'{directory}.lock', on_wait=waiting):
    yield


def load_or_train(task, expert, spec: ReferenceSpec, cache_dir: str,
                  log: Callable[[str], None] = print) -> ReferenceAgent:
  """The cached reference agent for (task, expert, spec), training it first if absent; while
  another process trains it, waits for that one and reuses its agent.

  Training writes into a temporary folder renamed into place at the end, so an interrupted run
  leaves no half-trained agent behind for the next run to reuse.
  """
  task = tasks_lib.get_task(task)
  describe = expert.describe() if hasattr(expert, 'describe') else {'repr': repr(expert)}
  directory = os.path.join(cache_dir, f'{task.name}-{spec.key(describe)}')
  with _one_trainer(directory, log):
    return _load_or_train(task, expert, spec, directory, describe, log)


def _load_or_train(task, expert, spec: ReferenceSpec, directory: str, describe: dict,
                   log: Callable[[str], None]) -> ReferenceAgent:
  import tensorflow as tf
  from trainer import replay as replay_lib
  agent = _make_agent(task, spec)
  checkpoint = tf.train.Checkpoint(agent=agent)
  if tf.io.gfile.exists(os.path.join(directory, 'spec.json')):
    with tf.io.gfile.GFile(os.path.join(directory, 'spec.json')) as f:
      stats = json.load(f)['stats']
    checkpoint.read(os.path.join(directory, 'agent')).assert_existing_objects_matched()
    log(f'reference agent: reusing {directory}')
    return ReferenceAgent(agent, directory, spec, stats)

  start = time.perf_counter()
  log(f'reference agent: collecting {len(spec.noise_scales)} x {spec.episodes_per_level} '
      f'{task.name} episodes with the dense reward ...')
  transitions = dense_reward_transitions(task, expert, spec)
  collect_seconds = time.perf_counter() - start
  replay = replay_lib.MixedReplay(task.observation_dim, task.action_dim, prior_fraction=1.0,
                                  seed=spec.seed)
  replay.add(transitions, prior=True)
  log(f'reference agent: {len(transitions["reward"])} transitions; training '
      f'{spec.num_updates} updates ...')
  metrics = {}
  for _ in range(spec.num_updates):
    info = agent.train(replay.sample(spec.batch_size, agent.critic_updates_per_step))
    metrics = info.extra
  stats = {
      'transitions': int(len(transitions['reward'])),
      'collect_seconds': round(collect_seconds, 1),
      'train_seconds': round(time.perf_counter() - start - collect_seconds, 1),
      'final_metrics': {k: float(v) for k, v in metrics.items()},
  }
  reference = ReferenceAgent(agent, directory, spec, stats)
  stats['ranking_accuracy'] = ranking_accuracy(reference, task, expert,
                                               episode_length=spec.episode_length)
  tmp = f'{directory}.{os.getpid()}.tmp'  # per process (a URL's cache has no lock)
  if tf.io.gfile.exists(tmp):
    tf.io.gfile.rmtree(tmp)
  tf.io.gfile.makedirs(tmp)
  checkpoint.write(os.path.join(tmp, 'agent'))
  with tf.io.gfile.GFile(os.path.join(tmp, 'spec.json'), 'w') as f:
    json.dump({'task': task.name, 'expert': describe, 'spec': dataclasses.asdict(spec),
               'stats': stats}, f, indent=1, default=list)
  if tf.io.gfile.exists(directory):
    tf.io.gfile.rmtree(directory)  # a cache load_or_train could not use
  try:
    tf.io.gfile.rename(tmp, directory)
  except (tf.errors.OpError, OSError):
    if not tf.io.gfile.exists(os.path.join(directory, 'spec.json')):
      raise
    tf.io.gfile.rmtree(tmp)  # another process stored the same agent in the meantime
  log(f'reference agent: trained in {stats["train_seconds"]} s, ranking accuracy '
      f'{stats["ranking_accuracy"]:.2f} (expert vs noisy action; 0.5 = chance) -> {directory}')
  return reference
