"""The ``jetcloud`` command: check input files, train a model, run the notebooks.

::

    jetcloud check FILE [FILE ...]           # MLTree ROOT (EventTree / CellGeo) or E2E HDF5: the notebooks' checks
    jetcloud train qg --model mlp --epochs 1 # notebook 08's training (presets, run directory), no notebook
    jetcloud train atlas --model pointnet    # notebook 03's training
    jetcloud run --profile smoke --only 00   # run_all.sh with these arguments

``train`` runs under ``torchrun`` as it is (``torchrun --nproc_per_node 2 -m jetcloud.cli train qg ...``):
:func:`jetcloud.train.fit` sets up DDP from the environment, and only rank 0 writes and prints.

Exit status: 0 success; 1 a file failed its check, or the data / run directory is wrong (the message names the
file and the problem); 2 a usage error (argparse). This module is the one front door that imports both workflows
(lazily, inside the commands; tests/test_import_rules.py allows it and nothing else); ``import jetcloud.cli`` and
``--help`` import neither torch nor the workflows.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "build_parser", "file_kind", "find_checkout"]

PROG = "jetcloud"
DEVICES = ("auto", "cpu", "cuda")
PROFILES = ("smoke", "demo", "full")
#: Notebook 03's parameter defaults, used where ``jetcloud train atlas`` is not given a value.
ATLAS_DEFAULTS = {"epochs": 1, "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-4}
_ROOT_MAGIC = b"root"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class CommandError(Exception):
    """A problem the user can fix (bad file, missing data, not in a checkout): printed without a traceback."""


# --------------------------------------------------------------------------------------------------------------
# check
# --------------------------------------------------------------------------------------------------------------


def file_kind(path: str | os.PathLike) -> str:
    """``"root"`` or ``"hdf5"`` from the file's first bytes; raises :class:`CommandError` naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(_ROOT_MAGIC):
        return "root"
    if head == _HDF5_MAGIC:
        return "hdf5"
    import h5py  # an HDF5 file may start with a user block; h5py finds the signature further in

    if h5py.is_hdf5(path):
        return "hdf5"
    raise CommandError(
        f"{path}: neither a ROOT file (MLTree) nor an HDF5 file (E2E): it starts with {head[:8]!r}"
        + (" and is empty" if not head else "")
    )


def _check_one(path: str, args: argparse.Namespace) -> str:
    """The summary line of one file; raises on a bad file."""
    kind = file_kind(path)
    if kind == "root":
        from jetcloud.atlas.runner import check_mltree

        return check_mltree(path, all_branches=args.all_branches, invariants=args.invariants, geometry=args.geometry)
    from jetcloud.qg.runner import check_e2e

    return check_e2e(path)


def _cmd_check(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        try:
            print(_check_one(path, args), flush=True)
        except (CommandError, OSError, ValueError, KeyError) as err:
            message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
            if path not in message:
                message = f"{path}: {message}"
            print(f"{PROG} check: FAILED {message}", file=sys.stderr, flush=True)
            failed += 1
    if len(args.files) > 1:
        print(f"{len(args.files) - failed} of {len(args.files)} files OK", file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0


# --------------------------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------------------------


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _train_settings(args: argparse.Namespace) -> dict[str, object]:
    """The ``TrainConfig`` overrides shared by both workflows (None: the preset's)."""
    return {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "device": args.device,
        "max_steps_per_epoch": args.max_steps_per_epoch,
        "progress": sys.stderr.isatty() and _rank() == 0,
    }


def _train_qg(args: argparse.Namespace) -> str:
    from jetcloud.qg.runner import train_run

    run = train_run(
        args.profile,
        args.model or "mlp",
        data=args.data,
        out=args.out,
        tag=args.tag,
        k=args.k,
        particle_level=args.particle_level,
        val_fraction=args.val_fraction,
        seed=args.seed,
        resume=not args.no_resume,
        **_train_settings(args),
    )
    s = run.summary or {}
    return (
        f"{run.out_dir.name}: {run.result.epochs_done} epochs, best epoch {run.result.best_epoch}; test AUC "
        f"{s.get('auc', float('nan')):.4f}, accuracy {s.get('accuracy', float('nan')):.3f}, Rej50 {s.get('rej50')}, "
        f"Rej30 {s.get('rej30')} ({s.get('n')} jets) -> {run.out_dir}"
    )


def _train_atlas(args: argparse.Namespace) -> str:
    from jetcloud.atlas.runner import train_run

    settings = {**_train_settings(args), "weight_decay": args.weight_decay, "patience": args.patience}
    settings.update({k: v for k, v in ATLAS_DEFAULTS.items() if settings.get(k) is None})
    run = train_run(
        args.profile,
        args.model or "pointnet",
        data=args.data,
        out=args.out,
        preset=args.preset,
        size_factor=args.size_factor,
        target=args.target,
        loss=args.loss,
        seed=args.seed,
        resume=not args.no_resume,
        **settings,
    )
    return (
        f"{args.model or 'pointnet'}: {run.result.epochs_done} epochs, best epoch {run.result.best_epoch} "
        f"(val loss {run.result.best_val_loss:.4g}) -> {run.out_dir}"
    )


def _cmd_train(args: argparse.Namespace) -> int:
    runner = _train_qg if args.workflow == "qg" else _train_atlas
    try:
        line = runner(args)
    except (FileNotFoundError, NotADirectoryError, ValueError, KeyError) as err:
        message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        print(f"{PROG} train {args.workflow}: error: {message}", file=sys.stderr, flush=True)
        return 1
    if _rank() == 0:
        print(line, flush=True)
    return 0


# --------------------------------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------------------------------


def _is_checkout(directory: Path) -> bool:
    return (directory / "run_all.sh").is_file() and (directory / "lib" / "jetcloud").is_dir()


def find_checkout(start: str | os.PathLike | None = None, *, package_fallback: bool = True) -> Path:
    """The repository checkout holding ``start`` (default: the working directory) or, failing that (and with
    ``package_fallback``), the one this package is imported from (an editable install).

    Raises :class:`CommandError` when neither is inside a checkout (a non-editable install from a wheel).
    """
    here = Path(start or os.getcwd()).resolve()
    package = Path(__file__).resolve().parents if package_fallback else ()
    for directory in (here, *here.parents, *package):
        if _is_checkout(directory):
            return directory
    raise CommandError(
        f"not inside a jetcloud repository checkout (no run_all.sh and lib/jetcloud above {here}, nor above the "
        f"installed package {Path(__file__).resolve().parent}); `jetcloud run` executes the notebooks of a "
        "checkout: clone the repository and run it there"
    )


def _run_all_args(args: argparse.Namespace) -> list[str]:
    out = ["--profile", args.profile]
    if args.only:
        out += ["--only", *args.only]
    if args.from_nb:
        out += ["--from", args.from_nb]
    if args.dry_run:
        out.append("--dry-run")
    return out


def _cmd_run(args: argparse.Namespace) -> int:
    root = find_checkout()
    script = root / "run_all.sh"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp("bash", ["bash", str(script), *_run_all_args(args)])  # replaces this process; never returns
    return 0  # pragma: no cover


# --------------------------------------------------------------------------------------------------------------
# the parser
# --------------------------------------------------------------------------------------------------------------


def _two_digits(value: str) -> str:
    if len(value) != 2 or not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected a two-digit notebook number such as 03, got {value!r}")
    return value


def _add_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="check MLTree ROOT and E2E HDF5 files against their schemas",
        description="Detect each FILE's format (MLTree ROOT: EventTree / CellGeo, TTree or RNTuple; E2E HDF5) and "
        "run the schema / layout checks of the notebooks. Prints one summary line per good file; for a bad file "
        "the file and the problem. Exit status 0 when every file is good, 1 otherwise, 2 for usage errors.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="MLTree .root or E2E .h5 files")
    p.add_argument(
        "--all-branches",
        action="store_true",
        help="MLTree: require all 120 EventTree branches (notebook 00), not only the 49 JetPointNet reads",
    )
    p.add_argument("--invariants", action="store_true", help="MLTree: also read every event and check I1-I12")
    p.add_argument("--geometry", metavar="FILE", help="MLTree: CellGeo file for invariant I9 (--invariants)")
    p.set_defaults(func=_cmd_check)


def _add_common_train(p: argparse.ArgumentParser, default_model: str, models: str) -> None:
    p.add_argument("--model", default=None, help=f"{models} (default: {default_model})")
    p.add_argument("--profile", choices=PROFILES, default="demo", help="default data and run directories (demo)")
    p.add_argument("--data", metavar="DIR", help="input directory (default: data/processed/<profile>/<workflow>)")
    p.add_argument("--out", metavar="DIR", help="run directory (default: the notebook's, under build/<profile>)")
    p.add_argument("--epochs", type=int, help="training epochs (a resumed run continues up to this number)")
    p.add_argument("--batch-size", type=int, help="samples per step, per process under torchrun")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--seed", type=int, default=0, help="seeds numpy, torch and the shuffling (default: 0)")
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto: CUDA when available (default)")
    p.add_argument("--max-steps-per-epoch", type=int, help="cap on the training steps per epoch (default: none)")
    p.add_argument("--no-resume", action="store_true", help="start over instead of resuming from last.pt")


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model on existing point clouds (notebook 03 or 08, without the notebook)",
        description="Train with the presets and run directories of notebooks 03 (atlas) and 08 (qg). Under "
        "torchrun (torchrun --nproc_per_node N -m jetcloud.cli train ...) it trains with DDP; only rank 0 writes.",
    )
    wf = p.add_subparsers(dest="workflow", metavar="{atlas,qg}", required=True)
    qg = wf.add_parser(
        "qg",
        help="a quark/gluon classifier on the QG{K}.h5 files of notebook 07",
        description="Notebook 08: train, reload best.pt, write scores_{val,test}.npz and record.json into "
        "build/<profile>/runs/qg/<model>@<tag> (notebook 09 compares it). "
        "Numbers not given (epochs, batch size, lr) come from the model's preset (jetcloud/presets/qg.yaml).",
    )
    _add_common_train(qg, "mlp", "a model of jetcloud/presets/qg.yaml: mlp, pfn, resnet_pc_256_s, particlenet, ...")
    qg.add_argument("--tag", default="", help="run directory tag (default: the seed and the settings changed)")
    qg.add_argument("--k", type=int, default=0, help="points per jet (default 0: from the model name)")
    qg.add_argument("--particle-level", action="store_true", help="train on the particle-level set of notebook 06")
    qg.add_argument("--val-fraction", type=float, default=0.1, help="training jets held out for validation (0.1)")
    atlas = wf.add_parser(
        "atlas",
        help="JetPointNet on the point clouds of notebook 02",
        description="Notebook 03: write run.json and train (last.pt, best.pt, history.csv) for notebook 04. Numbers "
        f"not given are notebook 03's defaults {ATLAS_DEFAULTS} over the preset (jetcloud/presets/atlas.yaml).",
    )
    _add_common_train(atlas, "pointnet", "pointnet or pointnet_attention (the track-conditioned ones: notebook 03)")
    atlas.add_argument(
        "--preset",
        default="",
        help="a preset of jetcloud/presets/atlas.yaml (default: the PointNets'; report: the original)",
    )
    atlas.add_argument("--size-factor", type=float, default=0.25, help="width of the point-wise layers (0.25)")
    atlas.add_argument("--target", default="focus_labels", help="focus_labels (default) or tot_labels")
    atlas.add_argument("--loss", default="mse", choices=("mse", "mae", "huber"), help="masked loss (mse)")
    atlas.add_argument("--weight-decay", type=float, help="AdamW weight decay (default 1e-4)")
    atlas.add_argument("--patience", type=int, help="early stopping after this many epochs without improvement")
    p.set_defaults(func=_cmd_train)


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run the notebooks of a profile (run_all.sh)",
        description="Execute run_all.sh of the repository checkout (the working directory's, else the one this "
        "package is installed from) with these arguments: papermill runs every notebook in order.",
    )
    p.add_argument("--profile", choices=PROFILES, default="demo", help="smoke, demo (default) or full")
    p.add_argument("--only", nargs="+", type=_two_digits, metavar="NN", help="only these notebooks, e.g. 00 02")
    p.add_argument("--from", dest="from_nb", type=_two_digits, metavar="NN", help="notebook NN and every later one")
    p.add_argument("-n", "--dry-run", action="store_true", help="print the papermill commands, run nothing")
    p.set_defaults(func=_cmd_run)


def build_parser() -> argparse.ArgumentParser:
    """The ``jetcloud`` argument parser (subcommands check, train, run)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="jetcloud: check input files, train a model, run the notebooks. "
        "`jetcloud COMMAND --help` describes each command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{check,train,run}", required=True)
    _add_check(sub)
    _add_train(sub)
    _add_run(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jetcloud`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CommandError as err:
        print(f"{PROG} {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
