"""The scene frame: where a dataset's coordinates lie, so that networks see them near [-1, 1].

A model reads positions (the trajectory's points, the image's box, the coordinate channels) in
normalised units: (xy - centre) / scale. The centre and scale come from a dataset's training
split: the midpoint of the box around all its points, and half of that box's longer side. The
builder stores them in the dataset's metadata and training stores them in each checkpoint, so a
model carries the frame it was trained in to any other scene (evaluate.py chooses between that
frame and the other scene's own, `eval.normalisation`).
"""

import dataclasses
import math
from typing import Any

import numpy as np

# A scene of a single point (or one that stands still) still needs a positive scale: metres.
MIN_SCALE = 1.0
METADATA_KEY = 'normalisation'


@dataclasses.dataclass(frozen=True)
class Normalisation:
  """A scene frame: normalised = (metres - center) / scale.

  Attributes:
    center: (x, y) in metres.
    scale: metres per normalised unit, > 0.
  """

  center: tuple[float, float]
  scale: float

  def __post_init__(self):
    values = (*self.center, self.scale)
    if len(self.center) != 2 or not all(math.isfinite(v) for v in values) or self.scale <= 0:
      raise ValueError(
        f'a normalisation needs a finite (x, y) centre and a positive scale, got '
        f'center={self.center}, scale={self.scale}'
      )

  def to_json(self) -> dict[str, Any]:
    return {'center': [float(c) for c in self.center], 'scale': float(self.scale)}

  @classmethod
  def from_json(cls, record: dict[str, Any]) -> 'Normalisation':
    try:
      center = tuple(float(c) for c in record['center'])
      return cls(center=center, scale=float(record['scale']))
    except (KeyError, TypeError) as e:
      raise ValueError(f'not a normalisation record: {record!r}') from e


def from_points(xy: np.ndarray) -> Normalisation:
  """The frame of a training split's points (..., 2): box midpoint, half its longer side."""
  xy = np.asarray(xy, np.float64).reshape(-1, 2)
  if not len(xy) or not np.isfinite(xy).all():
    raise ValueError('the scene frame needs at least one point, all finite')
  lo, hi = xy.min(axis=0), xy.max(axis=0)
  center = (lo + hi) / 2
  scale = max(float((hi - lo).max()) / 2, MIN_SCALE)
  return Normalisation(center=(float(center[0]), float(center[1])), scale=scale)


# Only to check a config's fields without data (validation.py); never used to embed.
UNIT = Normalisation(center=(0.0, 0.0), scale=1.0)
