"""make deploy: the whole ordered sequence, a dry run that calls nothing, the README's copy.

The dry run is the real sequence with every command printed instead of run; the test
forbids every way of starting a process while it runs.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAM = ".sam-venv/bin/sam"


def _deploy_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_under_test", ROOT / "tools" / "deploy.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"the dry run started a process: {args!r}")

    for name in ("run", "Popen", "call", "check_call", "check_output"):
        monkeypatch.setattr(subprocess, name, refuse)
    for name in ("system", "popen", "execv", "execvp", "execvpe", "spawnv", "posix_spawn"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse)


def _dry_run(*args: str) -> list[str]:
    out = io.StringIO()
    assert _deploy_module().main(["--dry-run", "--sam", SAM, *args], out=out) == 0
    return out.getvalue().splitlines()


def _index(lines: list[str], pattern: str) -> int:
    matches = [i for i, line in enumerate(lines) if re.search(pattern, line)]
    assert len(matches) == 1, f"{pattern!r} matched {len(matches)} lines"
    return matches[0]


def test_the_dry_run_prints_the_whole_sequence_in_order(
    no_processes: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given real-looking secrets in the environment
    monkeypatch.setenv("BINANCE_API_KEY", "binanceKeyValue0123456789")
    monkeypatch.setenv("BINANCE_API_SECRET", "binanceSecretValue0123456789")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openaiKeyValue0123456789")
    # When the dry run prints the sequence
    lines = _dry_run()
    text = "\n".join(lines)
    # Then each step comes in its place
    order = [
        r"^aws sts get-caller-identity ",
        r"^docker buildx inspect --bootstrap$",
        r"^git describe ",
        r"^aws ecr describe-repositories --repository-names flipbot-listener ",
        r"^aws ecr create-repository --repository-name flipbot-listener ",
        r"^aws ecr get-login-password .*\| docker login .*--password-stdin ",
        r"^docker buildx build --platform linux/arm64 --file listener/Dockerfile "
        r"--tag '<account>\.dkr\.ecr\.ap-northeast-1\.amazonaws\.com/flipbot-listener:"
        r"<commit>' --push \.$",
        rf"^{re.escape(SAM)} build$",
        r"^python3\.12 -m compileall .* \.aws-sam/build$",
        rf"^{re.escape(SAM)} deploy .*ListenerDesiredCount=0",
        r"^aws secretsmanager put-secret-value --secret-id flipbot/binance ",
        r"^aws secretsmanager put-secret-value --secret-id flipbot/openai ",
        rf"^{re.escape(SAM)} deploy .*ListenerDesiredCount=1",
        r"^aws stepfunctions list-executions ",
        r"^aws stepfunctions start-execution .*--name c000001 "
        r"--input file://events/start_cycle\.json",
    ]
    positions = [_index(lines, pattern) for pattern in order]
    assert positions == sorted(positions)
    # Both deploys carry the image just pushed and the listener's network
    for count in (0, 1):
        deploy_line = lines[_index(lines, rf"ListenerDesiredCount={count}")]
        assert "ListenerImageUri='<account>.dkr.ecr" not in deploy_line  # quoted whole
        assert "'ListenerImageUri=<account>.dkr.ecr.ap-northeast-1.amazonaws.com/" in (deploy_line)
        assert "VpcSubnetIds=" in deploy_line
        assert "SecurityGroupIds=" in deploy_line
        assert "--stack-name flipbot --region ap-northeast-1" in deploy_line
    # And no secret is printed: placeholders say where each value comes from
    for value in ("binanceKeyValue", "binanceSecretValue", "sk-openaiKeyValue"):
        assert value not in text
    assert '"api_key": "<from BINANCE_API_KEY>"' in text
    assert '"api_secret": "<from BINANCE_API_SECRET>"' in text
    assert '"api_key": "<from OPENAI_API_KEY>"' in text
    assert (ROOT / "events" / "start_cycle.json").is_file()


def test_with_recover_the_reconcile_recovery_replaces_the_first_cycle(no_processes: None) -> None:
    lines = _dry_run(
        "--recover", "--params", "Symbol=BTCUSDC VpcSubnetIds=s-1,s-2 SecurityGroupIds=sg-1"
    )
    assert not any("start-execution" in line for line in lines)
    assert not any("describe-vpcs" in line for line in lines)  # the network was given
    invoke = lines[_index(lines, r"^aws lambda invoke ")]
    assert """--payload '{"source": "recover"}'""" in invoke
    assert _index(lines, r"ListenerDesiredCount=1") < _index(lines, r"^aws lambda invoke ")
    assert (
        "Symbol=BTCUSDC VpcSubnetIds=s-1,s-2 SecurityGroupIds=sg-1"
        in (lines[_index(lines, r"ListenerDesiredCount=0")])
    )


@pytest.mark.parametrize("params", ["Symbol", "ListenerDesiredCount=1", "ListenerImageUri=x"])
def test_params_refuses_what_is_not_a_free_parameter(no_processes: None, params: str) -> None:
    with pytest.raises(SystemExit):
        _dry_run("--params", params)


def test_prerequisites_name_everything_missing() -> None:
    deploy = _deploy_module()
    options = deploy.Options(region="us-east-1", sam=SAM)
    problems = deploy.check_prerequisites(options, lambda tool: None)
    joined = "\n".join(problems)
    for needed in ("region us-east-1", "aws:", "docker:", "git:", f"{SAM}:", "python3.12:"):
        assert needed in joined
    secrets, missing = deploy.read_secrets({}, None)
    assert [m.split(":")[0] for m in missing] == ["BINANCE_API_KEY", "BINANCE_API_SECRET"]
    asked: list[str] = []
    secrets, missing = deploy.read_secrets({}, lambda q: asked.append(q) or "typed")
    assert missing == []
    assert len(asked) == 3
    assert secrets.binance_secret == "typed"


def _fake_tools(directory: Path, log: Path) -> None:
    for tool in ("aws", "docker", "sam", "git"):
        script = directory / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n', encoding="utf-8")
        script.chmod(0o755)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_deploy_dry_run_calls_no_aws_docker_or_sam(tmp_path: Path) -> None:
    # Given aws, docker, sam and git that would record any call
    log = tmp_path / "calls.log"
    _fake_tools(tmp_path, log)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    # When make deploy runs dry
    done = subprocess.run(
        ["make", "--no-print-directory", "deploy", "DRY_RUN=1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    # Then it printed the sequence and called none of them
    assert done.returncode == 0, done.stderr
    assert not log.exists()
    assert done.stdout.splitlines() == _dry_run()


def test_the_readme_deploy_section_is_the_dry_run() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("\n## Deploy\n") :]
    section = section[: section.index("\n## ", 1)]
    marker = "`make deploy DRY_RUN=1` prints"
    block = section[section.index(marker) :]
    block = block[block.index("```bash\n") + len("```bash\n") :]
    block = block[: block.index("```")]
    assert block.splitlines() == _dry_run()


_FAKE_AWS = """#!/bin/sh
echo "aws $*" >> "{log}"
case "$*" in
  *"sts get-caller-identity"*) echo 123456789012 ;;
  *"ecr describe-repositories"*) exit 254 ;;
  *"ec2 describe-vpcs"*) echo vpc-1 ;;
  *"ec2 describe-subnets"*) printf 'subnet-a\\tsubnet-b\\n' ;;
  *"describe-security-groups"*) echo sg-1 ;;
  *"get-login-password"*) echo registry-token ;;
  *"put-secret-value"*) for last in "$@"; do :; done; cat "${{last#file://}}" >> "{secrets}" ;;
esac
"""
_FAKE_DOCKER = """#!/bin/sh
echo "docker $*" >> "{log}"
case "$*" in
  "buildx inspect --bootstrap") echo "Platforms: linux/amd64, linux/arm64" ;;
  login*) cat >> "{log}" ;;
esac
"""


def test_the_real_run_follows_the_same_sequence_and_keeps_secrets_off_screen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given stand-ins for aws, docker, sam, git and python3.12 that log their calls
    log, secrets = tmp_path / "calls.log", tmp_path / "secrets.log"
    (tmp_path / "aws").write_text(_FAKE_AWS.format(log=log, secrets=secrets))
    (tmp_path / "docker").write_text(_FAKE_DOCKER.format(log=log))
    for tool, answer in (("sam", ""), ("git", "echo abc123def456"), ("python3.12", "")):
        (tmp_path / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n{answer}\n')
    for tool in ("aws", "docker", "sam", "git", "python3.12"):
        (tmp_path / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("BINANCE_API_KEY", "binanceKeyValue0123456789")
    monkeypatch.setenv("BINANCE_API_SECRET", "binanceSecretValue0123456789")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openaiKeyValue0123456789")
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    out = io.StringIO()
    # When make deploy runs for real
    assert _deploy_module().main(["--sam", str(tmp_path / "sam")], out=out) == 0
    # Then the commands ran in the printed order, the repository was created, the image
    # pushed under the commit, and the listener started after the secrets
    calls = log.read_text().splitlines()
    printed = out.getvalue()
    assert "registry-token" in calls  # piped into docker login, not printed
    image = "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/flipbot-listener:abc123def456"
    assert f"--tag {image} --push" in printed
    steps = [
        "aws ecr create-repository",
        "docker buildx build --platform linux/arm64",
        "sam build",
        "ListenerDesiredCount=0",
        "put-secret-value --secret-id flipbot/binance",
        "put-secret-value --secret-id flipbot/openai",
        "ListenerDesiredCount=1",
        "start-execution",
    ]
    where = [next(i for i, c in enumerate(calls) if step in c) for step in steps]
    assert where == sorted(where)
    assert "VpcSubnetIds=subnet-a,subnet-b SecurityGroupIds=sg-1" in printed
    # And the secrets reached the AWS CLI through a file, never a command line or screen
    assert secrets.read_text() == (
        '{"api_key": "binanceKeyValue0123456789", '
        '"api_secret": "binanceSecretValue0123456789"}'
        '{"api_key": "sk-openaiKeyValue0123456789"}'
    )
    seen = printed + log.read_text() + capsys.readouterr().err
    for value in ("binanceKeyValue", "binanceSecretValue", "sk-openaiKeyValue"):
        assert value not in seen
