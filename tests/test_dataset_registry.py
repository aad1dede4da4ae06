"""A dataset is added through the registry alone (docs/CONTRIBUTING.md, "Add a dataset"): a
loader and one :class:`DatasetEntry`; loading, training, the CLI's help and the missing-file
error all read the entry."""

import pytest
import torch
from conftest import TINY_ONE_EPOCH

from infmasking.cli import main
from infmasking.data import registry
from infmasking.data.base import MultimodalData, Split, Task
from infmasking.data.errors import DatasetNotFoundError, require_path
from infmasking.data.registry import DatasetEntry, load_dataset, register


def load_toy(cfg) -> MultimodalData:
    """Two vector modalities sharing a label: x_a = noise + label, x_b = noise - label."""
    g = torch.Generator().manual_seed(cfg.seed)

    def split(n: int) -> Split:
        y = torch.randint(0, 2, (n,), generator=g)
        noise = lambda: torch.randn(n, 4, generator=g)
        return Split({"a": noise() + y[:, None], "b": noise() - y[:, None]}, {"label": y})

    return MultimodalData(
        "toy",
        ["a", "b"],
        {"a": "vector", "b": "vector"},
        [Task("label", "classification", 2)],
        split(64),
        split(32),
        split(32),
    )


TOY = DatasetEntry("toy", load_toy, needs_path=False, where_to_get="Toys are in the toy box.")


@pytest.fixture
def toy(monkeypatch):
    """The registry with the toy dataset added; restored afterwards."""
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))
    monkeypatch.setattr(registry, "DATASETS", registry.DATASETS)
    return register(TOY)


def test_registered_dataset_loads_by_name(toy):
    assert "toy" in registry.DATASETS
    data = load_dataset("toy", seed=3)
    assert data.modalities == ["a", "b"] and len(data.train) == 64
    assert load_dataset("toy", seed=3, modalities=["b", "a"]).modalities == ["b", "a"]
    with pytest.raises(ValueError, match="already registered"):
        register(TOY)


def test_unregistered_name_lists_the_registry(toy):
    with pytest.raises(ValueError, match="unknown dataset 'toys'.*'toy'"):
        load_dataset("toys")


def test_missing_file_quotes_the_entry(toy, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="toy data: .*Toys are in the toy box. Nothing"):
        require_path(tmp_path / "box.npz", "toy")


def test_builtin_entries_hold_their_where_to_get_text():
    for name in ("mosi", "mosei", "ur_funny", "mustard", "mimic", "vision_touch", "mmimdb", "npz"):
        assert registry.REGISTRY[name].where_to_get, name
    assert registry.where_to_get("affect") == registry.REGISTRY["mosi"].where_to_get
    assert registry.where_to_get("trifeatures") == ""


def test_help_lists_the_registry(toy, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "a registered dataset: " + " | ".join(registry.DATASETS) in out
    assert out.count("| toy ") == 1


def test_registered_dataset_trains(toy, tmp_path):
    out = tmp_path / "run"
    toy_data = ["--data.name", "toy", "--data.options", "{}", "--model.encoders", "{}"]
    assert main(["train", *TINY_ONE_EPOCH, *toy_data, "--out_dir", str(out)]) == 0
    assert (out / "report.json").is_file()
    assert "name: toy" in (out / "config.yaml").read_text()
