"""Data: tracks, windows and split, the rasteriser, and the tfds builder 'trajcross'."""

from trajcross_jax.data import builder  # noqa: F401  Importing it registers 'trajcross' with tfds.
