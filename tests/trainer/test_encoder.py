"""The pixel encoder against a numpy forward pass; its layout, field order and checks."""

import numpy as np
import pytest
import tensorflow as tf

from tests.trainer.test_networks import np_layer_norm
from trainer import encoder as encoder_lib
from trainer import networks

CONFIG = encoder_lib.EncoderConfig(filters=4, strides=(2, 1), features=6, image_shift=4)
SPEC = {'arm': tf.TensorSpec([2], tf.float32), 'camera': tf.TensorSpec([9, 9, 3], tf.uint8),
        'state': tf.TensorSpec([3], tf.float32)}


def observation(batch=5, seed=0):
  rng = np.random.default_rng(seed)
  return {'arm': rng.normal(size=(batch, 2)).astype(np.float32),
          'camera': rng.integers(0, 256, (batch, 9, 9, 3), dtype=np.uint8),
          'state': rng.normal(size=(batch, 3)).astype(np.float32)}


def np_conv(x, kernel, bias, stride):
  """3x3 VALID convolution with ReLU, written out: x [B, H, W, C], kernel [3, 3, C, F]."""
  height, width = (x.shape[1] - 3) // stride + 1, (x.shape[2] - 3) // stride + 1
  out = np.zeros((x.shape[0], height, width, kernel.shape[-1]))
  for i in range(height):
    for j in range(width):
      patch = x[:, i * stride:i * stride + 3, j * stride:j * stride + 3, :]
      out[:, i, j] = np.einsum('bhwc,hwcf->bf', patch, kernel)
  return np.maximum(out + bias, 0.0)


def np_encode(encoder, obs):
  weights = [w.astype(np.float64) for w in encoder.get_weights()]
  # Conv kernels and biases, then the projection, then LayerNorm gamma and beta.
  h = obs['camera'].astype(np.float64) / 255.0
  for i, stride in enumerate(CONFIG.strides):
    h = np_conv(h, weights[2 * i], weights[2 * i + 1], stride)
  kernel, bias, gamma, beta = weights[2 * len(CONFIG.strides):]
  features = np.tanh(np_layer_norm(h.reshape(len(h), -1) @ kernel + bias, gamma, beta))
  return np.concatenate([obs['arm'], features, obs['state']], axis=-1)  # sorted field names


def test_features_match_numpy_in_sorted_field_order():
  encoder = encoder_lib.ObservationEncoder(SPEC, CONFIG, seed=0)
  assert encoder.image_fields == ('camera',)
  assert encoder.output_dim == 2 + 6 + 3 and encoder.output_spec.shape == (11,)
  # 9x9 -> 4x4 (stride 2) -> 2x2: 2 * 2 * 4 numbers into the projection.
  assert encoder_lib.conv_output_shape(9, 9, CONFIG.strides) == (2, 2)
  assert [w.shape for w in encoder.get_weights()] == [
      (3, 3, 3, 4), (4,), (3, 3, 4, 4), (4,), (16, 6), (6,), (6,), (6,)]
  obs = observation()
  out = encoder({k: tf.constant(v) for k, v in obs.items()}).numpy()
  assert out.shape == (5, 11) and out.dtype == np.float32
  np.testing.assert_allclose(out, np_encode(encoder, obs), atol=1e-5)
  assert np.abs(out[:, 2:8]).max() < 1.0  # tanh
  np.testing.assert_array_equal(out[:, :2], obs['arm'])  # vectors pass through unchanged
  np.testing.assert_array_equal(out[:, 8:], obs['state'])


def test_each_image_has_its_own_tower_and_seeds_fix_the_weights():
  spec = {'a': tf.TensorSpec([9, 9, 1], tf.uint8), 'b': tf.TensorSpec([12, 12, 3], tf.uint8)}
  encoder = encoder_lib.ObservationEncoder(spec, CONFIG, seed=3)
  assert encoder.image_fields == ('a', 'b') and encoder.output_dim == 12
  again = encoder_lib.ObservationEncoder(spec, CONFIG, seed=3)
  for w, v in zip(encoder.get_weights(), again.get_weights()):
    np.testing.assert_array_equal(w, v)
  other = encoder_lib.ObservationEncoder(spec, CONFIG, seed=4)
  assert not np.array_equal(encoder.get_weights()[0], other.get_weights()[0])


def test_settings_and_specs_it_refuses():
  assert encoder_lib.EncoderConfig.from_settings(None) == encoder_lib.EncoderConfig()
  assert encoder_lib.EncoderConfig.from_settings({'strides': [2, 2], 'features': 8}) == \
      encoder_lib.EncoderConfig(strides=(2, 2), features=8)
  with pytest.raises(ValueError, match=r"unknown encoder settings \['kernel'\]"):
    encoder_lib.EncoderConfig.from_settings({'kernel': 5})
  with pytest.raises(ValueError, match='strides must be one or more'):
    encoder_lib.EncoderConfig.from_settings({'strides': []})
  with pytest.raises(ValueError, match=r"'camera' \(5x5\) is too small for 2 3x3 convolutions"):
    encoder_lib.ObservationEncoder({'camera': tf.TensorSpec([5, 5, 3], tf.uint8)}, CONFIG)
  with pytest.raises(ValueError, match="image field 'camera' must be uint8"):
    encoder_lib.ObservationEncoder({'camera': tf.TensorSpec([9, 9, 3], tf.float32)}, CONFIG)


def test_the_encoded_actor_is_the_encoder_then_the_actor():
  encoder = encoder_lib.ObservationEncoder(SPEC, CONFIG, seed=0)
  _, action_spec = networks.specs_from_dims(3, 2)
  actor = networks.TanhGaussianActorNetwork(encoder.output_spec, action_spec, (8,), seed=0)
  policy_network = encoder_lib.EncodedActorNetwork(encoder, actor, SPEC)
  obs = {k: tf.constant(v) for k, v in observation().items()}
  distribution, _ = policy_network(obs)
  mean, _ = actor.mean_and_log_std(encoder(obs))
  np.testing.assert_allclose(distribution.mode().numpy(), np.tanh(mean.numpy()), atol=1e-6)
  # Its variables are the encoder's and the actor's: what the exported policy saves.
  assert len(policy_network.variables) == len(encoder.variables) + len(actor.variables)
