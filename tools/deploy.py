"""``make deploy``: from a clone to a trading stack, in one command.

The steps, in order (``make deploy DRY_RUN=1`` prints them and runs nothing):

1. prerequisites: AWS credentials, docker buildx able to build linux/arm64, python3.12
   for ``sam build`` (or ``BUILD_IN_CONTAINER=1``), the Binance key pair (and optionally
   the OpenAI key) from the environment or a prompt; everything missing is named at once;
2. the ECR repository ``<stack>-listener`` (created when absent); the arm64 listener
   image built and pushed, tagged by the git commit;
3. ``sam build`` and ``sam deploy`` with that image and ``ListenerDesiredCount=0``: the
   listener stays stopped and no cycle runs while the secrets are placeholders;
4. the two secrets;
5. ``sam deploy`` again with ``ListenerDesiredCount=1``: the listener's task starts now,
   so it reads the secrets just set (a task reads them only when it starts);
6. the first cycle (``c000001``, unless the state machine already ran one), or with
   ``RECOVER=1`` (the account already holds the base asset) the reconcile function's
   recovery from the exchange, which rebuilds the books and resumes the cycle. The
   other symbols of ``Symbols`` start on the reconcile function's next scheduled run.

Secrets never appear in what is printed: the printed commands show where each value
comes from (``<from BINANCE_API_KEY>``), and the values reach the AWS CLI through a
private temporary file, not the command line.

Standard library only: it runs before any virtual environment exists.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STACK = "flipbot"
DEFAULT_REGION = "ap-northeast-1"
START_CYCLE = "events/start_cycle.json"
NETWORK_PARAMETERS = ("VpcSubnetIds", "SecurityGroupIds")


class Missing(Exception):
    """Prerequisites that are not met, one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass
class Runner:
    """Prints each command, then (unless ``dry_run``) runs it.

    A dry run calls nothing at all and answers each query with its placeholder.
    """

    dry_run: bool
    out: TextIO = sys.stdout
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def show(self, line: str, note: str = "") -> None:
        print(f"{line}  # {note}" if note and self.dry_run else line, file=self.out, flush=True)

    def run(
        self,
        argv: Sequence[str],
        *,
        placeholder: str = "",
        shown: str | None = None,
        note: str = "",
        check: bool = True,
        capture: bool = False,
    ) -> str | None:
        """Run ``argv``; with ``capture`` return its standard output (stripped) instead of
        showing it. ``None`` when it failed and ``check`` is off. A dry run returns
        ``placeholder``."""
        self.show(shown if shown is not None else shlex.join(argv), note)
        if self.dry_run:
            return placeholder
        result = subprocess.run(
            list(argv),
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE if capture else None,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            if check:
                raise SystemExit(f"deploy: failed ({result.returncode}): {argv[0]} {argv[1]}")
            return None
        return (result.stdout or "").strip()

    def pipe(self, first: Sequence[str], second: Sequence[str]) -> None:
        """``first | second``: what ``first`` writes goes to ``second`` and nowhere else."""
        self.show(f"{shlex.join(first)} | {shlex.join(second)}")
        if self.dry_run:
            return
        with subprocess.Popen(list(first), cwd=ROOT, env=self.env, stdout=subprocess.PIPE) as a:
            b = subprocess.run(list(second), cwd=ROOT, env=self.env, stdin=a.stdout, check=False)
        if a.returncode != 0 or b.returncode != 0:
            raise SystemExit(f"deploy: failed: {first[0]} {first[1]} | {second[0]} {second[1]}")


@dataclass(frozen=True)
class Options:
    stack: str = DEFAULT_STACK
    region: str = DEFAULT_REGION
    params: tuple[str, ...] = ()
    recover: bool = False
    build_in_container: bool = False
    sam: str = "sam"


@dataclass
class Secrets:
    binance_key: str = ""
    binance_secret: str = ""
    openai_key: str = ""


def parse_params(text: str) -> tuple[str, ...]:
    """``PARAMS="Symbol=BTCUSDC QuotePerCycle=20"`` as ``Key=Value`` items."""
    items = tuple(shlex.split(text))
    bad = [item for item in items if "=" not in item or not item.split("=", 1)[0].isalnum()]
    if bad:
        raise SystemExit(f"deploy: PARAMS takes Key=Value items, not {' '.join(bad)}")
    for reserved in ("ListenerImageUri", "ListenerDesiredCount"):
        if any(item.startswith(reserved + "=") for item in items):
            raise SystemExit(f"deploy: {reserved} is set by the deploy itself")
    return items


def check_prerequisites(options: Options, which: Callable[[str], str | None]) -> list[str]:
    """What is missing on this machine (the tools; credentials are asked of AWS next)."""
    problems = []
    if options.region.startswith(("us-", "ca-")):
        problems.append(
            f"region {options.region}: Binance refuses requests from US and Canadian "
            "locations (HTTP 451); pick one it serves, e.g. REGION=ap-northeast-1"
        )
    for tool, hint in (
        ("aws", "the AWS CLI v2"),
        ("docker", "Docker with buildx, to build the arm64 listener image"),
        ("git", "git, to tag the image by commit"),
    ):
        if which(tool) is None:
            problems.append(f"{tool}: not on PATH; install {hint}")
    if which(options.sam) is None:
        problems.append(f"{options.sam}: not found; make deploy installs it (aws-sam-cli)")
    if not options.build_in_container and which("python3.12") is None:
        problems.append(
            "python3.12: not on PATH; sam build needs the functions' runtime. Install it, "
            "or build in a container: make deploy BUILD_IN_CONTAINER=1"
        )
    if not (ROOT / START_CYCLE).is_file():
        problems.append(f"{START_CYCLE}: missing; it is the first cycle's input")
    return problems


def read_secrets(
    env: dict[str, str], prompt: Callable[[str], str] | None
) -> tuple[Secrets, list[str]]:
    """The keys from the environment, else from ``prompt`` (no echo); what is missing."""

    def value(name: str, question: str) -> str:
        given = env.get(name, "").strip()
        if given or prompt is None:
            return given
        return prompt(question).strip()

    secrets = Secrets(
        binance_key=value("BINANCE_API_KEY", "Binance API key: "),
        binance_secret=value("BINANCE_API_SECRET", "Binance API secret: "),
        openai_key=value("OPENAI_API_KEY", "OpenAI API key (empty: the offline strategy): "),
    )
    missing = [
        f"{name}: not set; export it or run make deploy in a terminal to be asked"
        for name, given in (
            ("BINANCE_API_KEY", secrets.binance_key),
            ("BINANCE_API_SECRET", secrets.binance_secret),
        )
        if not given
    ]
    return secrets, missing


def deploy(
    runner: Runner,
    options: Options,
    secrets: Secrets,
) -> None:
    """The whole sequence; see the module docstring."""
    region = ["--region", options.region]
    aws = ["aws"]
    sam = [options.sam]

    # 1. prerequisites that need a command: credentials, buildx for arm64
    account = runner.run(
        [*aws, "sts", "get-caller-identity", "--query", "Account", "--output", "text", *region],
        placeholder="<account>",
        check=False,
        capture=True,
    )
    builders = runner.run(["docker", "buildx", "inspect", "--bootstrap"], check=False, capture=True)
    problems = []
    if not account:
        problems.append(
            "AWS credentials: aws sts get-caller-identity failed; run aws configure "
            "(or set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        )
    if not runner.dry_run and "linux/arm64" not in (builders or ""):
        problems.append(
            "docker buildx cannot build linux/arm64: register arm64 emulation "
            "(docker run --privileged --rm tonistiigi/binfmt --install arm64) "
            "or use a builder on an arm64 host"
        )
    if problems:
        raise Missing(problems)
    commit = runner.run(
        ["git", "describe", "--always", "--dirty", "--abbrev=12"],
        placeholder="<commit>",
        capture=True,
    )

    # 2. the listener image
    repository = f"{options.stack}-listener"
    registry = f"{account}.dkr.ecr.{options.region}.amazonaws.com"
    image = f"{registry}/{repository}:{commit}"
    found = runner.run(
        [*aws, "ecr", "describe-repositories", "--repository-names", repository, *region],
        check=False,
        capture=True,
    )
    if runner.dry_run or found is None:
        runner.run(
            [
                *aws,
                "ecr",
                "create-repository",
                "--repository-name",
                repository,
                "--image-scanning-configuration",
                "scanOnPush=true",
                *region,
            ],
            note="only when describe-repositories finds none",
        )
    runner.pipe(
        [*aws, "ecr", "get-login-password", *region],
        ["docker", "login", "--username", "AWS", "--password-stdin", registry],
    )
    runner.run(
        [
            "docker",
            "buildx",
            "build",
            "--platform",
            "linux/arm64",
            "--file",
            "listener/Dockerfile",
            "--tag",
            image,
            "--push",
            ".",
        ]
    )

    # 3. the stack, listener stopped
    if options.build_in_container:
        runner.run([*sam, "build", "--use-container"])
    else:
        runner.run([*sam, "build"])
        # Precompiled modules: the layers are read-only in Lambda, so each cold start
        # would compile what it imports.
        runner.run(
            [
                "python3.12",
                "-m",
                "compileall",
                "-q",
                "-j",
                "0",
                "--invalidation-mode",
                "unchecked-hash",
                ".aws-sam/build",
            ]
        )
    network = _network_parameters(runner, options, region)

    def sam_deploy(desired_count: int) -> None:
        runner.run(
            [
                *sam,
                "deploy",
                "--stack-name",
                options.stack,
                *region,
                "--resolve-s3",
                "--capabilities",
                "CAPABILITY_IAM",
                "--no-confirm-changeset",
                "--no-fail-on-empty-changeset",
                "--parameter-overrides",
                f"ListenerImageUri={image}",
                f"ListenerDesiredCount={desired_count}",
                *network,
                *options.params,
            ]
        )

    sam_deploy(0)

    # 4. the secrets
    _put_secret(
        runner,
        f"{options.stack}/binance",
        region,
        {"api_key": ("BINANCE_API_KEY", secrets.binance_key)},
        {"api_secret": ("BINANCE_API_SECRET", secrets.binance_secret)},
    )
    if secrets.openai_key or runner.dry_run:
        _put_secret(
            runner,
            f"{options.stack}/openai",
            region,
            {"api_key": ("OPENAI_API_KEY", secrets.openai_key)},
        )
    else:
        print("deploy: no OpenAI key given; the offline strategy decides", file=sys.stderr)

    # 5. the listener starts, reading the secrets just set
    sam_deploy(1)

    # 6. the first cycle, or the recovery from the exchange
    if options.recover:
        function = runner.run(
            [
                *aws,
                "cloudformation",
                "describe-stack-resource",
                "--stack-name",
                options.stack,
                "--logical-resource-id",
                "ReconcileFunction",
                "--query",
                "StackResourceDetail.PhysicalResourceId",
                "--output",
                "text",
                *region,
            ],
            placeholder="<reconcile function>",
            capture=True,
        )
        runner.run(
            [
                *aws,
                "lambda",
                "invoke",
                "--function-name",
                str(function),
                "--cli-binary-format",
                "raw-in-base64-out",
                "--payload",
                '{"source": "recover"}',
                *region,
                "/dev/stdout",
            ]
        )
        return
    machine = f"arn:aws:states:{options.region}:{account}:stateMachine:{options.stack}-trade-cycle"
    ran = runner.run(
        [
            *aws,
            "stepfunctions",
            "list-executions",
            "--state-machine-arn",
            machine,
            "--max-results",
            "1",
            "--query",
            "executions[].name",
            "--output",
            "text",
            *region,
        ],
        capture=True,
    )
    if ran and not runner.dry_run:
        print(
            f"deploy: {options.stack} already ran cycles ({ran}); not starting c000001. "
            "Reconcile resumes a lost cycle; RECOVER=1 rebuilds the books from the exchange",
            file=sys.stderr,
        )
        return
    runner.run(
        [
            *aws,
            "stepfunctions",
            "start-execution",
            "--state-machine-arn",
            machine,
            "--name",
            "c000001",
            "--input",
            f"file://{START_CYCLE}",
            *region,
        ],
        note="only when list-executions finds none",
    )


def _network_parameters(runner: Runner, options: Options, region: list[str]) -> list[str]:
    """The listener's subnets and security group: from PARAMS, else the default VPC's."""
    given = {item.split("=", 1)[0] for item in options.params}
    if all(name in given for name in NETWORK_PARAMETERS):
        return []
    vpc = runner.run(
        [
            "aws",
            "ec2",
            "describe-vpcs",
            "--filters",
            "Name=isDefault,Values=true",
            "--query",
            "Vpcs[0].VpcId",
            "--output",
            "text",
            *region,
        ],
        placeholder="<vpc-id>",
        capture=True,
    )
    if not vpc or vpc == "None":
        raise Missing(
            [
                f"no default VPC in {options.region}: pass VpcSubnetIds=... and "
                "SecurityGroupIds=... in PARAMS (public subnets, egress to 443)"
            ]
        )
    subnets = runner.run(
        [
            "aws",
            "ec2",
            "describe-subnets",
            "--filters",
            f"Name=vpc-id,Values={vpc}",
            "Name=default-for-az,Values=true",
            "--query",
            "Subnets[].SubnetId",
            "--output",
            "text",
            *region,
        ],
        placeholder="<subnet-ids>",
        capture=True,
    )
    group = runner.run(
        [
            "aws",
            "ec2",
            "describe-security-groups",
            "--filters",
            f"Name=vpc-id,Values={vpc}",
            "Name=group-name,Values=default",
            "--query",
            "SecurityGroups[0].GroupId",
            "--output",
            "text",
            *region,
        ],
        placeholder="<security-group-id>",
        capture=True,
    )
    return [
        f"VpcSubnetIds={','.join(str(subnets).split())}",
        f"SecurityGroupIds={group}",
    ]


def _put_secret(
    runner: Runner, secret_id: str, region: list[str], *fields: dict[str, tuple[str, str]]
) -> None:
    """Set ``secret_id`` to a JSON object; the command shows where each value comes from."""
    merged = {key: pair for part in fields for key, pair in part.items()}
    shown_value = json.dumps({key: f"<from {name}>" for key, (name, _) in merged.items()})
    base = ["aws", "secretsmanager", "put-secret-value", "--secret-id", secret_id, *region]
    shown = f"{shlex.join(base)} --secret-string {shlex.quote(shown_value)}"
    if runner.dry_run:
        runner.run([*base, "--secret-string", shown_value], shown=shown)
        return
    with tempfile.TemporaryDirectory(prefix="flipbot-deploy-") as private:
        path = Path(private) / "secret.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({key: value for key, (_, value) in merged.items()}, handle)
        runner.run([*base, "--secret-string", f"file://{path}"], shown=shown, capture=True)


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="make deploy", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", default=DEFAULT_STACK)
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--params", default="", help='extra parameters: "Key=Value ..."')
    parser.add_argument("--recover", action="store_true", help="recover instead of c000001")
    parser.add_argument("--build-in-container", action="store_true")
    parser.add_argument("--sam", default="sam", help="the sam executable")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    options = Options(
        stack=args.stack,
        region=args.region,
        params=parse_params(args.params),
        recover=args.recover,
        build_in_container=args.build_in_container,
        sam=args.sam,
    )
    runner = Runner(dry_run=args.dry_run, out=out)
    runner.env["SAM_CLI_TELEMETRY"] = "0"
    if args.dry_run:
        secrets = Secrets()
    else:
        problems = check_prerequisites(options, shutil.which)
        prompt = getpass.getpass if sys.stdin.isatty() else None
        secrets, missing = read_secrets(runner.env, prompt)
        if problems or missing:
            _report(problems + missing)
            return 1
    try:
        deploy(runner, options, secrets)
    except Missing as missing_now:
        _report(missing_now.problems)
        return 1
    return 0


def _report(problems: Sequence[str]) -> None:
    print("deploy: missing before anything is deployed:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
