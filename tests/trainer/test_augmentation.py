"""Random shifts (DrQ): crops of the edge-padded image, against numpy's np.pad(mode='edge')."""

import numpy as np
import tensorflow as tf

from trainer import augmentation

PAD = 4


def images(batch=6, size=16, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (batch, size, size, 3), dtype=np.uint8)


def np_crop(image, row, col, pad=PAD):
  """The image edge-padded by `pad` and cropped back to its size at (row, col)."""
  padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode='edge')
  return padded[row:row + image.shape[0], col:col + image.shape[1]]


def test_a_shift_is_the_crop_of_the_edge_padded_image_at_its_offset():
  x = images()
  offsets = np.array([[0, 0], [8, 8], [4, 4], [0, 8], [3, 6], [7, 1]], np.int32)
  shifted = augmentation.shift_images(tf.constant(x), tf.constant(offsets), PAD).numpy()
  assert shifted.dtype == np.uint8 and shifted.shape == x.shape
  for b, (row, col) in enumerate(offsets):
    np.testing.assert_array_equal(shifted[b], np_crop(x[b], row, col))
  np.testing.assert_array_equal(shifted[2], x[2])  # offset (pad, pad): the image itself
  # Offset (0, 0) moves the image 4 px down and right; its top-left 5x5 repeat pixel (0, 0).
  np.testing.assert_array_equal(shifted[0][4:, 4:], x[0][:-4, :-4])
  np.testing.assert_array_equal(shifted[0][:5, :5], np.broadcast_to(x[0][0, 0], (5, 5, 3)))


def test_random_shifts_are_crops_at_offsets_drawn_per_image():
  x = images(batch=32)
  seed = tf.constant([3, 4])
  shifted = augmentation.random_shift(tf.constant(x), PAD, seed).numpy()
  np.testing.assert_array_equal(
      shifted, augmentation.random_shift(tf.constant(x), PAD, seed).numpy())  # stateless
  found = []
  for b in range(len(x)):
    matches = [(r, c) for r in range(2 * PAD + 1) for c in range(2 * PAD + 1)
               if np.array_equal(shifted[b], np_crop(x[b], r, c))]
    assert matches, f'image {b} is not a crop of its padded self'
    found.append(matches[0])
  assert len(set(found)) > 10  # each image its own offset, across the whole range
  rows, cols = zip(*found)
  assert min(rows) >= 0 and max(rows) <= 2 * PAD and min(cols) >= 0 and max(cols) <= 2 * PAD
  offsets = augmentation.random_offsets(32, PAD, seed).numpy()
  np.testing.assert_array_equal(np.array(found), offsets)


def test_only_the_image_fields_of_an_observation_move():
  x = {'camera': tf.constant(images()), 'wrist': tf.constant(images(seed=1)),
       'state': tf.constant(np.arange(12, dtype=np.float32).reshape(6, 2))}
  out = augmentation.augment_observation(x, ('camera', 'wrist'), PAD, tf.constant([1, 2]))
  np.testing.assert_array_equal(out['state'], x['state'])
  # Each camera draws its own offsets: its index among the image fields is folded into the seed.
  offsets = {}
  for index, name in enumerate(('camera', 'wrist')):
    offsets[name] = augmentation.random_offsets(
        6, PAD, tf.random.experimental.stateless_fold_in(tf.constant([1, 2]), index))
    np.testing.assert_array_equal(out[name],
                                  augmentation.shift_images(x[name], offsets[name], PAD))
    assert not np.array_equal(out[name], x[name])
  assert not np.array_equal(offsets['camera'], offsets['wrist'])
  assert augmentation.augment_observation(x, ('camera', 'wrist'), 0, tf.constant([1, 2])) is x
