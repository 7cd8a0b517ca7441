r"""A round viewer: one static HTML page about an RLIF dataset.

  python -m pipeline.view DATASET_DIR [--round N] [--out FILE] [--max_episodes 50] \
      [--serve [--port 8000]]

DATASET_DIR is a dataset version folder (DIR/NAME/VERSION, holding dataset_info.json) or the
folder given to `pipeline.main --output_dir` (holding NAME/VERSION/, or NAME/CONFIG/VERSION/ as
`tfds build` writes it). The page (`round_summary` computes, `html_page` draws) shows per round
the episodes, steps, intervention rate, takeover lengths, -1 rewards, dead letters and the trend
over rounds, and per episode of round N (the newest by default) a timeline of its actions with the
takeover spans shaded and the -1 rewards marked, plus the camera frames around each takeover for
image observations. It is self-contained (no network). `--serve` serves it on localhost.

Data: the rounds' steps through TFDS (`tfds.builder_from_directory`), each round's manifest
(rounds/round_N.json, the job report) and its dead letters (rejected/round_N/, or the report's
list when that folder is absent, as in published copies).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import http.server
import os
import sys
from typing import Optional

if __name__ == '__main__':  # The command line: TF's C++ INFO lines off (warnings still show).
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

import tensorflow as tf  # noqa: E402

from pipeline import dead_letters  # noqa: E402
from pipeline import html_page  # noqa: E402
from pipeline import round_summary as rs  # noqa: E402
from pipeline import rounds  # noqa: E402
from pipeline import schema as sc  # noqa: E402

MAX_EPISODES = 50
REQUIRED_STEP_FIELDS = (sc.ACTION, sc.REWARD, sc.IS_INTERVENTION)


class ViewError(Exception):
  """DATASET_DIR or --round does not name something the viewer can show."""


def _version_key(path: str) -> tuple:
  return tuple(int(x) if x.isdigit() else -1 for x in os.path.basename(path).split('.'))


def find_version_dir(path: str) -> str:
  """The dataset version folder that `path` names: itself when it holds dataset_info.json, else
  the one version under it (NAME/VERSION or NAME/CONFIG/VERSION; the newest when one dataset
  has several versions)."""
  path = os.path.expanduser(path).rstrip('/') or '/'
  if not tf.io.gfile.exists(path):
    raise ViewError(f'{path} does not exist')
  if not tf.io.gfile.isdir(path):
    raise ViewError(f'{path} is a file; pass a dataset version folder (DIR/NAME/VERSION) or the '
                    'pipeline\'s --output_dir')
  if tf.io.gfile.exists(os.path.join(path, rounds.DATASET_INFO)):
    return path
  found = sorted({os.path.dirname(p) for pattern in ('*/*', '*/*/*')
                  for p in tf.io.gfile.glob(os.path.join(path, pattern, rounds.DATASET_INFO))})
  if not found:
    hint = ''
    if tf.io.gfile.exists(os.path.join(path, 'rounds')):
      hint = ' It has rounds/ but no dataset_info.json: no round was committed yet.'
    raise ViewError(
        f'{path} is neither a dataset version folder (no {rounds.DATASET_INFO}) nor a folder '
        f'holding one as NAME/VERSION/ or NAME/CONFIG/VERSION/ (the --output_dir given to '
        f'pipeline.main).{hint}')
  datasets = {}
  for version_dir in found:
    datasets.setdefault(os.path.dirname(version_dir), []).append(version_dir)
  if len(datasets) > 1:
    raise ViewError(f'{path} holds {len(datasets)} datasets; pass one of these version '
                    'folders:\n  ' + '\n  '.join(found))
  (versions,) = datasets.values()
  return max(versions, key=_version_key)


def _describe_observation(feature) -> str:
  import tensorflow_datasets as tfds
  if isinstance(feature, tfds.features.FeaturesDict):
    return 'a dict of ' + ', '.join(f'{k} {list(v.shape)} {v.dtype.name}'
                                    for k, v in feature.items())
  return f'{feature.shape[0]}-D vectors' if len(feature.shape) == 1 else f'{list(feature.shape)}'


def _load_builder(version_dir: str):
  import tensorflow_datasets as tfds
  builder = tfds.builder_from_directory(version_dir)
  features = builder.info.features
  if sc.STEPS not in features:
    raise ViewError(f'{version_dir}: no `{sc.STEPS}` feature; not an RLDS dataset written by the '
                    f'pipeline (features: {sorted(features.keys())})')
  missing = [f for f in REQUIRED_STEP_FIELDS if f not in features[sc.STEPS].feature]
  if missing:
    raise ViewError(f'{version_dir}: steps lack {missing}; the viewer needs '
                    f'{list(REQUIRED_STEP_FIELDS)}')
  return builder


def _round_splits(builder, version_dir: str) -> dict[int, str]:
  splits = {}
  for name in builder.info.splits:
    try:
      splits[sc.round_of_split(name)] = name
    except ValueError:
      continue  # Not a round; the page is about rounds.
  if not splits:
    raise ViewError(f'{version_dir} has no round splits (round_N); its splits: '
                    f'{list(builder.info.splits)}')
  return dict(sorted(splits.items()))


def _iter_episodes(builder, split: str):
  """(episode id, segment, takeover mode, steps as {field: [T+1, ...] numpy}) per stored
  episode, in shard order."""
  import tensorflow_datasets as tfds
  if builder.info.splits[split].num_examples == 0:
    return
  metadata_fields = builder.info.features[sc.EPISODE_METADATA].keys() if (
      sc.EPISODE_METADATA in builder.info.features) else ()

  def whole_episode(episode):
    meta = episode.get(sc.EPISODE_METADATA, {})
    return ({k: meta[k] for k in (sc.EPISODE_ID, sc.SEGMENT, sc.TAKEOVER_MODE)
             if k in metadata_fields},
            tf.data.Dataset.get_single_element(episode[sc.STEPS].batch(1 << 20)))

  ds = builder.as_dataset(split=split, shuffle_files=False).map(whole_episode)
  for index, (meta, steps) in enumerate(tfds.as_numpy(ds)):
    episode_id = meta.get(sc.EPISODE_ID, str(index).encode())
    mode = meta.get(sc.TAKEOVER_MODE)
    yield (episode_id.decode() if isinstance(episode_id, bytes) else str(episode_id),
           int(meta.get(sc.SEGMENT, 0)),
           mode.decode() if isinstance(mode, bytes) else mode, steps)


def layout_of(version_dir: str) -> rounds.DatasetLayout:
  """The pipeline's layout of the dataset version at `version_dir` (any DIR/.../NAME/VERSION)."""
  parent, version = os.path.split(version_dir.rstrip('/'))
  output_dir, name = os.path.split(parent)
  return rounds.DatasetLayout(output_dir, name, version)


def _dead_letters(layout: rounds.DatasetLayout, round_index: int, report: Optional[dict]):
  """(records, where they were read): the round's dead-letter folder, else the report's list
  (published copies leave rejected/ out)."""
  directory = layout.rejected_dir(round_index)
  if tf.io.gfile.isdir(directory):
    records = dead_letters.read_all(directory)
    records.sort(key=lambda r: (r.get('reason', ''), r.get('source', ''),
                                str(r.get('episode_id') or ''), r.get('detail', '')))
    return records, os.path.relpath(directory, layout.version_dir) + '/'
  if report and report.get('rejected') is not None:
    return (list(report['rejected']),
            os.path.relpath(layout.manifest_path(round_index), layout.version_dir))
  return [], ''


def summarize_dataset(version_dir: str, round_index: Optional[int] = None,
                      max_episodes: int = MAX_EPISODES) -> rs.DatasetSummary:
  """Reads every round of the dataset at `version_dir` and summarizes it for the page."""
  builder = _load_builder(version_dir)
  layout = layout_of(version_dir)
  splits = _round_splits(builder, version_dir)
  shown = max(splits) if round_index is None else int(round_index)
  if shown not in splits:
    raise ViewError(f'round {shown} is not in {version_dir}; its rounds: {list(splits)}')
  steps_features = builder.info.features[sc.STEPS].feature
  observation = steps_features[sc.OBSERVATION] if sc.OBSERVATION in steps_features else None
  action_dim = int(steps_features[sc.ACTION].shape[0]) if steps_features[sc.ACTION].shape else 1

  round_summaries, reports, sources = [], {}, {}
  timelines, camera_fields = [], ()
  for r, split in splits.items():
    episodes, modes = [], set()
    for episode_id, segment, mode, steps in _iter_episodes(builder, split):
      modes.add(mode)
      if r == shown:
        timeline = rs.episode_timeline(steps, episode_id, segment)
        camera_fields = camera_fields or tuple(timeline.frames)
        timelines.append(timeline)
        episodes.append(timeline.summary)
      else:
        episodes.append(rs.summarize_episode(steps, episode_id, segment))
    reports[r] = (rounds.read_manifest(layout, r) or {}).get('report')
    records, sources[r] = _dead_letters(layout, r, reports[r])
    mode = modes.pop() if len(modes) == 1 else None
    round_summaries.append(rs.summarize_round(r, episodes, records, takeover_mode=mode))
  timelines.sort(key=lambda t: (t.summary.episode_id, t.summary.segment))
  return rs.DatasetSummary(
      name=builder.info.name, version=str(builder.info.version), version_dir=version_dir,
      observation=_describe_observation(observation) if observation is not None else 'absent',
      action_dim=action_dim, rounds=tuple(round_summaries), reports=reports,
      dead_letter_sources=sources, shown_round=shown,
      timelines=tuple(timelines[:max_episodes]), shown_round_episodes=len(timelines),
      camera_fields=camera_fields)


def write_page(dataset_dir: str, out: Optional[str] = None, round_index: Optional[int] = None,
               max_episodes: int = MAX_EPISODES) -> tuple[str, rs.DatasetSummary]:
  """Writes the page; returns its path and what it shows."""
  version_dir = find_version_dir(dataset_dir)
  summary = summarize_dataset(version_dir, round_index, max_episodes)
  out = out or f'{summary.name}-{summary.version}-view.html'
  stamp = datetime.datetime.now(datetime.timezone.utc).strftime('generated %Y-%m-%d %H:%M UTC')
  page = html_page.render(summary, generated=stamp)
  directory = os.path.dirname(os.path.abspath(out))
  os.makedirs(directory, exist_ok=True)
  with open(out + '.tmp', 'w', encoding='utf-8') as f:
    f.write(page)
  os.replace(out + '.tmp', out)
  return os.path.abspath(out), summary


class _PageHandler(http.server.BaseHTTPRequestHandler):
  """Serves one file at / and /<its name>; nothing else on the disk is reachable."""

  def __init__(self, *args, page_path: str, **kwargs):
    self.page_path = page_path
    super().__init__(*args, **kwargs)

  def do_GET(self):  # noqa: N802 (http.server's naming)
    if self.path.split('?')[0] not in ('/', '/' + os.path.basename(self.page_path)):
      self.send_error(404, 'only the viewer page is served here')
      return
    with open(self.page_path, 'rb') as f:  # Re-read: a rewritten page shows on reload.
      body = f.read()
    self.send_response(200)
    self.send_header('Content-Type', 'text/html; charset=utf-8')
    self.send_header('Content-Length', str(len(body)))
    self.end_headers()
    self.wfile.write(body)

  def log_message(self, format, *args):  # noqa: A002
    pass


def make_server(page_path: str, port: int = 8000, host: str = '127.0.0.1'):
  """An HTTP server for the page on `host:port` (port 0: any free port)."""
  handler = functools.partial(_PageHandler, page_path=os.path.abspath(page_path))
  return http.server.ThreadingHTTPServer((host, port), handler)


def _print_summary(path: str, summary: rs.DatasetSummary) -> None:
  print(f'{summary.name} {summary.version}: rounds '
        f'{", ".join(str(r.round_index) for r in summary.rounds)} ({summary.version_dir})')
  for r in summary.rounds:
    print(f'  round {r.round_index}: {r.episodes} episodes, {r.transitions} steps, intervention '
          f'rate {100 * r.intervention_rate:.1f}%, {r.takeovers.count} takeovers, '
          f'{r.negative_rewards} rewards of -1, {len(r.dead_letters)} dead letters')
  print(f'  timelines: {len(summary.timelines)} of {summary.shown_round_episodes} episodes of '
        f'round {summary.shown_round}; '
        + (f'camera: {", ".join(summary.camera_fields)}' if summary.camera_fields
           else 'no camera'))
  print(f'page: {path}')


def main(argv) -> int:
  parser = argparse.ArgumentParser(prog='python -m pipeline.view',
                                   description=__doc__.split('\n\n')[0])
  parser.add_argument('dataset_dir', help='DIR/NAME/VERSION, or the --output_dir holding it')
  parser.add_argument('--round', type=int, default=None,
                      help='round whose episodes get timelines (default: the newest)')
  parser.add_argument('--out', default=None,
                      help='HTML file to write (default: ./NAME-VERSION-view.html)')
  parser.add_argument('--max_episodes', type=int, default=MAX_EPISODES,
                      help='at most this many episode timelines (default %(default)s)')
  parser.add_argument('--serve', action='store_true',
                      help='serve the page on localhost until Ctrl-C')
  parser.add_argument('--port', type=int, default=8000, help='port for --serve (0: any free)')
  args = parser.parse_args(argv)
  try:
    path, summary = write_page(args.dataset_dir, args.out, args.round, args.max_episodes)
  except ViewError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  _print_summary(path, summary)
  if args.serve:
    server = make_server(path, args.port)
    print(f'serving at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)', flush=True)
    try:
      server.serve_forever()
    except KeyboardInterrupt:
      print('stopped')
    finally:
      server.server_close()
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
