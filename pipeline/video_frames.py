"""Frames of a video file at given timestamps: the matching rule, and PyAV decoding of a window.

The rule is LeRobot's (`lerobot.datasets.video_utils.decode_video_frames`, both backends): a
queried timestamp gets the decoded frame whose presentation time (pts x the stream's time base)
is nearest to it, and that distance must be strictly below a tolerance (LeRobot's `tolerance_s`,
1e-4 s by default); a query without such a frame is an error, never a guess. Of two frames
equally near, the earlier wins. Two queries may get the same frame (LeRobot allows it; with a
tolerance below half the frame interval it cannot happen).

Only the window [first query - tolerance, last query + tolerance] is decoded: the decoder seeks
to the key frame at or before its start, as LeRobot's PyAV backend does, so an episode in the
middle of a file that holds many (LeRobot v3.0) costs its own frames plus at most one GOP, and
each frame goes straight into the output array. Memory is one episode's frames, whatever the
length of the file. Frames are converted to RGB by PyAV (`to_ndarray(format='rgb24')`), as in
LeRobot's PyAV backend.
"""

from __future__ import annotations

from typing import BinaryIO, Optional, Union

import numpy as np


class UndecodableVideo(Exception):
  """The file cannot be opened or decoded as a video (FFmpeg's message in the text)."""


class FramesNotMatched(Exception):
  """Some queried timestamps have no decoded frame within the tolerance."""

  def __init__(self, missing: np.ndarray, queries: np.ndarray, nearest: np.ndarray,
               decoded: tuple[Optional[float], Optional[float], int]):
    self.missing = missing  # indices of the queries without a frame
    self.queries = queries
    self.nearest = nearest  # distance to the nearest decoded frame (inf: none decoded)
    self.decoded = decoded  # (first, last, count) of the frames decoded in the window
    first = int(missing[0])
    window = ('no frame decoded' if decoded[0] is None else
              f'{decoded[2]} frames decoded in [{decoded[0]:.6f}, {decoded[1]:.6f}] s')
    super().__init__(
        f'{missing.size} of {queries.size} timestamps have no frame within the tolerance; '
        f'the first is query {first} at {queries[first]:.6f} s, the nearest frame '
        f'{nearest[first]:.6f} s away; {window}')


class NearestFrames:
  """The matching rule on frames offered one at a time (pure; no decoding).

  `offer(t, image)` with frames in any order; `frames()` then gives, for each query, its frame,
  or raises `FramesNotMatched`. Only the chosen frames are kept (one array of the queries'
  length), so memory does not grow with the number of frames offered.
  """

  def __init__(self, queries: np.ndarray, tolerance_s: float):
    self.queries = np.asarray(queries, np.float64)
    self.tolerance_s = float(tolerance_s)
    self._best = np.full(self.queries.shape, np.inf)
    self._out: Optional[np.ndarray] = None
    self._first = self._last = None
    self._count = 0

  def offer(self, t: float, image: np.ndarray) -> None:
    if self._out is None:
      self._out = np.zeros(self.queries.shape + image.shape, image.dtype)
    elif image.shape != self._out.shape[1:]:
      raise ValueError(f'frame at {t:.6f} s has shape {image.shape}; earlier frames '
                       f'{self._out.shape[1:]}')
    self._first = t if self._first is None else min(self._first, t)
    self._last = t if self._last is None else max(self._last, t)
    self._count += 1
    distance = np.abs(self.queries - t)
    closer = distance < self._best  # strict: of equally near frames the first offered stays
    if closer.any():
      self._best[closer] = distance[closer]
      self._out[closer] = image

  def frames(self) -> np.ndarray:
    missing = np.flatnonzero(~(self._best < self.tolerance_s))
    if missing.size or self._out is None:
      raise FramesNotMatched(missing if missing.size else np.arange(self.queries.size),
                             self.queries, self._best, (self._first, self._last, self._count))
    return self._out


def frames_at(video: Union[str, BinaryIO], queries: np.ndarray, tolerance_s: float) -> np.ndarray:
  """[N, H, W, 3] uint8 RGB frames of `video` (a path or a binary file object) at the N
  timestamps `queries` (seconds in the file's own time line), by the rule above.

  Raises `UndecodableVideo` or `FramesNotMatched`.
  """
  import av  # PyAV; imported here so that readers of vector data never load FFmpeg.
  queries = np.asarray(queries, np.float64)
  matcher = NearestFrames(queries, tolerance_s)
  start = float(queries.min()) - tolerance_s
  end = float(queries.max()) + tolerance_s
  try:
    with av.open(video) as container:
      if not container.streams.video:
        raise UndecodableVideo('the file has no video stream')
      stream = container.streams.video[0]
      # The key frame at or before the window (one tick early, as LeRobot seeks).
      container.seek(max(0, int(round(start / stream.time_base)) - 1), backward=True,
                     any_frame=False, stream=stream)
      for frame in container.decode(stream):
        if frame.pts is None:
          continue
        t = float(frame.pts * stream.time_base)
        if t >= end:
          break
        if t > start:
          matcher.offer(t, frame.to_ndarray(format='rgb24'))
  except av.error.FFmpegError as e:
    raise UndecodableVideo(f'{type(e).__name__}: {e}') from e
  except ValueError as e:  # frames of different shapes in one stream
    raise UndecodableVideo(str(e)) from e
  return matcher.frames()
