"""Tables: processors, date parts and tabular_learner (an entity-embedding model for a DataFrame)."""
