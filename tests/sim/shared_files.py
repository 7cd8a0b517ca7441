"""Where the shared expert and demo files live relative to this repository."""

import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPERT_DIR = os.path.join(REPO, '..', 'shared', 'experts', 'adroit')
DEMO_FILE = os.path.join(REPO, '..', 'shared', 'demos', 'door_human_demos.npz')


def expert_path(task_name: str) -> str:
  path = os.path.join(EXPERT_DIR, f'{task_name}_dapg_expert.npz')
  if not os.path.exists(path):
    pytest.skip(f'shared expert file {path} is absent (see /work/shared/experts/README.md)')
  return path
