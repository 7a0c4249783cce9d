"""Every setting is documented in the README, with its environment variable and default."""

from __future__ import annotations

import pytest
from live import ROOT

from server import config

README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("setting", config.SETTINGS, ids=lambda s: s.name)
def test_setting_is_documented(setting: config.Setting) -> None:
    row = next(
        (ln for ln in README.splitlines() if ln.startswith("|") and f"`{setting.env}`" in ln), ""
    )
    assert row, f"README has no row for {setting.env}"
    assert f"`--{setting.name.replace('_', '-')}`" in row
    assert f"`{setting.default}`" in row or (setting.default == "" and "(empty)" in row)


def test_environment_then_overrides() -> None:
    env = {"KGPUB_PORT": "8080", "KGPUB_BASE_URI": "https://x.example/"}
    values = config.load(env, {"port": 9090})
    assert values["port"] == 9090
    assert values["base_uri"] == "https://x.example/"
    assert values["workers"] == 2
