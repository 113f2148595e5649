"""Training AMIF on folders of pairs: MONAI data pipeline, resumable checkpoints, DDP under torchrun.

Each step fuses every pair twice in one batch: under the right key (fusion loss) and under a wrong key drawn from
the zero key, random keys and keys a few bits from the right one (authorisation loss).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from monai.data import CacheDataset, DataLoader
from monai.transforms import Compose, EnsureTyped, Lambdad, RandFlipd, RandRotate90d, RandSpatialCropd, SelectItemsd
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from guard_core.device import resolve, seed_everything
from guard_core.keys import Key, random_keys

from .checkpoint import atomic_save, build_network, read_torch_file, save_model
from .data import find_pairs, pair_transforms
from .errors import AMIFError
from .losses import AuthorizationLoss, FusionLoss
from .mark import MarkSpec
from .networks import AMIFNet, GatedParityKeyPath

__all__ = ["TrainConfig", "train", "wrong_keys", "collapse_loss"]

log = logging.getLogger(__name__)

NEAR_DISTANCES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)


@dataclass
class TrainConfig:
    """Everything a run needs except the key (which never goes in a config)."""

    data: str
    out: str
    owner: str = MarkSpec.text
    channels: tuple[int, ...] = (24, 48)
    output: str = "blend"
    key_hidden: int = 128
    key_path: str = "gated"  # the blend head keeps the gate only with the detector (docs/amif.md, issue 13)
    epochs: int = 50
    batch_size: int = 8
    crop: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    auth_weight: float = 100.0
    degrade_sigma: float = 3.0
    loss_weights: tuple[float, float, float] = (500.0, 100.0, 50.0)  # intensity, gradient, SSIM (docs/amif.md)
    saliency: float = 0.0  # intensity weight 1 + saliency·|A - B| (see FusionLoss)
    gradient: str = "magnitude"  # or "select": the stronger source's signed Sobel gradients
    boost: float = 1.0  # gradient target = boost × the sources' strongest gradient
    qabf_weight: float = 100.0  # weight of 1 - Qabf in the fusion loss (see FusionLoss)
    vif_weight: float = 50.0  # weight of 2 - VIF in the fusion loss
    # Tasks whose pairs get the VIF term (None: all). On CT-MRI it trades SD, SF and Qabf for VIF (docs/amif.md).
    vif_tasks: tuple[str, ...] | None = ("PET-MRI", "SPECT-MRI")
    fusion_warmup: int = 0  # epochs of fusion loss alone (right key only) before the gate is trained
    p_zero: float = 0.2
    p_random: float = 0.3
    collapse: float = 0.0  # weight of the key path's collapse loss (see collapse_loss)
    seed: int = 0
    device: str = "auto"
    max_steps: int | None = None
    tasks: tuple[str, ...] | None = None
    extra: dict = field(default_factory=dict)


def wrong_keys(right: torch.Tensor, n: int, p_zero: float, p_random: float, generator: torch.Generator) -> torch.Tensor:
    """``n`` keys other than ``right [bits]``: zero keys, random ±1 keys, or ``right`` with 1-32 bits flipped."""
    bits = right.numel()
    out = right.expand(n, bits).clone()
    u = torch.rand(n, generator=generator)
    for i in range(n):
        if u[i] < p_zero:
            out[i] = 0
        elif u[i] < p_zero + p_random:
            out[i] = random_keys(1, bits, generator)[0]
        else:
            d = NEAR_DISTANCES[int(torch.randint(len(NEAR_DISTANCES), (), generator=generator))]
            flip = torch.randperm(bits, generator=generator)[:d]
            out[i, flip] = -out[i, flip]
    return out


def collapse_loss(net: AMIFNet, keys: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of the wrong ``keys``' modulation ``[N, C]`` from the no-key modulation (held fixed).

    The gate loss alone shapes only the *outputs* of the keys it samples; with a blend head many modulations far from
    the right key's also give a clean output, and keys the training never drew landed there. Pulling every wrong key
    onto the modulation of the zero key (the unlicensed output) leaves the right key as the one way out.
    """
    scale, shift = net.modulation(keys)
    s0, b0 = (t.detach() for t in net.modulation(torch.zeros_like(keys[:1])))
    return (scale - s0).pow(2).mean() + (shift - b0).pow(2).mean()


def _lr_factor(step: int, total: int, warmup: float = 0.05) -> float:
    w = max(1, int(total * warmup))
    if step < w:
        return (step + 1) / w
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - w) / max(1, total - w))))


def _dist_info() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _with_template(img: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """``[2, H, W]`` image + ``[2, S, S]`` template (resized to H × W if needed) -> ``[4, H, W]``."""
    if template.shape[-2:] != img.shape[-2:]:
        template = torch.nn.functional.interpolate(template[None], size=img.shape[-2:], mode="nearest")[0]
    return torch.cat([img, template.to(img.dtype)], 0)


def _dataset(cfg: TrainConfig, template: torch.Tensor) -> CacheDataset:
    random_part = Compose(
        [
            RandFlipd("image", prob=0.5, spatial_axis=1),
            RandRotate90d("image", prob=0.5, max_k=3),
            # The mark template joins the image *after* the anatomy is flipped (text must stay readable) and *before*
            # the crop, so the network sees the piece of template that lies under the piece of image.
            Lambdad("image", lambda img: _with_template(torch.as_tensor(img), template)),
            RandSpatialCropd("image", roi_size=(cfg.crop, cfg.crop), random_size=False),
            SelectItemsd(("image", "vif")),
            EnsureTyped("image", track_meta=False),
        ]
    )
    pairs = find_pairs(cfg.data, cfg.tasks)
    if cfg.vif_weight and cfg.crop < 41:
        raise AMIFError(f"--crop {cfg.crop}: the VIF term's four scales need crops of at least 41 pixels")
    present = {pair["task"] for pair in pairs}
    if cfg.vif_weight and cfg.vif_tasks is not None and not present & set(cfg.vif_tasks):
        # A listed task missing from this data is fine (the default names two); none at all is a typo or a mix-up.
        raise AMIFError(
            f"{cfg.data}: no pairs of the VIF task(s) {', '.join(cfg.vif_tasks)} (found {', '.join(sorted(present))})"
        )
    pairs = [{**pair, "vif": float(cfg.vif_tasks is None or pair["task"] in cfg.vif_tasks)} for pair in pairs]
    return CacheDataset(pairs, Compose([pair_transforms(), random_part]), progress=False, num_workers=0)


def train(cfg: TrainConfig, key: Key) -> Path:
    """Train (or resume) into ``cfg.out``; returns the path of the exported ``model.pt``."""
    if key.is_none:
        raise AMIFError("training needs the licence key the model will accept (--key-file or $AMIF_PASSPHRASE)")
    rank, world = _dist_info()
    device = resolve(cfg.device) if world == 1 or not torch.cuda.is_available() else torch.device("cuda", rank)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    generator = seed_everything(cfg.seed + rank)

    net = build_network(
        {
            "channels": list(cfg.channels),
            "output": cfg.output,
            "key_hidden": cfg.key_hidden,
            "key_path": cfg.key_path,
            "mark": {**MarkSpec().to_dict(), "text": cfg.owner},
        }
    ).to(device)
    if isinstance(net.key_path, GatedParityKeyPath):
        net.key_path.aim(key.tensor(device))  # a resumed run overwrites it from the checkpoint below
    dataset = _dataset(cfg, net.template_at(net.mark_spec.size, net.mark_spec.size)[0].cpu())
    sampler: DistributedSampler | None = None
    if world > 1:
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, seed=cfg.seed)
    loader = DataLoader(
        dataset, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler, drop_last=True, num_workers=0
    )
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps = cfg.epochs * len(loader)
    # Warm-up then cosine, computed from the *current* config, so a resumed run may extend its epochs.
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, total_steps))
    start_epoch, step = 0, 0
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.exists():
        state = read_torch_file(ckpt_path, map_location=device)
        try:
            net.load_state_dict(state["model"])
        except RuntimeError:
            raise AMIFError(
                f"{ckpt_path}: made for another network than these options describe (--channels, --output, "
                "--key-path); resume with the options it was started with, or train into a new --out"
            ) from None
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_epoch, step = state["epoch"], state["step"]
        generator.set_state(state["generator"])
        if rank == 0:
            log.info("resumed from %s at epoch %d", ckpt_path, start_epoch)
    model = DistributedDataParallel(net) if world > 1 else net
    fusion_loss = FusionLoss(
        *cfg.loss_weights,
        saliency=cfg.saliency,
        gradient=cfg.gradient,
        boost=cfg.boost,
        w_qabf=cfg.qabf_weight,
        w_vif=cfg.vif_weight,
    )
    auth_loss = AuthorizationLoss(cfg.degrade_sigma)
    right = key.tensor(device)
    log_file = out / "train_log.jsonl"

    # One bar for the whole run (resumed runs start where they stopped), so its estimate is the time left to the end.
    bar = tqdm(total=total_steps, initial=step, desc="amif train", unit="step", disable=rank != 0, smoothing=0.05)
    for epoch in range(start_epoch, cfg.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        bar.set_description(f"amif train, epoch {epoch + 1}/{cfg.epochs}")
        sums: dict[str, float] = {}
        t0 = time.perf_counter()
        for batch in loader:
            stack = batch["image"].to(device)
            image, template = stack[:, :2], stack[:, 2:]
            b = image.shape[0]
            gate = epoch >= cfg.fusion_warmup  # warm-up: the fusion alone, under the right key
            keys = right.expand(b, -1)
            if gate:
                keys = torch.cat([keys, wrong_keys(right.cpu(), b, cfg.p_zero, cfg.p_random, generator).to(device)])
            reps = 2 if gate else 1
            fused = model(image.repeat(reps, 1, 1, 1), keys, template.repeat(reps, 1, 1, 1))
            f_auth = fused[:b]
            terms = fusion_loss(f_auth, image, vif_mask=batch["vif"].to(device))
            loss = terms["total"]
            if gate:
                terms["auth"] = auth_loss(fused[b:], f_auth, template[:, :1], template[:, 1:])
                loss = loss + cfg.auth_weight * terms["auth"]
                if cfg.collapse:
                    terms["collapse"] = collapse_loss(net, keys[b:])
                    loss = loss + cfg.collapse * terms["collapse"]
            terms = {k: v.detach() for k, v in terms.items()} | {"loss": loss.detach()}
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            bar.update(1)
            bar.set_postfix(fusion=f"{terms['total'].item():.2f}", auth=f"{float(terms.get('auth', 0.0)):.4f}")
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
        n = max(1, len(loader))
        if rank == 0:
            record = {
                "epoch": epoch + 1,
                "step": step,
                "seconds": round(time.perf_counter() - t0, 1),
                "lr": sched.get_last_lr()[0],
                **{k: round(v / n, 5) for k, v in sums.items()},
            }
            with open(log_file, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            log.info("epoch %d: %s", epoch + 1, record)
            atomic_save(
                {
                    "model": net.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "epoch": epoch + 1,
                    "step": step,
                    "generator": generator.get_state(),
                    "train_config": asdict(cfg),
                },
                ckpt_path,
            )
            save_model(net, out / "model.pt", key_fingerprint=key.fingerprint(), train_config=asdict(cfg))
        if cfg.max_steps is not None and step >= cfg.max_steps:
            break
    bar.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return out / "model.pt"
