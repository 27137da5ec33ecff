from genesis_ps.cli import main

raise SystemExit(main())
