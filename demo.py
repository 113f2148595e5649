"""The project's main job in one command: write what each plugin does to ``demo_output/`` and print where it is.

It grows as features land: today it issues the demo licence key; the AMIF fusion (with and without the key) and a
protected photo set join it as those engines land.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from guard_core.keys import Key

DEMO_PASSPHRASE = "amif-demo"  # the public passphrase the shipped demo model was trained with


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo_output"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    key = Key.from_passphrase(DEMO_PASSPHRASE)
    key_file = args.out / "amif-demo.key.json"
    key.save(key_file, overwrite=True)
    print(f"licence key (fingerprint {key.fingerprint()}): {key_file.resolve()}")
    print(f"demo outputs are in {args.out.resolve()}")


if __name__ == "__main__":
    main()
