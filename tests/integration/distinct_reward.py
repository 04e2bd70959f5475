"""A reward for tests on the barely trained tiny model, named in a job as
`tests.integration.distinct_reward:distinct` (importable from the repository's root, where jobs run).

That model answers in a few tokens of noise which the math reward and the hidden preference score alike, so
every group is uninformative and no step trains. This score differs between any two different answers, so
every step does.
"""

import hashlib


def distinct(responses, golds, timeout_s, **columns):
    """A score in [0, 1) that differs between any two different answers (a hash of the text)."""
    return [int(hashlib.sha256(r.encode()).hexdigest()[:8], 16) / 2**32 for r in responses]
