"""mllint: a static-analysis linter for the silent bugs of machine-learning code."""

__version__ = "0.1.0"
