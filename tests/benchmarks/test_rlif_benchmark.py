import json
import os

from benchmarks import rlif_benchmark as bench

STEPS_PER_ROUND = 4000


def _row(round_index, seed, success, expert=0.35, interventions=0.25):
  return {'round': round_index, 'seed': seed, 'env_steps': round_index * STEPS_PER_ROUND,
          'eval': {'success_rate': success},
          'collection': {'success_rate': expert if round_index == 0 else 0.5,
                         'intervention_rate': 0.0 if round_index == 0 else interventions}}


def _write_run(root, grid, level, label, seed, successes, **kwargs):
  path = bench.run_dir(root, grid, level, label, seed)
  os.makedirs(path)
  with open(os.path.join(path, 'results.jsonl'), 'w') as f:
    for i, success in enumerate(successes):
      f.write(json.dumps(_row(i, seed, success, **kwargs)) + '\n')


def _table(out_dir):
  with open(os.path.join(out_dir, 'results.md')) as f:
    text = f.read()
  return text, {tuple(cell.strip() for cell in line.split('|')[1:3]): line
                for line in text.splitlines() if line.startswith('| ~')}


def test_report_compares_seeds_at_the_round_all_of_them_finished(tmp_path):
  root, out = str(tmp_path / 'runs'), str(tmp_path / 'out')
  # Seed 0 is two rounds ahead of seed 1: both are read at round 1.
  _write_run(root, 'pen', '40', 'rlif_value+bc_reg', 0, [0.2, 0.5, 0.9, 1.0])
  _write_run(root, 'pen', '40', 'rlif_value+bc_reg', 1, [0.3, 0.6])
  _write_run(root, 'pen', '40', 'bc', 0, [0.2, 0.4], interventions=0.0)
  rows = bench.load_rows(root, 'pen')
  assert {(r['level'], r['method'], r['seed']) for r in rows} == {
      ('40', 'rlif_value+bc_reg', 0), ('40', 'rlif_value+bc_reg', 1), ('40', 'bc', 0)}
  bench.write_report(rows, 'pen', out, 'spec')
  text, table = _table(out)
  # rounds done, env steps, initial, final (seeds), best, expert, interventions, paper
  assert table[('~40%', 'rlif_value+bc_reg')] == (
      '| ~40% | rlif_value+bc_reg | 1 | 4000 | 25 | **55** +- 5 (50, 60) | 55 | 55 | 35 | 25% '
      '| - |')
  assert table[('~40%', 'bc')] == (
      '| ~40% | bc | 1 | 4000 | 20 | **40** (40) | 40 | 40 | 35 | 0% | - |')
  assert 'Paper (Table 1, pen' in text
  assert 'success every 20k steps' not in text  # a 20k-step grid has no milestone column
  for plot in ('success.png', 'interventions.png'):
    assert os.path.getsize(os.path.join(out, plot)) > 1000


def test_long_grids_report_success_every_20k_steps_and_other_tasks_no_paper_line(tmp_path):
  root, out = str(tmp_path / 'runs'), str(tmp_path / 'out')
  successes = [0.1 * i for i in range(11)]  # 10 rounds of 4000 steps: 40k env steps
  _write_run(root, 'door_100k', '10', 'hg_dagger', 0, successes)
  bench.write_report(bench.load_rows(root, 'door_100k'), 'door', out, 'spec')
  text, table = _table(out)
  assert table[('~10%', 'hg_dagger')].endswith('| - | 20k 50, 40k 100 |')
  # Last 3 = rounds 8-10 of 0.1 * round: (80 + 90 + 100) / 3.
  assert '| **100** (100) | 90 |' in table[('~10%', 'hg_dagger')]
  assert 'Paper (Table 1' not in text


def test_variants_change_one_thing_at_equal_budgets():
  import pytest
  from sim import loop
  base = loop.LoopSpec(method='rlif_value', rounds=5, episodes_per_round=20,
                       updates_per_round=1000, learner_overrides=(('seed_like', 1),))
  small = bench.apply_variants(base, 'rlif_value+rounds4x')
  assert (small.rounds, small.episodes_per_round, small.updates_per_round) == (20, 5, 250)
  assert small.env_steps == base.env_steps  # same env steps, same updates per env step
  assert small.rounds * small.updates_per_round == base.rounds * base.updates_per_round
  both = bench.apply_variants(base, 'rlif_value+bc_demo+g4')
  assert dict(both.learner_overrides) == {'seed_like': 1, 'bc_actions': 'demonstrated',
                                          'critic_updates_per_step': 4}
  assert bench.apply_variants(base, 'rlif_value+drop').takeover == 'drop'
  assert bench.apply_variants(base, 'rlif_value') == base
  with pytest.raises(ValueError, match='unknown variant'):
    bench.apply_variants(base, 'rlif_value+fast')
  # Rows are ordered by method, each method's variants after it.
  labels = ['bc', 'rlif_value+g4', 'dagger', 'rlif_value', 'rlif_value+bc_demo']
  assert sorted(labels, key=bench.row_order) == [
      'rlif_value', 'rlif_value+bc_demo', 'rlif_value+g4', 'dagger', 'bc']


def test_a_budget_keeps_unfinished_runs_out_of_the_table(tmp_path):
  root, out = str(tmp_path / 'runs'), str(tmp_path / 'out')
  _write_run(root, 'pen', '40', 'rlif_value', 0, [0.2, 0.5, 0.9])
  _write_run(root, 'pen', '40', 'rlif_value', 1, [0.3, 0.6])  # stopped after round 1
  bench.write_report(bench.load_rows(root, 'pen'), 'pen', out, 'spec', budget=2 * STEPS_PER_ROUND)
  text, table = _table(out)
  assert '| 2 | 8000 | 20 | **90** (90) |' in table[('~40%', 'rlif_value')]
  assert 'not in the table): ~40% rlif_value seed 1.' in text
