"""The viewer's pure parts on literal episodes, with values computed by hand: per-episode and
per-round summaries (round_summary), the PNG and heatmap encoders (html_page), and how
DATASET_DIR is resolved (view.find_version_dir)."""

import io
import os

import numpy as np
import pytest

from pipeline import html_page
from pipeline import round_summary as rs
from pipeline import schema as sc
from pipeline import view


def steps(flags, rewards, actions=None, observation=None):
  """A stored episode: flags and rewards over all T+1 steps (the last reward a placeholder)."""
  flags = np.asarray(flags, bool)
  n = len(flags)
  result = {sc.IS_INTERVENTION: flags, sc.REWARD: np.asarray(rewards, np.float32),
            sc.ACTION: np.zeros((n, 2), np.float32) if actions is None else np.asarray(
                actions, np.float32)}
  if observation is not None:
    result[sc.OBSERVATION] = observation
  return result


def test_episode_summary_counts_transitions_takeovers_and_negative_rewards():
  # T = 6 transitions; human at steps 2-3 and at the final observation (step 6): the operator
  # ended the episode by taking over. Rule rlif puts -1 on steps 1 and 5.
  s = rs.summarize_episode(steps([0, 0, 1, 1, 0, 0, 1], [0, -1, 0, 0, 0, -1, 0]), 'e', 2)
  assert (s.episode_id, s.segment, s.transitions) == ('e', 2, 6)
  assert s.intervention_steps == 2  # the final observation's flag is not a transition
  assert s.takeover_spans == ((2, 3), (6, 6))
  assert s.takeover_lengths == (2, 1)
  assert s.negative_reward_steps == (1, 5)


def test_takeover_at_step_zero_has_no_negative_reward():
  s = rs.summarize_episode(steps([1, 1, 0, 0], [0, 0, 0, 0]))
  assert s.takeover_spans == ((0, 1),)
  assert (s.intervention_steps, s.negative_reward_steps) == (2, ())


def test_the_final_steps_placeholder_reward_is_not_counted():
  s = rs.summarize_episode(steps([0, 0, 0], [0, 0, -1]))
  assert s.negative_reward_steps == ()


def test_length_distribution_and_histogram():
  d = rs.length_distribution([4, 2, 6, 3, 1, 5])
  assert (d.count, d.min, d.median, d.max, d.mean) == (6, 1, 3.5, 6, 3.5)
  assert rs.length_histogram([1, 2, 2, 5]) == ((1, 1, 1), (2, 2, 2), (3, 3, 0), (4, 4, 0),
                                               (5, 5, 1))
  # Range 1..5 in at most 2 bins: width ceil(5 / 2) = 3.
  assert rs.length_histogram([1, 2, 2, 5], max_bins=2) == ((1, 3, 3), (4, 5, 1))
  assert rs.length_distribution([]).histogram == ()


def test_round_summary_counts_episodes_and_takeovers_once_across_segments():
  # takeover=drop split episode 'a' (logged human at steps 2-4 of 7) in two stored segments: the
  # first ends on the takeover's first step (2), the second starts on its last (4). 'b' had no
  # takeover; 'c' was not split and ends on a takeover (operator ended the episode).
  a0 = rs.summarize_episode(steps([0, 0, 1], [0, -1, 0]), 'a', 0)     # T=2, -1 at step 1
  a1 = rs.summarize_episode(steps([1, 0, 0, 0], [0, 0, 0, 0]), 'a', 1)  # T=3, 1 human step
  b = rs.summarize_episode(steps([0] * 6, [0] * 6), 'b', 0)            # T=5
  c = rs.summarize_episode(steps([0, 1, 0, 0, 1], [-1, 0, 0, -1, 0]), 'c', 0)  # T=4
  assert rs.takeover_lengths([a1, b, c, a0]) == [2, 1, 1]  # a's two stored steps are one
  letters = [{'reason': 'step_gap'}, {'reason': 'unreadable_file'}, {'reason': 'step_gap'}]
  r = rs.summarize_round(3, [a0, a1, b, c], letters, takeover_mode='drop')
  assert (r.round_index, r.episodes, r.rlds_episodes, r.transitions) == (3, 3, 4, 14)
  assert (r.intervention_steps, r.intervention_rate) == (2, 2 / 14)
  assert (r.takeovers.count, r.takeovers.max) == (3, 2)
  assert (r.negative_rewards, r.episodes_with_takeover) == (3, 2)
  assert r.dead_letters_by_reason == (rs.DeadLetterGroup('step_gap', 2),
                                      rs.DeadLetterGroup('unreadable_file', 1))
  assert rs.summarize_round(0, []).intervention_rate == 0.0


def test_camera_fields_and_frames_around_each_takeover_start():
  T = 6
  camera = np.arange(T + 1, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3),
                                                                          np.uint8)
  observation = {'cam': camera, 'depth': camera[..., 0],
                 'state': np.zeros((T + 1, 3), np.float32),
                 'mask': np.zeros((T + 1, 4, 4, 7), np.uint8)}  # 7 channels: not an image
  assert rs.image_fields(observation) == ['cam', 'depth']
  assert rs.image_fields(np.zeros((T + 1, 3))) == []
  assert rs.frame_steps(1, T + 1) == [0, 1, 2, 3]
  assert rs.frame_steps(6, T + 1) == [4, 5, 6]
  timeline = rs.episode_timeline(
      steps([0, 1, 0, 0, 0, 0, 1], [-1, 0, 0, 0, 0, -1, 0], observation=observation), 'e')
  assert sorted(timeline.frames['cam']) == [0, 1, 2, 3, 4, 5, 6]  # spans start at 1 and 6
  assert int(timeline.frames['cam'][5][0, 0, 0]) == 5
  assert timeline.actions.shape == (T, 2)
  # No camera: no frames.
  assert rs.episode_timeline(steps([0, 0], [0, 0], observation=np.zeros((2, 3)))).frames == {}


def test_action_norm():
  np.testing.assert_allclose(rs.action_norm(np.array([[3.0, 4.0], [0.0, 0.0]])), [5.0, 0.0])


def test_png_bytes_decode_to_the_same_pixels():
  from PIL import Image
  rng = np.random.default_rng(0)
  for shape in ((5, 7, 3), (4, 6), (3, 2, 4), (2, 3, 1)):
    image = rng.integers(0, 256, size=shape, dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(html_page.png_bytes(image))))
    np.testing.assert_array_equal(decoded, image.reshape(decoded.shape))


def test_action_heatmap_colours():
  heat = html_page.action_heatmap(np.array([[-1.0, 0.0, 1.0, 3.0]]), max_rows=3)
  assert heat.shape == (3, 1, 3)  # one row per shown dimension, one column per step
  assert heat[:, 0].tolist() == [[33, 102, 172], [255, 255, 255], [178, 24, 43]]


def test_find_version_dir_accepts_the_version_folder_or_the_output_dir(tmp_path):
  version = tmp_path / 'out' / 'ds' / '1.0.0'
  version.mkdir(parents=True)
  (version / 'dataset_info.json').write_text('{}')
  assert view.find_version_dir(str(version)) == str(version)
  assert view.find_version_dir(str(tmp_path / 'out')) == str(version)
  newer = tmp_path / 'out' / 'ds' / '1.10.0'
  newer.mkdir()
  (newer / 'dataset_info.json').write_text('{}')
  assert view.find_version_dir(str(tmp_path / 'out')) == str(newer)
  # `tfds build` with a config: NAME/CONFIG/VERSION.
  built = tmp_path / 'built' / 'rlif_adroit' / 'pen' / '1.0.0'
  built.mkdir(parents=True)
  (built / 'dataset_info.json').write_text('{}')
  assert view.find_version_dir(str(tmp_path / 'built')) == str(built)


def test_find_version_dir_says_what_is_wrong(tmp_path):
  with pytest.raises(view.ViewError, match='does not exist'):
    view.find_version_dir(str(tmp_path / 'missing'))
  (tmp_path / 'file.txt').write_text('x')
  with pytest.raises(view.ViewError, match='is a file'):
    view.find_version_dir(str(tmp_path / 'file.txt'))
  (tmp_path / 'empty' / 'rounds').mkdir(parents=True)
  with pytest.raises(view.ViewError, match='neither a dataset version folder.*no round was '
                     'committed yet'):
    view.find_version_dir(str(tmp_path / 'empty'))
  for name in ('a', 'b'):
    os.makedirs(tmp_path / 'two' / name / '1.0.0')
    (tmp_path / 'two' / name / '1.0.0' / 'dataset_info.json').write_text('{}')
  with pytest.raises(view.ViewError, match='holds 2 datasets; pass one of'):
    view.find_version_dir(str(tmp_path / 'two'))
