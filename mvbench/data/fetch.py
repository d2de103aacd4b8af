"""Dataset files: finding them in the data directory, checking their sha256, downloading them.

Downloads go through pooch, which writes to a temporary file beside the target and renames it
only after the checksum matched, so an interrupted or corrupt download never leaves a file
under the final name. An absent file that has a URL and a checksum is downloaded on first use
(:func:`find_or_fetch`) unless ``$MVBENCH_OFFLINE`` is set (the CLI's ``--offline`` sets it).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pooch
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from mvbench.console import err_console
from mvbench.data.datadir import describe_search, resolve_data_dir
from mvbench.errors import MvbenchError

SUBFOLDERS = ("", "incomplete")
OFFLINE_ENV = "MVBENCH_OFFLINE"
# pooch logs each download on stderr at INFO; the progress bar (DownloadBar) says it already, and
# errors reach the user as one line.
pooch.get_logger().setLevel("WARNING")
_HASHES: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, cached in memory by (path, size, mtime) so reloads are free."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def locate(file_name: str, data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The file in the data directory or its ``incomplete/`` subfolder, or None."""
    root = resolve_data_dir(data_dir)
    for sub in SUBFOLDERS:
        candidate = root / sub / file_name
        if candidate.is_file():
            return candidate
    return None


def verify_file(path: Path, expected: str | None, dataset: str) -> None:
    """Raise when the file's sha256 differs from ``expected`` (no check when it is unknown)."""
    if expected and sha256_file(path) != expected.lower():
        raise MvbenchError(
            f"{path} does not match the sha256 of dataset {dataset!r} (expected {expected[:12]}..., "
            f"found {sha256_file(path)[:12]}...); replace it with `mvbench datasets fetch {dataset}`, "
            f"or load it anyway with --set verify=false")


def offline() -> bool:
    """Whether automatic downloads are off: ``$MVBENCH_OFFLINE`` set to anything but 0/false/no."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def missing_file_message(dataset: str, file_name: str, urls: Sequence[str], source: str,
                         data_dir: str | os.PathLike[str] | None) -> str:
    """Why a dataset cannot be loaded and the two ways to get its file."""
    where = resolve_data_dir(data_dir)
    how = (f"run `mvbench datasets fetch {dataset}`, or download {urls[0]} by hand"
           if urls else f"it has no download URL: get it from {source or 'its distributors'}")
    why = (f" (automatic downloads are off: --offline or ${OFFLINE_ENV})" if urls and offline() else "")
    return (f"dataset {dataset!r} needs {file_name}, which is not there{why}: {describe_search(data_dir)}; "
            f"{how} and put it in {where}")


def find_or_fetch(file_name: str, sha256: str | None, urls: Sequence[str], dataset: str, source: str,
                  data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The dataset's file in the data directory. An absent file is downloaded and checksummed
    first when it has a URL and a known sha256 and downloads are not off (:func:`offline`);
    otherwise, or when the download fails, a one-line error says what is missing, where mvbench
    looked and how to get it."""
    present = locate(file_name, data_dir)
    if present is not None:
        return present
    message = missing_file_message(dataset, file_name, urls, source, data_dir)
    if not urls or not sha256 or offline():
        raise MvbenchError(message)
    try:
        return fetch_file(file_name, sha256, urls, dataset, data_dir)
    except MvbenchError as exc:
        raise MvbenchError(f"{message}; the automatic download failed: {exc}") from None


def fetch_file(file_name: str, sha256: str | None, urls: Sequence[str], dataset: str,
               data_dir: str | os.PathLike[str] | None = None, progress: bool = True) -> Path:
    """Download ``file_name`` into the data directory from the first URL that works.

    Refuses to download without a known checksum. A file already present with the right
    checksum is returned as it is.
    """
    if not urls:
        raise MvbenchError(f"dataset {dataset!r} has no download URL; put {file_name} into "
                           f"{resolve_data_dir(data_dir)} by hand")
    if not sha256:
        raise MvbenchError(f"dataset {dataset!r} has no known sha256, so a download could not be "
                           f"verified; put {file_name} into {resolve_data_dir(data_dir)} by hand")
    present = locate(file_name, data_dir)
    if present is not None and sha256_file(present) == sha256:
        return present
    target = resolve_data_dir(data_dir)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MvbenchError(f"cannot create the data directory {target} ({exc}); "
                           f"choose another with --data-dir") from None
    if not os.access(target, os.W_OK):
        raise MvbenchError(f"cannot write to the data directory {target}; choose another with --data-dir")
    failures = []
    for url in urls:
        bar = DownloadBar(file_name) if progress else None
        try:
            return Path(pooch.retrieve(url, known_hash=f"sha256:{sha256}", fname=file_name, path=target,
                                       downloader=pooch.HTTPDownloader(progressbar=bar or False)))
        except ValueError as exc:  # pooch's checksum mismatch
            failures.append(f"{url}: {str(exc).splitlines()[0]}")
        except Exception as exc:  # network and HTTP errors from requests
            failures.append(f"{url}: {type(exc).__name__}: {exc}")
        finally:
            if bar is not None:
                bar.close()  # pooch closes it only after a complete download
    raise MvbenchError(f"could not download {file_name} for dataset {dataset!r}: {'; '.join(failures)}")


class DownloadBar:
    """A rich progress bar (on stderr) in the shape pooch expects of a custom one: pooch sets
    ``total`` once the server answers (the bar appears then), then calls ``update``, ``reset``
    and ``close``; closing twice is harmless."""

    def __init__(self, file_name: str) -> None:
        self._progress = Progress(TextColumn(f"downloading {file_name}"), BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), TimeRemainingColumn(), console=err_console)
        self._task = self._progress.add_task("download", total=None)

    @property
    def total(self) -> float | None:
        return self._progress.tasks[0].total

    @total.setter
    def total(self, value: Any) -> None:
        self._progress.update(self._task, total=value or None)  # 0: the server sent no length
        self._progress.start()

    def update(self, size: int) -> None:
        self._progress.advance(self._task, size)

    def reset(self) -> None:
        self._progress.reset(self._task, total=self.total)

    def close(self) -> None:
        self._progress.stop()
