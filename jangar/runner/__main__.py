"""``python -m jangar.runner``."""

from jangar.runner.main import main

raise SystemExit(main())
