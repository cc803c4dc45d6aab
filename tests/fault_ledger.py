"""A real ledger with a hook before every call of the worker's ledger port, to inject faults.

Tests subclass :class:`FaultInjectingLedger` and override :meth:`~FaultInjectingLedger.before`
to raise (a database outage, a message whose writes always fail). The port's methods are
forwarded as they are, so the wrapper takes exactly the arguments the ledger takes and never
drifts from ``dunning.workers.ports.LedgerPort``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dunning.ledger import Ledger
from dunning.workers.ports import LedgerPort

__all__ = ["PORT_METHODS", "FaultInjectingLedger"]

#: The methods of ``LedgerPort``: the calls a worker makes, and so the ones faults apply to.
PORT_METHODS = frozenset(name for name in vars(LedgerPort) if not name.startswith("_"))


class FaultInjectingLedger:
    """``inner`` behind the port's methods, each preceded by :meth:`before`."""

    def __init__(self, inner: Ledger) -> None:
        self.inner = inner

    def before(self, call: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        """Raise here to make ``call`` fail before it reaches the ledger; the default passes."""

    def __getattr__(self, name: str) -> Any:
        if name not in PORT_METHODS:
            raise AttributeError(f"{type(self).__name__} has no {name!r}: not a port method")
        method: Callable[..., Any] = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.before(name, args, kwargs)
            return method(*args, **kwargs)

        return call
