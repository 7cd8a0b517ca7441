r"""The paper's comparison on Adroit: RLIF (value-based, random) vs HG-DAgger vs BC under
suboptimal experts, every method on the same environment-step budget.

  python benchmarks/rlif_benchmark.py [--levels 40,10,90] [--methods ...] [--seeds 0,1,2]
      [--rounds 5 --episodes_per_round 20 --updates_per_round 1000] [--only_report]

Each (level, method, seed) is one `sim.loop` run under runs/benchmark/<task>/...; runs are
resumable (the loop records every finished round), so the script can be stopped and started
again across sessions and picks up where it stopped. After every finished run it rewrites the
report: benchmarks/results/rlif_<task>/{results.md, runs.jsonl, success.png, interventions.png}.

Expert levels are the calibrated `NoisyExpert` noise scales of `sim.experts.CALIBRATED_NOISE`
(sim/EXPERTS.md: pen success by the paper's final-step rule, door/hammer/relocate by D4RL's).
`--task door|hammer|relocate` runs those rows; the paper reports per-level numbers for pen only.
"""

from __future__ import annotations

import argparse
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
METHOD_ORDER = ('rlif_value', 'rlif_value+slow_actor', 'rlif_value+bc_reg', 'rlif_random',
                'rlif_random+bc_reg', 'hg_dagger', 'bc')
# On top of configs/rlpd.json for the RLIF runs. Every learner starts from the same BC actor;
# with RLPD's initial temperature of 1.0 and untrained critics, the first round's updates turned
# that actor into a near-random one (pen, ~40% expert: BC 20% success -> 0% after round 1, on
# the first attempt of this benchmark). A critic warm-up and a temperature matched to the
# size of the -1/0 rewards keep what the actor knows while the critics learn.
RLIF_OVERRIDES = (('initial_temperature', 0.01), ('actor_update_after', 500))
# Variants of the RLIF learner settings, run as extra rows `<method>+<variant>`. `slow_actor`:
# the first attempt still lost the BC actor within one round; Adam moves every actor weight by
# about the learning rate per update however small and noisy the critic's action-gradient is,
# so a 10x smaller actor learning rate bounds how far one round can drag the actor.
# `bc_reg`: slow_actor lost it too (round 1: 20% -> 0%), so the critics' action-gradients point
# consistently off the logged actions, not just noisily; a TD3+BC-style behaviour term
# (trainer/rlpd_agent.py `bc_weight`; 0.4 ~ TD3+BC's 2.5 / mean|Q| with |Q| ~ 1 here) holds the
# actor near them while the -1 rewards reshape it.
RLIF_VARIANTS = {
    'slow_actor': RLIF_OVERRIDES + (('actor_learning_rate', 3e-5),),
    'bc_reg': RLIF_OVERRIDES + (('bc_weight', 0.4),),
}


def run_dir(root, task, level, method, seed):
  return os.path.join(root, task, f'level{level}', f'{method}-s{seed}')


def load_rows(root, task):
  rows = []
  base = os.path.join(root, task)
  if not os.path.isdir(base):
    return rows
  for level_dir in sorted(os.listdir(base)):
    for run in sorted(os.listdir(os.path.join(base, level_dir))):
      path = os.path.join(base, level_dir, run, 'results.jsonl')
      if os.path.exists(path):
        with open(path) as f:
          for line in f:
            if line.strip():
              row = json.loads(line)
              row['level'] = level_dir[len('level'):]
              row['method'] = run.rsplit('-s', 1)[0]  # the method, with its variant if any
              rows.append(row)
  return rows


def write_report(rows, task, out_dir, spec_text):
  import numpy as np
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, 'runs.jsonl'), 'w') as f:
    for row in rows:
      f.write(json.dumps(row) + '\n')
  runs = {}
  for row in rows:
    runs.setdefault((row['level'], row['method'], row['seed']), []).append(row)
  long_runs = any(row['env_steps'] > MILESTONE_STEPS for row in rows)
  lines = [f'# RLIF benchmark on Adroit {task}', '', spec_text, '',
           'Success % of the policy alone after the last round every seed finished (mean over '
           'seeds, each seed in brackets; 20 evaluation episodes each, so one seed\'s number has a '
           'standard error of about 10 points); round 0 is the shared initial BC policy. '
           'Expert = the collecting expert\'s own success in round 0 (its demonstrations).', '',
           '| expert level | method | rounds done | env steps | initial (BC) | final | best round '
           '| expert | interventions, last round | paper (1M steps) |'
           + (' success every 20k steps |' if long_runs else ''),
           '|---|---|---|---|---|---|---|---|---|---|' + ('---|' if long_runs else '')]
  for level in sorted({k[0] for k in runs}, key=lambda x: -int(x)):
    for method in METHOD_ORDER:
      seeds = sorted(s for (lv, m, s) in runs if lv == level and m == method)
      if not seeds:
        continue
      per_seed = [sorted(runs[(level, method, s)], key=lambda r: r['round']) for s in seeds]
      # Seeds are compared at the last round all of them finished (a run still going counts
      # with what it has, and the others are cut to the same round).
      n = min(len(r) for r in per_seed)
      per_seed = [r[:n] for r in per_seed]
      final = [100 * r[-1]['eval']['success_rate'] for r in per_seed]
      initial = [100 * r[0]['eval']['success_rate'] for r in per_seed]
      best = [100 * max(x['eval']['success_rate'] for x in r) for r in per_seed]
      expert = [100 * r[0]['collection']['success_rate'] for r in per_seed]
      interventions = [100 * r[-1]['collection']['intervention_rate'] for r in per_seed
                       if len(r) > 1]
      paper = PAPER_PEN.get(method, {}).get(level) if task == 'pen' else None
      curve = _milestones(per_seed)
      lines.append(
          f'| ~{level}% | {method} | {n - 1} | '
          f'{min(r[-1]["env_steps"] for r in per_seed)} | {np.mean(initial):.0f} | '
          f'**{np.mean(final):.0f}** ({", ".join(f"{v:.0f}" for v in final)}) | '
          f'{np.mean(best):.0f} | {np.mean(expert):.0f} | '
          f'{f"{np.mean(interventions):.0f}%" if interventions else "-"} | '
          f'{paper if paper is not None else "-"} |' + (f' {curve} |' if long_runs else ''))
  if task == 'pen':
    lines += ['', 'Paper (Table 1, pen, mean over the three expert levels): RLIF '
              f'{PAPER_PEN_AVERAGE["rlif_value"]}, HG-DAgger {PAPER_PEN_AVERAGE["hg_dagger"]}, '
              f'DAgger {PAPER_PEN_AVERAGE["dagger"]}, BC {PAPER_PEN_AVERAGE["bc"]}.']
  with open(os.path.join(out_dir, 'results.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  _plots(runs, task, out_dir)


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
  for key, name, ylabel in (('eval', 'success.png', 'policy success %'),
                            ('collection', 'interventions.png', 'intervention rate %')):
    fig, axes = plt.subplots(1, max(len(levels), 1), figsize=(5 * max(len(levels), 1), 3.6),
                             squeeze=False)
    for ax, level in zip(axes[0], levels):
      for method in METHOD_ORDER:
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
                color=f'C{METHOD_ORDER.index(method)}')  # one colour per method in every panel
      ax.set_title(f'{task}, ~{level}% expert')
      ax.set_xlabel('env steps (thousands)')
      ax.set_ylabel(ylabel)
      ax.set_ylim(-2, 102)
      ax.grid(alpha=0.3)
      ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, name), dpi=90)
    plt.close(fig)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--task', default='pen')
  parser.add_argument('--levels', default='40,10,90')
  parser.add_argument('--methods', default='rlif_value,rlif_random,hg_dagger,bc',
                      help=f'comma-separated, from {METHOD_ORDER}')
  parser.add_argument('--seeds', default='0')
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--episodes_per_round', type=int, default=20)
  parser.add_argument('--num_demos', type=int, default=50)
  parser.add_argument('--initial_updates', type=int, default=2000)
  parser.add_argument('--updates_per_round', type=int, default=1000)
  parser.add_argument('--eval_episodes', type=int, default=20)
  parser.add_argument('--root', default=os.path.join(REPO, 'runs', 'benchmark'))
  parser.add_argument('--expert_dir', default=os.path.join(REPO, '..', 'shared', 'experts',
                                                           'adroit'))
  parser.add_argument('--tag', default='',
                      help='a name for a grid with other budgets (e.g. 100k): its runs go to '
                           'ROOT/<task>_<tag>/ and its report to results/rlif_<task>_<tag>/')
  parser.add_argument('--only_report', action='store_true')
  args = parser.parse_args()
  grid = f'{args.task}_{args.tag}' if args.tag else args.task
  from sim import experts as experts_lib
  from sim import loop
  out_dir = os.path.join(REPO, 'benchmarks', 'results', f'rlif_{grid}')
  spec_text = (f'Budget per run: {args.rounds} rounds x {args.episodes_per_round} episodes '
               f'(at most 100k env steps, the paper\'s DAgger budget), {args.num_demos} expert '
               f'demonstrations as round 0, {args.initial_updates} BC updates for the initial '
               f'policy, {args.updates_per_round} learner updates per round (configs/*.json '
               f'settings; RLIF runs add {dict(RLIF_OVERRIDES)}; variants: {RLIF_VARIANTS}), '
               f'evaluation on '
               f'{args.eval_episodes} episodes per round.')
  if not args.only_report:
    for level in args.levels.split(','):
      for seed in (int(s) for s in args.seeds.split(',')):
        for label in args.methods.split(','):
          method, _, variant = label.partition('+')
          overrides = (RLIF_VARIANTS[variant] if variant
                       else RLIF_OVERRIDES if method.startswith('rlif') else ())
          spec = loop.LoopSpec(
              task=args.task, method=method, seed=seed,
              expert_noise=experts_lib.calibrated_noise(args.task, level),
              num_demos=args.num_demos, rounds=args.rounds,
              episodes_per_round=args.episodes_per_round, initial_updates=args.initial_updates,
              updates_per_round=args.updates_per_round, eval_episodes=args.eval_episodes,
              max_env_steps=100_000,
              learner_overrides=overrides)
          start = time.perf_counter()
          loop.RlifLoop(spec, run_dir(args.root, grid, level, label, seed),
                        args.expert_dir, os.path.join(REPO, 'runs', 'reference')).run()
          print(f'== level {level} {label} seed {seed}: {time.perf_counter() - start:.0f} s',
                flush=True)
          write_report(load_rows(args.root, grid), args.task, out_dir, spec_text)
  write_report(load_rows(args.root, grid), args.task, out_dir, spec_text)
  print(open(os.path.join(out_dir, 'results.md')).read())


if __name__ == '__main__':
  main()
