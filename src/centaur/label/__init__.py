"""The labeling workbench: project store, embedding cache, projections, similar search,
training from labels, and its browser UI (`centaur label FOLDER`)."""
