import json

from benchmarks import imitation_ceiling


def _row(level, method, seed, round_index, env_steps, success):
  return {'level': level, 'method': method, 'seed': seed, 'round': round_index,
          'env_steps': env_steps, 'eval': {'success_rate': success}}


def test_grid_finals_keeps_each_runs_last_round_of_whole_budget_runs(tmp_path):
  path = tmp_path / 'runs.jsonl'
  rows = [_row('40', 'bc', 0, 0, 0, 0.5), _row('40', 'bc', 0, 5, 20000, 0.8),
          _row('40', 'bc', 1, 5, 20000, 0.6), _row('40', 'bc', 1, 4, 16000, 0.1),
          _row('40', 'bc', 2, 3, 12000, 0.9),           # stopped early: left out
          _row('40', 'rlif_value+explore0.3', 0, 5, 20000, 0.7),  # a variant: left out
          _row('10', 'rlif_value', 0, 5, 20000, 0.25)]
  path.write_text(''.join(json.dumps(r) + '\n' for r in rows))
  finals = imitation_ceiling.grid_finals(str(path), budget=20000)
  assert finals == {('40', 'bc'): [80.0, 60.0], ('10', 'rlif_value'): [25.0]}
  assert imitation_ceiling.grid_finals(str(tmp_path / 'missing.jsonl'), 20000) == {}


def test_table_puts_the_limit_beside_the_grids_finals(tmp_path):
  (tmp_path / 'rlif_pen').mkdir()
  (tmp_path / 'rlif_pen' / 'runs.jsonl').write_text(
      json.dumps(_row('10', 'bc', 0, 5, 20000, 0.5)) + '\n'
      + json.dumps(_row('10', 'bc', 1, 5, 20000, 0.6)) + '\n')
  lines = imitation_ceiling.table([{'task': 'pen', 'level': '10', 'noise': 0.75, 'clean': 82.0,
                                    'noisy': 12.0, 'averaged': 56.0}], str(tmp_path), 20000)
  assert lines[2] == '| pen | ~10% | 0.75 | 82 | 12 | **56** | - | - | - | 55 (2) |'
