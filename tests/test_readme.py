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
