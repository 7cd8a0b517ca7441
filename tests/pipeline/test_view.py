"""The round viewer end to end: a real 2-round dataset written by the pipeline, the page written
by `python -m pipeline.view`, opened in headless Chromium; the test reads what the browser shows
(the DOM after the page's script ran, and a screenshot it keeps in tests/pipeline/artifacts/).

Chromium is a system package (`apt-get install chromium`; .ci/run installs it). Without a
chromium binary the browser tests skip and say so.
"""

import base64
import html.parser
import io
import json
import os
import shutil
import subprocess
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from pipeline import raw_writer
from pipeline import relabel
from pipeline import round_job
from pipeline import rounds
from pipeline import schema as sc
from pipeline import view

ARTIFACTS = os.path.join(os.path.dirname(__file__), 'artifacts')
T, OBS, ACT = 20, 5, 3


def chromium_binary():
  for name in (os.environ.get('CHROMIUM', ''), 'chromium', 'chromium-browser', 'google-chrome',
               'google-chrome-stable'):
    if name and shutil.which(name):
      return shutil.which(name)
  return None


needs_chromium = pytest.mark.skipif(
    chromium_binary() is None,
    reason='no chromium binary on PATH (install the system package: apt-get install -y '
           'chromium; .ci/run does); the viewer page was not opened in a browser')


def chromium(page, tmp_path, *flags):
  """Runs headless Chromium on `page`; returns stdout (the DOM for --dump-dom)."""
  result = subprocess.run(
      [chromium_binary(), '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
       f'--user-data-dir={tmp_path / "chromium-profile"}', *flags, f'file://{page}'],
      capture_output=True, text=True, timeout=120,
      env={**os.environ, 'XDG_CONFIG_HOME': str(tmp_path / 'config')})  # crash reports go there
  assert result.returncode == 0, result.stderr[-2000:]
  return result.stdout


class Element:
  def __init__(self, tag, attrs):
    self.tag, self.attrs, self.children, self.parts = tag, dict(attrs), [], []

  @property
  def classes(self):
    return set((self.attrs.get('class') or '').split())

  @property
  def text(self):
    return ''.join(p if isinstance(p, str) else p.text for p in self.parts)

  def iter(self):
    yield self
    for child in self.children:
      yield from child.iter()

  def find_all(self, tag=None, cls=None, **attrs):
    return [e for e in self.iter() if (tag is None or e.tag == tag)
            and (cls is None or cls in e.classes)
            and all(e.attrs.get(k.replace('_', '-')) == v for k, v in attrs.items())]

  def find(self, *args, **kwargs):
    found = self.find_all(*args, **kwargs)
    assert len(found) == 1, (args, kwargs, len(found))
    return found[0]


class DomParser(html.parser.HTMLParser):
  """A small DOM from Chromium's --dump-dom output (enough to query by tag, class and
  attributes, and read text)."""
  VOID = {'meta', 'img', 'br', 'input', 'link', 'hr', 'source', 'wbr', 'col', 'area', 'base'}

  def __init__(self):
    super().__init__()
    self.root = Element('document', {})
    self.stack = [self.root]

  def handle_starttag(self, tag, attrs):
    element = Element(tag, attrs)
    self.stack[-1].children.append(element)
    self.stack[-1].parts.append(element)
    if tag not in self.VOID:
      self.stack.append(element)

  def handle_startendtag(self, tag, attrs):
    element = Element(tag, attrs)
    self.stack[-1].children.append(element)
    self.stack[-1].parts.append(element)

  def handle_endtag(self, tag):
    for i in range(len(self.stack) - 1, 0, -1):
      if self.stack[i].tag == tag:
        del self.stack[i:]
        return

  def handle_data(self, data):
    self.stack[-1].parts.append(data)


def parse(dom):
  parser = DomParser()
  parser.feed(dom)
  return parser.root


# ---------------------------------------------------------------------------------------------
# A real dataset: round 0 demonstrations, round 1 with interventions and rejected input.

ROUND_1_FLAGS = {  # episode id -> human-controlled steps (a T+1 entry: the final observation)
    'pen-1-a': [5, 6, 7, 8],                          # one takeover of 4, -1 at step 4
    'pen-1-b': [3, 4, 12, 13, 14, 15, 16, 17],        # 2 and 6, -1 at 2 and 11
    'pen-1-c': [0, 1, 2, 20],                         # 3 from step 0 (no -1), then the operator
                                                      # ends the episode (-1 at 19)
    'pen-1-d': [],                                    # the policy alone
}
STREAMED = ('fleet-1-e', [10, 11, 12, 13, 14])        # 5, -1 at step 9
# Hand-computed: 100 transitions, 4 + 8 + 3 + 0 + 5 = 20 human ones; takeovers of 4, 2, 6, 3,
# 1, 5 steps; rewards of -1 at the step before each takeover that does not start at step 0.
EXPECTED_ROUND_1 = {'episodes': 5, 'transitions': 100, 'intervention_rate': 0.2,
                    'takeovers': 6, 'negative_rewards': 5}


def write_raw_rounds(root, rng):
  r0, r1 = os.path.join(root, 'raw', 'round_0'), os.path.join(root, 'raw', 'round_1')
  os.makedirs(r0)
  os.makedirs(r1)
  for i in range(3):
    raw_writer.write_npz_episode(
        os.path.join(r0, f'demo_{i}.npz'), rng.normal(size=(T + 1, OBS)),
        rng.uniform(-1, 1, (T, ACT)), {'episode_id': f'pen-0-{i}'})
  for episode_id, human in ROUND_1_FLAGS.items():
    flags = np.zeros(T + 1, bool)
    flags[human] = True
    raw_writer.write_npz_episode(
        os.path.join(r1, f'{episode_id}.npz'), rng.normal(size=(T + 1, OBS)),
        rng.uniform(-1, 1, (T, ACT)), {'episode_id': episode_id},
        interventions=flags if flags[T] else flags[:T])
  episode_id, human = STREAMED
  flags = np.zeros(T, bool)
  flags[human] = True
  actions = rng.uniform(-1, 1, (T, ACT))
  lines = [json.dumps(r) for r in raw_writer.step_records(
      rng.normal(size=(T + 1, OBS)), actions, {'episode_id': episode_id}, interventions=flags,
      policy_actions=actions)]
  with open(os.path.join(r1, 'fleet.jsonl'), 'w') as f:
    f.write('\n'.join(lines[:7] + ['{"episode_id": "fleet-1-e", "step": 7,'] + lines[7:]) + '\n')
  bad_actions = rng.uniform(-1, 1, (T, ACT))
  bad_actions[3, 1] = np.nan
  raw_writer.write_npz_episode(os.path.join(r1, 'pen-1-nan.npz'), rng.normal(size=(T + 1, OBS)),
                               bad_actions, {'episode_id': 'pen-1-nan'},
                               interventions=np.zeros(T, bool))
  with open(os.path.join(r1, 'broken.npz'), 'wb') as f:
    f.write(b'this is not a zip archive')
  return r0, r1


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
  root = tmp_path_factory.mktemp('viewer')
  r0, r1 = write_raw_rounds(str(root), np.random.default_rng(7))
  out = str(root / 'out')
  round_job.run_round([os.path.join(r0, '*')], out, 'pen_view', 0, runner='plain')
  result = round_job.run_round([os.path.join(r1, '*')], out, 'pen_view', 1, runner='plain')
  return out, result


def measured_from_dataset(version_dir, round_index):
  """What round `round_index` holds, read with TFDS and counted here (not with the viewer's
  code): {episode id: (transitions, human transitions, takeover spans, -1 steps)}."""
  builder = tfds.builder_from_directory(version_dir)
  ds = builder.as_dataset(split=sc.split_name(round_index))
  result = {}
  for episode in tfds.as_numpy(ds):
    flags, rewards = [], []
    for step in episode[sc.STEPS]:
      flags.append(bool(step[sc.IS_INTERVENTION]))
      rewards.append(float(step[sc.REWARD]))
    spans, start = [], None
    for t, human in enumerate(flags + [False]):
      if human and start is None:
        start = t
      if not human and start is not None:
        spans.append((start, t - 1))
        start = None
    n = len(flags) - 1
    result[episode[sc.EPISODE_METADATA][sc.EPISODE_ID].decode()] = (
        n, sum(flags[:n]), spans, [t for t in range(n) if rewards[t] < 0])
  return result


@needs_chromium
def test_the_browser_shows_the_rounds_dead_letters_and_timelines(dataset, tmp_path, capsys):
  out, result = dataset
  measured = measured_from_dataset(result.version_dir, 1)
  transitions = sum(m[0] for m in measured.values())
  rate = sum(m[1] for m in measured.values()) / transitions
  negatives = sum(len(m[3]) for m in measured.values())
  takeovers = sum(len(m[2]) for m in measured.values())
  assert {'episodes': len(measured), 'transitions': transitions, 'intervention_rate': rate,
          'takeovers': takeovers, 'negative_rewards': negatives} == EXPECTED_ROUND_1
  assert (result.report['intervention_rate'], result.report['negative_rewards']) == (0.2, 5)

  page = str(tmp_path / 'view.html')
  assert view.main([out, '--out', page]) == 0  # the --output_dir, not the version folder
  printed = capsys.readouterr().out
  assert 'round 1: 5 episodes, 100 steps, intervention rate 20.0%, 6 takeovers, 5 rewards ' \
         'of -1, 3 dead letters' in printed
  assert f'page: {page}' in printed

  shot = tmp_path / 'view.png'  # One browser run: the DOM after scripts, and a screenshot.
  dom = parse(chromium(page, tmp_path, '--dump-dom', f'--screenshot={shot}',
                       '--window-size=1280,2000'))
  assert dom.find_all('input', id='episode-filter'), 'the page script did not run'

  row = dom.find('tr', cls='round-row', data_round='1')
  assert row.find('td', cls='intervention-rate').text.startswith(f'{100 * rate:.1f}%')
  assert float(row.find('td', cls='intervention-rate').attrs['data-value']) == pytest.approx(rate)
  assert row.find('td', cls='negative-rewards').text == str(negatives)
  assert row.find('td', cls='transitions').text == str(transitions)
  assert row.find('td', cls='takeovers').text.startswith(str(takeovers))
  assert row.find('td', cls='takeover-lengths').text == '1 / 3.5 / 6'
  assert row.find('td', cls='dead-letter-count').text == '3'
  round_0 = dom.find('tr', cls='round-row', data_round='0')
  assert round_0.find('td', cls='intervention-rate').text.startswith('0.0%')
  assert len(dom.find_all('circle', cls='trend-rate-point')) == 2
  assert dom.find('text', cls='trend-neg-label', data_round='1').text == str(negatives)

  letters = dom.find('div', cls='dead-letter-round', data_round='1')
  reasons = {e.attrs['data-reason']: e.find('span', cls='detail').text
             for e in letters.find_all('li', cls='dead-letter')}
  assert set(reasons) == {'unreadable_file', 'non_finite_value', 'unparseable_line'}
  assert 'not an .npz (zip) archive' in reasons['unreadable_file']
  assert 'actions holds 1 NaN/inf values, first at step 3' in reasons['non_finite_value']
  counts = {e.attrs['data-reason']: e.children[1].text
            for e in letters.find_all('tr', cls='reason-count')}
  assert counts == {'unreadable_file': '1', 'non_finite_value': '1', 'unparseable_line': '1'}

  episodes = dom.find('section', id='episodes').find_all('div', cls='episode')
  assert len(episodes) == len(measured)
  assert sorted(e.attrs['data-episode-id'] for e in episodes) == sorted(measured)
  assert len(dom.find_all('rect', cls='takeover')) == takeovers
  assert len(dom.find_all('g', cls='neg-reward')) == negatives
  for episode in episodes:
    _, _, spans, negative_steps = measured[episode.attrs['data-episode-id']]
    shaded = [(int(r.attrs['data-first']), int(r.attrs['data-last']))
              for r in episode.find_all('rect', cls='takeover')]
    assert shaded == spans
    assert [int(g.attrs['data-step']) for g in episode.find_all('g', cls='neg-reward')] == \
        negative_steps
  assert 'no camera' in dom.find('p', id='no-camera').text
  assert not dom.find_all('img', cls='frame')

  data = shot.read_bytes()
  assert data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 30_000
  os.makedirs(ARTIFACTS, exist_ok=True)
  shutil.copy(shot, os.path.join(ARTIFACTS, 'view_round_1.png'))
  from PIL import Image
  pixels = np.asarray(Image.open(io.BytesIO(data)).convert('RGB')).astype(int)
  # The takeover shade, rgba(255,140,0,0.35) over white, and the -1 markers' red are on screen.
  shade = (np.abs(pixels - [255, 216, 166]).max(axis=-1) <= 3).sum()
  red = (np.abs(pixels - [214, 39, 40]).max(axis=-1) <= 3).sum()
  assert shade > 2000 and red > 50, (shade, red)


def test_round_option_and_episode_cap(dataset, tmp_path):
  out, result = dataset
  page = str(tmp_path / 'round0.html')
  path, summary = view.write_page(result.version_dir, page, round_index=0, max_episodes=2)
  assert (summary.shown_round, len(summary.timelines), summary.shown_round_episodes) == (0, 2, 3)
  text = open(path).read()
  assert 'showing 2 of 3 stored episodes' in text
  assert 'Episodes of round 0</h2>' in text  # not the newest
  with pytest.raises(view.ViewError, match=r'round 5 is not in .*its rounds: \[0, 1\]'):
    view.write_page(out, page, round_index=5)


def test_cli_says_what_is_wrong_with_dataset_dir(tmp_path, capsys):
  assert view.main([str(tmp_path)]) == 2
  assert 'is neither a dataset version folder' in capsys.readouterr().err


def test_serve_serves_only_the_page(tmp_path):
  page = tmp_path / 'page.html'
  page.write_text('<html>the page</html>')
  (tmp_path / 'secret.txt').write_text('not served')
  server = view.make_server(str(page), port=0)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    base = f'http://127.0.0.1:{server.server_address[1]}'
    for path in ('/', '/page.html'):
      with urllib.request.urlopen(base + path, timeout=10) as response:
        assert response.read() == b'<html>the page</html>'
    with pytest.raises(urllib.error.HTTPError, match='404'):
      urllib.request.urlopen(base + '/secret.txt', timeout=10)
  finally:
    server.shutdown()
    server.server_close()


def write_camera_dataset(output_dir):
  """A one-episode dataset whose observation is a dict with a camera (the pipeline does not
  write images yet; this is the TFDS layout such a dataset would have), committed with the
  pipeline's own metadata writer. Frame t is a 16x16 image whose row t is green."""
  from tensorflow_datasets.core import example_serializer
  layout = rounds.DatasetLayout(output_dir, 'cam_view')
  features = tfds.features.FeaturesDict({
      sc.STEPS: tfds.features.Dataset({
          sc.OBSERVATION: tfds.features.FeaturesDict({
              'wrist': tfds.features.Image(shape=(16, 16, 3)),
              'state': tfds.features.Tensor(shape=(4,), dtype=np.float32)}),
          sc.ACTION: tfds.features.Tensor(shape=(2,), dtype=np.float32),
          sc.REWARD: tfds.features.Scalar(dtype=np.float32),
          sc.IS_INTERVENTION: tfds.features.Scalar(dtype=np.bool_),
          sc.IS_LAST: tfds.features.Scalar(dtype=np.bool_),
      }),
      sc.EPISODE_METADATA: {sc.EPISODE_ID: tfds.features.Text()},
  })
  n = 11
  flags = np.zeros(n, bool)
  flags[4:7] = True
  images = np.zeros((n, 16, 16, 3), np.uint8)
  for t in range(n):
    images[t, :, :, 0] = 20 * t
    images[t, t, :, 1] = 255
  example = {sc.STEPS: {
      sc.OBSERVATION: {'wrist': images, 'state': np.zeros((n, 4), np.float32)},
      sc.ACTION: np.linspace(-1, 1, 2 * n, dtype=np.float32).reshape(n, 2),
      sc.REWARD: np.append(relabel.intervention_rewards(flags), 0).astype(np.float32),
      sc.IS_INTERVENTION: flags, sc.IS_LAST: np.arange(n) == n - 1},
      sc.EPISODE_METADATA: {sc.EPISODE_ID: 'cam-0'}}
  serializer = example_serializer.ExampleSerializer(features.get_serialized_info())
  data = serializer.serialize_example(features.encode_example(example))
  tf.io.gfile.makedirs(layout.version_dir)
  with tf.io.TFRecordWriter(layout.shard_path(0, 0, 1)) as writer:
    writer.write(data)
  rounds.write_metadata(layout, features, {0: tfds.core.SplitInfo(
      name=sc.split_name(0), shard_lengths=[1], num_bytes=len(data))})
  return layout.version_dir, images


@needs_chromium
def test_the_browser_shows_camera_frames_around_each_takeover(tmp_path):
  from PIL import Image
  version_dir, images = write_camera_dataset(str(tmp_path / 'out'))
  page = str(tmp_path / 'camera.html')
  view.write_page(version_dir, page)
  dom = parse(chromium(page, tmp_path, '--dump-dom'))
  assert not dom.find_all('p', id='no-camera')
  frames = dom.find_all('img', cls='frame')
  # The takeover starts at step 4: frames of steps 2-6, the start outlined.
  assert [int(f.attrs['data-step']) for f in frames] == [2, 3, 4, 5, 6]
  assert [int(f.attrs['data-step']) for f in frames if 'start' in f.classes] == [4]
  for frame in frames:
    prefix = 'data:image/png;base64,'
    assert frame.attrs['src'].startswith(prefix)
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(
        frame.attrs['src'][len(prefix):]))))
    np.testing.assert_array_equal(decoded, images[int(frame.attrs['data-step'])])
  assert len(dom.find_all('rect', cls='takeover')) == 1
  assert [int(g.attrs['data-step']) for g in dom.find_all('g', cls='neg-reward')] == [3]
