"""How fast `fair --help` answers (no torch, transformers or litellm on that path).

Prints the median of several runs; last line `RESULT help_seconds=<s>`.
"""

import statistics
import subprocess
import sys
import time


def main(runs: int = 7) -> None:
    cmd = [sys.executable, "-m", "fair_core.cli", "--help"]
    subprocess.run(cmd, capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    bare = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], capture_output=True, check=True)
        bare.append(time.perf_counter() - start)
    print(
        f"fair --help: median {statistics.median(times):.3f} s over {runs} runs "
        f"(bare python start: {statistics.median(bare):.3f} s)"
    )
    print(f"RESULT help_seconds={statistics.median(times):.3f}")


if __name__ == "__main__":
    main()
