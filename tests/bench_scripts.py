"""Import a script of benchmarks/ as a module, for the tests of those scripts."""

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
FOLDERS = ("costs", "campaigns")  # cost measurements; experiment campaigns


def load(name: str):
    """benchmarks/{costs,campaigns}/<name>.py as a module (cached). The scripts import their
    siblings by name: pytest puts both folders on the path (``pythonpath`` in pyproject.toml),
    as running a script does for its own folder."""
    if name in sys.modules:
        return sys.modules[name]
    (path,) = [BENCH / f / f"{name}.py" for f in FOLDERS if (BENCH / f / f"{name}.py").exists()]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
