"""An expert that is a policy this project's trainer exported, as plain arrays in numpy.

The trainer's actor (`trainer.networks.TanhGaussianActorNetwork`) is an MLP of Dense + ReLU layers
and a head with 2|A| outputs, the mean and the log-std of a tanh-Gaussian; the exported policy acts
with tanh(mean). `ActorExpert` computes the same action from the same weights without TensorFlow
(~0.1 ms an action), so the collector can run it like the DAPG experts, and its npz file is a few
hundred KB that the repository can keep.

  python -m sim.actor_expert --policy RUN/policies/round_5 --out FILE [--episodes 50 --seed 1000]

converts an exported policy (a PolicySaver SavedModel of that actor), checks on the task's own
observations that the arrays give the SavedModel's actions, and measures the expert's success
alone (the paper's final-step rule for pen; reset seeds `collector.episode_seed(seed, 0, i)`, the
states `sim.experts.success_rate` uses).

File format (npz, no pickles): `hidden_<i>_kernel` [in, H_i], `hidden_<i>_bias` [H_i] for
i = 0..L-1, `head_kernel` [H_L, 2A], `head_bias` [2A], and `provenance`, a string saying where the
weights come from.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from sim import experts


# The conversion's check: float32 arithmetic in another order gives ~1e-6.
MAX_DIFFERENCE = 1e-4


class ActorFileError(ValueError):
  """An actor file or SavedModel that is not the trainer's tanh-Gaussian MLP actor."""


def _layers_from_named(arrays: dict, source: str) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
  """{hidden_<i>_kernel, hidden_<i>_bias, head_kernel, head_bias} -> ((W, b), ...), checked."""
  hidden = sorted(int(m.group(1)) for k in arrays
                  if (m := re.fullmatch(r'hidden_(\d+)_kernel', k)))
  if hidden != list(range(len(hidden))) or 'head_kernel' not in arrays:
    raise ActorFileError(f'{source}: expected hidden_0_kernel .. hidden_<L-1>_kernel and '
                         f'head_kernel (with their biases); found {sorted(arrays)}')
  names = [f'hidden_{i}' for i in hidden] + ['head']
  unknown = sorted(set(arrays) - {f'{n}_{part}' for n in names for part in ('kernel', 'bias')})
  if unknown:
    raise ActorFileError(f'{source}: arrays {unknown} are not part of an actor with layers '
                         f'{names}')
  layers, width = [], None
  for name in names:
    if f'{name}_bias' not in arrays:
      raise ActorFileError(f'{source}: {name}_kernel has no {name}_bias')
    kernel = np.asarray(arrays[f'{name}_kernel'], np.float32)
    bias = np.asarray(arrays[f'{name}_bias'], np.float32)
    if kernel.ndim != 2 or bias.shape != kernel.shape[1:]:
      raise ActorFileError(f'{source}: {name} has kernel {kernel.shape} and bias {bias.shape}; '
                           'expected [in, out] and [out]')
    if width is not None and kernel.shape[0] != width:
      raise ActorFileError(f'{source}: {name}_kernel takes {kernel.shape[0]} inputs but the '
                           f'layer before it gives {width}')
    if not (np.all(np.isfinite(kernel)) and np.all(np.isfinite(bias))):
      raise ActorFileError(f'{source}: {name} holds NaN or inf')
    layers.append((kernel, bias))
    width = kernel.shape[1]
  if width % 2:
    raise ActorFileError(f'{source}: the head has {width} outputs; a tanh-Gaussian head has '
                         '2 x the action dim (mean, log-std)')
  return tuple(layers)


@dataclasses.dataclass(frozen=True, eq=False)
class ActorExpert(experts.DeterministicExpert):
  """tanh(mean(obs)) of the trainer's actor: ReLU hidden layers, then the head's first A outputs.
  Deterministic (`rng` unused); works on one observation [D] or a batch [N, D]."""
  layers: tuple
  name: str = 'actor'
  provenance: str = ''

  @property
  def observation_dim(self) -> int:
    return self.layers[0][0].shape[0]

  @property
  def action_dim(self) -> int:
    return self.layers[-1][0].shape[1] // 2

  def action(self, obs) -> np.ndarray:
    h = np.asarray(obs, np.float32)
    if h.shape[-1] != self.observation_dim:
      raise ValueError(f'observation has {h.shape[-1]} entries, {self.name} expects '
                       f'{self.observation_dim}')
    # np.einsum's own loop, not BLAS: OpenBLAS threads a 256 x 256 product, which on a machine
    # busy with other work took 1-3 ms instead of 0.1 ms an action, and picks its kernels (so
    # the last bits) by CPU.
    for kernel, bias in self.layers[:-1]:
      h = np.maximum(np.einsum('...i,ij->...j', h, kernel) + bias, 0.0)
    kernel, bias = self.layers[-1]
    mean = np.einsum('...i,ij->...j', h, kernel[:, :self.action_dim]) + bias[:self.action_dim]
    return np.tanh(mean)

  def describe(self) -> dict:
    return {'kind': 'actor', 'name': self.name}

  def arrays(self) -> dict:
    named = {}
    for i, (kernel, bias) in enumerate(self.layers):
      prefix = 'head' if i == len(self.layers) - 1 else f'hidden_{i}'
      named[f'{prefix}_kernel'], named[f'{prefix}_bias'] = kernel, bias
    return named

  def save(self, path: str) -> None:
    with open(path, 'wb') as f:
      np.savez_compressed(f, provenance=np.array(self.provenance), **self.arrays())

  @classmethod
  def load(cls, path: str, task=None) -> 'ActorExpert':
    """Reads an actor npz (no pickles; local or a gfile URL); with `task`, checks its dims
    against the task's."""
    arrays = experts.read_npz(path, ActorFileError, 'actor',
                              'hidden_<i>_kernel/_bias, head_kernel/_bias, provenance')
    provenance = str(arrays.pop('provenance', ''))
    expert = cls(_layers_from_named(arrays, path), str(path).rsplit('/', 1)[-1], provenance)
    if task is not None:
      expert.check_task(task, path, ActorFileError)
    return expert

  @classmethod
  def from_saved_policy(cls, path: str, provenance: str = '') -> 'ActorExpert':
    """The actor weights of a policy `trainer` exported (PolicySaver SavedModel)."""
    import tensorflow as tf
    import tensorflow_probability  # noqa: F401  registers the distribution ops of the graph
    saved = tf.saved_model.load(path)
    arrays = {}
    for variable in saved.model_variables:
      match = re.search(r'(dense_(\d+)|head)/(kernel|bias)', variable.name)
      if match is None:
        raise ActorFileError(f'{path}: variable {variable.name} is not part of the trainer\'s '
                             'tanh-Gaussian MLP actor (dense_<i>, head)')
      layer = 'head' if match.group(1) == 'head' else f'hidden_{match.group(2)}'
      key = f'{layer}_{match.group(3)}'
      if key in arrays:
        raise ActorFileError(f'{path}: two variables are {match.group(0)} (the second: '
                             f'{variable.name}); expected one actor network')
      arrays[key] = variable.numpy()
    return cls(_layers_from_named(arrays, path), str(path).rstrip('/').rsplit('/', 1)[-1],
               provenance)


def main(argv=None) -> None:
  """Converts an exported policy into an actor npz, checks it and measures its success."""
  import argparse
  import json
  from sim import collector
  parser = argparse.ArgumentParser(description=main.__doc__)
  parser.add_argument('--policy', required=True, help='a policy trainer.main exported')
  parser.add_argument('--out', required=True, help='the npz to write')
  parser.add_argument('--task', default='pen')
  parser.add_argument('--provenance', required=True,
                      help='where the weights come from (run, method, seed, round), kept in the '
                      'file')
  parser.add_argument('--episodes', type=int, default=50)
  parser.add_argument('--seed', type=int, default=1000)
  args = parser.parse_args(argv)
  expert = ActorExpert.from_saved_policy(args.policy, args.provenance)
  expert.check_task(args.task, args.policy, ActorFileError)
  saved = collector.load_saved_policy(args.policy)
  [(_, episode)] = list(collector.run_episodes(args.task, expert, 1, seed=args.seed))
  difference = float(np.max(np.abs(saved(episode.observations) - expert.action(
      episode.observations))))
  if difference > MAX_DIFFERENCE:
    raise ActorFileError(f'{args.policy}: the arrays\' actions differ from the SavedModel\'s by '
                         f'up to {difference:.3g} (> {MAX_DIFFERENCE}); not written')
  expert.save(args.out)
  loaded = ActorExpert.load(args.out, args.task)
  rate = experts.success_rate(args.task, loaded, args.episodes, args.seed)
  print(json.dumps({'out': args.out, 'max_abs_difference_to_saved_policy': difference,
                    'episodes': args.episodes, 'seed': args.seed, 'success_rate': rate}))


if __name__ == '__main__':
  main()
