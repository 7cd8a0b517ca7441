"""Expert policies: the DAPG MLP experts of the Adroit tasks, and deliberately worse versions.

An expert, as the collector uses it, is any object with `act(obs, rng) -> action`. `MlpExpert`
acts with its mean action (deterministic, `rng` unused). Two degradations make suboptimal experts
of any expert (`DEGRADATIONS`), each with one scale:
- `NoisyExpert` adds zero-mean Gaussian action noise at every step. Behaviour cloning by squared
  error fits the mean of the logged actions, which are clipped to the box: the undegraded
  expert's action where it is well inside, pulled toward 0 where it is near the edge
  (`NoiseAveragedExpert`). A BC policy can end well above the noisy expert it learned from, up
  to that mean's success (sim/EXPERTS.md).
- `DistortedExpert` sends a fixed, state-dependent distortion of the expert's action, as a
  miscalibrated teleoperation retargeting would: the same situation always gets the same wrong
  action. Nothing averages it out; imitation reproduces it.
`calibrate` finds the scale that gives a target success rate.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math
import time
import zipfile
from typing import Optional, Sequence

import numpy as np

from sim import collector
from sim import tasks as tasks_lib

# (key, shape in terms of D = observation dim, H = hidden width, A = action dim)
EXPERT_ARRAYS = (
    ('in_shift', ('D',)), ('in_scale', ('D',)),
    ('w0', ('D', 'H')), ('b0', ('H',)),
    ('w1', ('H', 'H')), ('b1', ('H',)),
    ('w2', ('H', 'A')), ('b2', ('A',)),
    ('out_shift', ('A',)), ('out_scale', ('A',)),
    ('log_std', ('A',)),
)
INPUT_SCALE_EPS = 1e-8


# The calibrated suboptimal experts: task -> paper level name ('90', '40', '10' for ~90/40/10%
# success) -> `NoisyExpert` noise scale on the task's shipped DAPG expert. Measured with
# `python -m sim.experts` (sim/EXPERTS.md has the runs, the levels tried and the check rates).
CALIBRATED_NOISE = {
    'pen': {'90': 0.0, '40': 0.5625, '10': 0.75},
    'door': {'90': 0.0938, '40': 0.2188, '10': 0.2969},
    'hammer': {'90': 0.1875, '40': 0.375, '10': 0.5},
    'relocate': {'90': 0.0938, '40': 0.1719, '10': 0.2188},
}


# The same for `DistortedExpert` (seed 0) on the same shipped experts (sim/EXPERTS.md, "A
# degradation imitation cannot average out").
CALIBRATED_DISTORTION = {
    'pen': {'90': 0.0, '40': 0.6562, '10': 0.8438},
    'door': {'90': 0.0938, '40': 0.1758, '10': 0.2109},
    'hammer': {'90': 0.1289, '40': 0.1641, '10': 0.1992},
    'relocate': {'90': 0.0469, '40': 0.1055, '10': 0.1406},
}

CALIBRATED = {'noise': CALIBRATED_NOISE, 'distortion': CALIBRATED_DISTORTION}


def calibrated_scale(task, level: str, degradation: str = 'noise') -> float:
  """The scale of `task`'s calibrated ~`level`% expert under `degradation` (CALIBRATED)."""
  if degradation not in CALIBRATED:
    raise KeyError(f'unknown degradation {degradation!r}; known: {sorted(CALIBRATED)}')
  name = tasks_lib.get_task(task).name
  levels = CALIBRATED[degradation].get(name, {})
  if level not in levels:
    raise KeyError(f'no calibrated ~{level}% {degradation} expert for {name!r}; calibrated: '
                   f'{sorted(levels)}')
  return levels[level]


def calibrated_noise(task, level: str) -> float:
  """The noise scale of `task`'s calibrated ~`level`% expert (CALIBRATED_NOISE)."""
  return calibrated_scale(task, level, 'noise')


class ExpertFileError(ValueError):
  """An expert file that is not in the documented npz format."""


def _open(path: str):
  """Local paths with plain `open`; URLs (gs://, ...) through gfile, which imports TensorFlow."""
  if '://' not in str(path):
    return open(path, 'rb')
  import tensorflow as tf
  with tf.io.gfile.GFile(path, 'rb') as f:
    return io.BytesIO(f.read())


def read_npz(path: str, error: type, what: str, expected) -> dict:
  """{name: array} of an npz archive at `path` (local, or a URL through gfile), no pickles;
  `error` says what is wrong with a file that is not one (`what`: 'expert', 'actor'; `expected`:
  the arrays it should hold, for the message about a single .npy)."""
  try:
    with _open(path) as f:
      data = np.load(f, allow_pickle=False)
      if not isinstance(data, np.lib.npyio.NpzFile):
        raise error(f'{path}: a single .npy array, expected an npz archive of {expected}')
      with data:
        return {k: data[k] for k in data.files}
  except error:
    raise
  except (OSError, ValueError, zipfile.BadZipFile) as e:
    raise error(f'{path}: not a readable npz {what} file ({e})') from e


def _check_arrays(arrays: dict, source: str) -> dict:
  """Checks keys, ranks, consistent sizes and finiteness; returns float64 copies."""
  missing = [k for k, _ in EXPERT_ARRAYS if k not in arrays]
  if missing:
    raise ExpertFileError(f'{source}: missing arrays {missing} '
                          f'(expected {[k for k, _ in EXPERT_ARRAYS]})')
  sizes = {}
  checked = {}
  for key, dims in EXPERT_ARRAYS:
    value = np.asarray(arrays[key])
    if value.dtype.kind not in 'fiu' or value.ndim != len(dims):
      raise ExpertFileError(f'{source}: {key} must be a numeric array of rank {len(dims)} '
                            f'{dims}, got dtype {value.dtype} shape {value.shape}')
    for name, size in zip(dims, value.shape):
      if sizes.setdefault(name, size) != size:
        raise ExpertFileError(f'{source}: {key} has shape {value.shape}, inconsistent with '
                              f'{name}={sizes[name]} implied by the arrays before it '
                              f'(layout {dims})')
    if not np.all(np.isfinite(value)):
      raise ExpertFileError(f'{source}: {key} holds NaN or inf')
    checked[key] = value.astype(np.float64)
  return checked


class DeterministicExpert:
  """The collector's interface (`act`, `act_all`) for an expert whose action is a function of
  the observation alone, `self.action(obs)` on [D] or [N, D]."""

  def act(self, obs, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """The deterministic action (`rng` is not used)."""
    return self.action(obs)

  def act_all(self, observations, rngs) -> np.ndarray:
    """`act` on a batch [N, D] (`collector.run_together`), row by row, so that every row's
    action is bit for bit the one `act` gives alone: BLAS rounds a batched matmul's rows
    differently (~1e-15), the hand's contacts amplify that within an episode, and 50 pen
    demonstrations collected 10 at a time succeeded 36% where one at a time gave 38% (the
    benchmark's round 0 had both). The experts are small MLPs: the loop costs microseconds
    beside a MuJoCo step. `rngs` are not used."""
    observations = np.asarray(observations)
    if observations.ndim != 2:
      raise ValueError(f'act_all takes a batch [N, D] of observations, got shape '
                       f'{observations.shape}')
    if not len(observations):
      return np.zeros((0, self.action_dim))
    return np.stack([self.action(o) for o in observations])

  def check_task(self, task, source: str, error: type) -> None:
    """Raises `error` when the expert's observation or action size is not `task`'s."""
    task = tasks_lib.get_task(task)
    if (self.observation_dim, self.action_dim) != (task.observation_dim, task.action_dim):
      raise error(f'{source}: expert dims (obs {self.observation_dim}, act {self.action_dim}) '
                  f'do not match task {task.name} (obs {task.observation_dim}, act '
                  f'{task.action_dim})')


@dataclasses.dataclass(frozen=True, eq=False)
class MlpExpert(DeterministicExpert):
  """A two-hidden-layer tanh MLP Gaussian policy with a state-independent standard deviation.

  mean(obs) = out_scale * (W2 tanh(W1 tanh(W0 x + b0) + b1) + b2) + out_shift, where
  x = (obs - in_shift) / (in_scale + 1e-8); std = exp(log_std). Works on one observation [D] or a
  batch [N, D].
  """
  params: dict
  name: str = 'expert'

  @classmethod
  def from_arrays(cls, arrays: dict, name: str = 'expert') -> 'MlpExpert':
    return cls(_check_arrays(arrays, name), name)

  @classmethod
  def load(cls, path: str, task=None) -> 'MlpExpert':
    """Loads an expert npz (no pickles); with `task`, also checks its dims against the task's."""
    arrays = read_npz(path, ExpertFileError, 'expert', [k for k, _ in EXPERT_ARRAYS])
    expert = cls.from_arrays(arrays, name=str(path).rsplit('/', 1)[-1])
    if task is not None:
      expert.check_task(task, path, ExpertFileError)
    return expert

  @property
  def observation_dim(self) -> int:
    return self.params['in_shift'].shape[0]

  @property
  def action_dim(self) -> int:
    return self.params['out_shift'].shape[0]

  @property
  def std(self) -> np.ndarray:
    return np.exp(self.params['log_std'])

  def action(self, obs) -> np.ndarray:
    """The deterministic action: the mean of the Gaussian policy."""
    p = self.params
    obs = np.asarray(obs, np.float64)
    if obs.shape[-1] != self.observation_dim:
      raise ValueError(f'observation has {obs.shape[-1]} entries, expert expects '
                       f'{self.observation_dim}')
    x = (obs - p['in_shift']) / (p['in_scale'] + INPUT_SCALE_EPS)
    h = np.tanh(x @ p['w0'] + p['b0'])
    h = np.tanh(h @ p['w1'] + p['b1'])
    return (h @ p['w2'] + p['b2']) * p['out_scale'] + p['out_shift']

  def sample(self, obs, rng: np.random.Generator) -> np.ndarray:
    """A stochastic action: mean + exp(log_std) * N(0, 1)."""
    mean = self.action(obs)
    return mean + self.std * rng.standard_normal(mean.shape)

  def describe(self) -> dict:
    return {'kind': 'mlp', 'name': self.name}


@dataclasses.dataclass(frozen=True)
class NoisyExpert:
  """The degradation used for suboptimal experts: the base expert's deterministic action plus
  independent Gaussian noise N(0, noise_scale^2) on every action dimension at every step (the
  environment clips the result to [-1, 1]). noise_scale = 0 is the base expert; the success rate
  falls as noise_scale grows, which `calibrate` exploits.
  """
  base: object  # MlpExpert, or any expert with act(obs, rng) (e.g. sim.planner.PenPlanner)
  noise_scale: float

  def act(self, obs, rng: np.random.Generator) -> np.ndarray:
    mean = self.base.act(obs, rng)
    if self.noise_scale == 0:
      return mean
    return mean + self.noise_scale * rng.standard_normal(np.shape(mean))

  def act_all(self, observations, rngs) -> np.ndarray:
    """`act` on a batch [N, D], row i drawing its noise from `rngs[i]` (the draws `act` makes
    for that episode alone)."""
    mean = collector.act_together([self.base] * len(observations), observations, rngs)
    if self.noise_scale == 0:
      return mean
    noise = np.stack([rng.standard_normal(mean.shape[1:]) for rng in rngs])
    return mean + self.noise_scale * noise

  def bind(self, env) -> 'NoisyExpert':
    """The same degradation of a base expert bound to `env` (see `collector.bound`); itself
    when the base expert does not bind, so episodes side by side share one batched expert."""
    base = collector.bound(self.base, env)
    return self if base is self.base else dataclasses.replace(self, base=base)

  def describe(self) -> dict:
    return {'kind': 'noisy', 'name': getattr(self.base, 'name', type(self.base).__name__),
            'noise_scale': float(self.noise_scale)}


@functools.lru_cache(maxsize=None)
def distortion(seed: int, action_dim: int) -> tuple[np.ndarray, np.ndarray]:
  """`DistortedExpert`'s fixed arrays: M [A, A] with entries N(0, 1/A) (so that a M has entries
  of the size of a's) and c [A] with entries N(0, 1), drawn from `seed`. Read-only."""
  rng = np.random.default_rng(seed)
  mixing = rng.standard_normal((action_dim, action_dim)) / np.sqrt(action_dim)
  offset = rng.standard_normal(action_dim)
  mixing.setflags(write=False)
  offset.setflags(write=False)
  return mixing, offset


@dataclasses.dataclass(frozen=True)
class DistortedExpert:
  """A degradation imitation cannot average out: the base expert's action a goes out as

      a + scale * tanh(a M + c),

  M and c fixed per `seed` (`distortion`); the environment clips the result to [-1, 1]. The error
  is a deterministic function of the state (through a), like a teleoperation retargeting that is
  off in a consistent way, so a policy fitted to these actions reproduces it, where one fitted to
  `NoisyExpert`'s recovers the base expert's mean. It is neither zero-mean (c) nor the same in
  every state (a M). scale = 0 is the base expert; success falls with the scale, which
  `calibrate` exploits.
  """
  base: object  # any expert with act(obs, rng)
  scale: float
  seed: int = 0

  def distort(self, actions) -> np.ndarray:
    """[..., A] base actions -> the actions sent."""
    actions = np.asarray(actions, np.float64)
    if self.scale == 0:
      return actions
    mixing, offset = distortion(self.seed, actions.shape[-1])
    return actions + self.scale * np.tanh(actions @ mixing + offset)

  def act(self, obs, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    return self.distort(self.base.act(obs, rng))

  def act_all(self, observations, rngs) -> np.ndarray:
    """`act` on a batch [N, D] (the base expert's `act_all` where it has one)."""
    return self.distort(collector.act_together([self.base] * len(observations), observations,
                                               rngs))

  bind = NoisyExpert.bind  # the same degradation of the bound base expert

  def describe(self) -> dict:
    return {'kind': 'distorted', 'name': getattr(self.base, 'name', type(self.base).__name__),
            'scale': float(self.scale), 'seed': self.seed}


def executed_actions(expert, observations, rngs=None) -> np.ndarray:
  """The actions `expert` would execute at a batch of observations [N, D]: its `act_all`,
  clipped to the Adroit action box [-1, 1] as the collector clips every proposal (the pen
  expert's raw actions leave the box on a quarter of their entries, up to 4.4). What an operator
  rating actions with Q_ref, which knows executed actions only, must compare."""
  rngs = [None] * len(observations) if rngs is None else rngs
  return np.clip(expert.act_all(observations, rngs), -1.0, 1.0)


def clipped_gaussian_mean(mean, sigma: float, low: float = -1.0, high: float = 1.0) -> np.ndarray:
  """E[clip(x, low, high)] for x ~ N(mean, sigma^2), entry by entry (closed form): the centre a
  squared-error fit converges to when its labels are Gaussian-noised actions clipped to a box.
  sigma = 0 gives clip(mean)."""
  mean = np.asarray(mean, np.float64)
  if sigma == 0:
    return np.clip(mean, low, high)
  a, b = (low - mean) / sigma, (high - mean) / sigma
  cdf_a, cdf_b = _normal_cdf(a), _normal_cdf(b)
  pdf = lambda z: np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
  return (low * cdf_a + high * (1 - cdf_b) + mean * (cdf_b - cdf_a)
          - sigma * (pdf(b) - pdf(a)))


_normal_cdf = np.vectorize(lambda z: 0.5 * (1.0 + math.erf(z / math.sqrt(2.0))), otypes=[float])


@dataclasses.dataclass(frozen=True, eq=False)
class NoiseAveragedExpert(DeterministicExpert):
  """What a learner that imitates `NoisyExpert(base, noise_scale)` by squared error converges to
  with unlimited data: the mean of the actions the collector logs. Those are clipped to the box,
  so the mean is not the base expert's action: where the base action is near or beyond +-1,
  clipping the noise pulls the mean toward 0 (`clipped_gaussian_mean`). Its success is the
  ceiling of pure imitation of that noisy expert (benchmarks/imitation_ceiling.py)."""
  base: MlpExpert
  noise_scale: float

  @property
  def observation_dim(self) -> int:
    return self.base.observation_dim

  @property
  def action_dim(self) -> int:
    return self.base.action_dim

  def action(self, obs) -> np.ndarray:
    return clipped_gaussian_mean(self.base.action(obs), self.noise_scale)

  def describe(self) -> dict:
    return {'kind': 'noise_averaged', 'name': self.base.name,
            'noise_scale': float(self.noise_scale)}


# degradation name -> expert class, built as cls(base, scale)
DEGRADATIONS = {'noise': NoisyExpert, 'distortion': DistortedExpert}


def degrade(expert, degradation: str, scale: float):
  """`expert` under `degradation` ('noise' or 'distortion') at `scale`."""
  if degradation not in DEGRADATIONS:
    raise ValueError(f'unknown degradation {degradation!r}; known: {sorted(DEGRADATIONS)}')
  return DEGRADATIONS[degradation](expert, scale)


@dataclasses.dataclass(frozen=True)
class Calibration:
  scale: float  # the chosen scale of the degradation calibrated (noise or distortion)
  success_rate: float
  measured: dict  # scale -> success rate, every level tried
  num_episodes: int
  seconds: float


def success_rate(task, expert, num_episodes: int, seed: int,
                 episode_length: Optional[int] = None) -> float:
  """The fraction of `num_episodes` expert-only episodes that succeed by the task's rule.

  Episode i starts from the environment's reset with the seed the collector would give it, so
  two experts measured with the same `seed` face the same initial states.
  """
  return float(np.mean([episode.success for _, episode in collector.run_episodes(
      task, expert, num_episodes, seed, episode_length=episode_length)]))


def calibrate(task, expert: MlpExpert, target_success: float, num_episodes: int = 10,
              seed: int = 0, max_noise: float = 1.0, iterations: int = 4,
              episode_length: Optional[int] = None, degradation: str = 'noise') -> Calibration:
  """Searches the scale of `degradation` (`DEGRADATIONS`; the `NoisyExpert` noise scale by
  default) whose success rate is closest to `target_success`.

  Bisection on [0, max_noise], assuming success falls with noise: measure the ends, then halve the
  bracket `iterations` times (if the base expert is already at or below the target, it is the
  answer; if `max_noise` is still above it, the search ends at `max_noise`), each level measured
  on the same `num_episodes` initial states (common random numbers keep the comparison between
  levels fair). Returns the level whose measured rate is nearest the target. With few episodes
  the rate is coarse (1/num_episodes steps) and noisy; re-measure the chosen level on fresh
  seeds before reporting it.
  """
  start = time.perf_counter()
  measured = {}

  def rate(scale):
    scale = round(float(scale), 4)
    if scale not in measured:
      measured[scale] = success_rate(task, degrade(expert, degradation, scale), num_episodes,
                                     seed, episode_length)
    return measured[scale]

  lo, hi = 0.0, float(max_noise)
  if rate(lo) > target_success:  # else no noise level can do better than the base expert
    rate(hi)
    for _ in range(iterations):
      mid = (lo + hi) / 2
      if rate(mid) > target_success:
        lo = mid
      else:
        hi = mid
  best = min(measured, key=lambda s: (abs(measured[s] - target_success), s))
  return Calibration(best, measured[best], dict(sorted(measured.items())), num_episodes,
                     time.perf_counter() - start)


def measure_levels(task, expert: MlpExpert, targets: Sequence[float], num_episodes: int = 20,
                   check_episodes: int = 50, seed: int = 0, check_seed: int = 1000,
                   max_noise: float = 1.0, iterations: int = 4,
                   degradation: str = 'noise') -> list[dict]:
  """Calibrates a scale of `degradation` per target on seed `seed`, then re-measures each chosen
  scale on `check_episodes` fresh initial states (seed `check_seed`): the number to report."""
  rows = []
  for target in targets:
    start = time.perf_counter()
    found = calibrate(task, expert, target, num_episodes, seed, max_noise, iterations,
                      degradation=degradation)
    check = success_rate(task, degrade(expert, degradation, found.scale), check_episodes,
                         check_seed)
    rows.append({'target': target, 'degradation': degradation, 'scale': found.scale,
                 'calibration_success': found.success_rate, 'levels_tried': found.measured,
                 'check_success': check, 'seconds': time.perf_counter() - start})
  return rows


def main(argv=None) -> None:
  """python -m sim.experts --task pen --targets 0.9,0.4,0.1 [--degradation distortion]"""
  import argparse
  import json
  import os
  parser = argparse.ArgumentParser(description=main.__doc__)
  parser.add_argument('--task', default='pen', choices=sorted(tasks_lib.TASKS))
  parser.add_argument('--targets', default='0.9,0.4,0.1')
  parser.add_argument('--expert_dir', default=os.path.join(
      os.path.dirname(os.path.dirname(os.path.abspath(__file__))), '..', 'shared', 'experts',
      'adroit'))
  parser.add_argument('--episodes', type=int, default=20)
  parser.add_argument('--check_episodes', type=int, default=50)
  parser.add_argument('--degradation', default='noise', choices=sorted(DEGRADATIONS))
  parser.add_argument('--max_noise', type=float, default=1.0,
                      help='upper end of the bisection bracket on the scale')
  parser.add_argument('--iterations', type=int, default=4)
  args = parser.parse_args(argv)
  task = tasks_lib.get_task(args.task)
  expert = MlpExpert.load(os.path.join(args.expert_dir, task.expert_file), task)
  start = time.perf_counter()
  rows = measure_levels(task, expert, [float(t) for t in args.targets.split(',')],
                        args.episodes, args.check_episodes, max_noise=args.max_noise,
                        iterations=args.iterations, degradation=args.degradation)
  for row in rows:
    print(json.dumps(row))
  print(f'total {time.perf_counter() - start:.1f} s')


if __name__ == '__main__':
  main()
