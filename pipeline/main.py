r"""Converts raw intervention logs into one RLIF-relabeled round of a TFDS dataset.

  python -m pipeline.main --input='logs/round3/*.jsonl.gz' --output_dir=~/rlif_data \
      --dataset=rlif_adroit --round=3 [--takeover=keep|drop] [--overwrite] [Beam options]

`--input` may also name a LeRobot dataset root (the folder holding meta/info.json; codebase
v2.x or v3.0); `--lerobot_*` say which of its columns and cameras are read
(pipeline/lerobot_format.py, pipeline/lerobot_cameras.py).

Unknown flags are passed to Beam (e.g. --runner=DataflowRunner --project=... --region=...).
With no --input, converts the small sample logs shipped in `examples/raw_logs/` into a demo
dataset under /tmp (the embedded default).
"""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags
from absl import logging

_INPUT = flags.DEFINE_list('input', None, 'Comma-separated globs of raw log files.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Root folder of TFDS datasets.')
_DATASET = flags.DEFINE_string('dataset', 'rlif_adroit', 'Dataset name.')
_ROUND = flags.DEFINE_integer('round', None, 'Intervention round to write (split round_N).')
_TAKEOVER = flags.DEFINE_enum('takeover', 'keep', ['keep', 'drop'],
                              'keep: takeover steps stay (reward 0, is_intervention); drop: only '
                              'the last step of each takeover is kept (reference behaviour).')
_OVERWRITE = flags.DEFINE_bool('overwrite', False,
                               'Replace an existing round written from different input.')
_LEROBOT_OBSERVATIONS = flags.DEFINE_list(
    'lerobot_observation_columns', ['observation.state'],
    'LeRobot input: vector features concatenated, in this order, into the observation.')
_LEROBOT_INTERVENTION = flags.DEFINE_string(
    'lerobot_intervention_column', 'complementary_info.is_intervention',
    "LeRobot input: the 0/1 column that marks frames under human control; '' reads the dataset "
    'as demonstrations (no intervention flags).')
_LEROBOT_DONE = flags.DEFINE_string(
    'lerobot_done_column', 'next.done',
    "LeRobot input: the episode-end flag; true on the last frame reads it as a terminal state. "
    "'' reads every episode as truncated (HIL-SERL's recorder sets it on time-outs too).")
_LEROBOT_IMAGES = flags.DEFINE_list(
    'lerobot_image_columns', None,
    'LeRobot input: camera features (dtype image or video) read into the observation as uint8 '
    'images, beside the vector columns as `state`; default: every camera in meta/info.json; '
    "'' reads none (the observation stays one vector).")
_LEROBOT_TOLERANCE = flags.DEFINE_float(
    'lerobot_timestamp_tolerance_s', 1e-4,
    "LeRobot input: a video frame is a row's frame when its time is within this many seconds "
    "of the row's timestamp (LeRobot's tolerance_s).")
_RUNNER = flags.DEFINE_enum('engine', 'beam', ['beam', 'plain'],
                            'beam: the Beam job; plain: the same stages in one process.')

_SAMPLE_LOGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            'examples', 'raw_logs')


def main(argv):
  import logging as py_logging
  from pipeline import lerobot_format
  from pipeline import round_job
  py_logging.getLogger('apache_beam').setLevel(py_logging.WARNING)
  logging.set_verbosity(logging.WARNING)
  beam_args = argv[1:]
  patterns, output_dir, round_index = _INPUT.value, _OUTPUT_DIR.value, _ROUND.value
  dataset = _DATASET.value
  if patterns is None:
    patterns = [os.path.join(_SAMPLE_LOGS, '*')]
    output_dir = output_dir or '/tmp/rlif_sample_data'
    dataset = 'rlif_sample'
    round_index = 0 if round_index is None else round_index
    print(f'No --input: converting the sample logs in {_SAMPLE_LOGS}')
  if output_dir is None or round_index is None:
    raise app.UsageError('--output_dir and --round are required with --input')
  try:
    lerobot_columns = lerobot_format.LeRobotColumns(
        observations=tuple(_LEROBOT_OBSERVATIONS.value),
        intervention=_LEROBOT_INTERVENTION.value, done=_LEROBOT_DONE.value,
        images=None if _LEROBOT_IMAGES.value is None else tuple(_LEROBOT_IMAGES.value),
        timestamp_tolerance_s=_LEROBOT_TOLERANCE.value)
    patterns = [os.path.expanduser(p) for p in patterns]  # --input=~/... reaches us unexpanded
    result = round_job.run_round(patterns, os.path.expanduser(output_dir), dataset,
                                 round_index, _TAKEOVER.value, _OVERWRITE.value, beam_args,
                                 runner=_RUNNER.value, lerobot_columns=lerobot_columns)
  except (round_job.rounds.RoundConflict, FileNotFoundError, ValueError) as e:
    logging.error('%s', e)
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(result.summary, end='')
  print(f'dataset: {result.version_dir} (status: {result.status})')
  return 0


if __name__ == '__main__':
  flags.FLAGS.set_default('logtostderr', False)
  app.run(main, flags_parser=lambda argv: flags.FLAGS(argv, known_only=True))
