"""The Learner, its events and callbacks, schedules, metrics, checkpoints and export."""
