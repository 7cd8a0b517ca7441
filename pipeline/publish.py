r"""Publishes a prepared dataset version to any path `tf.io.gfile` can write (local, gs://, ...).

  python -m pipeline.publish --dataset_dir=~/rlif_data/rlif_adroit/1.0.0 \
      --destination=gs://team-bucket/datasets

writes DESTINATION/<name>/<version>/ with the shards, TFDS metadata, per-round reports and a
CARD.md. Files already present with the same size are skipped, so publishing again after a new
round copies only that round. The metadata (dataset_info.json) is copied last: a reader of the
destination sees the previous rounds or all of them, never part of one.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Optional

import tensorflow as tf

from pipeline import rounds
from pipeline import schema as sc

_SKIP = ('.staging', 'rejected')  # Work in progress and dead letters stay with the producer.


def _files(root: str) -> list[str]:
  result = []
  for directory, subdirs, names in tf.io.gfile.walk(root):
    subdirs[:] = [d for d in subdirs if d.rstrip('/') not in _SKIP]
    rel = os.path.relpath(directory, root)
    result.extend(os.path.normpath(os.path.join(rel, n)) for n in names)
  return sorted(result)


PLOT_NAME = 'rounds.png'


def round_reports(version_dir: str) -> dict:
  """{round: its report (rounds/round_N.json), or None where the manifest is absent}."""
  import tensorflow_datasets as tfds
  builder = tfds.builder_from_directory(version_dir)
  reports = {}
  for split in builder.info.splits:
    path = os.path.join(version_dir, 'rounds', f'{split}.json')
    if tf.io.gfile.exists(path):
      with tf.io.gfile.GFile(path) as f:
        reports[sc.round_of_split(split)] = json.load(f)['report']
    else:
      reports[sc.round_of_split(split)] = None
  return dict(sorted(reports.items()))


def mean_episode_length(report: dict) -> float:
  """Transitions per written episode (an episode of T transitions has T + 1 observations)."""
  return report['transitions'] / report['episodes_written'] if report['episodes_written'] else 0.0


def card(version_dir: str, plot_name: Optional[str] = None) -> str:
  """A dataset card: schema, rule, and the per-round statistics from the round manifests."""
  import tensorflow_datasets as tfds
  builder = tfds.builder_from_directory(version_dir)
  observation, act_dim = sc.dims_of_features(builder.info.features)
  lines = [f'# {builder.info.name} {builder.info.version}', '',
           f'Observation {sc.describe_observation(observation)}, action {act_dim}-D. '
           'One split per round: '
           f'{", ".join(builder.info.splits)}.', '',
           '| round | episodes | transitions | mean episode length | intervention rate | '
           'takeovers | mean takeover length | -1 rewards | demonstrations | rejected | rule |',
           '|---|---|---|---|---|---|---|---|---|---|---|']
  for r, report in round_reports(version_dir).items():
    if report is None:
      lines.append(f'| {r} | {builder.info.splits[sc.split_name(r)].num_examples} '
                   '| | | | | | | | | |')
      continue
    s = report['settings']
    lines.append(
        f"| {r} | {report['episodes_written']} | {report['transitions']} | "
        f"{mean_episode_length(report):.1f} | "
        f"{report['intervention_rate']:.3f} | {report['takeovers']} | "
        f"{report['takeover_length']['mean']:.1f} | {report['negative_rewards']} | "
        f"{report['demonstrations']} | {report['episodes_rejected']} | "
        f"{s['reward_rule']} v{s['reward_rule_version']}, takeover={s['takeover']} |")
  if plot_name:
    lines += ['', f'![intervention rate and episode length per round]({plot_name})']
  lines += ['', 'Steps (RLDS, SAR alignment): observation, action, policy_action and '
            'expert_action (NaN where not logged), reward, discount, is_first, is_last, '
            'is_terminal, is_intervention.',
            'Reward rule rlif: -1 on the policy transition that led to a human takeover, 0 '
            'elsewhere; discount 0 only into a true terminal state.', '',
            'Load without this project:', '', '```python', 'import tensorflow_datasets as tfds',
            f"ds = tfds.builder_from_directory('<this folder>').as_dataset(split="
            f"'{'+'.join(builder.info.splits)}')", '```', '']
  return '\n'.join(lines)


def plot_rounds(version_dir: str) -> bytes:
  """PNG: intervention rate and mean episode length per round (rounds without a manifest are
  left out)."""
  import io
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  reports = {r: rep for r, rep in round_reports(version_dir).items() if rep is not None}
  rounds_ = list(reports)
  fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3))
  left.plot(rounds_, [100 * reports[r]['intervention_rate'] for r in rounds_], marker='o')
  left.set_ylabel('intervention rate %')
  right.plot(rounds_, [mean_episode_length(reports[r]) for r in rounds_], marker='o')
  right.set_ylabel('mean episode length (steps)')
  for ax in (left, right):
    ax.set_xlabel('round')
    ax.set_xticks(rounds_)
    ax.grid(alpha=0.3)
  fig.tight_layout()
  buffer = io.BytesIO()
  fig.savefig(buffer, format='png', dpi=80)
  plt.close(fig)
  return buffer.getvalue()


def publish(version_dir: str, destination: str) -> str:
  """Copies `version_dir` (DIR/NAME/VERSION) to DESTINATION/NAME/VERSION; returns that path."""
  if not tf.io.gfile.exists(os.path.join(version_dir, rounds.DATASET_INFO)):
    raise FileNotFoundError(f'{version_dir} is not a dataset version (no '
                            f'{rounds.DATASET_INFO}); pass DIR/NAME/VERSION')
  version = os.path.basename(version_dir.rstrip('/'))
  name = os.path.basename(os.path.dirname(version_dir.rstrip('/')))
  target = os.path.join(destination, name, version)
  files = [f for f in _files(version_dir) if f != rounds.DATASET_INFO]
  copied = 0
  for rel in files + [rounds.DATASET_INFO]:  # Metadata last: the commit point.
    src, dst = os.path.join(version_dir, rel), os.path.join(target, rel)
    if (rel != rounds.DATASET_INFO and tf.io.gfile.exists(dst)
        and tf.io.gfile.stat(dst).length == tf.io.gfile.stat(src).length):
      continue
    tf.io.gfile.makedirs(os.path.dirname(dst))
    tf.io.gfile.copy(src, dst + '.tmp', overwrite=True)
    tf.io.gfile.rename(dst + '.tmp', dst, overwrite=True)
    copied += 1
  with tf.io.gfile.GFile(os.path.join(target, PLOT_NAME), 'wb') as f:
    f.write(plot_rounds(version_dir))
  with tf.io.gfile.GFile(os.path.join(target, 'CARD.md'), 'w') as f:
    f.write(card(version_dir, PLOT_NAME))
  print(f'published {name} {version}: {copied} files copied, '
        f'{len(files) + 1 - copied} already there -> {target}')
  return target


def main(argv):
  import argparse
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--dataset_dir', required=True, help='DIR/NAME/VERSION to publish.')
  parser.add_argument('--destination', required=True, help='Folder (local or gs://...).')
  args = parser.parse_args(argv)
  try:
    publish(os.path.expanduser(args.dataset_dir), os.path.expanduser(args.destination))
  except FileNotFoundError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
