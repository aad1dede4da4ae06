"""The README's Python examples run as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert blocks, "README has no python example"
    for code in blocks:
        namespace: dict = {}
        exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - our own README
        if "infmasking_loss" in code:
            assert namespace["out"].loss.ndim == 0
        if "load_run" in code:  # the trained-model example: features of every sample, any subset
            d = namespace["run"].dim
            assert namespace["features"].shape == (4, d) and namespace["only_image1"].shape == (
                4,
                d,
            )


def test_docs_index_names_every_document():
    """docs/README.md answers "which page?" for every page in docs/."""
    docs = README.parent / "docs"
    index = (docs / "README.md").read_text()
    pages = sorted(p.name for p in docs.glob("*.md") if p.name != "README.md")
    assert pages and [p for p in pages if f"]({p})" not in index] == []
    assert "docs/README.md" in README.read_text()


def test_layout_is_written_once():
    """The package tree lives in docs/CONTRIBUTING.md only; the others point to it."""
    root = README.parent
    line = "  objectives.py the registry"
    pages = [README, *sorted((root / "docs").glob("*.md")), root / "src/infmasking/__init__.py"]
    holders = [p.relative_to(root).as_posix() for p in pages if line in p.read_text()]
    assert holders == ["docs/CONTRIBUTING.md"]


def test_relative_links_resolve():
    """Every relative Markdown link of the README and docs/ names a file that exists."""
    root = README.parent
    broken = []
    for page in [README, *sorted((root / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.name}: {target}")
    assert broken == []
