"""A model directory: model.safetensors (weights) + model.json (everything else). No pickle.

fastai's export.pkl runs arbitrary code when loaded (fastai issue 4163); these two files
hold only tensors and JSON, so opening a model from a stranger is safe.
"""
import json
import os
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..core.errors import CentaurError, did_you_mean

FORMAT = "centaur-model"
FORMAT_VERSION = 1
REQUIRED = {"format": str, "format_version": int, "task": str, "arch": str, "num_outputs": int,
            "preprocessing": dict}
TASKS = ("single_label", "multi_label", "regression")
HEADS = ("fastai", "linear")  # the head kinds create_classifier builds (models.classifier.HEADS)


def write_model_dir(path, model, meta):
    """Write weights and metadata; files are written to a temporary name and renamed, so a crash
    never leaves a half-written model that looks whole."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path / "model.safetensors.tmp"))
    # the weights' checksum, checked on load: a damaged copy (a bad disk, a cut-off transfer that
    # still parses) would otherwise predict garbage, NaN, with no error
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta,
            "weights_sha256": _sha256(path / "model.safetensors.tmp")}
    (path / "model.json.tmp").write_text(json.dumps(meta, indent=2, default=str))
    # safetensors writes its file readable by its owner alone (0600); give the weights the mode any
    # new file gets here (the umask's), so a service account or a colleague on a shared disk can load them
    os.chmod(path / "model.safetensors.tmp", (path / "model.json.tmp").stat().st_mode & 0o777)
    os.replace(path / "model.safetensors.tmp", path / "model.safetensors")
    os.replace(path / "model.json.tmp", path / "model.json")
    return path


def read_split_record(model_dir, retrain):
    """(path, the parsed split.json) of a model directory: which rows or files validated.

    retrain: how to get one, ending the message for a model without it ("`centaur train`, which
    records which files validated"). Unreadable JSON is a CentaurError too; what the record must
    hold is for the caller (image and table models record different things)."""
    path = Path(model_dir) / "split.json"
    if not path.is_file():
        raise CentaurError(f"{str(model_dir)!r} has no validation set recorded (split.json is missing: the model "
                           f"was trained by an older centaur or by hand). Retrain it with {retrain}.")
    try:
        return path, json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CentaurError(f"{str(path)!r} is damaged ({e}); retrain the model to write it again.") from None


def model_version(path):
    """A short, stable name for the exact weights: the first 12 hex digits of their SHA-256.

    Feedback and predictions record it, so a contested case can be traced to the model that
    made it even after retraining writes a new model to the same folder.
    """
    return _sha256(Path(path) / "model.safetensors")[:12]


def _sha256(file):
    import hashlib
    with open(file, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def read_meta(path):
    """Read and validate model.json, saying exactly what is wrong with a damaged or foreign one."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"give the model directory's path (str or Path), not a {type(path).__name__}.")
    path = Path(path)
    if not path.exists():
        raise CentaurError(f"model directory {str(path)!r} does not exist; give the folder written by "
                           "`centaur train` (it holds model.json and model.safetensors).")
    if path.is_file():
        if path.name in ("model.json", "model.safetensors"):
            path = path.parent
        elif path.suffix == ".pkl":
            raise CentaurError(f"{str(path)!r} is a pickle file; centaur never opens pickles because they "
                               "can run code. Give a centaur model directory.")
        else:
            raise CentaurError(f"{str(path)!r} is a file; give the model directory that holds model.json.")
    missing = [n for n in ("model.json", "model.safetensors") if not (path / n).is_file()]
    if missing:
        raise CentaurError(f"{str(path)!r} is not a centaur model directory: {', '.join(missing)} missing.")
    try:
        meta = json.loads((path / "model.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CentaurError(f"{str(path / 'model.json')!r} is damaged (not valid JSON: {e}).") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CentaurError(f"{str(path / 'model.json')!r} is not a centaur model description "
                           f"(expected \"format\": \"{FORMAT}\").")
    where = repr(str(path / "model.json"))
    for key, kind in REQUIRED.items():
        if key not in meta:
            raise CentaurError(f"{where} lacks the field {key!r}; the file is damaged.")
        # bool is a subclass of int in Python, but `"num_outputs": true` is still a damaged file
        if not isinstance(meta[key], kind) or (kind is int and isinstance(meta[key], bool)):
            raise CentaurError(f"{where}: field {key!r} should be {kind.__name__}, "
                               f"got {type(meta[key]).__name__} ({meta[key]!r}).")
    if meta["format_version"] > FORMAT_VERSION:
        raise CentaurError(f"model format version {meta['format_version']} is newer than this centaur reads "
                           f"({FORMAT_VERSION}); upgrade centaur.")
    if meta["task"] not in TASKS:
        raise CentaurError(f"unknown task {meta['task']!r} in {where}; expected one of {TASKS}.")
    if meta["num_outputs"] < 1:
        raise CentaurError(f"{where}: num_outputs must be at least 1, got {meta['num_outputs']}.")
    if meta["task"] != "regression":
        classes = meta.get("classes")
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise CentaurError(f"{where}: field 'classes' should be a list of class names, got {classes!r}.")
        if len(classes) != meta["num_outputs"]:
            raise CentaurError(f"{where} lists {len(classes)} classes but num_outputs is "
                               f"{meta['num_outputs']}; the file is damaged.")
    prep = meta["preprocessing"]
    kind = meta.get("kind", "image")
    if kind == "tabular":
        for key in ("model", "processor"):
            if not isinstance(prep.get(key), dict):
                raise CentaurError(f"{where} describes a table model without its preprocessing.{key} "
                                   "section; the file is damaged.")
        return path, meta
    if kind != "image":
        raise CentaurError(f"{where}: unknown kind of model {kind!r}; expected 'image' or 'tabular'.")
    for key in ("mean", "std"):
        value = prep.get(key)
        if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, (int, float)) and
                                                                    not isinstance(v, bool) for v in value)):
            raise CentaurError(f"{where}: preprocessing.{key} should be a list of 3 numbers (one per colour "
                               f"channel), got {value!r}.")
    if any(v <= 0 for v in prep["std"]):
        raise CentaurError(f"{where}: preprocessing.std must be positive, got {prep['std']}.")
    head = prep.get("head", "fastai")  # absent in model directories written before the linear head
    if head not in HEADS:
        raise CentaurError(f"{where}: unknown head kind preprocessing.head = {head!r}; expected one of "
                           f"{', '.join(map(repr, HEADS))}.{did_you_mean(head, HEADS)} Was the model saved by "
                           "a newer centaur?")
    hidden, dropout = prep.get("hidden", 512), prep.get("dropout", 0.5)
    if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden < 1:
        raise CentaurError(f"{where}: preprocessing.hidden (the head's width) should be a positive integer, "
                           f"got {hidden!r}.")
    if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout < 1:
        raise CentaurError(f"{where}: preprocessing.dropout should be a number from 0 to 1, got {dropout!r}.")
    return path, meta


def load_model_dir(path):
    """(model in eval mode, meta) from a model directory.

    >>> model, meta = load_model_dir("models/emoji")  # doctest: +SKIP
    """
    path, meta = read_meta(path)
    prep = meta["preprocessing"]
    try:
        if meta.get("kind", "image") == "tabular":
            from .tabular import TabularModel
            model = TabularModel.from_config(prep["model"])
        else:
            from .classifier import create_classifier
            model, _ = create_classifier(meta["arch"], meta["num_outputs"], pretrained=False,
                                         hidden=prep.get("hidden", 512), dropout=prep.get("dropout", 0.5),
                                         head=prep.get("head", "fastai"))
    except CentaurError as e:
        raise CentaurError(f"{str(path / 'model.json')!r} names an architecture this installation cannot "
                           f"build: {e}") from e
    weights = path / "model.safetensors"
    try:
        if meta.get("weights_sha256") and _sha256(weights) != meta["weights_sha256"]:  # older models have none
            raise CentaurError(f"{str(weights)!r} is not the file model.json was written with (its SHA-256 differs): "
                               "it was damaged or replaced. Copy the model directory again, or retrain it.")
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CentaurError(f"{str(path / 'model.safetensors')!r} is damaged or not a safetensors file ({e}).") from e
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = "; ".join(f"{name}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                           for name, keys in (("missing", missing), ("unexpected", unexpected),
                                              ("wrong shape", wrong)) if keys)
        raise CentaurError(f"the weights in {str(path)!r} do not fit the architecture {meta['arch']!r} "
                           f"with {meta['num_outputs']} outputs ({detail}).")
    model.load_state_dict(state)
    return model.eval(), meta
