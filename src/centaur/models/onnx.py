"""ONNX export of a model directory, and an onnxruntime session that stands in for the model.

The exported graph takes normalized float images (B, 3, H, W) with any batch size and gives
the same outputs (logits) as the PyTorch model; preprocessing stays in model.json.
"""
from pathlib import Path

import numpy as np
import torch

from ..core.errors import CentaurError
from .model_dir import load_model_dir

ONNX_FILE = "model.onnx"
WEIGHTS_KEY = "centaur_weights_sha256"  # in the ONNX file's metadata: the weights it was exported from


def export_onnx(model_dir, path=None, opset=18):
    """Write model.onnx into the model directory (or `path`); returns the path written.

    >>> export_onnx("models/emoji")  # doctest: +SKIP
    PosixPath('models/emoji/model.onnx')
    """
    model, meta = load_model_dir(model_dir)
    if meta.get("kind") == "tabular":
        raise CentaurError("ONNX export is for image models; a table model predicts fast enough with PyTorch "
                           "(see docs/benchmarks_tabular.md).")
    size = _input_size(meta)
    path = Path(path) if path else Path(model_dir) / ONNX_FILE
    example = torch.zeros(2, 3, *size)
    tmp = path.with_name(path.name + ".tmp")
    batch = torch.export.Dim("batch", min=1, max=4096)
    torch.onnx.export(model.eval(), (example,), str(tmp), input_names=["images"], output_names=["outputs"],
                      dynamic_shapes=({0: batch},), dynamo=True, opset_version=opset, verbose=False,
                      external_data=False)  # one file: the weights inside, not in a side file beside a temporary name
    if meta.get("weights_sha256"):  # so a model retrained into the folder is never served by a stale graph
        import onnx
        graph = onnx.load(str(tmp))
        onnx.helper.set_model_props(graph, {WEIGHTS_KEY: meta["weights_sha256"]})
        onnx.save(graph, str(tmp))
    tmp.replace(path)
    return path


def _input_size(meta):
    for tfm in meta["preprocessing"].get("item_tfms", []):
        if "size" in tfm:
            size = tfm["size"]
            return (size, size) if isinstance(size, int) else tuple(size)
    return (224, 224)


class OnnxModel:
    """Calls an onnxruntime session like a PyTorch module: float tensor in, tensor out."""

    def __init__(self, path, threads=None, weights_sha256=None):
        """weights_sha256: the model directory's weights (model.json); a file exported from other
        weights (the model was retrained into its folder since) is refused."""
        import onnxruntime as ort
        path = Path(path)
        if not path.is_file():
            raise CentaurError(f"{str(path)!r} does not exist; write it first with `centaur export "
                               f"{path.parent} --onnx`.")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        exported_from = self.session.get_modelmeta().custom_metadata_map.get(WEIGHTS_KEY)
        if weights_sha256 and exported_from != weights_sha256:
            why = ("was exported from other weights: the model was retrained since" if exported_from else
                   "does not say which weights it was exported from")
            raise CentaurError(f"{str(path)!r} {why}; export it again with `centaur export {path.parent} --onnx`.")
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x):  # (B, 3, H, W) float -> (B, K)
        x = np.ascontiguousarray(x.detach().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input_name: x})[0])
