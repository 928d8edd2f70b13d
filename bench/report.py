"""Markdown report of the centaur-vs-fastai benchmark (standard library only).

    .venv/bin/python bench/report.py [--out-dir bench/out] [--md docs/benchmarks.md]

Reads machine.json, fastai_emoji_white.json, centaur_emoji.json and centaur_emoji_scratch.json from
--out-dir (any of them may be missing: its cells then read "not run"), prints the tables and writes
--md (give --md '' to only print). The "## Notes" section of an existing --md file is kept as it is.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

NOT_RUN = "not run"
NOTES_HEADING = "## Notes"
NOTES_PLACEHOLDER = "<!-- notes -->"


def load(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def get(d, key):
    v = d.get(key) if d else None
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def num(v, digits=1, unit=""):
    if v is None:
        return NOT_RUN
    return f"{v:,.{digits}f}{unit}"


def pct(v):
    return NOT_RUN if v is None else f"{100 * v:.1f}%"


def div(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def xr(v, digits=2, target=None):
    """A ratio as '1.23x'; one more digit where rounding would hide which side of target it lies on."""
    if v is None:
        return "—"
    if target is not None and round(v, digits) == target and v != target:
        digits += 1
    return f"{v:.{digits}f}x"


def met(ok):
    return NOT_RUN if ok is None else ("yes" if ok else "no")


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def param(key, *runs, default=None):
    for r in runs:
        if r and r.get(key) is not None:
            return r[key]
    return default


def loadavgs(run):
    """All 1-minute load averages a run recorded (start, end, and each phase's end)."""
    vals = [run.get("loadavg_1min_start"), run.get("loadavg_1min_end")]
    for ph in (run.get("phases") or {}).values():
        if isinstance(ph, dict):
            vals.append(ph.get("loadavg_1min_end"))
    return [v for v in vals if isinstance(v, (int, float))]


def when(path):
    try:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(path)))
    except OSError:
        return NOT_RUN


# ---------------------------------------------------------------------------------------------- sections

def main_table(c, f):
    rows = []

    def higher_is_better(name, key, target, unit_digits=1):
        cv, fv = get(c, key), get(f, key)
        r = div(cv, fv)
        rows.append([name, num(cv, unit_digits), num(fv, unit_digits), xr(r, target=target), f"≥ {target:g}x fastai",
                     met(None if r is None else r >= target)])

    higher_is_better("Training images/s, body unfrozen", "unfrozen_images_per_s", 1.5)
    higher_is_better("Training images/s, body frozen", "frozen_images_per_s", 5)

    epochs = param("epochs", c, f, default=3)
    cv, fv = get(c, "fine_tune_seconds"), get(f, "fine_tune_seconds")
    r = div(cv, fv)
    rows.append([f"fine_tune({epochs}) wall time, s", num(cv), num(fv), xr(r, target=0.6), "≤ 0.6x fastai",
                 met(None if r is None else r <= 0.6)])

    cv, fv = get(c, "fine_tune_accuracy"), get(f, "fine_tune_accuracy")
    r = div(cv, fv)
    diff = "" if cv is None or fv is None else f" ({100 * (cv - fv):+.1f} pts)"
    rows.append([f"fine_tune({epochs}) final accuracy", pct(cv), pct(fv), xr(r) + diff, "≥ fastai",
                 met(None if r is None else cv >= fv)])

    cv, fv = get(c, "fine_tune_valid_loss"), get(f, "fine_tune_valid_loss")
    rows.append([f"fine_tune({epochs}) final valid loss (for reference)", num(cv, 3), num(fv, 3),
                 xr(div(cv, fv)), "—", "—"])

    def own_ratio(run, key, bare_key, digits, unit, bare_word, target):
        v, bare = get(run, key), get(run, bare_key)
        r = div(v, bare)
        if v is None:
            return NOT_RUN, None
        return f"{num(v, digits)}{unit} vs {num(bare, digits)}{unit} {bare_word} = {xr(r, target=target)}", r

    ccell, cr = own_ratio(c, "predict_one_ms", "bare_forward_one_ms", 2, " ms", "bare", 1.3)
    fcell, _ = own_ratio(f, "predict_one_ms", "bare_forward_one_ms", 2, " ms", "bare", 1.3)
    rows.append(["One-image predict latency vs bare forward (each tool's own)", ccell, fcell, xr(cr, target=1.3),
                 "≤ 1.3x bare forward", met(None if cr is None else cr <= 1.3)])

    ccell, cr = own_ratio(c, "batched_images_per_s", "bare_forward_batched_images_per_s", 1, " img/s", "bare", 0.9)
    fcell, _ = own_ratio(f, "batched_images_per_s", "bare_forward_batched_images_per_s", 1, " img/s", "bare", 0.9)
    rows.append(["Batched prediction images/s vs bare batched forward (each tool's own)", ccell, fcell, xr(cr, target=0.9),
                 "≥ 0.9x bare forward", met(None if cr is None else cr >= 0.9)])

    cv, fv = get(c, "peak_rss_mb"), get(f, "peak_rss_mb")
    r = div(cv, fv)
    rows.append(["Peak training memory (max RSS over phases), MB", num(cv, 0), num(fv, 0), xr(r, target=1.0),
                 "≤ fastai", met(None if r is None else cv <= fv)])
    return table(["figure", "centaur", "fastai", "ratio", "target", "met?"], rows)


def reference_table(c, f):
    """Absolute figures behind the ratios above."""
    rows = []
    for name, key, digits in [("One-image predict, ms (median)", "predict_one_ms", 2),
                              ("Bare forward, 1 image, ms (median)", "bare_forward_one_ms", 2),
                              ("Batched prediction, images/s", "batched_images_per_s", 1),
                              ("Bare forward, batch, images/s", "bare_forward_batched_images_per_s", 1),
                              ("Peak RSS, frozen phase, MB", "peak_rss_mb_frozen", 0),
                              ("Peak RSS, unfrozen phase, MB", "peak_rss_mb_unfrozen", 0),
                              ("Peak RSS, fine_tune phase, MB", "peak_rss_mb_fine_tune", 0)]:
        cv, fv = get(c, key), get(f, key)
        rows.append([name, num(cv, digits), num(fv, digits), xr(div(cv, fv))])
    for ph in ("frozen", "unfrozen", "finetune"):
        cells = []
        for run in (c, f):
            p = ((run or {}).get("phases") or {}).get(ph) or {}
            u = div(get(p, "phase_cpu_seconds"), get(p, "phase_wall_seconds"))
            cells.append(NOT_RUN if u is None else f"{u:.2f}")
        rows.append([f"CPU seconds per wall second, {ph} phase", *cells, "—"])
    return table(["figure", "centaur", "fastai", "centaur/fastai"], rows)


def scratch_table(c, s, f):
    epochs = param("epochs", c, s, f, default=3)
    rows = []
    for name, key, fmt in [("final accuracy", "fine_tune_accuracy", pct),
                           ("final valid loss", "fine_tune_valid_loss", lambda v: num(v, 3)),
                           ("wall time, s", "fine_tune_seconds", lambda v: num(v, 1))]:
        rows.append([name, fmt(get(c, key)), fmt(get(s, key)), fmt(get(f, key))])
    head = ["figure", f"centaur pretrained: fine_tune({epochs}) = 1 frozen + {epochs} unfrozen",
            f"centaur from scratch: random weights, {epochs + 1} epochs all unfrozen",
            f"fastai pretrained: fine_tune({epochs})"]
    return table(head, rows)


def machine_section(m, c, f):
    if not m:
        return f"- Machine figures: {NOT_RUN} (bench/machine.py)"
    fwd = get(m, "model_gflops_per_image_forward")
    lines = [
        f"- CPU: {m.get('cpu_model', '?')}, {m.get('cores', '?')} cores; benchmark threads: {m.get('threads', '?')}",
        f"- Measured float32 matmul ({m.get('matmul_n', 2048)}x{m.get('matmul_n', 2048)}, median of "
        f"{len(m.get('matmul_seconds') or []) or '?'}): {num(get(m, 'matmul_gflops'))} GFLOP/s",
        f"- Model: {m.get('model', 'lite0')}: {num(fwd, 3)} GFLOPs per image forward, "
        f"{num(get(m, 'model_gflops_per_image_training'), 3)} GFLOPs per image training (3x forward), "
        f"{num(get(m, 'model_params'), 0)} parameters",
        f"- Ceilings at matmul speed: forward {num(get(m, 'ceiling_forward_images_per_s'), 0)} images/s, "
        f"training {num(get(m, 'ceiling_training_images_per_s'), 0)} images/s "
        "(convolutions, depthwise above all, run below matmul speed: real figures stay under these)",
    ]
    tr, fw = get(m, "ceiling_training_images_per_s"), get(m, "ceiling_forward_images_per_s")
    parts = []
    for tool, run in (("centaur", c), ("fastai", f)):
        u = div(get(run, "unfrozen_images_per_s"), tr)
        b = div(get(run, "bare_forward_batched_images_per_s"), fw)
        if u is not None or b is not None:
            parts.append(f"{tool} unfrozen training {pct(u)} of the training ceiling, "
                         f"bare batched forward {pct(b)} of the forward ceiling")
    if parts:
        lines.append("- Share of the ceiling reached: " + "; ".join(parts))
    return "\n".join(lines)


def versions_section(m, c, f, s):
    lines = []
    for name, run in (("centaur venv (.venv)", m or c or s), ("fastai venv (.bench-venv)", f)):
        v = (run or {}).get("versions")
        if v:
            lines.append(f"- {name}: " + ", ".join(f"{k} {val}" for k, val in v.items()))
        else:
            lines.append(f"- {name}: {NOT_RUN}")
    return "\n".join(lines)


def runs_table(entries, threads):
    rows = []
    for name, path, run in entries:
        if not run:
            rows.append([name, f"`{path}`", NOT_RUN, "—", "—", "—", "—"])
            continue
        la = loadavgs(run)
        start = run.get("loadavg_1min_start")
        noisy = max(la) > threads + 0.5 if la else None
        wall = get(run, "total_wall_seconds")
        rows.append([name, f"`{path}`", when(path), num(start, 2), num(max(la) if la else None, 2),
                     num(wall, 0) if wall is not None else "—",
                     "—" if noisy is None else ("**noisy**" if noisy else "no")])
    return table(["run", "file", "finished", "load avg at start", "max load avg (start/phase ends/end)",
                  "wall, s", f"noisy (load > {threads + 0.5:g})?"], rows)


def commands(p):
    size, bs, th, ep, seed = p["size"], p["bs"], p["threads"], p["epochs"], p["seed"]
    common = f"--size {size} --bs {bs} --threads {th} --epochs {ep} --seed {seed}"
    valid = f"bench/out/valid_emoji_seed{seed}.txt"
    return "\n".join([
        "```sh",
        "make bench        # = bash bench/run.sh: all of the below, one after the other",
        "",
        "bash bench/setup_fastai.sh   # .bench-venv: fastai 2.8.12, same torch",
        f".bench-venv/bin/python bench/fastai_side.py --data data/emoji --write-valid-list {valid} --seed {seed}",
        f".venv/bin/python bench/machine.py --threads {th} --size {size} --out bench/out/machine.json",
        f".bench-venv/bin/python bench/fastai_side.py --data data/emoji --valid-list {valid} {common} "
        "--alpha white --out bench/out/fastai_emoji_white.json",
        f".venv/bin/python bench/centaur_side.py --data data/emoji --valid-list {valid} {common} "
        "--out bench/out/centaur_emoji.json",
        f".venv/bin/python bench/centaur_side.py --data data/emoji --valid-list {valid} {common} "
        "--scratch --phases finetune --out bench/out/centaur_emoji_scratch.json",
        ".venv/bin/python bench/report.py",
        "```",
    ])


def intro(p, f):
    n = (f or {}).get("n_train", 0) + (f or {}).get("n_valid", 0) or 373
    n_valid = (f or {}).get("n_valid", 75)
    n_classes = (f or {}).get("n_classes", 6)
    workers = (f or {}).get("num_workers", 2)
    return (
        f"centaur and fastai {((f or {}).get('versions') or {}).get('fastai', '2.8.12')} train and run the same model "
        f"on the same data, one after the other on the same machine: `data/emoji` ({n} images, {n_classes} classes; "
        f"the same seeded {n - n_valid}/{n_valid} train/validation split, transparent pixels composited on white on "
        f"both sides), timm `tf_efficientnet_lite0` with the same EfficientNet-Lite0 ImageNet weights and a "
        f"fastai-style head, {p['size']}x{p['size']} px, batch {p['bs']}, {p['threads']} torch threads, seed "
        f"{p['seed']}, each library's default augmentation and data loading (fastai: {workers} worker processes; "
        f"centaur: in the main process). One run of each, side by side. Training speed is images per second of one "
        f"`fit_one_cycle(1)` epoch's training part (validation excluded) on a fresh learner, with the body frozen "
        f"(fastai's freeze keeps BatchNorm trainable) and with it unfrozen; `fine_tune({p['epochs']})` "
        f"(1 frozen + {p['epochs']} unfrozen epochs) is timed wall-clock including validation, and its final "
        f"accuracy and loss are on the {n_valid} validation images. Prediction latency is the median of repeated "
        f"one-image calls from a file (centaur `Predictor.predict`, fastai `learn.predict`), set beside each tool's "
        f"bare model forward on a 1x3x{p['size']}x{p['size']} tensor; batched prediction runs all validation files "
        f"(centaur `predict_many`, fastai `get_preds`, median of the repeats after a warm-up) beside the bare forward "
        f"(centaur: the same validation images, decoded and normalized beforehand, in the same batches of "
        f"{p['bs']}, through the model as loaded without BatchNorm folding; fastai: a {p['bs']}-image tensor). "
        f"Timings are medians wherever a measure is repeated. Each phase (frozen, "
        f"unfrozen, fine_tune + prediction) runs in its own process, so its peak RSS (`ru_maxrss`) is its own. "
        f"A 1-minute load average above threads + 0.5 during a run marks it noisy: on a small machine any other "
        f"busy process slows every figure."
    )


def build_report(out_dir, md_path):
    paths = {k: out_dir / f"{name}.json" for k, name in
             (("machine", "machine"), ("fastai", "fastai_emoji_white"), ("centaur", "centaur_emoji"),
              ("scratch", "centaur_emoji_scratch"))}
    m, f, c, s = (load(paths[k]) for k in ("machine", "fastai", "centaur", "scratch"))
    p = {k: param(k, c, f, s, m, default=d) for k, d in
         (("size", 128), ("bs", 32), ("threads", 2), ("epochs", 3), ("seed", 42))}

    def rel(path):
        try:
            return str(path.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(path)

    body = "\n\n".join([
        "## Results",
        main_table(c, f),
        "### Figures behind the ratios",
        reference_table(c, f),
        f"### Fine-tuned vs from scratch (same split, same {p['epochs'] + 1} epochs)",
        scratch_table(c, s, f),
        "## Machine",
        machine_section(m, c, f),
        "## Versions",
        versions_section(m, c, f, s),
        "## Runs and load",
        runs_table([("machine", rel(paths["machine"]), m), ("fastai", rel(paths["fastai"]), f),
                    ("centaur", rel(paths["centaur"]), c), ("centaur from scratch", rel(paths["scratch"]), s)],
                   p["threads"]),
        "## Reproduce",
        commands(p),
    ])
    notes = NOTES_PLACEHOLDER
    if md_path and md_path.exists():
        old = md_path.read_text()
        i = old.find("\n" + NOTES_HEADING + "\n")
        if i >= 0:
            notes = old[i + len(NOTES_HEADING) + 2:].strip("\n") or NOTES_PLACEHOLDER
    doc = "\n\n".join(["# Benchmarks: centaur vs fastai", intro(p, f), body, NOTES_HEADING, notes]) + "\n"
    return body, doc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", type=Path, default=Path("bench/out"))
    ap.add_argument("--md", default="docs/benchmarks.md", help="markdown file to write ('' to only print)")
    args = ap.parse_args(argv)
    md_path = Path(args.md) if args.md else None
    body, doc = build_report(args.out_dir, md_path)
    if md_path:  # written before printing, so a closed stdout (| head) cannot stop it
        md_path.parent.mkdir(parents=True, exist_ok=True)
        md_path.write_text(doc)
    print(body)
    if md_path:
        print(f"\nwrote {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
