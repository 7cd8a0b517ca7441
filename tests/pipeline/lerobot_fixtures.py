"""The LeRobot datasets under fixtures/lerobot/ (written by lerobot itself: make_fixtures.py)."""

import glob
import os
import shutil

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'lerobot')


def fixture(layout: str, name: str) -> str:
  """The root of fixture `name` of codebase `layout` ('v2.1' or 'v3.0')."""
  return os.path.join(FIXTURES, layout, name)


def copy_of(layout: str, tmp_path, name: str, source: str) -> str:
  """A copy of a fixture under a new dataset name (so episode ids differ), safe to damage."""
  root = str(tmp_path / 'inputs' / name)
  shutil.copytree(fixture(layout, source), root)
  return root


def data_files(root: str) -> list[str]:
  """The dataset's parquet data files, in order."""
  return sorted(glob.glob(os.path.join(root, 'data', '*', '*.parquet')))
