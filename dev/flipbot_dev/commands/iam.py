"""``flipbot iam``: what each role of the template used in a replay, against what it grants.

Every replay checks each AWS call against its caller's own role (the twin's IAM, on by
default) and writes, per principal, the (action, resource) pairs it used and each grant
with what was used of it. This command prints that: denied calls first, then for each
function, the state machine and the listener, the calls it made and its grants, each
``used``, ``kept`` (unused on purpose, with the reason) or ``UNUSED`` (a candidate for
removal). With several ``--run`` folders a grant counts as used if any run used it.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

from flipbot_dev.commands._template import add_template_argument, checked_template


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "iam", help="calls each role made in a replay, and the grants nothing used"
    )
    parser.add_argument(
        "--run",
        action="append",
        metavar="DIR",
        help="a replay's output folder (its report.json); repeat to combine runs; "
        "default: replay the bundled sample now",
    )
    parser.add_argument("--hours", type=float, default=24.0, help="hours of the sample to replay")
    parser.add_argument(
        "--strategy",
        default="offline",
        choices=["offline", "fixed", "adaptive", "ma-cross"],
        help="decision maker of the replay",
    )
    add_template_argument(parser)
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 also when a grant is flagged UNUSED"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.run:
        template = checked_template(args.template, "iam")
        if template is None:
            return 2
        args.template = template
    reports = [_read(Path(d)) for d in args.run] if args.run else [_replay(args)]
    text, denied, unused = render(reports)
    print(text)
    return 1 if denied or (args.strict and unused) else 0


def _read(folder: Path) -> dict[str, Any]:
    path = folder / "report.json"
    if not path.is_file():
        raise SystemExit(f"flipbot iam: no report.json in {folder} (run flipbot replay first)")
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if "iam" not in report:
        raise SystemExit(f"flipbot iam: {path} has no iam section (a replay without IAM)")
    return report


def _replay(args: argparse.Namespace) -> dict[str, Any]:
    from flipbot_dev.replay.sample import generate_sample
    from flipbot_dev.twin.runner import ReplayConfig, run_replay

    print(f"replaying {args.hours:g} h of the bundled sample ({args.strategy})...", file=sys.stderr)
    config = ReplayConfig(
        data=generate_sample(hours=args.hours),
        symbol="TRUMPUSDC",
        template=args.template,
        decider=args.strategy,
        progress=False,
    )
    return run_replay(config, out=io.StringIO())


def render(reports: list[dict[str, Any]]) -> tuple[str, int, int]:
    """The text, the number of denied calls and of grants flagged UNUSED."""
    lines: list[str] = []
    denied = [d for r in reports for d in r["iam"]["denied"]]
    calls = sum(r["iam"]["calls"] for r in reports)
    lines.append(f"{calls:,} AWS calls checked against their caller's role, {len(denied)} denied")
    lines += [f"  DENIED {d}" for d in sorted(set(denied))]
    used: dict[str, set[str]] = {}
    for report in reports:
        for name, entry in report["iam"]["principals"].items():
            used.setdefault(name, set()).update(entry["used"])
    grants: dict[tuple[str, str, tuple[str, ...]], dict[str, Any]] = {}
    for report in reports:
        for grant in report["iam"]["grants"]:
            key = (grant["principal"], grant["policy"], tuple(grant["actions"]))
            merged = grants.setdefault(key, {**grant, "used": []})
            merged["used"] = sorted(set(merged["used"]) | set(grant["used"]))
            if merged["used"]:
                merged["kept_because"] = ""
    unused = 0
    for name in sorted({k[0] for k in grants} | set(used)):
        lines.append("")
        pairs = sorted(used.get(name, set()))
        lines.append(f"{name}: {len(pairs)} (action, resource) pairs used")
        lines += [f"  used    {_resource(pair)}" for pair in pairs]
        for key, grant in sorted(grants.items()):
            if key[0] != name:
                continue
            where = ", ".join(_resource(r) for r in grant["resources"]) or "*"
            what = f"{_actions(grant['actions'])} on {where}"
            if grant["used"]:
                status = f"grant   {what}  (used: {', '.join(_short(grant['used']))})"
            elif grant["kept_because"]:
                status = f"kept    {what}  ({grant['kept_because']})"
            else:
                unused += 1
                status = f"UNUSED  {what}  ({grant['policy']})"
            lines.append(f"  {status}")
    lines.append("")
    lines.append(f"{unused} grant(s) nothing used and no reason keeps")
    return "\n".join(lines), len(denied), unused


def _actions(actions: list[str]) -> str:
    return actions[0] if len(actions) == 1 else "{" + ", ".join(_short(actions)) + "}"


def _resource(text: str) -> str:
    """Drop the ``arn:aws:<service>:<region>:<account>:`` prefix: the rest names it."""
    return _ARN_PREFIX.sub("", text)


_ARN_PREFIX = re.compile(r"arn:aws:[a-z0-9-]*:[a-z0-9-]*:[0-9]*:")


def _short(actions: list[str]) -> list[str]:
    return [a.split(":", 1)[-1] for a in actions]
