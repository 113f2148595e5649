"""``python -m tests.reliability.photo_guard_tiny ARGS``: the photo-guard CLI with the tests' tiny encoder registered,
so a subprocess (which the crash suite kills) runs the real command in seconds."""

from photo_guard import encoders as registry
from photo_guard.cli import main
from tests.photo_guard.conftest import TinyEncoder

if __name__ == "__main__":
    registry.ENCODERS["tiny"] = TinyEncoder
    main()
