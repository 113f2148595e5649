"""The ``photo-guard`` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from guard_core.cli import GuardCommands

from . import __version__

# photo_guard.encoders.DEFAULT_ENCODERS and ProtectConfig.steps, spelled here so that --help does not import torch (a
# test holds them equal).
_ENSEMBLE = "sface,efficientnet_lite0"
_STEPS = 20


@click.group(cls=GuardCommands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="photo-guard")
def cli() -> None:
    """photo_guard: protect photos before they leave your library, so VLMs fine-tuned on them learn nothing of you."""


def _rank_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), help="Output folder (names are kept).")
@click.option("--in-place", is_flag=True, help="Replace the originals (a .orig backup of each is kept).")
@click.option("--no-backup", is_flag=True, help="With --in-place, keep no .orig copy (for exported copies).")
@click.option(
    "--strength",
    type=click.Choice(["low", "default", "strong"]),
    default="default",
    show_default=True,
    help="Budget ε = 4, 8 or 16 /255.",
)
@click.option("--encoders", default=_ENSEMBLE, show_default=True, help="Comma-separated encoder ensemble.")
@click.option("--steps", default=_STEPS, show_default=True)
@click.option("--strip-gps", is_flag=True, help="Drop GPS position from EXIF (other EXIF is kept).")
@click.option("--device", default="auto", show_default=True)
@click.option("--set-size", default=16, show_default=True, help="Photos optimised together.")
@click.option(
    "--people/--no-people",
    default=True,
    show_default=True,
    help="Remember the people in your photos across runs (private state, never shared), so photos protected one at "
    "a time move as a set would.",
)
def protect(
    paths, out_dir, in_place, no_backup, strength, encoders, steps, strip_gps, device, set_size, people
) -> None:
    """Protect photos (files or folders) as one owner's set. Exit code = number of photos that failed."""
    from tqdm import tqdm

    from .batch import collect_photos, protect_files
    from .protect import ProtectConfig

    if not out_dir and not in_place:
        raise click.UsageError("give -o/--out DIR, or --in-place to replace the originals")
    files, ignored = collect_photos(paths, exclude=out_dir)
    rank, world = _rank_world()
    files = files[rank::world]  # under torchrun each process takes its share
    cfg = ProtectConfig(
        strength=strength,
        steps=steps,
        encoders=tuple(e for e in encoders.split(",") if e),
        device=device,
        people=people,
    )
    bar = tqdm(total=len(files), unit="photo", disable=rank != 0 or not files)
    report = protect_files(
        files,
        Path(out_dir) if out_dir else None,
        cfg,
        in_place=in_place,
        strip_gps=strip_gps,
        set_size=set_size,
        on_photo=lambda _: bar.update(1),
        backup=not no_backup,
    )
    bar.update(len(report.skipped))
    bar.close()
    if rank == 0:
        for _, message in ignored:
            click.echo(message, err=True)
    for _, message in report.failed:
        click.echo(f"error: {message}", err=True)
    click.echo(
        f"protected {len(report.protected)}, skipped {len(report.skipped)} already done, failed {len(report.failed)}"
        + (f", {len(ignored)} not photos it can protect (listed above)" if ignored and rank == 0 else "")
        + (f"; outputs in {Path(out_dir).resolve()}" if out_dir else "")
    )
    sys.exit(min(len(report.failed), 100))


@cli.command()
@click.argument("protected", type=click.Path(exists=True, dir_okay=False))
@click.option("--original", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--encoders", default=_ENSEMBLE, show_default=True)
def verify(protected, original, encoders) -> None:
    """Measure a protected photo against its original: budget, PSNR, SSIM, per-encoder embedding shift."""
    from .encoders import build_encoder
    from .measure import measure
    from .photo_io import codec_change_255, is_lossy, read_photo
    from .protect import STRENGTHS

    source, shared = read_photo(original), read_photo(protected)
    a, b = source.pixels, shared.pixels
    if a.shape != b.shape:
        raise click.ClickException(
            f"{protected}: size {tuple(b.shape[-2:])} differs from the original's {tuple(a.shape[-2:])}"
        )
    (stats,) = measure([a], [b], [build_encoder(n) for n in encoders.split(",")])
    budgets = ", ".join(f"{name} {eps * 255:.0f}" for name, eps in STRENGTHS.items())
    click.echo(f"Largest change of any pixel: {stats['linf_255']:.1f}/255 (protection budgets: {budgets} /255).")
    if is_lossy(shared):
        # What the codec alone does: the original saved the same way, compared with itself.
        floor = codec_change_255(shared, a)
        click.echo(
            f"This is a {shared.format} file: saving the untouched original the same way already changes "
            f"pixels by up to {floor:.1f}/255, so part of that change is the format's own compression, not "
            "the protection."
        )
    click.echo(f"Overall difference: PSNR {stats['psnr']:.2f} dB, SSIM {stats['ssim']:.4f} (1 = identical).")
    for name, shift in stats["encoders"].items():
        click.echo(f"{name}: cosine(protected, original) = {shift['cos_to_clean']:.3f}")


@cli.command()
def encoders() -> None:
    """List the encoders and whether each can be used here (and why not)."""
    from .encoders import available_encoders

    for name, status in available_encoders().items():
        click.echo(f"{name}: {status}")


@cli.command()
@click.argument("inbox", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", "outbox", required=True, type=click.Path(file_okay=False))
@click.option("--strength", type=click.Choice(["low", "default", "strong"]), default="default", show_default=True)
@click.option("--encoders", default=_ENSEMBLE, show_default=True)
@click.option("--settle", default=2.0, show_default=True, help="Seconds a file must stay unchanged before it is taken.")
@click.option("--device", default="auto", show_default=True)
def watch(inbox, outbox, strength, encoders, settle, device) -> None:
    """Protect each photo that appears in INBOX into OUTBOX (Ctrl-C to stop; a restart resumes)."""
    import logging

    from .protect import ProtectConfig
    from .watch import watch as run_watch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = ProtectConfig(strength=strength, encoders=tuple(encoders.split(",")), device=device)
    click.echo(f"watching {Path(inbox).resolve()} -> {Path(outbox).resolve()} (Ctrl-C to stop)")
    try:
        run_watch(
            Path(inbox),
            Path(outbox),
            cfg,
            settle=settle,
            on_done=lambda r: click.echo(f"protected {len(r.protected)}, failed {len(r.failed)}"),
        )
    except KeyboardInterrupt:
        click.echo("stopped")


@cli.command()
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="One folder of photos per identity (e.g. ../shared/data/lfw10).",
)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write every number here.")
@click.option(
    "--report", "report_dir", type=click.Path(file_okay=False), help="Write report.md, results.json, figures."
)
@click.option("--cache", type=click.Path(file_okay=False), help="Keep protected sets here; a rerun resumes from them.")
@click.option("--people", default=20, show_default=True)
@click.option("--train", default=5, show_default=True, help="Shared (training) photos per identity.")
@click.option("--queries", default=10, show_default=True, help="Clean question photos per identity, at most.")
@click.option("--labels", default=10, show_default=True, help="Number of affiliation classes.")
@click.option("--draws", default=5, show_default=True, help="Independent affiliation draws averaged.")
@click.option("--steps", default=_STEPS, show_default=True)
@click.option("--encoders", default=_ENSEMBLE, show_default=True, help="Ensemble protected against.")
@click.option("--attackers", default=_ENSEMBLE, show_default=True, help="Encoders the attacker uses.")
@click.option(
    "--targets",
    default="antithetical",
    show_default=True,
    help="DP2-VL targets compared with the default (the owner's anchor) at default strength (comma-separated; '' "
    "for none).",
)
@click.option("--strengths", default="low,default,strong", show_default=True, help="Strengths of the main ensemble.")
@click.option("--one-by-one/--no-one-by-one", default=True, show_default=True, help="Also protect photo by photo.")
@click.option("--adaptive-photos", default=40, show_default=True, help="Adaptive attacker's own photos (0: none).")
@click.option(
    "--learners",
    default="finetune,vlm",
    show_default=True,
    help="Learners that adapt: the encoder fine-tuned end to end, a mini VLM on captions ('' for none).",
)
@click.option("--device", default="cpu", show_default=True)
def evaluate(
    data,
    json_out,
    report_dir,
    cache,
    people,
    train,
    queries,
    labels,
    draws,
    steps,
    encoders,
    attackers,
    targets,
    strengths,
    one_by_one,
    adaptive_photos,
    learners,
    device,
) -> None:
    """Simulate a scraper fine-tuning on protected photos; report how much affiliation leaks to clean photos."""
    import json
    import logging
    import shlex

    from .evaluate import EvalConfig, run_evaluation
    from .evaluate.report import markdown, write_report

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = EvalConfig(
        people=people,
        train=train,
        queries=queries,
        labels=labels,
        draws=draws,
        steps=steps,
        ensemble=tuple(encoders.split(",")),
        attackers=tuple(attackers.split(",")),
        targets=tuple(t for t in targets.split(",") if t),  # ProtectConfig checks the names
        strengths=tuple(s for s in strengths.split(",") if s),
        one_by_one=one_by_one,
        adaptive_photos=adaptive_photos,
        learners=tuple(x for x in learners.split(",") if x),
        device=device,
    )
    ev = run_evaluation(Path(data), cfg, cache=Path(cache) if cache else None)
    command = "photo-guard " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if json_out:
        from guard_core.atomic import atomic_output

        with atomic_output(json_out) as tmp:
            tmp.write_text(json.dumps({**ev.results, "command": command}, indent=2))
    if report_dir:
        for p in write_report(ev, Path(report_dir), command):
            click.echo(f"wrote {p}")
    click.echo(markdown(ev.results))


@cli.command()
def plugins() -> None:
    """List the loaded plugins with their versions."""
    from .plugins import load_plugins, loaded_plugins

    load_plugins()
    for p in loaded_plugins():
        click.echo(f"{p['name']}: {p['module']} {p['version']}".rstrip())


def main() -> None:
    from guard_core.errors import one_line_warnings
    from guard_core.memory import retain_freed_memory

    one_line_warnings()
    retain_freed_memory()  # the process is ours: freed photo-sized blocks are reused, not faulted in again
    from .plugins import load_plugins

    load_plugins().hook.register_commands(cli=cli)
    sys.exit(cli(standalone_mode=True))


if __name__ == "__main__":
    main()
