"""A trained cross-encoder, ready to re-rank: load, score pairs, re-order candidate lists.

A re-ranker lives in WORKDIR/rerank (an orbax checkpoint of its parameters and rerank.json: its
config, and the bi-encoder checkpoint whose candidates it was trained on). Two stages: the
bi-encoder's top `candidates` of the whole gallery, then these re-ordered by the cross-encoder's
score; results past the candidates keep the bi-encoder's order.
"""

import dataclasses
import functools
import json
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from trajcross_jax import parallel
from trajcross_jax.rerank.model import CrossEncoder, TrackMatcher

DIRECTORY = 'rerank'
RECORD_FILE = 'rerank.json'


class RerankerError(ValueError):
  """A re-ranker that is missing or does not belong to the bi-encoder it is used with."""


# The rerank fields added after re-rankers were first saved, with the value that a record
# without them was made with.
LATER_FIELDS = {
  'endpoint_width': 0.0,
  'scorer': 'pair',
  'hypotheses': 2,
  'nll_weight': 0.0,
  'bi_weight': 0.0,
  'point_features': 0,
}


def with_later_fields(rerank: dict[str, Any]) -> dict[str, Any]:
  """A rerank config (a record's, as a dict) with the fields it predates at their values."""
  return {**LATER_FIELDS, **rerank}


def build_model(rerank: ml_collections.ConfigDict) -> CrossEncoder | TrackMatcher:
  """The second stage's scorer of a config's `rerank` section."""
  rerank = with_later_fields(rerank.to_dict())
  if rerank['scorer'] == 'track':
    return TrackMatcher(
      channels=tuple(rerank['channels']), hidden=rerank['hidden'], hypotheses=rerank['hypotheses']
    )
  return CrossEncoder(
    stem=rerank['stem'],
    channels=tuple(rerank['channels']),
    hidden=rerank['hidden'],
    line_width=rerank['line_width'],
    endpoint_width=rerank['endpoint_width'],
    point_features=rerank['point_features'],
  )


def abstract_params(model: CrossEncoder | TrackMatcher, window_length: int, image_size: int):
  """The shapes of the cross-encoder's parameters, without computing them."""
  example = (
    jnp.zeros((1, window_length, 2)),
    jnp.zeros((1, image_size, image_size, 1), jnp.uint8),
    jnp.zeros((1, 4)),
  )
  return jax.eval_shape(model.init, jax.random.key(0), *example)


@dataclasses.dataclass(eq=False)
class Reranker:
  """The cross-encoder and its parameters (replicated on the local devices).

  Attributes:
    model: the cross-encoder.
    params: its parameters.
    record: rerank.json: config (the rerank section), bi_encoder (step, params_hash), training.
    mesh: the local devices.
    batch_size: pairs per jitted call (a multiple of the local devices).
  """

  model: CrossEncoder | TrackMatcher
  params: Any
  record: dict[str, Any]
  mesh: jax.sharding.Mesh
  batch_size: int = 1024

  @property
  def candidates(self) -> int:
    """How many of the bi-encoder's results it re-orders."""
    return int(self.record['config']['candidates'])

  @property
  def bi_weight(self) -> float:
    """The bi-encoder score's weight in the head's order (0 in records made before it)."""
    return float(with_later_fields(self.record['config'])['bi_weight'])

  def combined(self, cross: np.ndarray, bi: np.ndarray) -> np.ndarray:
    """The scores the re-ranked head is ordered by: the cross-encoder's `cross` plus
    bi_weight times the bi-encoder's `bi` (arrays of one shape)."""
    cross = np.asarray(cross, np.float32)
    return cross + self.bi_weight * np.asarray(bi, np.float32) if self.bi_weight else cross

  @classmethod
  def create(
    cls, model: CrossEncoder | TrackMatcher, params: Any, record: dict[str, Any]
  ) -> 'Reranker':
    mesh = parallel.make_mesh(jax.local_devices())
    params = jax.device_put(params, parallel.replicated(mesh))
    batch_size = -(-1024 // mesh.size) * mesh.size
    return cls(model=model, params=params, record=record, mesh=mesh, batch_size=batch_size)

  @classmethod
  def load(cls, workdir: epath.PathLike, bi_encoder_hash: str | None = None) -> 'Reranker':
    """The re-ranker trained in `workdir`.

    Raises:
      RerankerError: none there, or (with `bi_encoder_hash`) trained on another bi-encoder's
        candidates.
    """
    directory = epath.Path(workdir).absolute() / DIRECTORY
    if not (directory / RECORD_FILE).exists():
      raise RerankerError(
        f'no re-ranker in {directory}: train one (--mode=train with --config.rerank.enabled, '
        'or --mode=rerank on a trained workdir), or set --config.rerank.enabled=False'
      )
    record = json.loads((directory / RECORD_FILE).read_text())
    if bi_encoder_hash is not None:
      check_trained_on(record, bi_encoder_hash, f'the re-ranker in {directory}')
    rerank = ml_collections.ConfigDict(record['config'])
    model = build_model(rerank)
    target = abstract_params(model, record['window_length'], record['image_size'])
    params = ocp.StandardCheckpointer().restore(directory / 'params', target)
    return cls.create(model, params, record)

  @classmethod
  def find(cls, workdir: epath.PathLike, bi_encoder_hash: str) -> 'Reranker | None':
    """The re-ranker trained in `workdir` if there is one (load's checks), else None."""
    if not (epath.Path(workdir).absolute() / DIRECTORY / RECORD_FILE).exists():
      return None
    return cls.load(workdir, bi_encoder_hash)

  def save(self, workdir: epath.PathLike) -> None:
    """Writes the parameters and rerank.json under WORKDIR/rerank (the record last: a directory
    with a record is complete). A re-ranker already there is replaced: its record goes first,
    so that no record ever names parameters it was not saved with."""
    directory = epath.Path(workdir).absolute() / DIRECTORY
    directory.mkdir(parents=True, exist_ok=True)
    (directory / RECORD_FILE).unlink(missing_ok=True)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(directory / 'params', jax.device_get(self.params), force=True)
    checkpointer.wait_until_finished()
    tmp = directory / (RECORD_FILE + '.tmp')
    tmp.write_text(json.dumps(self.record, indent=2))
    tmp.rename(directory / RECORD_FILE)

  def score(self, trajectories: np.ndarray, images: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, M, 2) trajectories against (N, S, S, 1) images with (N, 4) boxes -> (N,) scores."""
    fn = functools.partial(_score_fn(self.model, self.mesh), self.params)
    arrays = [np.asarray(trajectories, np.float32), np.asarray(images), np.asarray(boxes)]
    out = parallel.map_batches(fn, arrays, self.batch_size, self.mesh)
    return np.zeros((0,), np.float32) if out is None else out

  def score_trajectory_queries(self, trajectories, images, boxes) -> np.ndarray:
    """(Q, M, 2) queries against their (Q, K, S, S, 1) candidate images -> (Q, K) scores."""
    q, k = np.shape(images)[:2]
    repeated = np.repeat(np.asarray(trajectories)[:, None], k, axis=1)
    flat = self.score(
      repeated.reshape(q * k, -1, 2),
      np.reshape(images, (q * k, *np.shape(images)[2:])),
      np.reshape(boxes, (q * k, 4)),
    )
    return flat.reshape(q, k)

  def score_image_queries(self, images, boxes, trajectories) -> np.ndarray:
    """(Q, S, S, 1) queries with (Q, 4) boxes against (Q, K, M, 2) candidates -> (Q, K)."""
    q, k = np.shape(trajectories)[:2]
    flat = self.score(
      np.reshape(trajectories, (q * k, *np.shape(trajectories)[2:])),
      np.repeat(np.asarray(images), k, axis=0),
      np.repeat(np.asarray(boxes), k, axis=0),
    )
    return flat.reshape(q, k)


@functools.lru_cache(maxsize=8)
def _score_fn(model: CrossEncoder | TrackMatcher, mesh: jax.sharding.Mesh):
  return jax.jit(model.apply, out_shardings=parallel.replicated(mesh))


def check_trained_on(record: dict[str, Any], bi_encoder_hash: str, what: str) -> None:
  """RerankerError unless the re-ranker of `record` (`what`, for the message) was trained on the
  candidates of the bi-encoder whose parameter hash is `bi_encoder_hash`."""
  trained_on = record['bi_encoder']['params_hash']
  if trained_on != bi_encoder_hash:
    raise RerankerError(
      f'{what} was trained on the candidates of bi-encoder {trained_on}, not '
      f'{bi_encoder_hash}: train it again (--mode=rerank)'
    )


def two_stage_ranks(bi_ranks: np.ndarray, candidates: np.ndarray, scores: np.ndarray, own):
  """Ranks (1 = best) of each query's own item after re-ranking its candidates.

  Args:
    bi_ranks: (Q,) the own item's rank under the bi-encoder alone.
    candidates: (Q, K) the bi-encoder's top K ids.
    scores: (Q, K) the cross-encoder's scores of those.
    own: (Q,) each query's own item id.

  An own item among the candidates takes 1 + the number of other candidates not scored strictly
  below it (ties and NaN count against it, as evaluate.ranks does); one outside them keeps its
  bi-encoder rank (> K): the second stage only re-orders the first K.
  """
  hit = candidates == np.asarray(own)[:, None]
  inside = hit.any(axis=1)
  own_score = np.sum(np.where(hit, scores, 0.0), axis=1)
  above = (~(scores < own_score[:, None]) & ~hit).sum(axis=1)
  return np.where(inside, 1 + above, bi_ranks)
