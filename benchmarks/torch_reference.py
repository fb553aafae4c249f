"""A clean-room PyTorch reference of the paper's models and training, for benchmarks only.

Same models (MLP 1x512 / 3x512, small AlexNet with TF-semantics LRN, small Inception with
shift-only batch-norm), the same SGD with heavy-ball momentum 0.9, staircase decay, batch
size, preprocessing (center crop, per-image whitening) and fixed random labels. Two forms:

- typical: a torch.utils.data.Dataset with per-sample transforms and a DataLoader, the way
  published PyTorch reproductions of this paper are written;
- optimized: the preprocessed data preloaded as one tensor, batches by indexing, no
  DataLoader, optionally torch.compile;
- expert: what a PyTorch performance engineer writes -- data and the epoch permutation on the
  device with the batch gather inside the step, fused SGD, TF32, channels_last (conv nets),
  cudnn.benchmark, and on a GPU the whole step (gather, forward, backward, SGD update)
  captured once as a CUDA graph and replayed; optionally torch.compile.

Installed with the `torch` extra: pip install -e '.[torch]'.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn

LRN = dict(depth_radius=4, bias=1.0, alpha=0.001 / 9.0, beta=0.75)


class TFLocalResponseNorm(nn.Module):
  """tf.nn.local_response_normalization (alpha not divided by the window, unlike torch's)."""

  def forward(self, x):  # NCHW
    r = LRN["depth_radius"]
    sq = nn.functional.pad(x * x, (0, 0, 0, 0, r, r))
    sqr_sum = sum(sq[:, i:i + x.shape[1]] for i in range(2 * r + 1))
    return x / (LRN["bias"] + LRN["alpha"] * sqr_sum) ** LRN["beta"]


def mlp(widths, in_features, num_classes=10):
  layers, prev = [nn.Flatten()], in_features
  for w in widths:
    layers += [nn.Linear(prev, w), nn.ReLU()]
    prev = w
  return nn.Sequential(*layers, nn.Linear(prev, num_classes))


def alexnet_small(in_shape, num_classes=10):
  c, h, w = in_shape
  pooled = math.ceil(math.ceil(h / 2) / 2) * math.ceil(math.ceil(w / 2) / 2)
  block = lambda cin: [nn.Conv2d(cin, 64, 5, padding=2), nn.ReLU(),
                       nn.MaxPool2d(3, 2, padding=1), TFLocalResponseNorm()]
  return nn.Sequential(*block(c), *block(64), nn.Flatten(), nn.Linear(64 * pooled, 384),
                       nn.ReLU(), nn.Linear(384, 192), nn.ReLU(), nn.Linear(192, num_classes))


class ConvUnit(nn.Module):
  def __init__(self, cin, cout, k, stride=1):
    super().__init__()
    self.conv = nn.Conv2d(cin, cout, k, stride, padding=k // 2, bias=False)
    self.bn = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.001, affine=False)
    self.shift = nn.Parameter(torch.zeros(cout))

  def forward(self, x):
    return torch.relu(self.bn(self.conv(x)) + self.shift[None, :, None, None])


class Inception(nn.Module):
  def __init__(self, cin, c1, c3):
    super().__init__()
    self.a, self.b = ConvUnit(cin, c1, 1), ConvUnit(cin, c3, 3)

  def forward(self, x):
    return torch.cat([self.a(x), self.b(x)], 1)


class Downsample(nn.Module):
  def __init__(self, cin, c3):
    super().__init__()
    self.conv = ConvUnit(cin, c3, 3, 2)
    self.pool = nn.MaxPool2d(3, 2, padding=1)

  def forward(self, x):
    return torch.cat([self.conv(x), self.pool(x)], 1)


def inception_small(in_shape, num_classes=10):
  return nn.Sequential(
      ConvUnit(in_shape[0], 96, 3), Inception(96, 32, 32), Inception(64, 32, 48),
      Downsample(80, 80), Inception(160, 112, 48), Inception(160, 96, 64),
      Inception(160, 80, 80), Inception(160, 48, 96), Downsample(144, 96),
      Inception(240, 176, 160), Inception(336, 176, 160), nn.AdaptiveAvgPool2d(1),
      nn.Flatten(), nn.Linear(336, num_classes))


def build(name, in_shape, num_classes=10):
  c, h, w = in_shape
  return {"mlp_1x512": lambda: mlp((512,), c * h * w, num_classes),
          "mlp_3x512": lambda: mlp((512, 512, 512), c * h * w, num_classes),
          "alexnet_small": lambda: alexnet_small(in_shape, num_classes),
          "inception_small": lambda: inception_small(in_shape, num_classes)}[name]()


def preprocess(images_u8: np.ndarray, crop: int | None) -> np.ndarray:
  """/255, center crop, per-image whitening -> float32 NCHW."""
  x = images_u8.astype(np.float32) / 255.0
  if crop and min(x.shape[1:3]) > crop:
    top, left = (x.shape[1] - crop) // 2, (x.shape[2] - crop) // 2
    x = x[:, top:top + crop, left:left + crop]
  n = np.prod(x.shape[1:])
  mean = x.mean(axis=(1, 2, 3), keepdims=True)
  std = np.maximum(x.std(axis=(1, 2, 3), keepdims=True), 1 / np.sqrt(n))
  return np.ascontiguousarray(((x - mean) / std).transpose(0, 3, 1, 2), dtype=np.float32)


class PerSampleDataset(torch.utils.data.Dataset):
  """The typical form: preprocessing per sample in __getitem__."""

  def __init__(self, images_u8, labels, crop):
    self.images, self.labels, self.crop = images_u8, labels, crop

  def __len__(self):
    return len(self.labels)

  def __getitem__(self, i):
    x = preprocess(self.images[i:i + 1], self.crop)[0]
    return torch.from_numpy(x), int(self.labels[i])


def _sgd(model, lr, momentum=0.9):
  return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)


def train_to_memorize(form: str, model_name: str, images_u8, labels, *, batch_size=128,
                      lr=0.1, lr_decay=1.0, max_epochs=100, crop=28, seed=0,
                      compile_model=False, threads=None, bfloat16=False):
  """Trains until 100% train accuracy (eval mode, full set) or max_epochs.

  Returns {"time_to_memorize", "epochs", "examples_per_second", "warmup_seconds", ...}.
  Timed as the JAX rows are (benchmarks/memorization.py): every epoch counts, the first one
  included, with its first-call costs; only compilation is left out -- here torch.compile's,
  estimated as the first epoch's excess over a steady epoch (JAX compiles ahead of time).
  """
  if threads:
    torch.set_num_threads(threads)
  torch.manual_seed(seed)
  device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
  eval_x = torch.from_numpy(preprocess(images_u8, crop)).to(device)
  eval_y = torch.from_numpy(labels.astype(np.int64)).to(device)
  model = build(model_name, tuple(eval_x.shape[1:])).to(device)
  opt = _sgd(model, lr)
  sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=lr_decay)
  step_fn = model
  if compile_model:
    step_fn = torch.compile(model)
  loss_fn = nn.CrossEntropyLoss()
  n = len(labels)
  steps = n // batch_size
  g = torch.Generator().manual_seed(seed)
  if form == "typical":
    loader = torch.utils.data.DataLoader(PerSampleDataset(images_u8, labels, crop),
                                         batch_size=batch_size, shuffle=True, drop_last=True,
                                         generator=g)

  def batches():
    if form == "typical":
      for x, y in loader:
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    else:
      perm = torch.randperm(n, generator=g).to(device)
      for s in range(steps):
        idx = perm[s * batch_size:(s + 1) * batch_size]
        yield eval_x[idx], eval_y[idx]

  def train_accuracy():
    model.eval()
    with torch.no_grad():
      correct = sum(int((step_fn(eval_x[i:i + 1000]).argmax(1) == eval_y[i:i + 1000]).sum())
                    for i in range(0, n, 1000))
    model.train()
    return correct / n

  if form == "expert":
    run_epoch = _expert_epochs(model, step_fn, eval_x, eval_y, batch_size, lr, lr_decay, g,
                               bfloat16)
  else:
    def run_epoch(epoch):
      del epoch
      for x, y in batches():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16):
          loss = loss_fn(step_fn(x), y)
        loss.backward()
        opt.step()
      sched.step()

  train_seconds = warmup = 0.0
  acc, epoch = 0.0, 0
  for epoch in range(1, max_epochs + 1):
    start = time.perf_counter()
    run_epoch(epoch)
    if device.type == "cuda":
      torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    if epoch == 1:
      warmup = elapsed
    else:
      train_seconds += elapsed
    if device.type == "cuda":
      torch.cuda.synchronize()
    acc = train_accuracy()
    if acc >= 1.0:
      break
  steady = train_seconds / (epoch - 1) if epoch > 1 else warmup
  # Only torch.compile's cost is left out (the JAX rows leave out their compilation); a
  # first epoch's other first-call costs count, as they do for JAX's first execution.
  overhead = max(0.0, warmup - steady) if compile_model else 0.0
  time_to_memorize = warmup - overhead + train_seconds
  return {"form": form, "model": model_name, "memorized": acc >= 1.0, "epochs": epoch,
          "cuda_graph": form == "expert" and device.type == "cuda",
          "final_train_acc": acc, "warmup_seconds": overhead,
          "time_to_memorize": time_to_memorize, "steady_epoch_seconds": steady,
          "examples_per_second": steps * batch_size * epoch / max(time_to_memorize, 1e-9)}


def _fused_sgd(params, lr, momentum=0.9):
  """SGD with one fused kernel for all parameters (its lr a tensor, so a captured graph
  reads the current value); the foreach form where this torch has no fused SGD."""
  try:
    return torch.optim.SGD(params, lr=lr, momentum=momentum, fused=True)
  except (RuntimeError, TypeError, ValueError):
    return torch.optim.SGD(params, lr=lr, momentum=momentum, foreach=True)


def _expert_epochs(model, step_fn, data_x, data_y, batch_size, lr, lr_decay, generator,
                   bfloat16):
  """The expert form's epoch: returns run_epoch(epoch) training one epoch.

  Everything stays on the device: the epoch's permutation is drawn on the host generator (the
  same draws as the other forms) and copied once; each step gathers its batch from the
  resident data by an index buffer. On CUDA the step -- gather, forward, backward, fused SGD --
  is captured as one CUDA graph after a few warm-up steps on a side stream (the documented
  whole-network capture recipe) and replayed, so a step costs one launch.
  """
  device = data_x.device
  cuda = device.type == "cuda"
  if cuda:
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
  if data_x.dim() == 4:  # conv nets: NHWC kernels
    model.to(memory_format=torch.channels_last)
    data_x = data_x.contiguous(memory_format=torch.channels_last)
  lr_t = torch.tensor(lr, dtype=torch.float32, device=device)
  opt = _fused_sgd(model.parameters(), lr_t)
  loss_fn = nn.CrossEntropyLoss()
  n = len(data_y)
  steps = n // batch_size
  index = torch.zeros(batch_size, dtype=torch.long, device=device)

  def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16):
      loss = loss_fn(step_fn(data_x[index]), data_y[index])
    loss.backward()
    opt.step()

  graph = None
  if cuda:
    # warm-up on a side stream (allocations, cudnn.benchmark's search, the momentum
    # buffers), then capture; the warm-up steps train too, as in the other forms' first epoch
    index.copy_(torch.randperm(n, generator=generator)[:batch_size].to(device))
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
      for _ in range(3):
        step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
      with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16):
        loss = loss_fn(step_fn(data_x[index]), data_y[index])
      loss.backward()
      opt.step()

  def run_epoch(epoch):
    lr_t.fill_(lr * lr_decay ** (epoch - 1))  # the staircase, read by the captured step
    perm = torch.randperm(n, generator=generator).to(device, non_blocking=True)
    for s in range(steps):
      index.copy_(perm[s * batch_size:(s + 1) * batch_size], non_blocking=True)
      if graph is not None:
        graph.replay()
      else:
        step()

  return run_epoch
