"""--mode=embed: a gallery's embeddings as numbered shards, with metadata and a manifest.

A gallery is one split of a `trajcross` dataset. Its items are cut into shards of `shard_size`
consecutive items (item id = position in the split); shard i writes

  trajectory-0000i.npy   (n, D) float32 or float16, when trajectories are embedded
  image-0000i.npy        (n, D), when images are embedded
  meta-0000i.jsonl       one line per item: id, source, ped_id, track_id, start_frame, box

and the directory holds manifest.json: the checkpoint (workdir, step, parameter hash, config,
scene frame), the dataset and split, the sizes. Every file is written under a temporary name and
renamed, so a file that exists is whole: a killed embed restarts at the first missing shard and
ends with the same bytes as an uninterrupted one. Process p of P writes the shards i with
i % P == p, each on its own devices, so several processes (launch/) share the work.
"""

import functools
import io
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import tqdm
from etils import epath

from trajcross_jax.data import pipeline
from trajcross_jax.retriever import Retriever

MANIFEST = 'manifest.json'
MODALITIES = ('trajectory', 'image')
DTYPES = ('float32', 'float16')
META_FEATURES = ('source', 'ped_id', 'track_id', 'start_frame', 'box')


class GalleryError(ValueError):
  """An embedding directory that is missing, incomplete or of another model or gallery."""


def shard_name(kind: str, shard: int, suffix: str) -> str:
  return f'{kind}-{shard:05d}.{suffix}'


def shard_files(shard: int, modalities: Sequence[str]) -> list[str]:
  """The files that make shard `shard` whole."""
  return [shard_name(m, shard, 'npy') for m in modalities] + [shard_name('meta', shard, 'jsonl')]


def write_atomic(path: epath.Path, data: bytes) -> None:
  """Writes `data` to `path` through a temporary name, so `path` is never half written."""
  tmp = path.parent / f'.{path.name}.tmp{os.getpid()}'
  tmp.write_bytes(data)
  os.replace(tmp, path)


def npy_bytes(array: np.ndarray) -> bytes:
  """The .npy file of an array, in memory (np.save to a buffer)."""
  buffer = io.BytesIO()
  np.save(buffer, array, allow_pickle=False)
  return buffer.getvalue()


def make_manifest(
  retriever: Retriever,
  dataset: str,
  dataset_dir: str,
  split: str,
  num_items: int,
  shard_size: int,
  dtype: str,
  modalities: Sequence[str],
) -> dict[str, Any]:
  """What an embedding directory holds and which model made it."""
  return {
    'checkpoint': retriever.describe(),
    'dataset': dataset,
    'dataset_dir': dataset_dir,
    'split': split,
    'num_items': num_items,
    'shard_size': shard_size,
    'num_shards': -(-num_items // shard_size),
    'dtype': dtype,
    'modalities': list(modalities),
    'dim': retriever.embedding_dim,
  }


def embed(
  retriever: Retriever,
  source: pipeline.Source,
  out_dir: epath.PathLike,
  manifest: dict[str, Any],
  process_index: int = 0,
  process_count: int = 1,
  progress: bool = True,
) -> list[int]:
  """Embeds this process's missing shards of `source` into `out_dir`. Returns the shards written.

  `source` must yield the model features and META_FEATURES. The manifest is written first (by
  process 0); an existing one must be the same gallery of the same model, or nothing is written.
  """
  out_dir = epath.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  check_or_write_manifest(out_dir, manifest, write=process_index == 0)
  modalities, size = manifest['modalities'], manifest['shard_size']
  dtype = np.dtype(manifest['dtype'])
  mine = [i for i in range(manifest['num_shards']) if i % process_count == process_index]
  todo = [i for i in mine if not all((out_dir / f).exists() for f in shard_files(i, modalities))]
  for shard in todo:  # What a killed run left half done is done again from its start.
    for name in shard_files(shard, modalities):
      if _partial(out_dir, name).exists():
        _partial(out_dir, name).unlink()
  items = sum(min(size, manifest['num_items'] - i * size) for i in todo)
  bar = tqdm.tqdm(total=items, unit='items', disable=not progress, desc=f'embed {out_dir.name}')
  for shard in todo:
    ids = np.arange(shard * size, min((shard + 1) * size, manifest['num_items']))
    for start in range(0, len(ids), retriever.batch_size * 4):  # Flat memory: a few batches.
      part = source.get_batch(ids[start : start + retriever.batch_size * 4])
      for modality in modalities:
        z = (
          retriever.embed_trajectories(part['trajectory'])
          if modality == 'trajectory'
          else retriever.embed_images(part['image'], part['box'])
        )
        _append(out_dir, modality, shard, z.astype(dtype))
      _append_meta(out_dir, shard, ids[start : start + len(part['box'])], part)
      bar.update(len(part['box']))
    _finish_shard(out_dir, shard, manifest)
  bar.close()
  return todo


def _partial(out_dir: epath.Path, name: str) -> epath.Path:
  return out_dir / f'.{name}.partial'


def _append(out_dir: epath.Path, modality: str, shard: int, z: np.ndarray) -> None:
  """Adds a block of a shard's embeddings to its partial file (raw rows)."""
  with _partial(out_dir, shard_name(modality, shard, 'npy')).open('ab') as f:
    f.write(np.ascontiguousarray(z).tobytes())


def _append_meta(out_dir: epath.Path, shard: int, ids: np.ndarray, part: dict) -> None:
  lines = []
  for j, item in enumerate(ids):
    record = {'id': int(item)}
    for key in META_FEATURES:
      value = part[key][j]
      if isinstance(value, bytes):
        value = value.decode()
      elif isinstance(value, np.ndarray):
        value = [float(v) for v in value]
      elif isinstance(value, np.generic):
        value = value.item()
      record[key] = value
    lines.append(json.dumps(record) + '\n')
  with _partial(out_dir, shard_name('meta', shard, 'jsonl')).open('a') as f:
    f.write(''.join(lines))


def _finish_shard(out_dir: epath.Path, shard: int, manifest: dict[str, Any]) -> None:
  """Turns a shard's partial files into its final ones (each renamed whole)."""
  for modality in manifest['modalities']:
    name = shard_name(modality, shard, 'npy')
    raw = _partial(out_dir, name).read_bytes()
    z = np.frombuffer(raw, dtype=manifest['dtype']).reshape(-1, manifest['dim'])
    write_atomic(out_dir / name, npy_bytes(z))
    _partial(out_dir, name).unlink()
  name = shard_name('meta', shard, 'jsonl')
  os.replace(_partial(out_dir, name), out_dir / name)


def check_or_write_manifest(out_dir: epath.Path, manifest: dict[str, Any], write: bool) -> None:
  """Writes the manifest, or checks that the one there describes the same gallery and model."""
  path = out_dir / MANIFEST
  if path.exists():
    existing, expected = identity(json.loads(path.read_text())), identity(manifest)
    differing = sorted(k for k in expected if existing.get(k) != expected[k])
    if differing:
      raise GalleryError(
        f'{out_dir} holds another gallery or model (differs in {", ".join(differing)}): '
        'embed into another directory, or delete it first'
      )
  elif write:
    write_atomic(path, json.dumps(manifest, indent=2).encode())


def identity(manifest: dict[str, Any]) -> dict[str, Any]:
  """A manifest less where things lie: the same gallery of the same model, wherever it is."""
  out = {k: v for k, v in manifest.items() if k != 'dataset_dir'}
  out['checkpoint'] = {k: v for k, v in manifest['checkpoint'].items() if k != 'workdir'}
  return out


def read_manifest(directory: epath.PathLike) -> dict[str, Any]:
  path = epath.Path(directory) / MANIFEST
  if not path.exists():
    raise GalleryError(f'{directory} is not an embedding directory: it has no {MANIFEST}')
  return json.loads(path.read_text())


def _checked_shards(directory: epath.Path, manifest: dict, modality: str, mmap: bool):
  """Yields (first item id, shard array) for each shard of one modality, each checked against
  the manifest; memory maps with `mmap`."""
  if modality not in manifest['modalities']:
    raise GalleryError(f'{directory} holds no {modality} embeddings ({manifest["modalities"]})')
  size = manifest['shard_size']
  for shard in range(manifest['num_shards']):
    path = directory / shard_name(modality, shard, 'npy')
    expected = min(size, manifest['num_items'] - shard * size)
    if not path.exists():
      raise GalleryError(f'{path}: missing (run --mode=embed again to finish the gallery)')
    try:
      z = np.load(os.fspath(path), mmap_mode='r' if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
      raise GalleryError(f'{path}: truncated or not an .npy file ({e})') from None
    if z.shape != (expected, manifest['dim']):
      raise GalleryError(
        f'{path}: holds {z.shape}, the manifest says ({expected}, {manifest["dim"]})'
      )
    yield shard * size, z


def load_embeddings(directory: epath.PathLike, modality: str) -> tuple[np.ndarray, dict]:
  """Every shard of one modality, concatenated, checked whole. Returns (embeddings, manifest)."""
  directory = epath.Path(directory)
  manifest = read_manifest(directory)
  out = np.empty((manifest['num_items'], manifest['dim']), dtype=manifest['dtype'])
  for start, z in _checked_shards(directory, manifest, modality, mmap=False):
    out[start : start + len(z)] = z
  return out, manifest


class MappedEmbeddings:
  """One modality's shards as memory maps: rows are read by id without loading the gallery
  (an approximate index re-scores its candidates from them, index.Refined)."""

  def __init__(self, directory: epath.PathLike, modality: str):
    directory = epath.Path(directory)
    manifest = read_manifest(directory)
    self.shards = [z for _, z in _checked_shards(directory, manifest, modality, mmap=True)]
    self.shard_size: int = manifest['shard_size']
    self.shape: tuple[int, int] = (manifest['num_items'], manifest['dim'])
    self.dtype = np.dtype(manifest['dtype'])

  def __getitem__(self, ids: np.ndarray) -> np.ndarray:
    """Rows of an integer id array of any shape -> ids.shape + (D,), as stored."""
    ids = np.asarray(ids)
    flat = ids.reshape(-1)
    out = np.empty((flat.size, self.shape[1]), self.dtype)
    shard_of = flat // self.shard_size
    for shard in np.unique(shard_of):
      here = shard_of == shard
      out[here] = self.shards[shard][flat[here] - shard * self.shard_size]
    return out.reshape(*ids.shape, self.shape[1])


@functools.lru_cache(maxsize=64)
def _meta_lines(path: str) -> list[str]:
  """A metadata shard's lines, read once: a service looks items up many times a second."""
  return epath.Path(path).read_text().splitlines()


def read_metadata(directory: epath.PathLike, ids: Sequence[int]) -> list[dict[str, Any]]:
  """The metadata lines of the items `ids`, in that order."""
  directory = epath.Path(directory)
  manifest = read_manifest(directory)
  size = manifest['shard_size']
  by_shard: dict[int, list[int]] = {}
  for item in ids:
    by_shard.setdefault(int(item) // size, []).append(int(item))
  found = {}
  for shard, wanted in by_shard.items():
    lines = _meta_lines(str(directory / shard_name('meta', shard, 'jsonl')))
    for item in wanted:
      found[item] = json.loads(lines[item - shard * size])
  return [found[int(item)] for item in ids]
