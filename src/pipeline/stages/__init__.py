"""Entry points: every DVC stage and every command; the only modules with main()."""
