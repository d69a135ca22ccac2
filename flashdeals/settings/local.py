"""`make run`: the base settings with Silk on unless told otherwise."""

import os

os.environ.setdefault("SILK_ENABLED", "true")

from .base import *  # noqa: E402,F403
