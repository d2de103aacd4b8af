"""Seeds: one trial seed drives every random choice; derived seeds come from stable hashes."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import numpy as np
import torch

from mvbench.determinism import configure_cublas


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from a stable hash of JSON-serialisable parts (order of dict keys ignored)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big") >> 1


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) and ask torch for deterministic kernels."""
    configure_cublas()  # for library use without the CLI; effective only if CUDA has not started
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
