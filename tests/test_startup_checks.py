"""`syndicate run` and `digest send` warn, once, about settings real mail would suffer from.

The warnings are logged before the server answers, so once /healthz answers the log holds
every warning this start will give.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.newsroom import Newsroom
from tests.support.service import Service, Site
from tests.support.smtp_server import Serve

EVENT = "unsubscribe_not_https"


@pytest.mark.parametrize(
    ("transport", "public_url", "warned"),
    [
        ("smtp", "http://news.example/", True),
        ("smtp", "https://news.example/", False),
        ("outbox", "http://news.example/", False),
    ],
)
def test_an_http_public_url_with_smtp_mail_is_warned_about_once(
    tmp_path: Path,
    serve: Serve,
    services: list[Service],
    transport: str,
    public_url: str,
    warned: bool,
) -> None:
    """SMTP mail with http unsubscribe links logs one warning naming [web] public_url and why."""
    _, smtp = serve()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    site = Site(tmp_path, empty)
    service = site.start(
        mail__transport=transport,
        mail__smtp__host="127.0.0.1",
        mail__smtp__port=str(smtp.port),
        web__public_url=public_url,
    )
    services.append(service)
    lines = [line for line in service.log.splitlines() if EVENT in line]
    if not warned:
        assert lines == []
        return
    [line] = lines
    assert "level=warning" in line
    assert 'setting="[web] public_url"' in line
    assert f"public_url={public_url}" in line
    assert "transport=smtp" in line
    assert "https one-click unsubscribe" in line
    assert "Gmail and Yahoo" in line


@pytest.mark.parametrize(
    ("public_url", "warned"), [("http://news.example/", True), ("https://news.example/", False)]
)
def test_digest_send_warns_about_http_unsubscribe_links_too(
    tmp_path: Path, serve: Serve, public_url: str, warned: bool
) -> None:
    """A send by hand mails the same links: the same warning, once, before it sends."""
    _, smtp = serve()
    room = Newsroom(tmp_path, smtp.port, 3)
    room.env["SYNDICATE_WEB__PUBLIC_URL"] = public_url
    sent = room.send()
    assert sent.returncode == 0, sent.stderr
    lines = [line for line in sent.stderr.splitlines() if EVENT in line]
    assert len(lines) == (1 if warned else 0), sent.stderr
    if warned:
        assert "level=warning" in lines[0]
        assert f"public_url={public_url}" in lines[0]
