"""The AI decision maker: OpenAI chat completions with structured outputs.

:class:`OpenAiDecisionMaker` implements :class:`flipbot.ports.DecisionMaker` with the
real ``openai`` client against any OpenAI-compatible endpoint (api.openai.com,
OpenRouter, DeepSeek, a local server: ``OPENAI_BASE_URL``). It sends the versioned
prompt of :mod:`flipbot.ai.prompt` with the market context of :mod:`flipbot.ai.context`
and asks for the strict JSON schema :class:`flipbot.ai.answer.AiAnswer`.

Outcomes, by what the endpoint does. Every failure raises
:class:`~flipbot.domain.errors.AiUnavailable` with the message ``"<code>: <detail>"``
(never a secret, never the SDK's own message); the fallback wrapper turns it into an
offline-strategy decision or a WAIT. ``<code>`` is also ``last_call["error"]``.

* valid answer: the :class:`Decision`; the consult's guards still apply.
* absurd price, sell below the floor, confidence under the minimum: the
  :class:`Decision` as given; the guards reject it with a recorded reason (a buy waits
  and re-consults, a sell is placed at the safe price, the profit floor).
* refusal (``message.refusal``): ``refusal``.
* ``finish_reason: length`` (truncated): ``truncated``; ``content_filter``:
  ``content_filter``.
* content that is not JSON, or not the schema (unknown action, confidence outside
  0..1, a missing field), or a non-finite number: ``invalid_answer``.
* 429: retried by the client up to ``max_retries`` times (honouring ``retry-after``),
  then ``rate_limited``.
* 5XX: retried likewise, then ``server_error``; a timeout: retried likewise, then
  ``timeout``; connection refused: retried likewise, then ``connection``.
* no complete answer within the total deadline (``timeout`` x (1 + ``max_retries``)
  by default, whatever the retries and however slowly the body arrives: the client's
  timeout bounds each read, not the whole answer): ``timeout``, at the deadline. The
  request goes on in the background until it ends; its late answer is dropped and
  its tokens are charged to the budget.
* any other status (401, 403, 400 ...): at once, ``http_<status>``. An endpoint that does
  not support ``response_format: json_schema`` answers 400 here and the fallback decides.
* daily budget spent: ``budget``, without calling the endpoint.

After every call, successful or not, ``last_call`` (per thread) holds the audit keys
the consult records: ``decided_by`` (``ai:<model>``), ``model``, ``prompt_version``,
``tokens_in``, ``tokens_out``, ``cost_usd`` (``Decimal``, from the price table),
``latency_ms``, ``raw_answer`` (the model's text or refusal, or a short note such as
``HTTP 500``), ``retries`` and ``error`` (one of the codes above, or ``""``). Tokens of
failed answers (truncated, refused, invalid) are charged too: they were billed. A
``usage`` that is not an object of token counts (a string, ``1e400``) counts as none.

``openai`` is imported on first use only (about 0.7 s at cold start); a function that
never consults never pays for it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NoReturn

from flipbot.ai.answer import AiAnswer, InvalidAnswer, to_decision
from flipbot.ai.context import ContextProvider, build_context, gather_signals
from flipbot.ai.cost import DailyBudget, PriceTable, parse_price_table
from flipbot.ai.fallback import FallbackDecisionMaker, FallbackMode
from flipbot.ai.prompt import PROMPT_VERSION, build_messages
from flipbot.domain.decision import Decision, DecisionRequest
from flipbot.domain.errors import AiUnavailable
from flipbot.ports import DecisionMaker

if TYPE_CHECKING:
    from flipbot.ai.voting import ModelSpec

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MODEL",
    "DEFAULT_TIMEOUT_SECONDS",
    "OpenAiDecisionMaker",
    "build_ai_decider",
    "decider_from_env",
    "is_placeholder_key",
    "openai_client",
    "parse_models",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT_SECONDS = 20.0
"""Per attempt. With :data:`DEFAULT_MAX_RETRIES` the worst case stays under a minute,
inside the consult function's 90 s Lambda timeout."""
DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_COMPLETION_TOKENS = 600
_RAW_LIMIT = 4000
_PLACEHOLDER_KEYS = frozenset({"", "fill_me", "changeme", "change_me", "replace_me", "todo", "xxx"})


def is_placeholder_key(api_key: str) -> bool:
    """True for an empty key or a placeholder such as the template's ``FILL_ME``."""
    return api_key.strip().lower() in _PLACEHOLDER_KEYS


def openai_client(
    api_key: str,
    *,
    base_url: str = "",
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_retries: int = DEFAULT_MAX_RETRIES,
    http_client: Any = None,
) -> Any:
    """An ``openai.OpenAI`` client for ``base_url`` (empty: api.openai.com).

    The base URL is always passed explicitly: an empty ``OPENAI_BASE_URL`` in the
    environment would otherwise reach the SDK as an empty URL. ``http_client`` (an
    ``httpx2.Client``) is for tests that route requests to a mock transport.
    """
    from openai import OpenAI

    return OpenAI(
        api_key=api_key,
        base_url=base_url.strip() or DEFAULT_BASE_URL,
        timeout=timeout,
        max_retries=max_retries,
        http_client=http_client,
    )


def build_ai_decider(
    api_key: str,
    *,
    fallback: DecisionMaker,
    model: str = DEFAULT_MODEL,
    base_url: str = "",
    budget_usd: Decimal = Decimal(1),
    now_ms: Callable[[], int],
    mode: FallbackMode = "fallback",
    price_table: str = "",
    price_band: Decimal | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_retries: int = DEFAULT_MAX_RETRIES,
    deadline: float | None = None,
    http_client: Any = None,
    context_providers: Sequence[ContextProvider] = (),
    models: Sequence[ModelSpec] = (),
    host_keys: Mapping[str, str] | None = None,
) -> FallbackDecisionMaker:
    """The production wiring: the OpenAI decision maker behind the fallback wrapper.

    ``budget_usd`` is the daily limit counted on the ``now_ms`` clock; ``price_table`` is
    the ``AI_PRICE_TABLE`` JSON (empty: the defaults). ``deadline`` bounds a whole
    decision (default ``timeout * (1 + max_retries)``); ``http_client`` routes the
    requests elsewhere (the digital twin's scripted endpoints). Production passes neither.
    ``context_providers`` are the outside signals (sentiment) each prompt carries.

    ``models`` (``AI_MODELS``, see :mod:`flipbot.ai.voting`): with two or more, they vote
    (:class:`~flipbot.ai.voting.VotingDecisionMaker`) and ``model`` is not asked; an entry
    without an endpoint is asked at ``base_url``. Each endpoint is called with
    ``host_keys[<its host>]`` (``host`` or ``host:port``, as written in its URL) when
    given, else ``api_key``. All models share one daily
    budget.
    """
    table = PriceTable(parse_price_table(price_table))
    budget = DailyBudget(budget_usd, now_ms=now_ms)

    def member(name: str, endpoint: str) -> OpenAiDecisionMaker:
        url = endpoint or base_url
        client = openai_client(
            _key_for(url, api_key, host_keys or {}),
            base_url=url,
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
        )
        return OpenAiDecisionMaker(
            client,
            name,
            price_table=table,
            timeout=timeout,
            max_retries=max_retries,
            budget=budget,
            price_band=price_band,
            deadline=deadline,
            context_providers=context_providers,
        )

    primary: DecisionMaker
    if len(models) > 1:
        from flipbot.ai.voting import VotingDecisionMaker

        members = [member(spec.model, spec.base_url) for spec in models]
        names = [spec.model for spec in models]
        unique = len(set(names)) == len(names)
        primary = VotingDecisionMaker(
            members,
            deadline=members[0].deadline,
            labels=names if unique else [spec.label for spec in models],
        )
    elif models:
        primary = member(models[0].model, models[0].base_url)
    else:
        primary = member(model, "")
    return FallbackDecisionMaker(primary, fallback, mode=mode)


def _key_for(base_url: str, api_key: str, host_keys: Mapping[str, str]) -> str:
    """The key for ``base_url``'s host (``host`` or ``host:port`` as in the URL): its own
    from ``host_keys``, else ``api_key``."""
    from urllib.parse import urlsplit

    host = urlsplit(base_url.strip() or DEFAULT_BASE_URL).netloc.lower()
    return host_keys.get(host) or api_key


def decider_from_env(
    env: Mapping[str, str],
    *,
    fallback: DecisionMaker,
    now_ms: Callable[[], int],
    default_model: str = DEFAULT_MODEL,
    default_models: str = "",
    price_band: Decimal | None = None,
) -> DecisionMaker:
    """The AI decision maker configured by a process environment (the local twin's CLI).

    Reads ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``AI_MODEL`` (else ``default_model``),
    ``AI_MODELS`` (else ``default_models``; two or more vote, each endpoint called with
    ``OPENAI_API_KEY``), ``AI_DAILY_BUDGET_USD`` (default 1), ``AI_FALLBACK`` and
    ``AI_PRICE_TABLE``. Without a usable key the answer is ``fallback`` itself, and a log
    line says so.
    """
    from flipbot.domain.errors import ConfigurationError

    api_key = env.get("OPENAI_API_KEY", "")
    if is_placeholder_key(api_key):
        logger.warning("AI off: OPENAI_API_KEY is not set; %s decides", fallback.name)
        return fallback
    raw_budget = env.get("AI_DAILY_BUDGET_USD") or "1"
    try:
        budget = Decimal(raw_budget)
    except ArithmeticError:
        raise ConfigurationError(f"AI_DAILY_BUDGET_USD={raw_budget!r} is not a number") from None
    mode = env.get("AI_FALLBACK") or "fallback"
    if mode not in ("fallback", "wait"):
        raise ConfigurationError(f"AI_FALLBACK={mode!r} must be 'fallback' or 'wait'")
    return build_ai_decider(
        api_key,
        fallback=fallback,
        model=env.get("AI_MODEL") or default_model,
        base_url=env.get("OPENAI_BASE_URL", ""),
        budget_usd=budget,
        now_ms=now_ms,
        mode=mode,  # type: ignore[arg-type]
        price_table=env.get("AI_PRICE_TABLE", ""),
        price_band=price_band,
        models=parse_models(env.get("AI_MODELS") or default_models),
    )


def parse_models(text: str) -> tuple[ModelSpec, ...]:
    """``AI_MODELS`` parsed; the voting module is loaded only when it is set."""
    if not text.strip():
        return ()
    from flipbot.ai.voting import parse_ai_models

    return parse_ai_models(text)


class OpenAiDecisionMaker:
    """Asks an OpenAI-compatible chat model for a leg's price; see the module docstring.

    ``client`` is an ``openai.OpenAI`` (see :func:`openai_client`); ``timeout`` (seconds
    per attempt) and ``max_retries`` are applied to every request whatever the client's
    own settings; ``deadline`` (seconds, default ``timeout * (1 + max_retries)``) bounds
    a whole :meth:`decide`. ``budget`` stops calls once the day's AI spending reached its limit.
    ``context_providers`` add outside signals to the prompt (none by default).
    ``temperature`` is sent only when set: reasoning models refuse anything but the
    default.
    """

    def __init__(
        self,
        client: Any,
        model: str = DEFAULT_MODEL,
        *,
        prompt_version: str = PROMPT_VERSION,
        price_table: PriceTable | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_retries: int = DEFAULT_MAX_RETRIES,
        budget: DailyBudget | None = None,
        context_providers: Sequence[ContextProvider] = (),
        price_band: Decimal | None = None,
        max_completion_tokens: int = DEFAULT_MAX_COMPLETION_TOKENS,
        temperature: float | None = None,
        deadline: float | None = None,
    ) -> None:
        if timeout <= 0 or max_retries < 0 or (deadline is not None and deadline <= 0):
            raise ValueError("timeout and deadline must be > 0, max_retries >= 0")
        self.name = "openai"
        self.model = model
        self.prompt_version = prompt_version
        self.price_table = price_table or PriceTable()
        self.timeout = timeout
        self.max_retries = max_retries
        self.deadline = deadline if deadline is not None else timeout * (1 + max_retries)
        self.budget = budget
        self.context_providers = tuple(context_providers)
        self.price_band = price_band
        self.max_completion_tokens = max_completion_tokens
        self.temperature = temperature
        self._client = client.with_options(timeout=timeout, max_retries=max_retries)
        self._secret = str(getattr(client, "api_key", "") or "")
        self._local = threading.local()
        self._budget_warned_day = -1

    @property
    def last_call(self) -> dict[str, Any]:
        """Audit data of this thread's last :meth:`decide` (see the module docstring)."""
        return dict(getattr(self._local, "call", None) or {})

    # ------------------------------------------------------------------ deciding

    def decide(
        self, request: DecisionRequest, signals: Mapping[str, Mapping[str, str]] | None = None
    ) -> Decision:
        """The model's decision for ``request``, or :class:`AiUnavailable`. ``signals``
        (already gathered, e.g. once for a vote) stand in for the context providers'."""
        call: dict[str, Any] = {
            "decided_by": f"ai:{self.model}",
            "model": self.model,
            "prompt_version": self.prompt_version,
            "tokens_in": 0,
            "tokens_out": 0,
            "cost_usd": Decimal(0),
            "latency_ms": 0,
            "raw_answer": "",
            "retries": 0,
            "error": "",
        }
        self._local.call = call
        if self.budget is not None and self.budget.exhausted():
            self._warn_budget()
            self._fail(
                call,
                "budget",
                f"daily AI budget of {self.budget.limit_usd} USD is spent",
                budget_spent=True,
            )
        if signals is None:
            signals = gather_signals(self.context_providers, request.symbol)
        context = build_context(request, price_band=self.price_band, signals=signals)
        started = time.monotonic()
        try:
            response = self._request_by_deadline(build_messages(context))
        except _DeadlinePassed:
            call["latency_ms"] = _elapsed_ms(started)
            self._fail(
                call, "timeout", f"no complete answer within the {self.deadline:g}s deadline"
            )
        except Exception as exc:
            call["latency_ms"] = _elapsed_ms(started)
            code, detail = self._classify(exc)
            call["raw_answer"] = detail
            self._fail(call, code, detail)
        call["latency_ms"] = _elapsed_ms(started)
        call["retries"] = int(getattr(response, "retries_taken", 0) or 0)
        body = _json_or_none(_text_of(response))
        self._account(call, body)
        call["raw_answer"] = _answer_text(body)[:_RAW_LIMIT]
        return self._decision(call, response, request)

    def _request_by_deadline(self, messages: list[dict[str, str]]) -> Any:
        """:meth:`_request` in a worker thread, waited for until :attr:`deadline` at most.

        Raises :class:`_DeadlinePassed` then; the worker's late answer is dropped, and
        its tokens charged to the budget (they are billed).
        """
        outcome: dict[str, Any] = {}
        lock = threading.Lock()
        done = threading.Event()

        def work() -> None:
            try:
                response = self._request(messages)
            except BaseException as exc:
                with lock:
                    outcome["error"] = exc
                done.set()
                return
            with lock:
                outcome["response"] = response
                late = outcome.get("abandoned", False)
            done.set()
            if late:
                self._charge(_json_or_none(_text_of(response)))

        threading.Thread(target=work, name="ai-request", daemon=True).start()
        done.wait(self.deadline)
        with lock:
            if "response" not in outcome and "error" not in outcome:
                outcome["abandoned"] = True
                raise _DeadlinePassed
        if "error" in outcome:
            raise outcome["error"]
        return outcome["response"]

    def _request(self, messages: list[dict[str, str]]) -> Any:
        extra: dict[str, Any] = {}
        if self.temperature is not None:
            extra["temperature"] = self.temperature
        return self._client.chat.completions.with_raw_response.parse(
            model=self.model,
            messages=messages,
            response_format=AiAnswer,
            max_completion_tokens=self.max_completion_tokens,
            **extra,
        )

    def _decision(self, call: dict[str, Any], response: Any, request: DecisionRequest) -> Decision:
        from openai import ContentFilterFinishReasonError, LengthFinishReasonError

        try:
            completion = response.parse()
        except LengthFinishReasonError:
            self._fail(call, "truncated", "answer truncated (finish_reason=length)")
        except ContentFilterFinishReasonError:
            self._fail(call, "content_filter", "answer withheld by the content filter")
        except Exception as exc:  # pydantic ValidationError, JSON errors, odd bodies
            self._fail(call, "invalid_answer", f"answer is not the JSON schema ({_kind(exc)})")
        choices = getattr(completion, "choices", None) or []
        if not choices:
            self._fail(call, "invalid_answer", "answer has no choices")
        message = choices[0].message
        if getattr(message, "refusal", None):
            self._fail(call, "refusal", "the model refused to answer")
        parsed = getattr(message, "parsed", None)
        if not isinstance(parsed, AiAnswer):
            self._fail(call, "invalid_answer", "answer is empty")
        try:
            return to_decision(parsed, request.leg)
        except InvalidAnswer as exc:
            self._fail(call, "invalid_answer", str(exc))

    # ------------------------------------------------------------------ helpers

    def _account(self, call: dict[str, Any], body: Mapping[str, Any] | None) -> None:
        tokens_in, tokens_out, cost = self._charge(body)
        call.update(tokens_in=tokens_in, tokens_out=tokens_out, cost_usd=cost)

    def _charge(self, body: Mapping[str, Any] | None) -> tuple[int, int, Decimal]:
        """The answer's tokens and cost, charged to the budget.

        A ``usage`` that is not an object of counts (a string, a list, ``1e400``) counts
        as no tokens: the answer still decides, whatever the endpoint's bookkeeping.
        """
        usage = (body or {}).get("usage")
        if not isinstance(usage, Mapping):
            usage = {}
        tokens_in = _int(usage.get("prompt_tokens"))
        tokens_out = _int(usage.get("completion_tokens"))
        cost = self.price_table.cost(self.model, tokens_in, tokens_out)
        if self.budget is not None:
            self.budget.charge(cost)
        return tokens_in, tokens_out, cost

    def _classify(self, exc: Exception) -> tuple[str, str]:
        """``(error code, safe detail)`` for an exception of the request."""
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return "timeout", f"no answer within {self.timeout:g}s ({self.max_retries} retries)"
        if isinstance(exc, openai.APIConnectionError):
            return "connection", f"endpoint unreachable ({self.max_retries} retries)"
        if isinstance(exc, openai.APIStatusError):
            status = int(exc.status_code)
            error_code = _error_code(exc.body)
            suffix = f" {error_code}" if error_code else ""
            if status == 429:
                return "rate_limited", f"HTTP 429{suffix} ({self.max_retries} retries)"
            if status >= 500:
                return "server_error", f"HTTP {status}{suffix} ({self.max_retries} retries)"
            if status in (401, 403):
                logger.error("the AI endpoint refused the API key (HTTP %s)", status)
            return f"http_{status}", f"HTTP {status}{suffix}"
        logger.warning("AI request failed: %s", _kind(exc))
        return "client_error", f"request failed ({_kind(exc)})"

    def _fail(
        self, call: dict[str, Any], code: str, detail: str, *, budget_spent: bool = False
    ) -> NoReturn:
        """Record the failure in ``call`` and raise :class:`AiUnavailable` (no chaining)."""
        detail = self._redact(detail)
        call["error"] = code
        if not call.get("raw_answer"):
            call["raw_answer"] = detail
        raise AiUnavailable(f"{code}: {detail}", budget_spent=budget_spent) from None

    def _redact(self, text: str) -> str:
        if self._secret and len(self._secret) >= 4:
            text = text.replace(self._secret, "***")
        return text

    def _warn_budget(self) -> None:
        assert self.budget is not None
        day = self.budget.day()
        if day != self._budget_warned_day:
            self._budget_warned_day = day
            logger.warning(
                "daily AI budget of %s USD spent: no AI consultation until 00:00 UTC",
                self.budget.limit_usd,
            )


class _DeadlinePassed(Exception):
    """No complete answer within the decision maker's total deadline."""


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _kind(exc: BaseException) -> str:
    return type(exc).__name__


def _int(value: Any) -> int:
    """A non-negative count, or 0 for anything else (``None``, text, NaN, infinity)."""
    try:
        return max(0, int(value))
    except (TypeError, ValueError, OverflowError):
        return 0


def _text_of(response: Any) -> str:
    try:
        return str(response.text)
    except Exception:
        return ""


def _json_or_none(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _answer_text(body: Mapping[str, Any] | None) -> str:
    """The first choice's content (or refusal) from a chat completion body."""
    try:
        message = body["choices"][0]["message"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return ""
    if not isinstance(message, dict):
        return ""
    text = message.get("content") or message.get("refusal") or ""
    return text if isinstance(text, str) else json.dumps(text)


def _error_code(body: object) -> str:
    """The ``error.code`` (or ``code``) of an error body when it is a short identifier."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        code = inner.get("code") if isinstance(inner, dict) else None
        if isinstance(code, str) and code.replace("_", "").isalnum() and len(code) <= 40:
            return code
    return ""
