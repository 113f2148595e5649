"""Every CUDA path of the project, run once on the CPU and once on CUDA, as one table.

    python benchmarks/gpu_check.py [--devices cpu,cuda] [--repeats 5] [--out gpu_check.md]

Paths: AMIF fusion (eager fp32, eager bf16 autocast, TorchScript), one AMIF training step (fp32 and bf16 autocast),
opening a sealed model onto the device, photo protection of a set of faces (SFace + EfficientNet-Lite0 when they load
here, else the tests' tiny encoder), and the evaluation heads. Each row: median seconds over ``--repeats`` runs and,
on CUDA, the largest difference from the CPU result (the paths must agree, not only run). Devices that are not here
are listed as skipped, so the same script runs in the tests (CPU) and on a lent accelerator.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from guard_core.device import autocast
from guard_core.keys import Key
from monai_amif.checkpoint import build_network, save_model
from monai_amif.loading import load_model
from monai_amif.losses import FusionLoss
from monai_amif.sealed import seal_model

KEY = Key.from_passphrase("gpu-check")


def _timed(fn: Callable[[], torch.Tensor], device: torch.device, repeats: int) -> tuple[float, torch.Tensor]:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    out = fn()  # warm-up (and the value compared across devices)
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out.detach().float().cpu()


def amif_paths(device: torch.device, repeats: int, small: bool) -> dict[str, Callable[[], torch.Tensor]]:
    """The AMIF rows: ``name -> thunk``; every thunk returns a tensor to compare across devices."""
    torch.manual_seed(0)
    cfg = {"channels": [8, 16], "key_hidden": 16} if small else {"channels": [24, 48], "output": "blend"}
    net = build_network(cfg).to(device).eval()
    side = 64 if small else 256
    x = torch.rand(4, 2, side, side, generator=torch.Generator().manual_seed(1)).to(device)
    k = KEY.tensor(device).expand(4, -1)
    scripted = torch.jit.freeze(torch.jit.script(net))
    tmp = Path(tempfile.mkdtemp())
    save_model(net.cpu(), tmp / "model.pt", key_fingerprint=KEY.fingerprint())
    net.to(device)
    seal_model(tmp / "model.pt", KEY, tmp / "model.sealed.pt")
    loss = FusionLoss()
    train_net = build_network(cfg).to(device)
    opt = torch.optim.AdamW(train_net.parameters(), lr=1e-3)

    def fuse(amp: bool) -> torch.Tensor:
        with torch.inference_mode(), autocast(device, enabled=amp):
            return net(x, k)

    def train_step(amp: bool) -> torch.Tensor:
        with autocast(device, enabled=amp):
            total = loss(train_net(x, k).float(), x)["total"]
        opt.zero_grad()
        total.backward()
        opt.step()
        return total.detach()

    def sealed_open() -> torch.Tensor:
        opened = load_model(tmp / "model.sealed.pt", map_location=device, key=KEY)
        with torch.inference_mode():
            return opened(x, k)

    with torch.inference_mode():
        script_fn = lambda: scripted(x, k)  # noqa: E731
    return {
        "AMIF fuse, eager fp32": lambda: fuse(False),
        "AMIF fuse, eager bf16 autocast": lambda: fuse(True),
        "AMIF fuse, TorchScript (frozen)": script_fn,
        "AMIF training step, fp32": lambda: train_step(False),
        "AMIF training step, bf16 autocast": lambda: train_step(True),
        "sealed model opened on the device": sealed_open,
    }


def photo_paths(device: torch.device, small: bool) -> dict[str, Callable[[], torch.Tensor]]:
    """Protection of a 3-photo set and the evaluation heads on ``device``."""
    from photo_guard import encoders as registry
    from photo_guard.evaluate import train_head
    from photo_guard.protect import ProtectConfig, protect_set

    names: tuple[str, ...] = ("sface", "efficientnet_lite0")
    try:
        if small:
            raise registry.EncoderUnavailable("small run")
        for n in names:
            registry.build_encoder(n)
    except registry.EncoderUnavailable:
        from tests.photo_guard.conftest import TinyEncoder

        registry.ENCODERS["tiny"] = TinyEncoder
        names = ("tiny",)
    g = torch.Generator().manual_seed(0)
    photos = list(torch.nn.functional.interpolate(torch.rand(3, 3, 16, 16, generator=g), size=(96, 96)))
    cfg = ProtectConfig(encoders=names, steps=3, eot_samples=1, device=str(device))
    feats = torch.randn(64, 128, generator=g).to(device)
    labels = torch.arange(64).remainder(8).to(device)

    def heads() -> torch.Tensor:
        head = train_head(feats, labels, 8, "mlp", epochs=50).to(device)
        with torch.no_grad():
            return head(torch.nn.functional.normalize(feats, dim=1))

    return {
        f"photo protection, 3 photos, {'+'.join(names)}": lambda: torch.stack(
            [r.pixels for r in protect_set(photos, cfg, measure_result=False)]
        ),
        "evaluation heads (MLP, 50 epochs)": heads,
    }


def run(devices: list[str], repeats: int, small: bool) -> list[dict]:
    rows: list[dict] = []
    reference: dict[str, torch.Tensor] = {}
    for spec in devices:
        if spec == "cuda" and not torch.cuda.is_available():
            rows.append({"device": "cuda", "path": "(all)", "note": "skipped: no CUDA device here"})
            continue
        device = torch.device(spec)
        paths = {**amif_paths(device, repeats, small), **photo_paths(device, small)}
        for name, fn in paths.items():
            try:
                sec, value = _timed(fn, device, repeats)
            except Exception as exc:  # a path that fails on a device is a finding, not a crash of the check
                rows.append({"device": spec, "path": name, "note": f"FAILED: {type(exc).__name__}: {exc}"[:160]})
                continue
            diff = None
            if name in reference and reference[name].shape == value.shape:
                diff = float((reference[name] - value).abs().max())
            reference.setdefault(name, value)
            rows.append({"device": spec, "path": name, "seconds": sec, "max_diff_vs_first": diff})
    return rows


def table(rows: list[dict]) -> str:
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    lines = [
        f"gpu_check {datetime.date.today()} · torch {torch.__version__} · CUDA device: {name} · "
        f"CPU threads: {torch.get_num_threads()}",
        "",
        "| device | path | median s | max diff vs first device | note |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        sec = f"{r['seconds']:.4f}" if "seconds" in r else "–"
        diff = f"{r['max_diff_vs_first']:.2e}" if r.get("max_diff_vs_first") is not None else "–"
        lines.append(f"| {r['device']} | {r['path']} | {sec} | {diff} | {r.get('note', '')} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", default="cpu,cuda")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--small", action="store_true", help="Tiny networks and encoders (the tests' CPU run).")
    p.add_argument("--out", default=None, help="Also write the table here.")
    args = p.parse_args()
    text = table(run([d.strip() for d in args.devices.split(",") if d.strip()], args.repeats, args.small))
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
