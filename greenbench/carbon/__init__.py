"""Carbon intensity: static figures, hourly traces (bundled, CSV), live APIs."""
