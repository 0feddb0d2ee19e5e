"""bench/search.py loaded as a module: the labelled search set, its loader and its scorer, shared with the tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "search.py"
_spec = importlib.util.spec_from_file_location("bench_search", BENCH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
