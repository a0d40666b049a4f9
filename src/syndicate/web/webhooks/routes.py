"""The webhooks as routes of the site: one POST path a provider."""

from __future__ import annotations

from sqlalchemy import Engine
from starlette.routing import Route

from syndicate.feedback.record import FeedbackRules
from syndicate.settings.bounces import WebhookSettings
from syndicate.web.webhooks.mailgun import Mailgun
from syndicate.web.webhooks.postmark import Postmark
from syndicate.web.webhooks.receiving import Outside, Webhook, webhook_endpoint
from syndicate.web.webhooks.sendgrid import SendGrid
from syndicate.web.webhooks.ses import Ses

PREFIX = "/webhooks/"


def webhook_hooks(settings: WebhookSettings, outside: Outside) -> list[Webhook]:
    """Every provider's webhook, configured from `settings` (unset ones answer 404)."""
    return [Ses(settings, outside), Postmark(settings, outside), Mailgun(settings, outside),
            SendGrid(settings, outside)]  # fmt: skip


def webhook_routes(
    engine: Engine, settings: WebhookSettings, rules: FeedbackRules, outside: Outside
) -> list[Route]:
    """POST /webhooks/{ses,postmark,mailgun,sendgrid}, recording into `engine` by `rules`."""
    return [
        Route(f"{PREFIX}{hook.provider}", webhook_endpoint(hook, engine, rules), methods=["POST"])
        for hook in webhook_hooks(settings, outside)
    ]
