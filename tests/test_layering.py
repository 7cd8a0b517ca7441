"""Imports follow the data downstream: raw logs -> pipeline -> dataset -> trainer -> policy ->
simulator. A package may import the ones before it, never the ones after it (the trainer plugs
in dataset preparation and evaluation by name instead: trainer/plugins.py)."""

import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# package -> packages it must not import
FORBIDDEN = {
    'pipeline': {'dataset_builders', 'trainer', 'sim'},
    'dataset_builders': {'trainer', 'sim'},
    'trainer': {'sim'},
    'configs': {'pipeline', 'dataset_builders', 'trainer', 'sim'},
}


def imported_packages(path):
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield alias.name.split('.')[0], node.lineno
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      yield node.module.split('.')[0], node.lineno


@pytest.mark.parametrize('package', sorted(FORBIDDEN))
def test_no_import_reaches_back_up_the_data_flow(package):
  found = []
  for root, _, files in os.walk(os.path.join(REPO, package)):
    for name in files:
      if name.endswith('.py') and not name.endswith('_test.py'):  # tests check the joins
        path = os.path.join(root, name)
        found += [f'{os.path.relpath(path, REPO)}:{line} imports {module}'
                  for module, line in imported_packages(path) if module in FORBIDDEN[package]]
  assert not found, found


def test_the_trainer_finds_its_plug_ins_by_name():
  from trainer import plugins
  assert 'rlif_adroit' in plugins.names(plugins.PREPARERS)
  assert 'adroit' in plugins.names(plugins.EVALUATORS)
  with pytest.raises(LookupError, match="no rlif.dataset_preparers plug-in named 'my_robot'"):
    plugins.require(plugins.PREPARERS, 'my_robot')
