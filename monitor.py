"""The drift report: the prediction log of a window against the served models' references.

    python monitor.py --since 24h                      # every model; PREDICTION_LOG and MODEL_DIR as the service
    python monitor.py --since 7d --model binary --report drift.html
    python monitor.py --since 2h --log postgresql://USER@HOST/DB --model-dir /srv/models

For each model it reads the rows of the window (`log_reads.read_predictions`) and the labels sent
back, computes the drift signals (serving/drift.py) and prints, for each, the reference of the model as built
(`metrics.json`), the value now, the change and a verdict, with the margins of the alert rules
(deploy/prometheus/alerts.yml). `--report` writes an HTML page with the table and pictures: the
confidence histogram now against the reference, the label mix, the known-token share and the accuracy
from feedback over the window. A model of named inputs (`ratings`) is compared on each input's share
of unseen and of missing values, its mean prediction and the mean absolute error of the values sent back.

Exit status: 0 no drift, 1 drift found (so cron or CI can act on it), 2 a bad argument, log or model.
"""
import argparse
import base64
import html
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

import kinds
import util
from serving import config, drift, log_reads, log_schema

UNITS = {"m": 60, "h": 3600, "d": 86_400}


def window_seconds(text):
    """Seconds of a window such as 90m, 24h or 7d."""
    found = re.fullmatch(r"(\d+)([mhd])", text.strip())
    if not found or int(found[1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a window: use minutes, hours or days, e.g. 90m, 24h, 7d")
    return int(found[1]) * UNITS[found[2]]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Compare the prediction log of a window with the served "
                                                 "models' references; exit 1 on drift.")
    parser.add_argument("--since", type=window_seconds, default=window_seconds("24h"),
                        help="the window, back from now: 90m, 24h, 7d (default 24h)")
    parser.add_argument("--model", help="one model (default: every one served)")
    parser.add_argument("--log", help="the prediction log's URL (default: the PREDICTION_LOG setting)")
    parser.add_argument("--model-dir", help="the served models (default: the MODEL_DIR setting)")
    parser.add_argument("--report", type=Path, help="also write an HTML report with the pictures here")
    return parser.parse_args(argv)


class Check:
    """One row of the table: a signal, its reference and value now, and whether it has drifted."""

    def __init__(self, signal, reference, now, *, drifted=False, rule="", digits=3):
        self.signal, self.reference, self.now, self.drifted, self.rule = signal, reference, now, drifted, rule
        self.digits = digits

    def cells(self):
        def shown(x):
            return "-" if x is None else f"{x:.{self.digits}f}"
        change = None if self.reference is None or self.now is None else self.now - self.reference
        verdict = f"DRIFT ({self.rule})" if self.drifted else "ok"
        return [self.signal, shown(self.reference), shown(self.now),
                "-" if change is None else f"{change:+.{self.digits}f}", verdict]


def checks(reference, now, feedback):
    """The table of one model: each signal of `now` (drift.signals of the window) against `reference`,
    and the accuracy of the labels sent back (`feedback`: (count, accuracy))."""
    rows = []
    if now.get("known_token_share") is not None:
        rows.append(Check("known-token share", reference["known_token_share"], now["known_token_share"],
                          drifted=now["known_token_share"] < reference["known_token_share"] - drift.KNOWN_SHARE_DROP,
                          rule=f"over {drift.KNOWN_SHARE_DROP:.2f} below"))
        rows.append(Check("texts with no known term", reference["no_known_term_share"], now["no_known_term_share"]))
    shift = drift.label_share_difference(now["label_shares"], reference["label_shares"])
    for label, share in reference["label_shares"].items():
        rows.append(Check(f"label share: {label}", share, now["label_shares"].get(label, 0.0),
                          drifted=shift > drift.LABEL_SHARE_SHIFT and abs(now["label_shares"].get(label, 0.0) - share)
                          == shift, rule=f"over {drift.LABEL_SHARE_SHIFT:.2f} away"))
    rows.append(Check("mean confidence (expected accuracy)", reference["confidence_mean"], now["confidence_mean"],
                      drifted=now["confidence_mean"] < reference["confidence_mean"] - drift.CONFIDENCE_DROP,
                      rule=f"over {drift.CONFIDENCE_DROP:.2f} below"))
    for quantile, length in reference.get("text_length_quantiles", {}).items():  # a text model's
        rows.append(Check(f"text length, quantile {quantile}", length, now["text_length_quantiles"][quantile],
                          digits=0))
    count, accuracy = feedback
    rows.append(Check(f"accuracy from feedback ({count:,} labels)", reference["accuracy"], accuracy,
                      drifted=count >= drift.MIN_FEEDBACK and accuracy < reference["accuracy"] - drift.ACCURACY_DROP,
                      rule=f"over {drift.ACCURACY_DROP:.2f} below"))
    return rows


def input_checks(reference, now):
    """The rows of a model of named inputs: each input's unseen and missing shares of `now`
    (drift.value_signals of the window) against `reference`, with the margins of their alert rules."""
    rows = []
    for name, share in reference["input_unseen_shares"].items():
        value = now["input_unseen_shares"].get(name, 0.0)
        rows.append(Check(f"unseen: {name}", share, value, drifted=value > share + drift.UNSEEN_SHARE_RISE,
                          rule=f"over {drift.UNSEEN_SHARE_RISE:.2f} above"))
    for name, share in reference["input_missing_shares"].items():
        value = now["input_missing_shares"].get(name, 0.0)
        rows.append(Check(f"missing: {name}", share, value, drifted=abs(value - share) > drift.MISSING_SHARE_SHIFT,
                          rule=f"over {drift.MISSING_SHARE_SHIFT:.2f} away"))
    return rows


def value_checks(reference, now, feedback):
    """The table of a regressor: its inputs' rows (`input_checks`), the mean prediction of `now` against
    `reference`, and the MAE of the values sent back (`feedback`: (count, mae))."""
    rows = input_checks(reference, now)
    margin = drift.PREDICTION_SHIFT_OF_MAE * reference["mae"]
    rows.append(Check("mean prediction", reference["predicted_value_mean"], now["predicted_value_mean"],
                      drifted=abs(now["predicted_value_mean"] - reference["predicted_value_mean"]) > margin,
                      rule=f"over {margin:.2f} away"))
    count, mae = feedback
    rows.append(Check(f"MAE from feedback ({count:,} values)", reference["mae"], mae,
                      drifted=count >= drift.MIN_FEEDBACK and mae > drift.FEEDBACK_MAE_RATIO * reference["mae"],
                      rule=f"over {drift.FEEDBACK_MAE_RATIO} times"))
    return rows


def window_values(rows, served):
    """drift.value_signals of the logged rows of a model of named inputs (a DataFrame with `inputs` JSON,
    and a regressor's `value`)."""
    inputs = [json.loads(text) for text in rows["inputs"]]
    return drift.value_signals(inputs, rows["value"].fillna(0).to_numpy(float), served.unseen)


def feedback_error(served, values_sent):
    """(count, mean absolute error) of the latest value per answer, by the served model's `error_of`."""
    if values_sent.empty:
        return 0, None
    errors = [served.error_of(float(predicted), float(actual))
              for predicted, actual in zip(values_sent["predicted"], values_sent["label"])]
    return len(errors), float(np.mean(errors))


def window_signals(rows, labels):
    """drift.signals of a model's logged rows (a DataFrame); the token signals only from rows that have them."""
    position = {label: i for i, label in enumerate(labels)}
    counted = rows.dropna(subset=["tokens", "known_tokens"])
    found = drift.signals(labels=labels, predicted=rows["label"].map(position).to_numpy(),
                          confidence=rows["confidence"].to_numpy(),
                          lengths=rows["text_length"].fillna(0).to_numpy(),  # none for named inputs
                          tokens=np.zeros(len(rows)), known=np.zeros(len(rows)))
    if len(counted):
        found.update(drift.token_shares(counted["tokens"].to_numpy(float), counted["known_tokens"].to_numpy(float)))
    else:
        found["known_token_share"] = found["no_known_term_share"] = None
    return found


def feedback_accuracy(served, labels_sent):
    """(count, accuracy) of the latest label per answer: one less the mean of the served model's error of each
    answer (`error_of`: 0 or 1 for a label), so how often the answer agreed; None without labels."""
    if labels_sent.empty:
        return 0, None
    errors = [served.error_of(predicted, actual) for predicted, actual in zip(labels_sent["predicted"],
                                                                             labels_sent["label"])]
    return len(errors), 1.0 - float(np.mean(errors))


def table(rows):
    """The checks as aligned text."""
    cells = [["signal", "reference", "now", "change", "verdict"]] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) if i in (0, 4) else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
                     for line in cells)


def main(argv=None):
    args = parse_args(argv)
    try:
        settings = config.Settings.from_env()
        url = args.log or settings.PREDICTION_LOG
        model_dir = Path(args.model_dir or settings.MODEL_DIR)
        if url == "off":
            raise util.DataError("PREDICTION_LOG=off: there is no log to read; pass --log URL.")
        built = [p.name for p in sorted(model_dir.iterdir()) if not p.name.startswith(".") and (
            p.is_dir() or p.is_symlink())] if model_dir.is_dir() else []
        if args.model and args.model not in built:
            raise util.DataError(f"{model_dir} holds no {args.model} model (it holds: {', '.join(built) or 'none'}).")
        names = [args.model] if args.model else built
        if not names:
            raise util.DataError(f"no model is built in {model_dir}: pass --model-dir, or build them with "
                                 "`python build_model.py`.")
        served = {name: kinds.load(model_dir / name) for name in names}
        since = time.time() - args.since
        logged = log_reads.read_predictions(url, since=since)
        labels_sent = log_reads.read_feedback(url, since=since)
    except (util.DataError, config.ConfigError, kinds.ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # an unreadable log: one line that names it, no traceback
        print(f"error: cannot read the prediction log at {log_schema.redacted(url)}: "
              f"{log_schema.reason(exc)}", file=sys.stderr)
        return 2
    found_drift, sections = False, []
    for name, loaded in served.items():
        reference = loaded.metrics.get("reference")
        rows = logged[logged["model"] == name]
        heading = (f"{name} (served version {loaded.version}): {len(rows):,} texts in the last "
                   f"{format_window(args.since)}")
        if reference is None:
            sections.append((name, heading + "; its build recorded no reference: rebuild it with "
                                              "`python build_model.py`.", None, rows, None))
            continue
        if len(rows) < drift.MIN_TEXTS:
            sections.append((name, heading + f"; fewer than {drift.MIN_TEXTS} texts, so no verdict.", None, rows,
                             reference))
            continue
        sent = labels_sent[labels_sent["model"] == name]
        if loaded.labels is None:  # a regressor: its inputs and numbers
            result = value_checks(reference, window_values(rows, loaded), feedback_error(loaded, sent))
            found_drift |= any(row.drifted for row in result)
            sections.append((name, heading.replace(" texts ", " rows "), result, rows, None))
            continue
        now = window_signals(rows, loaded.labels)
        result = checks(reference, now, feedback_accuracy(loaded, sent))
        pictured = reference  # a text model's report draws its signals
        if "input_missing_shares" in reference:  # a classifier of named inputs: its inputs too, and no pictures
            result = input_checks(reference, window_values(rows, loaded)) + result
            heading, pictured = heading.replace(" texts ", " rows "), None
        found_drift |= any(row.drifted for row in result)
        sections.append((name, heading, result, rows, pictured))
    for _, heading, result, _, _ in sections:
        print(heading)
        if result:
            print(table(result))
        print()
    print("drift found" if found_drift else "no drift found")
    if args.report:
        write_report(args.report, sections, labels_sent, since)
        print(f"report: {args.report}")
    return 1 if found_drift else 0


def format_window(seconds):
    """A window as --since takes it: days from two days on, else hours, else minutes."""
    if seconds % 86_400 == 0 and seconds >= 2 * 86_400:
        return f"{seconds // 86_400}d"
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m"


def write_report(path, sections, labels_sent, since):
    """An HTML page: each model's table and its pictures (PNG, inline)."""
    from training import plots

    parts = ["<!doctype html><meta charset='utf-8'><title>Drift report</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:.2em .6em}"
             "td:nth-child(n+2):not(:last-child){text-align:right}.drift{color:#b00;font-weight:bold}</style>",
             f"<h1>Drift report</h1><p>From {html.escape(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(since)))} "
             "to now.</p>"]
    for name, heading, result, rows, reference in sections:
        parts.append(f"<h2>{html.escape(name)}</h2><p>{html.escape(heading)}</p>")
        if not result:
            continue
        parts.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in ["signal", "reference", "now", "change",
                                                                        "verdict"]) + "</tr>")
        for row in result:
            cells = row.cells()
            parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells[:4])
                         + f"<td class='{'drift' if row.drifted else ''}'>{html.escape(cells[4])}</td></tr>")
        parts.append("</table>")
        if reference is None:  # a model of named inputs' report is its table
            continue
        pictures = plots.drift_pictures(rows, reference, labels_sent[labels_sent["model"] == name])
        for title, png in pictures:
            parts.append(f"<h3>{html.escape(title)}</h3><img alt='{html.escape(title)}' "
                         f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    path.parent.mkdir(parents=True, exist_ok=True)
    util.write_atomic(path, "\n".join(parts).encode())


if __name__ == "__main__":
    sys.exit(main())
