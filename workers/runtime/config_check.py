"""Validate every file of ``config/`` before a stack, a worker or beat starts.

A worker that started on a broken file used to fail every item's stage until the URL was dead;
now the process refuses to start, naming the file, line and column, and the URLs wait in their
queue until the file is fixed. A running worker keeps the last valid version instead
(``core.config_files.current``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from workers.core.config_files import yaml_error
from workers.stages.classify import load_vocabulary
from workers.stages.overrides import load_overrides
from workers.stages.strip import load_markers
from workers.storage.sources import read_declared


@dataclass(frozen=True)
class ConfigReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_config(config_dir: Path) -> ConfigReport:
    """Every YAML syntax error (file, line, column), then what each reader refuses, then warnings."""
    report = ConfigReport()
    if not config_dir.is_dir():
        report.errors.append(f"{config_dir}: no such folder; set MIRSAD_CONFIG_DIR to the folder of the YAML files")
        return report
    syntax = [found for path in sorted(config_dir.glob("*.yaml")) if (found := yaml_error(path))]
    report.errors.extend(syntax)
    if syntax:
        return report  # the readers would only repeat these
    readers: list[tuple[str, Callable[[], object]]] = [
        ("vocabulary", lambda: load_vocabulary(config_dir)),
        ("boilerplate", lambda: load_markers(config_dir / "boilerplate.yaml")),
        ("overrides", lambda: load_overrides(config_dir / "overrides.yaml")),
        ("sources", lambda: read_declared(config_dir)),
    ]
    for name, read in readers:
        try:
            read()
        except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
            report.errors.append(str(exc) if str(config_dir) in str(exc) else f"{config_dir} ({name}): {exc}")
    taxonomy = config_dir / "taxonomy.yaml"
    data = yaml.safe_load(taxonomy.read_text(encoding="utf-8")) if taxonomy.exists() else None
    if not (data or {}).get("topics"):
        report.warnings.append(f"{taxonomy}: no topics, so no item gets a topic tag; add topics (see the README)")
    return report
