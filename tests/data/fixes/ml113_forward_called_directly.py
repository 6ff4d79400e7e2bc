import torch
from torch import nn


def embed(batch):
    encoder = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
    with torch.no_grad():
        return encoder.forward(batch)
