"""Audit of the Docker deployment: docker-compose.yml, deploy/Dockerfile and the env example.

There is no Docker engine in CI, so the deployment is checked by reading it: the services that
must exist, what is published, where passwords come from, Redis durability, health checks,
restart policies, the non-root image, and that every container runs a command that also runs
natively (the contract below).
"""

from __future__ import annotations

import re
import shlex
from importlib.metadata import entry_points
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml

from workers.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
ENV_EXAMPLE = ROOT / "deploy" / "mirsad.env.example"
ENV_FILE = "deploy/mirsad.env"

# The contract between the deployment and the CLI: each app container runs exactly this.
APP_COMMANDS = {
    "migrate": ["mirsad", "migrate"],
    "fetch-worker": ["mirsad", "worker", "--queues", "fetch,deliveries"],
    "process-worker": ["mirsad", "worker", "--queues", "clean,strip,classify,store,maintenance,watches"],
    "beat": ["mirsad", "beat"],
    "flower": ["celery", "-A", "workers.runtime.celery_app", "flower", "--port=5555"],
    "api": ["mirsad", "api", "--host", "0.0.0.0", "--port", "8000"],
    "cli": ["mirsad", "status"],  # default of `docker compose run --rm cli`; any `mirsad …` may replace it
}
INFRA_SERVICES = {"redis", "postgres"}
LONG_RUNNING = {"redis", "postgres", "fetch-worker", "process-worker", "beat", "flower", "api"}
PUBLISHED = {"flower", "api"}  # on the loopback interface only
WORKERS = {"fetch-worker", "process-worker"}
LOOPBACK = {"127.0.0.1", "::1", "[::1]", "localhost"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def argv(command) -> list[str]:
    """A service's command as an argument list, whichever form (string or list) Compose was given."""
    return shlex.split(command) if isinstance(command, str) else list(command)


def healthcheck_text(service: dict) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def host_ips(port) -> list[str]:
    """The host address of a published port, short ("127.0.0.1:5555:5555") or long syntax; "" = all."""
    if isinstance(port, dict):
        return [port.get("host_ip", "")]
    spec = str(port).split("/")[0]
    if spec.startswith("["):
        return [spec[1 : spec.index("]")]]
    parts = spec.split(":")
    return [parts[0] if len(parts) == 3 else ""]


def every_string(node, path=()):
    """(path, text) for every string in the compose document, keys of mappings included."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path + (str(key),), str(key)
            yield from every_string(value, path + (str(key),))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from every_string(value, path + (str(index),))
    elif isinstance(node, str):
        yield path, node


VARIABLE = re.compile(r'^"?\$\$?\{?[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}?"?$')


def is_variable(text: str) -> bool:
    return bool(VARIABLE.match(text.strip()))


# -- services and exposure -------------------------------------------------------------------------------


def test_the_expected_services_and_nothing_else(services):
    assert set(services) == INFRA_SERVICES | set(APP_COMMANDS)


def test_redis_and_postgres_publish_no_port(services):
    for name in INFRA_SERVICES:
        assert "ports" not in services[name], f"{name} must not be reachable from outside the Compose network"


def test_only_flower_and_the_api_publish_and_only_on_loopback(services):
    publishing = {name for name, service in services.items() if service.get("ports")}
    assert publishing == PUBLISHED
    for name in PUBLISHED:
        addresses = [ip for port in services[name]["ports"] for ip in host_ips(port)]
        assert addresses and all(ip in LOOPBACK for ip in addresses), (name, addresses)


def test_no_service_shares_the_host_network(services):
    for name, service in services.items():
        assert service.get("network_mode") != "host", name


def test_host_ips_reads_both_port_syntaxes():
    assert host_ips("127.0.0.1:5555:5555") == ["127.0.0.1"]
    assert host_ips("5555:5555") == [""]
    assert host_ips("[::1]:5555:5555/tcp") == ["::1"]
    assert host_ips({"target": 5555, "published": 5555, "host_ip": "0.0.0.0"}) == ["0.0.0.0"]


# -- secrets ---------------------------------------------------------------------------------------------


def test_no_literal_password_in_the_compose_file(compose):
    for path, text in every_string(compose):
        for userinfo_password in re.findall(r"://[^:/@\s]*:([^@\s]+)@", text):
            assert is_variable(userinfo_password), f"password in a URL at {'.'.join(path)}"
        for value in re.findall(r"--requirepass\s+(\S+)", text):
            assert is_variable(value), f"literal --requirepass at {'.'.join(path)}"
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        pairs = (
            environment.items()
            if isinstance(environment, dict)
            else (entry.split("=", 1) if "=" in entry else (entry, None) for entry in environment)
        )
        for key, value in pairs:
            if re.search(r"PASSWORD|SECRET|TOKEN", key, re.IGNORECASE) and value is not None:
                assert is_variable(str(value)), f"{name}: {key} is set literally"


def test_secret_detection_flags_literals():
    assert is_variable("${POSTGRES_PASSWORD}") and is_variable('"$$REDIS_PASSWORD"')
    assert not is_variable("hunter2") and not is_variable("s3cret${X}")


def test_passwords_come_from_the_env_file(services):
    for name in INFRA_SERVICES | set(APP_COMMANDS):
        assert services[name].get("env_file") in (ENV_FILE, [ENV_FILE]), name


def test_env_example_builds_the_urls_from_the_passwords(services):
    values = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD"} <= set(values)
    assert values["MIRSAD_DATABASE_URL"] == "postgresql+psycopg://mirsad:${POSTGRES_PASSWORD}@postgres:5432/mirsad"
    assert values["MIRSAD_REDIS_URL"] == "redis://:${REDIS_PASSWORD}@redis:6379/0"
    assert {"postgres", "redis"} <= set(services), "the URLs name Compose services"


def test_the_real_env_file_stays_out_of_the_image():
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ENV_FILE in ignored


# -- durability, health and restarts ---------------------------------------------------------------------


def test_redis_persists_and_never_evicts(services):
    command = " ".join(argv(services["redis"]["command"]))
    assert re.search(r"--appendonly\s+yes\b", command)
    assert re.search(r"--maxmemory-policy\s+noeviction\b", command)
    assert "redis-data" in " ".join(services["redis"]["volumes"])
    assert "postgres-data" in " ".join(services["postgres"]["volumes"])


def test_health_checks_on_redis_postgres_and_workers(services):
    redis_check = healthcheck_text(services["redis"])
    assert "redis-cli" in redis_check and "ping" in redis_check
    assert "REDISCLI_AUTH" in redis_check or re.search(r"\s-a\s", redis_check), "the ping must authenticate"
    assert "pg_isready" in healthcheck_text(services["postgres"])
    for name in WORKERS:
        assert "inspect ping" in healthcheck_text(services[name]), name
    for name, service in services.items():
        assert not service.get("healthcheck", {}).get("disable"), name


def test_restart_policies(services):
    for name in LONG_RUNNING:
        assert services[name].get("restart") in {"unless-stopped", "always"}, name
    assert services["migrate"].get("restart", "no") == "no", "a one-shot must not loop"


def test_start_order_waits_for_health_and_migration(services):
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in WORKERS | {"beat", "api"}:
        depends = services[name]["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert services["flower"]["depends_on"]["redis"]["condition"] == "service_healthy"


# -- the image -------------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def test_dockerfile_runs_as_a_non_root_user():
    users = [
        argument.split(":")[0].strip() for instruction, argument in dockerfile_instructions() if instruction == "USER"
    ]
    assert users, "no USER instruction: the image would run as root"
    assert users[-1] not in {"root", "0"}


def test_dockerfile_installs_the_project_and_its_config():
    instructions = dockerfile_instructions()
    assert ("FROM", "python:3.11-slim") in instructions
    # Installed from /app itself, so config/ and seeds/ resolve next to the code as in a checkout.
    assert any(i == "RUN" and a.strip() == "pip install -e ." for i, a in instructions)
    assert ("WORKDIR", "/app") in instructions
    assert any(i == "COPY" and a.split()[0] == "config" for i, a in instructions)
    assert any(i == "COPY" and a.split()[0] == "seeds" for i, a in instructions)
    assert any(i == "ENV" and "MIRSAD_CONFIG_DIR=/app/config" in a for i, a in instructions)
    assert not any(i == "ENTRYPOINT" for i, _ in instructions), "services name their own commands"


def test_app_services_share_one_image(services):
    builds = {name: services[name].get("build") for name in APP_COMMANDS}
    assert all(build == {"context": ".", "dockerfile": "deploy/Dockerfile"} for build in builds.values()), builds
    assert len({services[name].get("image") for name in APP_COMMANDS}) == 1
    assert services["cli"].get("profiles") == ["tools"]
    assert not any("entrypoint" in services[name] for name in APP_COMMANDS)


# -- commands: the contract with the CLI ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(APP_COMMANDS))
def test_app_command_is_the_contract(services, name):
    assert argv(services[name]["command"]) == APP_COMMANDS[name]


@pytest.mark.parametrize("name", sorted(APP_COMMANDS))
def test_app_command_runs_natively(name):
    program, *arguments = APP_COMMANDS[name]
    assert program in {"mirsad", "celery"}
    if program == "mirsad":
        parsed = build_parser().parse_args(arguments)  # SystemExit here means the CLI lacks the subcommand
        assert parsed.command == arguments[0]
    else:
        app_module = arguments[arguments.index("-A") + 1]
        assert find_spec(app_module) is not None, app_module
        subcommand = arguments[arguments.index("-A") + 2]
        assert subcommand in {ep.name for ep in entry_points(group="celery.commands")}, (
            f"celery has no {subcommand!r} command installed"
        )


def test_workers_consume_every_routed_queue():
    from workers.core.topology import MAINTENANCE_QUEUE, TASK_ROUTES

    consumed = set()
    for name in WORKERS:
        command = APP_COMMANDS[name]
        consumed |= set(command[command.index("--queues") + 1].split(","))
    routed = {route["queue"] for route in TASK_ROUTES.values()} | {MAINTENANCE_QUEUE}
    assert consumed == routed


def test_compose_file_follows_the_compose_specification(compose):
    import json

    import jsonschema_rs  # installed with schemathesis (the test extra)

    schema = json.loads((ROOT.parent / "shared" / "compose" / "compose-spec.json").read_text(encoding="utf-8"))
    errors = [str(error) for error in jsonschema_rs.validator_for(schema).iter_errors(compose)]
    assert not errors, errors[:3]
