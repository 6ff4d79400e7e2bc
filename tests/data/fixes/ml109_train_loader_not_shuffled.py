import torch
from torch.utils.data import DataLoader


def train(model, train_set, optimizer, loss_fn):
    loader = DataLoader(train_set, batch_size=64, num_workers=2)
    for x, y in loader:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()


def train_more(model, train_set, optimizer, loss_fn):
    loader = DataLoader(train_set, 32, False)
    for x, y in loader:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    torch.save(model.state_dict(), "model.pt")
