def freeze(backbone):
    for param in backbone.parameters():
        param.require_grad = False
