"""[web] access_log: one `request key=value` line per request, from a real uvicorn on a port."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from syndicate.settings import WebSettings
from syndicate.web.app import create_app
from syndicate.web.server import listen, server_config
from tests.support.ports import free_port
from tests.support.waiting import wait_for

LINE = re.compile(
    r'request method=(?P<method>\S+) path=(?P<path>"(?:[^"\\]|\\.)*"|\S+) status=(?P<status>\d+) '
    r"bytes=(?P<bytes>\d+) duration_ms=(?P<ms>\d+\.\d) client=(?P<client>\S+)"
)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[bool], str]]:
    """Start the feeds app under uvicorn as `syndicate serve` does; return its base URL."""
    feeds = tmp_path / "feeds"
    (feeds / "en").mkdir(parents=True)
    (feeds / "en" / "index.rss").write_bytes(b"<rss>" + b"x" * 1000 + b"</rss>")
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def started(access_log: bool) -> str:
        web = WebSettings(port=free_port(), access_log=access_log)
        server = uvicorn.Server(server_config(create_app(feeds), web))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listen(web)]})
        thread.start()
        servers.append((server, thread))
        wait_for(lambda: server.started, 30, "uvicorn to start")
        return f"http://127.0.0.1:{web.port}"

    yield started
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=30)


def _requests(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("request ") or record.name.startswith("uvicorn.access")
    ]


def test_each_request_is_one_line_in_the_log_form(
    start: Callable[[bool], str], caplog: pytest.LogCaptureFixture
) -> None:
    """Method, path (no query), status, bytes, duration and client, uvicorn's own line off."""
    base = start(True)
    with caplog.at_level(logging.INFO):
        feed = httpx.get(
            f"{base}/feeds/en/index.rss?token=secret-token",
            headers={"Accept-Encoding": "identity"},
            timeout=10,
        )
        missing = httpx.head(f'{base}/feeds/en/no such "file".rss', timeout=10)
        wait_for(lambda: len(_requests(caplog)) >= 2, 30, "two access lines")
    assert feed.status_code == 200
    assert missing.status_code == 404
    lines = _requests(caplog)
    assert len(lines) == 2, lines
    first, second = (LINE.fullmatch(line) for line in lines)
    assert first is not None, lines[0]
    assert first["method"] == "GET"
    assert first["path"] == "/feeds/en/index.rss"
    assert first["status"] == "200"
    assert int(first["bytes"]) == len(feed.content)
    assert first["client"] == "127.0.0.1"
    assert not any("secret-token" in line for line in lines)  # tokens ride in query strings
    assert second is not None, lines[1]  # a path with spaces and quotes stays one value
    assert second["method"] == "HEAD"
    assert second["path"] == '"/feeds/en/no such \\"file\\".rss"'
    assert second["status"] == "404"
    assert second["bytes"] == "0"  # no body goes back to a HEAD


def test_no_access_lines_by_default(
    start: Callable[[bool], str], caplog: pytest.LogCaptureFixture
) -> None:
    """With [web] access_log off (the default), requests are not logged, by us or by uvicorn."""
    assert WebSettings().access_log is False
    base = start(False)
    with caplog.at_level(logging.DEBUG):
        assert httpx.get(f"{base}/feeds/en/index.rss", timeout=10).status_code == 200
    assert _requests(caplog) == []
