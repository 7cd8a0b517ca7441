"""Prepares an Adroit RLIF dataset when the trainer finds none: the quickstart's data side.

Three sources, in this order:
  1. raw intervention logs a person put in TFDS's manual directory, in the layout the
     `rlif_adroit` builder reads: `<manual_dir>/<task>/round_<N>/*.npz|*.jsonl|*.jsonl.gz`;
     each round goes through the pipeline (same relabeling, same dead letters);
  2. otherwise the sample that ships with the project for the task (`SAMPLE_DIR`, pen only: raw
     logs of the project's own expert, written by `python -m sim.quickstart_sample`), in the same
     layout and through the same pipeline: the quickstart's default, seconds instead of minutes;
  3. otherwise (or with `simulate=True`), the simulator: round 0 is `num_demos` demonstrations
     by the project's own expert (`sim.project_expert`: for pen, the actor of a policy this
     project's RLIF loop trained; nothing from outside the repository), and, when asked,
     `intervention_rounds` rounds in which a behaviour-cloning policy trained on round 0 acts and
     the same expert takes over at random on about 30% of the steps (the RLIF paper's lowest
     random schedule, 4-step holds), written as raw logs and appended by the pipeline. Random
     rather than gated: the value-based operator needs a reference agent, which `sim.loop`
     trains; with a handful of demonstrations of the earlier planner expert the gating rule took
     over at step 0 and never let go.

Everything the simulator writes stays beside the dataset (`<data_dir>/<dataset>_raw/round_N/`),
so the dataset can be rebuilt from it with `pipeline.main`.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Callable, Optional

from sim import collector
from sim import intervention as intervention_lib
from sim import project_expert as project_expert_lib
from sim import tasks as tasks_lib

RAW_PATTERNS = ('*.npz', '*.jsonl', '*.jsonl.gz')
# Raw logs shipped for the quickstart: <SAMPLE_DIR>/<task>/round_<N>/*.npz.
SAMPLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'quickstart_data')


def default_manual_dir(dataset: str) -> str:
  """TFDS's default manual directory for `dataset` (~/tensorflow_datasets/downloads/manual/)."""
  return os.path.join(os.path.expanduser('~'), 'tensorflow_datasets', 'downloads', 'manual',
                      dataset)


def manual_rounds(manual_dir: Optional[str], task: str) -> dict[int, list[str]]:
  """{N: glob patterns} for every `<manual_dir>/<task>/round_<N>/` that holds raw logs."""
  if not manual_dir:
    return {}
  base = os.path.join(os.path.expanduser(manual_dir), task)
  found = {}
  for path in sorted(glob.glob(os.path.join(base, 'round_*'))):
    match = re.fullmatch(r'round_(\d+)', os.path.basename(path))
    patterns = [os.path.join(path, p) for p in RAW_PATTERNS if glob.glob(os.path.join(path, p))]
    if match and os.path.isdir(path) and patterns:
      found[int(match.group(1))] = patterns
  return found


def prepare(data_dir: str, dataset: str, task: str = 'pen', manual_dir: Optional[str] = None,
            num_demos: int = 4, intervention_rounds: int = 0, episodes_per_round: int = 4,
            bc_updates: int = 500, seed: int = 0, episode_length: Optional[int] = None,
            log: Callable[[str], None] = print, simulate: bool = False) -> str:
  """Writes rounds of `dataset` under `data_dir`; returns the dataset version folder."""
  from pipeline import round_job
  task = tasks_lib.get_task(task)
  from_manual, source = manual_rounds(manual_dir, task.name), manual_dir
  if not from_manual and not simulate:
    from_manual, source = manual_rounds(SAMPLE_DIR, task.name), 'the shipped sample ' + SAMPLE_DIR
  if from_manual:
    log(f'preparing {dataset} from raw logs in {source}/{task.name}: rounds '
        f'{sorted(from_manual)}')
    result = None
    for r, patterns in sorted(from_manual.items()):
      result = round_job.run_round(patterns, data_dir, dataset, r, runner='plain')
      log(result.summary.rstrip())
    return result.version_dir

  raw_root = os.path.join(data_dir, f'{dataset}_raw')
  expert = project_expert_lib.project_expert(task)
  log(f'preparing {dataset}: no raw logs in {manual_dir or "the manual directory"}; collecting '
      f'{num_demos} {task.name} demonstrations with the project expert '
      f'({type(expert).__name__}) ...')
  demos = collector.expert_demonstrations(task, expert, num_demos,
                                          os.path.join(raw_root, 'round_0'), seed,
                                          episode_length, progress=True)
  log(f'  expert success {demos["success_rate"]:.2f} over {num_demos} demonstrations')
  result = round_job.run_round([os.path.join(raw_root, 'round_0', '*.npz')], data_dir, dataset,
                               0, runner='plain')
  log(result.summary.rstrip())
  if intervention_rounds:
    policy = _behaviour_cloning_policy(data_dir, dataset, raw_root, bc_updates, seed, log)
    for r in range(1, intervention_rounds + 1):
      model = intervention_lib.make_model(
          'random', seed=seed + r, config=intervention_lib.RandomConfig(expert_fraction=0.3))
      out = os.path.join(raw_root, f'round_{r}')
      summary = collector.collect_round(task, policy, expert, model, episodes_per_round, out,
                                        seed, r, episode_length, progress=True)
      log(f'  round {r}: policy + expert success {summary["success_rate"]:.2f}, intervention '
          f'rate {summary["intervention_rate"]:.2f}')
      result = round_job.run_round([os.path.join(out, '*.npz')], data_dir, dataset, r,
                                   runner='plain')
      log(result.summary.rstrip())
  return result.version_dir


def prepare_for_trainer(data_dir: str, dataset: str, *, task: str = 'pen',
                        manual_dir: Optional[str] = None, num_demos: int = 4,
                        intervention_rounds: int = 1, episodes_per_round: int = 4,
                        seed: int = 0, simulate: bool = False) -> str:
  """`trainer.main`'s embedded default (the `rlif.dataset_preparers` plug-in `rlif_adroit`):
  `prepare`, from TFDS's manual directory for `dataset` unless `manual_dir` is given."""
  return prepare(data_dir, dataset, task, manual_dir or default_manual_dir(dataset),
                 num_demos=num_demos, intervention_rounds=intervention_rounds,
                 episodes_per_round=episodes_per_round, seed=seed, simulate=simulate)


def _behaviour_cloning_policy(data_dir, dataset, raw_root, updates, seed, log):
  """A BC policy on round 0 (the trainer's own loop and learner), to deploy for collection."""
  from trainer import learners
  from trainer import train_loop
  run_dir = os.path.join(raw_root, 'collection_policy')
  config = train_loop.LoopConfig(learner='bc', num_steps=updates, checkpoint_every=updates,
                                 summary_every=max(updates // 10, 1), seed=seed)
  loop = train_loop.TrainLoop(config, learners.load_settings('bc'), data_dir, dataset, run_dir,
                              log=lambda m: log(f'  [collection policy] {m}'))
  loop.run()
  return collector.load_saved_policy(os.path.join(run_dir, 'policies', 'round_0'))
