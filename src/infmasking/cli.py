"""The ``infmasking`` command: train, evaluate, reproduce.

Configuration is jsonargparse over the dataclasses of ``training/config.py``: every value can
be set from a YAML file (``--config run.yaml``), a preset shipped in the package
(``--preset mosi``) or the command line (``--method.name comm``), later ones winning.
"""

from __future__ import annotations

import sys
from typing import Literal, Optional

from jsonargparse import ActionConfigFile, ArgumentParser, set_parsing_settings

from infmasking.training.config import METHODS, RunConfig, presets


set_parsing_settings(docstring_parse_attribute_docstrings=True)  # option help from the dataclass fields


def _preset_help() -> str:
    names = ", ".join(presets()) or "(none)"
    return f"Presets shipped in the package (--preset NAME): {names}."


def _run_parser(description: str) -> ArgumentParser:
    p = ArgumentParser(description=description + " " + _preset_help())
    p.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below")
    p.add_argument("--preset", type=str, default=None,
                   help=f"a preset shipped in the package, applied before other options. {_preset_help()}")
    p.add_class_arguments(RunConfig, as_group=False)
    return p


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="infmasking", description="InfMasking and baselines: train, evaluate, reproduce. "
                            + _preset_help())
    sub = parser.add_subcommands(dest="command")

    train = _run_parser("Train a method on a dataset, probe the frozen features and write a run folder. "
                        "With no arguments: InfMasking on the biased Trifeatures set at 64 px (≈5 min on 2 CPU cores).")
    train.add_argument("--overwrite", type=bool, default=False, help="replace a finished run in out_dir")
    sub.add_subcommand("train", train, help="train and report")

    ev = ArgumentParser(description="Re-run the linear probes of a trained run.")
    ev.add_argument("run", type=str, help="run folder or checkpoint file")
    ev.add_argument("--out_dir", type=str, default=None, help="where to write evaluation.json (default: the run)")
    ev.add_argument("--class_weight", type=Optional[Literal["balanced"]], default=None,
                    help="'balanced': class-weighted probe, written to evaluation_balanced.json")
    ev.add_argument("--num_threads", type=Optional[int], default=None, help="CPU threads for features and probes")
    sub.add_subcommand("evaluate", ev, help="re-run the probes of a run folder or checkpoint")

    rep = _run_parser("Run methods × seeds and write a comparison table (mean ± std, published numbers beside).")
    rep.add_argument("benchmark", type=str, help="trifeatures | trifeatures_tokens")
    rep.add_argument("--methods", type=list[str], default=["infmasking", "comm", "cross", "cross_self"])
    rep.add_argument("--seeds", type=list[int], default=[0, 1, 2])
    rep.add_argument("--only_finished", type=bool, default=False,
                     help="train nothing: tabulate the finished runs, list the missing ones")
    rep.add_argument("--ru_unbiased", type=bool, default=True,
                     help="redundancy / uniqueness from runs on the unbiased pairs (published protocol); "
                          "false: everything from the biased runs (half the runs)")
    sub.add_subcommand("reproduce", rep, help="methods × seeds comparison")
    return parser


def _expand_presets(argv: list[str]) -> list[str]:
    """``--preset NAME`` -> ``--config <packaged NAME.yaml>`` at the same position."""
    out, known = [], presets()
    i = 0
    while i < len(argv):
        a = argv[i]
        name = None
        if a == "--preset" and i + 1 < len(argv):
            name, i = argv[i + 1], i + 2
        elif a.startswith("--preset="):
            name, i = a.split("=", 1)[1], i + 1
        else:
            out.append(a)
            i += 1
            continue
        if name not in known:
            raise SystemExit(f"infmasking: unknown preset {name!r}; valid presets: {', '.join(known)}")
        out += ["--config", str(known[name])]
    return out


def _check_keys(argv: list[str]) -> None:
    """An unknown ``--section.key`` is an error listing the valid keys of that section."""
    import dataclasses

    sections = {f.name: f.default_factory() for f in dataclasses.fields(RunConfig) if f.default_factory is not dataclasses.MISSING}
    for a in argv:
        if not a.startswith("--") or "." not in a:
            continue
        section, key = a[2:].split("=", 1)[0].split(".", 1)
        if section in sections:
            valid = [f.name for f in dataclasses.fields(sections[section])]
            if key not in valid:
                name = f"{section}.{key}"
                raise SystemExit(f"infmasking: unknown config key {name!r}; valid keys of {section!r}: "
                                 + ", ".join(valid))


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done, 1 a run cannot start as asked (bad option, data or folder),
    2 an error while running (one line; ``--debug`` or ``INFMASKING_DEBUG=1`` shows the
    traceback), 143 stopped by SIGTERM after saving a resumable checkpoint."""
    import os

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("INFMASKING_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    argv = _expand_presets(argv)
    _check_keys(argv)
    parser = build_parser()
    cfg = parser.parse_args(argv)
    cmd = cfg.command
    if cmd is None:
        parser.print_help()
        return 2
    args = cfg[cmd]
    from infmasking.training.run import RunError

    try:
        if cmd == "train":
            from infmasking.training.run import train

            train(_run_config(parser, cmd, args), overwrite=args.overwrite)
        elif cmd == "evaluate":
            from infmasking.training.run import evaluate

            evaluate(args.run, args.out_dir, class_weight=args.class_weight, num_threads=args.num_threads)
        elif cmd == "reproduce":
            from infmasking.training.reproduce import reproduce

            bad = [m for m in args.methods if m not in METHODS]
            if bad:
                raise ValueError(f"unknown methods {bad}; valid: {list(METHODS)}")
            reproduce(args.benchmark, _run_config(parser, cmd, args), methods=args.methods, seeds=args.seeds,
                      only_finished=args.only_finished, ru_unbiased=args.ru_unbiased)
    except (RunError, ValueError, FileNotFoundError) as e:
        if debug:
            raise
        print(f"infmasking {cmd}: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - one line for the user; --debug shows the traceback
        if debug:
            raise
        print(f"infmasking {cmd}: error: {_describe(e)} (run with --debug for the traceback)", file=sys.stderr)
        return 2
    return 0


def _describe(e: BaseException) -> str:
    """One line naming what went wrong, for the errors users meet most."""
    import zipfile

    name = type(e).__name__
    if isinstance(e, zipfile.BadZipFile):
        return f"a data file is not a valid .npz / zip archive (truncated or corrupt?): {e}"
    if isinstance(e, PermissionError):
        return f"permission denied: {e.filename or e}"
    if isinstance(e, (FileExistsError, NotADirectoryError)):
        return f"a file is in the way of a folder: {e.filename or e}"
    if name == "MisconfigurationException":
        return f"trainer: {str(e).splitlines()[0]}"
    first = str(e).splitlines()[0] if str(e) else ""
    return f"{name}: {first}"


def _run_config(parser: ArgumentParser, cmd: str, args) -> RunConfig:
    sub = parser._subcommands_action._name_parser_map[cmd]  # noqa: SLF001 - the subcommand's own parser
    init = sub.instantiate(args)
    keep = {k: getattr(init, k) for k in RunConfig.__dataclass_fields__}
    return RunConfig(**keep)


if __name__ == "__main__":
    raise SystemExit(main())
