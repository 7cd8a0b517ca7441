"""The simulator side of RLIF: Adroit hand tasks, expert policies, intervention models, and the
collector that deploys a policy under a (simulated) expert and writes raw logs for `pipeline/`.

Modules: `tasks` (environments, success rules), `experts` (DAPG MLP experts and degraded ones),
`actor_expert` (a policy the trainer exported, as numpy arrays), `project_expert` (the
repository's own expert per task: pen's is such an actor), `planner` (MPPI planning on the pen
simulator, bound to the env it acts in), `intervention` (when the expert takes over),
`collector` (rounds -> raw npz episodes), `human_demos` (the door human demonstrations as raw
episodes), `reference` (Q_ref for the value-based model: our RLPD agent on the dense reward),
`loop` (the closed RLIF cycle and the baselines on equal budgets: `python -m sim.loop`),
`prepare` (the quickstart's dataset: manual-dir raw logs or simulated rounds).
"""

import os as _os

# Off-screen rendering (sim.tasks.Camera) on machines without a display: MuJoCo picks its OpenGL
# backend when it is first imported, so it is chosen here, before any sim module imports it.
# EGL with Mesa's software rasterizer (Debian: libegl1, libgl1-mesa-dri; .ci/run installs them);
# a MUJOCO_GL set by the user wins.
_os.environ.setdefault('MUJOCO_GL', 'egl')
