"""TRAJCROSS on the paper protocol (../shared/PROTOCOL.md): the project's headline config.

Every field is documented here once; variants (configs/*.py) start from this file and
change only what the variant means.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.method = 'trajcross'  # trajcross_jax.methods.METHODS key.
  config.seed = 0  # Parameter init, data order and image re-draws.

  config.data = data = ml_collections.ConfigDict()
  # tfds config of 'trajcross': 'univ' (paper protocol), 'synthetic', their hard protocol
  # 'univ_hard' and 'synthetic_hard' (README "The hard protocol"), or 'custom' (your own
  # recordings: configs/custom.py).
  data.name = 'univ'
  data.data_dir = ml_collections.config_dict.placeholder(str)  # tfds data_dir; None: default.
  # 'univ' is built from the package's copies of its three files, unless this directory holds
  # them, or download is True (a fresh copy from the pinned URLs).
  data.manual_dir = ml_collections.config_dict.placeholder(str)
  data.download = False
  data.plaza = (16.0, 14.0)  # 'synthetic': the simulated plaza's (width, height), metres.
  data.origin = (0.0, 0.0)  # 'synthetic': the plaza's lower-left corner (x, y), metres.
  data.seed = 0  # The split and image draws of PROTOCOL.md sections 3-4.
  data.window_length = 20  # M, points per trajectory.
  data.stride = 1  # Window stride along a track.
  data.train_size = 10_000  # Training pairs drawn from the train pool.
  data.test_size = 2_379  # Test pairs drawn from the test pool.
  # >0: hold this fraction of the training pedestrians out as a 'validation' split (the rest
  # trains), for choices the test split must not make (PROTOCOL.md section 5). 0: the protocol.
  data.validation_fraction = 0.0
  # The hard protocol's rules (trajcross_jax/data/hard.py; the '_hard' datasets apply hard.HARD).
  # None keeps the dataset's own rule; a value replaces it, e.g. noise_m=0.0 turns off the noise.
  data.hard = hard = ml_collections.ConfigDict()
  hard.noise_m = ml_collections.config_dict.placeholder(float)  # Per-point noise, metres.
  hard.drift_m = ml_collections.config_dict.placeholder(float)  # Drifting offset, metres.
  hard.renderer = ml_collections.config_dict.placeholder(str)  # 'line' or 'dots'.
  hard.blur_px = ml_collections.config_dict.placeholder(float)  # Gaussian blur, pixels.
  hard.pixel_noise = ml_collections.config_dict.placeholder(float)  # 0-255 levels.
  hard.background = ml_collections.config_dict.placeholder(float)  # Texture amplitude, levels.
  hard.crowd = ml_collections.config_dict.placeholder(float)  # Other paths' brightness, [0, 1).
  hard.resample_step = ml_collections.config_dict.placeholder(float)  # Image's time step; 0 off.
  data.in_memory = True  # Hold a split in host memory; False streams it from disk with grain.
  data.num_threads = 4  # grain read threads when streaming.

  config.model = model = ml_collections.ConfigDict()
  model.point_embed = 64  # Eq. (1): per-point Dense width.
  model.traj_conv_heights = (2, 3, 4, 5)  # Eq. (2): Kim-style temporal kernel heights.
  model.traj_conv_features = 64  # Eq. (2): filters per height.
  model.traj_shape_branch = 'raster'  # Eq. (3): 'raster' | 'seqcnn' (TrajCNN) | 'none'.
  # Sizes below the reference (raster 64, no pool, WCNN heights 3, 5, 7): together 2.5x
  # the training rate at the same top@1 after 8 epochs (benchmarks/results/tuning.md).
  model.traj_raster_size = 32  # Side in pixels of the trajectory's own raster.
  model.traj_raster_margin = 1.5  # Raster window side / trajectory extent.
  model.traj_raster_line_width = 2.0  # Line width in pixels of that raster.
  model.shape_channels = (32, 64, 128, 128)  # Eq. (3), (8): stride-2 3x3 conv channels.
  model.image_shape_pool = 2  # The image's shape CNN sees it averaged over blocks this wide.
  model.wcnn_heights = (3, 5)  # Eq. (5): WCNN kernel heights (width = image width).
  model.wcnn_features = 64  # Eq. (5): filters per height.
  model.box_embed = 64  # Eq. (6): box embedding width.
  model.branch_dim = 128  # Every branch's output; an embedding is 2 * branch_dim.
  model.disc_hidden = (256, 256)  # Modality classifier hidden layers.
  model.use_box = True  # False: noxy (the image tower gets no location).
  model.adversarial = True  # False: nogan (no modality classifier).
  model.coord_channels = True  # Add I*x, I*y world-coordinate channels to both rasters.
  # Positions are read in the scene frame of the training data (its centre and scale, from the
  # dataset's metadata, stored with each checkpoint): trajcross_jax/data/normalisation.py.

  config.train = train = ml_collections.ConfigDict()
  train.batch_size = 256  # Global batch (all devices of all processes).
  # Passes over the training split: 60 took 15 min on 2 shared CPU cores (the headline run); the
  # bi-encoder alone then passes the paper's Table I row, and the re-ranker takes it further.
  train.num_epochs = 60
  train.learning_rate = 3e-3  # Encoders' peak learning rate (AdamW, warmup + cosine).
  train.warmup_steps = 200  # Linear warmup of the encoders' learning rate.
  train.weight_decay = 1e-4  # AdamW decay on kernels.
  train.grad_clip = 1.0  # Global-norm clip of the encoders' gradient.
  train.disc_learning_rate = 1e-3  # The modality classifier's Adam learning rate.
  train.disc_schedule = 'constant'  # Its rate: 'constant', or 'cosine' (decays to 0 by the end).
  train.adversarial_weight = 0.1  # lambda: encoders minimise L_con - lambda * L_adv.
  # 'constant' lambda, or 'dann': lambda ramped up by 2 / (1 + exp(-10 p)) - 1 over training
  # progress p (Ganin et al.'s schedule, which ACMR always uses).
  train.adversarial_schedule = 'constant'
  train.disc_label_smoothing = 0.0  # The classifier's targets: 1 - s / 2 and s / 2.
  # Weight of a zero-centred gradient penalty on the classifier's logit at the embeddings
  # (both modalities; it trains the classifier only). 0: none.
  train.disc_gradient_penalty = 0.0
  train.temperature = 0.07  # Initial InfoNCE temperature.
  train.learn_temperature = True  # Learn 1/temperature (clipped at 100).
  train.redraw_images = True  # Re-draw training images each step (PROTOCOL.md section 8).
  # Hard datasets only (data/hard.py): the share of the training pairs, of both stages, drawn by
  # the paper protocol's rules instead (the true track and its clean line image), so that a model
  # trained on the hard protocol keeps the clean one. 0: every pair by the dataset's hard rules.
  train.clean_fraction = 0.0
  train.log_every_steps = 20  # Log and append metrics.jsonl every this many steps.
  # Evaluate config.eval.split every this many epochs and at the end, into metrics.jsonl and the
  # curves PNG (about 2 s on 2 cores for the 2,379 test pairs). 0: never during training.
  train.eval_every_epochs = 10
  train.checkpoint_every_steps = 500  # Save a checkpoint every this many steps (and at the end).
  train.keep_checkpoints = 3  # How many checkpoints to keep.

  # The second stage (trajcross_jax/rerank, README "Re-ranking"): a cross-encoder trained after
  # the bi-encoder on its hardest candidates of the training split; eval, search and serve then
  # re-order the bi-encoder's top `candidates` by it. Choices: benchmarks/results/tuning.md.
  config.rerank = rerank = ml_collections.ConfigDict()
  rerank.enabled = True  # False: the bi-encoder alone (the paper's system).
  # K: the bi-encoder's results it re-orders. Set on a trained re-ranker (--mode=rerank), it only
  # rewrites its record.
  rerank.candidates = 20
  rerank.hard_pool = 20  # Training negatives come from the bi-encoder's top this many.
  rerank.group = 8  # A training group: the true pair and group - 1 hard negatives.
  rerank.batch_size = 64  # Groups per step.
  rerank.num_epochs = 3  # Passes over the training split, each pair once as each modality.
  rerank.learning_rate = 2e-3  # AdamW peak, warmup + cosine.
  rerank.warmup_steps = 50
  # 'pair': a CNN over the trajectory drawn beside the image (CrossEncoder); 'track': the track
  # read off the image and the trajectory scored by its distance to it (TrackMatcher).
  rerank.scorer = 'pair'
  rerank.hypotheses = 2  # 'track': tracks read off each image.
  # 'track': the weight of the true pairs' negative log likelihood (per coordinate) in the loss,
  # beside the group's cross-entropy. It teaches the reading of the track directly; 0: none.
  rerank.nll_weight = 0.0
  rerank.stem = 0  # >0: a stride-1 3x3 convolution of this many channels first; 0: none.
  rerank.channels = (16, 32, 64, 64)  # Stride-2 3x3 convolutions over the pair's 2 channels.
  rerank.hidden = 64  # The scoring MLP's hidden width.
  rerank.line_width = 2.0  # Pixels: the trajectory's line drawn in the candidate's box.
  rerank.endpoint_width = 0.0  # >0: its first and last points drawn too, as dots this wide.
  # >0: the first two convolutions' feature maps also read (bilinear) at the trajectory's points
  # and 3 more continuing each end, each point's features mapped to this many and kept in order
  # beside the pooled ones ('pair' scorer). 0: pooled features only.
  rerank.point_features = 0
  # The order of the re-ranked head: the cross-encoder's score plus this weight times the
  # bi-encoder's (a cosine). 0: the cross-encoder alone. Setting it on a trained re-ranker
  # (--mode=rerank) rewrites its record without training it again.
  rerank.bi_weight = 0.0
  # Draw the training pairs afresh each epoch (the images; on hard datasets the observations too)
  # rather than train on the stored ones. False: as the committed runs were made.
  rerank.redraw_images = False
  # With redraw_images on a hard dataset: the share of those pairs drawn by the paper protocol's
  # rules instead (as train.clean_fraction does for the bi-encoder). 0: all by the hard rules.
  rerank.clean_fraction = 0.0

  config.eval = ml_collections.ConfigDict()
  config.eval.batch_size = 512  # Embedding batch; the last one is padded and masked.
  config.eval.split = 'test'  # 'test' (the protocol) or 'validation' (data.validation_fraction).
  config.eval.step = -1  # Checkpoint step to evaluate; -1: the latest.
  # --mode=eval's results file; None: WORKDIR/eval/results.json. Another path keeps the run's own
  # results when its checkpoint is scored on another dataset (benchmarks/hard.py).
  config.eval.results = ml_collections.config_dict.placeholder(str)
  config.eval.near_duplicate_m = 0.3  # PROTOCOL.md section 5 near-duplicate threshold.
  # The scene frame in which a checkpoint reads the evaluated dataset: 'train' (the frame it was
  # trained in) or 'target' (the evaluated dataset's own). README: "Another scene".
  config.eval.normalisation = 'train'

  # Search (README "Search"): embed a gallery, index it, query it.
  config.embed = embed = ml_collections.ConfigDict()
  embed.split = 'test'  # The gallery: this split of config.data ('train', 'test', 'validation').
  embed.dir = ''  # The embedding directory; '': WORKDIR/galleries/<dataset config>-<split>.
  embed.shard_size = 100_000  # Items per shard.
  embed.dtype = 'float32'  # Stored embeddings: 'float32' or 'float16'.
  embed.modalities = ('trajectory', 'image')  # Which towers to run over the gallery.
  embed.batch_size = 1024  # Items per jitted call.

  config.index = index = ml_collections.ConfigDict()
  index.dir = ''  # The embedding directory to index; '': embed.dir's.
  index.modality = (
    'image'  # What the index holds: 'image' (for trajectory queries) or 'trajectory'.
  )
  index.kind = 'exact'  # 'exact' (blocked matmul + top-k on the device) or 'faiss'.
  index.factory = ''  # 'faiss': a FAISS factory string; '': chosen under max_memory_mb.
  index.max_memory_mb = 4096.0  # 'faiss': the index's memory budget.
  index.num_queries = 1000  # Held-out queries that measure recall@10 against exact search.
  index.target_recall = 0.95  # 'faiss': raise nprobe / efSearch until recall@10 reaches this.
  # 'faiss' with lossy codes (8-bit scalars, product codes): re-score refine x k candidates a
  # query with the stored embeddings (memory-mapped shards); 0: off.
  index.refine = 10

  config.search = search = ml_collections.ConfigDict()
  search.index = ''  # An index directory; '': <index.dir>/index-<index.modality>-<index.kind>.
  search.queries = ''  # A query file: trajectories (.json, or frame ped x y) or images (.csv).
  search.split = ''  # Without a file: queries from this split of the gallery's dataset ...
  search.ids = (0, 1, 2, 3)  # ... these items of it.
  search.k = 10  # Results per query.
  search.out = ''  # Where results go; '': WORKDIR/search.
  search.grid = True  # Also draw results.png.

  config.serve = serve = ml_collections.ConfigDict()
  serve.indexes = ()  # NAME=EMBEDDINGS_DIR entries (each indexed by --mode=index).
  serve.host = '127.0.0.1'
  serve.port = 8000
  return config
