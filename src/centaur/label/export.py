"""Export from the labeling workbench: labels (CSV, JSON), predictions, a folder-per-class copy or
link farm that `centaur train` reads as is, and the trained head as a centaur model directory.

Every file is written under a temporary name and renamed into place (os.replace), and a class
folder tree is built beside its destination and swapped in, so a crash never leaves a
half-written export that looks whole. Paths in files are relative to the project root.
"""
import csv
import datetime
import io
import json
import os
import shutil
from collections import Counter, defaultdict
from pathlib import Path, PurePosixPath

import numpy as np

from ..core.errors import CentaurError, check_choice
from ..core.files import write_atomically
from ..core.log import warn

LABEL_COLUMNS = ("path", "label", "author", "how", "at")
MARKER = ".centaur-export.json"  # written in every class-folder export: says the folder is ours to replace
MARKER_FORMAT = "centaur-class-folders"
EXPORT_MARKER = ".centaur-workbench-export.json"  # in the folder a workbench export writes to: ours to update
EXPORT_PARTS = ("labels", "predictions", "folders", "model")


def _text(value):
    """A record field as text: None -> '', paths with forward slashes, everything else str()."""
    if value is None:
        return ""
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return str(value)


def _label_rows(records):
    rows = []
    for i, r in enumerate(records):
        if not isinstance(r, dict) or "path" not in r:
            raise CentaurError(f"label record {i} should be a dict with at least 'path' and 'label', got {r!r}.")
        rows.append({c: _text(r.get(c)) for c in LABEL_COLUMNS})
    return rows


def write_labels_csv(records, path, root=None):
    """Write labels as CSV with the columns path, label, author, how, at (one row per record),
    and first a `file` column with each image's full path when the project's `root` is given, so
    that `centaur train labels.csv` reads it as it is, wherever the file was saved.

    records: dicts with image_id, path (relative to the project root), label, author (who),
    how (for example 'lasso', 'single', 'accepted prediction') and at (when, ISO 8601).

    >>> write_labels_csv([{"path": "a.jpg", "label": "cat", "author": "ann", "how": "lasso",
    ...                    "at": "2025-01-01T10:00:00+00:00"}], "labels.csv")  # doctest: +SKIP
    """
    rows = _label_rows(records)
    columns = LABEL_COLUMNS
    if root is not None:
        root = Path(root).resolve()
        rows = [{"file": str(root / PurePosixPath(r["path"])), **r} for r in rows]
        columns = ("file", *LABEL_COLUMNS)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_atomically(path, buffer.getvalue())


def write_labels_json(records, path):
    """Write labels as JSON: {"format": "centaur-labels", "version": 1, "count": n, "labels":
    [{path, label, author, how, at}, ...]}; missing fields are null.

    >>> write_labels_json(records, "labels.json")  # doctest: +SKIP
    """
    _label_rows(records)  # the same checks as the CSV
    keep = lambda v: v if v is None or isinstance(v, (str, int, float)) else _text(v)  # numbers stay numbers
    labels = [{c: keep(r.get(c)) for c in LABEL_COLUMNS} for r in records]
    doc = {"format": "centaur-labels", "version": 1, "count": len(labels), "labels": labels}
    return write_atomically(path, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


def write_predictions_csv(paths, classes, probs, path, labels=None):
    """Write one row per image: path, prediction, confidence, prob_<class> for every class, and
    label (the person's label, '' where none) when `labels` is given.

    >>> write_predictions_csv(["a.jpg"], ["cat", "dog"], [[0.9, 0.1]], "predictions.csv")  # doctest: +SKIP
    """
    probs = np.asarray(probs, dtype=np.float64)
    classes = [str(c) for c in classes]
    if probs.ndim != 2 or probs.shape != (len(paths), len(classes)):
        raise CentaurError(f"probabilities should be (images, classes) = ({len(paths)}, {len(classes)}), "
                           f"got shape {probs.shape}.")
    if labels is not None and len(labels) != len(paths):
        raise CentaurError(f"got {len(paths)} paths but {len(labels)} labels; give one label (or None) per path.")
    header = ["path", "prediction", "confidence"] + [f"prob_{c}" for c in classes]
    header += ["label"] if labels is not None else []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    top = probs.argmax(1) if len(classes) else np.zeros(len(paths), dtype=int)
    for i, p in enumerate(paths):
        row = [_text(p), classes[top[i]], f"{probs[i, top[i]]:.6f}"] + [f"{v:.6f}" for v in probs[i]]
        if labels is not None:
            row.append(_text(labels[i]))
        writer.writerow(row)
    return write_atomically(path, buffer.getvalue())


# Class folders ---------------------------------------------------------------------------

def _check_folder_name(label):
    """A label must be usable as one folder name that `centaur train` will read back unchanged."""
    bad = (not label or label in (".", "..") or "/" in label or "\\" in label or "\0" in label
           or label.startswith("."))  # get_image_files skips hidden folders: the class would vanish
    if bad:
        raise CentaurError(f"the label {label!r} cannot be a folder name (empty, '.' or '..', a slash, or a "
                           "leading dot, which `centaur train` skips as hidden); rename the label before "
                           "exporting class folders.")


def _unique_names(items):
    """{(label, path): file name} with clashes inside one class folder made unique.

    A name used by one file keeps its name; files that share a name (compared ignoring case, so the
    folder also works on macOS and Windows) are named after their whole relative path instead
    ('a/cat.png' -> 'a__cat.png'), and any clash left gets -2, -3 ... in path order.
    """
    by_folder = defaultdict(list)
    for label, rel in sorted(items):
        by_folder[label].append(rel)
    names = {}
    for label, rels in by_folder.items():
        counts = Counter(PurePosixPath(r).name.lower() for r in rels)
        taken = set()
        for rel in rels:  # sorted, so the same records always give the same names
            name = PurePosixPath(rel).name
            if counts[name.lower()] > 1:
                name = "__".join(p for p in PurePosixPath(rel).parts if p not in ("", "/", ".."))
            stem, suffix, n = PurePosixPath(name).stem, PurePosixPath(name).suffix, 2
            while name.lower() in taken:
                name, n = f"{stem}-{n}{suffix}", n + 1
            taken.add(name.lower())
            names[(label, rel)] = name
    return names


def _check_out(root, out):
    """Refuse an out folder that would feed back into the project or clobber someone's files.

    Returns the previous export's manifest (a list of relative file names) when `out` is one.
    """
    root_r, out_r = root.resolve(), out.resolve()
    # Inside the project, only under a hidden folder (the project's own .centaur/export): scanning
    # (get_image_files) skips hidden folders, so the exported images are not added a second time.
    hidden = out_r.is_relative_to(root_r) and any(p.startswith(".") for p in out_r.relative_to(root_r).parts)
    if (out_r == root_r or out_r.is_relative_to(root_r)) and not hidden:
        raise CentaurError(f"cannot export class folders to {str(out)!r}: it is inside the project folder "
                           f"{str(root)!r}, so the next scan would add every exported image to the project a "
                           "second time. Choose a folder outside the project, or inside its hidden .centaur "
                           "folder.")
    if root_r.is_relative_to(out_r):
        raise CentaurError(f"cannot export class folders to {str(out)!r}: it holds the project folder "
                           f"{str(root)!r}. Choose a folder outside the project.")
    if not out.exists():
        return None
    if not out.is_dir():
        raise CentaurError(f"{str(out)!r} is a file; give a folder to export class folders to.")
    if not os.listdir(out):
        return []
    present = sorted((Path(folder) / name).relative_to(out).as_posix()  # files and links, never followed
                     for folder, subfolders, names in os.walk(out)
                     for name in names + [d for d in subfolders if os.path.islink(os.path.join(folder, d))])
    marker = out / MARKER
    manifest = None
    if marker.is_file() and not marker.is_symlink():
        try:
            doc = json.loads(marker.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and doc.get("format") == MARKER_FORMAT and isinstance(doc.get("files"), list):
                manifest = [str(f) for f in doc["files"]]
        except (OSError, ValueError):
            manifest = None
    if manifest is None:
        raise CentaurError(f"{str(out)!r} is not empty and is not a previous class-folder export (it has no "
                           f"{MARKER}); choose an empty or new folder, so nothing of yours is overwritten.")
    foreign = [p for p in present if p != MARKER and p not in set(manifest)]
    if foreign:
        raise CentaurError(f"{str(out)!r} is a previous export but also holds files it did not write "
                           f"({', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}); move them away or "
                           "choose another folder.")
    return manifest


def check_export_folder(out):
    """Refuse, before anything is written, an export folder that holds files of someone else's.

    `out` may be new, empty, or a previous workbench export (it has EXPORT_MARKER), whose
    labels.csv, predictions.csv, classes/ and model/ are then replaced. Returns nothing.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CentaurError(f"{str(out)!r} is a file; give a folder to export to (new, empty, or an earlier export).")
    if out.is_dir() and os.listdir(out) and not (out / EXPORT_MARKER).is_file():
        raise CentaurError(f"{str(out)!r} is not empty and is not an earlier workbench export (it has no "
                           f"{EXPORT_MARKER}); choose an empty or new folder, so nothing of yours is overwritten.")


def mark_export_folder(out):
    """Make `out` an export folder (see check_export_folder)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / EXPORT_MARKER).is_file():
        write_atomically(out / EXPORT_MARKER, json.dumps({"format": "centaur-workbench-export", "version": 1}).encode())


def remove_stale(out):
    """Remove an earlier export's predictions and model from `out` (an export folder), when the
    labels beside them have changed and no model could be trained on them."""
    out = Path(out)
    (out / "predictions.csv").unlink(missing_ok=True)
    if (out / "model").is_dir() and not (out / "model").is_symlink():
        shutil.rmtree(out / "model")


def check_class_folders(root, records, out):
    """Every check write_class_folders makes before writing: `out` is free to use, labels are folder names."""
    _check_out(Path(root), Path(out))
    for label in sorted({str(r["label"]) for r in records if isinstance(r, dict) and r.get("label")}):
        _check_folder_name(label)


def write_class_folders(root, records, out, mode="link"):
    """Export labeled images as out/<label>/<file>: a folder per class that `centaur train out`
    reads as is. Returns {label: number of images}.

    mode "link" makes symbolic links to the originals (absolute targets, so the export can be
    moved); "copy" copies the files. Unlabeled records are left out; labeled files that no longer
    exist are skipped with a warning. `out` must be outside the project folder (else the next
    scan would add the exported images to the project again), and either new, empty, or a
    previous export of ours (found by its .centaur-export.json), which is then replaced whole.
    Inside the project, a hidden folder such as .centaur/export is allowed, as scanning skips it.

    >>> write_class_folders("photos", records, "photos-by-class", mode="copy")  # doctest: +SKIP
    {'cat': 120, 'dog': 98}
    """
    check_choice("export mode", mode, ("link", "copy"))
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise CentaurError(f"project folder {str(root)!r} does not exist or is not a folder.")
    _check_out(root, out)
    items, given = [], {}
    for i, r in enumerate(records):
        if not isinstance(r, dict) or "path" not in r:
            raise CentaurError(f"label record {i} should be a dict with at least 'path' and 'label', got {r!r}.")
        label = r.get("label")
        if label is None or label == "":
            continue
        label, rel = str(label), PurePosixPath(_text(r["path"])).as_posix()
        if given.get(rel, label) != label:
            raise CentaurError(f"{rel!r} has two labels in the records ({given[rel]!r} and {label!r}); "
                               "one image belongs in one class folder.")
        if rel not in given:
            given[rel] = label
            items.append((label, rel))
    for label in sorted({label for label, _ in items}):
        _check_folder_name(label)
    missing = [rel for _, rel in items if not (root / rel).is_file()]
    if missing:
        warn(f"{len(missing)} labeled file(s) no longer exist and are left out of the export, for example "
             f"{missing[0]!r}; rescan the project to drop them.")
        items = [(label, rel) for label, rel in items if rel not in set(missing)]
    names = _unique_names(items)

    # Build beside the destination, then swap: the export is whole or absent, never half written.
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    counts, files = Counter(), []
    try:
        for (label, rel), name in sorted(names.items()):
            (tmp / label).mkdir(parents=True, exist_ok=True)
            source, target = (root / rel).resolve(), tmp / label / name
            if mode == "link":
                os.symlink(source, target)
            else:
                shutil.copy2(source, target)
            counts[label] += 1
            files.append(f"{label}/{name}")
        manifest = {"format": MARKER_FORMAT, "version": 1, "mode": mode, "root": str(root.resolve()),
                    "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "counts": dict(sorted(counts.items())), "files": files,
                    "sources": {f"{label}/{name}": rel for (label, rel), name in sorted(names.items())}}
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / MARKER).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        _check_out(root, out)  # again: nothing may have appeared in it while we were building
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.rename(out, old)
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old)  # removes our links and copies; rmtree never follows a link
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dict(sorted(counts.items()))


# Model directory -------------------------------------------------------------------------

def write_model_dir(result, embedder_meta, out):
    """Write the trained head with its pretrained body as a centaur model directory, so
    `centaur predict`, `centaur serve` and Predictor use it like any trained model.

    result: a learn.HeadResult trained on pooled final-layer features; embedder_meta: how those
    features were computed, as the workbench's Embedder.meta says: {"arch": "lite0", "size": 160,
    "resize": "squish", "pooling": "average", "mean": [...], "std": [...]} (all but size may be
    left out: lite0, squish, average, the network's own statistics). An optional "layer" other
    than "last" is refused: only the final layer's features are what the linear head sees.

    >>> write_model_dir(result, {"arch": "lite0", "size": 160}, "models/from-labels")  # doctest: +SKIP
    """
    import torch

    from ..data.transforms import Resize
    from ..models.classifier import create_classifier
    from ..models.model_dir import write_model_dir as write_weights_and_meta
    from ..train.export import versions

    if not isinstance(embedder_meta, dict):
        raise CentaurError(f"embedder_meta should be a dict saying how features were computed (arch, size), "
                           f"got {embedder_meta!r}.")
    layer = embedder_meta.get("layer", "last")
    if layer != "last":
        raise CentaurError(f"a model directory can only be made from a head trained on the 'last' layer's "
                           f"features (the pooled output of the network's body), got layer {layer!r}; train "
                           "on the last layer to export a model.")
    if embedder_meta.get("pooling", "average") != "average":
        raise CentaurError(f"the linear head averages the body's output, but the features were pooled by "
                           f"{embedder_meta['pooling']!r}; a model directory needs average-pooled features.")
    if "size" not in embedder_meta:
        raise CentaurError("embedder_meta lacks 'size', the image size the features were computed at; the model "
                           "must resize images the same way.")
    arch = embedder_meta.get("arch", "lite0")
    weight, bias = np.asarray(result.weight, dtype=np.float32), np.asarray(result.bias, dtype=np.float32)
    num_classes = len(result.classes)
    model, prep = create_classifier(arch, num_classes, pretrained=True, head="linear")
    if weight.shape != (num_classes, prep["num_features"]) or bias.shape != (num_classes,):
        raise CentaurError(f"the head's weights have shape {weight.shape} but {arch!r} with {num_classes} classes "
                           f"needs ({num_classes}, {prep['num_features']}); were the features computed by "
                           "another network or layer?")
    linear = model.head[-1]  # AdaptiveAvgPool2d, Flatten, Linear
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(weight))
        linear.bias.copy_(torch.from_numpy(bias))
    resize = Resize(embedder_meta["size"], embedder_meta.get("resize", "squish"))
    prep["item_tfms"] = [resize.to_dict()]
    prep["mean"] = [float(v) for v in embedder_meta.get("mean", prep["mean"])]
    prep["std"] = [float(v) for v in embedder_meta.get("std", prep["std"])]
    low, high = result.interval
    meta = {
        "kind": "image",
        "task": "single_label",
        "arch": arch,
        "timm_arch": prep.get("timm_arch"),
        "num_outputs": num_classes,
        "classes": list(result.classes),
        "preprocessing": prep,
        "metrics": {"accuracy": {"value": round(float(result.accuracy), 4),
                                 "ci95": [round(float(low), 4), round(float(high), 4)],
                                 "method": f"{result.folds}-fold cross-validation on the labeled images"}},
        "provenance": {
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "training": f"trained in the labeling workbench on {result.num_labeled} labels: a logistic "
                        f"regression on the pretrained {arch} body's pooled features, body not fine-tuned",
            "n_train": int(result.num_labeled),
            "counts": {str(k): int(v) for k, v in result.counts.items()},
            "versions": versions(),
        },
    }
    return Path(write_weights_and_meta(out, model, meta))
