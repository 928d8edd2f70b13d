"""Checkpoints: model, optimizer and position in training, in one safetensors file.

Tensors go in the safetensors body and everything else (epoch, phase, the plan, optimizer
hyperparameters) in its JSON header, so a checkpoint never needs pickle to be read.

The states of the random number generators are saved too (PyTorch's global one, the
training loader's shuffling generator, those of batch transforms, Python's and NumPy's), so a
resumed run draws the same shuffles, dropout masks and augmentations as one that was never
stopped, and ends with the same weights.

Tensors are written from the CPU and read onto the CPU, then copied into the model and
optimizer wherever they live, so a checkpoint written on a GPU resumes on a CPU and the
reverse (optimizer state follows its parameters: torch.optim's load_state_dict moves it).
"""
import json
import os
import random
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ..core.errors import CentaurError
from ..core.log import warn


def save_checkpoint(learn, path):
    """Write the learner's state after an epoch; atomic (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in learn.model.state_dict().items()}
    opt_state = learn.opt.state_dict()
    for pid, state in opt_state["state"].items():
        for name, value in state.items():
            tensors[f"opt.{pid}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in opt_state["param_groups"]]
    rng_tensors, rng_meta = _rng_state(learn)
    tensors.update(rng_tensors)
    meta = {"phase": learn.phase, "epoch": learn.epoch, "step": learn.step, "plan": learn.plan,
            "opt_groups": groups, "epoch_log": learn.epoch_log, "rng": rng_meta}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"centaur": json.dumps(meta, default=str)})
    os.replace(tmp, path)
    return path


def check_resume(checkpoint, resume):
    """Before any data is read: refuse --resume without a checkpoint, and warn that one left by an
    interrupted run will be replaced when starting over."""
    if resume and not Path(checkpoint).is_file():
        folder = Path(checkpoint).parent
        if (folder / "model.json").is_file():
            raise CentaurError(f"nothing to resume in {str(folder)!r}: that run finished and wrote its model. "
                               "Training again without --resume replaces it; give another --out to keep it.")
        raise CentaurError(f"cannot resume: no checkpoint in {str(folder)!r}. Run without --resume to start.")
    if not resume and Path(checkpoint).is_file():
        warn(f"{checkpoint} holds an interrupted run; starting over replaces it after the first epoch. "
             "Stop now (Ctrl-C) and add --resume to go on from it instead.")


def load_checkpoint(learn, path, plan=None):
    """Restore model and optimizer from a checkpoint; returns its metadata (phase, epoch, ...).

    plan: the training plan of the run being resumed; a checkpoint from a different plan is
    refused, since its schedule position would mean something else.
    """
    if path is None:
        raise CentaurError("cannot resume: no checkpoint file was given. Train without --resume first.")
    check_resume(path, resume=True)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["centaur"])
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError) as e:
        raise CentaurError(f"checkpoint {str(path)!r} is damaged or not a centaur checkpoint ({e}).") from e
    if plan is not None and meta.get("plan") != plan:
        saved = meta.get("plan") or {}
        differs = [f"{k}: {saved.get(k)!r} then, {plan.get(k)!r} now" for k in sorted(set(saved) | set(plan))
                   if saved.get(k) != plan.get(k) and k != "data"]
        if saved.get("data") != plan.get("data"):
            differs.append("the data: other images or labels, another split (--seed, --valid-pct) or other "
                           "transforms (--size, --resize, --no-augment)")
        raise CentaurError(f"checkpoint {str(path)!r} was made by a different run; it differs in "
                           f"{'; '.join(differs)}. Resume with the options it was started with, or start "
                           "without --resume.")
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        learn.model.load_state_dict(model_state)
    except RuntimeError as e:
        raise CentaurError(f"checkpoint {str(path)!r} holds weights of another model: {str(e)[:300]}") from e
    if learn.opt is None:
        learn.create_opt()
    state = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta.get("opt_groups", [])]
    try:
        learn.opt.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, RuntimeError) as e:
        raise CentaurError(f"checkpoint {str(path)!r} holds the optimizer of a differently grouped model "
                           f"({e}); start without --resume.") from e
    _set_rng_state(learn, tensors, meta.get("rng") or {})
    learn.resuming = True
    return meta


def _generators(learn):
    """Named torch.Generators that decide the training data: the shuffle and batch transforms."""
    train = getattr(getattr(learn, "dls", None), "train", None)
    found = {}
    if isinstance(getattr(train, "generator", None), torch.Generator):
        found["loader"] = train.generator
    for i, tfm in enumerate(getattr(train, "batch_tfms", []) or []):
        if isinstance(getattr(tfm, "generator", None), torch.Generator):
            found[f"batch_tfm.{i}"] = tfm.generator
    return found


def _rng_state(learn):
    tensors = {"rng.torch": torch.get_rng_state()}
    device = _cuda_device(learn)
    if device is not None:  # dropout on a GPU draws from that GPU's generator
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    for name, gen in _generators(learn).items():
        tensors[f"rng.{name}"] = gen.get_state()
    version, internal, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np_keys.astype(np.int64))
    meta = {"python": [version, list(internal), gauss], "numpy": [np_name, int(np_pos), int(np_has_gauss),
                                                                  float(np_gauss)]}
    return tensors, meta


def _set_rng_state(learn, tensors, meta):
    # checkpoints without these entries still load; the run then draws fresh random numbers
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])
    device = _cuda_device(learn)
    if device is not None and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    for name, gen in _generators(learn).items():
        if f"rng.{name}" in tensors:
            gen.set_state(tensors[f"rng.{name}"])
    if "python" in meta:
        version, internal, gauss = meta["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in meta and "rng.numpy" in tensors:
        name, pos, has_gauss, gauss = meta["numpy"]
        np.random.set_state((name, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))


def _cuda_device(learn):
    """The CUDA device the learner trains on, or None on any other."""
    device = getattr(learn, "device", None)
    return device if device is not None and device.type == "cuda" else None
