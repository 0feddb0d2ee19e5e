"""A real ``mirsad api`` (uvicorn) on a free port of 127.0.0.1, for the API tests, and tokens made by the CLI."""

from __future__ import annotations

import os
import subprocess

import httpx

from tests.stack_helpers import free_port, json_lines, mirsad, wait_until
from workers.runtime.stack import mirsad_command


def healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def make_token(env: dict[str, str], name: str, scope: str) -> str:
    result = mirsad("tokens", "add", name, "--scope", scope, "--json", env=env)
    assert result.returncode == 0, result.stderr
    [created] = json_lines(result.stdout)
    assert created["name"] == name and created["scope"] == scope
    return created["token"]


class ApiServer:
    """``mirsad api --port N`` in a subprocess with ``env`` (on top of the tests' environment)."""

    def __init__(self, env: dict[str, str], log_path=None):
        self.port = free_port()
        self.env = {**os.environ, **env}
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path

    def __enter__(self) -> ApiServer:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            mirsad_command("api", "--port", str(self.port)),
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(lambda: healthy(self.base_url) or self.process.poll() is not None, 60, "the API to answer")
        assert self.process.poll() is None, f"mirsad api exited with {self.process.returncode}"
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
