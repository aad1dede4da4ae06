"""The ``infmasking`` command: train, evaluate, embed, reproduce, interactions.

Configuration is jsonargparse over the dataclasses of ``training/config.py``: every value can
be set from a YAML file (``--config run.yaml``), a preset shipped in the package
(``--preset mosi``) or the command line (``--method.name comm``), later ones winning.
"""

from __future__ import annotations

import sys
from typing import Literal, Optional

from jsonargparse import ActionConfigFile, ArgumentError, ArgumentParser, set_parsing_settings

from infmasking import probe_registry
from infmasking.data import registry as datasets
from infmasking.objectives import get as get_objective
from infmasking.training.config import RunConfig
from infmasking.training.config_files import presets

set_parsing_settings(
    docstring_parse_attribute_docstrings=True
)  # option help from the dataclass fields


def _preset_help() -> str:
    names = ", ".join(presets()) or "(none)"
    return f"Presets shipped in the package (--preset NAME): {names}."


def _parser(command: str | None, description: str) -> ArgumentParser:
    """A parser that raises on a bad argument (``main`` turns it into one line) and whose usage
    is one line, so ``--help`` starts with the description, not every option's synopsis."""
    prog = f"infmasking {command}" if command else "infmasking"
    usage = f"{prog} [options]" if command else "infmasking COMMAND [options]  (COMMAND --help)"
    return ArgumentParser(prog=prog, usage=usage, description=description, exit_on_error=False)


def _run_parser(command: str, description: str) -> ArgumentParser:
    p = _parser(command, description + " " + _preset_help())
    p.add_argument(
        "--config", action=ActionConfigFile, help="YAML file with any of the options below"
    )
    p.add_argument(
        "--preset",
        type=str,
        default=None,
        help=f"a preset shipped in the package, applied before other options. {_preset_help()}",
    )
    p.add_class_arguments(RunConfig, as_group=False)
    for action in p._actions:  # the dataset names come from the registry, not a docstring
        if action.dest == "data.name":
            action.help = "a registered dataset: " + " | ".join(datasets.DATASETS)
    return p


def build_parser() -> ArgumentParser:
    parser = _parser(
        None,
        "InfMasking and baselines: train, evaluate, embed, reproduce, interactions. "
        + _preset_help(),
    )
    sub = parser.add_subcommands(dest="command")

    train = _run_parser(
        "train",
        "Train a method on a dataset, probe the frozen features and write a run folder. "
        "With no arguments: InfMasking on the biased Trifeatures set at 64 px, 936 steps "
        "(11 min of training on one thread of a 2-core CPU, measured; README 'First result'). "
        "The same command on a finished run shows its report; on an interrupted one, resumes.",
    )
    train.add_argument(
        "--overwrite", type=bool, default=False, help="replace a finished run in out_dir"
    )
    sub.add_subcommand("train", train, help="train and report")

    ev = _parser("evaluate", "Re-run the linear probes of a trained run.")
    ev.add_argument("run", type=str, help="run folder or checkpoint file")
    ev.add_argument(
        "--out_dir",
        type=str,
        default=None,
        help="where to write evaluation.json (default: the run)",
    )
    ev.add_argument(
        "--class_weight",
        type=Optional[Literal["balanced"]],
        default=None,
        help="'balanced': class-weighted probe, written to evaluation_balanced.json",
    )
    ev.add_argument(
        "--probe",
        type=Optional[Literal[probe_registry.PROBES]],  # the probes registered now
        default=None,
        help="the probe (default: the run's eval.probe); see docs/PROBES.md",
    )
    ev.add_argument(
        "--robust_probe",
        type=Optional[Literal[probe_registry.ROBUST_PROBES]],
        default=None,
        help="the robust reading beside the published probe (default: the run's "
        "eval.robust_probe, centred); see docs/PROBES.md",
    )
    ev.add_argument(
        "--features",
        type=Optional[Literal["auto", "fused", "concat"]],
        default=None,
        help="what the probes read (default: the run's eval.features); see docs/PROBES.md",
    )
    ev.add_argument(
        "--num_threads",
        type=Optional[int],
        default=None,
        help="CPU threads for features and probes",
    )
    sub.add_subcommand("evaluate", ev, help="re-run the probes of a run folder or checkpoint")

    em = _parser(
        "embed",
        "Embed every sample of a dataset with a trained run: writes features [N, d] "
        "(the features the probes use), the split of each sample, its index (its row in the data "
        "file, rows in the file's order, for own .npz data) and its labels to an .npz.",
    )
    em.add_argument("run", type=str, help="run folder or checkpoint file")
    em.add_argument(
        "--out",
        type=Optional[str],
        default=None,
        help="output .npz file, or a folder to write features.npz into "
        "(default: RUN/features.npz, in the run folder)",
    )
    em.add_argument(
        "--overwrite",
        type=bool,
        default=False,
        help="replace an existing --out / --export file (never the data file or the checkpoint)",
    )
    em.add_argument(
        "--data.path",
        type=Optional[str],
        default=None,
        help="data file of the run's dataset kind (default: the run's own data)",
    )
    em.add_argument(
        "--modalities",
        type=Optional[list[str]],
        default=None,
        help="embed from these modalities only (default: all the model has)",
    )
    em.add_argument("--batch_size", type=int, default=256, help="samples per batch")
    em.add_argument("--device", type=str, default="cpu", help="cpu, cuda, cuda:1, ...")
    em.add_argument(
        "--export",
        type=Optional[str],
        default=None,
        help="instead of embedding: write a torch.export program (.pt2) that embeds without "
        "infmasking installed (inputs in modality order, float, images in [0, 1])",
    )
    sub.add_subcommand("embed", em, help="features of a dataset from a trained run")

    rep = _run_parser(
        "reproduce",
        "Run methods × seeds and write a comparison table (mean ± std, published numbers beside).",
    )
    rep.add_argument(
        "benchmark",
        type=str,
        help="trifeatures | trifeatures_tokens (its preset is read unless --preset / --config)",
    )
    rep.add_argument(
        "--methods", type=list[str], default=["infmasking", "comm", "cross", "cross_self"]
    )
    rep.add_argument("--seeds", type=list[int], default=[0, 1, 2])
    rep.add_argument(
        "--only_finished",
        type=bool,
        default=False,
        help="train nothing: tabulate the finished runs, list the missing ones",
    )
    rep.add_argument(
        "--ru_unbiased",
        type=bool,
        default=True,
        help="redundancy / uniqueness from runs on the unbiased pairs (published protocol); "
        "false: everything from the biased runs (half the runs)",
    )
    rep.add_argument(
        "--reprobe",
        type=bool,
        default=False,
        help="re-probe finished runs from their checkpoints with this command's --eval.* "
        "options (cached as evaluation*.json beside each run) instead of reading their reports",
    )
    rep.add_argument(
        "--controls",
        type=bool,
        default=True,
        help="trifeatures_tokens: the supervised and true-factor ceilings beside the methods",
    )
    sub.add_subcommand("reproduce", rep, help="methods × seeds comparison")

    pid = _run_parser(
        "interactions",
        "How much redundancy, uniqueness and synergy (bits) a task holds: the partial "
        "information decomposition of I(label; modality 1, modality 2) from k-means clusters of "
        "each modality (docs/INTERACTIONS.md). From the raw data (--preset / --config / "
        "--data.*), or with RUN from a trained run's unimodal representations and its fused "
        "probe's predictions. Three or more modalities: every pair.",
    )
    pid.add_argument(
        "run", type=Optional[str], nargs="?", default=None, help="a run folder (optional)"
    )
    pid.add_argument("--task", type=Optional[str], default=None, help="the task to decompose")
    pid.add_argument(
        "--label", type=Optional[int], default=None, help="multilabel tasks: which label"
    )
    pid.add_argument(
        "--clusters",
        type=Optional[int],
        default=None,
        help="clusters per modality (default: clip(floor(sqrt(N / (20 classes))), 2, 20))",
    )
    pid.add_argument("--bootstrap", type=int, default=200, help="resamples for the interval")
    pid.add_argument(
        "--max_samples", type=int, default=10_000, help="at most this many samples (seeded)"
    )
    pid.add_argument("--out", type=Optional[str], default=None, help="write the JSON here")
    pid.add_argument("--overwrite", type=bool, default=False, help="replace an existing --out")
    sub.add_subcommand("interactions", pid, help="redundancy / uniqueness / synergy of a task")
    for p in (parser, *_subcommands(parser).values()):
        _plain_help(p)
    return parser


def _subcommands(parser: ArgumentParser) -> dict[str, ArgumentParser]:
    """Command name -> its parser."""
    action = getattr(parser, "_subcommands_action", None)
    return dict(action.choices) if action is not None else {}


def _plain_help(parser: ArgumentParser) -> None:
    """Option help as a terminal shows it: the docstrings' reStructuredText markup
    (````x````, ``:class:`X```) becomes plain `x` / X."""
    import re

    for action in parser._actions:
        if isinstance(action.help, str):
            h = re.sub(r":(?:class|func|meth|mod|data|attr):`~?([^`]+)`", r"\1", action.help)
            action.help = h.replace("``", "`")


def _closest(word: str, names, prefix: str = "") -> str:
    """`` (did you mean 'x'?)`` for the valid name closest to ``word`` (options compared
    without their dashes; ``prefix`` put before the name said), or ""."""
    import difflib

    bare = {n.lstrip("-"): n for n in names}
    near = difflib.get_close_matches(word.lstrip("-"), list(bare), n=1, cutoff=0.6)
    return f" (did you mean {prefix + bare[near[0]]!r}?)" if near else ""


def one_line_error(message: str, parser: ArgumentParser, command: str | None) -> str:
    """A jsonargparse error message (often several lines: the type, every subtype of a union)
    as one line naming the option, what was expected and what came, with the closest valid
    name for a misspelt choice, command or option."""
    import re

    def closest(word: str, names) -> str:
        return _closest(word, names)

    m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if m:  # an unknown command
        names = re.findall(r"'([^']*)'", m[2])
        return f"unknown command {m[1]!r}{closest(m[1], names)}; commands: {', '.join(names)}"
    m = re.match(r'Parser key "([^"]+)":', message)
    if m:
        key = m[1]
        got = re.search(r"(?:Got value|Given value): (.*)", message)
        got = got[1].strip() if got else "?"
        choices = re.search(r"Literal\[([^\]]*)\]", message)
        if choices:
            names = re.findall(r"'([^']*)'", choices[1])
            return f"--{key}: expected one of {', '.join(names)}; got {got!r}{closest(got, names)}"
        kinds = re.findall(r"Expected a <class '(\w+)'>", message)
        kinds = [k for k in kinds if k != "NoneType"]
        if kinds:
            what = {"int": "an integer", "float": "a number", "bool": "true or false"}
            expected = " or ".join(what.get(k, f"a {k}") for k in dict.fromkeys(kinds))
            return f"--{key}: expected {expected}; got {got!r}"
        first = next(
            (line.strip() for line in message.splitlines()[1:] if line.strip()), "invalid value"
        )
        return f"--{key}: {first}; got {got!r}"
    m = re.match(r"unrecognized arguments: (.*)", message)
    if m:
        target = _subcommands(parser).get(command, parser)
        options = [o for a in target._actions for o in a.option_strings]
        words = m[1].split()
        hint = closest(words[0].split("=", 1)[0], options) if words[0].startswith("--") else ""
        prog = f"infmasking {command}" if command else "infmasking"
        return f"unknown argument(s) {' '.join(words)}{hint}; `{prog} --help` lists the options"
    m = re.match(r"the following arguments are required: (.*)", message)
    if m:
        names = [n.split(".", 1)[-1] for n in m[1].split(", ")]
        usage = f"infmasking {command} {' '.join(n.upper() for n in names)} [options]"
        return f"missing {', '.join(names)}; usage: {usage}"
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


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
            raise SystemExit(
                f"infmasking: unknown preset {name!r}; valid presets: {', '.join(known)}"
            )
        out += ["--config", str(known[name])]
    return out


def _reproduce_preset(argv: list[str]) -> list[str]:
    """``reproduce NAME`` with neither ``--preset`` nor ``--config`` reads the packaged preset
    NAME (the benchmark's own setting); said on stderr, later options still win."""
    given = any(
        a in ("--preset", "--config") or a.startswith(("--preset=", "--config=")) for a in argv
    )
    if len(argv) < 2 or argv[0] != "reproduce" or argv[1] not in presets() or given:
        return argv
    print(
        f"infmasking reproduce: --preset {argv[1]} (no --preset or --config given)", file=sys.stderr
    )
    return [argv[0], argv[1], "--preset", argv[1], *argv[2:]]


#: Options of the commands themselves (not of RunConfig) that a --config file may hold.
_COMMAND_KEYS = (
    "overwrite",
    "benchmark",
    "methods",
    "seeds",
    "only_finished",
    "ru_unbiased",
    "reprobe",
    "controls",
    "config",
    "run",
    "task",
    "label",
    "clusters",
    "bootstrap",
    "max_samples",
    "out",
)


def _check_config_files(argv: list[str]) -> None:
    """Every ``--config FILE`` gets the command line's treatment before parsing: a missing or
    empty file, a key given twice, an unknown key or a wrongly typed value is one line naming
    the file and the key (exit 1), not a usage dump."""
    from infmasking.training.config_files import check_config_file

    for i, a in enumerate(argv):
        path = None
        if a == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
        elif a.startswith("--config="):
            path = a.split("=", 1)[1]
        if path is not None:
            try:
                check_config_file(path, _COMMAND_KEYS)
            except ValueError as e:
                raise SystemExit(f"infmasking: --config {_line(e)}") from None


def _renamed_options(argv: list[str]) -> list[str]:
    """``--data.<key>`` of a key that moved into ``data.trifeatures`` (older scripts) ->
    ``--data.trifeatures.<key>``, said once per option on stderr."""
    from infmasking.training.config_files import MOVED_TO_TRIFEATURES

    out = []
    for a in argv:
        flag, sep, value = a.partition("=")
        if flag.startswith("--data.") and flag[len("--data.") :] in MOVED_TO_TRIFEATURES:
            new = "--data.trifeatures." + flag[len("--data.") :]
            print(f"infmasking: {flag} is now {new}", file=sys.stderr)
            a = new + sep + value
        out.append(a)
    return out


def _check_keys(argv: list[str]) -> None:
    """An unknown ``--section.key`` (or ``--section.sub.key``) is an error listing the valid
    keys of that section."""
    import dataclasses

    def fields_of(obj) -> dict:
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}

    prog = f"infmasking {argv[0]}" if argv and not argv[0].startswith("-") else "infmasking"
    sections = {
        f.name: f.default_factory()
        for f in dataclasses.fields(RunConfig)
        if f.default_factory is not dataclasses.MISSING
    }
    for a in argv:
        if not a.startswith("--") or "." not in a:
            continue
        *path, key = a[2:].split("=", 1)[0].split(".")
        if path[0] not in sections:
            continue
        name, node = ".".join([*path, key]), sections[path[0]]
        for depth, part in enumerate([*path[1:], key], start=1):
            valid = fields_of(node)
            if part not in valid:
                raise SystemExit(
                    f"{prog}: error: unknown option --{name}"
                    f"{_closest(part, valid, '--' + '.'.join(path[:depth]) + '.')}; valid keys of "
                    f"{'.'.join(path[:depth])!r}: " + ", ".join(valid)
                )
            node = valid[part]
            if depth < len(path) and not dataclasses.is_dataclass(node):
                raise SystemExit(
                    f"{prog}: error: unknown option --{name}: "
                    f"{'.'.join(path[: depth + 1])!r} is not a section"
                )


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done, 1 a run cannot start as asked (bad option, data or folder),
    2 an error while running (one line; ``--debug`` or ``INFMASKING_DEBUG=1`` shows the
    traceback), 143 / 130 stopped by SIGTERM / SIGINT (Ctrl-C) after saving a resumable
    checkpoint."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C outside a run's own handler (imports, data, probes)
        prog = f"infmasking {argv[0]}" if argv and not argv[0].startswith("-") else "infmasking"
        print(f"\n{prog}: interrupted (Ctrl-C)", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    import os

    debug = "--debug" in argv or os.environ.get("INFMASKING_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    argv = _renamed_options(_expand_presets(_reproduce_preset(argv)))
    _check_keys(argv)
    _check_config_files(argv)
    parser = build_parser()
    try:
        cfg = parser.parse_args(argv)
    except ArgumentError as e:
        command = argv[0] if argv and argv[0] in _subcommands(parser) else None
        prog = f"infmasking {command}" if command else "infmasking"
        print(f"{prog}: error: {one_line_error(str(e), parser, command)}", file=sys.stderr)
        return 1
    cmd = cfg.command
    if cmd is None:
        parser.print_help()
        return 2
    args = cfg[cmd]
    from infmasking.training.errors import RunError, RunStopped

    try:
        if cmd == "train":
            from infmasking.commands.train import train

            train(_run_config(parser, cfg), overwrite=args.overwrite)
        elif cmd == "evaluate":
            from infmasking.commands.evaluate import evaluate

            evaluate(
                args.run,
                args.out_dir,
                class_weight=args.class_weight,
                probe=args.probe,
                features=args.features,
                num_threads=args.num_threads,
                robust_probe=args.robust_probe,
            )
        elif cmd == "embed":
            from infmasking.commands.embed import embed

            embed(
                args.run,
                args.out,
                data_path=args.data.path,
                modalities=args.modalities,
                batch_size=args.batch_size,
                device=args.device,
                export=args.export,
                overwrite=args.overwrite,
            )
        elif cmd == "reproduce":
            from infmasking.commands.reproduce import reproduce

            for m in args.methods:
                get_objective(m)  # a clear error for an unknown name
            reproduce(
                args.benchmark,
                _run_config(parser, cfg),
                methods=args.methods,
                seeds=args.seeds,
                only_finished=args.only_finished,
                ru_unbiased=args.ru_unbiased,
                reprobe=args.reprobe,
                controls=args.controls,
            )
        elif cmd == "interactions":
            from infmasking.commands.interactions import interactions

            interactions(
                _run_config(parser, cfg),
                args.run,
                task=args.task,
                label=args.label,
                clusters=args.clusters,
                bootstrap=args.bootstrap,
                max_samples=args.max_samples,
                out=args.out,
                overwrite=args.overwrite,
            )
    except RunStopped as e:
        return e.exit_code
    except (RunError, ValueError, FileNotFoundError) as e:
        if debug:
            raise
        print(f"infmasking {cmd}: error: {_line(e)}", file=sys.stderr)
        return 1
    except Exception as e:
        if debug:
            raise
        print(
            f"infmasking {cmd}: error: {_line(_describe(e))} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 2
    return 0


def _line(message: object, limit: int = 600) -> str:
    """An error message as one line of at most ``limit`` characters: a refusal stays one line
    however long, or however many lines, the bad value it quotes."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(text)} characters)"


def _describe(e: BaseException) -> str:
    """One line naming what went wrong, for the errors users meet most."""
    import zipfile

    from infmasking.files import NoSpaceError

    name = type(e).__name__
    if isinstance(e, NoSpaceError):  # names the file, "no space left"
        return str(e)
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


def _run_config(parser: ArgumentParser, cfg) -> RunConfig:
    """The RunConfig of a parsed ``train`` / ``reproduce`` command (jsonargparse builds the
    section dataclasses; the command's own options are left out)."""
    init = parser.instantiate(cfg)[cfg.command]
    return RunConfig(**{k: getattr(init, k) for k in RunConfig.__dataclass_fields__})


if __name__ == "__main__":
    raise SystemExit(main())
