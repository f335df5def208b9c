"""The layering of ARCHITECTURE.md, checked on the source: which package may
import what, and that every module imports on its own."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"kernel", "rooms", "commerce", "media", "server", "accounts"}
FRAMEWORKS = {"aiohttp", "socketio", "engineio", "aiortc", "av", "aioice"}

# package -> (our packages it may import, frameworks it may import)
ALLOWED: dict[str, tuple[set[str], set[str]]] = {
    "kernel": (set(), set()),
    "rooms": ({"kernel"}, set()),
    "commerce": ({"kernel"}, set()),
    "accounts": ({"kernel"}, set()),
    "media": ({"kernel"}, {"aiortc", "av", "aioice"}),
    "server": (OURS, {"aiohttp", "socketio", "engineio"}),
}


def modules() -> list[Path]:
    return sorted(p for pkg in OURS for p in (ROOT / pkg).rglob("*.py"))


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_package_imports_only_what_its_layer_allows(path: Path) -> None:
    package = path.relative_to(ROOT).parts[0]
    ours, frameworks = ALLOWED[package]
    names = imported(path)
    assert not (names & OURS) - ours - {package}, f"{path}: imports {names & OURS}"
    assert not (names & FRAMEWORKS) - frameworks, f"{path}: imports {names & FRAMEWORKS}"


def test_only_one_commerce_module_speaks_to_stripe() -> None:
    speakers = [p for p in modules() if "stripe" in imported(p) and p.parts[-2] != "server"]
    assert [p.name for p in speakers] == ["stripe_gateway.py"]


def test_only_one_module_speaks_smtp() -> None:
    speakers = [p for p in modules() if {"aiosmtplib", "smtplib"} & imported(p)]
    assert [str(p.relative_to(ROOT)) for p in speakers] == ["accounts/smtp.py"]


def test_every_module_starts_with_a_docstring() -> None:
    missing = [
        str(p.relative_to(ROOT))
        for p in modules()
        if p.stat().st_size
        and ast.get_docstring(ast.parse(p.read_text())) is None
        and p.name != "__init__.py"
    ]
    assert missing == []


def _dotted(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def test_every_module_imports_on_its_own() -> None:
    """Each in a fresh interpreter, so no import leans on another's side effects."""
    names = [_dotted(p) for p in modules()]
    script = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\n"
    failures = []
    for name in names:
        result = subprocess.run(
            [sys.executable, "-c", script, name],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode:
            failures.append(f"{name}: {result.stderr.strip().splitlines()[-1]}")
    assert failures == []
    assert importlib.import_module("server.app")
