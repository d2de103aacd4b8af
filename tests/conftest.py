from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

from mvbench.cli import main

# No test may touch the network: an absent registry dataset is an error, never a download, in
# this process and every process it starts. Download tests unset it and serve files locally.
os.environ["MVBENCH_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("MVBENCH_DATA") or REPO.parent / "shared" / "datasets")


@pytest.fixture
def shared_data() -> Path:
    """The real benchmark files; tests that need them skip when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (set MVBENCH_DATA to the folder)")
    return SHARED_DATA


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests use tiny models, which run fastest (and steadiest on a shared machine) on one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def server(tmp_path, monkeypatch):
    """An HTTP server on 127.0.0.1 serving tmp_path/served; yields (folder, base URL, the paths
    requested so far)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    served = tmp_path / "served"
    served.mkdir()
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            requested.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}", requested
    httpd.shutdown()
    httpd.server_close()
