"""Checkpoints: model, optimizer and position in training, in one safetensors file.

Tensors go in the safetensors body and everything else (epoch, phase, the plan, optimizer
hyperparameters) in its JSON header, so a checkpoint never needs pickle to be read.
"""
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ..core.errors import CentaurError


def save_checkpoint(learn, path):
    """Write the learner's state after an epoch; atomic (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in learn.model.state_dict().items()}
    opt_state = learn.opt.state_dict()
    for pid, state in opt_state["state"].items():
        for name, value in state.items():
            tensors[f"opt.{pid}.{name}"] = torch.as_tensor(value).detach().contiguous()
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in opt_state["param_groups"]]
    meta = {"phase": learn.phase, "epoch": learn.epoch, "step": learn.step, "plan": learn.plan,
            "opt_groups": groups, "epoch_log": learn.epoch_log}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"centaur": json.dumps(meta, default=str)})
    os.replace(tmp, path)
    return path


def load_checkpoint(learn, path, plan=None):
    """Restore model and optimizer from a checkpoint; returns its metadata (phase, epoch, ...).

    plan: the training plan of the run being resumed; a checkpoint from a different plan is
    refused, since its schedule position would mean something else.
    """
    if path is None or not Path(path).is_file():
        raise CentaurError(f"cannot resume: no checkpoint at {str(path)!r}. Train without --resume first.")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["centaur"])
        tensors = load_file(str(path))
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError) as e:
        raise CentaurError(f"checkpoint {str(path)!r} is damaged or not a centaur checkpoint ({e}).") from e
    if plan is not None and meta.get("plan") != plan:
        raise CentaurError(f"checkpoint {str(path)!r} was made by a different plan {meta.get('plan')}; this run "
                           f"asks for {plan}. Use the same options to resume, or start without --resume.")
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
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["opt_groups"]]
    learn.opt.load_state_dict({"state": state, "param_groups": groups})
    learn.resuming = True
    return meta
