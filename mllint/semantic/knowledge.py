"""What the engine knows about the ML libraries, by qualified name.

Rules ask questions such as "is this an optimizer?" instead of matching spellings. Public aliases
(``torch.nn.CrossEntropyLoss`` and ``torch.nn.modules.loss.CrossEntropyLoss``) are normalized here.
"""

from __future__ import annotations

import functools

_ALIASES = {
    "torch.nn.modules.loss.": "torch.nn.",
    "torch.nn.modules.activation.": "torch.nn.",
    "torch.nn.modules.module.": "torch.nn.",
    "torch.nn.modules.container.": "torch.nn.",
    "torch.optim.optimizer.": "torch.optim.",
    "torch.cuda.amp.": "torch.amp.",
    "torch.cuda.amp.grad_scaler.": "torch.amp.",
    "torch.amp.grad_scaler.": "torch.amp.",
    "torch.nn.parallel.distributed.": "torch.nn.parallel.",
    "torch.nn.parallel.data_parallel.": "torch.nn.parallel.",
    "torch.nn.DataParallel": "torch.nn.parallel.DataParallel",
    "keras.src.": "keras.",
    "tensorflow.keras.models.": "keras.",
    "tensorflow.keras.": "keras.",
    "tf.keras.": "keras.",
    "keras.models.": "keras.",
}

_OPTIMIZER_PREFIXES = ("torch.optim.", "transformers.optimization.", "timm.optim.", "apex.optimizers.")
_SCHEDULER_PREFIXES = ("torch.optim.lr_scheduler.", "timm.scheduler.")
_SCHEDULER_FACTORIES = (
    "transformers.get_linear_schedule_with_warmup",
    "transformers.get_cosine_schedule_with_warmup",
    "transformers.get_scheduler",
    "transformers.optimization.get_linear_schedule_with_warmup",
    "transformers.optimization.get_cosine_schedule_with_warmup",
    "transformers.optimization.get_scheduler",
    "diffusers.optimization.get_scheduler",
)
#: optimizer class names, whatever library defines them (transformers.AdamW, bitsandbytes ...)
_OPTIMIZER_NAMES = {
    "Adam", "AdamW", "SGD", "Adafactor", "Lamb", "LAMB", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam",
    "RAdam", "LBFGS", "Lion", "Adam8bit", "AdamW8bit", "PagedAdamW", "FusedAdam", "FusedLAMB", "SparseAdam",
    "ASGD", "Rprop", "Muon", "Shampoo",
}  # fmt: skip
_NOT_OPTIMIZERS = {"torch.optim.Optimizer", "torch.optim.lr_scheduler", "torch.optim.swa_utils"}

#: losses that apply (log_)softmax / sigmoid to their input themselves
LOGIT_LOSSES = {
    "torch.nn.CrossEntropyLoss": "softmax",
    "torch.nn.functional.cross_entropy": "softmax",
    "torch.nn.BCEWithLogitsLoss": "sigmoid",
    "torch.nn.functional.binary_cross_entropy_with_logits": "sigmoid",
    "torch.nn.MultiLabelSoftMarginLoss": "sigmoid",
    "torch.nn.functional.multilabel_soft_margin_loss": "sigmoid",
    "optax.softmax_cross_entropy": "softmax",
    "optax.softmax_cross_entropy_with_integer_labels": "softmax",
    "optax.sigmoid_binary_cross_entropy": "sigmoid",
}
#: losses that expect log-probabilities
LOG_PROB_LOSSES = {
    "torch.nn.NLLLoss",
    "torch.nn.functional.nll_loss",
    "torch.nn.KLDivLoss",
    "torch.nn.functional.kl_div",
}
#: losses that expect probabilities
PROB_LOSSES = {"torch.nn.BCELoss", "torch.nn.functional.binary_cross_entropy"}

#: normalizing activations, by the kind of normalization they apply
ACTIVATIONS = {
    "torch.softmax": "softmax",
    "torch.nn.functional.softmax": "softmax",
    "torch.Tensor.softmax": "softmax",
    "torch.nn.Softmax": "softmax",
    "torch.log_softmax": "log_softmax",
    "torch.nn.functional.log_softmax": "log_softmax",
    "torch.nn.LogSoftmax": "log_softmax",
    "torch.sigmoid": "sigmoid",
    "torch.nn.functional.sigmoid": "sigmoid",
    "torch.nn.Sigmoid": "sigmoid",
    "jax.nn.softmax": "softmax",
    "jax.nn.log_softmax": "log_softmax",
    "jax.nn.sigmoid": "sigmoid",
    "flax.linen.softmax": "softmax",
    "flax.linen.log_softmax": "log_softmax",
    "flax.linen.sigmoid": "sigmoid",
    "tensorflow.nn.softmax": "softmax",
    "tensorflow.nn.log_softmax": "log_softmax",
    "tensorflow.nn.sigmoid": "sigmoid",
    "tensorflow.sigmoid": "sigmoid",
    "tensorflow.math.softmax": "softmax",
    "tensorflow.math.log_softmax": "log_softmax",
    "tensorflow.math.sigmoid": "sigmoid",
    "keras.activations.softmax": "softmax",
    "keras.activations.log_softmax": "log_softmax",
    "keras.activations.sigmoid": "sigmoid",
    "keras.ops.softmax": "softmax",
    "keras.ops.log_softmax": "log_softmax",
    "keras.ops.sigmoid": "sigmoid",
    "keras.layers.Softmax": "softmax",
}
#: Keras layers' ``activation=`` strings that normalize
KERAS_ACTIVATION_NAMES = {"softmax": "softmax", "log_softmax": "log_softmax", "sigmoid": "sigmoid"}
#: Keras losses that normalize their input themselves when built with ``from_logits=True``
KERAS_LOGIT_LOSSES = {
    "keras.losses.CategoricalCrossentropy": "softmax",
    "keras.losses.SparseCategoricalCrossentropy": "softmax",
    "keras.losses.BinaryCrossentropy": "sigmoid",
    "keras.losses.BinaryFocalCrossentropy": "sigmoid",
    "keras.losses.CategoricalFocalCrossentropy": "softmax",
    "keras.losses.categorical_crossentropy": "softmax",
    "keras.losses.sparse_categorical_crossentropy": "softmax",
    "keras.losses.binary_crossentropy": "sigmoid",
    "keras.metrics.categorical_crossentropy": "softmax",
    "keras.metrics.sparse_categorical_crossentropy": "softmax",
    "keras.metrics.binary_crossentropy": "sigmoid",
}
#: layers and functions whose output is an affine map of their input: raw scores (logits) when
#: nothing is applied after them
AFFINE = {
    "torch.nn.Linear", "torch.nn.LazyLinear", "torch.nn.Bilinear", "torch.nn.Conv1d", "torch.nn.Conv2d",
    "torch.nn.Conv3d", "torch.nn.ConvTranspose1d", "torch.nn.ConvTranspose2d", "torch.nn.ConvTranspose3d",
    "torch.nn.LazyConv1d", "torch.nn.LazyConv2d", "torch.nn.LazyConv3d", "torch.nn.functional.linear",
    "torch.nn.functional.bilinear", "torch.nn.functional.conv1d", "torch.nn.functional.conv2d",
    "torch.nn.functional.conv3d",
}  # fmt: skip
#: tensor methods with the same meaning (``x.softmax(dim=1)``)
ACTIVATION_METHODS = {"softmax": "softmax", "log_softmax": "log_softmax", "sigmoid": "sigmoid"}

MODULE_BASES = {
    "torch.nn.Module",
    "torch.nn.Sequential",
    "torch.nn.ModuleList",
    "lightning.LightningModule",
    "lightning.pytorch.LightningModule",
    "pytorch_lightning.LightningModule",
    "transformers.PreTrainedModel",
    "flax.linen.Module",
    "keras.Model",
    "keras.Sequential",
    "keras.layers.Layer",
}
#: the bases of PyTorch modules (their submodules are registered by attribute assignment)
TORCH_MODULE_BASES = {base for base in MODULE_BASES if not base.startswith(("flax.", "keras."))}
#: ``torch.nn`` modules that hold no parameters or buffers
_PARAMETER_FREE = (
    "ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh", "Softmax",
    "LogSoftmax", "Softmin", "Softplus", "Softsign", "Hardtanh", "Hardswish", "Hardsigmoid", "Identity",
    "Flatten", "Unflatten", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "MaxPool1d",
    "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "Upsample",
    "PixelShuffle", "PixelUnshuffle",
)  # fmt: skip
LIGHTNING_BASES = {
    "lightning.LightningModule",
    "lightning.pytorch.LightningModule",
    "pytorch_lightning.LightningModule",
    "pl.LightningModule",
}
GRAD_SCALERS = {"torch.amp.GradScaler"}

SKLEARN_TRANSFORMER_MODULES = (
    "sklearn.preprocessing.",
    "sklearn.impute.",
    "sklearn.feature_selection.",
    "sklearn.feature_extraction.",
    "sklearn.decomposition.",
    "sklearn.random_projection.",
    "sklearn.kernel_approximation.",
    "sklearn.manifold.",
)
SKLEARN_SPLITTERS = {
    "sklearn.model_selection.train_test_split",
    "sklearn.cross_validation.train_test_split",
}
SKLEARN_CV = {
    "sklearn.model_selection.cross_val_score",
    "sklearn.model_selection.cross_validate",
    "sklearn.model_selection.cross_val_predict",
    "sklearn.model_selection.GridSearchCV",
    "sklearn.model_selection.RandomizedSearchCV",
    "sklearn.model_selection.HalvingGridSearchCV",
    "sklearn.model_selection.learning_curve",
    "sklearn.model_selection.validation_curve",
    "sklearn.model_selection.permutation_test_score",
}
SKLEARN_PIPELINES = {
    "sklearn.pipeline.Pipeline",
    "sklearn.pipeline.make_pipeline",
    "imblearn.pipeline.Pipeline",
    "imblearn.pipeline.make_pipeline",
    "sklearn.compose.ColumnTransformer",
    "sklearn.compose.make_column_transformer",
}


@functools.lru_cache(maxsize=8192)  # asked for the same few hundred names, by every rule, on every call
def normalize(qualname: str) -> str:
    """The public name of an API reached through an internal module path or a re-export."""
    for prefix, public in _ALIASES.items():
        if qualname.startswith(prefix):
            return public + qualname[len(prefix) :]
    return qualname


def is_optimizer_class(qualname: str) -> bool:
    qualname = normalize(qualname)
    if qualname in _NOT_OPTIMIZERS or qualname.startswith(_SCHEDULER_PREFIXES):
        return False
    tail = qualname.rsplit(".", 1)[-1]
    return tail in _OPTIMIZER_NAMES or (qualname.startswith(_OPTIMIZER_PREFIXES) and tail[:1].isupper())


def is_scheduler_class(qualname: str) -> bool:
    qualname = normalize(qualname)
    tail = qualname.rsplit(".", 1)[-1]
    if qualname in _SCHEDULER_FACTORIES:
        return True
    return qualname.startswith(_SCHEDULER_PREFIXES) and tail[:1].isupper()


def is_plateau_scheduler(qualname: str) -> bool:
    return normalize(qualname).endswith("ReduceLROnPlateau")


def is_grad_scaler(qualname: str) -> bool:
    return normalize(qualname) in GRAD_SCALERS


def is_loss(qualname: str) -> bool:
    qualname = normalize(qualname)
    if qualname in LOGIT_LOSSES or qualname in LOG_PROB_LOSSES or qualname in PROB_LOSSES:
        return True
    tail = qualname.rsplit(".", 1)[-1]
    if qualname.startswith("torch.nn.functional."):
        return tail.endswith("_loss") or tail in {"cross_entropy", "binary_cross_entropy", "kl_div"}
    return qualname.startswith("torch.nn.") and tail.endswith("Loss")


def activation_kind(qualname: str) -> str | None:
    return ACTIVATIONS.get(normalize(qualname))


def output_kind(qualname: str) -> str | None:
    """What a layer or function's output is: an activation's kind, ``"logits"`` for an affine
    layer, None for anything else."""
    qualname = normalize(qualname)
    return ACTIVATIONS.get(qualname) or ("logits" if qualname in AFFINE else None)


def is_sklearn_transformer(qualname: str) -> bool:
    tail = qualname.rsplit(".", 1)[-1]
    return qualname.startswith(SKLEARN_TRANSFORMER_MODULES) and tail[:1].isupper()


#: layers that behave differently in train and eval mode
_MODE_DEPENDENT = (
    "torch.nn.Dropout", "torch.nn.AlphaDropout", "torch.nn.FeatureAlphaDropout", "torch.nn.BatchNorm",
    "torch.nn.SyncBatchNorm", "torch.nn.InstanceNorm", "torch.nn.functional.dropout",
    "torch.nn.functional.alpha_dropout", "torch.nn.functional.batch_norm", "torch.nn.Transformer",
    "torch.nn.MultiheadAttention", "torch.nn.LSTM", "torch.nn.GRU", "torch.nn.RNN", "torch.nn.LazyBatchNorm",
)  # fmt: skip
#: model families known to contain such layers
_MODEL_LIBRARIES = (
    "torchvision.models.",
    "timm.",
    "transformers.",
    "torchaudio.models.",
    "segmentation_models_pytorch.",
)


def is_mode_dependent(qualname: str) -> bool | None:
    """True for a layer whose behaviour depends on train/eval mode, False for one known not to,
    None for a name this table does not know (a project class, another library's class)."""
    qualname = normalize(qualname)
    if qualname.startswith(_MODE_DEPENDENT) or qualname.startswith(_MODEL_LIBRARIES):
        return True
    if qualname.startswith(("torch.", "math.", "numpy.", "builtins.")):
        return False
    return None


def is_parameterless_layer(qualname: str) -> bool:
    """A ``torch.nn`` module known to hold no parameters or buffers (an activation, a pooling
    layer, a loss without weights): leaving it unregistered or out of an optimizer loses nothing."""
    qualname = normalize(qualname)
    if not qualname.startswith("torch.nn.") or qualname.count(".") != 2:
        return False
    return qualname.rsplit(".", 1)[-1] in _PARAMETER_FREE or is_loss(qualname)


DATA_LOADERS = {
    "torch.utils.data.DataLoader",
    "torch.utils.data.dataloader.DataLoader",
    "torch_geometric.loader.DataLoader",
}
#: datasets that produce their own stream of samples: a loader cannot shuffle them
ITERABLE_DATASETS = {
    "torch.utils.data.IterableDataset",
    "torch.utils.data.dataset.IterableDataset",
    "torch.utils.data.datapipes.datapipe.IterDataPipe",
    "torchdata.datapipes.iter.IterDataPipe",
    "datasets.IterableDataset",
}
_STREAMING_LIBRARIES = ("webdataset.", "torchdata.", "ffcv.", "streaming.")


def is_data_loader(qualname: str) -> bool:
    return qualname in DATA_LOADERS


def is_streaming_dataset(qualname: str) -> bool:
    """A dataset class of a library whose datasets are iterable streams (WebDataset, MosaicML ...)."""
    return qualname in ITERABLE_DATASETS or qualname.startswith(_STREAMING_LIBRARIES)


_TRANSFORM_MODULES = ("torchvision.transforms.", "torchvision.transforms.v2.")
#: augmentations drawn at random on every call, besides the ``Random*`` family
_RANDOM_AUGMENTATIONS = {
    "ColorJitter", "RandAugment", "AutoAugment", "TrivialAugmentWide", "AugMix", "ElasticTransform", "ScaleJitter",
    "MixUp", "CutMix",
}  # fmt: skip
#: image datasets of torchvision whose ``transform`` parameter is not named at the call
TRANSFORM_POSITIONS = {
    "torchvision.datasets.ImageFolder": 1,
    "torchvision.datasets.CIFAR10": 2,
    "torchvision.datasets.CIFAR100": 2,
    "torchvision.datasets.MNIST": 2,
    "torchvision.datasets.FashionMNIST": 2,
    "torchvision.datasets.KMNIST": 2,
    "torchvision.datasets.SVHN": 2,
    "torchvision.datasets.STL10": 3,
}


def is_transform_pipeline(qualname: str) -> bool:
    return qualname in ("torchvision.transforms.Compose", "torchvision.transforms.v2.Compose")


def is_random_augmentation(qualname: str) -> bool:
    """A torchvision transform whose output is drawn at random (``RandomCrop``, ``ColorJitter`` ...)."""
    if not qualname.startswith(_TRANSFORM_MODULES):
        return False
    tail = qualname.rsplit(".", 1)[-1]
    return tail.startswith("Random") or tail in _RANDOM_AUGMENTATIONS
