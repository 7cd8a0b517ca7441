"""Random-shift augmentation of camera images (DrQ, Kostrikov et al. 2020): each image is padded by
`pad` pixels that repeat its edge, then cropped back to its size at a random offset, i.e. moved by
up to `pad` pixels in each direction. The pixel learner applies it to the images of every training
batch (observation and next observation, each image its own shift), never when acting.

Works on any dtype (the replay's uint8 images are shifted before conversion to float).
"""

from __future__ import annotations

import tensorflow as tf


def shift_images(images: tf.Tensor, offsets: tf.Tensor, pad: int) -> tf.Tensor:
  """images [B, H, W, C] -> [B, H, W, C]: image b edge-padded by `pad` and cropped at
  (row, column) = offsets[b] ([B, 2] int32, each in [0, 2 * pad]); offset (pad, pad) is the image
  itself. Two gathers with clipped indices: the padded image is never built."""
  height, width = images.shape[1], images.shape[2]
  rows = tf.clip_by_value(tf.range(height)[None] + offsets[:, :1] - pad, 0, height - 1)
  cols = tf.clip_by_value(tf.range(width)[None] + offsets[:, 1:] - pad, 0, width - 1)
  images = tf.gather(images, rows, axis=1, batch_dims=1)  # [B, H, W, C]
  return tf.gather(images, cols, axis=2, batch_dims=1)


def random_offsets(batch_size, pad: int, seed: tf.Tensor) -> tf.Tensor:
  """[B, 2] int32 offsets, uniform in [0, 2 * pad] (stateless: `seed` [2] fixes them)."""
  return tf.random.stateless_uniform([batch_size, 2], seed, 0, 2 * pad + 1, dtype=tf.int32)


def random_shift(images: tf.Tensor, pad: int, seed: tf.Tensor) -> tf.Tensor:
  """`shift_images` at random offsets, one per image."""
  return shift_images(images, random_offsets(tf.shape(images)[0], pad, seed), pad)


def augment_observation(observation: dict, image_fields, pad: int, seed: tf.Tensor) -> dict:
  """A batch of dict observations with the fields named in `image_fields` randomly shifted (each
  field its own offsets); the other fields are returned as they are. `pad` 0: nothing changes."""
  if not pad or not image_fields:
    return observation
  out = dict(observation)
  for index, name in enumerate(sorted(image_fields)):
    out[name] = random_shift(observation[name], pad,
                             tf.random.experimental.stateless_fold_in(seed, index))
  return out
