"""Robustness evaluation building blocks for MNIST models.

Pure functions on a model (``(N,1,28,28)`` float images in ``[0,1]`` -> ``(N,10)``
logits) and tensors; no training, tracking or config code lives here.

Submodules (imported on demand so that ``import pipeline.robustness`` stays cheap):

- ``attacks``      FGSM / PGD L-inf attacks and accuracy under attack
- ``corruptions``  the 15 MNIST-C corruptions
- ``shifts``       continuous severity shifts (robustness-vs-severity curves)
- ``image_ops``    the batched image operations both share
- ``ood``          max-softmax OOD scores, AUROC, Fashion-MNIST / noise OOD sets
- ``calibration``  expected calibration error and reliability-diagram bins
- ``autoattack``   thin wrapper around the ``pyautoattack`` package
"""
