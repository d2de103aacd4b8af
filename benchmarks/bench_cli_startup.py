"""Wall time of ``mvbench --help``, ``mvbench --version`` and ``mvbench list methods`` (which
imports torch), each the median of several fresh processes.

    python benchmarks/bench_cli_startup.py [--repeat 7]

``--help`` and ``--version`` import no command module (so no torch, pandas or matplotlib) and
should answer well under a second; ``list`` shows what a command that loads the plugins costs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = (["--help"], ["--version"], ["list", "methods"])


def seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mvbench.cli", *argv], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for argv in COMMANDS:
        times = [seconds(argv) for _ in range(args.repeat)]
        print(f"mvbench {' '.join(argv):<14} median {statistics.median(times):.3f} s "
              f"(min {min(times):.3f}, max {max(times):.3f}, {args.repeat} runs)")


if __name__ == "__main__":
    main()
