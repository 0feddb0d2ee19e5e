#!/usr/bin/env python3
"""Extraction quality of clean + strip next to trafilatura alone, on the Zyte article benchmark.

    python bench/extraction.py [--bench ../shared/bench/zyte_aeb] [--keep DIR]

For every page of the benchmark (gzip HTML, decoded as fetch decodes a body) it writes three
predictions — Mirsad's clean + strip, trafilatura's ``extract`` with default settings and with
``favor_precision`` — to a temporary folder, scores each with the benchmark's one scorer
(``score.py GOLD_DIR PRED_DIR``, token-level, macro-averaged) and prints its figures, plus the
time clean and strip take, so strip's cost can be read next to clean's.
Site learning is off here: the benchmark has about one page per site, nothing to learn from.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trafilatura  # noqa: E402

from workers.core.errors import EmptyExtraction  # noqa: E402
from workers.stages.clean import clean  # noqa: E402
from workers.stages.fetch import decode_html  # noqa: E402
from workers.stages.strip import default_markers, strip  # noqa: E402

DEFAULT_BENCH = ROOT.parent / "shared" / "bench" / "zyte_aeb"


class Timings:
    """Seconds spent in clean and in strip over the whole run."""

    def __init__(self) -> None:
        self.clean = 0.0
        self.strip = 0.0


def mirsad_text(html: str, url: str, timings: Timings) -> str:
    started = time.perf_counter()
    try:
        document = clean(html, url=url)
    except EmptyExtraction:
        return ""
    cleaned = time.perf_counter()
    text = strip(document).text
    timings.clean += cleaned - started
    timings.strip += time.perf_counter() - cleaned
    return text


def trafilatura_text(html: str, url: str, **options) -> str:
    return trafilatura.extract(html, url=url, **options) or ""


def score(scorer: Path, gold_dir: Path, pred_dir: Path) -> dict[str, float]:
    """Macro precision, recall and F1 (and per-page figures) from the benchmark's scorer."""
    result = subprocess.run(
        [sys.executable, str(scorer), str(gold_dir), str(pred_dir), "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", type=Path, default=DEFAULT_BENCH, help="folder with html/, gold/, manifest.jsonl")
    parser.add_argument("--keep", type=Path, help="write the predictions here instead of a temporary folder")
    args = parser.parse_args()

    manifest = [json.loads(line) for line in (args.bench / "manifest.jsonl").read_text().splitlines() if line]
    systems = {
        "mirsad clean+strip": None,
        "trafilatura default": {},
        "trafilatura favor_precision": {"favor_precision": True},
    }
    default_markers()  # read the markers before timing
    timings = Timings()
    with tempfile.TemporaryDirectory(prefix="mirsad-bench-") as scratch:
        out_root = args.keep or Path(scratch)
        folders = {name: out_root / name.replace(" ", "_").replace("+", "_") for name in systems}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        for page in manifest:
            html, _ = decode_html(gzip.decompress((args.bench / "html" / f"{page['id']}.html.gz").read_bytes()))
            for name, options in systems.items():
                text = (
                    mirsad_text(html, page["url"], timings)
                    if options is None
                    else trafilatura_text(html, page["url"], **options)
                )
                (folders[name] / f"{page['id']}.txt").write_text(text, encoding="utf-8")
        scorer = args.bench.parent / "score.py"
        print(f"{len(manifest)} pages of {args.bench}")
        print(f"{'system':<30} {'P':>6} {'R':>6} {'F1':>6}")
        for name, folder in folders.items():
            figures = score(scorer, args.bench / "gold", folder)
            print(f"{name:<30} {figures['precision']:6.3f} {figures['recall']:6.3f} {figures['f1']:6.3f}")
    pages = len(manifest)
    print(
        f"clean {timings.clean / pages * 1000:.1f} ms/page, strip {timings.strip / pages * 1000:.2f} ms/page "
        f"({timings.strip / timings.clean:.1%} of clean)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
