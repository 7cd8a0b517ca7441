"""Rejected input: why a file, line or episode was not written, and where it came from.

Nothing is dropped silently. Every stage raises `Rejected` for input it cannot use; the job writes
each one to the round's dead-letter folder (see `dead_letters.py`) and counts it in the report.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

# Reasons. One constant per class of bad input, so reports can be grouped by reason.
UNREADABLE_FILE = 'unreadable_file'
PICKLED_OBJECT_ARRAY = 'pickled_object_array'
TRUNCATED_GZIP = 'truncated_gzip'
UNPARSEABLE_LINE = 'unparseable_line'
INVALID_RECORD = 'invalid_record'
MISSING_FIELD = 'missing_field'
NON_FINITE = 'non_finite_value'
INCONSISTENT_DIMENSIONS = 'inconsistent_dimensions'
DIMENSION_MISMATCH = 'dimension_mismatch_with_dataset'
MISSING_FINAL_OBSERVATION = 'missing_final_observation'
STEP_GAP = 'step_gap'
CONFLICTING_DUPLICATE_STEP = 'conflicting_duplicate_step'
NO_FINAL_RECORD = 'no_final_record'
EMPTY_EPISODE = 'empty_episode'
INVALID_METADATA = 'invalid_metadata'
EXPERT_ACTION_NOT_IN_DATASET = 'expert_action_not_in_dataset'
# Dict observations (raw format v2).
INVALID_IMAGE = 'invalid_image'
MIXED_OBSERVATION_FORMATS = 'mixed_observation_formats'
OBSERVATION_SPEC_MISMATCH = 'observation_spec_mismatch'
# LeRobot datasets (pipeline/lerobot_format.py); gaps in `frame_index` are STEP_GAP, missing
# columns MISSING_FIELD, unreadable parquet UNREADABLE_FILE, a broken meta/ INVALID_METADATA.
UNKNOWN_CODEBASE_VERSION = 'unknown_codebase_version'
FEATURE_MISMATCH = 'feature_mismatch_with_info'
DUPLICATE_FRAME = 'duplicate_frame'
EPISODE_MISSING_FROM_DATA = 'episode_missing_from_data'
MISSING_VIDEO_FILE = 'missing_video_file'
UNSUPPORTED_FEATURE = 'unsupported_feature'
# LeRobot cameras (pipeline/lerobot_cameras.py); a frame whose size disagrees with info.json is
# FEATURE_MISMATCH.
UNDECODABLE_VIDEO = 'undecodable_video'
UNDECODABLE_IMAGE = 'undecodable_image'
VIDEO_TIMESTAMP_MISMATCH = 'video_timestamp_mismatch'

# What was rejected: a whole input file, one line of a step stream, or one episode.
FILE = 'file'
LINE = 'line'
EPISODE = 'episode'


@dataclasses.dataclass
class Rejected(Exception):
  """An input that cannot be written, with enough context for a person to find and fix it.

  Attributes:
    reason: one of the reason constants above.
    detail: a human-readable sentence saying what is wrong and where.
    source: path-free name of the input file(s) it came from.
    unit: FILE, LINE or EPISODE.
    episode_id: the episode it belongs to, when known.
    lines: for step streams, the offending records as JSON text (one per line), so that the
      rejected data itself survives even if the input files are deleted.
    source_path: full path of a rejected file; the dead-letter writer copies the file.
    counts_as_episode: True when this rejection stands for one input episode (every input episode
      is either written or rejected exactly once: the report checks this balance).
  """
  reason: str
  detail: str
  source: str
  unit: str = EPISODE
  episode_id: Optional[str] = None
  lines: tuple[str, ...] = ()
  source_path: Optional[str] = None
  counts_as_episode: bool = True

  def __str__(self):
    where = self.source + (f' (episode {self.episode_id})' if self.episode_id else '')
    return f'{self.reason}: {self.detail} [{where}]'

  def to_record(self) -> dict:
    """The JSON-serializable dead-letter record (without the copied file bytes)."""
    record = dataclasses.asdict(self)
    record['lines'] = list(self.lines)
    return record
