"""``mirsad api``: serve the HTTP API under uvicorn (the compose service ``api`` runs the same)."""

from __future__ import annotations

from workers.core.settings import get_settings


def register(commands) -> None:
    settings = get_settings()
    api = commands.add_parser("api", help="Serve the HTTP API (FastAPI under uvicorn); docs at /docs.",
                              description="Serve the HTTP API (FastAPI under uvicorn); docs at /docs.")
    api.add_argument("--host", default=settings.api_host, help="address to listen on (MIRSAD_API_HOST)")
    api.add_argument("--port", type=int, default=settings.api_port, help="port (MIRSAD_API_PORT; 0: any free one)")
    api.set_defaults(handler=cmd_api)


def cmd_api(args) -> int:
    from workers.api.server import serve
    from workers.storage.db import migrate

    migrate()
    serve(args.host, args.port, get_settings().log_level)
    return 0
