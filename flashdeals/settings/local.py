"""`make run`: the base settings with Silk on unless told otherwise."""

import os

os.environ.setdefault("SILK_ENABLED", "true")

from .base import *  # noqa: E402,F403
from .base import env  # noqa: E402

# The load-test lab's auth-cpu-bottleneck measures what the revoked-users check costs by running
# one stack without it. Local settings only: production never reads this from the environment.
AUTH_UNSAFE_SKIP_REVOCATION = env.bool("AUTH_UNSAFE_SKIP_REVOCATION", default=False)
