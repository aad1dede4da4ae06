"""Import a script of benchmarks/ as a module, for the tests of those scripts."""

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    """benchmarks/<name>.py as a module (cached). The scripts import their siblings by name:
    pytest puts benchmarks/ on the path (``pythonpath`` in pyproject.toml), as running a
    script does for its own folder."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
