"""Jinja2 environments for the pages and files Syndicate writes."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from syndicate.i18n import direction, gettext


def templates_dir() -> Path:
    """`templates/` of the source checkout, or the copy packaged inside an installed wheel."""
    packaged = Path(__file__).parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).parents[2] / "templates"


@cache
def environment() -> Environment:
    """The shared environment: autoescaping for HTML and XML, undefined names are errors."""
    env = Environment(
        loader=FileSystemLoader(templates_dir()),
        autoescape=select_autoescape(["html", "xml", "opml"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.globals["direction"] = direction
    env.globals["translate"] = gettext
    return env
