"""The second stage: a learned cross-encoder that re-ranks the bi-encoder's top candidates."""
