"""What the use cases need from the composition root, as one protocol."""

from __future__ import annotations

from typing import Protocol

from flipbot.app.records import Repositories
from flipbot.ports import Clock, DecisionMaker, ExchangePort, KillSwitch, WorkflowPort
from flipbot.settings import Settings


class Services(Protocol):
    """Built lazily by ``flipbot.composition``: a function pays only for what it touches."""

    @property
    def settings(self) -> Settings: ...
    @property
    def repos(self) -> Repositories: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def workflow(self) -> WorkflowPort: ...
    @property
    def kill_switch(self) -> KillSwitch: ...
    @property
    def exchange(self) -> ExchangePort: ...
    @property
    def decider(self) -> DecisionMaker: ...
