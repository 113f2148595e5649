"""Train the face student (:mod:`photo_guard.encoders.student`) by distillation from SFace, plain or robust.

    python -m photo_guard.encoders.distill prepare ../shared/data/lfw_pool runs/student/pool.pt
    python -m photo_guard.encoders.distill train runs/student/pool.pt runs/student [--epochs 8] [--eps 0]

``prepare`` aligns every face of an unlabelled folder exactly as protection does (YuNet, the 112×112 ArcFace
template) and records SFace's embedding of each: the teacher is run once. ``train`` fits the student to SFace's
embeddings on the clean face and, with ``--eps`` > 0, ARD-style (Goldblum et al., AAAI 2020) on a PGD copy inside an
L-inf ball of ``eps``/255 that tries to pull the student away from the teacher; the student must give the teacher's
clean answer on both (slightly robust surrogates are known to give perturbations that transfer best: Springer et al.,
NeurIPS 2021). The shipped student is the plain one (``--eps 0 --epochs 8``): measured in docs/photo_guard.md, the
2/255 ARD student neither transferred to SFace nor could be moved much by protection itself. Writes
``face_student.safetensors`` (float16 weights and the student's mean embedding over the pool, its reference mean) and
``train_log.json`` to the output folder; copy the weights into the user cache (``photo_guard.cache.cache_dir()``),
where the ``face_student`` encoder loads them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..faces import face_alignments, warp_faces
from ..photo_io import SUPPORTED_SUFFIXES, load_rgb
from .student import REFERENCE, WEIGHTS, FaceStudent

__all__ = ["prepare_pool", "distill_loss", "train_student", "reference_mean"]


def prepare_pool(folder: Path, batch: int = 64) -> dict[str, Tensor]:
    """Aligned faces ``uint8 [N, 3, 112, 112]`` and SFace embeddings ``[N, 128]`` of every photo under ``folder``."""
    from . import build_encoder

    sface = build_encoder("sface")
    files = sorted(f for f in folder.rglob("*") if f.suffix.lower() in SUPPORTED_SUFFIXES)
    faces, teacher = [], []
    with torch.inference_mode():
        for i in range(0, len(files), batch):
            crops = []
            for f in files[i : i + batch]:
                img = load_rgb(f)[None]
                crops.append(warp_faces(img, face_alignments(img)[0])[0])
            x = torch.stack(crops)
            faces.append((x * 255).round().to(torch.uint8))
            teacher.append(sface.features(x.flip(1) * 255))
            print(f"{min(i + batch, len(files))}/{len(files)}", flush=True)
    return {"faces": torch.cat(faces), "teacher": torch.cat(teacher)}


def distill_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """``[B]``: 1 - cosine between student and teacher embeddings (identity lives in the direction)."""
    return 1 - F.cosine_similarity(student, teacher, dim=-1)


def _attack(net: FaceStudent, x: Tensor, teacher: Tensor, eps: float, steps: int) -> Tensor:
    """PGD from a random start that maximises :func:`distill_loss` within ``eps`` (the ARD inner problem). One step
    is FGSM from a random start with step 1.25·eps (Wong et al., ICLR 2020: "fast is better than free")."""
    delta = torch.empty_like(x).uniform_(-eps, eps)
    step = 1.25 * eps if steps == 1 else 2.5 * eps / steps
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = distill_loss(net((x + delta).clamp(0, 1)), teacher).sum()
        (grad,) = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + step * grad.sign()).clamp(-eps, eps)
    return (x + delta).clamp(0, 1).detach()


def train_student(
    pool: dict[str, Tensor],
    epochs: int = 8,
    eps: float = 0.0,
    attack_steps: int = 1,
    width: int = 32,
    batch: int = 64,
    lr: float = 2e-3,
    held_out: int = 400,
    seed: int = 0,
) -> tuple[FaceStudent, list[dict]]:
    """ARD training; returns the student (eval mode) and one log row per epoch with the held-out cosine to SFace,
    clean and under a 5-step attack."""
    torch.manual_seed(seed)
    faces, teacher = pool["faces"], pool["teacher"]
    order = torch.randperm(len(faces))
    val, train = order[:held_out], order[held_out:]
    net = FaceStudent(width, teacher.shape[1])
    opt = torch.optim.AdamW(net.parameters(), lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * (len(train) // batch))
    log = []
    for epoch in range(epochs):
        net.train()
        start, total = time.time(), 0.0
        perm = train[torch.randperm(len(train))]
        for b in range(len(train) // batch):
            idx = perm[b * batch : (b + 1) * batch]
            x, t = faces[idx].float() / 255, teacher[idx]
            # A mirrored face keeps its identity: SFace gives it cos 0.96 to the original (median; min 0.90; 512 faces).
            flip = torch.rand(len(x)) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
            if eps > 0:  # the clean and the attacked copy, each to the teacher's clean answer
                x, t = torch.cat([x, _attack(net, x, t, eps, attack_steps)]), torch.cat([t, t])
            loss = distill_loss(net(x), t).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        row = {"epoch": epoch + 1, "train_loss": total / (len(train) // batch), "s": round(time.time() - start)}
        row.update(_validate(net, faces[val].float() / 255, teacher[val], eps))
        log.append(row)
        print(json.dumps(row), flush=True)
    return net.eval(), log


def reference_mean(net: FaceStudent, faces: Tensor, batch: int = 256) -> Tensor:
    """The student's mean embedding ``[D]`` over aligned faces ``uint8 [N, 3, 112, 112]``: the centre its embeddings are
    measured from (:class:`~photo_guard.encoders.base.Encoder`), stored beside its weights."""
    net.eval()
    with torch.no_grad():
        total = sum(net(faces[i : i + batch].float() / 255).double().sum(0) for i in range(0, len(faces), batch))
    return (total / len(faces)).float()


def _validate(net: FaceStudent, x: Tensor, t: Tensor, eps: float) -> dict:
    net.eval()
    with torch.no_grad():
        clean = float(1 - distill_loss(net(x), t).mean())
    adv = _attack(net, x, t, eps, 5) if eps > 0 else x
    with torch.no_grad():
        robust = float(1 - distill_loss(net(adv), t).mean())
    return {"val_cos": round(clean, 4), "val_cos_attacked": round(robust, 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    prep = sub.add_parser("prepare")
    prep.add_argument("folder", type=Path)
    prep.add_argument("out", type=Path)
    tr = sub.add_parser("train")
    tr.add_argument("pool", type=Path)
    tr.add_argument("out", type=Path)
    tr.add_argument("--epochs", type=int, default=8)
    tr.add_argument("--eps", type=float, default=0.0, help="ARD radius in 1/255 (0: plain distillation)")
    tr.add_argument("--attack-steps", type=int, default=1)
    tr.add_argument("--width", type=int, default=32)
    args = p.parse_args()
    if args.cmd == "prepare":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        torch.save(prepare_pool(args.folder), args.out)
        return
    from safetensors.torch import save_file

    pool = torch.load(args.pool, weights_only=True)
    net, log = train_student(pool, args.epochs, args.eps / 255, args.attack_steps, args.width)
    args.out.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    state[REFERENCE] = reference_mean(net, pool["faces"])
    save_file(state, str(args.out / WEIGHTS))
    run = vars(args) | {"pool": str(args.pool), "out": str(args.out)}
    (args.out / "train_log.json").write_text(json.dumps({"args": run, "epochs": log}, indent=1))


if __name__ == "__main__":
    main()
