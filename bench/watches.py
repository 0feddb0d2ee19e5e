#!/usr/bin/env python3
"""Watches: the cost of matching one item against 1,000 watches, alerts per second, and push → webhook latency.

    python bench/watches.py [--watches 1000] [--zyte ../shared/bench/zyte_aeb] [--latency 50]

1. Matching (in this process, no database): items are the 181 real pages' gold texts of the Zyte
   article-extraction benchmark (read where they are, never copied) and the labelled search set
   (Arabic, Turkish, English); 1,000 watches are drawn from the items' own words (pairs, phrases,
   OR, prefixes, exclusions, lang:/country: filters), so many match. Reported per item: the analysis
   (tokens, as the store step makes them), the match through the index, and the match without it
   (every watch evaluated), and matches (alerts) per second of matching. Target: under 2 ms per item.
2. Latency (``--latency N``, a real stack: workers, beat, SQLite, Redis database 14): N pages pushed
   one at a time on an idle stack, each waited for at the webhook receiver on 127.0.0.1; p50/p95 of
   push → webhook received.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixture_server import FixtureServer, article_page  # noqa: E402
from tests.labelled_search import bench as search_bench  # noqa: E402
from workers.text.query import parse  # noqa: E402
from workers.text.watchmatch import ItemFeatures, WatchIndex, compile_watch, item_features  # noqa: E402

DEFAULT_ZYTE = ROOT.parent / "shared" / "bench" / "zyte_aeb"


def load_items(zyte: Path) -> list[tuple[str, str, str]]:
    """(title, text, language) of every item: the Zyte gold texts, then the labelled search set."""
    items = []
    manifest = {json.loads(line)["id"]: json.loads(line) for line in (zyte / "manifest.jsonl").open()}
    for path in sorted((zyte / "gold").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        title, _, body = text.partition("\n")
        items.append((title, body, manifest.get(path.stem, {}).get("language", "en")))
    labelled, _queries = search_bench.load_labelled()
    items += [(spec["title"], spec["text"], spec["language"]) for spec in labelled.values()]
    return items


def make_queries(items: list[tuple[str, str, str]], count: int, seed: int = 15) -> list[str]:
    """``count`` watch queries made of the items' words, in the shapes analysts write."""
    rng = random.Random(seed)
    words = sorted({w for title, text, _ in items for w in (title + " " + text).split() if w.isalpha() and len(w) > 3})
    shapes = [
        lambda: f"{rng.choice(words)} {rng.choice(words)}",
        lambda: f'"{rng.choice(words)} {rng.choice(words)}"',
        lambda: f"{rng.choice(words)} OR {rng.choice(words)}",
        lambda: f"{rng.choice(words)[:4]}* {rng.choice(words)}",
        lambda: f"{rng.choice(words)} -{rng.choice(words)}",
        lambda: f"{rng.choice(words)} lang:{rng.choice(['en', 'ar', 'tr'])}",
        lambda: f"{rng.choice(words)} country:{rng.choice(['TR', 'LY', 'US'])}",
        lambda: rng.choice(words),
    ]
    return [rng.choice(shapes)() for _ in range(count)]


def matching(zyte: Path, watch_count: int) -> dict:
    items = load_items(zyte)
    compiled = [compile_watch(n, parse(q)) for n, q in enumerate(make_queries(items, watch_count))]
    index = WatchIndex(compiled)
    started = time.perf_counter()
    features: list[ItemFeatures] = [
        item_features(t, x, lang, "https://example.org/a", (), None) for t, x, lang in items
    ]
    analysis = (time.perf_counter() - started) / len(items)
    per_item, matches = [], 0
    for item in features:
        started = time.perf_counter()
        found = index.matching(item)
        per_item.append(time.perf_counter() - started)
        matches += len(found)
    started = time.perf_counter()
    brute = [[w.watch_id for w in compiled if w.matches(item)] for item in features]
    brute_per_item = (time.perf_counter() - started) / len(items)
    assert [len(b) for b in brute] == [len(index.matching(item)) for item in features], "index and brute force agree"
    candidates = statistics.mean(len(index.candidates(item)) for item in features)
    return {
        "items": len(items),
        "watches": watch_count,
        "unindexed_watches": len(index.always),
        "analysis_ms_per_item": round(analysis * 1000, 3),
        "match_ms_per_item_mean": round(statistics.mean(per_item) * 1000, 3),
        "match_ms_per_item_p95": round(sorted(per_item)[int(len(per_item) * 0.95)] * 1000, 3),
        "match_ms_per_item_without_index": round(brute_per_item * 1000, 3),
        "candidates_per_item": round(candidates, 1),
        "matches_per_item": round(matches / len(items), 2),
        "alerts_per_second_of_matching": round(matches / sum(per_item)),
    }


class Receiver:
    """Records when each webhook arrives, by item URL."""

    def __init__(self):
        self.arrived: dict[str, float] = {}
        self.event = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                self.send_response(204)
                self.end_headers()
                with receiver.event:
                    receiver.arrived[body["data"]["item"]["url"]] = time.monotonic()
                    receiver.event.notify_all()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def latency(count: int) -> dict:
    """Push → webhook received for ``count`` pages on an idle stack, one page at a time."""
    folder = Path(tempfile.mkdtemp(prefix="mirsad-watch-bench-"))
    env = {
        "MIRSAD_DATABASE_URL": f"sqlite:///{folder}/mirsad.db",
        "MIRSAD_REDIS_URL": os.environ.get("MIRSAD_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        "MIRSAD_ALLOW_PRIVATE_HOSTS": "127.0.0.0/8",
        "MIRSAD_HOST_INTERVAL": "0",
        "MIRSAD_API_PORT": "0",
        "MIRSAD_PROCESS_CONCURRENCY": "2",
        "MIRSAD_WATCH_STORY_QUIET": "0",  # the generated pages may share a story: every one must alert here
    }
    os.environ.update(env)
    from workers.core.settings import Settings, get_settings
    from workers.runtime.push import push
    from workers.runtime.stack import Stack
    from workers.storage import watches
    from workers.storage.db import migrate, session_scope

    get_settings.cache_clear()
    migrate()
    import redis

    redis.Redis.from_url(env["MIRSAD_REDIS_URL"]).flushdb()
    pages = folder / "pages"
    pages.mkdir()
    receiver = Receiver()
    with session_scope() as session:
        watches.add(session, "bench", "zircon", Settings.from_env(), receiver.url)
    for n in range(count + 3):
        # A sentence of its own per page: one repeated on every page of a site is learned as boilerplate.
        sentence = f"<p>Officials said the zircon programme {n} would be reviewed next week, they added.</p>"
        html = article_page(f"bench-{n}").replace(b"</article>", sentence.encode() + b"</article>")
        (pages / f"p{n}.html").write_bytes(html)
    site = FixtureServer(pages_dir=pages).start()
    log = open(folder / "stack.log", "ab")
    stack = Stack(env=env, log_file=log).start()
    spent = []
    try:
        for n in range(count + 3):  # the first three warm the workers up and are not counted
            url = site.url(f"/pages/p{n}.html")
            started = time.monotonic()
            list(push([url]))
            with receiver.event:
                if not receiver.event.wait_for(lambda u=url: u in receiver.arrived, timeout=120):
                    raise TimeoutError(f"no webhook for {url} (see {folder}/stack.log)")
            if n >= 3:
                spent.append(receiver.arrived[url] - started)
    finally:
        stack.stop(grace=10)
        site.stop()
    spent.sort()
    return {
        "items": len(spent),
        "p50_ms": round(statistics.median(spent) * 1000),
        "p95_ms": round(spent[int(len(spent) * 0.95) - 1] * 1000),
        "max_ms": round(spent[-1] * 1000),
        "load_average": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--watches", type=int, default=1000)
    parser.add_argument("--zyte", type=Path, default=DEFAULT_ZYTE)
    parser.add_argument("--latency", type=int, default=0, help="also push N pages through a stack (e.g. 50)")
    args = parser.parse_args()
    report = {"load_average": os.getloadavg(), "matching": matching(args.zyte, args.watches)}
    if args.latency:
        report["latency"] = latency(args.latency)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
