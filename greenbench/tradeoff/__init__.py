"""The carbon-QoE tradeoff: operating points, Pareto frontier, fitted curves, plots."""
