"""Every hook the digital twin puts into moto, in one place.

moto (pinned in ``pyproject.toml``) executes Amazon States Language with its vendored
interpreter, evaluates EventBridge patterns and stores DynamoDB items. Three things it
cannot do here are patched in by :func:`install`:

* **Lambda**: ``LambdaFunction._invoke_lambda`` would start a container. The hook runs
  the handler in process (resolved from the template's ``CodeUri`` + ``Handler``).
* **EventBridge targets**: ``Rule.send_to_targets`` raises for Lambda targets. The hook
  invokes Lambda targets in process and leaves other targets to moto.
* **Time**: Wait states, Retry intervals, ``TimeoutSeconds`` and ``HeartbeatSeconds``
  of callback tasks really sleep in moto. The hooks park the calling thread in a
  :class:`VirtualScheduler` instead, so a day of market data replays in seconds.

* **Work done once**: moto parses the state machine's definition at every execution,
  each JSONPath at every evaluation, and builds a botocore client for every Lambda task
  and lists a handler class's methods at every request. None of it changes between
  calls, so the twin does it once (:func:`_once`): what each call does is unchanged.

* **Reads by key**: moto answers a DynamoDB Query by sorting and walking every item of
  the table, so a query costs more the longer a replay runs. The twin hands it the
  items of the query's partition only (:func:`_keyed_queries`), as DynamoDB reads them:
  the same answer, at the cost of the items read.

* **Items as stored**: moto keeps DynamoDB items in their wire form ({"S": "text"}) and
  then rebuilds each attribute value through the AttributeValue shape, field by field,
  to write the response. The twin writes an attribute value as stored when it is
  already what that walk gives (:func:`_wire_items`); binary values still take moto's.

* **Limits**: AWS's quotas on state data, execution history, PutEvents, Lambda
  payloads and timeouts are applied as AWS applies them (:mod:`flipbot_dev.twin.limits`),
  and DynamoDB requests are atomic, one at a time, as DynamoDB's per-item operations are.

moto runs each execution in its own threads. The scheduler counts live executions and
parked threads: the replay loop calls :meth:`VirtualScheduler.settle` after every
stimulus and proceeds only when every live execution is parked (waiting for a task
token, a Wait state, a retry interval) or finished. Together with handler invocations
run one at a time, this makes a replay deterministic: same inputs, same result. (The
``concurrent`` chaos scenario lets invocations of one function overlap, as Lambda does
without reserved concurrency; see :meth:`LambdaRegistry.deliver_deferred`.)
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext, redirect_stdout
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from flipbot_dev.twin.limits import Limits

Handler = Callable[[dict[str, Any], Any], Any]

MOTO_VERSION = "5.2.5"


class TwinStalled(RuntimeError):
    """An execution neither parked nor finished within the real-time allowance."""


@dataclass(eq=False)
class _Park:
    deadline_ms: int | None
    event: threading.Event | None
    label: str
    seq: int
    cancelled: Callable[[], bool] | None = None  # e.g. "the execution was stopped"
    woken_by: str | None = None  # "event", "cancelled" or "deadline"


@dataclass
class VirtualScheduler:
    """A virtual clock and the bookkeeping that lets moto's threads run one at a time."""

    now_ms: int
    settle_timeout_s: float = 60.0
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _live: int = 0
    _parked: list[_Park] = field(default_factory=list)
    _seq: int = 0

    # -- clock --------------------------------------------------------------------
    def time_ms(self) -> int:
        return self.now_ms

    # -- execution lifecycle (called from moto's ExecutionWorker) ------------------
    def execution_started(self) -> None:
        with self._cond:
            self._live += 1
            self._cond.notify_all()

    def execution_ended(self) -> None:
        with self._cond:
            self._live -= 1
            self._cond.notify_all()

    # -- parking (called from moto's threads) -------------------------------------
    def park(
        self,
        *,
        seconds: float | None,
        event: threading.Event | None,
        label: str,
        cancelled: Callable[[], bool] | None = None,
    ) -> bool:
        """Block until ``event`` is set, ``cancelled()`` holds, or ``seconds`` of virtual time pass.

        Returns True when the event woke the thread, False otherwise.
        """
        with self._cond:
            if event is not None and event.is_set():
                return True
            deadline = None if seconds is None else self.now_ms + round(seconds * 1000)
            self._seq += 1
            park = _Park(deadline, event, label, self._seq, cancelled)
            self._parked.append(park)
            self._cond.notify_all()
            while park.woken_by is None:
                self._cond.wait()
            return park.woken_by == "event"

    def poke(self) -> None:
        """Wake the parked threads whose event is set (called right after a notify)."""
        with self._cond:
            for park in list(self._parked):
                if park.event is not None and park.event.is_set():
                    self._release(park, "event")
                elif park.cancelled is not None and park.cancelled():
                    self._release(park, "cancelled")

    def _release(self, park: _Park, reason: str) -> None:
        park.woken_by = reason
        self._parked.remove(park)
        self._cond.notify_all()

    # -- the replay loop's side ---------------------------------------------------
    def settle(self) -> None:
        """Return once every live execution is parked or finished."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: self._live <= len(self._parked), timeout=self.settle_timeout_s
            )
            if not ok:
                raise TwinStalled(
                    f"{self._live - len(self._parked)} execution(s) still running after "
                    f"{self.settle_timeout_s}s of real time; parked: "
                    f"{[p.label for p in self._parked]}"
                )

    def next_deadline(self) -> int | None:
        with self._cond:
            deadlines = [p.deadline_ms for p in self._parked if p.deadline_ms is not None]
            return min(deadlines) if deadlines else None

    def advance_to(self, target_ms: int) -> None:
        """Move virtual time to ``target_ms``, firing every due deadline in order."""
        self.settle()
        while True:
            with self._cond:
                due = [
                    p
                    for p in self._parked
                    if p.deadline_ms is not None and p.deadline_ms <= target_ms
                ]
                if not due:
                    self.now_ms = max(self.now_ms, target_ms)
                    return
                first = min(due, key=lambda p: (p.deadline_ms, p.seq))
                self.now_ms = max(self.now_ms, first.deadline_ms or self.now_ms)
                self._release(first, "deadline")
            self.settle()

    @property
    def live_executions(self) -> int:
        with self._cond:
            return self._live


@dataclass
class LambdaRegistry:
    """Function name -> in-process handler, with the function's environment."""

    handlers: dict[str, Handler] = field(default_factory=dict)
    environments: dict[str, Mapping[str, str]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    invocations: dict[str, int] = field(default_factory=dict)
    async_retries: dict[str, int] = field(default_factory=dict)
    before_invoke: Callable[[str, dict[str, Any]], None] | None = None
    #: called with each invocation's whole stdout (e.g. to read its EMF metrics)
    after_output: Callable[[str, str], None] | None = None
    dead_letters: list[tuple[str, str]] = field(default_factory=list)
    #: What each function printed (its CloudWatch Logs stream), the last lines of it.
    logs: dict[str, deque[str]] = field(default_factory=dict)
    log_lines_kept: int = 200
    async_attempts: int = 3  # Lambda's asynchronous invocation: the call and 2 retries
    #: variables the functions' environments added to ``os.environ`` (see environment())
    added_variables: set[str] = field(default_factory=set)
    #: authorizes each AWS call a handler makes against its function's role (twin.iam)
    authorizer: Any = None
    #: function name -> the principal (logical id) whose role it runs under
    principal_of: dict[str, str] = field(default_factory=dict)
    #: each function's own Powertools parameter caches: a sandbox shares none with another
    _parameter_caches: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: AWS's limits on payloads and timeouts (set by :func:`install`)
    limits: Limits | None = None
    #: the container a handler is given (in its context's ``services``), asked for inside
    #: the function's sandbox (its environment applied); None: the handler builds its own
    services: Callable[[str], Any] | None = None
    virtual_ms: Callable[[], int] = lambda: 0
    monotonic: Callable[[], float] = time.monotonic
    #: functions whose invocations may overlap (the ``concurrent`` chaos scenario)
    parallel: frozenset[str] = frozenset()
    #: while a list, EventBridge deliveries wait here for :meth:`deliver_deferred`
    deferred: list[tuple[str, dict[str, Any]]] | None = None
    _gate: threading.Condition = field(default_factory=threading.Condition)
    _running: str | None = None
    _holders: int = 0
    _entered: Any = None  # what entering the running function's sandbox saved
    _local: threading.local = field(default_factory=threading.local)

    def register(self, name: str, handler: Handler, environment: Mapping[str, str]) -> None:
        self.handlers[name] = handler
        self.environments[name] = dict(environment)

    def invoke(
        self,
        name: str,
        event: dict[str, Any],
        *,
        retry: bool = False,
        asynchronous: bool = False,
    ) -> Any:
        """Run one handler, one invocation at a time (or alongside invocations of the same
        function, for the functions in ``parallel``).

        ``invocations`` counts deliveries; an asynchronous retry of a failed delivery is
        counted in ``async_retries`` instead. AWS's payload limits and the function's
        ``Timeout`` apply (:class:`~flipbot_dev.twin.limits.Limits`).
        """
        handler = self.handlers[name]
        output = io.StringIO()
        if self.limits is not None:
            self.limits.lambda_request(name, event, asynchronous=asynchronous)
        with self._admitted(name):
            with self._gate:
                counts = self.async_retries if retry else self.invocations
                counts[name] = counts.get(name, 0) + 1
            if self.before_invoke is not None:
                self.before_invoke(name, event)
            started, virtual_start = self.monotonic(), self.virtual_ms()
            try:
                with _captured(output), self._role(name):
                    services = self.services(name) if self.services is not None else None
                    result = handler(event, LambdaContext(function_name=name, services=services))
            finally:
                with self._gate:
                    kept = self.logs.setdefault(name, deque(maxlen=self.log_lines_kept))
                    kept.extend(output.getvalue().splitlines())
                if self.after_output is not None:
                    self.after_output(name, output.getvalue())
            if self.limits is not None:
                elapsed = self.monotonic() - started
                self.limits.lambda_duration(name, elapsed, self.virtual_ms() - virtual_start)
                if not asynchronous:
                    self.limits.lambda_response(name, result)
            return result

    @contextmanager
    def _admitted(self, name: str) -> Iterator[None]:
        """Hold the twin's one Lambda slot for ``name``; a thread already holding it (a
        handler's own thread) goes on, as the lock this replaces let it."""
        depth = getattr(self._local, "depth", 0)
        if depth:
            nested = self._enter_sandbox(name) if name != self._running else None
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth = depth
                if nested is not None:
                    self._leave_sandbox(name, nested)
            return
        with self._gate:
            while self._running is not None and not (
                self._running == name and name in self.parallel
            ):
                self._gate.wait()
            self._running = name
            self._holders += 1
            if self._holders == 1:
                self._entered = self._enter_sandbox(name)
        self._local.depth = 1
        try:
            yield
        finally:
            self._local.depth = 0
            with self._gate:
                self._holders -= 1
                if self._holders == 0:
                    self._leave_sandbox(name, self._entered)
                    self._running = self._entered = None
                    self._gate.notify_all()

    def _enter_sandbox(self, name: str) -> Any:
        """What is a function's own in its Lambda sandbox: its environment and its
        parameter caches (shared by overlapping invocations of the function)."""
        from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

        saved = _apply_environment(self.environments[name])
        outer = dict(DEFAULT_PROVIDERS)
        DEFAULT_PROVIDERS.clear()
        DEFAULT_PROVIDERS.update(self._parameter_caches.get(name, {}))
        return saved, outer

    def _leave_sandbox(self, name: str, entered: Any) -> None:
        from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

        saved, outer = entered
        self._parameter_caches[name] = dict(DEFAULT_PROVIDERS)
        DEFAULT_PROVIDERS.clear()
        DEFAULT_PROVIDERS.update(outer)
        _restore_environment(saved, self.added_variables)

    def _role(self, name: str) -> Any:
        """The function's role, for this thread's AWS calls."""
        if self.authorizer is None:
            return nullcontext()
        return self.authorizer.acting_as(self.principal_of.get(name, name))

    def deliver_deferred(self) -> int:
        """Run the deferred EventBridge deliveries at once, one thread each, and wait for
        them all: invocations of a function in ``parallel`` overlap, the others queue for
        the Lambda slot. Returns how many were delivered."""
        batch, self.deferred = list(self.deferred or []), []
        if not batch:
            return 0
        start = threading.Barrier(len(batch))
        errors: list[BaseException] = []

        def deliver(name: str, event: dict[str, Any]) -> None:
            try:
                start.wait()
                self.invoke_async(name, event)
            except BaseException as exc:  # reported in the caller's thread
                errors.append(exc)

        threads = [
            threading.Thread(target=deliver, args=item, name=f"delivery-{n}", daemon=True)
            for n, item in enumerate(batch)
        ]
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-4)  # interleave the handlers finely, as separate sandboxes do
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            sys.setswitchinterval(interval)
        if errors:
            raise errors[0]
        return len(batch)

    def restore_environment(self) -> None:
        """Delete the variables the functions' environments added to ``os.environ``."""
        import os

        with self.lock, self._gate:
            for key in sorted(self.added_variables):
                os.environ.pop(key, None)
            self.added_variables.clear()

    def invoke_async(self, name: str, event: dict[str, Any]) -> bool:
        """An asynchronous invocation (EventBridge, schedules): retried, then dead-lettered."""
        error: Exception | None = None
        for attempt in range(self.async_attempts):
            try:
                self.invoke(name, event, retry=attempt > 0, asynchronous=True)
                return True
            except Exception as exc:  # the Lambda service retries any failure
                error = exc
        with self._gate:
            self.dead_letters.append((name, f"{type(error).__name__}: {error}"))
        return False


@dataclass
class LambdaContext:
    """The few attributes of the Lambda context that Powertools and handlers read."""

    function_name: str
    memory_limit_in_mb: int = 256
    aws_request_id: str = "twin-request"
    invoked_function_arn: str = ""
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    #: the handler's container (:func:`flipbot.composition.container` returns it)
    services: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@contextmanager
def environment(env: Mapping[str, str], *, added: set[str] | None = None) -> Iterator[None]:
    """``os.environ`` with ``env`` applied for the block, then restored.

    With ``added``, a variable the block introduced is left in place and its name put in
    ``added`` instead of being deleted: moto's execution threads copy ``os.environ``
    (creating boto3 clients) outside the invocation lock, and a key deleted in the middle
    of that copy raises ``KeyError`` in *their* thread, which the state machine reports as
    ``States.Runtime``. :meth:`LambdaRegistry.restore_environment` deletes them at the end.
    """
    saved = _apply_environment(env)
    try:
        yield
    finally:
        _restore_environment(saved, added)


def _apply_environment(env: Mapping[str, str]) -> dict[str, str | None]:
    import os

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    return saved


def _restore_environment(saved: Mapping[str, str | None], added: set[str] | None) -> None:
    import os

    for key, value in saved.items():
        if value is not None:
            os.environ[key] = value
        elif added is not None:
            added.add(key)
        else:
            os.environ.pop(key, None)


class _ThreadStdout(io.TextIOBase):
    """``sys.stdout`` that writes to the current thread's capture, if it has one: each
    invocation's output stays its own when invocations overlap."""

    def __init__(self, original: Any) -> None:
        self.original = original
        self.local = threading.local()

    def _target(self) -> Any:
        return getattr(self.local, "buffer", None) or self.original

    def write(self, text: str) -> int:
        written: int = self._target().write(text)
        return written

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


@contextmanager
def _captured(buffer: io.StringIO) -> Iterator[None]:
    """Send this thread's prints to ``buffer`` for the block."""
    stdout = sys.stdout
    if not isinstance(stdout, _ThreadStdout):
        with redirect_stdout(buffer):
            yield
        return
    outer = getattr(stdout.local, "buffer", None)
    stdout.local.buffer = buffer
    try:
        yield
    finally:
        stdout.local.buffer = outer


def lambda_error_payload(exc: BaseException) -> str:
    """The payload Lambda returns for an unhandled exception; ``errorType`` names the error."""
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": getattr(exc, "error_type", type(exc).__name__),
            "requestId": "twin-request",
            "stackTrace": traceback.format_exception(exc)[-3:],
        }
    )


@contextmanager
def install(
    scheduler: VirtualScheduler, registry: LambdaRegistry, limits: Limits | None = None
) -> Iterator[None]:
    """Patch moto for the duration of the block; everything is restored on exit.

    ``limits`` (AWS's, by default) are enforced and measured throughout.
    """
    import moto
    from moto.awslambda.models import LambdaFunction
    from moto.events.models import Rule
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec import execute_state
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback,
        state_task_service_sfn,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
    from moto.stepfunctions.parser.asl.eval import environment as environment_module
    from moto.stepfunctions.parser.asl.eval import program_state
    from moto.stepfunctions.parser.asl.eval.callback import callback
    from moto.stepfunctions.parser.backend import execution_worker
    from moto.utilities.arns import parse_arn

    if moto.__version__ != MOTO_VERSION:
        raise RuntimeError(
            f"the twin's hooks are written for moto {MOTO_VERSION}, found {moto.__version__}"
        )

    saved: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, value: Any) -> None:
        saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    limits = limits or Limits()
    registry.limits = limits
    registry.virtual_ms = scheduler.time_ms
    stdout = sys.stdout
    sys.stdout = _ThreadStdout(stdout)

    # Lambda: run the handler in process.
    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        payload = json.loads(event) if isinstance(event, str | bytes) else (event or {})
        try:
            result = registry.invoke(self.function_name, payload)
        except Exception as exc:  # the Lambda runtime reports any exception
            return lambda_error_payload(exc), True, ""
        return json.dumps(result), False, ""

    patch(LambdaFunction, "_invoke_lambda", _invoke_lambda)

    # EventBridge: deliver to Lambda targets in process, the rest through moto.
    original_send = Rule.send_to_targets

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        if not self.event_pattern.matches_event(original_event):
            return
        others = []
        for target in self.targets:
            arn = parse_arn(target["Arn"])
            if arn.service == "lambda":
                name = arn.resource_id.split(":")[-1]
                if registry.deferred is not None:
                    registry.deferred.append((name, dict(original_event)))
                else:
                    registry.invoke_async(name, dict(original_event))
            else:
                others.append(target)
        if others:
            all_targets = self.targets
            self.targets = others
            try:
                original_send(self, original_event, transform_input)
            finally:
                self.targets = all_targets

    patch(Rule, "send_to_targets", send_to_targets)

    # Step Functions: the states:startExecution integration hands AWS's PascalCase
    # parameters (StateMachineArn, Name, Input) to boto3, which wants camelCase.
    original_normalise = state_task_service_sfn.StateTaskServiceSfn._normalise_parameters

    def normalise_sfn_parameters(
        self: Any, parameters: dict[str, Any], *args: Any, **kwargs: Any
    ) -> None:
        original_normalise(self, parameters, *args, **kwargs)
        for key in [k for k in parameters if k[:1].isupper()]:
            parameters[key[0].lower() + key[1:]] = parameters.pop(key)

    patch(
        state_task_service_sfn.StateTaskServiceSfn,
        "_normalise_parameters",
        normalise_sfn_parameters,
    )

    # Step Functions: execution lifecycle.
    original_start = execution_worker.ExecutionWorker.start

    def start(self: Any) -> None:
        logic = self._execution_logic

        def counted() -> None:
            try:
                logic()
            finally:
                scheduler.execution_ended()

        scheduler.execution_started()
        self._execution_logic = counted
        original_start(self)  # type: ignore[no-untyped-call]

    patch(execution_worker.ExecutionWorker, "start", start)

    # StopExecution: wake whatever the stopped execution is parked on, so that it ends.
    original_stop = execution_worker.ExecutionWorker.stop

    def stop(self: Any, *args: Any, **kwargs: Any) -> None:
        original_stop(self, *args, **kwargs)
        if self.env is not None:
            for endpoint in list(self.env.callback_pool_manager._pool.values()):
                endpoint.interrupt_all()
        scheduler.poke()

    patch(execution_worker.ExecutionWorker, "stop", stop)

    # A stopped execution stays ABORTED, as on AWS: the error its interrupted task raises
    # afterwards must not overwrite the stop (moto's Environment.set_error does).
    original_set_error = environment_module.Environment.set_error

    def set_error(self: Any, error: Any) -> None:
        if isinstance(self._program_state, program_state.ProgramStopped):
            return
        original_set_error(self, error)

    patch(environment_module.Environment, "set_error", set_error)

    # Step Functions: callbacks and heartbeats on the virtual clock.
    def callback_wait(self: Any, timeout: float | None = None) -> Any:
        scheduler.park(seconds=timeout, event=self._notify_event, label="task token")
        return self._outcome

    def heartbeat_clear_and_wait(self: Any, limit: float | None = None) -> bool:
        """True when a heartbeat came within ``HeartbeatSeconds`` (or ``limit``, if sooner)."""
        with self._mutex:
            if self._next_heartbeat_event.is_set():
                self._next_heartbeat_event.clear()
                return True
        seconds = self._heartbeat_seconds if limit is None else min(self._heartbeat_seconds, limit)
        return scheduler.park(seconds=seconds, event=self._next_heartbeat_event, label="heartbeat")

    patch(callback.CallbackEndpoint, "wait", callback_wait)
    patch(callback.HeartbeatEndpoint, "clear_and_wait", heartbeat_clear_and_wait)

    # A callback task with both a heartbeat and a timeout (PlaceSell): moto's heartbeat loop
    # never looks at the task's timeout, leaving it to the parent thread (kept untimed
    # below). As on AWS, whichever comes first ends the wait: a missed heartbeat
    # (States.HeartbeatTimeout) or the task's timeout (States.Timeout).
    original_token_wait = (
        state_task_service_callback.StateTaskServiceCallback._eval_wait_for_task_token
    )

    def wait_for_task_token(
        self: Any,
        env: Any,
        timeout_seconds: int,
        callback_endpoint: Any,
        heartbeat_endpoint: Any,
    ) -> Any:
        if heartbeat_endpoint is None:
            return original_token_wait(
                self, env, timeout_seconds, callback_endpoint, heartbeat_endpoint
            )
        deadline_ms = scheduler.now_ms + int(timeout_seconds) * 1000
        while env.is_running():
            remaining = (deadline_ms - scheduler.now_ms) / 1000
            if remaining <= 0:
                break
            received = heartbeat_clear_and_wait(heartbeat_endpoint, limit=remaining)
            outcome = callback_endpoint.get_outcome()
            if outcome is not None:
                return outcome
            if not received and scheduler.now_ms < deadline_ms and env.is_running():
                return callback.HeartbeatTimedOut()
        return callback.CallbackOutcomeTimedOut(callback_id=callback_endpoint.callback_id)

    patch(
        state_task_service_callback.StateTaskServiceCallback,
        "_eval_wait_for_task_token",
        wait_for_task_token,
    )
    for owner, name in (
        (callback.CallbackEndpoint, "notify"),
        (callback.CallbackEndpoint, "notify_heartbeat"),
        (callback.CallbackEndpoint, "interrupt_all"),
        (callback.HeartbeatEndpoint, "notify"),
    ):
        patch(owner, name, _poking(getattr(owner, name), scheduler))

    # Step Functions: Wait states and Retry intervals on the virtual clock.
    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        if wait_seconds > 0:
            scheduler.park(
                seconds=wait_seconds,
                event=None,
                label="Wait state",
                cancelled=lambda: not env.is_running(),
            )

    patch(wait_function.WaitFunction, "_wait_interval", wait_interval)

    # A Task's TimeoutSeconds: moto's parent thread waits for the task's own thread with a
    # real-time timeout, which a slow or loaded machine would hit in wall-clock time. The
    # task's thread keeps the timeout in virtual time (the callback wait above), so the
    # parent waits for it without one. (A plain Lambda task's TimeoutSeconds is therefore
    # not enforced in the twin; the trade cycle sets timeouts only on callback waits.)
    patch(execute_state, "threading", SimpleNamespace(Event=_UntimedEvent))
    patch(
        retrier_decl,
        "time",
        SimpleNamespace(
            sleep=lambda s: scheduler.park(seconds=s, event=None, label="retry interval")
        ),
    )
    try:
        # (before the limits: their one-request-at-a-time lock then holds the regrouping
        # a write makes, so no query groups an index between a write's clear and the write)
        _keyed_queries(patch)
        _limit_hooks(patch, limits)
        _once(patch)
        _wire_items(patch)
        yield
    finally:
        registry.restore_environment()
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)
        if isinstance(sys.stdout, _ThreadStdout):
            sys.stdout = stdout


class _UntimedEvent(threading.Event):
    """An Event whose ``wait`` ignores a timeout: waits end in virtual time, not real time."""

    def wait(self, timeout: float | None = None) -> bool:
        return super().wait()


def _poking(method: Callable[..., Any], scheduler: VirtualScheduler) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = method(*args, **kwargs)
        scheduler.poke()
        return result

    return wrapper


def _once(patch: Callable[[Any, str, Any], None]) -> None:
    """moto's work that gives the same result at every call, done once per input."""
    import functools

    from jsonpath_ng.ext.parser import parse as parse_json_path
    from moto.core import responses
    from moto.core.utils import method_names_from_class
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.utils import boto_client, json_path
    from moto.stepfunctions.parser.backend import execution_worker

    patch(json_path, "parse", functools.lru_cache(maxsize=1024)(parse_json_path))
    names = functools.lru_cache(maxsize=256)(lambda cls: frozenset(method_names_from_class(cls)))
    patch(responses, "method_names_from_class", names)

    @functools.lru_cache(maxsize=16)
    def program(definition: str) -> Any:
        entry = AmazonStateLanguageParser.parse(definition)[0]
        # A component's heap key (its retry counters' name in an execution's heap) is made
        # on first use: made here, before executions share the tree from several threads.
        seen: set[int] = set()
        todo: list[Any] = [entry]
        while todo:
            node = todo.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, EvalComponent):
                _ = node.heap_key
            if isinstance(node, list | tuple):
                todo.extend(node)
            elif isinstance(node, dict):
                todo.extend(node.values())
            elif hasattr(node, "__dict__") and type(node).__module__.startswith("moto."):
                todo.extend(vars(node).values())
        return entry

    patch(
        execution_worker.ExecutionWorker,
        "_get_evaluation_entrypoint",
        lambda self: program(self._evaluation_details.state_machine_details.definition),
    )
    # (moto's client takes no credentials from the state: one per region and service)
    client_for = functools.lru_cache(maxsize=16)(boto_client.boto_client_for)
    patch(
        lambda_eval_utils,
        "boto_client_for",
        lambda region, service, state_credentials=None: client_for(region, service),
    )


def _keyed_queries(patch: Callable[[Any, str, Any], None]) -> None:
    """A Query walks the items of its key only (see the module docstring).

    moto's ``Table.query`` filters ``all_items()`` (every item, sorted) by the key;
    during one query the table answers ``all_items()`` with the items that can match,
    in the same order, so the result is the same. DynamoDB requests run one at a time
    (:func:`_limit_hooks`), so no other request sees the narrowed table.

    An index's items are grouped by their key once, and the grouping serves the
    queries that follow until a request other than a read changes any table.
    """
    import inspect

    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    query = Table.query
    signature = inspect.signature(query)
    # (table, index, key attribute names) -> the index's items by their key's values
    groups: dict[tuple[int, str, tuple[str, ...]], dict[tuple[Any, ...], list[Any]]] = {}
    handled = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        if self._get_action() not in _DYNAMODB_READS:
            groups.clear()
        return handled(self)

    patch(DynamoHandler, "call_action", call_action)

    def grouped(table: Any, index: str, names: tuple[str, ...]) -> dict[tuple[Any, ...], list[Any]]:
        key = (id(table), index, names)
        if key not in groups:
            by_key: dict[tuple[Any, ...], list[Any]] = {}
            for bucket in table.items.values():
                for item in bucket.values() if table.range_key_attr else (bucket,):
                    values = tuple(item.attrs.get(name) for name in names)
                    if all(v is not None for v in values):
                        by_key.setdefault(values, []).append(item)
            for items in by_key.values():
                items.sort(key=order)
            groups[key] = by_key
        return groups[key]

    def order(item: Any) -> Any:  # moto's all_items() order
        return (item.hash_key, item.range_key) if item.range_key else item.hash_key

    def keyed(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = signature.bind(self, *args, **kwargs).arguments
        hash_key = call.get("hash_key")
        if call.get("index_name") is None:
            if hash_key is None:
                return query(self, *args, **kwargs)
            bucket = self.items.get(hash_key, None)
            if bucket is None:
                items = []
            else:
                items = list(bucket.values()) if self.range_key_attr else [bucket]
            items.sort(key=order)
        else:
            conditions = call.get("hash_key_conditions") or []
            if not conditions:
                return query(self, *args, **kwargs)
            names = tuple(name for name, _ in conditions)
            wanted = tuple(value for _, value in conditions)
            items = grouped(self, call["index_name"], names).get(wanted, [])
        self.all_items = lambda: items
        try:
            return query(self, *args, **kwargs)
        finally:
            del self.all_items

    patch(Table, "query", keyed)


def _wire_items(patch: Callable[[Any, str, Any], None]) -> None:
    """DynamoDB attribute values written into a response as stored (see the module
    docstring), when :func:`_as_stored` says moto's walk would give them unchanged."""
    from moto.core.serialize import BaseJSONSerializer

    walk = BaseJSONSerializer._serialize_type_structure

    def structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and _as_stored(value):
            serialized[key] = value
            return
        walk(self, serialized, value, shape, key)

    patch(BaseJSONSerializer, "_serialize_type_structure", structure)


def _as_stored(value: Any) -> bool:
    """``value`` is a DynamoDB attribute value in wire form without binary data: one
    member (S, N, SS, NS, BOOL, NULL, M or L) of the type moto's walk writes as is."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    if kind in ("S", "N"):
        return type(inner) is str
    if kind in ("SS", "NS"):
        return type(inner) is list and all(type(v) is str for v in inner)
    if kind in ("BOOL", "NULL"):
        return type(inner) is bool
    if kind == "M":
        return type(inner) is dict and all(
            type(k) is str and _as_stored(v) for k, v in inner.items()
        )
    if kind == "L":
        return type(inner) is list and all(_as_stored(v) for v in inner)
    return False


_DYNAMODB_READS = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "TransactGetItems",
        "DescribeTable",
        "ListTables",
        "DescribeTimeToLive",
        "ListTagsOfResource",
    }
)
"""The DynamoDB requests that change no item (any other one regroups the indexes)."""


def _limit_hooks(patch: Callable[[Any, str, Any], None], limits: Limits) -> None:
    """AWS's limits on Step Functions, EventBridge and DynamoDB (see flipbot_dev.twin.limits)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler
    from moto.events.exceptions import ValidationException
    from moto.events.models import EventsBackend
    from moto.stepfunctions.parser.api import HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name import error_equals_decl
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state import state as state_module
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service,
    )
    from moto.stepfunctions.parser.asl.eval.event import event_manager

    from flipbot_dev.twin.limits import json_size, put_events_entry_size

    class HistoryLimitReached(FailureEventException):
        """The execution's next event would pass the history quota: States.Runtime."""

        def __init__(self, limit: int) -> None:
            self.error = StatesErrorNameType.StatesRuntime.to_name()
            self.cause = f"The execution reached the maximum number of history events ({limit})."
            Exception.__init__(self, self.cause)
            # What a state reads of a failure on its way out (moto's FailureEvent needs
            # the state's environment, which adding an event does not have).
            self.failure_event = SimpleNamespace(  # type: ignore[assignment,misc]
                error_name=StatesErrorName(typ=StatesErrorNameType.StatesRuntime),
                event_type=HistoryEventType.TaskFailed,
                event_details=None,
            )

        def get_execution_failed_event_details(self) -> Any:
            return {"error": self.error, "cause": self.cause}

    # Step Functions state data: moto checks task results and state outputs against the
    # quota; the hook measures each and applies AWS's figure (at most 256 KiB).
    def within_quota(value: Any) -> bool:
        return limits.see("stepfunctions_state_data", json_size(value), "state data")

    for module in (state_module, state_task_lambda, state_task_service):
        patch(module, "is_within_size_quota", within_quota)

    # ...and a task's input after Parameters, which moto does not check.
    original_before = state_task_service.StateTaskService._before_eval_execution

    def before_eval_execution(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        raw_parameters = kwargs.get("raw_parameters", args[1] if len(args) > 1 else None)
        self._verify_size_quota(env, raw_parameters)
        original_before(self, env, *args, **kwargs)

    patch(state_task_service.StateTaskService, "_before_eval_execution", before_eval_execution)

    # States.ALL matches neither States.DataLimitExceeded nor States.Runtime: both end the
    # execution unless a Retry or Catch names them.
    terminal = [
        StatesErrorName(typ=StatesErrorNameType.StatesStatesDataLimitExceeded),
        StatesErrorName(typ=StatesErrorNameType.StatesRuntime),
    ]
    original_equals = error_equals_decl.ErrorEqualsDecl._eval_body

    def error_equals(self: Any, env: Any) -> None:
        error_name = env.stack[-1]
        if error_name in terminal and error_name not in self.error_names:
            env.stack.pop()
            env.stack.append(False)
            return
        original_equals(self, env)

    patch(error_equals_decl.ErrorEqualsDecl, "_eval_body", error_equals)

    # Execution history: the event that would be the last one allowed fails the execution,
    # unless it ends it.
    ending = {
        HistoryEventType.ExecutionSucceeded,
        HistoryEventType.ExecutionFailed,
        HistoryEventType.ExecutionAborted,
        HistoryEventType.ExecutionTimedOut,
    }
    original_add_event = event_manager.EventManager.add_event

    def add_event(self: Any, context: Any, event_type: Any, *args: Any, **kwargs: Any) -> int:
        limit = limits.quotas.history_events
        upcoming = self._event_id_gen._next_id
        if upcoming >= limit and event_type not in ending:
            raise HistoryLimitReached(limit)
        event_id: int = original_add_event(self, context, event_type, *args, **kwargs)
        limits.see("stepfunctions_history_events", event_id, "an execution's history")
        return event_id

    patch(event_manager.EventManager, "add_event", add_event)

    # EventBridge: at most 256 KiB of entries a call (moto checks the 10 entries).
    original_put_events = EventsBackend.put_events

    def put_events(self: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        limits.see("eventbridge_put_events_entries", len(events), "PutEvents")
        total = sum(put_events_entry_size(e) for e in events)
        if not limits.see("eventbridge_put_events_size", total, "PutEvents"):
            raise ValidationException("Total size of the entries in the request is over the limit.")
        result: list[dict[str, Any]] = original_put_events(self, events)
        return result

    patch(EventsBackend, "put_events", put_events)

    # DynamoDB: one request at a time, each atomic as DynamoDB's per-item operations are
    # (moto's conditional writes are not, across threads); stored items are measured.
    dynamodb_lock = threading.RLock()
    original_call_action = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with dynamodb_lock:
            return original_call_action(self)

    patch(DynamoHandler, "call_action", call_action)
    for method in ("put_item", "update_item"):
        patch(DynamoDBBackend, method, _measured_item(getattr(DynamoDBBackend, method), limits))


def _measured_item(method: Callable[..., Any], limits: Limits) -> Callable[..., Any]:
    def wrapper(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        item = method(self, table_name, *args, **kwargs)
        if item is not None:
            limits.see("dynamodb_item_size", int(item.size()), table_name)
        return item

    return wrapper
