"""Symmetric sampling: the configured share of every batch comes from prior data."""

import numpy as np
import pytest

from trainer import replay


def pool(n, label):
  return {'observation': np.arange(n, dtype=np.float32)[:, None],
          'action': np.zeros((n, 1), np.float32), 'reward': np.full(n, label, np.float32),
          'discount': np.ones(n, np.float32),
          'next_observation': np.arange(n, dtype=np.float32)[:, None],
          'is_intervention': np.zeros(n, bool)}


@pytest.mark.parametrize('fraction,expected_prior', [(0.25, 16), (0.5, 32), (1.0, 64), (0.0, 0)])
def test_each_chunk_holds_the_configured_mix(fraction, expected_prior):
  r = replay.MixedReplay(1, 1, fraction, seed=3)
  r.add(pool(50, 1.0), prior=True)
  r.add(pool(30, -1.0), prior=False)
  batch = r.sample(64, num_batches=5)
  chunks = batch.reward.numpy().reshape(5, 64)
  np.testing.assert_array_equal((chunks == 1.0).sum(axis=1), [expected_prior] * 5)
  np.testing.assert_array_equal((chunks == -1.0).sum(axis=1), [64 - expected_prior] * 5)


def test_sampling_is_uniform_within_each_pool():
  r = replay.MixedReplay(1, 1, 0.5, seed=0)
  r.add(pool(10, 1.0), prior=True)
  r.add(pool(20, -1.0), prior=False)
  batch = r.sample(200, num_batches=50)
  prior_obs = batch.observation.numpy()[batch.reward.numpy() == 1.0, 0]
  counts = np.bincount(prior_obs.astype(int), minlength=10)
  assert counts.sum() == 5000
  assert counts.min() > 400 and counts.max() < 600  # 500 expected each.


def test_an_empty_pool_gives_its_share_to_the_other():
  r = replay.MixedReplay(1, 1, 0.5, seed=0)
  r.add(pool(10, 1.0), prior=True)
  assert (r.sample(16).reward.numpy() == 1.0).all()  # Before any intervention round.
  assert replay.prior_count(16, 0.5, 0, 5) == 0
  with pytest.raises(ValueError, match='empty'):
    replay.prior_count(16, 0.5, 0, 0)
  with pytest.raises(ValueError, match=r'\[0, 1\]'):
    replay.MixedReplay(1, 1, 1.5)


def test_a_growing_pool_is_sampled_without_rebuilding():
  r = replay.MixedReplay(1, 1, 0.0, seed=0)
  r.add(pool(5, -1.0), prior=False)
  r.add(pool(5, -2.0), prior=False)
  rewards = r.sample(500).reward.numpy()
  assert set(np.unique(rewards)) == {-1.0, -2.0}


def test_demonstrated_flags_follow_the_pool_and_the_takeovers():
  """Prior actions are all demonstrations; in an intervention round only the takeover steps."""
  r = replay.MixedReplay(1, 1, 0.5, seed=1)
  r.add(pool(10, 1.0), prior=True)
  online = pool(12, -1.0)
  online['is_intervention'] = np.arange(12) % 3 == 0  # steps 0, 3, 6, 9 human-controlled
  r.add(online, prior=False)
  batch = r.sample(64, num_batches=4)
  reward, obs, demo = (batch.reward.numpy(), batch.observation.numpy()[:, 0],
                       batch.demonstrated.numpy())
  assert demo.dtype == np.float32
  np.testing.assert_array_equal(demo[reward == 1.0], 1.0)
  np.testing.assert_array_equal(demo[reward == -1.0], (obs[reward == -1.0] % 3 == 0))
  assert 0 < demo[reward == -1.0].sum() < (reward == -1.0).sum()  # both kinds were drawn


def test_pool_sampling_weighs_each_demonstration_by_the_pool_it_stands_for():
  """bc_sampling='pool': a prior sample stands for 40 / 48 transitions, an online one for
  120 / 16 (operator steps at operator_weight 2); the term's weights then match imitating the
  demonstrated transitions of both pools uniformly, while the critics' mix stays 3:1."""
  r = replay.MixedReplay(1, 1, 0.75, seed=2, operator_weight=2.0, bc_sampling='pool')
  r.add(pool(40, 1.0), prior=True)
  online = pool(120, -1.0)
  online['is_intervention'] = np.arange(120) % 4 == 0  # 30 operator steps, 90 of the policy's
  r.add(online, prior=False)
  batch = r.sample(64, num_batches=200)
  reward, obs, demo = (batch.reward.numpy(), batch.observation.numpy()[:, 0],
                       batch.demonstrated.numpy())
  assert (reward.reshape(200, 64) == 1.0).sum(axis=1).tolist() == [48] * 200
  np.testing.assert_allclose(demo[reward == 1.0], 40 / 48)
  operator = (reward == -1.0) & (obs % 4 == 0)
  np.testing.assert_allclose(demo[operator], 2 * 120 / 16)
  np.testing.assert_array_equal(demo[(reward == -1.0) & ~operator], 0.0)
  # The operator's share of the term: 30 steps x 2 against 40 demonstrations, 60%, where the
  # batch as drawn gives it 2 x 16/4 against 48, 14%.
  share = demo[operator].sum() / demo.sum()
  assert abs(share - 0.6) < 0.03
  batch_share = replay.MixedReplay(1, 1, 0.75, seed=2, operator_weight=2.0)
  batch_share.add(pool(40, 1.0), prior=True)
  batch_share.add(online, prior=False)
  drawn = batch_share.sample(64, num_batches=200)
  op = (drawn.reward.numpy() == -1.0) & (drawn.observation.numpy()[:, 0] % 4 == 0)
  assert abs(drawn.demonstrated.numpy()[op].sum() / drawn.demonstrated.numpy().sum()
             - 2 * 4 / (2 * 4 + 48)) < 0.03
  with pytest.raises(ValueError, match="bc_sampling must be one of"):
    replay.MixedReplay(1, 1, 0.5, bc_sampling='uniform')


def test_dict_observations_are_sampled_field_by_field_with_images_as_uint8():
  from pipeline import schema as sc
  spec = (sc.ObservationField('camera', (3, 3, 1)), sc.ObservationField('state', (2,)))
  r = replay.MixedReplay(spec, 1, 0.5, seed=0)
  for label, n, prior in ((1.0, 6, True), (-1.0, 4, False)):
    index = np.arange(n)
    transitions = pool(n, label)
    transitions['observation'] = {
        'camera': np.broadcast_to(index[:, None, None, None], (n, 3, 3, 1)).astype(np.uint8),
        'state': np.stack([index, index * label], -1).astype(np.float32)}
    transitions['next_observation'] = {
        'camera': transitions['observation']['camera'] + 1,
        'state': transitions['observation']['state'] + 1}
    r.add(transitions, prior=prior)
  batch = r.sample(8, num_batches=3)
  camera, state = batch.observation['camera'].numpy(), batch.observation['state'].numpy()
  assert camera.dtype == np.uint8 and camera.shape == (24, 3, 3, 1)
  assert state.dtype == np.float32 and state.shape == (24, 2)
  # Every field of a sample comes from the same transition.
  np.testing.assert_array_equal(camera[:, 1, 1, 0], state[:, 0])
  np.testing.assert_array_equal(state[:, 1], state[:, 0] * batch.reward.numpy())
  np.testing.assert_array_equal(batch.next_observation['camera'].numpy(), camera + 1)
  assert (batch.reward.numpy().reshape(3, 8) == 1.0).sum(1).tolist() == [4, 4, 4]
