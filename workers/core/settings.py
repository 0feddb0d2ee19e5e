"""Every setting of Mirsad, its type and its default, in one place.

Settings are read from the environment (12-factor). Each field below is
``MIRSAD_<FIELD NAME IN CAPITALS>``; the defaults work on one machine with a
local Redis and an embedded SQLite file. The README's settings table is
generated from this module (``mirsad settings``), so this is the one source.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

PACKAGE_DIR = Path(__file__).resolve().parents[1]
PROJECT_ROOT = PACKAGE_DIR.parent  # the checkout, when running from one
# Shipped inside the package (links to config/ and seeds/pages/ in a checkout, real files in a wheel).
DEFAULT_CONFIG = PACKAGE_DIR / "defaults" / "config"
SAMPLE_PAGES = PACKAGE_DIR / "defaults" / "pages"


def _default_config_dir() -> Path:
    """The checkout's config/ when running from a checkout; after a plain ``pip install``, the user's
    folder ($XDG_CONFIG_HOME/mirsad, ~/.config/mirsad), seeded from the package's defaults on first use."""
    checkout = PROJECT_ROOT / "config"
    if (PROJECT_ROOT / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "mirsad"


def seed_config_dir(config_dir: Path) -> bool:
    """Copy the default config files into ``config_dir`` when the folder does not exist yet; True if it did."""
    if config_dir.exists():
        return False
    shutil.copytree(DEFAULT_CONFIG, config_dir)
    return True


def _default_database_url() -> str:
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"sqlite:///{data_home / 'mirsad' / 'mirsad.db'}"


@dataclass(frozen=True)
class Settings:
    """Typed settings; ``doc`` metadata feeds ``mirsad settings`` and the README."""

    database_url: str = field(
        default_factory=_default_database_url,
        metadata={
            "doc": "SQLAlchemy URL of the database; PostgreSQL in deployment (postgresql+psycopg://…).",
            "shown": "sqlite:///$XDG_DATA_HOME/mirsad/mirsad.db (~/.local/share/…)",
        },
    )
    redis_url: str = field(default="redis://localhost:6379/0", metadata={"doc": "Redis URL of the Celery broker."})
    config_dir: Path = field(
        default_factory=_default_config_dir,
        metadata={
            "doc": "Folder of the YAML files users edit (markers, countries, taxonomy); "
            "re-read when a file changes. A folder that does not exist is created "
            "with the default files.",
            "shown": "config/ of the checkout, else $XDG_CONFIG_HOME/mirsad",
        },
    )
    allow_private_hosts: str = field(
        default="0",
        metadata={
            "doc": "1 lets fetch reach loopback/private/reserved addresses (tests and demo only); "
            "a comma-separated list of networks (127.0.0.0/8,::1) allows just those."
        },
    )
    reconcile_after: float = field(
        default=600.0,
        metadata={"doc": "Seconds a URL may sit in a non-final state before the reconciler re-enqueues it."},
    )
    max_attempts: int = field(
        default=5, metadata={"doc": "Attempts at one stage before a URL is marked dead with its last error."}
    )
    retry_backoff: float = field(
        default=2.0, metadata={"doc": "First retry delay in seconds; doubles each attempt, with jitter."}
    )
    retry_backoff_max: float = field(default=120.0, metadata={"doc": "Ceiling of the retry delay in seconds."})
    connect_timeout: float = field(default=10.0, metadata={"doc": "Seconds to open a connection."})
    read_timeout: float = field(default=20.0, metadata={"doc": "Seconds to wait for any bytes from the server."})
    total_timeout: float = field(default=60.0, metadata={"doc": "Seconds for a whole fetch, redirects included."})
    max_bytes: int = field(
        default=10_000_000, metadata={"doc": "Cap on a page's decoded body, enforced while streaming."}
    )
    max_redirects: int = field(default=5, metadata={"doc": "Redirect hops followed before giving up."})
    user_agent: str = field(
        default="Mirsad/0.1 (news ingest)", metadata={"doc": "User-Agent header sent with every request."}
    )
    min_text_chars: int = field(
        default=50, metadata={"doc": "Shortest extracted body accepted as an article; less is an empty extraction."}
    )
    site_line_min_articles: int = field(
        default=3,
        metadata={
            "doc": "Distinct articles of one site a short line must appear in before strip removes it "
            "from that site's later articles as learned boilerplate."
        },
    )
    story_window_days: float = field(
        default=7.0,
        metadata={
            "doc": "Days apart two items may be published and still join one story (also how far "
            "back the store stage looks for the story a new item belongs to)."
        },
    )
    story_index_items: int = field(
        default=5_000,
        metadata={
            "doc": "Most items of the story window each processing worker keeps in memory to "
            "match new items against (the newest; bounds a worker's memory)."
        },
    )
    fetch_concurrency: int = field(default=16, metadata={"doc": "Requests in flight per fetch worker (threads)."})
    process_concurrency: int = field(
        default_factory=lambda: os.cpu_count() or 2,
        metadata={
            "doc": "Processing workers (clean, strip, classify, store) that `mirsad up` starts, one process each.",
            "shown": "the number of cores",
        },
    )
    host_interval: float = field(
        default=1.0,
        metadata={
            "doc": "Least seconds between two requests to one host, shared by every worker "
            "(raised by the host's robots.txt Crawl-delay, doubled for a while after "
            "429/503); 0 turns per-host pacing off (benchmarks against one local server)."
        },
    )
    source_check_interval: float = field(
        default=30.0,
        metadata={"doc": "Seconds between beat's looks for sources due a poll (each source has its own `every`)."},
    )
    visibility_timeout: int = field(
        default=3600, metadata={"doc": "Seconds before Redis hands an unacknowledged message to another worker."}
    )
    worker_stall_exit: float = field(
        default=120.0,
        metadata={
            "doc": "Seconds a worker (or beat) may go without reaching its broker before it exits "
            "non-zero, so that `mirsad up`, compose or systemd restarts it."
        },
    )
    log_level: str = field(default="INFO", metadata={"doc": "Log level of workers and CLI."})
    api_host: str = field(default="127.0.0.1", metadata={"doc": "Address `mirsad api` listens on."})
    api_port: int = field(default=8000, metadata={"doc": "Port `mirsad api` listens on."})
    api_open_read: str = field(
        default="0",
        metadata={
            "doc": "1 lets requests without a token read (GET) through the API, on a trusted "
            "network (the demo sets it); writes always need a write token."
        },
    )
    api_max_body: int = field(default=1_000_000, metadata={"doc": "Largest request body the API accepts, in bytes."})
    watch_story_quiet: float = field(
        default=21600.0,
        metadata={
            "doc": "Seconds after a watch alerted on a story during which later items of that story go "
            "into the watch's next digest instead of alerting again (default 6 h)."
        },
    )
    webhook_max_attempts: int = field(
        default=8,
        metadata={
            "doc": "Attempts at one webhook delivery (retried with backoff and jitter on timeouts, "
            "connection errors, 429 and 5xx) before it is dead (`mirsad alerts --dead`)."
        },
    )
    webhook_timeout: float = field(default=10.0, metadata={"doc": "Seconds for one webhook request, all included."})
    watch_sweep_after: float = field(
        default=30.0,
        metadata={
            "doc": "Seconds after which the sweeper sends again a match or a delivery whose message was "
            "lost (a killed worker); beat runs the sweeper this often too."
        },
    )
    watch_spike_factor: float = field(
        default=3.0,
        metadata={"doc": "A watch spikes when its matches this hour exceed this many times its usual count."},
    )
    watch_spike_min: int = field(
        default=5, metadata={"doc": "Fewest matches in one hour that can make a spike (quiet watches stay quiet)."}
    )
    smtp_url: str = field(
        default="",
        metadata={
            "doc": "SMTP server of e-mail digests: smtp://user:pass@host:587?starttls=1 (smtps:// for TLS "
            "from the start); empty: no e-mail is sent."
        },
    )
    smtp_from: str = field(default="mirsad@localhost", metadata={"doc": "From: address of e-mail digests."})
    public_url: str = field(
        default="",
        metadata={
            "doc": "Base URL of this deployment's API, for the item links in alerts and digests.",
            "shown": "http://MIRSAD_API_HOST:MIRSAD_API_PORT",
        },
    )
    web_secret: str = field(
        default="",
        metadata={
            "doc": "Key that signs the web page's session and CSRF cookies; unset: one is generated once and "
            "kept in the file web-secret beside the SQLite database (else in $XDG_DATA_HOME/mirsad), so "
            "restarts keep sessions. Give every API process of a deployment the same one.",
            "shown": "generated, kept in web-secret",
        },
    )

    @property
    def private_networks_allowed(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | Literal[True]:
        """True when every address is allowed; else the networks the setting names (maybe none)."""
        value = self.allow_private_hosts.strip().lower()
        if value in {"1", "true", "yes", "on"}:
            return True
        if value in {"", "0", "false", "no", "off"}:
            return ()
        return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip())

    @property
    def link_base(self) -> str:
        """Where the links in alerts point: MIRSAD_PUBLIC_URL, else this machine's API."""
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def api_reads_open(self) -> bool:
        return self.api_open_read.strip().lower() in {"1", "true", "yes", "on"}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(env_name(f.name))
            if raw is None or raw == "":
                continue
            default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            assert default is not dataclasses.MISSING, f"the setting {f.name} has no default"
            kind = type(default)
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise SettingError(
                    f"{env_name(f.name)}={raw!r} is not a valid {kind.__name__}; unset it or set "
                    f"{_KIND_NAMES.get(kind, kind.__name__)} (default {_shown_default(f)})"
                ) from None
            if kind in (int, float) and values[f.name] < 0:
                raise SettingError(
                    f"{env_name(f.name)}={raw!r} must not be negative; unset it or give a number "
                    f">= 0 (default {_shown_default(f)})"
                )
        return cls(**values)

    def describe(self) -> list[tuple[str, str, str, str]]:
        """(variable, current value, default as documented, doc) for every setting."""
        defaults = type(self)()
        return [
            (
                env_name(f.name),
                str(getattr(self, f.name)),
                f.metadata.get("shown", str(getattr(defaults, f.name))),
                f.metadata.get("doc", ""),
            )
            for f in dataclasses.fields(self)
        ]


class SettingError(ValueError):
    """A MIRSAD_* variable that cannot be used, said in one line with the variable and the fix."""


_KIND_NAMES = {int: "a whole number", float: "a number", str: "text", Path: "a path"}


def _shown_default(f: dataclasses.Field) -> str:
    if f.metadata.get("shown"):
        return f.metadata["shown"]
    return str(f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)


def redacted(url: str) -> str:
    """A connection URL with its password replaced by ***, for logs, errors and keys other processes read."""
    return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)


def env_name(field_name: str) -> str:
    return "MIRSAD_" + field_name.upper()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once; tests call ``get_settings.cache_clear()`` after changing the env."""
    return Settings.from_env()
