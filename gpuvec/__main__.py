from gpuvec.cli import main

raise SystemExit(main())
