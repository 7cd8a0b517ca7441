"""The training loop on real datasets: export/load, follow mode, resume after kill -9."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from pipeline import round_job
from trainer import learners
from trainer import replay as replay_lib
from trainer import rounds_data
from trainer import train_loop

from tests.conftest import ACT_DIM, OBS_DIM

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = {'num_critics': 3, 'num_min_critics': 2, 'critic_hidden': [16, 16],
        'actor_hidden': [16, 16], 'use_xla': False}


def write(raw_logs, data_dir, round_index, **kw):
  inputs = raw_logs(f'in{round_index}', round_index, **kw)
  round_job.run_round([os.path.join(inputs, '*')], data_dir, 'ds', round_index, runner='plain')


def loop(tmp_path, learner='rlpd', settings=TINY, **kw):
  config = train_loop.LoopConfig(learner=learner, batch_size=16, progress=False,
                                 checkpoint_every=10, summary_every=5, **kw)
  return train_loop.TrainLoop(config, dict(settings), str(tmp_path / 'data'), 'ds',
                              str(tmp_path / 'run'), log=lambda _: None)


def test_end_to_end_export_loads_without_project_code(raw_logs, tmp_path):
  write(raw_logs, str(tmp_path / 'data'), 0, demos=True)
  write(raw_logs, str(tmp_path / 'data'), 1)
  trainer = loop(tmp_path, num_steps=30)
  result = trainer.run()
  assert result['step'] == 30 and result['exported'] == [1]
  assert result['rounds'][1]['negative_rewards'] == 7
  assert trainer.agent.critic_optimizer.iterations.numpy() == 30
  observations = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
  from tf_agents.trajectories import time_step as ts
  expected = trainer.agent.policy.action(ts.restart(tf.constant(observations), 4)).action.numpy()
  # A fresh interpreter with TensorFlow and TFP only: no tf_agents, no project modules.
  script = (
      'import sys, json, numpy as np, tensorflow as tf, tensorflow_probability\n'
      f'policy = tf.saved_model.load({str(tmp_path / "run" / "policies" / "round_1")!r})\n'
      'obs = np.array(json.loads(sys.argv[1]), np.float32)\n'
      "out = policy.signatures['action'](**{'0/step_type': tf.zeros([4], tf.int32),\n"
      "    '0/reward': tf.zeros([4]), '0/discount': tf.ones([4]), '0/observation': obs})\n"
      "assert not [m for m in sys.modules if m.split('.')[0] in ('tf_agents', 'trainer')]\n"
      "print(json.dumps(out['action'].numpy().tolist()))\n")
  out = subprocess.run([sys.executable, '-c', script, json.dumps(observations.tolist())],
                       capture_output=True, text=True, cwd=str(tmp_path), timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  loaded = np.array(json.loads(out.stdout.strip().splitlines()[-1]))
  np.testing.assert_allclose(loaded, expected, atol=1e-6)
  assert np.abs(loaded).max() <= 1.0
  events = os.listdir(tmp_path / 'run' / 'tensorboard')
  assert events and events[0].startswith('events.out.tfevents')


def test_follow_mode_picks_up_a_round_appended_while_running(raw_logs, tmp_path):
  data_dir = str(tmp_path / 'data')
  write(raw_logs, data_dir, 0, demos=True)
  trainer = loop(tmp_path, num_steps=20, steps_per_round=15, follow=True, poll_seconds=0.1,
                 follow_timeout=120, max_round=1)
  result = {}
  thread = threading.Thread(target=lambda: result.update(trainer.run()))
  thread.start()
  first_policy = tmp_path / 'run' / 'policies' / 'round_0'
  deadline = time.monotonic() + 120
  while not first_policy.exists() and time.monotonic() < deadline:
    time.sleep(0.1)
  assert first_policy.exists()
  write(raw_logs, data_dir, 1)  # Appended while the trainer process is running.
  thread.join(timeout=180)
  assert not thread.is_alive()
  assert result['joined'] == [0, 1] and result['exported'] == [0, 1]
  assert result['step'] == 35
  assert trainer.replay.size(prior=False) == 7 * 20  # Round 1 joined the intervention pool.
  assert (tmp_path / 'run' / 'policies' / 'round_1' / 'saved_model.pb').exists()


def test_resume_after_kill_9_loses_at_most_one_checkpoint_interval(raw_logs, tmp_path):
  data_dir = str(tmp_path / 'data')
  write(raw_logs, data_dir, 0)
  run_dir = tmp_path / 'run'
  args = [sys.executable, '-m', 'trainer.main', '--dataset=ds', f'--data_dir={data_dir}',
          f'--run_dir={run_dir}', '--num_steps=1500', '--checkpoint_every=25',
          '--batch_size=16', '--progress=false', '--set=num_critics=3',
          '--set=critic_hidden=[16,16]', '--set=actor_hidden=[16,16]',
          '--set=critic_updates_per_step=2', '--set=use_xla=false']
  proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  checkpoints = run_dir / 'checkpoints'
  deadline = time.monotonic() + 180
  while time.monotonic() < deadline:
    steps = [int(p.split('-')[1].split('.')[0]) for p in os.listdir(checkpoints)
             if p.startswith('ckpt-') and p.endswith('.index')] if checkpoints.exists() else []
    if steps and max(steps) >= 100:
      break
    assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  # The checkpoint the trainer itself will resume from (its state file may lag the newest
  # files by one save if the kill landed in between).
  latest = tf.train.latest_checkpoint(str(checkpoints))
  last = int(latest.rsplit('-', 1)[1])
  assert 100 - 25 <= last < 1500  # At most one interval behind what was on disk at the kill.
  out = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert f'resumed from {latest} at step {last}' in out.stdout
  assert 'trained 1500 steps' in out.stdout
  # Optimizer state came back too: 2 critic updates per step over all 1500 steps, and the
  # actor and temperature once per step after the default recipe's critic warm-up.
  warm_up = learners.load_settings('rlif')['actor_update_after']
  assert 0 < warm_up < 1500
  reader = tf.train.load_checkpoint(str(checkpoints))
  iterations = {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
                if k.endswith('_iterations/.ATTRIBUTES/VARIABLE_VALUE')}
  assert sorted(int(v) for v in iterations.values()) == [1500 - warm_up] * 2 + [3000], iterations


def test_rounds_with_a_gap_or_without_prior_data_are_refused(raw_logs, tmp_path):
  data_dir = str(tmp_path / 'data')
  write(raw_logs, data_dir, 1)
  with pytest.raises(rounds_data.DatasetError, match=r'rounds \[0\] are missing'):
    loop(tmp_path, num_steps=1).run()
  write(raw_logs, data_dir, 3)
  with pytest.raises(rounds_data.DatasetError, match=r'rounds \[0, 2\] are missing'):
    loop(tmp_path, num_steps=1).run()


@pytest.mark.parametrize('learner,prior,online', [('bc', 60, 0), ('hg_dagger', 60 + 7 * 4, 0),
                                                  ('rlpd', 60, 7 * 20)])
def test_baselines_see_their_share_of_the_data(raw_logs, tmp_path, learner, prior, online):
  data_dir = str(tmp_path / 'data')
  write(raw_logs, data_dir, 0, demos=True, num_npz=3, num_streamed=0)
  write(raw_logs, data_dir, 1)
  settings = TINY if learner == 'rlpd' else {'actor_hidden': [16, 16]}
  trainer = loop(tmp_path, learner=learner, settings=settings, num_steps=5)
  trainer.run()
  assert (trainer.replay.size(prior=True), trainer.replay.size(prior=False)) == (prior, online)


def test_refused_proposals_join_the_online_pool_only_when_the_settings_ask(raw_logs, tmp_path):
  data_dir = str(tmp_path / 'data')
  write(raw_logs, data_dir, 0, demos=True, num_npz=3, num_streamed=0)
  write(raw_logs, data_dir, 1)  # 3 of its 7 episodes log the policy's proposals; one takeover each
  trainer = loop(tmp_path, settings={**TINY, 'refused_proposals': True}, num_steps=2)
  trainer.run()
  assert trainer.replay.size(prior=False) == 7 * 20 + 3
  assert trainer.round_stats[1]['refused_proposals'] == 3
  # A behaviour term over every logged action would imitate them: refused.
  with pytest.raises(ValueError, match="bc_actions = 'demonstrated'"):
    loop(tmp_path, settings={**TINY, 'refused_proposals': True, 'bc_weight': 0.4})
  assert loop(tmp_path, settings={**TINY, 'refused_proposals': True, 'bc_weight': 0.4,
                                  'bc_actions': 'demonstrated'}).refused_proposals


def test_n_step_settings_give_the_rl_pools_n_step_targets_and_baselines_refuse_them(
    raw_logs, tmp_path):
  data_dir = str(tmp_path / 'data')
  write(raw_logs, data_dir, 0, demos=True, num_npz=3, num_streamed=0)
  write(raw_logs, data_dir, 1)
  trainer = loop(tmp_path, settings={**TINY, 'n_step': 5, 'gamma': 0.9}, num_steps=2)
  trainer.run()
  one_step = rounds_data.RlifDataset(data_dir, 'ds').load_round(1)
  pool = trainer.replay._tensors['online']
  np.testing.assert_array_equal(pool.observation.numpy(), one_step.transitions['observation'])
  # Each -1 also reaches the 4 transitions before it in its episode, discounted by 0.9; the
  # round's 7 episodes are 20 transitions each, some ending in a terminal state (discount 0).
  r = one_step.transitions['reward'].reshape(7, 20)
  expected = [[sum(0.9 ** k * row[t + k] for k in range(min(5, 20 - t))) for t in range(20)]
              for row in r]
  assert (r < 0).sum() >= 7
  np.testing.assert_allclose(pool.reward.numpy(), np.ravel(expected), rtol=1e-6)
  d = one_step.transitions['discount'].reshape(7, 20)
  assert 0 < (d == 0).sum() < 7
  discount = [[0.9 ** (min(5, 20 - t) - 1) * np.prod(row[t:t + 5]) for t in range(20)]
              for row in d]
  np.testing.assert_allclose(pool.discount.numpy(), np.ravel(discount), rtol=1e-6)
  with pytest.raises(ValueError, match='setting of the RL learners'):
    loop(tmp_path, learner='bc', settings={'actor_hidden': [16, 16], 'n_step': 3})


def test_accepted_window_marks_the_policy_actions_no_takeover_followed(raw_logs, tmp_path):
  data_dir = str(tmp_path / 'data')
  write(raw_logs, data_dir, 0, demos=True, num_npz=3, num_streamed=0)
  write(raw_logs, data_dir, 1)
  settings = {**TINY, 'bc_weight': 0.4, 'bc_actions': 'demonstrated', 'accepted_window': 3,
              'n_step': 2}
  trainer = loop(tmp_path, settings=settings, num_steps=2)
  trainer.run()
  one_step = rounds_data.RlifDataset(data_dir, 'ds').load_round(1).transitions
  # By hand, per episode of 20 transitions: the human's steps, and the policy's steps whose next
  # 3 transitions of the episode (their own included) carry no -1 (read before the 2-step sums).
  human = one_step['is_intervention'].reshape(7, 20)
  penalised = (one_step['reward'] < 0).reshape(7, 20)
  expected = [[human[e, t] or not penalised[e, t:t + 3].any() for t in range(20)]
              for e in range(7)]
  flags = trainer.replay._tensors['online'].demonstrated.numpy()
  np.testing.assert_array_equal(flags, np.ravel(expected))
  assert 0 < flags.sum() < 140 and flags.sum() > human.sum()
  assert trainer.replay._tensors['prior'].demonstrated.numpy().all()
  # With the term over every logged action the window means nothing: refused, as is a negative one.
  with pytest.raises(ValueError, match="needs bc_actions = 'demonstrated'"):
    loop(tmp_path, settings={**TINY, 'accepted_window': 3})
  with pytest.raises(ValueError, match='accepted_window must be >= 0'):
    loop(tmp_path, settings={**TINY, 'bc_actions': 'demonstrated', 'accepted_window': -1})


def test_operator_weight_weighs_the_human_steps_in_the_online_pool(raw_logs, tmp_path):
  data_dir = str(tmp_path / 'data')
  write(raw_logs, data_dir, 0, demos=True, num_npz=3, num_streamed=0)
  write(raw_logs, data_dir, 1)
  settings = {**TINY, 'bc_weight': 0.4, 'bc_actions': 'demonstrated', 'operator_weight': 5.0}
  trainer = loop(tmp_path, settings=settings, num_steps=2)
  trainer.run()
  human = rounds_data.RlifDataset(data_dir, 'ds').load_round(1).transitions['is_intervention']
  assert 0 < human.sum() < human.size
  np.testing.assert_array_equal(trainer.replay._tensors['online'].demonstrated.numpy(),
                                np.where(human, 5.0, 0.0))
  np.testing.assert_array_equal(trainer.replay._tensors['prior'].demonstrated.numpy(), 1.0)
  with pytest.raises(ValueError, match="needs bc_actions = 'demonstrated'"):
    loop(tmp_path, settings={**TINY, 'operator_weight': 5.0})
  with pytest.raises(ValueError, match='operator_weight must be >= 0'):
    loop(tmp_path, settings={**TINY, 'bc_actions': 'demonstrated', 'operator_weight': -1.0})


def test_bc_sampling_pool_reaches_the_replay_and_needs_the_demonstrated_term(raw_logs, tmp_path):
  data_dir = str(tmp_path / 'data')
  write(raw_logs, data_dir, 0, demos=True, num_npz=3, num_streamed=0)
  write(raw_logs, data_dir, 1)
  settings = {**TINY, 'bc_weight': 0.4, 'bc_actions': 'demonstrated', 'bc_sampling': 'pool'}
  trainer = loop(tmp_path, settings=settings, num_steps=2)
  trainer.run()
  assert trainer.replay.bc_sampling == 'pool'
  sizes = trainer.replay.size(True), trainer.replay.size(False)
  n_prior = replay_lib.prior_count(64, trainer.replay.prior_fraction, *sizes)
  weights = trainer.replay.sample(64, num_batches=20).demonstrated.numpy()
  np.testing.assert_allclose(np.unique(weights[weights > 0]),
                             sorted([sizes[0] / n_prior, sizes[1] / (64 - n_prior)]), rtol=1e-6)
  with pytest.raises(ValueError, match="bc_sampling = 'pool' needs bc_actions = 'demonstrated'"):
    loop(tmp_path, settings={**TINY, 'bc_sampling': 'pool'})
  with pytest.raises(ValueError, match='bc_sampling must be one of'):
    loop(tmp_path, settings={**TINY, 'bc_actions': 'demonstrated', 'bc_sampling': 'x'})


def _smooth_demos(directory, episodes=4, steps=30, noise=0.0, seed=0):
  """A demonstration round whose actions are slow sines plus `noise`, written as raw npz."""
  from pipeline import raw_writer
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(seed)
  t = np.linspace(0, np.pi, steps)[:, None]
  for i in range(episodes):
    actions = 0.5 * np.sin(t * rng.uniform(0.5, 1.5, ACT_DIM)) + rng.normal(0, noise,
                                                                             (steps, ACT_DIM))
    raw_writer.write_npz_episode(
        os.path.join(directory, f'demo{i}.npz'),
        rng.normal(size=(steps + 1, OBS_DIM)).astype(np.float32),
        np.clip(actions, -1, 1).astype(np.float32), {'episode_id': f'demo{i}'})
  return directory


@pytest.mark.parametrize('noise, weight', [(0.02, 10.0), (0.6, 1.0)])
def test_operator_weight_auto_reads_the_demonstrations_before_the_first_correction(
    raw_logs, tmp_path, noise, weight):
  """Precise demonstrations (noise 0.02) weigh the operator's steps PRECISE_WEIGHT, noisy ones
  (0.6) 1; the weight is read before the intervention round joins, and again on a resume."""
  from trainer import operator_noise
  data_dir = str(tmp_path / 'data')
  round_job.run_round([os.path.join(_smooth_demos(str(tmp_path / 'demos'), noise=noise), '*')],
                      data_dir, 'ds', 0, runner='plain')
  write(raw_logs, data_dir, 1)
  settings = {**TINY, 'bc_weight': 0.4, 'bc_actions': 'demonstrated', 'operator_weight': 'auto'}
  trainer = loop(tmp_path, settings=settings, num_steps=2)
  assert trainer.run()['operator_weight'] == weight
  assert trainer.operator_noise == pytest.approx(noise, abs=0.05 if noise < 0.3 else 0.25)
  assert (trainer.operator_noise <= operator_noise.PRECISE_NOISE) == (weight == 10.0)
  human = rounds_data.RlifDataset(data_dir, 'ds').load_round(1).transitions['is_intervention']
  np.testing.assert_array_equal(trainer.replay._tensors['online'].demonstrated.numpy(),
                                np.where(human, weight, 0.0))
  np.testing.assert_array_equal(trainer.replay._tensors['prior'].demonstrated.numpy(), 1.0)
  resumed = loop(tmp_path, settings=settings, num_steps=2)
  assert resumed.run()['operator_weight'] == weight
  assert resumed.operator_noise == trainer.operator_noise


def test_operator_weight_auto_without_demonstrations_weighs_1(raw_logs, tmp_path):
  write(raw_logs, str(tmp_path / 'data'), 0)
  lines = []
  config = train_loop.LoopConfig(learner='rlpd', batch_size=16, progress=False, num_steps=2,
                                 prior_rounds=())
  trainer = train_loop.TrainLoop(
      config, {**TINY, 'bc_weight': 0.4, 'bc_actions': 'demonstrated', 'operator_weight': 'auto'},
      str(tmp_path / 'data'), 'ds', str(tmp_path / 'run'), log=lines.append)
  assert trainer.run()['operator_weight'] == 1.0
  assert any('needs at least 2 step-to-step differences' in line and 'weigh 1' in line
             for line in lines)
  with pytest.raises(ValueError, match='operator_weight must be a number or "auto", got \'x\''):
    loop(tmp_path, settings={**TINY, 'bc_actions': 'demonstrated', 'operator_weight': 'x'})
  with pytest.raises(ValueError, match="operator_weight = auto needs bc_actions"):
    loop(tmp_path, settings={**TINY, 'operator_weight': 'auto'})


def test_prior_fraction_comes_from_the_flag_else_the_settings_file_else_half(raw_logs, tmp_path):
  write(raw_logs, str(tmp_path / 'data'), 0, demos=True)
  assert loop(tmp_path, settings={**TINY, 'prior_fraction': 0.75}).prior_fraction == 0.75
  explicit = loop(tmp_path, settings={**TINY, 'prior_fraction': 0.75}, prior_fraction=0.25)
  assert explicit.prior_fraction == explicit.replay.prior_fraction == 0.25
  assert loop(tmp_path).prior_fraction == 0.5
  # The product default's file sets it; it never reaches the agent's constructor.
  assert learners.load_settings('rlif')['prior_fraction'] == 0.75
  assert learners.split_settings({'prior_fraction': 0.75, 'tau': 0.01}) == (
      {'tau': 0.01}, {'prior_fraction': 0.75})


def test_actor_warm_start_is_behaviour_cloning_on_the_prior_data(raw_logs, tmp_path):
  """`actor_warm_start` BC updates start the RL actor: its weights are those of a BC agent
  trained alone on the same prior batches; a caller that initialised the actor skips it."""
  from trainer import warm_start
  write(raw_logs, str(tmp_path / 'data'), 0, demos=True)
  write(raw_logs, str(tmp_path / 'data'), 1)
  trainer = loop(tmp_path, num_steps=0, settings={**TINY, 'actor_warm_start': 25})
  assert trainer.actor_warm_start == 25
  before = [w.copy() for w in trainer.agent.actor_network.get_weights()]
  trainer.run()
  after = trainer.agent.actor_network.get_weights()
  assert trainer.actor_initialised and trainer.step == 0
  # The same BC updates on the same prior batches (same sampler seed), done by hand.
  prior = train_loop.TrainLoop(
      train_loop.LoopConfig(learner='rlpd', batch_size=16, progress=False),
      dict(TINY), str(tmp_path / 'data'), 'ds', str(tmp_path / 'run2'), log=lambda _: None)
  prior._join([0, 1])
  bc = warm_start.behaviour_cloning_agent(prior.data.observation_dim, prior.data.action_dim,
                                          TINY["actor_hidden"], seed=0)
  sampler = prior.replay.prior_only()
  for _ in range(25):
    bc.train(sampler.sample(16))
  for a, b, w0 in zip(after, bc.actor_network.get_weights(), before):
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert not np.allclose(a, w0)
  # Initialised by the caller (sim.loop copies its shared initial policy): no warm start.
  skipped = train_loop.TrainLoop(
      train_loop.LoopConfig(learner='rlpd', batch_size=16, progress=False, num_steps=0),
      {**TINY, 'actor_warm_start': 25}, str(tmp_path / 'data'), 'ds', str(tmp_path / 'run3'),
      log=lambda _: None)
  skipped.actor_initialised = True
  untouched = [w.copy() for w in skipped.agent.actor_network.get_weights()]
  skipped.run()
  for a, b in zip(skipped.agent.actor_network.get_weights(), untouched):
    np.testing.assert_array_equal(a, b)


def test_the_rlif_recipe_trains_on_an_image_dataset_and_exports_a_policy_that_takes_the_dict(
    tmp_path):
  """configs/rlif.toml (smaller networks; warm start, critic warm-up, behaviour term as set) on
  camera episodes; the export takes {camera: uint8, state: float32} and acts like the agent."""
  from tests.trainer.test_rounds_data import write_camera_round
  data_dir = str(tmp_path / 'data')
  write_camera_round(str(tmp_path / 'raw0'), data_dir, 0, demos=True)
  write_camera_round(str(tmp_path / 'raw1'), data_dir, 1)
  settings = learners.load_settings('rlif', overrides={
      **TINY, 'critic_updates_per_step': 2, 'actor_warm_start': 3, 'actor_update_after': 2,
      'encoder': {'filters': 4, 'strides': [2, 1], 'features': 8}})
  config = train_loop.LoopConfig(learner='rlif', batch_size=8, progress=False, num_steps=4,
                                 checkpoint_every=2, summary_every=2)
  trainer = train_loop.TrainLoop(config, settings, data_dir, 'cams', str(tmp_path / 'run'),
                                 log=lambda _: None)
  encoder_before = [w.copy() for w in trainer.agent.encoder.get_weights()]
  result = trainer.run()
  assert result['step'] == 4 and result['exported'] == [1]
  assert trainer.actor_initialised  # the BC warm start ran, encoder and all
  assert int(trainer.agent.critic_optimizer.iterations) == 8
  assert int(trainer.agent.actor_optimizer.iterations) == 2  # after the 2-call warm-up
  assert trainer.replay.size(True) == 18 and trainer.replay.size(False) == 18
  for w, before in zip(trainer.agent.encoder.get_weights(), encoder_before):
    assert not np.array_equal(w, before)

  rng = np.random.default_rng(5)
  camera = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
  state = rng.normal(size=(4, 5)).astype(np.float32)
  from tf_agents.trajectories import time_step as ts
  expected = trainer.agent.policy.action(
      ts.restart({'camera': tf.constant(camera), 'state': tf.constant(state)}, 4)).action.numpy()
  saved = tf.saved_model.load(str(tmp_path / 'run' / 'policies' / 'round_1'))
  out = saved.signatures['action'](**{
      '0/step_type': tf.zeros([4], tf.int32), '0/reward': tf.zeros([4]),
      '0/discount': tf.ones([4]), '0/observation/camera': tf.constant(camera),
      '0/observation/state': tf.constant(state)})['action'].numpy()
  np.testing.assert_allclose(out, expected, atol=1e-6)
  assert out.shape == (4, 3) and np.all(np.abs(out) <= 1.0)
