"""``python -m realqa_model train|eval|score``; see realqa_model.cli."""

from realqa_model.cli import main

raise SystemExit(main())
