"""The carbon-QoE tradeoff: ``points`` (operating points, Pareto frontier: what pricing reads),
``curves`` (validated fits, ``fit``), ``outputs`` (the files `greenbench fit` writes), ``plots``."""
