"""Appends one round to a dataset: plan, run the conversion (Beam or plain), report, commit."""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from pipeline import dead_letters
from pipeline import lerobot_format
from pipeline import raw_format
from pipeline import relabel as rl
from pipeline import report as report_lib
from pipeline import rounds
from pipeline import schema as sc
from pipeline import stages
from pipeline.rejection import Rejected
from pipeline.validate import validate_episode


@dataclasses.dataclass
class RoundResult:
  status: str  # 'new', 'overwrite' or 'unchanged'
  report: dict
  summary: str
  version_dir: str


_WILDCARDS = frozenset('*?[')


def is_wildcard(pattern: str) -> bool:
  return any(c in _WILDCARDS for c in pattern)


def match_inputs(patterns: Sequence[str]) -> dict[str, list[str]]:
  """{pattern: matched paths}, following Beam's `EmptyMatchTreatment.ALLOW_IF_WILDCARD`: a
  wildcard that matches nothing is allowed (its list is empty), a literal path that does not
  exist is an error."""
  matched = {}
  for pattern in patterns:
    matches = tf.io.gfile.glob(pattern)
    if not matches and not is_wildcard(pattern):
      raise FileNotFoundError(f'--input {pattern!r} does not exist')
    matched[pattern] = matches
  return matched


def expand_inputs(patterns: Sequence[str],
                  matched: Optional[dict[str, list[str]]] = None) -> list[stages.InputFile]:
  """Expands comma-separated globs into raw log files and LeRobot dataset roots (folders with
  meta/info.json) (`match_inputs`, unless `matched` is given); other folders are skipped;
  rejects unknown file types up front and a round with no input at all."""
  matched = match_inputs(patterns) if matched is None else matched
  paths = [path.rstrip('/') for matches in matched.values() for path in matches]
  files, unknown = [], []
  for path in sorted(set(paths)):
    if tf.io.gfile.isdir(path):
      if lerobot_format.is_dataset_root(path):
        files.append(stages.InputFile(path, 'lerobot'))
      continue
    try:
      files.append(stages.InputFile(path, raw_format.kind_of(path)))
    except ValueError:
      unknown.append(path)
  if unknown:
    hint = ('; a LeRobot dataset is named by its root folder (the one holding meta/info.json)'
            if any(p.endswith('.parquet') for p in unknown) else '')
    raise ValueError(f'{len(unknown)} input files are not raw logs (*.npz, *.jsonl, *.jsonl.gz),'
                     f' e.g. {unknown[:3]}; narrow --input{hint}')
  if not files:
    raise FileNotFoundError(f'--input {list(patterns)} matched no raw log files and no LeRobot '
                            'dataset')
  return files


def fingerprint_paths(files: list[stages.InputFile],
                      lerobot_columns: Optional[lerobot_format.LeRobotColumns] = None
                      ) -> list[str]:
  """The files whose bytes make up the round's input: raw log files themselves, and for a
  LeRobot dataset the metadata, parquet and video files the reader reads (`lerobot_columns`
  says which cameras)."""
  return [path for f in files
          for path in (lerobot_format.fingerprint_paths(f.path, lerobot_columns)
                       if f.kind == 'lerobot' else [f.path])]


def infer_dims(files: list[stages.InputFile], max_files: int = 16,
               lerobot_columns: lerobot_format.LeRobotColumns = lerobot_format.LeRobotColumns()
               ) -> tuple[sc.ObservationSpec, int]:
  """The most common (observation spec, action_dim) among the first readable input files; used
  only when the dataset does not exist yet (later rounds must match the dataset). The spec is
  the observation dimension for flat observations, the fields of dict observations (raw format
  v2: an npz episode counts only if its fields are valid)."""
  seen = collections.Counter()
  for input_file in files[:max_files]:
    try:
      if input_file.kind == 'lerobot':
        seen[lerobot_format.dims(input_file.path, lerobot_columns)] += 1
        continue
      data = raw_format.read_bytes(input_file.path)
      if input_file.kind == 'npz':
        ep = raw_format.parse_npz_episode(data, input_file.source)
        if isinstance(ep.observations, dict):
          try:
            validate_episode(ep)
          except Rejected:
            continue
          seen[(sc.observation_spec(ep.observations), ep.actions.shape[1])] += 1
        elif ep.observations.ndim == 2 and ep.actions.ndim == 2:
          seen[(ep.observations.shape[1], ep.actions.shape[1])] += 1
      else:
        for _, line in raw_format.iter_lines(data, input_file.path):
          rec = raw_format.parse_step_line(line, input_file.source, 0)
          if rec and isinstance(rec.fields.get('action'), list):
            seen[(_step_observation_spec(rec.fields['observation']),
                  len(rec.fields['action']))] += 1
            break
    except Exception:  # Bad files are reported by the job itself.
      continue
  if not seen:
    raise ValueError('cannot infer observation/action dimensions: none of the first '
                     f'{min(max_files, len(files))} input files is readable')
  return seen.most_common(1)[0][0]


def _step_observation_spec(observation) -> sc.ObservationSpec:
  """The spec a step stream's `observation` gives: its length (v1), or its named vectors (v2)."""
  if isinstance(observation, dict):
    return tuple(sorted(sc.ObservationField(name, (len(value),))
                        for name, value in observation.items()))
  return len(observation)


def run_round(input_patterns: Sequence[str], output_dir: str, dataset: str, round_index: int,
              takeover: str = 'keep', overwrite: bool = False,
              beam_options: Optional[Sequence[str]] = None, runner: str = 'beam',
              max_shard_bytes: int = 256 << 20,
              lerobot_columns: Optional[lerobot_format.LeRobotColumns] = None) -> RoundResult:
  """Converts the raw logs and LeRobot datasets matched by `input_patterns` into split
  `round_<round_index>`.

  Args:
    runner: 'beam' runs the Beam graph with `beam_options` (DirectRunner with 2 worker processes
      unless options say otherwise); 'plain' runs the same stages in this process.
    lerobot_columns: which LeRobot features are read as what (default: `LeRobotColumns()`).
  """
  if round_index < 0:
    raise ValueError(f'--round must be >= 0, got {round_index}')
  takeover = rl.Takeover(takeover).value
  layout = rounds.DatasetLayout(output_dir, dataset)
  matched = match_inputs(input_patterns)
  files = expand_inputs(input_patterns, matched)
  settings = {'reward_rule': rl.RULE_NAME, 'reward_rule_version': rl.RULE_VERSION,
              'takeover': takeover, 'raw_format_version': raw_format.FINGERPRINT_FORMAT_VERSION}
  lerobot_columns = lerobot_columns or lerobot_format.LeRobotColumns()
  lerobot = [f for f in files if f.kind == 'lerobot']
  if lerobot:  # Rounds without LeRobot input (or cameras) keep their fingerprints.
    settings['lerobot'] = lerobot_columns.settings(cameras=any(
        lerobot_format.cameras_read(f.path, lerobot_columns) for f in lerobot))
  fingerprint = rounds.input_fingerprint(fingerprint_paths(files, lerobot_columns), settings)
  status = rounds.plan_round(layout, round_index, fingerprint, overwrite)
  if status == 'unchanged':
    manifest = rounds.read_manifest(layout, round_index)
    summary = (f'{rounds.sc.split_name(round_index)} already holds this input (fingerprint '
               f'{fingerprint[:12]}); nothing to do.\n')
    return RoundResult(status, manifest['report'], summary, layout.version_dir)

  dims, expert_action = rounds.dataset_schema(layout)
  dims = dims or infer_dims(files, lerobot_columns=lerobot_columns)
  job = stages.JobSpec(round_index=round_index, dims=(dims[0] if isinstance(dims[0], tuple)
                                                      else int(dims[0]), int(dims[1])),
                       takeover=takeover, staging_dir=layout.new_staging_dir(round_index),
                       max_shard_bytes=max_shard_bytes, expert_action=expert_action,
                       lerobot=lerobot_columns)
  logging.info('round %d: %d input files -> %s (staging %s)', round_index, len(files),
               layout.version_dir, job.staging_dir)
  if runner == 'plain':
    stages.run_plain(files, job)
  else:
    _run_beam(files, job, beam_options)

  receipts = stages.read_receipts(job.staging_dir)
  rejected = dead_letters.read_all(job.rejected_dir)
  report = report_lib.build_report(round_index, receipts, rejected, settings, len(files))
  observation, action_dim = job.dims
  report['observation_dim'] = None if isinstance(observation, tuple) else observation
  report['action_dim'] = action_dim
  if isinstance(observation, tuple):  # dict observations; flat ones keep today's report
    report['observation_spec'] = sc.observation_spec_to_json(observation)
  report['input_patterns_matching_nothing'] = [p for p, m in matched.items() if not m]
  summary = report_lib.summary_text(report, layout.version_dir)
  manifest = {'round': round_index, 'fingerprint': fingerprint, 'settings': settings,
              'input_files': [f.source for f in files], 'report': report}
  committed = rounds.commit_round(
      layout, round_index, job.staging_dir, receipts, job.dims,
      json.loads(json.dumps(manifest, default=_json_default)), summary,
      expert_action=job.expert_action, overwrite=overwrite)
  if committed == 'unchanged':
    summary = (f'{rounds.sc.split_name(round_index)} was committed from this same input by '
               'another job while this one ran; nothing to do.\n')
    return RoundResult('unchanged', rounds.read_manifest(layout, round_index)['report'],
                       summary, layout.version_dir)
  return RoundResult(status, report, summary, layout.version_dir)


def _json_default(value):
  if isinstance(value, np.generic):
    return value.item()
  raise TypeError(f'not JSON serializable: {type(value)}')


def default_beam_options(extra: Optional[Sequence[str]]) -> list[str]:
  """Beam options with the embedded default (DirectRunner, 2 worker processes) filled in."""
  args = list(extra or [])
  if not any(a.startswith('--runner') for a in args):
    args += ['--runner=DirectRunner']
  runner = next(a for a in args if a.startswith('--runner')).split('=', 1)[-1]
  if runner.endswith('DirectRunner'):
    if not any(a.startswith('--direct_num_workers') for a in args):
      args.append('--direct_num_workers=2')
    if not any(a.startswith('--direct_running_mode') for a in args):
      args.append('--direct_running_mode=multi_processing')
  if not any(a.startswith('--default_sdk_harness_log_level') for a in args):
    args.append('--default_sdk_harness_log_level=WARNING')
  return args


def _run_beam(files, job, beam_options) -> None:
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions
  from pipeline import beam_job
  pipeline = beam.Pipeline(options=PipelineOptions(default_beam_options(beam_options)))
  beam_job.build(pipeline, files, job)
  result = pipeline.run()
  try:
    state = result.wait_until_finish()
  finally:
    client = getattr(result, 'client', None)  # DaskRunner: release the cluster connection.
    if client is not None:
      client.close()
  if state not in (None, 'DONE'):
    raise RuntimeError(f'the Beam job ended in state {state}; the round was not committed')
