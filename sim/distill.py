"""Distils the project's pen planner into a fast MLP expert, DAgger style.

  python -m sim.distill --work_dir ~/rlif_runs/distill [--iterations 6 --workers 2]

The planner (`sim.planner.PenPlanner`) succeeds on most pen episodes but costs ~15 s per episode
and its actions carry its sampling noise: behaviour cloning on its demonstrations alone gave a
policy that never succeeded (sim/EXPERTS.md). DAgger (Ross et al., 2011) fixes the part of that
which is about states: iteration 0 is planner demonstrations; in iteration k the current student
acts, the planner takes over at random on a fraction `beta_k` of the steps, and the planner
labels every visited state, because it plans from any simulator state; the student is refit on
all labels so far. The student is a tanh MLP in the expert file format (`sim.experts.MlpExpert`,
the layout of ../shared/experts/README.md), so every tool that reads an expert file reads it.

Labelling episodes end when the pen drops (`StopAtDrop`): no label after that teaches anything.
Each iteration's labels and student are written to `work_dir` and reused on a rerun (resumable).
An iteration's episodes run in `workers` processes, side by side within each.

Status (sim/EXPERTS.md): four runs of 4 to 7 iterations gave students that succeeded on at most
1 of 20 episodes, so no student ships. The project's pen expert is now an actor its RLIF loop
trained (sim/project_expert.py), not the planner.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import time
from typing import Optional, Sequence

import gymnasium as gym
import numpy as np

from sim import collector
from sim import experts as experts_lib
from sim import intervention as intervention_lib
from sim import planner as planner_lib
from sim import tasks as tasks_lib

TASK = 'pen'
EVAL_SEED = 1000  # the reset seeds `sim.experts.success_rate` and `sim.planner.measure` use
PEN_HEIGHT = 26   # the pen's z in pen's 45-dim observation (hand qpos[:24], then pen x, y, z)


def dropped(states: np.ndarray) -> np.ndarray:
  """Per state: the pen is below the palm (`planner.DROP_HEIGHT`), where no action saves it."""
  return np.asarray(states)[..., PEN_HEIGHT] < planner_lib.DROP_HEIGHT


class StopAtDrop(gym.Wrapper):
  """Ends a labelling episode when the pen drops: the planner's labels after that teach nothing
  (in iteration 1 the student dropped the pen by step ~75 of 200), and stopping saves their
  planning time."""

  def step(self, action):
    obs, reward, terminated, truncated, info = self.env.step(action)
    return obs, reward, terminated or bool(dropped(obs)), truncated, info


@dataclasses.dataclass(frozen=True)
class DistillConfig:
  demos: int = 20                 # iteration 0: planner-only episodes
  iterations: int = 6             # DAgger iterations after iteration 0
  episodes: int = 10              # student episodes per iteration, every state labelled
  beta: float = 0.5               # planner share of control in iteration 1, halved each iteration
  label_iterations: int = 1       # the labelling planner's MPPI updates per step
  label_window: int = 1           # labels averaged over this many consecutive steps (odd; 1: off)
  hidden: int = 256               # units per tanh layer (two layers)
  train_steps: int = 4000         # Adam steps per fit, from scratch each iteration
  batch_size: int = 256
  learning_rate: float = 1e-3
  eval_episodes: int = 20
  seed: int = 0

  def beta_at(self, iteration: int) -> float:
    return 1.0 if iteration == 0 else self.beta * 0.5 ** (iteration - 1)


class StudentPolicy:
  """An `MlpExpert` as a collector policy: deterministic, acts on batches."""
  takes_batches = True

  def __init__(self, expert: experts_lib.MlpExpert):
    self.expert = expert

  def __call__(self, observations) -> np.ndarray:
    return self.expert.action(observations)


def _episodes(task: str, seeds: Sequence[int], student_arrays: Optional[dict], beta: float,
              seed: int, planner_iterations: int, episode_length: Optional[int] = None,
              first_episode: int = 0) -> list[dict]:
  """Worker: runs the episodes of `seeds`; with a student, it acts and the planner takes over
  on a `beta` share of steps at random, episode i drawing the takeovers of the run's
  episode `first_episode + i` (so the split across workers changes nothing). With
  `planner_iterations` > 0 the planner (that many MPPI updates per step) labels every state;
  with 0 the student acts alone (evaluation).
  Returns per episode the states, the planner's labels (the executed actions where nobody
  labels), the executed actions, success and the planner's share of control."""
  envs = [tasks_lib.make_env(task, s, episode_length) for s in seeds]
  label = planner_iterations > 0
  if label:
    envs = [StopAtDrop(env) for env in envs]
  student = (StudentPolicy(experts_lib.MlpExpert.from_arrays(student_arrays, 'student'))
             if student_arrays is not None else None)
  policy = model = None  # without a policy the actors drive alone
  try:
    if not label:  # evaluation: the student alone
      actors = [student.expert] * len(envs)
    else:
      config = planner_lib.PlannerConfig(iterations=planner_iterations)
      actors = [planner_lib.PenPlanner(config, env) for env in envs]
      if student is not None:  # the student drives; the planner takes over on a beta share
        policy = student
        if beta > 0:
          model = intervention_lib.make_model(
              'random', seed=seed, config=intervention_lib.RandomConfig(expert_fraction=beta))
        else:
          model = intervention_lib.make_model('never', seed=seed)
        model.skip(first_episode)  # the streams of the run's episodes before this chunk's
    episodes = collector.run_together(envs, task, actors, list(seeds), policy, model,
                                      episode_length)
  finally:
    for env in envs:
      env.close()
  out = []
  for e in episodes:
    labels = e.actions if e.expert_actions is None else e.expert_actions
    out.append({'states': e.observations[:-1], 'labels': labels, 'actions': e.actions,
                'success': e.success,
                'expert_share': (float(np.mean(e.interventions))
                                 if e.interventions is not None else 1.0)})
  return out


def smooth(labels: np.ndarray, window: int) -> np.ndarray:
  """[T, A] labels of one episode averaged over a centred window of `window` steps (the ends
  repeat the first and last label): the planner's per-step sampling noise averages out, the
  slower motion it plans stays."""
  if window <= 1:
    return labels
  if window % 2 == 0:
    raise ValueError(f'label_window must be odd, got {window}')
  half = window // 2
  padded = np.concatenate([np.repeat(labels[:1], half, 0), labels,
                           np.repeat(labels[-1:], half, 0)])
  sums = np.cumsum(np.concatenate([np.zeros_like(labels[:1]), padded]), 0)
  return (sums[window:] - sums[:-window]) / window


def run_parallel(task, seeds, student_arrays, beta, seed, planner_iterations, workers,
                 episode_length: Optional[int] = None) -> list[dict]:
  """`_episodes` over `seeds` split across `workers` processes, in seed order; the episodes
  are the same for any number of workers."""
  chunks = [[int(s) for s in c] for c in np.array_split(np.asarray(seeds), max(1, workers))
            if len(c)]
  if len(chunks) == 1:
    return _episodes(task, chunks[0], student_arrays, beta, seed, planner_iterations,
                     episode_length)
  firsts = np.cumsum([0] + [len(c) for c in chunks[:-1]])
  with concurrent.futures.ProcessPoolExecutor(
      len(chunks), mp_context=multiprocessing.get_context('spawn')) as pool:
    futures = [pool.submit(_episodes, task, c, student_arrays, beta, seed, planner_iterations,
                           episode_length, int(first)) for c, first in zip(chunks, firsts)]
    return [episode for f in futures for episode in f.result()]


def _read(path: str) -> dict:
  """Every array of the npz at `path`, read into memory (the file is closed)."""
  with np.load(path) as f:
    return {name: f[name] for name in f.files}


def fit_student(states: np.ndarray, labels: np.ndarray, config: DistillConfig,
                seed: int) -> dict:
  """A tanh MLP fitted to (state, label) by mean squared error; returns expert-file arrays,
  plus `train_mse`, the loss of the last batch (an estimate of the training MSE)."""
  import tensorflow as tf
  tf.keras.utils.set_random_seed(seed)
  in_shift = states.mean(0)
  in_scale = states.std(0)
  x = ((states - in_shift) / (in_scale + experts_lib.INPUT_SCALE_EPS)).astype(np.float32)
  y = labels.astype(np.float32)
  model = tf.keras.Sequential([
      tf.keras.Input((x.shape[1],)),
      tf.keras.layers.Dense(config.hidden, activation='tanh'),
      tf.keras.layers.Dense(config.hidden, activation='tanh'),
      tf.keras.layers.Dense(y.shape[1]),
  ])
  optimizer = tf.keras.optimizers.Adam(config.learning_rate)

  @tf.function
  def step(xb, yb):
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf.square(model(xb) - yb))
    optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                  model.trainable_variables))
    return loss

  rng = np.random.default_rng(seed)
  for _ in range(config.train_steps):
    idx = rng.integers(0, len(x), config.batch_size)
    loss = step(x[idx], y[idx])
  w = [v.numpy().astype(np.float64) for v in model.weights]
  return {'in_shift': in_shift, 'in_scale': in_scale, 'w0': w[0], 'b0': w[1], 'w1': w[2],
          'b1': w[3], 'w2': w[4], 'b2': w[5], 'out_shift': np.zeros(y.shape[1]),
          'out_scale': np.ones(y.shape[1]), 'log_std': np.full(y.shape[1], np.log(0.1)),
          'train_mse': np.array(float(loss))}


def distill(work_dir: str, config: DistillConfig = DistillConfig(), workers: int = 2,
            log=print) -> dict:
  """Runs (or resumes) the DAgger distillation in `work_dir`; returns the last iteration's
  record: iteration, student path, its evaluation success, label count."""
  os.makedirs(work_dir, exist_ok=True)
  history_path = os.path.join(work_dir, 'history.jsonl')
  done = {}
  if os.path.exists(history_path):
    with open(history_path) as f:
      done = {r['iteration']: r for r in map(json.loads, f)}
  student = None
  record = None
  for k in range(config.iterations + 1):
    data_path = os.path.join(work_dir, f'labels_{k}.npz')
    student_path = os.path.join(work_dir, f'student_{k}.npz')
    if k in done:
      record = done[k]
      student = _read(student_path)
      continue
    start = time.time()
    if not os.path.exists(data_path):
      count = config.demos if k == 0 else config.episodes
      seeds = [collector.episode_seed(config.seed, k, i) for i in range(count)]
      episodes = run_parallel(TASK, seeds, None if k == 0 else student, config.beta_at(k),
                              config.seed + k, 1 if k == 0 else config.label_iterations,
                              workers)
      np.savez(data_path, states=np.concatenate([e['states'] for e in episodes]),
               labels=np.concatenate([smooth(e['labels'], config.label_window)
                                      for e in episodes]),
               raw_labels=np.concatenate([e['labels'] for e in episodes]),
               success=np.array([e['success'] for e in episodes]),
               expert_share=np.array([e['expert_share'] for e in episodes]))
    label_sets = [_read(os.path.join(work_dir, f'labels_{j}.npz')) for j in range(k + 1)]
    collected = {'success': float(label_sets[k]['success'].mean()),
                 'expert_share': float(label_sets[k]['expert_share'].mean())}
    states = np.concatenate([d['states'] for d in label_sets])
    labels = np.concatenate([d['labels'] for d in label_sets])
    kept = ~dropped(states)
    states, labels = states[kept], labels[kept]
    student = fit_student(states, labels, config, config.seed + k)
    np.savez(student_path, **student)
    evaluation = run_parallel(TASK, [collector.episode_seed(EVAL_SEED, 0, i)
                                     for i in range(config.eval_episodes)],
                              student, 0.0, 0, 0, workers)
    record = {'iteration': k, 'beta': config.beta_at(k), 'labels': int(len(states)),
              'collected': collected, 'train_mse': float(student['train_mse']),
              'student_success': float(np.mean([e['success'] for e in evaluation])),
              'seconds': round(time.time() - start, 1), 'student': student_path}
    log(json.dumps(record))
    with open(history_path, 'a') as f:
      f.write(json.dumps(record) + '\n')
  return record


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--work_dir', required=True)
  parser.add_argument('--workers', type=int, default=2)
  parser.add_argument('--config', default='{}', help='JSON overrides of DistillConfig fields')
  args = parser.parse_args(argv)
  config = DistillConfig(**json.loads(args.config))
  distill(os.path.expanduser(args.work_dir), config, args.workers)


if __name__ == '__main__':
  main()
