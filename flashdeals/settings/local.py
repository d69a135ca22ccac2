"""`make run`: the base settings with Silk on, readable logs and a line per request, unless the
environment or `.env` say otherwise."""

import os

from flashdeals.envfile import load

load()  # .env first: what it sets wins over the defaults below
os.environ.setdefault("SILK_ENABLED", "true")
os.environ.setdefault("LOG_FORMAT", "plain")
os.environ.setdefault("LOG_REQUESTS", "true")

from .base import *  # noqa: E402,F403
from .base import env  # noqa: E402

# The load-test lab's auth-cpu-bottleneck measures what the revoked-users check costs by running
# one stack without it. Local settings only: production never reads this from the environment.
AUTH_UNSAFE_SKIP_REVOCATION = env.bool("AUTH_UNSAFE_SKIP_REVOCATION", default=False)
