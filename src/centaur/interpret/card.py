"""A model card (Mitchell et al. 2019) and a datasheet (Gebru et al. 2021), drafted from what
centaur knows, with marked sections that only the people responsible can write."""
from collections import Counter
from html import escape
from pathlib import Path

from ..core.words import plural

WRITE_ME = "TO BE WRITTEN by the people responsible for this model"


def _todo(what):
    return f'<p class="todo"><strong>{WRITE_ME}:</strong> {escape(what)}</p>'


def _pct(v):
    return f"{100 * v:.1f}%"


def model_card(meta, version, evaluation, interp, audit=None):
    """HTML of the model card: details, intended use, data, metrics, subgroups, failure cases."""
    prov = meta.get("provenance", {})
    acc, base = evaluation["accuracy"], evaluation["baseline"]
    train = prov.get("training", {}) or {}
    parts = ["<h3>Model details</h3><ul>",
             f"<li>Architecture: {escape(str(meta.get('timm_arch') or meta.get('arch')))}, "
             f"{escape(str(meta['preprocessing'].get('weights') or 'no pretrained weights recorded'))}</li>",
             f"<li>Task: {escape(meta['task'])}, {len(meta.get('classes') or [])} classes: "
             f"{escape(', '.join(meta.get('classes') or []))}</li>",
             f"<li>Version (weights SHA-256 prefix): {escape(version)}; created {escape(str(prov.get('created')))}</li>",
             f"<li>Training: {escape(str(train.get('method', '?')))}, {escape(str(train.get('epochs', '?')))} epochs "
             f"(+{escape(str(train.get('freeze_epochs', 0)))} frozen), base learning rate "
             f"{escape(str(train.get('base_lr', '?')))}, batch size {escape(str(prov.get('batch_size', '?')))}, "
             f"seed {escape(str(prov.get('seed', '?')))}</li>",
             f"<li>Software: {escape(', '.join(f'{k} {v}' for k, v in (prov.get('versions') or {}).items()))}</li></ul>",
             "<h3>Intended use</h3>", _todo("who uses it, for which decisions, and which uses are out of scope."),
             "<h3>Data</h3><ul>",
             f"<li>Source: {escape(str(prov.get('data')))}</li>",
             f"<li>{prov.get('n_train', '?')} training and {prov.get('n_valid', '?')} validation images, "
             f"{escape(str(prov.get('split')))} split; {prov.get('skipped_files', 0)} unreadable files skipped</li></ul>",
             "<h3>Metrics</h3>",
             f"<p>Accuracy {_pct(acc['value'])} (95% CI {_pct(acc['ci95'][0])} to {_pct(acc['ci95'][1])}) on "
             f"{plural(evaluation['n'], 'validation image')}, against {_pct(base['accuracy'])} for always answering "
             f"'{escape(base['class'])}'. Expected calibration error {evaluation['calibration']['ece']:.3f}.</p>"]
    if "auc" in evaluation:
        a = evaluation["auc"]
        parts.append(f"<p>AUC {a['value']:.3f} (95% CI {a['ci95'][0]:.3f} to {a['ci95'][1]:.3f}).</p>")
    parts.append("<h3>Subgroups</h3>")
    if audit and audit["gaps"]:
        g = audit["gaps"][0]
        parts.append(f"<p>Largest gap: {_pct(g['gap'])} in accuracy between {escape(' & '.join(g['best']))} and "
                     f"{escape(' & '.join(g['worst']))} ({escape(' x '.join(g['columns']))}; 95% CI of the gap "
                     f"{_pct(g['ci95'][0])} to {_pct(g['ci95'][1])}). See the subgroup table.</p>")
    elif audit:
        parts.append(f"<p>No two groups have {audit['min_size']} or more validation images: no gap can be "
                     "measured. Collect more data for each group.</p>")
    else:
        parts.append("<p>No subgroup audit was run: give <code>--groups groups.csv</code> (file, group columns) "
                     "to measure the model for every group it serves.</p>")
    confused = interp.most_confused()[:3]
    parts.append("<h3>Known failure cases</h3><ul>" + "".join(
        f"<li>{escape(a)} taken for {escape(p)}: {plural(n, 'validation image')}</li>" for a, p, n in confused) +
        "".join(f"<li>{escape(t['item'])}: {escape(t['actual'])}, predicted {escape(t['predicted'])} "
                f"({_pct(t['probability'])})</li>" for t in interp.top_losses(3) if t["actual"] != t["predicted"])
        + "</ul>")
    parts += ["<h3>Limitations and ethical considerations</h3>",
              _todo("where it fails or was never tested, who could be harmed by a wrong answer, and how a person "
                    "can contest a decision (centaur serve records contested predictions).")]
    return "".join(parts)


def datasheet(meta, split, checks=None, root=None):
    """HTML of the datasheet: motivation, composition (counts, duplicates, label issues), process.

    root: the folder this report read the images from, named when it is not the one trained on."""
    prov = meta.get("provenance", {})
    counts = {side: Counter(y for _, y in split[side]) for side in ("train", "valid")}
    classes = sorted(set(counts["train"]) | set(counts["valid"]))
    rows = "".join(f"<tr><td>{escape(str(c))}</td><td>{counts['train'][c]}</td><td>{counts['valid'][c]}</td></tr>"
                   for c in classes)
    parts = ["<h3>Motivation</h3>", _todo("why the data was collected, by whom, and who funded it."),
             "<h3>Composition</h3>",
             f"<p>{sum(counts['train'].values())} training and {sum(counts['valid'].values())} validation images from "
             f"{escape(str(prov.get('data')))}"
             + (f" (this report read them from {escape(str(root))})"
                if root is not None and Path(str(prov.get("data"))).resolve() != Path(root).resolve() else "")
             + ".</p>",
             f"<table><tr><th>class</th><th>train</th><th>valid</th></tr>{rows}</table>"]
    if checks:
        across = sum(d["across_split"] for d in checks["duplicates"])
        parts.append(f"<p>Duplicates found: {len(checks['duplicates'])} pairs ({across} across the training/"
                     f"validation split); likely label errors: {len(checks['label_issues'])}; unreadable files: "
                     f"{len(checks['unreadable'])} (see the data checks section).</p>")
    parts += ["<h3>Collection and labelling</h3>",
              _todo("how images were gathered and labelled, by whom, with what consent, and over which period."),
              "<h3>Preprocessing</h3>",
              f"<p>{escape(', '.join(str(t) for t in meta['preprocessing'].get('item_tfms', [])))}; normalized with "
              f"mean {meta['preprocessing'].get('mean')} and std {meta['preprocessing'].get('std')}.</p>",
              "<h3>Uses and distribution</h3>", _todo("what the data may and may not be used for, and its licence.")]
    return "".join(parts)
