"""Serving the API: uvicorn with the application (``mirsad api`` and the compose service ``api``)."""

from __future__ import annotations

import uvicorn

from workers.api.app import create_app


def serve(host: str, port: int, log_level: str = "info") -> None:
    uvicorn.run(create_app(), host=host, port=port, log_level=log_level.lower(), proxy_headers=False)
