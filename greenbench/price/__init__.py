"""The two-tier green subscription: users, high-carbon slots, calculator, simulation."""
