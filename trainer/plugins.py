"""Steps the trainer's command line runs but does not implement: they are plugged in by name.

The trainer sits downstream of the dataset and upstream of the simulator (raw logs -> pipeline ->
dataset -> trainer -> policy -> simulator), so it imports neither the code that makes a dataset
nor the simulator that evaluates a policy. Packages offer those steps as entry points (Python's
plug-in mechanism, declared in pyproject.toml) and `trainer.main` asks for them by name:

  rlif.dataset_preparers  NAME = fn(data_dir, dataset, **options) -> version dir
                          writes dataset NAME when the trainer finds none (the embedded default)
  rlif.policy_evaluators  NAME = fn(policy_dir, *, episodes, seed, observation_dim, action_dim,
                          **options) -> {'success_rate', 'mean_return', 'episodes'} or
                          {'skipped': reason}; observation_dim is the dataset's observation
                          spec: D, or the fields of a dict observation (pipeline.schema)
"""

from __future__ import annotations

from importlib import metadata
from typing import Callable, Optional

PREPARERS = 'rlif.dataset_preparers'
EVALUATORS = 'rlif.policy_evaluators'


def names(group: str) -> list[str]:
  return sorted(entry.name for entry in metadata.entry_points(group=group))


def find(group: str, name: str) -> Optional[Callable]:
  """The plug-in `name` of `group`, loaded; None when no installed package offers it."""
  for entry in metadata.entry_points(group=group, name=name):
    return entry.load()
  return None


def require(group: str, name: str) -> Callable:
  """`find`, or an error that says what is installed and how to get the rest."""
  plugin = find(group, name)
  if plugin is None:
    raise LookupError(f'no {group} plug-in named {name!r} (installed: {names(group) or "none"});'
                      ' install the project with `make setup` (pip install -e .), which '
                      'declares them in pyproject.toml')
  return plugin
