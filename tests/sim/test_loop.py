"""The closed loop on a tiny budget: real MuJoCo episodes, the real pipeline and trainer."""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from sim import collector
from sim import experts
from sim import loop
from sim import tasks
from sim import reference
from tests.sim import shared_files
from trainer import run_lock

LENGTH = 15
TINY_REFERENCE = reference.ReferenceSpec(
    noise_scales=(0.0, 0.5), episodes_per_level=1, num_updates=10, batch_size=16,
    episode_length=LENGTH,
    learner_settings=(('num_critics', 3), ('critic_hidden', (16, 16)), ('actor_hidden', (16,))))


def tiny_spec(method, rounds=2, **kw):
  return loop.LoopSpec(task='pen', method=method, seed=3, num_demos=2, rounds=rounds,
                       episodes_per_round=2, initial_updates=10, updates_per_round=10,
                       eval_episodes=2, batch_size=16, episode_length=LENGTH,
                       learner_overrides=(('critic_hidden', [16, 16]), ('num_critics', 3))
                       if METHOD_LEARNER[method] in ('rlif', 'rlpd') else (), **kw)


METHOD_LEARNER = {name: m.learner for name, m in loop.METHODS.items()}


def run(tmp_path, spec, messages=None):
  shared_files.expert_path('pen')
  the_loop = loop.RlifLoop(spec, str(tmp_path / spec.method), shared_files.EXPERT_DIR,
                           str(tmp_path / 'reference'), TINY_REFERENCE,
                           log=(messages.append if messages is not None else lambda m: None))
  return the_loop, the_loop.run()


def rounds_of(the_loop):
  builder = tfds.builder_from_directory(os.path.join(the_loop.data_dir, the_loop.dataset, '1.0.0'))
  return {int(name.split('_')[1]): [{**ep, 'steps': list(ep['steps'])}
                                    for ep in tfds.as_numpy(builder.as_dataset(split=name))]
          for name in builder.info.splits}


def test_two_rlif_rounds_collect_relabel_train_export_and_evaluate(tmp_path):
  the_loop, rows = run(tmp_path, tiny_spec('rlif_value'))
  assert [r['round'] for r in rows] == [0, 1, 2]
  assert [r['env_steps'] for r in rows] == [0, 2 * LENGTH, 4 * LENGTH]
  for r in rows:
    assert 0.0 <= r['eval']['success_rate'] <= 1.0 and r['eval']['episodes'] == 2
    assert r['pipeline'] == {'status': 'new', 'episodes': 2, 'rejected': 0}
  data = rounds_of(the_loop)
  assert sorted(data) == [0, 1, 2]
  for r in (1, 2):
    steps = [s for ep in data[r] for s in ep['steps']]
    flags = np.array([s['is_intervention'] for s in steps if not s['is_last']])
    # What the collector logged is what the dataset holds, and the reward rule is applied.
    assert flags.mean() == pytest.approx(rows[r]['collection']['intervention_rate'])
    rewards = np.array([s['reward'] for s in steps])
    assert set(np.unique(rewards)) <= {-1.0, 0.0}
    for ep in data[r]:
      meta = ep['episode_metadata']
      assert meta['round'] == r
      assert json.loads(meta['extra_metadata_json'])['intervention_model']['name'] == 'value'
      assert meta['num_intervention_steps'] == sum(s['is_intervention'] for s in ep['steps'])
      assert not meta['has_expert_action']  # RLIF's operator only decides when to take over
  # Round 0 is the demonstrations: no flags, no penalties.
  assert all(s['reward'] == 0 and not s['is_intervention'] for ep in data[0] for s in ep['steps'])
  for r in (0, 1, 2):
    assert os.path.isdir(the_loop._policy_dir(r))
    assert set(rows[r]['stage_seconds']) == {'collect', 'append', 'train', 'load_policy',
                                             'evaluate'}
  assert os.path.isdir(os.path.join(str(tmp_path / 'reference')))
  # One learner stayed up for rounds 1 and 2: its train step was traced once, not per round.
  learner = the_loop._trainers['learner']
  assert learner.schedule.exported == [1, 2] and learner.step == 20
  assert learner.agent._train_step_fn.experimental_get_tracing_count() == 1


def test_rerun_changes_nothing_and_more_rounds_continue_the_run(tmp_path):
  the_loop, rows = run(tmp_path, tiny_spec('rlif_random', rounds=1))
  assert [r['round'] for r in rows] == [0, 1]
  messages = []
  _, again = run(tmp_path, tiny_spec('rlif_random', rounds=1), messages)
  assert again == rows
  assert not any(m.startswith('round ') for m in messages)
  _, extended = run(tmp_path, tiny_spec('rlif_random', rounds=2), messages)
  assert extended[:2] == rows and [r['round'] for r in extended] == [0, 1, 2]
  assert sorted(rounds_of(the_loop)) == [0, 1, 2]
  # The learner resumed its checkpoint: 10 updates per round, not 10 from scratch.
  assert any('resumed from' in m for m in messages)


def test_bc_rounds_are_expert_episodes_on_the_initial_states_of_the_rl_rounds(tmp_path):
  spec = tiny_spec('bc', rounds=1)
  bc_loop, bc_rows = run(tmp_path, spec)
  assert bc_rows[1]['collection']['intervention_rate'] == 0.0
  assert bc_rows[1]['env_steps'] == tiny_spec('rlif_value', rounds=1).env_steps == 2 * LENGTH
  data = rounds_of(bc_loop)
  assert all(not s['is_intervention'] and s['reward'] == 0 for ep in data[1] for s in ep['steps'])
  # collect_round's episode i of round 1 starts from reset(seed=episode_seed(seed, 1, i)).
  env = tasks.make_env('pen', spec.seed, LENGTH)
  expected = sorted(env.reset(seed=collector.episode_seed(spec.seed, 1, i))[0]
                    .astype(np.float32).tobytes() for i in range(2))
  env.close()
  assert sorted(ep['steps'][0]['observation'].tobytes() for ep in data[1]) == expected


def test_a_distorted_expert_gives_the_demonstrations_its_distorted_actions(tmp_path):
  spec = tiny_spec('bc', rounds=1, expert_distortion=0.5)
  the_loop, rows = run(tmp_path, spec)
  assert rows[0]['expert_distortion'] == 0.5 and rows[0]['expert_noise'] == 0.0
  expert = experts.DistortedExpert(
      experts.MlpExpert.load(shared_files.expert_path('pen'), tasks.get_task('pen')), 0.5)
  for r, episodes in rounds_of(the_loop).items():  # round 0's demos, round 1's expert episodes
    steps = [s for ep in episodes for s in ep['steps'] if not s['is_last']]
    actions = np.array([s['action'] for s in steps])
    expected = np.clip(expert.act_all(np.array([s['observation'] for s in steps], np.float64),
                                      [None] * len(steps)), -1, 1)
    np.testing.assert_allclose(actions, expected, atol=1e-5, err_msg=f'round {r}')


def test_an_exploring_loop_logs_the_policys_actions_with_its_noise(tmp_path):
  import glob
  the_loop, rows = run(tmp_path, tiny_spec('hg_dagger', rounds=1, exploration_noise=0.3))
  policy = collector.load_saved_policy(the_loop._policy_dir(0))  # the policy round 1 deployed
  proposed, deployed = [], []
  for path in sorted(glob.glob(os.path.join(the_loop._raw_dir(1), '*.npz'))):
    with np.load(path) as episode:
      observations = episode['observations'][:len(episode['policy_actions'])]
      proposed.append(episode['policy_actions'])
      deployed.append(policy(observations))
  proposed, deployed = np.concatenate(proposed), np.concatenate(deployed)
  inside = np.abs(proposed) < 1  # the logged proposals are clipped to the action bounds
  noise = (proposed - deployed)[inside]
  assert inside.mean() > 0.5 and abs(noise.mean()) < 0.05 and 0.25 < noise.std() < 0.35
  # Evaluation is of the policy alone, without the noise.
  assert loop.evaluate('pen', collector.load_saved_policy(the_loop._policy_dir(1)), 2,
                       the_loop.spec.seed, LENGTH) == rows[1]['eval']


def test_dagger_rounds_are_policy_episodes_labelled_by_the_expert_at_every_step(tmp_path):
  messages = []
  the_loop, rows = run(tmp_path, tiny_spec('dagger', rounds=1), messages)
  assert rows[1]['collection']['intervention_rate'] == 0.0  # the policy acted alone
  data = rounds_of(the_loop)
  expert = experts.MlpExpert.load(shared_files.expert_path('pen'), tasks.get_task('pen'))
  for ep in data[1]:
    assert ep['episode_metadata']['has_expert_action']
    steps = [s for s in ep['steps'] if not s['is_last']]
    labels = np.array([s['expert_action'] for s in steps])
    # Each label is the (noise-free) expert's action for the state the policy visited, clipped.
    expected = np.array([np.clip(expert.act(s['observation']), -1, 1) for s in steps])
    np.testing.assert_allclose(labels, expected, atol=1e-5)
    assert np.abs(labels - np.array([s['action'] for s in steps])).max() > 0.1
    assert all(s['reward'] == 0 for s in ep['steps'])
  # Every labelled step of round 1 joined the learner's pool beside the demonstrations.
  joined = [m for m in messages if 'round 1 joined' in m]
  assert joined and f'prior {4 * LENGTH}' in joined[0], joined


def test_the_value_model_uses_the_tasks_calibrated_margin(tmp_path):
  from sim import intervention
  shared_files.expert_path('relocate')
  spec = dataclasses.replace(tiny_spec('rlif_value'), task='relocate')
  the_loop = loop.RlifLoop(spec, str(tmp_path / 'run'), shared_files.EXPERT_DIR,
                           str(tmp_path / 'reference'), TINY_REFERENCE, log=lambda m: None)
  model = the_loop._intervention(1)
  assert model.config.alpha == intervention.calibrated_alpha('relocate') == 0.8
  overridden = dataclasses.replace(spec, intervention_overrides=(('alpha', 0.9),))
  the_loop = loop.RlifLoop(overridden, str(tmp_path / 'run2'), shared_files.EXPERT_DIR,
                           str(tmp_path / 'reference'), TINY_REFERENCE, log=lambda m: None)
  assert the_loop._intervention(1).config.alpha == 0.9  # an explicit setting wins


def test_a_clean_operator_standard_judges_by_the_undegraded_expert(tmp_path):
  spec = tiny_spec('rlif_value', expert_distortion=0.5, operator_standard='clean')
  the_loop = loop.RlifLoop(spec, str(tmp_path / 'run'), shared_files.EXPERT_DIR,
                           str(tmp_path / 'reference'), TINY_REFERENCE, log=lambda m: None)
  model = the_loop._intervention(1)
  observations = np.random.default_rng(0).standard_normal((3, 45))
  clean = experts.MlpExpert.load(shared_files.expert_path('pen'), tasks.get_task('pen'))
  standard = model.standard(observations)
  raw = np.stack([clean.action(o) for o in observations])
  assert np.abs(raw).max() > 1  # the raw expert leaves the action box; the standard does not
  np.testing.assert_array_equal(standard, np.clip(raw, -1, 1))
  # The acting expert stays the distorted one.
  acting = the_loop.expert.act_all(observations, [np.random.default_rng(0)] * 3)
  assert np.abs(np.clip(acting, -1, 1) - standard).max() > 0.05
  assert tiny_spec('rlif_value').operator_standard == 'own'
  assert loop.RlifLoop(tiny_spec('rlif_value'), str(tmp_path / 'own'), shared_files.EXPERT_DIR,
                       str(tmp_path / 'reference'), TINY_REFERENCE,
                       log=lambda m: None)._intervention(1).standard is None
  with pytest.raises(ValueError, match="unknown operator standard 'best'"):
    tiny_spec('rlif_value', operator_standard='best').check()
  with pytest.raises(ValueError, match="setting of the value model; method 'rlif_random'"):
    tiny_spec('rlif_random', operator_standard='clean').check()


def test_the_simulated_loop_refuses_a_folder_in_use(held, tmp_path):
  run_dir, proc = held
  spec = loop.LoopSpec(task='pen', method='rlif_value', rounds=1, episodes_per_round=1,
                       num_demos=1, eval_episodes=1)
  rlif = loop.RlifLoop(spec, run_dir, None, str(tmp_path / 'reference'), log=lambda _: None)
  with pytest.raises(run_lock.RunInUse, match=f'pid {proc.pid} '):
    rlif.run()
  assert os.listdir(run_dir) == [run_lock.LOCK_FILE]
