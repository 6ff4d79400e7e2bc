import torch
import torch.nn.functional as F


def log_probabilities(logits, gates):
    per_class = torch.log(F.softmax(logits, dim=-1))  # per class
    per_token = logits.softmax(dim=1).log()
    gate = torch.log(F.sigmoid(gates))
    return per_class, per_token, gate
