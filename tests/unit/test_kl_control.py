"""The KL coefficient: fixed, and adapted toward a target KL."""

import pytest

from rlsys.algorithms.kl_control import KLController


def test_kl_controller_fixed_and_adaptive():
    assert KLController(beta=0.1).update(kl=50.0, n_samples=128) == 0.1
    adaptive = KLController(beta=0.1, target=6.0, horizon=1000)
    assert adaptive.update(kl=9.0, n_samples=100) == pytest.approx(0.1 * (1 + 0.2 * 0.1))  # clipped error
    assert adaptive.update(kl=5.7, n_samples=100) == pytest.approx(0.102 * (1 - 0.05 * 0.1))
