"""The shop's constants are written once: its settings' defaults in
commerce.config (read by server/config.py), its event names in
commerce.events (no literal elsewhere in commerce/)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from commerce import events
from commerce.config import SHOP_DEFAULTS
from server.config import Settings

ROOT = Path(__file__).resolve().parents[1]
SETTING_OF = {
    "cart_ttl_s": "cart_ttl_s",
    "checkout_hold_s": "checkout_hold_s",
    "reconcile_after_s": "reconcile_after_s",
    "decline_hold_s": "checkout_decline_hold_s",
    "max_attempts": "checkout_max_attempts",
}


def test_server_settings_default_to_the_shops_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CART_TTL_S", "CHECKOUT_HOLD_S", "RECONCILE_AFTER_S", "DECLINE_HOLD_S"):
        monkeypatch.delenv(f"DROPROOM_{name}", raising=False)
    monkeypatch.delenv("DROPROOM_CHECKOUT_MAX_ATTEMPTS", raising=False)
    settings = Settings.from_env(data_dir=tmp_path)
    assert {f.name for f in dataclasses.fields(SHOP_DEFAULTS)} == set(SETTING_OF)
    for field, setting in SETTING_OF.items():
        assert getattr(settings, setting) == getattr(SHOP_DEFAULTS, field)


def test_commerce_names_its_events_only_through_commerce_events() -> None:
    names = {v for k, v in vars(events).items() if k.isupper()}
    pattern = re.compile("|".join(re.escape(f'"{n}"') for n in names))
    for path in sorted((ROOT / "commerce").glob("*.py")):
        if path.name != "events.py":
            assert not pattern.search(path.read_text()), path.name
