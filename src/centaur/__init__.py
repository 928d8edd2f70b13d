"""centaur: practical deep learning for people who know their own field. Label, train,
understand and ship image and tabular models on an ordinary CPU."""
__version__ = "0.1.0"
