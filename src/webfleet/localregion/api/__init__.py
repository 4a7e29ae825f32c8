"""The region's AWS API: moto's server application and the patches the local region puts on it."""
