"""Release the built models: list their versions, promote one, roll back.

    python release.py list [NAME]              every kept version: live, candidate, figures, the gate's verdict
    python release.py promote NAME VERSION     make VERSION (a `model_version`, as answers carry) live
    python release.py rollback NAME            make the version live before the live one live again
    python release.py history [NAME]           the release history: when, which model, from, to, why

A thin command line over `artifacts`, which owns the versions, the links, the lock and the history: each
command is one verified, atomic link switch taken in turn with builds, and written to the history.
Servers answer with the live version after a reload (SIGHUP). The model folder is MODEL_DIR's, as the
service's (`--model-dir` to choose another).
"""
import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

import artifacts
import config


def version_rows(model_dir, name):
    """One dict per kept version of `name`, oldest first: what `list` shows."""
    live = artifacts.live_folder(model_dir, name)
    rows = []
    for folder in artifacts.version_folders(model_dir, name):
        try:
            manifest = artifacts.read_manifest(folder)
            metrics = json.loads((folder / artifacts.METRICS_FILE).read_bytes())
        except (artifacts.ModelError, OSError, ValueError) as exc:
            rows.append({"version": folder.name, "state": "unreadable", "note": str(exc)})
            continue
        release = manifest.get("release", {})
        state = "live" if folder.resolve() == live else "candidate" if release.get("live") is False else ""
        data = manifest["training_data"]
        rows.append({
            "version": artifacts.model_version(manifest), "state": state,
            "created": datetime.fromisoformat(manifest["created_at"]).strftime("%Y-%m-%d %H:%M"),
            "data": f"{data.get('name', '?')} ({data.get('rows_used', '?')} rows)",
            "accuracy": metrics.get("accuracy", float("nan")), "macro_f1": metrics.get("macro_f1", float("nan")),
            "gate": ("promoted over the gate: " if release.get("promoted_over_gate") else "")
                    + release.get("gate", {}).get("why", "built before the gate"),
        })
    return rows


def show_list(model_dir, names):
    """Print every kept version of each model."""
    for name in names:
        print(f"{name}")
        print(f"  {'version':<26} {'state':<10} {'created (UTC)':<17} {'accuracy':>8} {'macro F1':>8}  "
              f"{'training data':<30} gate")
        for row in version_rows(model_dir, name):
            if row["state"] == "unreadable":
                print(f"  {row['version']:<26} unreadable: {row['note']}")
                continue
            print(f"  {row['version']:<26} {row['state']:<10} {row['created']:<17} {row['accuracy']:>8.3f} "
                  f"{row['macro_f1']:>8.3f}  {row['data']:<30} {row['gate']}")


def show_history(model_dir, name):
    """Print the release history, oldest first."""
    for entry in artifacts.release_history(model_dir, name):
        print(f"{entry['time']}  {entry['model']:<13} {entry['action']:<10} {entry['from'] or '-':<26} -> "
              f"{entry['to'] or '-':<26} {entry['by']}  {entry['why']}")


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
    history = commands.add_parser("history", help="the release history")
    history.add_argument("name", nargs="?")
    return parser.parse_args(argv)


def main(argv=None):
    """Run one command; exit 1 with one line when it cannot be carried out."""
    args = parse_args(argv)
    model_dir = args.model_dir
    try:
        names = artifacts.model_names(model_dir)
        name = getattr(args, "name", None)
        if name is not None and name not in names:
            raise artifacts.ReleaseError(f"{model_dir} holds no {name} model (it holds: {', '.join(names) or 'none'}). "
                                         "Build it with `python build_model.py`.")
        if args.command == "list":
            show_list(model_dir, [name] if name else names)
        elif args.command == "history":
            show_history(model_dir, name)
        else:
            if args.command == "promote":
                before, after = artifacts.promote(model_dir, name, args.version, why=args.why)
            else:
                before, after = artifacts.rollback(model_dir, name, why=args.why)
            print(f"{name}: {after} is live (was {before or 'none'}). Servers answer with it after a reload: "
                  "kill -HUP the gunicorn master.")
    except (artifacts.ReleaseError, artifacts.ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
