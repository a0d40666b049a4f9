"""A reader's whole subscription, in headless Chromium, against a running `syndicate run`.

Subscribe on the form, open the confirmation link from the outbox, change preferences, then
unsubscribe with one click; a screenshot of each step is kept under test-artifacts/.
"""

from __future__ import annotations

import mailbox
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from playwright.sync_api import Browser, Page

from tests.support.chromium import ARTIFACTS
from tests.support.service import Service, Site, an_hour_ago
from tests.support.waiting import wait_for

ADDRESS = "sara@example.org"


def messages(outbox: Path) -> list[EmailMessage]:
    """Every message in the outbox Maildir, parsed."""
    parsed = []
    for raw in mailbox.Maildir(outbox, create=True):
        message = message_from_bytes(raw.as_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        parsed.append(message)
    return parsed


def snap(page: Page, name: str) -> None:
    """Keep a full-page screenshot of this step."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"subscription-{name}.png", full_page=True)


def test_subscribe_confirm_manage_and_unsubscribe_in_a_browser(
    tmp_path: Path, demo_corpus: Path, services: list[Service], browser: Browser
) -> None:
    """The whole journey works in a browser; the digest then carries working one-click links."""
    site = Site(tmp_path, demo_corpus)
    service = site.start(schedule__daily_at=an_hour_ago("UTC")[0])
    services.append(service)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        page.goto(f"{service.base}/subscribe/")
        snap(page, "1-form")
        page.fill("#email", ADDRESS)
        page.fill("#name", "Sara")
        page.check("input[name=digests][value=daily]")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        snap(page, "2-check-your-mail")
        assert page.locator("h1").inner_text().strip() == "Check your inbox"

        [confirmation] = wait_for(lambda: messages(site.outbox), 60, "the confirmation mail")
        assert confirmation["To"].addresses[0].addr_spec == ADDRESS
        text = confirmation.get_body(("plain",)).get_content()
        link = re.search(r"http://127\.0\.0\.1:\d+/subscribe/confirm\?\S+", text)
        assert link, text
        page.goto(link.group(0))
        snap(page, "3-confirmed")
        assert page.locator("h1").inner_text().strip() == "Subscription confirmed"

        page.click("text=Manage your preferences")
        page.wait_for_load_state()
        page.check("input[name=topics][value=resistance]")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        snap(page, "4-preferences-saved")
        assert page.is_checked("input[name=topics][value=resistance]")

        page.click("a[href*='/subscribe/unsubscribe?']")
        page.wait_for_load_state()
        snap(page, "5-unsubscribe")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        snap(page, "6-unsubscribed")
        assert page.locator("h1").inner_text().strip() == "You are unsubscribed"
    finally:
        page.close()
    [row] = [
        line for line in site.cli("subscribers", "export").stdout.splitlines() if ADDRESS in line
    ]
    assert row == f"{ADDRESS},Sara,en,daily,resistance,unsubscribed,unsubscribed: web page"
    assert service.terminate() == 0
