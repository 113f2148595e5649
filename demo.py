"""The project's main job in one command: both plugins on public sample data, outputs in ``demo_output/``.

1. AMIF fuses a synthetic MRI + PET slice (made from nilearn's MNI152 templates) without the licence key (the output
   carries the copyright mark) and with it (the clean fusion), with the shipped demo model.
2. photo_guard protects two public-domain photos (scikit-image's astronaut, matplotlib's Grace Hopper) as one set and
   writes them beside a manifest of what it measured.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from guard_core.keys import Key

DEMO_PASSPHRASE = "amif-demo"  # the public passphrase the shipped demo model was trained with
REPO = Path(__file__).resolve().parent


def _run(args: list[str], env: dict | None = None) -> None:
    subprocess.run(args, check=True, env={**os.environ, **(env or {})})


def amif_demo(out: Path) -> None:
    key_file = out / "amif-demo.key.json"
    key = Key.from_passphrase(DEMO_PASSPHRASE)
    key.save(key_file, overwrite=True)
    pair = REPO / "samples" / "amif" / "pet"
    amif = [sys.executable, "-m", "monai_amif.cli", "fuse", str(pair / "MRI.png"), str(pair / "PET.png"), "--overwrite"]
    _run(amif + ["-o", str(out / "fused_without_key.png")], {"AMIF_PASSPHRASE": "", "AMIF_KEY_FILE": ""})
    _run(amif + ["-o", str(out / "fused_with_key.png"), "--key-file", str(key_file)])
    print(f"AMIF: licence key fingerprint {key.fingerprint()} ({key_file})")


def photo_demo(out: Path) -> None:
    import matplotlib.cbook
    import skimage

    src = out / "photos_original"
    src.mkdir(exist_ok=True)
    shutil.copy(Path(skimage.__file__).parent / "data" / "astronaut.png", src / "astronaut.png")
    shutil.copy(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), src / "grace_hopper.jpg")
    _run([sys.executable, "-m", "photo_guard.cli", "protect", str(src), "-o", str(out / "photos_protected")])
    for name in ("astronaut.png", "grace_hopper.jpg"):
        _run(
            [
                sys.executable,
                "-m",
                "photo_guard.cli",
                "verify",
                str(out / "photos_protected" / name),
                "--original",
                str(src / name),
            ]
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo_output"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    amif_demo(args.out)
    photo_demo(args.out)
    print(f"\ndemo outputs are in {args.out.resolve()}:")
    for f in sorted(args.out.rglob("*")):
        if f.is_file():
            print(f"  {f.relative_to(args.out)}")


if __name__ == "__main__":
    main()
