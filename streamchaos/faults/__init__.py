"""Faults: one module each, found by ``faults.registry`` (no list to edit).

What a fault module needs is here: ``Fault`` (or a capability base from ``faults.base``),
``FaultConfig`` and the typed actions in ``faults.actions``.
"""

from streamchaos.faults.base import Fault, FaultConfig, ValueFault

__all__ = ["Fault", "FaultConfig", "ValueFault"]
