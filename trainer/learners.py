"""The learners the trainer knows: a registry from learner name to (agent factory, settings file
in configs/, data rule), and the settings files' loader. `rlif` is the product default
(`DEFAULT_LEARNER`). The settings themselves are data in configs/<learner>.toml: one key per
constructor argument, each with a comment saying why."""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from typing import Callable, Mapping, Optional

import configs


# Which transitions of a round feed the learner (see trainer/train_loop.py `route_round`):
#   'rl'        prior rounds -> prior pool, intervention rounds -> online pool (all transitions)
#   'prior'     prior rounds only (behaviour cloning)
#   'takeovers' prior rounds, plus the human takeover steps (`is_intervention`) of intervention
#               rounds, sampled uniformly together (HG-DAgger)
#   'labels'    prior rounds, plus every step of later rounds that has the expert's action for
#               its state (`expert_action` labels, or the human's executed action), trained on
#               that action (DAgger; trainer/pairing.py `expert_labelled`)
DATA_RULES = ('rl', 'prior', 'takeovers', 'labels')


@dataclasses.dataclass(frozen=True)
class LearnerEntry:
  make_agent: Callable  # (observation spec: D or dict fields, action_dim, **settings) -> TFAgent
  settings_file: str
  data_rule: str


def _rlpd(observation, action_dim, **settings):
  from trainer.rlpd_agent import RlpdAgent
  return RlpdAgent.from_dims(observation, action_dim, **settings)


def _supervised(observation, action_dim, **settings):
  from trainer.supervised_agent import SupervisedAgent
  return SupervisedAgent.from_dims(observation, action_dim, **settings)


def _settings_file(learner: str) -> str:
  return os.path.join(configs.DIRECTORY, f'{learner}.toml')


LEARNERS: Mapping[str, LearnerEntry] = {
    'rlif': LearnerEntry(_rlpd, _settings_file('rlif'), 'rl'),
    'rlpd': LearnerEntry(_rlpd, _settings_file('rlpd'), 'rl'),
    'bc': LearnerEntry(_supervised, _settings_file('bc'), 'prior'),
    'hg_dagger': LearnerEntry(_supervised, _settings_file('hg_dagger'), 'takeovers'),
    'dagger': LearnerEntry(_supervised, _settings_file('dagger'), 'labels'),
}
DEFAULT_LEARNER = 'rlif'
# Keys a settings file may hold that set the train loop rather than the agent: the share of each
# batch drawn from prior data (RLPD's symmetric sampling; the loop's default 0.5), and the BC
# updates that start the actor before RL (trainer/warm_start.py; default 0: none), and whether
# the policy's proposals that takeovers refused join the online pool (trainer/pairing.py
# `refused_proposals`; default false), and how many logged steps each TD target sums before it
# bootstraps (trainer/pairing.py `multi_step`; default 1), and how many steps before a takeover
# the policy's own actions count as corrected rather than accepted (trainer/pairing.py
# `accepted`; default 0: none of the policy's actions are imitated as accepted), and how much
# each of the operator's own steps weighs in the behaviour term (trainer/pairing.py
# `demonstrated`; default 1).
LOOP_SETTINGS = ('prior_fraction', 'actor_warm_start', 'refused_proposals', 'n_step',
                 'accepted_window', 'operator_weight', 'bc_sampling')
DEFAULT_PRIOR_FRACTION = 0.5


def split_settings(settings: Mapping) -> tuple[dict, dict]:
  """(the agent's constructor arguments, the loop's settings) of a learner's settings."""
  return ({k: v for k, v in settings.items() if k not in LOOP_SETTINGS},
          {k: v for k, v in settings.items() if k in LOOP_SETTINGS})


def read_settings_file(path: str) -> dict:
  """A settings file: TOML (`.toml`, the project's own) or JSON (any other name)."""
  if path.endswith('.toml'):
    with open(path, 'rb') as f:
      try:
        return tomllib.load(f)
      except tomllib.TOMLDecodeError as e:
        raise ValueError(f'{path}: not valid TOML: {e}') from None
  with open(path) as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f'{path}: not valid JSON: {e}') from None


def load_settings(learner: str, path: Optional[str] = None,
                  overrides: Optional[Mapping] = None) -> dict:
  """The learner's settings: its file (or `path`), then `overrides` (only known keys)."""
  if learner not in LEARNERS:
    raise ValueError(f'unknown learner {learner!r}; known: {sorted(LEARNERS)}')
  settings = read_settings_file(path or LEARNERS[learner].settings_file)
  for key, value in (overrides or {}).items():
    if key not in settings and key not in ('seed', 'use_xla'):
      raise ValueError(f'{key!r} is not a setting of learner {learner!r} '
                       f'(settings: {sorted(settings)})')
    settings[key] = value
  return settings


def parse_overrides(items) -> dict:
  """['num_critics=5', 'critic_hidden=[64,64]'] -> {'num_critics': 5, ...} (JSON values)."""
  result = {}
  for item in items or ():
    key, sep, value = item.partition('=')
    if not sep:
      raise ValueError(f'override {item!r} is not key=value')
    try:
      result[key.strip()] = json.loads(value)
    except json.JSONDecodeError:
      result[key.strip()] = value
  return result
