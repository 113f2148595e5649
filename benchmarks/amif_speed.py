"""AMIF fusion speed: median latency at batch 1 (256×256) and throughput at batch 16, eager vs TorchScript.

    python benchmarks/amif_speed.py [--weights W] [--device auto] [--threads N] [--repeats 30]

Prints a table; the baseline row (eager fp32, batch 1) sets the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from guard_core.device import autocast, resolve
from guard_core.keys import Key
from monai_amif.checkpoint import build_network
from monai_amif.inference import default_weights
from monai_amif.loading import load_plain_model


def _time(fn, repeats: int, sync) -> float:
    for _ in range(3):
        fn()
    sync()
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve(args.device)
    weights = args.weights or default_weights()
    try:
        net = load_plain_model(weights)
    except ValueError:
        net = build_network()  # speed does not depend on the weights' values
    net = net.to(device).eval()
    scripted = torch.jit.freeze(torch.jit.script(net))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    key = Key.from_passphrase("amif-demo").tensor(device)
    rows = []
    with torch.inference_mode():
        for name, model in (("eager", net), ("torchscript (frozen)", scripted)):
            for batch in (1, 16):
                x = torch.rand(batch, 2, 256, 256, device=device)
                k = key.expand(batch, -1)
                repeats = args.repeats if batch == 1 else max(5, args.repeats // 4)
                sec = _time(lambda model=model, x=x, k=k: model(x, k), repeats, sync)
                rows.append((name, "fp32", batch, sec))
        if device.type == "cuda":
            for batch in (1, 16):
                x = torch.rand(batch, 2, 256, 256, device=device)
                with autocast(device):
                    sec = _time(lambda x=x, batch=batch: net(x, key.expand(batch, -1)), args.repeats, sync)
                rows.append(("eager", "bf16 autocast", batch, sec))
    base = rows[0][3]
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    key_params = sum(p.numel() for p in net.key_path.parameters())
    total = sum(p.numel() for p in net.parameters())
    print(
        f"device: {device} ({where}); parameters: {total:,} ({total - key_params:,} fusion backbone, "
        f"{key_params:,} key path); input 256x256"
    )
    print("| model | precision | batch | median ms / batch | ms / pair | pairs / s | speed vs eager b1 |")
    print("|---|---|---|---|---|---|---|")
    for name, prec, batch, sec in rows:
        per = sec / batch
        print(f"| {name} | {prec} | {batch} | {sec * 1e3:.1f} | {per * 1e3:.1f} | {1 / per:.1f} | {base / per:.2f}x |")


if __name__ == "__main__":
    main()
