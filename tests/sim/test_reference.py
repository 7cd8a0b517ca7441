import os
import select
import subprocess
import sys

import numpy as np
import pytest

from sim import experts
from sim import reference
from tests.sim import shared_files

LENGTH = 15
TINY = reference.ReferenceSpec(
    noise_scales=(0.0, 0.5), episodes_per_level=2, num_updates=10, batch_size=16,
    episode_length=LENGTH,
    learner_settings=(('num_critics', 3), ('critic_hidden', (16, 16)), ('actor_hidden', (16,))))


@pytest.fixture(scope='module')
def pen_expert():
  return experts.MlpExpert.load(shared_files.expert_path('pen'), 'pen')


def test_dense_reward_transitions_cover_every_level_and_scale_the_reward(pen_expert):
  full = reference.dense_reward_transitions('pen', pen_expert, TINY)
  assert full['observation'].shape == (2 * 2 * LENGTH, 45)
  assert full['action'].shape == (2 * 2 * LENGTH, 24)
  np.testing.assert_array_equal(full['discount'], 1.0)  # pen episodes are truncated
  np.testing.assert_array_equal(full['next_observation'][:LENGTH - 1], full['observation'][1:LENGTH])
  half = reference.dense_reward_transitions(
      'pen', pen_expert, reference.ReferenceSpec(**{**TINY.__dict__, 'reward_scale': 0.05}))
  np.testing.assert_allclose(half['reward'], full['reward'] / 2, rtol=1e-5, atol=1e-6)
  # The noisy level's actions differ from the expert's; the noise-free level's do not.
  clean = pen_expert.action(full['observation'][:LENGTH]).clip(-1, 1)
  np.testing.assert_allclose(full['action'][:LENGTH], clean, atol=1e-5)
  assert np.abs(full['action'][2 * LENGTH:3 * LENGTH] -
                pen_expert.action(full['observation'][2 * LENGTH:3 * LENGTH]).clip(-1, 1)).mean() > 0.1


def test_ranking_accuracy_of_a_critic_that_knows_the_expert_and_one_that_is_backwards(pen_expert):
  def knows(obs, actions):
    return -np.abs(actions - pen_expert.action(obs).clip(-1, 1)).sum(-1)

  def backwards(obs, actions):
    return -knows(obs, actions)

  assert reference.ranking_accuracy(knows, 'pen', pen_expert, num_episodes=1,
                                    episode_length=LENGTH) == 1.0
  assert reference.ranking_accuracy(backwards, 'pen', pen_expert, num_episodes=1,
                                    episode_length=LENGTH) == 0.0


def test_reference_agent_is_trained_once_then_reused(tmp_path, pen_expert):
  messages = []
  first = reference.load_or_train('pen', pen_expert, TINY, str(tmp_path), messages.append)
  assert first.stats['transitions'] == 2 * 2 * LENGTH
  assert 0.0 <= first.stats['ranking_accuracy'] <= 1.0
  rng = np.random.default_rng(0)
  obs, act = rng.normal(size=(5, 45)), rng.uniform(-1, 1, size=(5, 24))
  q = first.q(obs, act)
  assert q.shape == (5,) and np.all(np.isfinite(q))

  messages.clear()
  second = reference.load_or_train('pen', pen_expert, TINY, str(tmp_path), messages.append)
  assert second.directory == first.directory
  assert any('reusing' in m for m in messages) and not any('training' in m for m in messages)
  np.testing.assert_allclose(second.q(obs, act), q, rtol=1e-6)

  # Another recipe is another agent, in another folder.
  other = reference.ReferenceSpec(**{**TINY.__dict__, 'num_updates': 11})
  assert other.key(pen_expert.describe()) != TINY.key(pen_expert.describe())


# Trains TINY into argv[1] in its own process, saying "training" when it starts collecting and
# then taking 3 s longer, so that the test's own call arrives while it trains.
_TRAINER = (
    'import sys, time\n'
    'from sim import experts, reference\n'
    'from tests.sim import shared_files\n'
    'from tests.sim.test_reference import TINY\n'
    'def log(m):\n'
    '  print(m, flush=True)\n'
    '  if "collecting" in m:\n'
    '    print("training", flush=True); time.sleep(3)\n'
    'expert = experts.MlpExpert.load(shared_files.expert_path("pen"), "pen")\n'
    'reference.load_or_train("pen", expert, TINY, sys.argv[1], log)\n')


def test_a_second_process_waits_for_the_one_training_the_agent_then_reuses_it(tmp_path, pen_expert):
  proc = subprocess.Popen([sys.executable, '-c', _TRAINER, str(tmp_path)], cwd=shared_files.REPO,
                          text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  try:
    seen = []
    while 'training' not in seen:
      ready, _, _ = select.select([proc.stdout], [], [], 120)
      line = proc.stdout.readline() if ready else ''
      if not line:
        raise AssertionError(f'the training process did not start: {proc.stderr.read()[-2000:]}')
      seen.append(line.strip())
    messages = []
    mine = reference.load_or_train('pen', pen_expert, TINY, str(tmp_path), messages.append)
    theirs, _ = proc.communicate(timeout=120)
  finally:
    proc.kill()
    proc.wait()
  assert proc.returncode == 0
  assert 'waiting for another process' in messages[0], messages
  assert any('reusing' in m for m in messages) and not any('collecting' in m for m in messages)
  assert 'trained in' in theirs
  # One agent, trained once: no temporary folder was left, and the lock file is all beside it.
  assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(mine.directory),
                                                 os.path.basename(mine.directory) + '.lock'])


def test_spec_for_task_spans_the_tasks_calibrated_levels():
  # Pen's fitted levels are the class default, so the pen agent cached before keeps its key.
  assert reference.ReferenceSpec.for_task('pen') == reference.ReferenceSpec()
  door = reference.ReferenceSpec.for_task('door', episode_length=7)
  ten = experts.calibrated_noise('door', '10')
  assert door.noise_scales[0] == 0.0 and len(door.noise_scales) == 5
  assert door.noise_scales[3] == pytest.approx(ten, abs=1e-4)
  assert door.noise_scales[-1] == pytest.approx(4 / 3 * ten, abs=1e-4)
  assert door.episode_length == 7
  pen_levels = reference.ReferenceSpec(episode_length=7)
  assert door.key({'name': 'door'}) != pen_levels.key({'name': 'door'})
