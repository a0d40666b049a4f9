"""What every settings section shares: the base model, the languages served, address checks."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, BeforeValidator, ConfigDict

# The languages Syndicate has pages, mail and feeds for: English, the source language, and each
# catalog under locale/ (tests/test_settings.py holds the two equal).
SERVED_LANGUAGES = ("en", "ar", "fa")


class Section(BaseModel):
    """Base of every settings section: unknown keys are mistakes, not extras."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def unset_when_empty(value: object) -> object:
    """An empty string means "not set", as `syndicate config` and settings.toml write it."""
    return None if value == "" else value


def _served_language(code: str) -> str:
    if code not in SERVED_LANGUAGES:
        raise ValueError(
            f"{code!r} is not a language Syndicate can serve ({', '.join(SERVED_LANGUAGES)})"
        )
    return code


def _web_address(url: AnyHttpUrl) -> AnyHttpUrl:
    """An http(s) address that paths can be appended to: no query, fragment or password."""
    if url.query or url.fragment:
        raise ValueError(f"{str(url)!r} must not have a query (?) or a fragment (#)")
    if url.username or url.password:
        raise ValueError("a user name or password does not belong in this address")
    return url


# An http or https address (pydantic refuses every other scheme), with nothing after its path.
WebAddress = Annotated[AnyHttpUrl, AfterValidator(_web_address)]
OptionalWebAddress = Annotated[WebAddress | None, BeforeValidator(unset_when_empty)]
ServedLanguage = Annotated[str, AfterValidator(_served_language)]
