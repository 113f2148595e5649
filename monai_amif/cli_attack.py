"""``amif attack``: the key gate attacked as a thief would, with the report of what held."""

from __future__ import annotations

import sys

import click

from .attacks import ATTACKS
from .cli_keys import key_from_options

__all__ = ["attack"]


@click.command()
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
    key = key_from_options(key_file)
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
