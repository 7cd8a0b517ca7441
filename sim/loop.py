"""The closed RLIF loop in simulation, and the baselines on the same data budget.

  round 0: the expert alone collects `num_demos` demonstrations -> pipeline appends round_0 ->
           behaviour cloning on them gives the initial policy (shared by every method) -> evaluate
  round r: deploy the previous round's exported policy under the expert and an intervention
           model -> raw logs -> pipeline relabels and appends round_r -> the method's learner
           (the trainer's `TrainLoop`, following the dataset) trains and exports -> evaluate

Methods (`METHODS`): `rlif_value` and `rlif_random` (the product's RLIF learner,
configs/rlif.toml, on the RLIF rewards, value-based or random interventions), `rlpd_value` (the
paper's plain RLPD, configs/rlpd.toml, under value-based interventions), `hg_dagger` (supervised
learning on prior data plus the expert's takeover steps, under the same intervention model as
RLIF by default), `dagger` (the policy acts alone and the expert labels every state it visits;
supervised learning on prior data plus all labels) and `bc` (supervised learning; its rounds are
expert-only episodes, so it gets the same number of environment steps, all of them the
expert's). Every method's learner starts from the initial BC policy's actor weights.

Every stage is idempotent and the loop records what it finished, so running the same command
again after a crash continues where it stopped: collected rounds are complete or recollected
(their seeds are fixed), the pipeline skips a round it already holds, the trainer resumes from
its checkpoint and exports each round once, and evaluations are appended once per round to
`results.jsonl`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from typing import Callable, Optional

import numpy as np

from sim import collector
from sim import experts as experts_lib
from sim import intervention as intervention_lib
from sim import reference as reference_lib
from sim import tasks as tasks_lib

INITIAL = 'initial'  # run folder of the shared initial (BC) policy
# Long experiments (benchmark grids, Q_ref caches) live outside the work tree, so a machine that
# is handed to the next session keeps them even when the work tree is laid anew.
RUNS_ROOT = os.environ.get('RLIF_RUNS', os.path.expanduser('~/rlif_runs'))
EVAL_ROUND = 10_000  # evaluation episodes' seeds: episode_seed(seed, EVAL_ROUND, i)


@dataclasses.dataclass(frozen=True)
class Method:
  learner: str                  # learners.LEARNERS key
  intervention: Optional[str]   # intervention model; None: rounds are expert-only episodes
  expert_labels: bool = False   # log the expert's action at every step (DAgger's labels)


METHODS = {
    'rlif_value': Method('rlif', 'value'),
    'rlif_random': Method('rlif', 'random'),
    'rlpd_value': Method('rlpd', 'value'),
    'hg_dagger': Method('hg_dagger', 'value'),
    'dagger': Method('dagger', 'never', expert_labels=True),
    'bc': Method('bc', None),
}

# What the value model rates against the policy's action (LoopSpec.operator_standard).
OPERATOR_STANDARDS = ('own', 'clean')


@dataclasses.dataclass(frozen=True)
class LoopSpec:
  """One run of the loop. `expert_distortion` and `expert_noise` degrade the task's expert
  (`DistortedExpert`, then `NoisyExpert` on top; sim/experts.py); the env-step budget of a run
  is rounds * episodes_per_round * episode length (the demos are prior data)."""
  task: str = 'pen'
  method: str = 'rlif_value'
  expert_noise: float = 0.0
  expert_distortion: float = 0.0
  seed: int = 0
  num_demos: int = 50
  rounds: int = 5
  episodes_per_round: int = 20
  initial_updates: int = 2000        # BC updates for the initial policy
  updates_per_round: int = 2000      # learner updates after each round joins
  eval_episodes: int = 10
  batch_size: int = 256
  prior_fraction: Optional[float] = None  # None: the learner's settings file, else 0.5
  learner_overrides: tuple = ()      # ((key, value), ...) on top of configs/<learner>.toml
  intervention_overrides: tuple = ()  # ((key, value), ...) on the intervention model's config
  hold_steps: int = intervention_lib.DEFAULT_HOLD_STEPS
  warm_start_actor: bool = True
  pipeline_engine: str = 'plain'     # 'plain' (in process) or 'beam' (DirectRunner, 2 workers)
  takeover: str = 'keep'             # the pipeline's --takeover: 'keep' or 'drop' (reference code)
  exploration_noise: float = 0.0     # N(0, s^2) on the policy's actions while it collects
                                     # (collector.exploring), not while it is evaluated
  intervention: Optional[str] = None  # the operator model; None: the method's (METHODS)
  # What the value model's rule rates against the policy's action: 'own' (the acting expert's
  # proposal, the paper) or 'clean' (the undegraded expert's action: an operator who judges
  # better than their degraded takeovers act; sim.intervention.ValueBasedIntervention).
  operator_standard: str = 'own'
  episode_length: Optional[int] = None  # None: the task's (tests shorten it)
  max_env_steps: Optional[int] = None   # refuse a spec whose budget exceeds this

  def env_steps_through(self, round_index: int) -> int:
    """Environment steps the policy rounds 1..round_index cost (round 0 is prior data)."""
    length = self.episode_length or tasks_lib.get_task(self.task).episode_length
    return round_index * self.episodes_per_round * length

  @property
  def env_steps(self) -> int:
    return self.env_steps_through(self.rounds)

  def check(self) -> None:
    if self.method not in METHODS:
      raise ValueError(f'unknown method {self.method!r}; known: {sorted(METHODS)}')
    tasks_lib.get_task(self.task)
    if self.intervention is not None:
      if self.intervention not in intervention_lib.MODELS:
        raise ValueError(f'unknown intervention model {self.intervention!r}; known: '
                         f'{sorted(intervention_lib.MODELS)}')
      if METHODS[self.method].intervention is None:
        raise ValueError(f'method {self.method!r} collects without an operator, so it takes '
                         f'no intervention model (got {self.intervention!r})')
    if self.operator_standard not in OPERATOR_STANDARDS:
      raise ValueError(f'unknown operator standard {self.operator_standard!r}; known: '
                       f'{OPERATOR_STANDARDS}')
    operator = self.intervention or METHODS[self.method].intervention
    if self.operator_standard != 'own' and operator != 'value':
      raise ValueError(f'operator_standard {self.operator_standard!r} is a setting of the value '
                       f'model; method {self.method!r} collects under {operator!r}')
    if self.max_env_steps is not None and self.env_steps > self.max_env_steps:
      raise ValueError(f'{self.rounds} rounds x {self.episodes_per_round} episodes = '
                       f'{self.env_steps} env steps, over the budget of {self.max_env_steps}')


class PolicyActor:
  """A deployed policy (obs -> action) in the collector's expert interface, for evaluation."""

  def __init__(self, policy: Callable, name: str):
    self.policy, self.name = policy, name
    # A policy that takes dict observations (pixels) gets them as an expert too.
    self.observation_fields = getattr(policy, 'observation_fields', None)

  def act(self, obs, rng=None) -> np.ndarray:
    return np.asarray(self.policy(obs))

  def act_all(self, observations, rngs=None) -> np.ndarray:
    return collector.policy_actions(self.policy, observations)

  def describe(self) -> dict:
    return {'kind': 'policy', 'name': self.name}


def evaluate(task, policy: Callable, num_episodes: int, seed: int,
             episode_length: Optional[int] = None, name: str = 'policy', camera=None) -> dict:
  """The policy alone (no expert) on `num_episodes` fixed initial states: success rate by the
  task's rule, mean return of the dense reward (reported, never trained on). A policy that takes
  camera images (`collector.policy_camera`) acts on frames of that size unless `camera` says
  otherwise."""
  camera = camera if camera is not None else collector.policy_camera(policy)
  episodes = [episode for _, episode in collector.run_episodes(
      task, PolicyActor(policy, name), num_episodes, seed, EVAL_ROUND, episode_length,
      camera=camera)]
  return {'success_rate': float(np.mean([e.success for e in episodes])),
          'mean_return': float(np.mean([e.episode_return for e in episodes])),
          'episodes': num_episodes}


def evaluate_exported_policy(policy_dir: str, *, episodes: int, seed: int, observation_dim,
                             action_dim: int, task: str = 'pen',
                             episode_length: Optional[int] = None) -> dict:
  """`evaluate` for an exported policy folder: the `rlif.policy_evaluators` plug-in `adroit`
  that `trainer.main` runs after training. `observation_dim` is the dataset's observation spec:
  D, or the fields of a dict observation, which the simulator makes when they are a camera
  episode's ('state' and 'camera', rendered at the policy's image size). {'skipped': reason}
  when the policy's observation or action is not the task's."""
  task = tasks_lib.get_task(task)
  state_dim = observation_dim
  if isinstance(observation_dim, tuple):  # a dict observation: pipeline.schema.ObservationField
    shapes = {field.name: tuple(field.shape) for field in observation_dim}
    state_dim = shapes.get(collector.STATE_FIELD, (task.observation_dim,))[0]  # or none
    camera = shapes.get(collector.CAMERA_FIELD)
    if set(shapes) - {collector.STATE_FIELD, collector.CAMERA_FIELD} or (
        camera is not None and camera[2:] != (3,)):
      return {'skipped': f'the dataset observes {sorted(shapes.items())}; the simulator makes '
                         f"'{collector.STATE_FIELD}' ({task.observation_dim}-D) and "
                         f"'{collector.CAMERA_FIELD}' ([H, W, 3] frames)"}
  if (state_dim, action_dim) != (task.observation_dim, task.action_dim):
    return {'skipped': f'the dataset is {state_dim}-D/{action_dim}-D, task {task.name} is '
                       f'{task.observation_dim}-D/{task.action_dim}-D (--task)'}
  result = evaluate(task, collector.load_saved_policy(policy_dir), episodes, seed,
                    episode_length)
  return {'task': task.name, **result}


class RlifLoop:
  """Runs one `LoopSpec` under `run_dir` (dataset, raw logs, learner runs, results)."""

  def __init__(self, spec: LoopSpec, run_dir: str, expert_dir: Optional[str], reference_dir: str,
               reference_spec: Optional[reference_lib.ReferenceSpec] = None,
               log: Callable[[str], None] = print):
    spec.check()
    self.spec, self.run_dir, self.log = spec, run_dir, log
    self.task = tasks_lib.get_task(spec.task)
    self.method = METHODS[spec.method]
    if expert_dir is None:  # the project's own expert (sim/project_expert.py)
      from sim import project_expert
      self.base_expert = project_expert.project_expert(self.task)
    else:
      self.base_expert = experts_lib.MlpExpert.load(
          os.path.join(expert_dir, self.task.expert_file), self.task)
    expert = self.base_expert
    if spec.expert_distortion:
      expert = experts_lib.DistortedExpert(expert, spec.expert_distortion)
    self.expert = experts_lib.NoisyExpert(expert, spec.expert_noise)
    self.reference_dir = reference_dir
    self.reference_spec = reference_spec or reference_lib.ReferenceSpec.for_task(
        self.task, episode_length=spec.episode_length)
    self.data_dir = os.path.join(run_dir, 'data')
    self.dataset = f'rlif_{self.task.name}'
    self.results_path = os.path.join(run_dir, 'results.jsonl')
    self._reference = None
    self._trainers = {}  # run name -> the TrainLoop kept up across this process's rounds

  # ------------------------------------------------------------------------- bookkeeping

  def results(self) -> list[dict]:
    if not os.path.exists(self.results_path):
      return []
    with open(self.results_path) as f:
      return [json.loads(line) for line in f if line.strip()]

  def _record(self, row: dict) -> None:
    os.makedirs(self.run_dir, exist_ok=True)
    with open(self.results_path, 'a') as f:
      f.write(json.dumps(row) + '\n')
      f.flush()
      os.fsync(f.fileno())

  def _raw_dir(self, round_index: int) -> str:
    return os.path.join(self.run_dir, 'raw', f'round_{round_index}')

  def reference(self) -> reference_lib.ReferenceAgent:
    """Q_ref for the value-based model: trained once per (task, expert, recipe), then cached."""
    if self._reference is None:
      self._reference = reference_lib.load_or_train(self.task, self.base_expert,
                                                    self.reference_spec, self.reference_dir,
                                                    self.log)
    return self._reference

  # ------------------------------------------------------------------------- stages

  def _collect(self, round_index: int, policy: Optional[Callable]) -> dict:
    """Raw logs of one round; a round whose `_COMPLETE` marker exists is not collected again."""
    import shutil
    out = self._raw_dir(round_index)
    marker = os.path.join(out, '_COMPLETE')
    if os.path.exists(marker):
      with open(marker) as f:
        return json.load(f)
    if os.path.exists(out):
      shutil.rmtree(out)  # A partial round from a crash: its seeds are fixed, so recollect.
    spec = self.spec
    start = time.perf_counter()
    if round_index == 0:
      summary = collector.expert_demonstrations(self.task, self.expert, spec.num_demos, out,
                                                spec.seed, spec.episode_length)
    elif self.method.intervention is None:
      summary = collector.expert_demonstrations(self.task, self.expert, spec.episodes_per_round,
                                                out, spec.seed, spec.episode_length,
                                                round_index=round_index)
    else:
      model = self._intervention(round_index)
      if spec.exploration_noise:
        policy = collector.exploring(policy, spec.exploration_noise,
                                     np.random.default_rng([spec.seed, round_index, 1]))
      try:
        summary = collector.collect_round(self.task, policy, self.expert, model,
                                          spec.episodes_per_round, out, spec.seed, round_index,
                                          spec.episode_length,
                                          expert_labels=self.method.expert_labels)
      finally:
        model.close()
    summary = {k: v for k, v in summary.items() if k != 'paths'}
    summary['seconds'] = round(time.perf_counter() - start, 1)
    with open(marker + '.tmp', 'w') as f:
      json.dump(summary, f)
    os.replace(marker + '.tmp', marker)
    return summary

  def _intervention(self, round_index: int) -> intervention_lib.InterventionModel:
    name = self.spec.intervention or self.method.intervention
    config_class = intervention_lib.MODELS[name].config_class
    task_settings = ({'alpha': intervention_lib.calibrated_alpha(self.task.name)}
                     if name == 'value' else {})
    config = config_class(**{'hold_steps': self.spec.hold_steps, **task_settings,
                             **dict(self.spec.intervention_overrides)})
    extra = {}
    if name == 'value':
      extra['q_ref'] = self.reference()
      if self.spec.operator_standard == 'clean':
        extra['standard'] = self._clean_standard()
    elif name == 'foresight':
      from sim import lookahead
      extra['lookahead'] = lookahead.LookaheadCritic(self.task, self.base_expert,
                                                     horizon=config.horizon, gamma=config.gamma)
    # One model per round with a round-specific seed: a resumed round draws what it drew before.
    seed = int(np.random.SeedSequence([self.spec.seed, 77, round_index]).generate_state(1)[0])
    return intervention_lib.make_model(name, seed=seed, config=config, **extra)

  def _clean_standard(self) -> Callable:
    """The undegraded expert's actions on a batch of observations (`operator_standard='clean'`);
    only an expert whose action depends on the observation alone can be that standard."""
    if hasattr(self.base_expert, 'bind') or not hasattr(self.base_expert, 'action'):
      raise ValueError(f'{type(self.base_expert).__name__} acts on its simulator, not on the '
                       f'observation alone, so it cannot be the operator standard "clean"')
    return functools.partial(experts_lib.executed_actions, self.base_expert)

  def _append(self, round_index: int) -> dict:
    from pipeline import round_job
    result = round_job.run_round([os.path.join(self._raw_dir(round_index), '*.npz')],
                                 self.data_dir, self.dataset, round_index,
                                 takeover=self.spec.takeover, runner=self.spec.pipeline_engine)
    report = result.report
    return {'status': result.status, 'episodes': report.get('episodes_written'),
            'rejected': report.get('episodes_rejected')}

  def _train(self, learner: str, round_index: int, num_steps: int, run_name: str,
             init_from: Optional[str] = None) -> str:
    """Trains `learner` through `round_index` (the trainer's follow schedule, resumable) and
    returns the exported policy's path. One trainer per run folder stays up across the rounds
    of this process, so a round costs no restore, data reload or retracing."""
    from trainer import learners
    from trainer import train_loop
    run = os.path.join(self.run_dir, run_name)
    policy_dir = os.path.join(run, 'policies', f'round_{round_index}')
    if os.path.exists(policy_dir):
      return policy_dir
    trainer = self._trainers.get(run_name)
    if trainer is None:
      overrides = {} if run_name == INITIAL else dict(self.spec.learner_overrides)
      settings = learners.load_settings(learner, overrides=overrides)
      config = train_loop.LoopConfig(
          learner=learner, batch_size=self.spec.batch_size,
          prior_fraction=self.spec.prior_fraction, num_steps=num_steps,
          steps_per_round=num_steps, follow=True, poll_seconds=0.0, follow_timeout=0.0,
          max_round=round_index, checkpoint_every=max(num_steps // 2, 1),
          summary_every=max(num_steps // 10, 1), seed=self.spec.seed, progress=False)
      trainer = train_loop.TrainLoop(config, settings, self.data_dir, self.dataset, run,
                                     log=lambda m: self.log(f'  [{run_name}] {m}'))
      if init_from is not None and not trainer.resumable:
        _copy_actor(init_from, trainer.agent, self.data_dir, self.dataset, self.spec.seed)
        trainer.actor_initialised = True  # the run's shared initial policy, not a warm start
        self.log(f'  [{run_name}] actor initialised from {init_from}')
      elif init_from is None:
        trainer.actor_warm_start = 0  # the spec asks for an actor from scratch
      self._trainers[run_name] = trainer
    trainer.config.max_round = round_index
    # Rounds of expert-only episodes (all of BC's) are prior data like the demonstrations.
    trainer.config.prior_rounds = (tuple(range(round_index + 1))
                                   if self.method.intervention is None else (0,))
    trainer.run()
    return policy_dir

  # ------------------------------------------------------------------------- the loop

  def run(self) -> list[dict]:
    """Runs the rounds not yet recorded; raises `trainer.run_lock.RunInUse` while another
    process runs the same folder."""
    from trainer import run_lock
    with run_lock.hold(self.run_dir):
      return self._run()

  def _run(self) -> list[dict]:
    spec = self.spec
    done = {row['round'] for row in self.results()}
    self.log(f'{spec.method} on {self.task.name}, expert noise {spec.expert_noise}, distortion '
             f'{spec.expert_distortion}, seed {spec.seed}: {spec.rounds} rounds x '
             f'{spec.episodes_per_round} episodes '
             f'({spec.env_steps} env steps) -> {self.run_dir}')
    policy = None  # the newest exported policy, loaded once: evaluated, then deployed
    for r in range(spec.rounds + 1):
      start = time.perf_counter()
      if r in done:
        policy = None
        continue
      stages = {}  # seconds per stage of this round
      timed = functools.partial(_timed, stages)
      if r > 0 and policy is None:  # resuming after rounds finished by an earlier run
        policy = collector.load_saved_policy(self._policy_dir(r - 1))
      collected = timed('collect', self._collect, r, policy)
      appended = timed('append', self._append, r)
      if r == 0:
        policy_dir = timed('train', self._train, 'bc', 0, spec.initial_updates, INITIAL)
      else:
        init_from = (os.path.join(self.run_dir, INITIAL, 'checkpoints')
                     if spec.warm_start_actor else None)
        policy_dir = timed('train', self._train, self.method.learner, r, spec.updates_per_round,
                           'learner', init_from)
      policy = timed('load_policy', collector.load_saved_policy, policy_dir)
      evaluation = timed('evaluate', evaluate, self.task, policy, spec.eval_episodes, spec.seed,
                         spec.episode_length)
      row = {'round': r, 'method': spec.method, 'task': self.task.name,
             'expert_noise': spec.expert_noise, 'expert_distortion': spec.expert_distortion,
             'seed': spec.seed,
             'env_steps': spec.env_steps_through(r),
             'collection': collected, 'pipeline': appended, 'eval': evaluation,
             'seconds': round(time.perf_counter() - start, 1), 'stage_seconds': stages}
      self._record(row)
      counts = collected.get('intervention_decisions')
      flagged = (f' ({counts["flagged_takeovers"]} of {counts["takeovers"]} takeovers flagged)'
                 if intervention_lib.flagged_share(counts) is not None else '')
      self.log(f'round {r}: collected success {collected["success_rate"]:.2f}, intervention '
               f'rate {collected["intervention_rate"]:.3f}{flagged} | policy success '
               f'{evaluation["success_rate"]:.2f}, return {evaluation["mean_return"]:.1f} '
               f'({row["seconds"]} s)')
    return self.results()

  def _policy_dir(self, round_index: int) -> str:
    name = INITIAL if round_index == 0 else 'learner'
    return os.path.join(self.run_dir, name, 'policies', f'round_{round_index}')


def _timed(stages: dict, stage: str, fn: Callable, *args):
  """fn(*args), its wall time recorded as stages[stage] (seconds)."""
  began = time.perf_counter()
  out = fn(*args)
  stages[stage] = round(time.perf_counter() - began, 1)
  return out


def _copy_actor(checkpoint_dir: str, agent, data_dir: str, dataset: str, seed: int) -> None:
  """Loads the initial BC agent's latest checkpoint and copies its actor (and encoder) into
  `agent` (`trainer.warm_start.copy_actor`: the same layout)."""
  import tensorflow as tf
  from trainer import rounds_data
  from trainer import warm_start
  data = rounds_data.RlifDataset(data_dir, dataset)
  source = warm_start.behaviour_cloning_agent(data.observation_spec, data.action_dim, seed=seed)
  latest = tf.train.latest_checkpoint(checkpoint_dir)
  if latest is None:
    raise FileNotFoundError(f'no checkpoint of the initial policy in {checkpoint_dir}')
  tf.train.Checkpoint(agent=source).restore(latest).expect_partial()
  warm_start.copy_actor(source, agent)


def main(argv=None) -> None:
  """python -m sim.loop --task pen --method rlif_value --expert_noise 0.5 --run_dir runs/loop/x"""
  import argparse
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--task', default='pen', choices=sorted(tasks_lib.TASKS))
  parser.add_argument('--method', default='rlif_value', choices=sorted(METHODS))
  parser.add_argument('--expert_noise', type=float, default=0.0)
  parser.add_argument('--expert_distortion', type=float, default=0.0)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--operator_standard', default='own', choices=OPERATOR_STANDARDS,
                      help="what the value model rates against the policy's action: the acting "
                      "expert's proposal ('own', the paper) or the undegraded expert's ('clean')")
  parser.add_argument('--run_dir', default=None)
  parser.add_argument('--expert_dir', default=os.path.join(
      os.path.dirname(os.path.dirname(os.path.abspath(__file__))), '..', 'shared', 'experts',
      'adroit'), help="folder of <task>_dapg_expert.npz files, or 'project' for the "
      "project's own expert (sim/project_expert.py; pen only)")
  parser.add_argument('--reference_dir', default=os.path.join(RUNS_ROOT, 'reference'))
  for field in ('num_demos', 'rounds', 'episodes_per_round', 'initial_updates',
                'updates_per_round', 'eval_episodes', 'max_env_steps'):
    parser.add_argument(f'--{field}', type=int, default=getattr(LoopSpec, field))
  parser.add_argument('--set', action='append', default=[],
                      help='learner setting override key=JSON (e.g. critic_updates_per_step=2)')
  args = parser.parse_args(argv)
  from trainer import learners
  spec = LoopSpec(task=args.task, method=args.method, expert_noise=args.expert_noise,
                  expert_distortion=args.expert_distortion, seed=args.seed,
                  operator_standard=args.operator_standard, num_demos=args.num_demos,
                  rounds=args.rounds,
                  episodes_per_round=args.episodes_per_round,
                  initial_updates=args.initial_updates,
                  updates_per_round=args.updates_per_round, eval_episodes=args.eval_episodes,
                  max_env_steps=args.max_env_steps,
                  learner_overrides=tuple(learners.parse_overrides(args.set).items()))
  run_dir = args.run_dir or os.path.join(
      RUNS_ROOT, 'loop', f'{spec.task}-{spec.method}-noise{spec.expert_noise}'
      + (f'-distortion{spec.expert_distortion}' if spec.expert_distortion else '')
      + f'-s{spec.seed}')
  expert_dir = None if args.expert_dir == 'project' else args.expert_dir
  from trainer import run_lock
  try:
    RlifLoop(spec, run_dir, expert_dir, args.reference_dir).run()
  except run_lock.RunInUse as e:
    raise SystemExit(f'error: {e}') from None


if __name__ == '__main__':
  main()
