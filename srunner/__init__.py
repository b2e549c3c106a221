"""ScenarioRunner compatibility layer shipped with the harness: the ``srunner`` entry points that
leaderboard and Bench2Drive agent files (and their base classes) call, answered by the world the
harness hands over (``CarlaDataProvider.set_world``). Written from ScenarioRunner's documented
behaviour; it is not ScenarioRunner. See README.md, "Leaderboard agent files"."""
