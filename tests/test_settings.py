"""Settings come from defaults, settings.toml, --config and the environment, in that order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from syndicate.settings import SettingsError, load_settings, masked

ROOT = Path(__file__).parents[1]


def _syndicate(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    import os

    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("SYNDICATE_")
    }
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "syndicate", *args],
        cwd=cwd, env=environment, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


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
        "mail",
        "mail.smtp",
        "web",
        "sources",
        "schedule",
        "security",
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
        ("[feeds\n", {}, "settings.toml:"),
    ],
)
def test_bad_setting_stops_with_one_line_naming_the_key(
    tmp_path: Path, toml: str, env: dict[str, str], expected: str
) -> None:
    """A wrong setting stops the program with one clear line naming the key, and exit 2."""
    (tmp_path / "settings.toml").write_text(toml)
    result = _syndicate("config", cwd=tmp_path, env=env)
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
    result = _syndicate(
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
