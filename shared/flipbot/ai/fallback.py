"""A decision maker that never fails because the AI did: the fallback wrapper.

:class:`FallbackDecisionMaker` asks its primary (the AI). When that raises
:class:`~flipbot.domain.errors.AiUnavailable` (timeout, 429/5XX after the client's
retries, refusal, truncated or unparsable answer, daily budget spent) — or fails in any
other way — the answer comes from elsewhere, by ``mode``:

* ``"fallback"`` (default): the fallback decision maker (the offline strategy) decides;
  ``last_call["decided_by"]`` is ``"fallback:<its name>"``, e.g. ``"fallback:offline"``.
* ``"wait"``: the answer is ``WAIT`` with confidence 0; ``decided_by`` is
  ``"fallback:wait"``. On the buy leg the cycle re-consults after the usual pause; on
  the sell leg the consult's guards place the sell at the safe price (the profit floor).

Either way ``last_call`` keeps what the failed AI call cost (tokens, USD, latency, its
raw answer) under the audit keys, adds ``ai_error`` (the reason, free of secrets), and
the decision's ``reasoning`` starts with that reason, so the consultation record says
who decided and why. When the primary answers, ``last_call`` is the primary's.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Literal

from flipbot.domain.decision import Decision, DecisionRequest
from flipbot.domain.errors import AiUnavailable
from flipbot.ports import DecisionMaker

__all__ = ["FallbackDecisionMaker", "FallbackMode"]

logger = logging.getLogger(__name__)

FallbackMode = Literal["fallback", "wait"]
_WAIT_SECONDS = 60


class FallbackDecisionMaker:
    """Primary first; on failure the fallback (or ``WAIT``) answers. See the module doc."""

    def __init__(
        self,
        primary: DecisionMaker,
        fallback: DecisionMaker | None = None,
        *,
        mode: FallbackMode = "fallback",
    ) -> None:
        if mode not in ("fallback", "wait"):
            raise ValueError(f"mode must be 'fallback' or 'wait', not {mode!r}")
        if mode == "fallback" and fallback is None:
            raise ValueError("mode 'fallback' needs a fallback decision maker")
        self.primary = primary
        self.fallback = fallback
        self.mode: FallbackMode = mode
        self.name = primary.name
        self._local = threading.local()

    @property
    def last_call(self) -> dict[str, Any]:
        """Audit data of this thread's last :meth:`decide` (see the module docstring)."""
        return dict(getattr(self._local, "call", None) or {})

    def decide(self, request: DecisionRequest) -> Decision:
        budget_spent = False
        try:
            decision = self.primary.decide(request)
        except AiUnavailable as exc:
            reason, budget_spent = str(exc), exc.budget_spent
        except Exception as exc:  # an unexpected failure must not stop the cycle either
            reason = f"{type(exc).__name__} in {self.primary.name}"
            logger.exception("decision maker %s failed unexpectedly", self.primary.name)
        else:
            self._local.call = _last_call_of(self.primary)
            return decision
        ai_call = _last_call_of(self.primary)
        if self.mode == "wait" or self.fallback is None:
            decided_by = "fallback:wait"
            decision = Decision(
                action="WAIT",
                base_price=request.snapshot.last_price,
                confidence=0.0,
                reasoning=f"AI unavailable ({reason}): waiting",
                timeout_seconds=_WAIT_SECONDS,
            )
        else:
            decided_by = f"fallback:{self.fallback.name}"
            answer = self.fallback.decide(request)
            decision = answer.model_copy(
                update={"reasoning": f"AI unavailable ({reason}); {answer.reasoning}"}
            )
        logger.warning("AI unavailable (%s): %s decides", reason, decided_by)
        self._local.call = {
            **ai_call,
            "decided_by": decided_by,
            "ai_error": reason,
            "ai_budget_spent": budget_spent,
        }
        return decision


def _last_call_of(decider: DecisionMaker) -> dict[str, Any]:
    return dict(getattr(decider, "last_call", None) or {})
