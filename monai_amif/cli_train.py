"""``amif train``: train (or resume) a key-gated fusion model from the command line."""

from __future__ import annotations

import os

import click

from .cli_keys import key_from_options
from .networks import KEY_PATHS, OUTPUTS

__all__ = ["train"]


@click.command()
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
    key = key_from_options(key_file)
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
