"""The pixel learner's encoder: a dict observation (uint8 camera images and float32 vectors) -> one
float32 feature vector, which the critics and the actor take where a flat observation would go.

Each image field has its own small convolutional tower (DrQ, Kostrikov et al. 2020; the encoder of
RLPD's pixel agent): x / 255, 3x3 convolutions with ReLU (`filters` channels, one layer per entry of
`strides`, VALID padding), flattened, then Dense -> LayerNorm -> tanh to `features` numbers. Vector
fields pass through unchanged. The parts are concatenated in sorted field-name order, the order of
the dataset's fields (pipeline.schema).

How the learners use it (trainer/rlpd_agent.py): one encoder feeds the whole critic ensemble and is
trained by the critic loss; the actor reads its features through `tf.stop_gradient`; the target
critics have their own, Polyak-averaged copy. The exported policy is `EncodedActorNetwork`: this
encoder then the actor, so it takes the dict observation itself.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

import tensorflow as tf
from tf_agents.networks import network

from pipeline import schema as sc
from trainer import networks


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
  """The encoder's layout and the augmentation of its training images; a learner setting
  (`encoder = {...}` in configs/*.toml), ignored for flat observations."""
  filters: int = 32                 # channels of every 3x3 convolution
  strides: tuple = (2, 1, 1, 1)     # one convolution per entry (DrQ: 2, then 1s)
  features: int = 50                # per image, after Dense -> LayerNorm -> tanh
  image_shift: int = 4              # random-shift pad in pixels (trainer/augmentation.py); 0: off

  @classmethod
  def from_settings(cls, settings: Optional[Mapping]) -> 'EncoderConfig':
    """From a settings dict (missing keys keep their defaults); unknown keys are refused."""
    settings = dict(settings or {})
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(settings) - set(known))
    if unknown:
      raise ValueError(f'unknown encoder settings {unknown}; known: {known}')
    if 'strides' in settings:
      settings['strides'] = tuple(int(s) for s in settings['strides'])
    config = cls(**settings)
    if config.filters < 1 or config.features < 1 or config.image_shift < 0:
      raise ValueError(f'encoder needs filters >= 1, features >= 1, image_shift >= 0: {config}')
    if not config.strides or min(config.strides) < 1:
      raise ValueError(f'encoder strides must be one or more integers >= 1, got {config.strides}')
    return config


def is_image_spec(spec: tf.TensorSpec) -> bool:
  """Whether one field of a dict observation spec is a camera image (pipeline.schema's rule)."""
  return sc.is_image_shape(tuple(spec.shape))


def image_fields(observation_spec: Mapping) -> tuple[str, ...]:
  """The image fields of a dict observation spec, in sorted order."""
  return tuple(name for name in sorted(observation_spec) if is_image_spec(observation_spec[name]))


def conv_output_shape(height: int, width: int, strides) -> tuple[int, int]:
  """(height, width) after the tower's 3x3 VALID convolutions."""
  for stride in strides:
    height, width = (height - 3) // stride + 1, (width - 3) // stride + 1
  return height, width


class ObservationEncoder(tf.keras.layers.Layer):
  """Dict observation [B, ...] per field -> features [B, output_dim] (see the module docstring).
  Variables are built at construction, so none is first created inside a train step."""

  def __init__(self, observation_spec: Mapping, config: EncoderConfig = EncoderConfig(),
               seed: Optional[int] = None, name: str = 'Encoder'):
    super().__init__(name=name)
    self._spec = dict(observation_spec)
    self._config = config
    self._fields = tuple(sorted(self._spec))
    self._image_fields = image_fields(self._spec)
    self._towers = []
    self._flat_sizes = []
    layer = 0

    def initializer():
      nonlocal layer
      layer += 1
      return tf.keras.initializers.GlorotUniform(seed=None if seed is None else seed + layer)

    for field in self._image_fields:
      spec = self._spec[field]
      if spec.dtype != tf.uint8:
        raise ValueError(f'image field {field!r} must be uint8, got {spec}')
      height, width = conv_output_shape(spec.shape[0], spec.shape[1], config.strides)
      if height < 1 or width < 1:
        raise ValueError(f'image field {field!r} ({spec.shape[0]}x{spec.shape[1]}) is too small '
                         f'for {len(config.strides)} 3x3 convolutions with strides '
                         f'{config.strides}')
      tower = [tf.keras.layers.Conv2D(config.filters, 3, strides=stride, padding='valid',
                                      activation='relu', kernel_initializer=initializer(),
                                      name=f'{field}_conv_{i}')
               for i, stride in enumerate(config.strides)]
      tower.append(tf.keras.layers.Dense(config.features, kernel_initializer=initializer(),
                                         name=f'{field}_projection'))
      tower.append(tf.keras.layers.LayerNormalization(epsilon=networks.LAYER_NORM_EPSILON,
                                                      name=f'{field}_layer_norm'))
      self._towers.append(tower)
      self._flat_sizes.append(height * width * config.filters)
    for field in self._fields:
      spec = self._spec[field]
      if field not in self._image_fields and (spec.shape.rank != 1 or spec.dtype != tf.float32):
        raise ValueError(f'field {field!r} is neither a uint8 [H, W, C] image nor a float32 '
                         f'vector: {spec}')
    self._output_dim = sum(config.features if f in self._image_fields
                           else int(self._spec[f].shape[0]) for f in self._fields)
    self(tf.nest.map_structure(lambda s: tf.zeros([1] + s.shape.as_list(), s.dtype), self._spec))

  @property
  def config(self) -> EncoderConfig:
    return self._config

  @property
  def image_fields(self) -> tuple[str, ...]:
    return self._image_fields

  @property
  def output_dim(self) -> int:
    return self._output_dim

  @property
  def output_spec(self) -> tf.TensorSpec:
    """The spec of one observation's features, what the critics and actor are built on."""
    return tf.TensorSpec([self._output_dim], tf.float32, name='features')

  def call(self, observation):
    parts = []
    for field in self._fields:
      value = observation[field]
      if field in self._image_fields:
        index = self._image_fields.index(field)
        tower, flat_size = self._towers[index], self._flat_sizes[index]
        h = tf.cast(value, tf.float32) * (1.0 / 255.0)
        for conv in tower[:-2]:
          h = conv(h)
        projection, layer_norm = tower[-2:]
        value = tf.tanh(layer_norm(projection(tf.reshape(h, [-1, flat_size]))))
      parts.append(value)
    return tf.concat(parts, axis=-1)


def encoder_for(observation_spec, settings: Optional[Mapping], seed: Optional[int],
                name: str = 'Encoder') -> Optional[ObservationEncoder]:
  """The encoder a learner puts in front of its networks: one for a dict observation spec, None
  for a flat one (the networks then take the observation itself). `settings` (the learner's
  `encoder = {...}`) are checked either way, so a typo fails on flat datasets too."""
  config = EncoderConfig.from_settings(settings)
  if not isinstance(observation_spec, Mapping):
    return None
  return ObservationEncoder(observation_spec, config, seed=seed, name=name)


def acting_network(encoder: Optional[ObservationEncoder], actor: networks.TanhGaussianActorNetwork,
                   observation_spec):
  """The policy's network on the observation itself: the actor, or the encoder then the actor
  (`EncodedActorNetwork`) when there is an encoder."""
  if encoder is None:
    return actor
  return EncodedActorNetwork(encoder, actor, observation_spec)


class EncodedActorNetwork(network.DistributionNetwork):
  """The policy's network for dict observations: `encoder` then `actor`, so that `ActorPolicy`
  and the exported SavedModel take the dict observation (uint8 images, float32 vectors). Used to
  act only; the learners call the encoder and the actor themselves (with the gradients each
  loss should have)."""

  def __init__(self, encoder: ObservationEncoder, actor: networks.TanhGaussianActorNetwork,
               observation_spec: Mapping, name: str = 'EncodedActor'):
    super().__init__(input_tensor_spec=dict(observation_spec), state_spec=(),
                     output_spec=actor.output_spec, name=name)
    self._encoder = encoder
    self._actor = actor
    self.built = True

  def call(self, observation, step_type=None, network_state=(), training=False):
    return self._actor(self._encoder(observation), step_type=step_type,
                       network_state=network_state, training=training)
