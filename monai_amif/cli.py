"""The ``amif`` command line."""

from __future__ import annotations

import os
import sys

import click

from guard_core.cli import GuardCommands

from . import __version__
from .cli_attack import attack
from .cli_keys import key_from_options, keygen
from .cli_train import train


@click.group(cls=GuardCommands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="amif")
def cli() -> None:
    """AMIF: key-gated medical image fusion (MRI + CT/PET/SPECT) for MONAI."""


for command in (keygen, train, attack):
    cli.add_command(command)


@cli.command()
@click.argument("mri", type=click.Path(dir_okay=False))
@click.argument("func", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Output file: .png, .nii/.nii.gz or .dcm (colour PNG/DICOM for PET/SPECT).",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False),
    help="Licence key file (else $AMIF_KEY_FILE / $AMIF_PASSPHRASE; none -> marked output).",
)
@click.option(
    "--weights",
    type=click.Path(dir_okay=False),
    default=None,
    help="Model file (default: $AMIF_WEIGHTS or the bundle's model).",
)
@click.option("--device", default="auto", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def fuse(mri, func, output, key_file, weights, device, overwrite) -> None:
    """Fuse an MRI image with a CT/PET/SPECT image (PNG, JPEG, NIfTI or DICOM)."""
    from pathlib import Path

    from .errors import ImageError
    from .inference import Fuser
    from .io import read_image, write_image

    out = Path(output)
    if os.path.realpath(out) in (os.path.realpath(mri), os.path.realpath(func)):  # realpath: no error on a loop
        raise click.ClickException(f"{out}: refusing to overwrite an input image")
    if out.exists() and not overwrite:
        raise click.ClickException(f"{out}: exists (use --overwrite to replace it)")
    key = key_from_options(key_file)
    a, b = read_image(mri), read_image(func)
    fuser = Fuser(weights, device=device, key=key)
    try:
        result = fuser.fuse(a.data, b.data, key)
    except ImageError as exc:  # the pair's problem (sizes, memory): name the files
        raise ImageError(f"{mri} + {func}: {exc}") from None
    write_image(out, result.image, like=a, marked=result.marked, also_from=(b,))
    state = "marked (no licence key accepted)" if result.marked else "licensed"
    click.echo(f"wrote {out} ({state})")


@cli.command()
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder of pairs (a split, or one task).",
)
@click.option(
    "--key-file", type=click.Path(dir_okay=False), help="Licence key (else $AMIF_KEY_FILE / $AMIF_PASSPHRASE)."
)
@click.option("--weights", type=click.Path(dir_okay=False), default=None)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write every number as JSON here.")
@click.option("--random-keys", default=100, show_default=True, help="Random wrong keys tried per pair.")
@click.option(
    "--protocol",
    type=click.Choice(["amif", "cddfuse"]),
    default="amif",
    show_default=True,
    help="amif: every metric, colour restored, with the gate metrics; cddfuse: CDDFuse's published protocol "
    "(grey inputs, min-max normalised output, its 8 columns, the CDDFuse* row beside the model).",
)
@click.option("--device", default="auto", show_default=True)
def evaluate(data, key_file, weights, json_out, random_keys, protocol, device) -> None:
    """Metric tables per task: authorised vs unauthorised output vs the mean and max rules, plus mark metrics."""
    import json

    from guard_core.atomic import atomic_output

    from .evaluate import evaluate as run_evaluation
    from .evaluate import format_table
    from .inference import Fuser
    from .protocol import evaluate_cddfuse, format_cddfuse_table

    key = key_from_options(key_file)
    if key.is_none:
        click.echo("warning: no licence key given; the 'authorised' rows show the unlicensed output", err=True)
    net = Fuser(weights, device=device, key=key).net
    if protocol == "cddfuse":
        results = evaluate_cddfuse(net, data, key)
        table = format_cddfuse_table(results)
    else:
        results = run_evaluation(net, data, key, random_keys=random_keys)
        table = format_table(results)
    click.echo(table)
    if json_out:
        with atomic_output(json_out) as tmp:
            tmp.write_text(json.dumps({"protocol": protocol, "results": results}, indent=2), encoding="utf-8")
        click.echo(f"wrote {json_out}")


@cli.command()
@click.option(
    "--weights", required=True, type=click.Path(exists=True, dir_okay=False), help="Plain model file to seal."
)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Sealed model file to write.")
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False),
    help="The model's licence key (else $AMIF_KEY_FILE / $AMIF_PASSPHRASE).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def seal(weights, output, key_file, overwrite) -> None:
    """Write a sealed copy of a model: weights encrypted (AES-256-GCM) under its licence key.

    Without the key a sealed model shows only the marked preview; `amif fuse --weights` opens it with the key.
    """
    from pathlib import Path

    from .sealed import seal_model

    out = Path(output)
    if out.exists() and not overwrite:
        raise click.ClickException(f"{out}: exists (use --overwrite to replace it)")
    if os.path.realpath(out) == os.path.realpath(weights):
        raise click.ClickException(f"{out}: refusing to overwrite the plain model with its sealed copy")
    key = key_from_options(key_file)
    if key.is_none:
        raise click.ClickException("sealing needs the model's key: --key-file or $AMIF_PASSPHRASE")
    seal_model(weights, key, out)
    click.echo(f"wrote {out} (opens with key {key.fingerprint()})")


@cli.group()
def bundle() -> None:
    """The MONAI Bundle (bundles/amif_fusion)."""


bundle_folder = click.option(
    "--bundle",
    "bundle_dir",
    default="bundles/amif_fusion",
    show_default=True,
    type=click.Path(exists=True, file_okay=False),
    help="Bundle folder.",
)


@bundle.command("pack")
@bundle_folder
@click.option("-o", "--out", "out_dir", default="dist", show_default=True, type=click.Path(file_okay=False))
def bundle_pack(bundle_dir, out_dir) -> None:
    """Write the versioned bundle zip that `python -m monai.bundle download --url` installs."""
    from .packaging import pack_bundle

    click.echo(f"wrote {pack_bundle(bundle_dir, out_dir)}")


@bundle.command("check")
@bundle_folder
def bundle_check(bundle_dir) -> None:
    """The MONAI model zoo's acceptance checks (ci/verify_bundle.py, full mode), offline."""
    from .bundle_check import check_bundle

    for stage, passed in check_bundle(bundle_dir):
        click.echo(f"ok  {stage}: {passed}")


def main() -> None:
    from guard_core.errors import one_line_warnings

    one_line_warnings()
    sys.exit(cli(standalone_mode=True))


if __name__ == "__main__":
    main()
