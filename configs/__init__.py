"""Learner settings as data: configs/<learner>.toml, one key per constructor argument of the
learner, each with a comment saying why. The registry that maps learner names to agents and to
these files is trainer/learners.py."""

import os

DIRECTORY = os.path.dirname(os.path.abspath(__file__))
