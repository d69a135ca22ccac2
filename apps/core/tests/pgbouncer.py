"""A real PgBouncer in transaction mode in front of the test database (Debian's `pgbouncer`
package), and the default database connection routed through it for one test.

Two server connections, handed out round robin: two transactions in a row run on different
server connections whenever both are idle, so anything a statement leaves on its server
connection beyond its transaction (a cursor, a prepared statement) is missing from the next
one every time, not only under load."""

import copy
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from flashdeals.settings.pooling import transaction_pooling
from scripts import debian_tools

PGBOUNCER = debian_tools.find("pgbouncer") or "pgbouncer"  # (tests call require() first)
SERVER_CONNECTIONS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgBouncer:
    """`pgbouncer` as a child process listening on a free loopback port, passing every database
    name through to the PostgreSQL at `upstream` (host, port) and trusting `user`."""

    def __init__(
        self, workdir: Path, *, upstream: tuple[str, int], user: str,
        pool_size: int = SERVER_CONNECTIONS,
    ) -> None:  # fmt: skip
        self.workdir, self.upstream, self.user = workdir, upstream, user
        self.pool_size = pool_size
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> "PgBouncer":
        host, port = self.upstream
        (self.workdir / "userlist.txt").write_text(f'"{self.user}" ""\n')
        (self.workdir / "pgbouncer.ini").write_text(
            f"[databases]\n* = host={host} port={port}\n\n[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            # trust still requires the user to be listed in auth_file
            f"auth_type = trust\nauth_file = {self.workdir / 'userlist.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {self.pool_size}\n"
            "max_client_conn = 1000\n"
            # round robin over idle server connections; the default, LIFO, would hand one
            # client the server connection it just used whenever nobody else is busy
            "server_round_robin = 1\n"
        )
        # It refuses to run as root; `-u` drops to another user after reading its files.
        as_user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen(
            [PGBOUNCER, *as_user, str(self.workdir / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "pgbouncer.log").open("w"),
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    log = (self.workdir / "pgbouncer.log").read_text()
                    raise RuntimeError(f"pgbouncer did not start:\n{log}") from None
                time.sleep(0.05)

    def open_server_connections(self, dbname: str) -> None:
        """Make PgBouncer open all its server connections now (two clients inside a transaction
        at once), so round robin has them all to alternate between from the first statement."""
        clients = [
            psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, dbname=dbname)
            for _ in range(SERVER_CONNECTIONS)
        ]
        for client in clients:
            client.execute("SELECT 1")  # psycopg opened a transaction: a server is held
        for client in clients:
            client.commit()  # (a client leaving mid-transaction would cost its server)
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


@contextmanager
def default_database_through(
    bouncer: PgBouncer, *, pooling: bool, options: dict | None = None
) -> Iterator[BaseDatabaseWrapper]:
    """For the duration: `connections["default"]` (everything the app runs: the ORM, services,
    `transaction.atomic`) reaches the same test database through `bouncer`, with the settings
    DB_TRANSACTION_POOLING=true gives it (`pooling`) or with Django's defaults, then `options`
    over its OPTIONS."""
    direct = connections["default"]
    settings_dict = copy.deepcopy(direct.settings_dict)
    settings_dict.update(HOST="127.0.0.1", PORT=str(bouncer.port))
    if pooling:
        settings_dict = transaction_pooling(settings_dict)
    else:
        settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = False
        settings_dict["OPTIONS"].pop("prepare_threshold", None)
    settings_dict["OPTIONS"].update(options or {})
    through = direct.__class__(settings_dict, alias="default")
    connections["default"] = through
    try:
        yield through
    finally:
        through.close()
        connections["default"] = direct
