"""LeRobot cameras: which are read, what observation field each becomes, and their frames.

A LeRobot camera is a feature of dtype `image` (each frame a PNG or JPEG file's bytes, stored in
the parquet row as a struct {bytes, path}) or `video` (an MP4 file per episode in v2.x, or per
several episodes in v3.0, found with info.json's `video_path` template). Both become uint8
[T, H, W, C] observation fields of raw format v2, so the pipeline writes them as
`tfds.features.Image` like any camera.

- Which: `images` of `LeRobotColumns` (None: every camera in meta/info.json, in its order).
- Field names (`field_name`): the feature name without `observation.images.` (or
  `observation.`), other characters than letters, digits and _ replaced by _:
  `observation.images.front` -> `front`, `observation.image` -> `image`. The vector columns
  become the field `state`. Two features that give one name are refused.
- Shape: info.json's `shape`, [H, W, C], or [C, H, W] where its `names` start with `channels`.
  Images are decoded with Pillow (what LeRobot's `datasets.Image` uses) and converted to C
  channels (1: L, 3: RGB, 4: RGBA); videos with PyAV to RGB, so a video camera must have C = 3
  (depth-map videos are refused). A decoded frame of another height or width than info.json's
  rejects the episode (`feature_mismatch_with_info`).
- Video frames belong to rows by timestamp (`pipeline.video_frames`, LeRobot's rule): row t's
  frame is the one nearest to `timestamp` + the episode's `from_timestamp` for that camera
  (meta/episodes in v3.0; 0 in v2.x), within `timestamp_tolerance_s`.
"""

from __future__ import annotations

import dataclasses
import io
import re
from typing import Callable, Optional, Sequence

import numpy as np

from pipeline import rejection
from pipeline import schema as sc
from pipeline import video_frames
from pipeline.rejection import Rejected

STATE_FIELD = sc.STATE_FIELD  # the field the vector columns become
IMAGE, VIDEO = 'image', 'video'
CAMERA_DTYPES = (IMAGE, VIDEO)
PIL_MODES = {1: 'L', 3: 'RGB', 4: 'RGBA'}

Reject = Callable[[str, str], Rejected]


@dataclasses.dataclass(frozen=True)
class Camera:
  key: str  # the LeRobot feature, e.g. 'observation.images.front'
  field: str  # the observation field it becomes, e.g. 'front'
  storage: str  # IMAGE or VIDEO
  shape: tuple[int, int, int]  # (H, W, C), from meta/info.json


def camera_keys(features: dict) -> list[str]:
  return [key for key, f in features.items() if f['dtype'] in CAMERA_DTYPES]


def field_name(key: str) -> str:
  for prefix in ('observation.images.', 'observation.'):
    if key.startswith(prefix) and len(key) > len(prefix):
      key = key[len(prefix):]
      break
  name = re.sub(r'[^A-Za-z0-9_]', '_', key)
  return '_' + name if name[:1].isdigit() else name


def frame_shape(feature: dict) -> Optional[tuple[int, int, int]]:
  """(H, W, C) of a camera feature in meta/info.json, or None if its shape is not 3 integers."""
  shape = feature.get('shape')
  if not (isinstance(shape, list) and len(shape) == 3
          and all(isinstance(n, int) and n > 0 for n in shape)):
    return None
  names = feature.get('names')
  if isinstance(names, list) and names and str(names[0]).startswith('channel'):
    return shape[1], shape[2], shape[0]
  return shape[0], shape[1], shape[2]


def plan(features: dict, images: Optional[Sequence[str]], reject: Reject) -> tuple[Camera, ...]:
  """The cameras read (`images`: the names given, None: every camera feature); raises
  `reject(reason, detail)` for names the dataset does not have, features that are not
  cameras or whose shape cannot be written, and field names that collide."""
  keys = camera_keys(features) if images is None else list(images)
  cameras, fields = [], {STATE_FIELD: 'the observation columns'}
  for key in keys:
    if key not in features:
      raise reject(rejection.MISSING_FIELD,
                   f'meta/info.json has no feature `{key}` (named as a camera); its cameras are '
                   f'{camera_keys(features)}')
    feature = features[key]
    if feature['dtype'] not in CAMERA_DTYPES:
      raise reject(rejection.UNSUPPORTED_FEATURE,
                   f'`{key}` has dtype {feature["dtype"]}; a camera has dtype image or video')
    shape = frame_shape(feature)
    channels = (3,) if feature['dtype'] == VIDEO else tuple(PIL_MODES)
    depth = (feature.get('info') or {}).get('is_depth_map')
    if shape is None or shape[2] not in channels or depth:
      raise reject(rejection.UNSUPPORTED_FEATURE,
                   f'camera `{key}` ({feature["dtype"]}) has shape {feature.get("shape")} '
                   f'(names {feature.get("names")}){" and is a depth map" if depth else ""}; '
                   f'readable are [H, W, C] {feature["dtype"]}s with C in {channels}')
    field = field_name(key)
    if field in fields:
      raise reject(rejection.UNSUPPORTED_FEATURE,
                   f'camera `{key}` and {fields[field]} would both be the observation field '
                   f'`{field}`; read one of them (--lerobot_image_columns)')
    fields[field] = f'`{key}`'
    cameras.append(Camera(key, field, feature['dtype'], shape))
  return tuple(cameras)


def observation_spec(state_dim: int, cameras: Sequence[Camera]) -> sc.ObservationSpec:
  """What the episodes' observations are: D (no camera read) or the dict's fields."""
  if not cameras:
    return state_dim
  return tuple(sorted([sc.ObservationField(STATE_FIELD, (state_dim,))]
                      + [sc.ObservationField(c.field, c.shape) for c in cameras]))


def check_shape(frames: np.ndarray, camera: Camera, where: str, reject: Reject) -> np.ndarray:
  if frames.shape[1:] != camera.shape:
    raise reject(rejection.FEATURE_MISMATCH,
                 f'camera `{camera.key}` {where}: decoded frames are '
                 f'{"x".join(map(str, frames.shape[1:]))}; meta/info.json says '
                 f'{"x".join(map(str, camera.shape))} (H x W x C)')
  return frames


def decode_images(values: Sequence[Optional[dict]], camera: Camera, where: str,
                  reject: Reject) -> np.ndarray:
  """[T, H, W, C] uint8 from the {bytes, path} structs of an image camera's rows, in frame
  order (row t is frame t)."""
  from PIL import Image, UnidentifiedImageError  # Pillow; only image cameras need it.
  height, width, channels = camera.shape
  out = np.empty((len(values), height, width, channels), np.uint8)
  for row, value in enumerate(values):
    data = value.get('bytes') if isinstance(value, dict) else None
    if not data:
      path = value.get('path') if isinstance(value, dict) else None
      raise reject(rejection.UNDECODABLE_IMAGE,
                   f'camera `{camera.key}` {where}: frame {row} has no image '
                   f'bytes (path {path!r}); images must be embedded in the parquet rows')
    try:
      with Image.open(io.BytesIO(data)) as image:
        array = np.asarray(image.convert(PIL_MODES[channels]))
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, ...
      why = ('no image format recognized in its bytes' if isinstance(e, UnidentifiedImageError)
             else f'{type(e).__name__}: {e}')
      raise reject(rejection.UNDECODABLE_IMAGE,
                   f'camera `{camera.key}` {where}: frame {row} is not a '
                   f'decodable image ({why})')
    array = array.reshape(array.shape[:2] + (channels,))
    check_shape(array[None], camera, f'{where}, frame {row}', reject)
    out[row] = array
  return out


def decode_video(video, queries: np.ndarray, tolerance_s: float, camera: Camera, where: str,
                 reject: Reject) -> np.ndarray:
  """[T, H, W, 3] uint8: the frames of `video` (a path or binary file object) nearest to the
  `queries` (seconds in the file's time line), by `video_frames.frames_at`."""
  try:
    frames = video_frames.frames_at(video, queries, tolerance_s)
  except video_frames.UndecodableVideo as e:
    raise reject(rejection.UNDECODABLE_VIDEO,
                 f'camera `{camera.key}` {where}: the video cannot be decoded ({e})')
  except video_frames.FramesNotMatched as e:
    shown = ', '.join(map(str, e.missing[:10])) + (' ...' if e.missing.size > 10 else '')
    raise reject(rejection.VIDEO_TIMESTAMP_MISMATCH,
                 f'camera `{camera.key}` {where}: no video frame within {tolerance_s:g} s of the '
                 f'timestamp of frame(s) {shown} ({e})')
  return check_shape(frames, camera, where, reject)
