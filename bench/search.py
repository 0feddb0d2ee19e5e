"""Search benchmark: quality on the labelled set, and speed at 100,000 generated items, on both databases.

    .venv/bin/python bench/search.py quality                 # recall/precision@10 per language and backend
    .venv/bin/python bench/search.py speed --items 100000    # latency p50/p95 per query kind; indexing cost

The generated databases are kept between speed runs (under MIRSAD_BENCH_CACHE, default
/tmp/mirsad-bench-cache, and PostgreSQL databases mirsad_bench_search_COUNT); ``--fresh`` fills them again.

Quality: the items and queries of bench/search_queries.yaml are stored through the store step
(``store_item``: the index is written in its transaction) and every query runs through
``workers.storage.items.list_items`` as ``GET /items?q=…`` runs it.

Speed: ``--items`` items are generated from the labelled items' words and a filler vocabulary per
language (Zipf-like frequencies), inserted in bulk and indexed with ``search.index_items``; then each
query kind (one word, three words, a phrase, a word with filters) is timed over distinct queries,
first page of 50 with snippets, as the API serves it: wall-clock latency, and this process's CPU
time (all of the work on SQLite, the client's share on PostgreSQL), which a loaded machine shakes
less. The store step's added cost is the time of ``index_item`` alone, one new item per
transaction, as ``store_item`` calls it.

PostgreSQL: a throwaway database on MIRSAD_BENCH_PG (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, text  # noqa: E402

from workers.core.document import Document, Tag  # noqa: E402
from workers.core.urls import canonicalize, url_hash  # noqa: E402
from workers.storage import search  # noqa: E402
from workers.storage.db import forget_engines, get_engine, migrate, session_scope  # noqa: E402
from workers.storage.items import ItemFilter, list_items  # noqa: E402
from workers.storage.models import Item, TagRecord  # noqa: E402
from workers.storage.store import store_item  # noqa: E402
from workers.text import analyzer  # noqa: E402
from workers.text.query import parse  # noqa: E402

QUERIES_FILE = Path(__file__).with_name("search_queries.yaml")
PG_ADMIN = os.environ.get("MIRSAD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TOP = 10
CACHE_DIR = Path(os.environ.get("MIRSAD_BENCH_CACHE", "/tmp/mirsad-bench-cache"))


def load_labelled(path: Path = QUERIES_FILE) -> tuple[dict, list[dict]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data["items"], data["queries"]


def store_labelled(database_url: str, items: dict) -> dict[str, int]:
    """Store the labelled items through the store step; key → item id."""
    ids = {}
    for key, spec in items.items():
        url = f"https://{spec['site']}/news/{key}"
        tags = [Tag(*tag.split(":", 1), 1.0) for tag in spec.get("tags", [])]
        document = Document(
            text=spec["text"],
            title=spec["title"],
            language=spec["language"],
            url=url,
            published_at=spec["published_at"],
            site_name=spec["site"],
            tags=tags,
        )
        with session_scope(database_url) as session:
            ids[key] = store_item(session, url_hash(canonicalize(url)), url, document).item_id
    return ids


def evaluate(database_url: str, queries: list[dict], ids: dict[str, int]) -> list[dict]:
    """Per query: what it returned in its first ten, recall@10 and precision@10 against ``must``."""
    by_id = {item_id: key for key, item_id in ids.items()}
    results = []
    with session_scope(database_url) as session:
        for spec in queries:
            page = list_items(session, ItemFilter(query=parse(spec["q"])), limit=TOP)
            got = [by_id.get(item.id, str(item.id)) for item in page.items]
            must = set(spec["must"])
            hits = must & set(got)
            results.append(
                {
                    "q": spec["q"],
                    "language": spec["language"],
                    "got": got,
                    "missed": sorted(must - hits),
                    "extra": sorted(set(got) - must),
                    "recall": len(hits) / len(must),
                    "precision": len(hits) / len(got) if got else 0.0,
                }
            )
    return results


def quality(backends: list[str]) -> dict:
    items, queries = load_labelled()
    report: dict = {}
    for backend in backends:
        with database(backend) as url:
            results = evaluate(url, queries, store_labelled(url, items))
        for language in ("ar", "tr", "en"):
            mine = [r for r in results if r["language"] == language]
            report[f"{backend}/{language}"] = {
                "queries": len(mine),
                "recall@10": round(statistics.mean(r["recall"] for r in mine), 3),
                "precision@10": round(statistics.mean(r["precision"] for r in mine), 3),
            }
        for r in results:
            if r["missed"] or r["extra"]:
                print(f"{backend}: {r['q']!r} missed {r['missed']} extra {r['extra']}", file=sys.stderr)
    return report


# -- speed --------------------------------------------------------------------------------------------------

FILLER_PER_LANGUAGE = 4000
WORDS_PER_ITEM = (80, 220)
SPEED_QUERIES = {
    "one-word": [
        "تعاون",
        "ليبيا",
        "anlaşma",
        "savunma",
        "cooperation",
        "Libya",
        "طرابلس",
        "İstanbul",
        "drones",
        "اتفاقية",
    ],
    "three-word": [
        "تركيا ليبيا تعاون",
        "savunma anlaşması Libya",
        "Turkey Libya agreement",
        "وزير الدفاع طرابلس",
        "Türkiye Libya işbirliği",
        "defence minister Tripoli",
        "القوات البحرية مصراتة",
        "insansız hava araçları",
        "military training academies",
        "النفط أسعار ليبيا",
    ],
    "phrase": [
        '"التعاون الدفاعي"',
        '"savunma sanayii"',
        '"defence cooperation"',
        '"وزير الدفاع"',
        '"insansız hava araçları"',
        '"Turkish warship"',
        '"الطائرات المسيرة"',
        '"Milli Savunma Bakanı"',
        '"balance of power"',
        '"ميناء مصراتة"',
    ],
    "filtered": [
        "تعاون lang:ar country:LY",
        "anlaşma lang:tr site:aa.com.tr",
        "cooperation topic:defence-cooperation",
        "Libya country:TR lang:en",
        "ليبيا site:alwasat.ly",
        "savunma country:LY",
        "agreement lang:en site:dailysabah.com",
        "طرابلس topic:defence-cooperation",
        "işbirliği lang:tr country:TR",
        "drones lang:en",
    ],
}


def generate(count: int, items: dict, seed: int = 13):
    """``count`` items in the labelled items' three languages: their words plus filler, Zipf-weighted."""
    rng = random.Random(seed)
    vocab = {}
    for language in ("ar", "tr", "en"):
        real = [
            w
            for spec in items.values()
            if spec["language"] == language
            for w in f"{spec['title']} {spec['text']}".split()
        ]
        letters = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي" if language == "ar" else "abcçdefgğhıijklmnoöprsştuüvyz"
        filler = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(FILLER_PER_LANGUAGE)]
        words = real + filler
        weights = [1.0 / (rank + 1) ** 0.9 for rank in range(len(words))]
        vocab[language] = (words, weights)
    sites = {
        "ar": ["alwasat.ly", "libyaalahrar.ly", "aljazeera.net"],
        "tr": ["aa.com.tr", "trthaber.com"],
        "en": ["libyaobserver.ly", "dailysabah.com"],
    }
    tags = [("country", "LY"), ("country", "TR"), ("topic", "defence-cooperation"), ("country", "EG")]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for n in range(count):
        language = ("ar", "tr", "en")[n % 3]
        words, weights = vocab[language]
        body = rng.choices(words, weights, k=rng.randint(*WORDS_PER_ITEM))
        yield {
            "language": language,
            "site": rng.choice(sites[language]),
            "title": " ".join(body[:8]),
            "text": " ".join(body[8:]),
            "published": start + timedelta(minutes=7 * n),
            "tags": rng.sample(tags, rng.randint(0, 2)),
        }


def fill(database_url: str, count: int, items: dict, batch: int = 1000) -> float:
    """Insert and index ``count`` generated items; seconds spent indexing (analysis and index writes)."""
    indexing = 0.0
    rows = []
    next_id = 1
    with session_scope(database_url) as session:
        next_id = (session.query(Item.id).order_by(Item.id.desc()).limit(1).scalar() or 0) + 1

    def flush() -> None:
        nonlocal indexing
        with session_scope(database_url) as session:
            session.execute(
                insert(Item), [{k: v for k, v in r.items() if k not in ("tags", "site", "published")} for r in rows]
            )
            session.execute(
                insert(TagRecord),
                [
                    {"item_id": r["id"], "kind": k, "value": v, "score": 1.0, "evidence": []}
                    for r in rows
                    for k, v in r["tags"]
                ],
            )
            started = time.perf_counter()
            search.index_items(
                session,
                [
                    search.IndexedItem(
                        r["id"], r["url"], r["title"], r["text"], r["language"], r["published_at"], r["stored_at"]
                    )
                    for r in rows
                ],
            )
            indexing += time.perf_counter() - started
        rows.clear()

    for generated in generate(count, items):
        item_id = next_id
        next_id += 1
        url = f"https://{generated['site']}/g/{item_id}"
        rows.append(
            {
                "id": item_id,
                "url_hash": uuid.uuid4().hex,
                "url": url,
                "title": generated["title"],
                "text": generated["text"],
                "language": generated["language"],
                "published_at": generated["published"].isoformat(),
                "site_name": generated["site"],
                "keywords": [],
                "removed": [],
                "stored_at": generated["published"],
                "tags": generated["tags"],
                "site": generated["site"],
                "published": generated["published"],
            }
        )
        if len(rows) >= batch:
            flush()
    if rows:
        flush()
    with session_scope(database_url) as session:  # ids were given explicitly: move PostgreSQL's sequence past them
        postgres = session.bind.dialect.name == "postgresql"
        if postgres:
            session.execute(text("SELECT setval(pg_get_serial_sequence('items', 'id'), (SELECT max(id) FROM items))"))
    if postgres:  # what autovacuum does after a bulk load: statistics for the planner, the visibility map
        with get_engine(database_url).connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    return indexing


def per_item_index_cost(database_url: str, items: dict, sample: int = 300) -> dict[str, float]:
    """Milliseconds ``index_item`` adds to one store transaction (one item at a time, as store_item calls it,
    on items whose index rows are removed first: the store step indexes a new item)."""
    with session_scope(database_url) as session:
        targets = [
            search.IndexedItem(*row)
            for row in session.execute(
                Item.__table__.select()
                .with_only_columns(
                    Item.id, Item.url, Item.title, Item.text, Item.language, Item.published_at, Item.stored_at
                )
                .limit(sample)
            )
        ]
    with session_scope(database_url) as session:  # as new items: the store step indexes items never indexed
        ids = ",".join(str(target.id) for target in targets)
        session.execute(text(f"DELETE FROM item_search WHERE item_id IN ({ids})"))
        if session.bind.dialect.name == "sqlite":
            session.execute(text(f"DELETE FROM {search.FTS_TABLE} WHERE rowid IN ({ids})"))
    analyzer._word_forms.cache_clear()  # no help from words analysed before
    spent = cpu = 0.0
    for target in targets:
        with session_scope(database_url) as session:
            started, started_cpu = time.perf_counter(), time.process_time()
            search.index_item(session, target)
            spent += time.perf_counter() - started
            cpu += time.process_time() - started_cpu
    return {
        "store_step_index_ms_per_item": round(1000 * spent / len(targets), 3),
        "store_step_index_cpu_ms_per_item": round(1000 * cpu / len(targets), 3),
    }


def latencies(database_url: str, repeats: int = 3) -> dict:
    found: dict = {}
    with session_scope(database_url) as session:
        for kind, queries in SPEED_QUERIES.items():
            times, cpu = [], []
            for query in queries:
                wanted = ItemFilter(query=parse(query))
                list_items(session, wanted, limit=50, with_snippets=True)  # warm the plan once
                for _ in range(repeats):
                    started, started_cpu = time.perf_counter(), time.process_time()
                    list_items(session, wanted, limit=50, with_snippets=True)
                    times.append(1000 * (time.perf_counter() - started))
                    cpu.append(1000 * (time.process_time() - started_cpu))
            found[kind] = {**percentiles(times, "ms"), **percentiles(cpu, "cpu_ms"), "runs": len(times)}
    return found


def percentiles(values: list[float], unit: str) -> dict[str, float]:
    ordered = sorted(values)
    return {
        f"p50_{unit}": round(statistics.median(ordered), 1),
        f"p95_{unit}": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
    }


def speed(backends: list[str], count: int, fresh: bool = False) -> dict:
    items, _queries = load_labelled()
    report = {}
    for backend in backends:
        with cached_database(backend, count, items, fresh) as (url, fill_report):
            report[backend] = {
                "items": count,
                **fill_report,
                **per_item_index_cost(url, items),
                "latency": latencies(url),
            }
            print(json.dumps({backend: report[backend]}, ensure_ascii=False), file=sys.stderr)
    return report


class database:
    """A fresh, migrated database of ``backend`` for the run, dropped (PostgreSQL) or deleted afterwards;
    ``keep``: a named one (a file under CACHE_DIR, a database ``keep``) left in place for the next run."""

    def __init__(self, backend: str, keep: str | None = None):
        self.backend = backend
        self.keep = keep

    def __enter__(self) -> str:
        import psycopg

        if self.backend == "sqlite":
            if self.keep:
                CACHE_DIR.mkdir(parents=True, exist_ok=True)
                self.url = f"sqlite:///{CACHE_DIR / self.keep}.db"
            else:
                self.tmp = tempfile.TemporaryDirectory(prefix="mirsad-bench-")
                self.url = f"sqlite:///{self.tmp.name}/bench.db"
        else:
            self.name = self.keep or f"mirsad_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                known = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.name,)).fetchone()
                if not known:
                    admin.execute(f'CREATE DATABASE "{self.name}"')
            self.url = PG_ADMIN.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + f"/{self.name}"
        migrate(self.url)
        return self.url

    def __exit__(self, *exc) -> None:
        import psycopg

        forget_engines()
        if self.keep:
            return
        if self.backend == "sqlite":
            self.tmp.cleanup()
        else:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def drop(self) -> None:
        """Remove a kept database (to fill it again)."""
        import psycopg

        if self.backend == "sqlite":
            (CACHE_DIR / f"{self.keep}.db").unlink(missing_ok=True)
        else:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.keep}" WITH (FORCE)')


@contextlib.contextmanager
def cached_database(backend: str, count: int, items: dict, fresh: bool):
    """A database of ``count`` generated items, filled once and kept (CACHE_DIR, or a PostgreSQL database
    of that name) since filling 100,000 takes minutes; migrated to the newest revision on every run.
    Yields (url, the figures of the run that filled it)."""
    name = f"mirsad_bench_search_{count}"
    figures = CACHE_DIR / f"{name}.{backend}.json"
    if fresh or not figures.exists():
        database(backend, name).drop()
        figures.unlink(missing_ok=True)
    with database(backend, name) as url:
        if not figures.exists():
            started = time.perf_counter()
            indexing = fill(url, count, items)
            filled = {
                "fill_s": round(time.perf_counter() - started, 1),
                "bulk_index_ms_per_item": round(1000 * indexing / count, 3),
            }
            CACHE_DIR.mkdir(parents=True, exist_ok=True)
            figures.write_text(json.dumps(filled))
        yield url, json.loads(figures.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["quality", "speed"])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--fresh", action="store_true", help="fill the generated databases again (speed)")
    args = parser.parse_args()
    backends = args.backend or ["sqlite", "postgresql"]
    report = quality(backends) if args.what == "quality" else speed(backends, args.items, args.fresh)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
