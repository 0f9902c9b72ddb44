#!/usr/bin/python3
"""peak_rss.py: run one command and record its peak resident set size (what GNU time's %M gives,
without needing GNU time).

    /usr/bin/python3 bench/tools/peak_rss.py FILE -- COMMAND [ARGS...]

Runs COMMAND with this process's stdin, stdout, stderr and environment, waits for it, writes its peak
RSS in KiB (getrusage(RUSAGE_CHILDREN).ru_maxrss: the largest of this process's waited-for
descendants, here COMMAND itself, or a child of it that was larger) as one line to FILE, and exits
with COMMAND's status. The wrapper's own memory is not counted. A process that re-executes itself
(bench_models' OpenBLAS restart, kernels/gemm.h) keeps its pid, so its peak is counted too.
"""
import resource
import subprocess
import sys


def main(argv):
    if len(argv) < 4 or argv[2] != "--":
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    out, command = argv[1], argv[3:]
    rc = subprocess.call(command)
    kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    with open(out, "w") as f:
        f.write(f"{kib}\n")
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
