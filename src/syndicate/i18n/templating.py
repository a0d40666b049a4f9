"""The one Jinja2 environment for everything Syndicate writes: pages, feeds index, mail, digests.

Which templates are escaped follows from their names: HTML, XML and OPML, and the digests' MJML
(`.mjml.j2`); plain text (`.txt.j2`) and CSS are written as they are.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from syndicate.i18n.catalogs import direction, gettext

# The template name endings whose output is markup, so every value put in is escaped.
ESCAPED = ("html", "xml", "opml", "mjml.j2")


def templates_dir() -> Path:
    """`templates/` of the source checkout, or the copy packaged inside an installed wheel."""
    package = Path(__file__).parents[1]  # syndicate/, where a wheel packs the templates
    packaged = package / "templates"
    return packaged if packaged.is_dir() else package.parents[1] / "templates"


@cache
def environment() -> Environment:
    """The environment: autoescaping by template name (see above), undefined names are errors."""
    env = Environment(
        loader=FileSystemLoader(templates_dir()),
        autoescape=select_autoescape(ESCAPED),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.globals["direction"] = direction
    env.globals["translate"] = gettext
    return env
