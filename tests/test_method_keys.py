"""Each objective declares the ``method.*`` options it reads (``Objective.reads``): the keys are
the ``method`` section's fields, a training step reads exactly the declared ones, and
docs/METHOD.md's table is the registry's."""

import dataclasses
import re
import typing
from pathlib import Path

import pytest
import torch

from infmasking import objectives
from infmasking.data.base import Batch
from infmasking.training.config import MethodConfig, RunConfig
from infmasking.training.module import SSLModule

DOC = Path(__file__).resolve().parents[1] / "docs" / "METHOD.md"
MODS = ["x1", "x2"]


class Reads:
    """A ``method`` section that records which of its options are read."""

    def __init__(self, section: MethodConfig) -> None:
        self._section, self.read = section, set()

    def __getattr__(self, key: str):
        self.read.add(key)
        return getattr(self._section, key)


def test_the_keys_are_the_method_section():
    fields = [f.name for f in dataclasses.fields(MethodConfig) if f.name != "name"]
    assert list(typing.get_args(objectives.MethodKey)) == fields
    for obj in objectives.OBJECTIVES.values():
        assert list(obj.reads) == [k for k in fields if k in obj.reads], obj.name  # its order
        assert set(objectives.MASKED_KEYS) <= set(obj.reads) or not obj.masked, obj.name


@pytest.mark.parametrize("name", list(objectives.OBJECTIVES))
def test_a_training_step_reads_the_declared_keys(name):
    cfg = RunConfig()
    cfg.method.name, cfg.model.dim, cfg.model.n_heads = name, 16, 2
    cfg.model.head_hidden, cfg.model.proj_dim = 16, 8
    cfg.model.encoders = {k: {"name": "identity"} for k in MODS}
    torch.manual_seed(0)
    module = SSLModule(cfg, MODS, dict.fromkeys(MODS, "sequence"), {k: [5, 4] for k in MODS})
    module.cfg.method = reads = Reads(module.cfg.method)
    g = torch.Generator().manual_seed(0)
    batch = Batch({k: torch.randn(8, 5, 4, generator=g) for k in MODS}, {}, {})
    module.compute_loss(batch, torch.Generator().manual_seed(1))
    assert reads.read - {"name"} == set(objectives.get(name).reads)


def test_the_docs_table_is_the_registry():
    rows = re.findall(r"^\| `(\w+)` \| (`.*`) \|$", DOC.read_text(), flags=re.MULTILINE)
    table = {name: tuple(re.findall(r"`(\w+)`", keys)) for name, keys in rows}
    assert table == {name: obj.reads for name, obj in objectives.OBJECTIVES.items()}


def test_register_refuses_an_unknown_key(monkeypatch):
    monkeypatch.setattr(objectives, "OBJECTIVES", dict(objectives.OBJECTIVES))
    comm = objectives.get("comm")
    typo = dataclasses.replace(comm, name="typo", reads=("temprature", "weights"))
    with pytest.raises(ValueError, match="objective 'typo': reads 'temprature', not a method"):
        objectives.register(typo)
    assert "typo" not in objectives.OBJECTIVES
