r"""The paper's comparison on Adroit: RLIF (value-based, random) vs HG-DAgger vs BC under
suboptimal experts, every method on the same environment-step budget.

  python benchmarks/rlif_benchmark.py [--levels 40,10,90] [--methods ...] [--seeds 0,1,2]
      [--rounds 5 --episodes_per_round 20 --updates_per_round 1000] [--eval_episodes 100]
      [--only_report]

Each (level, method, seed) is one `sim.loop` run under runs/benchmark/<task>/...; runs are
resumable (the loop records every finished round), so the script can be stopped and started
again across sessions and picks up where it stopped. Two processes may run the same command:
a run the other one holds (trainer/run_lock.py) is skipped. After every finished run it rewrites
the report: benchmarks/results/rlif_<task>/{results.md, runs.jsonl, success.png, interventions.png}.
Each round's policy is evaluated alone on `--eval_episodes` episodes (100; grids before
2026-12-07 ran 20, and benchmarks/reevaluate.py re-runs their policies on 100).

Expert levels are the calibrated `NoisyExpert` noise scales of `sim.experts.CALIBRATED_NOISE`
(sim/EXPERTS.md: pen success by the paper's final-step rule, door/hammer/relocate by D4RL's).
`--degradation distortion` uses the calibrated `DistortedExpert` scales instead, a degradation
imitation cannot average out; its grid is <task>_distorted (runs and report).
`--task door|hammer|relocate` runs those rows; the paper reports per-level numbers for pen only.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# RLIF paper, Table 1 (Adroit pen, success %, 1M env steps for RLIF, 100k for the DAgger family).
# Per level only RLIF's numbers are given there.
PAPER_PEN = {'rlif_value': {'90': 88.5, '40': 80.9, '10': 64.0}}
PAPER_PEN_AVERAGE = {'rlif_value': 77.8, 'hg_dagger': 54.0, 'dagger': 40.9, 'bc': 54.1}
MILESTONE_STEPS = 20_000  # longer grids also report success at every multiple of this
METHOD_ORDER = ('rlif_value', 'rlif_random', 'rlpd_value', 'hg_dagger', 'dagger', 'bc')
# Variants: rows `<method>+<variant>[+<variant>...]`, each variant a change to the run's
# `LoopSpec` on top of the method's default (the RLIF methods run configs/rlif.toml unchanged).
# They are the ablations that decided configs/rlif.toml (`--tag ablation`, pen ~40%); budgets
# stay equal: every variant spends the same env steps, and the round-size variants keep the
# learner updates per env step.


def _learner(**settings):
  return lambda spec: dataclasses.replace(
      spec, learner_overrides=tuple(dict(spec.learner_overrides, **settings).items()))


def _round_size(factor):
  """Rounds `factor` times smaller and `factor` times more of them: same env steps and the same
  updates per env step, nearer the paper's continual updates."""
  return lambda spec: dataclasses.replace(
      spec, rounds=spec.rounds * factor, episodes_per_round=spec.episodes_per_round // factor,
      updates_per_round=spec.updates_per_round // factor)


VARIANTS = {
    # The behaviour term on demonstrated actions only (prior data, human-controlled steps).
    'bc_demo': _learner(bc_actions='demonstrated', accepted_window=0),
    # TD3+BC's term, on every logged action: the default until 2026-12-07, and the label of the
    # RLIF rows that ran it (WORKSPACE.md).
    'bc_all': _learner(bc_actions='all', accepted_window=0),
    # The term on demonstrated actions and on the policy's own actions that no takeover followed
    # within N steps (trainer/pairing.py `accepted`): configs/rlif.toml's default since
    # 2026-12-07, so a no-op on it; kept so a row can set the term back after a variant that
    # changes it (e.g. `+bc_all+accepted5`).
    'accepted5': _learner(bc_actions='demonstrated', accepted_window=5),
    # Each of the operator's own steps weighs N in the term against a demonstration or an
    # accepted action (1): at a ~20% takeover share and prior fraction 0.75 they are ~5% of the
    # term at 1, ~33% at 10 (HG-DAgger's batches: half).
    'op4': _learner(operator_weight=4.0),
    'op10': _learner(operator_weight=10.0),
    'op20': _learner(operator_weight=20.0),
    # The weight read from the operator's demonstrations (trainer/operator_noise.py): 10 where
    # they read precise (noise <= 0.3), else 1; on a cell whose reading is known it is `op10` or
    # the default, and its runs are those runs again.
    'opauto': _learner(operator_weight='auto'),
    # The term weighs every demonstrated transition of both pools alike (trainer/replay.py
    # `bc_sampling`), not the batch's 3:1 prior mix: the operator's share of the term grows with
    # its data (at 100k env steps on pen ~10%, ~34% with the accepted actions, ~73% without).
    'bcpool': _learner(bc_sampling='pool'),
    # The policy's refused proposals as terminal -1 transitions at the takeover state.
    'refused': _learner(refused_proposals=True),
    'bc0.2': _learner(bc_weight=0.2),
    'bc1': _learner(bc_weight=1.0),
    'bc4': _learner(bc_weight=4.0),
    # Weaker terms. The term sums the error over the 24 action dimensions where TD3+BC averages
    # it, and TD3+BC scales Q by alpha / mean|Q|: the pen critics' mean Q is ~-0.09 with one-step
    # targets and ~-1.7 at n_step 50 (results/critic_ranking/pen_mae.md), so its alpha = 2.5 is
    # bc_weight ~0.0015 and ~0.03 here.
    'bc0.1': _learner(bc_weight=0.1),
    'bc0.02': _learner(bc_weight=0.02),
    'bc0': _learner(bc_weight=0.0),
    # The term's squared error (the mean of the logged actions) instead of the default absolute
    # error (their median). The initial BC policy follows configs/bc.toml either way.
    'bc_mse': _learner(bc_error='mse'),
    # The actor rates actions by mean - k * std over the critic ensemble (k = actor_pessimism).
    'pess1': _learner(actor_pessimism=1.0),
    # The recipe's earlier entropy bonus (temperature 0.01, learned toward -|A|/2); the default
    # has none (configs/rlif.toml). Its runs before the change are relabelled with it.
    'temp0.01': _learner(initial_temperature=0.01, temperature_learning_rate=3e-4),
    # Critic updates per env step: G critic updates per train call, 1,000 calls per 4,000 steps.
    'g4': _learner(critic_updates_per_step=4),    # 1 per env step
    'g8': _learner(critic_updates_per_step=8),    # 2 per env step
    'g20': _learner(critic_updates_per_step=20),  # 5 per env step (the paper's)
    # n-step TD targets (trainer/pairing.py multi_step): a -1 reaches n steps back per update.
    'nstep10': _learner(n_step=10),
    'nstep20': _learner(n_step=20),
    'nstep50': _learner(n_step=50),
    # Critic warm-up before the actor moves (train calls).
    'warmup0': _learner(actor_update_after=0),
    'warmup2000': _learner(actor_update_after=2000),
    'rounds4x': _round_size(4),  # 20 rounds of 5 episodes
    'prior0.25': lambda spec: dataclasses.replace(spec, prior_fraction=0.25),
    'prior0.5': lambda spec: dataclasses.replace(spec, prior_fraction=0.5),  # RLPD's
    'prior0.75': lambda spec: dataclasses.replace(spec, prior_fraction=0.75),
    # The control: the same learner with every reward 0, i.e. without the takeover signal.
    'reward0': _learner(reward_scale=0.0),
    # The deployed policy as a moving average of the actor's weights (trainer/policy_average.py)
    # over ~100 actor updates; a round trains the actor 1,000 times.
    'avg0.99': _learner(policy_average_decay=0.99),
    # Nothing changed: the method collected again with the code of today, the partner of the
    # ablations on seeds whose shipped run has another initial BC policy (see `ablations`).
    'rerun': lambda spec: spec,
    'drop': lambda spec: dataclasses.replace(spec, takeover='drop'),
    # The operator judges by foresight (sim.intervention.ForesightIntervention): the expert's
    # action then the expert against the policy's action then the policy, 20 steps ahead.
    'foresight': lambda spec: dataclasses.replace(spec, intervention='foresight'),
    # The policy explores while it collects: N(0, s^2) on its actions (the loop otherwise deploys
    # tanh(mean) and explores only through the takeovers; RLPD samples its actor).
    'explore0.1': lambda spec: dataclasses.replace(spec, exploration_noise=0.1),
    'explore0.3': lambda spec: dataclasses.replace(spec, exploration_noise=0.3),
    # The value model judges the policy by the undegraded expert's action, while takeovers act
    # with the degraded expert (an operator who judges better than they act).
    'judge_clean': lambda spec: dataclasses.replace(spec, operator_standard='clean'),
    # A narrower margin for the value model: Q_ref(s, a) on pen is ~80 and its actions differ by
    # ~0.5 (the distorted expert's from the undegraded one's), under pen's 3% margin of 0.97.
    'alpha0.99': lambda spec: dataclasses.replace(
        spec, intervention_overrides=spec.intervention_overrides + (('alpha', 0.99),)),
}


def apply_variants(spec, label: str):
  """The `LoopSpec` of row `label` = method[+variant...]: `spec` with each variant applied."""
  for variant in label.split('+')[1:]:
    if variant not in VARIANTS:
      raise ValueError(f'unknown variant {variant!r} in {label!r}; known: {sorted(VARIANTS)}')
    spec = VARIANTS[variant](spec)
  return spec


def row_order(label: str):
  """Report order: the methods' order, each method's variants after it, alphabetically."""
  method = label.split('+')[0]
  return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER),
          label != method, label)


def grid_name(task, degradation='noise', tag=''):
  """The grid's name: its runs' folder under the root and its report's, results/rlif_<grid>.
  The noise-degraded experts' grid is the task's own; the distorted experts' is
  <task>_distorted; a tag (another budget) comes last."""
  return task + ('_distorted' if degradation == 'distortion' else '') + (f'_{tag}' if tag else '')


def run_dir(root, task, level, method, seed):
  return os.path.join(root, task, f'level{level}', f'{method}-s{seed}')


def thread_environment(threads: int) -> dict:
  """The environment that limits TensorFlow (and oneDNN's OpenMP) to `threads` threads; {} for
  0 (all cores). Read when TensorFlow starts: set it before any TF import, or on a child."""
  if not threads:
    return {}
  return {name: str(threads)
          for name in ('TF_NUM_INTRAOP_THREADS', 'TF_NUM_INTEROP_THREADS', 'OMP_NUM_THREADS')}


def load_rows(root, task):
  rows = []
  base = os.path.join(root, task)
  if not os.path.isdir(base):
    return rows
  for level_dir in sorted(os.listdir(base)):
    if not level_dir.startswith('level'):  # .report.lock
      continue
    for run in sorted(os.listdir(os.path.join(base, level_dir))):
      path = os.path.join(base, level_dir, run, 'results.jsonl')
      if os.path.exists(path):
        with open(path) as f:
          lines = f.read().split('\n')
        # A line without its newline is a row another grid process is still writing.
        for line in lines[:-1]:
          if line.strip():
            row = json.loads(line)
            row['level'] = level_dir[len('level'):]
            row['method'] = run.rsplit('-s', 1)[0]  # the method, with its variant if any
            rows.append(row)
  return rows


def restore_records(root, grid, out_dir) -> list[str]:
  """Writes each run's `results.jsonl` under ROOT/GRID back from the report's committed
  `runs.jsonl`, for the runs that have no folder here (a new machine starts with no runs), so
  the report keeps them. Only the records come back, not the checkpoints: a restored run that
  had finished is complete, one that had not cannot be continued. Returns the restored runs."""
  import collections
  path = os.path.join(out_dir, 'runs.jsonl')
  if not os.path.exists(path):
    return []
  runs = collections.defaultdict(list)
  with open(path) as f:
    for line in f:
      if line.strip():
        row = json.loads(line)
        runs[(row['level'], row['method'], row['seed'])].append(row)
  restored = []
  for (level, label, seed), rows in sorted(runs.items()):
    folder = run_dir(root, grid, level, label, seed)
    if os.path.exists(folder):
      continue
    os.makedirs(folder)
    with open(os.path.join(folder, 'results.jsonl'), 'w') as f:
      for row in sorted(rows, key=lambda r: r['round']):
        row = {k: v for k, v in row.items() if k != 'level'}  # the folder says it
        f.write(json.dumps(dict(row, method=label.split('+')[0])) + '\n')
    restored.append(os.path.relpath(folder, root))
  return restored


def report(root, grid, task, out_dir, spec_text, budget=None):
  """Reads the grid's rows and writes its report, one process at a time (a flock on
  ROOT/GRID/.report.lock): without it a grid process that read the rows earlier could write its
  older report over a newer one."""
  from trainer import run_lock
  os.makedirs(os.path.join(root, grid), exist_ok=True)
  with run_lock.exclusive(os.path.join(root, grid, '.report.lock')):
    write_report(load_rows(root, grid), task, out_dir, spec_text, budget)


def evaluation_sentence(rows) -> str:
  """How many episodes each round's evaluation ran (from the rows, so a report rewritten with
  another command line still says what its runs did) and one seed's standard error at most."""
  counts = sorted({row['eval']['episodes'] for row in rows if 'episodes' in row.get('eval', {})})
  if not counts:
    return 'evaluation episodes not recorded'
  error = lambda n: f'{100 * (0.25 / n) ** 0.5:.0f}'
  if len(counts) == 1:
    return (f'{counts[0]} evaluation episodes each, so one seed\'s number has a standard error '
            f'of about {error(counts[0])} points at most')
  return (f'{counts[0]}-{counts[-1]} evaluation episodes per round (each row\'s `eval.episodes` '
          f'in runs.jsonl), so one seed\'s number has a standard error of about '
          f'{error(counts[-1])}-{error(counts[0])} points at most')


def write_report(rows, task, out_dir, spec_text, budget=None):
  """results.md, runs.jsonl and the plots from every run's rows. With `budget` (env steps),
  the table holds only runs that reached it; the others are listed below it."""
  import numpy as np
  os.makedirs(out_dir, exist_ok=True)
  _replace(os.path.join(out_dir, 'runs.jsonl'), ''.join(json.dumps(row) + '\n' for row in rows))
  runs = {}
  for row in rows:
    runs.setdefault((row['level'], row['method'], row['seed']), []).append(row)
  unfinished = sorted(key for key, r in runs.items()
                      if budget is not None and max(x['env_steps'] for x in r) < budget)
  runs = {key: r for key, r in runs.items() if key not in unfinished}
  long_runs = any(row['env_steps'] > MILESTONE_STEPS for row in rows)
  lines = ['Success % of the policy alone after the last round every seed finished (mean over '
           f'seeds, each seed in brackets; {evaluation_sentence(rows)}; +- is the std over '
           'seeds); round 0 is the shared initial BC policy. Last 3 = the mean over seeds of each '
           'seed\'s mean success in its last three rounds (three times the episodes per seed: '
           'less noisy than one round). '
           'Expert = the collecting expert\'s own success in round 0 (its demonstrations). '
           'Interventions = the share of steps under expert control; flagged (runs from '
           '2026-11-27 on) = the share of the operator\'s takeover decisions that its rule '
           'flagged (the value model: Q_ref rated the expert\'s action clearly better); the '
           'rest are its random 1 - beta part, -1 rewards that say nothing about the action.', '',
           '| expert level | method | rounds done | env steps | initial (BC) | final | last 3 '
           '| best round | expert | interventions, last round | paper (1M steps) |'
           + (' success every 20k steps |' if long_runs else ''),
           '|---|---|---|---|---|---|---|---|---|---|---|' + ('---|' if long_runs else '')]
  labels = sorted({k[1] for k in runs}, key=row_order)
  finals = {}  # (level, label) -> final success % per seed, as in the table
  for level in sorted({k[0] for k in runs}, key=lambda x: -int(x)):
    for method in labels:
      seeds = sorted(s for (lv, m, s) in runs if lv == level and m == method)
      if not seeds:
        continue
      per_seed = [sorted(runs[(level, method, s)], key=lambda r: r['round']) for s in seeds]
      # Seeds are compared at the last round all of them finished (a run still going counts
      # with what it has, and the others are cut to the same round).
      n = min(len(r) for r in per_seed)
      per_seed = [r[:n] for r in per_seed]
      final = [100 * r[-1]['eval']['success_rate'] for r in per_seed]
      finals[(level, method)] = final
      initial = [100 * r[0]['eval']['success_rate'] for r in per_seed]
      best = [100 * max(x['eval']['success_rate'] for x in r) for r in per_seed]
      last3 = [100 * np.mean([x['eval']['success_rate'] for x in r[1:][-3:]] or [np.nan])
               for r in per_seed]
      spread = f' +- {np.std(final):.0f}' if len(final) > 1 else ''
      expert = [100 * r[0]['collection']['success_rate'] for r in per_seed]
      interventions = [100 * r[-1]['collection']['intervention_rate'] for r in per_seed
                       if len(r) > 1]
      flagged = [f for f in (flagged_share(r[-1]['collection']) for r in per_seed if len(r) > 1)
                 if f is not None]
      paper = PAPER_PEN.get(method, {}).get(level) if task == 'pen' else None
      curve = _milestones(per_seed)
      lines.append(
          f'| ~{level}% | {method} | {n - 1} | '
          f'{min(r[-1]["env_steps"] for r in per_seed)} | {np.mean(initial):.0f} | '
          f'**{np.mean(final):.0f}**{spread} ({", ".join(f"{v:.0f}" for v in final)}) | '
          f'{"-" if n < 2 else f"{np.mean(last3):.0f}"} | '
          f'{np.mean(best):.0f} | {np.mean(expert):.0f} | '
          f'{f"{np.mean(interventions):.0f}%" if interventions else "-"}'
          f'{_flagged_cell(flagged, len(interventions))} | '
          f'{paper if paper is not None else "-"} |' + (f' {curve} |' if long_runs else ''))
  lines = ([f'# RLIF benchmark on Adroit {task}', '', spec_text, '']
           + headline(finals, task) + [''] + lines)
  paired = ablations(runs)
  if paired:
    lines += [''] + paired
  if unfinished:
    lines += ['', f'Runs stopped before {budget} env steps (not in the table): '
              + ', '.join(f'~{lv}% {m} seed {s}' for lv, m, s in unfinished) + '.']
  if task == 'pen':
    lines += ['', 'Paper (Table 1, pen, mean over the three expert levels): RLIF '
              f'{PAPER_PEN_AVERAGE["rlif_value"]}, HG-DAgger {PAPER_PEN_AVERAGE["hg_dagger"]}, '
              f'DAgger {PAPER_PEN_AVERAGE["dagger"]}, BC {PAPER_PEN_AVERAGE["bc"]}.']
  _replace(os.path.join(out_dir, 'results.md'), '\n'.join(lines) + '\n')
  _plots(runs, task, out_dir)


def _flagged_cell(shares, seeds: int) -> str:
  """' (N% flagged)' over the seeds that counted their takeovers, saying how many of the row's
  seeds those are when not all of them."""
  import numpy as np
  if not shares:
    return ''
  some = f', {len(shares)} of {seeds} seeds' if len(shares) < seeds else ''
  return f' ({100 * np.mean(shares):.0f}% flagged{some})'


def flagged_share(collection: dict):
  """The share of a round's takeover decisions that the operator's rule flagged, or None
  (`sim.intervention.flagged_share` of the round's `intervention_decisions`)."""
  from sim import intervention
  return intervention.flagged_share(collection.get('intervention_decisions'))


def _replace(path, text_or_figure) -> None:
  """Writes a report file whole or not at all: two grid processes may rewrite the same report."""
  root, ext = os.path.splitext(path)
  tmp = f'{root}.{os.getpid()}.tmp{ext}'  # the extension last: savefig reads the format from it
  try:
    if isinstance(text_or_figure, str):
      with open(tmp, 'w') as f:
        f.write(text_or_figure)
    else:
      text_or_figure.savefig(tmp, dpi=90)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def headline(finals, task) -> list[str]:
  """The methods as they ship (no variants) side by side: final success % per level, mean +-
  std (seeds), the mean over levels, and RLIF value against HG-DAgger per level, "above" or
  "below" only when the gap is larger than the larger of the two spreads (std over seeds)."""
  import numpy as np
  methods = [m for m in METHOD_ORDER if any(label == m for _, label in finals)]
  levels = sorted({lv for lv, _ in finals}, key=lambda x: -int(x))
  if not methods:
    return []
  compare = 'rlif_value' in methods and 'hg_dagger' in methods
  lines = ['Headline: final success % of each method as it ships (rows with a variant are in '
           'the table below), mean +- std over seeds (seed count).', '',
           '| expert level | ' + ' | '.join(methods) + ' |'
           + (' RLIF value - HG-DAgger |' if compare else ''),
           '|---|' + '---|' * (len(methods) + compare)]

  def cell(values):
    return f'{np.mean(values):.0f} +- {np.std(values):.0f} ({len(values)})'

  for level in levels:
    row = [cell(finals[(level, m)]) if (level, m) in finals else '-' for m in methods]
    if compare:
      row.append(_versus(finals.get((level, 'rlif_value')), finals.get((level, 'hg_dagger'))))
    lines.append(f'| ~{level}% | ' + ' | '.join(row) + ' |')
  means = []
  for m in methods:
    per_level = [np.mean(finals[(lv, m)]) for lv in levels if (lv, m) in finals]
    means.append(f'**{np.mean(per_level):.0f}**' + ('' if len(per_level) == len(levels) else
                                                    f' ({len(per_level)} of {len(levels)} levels)'))
  lines.append('| mean over levels | ' + ' | '.join(means) + ' |' + (' |' if compare else ''))
  if task == 'pen':
    lines.append('| paper (Table 1, pen mean) | '
                 + ' | '.join(str(PAPER_PEN_AVERAGE.get(m, '-')) for m in methods) + ' |'
                 + (' |' if compare else ''))
  return lines


def ablations(runs) -> list[str]:
  """Each variant row against its method as it ships, on the seeds both have: final success %
  per seed side by side and the per-seed difference. The same seed draws the same initial
  states and noise for both runs, but runs collected before the experts acted row by row in a
  batch (`experts.DeterministicExpert.act_all`) have demonstrations that differ in the last bits,
  which the simulation amplifies (pen ~40% seed 1: expert success 38% one episode at a time, 36%
  ten at a time); where the two runs' initial BC policies differ, the row says so. Where the
  method has a `+rerun` run on a seed (the method unchanged, collected with today's code) that
  starts from the variant's initial policy while the shipped run does not, the variant is paired
  with the rerun; the `+rerun` row itself, against the shipped run, shows what a re-collection
  alone changes."""
  import numpy as np
  lines = []
  starts = {key: _initial(run) for key, run in runs.items()}
  for level in sorted({k[0] for k in runs}, key=lambda x: -int(x)):
    for label in sorted({k[1] for k in runs if k[0] == level and '+' in k[1]}, key=row_order):
      base = label.split('+')[0]
      rerun = f'{base}+rerun'
      partner = functools.partial(pair_partner, starts, level, label, base)

      seeds = sorted(s for (lv, m, s) in runs if lv == level and m == label
                     and (level, base, s) in runs)
      if not seeds:
        continue
      counts = {_eval_episodes(runs[(level, m, s)]) for s in seeds for m in (label, partner(s))}
      if len(counts) > 1:  # 20 and 100 evaluation episodes are different samples of starts
        lines.append(f'| ~{level}% | {label} | {", ".join(map(str, seeds))} | - | - | - | - | '
                     f'not paired: evaluated on {" and ".join(map(str, sorted(counts)))} '
                     'episodes (benchmarks/reevaluate.py pairs them on 100) |')
        continue
      pairs = [_at_equal_steps([sorted(runs[(level, m, s)], key=lambda x: x['round'])
                                for m in (label, partner(s))]) for s in seeds]
      final = [[100 * run[-1]['eval']['success_rate'] for run in pair] for pair in pairs]
      gaps = [v - b for v, b in final]
      differ = [f'seed {s}: {_initial_text(pair[0], pair[1])}' for s, pair in zip(seeds, pairs)
                if _initial(pair[0]) != _initial(pair[1])]
      reran = [s for s in seeds if partner(s) == rerun]
      notes = (['differ: ' + '; '.join(differ)] if differ else []) + (
          [f'seed{"s" if len(reran) > 1 else ""} {", ".join(map(str, reran))}: against the '
           'rerun'] if reran else [])
      lines.append(
          f'| ~{level}% | {label} | {", ".join(map(str, seeds))} | '
          f'{", ".join(f"{v:.0f}" for v, _ in final)} | '
          f'{", ".join(f"{b:.0f}" for _, b in final)} | '
          f'{np.mean(gaps):+.0f}' + (f' +- {np.std(gaps):.0f}' if len(gaps) > 1 else '')
          + f' | {sum(g > 0 for g in gaps)} of {len(gaps)} | '
          f'{"; ".join(notes) or "same"} |')
  if not lines:
    return []
  return ['Ablations: each variant against its method as it ships, on the same seeds (final '
          'success %; difference = variant - method per seed, mean +- std; "against the rerun": '
          'that seed\'s partner is the method collected again with today\'s code, which starts '
          'from the same initial policy as the variant).', '',
          '| expert level | variant | seeds | variant | method as it ships | difference | '
          'variant ahead | initial BC policies |',
          '|---|---|---|---|---|---|---|---|'] + lines


def pair_partner(starts, level, label, base, seed) -> str:
  """The row `label` is compared with on `seed`: `base` as it ships, or `base+rerun` (the same
  method collected again, on another day or machine) where only the rerun starts from the same
  initial BC policy as `label`. starts: {(level, row, seed): what identifies the run's initial
  policy}."""
  rerun = f'{base}+rerun'
  if label == rerun or (level, rerun, seed) not in starts:
    return base
  start = starts[(level, label, seed)]
  if starts.get((level, base, seed)) != start == starts[(level, rerun, seed)]:
    return rerun
  return base


def _eval_episodes(run):
  """How many episodes a run's rounds were evaluated on (None: not recorded)."""
  return min(run, key=lambda row: row['round'])['eval'].get('episodes')


def _initial(run):
  """What identifies a run's initial BC policy: its round-0 evaluation (success and mean
  return, which differ between policies in practice)."""
  first = min(run, key=lambda row: row['round'])['eval']
  return first['success_rate'], first.get('mean_return')


def _initial_text(run, other) -> str:
  """'40 vs 30' (initial success %), with the returns where the successes are equal."""
  (success, ret), (other_success, other_ret) = _initial(run), _initial(other)
  text = f'{100 * success:.0f} vs {100 * other_success:.0f}'
  if success == other_success and ret is not None and other_ret is not None:
    text += f' (return {ret:.0f} vs {other_ret:.0f})'
  return text


def _at_equal_steps(runs):
  """Each run's rounds up to the env steps the shortest of them reached (a run still going is
  compared with its partner at the same budget, whatever their round sizes)."""
  steps = min(run[-1]['env_steps'] for run in runs)
  return [[row for row in run if row['env_steps'] <= steps] for run in runs]


def _versus(ours, theirs) -> str:
  """'+12 (above)' when the gap exceeds both spreads, '(within the spread)' otherwise; with a
  single seed on either side there is no spread to judge by."""
  import numpy as np
  if not ours or not theirs:
    return '-'
  gap = np.mean(ours) - np.mean(theirs)
  if min(len(ours), len(theirs)) < 2:
    return f'{gap:+.0f} (one seed: not judged)'
  spread = max(np.std(ours), np.std(theirs))
  verdict = ('above' if gap > spread else 'below' if -gap > spread else 'within the spread')
  return f'{gap:+.0f} ({verdict})'


def _milestones(per_seed) -> str:
  """Mean success % over seeds at every MILESTONE_STEPS env steps the runs reached, e.g.
  '20k 45, 40k 60'."""
  import numpy as np
  out = []
  for i, row in enumerate(per_seed[0]):
    if row['env_steps'] and row['env_steps'] % MILESTONE_STEPS == 0:
      value = np.mean([100 * r[i]['eval']['success_rate'] for r in per_seed])
      out.append(f'{row["env_steps"] // 1000}k {value:.0f}')
  return ', '.join(out) or '-'


def _plots(runs, task, out_dir):
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  import numpy as np
  levels = sorted({k[0] for k in runs}, key=lambda x: -int(x))
  labels = sorted({k[1] for k in runs}, key=row_order)
  for key, name, ylabel in (('eval', 'success.png', 'policy success %'),
                            ('collection', 'interventions.png', 'intervention rate %')):
    fig, axes = plt.subplots(1, max(len(levels), 1), figsize=(5 * max(len(levels), 1), 3.6),
                             squeeze=False)
    for ax, level in zip(axes[0], levels):
      for method in sorted({k[1] for k in runs}, key=row_order):
        curves = [sorted(r, key=lambda x: x['round'])
                  for (lv, m, s), r in runs.items() if lv == level and m == method]
        if not curves:
          continue
        n = min(len(c) for c in curves)
        field = 'success_rate' if key == 'eval' else 'intervention_rate'
        values = np.mean([[100 * c[i][key][field] for i in range(n)] for c in curves], axis=0)
        steps = [curves[0][i]['env_steps'] / 1000 for i in range(n)]
        start = 0 if key == 'eval' else 1  # round 0 is the demonstrations: no interventions
        ax.plot(steps[start:], values[start:], marker='o', label=f'{method} ({len(curves)})',
                color=f'C{labels.index(method) % 10}')  # one colour per row in every panel
      ax.set_title(f'{task}, ~{level}% expert')
      ax.set_xlabel('env steps (thousands)')
      ax.set_ylabel(ylabel)
      ax.set_ylim(-2, 102)
      ax.grid(alpha=0.3)
      ax.legend(fontsize=8)
    fig.tight_layout()
    _replace(os.path.join(out_dir, name), fig)
    plt.close(fig)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--task', default='pen')
  parser.add_argument('--levels', default='40,10,90')
  parser.add_argument('--methods', default='rlif_value,rlif_random,hg_dagger,bc',
                      help=f'comma-separated rows, each a method from {METHOD_ORDER} with '
                           'optional +variant suffixes (VARIANTS), e.g. rlif_value+bc_demo+g4')
  parser.add_argument('--seeds', default='0')
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--episodes_per_round', type=int, default=20)
  parser.add_argument('--num_demos', type=int, default=50)
  parser.add_argument('--initial_updates', type=int, default=2000)
  parser.add_argument('--updates_per_round', type=int, default=1000)
  parser.add_argument('--eval_episodes', type=int, default=100,
                      help='episodes of each round\'s policy alone (grids before 2026-12-07: 20; '
                           'continue those with --eval_episodes 20 so a run\'s rounds compare, '
                           'and re-evaluate them with benchmarks/reevaluate.py)')
  parser.add_argument('--root', default=None,
                      help='run folders (default: $RLIF_RUNS or ~/rlif_runs, /benchmark): outside '
                           'the work tree, so a grid resumes in a later session on this machine')
  parser.add_argument('--expert_dir', default=os.path.join(REPO, '..', 'shared', 'experts',
                                                           'adroit'))
  parser.add_argument('--degradation', default='noise', choices=('noise', 'distortion'),
                      help='how the ~90/40/10%% experts are made (sim/experts.py): zero-mean '
                           'action noise, or a fixed state-dependent distortion of the action '
                           '(grid <task>_distorted)')
  parser.add_argument('--tag', default='',
                      help='a name for a grid with other budgets (e.g. 100k): its runs go to '
                           'ROOT/<task>_<tag>/ and its report to results/rlif_<task>_<tag>/')
  parser.add_argument('--only_report', action='store_true')
  parser.add_argument('--restore', action='store_true',
                      help='first write back the records of the runs in the committed '
                           'runs.jsonl that have no folder under ROOT (a new machine): the '
                           'report keeps them; they cannot be continued')
  parser.add_argument('--complete_only', action='store_true',
                      help='the report\'s table holds only runs that spent the whole budget')
  parser.add_argument('--threads', type=int, default=0,
                      help='TensorFlow threads of this process (0: all cores); with two grid '
                           'processes on two cores, 1 each: collection and evaluation are '
                           'single-threaded, so one process alone leaves a core idle')
  args = parser.parse_args()
  os.environ.update(thread_environment(args.threads))  # before any TF import
  grid = grid_name(args.task, args.degradation, args.tag)
  from sim import experts as experts_lib
  from sim import loop
  from trainer import run_lock
  args.root = args.root or os.path.join(loop.RUNS_ROOT, 'benchmark')
  out_dir = os.path.join(REPO, 'benchmarks', 'results', f'rlif_{grid}')
  spec_text = ('Experts: the task\'s shipped expert under '
               + ('zero-mean Gaussian action noise' if args.degradation == 'noise' else
                  'a fixed state-dependent distortion of its action (DistortedExpert)')
               + ', calibrated per level (sim/experts.py). '
               f'Budget per run: {args.rounds} rounds x {args.episodes_per_round} episodes '
               '(the report\'s command; a row that ran another budget says so in its rounds '
               'done and env steps), at most 100k env steps (the paper\'s DAgger budget), '
               f'{args.num_demos} expert '
               f'demonstrations as round 0, {args.initial_updates} BC updates for the initial '
               f'policy, {args.updates_per_round} learner train calls per round, evaluation of '
               'each round\'s policy alone (episodes: below). Learner settings: '
               'configs/<learner>.toml '
               'unchanged (rlif_* rows: configs/rlif.toml, the product default; rlpd_value: the '
               'paper\'s plain RLPD); a row `method+variant` changes one thing '
               '(benchmarks/rlif_benchmark.py VARIANTS).')
  if args.restore:
    for folder in restore_records(args.root, grid, out_dir):
      print(f'restored the records of {folder}', flush=True)
  if not args.only_report:
    for level in args.levels.split(','):
      for seed in (int(s) for s in args.seeds.split(',')):
        for label in args.methods.split(','):
          spec = apply_variants(loop.LoopSpec(
              task=args.task, method=label.split('+')[0], seed=seed,
              **{f'expert_{args.degradation}':
                 experts_lib.calibrated_scale(args.task, level, args.degradation)},
              num_demos=args.num_demos, rounds=args.rounds,
              episodes_per_round=args.episodes_per_round, initial_updates=args.initial_updates,
              updates_per_round=args.updates_per_round, eval_episodes=args.eval_episodes,
              max_env_steps=100_000), label)
          start = time.perf_counter()
          try:
            loop.RlifLoop(spec, run_dir(args.root, grid, level, label, seed),
                          args.expert_dir, os.path.join(loop.RUNS_ROOT, 'reference')).run()
          except run_lock.RunInUse as e:  # another grid process has it: leave it to that one
            print(f'== level {level} {label} seed {seed}: skipped, in use by {e.holder}',
                  flush=True)
            continue
          print(f'== level {level} {label} seed {seed}: {time.perf_counter() - start:.0f} s',
                flush=True)
          report(args.root, grid, args.task, out_dir, spec_text)
  from sim import tasks as tasks_lib
  budget = (args.rounds * args.episodes_per_round * tasks_lib.get_task(args.task).episode_length
            if args.complete_only else None)
  report(args.root, grid, args.task, out_dir, spec_text, budget)
  print(open(os.path.join(out_dir, 'results.md')).read())


if __name__ == '__main__':
  main()
