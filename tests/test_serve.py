"""`syndicate serve` as a process: the subscription pages and the digest archive it mounts."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.newsroom import Newsroom
from tests.support.ports import free_port
from tests.support.smtp_server import Serve
from tests.support.waiting import PATIENCE, wait_for


@pytest.fixture
def served(tmp_path: Path, serve: Serve) -> Iterator[tuple[str, Newsroom]]:
    """`syndicate serve` on a free loopback port over a store with a built edition."""
    _, settings = serve()
    room = Newsroom(tmp_path, settings.port, 1)
    port = free_port()
    env = {**room.env, "SYNDICATE_WEB__PORT": str(port)}
    server = subprocess.Popen(
        [sys.executable, "-m", "syndicate", "serve"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(f"{base}/healthz"), PATIENCE, "syndicate serve to answer")
    yield base, room
    server.terminate()
    server.wait(timeout=30)


def _answers(url: str) -> bool:
    """Whether anything answers HTTP at `url`."""
    try:
        httpx.get(url, timeout=1)
    except httpx.TransportError:
        return False
    return True


def test_serve_mounts_the_subscription_pages_and_the_archive(served: tuple[str, Newsroom]) -> None:
    """The server answers the subscribe form, an edition's web copy, and 404 for no edition."""
    base, room = served
    form = httpx.get(f"{base}/subscribe/", timeout=10)
    assert form.status_code == 200
    assert "<form" in form.text
    copy = httpx.get(f"{base}/digests/{room.edition}", timeout=10)
    assert copy.status_code == 200
    assert copy.headers["content-type"].startswith("text/html")
    assert "unsubscribe?token=" not in copy.text  # nobody's personal links
    missing = httpx.get(f"{base}/digests/daily-en-1999-01-01", timeout=10)
    assert missing.status_code == 404
    assert 'lang="en"' in missing.text
    missing_ar = httpx.get(f"{base}/digests/daily-ar-1999-01-01", timeout=10)
    assert missing_ar.status_code == 404
    assert 'dir="rtl"' in missing_ar.text


def test_the_archive_lists_editions_by_language(served: tuple[str, Newsroom]) -> None:
    """/digests/ lists the stored editions of a language, newest first, linking each web copy."""
    base, room = served
    listing = httpx.get(f"{base}/digests/", timeout=10)
    assert listing.status_code == 200
    assert f'href="/digests/{room.edition}"' in listing.text
    assert "Daily digest" in listing.text
    arabic = httpx.get(f"{base}/digests/?lang=ar", timeout=10)
    assert 'dir="rtl"' in arabic.text
    assert "أرشيف النشرات البريدية" in arabic.text
    assert room.edition not in arabic.text  # an English edition is not in the Arabic list
    assert httpx.get(f"{base}/digests/?lang=xx", timeout=10).status_code == 404
