r"""Critic updates per second of the RLPD learner on Adroit-pen shapes, against stock TF-Agents SAC.

  python benchmarks/trainer_benchmark.py [--seconds=15] [--rounds=3] [--configs=rlpd_g1,sac]

Shapes: observation 45-D, action 24-D, batch 256 per critic update. RLPD: E=10 critics, min over
M=2, critic and actor MLPs 3x256. SAC (reference): TF-Agents `SacAgent` with 2 critics
(`CriticNetwork`, joint 256x256) and `ActorDistributionNetwork` 256x256 (tanh-normal head).
Pixels (`rlpd_g1_pixels64`): the same RLPD on a dict observation, one 64x64x3 uint8 camera and
the 45-D state, with configs/rlif.toml's encoder (four 3x3 convolutions of 32 channels, strides
2, 1, 1, 1, then 50 features) shared by the critics and the actor, and random shifts of 4 px.

FLOPs are counted analytically, matmuls only (2*in*out*B per dense layer; LayerNorm, activations,
losses and optimizer updates are not counted); a 3x3 convolution counts 2*9*in*out per output
pixel. Backward = 2x forward, so a trained network costs 3x its forward (the encoder's first
convolution needs no input gradient, so it costs a little less than that). Per critic update:
online critics forward+backward on (s, a), target critics forward on (s', a') (RLPD evaluates
only the M sampled target critics; SAC both), and the actor forward on s' that samples a'. Per
train call: G critic updates plus one actor update = actor forward+backward on s and the critics
forward plus the backward to the action (the critics' weight gradients are not computed, so that
is 2x the critics' forward); SAC's temperature loss samples the actor once more (one more actor
forward). Achieved GFLOP/s = FLOPs of a train call
x calls/s, compared with this machine's float32 matmul peak measured in the same run
(best of several 2048x2048x2048 tf.linalg.matmul).

Each config is timed for `--rounds` slices of `--seconds`/`--rounds` seconds, interleaved with
the other configs and with the peak measurement, after a warm-up (which includes tracing and XLA
compilation); a config's rate is its best slice (the machine may be shared, and the peak is a
best too); the median slice is shown beside it.
"""

import argparse
import datetime
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf

OBS_DIM, ACT_DIM, BATCH = 45, 24, 256
PIXELS = 64  # the camera of the pixel row: PIXELS x PIXELS x 3
PIXEL_ENCODER = {'filters': 32, 'strides': (2, 1, 1, 1), 'features': 50, 'image_shift': 4}
HIDDEN = (256, 256, 256)
SAC_HIDDEN = (256, 256)
NUM_CRITICS, NUM_MIN_CRITICS = 10, 2


# ----------------------------------------------------------------------------------------------
# FLOPs


def forward_flops(sizes, batch=BATCH):
  """Matmul FLOPs of one MLP forward pass with layer sizes (in, h1, ..., out)."""
  return sum(2 * batch * fan_in * fan_out for fan_in, fan_out in zip(sizes[:-1], sizes[1:]))


def rlpd_flops(critic_updates_per_step):
  """(FLOPs of one critic update, FLOPs of one train call)."""
  critic = forward_flops((OBS_DIM + ACT_DIM,) + HIDDEN + (1,))
  actor = forward_flops((OBS_DIM,) + HIDDEN + (2 * ACT_DIM,))
  critic_update = 3 * NUM_CRITICS * critic + NUM_MIN_CRITICS * critic + actor
  actor_update = 3 * actor + 2 * NUM_CRITICS * critic
  return critic_update, critic_updates_per_step * critic_update + actor_update


def encoder_flops(size=PIXELS, channels=3, batch=BATCH, encoder=None):
  """Matmul FLOPs of one encoder forward pass on a batch of size x size x channels images."""
  encoder = dict(PIXEL_ENCODER, **(encoder or {}))
  flops, height, width, fan_in = 0, size, size, channels
  for stride in encoder['strides']:
    height, width = (height - 3) // stride + 1, (width - 3) // stride + 1
    flops += 2 * batch * height * width * 9 * fan_in * encoder['filters']
    fan_in = encoder['filters']
  return flops + 2 * batch * height * width * fan_in * encoder['features']


def rlpd_pixel_flops(critic_updates_per_step):
  """(FLOPs of one critic update, FLOPs of one train call) with the camera encoder: the critics
  and the actor take its 50 features and the 45-D state. Per critic update: the encoder forward
  and backward on s, the target encoder on s', the online encoder and the actor on s' (a'). The
  actor update encodes s once more (no backward into the encoder)."""
  features = PIXEL_ENCODER['features'] + OBS_DIM
  critic = forward_flops((features + ACT_DIM,) + HIDDEN + (1,))
  actor = forward_flops((features,) + HIDDEN + (2 * ACT_DIM,))
  encoder = encoder_flops()
  critic_update = (3 * NUM_CRITICS * critic + 3 * encoder + NUM_MIN_CRITICS * critic + encoder
                   + encoder + actor)
  actor_update = encoder + 3 * actor + 2 * NUM_CRITICS * critic
  return critic_update, critic_updates_per_step * critic_update + actor_update


def sac_flops():
  critic = forward_flops((OBS_DIM + ACT_DIM,) + SAC_HIDDEN + (1,))
  actor = forward_flops((OBS_DIM,) + SAC_HIDDEN + (2 * ACT_DIM,))
  critic_update = 3 * 2 * critic + 2 * critic + actor
  actor_update = 3 * actor + 2 * 2 * critic + actor  # + the temperature loss's actor sample.
  return critic_update, critic_update + actor_update


# ----------------------------------------------------------------------------------------------
# Configs: each gives a zero-argument train call and its counts.


def random_transitions(size, seed=0):
  from trainer.transition import Transition  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  return Transition(
      observation=tf.constant(rng.normal(size=(size, OBS_DIM)), tf.float32),
      action=tf.constant(rng.uniform(-1, 1, size=(size, ACT_DIM)), tf.float32),
      reward=tf.constant(rng.normal(size=size), tf.float32),
      discount=tf.constant(rng.integers(0, 2, size=size), tf.float32),
      next_observation=tf.constant(rng.normal(size=(size, OBS_DIM)), tf.float32),
      demonstrated=tf.constant(rng.integers(0, 2, size=size), tf.float32))


def make_rlpd(critic_updates_per_step, use_xla, fused_updates=True, autodiff_layer_norm=False):
  """An RLPD train call on Adroit-pen shapes. `autodiff_layer_norm`: the LayerNorm before its
  closed-form gradient (networks.layer_norm_autodiff), swapped in while the step is traced."""
  from trainer import networks  # pylint: disable=g-import-not-at-top
  from trainer.rlpd_agent import RlpdAgent  # pylint: disable=g-import-not-at-top
  agent = RlpdAgent.from_dims(
      OBS_DIM, ACT_DIM, num_critics=NUM_CRITICS, num_min_critics=NUM_MIN_CRITICS,
      critic_hidden=HIDDEN, actor_hidden=HIDDEN, critic_updates_per_step=critic_updates_per_step,
      use_xla=use_xla, fused_updates=fused_updates, seed=0)
  batch = random_transitions(critic_updates_per_step * BATCH)
  original = networks.layer_norm
  if autodiff_layer_norm:
    networks.layer_norm = networks.layer_norm_autodiff
  try:
    agent.train(batch).loss.numpy()  # traces now, with the chosen LayerNorm
  finally:
    networks.layer_norm = original
  return lambda: agent.train(batch).loss


def random_pixel_transitions(size, pixels=PIXELS, seed=0):
  """Random transitions whose observations are {camera: uint8 [pixels, pixels, 3], state}."""
  rng = np.random.default_rng(seed)
  flat = random_transitions(size, seed)

  def observation(state):
    return {'camera': tf.constant(rng.integers(0, 256, (size, pixels, pixels, 3), np.uint8)),
            'state': state}

  return flat._replace(observation=observation(flat.observation),
                       next_observation=observation(flat.next_observation))


def make_rlpd_pixels(critic_updates_per_step, use_xla=False, pixels=PIXELS, batch=BATCH,
                     encoder=None, hidden=HIDDEN, num_critics=NUM_CRITICS):
  """An RLPD train call on a camera of pixels x pixels x 3 and the 45-D state (the pixel
  learner); the smaller arguments are for the test that checks the row runs."""
  from pipeline import schema as sc  # pylint: disable=g-import-not-at-top
  from trainer.rlpd_agent import RlpdAgent  # pylint: disable=g-import-not-at-top
  spec = (sc.ObservationField('camera', (pixels, pixels, 3)),
          sc.ObservationField('state', (OBS_DIM,)))
  agent = RlpdAgent.from_dims(
      spec, ACT_DIM, num_critics=num_critics, num_min_critics=NUM_MIN_CRITICS,
      critic_hidden=hidden, actor_hidden=hidden, critic_updates_per_step=critic_updates_per_step,
      use_xla=use_xla, encoder=dict(PIXEL_ENCODER, **(encoder or {})), seed=0)
  transitions = random_pixel_transitions(critic_updates_per_step * batch, pixels)
  agent.train(transitions).loss.numpy()  # traces now
  return lambda: agent.train(transitions).loss


def make_sac(use_xla):
  from tf_agents.agents.ddpg import critic_network  # pylint: disable=g-import-not-at-top
  from tf_agents.agents.sac import sac_agent
  from tf_agents.agents.sac import tanh_normal_projection_network
  from tf_agents.networks import actor_distribution_network
  from tf_agents.trajectories import trajectory
  from trainer.networks import specs_from_dims
  time_step_spec, action_spec = specs_from_dims(OBS_DIM, ACT_DIM)
  critic = critic_network.CriticNetwork(
      (time_step_spec.observation, action_spec), joint_fc_layer_params=SAC_HIDDEN,
      kernel_initializer='glorot_uniform', last_kernel_initializer='glorot_uniform')
  actor = actor_distribution_network.ActorDistributionNetwork(
      time_step_spec.observation, action_spec, fc_layer_params=SAC_HIDDEN,
      continuous_projection_net=tanh_normal_projection_network.TanhNormalProjectionNetwork)
  agent = sac_agent.SacAgent(
      time_step_spec, action_spec, critic_network=critic, actor_network=actor,
      actor_optimizer=tf.keras.optimizers.Adam(3e-4),
      critic_optimizer=tf.keras.optimizers.Adam(3e-4),
      alpha_optimizer=tf.keras.optimizers.Adam(3e-4),
      target_update_tau=0.005, gamma=0.99,
      train_step_counter=tf.Variable(0, dtype=tf.int64))
  agent.initialize()
  rng = np.random.default_rng(0)

  def seq(shape, dtype=tf.float32):
    return tf.constant(rng.uniform(-1, 1, size=(BATCH, 2) + shape), dtype)

  experience = trajectory.Trajectory(
      step_type=tf.ones([BATCH, 2], tf.int32), observation=seq((OBS_DIM,)),
      action=seq((ACT_DIM,)), policy_info=(), next_step_type=tf.ones([BATCH, 2], tf.int32),
      reward=seq(()), discount=tf.ones([BATCH, 2]))
  train = tf.function(agent.train, jit_compile=use_xla)
  return lambda: train(experience).loss


CONFIGS = {
    # name: (label, factory, critic updates per call, (flops per critic update, per call))
    'rlpd_g1': ('RLPD E=10 M=2 G=1', lambda: make_rlpd(1, False), 1, rlpd_flops(1)),
    # Before trainer/fused_updates.py: Keras' per-op Adam and Polyak updates.
    'rlpd_g1_keras': ('RLPD E=10 M=2 G=1 Keras updates', lambda: make_rlpd(1, False, False), 1,
                      rlpd_flops(1)),
    # Before the closed-form LayerNorm gradient (networks._normalize): autodiff op by op.
    'rlpd_g1_autodiff_ln': ('RLPD E=10 M=2 G=1 autodiff LayerNorm',
                            lambda: make_rlpd(1, False, autodiff_layer_norm=True), 1,
                            rlpd_flops(1)),
    'rlpd_g1_xla': ('RLPD E=10 M=2 G=1 XLA', lambda: make_rlpd(1, True), 1, rlpd_flops(1)),
    'rlpd_g5': ('RLPD E=10 M=2 G=5', lambda: make_rlpd(5, False), 5, rlpd_flops(5)),
    'rlpd_g5_keras': ('RLPD E=10 M=2 G=5 Keras updates', lambda: make_rlpd(5, False, False), 5,
                      rlpd_flops(5)),
    'rlpd_g5_autodiff_ln': ('RLPD E=10 M=2 G=5 autodiff LayerNorm',
                            lambda: make_rlpd(5, False, autodiff_layer_norm=True), 5,
                            rlpd_flops(5)),
    'rlpd_g5_xla': ('RLPD E=10 M=2 G=5 XLA', lambda: make_rlpd(5, True), 5, rlpd_flops(5)),
    # The pixel learner: one 64x64x3 camera (encoder shared by critics and actor) + the state.
    'rlpd_g1_pixels64': ('RLPD E=10 M=2 G=1 pixels 64x64', lambda: make_rlpd_pixels(1), 1,
                         rlpd_pixel_flops(1)),
    'sac': ('TF-Agents SacAgent (2 critics)', lambda: make_sac(False), 1, sac_flops()),
    'sac_xla': ('TF-Agents SacAgent (2 critics) XLA', lambda: make_sac(True), 1, sac_flops()),
}


# ----------------------------------------------------------------------------------------------
# Timing


def matmul_peak_gflops(n=2048, repeats=5, trials=3):
  """Best float32 GFLOP/s of an n x n x n tf.linalg.matmul (compiled, on this machine)."""
  a = tf.random.stateless_normal([n, n], seed=[1, 2])
  b = tf.random.stateless_normal([n, n], seed=[3, 4])
  matmul = tf.function(tf.linalg.matmul)
  matmul(a, b).numpy()
  best = float('inf')
  for _ in range(trials):
    start = time.perf_counter()
    for _ in range(repeats):
      result = matmul(a, b)
    result.numpy()
    best = min(best, (time.perf_counter() - start) / repeats)
  return 2 * n ** 3 / best / 1e9


_NUMPY_PEAK = r"""
import time
import numpy as np
n = 2048
rng = np.random.default_rng(0)
a = rng.standard_normal((n, n), dtype=np.float32)
b = rng.standard_normal((n, n), dtype=np.float32)
a @ b
best = float('inf')
for _ in range(5):
  start = time.perf_counter()
  a @ b
  best = min(best, time.perf_counter() - start)
print(2 * n ** 3 / best / 1e9)
"""


def numpy_matmul_peak_gflops() -> float:
  """numpy's float32 2048^3 matmul, best of 5, in a child process without OPENBLAS_CORETYPE and
  OPENBLAS_L2_SIZE (with them set, as this environment does, OpenBLAS picks a slower kernel)."""
  import subprocess
  env = {k: v for k, v in os.environ.items()
         if k not in ('OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE')}
  out = subprocess.run([sys.executable, '-c', _NUMPY_PEAK], env=env, capture_output=True,
                       text=True, check=True)
  return float(out.stdout.strip().splitlines()[-1])


def wait_for_quiet(max_load: float, timeout: float) -> float:
  """Waits until the 1-minute load average is at most `max_load` (a grid, tests or another job
  on the cores would skew every rate); returns the load it started at."""
  deadline = time.monotonic() + timeout
  while os.getloadavg()[0] > max_load:
    if time.monotonic() > deadline:
      sys.exit(f'load average {os.getloadavg()[0]:.2f} stayed above {max_load} for {timeout:.0f}'
               ' s: the machine is busy (--max_load to override)')
    time.sleep(10)
  return os.getloadavg()[0]


def calls_per_second(train, seconds):
  """Train calls per second over a fixed wall-clock slice (the last call is waited for)."""
  calls, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    loss = train()
    calls += 1
  loss.numpy()
  return calls / (time.perf_counter() - start)


def cpu_model():
  with open('/proc/cpuinfo') as f:
    for line in f:
      if line.startswith('model name'):
        return line.split(':', 1)[1].strip()
  return 'unknown'


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--seconds', type=float, default=15.0, help='Timed seconds per config.')
  parser.add_argument('--rounds', type=int, default=3, help='Interleaved slices per config.')
  parser.add_argument('--configs', default=','.join(CONFIGS), help='Comma-separated names.')
  parser.add_argument('--max_load', type=float, default=0.5,
                      help='wait until the 1-minute load average is at most this')
  parser.add_argument('--wait', type=float, default=600.0, help='seconds to wait for it')
  args = parser.parse_args()
  names = args.configs.split(',')
  load = wait_for_quiet(args.max_load, args.wait)

  print(f'# {datetime.datetime.now().isoformat(timespec="seconds")}  CPU: {cpu_model()}  '
        f'cores: {os.cpu_count()}  TensorFlow {tf.__version__}  '
        f'threads intra/inter: {tf.config.threading.get_intra_op_parallelism_threads()}/'
        f'{tf.config.threading.get_inter_op_parallelism_threads()} (0 = default)')
  print(f'# shapes: observation {OBS_DIM} (pixels rows: + one {PIXELS}x{PIXELS}x3 camera), '
        f'action {ACT_DIM}, batch {BATCH} per critic update; '
        f'{args.rounds} interleaved slices of {args.seconds / args.rounds:.1f} s per config, '
        f'best slice reported (median beside it); load average at start {load:.2f}')

  trains, warmup_seconds = {}, {}
  for name in names:
    start = time.perf_counter()
    try:
      train = CONFIGS[name][1]()
      for _ in range(3):
        train().numpy()  # First call traces/compiles.
    except Exception as error:  # pylint: disable=broad-except
      print(f'# {name}: failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}')
      continue
    trains[name] = train
    warmup_seconds[name] = time.perf_counter() - start

  rates = {name: [] for name in trains}
  peaks = []
  for _ in range(args.rounds):
    peaks.append(matmul_peak_gflops())
    for name, train in trains.items():
      rates[name].append(calls_per_second(train, args.seconds / args.rounds))
  peaks.append(matmul_peak_gflops())
  peak = max(peaks)
  print(f'# float32 matmul peak (TF, 2048^3, best of {len(peaks)} measurements): {peak:.1f} '
        f'GFLOP/s (all: {", ".join(f"{p:.0f}" for p in peaks)}); % peak below divides by it')
  try:
    numpy_peak = numpy_matmul_peak_gflops()
    print(f'# numpy float32 2048^3 matmul, OPENBLAS_CORETYPE/L2_SIZE unset: {numpy_peak:.1f} '
          'GFLOP/s (the last column divides by it)')
  except Exception as error:  # pylint: disable=broad-except
    numpy_peak = float('nan')
    print(f'# numpy matmul peak: failed ({error})')
  print()
  header = (f'{"config":<36} {"warmup s":>8} {"calls/s":>8} {"critic upd/s":>12} '
            f'{"(median)":>8} {"GFLOP/upd":>9} {"GFLOP/call":>10} {"GFLOP/s":>8} {"% peak":>7} '
            f'{"% numpy":>7}')
  print(header)
  print('-' * len(header))
  for name in trains:
    label, _, updates, (flops_update, flops_call) = CONFIGS[name]
    calls = max(rates[name])
    gflops = calls * flops_call / 1e9
    print(f'{label:<36} {warmup_seconds[name]:>8.1f} {calls:>8.2f} {calls * updates:>12.1f} '
          f'{np.median(rates[name]) * updates:>8.1f} {flops_update / 1e9:>9.3f} '
          f'{flops_call / 1e9:>10.3f} {gflops:>8.1f} {100 * gflops / peak:>6.1f}% '
          f'{100 * gflops / numpy_peak:>6.1f}%')
  print()
  print('# slices (calls/s): ' + '; '.join(
      f'{name}: {", ".join(f"{r:.2f}" for r in rates[name])}' for name in trains))


if __name__ == '__main__':
  main()
