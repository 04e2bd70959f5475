"""The KL penalty's coefficient: fixed, or adapted toward a target KL (Ziegler et al. 2019, sec. 2.2).

RLHF maximises r_RM(x, y) - beta * KL(policy || reference). A fixed beta lets the KL grow as the policy
finds what the reward model overrates; the adaptive rule raises beta when the measured KL runs above the
target and lowers it below, so the policy's distance from the reference stays near `target`:

    e_t       = clip(KL_t / target - 1, -0.2, 0.2)
    beta_t+1  = beta_t * (1 + e_t * n_t / horizon)

with n_t the samples of step t. The clip bounds the change per step to ±20% of n_t / horizon.
"""

from dataclasses import dataclass


@dataclass
class KLController:
    beta: float
    target: float | None = None  # None: fixed beta
    horizon: float = 10_000.0

    def update(self, kl: float, n_samples: int) -> float:
        """Take one step's measured KL (the same units as `target`); returns the beta for the next step."""
        if self.target is not None:
            error = min(max(kl / self.target - 1.0, -0.2), 0.2)
            self.beta *= 1.0 + error * n_samples / self.horizon
        return self.beta
