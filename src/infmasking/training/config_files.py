"""The run configuration as files and dicts: ``to_dict`` / ``from_dict`` (with the migration
of older configs), ``config.yaml`` written and read, a bounded YAML reader for files we do
not trust, the check of a ``--config`` file, and the presets shipped in the package."""

from __future__ import annotations

import dataclasses
import functools
from argparse import ArgumentError
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import ArgumentParser

from infmasking import probe_registry
from infmasking.objectives import get as get_objective
from infmasking.training.config import RunConfig

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    """Plain YAML-safe dict of ``cfg`` (tuples as lists); ``from_dict`` reads it back."""
    d = dataclasses.asdict(cfg)
    d["augment"]["crop_scale"] = list(d["augment"]["crop_scale"])
    return d


@functools.cache
def _dict_parser(probes: tuple[str, ...]) -> ArgumentParser:
    """jsonargparse parser of one ``RunConfig`` under the key ``cfg`` (types, nesting, unknown
    keys); one per tuple of registered ``probes`` (``probe_registry.PROBES``: ``eval.probe``'s
    choices are read when the parser is built, and a probe may be registered later)."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(RunConfig, "cfg")
    return parser


#: Keys of ``data`` that moved into ``data.trifeatures``: configs and checkpoints written
#: before keep loading (:func:`migrate`); the command line says the new name (cli.py).
MOVED_TO_TRIFEATURES = ("image_size", "biased", "self_pairs", "max_pairs", "cache_dir")


def migrate(d: dict[str, Any]) -> dict[str, Any]:
    """A ``to_dict``-form config of an older version in today's form: the flat Trifeatures
    keys of ``data`` (:data:`MOVED_TO_TRIFEATURES`) move into ``data.trifeatures``. ``d`` is
    not modified. Raises ValueError when an old key and its new one disagree."""
    data = d.get("data")
    if not isinstance(data, dict) or not any(k in data for k in MOVED_TO_TRIFEATURES):
        return d
    data = dict(data)
    section = data.get("trifeatures")
    section = dict(section) if isinstance(section, dict) else {}
    for key in MOVED_TO_TRIFEATURES:
        if key not in data:
            continue
        value = data.pop(key)
        if key in section and section[key] != value:
            raise ValueError(
                f"data.{key} ({value!r}) and data.trifeatures.{key} ({section[key]!r}) disagree; "
                f"data.{key} is the old name of data.trifeatures.{key}: give only the new one"
            )
        section[key] = value
    data["trifeatures"] = section
    return {**d, "data": data}


def from_dict(d: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig from ``to_dict`` output (jsonargparse checks every key and type);
    an unknown key or a wrongly typed value raises ValueError naming it. Configs of older
    versions are read through :func:`migrate`."""
    d = migrate(d)
    # method.name is checked against the objective registry as it is now (get_objective), not
    # against the Literal of the names registered at import: an objective registered later loads.
    method = dict(d.get("method") or {})
    name = method.pop("name", None)
    probe = (d.get("eval") or {}).get("probe") if isinstance(d.get("eval"), dict) else None
    if isinstance(probe, str) and probe not in probe_registry.PROBES:
        # a run trained with a probe added by probe_registry.register, read where it is not
        raise ValueError(
            f"eval.probe {probe!r} is not a registered probe "
            f"({probe_registry.choices(probe_registry.PROBES)}); register it "
            "(probe_registry.register) in this process before reading this run"
        )
    parser = _dict_parser(probe_registry.PROBES)
    try:
        cfg = parser.instantiate(parser.parse_object({"cfg": {**d, "method": method}})).cfg
    except ArgumentError as e:
        raise ValueError(f"invalid config: {' '.join(str(e).split())}") from None
    if name is not None:
        get_objective(name)  # ValueError naming the unknown method and the valid ones
        cfg.method.name = name
    return cfg


def save_config(cfg: RunConfig, path: Path) -> None:
    from infmasking.files import write_atomic

    write_atomic(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the
    last one silently: a second ``method:`` block would train another method)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} given twice (lines {seen[key] + 1} and "
                f"{key_node.start_mark.line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


#: Bounds on a YAML file we read (a config is a few KB, flat and without aliases): what an
#: untrusted file can make us build (a billion-laughs alias bomb, nesting without end).
YAML_MAX_BYTES = 1 << 20
YAML_MAX_ALIASES = 100
YAML_MAX_DEPTH = 32


def describe_path(path: Path) -> str | None:
    """Why ``path`` cannot be read as a regular file, in words (None if it can): missing, a
    folder, a special file (FIFO, device, socket) — each named as what it is."""
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "no such file"
    except NotADirectoryError:
        return "no such file (a part of the path is a file, not a folder)"
    except PermissionError:
        return "permission denied"
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    if not stat.S_ISREG(mode):
        return "a special file (FIFO, device or socket), not a regular file"
    return None


def _check_yaml_bounds(path: Path, text: str) -> None:
    """Refuse, before anything is built, YAML that expands (aliases) or nests beyond bounds."""
    depth = aliases = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > YAML_MAX_DEPTH:
                raise ValueError(f"{path}: nested deeper than {YAML_MAX_DEPTH} levels; refused")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > YAML_MAX_ALIASES:
                raise ValueError(
                    f"{path}: more than {YAML_MAX_ALIASES} aliases (*name); refused (a file "
                    "built to expand without bound)"
                )


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content, duplicate keys refused; errors name the file (ValueError). Not a
    regular file, over :data:`YAML_MAX_BYTES`, more aliases than :data:`YAML_MAX_ALIASES` or
    deeper than :data:`YAML_MAX_DEPTH`: refused in one line before anything is built."""
    path = Path(path)
    if (why := describe_path(path)) is not None:
        raise ValueError(f"{path}: {why}")
    size = path.stat().st_size
    if size > YAML_MAX_BYTES:
        raise ValueError(
            f"{path}: {size} bytes; a config file holds at most {YAML_MAX_BYTES} (refused)"
        )
    try:
        text = path.read_text()
        _check_yaml_bounds(path, text)
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.constructor.ConstructorError as e:
        raise ValueError(f"{path}: {e.problem}") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file") from None


def check_config_file(path: str | Path, extra_keys: Sequence[str] = ()) -> dict[str, Any]:
    """A ``--config`` file's options, checked as the command line's are: a non-empty mapping,
    no key twice, every key and type known (``extra_keys``: the command's own options).
    Raises ValueError naming the file, the key and what was expected."""
    data = read_yaml(path)
    if data is None:
        raise ValueError(f"{path}: the config file is empty")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of options, got {type(data).__name__}")  # noqa: TRY004
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    run_part = {}
    for key, value in data.items():
        if key in extra_keys:
            continue
        if key not in fields:
            raise ValueError(
                f"{path}: unknown key {key!r}; valid: {', '.join([*fields, *extra_keys])}"
            )
        if isinstance(value, dict) and fields[key].default_factory is not dataclasses.MISSING:
            section = fields[key].default_factory()
            unknown = [k for k in value if not hasattr(section, k)]
            if key == "data" and unknown and unknown[0] in MOVED_TO_TRIFEATURES:
                raise ValueError(
                    f"{path}: 'data.{unknown[0]}' is now 'data.trifeatures.{unknown[0]}' "
                    f"(write data: {{trifeatures: {{{unknown[0]}: ...}}}})"
                )
            _check_section_keys(path, key, section, value)
        run_part[key] = value
    try:
        from_dict(run_part)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return data


def _check_section_keys(path: str | Path, name: str, section: Any, value: dict) -> None:
    """Every key of ``value`` is a field of the dataclass ``section`` (``name`` in messages);
    nested sections (``data.trifeatures``) are checked the same way."""
    valid = [f.name for f in dataclasses.fields(section)]
    for k, v in value.items():
        if k not in valid:
            raise ValueError(
                f"{path}: unknown key '{name}.{k}'; valid keys of {name!r}: " + ", ".join(valid)
            )
        sub = getattr(section, k)
        if isinstance(v, dict) and dataclasses.is_dataclass(sub):
            _check_section_keys(path, f"{name}.{k}", sub, v)


def load_config(path: Path) -> RunConfig:
    """The RunConfig of a YAML file (a run folder's ``config.yaml``); errors name the file."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of options, got {type(data).__name__}")  # noqa: TRY004
    try:
        return from_dict(data)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def presets() -> dict[str, Path]:
    """Name -> YAML file of the presets shipped in the package."""
    return {p.stem: p for p in sorted(PRESET_DIR.glob("*.yaml"))}
