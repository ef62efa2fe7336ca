"""``python -m ray_syncer`` is ``ray-syncer``."""

from ray_syncer.cli import main

raise SystemExit(main())
