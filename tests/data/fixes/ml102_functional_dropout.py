import torch.nn.functional as F
from torch import nn


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(16, 32)
        self.out = nn.Linear(32, 2)

    def forward(self, x):
        x = F.relu(self.hidden(x))
        x = F.dropout(x, p=0.3)  # regularization
        return self.out(
            F.dropout(
                x,
                0.1,
            )
        )
