"""The trainer benchmark's pixel row: its FLOP count by hand, and that its train call runs (at a
small size: the timed 64x64 row is run by hand, not in tests)."""

import numpy as np

from benchmarks import trainer_benchmark as tb


def test_encoder_flops_by_hand():
  # 64x64x3, 3x3 convolutions of 32 with strides 2, 1, 1, 1: 31x31, 29x29, 27x27, 25x25 pixels;
  # then 25*25*32 -> 50. Per image, times 2 (multiply and add).
  per_image = (31 * 31 * 9 * 3 * 32 + (29 * 29 + 27 * 27 + 25 * 25) * 9 * 32 * 32
               + 25 * 25 * 32 * 50)
  assert tb.encoder_flops() == 2 * 256 * per_image
  critic_update, call = tb.rlpd_pixel_flops(1)
  assert critic_update > 5 * tb.encoder_flops()  # 3x on s, target on s', online on s' (a')
  assert call - critic_update > tb.encoder_flops()  # the actor update encodes s again


def test_the_pixel_row_is_a_config_and_its_train_call_runs():
  assert 'rlpd_g1_pixels64' in tb.CONFIGS
  label, _, updates, flops = tb.CONFIGS['rlpd_g1_pixels64']
  assert updates == 1 and flops == tb.rlpd_pixel_flops(1) and '64x64' in label
  train = tb.make_rlpd_pixels(1, pixels=16, batch=8, hidden=(16,), num_critics=3,
                              encoder={'filters': 4, 'strides': (2, 1)})
  losses = [float(train()) for _ in range(2)]
  assert all(np.isfinite(losses))
