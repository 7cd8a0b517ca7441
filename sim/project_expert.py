"""The project's own experts: the one place that says which expert a task gets when nothing from
outside the repository may be used (the quickstart's sample, `sim.prepare`'s simulated rounds,
`python -m sim.loop --expert_dir project`).

pen: `project_experts/pen_actor.npz`, an `ActorExpert` (sim/actor_expert.py): the actor of a
policy this project's RLIF loop trained (its provenance is stored in the file; sim/EXPERTS.md has
how it was chosen and measured: 68% success on 50 held-out episodes, ~0.1 ms a step). It replaced
the MPPI planner (`sim.planner.PenPlanner`, 80-87% but ~15 s an episode), whose demonstrations
behaviour cloning could not learn from (0 of 20 after the quickstart's training).
"""

from __future__ import annotations

import os

from sim import actor_expert
from sim import tasks as tasks_lib

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'project_experts')
# task name -> the actor file in WEIGHTS_DIR
ACTOR_FILES = {'pen': 'pen_actor.npz'}


class NoProjectExpertError(KeyError):
  """A task for which the repository holds no expert of its own."""


def project_expert(task) -> actor_expert.ActorExpert:
  """The expert that lives in this repository for `task`."""
  task = tasks_lib.get_task(task)
  if task.name not in ACTOR_FILES:
    raise NoProjectExpertError(
        f'task {task.name!r} has no project-owned expert (only {sorted(ACTOR_FILES)} do: '
        f'{WEIGHTS_DIR}); use a third-party expert file for it')
  return actor_expert.ActorExpert.load(os.path.join(WEIGHTS_DIR, ACTOR_FILES[task.name]), task)
