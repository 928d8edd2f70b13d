"""The report: one self-contained HTML file (images embedded) with everything centaur can say
about a model and its data. `centaur report MODEL DATA [--groups groups.csv]`."""
import base64
import datetime
import io
from html import escape
from pathlib import Path

from ..core.log import warn
from ..core.words import plural
from .card import datasheet, model_card
from .classification import ClassificationInterpretation
from .evaluation import evaluate_classification
from .plots import reliability_png

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;color:#1d2430;max-width:1100px;margin:0 auto;padding:16px}
h1{font-size:1.5rem}h2{border-bottom:1px solid #d8dde4;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d8dde4;padding:4px 8px;text-align:left}
th{background:#f1f3f6}.warn{color:#8a4b00;background:#fff4e0;padding:8px;border-radius:6px}
.todo{background:#fff8c5;padding:6px;border-left:4px solid #d4a72c}.small{color:#5b6675;font-size:.85rem}
img.thumb{width:72px;height:72px;object-fit:contain;border:1px solid #d8dde4}img.plot{max-width:100%}
nav a{margin-right:12px}
"""


class Report:
    """Sections of HTML with a title each; save() writes one file, notebooks show it inline.

    >>> build_report("models/emoji", "data/emoji").save("report.html")  # doctest: +SKIP
    """

    def __init__(self, title, sections, data=None):
        self.title, self.sections, self.data = title, sections, data or {}

    def to_html(self):
        nav = "".join(f'<a href="#s{i}">{escape(t)}</a>' for i, (t, _) in enumerate(self.sections))
        body = "".join(f'<h2 id="s{i}">{escape(t)}</h2>{html}' for i, (t, html) in enumerate(self.sections))
        return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
                f"content='width=device-width, initial-scale=1'><title>{escape(self.title)}</title>"
                f"<style>{STYLE}</style></head><body><h1>{escape(self.title)}</h1><nav>{nav}</nav>{body}</body></html>")

    def save(self, path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_html(), encoding="utf-8")
        tmp.replace(path)
        return path

    def _repr_html_(self):
        return "".join(f"<h3>{escape(t)}</h3>{html}" for t, html in self.sections)


def _img(png, cls="plot", alt=""):
    return f'<img class="{cls}" alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _thumb(path, size=96):
    from ..core.images import open_image
    try:
        img = open_image(path)
    except Exception:
        return "<span class='small'>(unreadable)</span>"
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return _img(buf.getvalue(), "thumb", Path(path).name)


def _ci(m, pct=True):
    f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.3f}")
    return f"{f(m['value'])} <span class='small'>(95% CI {f(m['ci95'][0])} to {f(m['ci95'][1])})</span>"


def _table(header, rows):
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def build_report(model_dir, data=None, groups=None, checks=True, top_k=9):
    """Evaluate the model on its recorded validation files and check its data; returns a Report.

    data: the data folder (default: where the model was trained); groups: a CSV of file and
    group columns for the subgroup audit; checks: duplicates and label errors (embeds every
    image once). A table model gets build_table_report (interpret/tabular.py): data is then
    its table, and groups may name a column of it.
    """
    from ..inference import Predictor
    from .data_checks import NEAR_DUPLICATE_PIXELS, check_data
    from .predictions import read_split
    from ..models.model_dir import read_meta
    if read_meta(model_dir)[1].get("kind") == "tabular":
        from .tabular import build_table_report
        return build_table_report(model_dir, data, groups=groups, top_k=top_k)
    predictor = Predictor(model_dir)
    root, split = read_split(model_dir, data)
    interp = ClassificationInterpretation.from_model_dir(model_dir, root, predictor)
    evaluation = evaluate_classification(interp.probs, interp.targets, interp.classes, interp.train_targets)
    meta, prov = predictor.meta, predictor.meta.get("provenance", {})
    sections, warnings = [], []
    if interp.unreadable:
        n = len(interp.unreadable)
        warnings.append(f"{plural(n, 'validation file')} could not be read and {'is' if n == 1 else 'are'} left out: "
                        + ", ".join(escape(f) for f in list(interp.unreadable)[:5]))

    # evaluation
    rows = [["accuracy", _ci(evaluation["accuracy"])], ["error rate", _ci(evaluation["error_rate"])],
            ["F1 (macro)", _ci(evaluation["f1_macro"], pct=False)],
            ["baseline: always '" + escape(evaluation["baseline"]["class"]) + "'",
             f"{100 * evaluation['baseline']['accuracy']:.1f}%"],
            ["expected calibration error", f"{evaluation['calibration']['ece']:.3f}"]]
    if "auc" in evaluation:
        rows.append(["AUC (not accuracy)", _ci(evaluation["auc"], pct=False)])
        rows += [[f"precision in the top {k}", f"{100 * v:.1f}%"] for k, v in evaluation["precision_at_top"].items()]
    bootstrapped = "F1 and AUC" if "auc" in evaluation else "F1"
    sections.append(("Evaluation", f"<p>{plural(evaluation['n'], 'validation image')} "
                     f"({escape(str(prov.get('split')))} split). 95% intervals: Wilson score intervals for accuracy "
                     f"and error rate; for {bootstrapped}, percentile bootstraps over the validation images (1,000 "
                     "resamples).</p>"
                     + _table(["metric", "value"], rows) + _img(reliability_png(evaluation["calibration"]))))

    # confusion, per class, top losses with heatmaps
    per_class = [[escape(r["class"]), f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", r["support"]]
                 for r in interp.per_class()]
    confused = [[escape(a), escape(p), n] for a, p, n in interp.most_confused()[:10]]
    sections.append(("Confusion", _img(interp.plot_confusion()) + "<h3>Most confused</h3>"
                     + (_table(["actual", "predicted", "count"], confused) if confused else "<p>None.</p>")
                     + "<h3>Per class</h3>" + _table(["class", "precision", "recall", "F1", "support"], per_class)))
    top = interp.top_losses(top_k)
    sections.append(("Top losses", "<p>The validation images the model got most wrong, with a Grad-CAM heatmap of "
                     "what it looked at for its prediction; each titled with its actual class, the prediction, "
                     "the loss and the probability given to the prediction.</p>"
                     + _img(interp.plot_top_losses(top_k))))

    # subgroups
    audit = None
    if groups is not None:
        from .subgroups import audit as run_audit, read_groups
        table, _ = read_groups(groups, interp.items, others=[f for f, _ in split["train"]])
        audit = run_audit((interp.preds == interp.targets).numpy(), table)
        rows = [[escape(" x ".join(r["columns"])), escape(" & ".join(r["values"])), r["n"],
                 f"{100 * r['accuracy']:.1f}%", f"{100 * r['ci95'][0]:.1f}% to {100 * r['ci95'][1]:.1f}%",
                 "<strong>too small to judge</strong>" if r["too_small"] else ""] for r in audit["rows"]]
        gaps = "".join(f"<p class='warn'>Largest gap in {escape(' x '.join(g['columns']))}: "
                       f"{100 * g['gap']:.1f} points between {escape(' & '.join(g['best']))} and "
                       f"{escape(' & '.join(g['worst']))} (95% CI {100 * g['ci95'][0]:.1f} to "
                       f"{100 * g['ci95'][1]:.1f}).</p>" for g in audit["gaps"][:1])
        sections.append(("Subgroups", gaps + f"<p>Groups with fewer than {audit['min_size']} validation images are "
                         "marked, not hidden: their intervals are too wide to judge. A group's 95% interval is "
                         "Wilson's score interval of its accuracy; a gap's is Newcombe's (hybrid score, 1998), built "
                         "from the two groups' Wilson intervals.</p>"
                         + _table(["grouping", "group", "n", "accuracy", "95% CI", ""], rows)))
        if prov.get("split") == "random":
            warnings.append("The validation set was drawn at random, but the data has groups: images of one group "
                            "(one animal, one patient, one camera) on both sides flatter the score. Split by group: move "
                            "each group's images, whole, into train/ or valid/ inside the data folder (each with "
                            "one folder per class, as data/train/cat/ and data/valid/cat/) and train again; "
                            "centaur train then validates on valid/ instead of a random draw.")

    # data checks
    found = None
    if checks:
        found = check_data(predictor, root, split)
        dups = [[_thumb(root / d["a"]), _thumb(root / d["b"]), escape(d["a"]), escape(d["b"]), d["kind"],
                 d["similarity"], "<strong>yes: leakage</strong>" if d["across_split"] else "no"]
                for d in found["duplicates"][:50]]
        issues = [[_thumb(root / i["file"]), escape(i["file"]), escape(i["label"]), escape(i["suggested"]),
                   i["side"], i["p_label"], i["p_suggested"]] for i in found["label_issues"][:50]]
        across = sum(d["across_split"] for d in found["duplicates"])
        if across:
            warnings.append(f"{plural(across, 'duplicate pair')} {'lies' if across == 1 else 'lie'} across the "
                            "training/validation split: the validation score is optimistic. Remove one of each "
                            "pair, or split so both stay on one side.")
        unreadable = found["unreadable"]
        if unreadable:
            in_training = [f for f in unreadable if found["sides"][f] == "train"]
            if in_training:
                warnings.append(f"{plural(len(in_training), 'training file')} could not be read and "
                                f"{'is' if len(in_training) == 1 else 'are'} left out of the data "
                                "checks: " + ", ".join(escape(f) for f in in_training[:5]))
        left_out = (f" {plural(len(unreadable), 'file')} could not be read and "
                    f"{'is' if len(unreadable) == 1 else 'are'} left out: "
                    + "; ".join(f"{escape(f)} ({escape(str(e))})" for f, e in list(unreadable.items())[:10])
                    + (" ..." if len(unreadable) > 10 else "") + ".") if unreadable else ""
        sections.append(("Data checks",
                         f"<p>{plural(found['n'], 'image')} read from {escape(str(root))} and embedded with "
                         f"{escape(found['embedder'])}.{left_out} Near duplicates: "
                         f"thumbnails correlated at least {NEAR_DUPLICATE_PIXELS} (resized or re-encoded copies), or "
                         f"embeddings with cosine similarity at least {found['threshold']} (the same content).</p><h3>Duplicates "
                         f"({plural(len(found['duplicates']), 'pair')}, {across} across the split)</h3>"
                         + (_table(["", "", "a", "b", "kind", "similarity", "across split"], dups) if dups else "<p>None found.</p>")
                         + f"<h3>Likely label errors ({len(found['label_issues'])})</h3><p>Confident learning on "
                         "out-of-fold probabilities of a logistic regression on the embeddings; least confident in "
                         "their label first.</p>"
                         + (_table(["", "file", "label", "suggested", "side", "p(label)", "p(suggested)"], issues)
                            if issues else "<p>None found.</p>")))

    sections.append(("Model card", model_card(meta, predictor.version, evaluation, interp, audit)))
    sections.append(("Datasheet", datasheet(meta, split, found, root=root)))
    if warnings:
        sections.insert(0, ("Warnings", "".join(f"<p class='warn'>{w}</p>" for w in warnings)))
    for w in warnings:
        warn(w.replace("<strong>", "").replace("</strong>", ""))
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = f"centaur report: {Path(model_dir).name} (version {predictor.version}, {now})"
    data = {"evaluation": evaluation, "per_class": interp.per_class(), "most_confused": interp.most_confused(),
            "top_losses": top, "audit": audit, "checks": found}
    return Report(title, sections, data)
