"""Plain PyTorch and scikit-learn: the models (a registry), the training loop, metrics and plots. No Kedro."""
