"""Trains a learner on the rounds of an RLIF dataset, following new rounds as they are committed.

The loop owns data, checkpoints, summaries and policy export; the learner (a TF-Agents agent)
only sees `Transition` batches.

Schedule: the rounds committed at start join the sampling pools and the learner trains
`num_steps` updates; then the policy is exported as `policies/round_K` (K = newest round joined).
With `follow`, the loop then waits for new rounds; each that appears joins the pools without a
restart, the learner trains `steps_per_round` more updates, and the policy is exported again.
Everything needed to resume (networks, optimizers, temperature, sampler state, step counter and
this schedule) is in one checkpoint, so a killed run loses at most one checkpoint interval.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from trainer import learners
from trainer import operator_noise
from trainer import pairing
from trainer import replay as replay_lib
from trainer import rounds_data
from trainer import run_lock


@dataclasses.dataclass
class LoopConfig:
  learner: str = learners.DEFAULT_LEARNER
  batch_size: int = 256
  # Share of each batch drawn from prior data; None: the learner's settings file, else 0.5.
  prior_fraction: Optional[float] = None
  prior_rounds: tuple[int, ...] = (0,)  # Rounds that are prior data (demonstrations).
  num_steps: int = 10_000              # Updates on the rounds present at start.
  steps_per_round: Optional[int] = None  # Follow mode: updates after each new round.
  follow: bool = False
  poll_seconds: float = 10.0
  follow_timeout: Optional[float] = None  # Stop after this long without a new round.
  max_round: Optional[int] = None      # Stop once this round has been trained and exported.
  checkpoint_every: int = 1000
  summary_every: int = 100
  seed: int = 0
  progress: bool = True


def route_round(data_rule: str, transitions: dict, is_prior: bool,
                refused: Optional[dict] = None) -> list[tuple[dict, bool]]:
  """[(transitions, into_prior_pool)] for one round under a learner's data rule
  (trainer/learners.py). `refused`: the round's refused proposals (pairing.refused_proposals),
  given when the learner's settings take them; they join an RL learner's online pool."""
  if is_prior:
    return [(transitions, True)]
  if data_rule == 'rl':
    extra = [(refused, False)] if refused is not None and pairing.size(refused) else []
    return [(transitions, False)] + extra
  if data_rule == 'prior':
    return []
  if data_rule == 'takeovers':
    return [(pairing.select(transitions, transitions['is_intervention']), True)]
  if data_rule == 'labels':
    return [(pairing.expert_labelled(transitions), True)]
  raise ValueError(f'unknown data rule {data_rule!r}; known: {learners.DATA_RULES}')


@dataclasses.dataclass
class Schedule:
  """The loop's progress, saved inside the checkpoint."""
  joined: list = dataclasses.field(default_factory=list)
  target_step: int = 0
  exported: list = dataclasses.field(default_factory=list)


class TrainLoop:

  def __init__(self, config: LoopConfig, settings: dict, data_dir: str, dataset: str,
               run_dir: str, log: Callable[[str], None] = print):
    self.config, self.run_dir, self.log = config, run_dir, log
    self.data = rounds_data.RlifDataset(data_dir, dataset)
    entry = learners.LEARNERS[config.learner]
    self.data_rule = entry.data_rule
    agent_settings, loop_settings = learners.split_settings(settings)
    self.prior_fraction = float(
        config.prior_fraction if config.prior_fraction is not None
        else loop_settings.get('prior_fraction', learners.DEFAULT_PRIOR_FRACTION))
    self.actor_warm_start = int(loop_settings.get('actor_warm_start', 0))
    demonstrated_term = agent_settings.get('bc_actions', 'all') == 'demonstrated'

    def needs_demonstrated_term(in_use: bool, setting: str, why: str) -> None:
      """Refuses `setting` in use where the behaviour term imitates every logged action."""
      if in_use and not demonstrated_term:
        raise ValueError(f"{setting} needs bc_actions = 'demonstrated': {why}")

    self.refused_proposals = bool(loop_settings.get('refused_proposals', False))
    needs_demonstrated_term(
        self.refused_proposals and float(agent_settings.get('bc_weight', 0.0)) > 0,
        'refused_proposals = true',
        'the behaviour term must not imitate the proposals the operator refused')
    # The policy's own actions the operator let run, imitated beside the demonstrations
    # (trainer/pairing.py `accepted`): only the 'demonstrated' term reads the flags.
    self.accepted_window = int(loop_settings.get('accepted_window', 0))
    if self.accepted_window < 0:
      raise ValueError(f'accepted_window must be >= 0, got {self.accepted_window}')
    needs_demonstrated_term(bool(self.accepted_window), f'accepted_window = {self.accepted_window}',
                            "with 'all' every logged action is imitated already")
    # How much each of the operator's own steps counts in the behaviour term against a
    # demonstration or an accepted action (trainer/pairing.py `demonstrated`, which refuses a
    # negative one when the replay below is made; default 1). "auto": read from how precise the
    # operator's demonstrations are (trainer/operator_noise.py) once the prior rounds have joined,
    # before any intervention round does (`_join`); until then 1. The replay's weight is the one
    # in force.
    setting = loop_settings.get('operator_weight', 1.0)
    self.operator_weight_auto = setting == 'auto'
    try:
      operator_weight = 1.0 if self.operator_weight_auto else float(setting)
    except (TypeError, ValueError):
      raise ValueError(f'operator_weight must be a number or "auto", got {setting!r}') from None
    self.operator_noise: Optional[float] = None  # read by "auto"
    self._prior_actions: list = []  # (actions, episode sizes) of the prior rounds, for "auto"
    needs_demonstrated_term(self.operator_weight_auto or operator_weight != 1.0,
                            f'operator_weight = {setting}',
                            "the 'all' term weighs every logged action alike")
    # How the behaviour term weighs the batch's two pools (trainer/replay.py): 'batch' as
    # drawn, 'pool' each demonstrated transition of either pool alike.
    bc_sampling = loop_settings.get('bc_sampling', 'batch')
    needs_demonstrated_term(bc_sampling != 'batch', f'bc_sampling = {bc_sampling!r}',
                            "the 'all' term weighs every logged action alike")
    self._actor_hidden = agent_settings.get('actor_hidden')
    self._encoder_settings = agent_settings.get('encoder')
    # Set by a caller that gives the actor its start itself (sim.loop copies the run's shared
    # initial policy): the warm start is then skipped.
    self.actor_initialised = False
    self.agent = entry.make_agent(self.data.observation_spec, self.data.action_dim,
                                  seed=config.seed, **agent_settings)
    self.updates_per_call = int(getattr(self.agent, 'critic_updates_per_step', 1))
    # n-step TD data (pairing.multi_step): a setting of the RL learners, whose agents' gamma the
    # sums use.
    self.n_step = int(loop_settings.get('n_step', 1))
    if self.n_step < 1:
      raise ValueError(f'n_step must be >= 1, got {self.n_step}')
    if self.n_step > 1 and self.data_rule != 'rl':
      raise ValueError(f'n_step = {self.n_step} is a setting of the RL learners; learner '
                       f'{config.learner!r} does not learn from rewards')
    self.replay = replay_lib.MixedReplay(self.data.observation_spec, self.data.action_dim,
                                         self.prior_fraction, seed=config.seed,
                                         operator_weight=operator_weight,
                                         bc_sampling=bc_sampling)
    self.schedule = Schedule()
    self._schedule_var = tf.Variable('', dtype=tf.string, trainable=False)
    self._checkpoint = tf.train.Checkpoint(agent=self.agent, sampler=self.replay.generator,
                                           schedule=self._schedule_var)
    # Both touch the run folder (the manager reads its checkpoint state once, the writer
    # creates an events file), so they are made in `_run`, under the run lock.
    self._manager: Optional[tf.train.CheckpointManager] = None
    self._writer = None
    self.round_stats: dict[int, dict] = {}
    self._started = False  # data joined (fresh or restored); `run` continues from here

  # ---------------------------------------------------------------------------- data

  def _join(self, rounds: list[int]) -> None:
    for r in rounds:
      data = self.data.load_round(r)
      is_prior = r in self.config.prior_rounds
      refused = data.refused if self.refused_proposals else None
      transitions = data.transitions
      if self.operator_weight_auto:
        if is_prior:
          self._prior_actions.append((transitions['action'], data.episode_sizes))
        elif self.operator_noise is None:
          self._read_operator_weight()
      if self.accepted_window and not is_prior:
        transitions = dict(transitions, accepted=pairing.accepted(
            transitions, data.episode_sizes, self.accepted_window))
      if self.n_step > 1:
        transitions = pairing.multi_step(transitions, data.episode_sizes, self.n_step,
                                         self.agent.gamma)
      for transitions, into_prior in route_round(self.data_rule, transitions, is_prior, refused):
        self.replay.add(transitions, prior=into_prior)
      self.round_stats[r] = {'episodes': data.episodes,
                             'transitions': pairing.size(data.transitions),
                             'refused_proposals': pairing.size(data.refused),
                             'intervention_rate': data.intervention_rate,
                             'negative_rewards': int((data.transitions['reward'] < 0).sum())}
      with self._summaries().as_default(step=r):
        tf.summary.scalar('rounds/intervention_rate', data.intervention_rate)
        tf.summary.scalar('rounds/episodes', data.episodes)
      self.log(f'round {r} joined ({"prior" if is_prior else "intervention"} data): '
               f'{data.episodes} episodes, {pairing.size(data.transitions)} transitions, '
               f'intervention rate {data.intervention_rate:.3f}'
               + (f', {pairing.size(refused)} refused proposals' if refused is not None else '')
               + f'; pools: prior '
               f'{self.replay.size(True)}, intervention {self.replay.size(False)}')

  def _read_operator_weight(self) -> None:
    """`operator_weight = "auto"`: the weight of the operator's steps from how precise its
    demonstrations (the prior rounds joined so far) read; 1 without enough of them."""
    actions = [a for a, _ in self._prior_actions] or [np.zeros((0, self.data.action_dim))]
    sizes = [n for _, n in self._prior_actions] or [np.zeros(0, int)]
    self._prior_actions = []  # read once: the prior pool holds these actions already
    try:
      self.operator_noise = operator_noise.roughness_noise(np.concatenate(actions),
                                                           np.concatenate(sizes))
    except ValueError as e:
      self.operator_noise = float('nan')
      self.log(f'operator_weight "auto": {e}; the operator\'s steps weigh 1')
      return
    self.replay.operator_weight = operator_noise.weight_for(self.operator_noise)
    self.log(f'operator_weight "auto": the demonstrations read a per-step noise of '
             f'{self.operator_noise:.3f} (precise: at most {operator_noise.PRECISE_NOISE}), so '
             f'the operator\'s steps weigh {self.replay.operator_weight:g}')

  def _new_rounds(self) -> list[int]:
    """Committed rounds after the newest joined one, up to the first gap (a round committed
    out of order waits until the rounds before it exist)."""
    committed = set(self.data.rounds())
    new, r = [], max(self.schedule.joined) + 1
    while r in committed:
      new.append(r)
      r += 1
    return new

  def _check_start_rounds(self, rounds: list[int]) -> None:
    if not rounds:
      raise rounds_data.DatasetError(f'{self.data.version_dir} has no committed round yet')
    missing = sorted(set(range(rounds[-1] + 1)) - set(rounds))
    if missing:
      raise rounds_data.DatasetError(
          f'{self.data.version_dir}: rounds {missing} are missing (committed: {rounds}); '
          'the trainer consumes rounds in order')
    absent_prior = [r for r in self.config.prior_rounds if r not in rounds]
    if absent_prior and self.prior_fraction > 0:
      raise rounds_data.DatasetError(
          f'{self.data.version_dir}: prior round(s) {absent_prior} are not committed '
          f'(committed: {rounds}); write the prior data first or pass --prior_fraction=0')

  # ---------------------------------------------------------------------------- state

  def _save(self) -> None:
    self._schedule_var.assign(json.dumps(dataclasses.asdict(self.schedule)))
    self._manager.save(checkpoint_number=int(self.agent.train_step_counter.numpy()))

  def _restore(self) -> bool:
    if not self._manager.latest_checkpoint:
      return False
    self._checkpoint.restore(self._manager.latest_checkpoint).assert_existing_objects_matched()
    self.schedule = Schedule(**json.loads(self._schedule_var.numpy().decode()))
    self.log(f'resumed from {self._manager.latest_checkpoint} at step {self.step}')
    self._join(self.schedule.joined)
    return True

  def _summaries(self):
    if self._writer is None:
      self._writer = tf.summary.create_file_writer(os.path.join(self.run_dir, 'tensorboard'))
    return self._writer

  @property
  def resumable(self) -> bool:
    """Whether `run` will resume from a checkpoint rather than start fresh."""
    return tf.train.latest_checkpoint(os.path.join(self.run_dir, 'checkpoints')) is not None

  @property
  def step(self) -> int:
    return int(self.agent.train_step_counter.numpy())

  # ---------------------------------------------------------------------------- phases

  def _warm_start_actor(self) -> None:
    """BC updates of the actor on the prior data before RL (`actor_warm_start` of the settings),
    unless the caller initialised the actor or there is no prior data."""
    if not self.actor_warm_start or self.actor_initialised or not self.replay.size(True):
      return
    from trainer import warm_start
    start = time.perf_counter()
    prior = self.replay.prior_only()
    metrics = warm_start.warm_start(
        self.agent, lambda: prior.sample(self.config.batch_size), self.actor_warm_start,
        self.data.observation_spec, self.data.action_dim, self._actor_hidden, self.config.seed,
        encoder=self._encoder_settings)
    self.actor_initialised = True
    self.log(f'actor warm-started by {self.actor_warm_start} BC updates on the prior data '
             f'({time.perf_counter() - start:.0f} s, bc_loss {metrics.get("bc_loss", 0):.3g})')

  def _train_until(self, target: int) -> None:
    config = self.config
    n_prior = replay_lib.prior_count(config.batch_size, self.prior_fraction,
                                     self.replay.size(True), self.replay.size(False))
    bar = None
    if config.progress:
      from tqdm import tqdm
      bar = tqdm(total=target, initial=self.step, unit='step', dynamic_ncols=True,
                 desc=f'{config.learner} (rounds {self.schedule.joined})')
    last_time, last_step = time.perf_counter(), self.step
    while self.step < target:
      batch = self.replay.sample(config.batch_size, self.updates_per_call)
      loss_info = self.agent.train(batch)
      step = self.step
      if bar is not None:
        bar.update(1)
      if step % config.summary_every == 0 or step == target:
        now = time.perf_counter()
        rate = (step - last_step) / max(now - last_time, 1e-9)
        last_time, last_step = now, step
        with self._summaries().as_default(step=step):
          for name, value in loss_info.extra.items():
            tf.summary.scalar(f'learner/{name}', value)
          tf.summary.scalar('speed/updates_per_second', rate * self.updates_per_call)
          tf.summary.scalar('speed/train_calls_per_second', rate)
          tf.summary.scalar('data/prior_fraction', n_prior / config.batch_size)
          tf.summary.scalar('data/prior_pool', self.replay.size(True))
          tf.summary.scalar('data/intervention_pool', self.replay.size(False))
        if bar is not None:
          bar.set_postfix({k: f'{float(v):.3g}' for k, v in loss_info.extra.items()
                           if k in ('critic_loss', 'actor_loss', 'temperature', 'loss')})
      if step % config.checkpoint_every == 0:
        self._save()
    if bar is not None:
      bar.close()
    self._summaries().flush()

  def _export(self) -> str:
    from tf_agents.policies import policy_saver
    round_index = max(self.schedule.joined)
    final = os.path.join(self.run_dir, 'policies', f'round_{round_index}')
    tmp = final + '.tmp'
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.rmtree(tmp)
    policy_saver.PolicySaver(self.agent.policy, batch_size=None).save(tmp)
    if tf.io.gfile.exists(final):
      tf.io.gfile.rmtree(final)
    tf.io.gfile.rename(tmp, final)
    self.schedule.exported.append(round_index)
    self.log(f'exported policy after round {round_index} (step {self.step}): {final}')
    return final

  def _wait_for_rounds(self) -> list[int]:
    deadline = (None if self.config.follow_timeout is None
                else time.monotonic() + self.config.follow_timeout)
    self.log('waiting for new rounds ...')
    while True:
      new = self._new_rounds()
      if new:
        return new
      if deadline is not None and time.monotonic() >= deadline:
        return []
      time.sleep(self.config.poll_seconds)

  def run(self) -> dict:
    """Trains and exports through the schedule; returns when it ends (no follow, `max_round`
    reached, or no new round within `follow_timeout`). Calling it again on the same loop, e.g.
    after raising `config.max_round`, continues without restoring or retracing anything: how
    the simulated closed loop keeps one trainer up across its rounds. Raises
    `run_lock.RunInUse` if another process is training into the same run folder."""
    with run_lock.hold(self.run_dir):
      return self._run()

  def _run(self) -> dict:
    config = self.config
    steps_per_round = config.steps_per_round or config.num_steps
    if not self._started:
      self._manager = tf.train.CheckpointManager(
          self._checkpoint, os.path.join(self.run_dir, 'checkpoints'), max_to_keep=2)
      if not self._restore():
        rounds = self.data.rounds()
        self._check_start_rounds(rounds)
        self._join(rounds)
        self.schedule.joined = rounds
        self.schedule.target_step = config.num_steps
        self._warm_start_actor()
      self._started = True
    while True:
      self._train_until(self.schedule.target_step)
      if max(self.schedule.joined) not in self.schedule.exported:
        self._export()
      self._save()
      if not config.follow or (config.max_round is not None
                               and max(self.schedule.joined) >= config.max_round):
        break
      new = self._wait_for_rounds()
      if not new:
        self.log(f'no new round for {config.follow_timeout} s; stopping')
        break
      self._join(new)
      self.schedule.joined = sorted(self.schedule.joined + new)
      self.schedule.target_step = self.step + steps_per_round
      self._save()
    return {'step': self.step, 'joined': self.schedule.joined,
            'exported': self.schedule.exported, 'rounds': self.round_stats,
            'operator_weight': self.replay.operator_weight}
