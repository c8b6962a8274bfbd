"""The pure layers never import Prefect: checked in the source and in a fresh interpreter."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "autoclip"
PURE = ["media", "sources", "storage", "providers", "planning"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_pure_module_imports_prefect_in_source():
    files = [f for layer in PURE for f in (PACKAGE / layer).rglob("*.py")]
    assert len(files) >= 10
    offenders = [str(f.relative_to(PACKAGE)) for f in files if "prefect" in _imports(f)]
    assert offenders == []


def test_importing_the_pure_layers_loads_no_prefect():
    modules = [f"autoclip.{layer}.{f.stem}" if f.stem != "__init__" else f"autoclip.{layer}"
               for layer in PURE for f in (PACKAGE / layer).glob("*.py")]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "import autoclip.analysis\n"
            "print(sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
