import json

import numpy as np
import pytest

from sim import intervention as iv

OBS_DIM = 3
EXPERT_ACTION, POLICY_ACTION = np.array([1.0, 0.0]), np.array([0.0, 0.0])


def run(model, observations, expert_action=EXPERT_ACTION, policy_action=POLICY_ACTION):
  return np.array([model.decide(o, policy_action, expert_action) for o in observations])


def test_value_based_rule_literal_values():
  assert iv.value_based_probability(1.0, 0.0, 0.97, 0.95) == pytest.approx(0.95)
  assert iv.value_based_probability(1.0, 0.98, 0.97, 0.95) == pytest.approx(0.05)  # margin
  assert iv.value_based_probability(1.0, 0.96, 0.97, 0.95) == pytest.approx(0.95)
  # Negative values: the margin is (1 - alpha)|Q(s, a_exp)| = 0.03 * 1.0 = 0.03. Equal values
  # are no reason to take over (the paper's alpha * -1.0 = -0.97 > -1.0 would have said yes).
  assert iv.value_based_probability(-1.0, -1.0, 0.97, 0.95) == pytest.approx(0.05)
  assert 0.97 * -1.0 > -1.0  # ... as the paper's literal form does
  # Expert better by 0.02 < 0.03: no; by 0.04 > 0.03: yes.
  assert iv.value_based_probability(-1.0, -1.02, 0.97, 0.95) == pytest.approx(0.05)
  assert iv.value_based_probability(-1.0, -1.04, 0.97, 0.95) == pytest.approx(0.95)
  # Relocate-like values: Q_exp = -0.5, margin 0.015. A policy rated higher never loses.
  np.testing.assert_allclose(
      iv.value_based_probability([-0.5, -0.5, -0.5], [-0.4, -0.51, -0.52], 0.97, 0.95),
      [0.05, 0.05, 0.95])
  # Where Q(s, a_exp) >= 0 the rule is the paper's, alpha * Q_exp > Q_pi, on a grid of values.
  q_exp, q_pi = np.meshgrid(np.linspace(0, 2, 41), np.linspace(-1, 2, 61))
  np.testing.assert_array_equal(iv.expert_clearly_better(q_exp, q_pi, 0.9),
                                0.9 * q_exp > q_pi)
  np.testing.assert_allclose(iv.value_based_probability([2.0, 0.0], [1.0, 1.0], 0.97, 0.9),
                             [0.9, 0.1])


def test_value_based_frequencies_follow_the_reference_critic():
  calls = []

  def q_ref(obs, actions):  # Q(s, a) = s_0 * a_0: the expert (a_0 = 1) is better where s_0 > 0.
    calls.append((obs.shape, actions.shape))
    return obs[:, 0] * actions[:, 0]

  model = iv.ValueBasedIntervention(q_ref, iv.ValueBasedConfig(hold_steps=1), seed=0)
  n = 4000
  good = run(model, np.tile([1.0, 0.0, 0.0], (n, 1)))
  bad = run(model, np.tile([-1.0, 0.0, 0.0], (n, 1)))
  assert abs(good.mean() - 0.95) < 0.015
  assert abs(bad.mean() - 0.05) < 0.015
  assert set(calls) == {((2, OBS_DIM), (2, 2))}  # one batched call per decision
  # With the default hold of 4 steps the critic is not consulted while the expert holds control.
  calls.clear()
  held = iv.ValueBasedIntervention(q_ref, seed=0)
  assert run(held, np.tile([1.0, 0.0, 0.0], (4, 1))).tolist() == [True] * 4
  assert len(calls) == 1


def test_counts_separate_the_takeovers_the_rule_flagged_from_the_random_ones():
  model = iv.ValueBasedIntervention(lambda o, a: o[:, 0] * a[:, 0],
                                    iv.ValueBasedConfig(hold_steps=1), seed=2)
  n = 2000
  good = run(model, np.tile([1.0, 0.0, 0.0], (n, 1)))   # flagged: Q_exp 1 > Q_pi 0
  bad = run(model, np.tile([-1.0, 0.0, 0.0], (n, 1)))   # not flagged: Q_exp -1 < Q_pi 0
  assert model.counts == {'decisions': 2 * n, 'takeovers': int(good.sum() + bad.sum()),
                          'flagged': n, 'flagged_takeovers': int(good.sum())}
  assert 0 < bad.sum() < 0.08 * n  # the 1 - beta part: takeovers the rule did not ask for
  # A hold's steps are no decisions; models without a rule count no flags.
  held = iv.RandomIntervention(iv.RandomConfig(0.5, hold_steps=4), seed=0)
  decisions = run(held, np.zeros((400, OBS_DIM)))
  assert set(held.counts) == {'decisions', 'takeovers'}
  assert held.counts['decisions'] - held.counts['takeovers'] == int((~decisions).sum())


def test_a_standard_replaces_the_expert_proposal_in_the_rule_not_in_the_takeover():
  """An operator who judges by a standard (the undegraded expert) rates the policy against the
  standard's action: the acting expert's own proposal no longer decides."""
  q_ref = lambda o, a: 1.0 - np.abs(a - o[:, :2]).sum(axis=1)  # best action: obs[:2]  # noqa
  config = iv.ValueBasedConfig(alpha=0.9, beta=1.0, hold_steps=1)
  obs = np.tile([0.5, 0.0, 0.0], (5, 1))
  # The policy proposes the degraded expert's action [1, 0]: Q = 0.5 for both, so the paper's
  # operator (its own proposal as the standard) never flags it.
  own = iv.ValueBasedIntervention(q_ref, config, seed=0)
  assert not run(own, obs, expert_action=EXPERT_ACTION, policy_action=EXPERT_ACTION).any()
  assert own.counts['flagged'] == 0
  # Judged by the clean action obs[:2] = [0.5, 0]: Q 1.0 - 0.5 = 0.5 > (1 - 0.9) * 1.0.
  seen = []
  judge = iv.ValueBasedIntervention(q_ref, config, seed=0,
                                    standard=lambda o: seen.append(o.copy()) or o[:, :2])
  assert run(judge, obs, expert_action=EXPERT_ACTION, policy_action=EXPERT_ACTION).all()
  assert judge.counts == {'decisions': 5, 'takeovers': 5, 'flagged': 5, 'flagged_takeovers': 5}
  np.testing.assert_array_equal(np.concatenate(seen), obs)  # the standard saw each state once
  # A policy at the standard's action is left alone, whatever the acting expert proposes.
  assert not run(judge, obs, expert_action=EXPERT_ACTION, policy_action=np.array([0.5, 0.0])).any()
  # Q_exp' = 1.0, Q_pi = 0.95: better by 0.05 < the margin 0.1, so not flagged either.
  assert not run(judge, obs, expert_action=EXPERT_ACTION,
                 policy_action=np.array([0.55, 0.0])).any()


def test_value_decisions_draw_one_uniform_per_free_episode_against_the_rule():
  """The decisions of the value model, pinned: each free episode draws one U[0, 1) from its own
  stream per decision and intervenes below value_based_probability (recorded rounds replay)."""
  q_ref = lambda o, a: o[:, 0] * a[:, 0] + o[:, 1]  # noqa: E731
  rng = np.random.default_rng(4)
  n, steps = 3, 80
  obs = rng.standard_normal((steps, n, OBS_DIM))
  policy_actions, expert_actions = rng.uniform(-1, 1, (2, steps, n, 2))
  model = iv.ValueBasedIntervention(q_ref, iv.ValueBasedConfig(alpha=0.9), seed=11)
  model.reset(n)
  # Episode k's stream is seeded (model seed, k); the constructor started episode 0.
  streams = [np.random.default_rng([11, 1 + e]) for e in range(n)]
  hold = np.zeros(n, int)
  for t in range(steps):
    decided = model.decide_all(obs[t], policy_actions[t], expert_actions[t])
    expected = hold > 0
    hold[expected] -= 1
    for e in np.flatnonzero(~expected):
      p = iv.value_based_probability(q_ref(obs[t, e:e + 1], expert_actions[t, e:e + 1]),
                                     q_ref(obs[t, e:e + 1], policy_actions[t, e:e + 1]), 0.9, 0.95)
      if streams[e].random() < p[0]:
        expected[e], hold[e] = True, 3
    np.testing.assert_array_equal(decided, expected)
  assert 0 < model.counts['flagged_takeovers'] < model.counts['takeovers']


def test_decision_probability_formula():
  assert iv.decision_probability_for_fraction(0.5, 4) == pytest.approx(0.2)
  assert iv.decision_probability_for_fraction(0.5, 1) == pytest.approx(0.5)
  assert iv.decision_probability_for_fraction(0.0, 4) == 0.0
  assert iv.decision_probability_for_fraction(1.0, 4) == 1.0
  for f in (0.3, 0.5, 0.85):
    q = iv.decision_probability_for_fraction(f, 4)
    assert iv.expert_control_fraction(q, 4) == pytest.approx(f)
  with pytest.raises(ValueError):
    iv.decision_probability_for_fraction(1.2, 4)


@pytest.mark.parametrize('fraction', [0.3, 0.5, 0.85])
def test_random_model_matches_the_paper_schedules(fraction):
  model = iv.RandomIntervention(iv.RandomConfig(fraction), seed=11)
  obs = np.zeros((20000, OBS_DIM))
  flags = run(model, obs)
  assert abs(flags.mean() - fraction) < 0.03
  # Every takeover lasts at least the hold (the last one may be cut by the end of the run).
  runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], flags, [0]]).astype(int))))[::2]
  assert runs[:-1].min() >= 4
  again = run(iv.RandomIntervention(iv.RandomConfig(fraction), seed=11), obs)
  np.testing.assert_array_equal(flags, again)


def test_random_model_over_200_step_episodes_stays_close():
  model = iv.RandomIntervention(iv.RandomConfig(0.5), seed=2)
  fractions = []
  for _ in range(100):
    model.reset()
    fractions.append(run(model, np.zeros((200, OBS_DIM))).mean())
  assert abs(np.mean(fractions) - 0.5) < 0.03


def test_gating_threshold_on_literal_actions():
  model = iv.GatingIntervention(iv.GatingConfig(threshold=1.0, hold_steps=1))
  obs = np.zeros(OBS_DIM)
  assert iv.action_gap([0.5, 0.5], [0.0, 0.0]) == pytest.approx(1.0)
  assert not model.decide(obs, np.array([0.0, 0.0]), np.array([0.5, 0.5]))  # gap 1.0, not above
  assert model.decide(obs, np.array([0.0, -0.1]), np.array([0.5, 0.5]))      # gap 1.1
  assert not model.decide(obs, np.array([0.5, 0.5]), np.array([0.5, 0.5]))


def test_hold_keeps_the_expert_in_control_for_k_steps():
  model = iv.GatingIntervention(iv.GatingConfig(threshold=1.0, hold_steps=4))
  obs, expert = np.zeros(OBS_DIM), np.array([1.0, 1.0])
  far, near = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
  decisions = [model.decide(obs, a, expert) for a in [near, far, near, near, near, near, near]]
  assert decisions == [False, True, True, True, True, False, False]
  # A fresh decision right after the hold can extend the takeover.
  decisions = [model.decide(obs, a, expert) for a in [far, near, near, near, far, near]]
  assert decisions == [True] * 6
  # reset() ends a hold.
  model.reset()
  model.decide(obs, far, expert)
  model.reset()
  assert not model.decide(obs, near, expert)


def test_registry_and_descriptions():
  assert set(iv.MODELS) == {'value', 'foresight', 'random', 'gating', 'never'}
  never = iv.make_model('never', seed=1)
  far = np.ones(2)
  assert not any(never.decide(np.zeros(3), -far, far) for _ in range(50))  # DAgger: never
  model = iv.make_model('random', seed=5, config=iv.RandomConfig(0.85))
  description = json.loads(json.dumps(model.describe()))
  assert description['name'] == 'random' and description['seed'] == 5
  assert description['config']['expert_fraction'] == 0.85
  assert description['config']['decision_probability'] == pytest.approx(0.85 / 1.45)
  value = iv.make_model('value', q_ref=lambda o, a: np.zeros(len(o)))
  assert value.describe()['config'] == {'alpha': 0.97, 'beta': 0.95, 'hold_steps': 4}
  with pytest.raises(KeyError, match='known'):
    iv.make_model('oracle')


@pytest.mark.parametrize('name', ['value', 'random', 'gating'])
def test_episodes_side_by_side_decide_as_one_by_one(name):
  """decide_all over n episodes (one critic call per step for all) makes the decisions that
  n sequential episodes make with decide: each episode has its own random stream."""
  rng = np.random.default_rng(3)
  n, steps = 5, 60
  obs = rng.standard_normal((n, steps, OBS_DIM))
  policy_actions = rng.uniform(-1, 1, (n, steps, 2))
  expert_actions = rng.uniform(-1, 1, (n, steps, 2))
  kwargs = {'q_ref': lambda o, a: o[:, 0] * a[:, 0]} if name == 'value' else {}
  config = {'gating': iv.GatingConfig(threshold=1.5)}.get(name)

  sequential = iv.make_model(name, seed=9, config=config, **kwargs)
  one_by_one = []
  for e in range(n):
    sequential.reset()
    one_by_one.append([sequential.decide(obs[e, t], policy_actions[e, t], expert_actions[e, t])
                       for t in range(steps)])
  batched = iv.make_model(name, seed=9, config=config, **kwargs)
  batched.reset(n)
  together = np.stack([batched.decide_all(obs[:, t], policy_actions[:, t], expert_actions[:, t])
                       for t in range(steps)], axis=1)
  np.testing.assert_array_equal(together, np.array(one_by_one))
  assert 0 < together.mean() < 1
  # Skipping the first 3 episodes' streams, the next 2 decide as episodes 3 and 4 did.
  later = iv.make_model(name, seed=9, config=config, **kwargs)
  later.skip(3)
  later.reset(2)
  tail = np.stack([later.decide_all(obs[3:, t], policy_actions[3:, t], expert_actions[3:, t])
                   for t in range(steps)], axis=1)
  np.testing.assert_array_equal(tail, together[3:])
  # A subset of running episodes (others finished) keeps each episode's own state.
  batched.reset(n)
  part = batched.decide_all(obs[[1, 3], 0], policy_actions[[1, 3], 0], expert_actions[[1, 3], 0],
                            episodes=[1, 3])
  assert part.shape == (2,)
  with pytest.raises(ValueError, match='decide_all'):
    batched.decide(obs[0, 0], policy_actions[0, 0], expert_actions[0, 0])


def test_flagged_share_of_counts():
  assert iv.flagged_share({'decisions': 9, 'takeovers': 4, 'flagged': 2,
                           'flagged_takeovers': 1}) == 0.25
  assert iv.flagged_share({'decisions': 9, 'takeovers': 0, 'flagged': 0,
                           'flagged_takeovers': 0}) is None  # no takeover
  assert iv.flagged_share({'decisions': 9, 'takeovers': 4}) is None  # a model without a rule
  assert iv.flagged_share(None) is None  # a round recorded before the counts
