"""sim.actor_expert: a policy the trainer exported, run in numpy, acts as the SavedModel does."""

import numpy as np
import pytest

from sim import actor_expert
from sim import collector


@pytest.fixture(scope='module')
def exported_actor(tmp_path_factory):
  """A real trainer actor (two hidden layers), exported with PolicySaver as trainer.main does."""
  import tensorflow as tf
  from tf_agents.policies import policy_saver
  from tf_agents.specs import tensor_spec
  from tf_agents.trajectories import time_step as ts
  from trainer import networks

  observation_spec = tf.TensorSpec([45], tf.float32)
  action_spec = tensor_spec.BoundedTensorSpec([24], tf.float32, -1.0, 1.0)
  actor = networks.TanhGaussianActorNetwork(observation_spec, action_spec, (16, 8), seed=3)
  # Larger head weights, so that tanh saturates on some dimensions as trained actors do.
  actor.variables[-2].assign(actor.variables[-2] * 4.0)
  policy, _ = networks.actor_policies(ts.time_step_spec(observation_spec), action_spec, actor)
  path = str(tmp_path_factory.mktemp('actor') / 'policy')
  policy_saver.PolicySaver(policy, batch_size=None).save(path)
  return path


def test_numpy_actor_gives_the_saved_policys_actions(exported_actor):
  expert = actor_expert.ActorExpert.from_saved_policy(exported_actor, provenance='a test actor')
  assert (expert.observation_dim, expert.action_dim) == (45, 24)
  assert [k.shape for k, _ in expert.layers] == [(45, 16), (16, 8), (8, 48)]
  saved = collector.load_saved_policy(exported_actor)
  obs = np.random.default_rng(0).normal(size=(64, 45)).astype(np.float32) * 3
  expected = saved(obs)
  assert np.abs(expected).max() > 0.99  # saturated dimensions are part of the check
  np.testing.assert_allclose(expert.action(obs), expected, atol=1e-5)
  np.testing.assert_allclose(expert.act(obs[0]), expected[0], atol=1e-5)
  np.testing.assert_allclose(expert.act_all(obs[:3], [None] * 3), expected[:3], atol=1e-5)


def test_npz_round_trip_keeps_weights_and_provenance(exported_actor, tmp_path):
  expert = actor_expert.ActorExpert.from_saved_policy(exported_actor, provenance='trained here')
  path = str(tmp_path / 'actor.npz')
  expert.save(path)
  loaded = actor_expert.ActorExpert.load(path, 'pen')
  assert loaded.provenance == 'trained here' and loaded.name == 'actor.npz'
  obs = np.random.default_rng(1).normal(size=(5, 45))
  np.testing.assert_array_equal(loaded.action(obs), expert.action(obs))
  with np.load(path, allow_pickle=False) as data:  # plain arrays, no pickles
    assert sorted(data.files) == ['head_bias', 'head_kernel', 'hidden_0_bias', 'hidden_0_kernel',
                                  'hidden_1_bias', 'hidden_1_kernel', 'provenance']


def test_a_relu_layer_and_the_tanh_of_the_mean_by_hand():
  kernel0 = np.array([[1.0, -1.0]], np.float32)        # 1 input -> 2 hidden
  head = np.array([[0.5, 2.0], [1.0, -3.0]], np.float32)  # 2 hidden -> mean (1), log-std (1)
  expert = actor_expert.ActorExpert(((kernel0, np.zeros(2, np.float32)),
                                     (head, np.array([0.1, 0.0], np.float32))))
  # obs 2: hidden relu(2, -2) = (2, 0); mean = 2 * 0.5 + 0.1 = 1.1; the log-std column is unused.
  np.testing.assert_allclose(expert.action([2.0]), [np.tanh(1.1)], rtol=1e-6)
  # obs -1: hidden (0, 1); mean = 1.0 + 0.1.
  np.testing.assert_allclose(expert.action([-1.0]), [np.tanh(1.1)], rtol=1e-6)
  with pytest.raises(ValueError, match='observation has 2 entries, actor expects 1'):
    expert.action([1.0, 2.0])


def test_bad_files_say_what_is_wrong(exported_actor, tmp_path):
  arrays = actor_expert.ActorExpert.from_saved_policy(exported_actor).arrays()

  def write(name, **changed):
    values = {**arrays, **changed}
    values = {k: v for k, v in values.items() if v is not None}
    np.savez(tmp_path / name, **values)
    return str(tmp_path / name)

  with pytest.raises(actor_expert.ActorFileError, match='expected hidden_0_kernel'):
    actor_expert.ActorExpert.load(write('no_head.npz', head_kernel=None))
  with pytest.raises(actor_expert.ActorFileError, match='hidden_1_kernel takes 15 inputs but '
                     'the layer before it gives 16'):
    actor_expert.ActorExpert.load(write('width.npz', hidden_1_kernel=np.zeros((15, 8))))
  with pytest.raises(actor_expert.ActorFileError, match='expected hidden_0_kernel'):  # no layer 1
    actor_expert.ActorExpert.load(write('gap.npz', hidden_2_kernel=arrays['hidden_1_kernel'],
                                        hidden_2_bias=arrays['hidden_1_bias'],
                                        hidden_1_kernel=None, hidden_1_bias=None))
  with pytest.raises(actor_expert.ActorFileError, match="hidden_1_kernel has no hidden_1_bias"):
    actor_expert.ActorExpert.load(write('no_bias.npz', hidden_1_bias=None))
  with pytest.raises(actor_expert.ActorFileError, match=r"arrays \['hiddden_2_kernel'\] are not "
                     'part of an actor'):
    actor_expert.ActorExpert.load(write('typo.npz', hiddden_2_kernel=np.zeros((8, 8))))
  with pytest.raises(actor_expert.ActorFileError, match='head holds NaN'):
    actor_expert.ActorExpert.load(write('nan.npz', head_bias=np.full(48, np.nan)))
  with pytest.raises(actor_expert.ActorFileError, match='head has 47 outputs'):
    actor_expert.ActorExpert.load(write('odd.npz', head_kernel=np.zeros((8, 47)),
                                        head_bias=np.zeros(47)))
  with pytest.raises(actor_expert.ActorFileError, match=r'do not match task door \(obs 39'):
    actor_expert.ActorExpert.load(write('ok.npz'), 'door')
  (tmp_path / 'text.npz').write_text('not an archive')
  with pytest.raises(actor_expert.ActorFileError, match='not a readable npz actor file'):
    actor_expert.ActorExpert.load(str(tmp_path / 'text.npz'))


def test_a_batch_is_acted_on_row_by_row(exported_actor):
  expert = actor_expert.ActorExpert.from_saved_policy(exported_actor)
  obs = np.random.default_rng(2).normal(size=(5, 45)).astype(np.float32)
  np.testing.assert_array_equal(expert.act_all(obs, None),
                                np.stack([expert.act(o) for o in obs]))
  assert expert.act_all(np.zeros((0, 45)), None).shape == (0, 24)
  with pytest.raises(ValueError, match=r'a batch \[N, D\] of observations, got shape \(45,\)'):
    expert.act_all(obs[0], None)
