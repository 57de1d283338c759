"""The conv job written as one plain PyTorch script, for comparison with `kedro run --pipeline conv`.

Reads the CSVs, scales to [0, 1], makes a stratified split, trains the same net with the same
optimiser, schedule, augmentation, batch size and epochs, predicts the test rows and writes a
submission. No project code is imported.

    python benchmarks/plain_script.py RAW_DIR OUT_CSV [--arch conv|mlp|linear] [--epochs 5]
"""

import argparse
import json
import math
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("raw_dir")
parser.add_argument("out_csv")
parser.add_argument("--arch", default="conv", choices=["conv", "mlp", "linear"])
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--no-augment", action="store_true", help="train on the images as they are")
parser.add_argument("--epoch-times", help="write the per-epoch seconds here as JSON")
args = parser.parse_args()
torch.manual_seed(0)

train = pd.read_csv(f"{args.raw_dir}/train.csv")
test = pd.read_csv(f"{args.raw_dir}/test.csv")
labels = train["label"].to_numpy()
images = torch.tensor(train.drop(columns="label").to_numpy() / 255, dtype=torch.float32).reshape(-1, 1, 28, 28)
test_images = torch.tensor(test.to_numpy() / 255, dtype=torch.float32).reshape(-1, 1, 28, 28)
train_rows, valid_rows = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=labels, random_state=42)
x, y = images[train_rows], torch.tensor(labels[train_rows])
vx, vy = images[valid_rows], torch.tensor(labels[valid_rows])


def conv(ni, nf, last=False):
    layers = [nn.Conv2d(ni, nf, 3, stride=2, padding=1)]
    return layers if last else layers + [nn.BatchNorm2d(nf), nn.ReLU()]


nets = {
    "conv": lambda: nn.Sequential(
        *conv(1, 4), *conv(4, 16), *conv(16, 32), *conv(32, 64), *conv(64, 10, last=True), nn.Flatten()
    ),
    "mlp": lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 30), nn.ReLU(), nn.Linear(30, 10)),
    "linear": lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 10)),
}
model = nets[args.arch]()
batch_size, steps = 256, math.ceil(len(x) / 256)
optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-3)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps)
generator = torch.Generator().manual_seed(0)


def augment(batch):  # random rotation ±10°, shift ±10 %, scale ±10 %
    d = torch.rand(len(batch), 4, generator=generator) * 2 - 1
    angle, scale = d[:, 0] * math.radians(10), 1 + d[:, 1] * 0.1
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, d[:, 2] * 0.2], 1), torch.stack([sin, cos, d[:, 3] * 0.2], 1)], 1)
    return F.grid_sample(batch, F.affine_grid(theta, list(batch.shape), align_corners=False), align_corners=False)


epoch_times = []
for epoch in range(args.epochs):
    start = time.perf_counter()
    model.train()
    total = 0.0
    for idx in torch.randperm(len(x), generator=generator).split(batch_size):
        batch = x[idx] if args.no_augment else augment(x[idx])
        loss = F.cross_entropy(model(batch), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(idx)
    model.eval()
    with torch.no_grad():
        accuracy = (model(vx).argmax(1) == vy).float().mean().item()
    epoch_times.append(time.perf_counter() - start)
    print(f"{epoch} {total / len(x):.4f} {accuracy:.4f} {epoch_times[-1]:.1f}s")

with torch.no_grad():
    predictions = model(test_images).argmax(1).numpy()
pd.DataFrame({"ImageId": np.arange(1, len(predictions) + 1), "Label": predictions}).to_csv(args.out_csv, index=False)
if args.epoch_times:
    with open(args.epoch_times, "w") as f:
        json.dump(epoch_times, f)
