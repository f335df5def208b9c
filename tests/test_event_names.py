"""The events `server/` sends are named once, in server/event_names.py: no
module of `server/` spells one of those names itself, and each name is one
the protocol documents (a renamed constant would silently change the wire)."""

import ast
from pathlib import Path

from server import event_names

ROOT = Path(__file__).resolve().parent.parent
NAMES = {v for k, v in vars(event_names).items() if k.isupper() and isinstance(v, str)}


def _strings(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in NAMES}


def test_no_server_module_spells_an_outgoing_event_name() -> None:
    spelled = {
        str(p.relative_to(ROOT)): sorted(_strings(p))
        for p in sorted((ROOT / "server").rglob("*.py"))
        if p.name != "event_names.py" and _strings(p)
    }
    assert spelled == {}


def test_every_outgoing_name_is_documented() -> None:
    docs = (ROOT / "docs" / "protocol.md").read_text() + (ROOT / "docs" / "shop.md").read_text()
    assert sorted(n for n in NAMES if f"`{n}`" not in docs) == []
