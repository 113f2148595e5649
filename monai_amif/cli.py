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


def _key_from_options(key_file: str | None) -> Key:
    """The key from --key-file, else $AMIF_KEY_FILE, else $AMIF_PASSPHRASE, else no key."""
    from .transforms import AuthorizeKey

    try:
        return AuthorizeKey(key_file=key_file).resolve()
    except LicenceKeyError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False), help="Folder of pairs (<task>/MRI, <task>/<FUNC>).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder: checkpoints, log, model.pt.")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False), help="Licence key (else $AMIF_KEY_FILE / $AMIF_PASSPHRASE).")
@click.option("--owner", default=None, help="Copyright mark text drawn on unlicensed outputs.")
@click.option("--epochs", default=40, show_default=True)
@click.option("--batch-size", default=8, show_default=True)
@click.option("--crop", default=128, show_default=True, help="Training crop side in pixels.")
@click.option("--lr", default=2e-3, show_default=True)
@click.option("--max-steps", type=int, default=None, help="Stop after this many steps (smoke tests).")
@click.option("--device", default="auto", show_default=True)
@click.option("--seed", default=0, show_default=True)
def train(data, out, key_file, owner, epochs, batch_size, crop, lr, max_steps, device, seed) -> None:
    """Train (or resume) a key-gated fusion model. Under torchrun it runs data-parallel."""
    import logging

    from .mark import MarkSpec
    from .train import TrainConfig, train as run_training

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    key = _key_from_options(key_file)
    if key.is_none:
        raise click.ClickException("training needs a key: --key-file, $AMIF_KEY_FILE or $AMIF_PASSPHRASE")
    cfg = TrainConfig(data=data, out=out, owner=owner or MarkSpec.text, epochs=epochs, batch_size=batch_size,
                      crop=crop, lr=lr, max_steps=max_steps, device=device, seed=seed)
    path = run_training(cfg, key)
    click.echo(f"model: {path} (accepts key {key.fingerprint()})")


def main() -> None:
    sys.exit(cli(standalone_mode=True))


if __name__ == "__main__":
    main()
