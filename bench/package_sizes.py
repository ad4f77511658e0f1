"""What ships, in bytes: the SharedLayer and the listener image, now and at a baseline.

The SharedLayer is measured as ``sam build`` copies it (``template.yaml``'s
``ContentUri`` folder, build artifacts left out): files, bytes, and the deflated size of
its zip. The listener image's part that the project controls is its virtual environment:
the Dockerfile's install step is performed in a fresh venv (``pip install
"<project>[listener]"``, the package index must be reachable) and the venv's
``site-packages`` is measured. The base image (python:3.11-slim) is the same before and
after and is left out.

The baseline is the last revision before the runtime and development packages were
split (:data:`BASELINE`), checked out with ``git worktree`` and measured in the same run,
where the image installed the whole package with every runtime dependency.

``python -m bench package_sizes [--baseline REV] [--no-image]``
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.cold_start import Size, folder_size
from bench.common import ROOT, write_result

#: the revision before the split (the whole package in the layer and the image)
BASELINE = "7756492"


def layer_size(project: Path) -> Size:
    from cfnlint.decode import cfn_yaml

    template = cfn_yaml.load(str(project / "template.yaml"))
    content = template["Resources"]["SharedLayer"]["Properties"]["ContentUri"]
    return folder_size(project / str(content))


def _install_line(project: Path) -> str:
    """The Dockerfile's ``pip install /src...`` target, with /src as ``project``."""
    for line in (project / "listener" / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.startswith("RUN ") and "pip install" in line and "/src" in line:
            target = shlex.split(line.split("pip install ", 1)[1])[0]
            return target.replace("/src", str(project), 1)
    raise ValueError(f"{project}/listener/Dockerfile installs nothing from /src")


def image_venv_size(project: Path) -> dict[str, Any]:
    """Size of a fresh venv after the Dockerfile's install step (site-packages, MB)."""
    with tempfile.TemporaryDirectory(prefix="flipbot-image-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
        # the build context, as the Dockerfile copies it (pip builds in there, not here)
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(project / name, src / name)
        shutil.copytree(
            project / "shared",
            src / "shared",
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
        )
        subprocess.run(
            [*pip, "install", "--quiet", "--no-cache-dir", _install_line(src)],
            check=True,
            cwd=tmp,
        )
        site = next((venv / "lib").glob("python3*/site-packages"))
        size = folder_size(site)
        listed = subprocess.run(
            [*pip, "list", "--format=freeze"], check=True, capture_output=True, text=True
        ).stdout.split()
    return {
        "mb": round(size.bytes / 2**20, 1),
        "files": size.files,
        "distributions": sorted(d.split("==")[0].lower() for d in listed if "==" in d),
    }


def _worktree(rev: str, where: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(where), rev],
        check=True,
        capture_output=True,
    )
    return where


def measure(project: Path, *, image: bool) -> dict[str, Any]:
    layer = layer_size(project)
    out: dict[str, Any] = {
        "layer_files": layer.files,
        "layer_kb": round(layer.bytes / 1024, 1),
        "layer_zip_kb": round(layer.deflated / 1024, 1),
    }
    if image:
        out["image_venv"] = image_venv_size(project)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench package_sizes")
    parser.add_argument("--baseline", default=BASELINE, help="revision measured as the baseline")
    parser.add_argument("--no-image", action="store_true", help="the layer only (no pip)")
    args = parser.parse_args(list(argv or []))
    with tempfile.TemporaryDirectory(prefix="flipbot-baseline-") as tmp:
        base_tree = _worktree(args.baseline, Path(tmp) / "tree")
        try:
            before = measure(base_tree, image=not args.no_image)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)],
                check=False,
                capture_output=True,
            )
    after = measure(ROOT, image=not args.no_image)
    figures: dict[str, float] = {
        "layer_kb_before": before["layer_kb"],
        "layer_kb": after["layer_kb"],
        "layer_zip_kb_before": before["layer_zip_kb"],
        "layer_zip_kb": after["layer_zip_kb"],
        "layer_files_before": before["layer_files"],
        "layer_files": after["layer_files"],
    }
    if not args.no_image:
        figures["image_venv_mb_before"] = before["image_venv"]["mb"]
        figures["image_venv_mb"] = after["image_venv"]["mb"]
    path = write_result(
        "package_sizes",
        figures,
        unit="KB (layer), MB (image venv), files",
        details={
            "baseline_revision": args.baseline,
            "layer_ratio": round(after["layer_kb"] / before["layer_kb"], 3),
            "before": before,
            "after": after,
            "not_measured": "the base image (python:3.11-slim), the same before and after",
        },
    )
    for label, value in figures.items():
        print(f"  {label:<22} {value}")
    if not args.no_image:
        dropped = sorted(
            set(before["image_venv"]["distributions"]) - set(after["image_venv"]["distributions"])
        )
        print(f"  image no longer installs: {', '.join(dropped)}")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
