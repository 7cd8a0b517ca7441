"""The four Adroit hand tasks (gymnasium-robotics v1) and how each decides that an episode succeeded.

Episodes last 200 steps and end by truncation: the Adroit environments never report a terminal
state, so the final observation of an episode is not terminal and the learner bootstraps there.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence

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


def make_env(task, seed: Optional[int] = None, episode_length: Optional[int] = None):
  """A gymnasium environment for `task`, truncated after `episode_length` steps (default 200).

  The environment is reset once with `seed`, which seeds its random stream (initial states,
  goals); later `reset()` calls without a seed continue that stream.
  """
  import gymnasium
  import gymnasium_robotics
  gymnasium.register_envs(gymnasium_robotics)
  task = get_task(task)
  env = gymnasium.make(task.env_id, max_episode_steps=episode_length or task.episode_length)
  env.reset(seed=seed)
  env.action_space.seed(seed)
  return env
