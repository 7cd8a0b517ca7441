"""Writes the small sample logs in examples/raw_logs/ (the pipeline's embedded default input).

Deterministic: re-running rewrites identical files. Tiny dimensions keep them a few KB; they
show every feature of raw log format v1, including one broken line that the job dead-letters.
"""

import gzip
import json
import os

import numpy as np

from pipeline import raw_writer

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'raw_logs')


def main():
  os.makedirs(HERE, exist_ok=True)
  rng = np.random.default_rng(7)

  def episode(T):
    return (np.round(rng.normal(size=(T + 1, 4)), 3).astype(np.float32),
            np.round(rng.uniform(-1, 1, size=(T, 2)), 3).astype(np.float32))

  obs, act = episode(8)  # A demonstration: no intervention flags, rewards all 0.
  with open(os.path.join(HERE, 'demo_000.npz'), 'wb') as f:
    f.write(raw_writer.npz_bytes(obs, act, {'episode_id': 'demo_000', 'operator': 'alice'},
                                 terminated=True))
  obs, act = episode(10)  # Policy rollout with a 3-step takeover at steps 4..6.
  flags = np.zeros(10, bool)
  flags[4:7] = True
  with open(os.path.join(HERE, 'rollout_001.npz'), 'wb') as f:
    f.write(raw_writer.npz_bytes(obs, act, {'episode_id': 'rollout_001', 'policy': 'round0'},
                                 interventions=flags, policy_actions=np.clip(act * 0.8, -1, 1)))
  records = []
  for i, takeover in enumerate([(2, 5), (9, 11)]):  # The second ends by takeover.
    obs, act = episode(10)
    flags = np.zeros(11, bool)
    flags[takeover[0]:takeover[1]] = True
    records += raw_writer.step_records(obs, act, {'episode_id': f'fleet_{i}', 'robot': 'r2'},
                                       interventions=flags[:10], policy_actions=act)
    records[-1]['intervention'] = bool(flags[10])
  order = rng.permutation(len(records))
  records = [records[j] for j in order]
  lines = [json.dumps(r) for r in records]
  with open(os.path.join(HERE, 'fleet_a.jsonl'), 'w') as f:
    f.write('\n'.join(lines[:12]) + '\n{"episode_id": "fleet_0", "step": 3, "observ\n')
  with open(os.path.join(HERE, 'fleet_b.jsonl.gz'), 'wb') as f:
    f.write(gzip.compress(('\n'.join(lines[12:]) + '\n').encode(), mtime=0))


if __name__ == '__main__':
  main()
