"""Attacks on AMIF's key gate, as a thief would run them, and the report that ``amif attack`` writes.

* black box (the thief sees unauthorised outputs only): :mod:`.wrong_keys`, :mod:`.removal`, :mod:`.distill`;
* white box (the thief has the weights): :mod:`.key_search`, :mod:`.finetune`;
* :mod:`.harness` runs them all on a data split, :mod:`.report` writes Markdown, JSON and figures.
"""

from .harness import AttackConfig, run_attacks

__all__ = ["AttackConfig", "run_attacks"]
