"""The re-evaluation report: rounds chosen, finals and last-3 means, differences paired by seed."""

import os

from benchmarks import reevaluate


def test_round_0_and_the_last_three_rounds_are_evaluated():
  assert reevaluate.rounds_to_evaluate(5) == [0, 3, 4, 5]
  assert reevaluate.rounds_to_evaluate(2) == [0, 1, 2]
  assert reevaluate.policy_dir('/r/x-s0', 0) == '/r/x-s0/initial/policies/round_0'
  assert reevaluate.policy_dir('/r/x-s0', 4) == '/r/x-s0/learner/policies/round_4'


def _rows(level, method, seed, successes):
  """successes: {round: rate} of a run whose final round is the largest key."""
  final = max(successes)
  return [{'level': level, 'method': method, 'seed': seed, 'round': r, 'final_round': final,
           'success_rate': rate} for r, rate in successes.items()]


def test_report_means_and_pairs_by_seed():
  rows = (_rows('40', 'rlif_value', 0, {0: 0.70, 3: 0.80, 4: 0.60, 5: 0.70})
          + _rows('40', 'rlif_value', 1, {0: 0.80, 3: 0.90, 4: 0.90, 5: 0.90})
          + _rows('40', 'hg_dagger', 0, {0: 0.70, 3: 0.50, 4: 0.60, 5: 0.64})
          + _rows('40', 'hg_dagger', 1, {0: 0.86, 3: 0.90, 4: 0.96, 5: 0.96})
          # seed 2 of hg_dagger has no rlif_value partner; its round 4 is not evaluated yet
          + _rows('40', 'hg_dagger', 2, {0: 0.60, 3: 0.50, 5: 0.50}))
  text = reevaluate.report(rows, 100)
  lines = text.splitlines()
  assert '| ~40% | rlif_value | 2 | 75 | 80 +- 10 (70, 90) | 80 +- 10 (70, 90) |' in lines
  # seed 1 of hg_dagger started from another initial policy (86 against 80): its own mean
  assert '| ~40% | hg_dagger | 2 | 78 | 80 +- 16 (64, 96) | 76 +- 18 (58, 94) |' in lines
  assert '| rlif_value | 80.0 | 80.0 |' in lines
  # last 3: (80 + 60 + 70) / 3 = 70 and 90; (50 + 60 + 64) / 3 = 58 and 94.
  # final: 64 - 70 = -6, 96 - 90 = +6; last 3: 58 - 70 = -12, 94 - 90 = +4
  assert ('| ~40% | hg_dagger | 2 | +0 +- 6 | 1 of 2 | -4 +- 8 | 1 of 2 | +3 (+0, +6) | '
          'shipped, shipped |') in lines
  assert 'standard error of about 5 points' in text


def test_policies_with_the_same_weights_share_a_fingerprint(tmp_path):
  for name, data in (('a', b'\x01\x02'), ('b', b'\x01\x02'), ('c', b'\x01\x03')):
    os.makedirs(tmp_path / name / 'variables')
    (tmp_path / name / 'variables' / 'variables.data-00000-of-00001').write_bytes(data)
    (tmp_path / name / 'variables' / 'variables.index').write_bytes(name.encode())
  a, b, c = (reevaluate.policy_fingerprint(str(tmp_path / n)) for n in 'abc')
  assert a == b and a != c


def test_a_new_machine_keeps_the_evaluations_of_runs_it_does_not_have(tmp_path):
  import json
  from benchmarks import rlif_benchmark
  out = tmp_path / 'results'
  out.mkdir()
  committed = (_rows('40', 'rlif_value', 0, {0: 0.70, 3: 0.80, 4: 0.60, 5: 0.70})
               + _rows('40', 'bc', 1, {0: 0.50, 3: 0.55, 4: 0.60, 5: 0.65}))
  for row in committed:
    row.update(mean_return=1.0, episodes=100)
  (out / 'eval100.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in committed))
  root = str(tmp_path / 'runs')
  # The records came back (rlif_benchmark.restore_records); bc's run holds its own evaluations.
  for method, seed in (('rlif_value', 0), ('bc', 1)):
    os.makedirs(rlif_benchmark.run_dir(root, 'pen', '40', method, seed))
  own = os.path.join(rlif_benchmark.run_dir(root, 'pen', '40', 'bc', 1), 'eval_100.jsonl')
  with open(own, 'w') as f:
    f.write(json.dumps({'round': 0, 'success_rate': 0.9, 'mean_return': 2.0,
                        'episodes': 100}) + '\n')
  assert reevaluate.restore_evaluations(root, 'pen', str(out), 100) == [
      os.path.join('pen', 'level40', 'rlif_value-s0')]
  run = rlif_benchmark.run_dir(root, 'pen', '40', 'rlif_value', 0)
  records = [{'round': r, 'seed': 0, 'task': 'pen'} for r in range(6)]
  # Every policy it would evaluate is cached: nothing is loaded (the run has no policies).
  rows = reevaluate.evaluate_run(run, records, 100, {}, log=None)
  assert [(r['round'], r['success_rate']) for r in rows] == [(0, 0.7), (3, 0.8), (4, 0.6),
                                                              (5, 0.7)]
  with open(own) as f:  # a run's own evaluations are not overwritten
    assert len(f.readlines()) == 1
  assert reevaluate.restore_evaluations(root, 'pen', str(out), 100) == []
  # bc's run has round 0 alone and no policies: a row --methods leaves out reports nothing yet,
  # and a wanted one says why it is not evaluated instead of failing on the missing folder
  bc_run = rlif_benchmark.run_dir(root, 'pen', '40', 'bc', 1)
  bc_records = [{'round': r, 'seed': 1, 'task': 'pen'} for r in range(6)]
  assert reevaluate.evaluate_run(bc_run, bc_records, 100, {}, log=None, cached_only=True) == []
  said = []
  assert reevaluate.evaluate_run(bc_run, bc_records, 100, {}, log=said.append) == []
  assert said == [f'{bc_run}: no exported policies here (records restored from the report), '
                  'not evaluated']


def test_a_method_on_another_initial_policy_is_paired_with_the_default_rerun_from_it():
  def run(method, seed, start, final):
    rows = _rows('40', method, seed, {0: start, 3: final, 4: final, 5: final})
    for row in rows:
      row['mean_return'] = 1000 * row['success_rate'] if row['round'] == 0 else 0.0
    return rows
  rows = (run('rlif_value', 0, 0.67, 0.65) + run('rlif_value', 1, 0.71, 0.74)
          # retrained on another machine: seed 0 starts elsewhere, seed 1 where the shipped run did
          + run('rlif_value+accepted5', 0, 0.76, 0.69) + run('rlif_value+accepted5', 1, 0.71, 0.70)
          + run('rlif_value+rerun', 0, 0.76, 0.73) + run('rlif_value+rerun', 1, 0.71, 0.80))
  lines = reevaluate.report(rows, 100).splitlines()
  # seed 0: 69 - 73 (the rerun, same start) = -4; seed 1: 70 - 74 (shipped, same start) = -4
  assert ('| ~40% | rlif_value+accepted5 | 2 | -4 +- 0 | 0 of 2 | -4 +- 0 | 0 of 2 | +0 (+0, +0) '
          '| rerun, shipped |') in lines
  # the rerun itself against the shipped run: +8 and +6, from another start on seed 0
  assert ('| ~40% | rlif_value+rerun | 2 | +7 +- 1 | 2 of 2 | +7 +- 1 | 2 of 2 | +4 (+9, +0) '
          '| shipped, shipped |') in lines
