"""``listener/Dockerfile`` exercised without a Docker engine.

The fast tests read the Dockerfile: two stages, a non-root user, the entry command
``flipbot-listen``, and the same health check as the task definition in
``template.yaml``. The slow one performs the build stage's steps as written - its
``COPY`` lines into a temporary ``/src``, its ``RUN`` lines with ``/opt/venv`` a fresh
temporary virtual environment (pip install of the project from the local path; the
package index must be reachable) - then starts the ``CMD`` with the runtime stage's
``ENV`` against the loopback Binance server (``--dry-run``: no AWS), waits for the
``HEALTHCHECK`` command to answer, and stops it with SIGTERM. The Dockerfile is the
single source: change a step there and this test runs the new step.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "listener" / "Dockerfile"
KEY = "imageTestApiKey00001"
SECRET = "imageTestApiSecret0001"


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for args in self.all("ENV"):
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                out[key] = value
        return out


def parse_dockerfile(path: Path = DOCKERFILE) -> tuple[dict[str, str], list[Stage]]:
    """``(ARG defaults before the first FROM, stages)``; continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), " ".join(rest.split())
        if keyword == "FROM":
            base, _, name = rest.partition(" AS ")
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), base)
            stages.append(Stage(name.strip() or str(len(stages)), base.strip()))
        elif keyword == "ARG" and not stages:
            key, _, value = rest.partition("=")
            args[key] = value
        elif stages:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"use the exec form: {args}"
    return [str(v) for v in value]


# --- what the Dockerfile says -------------------------------------------------------------
def test_the_image_is_multi_stage_non_root_and_runs_the_listener() -> None:
    _, stages = parse_dockerfile()
    build, runtime = stages
    assert (build.name, runtime.name) == ("build", "runtime")
    assert build.base == runtime.base
    assert re.fullmatch(r"python:3\.11-slim-\w+", runtime.base)  # multi-arch, arm64 included
    (user,) = runtime.all("USER")
    assert not user.startswith(("0", "root"))
    assert runtime.all("COPY") == ["--from=build /opt/venv /opt/venv"]
    assert exec_form(runtime.all("CMD")[0]) == ["flipbot-listen"]
    assert runtime.all("STOPSIGNAL") == ["SIGTERM"]
    assert runtime.env()["PYTHONDONTWRITEBYTECODE"] == "1"  # read-only root file system
    installs = [r for r in build.all("RUN") if "pip install" in r and "/src" in r]
    assert installs == ['/opt/venv/bin/python -m pip install "/src[listener]"']


def test_the_health_check_is_the_task_definitions() -> None:
    from cfnlint.decode import cfn_yaml

    _, stages = parse_dockerfile()
    (check,) = stages[-1].all("HEALTHCHECK")
    command = exec_form(check.split(" CMD ", 1)[1])
    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    container = template["Resources"]["ListenerTaskDefinition"]["Properties"][
        "ContainerDefinitions"
    ][0]
    assert ["CMD", *command] == list(container["HealthCheck"]["Command"])
    assert int(container["StopTimeout"]) <= 30


def test_the_build_context_filter_keeps_what_the_build_copies() -> None:
    ignore = (ROOT / "listener" / "Dockerfile.dockerignore").read_text().split()
    _, stages = parse_dockerfile()
    copied = [args.split()[:-1] for args in stages[0].all("COPY")]
    for sources in copied:
        for source in sources:
            assert f"!{source.rstrip('/')}" in ignore or f"!{source}/" in ignore


# --- the steps, performed -----------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_dockerfile_steps_install_a_listener_that_starts_and_answers_its_health_check(
    tmp_path: Path,
) -> None:
    from flipbot_dev.paper.ws import ThreadedWsServer

    _, stages = parse_dockerfile()
    build, runtime = stages
    src, venv = tmp_path / "src", tmp_path / "venv"
    src.mkdir()

    def local(text: str) -> str:
        return text.replace("/opt/venv", str(venv)).replace("/src", str(src))

    # COPY <sources...> <dest> into the temporary /src (the build stage's WORKDIR).
    assert build.all("WORKDIR") == ["/src"]
    for args in build.all("COPY"):
        *sources, dest = args.split()
        target = src / dest.removeprefix("./").removeprefix("/src")
        for source in sources:
            origin = ROOT / source
            if origin.is_dir():
                shutil.copytree(
                    origin, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
                )
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / origin.name)
    # RUN, as written (pip may use its cache: PIP_NO_CACHE_DIR only keeps the image small).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env.update({k: v for k, v in build.env().items() if k != "PIP_NO_CACHE_DIR"})
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for command in build.all("RUN"):
        done = subprocess.run(
            ["bash", "-c", local(command)],
            cwd=src,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"RUN {command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"

    # The runtime stage: its ENV, its CMD (with --dry-run: no AWS), its HEALTHCHECK.
    run_env = {k: v for k, v in env.items() if not k.startswith("PIP_")}
    for key, value in runtime.env().items():
        run_env[key] = local(value.replace("$PATH", run_env.get("PATH", "")))
    port = _free_port()
    with ThreadedWsServer(api_key=KEY, api_secret=SECRET, lifetime_s=120) as server:
        run_env.update(
            {
                "SYMBOL": "TRUMPUSDC",
                "BINANCE_API_KEY": KEY,
                "BINANCE_API_SECRET": SECRET,
                "BINANCE_BASE_URL": server.base_url,
                "HEALTH_PORT": str(port),
                "STOP_TIMEOUT_SECONDS": "10",
            }
        )
        command = exec_form(runtime.all("CMD")[0])
        (check,) = runtime.all("HEALTHCHECK")
        health = exec_form(check.split(" CMD ", 1)[1])
        log = (tmp_path / "listener.log").open("w")
        process = subprocess.Popen(
            [*command, "--dry-run"], env=run_env, cwd=tmp_path, stdout=log, stderr=log
        )
        try:
            deadline, answered = time.monotonic() + 30, None
            while time.monotonic() < deadline and process.poll() is None:
                answered = subprocess.run(
                    health, env=run_env, capture_output=True, text=True, check=False
                )
                if answered.returncode == 0 and server.server.active_subscriptions():
                    break
                time.sleep(0.3)
            assert answered is not None
            assert answered.returncode == 0, answered.stdout
            assert '"status": "ok"' in answered.stdout
            report = {"e": "executionReport", "E": int(time.time() * 1000)}
            server.call(lambda s: s.push_user_event(report))  # unreadable: becomes a gap
            time.sleep(0.5)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
    output = (tmp_path / "listener.log").read_text()
    assert process.returncode == 0, output[-3000:]
    assert (shutil.which(command[0], path=run_env["PATH"]) or "").startswith(str(venv))
    # The listener's extra only: none of the functions' clients, nothing of the twin.
    site = next((venv / "lib").glob("python3*/site-packages"))
    installed = {p.name for p in site.iterdir()}
    assert {"websockets", "pynamodb", "flipbot"} <= installed
    assert not {"openai", "binance", "moto", "matplotlib", "flipbot_dev"} & installed
    assert "user data stream subscribed" in output
    assert "dry run: StreamGapDetected" in output
    assert KEY not in output
    assert SECRET not in output


def test_the_entry_command_starts_answers_its_health_check_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    """``flipbot-listen`` as installed in this environment (the image's CMD, ``--dry-run``)."""
    from flipbot_dev.paper.ws import ThreadedWsServer

    _, stages = parse_dockerfile()
    command = exec_form(stages[-1].all("CMD")[0])
    (check,) = stages[-1].all("HEALTHCHECK")
    health = exec_form(check.split(" CMD ", 1)[1])
    bin_dir = str(Path(sys.executable).parent)
    port = _free_port()
    with ThreadedWsServer(api_key=KEY, api_secret=SECRET, lifetime_s=30) as server:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "SYMBOL": "TRUMPUSDC",
            "BINANCE_API_KEY": KEY,
            "BINANCE_API_SECRET": SECRET,
            "BINANCE_BASE_URL": server.base_url,
            "HEALTH_PORT": str(port),
        }
        log_path = tmp_path / "listener.log"
        with log_path.open("w") as log:
            process = subprocess.Popen([*command, "--dry-run"], env=env, stdout=log, stderr=log)
            try:
                deadline, answered = time.monotonic() + 15, None
                while time.monotonic() < deadline and process.poll() is None:
                    answered = subprocess.run(
                        health, env=env, capture_output=True, text=True, check=False
                    )
                    if answered.returncode == 0 and server.server.active_subscriptions():
                        break
                    time.sleep(0.2)
                assert answered is not None
                assert answered.returncode == 0, answered.stdout
            finally:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    output = log_path.read_text()
    assert process.returncode == 0, output[-3000:]
    assert "SIGTERM: stopping" in output
    assert "dry run: StreamGapDetected" in output  # the start-up gap
    assert KEY not in output
    assert SECRET not in output
