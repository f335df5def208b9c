"""Outgoing event names are defined once, in rooms/events.py and
commerce/events.py: no module of `server/` spells one of them itself
(`reaction` aside: the same word names a rate-limited action)."""

import ast
from pathlib import Path

from commerce import events as shop_events
from rooms import events as room_events

ROOT = Path(__file__).resolve().parent.parent
NAMES = {
    value
    for module in (room_events, shop_events)
    for key, value in vars(module).items()
    if key.isupper() and isinstance(value, str) and ":" in value  # not the bare `reaction`,
}  # which is also the name of a rate-limited action


def _spelled(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in NAMES}


def test_no_server_module_spells_an_outgoing_event_name() -> None:
    spelled = {
        str(p.relative_to(ROOT)): sorted(_spelled(p))
        for p in sorted((ROOT / "server").rglob("*.py"))
        if _spelled(p)
    }
    assert spelled == {}
