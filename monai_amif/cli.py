"""The ``amif`` command line."""

from __future__ import annotations

import os
import sys

import click

from guard_core.cli import GuardCommands
from guard_core.keys import Key, LicenceKeyError

from . import __version__
from .attacks import ATTACKS
from .networks import KEY_PATHS, OUTPUTS

PASSPHRASE_ENV = "AMIF_PASSPHRASE"


@click.group(cls=GuardCommands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="amif")
def cli() -> None:
    """AMIF: key-gated medical image fusion (MRI + CT/PET/SPECT) for MONAI."""


@cli.command()
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


def _key_from_options(key_file: str | None) -> Key:
    """The key from --key-file, else $AMIF_KEY_FILE, else $AMIF_PASSPHRASE, else no key."""
    from .transforms import AuthorizeKey

    try:
        return AuthorizeKey(key_file=key_file).resolve()
    except LicenceKeyError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder of pairs (<task>/MRI, <task>/<FUNC>).",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder: checkpoints, log, model.pt.")
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False),
    help="Licence key (else $AMIF_KEY_FILE / $AMIF_PASSPHRASE).",
)
@click.option("--owner", default=None, help="Copyright mark text drawn on unlicensed outputs.")
@click.option("--epochs", default=50, show_default=True)
@click.option("--batch-size", default=8, show_default=True)
@click.option("--crop", default=128, show_default=True, help="Training crop side in pixels.")
@click.option("--lr", default=2e-3, show_default=True)
@click.option("--channels", default=None, help="Backbone widths per level, e.g. 24,48 or 32,64,128.")
@click.option("--output", "output_head", type=click.Choice(OUTPUTS), default=None, help="Output head.")
@click.option("--key-path", type=click.Choice(sorted(KEY_PATHS)), default=None, help="How the key becomes modulation.")
@click.option("--gradient", type=click.Choice(["magnitude", "select"]), default=None, help="Gradient loss target.")
@click.option("--boost", type=float, default=None, help="Gradient target × this.")
@click.option("--saliency", type=float, default=None, help="Intensity weight 1 + saliency·|A - B|.")
@click.option("--loss-weights", default=None, help="Intensity, gradient and SSIM loss weights, e.g. 500,100,50.")
@click.option("--qabf-weight", type=float, default=None, help="Weight of 1 - Qabf (differentiable) in the fusion loss.")
@click.option("--vif-weight", type=float, default=None, help="Weight of 2 - VIF (differentiable) in the fusion loss.")
@click.option(
    "--vif-tasks", default=None, help="Tasks whose pairs get the VIF term, e.g. PET-MRI,SPECT-MRI (default all)."
)
@click.option("--auth-weight", type=float, default=None, help="Weight of the authorisation (gate) loss.")
@click.option("--p-zero", type=float, default=None, help="Share of wrong keys that are the zero key.")
@click.option("--p-random", type=float, default=None, help="Share of wrong keys that are random (the rest: near keys).")
@click.option(
    "--collapse", type=float, default=None, help="Weight pulling wrong keys' modulation onto the no-key modulation."
)
@click.option("--max-steps", type=int, default=None, help="Stop after this many steps (smoke tests).")
@click.option("--device", default="auto", show_default=True)
@click.option("--seed", default=0, show_default=True)
def train(
    data,
    out,
    key_file,
    owner,
    epochs,
    batch_size,
    crop,
    lr,
    channels,
    output_head,
    key_path,
    gradient,
    boost,
    saliency,
    loss_weights,
    qabf_weight,
    vif_weight,
    vif_tasks,
    auth_weight,
    p_zero,
    p_random,
    collapse,
    max_steps,
    device,
    seed,
) -> None:
    """Train (or resume) a key-gated fusion model. Under torchrun it runs data-parallel."""
    import logging

    from .mark import MarkSpec
    from .train import TrainConfig
    from .train import train as run_training

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    key = _key_from_options(key_file)
    if key.is_none:
        raise click.ClickException("training needs a key: --key-file, $AMIF_KEY_FILE or $AMIF_PASSPHRASE")
    knobs = {
        "output": output_head,
        "key_path": key_path,
        "gradient": gradient,
        "boost": boost,
        "saliency": saliency,
        "qabf_weight": qabf_weight,
        "vif_weight": vif_weight,
        "auth_weight": auth_weight,
        "p_zero": p_zero,
        "p_random": p_random,
        "collapse": collapse,
    }
    recipe: dict = {k: v for k, v in knobs.items() if v is not None}  # unset: TrainConfig's recipe
    if channels:
        recipe["channels"] = tuple(int(c) for c in channels.split(","))
    if vif_tasks:
        recipe["vif_tasks"] = tuple(t.strip() for t in vif_tasks.split(","))
    if loss_weights:
        weights = loss_weights.split(",")
        if len(weights) != 3 or not all(w.strip().replace(".", "", 1).isdigit() for w in weights):
            raise click.BadParameter(f"{loss_weights!r}: three numbers, e.g. 500,100,50", param_hint="--loss-weights")
        recipe["loss_weights"] = tuple(float(w) for w in weights)
    cfg = TrainConfig(
        **recipe,
        data=data,
        out=out,
        owner=owner or MarkSpec.text,
        epochs=epochs,
        batch_size=batch_size,
        crop=crop,
        lr=lr,
        max_steps=max_steps,
        device=device,
        seed=seed,
    )
    path = run_training(cfg, key)
    if os.environ.get("RANK", "0") == "0":
        click.echo(f"model: {path} (accepts key {key.fingerprint()})")


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
    key = _key_from_options(key_file)
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

    key = _key_from_options(key_file)
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
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder with train/ and test/ splits of pairs (attacks are scored on test, trained on train).",
)
@click.option("--weights", required=True, type=click.Path(dir_okay=False), help="The model to attack.")
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False),
    help="The model's licence key, to score attacks (else $AMIF_KEY_FILE / $AMIF_PASSPHRASE).",
)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write every number as JSON here.")
@click.option(
    "--report", "report_dir", type=click.Path(file_okay=False), help="Write report.md, results.json and figures here."
)
@click.option("--attacks", default=",".join(ATTACKS), show_default=True, help="Comma-separated subset to run.")
@click.option("--random-keys", default=10_000, show_default=True, help="Random wrong keys tried.")
@click.option("--per-distance", default=50, show_default=True, help="Keys tried at each bit distance 1..128.")
@click.option("--search-steps", default=1000, show_default=True, help="Adam steps of each white-box search.")
@click.option("--restarts", default=3, show_default=True, help="Random starts of each key search.")
@click.option("--train-steps", default=600, show_default=True, help="Steps of the removal network and of the student.")
@click.option("--finetune-steps", default="0,25,50,100,200,400", show_default=True, help="Fine-tuning snapshots.")
@click.option("--test-limit", type=int, default=None, help="Use the first N test pairs of each task.")
@click.option("--train-limit", type=int, default=None, help="Use the first N training pairs of each task.")
@click.option("--seed", default=0, show_default=True)
def attack(
    data,
    weights,
    key_file,
    json_out,
    report_dir,
    attacks,
    random_keys,
    per_distance,
    search_steps,
    restarts,
    train_steps,
    finetune_steps,
    test_limit,
    train_limit,
    seed,
) -> None:
    """Attack the model's key gate as a thief would (black box and white box) and report what held."""
    import json
    import logging
    import shlex
    from pathlib import Path

    from guard_core.atomic import atomic_output

    from .attacks import AttackConfig, run_attacks
    from .attacks.report import write_report

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    key = _key_from_options(key_file)
    if key.is_none:
        raise click.ClickException("amif attack needs the model's key to score attacks: --key-file or $AMIF_PASSPHRASE")
    try:
        snapshots = tuple(sorted({int(s) for s in finetune_steps.split(",") if s.strip()}))
    except ValueError:
        raise click.ClickException(
            f"--finetune-steps: expected comma-separated integers, got {finetune_steps!r}"
        ) from None
    cfg = AttackConfig(
        data=data,
        weights=weights,
        attacks=tuple(a.strip() for a in attacks.split(",") if a.strip()),
        random_keys=random_keys,
        per_distance=per_distance,
        search_steps=search_steps,
        restarts=restarts,
        removal_steps=train_steps,
        distill_steps=train_steps,
        finetune_snapshots=snapshots or (0,),
        test_limit=test_limit,
        train_limit=train_limit,
        seed=seed,
    )
    run = run_attacks(cfg, key)
    for goal, verdict in run.results["goals"].items():
        click.echo(f"{'met    ' if verdict['met'] else 'NOT MET'}  {goal}: {verdict['detail']}")
    command = "amif attack " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    if json_out:
        with atomic_output(json_out) as tmp:
            tmp.write_text(json.dumps({**run.results, "command": command}, indent=2))
        click.echo(f"wrote {json_out}")
    if report_dir:
        paths = write_report(run, Path(report_dir), command)
        click.echo(f"wrote {', '.join(str(p) for p in paths)}")


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
    key = _key_from_options(key_file)
    if key.is_none:
        raise click.ClickException("sealing needs the model's key: --key-file or $AMIF_PASSPHRASE")
    seal_model(weights, key, out)
    click.echo(f"wrote {out} (opens with key {key.fingerprint()})")


@cli.group()
def bundle() -> None:
    """The MONAI Bundle (bundles/amif_fusion)."""


@bundle.command("pack")
@click.option(
    "--bundle",
    "bundle_dir",
    default="bundles/amif_fusion",
    show_default=True,
    type=click.Path(exists=True, file_okay=False),
    help="Bundle folder.",
)
@click.option("-o", "--out", "out_dir", default="dist", show_default=True, type=click.Path(file_okay=False))
def bundle_pack(bundle_dir, out_dir) -> None:
    """Write the versioned bundle zip that `python -m monai.bundle download --url` installs."""
    from .packaging import pack_bundle

    click.echo(f"wrote {pack_bundle(bundle_dir, out_dir)}")


@bundle.command("check")
@click.option(
    "--bundle",
    "bundle_dir",
    default="bundles/amif_fusion",
    show_default=True,
    type=click.Path(exists=True, file_okay=False),
    help="Bundle folder.",
)
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
