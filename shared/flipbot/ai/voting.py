"""Several AI models asked at once, their answers combined by the voting rule.

``AI_MODELS`` (the template's ``AiModels``) lists the models, comma-separated; each is
``model`` (asked at ``OPENAI_BASE_URL``) or ``model@base_url`` (any OpenAI-compatible
endpoint), e.g. ``gpt-4o-mini,deepseek-chat@https://api.deepseek.com/v1``. Empty: no
vote, ``AI_MODEL`` decides as before; a single entry: that model (at its endpoint) alone,
in place of ``AI_MODEL``. Errors and audit labels show an endpoint's host only.

:class:`VotingDecisionMaker` asks every model in parallel, each bounded by its own
deadline, and combines what came back with :func:`flipbot.domain.voting.tally`. A model
that fails (timeout, HTTP error, refusal, an answer that is not the schema) is left out
of the vote; without a quorum the vote raises
:class:`~flipbot.domain.errors.AiUnavailable` and the fallback decides, as for a single
model. Its ``last_call`` holds the audit keys of a single model's call, summed over the
models (tokens, ``cost_usd``; the slowest ``latency_ms``), with ``decided_by``
``vote:<model>+<model>...``, and ``audit_extra``: one ``vote.<n>`` entry per model (its
model, action, price, confidence, cost and error) and ``vote.outcome``, which the
consultation record keeps.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flipbot.domain.decision import Decision, DecisionRequest
from flipbot.domain.errors import AiUnavailable, ConfigurationError
from flipbot.domain.voting import Tally, Vote, tally
from flipbot.ports import DecisionMaker

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = ["ModelSpec", "VotingDecisionMaker", "parse_ai_models"]

_RAW_LIMIT = 4000
#: seconds the vote waits beyond the slowest member's own deadline
_GRACE_SECONDS = 1.0


@dataclass(frozen=True)
class ModelSpec:
    """One entry of ``AI_MODELS``: a model and, when not the default one, its endpoint."""

    model: str
    base_url: str = ""

    @property
    def label(self) -> str:
        """The model, with its endpoint's host when it has one (never the URL's path or
        query, which may hold a key)."""
        return f"{self.model}@{_host(self.base_url)}" if self.base_url else self.model


def _host(url: str) -> str:
    """``host[:port]`` of ``url`` (no user info, path or query), or ``?``."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "?"


def _shown(entry: str) -> str:
    """An ``AI_MODELS`` entry as an error may show it: the model and its endpoint's host."""
    model, at, url = entry.partition("@")
    return f"{model}@{_host(url.strip())}" if at else model


def parse_ai_models(text: str) -> tuple[ModelSpec, ...]:
    """The models of an ``AI_MODELS`` value, each once (a repeated model and endpoint is
    one vote); raises :class:`ConfigurationError` naming the bad entry (an empty entry, a
    bad model name, an endpoint that is not http(s))."""
    specs: list[ModelSpec] = []
    if not text.strip():
        return ()
    for raw in text.split(","):
        entry = raw.strip()
        model, _, base_url = entry.partition("@")
        model, base_url = model.strip(), base_url.strip()
        if not model or len(model) > 100 or not all(c.isalnum() or c in "._:/-" for c in model):
            raise ConfigurationError(
                f"AI_MODELS entry {_shown(entry)!r}: expected model or model@https://endpoint/v1"
            )
        if "@" in entry and not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"AI_MODELS entry {_shown(entry)!r}: the endpoint must start with http:// or "
                "https://"
            )
        spec = ModelSpec(model, base_url)
        if spec not in specs:  # the same model twice is one vote
            specs.append(spec)
    return tuple(specs)


class VotingDecisionMaker:
    """Asks ``members`` in parallel and combines their answers; see the module docstring.

    ``labels`` name the members in the audit (default: each member's ``model``);
    ``deadline`` (seconds) is the longest a member may take, its own deadline.
    """

    def __init__(
        self,
        members: Sequence[DecisionMaker],
        *,
        deadline: float,
        labels: Sequence[str] = (),
    ) -> None:
        if len(members) < 2:
            raise ValueError("a vote needs at least two models")
        if labels and len(labels) != len(members):
            raise ValueError("one label per member")
        self.members = tuple(members)
        self.labels = tuple(labels) or tuple(str(getattr(m, "model", m.name)) for m in self.members)
        self.deadline = deadline
        self.name = "vote"
        self._local = threading.local()

    @property
    def last_call(self) -> dict[str, Any]:
        """Audit data of this thread's last :meth:`decide` (see the module docstring)."""
        return dict(getattr(self._local, "call", None) or {})

    def decide(self, request: DecisionRequest) -> Decision:
        from concurrent.futures import ThreadPoolExecutor, wait

        signals = self._signals(request)
        pool = ThreadPoolExecutor(max_workers=len(self.members), thread_name_prefix="ai-vote")
        members = zip(self.members, self.labels, strict=True)
        futures = [pool.submit(_ask, m, label, request, signals) for m, label in members]
        done, _ = wait(futures, timeout=self.deadline + _GRACE_SECONDS)
        pool.shutdown(wait=False, cancel_futures=True)
        results = [_result(f, label, done) for f, label in zip(futures, self.labels, strict=True)]
        votes = [vote for vote, _ in results]
        outcome = tally(votes)
        call = self._call(results, outcome)
        self._local.call = call
        if outcome.decision is None:
            budget = all(v.error == "budget" for v in votes)
            raise AiUnavailable(f"vote: {outcome.reason}", budget_spent=budget)
        return outcome.decision

    def _signals(self, request: DecisionRequest) -> Mapping[str, Mapping[str, str]] | None:
        """The outside signals, gathered once for every member (so each sees the same and
        the members' deadlines start with their requests); ``None`` when the members take
        none."""
        providers = getattr(self.members[0], "context_providers", None)
        if providers is None:
            return None
        from flipbot.ai.context import gather_signals

        return gather_signals(providers, request.symbol)

    def _call(self, results: list[tuple[Vote, dict[str, Any]]], outcome: Tally) -> dict[str, Any]:
        votes = [vote for vote, _ in results]
        share = _RAW_LIMIT // len(results) - 60
        raw = [
            {"model": v.model, "answer": str(c.get("raw_answer", ""))[:share]} for v, c in results
        ]
        extra = {f"vote.{n}": _vote_json(v) for n, v in enumerate(votes, start=1)}
        extra["vote.outcome"] = outcome.reason[:500]
        first = next((c for _, c in results if c.get("prompt_version")), {})
        return {
            "decided_by": "vote:" + "+".join(v.model for v in votes),
            "model": "+".join(v.model for v in votes),
            "prompt_version": first.get("prompt_version", ""),
            "tokens_in": sum(v.tokens_in for v in votes),
            "tokens_out": sum(v.tokens_out for v in votes),
            "cost_usd": sum((v.cost_usd for v in votes), Decimal(0)),
            "latency_ms": max(v.latency_ms for v in votes),
            "raw_answer": json.dumps(raw, separators=(",", ":"))[:_RAW_LIMIT],
            "retries": sum(int(c.get("retries", 0) or 0) for _, c in results),
            "error": "" if outcome.decision is not None else "no_quorum",
            "audit_extra": extra,
        }


def _ask(
    member: DecisionMaker,
    label: str,
    request: DecisionRequest,
    signals: Mapping[str, Mapping[str, str]] | None,
) -> tuple[Vote, dict[str, Any]]:
    """``member``'s answer as a vote, with its ``last_call`` read in the thread that asked;
    ``signals`` go to a member that takes them."""
    try:
        decision: Decision | None = (
            member.decide(request) if signals is None else member.decide(request, signals=signals)  # type: ignore[call-arg]
        )
        error = ""
    except AiUnavailable as exc:
        decision, error = None, str(exc).partition(":")[0]
    except Exception as exc:  # a member's bug must not stop the others' vote
        decision, error = None, f"client_error ({type(exc).__name__})"
    call = dict(getattr(member, "last_call", None) or {})
    vote = Vote(
        model=label,
        decision=decision,
        error=error,
        cost_usd=Decimal(str(call.get("cost_usd", "0"))),
        tokens_in=int(call.get("tokens_in", 0) or 0),
        tokens_out=int(call.get("tokens_out", 0) or 0),
        latency_ms=int(call.get("latency_ms", 0) or 0),
    )
    return vote, call


def _result(
    future: Future[tuple[Vote, dict[str, Any]]], label: str, done: set[Any]
) -> tuple[Vote, dict[str, Any]]:
    if future in done:
        return future.result()
    return Vote(model=label, decision=None, error="timeout"), {}


def _vote_json(vote: Vote) -> str:
    d = vote.decision
    return json.dumps(
        {
            "model": vote.model,
            "action": d.action if d else None,
            "price": str(d.base_price) if d else None,
            "confidence": d.confidence if d else None,
            "cost_usd": str(vote.cost_usd),
            "error": vote.error,
        },
        separators=(",", ":"),
    )
