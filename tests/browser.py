"""Headless Chromium from Debian's packages, driven by Playwright, for the web page's tests and benchmark.

Never a browser Playwright downloads (``playwright install`` fails here): ``/usr/bin/chromium``
(apt-get install chromium; ``deploy/native test`` installs it when missing), with the flags below
and a fresh user-data folder each time.
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@contextmanager
def chromium(viewport: dict[str, int] = DESKTOP):
    """Playwright and a browser on a fresh profile: yields ``fresh_context()``, a function that opens another
    browser on a fresh profile of its own (all are closed and their profiles deleted afterwards)."""
    with ExitStack() as stack:
        playwright = stack.enter_context(sync_playwright())

        def fresh_context(size: dict[str, int] = viewport) -> BrowserContext:
            profile = stack.enter_context(tempfile.TemporaryDirectory(prefix="mirsad-chromium-"))
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=FLAGS, viewport=size
            )
            stack.callback(context.close)
            return context

        yield fresh_context


@dataclass
class Watched:
    """A page with everything it said that a reader should never see: dialogs, console errors, page errors."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def troubles(self) -> list[str]:
        return [f"dialog: {d}" for d in self.dialogs] + self.errors


def watched(context: BrowserContext) -> Watched:
    page = context.new_page()
    seen = Watched(page)

    def on_dialog(dialog) -> None:
        seen.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda message: message.type == "error" and seen.errors.append(f"console: {message.text}"))
    page.on("pageerror", lambda error: seen.errors.append(f"page error: {error}"))
    return seen


def sign_in(page: Page, base_url: str, token: str) -> None:
    """Through the sign-in form, as a reader does."""
    page.goto(f"{base_url}/signin")
    page.fill("input[name=token]", token)
    page.click("form.stack button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def screenshot_dir(default: Path) -> Path:
    import os

    folder = Path(os.environ.get("MIRSAD_SCREENSHOTS") or default)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
