"""The 25 human door demonstrations (CyberGlove teleoperation, DAPG) as raw episodes (prior data).

The source file stores, per demonstration, T observations and T actions: observation t is the
state before action t, and there is no observation after the last action. Raw log format v1 needs
the final observation, so the conversion drops the last action: the T recorded observations
become observations [T, D] with actions [T-1, A], and the last recorded observation is the final
observation (a truncation, not a terminal state). Nothing is invented; one step per demo is lost.

The human's actions are kept as recorded, including values outside [-1, 1] (about -1.28..1.37):
the environment would clip them, but the log records what the human did; the pipeline counts such
steps in its report (`steps_with_actions_outside_unit_box`). The files carry no intervention
flags, so the pipeline treats them as demonstrations with all-zero rewards.
"""

from __future__ import annotations

import dataclasses
import io
import os

import numpy as np

DEMO_FILE = 'door_human_demos.npz'


@dataclasses.dataclass(frozen=True)
class HumanDemo:
  index: int
  observations: np.ndarray  # [T, 39] state before each action
  actions: np.ndarray       # [T, 28] as the human commanded them
  rewards: np.ndarray       # [T] the original (v0) dense reward
  initial_state: dict       # qpos [30], qvel [30], door_body_pos [3]


def load_demos(path: str) -> list[HumanDemo]:
  """Splits the concatenated arrays of the demo file into one `HumanDemo` per demonstration."""
  with _open(path) as f, np.load(f, allow_pickle=False) as data:
    lengths = data['episode_lengths'].astype(int)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    if bounds[-1] != data['observations'].shape[0]:
      raise ValueError(f'{path}: episode_lengths sum to {bounds[-1]} but there are '
                       f'{data["observations"].shape[0]} observations')
    return [HumanDemo(i, data['observations'][a:b], data['actions'][a:b], data['rewards'][a:b],
                      {'qpos': data['init_qpos'][i], 'qvel': data['init_qvel'][i],
                       'door_body_pos': data['init_door_body_pos'][i]})
            for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]


def _open(path):
  if '://' not in str(path):
    return open(path, 'rb')
  import tensorflow as tf
  with tf.io.gfile.GFile(path, 'rb') as f:
    return io.BytesIO(f.read())


def demo_episode(demo: HumanDemo) -> tuple[np.ndarray, np.ndarray]:
  """(observations [T, D], actions [T-1, A]): the last action is dropped so that the last
  recorded observation serves as the final observation."""
  return demo.observations, demo.actions[:-1]


def demo_episode_id(demo: HumanDemo) -> str:
  return f'door-human-{demo.index:02d}'


def convert(path: str, out_dir: str) -> list[str]:
  """Writes every demonstration of `path` as `<out_dir>/<episode_id>.npz`; returns the paths."""
  import tensorflow as tf
  from pipeline import raw_writer
  tf.io.gfile.makedirs(out_dir)
  paths = []
  for demo in load_demos(path):
    observations, actions = demo_episode(demo)
    metadata = {
        'episode_id': demo_episode_id(demo), 'task': 'door', 'round': 0,
        'source': 'human_teleoperation', 'source_file': os.path.basename(str(path)),
        'demo_index': demo.index, 'recorded_steps': int(len(demo.actions)),
        'dropped_last_action': True,
        'steps_with_actions_outside_unit_box': int(np.sum(np.any(np.abs(actions) > 1, axis=1))),
        'original_return': float(np.sum(demo.rewards[:len(actions)])),
    }
    out = os.path.join(out_dir, demo_episode_id(demo) + '.npz')
    raw_writer.write_npz_episode(out, observations, actions, metadata, terminated=False)
    paths.append(out)
  return paths


def replay(env, demo: HumanDemo, num_steps: int) -> dict:
  """Replays the first `num_steps` recorded actions from the recorded initial state in `env`
  (AdroitHandDoor-v1) and compares the observations the environment produces with the recorded
  ones. Returns `max_abs_error` [steps + 1] (max over dims; index 0 is the initial observation),
  `initial_error` [D] per dimension, and `success_steps` (steps with info['success'])."""
  obs, _ = env.reset(options={'initial_state_dict': demo.initial_state})
  initial_error = np.abs(obs - demo.observations[0])
  errors = [float(np.max(initial_error))]
  successes = 0
  for t in range(min(num_steps, len(demo.actions) - 1)):
    obs, _, _, _, info = env.step(demo.actions[t])
    errors.append(float(np.max(np.abs(obs - demo.observations[t + 1]))))
    successes += bool(info.get('success', False))
  return {'max_abs_error': np.array(errors), 'initial_error': initial_error,
          'success_steps': successes}
