"""Image-specific glue: vision_learner and the centaur train recipe."""
