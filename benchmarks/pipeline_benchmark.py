r"""Pipeline benchmark: the Beam round job (DirectRunner, 2 worker processes) against a bare
single-process loop that reads the same files and writes the same TFRecord examples.

  python benchmarks/pipeline_benchmark.py [--episodes=2000] [--steps=200] [--append_rounds=10]

Prints, from one run: steps/s and peak memory (whole process tree, sampled) of both at two
episode counts, and the time of appending round 10 against round 1 for equal rounds. Each job
runs in a fresh subprocess so that memory readings do not mix.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import psutil

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

OBS_DIM, ACT_DIM = 45, 24  # Adroit pen.


def _random_episode(rng, steps: int, i: int):
  """(states [T+1, 45], actions [T, 24], flags [T]): one takeover in odd episodes."""
  obs = rng.normal(size=(steps + 1, OBS_DIM)).astype(np.float32)
  act = rng.uniform(-1, 1, size=(steps, ACT_DIM)).astype(np.float32)
  flags = np.zeros(steps, bool)
  if i % 2:
    start = rng.integers(0, steps - 10)
    flags[start:start + rng.integers(1, 10)] = True
  return obs, act, flags


def generate(directory: str, episodes: int, steps: int, seed: int) -> None:
  """Raw npz episodes with a random takeover in half of them."""
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(seed)
  for i in range(episodes):
    obs, act, flags = _random_episode(rng, steps, i)
    data = {'observations': obs, 'actions': act, 'interventions': flags,
            'policy_actions': act, 'metadata': np.array(json.dumps({'episode_id': f'{seed}-{i}'}))}
    np.savez(os.path.join(directory, f'ep{i:06d}.npz'), **data)


def generate_camera_episodes(directory: str, episodes: int, steps: int, seed: int,
                             size: int = 64) -> None:
  """Raw format v2 episodes: a 45-D state and one `size` x `size` RGB camera (uint8), takeovers
  in half of them. Frames are smooth (a gradient and a moving square, as a rendered scene is,
  not noise that PNG cannot compress)."""
  from pipeline import raw_writer
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(seed)
  ys, xs = np.mgrid[0:size, 0:size]
  background = np.stack([xs * 255 // size, ys * 255 // size, np.full_like(xs, 96)], -1)
  for i in range(episodes):
    frames = np.repeat(background[None], steps + 1, axis=0).astype(np.uint8)
    for t in range(steps + 1):
      x, y = (t + 7 * i) % (size - 8), (3 * t + i) % (size - 8)
      frames[t, y:y + 8, x:x + 8] = (255, 200, 0)
    state, act, flags = _random_episode(rng, steps, i)
    raw_writer.write_npz_episode(os.path.join(directory, f'ep{i:06d}.npz'),
                                 {'state': state, 'camera': frames}, act,
                                 {'episode_id': f'{seed}-{i}'}, interventions=flags,
                                 policy_actions=act)


def image_benchmark(work: str, args) -> None:
  """Episodes with one 64x64 camera: steps/s and peak memory of both engines at two round
  sizes (memory should stay flat: images are streamed one episode at a time)."""
  print(f'# images: episodes of {args.steps} steps, 45-D state + one 64x64x3 camera '
        '(raw format v2, PNG in the dataset)')
  sizes = [int(n) for n in args.image_episodes.split(',')]
  peaks = {}
  for n in sizes:
    input_dir = os.path.join(work, f'img{n}')
    generate_camera_episodes(input_dir, n, args.steps, seed=70_000 + n)
    for engine, label in ENGINES[:2]:
      r = measured(engine, input_dir, os.path.join(work, f'img_out_{engine}{n}'), 0)
      peaks[(engine, n)] = r['peak_rss_mib']
      print(f'  {n:>5} episodes {label:>24}: {r["seconds"]:6.1f} s, '
            f'{r["steps"] / r["seconds"]:7.0f} steps/s, peak {r["peak_rss_mib"]:5.0f} MiB',
            flush=True)
    shutil.rmtree(input_dir)
  for engine, label in ENGINES[:2]:
    print(f'  {label}: peak memory at {sizes[-1]} / at {sizes[0]} episodes: '
          f'{peaks[(engine, sizes[-1])] / peaks[(engine, sizes[0])]:.2f}x '
          f'(flat = 1.0; data grew {sizes[-1] / sizes[0]:.0f}x)')


def job(engine: str, input_dir: str, output_dir: str, round_index: int) -> None:
  """Child process: run one round and print its wall time and step count.

  engine: 'plain' (bare loop), 'beam' (DirectRunner, 2 worker processes) or 'dask' (Beam's Dask
  runner on a local dask.distributed cluster of 2 worker processes, started inside the timing).
  """
  from pipeline import round_job
  start = time.perf_counter()
  if engine == 'dask':
    import distributed
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
      result = round_job.run_round(
          [os.path.join(input_dir, '*.npz')], output_dir, 'bench', round_index,
          beam_options=['--runner=apache_beam.runners.dask.dask_runner.DaskRunner',
                        f'--dask_client_address={cluster.scheduler_address}'])
  else:
    result = round_job.run_round([os.path.join(input_dir, '*.npz')], output_dir, 'bench',
                                 round_index, runner=engine)
  print(json.dumps({'seconds': time.perf_counter() - start,
                    'steps': result.report['transitions'],
                    'episodes': result.report['episodes_written']}))


def measured(engine: str, input_dir: str, output_dir: str, round_index: int) -> dict:
  """Runs `job` in a subprocess; samples the RSS of it and all its descendants every 50 ms."""
  cmd = [sys.executable, os.path.abspath(__file__), '--child', engine, input_dir, output_dir,
         str(round_index)]
  proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  peak = [0]
  parent = psutil.Process(proc.pid)

  def sample():
    while proc.poll() is None:
      try:
        total = sum(p.memory_info().rss for p in [parent] + parent.children(recursive=True))
        peak[0] = max(peak[0], total)
      except psutil.Error:
        pass
      time.sleep(0.05)

  sampler = threading.Thread(target=sample, daemon=True)
  sampler.start()
  out, _ = proc.communicate()
  sampler.join()
  if proc.returncode:
    raise RuntimeError(f'{engine} job failed ({proc.returncode})')
  result = json.loads(out.strip().splitlines()[-1])
  result['peak_rss_mib'] = peak[0] / 2**20
  return result


ENGINES = (('plain', 'bare loop (1 process)'), ('beam', 'Beam, 2 workers'),
           ('dask', 'Beam on Dask, 2 workers'))


def throughput_benchmark(work: str, args) -> None:
  """Steps/s and peak memory of the engines on the same files, at two episode counts; at the
  larger count the engines run alternately `repeats` times and medians are compared."""
  print(f'{"episodes":>8} {"engine":>24} {"seconds":>8} {"steps/s":>9} {"peak MiB":>9}')
  rows = {}
  for n, repeats in ((args.small_episodes, 1), (args.episodes, args.repeats)):
    input_dir = os.path.join(work, f'in{n}')
    generate(input_dir, n, args.steps, seed=n)
    for i in range(repeats):
      for engine, label in ENGINES:
        r = measured(engine, input_dir, os.path.join(work, f'out_{engine}{n}_{i}'), 0)
        rows.setdefault((n, engine), []).append(r)
        print(f'{n:>8} {label:>24} {r["seconds"]:>8.1f} {r["steps"] / r["seconds"]:>9.0f} '
              f'{r["peak_rss_mib"]:>9.0f}', flush=True)
    shutil.rmtree(input_dir)
  big, small = args.episodes, args.small_episodes

  def median(n, engine, key):
    return float(np.median([r[key] for r in rows[(n, engine)]]))

  for engine, label in ENGINES[1:]:
    speedup = median(big, 'plain', 'seconds') / median(big, engine, 'seconds')
    print(f'{label} / bare loop at {big} episodes, median of {args.repeats} alternating runs: '
          f'{speedup:.2f}x (goal >= 1.5x)')
  for engine, label in ENGINES:
    growth = median(big, engine, 'peak_rss_mib') / median(small, engine, 'peak_rss_mib')
    print(f'{label}: peak memory at {big} / at {small} episodes: {growth:.2f}x '
          f'(flat = 1.0; data grew {big / small:.0f}x)')


def fit_fixed_and_per_episode(sizes, seconds) -> tuple[float, float]:
  """Least-squares (start-up s, s per episode) of seconds = start-up + episodes * per_episode."""
  slope, intercept = np.polyfit(np.asarray(sizes, float), np.asarray(seconds, float), 1)
  return float(intercept), float(slope)


def size_for_speedup(plain: tuple[float, float], beam: tuple[float, float],
                     target: float) -> float:
  """The episode count from which the Beam job is `target` times as fast as the bare loop, under
  the two (start-up, per-episode) fits; inf where even an endless round would not get there."""
  (a_plain, b_plain), (a_beam, b_beam) = plain, beam
  if b_plain <= target * b_beam:
    return float('inf')
  return max(0.0, (target * a_beam - a_plain) / (b_plain - target * b_beam))


def scaling_benchmark(work: str, args) -> None:
  """Where the Beam job's time goes as rounds grow: each engine timed at several sizes (sizes
  alternate engines), fitted as start-up + episodes x per-episode cost; prints the start-up share
  at each size and the size from which Beam reaches 1.5x the bare loop."""
  sizes = [int(n) for n in args.scaling_sizes.split(',')]
  print(f'# scaling: episodes of {args.steps} steps at sizes {sizes}')
  seconds = {'plain': [], 'beam': []}
  for n in sizes:
    input_dir = os.path.join(work, f'scale{n}')
    generate(input_dir, n, args.steps, seed=50_000 + n)
    for engine in seconds:
      r = measured(engine, input_dir, os.path.join(work, f'scale_out_{engine}{n}'), 0)
      seconds[engine].append(r['seconds'])
      print(f'  {n:>6} episodes {engine:>5}: {r["seconds"]:6.1f} s', flush=True)
    shutil.rmtree(input_dir)
  fits = {e: fit_fixed_and_per_episode(sizes, s) for e, s in seconds.items()}
  for engine, (fixed, per_episode) in fits.items():
    print(f'  {engine}: start-up {fixed:.1f} s + {1000 * per_episode:.1f} ms per episode')
  for n, t_plain, t_beam in zip(sizes, seconds['plain'], seconds['beam']):
    print(f'  {n:>6} episodes: Beam/bare speedup {t_plain / t_beam:.2f}x, Beam start-up share '
          f'{min(1.0, fits["beam"][0] / t_beam):.0%}')
  asymptote = fits['plain'][1] / fits['beam'][1]
  crossover = size_for_speedup(fits['plain'], fits['beam'], 1.5)
  print(f'  Beam/bare as rounds grow without bound: {asymptote:.2f}x; 1.5x from '
        + ('never' if crossover == float('inf') else f'~{crossover:.0f} episodes')
        + f' of {args.steps} steps')


def append_benchmark(work: str, args) -> None:
  """Round 1 appended to an empty dataset against round N appended to a dataset of N-1 equal
  rounds, measured alternately so that machine drift hits both alike."""
  print(f'# appending equal rounds of {args.append_episodes} episodes (Beam, 2 workers)')
  big = os.path.join(work, 'append')

  def append(out, round_index, seed):
    input_dir = os.path.join(work, f'round_in{seed}')
    generate(input_dir, args.append_episodes, args.steps, seed=seed)
    seconds = measured('beam', input_dir, out, round_index)['seconds']
    shutil.rmtree(input_dir)
    return seconds

  for r in range(1, args.append_rounds):
    print(f'  round {r} of the growing dataset: {append(big, r, 10_000 + r):.1f} s', flush=True)
  first, late = [], []
  for i in range(args.repeats):
    first.append(append(os.path.join(work, f'fresh{i}'), 1, 20_000 + i))
    late.append(append(big, args.append_rounds + i, 30_000 + i))
    print(f'  pair {i}: round 1 (empty dataset) {first[-1]:.1f} s, round '
          f'{args.append_rounds + i} {late[-1]:.1f} s', flush=True)
  print(f'round >= {args.append_rounds} / round 1 time (median of {args.repeats} alternating '
        f'pairs): {np.median(late) / np.median(first):.2f}x (goal <= 1.2x)')


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--episodes', type=int, default=2000)
  parser.add_argument('--small_episodes', type=int, default=500)
  parser.add_argument('--steps', type=int, default=200)
  parser.add_argument('--append_rounds', type=int, default=10)
  parser.add_argument('--append_episodes', type=int, default=200)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--scaling_sizes', default='1,500,2000,6000')
  parser.add_argument('--image_episodes', default='25,100')
  parser.add_argument('--parts', default='throughput,scaling,images,append')
  parser.add_argument('--child', nargs=4, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    engine, input_dir, output_dir, round_index = args.child
    return job(engine, input_dir, output_dir, int(round_index))

  work = tempfile.mkdtemp(prefix='rlif_pipeline_bench_')
  try:
    print(f'# pipeline benchmark, {datetime.date.today()}, {platform.processor() or "cpu"}, '
          f'{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB')
    print(f'# episodes of {args.steps} steps, obs {OBS_DIM}-D, action {ACT_DIM}-D, npz files')
    if 'throughput' in args.parts:
      throughput_benchmark(work, args)
    if 'scaling' in args.parts:
      scaling_benchmark(work, args)
    if 'images' in args.parts:
      image_benchmark(work, args)
    if 'append' in args.parts:
      append_benchmark(work, args)
  finally:
    shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
  main()
