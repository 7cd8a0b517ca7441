from benchmarks import bc_loss_benchmark as bench


def _result(success, seconds=20.0):
  return {'success_rate': success, 'mean_return': 0.0, 'episodes': 50, 'train_seconds': seconds}


def test_report_pairs_the_losses_by_seed_per_level():
  results = {('90', 0): {'mse': _result(0.80), 'likelihood': _result(0.60)},
             ('90', 1): {'mse': _result(0.70), 'likelihood': _result(0.74)},
             ('10', 0): {'mse': _result(0.50), 'likelihood': _result(0.20, 31.0)},
             ('10', 1): {'mse': _result(0.60), 'likelihood': _result(0.30)}}
  text = bench.report('pen', results, 2000, 50)
  rows = [line for line in text.splitlines() if line.startswith('| ~') or
          line.startswith('| mean')]
  assert rows == [
      '| ~90% | 75 +- 5 (80, 70) | 67 +- 7 (60, 74) | +8 +- 12 | 1 of 2 |',
      '| ~10% | 55 +- 5 (50, 60) | 25 +- 5 (20, 30) | +30 +- 0 | 2 of 2 |',
      '| mean | 65 | 46 | | |']
  assert 'Training time per policy: 20-31 s.' in text
  assert 'for 2000 updates' in text and '50 episodes of its deployed policy' in text
