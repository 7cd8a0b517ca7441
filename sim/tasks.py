"""The four Adroit hand tasks (gymnasium-robotics v1) and how each decides that an episode
succeeded.

Episodes last 200 steps and end by truncation: the Adroit environments never report a terminal
state, so the final observation of an episode is not terminal and the learner bootstraps there.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Callable, Optional, Sequence, Union

import numpy as np

EPISODE_LENGTH = 200
D4RL_SUCCESS_STEPS = 25


def final_step_success(success_flags: Sequence[bool]) -> bool:
  """The RLIF paper's pen rule: the pen is in the goal pose at the final step of the episode
  (`info['success']` of the last step). Stricter than D4RL's count of successful steps, because a
  pen that reaches the goal and then drops or overshoots counts as a failure."""
  flags = np.asarray(success_flags, bool)
  return bool(flags.size and flags[-1])


def d4rl_success(success_flags: Sequence[bool], min_steps: int = D4RL_SUCCESS_STEPS) -> bool:
  """The D4RL convention for door, hammer and relocate: `info['success']` is true on more than
  `min_steps` (25) steps of the episode, so a brief touch of the goal does not count."""
  return int(np.count_nonzero(np.asarray(success_flags, bool))) > min_steps


@dataclasses.dataclass(frozen=True)
class AdroitTask:
  name: str
  env_id: str
  observation_dim: int
  action_dim: int
  success_rule: Callable[[Sequence[bool]], bool]
  episode_length: int = EPISODE_LENGTH

  @property
  def expert_file(self) -> str:
    """File name of the task's DAPG expert in the shared experts folder."""
    return f'{self.name}_dapg_expert.npz'

  def is_success(self, success_flags: Sequence[bool]) -> bool:
    """Whether an episode with these per-step `info['success']` values succeeded."""
    return self.success_rule(success_flags)


TASKS = {
    'pen': AdroitTask('pen', 'AdroitHandPen-v1', 45, 24, final_step_success),
    'door': AdroitTask('door', 'AdroitHandDoor-v1', 39, 28, d4rl_success),
    'hammer': AdroitTask('hammer', 'AdroitHandHammer-v1', 46, 26, d4rl_success),
    'relocate': AdroitTask('relocate', 'AdroitHandRelocate-v1', 39, 30, d4rl_success),
}


def get_task(task) -> AdroitTask:
  """`task` as an `AdroitTask` (accepts the task itself or its name)."""
  if isinstance(task, AdroitTask):
    return task
  if task not in TASKS:
    raise KeyError(f'unknown task {task!r}; known: {sorted(TASKS)}')
  return TASKS[task]


@dataclasses.dataclass(frozen=True)
class CameraSpec:
  """A fixed camera rendered off-screen at every step (`Camera`).

  `name` is a camera of the Adroit models: 'fixed' (every Adroit task has it) looks at the hand
  and the object from the front, above the table. Shadows and reflections are off: with Mesa's
  software rasterizer they cost ~5x the rest of a frame (pen at 64x64: ~150 ms with them, ~15-25
  ms without, on this 2-core machine).
  """
  height: int = 64
  width: int = 64
  name: str = 'fixed'


class Camera:
  """Renders `spec`'s camera of a MuJoCo environment's current state as uint8 [H, W, 3].

  Off-screen, through MuJoCo's `Renderer` on the backend `MUJOCO_GL` names (EGL by default:
  `sim/__init__.py`). Rendering does not touch the simulation state.
  """

  def __init__(self, env, spec: CameraSpec):
    import mujoco
    self.spec = spec
    self._model, self._data = env.unwrapped.model, env.unwrapped.data
    if mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_CAMERA, spec.name) < 0:
      names = [mujoco.mj_id2name(self._model, mujoco.mjtObj.mjOBJ_CAMERA, i)
               for i in range(self._model.ncam)]
      raise ValueError(f'camera {spec.name!r} is not in the model (cameras: {names})')
    try:
      self._renderer = mujoco.Renderer(self._model, spec.height, spec.width)
    except Exception as e:
      raise RuntimeError(
          f'MuJoCo cannot render off-screen (MUJOCO_GL={os.environ.get("MUJOCO_GL")!r}): {e}. '
          'Headless rendering needs EGL and Mesa (Debian/Ubuntu: apt-get install libegl1 '
          'libgl1-mesa-dri), and MUJOCO_GL=egl set before mujoco is imported') from e
    self._mujoco = mujoco

  def render(self) -> np.ndarray:
    self._renderer.update_scene(self._data, camera=self.spec.name)
    flags = self._renderer.scene.flags
    flags[self._mujoco.mjtRndFlag.mjRND_SHADOW] = False
    flags[self._mujoco.mjtRndFlag.mjRND_REFLECTION] = False
    return self._renderer.render().copy()

  def close(self) -> None:
    self._renderer.close()


CAMERA_INFO_KEY = 'camera'  # where `make_env(..., camera=...)` puts each frame in `info`


def camera_spec(camera: Union[None, CameraSpec, tuple]) -> Optional[CameraSpec]:
  """`camera` as a CameraSpec: None, a spec, or (height, width) of the default camera."""
  if camera is None or isinstance(camera, CameraSpec):
    return camera
  height, width = camera
  return CameraSpec(int(height), int(width))


def make_env(task, seed: Optional[int] = None, episode_length: Optional[int] = None,
             camera: Union[None, CameraSpec, tuple] = None):
  """A gymnasium environment for `task`, truncated after `episode_length` steps (default 200).

  The environment is reset once with `seed`, which seeds its random stream (initial states,
  goals); later `reset()` calls without a seed continue that stream.

  `camera` ((height, width) or a `CameraSpec`): observations stay the state vector, and
  `reset` and `step` also return the frame of the state they reach in `info['camera']` (uint8
  [H, W, 3]); `env.camera` renders the current state on demand.
  """
  import gymnasium
  import gymnasium_robotics
  gymnasium.register_envs(gymnasium_robotics)
  task = get_task(task)
  env = gymnasium.make(task.env_id, max_episode_steps=episode_length or task.episode_length)
  spec = camera_spec(camera)
  if spec is not None:
    env = _camera_info_wrapper()(env, spec)
  env.reset(seed=seed)
  env.action_space.seed(seed)
  return env


@functools.lru_cache(maxsize=None)
def _camera_info_wrapper():
  """The wrapper class, defined on first use (gymnasium is imported lazily, as in make_env)."""
  import gymnasium

  class CameraInfo(gymnasium.Wrapper):
    """Adds the camera frame of the state reached to `info` on reset and step."""

    def __init__(self, env, spec: CameraSpec):
      super().__init__(env)
      self.camera = Camera(env, spec)

    def reset(self, **kwargs):
      obs, info = self.env.reset(**kwargs)
      return obs, {**info, CAMERA_INFO_KEY: self.camera.render()}

    def step(self, action):
      obs, reward, terminated, truncated, info = self.env.step(action)
      return obs, reward, terminated, truncated, {**info, CAMERA_INFO_KEY: self.camera.render()}

    def close(self):
      self.camera.close()
      super().close()

  return CameraInfo

