r"""Trains a policy on an RLIF dataset and exports it for the next intervention round.

  python -m trainer.main --dataset=rlif_adroit [--data_dir=~/rlif_data]
      [--learner=rlif|rlpd|bc|hg_dagger|dagger]
      [--num_steps=N] [--follow --steps_per_round=N] [--set critic_updates_per_step=5]

The embedded default (`python -m trainer.main`): when `rlif_adroit` is not under --data_dir yet,
it is prepared first: from raw logs in TFDS's manual directory (<manual_dir>/<task>/round_<N>/)
when there are any, otherwise by collecting round 0 in the simulator with the project's own
expert (and --prepare_rounds intervention rounds). After training, the exported policy is
evaluated in the simulator (--eval_episodes). Both steps are plug-ins (trainer/plugins.py: the
`rlif_adroit` dataset preparer and the `adroit` evaluator, both in sim/), so the trainer imports
neither how its dataset is made nor the simulator.

Flags live here only; the loop is trainer/train_loop.py and learner settings are configs/*.toml.
"""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags

_DATASET = flags.DEFINE_string('dataset', 'rlif_adroit', 'Dataset name.')
_DATA_DIR = flags.DEFINE_string('data_dir', '~/rlif_data', 'Root folder of TFDS datasets.')
_RUN_DIR = flags.DEFINE_string('run_dir', None,
                               'Checkpoints, TensorBoard logs and exported policies '
                               '(default: runs/<dataset>/<learner>).')
_LEARNER = flags.DEFINE_enum('learner', 'rlif', ['rlif', 'rlpd', 'bc', 'hg_dagger', 'dagger'],
                             'Learner: rlif (the product recipe, configs/rlif.toml), rlpd (the '
                             "paper's plain RLPD), bc, hg_dagger, dagger.")
_CONFIG = flags.DEFINE_string('config', None, 'Learner settings, TOML or JSON (default '
                              'configs/<learner>.toml).')
_SET = flags.DEFINE_multi_string('set', [], 'Override a learner setting: key=JSON value.')
_NUM_STEPS = flags.DEFINE_integer('num_steps', 1000, 'Updates on the rounds present at start.')
_STEPS_PER_ROUND = flags.DEFINE_integer('steps_per_round', None,
                                        'With --follow: updates after each new round '
                                        '(default --num_steps).')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 256, 'Batch size of each update.')
_PRIOR_FRACTION = flags.DEFINE_float('prior_fraction', None,
                                     'Share of each batch drawn from prior data (default: the '
                                     "learner's settings file, rlif 0.75; else 0.5).")
_PRIOR_ROUNDS = flags.DEFINE_list('prior_rounds', ['0'], 'Rounds that hold prior data.')
_FOLLOW = flags.DEFINE_bool('follow', False, 'Keep running and train on new rounds as they '
                            'are committed.')
_POLL_SECONDS = flags.DEFINE_float('poll_seconds', 10.0, 'With --follow: how often to look.')
_FOLLOW_TIMEOUT = flags.DEFINE_float('follow_timeout', None,
                                     'With --follow: stop after this many seconds without a new '
                                     'round (default: never).')
_MAX_ROUND = flags.DEFINE_integer('max_round', None, 'With --follow: stop after this round.')
_CHECKPOINT_EVERY = flags.DEFINE_integer('checkpoint_every', 1000, 'Updates between checkpoints.')
_SUMMARY_EVERY = flags.DEFINE_integer('summary_every', 100, 'Updates between summaries.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of networks and sampling.')
_PROGRESS = flags.DEFINE_bool('progress', True, 'Show a progress bar.')
_PREPARE = flags.DEFINE_bool('prepare', None, 'Prepare the dataset when it is missing (default: '
                             'only for rlif_adroit).')
_TASK = flags.DEFINE_enum('task', 'pen', ['pen', 'door', 'hammer', 'relocate'],
                          'Adroit task of the prepared dataset and of the evaluation.')
_MANUAL_DIR = flags.DEFINE_string('manual_dir', None, 'Raw logs to prepare from (default: TFDS '
                                  'manual dir, ~/tensorflow_datasets/downloads/manual/<dataset>).')
_NUM_DEMOS = flags.DEFINE_integer('num_demos', 4, 'Preparing: expert demonstrations (round 0).')
_PREPARE_ROUNDS = flags.DEFINE_integer('prepare_rounds', 1, 'Preparing: intervention rounds to '
                                       'collect after round 0.')
_EPISODES_PER_ROUND = flags.DEFINE_integer('episodes_per_round', 4,
                                           'Preparing: episodes per intervention round.')
_SIMULATE = flags.DEFINE_bool('simulate', False, 'Preparing: collect in the simulator even '
                              'where a sample of raw logs ships for the task (pen).')
_EVAL_EPISODES = flags.DEFINE_integer('eval_episodes', 20, 'Episodes to evaluate the exported '
                                      'policy on in simulation (0: none).')
_EVALUATOR = flags.DEFINE_string('evaluator', 'adroit', 'The policy evaluator plug-in '
                                 '(rlif.policy_evaluators; "" for none).')


def resolve_run_dir(run_dir, dataset: str, learner: str) -> str:
  """--run_dir, or runs/DATASET/LEARNER: a local folder made absolute, a tf.io.gfile URL
  (gs://...) as given."""
  run_dir = run_dir or os.path.join('runs', dataset, learner)
  return run_dir if '://' in run_dir else os.path.abspath(run_dir)


def main(argv):
  del argv
  from absl import logging
  from trainer import console
  console.quiet_libraries()  # before TensorFlow's import
  logging.set_verbosity(logging.WARNING)  # TFDS logs every dataset read at INFO
  from trainer import learners
  from trainer import plugins
  from trainer import rounds_data
  from trainer import run_lock
  from trainer import train_loop

  data_dir = os.path.expanduser(_DATA_DIR.value)
  prepare = _PREPARE.value if _PREPARE.value is not None else _DATASET.value == 'rlif_adroit'
  if prepare:
    try:
      rounds_data.find_version_dir(data_dir, _DATASET.value)
    except rounds_data.DatasetError:
      try:
        prepare_dataset = plugins.require(plugins.PREPARERS, _DATASET.value)
      except LookupError as e:
        print(f'error: {_DATASET.value} is not under {data_dir} and cannot be prepared: {e}',
              file=sys.stderr)
        return 2
      prepare_dataset(data_dir, _DATASET.value, task=_TASK.value, manual_dir=_MANUAL_DIR.value,
                      num_demos=_NUM_DEMOS.value, intervention_rounds=_PREPARE_ROUNDS.value,
                      episodes_per_round=_EPISODES_PER_ROUND.value, seed=_SEED.value,
                      simulate=_SIMULATE.value)
  run_dir = resolve_run_dir(_RUN_DIR.value, _DATASET.value, _LEARNER.value)
  try:
    settings = learners.load_settings(_LEARNER.value, _CONFIG.value,
                                      learners.parse_overrides(_SET.value))
  except ValueError as e:
    raise app.UsageError(str(e))
  config = train_loop.LoopConfig(
      learner=_LEARNER.value, batch_size=_BATCH_SIZE.value, prior_fraction=_PRIOR_FRACTION.value,
      prior_rounds=tuple(int(r) for r in _PRIOR_ROUNDS.value), num_steps=_NUM_STEPS.value,
      steps_per_round=_STEPS_PER_ROUND.value, follow=_FOLLOW.value,
      poll_seconds=_POLL_SECONDS.value, follow_timeout=_FOLLOW_TIMEOUT.value,
      max_round=_MAX_ROUND.value, checkpoint_every=_CHECKPOINT_EVERY.value,
      summary_every=_SUMMARY_EVERY.value, seed=_SEED.value, progress=_PROGRESS.value)
  try:
    with run_lock.hold(run_dir):  # before the loop writes anything into the folder
      loop = train_loop.TrainLoop(config, settings, data_dir, _DATASET.value, run_dir)
      print(f'dataset: {loop.data.version_dir} (rounds {loop.data.rounds()})')
      print(f'learner: {_LEARNER.value} {settings}')
      if (learners.LEARNERS[_LEARNER.value].data_rule == 'rl'
          and set(loop.data.rounds()) <= set(config.prior_rounds) and not config.follow):
        print('note: the dataset holds prior data only (no intervention round): every RLIF reward '
              'is 0, so RL has nothing to learn from yet; collect an intervention round '
              '(--prepare_rounds=1 when preparing) or compare with --learner=bc')
      result = loop.run()
      print(f'trained {result["step"]} steps on rounds {result["joined"]}')
      policy_dir = os.path.join(run_dir, 'policies', f'round_{max(result["joined"])}')
      if _EVAL_EPISODES.value > 0 and _EVALUATOR.value:
        _evaluate(loop.data, policy_dir, run_dir)  # writes evaluation.json: still ours
  except (rounds_data.DatasetError, run_lock.RunInUse) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(f'dataset:     {loop.data.version_dir}')
  print(f'checkpoints: {os.path.join(run_dir, "checkpoints")}')
  print(f'policies:    {os.path.join(run_dir, "policies")} (rounds {result["exported"]})')
  print(f'tensorboard: tensorboard --logdir {os.path.join(run_dir, "tensorboard")}')
  return 0


def _evaluate(data, policy_dir: str, run_dir: str) -> None:
  """Runs the exported policy in the evaluator plug-in and prints its success rate."""
  import json
  from trainer import plugins
  try:
    evaluate = plugins.require(plugins.EVALUATORS, _EVALUATOR.value)
  except LookupError as e:
    print(f'evaluation skipped: {e}')
    return
  result = evaluate(policy_dir, episodes=_EVAL_EPISODES.value, seed=_SEED.value,
                    observation_dim=data.observation_dim, action_dim=data.action_dim,
                    task=_TASK.value)
  if 'skipped' in result:
    print(f'evaluation skipped: {result["skipped"]}')
    return
  import tensorflow as tf
  with tf.io.gfile.GFile(os.path.join(run_dir, 'evaluation.json'), 'w') as f:  # gs:// too
    json.dump({'policy': policy_dir, **result}, f, indent=1)
  print(f'evaluation:  {result.get("task", _EVALUATOR.value)}, {result["episodes"]} episodes: '
        f'success {result["success_rate"]:.2f}, mean return {result["mean_return"]:.1f}')


if __name__ == '__main__':
  app.run(main)
