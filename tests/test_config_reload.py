"""Running workers re-read config/ when a file changes, and a site's charset override decodes its pages.

A real stack on a copy of config/: an Arabic page in windows-1256 whose <meta> says ISO-8859-1 is
stored as mojibake (every byte decodes in Latin-1, so nothing tells fetch the label lies). Then
overrides.yaml gains the site's charset, with the workers still running: the next pages, labelled
ISO-8859-1 or UTF-8, are stored readable. No restart in between.
"""

from __future__ import annotations

import os
import time

import redis

from tests.fixture_server import FixtureServer
from tests.stack_helpers import FAST_RECOVERY, item_for, push_all, wait_final
from workers.runtime.stack import Stack
from workers.storage.db import forget_engines, migrate

HEADLINE = "وصل وفد عسكري ليبي إلى أنقرة لبحث التعاون في مجال التدريب"
BODY = (
    "أعلنت وزارة الدفاع أن الوفد سيلتقي بقادة القوات البحرية والبرية خلال زيارته التي تستمر ثلاثة أيام، "
    "وأن الجانبين سيبحثان برامج تدريب مشتركة وتبادل الخبرات في مجال خفر السواحل."
)


def page(charset_label: str) -> bytes:
    html = (
        f'<html><head><meta charset="{charset_label}"><title>{HEADLINE}</title></head><body><article>'
        f"<h1>{HEADLINE}</h1><p>{BODY}</p><p>{BODY}</p></article></body></html>"
    )
    return html.encode("windows-1256")


def test_a_charset_override_added_while_the_workers_run_decodes_the_next_pages(tmp_path, config_copy):
    pages = tmp_path / "pages"
    pages.mkdir()
    for name, label in (("before.html", "iso-8859-1"), ("after.html", "iso-8859-1"), ("utf8-label.html", "utf-8")):
        (pages / name).write_bytes(page(label))
    database_url = f"sqlite:///{tmp_path}/mirsad.db"
    migrate(database_url)
    redis.Redis.from_url(os.environ["MIRSAD_REDIS_URL"]).flushdb()
    env = {**FAST_RECOVERY, "MIRSAD_DATABASE_URL": database_url, "MIRSAD_CONFIG_DIR": str(config_copy)}
    overrides = config_copy / "overrides.yaml"
    with FixtureServer(pages) as server, open(tmp_path / "stack.log", "ab") as log, Stack(env=env, log_file=log):
        first = push_all(database_url, [server.url("/pages/before.html")])
        [record] = wait_final(database_url, [r.url_id for r in first.values()]).values()
        assert record.state == "stored", record.last_error
        garbled = item_for(database_url, record)
        assert HEADLINE not in garbled.text and "Ç" in garbled.text  # windows-1256 bytes read as Latin-1

        time.sleep(0.05)  # a new modification time even on a coarse clock
        overrides.write_text(
            overrides.read_text(encoding="utf-8").rstrip().removesuffix("[]")
            + "\n- site: 127.0.0.1\n  charset: windows-1256\n",
            encoding="utf-8",
        )
        later = push_all(database_url, [server.url("/pages/after.html"), server.url("/pages/utf8-label.html")])
        records = wait_final(database_url, [r.url_id for r in later.values()])
        for record in records.values():
            assert record.state == "stored", record.last_error
            item = item_for(database_url, record)
            assert item.title == HEADLINE and BODY in item.text
    forget_engines()
