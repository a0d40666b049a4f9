"""Settings come from defaults, settings.toml, --config and the environment, in that order."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr

from syndicate.i18n.catalogs import LOCALE_DIR
from syndicate.settings import SERVED_LANGUAGES, Settings, SettingsError, load_settings, masked
from tests.support.cli import syndicate

ROOT = Path(__file__).parents[1]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests run in an empty folder with no SYNDICATE_ variables of the caller's."""
    import os

    for key in list(os.environ):
        if key.startswith("SYNDICATE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_defaults_need_no_file() -> None:
    """With no settings file at all, the embedded defaults apply."""
    settings = load_settings()
    assert settings.database.url == "sqlite:///var/syndicate.db"
    assert settings.feeds.items == 20
    assert settings.mail.transport == "outbox"
    assert settings.web.feeds_url == "http://127.0.0.1:8000/feeds/"


def test_committed_settings_file_loads_and_names_every_section() -> None:
    """The committed settings.toml is valid and documents every section."""
    settings = load_settings(ROOT / "settings.toml")
    assert settings.site.title_in("ar") != settings.site.title_in("en")
    text = (ROOT / "settings.toml").read_text()
    for section in (
        "site",
        "database",
        "feeds",
        "feeds.s3",
        "mail",
        "mail.smtp",
        "web",
        "sources",
        "schedule",
        "security",
        "bounces",
        "bounces.imap",
        "bounces.webhooks",
    ):
        assert f"[{section}]" in text


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file overrides defaults and the environment overrides the file."""
    config = tmp_path / "custom.toml"
    config.write_text("[feeds]\nitems = 12\n[mail.smtp]\nport = 2525\n")
    assert load_settings(config).feeds.items == 12
    monkeypatch.setenv("SYNDICATE_FEEDS__ITEMS", "7")
    monkeypatch.setenv("SYNDICATE_MAIL__SMTP__HOST", "relay.example")
    settings = load_settings(config)
    assert settings.feeds.items == 7
    assert settings.mail.smtp.port == 2525
    assert settings.mail.smtp.host == "relay.example"


def test_config_file_from_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SYNDICATE_CONFIG names the settings file when --config is not given."""
    config = tmp_path / "other.toml"
    config.write_text('[site]\ntitle = "Other"\n')
    monkeypatch.setenv("SYNDICATE_CONFIG", str(config))
    assert load_settings().site.title == "Other"


@pytest.mark.parametrize(
    ("toml", "env", "expected"),
    [
        ('[feeds]\nitems = "many"\n', {}, "setting feeds.items: Input should be a valid integer"),
        (
            "",
            {"SYNDICATE_FEEDS__ITEMS": "0"},
            "setting feeds.items: Input should be greater than or equal to 1",
        ),
        (
            '[schedule]\ntimezone = "Mars/Olympus"\n',
            {},
            "setting schedule.timezone: unknown time zone 'Mars/Olympus'",
        ),
        (
            '[mail]\ntransport = "pigeon"\n',
            {},
            "setting mail.transport: Input should be 'outbox' or 'smtp'",
        ),
        ("[feeds]\nitemz = 3\n", {}, "setting feeds.itemz: Extra inputs are not permitted"),
        (
            "[queue]\nheartbeat_seconds = 10\nstalled_seconds = 15\n",
            {},
            "setting queue: stalled_seconds must be at least twice heartbeat_seconds",
        ),
        ("[feeds\n", {}, "settings.toml:"),
        (
            '[site]\nlanguages = ["en", "xx"]\n',
            {},
            "setting site.languages: 'xx' is not a language Syndicate can serve (en, ar, fa)",
        ),
        (
            "",
            {"SYNDICATE_SITE__LANGUAGES": '["de"]'},
            "setting site.languages: 'de' is not a language Syndicate can serve (en, ar, fa)",
        ),
        (
            '[site]\ntitles = { de = "Nachrichten" }\n',
            {},
            "setting site.titles: 'de' is not a language Syndicate can serve",
        ),
        (
            '[sources.wordpress]\nlanguage = "de"\n',
            {},
            "setting sources.wordpress.language: 'de' is not a language Syndicate can serve",
        ),
        (
            '[database]\nurl = "mysql://root@localhost/news"\n',
            {},
            "setting database.url: 'mysql' is not a database Syndicate can use: "
            "sqlite:///path/to/file.db or postgresql+psycopg://user@host/dbname",
        ),
        (
            "",
            {"SYNDICATE_DATABASE__URL": "postgresql://syndicate@db/news"},
            "setting database.url: 'postgresql' is not a database Syndicate can use "
            "(write postgresql+psycopg://)",
        ),
        (
            '[web]\npublic_url = "ftp://news.example/"\n',
            {},
            "setting web.public_url: URL scheme should be 'http' or 'https'",
        ),
        (
            '[web]\npublic_url = "https://news.example/?utm=1"\n',
            {},
            "setting web.public_url: 'https://news.example/?utm=1' must not have a query",
        ),
        (
            '[site]\nbase_url = "https://news.example/#top"\n',
            {},
            "setting site.base_url: 'https://news.example/#top' must not have a query (?) or a "
            "fragment (#)",
        ),
        (
            '[feeds]\nwebsub_hub = "mailto:hub@news.example"\n',
            {},
            "setting feeds.websub_hub: URL scheme should be 'http' or 'https'",
        ),
        (
            '[sources.wordpress]\nurl = "cms.example"\n',
            {},
            "setting sources.wordpress.url: Input should be a valid URL",
        ),
    ],
)
def test_bad_setting_stops_with_one_line_naming_the_key(
    tmp_path: Path, toml: str, env: dict[str, str], expected: str
) -> None:
    """A wrong setting stops the program with one clear line naming the key, and exit 2."""
    (tmp_path / "settings.toml").write_text(toml)
    result = syndicate("config", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert expected in lines[0]


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    """--config naming a file that does not exist is refused."""
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_config_command_masks_secrets(tmp_path: Path) -> None:
    """`syndicate config` prints effective settings as TOML with secrets masked."""
    result = syndicate(
        "config",
        cwd=tmp_path,
        env={
            "SYNDICATE_SECURITY__SECRET_KEY": "hunter2-very-secret",
            "SYNDICATE_MAIL__SMTP__PASSWORD": "pw",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    assert '[security]\nsecret_key = "********"' in result.stdout
    assert '[mail.smtp]\nhost = "localhost"' in result.stdout
    import tomllib

    assert tomllib.loads(result.stdout)["feeds"]["items"] == 20


def test_masked_shows_unset_secrets_as_empty() -> None:
    """An unset secret shows as empty, so an operator sees it is missing."""
    assert masked(load_settings())["security"]["secret_key"] == ""


def test_a_refused_database_url_is_not_repeated() -> None:
    """The message about a database URL names its scheme, never the password it may carry."""
    import os

    os.environ["SYNDICATE_DATABASE__URL"] = "mysql://news:hunter2@db/news"
    try:
        with pytest.raises(SettingsError) as refused:
            load_settings()
    finally:
        del os.environ["SYNDICATE_DATABASE__URL"]
    assert "hunter2" not in str(refused.value)
    assert str(refused.value).startswith("setting database.url: 'mysql' is not a database")


@given(
    scheme=st.from_regex(r"[a-z][a-z0-9+]{0,15}", fullmatch=True).filter(
        lambda scheme: scheme not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
    ),
    password=st.text(st.characters(whitelist_categories=["L", "N"]), min_size=8, max_size=20).map(
        lambda text: f"pw-{text}"  # so no word of the message itself can pass for the password
    ),
)
def test_any_other_database_is_refused_without_repeating_its_password(
    monkeypatch: pytest.MonkeyPatch, scheme: str, password: str
) -> None:
    """Whatever the scheme, a store Syndicate has no driver for is named, its password is not."""
    monkeypatch.setenv("SYNDICATE_DATABASE__URL", f"{scheme}://news:{password}@db.example/news")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert message.startswith(f"setting database.url: {scheme!r} is not a database"), message
    assert password not in message
    assert "SYNDICATE_DATABASE__URL" in message


@given(code=st.from_regex(r"[a-z]{2,3}", fullmatch=True))
def test_only_served_languages_are_accepted(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    """A site language is accepted exactly when Syndicate has pages and mail in it."""
    monkeypatch.setenv("SYNDICATE_SITE__LANGUAGES", f'["en", "{code}"]')
    if code in SERVED_LANGUAGES:
        assert load_settings().site.languages == ("en", code)
        return
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value).startswith(
        f"setting site.languages: {code!r} is not a language Syndicate can serve (en, ar, fa)"
    )


def test_served_languages_are_english_and_the_catalogs() -> None:
    """The languages settings accept are those with pages and mail: English and each catalog."""
    catalogs = sorted(path.parent.parent.name for path in LOCALE_DIR.glob("*/LC_MESSAGES/*.po"))
    assert sorted(SERVED_LANGUAGES) == sorted(["en", *catalogs])


def test_an_empty_address_means_not_set(tmp_path: Path) -> None:
    """`websub_hub = ""`, as settings.toml and `syndicate config` write an unset one, is unset."""
    config = tmp_path / "custom.toml"
    config.write_text(
        '[feeds]\nwebsub_hub = ""\n[sources.wordpress]\nurl = ""\n[mail.dkim]\nkey_file = ""\n'
    )
    settings = load_settings(config)
    assert settings.feeds.websub_hub is None
    assert settings.sources.wordpress.url is None
    assert settings.mail.dkim.key_file is None


def test_the_demo_title_has_its_own_translations_and_any_other_title_none(tmp_path: Path) -> None:
    """The default name reads in Arabic and Persian; a site's own name is the same everywhere."""
    demo = load_settings().site
    assert demo.title_in("en") == "Syndicate Demo News"
    assert demo.title_in("ar") == "أخبار سينديكيت التجريبية"
    config = tmp_path / "custom.toml"
    config.write_text('[site]\ntitle = "News Example"\ntitles = { fa = "اخبار نمونه" }\n')
    own = load_settings(config).site
    assert own.title_in("ar") == "News Example"
    assert own.title_in("fa") == "اخبار نمونه"


# -- the committed settings.toml --------------------------------------------------------------

KEY_LINE = re.compile(r"# ([a-z_]+) = (.+)")


def _file_keys() -> dict[str, Any]:
    """Every `# key = value` line of settings.toml, as {section.key: value}."""
    keys: dict[str, Any] = {}
    section = ""
    for line in (ROOT / "settings.toml").read_text(encoding="utf-8").splitlines():
        if header := re.fullmatch(r"\[([a-z0-9.]+)\]", line):
            section = header[1]
        elif line and not line.startswith("#"):
            raise AssertionError(f"settings.toml sets a key instead of showing it: {line!r}")
        elif found := KEY_LINE.fullmatch(line):
            keys[f"{section}.{found[1]}"] = tomllib.loads(f"value = {found[2]}")["value"]
    return keys


def _defaults(model: BaseModel, prefix: str = "") -> dict[str, Any]:
    """Every leaf setting's default as TOML would write it ("" for unset), as {section.key: value}."""
    values: dict[str, Any] = {}
    data = model.model_dump(mode="json")
    for name in type(model).model_fields:
        key = f"{prefix}{name}"
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            values.update(_defaults(value, f"{key}."))
        elif isinstance(value, SecretStr):
            values[key] = value.get_secret_value()
        else:
            values[key] = "" if data[name] is None else data[name]
    return values


def test_settings_file_shows_every_key_with_its_default() -> None:
    """settings.toml shows every key, commented out, with exactly the value it has by default."""
    shown = _file_keys()
    defaults = _defaults(load_settings())  # no file here: the defaults alone
    assert sorted(shown) == sorted(defaults)
    for key, value in shown.items():
        assert value == defaults[key], (
            f"settings.toml shows {key} = {value!r}, default {defaults[key]!r}"
        )


def test_a_file_loaded_once_is_not_read_again_by_later_settings(tmp_path: Path) -> None:
    """After load_settings(file), good or bad, plain Settings() is the defaults again."""
    good = tmp_path / "good.toml"
    good.write_text('[site]\ntitle = "From a file"\n', encoding="utf-8")
    assert load_settings(good).site.title == "From a file"
    assert Settings().site.title != "From a file"
    bad = tmp_path / "bad.toml"
    bad.write_text("[feeds]\nitems = -1\n", encoding="utf-8")
    with pytest.raises(SettingsError):
        load_settings(bad)
    assert Settings().feeds.items > 0
