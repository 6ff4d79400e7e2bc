import torch


def evaluate(model, loader):
    model.eval  # switch off dropout
    with torch.no_grad():
        return [model(x).argmax(1) for x in loader]
