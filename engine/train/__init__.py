"""Jobs that train and measure: sessions, the training loop, evaluation, run folders, checkpoints."""
