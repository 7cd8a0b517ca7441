"""Off-screen rendering for the tests that use simulated cameras."""

import pytest

from sim import tasks


def skip_without_off_screen_rendering() -> None:
  """Skips the calling test when MuJoCo cannot render off-screen here (no EGL/Mesa: .ci/run
  installs libegl1 and libgl1-mesa-dri)."""
  try:
    tasks.make_env('pen', 0, 1, camera=(8, 8)).close()
  except RuntimeError as e:
    pytest.skip(f'no off-screen rendering here: {e}')
