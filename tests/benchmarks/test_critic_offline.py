import json
import os

import numpy as np

from benchmarks import critic_offline
from benchmarks import critic_ranking
from benchmarks import grid_runs
from tests.sim import test_loop


def test_retrain_starts_from_the_runs_initial_actor_and_trains_the_critics(tmp_path):
  the_loop, _ = test_loop.run(tmp_path, test_loop.tiny_spec('rlif_value', rounds=1))
  with open(os.path.join(the_loop.run_dir, 'results.jsonl')) as f:
    first = json.loads(f.readline())
  run = grid_runs.Run(the_loop.run_dir, 'rlif_value', first, the_loop.task, None, None)
  agent, bc_weight = critic_offline.retrain(run, 'rlif_value', 3, str(tmp_path / 'retrained'))
  assert int(agent.train_step_counter.numpy()) == 3 and bc_weight == 0.4  # configs/rlif.toml
  # configs/rlif.toml holds the actor for 500 train calls: after 3 it is the initial BC actor.
  from sim import collector
  initial = collector.load_saved_policy(os.path.join(the_loop.run_dir, 'initial', 'policies',
                                                     'round_0'))
  observations, _, _ = grid_runs.policy_steps(the_loop.run_dir, 1)
  np.testing.assert_allclose(critic_ranking.deployed_actions(agent, observations),
                             np.stack([initial(o) for o in observations]), atol=1e-5)
