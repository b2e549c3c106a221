"""``srunner.scenariomanager``: the data provider and the game timer."""
