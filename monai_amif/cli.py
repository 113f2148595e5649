"""The ``amif`` command line."""

from __future__ import annotations

import os
import sys

import click

from guard_core.keys import Key, LicenceKeyError

from . import __version__

PASSPHRASE_ENV = "AMIF_PASSPHRASE"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="amif")
def cli() -> None:
    """AMIF: key-gated medical image fusion (MRI + CT/PET/SPECT) for MONAI."""


@cli.command()
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="Key file to write (JSON, mode 0600).")
@click.option("--random", "random_key", is_flag=True, help="Make a random key instead of deriving one from a passphrase.")
@click.option("--force", is_flag=True, help="Replace an existing key file.")
def keygen(output: str, random_key: bool, force: bool) -> None:
    """Write a licence key file.

    The passphrase is read from $AMIF_PASSPHRASE or asked for (never given on the command line, which logs keep).
    """
    if random_key:
        key = Key.generate()
    else:
        passphrase = os.environ.get(PASSPHRASE_ENV) or click.prompt(
            "Passphrase", hide_input=True, confirmation_prompt=True, err=True)
        key = Key.from_passphrase(passphrase)
    try:
        key.save(output, overwrite=force)
    except LicenceKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {output} (fingerprint {key.fingerprint()})")


def main() -> None:
    sys.exit(cli(standalone_mode=True))


if __name__ == "__main__":
    main()
