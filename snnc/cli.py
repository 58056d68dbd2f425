"""The `snnc` command: check, compile, inspect, train and evaluate `.snn` networks.

The CLI is the only place that prints diagnostics and decides exit codes:
0 success, 1 user error (a diagnostic), 2 usage error (argparse), 3 internal error (a bug in snnc).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from snnc import __version__
from snnc.backends import NAMES as BACKENDS
from snnc.ir.diagnostics import Diagnostic, DiagnosticError, render

EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
#: where `snnc compile --emit c|genn` writes without -o (it says so), and the --print-after file with -o
DEFAULT_EMIT_DIR = "snnc-out"
PRINT_AFTER_FILE = "print-after.txt"
BUG_URL = "https://github.com/snnc/snnc/issues"

EPILOG = """examples:
  snnc check examples/*.snn
  snnc compile examples/yinyang_eventprop.snn --emit ir
  snnc compile examples/yinyang_eventprop.snn --inference --emit kernel
  snnc compile examples/yinyang_eventprop.snn --print-after all --timings
  snnc compile examples/yinyang_eventprop.snn --emit c -o build/yinyang
  snnc train examples/yinyang_eventprop.snn --epochs 5 --out runs/yinyang
  snnc evaluate examples/yinyang_eventprop.snn --checkpoint runs/yinyang
  snnc plot runs/yinyang
"""


LOG_JSON_EPILOG = """--log-json FILE writes one JSON object per line, flushed as it happens:
  {"event": "start", "network", "out", "epochs", "start_epoch", "seed", "resumed_from", ...}
  {"event": "epoch", "epoch": 0, "epochs", "train": {"loss", "accuracy"}, "validation": {...} | null,
   "seconds", "lr", "checkpoint"}                    (epochs count from 0, as in metrics.json)
  {"event": "test", "test": {"loss", "accuracy", "examples"}}
  {"event": "done", "out", "metrics", "checkpoint", "plots", "seconds"}
  {"event": "error", "code", "message", "hint"} or {"event": "interrupted"} when a run stops early.
With FILE '-' stdout carries only these records and the human-readable lines go to stderr; a FILE is
overwritten, or appended to with --resume. NaN and Inf appear as null.
"""
EVALUATE_LOG_JSON_EPILOG = """--log-json FILE ('-': stdout, the summary then goes to stderr) writes JSON Lines:
  {"event": "test", "test": {"loss", "accuracy", "examples"}, "checkpoint", "epoch"}
  {"event": "done", "checkpoint"}, or {"event": "error", "code", "message", "hint"}.
"""


class UsageError(Exception):
    """A bad combination of command-line arguments (exit 2)."""


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


class SourceCache(dict):
    """Maps file paths to their text, read lazily so diagnostics in used files show their lines."""

    def __missing__(self, path: str) -> str:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        self[path] = text
        return text

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and (dict.__contains__(self, path) or Path(path).is_file())


def print_diagnostics(diagnostics: Iterable[Diagnostic], stream=None) -> int:
    """Print diagnostics, errors last-line counted; returns the number of errors."""
    stream = stream or sys.stderr
    sources = SourceCache()
    errors = 0
    for d in diagnostics:
        stream.write(render(d, sources) + "\n")
        errors += d.severity == "error"
    if errors:
        stream.write(f"{errors} error{'s' if errors != 1 else ''} generated.\n")
    return errors


# --------------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    from snnc.frontend import check_file

    failed = 0
    for path in args.files:
        diagnostics = check_file(path)
        if not any(d.severity == "error" for d in diagnostics):
            diagnostics = [*diagnostics, *_pass_diagnostics(path, args.backend)]
        if print_diagnostics(diagnostics):
            failed += 1
        elif not args.quiet:
            print(f"{path}: ok")
    return EXIT_USER if failed else EXIT_OK


def _pass_diagnostics(path: str, backend: str) -> list[Diagnostic]:
    """Run the passes too (discretise, gradient derivation), then ask the backend: a model they cannot
    handle is an error that `check` should report, not one that waits for `train`."""
    from snnc.backends import check_supported
    from snnc.frontend import load_file
    from snnc.passes.pipeline import compile_ir

    try:
        network, _ = compile_ir(load_file(path))
    except DiagnosticError as exc:
        return exc.diagnostics
    return check_supported(network, backend)


def _load(path: str, overrides: dict | None = None):
    from snnc.frontend import load_file

    network = load_file(path)
    if overrides:
        from dataclasses import replace

        network = replace(network, **overrides)
    return network


def cmd_compile(args: argparse.Namespace) -> int:
    import time

    if args.emit in ("ast", "snn"):
        from snnc.frontend.parser import parse_file

        module = parse_file(args.file)
        if args.emit == "ast":
            _write_output(args, "ast.txt", _format_ast(module))
        else:
            from snnc.frontend.format import format_module

            _write_output(args, "formatted.snn", format_module(module))
        return EXIT_OK

    if args.output and args.emit is None and not args.print_after:
        from snnc.cache import cache_dir

        raise UsageError(
            "-o names where --emit or --print-after output goes; without them snnc compile builds into "
            f"the cache ({cache_dir()}) and prints the path: add --emit c (or genn) to write the source"
        )
    stages: list[tuple[str, float]] = []
    start = time.perf_counter()
    key = _cache_key(args) if args.emit is None and not args.print_after else None
    if key is not None:
        from snnc import compile_cache

        entry = compile_cache.lookup(key, arrays=False)
        if entry is not None:  # the frontend and the passes are read back, the library reused
            stages.append(("frontend (compile cache)", time.perf_counter() - start))
            stages.append((f"backend {args.backend} (cached)", 0.0))
            if not args.quiet:
                print(f"{args.file}: built {entry.built.path}")
            if args.timings:
                _print_timings(stages)
            return EXIT_OK
    from snnc.ir.printer import print_network
    from snnc.passes.manager import UnknownPassError
    from snnc.passes.pipeline import compile_ir
    from snnc.paths import output_error

    network = _load(args.file)
    if args.emit not in ("ir", "kernel"):  # the IR of a file of models only is still worth a look
        from snnc.api import require_network

        require_network(network)
    stages.append(("frontend", time.perf_counter() - start))
    print_after = frozenset(args.print_after or ())
    # with -o the IR dumps go where -o says, like everything else the command would print
    dumps = io.StringIO() if args.output and print_after else sys.stdout
    try:
        network, manager = compile_ir(
            network, print_after=print_after, out=dumps, gradients=not args.inference
        )
    except UnknownPassError as exc:
        raise UsageError(str(exc)) from None
    dumped = dumps.getvalue() if isinstance(dumps, io.StringIO) else ""
    stages += [(f"  {t.name}", t.seconds) for t in manager.timings]
    if args.emit == "ir":
        _write_output(args, "ir.txt", print_network(network), dumped)
    elif args.emit == "kernel":
        from snnc.api import kernel
        from snnc.ir.kernel import kernel_to_text

        _write_output(args, "kernel.txt", kernel_to_text(kernel(network)), dumped)
    elif args.emit is not None:
        from snnc.api import emit

        out = Path(args.output or DEFAULT_EMIT_DIR)
        try:
            written = emit(network, out, backend=args.emit)
        except OSError as e:
            raise output_error(f"the {args.emit} code into", str(out), e) from None
        print("".join(f"wrote {path}\n" for path in written), end="")
        if dumped:
            _write_output(args, PRINT_AFTER_FILE, dumped)
        if not args.output:
            sys.stderr.write(
                f"snnc: no -o given, so the {args.emit} code went to {out.resolve()} (-o DIR chooses)\n"
            )
    elif dumped:
        _write_output(args, PRINT_AFTER_FILE, dumped)
    if args.emit is None:
        from snnc.api import check_backend
        from snnc.backends import get_backend

        backend = get_backend(args.backend)
        check_backend(network, args.backend)
        begin = time.perf_counter()
        built = backend.build(network)
        if key is not None:
            from snnc import compile_cache

            compile_cache.store(key, network, built)
        state = "cached" if built.cached else "compiled"
        stages.append((f"backend {args.backend} ({state})", time.perf_counter() - begin))
        if not args.quiet:
            print(f"{args.file}: built {built.path}")
    if args.timings:
        _print_timings(stages)
    return EXIT_OK


def _cache_key(args: argparse.Namespace) -> str | None:
    """The compile cache's key of a plain `snnc compile FILE` (the entry `snnc train` and
    `snnc.compile` share), or None when the backend keeps no such entries."""
    from snnc import compile_cache
    from snnc.api import BUILD_DEFAULTS
    from snnc.backends import get_backend

    path = Path(args.file)
    if not path.is_file() or not getattr(get_backend(args.backend), "cacheable", False):
        return None
    return compile_cache.key(path, args.backend, {**BUILD_DEFAULTS, "gradients": not args.inference})


def _print_timings(stages: list[tuple[str, float]]) -> None:
    """`--timings`: each stage in ms; indented lines are passes, counted once in the total."""
    total = sum(sec for _, sec in stages)
    lines = [f"{'stage':<24} {'ms':>10}"]
    lines += [f"{name:<24} {sec * 1e3:>10.2f}" for name, sec in stages]
    lines.append(f"{'total':<24} {total * 1e3:>10.2f}")
    sys.stderr.write("\n".join(lines) + "\n")


def _format_ast(module) -> str:
    import pprint

    return pprint.pformat(module, width=110, sort_dicts=False) + "\n"


def _write_output(args: argparse.Namespace, default_name: str, text: str, dumped: str = "") -> None:
    """`text` to stdout, or to -o: a file, or a folder (a path without suffix) holding `default_name`.
    `dumped` (the --print-after dumps) goes first into the file, or beside it as print-after.txt."""
    from snnc.paths import output_error, refuse_overwriting_inputs

    if not args.output:
        sys.stdout.write(text)
        return
    out = Path(args.output)
    target = out / default_name if out.suffix == "" or out.is_dir() else out
    refuse_overwriting_inputs("the output", target, (args.file,))
    try:
        if out.suffix == "" or out.is_dir():  # a directory
            out.mkdir(parents=True, exist_ok=True)
            if dumped and default_name != PRINT_AFTER_FILE:
                (out / PRINT_AFTER_FILE).write_text(dumped, encoding="utf-8")
                print(f"wrote {out / PRINT_AFTER_FILE}")
            out = out / default_name
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            text = dumped + text
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        raise output_error("the output", str(out), e) from None
    print(f"wrote {out}")


def _session_options(args: argparse.Namespace):
    """The session's `RunOptions` from the train/evaluate arguments."""
    from snnc.train import RunOptions

    return RunOptions(
        epochs=getattr(args, "epochs", None),
        batch_size=getattr(args, "batch_size", None),
        seed=getattr(args, "seed", None),
        out=getattr(args, "out", None),
        data_dir=getattr(args, "data_dir", None),
        quiet=bool(getattr(args, "quiet", False)),
        resume=bool(getattr(args, "resume", False)),
        validation_split=getattr(args, "validation_split", None),
        checkpoint=getattr(args, "checkpoint", None),
        backend=getattr(args, "backend", "c") or "c",
        log_json=getattr(args, "log_json", None),
        plot=bool(getattr(args, "plot", False)),
        threads=getattr(args, "threads", None),
        no_checkpoint=bool(getattr(args, "no_checkpoint", False)),
    )


def cmd_train(args: argparse.Namespace) -> int:
    from snnc.train import run_train

    run_train(args.file, _session_options(args))
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from snnc.train import run_evaluate

    run_evaluate(args.file, _session_options(args))
    return EXIT_OK


# --------------------------------------------------------------------------------------------------
# Argument parsing
# --------------------------------------------------------------------------------------------------


def cmd_import(args: argparse.Namespace) -> int:
    from snnc.interop import import_nir

    imported = import_nir(args.file, args.output, spike_step=args.spike_step, train_bias=args.train_bias)
    print(imported.table())
    for written in imported.paths:
        print(f"wrote {written}")
    return EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    from snnc.conversion import convert_onnx

    converted = convert_onnx(
        args.file,
        args.output,
        method=args.method,
        data=args.data,
        timesteps=args.timesteps,
        percentile=args.percentile,
        coding=args.coding,
        steps_per_layer=args.steps_per_layer,
    )
    print(converted.table())
    for written in converted.paths:
        print(f"wrote {written}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from snnc.interop import export_nir

    print(f"wrote {export_nir(args.file, args.output, args.checkpoint)}")
    return EXIT_OK


def cmd_plot(args: argparse.Namespace) -> int:
    from snnc.paths import output_error
    from snnc.runtime.plot import plot_run

    out = args.output or os.path.join(args.dir, "plots")
    try:
        written = plot_run(args.dir, args.output)
    except OSError as e:  # the folder or a PNG cannot be created there (reading errors are PlotErrors)
        raise output_error("the plots into", str(e.filename or out), e) from None
    for path in written:
        print(f"wrote {path}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snnc",
        description="snnc: compile and train spiking neural networks written in .snn files.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"snnc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("check", help="parse and check .snn files, report every error")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--backend",
        default="c",
        choices=BACKENDS,
        help="also report what this backend cannot run (default c)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing for files without errors")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "compile", help="compile a .snn file; inspect the AST, canonical source, IR or generated code"
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--emit",
        choices=["ast", "snn", "ir", "kernel", *BACKENDS],
        help="write this stage instead of building (kernel: the kernel IR the backends print)",
    )
    p.add_argument(
        "--print-after",
        action="append",
        metavar="PASS",
        help="print the IR after this pass (repeatable; 'all' for every pass)",
    )
    p.add_argument("--timings", action="store_true", help="print the time each pass and the build took")
    p.add_argument("--backend", default="c", choices=BACKENDS)
    p.add_argument("--inference", action="store_true", help="compile for simulation only: no gradient pass")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="output file or directory of --emit (default: stdout; for c and genn ./snnc-out) and of "
        "--print-after (into the file, or DIR/print-after.txt)",
    )
    p.set_defaults(func=cmd_compile)

    for name, helptext, func in (
        ("train", "train the network with its train block", cmd_train),
        ("evaluate", "evaluate a trained network on its test data", cmd_evaluate),
    ):
        p = sub.add_parser(
            name,
            help=helptext,
            epilog=LOG_JSON_EPILOG if name == "train" else EVALUATE_LOG_JSON_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("file", metavar="FILE")
        p.add_argument("--backend", default="c", choices=BACKENDS)
        p.add_argument("--epochs", type=int, help="override the train block's epochs")
        p.add_argument("--batch-size", type=int, help="override the train block's batch size")
        p.add_argument("--seed", type=int, help="override the train block's seed")
        p.add_argument("--out", default=None, metavar="DIR", help="output folder (metrics.json, checkpoints)")
        p.add_argument("--data-dir", default=None, metavar="DIR", help="where dataset files live")
        p.add_argument("--checkpoint", default=None, metavar="PATH", help="checkpoint file or folder")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.add_argument(
            "--threads",
            type=int,
            metavar="N",
            help="threads of the C backend per batch (default: one per core, or $OMP_NUM_THREADS; never more than the batch size)",
        )
        p.add_argument(
            "--log-json",
            metavar="FILE",
            help="also write progress as JSON Lines to FILE ('-': stdout, and the summary goes to stderr)",
        )
        if name == "evaluate":
            p.add_argument(
                "--no-checkpoint",
                action="store_true",
                help="evaluate the weights the .snn file itself gives (a converted or imported network)",
            )
        if name == "train":
            p.add_argument(
                "--resume", action="store_true", help="continue from the latest checkpoint in --out"
            )
            p.add_argument(
                "--plot",
                action="store_true",
                help="draw the training curves into DIR/plots at the end (snnc plot)",
            )
            p.add_argument(
                "--validation-split",
                type=float,
                metavar="F",
                help="hold out this fraction of the training data for validation",
            )
        p.set_defaults(func=func)
    p = sub.add_parser("import", help="turn a NIR graph into a .snn file with .npy weights")
    p.add_argument("file", metavar="FILE.nir")
    p.add_argument("-o", "--output", metavar="FILE.snn")
    p.add_argument(
        "--spike-step",
        type=float,
        default=None,
        metavar="SECONDS",
        help="read spikes as pulses one exporter step wide, as discrete-time libraries mean them "
        "(snnTorch: 1e-4, Norse: its dt) instead of NIR's Dirac pulses",
    )
    p.add_argument(
        "--train-bias",
        action="store_true",
        help="write Affine/Conv2d biases as bias = Trainable(File(...)), trained by EventProp with the weights",
    )
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "convert", help="turn a trained ANN (ONNX) into a rate-coded spiking .snn network with .npy weights"
    )
    p.add_argument("file", metavar="MODEL.onnx")
    p.add_argument("-o", "--output", metavar="FILE.snn")
    p.add_argument(
        "--method",
        default="data_norm",
        choices=["simple", "data_norm", "spike_norm", "few_spike"],
        help="threshold balancing (default data_norm; data_norm and spike_norm need --data)",
    )
    p.add_argument(
        "--data", metavar="CALIB.npz", help="calibration (and test) data: arrays x, y [, test_x, test_y]"
    )
    p.add_argument(
        "--timesteps", type=int, default=100, metavar="N", help="simulated steps per example (dt 1 ms)"
    )
    p.add_argument(
        "--percentile", type=float, default=99.9, metavar="P", help="data_norm's activation percentile (99.9)"
    )
    p.add_argument(
        "--coding",
        default="regular",
        choices=["regular", "poisson"],
        help="input rate coding: regular (constant current) or poisson (default regular)",
    )
    p.add_argument(
        "--steps-per-layer",
        type=int,
        default=8,
        metavar="K",
        help="few_spike: steps (binary digits) each layer sends its activations in (default 8)",
    )
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("export", help="write a .snn network (and trained weights) as a NIR graph")
    p.add_argument("file", metavar="FILE.snn")
    p.add_argument("-o", "--output", metavar="FILE.nir")
    p.add_argument("--checkpoint", default=None, metavar="PATH", help="checkpoint file or folder")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "plot",
        help="draw training curves (metrics.json), spike rasters (*.npz recordings) and sweeps (*.sweep.json) as PNGs",
    )
    p.add_argument("dir", metavar="DIR", help="a training output folder (snnc train --out)")
    p.add_argument("-o", "--output", metavar="DIR", help="where the PNGs go (default DIR/plots)")
    p.set_defaults(func=cmd_plot)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    code = run_guarded(args.func, args)
    _stop_others(code)
    if argv is None and args.command in ENDS_AT_ONCE:
        _end_now(code)
    return code


#: commands that, run as the program (not `main([...])` in a process that goes on), leave nothing to
#: tear down: every file they write is closed when they return
ENDS_AT_ONCE = frozenset({"compile", "check"})


def _end_now(code: int) -> None:
    """End the process without Python's teardown, once the output is flushed. The teardown frees
    every object one by one, sympy's expression caches included, after the work is done: 0.1-0.25 s
    of a cold `snnc compile` (2-core machine), longer than its passes. If the output cannot be
    flushed (a closed pipe), Python's own exit reports it as usual."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code)


def _stop_others(code: int) -> None:
    """Under MPI, one rank's failure must not leave the others waiting. Only a command that imported
    the runtime's MPI module can have joined a world: the others (a cached `snnc compile`, `check`)
    do not import it, nor numpy with it."""
    distributed = sys.modules.get("snnc.runtime.distributed")
    if distributed is not None:
        distributed.stop_others(code)


def _out_of_memory(exc: MemoryError, args: argparse.Namespace) -> Diagnostic:
    path = getattr(args, "file", None)
    return Diagnostic(
        "E-MEMORY",
        f"out of memory{f' for {path}' if path else ''}: {exc or 'an allocation failed'}",
        getattr(exc, "span", None),  # the population or connection of the largest array (too_large.py)
        "the network asks for more memory than this machine has: look at population sizes, "
        "eventprop(max_spikes), delays, batch_size and duration / dt",
    )


def run_guarded(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command; diagnostics become exit 1, bugs a one-line internal error (exit 3)."""
    try:
        return func(args)
    except DiagnosticError as exc:
        print_diagnostics(exc.diagnostics)
        return EXIT_USER
    except UsageError as exc:
        sys.stderr.write(f"snnc: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("snnc: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except MemoryError as exc:  # a size the input asks for, not a bug: say which sizes matter
        print_diagnostics([_out_of_memory(exc, args)])
        return EXIT_USER
    except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into a message
        if os.environ.get("SNNC_DEBUG"):
            raise
        sys.stderr.write(
            f"snnc: internal error: {type(exc).__name__}: {exc} "
            f"(this is a bug in snnc; please report it at {BUG_URL}; set SNNC_DEBUG=1 for a traceback)\n"
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
