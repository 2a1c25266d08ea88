"""fair: Fault-Aware dIstillation via peer-Review (the engine)."""

__version__ = "0.1.0"
