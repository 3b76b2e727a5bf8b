"""Robustness evaluation building blocks for MNIST models.

Pure functions on a model (``(N,1,28,28)`` float images in ``[0,1]`` -> ``(N,10)``
logits) and tensors; no training, tracking or config code lives here.

May import: pipeline.common, nn and data; no framework (Lightning, MLflow, Hydra, OmegaConf).

Submodules (imported on demand so that ``import pipeline.robustness`` stays cheap):

- ``attacks``      FGSM / PGD L-inf attacks and accuracy under attack
- ``corruptions``  the 15 MNIST-C corruptions
- ``shifts``       continuous severity shifts (robustness-vs-severity curves)
- ``image_ops``    the batched image operations both share
- ``ood``          max-softmax OOD scores, AUROC, Fashion-MNIST / noise OOD sets
- ``minimal``      the smallest change that flips each image: DeepFool (L2, L-inf) and a PGD radius grid
- ``autoattack``   thin wrapper around the ``pyautoattack`` package
- ``literature``   robust accuracy measured the way the adversarial-training papers report it
- ``trades``       the TRADES loss
- ``measures``     the robustness stage's measurements, from plain arguments
- ``summary``      one typed record of them: the details' keys and MLflow names from one place
- ``names``        the names of attacks, corruptions and shifts, torch-free
- ``mnist_c_files`` the official MNIST-C release read from its files
"""
