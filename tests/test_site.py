"""The static web site (``mvbench site``, ``mvbench leaderboard NAME --html DIR``): what the pages
contain, that generation is deterministic and checked, and, in a real headless Chromium, that
each page loads without the network, sorts a column and highlights the best cells."""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from mvbench.commands.leaderboard import suite_board
from mvbench.leaderboard_render import write
from mvbench.results import append_record
from mvbench.site import INDEX_PAGE, REPORT_PAGE, SMOKE_NOTE, build_site
from mvbench.suite import load_suite
from run_helpers import kmeans_suite
from test_report import SUITE, records_for, registry_with_published

HIGHLIGHT = "rgb(199, 236, 201)"  # td.best in mvbench/site.py's style


@pytest.fixture(scope="module")
def boards(tmp_path_factory):
    """A leaderboards folder with a board (``paper``), a smoke board, ``ci`` (never shown) and
    a suite without a board yet, each board written by the leaderboard code with its plots."""
    folder = tmp_path_factory.mktemp("site") / "leaderboards"
    folder.mkdir()
    registry = registry_with_published(1)
    for name in ("paper", "smoke-paper", "ci", "pending"):
        (folder / f"{name}.toml").write_text(textwrap.dedent(SUITE.format(name=name)))
        if name == "pending":
            continue
        suite = load_suite(folder / f"{name}.toml", registry)
        records = records_for(suite, registry, 1, seed2={"degenerate": ["one cluster"]})
        for record in records:
            append_record(folder / "results" / name / "trials.jsonl", record)
        write(suite_board(suite, registry, records), folder, plots=True)
    return folder, registry


def test_pages_and_their_contents(boards):
    folder, registry = boards
    pages = build_site(folder, registry)
    assert sorted(pages) == sorted([INDEX_PAGE, REPORT_PAGE, "paper.html", "smoke-paper.html", "site.css", "site.js"])
    # The pages share one style and one script file (local, no network), not a copy each.
    assert all('<link rel="stylesheet" href="site.css">' in pages[p] and '<script src="site.js">' in pages[p]
               for p in pages if p.endswith(".html"))
    board = pages["paper.html"]
    for fact in ("<dt>hardware</dt><dd>test cpu (1 threads)</dd>", "<dt>threads</dt><dd>1 torch thread per trial",
                 "<dt>precision</dt><dd>fp32</dd>", "<dt>versions</dt><dd>mvbench 0.1.0; torch 2.x</dd>",
                 "<dt>commit</dt><dd>commit1</dd>", "<dt>seeds</dt><dd>0, 1, 2</dd>"):
        assert fact in board
    assert board.count("data:image/png;base64,") == 1 and SMOKE_NOTE not in board
    assert '<td class="num" data-value="3">3 (1 degenerate)</td>' in board
    assert '<td class="num" data-value="2">2 (1 failed)</td>' in board
    # The best ACC of the complete block is kmeans-raw's 0.795 (one seed), kmeans's 0.75 second.
    assert '<td class="num best" data-value="0.795000">0.7950</td>' in board
    assert '<td class="num second" data-value="0.750000">0.7500 ± 0.0500</td>' in board
    assert "http:" not in board and "https:" not in board  # nothing fetched from the network
    assert SMOKE_NOTE in pages["smoke-paper.html"]
    index = pages[INDEX_PAGE]
    assert '<a href="paper.html">paper</a>' in index and '<a href="smoke-paper.html">smoke-paper</a>' in index
    assert index.index("paper.html") < index.index("Smoke suites") < index.index("smoke-paper.html")
    assert "ci.html" not in index and "<code>pending</code>" in index
    report = pages[REPORT_PAGE]
    assert '<td class="reproduced">reproduced</td>' in report and '<td class="above">above paper</td>' in report
    assert "smoke-paper" not in report  # smoke boards are never in the report


def test_generation_is_deterministic_and_checked(boards, cli, monkeypatch, tmp_path):
    folder, registry = boards
    monkeypatch.setattr("mvbench.commands.site.registry_from", lambda args: registry)
    out = tmp_path / "site"
    code, printed, _ = cli("site", str(out), "--leaderboards", str(folder))
    assert code == 0 and "wrote 6 pages" in printed
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert cli("site", str(out), "--leaderboards", str(folder))[0] == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    code, printed, _ = cli("site", str(out), "--check", "--leaderboards", str(folder))
    assert code == 0 and "matches" in printed
    (out / "paper.html").write_text("edited")
    (out / "old-board.html").write_text("a board that no longer exists")
    code, printed, _ = cli("site", str(out), "--check", "--leaderboards", str(folder))
    assert code == 1 and "paper.html: differs" in printed and "old-board.html: not generated" in printed
    assert "run it and commit the result" in printed


def test_leaderboard_html_writes_one_self_contained_page(tmp_path, cli):
    folder = tmp_path / "leaderboards"
    folder.mkdir()
    (folder / "tiny.toml").write_text(kmeans_suite())
    assert cli("sweep", str(folder / "tiny.toml"), "-q")[0] == 0
    code, printed, _ = cli("leaderboard", str(folder / "tiny.toml"), "--html", str(tmp_path / "web"))
    assert code == 0 and "web/tiny.html" in printed and (folder / "tiny.csv").is_file()
    page = (tmp_path / "web" / "tiny.html").read_text()
    png = (folder / "tiny_synthetic.png").read_bytes()
    assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in page  # the board's own plot
    assert "torch&#x27;s default (the suite sets none)" in page and 'href="index.html"' not in page


# --- in a real browser ---------------------------------------------------------------------

class Chromium:
    """Headless Chromium driven through the DevTools protocol over a pipe
    (``--remote-debugging-pipe``: JSON messages ended by NUL on file descriptors 3 and 4)."""

    def __init__(self, binary: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="mvbench-chromium-")
        to_browser, self._to_browser = os.pipe()
        self._from_browser, from_browser = os.pipe()

        def descriptors() -> None:
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)

        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--remote-debugging-pipe", f"--user-data-dir={self.profile}", "about:blank"],
            preexec_fn=descriptors, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self.buffer, self.last_id, self.events = b"", 0, []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=1400, height=1000,
                  deviceScaleFactor=1, mobile=False)

    def call(self, method: str, *, session: bool = False, **params: Any) -> dict:
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._next()
            if reply.get("id") == self.last_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def _next(self, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self.buffer:
            if not select.select([self._from_browser], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError("chromium did not answer within 30 s")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)

    def open(self, path: Path) -> None:
        self.events.clear()
        self.call("Page.navigate", session=True, url=path.as_uri())
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._next())

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (pressed and released) at the middle of the element."""
        box = self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView();"
                      f" const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", session=True, type=kind, x=box[0], y=box[1], button="left",
                      clickCount=1)

    def screenshot(self, path: Path) -> None:
        self.js("window.scrollTo(0, 0)")
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    binary = next((b for b in ("chromium", "chromium-browser") if shutil.which(b)), None)
    if binary is None:
        pytest.skip("chromium is not installed: the browser test needs Debian's chromium "
                    "(apt-get install chromium; .ci/run installs it)")
    chromium = Chromium(binary)
    yield chromium
    chromium.close()


def _column(browser: Chromium, table: int, column: int) -> list:
    return browser.js(f"Array.from(document.querySelectorAll('table.sortable')[{table}].tBodies[0].rows)"
                      f".map(r => r.cells[{column}].getAttribute('data-value') ?? r.cells[{column}].textContent)")


# (page, table, column to sort, its title); numbers sort as numbers.
SORTS = [("paper.html", 0, 5, "ACC"), ("smoke-paper.html", 0, 6, "NMI"), (REPORT_PAGE, 0, 8, "ours − paper"),
         (INDEX_PAGE, 0, 3, "ok trials")]


@pytest.mark.parametrize("name, table, column, title", SORTS)
def test_each_page_loads_offline_sorts_and_highlights_in_chromium(boards, browser, tmp_path, name, table, column,
                                                                  title):
    folder, registry = boards
    site = tmp_path / "site"
    site.mkdir()
    for page, text in build_site(folder, registry).items():
        (site / page).write_text(text, encoding="utf-8")
    browser.open(site / name)
    requests = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    assert all(url.startswith(("file:", "data:")) for url in requests), requests  # no network needed
    assert not [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"]
    header = f"(document.querySelectorAll('table.sortable')[{table}].tHead.rows[0].cells[{column}])"
    assert browser.js(f"{header}.textContent") == title
    before = _column(browser, table, column)
    browser.js(f"{header}.id = 'sort-me'")
    browser.click("#sort-me")
    ascending = [float(v) for v in _column(browser, table, column) if v not in ("", None)]
    assert ascending == sorted(float(v) for v in before if v not in ("", None))
    assert browser.js(f"{header}.getAttribute('aria-sort')") == "ascending"
    browser.screenshot(tmp_path / f"{name}.png")  # sorted ascending; looked at by hand once
    browser.click("#sort-me")
    assert [float(v) for v in _column(browser, table, column) if v not in ("", None)] == ascending[::-1]
    assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if name.endswith("paper.html"):
        # The best cell of the complete block stays highlighted whatever the order.
        best = browser.js("Array.from(document.querySelectorAll('td.best')).map(td => "
                          "[td.textContent, getComputedStyle(td).backgroundColor, getComputedStyle(td).fontWeight])")
        assert ["0.7950", HIGHLIGHT, "700"] in best
        restore = "(document.querySelectorAll('table.sortable')[0].tHead.rows[0].cells[0])"
        browser.js(f"{restore}.id = 'restore'")
        browser.click("#restore")
        assert _column(browser, 0, 0) == [str(i) for i in range(1, len(before) + 1)]
        assert browser.js("document.querySelector('table.sortable').classList.contains('sorted')") is False
        assert browser.js("document.querySelector('img').naturalWidth") > 500  # the inlined plot decoded


def test_a_boards_critical_difference_diagram_is_on_its_page(boards):
    folder, registry = boards
    png = Path(__file__).resolve().parents[1] / "leaderboards" / "ci_synthetic.png"
    (folder / "paper_cd_acc.png").write_bytes(png.read_bytes())
    page = build_site(folder, registry)["paper.html"]
    assert '<h2 id="statistics">Statistics</h2>' in page
    assert 'alt="critical-difference diagram (acc)"' in page
    assert base64.b64encode(png.read_bytes()).decode("ascii") in page
    (folder / "paper_cd_acc.png").unlink()
    assert "Statistics" not in build_site(folder, registry)["paper.html"]
