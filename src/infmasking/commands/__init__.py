"""The commands: what ``infmasking train | evaluate | embed | reproduce | interactions`` do,
each a function of the same name in its own module, above the library floors (``training/``,
``evaluation/``, :mod:`infmasking.embed`) that they use and that never import them. The CLI
(:mod:`infmasking.cli`) parses the arguments and calls these."""
