"""Carbon: energy x intensity x PUE (``intensity.co2e_g``), hourly traces (bundled, CSV), live APIs."""
