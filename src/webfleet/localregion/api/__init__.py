"""The region's AWS API: moto's server app, the moto patch registry, the error middleware."""
