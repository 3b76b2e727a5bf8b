"""The literature's own figure beside each claim, with its source: the report's "published" column.

Figures are quoted from the papers or their official tables, never recomputed. The MNIST
table is the one published with the database (yann.lecun.com/exdb/mnist, "test error rate"),
whose rows cite LeCun, Bottou, Bengio & Haffner, Proc. IEEE 86(11), 1998, and later papers.
"""

from __future__ import annotations

MNIST_TABLE = "MNIST database page (LeCun, Cortes & Burges)"

PUBLISHED = {
    "1": (
        "test error 3.05 % for a 784-300-100-10 net and 2.95 % for 784-500-150-10, both trained on squared "
        "error (LeCun et al. 1998); 1.6 % for 800 hidden units with cross-entropy (Simard et al., ICDAR 2003); "
        f"from the {MNIST_TABLE}"
    ),
    "2": (
        "test error 0.95 % for LeNet-5 without distortions (LeCun et al. 1998); 0.4 % for a CNN with elastic "
        "distortions (Simard et al., ICDAR 2003); 0.23 % for a committee of 35 CNNs (Ciresan et al., CVPR 2012); "
        f"from the {MNIST_TABLE}"
    ),
    "3": (
        "test error 12.0 % for a linear classifier (1-layer NN) without preprocessing "
        f"(LeCun et al. 1998, {MNIST_TABLE})"
    ),
    "4": (
        "a 4-layer CNN with ReLUs reaches 25 % training error on CIFAR-10 six times faster than the same "
        "network with tanh (Krizhevsky, Sutskever & Hinton, NeurIPS 2012, Fig. 1)"
    ),
    "5": (
        "language-model test loss L(N) = (N_c/N)^0.076 in non-embedding parameters "
        "(Kaplan et al. 2020, eq. 1.1): a loss, on text; ours is MNIST test error"
    ),
    "6": (
        "generalisation error falls as a power law in training-set size with exponents between -0.07 and "
        "-0.35 across tasks (Hestness et al. 2017); language-model loss as D^-0.095 (Kaplan et al. 2020, eq. 1.2)"
    ),
    "7": (
        "a picture, not a number: first-layer filters are edge and colour-blob detectors, deeper layers "
        "respond to object parts (Zeiler & Fergus, ECCV 2014)"
    ),
    "8": (
        "FGSM at eps 0.25 on MNIST: 99.9 % error for a shallow softmax classifier, 89.4 % for a maxout "
        "network (Goodfellow, Shlens & Szegedy, ICLR 2015)"
    ),
    "9": (
        "reverse mode: a gradient costs a small constant times the function, often within a factor of 5 "
        "(Griewank & Walther, Evaluating Derivatives, 2008, as stated by Kakade & Lee, NeurIPS 2018)"
    ),
    "10": (
        "test error: linear classifier 12.0 %, k-NN (L2) 5.0 %, boosted stumps 7.7 % (Kegl et al. 2009), SVM with "
        f"Gaussian kernel 1.4 %, LeNet-5 0.95 % ({MNIST_TABLE}); scikit-learn's benchmarks/bench_mnist.py: "
        "Nystroem SVM 2.28 %, ExtraTrees 2.94 %, random forest 3.18 %, logistic regression 8.24 %, CART 12.19 %, "
        "MLP 2.24 %"
    ),
    "11": (
        "language-model test loss falls as a power law in compute, L ∝ C^-0.050 (Kaplan et al. 2020, eq. 1.3); "
        "generalisation error as a power law in data, exponents -0.07 to -0.35 (Hestness et al. 2017)"
    ),
    "12": (
        "on 2^k points with alternating labels, one-layer (shallow) nets with fewer than exponentially many "
        "nodes in k err on at least 1/6, while 2 nodes in each of 2k layers reach zero error (Telgarsky, "
        "arXiv:1509.08101, 2015); at initialisation the regions along a line grow linearly in the number of "
        "neurons, far below the exponential bound, and stay far below it after training (Hanin & Rolnick, "
        "ICML 2019)"
    ),
    "13": (
        "with weights drawn at a fixed standard deviation (0.01), very deep models (more than 8 convolutional "
        "layers) have difficulties to converge (He et al., ICCV 2015); batch normalisation reaches the same "
        "ImageNet accuracy with 14 times fewer training steps (Ioffe & Szegedy, ICML 2015); MNIST test error "
        "1.60 % for a standard net (Simard et al. 2003) against 1.25 % with dropout, ReLUs and 3 layers of "
        "1,024 (Srivastava et al., JMLR 2014, Table 2)"
    ),
    "14": (
        "a CNN trained on images of two side-by-side MNIST digits labelled with their sum (1,000 images per "
        "pair) reaches over 90 % accuracy on pairs held out of training on some train/test splits (Bloice, "
        "Roth & Holzinger, J. Intell. Inf. Syst., 2021)"
    ),
    "15": (
        "in online user studies, images closer to their MNIST and CIFAR10 originals than the Lp thresholds "
        "used in prior work were often perceptually distinct, participants frequently classifying them as "
        "different digits or objects: nearness in an Lp norm is neither necessary nor sufficient for "
        "perceptual similarity (Sharif, Bauer & Reiter, CVPR Workshops 2018)"
    ),
    "C": (
        "GPT-3's training: about 1,287 MWh of electricity and 552 t CO2e (Patterson et al., Carbon Emissions "
        "and Large Neural Network Training, arXiv:2104.10350, 2021)"
    ),
    "R": (
        "AutoAttack at eps 0.3 (clean): Madry et al. 2018 88.50 % (98.53 %), Wong et al. 2020 82.93 % "
        "(98.50 %), TRADES 92.76 % (99.48 %) (the AutoAttack paper's table, Croce & Hein, ICML 2020)"
    ),
}
