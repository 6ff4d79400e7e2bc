import torch.nn.functional as F
from torch import nn

criterion = nn.CrossEntropyLoss()


def train_step(model, x, y):
    # the loss normalizes its input itself
    return criterion(F.softmax(model(x), dim=1), y)


def bce_step(head, x, y):
    return nn.BCEWithLogitsLoss()(head(x).sigmoid(), y)
