"""sim.project_expert: the repository's own pen expert is an actor it trained, and it succeeds."""

import pytest

from sim import actor_expert
from sim import experts
from sim import project_expert


def test_pen_has_an_actor_expert_with_its_provenance():
  expert = project_expert.project_expert('pen')
  assert isinstance(expert, actor_expert.ActorExpert)
  assert (expert.observation_dim, expert.action_dim) == (45, 24)
  assert 'RLIF loop trained' in expert.provenance and 'rlif_value+bc1' in expert.provenance


def test_other_tasks_have_none():
  with pytest.raises(project_expert.NoProjectExpertError, match="'door' has no project-owned"):
    project_expert.project_expert('door')


def test_the_pen_actor_succeeds_alone():
  """68% on 50 held-out episodes (seed 2000, sim/EXPERTS.md); the first 10 of them here."""
  rate = experts.success_rate('pen', project_expert.project_expert('pen'), 10, seed=2000)
  assert rate >= 0.5, rate
