"""docs/architecture.md is a newcomer's map: every folder of the repository
has its line there, and `server/`'s feature packages stay apart as it says."""

import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FEATURES = {"rooms", "shop", "audio", "accounts"}


def _folders() -> set[str]:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return {str(Path(f).parent) + "/" for f in files if Path(f).parent != Path(".")}


def test_every_folder_has_its_line_in_the_map() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    mapped = {line.split()[0] for line in text.splitlines() if line[:1].strip()}
    assert sorted(_folders() - mapped) == []


def _features_imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] == "server" and len(parts) > 1 and parts[1] in FEATURES:
                found.add(node.module)
    return found


def test_server_features_import_no_other_feature_but_the_demo_registry() -> None:
    crossing = {
        f"{p.relative_to(ROOT)} -> {module}"
        for feature in FEATURES
        for p in (ROOT / "server" / feature).rglob("*.py")
        for module in _features_imported(p)
        if module.split(".")[1] != feature and module != "server.rooms.demo"
    }
    assert sorted(crossing) == []
