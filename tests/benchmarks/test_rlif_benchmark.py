import dataclasses
import json
import os

from benchmarks import rlif_benchmark as bench

STEPS_PER_ROUND = 4000


def _row(round_index, seed, success, expert=0.35, interventions=0.25):
  return {'round': round_index, 'seed': seed, 'env_steps': round_index * STEPS_PER_ROUND,
          'eval': {'success_rate': success, 'mean_return': 1000.0 * success},
          'collection': {'success_rate': expert if round_index == 0 else 0.5,
                         'intervention_rate': 0.0 if round_index == 0 else interventions}}


def _write_run(root, grid, level, label, seed, successes, **kwargs):
  path = bench.run_dir(root, grid, level, label, seed)
  os.makedirs(path)
  with open(os.path.join(path, 'results.jsonl'), 'w') as f:
    for i, success in enumerate(successes):
      f.write(json.dumps(_row(i, seed, success, **kwargs)) + '\n')


def _edit_rows(root, grid, level, label, seed, edit):
  """Rewrites a stored run's rows after `edit(rows)` changed them in place."""
  path = os.path.join(bench.run_dir(root, grid, level, label, seed), 'results.jsonl')
  rows = [json.loads(line) for line in open(path)]
  edit(rows)
  with open(path, 'w') as f:
    f.write(''.join(json.dumps(row) + '\n' for row in rows))


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


def test_the_interventions_cell_gives_the_share_of_takeovers_the_rule_flagged(tmp_path):
  root, out = str(tmp_path / 'runs'), str(tmp_path / 'out')
  _write_run(root, 'pen', '90', 'rlif_value', 0, [0.5, 0.6])
  _write_run(root, 'pen', '90', 'rlif_value', 1, [0.5, 0.7])
  for seed, flagged in ((0, 3), (1, 7)):  # of 20 takeover decisions: 15% and 35%
    _edit_rows(root, 'pen', '90', 'rlif_value', seed,
               lambda rows, flagged=flagged: rows[1]['collection'].update(intervention_decisions={
                   'decisions': 700, 'takeovers': 20, 'flagged': 9,
                   'flagged_takeovers': flagged}))
  bench.write_report(bench.load_rows(root, 'pen'), 'pen', out, 'spec')
  _, table = _table(out)
  assert '| 25% (25% flagged) | 88.5 |' in table[('~90%', 'rlif_value')]
  _write_run(root, 'pen', '90', 'rlif_value', 2, [0.5, 0.7])  # recorded before the counts
  bench.write_report(bench.load_rows(root, 'pen'), 'pen', out, 'spec')
  _, table = _table(out)
  assert '| 25% (25% flagged, 2 of 3 seeds) | 88.5 |' in table[('~90%', 'rlif_value')]
  assert bench.flagged_share({'intervention_rate': 0.2}) is None  # recorded before the counts
  assert bench.flagged_share({'intervention_decisions': {'decisions': 5, 'takeovers': 2}}) is None


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


def test_each_degradation_and_budget_has_its_own_grid():
  assert bench.grid_name('pen') == 'pen'
  assert bench.grid_name('pen', 'noise', '100k') == 'pen_100k'
  assert bench.grid_name('door', 'distortion') == 'door_distorted'
  assert bench.grid_name('pen', 'distortion', 'fs') == 'pen_distorted_fs'


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
                                          'accepted_window': 0, 'critic_updates_per_step': 4}
  assert bench.apply_variants(base, 'rlif_value+drop').takeover == 'drop'
  assert bench.apply_variants(base, 'rlif_value') == base
  judged = bench.apply_variants(base, 'rlif_value+judge_clean+alpha0.99')
  assert (judged.operator_standard, judged.intervention_overrides) == ('clean', (('alpha', 0.99),))
  assert dataclasses.replace(judged, operator_standard='own', intervention_overrides=()) == base
  with pytest.raises(ValueError, match='unknown variant'):
    bench.apply_variants(base, 'rlif_value+fast')
  # Every variant's learner settings are settings of the RLIF learner (a run would otherwise fail
  # at its first train call, after its collection).
  from trainer import learners
  for name in bench.VARIANTS:
    overrides = dict(bench.apply_variants(loop.LoopSpec(method='rlif_value'),
                                          f'rlif_value+{name}').learner_overrides)
    learners.load_settings('rlif', overrides=overrides)
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


def test_headline_puts_the_shipped_methods_side_by_side_and_compares_with_hg_dagger(tmp_path):
  root, out = str(tmp_path / 'runs'), str(tmp_path / 'out')
  # ~40%: RLIF (70, 80) vs HG-DAgger (30, 40): gap 40, spreads 5 -> above.
  # ~10%: RLIF (50, 30) vs HG-DAgger (35, 45): gap 0, spreads 10 and 5 -> within the spread.
  for seed, (rlif40, hg40, rlif10, hg10) in enumerate([(0.7, 0.3, 0.5, 0.35),
                                                       (0.8, 0.4, 0.3, 0.45)]):
    _write_run(root, 'pen', '40', 'rlif_value', seed, [0.2, rlif40])
    _write_run(root, 'pen', '40', 'hg_dagger', seed, [0.2, hg40])
    _write_run(root, 'pen', '10', 'rlif_value', seed, [0.2, rlif10])
    _write_run(root, 'pen', '10', 'hg_dagger', seed, [0.2, hg10])
  _write_run(root, 'pen', '40', 'rlif_value+bc1', 0, [0.2, 1.0])  # a variant: not a column
  _write_run(root, 'pen', '40', 'bc', 0, [0.2, 0.5], interventions=0.0)  # one level only
  bench.write_report(bench.load_rows(root, 'pen'), 'pen', out, 'spec')
  with open(os.path.join(out, 'results.md')) as f:
    lines = f.read().splitlines()
  start = lines.index('| expert level | rlif_value | hg_dagger | bc | RLIF value - HG-DAgger |')
  assert lines[start + 2:start + 6] == [
      '| ~40% | 75 +- 5 (2) | 35 +- 5 (2) | 50 +- 0 (1) | +40 (above) |',
      '| ~10% | 40 +- 10 (2) | 40 +- 5 (2) | - | +0 (within the spread) |',
      '| mean over levels | **58** | **38** | **50** (1 of 2 levels) | |',
      '| paper (Table 1, pen mean) | 77.8 | 54.0 | 54.1 | |']
  assert bench._versus([20, 30], [60, 70]) == '-40 (below)'
  assert bench._versus([20], None) == '-'
  assert bench._versus([100], [95]) == '+5 (one seed: not judged)'


def test_ablations_pair_each_variant_with_its_method_on_the_same_seeds(tmp_path):
  root, out = str(tmp_path / 'runs'), str(tmp_path / 'out')
  _write_run(root, 'pen', '40', 'rlif_value', 0, [0.2, 0.5])
  _write_run(root, 'pen', '40', 'rlif_value', 1, [0.3, 0.8])
  _write_run(root, 'pen', '40', 'rlif_value', 2, [0.3, 0.6])
  _write_run(root, 'pen', '40', 'rlif_value+bc1', 0, [0.2, 0.7])
  _write_run(root, 'pen', '40', 'rlif_value+bc1', 1, [0.4, 0.7])  # another initial policy
  _write_run(root, 'pen', '10', 'rlif_value+g4', 0, [0.2, 0.9])    # no method run to pair with
  bench.write_report(bench.load_rows(root, 'pen'), 'pen', out, 'spec')
  with open(os.path.join(out, 'results.md')) as f:
    lines = f.read().splitlines()
  start = lines.index('| expert level | variant | seeds | variant | method as it ships | '
                      'difference | variant ahead | initial BC policies |')
  # Seeds 0 and 1 only (seed 2 has no bc1 run): 70 vs 50, 70 vs 80 -> +20, -10.
  assert lines[start + 2] == (
      '| ~40% | rlif_value+bc1 | 0, 1 | 70, 70 | 50, 80 | +5 +- 15 | 1 of 2 | '
      'differ: seed 1: 40 vs 30 |')
  assert not any('rlif_value+g4' in line for line in lines[start:])
  assert bench.ablations({}) == []
  # A rerun of the method on seed 1 starts from bc1's initial policy: bc1 is paired with it
  # there, and the rerun row itself with the shipped run. On seed 0 the shipped run already
  # starts where bc1 does, and stays its partner.
  _write_run(root, 'pen', '40', 'rlif_value+rerun', 1, [0.4, 0.6])
  _write_run(root, 'pen', '40', 'rlif_value+rerun', 0, [0.3, 0.9])
  # Seed 2's rerun starts with the shipped run's success but another policy (its return).
  _write_run(root, 'pen', '40', 'rlif_value+rerun', 2, [0.3, 0.5])
  _edit_rows(root, 'pen', '40', 'rlif_value+rerun', 2,
             lambda rows: rows[0]['eval'].update(mean_return=1234.0))
  bench.write_report(bench.load_rows(root, 'pen'), 'pen', out, 'spec')
  with open(os.path.join(out, 'results.md')) as f:
    rows = [line for line in f.read().splitlines() if line.startswith('| ~40% | rlif_value+')]
  assert rows[-2:] == [
      '| ~40% | rlif_value+bc1 | 0, 1 | 70, 70 | 50, 60 | +15 +- 5 | 2 of 2 | '
      'seed 1: against the rerun |',
      '| ~40% | rlif_value+rerun | 0, 1, 2 | 90, 60, 50 | 50, 80, 60 | +3 +- 26 | 1 of 3 | '
      'differ: seed 0: 30 vs 20; seed 1: 40 vs 30; seed 2: 30 vs 30 (return 1234 vs 300) |']


def test_ablations_compare_a_run_still_going_at_its_partners_env_steps():
  def run(successes, steps_per_round):
    return [{'round': i, 'env_steps': i * steps_per_round, 'eval': {'success_rate': x}}
            for i, x in enumerate(successes)]
  # The variant stopped at 8000 steps, in rounds of 2000; the method went on to 12000.
  runs = {('40', 'rlif_value+rounds4x', 0): run([0.2, 0.3, 0.4, 0.5, 0.6], 2000),
          ('40', 'rlif_value', 0): run([0.2, 0.1, 0.9, 0.3], 4000)}
  (row,) = [line for line in bench.ablations(runs) if line.startswith('| ~40%')]
  assert row == '| ~40% | rlif_value+rounds4x | 0 | 60 | 90 | -30 | 0 of 1 | same |'


def test_ablations_do_not_pair_runs_evaluated_on_different_episode_counts():
  def run(successes, episodes):
    return [{'round': i, 'env_steps': i * 4000,
             'eval': {'success_rate': x, 'episodes': episodes}} for i, x in enumerate(successes)]
  runs = {('40', 'rlif_value+nstep20', 0): run([0.67, 0.62], 100),
          ('40', 'rlif_value', 0): run([0.7, 0.7], 20),
          ('40', 'rlif_value+g4', 0): run([0.7, 0.9], 20)}
  rows = [line for line in bench.ablations(runs) if line.startswith('| ~40%')]
  assert rows == [
      '| ~40% | rlif_value+g4 | 0 | 90 | 70 | +20 | 1 of 1 | same |',
      '| ~40% | rlif_value+nstep20 | 0 | - | - | - | - | not paired: evaluated on 20 and 100 '
      'episodes (benchmarks/reevaluate.py pairs them on 100) |']


def test_a_row_another_process_is_still_writing_is_left_out(tmp_path):
  _write_run(str(tmp_path), 'pen', '40', 'rlif_value', 0, [0.3, 0.5])
  path = os.path.join(bench.run_dir(str(tmp_path), 'pen', '40', 'rlif_value', 0), 'results.jsonl')
  with open(path, 'a') as f:
    f.write(json.dumps(_row(2, 0, 0.6))[:25])  # half a row, no newline yet
  rows = bench.load_rows(str(tmp_path), 'pen')
  assert [(r['round'], r['eval']['success_rate']) for r in rows] == [(0, 0.3), (1, 0.5)]
  assert {(r['level'], r['method']) for r in rows} == {('40', 'rlif_value')}


def test_a_report_waits_for_the_one_being_written_and_then_reads_the_rows_afresh(tmp_path):
  import fcntl
  import subprocess
  import sys
  import time
  root, out = str(tmp_path / 'runs'), str(tmp_path / 'out')
  _write_run(root, 'pen', '40', 'rlif_value', 0, [0.3, 0.5])
  bench.report(root, 'pen', 'pen', out, 'spec')  # the lock file sits beside the level folders
  assert '**50** (50)' in _table(out)[1][('~40%', 'rlif_value')]
  # Another grid process is writing its report: this one's waits, and reads the rows only then.
  fd = os.open(os.path.join(root, 'pen', '.report.lock'), os.O_RDWR)
  fcntl.flock(fd, fcntl.LOCK_EX)
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  writer = subprocess.Popen(
      [sys.executable, '-c', 'import sys; from benchmarks import rlif_benchmark as b; '
       'print("ready", flush=True); b.report(*sys.argv[1:3], "pen", sys.argv[3], "spec")',
       root, 'pen', out],
      cwd=repo, env={**os.environ, 'PYTHONPATH': repo}, stdout=subprocess.PIPE, text=True)
  try:
    assert writer.stdout.readline() == 'ready\n'
    time.sleep(1.0)
    assert writer.poll() is None  # blocked on the lock
    _edit_rows(root, 'pen', '40', 'rlif_value', 0,
               lambda rows: rows.append(_row(2, 0, 0.9)))
  finally:
    os.close(fd)  # releases the lock
  assert writer.wait(timeout=120) == 0
  assert '**90** (90)' in _table(out)[1][('~40%', 'rlif_value')]


def test_restore_writes_back_the_records_of_runs_a_new_machine_lacks(tmp_path):
  root, out = str(tmp_path / 'runs'), str(tmp_path / 'out')
  _write_run(root, 'pen', '40', 'rlif_value+bc4', 1, [0.2, 0.5, 0.9])
  _write_run(root, 'pen', '90', 'bc', 0, [0.8, 0.7], interventions=0.0)
  rows = bench.load_rows(root, 'pen')
  bench.write_report(rows, 'pen', out, 'spec')
  new_root = str(tmp_path / 'new_machine')
  _write_run(new_root, 'pen', '90', 'bc', 0, [0.8, 0.7, 0.75], interventions=0.0)  # kept as is
  assert bench.restore_records(new_root, 'pen', out) == [
      os.path.join('pen', 'level40', 'rlif_value+bc4-s1')]
  restored = bench.load_rows(new_root, 'pen')
  assert [r for r in restored if r['method'] == 'rlif_value+bc4'] == [
      r for r in rows if r['method'] == 'rlif_value+bc4']
  assert [r['eval']['success_rate'] for r in restored if r['method'] == 'bc'] == [0.8, 0.7, 0.75]
  assert bench.restore_records(new_root, 'pen', out) == []  # nothing missing any more


def test_the_report_says_how_many_evaluation_episodes_its_rows_ran():
  def rows(*counts):
    return [{'eval': {'success_rate': 0.5, 'episodes': n}} for n in counts]
  assert bench.evaluation_sentence(rows(20, 20)) == (
      '20 evaluation episodes each, so one seed\'s number has a standard error of about 11 '
      'points at most')
  assert bench.evaluation_sentence(rows(100)).startswith('100 evaluation episodes each')
  assert 'about 5 points' in bench.evaluation_sentence(rows(100))
  assert bench.evaluation_sentence(rows(100, 20)) == (
      '20-100 evaluation episodes per round (each row\'s `eval.episodes` in runs.jsonl), so one '
      'seed\'s number has a standard error of about 5-11 points at most')
  assert bench.evaluation_sentence([{'eval': {'success_rate': 0.5}}]) == (
      'evaluation episodes not recorded')


def test_thread_environment_limits_tensorflow_and_openmp_or_leaves_all_cores():
  assert bench.thread_environment(0) == {}
  assert bench.thread_environment(1) == {'TF_NUM_INTRAOP_THREADS': '1',
                                         'TF_NUM_INTEROP_THREADS': '1', 'OMP_NUM_THREADS': '1'}
