"""Before forking test processes: drop pooled connections, so no child inherits a socket the
parent is using (a shared PostgreSQL or Redis socket corrupts both sides' replies).

Celery control commands (pings) in tests must use a dedicated connection
(`with app.connection_for_write() as conn: app.control.ping(connection=conn)`): a pooled one is
left polling its reply queue, and kombu's after-fork cleanup in the child then blocks reading
the parent's socket.
"""

from django.db import connections

from apps.core.redis import get_redis


def close_connections_before_fork() -> None:
    connections.close_all()
    get_redis().connection_pool.reset()
