"""The PyTorch backend: torch's fused losses, autograd rules from the losses' derivatives
(:mod:`.kernels`), and forward-and-backward fused losses for training (:mod:`.fused`).
Imported only once torch is."""
