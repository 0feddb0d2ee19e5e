"""``mirsad api``: serve the HTTP API under uvicorn (the compose service ``api`` runs the same)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from workers.cli.output import require_free_port
from workers.core.settings import get_settings


def register(commands, command: Callable[..., argparse.ArgumentParser]) -> None:
    api = command("api", cmd_api, "Serve the HTTP API (FastAPI under uvicorn); docs at /docs.")
    api.add_argument("--host", help="address to listen on (default MIRSAD_API_HOST)")
    api.add_argument("--port", type=int, help="port (default MIRSAD_API_PORT; 0: any free one)")


# By name, as Celery tasks are sent by name: entry points do not import each other.
APP_FACTORY = "workers.api.app:create_app"


def cmd_api(args) -> int:
    import uvicorn

    from workers.storage.db import migrate

    settings = get_settings()  # read here, not while the parser is built: a bad setting is main()'s one-line error
    host, port = args.host or settings.api_host, settings.api_port if args.port is None else args.port
    require_free_port(host, port)
    migrate()
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        proxy_headers=False,
    )
    return 0
