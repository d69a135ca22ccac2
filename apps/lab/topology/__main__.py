"""`make topology` (run it until Ctrl-C) and `make test-topology` (the fault drill).

    python -m apps.lab.topology [--drill] [--out DIR]

PostgreSQL is the embedded one in .devdata/topology unless DATABASE_URL is set; everything else
is started here, on free loopback ports, with data under --out (deleted at each start).
"""

import argparse
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from scripts import devstack

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / ".devdata" / "topology"


def log(message: str) -> None:
    print(f"[topology] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser("topology", description=__doc__)
    parser.add_argument("--drill", action="store_true", help="run the fault drill, then stop")
    parser.add_argument("--out", type=Path, default=DATA / "run")
    args = parser.parse_args(argv)
    # Every process of the topology, this one included, runs the local settings with the URLs
    # of the servers started below (read at django.setup(), once they are known).
    os.environ["DJANGO_SETTINGS_MODULE"] = "flashdeals.settings.local"
    os.environ["FLASHDEALS_ENV_FILE"] = ""  # the lab's stacks are defined here, not by a .env
    from apps.lab.topology.stack import Topology, missing_tools  # (after the line above)

    if missing := missing_tools():
        log(f"needs Debian's {' and '.join(missing)}: apt-get install -y {' '.join(missing)}")
        return 2
    t0 = time.monotonic()
    database_url, started = devstack.database_url_or_embedded(DATA)
    shutil.rmtree(args.out, ignore_errors=True)
    topology = Topology(args.out, database_url)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        topology.start_servers(log)
        os.environ.update(topology.env)  # this process reaches the same servers as the nodes
        import django  # after the environment above: settings read it once, at setup

        django.setup()
        topology.start_processes(log)
        log(f"up in {time.monotonic() - t0:.0f} s; what runs where:\n{topology.table()}")
        log(f"shop (through HAProxy): {topology.base_url}   logs: {topology.logs}")
        if args.drill:
            from apps.lab.topology.drill import drill  # imports models: after setup

            rc = drill(topology, log)
            log(f"drill {'passed' if rc == 0 else 'FAILED'} in {time.monotonic() - t0:.0f} s")
            return rc
        log("Ctrl-C stops all of it")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        log("stopping...")
        topology.stop()
        if started:
            devstack.stop_servers(started)  # the servers this run started, and only those


if __name__ == "__main__":
    sys.exit(main())
