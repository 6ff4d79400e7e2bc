import torch.nn.functional as F
from torch import nn


def classify(features, labels):
    head = nn.Linear(32, 10)
    scores = head(features)
    return F.nll_loss(scores, labels)  # per-batch mean
