"""Machine figures for the benchmark report: measured matmul speed, the model's FLOPs, the roofline ceilings.

    .venv/bin/python bench/machine.py --threads 2 --size 128 --out bench/out/machine.json

- matmul_gflops: median over several float32 2048x2048 @ 2048x2048 products (2*n^3 FLOPs each)
  with torch.set_num_threads(threads): what this CPU actually delivers to dense float32 math.
- model_gflops_per_image_forward: FLOPs of one eval-mode forward of centaur's lite0 classifier
  (timm tf_efficientnet_lite0 body + fastai-style head, 6 classes) at size x size, counted by
  torch.utils.flop_counter.FlopCounterMode (a multiply-add counts 2). Training is taken as 3x the
  forward (forward + backward for activations + backward for weights).
- ceilings: matmul_gflops / GFLOPs per image, for forward (inference) and training. Convolutions,
  above all depthwise ones, run well below matmul speed, so real images/s stay far below these.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def matmul_gflops(n=2048, repeats=7, warmup=2):
    import torch
    a = torch.randn(n, n, dtype=torch.float32)
    b = torch.randn(n, n, dtype=torch.float32)
    c = torch.empty(n, n, dtype=torch.float32)
    for _ in range(warmup):
        torch.mm(a, b, out=c)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b, out=c)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return 2 * n ** 3 / med / 1e9, times


def model_flops(size, num_classes=6):
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from centaur.models.classifier import create_classifier
    model, _ = create_classifier("lite0", num_classes, pretrained=False)
    model.eval()
    x = torch.randn(1, 3, size, size)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(x)
    by_op = {str(k): v for k, v in counter.get_flop_counts().get("Global", {}).items()}
    n_params = sum(p.numel() for p in model.parameters())
    return counter.get_total_flops(), by_op, n_params


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--classes", type=int, default=6)
    p.add_argument("--n", type=int, default=2048, help="matrix side")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)

    import timm
    import torch
    import centaur
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    gflops, times = matmul_gflops(args.n, args.repeats)
    flops, by_op, n_params = model_flops(args.size, args.classes)
    fwd = flops / 1e9
    train = 3 * fwd
    out = {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "threads": args.threads,
        "torch_num_threads": torch.get_num_threads(),
        "matmul_n": args.n,
        "matmul_seconds": times,
        "matmul_gflops": gflops,
        "size": args.size,
        "num_classes": args.classes,
        "model": "centaur create_classifier('lite0', %d, pretrained=False), eval, %dx%d" % (
            args.classes, args.size, args.size),
        "model_params": n_params,
        "model_flops_by_op": by_op,
        "model_gflops_per_image_forward": fwd,
        "model_gflops_per_image_training": train,
        "training_flops_note": "training taken as 3x forward",
        "ceiling_forward_images_per_s": gflops / fwd,
        "ceiling_training_images_per_s": gflops / train,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__,
                     "centaur": centaur.__version__},
        "torch_parallel_info": torch.__config__.parallel_info().splitlines()[:6],
        "loadavg_1min_start": load_start,
        "loadavg_1min_end": os.getloadavg()[0],
    }
    text = json.dumps(out, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    sys.exit(main())
