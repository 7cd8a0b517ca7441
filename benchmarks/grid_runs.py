"""Reading finished runs of a benchmark grid (`~/rlif_runs/benchmark/<grid>/<run>`) for the
analyses that look inside them (operator_standard, critic_ranking, critic_offline): a run's
task, its undegraded expert and the task's reference agent Q_ref, the steps its policy
controlled in a raw round, a row's learner settings, and the Markdown report they write. No
simulation."""

from __future__ import annotations

import dataclasses
import glob
import json
import os

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERT_DIR = os.path.join(REPO, '..', 'shared', 'experts', 'adroit')


def _raw_episodes(run_dir: str, round_index: int):
  """(control flags [T], the npz episode) of each raw episode of one round, in file order."""
  paths = sorted(glob.glob(os.path.join(run_dir, 'raw', f'round_{round_index}', '*.npz')))
  if not paths:
    raise FileNotFoundError(f'no raw episodes of round {round_index} in {run_dir}')
  for path in paths:
    with np.load(path) as episode:
      yield episode['interventions'].astype(bool), episode


def policy_steps(run_dir: str, round_index: int):
  """Of one raw round of a run, at the steps the policy controlled: (observations [N, D], the
  policy's proposals [N, A], onsets [N]), onset = the next step is a takeover's first (the
  policy's step that got the -1)."""
  observations, proposals, onsets = [], [], []
  for taken, episode in _raw_episodes(run_dir, round_index):
    free = ~taken
    observations.append(episode['observations'][:len(free)][free])
    proposals.append(episode['policy_actions'][free])
    onsets.append((free & np.append(taken[1:], False))[free])
  return (np.concatenate(observations).astype(np.float64), np.concatenate(proposals),
          np.concatenate(onsets))


def policy_step_returns(run_dir: str, round_index: int, gamma: float) -> np.ndarray:
  """[N] at the same steps as `policy_steps`: the discounted sum of the takeover rewards
  (pipeline.relabel's rule) from each step to its episode's end, what the logged continuation
  earned; a critic of the behaviour that has converged would be near it."""
  from pipeline import relabel
  returns = []
  for taken, _ in _raw_episodes(run_dir, round_index):
    flags = np.append(taken, False)  # [T + 1]: the final observation starts no takeover
    rewards = relabel.intervention_rewards(flags).astype(np.float64)
    to_go = np.zeros(len(rewards))
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
      running = rewards[t] + gamma * running
      to_go[t] = running
    returns.append(to_go[~taken])
  return np.concatenate(returns)


@dataclasses.dataclass
class Run:
  directory: str
  label: str     # the benchmark row: method[+variant...]
  first: dict    # its round-0 record (task, expert_noise, expert_distortion, seed)
  task: object   # sim.tasks.Task
  expert: object  # the undegraded expert (sim.experts.MlpExpert)
  q_ref: object  # the task's reference agent (sim.reference.ReferenceAgent)


class GridReader:
  """Opens runs of one grid; one reference agent per task, loaded (or trained) once."""

  def __init__(self, root: str, grid: str, expert_dir: str = EXPERT_DIR):
    self.root, self.grid, self.expert_dir = root, grid, expert_dir
    self._reference_agents = {}

  def open(self, run: str) -> Run:
    """`run` = '<level folder>/<label>-s<seed>' under the grid."""
    from sim import experts, loop, reference, tasks
    directory = os.path.join(self.root, self.grid, run)
    with open(os.path.join(directory, 'results.jsonl')) as f:
      first = json.loads(f.readline())
    task = tasks.get_task(first['task'])
    expert = experts.MlpExpert.load(os.path.join(self.expert_dir, task.expert_file), task)
    if task.name not in self._reference_agents:
      self._reference_agents[task.name] = reference.load_or_train(
          task, expert, reference.ReferenceSpec.for_task(task),
          os.path.join(loop.RUNS_ROOT, 'reference'), log=print)
    return Run(directory, os.path.basename(run).rsplit('-s', 1)[0], first, task, expert,
               self._reference_agents[task.name])


def row_learner(label: str, task_name: str):
  """(learner, settings, prior_fraction) of benchmark row `label` = method[+variant...]: the
  method's configs/<learner>.toml with the variants' overrides (rlif_benchmark VARIANTS);
  prior_fraction None = the settings file's."""
  from benchmarks import rlif_benchmark
  from sim import loop
  from trainer import learners
  spec = rlif_benchmark.apply_variants(loop.LoopSpec(task=task_name,
                                                     method=label.split('+')[0]), label)
  learner = loop.METHODS[spec.method].learner
  return (learner, learners.load_settings(learner, overrides=dict(spec.learner_overrides)),
          spec.prior_fraction)


def write_lines(out_dir: str, grid: str, lines) -> str:
  """Writes the report `<out_dir>/<grid>.md` and returns its path."""
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, f'{grid}.md')
  with open(path, 'w') as f:
    f.write('\n'.join(lines) + '\n')
  return path


def add_location_arguments(parser, results: str) -> None:
  """--root (the grids' runs), --expert_dir and --out (benchmarks/results/<results>), which
  every analysis of a grid's runs takes."""
  from sim import loop
  parser.add_argument('--root', default=os.path.join(loop.RUNS_ROOT, 'benchmark'))
  parser.add_argument('--expert_dir', default=EXPERT_DIR)
  parser.add_argument('--out', default=os.path.join(REPO, 'benchmarks', 'results', results))
