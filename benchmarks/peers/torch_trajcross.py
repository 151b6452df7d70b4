"""TRAJCROSS in PyTorch: the same networks, losses and updates, built from the same config.

The speed peer of benchmarks/train_speed.py (issue 16): a plain PyTorch implementation of what
one TRAJCROSS train step computes, so that the JAX step can be compared with it at equal work:

- the training images re-drawn for the batch (the protocol's window and width rules, the
  project's anti-aliased polyline rasteriser: trajcross_jax/data/render.py);
- the trajectory encoder: a Dense per point, Kim-style 1-D convolutions (max over time), a
  Dense; the trajectory's own raster (with world-coordinate channels) through the stride-2
  shape CNN;
- the image encoder: the full-width WCNN, the box Dense, their fusion, the shape CNN on the
  block-averaged image;
- InfoNCE both ways with a learned temperature (1/T clipped at 100), the modality classifier
  behind a gradient reversal;
- the encoders' update (global-norm clip, AdamW with decay on kernels, warmup + cosine) and the
  classifier's Adam.

Tensors are NCHW (PyTorch's convention); `channels_last` switches the memory format. Needs
torch (the `bench` extra); the package and its tests do not.
"""

import math
from collections.abc import Sequence

import ml_collections
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MAX_LOGIT_SCALE = 100.0
SCALE_RANGE, MIN_SIDE, WIDTHS = (1.25, 2.0), 2.0, (1, 2, 3)  # render.py's protocol constants.


def render_polylines(points, windows, widths, size: int) -> torch.Tensor:
  """render.render_polylines: (B, M, 2) metres in windows (B, 3) -> (B, size, size) in [0, 255].

  The same formula, one segment at a time with a running minimum: eager PyTorch would otherwise
  hold several (B, segments, size, size) tensors (XLA fuses that broadcast into one loop); this
  loop drew 128 images in 23 ms where the broadcast took 160 ms (2 cores).
  """
  x0, y0, s = windows[:, 0, None], windows[:, 1, None], windows[:, 2, None]
  u = (points[..., 0] - x0) * (size / s)
  v = (y0 + s - points[..., 1]) * (size / s)
  centres = torch.arange(size, dtype=points.dtype, device=points.device) + 0.5
  cols, rows = centres[None, None, :], centres[None, :, None]
  nearest = None
  for k in range(points.shape[1] - 1):
    au, av = u[:, k, None, None], v[:, k, None, None]
    du, dv = u[:, k + 1, None, None] - au, v[:, k + 1, None, None] - av
    pu, pv = cols - au, rows - av
    length2 = du * du + dv * dv
    safe = torch.where(length2 > 0, length2, torch.ones_like(length2))
    t = ((pu * du + pv * dv) / safe).clamp(0, 1)
    eu, ev = pu - t * du, pv - t * dv
    d2 = eu * eu + ev * ev
    nearest = d2 if nearest is None else torch.minimum(nearest, d2)
  return 255 * (widths[:, None, None] / 2 + 0.5 - nearest.sqrt()).clamp(0, 1)


def box_from_windows(windows) -> torch.Tensor:
  x0, y0, s = windows[:, 0], windows[:, 1], windows[:, 2]
  return torch.stack([x0, y0 + s, x0 + s, y0], dim=-1)


def redraw_images(points, size: int, generator: torch.Generator):
  """augment.redraw_images: a fresh window and width per trajectory -> (uint8 (B, 1, S, S), box)."""
  lo, hi = points.amin(dim=1), points.amax(dim=1)
  extent = (hi - lo).amax(dim=-1)
  b = points.shape[0]
  dev = points.device
  u = torch.rand(b, generator=generator, device=dev) * (SCALE_RANGE[1] - SCALE_RANGE[0])
  u = u + SCALE_RANGE[0]
  s = torch.clamp(extent * u, min=MIN_SIDE)
  x0 = hi[:, 0] - s + torch.rand(b, generator=generator, device=dev) * (lo[:, 0] - hi[:, 0] + s)
  y0 = hi[:, 1] - s + torch.rand(b, generator=generator, device=dev) * (lo[:, 1] - hi[:, 1] + s)
  widths = torch.randint(WIDTHS[0], WIDTHS[-1] + 1, (b,), generator=generator, device=dev)
  widths = widths.float()
  windows = torch.stack([x0, y0, s], dim=-1)
  image = render_polylines(points, windows, widths, size).round().to(torch.uint8)
  return image[:, None], box_from_windows(windows)


def coord_channels(intensity, box, center, scale) -> torch.Tensor:
  """inputs.coord_channels in NCHW: [I, I*x, I*y] with each pixel's normalised world position."""
  _, _, h, w = intensity.shape
  cols = (torch.arange(w, device=intensity.device) + 0.5) / w
  rows = (torch.arange(h, device=intensity.device) + 0.5) / h
  x = box[:, 0, None] + cols[None] * (box[:, 2] - box[:, 0])[:, None]
  y = box[:, 1, None] - rows[None] * (box[:, 1] - box[:, 3])[:, None]
  x = ((x - center[0]) / scale)[:, None, None, :]
  y = ((y - center[1]) / scale)[:, None, :, None]
  return torch.cat([intensity, intensity * x, intensity * y], dim=1)


def same_padding(size: int) -> tuple[int, int]:
  """XLA's 'SAME' padding of a 3-tap stride-2 window (shape._same_padding)."""
  total = max(2 * (-(-size // 2) - 1) + 3 - size, 0)
  return total // 2, total - total // 2


class ShapeCNN(nn.Module):
  """Stride-2 3x3 'SAME' convolutions, ReLU, global average pooling, a Dense."""

  def __init__(self, in_channels: int, channels: Sequence[int], features: int):
    super().__init__()
    sizes = [in_channels, *channels]
    self.convs = nn.ModuleList(
      nn.Conv2d(a, b, 3, stride=2) for a, b in zip(sizes, sizes[1:], strict=False)
    )
    self.out = nn.Linear(channels[-1], features)

  def forward(self, x):
    for conv in self.convs:
      (top, bottom), (left, right) = same_padding(x.shape[2]), same_padding(x.shape[3])
      x = F.relu(conv(F.pad(x, (left, right, top, bottom))))
    return self.out(x.mean(dim=(2, 3)))


class SequenceCNN(nn.Module):
  """Kim-style convolutions over a sequence (B, M, D): one per height, max over time, concat."""

  def __init__(self, in_features: int, heights: Sequence[int], features: int):
    super().__init__()
    self.convs = nn.ModuleList(nn.Conv1d(in_features, features, h) for h in heights)

  def forward(self, x):
    x = x.transpose(1, 2)
    return torch.cat([F.relu(conv(x)).amax(dim=2) for conv in self.convs], dim=-1)


class TrajectoryEncoder(nn.Module):
  channels_last = False

  def __init__(self, model: ml_collections.ConfigDict, center, scale):
    super().__init__()
    if model.traj_shape_branch != 'raster':
      raise ValueError("the peer implements the raster shape branch (the paper's) only")
    self.model, self.center, self.scale = model, center, scale
    heights = tuple(model.traj_conv_heights)
    self.point_embed = nn.Linear(2, model.point_embed)
    self.kim = SequenceCNN(model.point_embed, heights, model.traj_conv_features)
    self.position_out = nn.Linear(len(heights) * model.traj_conv_features, model.branch_dim)
    channels = 3 if model.coord_channels else 1
    self.shape = ShapeCNN(channels, tuple(model.shape_channels), model.branch_dim)

  def forward(self, points):
    m = self.model
    xy = (points - points.new_tensor(self.center)) / self.scale
    position = self.position_out(self.kim(F.relu(self.point_embed(xy))))
    lo, hi = points.amin(dim=1), points.amax(dim=1)
    side = torch.clamp((hi - lo).amax(dim=-1) * m.traj_raster_margin, min=2.0)
    corner = (lo + hi) / 2 - side[:, None] / 2
    windows = torch.cat([corner, side[:, None]], dim=-1)
    widths = points.new_full(points.shape[:1], m.traj_raster_line_width)
    raster = render_polylines(points, windows, widths, m.traj_raster_size)[:, None] / 255.0
    if m.coord_channels:
      raster = coord_channels(raster, box_from_windows(windows), self.center, self.scale)
    if self.channels_last:
      raster = raster.contiguous(memory_format=torch.channels_last)
    return torch.cat([position, self.shape(raster)], dim=-1)


class WCNN(nn.Module):
  """Full-width kernels (h x W) slid down the rows; ReLU, max over rows, concat, a Dense."""

  def __init__(self, in_channels, width, heights, features, out_dim):
    super().__init__()
    self.convs = nn.ModuleList(nn.Conv2d(in_channels, features, (h, width)) for h in heights)
    self.out = nn.Linear(len(heights) * features, out_dim)

  def forward(self, x):
    return self.out(torch.cat([F.relu(c(x)).amax(dim=(2, 3)) for c in self.convs], dim=-1))


class ImageEncoder(nn.Module):
  channels_last = False

  def __init__(self, model: ml_collections.ConfigDict, image_size: int, center, scale):
    super().__init__()
    self.model, self.center, self.scale = model, center, scale
    channels = 3 if model.coord_channels and model.use_box else 1
    self.wcnn = WCNN(
      channels, image_size, tuple(model.wcnn_heights), model.wcnn_features, model.branch_dim
    )
    self.box_embed = nn.Linear(4, model.box_embed)
    self.fuse = nn.Linear(model.branch_dim + model.box_embed, model.branch_dim)
    self.shape = ShapeCNN(channels, tuple(model.shape_channels), model.branch_dim)

  def forward(self, image, box):
    m = self.model
    x = image.float() / 255.0
    if m.use_box and m.coord_channels:
      x = coord_channels(x, box, self.center, self.scale)
    if self.channels_last:
      x = x.contiguous(memory_format=torch.channels_last)
    v = self.wcnn(x)
    if m.use_box:
      corners = (box.reshape(-1, 2, 2) - box.new_tensor(self.center)) / self.scale
      b = F.relu(self.box_embed(corners.reshape(-1, 4)))
      position = self.fuse(torch.cat([F.relu(v), b], dim=-1))
    else:
      position = v
    pooled = F.avg_pool2d(x, m.image_shape_pool) if m.image_shape_pool > 1 else x
    return torch.cat([position, self.shape(pooled)], dim=-1)


class GradientReversal(torch.autograd.Function):
  @staticmethod
  def forward(ctx, x, scale):
    ctx.scale = scale
    return x.view_as(x)

  @staticmethod
  def backward(ctx, g):
    return -ctx.scale * g, None


def l2_normalise(z, eps: float = 1e-6):
  return z / torch.sqrt((z * z).sum(dim=-1, keepdim=True) + eps)


class TrajCross(nn.Module):
  """Both encoders, the learned temperature and the modality classifier."""

  def __init__(self, config: ml_collections.ConfigDict, image_size: int, center, scale):
    super().__init__()
    m = config.model
    self.config = config
    self.trajectory = TrajectoryEncoder(m, center, scale)
    self.image = ImageEncoder(m, image_size, center, scale)
    self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.train.temperature)))
    hidden = [2 * m.branch_dim, *m.disc_hidden]
    layers = []
    for a, b in zip(hidden, hidden[1:], strict=False):
      layers += [nn.Linear(a, b), nn.ReLU()]
    self.discriminator = nn.Sequential(*layers, nn.Linear(hidden[-1], 1))

  def set_channels_last(self, on: bool) -> None:
    self.trajectory.channels_last = self.image.channels_last = on
    if on:
      self.to(memory_format=torch.channels_last)

  def embed(self, points, image, box):
    return l2_normalise(self.trajectory(points)), l2_normalise(self.image(image, box))

  def loss(self, points, image, box):
    """InfoNCE both ways + the classifier's loss (through the gradient reversal)."""
    z_t, z_i = self.embed(points, image, box)
    scale = torch.clamp(self.logit_scale.exp(), max=MAX_LOGIT_SCALE)
    logits = scale * z_t @ z_i.T
    labels = torch.arange(len(logits), device=logits.device)
    contrastive = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    weight = self.config.train.adversarial_weight
    d_t = self.discriminator(GradientReversal.apply(z_t, weight))[:, 0]
    d_i = self.discriminator(GradientReversal.apply(z_i, weight))[:, 0]
    adversarial = 0.5 * (
      F.binary_cross_entropy_with_logits(d_t, torch.ones_like(d_t))
      + F.binary_cross_entropy_with_logits(d_i, torch.zeros_like(d_i))
    )
    return contrastive + adversarial


class Trainer:
  """One TRAJCROSS train step in PyTorch: re-drawn images, forward, backward, both updates."""

  def __init__(
    self,
    config: ml_collections.ConfigDict,
    center,
    scale: float,
    image_size: int = 64,
    total_steps: int = 1000,
    variant: str = 'eager',
    device: str = 'cpu',
    autocast: torch.dtype | None = None,
  ):
    """autocast: run the forward pass under torch.autocast in this dtype (None: float32)."""
    torch.manual_seed(config.seed)
    self.config, self.image_size, self.total_steps = config, image_size, total_steps
    self.device, self.autocast = torch.device(device), autocast
    self.model = TrajCross(config, image_size, tuple(center), float(scale)).to(self.device)
    self.model.set_channels_last(variant == 'channels_last')
    t = config.train
    encoders = [p for n, p in self.model.named_parameters() if not n.startswith('discriminator')]
    decay = [p for p in encoders if p.ndim > 1]
    no_decay = [p for p in encoders if p.ndim <= 1]
    self.encoders = encoders
    self.opt_enc = torch.optim.AdamW(
      [{'params': decay, 'weight_decay': t.weight_decay}, {'params': no_decay, 'weight_decay': 0}],
      lr=t.learning_rate,
    )
    self.opt_disc = torch.optim.Adam(self.model.discriminator.parameters(), lr=t.disc_learning_rate)
    self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
    self.step_count = 0
    self.loss_fn = torch.compile(self.model.loss) if variant == 'compile' else self.model.loss

  def learning_rate(self) -> float:
    """optax.warmup_cosine_decay_schedule(0, lr, warmup, total) at the current step."""
    t = self.config.train
    warmup = max(min(t.warmup_steps, self.total_steps - 1), 0)
    step = self.step_count
    if step < warmup:
      return t.learning_rate * step / warmup
    progress = min((step - warmup) / max(self.total_steps - warmup, 1), 1.0)
    return t.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))

  def _autocast(self):
    return torch.autocast(
      self.device.type, dtype=self.autocast or torch.float32, enabled=self.autocast is not None
    )

  def step(self, points: torch.Tensor) -> torch.Tensor:
    """One update; the loss stays on the device (reading it would wait for the step)."""
    with torch.no_grad():
      image, box = redraw_images(points, self.image_size, self.generator)
    for group in self.opt_enc.param_groups:
      group['lr'] = self.learning_rate()
    self.opt_enc.zero_grad(set_to_none=True)
    self.opt_disc.zero_grad(set_to_none=True)
    with self._autocast():
      loss = self.loss_fn(points, image, box)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(self.encoders, self.config.train.grad_clip)
    self.opt_enc.step()
    self.opt_disc.step()
    self.step_count += 1
    return loss.detach()

  @torch.no_grad()
  def embed(self, points, image, box) -> tuple[torch.Tensor, torch.Tensor]:
    """Both towers without gradients (evaluation's embedding)."""
    with self._autocast():
      return self.model.embed(points, image, box)


def as_tensors(batch: dict[str, np.ndarray], device: str = 'cpu') -> dict[str, torch.Tensor]:
  """A numpy batch (NHWC images) as torch tensors (NCHW images) on `device`."""
  return {
    'trajectory': torch.from_numpy(np.array(batch['trajectory'], np.float32)).to(device),
    'image': torch.from_numpy(np.array(np.moveaxis(batch['image'], -1, 1), order='C')).to(device),
    'box': torch.from_numpy(np.array(batch['box'], np.float32)).to(device),
  }
