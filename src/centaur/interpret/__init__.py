"""Understanding a model and its data: interpretation, honest evaluation, subgroup audits,
data checks, heatmaps, model cards, and the HTML report that gathers them."""
