import dataclasses

import mujoco
import numpy as np
import pytest

from sim import collector
from sim import planner as planner_lib
from sim import tasks

# A shrunk problem: every `act` rolls out 4 sequences of 3 steps (12 environment steps).
SMALL = planner_lib.PlannerConfig(num_samples=4, horizon=3)
EXACT = planner_lib.PlannerConfig(num_samples=4, horizon=3, substeps=None)  # the env's physics


@pytest.fixture
def env():
  env = tasks.make_env('pen', seed=5, episode_length=10)
  yield env
  env.close()


def full_state(env):
  inner = env.unwrapped
  spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
  state = np.empty(mujoco.mj_stateSize(inner.model, spec))
  mujoco.mj_getState(inner.model, inner.data, state, spec)
  return state


def test_dense_reward_by_hand():
  # far and misaligned; near and aligned (> 0.95: both bonuses); near, 0.92 (first bonus only);
  # aligned but dropped (height 0.05 < 0.075) and far.
  reward = planner_lib.pen_dense_reward(distance=[0.2, 0.05, 0.05, 0.3],
                                        similarity=[0.1, 0.97, 0.92, 0.99],
                                        height=[0.2, 0.2, 0.2, 0.05])
  np.testing.assert_allclose(reward, [-0.1, 60.92, 10.87, -4.31], atol=1e-12)


def test_planned_rewards_are_the_rewards_the_environment_pays(env):
  exact = planner_lib.PenPlanner(EXACT, env)
  coarse = planner_lib.PenPlanner(SMALL, env)  # 1 physics step of 10 ms per step
  env.reset(seed=11)
  sequence = np.clip(np.random.default_rng(0).normal(0, 0.5, (1, 6, 24)), -1, 1)
  planned, approximate = exact.rewards(sequence)[0], coarse.rewards(sequence)[0]
  paid = [env.step(action)[1] for action in sequence[0]]
  np.testing.assert_allclose(planned, paid, rtol=0, atol=1e-9)
  assert np.ptp(paid) > 1e-3  # the pen moved: the comparison is not between constants
  assert np.abs(approximate - paid).max() < 0.03  # the coarse model is close, not exact


def test_the_coarse_model_follows_the_turning_pen(env):
  coarse = planner_lib.PenPlanner(SMALL, env)  # 1 physics step of 10 ms per step
  env.reset(seed=11)
  sequence = np.full((1, 10, 24), 0.3)
  predicted = coarse.predict(sequence).similarity[0]
  observed = [env.step(action)[0] for action in sequence[0]]
  # obs[42:45] = o - g for unit vectors, so o.g = 1 - |o - g|^2 / 2.
  cosine = np.array([1.0 - 0.5 * np.sum(obs[42:45] ** 2) for obs in observed])
  assert np.ptp(cosine) > 0.15                        # the pen turns by a lot
  assert np.abs(predicted - cosine).max() < 0.05     # and the prediction follows it
  assert env.unwrapped.model.opt.timestep == 0.002    # the env's physics is untouched


def test_act_leaves_the_environment_untouched(env):
  expert = planner_lib.PenPlanner(SMALL, env)
  obs, _ = env.reset(seed=2)
  obs, *_ = env.step(np.full(24, 0.3))
  before, quat = full_state(env), env.unwrapped.model.body_quat.copy()
  expert.act(obs, np.random.default_rng(0))
  np.testing.assert_array_equal(full_state(env), before)
  np.testing.assert_array_equal(env.unwrapped.model.body_quat, quat)


def test_episodes_are_reproducible_from_their_seed(env):
  expert = planner_lib.PenPlanner(SMALL, env)
  first = collector.run_episode(env, 'pen', expert, seed=3, episode_length=10)
  # Same planner, same seed: the reset clears the warm start, so the episode repeats exactly.
  again = collector.run_episode(env, 'pen', expert, seed=3, episode_length=10)
  other_env = tasks.make_env('pen', seed=99, episode_length=10)
  fresh = collector.run_episode(other_env, 'pen', planner_lib.PenPlanner(SMALL, other_env),
                                seed=3, episode_length=10)
  other_seed = collector.run_episode(env, 'pen', expert, seed=4, episode_length=10)
  other_env.close()
  assert first.actions.shape == (10, 24)
  np.testing.assert_array_equal(again.actions, first.actions)
  np.testing.assert_array_equal(fresh.actions, first.actions)
  assert np.abs(other_seed.actions - first.actions).max() > 1e-3


def test_without_rng_the_config_seed_decides(env):
  env.reset(seed=1)
  for _ in range(5):  # the fingers reach the pen, so perturbed sequences score differently
    obs, *_ = env.step(np.full(24, 0.3))
  actions = [planner_lib.PenPlanner(SMALL, env).act(obs) for _ in range(2)]
  np.testing.assert_array_equal(actions[0], actions[1])
  reseeded = planner_lib.PenPlanner(planner_lib.PlannerConfig(4, 3, seed=1), env).act(obs)
  assert np.abs(reseeded - actions[0]).max() > 1e-6


def test_planning_beats_holding_still(env):
  # 8 steps under the planner (16 samples x 4 steps) against 8 steps of the action that holds
  # the initial pose, from the same initial state: the planner turns the pen towards the goal.
  config = planner_lib.PlannerConfig(num_samples=16, horizon=4)
  expert = planner_lib.PenPlanner(config, env)
  obs, _ = env.reset(seed=7)
  hold = expert._holding_plan()[0]
  held = sum(env.step(hold)[1] for _ in range(8))
  obs, _ = env.reset(seed=7)
  rng = np.random.default_rng(0)
  planned = 0.0
  for _ in range(8):
    obs, reward, *_ = env.step(expert.act(obs, rng))
    planned += reward
  assert planned > held + 0.05, (planned, held)


def test_binding_errors(env):
  obs, _ = env.reset(seed=0)
  with pytest.raises(RuntimeError, match='not bound'):
    planner_lib.PenPlanner(SMALL).act(obs)
  bound = planner_lib.PenPlanner(SMALL).bind(env)
  assert bound.env is env and bound.config == SMALL
  with pytest.raises(ValueError, match='does not match'):
    bound.act(obs + 0.1)
  door = tasks.make_env('door', seed=0)
  with pytest.raises(TypeError, match='AdroitHandPen'):
    planner_lib.PenPlanner(SMALL, door)
  door.close()


def test_describe_names_the_settings(env):
  described = planner_lib.PenPlanner(SMALL, env).describe()
  assert described['kind'] == 'mppi_planner' and described['task'] == 'pen'
  assert (described['num_samples'], described['horizon']) == (4, 3)


def test_pen_kinematics_match_mujoco(env):
  inner = env.unwrapped
  kinematics = planner_lib.PenKinematics.of(env)
  rng = np.random.default_rng(0)
  qpos = np.tile(inner.data.qpos, (5, 1))
  qpos[:, 24:27] += rng.uniform(-0.1, 0.1, (5, 3))   # slides (m)
  qpos[:, 27:30] += rng.uniform(-3.0, 3.0, (5, 3))   # hinges (rad), far from zero
  centre, axis = kinematics.pose(qpos)
  data = mujoco.MjData(inner.model)
  for i in range(5):
    data.qpos[:] = qpos[i]
    mujoco.mj_kinematics(inner.model, data)
    np.testing.assert_allclose(centre[i], data.xpos[inner.obj_body_id], atol=1e-12)
    top_minus_bottom = data.site_xpos[inner.obj_t_site_id] - data.site_xpos[inner.obj_b_site_id]
    np.testing.assert_allclose(axis[i], top_minus_bottom / inner.pen_length, atol=1e-12)
  np.testing.assert_allclose(np.linalg.norm(axis, axis=1), 1.0, atol=1e-12)


def test_more_iterations_improve_the_plan_again_from_the_same_state(env):
  env.reset(seed=2)
  obs, *_ = env.step(np.full(24, 0.3))
  wider = dataclasses.replace(SMALL, num_samples=16, horizon=6, temperature=1.0)
  once = planner_lib.PenPlanner(wider, env)
  twice = planner_lib.PenPlanner(dataclasses.replace(wider, iterations=2), env)
  # Two updates are one update followed by a second one on its result, with the same stream.
  rng = np.random.default_rng(0)
  first = once._improve(once._holding_plan(), rng)
  expected = once._improve(first, rng)[0]
  np.testing.assert_allclose(twice.act(obs, np.random.default_rng(0)), expected, atol=1e-12)
  assert np.abs(expected - first[0]).max() > 1e-6
