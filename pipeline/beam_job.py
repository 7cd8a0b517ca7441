"""The Beam graph of one round: read -> (group steps by episode) -> validate/relabel/encode ->
write shards -> collect receipts. Thin wiring around `stages`; no logic of its own."""

from __future__ import annotations

import apache_beam as beam

from pipeline import stages


class _WriteShards(beam.DoFn):
  """Streams episodes into per-bundle TFRecord files. Receipts are emitted from `process`
  (runners such as Dask drop outputs emitted in `finish_bundle`), the file is closed in
  `finish_bundle`, and memory holds one episode at a time."""

  def __init__(self, job: stages.JobSpec):
    self._job = job
    self._writer = None

  def start_bundle(self):
    self._writer = stages.ShardWriter(self._job)

  def process(self, episode: stages.EncodedEpisode):
    yield self._writer.write(episode)

  def finish_bundle(self):
    self._writer.close()


def _single_key(receipt: dict):
  return None, receipt


def read_episodes(pipeline: beam.Pipeline, files: list[stages.InputFile],
                  job: stages.JobSpec):
  """Raw log files and LeRobot datasets -> PCollection of RawEpisode (step streams grouped by
  episode, LeRobot datasets split into episodes); None when there is no input file."""
  npz = [f for f in files if f.kind == 'npz']
  step_streams = [f for f in files if f.kind == 'steps']
  lerobot = [f for f in files if f.kind == 'lerobot']
  episodes = []
  if npz:
    episodes.append(
        pipeline
        | 'ListEpisodeFiles' >> beam.Create(npz)
        # Spread files over workers before the expensive per-episode work.
        | 'Spread' >> beam.Reshuffle()
        | 'ReadEpisodeFiles' >> beam.FlatMap(stages.read_npz, job))
  if step_streams:
    episodes.append(
        pipeline
        | 'ListStepStreams' >> beam.Create(step_streams)
        | 'ReadStepRecords' >> beam.FlatMap(stages.read_step_records, job)
        | 'GroupByEpisode' >> beam.GroupByKey()
        | 'AssembleEpisodes' >> beam.FlatMap(stages.assemble, job))
  if lerobot:
    episodes.append(
        pipeline
        | 'ListLeRobotDatasets' >> beam.Create(lerobot)
        | 'ListLeRobotEpisodes' >> beam.FlatMap(stages.list_lerobot_episodes, job)
        # One dataset lists many episodes: spread them, not the datasets, over workers.
        | 'SpreadLeRobotEpisodes' >> beam.Reshuffle()
        | 'ReadLeRobotEpisodes' >> beam.FlatMap(stages.read_lerobot_episode, job))
  if not episodes:
    return None
  return episodes | 'AllEpisodes' >> beam.Flatten()


def build(pipeline: beam.Pipeline, files: list[stages.InputFile], job: stages.JobSpec) -> None:
  episodes = read_episodes(pipeline, files, job)
  if episodes is None:
    return
  (episodes
   | 'Relabel' >> beam.FlatMap(stages.convert, job)
   | 'WriteShards' >> beam.ParDo(_WriteShards(job))
   | 'KeyReceipts' >> beam.Map(_single_key)
   | 'GatherReceipts' >> beam.GroupByKey()
   | 'WriteReceipts' >> beam.Map(stages.write_receipts, job))
