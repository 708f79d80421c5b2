"""How long `actionrt --help` takes beyond a bare `python -c pass`, over repeated runs.

    uv run python bench/cli_startup.py            # 20 runs of each, interleaved
    uv run python bench/cli_startup.py -n 50 --importtime   # and the slowest imports of --help

Runs interleave (pass, --help, -m actionrt --help, pass, ...) so a change in the machine's speed
hits each alike; the figures are the median and the best run, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = str(Path(sys.executable).parent / "actionrt")
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "actionrt --help": [SCRIPT, "--help"],
    "python -m actionrt --help": [sys.executable, "-m", "actionrt", "--help"],
    "actionrt validate examples": [SCRIPT, "validate", "examples"],
}


def measure(runs: int) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):
        for name, command in COMMANDS.items():
            started = time.perf_counter()
            subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            seconds[name].append(time.perf_counter() - started)
    return seconds


def slowest_imports(limit: int = 12) -> list[tuple[int, str]]:
    """(cumulative µs, module) of the slowest top-level imports of `actionrt --help`."""
    probe = "import sys; sys.argv=['actionrt','--help']\nfrom actionrt.__main__ import main\nmain()"
    lines = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", probe], capture_output=True, text=True, check=False
    ).stderr.splitlines()
    rows = []
    for line in lines:
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        if cumulative.strip().isdigit() and not name.startswith("   "):  # top-level only
            rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=20)
    parser.add_argument("--importtime", action="store_true", help="also list the slowest imports")
    options = parser.parse_args()
    seconds = measure(options.runs)
    bare = statistics.median(seconds["python -c pass"])
    print(f"{options.runs} runs each, interleaved; milliseconds")
    print(f"{'command':<30} {'median':>8} {'best':>8} {'median - bare python':>22}")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name:<30} {median * 1000:8.1f} {min(values) * 1000:8.1f} {(median - bare) * 1000:22.1f}")
    if options.importtime:
        print("\nslowest top-level imports of `actionrt --help` (cumulative µs):")
        for micros, name in slowest_imports():
            print(f"{micros:>10}  {name}")


if __name__ == "__main__":
    main()
