"""Run every benchmark module's ``main()``: ``python -m bench [name ...]``.

A benchmark is any ``bench/<name>.py`` (other than this runner and ``common``) that
defines ``main()``, or ``main(argv)``, called with an empty list (its defaults). They run
one after another, in name order, so they do not compete for the machine's cores; the
exit status is the first non-zero one returned.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

NOT_BENCHMARKS = {"__main__", "common"}


def discover() -> list[str]:
    """Names of the benchmark modules in this package."""
    here = Path(__file__).resolve().parent
    return sorted(
        info.name
        for info in pkgutil.iter_modules([str(here)])
        if not info.ispkg and info.name not in NOT_BENCHMARKS and not info.name.startswith("_")
    )


def main(argv: Sequence[str] | None = None) -> int:
    wanted = list(sys.argv[1:] if argv is None else argv)
    available = discover()
    unknown = [name for name in wanted if name not in available]
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}",
            file=sys.stderr,
        )
        return 2
    status = 0
    for name in wanted or available:
        module = importlib.import_module(f"bench.{name}")
        run = getattr(module, "main", None)
        if run is None:
            continue
        print(f"== bench.{name}", flush=True)
        started = time.perf_counter()
        # a main(argv) gets no arguments: it must not parse this runner's command line
        result = run([]) if inspect.signature(run).parameters else run()
        print(f"== bench.{name}: {time.perf_counter() - started:.1f} s", flush=True)
        if isinstance(result, int) and result and not status:
            status = result
    return status


if __name__ == "__main__":
    sys.exit(main())
