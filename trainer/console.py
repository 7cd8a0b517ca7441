"""What the main jobs print: their own lines and real warnings, not the notices third-party
libraries print on every start.

`quiet_libraries()` must run before TensorFlow is imported (TensorFlow reads its log level once).
It removes exactly these, each of which appears on every run and says nothing about this run:
  * TensorFlow's C++ INFO lines (the CPU-feature banner); its warnings and errors still show;
  * the notice `gym` prints at import (`gym_notices`; gym 0.23 is a TF-Agents dependency that is
    never called) and the one `gymnasium_robotics` prints (`farama_notifications`: the Dense-v1
    Adroit rewards changed in 1.2.1; the project pins gymnasium-robotics 1.4.2 in
    requirements.lock, reports the dense reward as a diagnostic and trains only Q_ref on it);
  * absl's "is not a valid tf.function parameter name. Sanitizing" warnings from `PolicySaver`
    (TF-Agents' `0/observation` signature names, renamed inside the SavedModel only);
  * two Python warnings raised inside TensorFlow itself: autograph's generated code comparing
    with `is not ()` (a SyntaxWarning) and the SavedModel encoder's "Encoding a StructuredValue"
    note on TFP distribution specs.
"""

from __future__ import annotations

import logging
import os
import warnings


class _DropMessages(logging.Filter):

  def __init__(self, *fragments: str):
    super().__init__()
    self._fragments = fragments

  def filter(self, record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not any(fragment in message for fragment in self._fragments)


def quiet_libraries() -> None:
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')
  for module, attribute, key in (('gym_notices.notices', 'notices', None),
                                 ('farama_notifications', 'notifications', 'gymnasium_robotics')):
    try:
      notices = getattr(__import__(module, fromlist=[attribute]), attribute)
    except ImportError:
      continue
    if key is None:
      notices.clear()
    else:
      notices.pop(key, None)
  warnings.filterwarnings('ignore', message=r'"is not" with a literal', category=SyntaxWarning)
  warnings.filterwarnings('ignore', message='Encoding a StructuredValue', category=UserWarning)
  logging.getLogger('absl').addFilter(
      _DropMessages('is not a valid tf.function parameter name'))
