"""The robustness record: robustness.json's keys and the MLflow names come from one typed point."""

from pipeline.robustness.summary import AttackPoint, AutoAttackPoint, curve_rows, summary_points


def test_a_point_names_its_json_key_and_its_metric():
    point = AttackPoint("pgd", 0.1, 0.42)
    assert (point.key, point.metric) == ("pgd_eps0.1", "robust/pgd_acc_eps0.1")
    auto = AutoAttackPoint(0.3, 0.9)
    assert (auto.key, auto.metric) == ("eps0.3", "robust/autoattack_acc_eps0.3")


def test_the_curve_becomes_csv_rows_and_a_summary_at_0_1_and_0_3():
    curve = [AttackPoint(a, eps, acc) for eps, acc in ((0.0, 0.99), (0.1, 0.5), (0.3, 0.01)) for a in ("fgsm", "pgd")]
    assert curve_rows(curve) == [
        {"eps": 0.0, "fgsm": 0.99, "pgd": 0.99},
        {"eps": 0.1, "fgsm": 0.5, "pgd": 0.5},
        {"eps": 0.3, "fgsm": 0.01, "pgd": 0.01},
    ]
    assert [p.key for p in summary_points(curve, ("fgsm", "pgd"))] == [
        "fgsm_eps0.1",
        "fgsm_eps0.3",
        "pgd_eps0.1",
        "pgd_eps0.3",
    ]
    assert summary_points(curve[:2], ("fgsm", "pgd")) == []  # eps 0 only: nothing to quote
