from gpuvec.tools.cli import main

raise SystemExit(main())
