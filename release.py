"""Release the built models: list their versions, promote one, roll back, score one in shadow.

    python release.py list [NAME]              every kept version: live, shadow, candidate, figures, the gate
    python release.py promote NAME VERSION     make VERSION (a `model_version`, as answers carry) live
    python release.py rollback NAME            make the version live before the live one live again
    python release.py shadow NAME VERSION      score every text with VERSION too, beside the live one
    python release.py shadow NAME --off        stop scoring in shadow
    python release.py compare NAME             the shadow's agreement with the live answers, and both
                                               versions' accuracy on the texts that got feedback
    python release.py history [NAME]           the release history: when, which model, from, to, why
    python release.py add NAME FILE --data CSV [--target COLUMN] [--route /PATH]
                                               serve a pipeline trained elsewhere (a skops, pickle or
                                               joblib file, read without running it) as a version of NAME

A thin command line over `artifacts`, which owns the versions, the links, the lock and the history: each
command is one verified, atomic link switch taken in turn with builds, and written to the history.
Running servers follow the links by themselves within MODEL_POLL_SECONDS (and on SIGHUP). The model
folder is MODEL_DIR's and the prediction log PREDICTION_LOG's, as the service's (`--model-dir` and
`compare --log` to choose others).
"""
import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

import kinds
import util
from monitor import window_seconds
from serving import config, log_reads, log_schema
from store import artifacts, releases

FOLLOW = "Running servers switch within MODEL_POLL_SECONDS (default 2 s), or at once on SIGHUP."


def version_rows(model_dir, name):
    """One dict per kept version of `name`, oldest first: what `list` shows."""
    live, shadow = releases.live_folder(model_dir, name), releases.shadow_folder(model_dir, name)
    rows = []
    for folder in releases.version_folders(model_dir, name):
        try:
            manifest = artifacts.read_manifest(folder)
            metrics = json.loads((folder / artifacts.METRICS_FILE).read_bytes())
            figures = kinds.kind_of(manifest, folder).GATE_FIGURES  # unknown kind: ModelError, as unreadable
        except (artifacts.ModelError, OSError, ValueError) as exc:
            rows.append({"version": folder.name, "state": "unreadable", "note": str(exc)})
            continue
        release = manifest.get("release", {})
        state = "live" if folder.resolve() == live else "shadow" if folder.resolve() == shadow else \
            "candidate" if release.get("live") is False else ""
        data = manifest["training_data"]
        rows.append({
            "version": artifacts.model_version(manifest), "state": state,
            "created": datetime.fromisoformat(manifest["created_at"]).strftime("%Y-%m-%d %H:%M"),
            "data": f"{data.get('name', '?')} ({data.get('rows_used', '?')} rows)",
            "figures": {key: metrics.get(key, float("nan")) for key in figures},
            "gate": ("promoted over the gate: " if release.get("promoted_over_gate") else "")
                    + release.get("gate", {}).get("why", "built before the gate"),
        })
    return rows


def show_list(model_dir, names):
    """Print every kept version of each model."""
    for name in names:
        rows = version_rows(model_dir, name)
        # The figures the model's kind is gated on: accuracy and macro F1 for a text model, MAE for a regressor.
        keys = next((list(row["figures"]) for row in rows if "figures" in row), ["accuracy", "macro_f1"])
        print(f"{name}")
        print(f"  {'version':<26} {'state':<10} {'created (UTC)':<17} "
              + "".join(f"{FIGURE_NAMES.get(key, key):>8} " for key in keys) + f" {'training data':<30} gate")
        for row in rows:
            if row["state"] == "unreadable":
                print(f"  {row['version']:<26} unreadable: {row['note']}")
                continue
            print(f"  {row['version']:<26} {row['state']:<10} {row['created']:<17} "
                  + "".join(f"{row['figures'].get(key, float('nan')):>8.3f} " for key in keys)
                  + f" {row['data']:<30} {row['gate']}")


FIGURE_NAMES = {"accuracy": "accuracy", "macro_f1": "macro F1", "mae": "MAE"}  # the list's column headings


def show_history(model_dir, name):
    """Print the release history, oldest first."""
    for entry in releases.release_history(model_dir, name):
        print(f"{entry['time']}  {entry['model']:<13} {entry['action']:<10} {entry['from'] or '-':<26} -> "
              f"{entry['to'] or '-':<26} {entry['by']}  {entry['why']}")


def show_comparison(url, name, since):
    """Print how each shadow version of `name` did beside the live one, from the prediction log."""
    pairs = log_reads.compare_shadow(url, model=name, since=since)
    if not pairs:
        print(f"{name}: the prediction log has no text scored in shadow"
              + (" in this window" if since else "") + f"; start one with `python release.py shadow {name} VERSION`.")
        return
    print(f"{name}")
    print(f"  {'live':<26} {'shadow':<26} {'texts':>8} {'agreed':>7} {'feedback':>8} {'live acc':>8} "
          f"{'shadow acc':>10}")
    for pair in pairs:
        labelled = pair["feedback"]
        live_acc, shadow_acc = (f"{pair[key] / labelled:.3f}" if labelled else "-"
                                for key in ("live_right", "shadow_right"))
        print(f"  {pair['live']:<26} {pair['shadow']:<26} {pair['texts']:>8} {pair['agreed'] / pair['texts']:>7.1%} "
              f"{labelled:>8} {live_acc:>8} {shadow_acc:>10}")


def log_url(given):
    """The prediction log `compare` reads: the URL given, else the service's PREDICTION_LOG setting."""
    url = given or config.Settings.from_env().PREDICTION_LOG
    if url == "off":
        raise releases.ReleaseError("PREDICTION_LOG=off: there is no log to compare in; pass --log URL.")
    return url


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, default=config.model_dir(),
                        help="the models' folder; default $MODEL_DIR or lib/models")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="every kept version of each model")
    listing.add_argument("name", nargs="?")
    promote = commands.add_parser("promote", help="make a version live")
    promote.add_argument("name")
    promote.add_argument("version", help="its model_version, as `list` and the answers show it")
    promote.add_argument("--why", default="", help="recorded in the history")
    rollback = commands.add_parser("rollback", help="make the version live before the live one live again")
    rollback.add_argument("name")
    rollback.add_argument("--why", default="", help="recorded in the history")
    shadow = commands.add_parser("shadow", help="score every text with a version too, beside the live one")
    shadow.add_argument("name")
    which = shadow.add_mutually_exclusive_group(required=True)
    which.add_argument("version", nargs="?", help="its model_version, as `list` shows it")
    which.add_argument("--off", action="store_true", help="stop scoring in shadow")
    shadow.add_argument("--why", default="", help="recorded in the history")
    compare = commands.add_parser("compare", help="the shadow's agreement and both versions' accuracy")
    compare.add_argument("name")
    compare.add_argument("--log", help="the prediction log's URL (default: the PREDICTION_LOG setting)")
    compare.add_argument("--since", type=window_seconds, help="only texts of this window back from now: 90m, 24h, 7d")
    history = commands.add_parser("history", help="the release history")
    history.add_argument("name", nargs="?")
    add = commands.add_parser("add", help="serve a scikit-learn pipeline trained elsewhere as a version of NAME")
    add.add_argument("new_name", metavar="NAME", help="the model's name: lower-case letters, digits and hyphens")
    add.add_argument("file", type=Path, help="the fitted pipeline, saved with skops.io.dump, pickle or joblib")
    add.add_argument("--data", type=Path, required=True,
                     help="a CSV of rows the model was not fitted on: every input, and the true value")
    add.add_argument("--target", help="the true value's column (default: the one column that is not an input)")
    add.add_argument("--route", help="where it is scored (default: /NAME)")
    add.add_argument("--promote", action="store_true", help="serve it even if it is worse than the live version")
    add.add_argument("--why", default="", help="recorded in the history")
    return parser.parse_args(argv)


def add_model(args):
    """`add`: read, check, evaluate, gate and publish a model trained elsewhere; 0 when it went live, else
    GATE_HELD_BACK (published as a candidate)."""
    from training import adopt  # only here: pandas and the reading of model files
    from training.gate import GATE_HELD_BACK

    folder, _, live = adopt.add(args.new_name, args.file, args.data, model_dir=args.model_dir, target=args.target,
                                route=args.route, promote=args.promote, why=args.why)
    version = releases.version_of_folder(folder)
    manifest = artifacts.read_manifest(folder)
    if live:
        print(f"{args.new_name}: {version} is live at {manifest['route']}. {FOLLOW}")
        return 0
    print(f"{args.new_name}: {version} is a candidate, not live: {manifest['release']['gate']['why']}. Serve it "
          f"anyway: python release.py promote {args.new_name} {version}")
    return GATE_HELD_BACK


def main(argv=None):
    """Run one command; exit 1 with one line when it cannot be carried out."""
    args = parse_args(argv)
    model_dir = args.model_dir
    try:
        if args.command == "add":
            return add_model(args)
        names = releases.model_names(model_dir)
        name = getattr(args, "name", None)
        if name is not None and name not in names:
            raise releases.ReleaseError(f"{model_dir} holds no {name} model (it holds: {', '.join(names) or 'none'}). "
                                         "Build it with `python build_model.py`.")
        if args.command == "list":
            show_list(model_dir, [name] if name else names)
        elif args.command == "history":
            show_history(model_dir, name)
        elif args.command == "compare":
            show_comparison(log_url(args.log), name, time.time() - args.since if args.since else None)
        elif args.command == "shadow":
            before, after = releases.shadow(model_dir, name, None if args.off else args.version, verify=kinds.load,
                                           why=args.why)
            print(f"{name}: " + (f"{after} is in shadow (was {before or 'none'}). " if after else
                                 f"no shadow any more (was {before}). ") + FOLLOW)
        else:
            if args.command == "promote":
                before, after = releases.promote(model_dir, name, args.version, verify=kinds.load, why=args.why)
            else:
                before, after = releases.rollback(model_dir, name, verify=kinds.load, why=args.why)
            print(f"{name}: {after} is live (was {before or 'none'}). {FOLLOW}")
    except (releases.ReleaseError, artifacts.ModelError, config.ConfigError, util.DataError,
            log_schema.PredictionLogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
