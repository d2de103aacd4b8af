"""Environment that deterministic CUDA kernels need before CUDA starts in a process.

Kept free of torch imports, so that the CLI can apply it first thing at import.
"""

from __future__ import annotations

import os

# cuBLAS's deterministic workspace; read once, when CUDA starts in a process.
CUBLAS_WORKSPACE_CONFIG = ":4096:8"


def configure_cublas() -> None:
    """Ask cuBLAS for deterministic kernels in this process and the processes it starts (a
    value already set is kept). Called at import of the CLI and of the worker entry point,
    before anything can start CUDA: set after CUDA started, it has no effect."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)
