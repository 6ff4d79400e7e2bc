import torch


def restore(model, path):
    state = torch.load(path, map_location="cpu")
    model.load_state_dict(state)
    extra = torch.load(
        path + ".extra",
        map_location="cpu",
    )
    return extra
