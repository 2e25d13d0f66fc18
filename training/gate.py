"""The gate: a new build goes live only if it is not worse than the live model on rows neither was trained on.

The figures compared, and which way each is better, are the kind's (`ModelKind.GATE_FIGURES`): for a
text classifier, accuracy and macro F1, higher being better. A build the gate holds back is published
as a candidate that serves nothing, and the build exits `GATE_HELD_BACK`.
"""
from pathlib import Path

import kinds
from serving.kind import HIGHER
from training.evaluation import evaluate
from training.recipes import from_manifest

GATE_TOLERANCE = 0.01
GATE_HELD_BACK = 3  # the exit status of a build published as a candidate


def live_model(out_dir, name):
    """(the live model `name` in `out_dir`, or None; why there is none): the model a new build is gated
    against. A live model this build cannot load (damaged, or built by another scikit-learn) is no
    yardstick: the new build replaces it."""
    link = Path(out_dir) / name
    if not link.exists() and not link.is_symlink():
        return None, "no live model: the first build of a model is live"
    try:
        return kinds.load(link), None
    except kinds.ModelError as exc:
        return None, f"the live model cannot be loaded, so the new build replaces it ({exc})"


def gate(data, recipe, train, test, metrics, live, why_none, *, tolerance, figures):
    """Compare a new build with the live model on rows neither was trained on; return the gate's record.

    Three comparisons, each on `figures` ({name: HIGHER or LOWER}, the kind's), each failing when the new
    build is worse than the live one by more than `tolerance`:

    - `same_rows`: the new build's held-out side, scored by the new fit and by the live model's recipe
      fitted on the same training side: a worse recipe (family, features, settings) shows here;
    - `feedback`: the held-out feedback (labels users sent, never trained on), scored by the new fit and
      by the live model itself;
    - `held_out`: the new build's held-out figures against the live build's own. Different rows, but the
      only comparison that sees bad *data*: with scrambled labels, or far too few rows, both fits on the
      same rows are equally bad, so the same-rows comparison passes them.
    """
    if live is None:
        return {"live_model": None, "passed": True, "why": why_none, "tolerance": tolerance, "checks": {}}
    live_recipe = from_manifest(live.manifest["hyperparameters"])
    same = metrics if live_recipe == dict(recipe) else evaluate(data, live_recipe, train, test)[0]
    checks = {"same_rows": (metrics, same), "held_out": (metrics, live.metrics)}
    if metrics.get("feedback", {}).get("live_model"):
        checks["feedback"] = (metrics["feedback"], metrics["feedback"]["live_model"])
    return compare(checks, live.version, tolerance=tolerance, figures=figures)


def compare(checks, live_version, *, tolerance, figures):
    """The gate's record of `checks` ({check: (new build's figures, live model's)}), each figure of
    `figures` ({name: HIGHER or LOWER}) compared: what `gate` returns, for any kind of model."""
    record = {}
    for check, (new, old) in checks.items():
        compared = {key: {"new": new[key], "live": old[key], "passed": not_worse(new[key], old[key], better, tolerance)}
                    for key, better in figures.items() if key in new and key in old}
        record[check] = {**compared, "passed": all(f["passed"] for f in compared.values())}
    passed = all(c["passed"] for c in record.values())
    failed = [f"{check} {key} {c[key]['new']:.3f} {'<' if better == HIGHER else '>'} {c[key]['live']:.3f}"
              for check, c in record.items() for key, better in figures.items() if key in c and not c[key]["passed"]]
    return {"live_model": live_version, "passed": passed, "tolerance": tolerance, "checks": record,
            "directions": dict(figures),
            "why": "not worse than the live model" if passed else "worse than the live model: " + "; ".join(failed)}


def not_worse(new, old, better, tolerance):
    """True unless `new` is worse than `old` by more than `tolerance`, `better` saying which way is better."""
    return new >= old - tolerance if better == HIGHER else new <= old + tolerance


def gate_table(name, record):
    """The gate's comparison as lines for the terminal."""
    lines = [f"[{name}] gate against the live model {record['live_model']} (tolerance {record['tolerance']}):"]
    labels = {"same_rows": "same held-out rows, live recipe refit", "feedback": "held-out feedback",
              "held_out": "held-out figures, each build's own", "given_data": "the data given, both versions"}
    for check, c in record["checks"].items():
        figures = "  ".join(f"{key} {c[key]['new']:.3f} vs {c[key]['live']:.3f}" for key in record["directions"]
                            if key in c)
        lines.append(f"[{name}]   {labels[check]:<40} {figures}  {'ok' if c['passed'] else 'WORSE'}")
    return "\n".join(lines)
