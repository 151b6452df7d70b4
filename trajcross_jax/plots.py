"""Pictures a person would rather look at than read: training curves and data previews."""

import json

import matplotlib

matplotlib.use('Agg')  # Files only; never a window.
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from etils import epath  # noqa: E402

CURVES = (
  (('contrastive',), 'InfoNCE loss'),
  (('adversarial',), 'modality classifier loss'),
  (('disc_acc',), 'classifier accuracy'),
  (('batch_acc_t2i',), 'in-batch top@1 traj->img'),
  (('eval_traj2img_top@1', 'eval_img2traj_top@1'), 'evaluated top@1 (%)'),
  (('temperature',), 'temperature'),
  (('pairs_per_s',), 'pairs / s'),
)


def training_curves(metrics_jsonl: epath.PathLike, out_png: epath.PathLike) -> None:
  """Plots each logged metric of metrics.jsonl against the epoch (evaluations as marked lines)."""
  records = [json.loads(line) for line in epath.Path(metrics_jsonl).read_text().splitlines()]
  panels = [(keys, title) for keys, title in CURVES if any(k in r for r in records for k in keys)]
  fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 2.8), squeeze=False)
  for ax, (keys, title) in zip(axes[0], panels, strict=True):
    for key in keys:
      pts = [(r['epoch'], r[key]) for r in records if key in r]
      if pts:
        label = key.split('_')[1] if len(keys) > 1 else None
        ax.plot(*zip(*pts, strict=True), marker='o' if len(keys) > 1 else None, ms=3, label=label)
    if len(keys) > 1:
      split = next((r['split'] for r in records if 'split' in r), '')
      ax.legend(fontsize=7, title=split, title_fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel('epoch')
  fig.tight_layout()
  with epath.Path(out_png).open('wb') as f:
    fig.savefig(f, dpi=100)
  plt.close(fig)


def pair_grid(examples: dict[str, np.ndarray], out_png: epath.PathLike, columns: int = 4) -> None:
  """A grid of pairs: each image with its box as axis limits and its trajectory overlaid.

  The image is shown in world coordinates (extent = its box), so the trajectory drawn in
  another colour on top must lie exactly on the rendered line if the data is right.
  """
  n = len(examples['image'])
  rows = -(-n // columns)
  fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), squeeze=False)
  for i, ax in enumerate(axes.flat):
    if i >= n:
      ax.axis('off')
      continue
    x_left, y_top, x_right, y_bottom = examples['box'][i]
    ax.imshow(
      examples['image'][i, ..., 0],
      cmap='gray',
      extent=(x_left, x_right, y_bottom, y_top),
      vmin=0,
      vmax=255,
    )
    t = examples['trajectory'][i]
    ax.plot(t[:, 0], t[:, 1], '-', color='tab:orange', lw=0.8)
    ax.plot(t[0, 0], t[0, 1], 'o', color='tab:green', ms=3)  # Start.
    ax.set_xlim(x_left, x_right)
    ax.set_ylim(y_bottom, y_top)
    ax.tick_params(labelsize=6)
    ax.set_xticks([x_left, x_right])
    ax.set_yticks([y_bottom, y_top])
    xlabel = f'x [{x_left:.2f}, {x_right:.2f}] m'
    ylabel = f'y [{y_bottom:.2f}, {y_top:.2f}] m'
    if 'box_lonlat' in examples:  # [lon_left, lat_top, lon_right, lat_bottom] degrees.
      lon_left, lat_top, lon_right, lat_bottom = examples['box_lonlat'][i]
      xlabel += f'\nlon [{lon_left:.6f}, {lon_right:.6f}]'
      ylabel += f'\nlat [{lat_bottom:.6f}, {lat_top:.6f}]'
    ax.set_xlabel(xlabel, fontsize=7)
    ax.set_ylabel(ylabel, fontsize=7)
    if 'source' in examples:
      source = examples['source'][i]
      source = source.decode() if isinstance(source, bytes) else source
      track = examples['track_id'][i] if 'track_id' in examples else examples['ped_id'][i]
      track = track.decode() if isinstance(track, bytes) else track
      ax.set_title(f'{source} track {track} frame {examples["start_frame"][i]}', fontsize=7)
  fig.tight_layout()
  with epath.Path(out_png).open('wb') as f:
    fig.savefig(f, dpi=100)
  plt.close(fig)


def _show_image(ax, image: np.ndarray, box: np.ndarray) -> None:
  """An image in world coordinates: its box is the axes' extent."""
  x_left, y_top, x_right, y_bottom = box
  ax.imshow(image[..., 0], cmap='gray', extent=(x_left, x_right, y_bottom, y_top), vmin=0, vmax=255)
  ax.set_xlim(x_left, x_right)
  ax.set_ylim(y_bottom, y_top)


def search_grid(rows: list[dict], out_png: epath.PathLike) -> None:
  """Each query beside its results, scores under each, as a PNG.

  `rows`: one dict per query with 'name', 'modality' and either 'trajectory' or 'image' + 'box',
  and 'results': dicts with 'id', 'score' and the result's 'trajectory' or 'image' + 'box'.
  Image results are drawn with their boxes as axes and the query trajectory overlaid in them;
  trajectory results are drawn in the query image's box over the query image.
  """
  k = max(len(r['results']) for r in rows)
  fig, axes = plt.subplots(
    len(rows), k + 1, figsize=(2.0 * (k + 1), 2.2 * len(rows)), squeeze=False
  )
  for row, line in zip(rows, axes, strict=True):
    for ax in line:
      ax.set_xticks([])
      ax.set_yticks([])
    query = line[0]
    if row['modality'] == 'trajectory':
      t = row['trajectory']
      query.plot(t[:, 0], t[:, 1], '-', color='tab:orange')
      query.plot(t[0, 0], t[0, 1], 'o', color='tab:green', ms=3)
      query.set_aspect('equal', adjustable='datalim')
    else:
      _show_image(query, row['image'], row['box'])
    query.set_title(f'query {row["name"]}', fontsize=7, color='tab:blue')
    for ax, hit in zip(line[1:], row['results'], strict=False):
      if row['modality'] == 'trajectory':
        _show_image(ax, hit['image'], hit['box'])
        t = row['trajectory']
        ax.plot(t[:, 0], t[:, 1], '-', color='tab:orange', lw=0.8)
      else:
        _show_image(ax, row['image'], row['box'])
        t = hit['trajectory']
        ax.plot(t[:, 0], t[:, 1], '-', color='tab:orange', lw=0.8)
        ax.plot(t[0, 0], t[0, 1], 'o', color='tab:green', ms=3)
      ax.set_title(f'#{hit["rank"]} id {hit["id"]}', fontsize=7)
      ax.set_xlabel(f'score {hit["score"]:.3f}', fontsize=7)
  fig.tight_layout()
  with epath.Path(out_png).open('wb') as f:
    fig.savefig(f, dpi=80)
  plt.close(fig)
