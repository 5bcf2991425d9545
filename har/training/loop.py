"""The deep-model training loop: class-weighted loss (label smoothing and mixup optional), AdamW +
one-cycle/cosine, gradient clipping, early stopping on validation macro-F1, a checkpoint every epoch
and exact resume.

Exact resume works because every source of randomness is derived from (seed, epoch): the batch
order, the augmentations and the dropout masks of epoch e are the same whether the run started at
epoch 0 or resumed at e. Together with the saved model/optimizer/scheduler states, a resumed run
ends with bit-identical weights to an uninterrupted one (on the same machine and thread count).

Under torchrun (`har train --nproc N`, har.training.distributed) the model is wrapped in
DistributedDataParallel, a DistributedSampler shares the windows out, and augmentations and dropout
come from (seed, epoch, rank); every rank validates on all validation windows, so all of them make
the same early-stopping decision. Only rank 0 writes checkpoints. ``train.precision: bf16`` autocasts
the training forward pass and loss; the weights, validation and the returned model stay fp32 (on CPU).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sklearn.metrics import f1_score
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from har.config import TrainParams
from har.errors import HarError
from har.io import atomic_path
from har.logging import get_logger
from har.training.augment import augment_batch, mixup
from har.training.distributed import (
    Rank,
    epoch_seed,
    mean_over_ranks,
    per_rank_batch,
    resolve_device,
    shard_sampler,
    sync_buffers,
    threads_per_rank,
)

log = get_logger(__name__)
EpochCallback = Callable[[int, dict[str, float]], None]
CHECKPOINT = "last.pt"


@dataclass
class TrainResult:
    best_epoch: int
    best_val_macro_f1: float
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """'Balanced' weights n / (K * count); a class absent from training gets weight 0."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(n_classes)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return w


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def weighted_loss(weights: torch.Tensor, smoothing: float) -> LossFn:
    """Class-weighted cross-entropy, optionally label-smoothed.

    Without smoothing: torch's own CrossEntropyLoss (bit-identical to runs from before smoothing).
    With it, each window's loss is weighted by its *target* class only:
    ``w[y] · ((1-ε)·(-log p_y) + ε·mean_c(-log p_c))``. torch's ``label_smoothing`` instead weights
    the uniform part class by class, so every window is pulled toward the heavily weighted rare
    classes (the transitions); measured, that cost 0.08 macro-F1 (docs/results.md)."""
    if smoothing == 0:
        return nn.CrossEntropyLoss(weight=weights)

    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(logits.float(), dim=1)
        per_window = -(1 - smoothing) * logp.gather(1, y[:, None]).squeeze(1) - smoothing * logp.mean(1)
        w = weights[y]
        return (w * per_window).sum() / w.sum()

    return loss


@torch.no_grad()
def predict_proba(model: nn.Module, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities in fp32, computed on the device the model is on."""
    model.eval()
    device = next(model.parameters()).device
    out = [torch.softmax(model(torch.from_numpy(X[i:i + batch_size]).to(device)), dim=1).cpu().numpy()
           for i in range(0, len(X), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _digest(cfg: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _run_settings(tp: TrainParams, world_size: int) -> dict[str, Any]:
    """What a checkpoint must agree on to be resumed. The device is left out (a GPU checkpoint
    resumes on CPU); later settings (precision, world size, label smoothing, mixup) only when not
    their defaults, so checkpoints of runs without them keep the digest they had before they existed."""
    out = tp.model_dump(mode="json", exclude={"device", "precision", "label_smoothing", "mixup_alpha"})
    for key, default in (("precision", "fp32"), ("label_smoothing", 0.0), ("mixup_alpha", 0.0)):
        if getattr(tp, key) != default:
            out[key] = getattr(tp, key)
    if world_size > 1:
        out["world_size"] = world_size
    return out


def _autocast(precision: str, device: torch.device) -> Callable[[], AbstractContextManager[Any]]:
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext


def _progress(disable: bool) -> Progress:
    return Progress(TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]:.3f}"), TimeElapsedColumn(),
                    disable=disable, transient=True)


def train_deep(model: nn.Module, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray,
               y_val: np.ndarray, tp: TrainParams, channels: list[str], n_classes: int, *,
               checkpoint_dir: Path | None = None, resume: bool = False,
               on_epoch: EpochCallback | None = None, epochs: int | None = None,
               show_progress: bool = True, rank: Rank | None = None) -> TrainResult:
    """Train ``model`` in place; on return it holds the weights of the best validation epoch, in
    fp32 on the CPU. ``rank``: this process's place under torchrun (default: rank 0 of 1 on
    train.device)."""
    epochs = epochs or tp.epochs
    rank = rank or Rank(device=resolve_device(tp.device))
    device, world = rank.device, rank.world_size
    torch.set_num_threads(threads_per_rank(tp.num_threads, world))
    torch.manual_seed(tp.seed)
    if len(X_val) == 0:
        raise HarError("training: no validation windows; early stopping needs validation subjects")
    model.to(device)  # before the optimizer takes the parameters
    weights = class_weights(y_train, n_classes) if tp.class_weighted else np.ones(n_classes)
    loss_fn = weighted_loss(torch.tensor(weights, dtype=torch.float32).to(device), tp.label_smoothing)
    opt = torch.optim.AdamW(model.parameters(), lr=tp.lr, weight_decay=tp.weight_decay)
    batch_size = per_rank_batch(tp.batch_size, world)
    sampler = shard_sampler(len(X_train), tp.seed, rank) if rank.distributed else None
    n_local = len(sampler) if sampler is not None else len(X_train)
    steps_per_epoch = max(1, -(-n_local // batch_size))
    total = epochs * steps_per_epoch
    if tp.schedule == "onecycle":
        sched: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=tp.lr, total_steps=total)
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    channel_std = X_train.reshape(-1, X_train.shape[2]).std(axis=0)
    cfg_digest = _digest({"train": _run_settings(tp, world), "epochs": epochs, "n": len(X_train),
                          "x": float(X_train[:: max(1, len(X_train) // 64)].sum()),
                          "channels": channels})

    start, best_f1, best_epoch, bad, history = 0, -1.0, -1, 0, []
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    ckpt = checkpoint_dir / CHECKPOINT if checkpoint_dir else None
    if resume:
        if ckpt is None or not ckpt.exists():
            raise HarError(f"--resume: no checkpoint at {ckpt}; run `har train` without --resume")
        # every rank reads rank 0's checkpoint, onto its own device
        state = torch.load(ckpt, map_location=device, weights_only=False)
        if state["config_digest"] != cfg_digest:
            raise HarError(f"--resume: {ckpt} was written with different params or data (or another "
                           "--nproc); resume only continues the same run")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        best_state, best_f1, best_epoch = state["best_state"], state["best_f1"], state["best_epoch"]
        bad, history, start = state["bad_epochs"], state["history"], state["epoch"] + 1
        if rank.is_main:
            log.info("resuming from %s at epoch %d", ckpt, start)
        if state.get("finished"):
            start = epochs

    # DDP averages the gradients of all ranks in backward(); ``model`` stays the unwrapped network
    # (checkpoints, validation and the result hold its weights, without DDP's "module." prefix)
    net: nn.Module = model
    if rank.distributed:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    autocast = _autocast(tp.precision, device)
    stopped = False
    with _progress(disable=not (show_progress and rank.is_main)) as progress:
        for epoch in range(start, epochs):
            # All randomness of this epoch comes from (seed, epoch), and (seed, epoch, rank) under
            # torchrun: resume-safe.
            if sampler is None:
                torch.manual_seed(tp.seed * 1000 + epoch)
                rng = np.random.default_rng([tp.seed, epoch])
                order = rng.permutation(len(X_train))
            else:
                torch.manual_seed(epoch_seed(tp.seed, epoch, rank.rank))
                rng = np.random.default_rng([tp.seed, epoch, rank.rank])
                sampler.set_epoch(epoch)
                order = np.fromiter(sampler, dtype=np.int64, count=n_local)
            model.train()
            task = progress.add_task("train", total=steps_per_epoch, epoch=f"{epoch + 1}/{epochs}", loss=0.0)
            running = 0.0
            for step in range(steps_per_epoch):
                idx = order[step * batch_size:(step + 1) * batch_size]
                xb = augment_batch(X_train[idx], channels, tp.augment, channel_std, rng)
                yb = torch.from_numpy(y_train[idx]).to(device)
                mix = mixup(xb, tp.mixup_alpha, rng)
                with autocast():
                    if mix is None:
                        loss = loss_fn(net(torch.from_numpy(xb).to(device)), yb)
                    else:
                        xm, perm, lam = mix
                        logits = net(torch.from_numpy(xm).to(device))
                        loss = lam * loss_fn(logits, yb) + (1 - lam) * loss_fn(logits, yb[perm])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), tp.grad_clip)
                opt.step()
                sched.step()
                running += float(loss.detach())
                progress.update(task, advance=1, loss=running / (step + 1))
            progress.remove_task(task)
            train_loss = running / steps_per_epoch
            if rank.distributed:
                sync_buffers(model)
                train_loss = mean_over_ranks(train_loss, device)
            # every rank scores all validation windows with the same weights: the same decisions
            val_pred = predict_proba(model, X_val).argmax(1)
            val_f1 = float(f1_score(y_val, val_pred, average="macro", labels=np.unique(y_val),
                                    zero_division=0))
            metrics = {"train_loss": train_loss, "val_macro_f1": val_f1,
                       "val_accuracy": float((val_pred == y_val).mean()), "lr": sched.get_last_lr()[0]}
            history.append({"epoch": epoch + 1, **metrics})
            if val_f1 > best_f1:
                best_f1, best_epoch, bad = val_f1, epoch + 1, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad += 1
            stopped = bad >= tp.patience and epoch + 1 >= tp.min_epochs
            if rank.is_main:
                log.info("epoch %d/%d loss %.4f val macro-F1 %.4f%s", epoch + 1, epochs,
                         metrics["train_loss"], val_f1, " (best)" if best_epoch == epoch + 1 else "")
            if ckpt is not None and rank.is_main:
                _save_checkpoint(ckpt, {
                    "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "best_state": best_state, "best_f1": best_f1,
                    "best_epoch": best_epoch, "bad_epochs": bad, "history": history,
                    "config_digest": cfg_digest, "finished": stopped or epoch + 1 == epochs})
            if on_epoch is not None:
                on_epoch(epoch + 1, metrics)
            if stopped:
                if rank.is_main:
                    log.info("early stop: no val macro-F1 gain for %d epochs", tp.patience)
                break
    del net  # DDP's hooks and buckets go with the wrapper
    model.load_state_dict(best_state)
    model.to("cpu")  # what export, MLflow and later stages take
    model.eval()
    return TrainResult(best_epoch, best_f1, len(history), history, stopped)


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path, ".pt") as tmp:
        torch.save(state, tmp)
