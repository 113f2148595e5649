"""Reference means per encoder (``<name>.npy``), made by ``python -m photo_guard.encoders.make_reference``."""
