"""Any tag string becomes a stable, unique, readable file name inside the feeds folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from syndicate.feeds.build import build_feeds
from syndicate.feeds.config import FeedConfig
from syndicate.feeds.files import FeedFolder, UnsafePath
from syndicate.store.schema import tag
from syndicate.text.slugs import MAX_SLUG_CHARS, readable_slug
from tests.support.fixture_corpus import NOW, ingest_text

NASTY_TAGS = [
    "Iraq",
    "Military Withdrawal",
    "Oil & Gas",
    "Iraq/Syria",
    "..",
    "../../etc/passwd",
    "%2e%2e",
    "%2F",
    ".hidden",
    "C:\\Windows",
    "a" * 300,
    "الحشد الشعبي",
    "پیمان ناتو",
    "<b>Bold</b> <script>alert(1)</script>markup",  # plain text on ingest: "Bold markup"
    "&&&",
    "  spaced   out  ",
    "NUL\x00byte",
    "emoji 🛢️ oil",
    "ﷲ",  # a ligature NFKC expands
]


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Iraq", "iraq"),
        ("Military Withdrawal", "military-withdrawal"),
        ("Oil & Gas", "oil-gas"),
        ("Al-Sudani", "al-sudani"),
        ("U.S.", "u-s"),
        ("الحشد الشعبي", "الحشد-الشعبي"),
        ("مُقاوَمة", "مقاومة"),
        ("..", "tag"),
        ("%2e%2e", "2e-2e"),
        ("../../etc/passwd", "etc-passwd"),
    ],
)
def test_readable_slug(name: str, slug: str) -> None:
    """Slugs keep letters and digits of every script and fold everything else to hyphens."""
    assert readable_slug(name) == slug


def test_slugs_are_short_and_never_path_like() -> None:
    """No slug is empty, over-long, hidden, or holds a separator or percent sign."""
    for name in NASTY_TAGS:
        slug = readable_slug(name)
        assert 0 < len(slug) <= MAX_SLUG_CHARS
        assert not slug.startswith((".", "-"))
        assert not set(slug) & set("/\\%.\x00 ")
        assert len(f"{slug}-12345678.atom".encode()) < 255  # fits a file name on any disk


def test_nasty_tags_get_feeds_inside_the_folder(
    sqlite_engine: Engine, feed_config: FeedConfig, tmp_path: Path
) -> None:
    """Every nasty tag gets its own feed files, all inside the feeds folder, none clobbered."""
    record = {
        "type": "article", "id": "cms-1", "url": "https://site.example/en/news/1",
        "title": "Tags", "published_at": "2025-08-20T09:30:00Z", "status": "published",
        "language": "en", "tags": NASTY_TAGS,
    }  # fmt: skip
    _report, messages = ingest_text(sqlite_engine, json.dumps(record))
    assert messages == []
    build_feeds(sqlite_engine, feed_config, now=NOW)
    folder = Path(feed_config.feeds_dir).resolve()
    written = [
        path.resolve() for path in tmp_path.rglob("*") if path.is_file() and path.suffix == ".rss"
    ]
    assert all(path.is_relative_to(folder) for path in written)
    with sqlite_engine.connect() as connection:
        slugs = connection.scalars(select(tag.c.slug)).all()
    assert len(slugs) == len(set(slugs)) == len(NASTY_TAGS)
    tag_feeds = {path.stem for path in (folder / "en" / "tags").glob("*.rss")}
    assert tag_feeds == set(slugs)


def test_colliding_tags_are_told_apart_and_keep_their_names(sqlite_engine: Engine) -> None:
    """Tags whose slugs collide get distinct slugs; the first keeps the plain one, forever."""
    lines = [
        {"id": "a", "tags": ["Iraq/Syria"]},
        {"id": "b", "tags": ["Iraq Syria"]},
        {"id": "c", "tags": ["Iraq-Syria", "Iraq/Syria"]},
    ]
    text = "\n".join(
        json.dumps(
            {
                "type": "article",
                "url": "https://site.example/en/news/1",
                "title": "T",
                "published_at": "2025-08-20T09:30:00Z",
                "status": "published",
                "language": "en",
                **line,
            }
        )
        for line in lines
    )
    ingest_text(sqlite_engine, text)
    with sqlite_engine.connect() as connection:
        rows = dict(connection.execute(select(tag.c.name, tag.c.slug)).all())
    assert rows["Iraq/Syria"] == "iraq-syria"
    assert rows["Iraq Syria"].startswith("iraq-syria-")
    assert len(rows["Iraq Syria"]) == len("iraq-syria-") + 8
    assert len(set(rows.values())) == 3


@pytest.mark.parametrize(
    "relative",
    [
        "../x.rss",
        "en/../../x.rss",
        "/etc/passwd",
        "en/.x.rss",
        "",
        "en\\..\\x.rss",
        "a\x00b.rss",
        "en//x.rss",
    ],
)
def test_folder_refuses_paths_that_could_escape(tmp_path: Path, relative: str) -> None:
    """The writer refuses any relative path that could leave the feeds folder or hide a file."""
    folder = FeedFolder(tmp_path / "feeds")
    with pytest.raises(UnsafePath):
        folder.write(relative, b"x")


def test_folder_refuses_symlinks_that_leave(tmp_path: Path) -> None:
    """A symlinked folder pointing outside is never written through."""
    folder = FeedFolder(tmp_path / "feeds")
    (tmp_path / "outside").mkdir()
    (folder.root / "en").symlink_to(tmp_path / "outside")
    with pytest.raises(UnsafePath):
        folder.write("en/x.rss", b"x")
    assert not (tmp_path / "outside" / "x.rss").exists()
