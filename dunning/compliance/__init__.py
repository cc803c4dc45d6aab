"""The compliance gate: rule packs, contact windows, caps, suppressions and template lint.

Workers call :meth:`ComplianceGate.decide` just before each provider call; the evaluator calls
:meth:`ComplianceGate.precheck`. Rules are data (``config/compliance.toml``, see
:func:`load_packs`); this package holds the mechanisms.
"""

from dunning.compliance.gate import ComplianceGate
from dunning.compliance.packs import CapRule, Pack, PackSet, Window, load_packs

__all__ = ["CapRule", "ComplianceGate", "Pack", "PackSet", "Window", "load_packs"]
