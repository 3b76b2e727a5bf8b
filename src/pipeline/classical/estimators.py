"""The scikit-learn estimators a `baseline` section names, built from an explicit table.

Only these six can be built, and only from settings: no model is ever loaded from a file
(a pickled estimator is code). Settings a `random_state` takes are seeded from the run's seed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def _logistic_regression(settings: Mapping[str, Any], seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(**settings, random_state=seed)


def _decision_tree(settings: Mapping[str, Any], seed: int):
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(**settings, random_state=seed)


def _random_forest(settings: Mapping[str, Any], seed: int):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(**settings, random_state=seed)


def _k_nearest_neighbours(settings: Mapping[str, Any], seed: int):
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(**settings)  # deterministic: nothing to seed


def _rbf_svm(settings: Mapping[str, Any], seed: int):
    from sklearn.svm import SVC

    return SVC(kernel="rbf", **settings, random_state=seed)


def _nystroem_svm(settings: Mapping[str, Any], seed: int):
    from sklearn.kernel_approximation import Nystroem
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    s = dict(settings)
    kernel = Nystroem(kernel="rbf", gamma=s.pop("gamma"), n_components=s.pop("n_components"), random_state=seed)
    return make_pipeline(kernel, LinearSVC(**s, dual="auto", random_state=seed))


ESTIMATORS: dict[str, Callable[[Mapping[str, Any], int], Any]] = {
    "logistic_regression": _logistic_regression,
    "decision_tree": _decision_tree,
    "random_forest": _random_forest,
    "k_nearest_neighbours": _k_nearest_neighbours,
    "rbf_svm": _rbf_svm,
    "nystroem_svm": _nystroem_svm,
}


class UnknownEstimator(ValueError):
    pass


def build(estimator: str, settings: Mapping[str, Any], seed: int):
    """The unfitted estimator; a name or setting scikit-learn does not know fails here, by name."""
    if estimator not in ESTIMATORS:
        raise UnknownEstimator(
            f"baseline.estimator={estimator!r} is not one of {', '.join(ESTIMATORS)}; "
            "pick one with `baseline=<logistic|tree|forest|knn|svm|nystroem>`"
        )
    try:
        return ESTIMATORS[estimator](dict(settings), seed)
    except TypeError as err:  # an unknown keyword: scikit-learn's own message names it
        raise UnknownEstimator(f"baseline.settings for {estimator}: {err}") from None
