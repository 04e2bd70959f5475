"""Print what the code sandbox can use on this host, and why not: ``python -m verifiers.code``."""

import sys

from verifiers.code.isolation import MECHANISMS, probe

found = probe(sys.executable)
for mechanism in MECHANISMS:
    print(f"{mechanism}: {found.missing.get(mechanism, 'ok')}")
print(f"isolation: {found.label() if 'namespaces' not in found.missing else 'none possible'}")
