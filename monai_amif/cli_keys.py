"""``amif keygen`` and the licence key every other command takes: from ``--key-file``, ``$AMIF_KEY_FILE`` or
``$AMIF_PASSPHRASE``, never from the command line (which shells and process lists keep)."""

from __future__ import annotations

import os

import click

from guard_core.keys import Key, LicenceKeyError

__all__ = ["keygen", "key_from_options"]

# also monai_amif.transforms.PASSPHRASE_ENV; not imported from there, which would load MONAI for every command
PASSPHRASE_ENV = "AMIF_PASSPHRASE"


@click.command()
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Key file to write (JSON, mode 0600).",
)
@click.option(
    "--random", "random_key", is_flag=True, help="Make a random key instead of deriving one from a passphrase."
)
@click.option("--force", is_flag=True, help="Replace an existing key file.")
def keygen(output: str, random_key: bool, force: bool) -> None:
    """Write a licence key file.

    The passphrase is read from $AMIF_PASSPHRASE or asked for (never given on the command line, which logs keep).
    """
    if random_key:
        key = Key.generate()
    else:
        passphrase = os.environ.get(PASSPHRASE_ENV) or click.prompt(
            "Passphrase", hide_input=True, confirmation_prompt=True, err=True
        )
        key = Key.from_passphrase(passphrase)
    try:
        key.save(output, overwrite=force)
    except LicenceKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {output} (fingerprint {key.fingerprint()})")


def key_from_options(key_file: str | None) -> Key:
    """The key from --key-file, else $AMIF_KEY_FILE, else $AMIF_PASSPHRASE, else no key."""
    from .transforms import AuthorizeKey

    try:
        return AuthorizeKey(key_file=key_file).resolve()
    except LicenceKeyError as exc:
        raise click.ClickException(str(exc)) from None
