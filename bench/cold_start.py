"""Cold start of every function in ``template.yaml``: what a user waits for on a cold sandbox.

* **Import time**: each handler module (found through the template's ``CodeUri`` +
  ``Handler``) imported in a fresh Python process with the function's environment, timed
  around the import alone (interpreter start-up excluded), median of ``--runs`` runs;
  beside a bare ``import boto3`` measured the same way in the same run. Targets:
  ``OnOrderUpdateFunction`` <= 2x boto3, ``ConsultAiFunction`` <= 5x boto3. Runs are
  interleaved (one of each target per round) so background load spreads evenly. The
  ``.pyc`` files are warm (one unmeasured run first); Lambda compiles the sources of the
  function and the shared layer on every cold start, which the figures do not include.
  The same without any ``.pyc`` (``no_pyc_median_ms``, half the runs): what a cold
  start pays when the layers ship none, as ``sam build`` alone leaves them (the stdlib is
  compiled too here, so it is an upper bound); ``make build`` precompiles them.
* **What Powertools Tracer would add**: in the same rounds, a fresh process imports the
  order-update handler (untimed: what the function loads anyway), then the timed part
  imports Tracer (the X-Ray SDK) and builds one, as a traced handler would at module
  level (``Tracer()`` patches botocore). Recorded as ``details.tracer``; the deployed
  functions carry no Tracer (the README says why), so this is the price of adding one.
* **Heavy modules loaded**: which of boto3, pynamodb, python-binance, aiohttp, openai...
  the import pulled in (the order-update handler must load neither binance nor openai).
* **Where the time goes**: ``python -X importtime`` self time summed per top-level package.
* **Deployment size**: the function's ``CodeUri`` + each layer it uses. A layer whose
  content folder has a ``requirements.txt`` is measured as pip would install it, from
  this environment's ``site-packages`` (the wheels' files, no ``.pyc``, dependencies
  resolved for python3.12 on linux/aarch64; no network); other layers as their folder.
  Unzipped against Lambda's 250 MB limit, and deflated (an estimate of the zip).

``python -m bench.cold_start [--runs N]``; writes ``bench/results/cold_start.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import zlib
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import ROOT, median, table, write_result

TEMPLATE = ROOT / "template.yaml"
BASELINE = "boto3"
TARGETS = {"OnOrderUpdateFunction": 2.0, "ConsultAiFunction": 5.0}
HEAVY_MODULES = (
    "boto3",
    "botocore",
    "pynamodb",
    "pydantic",
    "binance",
    "aiohttp",
    "openai",
    "httpx",
    "aws_xray_sdk",
    "cfnlint",
    "moto",
)
LAMBDA_UNZIPPED_LIMIT_MB = 250.0
# Marker environment of the deployed runtime (python3.12, arm64), not of this machine.
TARGET_MARKERS = {
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
}
_SKIP_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}

# Runs in the fresh process: argv[1] is {"path": dir or "", "module": ..., "attr": ...,
# "after": a module imported first, untimed, or "", "call": whether attr is called, timed}.
_PROBE = r"""
import importlib, json, sys, time
spec = json.loads(sys.argv[1])
if spec["path"]:
    sys.path.insert(0, spec["path"])  # Lambda puts the task root (CodeUri) first
if spec["after"]:
    importlib.import_module(spec["after"])
started = time.perf_counter()
module = importlib.import_module(spec["module"])
if spec["call"]:
    getattr(module, spec["attr"])()
elapsed = time.perf_counter() - started
if spec["attr"]:
    getattr(module, spec["attr"])
heavy = json.loads(sys.argv[2])
print(json.dumps({"seconds": elapsed, "loaded": [m for m in heavy if m in sys.modules]}))
"""


@dataclass(frozen=True)
class Target:
    label: str
    path: str  # directory put first on sys.path ("" for the baseline)
    module: str
    attr: str
    env: Mapping[str, str]
    after: str = ""  # imported first, untimed
    call: bool = False  # call ``attr`` inside the timed part


TRACER_HOST = "OnOrderUpdateFunction"  # the function whose cold start runs on every fill
TRACER = f"Tracer after {TRACER_HOST}"


# --------------------------------------------------------------------------- imports
def targets(template_path: Path = TEMPLATE) -> list[Target]:
    """The baseline and one target per function of the template, with its environment."""
    from flipbot_dev.twin.template import load_template, resolve_environment

    template = load_template(template_path)
    refs = _placeholder_refs(template.parameters, template.resources)
    attrs = {
        (logical_id, attr): f"arn:aws:placeholder:{logical_id}:{attr}"
        for logical_id in template.resources
        for attr in ("Arn", "Name")
    }
    base_env = _lambda_env()
    found = [Target(BASELINE, "", "boto3", "", base_env)]
    for logical_id, fn in sorted(template.functions.items()):
        env = resolve_environment(fn.environment, refs, attrs, template.conditions)
        module, _, attr = fn.handler.rpartition(".")
        found.append(
            Target(
                logical_id,
                str(fn.code_uri),
                module,
                attr,
                {**base_env, **env, "AWS_LAMBDA_FUNCTION_NAME": logical_id},
            )
        )
    host = next(t for t in found if t.label == TRACER_HOST)
    found.append(
        Target(
            TRACER,
            host.path,
            "aws_lambda_powertools",
            "Tracer",
            host.env,
            after=host.module,
            call=True,
        )
    )
    return found


def _placeholder_refs(
    parameters: Mapping[str, str], resources: Mapping[str, Any]
) -> dict[str, str]:
    refs = {logical_id: f"placeholder-{logical_id}" for logical_id in resources}
    refs.update(parameters)
    refs.update(
        {
            "AWS::StackName": "flipbot",
            "AWS::Region": "us-east-1",
            "AWS::AccountId": "123456789012",
            "AWS::Partition": "aws",
        }
    )
    return refs


def _lambda_env() -> dict[str, str]:
    """This process's environment (PATH, the venv) plus what the Lambda runtime sets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.pop("PYTHONPATH", None)
    env.update({"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"})
    return env


def probe(
    target: Target, *, importtime: bool = False, pycache: str | None = None
) -> tuple[dict[str, Any], str]:
    """Import the target in a fresh interpreter; return its report and ``-X importtime`` text.

    ``pycache``: an empty folder to look for ``.pyc`` files in (``PYTHONPYCACHEPREFIX``),
    so that every module is compiled from source, as from a layer that ships none.
    """
    env = dict(target.env)
    if pycache is not None:
        env.update({"PYTHONPYCACHEPREFIX": pycache, "PYTHONDONTWRITEBYTECODE": "1"})
    spec = json.dumps(
        {
            "path": target.path,
            "module": target.module,
            "attr": target.attr,
            "after": target.after,
            "call": target.call,
        }
    )
    command = [
        sys.executable,
        *(["-X", "importtime"] if importtime else []),
        "-c",
        _PROBE,
        spec,
        json.dumps(HEAVY_MODULES),
    ]
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=target.path or ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{target.label}: import failed:\n{done.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report, done.stderr


_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s+)(\S+)")


def import_breakdown(stderr: str, top: int = 6) -> dict[str, float]:
    """``-X importtime`` self time (ms) summed per top-level package, largest first."""
    per_package: dict[str, float] = defaultdict(float)
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            per_package[match.group(4).split(".")[0]] += int(match.group(1)) / 1000
    ranked = sorted(per_package.items(), key=lambda item: -item[1])[:top]
    return {name: round(ms, 1) for name, ms in ranked}


def measure_imports(found: Sequence[Target], runs: int) -> dict[str, dict[str, Any]]:
    """Median import time (ms) per target over ``runs`` interleaved rounds."""
    samples: dict[str, list[float]] = {t.label: [] for t in found}
    loaded: dict[str, list[str]] = {}
    breakdown: dict[str, dict[str, float]] = {}
    for target in found:  # warm the .pyc files; record where the time goes
        report, stderr = probe(target, importtime=True)
        loaded[target.label] = report["loaded"]
        breakdown[target.label] = import_breakdown(stderr)
    for _ in range(runs):
        for target in found:
            report, _stderr = probe(target)
            samples[target.label].append(report["seconds"] * 1000)
    uncompiled: dict[str, list[float]] = {t.label: [] for t in found}
    with tempfile.TemporaryDirectory(prefix="flipbot-no-pyc-") as empty:
        for _ in range(max(1, runs // 2)):
            for target in found:
                report, _stderr = probe(target, pycache=empty)
                uncompiled[target.label].append(report["seconds"] * 1000)
    return {
        label: {
            "median_ms": round(median(values), 1),
            "samples_ms": [round(v, 1) for v in values],
            "no_pyc_median_ms": round(median(uncompiled[label]), 1),
            "loaded": loaded[label],
            "self_ms_by_package": breakdown[label],
        }
        for label, values in samples.items()
    }


# --------------------------------------------------------------------------- sizes
@dataclass
class Size:
    files: int = 0
    bytes: int = 0
    deflated: int = 0

    def add(self, path: Path) -> None:
        data = path.read_bytes()
        self.files += 1
        self.bytes += len(data)
        # zip entry: the deflated data plus headers (local + central, ~ 100 bytes)
        self.deflated += min(len(zlib.compress(data, 6)), len(data)) + 100 + 2 * len(path.name)

    def __add__(self, other: Size) -> Size:
        return Size(
            self.files + other.files, self.bytes + other.bytes, self.deflated + other.deflated
        )


def _walk(directory: Path, *, built: bool = False) -> Iterator[Path]:
    """Files of a source folder (no caches, no ``.pyc``), or all of a built one."""
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        if built:
            yield path
            continue
        relative = path.relative_to(directory).parts
        if any(p in _SKIP_PARTS or p.endswith(".egg-info") for p in relative):
            continue
        if path.suffix != ".pyc":
            yield path


def folder_size(directory: Path, *, built: bool = False) -> Size:
    size = Size()
    for path in _walk(directory, built=built):
        size.add(path)
    return size


def requirements_closure(
    requirements_file: Path,
) -> tuple[dict[str, metadata.Distribution], list[str]]:
    """Installed distributions a requirements file needs (transitively), and those missing."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pending: list[tuple[Requirement, str]] = []
    for raw in requirements_file.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            pending.append((Requirement(line), ""))
    found: dict[str, metadata.Distribution] = {}
    visited: set[tuple[str, str]] = set()
    missing: list[str] = []
    while pending:
        requirement, parent_extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate(
            {**TARGET_MARKERS, "extra": parent_extra}
        ):
            continue
        name = canonicalize_name(requirement.name)
        extras = sorted(requirement.extras) or [""]
        if all((name, extra) in visited for extra in extras):
            continue
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            missing.append(str(requirement))
            continue
        found[name] = dist
        for extra in extras:
            if (name, extra) in visited:
                continue
            visited.add((name, extra))
            # markers (python version, platform, ``extra == ...``) are evaluated when popped
            pending.extend((Requirement(dep), extra) for dep in dist.requires or [])
    return found, sorted(set(missing))


def distributions_size(dists: Mapping[str, metadata.Distribution]) -> Size:
    """The installed files of these distributions inside site-packages (no ``.pyc``)."""
    size = Size()
    for dist in dists.values():
        root = Path(str(dist.locate_file(""))).resolve()
        for file in dist.files or []:
            path = Path(str(dist.locate_file(file))).resolve()
            if path.suffix == ".pyc" or not path.is_relative_to(root) or not path.is_file():
                continue
            size.add(path)
    return size


def deployment_sizes(template_path: Path = TEMPLATE) -> dict[str, Any]:
    """Unzipped and deflated size of every function with its layers (MB)."""
    from cfnlint.decode import cfn_yaml

    from flipbot_dev.twin.template import load_template

    template = load_template(template_path)
    base = template.path.parent
    built = base / ".aws-sam" / "build"  # what `make build` made, deployed as is
    raw = template.resources
    layer_sizes: dict[str, Size] = {}
    layer_notes: dict[str, Any] = {}
    for logical_id, resource in raw.items():
        if resource.get("Type") != "AWS::Serverless::LayerVersion":
            continue
        content = base / str(resource["Properties"]["ContentUri"])
        requirements = content / "requirements.txt"
        if (built / logical_id).is_dir():
            layer_sizes[logical_id] = folder_size(built / logical_id, built=True)
            layer_notes[logical_id] = {"measured_from": f".aws-sam/build/{logical_id}"}
        elif requirements.is_file():
            dists, missing = requirements_closure(requirements)
            layer_sizes[logical_id] = distributions_size(dists)
            layer_notes[logical_id] = {
                "measured_from": "site-packages (requirements.txt, python3.12 markers)",
                "distributions": sorted(
                    f"{d.metadata['Name']}=={d.version}" for d in dists.values()
                ),
                "not_installed_here": missing,
            }
        else:
            layer_sizes[logical_id] = folder_size(content)
            layer_notes[logical_id] = {"measured_from": str(content.relative_to(base))}
    doc = cfn_yaml.load(str(template.path))
    globals_layers = _layer_refs(((doc.get("Globals") or {}).get("Function") or {}).get("Layers"))
    functions: dict[str, Any] = {}
    for logical_id, fn in sorted(template.functions.items()):
        own = _layer_refs(raw[logical_id]["Properties"].get("Layers"))
        layers = own or globals_layers
        code = (
            folder_size(built / logical_id, built=True)
            if (built / logical_id).is_dir()
            else folder_size(fn.code_uri)
        )
        total = code
        for layer in layers:
            total = total + layer_sizes.get(layer, Size())
        functions[logical_id] = {
            "code_kb": round(code.bytes / 1024, 1),
            "layers": layers,
            "unzipped_mb": round(total.bytes / 2**20, 1),
            "zipped_mb": round(total.deflated / 2**20, 1),
            "files": total.files,
            "of_lambda_limit": round(total.bytes / 2**20 / LAMBDA_UNZIPPED_LIMIT_MB, 3),
        }
    return {
        "functions": functions,
        "layers": {
            name: {
                "unzipped_mb": round(s.bytes / 2**20, 2),
                "zipped_mb": round(s.deflated / 2**20, 2),
                "files": s.files,
                **layer_notes[name],
            }
            for name, s in layer_sizes.items()
        },
        "lambda_unzipped_limit_mb": LAMBDA_UNZIPPED_LIMIT_MB,
    }


def _layer_refs(value: Any) -> list[str]:
    refs = []
    for item in value or []:
        if isinstance(item, dict) and "Ref" in item:
            refs.append(str(item["Ref"]))
    return refs


# --------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="runs per import (median; default 7)")
    args = parser.parse_args([] if argv is None else list(argv))

    found = targets()
    imports = measure_imports(found, max(1, args.runs))
    figures = {label: data["median_ms"] for label, data in imports.items()}
    sizes = deployment_sizes()
    host_ms, tracer_ms = figures[TRACER_HOST], figures[TRACER]
    tracer = {
        "added_ms": tracer_ms,
        "function": TRACER_HOST,
        "function_ms": host_ms,
        "function_with_tracer_x_boto3": round((host_ms + tracer_ms) / figures[BASELINE], 3),
        "target_x_boto3": TARGETS[TRACER_HOST],
    }
    path = write_result(
        "cold_start",
        figures,
        unit="ms (median import time in a fresh process)",
        baseline=BASELINE,
        targets=TARGETS,
        details={"runs": args.runs, "imports": imports, "deployment": sizes, "tracer": tracer},
    )
    result = json.loads(path.read_text(encoding="utf-8"))
    rows = []
    for label in sorted(figures, key=lambda k: (k != BASELINE, k)):
        target = TARGETS.get(label)
        within = result.get("within_target", {}).get(label)
        verdict = "" if target is None else ("ok" if within else "OVER")
        heavy = [m for m in imports[label]["loaded"] if m not in ("botocore", "pydantic")]
        rows.append(
            [
                label,
                f"{figures[label]:.0f}",
                f"{result['ratios'][label]:.2f}",
                "" if target is None else f"<= {target:g}",
                verdict,
                f"{imports[label]['no_pyc_median_ms']:.0f}",
                ", ".join(heavy),
            ]
        )
    print(table(["import", "ms", "x boto3", "target", "", "no .pyc ms", "loads"], rows))
    print()
    size_rows = [
        [
            label,
            f"{data['code_kb']:.1f}",
            f"{data['unzipped_mb']:.1f}",
            f"{data['zipped_mb']:.1f}",
            f"{100 * data['of_lambda_limit']:.0f}%",
        ]
        for label, data in sizes["functions"].items()
    ]
    print(table(["deployment", "code KB", "+ layers MB", "zipped MB", "of 250 MB"], size_rows))
    for name, layer in sizes["layers"].items():
        print(
            f"  {name}: {layer['unzipped_mb']:.1f} MB unzipped, {layer['zipped_mb']:.1f} MB "
            f"zipped, {layer['files']} files ({layer['measured_from']})"
        )
    print(
        f"Tracer would add {tracer_ms:.0f} ms to {TRACER_HOST}'s {host_ms:.0f} ms: "
        f"{tracer['function_with_tracer_x_boto3']:.2f}x boto3 (target <= {TARGETS[TRACER_HOST]:g})"
    )
    print(f"results: {path.relative_to(ROOT)}")
    over = [label for label, ok in result.get("within_target", {}).items() if not ok]
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
