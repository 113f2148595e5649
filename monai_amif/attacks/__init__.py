"""Attacks on AMIF's key gate, as a thief would run them, and the report that ``amif attack`` writes.

* black box (the thief sees unauthorised outputs only): :mod:`.wrong_keys`, :mod:`.removal`, :mod:`.distill`;
* white box (the thief has the weights): :mod:`.key_search`, :mod:`.finetune`, :mod:`.weight_key`;
* the sealed model mode against the same thief: :mod:`.sealed_check`;
* each is one :class:`.base.Attack` class registered by name (:data:`.base.REGISTRY`), with its threat model in its
  docstring and its own goal; :mod:`.harness` runs the chosen ones on a data split, :mod:`.report` writes Markdown,
  JSON and figures.
"""

ATTACKS = ("wrong_keys", "removal", "distillation", "key_search", "finetune", "weight_key", "sealed")

__all__ = ["ATTACKS", "AttackConfig", "run_attacks"]


def __getattr__(name: str):
    # Lazy: the CLI reads ATTACKS at start-up without paying for MONAI's import.
    if name in ("AttackConfig", "run_attacks"):
        from . import harness

        return getattr(harness, name)
    raise AttributeError(name)
