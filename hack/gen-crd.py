"""`make crd`: write the generated descriptions into the KRMSyncer CRD and copy it where it goes.

The CRD's source of truth is ray_syncer/data/krmsyncer.yaml; crds/krmsyncer.yaml (for
`kubectl apply -f crds/`) and deploy/crd/krmsyncer.yaml (kustomize may not reach outside deploy/)
are byte-identical copies. The descriptions that restate the code (what a glob never expands to,
which namespaces an unset `namespaces` leaves out) come from tests/api/crd_descriptions.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.api.crd_descriptions import regenerated_text  # noqa: E402

SOURCE = REPO / "ray_syncer" / "data" / "krmsyncer.yaml"
COPIES = (REPO / "crds" / "krmsyncer.yaml", REPO / "deploy" / "crd" / "krmsyncer.yaml")


def main() -> int:
    text = regenerated_text(SOURCE.read_text())
    for path in (SOURCE, *COPIES):
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"make crd: wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
