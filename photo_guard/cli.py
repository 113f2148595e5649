"""The ``photo-guard`` command line."""

from __future__ import annotations

import sys

import click

from . import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="photo-guard")
def cli() -> None:
    """photo_guard: protect photos before they leave your library, so VLMs fine-tuned on them learn nothing of you."""


def main() -> None:
    sys.exit(cli(standalone_mode=True))


if __name__ == "__main__":
    main()
