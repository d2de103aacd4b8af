"""The leaderboards as a static web site: a self-contained page per board and one for the
reproduction report, and an index. Tables sort in the browser (a small inline script), the
best mean of each block is highlighted, plots are inlined as data URIs: a page needs no
server and no network. The output depends only on its inputs (CI compares the committed site
with a fresh one), so nothing in it names the time or the machine it was written on.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

import pandas as pd

from mvbench.errors import MvbenchError
from mvbench.leaderboard import Leaderboard, read_leaderboard
from mvbench.leaderboard_render import (BLOCK_COLUMNS, provenance, published_text, ranked, safe_name,
                                        setting_label)
from mvbench.metrics import METRICS
from mvbench.registry import Registry
from mvbench.report import (ABOVE, BELOW, REPRODUCED, TABLE_HEADERS, Report, board_lines, collect,
                            definitions, is_smoke, suite_files, table_cells, threads_text)
from mvbench.suite import load_suite

SITE_DIR = "site"
STYLE_FILE, SCRIPT_FILE = "site.css", "site.js"
CD_PREFIX = "cd:"  # plot_files' key of a critical-difference diagram, beside the datasets' plots
INDEX_PAGE, REPORT_PAGE = "index.html", "reproduction.html"
SMOKE_NOTE = ("SMOKE suite: shortened epochs, to check that the grid runs; not a leaderboard, and its "
              "numbers do not describe the methods")

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5rem auto; max-width: 88rem; padding: 0 1rem; color: #1b1b1b; }
nav a { margin-right: 1rem; }
h1 { margin-bottom: .3rem; }
.smoke { background: #fff3cd; border: 1px solid #d6b656; padding: .5rem .8rem; font-weight: 600; }
dl.provenance { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; background: #f4f6f8;
  padding: .6rem .9rem; border-radius: 4px; font-size: 13px; }
dl.provenance dt { font-weight: 600; }
dl.provenance dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: 13px; }
th, td { border-bottom: 1px solid #d9dde1; padding: .25rem .5rem; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th { background: #eef1f4; cursor: pointer; user-select: none; position: sticky; top: 0; white-space: nowrap; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
table:not(.sorted) tr.block > td { border-top: 2px solid #8a96a3; }
td.best { background: #c7ecc9; font-weight: 700; }
td.second { text-decoration: underline; }
td.reproduced { background: #c7ecc9; }
td.below { background: #f7d0cc; }
td.above { background: #cfe0f7; }
img { max-width: 100%; border: 1px solid #d9dde1; }
.note { color: #555; font-size: 13px; }
"""

# Sorts a table by the clicked column (again: the other way). A cell's data-value is its sort
# key (numbers sort as numbers); empty keys sort last either way. Keyboard: Enter or space.
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  headers.forEach(function (th, column) {
    var numeric = th.getAttribute("data-type") === "number";
    function key(row) {
      var cell = row.cells[column];
      var value = cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent.trim();
      if (value === "") return null;
      return numeric ? parseFloat(value) : value.toLowerCase();
    }
    function sort() {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) return (x === null) - (y === null);
        var order = numeric ? x - y : (x < y ? -1 : x > y ? 1 : 0);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
      // Block separators mean something only in the original order.
      table.classList.toggle("sorted", !(ascending && th.hasAttribute("data-original")));
    }
    th.tabIndex = 0;
    th.title = "sort by this column";
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sort(); }
    });
  });
});
"""


@dataclass(frozen=True)
class Cell:
    """A table cell: its text, its sort key (``None``: sort by the text), its CSS class and
    the page it links to."""

    text: str
    value: str | None = None
    css: str = ""
    link: str = ""


@dataclass(frozen=True)
class Column:
    """A column's title; ``numeric`` columns sort as numbers, ``original`` is the row number
    whose ascending sort restores the table's order."""

    title: str
    numeric: bool = False
    original: bool = False


def _number_key(value: float) -> str:
    # Six decimals, as in the leaderboard CSV: enough to order the cells, and free of the last
    # bits of a mean, which may differ between machines.
    return "" if value is None or math.isnan(value) else f"{float(value):.6f}"


def html_table(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], starts: Sequence[bool] = ()) -> str:
    """A sortable table; numeric columns are right-aligned and sort by their cells' values.
    ``starts`` marks the rows that begin a block (a line above them in the original order)."""
    head = "".join(f'<th data-type="{"number" if c.numeric else "text"}"{" data-original" if c.original else ""}>'
                   f"{escape(c.title)}</th>" for c in columns)
    body = []
    for position, row in enumerate(rows):
        cells = []
        for column, cell in zip(columns, row):
            css = " ".join(filter(None, ["num" if column.numeric else "", cell.css]))
            attributes = (f' class="{css}"' if css else "") + (
                f' data-value="{escape(cell.value)}"' if cell.value is not None else "")
            text = f'<a href="{escape(cell.link)}">{escape(cell.text)}</a>' if cell.link else escape(cell.text)
            cells.append(f"<td{attributes}>{text}</td>")
        start = position > 0 and position < len(starts) and starts[position]
        body.append(('<tr class="block">' if start else "<tr>") + "".join(cells) + "</tr>")
    return (f'<table class="sortable">\n<thead><tr>{head}</tr></thead>\n<tbody>\n' + "\n".join(body)
            + "\n</tbody>\n</table>")


def page(title: str, body: str, *, nav: bool, linked: bool = False) -> str:
    """A whole HTML document with the style and the sorting script inline, or, for the site
    (``linked``), loaded from its two local files STYLE_FILE and SCRIPT_FILE, written once."""
    links = (f'<nav><a href="{INDEX_PAGE}">all boards</a><a href="{REPORT_PAGE}">reproduction report</a></nav>\n'
             if nav else "")
    style = f'<link rel="stylesheet" href="{STYLE_FILE}">' if linked else f"<style>{STYLE}</style>"
    script = f'<script src="{SCRIPT_FILE}"></script>' if linked else f"<script>{SCRIPT}</script>"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{escape(title)}</title>\n{style}\n</head>\n<body>\n{links}{body}\n"
            f"{script}\n</body>\n</html>\n")


def inline_markdown(text: str) -> str:
    """``text`` as HTML, with the Markdown the report's sentences use: `code` and **strong**."""
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def provenance_list(items: Sequence[tuple[str, str]]) -> str:
    rows = "".join(f"<dt>{escape(label)}</dt><dd>{escape(value)}</dd>" for label, value in items)
    return f'<dl class="provenance">{rows}</dl>'


# --- a board -------------------------------------------------------------------------------

def _mean_std(mean: float, std: float, digits: int, css: str) -> Cell:
    if math.isnan(mean):
        return Cell("-", "")
    text = f"{mean:.{digits}f}" + ("" if math.isnan(std) else f" ± {std:.{digits}f}")
    return Cell(text, _number_key(mean), css)


BOARD_COLUMNS = (Column("#", numeric=True, original=True), Column("setting"), Column("method"), Column("option set"),
                 Column("n", numeric=True), *[Column(m.upper(), numeric=True) for m in METRICS],
                 Column("train s", numeric=True), Column("published (paper)"))


def block_starts(rows: pd.DataFrame) -> list[bool]:
    """Whether each row begins a new block (dataset, missingness and rate)."""
    keys = [tuple(str(row[c]) for c in BLOCK_COLUMNS) for _, row in rows.iterrows()]
    return [i == 0 or key != keys[i - 1] for i, key in enumerate(keys)]


def dataset_rows(rows: pd.DataFrame) -> list[list[Cell]]:
    """The cells of one dataset's rows; the best mean of each block is ``best``, the next
    ``second`` (the blocks and the rounding of the Markdown's bold)."""
    ranks = ranked(rows)
    out = []
    for position, (index, row) in enumerate(rows.iterrows(), start=1):
        # Boards made before the degeneracy flags have no n_degenerate column: none flagged.
        notes = [f"{row['n_failed']} failed" if row["n_failed"] else "",
                 f"{int(row.get('n_degenerate', 0))} degenerate" if row.get("n_degenerate", 0) else ""]
        n = f"{row['n_seeds']}" + (f" ({', '.join(filter(None, notes))})" if any(notes) else "")
        cells = [Cell(str(position), str(position)), Cell(setting_label(row)), Cell(row["method"]),
                 Cell(row["option_set"]), Cell(n, str(int(row["n_seeds"])))]
        for column in (*METRICS, "train_time"):
            best, second = ranks[column]
            css = "best" if index in best else "second" if index in second else ""
            cells.append(_mean_std(float(row[f"{column}_mean"]), float(row[f"{column}_std"]),
                                   1 if column == "train_time" else 4, css))
        cells.append(Cell(published_text(row)))
        out.append(cells)
    return out


def board_body(board: Leaderboard, plots: Mapping[str, bytes], *, threads: str = "", smoke: bool = False) -> str:
    """The body of a board's page: title, provenance, a sortable table and a plot per dataset."""
    meta, table = board.meta, board.table
    parts = [f"<h1>Leaderboard <code>{escape(board.name)}</code></h1>"]
    if smoke:
        parts.append(f'<p class="smoke">{escape(SMOKE_NOTE)}</p>')
    if meta.get("description"):
        parts.append(f"<p>{escape(meta['description'])}</p>")
    facts = provenance(table, threads)
    if meta.get("seeds"):
        facts.append(("seeds", ", ".join(map(str, meta["seeds"]))))
    if meta.get("epochs"):
        facts.append(("epochs", meta["epochs"]))
    if meta.get("left_out"):
        facts.append(("left out", meta["left_out"]))
    if meta.get("reused"):
        facts.append(("reused", meta["reused"]))
    parts.append(provenance_list(facts))
    parts.append('<p class="note">Cells: mean ± std over the seeds that finished (sample std, ddof=1; none '
                 "for one seed). Highlighted: the best mean among the rows of the same missingness and rate "
                 "(lowest for time); underlined: the second. Click a column title to sort; # restores the "
                 "board's order. NMI: arithmetic-mean normalisation; F: pairwise F-score. Published: the "
                 "paper's number from the dataset registry, never mixed into ours.</p>")
    for dataset in dict.fromkeys(table["dataset"]):
        parts.append(f'<h2 id="{escape(safe_name(dataset))}">{escape(dataset)}</h2>')
        rows = table[table["dataset"] == dataset]
        parts.append(html_table(BOARD_COLUMNS, dataset_rows(rows), block_starts(rows)))
        if dataset in plots:
            data = base64.b64encode(plots[dataset]).decode("ascii")
            parts.append(f'<img alt="{escape(dataset)}: ACC and NMI of every row" '
                         f'src="data:image/png;base64,{data}">')
    diagrams = sorted(key for key in plots if key.startswith(CD_PREFIX))
    if diagrams:
        parts.append('<h2 id="statistics">Statistics</h2>')
        parts.append('<p class="note">Critical-difference diagrams written by <code>mvbench stats '
                     f'{escape(board.name)}</code>: average ranks over the blocks (dataset and setting) in '
                     "which every entry has results; entries joined by a bar are not separated by Nemenyi's "
                     "test after Friedman's (the test is stated in the diagram's title).</p>")
        for key in diagrams:
            data = base64.b64encode(plots[key]).decode("ascii")
            parts.append(f'<img alt="critical-difference diagram ({escape(key.removeprefix(CD_PREFIX))})" '
                         f'src="data:image/png;base64,{data}">')
    return "\n".join(parts)


def board_page(board: Leaderboard, plots: Mapping[str, bytes], *, threads: str = "", smoke: bool = False,
               nav: bool = False) -> str:
    """A board's page: self-contained (``mvbench leaderboard NAME --html DIR``), or with the
    site's shared style and script files (``nav``: a page of the site)."""
    title = f"mvbench leaderboard {board.name}" + (" (smoke)" if smoke else "")
    return page(title, board_body(board, plots, threads=threads, smoke=smoke), nav=nav, linked=nav)


def plot_files(board: Leaderboard, folder: Path) -> dict[str, bytes]:
    """The board's PNG plots found in ``folder``: ``NAME_<dataset>.png`` by dataset, and the
    critical-difference diagrams of ``mvbench stats`` (``NAME_cd_<metric>.png``) by
    ``CD_PREFIX + metric``."""
    out = {}
    for dataset in dict.fromkeys(board.table["dataset"]):
        path = folder / f"{board.name}_{safe_name(dataset)}.png"
        if path.is_file():
            out[dataset] = path.read_bytes()
    for path in sorted(folder.glob(f"{board.name}_cd_*.png")):
        out[CD_PREFIX + path.stem.removeprefix(f"{board.name}_cd_")] = path.read_bytes()
    return out


# --- the reproduction report and the index -------------------------------------------------

_VERDICT_CSS = {REPRODUCED: "reproduced", BELOW: "below", ABOVE: "above"}
_NUMERIC_REPORT = {"paper", "ours (mean ± std)", "n", "ours − paper", "degenerate"}


def report_body(report: Report) -> str:
    counts = ", ".join(f"{n} {v}" for v, n in report.counts().items() if n)
    columns = [Column(h, numeric=h in _NUMERIC_REPORT) for h in TABLE_HEADERS]
    rows = []
    for row in report.rows:
        texts = table_cells(row)
        values = {"paper": _number_key(row.paper), "ours (mean ± std)": _number_key(row.mean),
                  "n": str(row.n), "ours − paper": _number_key(row.difference), "degenerate": str(row.degenerate)}
        rows.append([Cell(text, values.get(header), _VERDICT_CSS.get(text, "") if header == "verdict" else "")
                     for header, text in zip(TABLE_HEADERS, texts)])
    items = "".join(f"<li>{inline_markdown(sentence)}</li>" for sentence in definitions(report))
    boards = "".join(f"<dt>{inline_markdown(name)}</dt><dd>{inline_markdown(text)}</dd>"
                     for name, text in board_lines(report))
    return "\n".join([
        "<h1>Reproduction report</h1>",
        "<p>Every published number that a leaderboard cell carries, beside ours (the same data as "
        "<code>leaderboards/REPRODUCTION.md</code>, written by <code>mvbench report</code>). The boards "
        "read, and what their numbers were computed with:</p>",
        f'<dl class="provenance">{boards}</dl>',
        f"<ul>{items}</ul>",
        f"<h2>{len(report.rows)} published numbers: {escape(counts) or 'none yet'}</h2>",
        html_table(columns, rows) if rows else "<p>No board has a finished cell with a published number yet.</p>",
    ])


@dataclass(frozen=True)
class BoardEntry:
    """A board the site shows, with what its index line needs."""

    board: Leaderboard
    threads: str
    smoke: bool


def _all_provenance(entries: Sequence[BoardEntry]) -> list[tuple[str, str]]:
    """The provenance of all boards together; the thread setting is each board's own."""
    if not entries:
        return [("boards", "none aggregated yet")]
    items = provenance(pd.concat([e.board.table for e in entries]))
    return [items[0], ("threads", "each board's own setting (below)"), *items[1:]]


def index_body(entries: Sequence[BoardEntry], report: Report, pending: Sequence[str]) -> str:
    def listing(items: Sequence[BoardEntry]) -> str:
        facts = [dict(provenance(e.board.table, e.threads)) for e in items]
        columns = [Column("board"), Column("description"), Column("cells", numeric=True),
                   Column("ok trials", numeric=True), *[Column(label) for label in facts[0]]]
        rows = []
        for entry, fact in zip(items, facts):
            board, ok = entry.board, int(entry.board.table["n_seeds"].sum())
            rows.append([Cell(board.name, link=f"{board.name}.html"), Cell(board.meta.get("description", "")),
                         Cell(str(len(board.table)), str(len(board.table))), Cell(str(ok), str(ok)),
                         *[Cell(value) for value in fact.values()]])
        return html_table(columns, rows)

    boards = [e for e in entries if not e.smoke]
    smoke = [e for e in entries if e.smoke]
    counts = ", ".join(f"{n} {v}" for v, n in report.counts().items() if n) or "no published number matched yet"
    parts = ["<h1>mvbench leaderboards</h1>",
             "<p>Deep multi-view clustering methods on the same data, missing-view masks and seeds; "
             "mean ± std over seeds. Each board's page states the hardware, threads, precision, versions "
             "and commits its numbers come from.</p>",
             provenance_list(_all_provenance(entries)),
             f'<p><a href="{REPORT_PAGE}">Reproduction report</a>: {len(report.rows)} published numbers '
             f"beside ours ({escape(counts)}).</p>",
             "<h2>Leaderboards</h2>", listing(boards) if boards else "<p>No board has been aggregated yet.</p>"]
    if pending:
        parts.append("<p class=\"note\">Suites without an aggregated board yet: "
                     + ", ".join(f"<code>{escape(n)}</code>" for n in pending)
                     + " (<code>mvbench leaderboard NAME</code> once their sweep has records).</p>")
    if smoke:
        parts += ["<h2>Smoke suites (not leaderboards)</h2>", f'<p class="smoke">{escape(SMOKE_NOTE)}</p>',
                  listing(smoke)]
    return "\n".join(parts)


# --- the whole site ------------------------------------------------------------------------

def read_board(folder: Path, name: str) -> Leaderboard | None:
    """A committed board (``NAME.csv`` and its sidecar) in ``folder``; ``None`` without a CSV."""
    csv = folder / f"{name}.csv"
    if not csv.is_file():
        return None
    meta_path = folder / f"{name}.meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    return Leaderboard(name, read_leaderboard(csv), meta)


def build_site(folder: Path, registry: Registry) -> dict[str, str]:
    """The site's pages by file name, from the committed boards in ``folder`` (every suite but
    ``ci`` that has a CSV; smoke suites labelled as such) and the reproduction report."""
    entries, pending = [], []
    for path in suite_files(folder, smoke=True):
        if path.stem in (Path(INDEX_PAGE).stem, Path(REPORT_PAGE).stem):
            raise MvbenchError(f"suite {path.stem!r} has the name of a page of the site; rename {path}")
        board = read_board(folder, path.stem)
        if board is None:
            pending.append(path.stem)
            continue
        entries.append(BoardEntry(board, threads_text(load_suite(path, registry)), is_smoke(path.stem)))
    report = collect(folder, registry)
    pages = {INDEX_PAGE: page("mvbench leaderboards", index_body(entries, report, pending), nav=True, linked=True),
             REPORT_PAGE: page("mvbench reproduction report", report_body(report), nav=True, linked=True),
             STYLE_FILE: STYLE.lstrip(), SCRIPT_FILE: SCRIPT.lstrip()}
    for entry in entries:
        pages[f"{entry.board.name}.html"] = board_page(entry.board, plot_files(entry.board, folder),
                                                       threads=entry.threads, smoke=entry.smoke, nav=True)
    return pages


def differences(pages: Mapping[str, str], out_dir: Path) -> list[str]:
    """How ``out_dir`` differs from ``pages``: pages missing, changed, or not generated."""
    found = ({p.name for p in out_dir.iterdir() if p.suffix in (".html", ".css", ".js")}
             if out_dir.is_dir() else set())
    out = [f"{name}: missing" for name in sorted(pages.keys() - found)]
    out += [f"{name}: differs" for name in sorted(pages.keys() & found)
            if (out_dir / name).read_text(encoding="utf-8") != pages[name]]
    out += [f"{name}: not generated by mvbench site (delete it)" for name in sorted(found - pages.keys())]
    return out
