"""The per-round report: what went in, what was written, what was rejected and why."""

from __future__ import annotations

import collections

import numpy as np



def build_report(round_index: int, receipts: list[dict], rejected: list[dict],
                 settings: dict, num_input_files: int) -> dict:
  stats = [r['stats'] for r in receipts if r['stats'] is not None]
  rejected_episodes = [r for r in rejected if r['counts_as_episode']]
  transitions = sum(s['transitions'] for s in stats)
  intervention_steps = sum(s['intervention_steps'] for s in stats)
  lengths = [n for s in stats for n in s['takeover_lengths']]
  by_reason = collections.Counter(r['reason'] for r in rejected)
  by_unit = collections.Counter(r['unit'] for r in rejected)
  return {
      'round': round_index,
      'settings': settings,
      'input_files': num_input_files,
      'input_episodes': len(stats) + len(rejected_episodes),
      'episodes_written': len(stats),
      'episodes_rejected': len(rejected_episodes),
      'rlds_episodes_written': len(receipts),
      'transitions': transitions,
      'rlds_steps': sum(r['rlds_steps'] for r in receipts),
      'demonstrations': sum(not s['has_intervention_flags'] for s in stats),
      'intervention_steps': intervention_steps,
      'intervention_rate': intervention_steps / transitions if transitions else 0.0,
      'takeovers': len(lengths),
      'negative_rewards': sum(s['negative_rewards'] for s in stats),
      'episodes_with_takeover': sum(s['takeovers'] > 0 for s in stats),
      'takeover_length': {
          'mean': float(np.mean(lengths)) if lengths else 0.0,
          'median': float(np.median(lengths)) if lengths else 0.0,
          'max': int(max(lengths)) if lengths else 0,
      },
      'terminated_episodes': sum(s['terminated'] for s in stats),
      'steps_with_actions_outside_unit_box': sum(s['actions_out_of_bounds'] for s in stats),
      'rejected_by_reason': dict(sorted(by_reason.items())),
      'rejected_by_unit': dict(sorted(by_unit.items())),
      'rejected': [{k: r[k] for k in ('reason', 'unit', 'source', 'episode_id', 'detail')}
                   for r in rejected],
  }


def summary_text(report: dict, where: str) -> str:
  """The report as a few lines a person reads in a terminal."""
  t = report['takeover_length']
  lines = [
      f"round {report['round']} -> {where}",
      f"  input: {report['input_files']} files, {report['input_episodes']} episodes",
      f"  written: {report['episodes_written']} episodes "
      f"({report['rlds_episodes_written']} RLDS episodes), {report['transitions']} transitions",
      f"  interventions: {report['intervention_steps']} steps "
      f"({100 * report['intervention_rate']:.1f}% of transitions), {report['takeovers']} "
      f"takeovers in {report['episodes_with_takeover']} episodes, "
      f"{report['negative_rewards']} rewards of -1",
      f"  takeover length: mean {t['mean']:.1f}, median {t['median']:.0f}, max {t['max']} steps",
      f"  demonstrations (no intervention flags): {report['demonstrations']}; "
      f"terminated episodes: {report['terminated_episodes']}",
      f"  rejected: {report['episodes_rejected']} episodes; records by reason: "
      + (', '.join(f'{k} {v}' for k, v in report['rejected_by_reason'].items()) or 'none'),
  ]
  if report.get('input_patterns_matching_nothing'):
    lines.append('  input patterns that matched no file (skipped): '
                 + ', '.join(report['input_patterns_matching_nothing']))
  for r in report['rejected'][:20]:
    lines.append(f"    - {r['reason']} [{r['source']}"
                 + (f" episode {r['episode_id']}" if r['episode_id'] else '') + f"]: {r['detail']}")
  if len(report['rejected']) > 20:
    lines.append(f"    ... {len(report['rejected']) - 20} more in the rejected/ folder")
  if report['steps_with_actions_outside_unit_box']:
    lines.append(f"  note: {report['steps_with_actions_outside_unit_box']} steps have actions "
                 "outside [-1, 1] (kept as logged)")
  return '\n'.join(lines) + '\n'


