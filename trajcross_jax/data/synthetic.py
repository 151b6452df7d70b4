"""Simulated pedestrian tracks: a stand-in for the univ recordings that needs no download.

Each pedestrian walks a correlated random walk in a univ-sized plaza: a preferred speed around
1.3 m/s that differs between pedestrians, a heading that drifts, now and then a sharp turn or a
stop of a few seconds, and walls that reflect. Rows come at 2.5 Hz with frame step 10, like univ,
so the tracks go through windows.py and the builder unchanged.
"""

import numpy as np

from trajcross_jax.data import tracks as tracks_lib

SOURCE = 'synthetic'
FRAME_STEP = 10
DT = 0.4  # Seconds per row: 2.5 Hz.
MIN_LENGTH = 12  # Rows of the shortest track.


def simulate_tracks(
  seed: int,
  num_tracks: int,
  *,
  source: str = SOURCE,
  plaza: tuple[float, float] = (16.0, 14.0),
  origin: tuple[float, float] = (0.0, 0.0),
  mean_speed: float = 1.3,
  speed_spread: float = 0.25,
  heading_drift: float = 0.08,
  turn_probability: float = 0.03,
  stop_probability: float = 0.015,
  mean_stop_steps: float = 6.0,
  mean_length: float = 45.0,
  position_noise: float = 0.02,
) -> list[tracks_lib.Track]:
  """Simulates `num_tracks` pedestrians, one track each; deterministic in `seed`.

  Args:
    seed: simulator seed.
    num_tracks: number of pedestrians; their ped_ids are 1..num_tracks.
    source: the tracks' recording name.
    plaza: (width, height) in metres of the walkable rectangle.
    origin: (x, y) in metres of the plaza's lower-left corner: the same walks, elsewhere.
    mean_speed: mean preferred walking speed, m/s.
    speed_spread: standard deviation of the preferred speed across pedestrians, m/s.
    heading_drift: standard deviation of the heading's change per row, radians.
    turn_probability: chance per row of a sharp turn (up to 90 degrees either way).
    stop_probability: chance per row that a walking pedestrian stops.
    mean_stop_steps: mean length of a stop in rows.
    mean_length: mean number of rows of a track, at least MIN_LENGTH; lengths are MIN_LENGTH plus
      a geometric number of rows, so with the default most tracks have 20 rows or more.
    position_noise: standard deviation of the tracking noise added to each point, metres.

  Returns:
    The tracks in ped_id order.
  """
  if num_tracks < 0 or mean_length < MIN_LENGTH:
    raise ValueError(f'need num_tracks >= 0 and mean_length >= {MIN_LENGTH}')
  rng = np.random.default_rng(seed)
  size = np.asarray(plaza)
  lengths = MIN_LENGTH - 1 + rng.geometric(1 / (mean_length - MIN_LENGTH + 1), num_tracks)
  steps = int(lengths.max(initial=1))
  speed = np.clip(rng.normal(mean_speed, speed_spread, num_tracks), 0.3, 2.5)
  heading = rng.uniform(-np.pi, np.pi, num_tracks)
  position = rng.uniform(0, 1, (num_tracks, 2)) * size
  stop_left = np.zeros(num_tracks, dtype=np.int64)

  xy = np.empty((num_tracks, steps, 2))
  for i in range(steps):  # Walk everyone one row at a time: each row depends on the last.
    xy[:, i] = position
    turn = rng.random(num_tracks) < turn_probability
    heading += rng.normal(0, heading_drift, num_tracks) + turn * rng.uniform(
      -np.pi / 2, np.pi / 2, num_tracks
    )
    stops = (stop_left == 0) & (rng.random(num_tracks) < stop_probability)
    stop_left = np.where(stops, rng.geometric(1 / mean_stop_steps, num_tracks), stop_left)
    walking = stop_left == 0
    stop_left = np.maximum(stop_left - 1, 0)
    velocity = speed[:, None] * np.stack([np.cos(heading), np.sin(heading)], axis=-1)
    position = position + walking[:, None] * velocity * DT
    # Reflect off the walls: mirror the position back inside and the heading with it.
    below, above = position < 0, position > size
    position = np.where(below, -position, np.where(above, 2 * size - position, position))
    heading = np.where(below[:, 0] | above[:, 0], np.pi - heading, heading)
    heading = np.where(below[:, 1] | above[:, 1], -heading, heading)
  xy += rng.normal(0, position_noise, xy.shape)
  xy += np.asarray(origin, np.float64)  # After all draws, so only the place changes.

  first_frames = FRAME_STEP * rng.integers(0, 5000, num_tracks)
  return [
    tracks_lib.Track(
      source=source,
      ped_id=ped_id,
      frames=first_frame + FRAME_STEP * np.arange(n, dtype=np.int64),
      xy=xy[ped_id - 1, :n],
    )
    for ped_id, first_frame, n in zip(range(1, num_tracks + 1), first_frames, lengths, strict=True)
  ]
