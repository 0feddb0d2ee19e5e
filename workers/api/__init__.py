"""The HTTP API (FastAPI under uvicorn): push URLs, search and list items, stories, entities, sources, status.

An entry point like the CLI: it imports storage, runtime and core, never the CLI. ``create_app``
(``workers.api.app``) builds the application; ``mirsad api`` serves it under uvicorn.
"""
