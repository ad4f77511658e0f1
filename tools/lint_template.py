"""Lint template.yaml in both forms: as written (SAM) and as CloudFormation sees it.

cfn-lint no longer runs the SAM transform, so a bad ``!Ref`` inside a function's
Environment or Policies, or a bad value in Globals, only shows up once the template is
translated. This tool translates it offline with aws-sam-translator (no AWS calls) and
lints the result too.

Usage::

    python tools/lint_template.py [template.yaml]

Exit status 0 when both forms are clean, 1 with the findings otherwise. Informational
findings are printed but do not fail the run.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cfnlint.api import ManualArgs, lint_file
from samtranslator.model.exceptions import InvalidDocumentException

from flipbot_dev.twin.template import translate as _translate

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = ROOT / "template.yaml"

_REGION = "us-east-1"


def translate(path: str | Path = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """Translate a SAM template into plain CloudFormation, offline (see the twin's)."""
    return _translate(path)


_MAX_MESSAGE = 400  # "is not one of [every logical id ...]" messages get very long


def _format(matches: Sequence[Any], label: str) -> list[str]:
    lines = []
    for m in matches:
        message = m.message if len(m.message) <= _MAX_MESSAGE else m.message[:_MAX_MESSAGE] + "..."
        lines.append(f"[{label}] {m.rule.id} {message} ({m.filename}:{m.linenumber})")
    return lines


def _run_cfn_lint(path: Path) -> tuple[list[str], list[str]]:
    """Lint one file; return (failures, informational findings)."""
    matches = lint_file(path, config=ManualArgs(regions=[_REGION]))
    failing = [m for m in matches if m.rule.severity.lower() in ("error", "warning")]
    info = [m for m in matches if m not in failing]
    return _format(failing, path.name), _format(info, path.name)


def lint_source(path: str | Path = DEFAULT_TEMPLATE) -> list[str]:
    """cfn-lint findings (errors and warnings) on the template as written."""
    failing, _ = _run_cfn_lint(Path(path))
    return failing


def lint_cloudformation(template: dict[str, Any], name: str = "template") -> list[str]:
    """cfn-lint findings (errors and warnings) on a CloudFormation template held in memory."""
    with tempfile.TemporaryDirectory(prefix="flipbot-lint-") as tmp:
        out = Path(tmp) / f"{name}.translated.json"
        out.write_text(json.dumps(template, indent=1), encoding="utf-8")
        failing, _ = _run_cfn_lint(out)
    return failing


def lint_translated(path: str | Path = DEFAULT_TEMPLATE) -> list[str]:
    """Translate offline, then cfn-lint the CloudFormation result (errors and warnings)."""
    try:
        translated = translate(path)
    except InvalidDocumentException as exc:
        return [f"[translate] {cause.message}" for cause in exc.causes] or [f"[translate] {exc}"]
    return lint_cloudformation(translated, Path(path).stem)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 or any(a in ("-h", "--help") for a in args):
        print(__doc__)
        return 2
    path = Path(args[0]) if args else DEFAULT_TEMPLATE
    if not path.is_file():
        print(f"no such template: {path}", file=sys.stderr)
        return 2

    failures: list[str] = []
    for label, check in (("source", lint_source), ("translated", lint_translated)):
        started = time.perf_counter()
        found = check(path)
        elapsed = time.perf_counter() - started
        status = "clean" if not found else f"{len(found)} finding(s)"
        print(f"{label:<10} {status} ({elapsed:.1f} s)")
        failures.extend(found)
    for line in failures:
        print(line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
