import pytest

from benchmarks import bc_loss_benchmark as bench


def _result(success, seconds=20.0):
  return {'success_rate': success, 'mean_return': 0.0, 'episodes': 50, 'train_seconds': seconds}


def test_report_pairs_every_loss_with_the_first_by_seed_per_level():
  results = {('90', 0): {'mse': _result(0.80), 'mae': _result(0.84), 'likelihood': _result(0.60)},
             ('90', 1): {'mse': _result(0.70), 'mae': _result(0.70), 'likelihood': _result(0.74)},
             ('10', 0): {'mse': _result(0.50), 'mae': _result(0.70),
                         'likelihood': _result(0.20, 31.0)},
             ('10', 1): {'mse': _result(0.60), 'mae': _result(0.62), 'likelihood': _result(0.30)}}
  text = bench.report('pen', results, 2000, 50)
  rows = [line for line in text.splitlines() if line.startswith('| ~') or
          line.startswith('| mean')]
  assert rows == [
      '| ~90% | 75 +- 5 (80, 70) | 77 +- 7 (84, 70) | 67 +- 7 (60, 74) | +2 +- 2 | 1 of 2 '
      '| -8 +- 12 | 1 of 2 |',
      '| ~10% | 55 +- 5 (50, 60) | 66 +- 4 (70, 62) | 25 +- 5 (20, 30) | +11 +- 9 | 2 of 2 '
      '| -30 +- 0 | 0 of 2 |',
      '| mean | 65 | 72 | 46 | | | | |']
  header = text.splitlines()[4]
  assert header == ('| expert level | mse | mae | likelihood | mae - mse | mae ahead '
                    '| likelihood - mse | likelihood ahead |')
  assert 'Training time per policy: 20-31 s.' in text
  assert 'for 2000 updates' in text and '50 episodes of its deployed policy' in text


def test_other_budgets_get_their_own_policies_and_report():
  assert bench.budget_suffix(bench.DEFAULT_UPDATES) == ''
  assert bench.budget_suffix(4000) == '-u4000'


def test_a_policy_average_suffix_sets_its_decay_and_the_report_is_named_for_the_losses():
  assert bench.fit_settings('mae') == {'loss': 'mae'}
  assert bench.fit_settings('mse+avg0.99') == {'loss': 'mse', 'policy_average_decay': 0.99}
  with pytest.raises(ValueError, match=r"unknown suffix 'ema0.9' in 'mae\+ema0.9'"):
    bench.fit_settings('mae+ema0.9')
  assert bench.report_name('pen', 2000, bench.DEFAULT_LOSSES) == 'pen.md'
  assert bench.report_name('pen', 6000, bench.DEFAULT_LOSSES) == 'pen-u6000.md'
  assert bench.report_name('pen', 6000, 'mae,mae+avg0.99') == 'pen-u6000-mae,mae+avg0.99.md'
