import os

from sim import prepare
from trainer import rounds_data


def test_manual_rounds_finds_round_folders_with_raw_logs_only(raw_logs, tmp_path):
  manual = tmp_path / 'manual'
  raw_logs('manual/pen/round_0', 0, demos=True)
  raw_logs('manual/pen/round_2', 2)
  (manual / 'pen' / 'round_1').mkdir()          # empty: not a round
  (manual / 'pen' / 'notes').mkdir()            # not round_<N>
  raw_logs('manual/door/round_0', 5)            # another task
  found = prepare.manual_rounds(str(manual), 'pen')
  assert sorted(found) == [0, 2]
  assert sorted(os.path.basename(p) for p in found[2]) == ['*.jsonl', '*.jsonl.gz', '*.npz']
  assert prepare.manual_rounds(str(tmp_path / 'absent'), 'pen') == {}
  assert prepare.manual_rounds(None, 'pen') == {}


def test_prepare_from_the_manual_dir_runs_each_round_through_the_pipeline(raw_logs, tmp_path):
  raw_logs('manual/pen/round_0', 0, demos=True, num_streamed=0)
  raw_logs('manual/pen/round_1', 1)
  messages = []
  version_dir = prepare.prepare(str(tmp_path / 'data'), 'rlif_adroit', 'pen',
                                str(tmp_path / 'manual'), log=messages.append)
  assert version_dir == str(tmp_path / 'data' / 'rlif_adroit' / '1.0.0')
  data = rounds_data.RlifDataset(str(tmp_path / 'data'), 'rlif_adroit')
  assert data.rounds() == [0, 1]
  assert data.load_round(0).intervention_rate == 0.0
  # 7 episodes of 20 transitions, each with one 4-step takeover (conftest.write_round).
  assert data.load_round(1).intervention_rate == 7 * 4 / (7 * 20)
  assert 'from raw logs in' in messages[0]


def test_without_manual_logs_the_shipped_pen_sample_is_the_input(tmp_path):
  """The quickstart's default: the raw logs in sim/quickstart_data (the project's own expert's
  demonstrations and two rounds with takeovers) go through the pipeline; no simulation."""
  messages = []
  prepare.prepare(str(tmp_path / 'data'), 'rlif_adroit', 'pen', str(tmp_path / 'no_manual'),
                  log=messages.append)
  assert 'the shipped sample' in messages[0]
  data = rounds_data.RlifDataset(str(tmp_path / 'data'), 'rlif_adroit')
  assert data.rounds() == [0, 1, 2]
  assert (data.observation_dim, data.action_dim) == (45, 24)
  demos, first = data.load_round(0), data.load_round(1)
  assert demos.episodes == 20 and demos.intervention_rate == 0.0
  assert first.episodes == 5 and 0.2 < first.intervention_rate < 0.45
  assert (first.transitions['reward'] == -1).sum() > 0
  assert not any('collecting' in m for m in messages)
