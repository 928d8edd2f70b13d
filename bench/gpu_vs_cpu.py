"""Training images/s on a CUDA GPU against this machine's CPU, at the spine's benchmark settings.

    .venv/bin/python bench/gpu_vs_cpu.py --md docs/benchmarks_gpu.md

data/emoji, lite0 pretrained, 128 px, batch 32, seed 42, body unfrozen, fit_one_cycle over
--epochs epochs; images/s of each epoch's training part (validation excluded), the first epoch
dropped as warm-up, median of the rest. Variants: CPU float32; GPU float32; GPU with bfloat16
autocast (--bf16); GPU with torch.compile (--compile); GPU with both. Each variant also checks
that training did something (the last epoch's validation accuracy) and that the exported model
predicts on the CPU, so the same run is the GPU path's end-to-end check. Without CUDA it
measures the CPU alone and says so: it is written to be run, as one short script, on a machine
that has a GPU.
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(variant, args):
    """One training run; returns images/s per epoch, the last accuracy, and whether the export predicts."""
    import torch
    from centaur.core.seed import set_seed
    from centaur.inference import Predictor
    from centaur.train.accelerate import CompileModel, MixedPrecision
    from centaur.train.callbacks import Callback
    from centaur.train.export import export
    from centaur.train.metrics import accuracy
    from centaur.vision.learner import vision_learner
    from centaur.vision.recipes import image_datablock

    set_seed(42)
    dblock, _ = image_datablock(args.data, size=args.size, seed=42)
    dls = dblock.dataloaders(args.data, bs=args.bs, seed=42)
    learn = vision_learner(dls, "lite0", progress=False, metrics=[accuracy], device=variant["device"])
    learn.unfreeze()

    class Clock(Callback):
        def before_fit(self):
            self.rates = []

        def before_train(self):
            if self.learn.device.type == "cuda":
                torch.cuda.synchronize()
            self.t0, self.n = time.perf_counter(), 0

        def after_batch(self):
            if self.learn.training:
                self.n += len(self.learn.yb)

        def after_train(self):
            if self.learn.device.type == "cuda":
                torch.cuda.synchronize()
            self.rates.append(self.n / (time.perf_counter() - self.t0))

    clock = Clock()
    cbs = [clock] + ([MixedPrecision()] if variant["bf16"] else []) + ([CompileModel()] if variant["compile"] else [])
    t0 = time.perf_counter()
    learn.fit_one_cycle(args.epochs, 1e-3, cbs=cbs)
    wall = time.perf_counter() - t0
    valid = learn.validate()
    with tempfile.TemporaryDirectory() as folder:
        export(learn, folder)
        first = sorted(Path(args.data).rglob("*.png"))[0]
        predicted = Predictor(folder).predict(first)["label"]  # the model trained on the GPU, predicting on the CPU
    return dict(variant=variant["name"], rates=clock.rates, images_per_s=statistics.median(clock.rates[1:] or clock.rates),
                accuracy=valid["accuracy"], wall_s=wall, predicted=predicted)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ROOT / "data" / "emoji"))
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--bs", type=int, default=32)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "gpu_vs_cpu.json")
    p.add_argument("--md", type=Path, default=None)
    args = p.parse_args(argv)

    import torch
    variants = [dict(name="CPU float32", device="cpu", bf16=False, compile=False)]
    gpu = torch.cuda.is_available()
    if gpu:
        variants += [dict(name="GPU float32", device="cuda", bf16=False, compile=False),
                     dict(name="GPU bf16 autocast", device="cuda", bf16=True, compile=False),
                     dict(name="GPU torch.compile", device="cuda", bf16=False, compile=True),
                     dict(name="GPU bf16 + compile", device="cuda", bf16=True, compile=True)]
    results = []
    for variant in variants:
        print(f"[gpu_vs_cpu] {variant['name']}", file=sys.stderr, flush=True)
        results.append(run(variant, args))
        print(f"[gpu_vs_cpu]   {results[-1]['images_per_s']:.1f} images/s, accuracy {results[-1]['accuracy']:.3f}",
              file=sys.stderr, flush=True)
    machine = dict(gpu=torch.cuda.get_device_name(0) if gpu else None, cpu_threads=torch.get_num_threads(),
                   torch=torch.__version__)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dict(machine=machine, settings=vars(args) | {"out": str(args.out), "md": str(args.md)},
                                        results=results), indent=2))
    if args.md:
        cpu = results[0]["images_per_s"]
        lines = ["# Training on a GPU against the CPU", "",
                 f"Written by `bench/gpu_vs_cpu.py`: data/emoji, lite0 pretrained, {args.size} px, batch {args.bs}, "
                 f"body unfrozen, {args.epochs} epochs of fit_one_cycle, the first dropped as warm-up. "
                 f"GPU: {machine['gpu'] or 'none on this machine'}; CPU threads: {machine['cpu_threads']}; "
                 f"torch {machine['torch']}.", "",
                 "| variant | images/s | x CPU | validation accuracy | exported model predicts on the CPU |",
                 "|---|---|---|---|---|"]
        for r in results:
            lines.append(f"| {r['variant']} | {r['images_per_s']:.1f} | {r['images_per_s'] / cpu:.2f} | "
                         f"{r['accuracy']:.3f} | {r['predicted']} |")
        if not gpu:
            lines += ["", "No CUDA GPU here: only the CPU was measured. Run the same command where there is one."]
        lines += ["", "## Reproduce", "", "```sh", ".venv/bin/python bench/gpu_vs_cpu.py --md docs/benchmarks_gpu.md", "```", ""]
        args.md.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
